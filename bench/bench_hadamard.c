/* bench_hadamard: throughput of the fast Hadamard transform (quant/hadamard.c)
 * on batches of rows, against (a) the dense n x n rotation through OpenBLAS
 * cblas_sgemm on the same batch and (b) the memory bandwidth measured here with
 * STREAM-like copy and triad kernels. Best-of-several CLOCK_MONOTONIC timings.
 *
 * Bytes moved by the transform are counted as the minimum, one read and one write
 * of the batch (2 * rows * n * 4 bytes); a batch that fits in cache can exceed
 * the DRAM bandwidth, which the last column then shows as > 100%. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant/hadamard.h"
#include "quant/rng.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* STREAM-like copy (c = a) and triad (a = b + s c) on arrays of `len` doubles;
 * returns the best bandwidth in GB/s (bytes read + written, no write-allocate). */
static double stream_bandwidth(double *copy_gbs, double *triad_gbs)
{
    size_t len = (size_t)1 << 23; /* 64 MiB per array, twice the L3 */
    double *a = malloc(len * sizeof *a), *b = malloc(len * sizeof *b), *c = malloc(len * sizeof *c);
    long L = (long)len;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < L; i++) { a[i] = 1.0; b[i] = 2.0; c[i] = 0.5; }
    double bc = INFINITY, bt = INFINITY;
    for (int rep = 0; rep < 6; rep++) {
        double t0 = now_s();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < L; i++) c[i] = a[i];
        double t1 = now_s();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < L; i++) a[i] = b[i] + 0.5 * c[i];
        double t2 = now_s();
        if (t1 - t0 < bc) bc = t1 - t0;
        if (t2 - t1 < bt) bt = t2 - t1;
    }
    *copy_gbs = 2.0 * len * sizeof(double) / bc / 1e9;
    *triad_gbs = 3.0 * len * sizeof(double) / bt / 1e9;
    volatile double sink = a[len / 2] + c[len / 3];
    (void)sink;
    free(a); free(b); free(c);
    return *copy_gbs > *triad_gbs ? *copy_gbs : *triad_gbs;
}

/* Best time of `reps` runs (after one warm-up) of the fast transform in place. */
static double time_fast(const had_plan *p, float *x, size_t rows, int reps)
{
    double best = INFINITY;
    had_apply_f32(p, x, rows, 0);
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        had_apply_f32(p, x, rows, r & 1);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    return best;
}

static double time_sgemm(const float *H, const float *x, float *y, size_t rows, size_t n, int reps)
{
    double best = INFINITY;
    for (int r = 0; r <= reps; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)n, (int)n, 1.0f, x, (int)n, H, (int)n,
                    0.0f, y, (int)n);
        double t = now_s() - t0;
        if (r > 0 && t < best) best = t; /* r = 0 is the warm-up */
    }
    return best;
}

int main(void)
{
    const size_t ns[] = {576, 896, 2048, 4096, 4864, 14336};
    double copy_gbs, triad_gbs;
    double bw = stream_bandwidth(&copy_gbs, &triad_gbs);
    printf("measured memory bandwidth: copy %.1f GB/s, triad %.1f GB/s (using %.1f GB/s)\n\n", copy_gbs, triad_gbs, bw);
    printf("%6s  %-40s  %5s  %9s  %8s  %10s  %8s  %7s\n", "n", "construction", "rows", "fast ms", "GB/s", "sgemm ms",
           "speed-up", "% bw");
    rs_rng *g = rs_rng_alloc(42, RS_STREAM_DATA);
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
        size_t n = ns[i], rows = n >= 8192 ? 128 : 512;
        had_plan *p = NULL;
        if (had_plan_alloc(n, &p)) { printf("%6zu  unsupported\n", n); continue; }
        float *x = malloc(rows * n * sizeof *x), *y = malloc(rows * n * sizeof *y), *H = calloc(n * n, sizeof *H);
        if (!x || !y || !H) { printf("%6zu  out of memory\n", n); return 1; }
        for (size_t k = 0; k < rows * n; k++) x[k] = (float)rs_rng_gaussian(g, 1.0);
        /* Dense H as the rows of I * H. */
        for (size_t k = 0; k < n; k++) H[k * n + k] = 1.0f;
        had_apply_f32(p, H, n, 0);
        double tf = time_fast(p, x, rows, 20);
        double tg = time_sgemm(H, x, y, rows, n, n >= 8192 ? 2 : 5);
        double gbs = 2.0 * rows * n * sizeof(float) / tf / 1e9;
        const char *d = had_describe(p);
        int extra = 0;
        for (const char *c = d; *c; c++)
            if (((unsigned char)*c & 0xC0) == 0x80) extra++;
        printf("%6zu  %-*s  %5zu  %9.3f  %8.1f  %10.2f  %7.1fx  %6.0f%%\n", n, 40 + extra, d, rows, 1e3 * tf, gbs,
               1e3 * tg, tg / tf, 100.0 * gbs / bw);
        free(x); free(y); free(H);
        had_plan_free(p);
    }
    rs_rng_free(g);
    return 0;
}
