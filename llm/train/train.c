/* rostesim LLM: the SFT trainer (see train.h).
 *
 * Checkpoint file format, version 1 (little-endian):
 *   offset  size  field
 *        0     8  magic "RSTRAIN\0"
 *        8     4  u32 version (LLM_CKPT_VERSION)
 *       12     4  u32 optlen: bytes of the options text below (<= 4096)
 *       16     8  u64 nparams (floats)
 *       24     8  u64 step (optimizer steps done)
 *       32     8  u64 epoch
 *       40     8  u64 position in the epoch (rows consumed)
 *       48     8  u64 FNV-1a 64 of the data file
 *       56     8  u64 FNV-1a 64 of the tokenized data (ids, targets, row offsets)
 *       64     8  u64 FNV-1a 64 of the model's shapes
 *       72     8  f64 loss of the last step       (its statistics, so that a resumed run can
 *       80     8  f64 learning rate of it          log the checkpoint's step even when the
 *       88     8  f64 gradient norm of it          run was killed before logging it)
 *       96     8  u64 target tokens of it
 *      104     8  u64 input positions of it
 *      112  optlen  options text "key=value key=value ..." (what must not change on resume)
 *        .  4*nparams  parameters (f32)
 *        .  4*nparams  AdamW first moments m
 *        .  4*nparams  AdamW second moments v
 *        .     8  u64 FNV-1a 64 of every byte before it */
#include "llm/train/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm/io/fileio.h"
#include "par/par.h"
#include "quant/rng.h"
#include "quant/status.h"

#define LLM_CKPT_MAGIC "RSTRAIN"
#define LLM_CKPT_VERSION 1u
#define LLM_CKPT_HDR 112
#define LLM_CKPT_MAXOPT 4096

/* ---- AdamW, schedules, clipping ---------------------------------------------------------- */

void llm_adamw_update(float *p, const float *g, float *m, float *v, size_t n, long t, double lr, const llm_adamw_hp *hp)
{
    /* torch.optim.AdamW, single-tensor path, in the same float operations:
     *   p *= 1 - lr*wd;  m = lerp(m, g, 1 - beta1);  v = v*beta2 + (1 - beta2)*g*g;
     *   denom = sqrt(v) / sqrt(1 - beta2^t) + eps;  p += -(lr / (1 - beta1^t)) * (m / denom) */
    const float decay = (float)(1.0 - lr * hp->weight_decay);
    const float w = (float)(1.0 - hp->beta1);
    const float b2 = (float)hp->beta2, ob2 = (float)(1.0 - hp->beta2);
    const double bc1 = 1.0 - pow(hp->beta1, (double)t), bc2 = 1.0 - pow(hp->beta2, (double)t);
    const float neg_step = (float)(-(lr / bc1));
    const float bc2s = (float)sqrt(bc2);
    const float eps = (float)hp->eps;
    const long N = (long)n;
#pragma omp parallel for schedule(static) if (N > 65536)
    for (long i = 0; i < N; i++) {
        float pi = p[i] * decay;
        float gi = g[i], mi = m[i];
        mi = fabsf(w) < 0.5f ? mi + w * (gi - mi) : gi - (gi - mi) * (1.0f - w); /* torch lerp */
        float vi = v[i] * b2 + ob2 * gi * gi;
        float denom = sqrtf(vi) / bc2s + eps;
        p[i] = pi + neg_step * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }
}

long llm_warmup_steps(double ratio, long total)
{
    double w = ceil(ratio * (double)total);
    return w < 0 ? 0 : (long)w;
}

double llm_sched_factor(llm_sched s, long step, long warmup, long total)
{
    if (step < warmup) return (double)step / (double)(warmup > 1 ? warmup : 1);
    double rest = (double)(total - warmup > 1 ? total - warmup : 1);
    switch (s) {
    case LLM_SCHED_COSINE: {
        double progress = (double)(step - warmup) / rest;
        double f = 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * progress));
        return f > 0 ? f : 0;
    }
    case LLM_SCHED_LINEAR: {
        double f = (double)(total - step) / rest;
        return f > 0 ? f : 0;
    }
    case LLM_SCHED_CONSTANT: return 1.0;
    }
    return 1.0;
}

const char *llm_sched_name(llm_sched s)
{
    switch (s) {
    case LLM_SCHED_COSINE: return "cosine";
    case LLM_SCHED_LINEAR: return "linear";
    case LLM_SCHED_CONSTANT: return "constant";
    }
    return "?";
}

#define CLIP_CHUNK 65536

double llm_grad_sumsq(const float *g, size_t n)
{
    /* fixed chunks summed in order: the norm does not depend on the thread count */
    long nch = (long)((n + CLIP_CHUNK - 1) / CLIP_CHUNK);
    double stackpart[64], *part = nch <= 64 ? stackpart : malloc((size_t)nch * sizeof *part);
    double ss = 0;
    if (part) {
#pragma omp parallel for schedule(static) if (nch > 4)
        for (long c = 0; c < nch; c++) {
            size_t a = (size_t)c * CLIP_CHUNK, b = a + CLIP_CHUNK < n ? a + CLIP_CHUNK : n;
            double s = 0;
            for (size_t i = a; i < b; i++) s += (double)g[i] * g[i];
            part[c] = s;
        }
        for (long c = 0; c < nch; c++) ss += part[c];
        if (part != stackpart) free(part);
    } else {
        for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    }
    return ss;
}

/* g *= max_norm / (norm + 1e-6) when that is below 1 (max_norm > 0, norm finite). */
static void clip_scale(float *g, size_t n, double norm, double max_norm)
{
    if (max_norm > 0 && isfinite(norm)) {
        float coef = (float)(max_norm / (norm + 1e-6));
        if (coef < 1.0f) {
            const long N = (long)n;
#pragma omp parallel for schedule(static) if (N > 65536)
            for (long i = 0; i < N; i++) g[i] *= coef;
        }
    }
}

double llm_clip_grad(float *g, size_t n, double max_norm)
{
    double norm = sqrt(llm_grad_sumsq(g, n));
    clip_scale(g, n, norm, max_norm);
    return norm;
}

/* ---- the trainer ------------------------------------------------------------------------ */

struct llm_trainer {
    llm_model *m;
    const llm_dataset *ds;
    llm_train_opts o;
    int pad_id;
    float *mom, *vel;       /* AdamW state, nparams each */
    long step, total, warmup, per_epoch;
    long epoch;
    size_t pos;
    size_t *order;          /* permutation of the rows for order_epoch */
    long order_epoch;
    int32_t *tok, *tgt;     /* micro-batch buffers, batch * max_row */
    uint64_t model_hash;
    llm_train_stats last;   /* statistics of the last step */
    char opts[LLM_CKPT_MAXOPT];
    /* several ranks (par/par.h) */
    int nrank, rank;
    int zero1;              /* R > 1 and ZeRO-1: mom/vel hold this rank's shard only */
    size_t sh_off, sh_len;  /* this rank's shard of the parameters (R = 1: all of them) */
    float *gsh;             /* ZeRO-1: this rank's shard of the summed gradient */
};

void llm_train_opts_default(llm_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->lr = 2e-5;
    o->epochs = 1;
    o->max_steps = 0;
    o->batch = 1;
    o->grad_accum = 1;
    o->warmup = 0.0;
    o->sched = LLM_SCHED_COSINE;
    o->weight_decay = 0.0;
    o->clip_grad = 1.0;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->seed = 42;
    o->save_every = 0;
    o->max_len = 512;
    o->full_loss = 0;
}

static uint64_t model_shape_hash(const llm_model *m)
{
    uint64_t h = LLM_FNV_INIT;
    const llm_config *c = &m->cfg;
    int iv[] = {(int)c->arch, c->vocab, c->d, c->n_layer, c->n_head, c->n_kv_head, c->head_dim, c->d_ff,
                (int)c->act, c->rot_dim, c->tied, c->parallel_residual};
    h = llm_fnv1a(h, iv, sizeof iv);
    uint64_t n = m->nparams;
    h = llm_fnv1a(h, &n, sizeof n);
    for (size_t i = 0; i < m->ntab; i++) {
        const llm_param *p = &m->tab[i];
        h = llm_fnv1a(h, p->name, strnlen(p->name, sizeof p->name));
        int sh[3] = {p->ndim, p->shape[0], p->shape[1]};
        h = llm_fnv1a(h, sh, sizeof sh);
    }
    return h;
}

/* The shortest %g spelling that reads back as x (0.005, not 0.0050000000000000001). */
static const char *fmt_exact(char *buf, size_t n, double x)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    return buf;
}

static void format_opts(char *buf, size_t n, const llm_train_opts *o)
{
    char v[8][32];
    snprintf(buf, n,
             "lr=%s epochs=%d max_steps=%ld batch=%d grad_accum=%d max_len=%d full_loss=%d warmup=%s "
             "schedule=%s weight_decay=%s clip_grad=%s beta1=%s beta2=%s eps=%s seed=%llu",
             fmt_exact(v[0], 32, o->lr), o->epochs, o->max_steps, o->batch, o->grad_accum, o->max_len,
             o->full_loss, fmt_exact(v[1], 32, o->warmup), llm_sched_name(o->sched),
             fmt_exact(v[2], 32, o->weight_decay), fmt_exact(v[3], 32, o->clip_grad), fmt_exact(v[4], 32, o->beta1),
             fmt_exact(v[5], 32, o->beta2), fmt_exact(v[6], 32, o->eps), (unsigned long long)o->seed);
}

void llm_trainer_free(llm_trainer *tr)
{
    if (!tr) return;
    free(tr->mom);
    free(tr->vel);
    free(tr->order);
    free(tr->tok);
    free(tr->tgt);
    free(tr->gsh);
    free(tr);
}

static void opts_diff(char *out, size_t n, const char *a_text, const char *b_text, const char *a_name, const char *b_name);

/* FNV-1a over 64-bit words (a byte tail last): the parameters' fingerprint, 8 times faster
 * than byte-wise. */
static uint64_t hash_words(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 1099511628211ull;
    }
    return rs_par_hash(h, b + i, n - i);
}

/* Several ranks: every rank must have been given the same job (collective). On a mismatch
 * every rank returns RS_EINVAL; rank 0's message names the options that differ. */
static int check_ranks(const llm_trainer *tr)
{
    char mine[LLM_CKPT_MAXOPT + 32], other[LLM_CKPT_MAXOPT + 32];
    memset(mine, 0, sizeof mine);
    snprintf(mine, sizeof mine, "%s zero1=%d", tr->opts, tr->o.zero1 ? 1 : 0);
    int st = rs_par_check_same("the training options", rs_par_hash(RS_PAR_HASH0, mine, strlen(mine)));
    if (st == RS_EINVAL) { /* name them: each rank's text in turn to every rank */
        char msg[1024], diff[1024] = "", name[32];
        snprintf(msg, sizeof msg, "%s", rs_last_error());
        for (int q = 1; q < tr->nrank; q++) {
            if (tr->rank == q) memcpy(other, mine, sizeof mine);
            if ((st = rs_par_bcast(other, sizeof other, q))) return st;
            if (tr->rank == 0 && !diff[0] && strcmp(other, mine)) {
                snprintf(name, sizeof name, "rank %d", q);
                opts_diff(diff, sizeof diff, mine, other, "rank 0", name);
            }
        }
        if (diff[0])
            return RS_ERROR(RS_EINVAL, "the ranks disagree on the training options (%s): every rank must be given the same "
                                       "options", diff);
        return RS_ERROR(RS_EINVAL, "%s", msg);
    }
    if (st) return st;
    const llm_dataset *ds = tr->ds;
    uint64_t h = rs_par_hash(RS_PAR_HASH0, &ds->file_hash, sizeof ds->file_hash);
    if ((st = rs_par_check_same("the data file (--data: its bytes)", h))) return st;
    h = rs_par_hash(RS_PAR_HASH0, &ds->tok_hash, sizeof ds->tok_hash);
    if ((st = rs_par_check_same("the tokenized data (tokenizer, --max-len or --full-loss)", h))) return st;
    if ((st = rs_par_check_same("the model's shapes (--model)", tr->model_hash))) return st;
    h = hash_words(RS_PAR_HASH0, tr->m->params, tr->m->nparams * sizeof(float));
    if ((st = rs_par_check_same("the model's parameters (--model weights, or the rotations merged into them)", h))) return st;
    h = rs_par_hash(RS_PAR_HASH0, &tr->o.job_hash, sizeof tr->o.job_hash);
    return rs_par_check_same("the command's other settings (quantizers and rotations)", h);
}

int llm_trainer_alloc(llm_trainer **out, llm_model *m, const llm_dataset *ds, int pad_id, const llm_train_opts *o)
{
    *out = NULL;
    if (o->batch < 1 || o->grad_accum < 1) return RS_ERROR(RS_EINVAL, "batch and grad_accum must be >= 1");
    if (o->max_steps < 0 || (o->max_steps == 0 && o->epochs < 1))
        return RS_ERROR(RS_EINVAL, "need epochs >= 1 or max_steps >= 1");
    if (!(o->lr >= 0) || !(o->warmup >= 0 && o->warmup <= 1) || !(o->weight_decay >= 0) || !(o->clip_grad >= 0) ||
        !(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1) || !(o->eps >= 0))
        return RS_ERROR(RS_EINVAL, "training option out of range (lr, warmup, weight decay, clip, betas or eps)");
    if (!ds || ds->n == 0) return RS_ERROR(RS_EINVAL, "empty data set");
    if (ds->max_row > m->cfg.max_pos)
        return RS_ERROR(RS_EINVAL, "%s: rows of up to %d tokens exceed the model's max_position_embeddings %d (lower --max-len)",
                        ds->path, ds->max_row, m->cfg.max_pos);
    llm_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return RS_ERROR(RS_ENOMEM, "out of memory (trainer)");
    tr->m = m;
    tr->ds = ds;
    tr->o = *o;
    tr->pad_id = pad_id;
    tr->nrank = rs_par_size();
    tr->rank = rs_par_rank();
    tr->model_hash = model_shape_hash(m);
    format_opts(tr->opts, sizeof tr->opts, o);
    if (tr->nrank > 1) {
        int st = check_ranks(tr);
        size_t want = (size_t)o->batch * (size_t)o->grad_accum, rows = want < ds->n ? want : ds->n;
        if (!st && rows < (size_t)tr->nrank)
            st = RS_ERROR(RS_EINVAL, "%d ranks, but a step has only %zu rows (batch %d x grad_accum %d, %zu rows of data): "
                                     "run at most %zu ranks, or give a step more rows", tr->nrank, rows, o->batch,
                                     o->grad_accum, ds->n, rows);
        if (st) {
            llm_trainer_free(tr);
            return st;
        }
    }
    tr->zero1 = o->zero1 && tr->nrank > 1;
    tr->sh_off = rs_par_shard_off(m->nparams, tr->rank);
    tr->sh_len = rs_par_shard_len(m->nparams, tr->rank);
    size_t nmom = tr->zero1 ? tr->sh_len : m->nparams;
    tr->mom = calloc(nmom ? nmom : 1, sizeof *tr->mom);
    tr->vel = calloc(nmom ? nmom : 1, sizeof *tr->vel);
    if (tr->zero1) tr->gsh = malloc((tr->sh_len ? tr->sh_len : 1) * sizeof *tr->gsh);
    tr->order = malloc(ds->n * sizeof *tr->order);
    size_t cap = (size_t)o->batch * (size_t)ds->max_row;
    tr->tok = malloc(cap * sizeof *tr->tok);
    tr->tgt = malloc(cap * sizeof *tr->tgt);
    if (!tr->mom || !tr->vel || !tr->order || !tr->tok || !tr->tgt || (tr->zero1 && !tr->gsh)) {
        llm_trainer_free(tr);
        return RS_ERROR(RS_ENOMEM, "out of memory (AdamW state for %zu parameters)", m->nparams);
    }
    int st = llm_model_alloc_grads(m);
    if (st == RS_OK) st = llm_model_reserve(m, o->batch, ds->max_row);
    if (st != RS_OK) {
        llm_trainer_free(tr);
        return st;
    }
    size_t rows_per_step = (size_t)o->batch * (size_t)o->grad_accum;
    tr->per_epoch = (long)((ds->n + rows_per_step - 1) / rows_per_step);
    tr->total = o->max_steps > 0 ? o->max_steps : (long)o->epochs * tr->per_epoch;
    tr->warmup = llm_warmup_steps(o->warmup, tr->total);
    tr->order_epoch = -1;
    *out = tr;
    return RS_OK;
}

long llm_trainer_total(const llm_trainer *tr) { return tr->total; }
long llm_trainer_step_no(const llm_trainer *tr) { return tr->step; }
long llm_trainer_steps_per_epoch(const llm_trainer *tr) { return tr->per_epoch; }
const llm_train_stats *llm_trainer_last(const llm_trainer *tr) { return tr->step > 0 ? &tr->last : NULL; }

static void put_f64(unsigned char *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(u >> (8 * i));
}
static double get_f64(const unsigned char *b)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u |= (uint64_t)b[i] << (8 * i);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

static int ensure_order(llm_trainer *tr)
{
    if (tr->order_epoch == tr->epoch) return RS_OK;
    rs_rng *r = rs_rng_alloc(tr->o.seed, (uint64_t)RS_STREAM_ORDER + ((uint64_t)tr->epoch << 32));
    if (!r) return RS_ERROR(RS_ENOMEM, "out of memory (rng)");
    for (size_t i = 0; i < tr->ds->n; i++) tr->order[i] = i;
    rs_rng_shuffle(r, tr->order, tr->ds->n);
    rs_rng_free(r);
    tr->order_epoch = tr->epoch;
    return RS_OK;
}

int llm_trainer_step(llm_trainer *tr, llm_train_stats *st)
{
    if (tr->step >= tr->total) return RS_ERROR(RS_EINVAL, "training already finished (%ld steps)", tr->total);
    int rc = ensure_order(tr);
    if (rc) return rc;
    llm_model *m = tr->m;
    const llm_dataset *ds = tr->ds;
    size_t want = (size_t)tr->o.batch * (size_t)tr->o.grad_accum;
    size_t nrows = ds->n - tr->pos < want ? ds->n - tr->pos : want;
    const size_t *rows = tr->order + tr->pos;
    size_t ntok_step = llm_data_count(ds, rows, nrows);
    if (ntok_step == 0) return RS_ERROR(RS_EINVAL, "step %ld has no target tokens", tr->step + 1);

    /* this rank's rows [a0, a1) of the step, in micro-batches of mb rows (see train.h) */
    size_t a0 = 0, a1 = nrows, mb = (size_t)tr->o.batch;
    if (tr->nrank > 1) {
        size_t nmb = (nrows + mb - 1) / mb;
        if (nmb >= (size_t)tr->nrank) {
            a0 = rs_par_shard_off(nmb, tr->rank) * mb;
            a1 = a0 + rs_par_shard_len(nmb, tr->rank) * mb;
            if (a1 > nrows) a1 = nrows;
        } else {
            a0 = rs_par_shard_off(nrows, tr->rank);
            a1 = a0 + rs_par_shard_len(nrows, tr->rank);
            mb = a1 - a0 ? a1 - a0 : 1;
        }
    }

    llm_model_zero_grad(m);
    double loss_sum = 0;
    long ninput = 0;
    float scale = (float)(1.0 / (double)ntok_step);
    for (size_t a = a0; a < a1; a += mb) {
        int B = (int)(a1 - a < mb ? a1 - a : mb);
        int T, nt;
        llm_data_batch(ds, rows + a, B, tr->pad_id, tr->tok, tr->tgt, &T, &nt);
        float loss = 0;
        int ntok = 0;
        rc = llm_model_forward(m, tr->tok, tr->tgt, B, T, &loss, &ntok);
        if (rc) return rc;
        if (nt > 0) {
            rc = llm_model_backward(m, scale);
            if (rc) return rc;
            loss_sum += (double)loss * ntok;
        }
        ninput += (long)B * T;
    }
    /* the step's sums over every rank, in rank order (R = 1: as they are) */
    double sums[2] = {loss_sum, (double)ninput};
    if ((rc = rs_par_allreduce_f64(sums, 2))) return rc;
    ninput = (long)sums[1];
    double loss = sums[0] / (double)ntok_step;
    if (!isfinite(loss)) return RS_ERROR(RS_ENUMERIC, "non-finite loss at step %ld (lower the learning rate?)", tr->step + 1);
    /* g: the summed gradient of this rank's shard (ZeRO-1) or of every parameter; the squared
     * norm is the sum of the shards' in rank order either way */
    const size_t np = m->nparams;
    float *g = m->grads, *p = m->params;
    size_t n = np;
    double ss = 0;
    if (tr->zero1) {
        if ((rc = rs_par_reduce_scatter_f32(m->grads, tr->gsh, np))) return rc;
        g = tr->gsh, p = m->params + tr->sh_off, n = tr->sh_len;
        ss = llm_grad_sumsq(g, n);
        if ((rc = rs_par_allreduce_f64(&ss, 1))) return rc;
    } else {
        if ((rc = rs_par_allreduce_f32(m->grads, np))) return rc;
        for (int r = 0; r < tr->nrank; r++) ss += llm_grad_sumsq(g + rs_par_shard_off(np, r), rs_par_shard_len(np, r));
    }
    double norm = sqrt(ss);
    if (!isfinite(norm))
        return RS_ERROR(RS_ENUMERIC, "non-finite gradient norm at step %ld (lower the learning rate?)", tr->step + 1);
    clip_scale(g, n, norm, tr->o.clip_grad);
    double lr = tr->o.lr * llm_sched_factor(tr->o.sched, tr->step, tr->warmup, tr->total);
    llm_adamw_hp hp = {tr->o.beta1, tr->o.beta2, tr->o.eps, tr->o.weight_decay};
    llm_adamw_update(p, g, tr->mom, tr->vel, n, tr->step + 1, lr, &hp);
    if (tr->zero1 && (rc = rs_par_allgather_f32(m->params, np))) return rc;
    tr->step++;
    tr->pos += nrows;
    if (tr->pos >= ds->n) {
        tr->pos = 0;
        tr->epoch++;
    }
    tr->last = (llm_train_stats){tr->step, tr->total, tr->epoch, tr->pos, loss, lr, norm, (long)ntok_step, ninput, 0};
    if (st) {
        st->step = tr->step;
        st->total = tr->total;
        st->epoch = tr->epoch;
        st->pos = tr->pos;
        st->loss = loss;
        st->lr = lr;
        st->grad_norm = norm;
        st->ntok = (long)ntok_step;
        st->ninput = ninput;
        st->saved = 0;
    }
    return RS_OK;
}

int llm_trainer_run(llm_trainer *tr, const char *ckpt_path, llm_train_cb cb, void *ctx)
{
    /* step of the last checkpoint on disk (the resumed one after llm_trainer_load) */
    long saved = tr->last.saved ? tr->last.step : -1;
    while (tr->step < tr->total) {
        llm_train_stats s;
        int rc = llm_trainer_step(tr, &s);
        if (rc == RS_ENUMERIC && ckpt_path && tr->o.save_every > 0) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", rs_last_error());
            if (saved >= 0)
                return RS_ERROR(rc, "%s; the checkpoint of step %ld is kept in %s", msg, saved, ckpt_path);
            return RS_ERROR(rc, "%s; no checkpoint has been written yet", msg);
        }
        if (rc) return rc;
        if (ckpt_path && tr->o.save_every > 0 && tr->step % tr->o.save_every == 0 && tr->step < tr->total) {
            rc = llm_trainer_save(tr, ckpt_path);
            if (rc) return rc;
            s.saved = 1;
            saved = tr->step;
        }
        int stop = cb ? cb(ctx, &s) : 0;
        if (tr->nrank > 1 && cb && (rc = rs_par_max_int(stop != 0, &stop))) return rc; /* all stop, or none */
        if (stop) break;
    }
    return RS_OK;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static void put_u32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *b)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)b[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

/* floats are stored little-endian: this build assumes a little-endian host */
static int host_le(void)
{
    const uint32_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

static int write_hashed(FILE *f, const void *p, size_t n, uint64_t *h)
{
    *h = llm_fnv1a(*h, p, n);
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

/* ZeRO-1: the whole of a sharded moment in full (nparams floats): this rank's shard, then
 * every rank's gathered (collective). */
static int gather_moment(const llm_trainer *tr, const float *shard, float *full)
{
    memcpy(full + tr->sh_off, shard, tr->sh_len * sizeof *full);
    return rs_par_allgather_f32(full, tr->m->nparams);
}

static int save_rank0(const llm_trainer *tr, const char *path, float *full);

int llm_trainer_save(const llm_trainer *tr, const char *path)
{
    if (tr->nrank == 1) return save_rank0(tr, path, NULL);
    /* several ranks: rank 0 writes; with ZeRO-1 every rank takes part in gathering the
     * moments (into one buffer, a moment at a time); all agree on the outcome */
    float *full = NULL;
    int st = RS_OK, any = 0;
    if (tr->zero1 && !(full = malloc(tr->m->nparams * sizeof *full)))
        st = RS_ERROR(RS_ENOMEM, "out of memory (gathering the AdamW moments of %zu parameters)", tr->m->nparams);
    int rc = rs_par_max_int(st != RS_OK, &any);
    if (!rc && !any) {
        if (tr->rank == 0) st = save_rank0(tr, path, full);
        else if (tr->zero1) {
            rc = gather_moment(tr, tr->mom, full);
            if (!rc) rc = gather_moment(tr, tr->vel, full);
        }
        if (!rc) rc = rs_par_max_int(st != RS_OK, &any);
    }
    free(full);
    if (rc) return rc;
    if (st) return st;
    if (any) return RS_ERROR(RS_EIO, "another rank failed while writing the checkpoint '%s' (its message is above)", path);
    return RS_OK;
}

/* Rank 0 (or the only rank) writes; full: ZeRO-1's gathering buffer (collective then). */
static int save_rank0(const llm_trainer *tr, const char *path, float *full)
{
    int grc = RS_OK; /* a failed gather: the other ranks must still see both gathers */
    llm_atomic a;
    int open_failed = !host_le() || llm_atomic_open(&a, path, LLM_ATOMIC_SYNC);
    if (open_failed) {
        if (full) {
            grc = gather_moment(tr, tr->mom, full);
            if (!grc) grc = gather_moment(tr, tr->vel, full);
            if (grc) return grc;
        }
        if (!host_le()) return RS_ERROR(RS_ENOTSUP, "checkpoints need a little-endian host");
        return RS_ERROR(RS_EIO, "cannot write '%s': %s", a.tmp, strerror(a.err));
    }
    FILE *f = a.f;
    const llm_model *m = tr->m;
    size_t optlen = strlen(tr->opts);
    unsigned char hdr[LLM_CKPT_HDR];
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, LLM_CKPT_MAGIC, 8);
    put_u32(hdr + 8, LLM_CKPT_VERSION);
    put_u32(hdr + 12, (uint32_t)optlen);
    put_u64(hdr + 16, m->nparams);
    put_u64(hdr + 24, (uint64_t)tr->step);
    put_u64(hdr + 32, (uint64_t)tr->epoch);
    put_u64(hdr + 40, (uint64_t)tr->pos);
    put_u64(hdr + 48, tr->ds->file_hash);
    put_u64(hdr + 56, tr->ds->tok_hash);
    put_u64(hdr + 64, tr->model_hash);
    put_f64(hdr + 72, tr->last.loss);
    put_f64(hdr + 80, tr->last.lr);
    put_f64(hdr + 88, tr->last.grad_norm);
    put_u64(hdr + 96, (uint64_t)tr->last.ntok);
    put_u64(hdr + 104, (uint64_t)tr->last.ninput);
    uint64_t h = LLM_FNV_INIT;
    int bad = write_hashed(f, hdr, sizeof hdr, &h) || write_hashed(f, tr->opts, optlen, &h) ||
              write_hashed(f, m->params, m->nparams * sizeof(float), &h);
    for (int k = 0; k < 2; k++) {
        const float *mo = k ? tr->vel : tr->mom;
        if (full) {
            if (!grc) grc = gather_moment(tr, mo, full);
            mo = full;
        }
        if (!bad && !grc) bad = write_hashed(f, mo, m->nparams * sizeof(float), &h);
    }
    if (grc) {
        llm_atomic_abort(&a);
        return grc;
    }
    unsigned char tail[8];
    put_u64(tail, h);
    if (!bad) bad = fwrite(tail, 1, 8, f) != 8;
    if (!llm_atomic_commit(&a, !bad)) return RS_OK;
    if (a.stage == LLM_ATOMIC_WRITE) return RS_ERROR(RS_EIO, "write error on '%s': %s", a.tmp, strerror(a.err));
    return RS_ERROR(RS_EIO, "cannot rename '%s' to '%s': %s", a.tmp, path, strerror(a.err));
}

/* Name the options whose values differ between two option texts, a_text (called a_name in
 * the message) and b_text. */
static void opts_diff(char *out, size_t n, const char *ck, const char *now, const char *a_name, const char *b_name)
{
    out[0] = '\0';
    size_t used = 0;
    char a[LLM_CKPT_MAXOPT + 1], b[LLM_CKPT_MAXOPT + 1];
    snprintf(a, sizeof a, "%s", ck);
    snprintf(b, sizeof b, "%s", now);
    char *sa, *sb;
    for (char *ta = strtok_r(a, " ", &sa); ta; ta = strtok_r(NULL, " ", &sa)) {
        char *eq = strchr(ta, '=');
        if (!eq) continue;
        size_t kl = (size_t)(eq - ta);
        const char *other = NULL;
        char bb[LLM_CKPT_MAXOPT + 1];
        snprintf(bb, sizeof bb, "%s", b);
        for (char *tb = strtok_r(bb, " ", &sb); tb; tb = strtok_r(NULL, " ", &sb))
            if (!strncmp(tb, ta, kl) && tb[kl] == '=') other = tb + kl + 1;
        if (other && !strcmp(other, eq + 1)) continue;
        int k = snprintf(out + used, n - used, "%s%.*s: %s %s, %s %s", used ? "; " : "", (int)kl, ta, a_name, eq + 1,
                         b_name, other ? other : "(absent)");
        if (k < 0 || (size_t)k >= n - used) break;
        used += (size_t)k;
    }
    if (!used) snprintf(out, n, "%s '%.400s', %s '%.400s'", a_name, ck, b_name, now);
}

static int load_file(llm_trainer *tr, const char *path);

int llm_trainer_load(llm_trainer *tr, const char *path)
{
    int st = load_file(tr, path), any = 0;
    if (tr->nrank == 1) return st;
    int rc = rs_par_max_int(st != RS_OK, &any); /* every rank resumes, or none */
    if (rc) return rc;
    if (st) return st;
    if (any) return RS_ERROR(RS_EIO, "another rank could not load the checkpoint '%s' (its message is above)", path);
    return RS_OK;
}

static int load_file(llm_trainer *tr, const char *path)
{
    if (!host_le()) return RS_ERROR(RS_ENOTSUP, "checkpoints need a little-endian host");
    FILE *f = fopen(path, "rb");
    if (!f) return RS_ERROR(RS_EIO, "cannot open checkpoint '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        fclose(f);
        return RS_ERROR(RS_EIO, "cannot stat '%s': %s", path, strerror(errno));
    }
    uint64_t fsize = (uint64_t)sb.st_size;
    unsigned char hdr[LLM_CKPT_HDR];
    const char *fix = "remove it (and train_log.jsonl) to start afresh, or resume with the rostesim that wrote it";
    if (fsize < 12 || fread(hdr, 1, 12, f) != 12) {
        fclose(f);
        return RS_ERROR(RS_EINVAL, "%s: truncated checkpoint (%llu bytes, the header alone has %d): %s", path,
                        (unsigned long long)fsize, LLM_CKPT_HDR, fix);
    }
    if (memcmp(hdr, LLM_CKPT_MAGIC, 8) != 0) {
        fclose(f);
        return RS_ERROR(RS_EINVAL, "%s: not a rostesim training checkpoint (bad magic number): %s", path, fix);
    }
    uint32_t ver = get_u32(hdr + 8);
    if (ver != LLM_CKPT_VERSION) {
        fclose(f);
        return RS_ERROR(RS_EINVAL, "%s: checkpoint format version %u, this rostesim reads version %u: %s", path, ver,
                        LLM_CKPT_VERSION, fix);
    }
    if (fsize < LLM_CKPT_HDR || fread(hdr + 12, 1, LLM_CKPT_HDR - 12, f) != LLM_CKPT_HDR - 12) {
        fclose(f);
        return RS_ERROR(RS_EINVAL, "%s: truncated checkpoint (%llu bytes, the header alone has %d): %s", path,
                        (unsigned long long)fsize, LLM_CKPT_HDR, fix);
    }
    uint32_t optlen = get_u32(hdr + 12);
    uint64_t np = get_u64(hdr + 16);
    if (optlen > LLM_CKPT_MAXOPT || np > ((uint64_t)1 << 40)) {
        fclose(f);
        return RS_ERROR(RS_EINVAL, "%s: corrupt checkpoint header (options %u bytes, %llu parameters): %s", path, optlen,
                        (unsigned long long)np, fix);
    }
    uint64_t want = (uint64_t)LLM_CKPT_HDR + optlen + 12 * np + 8;
    if (fsize != want) {
        fclose(f);
        return RS_ERROR(RS_EINVAL, "%s: %s checkpoint: %llu bytes, its header says %llu: %s", path,
                        fsize < want ? "truncated" : "corrupt", (unsigned long long)fsize, (unsigned long long)want, fix);
    }
    llm_model *m = tr->m;
    if (np != m->nparams) {
        fclose(f);
        return RS_ERROR(RS_EINVAL, "%s: the checkpoint holds %llu parameters, the model %zu: resume with the same --model",
                        path, (unsigned long long)np, m->nparams);
    }
    char opts[LLM_CKPT_MAXOPT + 1];
    float *p = malloc(np * sizeof *p);
    float *mm = malloc(np * sizeof *mm), *vv = malloc(np * sizeof *vv);
    unsigned char tail[8];
    int rd = p && mm && vv && fread(opts, 1, optlen, f) == optlen && fread(p, sizeof *p, np, f) == np &&
             fread(mm, sizeof *mm, np, f) == np && fread(vv, sizeof *vv, np, f) == np && fread(tail, 1, 8, f) == 8;
    fclose(f);
    int st = RS_OK;
    if (!p || !mm || !vv) st = RS_ERROR(RS_ENOMEM, "out of memory reading '%s'", path);
    else if (!rd) st = RS_ERROR(RS_EIO, "read error on '%s'", path);
    if (st == RS_OK) {
        opts[optlen] = '\0';
        uint64_t h = llm_fnv1a(LLM_FNV_INIT, hdr, sizeof hdr);
        h = llm_fnv1a(h, opts, optlen);
        h = llm_fnv1a(h, p, np * sizeof *p);
        h = llm_fnv1a(h, mm, np * sizeof *mm);
        h = llm_fnv1a(h, vv, np * sizeof *vv);
        if (h != get_u64(tail)) st = RS_ERROR(RS_EINVAL, "%s: corrupt checkpoint (checksum mismatch): %s", path, fix);
    }
    uint64_t step = get_u64(hdr + 24), epoch = get_u64(hdr + 32), pos = get_u64(hdr + 40);
    if (st == RS_OK && get_u64(hdr + 64) != tr->model_hash)
        st = RS_ERROR(RS_EINVAL, "%s: the checkpoint was written for a model of other shapes than this --model: resume with "
                                 "the same --model", path);
    if (st == RS_OK && strcmp(opts, tr->opts) != 0) {
        char diff[1024];
        opts_diff(diff, sizeof diff, opts, tr->opts, "checkpoint", "now");
        st = RS_ERROR(RS_EINVAL, "%s: training options differ from the checkpoint's (%s): resume with the same options, "
                                 "or start a new run in another --out", path, diff);
    }
    if (st == RS_OK && get_u64(hdr + 48) != tr->ds->file_hash)
        st = RS_ERROR(RS_EINVAL, "%s: the data file %s changed since the checkpoint was written: resume with the same data, "
                                 "or start a new run in another --out", path, tr->ds->path);
    if (st == RS_OK && get_u64(hdr + 56) != tr->ds->tok_hash)
        st = RS_ERROR(RS_EINVAL, "%s: the data tokenizes differently than when the checkpoint was written (another "
                                 "tokenizer?): resume with the same --model and data", path);
    if (st == RS_OK && (step > (uint64_t)tr->total || pos >= tr->ds->n || epoch > (uint64_t)tr->total))
        st = RS_ERROR(RS_EINVAL, "%s: corrupt checkpoint (step %llu of %ld, epoch %llu, position %llu of %zu rows): %s", path,
                      (unsigned long long)step, tr->total, (unsigned long long)epoch, (unsigned long long)pos, tr->ds->n,
                      fix);
    if (st == RS_OK) {
        memcpy(m->params, p, np * sizeof *p);
        size_t o = tr->zero1 ? tr->sh_off : 0, n = tr->zero1 ? tr->sh_len : np; /* ZeRO-1: this rank's shard */
        memcpy(tr->mom, mm + o, n * sizeof *mm);
        memcpy(tr->vel, vv + o, n * sizeof *vv);
        tr->step = (long)step;
        tr->epoch = (long)epoch;
        tr->pos = (size_t)pos;
        tr->order_epoch = -1;
        tr->last = (llm_train_stats){tr->step, tr->total, tr->epoch, tr->pos, get_f64(hdr + 72), get_f64(hdr + 80),
                                     get_f64(hdr + 88), (long)get_u64(hdr + 96), (long)get_u64(hdr + 104), 1};
    }
    free(p);
    free(mm);
    free(vv);
    return st;
}

/* ---- evaluation ------------------------------------------------------------------------- */

int llm_eval_loss(llm_model *m, const llm_dataset *ds, int batch, int pad_id, double *loss, size_t *ntok)
{
    if (batch < 1) return RS_ERROR(RS_EINVAL, "batch must be >= 1");
    if (ds->max_row > m->cfg.max_pos)
        return RS_ERROR(RS_EINVAL, "%s: rows of up to %d tokens exceed the model's max_position_embeddings %d (lower --max-len)",
                        ds->path, ds->max_row, m->cfg.max_pos);
    size_t cap = (size_t)batch * (size_t)ds->max_row;
    int32_t *tok = malloc(cap * sizeof *tok), *tgt = malloc(cap * sizeof *tgt);
    size_t *idx = malloc((size_t)batch * sizeof *idx);
    if (!tok || !tgt || !idx) {
        free(tok);
        free(tgt);
        free(idx);
        return RS_ERROR(RS_ENOMEM, "out of memory (evaluation batch)");
    }
    double sum = 0;
    size_t n = 0;
    int st = RS_OK;
    for (size_t a = 0; a < ds->n && st == RS_OK; a += (size_t)batch) {
        int B = (int)(ds->n - a < (size_t)batch ? ds->n - a : (size_t)batch);
        for (int b = 0; b < B; b++) idx[b] = a + (size_t)b;
        int T, nt;
        llm_data_batch(ds, idx, B, pad_id, tok, tgt, &T, &nt);
        float l = 0;
        int k = 0;
        st = llm_model_forward(m, tok, tgt, B, T, &l, &k);
        if (st == RS_OK && k > 0) {
            sum += (double)l * k;
            n += (size_t)k;
        }
    }
    free(tok);
    free(tgt);
    free(idx);
    if (st) return st;
    if (n == 0) return RS_ERROR(RS_EINVAL, "%s: no target tokens to evaluate", ds->path);
    *loss = sum / (double)n;
    if (ntok) *ntok = n;
    return RS_OK;
}
