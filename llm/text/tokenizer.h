/* rostesim LLM: Hugging Face tokenizer.json, byte-level BPE (GPT-NeoX, Qwen2, Llama-3 styles).
 *
 * Supported pieces of tokenizer.json:
 *   normalizer:     null, NFC (through utf8proc), Sequence of those
 *   pre_tokenizer:  ByteLevel (add_prefix_space, use_regex with the GPT-2 pattern),
 *                   Split (Regex pattern through PCRE2 with UTF + Unicode properties,
 *                   behavior Isolated/Removed..., invert), Sequence of those
 *   model:          BPE with byte_fallback false, merges as "a b" strings or ["a","b"] pairs
 *                   (loaded in linear time), ignore_merges (Llama-3), unk_token
 *   added_tokens:   matched before pre-tokenization (special and normal, with lstrip/rstrip/
 *                   single_word/normalized flags as far as the three families use them)
 *   post_processor: TemplateProcessing / ByteLevel / Sequence (BOS added by Llama-3), applied
 *                   only when TOK_ADD_SPECIAL is passed
 *   decoder:        ByteLevel
 * Anything else: RS_ENOTSUP with an error naming the JSON path (e.g. "model.type: Unigram"). */
#ifndef RS_LLM_TOKENIZER_H
#define RS_LLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_tokenizer tok_tokenizer;

enum { TOK_ADD_SPECIAL = 1 }; /* apply the post-processor template (e.g. prepend BOS) */

/* Load tokenizer.json (path to the file). Errors name the file and the JSON path. */
int tok_load(tok_tokenizer **t, const char *path);
/* Same, from memory; `name` prefixes error messages. */
int tok_parse(tok_tokenizer **t, const char *json, size_t len, const char *name);
void tok_free(tok_tokenizer *t); /* NULL is a no-op */

/* Encode UTF-8 text (len bytes; invalid UTF-8 is an RS_EINVAL error naming the byte offset).
 * *ids is malloc'ed (caller frees), *n its length. */
int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int flags, int32_t **ids, size_t *n);

/* Decode ids to UTF-8 (malloc'ed, NUL-terminated, *len bytes without the NUL).
 * skip_special: drop special added tokens. Out-of-range id: RS_EINVAL. */
int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **out, size_t *len);

/* The pre-tokens of text (raw bytes, after added-token splitting, normalization and the
 * pre-tokenizer's Split/ByteLevel regexes; before the byte-level mapping and BPE), each
 * passed to cb in order; added tokens in the text are skipped. A non-zero return from cb
 * stops and is returned. For the BPE trainer (llm/text/bpe_train.c). */
typedef int (*tok_pretok_cb)(void *ctx, const char *piece, size_t len);
int tok_pretokenize(const tok_tokenizer *t, const char *text, size_t len, tok_pretok_cb cb, void *ctx);

int tok_vocab_size(const tok_tokenizer *t);      /* 1 + largest id (model vocab and added tokens) */
int tok_token_id(const tok_tokenizer *t, const char *token); /* id of an exact token string, -1 if none */
const char *tok_token_str(const tok_tokenizer *t, int id);   /* NULL if out of range */
int tok_is_special(const tok_tokenizer *t, int id);

#endif
