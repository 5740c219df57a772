/* rostesim LLM: model configuration, read from (and written as) Hugging Face config.json.
 *
 * One struct covers the three supported families. The loader maps each family's field
 * names onto it (e.g. GPT-NeoX "rotary_pct"/"rotary_emb_base", Llama "rope_theta",
 * newer transformers "rope_parameters"/"partial_rotary_factor") and rejects what the
 * engine does not implement with an error naming the field and its value. */
#ifndef RS_LLM_CONFIG_H
#define RS_LLM_CONFIG_H

#include <stddef.h>

typedef enum { LLM_GPT_NEOX = 0, LLM_LLAMA = 1, LLM_QWEN2 = 2 } llm_arch;

typedef enum { LLM_ACT_GELU = 0, LLM_ACT_GELU_TANH = 1, LLM_ACT_SILU = 2 } llm_act;

typedef enum { LLM_ROPE_DEFAULT = 0, LLM_ROPE_LLAMA3 = 1 } llm_rope_type;

typedef struct {
    llm_arch arch;
    int vocab;        /* vocab_size (rows of the embedding and LM head) */
    int d;            /* hidden_size */
    int n_layer;      /* num_hidden_layers */
    int n_head;       /* num_attention_heads */
    int n_kv_head;    /* num_key_value_heads (= n_head for GPT-NeoX) */
    int head_dim;     /* hidden_size / num_attention_heads, or "head_dim" when given */
    int d_ff;         /* intermediate_size */
    int max_pos;      /* max_position_embeddings */
    double norm_eps;  /* layer_norm_eps (NeoX) or rms_norm_eps (Llama, Qwen2) */
    llm_act act;      /* hidden_act: "gelu" (erf), "gelu_new"/"gelu_pytorch_tanh"/"gelu_fast", "silu" */

    /* rotary position embedding, rotate-half convention as in HF */
    double rope_theta; /* rotary_emb_base / rope_theta */
    int rot_dim;       /* rotated dims per head: head_dim * rotary_pct, even; = head_dim for Llama/Qwen2 */
    llm_rope_type rope_type;
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor; /* Llama-3 rope_scaling */
    int rope_orig_max_pos;                                            /* original_max_position_embeddings */

    int parallel_residual; /* GPT-NeoX use_parallel_residual */
    int tied;              /* tie_word_embeddings: LM head shares the embedding matrix */

    /* which linear layers carry biases; norms: LayerNorm has a bias, RMSNorm has none */
    int qkv_bias;  /* NeoX: attention_bias (default true); Qwen2: true; Llama: attention_bias */
    int o_bias;    /* NeoX: attention_bias; Llama: attention_bias; Qwen2: false */
    int mlp_bias;  /* NeoX: true; Llama: mlp_bias; Qwen2: false */

    int bos_id, eos_id, pad_id; /* -1 when absent */
    char torch_dtype[16];       /* as read ("float32", "bfloat16", ...); saved as "float32" */
} llm_config;

/* Parse config.json text. `name` (the file path) prefixes every error message.
 * Returns RS_OK, RS_EINVAL (malformed JSON, missing/invalid field) or RS_ENOTSUP
 * (unknown model_type or an option the engine does not implement). */
int llm_config_parse(llm_config *c, const char *json, size_t len, const char *name);

/* Read and parse a config.json file (RS_EIO if it cannot be read). */
int llm_config_load(llm_config *c, const char *path);

/* Check internal consistency (positive sizes, head_dim * n_head, n_head % n_kv_head,
 * rot_dim even and <= head_dim, ...). Called by parse; useful for configs built in code. */
int llm_config_check(const llm_config *c);

/* Write an HF-compatible config.json (torch_dtype "float32") that transformers loads
 * into the same architecture. Written to a temporary name and renamed. */
int llm_config_save(const llm_config *c, const char *path);

/* Number of parameters of the model this config describes (tied head counted once). */
size_t llm_config_nparams(const llm_config *c);

const char *llm_arch_name(llm_arch a); /* "gpt_neox", "llama", "qwen2" */

#endif
