/* rostesim: the files of an lsq output folder (formats in README "Output files").
 * Every file is written to NAME.tmp and renamed into place, so a failed run never
 * destroys what an earlier run wrote. */
#ifndef RS_SIM_LSQ_OUT_H
#define RS_SIM_LSQ_OUT_H

#include <stdio.h>

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

typedef struct {
    double slope, intercept, pearson, spearman;
    size_t n;
} lsq_fit;

/* Fit of final D against final ‖e‖²_G over every run of every point. */
void lsq_results_fit(const lsq_results *r, lsq_fit *fit);

/* Prop. 4.4 summary: fraction of vectors above each bound, max ratio. */
void lsq_prop44_summary(const double *p, size_t n, double *frac20, double *frac21, double *maxr20,
                        double *maxr21, double *mean_gain);

/* Write meta.tsv, steps.tsv, runs.tsv, summary.tsv, fit.tsv, prop44.tsv and
 * summary.json into dir (created if missing). RS_EIO with a message on failure. */
int lsq_write_outputs(const char *dir, const lsq_results *r);

/* Open path.tmp for writing / close it and rename over path. */
FILE *rs_atomic_open(const char *path, char *tmp, size_t tmplen);
int rs_atomic_close(FILE *f, const char *tmp, const char *path);
/* mkdir -p */
int rs_mkdir_p(const char *dir);

#endif
