/* rostesim LLM: choosing the next token from logits, and generation with the KV cache.
 *
 * temperature 0 is greedy (argmax; the lowest id wins ties). Otherwise the logits are
 * divided by the temperature, softmaxed (in double), restricted to the smallest set of
 * most likely tokens whose probability reaches top_p (as HF's TopPLogitsWarper; ties in
 * probability keep the lower id first; at least one token), and one is drawn with a
 * uniform number from the caller's rs_rng. */
#ifndef RS_LLM_SAMPLE_H
#define RS_LLM_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "llm/nn/model.h"

typedef struct rs_rng rs_rng;

enum { LLM_STREAM_SAMPLE = 6 }; /* rs_rng stream of token sampling (quant/rng.h uses 1..5) */

typedef struct {
    double temperature; /* 0: greedy */
    double top_p;       /* (0, 1]; 1: no nucleus cut */
} llm_sample_opts;

/* Scratch for llm_sample: V probabilities and V indices. */
typedef struct {
    int V;
    double *prob;
    int *idx;
} llm_sampler;

int llm_sampler_alloc(llm_sampler **s, int V);
void llm_sampler_free(llm_sampler *s); /* NULL is a no-op */

/* The next token for logits (V). rng may be NULL when temperature is 0. */
int llm_sample(llm_sampler *s, const float *logits, const llm_sample_opts *o, rs_rng *rng);

/* Called with every generated token (eos excluded); a non-zero return stops. */
typedef int (*llm_token_cb)(void *ctx, int32_t token);

/* Feed the prompt (n >= 1 tokens) through the KV cache, then generate up to max_new
 * tokens, stopping after eos (eos_id < 0: never). The new tokens (eos excluded) go to
 * out (capacity max_new) and *nout. prompt n + max_new must fit the model's max_pos. */
int llm_generate(llm_model *m, const int32_t *prompt, int n, int max_new, int eos_id, const llm_sample_opts *o,
                 rs_rng *rng, int32_t *out, int *nout, llm_token_cb cb, void *ctx);

#endif
