/* rostesim: the least-squares experiment of ROSTE.md §5.
 *
 * One "point" = one configuration: data (X, teacher, y) drawn from the seed, then for
 * each requested rotation R a problem (A = Q_x(R X) row by row, the min-norm
 * interpolator w*_R, the Gram spectrum λ_min, ρ, μ, η) and `seeds` STE-SGD runs that
 * differ only in the sampling order. Logged per step (Monte Carlo mean and SE):
 * loss L(w^t), D_t = ‖Q_w(R w^t) − w*_R‖²_G, ‖e(R w^t)‖²_G, ‖e(R w^t)‖², and the
 * right-hand side of Theorem 4.3 for D_t (the proof's constants hold for 2L, i.e. D).
 * Sweeps run several points with one variable changed. */
#ifndef RS_SIM_LSQ_H
#define RS_SIM_LSQ_H

#include <stddef.h>
#include <stdint.h>

#include "quant/quant.h"

typedef enum { LSQ_FEAT_GAUSS = 0, LSQ_FEAT_OUTLIER = 1, LSQ_FEAT_STUDENT = 2 } lsq_feat_kind;
typedef enum { LSQ_TEACH_GAUSS = 0, LSQ_TEACH_OUTLIER = 1, LSQ_TEACH_STUDENT = 2 } lsq_teach_kind;
/* LINEAR: y = <x, w_teacher> + noise (the same targets for every rotation);
 * QUANT:  y = <Q_x(R x), R w_teacher> (realisable in each rotated frame). */
typedef enum { LSQ_TARGET_LINEAR = 0, LSQ_TARGET_QUANT = 1 } lsq_target_kind;
typedef enum { LSQ_R_NONE = 0, LSQ_R_HADAMARD = 1, LSQ_R_HAAR = 2, LSQ_R_ADAPTIVE = 3, LSQ_NROT = 4 } lsq_rot;

typedef struct {
    size_t d, N;
    lsq_feat_kind feat;
    size_t feat_k;       /* outlier channels (LSQ_FEAT_OUTLIER) */
    double feat_scale;   /* their scale */
    double feat_nu;      /* Student-t degrees of freedom (LSQ_FEAT_STUDENT) */
    lsq_teach_kind teach;
    size_t teach_m;      /* outlier coordinates of the teacher */
    double teach_scale;  /* their scale */
    double teach_nu;
    lsq_target_kind target;
    double noise;        /* target noise standard deviation (LINEAR) */
    qz_spec wq, xq;      /* Q_w on the weight vector, Q_x on each sample */
    double eta;          /* <= 0: the theorem's η = λ_min/(6ρ) */
    size_t steps;        /* 0: the theorem's predicted steps to the floor, capped */
    size_t max_steps;    /* cap for automatic steps */
    size_t batch;        /* mini-batch size (1: eq. (15) exactly) */
    size_t log_points;   /* logged steps (geometric spacing after the first 64) */
    int seeds;           /* Monte Carlo runs (sampling orders) per rotation */
    uint64_t seed;
    unsigned rot_mask;   /* bit r set: run rotation r */
    size_t reselect_every; /* adaptive: re-choose R every T steps ... */
    int rounds;            /* ... for this many rounds (1 = the paper's K = 1) */
    int no_adaptive_copy;  /* 1: recompute adaptive's runs even when they are another
                              rotation's (tests; the default 0 copies them, see lsq.c) */
    size_t prop44_vectors; /* Prop. 4.4 experiment size (0: skip) */
    double delta;          /* Prop. 4.4 failure probability */
    double gptq_damp;
} lsq_config;

void lsq_config_default(lsq_config *c);
/* RS_OK or RS_EINVAL with a message naming the offending setting. */
int lsq_config_check(const lsq_config *c);

const char *lsq_rot_name(lsq_rot r);

typedef struct {
    size_t t;
    double loss, loss_se, D, D_se, eG, eG_se, e2, bound;
    double bound_mrate; /* Theorem 4.3's right-hand side with the measured rate mu_meas (not a proven bound) */
    double recur;       /* the measured recursion D_{t+1} = (1 - mu_meas) D_t + kappa_meas e_t (a fit) */
} lsq_logpt;

typedef struct {
    int present;
    /* problem facts (adaptive: of the rotation chosen first) */
    size_t rank;
    int interp;           /* A4.2: rank = N and ‖A w* − y‖ ≤ 1e-8 ‖y‖ */
    double resid;         /* ‖A w* − y‖ / ‖y‖ */
    double lambda_min, lambda_max, rho, mu, eta, eta_theorem;
    size_t steps_predicted; /* ln(1e6)/μ: the theorem's transient down 1e6-fold */
    double act_err;       /* (1/N) Σ ‖Q_x(R x_i) − R x_i‖² */
    double wstar_err;     /* ‖Q_w(w*) − w*‖² */
    double ptq_rtn, ptq_gptq; /* D of RTN(w*) and GPTQ(w*) with the Gram as Hessian */
    /* Monte Carlo */
    size_t nlog;
    lsq_logpt *log;
    double *final_loss, *final_D, *final_eG, *final_e2; /* per seed */
    double final_loss_mean, final_loss_ci, final_D_mean, final_D_ci, final_eG_mean, final_e2_mean;
    int bound_valid;      /* the theorem's η was used and R stayed fixed */
    double bound_final;
    int violations;       /* logged steps with mean D above the bound by > 2 SE */
    /* adaptive */
    int choice_hadamard_first; /* 1 if the first choice was the Hadamard */
    double switches_mean;      /* mean number of changes of R per run */
    double frac_hadamard_final;/* fraction of runs ending on the Hadamard */
    /* duplicates: run m repeats run dup_seed[m] of rotation dup_rot[m] listed earlier
     * (the same iterates at every logged step, by hash; the same final iterate, loss
     * and D, byte for byte); -1: distinct */
    int *dup_rot, *dup_seed;
    int ndup;             /* duplicate runs of this setting */
    int dup_of;           /* every run duplicates a run of this rotation (-1: not all) */
    /* Theorem 4.3's argument with measured constants (lsq_recursion_fit on the means) */
    double mu_meas, kappa_meas;
    double bound_mrate_final, recur_final;
} lsq_rotres;

typedef struct {
    lsq_config cfg;
    size_t steps;
    lsq_rotres rot[LSQ_NROT];
} lsq_point;

typedef void lsq_progress_fn(void *ctx, size_t done, size_t total);

/* Run one point. On success the caller frees with lsq_point_free. */
int lsq_run_point(const lsq_config *c, lsq_point *p, lsq_progress_fn *progress, void *ctx);
void lsq_point_free(lsq_point *p);

/* A sweep over the ranks of `mpirun -np R` (sim/lsq_par.c): point i is run by rank
 * lsq_sweep_owner(i, R) = i mod R (and a task after the last point, as Prop. 4.4's experiment,
 * by lsq_sweep_owner(npoints, R)). lsq_points_gather, called by every rank after its own
 * points ran, brings every point to root (pts[i] filled there; free with lsq_point_free);
 * collective, RS_OK when R = 1. A rank that gets an error must end the job (rs_par_abort):
 * the others may be waiting in a broadcast. lsq_point_pack / _unpack turn a point into bytes
 * (malloc'd; same binary on both ends) and back. */
int lsq_sweep_owner(size_t i, int nranks);
int lsq_points_gather(lsq_point *pts, size_t n, int root);
int lsq_point_pack(const lsq_point *p, void **buf, size_t *len);
int lsq_point_unpack(const void *buf, size_t len, lsq_point *p);

/* Theorem 4.3's right-hand side for D at the logged steps t[0] = 0 < t[1] < ... from the
 * logged mean e-terms eG (E‖e(R w^s)‖²_G, linearly interpolated between logged steps):
 *   B_t = (1−μ)^t D_0 + (6 + 2/μ) S_t,   S_t = Σ_{s=0..t} (1−μ)^{t−1−s} ē_s,
 * computed by S_t = (1−μ) S_{t−1} + ē_t/(1−μ). Exact when every step is logged. */
void lsq_theorem_bound(const size_t *t, const double *eG, size_t n, double D0, double mu, double *bound);

/* Proposition 4.4 on nvec random vectors drawn like the teacher (with its outliers),
 * b-bit symmetric per-tensor Q with c = 1 (b = c->wq.bits). out: nvec rows of
 * [norm2, maxabs2, err_none, bound20, err_rh, bound21]. */
int lsq_prop44(const lsq_config *c, size_t nvec, double *out);

/* The recursion of Theorem 4.3's proof, D_{t+1} = (1 − mu) D_t + kappa e_t with D_0 = D[0],
 * fitted to logged means (t[0] = 0 < t[1] < ...; e linearly interpolated between logged
 * steps) by least squares on the relative error (model − D)/D over the logged steps with
 * D > 0: kappa in closed form for each mu, mu by a log-grid search refined by golden
 * section over [1e-9, 0.5]. model (n values, or NULL) receives the fitted curve.
 * RS_OK, or RS_EINVAL when fewer than 3 usable points or D[0] <= 0 (mu, kappa = NaN). */
int lsq_recursion_fit(const size_t *t, const double *D, const double *eG, size_t n, double *mu, double *kappa,
                      double *model);

/* log10-log10 least squares of y against x over the positive pairs; Pearson and
 * Spearman correlations of the logs. Returns the number of pairs used. */
size_t lsq_loglog_fit(const double *x, const double *y, size_t n, double *slope, double *intercept,
                      double *pearson, double *spearman);

#endif
