/* rostesim: the files of an lsq output folder (formats in README "Output files").
 * Every file is written to NAME.tmp and renamed into place, so a failed run never
 * destroys what an earlier run wrote. */
#ifndef RS_SIM_LSQ_OUT_H
#define RS_SIM_LSQ_OUT_H

#include <stdint.h>
#include <stdio.h>

#include "quant/fsutil.h" /* rs_mkdir_p, rs_atomic_open/close: the folder and its files */
#include "sim/lsq.h"

typedef struct {
    const char *sweep_var;   /* "none" or the swept variable */
    const double *sweep_vals;
    size_t npoints;
    const lsq_point *points;
    const double *prop44;    /* nvec x 6, or NULL */
    size_t nprop44;
    const char *command;     /* the command line, recorded in summary.json */
    double seconds;          /* wall time (recorded in summary.json only) */
} lsq_results;

/* log-log fit of final D against final ‖e‖²_G over a set of runs, with 95% percentile
 * bootstrap intervals (LSQ_BOOT resamples of the runs, drawn from the seeded RNG;
 * resamples whose x values are all equal are skipped, nboot counts the rest). */
#define LSQ_BOOT 2000
typedef struct {
    double slope, intercept, pearson, spearman;
    double slope_ci[2], pearson_ci[2], spearman_ci[2];
    size_t n, nboot;
} lsq_fit;

/* Linear fit D = a ‖e‖²_G + b over the distinct runs of one point (every rotation):
 * r2 = 1 − SS_res/SS_tot, frac = a·mean(‖e‖²_G)/mean(D), the share of the mean D that
 * the quantization-error term carries. */
typedef struct {
    double a, b, r2, frac;
    size_t n;
} lsq_linfit;

/* Every fit the summary reports. Duplicate runs (lsq_rotres.dup_rot >= 0) are shown but
 * never fitted, except in all_dups, the fit over every run kept for comparison. */
typedef struct {
    lsq_fit all;             /* distinct runs of every point and rotation */
    lsq_fit all_dups;        /* every run, duplicates included */
    size_t nruns, ndup;      /* runs in all, and duplicates left out */
    lsq_fit *within;         /* [point * LSQ_NROT + rotation]: the seeds of one setting */
    lsq_fit across[LSQ_NROT];/* one rotation across the sweep points (npoints > 1) */
    lsq_linfit *lin;         /* [point] */
} lsq_fitset;

/* RS_OK or RS_ENOMEM; free with lsq_fitset_free. seed: the bootstrap RNG's seed. */
int lsq_results_fits(const lsq_results *r, uint64_t seed, lsq_fitset *fs);
void lsq_fitset_free(lsq_fitset *fs);

/* Prop. 4.4 summary: fraction of vectors above each bound, max ratio. */
void lsq_prop44_summary(const double *p, size_t n, double *frac20, double *frac21, double *maxr20,
                        double *maxr21, double *mean_gain);

/* Write meta.tsv, steps.tsv, runs.tsv, summary.tsv, fit.tsv, prop44.tsv and
 * summary.json into dir (created if missing). RS_EIO with a message on failure. */
int lsq_write_outputs(const char *dir, const lsq_results *r);


#endif
