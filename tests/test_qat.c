/* tests/test_qat.c: fake quantization in the LLM engine (llm/quantize/qat.h).
 *
 *   - every quantizer at 16 bits: logits, loss and every gradient bit-identical to the
 *     model without a QAT state (the quantizers are skipped), for all 5 fixtures;
 *   - W4A4KV4 (asym, per channel / per token / per token per head) against PyTorch
 *     (tools/qat_fixture.py, x + (Q(x) - x).detach()) on llama_gqa, neox_parallel,
 *     qwen2_gqa: logits, loss and every gradient (tolerances below, measured values
 *     printed);
 *   - clipped STE at c = 1 equals the identity STE (nothing is clamped), at c = 0.8 differs;
 *   - decode with the quantized KV cache equals the forward;
 *   - same inputs, same bytes (a second forward/backward is bit-identical). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/nn/model.h"
#include "llm/quantize/qat.h"
#include "llm/io/safetensors.h"
#include "quant/status.h"
#include "tests/check.h"
#include "tests/fixture.h"

static const char *const FIXTURES[] = {"neox_parallel", "neox_sequential", "llama_gqa", "llama3_rope", "qwen2_gqa"};
#define NFIX 5

typedef struct {
    llm_model *m;
    int B, T;
    int32_t *tok, *tgt;
} fx_t;

static int fx_load(fx_t *f, const char *name)
{
    char dir[512], ref[600];
    memset(f, 0, sizeof *f);
    snprintf(dir, sizeof dir, "tests/fixtures/llm/%s", name);
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    if (llm_qat_load_model(&f->m, dir)) return 1;
    st_set *s = NULL;
    if (st_open(&s, ref)) return 1;
    const st_tensor *tt = st_find(s, "tokens"), *tg = st_find(s, "targets");
    f->B = (int)tt->shape[0];
    f->T = (int)tt->shape[1];
    size_t N = (size_t)f->B * f->T;
    f->tok = malloc(N * sizeof(int32_t));
    f->tgt = malloc(N * sizeof(int32_t));
    memcpy(f->tok, tt->data, N * sizeof(int32_t));
    memcpy(f->tgt, tg->data, N * sizeof(int32_t));
    st_close(s);
    return 0;
}

static void fx_free(fx_t *f)
{
    llm_model_free(f->m);
    free(f->tok);
    free(f->tgt);
}

/* forward + backward (mean loss); copies logits and grads out */
static int run(fx_t *f, float *loss, float *logits, float *grads)
{
    int ntok = 0;
    size_t NV = (size_t)f->B * f->T * f->m->cfg.vocab;
    if (llm_model_forward(f->m, f->tok, f->tgt, f->B, f->T, loss, &ntok)) return 1;
    if (logits) memcpy(logits, f->m->logits, NV * sizeof(float));
    llm_model_zero_grad(f->m);
    if (llm_model_backward(f->m, 1.0f / (float)ntok)) return 1;
    if (grads) memcpy(grads, f->m->grads, f->m->nparams * sizeof(float));
    return 0;
}

static void test_identity(const char *name)
{
    fx_t f;
    if (fx_load(&f, name)) {
        CHECK(0, "%s: load (%s)", name, rs_last_error());
        return;
    }
    size_t NV = (size_t)f.B * f.T * f.m->cfg.vocab, P = f.m->nparams;
    float *l0 = malloc(NV * 4), *l1 = malloc(NV * 4), *g0, *g1;
    float loss0, loss1;
    llm_model_alloc_grads(f.m);
    g0 = malloc(P * 4);
    g1 = malloc(P * 4);
    int st = run(&f, &loss0, l0, g0);
    llm_qat_opts o;
    llm_qat_opts_default(&o);
    o.wbits = o.abits = o.kvbits = 16;
    st |= llm_qat_attach(f.m, &o);
    st |= run(&f, &loss1, l1, g1);
    CHECK(!st && loss0 == loss1 && !memcmp(l0, l1, NV * 4) && !memcmp(g0, g1, P * 4),
          "%s: W16A16KV16: logits, loss and gradients bit-identical to the unquantized model", name);
    free(l0), free(l1), free(g0), free(g1);
    fx_free(&f);
}

static void test_torch(const char *name)
{
    fx_t f;
    if (fx_load(&f, name)) {
        CHECK(0, "%s: load (%s)", name, rs_last_error());
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "tests/fixtures/qat/%s.safetensors", name);
    st_set *ref = NULL;
    int st = st_open(&ref, path);
    CHECK(st == RS_OK, "%s: open %s", name, path);
    if (st) {
        fx_free(&f);
        return;
    }
    llm_qat_opts o;
    llm_qat_opts_default(&o);
    st = llm_qat_attach(f.m, &o);
    size_t N = (size_t)f.B * f.T, V = (size_t)f.m->cfg.vocab, P = f.m->nparams;
    float *rl = malloc(N * V * 4), rloss = 0, loss = 0;
    float *lg = malloc(N * V * 4), *g = malloc(P * 4), *rg = calloc(P, 4);
    st |= st_read_f32(st_find(ref, "logits"), rl) | st_read_f32(st_find(ref, "loss"), &rloss);
    llm_model_alloc_grads(f.m);
    st |= run(&f, &loss, lg, g);
    st |= llm_model_read_hf(f.m, ref, "grad.", rg);
    CHECK(st == RS_OK, "%s: W4A4KV4 forward/backward and reference (%s)", name, st ? rs_last_error() : "ok");
    double le = fx_rel_err(lg, rl, N * V);
    /* the quantizers are bit-exact with torch on equal inputs; the matrix products round
     * differently from torch's, which moves the grids by ulps (a flipped rounding decision
     * would show as an error of ~1/15 of a group's range: none happens on these batches) */
    CHECK(le <= 1e-5, "%s: W4A4KV4 logits vs PyTorch: max|diff|/max|ref| %.3g (tol 1e-5)", name, le);
    CHECK(fabs(loss - rloss) <= 1e-6 * fabs(rloss), "%s: W4A4KV4 loss %.7f vs PyTorch %.7f", name, loss, rloss);
    double worst = 0;
    const char *wn = "";
    int nbad = 0;
    for (size_t i = 0; i < f.m->ntab; i++) {
        const llm_param *p = &f.m->tab[i];
        double e = fx_rel_err(g + p->offset, rg + p->offset, p->numel);
        if (e > worst) worst = e, wn = p->name;
        if (e > 1e-4) {
            nbad++;
            printf("  %s: gradient of %s: rel err %.3g\n", name, p->name, e);
        }
    }
    CHECK(nbad == 0, "%s: W4A4KV4 STE gradients vs PyTorch: worst rel err %.3g (%s), tol 1e-4 per tensor", name,
          worst, wn);
    printf("%s: W4A4KV4 logits rel err %.3g, loss %.7f vs %.7f, worst gradient rel err %.3g (%s)\n", name, le, loss,
           rloss, worst, wn);

    /* determinism: a second run gives the same bytes */
    float *g2 = malloc(P * 4), *lg2 = malloc(N * V * 4), loss2;
    st = run(&f, &loss2, lg2, g2);
    CHECK(!st && !memcmp(g, g2, P * 4) && !memcmp(lg, lg2, N * V * 4), "%s: W4A4KV4 rerun bit-identical", name);

    /* decode with the quantized KV cache = forward (per-token quantizers) */
    llm_kv *kv = NULL;
    st = llm_kv_alloc(&kv, f.m, f.T);
    float *dl = malloc(V * 4);
    double e = 0;
    for (int b = 0; b < f.B && !st; b++) {
        llm_kv_reset(kv);
        for (int t = 0; t < f.T && !st; t++) {
            st = llm_model_decode(f.m, kv, f.tok + (size_t)b * f.T + t, 1, dl);
            e = fmax(e, fx_rel_err(dl, lg + ((size_t)b * f.T + t) * V, V));
        }
    }
    CHECK(!st && e <= 1e-5, "%s: W4A4KV4 decode with the quantized KV cache vs forward: rel err %.3g (tol 1e-5)",
          name, e);
    llm_kv_free(kv);

    /* clipped STE: masks the gradient of the elements that x/s + z puts outside the code
     * range before rounding (at c = 1 only a row's extremes can be, by < 1/2 code) */
    float *g3 = malloc(P * 4);
    o.ste = QZ_STE_CLIPPED;
    st = llm_qat_attach(f.m, &o);
    st |= run(&f, &loss2, NULL, g2);
    size_t nzero_id = 0, nzero_cl = 0;
    for (size_t i = 0; i < P; i++) nzero_id += g[i] == 0.0f, nzero_cl += g2[i] == 0.0f;
    CHECK(!st && loss2 == loss && memcmp(g, g2, P * 4), "%s: clipped STE: same loss, other gradients", name);
    o.wclip = o.aclip = 0.8;
    st = llm_qat_attach(f.m, &o);
    st |= run(&f, &loss2, NULL, g2);
    o.ste = QZ_STE_IDENTITY;
    st |= llm_qat_attach(f.m, &o);
    st |= run(&f, &loss2, NULL, g3);
    size_t nz8 = 0, nz8i = 0;
    for (size_t i = 0; i < P; i++) nz8 += g2[i] == 0.0f, nz8i += g3[i] == 0.0f;
    CHECK(!st && nz8 > nz8i, "%s: clipped STE at c = 0.8 zeroes more weight gradients (%zu vs %zu)", name, nz8, nz8i);
    free(g3);
    free(dl);
    free(g2), free(lg2);
    free(rl), free(lg), free(g), free(rg);
    st_close(ref);
    fx_free(&f);
}

static void test_errors(void)
{
    {   /* --clipped-ste: weights and activations clipped, K/V identity (documented in --help) */
        llm_model *m = NULL;
        llm_qat_opts o;
        llm_qat_opts_default(&o);
        o.ste = QZ_STE_CLIPPED;
        int st = llm_qat_load_model(&m, "tests/fixtures/llm/llama_gqa") || llm_qat_attach(m, &o);
        CHECK(!st && m->qat->w.ste == QZ_STE_CLIPPED && m->qat->a.ste == QZ_STE_CLIPPED && m->qat->kv.ste == QZ_STE_IDENTITY,
              "clipped STE: weights and activations clipped, K/V identity");
        llm_model_free(m);
    }
    llm_qat_opts o;
    llm_qat_opts_default(&o);
    o.aclip = 1.5;
    CHECK(llm_qat_opts_check(&o) == RS_EINVAL && strstr(rs_last_error(), "--aclip"),
          "clip 1.5 refused, message names the flag (%s)", rs_last_error());
    llm_qat_opts_default(&o);
    o.wbits = 12;
    CHECK(llm_qat_opts_check(&o) == RS_EINVAL && strstr(rs_last_error(), "--wbits"), "12 bits refused (%s)",
          rs_last_error());
}

int main(void)
{
    for (int i = 0; i < NFIX; i++) test_identity(FIXTURES[i]);
    test_torch("llama_gqa");
    test_torch("neox_parallel");
    test_torch("qwen2_gqa");
    test_errors();
    return check_summary("test_qat");
}
