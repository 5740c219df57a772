/* rostesim: Cayley SGD on the orthogonal group. See stiefel.h. */
#include "solvers/stiefel.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/status.h"

/* W = W^ - W^T with W^ = M R^T - 1/2 R (R^T M R^T); T1, T2 n x n scratch. */
static void skew_of(const double *R, const double *M, size_t n, double *W, double *T1, double *T2)
{
    int N = (int)n;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, N, 1.0, M, N, R, N, 0.0, T1, N);  /* M R^T */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, N, N, 1.0, R, N, T1, N, 0.0, T2, N);  /* R^T M R^T */
    memcpy(W, T1, n * n * sizeof *W);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, -0.5, R, N, T2, N, 1.0, W, N); /* W^ */
    for (size_t i = 0; i < n; i++) {
        W[i * n + i] = 0;
        for (size_t j = i + 1; j < n; j++) {
            double a = W[i * n + j] - W[j * n + i];
            W[i * n + j] = a, W[j * n + i] = -a;
        }
    }
}

int stiefel_skew(const double *R, const double *G, size_t n, double *W)
{
    if (!R || !G || !W || n == 0) return RS_ERROR(RS_EINVAL, "stiefel_skew: NULL argument or n = 0");
    double *T = malloc(3 * n * n * sizeof *T);
    if (!T) return RS_ERROR(RS_ENOMEM, "stiefel_skew: out of memory");
    for (size_t i = 0; i < n * n; i++) T[2 * n * n + i] = -G[i];
    skew_of(R, T + 2 * n * n, n, W, T, T + n * n);
    free(T);
    return RS_OK;
}

int stiefel_cayley_step(double *R, const double *G, double *M, size_t n, double lr, double beta, int cap,
                        double *alpha_used)
{
    if (!R || !G || n == 0) return RS_ERROR(RS_EINVAL, "stiefel_cayley_step: NULL argument or n = 0");
    if (!(lr >= 0) || !(beta >= 0 && beta < 1))
        return RS_ERROR(RS_EINVAL, "stiefel_cayley_step: lr %g must be >= 0 and momentum %g in [0, 1)", lr, beta);
    size_t nn = n * n;
    double *buf = malloc(5 * nn * sizeof *buf);
    lapack_int *piv = malloc(n * sizeof *piv);
    if (!buf || !piv) {
        free(buf), free(piv);
        return RS_ERROR(RS_ENOMEM, "stiefel_cayley_step: out of memory (n = %zu)", n);
    }
    double *Mv = buf, *W = buf + nn, *A = buf + 2 * nn, *B = buf + 3 * nn, *T = buf + 4 * nn;
    if (M && beta > 0)
        for (size_t i = 0; i < nn; i++) Mv[i] = beta * M[i] - G[i];
    else
        for (size_t i = 0; i < nn; i++) Mv[i] = -G[i];
    skew_of(R, Mv, n, W, A, B);
    double norm1 = 0; /* max column sum of |W| */
    for (size_t j = 0; j < n; j++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += fabs(W[i * n + j]);
        if (s > norm1) norm1 = s;
    }
    double alpha = lr;
    if (cap && norm1 > 0 && 1.0 / norm1 < alpha) alpha = 1.0 / norm1;
    int N = (int)n, st = RS_OK;
    /* A = I - alpha/2 W, B = (I + alpha/2 W) R */
    for (size_t i = 0; i < nn; i++) A[i] = -0.5 * alpha * W[i], T[i] = 0.5 * alpha * W[i];
    for (size_t i = 0; i < n; i++) A[i * n + i] += 1, T[i * n + i] += 1;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0, T, N, R, N, 0.0, B, N);
    if (M) cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0, W, N, R, N, 0.0, M, N);
    lapack_int info = LAPACKE_dgesv(LAPACK_ROW_MAJOR, N, N, A, N, piv, B, N);
    if (info != 0) st = RS_ERROR(RS_ENUMERIC, "stiefel_cayley_step: dgesv info %d", (int)info);
    else memcpy(R, B, nn * sizeof *R);
    if (alpha_used) *alpha_used = alpha;
    free(buf), free(piv);
    return st;
}

double stiefel_orth_err(const double *R, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t k = 0; k < n; k++) s += R[k * n + i] * R[k * n + j];
            e = fmax(e, fabs(s - (i == j)));
        }
    return e;
}
