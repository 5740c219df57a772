/* Tests of the layer kernels (llm/nn/kernels.c) against their naive twins (llm/nn/kernels_ref.c)
 * and against finite differences.
 *
 * For each shape configuration and each kernel pair:
 *   - fast vs _ref on random inputs, normwise relative error max|fast - ref| / max|ref|;
 *   - every backward: accumulation (onto a random gradient, and twice from zero = double),
 *     fast vs _ref, and central finite differences of L = sum(out * R) (R random) through the
 *     _ref forward at random coordinates, for the fast and the _ref gradient;
 *   - kernel-specific properties (causality, RoPE orthogonality and positions, ignored targets,
 *     aliasing, NULL gradients).
 * Then: the finite-difference harness must catch a perturbed gradient and a classic bug,
 * RoPE against transformers (tests/fixtures/rope_llama3.txt, tools/rope_fixture.py),
 * determinism (byte-identical reruns; thread-count independence for the non-BLAS kernels).
 *
 * Tolerances. fp32 unit roundoff u = 2^-24 = 6e-8. A K-term dot product in fp32 has a
 * normwise error ~ sqrt(K) u typically and K u at worst; K <= 300 here, so 1e-5 (~170 u)
 * for kernels that sum (matmul, norms, attention, cross-entropy) leaves a margin over
 * the typical error and is still far below any formula mistake (>= 1e-3). Elementwise
 * kernels (a few flops and one libm/polynomial call of ~2 ulp) get 2e-6. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/nn/kernels.h"
#include "llm/nn/model.h"
#include "quant/rng.h"
#include "tests/check.h"

#define TOL_SUM 1e-5  /* kernels with sums (see above) */
#define TOL_ELEM 2e-6 /* elementwise kernels */
#define TOL_ACC 1e-6  /* accumulation: G0 + g vs the kernel's G0 += g (one rounding per element) */
/* Finite differences: step h = 1e-2 (inputs are O(1)). Truncation error h^2 f'''/6 ~ 2e-5;
 * rounding noise of the fp32 outputs that depend on the coordinate, ~ u sqrt(m) / h ~ 1e-4
 * for m ~ 300 affected outputs. The error is measured as |fd - g_i| / (|g_i| + rms(g)). */
#define FD_H 1e-2
#define FD_TOL 2e-3
#define FD_NCOORD 12

static rs_rng *RNG;

/* --- small helpers ---------------------------------------------------------------------- */

static float *fnew(long n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

static void frand(float *x, long n, double sigma)
{
    for (long i = 0; i < n; i++) x[i] = (float)rs_rng_gaussian(RNG, sigma);
}

static float *frandn(long n, double sigma)
{
    float *x = fnew(n);
    frand(x, n, sigma);
    return x;
}

static float *fdup(const float *x, long n)
{
    float *y = fnew(n);
    memcpy(y, x, (size_t)n * sizeof *y);
    return y;
}

/* normwise relative error max|a - b| / max|b| */
static double relerr(const float *a, const float *b, long n)
{
    double num = 0.0, den = 0.0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= num)) num = d; /* NaN propagates */
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

/* The worst error seen per named kernel, printed at the end. */
static struct { char name[64]; double worst; } ERRS[64];
static int NERRS;

static void note_err(const char *name, double e)
{
    int i;
    for (i = 0; i < NERRS; i++)
        if (strcmp(ERRS[i].name, name) == 0) break;
    if (i == NERRS) {
        if (NERRS == 64) return;
        snprintf(ERRS[NERRS].name, sizeof ERRS[NERRS].name, "%s", name);
        ERRS[NERRS++].worst = 0.0;
    }
    if (!(e <= ERRS[i].worst)) ERRS[i].worst = e;
}

static char CFG[64]; /* the current configuration, in every message */

/* fast vs ref, recorded under `key` */
static void check_rel(const char *key, const char *what, const float *fast, const float *ref, long n, double tol)
{
    double e = relerr(fast, ref, n);
    note_err(key, e);
    CHECK(e <= tol, "%s %s: max rel err %.2e (tol %.0e)", CFG, what, e, tol);
}

/* --- finite differences ----------------------------------------------------------------- */

typedef double (*loss_fn)(void *ctx);

/* Central differences of L at the coordinates idx[0..k) of p, against up to two gradients
 * (g2 may be NULL). Returns the number of coordinates whose error exceeds tol; *maxerr is
 * the largest error. The actual steps are the float-rounded ones. */
static int fd_run(loss_fn L, void *ctx, float *p, const long *idx, int k, const float *g1, const float *g2,
                  long n, double tol, double *maxerr)
{
    double rms = 0.0;
    for (long i = 0; i < n; i++) rms += (double)g1[i] * g1[i];
    rms = sqrt(rms / (double)n);
    int bad = 0;
    *maxerr = 0.0;
    for (int j = 0; j < k; j++) {
        long i = idx[j];
        float p0 = p[i];
        double h = FD_H * fmax(1.0, fabs(p0));
        p[i] = (float)(p0 + h);
        double hp = (double)p[i] - p0, lp = L(ctx);
        p[i] = (float)(p0 - h);
        double hm = p0 - (double)p[i], lm = L(ctx);
        p[i] = p0;
        double fd = (lp - lm) / (hp + hm);
        for (int w = 0; w < 2; w++) {
            const float *g = w ? g2 : g1;
            if (!g) continue;
            double e = fabs(fd - g[i]) / (fabs(g[i]) + rms + 1e-30);
            if (!(e <= *maxerr)) *maxerr = e;
            if (!(e <= tol)) bad++;
        }
    }
    return bad;
}

static void rand_idx(long *idx, int k, long n)
{
    for (int j = 0; j < k; j++) idx[j] = (long)rs_rng_uint(RNG, (unsigned long)n);
}

/* FD check of the fast (gf) and ref (gr) gradients of L with respect to p (n floats) at
 * FD_NCOORD random coordinates (or the given ones) */
static void fd_check(const char *key, const char *what, loss_fn L, void *ctx, float *p, long n, const float *gf,
                     const float *gr, const long *given, int ngiven)
{
    long idx[64];
    int k = ngiven ? ngiven : FD_NCOORD;
    if (ngiven) memcpy(idx, given, (size_t)k * sizeof *idx);
    else rand_idx(idx, k, n);
    double me;
    int bad = fd_run(L, ctx, p, idx, k, gf, gr, n, FD_TOL, &me);
    char nk[64];
    snprintf(nk, sizeof nk, "fd %s", key);
    note_err(nk, me);
    CHECK(bad == 0, "%s %s: finite differences at %d coordinates, max err %.2e (tol %.0e)", CFG, what, k, me,
          FD_TOL);
}

static double dot_out(const float *out, const float *R, long n)
{
    double s = 0.0;
    for (long i = 0; i < n; i++) s += (double)out[i] * R[i];
    return s;
}

/* --- the configurations ----------------------------------------------------------------- */

typedef struct {
    int B, T, C, NH, NKV, HS, rot, F, V;
} cfg_t;

/* every buffer a test needs, for the loss functions */
typedef struct {
    cfg_t c;
    int N, OC;
    float *inp, *w, *b, *out, *R, *s1, *s2, *tmp;
    int32_t *tok;
    float *cos_t, *sin_t;
    int stride, H, off; /* rope: which heads of the buffer */
    float scale;
} ctx_t;

/* Backward accumulation and accuracy for one backward with ng gradient arrays.
 * bwd(ctx, g, ref) adds the gradients into g[0..ng). Returns the ref gradients from zero
 * (gz) and the fast ones from zero (gf), for the finite-difference checks (caller frees). */
typedef void (*bwd_fn)(ctx_t *x, float **g, int ref);

static void test_backward(const char *key, ctx_t *x, bwd_fn bwd, int ng, const long *len, const char *const *gname,
                          double tol, float **gz, float **gf)
{
    float *g0[3], *ga[3], *gr[3], *g2[3];
    for (int j = 0; j < ng; j++) {
        g0[j] = frandn(len[j], 1.0);
        ga[j] = fdup(g0[j], len[j]);
        gr[j] = fdup(g0[j], len[j]);
        gz[j] = fnew(len[j]);
        gf[j] = fnew(len[j]);
    }
    bwd(x, gz, 1); /* ref from zero: the gradient */
    bwd(x, gr, 1); /* ref onto g0 */
    bwd(x, gf, 0); /* fast from zero */
    bwd(x, ga, 0); /* fast onto g0 */
    for (int j = 0; j < ng; j++) {
        char what[96];
        snprintf(what, sizeof what, "%s %s fast vs ref", key, gname[j]);
        check_rel(key, what, gf[j], gz[j], len[j], tol);
        float *e = fnew(len[j]);
        for (long i = 0; i < len[j]; i++) e[i] = g0[j][i] + gz[j][i];
        double er = relerr(gr[j], e, len[j]);
        for (long i = 0; i < len[j]; i++) e[i] = g0[j][i] + gf[j][i];
        double ef = relerr(ga[j], e, len[j]);
        CHECK(er <= TOL_ACC && ef <= TOL_ACC, "%s %s %s accumulates onto a random gradient: ref %.2e fast %.2e", CFG,
              key, gname[j], er, ef);
        free(e);
        g2[j] = fdup(gf[j], len[j]);
    }
    bwd(x, g2, 0); /* fast a second time from the first result: twice the gradient */
    for (int j = 0; j < ng; j++) {
        float *e = fnew(len[j]);
        for (long i = 0; i < len[j]; i++) e[i] = 2.0f * gf[j][i];
        double er = relerr(g2[j], e, len[j]);
        CHECK(er <= TOL_ACC, "%s %s %s: backward twice = 2 x once (rel err %.2e)", CFG, key, gname[j], er);
        free(e);
        free(g0[j]);
        free(ga[j]);
        free(gr[j]);
        free(g2[j]);
    }
}

static void free_grads(float **g, int ng)
{
    for (int j = 0; j < ng; j++) free(g[j]);
}

/* --- embedding -------------------------------------------------------------------------- */

static double L_embed(void *p)
{
    ctx_t *x = p;
    lk_embedding_forward_ref(x->out, x->tok, x->w, x->N, x->c.C);
    return dot_out(x->out, x->R, (long)x->N * x->c.C);
}

static void bwd_embed(ctx_t *x, float **g, int ref)
{
    (ref ? lk_embedding_backward_ref : lk_embedding_backward)(g[0], x->R, x->tok, x->N, x->c.C, x->c.V);
}

static void test_embedding(ctx_t *x)
{
    int N = x->N, C = x->c.C, V = x->c.V;
    float *of = fnew((long)N * C), *orf = fnew((long)N * C);
    lk_embedding_forward(of, x->tok, x->w, N, C);
    lk_embedding_forward_ref(orf, x->tok, x->w, N, C);
    CHECK(memcmp(of, orf, (size_t)N * C * sizeof *of) == 0, "%s embedding forward: fast == ref (a copy)", CFG);
    long len[1] = {(long)V * C};
    const char *gn[1] = {"dwte"};
    float *gz[1], *gf[1];
    test_backward("embedding", x, bwd_embed, 1, len, gn, TOL_ELEM, gz, gf);
    /* the coordinates of the repeated token (tok[0] == tok[N-1]) and random ones */
    long idx[FD_NCOORD];
    rand_idx(idx, FD_NCOORD, (long)V * C);
    idx[0] = (long)x->tok[0] * C;
    idx[1] = (long)x->tok[0] * C + C - 1;
    fd_check("embedding", "embedding dwte", L_embed, x, x->w, (long)V * C, gf[0], gz[0], idx, FD_NCOORD);
    free_grads(gz, 1);
    free_grads(gf, 1);
    free(of);
    free(orf);
}

/* --- matmul ----------------------------------------------------------------------------- */

static double L_matmul(void *p)
{
    ctx_t *x = p;
    lk_matmul_forward_ref(x->out, x->inp, x->w, x->b, x->N, x->c.C, x->OC);
    return dot_out(x->out, x->R, (long)x->N * x->OC);
}

static void bwd_matmul(ctx_t *x, float **g, int ref)
{
    (ref ? lk_matmul_backward_ref : lk_matmul_backward)(g[0], g[1], g[2], x->R, x->inp, x->w, x->N, x->c.C, x->OC);
}

static void test_matmul(ctx_t *x)
{
    int N = x->N, C = x->c.C, OC = x->OC;
    float *of = fnew((long)N * OC), *orf = fnew((long)N * OC);
    for (int withb = 0; withb < 2; withb++) {
        const float *b = withb ? x->b : NULL;
        frand(of, (long)N * OC, 1.0); /* forward overwrites */
        lk_matmul_forward(of, x->inp, x->w, b, N, C, OC);
        lk_matmul_forward_ref(orf, x->inp, x->w, b, N, C, OC);
        check_rel("matmul fwd", withb ? "matmul forward (bias)" : "matmul forward (no bias)", of, orf, (long)N * OC,
                  TOL_SUM);
        /* one row (decode's sgemv path): the last row of the same product, over an output
         * that holds NaN (never read without a bias) */
        const float *in1 = x->inp + (size_t)(N - 1) * C;
        for (int o = 0; o < OC; o++) of[o] = NAN;
        lk_matmul_forward(of, in1, x->w, b, 1, C, OC);
        lk_matmul_forward_ref(orf, in1, x->w, b, 1, C, OC);
        check_rel("matmul fwd", withb ? "matmul forward, one row (bias)" : "matmul forward, one row (no bias)", of, orf,
                  OC, TOL_SUM);
    }
    long len[3] = {(long)N * C, (long)OC * C, OC};
    const char *gn[3] = {"dinp", "dw", "dbias"};
    float *gz[3], *gf[3];
    test_backward("matmul bwd", x, bwd_matmul, 3, len, gn, TOL_SUM, gz, gf);
    fd_check("matmul", "matmul dinp", L_matmul, x, x->inp, len[0], gf[0], gz[0], NULL, 0);
    fd_check("matmul", "matmul dw", L_matmul, x, x->w, len[1], gf[1], gz[1], NULL, 0);
    fd_check("matmul", "matmul dbias", L_matmul, x, x->b, len[2], gf[2], gz[2], NULL, 0);
    /* NULL gradients are skipped, the others unchanged */
    for (int j = 0; j < 3; j++) {
        float *g[3] = {NULL, NULL, NULL};
        g[j] = fnew(len[j]);
        lk_matmul_backward(g[0], g[1], g[2], x->R, x->inp, x->w, N, C, OC);
        CHECK(memcmp(g[j], gf[j], (size_t)len[j] * sizeof(float)) == 0,
              "%s matmul backward with only %s wanted: same bytes as with all three", CFG, gn[j]);
        free(g[j]);
    }
    free_grads(gz, 3);
    free_grads(gf, 3);
    free(of);
    free(orf);
}

/* --- LayerNorm, RMSNorm ----------------------------------------------------------------- */

static double L_layernorm(void *p)
{
    ctx_t *x = p;
    lk_layernorm_forward_ref(x->out, x->s1, x->s2, x->inp, x->w, x->b, x->N, x->c.C, 1e-5f);
    return dot_out(x->out, x->R, (long)x->N * x->c.C);
}

/* s1 = mean, s2 = rstd from the ref forward (the same saved values for both backwards) */
static void bwd_layernorm(ctx_t *x, float **g, int ref)
{
    (ref ? lk_layernorm_backward_ref : lk_layernorm_backward)(g[0], g[1], g[2], x->R, x->inp, x->w, x->s1, x->s2,
                                                             x->N, x->c.C);
}

static void test_layernorm(ctx_t *x)
{
    int N = x->N, C = x->c.C;
    long NC = (long)N * C;
    float *of = fnew(NC), *mf = fnew(N), *rf = fnew(N), *orf = fnew(NC);
    /* a row offset makes the mean matter; w, b around 1 and 0 */
    for (int withb = 0; withb < 2; withb++) {
        const float *b = withb ? x->b : NULL;
        lk_layernorm_forward(of, mf, rf, x->inp, x->w, b, N, C, 1e-5f);
        lk_layernorm_forward_ref(orf, x->s1, x->s2, x->inp, x->w, b, N, C, 1e-5f);
        check_rel("layernorm fwd", withb ? "layernorm forward out" : "layernorm forward out (no bias)", of, orf, NC,
                  TOL_SUM);
    }
    check_rel("layernorm fwd", "layernorm forward mean", mf, x->s1, N, TOL_SUM);
    check_rel("layernorm fwd", "layernorm forward rstd", rf, x->s2, N, TOL_SUM);
    long len[3] = {NC, C, C};
    const char *gn[3] = {"dinp", "dw", "db"};
    float *gz[3], *gf[3];
    test_backward("layernorm bwd", x, bwd_layernorm, 3, len, gn, TOL_SUM, gz, gf);
    float *s1 = fdup(x->s1, N), *s2 = fdup(x->s2, N); /* the losses overwrite s1, s2 */
    fd_check("layernorm", "layernorm dinp", L_layernorm, x, x->inp, NC, gf[0], gz[0], NULL, 0);
    fd_check("layernorm", "layernorm dw", L_layernorm, x, x->w, C, gf[1], gz[1], NULL, 0);
    fd_check("layernorm", "layernorm db", L_layernorm, x, x->b, C, gf[2], gz[2], NULL, 0);
    memcpy(x->s1, s1, (size_t)N * sizeof *s1);
    memcpy(x->s2, s2, (size_t)N * sizeof *s2);
    free(s1);
    free(s2);
    free_grads(gz, 3);
    free_grads(gf, 3);
    free(of);
    free(mf);
    free(rf);
    free(orf);
}

static double L_rmsnorm(void *p)
{
    ctx_t *x = p;
    lk_rmsnorm_forward_ref(x->out, x->s2, x->inp, x->w, x->N, x->c.C, 1e-6f);
    return dot_out(x->out, x->R, (long)x->N * x->c.C);
}

static void bwd_rmsnorm(ctx_t *x, float **g, int ref)
{
    (ref ? lk_rmsnorm_backward_ref : lk_rmsnorm_backward)(g[0], g[1], x->R, x->inp, x->w, x->s2, x->N, x->c.C);
}

static void test_rmsnorm(ctx_t *x)
{
    int N = x->N, C = x->c.C;
    long NC = (long)N * C;
    float *of = fnew(NC), *rf = fnew(N), *orf = fnew(NC);
    lk_rmsnorm_forward(of, rf, x->inp, x->w, N, C, 1e-6f);
    lk_rmsnorm_forward_ref(orf, x->s2, x->inp, x->w, N, C, 1e-6f);
    check_rel("rmsnorm fwd", "rmsnorm forward out", of, orf, NC, TOL_SUM);
    check_rel("rmsnorm fwd", "rmsnorm forward rstd", rf, x->s2, N, TOL_SUM);
    long len[2] = {NC, C};
    const char *gn[2] = {"dinp", "dw"};
    float *gz[2], *gf[2];
    test_backward("rmsnorm bwd", x, bwd_rmsnorm, 2, len, gn, TOL_SUM, gz, gf);
    float *s2 = fdup(x->s2, N);
    fd_check("rmsnorm", "rmsnorm dinp", L_rmsnorm, x, x->inp, NC, gf[0], gz[0], NULL, 0);
    fd_check("rmsnorm", "rmsnorm dw", L_rmsnorm, x, x->w, C, gf[1], gz[1], NULL, 0);
    memcpy(x->s2, s2, (size_t)N * sizeof *s2);
    free(s2);
    free_grads(gz, 2);
    free_grads(gf, 2);
    free(of);
    free(rf);
    free(orf);
}

/* --- RoPE ------------------------------------------------------------------------------- */

/* x->tmp = rope_ref(x->inp) on heads [off, off + H) of every row of stride x->stride */
static double L_rope(void *p)
{
    ctx_t *x = p;
    long n = (long)x->N * x->stride;
    memcpy(x->tmp, x->inp, (size_t)n * sizeof(float));
    lk_rope_forward_ref(x->tmp + x->off, x->stride, x->cos_t, x->sin_t, x->c.B, x->c.T, x->H, x->c.HS, x->c.rot, 0);
    return dot_out(x->tmp, x->R, n);
}

static void test_rope(ctx_t *x)
{
    cfg_t c = x->c;
    int N = x->N, QKV = (c.NH + 2 * c.NKV) * c.HS, half = c.rot / 2;
    long n = (long)N * QKV;
    x->stride = QKV;
    for (int part = 0; part < 2; part++) {
        /* the q heads, then the k heads, of a fused qkv buffer */
        x->H = part ? c.NKV : c.NH;
        x->off = part ? c.NH * c.HS : 0;
        const char *pn = part ? "k heads" : "q heads";
        float *yf = fdup(x->inp, n), *yr = fdup(x->inp, n);
        lk_rope_forward(yf + x->off, QKV, x->cos_t, x->sin_t, c.B, c.T, x->H, c.HS, c.rot, 0);
        lk_rope_forward_ref(yr + x->off, QKV, x->cos_t, x->sin_t, c.B, c.T, x->H, c.HS, c.rot, 0);
        char what[96];
        snprintf(what, sizeof what, "rope forward (%s)", pn);
        check_rel("rope fwd", what, yf, yr, n, TOL_ELEM);
        /* untouched: other heads and the dims past rot_dim; rotated part keeps its norm */
        long changed_outside = 0;
        double worst_norm = 0.0;
        for (int r = 0; r < N; r++)
            for (int j = 0; j < QKV; j++) {
                int h = j / c.HS - (part ? c.NH : 0), d = j % c.HS;
                int inside = h >= 0 && h < x->H && d < c.rot;
                long i = (long)r * QKV + j;
                if (!inside && memcmp(&yf[i], &x->inp[i], sizeof(float)) != 0) changed_outside++;
                if (inside && d == 0) {
                    double n0 = 0.0, n1 = 0.0;
                    for (int e = 0; e < c.rot; e++) {
                        n0 += (double)x->inp[i + e] * x->inp[i + e];
                        n1 += (double)yf[i + e] * yf[i + e];
                    }
                    double dn = fabs(n1 - n0) / n0;
                    if (dn > worst_norm) worst_norm = dn;
                }
            }
        CHECK(changed_outside == 0, "%s rope (%s): other heads and dims >= rot_dim untouched (%ld changed)", CFG, pn,
              changed_outside);
        CHECK(worst_norm <= TOL_ELEM, "%s rope (%s): rotation keeps the norm of every head (worst rel %.2e)", CFG, pn,
              worst_norm);
        /* backward(forward(x)) = x: the transpose is the inverse */
        lk_rope_backward(yf + x->off, QKV, x->cos_t, x->sin_t, c.B, c.T, x->H, c.HS, c.rot, 0);
        double ei = relerr(yf, x->inp, n);
        CHECK(ei <= TOL_ELEM, "%s rope (%s): backward(forward(x)) = x (rel err %.2e)", CFG, pn, ei);
        /* backward fast vs ref, and against finite differences */
        float *gf = fdup(x->R, n), *gr = fdup(x->R, n);
        lk_rope_backward(gf + x->off, QKV, x->cos_t, x->sin_t, c.B, c.T, x->H, c.HS, c.rot, 0);
        lk_rope_backward_ref(gr + x->off, QKV, x->cos_t, x->sin_t, c.B, c.T, x->H, c.HS, c.rot, 0);
        snprintf(what, sizeof what, "rope backward (%s)", pn);
        check_rel("rope bwd", what, gf, gr, n, TOL_ELEM);
        /* coordinates inside the rotated dims (half of them in the second half) */
        long idx[FD_NCOORD];
        for (int j = 0; j < FD_NCOORD; j++) {
            int r = (int)rs_rng_uint(RNG, N), h = (int)rs_rng_uint(RNG, x->H), d = (int)rs_rng_uint(RNG, half);
            idx[j] = (long)r * QKV + x->off + (long)h * c.HS + d + (j & 1 ? half : 0);
        }
        snprintf(what, sizeof what, "rope d(%s)", pn);
        fd_check("rope", what, L_rope, x, x->inp, n, gf, gr, idx, FD_NCOORD);
        free(gf);
        free(gr);
        free(yf);
        free(yr);
    }
    /* positions: pos0 = p on one token equals row p of a forward from position 0 */
    if (c.T >= 6) {
        int HS = c.HS, H = c.NH, row = H * HS;
        float *y6 = fdup(x->inp, 6L * row), *y1f = fdup(x->inp + 5L * row, row), *y1r = fdup(x->inp + 5L * row, row);
        lk_rope_forward(y6, row, x->cos_t, x->sin_t, 1, 6, H, HS, c.rot, 0);
        lk_rope_forward(y1f, row, x->cos_t, x->sin_t, 1, 1, H, HS, c.rot, 5);
        lk_rope_forward_ref(y1r, row, x->cos_t, x->sin_t, 1, 1, H, HS, c.rot, 5);
        CHECK(memcmp(y1f, y6 + 5L * row, (size_t)row * sizeof(float)) == 0,
              "%s rope: pos0 = 5 on T = 1 equals row 5 of a T = 6 forward (bytes)", CFG);
        double e = relerr(y1r, y1f, row);
        CHECK(e <= TOL_ELEM, "%s rope ref: pos0 = 5 on T = 1 vs row 5 (rel err %.2e)", CFG, e);
        /* and pos0 shifts: the same token at position 0 comes out unchanged */
        float *y0 = fdup(x->inp, row);
        lk_rope_forward(y0, row, x->cos_t, x->sin_t, 1, 1, H, HS, c.rot, 0);
        CHECK(memcmp(y0, x->inp, (size_t)row * sizeof(float)) == 0 &&
                  memcmp(y1f, x->inp + 5L * row, (size_t)row * sizeof(float)) != 0,
              "%s rope: position 0 is the identity, position 5 is not", CFG);
        free(y0);
        free(y6);
        free(y1f);
        free(y1r);
    }
}

/* --- attention -------------------------------------------------------------------------- */

static double L_attention(void *p)
{
    ctx_t *x = p;
    cfg_t c = x->c;
    lk_attention_forward_ref(x->out, x->tmp, x->inp, c.B, c.T, c.NH, c.NKV, c.HS);
    return dot_out(x->out, x->R, (long)x->N * c.NH * c.HS);
}

/* s1 = att from the ref forward, s2 = datt scratch */
static void bwd_attention(ctx_t *x, float **g, int ref)
{
    cfg_t c = x->c;
    (ref ? lk_attention_backward_ref : lk_attention_backward)(g[0], x->s2, x->R, x->inp, x->s1, c.B, c.T, c.NH, c.NKV,
                                                             c.HS);
}

static void test_attention(ctx_t *x)
{
    cfg_t c = x->c;
    int N = x->N, QKV = (c.NH + 2 * c.NKV) * c.HS, OC = c.NH * c.HS;
    long nqkv = (long)N * QKV, nout = (long)N * OC, natt = (long)c.B * c.NH * c.T * c.T;
    float *of = fnew(nout), *af = frandn(natt, 1.0), *orf = fnew(nout);
    lk_attention_forward(of, af, x->inp, c.B, c.T, c.NH, c.NKV, c.HS);
    lk_attention_forward_ref(orf, x->s1, x->inp, c.B, c.T, c.NH, c.NKV, c.HS);
    check_rel("attention fwd", "attention forward out", of, orf, nout, TOL_SUM);
    check_rel("attention fwd", "attention forward att", af, x->s1, natt, TOL_SUM);
    /* att: zero above the diagonal (exactly, every byte written), rows sum to 1 */
    long above = 0;
    double worst_sum = 0.0;
    for (long bh = 0; bh < (long)c.B * c.NH; bh++)
        for (int t = 0; t < c.T; t++) {
            const float *a = af + (bh * c.T + t) * c.T;
            double s = 0.0;
            for (int u = 0; u < c.T; u++) {
                if (u > t && a[u] != 0.0f) above++;
                s += a[u];
            }
            if (fabs(s - 1.0) > worst_sum) worst_sum = fabs(s - 1.0);
        }
    CHECK(above == 0 && worst_sum <= TOL_SUM, "%s attention: att is 0 above the diagonal (%ld not) and rows sum to 1 "
          "(worst |sum - 1| %.2e)", CFG, above, worst_sum);
    /* causality: changing token t* changes no output before t*, and does change t* */
    if (c.T > 1) {
        int ts = c.T / 2;
        float *q2 = fdup(x->inp, nqkv), *o2 = fnew(nout), *a2 = fnew(natt), *o2r = fnew(nout), *a2r = fnew(natt);
        for (int b = 0; b < c.B; b++) frand(q2 + ((long)b * c.T + ts) * QKV, QKV, 1.0);
        lk_attention_forward(o2, a2, q2, c.B, c.T, c.NH, c.NKV, c.HS);
        lk_attention_forward_ref(o2r, a2r, q2, c.B, c.T, c.NH, c.NKV, c.HS);
        int same_f = 1, same_r = 1, diff_at = 0;
        for (int b = 0; b < c.B; b++) {
            size_t off = (size_t)b * c.T * OC, len = (size_t)ts * OC * sizeof(float);
            same_f &= memcmp(o2 + off, of + off, len) == 0;
            same_r &= memcmp(o2r + off, orf + off, len) == 0;
            diff_at |= memcmp(o2 + off + (size_t)ts * OC, of + off + (size_t)ts * OC, OC * sizeof(float)) != 0;
        }
        CHECK(same_f && same_r && diff_at, "%s attention causal: new token %d leaves outputs 0..%d unchanged "
              "(fast %d, ref %d) and changes its own (%d)", CFG, ts, ts - 1, same_f, same_r, diff_at);
        free(q2);
        free(o2);
        free(a2);
        free(o2r);
        free(a2r);
    }
    long len[1] = {nqkv};
    const char *gn[1] = {"dqkv"};
    float *gz[1], *gf[1];
    test_backward("attention bwd", x, bwd_attention, 1, len, gn, TOL_SUM, gz, gf);
    /* finite differences on q, k and v coordinates */
    for (int part = 0; part < 3; part++) {
        long idx[FD_NCOORD];
        int base = part == 0 ? 0 : part == 1 ? c.NH * c.HS : (c.NH + c.NKV) * c.HS;
        int width = part == 0 ? c.NH * c.HS : c.NKV * c.HS;
        for (int j = 0; j < FD_NCOORD; j++)
            idx[j] = (long)rs_rng_uint(RNG, N) * QKV + base + (long)rs_rng_uint(RNG, width);
        const char *nm[3] = {"attention dq", "attention dk", "attention dv"};
        fd_check("attention", nm[part], L_attention, x, x->inp, nqkv, gf[0], gz[0], idx, FD_NCOORD);
    }
    free_grads(gz, 1);
    free_grads(gf, 1);
    free(of);
    free(af);
    free(orf);
}

/* --- activations ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    void (*fwd)(float *, const float *, long), (*fwd_ref)(float *, const float *, long);
    void (*bwd)(float *, const float *, const float *, long), (*bwd_ref)(float *, const float *, const float *, long);
} act_t;

static const act_t ACTS[2] = {
    {"gelu", lk_gelu_forward, lk_gelu_forward_ref, lk_gelu_backward, lk_gelu_backward_ref},
    {"gelu_tanh", lk_gelu_tanh_forward, lk_gelu_tanh_forward_ref, lk_gelu_tanh_backward, lk_gelu_tanh_backward_ref},
};
static const act_t *ACT;

static double L_act(void *p)
{
    ctx_t *x = p;
    ACT->fwd_ref(x->out, x->inp, (long)x->N * x->c.F);
    return dot_out(x->out, x->R, (long)x->N * x->c.F);
}

static void bwd_act(ctx_t *x, float **g, int ref)
{
    (ref ? ACT->bwd_ref : ACT->bwd)(g[0], x->inp, x->R, (long)x->N * x->c.F);
}

static double L_swiglu(void *p)
{
    ctx_t *x = p;
    lk_swiglu_forward_ref(x->out, x->inp, x->N, x->c.F);
    return dot_out(x->out, x->R, (long)x->N * x->c.F);
}

static void bwd_swiglu(ctx_t *x, float **g, int ref)
{
    (ref ? lk_swiglu_backward_ref : lk_swiglu_backward)(g[0], x->inp, x->R, x->N, x->c.F);
}

static void test_activations(ctx_t *x)
{
    long n = (long)x->N * x->c.F;
    float *of = fnew(2 * n), *orf = fnew(2 * n);
    for (int a = 0; a < 2; a++) {
        ACT = &ACTS[a];
        char key[48], what[64];
        ACT->fwd(of, x->inp, n);
        ACT->fwd_ref(orf, x->inp, n);
        snprintf(key, sizeof key, "%s fwd", ACT->name);
        snprintf(what, sizeof what, "%s forward", ACT->name);
        check_rel(key, what, of, orf, n, TOL_ELEM);
        snprintf(key, sizeof key, "%s bwd", ACT->name);
        long len[1] = {n};
        const char *gn[1] = {"dinp"};
        float *gz[1], *gf[1];
        test_backward(key, x, bwd_act, 1, len, gn, TOL_ELEM, gz, gf);
        snprintf(what, sizeof what, "%s dinp", ACT->name);
        fd_check(ACT->name, what, L_act, x, x->inp, n, gf[0], gz[0], NULL, 0);
        free_grads(gz, 1);
        free_grads(gf, 1);
    }
    lk_swiglu_forward(of, x->inp, x->N, x->c.F);
    lk_swiglu_forward_ref(orf, x->inp, x->N, x->c.F);
    check_rel("swiglu fwd", "swiglu forward", of, orf, n, TOL_ELEM);
    long len[1] = {2 * n};
    const char *gn[1] = {"dinp"};
    float *gz[1], *gf[1];
    test_backward("swiglu bwd", x, bwd_swiglu, 1, len, gn, TOL_ELEM, gz, gf);
    long idx[FD_NCOORD]; /* half gate, half up */
    for (int j = 0; j < FD_NCOORD; j++)
        idx[j] = (long)rs_rng_uint(RNG, x->N) * 2 * x->c.F + (j & 1 ? x->c.F : 0) + (long)rs_rng_uint(RNG, x->c.F);
    fd_check("swiglu", "swiglu d[gate|up]", L_swiglu, x, x->inp, 2 * n, gf[0], gz[0], idx, FD_NCOORD);
    free_grads(gz, 1);
    free_grads(gf, 1);
    free(of);
    free(orf);
}

/* Activations element by element on a grid, tails included: forward values relatively
 * accurate (the GeLU tail x Phi(x) ~ 1e-23 at x = -10 must not be an absolute-error
 * artefact). In the tail the float argument -x^2/2 of the exponential is itself rounded,
 * a relative error ~ (x^2/2) u = 50 u = 3e-6 at |x| = 10: tolerance 2e-5. Derivatives to
 * 1e-6 max(1, |d|) (they are O(1), except swiglu's d/dup = silu(gate)). The grids stop
 * where the fast kernels leave the normal float range (exp below -87.3 flushes to 0). */
static void test_activation_ranges(void)
{
    enum { G = 2001 };
    static float x[2 * G], yf[2 * G], yr[2 * G], ones[2 * G];
    struct { const char *name; double lo, hi; int k; } rg[3] = {
        {"gelu", -10.0, 10.0, 0}, {"gelu_tanh", -9.0, 10.0, 1}, {"swiglu (silu)", -80.0, 80.0, 2}};
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < G; i++) {
            x[i] = (float)(rg[r].lo + (rg[r].hi - rg[r].lo) * i / (G - 1));
            x[G + i] = 1.0f; /* swiglu: up = 1 */
            ones[i] = 1.0f;
        }
        if (rg[r].k < 2) {
            ACTS[rg[r].k].fwd(yf, x, G);
            ACTS[rg[r].k].fwd_ref(yr, x, G);
        } else {
            lk_swiglu_forward(yf, x, 1, G);
            lk_swiglu_forward_ref(yr, x, 1, G);
        }
        double wf = 0.0, wb = 0.0;
        float wx = 0.0f;
        for (int i = 0; i < G; i++) {
            double e = fabs((double)yf[i] - yr[i]) / fabs((double)yr[i]);
            if (yr[i] != 0.0f && !(e <= wf)) { wf = e; wx = x[i]; }
        }
        memset(yf, 0, sizeof yf);
        memset(yr, 0, sizeof yr);
        if (rg[r].k < 2) {
            ACTS[rg[r].k].bwd(yf, x, ones, G);
            ACTS[rg[r].k].bwd_ref(yr, x, ones, G);
        } else {
            lk_swiglu_backward(yf, x, ones, 1, G);
            lk_swiglu_backward_ref(yr, x, ones, 1, G);
        }
        for (int i = 0; i < (rg[r].k < 2 ? G : 2 * G); i++) {
            double e = fabs((double)yf[i] - yr[i]) / fmax(1.0, fabs(yr[i]));
            if (!(e <= wb)) wb = e;
        }
        CHECK(wf <= 2e-5 && wb <= 1e-6, "%s on [%g, %g]: forward max rel err %.2e (at x = %g, tol 2e-5), derivative "
              "max err %.2e (tol 1e-6)", rg[r].name, rg[r].lo, rg[r].hi, wf, wx, wb);
    }
}

/* --- cross-entropy ---------------------------------------------------------------------- */

static double L_xent(void *p)
{
    ctx_t *x = p;
    lk_xent_forward_ref(x->s1, x->s2, x->inp, x->tok, x->N, x->c.V);
    double s = 0.0;
    for (int i = 0; i < x->N; i++) s += x->s1[i];
    return x->scale * s;
}

static void test_xent(ctx_t *x)
{
    int N = x->N, V = x->c.V;
    long n = (long)N * V;
    int expect = 0;
    for (int i = 0; i < N; i++) expect += x->tok[i] >= 0;
    float *lf = frandn(N, 1.0), *ef = fnew(N), *lr = fnew(N), *er = fnew(N);
    int cf = lk_xent_forward(lf, ef, x->inp, x->tok, N, V);
    int cr = lk_xent_forward_ref(lr, er, x->inp, x->tok, N, V);
    CHECK(cf == expect && cr == expect, "%s xent: count of non-ignored rows fast %d ref %d (expect %d)", CFG, cf, cr,
          expect);
    check_rel("xent fwd", "xent losses", lf, lr, N, TOL_SUM);
    check_rel("xent fwd", "xent lse", ef, er, N, TOL_SUM);
    int zero_ok = 1;
    for (int i = 0; i < N; i++)
        if (x->tok[i] < 0 && (lf[i] != 0.0f || lr[i] != 0.0f)) zero_ok = 0;
    CHECK(zero_ok, "%s xent: ignored rows have loss exactly 0", CFG);
    /* backward overwrites (garbage in dlogits before), fast vs ref, aliasing */
    float *df = frandn(n, 5.0), *dr = frandn(n, 5.0), *al = fdup(x->inp, n);
    lk_xent_backward(df, x->inp, er, x->tok, x->scale, N, V);
    lk_xent_backward_ref(dr, x->inp, er, x->tok, x->scale, N, V);
    check_rel("xent bwd", "xent backward", df, dr, n, TOL_SUM);
    lk_xent_backward(al, al, er, x->tok, x->scale, N, V);
    CHECK(memcmp(al, df, (size_t)n * sizeof *al) == 0, "%s xent backward in place (dlogits == logits): same bytes", CFG);
    memcpy(al, x->inp, (size_t)n * sizeof *al);
    lk_xent_backward_ref(al, al, er, x->tok, x->scale, N, V);
    CHECK(memcmp(al, dr, (size_t)n * sizeof *al) == 0, "%s xent ref backward in place: same bytes", CFG);
    long zero_bad = 0;
    double worst_rowsum = 0.0;
    for (int i = 0; i < N; i++) {
        double s = 0.0;
        for (int v = 0; v < V; v++) {
            s += df[(long)i * V + v];
            if (x->tok[i] < 0 && df[(long)i * V + v] != 0.0f) zero_bad++;
        }
        if (fabs(s) / x->scale > worst_rowsum) worst_rowsum = fabs(s) / x->scale;
    }
    CHECK(zero_bad == 0 && worst_rowsum <= TOL_SUM, "%s xent backward: ignored rows zero (%ld not), rows sum to 0 "
          "(worst %.2e)", CFG, zero_bad, worst_rowsum);
    /* finite differences of scale * sum(losses), coordinates in non-ignored rows, half on the target */
    long idx[FD_NCOORD];
    for (int j = 0; j < FD_NCOORD; j++) {
        int r;
        do r = (int)rs_rng_uint(RNG, N); while (x->tok[r] < 0 && expect > 0);
        idx[j] = (long)r * V + (j & 1 && x->tok[r] >= 0 ? x->tok[r] : (long)rs_rng_uint(RNG, V));
    }
    fd_check("xent", "xent dlogits", L_xent, x, x->inp, n, df, dr, idx, FD_NCOORD);
    free(lf);
    free(ef);
    free(lr);
    free(er);
    free(df);
    free(dr);
    free(al);
}

/* --- elementwise ------------------------------------------------------------------------ */

static void test_elementwise(long n)
{
    float *a = frandn(n, 1.0), *b = frandn(n, 1.0), *o = fnew(n), *e = fnew(n);
    for (long i = 0; i < n; i++) e[i] = a[i] + b[i];
    lk_add(o, a, b, n);
    int ok1 = memcmp(o, e, (size_t)n * sizeof *o) == 0;
    memcpy(o, a, (size_t)n * sizeof *o);
    lk_add(o, o, b, n); /* out aliases a */
    int ok2 = memcmp(o, e, (size_t)n * sizeof *o) == 0;
    memcpy(o, a, (size_t)n * sizeof *o);
    lk_accumulate(o, b, n);
    int ok3 = memcmp(o, e, (size_t)n * sizeof *o) == 0;
    CHECK(ok1 && ok2 && ok3, "n=%ld: lk_add (%d), lk_add in place (%d), lk_accumulate (%d) = a + b exactly", n, ok1, ok2,
          ok3);
    free(a);
    free(b);
    free(o);
    free(e);
}

/* --- one configuration ------------------------------------------------------------------ */

static void test_config(cfg_t c)
{
    snprintf(CFG, sizeof CFG, "[B%d T%d C%d NH%d/%d HS%d rot%d F%d V%d]", c.B, c.T, c.C, c.NH, c.NKV, c.HS, c.rot, c.F,
             c.V);
    ctx_t x = {0};
    x.c = c;
    x.N = c.B * c.T;
    int QKV = (c.NH + 2 * c.NKV) * c.HS;
    x.OC = QKV;
    long big = (long)x.N * (QKV > 2 * c.F ? QKV : 2 * c.F);
    long bigv = (long)x.N * c.V, bigt = (long)c.B * c.NH * c.T * c.T;
    if (bigv > big) big = bigv;
    if ((long)c.V * c.C > big) big = (long)c.V * c.C;
    if ((long)QKV * c.C > big) big = (long)QKV * c.C;
    x.tok = malloc((size_t)x.N * sizeof *x.tok);
    x.out = fnew(big);
    x.tmp = fnew(big > bigt ? big : bigt);
    x.s1 = fnew(big > bigt ? big : bigt);
    x.s2 = fnew(big > bigt ? big : bigt);
    x.scale = 1.0f / (float)x.N;

    /* embedding: tokens with a repeat */
    for (int i = 0; i < x.N; i++) x.tok[i] = (int32_t)rs_rng_uint(RNG, c.V);
    if (x.N > 1) x.tok[x.N - 1] = x.tok[0];
    x.w = frandn((long)c.V * c.C, 1.0);
    x.R = frandn((long)x.N * c.C, 1.0);
    test_embedding(&x);
    free(x.w);
    free(x.R);

    /* matmul (OC = QKV) */
    x.inp = frandn((long)x.N * c.C, 1.0);
    x.w = frandn((long)QKV * c.C, 1.0 / sqrt(c.C));
    x.b = frandn(QKV, 1.0);
    x.R = frandn((long)x.N * QKV, 1.0);
    test_matmul(&x);
    free(x.w);
    free(x.b);
    free(x.R);

    /* norms: inputs with a per-row offset and scale */
    for (int r = 0; r < x.N; r++) {
        float off = (float)rs_rng_gaussian(RNG, 2.0), sc = (float)(0.5 + rs_rng_uniform(RNG));
        for (int j = 0; j < c.C; j++) x.inp[(long)r * c.C + j] = off + sc * (float)rs_rng_gaussian(RNG, 1.0);
    }
    x.w = fnew(c.C);
    x.b = frandn(c.C, 0.5);
    for (int j = 0; j < c.C; j++) x.w[j] = 1.0f + (float)rs_rng_gaussian(RNG, 0.3);
    x.R = frandn((long)x.N * c.C, 1.0);
    test_layernorm(&x);
    test_rmsnorm(&x);
    free(x.inp);
    free(x.w);
    free(x.b);
    free(x.R);

    /* RoPE on a fused qkv buffer; tables for T + 8 positions */
    int maxT = c.T + 8, half = c.rot / 2;
    double inv[256];
    lk_rope_inv_freq(inv, c.rot, 10000.0, 0, 1.0, 1.0, 1.0, 0);
    x.cos_t = fnew((long)maxT * half);
    x.sin_t = fnew((long)maxT * half);
    lk_rope_table(x.cos_t, x.sin_t, inv, maxT, c.rot);
    x.inp = frandn((long)x.N * QKV, 1.0);
    x.R = frandn((long)x.N * QKV, 1.0);
    test_rope(&x);
    free(x.R);

    /* attention on the same qkv */
    x.R = frandn((long)x.N * c.NH * c.HS, 1.0);
    test_attention(&x);
    free(x.inp);
    free(x.R);
    free(x.cos_t);
    free(x.sin_t);

    /* activations: inputs (N, 2F) */
    x.inp = frandn((long)x.N * 2 * c.F, 1.5);
    x.R = frandn((long)x.N * c.F, 1.0);
    test_activations(&x);
    free(x.inp);
    free(x.R);

    /* cross-entropy: logits N(0, 2^2), targets with ignored rows */
    x.inp = frandn((long)x.N * c.V, 2.0);
    for (int i = 0; i < x.N; i++) x.tok[i] = (int32_t)rs_rng_uint(RNG, c.V);
    if (x.N > 1) x.tok[1] = -100;
    if (x.N > 4) x.tok[x.N - 1] = -1;
    test_xent(&x);
    free(x.inp);

    test_elementwise((long)x.N * c.C);
    free(x.tok);
    free(x.out);
    free(x.tmp);
    free(x.s1);
    free(x.s2);
}

/* --- the finite-difference harness can fail ---------------------------------------------- */

static void test_fd_harness(void)
{
    snprintf(CFG, sizeof CFG, "[harness]");
    cfg_t c = {2, 5, 24, 2, 1, 8, 8, 16, 20};
    ctx_t x = {0};
    x.c = c;
    x.N = c.B * c.T;
    x.OC = 16;
    x.inp = frandn((long)x.N * 2 * c.F, 1.5);
    x.w = frandn((long)x.OC * c.C, 0.3);
    x.b = frandn(x.OC, 1.0);
    x.R = frandn((long)x.N * 2 * c.F, 1.0);
    x.out = fnew((long)x.N * 2 * c.F);
    long n = (long)x.N * c.C, idx[FD_NCOORD];
    /* 1. matmul dinp scaled by 1.01 */
    float *g = fnew(n);
    lk_matmul_backward_ref(g, NULL, NULL, x.R, x.inp, x.w, x.N, c.C, x.OC);
    rand_idx(idx, FD_NCOORD, n);
    double me_ok, me_bad;
    int bad_ok = fd_run(L_matmul, &x, x.inp, idx, FD_NCOORD, g, NULL, n, FD_TOL, &me_ok);
    for (long i = 0; i < n; i++) g[i] *= 1.01f;
    int bad_bad = fd_run(L_matmul, &x, x.inp, idx, FD_NCOORD, g, NULL, n, FD_TOL, &me_bad);
    CHECK(bad_ok == 0 && bad_bad > 0, "FD harness: matmul dinp passes (max err %.2e) and dinp * 1.01 fails at %d of %d "
          "coordinates (max err %.2e)", me_ok, bad_bad, FD_NCOORD, me_bad);
    free(g);
    /* 2. a classic bug: swiglu's gate gradient with silu'(g) taken as sigmoid(g) */
    long n2 = (long)x.N * 2 * c.F;
    g = fnew(n2);
    lk_swiglu_backward_ref(g, x.inp, x.R, x.N, c.F);
    for (int r = 0; r < x.N; r++)
        for (int f = 0; f < c.F; f++) {
            long i = (long)r * 2 * c.F + f;
            double gg = x.inp[i], u = x.inp[i + c.F], s = 1.0 / (1.0 + exp(-gg));
            g[i] = (float)(x.R[(long)r * c.F + f] * u * s);
        }
    for (int j = 0; j < FD_NCOORD; j++) idx[j] = (long)rs_rng_uint(RNG, x.N) * 2 * c.F + (long)rs_rng_uint(RNG, c.F);
    bad_bad = fd_run(L_swiglu, &x, x.inp, idx, FD_NCOORD, g, NULL, n2, FD_TOL, &me_bad);
    CHECK(bad_bad > 0, "FD harness: swiglu with silu' = sigmoid (a wrong derivative) fails at %d of %d coordinates "
          "(max err %.2e)", bad_bad, FD_NCOORD, me_bad);
    free(g);
    free(x.inp);
    free(x.w);
    free(x.b);
    free(x.R);
    free(x.out);
}

/* --- RoPE against transformers ---------------------------------------------------------- */

static int read_vec(FILE *f, double *v, int cap)
{
    int n;
    if (fscanf(f, "%d", &n) != 1 || n < 0 || n > cap) return -1;
    for (int i = 0; i < n; i++)
        if (fscanf(f, "%lf", &v[i]) != 1) return -1;
    return n;
}

static void test_rope_fixture(void)
{
    const char *path = getenv("ROPE_FIXTURE");
    if (!path) path = "tests/fixtures/rope_llama3.txt";
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "RoPE fixture %s opened (run from the repository root or set ROPE_FIXTURE)", path);
    if (!f) return;
    char kind[32];
    int ninv = 0, napply = 0, nllama3 = 0;
    double worst_inv = 0.0;
    static double ref[4096], xin[4096];
    while (fscanf(f, "%31s", kind) == 1) {
        if (kind[0] == '#') {
            int ch;
            while ((ch = fgetc(f)) != '\n' && ch != EOF) {}
            continue;
        }
        if (strcmp(kind, "inv_freq") == 0) {
            int type, dim, orig, n;
            double theta, factor, lo, hi;
            if (fscanf(f, "%d %lf %d %lf %lf %lf %d", &type, &theta, &dim, &factor, &lo, &hi, &orig) != 7 ||
                (n = read_vec(f, ref, 4096)) != dim / 2) {
                CHECK(0, "RoPE fixture: malformed inv_freq line");
                break;
            }
            double inv[2048];
            lk_rope_inv_freq(inv, dim, theta, type, factor, lo, hi, orig);
            /* torch computes in float32: base**(2i/d) and 1/x, then the llama3 blend, a few
             * float32 roundings (u = 6e-8) on values of size 1: allow 1e-6 relative */
            double worst = 0.0;
            int bands[3] = {0, 0, 0}; /* llama3: low (divided), medium (blended), high (kept) */
            for (int i = 0; i < n; i++) {
                double e = fabs(inv[i] - ref[i]) / ref[i];
                if (e > worst) worst = e;
                if (type == 1) {
                    double f0 = 1.0 / pow(theta, 2.0 * i / dim), r = inv[i] / f0;
                    bands[r > 1.0 - 1e-12 ? 2 : r < 1.0 / factor + 1e-12 ? 0 : 1]++;
                }
            }
            if (worst > worst_inv) worst_inv = worst;
            CHECK(worst <= 1e-6, "RoPE inv_freq type %d theta %g rot_dim %d factor %g (%g, %g, %d) vs transformers: "
                  "max rel err %.2e; llama3 bands low/medium/high %d/%d/%d", type, theta, dim, factor, lo, hi, orig,
                  worst, bands[0], bands[1], bands[2]);
            ninv++;
            if (type == 1 && bands[0] && bands[1] && bands[2]) nllama3++;
        } else if (strcmp(kind, "apply") == 0) {
            int hs, rot, T, pos0, n1, n2;
            double theta;
            if (fscanf(f, "%lf %d %d %d %d", &theta, &hs, &rot, &T, &pos0) != 5 ||
                (n1 = read_vec(f, xin, 4096)) != T * hs || (n2 = read_vec(f, ref, 4096)) != T * hs) {
                CHECK(0, "RoPE fixture: malformed apply line");
                break;
            }
            double inv[2048];
            lk_rope_inv_freq(inv, rot, theta, 0, 1, 1, 1, 0);
            int maxT = pos0 + T;
            float *ct = fnew((long)maxT * rot / 2), *st = fnew((long)maxT * rot / 2);
            lk_rope_table(ct, st, inv, maxT, rot);
            float *yf = fnew(n1), *yr = fnew(n1), *yt = fnew(n1);
            for (int i = 0; i < n1; i++) {
                yf[i] = yr[i] = (float)xin[i];
                yt[i] = (float)ref[i];
            }
            lk_rope_forward(yf, hs, ct, st, 1, T, 1, hs, rot, pos0);
            lk_rope_forward_ref(yr, hs, ct, st, 1, T, 1, hs, rot, pos0);
            /* transformers rounds the angle t * inv_freq to float32 (t <= 10 here: ~1e-6 abs) */
            double ef = relerr(yf, yt, n1), er = relerr(yr, yt, n1);
            CHECK(ef <= 5e-6 && er <= 5e-6, "RoPE rotate-half vs transformers apply_rotary_pos_emb (head %d, rot_dim %d, "
                  "positions %d..%d): rel err fast %.2e ref %.2e", hs, rot, pos0, pos0 + T - 1, ef, er);
            napply++;
            free(ct);
            free(st);
            free(yf);
            free(yr);
            free(yt);
        } else {
            CHECK(0, "RoPE fixture: unknown line kind '%s'", kind);
            break;
        }
    }
    fclose(f);
    note_err("rope inv_freq vs HF", worst_inv);
    CHECK(ninv >= 4 && napply >= 2 && nllama3 >= 1, "RoPE fixture: %d inv_freq cases (%d llama3 with all three bands), "
          "%d rotate-half cases", ninv, nllama3, napply);
}

/* --- determinism -------------------------------------------------------------------------- */

/* Runs every fast kernel on one fixed problem; returns all their outputs, one after the other
 * (the matmul ones only with blas). */
static float *run_all(cfg_t c, long *len, int blas)
{
    rs_rng *save = RNG;
    RNG = rs_rng_alloc(777, 9); /* the same inputs on every call */
    int N = c.B * c.T, QKV = (c.NH + 2 * c.NKV) * c.HS, OC = c.NH * c.HS;
    long nt = (long)c.B * c.NH * c.T * c.T;
    long total = 0, cap = (long)N * c.C * 4 + 2L * c.C + (long)c.V * c.C + 2L * N * QKV + (long)N * OC + 2 * nt +
                          3L * N * c.F + (long)N * c.V + 2L * N + 2L * QKV + (long)QKV * c.C;
    float *all = fnew(cap);
#define TAKE(k) (total += (k), all + total - (k))
    float *inp = frandn((long)N * c.C, 1.0), *w = frandn(c.C, 1.0), *b = frandn(c.C, 1.0), *R = frandn((long)N * c.C, 1.0);
    float *mean = fnew(N), *rstd = fnew(N);
    int32_t *tok = malloc((size_t)N * sizeof *tok);
    for (int i = 0; i < N; i++) tok[i] = (int32_t)rs_rng_uint(RNG, c.V / 4); /* many repeats */
    float *lno = TAKE((long)N * c.C);
    lk_layernorm_forward(lno, mean, rstd, inp, w, b, N, c.C, 1e-5f);
    float *lnin = TAKE((long)N * c.C), *lnw = TAKE(c.C), *lnb = TAKE(c.C);
    lk_layernorm_backward(lnin, lnw, lnb, R, inp, w, mean, rstd, N, c.C);
    float *rmo = TAKE((long)N * c.C), *rmin = TAKE((long)N * c.C);
    lk_rmsnorm_forward(rmo, rstd, inp, w, N, c.C, 1e-5f);
    lk_rmsnorm_backward(rmin, lnw, R, inp, w, rstd, N, c.C);
    float *dwte = TAKE((long)c.V * c.C);
    lk_embedding_backward(dwte, R, tok, N, c.C, c.V);
    float *qkv = frandn((long)N * QKV, 1.0), *dy = frandn((long)N * OC, 1.0);
    float *att = TAKE(nt), *ao = TAKE((long)N * OC), *dqkv_a = TAKE((long)N * QKV), *datt = TAKE(nt);
    lk_attention_forward(ao, att, qkv, c.B, c.T, c.NH, c.NKV, c.HS);
    lk_attention_backward(dqkv_a, datt, dy, qkv, att, c.B, c.T, c.NH, c.NKV, c.HS);
    float *h = frandn((long)N * 2 * c.F, 1.0), *dh = frandn((long)N * c.F, 1.0);
    float *so = TAKE((long)N * c.F), *sd = TAKE((long)N * 2 * c.F);
    lk_swiglu_forward(so, h, N, c.F);
    lk_swiglu_backward(sd, h, dh, N, c.F);
    float *logits = frandn((long)N * c.V, 2.0), *loss = TAKE(N), *lse = TAKE(N), *dl = TAKE((long)N * c.V);
    lk_xent_forward(loss, lse, logits, tok, N, c.V);
    lk_xent_backward(dl, logits, lse, tok, 0.5f, N, c.V);
    float *wq = frandn((long)QKV * c.C, 0.1), *dqkv = frandn((long)N * QKV, 1.0);
    float *db = TAKE(QKV);
    lk_matmul_backward(NULL, NULL, db, dqkv, inp, wq, N, c.C, QKV);
    if (blas) {
        float *mo = fnew((long)N * QKV), *last = TAKE(QKV), *dw = TAKE((long)QKV * c.C);
        lk_matmul_forward(mo, inp, wq, db, N, c.C, QKV);
        memcpy(last, mo + (long)(N - 1) * QKV, QKV * sizeof(float));
        lk_matmul_backward(NULL, dw, NULL, dqkv, inp, wq, N, c.C, QKV);
        free(mo);
    }
#undef TAKE
    *len = total;
    free(inp); free(w); free(b); free(R); free(mean); free(rstd); free(tok); free(qkv); free(dy); free(h); free(dh);
    free(logits); free(wq); free(dqkv);
    rs_rng_free(RNG);
    RNG = save;
    return all;
}

/* llm_block_attention (sgemm per head) against llm_decode_attention, its loop twin: a prompt
 * (len 0) and a block after cached tokens, GQA and plain, head sizes 12 and 64 (SmolLM2's);
 * scores of O(3) so the softmax is far from uniform; normwise relative error <= 1e-5 (both
 * compute the same sums in another order), and the masked future must not leak: changing
 * every key and value after the last query's position changes nothing. */
static void test_block_attention(void)
{
    const int cf[][5] = {{0, 1, 6, 2, 12}, {0, 37, 6, 2, 12}, {5, 33, 4, 4, 12}, {0, 64, 9, 3, 64}, {19, 16, 9, 3, 64}};
    double worst = 0;
    int leak = 0;
    for (size_t c = 0; c < sizeof cf / sizeof *cf; c++) {
        const int len = cf[c][0], n = cf[c][1], NH = cf[c][2], NKV = cf[c][3], HS = cf[c][4];
        const int QKV = (NH + 2 * NKV) * HS, KVD = NKV * HS, nk = len + n, extra = 7;
        float *qkv = frandn((long)n * QKV, 0.6), *K = frandn((long)(nk + extra) * KVD, 0.6);
        float *V = frandn((long)(nk + extra) * KVD, 1.0);
        float *o0 = fnew((long)n * NH * HS), *o1 = fnew((long)n * NH * HS), *o2 = fnew((long)n * NH * HS);
        float *sc = fnew((long)NH * nk), *S = fnew((long)n * nk);
        llm_decode_attention(o0, sc, qkv, K, V, len, n, NH, NKV, HS);
        llm_block_attention(o1, S, qkv, K, V, len, n, NH, NKV, HS);
        const double e = relerr(o1, o0, (long)n * NH * HS);
        worst = e > worst ? e : worst;
        /* the rows past nk are never read; scribble over the last query's future inside the block
         * too: query i must only see positions <= len + i */
        if (n > 1) {
            for (long k = (long)(len + n / 2) * KVD; k < (long)nk * KVD; k++) K[k] = 1e3f, V[k] = -1e3f;
            llm_block_attention(o2, S, qkv, K, V, len, n, NH, NKV, HS);
            leak += memcmp(o1, o2, (size_t)(n / 2) * NH * HS * sizeof(float)) != 0; /* queries 0..n/2-1 */
        }
        free(qkv), free(K), free(V), free(o0), free(o1), free(o2), free(sc), free(S);
    }
    note_err("block attention", worst);
    CHECK(worst <= 1e-5 && leak == 0,
          "llm_block_attention = llm_decode_attention within %.1e (<= 1e-5) on 5 shapes (prompt, cached prefix, GQA, HS 12 "
          "and 64); no query sees a later position (%d leaks)",
          worst, leak);
}

static void test_determinism(void)
{
    /* sizes above the OpenMP thresholds, several attention blocks, many repeated tokens */
    cfg_t c = {2, 150, 128, 4, 2, 32, 32, 160, 512};
    long n1, n2, n3;
    int nt = omp_get_max_threads();
    omp_set_num_threads(nt > 1 ? nt : 2);
    float *a = run_all(c, &n1, 1), *b = run_all(c, &n2, 1);
    CHECK(n1 == n2 && memcmp(a, b, (size_t)n1 * sizeof *a) == 0,
          "determinism: every fast kernel run twice gives the same bytes (%ld floats, %d threads)", n1, nt > 1 ? nt : 2);
    free(b);
    free(a);
    /* the non-BLAS reductions and the per-head attention do not depend on the thread count */
    a = run_all(c, &n1, 0);
    omp_set_num_threads(1);
    b = run_all(c, &n3, 0);
    omp_set_num_threads(3);
    float *d = run_all(c, &n2, 0);
    omp_set_num_threads(nt);
    CHECK(n1 == n3 && n1 == n2 && memcmp(a, b, (size_t)n1 * sizeof *a) == 0 && memcmp(a, d, (size_t)n1 * sizeof *a) == 0,
          "determinism: norms, embedding, attention, swiglu, xent, dbias give the same bytes on 1, 3 and %d threads", nt);
    free(a);
    free(b);
    free(d);
}

int main(void)
{
    RNG = rs_rng_alloc(20240604, 41);
    const cfg_t cfgs[] = {
        {2, 7, 72, 6, 2, 16, 4, 40, 50},     /* GQA 6/2, partial rotary 4 of 16, odd sizes */
        {1, 33, 96, 4, 4, 16, 16, 72, 97},   /* NH = NKV, full rotary, T = 33 */
        {3, 1, 72, 6, 3, 8, 8, 33, 31},      /* T = 1 */
        {2, 130, 96, 4, 2, 24, 16, 96, 300}, /* 3 attention blocks, above the OpenMP thresholds */
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) test_config(cfgs[i]);
    test_activation_ranges();
    test_fd_harness();
    test_rope_fixture();
    test_determinism();
    test_block_attention();
    printf("\nworst errors (normwise relative for fast vs ref; |fd - g| / (|g| + rms g) for fd):\n");
    for (int i = 0; i < NERRS; i++) printf("  %-22s %.2e\n", ERRS[i].name, ERRS[i].worst);
    rs_rng_free(RNG);
    return check_summary("test_kernels");
}
