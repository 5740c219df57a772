/* rostesim: GPTQ (Frantar et al., 2022, Algorithm 1 with lazy batch updates).
 *
 * W is rows x cols (row-major, output channels x inputs), H is cols x cols (symmetric,
 * H = 2 X^T X). Let n = cols. The sweep works on a copy Wp of W with its columns in
 * processing order (perm[p] = original column at position p) and on U, the upper
 * Cholesky factor of the damped, permuted inverse Hessian (H^-1 = U^T U), both set up
 * once by gptq_setup(). For each position p:
 *     q      = Q(Wp[:, p])                 (fixed grid of the element's group)
 *     err    = (Wp[:, p] - q) / U[p][p]
 *     Wp[:, j] -= err * U[p][j]             for every j > p
 * gptq_quantize_f64 applies the last line inside a block of `block` columns at once
 * (rank-1 updates, dger) and to the columns after the block lazily, one dgemm per block;
 * gptq_quantize_f64_ref applies it eagerly, column by column, in plain loops. Both do the
 * same arithmetic up to the order of additions.
 *
 * Grid: QZ_TENSOR / QZ_ROW take (scale, zero) from the original W (before dead columns
 * are zeroed, as the reference code does). QZ_GROUP takes a group's (scale, zero) per
 * row from the current, error-updated values of the group's columns when the sweep
 * reaches the group's first column in processing order. Groups are always runs of
 * `group` consecutive ORIGINAL column indices, also with act_order (so the codes can be
 * stored in the usual layout); with act_order a group's columns are visited in scattered
 * order and its grid is fixed at the first of them visited. The blocked sweep computes
 * the current values exactly (in-block columns are up to date; later columns get the
 * pending lazy update from the block's errors with a dgemv), so blocked and reference
 * agree also when group starts fall inside a block. (Frantar's code reads the stale
 * lazily-updated W there; the two agree when block divides group.)
 *
 * Memory: the API takes no workspace, so each call makes its allocations up front
 * (O(n^2 + rows*n)) and frees them before returning. On any error W is left unchanged. */
#include "solvers/gptq.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quant/status.h"

typedef struct {
    const qz_spec *q;
    size_t rows, n, block;
    int ident;      /* bits >= 16: no rounding, only dead columns zeroed */
    size_t G, ngr;  /* QZ_GROUP: group length and groups per row */
    double *U;      /* n x n, upper triangle (row-major): H^-1 = U^T U, permuted */
    double *Wp;     /* rows x n, columns in processing order */
    double *scale, *zero; /* qz_ngroups(q, rows, n) entries */
    double *gbuf;   /* rows x G: a group's current values (QZ_GROUP) */
    double *gs, *gz;/* rows: the group's parameters as qz_params_f64 returns them */
    double *E;      /* rows x block: the block's scaled errors (blocked sweep) */
    size_t *perm;   /* position -> original column */
    size_t *pos;    /* original column -> position */
    unsigned char *ready; /* ngr flags: group's grid fixed (QZ_GROUP) */
    double *dbuf;
    size_t *zbuf;
} gptq_ws;

typedef struct {
    double v;
    size_t i;
} dkey;

/* Decreasing diag(H); ties keep the original order (deterministic). */
static int dkey_cmp(const void *a, const void *b)
{
    const dkey *x = a, *y = b;
    if (x->v > y->v) return -1;
    if (x->v < y->v) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

static void gptq_ws_free(gptq_ws *ws)
{
    free(ws->dbuf);
    free(ws->zbuf);
}

/* Validates, allocates, builds perm, Wp, the TENSOR/ROW grid and U. */
static int gptq_setup(gptq_ws *ws, const qz_spec *q, const double *W, size_t rows, size_t cols,
                      const double *H, double damp, int act_order, size_t block)
{
    memset(ws, 0, sizeof *ws);
    if (!q || !W || !H) return RS_ERROR(RS_EINVAL, "gptq: q, W or H is NULL");
    if (rows < 1 || cols < 1) return RS_ERROR(RS_EINVAL, "gptq: rows = %zu, cols = %zu (must be >= 1)", rows, cols);
    if (rows > INT32_MAX || cols > INT32_MAX || cols > SIZE_MAX / 8 / cols || rows > SIZE_MAX / 8 / cols)
        return RS_ERROR(RS_EINVAL, "gptq: rows = %zu, cols = %zu too large", rows, cols);
    if (block < 1) return RS_ERROR(RS_EINVAL, "gptq: block = 0 (must be >= 1)");
    if (!(damp >= 0) || !isfinite(damp)) return RS_ERROR(RS_EINVAL, "gptq: damp = %g (must be finite and >= 0)", damp);
    int st = qz_spec_check(q, cols);
    if (st) return st;
    for (size_t i = 0; i < rows * cols; i++)
        if (!isfinite(W[i])) return RS_ERROR(RS_EINVAL, "gptq: W has non-finite entries");
    for (size_t i = 0; i < cols * cols; i++)
        if (!isfinite(H[i])) return RS_ERROR(RS_EINVAL, "gptq: H has non-finite entries");

    size_t n = cols;
    ws->q = q;
    ws->rows = rows;
    ws->n = n;
    ws->block = block < n ? block : n;
    ws->ident = qz_is_identity(q);
    ws->G = (!ws->ident && q->gran == QZ_GROUP) ? q->group : 0;
    ws->ngr = ws->G ? n / ws->G : 0;
    size_t ng = ws->ident ? 0 : qz_ngroups(q, rows, n);

    size_t nd = n * n + rows * n + 2 * ng + rows * ws->G + 2 * rows + rows * ws->block;
    ws->dbuf = malloc(nd * sizeof(double));
    ws->zbuf = malloc((2 * n + ws->ngr + 1) * sizeof(size_t));
    dkey *keys = malloc(n * sizeof(dkey));
    if (!ws->dbuf || !ws->zbuf || !keys) {
        free(keys);
        gptq_ws_free(ws);
        return RS_ERROR(RS_ENOMEM, "gptq: out of memory (rows = %zu, cols = %zu)", rows, cols);
    }
    double *p = ws->dbuf;
    ws->U = p; p += n * n;
    ws->Wp = p; p += rows * n;
    ws->scale = p; p += ng;
    ws->zero = p; p += ng;
    ws->gbuf = p; p += rows * ws->G;
    ws->gs = p; p += rows;
    ws->gz = p; p += rows;
    ws->E = p;
    ws->perm = ws->zbuf;
    ws->pos = ws->zbuf + n;
    ws->ready = (unsigned char *)(ws->zbuf + 2 * n);
    memset(ws->ready, 0, ws->ngr);

    /* Grid of QZ_TENSOR / QZ_ROW from the original W. */
    if (!ws->ident && !ws->G) {
        st = qz_params_f64(q, W, rows, n, ws->scale, ws->zero);
        if (st) goto fail;
    }

    /* Dead inputs get H_ii = 1 (and zero weights below); order by decreasing diag. */
    double mean = 0;
    for (size_t i = 0; i < n; i++) {
        double h = H[i * n + i];
        keys[i].v = h == 0 ? 1.0 : h;
        keys[i].i = i;
        mean += keys[i].v;
    }
    mean /= (double)n;
    if (act_order) qsort(keys, n, sizeof *keys, dkey_cmp);
    for (size_t k = 0; k < n; k++) {
        ws->perm[k] = keys[k].i;
        ws->pos[keys[k].i] = k;
    }

    /* Permuted, damped H; W in processing order with dead columns zeroed. */
    for (size_t a = 0; a < n; a++) {
        const double *hrow = H + ws->perm[a] * n;
        for (size_t b = 0; b < n; b++) ws->U[a * n + b] = hrow[ws->perm[b]];
        ws->U[a * n + a] = keys[a].v + damp * mean;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < n; k++) {
            size_t c = ws->perm[k];
            ws->Wp[r * n + k] = H[c * n + c] == 0 ? 0.0 : W[r * n + c];
        }
    free(keys);
    keys = NULL;

    /* H = L L^T, H^-1 from L, H^-1 = L2 L2^T. Column-major lower = row-major upper, so
     * L2 read row-major is U = L2^T with H^-1 = U^T U. */
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)n, ws->U, (lapack_int)n);
    if (info) {
        st = RS_ERROR(info < 0 ? RS_EINVAL : RS_ENUMERIC,
                      "gptq: Cholesky of the damped Hessian failed (dpotrf info %d; H not positive definite, raise damp)",
                      (int)info);
        goto fail;
    }
    info = LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', (lapack_int)n, ws->U, (lapack_int)n);
    if (info) {
        st = RS_ERROR(info < 0 ? RS_EINVAL : RS_ENUMERIC, "gptq: inverting the damped Hessian failed (dpotri info %d)", (int)info);
        goto fail;
    }
    info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)n, ws->U, (lapack_int)n);
    if (info) {
        st = RS_ERROR(info < 0 ? RS_EINVAL : RS_ENUMERIC,
                      "gptq: Cholesky of the inverse Hessian failed (dpotrf info %d; ill-conditioned, raise damp)", (int)info);
        goto fail;
    }
    return RS_OK;
fail:
    free(keys);
    gptq_ws_free(ws);
    return st;
}

/* Q(w) for original column c of row r with the fixed grid. */
static inline double gptq_q(const gptq_ws *ws, size_t r, size_t c, double w)
{
    if (ws->ident) return w;
    size_t g;
    switch (ws->q->gran) {
    case QZ_TENSOR: g = 0; break;
    case QZ_ROW: g = r; break;
    default: g = r * ws->ngr + c / ws->G; break;
    }
    return qz_fake_scalar_f64(ws->q, w, ws->scale[g], ws->zero[g]);
}

/* QZ_GROUP: fix the grid of group g from gbuf (rows x G, its current values). */
static int gptq_group_params(gptq_ws *ws, size_t g)
{
    int st = qz_params_f64(ws->q, ws->gbuf, ws->rows, ws->G, ws->gs, ws->gz);
    if (st) return st;
    for (size_t r = 0; r < ws->rows; r++) {
        ws->scale[r * ws->ngr + g] = ws->gs[r];
        ws->zero[r * ws->ngr + g] = ws->gz[r];
    }
    ws->ready[g] = 1;
    return RS_OK;
}

/* Write the result back in the original column order. */
static void gptq_finish(gptq_ws *ws, double *W)
{
    for (size_t r = 0; r < ws->rows; r++)
        for (size_t k = 0; k < ws->n; k++) W[r * ws->n + ws->perm[k]] = ws->Wp[r * ws->n + k];
    gptq_ws_free(ws);
}

int gptq_quantize_f64(const qz_spec *q, double *W, size_t rows, size_t cols, const double *H,
                      double damp, int act_order, size_t block)
{
    gptq_ws ws;
    int st = gptq_setup(&ws, q, W, rows, cols, H, damp, act_order, block);
    if (st) return st;
    const size_t n = cols, B = ws.block;
    double *U = ws.U, *Wp = ws.Wp, *E = ws.E;

    for (size_t i1 = 0; i1 < n; i1 += B) {
        size_t i2 = i1 + B < n ? i1 + B : n;
        for (size_t p = i1; p < i2; p++) {
            size_t k = p - i1, c = ws.perm[p];
            if (ws.G && !ws.ready[c / ws.G]) {
                /* current values of the group's columns: those in this block are up to
                 * date, later ones still miss this block's errors so far */
                size_t g = c / ws.G;
                for (size_t t = 0; t < ws.G; t++) {
                    size_t pp = ws.pos[g * ws.G + t];
                    for (size_t r = 0; r < rows; r++) ws.gbuf[r * ws.G + t] = Wp[r * n + pp];
                    if (pp >= i2 && k > 0)
                        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)k, -1.0, E, (int)B,
                                    U + i1 * n + pp, (int)n, 1.0, ws.gbuf + t, (int)ws.G);
                }
                st = gptq_group_params(&ws, g);
                if (st) {
                    gptq_ws_free(&ws);
                    return st;
                }
            }
            double d = U[p * n + p];
            for (size_t r = 0; r < rows; r++) {
                double w = Wp[r * n + p], qv = gptq_q(&ws, r, c, w);
                Wp[r * n + p] = qv;
                E[r * B + k] = (w - qv) / d;
            }
            if (p + 1 < i2)
                cblas_dger(CblasRowMajor, (int)rows, (int)(i2 - p - 1), -1.0, E + k, (int)B,
                           U + p * n + p + 1, 1, Wp + p + 1, (int)n);
        }
        if (i2 < n)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)(n - i2), (int)(i2 - i1),
                        -1.0, E, (int)B, U + i1 * n + i2, (int)n, 1.0, Wp + i2, (int)n);
    }
    gptq_finish(&ws, W);
    return RS_OK;
}

int gptq_quantize_f64_ref(const qz_spec *q, double *W, size_t rows, size_t cols, const double *H,
                          double damp, int act_order)
{
    gptq_ws ws;
    int st = gptq_setup(&ws, q, W, rows, cols, H, damp, act_order, 1);
    if (st) return st;
    const size_t n = cols;
    double *U = ws.U, *Wp = ws.Wp;

    for (size_t p = 0; p < n; p++) {
        size_t c = ws.perm[p];
        if (ws.G && !ws.ready[c / ws.G]) {
            size_t g = c / ws.G;
            for (size_t t = 0; t < ws.G; t++)
                for (size_t r = 0; r < rows; r++) ws.gbuf[r * ws.G + t] = Wp[r * n + ws.pos[g * ws.G + t]];
            st = gptq_group_params(&ws, g);
            if (st) {
                gptq_ws_free(&ws);
                return st;
            }
        }
        const double *u = U + p * n;
        for (size_t r = 0; r < rows; r++) {
            double *wr = Wp + r * n;
            double w = wr[p], qv = gptq_q(&ws, r, c, w), err = (w - qv) / u[p];
            wr[p] = qv;
            for (size_t j = p + 1; j < n; j++) wr[j] -= err * u[j];
        }
    }
    gptq_finish(&ws, W);
    return RS_OK;
}
