/* rostesim LLM: quantization diagnostics (see diagnose.h). */
#include "llm/quantize/diagnose.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "llm/quantize/search.h"
#include "quant/status.h"

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
    FILE *f = fopen(path, "w");
    if (!f) return RS_ERROR(RS_EIO, "cannot write '%s': %s", path, strerror(errno));
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
    fclose(f);
    return RS_OK;
}

int llm_diag_write_channels(const char *path, const llm_model *off, const llm_model *on)
{
    FILE *f = fopen(path, "w");
    if (!f) return RS_ERROR(RS_EIO, "cannot write '%s'", path);
    fprintf(f, "site\tchannel\tmax_off\tmax_on\n");
    for (int s = 0; s < LLM_NSITES; s += 3)
        for (size_t j = 0; j < off->qat->chan_w[s]; j++)
            fprintf(f, "%s\t%zu\t%.9g\t%.9g\n", llm_site_name(s), j, off->qat->chan_max[s][j], on->qat->chan_max[s][j]);
    fclose(f);
    return RS_OK;
}

int llm_diag_write_runs(const char *path, llm_model *const *m, const char *const *labels, int n)
{
    FILE *f = fopen(path, "w");
    if (!f) return RS_ERROR(RS_EIO, "cannot write '%s': %s", path, strerror(errno));
    fprintf(f, "site\tchannel");
    for (int k = 0; k < n; k++) fprintf(f, "\t%s", labels[k]);
    fprintf(f, "\n");
    for (int s = 0; s < LLM_NSITES; s += 3)
        for (size_t j = 0; j < m[0]->qat->chan_w[s]; j++) {
            fprintf(f, "%s\t%zu", llm_site_name(s), j);
            for (int k = 0; k < n; k++) fprintf(f, "\t%.9g", m[k]->qat->chan_max[s][j]);
            fprintf(f, "\n");
        }
    if (fclose(f) != 0) return RS_ERROR(RS_EIO, "cannot write '%s'", path);
    return RS_OK;
}
