/* rostesim subcommands: each takes (argc, argv) with argv[0] the command name and
 * returns the process exit code (0 success, 1 runtime failure, 2 usage error). */
#ifndef RS_CLI_COMMANDS_H
#define RS_CLI_COMMANDS_H

int cmd_data(int argc, char **argv);
int cmd_hadamard(int argc, char **argv);
int cmd_llm(int argc, char **argv);
int cmd_lsq(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_verify(int argc, char **argv);

/* llm subcommands of the embedded default (cli/cmd_llm_pre.c) */
int cmd_llm_tokenizer_train(int argc, char **argv);
int cmd_llm_pretrain(int argc, char **argv);

#endif
