/* rostesim: fake-quantization throughput (quant/quant.c), in GB/s of bytes read +
 * written (8 bytes per f32 element), against memcpy of the same bytes and against the
 * scalar reference qz_fake_f32_ref. Best of several runs, CLOCK_MONOTONIC. The
 * "1-thr" column is the fast path on one OpenMP thread. On small shared VMs, spinning
 * OpenMP workers can be throttled: compare with OMP_WAIT_POLICY=passive. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant/quant.h"
#include "quant/rng.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

typedef struct {
    const char *name;
    size_t R, C;
    qz_spec q;
} bench_case;

int main(void)
{
    bench_case cases[] = {
        {"weights 4096x4096 per-row asym 4-bit", 4096, 4096, qz_spec_make(4, QZ_ASYM, QZ_ROW, 0)},
        {"acts 2048x4096 per-token asym 4-bit", 2048, 4096, qz_spec_make(4, QZ_ASYM, QZ_ROW, 0)},
        {"acts 2048x4096 per-group-128 asym 4-bit", 2048, 4096, qz_spec_make(4, QZ_ASYM, QZ_GROUP, 128)},
        {"1M floats per-tensor sym 8-bit", 1024, 1024, qz_spec_make(8, QZ_SYM, QZ_TENSOR, 0)},
    };
    const int runs_fast = 15, runs_ref = 2;
    size_t nmax = 4096 * 4096;
    float *x = malloc(nmax * sizeof *x), *y = malloc(nmax * sizeof *y);
    float *s = malloc(nmax / 16 * sizeof *s), *z = malloc(nmax / 16 * sizeof *z);
    if (!x || !y || !s || !z) {
        fprintf(stderr, "bench_quant: out of memory\n");
        return 1;
    }
    rs_rng *r = rs_rng_alloc(1, RS_STREAM_DATA);
    for (size_t i = 0; i < nmax; i++) x[i] = (float)rs_rng_gaussian(r, 1.0);
    rs_rng_free(r);
    memset(y, 0, nmax * sizeof *y);

    printf("bench_quant: %d OpenMP threads; GB/s = (4 B read + 4 B written) per element / time, "
           "best of %d (fast, memcpy) / %d (ref)\n",
           omp_get_max_threads(), runs_fast, runs_ref);
    printf("%-42s %9s %9s %9s %9s %9s %8s %8s\n", "case", "fast GB/s", "ms", "1-thr", "memcpy",
           "ref GB/s", "fast/mem", "fast/ref");
    int nthr = omp_get_max_threads();
    int status = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bench_case *b = &cases[k];
        size_t n = b->R * b->C;
        double bytes = 8.0 * (double)n, tf = 1e30, tm = 1e30, tr = 1e30, t1 = 1e30;
        omp_set_num_threads(1); /* the fast path on one thread, for the OpenMP scaling */
        for (int i = 0; i < runs_fast; i++) {
            double t0 = now();
            if (qz_fake_f32(&b->q, x, y, b->R, b->C)) status = 1;
            double t = now() - t0;
            t1 = t < t1 ? t : t1;
        }
        omp_set_num_threads(nthr);
        for (int i = 0; i < runs_fast; i++) {
            double t0 = now();
            if (qz_fake_f32(&b->q, x, y, b->R, b->C)) status = 1;
            double t = now() - t0;
            tf = t < tf ? t : tf;
            t0 = now();
            memcpy(y, x, n * sizeof *x);
            t = now() - t0;
            tm = t < tm ? t : tm;
        }
        for (int i = 0; i < runs_ref; i++) {
            double t0 = now();
            if (qz_fake_f32_ref(&b->q, x, y, b->R, b->C, s, z)) status = 1;
            double t = now() - t0;
            tr = t < tr ? t : tr;
        }
        printf("%-42s %9.2f %9.2f %9.2f %9.2f %9.2f %8.2f %8.1f\n", b->name, bytes / tf / 1e9,
               tf * 1e3, bytes / t1 / 1e9, bytes / tm / 1e9, bytes / tr / 1e9, tm / tf, tr / tf);
    }
    free(x);
    free(y);
    free(s);
    free(z);
    return status;
}
