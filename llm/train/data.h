/* rostesim LLM: training data for SFT, tokenized once into rows of token ids and targets.
 *
 * Two formats, chosen by the file name:
 *   *.jsonl / *.json  one JSON object per line with string fields "prompt" and "completion"
 *                     (the layout of trl-lib/tldr); other fields are ignored, blank lines
 *                     are skipped. A row is
 *                       ids = encode(prompt, TOK_ADD_SPECIAL) ++ encode(completion) ++ [eos]
 *                     and the loss covers the completion and the eos (completion-only, the
 *                     default) or every token after the first (full_loss).
 *   *.txt             the whole file is tokenized (no special tokens) and cut into blocks
 *                     of max_len tokens (a last block shorter than 2 tokens is dropped);
 *                     every token after the first of its block is in the loss.
 *
 * Targets follow Hugging Face causal-LM training (labels shifted inside the model):
 * row position t has target ids[t+1] when token t+1 is in the loss, else -100 (ignored);
 * the last position of a row has target -100.
 *
 * Truncation: a JSONL row longer than max_len keeps its FIRST max_len tokens (TRL's
 * "keep_start"), so a long completion loses its end (and the eos). A row left with no
 * token in the loss (the prompt alone fills max_len) is skipped and counted in nskip.
 *
 * Errors name the file and the line (JSONL: bad JSON, not an object, missing or
 * non-string "prompt"/"completion", invalid UTF-8; text: invalid UTF-8), and an empty
 * data set is an error. Library code: no printing; RS_ERROR records the message. */
#ifndef RS_LLM_DATA_H
#define RS_LLM_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "llm/io/config.h"
#include "llm/text/tokenizer.h"

enum { LLM_IGNORE = -100 }; /* target of a position that is not in the loss */

typedef enum { LLM_DATA_JSONL = 0, LLM_DATA_TEXT = 1 } llm_data_kind;

typedef struct {
    int max_len;   /* tokens per row, >= 2 */
    int full_loss; /* JSONL: prompt tokens are in the loss too */
    int eos_id;    /* appended to every JSONL completion; must be >= 0 for JSONL */
} llm_data_opts;

typedef struct {
    llm_data_kind kind;
    char *path;          /* the file read (for messages) */
    size_t n;            /* rows */
    size_t *off;         /* n + 1 offsets into ids / tgt */
    size_t *line;        /* source line of each row (JSONL; 1-based), block index + 1 for text */
    int32_t *ids;        /* tokens of every row, concatenated */
    int32_t *tgt;        /* targets, same layout (LLM_IGNORE = not in the loss) */
    size_t ntok;         /* targets in the loss, all rows */
    int max_row;         /* longest row */
    size_t nread;        /* JSONL examples read (text: blocks cut) */
    size_t ntrunc;       /* rows cut to max_len (kept or skipped) */
    size_t nskip;        /* rows dropped: nothing left in the loss after truncation */
    uint64_t file_hash;  /* FNV-1a 64 of the file's bytes */
    uint64_t tok_hash;   /* FNV-1a 64 of ids and targets (changes with tokenizer and options) */
} llm_dataset;

/* Read and tokenize a data file (format from the extension, see above). */
int llm_data_load(llm_dataset **ds, const char *path, const tok_tokenizer *tok, const llm_data_opts *o);
/* Same from memory; `name` stands for the file in messages and decides nothing. */
int llm_data_parse(llm_dataset **ds, const char *buf, size_t len, llm_data_kind kind, const char *name,
                   const tok_tokenizer *tok, const llm_data_opts *o);
void llm_data_free(llm_dataset *ds); /* NULL is a no-op */

/* Every id (and the pad id) must be below the model's vocabulary: the error names the
 * tokenizer, the model, the id and the row's line. */
int llm_data_check_vocab(const llm_dataset *ds, int vocab, int pad_id, const char *tok_name,
                         const char *model_name);

/* A micro-batch of rows idx[0..nrows-1]: tokens and targets (nrows, T) with T the longest
 * of these rows; shorter rows are padded with pad_id and target LLM_IGNORE. The buffers hold
 * nrows * ds->max_row values. *ntok: targets in the loss. */
void llm_data_batch(const llm_dataset *ds, const size_t *idx, int nrows, int pad_id, int32_t *tokens,
                    int32_t *targets, int *T, int *ntok);

/* Targets in the loss of rows idx[0..nrows-1] (no copying). */
size_t llm_data_count(const llm_dataset *ds, const size_t *idx, size_t nrows);

/* Special ids of a checkpoint folder: eos = config eos_token_id, else tokenizer_config.json
 * "eos_token"; pad = config pad_token_id, else tokenizer_config.json "pad_token", else eos.
 * Either is -1 when nothing names it. A token named in tokenizer_config.json that the
 * tokenizer lacks is an error naming both. */
int llm_special_ids(const llm_config *c, const char *model_dir, const tok_tokenizer *tok, int *eos, int *pad);

/* FNV-1a 64 (hash of bytes, continued from h; start with LLM_FNV_INIT). */
#define LLM_FNV_INIT 0xcbf29ce484222325ull
uint64_t llm_fnv1a(uint64_t h, const void *p, size_t n);

#endif
