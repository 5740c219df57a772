/* rostesim fuzzing: a tiny model, tokenizer and data set for the harnesses that need one
 * (the rostesim_qat.json loader and the training checkpoint reader). */
#ifndef RS_FUZZ_TINY_H
#define RS_FUZZ_TINY_H

#include "llm/io/config.h"
#include "llm/train/data.h"
#include "llm/nn/model.h"
#include "llm/text/tokenizer.h"
#include "quant/rng.h"
#include "quant/status.h"

/* GPT-NeoX, d 8, 2 layers, 2 heads, vocab 264 (tests/fixtures/tok/tiny) */
static const char fuzz_tiny_config[] =
    "{\"model_type\": \"gpt_neox\", \"vocab_size\": 264, \"hidden_size\": 8, \"num_hidden_layers\": 2,"
    " \"num_attention_heads\": 2, \"intermediate_size\": 16, \"max_position_embeddings\": 32,"
    " \"rotary_pct\": 0.5, \"rotary_emb_base\": 10000, \"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-05,"
    " \"use_parallel_residual\": true, \"tie_word_embeddings\": false, \"eos_token_id\": 263}";

static inline llm_model *fuzz_tiny_model(void)
{
    llm_config c;
    llm_model *m = NULL;
    rs_rng *r = rs_rng_alloc(1, 0);
    if (!r || llm_config_parse(&c, fuzz_tiny_config, sizeof fuzz_tiny_config - 1, "tiny") ||
        llm_model_init_random(&m, &c, r)) {
        fprintf(stderr, "fuzz: cannot build the tiny model\n");
        exit(1);
    }
    rs_rng_free(r);
    return m;
}

static inline tok_tokenizer *fuzz_tiny_tokenizer(void)
{
    tok_tokenizer *t = NULL;
    if (tok_load(&t, "tests/fixtures/tok/tiny/tokenizer.json")) {
        fprintf(stderr, "fuzz: run from the repository root (tests/fixtures/tok/tiny/tokenizer.json)\n");
        exit(1);
    }
    return t;
}

#endif
