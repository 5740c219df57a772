/* rostesim LLM: integer inference of a quantized (QAT or PTQ) model: 4-bit packed weights,
 * 2..8-bit activations, 4-bit packed KV cache (llm/quantize/intq_kernels.h for the kernels).
 *
 * A model with a QAT state (llm/quantize/qat.h: a folder with rostesim_qat.json) computes, at each
 * quantized linear site, out = Q_a(x [R4]) . Q_w(W)^T + b in fp32. With the quantizers'
 * codes k = c_a - z_a (per token, scale s_a) and j = c_w - z_w (per output channel, s_w),
 * Q_a(x)_i = s_a k_i and Q_w(W)_oi = s_w j_oi, so
 *     out = s_a s_w S + b,   S = sum_i k_i j_i   (an exact integer),
 * and S = sum u_a u_w - z_a' sum u_w - z_w' sum u_a + IC z_a' z_w' from the unsigned codes
 * u (intq_kernels.h) with integer GEMM (int32 sums, corrections in int64). This path
 * computes exactly that: the codes and scales come from the same quantizer functions
 * (qz_quantize_f32 is bit-for-bit qz_fake_f32's grid), then out = fl(fl(s_a s_w) fl(S)) + b.
 *
 * Exactness bound (per output element of a linear site, same input x). With u = 2^-24,
 * A = s_a s_w sum_i |k_i j_i| and IC the input width: the fake path rounds each
 * Q_a(x)_i = fl(k_i s_a) and Q_w(W)_oi = fl(j_oi s_w) once (k, j are exact small integers
 * while the zero points are below 2^23 in magnitude, always the case when a group's range
 * contains 0), and its sgemm sums the IC products onto the bias b in any order, so its
 * result is within gamma_{IC+2} (A + |b|) of s_a s_w S + b (gamma_n = n u / (1 - n u));
 * ours is within 3u A of s_a s_w S before the bias (three roundings) and adds b with one
 * more rounding, u |out_int|. Hence, with margin for the second-order terms,
 *     |out_int - out_fake| <= (IC + 6) u (A + |b|) + 2u (|out_int| + |out_fake|).
 * That is "equal up to fp32 rounding": the integer part is exact, only the scale products
 * and the fake path's own float sums round. tests/test_intq.c checks the bound on every
 * site of every layer of the three families with the model's real activations. Through the
 * whole network the difference stays at rounding level unless some later quantizer's input
 * falls within that rounding distance of a rounding boundary: the two paths then pick
 * neighbouring codes there (one quantization step apart) and differ by that step from there
 * on (through the KV cache, in every later token). The test compares every quantizer's
 * input of both paths (llm_intq_set_tap): with equal codes everywhere the logits agree to
 * 1e-4 of their scale; the first differing code must be such a boundary flip.
 *
 * Everything else (embedding, norms, RoPE, R3 on q/k, R4 on the down projection's input,
 * R1 before GPT-NeoX's final LayerNorm, attention, activation functions, the LM head, which
 * the fake-quant path never quantizes; but see LLM_INTQ_HEAD_Q8 below, an opt-in that gives
 * this up) runs the same fp32 kernels as the fake-quant path (llm/nn/kernels.h,
 * quant/rotation.h: Hadamard rotations through the fast Walsh-Hadamard transform of
 * quant/hadamard.h, orders K * 2^m included). The K/V cache holds the K/V quantizer's
 * codes packed two per byte plus a per-token-per-head scale and zero point (kvbits <= 4),
 * dequantized per layer for attention to exactly the fake path's values; with kvbits >= 16
 * it is fp32, as the fake path's.
 *
 * Supported: wbits 1..4, abits 1..8, kvbits 1..4 or >= 16 (off) (symmetric: 2 bits and
 * up), either scheme and clip mode, Hadamard / random-Hadamard online rotations. Not supported (RS_ENOTSUP with a
 * message): no QAT state, unquantized weights (wbits >= 16, e.g. a GPTQ model, whose grid
 * is not the per-row quantizer's) or activations, kvbits 5..15, an online R2, Haar R3/R4.
 *
 * The int8 embedding / LM head (LLM_INTQ_HEAD_Q8, opt-in; the default LLM_INTQ_HEAD_F32
 * keeps both fp32 and everything above unchanged). The embedding and the LM head (one table
 * when tied) are stored as int8 codes with one scale per row (iq_quantize_s8 in
 * intq_kernels.h: symmetric, scale = max|row| / 127, round half to even; a zero row has
 * scale 1). The embedding lookup dequantizes its row, code * scale. The head quantizes each
 * token's final hidden state h the same way (scale s_a = max|h| / 127, codes k) and computes
 * logit_o = fl(fl(S_o) * fl(s_a s_w[o])), S_o = sum_i k_i j_oi exact in int32 (int8 GEMM).
 * This is not the fake-quant path's number: it moves each logit by at most
 *     (s_w[o] / 2) sum_i |h_i| + (s_a / 2) sum_i (|W_oi| + s_w[o] / 2)
 * (from |h_i - s_a k_i| <= s_a/2, |W_oi - s_w j_oi| <= s_w/2), plus the fp32 rounding of both
 * sums, for the same h; and the int8 embedding perturbs h itself. tests/test_intq.c checks
 * that bound on the head and measures the whole model against the fp32 head. In exchange the
 * head reads V x d bytes per token instead of 4 V d (SmolLM2-135M: 28 MB instead of 113 MB).
 *
 * File format (llm_intq_save / llm_intq_load), little-endian, described in
 * docs/int-format.md: magic "RSIQ", version, sizes and quantizer header, rotation signs,
 * then the fp32 tensors, the packed rows and the per-row scales / zero points / code sums,
 * then the int8 embedding / head rows and their scales (empty for an fp32 head), each
 * section preceded by its length in bytes (checked on reading). Version 1 files (no head
 * field, seven sections, fp32 head) are still read. */
#ifndef RS_LLM_INTQ_H
#define RS_LLM_INTQ_H

#include <stddef.h>
#include <stdint.h>

#include "llm/io/config.h"
#include "llm/train/data.h"
#include "llm/nn/model.h"
#include "llm/nn/sample.h"

#define LLM_INTQ_MAGIC "RSIQ"
#define LLM_INTQ_VERSION 2 /* written; 1 and 2 are read */

typedef struct llm_intq llm_intq;
typedef struct llm_intq_kv llm_intq_kv;

/* RS_OK if the int path can run model m; RS_ENOTSUP with a one-line reason otherwise. */
int llm_intq_supported(const llm_model *m);
/* How the embedding and LM head are stored (above). */
typedef enum { LLM_INTQ_HEAD_F32 = 0, LLM_INTQ_HEAD_Q8 = 1 } llm_intq_head;
const char *llm_intq_head_name(llm_intq_head h); /* "f32", "q8" */
int llm_intq_head_parse(const char *s, llm_intq_head *h); /* RS_OK, or RS_EINVAL (no message) */

/* Pack model m (with its QAT state) into an integer model; m is not kept. llm_intq_build
 * keeps the fp32 head (llm_intq_build_head with LLM_INTQ_HEAD_F32). */
int llm_intq_build(llm_intq **out, const llm_model *m);
int llm_intq_build_head(llm_intq **out, const llm_model *m, llm_intq_head head);
llm_intq_head llm_intq_head_kind(const llm_intq *iq);
void llm_intq_free(llm_intq *iq); /* NULL is a no-op */

const llm_config *llm_intq_config(const llm_intq *iq);
/* Bytes of the model's tensors: packed weights with their per-row data (the int8 embedding /
 * head rows and scales included), and fp32 tensors. */
size_t llm_intq_bytes(const llm_intq *iq, size_t *packed, size_t *fp32);
/* Bytes of the run-time IL16 copy of the packed weights kept for the AVX-512 VNNI kernel
 * (0 on a CPU without it); not part of the model or its file. */
size_t llm_intq_il16_bytes(const llm_intq *iq);

/* One quantized linear site (LLM_SITE_QKV..DOWN) of one layer on N tokens of input x
 * (N, IC), before online rotations (R4 applied here where the model has it), into out
 * (N, OC). For tests (allocates its scratch). */
int llm_intq_linear(const llm_intq *iq, int site, int layer, const float *x, int N, float *out);

/* The embedding of n tokens into x (n, d), and the LM head on N final hidden states h (N, d)
 * (after the final norm) into logits (N, vocab), as llm_intq_decode computes them (fp32, or
 * int8 with the q8 head). For tests (allocate their scratch). */
int llm_intq_embed(const llm_intq *iq, const int32_t *tokens, int n, float *x);
int llm_intq_head_forward(const llm_intq *iq, const float *h, int N, float *logits);

/* Observer of every quantizer's input during llm_intq_decode, in computation order (layer
 * by layer: the QKV site's input, K/V, O, UP, DOWN (after R4)): what is the site
 * (LLM_SITE_QKV..DOWN, rows = tokens) or LLM_INTQ_TAP_KV (rows = token x [k heads | v heads],
 * cols = head_dim, after RoPE and R3); only when the quantizer is on. A non-zero return
 * aborts the decode with that status. For tests (tests/test_intq.c counts rounding-boundary
 * flips against the fake-quant path with it). */
#define LLM_INTQ_TAP_KV 16
/* ... and the LM head's input: what = LLM_INTQ_TAP_HEAD, layer = n_layer, rows = the tokens
 * whose logits are written, cols = d (the final norm's output), whatever the head's storage. */
#define LLM_INTQ_TAP_HEAD 17
typedef int (*llm_intq_tap_fn)(void *ctx, int what, int layer, const float *x, int rows, int cols);
void llm_intq_set_tap(llm_intq *iq, llm_intq_tap_fn fn, void *ctx); /* fn NULL: off */

/* Save to path (written to path.tmp, then renamed) / load, checking every length. */
int llm_intq_save(const llm_intq *iq, const char *path);
int llm_intq_load(llm_intq **out, const char *path);
/* The same model as a safetensors file users can load (numpy, torch): named tensors (packed
 * U8 rows, F32 scales, I32 zero points and code sums, F32 norms and biases, the rotations'
 * signs, the int8 head when there is one) and "__metadata__" {"format": "rostesim-int", ...};
 * the layout is in docs/int-format.md. llm_intq_load reads either file. */
int llm_intq_save_safetensors(const llm_intq *iq, const char *path);

/* KV cache and scratch for up to max_T positions (1..max_pos). */
int llm_intq_kv_alloc(llm_intq_kv **kv, const llm_intq *iq, int max_T);
void llm_intq_kv_free(llm_intq_kv *kv); /* NULL is a no-op */
void llm_intq_kv_reset(llm_intq_kv *kv);
int llm_intq_kv_len(const llm_intq_kv *kv);
size_t llm_intq_kv_bytes(const llm_intq_kv *kv); /* the cache itself (packed codes, scales, zeros) */

/* Where the time goes: with profiling on, llm_intq_decode adds the seconds of each phase
 * (LLM_INTQ_PH_*) into the cache's counters (zeroed by llm_intq_kv_profile). */
enum {
    LLM_INTQ_PH_ACTQ = 0, /* activation quantization and code conversion */
    LLM_INTQ_PH_GEMM,     /* the integer GEMM */
    LLM_INTQ_PH_EPI,      /* zero-point corrections, scales, bias */
    LLM_INTQ_PH_KV,       /* K/V quantization, packing, dequantization */
    LLM_INTQ_PH_ATTN,     /* attention */
    LLM_INTQ_PH_ROT,      /* online rotations (R3, R4) */
    LLM_INTQ_PH_HEAD,     /* the LM head (fp32 sgemm, or int8: quantize, GEMM, scale) */
    LLM_INTQ_PH_OTHER,    /* embedding, norms, RoPE, activation function, residuals, R1 */
    LLM_INTQ_NPHASE
};
void llm_intq_kv_profile(llm_intq_kv *kv, int on);
const double *llm_intq_kv_phases(const llm_intq_kv *kv); /* LLM_INTQ_NPHASE seconds */
const char *llm_intq_phase_name(int ph);

/* Append n tokens (n >= 1, len + n <= max_T) and write logits: of every new token (n, V)
 * when all, else of the last (V). As llm_model_decode, up to the bound above. */
int llm_intq_decode(llm_intq *iq, llm_intq_kv *kv, const int32_t *tokens, int n, float *logits, int all);

/* llm_generate (llm/nn/sample.h) on the integer model. */
int llm_intq_generate(llm_intq *iq, const int32_t *prompt, int n, int max_new, int eos_id, const llm_sample_opts *o,
                      rs_rng *rng, int32_t *out, int *nout, llm_token_cb cb, void *ctx);

/* llm_eval_loss (llm/train/train.h) on the integer model: each row alone (no padding). */
int llm_intq_eval_loss(llm_intq *iq, const llm_dataset *ds, double *loss, size_t *ntok);

#endif
