#include "solvers/ste_sgd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/status.h"

int lsq_ste_alloc(size_t N, size_t d, lsq_ste **out)
{
    if (!out || N == 0 || d == 0) return RS_ERROR(RS_EINVAL, "lsq_ste_alloc: N and d must be >= 1");
    lsq_ste *s = calloc(1, sizeof *s);
    double *buf = malloc(3 * d * sizeof *buf);
    if (!s || !buf) {
        free(s);
        free(buf);
        return RS_ERROR(RS_ENOMEM, "lsq_ste_alloc: out of memory (d=%zu)", d);
    }
    s->N = N;
    s->d = d;
    s->v = buf;
    s->qv = buf + d;
    s->g = buf + 2 * d;
    *out = s;
    return RS_OK;
}

void lsq_ste_free(lsq_ste *s)
{
    if (!s) return;
    free(s->v);
    free(s);
}

int lsq_ste_set(lsq_ste *s, const double *A, const double *y, const qz_spec *wq, double eta,
                size_t batch, const double *v0)
{
    if (!s || !A || !y || !wq) return RS_ERROR(RS_EINVAL, "lsq_ste_set: NULL argument");
    if (!(eta > 0) || !isfinite(eta)) return RS_ERROR(RS_EINVAL, "lsq_ste_set: step size %g must be positive", eta);
    if (batch == 0 || batch > s->N) return RS_ERROR(RS_EINVAL, "lsq_ste_set: batch %zu not in 1..N=%zu", batch, s->N);
    int st = qz_spec_check(wq, s->d);
    if (st) return st;
    s->A = A;
    s->y = y;
    s->wq = *wq;
    s->eta = eta;
    s->batch = batch;
    s->t = 0;
    if (v0) memcpy(s->v, v0, s->d * sizeof *s->v);
    else memset(s->v, 0, s->d * sizeof *s->v);
    return RS_OK;
}

/* <a, b> with 4 interleaved partial sums (vectorised by the compiler; a fixed order that
 * does not depend on the CPU, the BLAS build or OPENBLAS_CORETYPE). */
static double dot4(const double *a, const double *b, size_t d)
{
    double p0 = 0, p1 = 0, p2 = 0, p3 = 0;
    size_t j = 0;
    for (; j + 4 <= d; j += 4) {
        p0 += a[j] * b[j];
        p1 += a[j + 1] * b[j + 1];
        p2 += a[j + 2] * b[j + 2];
        p3 += a[j + 3] * b[j + 3];
    }
    for (; j < d; j++) p0 += a[j] * b[j];
    return (p0 + p1) + (p2 + p3);
}

/* Fast path: quantize with the library kernel, then a dot and an axpy per sample as plain
 * loops. Not level-1 BLAS: at d ~ 512 the call overhead and OpenBLAS's per-call thread
 * checks cost more than the arithmetic, and lsq runs many of these steps in parallel. */
int lsq_ste_iterate(lsq_ste *s, rs_rng *order, size_t nsteps)
{
    const size_t d = s->d, N = s->N, B = s->batch;
    double *v = s->v, *g = s->g; /* qz_fake_f64 reads v and writes qv through s */
    const double *qv = s->qv;
    for (size_t k = 0; k < nsteps; k++) {
        int st = qz_fake_f64(&s->wq, s->v, s->qv, 1, d);
        if (st) return st;
        if (B == 1) {
            size_t i = rs_rng_uint(order, N);
            const double *restrict a = s->A + i * d;
            const double c = -s->eta * (dot4(a, qv, d) - s->y[i]);
            for (size_t j = 0; j < d; j++) v[j] += c * a[j];
        } else {
            memset(g, 0, d * sizeof *g);
            for (size_t b = 0; b < B; b++) {
                size_t i = rs_rng_uint(order, N);
                const double *restrict a = s->A + i * d;
                const double r = dot4(a, qv, d) - s->y[i];
                for (size_t j = 0; j < d; j++) g[j] += r * a[j];
            }
            const double c = -s->eta / (double)B;
            for (size_t j = 0; j < d; j++) v[j] += c * g[j];
        }
        s->t++;
    }
    return RS_OK;
}

int lsq_ste_iterate_ref(lsq_ste *s, rs_rng *order, size_t nsteps)
{
    const size_t d = s->d, N = s->N, B = s->batch;
    for (size_t k = 0; k < nsteps; k++) {
        int st = qz_fake_f64(&s->wq, s->v, s->qv, 1, d);
        if (st) return st;
        for (size_t j = 0; j < d; j++) s->g[j] = 0;
        for (size_t b = 0; b < B; b++) {
            size_t i = rs_rng_uint(order, N);
            double p = 0;
            for (size_t j = 0; j < d; j++) p += s->A[i * d + j] * s->qv[j];
            double r = p - s->y[i];
            for (size_t j = 0; j < d; j++) s->g[j] += r * s->A[i * d + j];
        }
        for (size_t j = 0; j < d; j++) s->v[j] -= s->eta / (double)B * s->g[j];
        s->t++;
    }
    return RS_OK;
}
