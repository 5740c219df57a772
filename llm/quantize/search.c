/* rostesim LLM: rotation search. See search.h. */
#include "llm/quantize/search.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "llm/io/fileio.h"
#include "quant/status.h"

const char *llm_err_mode_name(llm_err_mode e) { return e == LLM_ERR_MEAN ? "mean" : "sum"; }

int llm_calibrate(llm_model *m, const llm_dataset *ds, int n, int *nrows)
{
    llm_qat *q = m->qat;
    if (!q) return RS_ERROR(RS_EINVAL, "llm_calibrate: the model has no quantization state");
    if (n <= 0 || (size_t)n > ds->n) n = (int)ds->n;
    llm_qat_stats_reset(q);
    q->collect = 1;
    int st = RS_OK;
    for (int i = 0; i < n && !st; i++) {
        int T = (int)(ds->off[i + 1] - ds->off[i]);
        st = llm_model_forward(m, ds->ids + ds->off[i], NULL, 1, T, NULL, NULL);
    }
    q->collect = 0;
    if (nrows) *nrows = n;
    return st;
}

static double site_term(const llm_qat_stats *S, int site, llm_err_mode mode, int nrows)
{
    if (mode == LLM_ERR_MEAN)
        return (S->w_n[site] > 0 ? S->w_err[site] / S->w_n[site] : 0) + (S->a_n[site] > 0 ? S->a_err[site] / S->a_n[site] : 0);
    return S->w_err[site] + (nrows > 0 ? S->a_err[site] / nrows : 0);
}

double llm_search_term(const llm_qat *q, int layer, int which, llm_err_mode mode, int nrows)
{
    const llm_qat_stats *S = &q->stats[layer];
    if (which == 2) return site_term(S, LLM_SITE_O, mode, nrows);
    if (which == 4) return site_term(S, LLM_SITE_DOWN, mode, nrows);
    if (mode == LLM_ERR_MEAN) return S->kv_n > 0 ? S->k_err / S->kv_n : 0;
    return nrows > 0 ? S->k_err / nrows : 0;
}

double llm_search_total(const llm_qat *q, llm_err_mode mode, int nrows)
{
    double e = 0;
    for (int l = 0; l < q->n_layer; l++) {
        const llm_qat_stats *S = &q->stats[l];
        for (int s = 0; s < LLM_NSITES; s++) e += site_term(S, s, mode, nrows);
        if (mode == LLM_ERR_MEAN) e += S->kv_n > 0 ? (S->k_err + S->v_err) / S->kv_n : 0;
        else e += nrows > 0 ? (S->k_err + S->v_err) / nrows : 0;
    }
    return e;
}

static int set_all(llm_model *m, llm_rot_config *rc, int on)
{
    int st = RS_OK;
    for (int l = 0; l < rc->n_layer && !st; l++)
        for (int w = 2; w <= 4 && !st; w++) st = llm_rotate_set(m, rc, l, w, on);
    return st;
}

int llm_search_select(llm_model *m, llm_rot_config *rc, const llm_dataset *ds, int n, llm_err_mode mode,
                      llm_search_terms *terms)
{
    const int L = rc->n_layer;
    llm_search_terms *t = terms ? terms : calloc((size_t)L, sizeof *t);
    if (!t) return RS_ERROR(RS_ENOMEM, "llm_search: out of memory");
    int nrows = 0;
    int st = set_all(m, rc, 0);
    if (!st) st = llm_calibrate(m, ds, n, &nrows);
    for (int l = 0; l < L && !st; l++)
        for (int w = 2; w <= 4; w++) t[l].off[w - 2] = llm_search_term(m->qat, l, w, mode, nrows);
    if (!st) st = set_all(m, rc, 1);
    if (!st) st = llm_calibrate(m, ds, n, &nrows);
    for (int l = 0; l < L && !st; l++)
        for (int w = 2; w <= 4; w++) t[l].on[w - 2] = llm_search_term(m->qat, l, w, mode, nrows);
    for (int l = 0; l < L && !st; l++)
        for (int w = 2; w <= 4 && !st; w++) st = llm_rotate_set(m, rc, l, w, t[l].on[w - 2] < t[l].off[w - 2]);
    if (!terms) free(t);
    return st;
}

int llm_search_write_tsv(const char *path, const llm_rot_config *rc, const llm_search_terms *terms)
{
    llm_atomic at;
    if (llm_atomic_open(&at, path, 0)) return RS_ERROR(RS_EIO, "cannot write %s: %s", at.tmp, strerror(at.err));
    FILE *f = at.f;
    fprintf(f, "layer\trotation\tsite\terror_off\terror_on\treduction\tchosen\n");
    static const char *const site[3] = {"o_proj", "k_cache", "down_proj"};
    for (int l = 0; l < rc->n_layer; l++)
        for (int w = 0; w < 3; w++) {
            const unsigned char *on = w == 0 ? rc->r2 : w == 1 ? rc->r3 : rc->r4;
            double a = terms[l].off[w], b = terms[l].on[w];
            fprintf(f, "%d\tR%d\t%s\t%.9g\t%.9g\t%.6f\t%d\n", l, w + 2, site[w], a, b, a > 0 ? (a - b) / a : 0.0,
                    on[l]);
        }
    return llm_atomic_commit(&at, 1) ? RS_ERROR(RS_EIO, "cannot write %s", path) : RS_OK;
}
