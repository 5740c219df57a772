/* rostesim: uniform fake quantizers with straight-through estimators (ROSTE.md §2).
 *
 *   Q(x) = (clamp(round(x/s) + z, qmin, qmax) - z) * s, one (s, z) per group.
 *   symmetric : s = c*max|x| / (2^(b-1)-1), z = 0, codes in [-2^(b-1), 2^(b-1)-1]
 *   asymmetric: codes in [0, 2^b-1], z = round(-min'/s) with
 *       QZ_CLIP_CODE  (authors' code, default): max' = c*max, min' = c*min, s = (max'-min')/(2^b-1)
 *       QZ_CLIP_PAPER (paper's formula):        s = c*(max-min)/(2^b-1), min' = min
 *   bits >= 16 means "no quantization" (identity).
 *
 * Matrices are row-major, rows x cols; the group runs along a row:
 * QZ_TENSOR = the whole matrix, QZ_ROW = one row (per output channel of a weight
 * stored out x in, per token of an activation), QZ_GROUP = `group` consecutive
 * elements of a row (group must divide cols).
 *
 * Degenerate groups (zero range, or a scale that underflows to 0) are reproduced
 * exactly: s = |v| (or 1 when v = 0) and z chosen so that Q(v) = v.
 *
 * The float path computes s, z and Q(x) in float with the operation order above
 * (x/s, round, + z, clamp, - z, * s), so it agrees bit for bit with the same ops in
 * PyTorch float32. The double path does the same in double.
 *
 * Scheme-specific behaviour lives in one traits table (quant.c), not in switches. */
#ifndef RS_QUANT_H
#define RS_QUANT_H

#include <stddef.h>
#include <stdint.h>

typedef enum { QZ_SYM = 0, QZ_ASYM = 1 } qz_scheme;
typedef enum { QZ_TENSOR = 0, QZ_ROW = 1, QZ_GROUP = 2 } qz_gran;
typedef enum { QZ_CLIP_CODE = 0, QZ_CLIP_PAPER = 1 } qz_clipmode;
typedef enum { QZ_HALF_EVEN = 0, QZ_HALF_AWAY = 1 } qz_round;
typedef enum { QZ_STE_IDENTITY = 0, QZ_STE_CLIPPED = 1 } qz_ste;

typedef struct {
    int bits;            /* 1..8 (symmetric: 2..8), or >= 16 for identity */
    qz_scheme scheme;
    qz_gran gran;
    size_t group;        /* group length for QZ_GROUP, ignored otherwise */
    float clip;          /* clipping factor c in (0, 1] */
    qz_clipmode clipmode;
    qz_round round;
    qz_ste ste;
} qz_spec;

/* A spec with the defaults: clip 1, code clipping, half-even, identity STE. */
qz_spec qz_spec_make(int bits, qz_scheme scheme, qz_gran gran, size_t group);

/* RS_OK if the spec is valid for matrices with `cols` columns (0: skip the
 * group-divides-cols check); RS_EINVAL with a message otherwise. */
int qz_spec_check(const qz_spec *q, size_t cols);

int qz_is_identity(const qz_spec *q);           /* bits >= 16 */
int qz_qmin(const qz_spec *q);                   /* smallest code */
int qz_qmax(const qz_spec *q);                   /* largest code */
const char *qz_scheme_name(qz_scheme s);         /* "sym" / "asym" */
/* Human-readable one-line description, e.g. "4-bit asym per-row c=0.90 (code) half-even". */
void qz_describe(const qz_spec *q, char *buf, size_t len);

/* Number of (s, z) pairs for a rows x cols matrix. */
size_t qz_ngroups(const qz_spec *q, size_t rows, size_t cols);

/* Per-group scale and zero point (zero holds an integer value). Arrays have
 * qz_ngroups() entries; group g of row r is index r*(cols/group)+g (QZ_GROUP),
 * r (QZ_ROW) or 0 (QZ_TENSOR). */
int qz_params_f32(const qz_spec *q, const float *x, size_t rows, size_t cols, float *scale, float *zero);
int qz_params_f64(const qz_spec *q, const double *x, size_t rows, size_t cols, double *scale, double *zero);

/* y = Q(x). y may equal x (in place). Identity specs copy. */
int qz_fake_f32(const qz_spec *q, const float *x, float *y, size_t rows, size_t cols);
int qz_fake_f64(const qz_spec *q, const double *x, double *y, size_t rows, size_t cols);

/* Integer codes + per-group (scale, zero); dequantize gives exactly qz_fake's output.
 * Identity specs are rejected (RS_EINVAL): there are no codes. A NaN input gets the code
 * qmin (qz_fake gives NaN): callers that need a meaningful result check finiteness. */
int qz_quantize_f32(const qz_spec *q, const float *x, size_t rows, size_t cols,
                    int16_t *codes, float *scale, float *zero);
int qz_dequantize_f32(const qz_spec *q, const int16_t *codes, const float *scale, const float *zero,
                      float *y, size_t rows, size_t cols);

/* Squared quantization error ||Q(x) - x||^2: its sum and its mean per element.
 * Either output pointer may be NULL. */
int qz_error_f32(const qz_spec *q, const float *x, size_t rows, size_t cols, double *sum, double *mean);
int qz_error_f64(const qz_spec *q, const double *x, size_t rows, size_t cols, double *sum, double *mean);

/* One element with given group parameters (s, z): what qz_fake does per element.
 * For solvers that fix the grid first and quantize later (GPTQ). */
float qz_fake_scalar_f32(const qz_spec *q, float x, float s, float z);
double qz_fake_scalar_f64(const qz_spec *q, double x, double s, double z);

/* STE backward: dx = dy (QZ_STE_IDENTITY) or dy masked to 0 where x/s + z falls
 * outside [qmin, qmax] before rounding (QZ_STE_CLIPPED). Overwrites dx (dx may equal dy). */
int qz_ste_backward_f32(const qz_spec *q, const float *x, const float *dy, float *dx, size_t rows, size_t cols);

/* Scalar reference twins of the fast path (plain loops, libm rounding, no OpenMP),
 * kept for tests and benchmarks: they give bit-for-bit the same results.
 * qz_fake_f32_ref writes the per-group (s, z) it used into scale/zero
 * (qz_ngroups() entries each; untouched for identity specs). */
int qz_params_f32_ref(const qz_spec *q, const float *x, size_t rows, size_t cols, float *scale, float *zero);
int qz_fake_f32_ref(const qz_spec *q, const float *x, float *y, size_t rows, size_t cols,
                    float *scale, float *zero);

#endif
