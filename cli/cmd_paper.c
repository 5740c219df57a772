/* rostesim paper table1 / table3: the paper's comparison (ROSTE.md §6) at CPU scale, driven
 * through the binary's own `llm` subcommands in-process (argv arrays, cmd_llm), so that every
 * cell can be rerun by hand with the command line printed for it.
 *
 * Layout of --out: base/, sft/, and BITS/METHOD[-lrLR-cC]/ per quantized cell; each cell
 * folder holds model/ (the trained or quantized checkpoint; not for base), train.done
 * (written after the trainer returned 0), SPLIT_predictions.jsonl and SPLIT.json (ROUGE of
 * that split, written atomically, last: the done-marker). A cell whose marker exists is
 * skipped, so an interrupted run resumes. Deterministic: fixed seeds throughout. */
#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cli/args.h"
#include "llm/io/fileio.h"
#include "quant/status.h"
#include "cli/commands.h"
#include "llm/quantize/ptq.h"
#include "llm/eval/rouge.h"
#include "llm/eval/stats.h"
#include "par/par.h"
#include "plots/plot.h"
#include "sim/lsq_out.h"

#define MAXBITS 4
#define MAXGRID 9
#define MAXSEEDS 8

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* mkdir -p through rs_mkdir_p; a failure is printed; returns 0 or 1. */
static int mkdir_p(const char *C, const char *dir)
{
    return rs_mkdir_p(dir) == RS_OK ? 0 : (cli_error(C, "%s", rs_last_error()), 1);
}

/* ---- methods: one table, rows of the paper's Table 1 -------------------------------------- */

enum { K_BASE, K_SFT, K_PTQ, K_QAT };
enum { ROT_SEARCH, ROT_ALL }; /* RoSTE's rotations (table3) */

static int avail_always(void) { return 1; }
/* SpinQuant is one more entry: present when this build's `llm ptq` knows the method. */
static int avail_ptq(const char *m) { return llm_ptq_method_parse(m) >= 0; }
static int avail_spinquant(void) { return avail_ptq("spinquant"); }

typedef struct paper_method_s {
    const char *name;  /* row key */
    const char *dir;   /* folder: rows that run the same commands share one, across tables */
    const char *label; /* row label */
    int kind;
    const char *method; /* llm ptq / llm qat --method */
    int rot;            /* K_QAT roste: ROT_* */
    int (*available)(void);
    int paper; /* column of paper_rows (-1: none) */
} paper_method;

static const paper_method table1_methods[] = {
    {"base", "base", "Base (pretrained, no fine-tuning)", K_BASE, NULL, 0, avail_always, -1},
    {"sft", "sft", "SFT (full precision)", K_SFT, NULL, 0, avail_always, 0},
    {"rtn", "rtn", "RTN", K_PTQ, "rtn", 0, avail_always, 1},
    {"gptq", "gptq", "GPTQ", K_PTQ, "gptq", 0, avail_always, 2},
    {"quarot", "quarot", "QuaRot", K_PTQ, "quarot", 0, avail_always, 3},
    {"spinquant", "spinquant", "SpinQuant", K_PTQ, "spinquant", 0, avail_spinquant, 4},
    {"ste", "ste", "STE", K_QAT, "ste", 0, avail_always, 5},
    {"roste", "roste", "RoSTE", K_QAT, "roste", ROT_SEARCH, avail_always, 6},
};
/* RoSTE with no rotation is STE, byte for byte (tests/qat_cli_test.sh), and the adaptive row is
 * table1's RoSTE: both run table1's commands in table1's folders, so table3 given table1's
 * --out trains only the every-rotation row. */
static const paper_method table3_methods[] = {
    {"roste-none", "ste", "RoSTE, no rotation (= STE)", K_QAT, "ste", 0, avail_always, -1},
    {"roste-all", "roste-all", "RoSTE, every rotation (R1-R4)", K_QAT, "roste", ROT_ALL, avail_always, -1},
    {"roste-adaptive", "roste", "RoSTE, adaptive (searched)", K_QAT, "roste", ROT_SEARCH, avail_always, -1},
};

/* The paper's Table 1 at W4A4KV4, ROUGE average (ROSTE.md §6; also
 * papers/roste-2502.09003/table1_paper.tsv): SFT, RTN, GPTQ, QuaRot, SpinQuant, STE, RoSTE. */
static const struct {
    const char *model;
    double v[7];
} paper_rows[] = {
    {"Qwen2.5-0.5B", {23.90, 6.73, 8.51, 6.67, 8.70, 21.67, 22.28}},
    {"Pythia-1B", {23.91, 4.25, 6.93, 11.39, 9.06, 22.37, 23.07}},
};
#define NPAPER (sizeof paper_rows / sizeof paper_rows[0])

/* ---- options ------------------------------------------------------------------------------ */

/* Seconds measured in this process, or recorded beside the finished cells it skipped, by row:
 * training per token fed, scoring per prompt, a post-training quantization per run (the
 * table's ETA). */
typedef struct {
    const char *name;
    double train_s, train_tok, eval_s, eval_n, ptq_s, ptq_n;
} prate;

typedef struct {
    const char *model, *data, *out, *bits;
    int steps, batch, max_len, calib, threads, sweep, seeds;
    const char *cur_row; /* the row whose cell runs (rates) */
    int si; /* the training seed in use: --seed + si */
    const char *sweep_lr_s, *sweep_clip_s;
    double glr[3], gclip[3]; /* --sweep grid: lr multipliers, clipping factors */
    int nglr, ngclip, sweep_steps, cur_steps;
    long valid_limit;
    /* for the table's ETA: seconds measured in this process per training token, per scored
     * prompt, per post-training quantization, by row name */
    prate rate[16];
    const struct paper_method_s *ms;
    size_t nm;
    const int *avail;
    long test_limit, seed;
    double lr;
    int nbits, wb[MAXBITS], ab[MAXBITS], kb[MAXBITS];
    char bname[MAXBITS][32];
    char train[4200], valid[4200], test[4200];
    double t0;
    int ncells, cell;
} paper_opts;

typedef struct {
    double r1, r2, rl, rlsum, mean;
    long n;
    int ok;
} pscore;

/* ---- running a step ------------------------------------------------------------------------ */

typedef struct {
    char *v[64];
    int n;
    char buf[16384];
    size_t used;
} argvb;

static void av_add(argvb *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void av_add(argvb *a, const char *fmt, ...)
{
    if (a->n >= 63 || a->used >= sizeof a->buf - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(a->buf + a->used, sizeof a->buf - a->used, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof a->buf - a->used) return;
    a->v[a->n++] = a->buf + a->used;
    a->v[a->n] = NULL;
    a->used += (size_t)k + 1;
}

/* A launcher's variable (Open MPI's OMPI_*, PMIx's PMIX_*, PMI_*, MPICH's HYDRA_* and
 * MPI_LOCALNRANKS / MPI_LOCALRANKID): a child process that saw one would take itself for a
 * rank of the job (par/par.c starts MPI when it finds them) and try to join it. */
static int launcher_var(const char *e)
{
    static const char *const pre[] = {"OMPI_", "PMIX_", "PMI_", "HYDRA_", "MPI_LOCALNRANKS=", "MPI_LOCALRANKID="};
    for (size_t i = 0; i < sizeof pre / sizeof *pre; i++)
        if (!strncmp(e, pre[i], strlen(pre[i]))) return 1;
    return 0;
}

/* Run `rostesim v[0] ... v[n-1]` as a child process of this binary (/proc/self/exe) without
 * the launcher's variables, and wait for it: its exit status, or 1 (message printed) when it
 * could not start or was killed. The child dies with its parent (a rank that mpirun ends
 * takes its running cell with it; the cell's markers are written atomically, last). */
static int run_child(char *const *v, int n)
{
    size_t ne = 0;
    for (char **e = environ; *e; e++) ne++;
    char **env = malloc((ne + 1) * sizeof *env), **args = malloc(((size_t)n + 2) * sizeof *args);
    if (!env || !args) {
        free(env), free(args);
        return cli_error("paper", "out of memory starting a cell"), 1;
    }
    size_t k = 0;
    for (char **e = environ; *e; e++)
        if (!launcher_var(*e)) env[k++] = *e;
    env[k] = NULL;
    args[0] = "rostesim";
    for (int i = 0; i < n; i++) args[i + 1] = v[i];
    args[n + 1] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) { /* only async-signal-safe calls until execve */
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        if (getppid() != parent) _exit(127);
        execve("/proc/self/exe", args, env);
        _exit(127);
    }
    free(env);
    free(args);
    if (pid < 0) return cli_error("paper", "cannot start a cell: fork: %s", strerror(errno)), 1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return cli_error("paper", "waiting for a cell: %s", strerror(errno)), 1;
    if (WIFEXITED(status)) {
        if (WEXITSTATUS(status) == 127)
            return cli_error("paper", "cannot start a cell: execve(/proc/self/exe) failed (not on Linux?)"), 1;
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) return cli_error("paper", "a cell was killed by signal %d", WTERMSIG(status)), 1;
    return 1;
}

/* Print the equivalent command line (shell-quoted where needed), then run it: in-process in
 * one process; under mpirun (several ranks) as a child process of its own, a one-process
 * rostesim (the cell's `llm` command must not take the other ranks, busy with their own
 * cells, for its partners). */
static int av_run(const argvb *a)
{
    printf("  $ rostesim");
    for (int i = 0; i < a->n; i++) {
        const char *s = a->v[i];
        int plain = *s != 0;
        for (const char *p = s; *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:+@%", *p)) plain = 0;
        if (plain) printf(" %s", s);
        else {
            printf(" '");
            for (const char *p = s; *p; p++) *p == '\'' ? printf("'\\''") : putchar(*p);
            putchar('\'');
        }
    }
    putchar('\n');
    fflush(stdout);
    char *v[64];
    for (int i = 0; i <= a->n; i++) v[i] = a->v[i];
    int rc = rs_par_size() > 1 ? run_child(v, a->n) : cmd_llm(a->n, v);
    fflush(stdout);
    fflush(stderr);
    return rc;
}

/* The numbers named by keys in the small JSON object of path (NaN where absent); 0, or 1 when
 * the file cannot be read or parsed. */
static int json_nums(const char *path, const char *const *keys, double *v, int n)
{
    for (int i = 0; i < n; i++) v[i] = NAN;
    FILE *f = fopen(path, "rb");
    if (!f) return 1;
    static char buf[65536]; /* up to an HF config.json; the command is single-threaded */
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    cJSON *j = cJSON_Parse(buf);
    if (!j) return 1;
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (cJSON_IsNumber(x)) v[i] = x->valuedouble;
    }
    cJSON_Delete(j);
    return 0;
}

static int read_score(const char *path, pscore *s)
{
    memset(s, 0, sizeof *s);
    static const char *const k[] = {"R1", "R2", "RL", "RLsum", "mean", "n"};
    double v[6];
    if (json_nums(path, k, v, 6)) return 1;
    for (int i = 0; i < 5; i++)
        if (isnan(v[i])) return 1;
    s->r1 = v[0], s->r2 = v[1], s->rl = v[2], s->rlsum = v[3], s->mean = v[4];
    if (!isnan(v[5])) s->n = (long)v[5];
    s->ok = 1;
    return 0;
}

/* v in the fewest significant digits (15 to 17) that read back as the same double: a score
 * read from its file is the score computed, so a resumed run (or rank 0 reading the cells of
 * other ranks) writes the table a fresh run writes, byte for byte. */
static void fmt_exact(char *buf, size_t n, double v)
{
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

#define NBOOT 2000
#define NMET 5 /* R1, R2, RL, RLsum, mean */
static const char *const met_name[NMET] = {"R1", "R2", "RL", "RLsum", "mean"};

/* Per-prompt F of each metric (and their mean) of a cell's predictions file, in its line order,
 * and the lines (to check that two cells saw the same prompts). */
typedef struct {
    double *v[NMET];
    long *line;
    long n;
} pvec;

static void pvec_free(pvec *p)
{
    for (int k = 0; k < NMET; k++) free(p->v[k]);
    free(p->line);
    memset(p, 0, sizeof *p);
}

static int pvec_load(const char *C, const char *pred, pvec *p)
{
    memset(p, 0, sizeof *p);
    FILE *f = fopen(pred, "rb");
    if (!f) return cli_error(C, "cannot read '%s' (the cell's predictions)", pred), 1;
    char *line = NULL;
    size_t cap = 0;
    long nc = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, f) > 0) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *pr = cJSON_GetObjectItem(o, "prediction"), *r = cJSON_GetObjectItem(o, "reference"),
                    *ln = cJSON_GetObjectItem(o, "line");
        rouge_scores sc;
        if (!cJSON_IsString(pr) || !cJSON_IsString(r) || !cJSON_IsNumber(ln) ||
            rouge_score(r->valuestring, pr->valuestring, 1, &sc) != 0)
            rc = (cli_error(C, "%s:%ld: not a predictions line", pred, p->n + 1), 1);
        else {
            if (p->n == nc) {
                nc = nc ? 2 * nc : 256;
                for (int k = 0; k < NMET; k++) {
                    double *t = realloc(p->v[k], (size_t)nc * sizeof *t);
                    if (t) p->v[k] = t;
                    else rc = 1;
                }
                long *t = realloc(p->line, (size_t)nc * sizeof *t);
                if (t) p->line = t;
                else rc = 1;
                if (rc) cli_error(C, "out of memory");
            }
            if (!rc) {
                const double v[4] = {sc.r1.f, sc.r2.f, sc.rl.f, sc.rlsum.f};
                for (int k = 0; k < 4; k++) p->v[k][p->n] = v[k];
                p->v[4][p->n] = (v[0] + v[1] + v[2] + v[3]) / 4;
                p->line[p->n++] = (long)ln->valuedouble;
            }
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    if (!rc && p->n == 0) rc = (cli_error(C, "%s: no predictions", pred), 1);
    if (rc) pvec_free(p);
    return rc;
}

/* ROUGE of a predictions file of `llm eval --generate` (rouge library, stemmed, over the
 * prediction/reference pairs it holds), written to json_path atomically. */
static int score_predictions(const char *C, const char *pred, const char *split, const char *json_path, double secs,
                             pscore *s)
{
    /* the per-prompt scores the statistics use, summed in order as rouge_acc does */
    pvec p;
    if (pvec_load(C, pred, &p)) return 1;
    double sum[4] = {0, 0, 0, 0};
    for (long t = 0; t < p.n; t++)
        for (int k = 0; k < 4; k++) sum[k] += p.v[k][t];
    const double inv = 1.0 / (double)p.n;
    s->r1 = sum[0] * inv, s->r2 = sum[1] * inv, s->rl = sum[2] * inv, s->rlsum = sum[3] * inv;
    s->mean = (s->r1 + s->r2 + s->rl + s->rlsum) / 4;
    s->n = p.n, s->ok = 1;
    pvec_free(&p);
    char tmp[4400];
    FILE *o = rs_atomic_open(json_path, tmp, sizeof tmp);
    if (!o) return cli_error(C, "cannot create '%s'", json_path), 1;
    char v[5][32];
    const double *d[5] = {&s->r1, &s->r2, &s->rl, &s->rlsum, &s->mean};
    for (int i = 0; i < 5; i++) fmt_exact(v[i], sizeof v[i], *d[i]);
    fprintf(o,
            "{\"split\": \"%s\", \"n\": %ld, \"R1\": %s, \"R2\": %s, \"RL\": %s, \"RLsum\": %s, \"mean\": %s, "
            "\"stemmed\": true, \"eval_seconds\": %.1f}\n",
            split, s->n, v[0], v[1], v[2], v[3], v[4], secs);
    if (rs_atomic_close(o, tmp, json_path) != 0) return cli_error(C, "cannot write '%s'", json_path), 1;
    return 0;
}

static double table_eta(const paper_opts *o);

/* "1 h 05 min", "12 min", "40 s" */
static void fmt_dur(char *b, size_t n, double s)
{
    if (s >= 3600) snprintf(b, n, "%d h %02d min", (int)(s / 3600), (int)(fmod(s, 3600) / 60));
    else if (s >= 60) snprintf(b, n, "%d min", (int)(s / 60 + 0.5));
    else snprintf(b, n, "%.0f s", s);
}

static void progress(const char *C, paper_opts *o, const char *what, const char *dir)
{
    char eta[64] = "";
    if (rs_par_size() == 1 && o->ms) {
        double e = table_eta(o);
        char d[32];
        fmt_dur(d, sizeof d, e);
        if (e >= 0) snprintf(eta, sizeof eta, ", table ETA %s", d);
        else snprintf(eta, sizeof eta, ", table ETA after the first cells");
    }
    if (rs_par_size() > 1)
        printf("[%s %d/%d, rank %d, %.1f s] %s (%s)\n", C, o->cell, o->ncells, rs_par_rank(), now_s() - o->t0, what, dir);
    else printf("[%s %d/%d, %.1f s%s] %s (%s)\n", C, o->cell, o->ncells, now_s() - o->t0, eta, what, dir);
    fflush(stdout);
}

/* The rate record of a row (by name), created on first use; NULL when the table is full. */
static prate *rate_of(paper_opts *o, const char *name)
{
    for (int k = 0; k < 16; k++) {
        if (!o->rate[k].name) o->rate[k].name = name;
        if (!strcmp(o->rate[k].name, name)) return &o->rate[k];
    }
    return NULL;
}

/* Evaluate dir/model (or the base model) on a split: dir/SPLIT.json is the done-marker. */
static int eval_split(const char *C, paper_opts *o, const char *dir, const char *model, const char *split, pscore *s)
{
    char js[4300], pred[4300];
    snprintf(js, sizeof js, "%s/%s.json", dir, split);
    if (is_file(js) && read_score(js, s) == 0) {
        printf("  skip: %s already done (%s: mean %.4f)\n", split, js, s->mean);
        /* a resumed table's ETA: the scoring time recorded beside the finished cell */
        static const char *const k[] = {"eval_seconds", "n"};
        double v[2];
        prate *r = o->cur_row ? rate_of(o, o->cur_row) : NULL;
        if (r && !json_nums(js, k, v, 2) && v[0] >= 0 && v[1] > 0) r->eval_s += v[0], r->eval_n += v[1];
        return 0;
    }
    snprintf(pred, sizeof pred, "%s/%s_predictions.jsonl", dir, split);
    argvb a = {0};
    av_add(&a, "llm");
    av_add(&a, "eval");
    av_add(&a, "--model");
    av_add(&a, "%s", model);
    av_add(&a, "--data");
    av_add(&a, "%s", !strcmp(split, "test") ? o->test : o->valid);
    av_add(&a, "--generate");
    av_add(&a, "--limit");
    av_add(&a, "%ld", !strcmp(split, "test") ? o->test_limit : o->valid_limit);
    av_add(&a, "--max-len");
    av_add(&a, "%d", o->max_len);
    av_add(&a, "--predictions");
    av_add(&a, "%s", pred);
    av_add(&a, "--no-loss");
    av_add(&a, "--progress");
    av_add(&a, "60");
    av_add(&a, "--threads");
    av_add(&a, "%d", o->threads);
    double t = now_s();
    int rc = av_run(&a);
    if (rc) return cli_error(C, "eval of %s on %s failed (exit %d)", model, split, rc), 1;
    if (o->cur_row) {
        prate *r = rate_of(o, o->cur_row);
        if (r) r->eval_s += now_s() - t, r->eval_n += (double)(!strcmp(split, "test") ? o->test_limit : o->valid_limit);
    }
    return score_predictions(C, pred, split, js, now_s() - t, s);
}

/* Train or quantize into dir/model unless dir/train.done exists. */
static int train_cell(const char *C, paper_opts *o, const paper_method *pm, int bi, double lr, double clip,
                      const char *sft_model, const char *dir)
{
    char done[4300], model[4300];
    snprintf(done, sizeof done, "%s/train.done", dir);
    snprintf(model, sizeof model, "%s/model", dir);
    if (is_file(done)) {
        printf("  skip: %s already trained (%s)\n", pm->name, done);
        /* a resumed table's ETA: the wall time recorded beside the finished cell, when it ran
         * on as many threads as this run */
        static const char *const k[] = {"elapsed_s", "steps", "threads"};
        double v[3];
        char tj[4400];
        snprintf(tj, sizeof tj, "%s/train.json", dir);
        prate *r = rate_of(o, pm->name);
        if (r && !json_nums(tj, k, v, 3) && v[0] >= 0 && v[2] == o->threads) {
            if (pm->kind == K_PTQ) r->ptq_s += v[0], r->ptq_n += 1;
            else if (v[1] > 0) r->train_s += v[0], r->train_tok += v[1] * o->batch * o->max_len;
        }
        return 0;
    }
    if (mkdir_p(C, dir)) return 1;
    argvb a = {0};
    av_add(&a, "llm");
    if (pm->kind == K_PTQ) {
        av_add(&a, "ptq");
        av_add(&a, "--method");
        av_add(&a, "%s", pm->method);
        av_add(&a, "--model");
        av_add(&a, "%s", sft_model);
        av_add(&a, "--data");
        av_add(&a, "%s", o->train);
        av_add(&a, "--calib");
        av_add(&a, "%d", o->calib);
        if (!strcmp(pm->method, "quarot")) av_add(&a, "--quarot-weights"), av_add(&a, "gptq");
    } else {
        av_add(&a, pm->kind == K_SFT ? "sft" : "qat");
        if (pm->kind == K_QAT) av_add(&a, "--method"), av_add(&a, "%s", pm->method);
        av_add(&a, "--model");
        av_add(&a, "%s", o->model);
        av_add(&a, "--data");
        av_add(&a, "%s", o->train);
        av_add(&a, "--lr");
        av_add(&a, "%g", lr);
        av_add(&a, "--max-steps");
        av_add(&a, "%d", o->cur_steps ? o->cur_steps : o->steps);
        av_add(&a, "--batch");
        av_add(&a, "%d", o->batch);
        av_add(&a, "--warmup");
        av_add(&a, "0.03");
        av_add(&a, "--seed");
        av_add(&a, "%ld", o->seed + o->si);
        av_add(&a, "--progress"); /* the cell's loss, tokens/s and ETA once a minute */
        av_add(&a, "60");
    }
    av_add(&a, "--out");
    av_add(&a, "%s", model);
    av_add(&a, "--max-len");
    av_add(&a, "%d", o->max_len);
    if (pm->kind == K_PTQ || pm->kind == K_QAT) {
        av_add(&a, "--wbits"), av_add(&a, "%d", o->wb[bi]);
        av_add(&a, "--abits"), av_add(&a, "%d", o->ab[bi]);
        av_add(&a, "--kvbits"), av_add(&a, "%d", o->kb[bi]);
    }
    if (pm->kind == K_QAT) {
        if (clip != 1) {
            av_add(&a, "--wclip"), av_add(&a, "%g", clip);
            av_add(&a, "--aclip"), av_add(&a, "%g", clip);
            av_add(&a, "--kvclip"), av_add(&a, "%g", clip);
        }
        if (!strcmp(pm->method, "roste")) {
            av_add(&a, "--calib"), av_add(&a, "%d", o->calib);
            if (pm->rot != ROT_SEARCH) {
                /* a fixed rotation configuration: every R1-R4 on */
                char cfg[4300], mc[4300];
                snprintf(cfg, sizeof cfg, "%s/rotation_fixed.json", dir);
                snprintf(mc, sizeof mc, "%s/config.json", o->model);
                static const char *const kl[] = {"num_hidden_layers"};
                double nl;
                const int L = !json_nums(mc, kl, &nl, 1) && nl >= 1 && nl <= INT_MAX ? (int)nl : -1;
                if (L <= 0) return cli_error(C, "--model: no num_hidden_layers in '%s'", mc), 1;
                char tmp[4400];
                FILE *w = rs_atomic_open(cfg, tmp, sizeof tmp);
                if (!w) return cli_error(C, "cannot create '%s'", cfg), 1;
                fprintf(w, "{\"is_rotate_R1\": true, \"in_block_rotation\": {");
                for (int l = 0; l < L; l++)
                    fprintf(w, "%s\"%d\": {\"is_rotate_R2\": true, \"is_rotate_R3\": true, \"is_rotate_R4\": true}",
                            l ? ", " : "", l);
                fprintf(w, "}, \"signs\": \"all\", \"seed\": 0}\n");
                if (rs_atomic_close(w, tmp, cfg)) return cli_error(C, "cannot write '%s'", cfg), 1;
                av_add(&a, "--rotation-config"), av_add(&a, "%s", cfg);
            }
        }
    }
    av_add(&a, "--threads");
    av_add(&a, "%d", o->threads);
    double t0 = now_s();
    int rc = av_run(&a);
    if (rc) return cli_error(C, "%s failed (exit %d); rerun the same command to retry", pm->name, rc), 1;
    /* the cell's wall time beside its marker: train.json (tokens fed: steps x batch x max-len) */
    const double el = now_s() - t0, steps = o->cur_steps ? o->cur_steps : o->steps;
    const double tok = pm->kind == K_PTQ ? 0 : steps * o->batch * o->max_len;
    prate *r = rate_of(o, pm->name);
    if (r && pm->kind == K_PTQ) r->ptq_s += el, r->ptq_n += 1;
    else if (r) r->train_s += el, r->train_tok += tok;
    char tj[4400], tmp[4400];
    snprintf(tj, sizeof tj, "%s/train.json", dir);
    FILE *w = rs_atomic_open(tj, tmp, sizeof tmp);
    if (!w) return cli_error(C, "cannot create '%s'", tj), 1;
    if (tok > 0) {
        fprintf(w, "{\"elapsed_s\": %.1f, \"steps\": %.0f, \"tokens_per_s\": %.1f, \"threads\": %d}\n", el, steps, tok / el,
                o->threads);
        printf("  trained in %.1f s (%.1f tokens/s fed, %d x %d tokens per step)\n", el, tok / el, o->batch, o->max_len);
    } else {
        fprintf(w, "{\"elapsed_s\": %.1f, \"threads\": %d}\n", el, o->threads);
        printf("  quantized in %.1f s\n", el);
    }
    if (rs_atomic_close(w, tmp, tj)) return cli_error(C, "cannot write '%s'", tj), 1;
    w = rs_atomic_open(done, tmp, sizeof tmp);
    if (!w) return cli_error(C, "cannot create '%s'", done), 1;
    fprintf(w, "done\n");
    if (rs_atomic_close(w, tmp, done)) return cli_error(C, "cannot write '%s'", done), 1;
    return 0;
}

/* ---- the sweep grid (--sweep) ----------------------------------------------------------------- */

/* Rows --sweep tunes: SFT (lr) and QA-SFT (lr x clip). */
static int swept(const paper_opts *o, const paper_method *pm)
{
    return o->sweep && (pm->kind == K_SFT || pm->kind == K_QAT);
}
static int grid_n(const paper_opts *o, const paper_method *pm)
{
    return pm->kind == K_QAT ? o->nglr * o->ngclip : o->nglr;
}
static void grid_at(const paper_opts *o, const paper_method *pm, int g, double *lr, double *clip)
{
    const int nc = pm->kind == K_QAT ? o->ngclip : 1;
    *lr = o->lr * o->glr[g / nc];
    *clip = pm->kind == K_QAT ? o->gclip[g % nc] : 1;
}
/* Grid runs shorter than the final ones (--sweep-steps): the choice is trained again in full. */
static int short_grid(const paper_opts *o) { return o->sweep_steps > 0 && o->sweep_steps != o->steps; }

/* A cell's folder: grid 0 the row's own (base/, sft/, BITS/METHOD/), 1 a grid point
 * (sft-lrLR/, BITS/METHOD-lrLR-cC/), 2 the full-length run of a short grid's choice (the grid
 * point's name + "-full"); a trained row's seed si > 0 (--seeds) gets "-sSEED" after it. */
static void cell_dir(const paper_opts *o, const paper_method *pm, int bi, double lr, double clip, int grid, int si,
                     char *d, size_t n)
{
    char sfx[48] = "";
    snprintf(sfx, sizeof sfx, "%s", grid == 2 ? "-full" : "");
    if (si > 0 && (pm->kind == K_SFT || pm->kind == K_QAT)) snprintf(sfx + strlen(sfx), sizeof sfx - strlen(sfx), "-s%ld", o->seed + si);
    if (pm->kind == K_BASE || (pm->kind == K_SFT && !grid)) snprintf(d, n, "%s/%s%s", o->out, pm->dir, sfx);
    else if (pm->kind == K_SFT) snprintf(d, n, "%s/%s-lr%g%s", o->out, pm->dir, lr, sfx);
    else if (grid) snprintf(d, n, "%s/%s/%s-lr%g-c%g%s", o->out, o->bname[bi], pm->dir, lr, clip, sfx);
    else snprintf(d, n, "%s/%s/%s%s", o->out, o->bname[bi], pm->dir, sfx);
}

/* Seeds a row trains with: --seeds for SFT and QA-SFT, one for the others. */
static int row_seeds(const paper_opts *o, const paper_method *pm)
{
    return pm->kind == K_SFT || pm->kind == K_QAT ? o->seeds : 1;
}

/* Cells of a row at one bit setting, in progress-line numbering. */
static int row_cells(const paper_opts *o, const paper_method *pm)
{
    const int ns = row_seeds(o, pm);
    if (!swept(o, pm)) return ns;
    return grid_n(o, pm) + ns - (short_grid(o) ? 0 : 1);
}

/* The grid point chosen on validation: the best mean, ties to the first. */
static int grid_choice(const double *mean, int G)
{
    int k = 0;
    double best = -1;
    for (int g = 0; g < G; g++)
        if (mean[g] > best) best = mean[g], k = g;
    return k;
}

/* Grid point g of a swept row: train (--sweep-steps), evaluate on validation (*v). 0 or 1. */
static int grid_point(const char *C, paper_opts *o, const paper_method *pm, int bi, int g, const char *sft_model,
                      pscore *v)
{
    char dir[4300], model[4400], what[256];
    double glr, gc;
    grid_at(o, pm, g, &glr, &gc);
    cell_dir(o, pm, bi, glr, gc, 1, 0, dir, sizeof dir);
    o->cell++;
    o->cur_row = pm->name;
    if (pm->kind == K_SFT)
        snprintf(what, sizeof what, "%s sweep lr %g: train%s, ROUGE on validation", pm->name, glr,
                 short_grid(o) ? " (short)" : "");
    else
        snprintf(what, sizeof what, "%s %s sweep lr %g clip %g: train%s, ROUGE on validation", o->bname[bi], pm->name, glr,
                 gc, short_grid(o) ? " (short)" : "");
    progress(C, o, what, dir);
    snprintf(model, sizeof model, "%s/model", dir);
    o->cur_steps = short_grid(o) ? o->sweep_steps : o->steps;
    int rc = train_cell(C, o, pm, bi, glr, gc, sft_model, dir);
    o->cur_steps = 0;
    return rc || eval_split(C, o, dir, model, "validation", v);
}

/* The validation mean of grid point g, read from its marker; 1 when it is not on disk. */
static int grid_mean(const paper_opts *o, const paper_method *pm, int bi, int g, double *mean)
{
    char dir[4300], path[4400];
    double lr, clip;
    pscore v;
    grid_at(o, pm, g, &lr, &clip);
    cell_dir(o, pm, bi, lr, clip, 1, 0, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/validation.json", dir);
    if (read_score(path, &v)) return 1;
    *mean = v.mean;
    return 0;
}

/* The folder of a swept row's chosen run at seed si (the grid's scores on disk); 1 if not yet. */
static int chosen_dir(const paper_opts *o, const paper_method *pm, int bi, int si, char *dir, size_t n)
{
    double mean[MAXGRID] = {0}, lr, clip;
    const int G = grid_n(o, pm);
    for (int g = 0; g < G; g++)
        if (grid_mean(o, pm, bi, g, &mean[g])) return 1;
    grid_at(o, pm, grid_choice(mean, G), &lr, &clip);
    cell_dir(o, pm, bi, lr, clip, short_grid(o) ? 2 : 1, si, dir, n);
    return 0;
}

/* One row-cell at seed si: train (or quantize) and evaluate on test; a swept row's grid
 * points (first seed) are each evaluated on validation and the best one (ties: first) is
 * trained (again: other seeds, or a short grid's full-length run) and scored on test. */
static int run_cell(const char *C, paper_opts *o, const paper_method *pm, int bi, int si, const char *sft_model,
                    pscore *s, char *chosen, size_t nchosen)
{
    char dir[4300], model[4400];
    double lr = o->lr, clip = 1;
    o->si = si;
    o->cur_row = pm->name;
    if (swept(o, pm)) {
        double mean[MAXGRID] = {0};
        const int G = grid_n(o, pm);
        for (int g = 0; g < G; g++) {
            pscore v;
            /* done already: another seed's cell ran it, or (mpirun) its own job */
            if ((si > 0 || rs_par_size() > 1) && grid_mean(o, pm, bi, g, &mean[g]) == 0) continue;
            o->si = 0;
            int rc = grid_point(C, o, pm, bi, g, sft_model, &v);
            o->si = si;
            if (rc) return 1;
            mean[g] = v.mean;
        }
        int k = grid_choice(mean, G);
        grid_at(o, pm, k, &lr, &clip);
        if (pm->kind == K_SFT)
            printf("  chosen on validation: %s lr %g (mean %.4f)\n", pm->name, lr, mean[k]);
        else
            printf("  chosen on validation: %s %s lr %g clip %g (mean %.4f)\n", o->bname[bi], pm->name, lr, clip, mean[k]);
        cell_dir(o, pm, bi, lr, clip, short_grid(o) ? 2 : 1, si, dir, sizeof dir);
        if (si > 0 || short_grid(o)) {
            char what[256];
            o->cell++;
            if (pm->kind == K_SFT)
                snprintf(what, sizeof what, "%s lr %g seed %ld: train, ROUGE on test", pm->name, lr, o->seed + si);
            else
                snprintf(what, sizeof what, "%s %s lr %g clip %g seed %ld: train, ROUGE on test", o->bname[bi], pm->name, lr,
                         clip, o->seed + si);
            progress(C, o, what, dir);
            if (train_cell(C, o, pm, bi, lr, clip, sft_model, dir)) return 1;
        }
    } else {
        cell_dir(o, pm, bi, lr, clip, 0, si, dir, sizeof dir);
        o->cell++;
        char what[256], sd[48] = "";
        if (row_seeds(o, pm) > 1) snprintf(sd, sizeof sd, " seed %ld", o->seed + si);
        snprintf(what, sizeof what, "%s%s%s%s: %s, ROUGE on test", pm->kind <= K_SFT ? "" : o->bname[bi],
                 pm->kind <= K_SFT ? "" : " ", pm->name, sd,
                 pm->kind == K_BASE ? "no training" : pm->kind == K_PTQ ? "quantize the SFT model" : "train");
        progress(C, o, what, dir);
        if (pm->kind == K_BASE) {
            if (mkdir_p(C, dir)) return 1;
        } else if (train_cell(C, o, pm, bi, lr, clip, sft_model, dir))
            return 1;
    }
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(chosen, nchosen, "%s", dir);
    return eval_split(C, o, dir, pm->kind == K_BASE ? o->model : model, "test", s);
}

/* ---- statistics: bootstrap CIs and the paired bootstrap against RoSTE ------------------------- */

/* A cell's intervals, and its paired comparison with the reference row (RoSTE at its bit
 * setting; table3: the adaptive rotations). */
typedef struct {
    int ok;
    double lo[NMET], hi[NMET];
    int paired; /* 0: this is the reference, or the prompts differ */
    double diff[NMET], dlo[NMET], dhi[NMET], p[NMET];
    char ref[64];
    int nseeds;                                 /* training seeds averaged (per prompt) */
    double seed_mean[MAXSEEDS], seed_sd;        /* each seed's ROUGE mean; their sample sd */
} pstat;

/* Fill st[i][b] for every available cell (base/SFT rows: against each bit setting's
 * reference). The bootstrap draws are seeded from --seed: same table, same intervals. */
static int table_stats(const char *C, paper_opts *o, const paper_method *ms, size_t nm,
                       char (*sdirs)[MAXBITS][MAXSEEDS][4300], pscore (*ss)[MAXBITS][MAXSEEDS], const int *avail,
                       size_t iref, pstat (*st)[MAXBITS])
{
    static pvec pv[16][MAXBITS];
    int rc = 0;
    memset(pv, 0, sizeof pv);
    static char dirs[16][MAXBITS][4300]; /* messages name the first seed's folder */
    for (size_t i = 0; i < nm && !rc; i++)
        for (int b = 0; b < o->nbits && !rc && avail[i]; b++) {
            int bb = ms[i].kind <= K_SFT ? 0 : b;
            if (bb != b) break;
            /* a row trained with several seeds: each prompt's scores averaged over the seeds */
            const int ns = row_seeds(o, &ms[i]);
            for (int si = 0; si < ns && !rc; si++) {
                char pred[4400];
                pvec q;
                snprintf(pred, sizeof pred, "%.4300s/test_predictions.jsonl", sdirs[i][b][si]);
                if ((rc = pvec_load(C, pred, si ? &q : &pv[i][b]))) break;
                if (!si) continue;
                pvec *x = &pv[i][b];
                if (q.n != x->n || memcmp(q.line, x->line, (size_t)x->n * sizeof *x->line))
                    rc = (cli_error(C, "%s: other prompts than %s", pred, sdirs[i][b][0]), 1);
                for (int k = 0; k < NMET && !rc; k++)
                    for (long t = 0; t < x->n; t++) x->v[k][t] += q.v[k][t];
                pvec_free(&q);
            }
            for (int k = 0; k < NMET && !rc && ns > 1; k++)
                for (long t = 0; t < pv[i][b].n; t++) pv[i][b].v[k][t] /= ns;
        }
    for (size_t i = 0; i < nm; i++)
        for (int b = 0; b < o->nbits; b++) snprintf(dirs[i][b], sizeof dirs[i][b], "%s", sdirs[i][ms[i].kind <= K_SFT ? 0 : b][0]);
    for (size_t i = 0; i < nm && !rc; i++)
        for (int b = 0; b < o->nbits && avail[i]; b++) {
            pstat *t = &st[i][b];
            const int bb = ms[i].kind <= K_SFT ? 0 : b, ns = row_seeds(o, &ms[i]);
            double sm = 0, sq = 0;
            t->nseeds = ns;
            for (int si = 0; si < ns; si++) t->seed_mean[si] = ss[i][bb][si].mean, sm += t->seed_mean[si];
            sm /= ns;
            for (int si = 0; si < ns; si++) sq += (t->seed_mean[si] - sm) * (t->seed_mean[si] - sm);
            t->seed_sd = ns > 1 ? sqrt(sq / (ns - 1)) : 0;
        }
    for (size_t i = 0; i < nm && !rc; i++)
        for (int b = 0; b < o->nbits && !rc && avail[i]; b++) {
            const pvec *x = &pv[i][ms[i].kind <= K_SFT ? 0 : b];
            pstat *t = &st[i][b];
            double m;
            for (int k = 0; k < NMET && !rc; k++)
                if (rs_boot_mean_ci(x->v[k], x->n, NBOOT, (uint64_t)o->seed, 0.05, &m, &t->lo[k], &t->hi[k]) != RS_OK)
                    rc = (cli_error(C, "bootstrap of %s: %s", dirs[i][b], rs_last_error()), 1);
            t->ok = !rc;
            const pvec *r = avail[iref] ? &pv[iref][b] : NULL;
            snprintf(t->ref, sizeof t->ref, "%s %s", ms[iref].name, o->bname[b]);
            if (rc || !r || i == iref || r->n != x->n || memcmp(r->line, x->line, (size_t)x->n * sizeof *x->line)) continue;
            for (int k = 0; k < NMET && !rc; k++)
                if (rs_boot_paired(x->v[k], r->v[k], x->n, NBOOT, (uint64_t)o->seed, 0.05, &t->diff[k], &t->dlo[k],
                                   &t->dhi[k], &t->p[k]) != RS_OK)
                    rc = (cli_error(C, "paired bootstrap of %s: %s", dirs[i][b], rs_last_error()), 1);
            t->paired = !rc;
        }
    for (size_t i = 0; i < nm; i++)
        for (int b = 0; b < MAXBITS; b++) pvec_free(&pv[i][b]);
    return rc;
}

/* ---- outputs ----------------------------------------------------------------------------------- */

static int write_outputs(const char *C, const char *name, paper_opts *o, const paper_method *ms, size_t nm,
                         pscore (*sc)[MAXBITS], char (*dirs)[MAXBITS][4300], const int *avail, pstat (*pst)[MAXBITS])
{
    char path[4300], tmp[4400];
    /* TSV: one line per method and bit setting */
    snprintf(path, sizeof path, "%s/%s.tsv", o->out, name);
    FILE *f = rs_atomic_open(path, tmp, sizeof tmp);
    if (!f) return cli_error(C, "cannot create '%s'", path), 1;
    /* base/SFT: one line per bit setting when there are several, for their comparison with
     * each setting's reference; the scores are the same on each */
    fprintf(f, "method\tbits\tR1\tR2\tRL\tRLsum\tmean\tn\tfolder\tmean_ci_lo\tmean_ci_hi\tvs\tvs_diff\tvs_ci_lo\t"
               "vs_ci_hi\tvs_p\tseeds\tseed_sd\n");
    for (size_t i = 0; i < nm; i++)
        for (int b = 0; b < o->nbits; b++) {
            if (!avail[i]) {
                fprintf(f, "%s\t%s\tNaN\tNaN\tNaN\tNaN\tNaN\t0\tnot available in this build\tNaN\tNaN\t-\tNaN\tNaN\tNaN\tNaN\t0\tNaN\n",
                        ms[i].name, o->bname[b]);
                continue;
            }
            const pscore *s = &sc[i][ms[i].kind <= K_SFT ? 0 : b];
            const pstat *t = &pst[i][b];
            fprintf(f, "%s\t%s\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%ld\t%s\t%.6f\t%.6f\t", ms[i].name,
                    ms[i].kind <= K_SFT ? "fp32" : o->bname[b], s->r1, s->r2, s->rl, s->rlsum, s->mean, s->n,
                    dirs[i][ms[i].kind <= K_SFT ? 0 : b], t->lo[4], t->hi[4]);
            if (t->paired) fprintf(f, "%s\t%.6f\t%.6f\t%.6f\t%.6f", t->ref, t->diff[4], t->dlo[4], t->dhi[4], t->p[4]);
            else fprintf(f, "-\tNaN\tNaN\tNaN\tNaN");
            fprintf(f, "\t%d\t%.6f\n", t->nseeds, t->seed_sd);
        }
    if (rs_atomic_close(f, tmp, path)) return cli_error(C, "cannot write '%s'", path), 1;
    /* chart data: rows = methods, per bit setting the ROUGE mean and its 95% CI (error bars) */
    snprintf(path, sizeof path, "%s/%s_chart.tsv", o->out, name);
    f = rs_atomic_open(path, tmp, sizeof tmp);
    if (!f) return cli_error(C, "cannot create '%s'", path), 1;
    fprintf(f, "method");
    for (int b = 0; b < o->nbits; b++) fprintf(f, "\t%s\t%s_ci_lo\t%s_ci_hi", o->bname[b], o->bname[b], o->bname[b]);
    fprintf(f, "\n");
    for (size_t i = 0; i < nm; i++) {
        if (!avail[i]) continue;
        fprintf(f, "%s", ms[i].name);
        for (int b = 0; b < o->nbits; b++) {
            const int bb = ms[i].kind <= K_SFT ? 0 : b;
            fprintf(f, "\t%.6f\t%.6f\t%.6f", sc[i][bb].mean, pst[i][bb].lo[4], pst[i][bb].hi[4]);
        }
        fprintf(f, "\n");
    }
    if (rs_atomic_close(f, tmp, path)) return cli_error(C, "cannot write '%s'", path), 1;
    /* JSON */
    cJSON *root = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(root, "rows");
    cJSON_AddStringToObject(root, "table", name);
    cJSON_AddStringToObject(root, "model", o->model);
    cJSON_AddStringToObject(root, "data", o->data);
    cJSON *st = cJSON_AddObjectToObject(root, "settings");
    cJSON_AddNumberToObject(st, "steps", o->steps);
    cJSON_AddNumberToObject(st, "batch", o->batch);
    cJSON_AddNumberToObject(st, "lr", o->lr);
    cJSON_AddNumberToObject(st, "max_len", o->max_len);
    cJSON_AddNumberToObject(st, "test_limit", (double)o->test_limit);
    cJSON_AddNumberToObject(st, "calib", o->calib);
    cJSON_AddNumberToObject(st, "seed", (double)o->seed);
    cJSON_AddNumberToObject(st, "seeds", o->seeds);
    cJSON_AddBoolToObject(st, "sweep", o->sweep);
    for (size_t i = 0; i < nm; i++)
        for (int b = 0; b < o->nbits; b++) {
            int bb = ms[i].kind <= K_SFT ? 0 : b;
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "method", ms[i].name);
            cJSON_AddStringToObject(r, "bits", ms[i].kind <= K_SFT ? "fp32" : o->bname[b]);
            cJSON_AddBoolToObject(r, "available", avail[i]);
            if (avail[i]) {
                const pscore *s = &sc[i][bb];
                cJSON_AddNumberToObject(r, "R1", s->r1);
                cJSON_AddNumberToObject(r, "R2", s->r2);
                cJSON_AddNumberToObject(r, "RL", s->rl);
                cJSON_AddNumberToObject(r, "RLsum", s->rlsum);
                cJSON_AddNumberToObject(r, "mean", s->mean);
                cJSON_AddNumberToObject(r, "n", (double)s->n);
                cJSON_AddStringToObject(r, "folder", dirs[i][bb]);
                cJSON_AddNumberToObject(r, "seeds", pst[i][bb].nseeds);
                if (pst[i][bb].nseeds > 1) {
                    cJSON *sm = cJSON_AddArrayToObject(r, "seed_means");
                    for (int si = 0; si < pst[i][bb].nseeds; si++) cJSON_AddItemToArray(sm, cJSON_CreateNumber(pst[i][bb].seed_mean[si]));
                    cJSON_AddNumberToObject(r, "seed_sd", pst[i][bb].seed_sd);
                }
                cJSON *ci = cJSON_AddObjectToObject(r, "ci95");
                cJSON_AddNumberToObject(ci, "resamples", NBOOT);
                for (int k = 0; k < NMET; k++) {
                    cJSON *a = cJSON_AddArrayToObject(ci, met_name[k]);
                    cJSON_AddItemToArray(a, cJSON_CreateNumber(pst[i][bb].lo[k]));
                    cJSON_AddItemToArray(a, cJSON_CreateNumber(pst[i][bb].hi[k]));
                }
                /* "paired": against the reference at this bit setting; base/SFT rows (one row
                 * for every setting): "paired_BITS" per setting */
                for (int b2 = 0; b2 < o->nbits; b2++) {
                    if (ms[i].kind > K_SFT && b2 != b) continue;
                    const pstat *t = &pst[i][b2];
                    if (!t->paired) continue;
                    char key[96];
                    if (ms[i].kind <= K_SFT) snprintf(key, sizeof key, "paired_%s", o->bname[b2]);
                    else snprintf(key, sizeof key, "paired");
                    cJSON *vs = cJSON_AddObjectToObject(r, key);
                    cJSON_AddStringToObject(vs, "against", t->ref);
                    cJSON_AddStringToObject(vs, "test", "paired bootstrap over the same prompts: this row minus the reference");
                    for (int k = 0; k < NMET; k++) {
                        cJSON *d = cJSON_AddObjectToObject(vs, met_name[k]);
                        cJSON_AddNumberToObject(d, "diff", t->diff[k]);
                        cJSON *a = cJSON_AddArrayToObject(d, "ci95");
                        cJSON_AddItemToArray(a, cJSON_CreateNumber(t->dlo[k]));
                        cJSON_AddItemToArray(a, cJSON_CreateNumber(t->dhi[k]));
                        cJSON_AddNumberToObject(d, "p", t->p[k]);
                    }
                }
            }
            if (ms[i].paper >= 0) {
                cJSON *p = cJSON_AddObjectToObject(r, "paper_W4A4KV4_mean");
                for (size_t k = 0; k < NPAPER; k++) cJSON_AddNumberToObject(p, paper_rows[k].model, paper_rows[k].v[ms[i].paper]);
            }
            cJSON_AddItemToArray(rows, r);
            if (ms[i].kind <= K_SFT) break;
        }
    char *js = cJSON_Print(root);
    cJSON_Delete(root);
    snprintf(path, sizeof path, "%s/%s.json", o->out, name);
    f = rs_atomic_open(path, tmp, sizeof tmp);
    if (!f || !js) {
        free(js);
        if (f) fclose(f), remove(tmp);
        return cli_error(C, "cannot create '%s'", path), 1;
    }
    fprintf(f, "%s\n", js);
    free(js);
    if (rs_atomic_close(f, tmp, path)) return cli_error(C, "cannot write '%s'", path), 1;
    return 0;
}

static void print_markdown(const char *title, paper_opts *o, const paper_method *ms, size_t nm, pscore (*sc)[MAXBITS],
                           const int *avail, int with_paper, pstat (*pst)[MAXBITS], size_t iref)
{
    printf("\n%s (ROUGE F x 100, stemmed; first %ld test pairs; 95%% percentile bootstrap CIs over the prompts, "
           "%d resamples; delta: paired bootstrap of the row minus %s at the same bits, two-sided p%s)\n\n| method |",
           title, o->test_limit, NBOOT, ms[iref].label,
           o->seeds > 1 ? "; SFT and QA-SFT rows: the mean over their seeds ± the seeds' sd, prompts' scores averaged over "
                          "the seeds for the CIs" : "");
    for (int b = 0; b < o->nbits; b++) printf(" %s R1 | R2 | RL | RLsum | mean [95%% CI] | delta vs %s [95%% CI], p |", o->bname[b], ms[iref].name);
    if (with_paper)
        for (size_t k = 0; k < NPAPER; k++) printf(" paper %s W4A4KV4 mean |", paper_rows[k].model);
    printf("\n|---|");
    for (int b = 0; b < o->nbits * 6 + (with_paper ? (int)NPAPER : 0); b++) printf("---|");
    printf("\n");
    for (size_t i = 0; i < nm; i++) {
        printf("| %s |", ms[i].label);
        for (int b = 0; b < o->nbits; b++) {
            if (!avail[i]) {
                printf(" n/a | n/a | n/a | n/a | n/a | n/a |");
                continue;
            }
            const pscore *s = &sc[i][ms[i].kind <= K_SFT ? 0 : b];
            const pstat *t = &pst[i][b];
            printf(" %.2f | %.2f | %.2f | %.2f | %.2f", 100 * s->r1, 100 * s->r2, 100 * s->rl, 100 * s->rlsum, 100 * s->mean);
            if (t->nseeds > 1) printf(" ± %.2f", 100 * t->seed_sd);
            printf(" [%.2f, %.2f] |", 100 * t->lo[4], 100 * t->hi[4]);
            if (t->paired)
                printf(" %+.2f [%+.2f, %+.2f], p %s%.3g |", 100 * t->diff[4], 100 * t->dlo[4], 100 * t->dhi[4],
                       t->p[4] <= 2.0 / (NBOOT + 1) ? "<= " : "", t->p[4]);
            else printf(" %s |", i == iref ? "(reference)" : "-");
        }
        if (with_paper)
            for (size_t k = 0; k < NPAPER; k++)
                ms[i].paper >= 0 ? printf(" %.2f |", paper_rows[k].v[ms[i].paper]) : printf(" - |");
        printf("\n");
    }
    for (size_t i = 0; i < nm; i++)
        if (!avail[i]) printf("\n%s: not available in this build ('llm ptq --method %s' unknown).\n", ms[i].label, ms[i].method);
    printf("\n");
}

static void draw_chart(const char *name, const char *title, const paper_opts *o)
{
    if (!plot_gnuplot_available()) {
        printf("gnuplot not found: %s_chart.tsv written, no chart drawn\n", name);
        return;
    }
    const char *text = plot_gp_text("table1");
    if (!text) return;
    const char *gp = getenv("ROSTESIM_GNUPLOT");
    char cmdline[4400];
    snprintf(cmdline, sizeof cmdline, "%s 2>/dev/null", gp && *gp ? gp : "gnuplot");
    FILE *p = popen(cmdline, "w");
    if (!p) return;
    fprintf(p, "datadir = \"%s\"\nname = \"%s\"\nttl = \"%s\"\nnbits = %d\n%s\n", o->out, name, title, o->nbits, text);
    if (pclose(p) == 0) printf("chart: %s/%s.png\n", o->out, name);
    else printf("gnuplot failed: no chart drawn (data in %s/%s_chart.tsv)\n", o->out, name);
}

/* ---- the commands ------------------------------------------------------------------------------ */

static int parse_bits(const char *C, paper_opts *o)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", o->bits);
    o->nbits = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int w, a, k, n = 0;
        if (o->nbits == MAXBITS) return cli_error(C, "--bits: at most %d settings", MAXBITS), 2;
        if (sscanf(t, "W%dA%dKV%d%n", &w, &a, &k, &n) != 3 || t[n] || w < 1 || w > 16 || a < 1 || a > 16 || k < 1 || k > 16)
            return cli_error(C, "--bits: '%s' is not like W4A4KV4 (bits 1-16)", t), 2;
        o->wb[o->nbits] = w, o->ab[o->nbits] = a, o->kb[o->nbits] = k;
        snprintf(o->bname[o->nbits], sizeof o->bname[0], "W%dA%dKV%d", w, a, k);
        o->nbits++;
    }
    return o->nbits ? 0 : (cli_error(C, "--bits: empty"), 2);
}

/* A --sweep grid list: 1 to 3 distinct numbers in [lo, hi], comma-separated. */
static int parse_grid(const char *C, const char *flag, const char *s, double *v, int *n, double lo, double hi)
{
    char buf[256], *end;
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        errno = 0;
        double x = strtod(t, &end);
        if (end == t || *end || errno || !(x >= lo && x <= hi))
            return cli_error(C, "%s: '%s' is not a number in [%g, %g]", flag, t, lo, hi), 2;
        if (*n == 3) return cli_error(C, "%s: at most 3 values", flag), 2;
        for (int k = 0; k < *n; k++)
            if (v[k] == x) return cli_error(C, "%s: %g given twice", flag, x), 2;
        v[(*n)++] = x;
    }
    return *n ? 0 : (cli_error(C, "%s: empty", flag), 2);
}

/* The cached steps are only valid for the settings that made them: OUT/settings.txt records
 * them on the first run and a rerun with different ones is refused (--bits, --sweep and
 * --threads may change: other bit settings and sweep cells live in their own folders). */
static int check_settings(const char *C, const paper_opts *o)
{
    char want[8192], path[4300], have[8192];
    snprintf(want, sizeof want, "model %s\ndata %s\nsteps %d\nbatch %d\nlr %.17g\nmax-len %d\ntest-limit %ld\ncalib %d\nseed %ld\n",
             o->model, o->data, o->steps, o->batch, o->lr, o->max_len, o->test_limit, o->calib, o->seed);
    /* grid runs of another length or scored on other validation rows are other cells; the
     * lines appear only when set, so folders of earlier runs stay valid */
    if (short_grid(o)) snprintf(want + strlen(want), sizeof want - strlen(want), "sweep-steps %d\n", o->sweep_steps);
    if (o->sweep && o->valid_limit != o->test_limit)
        snprintf(want + strlen(want), sizeof want - strlen(want), "valid-limit %ld\n", o->valid_limit);
    snprintf(path, sizeof path, "%s/settings.txt", o->out);
    FILE *f = fopen(path, "rb");
    if (f) {
        size_t n = fread(have, 1, sizeof have - 1, f);
        fclose(f);
        have[n] = 0;
        if (strcmp(have, want))
            return cli_error(C, "--out: '%s' holds steps of other settings (%s); use another --out or remove it", o->out, path), 2;
        return 0;
    }
    char tmp[4400];
    f = rs_atomic_open(path, tmp, sizeof tmp);
    if (!f) return cli_error(C, "cannot create '%s'", path), 1;
    fputs(want, f);
    return rs_atomic_close(f, tmp, path) ? (cli_error(C, "cannot write '%s'", path), 1) : 0;
}

/* ---- several processes (mpirun -np R) ----------------------------------------------------------- */

/* Collective: the largest of every rank's rc (0 when all succeeded). A rank that failed has
 * printed why; rank 0 says that the others stopped because of it (what, or a generic line). */
static int all_ok(const char *C, int rc, const char *what)
{
    int any = rc;
    if (rs_par_max_int(rc, &any) != RS_OK) return cli_error(C, "%s", rs_last_error()), 1;
    if (any && !rc && rs_par_rank() == 0)
        cli_error(C, "%s", what ? what : "stopped: another rank failed (its message is above)");
    return any;
}

/* FNV-1a of a file's bytes into *h; 0, or 1 when it cannot be read (then nothing is added
 * but its absence). */
static int hash_file(uint64_t *h, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *h = rs_par_hash(*h, "-", 1);
        return 1;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) *h = rs_par_hash(*h, buf, n);
    fclose(f);
    return 0;
}

/* Every rank must have been given the same job and see the same files: a hash of the command
 * line, of the data (train/validation/test), of the model's config.json and of its
 * weights' size is compared across the ranks. 0, or 2 (rank 0 prints the difference). */
static int check_ranks(const char *C, const paper_opts *o, int argc, char **argv)
{
    uint64_t h = RS_PAR_HASH0, hd = RS_PAR_HASH0;
    for (int i = 0; i < argc; i++) h = rs_par_hash(h, argv[i], strlen(argv[i]) + 1);
    int st = rs_par_check_same("the command line", h);
    if (st == RS_OK) {
        char p[4400];
        hash_file(&hd, o->train);
        hash_file(&hd, o->valid);
        hash_file(&hd, o->test);
        snprintf(p, sizeof p, "%s/config.json", o->model);
        hash_file(&hd, p);
        snprintf(p, sizeof p, "%s/model.safetensors", o->model);
        struct stat sb;
        long long size = stat(p, &sb) == 0 ? (long long)sb.st_size : -1;
        hd = rs_par_hash(hd, &size, sizeof size);
        st = rs_par_check_same("the files of --data and --model (train/validation/test.jsonl, config.json, the weights' size)",
                               hd);
    }
    if (st == RS_OK) return 0;
    if (rs_par_rank() == 0) cli_error(C, "%s", rs_last_error());
    rs_par_barrier(); /* rank 0's message out before any rank ends the job */
    return 2;
}

/* Every rank must see the --out of rank 0 (one shared folder: cells written by one rank are
 * read by rank 0): the settings.txt rank 0 has just written must be there. 0 or 2. */
static int shared_out(const char *C, const paper_opts *o)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/settings.txt", o->out);
    if (rs_par_rank() == 0 || is_file(path)) return 0;
    return cli_error(C, "rank %d does not see '%s', written by rank 0: --out must be a folder every rank shares (the same "
                     "path on a shared file system)", rs_par_rank(), path), 2;
}

/* One unit of work of a table spread over the ranks: a cell (train or quantize, score on test),
 * a grid point of a swept row (train, score on validation), or the choice of a swept row at a
 * seed (the grid's best on validation, trained again if need be, scored on test). Phase 1
 * needs nothing but --model; phase 2 the grid points' validation scores (the choices);
 * phase 3 the SFT model (the post-training baselines quantize it). */
enum { J_CELL = -1, J_CHOOSE = -2 }; /* else: grid point g */
enum { NPHASE = 3 };
typedef struct {
    int i, b, g, phase, cell, si; /* method, bit setting, J_* or g, phase, cells before it in table order, seed */
} pjob;

/* The cells in the order one process runs them (cell numbers as in its progress lines), each
 * in its phase; *n of them. NULL when out of memory. */
static pjob *table_jobs(const paper_opts *o, const paper_method *ms, size_t nm, const int *avail, int *n)
{
    pjob *j = malloc((nm * MAXBITS * (MAXGRID + MAXSEEDS) + 1) * sizeof *j);
    if (!j) return NULL;
    int k = 0, cell = 0;
    for (size_t i = 0; i < nm; i++) {
        if (!avail[i]) continue;
        for (int b = 0; b < o->nbits; b++) {
            const int ns = row_seeds(o, &ms[i]);
            if (swept(o, &ms[i])) {
                const int G = grid_n(o, &ms[i]), sh = short_grid(o);
                for (int g = 0; g < G; g++) j[k++] = (pjob){(int)i, b, g, 1, cell + g, 0};
                /* the choice at each seed: its cell after the grid's (the first seed's choice
                 * of a full-length grid is the grid point itself) */
                for (int si = 0; si < ns; si++)
                    j[k++] = (pjob){(int)i, b, J_CHOOSE, 2, sh ? cell + G + si : si ? cell + G + si - 1 : cell, si};
                cell += row_cells(o, &ms[i]);
            } else {
                /* the SFT model of the first seed is what the post-training rows quantize */
                for (int si = 0; si < ns; si++) j[k++] = (pjob){(int)i, b, J_CELL, ms[i].kind == K_PTQ ? 3 : 1, cell++, si};
            }
            if (ms[i].kind <= K_SFT) break;
        }
    }
    *n = k;
    return j;
}

/* The file a job writes last (its done-marker): the cell's test.json, a grid point's
 * validation.json, the chosen run's test.json. 0, or 1 while it cannot be named yet (a grid
 * point's validation score not on disk). */
static int job_marker(const paper_opts *o, const paper_method *ms, const pjob *J, char *path, size_t n)
{
    const paper_method *pm = &ms[J->i];
    char dir[4300];
    double lr, clip;
    if (J->g == J_CHOOSE) {
        if (chosen_dir(o, pm, J->b, J->si, dir, sizeof dir)) return 1;
    } else if (J->g >= 0) {
        grid_at(o, pm, J->g, &lr, &clip);
        cell_dir(o, pm, J->b, lr, clip, 1, 0, dir, sizeof dir);
    } else
        cell_dir(o, pm, J->b, o->lr, 1, 0, J->si, dir, sizeof dir);
    snprintf(path, n, "%s/%s.json", dir, J->g >= 0 ? "validation" : "test");
    return 0;
}

/* Seconds left for the cells from the current one on, from the rates measured so far in this
 * process and those recorded beside the cells it skipped as finished (train.json, SPLIT.json):
 * a row's own, else the mean over the rows measured; a kind of work not yet measured counts 0;
 * -1 while nothing is measured. Cells whose marker is on disk count 0. */
static double table_eta(const paper_opts *o)
{
    double ts = 0, tt = 0, es = 0, en = 0, ps = 0, pn = 0;
    for (int k = 0; k < 16 && o->rate[k].name; k++) {
        ts += o->rate[k].train_s, tt += o->rate[k].train_tok, es += o->rate[k].eval_s, en += o->rate[k].eval_n;
        ps += o->rate[k].ptq_s, pn += o->rate[k].ptq_n;
    }
    if (tt == 0 && en == 0 && pn == 0) return -1;
    int n = 0;
    pjob *jobs = table_jobs(o, o->ms, o->nm, o->avail, &n);
    if (!jobs) return 0;
    double eta = 0;
    const double full = (double)o->steps * o->batch * o->max_len;
    for (int t = 0; t < n; t++) {
        const pjob *J = &jobs[t];
        const paper_method *pm = &o->ms[J->i];
        char path[4400];
        if (J->cell < o->cell - 1 || (!job_marker(o, o->ms, J, path, sizeof path) && is_file(path))) continue;
        const prate *r = NULL;
        for (int k = 0; k < 16 && o->rate[k].name && !r; k++)
            if (!strcmp(o->rate[k].name, pm->name)) r = &o->rate[k];
        double tok = 0, prompts = J->g >= 0 ? (double)o->valid_limit : (double)o->test_limit;
        if (J->g >= 0) tok = (double)(short_grid(o) ? o->sweep_steps : o->steps) * o->batch * o->max_len;
        else if (pm->kind == K_SFT || pm->kind == K_QAT)
            tok = J->g == J_CELL || short_grid(o) || J->si > 0 ? full : 0;
        if (tok > 0) eta += tok * (r && r->train_tok > 0 ? r->train_s / r->train_tok : tt > 0 ? ts / tt : 0);
        eta += prompts * (r && r->eval_n > 0 ? r->eval_s / r->eval_n : en > 0 ? es / en : 0);
        if (pm->kind == K_PTQ) eta += r && r->ptq_n > 0 ? r->ptq_s / r->ptq_n : pn > 0 ? ps / pn : 0;
    }
    free(jobs);
    return eta;
}

/* The SFT model the post-training rows quantize: the first seed's (a swept SFT row: its
 * choice, the grid's scores on disk). 0, or 1 when it cannot be named yet. */
static int sft_model_path(const paper_opts *o, const paper_method *ms, size_t nm, char *path, size_t n)
{
    char dir[4300];
    for (size_t i = 0; i < nm; i++) {
        if (ms[i].kind != K_SFT) continue;
        if (swept(o, &ms[i])) {
            if (chosen_dir(o, &ms[i], 0, 0, dir, sizeof dir)) return 1;
        } else
            cell_dir(o, &ms[i], 0, o->lr, 1, 0, 0, dir, sizeof dir);
        snprintf(path, n, "%s/model", dir);
        return 0;
    }
    snprintf(path, n, "%s", "");
    return 0;
}

/* Until every job of the phase has its marker on disk: polled every 50 ms. A rank that fails
 * ends the job (main's MPI_Abort), so no rank waits for a marker that never comes; and a rank
 * that waits here does not spin in an MPI collective, taking a core from the cells still
 * running (ranks may share a machine). */
static void wait_markers(const paper_opts *o, const paper_method *ms, const pjob *jobs, int n, int phase)
{
    char path[4400];
    for (int t = 0; t < n; t++) {
        if (jobs[t].phase != phase) continue;
        while (job_marker(o, ms, &jobs[t], path, sizeof path) || !is_file(path)) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

/* mpirun -np R: the k-th job of each phase runs on rank k mod R, each `llm` command as a child
 * process (av_run); after each phase every rank waits for the others' markers. Every job
 * writes into its own folder of the shared --out with the markers of one process, so a killed
 * run resumes (on any number of ranks) and rank 0 then reads every cell as a rerun of one
 * process would. 0; or 1 when a job of this rank failed (message printed; main then ends
 * every rank). */
static int run_spread(const char *C, paper_opts *o, const paper_method *ms, size_t nm, const int *avail)
{
    const int R = rs_par_size(), me = rs_par_rank();
    int n = 0, rc = 0;
    pjob *jobs = table_jobs(o, ms, nm, avail, &n);
    if (!jobs) rc = 1, cli_error(C, "out of memory");
    char sft_model[4400] = "";
    if (me == 0) {
        int np[NPHASE + 1] = {0};
        for (int k = 0; k < n; k++) np[jobs[k].phase]++;
        printf("%s: %d ranks: %d jobs before the SFT model is needed (%d of them choices on validation), then %d; job k of "
               "each phase on rank k mod %d\n", C, R, np[1] + np[2], np[2], np[3], R);
        if (o->threads == 0)
            printf("%s: note: --threads 0: each step uses its rank's OpenMP default; GPTQ, QuaRot and RoSTE's search give "
                   "other bytes at another thread count, so give --threads to match a one-process run\n", C);
        fflush(stdout);
    }
    for (int phase = 1; phase <= NPHASE; phase++) {
        int k = 0;
        if (phase == NPHASE && sft_model_path(o, ms, nm, sft_model, sizeof sft_model)) {
            rc = (cli_error(C, "the SFT row's choice on validation is not on disk"), 1);
            break;
        }
        for (int t = 0; t < n && !rc; t++) {
            const pjob *J = &jobs[t];
            if (J->phase != phase || k++ % R != me) continue;
            const paper_method *pm = &ms[J->i];
            pscore s;
            char chosen[4300];
            o->cell = J->cell;
            o->si = 0;
            if (J->g >= 0) rc = grid_point(C, o, pm, J->b, J->g, sft_model, &s);
            else rc = run_cell(C, o, pm, J->b, J->si, sft_model, &s, chosen, sizeof chosen);
        }
        if (rc) {
            cli_error(C, "rank %d of %d stops the job; the steps finished so far are kept: rerun the same command to resume",
                      me, R);
            break;
        }
        wait_markers(o, ms, jobs, n, phase);
        if ((rc = all_ok(C, rc, NULL))) break;
    }
    free(jobs);
    return rc;
}

/* NAME_times.tsv: every cell of the table in the order one process runs them, with the wall time
 * recorded beside it when it ran (train.json: training or quantization; SPLIT.json: scoring),
 * and their totals (*train_s, *score_s): where a table's time goes, also over interrupted and
 * resumed runs or ranks. A folder listed twice (a full-length grid point that is also the
 * choice) shows its training once; a cell another table ran first shows that run's times. */
static int write_times(const char *C, const char *name, const paper_opts *o, const paper_method *ms, size_t nm,
                       const int *avail, double *train_s, double *score_s)
{
    int n = 0;
    pjob *jobs = table_jobs(o, ms, nm, avail, &n);
    char (*seen)[4300] = jobs ? calloc((size_t)n + 1, sizeof *seen) : NULL;
    if (!seen) return free(jobs), cli_error(C, "out of memory"), 1;
    char path[4300], tmp[4400];
    snprintf(path, sizeof path, "%s/%s_times.tsv", o->out, name);
    FILE *f = rs_atomic_open(path, tmp, sizeof tmp);
    if (!f) return free(jobs), free(seen), cli_error(C, "cannot create '%s'", path), 1;
    fprintf(f, "cell\trow\tsplit\ttrain_s\ttrain_tokens_per_s\tthreads\tscore_s\tprompts\n");
    static const char *const kt[] = {"elapsed_s", "tokens_per_s", "threads"}, *const ks[] = {"eval_seconds", "n"};
    double tt = 0, ts = 0;
    int nseen = 0;
    for (int t = 0; t < n; t++) {
        char mk[4300], dir[4300], tj[4400];
        if (job_marker(o, ms, &jobs[t], mk, sizeof mk)) continue;
        snprintf(dir, sizeof dir, "%s", mk);
        char *sl = strrchr(dir, '/');
        if (sl) *sl = 0;
        int dup = 0;
        for (int k = 0; k < nseen && !dup; k++) dup = !strcmp(seen[k], dir);
        if (!dup) snprintf(seen[nseen++], sizeof seen[0], "%s", dir);
        double vt[3] = {NAN, NAN, NAN}, vs[2] = {NAN, NAN};
        snprintf(tj, sizeof tj, "%s/train.json", dir);
        if (!dup) json_nums(tj, kt, vt, 3);
        json_nums(mk, ks, vs, 2);
        size_t lo = strlen(o->out);
        const char *rel = !strncmp(dir, o->out, lo) && dir[lo] == '/' ? dir + lo + 1 : dir;
        fprintf(f, "%s\t%s\t%s", rel, ms[jobs[t].i].name, jobs[t].g >= 0 ? "validation" : "test");
        const double v[5] = {vt[0], vt[1], vt[2], vs[0], vs[1]};
        for (int k = 0; k < 5; k++) {
            if (isnan(v[k])) fprintf(f, "\t-");
            else if (k == 2 || k == 4) fprintf(f, "\t%.0f", v[k]);
            else fprintf(f, "\t%.1f", v[k]);
        }
        fprintf(f, "\n");
        if (vt[0] >= 0) tt += vt[0];
        if (vs[0] >= 0) ts += vs[0];
    }
    fprintf(f, "total\t-\t-\t%.1f\t-\t-\t%.1f\t-\n", tt, ts);
    free(jobs), free(seen);
    if (rs_atomic_close(f, tmp, path)) return cli_error(C, "cannot write '%s'", path), 1;
    *train_s = tt, *score_s = ts;
    return 0;
}

static int paper_table(int argc, char **argv, int which)
{
    const char *C = which == 1 ? "paper table1" : "paper table3";
    paper_opts o = {0};
    o.model = "data/base-tiny", o.data = "data/debian-tldr", o.out = which == 1 ? "out/table1" : "out/table3";
    o.bits = "W4A4KV4", o.steps = 600, o.batch = 8, o.max_len = 128, o.calib = 128, o.lr = 1e-3;
    o.test_limit = 300, o.seed = 42, o.seeds = 1;
    /* --preset first: its values are defaults the other flags override */
    const char *preset = NULL;
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--preset") && k + 1 < argc) preset = argv[k + 1];
        else if (!strncmp(argv[k], "--preset=", 9)) preset = argv[k] + 9;
    }
    if (preset && strcmp(preset, "smollm2"))
        return cli_error(C, "--preset: '%s' is not a preset (known: smollm2)", preset), 2;
    if (preset) {
        /* SmolLM2-135M-Instruct (make smollm2) on the Debian TL;DR data, sized for about 3 hours
         * on 2 cores (README: the budget, cell by cell) */
        o.model = "data/smollm2", o.out = "out/smollm2"; /* both tables: table3 reuses table1's cells */
        o.steps = 50, o.batch = 8, o.max_len = 128, o.calib = 64, o.lr = 5e-5, o.test_limit = 500, o.seeds = 2;
        o.sweep = 1, o.sweep_lr_s = "1,2", o.sweep_clip_s = "1,0.9", o.sweep_steps = 15, o.valid_limit = 100;
    }
    cli_opt opts[] = {
        {"--model", OPT_STRING, &o.model, 0, -1, "DIR", "base model (Hugging Face checkpoint folder)", 0},
        {"--data", OPT_STRING, &o.data, 0, -1, "DIR", "folder with train.jsonl, validation.jsonl, test.jsonl", 0},
        {"--out", OPT_STRING, &o.out, 0, -1, "DIR", "output folder (one sub-folder per step; reused to resume)", 0},
        {"--bits", OPT_STRING, &o.bits, 0, -1, "LIST", "bit settings, comma-separated, e.g. W4A4KV4,W4A8KV4", 0},
        {"--steps", OPT_INT, &o.steps, 1, 100000000, "N", "optimizer steps of SFT and QA-SFT", 0},
        {"--batch", OPT_INT, &o.batch, 1, 4096, "B", "rows per step", 0},
        {"--lr", OPT_DOUBLE, &o.lr, 1e-12, 10, "LR", "peak learning rate (cosine, 3% warm-up)", 0},
        {"--max-len", OPT_INT, &o.max_len, 1, 1 << 20, "T", "tokens per training / calibration row", 0},
        {"--test-limit", OPT_LONG, &o.test_limit, 1, 1000000000L, "N", "ROUGE on the first N rows of test (and validation)", 0},
        {"--calib", OPT_INT, &o.calib, 1, 1000000, "N", "calibration rows (GPTQ, QuaRot, RoSTE's search)", 0},
        {"--seed", OPT_LONG, &o.seed, 0, 2147483647L, "S", "seed of the training order", 0},
        {"--seeds", OPT_INT, &o.seeds, 1, MAXSEEDS, "K", "SFT and QA-SFT rows trained with seeds S..S+K-1: mean and spread", 0},
        {"--sweep", OPT_FLAG, &o.sweep, 0, -1, NULL, "SFT: lr grid, QA-SFT: lr x clip grid, chosen on validation", 0},
        {"--sweep-lr", OPT_STRING, &o.sweep_lr_s, 0, -1, "LIST", "--sweep: lr multipliers of --lr (1-3, default 0.5,1,2)", 0},
        {"--sweep-clip", OPT_STRING, &o.sweep_clip_s, 0, -1, "LIST", "--sweep: clipping factors, QA-SFT (1-3, default 1,0.95,0.9)", 0},
        {"--sweep-steps", OPT_INT, &o.sweep_steps, 0, 100000000, "N", "--sweep: steps of a grid run (0: --steps); fewer: the choice is trained again in full", 0},
        {"--valid-limit", OPT_LONG, &o.valid_limit, 0, 1000000000L, "N", "--sweep: ROUGE on the first N rows of validation (0: --test-limit)", 0},
        {"--threads", OPT_INT, &o.threads, 0, 1024, "N", "threads (0: OpenMP default)", 0},
        {"--preset", OPT_STRING, &preset, 0, -1, "NAME", "smollm2: the real-model comparison's settings (other flags override them)", 0},
    };
    const char *desc1 =
        "The paper's Table 1 (ROSTE.md §6) at CPU scale: Base (evaluated only), SFT (full\n"
        "precision, from --model), then per --bits setting the post-training baselines RTN,\n"
        "GPTQ, QuaRot (GPTQ weights, clips 0.9/0.95) and SpinQuant (when this build's 'llm ptq'\n"
        "has it) applied to the SFT model, and QA-SFT with STE and RoSTE from --model. Each is\n"
        "scored by greedy generation (32 new tokens) and ROUGE-1/2/L/Lsum F (stemmed) and their\n"
        "mean on the first --test-limit rows of DATA/test.jsonl; the markdown table is printed\n"
        "beside the paper's W4A4KV4 means (Qwen2.5-0.5B, Pythia-1B) for the shape comparison.\n";
    const char *desc3 =
        "The paper's Table 3 (rotation ablation) at CPU scale: RoSTE QA-SFT from --model with\n"
        "no rotation, every rotation (R1-R4 in every layer) and the adaptive (searched)\n"
        "rotations, per --bits setting, scored as in 'paper table1'. RoSTE with no rotation is\n"
        "STE (the same weights, byte for byte) and the adaptive row is table1's RoSTE: those two\n"
        "rows run table1's commands in table1's folders (BITS/ste, BITS/roste), so table3 given\n"
        "the --out of a finished table1 with the same settings trains only the every-rotation row.\n";
    const char *common =
        "\nEvery step runs one 'rostesim llm ...' subcommand in-process and prints its exact\n"
        "command line, so any cell can be rerun by hand. Steps write into their own folder of\n"
        "--out (base/, sft/, BITS/METHOD/) and finish with a marker (train.done after training,\n"
        "test.json / validation.json holding the scores, written atomically); a step whose marker\n"
        "exists is skipped, so rerunning an interrupted command resumes it. --out/settings.txt\n"
        "records the settings; a rerun with other ones (but --bits, --sweep, --seeds, --threads) is\n"
        "refused.\n\n"
        "--preset smollm2: --model data/smollm2 (SmolLM2-135M-Instruct: 'make smollm2'), --out\n"
        "out/smollm2 (both tables), --steps 50 --batch 8 --max-len 128 --lr 5e-5 --calib 64\n"
        "--test-limit 500 --seeds 2 --sweep --sweep-lr 1,2 --sweep-clip 1,0.9 --sweep-steps 15\n"
        "--valid-limit 100: lr (and the QA-SFT rows' clipping) chosen on 100 validation prompts\n"
        "after 15-step runs, then 50 steps with two seeds, scored on 500 test prompts. Flags\n"
        "given override.\n\n"
        "--seeds K: SFT and QA-SFT rows are trained K times, with --seed S, S+1, ... (seeds after\n"
        "the first in folders METHOD-sSEED); a row reports the mean over its seeds and their\n"
        "standard deviation, and its CIs resample the prompts' scores averaged over the seeds.\n"
        "The post-training rows quantize the first seed's SFT model.\n\n"
        "Statistics: every cell's ROUGE mean with a 95% percentile-bootstrap CI over the test\n"
        "prompts, and every row's paired bootstrap (the same prompts) against RoSTE at the same\n"
        "bits (table3: the adaptive rotations): mean difference, its 95% CI, two-sided p.\n\n"
        "--sweep (QA-SFT rows): lr in {0.5, 1, 2} x --lr and clipping factor c in {1, 0.95, 0.9}\n"
        "(--wclip = --aclip = --kvclip = c), nine runs per row and bit setting in folders\n"
        "METHOD-lrLR-cC (first seed), each scored on the first --test-limit rows of\n"
        "DATA/validation.jsonl; the best mean (ties: the first in that order) is then scored on\n"
        "test (and trained with the other seeds). Test is never used for the choice.\n\n"
        "Writes NAME.tsv, NAME.json, NAME_chart.tsv and NAME.png (grouped bars of the ROUGE mean\n"
        "with their 95% CIs as error bars, gnuplot) into --out, NAME being table1 or table3, and NAME_times.tsv: every cell's wall\n"
        "time as recorded beside it (training or quantization, scoring) and their total, also\n"
        "over interrupted and resumed runs. Deterministic (fixed seeds; but the times).\n\n"
        "Under 'mpirun -np R' the steps are spread over the ranks (each a child process; the SFT\n"
        "model first, then the baselines that quantize it), --out must be one folder every rank\n"
        "sees, and rank 0 writes the tables: the same files as one process with the same\n"
        "--threads (docs/MPI.md).";
    char descbuf[8192];
    snprintf(descbuf, sizeof descbuf, "%s%s", which == 1 ? desc1 : desc3, common);
    cli_cmd cmd = {C, "[--model DIR] [--data DIR] [--out DIR] [--bits LIST] [options]", descbuf, opts,
                   sizeof opts / sizeof opts[0], 0, 0,
                   which == 1 ? "examples:\n  rostesim paper table1\n"
                                "  make smollm2 && rostesim paper table1 --preset smollm2\n"
                                "  rostesim paper table1 --bits W4A4KV4,W4A8KV4 --sweep --out out/table1-sweep\n"
                                "  rostesim paper table1 --model my-base --data my-data --steps 200 --test-limit 100"
                              : "examples:\n  rostesim paper table3 --bits W4A4KV4\n"
                                "  make smollm2 && rostesim paper table3 --preset smollm2"};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    int rc = parse_bits(C, &o);
    if (rc) return rc;
    if ((rc = parse_grid(C, "--sweep-lr", o.sweep_lr_s ? o.sweep_lr_s : "0.5,1,2", o.glr, &o.nglr, 1e-6, 1e6)) ||
        (rc = parse_grid(C, "--sweep-clip", o.sweep_clip_s ? o.sweep_clip_s : "1,0.95,0.9", o.gclip, &o.ngclip, 0.05, 1)))
        return rc;
    if (!o.sweep && !preset && (o.sweep_lr_s || o.sweep_clip_s || o.sweep_steps || o.valid_limit))
        return cli_error(C, "--sweep-lr, --sweep-clip, --sweep-steps and --valid-limit only with --sweep"), 2;
    if (!o.valid_limit) o.valid_limit = o.test_limit;
    char mc[4300];
    snprintf(mc, sizeof mc, "%s/config.json", o.model);
    if (!is_file(mc))
        return cli_error(C, "--model: '%s' has no config.json%s", o.model,
                         !strcmp(o.model, "data/base-tiny") ? " (build the embedded default with 'make model')"
                         : !strcmp(o.model, "data/smollm2") ? " (import SmolLM2-135M-Instruct with 'make smollm2')" : ""), 2;
    /* a partial folder (an interrupted copy or import) fails here, not hours later */
    {
        char wf[4300], wi[4300], tf[4300];
        snprintf(wf, sizeof wf, "%s/model.safetensors", o.model);
        snprintf(wi, sizeof wi, "%s/model.safetensors.index.json", o.model);
        snprintf(tf, sizeof tf, "%s/tokenizer.json", o.model);
        if (!is_file(wf) && !is_file(wi))
            return cli_error(C, "--model: '%s' has config.json but no model.safetensors (a partial folder?)", o.model), 2;
        if (!is_file(tf)) return cli_error(C, "--model: '%s' has no tokenizer.json (a partial folder?)", o.model), 2;
    }
    snprintf(o.train, sizeof o.train, "%s/train.jsonl", o.data);
    snprintf(o.valid, sizeof o.valid, "%s/validation.jsonl", o.data);
    snprintf(o.test, sizeof o.test, "%s/test.jsonl", o.data);
    if (!is_file(o.train) || !is_file(o.test) || (o.sweep && !is_file(o.valid)))
        return cli_error(C, "--data: '%s' needs train.jsonl, validation.jsonl (--sweep) and test.jsonl", o.data), 2;
    const int R = rs_par_size(), me = rs_par_rank();
    if (R > 1 && (rc = check_ranks(C, &o, argc, argv))) return rc;
    /* --out and settings.txt: rank 0 writes them, every rank learns the outcome */
    if (me == 0) rc = mkdir_p(C, o.out) ? 1 : check_settings(C, &o);
    if (R > 1 && (rc = all_ok(C, rc, NULL)) == 0 &&
        (rc = all_ok(C, shared_out(C, &o), "stopped: a rank does not see --out (its message is above)")))
        return rc;
    if (rc) return rc;

    const paper_method *ms = which == 1 ? table1_methods : table3_methods;
    size_t nm = which == 1 ? sizeof table1_methods / sizeof *table1_methods : sizeof table3_methods / sizeof *table3_methods;
    int avail[16];
    pscore sc[16][MAXBITS];
    static char dirs[16][MAXBITS][4300];
    memset(sc, 0, sizeof sc);
    o.ncells = 0;
    for (size_t i = 0; i < nm; i++) {
        avail[i] = ms[i].available();
        if (!avail[i] && me == 0) printf("%s: %s not available in this build: its row is left empty\n", C, ms[i].label);
        else if (avail[i])
            o.ncells += (ms[i].kind <= K_SFT ? 1 : o.nbits) *
                        row_cells(&o, &ms[i]);
    }
    o.t0 = now_s();
    o.ms = ms, o.nm = nm, o.avail = avail;
    if (me == 0)
        printf("%s: %d steps into %s (model %s, data %s, %d steps x %d rows, lr %g, max-len %d, %ld test rows)\n", C,
               o.ncells, o.out, o.model, o.data, o.steps, o.batch, o.lr, o.max_len, o.test_limit);
    if (R > 1) {
        if ((rc = run_spread(C, &o, ms, nm, avail))) return rc;
        if (me != 0) return 0;
        printf("%s: every rank's steps done in %.1f s; rank 0 reads them into the table\n", C, now_s() - o.t0);
        o.cell = 0;
    }
    char sft_model[4400] = "";
    static char sdirs[16][MAXBITS][MAXSEEDS][4300];
    static pscore ss[16][MAXBITS][MAXSEEDS];
    for (size_t i = 0; i < nm && !rc; i++) {
        if (!avail[i]) continue;
        for (int b = 0; b < o.nbits && !rc; b++) {
            const int ns = row_seeds(&o, &ms[i]);
            for (int si = 0; si < ns && !rc; si++)
                rc = run_cell(C, &o, &ms[i], b, si, sft_model, &ss[i][b][si], sdirs[i][b][si], sizeof sdirs[i][b][si]);
            if (rc) break;
            /* the row's scores: the mean over its seeds */
            pscore *m = &sc[i][b];
            *m = ss[i][b][0];
            for (int si = 1; si < ns; si++) {
                m->r1 += ss[i][b][si].r1, m->r2 += ss[i][b][si].r2, m->rl += ss[i][b][si].rl;
                m->rlsum += ss[i][b][si].rlsum, m->mean += ss[i][b][si].mean;
            }
            m->r1 /= ns, m->r2 /= ns, m->rl /= ns, m->rlsum /= ns, m->mean /= ns;
            snprintf(dirs[i][b], sizeof dirs[i][b], "%s", sdirs[i][b][0]);
            if (ms[i].kind == K_SFT) snprintf(sft_model, sizeof sft_model, "%.4300s/model", dirs[i][b]);
            if (ms[i].kind <= K_SFT) break;
        }
    }
    if (rc) return rc;
    printf("%s: all steps done in %.1f s\n", C, now_s() - o.t0);
    const char *name = which == 1 ? "table1" : "table3";
    /* the reference of the paired comparisons: RoSTE (table1), the adaptive rotations (table3) */
    size_t iref = nm - 1;
    static pstat pst[16][MAXBITS];
    memset(pst, 0, sizeof pst);
    if ((rc = table_stats(C, &o, ms, nm, sdirs, ss, avail, iref, pst))) return rc;
    if ((rc = write_outputs(C, name, &o, ms, nm, sc, dirs, avail, pst))) return rc;
    double trs = 0, scs = 0;
    if ((rc = write_times(C, name, &o, ms, nm, avail, &trs, &scs))) return rc;
    print_markdown(which == 1 ? "Table 1: PTQ baselines and QA-SFT against full-precision SFT"
                              : "Table 3: RoSTE's rotations (none / every / adaptive)",
                   &o, ms, nm, sc, avail, which == 1, pst, iref);
    char dtr[32], dsc[32], dto[32];
    fmt_dur(dtr, sizeof dtr, trs), fmt_dur(dsc, sizeof dsc, scs), fmt_dur(dto, sizeof dto, trs + scs);
    printf("time recorded beside the cells: %s (training and quantization %s, scoring %s; per cell in %s_times.tsv)\n",
           dto, dtr, dsc, name);
    printf("wrote %s/%s.tsv, %s/%s.json, %s/%s_chart.tsv, %s/%s_times.tsv\n", o.out, name, o.out, name, o.out, name, o.out,
           name);
    draw_chart(name, which == 1 ? "Table 1: ROUGE mean per method" : "Table 3: RoSTE rotation ablation, ROUGE mean", &o);
    return 0;
}

static int paper_table1(int argc, char **argv) { return paper_table(argc, argv, 1); }
static int paper_table3(int argc, char **argv) { return paper_table(argc, argv, 3); }

int cmd_paper(int argc, char **argv)
{
    static const cli_sub subs[] = {
        {"table1", paper_table1, "Base, SFT, RTN, GPTQ, QuaRot, SpinQuant, STE, RoSTE: ROUGE table and chart"},
        {"table3", paper_table3, "RoSTE's rotation ablation: none / every rotation / adaptive"},
    };
    return cli_dispatch("paper", "The RoSTE paper's comparisons run at CPU scale on the embedded task (or --model/--data).",
                        subs, sizeof subs / sizeof subs[0], argc, argv);
}
