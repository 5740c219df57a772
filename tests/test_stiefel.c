/* Tests for solvers/stiefel: the Cayley step keeps R orthogonal to 1e-10 in double over
 * 1000 steps, its direction descends, the orthogonal Procrustes problem
 * min_R ||R A - B||_F^2 (optimum U V^T from the SVD of B A^T, computed here independently
 * with LAPACKE dgesvd) is solved by plain Cayley SGD and with momentum; the generator is
 * skew; bad arguments. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/rng.h"
#include "quant/status.h"
#include "solvers/stiefel.h"
#include "tests/check.h"

enum { N = 8, K = 20 };

static double objective(const double *R, const double *A, const double *B, double *G)
{
    double f = 0;
    double E[N * K];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < K; j++) {
            double s = -B[i * K + j];
            for (int k = 0; k < N; k++) s += R[i * N + k] * A[k * K + j];
            E[i * K + j] = s;
            f += s * s;
        }
    if (G)
        for (int i = 0; i < N; i++)
            for (int k = 0; k < N; k++) {
                double s = 0;
                for (int j = 0; j < K; j++) s += E[i * K + j] * A[k * K + j];
                G[i * N + k] = 2 * s;
            }
    return f;
}

/* R* = U V^T with B A^T = U S V^T */
static void procrustes(const double *A, const double *B, double *Rs)
{
    double M[N * N], U[N * N], VT[N * N], S[N], sup[N];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < N; k++) {
            double s = 0;
            for (int j = 0; j < K; j++) s += B[i * K + j] * A[k * K + j];
            M[i * N + k] = s;
        }
    LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'A', 'A', N, N, M, N, S, U, N, VT, N, sup);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < N; k++) {
            double s = 0;
            for (int j = 0; j < N; j++) s += U[i * N + j] * VT[j * N + k];
            Rs[i * N + k] = s;
        }
}

static double det_sign(const double *Rs)
{
    double LU[N * N];
    lapack_int piv[N];
    memcpy(LU, Rs, sizeof LU);
    LAPACKE_dgetrf(LAPACK_ROW_MAJOR, N, N, LU, N, piv);
    double s = 1;
    for (int i = 0; i < N; i++) s *= (LU[i * N + i] < 0 ? -1 : 1) * (piv[i] != i + 1 ? -1 : 1);
    return s;
}

static void run(const char *name, double lr, double beta, int cap, int steps)
{
    rs_rng *r = rs_rng_alloc(7, RS_STREAM_DATA);
    double A[N * K], B[N * K], R[N * N], Rs[N * N], G[N * N], Mo[N * N];
    for (int i = 0; i < N * K; i++) A[i] = rs_rng_gaussian(r, 1.0);
    for (int i = 0; i < N * K; i++) B[i] = rs_rng_gaussian(r, 1.0);
    procrustes(A, B, Rs);
    memset(R, 0, sizeof R);
    memset(Mo, 0, sizeof Mo);
    for (int i = 0; i < N; i++) R[i * N + i] = 1;
    R[0] = det_sign(Rs); /* the Cayley flow stays in R0's connected component (det +1 or -1) */
    double f0 = objective(R, A, B, NULL), fs = objective(Rs, A, B, NULL), worst = 0, orth = 0;
    int mono = 1, ok = 1;
    double fprev = f0;
    for (int t = 0; t < steps && ok; t++) {
        objective(R, A, B, G);
        ok = stiefel_cayley_step(R, G, beta > 0 ? Mo : NULL, N, lr, beta, cap, NULL) == RS_OK;
        double f = objective(R, A, B, NULL);
        if (beta == 0 && !cap && f > fprev + 1e-9 * (1 + fabs(fprev))) mono = 0;
        fprev = f;
        orth = fmax(orth, stiefel_orth_err(R, N));
    }
    for (int i = 0; i < N * N; i++) worst = fmax(worst, fabs(R[i] - Rs[i]));
    double f1 = objective(R, A, B, NULL);
    CHECK(ok, "%s: %d steps ran", name, steps);
    CHECK(orth <= 1e-10, "%s: max ||R^T R - I||_max over %d steps = %.3g <= 1e-10", name, steps, orth);
    if (beta == 0 && !cap) CHECK(mono, "%s: the objective never increases (plain steps)", name);
    CHECK(f1 <= fs + 1e-8 * fs, "%s: objective %.6g -> %.10g, the SVD optimum %.10g", name, f0, f1, fs);
    CHECK(worst <= 1e-6, "%s: R = the Procrustes solution U V^T (max |diff| %.3g)", name, worst);
    rs_rng_free(r);
}

int main(void)
{
    run("cayley sgd lr 0.01", 0.01, 0, 0, 1000);
    run("cayley sgd lr 0.02, step capped at 1/||W||_1 (SpinQuant)", 0.02, 0, 1, 1000);
    run("cayley sgd momentum 0.5", 0.005, 0.5, 0, 1000);

    /* descent and skewness at a random point */
    rs_rng *r = rs_rng_alloc(3, RS_STREAM_DATA);
    double R[N * N], G[N * N], W[N * N], WR[N * N];
    memset(R, 0, sizeof R);
    for (int i = 0; i < N; i++) R[i * N + i] = 1;
    for (int i = 0; i < N * N; i++) G[i] = rs_rng_gaussian(r, 1.0);
    CHECK(stiefel_skew(R, G, N, W) == RS_OK, "skew generator computed");
    double skew = 0, dot = 0, wn = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            skew = fmax(skew, fabs(W[i * N + j] + W[j * N + i]));
            double s = 0;
            for (int k = 0; k < N; k++) s += W[i * N + k] * R[k * N + j];
            WR[i * N + j] = s;
        }
    for (int i = 0; i < N * N; i++) dot += G[i] * WR[i], wn += W[i] * W[i];
    CHECK(skew == 0, "W is skew exactly (max |W + W^T| = %g)", skew);
    CHECK(fabs(dot + wn) <= 1e-10 * wn, "<G, W R> = -||W||_F^2 (%.12g vs %.12g): a descent direction", dot, -wn);
    CHECK(stiefel_cayley_step(R, G, NULL, 0, 0.1, 0, 0, NULL) == RS_EINVAL, "n = 0 is RS_EINVAL");
    CHECK(stiefel_cayley_step(R, G, NULL, N, -1, 0, 0, NULL) == RS_EINVAL, "lr < 0 is RS_EINVAL");
    CHECK(stiefel_cayley_step(R, G, NULL, N, 0.1, 1.0, 0, NULL) == RS_EINVAL, "momentum 1 is RS_EINVAL");
    rs_rng_free(r);
    return check_summary("test_stiefel");
}
