/* rostesim lsq: parse options into an lsq_config, run the points, print, write. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "par/par.h"
#include "plots/plot.h"
#include "quant/status.h"
#include "sim/lsq.h"
#include "sim/lsq_out.h"

#define MAXSWEEP 32

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    double t0, last;
    size_t point, npoints;
} progress_ctx;

static void progress(void *vctx, size_t done, size_t total)
{
    progress_ctx *c = vctx;
    double t = now_s();
    if (done < total && t - c->last < 1.0) return;
    c->last = t;
    if (isatty(2) || done == total)
        fprintf(stderr, "\r  point %zu/%zu: %zu/%zu runs done (%.1f s)%s", c->point + 1, c->npoints, done, total, t - c->t0,
                done == total ? "\n" : "");
}

static int valid_bits(int b) { return (b >= 1 && b <= 8) || b == 16; }

static int parse_choice(const char *cmd, const char *opt, const char *val, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(val, names[i])) return i;
    char list[256] = "";
    for (int i = 0; i < n; i++) {
        strcat(list, names[i]);
        if (i + 1 < n) strcat(list, ", ");
    }
    cli_error(cmd, "%s: '%s' is not one of: %s", opt, val, list);
    return -1;
}

static int apply_sweep(lsq_config *c, const char *var, double v, const char **why)
{
    if (!strcmp(var, "abits") || !strcmp(var, "wbits")) {
        if (v != floor(v) || !valid_bits((int)v)) { *why = "bits must be 1..8 or 16"; return -1; }
        if (var[0] == 'a') c->xq.bits = (int)v;
        else c->wq.bits = (int)v;
    } else if (!strcmp(var, "d")) {
        if (v != floor(v) || v < 2 || v > 65536) { *why = "d must be an integer in 2..65536"; return -1; }
        c->d = (size_t)v;
    } else if (!strcmp(var, "N")) {
        if (v != floor(v) || v < 1) { *why = "N must be a positive integer"; return -1; }
        c->N = (size_t)v;
    } else if (!strcmp(var, "outliers")) {
        if (!(v > 0)) { *why = "the outlier scale must be > 0"; return -1; }
        c->teach_scale = v;
    } else if (!strcmp(var, "clip")) {
        if (!(v > 0 && v <= 1)) { *why = "clip must be in (0, 1]"; return -1; }
        c->wq.clip = (float)v;
        c->xq.clip = (float)v;
    } else {
        *why = "unknown variable (abits, wbits, d, N, outliers, clip)";
        return -1;
    }
    return 0;
}

static void fmt_num(char *buf, size_t n, double v)
{
    if (!isfinite(v)) snprintf(buf, n, "n/a");
    else snprintf(buf, n, "%.3g", v);
}

static void print_table(const lsq_results *R, int sweep)
{
    char h[64];
    if (sweep) snprintf(h, sizeof h, "%-9s", R->sweep_var);
    printf("\n%s%-10s %8s %9s %9s %9s %20s %9s %9s %9s %9s %4s %9s %9s\n", sweep ? h : "", "rotation", "A4.2", "mu",
           "act err", "|e(w*)|2", "final loss (95% CI)", "D_T", "|e|_G^2", "|e|^2", "bound_T", "viol", "RTN D", "GPTQ D");
    for (size_t p = 0; p < R->npoints; p++) {
        const lsq_point *P = &R->points[p];
        for (int k = 0; k < LSQ_NROT; k++) {
            const lsq_rotres *r = &P->rot[k];
            if (!r->present) continue;
            char a42[32], mu[16], ae[16], we[16], fl[40], D[16], eg[16], e2[16], b[16], rtn[16], gq[16], l1[16], l2[16];
            snprintf(a42, sizeof a42, "%zu/%zu%s", r->rank, P->cfg.N, r->interp ? "" : "!");
            fmt_num(mu, sizeof mu, r->mu);
            fmt_num(ae, sizeof ae, r->act_err);
            fmt_num(we, sizeof we, r->wstar_err);
            fmt_num(l1, sizeof l1, r->final_loss_mean);
            fmt_num(l2, sizeof l2, r->final_loss_ci);
            snprintf(fl, sizeof fl, "%s +- %s", l1, l2);
            fmt_num(D, sizeof D, r->final_D_mean);
            fmt_num(eg, sizeof eg, r->final_eG_mean);
            fmt_num(e2, sizeof e2, r->final_e2_mean);
            fmt_num(b, sizeof b, r->bound_final);
            fmt_num(rtn, sizeof rtn, r->ptq_rtn);
            fmt_num(gq, sizeof gq, r->ptq_gptq);
            if (sweep) printf("%-9.4g", R->sweep_vals[p]);
            char vi[8];
            if (r->bound_valid) snprintf(vi, sizeof vi, "%d", r->violations);
            else snprintf(vi, sizeof vi, "-");
            printf("%-10s %8s %9s %9s %9s %20s %9s %9s %9s %9s %4s %9s %9s", lsq_rot_name((lsq_rot)k), a42, mu, ae, we, fl,
                   D, eg, e2, b, vi, rtn, gq);
            if (r->dup_of >= 0) printf("  (= %s: identical runs)", lsq_rot_name((lsq_rot)r->dup_of));
            else if (r->ndup) printf("  (%d runs repeat other rotations')", r->ndup);
            printf("\n");
        }
    }
}

static void fmt_ci(char *buf, size_t n, double v, const double ci[2])
{
    if (!isfinite(v)) snprintf(buf, n, "n/a");
    else if (!isfinite(ci[0])) snprintf(buf, n, "%.3f", v);
    else snprintf(buf, n, "%.3f [%.2f, %.2f]", v, ci[0], ci[1]);
}

static void fit_line(const char *label, const lsq_fit *F)
{
    char a[48], b[48], c[48];
    fmt_ci(a, sizeof a, F->slope, F->slope_ci);
    fmt_ci(b, sizeof b, F->pearson, F->pearson_ci);
    fmt_ci(c, sizeof c, F->spearman, F->spearman_ci);
    printf("  %-26s %4zu  %-22s %-22s %s\n", label, F->n, a, b, c);
}

/* The tracking fits: every setting, each rotation across the sweep, each setting. */
static void print_fits(const lsq_results *R, const lsq_fitset *fs, int sweep)
{
    printf("\nprediction error D_T vs weight quantization error ||e(R w_T)||_G^2: log-log fit over the final\n"
           "iterates, one point per distinct run (95%% bootstrap CIs, %d resamples of the runs)\n", LSQ_BOOT);
    printf("  %-26s %4s  %-22s %-22s %s\n", "runs fitted", "n", "slope", "Pearson", "Spearman");
    fit_line(sweep ? "all settings (whole sweep)" : "all settings", &fs->all);
    char lab[64];
    if (sweep)
        for (int k = 0; k < LSQ_NROT; k++) {
            if (!R->points[0].rot[k].present) continue;
            snprintf(lab, sizeof lab, "%s, across %s", lsq_rot_name((lsq_rot)k), R->sweep_var);
            if (fs->across[k].n == 0) printf("  %-26s %4s  every run repeats another rotation's: shown, not fitted\n", lab, "-");
            else if (fs->across[k].n < 3) printf("  %-26s %4zu  (fewer than 3 distinct runs: not fitted)\n", lab, fs->across[k].n);
            else fit_line(lab, &fs->across[k]);
        }
    for (size_t p = 0; p < R->npoints; p++)
        for (int k = 0; k < LSQ_NROT; k++) {
            const lsq_rotres *r = &R->points[p].rot[k];
            if (!r->present) continue;
            if (sweep) snprintf(lab, sizeof lab, "%s=%g, %s", R->sweep_var, R->sweep_vals[p], lsq_rot_name((lsq_rot)k));
            else snprintf(lab, sizeof lab, "%s (seeds only)", lsq_rot_name((lsq_rot)k));
            const lsq_fit *F = &fs->within[p * LSQ_NROT + (size_t)k];
            if (r->dup_of >= 0)
                printf("  %-26s %4s  runs identical to %s's (%d of %d): shown, not fitted\n", lab, "-",
                       lsq_rot_name((lsq_rot)r->dup_of), r->ndup, R->points[p].cfg.seeds);
            else if (F->n < 3)
                printf("  %-26s %4zu  (fewer than 3 distinct runs: not fitted)\n", lab, F->n);
            else fit_line(lab, F);
        }
    if (fs->ndup)
        printf("  counting the %zu duplicate runs too (n = %zu): slope %.3f, Pearson %.3f, Spearman %.3f\n", fs->ndup,
               fs->all_dups.n, fs->all_dups.slope, fs->all_dups.pearson, fs->all_dups.spearman);
    for (size_t p = 0; p < R->npoints; p++) {
        const lsq_linfit *L = &fs->lin[p];
        if (sweep) printf("  %s=%g: ", R->sweep_var, R->sweep_vals[p]);
        else printf("  ");
        if (!isfinite(L->a)) {
            printf("linear floor fit: fewer than 3 distinct runs\n");
            continue;
        }
        printf("linear fit D_T = a ||e||_G^2 + b over %zu distinct runs: a %.3g, b %.3g (%.0f%% of mean D_T), R^2 %.3f:\n"
               "    the weight quantization error explains %.0f%% of the variance of D_T across runs\n",
               L->n, L->a, L->b, 100.0 * (1.0 - L->frac), L->r2, 100.0 * L->r2);
    }
}

/* Theorem 4.3's recursion with measured constants, beside the theorem's bound (point 0). */
static void print_measured(const lsq_results *R)
{
    const lsq_point *P = &R->points[0];
    printf("\nTheorem 4.3's recursion D_{t+1} <= (1 - mu) D_t + (6 + 2/mu) e_t with measured constants: the fit of\n"
           "D_{t+1} = (1 - mu_m) D_t + kappa_m e_t to the mean curve (final D_T against each curve's final value)%s\n",
           R->npoints > 1 ? ",\nfirst sweep point" : "");
    for (int k = 0; k < LSQ_NROT; k++) {
        const lsq_rotres *r = &P->rot[k];
        if (!r->present) continue;
        if (r->dup_of >= 0) {
            printf("  %-9s = %s (duplicate runs)\n", lsq_rot_name((lsq_rot)k), lsq_rot_name((lsq_rot)r->dup_of));
            continue;
        }
        if (!isfinite(r->mu_meas)) {
            printf("  %-9s recursion fit not available\n", lsq_rot_name((lsq_rot)k));
            continue;
        }
        double D = r->final_D_mean;
        printf("  %-9s mu_m %.3g (%s %.3g), kappa_m %.3g (theorem %.3g); D_T %.3g: fit %.3g (%.2fx),\n"
               "            Thm 4.3 form with mu_m %.3g (%.2gx), Thm 4.3 %s%.3g (%.2gx)\n",
               lsq_rot_name((lsq_rot)k), r->mu_meas, "theorem mu", r->mu, r->kappa_meas, 6.0 + 2.0 / r->mu, D, r->recur_final,
               r->recur_final / D, r->bound_mrate_final, r->bound_mrate_final / D, r->bound_valid ? "" : "(n/a) ",
               r->bound_final, r->bound_final / D);
    }
}

/* The command line, parsed: the base configuration, one per sweep point, what to write. */
typedef struct {
    lsq_config c;
    lsq_config cfgs[MAXSWEEP];
    double svals[MAXSWEEP];
    int nsv;             /* sweep points (1 without --sweep) */
    const char *svar;    /* the swept variable, "none" without --sweep */
    char varbuf[32];
    int sweep;           /* --sweep given */
    const char *out;
    int no_plot, quiet;
    char cmdline[2048];  /* for the record (summary.json) */
} lsq_cli;

/* parse: the command line into L (the base configuration, one per sweep point, the output
 * options). 0, CLI_HELP (help printed) or an exit code (2: usage error). */
static int lsq_parse(lsq_cli *L, int argc, char **argv)
{
    lsq_config c;
    lsq_config_default(&c);
    int bits = 4, wbits = -1, abits = -1, asym = 0, seeds = c.seeds, rounds = 1, wgroup = 0;
    long d = (long)c.d, N = (long)c.N, steps = 0, max_steps = (long)c.max_steps, batch = 1, log_points = (long)c.log_points;
    long seed = 1, feat_k = (long)c.feat_k, teach_m = (long)c.teach_m, reselect = 0, prop44 = (long)c.prop44_vectors;
    double clip = 1.0, wclip = -1, aclip = -1, eta = 0, feat_scale = c.feat_scale, teach_scale = c.teach_scale;
    double feat_nu = c.feat_nu, teach_nu = c.teach_nu, noise = 0, delta = c.delta;
    const char *features = "outlier", *teacher = "outlier", *target = "linear", *rotations = "none,hadamard,haar,adaptive";
    const char *sweep = NULL, *clip_mode = "code", *rounding = "even";
    L->out = "out/lsq";
    cli_opt opts[] = {
        {"--bits", OPT_INT, &bits, 1, 16, "B", "weight and activation bits (1..8, 16 = no quantization)", 0},
        {"--wbits", OPT_INT, &wbits, 1, 16, "B", "weight bits (overrides --bits)", 0},
        {"--abits", OPT_INT, &abits, 1, 16, "B", "activation bits (overrides --bits)", 0},
        {"--asym", OPT_FLAG, &asym, 0, -1, NULL, "asymmetric quantizers (default: symmetric, Prop. 4.4's setting)", 0},
        {"--clip", OPT_DOUBLE, &clip, 1e-6, 1, "C", "clipping factor c in (0, 1] for both quantizers", 0},
        {"--wclip", OPT_DOUBLE, &wclip, 1e-6, 1, "C", "weight clipping factor (overrides --clip)", 0},
        {"--aclip", OPT_DOUBLE, &aclip, 1e-6, 1, "C", "activation clipping factor (overrides --clip)", 0},
        {"--clip-mode", OPT_STRING, &clip_mode, 0, -1, "M", "asymmetric clipping: code (authors' code) or paper", 0},
        {"--round", OPT_STRING, &rounding, 0, -1, "M", "rounding: even (half to even) or away (half away from zero)", 0},
        {"--wgroup", OPT_INT, &wgroup, 0, 1 << 20, "G", "weight quantization group size (0: per tensor)", 0},
        {"--d", OPT_LONG, &d, 2, 65536, "D", "features", 0},
        {"--N", OPT_LONG, &N, 1, 65536, "N", "samples (N < d: overparameterized)", 0},
        {"--features", OPT_STRING, &features, 0, -1, "K", "feature generator: gauss, outlier, student", 0},
        {"--feat-k", OPT_LONG, &feat_k, 0, 65536, "K", "outlier feature channels", 0},
        {"--feat-scale", OPT_DOUBLE, &feat_scale, 1e-6, 1e6, "S", "scale of the outlier channels", 0},
        {"--feat-nu", OPT_DOUBLE, &feat_nu, 1e-3, 1e6, "NU", "Student-t degrees of freedom of the features", 0},
        {"--teacher", OPT_STRING, &teacher, 0, -1, "K", "teacher weights: gauss, outlier, student", 0},
        {"--teacher-m", OPT_LONG, &teach_m, 0, 65536, "M", "teacher outlier coordinates", 0},
        {"--teacher-scale", OPT_DOUBLE, &teach_scale, 1e-6, 1e6, "S", "scale of the teacher's outlier coordinates", 0},
        {"--teacher-nu", OPT_DOUBLE, &teach_nu, 1e-3, 1e6, "NU", "Student-t degrees of freedom of the teacher", 0},
        {"--target", OPT_STRING, &target, 0, -1, "T", "linear: y = <x, w> + noise; quant: y = <Q_x(Rx), Rw>", 0},
        {"--noise", OPT_DOUBLE, &noise, 0, 1e6, "S", "target noise standard deviation (linear targets)", 0},
        {"--rotations", OPT_STRING, &rotations, 0, -1, "LIST", "comma list of none, hadamard, haar, adaptive", 0},
        {"--eta", OPT_DOUBLE, &eta, 0, 1e6, "E", "step size (0: the theorem's eta = lambda_min/(6 rho))", 0},
        {"--steps", OPT_LONG, &steps, 0, 1000000000L, "T", "SGD steps (0: the theorem's steps to the floor, capped)", 0},
        {"--max-steps", OPT_LONG, &max_steps, 1, 1000000000L, "T", "cap on the automatic step count", 0},
        {"--batch", OPT_LONG, &batch, 1, 65536, "B", "mini-batch size (1: eq. (15) exactly)", 0},
        {"--log-points", OPT_LONG, &log_points, 2, 100000, "P", "logged steps per run", 0},
        {"--seeds", OPT_INT, &seeds, 1, 10000, "M", "Monte Carlo runs (sampling orders) per rotation", 0},
        {"--seed", OPT_LONG, &seed, 0, 2147483647L, "S", "seed of every random draw", 0},
        {"--reselect-every", OPT_LONG, &reselect, 0, 1000000000L, "T", "adaptive: re-choose the rotation every T steps", 0},
        {"--rounds", OPT_INT, &rounds, 1, 1000000, "K", "adaptive: number of choices K (1 = the paper)", 0},
        {"--sweep", OPT_STRING, &sweep, 0, -1, "VAR=LIST", "sweep abits, wbits, d, N, outliers or clip over a comma list", 0},
        {"--prop44", OPT_LONG, &prop44, 0, 10000000L, "V", "random vectors for the Prop. 4.4 check (0: skip)", 0},
        {"--delta", OPT_DOUBLE, &delta, 1e-9, 0.999999, "P", "Prop. 4.4 failure probability delta", 0},
        {"--out", OPT_STRING, &L->out, 0, -1, "DIR", "output folder", 0},
        {"--no-plot", OPT_FLAG, &L->no_plot, 0, -1, NULL, "write data only, draw no figures", 0},
        {"--quiet", OPT_FLAG, &L->quiet, 0, -1, NULL, "no progress on stderr", 0},
    };
    cli_cmd cmd = {
        "lsq", "[options]",
        "Simulate quantization-aware training (STE-SGD, eq. (15) of the RoSTE paper) on an\n"
        "overparameterized least-squares problem with prediction <Q_x(R x), Q_w(R w)>, for\n"
        "several rotations R, and check the paper's theory: Theorem 4.3's bound at every\n"
        "logged step, Proposition 4.4's error bounds, and how the final prediction error\n"
        "tracks the weight quantization error. Prints a table, writes TSV/JSON data and\n"
        "figures into the output folder. Under 'mpirun -np R', --sweep's points are spread\n"
        "over the ranks (point i on rank (i-1) mod R) and rank 0 writes the same files as one\n"
        "process (docs/MPI.md).",
        opts, sizeof opts / sizeof opts[0], 0, 0,
        "columns: A4.2 = rank of Q_x(RX) / N (! = interpolation fails); mu = the theorem's rate;\n"
        "act err = mean ||Q_x(Rx) - Rx||^2; |e(w*)|2 = weight quantization error of the\n"
        "interpolator; D_T = ||Q_w(R w_T) - w*||_G^2 (= 2 x loss under interpolation);\n"
        "|e|_G^2, |e|^2 = weight quantization error of the final iterate; bound_T = Theorem 4.3\n"
        "for D_T (n/a when its assumptions are not met); viol = logged steps above the bound\n"
        "by more than 2 standard errors; RTN D, GPTQ D = post-training quantization of w*.\n"
        "A rotation whose runs repeat another's byte for byte (adaptive that chose I or the\n"
        "Hadamard) is marked '(= ...)': shown, but left out of every fit.\n\n"
        "after the table: the log-log fit of final D on final |e|_G^2 over the distinct runs,\n"
        "across all settings, per rotation across a sweep and within each setting (seeds only),\n"
        "each with 95% bootstrap CIs (2000 resamples, seeded); the linear fit D_T = a |e|_G^2 + b\n"
        "and its R^2; and Theorem 4.3's recursion with measured constants (mu_m, kappa_m fitted\n"
        "to the mean D_t curve) beside the theorem's worst-case bound.\n\n"
        "examples:\n  rostesim lsq --bits 4\n  rostesim lsq --sweep abits=2,3,4,6,8 --wbits 4\n"
        "  rostesim lsq --sweep outliers=1,5,10,20,40 --rotations none,hadamard"};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return CLI_HELP;
    if (pr != CLI_OK) return 2;

    if (wbits < 0) wbits = bits;
    if (abits < 0) abits = bits;
    if (!valid_bits(bits) || !valid_bits(wbits) || !valid_bits(abits))
        return cli_error("lsq", "bits must be 1..8 or 16 (got --bits %d --wbits %d --abits %d)", bits, wbits, abits), 2;
    static const char *const feat_names[] = {"gauss", "outlier", "student"};
    static const char *const target_names[] = {"linear", "quant"};
    static const char *const cm_names[] = {"code", "paper"};
    static const char *const round_names[] = {"even", "away"};
    int fk = parse_choice("lsq", "--features", features, feat_names, 3);
    int tk = parse_choice("lsq", "--teacher", teacher, feat_names, 3);
    int gk = parse_choice("lsq", "--target", target, target_names, 2);
    int cm = parse_choice("lsq", "--clip-mode", clip_mode, cm_names, 2);
    int rm = parse_choice("lsq", "--round", rounding, round_names, 2);
    if (fk < 0 || tk < 0 || gk < 0 || cm < 0 || rm < 0) return 2;
    static const lsq_feat_kind fmap[] = {LSQ_FEAT_GAUSS, LSQ_FEAT_OUTLIER, LSQ_FEAT_STUDENT};
    static const lsq_teach_kind tmap[] = {LSQ_TEACH_GAUSS, LSQ_TEACH_OUTLIER, LSQ_TEACH_STUDENT};
    c.feat = fmap[fk];
    c.teach = tmap[tk];
    c.target = gk ? LSQ_TARGET_QUANT : LSQ_TARGET_LINEAR;
    qz_scheme sch = asym ? QZ_ASYM : QZ_SYM;
    c.wq = qz_spec_make(wbits, sch, wgroup ? QZ_GROUP : QZ_TENSOR, (size_t)wgroup);
    c.xq = qz_spec_make(abits, sch, QZ_TENSOR, 0);
    c.wq.clip = (float)(wclip > 0 ? wclip : clip);
    c.xq.clip = (float)(aclip > 0 ? aclip : clip);
    c.wq.clipmode = c.xq.clipmode = cm ? QZ_CLIP_PAPER : QZ_CLIP_CODE;
    c.wq.round = c.xq.round = rm ? QZ_HALF_AWAY : QZ_HALF_EVEN;
    c.d = (size_t)d;
    c.N = (size_t)N;
    c.feat_k = (size_t)feat_k;
    c.feat_scale = feat_scale;
    c.feat_nu = feat_nu;
    c.teach_m = (size_t)teach_m;
    c.teach_scale = teach_scale;
    c.teach_nu = teach_nu;
    c.noise = noise;
    c.eta = eta;
    c.steps = (size_t)steps;
    c.max_steps = (size_t)max_steps;
    c.batch = (size_t)batch;
    c.log_points = (size_t)log_points;
    c.seeds = seeds;
    c.seed = (uint64_t)seed;
    c.reselect_every = (size_t)reselect;
    c.rounds = rounds;
    c.prop44_vectors = (size_t)prop44;
    c.delta = delta;
    c.rot_mask = 0;
    {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", rotations);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            int k = -1;
            for (int r = 0; r < LSQ_NROT; r++)
                if (!strcmp(tok, lsq_rot_name((lsq_rot)r))) k = r;
            if (k < 0) return cli_error("lsq", "--rotations: '%s' is not one of none, hadamard, haar, adaptive", tok), 2;
            c.rot_mask |= 1u << k;
        }
        if (!c.rot_mask) return cli_error("lsq", "--rotations: empty list"), 2;
    }
    if (rounds > 1 && reselect == 0) return cli_error("lsq", "--rounds %d needs --reselect-every T", rounds), 2;

    /* sweep */
    const char *svar = "none";
    char *varbuf = L->varbuf;
    double *svals = L->svals;
    int nsv = 1;
    svals[0] = NAN;
    if (sweep) {
        const char *eq = strchr(sweep, '=');
        if (!eq || eq == sweep || (size_t)(eq - sweep) >= sizeof L->varbuf)
            return cli_error("lsq", "--sweep: expected VAR=v1,v2,... (got '%s')", sweep), 2;
        memcpy(varbuf, sweep, (size_t)(eq - sweep));
        varbuf[eq - sweep] = '\0';
        svar = varbuf;
        nsv = cli_parse_list(eq + 1, svals, MAXSWEEP);
        if (nsv < 1) return cli_error("lsq", "--sweep %s: '%s' is not a comma list of at most %d numbers", svar, eq + 1, MAXSWEEP), 2;
    }
    lsq_config *cfgs = L->cfgs;
    for (int i = 0; i < nsv; i++) {
        cfgs[i] = c;
        const char *why = NULL;
        if (sweep && apply_sweep(&cfgs[i], svar, svals[i], &why))
            return cli_error("lsq", "--sweep %s: value %g: %s", svar, svals[i], why), 2;
        if (lsq_config_check(&cfgs[i]) != RS_OK) return cli_error("lsq", "%s", rs_last_error()), 2;
    }

    /* command line for the record */
    char *cmdline = L->cmdline;
    snprintf(cmdline, sizeof L->cmdline, "rostesim");
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(cmdline);
        snprintf(cmdline + n, sizeof L->cmdline - n, " %s", argv[i]);
    }
    L->c = c;
    L->svar = svar;
    L->nsv = nsv;
    L->sweep = sweep != NULL;
    return 0;
}


/* run: the sweep points this rank owns into pts (every point on one rank; point i on rank
 * lsq_sweep_owner(i, R) under mpirun), then Prop. 4.4's experiment (*p44, *np44 vectors;
 * none when skipped) on the rank that owns the task after the last point. Progress on
 * stderr from rank 0 only. 0 or 1 (the message printed). */
static int lsq_run_all(const lsq_cli *L, lsq_point *pts, double **p44, size_t *np44)
{
    const lsq_config *c = &L->c;
    const int R = rs_par_size(), me = rs_par_rank();
    int rc = 0;
    for (int i = 0; i < L->nsv; i++) {
        if (lsq_sweep_owner((size_t)i, R) != me) continue;
        progress_ctx pc = {now_s(), 0, (size_t)i, (size_t)L->nsv};
        int st = lsq_run_point(&L->cfgs[i], &pts[i], L->quiet || me != 0 ? NULL : progress, &pc);
        if (st) {
            if (R > 1) cli_error("lsq", "rank %d of %d, sweep point %d: %s", me, R, i + 1, rs_last_error());
            else cli_error("lsq", "%s", rs_last_error());
            rc = 1;
            break;
        }
    }
    if (!rc && c->prop44_vectors > 0) {
        if (c->wq.bits >= 2 && c->wq.bits <= 8) {
            *np44 = c->prop44_vectors;
            *p44 = malloc(*np44 * 6 * sizeof **p44);
            if (!*p44) rc = 1, cli_error("lsq", "Prop. 4.4 experiment: out of memory");
            else if (lsq_sweep_owner((size_t)L->nsv, R) == me && lsq_prop44(&L->cfgs[0], *np44, *p44)) {
                cli_error("lsq", "Prop. 4.4 experiment failed: %s", rs_last_error());
                rc = 1;
            }
        } else if (!L->quiet && me == 0) {
            fprintf(stderr, "rostesim lsq: Prop. 4.4 check skipped (it needs 2..8 weight bits)\n");
        }
    }
    return rc;
}

/* gather (mpirun, R > 1): every rank's status first (one failed: every rank returns 1, the
 * failing one has printed why), then every point and Prop. 4.4's vectors to rank 0. */
static int lsq_gather(const lsq_cli *L, int rc, lsq_point *pts, double *p44, size_t np44)
{
    const int R = rs_par_size();
    if (R == 1) return rc;
    int any = rc;
    if (rs_par_max_int(rc, &any) != RS_OK) return cli_error("lsq", "%s", rs_last_error()), 1;
    if (any) {
        if (!rc && rs_par_rank() == 0) cli_error("lsq", "stopped: another rank failed (its message is above)");
        return 1;
    }
    int st = lsq_points_gather(pts, (size_t)L->nsv, 0);
    if (!st && np44) st = rs_par_bcast(p44, np44 * 6 * sizeof *p44, lsq_sweep_owner((size_t)L->nsv, R));
    if (st) return cli_error("lsq", "rank %d: gathering the sweep: %s", rs_par_rank(), rs_last_error()), 1;
    return 0;
}

/* The ranks of `mpirun -np R` must have been given the same job: a hash of the command line
 * (and of this build's layout of a point, which travels as bytes) is compared across them. */
static int lsq_check_ranks(int argc, char **argv)
{
    uint64_t h = RS_PAR_HASH0;
    for (int i = 0; i < argc; i++) h = rs_par_hash(h, argv[i], strlen(argv[i]) + 1);
    size_t layout[3] = {sizeof(lsq_point), sizeof(lsq_logpt), sizeof(long)};
    double one = 1.0;
    h = rs_par_hash(h, layout, sizeof layout);
    h = rs_par_hash(h, &one, sizeof one);
    if (rs_par_check_same("the lsq command line", h) == RS_OK) return 0;
    if (rs_par_rank() == 0) cli_error("lsq", "%s", rs_last_error());
    rs_par_barrier(); /* rank 0's message out before any rank ends the job */
    return 2;
}

/* print: the settings, the table, the fits, the measured recursion and the checks' summaries
 * on stdout. 0, or 1 when the fits fail (the rest is printed all the same). */
static int lsq_print(const lsq_cli *L, const lsq_results *R, const char *desc_w, const char *desc_x)
{
    const lsq_config *c = &L->c;
    int rc = 0;
    const lsq_point *P0 = &R->points[0];
    printf("rostesim lsq: d=%zu N=%zu, Q_w = %s, Q_x = %s\n", c->d, c->N, desc_w, desc_x);
    printf("  %d seeds (sampling orders) per rotation, %zu STE-SGD steps%s, batch %zu, eta %s\n", c->seeds, P0->steps,
           c->steps ? "" : " (automatic)", c->batch, c->eta > 0 ? "fixed" : "= lambda_min/(6 rho) (Theorem 4.3)");
    for (int k = 0; k < LSQ_NROT; k++) {
        const lsq_rotres *r = &P0->rot[k];
        if (!r->present || k == LSQ_R_ADAPTIVE) continue;
        printf("  %-9s lambda_min %.3g, rho %.3g, mu %.3g: the theorem's transient falls 1e6-fold in %zu steps%s\n",
               lsq_rot_name((lsq_rot)k), r->lambda_min, r->rho, r->mu, r->steps_predicted,
               (!c->steps && r->steps_predicted > c->max_steps) ? " (capped by --max-steps)" : "");
    }
    if (P0->rot[LSQ_R_ADAPTIVE].present) {
        const lsq_rotres *a = &P0->rot[LSQ_R_ADAPTIVE];
        printf("  adaptive: first choice %s", a->choice_hadamard_first ? "hadamard" : "none");
        if (c->rounds > 1)
            printf("; re-chosen every %zu steps for %d rounds: %.2f switches per run, %.0f%% end on hadamard", c->reselect_every,
                   c->rounds, a->switches_mean, 100 * a->frac_hadamard_final);
        printf("\n");
    }
    if (c->eta > 0)
        printf("  note: --eta %g is not the theorem's step lambda_min/(6 rho); Theorem 4.3's bound is not computed\n", c->eta);
    if (c->rounds > 1)
        printf("  note: with --rounds > 1 the adaptive rotation changes during training; Theorem 4.3 covers a fixed R\n");
    print_table(R, L->sweep);
    lsq_fitset fs;
    if (lsq_results_fits(R, c->seed, &fs) != RS_OK) {
        cli_error("lsq", "%s", rs_last_error());
        rc = 1;
    } else {
        print_fits(R, &fs, L->sweep);
        lsq_fitset_free(&fs);
    }
    print_measured(R);
    int viol = 0, checked = 0;
    for (size_t i = 0; i < R->npoints; i++)
        for (int k = 0; k < LSQ_NROT; k++)
            if (R->points[i].rot[k].present && R->points[i].rot[k].bound_valid) {
                checked++;
                viol += R->points[i].rot[k].violations;
            }
    if (checked) printf("\nTheorem 4.3: %d violations over %d runs' logged steps (expected 0)\n", viol, checked);
    if (R->nprop44) {
        double f20, f21, m20, m21, gain;
        lsq_prop44_summary(R->prop44, R->nprop44, &f20, &f21, &m20, &m21, &gain);
        printf("Prop. 4.4 (%zu vectors, %d-bit): no rotation above bound (20) in %.2f%% (must be 0); random Hadamard above\n"
               "  bound (21) in %.2f%% (allowed: delta = %.2f%%); rotation lowers the error %.2fx (geometric mean)\n",
               R->nprop44, c->wq.bits, 100 * f20, 100 * f21, 100 * c->delta, gain);
    }
    return rc;
}

/* write: the data files into --out, then the figures (a figure that cannot be drawn is a
 * warning). 0 or 1. */
static int lsq_write(const lsq_cli *L, const lsq_results *R)
{
    int st = lsq_write_outputs(L->out, R);
    if (st) {
        cli_error("lsq", "%s", rs_last_error());
        return 1;
    } else {
        printf("data: %s/{summary.json,summary.tsv,runs.tsv,steps.tsv,fit.tsv%s,meta.tsv}\n", L->out,
               R->nprop44 ? ",prop44.tsv" : "");
        if (!L->no_plot) {
            char err[512];
            int ps = plot_draw_all(L->out, err, sizeof err);
            if (ps == 0) printf("figures: %s/fig*.png and fig*.pdf\n", L->out);
            else fprintf(stderr, "rostesim lsq: figures not drawn: %s\n", err);
        }
    }
    return 0;
}

/* rostesim lsq: parse, set up the output folder, run, print, write. Under `mpirun -np R`
 * the sweep points are spread over the ranks (lsq_run_all), gathered to rank 0, which alone
 * prints and writes: the same bytes as one process. */
int cmd_lsq(int argc, char **argv)
{
    static lsq_cli L; /* large (a configuration per sweep point): not on the stack */
    memset(&L, 0, sizeof L);
    const int R = rs_par_size(), me = rs_par_rank();
    int pr = lsq_parse(&L, argc, argv);
    if (pr == CLI_HELP) return 0;
    if (pr) return pr;
    if ((pr = lsq_check_ranks(argc, argv))) return pr;
    if (R > 1 && !L.sweep) {
        if (me == 0)
            cli_error("lsq", "launched by mpirun with %d ranks, but without --sweep there is one point, which runs in one "
                      "process (its seeds are parallel over that process's OpenMP threads): run it without mpirun, or "
                      "spread a --sweep VAR=LIST over the ranks", R);
        rs_par_barrier();
        return 2;
    }
    const lsq_config *c = &L.c;
    char desc_w[128], desc_x[128];
    qz_describe(&c->wq, desc_w, sizeof desc_w);
    qz_describe(&c->xq, desc_x, sizeof desc_x);
    if (!L.quiet && me == 0) {
        fprintf(stderr, "rostesim lsq: d=%zu N=%zu, Q_w %s, Q_x %s, %d seeds, seed %lu\n", c->d, c->N, desc_w, desc_x,
                c->seeds, (unsigned long)c->seed);
        if (R > 1)
            fprintf(stderr, "rostesim lsq: %d sweep points over %d ranks (point i on rank (i-1) mod %d)%s\n", L.nsv, R, R,
                    L.nsv < R ? "; some ranks have nothing to do" : "");
    }
    /* set up: the output folder (rank 0 writes it), before any computing: an unwritable --out
     * fails in a moment, not after the runs */
    int rc = 0;
    if (me == 0) {
        if (rs_mkdir_p(L.out) != 0) rc = 1, cli_error("lsq", "--out: %s", rs_last_error());
        else if (access(L.out, W_OK | X_OK) != 0)
            rc = 1, cli_error("lsq", "--out: cannot write into '%s': %s", L.out, strerror(errno));
    }
    if (R > 1) {
        int any = rc;
        if (rs_par_max_int(rc, &any) != RS_OK) return cli_error("lsq", "%s", rs_last_error()), 1;
        rc = any;
    }
    if (rc) return rc;
    double t0 = now_s();
    lsq_point *pts = calloc((size_t)L.nsv, sizeof *pts);
    if (!pts) return cli_error("lsq", "out of memory"), 1;
    double *p44 = NULL;
    size_t np44 = 0;
    rc = lsq_run_all(&L, pts, &p44, &np44);
    rc = lsq_gather(&L, rc, pts, p44, np44);
    double secs = now_s() - t0;
    if (!rc && me == 0) {
        lsq_results Res = {L.svar, L.svals, (size_t)L.nsv, pts, p44, np44, L.cmdline, secs};
        rc = lsq_print(&L, &Res, desc_w, desc_x);
        if (lsq_write(&L, &Res)) rc = 1;
        printf("time: %.2f s\n", secs);
    }
    /* a point not run here (another rank's, or after a failure) is all zeros: free is a no-op */
    for (int i = 0; i < L.nsv; i++) lsq_point_free(&pts[i]);
    free(pts);
    free(p44);
    return rc;
}
