/* rostesim: STE-SGD on the quantized linear model of ROSTE.md §5, eq. (15).
 *
 * Prediction <q, Q_w(R w)> with q = Q_x(R x). The iterate is kept in rotated
 * coordinates v = R w (R orthogonal, so R R^T q = q), which turns eq. (15),
 *     w <- w - eta (<q_t, Q_w(R w)> - y_t) R^T q_t,
 * into  v <- v - eta (<q_t, Q_w(v)> - y_t) q_t.
 * With a mini-batch of B samples the step uses the mean of the B gradients.
 * Samples are drawn uniformly with replacement (the theorem's i.i.d. q_t).
 *
 * GSL style: the caller allocates, sets, then drives the loop with iterate so that
 * logging stays outside the numerics. No allocation after lsq_ste_alloc. */
#ifndef RS_STE_SGD_H
#define RS_STE_SGD_H

#include <stddef.h>

#include "quant/quant.h"
#include "quant/rng.h"

typedef struct {
    size_t N, d, batch;
    const double *A; /* N x d quantized rotated features q_t (rows), not owned */
    const double *y; /* N targets, not owned */
    qz_spec wq;      /* weight quantizer Q_w (bits >= 16: full-precision SGD) */
    double eta;
    double *v;       /* iterate, rotated coordinates (d) */
    double *qv;      /* workspace: Q_w(v) (d) */
    double *g;       /* workspace: mini-batch gradient (d) */
    size_t t;        /* steps taken */
} lsq_ste;

int lsq_ste_alloc(size_t N, size_t d, lsq_ste **out);
void lsq_ste_free(lsq_ste *s); /* NULL is a no-op */

/* Point the iteration at a problem; v0 (d values) or NULL for v = 0. */
int lsq_ste_set(lsq_ste *s, const double *A, const double *y, const qz_spec *wq, double eta,
                size_t batch, const double *v0);

/* Take nsteps steps, drawing sample indices from `order`. */
int lsq_ste_iterate(lsq_ste *s, rs_rng *order, size_t nsteps);
/* Reference twin: plain loops, same draws (agrees to rounding). */
int lsq_ste_iterate_ref(lsq_ste *s, rs_rng *order, size_t nsteps);

#endif
