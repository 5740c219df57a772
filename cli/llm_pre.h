/* rostesim CLI: the generation + ROUGE part of `llm eval --generate` (cli/cmd_llm_pre.c). */
#ifndef RS_CLI_LLM_PRE_H
#define RS_CLI_LLM_PRE_H

#include "llm/quantize/intq.h"
#include "llm/nn/model.h"
#include "llm/text/tokenizer.h"

/* Greedy completions of the prompts of a JSONL file (first `limit` lines; 0: all), ROUGE
 * against the completions printed, predictions written to pred_path. Returns an exit code.
 * With iq (the int backend) m is unused (may be NULL). */
int llm_eval_generate(const char *cmd, llm_model *m, llm_intq *iq, const tok_tokenizer *tok, int eos, const char *data,
                      int max_new, long limit, int stem, const char *pred_path);

#endif
