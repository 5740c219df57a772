/* rostesim tests: the set-up the C tests share (header only; each test is one .c file).
 * Files: fx_read_file, fx_unhex. Numbers: fx_max_abs, fx_rel_err. LLM: fx_load_model (a
 * tests/fixtures/llm/<name> checkpoint) and fx_calib (rows of seeded random tokens standing in
 * for calibration data, plus one evaluation batch). */
#ifndef RS_TESTS_FIXTURE_H
#define RS_TESTS_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/train/data.h"
#include "llm/nn/model.h"

/* The whole file, NUL-terminated (caller frees); NULL if it cannot be read. len may be NULL. */
static inline char *fx_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[n] = 0; if (len) *len = (size_t)n; }
    return b;
}

/* hex string -> bytes (malloc'ed, NUL-terminated; *n bytes) */
static inline char *fx_unhex(const char *h, size_t *n)
{
    size_t m = strlen(h) / 2;
    char *b = malloc(m + 1);
    for (size_t i = 0; i < m; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        b[i] = (char)v;
    }
    b[m] = 0;
    *n = m;
    return b;
}

/* max|a| */
static inline double fx_max_abs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i]));
    return m;
}

/* max|a - b| / max|b| (max|a - b| when b is zero) */
static inline double fx_rel_err(const float *a, const float *b, size_t n)
{
    double d = 0, s = fx_max_abs(b, n);
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return s > 0 ? d / s : d;
}

/* The checkpoint tests/fixtures/llm/<name> (tools/llm_fixtures.py); NULL if it does not load. */
static inline llm_model *fx_load_model(const char *name)
{
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fixtures/llm/%s", name);
    llm_model *m = NULL;
    if (llm_model_load(&m, dir)) return NULL;
    return m;
}

/* nrow (<= FX_CALIB_MAXROW) rows of FX_CALIB_TROW random tokens below vocab (a fixed LCG from
 * seed), then one evaluation batch of two more rows (eval). */
#define FX_CALIB_MAXROW 8
#define FX_CALIB_TROW 16
typedef struct {
    llm_dataset ds;
    size_t off[FX_CALIB_MAXROW + 1];
    int32_t ids[FX_CALIB_MAXROW * FX_CALIB_TROW];
    int32_t eval[2 * FX_CALIB_TROW];
} fx_calib;

static inline void fx_calib_init(fx_calib *c, int nrow, int vocab, uint32_t seed)
{
    const int T = FX_CALIB_TROW;
    memset(c, 0, sizeof *c);
    uint32_t x = seed;
    for (int i = 0; i < nrow * T; i++) x = x * 1664525u + 1013904223u, c->ids[i] = (int32_t)((x >> 8) % (uint32_t)vocab);
    for (int i = 0; i < 2 * T; i++) x = x * 1664525u + 1013904223u, c->eval[i] = (int32_t)((x >> 8) % (uint32_t)vocab);
    for (int i = 0; i <= nrow; i++) c->off[i] = (size_t)i * T;
    c->ds.n = nrow;
    c->ds.off = c->off;
    c->ds.ids = c->ids;
    c->ds.max_row = T;
}

#endif
