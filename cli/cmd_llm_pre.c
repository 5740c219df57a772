/* rostesim llm: the embedded default's subcommands (tokenizer-train, pretrain). Thin: parse,
 * check, call llm/, print.
 * Exit codes: 0 success, 1 runtime failure, 2 usage error. */
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
#include "cli/commands.h"
#include "llm/text/bpe_train.h"
#include "llm/io/config.h"
#include "llm/train/data.h"
#include "llm/nn/model.h"
#include "llm/text/tokenizer.h"
#include "llm/text/tokenizer_write.h"
#include "llm/train/train.h"
#include "quant/fsutil.h"
#include "quant/rng.h"
#include "quant/status.h"
#include "sim/lsq_out.h"

#define EOT "<|endoftext|>"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int lib_fail(const char *cmd) { return cli_error(cmd, "%s", rs_last_error()), 1; }

static void set_threads(int n)
{
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

static char *slurp(const char *cmd, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error(cmd, "cannot read '%s': %s", path, strerror(errno)), NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            char *p = realloc(b, cap *= 2);
            if (!p) { free(b); b = NULL; break; }
            b = p;
        }
        size_t k = fread(b + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) { free(b); return cli_error(cmd, "cannot read '%s'", path), NULL; }
    b[n] = 0;
    *len = n;
    return b;
}

/* ---- tokenizer-train ---------------------------------------------------------------------- */

int cmd_llm_tokenizer_train(int argc, char **argv)
{
    const char *C = "llm tokenizer-train";
    const char *corpus = NULL, *out = NULL, *pre = "gpt2";
    int vocab = 4096, no_nfc = 0;
    cli_opt opts[] = {
        {"--corpus", OPT_STRING, &corpus, 0, -1, "FILE", "UTF-8 text to train on (required)", 0},
        {"--vocab", OPT_INT, &vocab, 258, 1 << 20, "N", "vocabulary size: <|endoftext|>, 256 bytes and the merges", 0},
        {"--out", OPT_STRING, &out, 0, -1, "DIR", "output folder for tokenizer.json and tokenizer_config.json (required)", 0},
        {"--pre", OPT_STRING, &pre, 0, -1, "STYLE", "pre-tokenizer: gpt2 (alias neox), llama3, qwen2", 0},
        {"--no-nfc", OPT_FLAG, &no_nfc, 0, -1, NULL, "no NFC normalizer", 0},
    };
    cli_cmd cmd = {C, "--corpus FILE --vocab N --out DIR [options]",
                   "Train a byte-level BPE tokenizer in C with the algorithm of Hugging Face tokenizers'\n"
                   "BpeTrainer (same merges in the same order on the same corpus: the corpus is read as\n"
                   "Tokenizer.train(files) reads it, line by line with the line ends, NFC-normalized and\n"
                   "pre-tokenized by the chosen preset's regex). Vocabulary: <|endoftext|> (id 0; bos,\n"
                   "eos and pad), the 256 byte tokens in code-point order, then one token per merge.\n"
                   "Writes tokenizer.json (loaded by rostesim and by HF tokenizers alike) and\n"
                   "tokenizer_config.json. Deterministic.",
                   opts, sizeof opts / sizeof opts[0], 0, 0,
                   "example:\n  rostesim llm tokenizer-train --corpus data/debian-tldr/pretrain.txt --vocab 4096 "
                   "--out data/debian-tldr/tokenizer"};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    if (!corpus) return cli_error(C, "--corpus FILE is required (see --help)"), 2;
    if (!out) return cli_error(C, "--out DIR is required (see --help)"), 2;
    tok_pre_style style;
    if (tok_pre_style_parse(pre, &style) != RS_OK) return cli_error(C, "--pre: %s", rs_last_error()), 2;
    if (!is_file(corpus)) return cli_error(C, "--corpus: cannot read '%s'", corpus), 2;
    size_t len;
    char *text = slurp(C, corpus, &len);
    if (!text) return 1;
    static const char *special[] = {EOT};
    bpe_train_opts o = {style, !no_nfc, (size_t)vocab, 1, special, 0};
    bpe_result r;
    double t0 = now_s();
    int rc = bpe_train(text, len, &o, &r);
    free(text);
    if (rc) return cli_error(C, "%s: %s", corpus, rs_last_error()), 1;
    double el = now_s() - t0;
    int aid[1], asp[1];
    tok_spec s;
    bpe_result_spec(&r, &o, &s, aid, asp);
    char p1[4200], p2[4200];
    snprintf(p1, sizeof p1, "%s/tokenizer.json", out);
    snprintf(p2, sizeof p2, "%s/tokenizer_config.json", out);
    if (rs_mkdir_p(out) != 0) rc = lib_fail(C);
    else if (tok_write_json(p1, &s) != RS_OK || tok_write_config(p2, EOT, EOT, EOT) != RS_OK) rc = lib_fail(C);
    if (!rc)
        printf("tokenizer-train: %zu tokens (%zu merges) from %zu pre-tokens (%zu distinct) of %s in %.1f s; wrote %s\n",
               r.nvocab, r.nmerges, r.ntokens, r.nwords, corpus, el, p1);
    if (!rc && r.nvocab < (size_t)vocab)
        fprintf(stderr, "rostesim %s: the corpus ran out of pairs at %zu tokens (asked for %d)\n", C, r.nvocab, vocab);
    bpe_result_free(&r);
    return rc;
}

/* ---- pretrain ----------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int d, n_layer, n_head, n_kv_head, d_ff, max_len;
    long steps;
    int batch;
    double lr;
} preset;

/* tiny: ~20 minutes on 2 cores; micro: seconds, for tests */
static const preset PRESETS[] = {
    {"tiny", 192, 4, 4, 4, 512, 128, 800, 16, 2e-3},
    {"micro", 64, 2, 4, 2, 176, 64, 30, 4, 3e-3},
};

/* <dir>/name (descriptions one blank line apart) rewritten with <|endoftext|> between the
 * descriptions, so that blocks of tokens mark where a description ends. */
static int eot_text(const char *cmd, const char *src, const char *dst)
{
    size_t n;
    char *b = slurp(cmd, src, &n);
    if (!b) return 1;
    char tmp[4300];
    FILE *f = rs_atomic_open(dst, tmp, sizeof tmp);
    if (!f) { free(b); return cli_error(cmd, "cannot create '%s': %s", dst, strerror(errno)), 1; }
    const char *p = b, *end = b + n;
    while (p < end) {
        const char *q = strstr(p, "\n\n");
        size_t k = q ? (size_t)(q - p) : (size_t)(end - p);
        while (k && p[k - 1] == '\n') k--;
        if (k) {
            fwrite(p, 1, k, f);
            fputs(EOT, f);
        }
        if (!q) break;
        p = q + 2;
        while (p < end && *p == '\n') p++;
    }
    free(b);
    if (rs_atomic_close(f, tmp, dst) != 0) return cli_error(cmd, "cannot write '%s'", dst), 1;
    return 0;
}

typedef struct { double t0, last; long n; double first, lastloss; long ninput; int quiet; FILE *log; } pre_ctx;

static int pre_progress(void *vc, const llm_train_stats *s)
{
    pre_ctx *c = vc;
    double t = now_s();
    if (!c->n++) c->first = s->loss;
    c->lastloss = s->loss;
    c->ninput += s->ninput;
    if (c->log)
        fprintf(c->log, "{\"step\": %ld, \"total\": %ld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g}\n", s->step,
                s->total, s->loss, s->lr, s->grad_norm);
    if (!c->quiet && (c->n == 1 || s->step == s->total || t - c->last >= 10)) {
        c->last = t;
        double el = t - c->t0;
        fprintf(stderr, "step %ld/%ld  loss %.4f  lr %.2e  %.0f tok/s  %.0f s, ETA %.0f s\n", s->step, s->total, s->loss,
                s->lr, el > 0 ? (double)c->ninput / el : 0.0, el, el / (double)c->n * (double)(s->total - s->step));
    }
    return 0;
}

int cmd_llm_pretrain(int argc, char **argv)
{
    const char *C = "llm pretrain";
    const char *pname = "tiny", *data = NULL, *out = NULL, *tokdir = NULL;
    long steps = 0, seed = 42;
    int threads = 0, quiet = 0;
    double lr = 0;
    cli_opt opts[] = {
        {"--preset", OPT_STRING, &pname, 0, -1, "P", "model and schedule: tiny (~20 min on 2 cores) or micro (tests)", 0},
        {"--data", OPT_STRING, &data, 0, -1, "DIR", "folder of 'rostesim data debian-tldr' (pretrain.txt) (required)", 0},
        {"--tokenizer", OPT_STRING, &tokdir, 0, -1, "DIR", "tokenizer folder (default: DATA/tokenizer)", 0},
        {"--out", OPT_STRING, &out, 0, -1, "DIR", "output checkpoint folder (required)", 0},
        {"--steps", OPT_LONG, &steps, 0, 100000000L, "N", "optimizer steps (0: the preset's)", 0},
        {"--lr", OPT_DOUBLE, &lr, 0, 1, "LR", "peak learning rate (0: the preset's)", 0},
        {"--seed", OPT_LONG, &seed, 0, 2147483647L, "S", "seed of the initialisation and of the block order", 0},
        {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: OpenMP default)", 0},
        {"--quiet", OPT_FLAG, &quiet, 0, -1, NULL, "no progress lines on stderr", 0},
    };
    cli_cmd cmd = {C, "--data DIR --out DIR [--preset tiny|micro] [options]",
                   "Pretrain a small Llama-family base model (RMSNorm, SwiGLU, RoPE, tied embeddings) from\n"
                   "random weights on the train split's long descriptions (DATA/pretrain.txt; the\n"
                   "descriptions are joined by <|endoftext|> and cut into blocks of the preset's\n"
                   "length), with AdamW, 2% warm-up and a cosine schedule; then report the perplexity\n"
                   "on the validation descriptions (DATA/pretrain_validation.txt). Saves an HF\n"
                   "checkpoint (config.json, model.safetensors, tokenizer files), pretrain_log.jsonl\n"
                   "and pretrain.json (settings, time, losses). Presets:\n"
                   "  tiny   d 192, 4 layers, 4 heads, MLP 512, blocks of 128, 800 steps of 16 blocks, lr 2e-3\n"
                   "  micro  d 64, 2 layers, 4 heads (2 kv), MLP 176, blocks of 64, 30 steps of 4 blocks, lr 3e-3\n"
                   "Deterministic for a given --threads.",
                   opts, sizeof opts / sizeof opts[0], 0, 0,
                   "example:\n  rostesim llm pretrain --preset tiny --data data/debian-tldr --out data/base-tiny"};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    const preset *P = NULL;
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
        if (!strcmp(pname, PRESETS[i].name)) P = &PRESETS[i];
    if (!P) return cli_error(C, "--preset: '%s' is not one of: tiny, micro", pname), 2;
    if (!data) return cli_error(C, "--data DIR is required (see --help)"), 2;
    if (!out) return cli_error(C, "--out DIR is required (see --help)"), 2;
    char train_txt[4200], val_txt[4200], tdir[4200], tj[4300];
    snprintf(train_txt, sizeof train_txt, "%s/pretrain.txt", data);
    snprintf(val_txt, sizeof val_txt, "%s/pretrain_validation.txt", data);
    if (!is_file(train_txt)) return cli_error(C, "--data: '%s' missing (build it with 'rostesim data debian-tldr')", train_txt), 2;
    if (!tokdir) snprintf(tdir, sizeof tdir, "%s/tokenizer", data), tokdir = tdir;
    snprintf(tj, sizeof tj, "%s/tokenizer.json", tokdir);
    if (!is_file(tj)) return cli_error(C, "--tokenizer: '%s' missing (train one with 'rostesim llm tokenizer-train')", tj), 2;
    set_threads(threads);
    if (rs_mkdir_p(out) != 0) return lib_fail(C);

    tok_tokenizer *tok = NULL;
    llm_model *m = NULL;
    llm_dataset *ds = NULL, *dv = NULL;
    llm_trainer *tr = NULL;
    rs_rng *rng = NULL;
    FILE *log = NULL;
    int rc = 0;
    char ttmp[4300], vtmp[4300], logp[4300], sum[4300];
    snprintf(ttmp, sizeof ttmp, "%s/.pretrain_train.txt", out);
    snprintf(vtmp, sizeof vtmp, "%s/.pretrain_validation.txt", out);
    snprintf(logp, sizeof logp, "%s/pretrain_log.jsonl", out);
    snprintf(sum, sizeof sum, "%s/pretrain.json", out);
    double t0 = now_s();
    if (tok_load(&tok, tj) != RS_OK) { rc = lib_fail(C); goto done; }
    int eot = tok_token_id(tok, EOT);
    if (eot < 0) { rc = (cli_error(C, "%s: no %s token", tj, EOT), 1); goto done; }
    int V = tok_vocab_size(tok);
    llm_config c;
    memset(&c, 0, sizeof c);
    c.arch = LLM_LLAMA;
    c.vocab = (V + 63) / 64 * 64;
    c.d = P->d;
    c.n_layer = P->n_layer;
    c.n_head = P->n_head;
    c.n_kv_head = P->n_kv_head;
    c.head_dim = P->d / P->n_head;
    c.d_ff = P->d_ff;
    c.max_pos = P->max_len;
    c.norm_eps = 1e-5;
    c.act = LLM_ACT_SILU;
    c.rope_theta = 10000;
    c.rot_dim = c.head_dim;
    c.rope_type = LLM_ROPE_DEFAULT;
    c.tied = 1;
    c.bos_id = eot;
    c.eos_id = eot;
    c.pad_id = eot;
    snprintf(c.torch_dtype, sizeof c.torch_dtype, "float32");
    if (llm_config_check(&c) != RS_OK) { rc = lib_fail(C); goto done; }
    rng = rs_rng_alloc((uint64_t)seed, RS_STREAM_INIT);
    if (!rng) { rc = (cli_error(C, "out of memory"), 1); goto done; }
    if (llm_model_init_random(&m, &c, rng) != RS_OK) { rc = lib_fail(C); goto done; }
    if ((rc = eot_text(C, train_txt, ttmp))) goto done;
    llm_data_opts dop = {P->max_len, 0, eot};
    if (llm_data_load(&ds, ttmp, tok, &dop) != RS_OK) { rc = lib_fail(C); goto done; }
    llm_train_opts to;
    llm_train_opts_default(&to);
    to.lr = lr > 0 ? lr : P->lr;
    to.max_steps = steps > 0 ? steps : P->steps;
    to.batch = P->batch;
    to.grad_accum = 1;
    to.warmup = 0.02;
    to.sched = LLM_SCHED_COSINE;
    to.weight_decay = 0;
    to.clip_grad = 1.0;
    to.seed = (uint64_t)seed;
    to.max_len = P->max_len;
    if (llm_trainer_alloc(&tr, m, ds, eot, &to) != RS_OK) { rc = lib_fail(C); goto done; }
    log = fopen(logp, "w");
    if (!log) { rc = (cli_error(C, "cannot write '%s': %s", logp, strerror(errno)), 1); goto done; }
    fprintf(stderr, "rostesim %s: %s preset, %zu parameters, %zu blocks of %d tokens from %s, %ld steps of %d blocks\n", C,
            P->name, m->nparams, ds->n, P->max_len, train_txt, llm_trainer_total(tr), P->batch);
    cli_blas_note(C);
    pre_ctx ctx = {now_s(), 0, 0, NAN, NAN, 0, quiet, log};
    if (llm_trainer_run(tr, NULL, pre_progress, &ctx) != RS_OK) { rc = lib_fail(C); goto done; }
    double train_s = now_s() - ctx.t0;
    double vloss = NAN;
    size_t vtok = 0;
    if (is_file(val_txt)) {
        if ((rc = eot_text(C, val_txt, vtmp))) goto done;
        if (llm_data_load(&dv, vtmp, tok, &dop) != RS_OK) { rc = lib_fail(C); goto done; }
        if (llm_eval_loss(m, dv, 16, eot, &vloss, &vtok) != RS_OK) { rc = lib_fail(C); goto done; }
    }
    if (llm_model_save(m, out) != RS_OK || llm_copy_tokenizer_files(tokdir, out) != RS_OK) { rc = lib_fail(C); goto done; }
    FILE *f = fopen(sum, "w");
    if (f) {
        fprintf(f, "{\"preset\": \"%s\", \"parameters\": %zu, \"steps\": %ld, \"batch\": %d, \"block\": %d, \"lr\": %g, "
                   "\"seed\": %ld, \"train_blocks\": %zu, \"train_tokens\": %zu, \"first_loss\": %.6f, \"last_loss\": %.6f, "
                   "\"validation_loss\": %.6f, \"validation_perplexity\": %.4f, \"validation_tokens\": %zu, "
                   "\"train_seconds\": %.1f}\n",
                P->name, m->nparams, llm_trainer_total(tr), P->batch, P->max_len, to.lr, seed, ds->n, ds->ntok, ctx.first,
                ctx.lastloss, vloss, exp(vloss), vtok, train_s);
        fclose(f);
    }
    printf("pretrain: %s, %zu parameters, %ld steps, loss %.4f -> %.4f in %.0f s; validation loss %.4f, perplexity %.2f "
           "(%zu tokens); wrote %s (%.0f s in all)\n",
           P->name, m->nparams, llm_trainer_total(tr), ctx.first, ctx.lastloss, train_s, vloss, exp(vloss), vtok, out,
           now_s() - t0);
done:
    if (log) fclose(log);
    remove(ttmp);
    remove(vtmp);
    llm_trainer_free(tr);
    llm_data_free(ds);
    llm_data_free(dv);
    llm_model_free(m);
    rs_rng_free(rng);
    tok_free(tok);
    return rc;
}
