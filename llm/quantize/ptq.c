/* rostesim LLM: post-training quantization baselines. See ptq.h. Dimension letters as in
 * kernels.h; N calibration tokens of one row, IC/OC a site's input/output width. */
#include "llm/quantize/ptq.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "llm/io/fileio.h"
#include "llm/io/jsonutil.h"
#include "quant/status.h"
#include "solvers/gptq.h"

const char *llm_ptq_method_name(llm_ptq_method m)
{
    static const char *const n[] = {"rtn", "gptq", "quarot", "spinquant"};
    return m >= LLM_PTQ_RTN && m <= LLM_PTQ_SPINQUANT ? n[m] : "?";
}

int llm_ptq_method_parse(const char *s)
{
    for (int i = LLM_PTQ_RTN; i <= LLM_PTQ_SPINQUANT; i++)
        if (s && !strcmp(s, llm_ptq_method_name((llm_ptq_method)i))) return i;
    return -1;
}

void llm_ptq_opts_default(llm_ptq_opts *o, llm_ptq_method method)
{
    memset(o, 0, sizeof *o);
    o->method = method;
    llm_qat_opts_default(&o->q);
    if (method == LLM_PTQ_QUAROT || method == LLM_PTQ_SPINQUANT) o->q.aclip = 0.9, o->q.kvclip = 0.95;
    llm_spin_opts_default(&o->spin);
    o->gptq_weights = method == LLM_PTQ_GPTQ;
    o->damp = 0.01;
    o->block = 128;
    o->calib = 128;
}

int llm_ptq_uses_gptq(const llm_ptq_opts *o)
{
    return o->method == LLM_PTQ_GPTQ || ((o->method == LLM_PTQ_QUAROT || o->method == LLM_PTQ_SPINQUANT) && o->gptq_weights);
}

int llm_ptq_opts_check(const llm_ptq_opts *o)
{
    if (o->method < LLM_PTQ_RTN || o->method > LLM_PTQ_SPINQUANT)
        return RS_ERROR(RS_EINVAL, "ptq: unknown method %d (rtn, gptq, quarot, spinquant)", (int)o->method);
    int st = llm_qat_opts_check(&o->q);
    if (st) return st;
    if (!(o->damp >= 0 && o->damp < 1e6)) return RS_ERROR(RS_EINVAL, "ptq: GPTQ damping %g must be >= 0", o->damp);
    if (o->group < 0) return RS_ERROR(RS_EINVAL, "ptq: group %d must be >= 0", o->group);
    if (o->group > 0 && !llm_ptq_uses_gptq(o))
        return RS_ERROR(RS_EINVAL, "ptq: weight groups need GPTQ weights (the RTN weight quantizer is per channel)");
    if (o->block < 1) return RS_ERROR(RS_EINVAL, "ptq: GPTQ block %d must be >= 1", o->block);
    if (o->calib < 1) return RS_ERROR(RS_EINVAL, "ptq: calibration rows %d must be >= 1", o->calib);
    if (o->method == LLM_PTQ_SPINQUANT) {
        const llm_spin_opts *s = &o->spin;
        if (s->steps < 0) return RS_ERROR(RS_EINVAL, "ptq: SpinQuant steps %d must be >= 0", s->steps);
        if (!(s->lr >= 0 && s->lr < 1e6)) return RS_ERROR(RS_EINVAL, "ptq: SpinQuant lr %g must be >= 0", s->lr);
        if (!(s->momentum >= 0 && s->momentum < 1))
            return RS_ERROR(RS_EINVAL, "ptq: SpinQuant momentum %g must be in [0, 1)", s->momentum);
        if (s->rows < 1) return RS_ERROR(RS_EINVAL, "ptq: SpinQuant rows per step %d must be >= 1", s->rows);
    }
    return RS_OK;
}

/* ---- Hessians from the calibration inputs ------------------------------------------------- */

typedef struct {
    llm_model *m;
    int layer;                  /* the layer whose inputs are accumulated */
    double *H[LLM_NSITES];      /* (IC, IC) X^T X, upper triangle while accumulating */
    size_t ic[LLM_NSITES];
    double ntok[LLM_NSITES];
    float *xr;                  /* (N, IC) rotated input (down with R4) */
    double *xd;                 /* (N, IC) in double */
    size_t cap;                 /* floats / doubles in xr, xd */
    unsigned seen;              /* sites of `layer` seen in this forward (bit per site) */
} hess_ctx;

/* The model's forward calls this with every site's input: H_site += x^T x for `layer`. */
static int hess_tap(void *vctx, int site, int layer, const float *inp, int N, int IC)
{
    hess_ctx *c = vctx;
    if (layer != c->layer || site < 0 || site >= LLM_NSITES) return RS_OK;
    if ((size_t)IC != c->ic[site]) return RS_ERROR(RS_EINVAL, "ptq: site %s input width %d, expected %zu",
                                                   llm_site_name(site), IC, c->ic[site]);
    size_t n = (size_t)N * IC;
    if (n > c->cap) {
        float *xr = realloc(c->xr, n * sizeof *xr);
        if (xr) c->xr = xr;
        double *xd = realloc(c->xd, n * sizeof *xd);
        if (xd) c->xd = xd;
        if (!xr || !xd) return RS_ERROR(RS_ENOMEM, "ptq: out of memory for %d calibration tokens", N);
        c->cap = n;
    }
    const float *x = inp;
    const llm_qat *q = c->m->qat;
    if (site == LLM_SITE_DOWN && q && q->r4 && q->r4_on[layer]) { /* the weights hold W_down R4: H of x R4 */
        memcpy(c->xr, inp, n * sizeof(float));
        int st = rot_apply_rows_f32(q->r4, c->xr, (size_t)N, 0);
        if (st) return st;
        x = c->xr;
    }
    for (size_t i = 0; i < n; i++) c->xd[i] = x[i];
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, IC, N, 1.0, c->xd, IC, 1.0, c->H[site], IC);
    c->ntok[site] += N;
    /* every site of the layer seen: the rest of the forward (later layers, the head) is not
     * needed for this layer's Hessians */
    c->seen |= 1u << site;
    return c->seen == (1u << LLM_NSITES) - 1 ? LLM_TAP_STOP : RS_OK;
}

/* The weight matrix (OC, IC) of a site of layer l. */
static float *site_weight(llm_model *m, int l, int site, size_t *oc, size_t *ic)
{
    const llm_config *c = &m->cfg;
    size_t C = (size_t)c->d, QKV = (size_t)(c->n_head + 2 * c->n_kv_head) * c->head_dim;
    size_t HD = (size_t)c->n_head * c->head_dim, F = (size_t)c->d_ff, F1 = c->arch == LLM_GPT_NEOX ? F : 2 * F;
    llm_layer *L = &m->w.layers[l];
    switch (site) {
    case LLM_SITE_QKV: *oc = QKV, *ic = C; return L->qkv_w;
    case LLM_SITE_O: *oc = C, *ic = HD; return L->o_w;
    case LLM_SITE_UP: *oc = F1, *ic = C; return L->up_w;
    default: *oc = C, *ic = F; return L->down_w;
    }
}

/* sum_r d_r H d_r^T for D = A - B (rows, cols); E is (rows, cols) scratch. */
static double out_err(const double *A, const double *B, const double *H, double *D, double *E, size_t rows,
                      size_t cols)
{
    size_t n = rows * cols;
    for (size_t i = 0; i < n; i++) D[i] = A[i] - B[i];
    cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, (int)rows, (int)cols, 1.0, H, (int)cols, D, (int)cols, 0.0, E,
                (int)cols);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += D[i] * E[i];
    return s;
}

static qz_spec gptq_spec(const llm_ptq_opts *o)
{
    qz_spec s = qz_spec_make(o->q.wbits, o->q.scheme, o->group > 0 ? QZ_GROUP : QZ_ROW, (size_t)o->group);
    s.clip = (float)o->q.wclip;
    s.clipmode = o->q.clipmode;
    return s;
}

/* GPTQ of one site: W (float, in place) from H (upper triangle, symmetrised here). */
static int gptq_site(const llm_ptq_opts *o, float *W, size_t OC, size_t IC, double *H, double *Wd, double *W0,
                     double *Wr, double *D, double *E, double *rtn_err, double *gptq_err)
{
    for (size_t i = 0; i < IC; i++)
        for (size_t j = 0; j < i; j++) H[i * IC + j] = H[j * IC + i];
    size_t n = OC * IC;
    for (size_t i = 0; i < n; i++) Wd[i] = W0[i] = W[i];
    qz_spec s = gptq_spec(o);
    int st = qz_fake_f64(&s, W0, Wr, OC, IC);
    if (!st) st = gptq_quantize_f64(&s, Wd, OC, IC, H, o->damp, o->act_order, (size_t)o->block);
    if (st) return st;
    *rtn_err = out_err(W0, Wr, H, D, E, OC, IC);
    *gptq_err = out_err(W0, Wd, H, D, E, OC, IC);
    for (size_t i = 0; i < n; i++) W[i] = (float)Wd[i];
    return RS_OK;
}

int llm_ptq_gptq(llm_model *m, const llm_ptq_opts *o, const llm_dataset *ds, llm_ptq_layer_err *err)
{
    llm_qat *q = m->qat;
    if (!q) return RS_ERROR(RS_EINVAL, "ptq: GPTQ needs the model's quantization state");
    if (!ds || ds->n == 0) return RS_ERROR(RS_EINVAL, "ptq: GPTQ needs calibration data");
    const llm_config *c = &m->cfg;
    const int L = c->n_layer;
    if (err) memset(err, 0, (size_t)L * sizeof *err);
    qz_spec s = gptq_spec(o);
    if (qz_is_identity(&s)) return RS_OK; /* 16-bit weights: nothing to quantize */
    size_t maxw = 0, maxic = 0;
    for (int site = 0; site < LLM_NSITES; site++) {
        size_t oc, ic;
        site_weight(m, 0, site, &oc, &ic);
        int st = qz_spec_check(&s, ic);
        if (st) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", rs_last_error());
            return RS_ERROR(RS_EINVAL, "ptq: %s weights (%zu inputs): %s", llm_site_name(site), ic, msg);
        }
        if (oc * ic > maxw) maxw = oc * ic;
        if (ic > maxic) maxic = ic;
    }
    hess_ctx h = {.m = m};
    double *wk = malloc(5 * maxw * sizeof(double));
    int st = wk ? RS_OK : RS_ERROR(RS_ENOMEM, "ptq: out of memory");
    for (int site = 0; site < LLM_NSITES && !st; site++) {
        size_t oc;
        site_weight(m, 0, site, &oc, &h.ic[site]);
        h.H[site] = malloc(h.ic[site] * h.ic[site] * sizeof(double));
        if (!h.H[site]) st = RS_ERROR(RS_ENOMEM, "ptq: out of memory");
    }
    /* calibration: weights already GPTQ'd are used as they are, activations and K/V in full
     * precision; the quantizers are restored (weights: off) at the end */
    qz_spec sa = q->a, skv = q->kv;
    int abits = q->o.abits, kvbits = q->o.kvbits;
    q->w.bits = q->a.bits = q->kv.bits = 16;
    q->o.wbits = q->o.abits = q->o.kvbits = 16;
    q->collect = 0;
    int n = o->calib < (int)ds->n ? o->calib : (int)ds->n;
    /* every calibration row's hidden states entering the current layer, carried from layer to
     * layer (each block runs twice per layer: once for the Hessians, once more with its
     * weights quantized for the next layer's input), not a forward from the embedding per
     * layer: the same states bit for bit (llm_model_block_forward), O(L) blocks, not O(L^2) */
    const size_t C = (size_t)m->cfg.d, ntok_all = n > 0 ? ds->off[n] - ds->off[0] : 0;
    float *hs = !st ? malloc((ntok_all ? ntok_all : 1) * C * sizeof *hs) : NULL;
    if (!st && !hs) st = RS_ERROR(RS_ENOMEM, "ptq: out of memory for the hidden states of %d calibration rows", n);
    for (int i = 0; i < n && !st; i++)
        st = llm_model_embed(m, ds->ids + ds->off[i], (int)(ds->off[i + 1] - ds->off[i]), hs + (ds->off[i] - ds->off[0]) * C);
    m->tap_ctx = &h;
    for (int l = 0; l < L && !st; l++) {
        h.layer = l;
        for (int site = 0; site < LLM_NSITES; site++) {
            memset(h.H[site], 0, h.ic[site] * h.ic[site] * sizeof(double));
            h.ntok[site] = 0;
        }
        m->tap = hess_tap;
        for (int i = 0; i < n && !st; i++) {
            int T = (int)(ds->off[i + 1] - ds->off[i]);
            h.seen = 0;
            st = llm_model_block_forward(m, l, hs + (ds->off[i] - ds->off[0]) * C, NULL, 1, T);
            if (st == LLM_TAP_STOP) st = RS_OK;
        }
        m->tap = NULL;
        for (int site = 0; site < LLM_NSITES && !st; site++) {
            size_t oc, ic;
            float *W = site_weight(m, l, site, &oc, &ic);
            double re = 0, ge = 0;
            st = gptq_site(o, W, oc, ic, h.H[site], wk, wk + maxw, wk + 2 * maxw, wk + 3 * maxw, wk + 4 * maxw, &re, &ge);
            if (!st && err) err[l].rtn[site] = re, err[l].gptq[site] = ge, err[l].ntok = h.ntok[site];
        }
        for (int i = 0; i < n && !st && l + 1 < L; i++) {
            float *x = hs + (ds->off[i] - ds->off[0]) * C;
            st = llm_model_block_forward(m, l, x, x, 1, (int)(ds->off[i + 1] - ds->off[i]));
        }
    }
    free(hs);
    m->tap = NULL;
    m->tap_ctx = NULL;
    q->a = sa, q->kv = skv;
    q->o.abits = abits, q->o.kvbits = kvbits;
    for (int site = 0; site < LLM_NSITES; site++) free(h.H[site]);
    free(h.xr), free(h.xd), free(wk);
    return st;
}

int llm_ptq_apply(llm_model **m, const llm_ptq_opts *o, const llm_dataset *ds, llm_rot_config *rc,
                  llm_ptq_layer_err *err)
{
    if (rc) memset(rc, 0, sizeof *rc);
    int st = llm_ptq_opts_check(o);
    if (st) return st;
    if ((*m)->qat) return RS_ERROR(RS_EINVAL, "ptq: the model is already quantized (give the full-precision model)");
    if ((llm_ptq_uses_gptq(o) || o->method == LLM_PTQ_SPINQUANT) && (!ds || ds->n == 0))
        return RS_ERROR(RS_EINVAL, "ptq: %s needs calibration data", llm_ptq_method_name(o->method));
    if (o->method == LLM_PTQ_SPINQUANT) {
        llm_qat_opts q = o->q;
        if (o->gptq_weights) q.wbits = 16; /* GPTQ quantizes the weights after the learning */
        llm_spin_opts so = o->spin;
        so.calib = o->calib, so.seed = o->rot_seed;
        llm_rot_config tmp, *r = rc ? rc : &tmp;
        st = llm_spinquant(m, &q, &so, ds, r, o->spin_report);
        if (r == &tmp) llm_rot_config_free(&tmp);
        if (st) return st;
        if (llm_ptq_uses_gptq(o)) st = llm_ptq_gptq(*m, o, ds, err);
        return st;
    }
    if ((st = llm_qat_attach(*m, &o->q))) return st;
    if (o->method == LLM_PTQ_QUAROT) {
        llm_rot_config tmp, *r = rc ? rc : &tmp;
        st = llm_rot_config_init(r, (*m)->cfg.n_layer, 1, 1, 1, 1, LLM_SIGNS_ALL, o->rot_seed);
        if (!st) st = llm_rotate(m, r);
        if (r == &tmp) llm_rot_config_free(&tmp);
        if (st) return st;
    }
    if (llm_ptq_uses_gptq(o)) st = llm_ptq_gptq(*m, o, ds, err);
    return st;
}

/* ---- saving --------------------------------------------------------------------------------- */

int llm_ptq_save(const llm_model *m, const llm_rot_config *rc, const llm_ptq_opts *o, const char *dir)
{
    int st = llm_model_save(m, dir);
    int rotated = o->method == LLM_PTQ_QUAROT || o->method == LLM_PTQ_SPINQUANT;
    if (!st) st = llm_qat_save(m, rotated ? rc : NULL, llm_ptq_method_name(o->method), dir);
    if (st) return st;
    /* add the "ptq" record to the file llm_qat_save wrote */
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, LLM_QAT_FILE);
    size_t len;
    char *txt;
    if (llm_read_file(path, LLM_READ_ANY_SIZE, &txt, &len)) return RS_ERROR(RS_EIO, "cannot read %s: %s", path, strerror(errno));
    cJSON *j = cJSON_ParseWithLength(txt, len), *p = cJSON_CreateObject();
    free(txt);
    if (!j || !p) {
        cJSON_Delete(j), cJSON_Delete(p);
        return RS_ERROR(RS_ENOMEM, "ptq: cannot build %s", path);
    }
    int g = llm_ptq_uses_gptq(o);
    cJSON_AddStringToObject(p, "method", llm_ptq_method_name(o->method));
    cJSON_AddStringToObject(p, "weights", g ? "gptq" : "rtn");
    cJSON_AddNumberToObject(p, "wbits", o->q.wbits);
    cJSON_AddNumberToObject(p, "wclip", o->q.wclip);
    cJSON_AddBoolToObject(p, "weights_on_grid", g && o->q.wbits < 16);
    if (g) {
        cJSON_AddNumberToObject(p, "group", o->group);
        cJSON_AddNumberToObject(p, "damp", o->damp);
        cJSON_AddBoolToObject(p, "act_order", o->act_order);
        cJSON_AddNumberToObject(p, "calib", o->calib);
    }
    if (rotated) cJSON_AddNumberToObject(p, "rot_seed", (double)o->rot_seed);
    if (o->method == LLM_PTQ_SPINQUANT) {
        if (!g) cJSON_AddNumberToObject(p, "calib", o->calib);
        cJSON_AddNumberToObject(p, "spin_steps", o->spin.steps);
        cJSON_AddNumberToObject(p, "spin_lr", o->spin.lr);
        cJSON_AddNumberToObject(p, "spin_momentum", o->spin.momentum);
        cJSON_AddNumberToObject(p, "spin_rows", o->spin.rows);
        cJSON_AddStringToObject(p, "spin_schedule", "cosine");
        cJSON_AddStringToObject(p, "r2", "per layer");
        if (o->spin_report) {
            cJSON_AddNumberToObject(p, "spin_loss_before", o->spin_report->loss0);
            cJSON_AddNumberToObject(p, "spin_loss_after", o->spin_report->loss1);
            cJSON_AddBoolToObject(p, "r1_learned", o->spin_report->learn_r1);
        }
    }
    cJSON_AddItemToObject(j, "ptq", p);
    return llm_json_write(path, j, 1);
}

int llm_ptq_write_errors(const char *path, const llm_ptq_layer_err *err, int n_layer, double mean_ratio[LLM_NSITES])
{
    FILE *f = fopen(path, "w");
    if (!f) return RS_ERROR(RS_EIO, "cannot write %s", path);
    fprintf(f, "layer\tsite\trtn_err\tgptq_err\tratio\n");
    double lr[LLM_NSITES] = {0};
    for (int l = 0; l < n_layer; l++)
        for (int s = 0; s < LLM_NSITES; s++) {
            double r = err[l].rtn[s] > 0 ? err[l].gptq[s] / err[l].rtn[s] : 1;
            fprintf(f, "%d\t%s\t%.6g\t%.6g\t%.4f\n", l, llm_site_name(s), err[l].rtn[s], err[l].gptq[s], r);
            lr[s] += r;
        }
    if (fclose(f)) return RS_ERROR(RS_EIO, "cannot write %s", path);
    for (int s = 0; s < LLM_NSITES; s++) mean_ratio[s] = lr[s] / n_layer;
    return RS_OK;
}
