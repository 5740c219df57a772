/* rostesim: orthogonal rotation objects (quant/rotation.h, ROSTE.md §3).
 *
 * Dimension letters: n = b * nb the dimension, b the block, nb the number of
 * blocks. A row x (length n) holds nb segments of length b, each multiplied by
 * the same block B; so "rows" on R rows is "rows" on R*nb rows of length b. */
#include "quant/rotation.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/hadamard.h"
#include "quant/status.h"

struct rot {
    rot_kind kind;
    size_t b, nb, n;
    had_plan *had;  /* HADAMARD, RANDOM_HADAMARD */
    float *sf;      /* RANDOM_HADAMARD: signs r (b) */
    double *sd;
    double *Qd;     /* HAAR: b x b row-major */
    float *Qf;
};

/* Haar-random orthogonal Q (b x b): QR of a Gaussian matrix, columns of Q
 * multiplied by sign(R_jj) so that diag(R) > 0 (Mezzadri 2007). */
static int haar_matrix(size_t b, rs_rng *rng, double *Q)
{
    double *tau = malloc(b * sizeof *tau), *sgn = malloc(b * sizeof *sgn);
    if (!tau || !sgn) { free(tau); free(sgn); return RS_ERROR(RS_ENOMEM, "rot_alloc: out of memory"); }
    for (size_t i = 0; i < b * b; i++) Q[i] = rs_rng_gaussian(rng, 1.0);
    /* Serial BLAS: the QR's unblocked panels make thousands of short dtrmv/dger calls, and
     * OpenBLAS's OpenMP build opens a team for each (under load each waits for a
     * descheduled thread: seconds for b = 512, against ~50 ms serial). Serial also gives
     * the same Q for any thread count. */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)b, (lapack_int)b, Q, (lapack_int)b, tau);
    if (info == 0) {
        for (size_t j = 0; j < b; j++) sgn[j] = Q[j * b + j] < 0 ? -1.0 : 1.0;
        info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)b, (lapack_int)b, (lapack_int)b, Q, (lapack_int)b, tau);
    }
    if (info == 0)
        for (size_t i = 0; i < b; i++)
            for (size_t j = 0; j < b; j++) Q[i * b + j] *= sgn[j];
    openblas_set_num_threads(blas_threads);
    free(tau);
    free(sgn);
    if (info != 0) return RS_ERROR(RS_ENUMERIC, "rot_alloc: QR of the Gaussian matrix failed (LAPACK info %d)", (int)info);
    return RS_OK;
}

int rot_alloc(rot_kind kind, size_t block, size_t nblocks, rs_rng *rng, rot **out)
{
    if (!out) return RS_ERROR(RS_EINVAL, "rot_alloc: NULL output");
    *out = NULL;
    if (block == 0 || nblocks == 0) return RS_ERROR(RS_EINVAL, "rot_alloc: block %zu, nblocks %zu", block, nblocks);
    if (kind < ROT_IDENTITY || kind > ROT_HAAR) return RS_ERROR(RS_EINVAL, "rot_alloc: unknown kind %d", (int)kind);
    if ((kind == ROT_RANDOM_HADAMARD || kind == ROT_HAAR) && !rng)
        return RS_ERROR(RS_EINVAL, "rot_alloc: %s needs a random generator", rot_kind_name(kind));
    rot *r = calloc(1, sizeof *r);
    if (!r) return RS_ERROR(RS_ENOMEM, "rot_alloc: out of memory");
    r->kind = kind;
    r->b = block;
    r->nb = nblocks;
    r->n = block * nblocks;
    int st = RS_OK;
    if (kind == ROT_HADAMARD || kind == ROT_RANDOM_HADAMARD) st = had_plan_alloc(block, &r->had);
    if (!st && kind == ROT_RANDOM_HADAMARD) {
        r->sf = malloc(block * sizeof *r->sf);
        r->sd = malloc(block * sizeof *r->sd);
        if (!r->sf || !r->sd) st = RS_ERROR(RS_ENOMEM, "rot_alloc: out of memory");
        else
            for (size_t i = 0; i < block; i++) r->sf[i] = (float)(r->sd[i] = rs_rng_sign(rng));
    }
    if (!st && kind == ROT_HAAR) {
        r->Qd = malloc(block * block * sizeof *r->Qd);
        r->Qf = malloc(block * block * sizeof *r->Qf);
        if (!r->Qd || !r->Qf) st = RS_ERROR(RS_ENOMEM, "rot_alloc: out of memory");
        else st = haar_matrix(block, rng, r->Qd);
        if (!st)
            for (size_t i = 0; i < block * block; i++) r->Qf[i] = (float)r->Qd[i];
    }
    if (st) { rot_free(r); return st; }
    *out = r;
    return RS_OK;
}

int rot_hadamard_signs(const rot *r, float *signs)
{
    if (!r || !signs) return RS_ERROR(RS_EINVAL, "rot_hadamard_signs: NULL argument");
    if (r->kind == ROT_HADAMARD) {
        for (size_t i = 0; i < r->b; i++) signs[i] = 1.0f;
        return RS_OK;
    }
    if (r->kind != ROT_RANDOM_HADAMARD)
        return RS_ERROR(RS_EINVAL, "rot_hadamard_signs: a %s rotation has no sign vector", rot_kind_name(r->kind));
    memcpy(signs, r->sf, r->b * sizeof *signs);
    return RS_OK;
}

int rot_alloc_signed_hadamard(size_t block, size_t nblocks, const float *signs, rot **out)
{
    if (!out || !signs) return RS_ERROR(RS_EINVAL, "rot_alloc_signed_hadamard: NULL argument");
    *out = NULL;
    for (size_t i = 0; i < block; i++)
        if (signs[i] != 1.0f && signs[i] != -1.0f)
            return RS_ERROR(RS_EINVAL, "rot_alloc_signed_hadamard: sign %zu is %g, not +1 or -1", i, (double)signs[i]);
    rs_rng *rng = rs_rng_alloc(0, 0); /* draws signs that are overwritten below */
    if (!rng) return RS_ERROR(RS_ENOMEM, "rot_alloc_signed_hadamard: out of memory");
    int st = rot_alloc(ROT_RANDOM_HADAMARD, block, nblocks, rng, out);
    rs_rng_free(rng);
    if (st) return st;
    for (size_t i = 0; i < block; i++) (*out)->sd[i] = (double)((*out)->sf[i] = signs[i]);
    return RS_OK;
}

void rot_free(rot *r)
{
    if (!r) return;
    had_plan_free(r->had);
    free(r->sf);
    free(r->sd);
    free(r->Qd);
    free(r->Qf);
    free(r);
}

size_t rot_dim(const rot *r) { return r ? r->n : 0; }
size_t rot_block(const rot *r) { return r ? r->b : 0; }
rot_kind rot_get_kind(const rot *r) { return r ? r->kind : ROT_IDENTITY; }

const char *rot_kind_name(rot_kind k)
{
    switch (k) {
    case ROT_IDENTITY: return "none";
    case ROT_HADAMARD: return "hadamard";
    case ROT_RANDOM_HADAMARD: return "random-hadamard";
    case ROT_HAAR: return "haar";
    default: return "unknown";
    }
}

int rot_kind_parse(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "none") || !strcmp(s, "identity")) return ROT_IDENTITY;
    if (!strcmp(s, "hadamard")) return ROT_HADAMARD;
    if (!strcmp(s, "random-hadamard") || !strcmp(s, "rh")) return ROT_RANDOM_HADAMARD;
    if (!strcmp(s, "haar")) return ROT_HAAR;
    return -1;
}

/* Rows per chunk of the dense (Haar) product. */
static size_t haar_chunk(size_t b)
{
    size_t c = ((size_t)1 << 18) / b;
    return c ? c : 1;
}

/* x (m x b segments) <- x * B or x * B^T, m = rows * nb. */
#define DEFINE_ROWS(SUFFIX, T, GEMM, SIGNS, QMAT, HADAPPLY)                                              \
    static int rows_ws_##SUFFIX(const rot *r, T *x, size_t rows, int transpose, T *ws)                  \
    {                                                                                                    \
        if (!r) return RS_ERROR(RS_EINVAL, "rot_apply_rows: NULL rotation");                             \
        if (!rows || r->kind == ROT_IDENTITY) return RS_OK;                                              \
        if (!x) return RS_ERROR(RS_EINVAL, "rot_apply_rows: NULL data");                                 \
        size_t b = r->b, m = rows * r->nb;                                                               \
        if (r->kind == ROT_HADAMARD) return HADAPPLY(r->had, x, m, transpose, ws);                       \
        if (r->kind == ROT_RANDOM_HADAMARD) {                                                            \
            /* R = H diag(s): x R = (x H) diag(s); x R^T = (x diag(s)) H^T. */                          \
            const T *s = r->SIGNS;                                                                       \
            long M = (long)m;                                                                            \
            if (transpose) {                                                                             \
                _Pragma("omp parallel for schedule(static) if (m * b >= (1 << 16))")                     \
                for (long i = 0; i < M; i++)                                                             \
                    for (size_t j = 0; j < b; j++) x[(size_t)i * b + j] *= s[j];                         \
                return HADAPPLY(r->had, x, m, 1, ws);                                                    \
            }                                                                                            \
            int st = HADAPPLY(r->had, x, m, 0, ws);                                                      \
            if (st) return st;                                                                           \
            _Pragma("omp parallel for schedule(static) if (m * b >= (1 << 16))")                         \
            for (long i = 0; i < M; i++)                                                                 \
                for (size_t j = 0; j < b; j++) x[(size_t)i * b + j] *= s[j];                             \
            return RS_OK;                                                                                \
        }                                                                                                \
        /* Haar: dense product through BLAS, chunk by chunk. */                                          \
        size_t C = haar_chunk(b);                                                                        \
        if (C > m) C = m;                                                                                \
        T *tmp = ws ? ws : malloc(C * b * sizeof *tmp);                                                  \
        if (!tmp) return RS_ERROR(RS_ENOMEM, "rot_apply_rows: out of memory");                           \
        for (size_t i0 = 0; i0 < m; i0 += C) {                                                           \
            size_t nc = m - i0 < C ? m - i0 : C;                                                         \
            memcpy(tmp, x + i0 * b, nc * b * sizeof *tmp);                                               \
            GEMM(CblasRowMajor, CblasNoTrans, transpose ? CblasTrans : CblasNoTrans, (int)nc, (int)b,    \
                 (int)b, 1, tmp, (int)b, r->QMAT, (int)b, 0, x + i0 * b, (int)b);                        \
        }                                                                                                \
        if (!ws) free(tmp);                                                                              \
        return RS_OK;                                                                                    \
    }

static int had_apply_f64_ws(const had_plan *p, double *x, size_t rows, int transpose, double *ws)
{
    (void)ws;
    return had_apply_f64(p, x, rows, transpose);
}

DEFINE_ROWS(f32, float, cblas_sgemm, sf, Qf, had_apply_f32_ws)
DEFINE_ROWS(f64, double, cblas_dgemm, sd, Qd, had_apply_f64_ws)

size_t rot_apply_ws_len(const rot *r, size_t rows)
{
    if (!r || !rows) return 0;
    size_t m = rows * r->nb;
    if (r->kind == ROT_HADAMARD || r->kind == ROT_RANDOM_HADAMARD) return had_apply_ws_len(r->had, m);
    if (r->kind == ROT_HAAR) {
        size_t C = haar_chunk(r->b);
        return (C > m ? m : C) * r->b;
    }
    return 0;
}

int rot_apply_rows_f32_ws(const rot *r, float *x, size_t rows, int transpose, float *ws)
{
    if (ws && !rot_apply_ws_len(r, rows)) ws = NULL;
    return rows_ws_f32(r, x, rows, transpose, ws);
}
int rot_apply_rows_f32_grow(const rot *r, float *x, size_t rows, int transpose, float **ws, size_t *ws_len)
{
    size_t need = rot_apply_ws_len(r, rows);
    if (need > *ws_len) {
        float *nb = realloc(*ws, need * sizeof(float));
        if (!nb) return RS_ERROR(RS_ENOMEM, "rotation: out of memory for a workspace of %zu floats", need);
        *ws = nb;
        *ws_len = need;
    }
    return rot_apply_rows_f32_ws(r, x, rows, transpose, need ? *ws : NULL);
}
int rot_apply_rows_f32(const rot *r, float *x, size_t rows, int transpose) { return rows_ws_f32(r, x, rows, transpose, NULL); }
int rot_apply_rows_f64(const rot *r, double *x, size_t rows, int transpose) { return rows_ws_f64(r, x, rows, transpose, NULL); }

/* x (n x cols) <- R x or R^T x. Each block of b rows X_k (b x cols): B X_k =
 * (X_k^T B^T)^T, so transpose column panels, apply the rows operation with the
 * transpose flag flipped, and transpose back. Haar uses one gemm per panel. */
#define DEFINE_COLS(SUFFIX, T, GEMM, QMAT)                                                               \
    int rot_apply_cols_##SUFFIX(const rot *r, T *x, size_t cols, int transpose)                         \
    {                                                                                                    \
        if (!r) return RS_ERROR(RS_EINVAL, "rot_apply_cols: NULL rotation");                             \
        if (!cols || r->kind == ROT_IDENTITY) return RS_OK;                                              \
        if (!x) return RS_ERROR(RS_EINVAL, "rot_apply_cols: NULL data");                                 \
        size_t b = r->b, P = haar_chunk(b);                                                              \
        if (P > cols) P = cols;                                                                          \
        T *tmp = malloc(P * b * sizeof *tmp);                                                            \
        if (!tmp) return RS_ERROR(RS_ENOMEM, "rot_apply_cols: out of memory");                           \
        int st = RS_OK;                                                                                  \
        rot one = *r;                                                                                    \
        one.nb = 1;                                                                                      \
        one.n = b;                                                                                       \
        for (size_t k = 0; k < r->nb && !st; k++) {                                                      \
            T *X = x + k * b * cols;                                                                     \
            for (size_t c0 = 0; c0 < cols && !st; c0 += P) {                                             \
                size_t pc = cols - c0 < P ? cols - c0 : P;                                               \
                if (r->kind == ROT_HAAR) {                                                               \
                    for (size_t i = 0; i < b; i++) memcpy(tmp + i * pc, X + i * cols + c0, pc * sizeof *tmp); \
                    GEMM(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, CblasNoTrans, (int)b, (int)pc, \
                         (int)b, 1, r->QMAT, (int)b, tmp, (int)pc, 0, X + c0, (int)cols);                \
                    continue;                                                                            \
                }                                                                                        \
                for (size_t i = 0; i < b; i++)                                                           \
                    for (size_t j = 0; j < pc; j++) tmp[j * b + i] = X[i * cols + c0 + j];               \
                st = rot_apply_rows_##SUFFIX(&one, tmp, pc, !transpose);                                 \
                for (size_t i = 0; i < b; i++)                                                           \
                    for (size_t j = 0; j < pc; j++) X[i * cols + c0 + j] = tmp[j * b + i];               \
            }                                                                                            \
        }                                                                                                \
        free(tmp);                                                                                       \
        return st;                                                                                       \
    }

DEFINE_COLS(f32, float, cblas_sgemm, Qf)
DEFINE_COLS(f64, double, cblas_dgemm, Qd)

int rot_dense_f64(const rot *r, double *R)
{
    if (!r || !R) return RS_ERROR(RS_EINVAL, "rot_dense_f64: NULL argument");
    size_t n = r->n, b = r->b;
    memset(R, 0, n * n * sizeof *R);
    if (r->kind == ROT_HAAR) {
        for (size_t k = 0; k < r->nb; k++)
            for (size_t i = 0; i < b; i++) memcpy(R + (k * b + i) * n + k * b, r->Qd + i * b, b * sizeof *R);
        return RS_OK;
    }
    /* Block B: rows of I * B, from the dense Hadamard and the signs. */
    double *B = malloc(b * b * sizeof *B);
    if (!B) return RS_ERROR(RS_ENOMEM, "rot_dense_f64: out of memory");
    if (r->kind == ROT_IDENTITY) {
        memset(B, 0, b * b * sizeof *B);
        for (size_t i = 0; i < b; i++) B[i * b + i] = 1;
    } else {
        had_dense_f64(r->had, B);
        if (r->kind == ROT_RANDOM_HADAMARD)
            for (size_t i = 0; i < b; i++)
                for (size_t j = 0; j < b; j++) B[i * b + j] *= r->sd[j];
    }
    for (size_t k = 0; k < r->nb; k++)
        for (size_t i = 0; i < b; i++) memcpy(R + (k * b + i) * n + k * b, B + i * b, b * sizeof *R);
    free(B);
    return RS_OK;
}
