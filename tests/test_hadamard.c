/* Tests of quant/hadamard.c: constructions, orthogonality, fast vs dense, AVX2 vs
 * reference, transposes, unsupported orders. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/hadamard.h"
#include "quant/rng.h"
#include "quant/status.h"
#include "tests/check.h"

/* Every construction the library offers, by core order. */
static const size_t core_orders[] = {1,  2,  4,  8,  12, 20, 24, 28, 36, 44, 52, 60, 68, 76, 84, 100, 108, 124,
                                     132, 140, 148, 156, 164, 172, 244, 252, 344, 924, 144, 240};
/* The orders the brief requires, as K (times powers of two). */
static const size_t listed_K[] = {12, 20, 28, 36, 40, 44, 52, 60, 76, 108, 140, 148, 156, 172, 924};
static const size_t model_sizes[] = {768, 896, 3584, 4864, 11008, 14336, 18944, 29568, 576, 1536};

static void fill_gauss(rs_rng *g, double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = rs_rng_gaussian(g, 1.0);
}

static void test_cores(void)
{
    for (size_t c = 0; c < sizeof core_orders / sizeof *core_orders; c++) {
        size_t K = core_orders[c];
        int8_t *H = malloc(K * K);
        char desc[160];
        int st = had_core_matrix(K, H, desc, sizeof desc);
        CHECK(st == RS_OK, "core %zu constructed (%s) status %d %s", K, st ? "-" : desc, st, st ? rs_last_error() : "");
        if (st == RS_OK) {
            long bad = 0;
            int entries_ok = 1;
            for (size_t i = 0; i < K * K; i++)
                if (H[i] != 1 && H[i] != -1) entries_ok = 0;
            /* H H^T through BLAS in double: exact, the entries are integers below 2^53. */
            double *D = malloc(K * K * sizeof *D), *P = malloc(K * K * sizeof *P);
            for (size_t i = 0; i < K * K; i++) D[i] = H[i];
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)K, (int)K, (int)K, 1.0, D, (int)K, D, (int)K, 0.0,
                        P, (int)K);
            for (size_t i = 0; i < K; i++)
                for (size_t j = 0; j < K; j++)
                    if (P[i * K + j] != (i == j ? (double)K : 0.0)) bad++;
            free(D);
            free(P);
            CHECK(entries_ok && bad == 0, "core %zu (%s): entries +-1 and H H^T = %zu I exactly (%ld bad entries)", K,
                  desc, K, bad);
        }
        free(H);
    }
    /* The named constructions for a few orders. */
    struct { size_t K; const char *want; } named[] = {
        {28, "Paley I q=27 (28)"},          {52, "Paley II q=25 (52)"},         {76, "Paley II q=37 (76)"},
        {156, "Williamson n=39 (156)"},     {172, "Williamson n=43 (172)"},     {924, "Paley II q=461 (924)"},
        {12, "Paley I q=11 (12)"},          {144, "Paley I q=11 (12) \u2297 Paley I q=11 (12)"},
    };
    for (size_t i = 0; i < sizeof named / sizeof *named; i++) {
        char desc[160] = "";
        int8_t *H = malloc(named[i].K * named[i].K);
        had_core_matrix(named[i].K, H, desc, sizeof desc);
        CHECK(strcmp(desc, named[i].want) == 0, "core %zu described as '%s' (want '%s')", named[i].K, desc, named[i].want);
        free(H);
    }
    /* 22 is not a Hadamard order at all; 4*35 = 140 is (Paley I q=139), 4*47 = 188 has no construction here. */
    int8_t tmp[4];
    CHECK(had_core_matrix(22, NULL, NULL, 0) != RS_OK, "core 22 with NULL output rejected");
    CHECK(had_core_matrix(3, tmp, NULL, 0) == RS_ENOTSUP, "core 3 unsupported");
}

/* max |H H^T - I| via the fast transform: apply H^T to chunks of the identity
 * (rows e_i H^T... ) then H: e_i H^T H should be e_i. Uses x * H^T then * H. */
static double orth_error_rows(had_plan *p, size_t chunk, size_t rows);
static double orth_error(had_plan *p, size_t chunk) { return orth_error_rows(p, chunk, had_order(p)); }

/* As above on `rows` rows e_i spread evenly over 0..n-1 (all of them when rows = n). */
static double orth_error_rows(had_plan *p, size_t chunk, size_t rows)
{
    size_t n = had_order(p);
    double *X = malloc(chunk * n * sizeof *X), worst = 0;
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        size_t nb = rows - r0 < chunk ? rows - r0 : chunk;
        memset(X, 0, nb * n * sizeof *X);
        for (size_t b = 0; b < nb; b++) X[b * n + (r0 + b) * n / rows] = 1.0;
        had_apply_f64(p, X, nb, 0); /* rows of H */
        had_apply_f64(p, X, nb, 1); /* rows of H H^T */
        for (size_t b = 0; b < nb; b++)
            for (size_t j = 0; j < n; j++) {
                double e = fabs(X[b * n + j] - (j == (r0 + b) * n / rows ? 1.0 : 0.0));
                if (e > worst) worst = e;
            }
    }
    free(X);
    return worst;
}

static void test_orders(void)
{
    char desc[160];
    for (int m = 0; m <= 16; m++) {
        size_t n = (size_t)1 << m;
        had_plan *p = NULL;
        int st = had_plan_alloc(n, &p);
        CHECK(st == RS_OK, "plan 2^%d", m);
        if (st) continue;
        snprintf(desc, sizeof desc, "Sylvester %zu", n);
        CHECK(strcmp(had_describe(p), desc) == 0, "2^%d described '%s'", m, had_describe(p));
        /* Full check for n <= 4096, a sampled chunk of rows above. */
        double e;
        if (n <= 4096) e = orth_error(p, 256);
        else {
            double *X = calloc(64 * n, sizeof *X);
            for (size_t b = 0; b < 64; b++) X[b * n + (b * 997) % n] = 1.0;
            had_apply_f64(p, X, 64, 0);
            had_apply_f64(p, X, 64, 1);
            e = 0;
            for (size_t b = 0; b < 64; b++)
                for (size_t j = 0; j < n; j++) e = fmax(e, fabs(X[b * n + j] - (j == (b * 997) % n)));
            free(X);
        }
        CHECK(e <= 1e-12, "2^%d: max|H H^T - I| = %.3g", m, e);
        had_plan_free(p);
    }
    size_t nlisted = sizeof listed_K / sizeof *listed_K;
    for (size_t i = 0; i < nlisted; i++)
        for (int m = 0; m <= 2; m++) {
            size_t n = listed_K[i] << m;
            had_plan *p = NULL;
            int st = had_plan_alloc(n, &p);
            CHECK(st == RS_OK, "plan %zu = %zu * 2^%d: %s", n, listed_K[i], m, st ? rs_last_error() : had_describe(p));
            if (st) continue;
            /* All rows up to n = 1024, 256 rows spread evenly above (keeps ASan runs short). */
            size_t rows = n <= 1024 ? n : 256;
            double e = orth_error_rows(p, 128, rows);
            CHECK(e <= 1e-12, "%zu (%s): max|H H^T - I| = %.3g over %zu of %zu rows", n, had_describe(p), e, rows, n);
            had_plan_free(p);
        }
    for (size_t i = 0; i < sizeof model_sizes / sizeof *model_sizes; i++) {
        size_t n = model_sizes[i];
        had_plan *p = NULL;
        int st = had_plan_alloc(n, &p);
        CHECK(st == RS_OK, "model size %zu: %s", n, st ? rs_last_error() : had_describe(p));
        if (st) continue;
        /* Sampled rows for the big ones keep the test fast. */
        size_t rows = n <= 4864 ? n : 96;
        double *X = calloc(rows * n, sizeof *X), e = 0;
        for (size_t b = 0; b < rows; b++) X[b * n + (b * 7919) % n] = 1.0;
        had_apply_f64(p, X, rows, 0);
        had_apply_f64(p, X, rows, 1);
        for (size_t b = 0; b < rows; b++)
            for (size_t j = 0; j < n; j++) e = fmax(e, fabs(X[b * n + j] - (j == (b * 7919) % n)));
        CHECK(e <= 1e-12, "model size %zu (%s): max|H H^T - I| = %.3g over %zu rows", n, had_describe(p), e, rows);
        free(X);
        had_plan_free(p);
    }
    struct { size_t n; const char *want; } d[] = {
        {4864, "Paley II q=37 (76) \u2297 Sylvester 64"},
        {4096, "Sylvester 4096"},
        {11008, "Williamson n=43 (172) \u2297 Sylvester 64"},
        {3584, "Paley I q=27 (28) \u2297 Sylvester 128"},
        {29568, "Paley II q=461 (924) \u2297 Sylvester 32"},
        {576, "Paley II q=17 (36) \u2297 Sylvester 16"},
        {640, "Paley I q=19 (20) \u2297 Sylvester 32"},
        {156, "Williamson n=39 (156)"},
    };
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) {
        had_supported(d[i].n, desc, sizeof desc);
        CHECK(strcmp(desc, d[i].want) == 0, "%zu described as '%s' (want '%s')", d[i].n, desc, d[i].want);
    }
}

/* Fast transform against the dense product, both transposes, f32 and f64. */
static void test_fast_vs_dense(rs_rng *g)
{
    size_t sizes[] = {1, 2, 4, 8, 16, 64, 12, 24, 28, 40, 52, 76, 108, 156, 172, 288, 448, 576};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s], rows = 5;
        had_plan *p = NULL;
        if (had_plan_alloc(n, &p)) { CHECK(0, "plan %zu", n); continue; }
        double *H = malloc(n * n * sizeof *H), *x = malloc(rows * n * sizeof *x), *y = malloc(rows * n * sizeof *y);
        float *xf = malloc(rows * n * sizeof *xf);
        had_dense_f64(p, H);
        for (int t = 0; t <= 1; t++) {
            fill_gauss(g, x, rows * n);
            for (size_t i = 0; i < rows * n; i++) xf[i] = (float)x[i];
            for (size_t r = 0; r < rows; r++)
                for (size_t j = 0; j < n; j++) {
                    double acc = 0;
                    for (size_t k = 0; k < n; k++) acc += x[r * n + k] * (t ? H[j * n + k] : H[k * n + j]);
                    y[r * n + j] = acc;
                }
            had_apply_f64(p, x, rows, t);
            had_apply_f32(p, xf, rows, t);
            double e64 = 0, e32 = 0;
            for (size_t i = 0; i < rows * n; i++) {
                e64 = fmax(e64, fabs(x[i] - y[i]));
                e32 = fmax(e32, fabs(xf[i] - y[i]));
            }
            CHECK(e64 <= 1e-12, "n=%zu transpose=%d f64 fast = dense (max err %.3g)", n, t, e64);
            CHECK(e32 <= 2e-5, "n=%zu transpose=%d f32 fast = dense (max err %.3g)", n, t, e32);
        }
        free(H); free(x); free(y); free(xf);
        had_plan_free(p);
    }
}

/* x * H^T undoes x * H for a non-symmetric core (Paley I is skew). */
static void test_transpose_nonsymmetric(rs_rng *g)
{
    size_t ns[] = {12, 28 * 4, 20 * 8, 108};
    for (size_t s = 0; s < sizeof ns / sizeof *ns; s++) {
        size_t n = ns[s];
        had_plan *p = NULL;
        had_plan_alloc(n, &p);
        size_t K = had_core_order(p);
        const int8_t *C = had_core(p);
        int sym = 1;
        for (size_t i = 0; i < K; i++)
            for (size_t j = 0; j < K; j++)
                if (C[i * K + j] != C[j * K + i]) sym = 0;
        CHECK(!sym, "n=%zu: core %zu (%s) is not symmetric", n, K, had_describe(p));
        double *x = malloc(3 * n * sizeof *x), *x0 = malloc(3 * n * sizeof *x0);
        fill_gauss(g, x, 3 * n);
        memcpy(x0, x, 3 * n * sizeof *x);
        had_apply_f64(p, x, 3, 0);
        double moved = 0;
        for (size_t i = 0; i < 3 * n; i++) moved = fmax(moved, fabs(x[i] - x0[i]));
        /* Applying H twice (no transpose) is not the identity for a skew core. */
        double *z = malloc(3 * n * sizeof *z);
        memcpy(z, x, 3 * n * sizeof *z);
        had_apply_f64(p, z, 3, 0);
        double notinv = 0;
        for (size_t i = 0; i < 3 * n; i++) notinv = fmax(notinv, fabs(z[i] - x0[i]));
        had_apply_f64(p, x, 3, 1);
        double e = 0;
        for (size_t i = 0; i < 3 * n; i++) e = fmax(e, fabs(x[i] - x0[i]));
        CHECK(moved > 0.1 && notinv > 0.1 && e <= 1e-12, "n=%zu: (x H) H^T = x (err %.3g; x H H differs by %.3g)", n, e,
              notinv);
        free(x); free(x0); free(z);
        had_plan_free(p);
    }
}

static void test_fwht_simd(rs_rng *g)
{
    for (int m = 0; m <= 14; m++) {
        size_t n = (size_t)1 << m, rows = m <= 6 ? 67 : 3;
        float *a = malloc(rows * n * sizeof *a), *b = malloc(rows * n * sizeof *b);
        double *d = malloc(rows * n * sizeof *d);
        for (size_t i = 0; i < rows * n; i++) { d[i] = rs_rng_gaussian(g, 1.0); a[i] = b[i] = (float)d[i]; }
        had_fwht_f32(a, rows, n);
        had_fwht_f32_ref(b, rows, n);
        had_fwht_f64(d, rows, n);
        double e = 0, e64 = 0;
        for (size_t i = 0; i < rows * n; i++) { e = fmax(e, fabs(a[i] - b[i])); e64 = fmax(e64, fabs(d[i] - b[i])); }
        CHECK(e <= 1e-5, "FWHT 2^%d: fast = reference (max err %.3g)", m, e);
        CHECK(e64 <= 1e-5, "FWHT 2^%d: f64 = f32 reference (max err %.3g)", m, e64);
        free(a); free(b); free(d);
    }
    float x[6] = {0};
    CHECK(had_fwht_f32(x, 1, 6) == RS_EINVAL, "FWHT of length 6 rejected");
    CHECK(had_fwht_f32_ref(x, 1, 0) == RS_EINVAL, "FWHT of length 0 rejected");
    /* A known transform: H_4 e_0 = (1,1,1,1)/2. */
    float e0[4] = {1, 0, 0, 0};
    had_fwht_f32(e0, 1, 4);
    CHECK(e0[0] == 0.5f && e0[1] == 0.5f && e0[2] == 0.5f && e0[3] == 0.5f, "FWHT of e_0 (n=4) is 1/2 everywhere");
}

static void test_unsupported(void)
{
    size_t bad[] = {22, 3, 6, 14, 188, 4 * 2003};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        had_plan *p = (had_plan *)1;
        int st = had_plan_alloc(bad[i], &p);
        CHECK(st == RS_ENOTSUP && p == NULL, "order %zu unsupported (status %d): %s", bad[i], st, rs_last_error());
        CHECK(!had_supported(bad[i], NULL, 0), "had_supported(%zu) = 0", bad[i]);
        size_t b, a;
        had_nearest(bad[i], &b, &a);
        CHECK(b < bad[i] && a > bad[i] && had_supported(a, NULL, 0) && (b == 0 || had_supported(b, NULL, 0)),
              "nearest to %zu: %zu and %zu, both supported", bad[i], b, a);
        char want[32];
        snprintf(want, sizeof want, "%zu below", b);
        CHECK(strstr(rs_last_error(), want) != NULL, "message for %zu names the nearest order below", bad[i]);
    }
    size_t b, a;
    had_nearest(22, &b, &a);
    CHECK(b == 20 && a == 24, "nearest to 22: 20 and 24 (got %zu, %zu)", b, a);
    had_nearest(188, &b, &a);
    CHECK(b == 180 && a == 192, "nearest to 188: 180 and 192 (184 = 8*23 has no construction here) (got %zu, %zu)", b, a);
    had_nearest(1, &b, &a);
    CHECK(b == 0 && a == 2, "nearest to 1: none below, 2 above");
    had_nearest((size_t)1 << 40, &b, &a);
    CHECK(b == ((size_t)1 << 26) && a == 0, "nearest to 2^40: 2^26 below (the cap), none above (got %zu, %zu)", b, a);
    had_plan *p = NULL;
    CHECK(had_plan_alloc(0, &p) == RS_EINVAL, "order 0 rejected");
    CHECK(had_apply_f32(NULL, NULL, 1, 0) == RS_EINVAL, "apply with a NULL plan rejected");
}

/* had_apply_f32_ws with a caller-owned workspace (sized for more rows than used, too)
 * gives the bytes of had_apply_f32. */
static void test_workspace(rs_rng *g)
{
    static const size_t ns[] = {64, 688, 576, 1536, 12 * 3};
    for (size_t c = 0; c < sizeof ns / sizeof *ns; c++) {
        had_plan *p = NULL;
        if (had_plan_alloc(ns[c], &p)) continue;
        size_t n = ns[c], rows = 700, cap = had_apply_ws_len(p, rows + 50);
        CHECK(had_apply_ws_len(p, rows) <= cap && (had_core_order(p) > 1) == (cap > 0),
              "had ws len %zu: %zu floats (K=%zu)", n, cap, had_core_order(p));
        float *a = malloc(rows * n * sizeof *a), *b = malloc(rows * n * sizeof *b), *ws = cap ? malloc(cap * sizeof *ws) : NULL;
        for (size_t i = 0; i < rows * n; i++) a[i] = b[i] = (float)rs_rng_gaussian(g, 1.0);
        int same = 1;
        for (int t = 0; t < 2; t++) {
            int s1 = had_apply_f32(p, a, rows, t), s2 = had_apply_f32_ws(p, b, rows, t, ws);
            if (s1 || s2 || memcmp(a, b, rows * n * sizeof *a)) same = 0;
        }
        CHECK(same, "had_apply_f32_ws n=%zu (%s): bit-identical to had_apply_f32, both transposes", n, had_describe(p));
        free(a), free(b), free(ws);
        had_plan_free(p);
    }
}

int main(void)
{
    rs_rng *g = rs_rng_alloc(1234, RS_STREAM_DATA);
    test_workspace(g);
    test_cores();
    test_orders();
    test_fast_vs_dense(g);
    test_transpose_nonsymmetric(g);
    test_fwht_simd(g);
    test_unsupported();
    rs_rng_free(g);
    return check_summary("test_hadamard");
}
