/* rostesim LLM: layer kernels, llm.c style.
 *
 * Each layer is a pair <layer>_forward / <layer>_backward: outputs first, then saved
 * activations, then inputs and weights, then dimensions. Backward functions ACCUMULATE
 * (+=) into every gradient they write (dinp, dw, db), except where a comment says
 * "overwrites". Every fast kernel has a naive twin with the suffix _ref (kernels_ref.c)
 * with the same signature and meaning; tests compare them on random data and check
 * every backward against finite differences.
 *
 * Matrix products go through OpenBLAS cblas_sgemm; the other loops use OpenMP.
 * Reductions over rows (dw, db) are split over columns, never with atomics or
 * omp reduction, so results do not depend on the thread schedule (bit-identical
 * reruns with the same thread count). Kernels never allocate.
 *
 * Dimension letters:
 *   N   rows (tokens) = B*T          C   model width (hidden_size)
 *   B   batch    T   sequence length
 *   OC  output channels of a linear layer
 *   NH  query heads   NKV  key/value heads (NH % NKV == 0)   HS  head size
 *   QKV = (NH + 2*NKV) * HS: a fused qkv row is [q head 0..NH-1 | k heads | v heads]
 *   F   MLP width (intermediate_size)   V   vocabulary size
 * Weights use the PyTorch/HF layout (out_features, in_features). */
#ifndef RS_LLM_KERNELS_H
#define RS_LLM_KERNELS_H

#include <stdint.h>

/* --- embedding: out (N,C) = wte[tokens] ; wte is (V,C) ---------------------------------- */
void lk_embedding_forward(float *out, const int32_t *tokens, const float *wte, int N, int C);
void lk_embedding_backward(float *dwte, const float *dout, const int32_t *tokens, int N, int C, int V);

/* --- linear: out (N,OC) = inp (N,C) · w (OC,C)^T + bias (OC, may be NULL) ------------------ */
void lk_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);
/* dinp (N,C) += dout·w ; dw (OC,C) += dout^T·inp ; dbias (OC) += column sums of dout.
 * Any of dinp, dw, dbias may be NULL (not wanted). */
void lk_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                        const float *w, int N, int C, int OC);

/* --- LayerNorm (biased variance, as torch): mean, rstd are (N) saved for backward -------- */
void lk_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int C, float eps);
void lk_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const float *mean, const float *rstd, int N, int C);

/* --- RMSNorm (HF Llama: x * rsqrt(mean(x^2) + eps) * w): rstd (N) saved ------------------ */
void lk_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps);
void lk_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                         const float *rstd, int N, int C);

/* --- rotary position embedding, HF rotate-half convention, in place ---------------------
 * inv_freq (rot_dim/2) in double: inv_freq[i] = theta^(-2i/rot_dim), with Llama-3 scaling
 * when rope_type == 1 (factor, low_freq_factor, high_freq_factor, original max positions).
 * cos/sin tables are (maxT, rot_dim/2): cos[t*half + i] = cos(t * inv_freq[i]).
 * x holds B*T tokens, token (b,t) at x + (b*T + t)*stride, H heads of HS floats each;
 * the first rot_dim dims of every head are rotated, the rest pass through.
 * Position of token t is pos0 + t. Backward applies the transpose rotation to dx in place. */
void lk_rope_inv_freq(double *inv_freq, int rot_dim, double theta, int rope_type, double factor,
                      double low_freq_factor, double high_freq_factor, int orig_max_pos);
void lk_rope_table(float *cos_t, float *sin_t, const double *inv_freq, int maxT, int rot_dim);
void lk_rope_forward(float *x, int stride, const float *cos_t, const float *sin_t, int B, int T, int H,
                     int HS, int rot_dim, int pos0);
void lk_rope_backward(float *dx, int stride, const float *cos_t, const float *sin_t, int B, int T, int H,
                      int HS, int rot_dim, int pos0);

/* --- causal self-attention with grouped-query heads --------------------------------------
 * qkv (B,T,QKV) (RoPE already applied to q and k); out (B,T,NH*HS);
 * att (B,NH,T,T) saved softmax probabilities (zero above the diagonal); scale 1/sqrt(HS).
 * Query head h reads key/value head h / (NH/NKV). */
void lk_attention_forward(float *out, float *att, const float *qkv, int B, int T, int NH, int NKV, int HS);
/* dqkv (B,T,QKV) += ; datt (B,NH,T,T) is scratch (overwritten). */
void lk_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                           int B, int T, int NH, int NKV, int HS);

/* --- activations (n elements) ------------------------------------------------------------ */
void lk_gelu_forward(float *out, const float *inp, long n);      /* exact: x/2 (1 + erf(x/sqrt2)) */
void lk_gelu_backward(float *dinp, const float *inp, const float *dout, long n);
void lk_gelu_tanh_forward(float *out, const float *inp, long n); /* tanh approximation (gelu_new) */
void lk_gelu_tanh_backward(float *dinp, const float *inp, const float *dout, long n);
/* SwiGLU: inp (N,2F) rows [gate | up]; out (N,F) = silu(gate) * up. */
void lk_swiglu_forward(float *out, const float *inp, int N, int F);
void lk_swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int F);

/* --- elementwise ------------------------------------------------------------------------ */
void lk_add(float *out, const float *a, const float *b, long n);   /* out = a + b (out may alias) */
void lk_accumulate(float *acc, const float *x, long n);            /* acc += x */

/* --- cross-entropy over logits (N,V), targets (N) with t < 0 meaning "ignore" ----------
 * Forward: losses[i] = logsumexp(logits_i) - logits_i[t_i] (0 where ignored), lse (N) saved.
 * Returns the number of non-ignored rows. Target >= V is the caller's bug (checked by data). */
int lk_xent_forward(float *losses, float *lse, const float *logits, const int32_t *targets, int N, int V);
/* Overwrites dlogits (N,V) = scale * (softmax(logits) - onehot(t)), zero rows where ignored.
 * dlogits may alias logits (the usual case: the logits buffer becomes its gradient). */
void lk_xent_backward(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                      float scale, int N, int V);

/* --- naive reference twins ------------------------------------------------------------- */
void lk_embedding_forward_ref(float *out, const int32_t *tokens, const float *wte, int N, int C);
void lk_embedding_backward_ref(float *dwte, const float *dout, const int32_t *tokens, int N, int C, int V);
void lk_matmul_forward_ref(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);
void lk_matmul_backward_ref(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                            const float *w, int N, int C, int OC);
void lk_layernorm_forward_ref(float *out, float *mean, float *rstd, const float *inp, const float *w,
                              const float *b, int N, int C, float eps);
void lk_layernorm_backward_ref(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                               const float *w, const float *mean, const float *rstd, int N, int C);
void lk_rmsnorm_forward_ref(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps);
void lk_rmsnorm_backward_ref(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                             const float *rstd, int N, int C);
void lk_rope_forward_ref(float *x, int stride, const float *cos_t, const float *sin_t, int B, int T, int H,
                         int HS, int rot_dim, int pos0);
void lk_rope_backward_ref(float *dx, int stride, const float *cos_t, const float *sin_t, int B, int T, int H,
                          int HS, int rot_dim, int pos0);
void lk_attention_forward_ref(float *out, float *att, const float *qkv, int B, int T, int NH, int NKV, int HS);
void lk_attention_backward_ref(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                               int B, int T, int NH, int NKV, int HS);
void lk_gelu_forward_ref(float *out, const float *inp, long n);
void lk_gelu_backward_ref(float *dinp, const float *inp, const float *dout, long n);
void lk_gelu_tanh_forward_ref(float *out, const float *inp, long n);
void lk_gelu_tanh_backward_ref(float *dinp, const float *inp, const float *dout, long n);
void lk_swiglu_forward_ref(float *out, const float *inp, int N, int F);
void lk_swiglu_backward_ref(float *dinp, const float *inp, const float *dout, int N, int F);
int lk_xent_forward_ref(float *losses, float *lse, const float *logits, const int32_t *targets, int N, int V);
void lk_xent_backward_ref(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                          float scale, int N, int V);

#endif
