/* The SFT trainer: AdamW against a double-precision reference (bias correction, decoupled
 * decay), clipping as torch's clip_grad_norm_, the HF schedules at their key steps,
 * gradient accumulation == one big batch, checkpoint round trip and corrupt checkpoints,
 * interrupted + resumed == uninterrupted (bit for bit), and the loss trajectory of three
 * AdamW steps against PyTorch's (tests/fixtures/llm/<name>/adamw.json). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm/io/safetensors.h"
#include "llm/nn/sample.h"
#include "llm/train/train.h"
#include "quant/rng.h"
#include "quant/status.h"
#include "tests/check.h"
#include "tests/fixture.h"

static int has(const char *needle) { return strstr(rs_last_error(), needle) != NULL; }

/* ---- AdamW vs a double reference ------------------------------------------------------- */

static void test_adamw(void)
{
    enum { N = 1000, STEPS = 6 };
    rs_rng *r = rs_rng_alloc(7, 99);
    float p[N], m[N], v[N], g[N];
    double pd[N], md[N], vd[N];
    for (int i = 0; i < N; i++) {
        pd[i] = p[i] = (float)rs_rng_gaussian(r, 1.0);
        md[i] = vd[i] = m[i] = v[i] = 0;
    }
    llm_adamw_hp hp = {0.9, 0.95, 1e-8, 0.1};
    double maxrel = 0;
    for (int t = 1; t <= STEPS; t++) {
        double lr = 1e-2 * t; /* a changing lr, as a schedule gives */
        for (int i = 0; i < N; i++) g[i] = (float)rs_rng_gaussian(r, i % 10 == 0 ? 1e-3 : 1.0);
        llm_adamw_update(p, g, m, v, N, t, lr, &hp);
        for (int i = 0; i < N; i++) { /* torch.optim.AdamW written out in double */
            pd[i] *= 1 - lr * hp.weight_decay;
            md[i] = hp.beta1 * md[i] + (1 - hp.beta1) * g[i];
            vd[i] = hp.beta2 * vd[i] + (1 - hp.beta2) * (double)g[i] * g[i];
            double mh = md[i] / (1 - pow(hp.beta1, t)), vh = vd[i] / (1 - pow(hp.beta2, t));
            pd[i] -= lr * mh / (sqrt(vh) + hp.eps);
        }
        for (int i = 0; i < N; i++) {
            double e = fabs(p[i] - pd[i]) / (fabs(pd[i]) + lr); /* relative to the parameter or the step */
            if (e > maxrel) maxrel = e;
        }
    }
    CHECK(maxrel < 1e-6, "AdamW, 6 steps on random data vs double reference: max rel. error %.3g", maxrel);
    /* the first step of Adam moves every parameter by about lr (bias correction) */
    float q[4] = {1, -1, 2, 0}, gq[4] = {0.5f, -3, 1e-4f, 2}, mq[4] = {0}, vq[4] = {0};
    llm_adamw_hp nodecay = {0.9, 0.999, 1e-8, 0};
    llm_adamw_update(q, gq, mq, vq, 4, 1, 0.1, &nodecay);
    CHECK(fabsf(q[0] - 0.9f) < 1e-6f && fabsf(q[1] + 0.9f) < 1e-6f && fabsf(q[2] - 1.9f) < 1e-4f && fabsf(q[3] + 0.1f) < 1e-6f,
          "bias-corrected first step moves by lr * sign(g): %g %g %g %g", q[0], q[1], q[2], q[3]);
    /* decoupled decay: with zero gradient only p *= 1 - lr*wd */
    float z[2] = {2, -4}, gz[2] = {0, 0}, mz[2] = {0}, vz[2] = {0};
    llm_adamw_hp decay = {0.9, 0.999, 1e-8, 0.5};
    llm_adamw_update(z, gz, mz, vz, 2, 1, 0.1, &decay);
    CHECK(z[0] == 2 * 0.95f && z[1] == -4 * 0.95f, "zero gradient: p *= 1 - lr*wd exactly (%g %g)", z[0], z[1]);
    rs_rng_free(r);
}

static void test_clip(void)
{
    float g[3] = {3, 4, 0};
    double n = llm_clip_grad(g, 3, 1.0);
    double coef = (double)(float)(1.0 / (5.0 + 1e-6));
    CHECK(n == 5.0 && fabs(g[0] - 3 * coef) < 1e-7 && fabs(g[1] - 4 * coef) < 1e-7,
          "norm 5, max 1: g *= 1/(5+1e-6) (%g %g)", g[0], g[1]);
    float h[2] = {3, 4};
    n = llm_clip_grad(h, 2, 10.0);
    CHECK(n == 5.0 && h[0] == 3 && h[1] == 4, "norm below max: untouched");
    float k[2] = {3, 4};
    n = llm_clip_grad(k, 2, 0.0);
    CHECK(n == 5.0 && k[0] == 3, "max 0: no clipping, norm reported");
    float e[2] = {3, 4}; /* norm == max: factor 5/(5+1e-6) < 1 scales, as torch does */
    llm_clip_grad(e, 2, 5.0);
    CHECK(e[0] < 3 && e[0] > 3 - 1e-5, "norm == max_norm: scaled by max/(norm+1e-6) like torch (%.9g)", e[0]);
    /* big vector: chunked norm equals the straightforward one */
    size_t N = 300001;
    float *b = malloc(N * sizeof *b);
    double ss = 0;
    for (size_t i = 0; i < N; i++) {
        b[i] = (float)sin((double)i);
        ss += (double)b[i] * b[i];
    }
    n = llm_clip_grad(b, N, 0);
    CHECK_NEAR(n, sqrt(ss), 1e-9 * sqrt(ss), "global norm of 300001 values");
    CHECK(sqrt(llm_grad_sumsq(b, N)) == n, "llm_grad_sumsq: the sum llm_clip_grad takes the root of (exactly)");
    /* data parallel clips with the rank-order sum of the R shards' sums (train.h): the same
     * value up to the rounding of sums in double chunked otherwise (N eps relative at most) */
    double whole = llm_grad_sumsq(b, N);
    for (size_t R = 2; R <= 3; R++) {
        double sh = 0;
        for (size_t r = 0, off = 0; r < R; r++) {
            size_t len = N / R + (r < N % R);
            sh += llm_grad_sumsq(b + off, len);
            off += len;
        }
        CHECK(fabs(sh - whole) <= 1e-13 * whole, "sum of %zu shards' squared norms == the whole's (%.17g vs %.17g)", R, sh, whole);
    }
    free(b);
}

static double hf_lambda(const char *kind, long s, long w, long T)
{
    if (s < w) return (double)s / (double)(w > 1 ? w : 1);
    double rest = (double)(T - w > 1 ? T - w : 1);
    if (!strcmp(kind, "cosine")) return fmax(0.0, 0.5 * (1 + cos(M_PI * 2 * 0.5 * (double)(s - w) / rest)));
    if (!strcmp(kind, "linear")) return fmax(0.0, (double)(T - s) / rest);
    return 1.0;
}

static void test_schedules(void)
{
    long T = 100;
    long w = llm_warmup_steps(0.05, T);
    CHECK(w == 5 && llm_warmup_steps(0.031, T) == 4 && llm_warmup_steps(0, T) == 0 && llm_warmup_steps(1, 7) == 7,
          "warm-up steps = ceil(ratio * total) (%ld)", w);
    CHECK(llm_sched_factor(LLM_SCHED_COSINE, 0, w, T) == 0.0, "cosine: step 0 of a warm-up has lr 0 (HF)");
    CHECK_NEAR(llm_sched_factor(LLM_SCHED_COSINE, 2, w, T), 0.4, 1e-15, "cosine: warm-up step 2 of 5");
    CHECK_NEAR(llm_sched_factor(LLM_SCHED_COSINE, 5, w, T), 1.0, 1e-15, "cosine: end of warm-up = peak");
    CHECK_NEAR(llm_sched_factor(LLM_SCHED_COSINE, 5 + 95 / 2, w, T), hf_lambda("cosine", 52, 5, T), 1e-15, "cosine: middle");
    CHECK_NEAR(llm_sched_factor(LLM_SCHED_COSINE, 99, w, T), 0.5 * (1 + cos(M_PI * 94.0 / 95.0)), 1e-15, "cosine: last step");
    CHECK_NEAR(llm_sched_factor(LLM_SCHED_LINEAR, 5, w, T), 1.0, 1e-15, "linear: end of warm-up");
    CHECK_NEAR(llm_sched_factor(LLM_SCHED_LINEAR, 52, w, T), 48.0 / 95.0, 1e-15, "linear: middle");
    CHECK_NEAR(llm_sched_factor(LLM_SCHED_LINEAR, 99, w, T), 1.0 / 95.0, 1e-15, "linear: last step");
    CHECK_NEAR(llm_sched_factor(LLM_SCHED_CONSTANT, 3, w, T), 0.6, 1e-15, "constant: warm-up");
    CHECK(llm_sched_factor(LLM_SCHED_CONSTANT, 99, w, T) == 1.0, "constant: after warm-up");
    CHECK(llm_sched_factor(LLM_SCHED_COSINE, 0, 0, T) == 1.0 && llm_sched_factor(LLM_SCHED_LINEAR, 0, 0, 1) == 1.0,
          "no warm-up: the first step has the peak lr");
    int bad = 0;
    const char *names[] = {"cosine", "linear", "constant"};
    for (int k = 0; k < 3; k++)
        for (long s = 0; s < 37; s++)
            if (fabs(llm_sched_factor((llm_sched)k, s, 4, 37) - hf_lambda(names[k], s, 4, 37)) > 1e-15) bad++;
    CHECK(bad == 0, "all three schedules at every step of a 37-step run with 4 warm-up steps (%d off)", bad);
}

/* ---- sampling -------------------------------------------------------------------------------- */

static void test_sample(void)
{
    llm_sampler *s = NULL;
    if (llm_sampler_alloc(&s, 4) != RS_OK) {
        CHECK(0, "sampler");
        return;
    }
    rs_rng *r = rs_rng_alloc(3, LLM_STREAM_SAMPLE);
    llm_sample_opts greedy = {0, 1}, t1 = {1, 1}, nucleus = {1, 0.7};
    float tie[4] = {1, 3, 3, 0};
    CHECK(llm_sample(s, tie, &greedy, NULL) == 1, "greedy: argmax, the lower id wins a tie");
    float l[4] = {0, (float)log(3.0), -INFINITY, -INFINITY};
    int n1 = 0, N = 20000;
    for (int i = 0; i < N; i++) n1 += llm_sample(s, l, &t1, r) == 1;
    CHECK(fabs(n1 / (double)N - 0.75) < 0.015, "temperature 1: p = softmax (freq of p=0.75 token %.4f)", n1 / (double)N);
    llm_sample_opts hot = {2, 1};
    n1 = 0;
    for (int i = 0; i < N; i++) n1 += llm_sample(s, l, &hot, r) == 1;
    double want = sqrt(3.0) / (1 + sqrt(3.0));
    CHECK(fabs(n1 / (double)N - want) < 0.015, "temperature 2 flattens: freq %.4f vs %.4f", n1 / (double)N, want);
    float q[4] = {(float)log(0.5), (float)log(0.3), (float)log(0.2), -INFINITY};
    int cnt[4] = {0};
    for (int i = 0; i < N; i++) cnt[llm_sample(s, q, &nucleus, r)]++;
    CHECK(cnt[2] == 0 && cnt[3] == 0 && fabs(cnt[0] / (double)N - 0.625) < 0.015,
          "top-p 0.7 keeps {0.5, 0.3} and renormalises (freq %.4f vs 0.625; cut tokens drawn %d times)", cnt[0] / (double)N,
          cnt[2] + cnt[3]);
    rs_rng_free(r);
    llm_sampler_free(s);
}

/* ---- trainer on a tiny random model -------------------------------------------------------- */

static llm_config tiny_config(void)
{
    llm_config c;
    memset(&c, 0, sizeof c);
    c.arch = LLM_LLAMA;
    c.vocab = 61;
    c.d = 32;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_kv_head = 2;
    c.head_dim = 8;
    c.d_ff = 48;
    c.max_pos = 32;
    c.norm_eps = 1e-5;
    c.act = LLM_ACT_SILU;
    c.rope_theta = 10000;
    c.rot_dim = 8;
    c.rope_type = LLM_ROPE_DEFAULT;
    c.rope_factor = 1;
    c.tied = 0;
    c.bos_id = c.eos_id = c.pad_id = -1;
    strcpy(c.torch_dtype, "float32");
    return c;
}

static llm_model *tiny_model(uint64_t seed)
{
    llm_config c = tiny_config();
    if (llm_config_check(&c) != RS_OK) return NULL;
    rs_rng *r = rs_rng_alloc(seed, RS_STREAM_INIT);
    llm_model *m = NULL;
    int st = llm_model_init_random(&m, &c, r);
    rs_rng_free(r);
    return st == RS_OK ? m : NULL;
}

/* A data set built in memory: n rows of random lengths 3..max_len, random prompt lengths. */
static llm_dataset *tiny_data(size_t n, int max_len, uint64_t seed)
{
    llm_dataset *ds = calloc(1, sizeof *ds);
    ds->path = strdup("tiny-data");
    ds->n = n;
    ds->off = malloc((n + 1) * sizeof *ds->off);
    ds->line = malloc(n * sizeof *ds->line);
    ds->ids = malloc(n * (size_t)max_len * sizeof *ds->ids);
    ds->tgt = malloc(n * (size_t)max_len * sizeof *ds->tgt);
    rs_rng *r = rs_rng_alloc(seed, RS_STREAM_DATA);
    ds->off[0] = 0;
    for (size_t i = 0; i < n; i++) {
        int L = 3 + (int)rs_rng_uint(r, (unsigned long)(max_len - 2)), np = 1 + (int)rs_rng_uint(r, (unsigned long)(L - 2));
        size_t a = ds->off[i];
        for (int t = 0; t < L; t++) ds->ids[a + t] = (int32_t)rs_rng_uint(r, 61);
        for (int t = 0; t < L; t++) {
            ds->tgt[a + t] = t + 1 < L && t + 1 >= np ? ds->ids[a + t + 1] : LLM_IGNORE;
            ds->ntok += ds->tgt[a + t] != LLM_IGNORE;
        }
        ds->off[i + 1] = a + (size_t)L;
        ds->line[i] = i + 1;
        if (L > ds->max_row) ds->max_row = L;
    }
    ds->file_hash = 12345 + seed;
    ds->tok_hash = llm_fnv1a(LLM_FNV_INIT, ds->ids, ds->off[n] * sizeof *ds->ids);
    rs_rng_free(r);
    return ds;
}

static void test_accumulation(void)
{
    llm_model *a = tiny_model(3), *b = tiny_model(3);
    llm_dataset *ds = tiny_data(8, 12, 5);
    CHECK(a && b, "tiny random Llama models%s", a && b ? "" : rs_last_error());
    if (!a || !b) goto out;
    llm_train_opts o;
    llm_train_opts_default(&o);
    o.lr = 1e-3;
    o.clip_grad = 0;
    o.max_steps = 2;
    o.batch = 4;
    o.grad_accum = 1;
    llm_train_opts ob = o;
    ob.batch = 1;
    ob.grad_accum = 4;
    llm_trainer *ta = NULL, *tb = NULL;
    int st = llm_trainer_alloc(&ta, a, ds, 0, &o);
    if (st == RS_OK) st = llm_trainer_alloc(&tb, b, ds, 0, &ob);
    CHECK(st == RS_OK, "trainers %s", st ? rs_last_error() : "");
    if (st != RS_OK) goto out2;
    llm_train_stats sa, sb;
    int ok = llm_trainer_step(ta, &sa) == RS_OK && llm_trainer_step(tb, &sb) == RS_OK;
    CHECK(ok, "one step each %s", ok ? "" : rs_last_error());
    if (!ok) goto out2;
    double gmax = fx_max_abs(a->grads, a->nparams), diff = 0;
    for (size_t i = 0; i < a->nparams; i++) diff = fmax(diff, fabs(a->grads[i] - b->grads[i]));
    CHECK(gmax > 0 && diff <= 1e-5 * gmax, "batch of 4 == 4 accumulated micro-batches of 1: max |dg| %.3g (max |g| %.3g)", diff,
          gmax);
    CHECK_NEAR(sa.loss, sb.loss, 1e-5 * sa.loss, "same step loss");
    CHECK(sa.ntok > 0 && sa.ntok == sb.ntok, "same target tokens in the step (%ld, %ld)", sa.ntok, sb.ntok);
    CHECK(sa.ninput >= sb.ninput, "the padded batch processes at least as many positions (%ld vs %ld)", sa.ninput, sb.ninput);
    CHECK(sa.lr == 1e-3 && sa.step == 1 && sa.total == 2 && sa.pos == 4 && sa.epoch == 0,
          "stats: lr %g step %ld/%ld pos %zu epoch %ld", sa.lr, sa.step, sa.total, sa.pos, sa.epoch);
    st = llm_trainer_step(ta, &sa);
    CHECK(st == RS_OK && sa.pos == 0 && sa.epoch == 1, "8 rows / 4 per step: the second step ends the epoch");
    st = llm_trainer_step(ta, &sa);
    CHECK(st == RS_EINVAL && has("already finished"), "no step past the total: %s", rs_last_error());
out2:
    llm_trainer_free(ta);
    llm_trainer_free(tb);
out:
    llm_model_free(a);
    llm_model_free(b);
    llm_data_free(ds);
}

typedef struct {
    long stop_at;
    int nsaved;
    double losses[64];
    long n;
} run_ctx;

static int on_step(void *v, const llm_train_stats *s)
{
    run_ctx *c = v;
    if (c->n < 64) c->losses[c->n++] = s->loss;
    c->nsaved += s->saved;
    return c->stop_at > 0 && s->step >= c->stop_at;
}

static long file_size(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void patch(const char *p, long off, const void *bytes, size_t n)
{
    FILE *f = fopen(p, "r+b");
    if (!f) return;
    fseek(f, off, SEEK_SET);
    fwrite(bytes, 1, n, f);
    fclose(f);
}

static void copy_file(const char *a, const char *b, long keep)
{
    FILE *f = fopen(a, "rb"), *g = fopen(b, "wb");
    if (f && g) {
        int c;
        long k = 0;
        while ((keep < 0 || k < keep) && (c = fgetc(f)) != EOF) {
            fputc(c, g);
            k++;
        }
    }
    if (f) fclose(f);
    if (g) fclose(g);
}

static void test_resume_and_checkpoints(void)
{
    char dir[] = "/tmp/rs_test_train_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "temporary folder");
        return;
    }
    char ck[256], bad[256];
    snprintf(ck, sizeof ck, "%s/trainer_state.bin", dir);
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    llm_dataset *ds = tiny_data(10, 12, 9);
    llm_train_opts o;
    llm_train_opts_default(&o);
    o.lr = 3e-3;
    o.epochs = 3; /* 10 rows, 2 x 2 per step: 3 steps per epoch, the last one short */
    o.batch = 2;
    o.grad_accum = 2;
    o.warmup = 0.2;
    o.weight_decay = 0.01;
    o.clip_grad = 0.5;
    o.save_every = 2;
    o.seed = 11;

    /* uninterrupted */
    llm_model *u = tiny_model(4);
    llm_trainer *tu = NULL;
    run_ctx cu = {0};
    int st = u ? llm_trainer_alloc(&tu, u, ds, 0, &o) : RS_EINVAL;
    if (st == RS_OK) st = llm_trainer_run(tu, NULL, on_step, &cu);
    CHECK(st == RS_OK && llm_trainer_total(tu) == 9 && cu.n == 9, "uninterrupted run: 9 steps (%s)", st ? rs_last_error() : "ok");
    CHECK(cu.n == 9 && cu.losses[8] < cu.losses[0], "the loss falls: %.4f -> %.4f", cu.losses[0], cu.losses[cu.n - 1]);

    /* interrupted after step 5 (checkpoint at 4), resumed in a fresh model from step 4 */
    llm_model *a = tiny_model(4), *b = tiny_model(4);
    llm_trainer *ta = NULL, *tb = NULL;
    run_ctx ca = {5, 0, {0}, 0}, cb = {0};
    if (st == RS_OK && a && b) st = llm_trainer_alloc(&ta, a, ds, 0, &o);
    if (st == RS_OK) st = llm_trainer_run(ta, ck, on_step, &ca);
    CHECK(st == RS_OK && ca.n == 5 && ca.nsaved == 2 && llm_trainer_step_no(ta) == 5, "stopped after step 5, checkpoints at 2 and 4");
    long want = 112 + 12 * (long)(a ? a->nparams : 0) + 8;
    long have = file_size(ck);
    CHECK(have > want + 100 && have < want + 4096, "checkpoint size: header + options + 3 x params + checksum (%ld bytes)", have);
    if (st == RS_OK) st = llm_trainer_alloc(&tb, b, ds, 0, &o);
    if (st == RS_OK) st = llm_trainer_load(tb, ck);
    CHECK(st == RS_OK && llm_trainer_step_no(tb) == 4, "checkpoint loads at step 4 (%s)", st ? rs_last_error() : "ok");
    const llm_train_stats *ls = tb ? llm_trainer_last(tb) : NULL;
    CHECK(ls && ls->step == 4 && ls->loss == cu.losses[3] && ls->saved == 1 && ls->ntok > 0 && ls->lr > 0,
          "the checkpoint keeps step 4's statistics (loss %.9g vs %.9g)", ls ? ls->loss : 0.0, cu.losses[3]);
    if (st == RS_OK) st = llm_trainer_run(tb, ck, on_step, &cb);
    CHECK(st == RS_OK && cb.n == 5, "resumed run does steps 5..9");
    CHECK(u && b && cb.n == 5 && cu.n == 9 && cb.losses[0] == cu.losses[4] && cb.losses[4] == cu.losses[8],
          "resumed losses are the uninterrupted ones (step 5: %.9g vs %.9g)", cb.losses[0], cu.losses[4]);
    CHECK(u && b && !memcmp(u->params, b->params, u->nparams * sizeof(float)),
          "interrupted + resumed run ends with bit-identical parameters");

    /* round trip: save from the finished trainer, load into another */
    if (tb) {
        st = llm_trainer_save(tb, ck);
        llm_model *c = tiny_model(5);
        llm_trainer *tc = NULL;
        if (c && llm_trainer_alloc(&tc, c, ds, 0, &o) == RS_OK) {
            st = llm_trainer_load(tc, ck);
            CHECK(st == RS_OK && llm_trainer_step_no(tc) == 9 && !memcmp(c->params, b->params, c->nparams * sizeof(float)),
                  "save/load round trip: step and parameters");
        }
        CHECK(access(ck, F_OK) == 0 && access(strcat(strcpy(bad, ck), ".tmp"), F_OK) != 0, "no temporary file left");

        /* corrupt copies */
        struct {
            long off;
            const char *bytes;
            size_t n;
            long keep;
            const char *want, *what;
        } cases[] = {
            {0, "X", 1, -1, "bad magic", "bad magic number"},
            {8, "\x63\0\0\0", 4, -1, "format version 99", "future version"},
            {-1, NULL, 0, 40, "truncated", "truncated in the header"},
            {-1, NULL, 0, have - 100, "truncated", "truncated in the data"},
            {have - 50, "\x55\x55\x55\x55", 4, -1, "checksum mismatch", "flipped bytes in v"},
            {100, "\x55", 1, -1, "checksum mismatch", "flipped byte in the options text"},
            {12, "\xff\xff\0\0", 4, -1, "corrupt checkpoint header", "absurd option length"},
        };
        snprintf(bad, sizeof bad, "%s/bad.bin", dir);
        for (size_t k = 0; tc && k < sizeof cases / sizeof cases[0]; k++) {
            copy_file(ck, bad, cases[k].keep);
            if (cases[k].bytes) patch(bad, cases[k].off, cases[k].bytes, cases[k].n);
            st = llm_trainer_load(tc, bad);
            CHECK(st == RS_EINVAL && has(cases[k].want) && has("bad.bin") && has("start afresh"),
                  "%s -> %s", cases[k].what, rs_last_error());
        }
        llm_trainer_free(tc);
        llm_model_free(c);

        /* options, data and model that do not match */
        llm_train_opts o2 = o;
        o2.lr = 1e-3;
        o2.batch = 1;
        llm_model *d = tiny_model(4);
        llm_trainer *td = NULL;
        if (d && llm_trainer_alloc(&td, d, ds, 0, &o2) == RS_OK) {
            st = llm_trainer_load(td, ck);
            CHECK(st == RS_EINVAL && has("lr: checkpoint 0.003, now 0.001") && has("batch: checkpoint 2, now 1"),
                  "changed options are named: %s", rs_last_error());
            llm_trainer_free(td);
        }
        llm_dataset *ds2 = tiny_data(10, 12, 9);
        ds2->file_hash ^= 1;
        if (d && llm_trainer_alloc(&td, d, ds2, 0, &o) == RS_OK) {
            st = llm_trainer_load(td, ck);
            CHECK(st == RS_EINVAL && has("data file tiny-data changed"), "changed data file: %s", rs_last_error());
            llm_trainer_free(td);
        }
        ds2->file_hash ^= 1;
        ds2->tok_hash ^= 1;
        if (d && llm_trainer_alloc(&td, d, ds2, 0, &o) == RS_OK) {
            st = llm_trainer_load(td, ck);
            CHECK(st == RS_EINVAL && has("tokenizes differently"), "changed tokenization: %s", rs_last_error());
            llm_trainer_free(td);
        }
        llm_data_free(ds2);
        llm_model_free(d);
        llm_config c2 = tiny_config();
        c2.d_ff = 40;
        rs_rng *r = rs_rng_alloc(1, RS_STREAM_INIT);
        llm_model *e = NULL;
        if (llm_model_init_random(&e, &c2, r) == RS_OK && llm_trainer_alloc(&td, e, ds, 0, &o) == RS_OK) {
            st = llm_trainer_load(td, ck);
            CHECK(st == RS_EINVAL && has("parameters"), "another model: %s", rs_last_error());
            llm_trainer_free(td);
        }
        llm_model_free(e);
        rs_rng_free(r);
        st = llm_trainer_load(tb, "/nonexistent/trainer_state.bin");
        CHECK(st == RS_EIO && has("/nonexistent/trainer_state.bin"), "missing checkpoint: %s", rs_last_error());
    }
    llm_trainer_free(tu);
    llm_trainer_free(ta);
    llm_trainer_free(tb);
    llm_model_free(u);
    llm_model_free(a);
    llm_model_free(b);
    llm_data_free(ds);
    unlink(ck);
    unlink(bad);
    rmdir(dir);
}

static int test_torch_trajectory(const char *name)
{
    char dir[256], p[300];
    snprintf(dir, sizeof dir, "tests/fixtures/llm/%s", name);
    snprintf(p, sizeof p, "%s/adamw.json", dir);
    char *js = fx_read_file(p, NULL);
    if (!js) return 0; /* no fixture */
    cJSON *j = cJSON_Parse(js);
    free(js);
    llm_model *m = NULL;
    st_set *ref = NULL;
    int32_t *tok = NULL, *tgt = NULL;
    const cJSON *losses = j ? cJSON_GetObjectItemCaseSensitive(j, "losses") : NULL;
    int ok = cJSON_GetArraySize(losses) == 4;
    snprintf(p, sizeof p, "%s/ref.safetensors", dir);
    ok = ok && llm_model_load(&m, dir) == RS_OK && st_open(&ref, p) == RS_OK;
    const st_tensor *tt = ok ? st_find(ref, "tokens") : NULL, *yt = ok ? st_find(ref, "targets") : NULL;
    ok = ok && tt && yt && tt->dtype == ST_I32 && yt->dtype == ST_I32 && tt->ndim == 2 && tt->nelem == yt->nelem;
    CHECK(ok, "%s: fixture (adamw.json, model, ref.safetensors tokens/targets)%s%s", name, ok ? "" : ": ", ok ? "" : rs_last_error());
    if (ok) {
        int B = (int)tt->shape[0], T = (int)tt->shape[1];
        tok = malloc(tt->nelem * sizeof *tok);
        tgt = malloc(yt->nelem * sizeof *tgt);
        memcpy(tok, tt->data, tt->nelem * sizeof *tok);
        memcpy(tgt, yt->data, yt->nelem * sizeof *tgt);
        llm_adamw_hp hp = {cJSON_GetObjectItem(j, "beta1")->valuedouble, cJSON_GetObjectItem(j, "beta2")->valuedouble,
                           cJSON_GetObjectItem(j, "eps")->valuedouble, cJSON_GetObjectItem(j, "weight_decay")->valuedouble};
        double lr = cJSON_GetObjectItem(j, "lr")->valuedouble;
        float *mm = calloc(m->nparams, sizeof *mm), *vv = calloc(m->nparams, sizeof *vv);
        ok = mm && vv && llm_model_alloc_grads(m) == RS_OK;
        for (int s = 0; ok && s < 4; s++) {
            float loss = 0;
            int ntok = 0;
            ok = llm_model_forward(m, tok, tgt, B, T, &loss, &ntok) == RS_OK;
            double want = cJSON_GetArrayItem(losses, s)->valuedouble;
            char what[96];
            snprintf(what, sizeof what, "%s: loss %s AdamW step %d vs PyTorch", name, s ? "after" : "before", s ? s : 1);
            CHECK_NEAR(loss, want, 1e-4, what);
            if (s == 3 || !ok) break;
            llm_model_zero_grad(m);
            ok = llm_model_backward(m, 1.0f / (float)ntok) == RS_OK;
            if (ok) llm_adamw_update(m->params, m->grads, mm, vv, m->nparams, s + 1, lr, &hp);
        }
        CHECK(ok, "%s: forward/backward ran%s%s", name, ok ? "" : ": ", ok ? "" : rs_last_error());
        free(mm);
        free(vv);
    }
    free(tok);
    free(tgt);
    st_close(ref);
    llm_model_free(m);
    cJSON_Delete(j);
    return 1;
}

/* A loss that turns NaN stops training naming the step; the last checkpoint stays and loads.
 * NaN or infinite weights in a checkpoint folder are refused naming the tensor. */
typedef struct {
    llm_model *m;
    long poison_after;
} poison_ctx;

static int poison_step(void *v, const llm_train_stats *s)
{
    poison_ctx *c = v;
    if (s->step == c->poison_after) c->m->params[7] = NAN;
    return 0;
}

static void test_nonfinite(void)
{
    char dir[] = "/tmp/rs_test_train_nan_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "temporary folder");
        return;
    }
    char ck[256], mdir[256];
    snprintf(ck, sizeof ck, "%s/trainer_state.bin", dir);
    snprintf(mdir, sizeof mdir, "%s/model", dir);
    llm_dataset *ds = tiny_data(8, 12, 21);
    llm_train_opts o;
    llm_train_opts_default(&o);
    o.lr = 1e-3;
    o.max_steps = 6;
    o.batch = 2;
    o.save_every = 1;
    llm_model *m = tiny_model(5);
    llm_trainer *tr = NULL;
    int st = m ? llm_trainer_alloc(&tr, m, ds, 0, &o) : RS_EINVAL;
    poison_ctx pc = {m, 3};
    if (st == RS_OK) st = llm_trainer_run(tr, ck, poison_step, &pc);
    CHECK(st == RS_ENUMERIC && has("non-finite loss at step 4") && has("checkpoint of step 3 is kept"),
          "a NaN weight after step 3 stops the run at step 4 (%d: %s)", st, rs_last_error());
    CHECK(tr && llm_trainer_step_no(tr) == 3, "the trainer stays after step 3 (%ld)", tr ? llm_trainer_step_no(tr) : -1L);
    llm_model *m2 = tiny_model(5);
    llm_trainer *t2 = NULL;
    st = m2 ? llm_trainer_alloc(&t2, m2, ds, 0, &o) : RS_EINVAL;
    if (st == RS_OK) st = llm_trainer_load(t2, ck);
    size_t nbad = 0;
    for (size_t i = 0; m2 && i < m2->nparams; i++) nbad += !isfinite(m2->params[i]);
    CHECK(st == RS_OK && llm_trainer_step_no(t2) == 3 && nbad == 0,
          "the kept checkpoint loads: step %ld, %zu non-finite parameters (%s)", t2 ? llm_trainer_step_no(t2) : -1L, nbad,
          st ? rs_last_error() : "ok");
    /* a resumed run that diverges at once names the checkpoint it resumed from */
    if (m2 && st == RS_OK) {
        m2->params[3] = INFINITY;
        st = llm_trainer_run(t2, ck, NULL, NULL);
        CHECK(st == RS_ENUMERIC && has("at step 4") && has("checkpoint of step 3 is kept"),
              "resumed, then NaN: names the resumed checkpoint (%s)", rs_last_error());
    }
    /* without checkpoints the message says so */
    llm_trainer_free(t2);
    llm_model_free(m2);
    m2 = tiny_model(5);
    t2 = NULL;
    o.save_every = 0;
    st = m2 ? llm_trainer_alloc(&t2, m2, ds, 0, &o) : RS_EINVAL;
    pc.m = m2;
    pc.poison_after = 1;
    if (st == RS_OK) st = llm_trainer_run(t2, NULL, poison_step, &pc);
    CHECK(st == RS_ENUMERIC && has("non-finite loss at step 2"), "no checkpoints: stops at step 2 (%s)", rs_last_error());

    /* NaN / infinity in saved weights: refused naming the tensor and the element */
    llm_model *w = tiny_model(6);
    float bad_vals[2] = {NAN, -INFINITY};
    const char *what[2] = {"NaN", "infinite"};
    for (int k = 0; k < 2 && w; k++) {
        w->params[w->nparams - 1] = bad_vals[k];
        llm_model *back = NULL;
        st = llm_model_save(w, mdir);
        if (st == RS_OK) st = llm_model_load(&back, mdir);
        CHECK(st == RS_ENUMERIC && has("model.safetensors: tensor ") && has(what[k]) && has("element"),
              "%s weight is refused naming the tensor (%s)", k ? "an infinite" : "a NaN", rs_last_error());
        llm_model_free(back);
    }
    llm_model_free(w);
    llm_trainer_free(tr);
    llm_trainer_free(t2);
    llm_model_free(m);
    llm_model_free(m2);
    llm_data_free(ds);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) CHECK(0, "cleanup of %s", dir);
}

int main(void)
{
    test_adamw();
    test_clip();
    test_schedules();
    test_sample();
    test_accumulation();
    test_resume_and_checkpoints();
    test_nonfinite();
    const char *fixtures[] = {"neox_parallel", "neox_sequential", "llama_gqa", "llama3_rope", "qwen2_gqa"};
    int nfix = 0;
    for (size_t k = 0; k < sizeof fixtures / sizeof fixtures[0]; k++) nfix += test_torch_trajectory(fixtures[k]);
    CHECK(nfix >= 1, "PyTorch AdamW trajectories checked for %d fixture models (tests/fixtures/llm/)", nfix);
    return check_summary("test_train");
}
