/* rostesim LLM: importing a llama-architecture GGUF file (llama.cpp) as a Hugging Face
 * checkpoint folder that llm_model_load, transformers and tokenizers load.
 *
 * Metadata -> config: llama.block_count, embedding_length, feed_forward_length,
 * attention.head_count(_kv), attention.key_length (head_dim), rope.freq_base,
 * rope.dimension_count (must be head_dim), attention.layer_norm_rms_epsilon,
 * context_length; rope scaling other than "none" and rope_freqs.weight (Llama-3 factors)
 * are RS_ENOTSUP. The LM head is tied when output.weight is absent.
 *
 * Tensors -> HF names (token_embd -> model.embed_tokens, blk.N.attn_q -> ...q_proj, ...),
 * dequantized to f32. llama.cpp's converter permutes the rows of attn_q and attn_k of every
 * head from HF's rotate-half order [x0..x(h/2-1) | x(h/2)..] to interleaved pairs
 * (x0, x(h/2)), (x1, x(h/2+1)), ...: the importer undoes it. Any tensor it does not map
 * is an error naming it.
 *
 * Tokenizer: tokenizer.ggml.model "gpt2" (byte-level BPE) with tokens, merges, token_type
 * (CONTROL -> special added token, USER_DEFINED -> added token), bos/eos/pad ids and
 * add_bos_token, written as tokenizer.json + tokenizer_config.json; the pre-tokenizer is
 * chosen from tokenizer.ggml.pre by llama.cpp's names (gguf_pre_names lists them). */
#ifndef RS_LLM_GGUF_IMPORT_H
#define RS_LLM_GGUF_IMPORT_H

#include "llm/io/config.h"
#include "llm/io/gguf.h"

/* The config of the model in g (architecture "llama"). */
int gguf_import_config(const gguf_file *g, llm_config *c);

/* Write dir/config.json and dir/model.safetensors (F32, HF layout). */
int gguf_import_weights(const gguf_file *g, const char *dir);

/* Write dir/tokenizer.json and dir/tokenizer_config.json. */
int gguf_import_tokenizer(const gguf_file *g, const char *dir);

/* The tokenizer.ggml.pre names the importer knows, comma-separated (static). */
const char *gguf_pre_names(void);

typedef struct {
    double t_weights, t_tokenizer; /* seconds */
    size_t nparams;                /* floats written */
    char types[256];               /* tensor types in the file with counts, "Q4_1 x210, F32 x61, ..." */
} gguf_import_stats;

/* Open path and write all of it into dir (created if missing). stats may be NULL. */
int gguf_import(const char *path, const char *dir, gguf_import_stats *stats);

#endif
