/* rostesim: Hadamard matrices and fast orthonormal Hadamard transforms (ROSTE.md §3).
 *
 * A plan represents the normalised Hadamard matrix of order n = K * 2^m,
 * H = (H_K (x) H_{2^m}) / sqrt(n), where H_K is a +-1 Hadamard matrix of order K
 * built from a construction (Sylvester, Paley I, Paley II, Williamson-type,
 * Kronecker products of these) and H_{2^m} is Sylvester's. It is applied to rows:
 * x <- x * H (or x * H^T) without forming the n x n matrix: a fast Walsh-Hadamard
 * transform of length 2^m plus a K x K product.
 *
 * H_K need not be symmetric, so the transpose is a different operation. */
#ifndef RS_HADAMARD_H
#define RS_HADAMARD_H

#include <stddef.h>
#include <stdint.h>

typedef struct had_plan had_plan;

/* Build the plan for order n. RS_ENOTSUP (with a message naming the nearest
 * supported orders) if no construction is available. */
int had_plan_alloc(size_t n, had_plan **out);
void had_plan_free(had_plan *p); /* NULL is a no-op */

size_t had_order(const had_plan *p);
size_t had_core_order(const had_plan *p); /* K */
/* The construction, e.g. "Paley II q=37 (76) (x) Sylvester 64". */
const char *had_describe(const had_plan *p);
/* The +-1 core H_K, row-major K x K. */
const int8_t *had_core(const had_plan *p);

/* Each of `rows` rows of length n: x <- x * H (transpose = 0) or x * H^T. */
int had_apply_f32(const had_plan *p, float *x, size_t rows, int transpose);
int had_apply_f64(const had_plan *p, double *x, size_t rows, int transpose);
/* had_apply_f32 with caller-owned scratch: ws holds had_apply_ws_len(p, rows) floats
 * (0 for pure Sylvester orders; ws may then be NULL); ws NULL allocates per call as
 * had_apply_f32 does. Same results, bit for bit. */
size_t had_apply_ws_len(const had_plan *p, size_t rows);
int had_apply_f32_ws(const had_plan *p, float *x, size_t rows, int transpose, float *ws);

/* Dense normalised H (n x n, row-major) in double, for tests and small sizes. */
int had_dense_f64(const had_plan *p, double *H);

/* In-place normalised fast Walsh-Hadamard transform (Sylvester order n = 2^m)
 * of each of `rows` rows; AVX2 where the CPU has it, portable otherwise. */
int had_fwht_f32(float *x, size_t rows, size_t n);
int had_fwht_f64(double *x, size_t rows, size_t n);
/* The portable reference of the above (no SIMD, no threads). */
int had_fwht_f32_ref(float *x, size_t rows, size_t n);

/* 1 if order n has a construction (writes its description to desc if non-NULL). */
int had_supported(size_t n, char *desc, size_t desclen);
/* Nearest supported orders below and above n (0 if none below). */
void had_nearest(size_t n, size_t *below, size_t *above);

/* +-1 Hadamard matrix of order K from the named constructions (K x K, row-major);
 * RS_ENOTSUP if none applies. desc receives the construction's name. */
int had_core_matrix(size_t K, int8_t *H, char *desc, size_t desclen);

#endif
