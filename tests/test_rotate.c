/* tests/test_rotate.c: rotations of a model (llm/quantize/rotate.h).
 *
 *   - with every quantizer at 16 bits, the rotated model reproduces the unrotated logits
 *     (max|diff| / max|ref| <= 1e-4) for all 5 fixtures and all 16 combinations of R1-R4
 *     (random signs on every rotation), and with signs on R1 only / no signs;
 *   - KV-cache decoding of a rotated W4A4KV4 model equals its forward;
 *   - llm_rotate_set: switching R2/R4 of a layer on and back off restores the logits;
 *   - central finite differences of the loss through the online rotations (R3, R4, and
 *     GPT-NeoX's final R1^T) along random directions of every tensor of layer 0 and the
 *     final norm, at 16 bits;
 *   - the forward->backward caches (Q_w(W), x R4) and the weight-side R4^T of the down
 *     projection's input gradient (qat->fast = 1) against the recomputing reference
 *     path (fast = 0) at W4A4KV4 with R1-R4, identity and clipped STE: same logits and
 *     loss bit for bit, gradients within 1e-5 (relative to the largest), the fast path
 *     deterministic;
 *   - the online R2 (rc.r2_online, the authors' training: W_v/W_o unrotated, R2 applied to
 *     the weights on the fly): at 16 bits it reproduces the unrotated and the merged
 *     logits (R2 alone and with R1/R3/R4) for all 5 fixtures; at W4A4KV4 its forward
 *     equals the merged model's to float rounding (logits rel <= 1e-5) and its gradient,
 *     rotated like the weights, equals the merged model's gradient; finite differences,
 *     switching, decode and the fast/reference paths above also run with it online;
 *     llm_rotate_merge_r2 keeps the function, saving refuses an unmerged R2, and the
 *     saved merged model reloads (llm_model_load with rostesim_qat.json) with identical
 *     logits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#include <unistd.h>

#include "llm/nn/model.h"
#include "llm/quantize/qat.h"
#include "llm/quantize/rotate.h"
#include "llm/io/safetensors.h"
#include "quant/rng.h"
#include "quant/status.h"
#include "tests/check.h"
#include "tests/fixture.h"

static const char *const FIXTURES[] = {"neox_parallel", "neox_sequential", "llama_gqa", "llama3_rope", "qwen2_gqa"};
#define NFIX 5

static int B, T;
static int32_t tok[4096], tgt[4096];

static int load(const char *name, llm_model **m)
{
    char dir[512], ref[600];
    snprintf(dir, sizeof dir, "tests/fixtures/llm/%s", name);
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    if (llm_qat_load_model(m, dir)) return 1;
    st_set *s = NULL;
    if (st_open(&s, ref)) return 1;
    const st_tensor *tt = st_find(s, "tokens"), *tg = st_find(s, "targets");
    B = (int)tt->shape[0];
    T = (int)tt->shape[1];
    memcpy(tok, tt->data, (size_t)B * T * 4);
    memcpy(tgt, tg->data, (size_t)B * T * 4);
    st_close(s);
    return 0;
}

static void test_invariance(const char *name)
{
    llm_model *m = NULL;
    if (load(name, &m)) {
        CHECK(0, "%s: load", name);
        return;
    }
    size_t NV = (size_t)B * T * m->cfg.vocab;
    float *ref = malloc(NV * 4);
    llm_model_forward(m, tok, NULL, B, T, NULL, NULL);
    memcpy(ref, m->logits, NV * 4);
    llm_model_free(m);
    double worst = 0;
    int nbad = 0;
    for (int combo = 0; combo < 16 + 2; combo++) {
        int r1 = combo & 1, r2 = combo >> 1 & 1, r3 = combo >> 2 & 1, r4 = combo >> 3 & 1;
        llm_signs signs = LLM_SIGNS_ALL;
        if (combo >= 16) r1 = r2 = r3 = r4 = 1, signs = combo == 16 ? LLM_SIGNS_R1 : LLM_SIGNS_NONE;
        llm_rot_config rc;
        m = NULL;
        int st = load(name, &m) || llm_rot_config_init(&rc, m->cfg.n_layer, r1, r2, r3, r4, signs, 7);
        if (!st) st = llm_rotate(&m, &rc);
        if (!st) st = llm_model_forward(m, tok, NULL, B, T, NULL, NULL);
        double e = st ? INFINITY : fx_rel_err(m->logits, ref, NV);
        if (e > 1e-4 || st) {
            nbad++;
            printf("  %s: R1=%d R2=%d R3=%d R4=%d signs %s: rel err %.3g (%s)\n", name, r1, r2, r3, r4,
                   llm_signs_name(signs), e, st ? rs_last_error() : "ok");
        }
        worst = fmax(worst, e);
        llm_rot_config_free(&rc);
        llm_model_free(m);
    }
    CHECK(nbad == 0, "%s: every combination of R1-R4 (and signs all/r1/none) reproduces the logits at 16 bits: "
          "worst rel err %.3g (tol 1e-4)", name, worst);
    free(ref);
}

static float loss_at(llm_model *m)
{
    float l = NAN;
    return llm_model_forward(m, tok, tgt, B, T, &l, NULL) ? NAN : l;
}

static void test_fd_decode(const char *name, rs_rng *rng, int r2_online)
{
    llm_model *m = NULL;
    llm_rot_config rc;
    const char *mode = r2_online ? " (R2 online)" : "";
    if (load(name, &m) || llm_rot_config_init(&rc, m->cfg.n_layer, 1, 1, 1, 1, LLM_SIGNS_ALL, 3) ||
        (rc.r2_online = r2_online, llm_rotate(&m, &rc))) {
        CHECK(0, "%s: rotate (%s)", name, rs_last_error());
        return;
    }
    /* switching R2 and R4 of layer 1 off and on again restores the function */
    size_t NV = (size_t)B * T * m->cfg.vocab;
    float *l0 = malloc(NV * 4);
    llm_model_forward(m, tok, NULL, B, T, NULL, NULL);
    memcpy(l0, m->logits, NV * 4);
    int st = llm_rotate_set(m, &rc, 1, 2, 0) | llm_rotate_set(m, &rc, 1, 4, 0) | llm_rotate_set(m, &rc, 1, 3, 0);
    st |= llm_model_forward(m, tok, NULL, B, T, NULL, NULL);
    double e1 = fx_rel_err(m->logits, l0, NV);
    st |= llm_rotate_set(m, &rc, 1, 2, 1) | llm_rotate_set(m, &rc, 1, 4, 1) | llm_rotate_set(m, &rc, 1, 3, 1);
    st |= llm_model_forward(m, tok, NULL, B, T, NULL, NULL);
    double e2 = fx_rel_err(m->logits, l0, NV);
    CHECK(!st && e1 <= 1e-4 && e2 <= 1e-5, "%s%s: R2/R3/R4 of layer 1 off (rel err %.3g) and on again (%.3g)", name,
          mode, e1, e2);

    /* finite differences through R3, R4 and the final R1^T (16 bits) */
    int ntok = 0;
    float loss;
    st = llm_model_forward(m, tok, tgt, B, T, &loss, &ntok);
    llm_model_zero_grad(m);
    st |= llm_model_backward(m, 1.0f / (float)ntok);
    float *g = malloc(m->nparams * 4);
    memcpy(g, m->grads, m->nparams * 4);
    const int nth = omp_get_max_threads();
    omp_set_num_threads(1);
    int nbad = 0, nchk = 0;
    double worst = 0;
    for (size_t i = 0; i < m->ntab; i++) {
        const llm_param *p = &m->tab[i];
        if (!strncmp(p->name, "layers.", 7) && strncmp(p->name, "layers.0.", 9)) continue;
        float *x = m->params + p->offset, *u = malloc(p->numel * 4), *x0 = malloc(p->numel * 4);
        memcpy(x0, x, p->numel * 4);
        double dir = 0;
        for (size_t k = 0; k < p->numel; k++) {
            u[k] = rs_rng_uniform(rng) < 0.5 ? -1.0f : 1.0f;
            dir += (double)u[k] * g[p->offset + k];
        }
        /* a step of norm 0.05 (small curvature error), fp32 loss noise ~1e-6 |L| over it */
        const float eps = 0.05f / sqrtf((float)p->numel);
        for (size_t k = 0; k < p->numel; k++) x[k] = x0[k] + eps * u[k];
        double lp = loss_at(m);
        for (size_t k = 0; k < p->numel; k++) x[k] = x0[k] - eps * u[k];
        double lm = loss_at(m);
        memcpy(x, x0, p->numel * 4);
        double fd = (lp - lm) / (2 * eps), noise = 1e-6 * fabs(lp) / eps;
        double e = fabs(fd - dir) / (fabs(dir) + noise / 3e-2);
        worst = fmax(worst, e);
        nchk++;
        if (fabs(fd - dir) > 3e-2 * fabs(dir) + noise) {
            nbad++;
            printf("  %s: %s: finite difference %.6g vs backward %.6g\n", name, p->name, fd, dir);
        }
        free(u), free(x0);
    }
    omp_set_num_threads(nth);
    CHECK(!st && nbad == 0, "%s%s: finite differences through the online rotations, %d tensors, worst rel %.3g", name,
          mode, nchk, worst);

    /* decode = forward with rotations and W4A4KV4 */
    llm_qat_opts o;
    llm_qat_opts_default(&o);
    m->qat->o = o;
    m->qat->w = qz_spec_make(4, QZ_ASYM, QZ_ROW, 0);
    m->qat->a = m->qat->kv = m->qat->w;
    st = llm_model_forward(m, tok, NULL, B, T, NULL, NULL);
    memcpy(l0, m->logits, NV * 4);
    llm_kv *kv = NULL;
    st |= llm_kv_alloc(&kv, m, T);
    size_t V = (size_t)m->cfg.vocab;
    float *dl = malloc(V * 4);
    double e = 0;
    int nflip = 0;
    for (int b = 0; b < B && !st; b++) {
        llm_kv_reset(kv);
        for (int t = 0; t < T && !st; t++) {
            st = llm_model_decode(m, kv, tok + (size_t)b * T + t, 1, dl);
            double et = fx_rel_err(dl, l0 + ((size_t)b * T + t) * V, V);
            if (et > 1e-5) nflip++;
            else e = fmax(e, et);
        }
    }
    /* one-token matrix products round differently from the batched ones; at 4 bits a value
     * within an ulp of a rounding boundary can then flip one code, which moves every later
     * position of that row: allow one such row-tail (a few positions) */
    CHECK(!st && nflip <= T / 2, "%s%s: rotated W4A4KV4 decode vs forward: rel err %.3g at %d of %d positions, "
          "%d positions after a rounding flip", name, mode, e, B * T - nflip, B * T, nflip);
    llm_kv_free(kv);
    free(dl), free(g), free(l0);
    llm_rot_config_free(&rc);
    llm_model_free(m);
}

/* loss, logits and gradients of one forward/backward of m (W4A4KV4, all rotations) */
static int fwd_bwd(llm_model *m, float *loss, float *logits, float *grads)
{
    int ntok = 0;
    if (llm_model_forward(m, tok, tgt, B, T, loss, &ntok)) return 1;
    memcpy(logits, m->logits, (size_t)B * T * m->cfg.vocab * sizeof(float));
    llm_model_zero_grad(m);
    if (llm_model_backward(m, 1.0f / (float)ntok)) return 1;
    memcpy(grads, m->grads, m->nparams * sizeof(float));
    return 0;
}

static void test_fast_vs_ref(const char *name, qz_ste ste, int r2_online)
{
    llm_model *m = NULL;
    llm_rot_config rc;
    llm_qat_opts o;
    llm_qat_opts_default(&o);
    o.ste = ste;
    int st = load(name, &m) || llm_qat_attach(m, &o) || llm_rot_config_init(&rc, m->cfg.n_layer, 1, 1, 1, 1, LLM_SIGNS_ALL, 5);
    if (!st) rc.r2_online = r2_online, st = llm_rotate(&m, &rc) || llm_model_alloc_grads(m);
    if (st) {
        CHECK(0, "%s: set up W4A4KV4 R1-R4 (%s)", name, rs_last_error());
        llm_model_free(m);
        return;
    }
    size_t NV = (size_t)B * T * m->cfg.vocab, P = m->nparams;
    float *l[3], *g[3], loss[3];
    for (int i = 0; i < 3; i++) l[i] = malloc(NV * 4), g[i] = malloc(P * 4);
    m->qat->fast = 1;
    st = fwd_bwd(m, &loss[0], l[0], g[0]) || fwd_bwd(m, &loss[1], l[1], g[1]);
    m->qat->fast = 0;
    st = st || fwd_bwd(m, &loss[2], l[2], g[2]);
    double e = st ? INFINITY : fx_rel_err(g[0], g[2], P);
    CHECK(!st && loss[0] == loss[2] && !memcmp(l[0], l[2], NV * 4) && e <= 1e-5,
          "%s (%s STE%s): cached/weight-side fast path vs reference: logits and loss identical, gradients rel err %.3g "
          "(tol 1e-5)", name, ste == QZ_STE_CLIPPED ? "clipped" : "identity", r2_online ? ", R2 online" : "", e);
    CHECK(!st && loss[0] == loss[1] && !memcmp(g[0], g[1], P * 4), "%s: fast path deterministic (same bytes twice)",
          name);
    for (int i = 0; i < 3; i++) free(l[i]), free(g[i]);
    llm_rot_config_free(&rc);
    llm_model_free(m);
}

/* llm_qat_freeze (inference): forwards after the first take Q_w(W) from the cache; the logits
 * equal those of the unfrozen model bit for bit (R1-R4 on, R2 online or merged), and a freeze
 * after a change of the weights uses the new ones. */
static void test_freeze(const char *name, int r2_online)
{
    llm_model *m = NULL;
    llm_rot_config rc;
    llm_qat_opts o;
    llm_qat_opts_default(&o);
    int st = load(name, &m) || llm_qat_attach(m, &o) || llm_rot_config_init(&rc, m->cfg.n_layer, 1, 1, 1, 1, LLM_SIGNS_ALL, 5);
    if (!st) rc.r2_online = r2_online, st = llm_rotate(&m, &rc);
    if (st) {
        CHECK(0, "%s: set up W4A4KV4 R1-R4 (%s)", name, rs_last_error());
        llm_model_free(m);
        return;
    }
    size_t NV = (size_t)B * T * m->cfg.vocab;
    float *l[5], loss[5];
    int ntok = 0;
    for (int i = 0; i < 5; i++) l[i] = malloc(NV * 4);
    for (int i = 0; i < 3 && !st; i++) {
        if (i == 1) llm_qat_freeze(m);
        st = llm_model_forward(m, tok, tgt, B, T, &loss[i], &ntok);
        if (!st) memcpy(l[i], m->logits, NV * 4);
    }
    /* a weight changed after the freeze: stale until frozen again, then the new weights */
    m->w.layers[0].up_w[0] += 0.5f;
    st = st || llm_model_forward(m, tok, tgt, B, T, &loss[3], &ntok);
    if (!st) memcpy(l[3], m->logits, NV * 4);
    llm_qat_freeze(m);
    st = st || llm_model_forward(m, tok, tgt, B, T, &loss[4], &ntok);
    if (!st) memcpy(l[4], m->logits, NV * 4);
    m->qat->frozen = 0;
    float ref = 0;
    float *lr = malloc(NV * 4);
    st = st || llm_model_forward(m, tok, tgt, B, T, &ref, &ntok);
    if (!st) memcpy(lr, m->logits, NV * 4);
    CHECK(!st && loss[0] == loss[1] && loss[1] == loss[2] && !memcmp(l[0], l[1], NV * 4) && !memcmp(l[0], l[2], NV * 4),
          "%s%s: frozen forwards (cached Q_w) give the unfrozen logits bit for bit", name, r2_online ? " (R2 online)" : "");
    CHECK(!st && !memcmp(l[3], l[0], NV * 4) && loss[4] == ref && !memcmp(l[4], lr, NV * 4) && memcmp(l[4], l[0], NV * 4),
          "%s%s: a weight changed after the freeze: the cache until frozen again, then the new weights", name,
          r2_online ? " (R2 online)" : "");
    for (int i = 0; i < 5; i++) free(l[i]);
    free(lr);
    llm_rot_config_free(&rc);
    llm_model_free(m);
}

/* A fixture with quantizers o (NULL: 16 bits) and rotations (R1, R2, R3, R4 as given),
 * R2 online or merged. */
static int setup(const char *name, llm_model **m, const llm_qat_opts *o, int r1, int r3r4, int r2_online,
                 llm_rot_config *rc)
{
    *m = NULL;
    if (load(name, m) || (o && llm_qat_attach(*m, o)) ||
        llm_rot_config_init(rc, (*m)->cfg.n_layer, r1, 1, r3r4, r3r4, LLM_SIGNS_ALL, 9))
        return 1;
    rc->r2_online = r2_online;
    return llm_rotate(m, rc) || llm_model_alloc_grads(*m);
}

static void test_r2_online(const char *name)
{
    llm_model *m = NULL, *mm = NULL, *ld = NULL;
    llm_rot_config rc, rcm;
    if (load(name, &m)) {
        CHECK(0, "%s: load", name);
        return;
    }
    size_t NV = (size_t)B * T * m->cfg.vocab;
    float *ref = malloc(NV * 4), *lon = malloc(NV * 4);
    llm_model_forward(m, tok, NULL, B, T, NULL, NULL);
    memcpy(ref, m->logits, NV * 4);
    llm_model_free(m);
    /* 16 bits: online R2 (alone, and with R1/R3/R4) against no rotation and merged R2 */
    double e_ref = 0, e_mrg = 0;
    int st = 0;
    for (int all = 0; all < 2 && !st; all++) {
        st = setup(name, &m, NULL, all, all, 1, &rc) || setup(name, &mm, NULL, all, all, 0, &rcm) ||
             llm_model_forward(m, tok, NULL, B, T, NULL, NULL) || llm_model_forward(mm, tok, NULL, B, T, NULL, NULL);
        if (!st) e_ref = fmax(e_ref, fx_rel_err(m->logits, ref, NV)), e_mrg = fmax(e_mrg, fx_rel_err(m->logits, mm->logits, NV));
        llm_model_free(m), llm_model_free(mm);
        llm_rot_config_free(&rc), llm_rot_config_free(&rcm);
    }
    CHECK(!st && e_ref <= 1e-4 && e_mrg <= 1e-4, "%s: online R2 at 16 bits (alone and with R1/R3/R4): rel err %.3g "
          "against no rotation, %.3g against merged R2 (tol 1e-4)", name, e_ref, e_mrg);

    /* W4A4KV4, every rotation: forward and gradients against the merged form */
    llm_qat_opts o;
    llm_qat_opts_default(&o);
    st = setup(name, &m, &o, 1, 1, 1, &rc) || setup(name, &mm, &o, 1, 1, 0, &rcm);
    size_t P = st ? 0 : m->nparams;
    float *g = malloc(P * 4 + 4), *gm = malloc(P * 4 + 4), *w0 = malloc(P * 4 + 4), loss = 0, lossm = 0;
    st = st || fwd_bwd(m, &loss, lon, g) || fwd_bwd(mm, &lossm, ref, gm);
    double ef = st ? INFINITY : fx_rel_err(lon, ref, NV);
    CHECK(!st && ef <= 1e-5, "%s: W4A4KV4, online vs merged R2: logits rel err %.3g (tol 1e-5), loss %.7g vs %.7g", name,
          ef, loss, lossm);
    /* the gradient of the stored weights, rotated like the weights (llm_rotate_merge_r2 on
     * a copy of the model whose parameters are the gradient), is the merged gradient */
    double eg = INFINITY;
    if (!st) {
        memcpy(w0, m->params, P * 4);
        memcpy(m->params, g, P * 4);
        llm_rot_config rcg;
        st = llm_rot_config_copy(&rcg, &rc) || llm_rotate_merge_r2(m, &rcg);
        eg = st ? INFINITY : fx_rel_err(m->params, gm, P);
        memcpy(m->params, w0, P * 4);
        memcpy(m->qat->r2_on, rc.r2, (size_t)rc.n_layer); /* online again, as before the merge */
        llm_rot_config_free(&rcg);
    }
    CHECK(!st && eg <= 1e-5, "%s: W4A4KV4: online R2's gradient, rotated, equals the merged one: rel err %.3g (tol 1e-5)",
          name, eg);
    /* export: saving refuses the unmerged model; merged, the function is kept, and the
     * saved folder reloads with identical logits */
    char dir[64] = "/tmp/rostesim_r2XXXXXX";
    int refused = !st && llm_qat_save(m, &rc, "roste", "/nonexistent") == RS_EINVAL;
    st = st || !mkdtemp(dir) || llm_rotate_merge_r2(m, &rc) || llm_model_forward(m, tok, NULL, B, T, NULL, NULL);
    double em = st ? INFINITY : fx_rel_err(m->logits, lon, NV);
    if (!st) memcpy(ref, m->logits, NV * 4);
    st = st || rc.r2_online || llm_model_save(m, dir) || llm_qat_save(m, &rc, "roste", dir) || llm_qat_load_model(&ld, dir) ||
         llm_model_forward(ld, tok, NULL, B, T, NULL, NULL);
    int same = !st && !memcmp(ld->logits, ref, NV * 4) && ld->qat && ld->qat->r2_trained_online;
    CHECK(refused && !st && em <= 1e-5 && same, "%s: online R2 merged for export: saving unmerged refused, rel err %.3g "
          "after the merge (tol 1e-5), reload identical (r2_mode online recorded)", name, em);
    if (dir[15] != 'X') {
        char p[128];
        const char *f[] = {"config.json", "model.safetensors", LLM_QAT_FILE};
        for (int i = 0; i < 3; i++) snprintf(p, sizeof p, "%s/%s", dir, f[i]), remove(p);
        rmdir(dir);
    }
    free(g), free(gm), free(w0), free(ref), free(lon);
    llm_model_free(m), llm_model_free(mm), llm_model_free(ld);
    llm_rot_config_free(&rc), llm_rot_config_free(&rcm);
}

int main(void)
{
    rs_rng *rng = rs_rng_alloc(11, 1);
    for (int i = 0; i < NFIX; i++) test_fast_vs_ref(FIXTURES[i], i == 2 ? QZ_STE_CLIPPED : QZ_STE_IDENTITY, 0);
    for (int i = 0; i < NFIX; i++) test_fast_vs_ref(FIXTURES[i], i == 2 ? QZ_STE_CLIPPED : QZ_STE_IDENTITY, 1);
    for (int i = 0; i < NFIX; i++) test_invariance(FIXTURES[i]);
    for (int i = 0; i < NFIX; i++) test_freeze(FIXTURES[i], 0), test_freeze(FIXTURES[i], 1);
    for (int i = 0; i < NFIX; i++) test_r2_online(FIXTURES[i]);
    for (int i = 0; i < NFIX; i++) test_fd_decode(FIXTURES[i], rng, 0);
    for (int i = 0; i < NFIX; i++) test_fd_decode(FIXTURES[i], rng, 1);
    rs_rng_free(rng);
    return check_summary("test_rotate");
}
