/* rostesim LLM: quantization-aware training state (ROSTE.md §2-3): fake quantizers at the
 * linear sites and the K/V cache, straight-through gradients, online rotations (R3, R4).
 *
 * A model carries an optional llm_qat (m->qat, NULL = full precision). With it:
 *   - every linear layer of attention and MLP (sites QKV, O, UP, DOWN; the LM head is
 *     never quantized) computes  out = Q_a(x [R4]) · Q_w(W)^T + b  with
 *       Q_w per output channel (a row of W, HF layout (out, in)),
 *       Q_a per token (a row of x); q/k/v read one input, quantized once (fused rows);
 *   - K and V are quantized per token per head (group = head_dim) after RoPE and after
 *     R3, in training, evaluation and the KV-cache decode alike;
 *   - scales are recomputed from the current tensor at every forward;
 *   - the forward keeps, for the backward of the same step, Q_w(W) of every site (one extra
 *     copy of the linear weights) and the rotated input x R4 of the down projections
 *     (N x d_ff per layer); the backward computes the down projection's input gradient
 *     as dout (Q_w(W) R4^T) (R4 on the d rows of the weight instead of the N rows of the
 *     gradient) unless the clipped STE needs the mask between the two products;
 *     fast = 0 recomputes everything in the backward (the reference path, for tests);
 *   - backward: the quantizer's Jacobian is the identity (STE) or, with QZ_STE_CLIPPED,
 *     the clamp mask, for weights and activations. The K/V quantizers always use the
 *     identity STE (their pre-quantization values are not kept).
 * bits >= 16 skips a quantizer entirely (outputs bit-identical to the unquantized model).
 *
 * Online rotations (set up by llm/quantize/rotate.h, here only applied):
 *   r3 (head_dim): q and k after RoPE, x <- x R3 per head, in the layers with r3_on;
 *   r4 (d_ff): the down projection's input, x <- x R4, in the layers with r4_on (the
 *       weight side W_down R4 is merged into the weights by llm/quantize/rotate.c);
 *   r2 (head_dim), when online (llm_rotate with rc->r2_online, the authors' training): the
 *       stored W_v, b_v and W_o stay in the original basis; the QKV and O sites of the
 *       layers with r2_on compute with the merged form's weights, rotated on the fly
 *       before Q_w: R2^T W_v per kv head (bias b_v R2) and W_o R2 per head, so the
 *       quantizers see exactly the tensors of the merged form (the V cache and O's input
 *       in the rotated basis, Q_w of the rotated weights) and the forward agrees with the
 *       merged model to float rounding; the backward takes the gradient of the rotated
 *       weight back to the stored basis (R2 dW_v, dW_o R2^T, db_v R2^T), so only the
 *       optimizer (AdamW is not rotation-equivariant) sees a different problem;
 *   r1 (d_model, GPT-NeoX only): the final LayerNorm reads x R1^T (the residual stream is
 *       rotated, the final LayerNorm's mean subtraction and bias are kept exact this way:
 *       the model has no LM-head bias to fold them into);
 *   rms_norm: ln1/ln2 of GPT-NeoX are RMSNorm after folding (mean absorbed).
 *
 * Error statistics (for the rotation search and the diagnostics) are accumulated while
 * `collect` is set: per layer and site the squared weight and input quantization errors,
 * the inputs' dynamic range, and the K/V cache errors. */
#ifndef RS_LLM_QAT_H
#define RS_LLM_QAT_H

#include <stddef.h>

#include "llm/nn/model.h"
#include "quant/quant.h"
#include "quant/rotation.h"

/* The quantized sites are the model's (llm_site, llm/nn/model.h); LLM_SITE_HEAD is never
 * quantized. */

typedef struct {
    int wbits, abits, kvbits;       /* 16 (or more) = off */
    double wclip, aclip, kvclip;    /* clipping factors in (0, 1] */
    qz_scheme scheme;               /* QZ_ASYM by default (all three) */
    qz_clipmode clipmode;           /* QZ_CLIP_CODE by default */
    qz_ste ste;                     /* QZ_STE_IDENTITY by default */
} llm_qat_opts;

void llm_qat_opts_default(llm_qat_opts *o); /* W4A4KV4 asym, clip 1, code clipping, identity STE */
int llm_qat_opts_check(const llm_qat_opts *o); /* RS_EINVAL naming the bad field */

/* Per-layer error statistics (sums in double). */
typedef struct {
    double w_err[LLM_NSITES];  /* sum ||Q_w(W) - W||^2 (weights counted once per reset) */
    double w_n[LLM_NSITES];    /* elements */
    double a_err[LLM_NSITES];  /* sum over tokens ||Q_a(x) - x||^2 */
    double a_n[LLM_NSITES];    /* elements */
    double a_range[LLM_NSITES];/* sum over tokens of (max x - min x) */
    double a_tok[LLM_NSITES];  /* tokens */
    double k_err, v_err, kv_n; /* K and V cache: squared errors, elements of each */
    int w_seen[LLM_NSITES];
} llm_qat_stats;

typedef struct llm_qat {
    llm_qat_opts o;
    qz_spec w, a, kv;               /* derived from o: per row (weights: out channel; acts: token; kv: head) */
    int n_layer;
    /* online rotations (NULL = none), owned */
    rot *r1, *r3, *r4;
    rot *r2;                        /* merged into W_v / W_o, or online in the layers with r2_on */
    unsigned char *r2_on, *r3_on, *r4_on; /* n_layer flags (r2_on: R2 online, weights unrotated) */
    int r2_trained_online;          /* R2 was applied online in training ("r2_mode" of the saved file) */
    int n_head, n_kv_head, head_dim, d; /* the model's sizes (R2 on the weights) */
    int rms_norm;
    /* statistics */
    int collect;                    /* accumulate into stats while set */
    llm_qat_stats *stats;           /* n_layer */
    int chan_layer;                 /* >= 0: record per-channel max |input| of this layer */
    float *chan_max[LLM_NSITES];    /* (input width) each, after online rotations */
    size_t chan_w[LLM_NSITES];
    /* workspace, grown by llm_qat_reserve */
    size_t capN;
    float *xa, *xq, *dx, *wq, *dw, *fin, *wr;
    size_t n_wr;
    double *part;
    float *rws;                     /* rotation scratch (rot_apply_rows_f32_ws), grown on use */
    float *weff, *dwr, *r2t, *beff, *dbeff; /* online R2: rotated weight, its gradient, V-rows
                                     * transpose, rotated bias and its gradient (llm_qat_r2_reserve) */
    size_t rws_len;
    /* forward -> backward caches (fast = 1, the default) */
    int fast;
    int frozen;                     /* the weights no longer change (inference: llm_qat_freeze):
                                     * a forward takes Q_w(W) from the cache too */
    float **wc;                     /* n_layer * LLM_NSITES: Q_w(W) */
    size_t *wc_cap;
    const float **wc_src;           /* the weights each was computed from (NULL = none) */
    float **x4;                     /* n_layer: x R4 of the down projection */
    size_t *x4_cap;
    const float **x4_src;           /* the input it was computed from */
    int *x4_n;                      /* and its token count */
} llm_qat;

/* A QAT state for model m with these quantizers and no rotations; attaches it (m->qat, with
 * the site hooks that call the functions below; replacing and freeing any previous one). */
int llm_qat_attach(llm_model *m, const llm_qat_opts *o);
void llm_qat_free(llm_qat *q); /* NULL is a no-op */
/* Workspace for N tokens of model m (forward and decode call it; grows only). */
int llm_qat_reserve(llm_qat *q, const llm_model *m, int N);

/* For inference: the weights of m no longer change, so every forward after the first takes
 * Q_w(W) (with an online R2, of the rotated form) of each site from the cache instead of
 * quantizing the weights again (the same values, bit for bit: the same computation, done
 * once). Costs one copy of the linear weights. Call it again after changing the weights
 * (it drops the cache). No-op without quantizers. */
void llm_qat_freeze(llm_model *m);

/* Workspace of the online R2 (llm_rotate calls it when rc->r2_online). */
int llm_qat_r2_reserve(llm_qat *q);

void llm_qat_stats_reset(llm_qat *q);
/* Per-channel max |input| recording for one layer (-1: off); buffers allocated here. */
int llm_qat_track_channels(llm_qat *q, const llm_model *m, int layer);

/* ---- saved configuration ----------------------------------------------------------------
 * dir/rostesim_qat.json: {"format": "rostesim-qat", "version": 1, "method": "ste"|"roste",
 *  "quant": {"wbits", "abits", "kvbits", "wclip", "aclip", "kvclip", "scheme", "clip_mode",
 *  "ste"}, "rotation": <rotation-config JSON of llm/quantize/rotate.h> or null,
 *  "r2_mode": "online"|"merged" (with a rotation: how R2 was applied in training; optional)}
 * The weights saved beside it hold R1, R2 and W_down R4 merged (an online R2 must be
 * merged first, llm_rotate_merge_r2: saving refuses otherwise); loading attaches the
 * quantizers and the online rotations (llm_qat_load_model does it when the file exists). */
#define LLM_QAT_FILE "rostesim_qat.json"
struct llm_rot_config;
int llm_qat_save(const llm_model *m, const struct llm_rot_config *rc, const char *method, const char *dir);
/* No file: RS_OK and nothing attached. */
int llm_qat_load(llm_model *m, const char *dir);
/* llm_model_load, then llm_qat_load: a folder saved by any command (plain, QAT or PTQ). */
int llm_qat_load_model(llm_model **m, const char *dir);

/* ---- the site hooks (llm_site_hooks of llm/nn/model.h) that llm_qat_attach installs ------ */
/* out (N,OC) = Q_a(inp R?) · Q_w(w)^T + b */
int llm_qat_linear_forward(llm_qat *q, int site, int layer, float *out, const float *inp, const float *w,
                           const float *b, int N, int IC, int OC);
/* dinp (N,IC) +=, dw (OC,IC) +=, db (OC) += through the STE */
int llm_qat_linear_backward(llm_qat *q, int site, int layer, float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, int N, int IC, int OC);
/* In place on qkv (N tokens, rows of QKV floats): R3 on q and k, then Q_kv on k and v. */
int llm_qat_qkv_forward(llm_qat *q, const llm_model *m, int layer, float *qkv, int N);
/* In place on dqkv: R3^T on dq and dk (the K/V quantizers pass gradients through). */
int llm_qat_qkv_backward(llm_qat *q, const llm_model *m, int layer, float *dqkv, int N);
/* GPT-NeoX with R1: returns x R1^T (N,C) in a workspace buffer (or x itself without r1). */
const float *llm_qat_final_in(llm_qat *q, const float *x, int N, int C);
/* dx (N,C) <- dx R1 in place (the backward of llm_qat_final_in). */
int llm_qat_final_backward(llm_qat *q, float *dx, int N, int C);

#endif
