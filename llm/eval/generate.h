/* rostesim LLM: generation scored with ROUGE, the summary task's evaluation (`llm eval
 * --generate`). For each prompt/completion line of a JSONL file: greedy decoding of the prompt
 * (with the tokenizer's special tokens; a prompt too long for the model keeps its last tokens,
 * which hold "TL;DR:"), up to max_new tokens or eos; the prediction is the first line of the
 * generated text, trimmed (decoding stops once that line has ended), and the reference the completion likewise; ROUGE-1/2/L/Lsum of the
 * prediction against the reference (llm/eval/rouge.h). Either backend: the fp32 model (with
 * its fake quantizers, if attached) or the integer one (llm/quantize/intq.h). */
#ifndef RS_LLM_GENERATE_H
#define RS_LLM_GENERATE_H

#include "llm/eval/rouge.h"
#include "llm/nn/model.h"
#include "llm/quantize/intq.h"
#include "llm/text/tokenizer.h"

typedef struct {
    llm_model *model;          /* the model that generates, or NULL with intq */
    llm_intq *intq;            /* the integer backend; used when set (model unused) */
    const tok_tokenizer *tok;
    int eos;                   /* the token that ends a completion */
    int max_new;               /* most new tokens per prompt (>= 1, below the model's positions) */
    long limit;                /* the first `limit` lines only (0: all) */
    int stem;                  /* ROUGE with the Porter stemmer */
    int full_length;           /* decode all max_new tokens (or to eos) even when the first line of
                                  the text has ended (the default stops there: same predictions) */
    int batch;                 /* fp32 model: prompts decoded together (continuous batching; 0 or 1:
                                  one at a time); the integer backend decodes one at a time */
    double progress;           /* > 0: a progress line on stderr every `progress` seconds (and at the end) */
} llm_generate_opts;

typedef struct {
    long n;                    /* examples scored */
    long ntrunc;               /* prompts cut from the left to leave room for max_new tokens */
    rouge_scores mean;         /* mean P, R and F of each ROUGE variant */
    long prompt_tokens;        /* tokens fed (after the cut) */
    long new_tokens;           /* tokens generated (eos excluded) */
} llm_generate_result;

/* Generate and score the lines of the JSONL file `data` ({"prompt": ..., "completion": ...});
 * write one JSON line per example ({"line", "prediction", "reference", "rougeL" F rounded to
 * 1e-6}) to pred_path, atomically. RS_OK; RS_EINVAL for a line that is not a prompt/completion
 * object or a file with no examples (naming "<data>:<line>"), RS_EIO for the files, or the
 * tokenizer's or generator's status, with a message. */
int llm_eval_generate(const char *data, const char *pred_path, const llm_generate_opts *o, llm_generate_result *r);

#endif
