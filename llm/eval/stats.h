/* rostesim LLM: bootstrap statistics for tables of per-prompt scores (ROUGE F of each prompt):
 * the percentile confidence interval of a mean, and the paired bootstrap of two systems scored
 * on the same prompts.
 *
 * Resampling: nboot (B) resamples of n indices drawn uniformly with replacement, in order, by
 * rs_rng_uint from rs_rng_alloc(seed, RS_STREAM_BOOTSTRAP); each resample's mean is its sum
 * (double, in draw order) divided by n, and the observed mean is x's sum in index order over n.
 * The interval is the (alpha/2, 1 - alpha/2) pair of quantiles of the B sorted means, with
 * numpy.quantile's default (type 7, linear) interpolation. Same arguments, same bytes.
 * Work: O(B*n) draws, one buffer of B doubles. tests/test_stats.c checks it against numpy
 * (tools/stats_fixture.py) and on exact cases. */
#ifndef RS_LLM_STATS_H
#define RS_LLM_STATS_H

#include <stdint.h>

/* The rs_rng stream the bootstrap draws from (quant/rng.h allows any number; its named
 * streams stop at 5). */
#define RS_STREAM_BOOTSTRAP 11

/* Percentile bootstrap of the mean of x[0..n-1]: *mean (the observed mean) and the CI
 * [*lo, *hi] at level 1 - alpha. RS_OK, or RS_EINVAL (n < 1 or n > 2^32 - 1, B < 1, alpha
 * outside (0, 1), a non-finite x, a NULL pointer) / RS_ENOMEM, with a message (RS_ERROR). */
int rs_boot_mean_ci(const double *x, long n, int nboot, uint64_t seed, double alpha, double *mean, double *lo,
                    double *hi);

/* Paired bootstrap of a - b over the same n prompts: the resamples are those of
 * rs_boot_mean_ci on d_i = a_i - b_i (one index set for a and b; same seed, same bytes as
 * rs_boot_mean_ci of d). *diff: the observed mean of d; [*lo, *hi]: the percentile CI of the
 * resampled mean differences D; *p: the two-sided bootstrap p-value
 * min(1, 2 * min(P*(D <= 0), P*(D >= 0))) with P*(E) = (#resamples with E + 1) / (B + 1), so
 * that p > 0 (every D > 0 gives p = 2 / (B + 1); a == b gives p = 1). Errors as
 * rs_boot_mean_ci, a non-finite a_i, b_i or a_i - b_i being RS_EINVAL. */
int rs_boot_paired(const double *a, const double *b, long n, int nboot, uint64_t seed, double alpha, double *diff,
                   double *lo, double *hi, double *p);

/* The q-quantile of sorted[0..n-1] (ascending) as numpy.quantile(x, q) computes it (method
 * "linear", Hyndman & Fan type 7): h = (n - 1) q, the lerp of sorted[floor h] and the next
 * value by h - floor h, numpy's two-sided lerp formula included, so results agree to the bit.
 * NaN if n < 1 or q is outside [0, 1]. */
double rs_quantile_sorted(const double *sorted, long n, double q);

#endif
