/* rostesim LLM: byte-level BPE training, with the algorithm of HF `tokenizers`' BpeTrainer.
 *
 * Input: a corpus cut into lines that keep their "\n" (as Tokenizer.train(files) reads
 * files), each normalized (NFC, optional) and pre-tokenized by the preset's regex through
 * llm/text/tokenizer.c itself (tok_pretokenize on a tokenizer written for the preset), so that
 * training and encoding cut text identically. Pre-tokens are counted as words.
 *
 * Vocabulary: the special tokens first (ids 0..), then the 256 characters of the
 * byte-level alphabet in code-point order (HF's initial_alphabet = ByteLevel.alphabet()),
 * then one token per merge. Merges: HF's loop exactly: a max-heap of (pair count, pair)
 * with ties to the smallest (left id, right id); each heap entry carries the set of words
 * where the pair was (re)created, stale counts are refreshed and re-pushed, a merge is
 * applied to the words of its entry only and updates pair counts with Word::merge's
 * changes. Stops at vocab_size tokens or when no pair occurs. HF itself is not
 * deterministic in one corner (two heap entries of the same pair and count: it drains a
 * hash map in random order); here the older entry wins. A pair merged twice keeps its last
 * rank, as HF's saved merges do.
 *
 * Complexity: each merge touches only the words holding the pair. */
#ifndef RS_LLM_BPE_TRAIN_H
#define RS_LLM_BPE_TRAIN_H

#include <stddef.h>

#include "llm/text/tokenizer_write.h"

typedef struct {
    tok_pre_style pre;
    int nfc;
    size_t vocab_size;           /* total, special tokens and the 256 byte tokens included */
    size_t nspecial;
    const char *const *special;  /* e.g. "<|endoftext|>" */
    long min_frequency;          /* pairs seen fewer times stop the training (HF: 0) */
} bpe_train_opts;

typedef struct {
    size_t nvocab;
    char **vocab;           /* byte-level strings, vocab[i] has id i */
    size_t nmerges;
    char **merge_a, **merge_b;
    size_t nwords, ntokens; /* distinct pre-tokens, pre-tokens in the corpus */
} bpe_result;

/* Train on text (len bytes of UTF-8). RS_EINVAL for invalid UTF-8 (naming the line) or a
 * vocab_size below the alphabet. */
int bpe_train(const char *text, size_t len, const bpe_train_opts *o, bpe_result *r);
void bpe_result_free(bpe_result *r);

/* The spec that writes r as tokenizer.json (pointers into r and o; special tokens become
 * added tokens with their vocabulary ids). */
void bpe_result_spec(const bpe_result *r, const bpe_train_opts *o, tok_spec *s, int *added_id, int *added_special);

#endif
