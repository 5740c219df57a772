/* Tests of quant/rotation.c: orthogonality, Haar sign fix, rows/cols/transposes
 * against rot_dense_f64, block-diagonal structure, seeding, kind names. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/rotation.h"
#include "quant/status.h"
#include "solvers/stiefel.h"
#include "tests/check.h"

static rot *make(rot_kind k, size_t b, size_t nb, uint64_t seed)
{
    rs_rng *g = rs_rng_alloc(seed, RS_STREAM_ROTATION);
    rot *r = NULL;
    int st = rot_alloc(k, b, nb, g, &r);
    rs_rng_free(g);
    if (st) printf("rot_alloc(%s, %zu, %zu): %s\n", rot_kind_name(k), b, nb, rs_last_error());
    return r;
}

/* rows, cols, both transposes, f32 and f64 against the dense matrix. */
static void check_consistency(rot *r, const char *what)
{
    size_t n = rot_dim(r), rows = 3, cols = 5;
    double *R = malloc(n * n * sizeof *R);
    rot_dense_f64(r, R);
    CHECK(stiefel_orth_err(R, n) <= 1e-12, "%s: R^T R = I (err %.3g)", what, stiefel_orth_err(R, n));
    rs_rng *g = rs_rng_alloc(99, RS_STREAM_DATA);
    double *x = malloc(n * cols * sizeof *x), *y = malloc(n * cols * sizeof *y);
    float *xf = malloc(n * cols * sizeof *xf);
    for (int t = 0; t <= 1; t++) {
        /* rows: x (rows x n) <- x R or x R^T */
        for (size_t i = 0; i < rows * n; i++) xf[i] = (float)(x[i] = rs_rng_gaussian(g, 1.0));
        for (size_t a = 0; a < rows; a++)
            for (size_t j = 0; j < n; j++) {
                double s = 0;
                for (size_t k = 0; k < n; k++) s += x[a * n + k] * (t ? R[j * n + k] : R[k * n + j]);
                y[a * n + j] = s;
            }
        rot_apply_rows_f64(r, x, rows, t);
        rot_apply_rows_f32(r, xf, rows, t);
        double e = 0, ef = 0;
        for (size_t i = 0; i < rows * n; i++) { e = fmax(e, fabs(x[i] - y[i])); ef = fmax(ef, fabs(xf[i] - y[i])); }
        CHECK(e <= 1e-12 && ef <= 2e-5, "%s: rows transpose=%d = dense (f64 %.3g, f32 %.3g)", what, t, e, ef);
        /* cols: x (n x cols) <- R x or R^T x */
        for (size_t i = 0; i < n * cols; i++) xf[i] = (float)(x[i] = rs_rng_gaussian(g, 1.0));
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < cols; c++) {
                double s = 0;
                for (size_t k = 0; k < n; k++) s += (t ? R[k * n + i] : R[i * n + k]) * x[k * cols + c];
                y[i * cols + c] = s;
            }
        rot_apply_cols_f64(r, x, cols, t);
        rot_apply_cols_f32(r, xf, cols, t);
        e = ef = 0;
        for (size_t i = 0; i < n * cols; i++) { e = fmax(e, fabs(x[i] - y[i])); ef = fmax(ef, fabs(xf[i] - y[i])); }
        CHECK(e <= 1e-12 && ef <= 2e-5, "%s: cols transpose=%d = dense (f64 %.3g, f32 %.3g)", what, t, e, ef);
    }
    /* Block-diagonal: zero outside the diagonal blocks, identical blocks. */
    size_t b = rot_block(r), nb = n / b;
    int zero_ok = 1, same_ok = 1;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            if (i / b != j / b && R[i * n + j] != 0) zero_ok = 0;
            if (i / b == j / b && R[i * n + j] != R[(i % b) * n + j % b]) same_ok = 0;
        }
    CHECK(zero_ok && same_ok, "%s: block-diagonal with %zu equal blocks of %zu", what, nb, b);
    rs_rng_free(g);
    free(R); free(x); free(y); free(xf);
}

int main(void)
{
    struct { rot_kind k; size_t b, nb; } cases[] = {
        {ROT_IDENTITY, 8, 2},         {ROT_HADAMARD, 64, 1},        {ROT_HADAMARD, 12, 3},
        {ROT_HADAMARD, 28, 2},        {ROT_RANDOM_HADAMARD, 76, 1}, {ROT_RANDOM_HADAMARD, 16, 4},
        {ROT_RANDOM_HADAMARD, 20, 2}, {ROT_HAAR, 48, 1},            {ROT_HAAR, 10, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        rot *r = make(cases[c].k, cases[c].b, cases[c].nb, 7);
        char what[64];
        snprintf(what, sizeof what, "%s b=%zu nb=%zu", rot_kind_name(cases[c].k), cases[c].b, cases[c].nb);
        CHECK(r && rot_dim(r) == cases[c].b * cases[c].nb && rot_get_kind(r) == cases[c].k, "%s: allocated", what);
        if (r) check_consistency(r, what);
        if (r) { /* the workspace variant: same bytes */
            size_t rows = 37, n = rot_dim(r), wl = rot_apply_ws_len(r, rows + 3);
            float *a = malloc(rows * n * sizeof *a), *b2 = malloc(rows * n * sizeof *b2);
            float *ws = wl ? malloc(wl * sizeof *ws) : NULL;
            for (size_t i = 0; i < rows * n; i++) a[i] = b2[i] = (float)sin(0.37 * (double)i + 0.1 * (double)c);
            int same = rot_apply_ws_len(r, rows) <= wl;
            for (int t = 0; t < 2; t++)
                if (rot_apply_rows_f32(r, a, rows, t) || rot_apply_rows_f32_ws(r, b2, rows, t, ws) ||
                    memcmp(a, b2, rows * n * sizeof *a))
                    same = 0;
            CHECK(same, "%s: rot_apply_rows_f32_ws (%zu floats of workspace) bit-identical", what, wl);
            /* the growing workspace: from none, 1 row then 37, the same bytes again */
            float *gw = NULL;
            size_t gl = 0;
            same = 1;
            for (int t = 0; t < 2; t++)
                if (rot_apply_rows_f32(r, a, 1, t) || rot_apply_rows_f32_grow(r, b2, 1, t, &gw, &gl) ||
                    rot_apply_rows_f32(r, a, rows, t) || rot_apply_rows_f32_grow(r, b2, rows, t, &gw, &gl) ||
                    memcmp(a, b2, rows * n * sizeof *a))
                    same = 0;
            CHECK(same && gl == rot_apply_ws_len(r, rows), "%s: rot_apply_rows_f32_grow bit-identical, grown to %zu floats",
                  what, gl);
            free(a), free(b2), free(ws), free(gw);
        }
        rot_free(r);
    }

    /* Haar sign fix: re-factorising Q = Q R' gives R' = I up to rounding, i.e. the
     * columns were flipped so that diag(R) > 0 of the original QR; check directly
     * by redoing the QR of the Gaussian matrix from the same stream. */
    {
        size_t b = 40;
        rs_rng *g = rs_rng_alloc(11, RS_STREAM_ROTATION);
        double *G = malloc(b * b * sizeof *G), *Q = malloc(b * b * sizeof *Q), *Rm = malloc(b * b * sizeof *Rm);
        for (size_t i = 0; i < b * b; i++) G[i] = rs_rng_gaussian(g, 1.0);
        rs_rng_free(g);
        rot *r = make(ROT_HAAR, b, 1, 11);
        rot_dense_f64(r, Q);
        /* R = Q^T G must be upper triangular with a positive diagonal. */
        double lower = 0, mindiag = 1e300;
        for (size_t i = 0; i < b; i++)
            for (size_t j = 0; j < b; j++) {
                double s = 0;
                for (size_t k = 0; k < b; k++) s += Q[k * b + i] * G[k * b + j];
                Rm[i * b + j] = s;
                if (i > j) lower = fmax(lower, fabs(s));
                if (i == j) mindiag = fmin(mindiag, s);
            }
        CHECK(lower <= 1e-10 && mindiag > 0, "Haar: Q^T G upper triangular (%.3g) with diag > 0 (min %.3g)", lower,
              mindiag);
        rot_free(r);
        free(G); free(Q); free(Rm);
    }

    /* Seeds: same seed -> same rotation; different seeds -> different. */
    rot_kind rk[] = {ROT_RANDOM_HADAMARD, ROT_HAAR};
    for (int i = 0; i < 2; i++) {
        size_t n = 32;
        double *A = malloc(n * n * sizeof *A), *B = malloc(n * n * sizeof *B), *C = malloc(n * n * sizeof *C);
        rot *a = make(rk[i], n, 1, 5), *b = make(rk[i], n, 1, 5), *c = make(rk[i], n, 1, 6);
        rot_dense_f64(a, A);
        rot_dense_f64(b, B);
        rot_dense_f64(c, C);
        CHECK(memcmp(A, B, n * n * sizeof *A) == 0, "%s: same seed, same rotation", rot_kind_name(rk[i]));
        CHECK(memcmp(A, C, n * n * sizeof *A) != 0, "%s: different seed, different rotation", rot_kind_name(rk[i]));
        rot_free(a); rot_free(b); rot_free(c);
        free(A); free(B); free(C);
    }
    /* A random-sign Hadamard really has random signs (not all +1). */
    {
        rot *r = make(ROT_RANDOM_HADAMARD, 64, 1, 3), *h = make(ROT_HADAMARD, 64, 1, 3);
        double *A = malloc(64 * 64 * sizeof *A), *B = malloc(64 * 64 * sizeof *B);
        rot_dense_f64(r, A);
        rot_dense_f64(h, B);
        int flipped = 0;
        for (size_t j = 0; j < 64; j++) flipped += A[j] != B[j];
        CHECK(flipped > 10 && flipped < 54, "random-hadamard: %d of 64 columns flipped", flipped);
        rot_free(r); rot_free(h);
        free(A); free(B);
    }

    /* Names and parsing. */
    CHECK(rot_kind_parse("none") == ROT_IDENTITY && rot_kind_parse("identity") == ROT_IDENTITY, "parse none/identity");
    CHECK(rot_kind_parse("hadamard") == ROT_HADAMARD, "parse hadamard");
    CHECK(rot_kind_parse("random-hadamard") == ROT_RANDOM_HADAMARD && rot_kind_parse("rh") == ROT_RANDOM_HADAMARD,
          "parse random-hadamard/rh");
    CHECK(rot_kind_parse("haar") == ROT_HAAR && rot_kind_parse("bogus") == -1 && rot_kind_parse(NULL) == -1,
          "parse haar, reject unknown");
    for (int k = 0; k <= 3; k++)
        CHECK(rot_kind_parse(rot_kind_name((rot_kind)k)) == k, "name of kind %d round-trips ('%s')", k,
              rot_kind_name((rot_kind)k));

    /* Errors. */
    rot *r = (rot *)1;
    CHECK(rot_alloc(ROT_HADAMARD, 22, 1, NULL, &r) == RS_ENOTSUP && r == NULL, "Hadamard block 22 unsupported: %s",
          rs_last_error());
    CHECK(rot_alloc(ROT_HAAR, 8, 1, NULL, &r) == RS_EINVAL, "Haar without a generator rejected");
    CHECK(rot_alloc(ROT_HADAMARD, 0, 1, NULL, &r) == RS_EINVAL, "block 0 rejected");
    return check_summary("test_rotation");
}
