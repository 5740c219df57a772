/* rostesim: GPTQ (Frantar et al., 2022) weight quantization with error feedback.
 *
 * W is rows x cols, row-major: each row an output channel, the columns the input
 * dimension that the Hessian H = 2 X^T X (cols x cols, from calibration inputs X)
 * couples. Columns are quantized one at a time (in decreasing diag(H) with act_order),
 * and the rounding error of each is spread over the not-yet-quantized columns through
 * the upper Cholesky factor of the damped inverse Hessian, in lazy blocks of `block`
 * columns. The quantization grid (scale, zero per group of qz_spec q) is taken from W
 * before the sweep (QZ_TENSOR, QZ_ROW) or when a group's first column is reached
 * (QZ_GROUP), as the reference implementation does.
 * damp: fraction of mean(diag H) added to the diagonal (0.01 in the paper).
 * Dead inputs (H_ii = 0) get H_ii = 1 and their weights are zeroed, as in the reference.
 * On return W holds the fake-quantized weights. */
#ifndef RS_GPTQ_H
#define RS_GPTQ_H

#include <stddef.h>

#include "quant/quant.h"

int gptq_quantize_f64(const qz_spec *q, double *W, size_t rows, size_t cols, const double *H,
                      double damp, int act_order, size_t block);

/* Reference: the same algorithm column by column with no lazy blocking (for tests). */
int gptq_quantize_f64_ref(const qz_spec *q, double *W, size_t rows, size_t cols, const double *H,
                          double damp, int act_order);

#endif
