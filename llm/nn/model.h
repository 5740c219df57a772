/* rostesim LLM: the transformer (GPT-NeoX, Llama, Qwen2) in fp32, forward and backward.
 *
 * Parameters, gradients and activations each live in ONE allocation with named views
 * (llm_weights for parameters and gradients, llm_acts for activations). The HF tensors
 * are re-laid out at load and back at save:
 *   - q/k/v become one fused matrix qkv_w (QKV, C) with rows [q heads | k heads | v heads]
 *     (GPT-NeoX's query_key_value, stored per head as [q_h; k_h; v_h], is permuted into it);
 *   - Llama/Qwen2 gate_proj and up_proj become one up_w (2F, C) with rows [gate | up].
 * The tied LM head is the embedding matrix (lm_head == wte, one gradient).
 *
 * Dimension letters as in kernels.h. */
#ifndef RS_LLM_MODEL_H
#define RS_LLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "llm/io/config.h"

typedef struct rs_rng rs_rng;
struct llm_model;
struct llm_qat;

/* The linear sites of a block, in model order; LLM_SITE_HEAD (the LM head) is never hooked. */
typedef enum { LLM_SITE_QKV = 0, LLM_SITE_O = 1, LLM_SITE_UP = 2, LLM_SITE_DOWN = 3, LLM_SITE_HEAD = 4 } llm_site;
#define LLM_NSITES 4
const char *llm_site_name(int site); /* "qkv", "o", "up", "down", "head" */

/* The hooks at the model's quantizable sites. The model knows nothing of what they do: when
 * llm_model.qat is set, the forward and backward pass call these in place of the plain
 * operation at every linear site of a block, on the fresh q/k/v (the K/V cache's input), on
 * the final norm's input, and ask which norm the blocks use. llm/quantize/qat.c fills them
 * in (fake quantizers, online rotations, straight-through gradients) when it attaches its
 * state as llm_model.qat; every function gets that state first. */
typedef struct {
    /* room for N tokens (called at the start of a forward) */
    int (*reserve)(struct llm_qat *q, const struct llm_model *m, int N);
    /* out (N,OC) = inp (N,IC) . w (OC,IC)^T + b, and its backward (dinp, dw, db +=) */
    int (*linear_forward)(struct llm_qat *q, int site, int layer, float *out, const float *inp, const float *w,
                          const float *b, int N, int IC, int OC);
    int (*linear_backward)(struct llm_qat *q, int site, int layer, float *dinp, float *dw, float *db,
                           const float *dout, const float *inp, const float *w, int N, int IC, int OC);
    /* in place on the fused qkv rows (N, QKV) of a layer after RoPE, and its backward */
    int (*qkv_forward)(struct llm_qat *q, const struct llm_model *m, int layer, float *qkv, int N);
    int (*qkv_backward)(struct llm_qat *q, const struct llm_model *m, int layer, float *dqkv, int N);
    /* the final norm's input (N,C): x itself or a transformed copy (NULL: out of memory), and
     * the backward of that transform, in place */
    const float *(*final_in)(struct llm_qat *q, const float *x, int N, int C);
    int (*final_backward)(struct llm_qat *q, float *dx, int N, int C);
    /* non-zero: a GPT-NeoX block's LayerNorms act as RMSNorms (their mean was folded away) */
    int (*rms_norm)(const struct llm_qat *q);
    void (*free)(struct llm_qat *q);
} llm_site_hooks;

typedef struct {
    float *ln1_w, *ln1_b;   /* (C), (C) or NULL (RMSNorm)  input_layernorm */
    float *qkv_w, *qkv_b;   /* (QKV, C), (QKV) or NULL */
    float *o_w, *o_b;       /* (C, NH*HS), (C) or NULL */
    float *ln2_w, *ln2_b;   /* (C), (C) or NULL  post_attention_layernorm */
    float *up_w, *up_b;     /* (F, C) GeLU MLP or (2F, C) [gate; up] SwiGLU; bias or NULL */
    float *down_w, *down_b; /* (C, F), (C) or NULL */
} llm_layer;

typedef struct {
    float *wte;             /* (V, C) embed_in / embed_tokens */
    llm_layer *layers;      /* n_layer */
    float *lnf_w, *lnf_b;   /* (C), (C) or NULL  final norm */
    float *lm_head;         /* (V, C); == wte when tied */
} llm_weights;

/* One named parameter tensor: a view into the single parameter allocation. */
typedef struct {
    char name[64];          /* internal name, e.g. "layers.3.qkv_w" */
    int ndim;               /* 1 or 2 */
    int shape[2];
    size_t offset, numel;   /* in floats, into params / grads */
} llm_param;

typedef struct llm_model {
    llm_config cfg;
    size_t nparams;         /* floats in params */
    float *params;          /* one allocation */
    float *grads;           /* one allocation, NULL until the first backward (or llm_model_alloc_grads) */
    llm_weights w, g;       /* views into params and grads */
    llm_param *tab;         /* ntab named views, in a fixed order */
    size_t ntab;

    /* rotary tables for max_pos positions */
    float *rope_cos, *rope_sin;

    /* activations for the last forward, sized for (B, T) by llm_model_reserve */
    int B, T, cap_B, cap_T;
    float *acts; size_t nacts;
    float *dacts; size_t ndacts;
    float *logits;          /* (B, T, V) view into acts after forward */
    int have_targets;       /* last forward had targets: backward allowed */
    void *priv;             /* internal activation views */
    struct llm_qat *qat;    /* the state behind `hooks` (fake quantizers and online rotations,
                             * llm/quantize/qat.h); NULL = full precision. Owned: llm_model_free
                             * frees it with hooks->free. llm_qat_load_model attaches it when the
                             * folder has rostesim_qat.json (written by llm_qat_save). */
    const llm_site_hooks *hooks; /* set together with qat */
    /* Optional observer of each quantized linear site's input (N,IC), before online rotations
     * and quantizers, called by the forward (llm/quantize/ptq.c builds GPTQ's Hessians with it);
     * a non-zero return aborts the forward with that status (LLM_TAP_STOP: the observer has
     * what it needs; the forward's outputs are then undefined). NULL = none. */
    int (*tap)(void *ctx, int site, int layer, const float *inp, int N, int IC);
    void *tap_ctx;
} llm_model;

/* A tap's "stop here" (not an error: no message is set). */
#define LLM_TAP_STOP (-1)

/* Load a HF checkpoint folder: config.json + model.safetensors or sharded. Shapes are
 * checked against the config (error names tensor, file and both shapes); missing tensors
 * are errors; extra tensors that are derived buffers (e.g. rotary inv_freq, attention
 * masks) are ignored, any other unused tensor is an error naming it. */
int llm_model_load(llm_model **m, const char *dir);
/* (A folder written after QAT or PTQ also holds rostesim_qat.json: llm_qat_load_model in
 * llm/quantize/qat.h loads both.) */

/* A model with this config and random weights: normal(0, 0.02) for matrices, as HF's
 * init_weights (std = initializer_range), ones for norm weights, zeros for biases. */
int llm_model_init_random(llm_model **m, const llm_config *c, rs_rng *rng);

/* Save in HF layout: dir/config.json and dir/model.safetensors (F32), each written to a
 * temporary name and renamed. The folder is created if missing. Tokenizer files are the
 * caller's (see llm_copy_tokenizer_files). */
int llm_model_save(const llm_model *m, const char *dir);

/* Copy tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.json,
 * merges.txt, generation_config.json from src to dst where present. */
int llm_copy_tokenizer_files(const char *src_dir, const char *dst_dir);

void llm_model_free(llm_model *m); /* NULL is a no-op */

/* Read this model's tensors, under their HF names with `prefix` prepended (e.g. "grad."
 * for reference gradients), from s into dst: a buffer of m->nparams floats in the layout
 * of m->params (so dst = m->params is what llm_model_load does). Shapes are checked as at
 * load; a tied model's head is not read (its values are the embedding's). */
typedef struct st_set st_set;
int llm_model_read_hf(const llm_model *m, const st_set *s, const char *prefix, float *dst);

/* Make room for batches up to (B, T) (T <= max_pos); forward calls it as needed. */
int llm_model_reserve(llm_model *m, int B, int T);
int llm_model_alloc_grads(llm_model *m);

/* Forward over tokens (B,T). With targets (B,T; < 0 = ignored) also the mean loss over
 * non-ignored positions in *loss and the count in *ntok (either may be NULL; the loss is 0
 * when no position counts). Tokens outside 0..V-1 and targets >= V are RS_EINVAL.
 * Logits (B,T,V) are in m->logits afterwards (until backward overwrites them). */
int llm_model_forward(llm_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                      float *loss, int *ntok);

/* The forward one block at a time, for layer-wise passes over calibration data (GPTQ): the
 * embedding of tokens (N) into x (N, d); and block l on the hidden states x (B, T, d) that
 * enter it, its output into y (may be NULL; y may be x), with the same code and order of
 * operations as llm_model_forward (so chaining blocks 0..l gives its hidden states bit for
 * bit). Taps are called as in the forward (LLM_TAP_STOP returned as is). Overwrites the
 * forward's activations: no backward after it. */
int llm_model_embed(const llm_model *m, const int32_t *tokens, int N, float *x);
int llm_model_block_forward(llm_model *m, int l, const float *x, float *y, int B, int T);

/* Backward of the last forward (which must have had targets). Every position's loss
 * term is weighted by `scale`: scale = 1/ntok gives the gradient of the mean loss; a
 * trainer accumulating micro-batches passes 1/(tokens in the whole step).
 * Gradients ACCUMULATE into m->grads; call llm_model_zero_grad between steps. */
int llm_model_backward(llm_model *m, float scale);
void llm_model_zero_grad(llm_model *m);

/* Inference with a KV cache (generation). */
typedef struct llm_kv llm_kv;
int llm_kv_alloc(llm_kv **kv, const llm_model *m, int max_T);
void llm_kv_free(llm_kv *kv);
void llm_kv_reset(llm_kv *kv);
int llm_kv_len(const llm_kv *kv);
/* Causal attention of n new queries (positions len..len+n-1, q inside qkv (n, (NH+2NKV)*HS))
 * over the cached keys/values K, V (len+n, NKV*HS) of one layer; out (n, NH*HS); scores
 * (NH, len+n) scratch. The decode path's attention, shared by the int backend (llm/quantize/intq.c). */
void llm_decode_attention(float *out, float *scores, const float *qkv, const float *K, const float *Vc, int len, int n,
                          int NH, int NKV, int HS);
/* The same attention for a block of queries (a prompt) with its products as sgemm, head by
 * head: S = Q_h K_h^T / sqrt(HS) (n, len+n), the causal mask and a row softmax in place,
 * then out_h = S V_h; S is scratch of n * (len+n) floats. The numbers of llm_decode_attention
 * up to the rounding of the sums (another order; the scale applied inside the product), not
 * bit for bit: used by the int backend's prefill only, whose numbers are bounded, not equal. */
void llm_block_attention(float *out, float *S, const float *qkv, const float *K, const float *Vc, int len, int n, int NH,
                         int NKV, int HS);
/* Append n tokens at positions len..len+n-1 (n >= 1, len + n <= max_T) and write the
 * logits (V) of the last of them. Same numbers as llm_model_forward up to rounding. */
int llm_model_decode(llm_model *m, llm_kv *kv, const int32_t *tokens, int n, float *logits);
/* One new token for each of nb sequences, each at its own length in its own cache kv[b]
 * (kv[b] appended: len + 1 <= max_T), the matrix products of the nb rows as one product
 * (every weight read once per step, not once per sequence): logits (nb, V). work is a cache
 * with max_T >= nb whose scratch the step uses (its K/V stay untouched); the kv[b] must be
 * distinct. The numbers of llm_model_decode of each sequence alone up to the rounding of the
 * products (a row's result may depend on the other rows in the BLAS kernel). */
int llm_model_decode_batch(llm_model *m, llm_kv *work, llm_kv *const *kv, int nb, const int32_t *tokens,
                           float *logits);

#endif
