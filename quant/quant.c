/* rostesim: uniform fake quantizers (ROSTE.md §2). The spec is quant/quant.h.
 *
 * Layout: x is (R, C) row-major, N = R*C. Every granularity is a set of contiguous
 * "chunks" of the flattened array: QZ_TENSOR is one chunk of N, QZ_ROW is R chunks
 * of C, QZ_GROUP is R*C/G chunks of G (G divides C, so group g of row r starts at
 * (r*(C/G) + g)*G). One (s, z) per chunk.
 *
 * Scheme-specific behaviour (code range, how (s, z) come from the chunk's min and
 * max) is in scheme_traits[]; rounding-specific behaviour (the scalar rounding
 * function and the vectorisable span kernels) is in round_traits[]. Nothing else
 * switches on the scheme or the rounding mode.
 *
 * Degenerate chunks. When the scale formula gives s == 0 (zero range: every value
 * equal; or a range so small that s underflows), we use
 *     s = max(|min|, |max|), or 1 when that is 0,
 *     z = 0 (symmetric) or round(-min / s) (asymmetric, the unclipped min),
 * so that a constant chunk v is reproduced exactly: v/s = ±1 (0 when v = 0),
 * symmetric codes ±1 lie inside [-2^(b-1), 2^(b-1)-1] for b >= 2, and asymmetric
 * round(v/s) + z = ±1 ∓ 1 = 0 lies inside [0, 2^b-1]; Q(v) = (0 - z)*s = v.
 * A non-constant chunk whose scale underflowed gets a coarse but finite grid.
 * The zero point is normalised to +0 (adding 0.0), which never changes Q(x) and
 * makes (float)code == clamp(round(x/s) + z) exactly, so dequantize == fake.
 *
 * Non-finite inputs: no crash, but the result is unspecified (a NaN inside a chunk
 * may or may not be seen by the min/max scan, depending on its position).
 *
 * Fast path vs reference. The *_ref functions are plain scalar loops (libm
 * nearbyint/round, index arithmetic per granularity). The fast path scans min/max
 * with 8 independent accumulators, rounds with branch-free SSE2-vectorisable
 * formulas (below) and runs OpenMP over chunks (or over element ranges for
 * QZ_TENSOR) when N >= PAR_MIN. Both compute every float operation in the same
 * order, so they agree bit for bit (tests/test_quant.c checks it). */
#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "quant/omp_for.h"
#include "quant/status.h"

/* GCC keeps the compare-selects of the kernels (clamp, rounding) as branches, so no
 * vectorisation, unless told that FP operations do not trap. That changes no
 * result (only which FP exception flags may be raised), so it is safe here. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#define PAR_MIN ((size_t)1 << 15) /* elements below which we stay single-threaded */
#define ERR_BLOCKS 64             /* fixed partition for deterministic error sums */


/* ---------------------------------------------------------------- rounding */

/* Round half to even, equal to nearbyintf() in the default environment (including
 * the sign of zero), but built from +, -, fabs, copysign and a compare so that the
 * compiler vectorises it with plain SSE2: for 0 <= a < 2^23, a + 2^23 lies in
 * [2^23, 2^24) where the float spacing is 1, so the addition rounds a to an integer
 * with ties to even; |v| >= 2^23 (and inf, NaN) is already integral. */
static inline float rne_f32(float v)
{
    float a = fabsf(v);
    float r = (a + 0x1p23f) - 0x1p23f;
    r = a < 0x1p23f ? r : a;
    return copysignf(r, v);
}

/* Round half away from zero (= roundf()). r = rne(a); a - r is exact (Sterbenz), and
 * equals +0.5 exactly when a was a tie that went down to even: then step up. */
static inline float rha_f32(float v)
{
    float a = fabsf(v);
    float r = (a + 0x1p23f) - 0x1p23f;
    r = (a - r == 0.5f) ? r + 1.0f : r;
    r = a < 0x1p23f ? r : a;
    return copysignf(r, v);
}

static inline double rne_f64(double v)
{
    double a = fabs(v);
    double r = (a + 0x1p52) - 0x1p52;
    r = a < 0x1p52 ? r : a;
    return copysign(r, v);
}

static inline double rha_f64(double v)
{
    double a = fabs(v);
    double r = (a + 0x1p52) - 0x1p52;
    r = (a - r == 0.5) ? r + 1.0 : r;
    r = a < 0x1p52 ? r : a;
    return copysign(r, v);
}

static float ref_rne_f32(float v) { return nearbyintf(v); }
static float ref_rha_f32(float v) { return roundf(v); }
static double ref_rne_f64(double v) { return nearbyint(v); }
static double ref_rha_f64(double v) { return round(v); }

/* Q(x) for one element, the operation order of quant.h: x/s, round, +z, clamp, -z, *s.
 * The clamp is written with comparisons (NaN passes through, like torch.clamp).
 * Called with a constant `rnd`, so after inlining the call is direct (and vectorised). */
static inline __attribute__((always_inline)) float fake1_f32(float x, float s, float z, float lo,
                                                             float hi, float (*rnd)(float))
{
    float r = rnd(x / s) + z;
    r = r < lo ? lo : r;
    r = r > hi ? hi : r;
    return (r - z) * s;
}
static inline __attribute__((always_inline)) double fake1_f64(double x, double s, double z,
                                                              double lo, double hi,
                                                              double (*rnd)(double))
{
    double r = rnd(x / s) + z;
    r = r < lo ? lo : r;
    r = r > hi ? hi : r;
    return (r - z) * s;
}
/* The code: the clamped value before "- z" (an integer in [qmin, qmax]). */
static inline __attribute__((always_inline)) int16_t code1_f32(float x, float s, float z, float lo,
                                                               float hi, float (*rnd)(float))
{
    float r = rnd(x / s) + z;
    r = r >= lo ? r : lo; /* written so that NaN becomes lo: converting NaN to an integer is undefined */
    r = r <= hi ? r : hi;
    return (int16_t)r;
}

/* Span kernels (one chunk, or one piece of the QZ_TENSOR chunk), per rounding mode. */
#define DEFINE_SPANS(NAME, ROUND32, ROUND64)                                              \
    static void fake_span_f32_##NAME(const float *x, float *y, size_t n, float s,         \
                                     float z, float lo, float hi)                         \
    {                                                                                     \
        for (size_t i = 0; i < n; i++) y[i] = fake1_f32(x[i], s, z, lo, hi, ROUND32);      \
    }                                                                                     \
    static void fake_span_f64_##NAME(const double *x, double *y, size_t n, double s,      \
                                     double z, double lo, double hi)                      \
    {                                                                                     \
        for (size_t i = 0; i < n; i++) y[i] = fake1_f64(x[i], s, z, lo, hi, ROUND64);      \
    }                                                                                     \
    static void code_span_f32_##NAME(const float *x, int16_t *c, size_t n, float s,       \
                                     float z, float lo, float hi)                         \
    {                                                                                     \
        for (size_t i = 0; i < n; i++) c[i] = code1_f32(x[i], s, z, lo, hi, ROUND32);      \
    }                                                                                     \
    static double err_span_f32_##NAME(const float *x, size_t n, float s, float z,         \
                                      float lo, float hi)                                 \
    {                                                                                     \
        double acc = 0;                                                                   \
        for (size_t i = 0; i < n; i++) {                                                  \
            double d = (double)fake1_f32(x[i], s, z, lo, hi, ROUND32) - (double)x[i];     \
            acc += d * d;                                                                 \
        }                                                                                 \
        return acc;                                                                       \
    }                                                                                     \
    static double err_span_f64_##NAME(const double *x, size_t n, double s, double z,      \
                                      double lo, double hi)                               \
    {                                                                                     \
        double acc = 0;                                                                   \
        for (size_t i = 0; i < n; i++) {                                                  \
            double d = fake1_f64(x[i], s, z, lo, hi, ROUND64) - x[i];                      \
            acc += d * d;                                                                 \
        }                                                                                 \
        return acc;                                                                       \
    }

DEFINE_SPANS(rne, rne_f32, rne_f64)
DEFINE_SPANS(rha, rha_f32, rha_f64)

typedef struct {
    const char *name;
    float (*ref_f32)(float);   /* libm, for the reference path and the scalar API */
    double (*ref_f64)(double);
    float (*fast_f32)(float);  /* branch-free twin (same results) for zero points */
    double (*fast_f64)(double);
    void (*fake_f32)(const float *, float *, size_t, float, float, float, float);
    void (*fake_f64)(const double *, double *, size_t, double, double, double, double);
    void (*code_f32)(const float *, int16_t *, size_t, float, float, float, float);
    double (*err_f32)(const float *, size_t, float, float, float, float);
    double (*err_f64)(const double *, size_t, double, double, double, double);
} round_traits;

static float fast_rne_f32(float v) { return rne_f32(v); }
static float fast_rha_f32(float v) { return rha_f32(v); }
static double fast_rne_f64(double v) { return rne_f64(v); }
static double fast_rha_f64(double v) { return rha_f64(v); }

static const round_traits ROUNDS[] = {
    [QZ_HALF_EVEN] = {"half-even", ref_rne_f32, ref_rne_f64, fast_rne_f32, fast_rne_f64,
                      fake_span_f32_rne, fake_span_f64_rne, code_span_f32_rne,
                      err_span_f32_rne, err_span_f64_rne},
    [QZ_HALF_AWAY] = {"half-away", ref_rha_f32, ref_rha_f64, fast_rha_f32, fast_rha_f64,
                      fake_span_f32_rha, fake_span_f64_rha, code_span_f32_rha,
                      err_span_f32_rha, err_span_f64_rha},
};

/* ---------------------------------------------------------------- schemes */

static int sym_qmin(int b) { return -(1 << (b - 1)); }
static int sym_qmax(int b) { return (1 << (b - 1)) - 1; }
static int asym_qmin(int b) { (void)b; return 0; }
static int asym_qmax(int b) { return (1 << b) - 1; }

/* The degenerate-chunk scale: max(|min|, |max|), or 1 when that is 0 (see the top). */
static float degen_scale_f32(float mn, float mx)
{
    float a = fmaxf(fabsf(mn), fabsf(mx));
    return a > 0 ? a : 1.0f;
}
static double degen_scale_f64(double mn, double mx)
{
    double a = fmax(fabs(mn), fabs(mx));
    return a > 0 ? a : 1.0;
}

/* symmetric: s = (c * max|x|) / (2^(b-1)-1), z = 0. */
static void sym_params_f32(const qz_spec *q, float (*rnd)(float), float mn, float mx, float *s,
                           float *z)
{
    float amax = fmaxf(fabsf(mn), fabsf(mx));
    float sc = (q->clip * amax) / (float)sym_qmax(q->bits);
    if (sc == 0) sc = degen_scale_f32(mn, mx);
    *s = sc;
    *z = 0.0f;
}
static void sym_params_f64(const qz_spec *q, double (*rnd)(double), double mn, double mx,
                           double *s, double *z)
{
    double amax = fmax(fabs(mn), fabs(mx));
    double sc = ((double)q->clip * amax) / (double)sym_qmax(q->bits);
    if (sc == 0) sc = degen_scale_f64(mn, mx);
    *s = sc;
    *z = 0.0;
}

/* asymmetric, QZ_CLIP_CODE : lo = c*min, hi = c*max, s = (hi - lo)/(2^b-1), z = round(-lo/s)
 *             QZ_CLIP_PAPER: s = (c*(max - min))/(2^b-1),             z = round(-min/s) */
static void asym_params_f32(const qz_spec *q, float (*rnd)(float), float mn, float mx, float *s,
                            float *z)
{
    float n = (float)asym_qmax(q->bits), c = q->clip, sc, lo;
    if (q->clipmode == QZ_CLIP_CODE) {
        lo = c * mn;
        sc = (c * mx - lo) / n;
    } else {
        lo = mn;
        sc = (c * (mx - mn)) / n;
    }
    if (sc == 0) {
        sc = degen_scale_f32(mn, mx);
        lo = mn;
    }
    *s = sc;
    *z = rnd(-lo / sc) + 0.0f; /* + 0: -0 -> +0 */
}
static void asym_params_f64(const qz_spec *q, double (*rnd)(double), double mn, double mx,
                            double *s, double *z)
{
    double n = (double)asym_qmax(q->bits), c = (double)q->clip, sc, lo;
    if (q->clipmode == QZ_CLIP_CODE) {
        lo = c * mn;
        sc = (c * mx - lo) / n;
    } else {
        lo = mn;
        sc = (c * (mx - mn)) / n;
    }
    if (sc == 0) {
        sc = degen_scale_f64(mn, mx);
        lo = mn;
    }
    *s = sc;
    *z = rnd(-lo / sc) + 0.0;
}

typedef struct {
    const char *name;
    int min_bits; /* smallest valid bit width below 16 (the largest is 8) */
    int (*qmin)(int bits);
    int (*qmax)(int bits);
    void (*params_f32)(const qz_spec *, float (*)(float), float mn, float mx, float *s, float *z);
    void (*params_f64)(const qz_spec *, double (*)(double), double mn, double mx, double *s,
                       double *z);
} scheme_traits;

static const scheme_traits SCHEMES[] = {
    [QZ_SYM] = {"sym", 2, sym_qmin, sym_qmax, sym_params_f32, sym_params_f64},
    [QZ_ASYM] = {"asym", 1, asym_qmin, asym_qmax, asym_params_f32, asym_params_f64},
};

#define MAX_BITS 8
#define IDENTITY_BITS 16

static const char *const GRAN_NAMES[] = {"per-tensor", "per-row", "per-group"};
static const char *const CLIP_NAMES[] = {"code", "paper"};

/* ---------------------------------------------------------------- spec */

qz_spec qz_spec_make(int bits, qz_scheme scheme, qz_gran gran, size_t group)
{
    qz_spec q = {.bits = bits,
                 .scheme = scheme,
                 .gran = gran,
                 .group = group,
                 .clip = 1.0f,
                 .clipmode = QZ_CLIP_CODE,
                 .round = QZ_HALF_EVEN,
                 .ste = QZ_STE_IDENTITY};
    return q;
}

int qz_spec_check(const qz_spec *q, size_t cols)
{
    if (!q) return RS_ERROR(RS_EINVAL, "quant: NULL spec");
    if ((unsigned)q->scheme > QZ_ASYM)
        return RS_ERROR(RS_EINVAL, "quant: unknown scheme %d", (int)q->scheme);
    if ((unsigned)q->gran > QZ_GROUP)
        return RS_ERROR(RS_EINVAL, "quant: unknown granularity %d", (int)q->gran);
    if ((unsigned)q->clipmode > QZ_CLIP_PAPER)
        return RS_ERROR(RS_EINVAL, "quant: unknown clip mode %d", (int)q->clipmode);
    if ((unsigned)q->round > QZ_HALF_AWAY)
        return RS_ERROR(RS_EINVAL, "quant: unknown rounding mode %d", (int)q->round);
    if ((unsigned)q->ste > QZ_STE_CLIPPED)
        return RS_ERROR(RS_EINVAL, "quant: unknown STE mode %d", (int)q->ste);
    const scheme_traits *st = &SCHEMES[q->scheme];
    if (q->bits < IDENTITY_BITS && (q->bits < st->min_bits || q->bits > MAX_BITS))
        return RS_ERROR(RS_EINVAL,
                        "quant: %d bits is invalid for %s (use %d..%d, or >= %d for no quantization)",
                        q->bits, st->name, st->min_bits, MAX_BITS, IDENTITY_BITS);
    if (!(q->clip > 0.0f && q->clip <= 1.0f))
        return RS_ERROR(RS_EINVAL, "quant: clipping factor %g is outside (0, 1]", (double)q->clip);
    if (q->gran == QZ_GROUP) {
        if (q->group < 1) return RS_ERROR(RS_EINVAL, "quant: group size must be >= 1");
        if (cols > 0 && cols % q->group != 0)
            return RS_ERROR(RS_EINVAL, "quant: group size %zu does not divide %zu columns",
                            q->group, cols);
    }
    return RS_OK;
}

int qz_is_identity(const qz_spec *q) { return q->bits >= IDENTITY_BITS; }
int qz_qmin(const qz_spec *q) { return SCHEMES[q->scheme].qmin(q->bits); }
int qz_qmax(const qz_spec *q) { return SCHEMES[q->scheme].qmax(q->bits); }

const char *qz_scheme_name(qz_scheme s)
{
    return (unsigned)s <= QZ_ASYM ? SCHEMES[s].name : "unknown";
}

void qz_describe(const qz_spec *q, char *buf, size_t len)
{
    if (!buf || len == 0) return;
    if (qz_spec_check(q, 0) != RS_OK) {
        snprintf(buf, len, "invalid quantizer spec");
        return;
    }
    if (qz_is_identity(q)) {
        snprintf(buf, len, "%d-bit (no quantization)", q->bits);
        return;
    }
    char gran[48];
    if (q->gran == QZ_GROUP)
        snprintf(gran, sizeof gran, "per-group-%zu", q->group);
    else
        snprintf(gran, sizeof gran, "%s", GRAN_NAMES[q->gran]);
    char clipm[24] = "";
    if (q->scheme == QZ_ASYM) snprintf(clipm, sizeof clipm, " (%s clip)", CLIP_NAMES[q->clipmode]);
    snprintf(buf, len, "%d-bit %s %s c=%.2f%s %s%s", q->bits, SCHEMES[q->scheme].name, gran,
             (double)q->clip, clipm, ROUNDS[q->round].name,
             q->ste == QZ_STE_CLIPPED ? " clipped-STE" : "");
}

size_t qz_ngroups(const qz_spec *q, size_t rows, size_t cols)
{
    switch (q->gran) { /* the layout, not the scheme: the one switch on granularity */
    case QZ_TENSOR: return 1;
    case QZ_ROW: return rows;
    case QZ_GROUP: return q->group ? rows * (cols / q->group) : 0;
    }
    return 0;
}

/* ---------------------------------------------------------------- layout */

typedef struct {
    size_t n;      /* elements */
    size_t nchunk; /* (s, z) pairs */
    size_t len;    /* elements per chunk */
    int par;       /* use OpenMP */
} layout;

/* Validate the arguments shared by the data functions and fill the layout. */
static int setup(const qz_spec *q, size_t rows, size_t cols, int need_quant, layout *L)
{
    int rc = qz_spec_check(q, cols);
    if (rc) return rc;
    if (need_quant && qz_is_identity(q))
        return RS_ERROR(RS_EINVAL, "quant: a %d-bit (identity) spec has no grid or codes", q->bits);
    if (cols != 0 && rows > SIZE_MAX / cols)
        return RS_ERROR(RS_EINVAL, "quant: %zu x %zu elements overflow size_t", rows, cols);
    L->n = rows * cols;
    L->nchunk = qz_ngroups(q, rows, cols);
    L->len = q->gran == QZ_TENSOR ? L->n : q->gran == QZ_ROW ? cols : q->group;
    L->par = L->n >= PAR_MIN;
    return RS_OK;
}

#define NEED(p)                                                                           \
    do {                                                                                  \
        if (!(p)) return RS_ERROR(RS_EINVAL, "quant: %s is NULL", #p);                    \
    } while (0)

/* min and max of x[0..n); n = 0 gives 0, 0. GCC does not vectorise a scalar
 * `v < lo ? v : lo` reduction (even without trapping math), so the bulk uses GCC/clang
 * vector extensions: two 4-lane accumulators, compare masks and bitwise selects (what
 * minps/maxps do), then the lanes and the tail in scalar code. Same result as the
 * scalar scan for non-NaN data (min/max do not depend on the order). */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f v4_sel(v4i m, v4f a, v4f b) /* m ? a : b, lane-wise */
{
    return (v4f)(((v4i)a & m) | ((v4i)b & ~m));
}

static void span_minmax_f32(const float *x, size_t n, float *mn, float *mx)
{
    if (n == 0) {
        *mn = *mx = 0;
        return;
    }
    float lo = x[0], hi = x[0];
    size_t i = 0;
    if (n >= 8) {
        v4f l0, l1, h0, h1;
        memcpy(&l0, x, 16);
        memcpy(&l1, x + 4, 16);
        h0 = l0;
        h1 = l1;
        for (i = 8; i + 8 <= n; i += 8) {
            v4f a, b;
            memcpy(&a, x + i, 16);
            memcpy(&b, x + i + 4, 16);
            l0 = v4_sel(a < l0, a, l0);
            l1 = v4_sel(b < l1, b, l1);
            h0 = v4_sel(a > h0, a, h0);
            h1 = v4_sel(b > h1, b, h1);
        }
        l0 = v4_sel(l1 < l0, l1, l0);
        h0 = v4_sel(h1 > h0, h1, h0);
        for (int k = 0; k < 4; k++) {
            lo = l0[k] < lo ? l0[k] : lo;
            hi = h0[k] > hi ? h0[k] : hi;
        }
    }
    for (; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    *mn = lo;
    *mx = hi;
}

typedef double v2d __attribute__((vector_size(16)));
typedef int64_t v2l __attribute__((vector_size(16)));

static inline v2d v2d_sel(v2l m, v2d a, v2d b) /* m ? a : b, lane-wise */
{
    return (v2d)(((v2l)a & m) | ((v2l)b & ~m));
}

/* As span_minmax_f32, in 2-lane vectors: four accumulators of 2 lanes, then the lanes,
 * then the tail. */
static void span_minmax_f64(const double *x, size_t n, double *mn, double *mx)
{
    if (n == 0) {
        *mn = *mx = 0;
        return;
    }
    double lo = x[0], hi = x[0];
    size_t i = 0;
    if (n >= 8) {
        v2d l[4], h[4];
        for (int k = 0; k < 4; k++) {
            memcpy(&l[k], x + 2 * k, 16);
            h[k] = l[k];
        }
        for (i = 8; i + 8 <= n; i += 8) {
            for (int k = 0; k < 4; k++) {
                v2d a;
                memcpy(&a, x + i + 2 * k, 16);
                l[k] = v2d_sel(a < l[k], a, l[k]);
                h[k] = v2d_sel(a > h[k], a, h[k]);
            }
        }
        for (int k = 1; k < 4; k++) {
            l[0] = v2d_sel(l[k] < l[0], l[k], l[0]);
            h[0] = v2d_sel(h[k] > h[0], h[k], h[0]);
        }
        for (int k = 0; k < 2; k++) {
            lo = l[0][k] < lo ? l[0][k] : lo;
            hi = h[0][k] > hi ? h[0][k] : hi;
        }
    }
    for (; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    *mn = lo;
    *mx = hi;
}

/* min/max of the whole array, in parallel when large (min/max are order-independent). */
static void all_minmax_f32(const float *x, size_t n, int par, float *mn, float *mx)
{
    if (!par) {
        span_minmax_f32(x, n, mn, mx);
        return;
    }
    float lo = x[0], hi = x[0];
    size_t nb = 256, per = (n + nb - 1) / nb;
#pragma omp parallel for reduction(min : lo) reduction(max : hi) schedule(static)
    for (size_t b = 0; b < nb; b++) {
        size_t a = b * per, e = a + per < n ? a + per : n;
        if (a >= e) continue;
        float l, h;
        span_minmax_f32(x + a, e - a, &l, &h);
        lo = l < lo ? l : lo;
        hi = h > hi ? h : hi;
    }
    *mn = lo;
    *mx = hi;
}

static void chunk_params_f32(const qz_spec *q, const float *x, size_t n, int par, float *s, float *z)
{
    float mn, mx;
    all_minmax_f32(x, n, par, &mn, &mx);
    SCHEMES[q->scheme].params_f32(q, ROUNDS[q->round].fast_f32, mn, mx, s, z);
}

static void chunk_params_f64(const qz_spec *q, const double *x, size_t n, double *s, double *z)
{
    double mn, mx;
    span_minmax_f64(x, n, &mn, &mx);
    SCHEMES[q->scheme].params_f64(q, ROUNDS[q->round].fast_f64, mn, mx, s, z);
}

/* ---------------------------------------------------------------- f32 fast path */

int qz_params_f32(const qz_spec *q, const float *x, size_t rows, size_t cols, float *scale, float *zero)
{
    layout L;
    int rc = setup(q, rows, cols, 1, &L);
    if (rc) return rc;
    NEED(scale);
    NEED(zero);
    if (L.n) NEED(x);
    if (q->gran == QZ_TENSOR) {
        chunk_params_f32(q, x, L.n, L.par, scale, zero);
        return RS_OK;
    }
    OMP_FOR_IF(L.par,
        for (size_t g = 0; g < L.nchunk; g++)
            chunk_params_f32(q, x + g * L.len, L.len, 0, &scale[g], &zero[g]););
    return RS_OK;
}

/* QZ_TENSOR: apply one (s, z) to x[0..n) in 256 pieces [off, off + cnt), in parallel. */
#define TENSOR_PIECES(n, par, BODY)                                                       \
    do {                                                                                  \
        const size_t n_ = (n), nb_ = (par) ? 256 : 1, per_ = (n_ + nb_ - 1) / nb_;       \
        const int par_ = (par);                                                           \
        if (!par_) {                                                                      \
            const size_t off = 0, cnt = n_;                                               \
            (void)per_;                                                                   \
            BODY;                                                                         \
        } else {                                                                          \
            _Pragma("omp parallel for schedule(static)")                                  \
            for (size_t b_ = 0; b_ < nb_; b_++) {                                         \
                size_t off = b_ * per_;                                                   \
                if (off >= n_) continue;                                                  \
                size_t cnt = n_ - off < per_ ? n_ - off : per_;                           \
                BODY;                                                                     \
            }                                                                             \
        }                                                                                 \
    } while (0)

int qz_fake_f32(const qz_spec *q, const float *x, float *y, size_t rows, size_t cols)
{
    layout L;
    int rc = setup(q, rows, cols, 0, &L);
    if (rc) return rc;
    if (L.n == 0) return RS_OK;
    NEED(x);
    NEED(y);
    if (qz_is_identity(q)) {
        if (x != y) memmove(y, x, L.n * sizeof *x);
        return RS_OK;
    }
    const round_traits *rt = &ROUNDS[q->round];
    float lo = (float)qz_qmin(q), hi = (float)qz_qmax(q);
    if (q->gran == QZ_TENSOR) {
        float s, z;
        chunk_params_f32(q, x, L.n, L.par, &s, &z);
        TENSOR_PIECES(L.n, L.par, rt->fake_f32(x + off, y + off, cnt, s, z, lo, hi));
        return RS_OK;
    }
    OMP_FOR_IF(L.par,
        for (size_t g = 0; g < L.nchunk; g++) {
            float s, z;
            chunk_params_f32(q, x + g * L.len, L.len, 0, &s, &z);
            rt->fake_f32(x + g * L.len, y + g * L.len, L.len, s, z, lo, hi);
        });
    return RS_OK;
}

int qz_quantize_f32(const qz_spec *q, const float *x, size_t rows, size_t cols, int16_t *codes,
                    float *scale, float *zero)
{
    layout L;
    int rc = setup(q, rows, cols, 1, &L);
    if (rc) return rc;
    NEED(scale);
    NEED(zero);
    if (L.n) {
        NEED(x);
        NEED(codes);
    }
    const round_traits *rt = &ROUNDS[q->round];
    float lo = (float)qz_qmin(q), hi = (float)qz_qmax(q);
    if (q->gran == QZ_TENSOR) {
        chunk_params_f32(q, x, L.n, L.par, scale, zero);
        float s = scale[0], z = zero[0];
        TENSOR_PIECES(L.n, L.par, rt->code_f32(x + off, codes + off, cnt, s, z, lo, hi));
        return RS_OK;
    }
    OMP_FOR_IF(L.par,
        for (size_t g = 0; g < L.nchunk; g++) {
            chunk_params_f32(q, x + g * L.len, L.len, 0, &scale[g], &zero[g]);
            rt->code_f32(x + g * L.len, codes + g * L.len, L.len, scale[g], zero[g], lo, hi);
        });
    return RS_OK;
}

int qz_dequantize_f32(const qz_spec *q, const int16_t *codes, const float *scale, const float *zero,
                      float *y, size_t rows, size_t cols)
{
    layout L;
    int rc = setup(q, rows, cols, 1, &L);
    if (rc) return rc;
    if (L.n == 0) return RS_OK;
    NEED(codes);
    NEED(scale);
    NEED(zero);
    NEED(y);
    /* Codes are taken as given (no range check). (code - z) * s is the tail of Q(x). */
    OMP_FOR_IF(L.par,
        for (size_t g = 0; g < L.nchunk; g++) {
            size_t a = g * L.len;
            float s = scale[g], z = zero[g];
            for (size_t i = 0; i < L.len; i++) y[a + i] = ((float)codes[a + i] - z) * s;
        });
    return RS_OK;
}

/* Deterministic error sums: ERR_BLOCKS fixed blocks (of elements for QZ_TENSOR, of
 * chunks otherwise), each summed in order, then the block sums in order: the result
 * does not depend on the number of threads. */
static void finish_error(const double *bsum, size_t n, double *sum, double *mean)
{
    double t = 0;
    for (int b = 0; b < ERR_BLOCKS; b++) t += bsum[b];
    if (sum) *sum = t;
    if (mean) *mean = n ? t / (double)n : 0.0;
}

int qz_error_f32(const qz_spec *q, const float *x, size_t rows, size_t cols, double *sum, double *mean)
{
    layout L;
    int rc = setup(q, rows, cols, 0, &L);
    if (rc) return rc;
    double bsum[ERR_BLOCKS] = {0};
    if (L.n == 0 || qz_is_identity(q)) {
        finish_error(bsum, L.n, sum, mean);
        return RS_OK;
    }
    NEED(x);
    const round_traits *rt = &ROUNDS[q->round];
    float lo = (float)qz_qmin(q), hi = (float)qz_qmax(q);
    if (q->gran == QZ_TENSOR) {
        float s, z;
        chunk_params_f32(q, x, L.n, L.par, &s, &z);
        OMP_FOR_IF(L.par,
            for (int b = 0; b < ERR_BLOCKS; b++) {
                size_t a = L.n * (size_t)b / ERR_BLOCKS, e = L.n * (size_t)(b + 1) / ERR_BLOCKS;
                bsum[b] = rt->err_f32(x + a, e - a, s, z, lo, hi);
            });
    } else {
        OMP_FOR_IF(L.par,
            for (int b = 0; b < ERR_BLOCKS; b++) {
                size_t ga = L.nchunk * (size_t)b / ERR_BLOCKS, ge = L.nchunk * (size_t)(b + 1) / ERR_BLOCKS;
                double acc = 0;
                for (size_t g = ga; g < ge; g++) {
                    float s, z;
                    chunk_params_f32(q, x + g * L.len, L.len, 0, &s, &z);
                    acc += rt->err_f32(x + g * L.len, L.len, s, z, lo, hi);
                }
                bsum[b] = acc;
            });
    }
    finish_error(bsum, L.n, sum, mean);
    return RS_OK;
}

/* Keep dy where qmin <= x/s + z <= qmax (computed in float, before rounding). */
static void ste_span_f32(const float *x, const float *dy, float *dx, size_t n, float s, float z,
                         float lo, float hi)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i] / s + z;
        dx[i] = (v >= lo && v <= hi) ? dy[i] : 0.0f;
    }
}

int qz_ste_backward_f32(const qz_spec *q, const float *x, const float *dy, float *dx, size_t rows,
                        size_t cols)
{
    layout L;
    int rc = setup(q, rows, cols, 0, &L);
    if (rc) return rc;
    if (L.n == 0) return RS_OK;
    NEED(dy);
    NEED(dx);
    if (q->ste == QZ_STE_IDENTITY || qz_is_identity(q)) {
        if (dx != dy) memmove(dx, dy, L.n * sizeof *dy);
        return RS_OK;
    }
    NEED(x);
    float lo = (float)qz_qmin(q), hi = (float)qz_qmax(q);
    if (q->gran == QZ_TENSOR) {
        float s, z;
        chunk_params_f32(q, x, L.n, L.par, &s, &z);
        TENSOR_PIECES(L.n, L.par, ste_span_f32(x + off, dy + off, dx + off, cnt, s, z, lo, hi));
        return RS_OK;
    }
    OMP_FOR_IF(L.par,
        for (size_t g = 0; g < L.nchunk; g++) {
            float s, z;
            size_t a = g * L.len;
            chunk_params_f32(q, x + a, L.len, 0, &s, &z);
            ste_span_f32(x + a, dy + a, dx + a, L.len, s, z, lo, hi);
        });
    return RS_OK;
}

float qz_fake_scalar_f32(const qz_spec *q, float x, float s, float z)
{
    if (qz_is_identity(q)) return x;
    float lo = (float)qz_qmin(q), hi = (float)qz_qmax(q);
    return fake1_f32(x, s, z, lo, hi, ROUNDS[q->round].ref_f32);
}

/* ---------------------------------------------------------------- f64 */

int qz_params_f64(const qz_spec *q, const double *x, size_t rows, size_t cols, double *scale,
                  double *zero)
{
    layout L;
    int rc = setup(q, rows, cols, 1, &L);
    if (rc) return rc;
    NEED(scale);
    NEED(zero);
    if (L.n) NEED(x);
    OMP_FOR_IF(L.par && L.nchunk > 1,
        for (size_t g = 0; g < L.nchunk; g++)
            chunk_params_f64(q, x + g * L.len, L.len, &scale[g], &zero[g]););
    return RS_OK;
}

int qz_fake_f64(const qz_spec *q, const double *x, double *y, size_t rows, size_t cols)
{
    layout L;
    int rc = setup(q, rows, cols, 0, &L);
    if (rc) return rc;
    if (L.n == 0) return RS_OK;
    NEED(x);
    NEED(y);
    if (qz_is_identity(q)) {
        if (x != y) memmove(y, x, L.n * sizeof *x);
        return RS_OK;
    }
    const round_traits *rt = &ROUNDS[q->round];
    double lo = qz_qmin(q), hi = qz_qmax(q);
    if (q->gran == QZ_TENSOR) {
        double s, z;
        chunk_params_f64(q, x, L.n, &s, &z);
        TENSOR_PIECES(L.n, L.par, rt->fake_f64(x + off, y + off, cnt, s, z, lo, hi));
        return RS_OK;
    }
    OMP_FOR_IF(L.par,
        for (size_t g = 0; g < L.nchunk; g++) {
            double s, z;
            chunk_params_f64(q, x + g * L.len, L.len, &s, &z);
            rt->fake_f64(x + g * L.len, y + g * L.len, L.len, s, z, lo, hi);
        });
    return RS_OK;
}

int qz_error_f64(const qz_spec *q, const double *x, size_t rows, size_t cols, double *sum,
                 double *mean)
{
    layout L;
    int rc = setup(q, rows, cols, 0, &L);
    if (rc) return rc;
    double bsum[ERR_BLOCKS] = {0};
    if (L.n == 0 || qz_is_identity(q)) {
        finish_error(bsum, L.n, sum, mean);
        return RS_OK;
    }
    NEED(x);
    const round_traits *rt = &ROUNDS[q->round];
    double lo = qz_qmin(q), hi = qz_qmax(q);
    if (q->gran == QZ_TENSOR) {
        double s, z;
        chunk_params_f64(q, x, L.n, &s, &z);
        OMP_FOR_IF(L.par,
            for (int b = 0; b < ERR_BLOCKS; b++) {
                size_t a = L.n * (size_t)b / ERR_BLOCKS, e = L.n * (size_t)(b + 1) / ERR_BLOCKS;
                bsum[b] = rt->err_f64(x + a, e - a, s, z, lo, hi);
            });
    } else {
        OMP_FOR_IF(L.par,
            for (int b = 0; b < ERR_BLOCKS; b++) {
                size_t ga = L.nchunk * (size_t)b / ERR_BLOCKS, ge = L.nchunk * (size_t)(b + 1) / ERR_BLOCKS;
                double acc = 0;
                for (size_t g = ga; g < ge; g++) {
                    double s, z;
                    chunk_params_f64(q, x + g * L.len, L.len, &s, &z);
                    acc += rt->err_f64(x + g * L.len, L.len, s, z, lo, hi);
                }
                bsum[b] = acc;
            });
    }
    finish_error(bsum, L.n, sum, mean);
    return RS_OK;
}

double qz_fake_scalar_f64(const qz_spec *q, double x, double s, double z)
{
    if (qz_is_identity(q)) return x;
    double lo = qz_qmin(q), hi = qz_qmax(q);
    return fake1_f64(x, s, z, lo, hi, ROUNDS[q->round].ref_f64);
}

/* ---------------------------------------------------------------- reference (f32) */

/* Group index and element range of element (r, j), by plain index arithmetic. */
static size_t ref_group_of(const qz_spec *q, size_t cols, size_t r, size_t j)
{
    if (q->gran == QZ_TENSOR) return 0;
    if (q->gran == QZ_ROW) return r;
    return r * (cols / q->group) + j / q->group;
}

int qz_params_f32_ref(const qz_spec *q, const float *x, size_t rows, size_t cols, float *scale,
                      float *zero)
{
    layout L;
    int rc = setup(q, rows, cols, 1, &L);
    if (rc) return rc;
    NEED(scale);
    NEED(zero);
    if (L.n) NEED(x);
    /* One row-major pass: scale[] holds each group's running min and zero[] its max
     * (started at the group's first element), then both are replaced by (s, z). */
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            size_t g = ref_group_of(q, cols, r, j);
            int first = q->gran == QZ_TENSOR ? (r == 0 && j == 0)
                        : q->gran == QZ_ROW  ? j == 0
                                             : j % q->group == 0;
            float v = x[r * cols + j];
            if (first) scale[g] = zero[g] = v;
            if (v < scale[g]) scale[g] = v;
            if (v > zero[g]) zero[g] = v;
        }
    for (size_t g = 0; g < L.nchunk; g++) {
        /* an empty group (cols == 0) has min = max = 0, like the fast path */
        float mn = L.n ? scale[g] : 0.0f, mx = L.n ? zero[g] : 0.0f;
        SCHEMES[q->scheme].params_f32(q, ROUNDS[q->round].ref_f32, mn, mx, &scale[g], &zero[g]);
    }
    return RS_OK;
}

int qz_fake_f32_ref(const qz_spec *q, const float *x, float *y, size_t rows, size_t cols,
                    float *scale, float *zero)
{
    layout L;
    int rc = setup(q, rows, cols, 0, &L);
    if (rc) return rc;
    if (L.n == 0) return RS_OK;
    NEED(x);
    NEED(y);
    if (qz_is_identity(q)) {
        for (size_t i = 0; i < L.n; i++) y[i] = x[i];
        return RS_OK;
    }
    rc = qz_params_f32_ref(q, x, rows, cols, scale, zero);
    if (rc) return rc;
    float lo = (float)qz_qmin(q), hi = (float)qz_qmax(q);
    float (*rnd)(float) = ROUNDS[q->round].ref_f32;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            size_t g = ref_group_of(q, cols, r, j);
            float s = scale[g], z = zero[g];
            float v = rnd(x[r * cols + j] / s) + z;
            if (v < lo) v = lo;
            if (v > hi) v = hi;
            y[r * cols + j] = (v - z) * s;
        }
    return RS_OK;
}
