/* rostesim: orthogonal rotation objects (ROSTE.md §3).
 *
 * A rotation R of dimension n = block * nblocks is block-diagonal with the same
 * block B repeated nblocks times (nblocks = 1: a plain rotation; nblocks = heads:
 * the per-head R2/R3 of SpinQuant). B is one of:
 *   ROT_IDENTITY        I
 *   ROT_HADAMARD        H / sqrt(block) (deterministic, from quant/hadamard.h)
 *   ROT_RANDOM_HADAMARD H * diag(r) / sqrt(block), r random signs
 *   ROT_HAAR            Haar-random orthogonal (QR of a Gaussian matrix with the
 *                       sign fix diag(R) > 0), via LAPACKE
 *
 * Conventions: "rows" functions treat x as `rows` row vectors of length n and
 * compute x <- x * R (transpose = 0) or x <- x * R^T; "cols" functions treat x as
 * an n x cols row-major matrix and compute x <- R * x or x <- R^T * x.
 * For an HF weight W stored out x in: input-side merge W*R uses rows, output-side
 * R^T*W uses cols with transpose = 1. */
#ifndef RS_ROTATION_H
#define RS_ROTATION_H

#include <stddef.h>

#include "quant/rng.h"

typedef enum { ROT_IDENTITY = 0, ROT_HADAMARD = 1, ROT_RANDOM_HADAMARD = 2, ROT_HAAR = 3 } rot_kind;

typedef struct rot rot;

/* rng is used for random kinds (may be NULL for the deterministic ones). */
int rot_alloc(rot_kind kind, size_t block, size_t nblocks, rs_rng *rng, rot **out);
void rot_free(rot *r); /* NULL is a no-op */

size_t rot_dim(const rot *r);
size_t rot_block(const rot *r);
rot_kind rot_get_kind(const rot *r);
const char *rot_kind_name(rot_kind k); /* "none", "hadamard", "random-hadamard", "haar" */
/* Parse a kind name (also accepts "identity" and "rh"); -1 if unknown. */
int rot_kind_parse(const char *s);

int rot_apply_rows_f32(const rot *r, float *x, size_t rows, int transpose);
int rot_apply_rows_f64(const rot *r, double *x, size_t rows, int transpose);
/* rot_apply_rows_f32 with caller-owned scratch of rot_apply_ws_len(r, rows) floats (no
 * allocation per call; ws NULL allocates as rot_apply_rows_f32 does). Same results, bit
 * for bit. A workspace for R rows also serves any smaller row count. */
size_t rot_apply_ws_len(const rot *r, size_t rows);
int rot_apply_rows_f32_ws(const rot *r, float *x, size_t rows, int transpose, float *ws);
/* rot_apply_rows_f32_ws with a scratch the caller keeps between calls (*ws of *ws_len floats,
 * both 0 at first; free *ws when done), grown with realloc when a call needs more.
 * RS_ENOMEM if it cannot grow. */
int rot_apply_rows_f32_grow(const rot *r, float *x, size_t rows, int transpose, float **ws, size_t *ws_len);
int rot_apply_cols_f32(const rot *r, float *x, size_t cols, int transpose);
int rot_apply_cols_f64(const rot *r, double *x, size_t cols, int transpose);

/* Hadamard kinds as data (for a file that stores a rotation): the b signs r of the
 * block H * diag(r) / sqrt(b) (all +1 for ROT_HADAMARD); RS_EINVAL for other kinds. */
int rot_hadamard_signs(const rot *r, float *signs);
/* A ROT_RANDOM_HADAMARD with the given signs (b entries, each +1 or -1): the inverse of
 * rot_hadamard_signs (the same results as the rotation the signs came from, bit for bit). */
int rot_alloc_signed_hadamard(size_t block, size_t nblocks, const float *signs, rot **out);

/* The dense n x n matrix R (row-major) in double. */
int rot_dense_f64(const rot *r, double *R);

#endif
