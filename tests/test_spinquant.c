/* tests/test_spinquant.c: SpinQuant's learned rotations (llm/quantize/spinquant.h) on the tiny
 * checkpoints of tests/fixtures/llm:
 *   - with every quantizer off, the model formed from arbitrary orthogonal U1 / R2_l
 *     reproduces the unrotated logits (rel err <= 1e-4);
 *   - dL/dU1 and dL/dR2 against central finite differences of the loss along random
 *     directions, at 16 bits (the formed weights are a function of unconstrained matrices).
 *     At 4 bits the STE loss is piecewise constant in U (rounding), so its finite difference
 *     is not the STE gradient: not checked that way;
 *   - at W4A4KV4, dL/dU1 and dL/dR2 equal the chain rule of the model's STE parameter
 *     gradients (which tests/test_qat.c checks against PyTorch at W4A4KV4) through the
 *     weight formation: the formation is linear in U1 and in each R2_l, so
 *     (W(U + D) - W(U - D)) / 2 is its exact derivative along D, and <g, D> must equal
 *     sum(dL/dW * that) up to the float rounding of the formed weights (bound computed);
 *   - the learning lowers the W4A4KV4 calibration loss, as a statistic over 16 independent
 *     runs (two families x 8 sign seeds) on a calibration task where quantization matters
 *     (see test_learn_stat: one run's outcome is chaotic in the last bits of a BLAS sum,
 *     so no single run is asserted);
 *   - a few dozen Cayley steps at SpinQuant's lr keep every rotation orthogonal (1e-10 in
 *     double, 1e-5 after rounding to float); determinism. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/nn/model.h"
#include "llm/quantize/qat.h"
#include "llm/quantize/spinquant.h"
#include "quant/rng.h"
#include "quant/status.h"
#include "solvers/stiefel.h"
#include "tests/check.h"
#include "tests/fixture.h"

#define NROW 8
#define TROW 16

static void q16(llm_qat_opts *q)
{
    llm_qat_opts_default(q);
    q->wbits = q->abits = q->kvbits = 16;
}

/* a random orthogonal n x n: Cayley steps from R with random gradients */
static void randomize(double *R, size_t n, rs_rng *r)
{
    double *G = malloc(n * n * sizeof *G);
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < n * n; i++) G[i] = rs_rng_gaussian(r, 1.0);
        stiefel_cayley_step(R, G, NULL, n, 0.5, 0, 1, NULL);
    }
    free(G);
}

static void test_invariance(const char *name)
{
    llm_model *m = fx_load_model(name);
    if (!m) {
        CHECK(0, "%s: load (%s)", name, rs_last_error());
        return;
    }
    fx_calib c;
    fx_calib_init(&c, NROW, m->cfg.vocab, 5);
    size_t n = (size_t)2 * TROW * m->cfg.vocab;
    float *ref = malloc(n * sizeof *ref);
    llm_model_forward(m, c.eval, NULL, 2, TROW, NULL, NULL);
    memcpy(ref, m->logits, n * sizeof *ref);
    llm_qat_opts q;
    q16(&q);
    llm_spin *s = NULL;
    llm_rot_config rc;
    int st = llm_spin_init(&s, &m, &q, 3, &rc);
    CHECK(!st, "%s: spin init (%s)", name, st ? rs_last_error() : "ok");
    if (!st) {
        rs_rng *r = rs_rng_alloc(11, RS_STREAM_DATA);
        if (s->learn_r1) randomize(s->u1, s->C, r);
        for (int l = 0; l < s->L; l++) randomize(s->r2 + (size_t)l * s->HS * s->HS, s->HS, r);
        rs_rng_free(r);
        llm_spin_form(s);
        llm_model_forward(m, c.eval, NULL, 2, TROW, NULL, NULL);
        double e = fx_rel_err(m->logits, ref, n);
        CHECK(e <= 1e-4, "%s: 16 bits, random orthogonal %sR2 per layer: logits rel err %.3g <= 1e-4", name,
              s->learn_r1 ? "U1 and " : "", e);
        int r2all = 1;
        for (int l = 0; l < rc.n_layer; l++) r2all &= rc.r2[l] && rc.r3[l] && rc.r4[l];
        CHECK(rc.r1 && r2all && !rc.r2_online, "%s: configuration R1-R4 on, R2 merged", name);
    }
    llm_spin_free(s);
    llm_rot_config_free(&rc);
    llm_model_free(m);
    free(ref);
}

/* <g, D> vs (L(U + eps D) - L(U - eps D)) / (2 eps), U = U1 (which 1) or R2 of layer 0 */
static void test_fd(const char *name, int which)
{
    llm_model *m = fx_load_model(name);
    if (!m) {
        CHECK(0, "%s: load (%s)", name, rs_last_error());
        return;
    }
    fx_calib c;
    fx_calib_init(&c, NROW, m->cfg.vocab, 9);
    llm_qat_opts q;
    q16(&q);
    llm_spin *s = NULL;
    int st = llm_spin_init(&s, &m, &q, 4, NULL);
    CHECK(!st, "%s: spin init (%s)", name, st ? rs_last_error() : "ok");
    if (st) {
        llm_model_free(m);
        return;
    }
    rs_rng *r = rs_rng_alloc(21, RS_STREAM_DATA);
    randomize(s->u1, s->C, r);
    for (int l = 0; l < s->L; l++) randomize(s->r2 + (size_t)l * s->HS * s->HS, s->HS, r);
    size_t n = which == 1 ? s->C : s->HS;
    double *U = which == 1 ? s->u1 : s->r2, *G = which == 1 ? s->g1 : s->g2;
    double *D = malloc(n * n * sizeof *D), *U0 = malloc(n * n * sizeof *U0);
    double loss;
    st = llm_spin_loss(s, &c.ds, 0, 2, NROW, 1, &loss);
    double worst = 0;
    for (int trial = 0; trial < 3 && !st; trial++) {
        for (size_t i = 0; i < n * n; i++) D[i] = rs_rng_gaussian(r, 1.0);
        double dn = 0;
        for (size_t i = 0; i < n * n; i++) dn += D[i] * D[i];
        for (size_t i = 0; i < n * n; i++) D[i] /= sqrt(dn);
        double an = 0;
        for (size_t i = 0; i < n * n; i++) an += G[i] * D[i];
        memcpy(U0, U, n * n * sizeof *U0);
        const double eps = 1e-2;
        double lp, lm;
        for (size_t i = 0; i < n * n; i++) U[i] = U0[i] + eps * D[i];
        st = llm_spin_loss(s, &c.ds, 0, 2, NROW, 0, &lp);
        for (size_t i = 0; i < n * n; i++) U[i] = U0[i] - eps * D[i];
        if (!st) st = llm_spin_loss(s, &c.ds, 0, 2, NROW, 0, &lm);
        memcpy(U, U0, n * n * sizeof *U0);
        double fd = (lp - lm) / (2 * eps), e = fabs(fd - an) / fmax(fabs(an), 1e-2);
        printf("  %s dL/d%s along a random direction: analytic %.6g, finite difference %.6g\n", name,
               which == 1 ? "U1" : "R2[0]", an, fd);
        worst = fmax(worst, e);
    }
    CHECK(!st && worst <= 2e-2, "%s: dL/d%s at 16 bits matches central differences (worst rel err %.3g <= 2e-2)", name,
          which == 1 ? "U1" : "R2[0]", worst);
    free(D), free(U0);
    rs_rng_free(r);
    llm_spin_free(s);
    llm_model_free(m);
}

/* Chain rule at W4A4KV4: <g, D> against sum_i dL/dW_i (W_i(U + D) - W_i(U - D)) / 2, with U
 * = U1 (which 1) or every R2_l (which 2). Exact up to the rounding of the formed weights to
 * float: |error| <= sum_i |dL/dW_i| (|W_i(U + D)| + |W_i(U - D)|) 2^-24 / 2 (+ double sums). */
static void test_chain(const char *name, int which)
{
    llm_model *m = fx_load_model(name);
    if (!m) {
        CHECK(0, "%s: load (%s)", name, rs_last_error());
        return;
    }
    fx_calib c;
    fx_calib_init(&c, NROW, m->cfg.vocab, 17);
    llm_qat_opts q;
    llm_qat_opts_default(&q); /* W4A4KV4 */
    llm_spin *s = NULL;
    int st = llm_spin_init(&s, &m, &q, 6, NULL);
    CHECK(!st, "%s: spin init (%s)", name, st ? rs_last_error() : "ok");
    if (st) {
        llm_model_free(m);
        return;
    }
    rs_rng *r = rs_rng_alloc(31, RS_STREAM_DATA);
    randomize(s->u1, s->C, r);
    for (int l = 0; l < s->L; l++) randomize(s->r2 + (size_t)l * s->HS * s->HS, s->HS, r);
    size_t n = which == 1 ? s->C * s->C : (size_t)s->L * s->HS * s->HS, np = m->nparams;
    double *U = which == 1 ? s->u1 : s->r2, *G = which == 1 ? s->g1 : s->g2;
    double *D = malloc(n * sizeof *D), *U0 = malloc(n * sizeof *U0), loss = 0;
    float *dW = malloc(np * sizeof *dW), *Wp = malloc(np * sizeof *Wp);
    st = llm_spin_loss(s, &c.ds, 0, 4, NROW, 1, &loss);
    if (!st) memcpy(dW, m->grads, np * sizeof *dW);
    double worst = 0, worst_bound = 0;
    int within = !st;
    for (int trial = 0; trial < 3 && !st; trial++) {
        for (size_t i = 0; i < n; i++) D[i] = rs_rng_gaussian(r, 1.0);
        double dn = 0, an = 0;
        for (size_t i = 0; i < n; i++) dn += D[i] * D[i];
        for (size_t i = 0; i < n; i++) D[i] /= sqrt(dn), an += G[i] * D[i];
        memcpy(U0, U, n * sizeof *U0);
        for (size_t i = 0; i < n; i++) U[i] = U0[i] + D[i];
        llm_spin_form(s);
        memcpy(Wp, m->params, np * sizeof *Wp);
        for (size_t i = 0; i < n; i++) U[i] = U0[i] - D[i];
        llm_spin_form(s);
        double fd = 0, bound = 0;
        for (size_t i = 0; i < np; i++) {
            fd += (double)dW[i] * ((double)Wp[i] - (double)m->params[i]) / 2;
            bound += fabs((double)dW[i]) * (fabs((double)Wp[i]) + fabs((double)m->params[i]));
        }
        bound = bound * ldexp(1.0, -25) + 1e-12 * fabs(an);
        memcpy(U, U0, n * sizeof *U0);
        printf("  %s W4A4KV4 dL/d%s along a random direction: %.9g, chain rule of the parameter gradients %.9g "
               "(|diff| %.3g, rounding bound %.3g)\n", name, which == 1 ? "U1" : "R2", an, fd, fabs(fd - an), bound);
        within &= fabs(fd - an) <= bound;
        worst = fmax(worst, fabs(fd - an)), worst_bound = fmax(worst_bound, bound);
    }
    CHECK(within && loss > 0, "%s: W4A4KV4 dL/d%s equals the chain rule of the STE parameter gradients (worst |diff| "
          "%.3g within the float rounding bound, largest %.3g; 3 random directions)", name, which == 1 ? "U1" : "R2",
          worst, worst_bound);
    free(D), free(U0), free(dW), free(Wp);
    rs_rng_free(r);
    llm_spin_free(s);
    llm_model_free(m);
}

/* Does the learning lower the W4A4KV4 calibration loss? On random tokens it cannot be seen:
 * the tiny random models predict near-uniformly, quantization noise does not make that worse
 * on average, and the W4A4KV4 loss as a function of the rotation is a rough surface of
 * rounding flips (a random rotation of size 1e-4 moves the 8-row loss by up to 0.02, 30
 * steps at lr 1.5 by -0.10 to +0.10 with the thread count and the BLAS kernel), so one run's
 * l1 < l0 is a coin toss that the last bits of a BLAS sum decide (issue 12). Here quantization matters: the final norm is scaled by 5 (sharper
 * predictions) and the calibration targets are the full-precision model's own greedy next
 * tokens: the 16-bit loss is ~0.4, W4A4KV4 raises it to ~2.3-3.3. Each run is still chaotic
 * (its decrease varies from slightly negative to ~0.5 with the seed, the thread count or the
 * BLAS kernel), so the check is a statistic over 24 runs (2 families x 12 sign seeds, each
 * with its own calibration rows): the mean decrease must exceed 2 standard errors
 * (one-sided, p < 0.025). Measured here: mean 0.18, t = 6.3 (with 8 seeds a family in nearby
 * settings, lr 0.05-0.1, 60-100 steps, norm x3-x10: t between 2.7 and 5.8). */
#define SROW 32
typedef struct {
    llm_dataset ds;
    size_t off[SROW + 1];
    int32_t ids[SROW * TROW], tgt[SROW * TROW];
} distill_t;

static int distill_init(distill_t *c, llm_model *m, uint32_t seed)
{
    memset(c, 0, sizeof *c);
    uint32_t x = seed;
    int V = m->cfg.vocab;
    for (int i = 0; i < SROW * TROW; i++) x = x * 1664525u + 1013904223u, c->ids[i] = (int32_t)((x >> 8) % (uint32_t)V);
    for (int i = 0; i <= SROW; i++) c->off[i] = (size_t)i * TROW;
    for (int r = 0; r < SROW; r++) {
        int st = llm_model_forward(m, c->ids + r * TROW, NULL, 1, TROW, NULL, NULL);
        if (st) return st;
        for (int t = 0; t < TROW; t++) {
            const float *lg = m->logits + (size_t)t * V;
            int b = 0;
            for (int v = 1; v < V; v++)
                if (lg[v] > lg[b]) b = v;
            c->tgt[r * TROW + t] = b;
        }
    }
    c->ds.n = SROW, c->ds.off = c->off, c->ds.ids = c->ids, c->ds.tgt = c->tgt, c->ds.max_row = TROW;
    return RS_OK;
}

static void test_learn_stat(void)
{
    const char *names[2] = {"llama_gqa", "qwen2_gqa"};
    enum { NSEED = 12 };
    double d[2 * NSEED], worst_orth = 0;
    int n = 0, fails = 0;
    for (int k = 0; k < 2; k++) {
        printf("  %s, W4A4KV4 calibration loss before -> after 60 Cayley steps (lr 0.05, final norm x5), seeds 1-%d:", names[k], NSEED);
        for (int sd = 1; sd <= NSEED; sd++) {
            llm_model *m = fx_load_model(names[k]);
            distill_t c;
            int st = m ? RS_OK : RS_EIO;
            if (!st) {
                for (int j = 0; j < m->cfg.d; j++) m->w.lnf_w[j] *= 5;
                st = distill_init(&c, m, 100 + (uint32_t)sd);
            }
            llm_qat_opts q;
            llm_qat_opts_default(&q);
            llm_spin_opts o;
            llm_spin_opts_default(&o);
            o.steps = 60, o.lr = 0.05, o.rows = 8, o.calib = SROW, o.eval_rows = SROW, o.seed = (uint64_t)sd;
            llm_spin_report rep;
            llm_rot_config rc;
            memset(&rc, 0, sizeof rc);
            if (!st) st = llm_spinquant(&m, &q, &o, &c.ds, &rc, &rep);
            if (!st) {
                d[n++] = rep.loss0 - rep.loss1;
                worst_orth = fmax(worst_orth, rep.orth_f64);
                printf(" %.3f->%.3f", rep.loss0, rep.loss1);
            } else {
                fails++;
                printf(" [%s]", rs_last_error());
            }
            llm_rot_config_free(&rc);
            llm_model_free(m);
        }
        printf("\n");
    }
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += d[i];
    mean /= n > 0 ? n : 1;
    for (int i = 0; i < n; i++) var += (d[i] - mean) * (d[i] - mean);
    double se = n > 1 ? sqrt(var / (n - 1) / n) : INFINITY, t = mean / se;
    CHECK(!fails && n == 2 * NSEED && t > 2 && worst_orth <= 1e-10,
          "W4A4KV4 SpinQuant lowers the calibration loss: mean decrease %.3f over %d runs (2 families x %d seeds), "
          "standard error %.3f, t = %.2f > 2 (one-sided p < 0.025); rotations orthogonal (%.2g)",
          mean, n, NSEED, se, t, worst_orth);
}

static double learn(const char *name, int steps, double lr, double *l0, double *l1, double *o64, double *o32, int *learn_r1)
{
    llm_model *m = fx_load_model(name);
    if (!m) return NAN;
    fx_calib c;
    fx_calib_init(&c, NROW, m->cfg.vocab, 13);
    llm_qat_opts q;
    llm_qat_opts_default(&q); /* W4A4KV4 */
    llm_spin_opts o;
    llm_spin_opts_default(&o);
    o.steps = steps;
    o.lr = lr;
    o.rows = 2;
    o.eval_rows = NROW;
    o.seed = 1;
    llm_spin_report rep;
    llm_rot_config rc;
    int st = llm_spinquant(&m, &q, &o, &c.ds, &rc, &rep);
    double sum = NAN;
    if (!st) {
        *l0 = rep.loss0, *l1 = rep.loss1, *o64 = rep.orth_f64, *o32 = rep.orth_f32, *learn_r1 = rep.learn_r1;
        sum = 0;
        for (size_t i = 0; i < m->nparams; i++) sum += m->params[i] * (double)(i % 97 + 1);
    } else {
        printf("  %s: %s\n", name, rs_last_error());
    }
    llm_rot_config_free(&rc);
    llm_model_free(m);
    return sum;
}

/* One run at SpinQuant's lr on random tokens: orthogonality and determinism (the loss is
 * printed, not checked: see test_learn_stat) */
static void test_learn(const char *name, double lr)
{
    double l0 = 0, l1 = 0, o64 = 1, o32 = 1, l0b = 0, l1b = 0, l1c = 0, a, b;
    int r1 = 0;
    const int steps = 30;
    double h = learn(name, steps, lr, &l0, &l1, &o64, &o32, &r1);
    CHECK(!isnan(h), "%s: W4A4KV4 spinquant, %d steps", name, steps);
    CHECK(o64 <= 1e-10 && o32 <= 1e-5, "%s: learned %s orthogonal: max|R^T R - I| %.3g (double) <= 1e-10, %.3g (float) "
          "<= 1e-5", name, r1 ? "U1 and R2" : "R2", o64, o32);
    printf("  %s: W4A4KV4 loss on random tokens %.6f -> %.6f after %d steps (lr %g; not checked)\n", name, l0, l1,
           steps, lr);
    double h2 = learn(name, 5, lr, &l0b, &l1b, &a, &b, &r1), h3 = learn(name, 5, lr, &l0b, &l1c, &a, &b, &r1);
    CHECK(!isnan(h2) && h2 == h3 && l1b == l1c, "%s: same options, same weights and loss (deterministic)", name);
}

int main(void)
{
    test_invariance("llama_gqa");
    test_invariance("qwen2_gqa");
    test_invariance("neox_parallel");
    test_fd("llama_gqa", 1);
    test_fd("llama_gqa", 2);
    test_fd("qwen2_gqa", 2);
    test_chain("llama_gqa", 1);
    test_chain("llama_gqa", 2);
    test_chain("qwen2_gqa", 1);
    test_chain("qwen2_gqa", 2);
    test_chain("neox_parallel", 2);
    test_learn("llama_gqa", 1.5);
    test_learn("qwen2_gqa", 1.5);
    test_learn("neox_parallel", 1.5); /* GPT-NeoX learns R2 only (spinquant.h) */
    test_learn_stat();
    return check_summary("test_spinquant");
}
