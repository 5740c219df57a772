/* rostesim LLM: SpinQuant's learned rotations. See spinquant.h. Conventions of rotate.c:
 * W (out, in) row-major, activations rows; readers W' = W U1, writers W' = U1^T W. */
#include "llm/quantize/spinquant.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/nn/prof.h"
#include "quant/rotation.h"
#include "quant/status.h"
#include "solvers/stiefel.h"

#define GEMM(ta, tb, M, N, K, A, lda, B, ldb, beta, Cm, ldc)                                                        \
    cblas_dgemm(CblasRowMajor, (ta) ? CblasTrans : CblasNoTrans, (tb) ? CblasTrans : CblasNoTrans, (int)(M), (int)(N), \
                (int)(K), 1.0, A, (int)(lda), B, (int)(ldb), beta, Cm, (int)(ldc))

void llm_spin_opts_default(llm_spin_opts *o)
{
    memset(o, 0, sizeof *o);
    o->steps = 100;
    o->lr = 1.5;
    o->momentum = 0;
    o->rows = 4;
    o->calib = 128;
    o->eval_rows = 16;
}

typedef struct {
    size_t C, V, QKV, HD, F, F1, HS, QD, NKV, NH;
} dims;

static dims dims_of(const llm_model *m)
{
    const llm_config *c = &m->cfg;
    dims d;
    d.C = (size_t)c->d, d.V = (size_t)c->vocab, d.F = (size_t)c->d_ff;
    d.HS = (size_t)c->head_dim, d.NH = (size_t)c->n_head, d.NKV = (size_t)c->n_kv_head;
    d.QKV = (d.NH + 2 * d.NKV) * d.HS, d.HD = d.NH * d.HS, d.QD = d.NH * d.HS;
    d.F1 = c->arch == LLM_GPT_NEOX ? d.F : 2 * d.F;
    return d;
}

/* base tensor of the same offset as the model's parameter p */
static const float *base_of(const llm_spin *s, const float *p) { return s->base + (p - s->m->params); }

static void to_d(double *d, const float *f, size_t n)
{
    for (size_t i = 0; i < n; i++) d[i] = f[i];
}
static void to_f(float *f, const double *d, size_t n)
{
    for (size_t i = 0; i < n; i++) f[i] = (float)d[i];
}

void llm_spin_free(llm_spin *s)
{
    if (!s) return;
    free(s->base), free(s->u1), free(s->g1), free(s->m1), free(s->r2), free(s->g2), free(s->m2), free(s->wk);
    free(s->tgt);
    free(s);
}

int llm_spin_init(llm_spin **out, llm_model **pm, const llm_qat_opts *q, uint64_t seed, llm_rot_config *rc)
{
    *out = NULL;
    if (rc) memset(rc, 0, sizeof *rc);
    if ((*pm)->qat) return RS_ERROR(RS_EINVAL, "spinquant: the model is already quantized (give the full-precision model)");
    int st = llm_qat_attach(*pm, q);
    llm_rot_config r = {0};
    if (!st) st = llm_rot_config_init(&r, (*pm)->cfg.n_layer, 1, 0, 1, 1, LLM_SIGNS_ALL, seed);
    if (!st) st = llm_rotate(pm, &r);
    if (st) {
        llm_rot_config_free(&r);
        return st;
    }
    llm_model *m = *pm;
    dims d = dims_of(m);
    llm_spin *s = calloc(1, sizeof *s);
    if (!s) {
        llm_rot_config_free(&r);
        return RS_ERROR(RS_ENOMEM, "spinquant: out of memory");
    }
    s->m = m, s->L = m->cfg.n_layer, s->C = d.C, s->HS = d.HS;
    s->learn_r1 = m->cfg.arch != LLM_GPT_NEOX;
    size_t mx = d.V * d.C;
    if (d.QKV * d.C > mx) mx = d.QKV * d.C;
    if (d.F1 * d.C > mx) mx = d.F1 * d.C;
    if (d.C * d.HD > mx) mx = d.C * d.HD;
    s->wk_n = mx;
    size_t c2 = d.C * d.C, h2 = (size_t)s->L * d.HS * d.HS;
    s->base = malloc(m->nparams * sizeof *s->base);
    s->u1 = calloc(c2, sizeof(double)), s->g1 = calloc(c2, sizeof(double)), s->m1 = calloc(c2, sizeof(double));
    s->r2 = calloc(h2, sizeof(double)), s->g2 = calloc(h2, sizeof(double)), s->m2 = calloc(h2, sizeof(double));
    s->wk = malloc(4 * mx * sizeof(double));
    s->tgt = malloc((size_t)m->cfg.max_pos * sizeof *s->tgt);
    if (!s->base || !s->u1 || !s->g1 || !s->m1 || !s->r2 || !s->g2 || !s->m2 || !s->wk || !s->tgt)
        st = RS_ERROR(RS_ENOMEM, "spinquant: out of memory");
    if (!st) st = llm_model_alloc_grads(m);
    if (!st) {
        memcpy(s->base, m->params, m->nparams * sizeof *s->base);
        for (size_t i = 0; i < d.C; i++) s->u1[i * d.C + i] = 1;
        /* R2_l = the configuration's random Hadamard (the same for every layer, as QuaRot's) */
        double *r2 = s->r2;
        for (size_t i = 0; i < d.HS; i++) r2[i * d.HS + i] = 1;
        st = rot_apply_rows_f64(m->qat->r2, r2, d.HS, 0);
        for (int l = 1; l < s->L && !st; l++) memcpy(r2 + (size_t)l * d.HS * d.HS, r2, d.HS * d.HS * sizeof *r2);
    }
    if (!st && rc) {
        memset(r.r2, 1, (size_t)r.n_layer);
        *rc = r;
    } else {
        llm_rot_config_free(&r);
    }
    if (st) {
        llm_spin_free(s);
        return st;
    }
    *out = s;
    return RS_OK;
}

int llm_spin_form(llm_spin *s)
{
    llm_model *m = s->m;
    dims d = dims_of(m);
    double *A = s->wk, *T = s->wk + s->wk_n, *u1 = s->u1;
    size_t C = d.C, HS = d.HS;
    /* readers: W U1 */
#define READER(p, rows)                                                                                     \
    do {                                                                                                    \
        to_d(A, base_of(s, p), (rows) * C);                                                                 \
        GEMM(0, 0, rows, C, C, A, C, u1, C, 0.0, T, C);                                                     \
    } while (0)
    READER(m->w.wte, d.V);
    to_f(m->w.wte, T, d.V * C);
    READER(m->w.lm_head, d.V);
    to_f(m->w.lm_head, T, d.V * C);
    for (int l = 0; l < s->L; l++) {
        llm_layer *Ly = &m->w.layers[l];
        const double *R2 = s->r2 + (size_t)l * HS * HS;
        READER(Ly->qkv_w, d.QKV);
        for (size_t kh = 0; kh < d.NKV; kh++) { /* V rows: R2^T (T_blk) */
            size_t row = d.QD + d.NKV * HS + kh * HS;
            GEMM(1, 0, HS, C, HS, R2, HS, T + row * C, C, 0.0, A, C);
            memcpy(T + row * C, A, HS * C * sizeof *A);
        }
        to_f(Ly->qkv_w, T, d.QKV * C);
        if (Ly->qkv_b) {
            const float *b = base_of(s, Ly->qkv_b);
            memcpy(Ly->qkv_b, b, d.QKV * sizeof(float));
            for (size_t kh = 0; kh < d.NKV; kh++) {
                size_t row = d.QD + d.NKV * HS + kh * HS;
                for (size_t j = 0; j < HS; j++) {
                    double acc = 0;
                    for (size_t i = 0; i < HS; i++) acc += (double)b[row + i] * R2[i * HS + j];
                    Ly->qkv_b[row + j] = (float)acc;
                }
            }
        }
        /* o_w: U1^T W, then per head (U1^T W)_h R2 */
        to_d(A, base_of(s, Ly->o_w), C * d.HD);
        GEMM(1, 0, C, d.HD, C, u1, C, A, d.HD, 0.0, T, d.HD);
        for (size_t h = 0; h < d.NH; h++) GEMM(0, 0, C, HS, HS, T + h * HS, d.HD, R2, HS, 0.0, A + h * HS, d.HD);
        to_f(Ly->o_w, A, C * d.HD);
        READER(Ly->up_w, d.F1);
        to_f(Ly->up_w, T, d.F1 * C);
        to_d(A, base_of(s, Ly->down_w), C * d.F);
        GEMM(1, 0, C, d.F, C, u1, C, A, d.F, 0.0, T, d.F);
        to_f(Ly->down_w, T, C * d.F);
        float *bs[2] = {Ly->o_b, Ly->down_b};
        for (int k = 0; k < 2; k++) {
            if (!bs[k]) continue;
            const float *b = base_of(s, bs[k]);
            for (size_t j = 0; j < C; j++) {
                double acc = 0;
                for (size_t i = 0; i < C; i++) acc += (double)b[i] * u1[i * C + j];
                bs[k][j] = (float)acc;
            }
        }
    }
#undef READER
    llm_qat *q = m->qat;
    for (int k = 0; k < q->n_layer * LLM_NSITES; k++) q->wc_src[k] = NULL; /* weights changed */
    return RS_OK;
}

/* dU (n x n) += a^T b for row vectors a (n), b (n) */
static void outer_add(double *dU, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) dU[i * n + j] += (double)a[i] * b[j];
}

/* g1, g2 from the model's gradients of the formed weights (the chain rule of llm_spin_form) */
static void map_grads(llm_spin *s)
{
    llm_model *m = s->m;
    dims d = dims_of(m);
    size_t C = d.C, HS = d.HS;
    double *A = s->wk, *T = s->wk + s->wk_n, *D = s->wk + 2 * s->wk_n, *E = s->wk + 3 * s->wk_n;
    double *u1 = s->u1, *g1 = s->g1;
    memset(g1, 0, C * C * sizeof *g1);
    memset(s->g2, 0, (size_t)s->L * HS * HS * sizeof *s->g2);
    /* readers W' = B U1: dU1 += B^T D */
#define READER_G(p, gp, rows)                                                                                   \
    do {                                                                                                        \
        to_d(A, base_of(s, p), (rows) * C);                                                                     \
        to_d(D, gp, (rows) * C);                                                                                \
        GEMM(1, 0, C, C, rows, A, C, D, C, 1.0, g1, C);                                                         \
    } while (0)
    READER_G(m->w.wte, m->g.wte, d.V);
    READER_G(m->w.lm_head, m->g.lm_head, d.V);
    for (int l = 0; l < s->L; l++) {
        llm_layer *Ly = &m->w.layers[l], *Gy = &m->g.layers[l];
        const double *R2 = s->r2 + (size_t)l * HS * HS;
        double *g2 = s->g2 + (size_t)l * HS * HS;
        /* qkv: T = B U1; V blocks W' = R2^T T_blk: dR2 += T_blk D_blk^T, dT_blk = R2 D_blk */
        to_d(A, base_of(s, Ly->qkv_w), d.QKV * C);
        to_d(D, Gy->qkv_w, d.QKV * C);
        GEMM(0, 0, d.QKV, C, C, A, C, u1, C, 0.0, T, C);
        for (size_t kh = 0; kh < d.NKV; kh++) {
            size_t row = d.QD + d.NKV * HS + kh * HS;
            GEMM(0, 1, HS, HS, C, T + row * C, C, D + row * C, C, 1.0, g2, HS);
            GEMM(0, 0, HS, C, HS, R2, HS, D + row * C, C, 0.0, E, C);
            memcpy(D + row * C, E, HS * C * sizeof *E);
        }
        GEMM(1, 0, C, C, d.QKV, A, C, D, C, 1.0, g1, C);
        if (Ly->qkv_b)
            for (size_t kh = 0; kh < d.NKV; kh++) {
                size_t row = d.QD + d.NKV * HS + kh * HS;
                outer_add(g2, base_of(s, Ly->qkv_b) + row, Gy->qkv_b + row, HS);
            }
        /* o_w: T = U1^T B, W'_h = T_h R2: dR2 += T_h^T D_h, dT_h = D_h R2^T; dU1 += B dT^T */
        to_d(A, base_of(s, Ly->o_w), C * d.HD);
        to_d(D, Gy->o_w, C * d.HD);
        GEMM(1, 0, C, d.HD, C, u1, C, A, d.HD, 0.0, T, d.HD);
        for (size_t h = 0; h < d.NH; h++) {
            GEMM(1, 0, HS, HS, C, T + h * HS, d.HD, D + h * HS, d.HD, 1.0, g2, HS);
            GEMM(0, 1, C, HS, HS, D + h * HS, d.HD, R2, HS, 0.0, E + h * HS, d.HD);
        }
        GEMM(0, 1, C, C, d.HD, A, d.HD, E, d.HD, 1.0, g1, C);
        READER_G(Ly->up_w, Gy->up_w, d.F1);
        /* down: W' = U1^T B: dU1 += B D^T */
        to_d(A, base_of(s, Ly->down_w), C * d.F);
        to_d(D, Gy->down_w, C * d.F);
        GEMM(0, 1, C, C, d.F, A, d.F, D, d.F, 1.0, g1, C);
        if (Ly->o_b) outer_add(g1, base_of(s, Ly->o_b), Gy->o_b, C);
        if (Ly->down_b) outer_add(g1, base_of(s, Ly->down_b), Gy->down_b, C);
    }
#undef READER_G
}

/* targets of row i: the data set's, or the next tokens */
static const int32_t *row_targets(llm_spin *s, const llm_dataset *ds, size_t i, int T)
{
    if (ds->tgt) return ds->tgt + ds->off[i];
    const int32_t *ids = ds->ids + ds->off[i];
    for (int t = 0; t < T; t++) s->tgt[t] = t + 1 < T ? ids[t + 1] : -1;
    return s->tgt;
}

int llm_spin_loss(llm_spin *s, const llm_dataset *ds, size_t r0, size_t nrows, size_t ncycle, int grad,
                  double *loss)
{
    if (!ds || ds->n == 0 || nrows == 0) return RS_ERROR(RS_EINVAL, "spinquant: no calibration rows");
    if (ncycle == 0 || ncycle > ds->n) ncycle = ds->n;
    llm_model *m = s->m;
    int st = llm_spin_form(s);
    /* tokens in the loss over the rows, for the mean */
    double total = 0;
    for (size_t k = 0; k < nrows; k++) {
        size_t i = (r0 + k) % ncycle;
        int T = (int)(ds->off[i + 1] - ds->off[i]);
        const int32_t *tg = row_targets(s, ds, i, T);
        for (int t = 0; t < T; t++) total += tg[t] >= 0;
    }
    if (total == 0) return RS_ERROR(RS_EINVAL, "spinquant: the calibration rows have no target tokens");
    if (grad) llm_model_zero_grad(m);
    double sum = 0;
    for (size_t k = 0; k < nrows && !st; k++) {
        size_t i = (r0 + k) % ncycle;
        int T = (int)(ds->off[i + 1] - ds->off[i]), n = 0;
        float l = 0;
        const int32_t *tg = row_targets(s, ds, i, T);
        st = llm_model_forward(m, ds->ids + ds->off[i], tg, 1, T, &l, &n);
        sum += (double)l * n;
        if (!st && grad && n > 0) st = llm_model_backward(m, (float)(1.0 / total));
    }
    if (st) return st;
    if (grad) map_grads(s);
    if (loss) *loss = sum / total;
    return RS_OK;
}

int llm_spin_step(llm_spin *s, double lr, double momentum)
{
    int st = RS_OK;
    if (s->learn_r1) st = stiefel_cayley_step(s->u1, s->g1, s->m1, s->C, lr, momentum, 1, NULL);
    for (int l = 0; l < s->L && !st; l++) {
        size_t o = (size_t)l * s->HS * s->HS;
        st = stiefel_cayley_step(s->r2 + o, s->g2 + o, s->m2 + o, s->HS, lr, momentum, 1, NULL);
    }
    return st;
}

static double orth_f32(const double *R, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0;
            for (size_t k = 0; k < n; k++) acc += (double)(float)R[k * n + i] * (double)(float)R[k * n + j];
            e = fmax(e, fabs(acc - (i == j)));
        }
    return e;
}

void llm_spin_orth(const llm_spin *s, double *e64, double *e32)
{
    double a = stiefel_orth_err(s->u1, s->C), b = orth_f32(s->u1, s->C);
    for (int l = 0; l < s->L; l++) {
        const double *R = s->r2 + (size_t)l * s->HS * s->HS;
        a = fmax(a, stiefel_orth_err(R, s->HS));
        b = fmax(b, orth_f32(R, s->HS));
    }
    if (e64) *e64 = a;
    if (e32) *e32 = b;
}

int llm_spinquant(llm_model **m, const llm_qat_opts *q, const llm_spin_opts *o, const llm_dataset *ds,
                  llm_rot_config *rc, llm_spin_report *rep)
{
    if (rep) memset(rep, 0, sizeof *rep);
    if (!ds || ds->n == 0) return RS_ERROR(RS_EINVAL, "spinquant: needs calibration data");
    if (o->steps < 0 || o->rows < 1 || o->calib < 1 || o->eval_rows < 1 || !(o->lr >= 0) ||
        !(o->momentum >= 0 && o->momentum < 1))
        return RS_ERROR(RS_EINVAL, "spinquant: steps %d >= 0, rows %d, calib %d, eval rows %d >= 1, lr %g >= 0 and "
                        "momentum %g in [0, 1) expected", o->steps, o->rows, o->calib, o->eval_rows, o->lr, o->momentum);
    llm_spin *s = NULL;
    int st = llm_spin_init(&s, m, q, o->seed, rc);
    if (st) return st;
    size_t ncyc = (size_t)o->calib < ds->n ? (size_t)o->calib : ds->n;
    size_t nev = (size_t)o->eval_rows < ncyc ? (size_t)o->eval_rows : ncyc;
    double l0 = 0, l1 = 0;
    st = llm_spin_loss(s, ds, 0, nev, ncyc, 0, &l0);
    const double t0 = llm_prof_now();
    double tlast = t0;
    for (int t = 0; t < o->steps && !st; t++) {
        double lr = o->lr * 0.5 * (1 + cos(M_PI * t / o->steps)), l;
        st = llm_spin_loss(s, ds, (size_t)t * (size_t)o->rows, (size_t)o->rows, ncyc, 1, &l);
        if (!st) st = llm_spin_step(s, lr, o->momentum);
        const double now = llm_prof_now(), el = now - t0;
        if (!st && o->progress > 0 && (now - tlast >= o->progress || t + 1 == o->steps)) {
            fprintf(stderr, "spinquant: step %d/%d, loss %.4f, lr %.3g, %.0f s, ETA %.0f s\n", t + 1, o->steps, l, lr, el,
                    el / (t + 1) * (o->steps - t - 1));
            tlast = now;
        }
    }
    if (!st) st = llm_spin_loss(s, ds, 0, nev, ncyc, 0, &l1); /* also forms the final weights */
    if (!st && rep) {
        rep->loss0 = l0, rep->loss1 = l1, rep->steps = o->steps, rep->learn_r1 = s->learn_r1;
        llm_spin_orth(s, &rep->orth_f64, &rep->orth_f32);
    }
    llm_spin_free(s);
    return st;
}
