/* rostesim LLM: fake quantization at the linear sites and the K/V cache, STE backward,
 * online rotations. See qat.h. Dimension letters as in kernels.h.
 *
 * The forward keeps Q_w(W) and the down projection's x R4 for the backward (profiled on
 * the ~7M bench config: R4 at d_ff = 688 = 172 x 4 costs more than the down projection's
 * matmul, quantizers a few per cent); the backward re-quantizes the activations (one
 * elementwise pass against the matrix products' OC times more work). With fast = 0 the
 * backward recomputes everything from the saved input and the (unchanged) weights. */
#include "llm/quantize/qat.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "llm/io/fileio.h"
#include "llm/io/jsonutil.h"
#include "llm/nn/kernels.h"
#include "llm/nn/model.h"
#include "llm/nn/prof.h"
#include "llm/quantize/rotate.h"
#include "quant/status.h"

void llm_qat_opts_default(llm_qat_opts *o)
{
    memset(o, 0, sizeof *o);
    o->wbits = o->abits = o->kvbits = 4;
    o->wclip = o->aclip = o->kvclip = 1.0;
    o->scheme = QZ_ASYM;
    o->clipmode = QZ_CLIP_CODE;
    o->ste = QZ_STE_IDENTITY;
}

static qz_spec make_spec(const llm_qat_opts *o, int bits, double clip)
{
    qz_spec s = qz_spec_make(bits, o->scheme, QZ_ROW, 0);
    s.clip = (float)clip;
    s.clipmode = o->clipmode;
    s.ste = o->ste;
    return s;
}

int llm_qat_opts_check(const llm_qat_opts *o)
{
    const char *nm[3] = {"weights (--wbits/--wclip)", "activations (--abits/--aclip)", "KV cache (--kvbits/--kvclip)"};
    int bits[3] = {o->wbits, o->abits, o->kvbits};
    double clip[3] = {o->wclip, o->aclip, o->kvclip};
    for (int i = 0; i < 3; i++) {
        qz_spec s = make_spec(o, bits[i], clip[i]);
        if (qz_spec_check(&s, 0)) return RS_ERROR(RS_EINVAL, "%s: %s", nm[i], rs_last_error());
    }
    return RS_OK;
}

void llm_qat_free(llm_qat *q)
{
    if (!q) return;
    rot_free(q->r1);
    rot_free(q->r2);
    rot_free(q->r3);
    rot_free(q->r4);
    free(q->r2_on);
    free(q->r3_on);
    free(q->r4_on);
    free(q->weff), free(q->dwr), free(q->r2t), free(q->beff), free(q->dbeff);
    free(q->stats);
    for (int s = 0; s < LLM_NSITES; s++) free(q->chan_max[s]);
    free(q->xa);
    free(q->xq);
    free(q->dx);
    free(q->wq);
    free(q->dw);
    free(q->fin);
    free(q->part);
    free(q->wr);
    free(q->rws);
    if (q->wc)
        for (int i = 0; i < q->n_layer * LLM_NSITES; i++) free(q->wc[i]);
    if (q->x4)
        for (int i = 0; i < q->n_layer; i++) free(q->x4[i]);
    free(q->wc), free(q->wc_cap), free(q->wc_src);
    free(q->x4), free(q->x4_cap), free(q->x4_src), free(q->x4_n);
    free(q);
}

static int qat_rms_norm(const llm_qat *q) { return q->rms_norm; }

/* What the model calls at its sites while this state is attached. */
static const llm_site_hooks qat_hooks = {
    .reserve = llm_qat_reserve,
    .linear_forward = llm_qat_linear_forward,
    .linear_backward = llm_qat_linear_backward,
    .qkv_forward = llm_qat_qkv_forward,
    .qkv_backward = llm_qat_qkv_backward,
    .final_in = llm_qat_final_in,
    .final_backward = llm_qat_final_backward,
    .rms_norm = qat_rms_norm,
    .free = llm_qat_free,
};

int llm_qat_attach(llm_model *m, const llm_qat_opts *o)
{
    int st = llm_qat_opts_check(o);
    if (st) return st;
    llm_qat *q = calloc(1, sizeof *q);
    if (!q) return RS_ERROR(RS_ENOMEM, "llm_qat: out of memory");
    q->o = *o;
    q->w = make_spec(o, o->wbits, o->wclip);
    q->a = make_spec(o, o->abits, o->aclip);
    q->kv = make_spec(o, o->kvbits, o->kvclip);
    q->kv.ste = QZ_STE_IDENTITY;
    q->n_layer = m->cfg.n_layer;
    q->chan_layer = -1;
    q->fast = 1;
    size_t L = (size_t)m->cfg.n_layer;
    q->wc = calloc(L * LLM_NSITES, sizeof *q->wc);
    q->wc_cap = calloc(L * LLM_NSITES, sizeof *q->wc_cap);
    q->wc_src = calloc(L * LLM_NSITES, sizeof *q->wc_src);
    q->x4 = calloc(L, sizeof *q->x4);
    q->x4_cap = calloc(L, sizeof *q->x4_cap);
    q->x4_src = calloc(L, sizeof *q->x4_src);
    q->x4_n = calloc(L, sizeof *q->x4_n);
    q->r2_on = calloc(L, 1);
    q->r3_on = calloc(L, 1);
    q->r4_on = calloc(L, 1);
    q->stats = calloc(L, sizeof *q->stats);
    /* weight buffers: the largest weight matrix of a quantized site */
    const llm_config *c = &m->cfg;
    q->n_head = c->n_head, q->n_kv_head = c->n_kv_head, q->head_dim = c->head_dim, q->d = c->d;
    size_t C = (size_t)c->d, QKV = (size_t)(c->n_head + 2 * c->n_kv_head) * c->head_dim;
    size_t HD = (size_t)c->n_head * c->head_dim, F = (size_t)c->d_ff, F1 = c->arch == LLM_GPT_NEOX ? F : 2 * F;
    size_t nw = QKV * C;
    if (C * HD > nw) nw = C * HD;
    if (F1 * C > nw) nw = F1 * C;
    q->wq = malloc(nw * sizeof(float));
    q->dw = o->ste == QZ_STE_CLIPPED ? malloc(nw * sizeof(float)) : NULL;
    q->n_wr = C * F;
    q->wr = malloc(q->n_wr * sizeof(float)); /* Q_w(W_down) R4^T */
    if (!q->r2_on || !q->r3_on || !q->r4_on || !q->stats || !q->wq || (o->ste == QZ_STE_CLIPPED && !q->dw) || !q->wr || !q->wc ||
        !q->wc_cap || !q->wc_src || !q->x4 || !q->x4_cap || !q->x4_src || !q->x4_n) {
        llm_qat_free(q);
        return RS_ERROR(RS_ENOMEM, "llm_qat: out of memory");
    }
    if (m->qat) m->hooks->free(m->qat);
    m->qat = q;
    m->hooks = &qat_hooks;
    return RS_OK;
}

static size_t max_in(const llm_config *c)
{
    size_t C = (size_t)c->d, HD = (size_t)c->n_head * c->head_dim, F = (size_t)c->d_ff;
    size_t r = C > HD ? C : HD;
    size_t qk = (size_t)(c->n_head + c->n_kv_head) * c->head_dim; /* R3 gather */
    if (qk > r) r = qk;
    return F > r ? F : r;
}

void llm_qat_freeze(llm_model *m)
{
    llm_qat *q = m ? m->qat : NULL;
    if (!q) return;
    for (int k = 0; k < q->n_layer * LLM_NSITES; k++) q->wc_src[k] = NULL;
    q->frozen = 1;
}

int llm_qat_reserve(llm_qat *q, const llm_model *m, int N)
{
    if ((size_t)N <= q->capN && q->xa) return RS_OK;
    const llm_config *c = &m->cfg;
    size_t n = (size_t)N * max_in(c);
    size_t np = (size_t)N * (size_t)(2 * c->n_kv_head);
    size_t QKV = (size_t)(c->n_head + 2 * c->n_kv_head) * c->head_dim;
    if (QKV > (size_t)N && QKV > np) np = QKV; /* per-row partial sums of the largest weight */
    if ((size_t)c->d_ff * 2 > np) np = (size_t)c->d_ff * 2;
    if ((size_t)c->d > np) np = (size_t)c->d;
    free(q->xa);
    free(q->xq);
    free(q->dx);
    free(q->fin);
    free(q->part);
    q->xa = malloc(n * sizeof(float));
    q->xq = malloc(n * sizeof(float));
    q->dx = malloc(n * sizeof(float));
    q->fin = malloc((size_t)N * (size_t)c->d * sizeof(float));
    q->part = malloc(np * sizeof(double));
    if (!q->xa || !q->xq || !q->dx || !q->fin || !q->part) {
        q->capN = 0;
        return RS_ERROR(RS_ENOMEM, "llm_qat: out of memory for %d tokens", N);
    }
    q->capN = (size_t)N;
    return RS_OK;
}

int llm_qat_r2_reserve(llm_qat *q)
{
    if (q->weff) return RS_OK;
    size_t C = (size_t)q->d, HS = (size_t)q->head_dim, QKV = (size_t)(q->n_head + 2 * q->n_kv_head) * HS;
    size_t HD = (size_t)q->n_head * HS, nw = QKV * C > C * HD ? QKV * C : C * HD;
    q->weff = malloc(nw * sizeof(float));
    q->dwr = malloc(nw * sizeof(float));
    q->r2t = malloc((size_t)q->n_kv_head * HS * C * sizeof(float));
    q->beff = malloc(QKV * sizeof(float));
    q->dbeff = malloc(QKV * sizeof(float));
    if (!q->weff || !q->dwr || !q->r2t || !q->beff || !q->dbeff) {
        free(q->weff), free(q->dwr), free(q->r2t), free(q->beff), free(q->dbeff);
        q->weff = q->dwr = q->r2t = q->beff = q->dbeff = NULL;
        return RS_ERROR(RS_ENOMEM, "llm_qat: out of memory for the online R2");
    }
    return RS_OK;
}

void llm_qat_stats_reset(llm_qat *q)
{
    memset(q->stats, 0, (size_t)q->n_layer * sizeof *q->stats);
    for (int s = 0; s < LLM_NSITES; s++)
        if (q->chan_max[s]) memset(q->chan_max[s], 0, q->chan_w[s] * sizeof(float));
}

int llm_qat_track_channels(llm_qat *q, const llm_model *m, int layer)
{
    for (int s = 0; s < LLM_NSITES; s++) {
        free(q->chan_max[s]);
        q->chan_max[s] = NULL;
    }
    q->chan_layer = layer;
    if (layer < 0) return RS_OK;
    const llm_config *c = &m->cfg;
    size_t w[LLM_NSITES] = {(size_t)c->d, (size_t)c->n_head * c->head_dim, (size_t)c->d, (size_t)c->d_ff};
    for (int s = 0; s < LLM_NSITES; s++) {
        q->chan_max[s] = calloc(w[s], sizeof(float));
        q->chan_w[s] = w[s];
        if (!q->chan_max[s]) return RS_ERROR(RS_ENOMEM, "llm_qat: out of memory");
    }
    return RS_OK;
}

/* Sum of squared differences of rows (n rows of len), deterministic (per-row partials). */
static double sqdiff(double *part, const float *a, const float *b, size_t rows, size_t len)
{
    long R = (long)rows;
#pragma omp parallel for schedule(static) if (rows * len >= (1 << 15))
    for (long i = 0; i < R; i++) {
        const float *x = a + (size_t)i * len, *y = b + (size_t)i * len;
        double s = 0;
        for (size_t j = 0; j < len; j++) {
            double d = (double)x[j] - (double)y[j];
            s += d * d;
        }
        part[i] = s;
    }
    double s = 0;
    for (size_t i = 0; i < rows; i++) s += part[i];
    return s;
}

static double range_sum(const float *x, size_t rows, size_t len)
{
    double s = 0;
    for (size_t i = 0; i < rows; i++) {
        const float *r = x + i * len;
        float lo = r[0], hi = r[0];
        for (size_t j = 1; j < len; j++) {
            if (r[j] < lo) lo = r[j];
            if (r[j] > hi) hi = r[j];
        }
        s += (double)hi - (double)lo;
    }
    return s;
}

/* x <- x R (or x R^T) for rows rows, with the state's rotation scratch (grown here). */
static int rot_rows(llm_qat *q, const rot *r, float *x, size_t rows, int transpose)
{
    int st;
    LLM_PROF(LLM_PH_ROT, st = rot_apply_rows_f32_grow(r, x, rows, transpose, &q->rws, &q->rws_len));
    return st;
}

static int r4_here(const llm_qat *q, int site, int layer)
{
    return site == LLM_SITE_DOWN && q->r4 && layer >= 0 && layer < q->n_layer && q->r4_on[layer];
}

/* The site's input after online rotations (xa or the layer's x R4 cache, or inp itself)
 * and its quantized version (xq, or the former when activations are not quantized).
 * bwd: take x R4 from the forward's cache when it holds this input. */
static int prep_input(llm_qat *q, int site, int layer, const float *inp, int N, int IC, int bwd, const float **xr,
                      const float **xqo)
{
    int st = RS_OK;
    const float *x = inp;
    size_t n = (size_t)N * (size_t)IC;
    if (r4_here(q, site, layer)) {
        if (bwd && q->fast && q->x4_src[layer] == inp && q->x4_n[layer] == N) {
            x = q->x4[layer];
        } else {
            float *dst = q->xa;
            if (q->fast && !bwd) { /* keep x R4 for the backward */
                if (q->x4_cap[layer] < n) {
                    float *nb = realloc(q->x4[layer], n * sizeof(float));
                    if (!nb) return RS_ERROR(RS_ENOMEM, "llm_qat: out of memory for %d tokens", N);
                    q->x4[layer] = nb;
                    q->x4_cap[layer] = n;
                }
                dst = q->x4[layer];
            }
            memcpy(dst, inp, n * sizeof(float));
            if ((st = rot_rows(q, q->r4, dst, (size_t)N, 0))) return st;
            x = dst;
            if (dst != q->xa) q->x4_src[layer] = inp, q->x4_n[layer] = N;
        }
    }
    *xr = x;
    if (qz_is_identity(&q->a)) {
        *xqo = x;
        return RS_OK;
    }
    LLM_PROF(LLM_PH_QUANT, st = qz_fake_f32(&q->a, x, q->xq, (size_t)N, (size_t)IC));
    if (st) return st;
    *xqo = q->xq;
    return RS_OK;
}

static int r2_here(const llm_qat *q, int site, int layer)
{
    return (site == LLM_SITE_QKV || site == LLM_SITE_O) && q->r2 && q->weff && layer >= 0 && layer < q->n_layer &&
           q->r2_on[layer];
}

/* Online R2 on the weight w (OC,IC) of the QKV or O site, in place: the merged form's
 * rotation (inverse = 0: R2^T W_v per kv head on the V rows of QKV; W_o R2 per head on
 * O's input columns) or its transpose (inverse = 1: a gradient back to the stored basis,
 * R2 dW_v and dW_o R2^T). The V rows go through r2t transposed (IC*NKV rows of HS: row
 * (c, h) is column c of W_v,h), so that R2^T W_v,h = (W_v,h^T R2)^T is a rows operation. */
static int r2_weight(llm_qat *q, int site, float *w, int OC, int IC, int inverse)
{
    if (site == LLM_SITE_O) return rot_rows(q, q->r2, w, (size_t)OC * (size_t)q->n_head, inverse);
    const size_t HS = (size_t)q->head_dim, NKV = (size_t)q->n_kv_head, ICs = (size_t)IC;
    float *V = w + (size_t)(q->n_head + q->n_kv_head) * HS * ICs, *t = q->r2t;
    for (size_t h = 0; h < NKV; h++)
        for (size_t i = 0; i < HS; i++) {
            const float *src = V + (h * HS + i) * ICs;
            for (size_t c = 0; c < ICs; c++) t[(c * NKV + h) * HS + i] = src[c];
        }
    int st = rot_rows(q, q->r2, t, ICs * NKV, inverse);
    if (st) return st;
    for (size_t h = 0; h < NKV; h++)
        for (size_t i = 0; i < HS; i++) {
            float *dst = V + (h * HS + i) * ICs;
            for (size_t c = 0; c < ICs; c++) dst[c] = t[(c * NKV + h) * HS + i];
        }
    return RS_OK;
}

/* The V part of a QKV bias (or its gradient) b (OC) <- b R2 per kv head (inverse: R2^T). */
static int r2_bias(llm_qat *q, float *b, int inverse)
{
    size_t HS = (size_t)q->head_dim;
    return rot_rows(q, q->r2, b + (size_t)(q->n_head + q->n_kv_head) * HS, (size_t)q->n_kv_head, inverse);
}

/* Q_w of the site's weight: of w, or with an online R2 of its rotated form (the merged
 * form's weight, computed into weff). Computed into the site's cache in the forward
 * (fast), taken from it in the backward when it was computed from these weights. *pre
 * gets the quantizer's input (w or weff) when need_pre (always in the forward). */
static const float *prep_weight(llm_qat *q, int site, int layer, const float *w, int OC, int IC, int bwd,
                                int need_pre, const float **pre, int *st)
{
    *st = RS_OK;
    *pre = w;
    const int r2 = r2_here(q, site, layer);
    if (qz_is_identity(&q->w) && !r2) return w;
    size_t n = (size_t)OC * (size_t)IC;
    int cached = q->fast && layer >= 0 && layer < q->n_layer && site >= 0 && site < LLM_NSITES;
    size_t k = cached ? (size_t)layer * LLM_NSITES + (size_t)site : 0;
    /* inference: the weights are those the cache was computed from (the statistics of
     * llm_qat_collect need the quantizer's input, so they take the long way) */
    if (cached && q->frozen && !q->collect && q->wc_src[k] == w) return q->wc[k];
    const float *src = w;
    if (r2 && (!bwd || need_pre || !q->fast)) {
        memcpy(q->weff, w, n * sizeof(float));
        if ((*st = r2_weight(q, site, q->weff, OC, IC, 0))) return NULL;
        src = *pre = q->weff;
    }
    if (cached && bwd && q->wc_src[k] == w) return q->wc[k];
    if (r2 && src == w) { /* a backward that missed the cache */
        memcpy(q->weff, w, n * sizeof(float));
        if ((*st = r2_weight(q, site, q->weff, OC, IC, 0))) return NULL;
        src = *pre = q->weff;
    }
    float *dst = q->wq;
    if (cached && !bwd) {
        if (q->wc_cap[k] < n) {
            float *nb = realloc(q->wc[k], n * sizeof(float));
            if (!nb) {
                *st = RS_ERROR(RS_ENOMEM, "llm_qat: out of memory for the quantized weights");
                return NULL;
            }
            q->wc[k] = nb;
            q->wc_cap[k] = n;
        }
        dst = q->wc[k];
        q->wc_src[k] = NULL;
    }
    if (qz_is_identity(&q->w)) {
        if (dst == q->wq) return src; /* weff, not cached */
        memcpy(dst, src, n * sizeof(float));
    } else {
        LLM_PROF(LLM_PH_QUANT, *st = qz_fake_f32(&q->w, src, dst, (size_t)OC, (size_t)IC));
        if (*st) return NULL;
    }
    if (dst != q->wq) q->wc_src[k] = w;
    return dst;
}

int llm_qat_linear_forward(llm_qat *q, int site, int layer, float *out, const float *inp, const float *w,
                           const float *b, int N, int IC, int OC)
{
    const float *xr = NULL, *xq = NULL;
    int st = prep_input(q, site, layer, inp, N, IC, 0, &xr, &xq);
    if (st) return st;
    const float *wpre = w;
    const float *wq = prep_weight(q, site, layer, w, OC, IC, 0, 1, &wpre, &st);
    if (st) return st;
    if (b && site == LLM_SITE_QKV && r2_here(q, site, layer)) {
        memcpy(q->beff, b, (size_t)OC * sizeof(float));
        if ((st = r2_bias(q, q->beff, 0))) return st;
        b = q->beff;
    }
    lk_matmul_forward(out, xq, wq, b, N, IC, OC);
    if (q->collect && layer >= 0 && layer < q->n_layer && site < LLM_NSITES) {
        llm_qat_stats *S = &q->stats[layer];
        if (!S->w_seen[site]) {
            S->w_err[site] += qz_is_identity(&q->w) ? 0.0 : sqdiff(q->part, wq, wpre, (size_t)OC, (size_t)IC);
            S->w_n[site] += (double)OC * IC;
            S->w_seen[site] = 1;
        }
        S->a_err[site] += xq == xr ? 0.0 : sqdiff(q->part, xq, xr, (size_t)N, (size_t)IC);
        S->a_n[site] += (double)N * IC;
        S->a_range[site] += range_sum(xr, (size_t)N, (size_t)IC);
        S->a_tok[site] += N;
        if (layer == q->chan_layer && q->chan_max[site]) {
            float *cm = q->chan_max[site];
            for (int i = 0; i < N; i++)
                for (int j = 0; j < IC; j++) {
                    float v = fabsf(xr[(size_t)i * IC + j]);
                    if (v > cm[j]) cm[j] = v;
                }
        }
    }
    return RS_OK;
}

int llm_qat_linear_backward(llm_qat *q, int site, int layer, float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, int N, int IC, int OC)
{
    const float *xr = NULL, *xq = NULL;
    int st = prep_input(q, site, layer, inp, N, IC, 1, &xr, &xq);
    if (st) return st;
    const int clipped = q->o.ste == QZ_STE_CLIPPED, wquant = !qz_is_identity(&q->w);
    const float *wpre = w;
    const float *wq = prep_weight(q, site, layer, w, OC, IC, 1, clipped && wquant && dw, &wpre, &st);
    if (st) return st;
    /* online R2: the gradients of the rotated weight (and QKV bias) into dwr (dbeff), then
     * back to the stored basis and accumulated */
    const int r2 = r2_here(q, site, layer);
    const size_t nw = (size_t)OC * (size_t)IC;
    float *dwt = dw, *dbt = db;
    if (r2 && dw) memset(dwt = q->dwr, 0, nw * sizeof(float));
    if (r2 && db && site == LLM_SITE_QKV) memset(dbt = q->dbeff, 0, (size_t)OC * sizeof(float));
    /* weight gradient: dW = dout^T xq, through the weight STE */
    if (dw) {
        if (clipped && wquant) {
            memset(q->dw, 0, nw * sizeof(float));
            lk_matmul_backward(NULL, q->dw, dbt, dout, xq, wq, N, IC, OC);
            LLM_PROF(LLM_PH_QUANT, st = qz_ste_backward_f32(&q->w, wpre, q->dw, q->dw, (size_t)OC, (size_t)IC));
            if (st) return st;
            lk_accumulate(dwt, q->dw, (long)nw);
        } else {
            lk_matmul_backward(NULL, dwt, dbt, dout, xq, wq, N, IC, OC);
        }
    } else if (db) {
        lk_matmul_backward(NULL, NULL, dbt, dout, xq, wq, N, IC, OC);
    }
    if (dwt != dw) {
        if ((st = r2_weight(q, site, dwt, OC, IC, 1))) return st;
        lk_accumulate(dw, dwt, (long)nw);
    }
    if (dbt != db) {
        if ((st = r2_bias(q, dbt, 1))) return st;
        lk_accumulate(db, dbt, (long)OC);
    }
    if (!dinp) return RS_OK;
    const int rotated = xr != inp;
    if (!rotated && !(clipped && xq != xr)) {
        lk_matmul_backward(dinp, NULL, NULL, dout, xq, wq, N, IC, OC);
        return RS_OK;
    }
    if (rotated && q->fast && !(clipped && xq != xr) && (size_t)OC * IC <= (size_t)q->n_wr) {
        /* dinp += (dout Q_w(W)) R4^T = dout (Q_w(W) R4^T): R4 on OC weight rows */
        memcpy(q->wr, wq, (size_t)OC * IC * sizeof(float));
        if ((st = rot_rows(q, q->r4, q->wr, (size_t)OC, 1))) return st;
        lk_matmul_backward(dinp, NULL, NULL, dout, xq, q->wr, N, IC, OC);
        return RS_OK;
    }
    size_t n = (size_t)N * IC;
    memset(q->dx, 0, n * sizeof(float));
    lk_matmul_backward(q->dx, NULL, NULL, dout, xq, wq, N, IC, OC);
    if (clipped && xq != xr) LLM_PROF(LLM_PH_QUANT, st = qz_ste_backward_f32(&q->a, xr, q->dx, q->dx, (size_t)N, (size_t)IC));
    if (st) return st;
    if (rotated && (st = rot_rows(q, q->r4, q->dx, (size_t)N, 1))) return st;
    lk_accumulate(dinp, q->dx, (long)n);
    return RS_OK;
}

/* Gather q|k of every token (N rows of QK floats at stride QKV) into xa, or scatter back. */
static void gather_qk(float *dst, const float *qkv, int N, int QK, int QKV)
{
    for (int i = 0; i < N; i++) memcpy(dst + (size_t)i * QK, qkv + (size_t)i * QKV, (size_t)QK * sizeof(float));
}
static void scatter_qk(float *qkv, const float *src, int N, int QK, int QKV)
{
    for (int i = 0; i < N; i++) memcpy(qkv + (size_t)i * QKV, src + (size_t)i * QK, (size_t)QK * sizeof(float));
}

static int r3_apply(llm_qat *q, const llm_model *m, float *qkv, int N, int transpose)
{
    const llm_config *c = &m->cfg;
    const int HS = c->head_dim, QK = (c->n_head + c->n_kv_head) * HS, QKV = QK + c->n_kv_head * HS;
    gather_qk(q->xa, qkv, N, QK, QKV);
    int st = rot_rows(q, q->r3, q->xa, (size_t)N * (size_t)(c->n_head + c->n_kv_head), transpose);
    if (st) return st;
    scatter_qk(qkv, q->xa, N, QK, QKV);
    return RS_OK;
}

int llm_qat_qkv_forward(llm_qat *q, const llm_model *m, int layer, float *qkv, int N)
{
    const llm_config *c = &m->cfg;
    int st;
    if (q->r3 && q->r3_on[layer] && (st = r3_apply(q, m, qkv, N, 0))) return st;
    if (qz_is_identity(&q->kv)) return RS_OK;
    const int HS = c->head_dim, NKV = c->n_kv_head, QKV = (c->n_head + 2 * NKV) * HS, QD = c->n_head * HS;
    const int KVD = NKV * HS;
    /* k|v of a token are 2*NKV contiguous heads: gather into xa, quantize per head, keep
     * the originals for the error statistics, scatter back. */
    for (int i = 0; i < N; i++)
        memcpy(q->xa + (size_t)i * 2 * KVD, qkv + (size_t)i * QKV + QD, (size_t)2 * KVD * sizeof(float));
    size_t rows = (size_t)N * 2 * NKV;
    LLM_PROF(LLM_PH_QUANT, st = qz_fake_f32(&q->kv, q->xa, q->xq, rows, (size_t)HS));
    if (st) return st;
    for (int i = 0; i < N; i++)
        memcpy(qkv + (size_t)i * QKV + QD, q->xq + (size_t)i * 2 * KVD, (size_t)2 * KVD * sizeof(float));
    if (q->collect && layer >= 0 && layer < q->n_layer) {
        llm_qat_stats *S = &q->stats[layer];
        double ke = 0, ve = 0;
        sqdiff(q->part, q->xq, q->xa, rows, (size_t)HS);
        for (size_t r = 0; r < rows; r++) {
            if ((r % (size_t)(2 * NKV)) < (size_t)NKV) ke += q->part[r];
            else ve += q->part[r];
        }
        S->k_err += ke;
        S->v_err += ve;
        S->kv_n += (double)N * KVD;
    }
    return RS_OK;
}

int llm_qat_qkv_backward(llm_qat *q, const llm_model *m, int layer, float *dqkv, int N)
{
    if (q->r3 && q->r3_on[layer]) return r3_apply(q, m, dqkv, N, 1);
    return RS_OK;
}

const float *llm_qat_final_in(llm_qat *q, const float *x, int N, int C)
{
    if (!q || !q->r1) return x;
    memcpy(q->fin, x, (size_t)N * C * sizeof(float));
    if (rot_rows(q, q->r1, q->fin, (size_t)N, 1)) return NULL;
    return q->fin;
}

int llm_qat_final_backward(llm_qat *q, float *dx, int N, int C)
{
    (void)C;
    if (!q || !q->r1) return RS_OK;
    return rot_rows(q, q->r1, dx, (size_t)N, 0);
}

/* ---- saved configuration ------------------------------------------------------------------ */

int llm_qat_save(const llm_model *m, const llm_rot_config *rc, const char *method, const char *dir)
{
    const llm_qat *q = m->qat;
    if (!q) return RS_ERROR(RS_EINVAL, "llm_qat_save: the model has no quantization state");
    for (int l = 0; l < q->n_layer; l++)
        if (q->r2_on[l])
            return RS_ERROR(RS_EINVAL, "llm_qat_save: R2 of layer %d is online (weights unrotated): merge it first "
                            "(llm_rotate_merge_r2)", l);
    cJSON *j = cJSON_CreateObject(), *qz = cJSON_CreateObject();
    if (!j || !qz) {
        cJSON_Delete(j), cJSON_Delete(qz);
        return RS_ERROR(RS_ENOMEM, "llm_qat_save: out of memory");
    }
    cJSON_AddStringToObject(j, "format", "rostesim-qat");
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddStringToObject(j, "method", method ? method : "ste");
    cJSON_AddNumberToObject(qz, "wbits", q->o.wbits);
    cJSON_AddNumberToObject(qz, "abits", q->o.abits);
    cJSON_AddNumberToObject(qz, "kvbits", q->o.kvbits);
    cJSON_AddNumberToObject(qz, "wclip", q->o.wclip);
    cJSON_AddNumberToObject(qz, "aclip", q->o.aclip);
    cJSON_AddNumberToObject(qz, "kvclip", q->o.kvclip);
    cJSON_AddStringToObject(qz, "scheme", qz_scheme_name(q->o.scheme));
    cJSON_AddStringToObject(qz, "clip_mode", q->o.clipmode == QZ_CLIP_CODE ? "code" : "paper");
    cJSON_AddStringToObject(qz, "ste", q->o.ste == QZ_STE_CLIPPED ? "clipped" : "identity");
    cJSON_AddItemToObject(j, "quant", qz);
    if (rc) {
        cJSON_AddItemToObject(j, "rotation", llm_rot_config_to_json(rc));
        cJSON_AddStringToObject(j, "r2_mode", q->r2_trained_online ? "online" : "merged");
    } else {
        cJSON_AddNullToObject(j, "rotation");
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, LLM_QAT_FILE);
    return llm_json_write(path, j, 1);
}

static int json_num(const cJSON *o, const char *k, double lo, double hi, double *v, const char *path)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x) || x->valuedouble < lo || x->valuedouble > hi)
        return RS_ERROR(RS_EINVAL, "%s: quant.%s must be a number in [%g, %g]", path, k, lo, hi);
    *v = x->valuedouble;
    return RS_OK;
}

static const char *json_str(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

int llm_qat_load_model(llm_model **out, const char *dir)
{
    llm_model *m;
    int st = llm_model_load(&m, dir);
    if (st) return st;
    if ((st = llm_qat_load(m, dir))) {
        llm_model_free(m);
        return st;
    }
    *out = m;
    return RS_OK;
}

int llm_qat_load(llm_model *m, const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, LLM_QAT_FILE);
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) return RS_OK; /* a plain model */
    size_t n;
    char *txt;
    if (llm_read_file(path, LLM_READ_ANY_SIZE, &txt, &n)) return RS_ERROR(RS_EIO, "cannot read %s: %s", path, strerror(errno));
    cJSON *j = cJSON_ParseWithLength(txt, n);
    free(txt);
    if (!j) return RS_ERROR(RS_EINVAL, "%s: not valid JSON", path);
    int st = RS_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format"), *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
    const cJSON *qz = cJSON_GetObjectItemCaseSensitive(j, "quant"), *rj = cJSON_GetObjectItemCaseSensitive(j, "rotation");
    llm_qat_opts o;
    llm_qat_opts_default(&o);
    double v[6] = {0};
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "rostesim-qat") || !cJSON_IsNumber(ver) || ver->valueint != 1)
        st = RS_ERROR(RS_EINVAL, "%s: not a rostesim-qat version 1 file (written by a newer rostesim? re-run llm qat)",
                      path);
    else if (!cJSON_IsObject(qz))
        st = RS_ERROR(RS_EINVAL, "%s: no \"quant\" object", path);
    if (!st) st = json_num(qz, "wbits", 1, 64, &v[0], path);
    if (!st) st = json_num(qz, "abits", 1, 64, &v[1], path);
    if (!st) st = json_num(qz, "kvbits", 1, 64, &v[2], path);
    if (!st) st = json_num(qz, "wclip", 0, 1, &v[3], path);
    if (!st) st = json_num(qz, "aclip", 0, 1, &v[4], path);
    if (!st) st = json_num(qz, "kvclip", 0, 1, &v[5], path);
    if (!st) {
        o.wbits = (int)v[0], o.abits = (int)v[1], o.kvbits = (int)v[2];
        o.wclip = v[3], o.aclip = v[4], o.kvclip = v[5];
        const char *sc = json_str(qz, "scheme"), *cm = json_str(qz, "clip_mode"), *se = json_str(qz, "ste");
        if (!sc || (strcmp(sc, "sym") && strcmp(sc, "asym")) || !cm || (strcmp(cm, "code") && strcmp(cm, "paper")) ||
            !se || (strcmp(se, "identity") && strcmp(se, "clipped")))
            st = RS_ERROR(RS_EINVAL, "%s: quant.scheme (sym|asym), quant.clip_mode (code|paper) and quant.ste "
                          "(identity|clipped) are required", path);
        else {
            o.scheme = strcmp(sc, "sym") ? QZ_ASYM : QZ_SYM;
            o.clipmode = strcmp(cm, "code") ? QZ_CLIP_PAPER : QZ_CLIP_CODE;
            o.ste = strcmp(se, "identity") ? QZ_STE_CLIPPED : QZ_STE_IDENTITY;
        }
    }
    if (!st) st = llm_qat_attach(m, &o);
    if (!st && rj && !cJSON_IsNull(rj)) {
        llm_rot_config rc;
        st = llm_rot_config_from_json(&rc, rj, m->cfg.n_layer, path);
        if (!st) {
            st = llm_rotate_attach(m, &rc); /* the saved weights hold R2 merged */
            llm_rot_config_free(&rc);
        }
        const char *r2m = json_str(j, "r2_mode");
        const cJSON *r2j = cJSON_GetObjectItemCaseSensitive(j, "r2_mode");
        if (!st && r2j && (!r2m || (strcmp(r2m, "online") && strcmp(r2m, "merged"))))
            st = RS_ERROR(RS_EINVAL, "%s: \"r2_mode\" must be \"online\" or \"merged\"", path);
        if (!st && r2m) m->qat->r2_trained_online = !strcmp(r2m, "online");
    }
    cJSON_Delete(j);
    return st;
}
