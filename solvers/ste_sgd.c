#include "solvers/ste_sgd.h"

#include <cblas.h>
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

/* Fast path: quantize with the library kernel, dot/axpy through BLAS. */
int lsq_ste_iterate(lsq_ste *s, rs_rng *order, size_t nsteps)
{
    const size_t d = s->d, N = s->N, B = s->batch;
    const int di = (int)d;
    for (size_t k = 0; k < nsteps; k++) {
        int st = qz_fake_f64(&s->wq, s->v, s->qv, 1, d);
        if (st) return st;
        if (B == 1) {
            size_t i = rs_rng_uint(order, N);
            const double *a = s->A + i * d;
            double r = cblas_ddot(di, a, 1, s->qv, 1) - s->y[i];
            cblas_daxpy(di, -s->eta * r, a, 1, s->v, 1);
        } else {
            memset(s->g, 0, d * sizeof *s->g);
            for (size_t b = 0; b < B; b++) {
                size_t i = rs_rng_uint(order, N);
                const double *a = s->A + i * d;
                double r = cblas_ddot(di, a, 1, s->qv, 1) - s->y[i];
                cblas_daxpy(di, r, a, 1, s->g, 1);
            }
            cblas_daxpy(di, -s->eta / (double)B, s->g, 1, s->v, 1);
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
