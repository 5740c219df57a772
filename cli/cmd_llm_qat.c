/* rostesim llm qat | search | diagnose: quantization-aware fine-tuning (STE, RoSTE), the
 * rotation search and its diagnostics. Thin: parse, call llm/, print. Exit codes: 0 success,
 * 1 runtime failure, 2 usage error. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/par_cli.h"
#include "llm/train/data.h"
#include "llm/nn/model.h"
#include "llm/quantize/diagnose.h"
#include "llm/quantize/qat.h"
#include "llm/quantize/rotate.h"
#include "llm/quantize/search.h"
#include "llm/text/tokenizer.h"
#include "llm/train/train.h"
#include "par/par.h"
#include "plots/plot.h"
#include "quant/fsutil.h"
#include "quant/status.h"

static int lib_fail(const char *cmd) { return cli_error(cmd, "%s", rs_last_error()), 1; }

/* ---- the quantization / rotation options shared by the three commands --------------------- */

typedef struct {
    int wbits, abits, kvbits, clipped_ste;
    double wclip, aclip, kvclip;
    const char *scheme, *clipmode, *r1, *signs, *error, *rotation_config, *method, *r2mode;
    long rot_seed, reselect_every;
    int calib;
} qopts;

static void qopts_default(qopts *q)
{
    memset(q, 0, sizeof *q);
    q->wbits = q->abits = q->kvbits = 4;
    q->wclip = q->aclip = q->kvclip = 1.0;
    q->scheme = "asym";
    q->clipmode = "code";
    q->r1 = "on";
    q->signs = "all";
    q->error = "sum";
    q->r2mode = "online";
    q->method = "roste";
    q->rot_seed = 0;
    q->calib = 128;
}

#define QOPTS(q)                                                                                                     \
    {"--wbits", OPT_INT, &(q).wbits, 1, 16, "B", "weight bits, per output channel (16: off)", 0},                    \
    {"--abits", OPT_INT, &(q).abits, 1, 16, "B", "activation bits, per token at every linear input (16: off)", 0},    \
    {"--kvbits", OPT_INT, &(q).kvbits, 1, 16, "B", "K/V cache bits, per token per head after RoPE and R3 (16: off)", 0}, \
    {"--wclip", OPT_DOUBLE, &(q).wclip, 1e-6, 1, "C", "weight clipping factor", 0},                                  \
    {"--aclip", OPT_DOUBLE, &(q).aclip, 1e-6, 1, "C", "activation clipping factor", 0},                              \
    {"--kvclip", OPT_DOUBLE, &(q).kvclip, 1e-6, 1, "C", "K/V clipping factor", 0},                                    \
    {"--scheme", OPT_STRING, &(q).scheme, 0, -1, "S", "asym or sym (all quantizers)", 0},                              \
    {"--clip-mode", OPT_STRING, &(q).clipmode, 0, -1, "M", "code (c scales max and min, authors' code) or paper", 0},  \
    {"--clipped-ste", OPT_FLAG, &(q).clipped_ste, 0, -1, NULL,                                                        \
     "clipped STE for weights and activations only (K/V: identity STE)", 0},                                          \
    {"--r1", OPT_STRING, &(q).r1, 0, -1, "M", "R1 on the residual stream: on, off, or search (lower total E)", 0},    \
    {"--signs", OPT_STRING, &(q).signs, 0, -1, "S", "random signs on: all rotations (paper), r1 (authors' code), none", 0}, \
    {"--rot-seed", OPT_LONG, &(q).rot_seed, 0, 2147483647L, "S", "seed of the rotations' random signs", 0},           \
    {"--calib", OPT_INT, &(q).calib, 1, 1000000, "N", "calibration rows for the search (the data's first N)", 0},     \
    {"--error", OPT_STRING, &(q).error, 0, -1, "E", "error terms: sum (paper) or mean (authors' code, per element)", 0}, \
    {"--r2-mode", OPT_STRING, &(q).r2mode, 0, -1, "M",                                                                \
     "R2 online (weights unrotated, R2 on the fly: authors' code) or merged into W_v/W_o", 0}

static int qopts_resolve(const char *C, const qopts *q, llm_qat_opts *o, llm_err_mode *em)
{
    llm_qat_opts_default(o);
    o->wbits = q->wbits, o->abits = q->abits, o->kvbits = q->kvbits;
    o->wclip = q->wclip, o->aclip = q->aclip, o->kvclip = q->kvclip;
    if (!strcmp(q->scheme, "sym")) o->scheme = QZ_SYM;
    else if (strcmp(q->scheme, "asym")) return cli_error(C, "--scheme: '%s' is not asym or sym", q->scheme), 2;
    if (!strcmp(q->clipmode, "paper")) o->clipmode = QZ_CLIP_PAPER;
    else if (strcmp(q->clipmode, "code")) return cli_error(C, "--clip-mode: '%s' is not code or paper", q->clipmode), 2;
    o->ste = q->clipped_ste ? QZ_STE_CLIPPED : QZ_STE_IDENTITY;
    if (strcmp(q->r1, "on") && strcmp(q->r1, "off") && strcmp(q->r1, "search"))
        return cli_error(C, "--r1: '%s' is not on, off or search", q->r1), 2;
    if (llm_signs_parse(q->signs) < 0) return cli_error(C, "--signs: '%s' is not all, r1 or none", q->signs), 2;
    if (strcmp(q->error, "sum") && strcmp(q->error, "mean")) return cli_error(C, "--error: '%s' is not sum or mean", q->error), 2;
    *em = strcmp(q->error, "sum") ? LLM_ERR_MEAN : LLM_ERR_SUM;
    if (strcmp(q->r2mode, "online") && strcmp(q->r2mode, "merged"))
        return cli_error(C, "--r2-mode: '%s' is not online or merged", q->r2mode), 2;
    if (llm_qat_opts_check(o)) return cli_error(C, "%s", rs_last_error()), 2;
    return 0;
}

/* Rotate a freshly loaded model m (quantizers attached) and search R2-R4 (and R1 with
 * --r1 search, which loads the model a second time from dir). */
static int rotate_and_search(const char *C, const char *dir, llm_model **m, const qopts *q, const llm_qat_opts *o,
                             llm_err_mode em, const llm_dataset *ds, llm_rot_config *rc, llm_search_terms **terms,
                             double E_r1[2])
{
    int r1 = strcmp(q->r1, "off") != 0;
    llm_signs signs = (llm_signs)llm_signs_parse(q->signs);
    E_r1[0] = E_r1[1] = NAN;
    if (!strcmp(q->r1, "search")) {
        for (int k = 0; k < 2; k++) {
            llm_model *t = NULL;
            llm_rot_config c;
            int n = 0, st = llm_qat_load_model(&t, dir);
            if (!st) st = llm_qat_attach(t, o);
            if (!st) st = llm_rot_config_init(&c, t->cfg.n_layer, k, 0, 0, 0, signs, (uint64_t)q->rot_seed);
            c.r2_online = !strcmp(q->r2mode, "online");
            if (!st) st = llm_rotate(&t, &c);
            if (!st) st = llm_calibrate(t, ds, q->calib, &n);
            if (!st) E_r1[k] = llm_search_total(t->qat, em, n);
            llm_rot_config_free(&c);
            llm_model_free(t);
            if (st) return lib_fail(C);
        }
        r1 = E_r1[1] < E_r1[0];
        if (rs_par_rank() == 0) /* under mpirun every rank searches alike; rank 0 prints */
            fprintf(stderr, "rostesim %s: --r1 search: total E without R1 %.6g, with R1 %.6g: R1 %s\n", C, E_r1[0], E_r1[1],
                r1 ? "on" : "off");
    }
    if (llm_qat_attach(*m, o) || llm_rot_config_init(rc, (*m)->cfg.n_layer, r1, 0, 0, 0, signs, (uint64_t)q->rot_seed))
        return lib_fail(C);
    rc->r2_online = !strcmp(q->r2mode, "online");
    if (llm_rotate(m, rc)) return lib_fail(C);
    *terms = calloc((size_t)rc->n_layer, sizeof **terms);
    if (!*terms) return cli_error(C, "out of memory"), 1;
    if (llm_search_select(*m, rc, ds, q->calib, em, *terms)) return lib_fail(C);
    return 0;
}

static void print_choice(const char *C, const llm_rot_config *rc)
{
    if (rs_par_rank() > 0) return;
    int n2 = 0, n3 = 0, n4 = 0;
    for (int l = 0; l < rc->n_layer; l++) n2 += rc->r2[l], n3 += rc->r3[l], n4 += rc->r4[l];
    fprintf(stderr, "rostesim %s: rotations: R1 %s, R2 in %d, R3 in %d, R4 in %d of %d layers\n", C, rc->r1 ? "on" : "off",
            n2, n3, n4, rc->n_layer);
}

/* ---- llm qat -------------------------------------------------------------------------------- */

typedef struct {
    qopts q;
    llm_qat_opts o;
    llm_err_mode em;
    const char *model_dir, *out;
    int roste;
    llm_rot_config rc;
    int have_rc;
    llm_model *m;
    const llm_dataset *ds;
    long total_reselect;
} qat_ctx;

static int qat_prepare(void *vctx, const char *C, llm_model **m, const void *vds, int pad)
{
    (void)pad;
    qat_ctx *c = vctx;
    c->ds = vds;
    if (!c->roste) {
        if (llm_qat_attach(*m, &c->o)) return lib_fail(C);
    } else if (c->q.rotation_config) {
        if (llm_qat_attach(*m, &c->o) || llm_rot_config_load(&c->rc, c->q.rotation_config, (*m)->cfg.n_layer))
            return lib_fail(C);
        c->rc.r2_online = !strcmp(c->q.r2mode, "online");
        if (llm_rotate(m, &c->rc)) return lib_fail(C);
        c->have_rc = 1;
        print_choice(C, &c->rc);
    } else {
        llm_search_terms *terms = NULL;
        double E1[2];
        int rc = rotate_and_search(C, c->model_dir, m, &c->q, &c->o, c->em, c->ds, &c->rc, &terms, E1);
        c->have_rc = !rc || c->rc.r2;
        if (!rc && rs_par_rank() == 0) { /* rank 0 alone writes */
            char p[4200];
            snprintf(p, sizeof p, "%s/search.tsv", c->out);
            if (rs_mkdir_p(c->out) || llm_search_write_tsv(p, &c->rc, terms)) rc = lib_fail(C);
            snprintf(p, sizeof p, "%s/rotation_config.json", c->out);
            if (!rc && llm_rot_config_save(&c->rc, p)) rc = lib_fail(C);
            print_choice(C, &c->rc);
        }
        free(terms);
        if (rc) return rc;
    }
    c->m = *m;
    llm_qat_stats_reset((*m)->qat);
    (*m)->qat->collect = 1;
    return 0;
}

static int qat_after_step(void *vctx, const void *vs, char *extra, size_t n)
{
    qat_ctx *c = vctx;
    const llm_train_stats *s = vs;
    llm_qat *q = c->m->qat;
    if (par_cli_qat_stats_sum(q)) { /* several ranks: the statistics of every rank's rows */
        fprintf(stderr, "rostesim llm qat: %s\n", rs_last_error());
        return 1;
    }
    /* E of this step, per-element means (independent of the batch size) */
    double E = llm_search_total(q, LLM_ERR_MEAN, 1);
    double Ew = 0;
    for (int l = 0; l < q->n_layer; l++)
        for (int k = 0; k < LLM_NSITES; k++) Ew += q->stats[l].w_n[k] > 0 ? q->stats[l].w_err[k] / q->stats[l].w_n[k] : 0;
    snprintf(extra, n, ", \"E\": %.9g, \"E_weights\": %.9g", E, Ew);
    if (c->roste && c->q.reselect_every > 0 && s->step % c->q.reselect_every == 0 && s->step < s->total) {
        if (llm_search_select(c->m, &c->rc, c->ds, c->q.calib, c->em, NULL)) {
            fprintf(stderr, "rostesim llm qat: re-selection after step %ld: %s\n", s->step, rs_last_error());
            return 1;
        }
        c->total_reselect++;
        print_choice("llm qat", &c->rc);
    }
    llm_qat_stats_reset(q);
    q->collect = 1;
    /* the last step: merge an online R2 into W_v / W_o, so that the model saved next (and
     * kept in memory) is the merged one */
    if (s->step == s->total && c->have_rc && c->rc.r2_online && llm_rotate_merge_r2(c->m, &c->rc)) {
        fprintf(stderr, "rostesim llm qat: merging R2: %s\n", rs_last_error());
        return 1;
    }
    return 0;
}

static int qat_finish(void *vctx, const char *C, llm_model *m, const char *out)
{
    qat_ctx *c = vctx;
    m->qat->collect = 0;
    if (c->have_rc && c->rc.r2_online) { /* training stopped before its last step: merge and save again */
        if (llm_rotate_merge_r2(m, &c->rc) || llm_model_save(m, out)) return lib_fail(C);
    }
    if (llm_qat_save(m, c->have_rc ? &c->rc : NULL, c->roste ? "roste" : "ste", out)) return lib_fail(C);
    fprintf(stderr, "rostesim %s: wrote %s/%s (quantizers%s)\n", C, out, LLM_QAT_FILE, c->have_rc ? " and rotations" : "");
    return 0;
}

static const char QAT_DESC[] =
    "Quantization-aware supervised fine-tuning (QA-SFT): 'llm sft' with fake-quantized\n"
    "weights (per output channel), activations (per token at the input of every linear layer\n"
    "of attention and MLP) and K/V cache (per token per head, after RoPE and R3); the LM head\n"
    "and embeddings stay in full precision. Gradients reach the real weights through the\n"
    "straight-through estimator (identity, or clipped with --clipped-ste). --clipped-ste\n"
    "covers the weight and activation quantizers only: the K/V cache quantizers always use\n"
    "the identity STE (their gradient passes unchanged, also outside the clipping range).\n"
    "Scales are recomputed at every forward.\n\n"
    "--method ste: no rotation. --method roste: rotations (ROSTE.md §3) chosen by the search\n"
    "of 'llm search' on the first --calib rows of --data before training (or read from\n"
    "--rotation-config FILE), written to --out as search.tsv and rotation_config.json.\n"
    "--reselect-every T re-runs the search on the current weights every T steps (K > 1 of\n"
    "RoSTE, beyond the paper): R2/R4 are merged or un-merged in double and R3 switched; the\n"
    "AdamW moments are NOT rotated with the weights, so a switch perturbs the optimizer\n"
    "state of the layers that change (and --resume is refused with it); an online R2 is\n"
    "switched without touching the weights.\n\n"
    "--r2-mode online (default, the authors' code): W_v and W_o are trained in their\n"
    "original basis and R2 is applied on the fly: the QKV and O layers compute with\n"
    "R2^T W_v (per kv head, bias b_v R2) and W_o R2 (per head), rotated before the weight\n"
    "quantizer, so the quantizers see what the merged form sees (V cache and o_proj input\n"
    "rotated, Q_w of the rotated weights) and the forward equals the merged model's up to\n"
    "float rounding; the gradients reach the unrotated weights. AdamW is not\n"
    "rotation-equivariant, so the trajectory differs from --r2-mode merged (R2 merged\n"
    "into the weights before training). After the last step R2 is merged (in double)\n"
    "and the saved model holds it merged in either mode; rostesim_qat.json records\n"
    "\"r2_mode\". --resume needs the --r2-mode of the interrupted run.\n\n"
    "Every train_log.jsonl record has \"E\": the quantization error of that step (weights,\n"
    "inputs and K/V of every site, per-element means) and \"E_weights\" (weights only).\n"
    "--out gets the model (R1, R2 and W_down R4 merged into the weights), rostesim_qat.json\n"
    "(quantizers and rotations), which 'llm eval' and 'llm generate' apply automatically.\n\n"
    "Under 'mpirun -np R' it trains data parallel as 'llm sft' does (see its --help; --zero1\n"
    "shards the AdamW moments); every rank runs the rotation search alike and the ranks\n"
    "check that they chose the same rotations; rank 0 writes.\n\n"
    "Options of 'llm qat' (before or after the 'llm sft' ones):\n"
    "  --method M            ste or roste (default roste)\n"
    "  --rotation-config F   RoSTE: use this rotation-config JSON instead of searching\n"
    "  --reselect-every T    RoSTE: re-run the search every T steps (0: never, the paper)\n"
    "  --wbits/--abits/--kvbits B (4), --wclip/--aclip/--kvclip C (1), --scheme asym|sym,\n"
    "  --clip-mode code|paper, --clipped-ste, --r1 on|off|search, --signs all|r1|none,\n"
    "  --rot-seed S (0), --calib N (128), --error sum|mean   as in 'llm search'\n"
    "  --r2-mode online|merged   RoSTE: R2 during training (default online, see above)\n"
    "and every option of 'llm sft':";

int cmd_llm_qat(int argc, char **argv)
{
    const char *C = "llm qat";
    static qat_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    qopts_default(&ctx.q);
    cli_opt qo[] = {
        QOPTS(ctx.q),
        {"--method", OPT_STRING, &ctx.q.method, 0, -1, "M", "ste or roste", 0},
        {"--rotation-config", OPT_STRING, &ctx.q.rotation_config, 0, -1, "FILE", "rotation-config JSON", 0},
        {"--reselect-every", OPT_LONG, &ctx.q.reselect_every, 0, 1000000000L, "T", "re-run the search every T steps", 0},
    };
    size_t nq = sizeof qo / sizeof qo[0];
    /* split argv: our options (with their values) and the sft ones */
    char **qa = calloc((size_t)argc + 1, sizeof *qa), **sa = calloc((size_t)argc + 1, sizeof *sa);
    if (!qa || !sa) return free(qa), free(sa), cli_error(C, "out of memory"), 1;
    int nqa = 1, nsa = 1, resume = 0;
    qa[0] = sa[0] = argv[0];
    for (int i = 1; i < argc; i++) {
        const cli_opt *o = NULL;
        for (size_t k = 0; k < nq && !o; k++)
            if (!strcmp(argv[i], qo[k].name)) o = &qo[k];
        if (o) {
            qa[nqa++] = argv[i];
            if (o->type != OPT_FLAG && i + 1 < argc) qa[nqa++] = argv[++i];
            continue;
        }
        if (!strcmp(argv[i], "--model") && i + 1 < argc) ctx.model_dir = argv[i + 1];
        if (!strcmp(argv[i], "--out") && i + 1 < argc) ctx.out = argv[i + 1];
        if (!strcmp(argv[i], "--resume")) resume = 1;
        sa[nsa++] = argv[i];
    }
    cli_cmd qc = {C, "", "", qo, nq, 0, 0, NULL};
    char *pos[1];
    size_t npos;
    int rc = cli_parse(&qc, nqa, qa, pos, &npos);
    if (rc == CLI_OK && strcmp(ctx.q.method, "ste") && strcmp(ctx.q.method, "roste"))
        rc = CLI_ERROR, cli_error(C, "--method: '%s' is not ste or roste", ctx.q.method);
    if (rc == CLI_OK) rc = qopts_resolve(C, &ctx.q, &ctx.o, &ctx.em) ? CLI_ERROR : CLI_OK;
    ctx.roste = !strcmp(ctx.q.method, "roste");
    if (rc == CLI_OK && !ctx.roste && (ctx.q.rotation_config || ctx.q.reselect_every))
        rc = CLI_ERROR, cli_error(C, "--rotation-config and --reselect-every need --method roste");
    if (rc == CLI_OK && resume && ctx.q.reselect_every)
        rc = CLI_ERROR, cli_error(C, "--resume with --reselect-every is not supported (the re-selections are not in the checkpoint)");
    if (rc != CLI_OK) {
        free(qa), free(sa);
        return 2;
    }
    llm_sft_hooks h = {C, QAT_DESC, qat_prepare, qat_after_step, qat_finish, &ctx};
    rc = cmd_llm_sft_hooked(nsa, sa, &h);
    if (ctx.total_reselect) fprintf(stderr, "rostesim %s: %ld re-selections\n", C, ctx.total_reselect);
    llm_rot_config_free(&ctx.rc);
    free(qa), free(sa);
    return rc;
}

/* ---- llm search ----------------------------------------------------------------------------- */

static int load_all(const char *C, const char *model, const char *data, int max_len, llm_model **m,
                    tok_tokenizer **tok, llm_dataset **ds)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/tokenizer.json", model);
    if (tok_load(tok, p) || llm_qat_load_model(m, model)) return lib_fail(C);
    if ((*m)->qat) return cli_error(C, "--model: '%s' is already quantized (has %s): give the full-precision model", model, LLM_QAT_FILE), 2;
    int eos = -1, pad = -1;
    if (llm_special_ids(&(*m)->cfg, model, *tok, &eos, &pad)) return lib_fail(C);
    if (max_len == 0) max_len = (*m)->cfg.max_pos < 512 ? (*m)->cfg.max_pos : 512;
    if (max_len > (*m)->cfg.max_pos) return cli_error(C, "--max-len: %d exceeds the model's %d positions", max_len, (*m)->cfg.max_pos), 2;
    llm_data_opts o = {max_len, 0, eos};
    if (llm_data_load(ds, data, *tok, &o) || llm_data_check_vocab(*ds, (*m)->cfg.vocab, pad, "tokenizer", model))
        return lib_fail(C);
    if ((*ds)->n == 0) return cli_error(C, "--data: '%s' has no rows", data), 2;
    return 0;
}

int cmd_llm_search(int argc, char **argv)
{
    const char *C = "llm search";
    qopts q;
    qopts_default(&q);
    const char *model = NULL, *data = NULL, *out = NULL, *tsv = NULL;
    int max_len = 0, threads = 0;
    cli_opt opts[] = {
        {"--model", OPT_STRING, &model, 0, -1, "DIR", "full-precision Hugging Face checkpoint folder (required)", 0},
        {"--data", OPT_STRING, &data, 0, -1, "FILE", "calibration data: .jsonl or .txt as for llm sft (required)", 0},
        {"--out", OPT_STRING, &out, 0, -1, "FILE", "rotation-config JSON to write (required)", 0},
        {"--tsv", OPT_STRING, &tsv, 0, -1, "FILE", "per-layer error table (default: --out with .tsv)", 0},
        {"--max-len", OPT_INT, &max_len, 0, 1 << 20, "T", "tokens per row (0: min(512, model))", 0},
        {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: OpenMP default)", 0},
        QOPTS(q),
    };
    cli_cmd cmd = {C, "--model DIR --data FILE --out config.json [options]",
                   "RoSTE's rotation search (the lower level, ROSTE.md §4): with the quantizers of\n"
                   "--wbits/--abits/--kvbits, two calibration passes over the first --calib rows of --data,\n"
                   "one with every R2/R3/R4 off and one with every one on (R1 as --r1), and per layer\n"
                   "each rotation is taken iff its own error term is lower (ties: identity):\n"
                   "  R2 at o_proj: ||Q(W)-W||^2 + (1/n) sum ||Q(X)-X||^2 of its input; R4 at down_proj\n"
                   "  likewise; R3 at the K cache (after RoPE). --error mean: per-element means instead.\n"
                   "--r1 search compares the total E (every site) with and without R1.\n"
                   "Writes the rotation-config JSON (the authors' layout plus \"signs\" and \"seed\") and a\n"
                   "TSV: layer, rotation, site, error off, error on, relative reduction, chosen.",
                   opts, sizeof opts / sizeof opts[0], 0, 0,
                   "example:\n  rostesim llm search --model base --data train.jsonl --calib 128 --out rot.json"};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    if (!model || !data || !out) return cli_error(C, "--model DIR, --data FILE and --out FILE are required (see --help)"), 2;
    llm_qat_opts o;
    llm_err_mode em;
    int rc = qopts_resolve(C, &q, &o, &em);
    if (rc) return rc;
    if (threads > 0) omp_set_num_threads(threads);
    llm_model *m = NULL;
    tok_tokenizer *tok = NULL;
    llm_dataset *ds = NULL;
    llm_rot_config rcfg = {0};
    llm_search_terms *terms = NULL;
    char tsvp[4200];
    double E1[2];
    if ((rc = load_all(C, model, data, max_len, &m, &tok, &ds))) goto done;
    if ((rc = rotate_and_search(C, model, &m, &q, &o, em, ds, &rcfg, &terms, E1))) goto done;
    if (tsv) snprintf(tsvp, sizeof tsvp, "%s", tsv);
    else {
        snprintf(tsvp, sizeof tsvp, "%s", out);
        size_t L = strlen(tsvp);
        if (L > 5 && !strcmp(tsvp + L - 5, ".json")) tsvp[L - 5] = '\0';
        strncat(tsvp, ".tsv", sizeof tsvp - strlen(tsvp) - 1);
    }
    if (llm_rot_config_save(&rcfg, out) || llm_search_write_tsv(tsvp, &rcfg, terms)) { rc = lib_fail(C); goto done; }
    print_choice(C, &rcfg);
    printf("search: wrote %s and %s\n", out, tsvp);
done:
    free(terms);
    llm_rot_config_free(&rcfg);
    llm_data_free(ds);
    llm_model_free(m);
    tok_free(tok);
    return rc;
}

/* ---- llm diagnose ----------------------------------------------------------------------------- */

enum { MAXRUNS = 8 }; /* --runs folders */

/* Draw one embedded script over dir (plots/); `prelude` (may be NULL) holds gnuplot definitions
 * the script reads (e.g. the runs' names). A failed figure is a warning: the tables are the
 * result. 1 when drawn. */
static int draw(const char *C, const char *script, const char *dir, const char *prelude)
{
    if (plot_run_script(dir, script, prelude) == RS_OK) return 1;
    fprintf(stderr, "rostesim %s: warning: no figure from %s: %s\n", C, script, rs_last_error());
    return 0;
}

/* The --runs list split at commas into dirs (in buf); the count, or -1 for more than max. */
static int split_runs(const char *runs, char *buf, size_t cap, const char **dirs, int max)
{
    snprintf(buf, cap, "%s", runs);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == max) return -1;
        dirs[n++] = t;
    }
    return n;
}

/* gnuplot definitions of the runs' names for fig4 (nruns, rn[1..nruns]) into names. */
static void run_names(const char *const *dirs, int n, char *names, size_t cap)
{
    size_t nl = (size_t)snprintf(names, cap, "nruns = %d\narray rn[%d]\n", n, n > 0 ? n : 1);
    for (int k = 0; k < n && nl < cap; k++) {
        char lab[256];
        llm_diag_run_label(dirs[k], lab, sizeof lab);
        nl += (size_t)snprintf(names + nl, cap - nl, "rn[%d] = \"%s\"\n", k + 1, lab);
    }
    if (nl >= cap) snprintf(names, cap, "nruns = 0\narray rn[1]\n");
}

/* Figs. 4 and 6 from the --runs folders: fig4.tsv from their training logs (a run without one
 * is a warning), fig6.tsv from their final models on the calibration rows. */
static int diagnose_runs(const char *C, const char *const *dirs, int n, const llm_dataset *ds, int calib, int layer,
                         const char *out, char *names, size_t cap)
{
    char p[4200];
    int found[MAXRUNS];
    snprintf(p, sizeof p, "%s/fig4.tsv", out);
    if (llm_diag_write_errors(p, dirs, n, found)) return lib_fail(C);
    for (int k = 0; k < n; k++)
        if (!found[k]) fprintf(stderr, "rostesim %s: warning: no %s/train_log.jsonl\n", C, dirs[k]);
    run_names(dirs, n, names, cap);
    llm_model *m[MAXRUNS] = {NULL};
    int nloaded = 0, mismatch = 0, rc = 0;
    if (llm_diag_load_runs(m, dirs, n, layer, ds, calib, &nloaded, &mismatch)) {
        rc = (cli_error(C, "--runs: %s", rs_last_error()), mismatch ? 2 : 1);
    } else {
        char lab[MAXRUNS][256];
        const char *labels[MAXRUNS];
        for (int k = 0; k < n; k++) llm_diag_run_label(dirs[k], lab[k], sizeof lab[k]), labels[k] = lab[k];
        snprintf(p, sizeof p, "%s/fig6.tsv", out);
        if (llm_diag_write_runs(p, m, labels, n)) rc = lib_fail(C);
    }
    for (int k = 0; k < nloaded; k++) llm_model_free(m[k]);
    return rc;
}

int cmd_llm_diagnose(int argc, char **argv)
{
    const char *C = "llm diagnose";
    qopts q;
    qopts_default(&q);
    const char *model = NULL, *data = NULL, *out = NULL, *runs = NULL;
    int max_len = 0, layer = 0, calib = 32;
    cli_opt opts[] = {
        {"--model", OPT_STRING, &model, 0, -1, "DIR", "full-precision checkpoint folder (required)", 0},
        {"--data", OPT_STRING, &data, 0, -1, "FILE", "calibration data (required)", 0},
        {"--out", OPT_STRING, &out, 0, -1, "DIR", "output folder for the tables and figures (required)", 0},
        {"--layer", OPT_INT, &layer, 0, 100000, "L", "layer of the per-channel figure", 0},
        {"--rows", OPT_INT, &calib, 1, 1000000, "N", "calibration rows", 0},
        {"--runs", OPT_STRING, &runs, 0, -1, "A,B", "llm qat output folders (e.g. STE,RoSTE; at most 8) for Figs. 4 and 6, labelled by folder name (a paper cell's CELL/model by CELL)", 0},
        {"--max-len", OPT_INT, &max_len, 0, 1 << 20, "T", "tokens per row (0: min(512, model))", 0},
        {"--wbits", OPT_INT, &q.wbits, 1, 16, "B", "weight bits", 0},
        {"--abits", OPT_INT, &q.abits, 1, 16, "B", "activation bits", 0},
        {"--kvbits", OPT_INT, &q.kvbits, 1, 16, "B", "K/V bits", 0},
        {"--signs", OPT_STRING, &q.signs, 0, -1, "S", "random signs: all, r1, none", 0},
        {"--rot-seed", OPT_LONG, &q.rot_seed, 0, 2147483647L, "S", "seed of the signs", 0},
    };
    cli_cmd cmd = {C, "--model DIR --data FILE --out DIR [options]",
                   "Quantization diagnostics with and without rotation (every R1-R4 on), over the first\n"
                   "--rows rows of --data:\n"
                   "  fig7.tsv / fig7_reduction.png: per layer and site (q/k/v, o, up, down; K and V\n"
                   "    cache) the relative reduction by rotation of the weight, input and K/V\n"
                   "    quantization errors and of the inputs' dynamic range (max - min per token)\n"
                   "    (the paper's Fig. 7);\n"
                   "  fig3.tsv / fig3_channels.png: per-channel max |input| of q/k/v and of down_proj in\n"
                   "    --layer, without and with rotation (Fig. 3);\n"
                   "  fig4.tsv / fig4_error.png, with --runs: the quantization error E and the training\n"
                   "    loss per step recorded in each run's train_log.jsonl (STE vs RoSTE, Fig. 4);\n"
                   "  fig6.tsv / fig6_channels.png, with --runs: per-channel max |input| of q/k/v and of\n"
                   "    down_proj in --layer for each run's final model (its folder, with its saved\n"
                   "    quantizers and rotations) on the same calibration rows (Fig. 6: STE keeps the\n"
                   "    outlier channels, RoSTE's rotated inputs are flat).\n"
                   "Figures need gnuplot; the tables are written without it, and a figure gnuplot\n"
                   "fails on is a warning on stderr (the exit status stays 0).",
                   opts, sizeof opts / sizeof opts[0], 0, 0,
                   "example:\n  rostesim llm diagnose --model base --data train.jsonl --out diag --runs runs/ste,runs/roste"};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    if (!model || !data || !out) return cli_error(C, "--model DIR, --data FILE and --out DIR are required (see --help)"), 2;
    llm_qat_opts o;
    llm_err_mode em;
    int rc = qopts_resolve(C, &q, &o, &em);
    if (rc) return rc;
    char runbuf[4200];
    const char *dirs[MAXRUNS];
    int nruns = runs ? split_runs(runs, runbuf, sizeof runbuf, dirs, MAXRUNS) : 0;
    if (nruns < 0) return cli_error(C, "--runs: at most %d folders", MAXRUNS), 2;
    if (runs && nruns == 0) return cli_error(C, "--runs: no folder named"), 2;
    if (rs_mkdir_p(out)) return lib_fail(C);
    llm_model *m[2] = {NULL, NULL};
    tok_tokenizer *tok = NULL;
    llm_dataset *ds = NULL;
    llm_rot_config rcfg[2] = {{0}, {0}};
    char p[4200];
    if ((rc = load_all(C, model, data, max_len, &m[0], &tok, &ds))) goto done;
    if (layer >= m[0]->cfg.n_layer) { rc = (cli_error(C, "--layer %d: the model has %d layers", layer, m[0]->cfg.n_layer), 2); goto done; }
    if (llm_qat_load_model(&m[1], model)) { rc = lib_fail(C); goto done; }
    if (llm_diag_calibrate(m, rcfg, &o, (llm_signs)llm_signs_parse(q.signs), (uint64_t)q.rot_seed, layer, ds, calib)) {
        rc = lib_fail(C);
        goto done;
    }
    snprintf(p, sizeof p, "%s/fig7.tsv", out);
    if (llm_diag_write_sites(p, m[0], m[1])) { rc = lib_fail(C); goto done; }
    snprintf(p, sizeof p, "%s/fig3.tsv", out);
    if (llm_diag_write_channels(p, m[0], m[1])) { rc = lib_fail(C); goto done; }
    char names[8192] = ""; /* gnuplot definitions of the runs' names, for fig4 */
    if (runs && (rc = diagnose_runs(C, dirs, nruns, ds, calib, layer, out, names, sizeof names))) goto done;
    int drawn = 0;
    if (plot_gnuplot_available()) {
        drawn += draw(C, "llm_fig7", out, NULL);
        drawn += draw(C, "llm_fig3", out, NULL);
        if (runs) drawn += draw(C, "llm_fig4", out, names);
        if (runs) drawn += draw(C, "llm_fig6", out, NULL);
    } else {
        fprintf(stderr, "rostesim %s: gnuplot not found: tables only (apt-get install gnuplot-nox)\n", C);
    }
    printf("diagnose: wrote fig7.tsv, fig3.tsv%s and %d figures into %s\n", runs ? ", fig4.tsv, fig6.tsv" : "", drawn, out);
done:
    llm_rot_config_free(&rcfg[0]);
    llm_rot_config_free(&rcfg[1]);
    llm_data_free(ds);
    llm_model_free(m[0]);
    llm_model_free(m[1]);
    tok_free(tok);
    return rc;
}
