#include "sim/lsq_out.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gsl/gsl_fit.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

#include "quant/fsutil.h"
#include "quant/rng.h"
#include "quant/status.h"

static void num(FILE *f, double v) { fprintf(f, isfinite(v) ? "%.10g" : "nan", v); }

/* "\tv0\tv1..." */
static void nums(FILE *f, const double *v, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        fputc('\t', f);
        num(f, v[j]);
    }
}

static int open_in(const char *dir, const char *name, char *path, char *tmp, FILE **f)
{
    snprintf(path, 4096, "%s/%s", dir, name);
    *f = rs_atomic_open(path, tmp, 4200);
    return *f ? RS_OK : RS_EIO;
}

/* log-log fit on prepared logs (k pairs) into f's point estimates. */
static void fit_logs(const double *lx, const double *ly, size_t k, double *work, double *slope, double *icept,
                     double *pearson, double *spearman)
{
    double c0, c1, cov00, cov01, cov11, ss;
    gsl_fit_linear(lx, 1, ly, 1, k, &c0, &c1, &cov00, &cov01, &cov11, &ss);
    *slope = c1;
    *icept = c0;
    *pearson = gsl_stats_correlation(lx, 1, ly, 1, k);
    *spearman = gsl_stats_spearman(lx, 1, ly, 1, k, work);
}

static void ci_from(double *v, size_t n, double ci[2])
{
    ci[0] = ci[1] = NAN;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) v[k++] = v[i];
    if (k < 2) return;
    gsl_sort(v, 1, k);
    ci[0] = gsl_stats_quantile_from_sorted_data(v, 1, k, 0.025);
    ci[1] = gsl_stats_quantile_from_sorted_data(v, 1, k, 0.975);
}

/* The fit of y against x (final D against final ‖e‖²_G) with bootstrap intervals. */
static int fit_boot(const double *x, const double *y, size_t n, uint64_t seed, uint64_t stream, lsq_fit *f)
{
    memset(f, 0, sizeof *f);
    f->slope = f->intercept = f->pearson = f->spearman = NAN;
    f->slope_ci[0] = f->slope_ci[1] = f->pearson_ci[0] = f->pearson_ci[1] = f->spearman_ci[0] = f->spearman_ci[1] = NAN;
    size_t cap = n + 1;
    double *lx = malloc(cap * sizeof *lx), *ly = malloc(cap * sizeof *ly), *bx = malloc(cap * sizeof *bx);
    double *by = malloc(cap * sizeof *by), *work = malloc(2 * cap * sizeof *work);
    double *bs = malloc(LSQ_BOOT * sizeof *bs), *bp = malloc(LSQ_BOOT * sizeof *bp), *br = malloc(LSQ_BOOT * sizeof *br);
    rs_rng *rng = rs_rng_alloc(seed, stream);
    int st = RS_OK;
    if (!lx || !ly || !bx || !by || !work || !bs || !bp || !br || !rng) {
        st = RS_ERROR(RS_ENOMEM, "out of memory for a bootstrap of %zu runs", n);
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (x[i] > 0 && y[i] > 0 && isfinite(x[i]) && isfinite(y[i])) {
            lx[k] = log10(x[i]);
            ly[k] = log10(y[i]);
            k++;
        }
    f->n = k;
    if (k < 3) goto done;
    fit_logs(lx, ly, k, work, &f->slope, &f->intercept, &f->pearson, &f->spearman);
    size_t nb = 0;
    for (int b = 0; b < LSQ_BOOT; b++) {
        int varied = 0;
        for (size_t i = 0; i < k; i++) {
            size_t j = rs_rng_uint(rng, k);
            bx[i] = lx[j];
            by[i] = ly[j];
            if (bx[i] != bx[0]) varied = 1;
        }
        if (!varied) continue;
        double icept;
        fit_logs(bx, by, k, work, &bs[nb], &icept, &bp[nb], &br[nb]);
        nb++;
    }
    f->nboot = nb;
    ci_from(bs, nb, f->slope_ci);
    ci_from(bp, nb, f->pearson_ci);
    ci_from(br, nb, f->spearman_ci);
done:
    rs_rng_free(rng);
    free(lx), free(ly), free(bx), free(by), free(work), free(bs), free(bp), free(br);
    return st;
}

/* Gather final (eG, D) of the runs of point p (or all: p < 0) and rotation k (all: k < 0),
 * duplicates left out unless dups. Returns the count. */
static size_t gather(const lsq_results *r, long p, int k, int dups, double *x, double *y)
{
    size_t i = 0;
    for (size_t q = 0; q < r->npoints; q++) {
        if (p >= 0 && (size_t)p != q) continue;
        for (int j = 0; j < LSQ_NROT; j++) {
            const lsq_rotres *rr = &r->points[q].rot[j];
            if (!rr->present || (k >= 0 && k != j)) continue;
            for (int m = 0; m < r->points[q].cfg.seeds; m++) {
                if (!dups && rr->dup_rot && rr->dup_rot[m] >= 0) continue;
                x[i] = rr->final_eG[m];
                y[i] = rr->final_D[m];
                i++;
            }
        }
    }
    return i;
}

static void linfit(const double *x, const double *y, size_t n, lsq_linfit *L)
{
    L->a = L->b = L->r2 = L->frac = NAN;
    L->n = n;
    if (n < 3) return;
    double c0, c1, cov00, cov01, cov11, ss;
    gsl_fit_linear(x, 1, y, 1, n, &c0, &c1, &cov00, &cov01, &cov11, &ss);
    double my = gsl_stats_mean(y, 1, n), mx = gsl_stats_mean(x, 1, n), tss = 0;
    for (size_t i = 0; i < n; i++) tss += (y[i] - my) * (y[i] - my);
    L->a = c1;
    L->b = c0;
    L->r2 = tss > 0 ? 1.0 - ss / tss : NAN;
    L->frac = my != 0 ? c1 * mx / my : NAN;
}

void lsq_fitset_free(lsq_fitset *fs)
{
    free(fs->within);
    free(fs->lin);
    fs->within = NULL;
    fs->lin = NULL;
}

int lsq_results_fits(const lsq_results *r, uint64_t seed, lsq_fitset *fs)
{
    memset(fs, 0, sizeof *fs);
    size_t n = 0;
    for (size_t p = 0; p < r->npoints; p++)
        for (int k = 0; k < LSQ_NROT; k++)
            if (r->points[p].rot[k].present) n += (size_t)r->points[p].cfg.seeds;
    double *x = malloc((n + 1) * sizeof *x), *y = malloc((n + 1) * sizeof *y);
    fs->within = calloc(r->npoints * LSQ_NROT, sizeof *fs->within);
    fs->lin = calloc(r->npoints, sizeof *fs->lin);
    int st = RS_OK;
    if (!x || !y || !fs->within || !fs->lin) {
        st = RS_ERROR(RS_ENOMEM, "out of memory for the fits over %zu runs", n);
        goto done;
    }
    uint64_t stream = 300;
    size_t m = gather(r, -1, -1, 1, x, y);
    if ((st = fit_boot(x, y, m, seed, stream++, &fs->all_dups))) goto done;
    fs->nruns = gather(r, -1, -1, 0, x, y);
    fs->ndup = m - fs->nruns;
    if ((st = fit_boot(x, y, fs->nruns, seed, stream++, &fs->all))) goto done;
    for (int k = 0; k < LSQ_NROT; k++) {
        m = gather(r, -1, k, 0, x, y);
        if (r->npoints > 1 && (st = fit_boot(x, y, m, seed, stream, &fs->across[k]))) goto done;
        stream++;
    }
    for (size_t p = 0; p < r->npoints; p++) {
        for (int k = 0; k < LSQ_NROT; k++) {
            m = gather(r, (long)p, k, 0, x, y);
            if ((st = fit_boot(x, y, m, seed, stream++, &fs->within[p * LSQ_NROT + (size_t)k]))) goto done;
        }
        m = gather(r, (long)p, -1, 0, x, y);
        linfit(x, y, m, &fs->lin[p]);
    }
done:
    free(x);
    free(y);
    if (st) lsq_fitset_free(fs);
    return st;
}

void lsq_prop44_summary(const double *p, size_t n, double *frac20, double *frac21, double *maxr20,
                        double *maxr21, double *mean_gain)
{
    size_t a20 = 0, a21 = 0;
    double m20 = 0, m21 = 0, g = 0;
    for (size_t i = 0; i < n; i++) {
        const double *o = p + 6 * i;
        double r20 = o[3] > 0 ? o[2] / o[3] : 0, r21 = o[5] > 0 ? o[4] / o[5] : 0;
        if (o[2] > o[3]) a20++;
        if (o[4] > o[5]) a21++;
        if (r20 > m20) m20 = r20;
        if (r21 > m21) m21 = r21;
        g += o[4] > 0 ? log10(o[2] / o[4]) : 0;
    }
    *frac20 = n ? (double)a20 / (double)n : NAN;
    *frac21 = n ? (double)a21 / (double)n : NAN;
    *maxr20 = m20;
    *maxr21 = m21;
    *mean_gain = n ? pow(10.0, g / (double)n) : NAN;
}

static const char *var_label(const char *v)
{
    if (!strcmp(v, "abits")) return "activation bits";
    if (!strcmp(v, "wbits")) return "weight bits";
    if (!strcmp(v, "d")) return "features d";
    if (!strcmp(v, "outliers")) return "teacher outlier scale";
    if (!strcmp(v, "clip")) return "clip factor c";
    return v;
}

static cJSON *spec_json(const qz_spec *q)
{
    cJSON *o = cJSON_CreateObject();
    char buf[128];
    qz_describe(q, buf, sizeof buf);
    cJSON_AddNumberToObject(o, "bits", q->bits);
    cJSON_AddStringToObject(o, "scheme", qz_scheme_name(q->scheme));
    cJSON_AddStringToObject(o, "granularity", q->gran == QZ_TENSOR ? "tensor" : q->gran == QZ_ROW ? "row" : "group");
    cJSON_AddNumberToObject(o, "group", (double)q->group);
    cJSON_AddNumberToObject(o, "clip", q->clip);
    cJSON_AddStringToObject(o, "clip_mode", q->clipmode == QZ_CLIP_CODE ? "code" : "paper");
    cJSON_AddStringToObject(o, "rounding", q->round == QZ_HALF_EVEN ? "half-even" : "half-away");
    cJSON_AddStringToObject(o, "description", buf);
    return o;
}

static cJSON *num_json(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *config_json(const lsq_config *c)
{
    static const char *feats[] = {"gauss", "outlier", "student"};
    static const char *teach[] = {"gauss", "outlier", "student"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "d", (double)c->d);
    cJSON_AddNumberToObject(o, "N", (double)c->N);
    cJSON_AddStringToObject(o, "features", feats[c->feat]);
    cJSON_AddNumberToObject(o, "feature_outlier_channels", (double)c->feat_k);
    cJSON_AddNumberToObject(o, "feature_outlier_scale", c->feat_scale);
    cJSON_AddNumberToObject(o, "feature_nu", c->feat_nu);
    cJSON_AddStringToObject(o, "teacher", teach[c->teach]);
    cJSON_AddNumberToObject(o, "teacher_outliers", (double)c->teach_m);
    cJSON_AddNumberToObject(o, "teacher_outlier_scale", c->teach_scale);
    cJSON_AddNumberToObject(o, "teacher_nu", c->teach_nu);
    cJSON_AddStringToObject(o, "target", c->target == LSQ_TARGET_LINEAR ? "linear" : "quant");
    cJSON_AddNumberToObject(o, "noise", c->noise);
    cJSON_AddItemToObject(o, "weight_quantizer", spec_json(&c->wq));
    cJSON_AddItemToObject(o, "activation_quantizer", spec_json(&c->xq));
    if (c->eta > 0) cJSON_AddNumberToObject(o, "eta", c->eta);
    else cJSON_AddStringToObject(o, "eta", "theorem");
    cJSON_AddNumberToObject(o, "steps", (double)c->steps);
    cJSON_AddNumberToObject(o, "max_steps", (double)c->max_steps);
    cJSON_AddNumberToObject(o, "batch", (double)c->batch);
    cJSON_AddNumberToObject(o, "log_points", (double)c->log_points);
    cJSON_AddNumberToObject(o, "seeds", c->seeds);
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    cJSON *rl = cJSON_AddArrayToObject(o, "rotations");
    for (int r = 0; r < LSQ_NROT; r++)
        if (c->rot_mask & (1u << r)) cJSON_AddItemToArray(rl, cJSON_CreateString(lsq_rot_name((lsq_rot)r)));
    cJSON_AddNumberToObject(o, "reselect_every", (double)c->reselect_every);
    cJSON_AddNumberToObject(o, "rounds", c->rounds);
    cJSON_AddNumberToObject(o, "prop44_vectors", (double)c->prop44_vectors);
    cJSON_AddNumberToObject(o, "delta", c->delta);
    cJSON_AddNumberToObject(o, "gptq_damp", c->gptq_damp);
    return o;
}

static void fit_row(FILE *f, const lsq_fit *F, const char *scope, long point, double sv, const char *rot, const char *dup)
{
    double a[] = {F->slope, F->intercept, F->pearson, F->spearman};
    for (int i = 0; i < 4; i++) {
        if (i) fputc('\t', f);
        num(f, a[i]);
    }
    fprintf(f, "\t%zu\t%s\t", F->n, scope);
    if (point >= 0) fprintf(f, "%ld", point);
    else fputc('-', f);
    fputc('\t', f);
    num(f, sv);
    fprintf(f, "\t%s", rot);
    double c[] = {F->slope_ci[0], F->slope_ci[1], F->pearson_ci[0], F->pearson_ci[1], F->spearman_ci[0], F->spearman_ci[1]};
    nums(f, c, 6);
    fprintf(f, "\t%zu\t%s\n", F->nboot, dup);
}

static cJSON *num_json(double v);

static cJSON *pair_json(const double v[2])
{
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, num_json(v[0]));
    cJSON_AddItemToArray(a, num_json(v[1]));
    return a;
}

static cJSON *fit_json(const lsq_fit *F, const char *scope)
{
    cJSON *o = cJSON_CreateObject();
    if (scope) cJSON_AddStringToObject(o, "scope", scope);
    cJSON_AddNumberToObject(o, "n", (double)F->n);
    cJSON_AddItemToObject(o, "slope", num_json(F->slope));
    cJSON_AddItemToObject(o, "slope_ci95", pair_json(F->slope_ci));
    cJSON_AddItemToObject(o, "intercept", num_json(F->intercept));
    cJSON_AddItemToObject(o, "pearson", num_json(F->pearson));
    cJSON_AddItemToObject(o, "pearson_ci95", pair_json(F->pearson_ci));
    cJSON_AddItemToObject(o, "spearman", num_json(F->spearman));
    cJSON_AddItemToObject(o, "spearman_ci95", pair_json(F->spearman_ci));
    cJSON_AddNumberToObject(o, "bootstrap_resamples", (double)F->nboot);
    return o;
}

/* Every fit of fs, as the "fits" object of summary.json. */
static cJSON *fits_json(const lsq_results *r, const lsq_fitset *fs)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "quantity", "log10 final D against log10 final ||e(R w_T)||_G^2, one point per run");
    cJSON_AddStringToObject(o, "duplicates",
                            "a run whose trajectory repeats an earlier rotation's run (iterates at every logged step, "
                            "final iterate, logged loss and D identical) is shown but left out of every fit except "
                            "all_with_duplicates");
    cJSON_AddStringToObject(o, "ci", "95% percentile bootstrap over runs, seeded");
    cJSON_AddNumberToObject(o, "runs", (double)(fs->nruns + fs->ndup));
    cJSON_AddNumberToObject(o, "duplicate_runs", (double)fs->ndup);
    cJSON_AddItemToObject(o, "all_distinct", fit_json(&fs->all, "every setting (sweep point x rotation), distinct runs"));
    cJSON_AddItemToObject(o, "all_with_duplicates", fit_json(&fs->all_dups, "every run, duplicates counted again"));
    if (r->npoints > 1) {
        cJSON *a = cJSON_AddArrayToObject(o, "across_sweep");
        for (int k = 0; k < LSQ_NROT; k++) {
            if (!r->points[0].rot[k].present) continue;
            cJSON *x = fit_json(&fs->across[k], NULL);
            cJSON_AddStringToObject(x, "rotation", lsq_rot_name((lsq_rot)k));
            cJSON_AddStringToObject(x, "sweep_var", r->sweep_var);
            cJSON_AddItemToArray(a, x);
        }
    }
    cJSON *w = cJSON_AddArrayToObject(o, "within_setting");
    cJSON *l = cJSON_AddArrayToObject(o, "linear_floor");
    for (size_t p = 0; p < r->npoints; p++) {
        for (int k = 0; k < LSQ_NROT; k++) {
            const lsq_rotres *rr = &r->points[p].rot[k];
            if (!rr->present) continue;
            cJSON *x = fit_json(&fs->within[p * LSQ_NROT + (size_t)k], NULL);
            cJSON_AddNumberToObject(x, "point", (double)p);
            cJSON_AddItemToObject(x, "sweep_value", num_json(r->sweep_vals[p]));
            cJSON_AddStringToObject(x, "rotation", lsq_rot_name((lsq_rot)k));
            cJSON_AddNumberToObject(x, "duplicate_runs", rr->ndup);
            if (rr->dup_of >= 0) cJSON_AddStringToObject(x, "duplicate_of", lsq_rot_name((lsq_rot)rr->dup_of));
            else cJSON_AddNullToObject(x, "duplicate_of");
            cJSON_AddItemToArray(w, x);
        }
        const lsq_linfit *L = &fs->lin[p];
        cJSON *y = cJSON_CreateObject();
        cJSON_AddStringToObject(y, "model", "final D = a * final ||e||_G^2 + b over the distinct runs of the point");
        cJSON_AddNumberToObject(y, "point", (double)p);
        cJSON_AddItemToObject(y, "sweep_value", num_json(r->sweep_vals[p]));
        cJSON_AddNumberToObject(y, "n", (double)L->n);
        cJSON_AddItemToObject(y, "a", num_json(L->a));
        cJSON_AddItemToObject(y, "b", num_json(L->b));
        cJSON_AddItemToObject(y, "r2", num_json(L->r2));
        cJSON_AddItemToObject(y, "fraction_of_mean_D_from_a_eG", num_json(L->frac));
        cJSON_AddItemToArray(l, y);
    }
    return o;
}

/* meta.tsv: the settings, for the plots' titles and labels. */
static int write_meta(const char *dir, const lsq_results *r)
{
    char path[4096], tmp[4200];
    FILE *f;
    int st;
    const lsq_config *c0 = &r->points[0].cfg;
    int sweep = strcmp(r->sweep_var, "none") != 0;
    if ((st = open_in(dir, "meta.tsv", path, tmp, &f))) return st;
    char title[256];
    snprintf(title, sizeof title, "d=%zu N=%zu W%dA%d, %d seeds%s%s", c0->d, c0->N, c0->wq.bits, c0->xq.bits, c0->seeds,
             sweep ? ", sweep over " : "", sweep ? var_label(r->sweep_var) : "");
    fprintf(f, "key\tvalue\nsweep_var\t%s\nsweep_label\t%s\nwbits\t%d\nabits\t%d\nd\t%zu\nN\t%zu\nsteps\t%zu\nseeds\t%d\n"
               "eta_mode\t%s\ndelta\t%g\ntitle\t%s\n",
            r->sweep_var, sweep ? var_label(r->sweep_var) : "none", c0->wq.bits, c0->xq.bits, c0->d, c0->N,
            r->points[0].steps, c0->seeds, c0->eta > 0 ? "fixed" : "theorem", c0->delta, title);
    return rs_atomic_close(f, tmp, path);
}

/* steps.tsv: every logged step of every rotation and point (means over the seeds). */
static int write_steps(const char *dir, const lsq_results *r)
{
    char path[4096], tmp[4200];
    FILE *f;
    int st;
    if ((st = open_in(dir, "steps.tsv", path, tmp, &f))) return st;
    fprintf(f, "point\tsweep_value\trotation\tt\tloss\tloss_se\tD\tD_se\teG\teG_se\te2\tbound\tbound_mrate\trecur\n");
    for (size_t p = 0; p < r->npoints; p++)
        for (int k = 0; k < LSQ_NROT; k++) {
            const lsq_rotres *rr = &r->points[p].rot[k];
            if (!rr->present) continue;
            for (size_t li = 0; li < rr->nlog; li++) {
                const lsq_logpt *L = &rr->log[li];
                fprintf(f, "%zu\t", p);
                num(f, r->sweep_vals[p]);
                fprintf(f, "\t%s\t%zu", lsq_rot_name((lsq_rot)k), L->t);
                double v[] = {L->loss, L->loss_se, L->D, L->D_se, L->eG, L->eG_se, L->e2, L->bound, L->bound_mrate, L->recur};
                nums(f, v, sizeof v / sizeof v[0]);
                fputc('\n', f);
            }
        }
    return rs_atomic_close(f, tmp, path);
}

/* runs.tsv: one row per run (point, rotation, seed): the final values. */
static int write_runs(const char *dir, const lsq_results *r)
{
    char path[4096], tmp[4200];
    FILE *f;
    int st;
    if ((st = open_in(dir, "runs.tsv", path, tmp, &f))) return st;
    fprintf(f, "point\tsweep_value\trotation\tseed\tfinal_loss\tfinal_D\tfinal_eG\tfinal_e2\trank\tinterp\tbound_final\tviolations\tduplicate_of\n");
    for (size_t p = 0; p < r->npoints; p++)
        for (int k = 0; k < LSQ_NROT; k++) {
            const lsq_rotres *rr = &r->points[p].rot[k];
            if (!rr->present) continue;
            for (int m = 0; m < r->points[p].cfg.seeds; m++) {
                fprintf(f, "%zu\t", p);
                num(f, r->sweep_vals[p]);
                fprintf(f, "\t%s\t%d", lsq_rot_name((lsq_rot)k), m);
                double v[] = {rr->final_loss[m], rr->final_D[m], rr->final_eG[m], rr->final_e2[m]};
                nums(f, v, 4);
                fprintf(f, "\t%zu\t%d\t", rr->rank, rr->interp);
                num(f, rr->bound_final);
                fprintf(f, "\t%d\t", rr->violations);
                if (rr->dup_rot[m] >= 0) fprintf(f, "%s:%d\n", lsq_rot_name((lsq_rot)rr->dup_rot[m]), rr->dup_seed[m]);
                else fputs("-\n", f);
            }
        }
    return rs_atomic_close(f, tmp, path);
}

/* summary.tsv: one row per point and rotation. */
static int write_summary_tsv(const char *dir, const lsq_results *r)
{
    char path[4096], tmp[4200];
    FILE *f;
    int st;
    if ((st = open_in(dir, "summary.tsv", path, tmp, &f))) return st;
    fprintf(f, "point\tsweep_value\trotation\tfinal_loss\tfinal_loss_ci\tfinal_D\tfinal_eG\tfinal_e2\tact_err\trank\tN\tinterp"
               "\tlambda_min\trho\tmu\teta\tsteps\tbound_final\tviolations\tptq_rtn\tptq_gptq"
               "\tmu_meas\tkappa_meas\tbound_mrate_final\trecur_final\tduplicate_of\n");
    for (size_t p = 0; p < r->npoints; p++)
        for (int k = 0; k < LSQ_NROT; k++) {
            const lsq_rotres *rr = &r->points[p].rot[k];
            if (!rr->present) continue;
            fprintf(f, "%zu\t", p);
            num(f, r->sweep_vals[p]);
            fprintf(f, "\t%s", lsq_rot_name((lsq_rot)k));
            double v[] = {rr->final_loss_mean, rr->final_loss_ci, rr->final_D_mean, rr->final_eG_mean, rr->final_e2_mean, rr->act_err};
            nums(f, v, 6);
            fprintf(f, "\t%zu\t%zu\t%d", rr->rank, r->points[p].cfg.N, rr->interp);
            double w[] = {rr->lambda_min, rr->rho, rr->mu, rr->eta};
            nums(f, w, 4);
            fprintf(f, "\t%zu\t", r->points[p].steps);
            num(f, rr->bound_final);
            fprintf(f, "\t%d\t", rr->violations);
            num(f, rr->ptq_rtn);
            fputc('\t', f);
            num(f, rr->ptq_gptq);
            double x[] = {rr->mu_meas, rr->kappa_meas, rr->bound_mrate_final, rr->recur_final};
            nums(f, x, 4);
            fprintf(f, "\t%s\n", rr->dup_of >= 0 ? lsq_rot_name((lsq_rot)rr->dup_of) : "-");
        }
    return rs_atomic_close(f, tmp, path);
}

/* fit.tsv (the first row is the headline fit: all settings, distinct runs); *fitj and *headj
 * receive the same fits as JSON for summary.json. */
static int write_fit(const char *dir, const lsq_results *r, cJSON **fitj, cJSON **headj)
{
    char path[4096], tmp[4200];
    FILE *f;
    int st;
    lsq_fitset fs;
    if ((st = lsq_results_fits(r, r->points[0].cfg.seed, &fs))) return st;
    if ((st = open_in(dir, "fit.tsv", path, tmp, &f))) {
        lsq_fitset_free(&fs);
        return st;
    }
    fprintf(f, "slope\tintercept\tpearson\tspearman\tn\tscope\tpoint\tsweep_value\trotation\tslope_lo\tslope_hi"
               "\tpearson_lo\tpearson_hi\tspearman_lo\tspearman_hi\tbootstrap\tduplicate_of\n");
    fit_row(f, &fs.all, "all_distinct", -1, NAN, "all", "-");
    fit_row(f, &fs.all_dups, "all_with_duplicates", -1, NAN, "all", "-");
    if (r->npoints > 1)
        for (int k = 0; k < LSQ_NROT; k++)
            if (r->points[0].rot[k].present) fit_row(f, &fs.across[k], "across_sweep", -1, NAN, lsq_rot_name((lsq_rot)k), "-");
    for (size_t p = 0; p < r->npoints; p++)
        for (int k = 0; k < LSQ_NROT; k++) {
            const lsq_rotres *rr = &r->points[p].rot[k];
            if (!rr->present) continue;
            fit_row(f, &fs.within[p * LSQ_NROT + (size_t)k], "within_setting", (long)p, r->sweep_vals[p],
                    lsq_rot_name((lsq_rot)k), rr->dup_of >= 0 ? lsq_rot_name((lsq_rot)rr->dup_of) : "-");
        }
    if ((st = rs_atomic_close(f, tmp, path))) {
        lsq_fitset_free(&fs);
        return st;
    }
    *fitj = fits_json(r, &fs), *headj = fit_json(&fs.all, "every setting (sweep point x rotation), distinct runs");
    cJSON_AddNumberToObject(*headj, "duplicate_runs_left_out", (double)fs.ndup);
    lsq_fitset_free(&fs);
    return RS_OK;
}

/* prop44.tsv: the Prop. 4.4 vectors (norms, errors and both bounds). */
static int write_prop44(const char *dir, const lsq_results *r)
{
    char path[4096], tmp[4200];
    FILE *f;
    int st;
    if ((st = open_in(dir, "prop44.tsv", path, tmp, &f))) return st;
    fprintf(f, "i\tnorm2\tmaxabs2\terr_none\tbound20\terr_rh\tbound21\n");
    for (size_t i = 0; i < r->nprop44; i++) {
        fprintf(f, "%zu", i);
        for (int j = 0; j < 6; j++) {
            fputc('\t', f);
            num(f, r->prop44[6 * i + j]);
        }
        fputc('\n', f);
    }
    return rs_atomic_close(f, tmp, path);
}

/* summary.json: the configuration and every point's results, with the fits (fitj and headj,
 * taken over). */
static int write_summary_json(const char *dir, const lsq_results *r, cJSON *fitj, cJSON *headj)
{
    char path[4096], tmp[4200];
    FILE *f;
    int st;
    const lsq_config *c0 = &r->points[0].cfg;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "rostesim lsq");
    if (r->command) cJSON_AddStringToObject(root, "command", r->command);
    cJSON_AddItemToObject(root, "config", config_json(c0));
    cJSON_AddStringToObject(root, "sweep_var", r->sweep_var);
    cJSON *pts = cJSON_AddArrayToObject(root, "points");
    for (size_t p = 0; p < r->npoints; p++) {
        const lsq_point *P = &r->points[p];
        cJSON *po = cJSON_CreateObject();
        cJSON_AddItemToObject(po, "sweep_value", num_json(r->sweep_vals[p]));
        cJSON_AddNumberToObject(po, "steps", (double)P->steps);
        cJSON *rl = cJSON_AddObjectToObject(po, "rotations");
        for (int k = 0; k < LSQ_NROT; k++) {
            const lsq_rotres *rr = &P->rot[k];
            if (!rr->present) continue;
            cJSON *ro = cJSON_AddObjectToObject(rl, lsq_rot_name((lsq_rot)k));
            cJSON_AddNumberToObject(ro, "rank", (double)rr->rank);
            cJSON_AddBoolToObject(ro, "interpolation_A42", rr->interp);
            cJSON_AddItemToObject(ro, "interpolation_residual", num_json(rr->resid));
            cJSON_AddItemToObject(ro, "lambda_min", num_json(rr->lambda_min));
            cJSON_AddItemToObject(ro, "lambda_max", num_json(rr->lambda_max));
            cJSON_AddItemToObject(ro, "rho", num_json(rr->rho));
            cJSON_AddItemToObject(ro, "mu", num_json(rr->mu));
            cJSON_AddItemToObject(ro, "eta", num_json(rr->eta));
            cJSON_AddItemToObject(ro, "eta_theorem", num_json(rr->eta_theorem));
            cJSON_AddNumberToObject(ro, "steps_predicted_to_floor", (double)rr->steps_predicted);
            cJSON_AddItemToObject(ro, "activation_error", num_json(rr->act_err));
            cJSON_AddItemToObject(ro, "wstar_weight_error", num_json(rr->wstar_err));
            cJSON_AddItemToObject(ro, "final_loss", num_json(rr->final_loss_mean));
            cJSON_AddItemToObject(ro, "final_loss_ci95", num_json(rr->final_loss_ci));
            cJSON_AddItemToObject(ro, "final_D", num_json(rr->final_D_mean));
            cJSON_AddItemToObject(ro, "final_D_ci95", num_json(rr->final_D_ci));
            cJSON_AddItemToObject(ro, "final_eG", num_json(rr->final_eG_mean));
            cJSON_AddItemToObject(ro, "final_e2", num_json(rr->final_e2_mean));
            cJSON_AddBoolToObject(ro, "bound_applies", rr->bound_valid);
            cJSON_AddItemToObject(ro, "bound_final", num_json(rr->bound_final));
            cJSON_AddNumberToObject(ro, "bound_violations", rr->violations);
            cJSON_AddItemToObject(ro, "ptq_rtn_D", num_json(rr->ptq_rtn));
            cJSON_AddItemToObject(ro, "ptq_gptq_D", num_json(rr->ptq_gptq));
            cJSON_AddNumberToObject(ro, "duplicate_runs", rr->ndup);
            if (rr->dup_of >= 0) cJSON_AddStringToObject(ro, "duplicate_of", lsq_rot_name((lsq_rot)rr->dup_of));
            else cJSON_AddNullToObject(ro, "duplicate_of");
            cJSON_AddItemToObject(ro, "mu_measured", num_json(rr->mu_meas));
            cJSON_AddItemToObject(ro, "kappa_measured", num_json(rr->kappa_meas));
            cJSON_AddItemToObject(ro, "bound_measured_rate_final", num_json(rr->bound_mrate_final));
            cJSON_AddItemToObject(ro, "recursion_fit_final", num_json(rr->recur_final));
            if (k == LSQ_R_ADAPTIVE) {
                cJSON_AddStringToObject(ro, "first_choice", rr->choice_hadamard_first ? "hadamard" : "none");
                cJSON_AddNumberToObject(ro, "mean_switches", rr->switches_mean);
                cJSON_AddNumberToObject(ro, "fraction_ending_on_hadamard", rr->frac_hadamard_final);
            }
        }
        cJSON_AddItemToArray(pts, po);
    }
    cJSON_AddItemToObject(root, "fit_final_D_vs_eG_loglog", headj);
    cJSON_AddItemToObject(root, "fits", fitj);
    if (r->prop44 && r->nprop44) {
        double f20, f21, m20, m21, gain;
        lsq_prop44_summary(r->prop44, r->nprop44, &f20, &f21, &m20, &m21, &gain);
        cJSON *po = cJSON_AddObjectToObject(root, "prop44");
        cJSON_AddNumberToObject(po, "vectors", (double)r->nprop44);
        cJSON_AddNumberToObject(po, "delta", c0->delta);
        cJSON_AddNumberToObject(po, "fraction_above_bound20", f20);
        cJSON_AddNumberToObject(po, "fraction_above_bound21", f21);
        cJSON_AddNumberToObject(po, "max_ratio_bound20", m20);
        cJSON_AddNumberToObject(po, "max_ratio_bound21", m21);
        cJSON_AddNumberToObject(po, "geomean_error_reduction_by_rotation", gain);
    }
    char *js = cJSON_Print(root);
    cJSON_Delete(root);
    if (!js) return RS_ERROR(RS_ENOMEM, "out of memory writing summary.json");
    if ((st = open_in(dir, "summary.json", path, tmp, &f))) {
        free(js);
        return st;
    }
    fputs(js, f);
    fputc('\n', f);
    free(js);
    return rs_atomic_close(f, tmp, path);
}

int lsq_write_outputs(const char *dir, const lsq_results *r)
{
    int st = rs_mkdir_p(dir);
    if (st) return st;
    if ((st = write_meta(dir, r)) || (st = write_steps(dir, r)) || (st = write_runs(dir, r)) ||
        (st = write_summary_tsv(dir, r)))
        return st;
    cJSON *fitj = NULL, *headj = NULL;
    if ((st = write_fit(dir, r, &fitj, &headj))) return st;
    if (r->prop44 && r->nprop44 && (st = write_prop44(dir, r))) {
        cJSON_Delete(fitj), cJSON_Delete(headj);
        return st;
    }
    return write_summary_json(dir, r, fitj, headj);
}
