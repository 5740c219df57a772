/* rostesim plots: the driver that feeds the embedded gnuplot scripts with an lsq
 * output folder's data. See plots/plot.h. Nothing here prints: errors go to err. */
#include "plots/plot.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "quant/status.h"

/* Each figure: its script, the data file it needs, whether it needs a sweep. */
static const struct {
    const char *name, *data;
    int needs_sweep;
} figures[] = {
    {"fig1_bound", "steps.tsv", 0},  {"fig1_loss", "steps.tsv", 0},   {"fig2_tracking", "runs.tsv", 0},
    {"fig3_prop44", "prop44.tsv", 0}, {"fig4_sweep", "summary.tsv", 1},
};
static const char *const formats[] = {"png", "pdf"};

/* What the scripts receive besides the data folder. */
typedef struct {
    char title[512];
    char sweep_var[64];
    double delta;
    double slope, intercept, pearson, spearman, n; /* NaN when fit.tsv is absent */
    char dupof[64]; /* per rotation (none hadamard haar adaptive): the 1-based index of the
                     * rotation whose runs it repeats at point 0, else 0 (summary.tsv) */
} plot_info;

static int fail(char *err, size_t errlen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return RS_ERROR(status, "%s", msg);
}

const char *plot_gp_text(const char *name)
{
    for (size_t i = 0; i < plot_gp_nscripts; i++)
        if (strcmp(plot_gp_scripts[i].name, name) == 0) return plot_gp_scripts[i].text;
    return NULL;
}

static const char *gnuplot_program(void)
{
    const char *p = getenv("ROSTESIM_GNUPLOT");
    return (p && *p) ? p : "gnuplot";
}

static int is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int plot_gnuplot_available(void)
{
    const char *prog = gnuplot_program();
    if (strchr(prog, '/')) return is_executable(prog);
    const char *path = getenv("PATH");
    char defpath[256];
    if (!path) {
        if (confstr(_CS_PATH, defpath, sizeof defpath) == 0) return 0;
        path = defpath;
    }
    char cand[4096];
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        /* An empty PATH entry means the current directory. */
        int n = len ? snprintf(cand, sizeof cand, "%.*s/%s", (int)len, p, prog)
                    : snprintf(cand, sizeof cand, "./%s", prog);
        if (n > 0 && (size_t)n < sizeof cand && is_executable(cand)) return 1;
        if (!end) return 0;
        p = end;
    }
}

/* Append s to the shell command in single quotes. */
static int shell_quote(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(dst);
    if (n + 1 >= cap) return -1;
    dst[n++] = '\'';
    for (; *s; s++) {
        const char *piece = (*s == '\'') ? "'\\''" : NULL;
        size_t plen = piece ? 4 : 1;
        if (n + plen + 2 >= cap) return -1;
        if (piece) memcpy(dst + n, piece, plen);
        else dst[n] = *s;
        n += plen;
    }
    dst[n++] = '\'';
    dst[n] = '\0';
    return 0;
}

/* gnuplot string literal: single quotes (no escapes inside), ' doubled; control
 * characters become spaces so a title cannot end the statement. */
static void gp_string(FILE *f, const char *var, const char *s)
{
    fprintf(f, "%s = '", var);
    for (; *s; s++) {
        if (*s == '\'') fputs("''", f);
        else if ((unsigned char)*s < 0x20 || *s == 0x7f) fputc(' ', f);
        else fputc(*s, f);
    }
    fputs("'\n", f);
}

static void gp_number(FILE *f, const char *var, double v)
{
    if (isfinite(v)) fprintf(f, "%s = %.17g\n", var, v);
    else fprintf(f, "%s = NaN\n", var);
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

static int read_meta(const char *dir, plot_info *info, char *err, size_t errlen)
{
    char path[4096], line[2048];
    snprintf(path, sizeof path, "%s/meta.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, errlen, RS_EIO, "%s: %s (not an lsq output folder?)", path, strerror(errno));
    if (!fgets(line, sizeof line, f) || strncmp(line, "key\tvalue", 9) != 0) {
        fclose(f);
        return fail(err, errlen, RS_EIO, "%s: first line is not 'key<TAB>value'", path);
    }
    while (fgets(line, sizeof line, f)) {
        chomp(line);
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = '\0';
        const char *v = tab + 1;
        if (strcmp(line, "title") == 0) snprintf(info->title, sizeof info->title, "%s", v);
        else if (strcmp(line, "sweep_var") == 0) snprintf(info->sweep_var, sizeof info->sweep_var, "%s", v);
        else if (strcmp(line, "delta") == 0) {
            char *end;
            double d = strtod(v, &end);
            if (end != v) info->delta = d;
        }
    }
    fclose(f);
    return RS_OK;
}

/* fit.tsv: header, then one row slope intercept pearson spearman n. Absent: NaNs. */
static void read_fit(const char *dir, plot_info *info)
{
    char path[4096], line[1024];
    snprintf(path, sizeof path, "%s/fit.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(line, sizeof line, f) && fgets(line, sizeof line, f)) {
        double v[5];
        char *p = line, *end;
        int k = 0;
        for (; k < 5; k++) {
            v[k] = strtod(p, &end);
            if (end == p) break;
            p = end;
        }
        if (k == 5) {
            info->slope = v[0], info->intercept = v[1], info->pearson = v[2];
            info->spearman = v[3], info->n = v[4];
        }
    }
    fclose(f);
}

/* summary.tsv's duplicate_of column at point 0 into info->dupof ("0 0 0 2"); all zeros
 * when the column is absent (folders written before it existed). */
static void read_dups(const char *dir, plot_info *info)
{
    static const char *const rots[4] = {"none", "hadamard", "haar", "adaptive"};
    int dup[4] = {0, 0, 0, 0};
    char path[4096], line[4096];
    snprintf(path, sizeof path, "%s/summary.tsv", dir);
    FILE *f = fopen(path, "r");
    int col = -1;
    if (f && fgets(line, sizeof line, f)) {
        chomp(line);
        int k = 0;
        for (char *tok = strtok(line, "\t"); tok; tok = strtok(NULL, "\t"), k++)
            if (!strcmp(tok, "duplicate_of")) col = k;
    }
    while (f && col >= 0 && fgets(line, sizeof line, f)) {
        chomp(line);
        char *fld[64];
        int k = 0;
        for (char *p = line; k < 64;) {
            fld[k++] = p;
            char *tab = strchr(p, '\t');
            if (!tab) break;
            *tab = '\0';
            p = tab + 1;
        }
        if (k <= col || strcmp(fld[0], "0") != 0) continue;
        for (int i = 0; i < 4; i++)
            if (!strcmp(fld[2], rots[i]))
                for (int j = 0; j < 4; j++)
                    if (!strcmp(fld[col], rots[j])) dup[i] = j + 1;
    }
    if (f) fclose(f);
    snprintf(info->dupof, sizeof info->dupof, "%d %d %d %d", dup[0], dup[1], dup[2], dup[3]);
}

/* 1 if DIR/name exists and has a data row after its header. */
static int has_rows(const char *dir, const char *name)
{
    char path[4096], line[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int rows = 0;
    while (rows < 2 && fgets(line, sizeof line, f))
        if (line[0] != '\n' && line[0] != '\r') rows++;
    fclose(f);
    return rows >= 2;
}

/* The most useful line of gnuplot's messages: the first that names an error. */
static void log_excerpt(const char *logpath, char *out, size_t cap)
{
    char line[512], last[512] = "";
    out[0] = '\0';
    FILE *f = fopen(logpath, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        chomp(line);
        const char *s = line + strspn(line, " \t");
        if (!*s) continue;
        snprintf(last, sizeof last, "%s", s);
        if (strstr(s, "rror") || strstr(s, "annot")) {
            snprintf(out, cap, "%s", s);
            break;
        }
    }
    if (!out[0]) snprintf(out, cap, "%s", last);
    fclose(f);
}

static int install_message(const char *dir, char *err, size_t errlen)
{
    return fail(err, errlen, PLOT_ENOGNUPLOT,
                "gnuplot not found (looked for '%s'); install gnuplot: sudo apt-get install gnuplot-nox, "
                "then rerun 'rostesim plot %s'",
                gnuplot_program(), dir);
}

/* A gnuplot process reading our writes, its messages into logpath. gnuplot may exit early
 * (say, on a script error) without reading its input: a write must not kill us, so SIGPIPE
 * is ignored from gp_open to gp_close (*old keeps the caller's action). NULL on failure:
 * *toolong set when the command line did not fit, else errno is popen's. */
typedef struct {
    FILE *f;
    struct sigaction old;
} gp_pipe;

static int gp_open(gp_pipe *p, const char *logpath, int *toolong)
{
    char cmd[8192] = "exec ";
    *toolong = 1;
    if (shell_quote(cmd, sizeof cmd, gnuplot_program()) || strlen(cmd) + 8 >= sizeof cmd) return -1;
    strcat(cmd, " >");
    if (shell_quote(cmd, sizeof cmd, logpath) || strlen(cmd) + 8 >= sizeof cmd) return -1;
    strcat(cmd, " 2>&1");
    *toolong = 0;
    struct sigaction ign = {0};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &p->old);
    fflush(NULL);
    p->f = popen(cmd, "w");
    if (!p->f) {
        int e = errno;
        sigaction(SIGPIPE, &p->old, NULL);
        errno = e;
        return -1;
    }
    return 0;
}

/* pclose's status; the caller's SIGPIPE action back. */
static int gp_close(gp_pipe *p)
{
    int rc = pclose(p->f);
    int e = errno;
    sigaction(SIGPIPE, &p->old, NULL);
    errno = e;
    return rc;
}

/* Run gnuplot once: variables, common.gp, the figure's script, into `tmp`. */
static int run_gnuplot(const char *dir, const plot_info *info, const char *fig, const char *fmt,
                       const char *tmp, const char *logpath, char *err, size_t errlen)
{
    const char *common = plot_gp_text("common"), *script = plot_gp_text(fig);
    if (!common || !script) return fail(err, errlen, RS_EINVAL, "no embedded gnuplot script '%s'", fig);
    gp_pipe pipe;
    int toolong;
    if (gp_open(&pipe, logpath, &toolong)) {
        if (toolong) return fail(err, errlen, RS_EINVAL, "path too long: %s", dir);
        return fail(err, errlen, PLOT_ENOGNUPLOT, "cannot start gnuplot: %s", strerror(errno));
    }
    FILE *gp = pipe.f;
    gp_string(gp, "datadir", dir);
    gp_string(gp, "outfile", tmp);
    gp_string(gp, "fmt", fmt);
    gp_string(gp, "runtitle", info->title);
    gp_string(gp, "sweepvar", info->sweep_var);
    gp_number(gp, "delta", info->delta);
    gp_number(gp, "fit_slope", info->slope);
    gp_number(gp, "fit_intercept", info->intercept);
    gp_number(gp, "fit_pearson", info->pearson);
    gp_number(gp, "fit_spearman", info->spearman);
    gp_number(gp, "fit_n", info->n);
    gp_string(gp, "dupof", info->dupof);
    fputs(common, gp);
    fputs("\n", gp);
    fputs(script, gp);
    fputs("\nset output\n", gp);
    int rc = gp_close(&pipe);

    if (rc == -1) return fail(err, errlen, RS_EIO, "gnuplot (%s.%s): %s", fig, fmt, strerror(errno));
    if (WIFEXITED(rc) && (WEXITSTATUS(rc) == 127 || WEXITSTATUS(rc) == 126)) return install_message(dir, err, errlen);
    struct stat st;
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0 || stat(tmp, &st) != 0 || st.st_size == 0) {
        char why[512];
        log_excerpt(logpath, why, sizeof why);
        return fail(err, errlen, RS_EIO, "gnuplot failed drawing %s.%s (%s %d)%s%s", fig, fmt,
                    WIFEXITED(rc) ? "exit status" : "signal", WIFEXITED(rc) ? WEXITSTATUS(rc) : WTERMSIG(rc),
                    why[0] ? ": " : "", why);
    }
    return RS_OK;
}

int plot_run_script(const char *dir, const char *name, const char *prelude)
{
    const char *script = plot_gp_text(name);
    if (!script) return RS_ERROR(RS_EINVAL, "no embedded gnuplot script '%s'", name);
    char logpath[4200];
    int n = snprintf(logpath, sizeof logpath, "%s/.%s.%ld.log", dir, name, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof logpath) return RS_ERROR(RS_EINVAL, "path too long: %s", dir);
    gp_pipe pipe;
    int toolong;
    if (gp_open(&pipe, logpath, &toolong)) {
        if (toolong) return RS_ERROR(RS_EINVAL, "path too long: %s", dir);
        return RS_ERROR(PLOT_ENOGNUPLOT, "cannot start gnuplot: %s", strerror(errno));
    }
    gp_string(pipe.f, "datadir", dir);
    if (prelude) fputs(prelude, pipe.f);
    fputs(script, pipe.f);
    fputs("\nset output\n", pipe.f);
    int rc = gp_close(&pipe);
    int st = RS_OK;
    if (rc == -1) st = RS_ERROR(RS_EIO, "gnuplot (%s): %s", name, strerror(errno));
    else if (WIFEXITED(rc) && (WEXITSTATUS(rc) == 127 || WEXITSTATUS(rc) == 126))
        st = RS_ERROR(PLOT_ENOGNUPLOT, "gnuplot (%s) could not be run (exit status %d)", gnuplot_program(), WEXITSTATUS(rc));
    else if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        char why[512];
        log_excerpt(logpath, why, sizeof why);
        st = RS_ERROR(RS_EIO, "gnuplot failed drawing %s (%s %d)%s%s", name, WIFEXITED(rc) ? "exit status" : "signal",
                      WIFEXITED(rc) ? WEXITSTATUS(rc) : WTERMSIG(rc), why[0] ? ": " : "", why);
    }
    unlink(logpath);
    return st;
}

int plot_draw(const char *dir, plot_written_fn *on_written, void *ctx, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    plot_info info = {.title = "", .sweep_var = "none", .delta = NAN, .slope = NAN,
                      .intercept = NAN, .pearson = NAN, .spearman = NAN, .n = NAN};
    int st = read_meta(dir, &info, err, errlen);
    if (st) return st;
    read_fit(dir, &info);
    read_dups(dir, &info);
    if (!plot_gnuplot_available()) return install_message(dir, err, errlen);
    int sweep = info.sweep_var[0] && strcmp(info.sweep_var, "none") != 0;

    /* A figure that fails does not stop the others; the first failure is returned. */
    int drawn = 0, first = RS_OK;
    char first_err[1024] = "";
    for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++) {
        if (figures[i].needs_sweep && !sweep) continue;
        if (!has_rows(dir, figures[i].data)) continue;
        for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
            char final[4096], tmp[4200], logpath[4200];
            int n = snprintf(final, sizeof final, "%s/%s.%s", dir, figures[i].name, formats[k]);
            if (n < 0 || (size_t)n >= sizeof final) return fail(err, errlen, RS_EINVAL, "path too long: %s", dir);
            snprintf(tmp, sizeof tmp, "%s/.%s.%s.%ld.tmp", dir, figures[i].name, formats[k], (long)getpid());
            snprintf(logpath, sizeof logpath, "%s/.%s.%s.%ld.log", dir, figures[i].name, formats[k], (long)getpid());
            st = run_gnuplot(dir, &info, figures[i].name, formats[k], tmp, logpath, err, errlen);
            if (st == RS_OK && rename(tmp, final) != 0)
                st = fail(err, errlen, RS_EIO, "%s: %s", final, strerror(errno));
            unlink(logpath);
            if (st != RS_OK) {
                unlink(tmp);
                if (st == PLOT_ENOGNUPLOT) return st;
                if (first == RS_OK) {
                    first = st;
                    if (err && errlen) snprintf(first_err, sizeof first_err, "%s", err);
                }
                break; /* the figure's other format would fail the same way */
            }
            drawn++;
            if (on_written) on_written(final, ctx);
        }
    }
    if (first != RS_OK) {
        if (err && errlen) snprintf(err, errlen, "%s", first_err);
        return first;
    }
    if (!drawn)
        return fail(err, errlen, RS_EIO, "%s: no figure data (steps.tsv, runs.tsv, prop44.tsv, summary.tsv)", dir);
    return RS_OK;
}

int plot_draw_all(const char *dir, char *err, size_t errlen)
{
    return plot_draw(dir, NULL, NULL, err, errlen);
}
