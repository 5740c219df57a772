/* tests/test_model.c: the assembled transformer against HF transformers (tools/llm_fixtures.py).
 *
 * For each fixture in tests/fixtures/llm/<name>/ (or $LLM_FIXTURES/<name>):
 *   - load the HF checkpoint; forward the reference batch: logits relative error
 *     max|ours - ref| / max|ref| <= 1e-4, loss within 1e-5 relative, token count;
 *   - backward with scale 1/ntok: every parameter's gradient (read from "grad.<HF name>")
 *     with relative error max|ours - ref| / max|ref| <= 1e-3 per tensor;
 *   - save to a temporary folder and reload: parameters bit-identical, same config
 *     (with LLM_KEEP_SAVED=DIR the folders are kept as DIR/<name> for
 *     `tools/llm_fixtures.py --check-saved`);
 *   - KV-cache decoding token by token and in chunks equals the forward's logits
 *     (max|diff| / max|ref| <= 1e-5);
 *   - central finite differences of the fp32 loss on two coordinates (the largest |gradient|
 *     and a random one) and along a random direction of every tensor of layer 0, the
 *     embedding, the final norm and the head (every tensor kind).
 * Then the loader's errors: missing tensor, wrong shape, unknown extra tensor, unknown
 * model_type (the message must name the tensor / field), derived buffers ignored, tied
 * head stored or not, and a randomly initialised model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>

#include "llm/io/config.h"
#include "llm/nn/model.h"
#include "llm/io/safetensors.h"
#include "quant/rng.h"
#include "quant/status.h"
#include "tests/check.h"
#include "tests/fixture.h"

static const char *const FIXTURES[] = {"neox_parallel", "neox_sequential", "llama_gqa", "llama3_rope", "qwen2_gqa"};
#define NFIX (sizeof FIXTURES / sizeof FIXTURES[0])

static char fixture_root[1024] = "tests/fixtures/llm";

static int read_i32(const st_tensor *t, int32_t *dst, size_t n)
{
    if (!t || t->dtype != ST_I32 || t->nelem != n) return 1;
    memcpy(dst, t->data, n * sizeof(int32_t));
    return 0;
}

/* remove the files a save writes, then the folder */
static void rm_saved(const char *dir)
{
    static const char *const files[] = {"config.json", "model.safetensors"};
    char p[2048];
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        remove(p);
    }
    rmdir(dir);
}

static int same_config(const llm_config *a, const llm_config *b)
{
    return a->arch == b->arch && a->vocab == b->vocab && a->d == b->d && a->n_layer == b->n_layer &&
           a->n_head == b->n_head && a->n_kv_head == b->n_kv_head && a->head_dim == b->head_dim &&
           a->d_ff == b->d_ff && a->max_pos == b->max_pos && a->norm_eps == b->norm_eps && a->act == b->act &&
           a->rope_theta == b->rope_theta && a->rot_dim == b->rot_dim && a->rope_type == b->rope_type &&
           (a->rope_type == LLM_ROPE_DEFAULT ||
            (a->rope_factor == b->rope_factor && a->rope_low_freq_factor == b->rope_low_freq_factor &&
             a->rope_high_freq_factor == b->rope_high_freq_factor && a->rope_orig_max_pos == b->rope_orig_max_pos)) &&
           a->parallel_residual == b->parallel_residual && a->tied == b->tied && a->qkv_bias == b->qkv_bias &&
           a->o_bias == b->o_bias && a->mlp_bias == b->mlp_bias;
}

static float loss_at(llm_model *m, const int32_t *tok, const int32_t *tgt, int B, int T)
{
    float l = NAN;
    int st = llm_model_forward(m, tok, tgt, B, T, &l, NULL);
    return st ? NAN : l;
}

/* Central differences of the loss at coordinate k of parameter p, and along a random
 * direction u of the whole tensor (|u|_inf = 1). */
static void fd_checks(llm_model *m, const float *grad, const int32_t *tok, const int32_t *tgt, int B, int T,
                      const char *fx, rs_rng *rng, double *worst)
{
    const float eps = 1e-2f; /* parameters are O(0.1..1) */
    float *u = NULL;
    /* hundreds of tiny forwards: one thread (a busy 2-core machine makes OpenMP barriers
     * slow); the threaded kernels are checked against HF above */
    const int nthreads = omp_get_max_threads();
    omp_set_num_threads(1);
    for (size_t i = 0; i < m->ntab; i++) {
        const llm_param *p = &m->tab[i];
        /* every tensor kind: layer 0, the embedding, the final norm, the head */
        if (!strncmp(p->name, "layers.", 7) && strncmp(p->name, "layers.0.", 9)) continue;
        float *x = m->params + p->offset;
        const float *g = grad + p->offset;
        /* the coordinate with the largest |gradient| and one random coordinate */
        size_t kmax = 0;
        for (size_t k = 1; k < p->numel; k++)
            if (fabsf(g[k]) > fabsf(g[kmax])) kmax = k;
        size_t ks[2] = {kmax, (size_t)rs_rng_uint(rng, p->numel)};
        for (int j = 0; j < 2; j++) {
            size_t k = ks[j];
            float x0 = x[k];
            x[k] = x0 + eps;
            double lp = loss_at(m, tok, tgt, B, T);
            x[k] = x0 - eps;
            double lm = loss_at(m, tok, tgt, B, T);
            x[k] = x0;
            double fd = (lp - lm) / (2.0 * eps), an = g[k];
            /* fp32 loss noise ~ 1e-6 |L| over 2 eps, plus O(eps^2) curvature */
            double tol = 3e-2 * fabs(an) + 2e-4;
            *worst = fmax(*worst, fabs(fd - an) / (fabs(an) + 2e-4 / 3e-2));
            CHECK(fabs(fd - an) <= tol, "%s: finite difference %s[%zu]%s: %.6g vs backward %.6g (tol %.2g)", fx,
                  p->name, k, j == 0 ? " (max |g|)" : "", fd, an, tol);
        }
        /* a random +-1 direction u, scaled so that the step has norm 0.05 (small curvature
         * error); fp32 noise of the loss ~1e-6 |L| over the step */
        u = realloc(u, p->numel * sizeof(float));
        double dir = 0;
        for (size_t k = 0; k < p->numel; k++) {
            u[k] = (float)rs_rng_sign(rng);
            dir += (double)u[k] * g[k];
        }
        const float h = 0.05f / sqrtf((float)p->numel);
        float *save = malloc(p->numel * sizeof(float));
        memcpy(save, x, p->numel * sizeof(float));
        for (size_t k = 0; k < p->numel; k++) x[k] = save[k] + h * u[k];
        double lp = loss_at(m, tok, tgt, B, T);
        for (size_t k = 0; k < p->numel; k++) x[k] = save[k] - h * u[k];
        double lm = loss_at(m, tok, tgt, B, T);
        memcpy(x, save, p->numel * sizeof(float));
        free(save);
        double fd = (lp - lm) / (2.0 * h);
        double noise = 1e-6 * fabs(lp) / h;
        double tol = 3e-2 * fabs(dir) + noise;
        *worst = fmax(*worst, fabs(fd - dir) / (fabs(dir) + noise / 3e-2));
        CHECK(fabs(fd - dir) <= tol, "%s: finite difference of %s along a random direction: %.6g vs backward %.6g "
              "(tol %.2g)", fx, p->name, fd, dir, tol);
    }
    free(u);
    omp_set_num_threads(nthreads);
}

static void test_fixture(const char *fx, rs_rng *rng)
{
    char dir[1200], ref_path[1300];
    snprintf(dir, sizeof dir, "%s/%s", fixture_root, fx);
    snprintf(ref_path, sizeof ref_path, "%s/ref.safetensors", dir);
    llm_model *m = NULL;
    int st = llm_model_load(&m, dir);
    CHECK(st == RS_OK, "%s: load (%s)", fx, st ? rs_last_error() : "ok");
    if (st) return;
    st_set *ref = NULL;
    st = st_open(&ref, ref_path);
    CHECK(st == RS_OK, "%s: open ref.safetensors (%s)", fx, st ? rs_last_error() : "ok");
    if (st) {
        llm_model_free(m);
        return;
    }
    const st_tensor *tt = st_find(ref, "tokens");
    int B = tt && tt->ndim == 2 ? (int)tt->shape[0] : 0, T = tt && tt->ndim == 2 ? (int)tt->shape[1] : 0;
    const int V = m->cfg.vocab;
    const size_t N = (size_t)B * T;
    int32_t *tok = malloc((N ? N : 1) * sizeof(int32_t)), *tgt = malloc((N ? N : 1) * sizeof(int32_t));
    float *rlogits = malloc((N ? N : 1) * (size_t)V * sizeof(float)), rloss = NAN;
    const st_tensor *tl = st_find(ref, "logits"), *tls = st_find(ref, "loss");
    int bad = !N || read_i32(tt, tok, N) || read_i32(st_find(ref, "targets"), tgt, N) || !tl ||
              tl->nelem != N * (size_t)V || st_read_f32(tl, rlogits) || !tls || tls->nelem != 1 ||
              st_read_f32(tls, &rloss);
    CHECK(!bad, "%s: reference batch (%d, %d), vocab %d", fx, B, T, V);
    if (bad) goto done;

    /* forward */
    float loss = NAN;
    int ntok = -1, nref = 0;
    for (size_t i = 0; i < N; i++) nref += tgt[i] >= 0;
    st = llm_model_forward(m, tok, tgt, B, T, &loss, &ntok);
    CHECK(st == RS_OK, "%s: forward", fx);
    double lerr = fx_rel_err(m->logits, rlogits, N * V);
    CHECK(lerr <= 1e-4, "%s: logits max|diff|/max|ref| = %.3g (tol 1e-4)", fx, lerr);
    CHECK(fabs(loss - rloss) <= 1e-5 * fabs(rloss), "%s: loss %.8f vs HF %.8f (rel %.3g, tol 1e-5)", fx, loss, rloss,
          fabs(loss - rloss) / fabs(rloss));
    CHECK(ntok == nref, "%s: %d non-ignored targets (expected %d)", fx, ntok, nref);
    float *flogits = malloc(N * V * sizeof(float));
    memcpy(flogits, m->logits, N * V * sizeof(float));

    /* backward */
    llm_model_zero_grad(m);
    st = llm_model_backward(m, 1.0f / (float)ntok);
    CHECK(st == RS_OK && m->grads, "%s: backward", fx);
    float *rgrad = calloc(m->nparams, sizeof(float));
    st = llm_model_read_hf(m, ref, "grad.", rgrad);
    CHECK(st == RS_OK, "%s: reference gradients under HF names (%s)", fx, st ? rs_last_error() : "ok");
    double gworst = 0;
    const char *gname = "";
    for (size_t i = 0; i < m->ntab && !st; i++) {
        const llm_param *p = &m->tab[i];
        double e = fx_rel_err(m->grads + p->offset, rgrad + p->offset, p->numel);
        double s = fx_max_abs(rgrad + p->offset, p->numel);
        CHECK(e <= 1e-3 && s > 0, "%s: gradient of %s: rel err %.3g (max|ref| %.3g)", fx, p->name, e, s);
        if (e > gworst) gworst = e, gname = p->name;
    }
    printf("%s: max gradient rel err %.3g (%s), logits rel err %.3g\n", fx, gworst, gname, lerr);
    /* a second backward needs a new forward */
    st = llm_model_backward(m, 1.0f);
    CHECK(st != RS_OK, "%s: backward twice refused (%s)", fx, rs_last_error());
    /* gradients accumulate: forward + backward again (without zero_grad) doubles them */
    float *g1 = malloc(m->nparams * sizeof(float));
    memcpy(g1, m->grads, m->nparams * sizeof(float));
    st = llm_model_forward(m, tok, tgt, B, T, NULL, NULL);
    if (!st) st = llm_model_backward(m, 1.0f / (float)ntok);
    double aerr = 0;
    for (size_t i = 0; i < m->nparams; i++) aerr = fmax(aerr, fabs((double)m->grads[i] - 2.0 * g1[i]));
    aerr /= 2.0 * fx_max_abs(g1, m->nparams);
    CHECK(st == RS_OK && aerr <= 1e-6, "%s: a second backward accumulates (max|g2 - 2 g1| / max|2 g1| = %.3g)", fx,
          aerr);
    memcpy(m->grads, g1, m->nparams * sizeof(float));
    free(g1);

    /* save -> reload */
    char tmp[1200];
    const char *keep = getenv("LLM_KEEP_SAVED");
    if (keep && *keep) {
        snprintf(tmp, sizeof tmp, "%s/%s", keep, fx);
    } else {
        const char *td = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/rs_model_XXXXXX", td && *td ? td : "/tmp");
        if (!mkdtemp(tmp)) tmp[0] = '\0';
    }
    st = tmp[0] ? llm_model_save(m, tmp) : RS_EIO;
    CHECK(st == RS_OK, "%s: save to %s (%s)", fx, tmp, st ? rs_last_error() : "ok");
    llm_model *m2 = NULL;
    if (!st) st = llm_model_load(&m2, tmp);
    CHECK(st == RS_OK && m2 && m2->nparams == m->nparams &&
              !memcmp(m2->params, m->params, m->nparams * sizeof(float)) && same_config(&m->cfg, &m2->cfg),
          "%s: reload of the saved folder: %zu parameters bit-identical, same config (%s)", fx, m->nparams,
          st ? rs_last_error() : "ok");
    llm_model_free(m2);
    if (!(keep && *keep) && tmp[0]) rm_saved(tmp);

    /* KV-cache decoding: token by token, then in chunks */
    llm_kv *kv = NULL;
    st = llm_kv_alloc(&kv, m, T);
    CHECK(st == RS_OK, "%s: kv cache for %d positions", fx, T);
    if (!st) {
        float *lg = malloc(V * sizeof(float));
        double e1 = 0, e2 = 0, s = fx_max_abs(flogits, N * V);
        int ok = 1;
        for (int b = 0; b < B; b++) {
            llm_kv_reset(kv);
            for (int t = 0; t < T; t++) {
                ok &= llm_model_decode(m, kv, tok + (size_t)b * T + t, 1, lg) == RS_OK;
                const float *f = flogits + ((size_t)b * T + t) * V;
                for (int v = 0; v < V; v++) e1 = fmax(e1, fabs((double)lg[v] - f[v]));
            }
            ok &= llm_kv_len(kv) == T;
            llm_kv_reset(kv);
            static const int chunks[] = {5, 1, 7};
            int t = 0;
            for (int c = 0; t < T; c++) {
                int n = c < 3 ? chunks[c] : T - t;
                if (t + n > T) n = T - t;
                ok &= llm_model_decode(m, kv, tok + (size_t)b * T + t, n, lg) == RS_OK;
                t += n;
                const float *f = flogits + ((size_t)b * T + t - 1) * V;
                for (int v = 0; v < V; v++) e2 = fmax(e2, fabs((double)lg[v] - f[v]));
            }
        }
        CHECK(ok && e1 / s <= 1e-5, "%s: decode token by token vs forward: max|diff|/max|ref| %.3g", fx, e1 / s);
        CHECK(ok && e2 / s <= 1e-5, "%s: decode in chunks 5,1,7,%d vs forward: max|diff|/max|ref| %.3g", fx,
              T - 13, e2 / s);
        st = llm_model_decode(m, kv, tok, 1, lg);
        CHECK(st != RS_OK, "%s: decode past the cache refused (%s)", fx, rs_last_error());
        free(lg);
    }
    llm_kv_free(kv);

    /* batched decoding: the B rows as B sequences at different lengths (row b prefilled with
     * 1 + b % 3 tokens), then one token of every unfinished row per step, as one product */
    {
        llm_kv **kvs = calloc((size_t)B, sizeof *kvs), **act = calloc((size_t)B, sizeof *act), *work = NULL;
        int *len = calloc((size_t)B, sizeof *len), *who = calloc((size_t)B, sizeof *who);
        int32_t *nt = calloc((size_t)B, sizeof *nt);
        float *lg = malloc((size_t)B * V * sizeof(float));
        double e3 = 0, s = fx_max_abs(flogits, N * V);
        int ok = kvs && act && len && who && nt && lg && llm_kv_alloc(&work, m, B) == RS_OK, steps = 0, maxrows = 0;
        for (int b = 0; ok && b < B; b++) {
            len[b] = 1 + b % 3 < T ? 1 + b % 3 : T;
            ok &= llm_kv_alloc(&kvs[b], m, T) == RS_OK;
            ok &= ok && llm_model_decode(m, kvs[b], tok + (size_t)b * T, len[b], lg) == RS_OK;
        }
        for (;;) {
            int na = 0;
            for (int b = 0; ok && b < B; b++)
                if (len[b] < T) act[na] = kvs[b], who[na] = b, nt[na] = tok[(size_t)b * T + len[b]], na++;
            if (!ok || na == 0) break;
            if (na > maxrows) maxrows = na;
            ok &= llm_model_decode_batch(m, work, act, na, nt, lg) == RS_OK;
            for (int k = 0; ok && k < na; k++) {
                const int b = who[k];
                const float *f = flogits + ((size_t)b * T + len[b]) * V;
                for (int v = 0; v < V; v++) e3 = fmax(e3, fabs((double)lg[(size_t)k * V + v] - f[v]));
                len[b]++;
            }
            steps++;
        }
        CHECK(ok && steps > 0 && e3 / s <= 1e-5,
              "%s: batched decode (%d sequences at lengths 1-3 then %d steps, up to %d rows) vs forward: max|diff|/max|ref| %.3g",
              fx, B, steps, maxrows, e3 / s);
        if (ok && B >= 2) {
            act[0] = act[1] = kvs[0];
            nt[0] = nt[1] = 0;
            llm_kv_reset(kvs[0]);
            st = llm_model_decode_batch(m, work, act, 2, nt, lg);
            CHECK(st != RS_OK && strstr(rs_last_error(), "share a cache"), "%s: batched decode refuses one cache twice (%s)",
                  fx, rs_last_error());
        }
        if (ok) {
            st = llm_model_decode_batch(m, work, kvs + 1, 1, nt, lg);
            CHECK(B < 2 || (st != RS_OK && strstr(rs_last_error(), "full")), "%s: batched decode past a full cache refused (%s)",
                  fx, st ? rs_last_error() : "accepted");
        }
        for (int b = 0; kvs && b < B; b++) llm_kv_free(kvs[b]);
        llm_kv_free(work);
        free(kvs), free(act), free(len), free(who), free(nt), free(lg);
    }

    /* finite differences */
    float *g = malloc(m->nparams * sizeof(float));
    memcpy(g, m->grads, m->nparams * sizeof(float));
    double fdw = 0;
    fd_checks(m, g, tok, tgt, B, T, fx, rng, &fdw);
    printf("%s: finite differences: max |fd - g| / (|g| + tol_abs/0.03) = %.3g\n", fx, fdw);
    free(g);
    free(rgrad);
    free(flogits);
done:
    free(tok);
    free(tgt);
    free(rlogits);
    st_close(ref);
    llm_model_free(m);
}

/* ------------------------------------------------------------------------------------- */
/* loader errors, on copies of the neox_parallel / llama_gqa fixtures                      */

typedef struct {
    st_out *o;
    float **data;
    size_t n;
} tensors;

static int read_all(const char *path, tensors *ts)
{
    st_set *s = NULL;
    if (st_open(&s, path)) return 1;
    ts->n = st_count(s);
    ts->o = calloc(ts->n + 4, sizeof(st_out));
    ts->data = calloc(ts->n + 4, sizeof(float *));
    for (size_t i = 0; i < ts->n; i++) {
        const st_tensor *t = st_get(s, i);
        ts->data[i] = malloc(t->nelem * sizeof(float));
        st_read_f32(t, ts->data[i]);
        ts->o[i].name = strdup(t->name);
        ts->o[i].data = ts->data[i];
        ts->o[i].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) ts->o[i].shape[d] = t->shape[d];
    }
    st_close(s);
    return 0;
}

static void free_all(tensors *ts)
{
    for (size_t i = 0; i < ts->n; i++) {
        free((void *)ts->o[i].name);
        free(ts->data[i]);
    }
    free(ts->o);
    free(ts->data);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Write dir/config.json (text) and dir/model.safetensors (ts without tensor `drop`), load it. */
static int load_variant(const char *dir, const char *config, const tensors *ts, const char *drop, llm_model **m)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, config);
    st_out *o = malloc((ts->n + 1) * sizeof(st_out));
    size_t n = 0;
    for (size_t i = 0; i < ts->n; i++)
        if (!drop || strcmp(ts->o[i].name, drop)) o[n++] = ts->o[i];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    int st = st_write(p, o, n, NULL, 0);
    free(o);
    if (st) return -1;
    *m = NULL;
    return llm_model_load(m, dir);
}

static void test_errors(void)
{
    char dir[1200], p[1300];
    const char *td = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/rs_model_err_XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(dir)) {
        CHECK(0, "temporary folder");
        return;
    }
    size_t clen;
    snprintf(p, sizeof p, "%s/neox_parallel/config.json", fixture_root);
    char *config = fx_read_file(p, &clen);
    tensors ts = {0};
    snprintf(p, sizeof p, "%s/neox_parallel/model.safetensors", fixture_root);
    int bad = !config || read_all(p, &ts);
    CHECK(!bad, "error cases: read the neox_parallel fixture");
    if (bad) goto out;
    llm_model *m = NULL, *ref = NULL;
    snprintf(p, sizeof p, "%s/neox_parallel", fixture_root);
    llm_model_load(&ref, p);

    int st = load_variant(dir, config, &ts, "gpt_neox.layers.1.attention.dense.bias", &m);
    CHECK(st != RS_OK && !m && strstr(rs_last_error(), "gpt_neox.layers.1.attention.dense.bias"),
          "missing tensor refused: %s", rs_last_error());
    llm_model_free(m);

    /* wrong shape: (128, 64) stored as (64, 128) */
    size_t k = 0;
    while (k < ts.n && strcmp(ts.o[k].name, "gpt_neox.layers.0.mlp.dense_h_to_4h.weight")) k++;
    if (k < ts.n) {
        int64_t r = ts.o[k].shape[0];
        ts.o[k].shape[0] = ts.o[k].shape[1];
        ts.o[k].shape[1] = r;
        st = load_variant(dir, config, &ts, NULL, &m);
        CHECK(st != RS_OK && !m && strstr(rs_last_error(), "gpt_neox.layers.0.mlp.dense_h_to_4h.weight") &&
                  strstr(rs_last_error(), "model.safetensors"),
              "wrong shape refused: %s", rs_last_error());
        llm_model_free(m);
        ts.o[k].shape[1] = ts.o[k].shape[0];
        ts.o[k].shape[0] = r;
    } else {
        CHECK(0, "wrong shape: tensor not found in the fixture");
    }

    /* derived buffers are ignored; an unknown tensor is an error */
    float buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ts.o[ts.n] = (st_out){.name = "gpt_neox.layers.0.attention.rotary_emb.inv_freq", .data = buf, .ndim = 1, .shape = {4}};
    ts.o[ts.n + 1] = (st_out){.name = "gpt_neox.layers.1.attention.masked_bias", .data = buf, .ndim = 1, .shape = {1}};
    ts.o[ts.n + 2] = (st_out){.name = "gpt_neox.layers.0.attention.bias", .data = buf, .ndim = 2, .shape = {2, 2}};
    ts.n += 3;
    st = load_variant(dir, config, &ts, NULL, &m);
    CHECK(st == RS_OK && m && ref && !memcmp(m->params, ref->params, ref->nparams * sizeof(float)),
          "rotary_emb.inv_freq, attention.bias, attention.masked_bias ignored (%s)", st ? rs_last_error() : "ok");
    llm_model_free(m);
    ts.o[ts.n] = (st_out){.name = "gpt_neox.layers.0.mlp.extra.weight", .data = buf, .ndim = 1, .shape = {8}};
    ts.n += 1;
    st = load_variant(dir, config, &ts, NULL, &m);
    CHECK(st != RS_OK && !m && strstr(rs_last_error(), "gpt_neox.layers.0.mlp.extra.weight"),
          "unknown extra tensor refused: %s", rs_last_error());
    llm_model_free(m);
    ts.n -= 4;

    /* the same tensors in two shards with model.safetensors.index.json */
    {
        char sd[1300], idx[1400], sp[1400];
        snprintf(sd, sizeof sd, "%s/sharded", dir);
        mkdir(sd, 0777);
        snprintf(sp, sizeof sp, "%s/config.json", sd);
        write_text(sp, config);
        size_t half = ts.n / 2;
        snprintf(sp, sizeof sp, "%s/model-00001-of-00002.safetensors", sd);
        int w1 = st_write(sp, ts.o, half, NULL, 0);
        snprintf(sp, sizeof sp, "%s/model-00002-of-00002.safetensors", sd);
        int w2 = st_write(sp, ts.o + half, ts.n - half, NULL, 0);
        size_t cap = 256 + ts.n * 128, len = 0;
        char *j = malloc(cap);
        len += (size_t)snprintf(j + len, cap - len, "{\"metadata\": {}, \"weight_map\": {");
        for (size_t i = 0; i < ts.n; i++)
            len += (size_t)snprintf(j + len, cap - len, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "",
                                    ts.o[i].name, i < half ? 1 : 2);
        snprintf(j + len, cap - len, "}}\n");
        snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", sd);
        write_text(idx, j);
        free(j);
        st = w1 || w2 ? -1 : llm_model_load(&m, sd);
        CHECK(st == RS_OK && m && ref && !memcmp(m->params, ref->params, ref->nparams * sizeof(float)),
              "sharded checkpoint (2 shards + index) loads the same parameters (%s)", st ? rs_last_error() : "ok");
        llm_model_free(m);
        m = NULL;
        remove(idx);
        snprintf(sp, sizeof sp, "%s/model-00001-of-00002.safetensors", sd);
        remove(sp);
        snprintf(sp, sizeof sp, "%s/model-00002-of-00002.safetensors", sd);
        remove(sp);
        rm_saved(sd);
    }

    /* unknown model_type */
    char *bad_cfg = strdup(config), *mt = strstr(bad_cfg, "\"gpt_neox\"");
    if (mt) memcpy(mt, "\"mamba_xx\"", 10);
    st = load_variant(dir, bad_cfg, &ts, NULL, &m);
    CHECK(mt && st != RS_OK && !m && strstr(rs_last_error(), "model_type") && strstr(rs_last_error(), "config.json"),
          "unknown model_type refused: %s", rs_last_error());
    llm_model_free(m);
    free(bad_cfg);
    llm_model_free(ref);
    free_all(&ts);
    free(config);

    /* tied head stored (equal to the embedding, as older transformers did) or absent */
    snprintf(p, sizeof p, "%s/llama_gqa/config.json", fixture_root);
    config = fx_read_file(p, &clen);
    snprintf(p, sizeof p, "%s/llama_gqa/model.safetensors", fixture_root);
    memset(&ts, 0, sizeof ts);
    bad = !config || read_all(p, &ts);
    snprintf(p, sizeof p, "%s/llama_gqa", fixture_root);
    ref = NULL;
    if (!bad) bad = llm_model_load(&ref, p);
    CHECK(!bad && ref->cfg.tied && ref->w.lm_head == ref->w.wte, "llama_gqa: tied head is the embedding");
    if (!bad) {
        size_t e = 0;
        while (e < ts.n && strcmp(ts.o[e].name, "model.embed_tokens.weight")) e++;
        ts.o[ts.n] = ts.o[e];
        ts.o[ts.n].name = "lm_head.weight";
        ts.n++;
        st = load_variant(dir, config, &ts, NULL, &m);
        CHECK(st == RS_OK && m && m->nparams == ref->nparams &&
                  !memcmp(m->params, ref->params, ref->nparams * sizeof(float)),
              "tied model with lm_head.weight stored loads the same (%s)", st ? rs_last_error() : "ok");
        llm_model_free(m);
        ts.n--;
        st = load_variant(dir, config, &ts, "model.layers.0.self_attn.k_proj.weight", &m);
        CHECK(st != RS_OK && strstr(rs_last_error(), "model.layers.0.self_attn.k_proj.weight"),
              "llama: missing k_proj refused: %s", rs_last_error());
        llm_model_free(m);
    }
    llm_model_free(ref);
    if (config) free_all(&ts);
    free(config);
out:
    rm_saved(dir);
}

/* A random model: the parameter count of the config, HF's init, loss near log(V). */
static void test_init_random(void)
{
    llm_config c;
    char p[1300];
    snprintf(p, sizeof p, "%s/llama3_rope/config.json", fixture_root);
    if (llm_config_load(&c, p)) {
        CHECK(0, "init_random: config (%s)", rs_last_error());
        return;
    }
    rs_rng *rng = rs_rng_alloc(7, RS_STREAM_INIT);
    llm_model *m = NULL;
    int st = llm_model_init_random(&m, &c, rng);
    CHECK(st == RS_OK && m->nparams == llm_config_nparams(&c), "init_random: %zu parameters (config says %zu)",
          m ? m->nparams : 0, llm_config_nparams(&c));
    if (m) {
        int32_t tok[12], tgt[12];
        for (int i = 0; i < 12; i++) tok[i] = (int32_t)rs_rng_uint(rng, (unsigned long)c.vocab), tgt[i] = (i * 7) % c.vocab;
        float loss = 0;
        st = llm_model_forward(m, tok, tgt, 2, 6, &loss, NULL);
        CHECK(st == RS_OK && fabs(loss - log((double)c.vocab)) < 0.05, "init_random: loss %.4f near log(V) = %.4f",
              loss, log((double)c.vocab));
        double s = 0;
        for (size_t i = 0; i < m->nparams; i++) s += (double)m->params[i] * m->params[i];
        tok[0] = c.vocab;
        st = llm_model_forward(m, tok, tgt, 2, 6, &loss, NULL);
        CHECK(st != RS_OK, "token outside the vocabulary refused: %s", rs_last_error());
        CHECK(m->w.layers[0].ln1_w[0] == 1.0f && s > 0, "init_random: norm weights 1");
    }
    llm_model_free(m);
    rs_rng_free(rng);
}

/* Every site's input, in the order the forward visits them. */
typedef struct {
    float *buf;
    size_t n, cap;
} tap_rec;

static int rec_tap(void *ctx, int site, int layer, const float *inp, int N, int IC)
{
    (void)site, (void)layer;
    tap_rec *r = ctx;
    size_t k = (size_t)N * IC;
    if (r->n + k > r->cap) return RS_ERROR(RS_EINVAL, "rec_tap: full");
    memcpy(r->buf + r->n, inp, k * sizeof(float));
    r->n += k;
    return RS_OK;
}

/* llm_model_embed + llm_model_block_forward for l = 0..L-1 reproduce the forward's hidden
 * states bit for bit: every site's input, seen by a tap, equal byte for byte; a bad layer and
 * a token outside the vocabulary are refused. */
static void test_blocks(const char *fx)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", fixture_root, fx);
    llm_model *m = NULL;
    if (llm_model_load(&m, dir)) {
        CHECK(0, "%s: load (%s)", fx, rs_last_error());
        return;
    }
    const int B = 2, T = 7, N = B * T, C = m->cfg.d;
    int32_t tok[14];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 7919 + 13) % m->cfg.vocab);
    size_t cap = (size_t)N * m->cfg.n_layer * (size_t)(3 * C + 2 * m->cfg.d_ff + m->cfg.n_head * m->cfg.head_dim);
    tap_rec a = {malloc(cap * sizeof(float)), 0, cap}, b = {malloc(cap * sizeof(float)), 0, cap};
    float *x = malloc((size_t)N * C * sizeof(float));
    m->tap = rec_tap, m->tap_ctx = &a;
    int st = llm_model_forward(m, tok, NULL, B, T, NULL, NULL);
    m->tap_ctx = &b;
    st = st || llm_model_embed(m, tok, N, x);
    for (int l = 0; l < m->cfg.n_layer && !st; l++) st = llm_model_block_forward(m, l, x, x, B, T);
    CHECK(!st && a.n == b.n && a.n > 0 && !memcmp(a.buf, b.buf, a.n * sizeof(float)),
          "%s: embed + %d blocks one at a time = the forward's site inputs, bit for bit (%zu floats)", fx, m->cfg.n_layer,
          a.n);
    m->tap = NULL;
    int32_t bad = m->cfg.vocab;
    CHECK(llm_model_block_forward(m, m->cfg.n_layer, x, NULL, B, T) == RS_EINVAL &&
              llm_model_block_forward(m, -1, x, NULL, B, T) == RS_EINVAL && llm_model_embed(m, &bad, 1, x) == RS_EINVAL,
          "%s: block_forward refuses layers -1 and L, embed a token outside the vocabulary", fx);
    free(a.buf), free(b.buf), free(x);
    llm_model_free(m);
}

int main(void)
{
    const char *env = getenv("LLM_FIXTURES");
    if (env && *env) snprintf(fixture_root, sizeof fixture_root, "%s", env);
    rs_rng *rng = rs_rng_alloc(2024, RS_STREAM_DATA);
    for (size_t i = 0; i < NFIX; i++) test_fixture(FIXTURES[i], rng);
    for (size_t i = 0; i < NFIX; i++) test_blocks(FIXTURES[i]);
    rs_rng_free(rng);
    test_errors();
    test_init_random();
    return check_summary("test_model");
}
