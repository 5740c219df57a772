#include "cli/args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cblas.h>

int cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "rostesim%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_ERROR;
}

cli_opt *cli_find(cli_cmd *cmd, const char *name)
{
    for (size_t i = 0; i < cmd->nopts; i++)
        if (strcmp(cmd->opts[i].name, name) == 0) return &cmd->opts[i];
    return NULL;
}

static void print_default(const cli_opt *o, FILE *f)
{
    switch (o->type) {
    case OPT_FLAG: break;
    case OPT_INT: fprintf(f, " (default %d)", *(int *)o->dst); break;
    case OPT_LONG: fprintf(f, " (default %ld)", *(long *)o->dst); break;
    case OPT_DOUBLE: fprintf(f, " (default %g)", *(double *)o->dst); break;
    case OPT_STRING:
        if (*(const char **)o->dst) fprintf(f, " (default %s)", *(const char **)o->dst);
        break;
    }
}

void cli_usage(const cli_cmd *cmd, FILE *f)
{
    fprintf(f, "usage: rostesim %s %s\n\n%s\n", cmd->name, cmd->synopsis, cmd->description);
    if (cmd->nopts) fprintf(f, "\noptions:\n");
    for (size_t i = 0; i < cmd->nopts; i++) {
        const cli_opt *o = &cmd->opts[i];
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->type == OPT_FLAG ? "" : " ",
                 o->type == OPT_FLAG ? "" : (o->meta ? o->meta : "X"));
        fprintf(f, "  %-22s %s", left, o->help);
        print_default(o, f);
        fputc('\n', f);
    }
    fprintf(f, "  %-22s %s\n", "--help", "show this help and exit");
    if (cmd->epilog) fprintf(f, "\n%s\n", cmd->epilog);
}

static int in_range(const cli_opt *o, double v)
{
    return o->min > o->max || (v >= o->min && v <= o->max);
}

static int set_value(cli_cmd *cmd, cli_opt *o, const char *val)
{
    char *end;
    errno = 0;
    switch (o->type) {
    case OPT_INT:
    case OPT_LONG: {
        long v = strtol(val, &end, 10);
        if (*val == '\0' || *end != '\0' || (errno && errno != ERANGE))
            return cli_error(cmd->name, "%s: '%s' is not an integer", o->name, val);
        /* out of long, or of int for an int option (whatever its declared range) */
        if (errno == ERANGE || (o->type == OPT_INT && (v < INT_MIN || v > INT_MAX)))
            return cli_error(cmd->name, "%s: %s is out of range%s", o->name, val,
                             o->type == OPT_INT ? " (not an int)" : " (not a long)");
        if (!in_range(o, (double)v))
            return cli_error(cmd->name, "%s: %ld is out of range [%g, %g]", o->name, v, o->min, o->max);
        if (o->type == OPT_INT) *(int *)o->dst = (int)v;
        else *(long *)o->dst = v;
        break;
    }
    case OPT_DOUBLE: {
        double v = strtod(val, &end);
        if (*val == '\0' || *end != '\0' || (errno && errno != ERANGE) || isnan(v))
            return cli_error(cmd->name, "%s: '%s' is not a finite number", o->name, val);
        if (!isfinite(v) || errno == ERANGE) /* overflow, or underflow to 0 or a subnormal */
            return cli_error(cmd->name, "%s: %s is out of range (%s)", o->name, val,
                             fabs(v) < 1 ? "underflows a double" : "not a finite double");
        if (!in_range(o, v))
            return cli_error(cmd->name, "%s: %g is out of range [%g, %g]", o->name, v, o->min, o->max);
        *(double *)o->dst = v;
        break;
    }
    case OPT_STRING: *(const char **)o->dst = val; break;
    case OPT_FLAG: break;
    }
    o->seen = 1;
    return CLI_OK;
}

int cli_parse(cli_cmd *cmd, int argc, char **argv, char **pos, size_t *npos)
{
    *npos = 0;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) { only_pos = 1; continue; }
        if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            cli_usage(cmd, stdout);
            return CLI_HELP;
        }
        if (!only_pos && a[0] == '-' && a[1] == '-') {
            char name[64];
            const char *eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            if (len >= sizeof name) return cli_error(cmd->name, "unknown option '%s' (see --help)", a);
            memcpy(name, a, len);
            name[len] = '\0';
            cli_opt *o = cli_find(cmd, name);
            if (!o) return cli_error(cmd->name, "unknown option '%s' (see 'rostesim %s --help')", name, cmd->name);
            if (o->type == OPT_FLAG) {
                if (eq) return cli_error(cmd->name, "%s takes no value", name);
                *(int *)o->dst = 1;
                o->seen = 1;
                continue;
            }
            const char *val = eq ? eq + 1 : NULL;
            if (!val) {
                if (i + 1 >= argc) return cli_error(cmd->name, "%s needs a value (%s)", name, o->meta ? o->meta : "X");
                val = argv[++i];
            }
            if (set_value(cmd, o, val) != CLI_OK) return CLI_ERROR;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0' && !(a[1] >= '0' && a[1] <= '9'))
            return cli_error(cmd->name, "unknown option '%s' (see 'rostesim %s --help')", a, cmd->name);
        if (*npos >= cmd->max_pos)
            return cli_error(cmd->name, "unexpected argument '%s' (see 'rostesim %s --help')", a, cmd->name);
        pos[(*npos)++] = a;
    }
    if (*npos < cmd->min_pos)
        return cli_error(cmd->name, "missing argument (usage: rostesim %s %s)", cmd->name, cmd->synopsis);
    return CLI_OK;
}

int cli_parse_list(const char *s, double *vals, int maxn)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || n >= maxn) return -1;
        vals[n++] = v;
        if (*end == ',') p = end + 1;
        else if (*end == '\0') p = end;
        else return -1;
        if (*end == ',' && *p == '\0') return -1;
    }
    return n;
}

static void dispatch_usage(FILE *f, const char *cmd, const char *intro, const cli_sub *subs, size_t n)
{
    int w = 10;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(subs[i].name) > w) w = (int)strlen(subs[i].name);
    fprintf(f, "usage: rostesim %s SUBCOMMAND [options]\n\n%s\n\nsubcommands:\n", cmd, intro);
    for (size_t i = 0; i < n; i++) fprintf(f, "  %-*s %s\n", w, subs[i].name, subs[i].summary);
    fprintf(f, "\n'rostesim %s SUBCOMMAND --help' describes a subcommand.\n", cmd);
}

int cli_dispatch(const char *cmd, const char *intro, const cli_sub *subs, size_t nsubs, int argc, char **argv)
{
    if (argc < 2) {
        dispatch_usage(stderr, cmd, intro, subs, nsubs);
        return CLI_ERROR;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        dispatch_usage(stdout, cmd, intro, subs, nsubs);
        return 0;
    }
    for (size_t i = 0; i < nsubs; i++)
        if (!strcmp(argv[1], subs[i].name)) return subs[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "rostesim %s: unknown subcommand '%s' (see 'rostesim %s --help')\n", cmd, argv[1], cmd);
    return CLI_ERROR;
}

void cli_blas_note(const char *cmd)
{
#if defined(__x86_64__) || defined(__i386__)
    static int done;
    if (done || getenv("OPENBLAS_CORETYPE")) return;
    done = 1;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return;
    const char *core = openblas_get_corename();
    static const char *const modern[] = {"haswell", "skylakex", "cooperlake", "sapphirerapids", "zen", "excavator"};
    for (size_t i = 0; core && i < sizeof modern / sizeof *modern; i++)
        if (!strcasecmp(core, modern[i])) return;
    fprintf(stderr,
            "rostesim %s: note: OpenBLAS runs its %s kernels on this CPU, which has AVX2%s: matrix products at a "
            "fraction of its speed (an OpenBLAS that does not know this CPU model); OPENBLAS_CORETYPE=Haswell selects "
            "its AVX2 kernels\n",
            cmd, core ? core : "(unknown)", __builtin_cpu_supports("avx512f") ? " and AVX-512" : "");
#else
    (void)cmd;
#endif
}
