/* rostesim subcommands: each takes (argc, argv) with argv[0] the command name and
 * returns the process exit code (0 success, 1 runtime failure, 2 usage error). */
#ifndef RS_CLI_COMMANDS_H
#define RS_CLI_COMMANDS_H

#include <stddef.h>

struct llm_model;

int cmd_data(int argc, char **argv);
int cmd_hadamard(int argc, char **argv);
int cmd_llm(int argc, char **argv);
int cmd_llm_import_gguf(int argc, char **argv); /* cli/cmd_llm_gguf.c, under 'llm' */
int cmd_lsq(int argc, char **argv);
int cmd_paper(int argc, char **argv); /* paper table1 / table3 (cli/cmd_paper.c) */
int cmd_plot(int argc, char **argv);
int cmd_verify(int argc, char **argv);

/* llm qat / search / diagnose (cli/cmd_llm_qat.c) */
int cmd_llm_qat(int argc, char **argv);
int cmd_llm_search(int argc, char **argv);
int cmd_llm_diagnose(int argc, char **argv);

/* llm ptq: RTN, GPTQ, QuaRot (cli/cmd_llm_ptq.c) */
int cmd_llm_ptq(int argc, char **argv);

/* `llm sft` with hooks (cli/cmd_llm.c), for `llm qat`: every sft option, plus
 *   prepare     after the model and data are loaded, before the trainer (may replace *m);
 *   after_step  after every optimizer step: extra JSON fields for the train_log.jsonl record
 *               (written as ", \"name\": value", or ""); a non-zero return stops the run;
 *   finish      after the model is saved into out.
 * Each returns 0 or an exit code (a message printed). */
typedef struct {
    const char *name; /* "llm qat" */
    const char *description;
    int (*prepare)(void *ctx, const char *cmd, struct llm_model **m, const void *ds, int pad);
    int (*after_step)(void *ctx, const void *stats, char *extra, size_t n);
    int (*finish)(void *ctx, const char *cmd, struct llm_model *m, const char *out);
    void *ctx;
} llm_sft_hooks;
int cmd_llm_sft_hooked(int argc, char **argv, const llm_sft_hooks *h);
/* llm subcommands of the embedded default (cli/cmd_llm_pre.c) */
int cmd_llm_tokenizer_train(int argc, char **argv);
int cmd_llm_pretrain(int argc, char **argv);

#endif
