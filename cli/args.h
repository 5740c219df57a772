/* rostesim CLI: a small table-driven option parser shared by every subcommand.
 * Errors print one line "rostesim CMD: ..." on stderr; callers exit 2 on them. */
#ifndef RS_CLI_ARGS_H
#define RS_CLI_ARGS_H

#include <stddef.h>
#include <stdio.h>

typedef enum { OPT_FLAG, OPT_INT, OPT_LONG, OPT_DOUBLE, OPT_STRING } opt_type;

typedef struct {
    const char *name;  /* "--bits" */
    opt_type type;
    void *dst;         /* int* (FLAG, INT), long*, double*, const char** */
    double min, max;   /* inclusive range for numbers (ignored when min > max) */
    const char *meta;  /* value placeholder in --help, e.g. "B" */
    const char *help;  /* one line; the default is appended from *dst */
    int seen;          /* set to 1 by the parser when given */
} cli_opt;

typedef struct {
    const char *name;        /* "lsq" */
    const char *synopsis;    /* "[options]" */
    const char *description; /* paragraph(s) shown by --help */
    cli_opt *opts;
    size_t nopts;
    size_t min_pos, max_pos; /* positional argument count limits */
    const char *epilog;      /* shown after the options (may be NULL) */
} cli_cmd;

enum { CLI_OK = 0, CLI_HELP = 1, CLI_ERROR = 2 };

/* Parse argv[1..argc-1] (argv[0] is the command name). Positional arguments are
 * stored in pos (capacity max_pos). Returns CLI_OK, CLI_HELP (usage printed to
 * stdout) or CLI_ERROR (one line printed to stderr). */
int cli_parse(cli_cmd *cmd, int argc, char **argv, char **pos, size_t *npos);
void cli_usage(const cli_cmd *cmd, FILE *f);
/* Print "rostesim CMD: message" to stderr and return CLI_ERROR. */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Find an option by name (NULL if absent). */
cli_opt *cli_find(cli_cmd *cmd, const char *name);

/* A command with subcommands ("rostesim llm sft ..."): one table entry per subcommand. */
typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} cli_sub;

/* Run argv[1] of the table (argv[0] is the command name). --help/-h/help prints the usage
 * ("usage: rostesim CMD SUBCOMMAND [options]", intro, the table) to stdout and returns 0;
 * no subcommand prints it to stderr and returns 2; an unknown one is one line and 2. */
int cli_dispatch(const char *cmd, const char *intro, const cli_sub *subs, size_t nsubs, int argc, char **argv);

/* Before heavy matrix work (training, PTQ, paper tables): one line on stderr, once per
 * process, when OpenBLAS runs kernels older than the CPU (a CPU with AVX2+FMA on OpenBLAS's
 * pre-AVX2 kernels, e.g. 0.3.21's Prescott fallback for CPU models it does not know), which
 * costs several times the matrix products' speed. Silent when OPENBLAS_CORETYPE is set (the
 * user chose) and off x86. rostesim never sets the variable itself. */
void cli_blas_note(const char *cmd);

/* Parse a comma-separated list of doubles ("2,3,4"); returns the count or -1. */
int cli_parse_list(const char *s, double *vals, int maxn);

#endif
