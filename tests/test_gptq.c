/* Tests for solvers/gptq: lazy-blocked sweep vs the column-by-column reference, vs an
 * independent OBS-form implementation (explicit inverse Hessian with downdates, as in
 * Frantar et al.'s derivation), diagonal H = round-to-nearest, GPTQ beats RTN on the
 * layer output error with correlated calibration inputs, dead inputs, grid membership,
 * bad arguments. W is R x C (outputs x inputs), X is S x C (samples x inputs),
 * H = 2 X^T X. Depends only on quant.h's documented semantics. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"
#include "quant/rng.h"
#include "quant/status.h"
#include "solvers/gptq.h"
#include "tests/check.h"

enum { R = 32, C = 64, S = 256 };

/* Correlated calibration inputs X = Z L (Z standard normal, L a random mixing matrix
 * with a decaying column scale, so that X^T X is far from diagonal and ill-spread),
 * H = 2 X^T X, and weights W. dead: columns of X set to zero (H_jj = 0), may be NULL. */
static void make_problem(uint64_t seed, double *W, double *H, double *X, const int *dead, int ndead)
{
    rs_rng *r = rs_rng_alloc(seed, RS_STREAM_DATA);
    double *Z = malloc(S * C * sizeof(double)), *L = malloc(C * C * sizeof(double));
    for (size_t i = 0; i < S * C; i++) Z[i] = rs_rng_gaussian(r, 1.0);
    for (size_t i = 0; i < C; i++)
        for (size_t j = 0; j < C; j++) L[i * C + j] = rs_rng_gaussian(r, 1.0) / (1.0 + 0.2 * (double)i);
    for (size_t s = 0; s < S; s++)
        for (size_t j = 0; j < C; j++) {
            double acc = 0;
            for (size_t k = 0; k < C; k++) acc += Z[s * C + k] * L[k * C + j];
            X[s * C + j] = acc;
        }
    for (int k = 0; k < ndead; k++)
        for (size_t s = 0; s < S; s++) X[s * C + dead[k]] = 0;
    for (size_t i = 0; i < C; i++)
        for (size_t j = 0; j < C; j++) {
            double acc = 0;
            for (size_t s = 0; s < S; s++) acc += X[s * C + i] * X[s * C + j];
            H[i * C + j] = 2 * acc;
        }
    rs_rng *rw = rs_rng_alloc(seed, RS_STREAM_INIT);
    for (size_t i = 0; i < R * C; i++) W[i] = rs_rng_gaussian(rw, 1.0);
    rs_rng_free(r);
    rs_rng_free(rw);
    free(Z);
    free(L);
}

/* Layer output error ||(Wq - W) X^T||_F^2. */
static double out_err(const double *Wq, const double *W, const double *X)
{
    double tot = 0;
    for (size_t r = 0; r < R; r++)
        for (size_t s = 0; s < S; s++) {
            double acc = 0;
            for (size_t j = 0; j < C; j++) acc += (Wq[r * C + j] - W[r * C + j]) * X[s * C + j];
            tot += acc * acc;
        }
    return tot;
}

static double rel_diff(const double *a, const double *b, size_t n)
{
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > m) m = fabs(a[i] - b[i]);
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return s > 0 ? m / s : m;
}

static void spec_name(const qz_spec *q, char *buf, size_t len)
{
    snprintf(buf, len, "%d-bit %s %s%s", q->bits, q->scheme == QZ_SYM ? "sym" : "asym",
             q->gran == QZ_TENSOR ? "tensor" : q->gran == QZ_ROW ? "row" : "group", q->gran == QZ_GROUP ? "" : "");
    if (q->gran == QZ_GROUP) snprintf(buf + strlen(buf), len - strlen(buf), "%zu", q->group);
}

/* Blocked == reference for several block sizes (1, not dividing C, dividing, > C). */
static void test_blocked_vs_ref(void)
{
    static double W[R * C], H[C * C], X[S * C], Wr[R * C], Wb[R * C];
    const int dead[2] = {5, 40};
    make_problem(101, W, H, X, dead, 2);
    qz_spec specs[] = {
        qz_spec_make(4, QZ_SYM, QZ_ROW, 0),    qz_spec_make(3, QZ_ASYM, QZ_ROW, 0),
        qz_spec_make(4, QZ_SYM, QZ_TENSOR, 0), qz_spec_make(4, QZ_ASYM, QZ_GROUP, 16),
        qz_spec_make(3, QZ_SYM, QZ_GROUP, 8),  qz_spec_make(16, QZ_SYM, QZ_ROW, 0),
    };
    const size_t blocks[] = {1, 7, 16, 64, 128};
    char name[64];
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++)
        for (int ao = 0; ao <= 1; ao++) {
            memcpy(Wr, W, sizeof W);
            int st = gptq_quantize_f64_ref(&specs[si], Wr, R, C, H, 0.01, ao);
            spec_name(&specs[si], name, sizeof name);
            double worst = 0;
            int ok = st == RS_OK;
            for (size_t bi = 0; bi < sizeof blocks / sizeof *blocks; bi++) {
                memcpy(Wb, W, sizeof W);
                ok &= gptq_quantize_f64(&specs[si], Wb, R, C, H, 0.01, ao, blocks[bi]) == RS_OK;
                double e = rel_diff(Wb, Wr, R * C);
                if (e > worst) worst = e;
            }
            CHECK(ok && worst <= 1e-12, "blocked == ref, %s, act_order %d, blocks 1/7/16/64/128: max rel diff %.3g",
                  name, ao, worst);
        }
}

/* Independent OBS form: explicit H_F^-1 of the not-yet-quantized set F; quantizing
 * column p moves the others by -(w_p - q_p)/[H_F^-1]_pp * [H_F^-1]_p,: and removes p
 * from H_F^-1 by Gaussian elimination. Per-row grid from the original W. Dead columns
 * and act_order replicated from the header's description. */
static void obs_reference(const qz_spec *q, double *W, const double *H, double damp, int act_order)
{
    size_t n = C;
    double *Hd = malloc(n * n * sizeof(double)), *Hi = calloc(n * n, sizeof(double));
    double *s = malloc(R * sizeof(double)), *z = malloc(R * sizeof(double));
    size_t perm[C];
    qz_params_f64(q, W, R, C, s, z);
    double mean = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(Hd + i * n, H + i * n, n * sizeof(double));
        if (Hd[i * n + i] == 0) {
            Hd[i * n + i] = 1;
            for (size_t r = 0; r < R; r++) W[r * C + i] = 0;
        }
        mean += Hd[i * n + i];
        perm[i] = i;
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) Hd[i * n + i] += damp * mean;
    if (act_order) /* insertion sort by decreasing diag, stable */
        for (size_t i = 1; i < n; i++)
            for (size_t k = i; k > 0 && Hd[perm[k] * n + perm[k]] > Hd[perm[k - 1] * n + perm[k - 1]]; k--) {
                size_t t = perm[k];
                perm[k] = perm[k - 1];
                perm[k - 1] = t;
            }
    /* Gauss-Jordan inverse with partial pivoting (SPD: no pivoting needed) */
    for (size_t i = 0; i < n; i++) Hi[i * n + i] = 1;
    for (size_t k = 0; k < n; k++) {
        double pv = Hd[k * n + k];
        for (size_t j = 0; j < n; j++) {
            Hd[k * n + j] /= pv;
            Hi[k * n + j] /= pv;
        }
        for (size_t i = 0; i < n; i++) {
            if (i == k) continue;
            double f = Hd[i * n + k];
            for (size_t j = 0; j < n; j++) {
                Hd[i * n + j] -= f * Hd[k * n + j];
                Hi[i * n + j] -= f * Hi[k * n + j];
            }
        }
    }
    for (size_t k = 0; k < n; k++) {
        size_t p = perm[k];
        double dp = Hi[p * n + p];
        for (size_t r = 0; r < R; r++) {
            double w = W[r * C + p], qv = qz_fake_scalar_f64(q, w, s[r], z[r]), e = (w - qv) / dp;
            W[r * C + p] = qv;
            for (size_t kk = k + 1; kk < n; kk++) W[r * C + perm[kk]] -= e * Hi[p * n + perm[kk]];
        }
        for (size_t i = 0; i < n; i++) /* Hi <- Hi - Hi[:,p] Hi[p,:] / Hi[p,p] */
            if (i != p) {
                double f = Hi[i * n + p] / dp;
                for (size_t j = 0; j < n; j++)
                    if (j != p) Hi[i * n + j] -= f * Hi[p * n + j];
            }
        for (size_t j = 0; j < n; j++) Hi[p * n + j] = Hi[j * n + p] = 0;
    }
    free(Hd); free(Hi); free(s); free(z);
}

static void test_vs_obs(void)
{
    static double W[R * C], H[C * C], X[S * C], Wo[R * C], Wb[R * C];
    const int dead[1] = {17};
    make_problem(202, W, H, X, dead, 1);
    qz_spec specs[] = {qz_spec_make(4, QZ_SYM, QZ_ROW, 0), qz_spec_make(3, QZ_ASYM, QZ_ROW, 0)};
    char name[64];
    for (size_t si = 0; si < 2; si++)
        for (int ao = 0; ao <= 1; ao++) {
            memcpy(Wo, W, sizeof W);
            memcpy(Wb, W, sizeof W);
            obs_reference(&specs[si], Wo, H, 0.01, ao);
            int st = gptq_quantize_f64(&specs[si], Wb, R, C, H, 0.01, ao, 16);
            spec_name(&specs[si], name, sizeof name);
            /* different arithmetic (Gauss-Jordan + downdates vs Cholesky chain), but the
             * outputs are grid points with the same per-row grid, so they agree exactly
             * unless a rounding decision flips (an O(scale) difference). Sensitivity: a 1%
             * change of damp on one side flips decisions (rel diff ~0.1-0.2). */
            double e = rel_diff(Wb, Wo, R * C);
            CHECK(st == RS_OK && e <= 1e-9, "GPTQ == OBS form with explicit H^-1 downdates, %s, act_order %d: rel diff %.3g",
                  name, ao, e);
        }
}

/* Diagonal H: no error crosses columns, so GPTQ is round-to-nearest (bit for bit). */
static void test_diagonal_is_rtn(void)
{
    static double W[R * C], H[C * C], X[S * C], Wg[R * C], Wn[R * C];
    make_problem(303, W, H, X, NULL, 0);
    for (size_t i = 0; i < C; i++)
        for (size_t j = 0; j < C; j++)
            if (i != j) H[i * C + j] = 0;
    qz_spec specs[] = {qz_spec_make(4, QZ_SYM, QZ_ROW, 0), qz_spec_make(3, QZ_ASYM, QZ_TENSOR, 0),
                       qz_spec_make(4, QZ_ASYM, QZ_GROUP, 16)};
    char name[64];
    for (size_t si = 0; si < 3; si++)
        for (int ao = 0; ao <= 1; ao++) {
            memcpy(Wg, W, sizeof W);
            int st = gptq_quantize_f64(&specs[si], Wg, R, C, H, 0.01, ao, 16);
            st |= qz_fake_f64(&specs[si], W, Wn, R, C);
            spec_name(&specs[si], name, sizeof name);
            CHECK(st == RS_OK && memcmp(Wg, Wn, sizeof W) == 0, "diagonal H: GPTQ == RTN exactly, %s, act_order %d", name, ao);
        }
}

/* The point of GPTQ: lower layer output error than RTN on correlated inputs. */
static void test_beats_rtn(void)
{
    static double W[R * C], H[C * C], X[S * C], Wg[R * C], Wn[R * C];
    qz_spec specs[] = {qz_spec_make(3, QZ_SYM, QZ_ROW, 0), qz_spec_make(4, QZ_SYM, QZ_ROW, 0),
                       qz_spec_make(3, QZ_ASYM, QZ_ROW, 0), qz_spec_make(4, QZ_ASYM, QZ_ROW, 0)};
    char name[64];
    for (size_t si = 0; si < 4; si++)
        for (int ao = 0; ao <= 1; ao++) {
            double worst = 0, sum = 0;
            int all = 1, ok = 1;
            const int nseed = 5;
            for (int seed = 1; seed <= nseed; seed++) {
                make_problem(1000 + seed, W, H, X, NULL, 0);
                memcpy(Wg, W, sizeof W);
                ok &= gptq_quantize_f64(&specs[si], Wg, R, C, H, 0.01, ao, 32) == RS_OK;
                ok &= qz_fake_f64(&specs[si], W, Wn, R, C) == RS_OK;
                double ratio = out_err(Wg, W, X) / out_err(Wn, W, X);
                all &= ratio < 1;
                sum += ratio;
                if (ratio > worst) worst = ratio;
            }
            spec_name(&specs[si], name, sizeof name);
            CHECK(ok && all, "GPTQ < RTN output error, %s, act_order %d, every one of %d seeds: mean ratio %.3f, worst %.3f",
                  name, ao, nseed, sum / nseed, worst);
        }
}

/* Dead inputs: weights zeroed, the rest finite, and the same with act_order. */
static void test_dead(void)
{
    static double W[R * C], H[C * C], X[S * C], Wg[R * C];
    const int dead[3] = {0, 31, 63};
    make_problem(404, W, H, X, dead, 3);
    qz_spec q = qz_spec_make(4, QZ_SYM, QZ_ROW, 0);
    for (int ao = 0; ao <= 1; ao++) {
        memcpy(Wg, W, sizeof W);
        int st = gptq_quantize_f64(&q, Wg, R, C, H, 0.01, ao, 16);
        int zero = 1, fin = 1;
        for (size_t r = 0; r < R; r++) {
            for (int k = 0; k < 3; k++) zero &= Wg[r * C + dead[k]] == 0;
            for (size_t j = 0; j < C; j++) fin &= isfinite(Wg[r * C + j]);
        }
        CHECK(st == RS_OK && zero && fin, "dead inputs (H_jj = 0): weights zeroed, others finite, act_order %d", ao);
    }
    /* identity spec: nothing rounded, only the dead columns zeroed */
    qz_spec id = qz_spec_make(16, QZ_SYM, QZ_ROW, 0);
    memcpy(Wg, W, sizeof W);
    int st = gptq_quantize_f64(&id, Wg, R, C, H, 0.01, 1, 16);
    int same = 1;
    for (size_t r = 0; r < R; r++)
        for (size_t j = 0; j < C; j++) {
            int isdead = j == 0 || j == 31 || j == 63;
            same &= Wg[r * C + j] == (isdead ? 0.0 : W[r * C + j]);
        }
    CHECK(st == RS_OK && same, "identity spec: W returned unchanged except dead columns = 0");
    /* every input dead: H = 0 is handled (H -> I), W -> 0 */
    static double Hz[C * C];
    memcpy(Wg, W, sizeof W);
    st = gptq_quantize_f64(&q, Wg, R, C, Hz, 0.01, 0, 16);
    int allz = 1;
    for (size_t i = 0; i < R * C; i++) allz &= Wg[i] == 0;
    CHECK(st == RS_OK && allz, "H = 0 (every input dead): RS_OK and W = 0");
}

/* Every output lies on its group's grid. TENSOR/ROW: the grid is the original W's, so
 * Q(w) = w with those parameters, codes in [qmin, qmax]. GROUP: the grid is fixed during
 * the sweep, so check that each row's group holds at most 2^bits distinct values. */
static void test_on_grid(void)
{
    static double W[R * C], H[C * C], X[S * C], Wg[R * C];
    make_problem(505, W, H, X, NULL, 0);
    qz_spec specs[] = {qz_spec_make(3, QZ_SYM, QZ_ROW, 0), qz_spec_make(4, QZ_ASYM, QZ_ROW, 0),
                       qz_spec_make(3, QZ_ASYM, QZ_TENSOR, 0)};
    char name[64];
    for (size_t si = 0; si < 3; si++)
        for (int ao = 0; ao <= 1; ao++) {
            const qz_spec *q = &specs[si];
            size_t ng = qz_ngroups(q, R, C);
            double s[R], z[R];
            qz_params_f64(q, W, R, C, s, z);
            memcpy(Wg, W, sizeof W);
            int st = gptq_quantize_f64(q, Wg, R, C, H, 0.01, ao, 16);
            int fixed = 1, inrange = 1;
            for (size_t r = 0; r < R; r++)
                for (size_t j = 0; j < C; j++) {
                    size_t g = ng == 1 ? 0 : r;
                    double w = Wg[r * C + j];
                    fixed &= qz_fake_scalar_f64(q, w, s[g], z[g]) == w;
                    double code = nearbyint(w / s[g]) + z[g];
                    inrange &= code >= qz_qmin(q) && code <= qz_qmax(q) && fabs(w / s[g] + z[g] - code) < 1e-9;
                }
            spec_name(q, name, sizeof name);
            CHECK(st == RS_OK && fixed && inrange, "outputs on the grid (Q(w) = w, codes in [qmin, qmax]), %s, act_order %d",
                  name, ao);
        }
    qz_spec gq[] = {qz_spec_make(3, QZ_ASYM, QZ_GROUP, 16), qz_spec_make(2, QZ_SYM, QZ_GROUP, 8)};
    for (size_t si = 0; si < 2; si++)
        for (int ao = 0; ao <= 1; ao++) {
            memcpy(Wg, W, sizeof W);
            int st = gptq_quantize_f64(&gq[si], Wg, R, C, H, 0.01, ao, 16);
            size_t G = gq[si].group, most = 0;
            for (size_t r = 0; r < R; r++)
                for (size_t g = 0; g < C / G; g++) {
                    double v[C];
                    size_t nv = 0;
                    for (size_t t = 0; t < G; t++) {
                        double w = Wg[r * C + g * G + t];
                        size_t k = 0;
                        while (k < nv && v[k] != w) k++;
                        if (k == nv) v[nv++] = w;
                    }
                    if (nv > most) most = nv;
                }
            spec_name(&gq[si], name, sizeof name);
            CHECK(st == RS_OK && most <= (size_t)1 << gq[si].bits, "%s, act_order %d: at most 2^%d distinct values per group (%zu)",
                  name, ao, gq[si].bits, most);
        }
}

static void test_bad_args(void)
{
    static double W[R * C], H[C * C], X[S * C], W0[R * C];
    make_problem(606, W, H, X, NULL, 0);
    memcpy(W0, W, sizeof W);
    qz_spec q = qz_spec_make(4, QZ_SYM, QZ_ROW, 0);
    CHECK(gptq_quantize_f64(NULL, W, R, C, H, 0.01, 0, 16) == RS_EINVAL, "NULL spec -> RS_EINVAL");
    CHECK(gptq_quantize_f64(&q, NULL, R, C, H, 0.01, 0, 16) == RS_EINVAL, "NULL W -> RS_EINVAL");
    CHECK(gptq_quantize_f64(&q, W, R, C, NULL, 0.01, 0, 16) == RS_EINVAL, "NULL H -> RS_EINVAL");
    CHECK(gptq_quantize_f64(&q, W, 0, C, H, 0.01, 0, 16) == RS_EINVAL, "rows = 0 -> RS_EINVAL");
    CHECK(gptq_quantize_f64(&q, W, R, 0, H, 0.01, 0, 16) == RS_EINVAL, "cols = 0 -> RS_EINVAL");
    CHECK(gptq_quantize_f64(&q, W, R, C, H, 0.01, 0, 0) == RS_EINVAL, "block = 0 -> RS_EINVAL");
    CHECK(gptq_quantize_f64(&q, W, R, C, H, -0.1, 0, 16) == RS_EINVAL, "damp < 0 -> RS_EINVAL");
    CHECK(gptq_quantize_f64_ref(&q, W, R, C, H, NAN, 0) == RS_EINVAL, "ref: damp NaN -> RS_EINVAL");
    qz_spec bad = qz_spec_make(4, QZ_SYM, QZ_GROUP, 24); /* 24 does not divide 64 */
    CHECK(gptq_quantize_f64(&bad, W, R, C, H, 0.01, 0, 16) == RS_EINVAL, "group not dividing cols -> RS_EINVAL");
    bad = qz_spec_make(0, QZ_SYM, QZ_ROW, 0);
    CHECK(gptq_quantize_f64(&bad, W, R, C, H, 0.01, 0, 16) == RS_EINVAL, "bits = 0 -> RS_EINVAL");
    static double Hn[C * C];
    for (size_t i = 0; i < C; i++) Hn[i * C + i] = -1; /* negative definite: Cholesky fails */
    int st = gptq_quantize_f64(&q, W, R, C, Hn, 0.0, 0, 16);
    CHECK(st == RS_ENUMERIC && strlen(rs_last_error()) > 0, "H not positive definite -> RS_ENUMERIC (\"%s\")", rs_last_error());
    CHECK(gptq_quantize_f64_ref(&q, W, R, C, Hn, 0.0, 1) == RS_ENUMERIC, "ref: H not positive definite -> RS_ENUMERIC");
    H[3] = INFINITY;
    CHECK(gptq_quantize_f64(&q, W, R, C, H, 0.01, 0, 16) == RS_EINVAL, "non-finite H -> RS_EINVAL");
    CHECK(memcmp(W, W0, sizeof W) == 0, "W unchanged by every failed call");
}

int main(void)
{
    test_blocked_vs_ref();
    test_vs_obs();
    test_diagonal_is_rtn();
    test_beats_rtn();
    test_dead();
    test_on_grid();
    test_bad_args();
    return check_summary("test_gptq");
}
