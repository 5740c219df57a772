/* rostesim llm: the LLM subcommands (sft, eval, generate, export-int, info, init). Thin: parse,
 * check, call llm/, print. Exit codes: 0 success, 1 runtime failure, 2 usage error. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "llm/io/fileio.h"
#include "cli/commands.h"
#include "llm/eval/generate.h"
#include "cli/par_cli.h"
#include "llm/io/config.h"
#include "llm/train/data.h"
#include "llm/quantize/intq.h"
#include "llm/quantize/intq_kernels.h"
#include "llm/nn/model.h"
#include "llm/quantize/qat.h"
#include "llm/nn/sample.h"
#include "llm/text/tokenizer.h"
#include "llm/train/train.h"
#include "quant/fsutil.h"
#include "par/par.h"
#include "quant/rng.h"
#include "quant/status.h"

#define CKPT_NAME "trainer_state.bin"
#define LOG_NAME "train_log.jsonl"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* A runtime failure of the library: print its message, exit code 1. */
static int lib_fail(const char *cmd) { return cli_error(cmd, "%s", rs_last_error()), 1; }

/* mkdir -p through rs_mkdir_p; a failure is printed; returns 0 or 1. */
static int mkdir_p(const char *cmd, const char *dir)
{
    return rs_mkdir_p(dir) == RS_OK ? 0 : (cli_error(cmd, "%s", rs_last_error()), 1);
}

static void set_threads(int n)
{
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

/* --model DIR: a folder with config.json (usage error when not); returns 0 or an exit code. */
static int check_model_dir(const char *cmd, const char *flag, const char *dir)
{
    char p[4200];
    if (!dir) return cli_error(cmd, "%s DIR is required (see --help)", flag), 2;
    if (!is_dir(dir)) return cli_error(cmd, "%s: '%s' is not a folder", flag, dir), 2;
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (!is_file(p)) return cli_error(cmd, "%s: '%s' has no config.json (not a Hugging Face checkpoint folder)", flag, dir), 2;
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (!is_file(p)) return cli_error(cmd, "%s: '%s' has no tokenizer.json", flag, dir), 2;
    return 0;
}

static int load_tok(const char *cmd, const char *dir, tok_tokenizer **tok)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (tok_load(tok, p) != RS_OK) return lib_fail(cmd);
    return 0;
}

/* Model weights and tokenizer of a checkpoint folder, its eos and pad ids. */
static int load_model(const char *cmd, const char *dir, llm_model **m, tok_tokenizer **tok, int *eos, int *pad)
{
    int rc = check_model_dir(cmd, "--model", dir);
    if (rc) return rc;
    if ((rc = load_tok(cmd, dir, tok))) return rc;
    if (llm_qat_load_model(m, dir) != RS_OK) return lib_fail(cmd);
    if (eos && llm_special_ids(&(*m)->cfg, dir, *tok, eos, pad) != RS_OK) return lib_fail(cmd);
    return 0;
}

/* --max-len: 0 = min(512, max_pos); more than max_pos is a usage error. */
static int resolve_max_len(const char *cmd, int *max_len, const llm_config *c)
{
    if (*max_len == 0) *max_len = c->max_pos < 512 ? c->max_pos : 512;
    if (*max_len > c->max_pos)
        return cli_error(cmd, "--max-len: %d exceeds the model's max_position_embeddings %d", *max_len, c->max_pos), 2;
    if (*max_len < 2) return cli_error(cmd, "--max-len: must be at least 2 (the model has %d positions)", c->max_pos), 2;
    return 0;
}

static int load_data(const char *cmd, const char *path, const char *model_dir, const llm_config *cfg,
                     const tok_tokenizer *tok, int max_len, int full_loss, int eos, int pad, llm_dataset **ds)
{
    llm_data_opts o = {max_len, full_loss, eos};
    if (llm_data_load(ds, path, tok, &o) != RS_OK) return lib_fail(cmd);
    char tn[4200];
    snprintf(tn, sizeof tn, "%s/tokenizer.json", model_dir);
    if (llm_data_check_vocab(*ds, cfg->vocab, pad, tn, model_dir) != RS_OK) return lib_fail(cmd);
    return 0;
}

static int parse_sched(const char *cmd, const char *s, llm_sched *out)
{
    for (int k = 0; k < 3; k++)
        if (!strcmp(s, llm_sched_name((llm_sched)k))) {
            *out = (llm_sched)k;
            return 0;
        }
    return cli_error(cmd, "--schedule: '%s' is not one of: cosine, linear, constant", s), 2;
}

/* ---- sft ------------------------------------------------------------------------------- */

typedef struct {
    FILE *log;
    double t0, last_print;
    long first_step, steps_run;
    double first_loss, last_loss;
    long ninput, ntok;
    int tty, quiet;
    const llm_sft_hooks *hooks; /* llm qat */
    double every;               /* seconds between progress lines (--progress) */
} sft_ctx;

static void fmt_eta(char *buf, size_t n, double s)
{
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* One train_log.jsonl record; tps < 0: speed and time unknown (written as null). */
static void log_record(FILE *f, const llm_train_stats *s, double tps, double el, const char *extra)
{
    char sp[64], tm[64];
    if (tps < 0) snprintf(sp, sizeof sp, "null"), snprintf(tm, sizeof tm, "null");
    else snprintf(sp, sizeof sp, "%.1f", tps), snprintf(tm, sizeof tm, "%.3f", el);
    fprintf(f,
            "{\"step\": %ld, \"total\": %ld, \"epoch\": %ld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, "
            "\"tokens\": %ld, \"tokens_per_s\": %s, \"elapsed_s\": %s, \"checkpoint\": %s%s}\n",
            s->step, s->total, s->epoch, s->loss, s->lr, s->grad_norm, s->ntok, sp, tm, s->saved ? "true" : "false",
            extra ? extra : "");
    fflush(f);
}

static int sft_progress(void *vctx, const llm_train_stats *s)
{
    sft_ctx *c = vctx;
    double t = now_s(), el = t - c->t0;
    if (c->steps_run == 0) {
        c->first_step = s->step;
        c->first_loss = s->loss;
    }
    c->steps_run++;
    c->last_loss = s->loss;
    c->ninput += s->ninput;
    c->ntok += s->ntok;
    double tps = el > 0 ? (double)c->ninput / el : 0;
    char extra[512] = "";
    int stop = c->hooks && c->hooks->after_step ? c->hooks->after_step(c->hooks->ctx, s, extra, sizeof extra) : 0;
    if (c->log) log_record(c->log, s, tps, el, extra); /* rank 0 alone logs */
    if (!c->quiet && (c->steps_run == 1 || s->step == s->total || t - c->last_print >= c->every)) {
        c->last_print = t;
        char eta[32];
        fmt_eta(eta, sizeof eta, el / (double)c->steps_run * (double)(s->total - s->step));
        fprintf(stderr, "%sstep %ld/%ld  loss %.4f  lr %.3e  grad norm %.3f  %.0f tok/s  ETA %s%s%s", c->tty ? "\r" : "",
                s->step, s->total, s->loss, s->lr, s->grad_norm, tps, eta, s->saved ? "  (checkpoint)" : "",
                c->tty && s->step != s->total ? "   " : "\n");
        fflush(stderr);
    }
    return stop;
}

/* Keep the complete records of the log whose step is <= the checkpoint's (rewritten
 * atomically); the checkpoint's own step is logged from its statistics when a kill came
 * between writing the checkpoint and logging the step. */
static int truncate_log(const char *cmd, const char *path, const llm_train_stats *last)
{
    long step = last ? last->step : 0, seen = 0;
    FILE *f = fopen(path, "rb");
    llm_atomic a;
    if (llm_atomic_open(&a, path, 0)) {
        if (f) fclose(f);
        return cli_error(cmd, "cannot write '%s': %s", a.tmp, strerror(a.err)), 1;
    }
    FILE *o = a.f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (f && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') break; /* a record cut by a crash */
        const char *p = strstr(line, "\"step\":");
        long s;
        if (!p || sscanf(p + 7, "%ld", &s) != 1 || s > step || s <= seen) continue;
        fwrite(line, 1, (size_t)n, o);
        seen = s;
    }
    free(line);
    if (f) fclose(f);
    if (last && seen < step) log_record(o, last, -1, 0, NULL);
    if (llm_atomic_commit(&a, 1)) return cli_error(cmd, "cannot rewrite '%s': %s", path, strerror(a.err)), 1;
    return 0;
}

static int cmd_llm_sft(int argc, char **argv) { return cmd_llm_sft_hooked(argc, argv, NULL); }

int cmd_llm_sft_hooked(int argc, char **argv, const llm_sft_hooks *h)
{
    char cname[64];
    const char *C = par_cli_name(h ? h->name : "llm sft", cname, sizeof cname); /* "(rank r)" on r > 0 */
    const int rank = rs_par_rank(), R = rs_par_size();
    llm_train_opts to;
    llm_train_opts_default(&to);
    const char *model = NULL, *data = NULL, *out = NULL, *sched = "cosine";
    double lr = 2e-5, warmup = 0.0, wd = 0.0, clip = 1.0;
    int epochs = 1, batch = 1, accum = 1, max_len = 0, resume = 0, full_loss = 0, threads = 0, quiet = 0, zero1 = 0;
    long max_steps = 0, seed = 42, save_every = 0;
    double every = 0.5;
    cli_opt opts[] = {
        {"--model", OPT_STRING, &model, 0, -1, "DIR", "Hugging Face checkpoint folder to fine-tune (required)", 0},
        {"--data", OPT_STRING, &data, 0, -1, "FILE", ".jsonl with prompt/completion lines, or .txt (required)", 0},
        {"--out", OPT_STRING, &out, 0, -1, "DIR", "output folder (required)", 0},
        {"--lr", OPT_DOUBLE, &lr, 1e-12, 1.0, "LR", "peak learning rate", 0},
        {"--epochs", OPT_INT, &epochs, 1, 100000, "E", "passes over the data (ignored with --max-steps)", 0},
        {"--max-steps", OPT_LONG, &max_steps, 0, 1000000000L, "N", "optimizer steps (0: from --epochs)", 0},
        {"--batch", OPT_INT, &batch, 1, 4096, "B", "rows per micro-batch", 0},
        {"--grad-accum", OPT_INT, &accum, 1, 65536, "K", "micro-batches per optimizer step", 0},
        {"--max-len", OPT_INT, &max_len, 0, 1 << 20, "T", "tokens per row, longer rows keep their start (0: min(512, model))", 0},
        {"--warmup", OPT_DOUBLE, &warmup, 0, 1, "RATIO", "warm-up steps as a ratio of all steps (ceil)", 0},
        {"--schedule", OPT_STRING, &sched, 0, -1, "S", "learning-rate schedule: cosine, linear, constant", 0},
        {"--weight-decay", OPT_DOUBLE, &wd, 0, 10, "WD", "AdamW decoupled weight decay, on ALL parameters", 0},
        {"--clip-grad", OPT_DOUBLE, &clip, 0, 1e6, "N", "max global gradient norm (0: no clipping)", 0},
        {"--seed", OPT_LONG, &seed, 0, 2147483647L, "S", "seed of the shuffle order", 0},
        {"--save-every", OPT_LONG, &save_every, 0, 1000000000L, "N", "checkpoint every N steps (0: never)", 0},
        {"--resume", OPT_FLAG, &resume, 0, -1, NULL, "continue from the checkpoint in --out (same options and data)", 0},
        {"--full-loss", OPT_FLAG, &full_loss, 0, -1, NULL, "JSONL: prompt tokens in the loss too (default: completion only)", 0},
        {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: OpenMP default; per rank under mpirun)", 0},
        {"--quiet", OPT_FLAG, &quiet, 0, -1, NULL, "no progress lines on stderr", 0},
        {"--progress", OPT_DOUBLE, &every, 0, 86400, "S", "a progress line (loss, tokens/s, ETA) every S seconds (the first and last step always)", 0},
        {"--zero1", OPT_FLAG, &zero1, 0, -1, NULL, "under mpirun: shard the AdamW moments over the ranks (ZeRO-1)", 0},
    };
    cli_cmd cmd = {
        C, "--model DIR --data FILE --out DIR [options]",
        h && h->description ? h->description : "Supervised fine-tuning in fp32 on the CPU with AdamW (torch.optim.AdamW semantics;\n"
        "betas 0.9/0.999, eps 1e-8; weight decay applies to every parameter, biases and norms\n"
        "included), global-norm gradient clipping and a warm-up + cosine/linear/constant\n"
        "schedule (as Hugging Face's get_*_schedule_with_warmup).\n\n"
        "Data: JSONL lines {\"prompt\": ..., \"completion\": ...} (trl-lib/tldr layout): a row is\n"
        "prompt (with the tokenizer's special tokens) + completion + eos, and the loss covers\n"
        "the completion and the eos unless --full-loss. A .txt file is tokenized whole and cut\n"
        "into --max-len blocks, every token in the loss. Rows longer than --max-len keep their\n"
        "first tokens; rows left with nothing in the loss are skipped (and counted).\n\n"
        "One optimizer step takes --batch x --grad-accum rows; the loss is the mean over the\n"
        "target tokens of the WHOLE step (each micro-batch's gradient is weighted by\n"
        "1/tokens-in-the-step), so accumulating K micro-batches equals one K-times-larger batch.\n"
        "The rows are shuffled per epoch from --seed.\n\n"
        "Writes into --out: config.json, model.safetensors and the tokenizer files at the end,\n"
        "train_log.jsonl (one record per step), and trainer_state.bin every --save-every steps\n"
        "(written to a temporary name and renamed; removed when the run completes). After an\n"
        "interruption, --resume continues from that checkpoint and ends with the same\n"
        "model.safetensors bytes as an uninterrupted run, given the same options, data and\n"
        "--threads (the thread count changes the rounding of sums). The checkpoint records hashes\n"
        "of the data and of the options, and a resume with different ones is refused.\n\n"
        "Several processes: 'mpirun -np R rostesim llm sft|qat ...' trains data parallel (every\n"
        "rank loads the model and data; each step's micro-batches are split over the ranks,\n"
        "the gradients summed in rank order; rank 0 alone prints and writes). The result\n"
        "equals the one-process run with the same --batch x --grad-accum up to float rounding\n"
        "(the same bytes with -np 1). --zero1 shards the AdamW moments (same bytes as without).\n"
        "Checkpoints resume at any R. Threads per rank: --threads or OMP_NUM_THREADS.\n"
        "README.md, 'Training on several processes (MPI)', has the details.",
        opts, sizeof opts / sizeof opts[0], 0, 0,
        "examples:\n"
        "  rostesim llm sft --model pythia-160m --data tldr.jsonl --out runs/tldr --lr 2e-5 --epochs 1\n"
        "  rostesim llm sft --model pythia-160m --data tldr.jsonl --out runs/tldr --save-every 50 --resume\n"
        "  mpirun -np 4 rostesim llm sft --model pythia-160m --data tldr.jsonl --out runs/tldr --batch 8 --threads 2 --zero1"};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    if (!data) return cli_error(C, "--data FILE is required (see --help)"), 2;
    if (!out) return cli_error(C, "--out DIR is required (see --help)"), 2;
    int rc = check_model_dir(C, "--model", model);
    if (rc) return rc;
    if (!is_file(data)) return cli_error(C, "--data: cannot read '%s'%s", data, access(data, F_OK) ? ": no such file" : ""), 2;
    if ((rc = parse_sched(C, sched, &to.sched))) return rc;
    if (is_file(out)) return cli_error(C, "--out: '%s' is a file, not a folder", out), 2;
    char ckpt[4200], logp[4200];
    snprintf(ckpt, sizeof ckpt, "%s/%s", out, CKPT_NAME);
    snprintf(logp, sizeof logp, "%s/%s", out, LOG_NAME);
    if (resume && !is_file(ckpt))
        return cli_error(C, "--resume: no checkpoint '%s' (was the run started with --save-every?)", ckpt), 2;
    if (!resume && is_file(ckpt))
        return cli_error(C, "--out: '%s' holds the checkpoint of an earlier run: continue it with --resume, or remove it "
                            "(or choose another --out) to start afresh", ckpt), 2;
    set_threads(threads);

    llm_model *m = NULL;
    tok_tokenizer *tok = NULL;
    llm_dataset *ds = NULL;
    llm_trainer *tr = NULL;
    FILE *log = NULL;
    int eos = -1, pad = -1;
    if ((rc = load_model(C, model, &m, &tok, &eos, &pad))) goto done;
    if ((rc = resolve_max_len(C, &max_len, &m->cfg))) goto done;
    if ((rc = load_data(C, data, model, &m->cfg, tok, max_len, full_loss, eos, pad, &ds))) goto done;
    if (h && h->prepare && (rc = h->prepare(h->ctx, C, &m, ds, pad))) goto done;
    if (rank > 0) quiet = 1; /* rank 0 alone prints and writes */
    to.lr = lr;
    to.epochs = epochs;
    to.max_steps = max_steps;
    to.batch = batch;
    to.grad_accum = accum;
    to.warmup = warmup;
    to.weight_decay = wd;
    to.clip_grad = clip;
    to.seed = (uint64_t)seed;
    to.save_every = save_every;
    to.max_len = max_len;
    to.full_loss = full_loss;
    to.zero1 = zero1;
    to.job_hash = par_cli_job_hash(m, (uint64_t)resume); /* quantizers, rotations, --resume */
    int st = llm_trainer_alloc(&tr, m, ds, pad, &to); /* several ranks: agree on the job, or exit 2 */
    if ((rc = par_cli_status(C, st, R > 1 && st == RS_EINVAL ? 2 : 1))) goto done;
    st = resume ? llm_trainer_load(tr, ckpt) : RS_OK;
    if ((rc = par_cli_status(C, st, 1))) goto done;
    if (rank > 0) goto run;
    if ((rc = mkdir_p(C, out))) goto done;
    if (resume) {
        if ((rc = truncate_log(C, logp, llm_trainer_last(tr)))) goto done;
        log = fopen(logp, "a");
    } else {
        log = fopen(logp, "w");
    }
    if (!log) { rc = (cli_error(C, "cannot write '%s': %s", logp, strerror(errno)), 1); goto done; }

    fprintf(stderr,
            "rostesim %s: %zu rows (%zu target tokens; %zu truncated, %zu skipped) from %s; %ld steps of %d x %d rows "
            "(%ld per epoch), warm-up %ld, %zu parameters\n",
            C, ds->n, ds->ntok, ds->ntrunc, ds->nskip, data, llm_trainer_total(tr), batch, accum,
            llm_trainer_steps_per_epoch(tr), llm_warmup_steps(warmup, llm_trainer_total(tr)), m->nparams);
    if (R > 1) fprintf(stderr, "rostesim %s: data parallel on %d ranks%s\n", C, R, zero1 ? ", AdamW moments sharded (ZeRO-1)" : "");
    if (resume) fprintf(stderr, "rostesim %s: resuming after step %ld\n", C, llm_trainer_step_no(tr));
run:;
    if (rank == 0) cli_blas_note(C); /* after every check of the input (errors come first); one rank says it */
    sft_ctx ctx = {log, now_s(), 0, 0, 0, NAN, NAN, 0, 0, isatty(2), quiet, h, every};
    long start_step = llm_trainer_step_no(tr);
    if ((st = llm_trainer_run(tr, ckpt, sft_progress, &ctx)) != RS_OK) {
        /* a non-finite loss or norm is the same on every rank: rank 0 says it; any other failure
         * is this rank's own (main then ends every rank) */
        if (st != RS_ENUMERIC || rank == 0) lib_fail(C);
        rc = 1;
        goto done;
    }
    if (rank > 0) { rc = 0; goto done; } /* rank 0 saves the model */
    if (llm_model_save(m, out) != RS_OK || llm_copy_tokenizer_files(model, out) != RS_OK) { rc = lib_fail(C); goto done; }
    if (h && h->finish && (rc = h->finish(h->ctx, C, m, out))) goto done;
    /* the run is complete: its resume state is stale (a new run may use this folder) */
    if (remove(ckpt) != 0 && errno != ENOENT) fprintf(stderr, "rostesim %s: warning: cannot remove '%s': %s\n", C, ckpt, strerror(errno));
    double el = now_s() - ctx.t0;
    printf("%s: steps %ld-%ld of %ld, loss %.4f -> %.4f, %ld target tokens, %.1f s (%.0f tok/s); wrote %s/model.safetensors\n",
           h ? "qat" : "sft", start_step + 1, llm_trainer_step_no(tr), llm_trainer_total(tr), ctx.first_loss, ctx.last_loss, ctx.ntok, el,
           el > 0 ? (double)ctx.ninput / el : 0.0, out);
    rc = 0;
done:
    if (log && fclose(log) != 0 && rc == 0) rc = (cli_error(C, "write error on '%s'", logp), 1);
    llm_trainer_free(tr);
    llm_data_free(ds);
    llm_model_free(m);
    tok_free(tok);
    return rc;
}

/* ---- the int backend (llm/quantize/intq.h) --------------------------------------------------------- */

/* --backend fake|int and --int-model FILE into *use_int; returns 0 or an exit code. */
static int parse_backend(const char *cmd, const char *backend, const char *intfile, const char *model, int *use_int)
{
    *use_int = intfile != NULL;
    if (backend && !strcmp(backend, "int")) *use_int = 1;
    else if (backend && strcmp(backend, "fake")) return cli_error(cmd, "--backend: '%s' is not 'fake' or 'int'", backend), 2;
    if (intfile && backend && !strcmp(backend, "fake"))
        return cli_error(cmd, "--int-model: an exported int model runs with --backend int, not fake"), 2;
    if (intfile && !is_file(intfile)) return cli_error(cmd, "--int-model: cannot read '%s'", intfile), 2;
    if (*use_int && !intfile && model && is_dir(model)) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", model, LLM_QAT_FILE);
        if (!is_file(p))
            return cli_error(cmd, "--backend int: '%s' has no %s: the int backend runs quantized models (llm qat, llm ptq)",
                             model, LLM_QAT_FILE), 2;
    }
    return 0;
}

/* --int-head f32|q8 into *head (default f32); only where an int model is packed from a folder
 * (not with --int-model, whose file says how its head is stored). Returns 0 or an exit code. */
static int parse_int_head(const char *cmd, const char *s, int use_int, const char *intfile, llm_intq_head *head)
{
    *head = LLM_INTQ_HEAD_F32;
    if (!s) return 0;
    if (llm_intq_head_parse(s, head) != RS_OK) return cli_error(cmd, "--int-head: '%s' is not 'f32' or 'q8'", s), 2;
    if (!use_int) return cli_error(cmd, "--int-head: applies to --backend int only"), 2;
    if (intfile)
        return cli_error(cmd, "--int-head: an exported int model (--int-model) keeps the head it was exported with; "
                         "drop --int-head or re-export with 'llm export-int --int-head %s'", s), 2;
    return 0;
}

/* The integer model: an exported file (--int-model), or the folder's QAT/PTQ model packed
 * now (with its head stored as `head` says); the tokenizer and special ids come from the folder. */
static int load_int(const char *cmd, const char *dir, const char *intfile, llm_intq_head head, llm_intq **iq,
                    tok_tokenizer **tok, int *eos, int *pad)
{
    int rc = check_model_dir(cmd, "--model", dir);
    if (rc) return rc;
    if ((rc = load_tok(cmd, dir, tok))) return rc;
    if (intfile) {
        if (llm_intq_load(iq, intfile) != RS_OK) return lib_fail(cmd);
    } else {
        llm_model *m = NULL;
        int st = llm_qat_load_model(&m, dir);
        if (st) return lib_fail(cmd);
        st = llm_intq_build_head(iq, m, head);
        llm_model_free(m);
        if (st) return cli_error(cmd, "--backend int: %s: %s", dir, rs_last_error()), st == RS_ENOTSUP ? 2 : 1;
    }
    if (eos && llm_special_ids(llm_intq_config(*iq), dir, *tok, eos, pad) != RS_OK) return lib_fail(cmd);
    return 0;
}

static void int_banner(const llm_intq *iq, const char *intfile)
{
    size_t pk = 0, fp = 0;
    llm_intq_bytes(iq, &pk, &fp);
    const size_t il = llm_intq_il16_bytes(iq);
    char extra[96] = "";
    if (il) snprintf(extra, sizeof extra, " (+ %.1f MB: their copy in the VNNI kernel's layout)", il / 1e6);
    fprintf(stderr, "int backend: %s kernels, %.1f MB packed weights%s + %.1f MB fp32 tensors, %s embedding/LM head (%s)\n",
            iq_kernel_name(), pk / 1e6, extra, fp / 1e6, llm_intq_head_kind(iq) == LLM_INTQ_HEAD_Q8 ? "int8" : "fp32",
            intfile ? intfile : "packed at load");
}

/* ---- eval ------------------------------------------------------------------------------ */

static int cmd_llm_eval(int argc, char **argv)
{
    const char *C = "llm eval";
    const char *model = NULL, *data = NULL, *preds = NULL, *backend = NULL, *intfile = NULL, *head_s = NULL;
    int batch = 4, max_len = 0, full_loss = 0, threads = 0, generate = 0, max_new = 32, no_stem = 0, use_int = 0;
    int no_loss = 0, full_length = 0, gen_batch = 16;
    double prog = 0;
    long limit = 0;
    cli_opt opts[] = {
        {"--model", OPT_STRING, &model, 0, -1, "DIR", "Hugging Face checkpoint folder (required)", 0},
        {"--data", OPT_STRING, &data, 0, -1, "FILE", ".jsonl with prompt/completion lines, or .txt (required)", 0},
        {"--batch", OPT_INT, &batch, 1, 4096, "B", "rows per forward pass (fake backend; int: one row at a time)", 0},
        {"--max-len", OPT_INT, &max_len, 0, 1 << 20, "T", "tokens per row (0: min(512, model))", 0},
        {"--full-loss", OPT_FLAG, &full_loss, 0, -1, NULL, "JSONL: prompt tokens in the loss too", 0},
        {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: OpenMP default)", 0},
        {"--generate", OPT_FLAG, &generate, 0, -1, NULL, "JSONL: also generate a completion per prompt and print ROUGE", 0},
        {"--max-new-tokens", OPT_INT, &max_new, 1, 1 << 16, "N", "--generate: most new tokens per prompt", 0},
        {"--limit", OPT_LONG, &limit, 0, 1000000000L, "N", "--generate: the first N examples only (0: all)", 0},
        {"--predictions", OPT_STRING, &preds, 0, -1, "FILE", "--generate: where predictions go (default MODEL/predictions.jsonl)", 0},
        {"--no-stemmer", OPT_FLAG, &no_stem, 0, -1, NULL, "--generate: ROUGE without the Porter stemmer", 0},
        {"--no-loss", OPT_FLAG, &no_loss, 0, -1, NULL, "--generate: skip the loss pass over the whole file", 0},
        {"--full-length", OPT_FLAG, &full_length, 0, -1, NULL, "--generate: decode every new token (default: stop once the first line ended; same predictions)", 0},
        {"--gen-batch", OPT_INT, &gen_batch, 1, 4096, "N", "--generate, fake backend: prompts decoded together (1: one at a time)", 0},
        {"--progress", OPT_DOUBLE, &prog, 0, 86400, "S", "--generate: a progress line (tokens/s, ETA) on stderr every S seconds (0: none)", 0},
        {"--backend", OPT_STRING, &backend, 0, -1, "fake|int", "fake: fp32 fake quantization (default); int: integer kernels (QAT/PTQ folder)", 0},
        {"--int-model", OPT_STRING, &intfile, 0, -1, "FILE", "an exported int model (llm export-int) instead of packing --model's weights", 0},
        {"--int-head", OPT_STRING, &head_s, 0, -1, "f32|q8", "--backend int from --model: embedding/LM head fp32 (default) or int8 (smaller, faster, not exact)", 0},
    };
    cli_cmd cmd = {C, "--model DIR --data FILE [options]",
                   "Mean cross-entropy over the target tokens of a data set (the completion tokens of\n"
                   "JSONL rows unless --full-loss; every token of a .txt file) and its perplexity exp(loss).\n"
                   "Rows are prepared exactly as for 'rostesim llm sft'.\n\n"
                   "--generate (JSONL): for each prompt (with the tokenizer's special tokens; a prompt too\n"
                   "long for the model keeps its last tokens, which hold \"TL;DR:\"), greedy decoding of up\n"
                   "to --max-new-tokens tokens or eos; the prediction is the first line of the generated\n"
                   "text after the prompt, trimmed, and the reference the completion likewise. Prints the\n"
                   "mean ROUGE-1/2/L/Lsum F-measures (rouge-score semantics, Porter stemmer unless\n"
                   "--no-stemmer) and their mean, and writes one JSON line per example (line, prediction,\n"
                   "reference, rougeL) to --predictions. Decoding of a prompt stops once its first line\n"
                   "has ended (--full-length: all tokens; the predictions are the same). The fake backend\n"
                   "decodes --gen-batch prompts together (each step's products as one: the weights are\n"
                   "read once for all of them), the same greedy tokens as one at a time up to the\n"
                   "rounding of those products. --no-loss skips the loss pass (over every row of the\n"
                   "file, not only --limit's).\n\n"
                   "--backend int (a folder with rostesim_qat.json, or --int-model FILE): the integer path:\n"
                   "4-bit packed weights, per-token integer activations, integer GEMM, 4-bit packed KV\n"
                   "cache; the same numbers as the fake-quant path up to fp32 rounding (README).\n"
                   "--int-head q8: the embedding and LM head stored as int8 with a scale per row and the\n"
                   "head computed in int8 (the hidden state quantized per token): about 4x fewer bytes for\n"
                   "them and a faster decode, at a small cost in loss that is no longer the fake-quant\n"
                   "path's (README).",
                   opts, sizeof opts / sizeof opts[0], 0, 0,
                   "examples:\n  rostesim llm eval --model runs/tldr --data test.jsonl\n"
                   "  rostesim llm eval --model runs/roste --data test.jsonl --backend int\n"
                   "  rostesim llm eval --model runs/tldr --data test.jsonl --generate --limit 200"};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    if (!data) return cli_error(C, "--data FILE is required (see --help)"), 2;
    if (no_loss && !generate) return cli_error(C, "--no-loss: only with --generate (without it there is nothing to do)"), 2;
    int rc = check_model_dir(C, "--model", model);
    if (rc) return rc;
    if ((rc = parse_backend(C, backend, intfile, model, &use_int))) return rc;
    llm_intq_head head;
    if ((rc = parse_int_head(C, head_s, use_int, intfile, &head))) return rc;
    if (!is_file(data)) return cli_error(C, "--data: cannot read '%s'", data), 2;
    if (generate && !(strlen(data) > 6 && !strcmp(data + strlen(data) - 6, ".jsonl")))
        return cli_error(C, "--generate: '%s' is not a .jsonl file of prompt/completion lines", data), 2;
    set_threads(threads);
    llm_model *m = NULL;
    llm_intq *iq = NULL;
    tok_tokenizer *tok = NULL;
    llm_dataset *ds = NULL;
    int eos = -1, pad = -1;
    double loss = 0;
    size_t ntok = 0;
    double t0 = now_s();
    if (use_int) rc = load_int(C, model, intfile, head, &iq, &tok, &eos, &pad);
    else if (!(rc = load_model(C, model, &m, &tok, &eos, &pad))) llm_qat_freeze(m); /* Q_w(W) once */
    if (rc) goto done;
    const llm_config *cfg = use_int ? llm_intq_config(iq) : &m->cfg;
    if (use_int) int_banner(iq, intfile);
    if ((rc = resolve_max_len(C, &max_len, cfg))) goto done;
    if (!(generate && no_loss)) {
        if ((rc = load_data(C, data, model, cfg, tok, max_len, full_loss, eos, pad, &ds))) goto done;
        if ((use_int ? llm_intq_eval_loss(iq, ds, &loss, &ntok) : llm_eval_loss(m, ds, batch, pad, &loss, &ntok)) != RS_OK) {
            rc = lib_fail(C);
            goto done;
        }
        printf("loss %.6f  perplexity %.4f  (%zu target tokens, %zu rows, %zu truncated, %zu skipped; %.1f s)\n", loss,
               exp(loss), ntok, ds->n, ds->ntrunc, ds->nskip, now_s() - t0);
    }
    if (generate) {
        char pp[4300];
        if (!preds) snprintf(pp, sizeof pp, "%s/predictions.jsonl", model), preds = pp;
        if (eos < 0) { rc = (cli_error(C, "--generate: the model names no eos token"), 1); goto done; }
        llm_generate_opts go = {m, iq, tok, eos, max_new, limit, !no_stem, full_length, gen_batch, prog};
        llm_generate_result gr;
        double tg = now_s();
        if (llm_eval_generate(data, preds, &go, &gr) != RS_OK) {
            rc = lib_fail(C);
            goto done;
        }
        const rouge_scores *R = &gr.mean;
        double tgs = now_s() - tg;
        printf("generate: %ld examples (greedy, up to %d new tokens, %ld prompts cut from the left; %.1f s: %.0f prompt "
               "+ %.1f new tokens/s)\n", gr.n, max_new, gr.ntrunc, tgs, (double)gr.prompt_tokens / tgs,
               (double)gr.new_tokens / tgs);
        printf("ROUGE%s F: R1 %.4f  R2 %.4f  RL %.4f  RLsum %.4f  mean %.4f; predictions in %s\n", no_stem ? "" : " (stemmed)",
               R->r1.f, R->r2.f, R->rl.f, R->rlsum.f, (R->r1.f + R->r2.f + R->rl.f + R->rlsum.f) / 4, preds);
    }
done:
    llm_data_free(ds);
    llm_intq_free(iq);
    llm_model_free(m);
    tok_free(tok);
    return rc;
}

/* ---- generate ---------------------------------------------------------------------------- */

static int cmd_llm_generate(int argc, char **argv)
{
    const char *C = "llm generate";
    const char *model = NULL, *prompt = NULL, *backend = NULL, *intfile = NULL, *head_s = NULL;
    int max_new = 64, threads = 0, use_int = 0;
    double temperature = 0, top_p = 1.0;
    long seed = 42;
    cli_opt opts[] = {
        {"--model", OPT_STRING, &model, 0, -1, "DIR", "Hugging Face checkpoint folder (required)", 0},
        {"--prompt", OPT_STRING, &prompt, 0, -1, "TEXT", "the prompt (required)", 0},
        {"--max-new-tokens", OPT_INT, &max_new, 0, 1 << 20, "N", "most tokens to generate", 0},
        {"--temperature", OPT_DOUBLE, &temperature, 0, 100, "T", "sampling temperature (0: greedy)", 0},
        {"--top-p", OPT_DOUBLE, &top_p, 1e-9, 1, "P", "nucleus sampling: smallest set of tokens with probability >= P", 0},
        {"--seed", OPT_LONG, &seed, 0, 2147483647L, "S", "seed of the sampler", 0},
        {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: OpenMP default)", 0},
        {"--backend", OPT_STRING, &backend, 0, -1, "fake|int", "fake: fp32 fake quantization (default); int: integer kernels (QAT/PTQ folder)", 0},
        {"--int-model", OPT_STRING, &intfile, 0, -1, "FILE", "an exported int model (llm export-int) instead of packing --model's weights", 0},
        {"--int-head", OPT_STRING, &head_s, 0, -1, "f32|q8", "--backend int from --model: embedding/LM head fp32 (default) or int8 (smaller, faster, not exact)", 0},
    };
    cli_cmd cmd = {C, "--model DIR --prompt TEXT [options]",
                   "Continue a prompt with the model (KV cache; greedy unless --temperature > 0) until eos\n"
                   "or --max-new-tokens, and print the generated text (without the prompt) on stdout.\n"
                   "--backend int: the integer path (4-bit weights and KV cache, integer GEMM) for a\n"
                   "QAT/PTQ folder or an exported --int-model; greedy tokens equal the fake-quant path's.\n"
                   "--int-head q8: embedding and LM head in int8 (faster, smaller; tokens may then differ).",
                   opts, sizeof opts / sizeof opts[0], 0, 0,
                   "example:\n  rostesim llm generate --model runs/tldr --prompt \"SUBREDDIT: r/cooking\" --max-new-tokens 40\n"
                   "  rostesim llm generate --model runs/roste --backend int --prompt \"SUBREDDIT: r/cooking\""};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    if (!prompt) return cli_error(C, "--prompt TEXT is required (see --help)"), 2;
    int rc = check_model_dir(C, "--model", model);
    if (rc) return rc;
    if ((rc = parse_backend(C, backend, intfile, model, &use_int))) return rc;
    llm_intq_head head;
    if ((rc = parse_int_head(C, head_s, use_int, intfile, &head))) return rc;
    set_threads(threads);
    llm_model *m = NULL;
    llm_intq *iq = NULL;
    tok_tokenizer *tok = NULL;
    int32_t *ids = NULL, *gen = NULL;
    size_t n = 0;
    char *text = NULL;
    rs_rng *rng = NULL;
    int eos = -1, pad = -1;
    if (use_int) rc = load_int(C, model, intfile, head, &iq, &tok, &eos, &pad);
    else if (!(rc = load_model(C, model, &m, &tok, &eos, &pad))) llm_qat_freeze(m); /* Q_w(W) once */
    if (rc) goto done;
    const llm_config *cfg = use_int ? llm_intq_config(iq) : &m->cfg;
    if (use_int) int_banner(iq, intfile);
    if (tok_encode(tok, prompt, strlen(prompt), TOK_ADD_SPECIAL, &ids, &n) != RS_OK) {
        rc = (cli_error(C, "--prompt: %s", rs_last_error()), 1);
        goto done;
    }
    if (n == 0) {
        if (cfg->bos_id < 0) { rc = (cli_error(C, "--prompt: empty prompt and the model has no bos token"), 2); goto done; }
        int32_t *b = realloc(ids, sizeof *ids);
        if (!b) { rc = (cli_error(C, "out of memory"), 1); goto done; }
        ids = b;
        ids[0] = cfg->bos_id;
        n = 1;
    }
    if ((long)n >= cfg->max_pos) {
        rc = (cli_error(C, "--prompt: %zu tokens leave no room in the model's %d positions", n, cfg->max_pos), 2);
        goto done;
    }
    if ((long)n + max_new > cfg->max_pos) {
        fprintf(stderr, "rostesim %s: --max-new-tokens %d capped to %ld (the model has %d positions)\n", C, max_new,
                (long)cfg->max_pos - (long)n, cfg->max_pos);
        max_new = cfg->max_pos - (int)n;
    }
    gen = malloc(((size_t)max_new + 1) * sizeof *gen);
    rng = rs_rng_alloc((uint64_t)seed, LLM_STREAM_SAMPLE);
    if (!gen || !rng) { rc = (cli_error(C, "out of memory"), 1); goto done; }
    llm_sample_opts so = {temperature, top_p};
    int nout = 0;
    if ((use_int ? llm_intq_generate(iq, ids, (int)n, max_new, eos, &so, rng, gen, &nout, NULL, NULL)
                 : llm_generate(m, ids, (int)n, max_new, eos, &so, rng, gen, &nout, NULL, NULL)) != RS_OK) {
        rc = lib_fail(C);
        goto done;
    }
    size_t tl = 0;
    if (tok_decode(tok, gen, (size_t)nout, 1, &text, &tl) != RS_OK) { rc = lib_fail(C); goto done; }
    fwrite(text, 1, tl, stdout);
    fputc('\n', stdout);
    rc = 0;
done:
    free(text);
    free(gen);
    free(ids);
    rs_rng_free(rng);
    llm_intq_free(iq);
    llm_model_free(m);
    tok_free(tok);
    return rc;
}

/* ---- export-int ------------------------------------------------------------------------ */

static int cmd_llm_export_int(int argc, char **argv)
{
    const char *C = "llm export-int";
    const char *model = NULL, *out = NULL, *head_s = NULL, *format = NULL;
    int threads = 0;
    cli_opt opts[] = {
        {"--model", OPT_STRING, &model, 0, -1, "DIR", "a QAT or PTQ checkpoint folder (with rostesim_qat.json; required)", 0},
        {"--out", OPT_STRING, &out, 0, -1, "FILE", "the int model file to write (required)", 0},
        {"--format", OPT_STRING, &format, 0, -1, "rsiq|safetensors", "file format (default: safetensors when FILE ends in .safetensors, else rsiq)", 0},
        {"--int-head", OPT_STRING, &head_s, 0, -1, "f32|q8", "embedding and LM head in fp32 (default) or int8 per row", 0},
        {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: OpenMP default)", 0},
    };
    cli_cmd cmd = {C, "--model DIR --out FILE [--int-head f32|q8]",
                   "Pack a quantized model for the int backend: weights as 4-bit codes (two per byte) with\n"
                   "the weight quantizer's per-output-channel scale and zero point, the quantizer settings,\n"
                   "the online rotations' signs and the fp32 tensors (embedding, norms, biases, LM head) in\n"
                   "one file (layout: docs/int-format.md). 'llm eval' and 'llm generate' run it with\n"
                   "--int-model FILE (tokenizer from --model). Prints the file's size against the model's\n"
                   "F16 and fp32 sizes.\n\n"
                   "--int-head q8 stores the embedding and LM head (one table when tied) as int8 codes with\n"
                   "a scale per row (symmetric, max|row|/127, round half to even) instead of fp32, and the\n"
                   "int backend then computes the head in int8 with the final hidden state quantized per\n"
                   "token: about a quarter of those bytes and a faster decode, but the logits are no longer\n"
                   "the fake-quant path's (README: the bound and the measured loss). Default f32.\n\n"
                   "--format safetensors writes the same tensors as a safetensors file that numpy or torch\n"
                   "load by name (layers.L.SITE.qweight as U8 packed rows, .scales, .zeros, .code_sums;\n"
                   "norms, biases, rotation signs; metadata format \"rostesim-int\"); --int-model reads\n"
                   "either format.",
                   opts, sizeof opts / sizeof opts[0], 0, 0,
                   "example:\n  rostesim llm export-int --model runs/roste --out runs/roste/model.rsiq\n"
                   "  rostesim llm export-int --model runs/roste --out runs/roste/int4.safetensors\n"
                   "  rostesim llm generate --model runs/roste --int-model runs/roste/model.rsiq --prompt \"Hello\"\n"
                   "  rostesim llm export-int --model runs/roste --out runs/roste/model-q8.rsiq --int-head q8"};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    if (!model) return cli_error(C, "--model DIR is required (see --help)"), 2;
    if (!out) return cli_error(C, "--out FILE is required (see --help)"), 2;
    if (!is_dir(model)) return cli_error(C, "--model: '%s' is not a folder", model), 2;
    size_t ol = strlen(out);
    int as_st = format ? !strcmp(format, "safetensors") : ol >= 12 && !strcmp(out + ol - 12, ".safetensors");
    if (format && !as_st && strcmp(format, "rsiq"))
        return cli_error(C, "--format: '%s' is not rsiq or safetensors", format), 2;
    int use_int = 0, rc = parse_backend(C, "int", NULL, model, &use_int);
    if (rc) return rc;
    llm_intq_head head;
    if ((rc = parse_int_head(C, head_s, 1, NULL, &head))) return rc;
    set_threads(threads);
    llm_model *m = NULL;
    llm_intq *iq = NULL;
    if (llm_qat_load_model(&m, model) != RS_OK) return lib_fail(C);
    int st = llm_intq_build_head(&iq, m, head);
    size_t np = llm_config_nparams(&m->cfg);
    llm_model_free(m);
    if (st) return cli_error(C, "%s: %s", model, rs_last_error()), st == RS_ENOTSUP ? 2 : 1;
    rc = 0;
    if ((as_st ? llm_intq_save_safetensors(iq, out) : llm_intq_save(iq, out)) != RS_OK) rc = lib_fail(C);
    else {
        struct stat sb;
        size_t pk = 0, fp = 0;
        llm_intq_bytes(iq, &pk, &fp);
        double fsz = stat(out, &sb) == 0 ? (double)sb.st_size : (double)(pk + fp);
        printf("wrote %s (%s): %.0f bytes (packed weights + per-row scales/zeros%s %zu, fp32 tensors %zu); "
               "%.3f of the model's F16 size (%zu bytes), %.3f of fp32\n",
               out, as_st ? "safetensors" : "rsiq", fsz, head == LLM_INTQ_HEAD_Q8 ? " + int8 embedding/LM head" : "", pk, fp, fsz / (2.0 * (double)np),
               2 * np, fsz / (4.0 * (double)np));
    }
    llm_intq_free(iq);
    return rc;
}

/* ---- info -------------------------------------------------------------------------------- */

static void human(char *buf, size_t n, double v)
{
    if (v >= 1e9) snprintf(buf, n, "%.2f B", v / 1e9);
    else if (v >= 1e6) snprintf(buf, n, "%.2f M", v / 1e6);
    else if (v >= 1e3) snprintf(buf, n, "%.2f K", v / 1e3);
    else snprintf(buf, n, "%.0f", v);
}

static void special(const tok_tokenizer *tok, const char *what, int id)
{
    if (id < 0) printf("  %s: none", what);
    else {
        const char *s = tok_token_str(tok, id);
        printf("  %s: %d %s", what, id, s ? s : "(not in the tokenizer)");
    }
}

static int cmd_llm_info(int argc, char **argv)
{
    const char *C = "llm info";
    const char *model = NULL;
    cli_opt opts[] = {
        {"--model", OPT_STRING, &model, 0, -1, "DIR", "Hugging Face checkpoint folder (required)", 0},
    };
    cli_cmd cmd = {C, "--model DIR",
                   "Describe a checkpoint folder: family, sizes, heads, rotary embedding, tied head,\n"
                   "parameter count, tokenizer vocabulary and special tokens (reads config.json and\n"
                   "tokenizer.json; the weights are not loaded).",
                   opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    int rc = check_model_dir(C, "--model", model);
    if (rc) return rc;
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", model);
    llm_config c;
    if (llm_config_load(&c, p) != RS_OK) return lib_fail(C);
    tok_tokenizer *tok = NULL;
    if ((rc = load_tok(C, model, &tok))) return rc;
    int eos = -1, pad = -1;
    if (llm_special_ids(&c, model, tok, &eos, &pad) != RS_OK) {
        tok_free(tok);
        return lib_fail(C);
    }
    size_t np = llm_config_nparams(&c);
    char hp[32];
    human(hp, sizeof hp, (double)np);
    static const char *const acts[] = {"gelu", "gelu_tanh", "silu"};
    printf("model:       %s\n", model);
    printf("family:      %s\n", llm_arch_name(c.arch));
    printf("hidden size: %d\nlayers:      %d\n", c.d, c.n_layer);
    printf("heads:       %d (kv heads %d, head dim %d)\n", c.n_head, c.n_kv_head, c.head_dim);
    printf("mlp:         %d (%s%s)\n", c.d_ff, acts[c.act], c.arch == LLM_GPT_NEOX ? "" : ", gated");
    printf("positions:   %d\n", c.max_pos);
    printf("rotary:      %d of %d dims per head, theta %g%s\n", c.rot_dim, c.head_dim, c.rope_theta,
           c.rope_type == LLM_ROPE_LLAMA3 ? ", llama3 scaling" : "");
    printf("norm:        %s, eps %g%s\n", c.arch == LLM_GPT_NEOX ? "LayerNorm" : "RMSNorm", c.norm_eps,
           c.arch == LLM_GPT_NEOX && c.parallel_residual ? ", parallel residual" : "");
    printf("tied head:   %s\n", c.tied ? "yes" : "no");
    printf("vocab:       %d (tokenizer: %d tokens)\n", c.vocab, tok_vocab_size(tok));
    printf("parameters:  %zu (%s)\n", np, hp);
    printf("special:    ");
    special(tok, "bos", c.bos_id);
    special(tok, "eos", eos);
    special(tok, "pad", pad);
    printf("\n");
    tok_free(tok);
    return 0;
}

/* ---- init -------------------------------------------------------------------------------- */

static int cmd_llm_init(int argc, char **argv)
{
    const char *C = "llm init";
    const char *config = NULL, *tokdir = NULL, *out = NULL;
    long seed = 42;
    cli_opt opts[] = {
        {"--config", OPT_STRING, &config, 0, -1, "FILE", "a Hugging Face config.json (required)", 0},
        {"--tokenizer", OPT_STRING, &tokdir, 0, -1, "DIR", "folder with tokenizer.json (and its companions) (required)", 0},
        {"--out", OPT_STRING, &out, 0, -1, "DIR", "output checkpoint folder (required)", 0},
        {"--seed", OPT_LONG, &seed, 0, 2147483647L, "S", "seed of the initialisation", 0},
    };
    cli_cmd cmd = {C, "--config FILE --tokenizer DIR --out DIR [--seed S]",
                   "Write a randomly initialised checkpoint (config.json, model.safetensors, tokenizer\n"
                   "files): matrices normal(0, initializer_range 0.02), norm weights 1, biases 0, as\n"
                   "Hugging Face's init_weights. For tests and for pretraining from scratch.",
                   opts, sizeof opts / sizeof opts[0], 0, 0,
                   "example:\n  rostesim llm init --config tiny.json --tokenizer pythia-160m --out tiny"};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    if (!config) return cli_error(C, "--config FILE is required (see --help)"), 2;
    if (!tokdir) return cli_error(C, "--tokenizer DIR is required (see --help)"), 2;
    if (!out) return cli_error(C, "--out DIR is required (see --help)"), 2;
    if (!is_file(config)) return cli_error(C, "--config: cannot read '%s'", config), 2;
    char tp[4200];
    snprintf(tp, sizeof tp, "%s/tokenizer.json", tokdir);
    if (!is_dir(tokdir) || !is_file(tp)) return cli_error(C, "--tokenizer: '%s' is not a folder with tokenizer.json", tokdir), 2;
    llm_config c;
    if (llm_config_load(&c, config) != RS_OK) return lib_fail(C);
    tok_tokenizer *tok = NULL;
    if (tok_load(&tok, tp) != RS_OK) return lib_fail(C);
    int tv = tok_vocab_size(tok);
    tok_free(tok);
    if (tv > c.vocab)
        return cli_error(C, "%s: vocab_size %d is smaller than the tokenizer's %d tokens (%s)", config, c.vocab, tv, tp), 1;
    rs_rng *rng = rs_rng_alloc((uint64_t)seed, RS_STREAM_INIT);
    if (!rng) return cli_error(C, "out of memory"), 1;
    llm_model *m = NULL;
    int rc = 0;
    if (llm_model_init_random(&m, &c, rng) != RS_OK) rc = lib_fail(C);
    rs_rng_free(rng);
    if (!rc && (rc = mkdir_p(C, out)) == 0) {
        if (llm_model_save(m, out) != RS_OK || llm_copy_tokenizer_files(tokdir, out) != RS_OK) rc = lib_fail(C);
        else printf("wrote %s: %s, %zu parameters, vocab %d (tokenizer %d)\n", out, llm_arch_name(c.arch), m->nparams,
                    c.vocab, tv);
    }
    llm_model_free(m);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static const cli_sub subs[] = {
    {"sft", cmd_llm_sft, "supervised fine-tuning (AdamW, fp32) with checkpoints and --resume"},
    {"qat", cmd_llm_qat, "quantization-aware fine-tuning: STE or RoSTE (fake-quantized W/A/KV, rotations)"},
    {"ptq", cmd_llm_ptq, "post-training quantization baselines: RTN, GPTQ, QuaRot, SpinQuant"},
    {"search", cmd_llm_search, "choose R1-R4 rotations by quantization error (RoSTE's lower level)"},
    {"diagnose", cmd_llm_diagnose, "quantization error and activation range with/without rotation, plots"},
    {"eval", cmd_llm_eval, "mean loss and perplexity of a model on a data set"},
    {"generate", cmd_llm_generate, "continue a prompt (greedy or sampled)"},
    {"export-int", cmd_llm_export_int, "pack a QAT/PTQ model for the int backend (4-bit weights, one file; --int-head q8)"},
    {"info", cmd_llm_info, "describe a checkpoint folder (sizes, parameters, tokenizer)"},
    {"init", cmd_llm_init, "write a randomly initialised checkpoint from a config.json"},
    {"import-gguf", cmd_llm_import_gguf, "import a llama.cpp GGUF file (llama) as a checkpoint folder"},
    {"tokenizer-train", cmd_llm_tokenizer_train, "train a byte-level BPE tokenizer (HF BpeTrainer's merges)"},
    {"pretrain", cmd_llm_pretrain, "pretrain a small Llama base model from scratch (embedded default)"},
};
int cmd_llm(int argc, char **argv)
{
    return cli_dispatch("llm",
                        "Language models on the CPU: Hugging Face checkpoints (GPT-NeoX/Pythia, Llama, Qwen2)\n"
                        "and their tokenizers: fine-tuning in fp32 or quantization-aware (STE, RoSTE), post-training\n"
                        "quantization baselines, evaluation (perplexity, ROUGE) and generation.",
                        subs, sizeof subs / sizeof subs[0], argc, argv);
}
