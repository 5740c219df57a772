/* STE-SGD step rate (eq. (15), single sample, 4-bit symmetric per-tensor Q_w) on the
 * default problem size, one thread, against the memory-traffic bound: bytes the step
 * touches / the copy bandwidth of a cache-resident buffer of the same working set.
 * Prints "steps_per_s <value>" for bench/lsq_vs_numpy.sh. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant/rng.h"
#include "solvers/ste_sgd.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv)
{
    size_t d = argc > 1 ? (size_t)atol(argv[1]) : 512, N = argc > 2 ? (size_t)atol(argv[2]) : 64;
    size_t steps = argc > 3 ? (size_t)atol(argv[3]) : 200000;
    openblas_set_num_threads(1);
    double *A = malloc(N * d * sizeof *A), *y = malloc(N * sizeof *y);
    rs_rng *r = rs_rng_alloc(1, 1);
    for (size_t i = 0; i < N * d; i++) A[i] = rs_rng_gaussian(r, 1.0) / sqrt((double)d);
    for (size_t i = 0; i < N; i++) y[i] = rs_rng_gaussian(r, 1.0);
    qz_spec q = qz_spec_make(4, QZ_SYM, QZ_TENSOR, 0);
    lsq_ste *s;
    lsq_ste_alloc(N, d, &s);
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        lsq_ste_set(s, A, y, &q, 0.01, 1, NULL);
        rs_rng *o = rs_rng_alloc(2, 3);
        double t0 = now();
        lsq_ste_iterate(s, o, steps);
        double t = now() - t0;
        if (t < best) best = t;
        rs_rng_free(o);
    }
    /* the same loop through the plain reference */
    lsq_ste_set(s, A, y, &q, 0.01, 1, NULL);
    rs_rng *o = rs_rng_alloc(2, 3);
    double t0 = now();
    lsq_ste_iterate_ref(s, o, steps);
    double tref = now() - t0;
    rs_rng_free(o);
    /* bytes per step: max pass (d), quantize read+write (2d), dot (2d), axpy (3d) doubles */
    double bytes = 8.0 * 8.0 * (double)d;
    /* cache-resident copy bandwidth over the same working set (A + 4 vectors) */
    size_t ws = (N + 4) * d;
    double *src = malloc(ws * sizeof *src), *dst = malloc(ws * sizeof *dst);
    memset(src, 1, ws * sizeof *src);
    size_t reps = (size_t)(2e9 / (double)(ws * 16)) + 1;
    double bw = 0;
    for (int k = 0; k < 3; k++) {
        t0 = now();
        for (size_t i = 0; i < reps; i++) {
            memcpy(dst, src, ws * sizeof *src);
            src[i % ws] += dst[(i * 7) % ws];
        }
        double b = 2.0 * ws * 8.0 * reps / (now() - t0);
        if (b > bw) bw = b;
    }
    double per = best / (double)steps;
    printf("STE-SGD d=%zu N=%zu, %zu steps, 1 thread\n", d, N, steps);
    printf("  fast:      %.3f us/step (%.0f steps/s)\n", 1e6 * per, 1.0 / per);
    printf("  reference: %.3f us/step (fast is %.2fx the plain loops)\n", 1e6 * tref / steps, tref / best);
    printf("  traffic:   %.0f bytes/step -> %.2f GB/s; cache-resident copy bandwidth %.2f GB/s (%.0f%% of it; bound %.3f us/step)\n",
           bytes, bytes / per / 1e9, bw / 1e9, 100.0 * bytes / per / bw, 1e6 * bytes / bw);
    printf("steps_per_s %.1f\n", 1.0 / per);
    free(A), free(y), free(src), free(dst);
    lsq_ste_free(s);
    rs_rng_free(r);
    return 0;
}
