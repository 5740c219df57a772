/* rostesim: dense least squares and Gram spectra (LAPACKE + OpenBLAS, double).
 *
 * A is N x d, row-major, rows a_t. G = A^T A / N (d x d) is never formed when N <= d:
 * its non-zero spectrum and rho come from the N x N kernel K = A A^T, which costs
 * O(N^2 d) instead of O(d^2 N) / O(d^3). The header's comments are the spec.
 *
 * The API has no workspace arguments, so each call allocates its scratch once (one
 * malloc, freed before return) and reports RS_ENOMEM if that fails. */
#include "solvers/linalg.h"

#include <cblas.h>
#include <float.h>
#include <stdint.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/status.h"

static int all_finite(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* Checks shared by every entry point: sizes >= 1 that fit LAPACK's int, A non-NULL. */
static int check_shape(const char *fn, size_t N, size_t d, const double *A)
{
    if (N < 1 || d < 1) return RS_ERROR(RS_EINVAL, "%s: N = %zu, d = %zu (both must be >= 1)", fn, N, d);
    if (N > (size_t)INT32_MAX || d > (size_t)INT32_MAX || N > SIZE_MAX / d / sizeof(double))
        return RS_ERROR(RS_EINVAL, "%s: N = %zu, d = %zu too large", fn, N, d);
    if (!A) return RS_ERROR(RS_EINVAL, "%s: A is NULL", fn);
    return RS_OK;
}

int ls_minnorm(size_t N, size_t d, const double *A, const double *y, double rcond,
               double *w, size_t *rank, double *sv)
{
    int st = check_shape("ls_minnorm", N, d, A);
    if (st) return st;
    if (!y || !w) return RS_ERROR(RS_EINVAL, "ls_minnorm: y or w is NULL");
    if (isnan(rcond)) return RS_ERROR(RS_EINVAL, "ls_minnorm: rcond is NaN");
    if (!all_finite(A, N * d) || !all_finite(y, N))
        return RS_ERROR(RS_EINVAL, "ls_minnorm: A or y has non-finite entries");

    /* dgelsd overwrites A and needs b of length max(N, d) (the solution comes back in
     * its first d entries). A row-major N x d matrix is the column-major d x N matrix
     * A^T, so copy it transposed into a column-major N x d buffer: LAPACKE then works
     * on it directly instead of making its own transposed copy. */
    size_t m = N > d ? N : d, k = N < d ? N : d;
    double *buf = malloc((N * d + m + k) * sizeof(double));
    if (!buf) return RS_ERROR(RS_ENOMEM, "ls_minnorm: out of memory (N = %zu, d = %zu)", N, d);
    double *a = buf, *b = buf + N * d, *s = b + m;
    for (size_t t = 0; t < N; t++)
        for (size_t j = 0; j < d; j++) a[t + j * N] = A[t * d + j];
    memcpy(b, y, N * sizeof(double));
    if (m > N) memset(b + N, 0, (m - N) * sizeof(double));

    lapack_int r = 0;
    lapack_int info = LAPACKE_dgelsd(LAPACK_COL_MAJOR, (lapack_int)N, (lapack_int)d, 1, a,
                                     (lapack_int)N, b, (lapack_int)m, s, rcond < 0 ? -1.0 : rcond, &r);
    if (info != 0) {
        free(buf);
        if (info < 0) return RS_ERROR(RS_EINVAL, "ls_minnorm: dgelsd argument %d invalid", (int)-info);
        return RS_ERROR(RS_ENUMERIC, "ls_minnorm: dgelsd SVD did not converge (info %d)", (int)info);
    }
    memcpy(w, b, d * sizeof(double));
    if (sv) memcpy(sv, s, k * sizeof(double));
    if (rank) *rank = (size_t)r;
    free(buf);
    return RS_OK;
}

int ls_gram_spectrum(size_t N, size_t d, const double *A, double tol, double *eig,
                     size_t *rank, double *lambda_min, double *lambda_max)
{
    int st = check_shape("ls_gram_spectrum", N, d, A);
    if (st) return st;
    if (isnan(tol)) return RS_ERROR(RS_EINVAL, "ls_gram_spectrum: tol is NaN");
    if (!all_finite(A, N * d)) return RS_ERROR(RS_EINVAL, "ls_gram_spectrum: A has non-finite entries");

    double *buf = malloc((N * N + N) * sizeof(double));
    if (!buf) return RS_ERROR(RS_ENOMEM, "ls_gram_spectrum: out of memory (N = %zu)", N);
    double *K = buf, *ev = buf + N * N;

    /* K = A A^T / N, upper triangle in row-major = lower triangle read column-major. */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)N, (int)d, 1.0 / (double)N, A,
                (int)d, 0.0, K, (int)N);
    lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'L', (lapack_int)N, K, (lapack_int)N, ev);
    if (info != 0) {
        free(buf);
        if (info < 0) return RS_ERROR(RS_EINVAL, "ls_gram_spectrum: dsyevd argument %d invalid", (int)-info);
        return RS_ERROR(RS_ENUMERIC, "ls_gram_spectrum: dsyevd did not converge (info %d)", (int)info);
    }
    /* dsyevd returns ascending order; the API wants decreasing. */
    for (size_t i = 0; i < N / 2; i++) {
        double t = ev[i];
        ev[i] = ev[N - 1 - i];
        ev[N - 1 - i] = t;
    }
    double emax = ev[0];
    double thr = (tol < 0 ? (double)N * DBL_EPSILON : tol) * emax;
    size_t r = 0;
    if (emax > 0)
        while (r < N && ev[r] > thr) r++;
    if (eig) memcpy(eig, ev, N * sizeof(double));
    if (rank) *rank = r;
    if (lambda_min) *lambda_min = r ? ev[r - 1] : 0.0;
    if (lambda_max) *lambda_max = emax;
    free(buf);
    return RS_OK;
}

int ls_gram_rho(size_t N, size_t d, const double *A, double *rho)
{
    int st = check_shape("ls_gram_rho", N, d, A);
    if (st) return st;
    if (!rho) return RS_ERROR(RS_EINVAL, "ls_gram_rho: rho is NULL");

    /* a_t^T G a_t = (1/N) sum_s (a_s . a_t)^2. For N <= d: K = A A^T (N x N, O(N^2 d)),
     * then column sums of K^2. For N > d: G = A^T A / N (d x d, O(d^2 N)), B = A G
     * (O(N d^2)), then the row dots a_t . b_t. */
    double best = 0.0;
    if (N <= d) {
        double *buf = malloc((N * N + N) * sizeof(double));
        if (!buf) return RS_ERROR(RS_ENOMEM, "ls_gram_rho: out of memory (N = %zu)", N);
        double *K = buf, *acc = buf + N * N;
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)N, (int)d, 1.0, A, (int)d, 0.0,
                    K, (int)N);
        memset(acc, 0, N * sizeof(double));
        for (size_t s = 0; s < N; s++) {
            acc[s] += K[s * N + s] * K[s * N + s];
            for (size_t t = s + 1; t < N; t++) {
                double v = K[s * N + t] * K[s * N + t];
                acc[s] += v;
                acc[t] += v;
            }
        }
        for (size_t t = 0; t < N; t++)
            if (acc[t] > best) best = acc[t];
        best /= (double)N;
        free(buf);
    } else {
        double *buf = malloc((d * d + N * d) * sizeof(double));
        if (!buf) return RS_ERROR(RS_ENOMEM, "ls_gram_rho: out of memory (N = %zu, d = %zu)", N, d);
        double *G = buf, *B = buf + d * d;
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)N, 1.0 / (double)N, A,
                    (int)d, 0.0, G, (int)d);
        cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, (int)N, (int)d, 1.0, G, (int)d, A,
                    (int)d, 0.0, B, (int)d);
        for (size_t t = 0; t < N; t++) {
            double v = cblas_ddot((int)d, A + t * d, 1, B + t * d, 1);
            if (v > best) best = v;
        }
        free(buf);
    }
    if (!isfinite(best)) return RS_ERROR(RS_ENUMERIC, "ls_gram_rho: result is not finite");
    *rho = best;
    return RS_OK;
}

/* Returns NaN (and records RS_EINVAL) on invalid arguments: the API returns the value. */
double ls_gnorm2(size_t N, size_t d, const double *A, const double *v, double *work)
{
    if (check_shape("ls_gnorm2", N, d, A)) return NAN;
    if (!v || !work) {
        RS_ERROR(RS_EINVAL, "ls_gnorm2: v or work is NULL");
        return NAN;
    }
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)d, 1.0, A, (int)d, v, 1, 0.0, work, 1);
    return cblas_ddot((int)N, work, 1, work, 1) / (double)N;
}
