/* Tests for solvers/linalg: min-norm least squares, Gram spectrum, rho, G-norm.
 * Each result is compared with an independent computation (hand-written Cholesky
 * solves of the normal equations, the eigen-decomposition of the d x d matrix A^T A by
 * LAPACKE_dsyev, brute-force quadratic forms). Tolerances are multiples of machine
 * epsilon scaled by the conditioning of the problem. A is N x d, row-major. */
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/rng.h"
#include "quant/status.h"
#include "solvers/linalg.h"
#include "tests/check.h"

#define EPS DBL_EPSILON

static double *gauss(rs_rng *r, size_t n)
{
    double *x = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) x[i] = rs_rng_gaussian(r, 1.0);
    return x;
}

/* M = A A^T (N x N) or A^T A (d x d), plain loops (not BLAS: independent of the code
 * under test). */
static void aat(size_t N, size_t d, const double *A, double *M)
{
    for (size_t s = 0; s < N; s++)
        for (size_t t = 0; t < N; t++) {
            double acc = 0;
            for (size_t j = 0; j < d; j++) acc += A[s * d + j] * A[t * d + j];
            M[s * N + t] = acc;
        }
}
static void ata(size_t N, size_t d, const double *A, double *M)
{
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            double acc = 0;
            for (size_t t = 0; t < N; t++) acc += A[t * d + i] * A[t * d + j];
            M[i * d + j] = acc;
        }
}

/* Solve M x = b for SPD M (n x n) by a hand-written Cholesky factorization; M is copied. */
static void chol_solve(size_t n, const double *M, const double *b, double *x)
{
    double *L = calloc(n * n, sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++) {
            double s = M[i * n + j];
            for (size_t k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
            L[i * n + j] = i == j ? sqrt(s) : s / L[j * n + j];
        }
    for (size_t i = 0; i < n; i++) { /* L z = b */
        double s = b[i];
        for (size_t k = 0; k < i; k++) s -= L[i * n + k] * x[k];
        x[i] = s / L[i * n + i];
    }
    for (size_t i = n; i-- > 0;) { /* L^T x = z */
        double s = x[i];
        for (size_t k = i + 1; k < n; k++) s -= L[k * n + i] * x[k];
        x[i] = s / L[i * n + i];
    }
    free(L);
}

static double maxabs(const double *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}
static double maxdiff(const double *x, const double *y, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i] - y[i]) > m) m = fabs(x[i] - y[i]);
    return m;
}

/* Eigenvalues of a symmetric n x n matrix (copied), decreasing, via LAPACKE_dsyev;
 * eigenvectors in V's columns (row-major n x n) when V != NULL. */
static void sym_eig(size_t n, const double *M, double *ev, double *V)
{
    double *a = malloc(n * n * sizeof(double)), *w = malloc(n * sizeof(double));
    memcpy(a, M, n * n * sizeof(double));
    LAPACKE_dsyev(LAPACK_ROW_MAJOR, V ? 'V' : 'N', 'U', (lapack_int)n, a, (lapack_int)n, w);
    for (size_t i = 0; i < n; i++) {
        ev[i] = w[n - 1 - i];
        if (V)
            for (size_t r = 0; r < n; r++) V[r * n + i] = a[r * n + (n - 1 - i)];
    }
    free(a);
    free(w);
}

/* N < d, full row rank: w = A^T (A A^T)^{-1} y, and A w = y (interpolation). */
static void test_underdetermined(size_t N, size_t d, uint64_t seed)
{
    rs_rng *r = rs_rng_alloc(seed, RS_STREAM_DATA);
    double *A = gauss(r, N * d), *y = gauss(r, N);
    double *w = malloc(d * sizeof(double)), *sv = malloc(N * sizeof(double));
    double *K = malloc(N * N * sizeof(double)), *z = malloc(N * sizeof(double));
    double *wref = malloc(d * sizeof(double)), *res = malloc(N * sizeof(double));
    size_t rank = 0;
    int st = ls_minnorm(N, d, A, y, -1, w, &rank, sv);
    CHECK(st == RS_OK, "minnorm N=%zu < d=%zu returns RS_OK (%d)", N, d, st);
    CHECK(rank == N, "minnorm N=%zu d=%zu: full row rank reported (%zu)", N, d, rank);

    aat(N, d, A, K);
    chol_solve(N, K, y, z);
    for (size_t j = 0; j < d; j++) {
        wref[j] = 0;
        for (size_t t = 0; t < N; t++) wref[j] += A[t * d + j] * z[t];
    }
    double kappa = sv[0] / sv[N - 1];
    double tol = 16.0 * (double)d * EPS * kappa * kappa * maxabs(wref, d);
    double err = maxdiff(w, wref, d);
    CHECK(err <= tol, "minnorm N=%zu d=%zu vs A^T(AA^T)^-1 y: max err %.3g (tol %.3g, kappa %.3g)",
          N, d, err, tol, kappa);

    for (size_t t = 0; t < N; t++) {
        res[t] = -y[t];
        for (size_t j = 0; j < d; j++) res[t] += A[t * d + j] * w[j];
    }
    double scale = sv[0] * sqrt((double)d) * maxabs(w, d) + maxabs(y, N);
    tol = 16.0 * (double)d * EPS * kappa * scale;
    CHECK(maxabs(res, N) <= tol, "minnorm N=%zu d=%zu interpolates: max |Aw-y| %.3g (tol %.3g)",
          N, d, maxabs(res, N), tol);

    /* singular values vs sqrt of the eigenvalues of A A^T */
    double *ev = malloc(N * sizeof(double));
    sym_eig(N, K, ev, NULL);
    double worst = 0;
    for (size_t i = 0; i < N; i++) {
        double e = fabs(sv[i] - sqrt(ev[i])) / sv[0];
        if (e > worst) worst = e;
    }
    /* sqrt(eig) loses relative accuracy ~ eps * kappa^2 on the small ones */
    CHECK(worst <= 16.0 * (double)N * EPS * kappa,
          "minnorm N=%zu d=%zu: singular values vs sqrt(eig(AA^T)), rel err %.3g", N, d, worst);
    int dec = 1;
    for (size_t i = 1; i < N; i++) dec &= sv[i] <= sv[i - 1];
    CHECK(dec, "minnorm N=%zu d=%zu: singular values decreasing", N, d);

    /* inputs untouched: recompute and get the same bits */
    double *w2 = malloc(d * sizeof(double));
    ls_minnorm(N, d, A, y, -1, w2, NULL, NULL);
    CHECK(memcmp(w, w2, d * sizeof(double)) == 0, "minnorm N=%zu d=%zu: deterministic, A and y unmodified", N, d);

    free(w2); free(ev); free(A); free(y); free(w); free(sv); free(K); free(z); free(wref); free(res);
    rs_rng_free(r);
}

/* N > d: the least-squares solution solves A^T A w = A^T y. N = d: A w = y exactly. */
static void test_overdetermined(size_t N, size_t d, uint64_t seed)
{
    rs_rng *r = rs_rng_alloc(seed, RS_STREAM_DATA);
    double *A = gauss(r, N * d), *y = gauss(r, N);
    double *w = malloc(d * sizeof(double)), *sv = malloc(d * sizeof(double));
    double *G = malloc(d * d * sizeof(double)), *b = malloc(d * sizeof(double)), *wref = malloc(d * sizeof(double));
    size_t rank = 0;
    int st = ls_minnorm(N, d, A, y, -1, w, &rank, sv);
    CHECK(st == RS_OK && rank == d, "minnorm N=%zu >= d=%zu: RS_OK, rank %zu", N, d, rank);
    ata(N, d, A, G);
    for (size_t j = 0; j < d; j++) {
        b[j] = 0;
        for (size_t t = 0; t < N; t++) b[j] += A[t * d + j] * y[t];
    }
    chol_solve(d, G, b, wref);
    double kappa = sv[0] / sv[d - 1];
    double tol = 16.0 * (double)N * EPS * kappa * kappa * (maxabs(wref, d) + maxabs(y, N) / sv[d - 1]);
    double err = maxdiff(w, wref, d);
    CHECK(err <= tol, "minnorm N=%zu d=%zu vs normal equations: max err %.3g (tol %.3g, kappa %.3g)",
          N, d, err, tol, kappa);
    free(A); free(y); free(w); free(sv); free(G); free(b); free(wref);
    rs_rng_free(r);
}

/* Rank-deficient A (rows duplicated): rank reported, w = A^+ y with A^+ from the
 * eigen-decomposition of A^T A = V diag(lambda) V^T: A^+ y = V diag(1/lambda) V^T A^T y. */
static void test_rank_deficient(void)
{
    const size_t N = 8, d = 11, ndup = 3; /* rows 5..7 repeat rows 0..2: rank 5 */
    rs_rng *r = rs_rng_alloc(7, RS_STREAM_DATA);
    double *A = gauss(r, N * d), *y = gauss(r, N);
    for (size_t k = 0; k < ndup; k++) memcpy(A + (N - ndup + k) * d, A + k * d, d * sizeof(double));
    double *w = malloc(d * sizeof(double)), *sv = malloc(N * sizeof(double));
    size_t rank = 0;
    int st = ls_minnorm(N, d, A, y, -1, w, &rank, sv);
    CHECK(st == RS_OK, "minnorm rank-deficient: RS_OK");
    CHECK(rank == N - ndup, "minnorm rank-deficient: rank %zu (expected %zu)", rank, N - ndup);
    CHECK(sv[N - ndup] <= 64.0 * (double)N * EPS * sv[0],
          "minnorm rank-deficient: trailing singular value %.3g ~ 0", sv[N - ndup]);

    double *G = malloc(d * d * sizeof(double)), *V = malloc(d * d * sizeof(double));
    double *lam = malloc(d * sizeof(double)), *aty = malloc(d * sizeof(double)), *wref = calloc(d, sizeof(double));
    ata(N, d, A, G);
    sym_eig(d, G, lam, V);
    for (size_t j = 0; j < d; j++) {
        aty[j] = 0;
        for (size_t t = 0; t < N; t++) aty[j] += A[t * d + j] * y[t];
    }
    size_t rk = 0;
    for (size_t i = 0; i < d; i++) {
        if (lam[i] <= 1e-10 * lam[0]) continue;
        rk++;
        double c = 0;
        for (size_t j = 0; j < d; j++) c += V[j * d + i] * aty[j];
        for (size_t j = 0; j < d; j++) wref[j] += V[j * d + i] * c / lam[i];
    }
    CHECK(rk == rank, "rank-deficient: eigen-decomposition of A^T A finds the same rank (%zu)", rk);
    double kappa = sv[0] / sv[rank - 1];
    double tol = 64.0 * (double)d * EPS * kappa * kappa * maxabs(wref, d);
    double err = maxdiff(w, wref, d);
    CHECK(err <= tol, "minnorm rank-deficient vs pseudo-inverse: max err %.3g (tol %.3g)", err, tol);

    /* ls_gram_spectrum sees the same rank */
    size_t grank = 0;
    double lmin = 0, lmax = 0;
    st = ls_gram_spectrum(N, d, A, -1, NULL, &grank, &lmin, &lmax);
    CHECK(st == RS_OK && grank == N - ndup, "gram_spectrum rank-deficient: rank %zu (expected %zu)", grank, N - ndup);
    CHECK_NEAR(lmin, lam[rank - 1] / (double)N, 64.0 * (double)d * EPS * lam[0] / (double)N,
               "gram_spectrum rank-deficient: lambda_min = smallest non-zero eig of G");
    CHECK_NEAR(lmax, lam[0] / (double)N, 64.0 * (double)d * EPS * lam[0] / (double)N,
               "gram_spectrum rank-deficient: lambda_max");

    free(A); free(y); free(w); free(sv); free(G); free(V); free(lam); free(aty); free(wref);
    rs_rng_free(r);
}

/* ls_gram_spectrum vs the eigenvalues of the d x d G = A^T A / N, computed directly. */
static void test_spectrum(size_t N, size_t d, uint64_t seed)
{
    rs_rng *r = rs_rng_alloc(seed, RS_STREAM_DATA);
    double *A = gauss(r, N * d);
    double *eig = malloc(N * sizeof(double)), *G = malloc(d * d * sizeof(double)), *lam = malloc(d * sizeof(double));
    size_t rank = 0;
    double lmin = 0, lmax = 0;
    int st = ls_gram_spectrum(N, d, A, -1, eig, &rank, &lmin, &lmax);
    CHECK(st == RS_OK, "gram_spectrum N=%zu d=%zu: RS_OK", N, d);
    ata(N, d, A, G);
    for (size_t i = 0; i < d * d; i++) G[i] /= (double)N;
    sym_eig(d, G, lam, NULL);
    size_t k = N < d ? N : d;
    CHECK(rank == k, "gram_spectrum N=%zu d=%zu: rank %zu (expected %zu)", N, d, rank, k);
    double tol = 16.0 * (double)(N > d ? N : d) * EPS * lam[0];
    double worst = maxdiff(eig, lam, k);
    CHECK(worst <= tol, "gram_spectrum N=%zu d=%zu: %zu non-zero eigenvalues vs eig(A^T A/N): max err %.3g (tol %.3g)",
          N, d, k, worst, tol);
    if (N > d)
        CHECK(maxabs(eig + d, N - d) <= tol, "gram_spectrum N=%zu d=%zu: the other %zu eigenvalues ~ 0 (max %.3g)",
              N, d, N - d, maxabs(eig + d, N - d));
    int dec = 1;
    for (size_t i = 1; i < N; i++) dec &= eig[i] <= eig[i - 1];
    CHECK(dec, "gram_spectrum N=%zu d=%zu: eigenvalues in decreasing order", N, d);
    CHECK_NEAR(lmax, lam[0], tol, "gram_spectrum lambda_max");
    CHECK_NEAR(lmin, lam[k - 1], tol, "gram_spectrum lambda_min");
    /* an explicit tolerance above every eigenvalue but the largest: rank 1 */
    st = ls_gram_spectrum(N, d, A, eig[1] / eig[0] * (1.0 + 1e-9), NULL, &rank, &lmin, NULL);
    CHECK(st == RS_OK && rank == 1 && lmin == lmax, "gram_spectrum explicit tol: rank %zu, lambda_min = lambda_max", rank);
    free(A); free(eig); free(G); free(lam);
    rs_rng_free(r);
}

/* rho = max_t a_t^T G a_t and ||v||_G^2 = v^T G v, brute force through G. */
static void test_rho_gnorm(size_t N, size_t d, uint64_t seed)
{
    rs_rng *r = rs_rng_alloc(seed, RS_STREAM_DATA);
    double *A = gauss(r, N * d), *v = gauss(r, d);
    /* make the rows' norms differ so that the max is not a near tie */
    for (size_t t = 0; t < N; t++)
        for (size_t j = 0; j < d; j++) A[t * d + j] *= 1.0 + 0.1 * (double)(t % 5);
    double *G = malloc(d * d * sizeof(double)), *work = malloc(N * sizeof(double));
    ata(N, d, A, G);
    for (size_t i = 0; i < d * d; i++) G[i] /= (double)N;
    double ref = 0, gsum = 0;
    for (size_t t = 0; t < N; t++) {
        double q = 0;
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) q += A[t * d + i] * G[i * d + j] * A[t * d + j];
        if (q > ref) ref = q;
    }
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) gsum += v[i] * G[i * d + j] * v[j];
    double rho = -1;
    int st = ls_gram_rho(N, d, A, &rho);
    CHECK(st == RS_OK, "gram_rho N=%zu d=%zu: RS_OK", N, d);
    CHECK_NEAR(rho, ref, 8.0 * (double)(N + d) * EPS * ref, "gram_rho vs max_t a_t^T G a_t");
    double g = ls_gnorm2(N, d, A, v, work);
    CHECK_NEAR(g, gsum, 8.0 * (double)(N + d) * EPS * fabs(gsum), "gnorm2 vs v^T G v");
    free(A); free(v); free(G); free(work);
    rs_rng_free(r);
}

/* At the simulator's sizes: interpolation residual and spectrum consistency
 * (lambda_max = ||A||_2^2 / N). */
static void test_hot_size(void)
{
    const size_t N = 128, d = 512;
    rs_rng *r = rs_rng_alloc(11, RS_STREAM_DATA);
    double *A = gauss(r, N * d), *y = gauss(r, N), *w = malloc(d * sizeof(double)), *sv = malloc(N * sizeof(double));
    double *eig = malloc(N * sizeof(double)), *res = malloc(N * sizeof(double));
    size_t rank = 0, grank = 0;
    double lmin, lmax;
    int st = ls_minnorm(N, d, A, y, -1, w, &rank, sv);
    st |= ls_gram_spectrum(N, d, A, -1, eig, &grank, &lmin, &lmax);
    CHECK(st == RS_OK && rank == N && grank == N, "hot size N=%zu d=%zu: full rank (%zu, %zu)", N, d, rank, grank);
    for (size_t t = 0; t < N; t++) {
        res[t] = -y[t];
        for (size_t j = 0; j < d; j++) res[t] += A[t * d + j] * w[j];
    }
    double kappa = sv[0] / sv[N - 1];
    double tol = 16.0 * (double)d * EPS * kappa * (sv[0] * sqrt((double)d) * maxabs(w, d) + maxabs(y, N));
    CHECK(maxabs(res, N) <= tol, "hot size: interpolation residual %.3g (tol %.3g)", maxabs(res, N), tol);
    CHECK_NEAR(lmax, sv[0] * sv[0] / (double)N, 16.0 * (double)d * EPS * lmax, "hot size: lambda_max = s_max^2/N");
    CHECK_NEAR(lmin, sv[N - 1] * sv[N - 1] / (double)N, 16.0 * (double)d * EPS * lmax, "hot size: lambda_min = s_min^2/N");
    free(A); free(y); free(w); free(sv); free(eig); free(res);
    rs_rng_free(r);
}

static void test_bad_args(void)
{
    double A[6] = {1, 2, 3, 4, 5, 6}, y[2] = {1, 2}, w[3], sv[2], work[2], rho;
    size_t rank;
    CHECK(ls_minnorm(0, 3, A, y, -1, w, &rank, sv) == RS_EINVAL, "minnorm N=0 -> RS_EINVAL");
    CHECK(ls_minnorm(2, 0, A, y, -1, w, &rank, sv) == RS_EINVAL, "minnorm d=0 -> RS_EINVAL");
    CHECK(ls_minnorm(2, 3, NULL, y, -1, w, &rank, sv) == RS_EINVAL, "minnorm A=NULL -> RS_EINVAL");
    CHECK(ls_minnorm(2, 3, A, NULL, -1, w, &rank, sv) == RS_EINVAL, "minnorm y=NULL -> RS_EINVAL");
    CHECK(ls_minnorm(2, 3, A, y, -1, NULL, &rank, sv) == RS_EINVAL, "minnorm w=NULL -> RS_EINVAL");
    CHECK(ls_minnorm(2, 3, A, y, NAN, w, &rank, sv) == RS_EINVAL, "minnorm rcond=NaN -> RS_EINVAL");
    A[4] = NAN;
    CHECK(ls_minnorm(2, 3, A, y, -1, w, &rank, sv) == RS_EINVAL && strlen(rs_last_error()) > 0,
          "minnorm NaN in A -> RS_EINVAL with a message (\"%s\")", rs_last_error());
    CHECK(ls_gram_spectrum(2, 3, A, -1, NULL, NULL, NULL, NULL) == RS_EINVAL, "gram_spectrum NaN in A -> RS_EINVAL");
    A[4] = 5;
    CHECK(ls_minnorm(2, 3, A, y, -1, w, NULL, NULL) == RS_OK, "minnorm optional outputs NULL -> RS_OK");
    CHECK(ls_gram_spectrum(0, 3, A, -1, NULL, NULL, NULL, NULL) == RS_EINVAL, "gram_spectrum N=0 -> RS_EINVAL");
    CHECK(ls_gram_spectrum(2, 3, NULL, -1, NULL, NULL, NULL, NULL) == RS_EINVAL, "gram_spectrum A=NULL -> RS_EINVAL");
    CHECK(ls_gram_spectrum(2, 3, A, -1, NULL, NULL, NULL, NULL) == RS_OK, "gram_spectrum all outputs NULL -> RS_OK");
    CHECK(ls_gram_rho(2, 0, A, &rho) == RS_EINVAL, "gram_rho d=0 -> RS_EINVAL");
    CHECK(ls_gram_rho(2, 3, A, NULL) == RS_EINVAL, "gram_rho rho=NULL -> RS_EINVAL");
    CHECK(isnan(ls_gnorm2(2, 3, A, NULL, work)), "gnorm2 v=NULL -> NaN");
    CHECK(isnan(ls_gnorm2(0, 3, A, y, work)), "gnorm2 N=0 -> NaN");

    /* A = 0: rank 0, lambda_min = lambda_max = 0, min-norm solution 0 */
    double Z[6] = {0};
    size_t grank = 99;
    double lmin = -1, lmax = -1;
    CHECK(ls_gram_spectrum(2, 3, Z, -1, NULL, &grank, &lmin, &lmax) == RS_OK && grank == 0 && lmin == 0 && lmax == 0,
          "gram_spectrum A=0: rank 0, lambda_min = lambda_max = 0");
    CHECK(ls_minnorm(2, 3, Z, y, -1, w, &rank, NULL) == RS_OK && rank == 0 && maxabs(w, 3) == 0,
          "minnorm A=0: rank 0, w = 0");
}

int main(void)
{
    test_underdetermined(5, 12, 1);
    test_underdetermined(30, 31, 2);
    test_overdetermined(40, 6, 3);
    test_overdetermined(9, 9, 4);
    test_rank_deficient();
    test_spectrum(7, 15, 5);
    test_spectrum(20, 6, 6);
    test_rho_gnorm(6, 14, 8);  /* N < d: through K = A A^T */
    test_rho_gnorm(25, 7, 9);  /* N > d: through G = A^T A / N */
    test_rho_gnorm(10, 10, 10);
    test_hot_size();
    test_bad_args();
    return check_summary("test_linalg");
}
