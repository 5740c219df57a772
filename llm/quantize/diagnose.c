/* rostesim LLM: quantization diagnostics (see diagnose.h). */
#include "llm/quantize/diagnose.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/io/fileio.h"
#include "llm/quantize/search.h"
#include "quant/status.h"

/* The tables' writer: the one atomic writer, with its standard messages. */
static int table_open(llm_atomic *a, const char *path)
{
    return llm_atomic_open(a, path, 0) ? llm_atomic_error(a) : RS_OK;
}

static int table_close(llm_atomic *a) { return llm_atomic_commit(a, 1) ? llm_atomic_error(a) : RS_OK; }

int llm_diag_calibrate(llm_model *m[2], llm_rot_config rc[2], const llm_qat_opts *o, llm_signs signs, uint64_t seed,
                       int layer, const llm_dataset *ds, int calib)
{
    for (int k = 0; k < 2; k++) {
        int n = 0, st;
        if ((st = llm_qat_attach(m[k], o)) || (st = llm_rot_config_init(&rc[k], m[k]->cfg.n_layer, k, k, k, k, signs, seed)) ||
            (st = llm_rotate(&m[k], &rc[k])) || (st = llm_qat_track_channels(m[k]->qat, m[k], layer)) ||
            (st = llm_calibrate(m[k], ds, calib, &n)))
            return st;
    }
    return RS_OK;
}

int llm_diag_write_sites(const char *path, const llm_model *off, const llm_model *on)
{
    llm_atomic a;
    int st = table_open(&a, path);
    if (st) return st;
    FILE *f = a.f;
    fprintf(f, "layer\tsite\tw_err_off\tw_err_on\ta_err_off\ta_err_on\trange_off\trange_on\tw_red\ta_red\trange_red\n");
    for (int l = 0; l < off->cfg.n_layer; l++) {
        const llm_qat_stats *A = &off->qat->stats[l], *B = &on->qat->stats[l];
        for (int s = 0; s < LLM_NSITES; s++) {
            double ra = A->a_range[s] / fmax(A->a_tok[s], 1), rb = B->a_range[s] / fmax(B->a_tok[s], 1);
            fprintf(f, "%d\t%s\t%.9g\t%.9g\t%.9g\t%.9g\t%.9g\t%.9g\t%.6f\t%.6f\t%.6f\n", l, llm_site_name(s), A->w_err[s], B->w_err[s],
                    A->a_err[s], B->a_err[s], ra, rb, A->w_err[s] > 0 ? 1 - B->w_err[s] / A->w_err[s] : 0,
                    A->a_err[s] > 0 ? 1 - B->a_err[s] / A->a_err[s] : 0, ra > 0 ? 1 - rb / ra : 0);
        }
        fprintf(f, "%d\tk_cache\t0\t0\t%.9g\t%.9g\tnan\tnan\t0\t%.6f\t0\n", l, A->k_err, B->k_err, A->k_err > 0 ? 1 - B->k_err / A->k_err : 0);
        fprintf(f, "%d\tv_cache\t0\t0\t%.9g\t%.9g\tnan\tnan\t0\t%.6f\t0\n", l, A->v_err, B->v_err, A->v_err > 0 ? 1 - B->v_err / A->v_err : 0);
    }
    return table_close(&a);
}

int llm_diag_write_channels(const char *path, const llm_model *off, const llm_model *on)
{
    llm_atomic a;
    int st = table_open(&a, path);
    if (st) return st;
    fprintf(a.f, "site\tchannel\tmax_off\tmax_on\n");
    for (int s = 0; s < LLM_NSITES; s += 3)
        for (size_t j = 0; j < off->qat->chan_w[s]; j++)
            fprintf(a.f, "%s\t%zu\t%.9g\t%.9g\n", llm_site_name(s), j, off->qat->chan_max[s][j], on->qat->chan_max[s][j]);
    return table_close(&a);
}

/* One run of Fig. 6 loaded (quantizers off when the folder saved none) into *m. */
static int load_run(llm_model **m, const char *dir)
{
    int st = llm_qat_load_model(m, dir);
    if (st) return RS_ERROR(st, "cannot load the final model of '%s': %s", dir, rs_last_error());
    if (!(*m)->qat) {
        llm_qat_opts o;
        llm_qat_opts_default(&o);
        o.wbits = o.abits = o.kvbits = 16;
        return llm_qat_attach(*m, &o);
    }
    return RS_OK;
}

int llm_diag_load_runs(llm_model **m, const char *const *dirs, int n, int layer, const llm_dataset *ds, int calib,
                       int *nloaded, int *mismatch)
{
    *nloaded = *mismatch = 0;
    for (int k = 0; k < n; k++) {
        m[k] = NULL;
        int st = load_run(&m[k], dirs[k]);
        if (m[k]) ++*nloaded;
        if (st) return st;
        const llm_config *c = &m[k]->cfg, *c0 = &m[0]->cfg;
        if (layer >= c->n_layer || c->d != c0->d || c->d_ff != c0->d_ff) {
            *mismatch = 1;
            return RS_ERROR(RS_EINVAL, "'%s' is not the architecture of '%s' (or has no layer %d)", dirs[k], dirs[0], layer);
        }
        int rows = 0;
        if ((st = llm_qat_track_channels(m[k]->qat, m[k], layer)) || (st = llm_calibrate(m[k], ds, calib, &rows))) return st;
    }
    return RS_OK;
}

int llm_diag_write_runs(const char *path, llm_model *const *m, const char *const *labels, int n)
{
    llm_atomic a;
    int st = table_open(&a, path);
    if (st) return st;
    FILE *f = a.f;
    fprintf(f, "site\tchannel");
    for (int k = 0; k < n; k++) fprintf(f, "\t%s", labels[k]);
    fprintf(f, "\n");
    for (int s = 0; s < LLM_NSITES; s += 3)
        for (size_t j = 0; j < m[0]->qat->chan_w[s]; j++) {
            fprintf(f, "%s\t%zu", llm_site_name(s), j);
            for (int k = 0; k < n; k++) fprintf(f, "\t%.9g", m[k]->qat->chan_max[s][j]);
            fprintf(f, "\n");
        }
    return table_close(&a);
}

/* The "run step E loss" rows of one run's train_log.jsonl into f (loss nan where a record has
 * none); 0, or -1 without a log. */
static int log_errors(FILE *f, const char *dir, int run)
{
    char path[4200], *text = NULL;
    snprintf(path, sizeof path, "%s/train_log.jsonl", dir);
    if (llm_read_file(path, LLM_READ_ANY_SIZE, &text, NULL)) return -1;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "step"), *e = cJSON_GetObjectItemCaseSensitive(j, "E");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "loss");
        if (cJSON_IsNumber(s) && cJSON_IsNumber(e))
            fprintf(f, "%d\t%d\t%.9g\t%.9g\n", run, s->valueint, e->valuedouble, cJSON_IsNumber(l) ? l->valuedouble : NAN);
        cJSON_Delete(j);
    }
    free(text);
    return 0;
}

int llm_diag_write_errors(const char *path, const char *const *dirs, int n, int *found)
{
    llm_atomic a;
    int st = table_open(&a, path);
    if (st) return st;
    fprintf(a.f, "run\tstep\tE\tloss\n");
    for (int k = 0; k < n; k++) {
        int ok = log_errors(a.f, dirs[k], k) == 0;
        if (found) found[k] = ok;
    }
    return table_close(&a);
}

void llm_diag_run_label(const char *dir, char *out, size_t n)
{
    const char *end = dir + strlen(dir);
    while (end > dir && end[-1] == '/') end--;
    const char *b = end;
    while (b > dir && b[-1] != '/') b--;
    /* a paper cell's "CELL/model" is labelled CELL */
    if (end - b == 5 && !strncmp(b, "model", 5) && b > dir) {
        const char *e2 = b - 1;
        while (e2 > dir && e2[-1] == '/') e2--;
        const char *b2 = e2;
        while (b2 > dir && b2[-1] != '/') b2--;
        if (b2 < e2) b = b2, end = e2;
    }
    size_t k = 0;
    for (; b < end && k + 1 < n; b++)
        if (*b != '"' && *b != '\\') out[k++] = *b;
    out[k] = 0;
}
