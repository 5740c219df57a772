/* rostesim LLM: writing a Hugging Face tokenizer.json (byte-level BPE) that llm/text/tokenizer.c
 * and the HF `tokenizers` library both load and encode identically.
 *
 * Used by the tokenizer trainer (`rostesim llm tokenizer-train`) and by importers that
 * carry a vocabulary and merges of their own (GGUF). Token strings are in the byte-level
 * alphabet (GPT-2's bytes_to_unicode mapping: ' ' is 'Ġ', '\n' is 'Ċ', ...), as
 * tokenizer.json stores them. */
#ifndef RS_LLM_TOKENIZER_WRITE_H
#define RS_LLM_TOKENIZER_WRITE_H

#include <stddef.h>

/* Pre-tokenizer presets: the regexes the three supported families use. */
typedef enum {
    TOK_PRE_GPT2 = 0,   /* ByteLevel with its GPT-2 regex (GPT-NeoX / Pythia, GPT-2) */
    TOK_PRE_LLAMA3 = 1, /* Split(Llama-3 regex, digits in runs of 1..3) + ByteLevel(no regex) */
    TOK_PRE_QWEN2 = 2   /* Split(Qwen2 regex, single digits) + ByteLevel(no regex) */
} tok_pre_style;
/* TOK_PRE_LLAMA3 also writes model.ignore_merges = true, as Llama-3's tokenizer.json does. */

/* The preset's pre-tokenizer regex (PCRE2 with UTF + UCP reads it as HF's onig does). */
const char *tok_pre_pattern(tok_pre_style s);
/* "gpt2" (alias "neox"), "llama3", "qwen2" -> style; RS_EINVAL naming the others. */
int tok_pre_style_parse(const char *name, tok_pre_style *s);

typedef struct {
    tok_pre_style pre;
    int nfc;                         /* NFC normaliser */
    size_t nvocab;                   /* model vocabulary: vocab[i] has id i */
    const char *const *vocab;
    size_t nmerges;                  /* merges in rank order: merge_a[r] + merge_b[r] */
    const char *const *merge_a;
    const char *const *merge_b;
    size_t nadded;                   /* added tokens (ids may follow the vocabulary or reuse one) */
    const char *const *added;
    const int *added_id;
    const int *added_special;        /* 1: special (skipped by decode with skip_special) */
    const char *bos_prepend;         /* non-NULL: TemplateProcessing that prepends this added token */
} tok_spec;

/* Write path (temporary name, then rename). Checks: ids in range and unique, every merge
 * part and result in the vocabulary. */
int tok_write_json(const char *path, const tok_spec *s);

/* Same checks and bytes, into memory (malloc'ed, NUL-terminated; *len without the NUL). */
int tok_write_json_buf(const tok_spec *s, char **json, size_t *len);

/* Write tokenizer_config.json naming the bos/eos/pad tokens (any may be NULL). */
int tok_write_config(const char *path, const char *bos, const char *eos, const char *pad);

#endif
