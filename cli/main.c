/* rostesim: one binary, subcommands. Keep this thin: dispatch only. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "par/par.h"
#include "quant/status.h"

#define RS_VERSION "0.1.0"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
    {"lsq", cmd_lsq, "simulate quantized training on least squares; check Theorem 4.3 / Prop. 4.4 / Remark 4.5"},
    {"plot", cmd_plot, "redraw the figures of an lsq output folder from its saved data"},
    {"verify", cmd_verify, "run the theory checks of a paper folder and print pass/fail per claim"},
    {"llm", cmd_llm, "language models: sft, qat (STE/RoSTE), ptq, search, eval, generate, import-gguf, pretrain, ..."},
    {"data", cmd_data, "build data sets from the machine itself (debian-tldr: TL;DR pairs from Debian)"},
    {"paper", cmd_paper, "the paper's Tables 1 and 3 at CPU scale: baselines, STE and RoSTE, ROUGE"},
    {"hadamard", cmd_hadamard, "tell which Hadamard construction covers an order; check and time it"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rostesim COMMAND [options]\n\n"
            "rostesim %s: quantization-aware fine-tuning with adaptive rotations (RoSTE,\n"
            "arXiv 2502.09003) on the CPU, and a numerical check of the method's theory.\n\n"
            "commands:\n",
            RS_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'rostesim COMMAND --help' describes a command. Options: --help, --version.\n");
}

/* The commands that spread their work over the ranks of `mpirun -np R` (R > 1): any other
 * command would run whole on every rank and write the same files, so it is refused. */
static const char *const multi_rank[][2] = {
    {"lsq", NULL}, /* --sweep: points over the ranks (cmd_lsq.c refuses a single point) */
    {"paper", "table1"}, /* cells over the ranks, each a child process (cmd_paper.c) */
    {"paper", "table3"},
    {"llm", "sft"}, /* data parallel (llm/train/train.h) */
    {"llm", "qat"},
    {NULL, NULL},
};

static int runs_on_ranks(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof multi_rank / sizeof *multi_rank; i++) {
        const char *c = multi_rank[i][0], *sub = multi_rank[i][1];
        if (c && strcmp(argv[1], c) == 0 && (!sub || (argc > 2 && strcmp(argv[2], sub) == 0))) return 1;
    }
    return 0;
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("rostesim %s\n", RS_VERSION);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "rostesim: unknown command '%s' (see 'rostesim --help')\n", argv[1]);
    return 2;
}

int main(int argc, char **argv)
{
    if (rs_par_init(&argc, &argv) != RS_OK) {
        fprintf(stderr, "rostesim: %s\n", rs_last_error());
        return 2;
    }
    int R = rs_par_size();
    if (R > 1 && argc >= 2 && !runs_on_ranks(argc, argv)) {
        int sub = argc > 2 && isalpha((unsigned char)argv[2][0]); /* "llm sft", not "hadamard 12" */
        if (rs_par_rank() == 0)
            fprintf(stderr, "rostesim: '%s%s%s' runs in one process; launched by mpirun with %d ranks, every rank would "
                    "do the whole job and write the same files (run it without mpirun, or with -np 1)\n",
                    argv[1], sub ? " " : "", sub ? argv[2] : "", R);
        rs_par_finalize();
        return 2;
    }
    int rc = dispatch(argc, argv);
    fflush(stdout);
    fflush(stderr);
    /* A rank that fails while the others wait in a collective would hang them: end them all. */
    if (rc != 0 && R > 1) rs_par_abort(rc);
    rs_par_finalize();
    return rc;
}
