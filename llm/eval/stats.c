/* rostesim LLM: bootstrap confidence intervals over prompts (see stats.h). */
#include "llm/eval/stats.h"

#include <math.h>
#include <stdlib.h>

#include "quant/rng.h"
#include "quant/status.h"

double rs_quantile_sorted(const double *sorted, long n, double q)
{
    if (!sorted || n < 1 || !(q >= 0 && q <= 1)) return NAN;
    double h = (double)(n - 1) * q;
    if (h >= (double)(n - 1)) return sorted[n - 1];
    long i = (long)floor(h);
    double t = h - (double)i, a = sorted[i], b = sorted[i + 1], d = b - a;
    /* numpy's _lerp: a + d t, and b - d (1 - t) where t >= 0.5 */
    return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

/* The value of prompt i: x[i], or a[i] - b[i] when b is set. */
static inline double val(const double *a, const double *b, long i) { return b ? a[i] - b[i] : a[i]; }

/* The common bootstrap of rs_boot_mean_ci (b and p NULL) and rs_boot_paired (pointers checked). */
static int boot(const char *who, const double *a, const double *b, long n, int B, uint64_t seed, double alpha,
                double *obs, double *lo, double *hi, double *p)
{
    if (n < 1 || (unsigned long)n > 0xffffffffUL) /* rs_rng_uint draws from a 32-bit generator */
        return RS_ERROR(RS_EINVAL, "%s: n = %ld prompts: need 1 to 4294967295", who, n);
    if (B < 1) return RS_ERROR(RS_EINVAL, "%s: B = %d resamples: need at least 1", who, B);
    if (!(alpha > 0 && alpha < 1)) return RS_ERROR(RS_EINVAL, "%s: alpha = %g: need 0 < alpha < 1", who, alpha);
    double s = 0;
    for (long i = 0; i < n; i++) {
        double v = val(a, b, i);
        if (!isfinite(v)) { /* a NaN or an infinity in a or b makes a - b one too */
            if (b) return RS_ERROR(RS_EINVAL, "%s: a[%ld] - b[%ld] = %g - %g is not finite", who, i, i, a[i], b[i]);
            return RS_ERROR(RS_EINVAL, "%s: x[%ld] = %g is not finite", who, i, a[i]);
        }
        s += v;
    }
    double *m = malloc((size_t)B * sizeof *m);
    rs_rng *r = m ? rs_rng_alloc(seed, RS_STREAM_BOOTSTRAP) : NULL;
    if (!r) {
        free(m);
        return RS_ERROR(RS_ENOMEM, "%s: out of memory (%d resamples)", who, B);
    }
    /* m is (B,): the mean of each resample of n indices */
    for (int k = 0; k < B; k++) {
        double t = 0;
        for (long j = 0; j < n; j++) t += val(a, b, (long)rs_rng_uint(r, (unsigned long)n));
        m[k] = t / (double)n;
    }
    rs_rng_free(r);
    qsort(m, (size_t)B, sizeof *m, cmp_double);
    *obs = s / (double)n;
    *lo = rs_quantile_sorted(m, B, alpha / 2);
    *hi = rs_quantile_sorted(m, B, 1 - alpha / 2);
    if (p) {
        long le = 0, ge = 0;
        for (int k = 0; k < B; k++) {
            le += m[k] <= 0;
            ge += m[k] >= 0;
        }
        double pl = (double)(le + 1) / ((double)B + 1), pg = (double)(ge + 1) / ((double)B + 1);
        *p = fmin(1, 2 * fmin(pl, pg));
    }
    free(m);
    return RS_OK;
}

int rs_boot_mean_ci(const double *x, long n, int B, uint64_t seed, double alpha, double *mean, double *lo,
                    double *hi)
{
    if (!x || !mean || !lo || !hi) return RS_ERROR(RS_EINVAL, "bootstrap CI: NULL argument");
    return boot("bootstrap CI", x, NULL, n, B, seed, alpha, mean, lo, hi, NULL);
}

int rs_boot_paired(const double *a, const double *b, long n, int B, uint64_t seed, double alpha, double *diff,
                   double *lo, double *hi, double *p)
{
    if (!a || !b || !diff || !lo || !hi || !p) return RS_ERROR(RS_EINVAL, "paired bootstrap: NULL argument");
    return boot("paired bootstrap", a, b, n, B, seed, alpha, diff, lo, hi, p);
}
