/* rostesim: the least-squares experiment (see sim/lsq.h). Dimension letters:
 * N samples, d features; X, A are N x d row-major; vectors are length d. */
#include "sim/lsq.h"

#include <cblas.h>
#include <gsl/gsl_fit.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "quant/rng.h"
#include "quant/rotation.h"
#include "quant/status.h"
#include "solvers/gptq.h"
#include "solvers/linalg.h"
#include "solvers/ste_sgd.h"

static const char *rot_names[LSQ_NROT] = {"none", "hadamard", "haar", "adaptive"};
const char *lsq_rot_name(lsq_rot r) { return (r >= 0 && r < LSQ_NROT) ? rot_names[r] : "?"; }

void lsq_config_default(lsq_config *c)
{
    memset(c, 0, sizeof *c);
    c->d = 512;
    c->N = 64;
    c->feat = LSQ_FEAT_OUTLIER;
    c->feat_k = 8;
    c->feat_scale = 2.0;
    c->feat_nu = 3.0;
    c->teach = LSQ_TEACH_OUTLIER;
    c->teach_m = 8;
    c->teach_scale = 20.0;
    c->teach_nu = 3.0;
    c->target = LSQ_TARGET_LINEAR;
    c->noise = 0.0;
    c->wq = qz_spec_make(4, QZ_SYM, QZ_TENSOR, 0);
    c->xq = qz_spec_make(4, QZ_SYM, QZ_TENSOR, 0);
    c->eta = 0;
    c->steps = 0;
    c->max_steps = 400000;
    c->batch = 1;
    c->log_points = 200;
    c->seeds = 8;
    c->seed = 1;
    c->rot_mask = (1u << LSQ_R_NONE) | (1u << LSQ_R_HADAMARD) | (1u << LSQ_R_HAAR) | (1u << LSQ_R_ADAPTIVE);
    c->reselect_every = 0;
    c->rounds = 1;
    c->prop44_vectors = 2000;
    c->delta = 0.05;
    c->gptq_damp = 0.01;
}

int lsq_config_check(const lsq_config *c)
{
    if (c->d < 2) return RS_ERROR(RS_EINVAL, "d=%zu: need at least 2 features", c->d);
    if (c->N < 1) return RS_ERROR(RS_EINVAL, "N=%zu: need at least 1 sample", c->N);
    if (c->N >= c->d)
        return RS_ERROR(RS_EINVAL, "N=%zu >= d=%zu: the interpolation assumption A4.2 needs N < d (overparameterized)", c->N, c->d);
    if (c->feat == LSQ_FEAT_OUTLIER && c->feat_k > c->d) return RS_ERROR(RS_EINVAL, "outlier channels k=%zu > d=%zu", c->feat_k, c->d);
    if (c->teach == LSQ_TEACH_OUTLIER && c->teach_m > c->d) return RS_ERROR(RS_EINVAL, "teacher outliers m=%zu > d=%zu", c->teach_m, c->d);
    if ((c->feat == LSQ_FEAT_STUDENT && !(c->feat_nu > 0)) || (c->teach == LSQ_TEACH_STUDENT && !(c->teach_nu > 0)))
        return RS_ERROR(RS_EINVAL, "Student-t degrees of freedom must be > 0");
    if (c->batch < 1 || c->batch > c->N) return RS_ERROR(RS_EINVAL, "batch=%zu not in 1..N=%zu", c->batch, c->N);
    if (c->seeds < 1) return RS_ERROR(RS_EINVAL, "seeds=%d: need at least 1", c->seeds);
    if (!c->rot_mask) return RS_ERROR(RS_EINVAL, "no rotation selected");
    if (c->rounds < 1) return RS_ERROR(RS_EINVAL, "rounds=%d: need at least 1", c->rounds);
    if (c->rounds > 1 && c->reselect_every == 0) return RS_ERROR(RS_EINVAL, "rounds=%d needs a re-selection interval T >= 1", c->rounds);
    if (!(c->delta > 0 && c->delta < 1)) return RS_ERROR(RS_EINVAL, "delta=%g not in (0, 1)", c->delta);
    int st = qz_spec_check(&c->wq, c->d);
    if (st) return st;
    return qz_spec_check(&c->xq, c->d);
}

/* ---------------------------------------------------------------- data */

/* Teacher weights: Gaussian or Student-t, with teach_m outlier coordinates (a random
 * subset) scaled by teach_scale. perm: d entries of workspace. */
static void draw_teacher(const lsq_config *c, rs_rng *rt, size_t *perm, double *w)
{
    const size_t d = c->d;
    for (size_t j = 0; j < d; j++) perm[j] = j;
    rs_rng_shuffle(rt, perm, d);
    for (size_t j = 0; j < d; j++)
        w[j] = c->teach == LSQ_TEACH_STUDENT ? rs_rng_tdist(rt, c->teach_nu) : rs_rng_gaussian(rt, 1.0);
    if (c->teach == LSQ_TEACH_OUTLIER)
        for (size_t k = 0; k < c->teach_m; k++) w[perm[k]] *= c->teach_scale;
}

/* X (N x d), teacher wt (d), y (N) for the LINEAR target. Features are scaled so
 * that the mean squared norm of a sample is 1 (quantization is scale-equivariant). */
static void draw_data(const lsq_config *c, double *X, double *wt)
{
    const size_t N = c->N, d = c->d;
    rs_rng *rd = rs_rng_alloc(c->seed, RS_STREAM_DATA);
    rs_rng *rt = rs_rng_alloc(c->seed, RS_STREAM_TEACHER);
    /* outlier channels: a fixed random subset (the same for every sample) */
    size_t *perm = malloc(d * sizeof *perm);
    for (size_t j = 0; j < d; j++) perm[j] = j;
    rs_rng_shuffle(rd, perm, d);
    double *chscale = malloc(d * sizeof *chscale);
    for (size_t j = 0; j < d; j++) chscale[j] = 1.0;
    if (c->feat == LSQ_FEAT_OUTLIER)
        for (size_t k = 0; k < c->feat_k; k++) chscale[perm[k]] = c->feat_scale;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < d; j++)
            X[i * d + j] = chscale[j] * (c->feat == LSQ_FEAT_STUDENT ? rs_rng_tdist(rd, c->feat_nu) : rs_rng_gaussian(rd, 1.0));
    double ss = 0;
    for (size_t i = 0; i < N * d; i++) ss += X[i] * X[i];
    double sc = 1.0 / sqrt(ss / (double)N);
    for (size_t i = 0; i < N * d; i++) X[i] *= sc;

    draw_teacher(c, rt, perm, wt);
    free(chscale);
    free(perm);
    rs_rng_free(rd);
    rs_rng_free(rt);
}

/* ------------------------------------------------------------- problem */

typedef struct {
    rot *R;         /* NULL: identity */
    double *A;      /* N x d: Q_x(R x_i) */
    double *y;      /* N */
    double *wstar;  /* d: min-norm interpolator in the rotated frame */
    double *G;      /* d x d Gram (only built for GPTQ), freed after use */
    size_t rank;
    int interp;
    double resid, lambda_min, lambda_max, rho, mu, eta_theorem, act_err, ynorm2;
} problem;

static void problem_free(problem *p)
{
    free(p->A);
    free(p->y);
    free(p->wstar);
    free(p->G);
    memset(p, 0, sizeof *p);
}

static int problem_build(const lsq_config *c, const double *X, const double *wt, rot *R, problem *p)
{
    const size_t N = c->N, d = c->d;
    int st = RS_OK;
    memset(p, 0, sizeof *p);
    p->R = R;
    p->A = malloc(N * d * sizeof *p->A);
    p->y = malloc(N * sizeof *p->y);
    p->wstar = malloc(d * sizeof *p->wstar);
    double *RX = malloc(N * d * sizeof *RX);
    double *rw = malloc(d * sizeof *rw);
    if (!p->A || !p->y || !p->wstar || !RX || !rw) {
        st = RS_ERROR(RS_ENOMEM, "out of memory building the N=%zu x d=%zu problem", N, d);
        goto done;
    }
    memcpy(RX, X, N * d * sizeof *RX);
    if (R && (st = rot_apply_rows_f64(R, RX, N, 1))) goto done; /* rows: x R^T = (R x)^T */
    p->act_err = 0;
    for (size_t i = 0; i < N; i++) {
        if ((st = qz_fake_f64(&c->xq, RX + i * d, p->A + i * d, 1, d))) goto done;
        for (size_t j = 0; j < d; j++) {
            double e = p->A[i * d + j] - RX[i * d + j];
            p->act_err += e * e;
        }
    }
    p->act_err /= (double)N;
    if (c->target == LSQ_TARGET_LINEAR) {
        rs_rng *rn = rs_rng_alloc(c->seed, 6);
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)d, 1.0, X, (int)d, wt, 1, 0.0, p->y, 1);
        if (c->noise > 0)
            for (size_t i = 0; i < N; i++) p->y[i] += rs_rng_gaussian(rn, c->noise);
        rs_rng_free(rn);
    } else {
        memcpy(rw, wt, d * sizeof *rw);
        if (R && (st = rot_apply_rows_f64(R, rw, 1, 1))) goto done; /* R w_teacher */
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)d, 1.0, p->A, (int)d, rw, 1, 0.0, p->y, 1);
    }
    p->ynorm2 = cblas_ddot((int)N, p->y, 1, p->y, 1);
    if ((st = ls_minnorm(N, d, p->A, p->y, 1e-10, p->wstar, &p->rank, NULL))) goto done;
    /* residual of the interpolator */
    double *r = RX; /* reuse */
    cblas_dcopy((int)N, p->y, 1, r, 1);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)d, 1.0, p->A, (int)d, p->wstar, 1, -1.0, r, 1);
    p->resid = p->ynorm2 > 0 ? sqrt(cblas_ddot((int)N, r, 1, r, 1) / p->ynorm2) : 0.0;
    p->interp = p->rank == N && p->resid <= 1e-8;
    size_t srank;
    if ((st = ls_gram_spectrum(N, d, p->A, -1.0, NULL, &srank, &p->lambda_min, &p->lambda_max))) goto done;
    if ((st = ls_gram_rho(N, d, p->A, &p->rho))) goto done;
    p->eta_theorem = p->lambda_min / (6.0 * p->rho);
    p->mu = p->lambda_min * p->lambda_min / (12.0 * p->rho);
done:
    free(RX);
    free(rw);
    if (st) problem_free(p);
    return st;
}

/* D of a fixed vector u (rotated frame): ‖u − w*‖²_G. */
static double dist_G(const problem *p, size_t N, size_t d, const double *u, double *tmp_d, double *tmp_N)
{
    for (size_t j = 0; j < d; j++) tmp_d[j] = u[j] - p->wstar[j];
    return ls_gnorm2(N, d, p->A, tmp_d, tmp_N);
}

static int problem_ptq(const lsq_config *c, problem *p, double *rtn, double *gptq)
{
    const size_t N = c->N, d = c->d;
    double *q = malloc(d * sizeof *q), *t1 = malloc(d * sizeof *t1), *t2 = malloc(N * sizeof *t2);
    double *G = malloc(d * d * sizeof *G);
    int st = RS_OK;
    if (!q || !t1 || !t2 || !G) {
        st = RS_ERROR(RS_ENOMEM, "out of memory (GPTQ Hessian %zu x %zu)", d, d);
        goto done;
    }
    if ((st = qz_fake_f64(&c->wq, p->wstar, q, 1, d))) goto done;
    *rtn = dist_G(p, N, d, q, t1, t2);
    if (qz_is_identity(&c->wq)) {
        *gptq = *rtn;
        goto done;
    }
    /* G = A^T A / N (upper and lower filled) */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)N, 1.0 / (double)N, p->A, (int)d, 0.0, G, (int)d);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < i; j++) G[i * d + j] = G[j * d + i];
    memcpy(q, p->wstar, d * sizeof *q);
    if ((st = gptq_quantize_f64(&c->wq, q, 1, d, G, c->gptq_damp, 1, 128))) goto done;
    *gptq = dist_G(p, N, d, q, t1, t2);
done:
    free(q);
    free(t1);
    free(t2);
    free(G);
    return st;
}

/* ----------------------------------------------------------------- runs */

static size_t make_log_steps(size_t steps, size_t npoints, size_t *ts)
{
    size_t n = 0;
    for (size_t t = 0; t <= steps && t < 64; t++) ts[n++] = t;
    if (steps >= 64) {
        size_t rest = npoints > 64 ? npoints - 64 : 16;
        double r = pow((double)steps / 64.0, 1.0 / (double)rest);
        double x = 64.0;
        for (size_t k = 0; k < rest; k++) {
            x *= r;
            size_t t = (size_t)llround(x);
            if (t > steps) t = steps;
            if (t > ts[n - 1]) ts[n++] = t;
        }
        if (ts[n - 1] != steps) ts[n++] = steps;
    }
    return n;
}

typedef struct {
    double loss, D, eG, e2;
} metrics;

static void measure(const lsq_config *c, const problem *p, const double *v, double *qv, double *tmp_d,
                    double *tmp_N, metrics *m)
{
    const size_t N = c->N, d = c->d;
    qz_fake_f64(&c->wq, v, qv, 1, d);
    /* loss = 1/2 mean (<a_i, Q(v)> - y_i)^2 */
    cblas_dcopy((int)N, p->y, 1, tmp_N, 1);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)d, 1.0, p->A, (int)d, qv, 1, -1.0, tmp_N, 1);
    m->loss = 0.5 * cblas_ddot((int)N, tmp_N, 1, tmp_N, 1) / (double)N;
    m->D = dist_G(p, N, d, qv, tmp_d, tmp_N);
    for (size_t j = 0; j < d; j++) tmp_d[j] = qv[j] - v[j];
    m->e2 = cblas_ddot((int)d, tmp_d, 1, tmp_d, 1);
    m->eG = ls_gnorm2(N, d, p->A, tmp_d, tmp_N);
}

/* Adaptive choice (the RoSTE lower level) between identity (0) and Hadamard (1) for
 * the iterate w (original frame): weight error ‖Q_w(Rw) − Rw‖² + activation error. */
static int adaptive_choose(const lsq_config *c, const problem *pI, const problem *pH, const double *w, double *tmp)
{
    double eI, eH;
    qz_error_f64(&c->wq, w, 1, c->d, &eI, NULL);
    memcpy(tmp, w, c->d * sizeof *tmp);
    rot_apply_rows_f64(pH->R, tmp, 1, 1);
    qz_error_f64(&c->wq, tmp, 1, c->d, &eH, NULL);
    eI += pI->act_err;
    eH += pH->act_err;
    return eH < eI; /* ties -> identity */
}

typedef struct {
    metrics *m;       /* nlog entries */
    int ended_hadamard;
    int switches;
    uint64_t vhash;   /* FNV-1a over the iterate's bytes at every logged step */
    double *vfinal;   /* the final iterate (d), compared byte for byte */
} run_out;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static int run_one(const lsq_config *c, problem *probs, lsq_rot which, double eta_fixed, size_t steps,
                   const size_t *ts, size_t nlog, int seed_index, run_out *out)
{
    const size_t N = c->N, d = c->d;
    int st = RS_OK;
    lsq_ste *s = NULL;
    double *qv = malloc(d * sizeof *qv), *td = malloc(d * sizeof *td), *tN = malloc(N * sizeof *tN);
    double *w = malloc(d * sizeof *w);
    rs_rng *order = rs_rng_alloc(c->seed, 1000 + (uint64_t)seed_index);
    if (!qv || !td || !tN || !w || !order) {
        st = RS_ERROR(RS_ENOMEM, "out of memory in a run");
        goto done;
    }
    if ((st = lsq_ste_alloc(N, d, &s))) goto done;
    out->vhash = 1469598103934665603ull; /* FNV offset basis */
    problem *p;
    int cur = 0; /* adaptive: 0 identity, 1 Hadamard */
    if (which == LSQ_R_ADAPTIVE) {
        memset(w, 0, d * sizeof *w);
        cur = adaptive_choose(c, &probs[LSQ_R_NONE], &probs[LSQ_R_HADAMARD], w, td);
        p = &probs[cur ? LSQ_R_HADAMARD : LSQ_R_NONE];
    } else {
        p = &probs[which];
    }
    double eta = eta_fixed > 0 ? eta_fixed : p->eta_theorem;
    if ((st = lsq_ste_set(s, p->A, p->y, &c->wq, eta, c->batch, NULL))) goto done;
    size_t t = 0, li = 0;
    size_t T = c->reselect_every;
    int round = 1;
    while (1) {
        while (li < nlog && ts[li] == t) {
            measure(c, p, s->v, qv, td, tN, &out->m[li++]);
            out->vhash = fnv1a(out->vhash, s->v, d * sizeof *s->v);
        }
        if (t >= steps) break;
        size_t next = li < nlog ? ts[li] : steps;
        if (which == LSQ_R_ADAPTIVE && round < c->rounds) {
            size_t tr = (size_t)round * T;
            if (tr <= t) {
                /* re-choose on the current iterate; move v to the new frame */
                memcpy(w, s->v, d * sizeof *w);
                if (cur) rot_apply_rows_f64(probs[LSQ_R_HADAMARD].R, w, 1, 0); /* w = R^T v */
                int nw = adaptive_choose(c, &probs[LSQ_R_NONE], &probs[LSQ_R_HADAMARD], w, td);
                if (nw != cur) {
                    out->switches++;
                    cur = nw;
                    p = &probs[cur ? LSQ_R_HADAMARD : LSQ_R_NONE];
                    if (cur) rot_apply_rows_f64(p->R, w, 1, 1);
                    double e2 = eta_fixed > 0 ? eta_fixed : p->eta_theorem;
                    if ((st = lsq_ste_set(s, p->A, p->y, &c->wq, e2, c->batch, w))) goto done;
                }
                round++;
                continue;
            }
            if (tr < next) next = tr;
        }
        if ((st = lsq_ste_iterate(s, order, next - t))) goto done;
        t = next;
    }
    out->ended_hadamard = cur;
    memcpy(out->vfinal, s->v, d * sizeof *s->v);
done:
    lsq_ste_free(s);
    rs_rng_free(order);
    free(qv);
    free(td);
    free(tN);
    free(w);
    return st;
}

static void mean_se(const double *x, size_t stride, size_t n, double *mean, double *se)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m += x[i * stride];
    m /= (double)n;
    double v = 0;
    for (size_t i = 0; i < n; i++) v += (x[i * stride] - m) * (x[i * stride] - m);
    *mean = m;
    *se = n > 1 ? sqrt(v / (double)(n - 1) / (double)n) : 0.0;
}

void lsq_theorem_bound(const size_t *t, const double *eG, size_t n, double D0, double mu, double *bound)
{
    const double q = 1.0 - mu, K = 6.0 + 2.0 / mu;
    double S = eG[0] / q, pw = 1.0;
    bound[0] = D0 + K * S;
    for (size_t li = 1; li < n; li++) {
        for (size_t s = t[li - 1] + 1; s <= t[li]; s++) {
            double e = eG[li - 1] + (eG[li] - eG[li - 1]) * (double)(s - t[li - 1]) / (double)(t[li] - t[li - 1]);
            S = q * S + e / q;
            pw *= q;
        }
        bound[li] = pw * D0 + K * S;
    }
}

static int theorem_bound(lsq_rotres *r, double mu)
{
    size_t *t = malloc(r->nlog * sizeof *t);
    double *e = malloc(r->nlog * sizeof *e), *b = malloc(r->nlog * sizeof *b);
    if (!t || !e || !b) {
        free(t), free(e), free(b);
        return RS_ERROR(RS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < r->nlog; i++) {
        t[i] = r->log[i].t;
        e[i] = r->log[i].eG;
    }
    lsq_theorem_bound(t, e, r->nlog, r->log[0].D, mu, b);
    for (size_t i = 0; i < r->nlog; i++) r->log[i].bound = b[i];
    free(t), free(e), free(b);
    return RS_OK;
}

/* Σ_{k<h} q^k and Σ_{k<h} k q^k for q = 1 − mu, without a loop: closed forms through
 * expm1/log1p, or (mu h < 1e-3, where the second closed form cancels) the series in
 * L = log q to third order (relative error below 1e-10). */
static void geo_sums(double mu, size_t h, double *A0, double *A1)
{
    const double H = (double)h, L = log1p(-mu);
    if (mu * H < 1e-3) {
        double s1 = H * (H - 1) / 2, s2 = (H - 1) * H * (2 * H - 1) / 6, s3 = s1 * s1;
        double s4 = H * (H - 1) * (2 * H - 1) * (3 * H * H - 3 * H - 1) / 30;
        *A0 = H + L * s1 + L * L / 2 * s2 + L * L * L / 6 * s3;
        *A1 = s1 + L * s2 + L * L / 2 * s3 + L * L * L / 6 * s4;
    } else {
        double q = 1.0 - mu, qh = exp(H * L), qh1 = exp((H - 1) * L);
        *A0 = -expm1(H * L) / mu;
        *A1 = q * (1.0 - H * qh1 + (H - 1) * qh) / (mu * mu);
    }
}

/* The recursion model at the logged steps for one mu: P[i] = (1−mu)^t_i D_0 and
 * S[i] = Σ_{s<t_i} (1−mu)^{t_i−1−s} e_s, e linear between logged steps: over an interval
 * of h steps from e0 to e1, S ← q^h S + e0 A0 + (e1 − e0)/h ((h−1) A0 − A1). */
static void recur_terms(const size_t *t, const double *e, size_t n, double D0, double mu, double *P, double *S)
{
    const double L = log1p(-mu);
    double acc = 0.0;
    P[0] = D0;
    S[0] = 0.0;
    for (size_t li = 1; li < n; li++) {
        const size_t h = t[li] - t[li - 1];
        double A0, A1;
        geo_sums(mu, h, &A0, &A1);
        acc = exp((double)h * L) * acc + e[li - 1] * A0 + (e[li] - e[li - 1]) / (double)h * (((double)h - 1) * A0 - A1);
        P[li] = exp((double)t[li] * L) * D0;
        S[li] = acc;
    }
}

/* For one mu: the best kappa >= 0 and the objective Σ ((P + kappa S − D)/D)². */
static double recur_objective(const size_t *t, const double *D, const double *e, size_t n, double mu, double *P,
                              double *S, double *kappa)
{
    recur_terms(t, e, n, D[0], mu, P, S);
    double ab = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(D[i] > 0) || !isfinite(D[i])) continue;
        double a = (P[i] - D[i]) / D[i], b = S[i] / D[i];
        ab += a * b;
        bb += b * b;
    }
    double k = bb > 0 ? -ab / bb : 0.0;
    if (!(k > 0)) k = 0.0;
    double f = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(D[i] > 0) || !isfinite(D[i])) continue;
        double r = (P[i] + k * S[i] - D[i]) / D[i];
        f += r * r;
    }
    *kappa = k;
    return f;
}

int lsq_recursion_fit(const size_t *t, const double *D, const double *eG, size_t n, double *mu, double *kappa,
                      double *model)
{
    *mu = *kappa = NAN;
    size_t usable = 0, efin = 0;
    for (size_t i = 0; i < n; i++) {
        usable += D[i] > 0 && isfinite(D[i]);
        efin += isfinite(eG[i]) != 0;
    }
    if (n < 3 || usable < 3 || !(D[0] > 0) || !isfinite(D[0]) || efin < n)
        return RS_ERROR(RS_EINVAL, "recursion fit needs >= 3 logged steps with finite D > 0 (got %zu of %zu)", usable, n);
    for (size_t i = 1; i < n; i++)
        if (t[i] <= t[i - 1]) return RS_ERROR(RS_EINVAL, "recursion fit: logged steps must increase");
    double *P = malloc(n * sizeof *P), *S = malloc(n * sizeof *S);
    if (!P || !S) {
        free(P), free(S);
        return RS_ERROR(RS_ENOMEM, "out of memory");
    }
    /* grid over log10 mu in [-9, log10 0.5], 8 points per decade */
    const double lo = -9.0, hi = log10(0.5);
    const int ng = (int)ceil((hi - lo) * 8.0) + 1;
    double best = INFINITY, bx = lo, k;
    for (int g = 0; g < ng; g++) {
        double x = lo + (hi - lo) * g / (ng - 1);
        double f = recur_objective(t, D, eG, n, pow(10.0, x), P, S, &k);
        if (f < best) best = f, bx = x;
    }
    /* golden section on [bx − h, bx + h] */
    const double h = (hi - lo) / (ng - 1), gr = 0.5 * (sqrt(5.0) - 1.0);
    double a = fmax(lo, bx - h), b = fmin(hi, bx + h);
    double x1 = b - gr * (b - a), x2 = a + gr * (b - a);
    double f1 = recur_objective(t, D, eG, n, pow(10.0, x1), P, S, &k);
    double f2 = recur_objective(t, D, eG, n, pow(10.0, x2), P, S, &k);
    for (int it = 0; it < 60 && b - a > 1e-10; it++) {
        if (f1 < f2) {
            b = x2, x2 = x1, f2 = f1;
            x1 = b - gr * (b - a);
            f1 = recur_objective(t, D, eG, n, pow(10.0, x1), P, S, &k);
        } else {
            a = x1, x1 = x2, f1 = f2;
            x2 = a + gr * (b - a);
            f2 = recur_objective(t, D, eG, n, pow(10.0, x2), P, S, &k);
        }
    }
    double x = f1 < f2 ? x1 : x2;
    if (fmin(f1, f2) > best) x = bx;
    *mu = pow(10.0, x);
    recur_objective(t, D, eG, n, *mu, P, S, kappa);
    if (model)
        for (size_t i = 0; i < n; i++) model[i] = P[i] + *kappa * S[i];
    free(P);
    free(S);
    return RS_OK;
}

/* Duplicate runs: run m of rotation index ri repeats a run of an earlier rotation when
 * its trajectory is the same: the iterates at every logged step hash the same, the final
 * iterates are byte-identical, and so are the logged loss and D. (The e-terms are left
 * out of the comparison: at t = 1 they are rounding residues, ~1e-36, whose last bits can
 * depend on memory alignment.) */
static void find_duplicates(lsq_point *pt, const int *rots, int nr, int M, const run_out *outs, size_t nlog, size_t d)
{
    for (int ri = 0; ri < nr; ri++) {
        lsq_rotres *res = &pt->rot[rots[ri]];
        res->ndup = 0;
        int all_of = -1, all = 1;
        for (int m = 0; m < M; m++) {
            const run_out *o = &outs[(size_t)ri * (size_t)M + (size_t)m];
            res->dup_rot[m] = res->dup_seed[m] = -1;
            for (int rj = 0; rj < ri && res->dup_rot[m] < 0; rj++)
                for (int mj = 0; mj < M; mj++) {
                    const run_out *p = &outs[(size_t)rj * (size_t)M + (size_t)mj];
                    int same = p->vhash == o->vhash && memcmp(p->vfinal, o->vfinal, d * sizeof *o->vfinal) == 0;
                    for (size_t li = 0; same && li < nlog; li++)
                        same = memcmp(&p->m[li].loss, &o->m[li].loss, sizeof o->m[li].loss) == 0 &&
                               memcmp(&p->m[li].D, &o->m[li].D, sizeof o->m[li].D) == 0;
                    if (same) {
                        res->dup_rot[m] = rots[rj];
                        res->dup_seed[m] = mj;
                        break;
                    }
                }
            if (res->dup_rot[m] >= 0) res->ndup++;
            if (res->dup_rot[m] < 0 || (all_of >= 0 && res->dup_rot[m] != all_of)) all = 0;
            else all_of = res->dup_rot[m];
        }
        res->dup_of = all ? all_of : -1;
    }
}

/* Thm 4.3 with the measured rate, and the measured recursion, on the logged means. */
static void measured_constants(lsq_rotres *r)
{
    size_t n = r->nlog;
    size_t *t = malloc(n * sizeof *t);
    double *D = malloc(n * sizeof *D), *e = malloc(n * sizeof *e), *m = malloc(n * sizeof *m), *b = malloc(n * sizeof *b);
    r->mu_meas = r->kappa_meas = r->bound_mrate_final = r->recur_final = NAN;
    for (size_t i = 0; i < n; i++) r->log[i].bound_mrate = r->log[i].recur = NAN;
    if (t && D && e && m && b) {
        for (size_t i = 0; i < n; i++) {
            t[i] = r->log[i].t;
            D[i] = r->log[i].D;
            e[i] = r->log[i].eG;
        }
        if (lsq_recursion_fit(t, D, e, n, &r->mu_meas, &r->kappa_meas, m) == RS_OK) {
            lsq_theorem_bound(t, e, n, D[0], r->mu_meas, b);
            for (size_t i = 0; i < n; i++) {
                r->log[i].recur = m[i];
                r->log[i].bound_mrate = b[i];
            }
            r->recur_final = m[n - 1];
            r->bound_mrate_final = b[n - 1];
        }
    }
    free(t), free(D), free(e), free(m), free(b);
}

/* ------------------------------------------------------------ one point */

/* What one point works with between its steps: the data, the rotations, one problem per
 * fixed rotation (adaptive uses those of none and Hadamard), the logged steps and every
 * run's outputs (rotation index ri of rots, seed m: outs[ri * seeds + m]). */
typedef struct {
    double *X, *wt;
    rot *RH, *RHaar;
    problem probs[LSQ_NROT];
    size_t *ts, nlog;
    int rots[LSQ_NROT], nr;
    run_out *outs;
    metrics *mbuf;
    double *vbuf;
} point_work;

static void point_work_free(point_work *w)
{
    for (int r = 0; r < LSQ_NROT; r++) problem_free(&w->probs[r]);
    rot_free(w->RH);
    rot_free(w->RHaar);
    free(w->X);
    free(w->wt);
    free(w->ts);
    free(w->outs);
    free(w->mbuf);
    free(w->vbuf);
}

/* Step 1, the problems: draw the data, build the rotations the set needs (adaptive chooses
 * between none and Hadamard, so it needs both) and one problem per fixed rotation. */
static int point_setup(const lsq_config *c, point_work *w)
{
    const size_t N = c->N, d = c->d;
    int st = RS_OK;
    w->X = malloc(N * d * sizeof *w->X);
    w->wt = malloc(d * sizeof *w->wt);
    if (!w->X || !w->wt) return RS_ERROR(RS_ENOMEM, "out of memory for the data (N=%zu, d=%zu)", N, d);
    draw_data(c, w->X, w->wt);

    unsigned need = c->rot_mask;
    if (need & (1u << LSQ_R_ADAPTIVE)) need |= (1u << LSQ_R_NONE) | (1u << LSQ_R_HADAMARD);
    if (need & (1u << LSQ_R_HADAMARD)) {
        rs_rng *rr = rs_rng_alloc(c->seed, RS_STREAM_ROTATION);
        st = rot_alloc(ROT_RANDOM_HADAMARD, d, 1, rr, &w->RH);
        rs_rng_free(rr);
        if (st) return st;
    }
    if (need & (1u << LSQ_R_HAAR)) {
        rs_rng *rr = rs_rng_alloc(c->seed, RS_STREAM_ROTATION + 100);
        st = rot_alloc(ROT_HAAR, d, 1, rr, &w->RHaar);
        rs_rng_free(rr);
        if (st) return st;
    }
    rot *Rs[LSQ_NROT] = {NULL, w->RH, w->RHaar, NULL};
    for (int r = 0; r < LSQ_R_ADAPTIVE; r++) {
        if (!(need & (1u << r))) continue;
        if ((st = problem_build(c, w->X, w->wt, Rs[r], &w->probs[r]))) return st;
    }
    return RS_OK;
}

/* Step 2, the facts: for each rotation of the set, its problem's facts (adaptive: of the
 * rotation it chooses first), step size, predicted steps and PTQ distances; then the
 * number of steps, the same for every rotation so that curves compare (pt->steps). */
static int point_facts(const lsq_config *c, point_work *w, lsq_point *pt)
{
    const size_t d = c->d;
    problem *probs = w->probs;
    int st = RS_OK;
    size_t steps = c->steps;
    for (int r = 0; r < LSQ_NROT; r++) {
        if (!(c->rot_mask & (1u << r))) continue;
        lsq_rotres *res = &pt->rot[r];
        res->present = 1;
        const problem *p = &probs[r == LSQ_R_ADAPTIVE ? LSQ_R_NONE : r];
        if (r == LSQ_R_ADAPTIVE) {
            double *zero = calloc(d, sizeof *zero), *tmp = malloc(d * sizeof *tmp);
            res->choice_hadamard_first = adaptive_choose(c, &probs[LSQ_R_NONE], &probs[LSQ_R_HADAMARD], zero, tmp);
            free(zero);
            free(tmp);
            if (res->choice_hadamard_first) p = &probs[LSQ_R_HADAMARD];
        }
        res->rank = p->rank;
        res->interp = p->interp;
        res->resid = p->resid;
        res->lambda_min = p->lambda_min;
        res->lambda_max = p->lambda_max;
        res->rho = p->rho;
        res->mu = p->mu;
        res->eta_theorem = p->eta_theorem;
        res->eta = c->eta > 0 ? c->eta : p->eta_theorem;
        res->act_err = p->act_err;
        double pred = p->mu > 0 ? ceil(log(1e6) / p->mu) : INFINITY;
        res->steps_predicted = pred > 1e15 ? (size_t)1e15 : (size_t)pred;
        if (c->steps == 0) {
            size_t s = res->steps_predicted < c->max_steps ? res->steps_predicted : c->max_steps;
            if (s > steps) steps = s;
        }
        res->bound_valid = !(c->eta > 0) && !(r == LSQ_R_ADAPTIVE && c->rounds > 1) && p->mu > 0 && p->mu < 1;
        if ((st = qz_error_f64(&c->wq, p->wstar, 1, d, &res->wstar_err, NULL))) return st;
        if (r != LSQ_R_ADAPTIVE && (st = problem_ptq(c, &probs[r], &res->ptq_rtn, &res->ptq_gptq))) return st;
    }
    if (pt->rot[LSQ_R_ADAPTIVE].present) {
        lsq_rotres *a = &pt->rot[LSQ_R_ADAPTIVE];
        const lsq_rotres *src = &pt->rot[a->choice_hadamard_first ? LSQ_R_HADAMARD : LSQ_R_NONE];
        if (src->present) {
            a->ptq_rtn = src->ptq_rtn;
            a->ptq_gptq = src->ptq_gptq;
        } else {
            problem *pp = &probs[a->choice_hadamard_first ? LSQ_R_HADAMARD : LSQ_R_NONE];
            if ((st = problem_ptq(c, pp, &a->ptq_rtn, &a->ptq_gptq))) return st;
        }
    }
    if (steps == 0) steps = 1;
    pt->steps = steps;
    return RS_OK;
}

/* Step 3, the runs: the logged steps, then the Monte Carlo runs in parallel over
 * (rotation, seed) on a team of run_threads (BLAS stays single-threaded inside them). */
static int point_runs(const lsq_config *c, point_work *w, lsq_point *pt, int run_threads, lsq_progress_fn *progress,
                      void *ctx)
{
    const size_t d = c->d, steps = pt->steps;
    size_t npts = (c->log_points < 80 ? 80 : c->log_points) + 70;
    w->ts = malloc(npts * sizeof *w->ts);
    if (!w->ts) return RS_ERROR(RS_ENOMEM, "out of memory");
    const size_t *ts = w->ts;
    const size_t nlog = w->nlog = make_log_steps(steps, c->log_points, w->ts);
    const int M = c->seeds;
    int *rots = w->rots, nr = 0;
    for (int r = 0; r < LSQ_NROT; r++)
        if (pt->rot[r].present) rots[nr++] = r;
    w->nr = nr;
    size_t nruns = (size_t)nr * (size_t)M;
    run_out *outs = w->outs = calloc(nruns, sizeof *outs);
    w->mbuf = calloc(nruns * nlog, sizeof *w->mbuf);
    w->vbuf = calloc(nruns * d, sizeof *w->vbuf);
    if (!outs || !w->mbuf || !w->vbuf)
        return RS_ERROR(RS_ENOMEM, "out of memory for %zu runs x %zu log points", nruns, nlog);
    for (size_t k = 0; k < nruns; k++) {
        outs[k].m = w->mbuf + k * nlog;
        outs[k].vfinal = w->vbuf + k * d;
    }
    /* An adaptive run that keeps its first choice (one round) is the run of the rotation it
     * chose: the same problem, step size and sampling order, so the same bytes. When that
     * rotation is in the set, adaptive's runs are copied from it instead of recomputed
     * (test_lsq checks a recomputed adaptive run against the copy); the duplicate check
     * (point_summarise) then marks them, as it would after a recomputation. */
    int adapt_copy = -1, adapt_ri = -1, src_ri = -1;
    if (pt->rot[LSQ_R_ADAPTIVE].present && c->rounds <= 1 && !c->no_adaptive_copy) {
        int src = pt->rot[LSQ_R_ADAPTIVE].choice_hadamard_first ? LSQ_R_HADAMARD : LSQ_R_NONE;
        for (int ri = 0; ri < nr; ri++) {
            if (rots[ri] == LSQ_R_ADAPTIVE) adapt_ri = ri;
            if (rots[ri] == src) src_ri = ri;
        }
        if (src_ri >= 0) adapt_copy = src;
    }
    problem *probs = w->probs;
    int fail = RS_OK;
    size_t done_runs = 0;
    /* Runs are parallel (BLAS is single-threaded, set by lsq_run_point). */
    char failmsg[512] = "";
#pragma omp parallel for schedule(dynamic, 1) num_threads(run_threads)
    for (size_t k = 0; k < nruns; k++) {
        int r = rots[k / (size_t)M], m = (int)(k % (size_t)M);
        int s = r == LSQ_R_ADAPTIVE && adapt_copy >= 0
                    ? RS_OK
                    : run_one(c, probs, (lsq_rot)r, c->eta, steps, ts, nlog, m, &outs[k]);
#pragma omp critical
        {
            if (s && !fail) {
                fail = s;
                snprintf(failmsg, sizeof failmsg, "%s", rs_last_error());
            }
            done_runs++;
            if (progress) progress(ctx, done_runs, nruns);
        }
    }
    if (fail) return RS_ERROR(fail, "%s", failmsg);
    if (adapt_copy >= 0) {
        for (int m = 0; m < M; m++) {
            const run_out *o = &outs[(size_t)src_ri * (size_t)M + (size_t)m];
            run_out *a = &outs[(size_t)adapt_ri * (size_t)M + (size_t)m];
            memcpy(a->m, o->m, nlog * sizeof *a->m);
            memcpy(a->vfinal, o->vfinal, d * sizeof *a->vfinal);
            a->vhash = o->vhash;
            a->ended_hadamard = adapt_copy == LSQ_R_HADAMARD;
            a->switches = 0;
        }
    }
    return RS_OK;
}

/* Step 4 for one rotation, the summary of its M runs o[0..M-1]: Monte Carlo mean and SE of
 * every logged metric, the final values per seed with their means and 95% intervals,
 * adaptive's switches; then Theorem 4.3's bound where it applies (with the logged steps whose
 * mean D exceeds it by more than 2 SE) and the measured constants. */
static int summarise_rotation(const run_out *o, int M, const size_t *ts, size_t nlog, lsq_rotres *res)
{
    res->nlog = nlog;
    res->log = calloc(nlog, sizeof *res->log);
    res->final_loss = malloc((size_t)M * sizeof(double));
    res->final_D = malloc((size_t)M * sizeof(double));
    res->final_eG = malloc((size_t)M * sizeof(double));
    res->final_e2 = malloc((size_t)M * sizeof(double));
    res->dup_rot = malloc((size_t)M * sizeof(int));
    res->dup_seed = malloc((size_t)M * sizeof(int));
    double *tmp = malloc((size_t)M * sizeof(double));
    if (!res->log || !res->final_loss || !res->final_D || !res->final_eG || !res->final_e2 || !res->dup_rot ||
        !res->dup_seed || !tmp) {
        free(tmp);
        return RS_ERROR(RS_ENOMEM, "out of memory");
    }
    for (size_t li = 0; li < nlog; li++) {
        lsq_logpt *L = &res->log[li];
        double se;
        L->t = ts[li];
        for (int m = 0; m < M; m++) tmp[m] = o[m].m[li].loss;
        mean_se(tmp, 1, (size_t)M, &L->loss, &L->loss_se);
        for (int m = 0; m < M; m++) tmp[m] = o[m].m[li].D;
        mean_se(tmp, 1, (size_t)M, &L->D, &L->D_se);
        for (int m = 0; m < M; m++) tmp[m] = o[m].m[li].eG;
        mean_se(tmp, 1, (size_t)M, &L->eG, &L->eG_se);
        for (int m = 0; m < M; m++) tmp[m] = o[m].m[li].e2;
        mean_se(tmp, 1, (size_t)M, &L->e2, &se);
        L->bound = NAN;
    }
    double sw = 0, fh = 0;
    for (int m = 0; m < M; m++) {
        res->final_loss[m] = o[m].m[nlog - 1].loss;
        res->final_D[m] = o[m].m[nlog - 1].D;
        res->final_eG[m] = o[m].m[nlog - 1].eG;
        res->final_e2[m] = o[m].m[nlog - 1].e2;
        sw += o[m].switches;
        fh += o[m].ended_hadamard;
    }
    res->switches_mean = sw / M;
    res->frac_hadamard_final = fh / M;
    double se;
    mean_se(res->final_loss, 1, (size_t)M, &res->final_loss_mean, &se);
    res->final_loss_ci = 1.96 * se;
    mean_se(res->final_D, 1, (size_t)M, &res->final_D_mean, &se);
    res->final_D_ci = 1.96 * se;
    mean_se(res->final_eG, 1, (size_t)M, &res->final_eG_mean, &se);
    mean_se(res->final_e2, 1, (size_t)M, &res->final_e2_mean, &se);
    free(tmp);
    res->violations = 0;
    res->bound_final = NAN;
    if (res->bound_valid) {
        int st = theorem_bound(res, res->mu);
        if (st) return st;
        for (size_t li = 0; li < nlog; li++)
            if (res->log[li].D > res->log[li].bound + 2.0 * res->log[li].D_se) res->violations++;
        res->bound_final = res->log[nlog - 1].bound;
    }
    measured_constants(res);
    return RS_OK;
}

/* Step 4, the summary: each rotation's runs summarised, then the duplicate runs marked. */
static int point_summarise(const lsq_config *c, const point_work *w, lsq_point *pt)
{
    const int M = c->seeds;
    for (int ri = 0; ri < w->nr; ri++) {
        int st = summarise_rotation(w->outs + (size_t)ri * (size_t)M, M, w->ts, w->nlog, &pt->rot[w->rots[ri]]);
        if (st) return st;
    }
    find_duplicates(pt, w->rots, w->nr, M, w->outs, w->nlog, c->d);
    return RS_OK;
}

int lsq_run_point(const lsq_config *c, lsq_point *pt, lsq_progress_fn *progress, void *ctx)
{
    int st = lsq_config_check(c);
    if (st) return st;
    memset(pt, 0, sizeof *pt);
    pt->cfg = *c;
    /* BLAS single-threaded for the whole point. Its linear algebra is small (d x d at most)
     * and the runs are parallel over OpenMP (point_runs); a threaded BLAS (OpenBLAS's OpenMP
     * build) opens a team per call, and LAPACK's unblocked panels (the Haar QR, GPTQ's
     * Cholesky inverse) make thousands of short calls: on a loaded 2-core machine each
     * waited for a descheduled thread, and the set-up took up to 8 s instead of 0.1 s.
     * In that build openblas_set_num_threads() also sets OpenMP's thread count, so the
     * runs' team size is taken first and given to point_runs explicitly. */
    const int run_threads = omp_get_max_threads();
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    point_work w;
    memset(&w, 0, sizeof w);
    if (!(st = point_setup(c, &w)) && !(st = point_facts(c, &w, pt)) &&
        !(st = point_runs(c, &w, pt, run_threads, progress, ctx)))
        st = point_summarise(c, &w, pt);
    point_work_free(&w);
    openblas_set_num_threads(blas_threads);
    if (st) lsq_point_free(pt);
    return st;
}

void lsq_point_free(lsq_point *p)
{
    for (int r = 0; r < LSQ_NROT; r++) {
        lsq_rotres *res = &p->rot[r];
        free(res->log);
        free(res->final_loss);
        free(res->final_D);
        free(res->final_eG);
        free(res->final_e2);
        free(res->dup_rot);
        free(res->dup_seed);
        res->dup_rot = res->dup_seed = NULL;
        res->log = NULL;
        res->final_loss = res->final_D = res->final_eG = res->final_e2 = NULL;
    }
}

/* ---------------------------------------------------------- Prop. 4.4 */

int lsq_prop44(const lsq_config *c, size_t nvec, double *out)
{
    const size_t d = c->d;
    const int b = c->wq.bits;
    if (b < 2 || b > 8) return RS_ERROR(RS_EINVAL, "Prop. 4.4 needs 2..8 weight bits (got %d)", b);
    qz_spec q = qz_spec_make(b, QZ_SYM, QZ_TENSOR, 0);
    const double L = (double)((1 << (b - 1)) - 1);
    rs_rng *rt = rs_rng_alloc(c->seed, 7), *rr = rs_rng_alloc(c->seed, 8);
    double *w = malloc(d * sizeof *w), *hw = malloc(d * sizeof *hw);
    size_t *perm = malloc(d * sizeof *perm);
    int st = RS_OK;
    if (!rt || !rr || !w || !hw || !perm) {
        st = RS_ERROR(RS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t v = 0; v < nvec; v++) {
        draw_teacher(c, rt, perm, w);
        double n2 = 0, mx = 0;
        for (size_t j = 0; j < d; j++) {
            n2 += w[j] * w[j];
            if (w[j] * w[j] > mx) mx = w[j] * w[j];
        }
        double en, er;
        if ((st = qz_error_f64(&q, w, 1, d, &en, NULL))) goto done;
        rot *R = NULL;
        if ((st = rot_alloc(ROT_RANDOM_HADAMARD, d, 1, rr, &R))) goto done;
        memcpy(hw, w, d * sizeof *hw);
        st = rot_apply_rows_f64(R, hw, 1, 1);
        rot_free(R);
        if (st) goto done;
        if ((st = qz_error_f64(&q, hw, 1, d, &er, NULL))) goto done;
        double *o = out + v * 6;
        o[0] = n2;
        o[1] = mx;
        o[2] = en;
        o[3] = (double)d * mx / (4.0 * L * L);
        o[4] = er;
        o[5] = log(4.0 * (double)d / c->delta) * n2 / (2.0 * L * L);
    }
done:
    rs_rng_free(rt);
    rs_rng_free(rr);
    free(w);
    free(hw);
    free(perm);
    return st;
}

/* ------------------------------------------------------------------ fit */

size_t lsq_loglog_fit(const double *x, const double *y, size_t n, double *slope, double *intercept,
                      double *pearson, double *spearman)
{
    double *lx = malloc((n + 1) * sizeof *lx), *ly = malloc((n + 1) * sizeof *ly);
    double *work = malloc((2 * n + 1) * sizeof *work);
    size_t k = 0;
    *slope = *intercept = *pearson = *spearman = NAN;
    if (!lx || !ly || !work) goto done;
    for (size_t i = 0; i < n; i++)
        if (x[i] > 0 && y[i] > 0 && isfinite(x[i]) && isfinite(y[i])) {
            lx[k] = log10(x[i]);
            ly[k] = log10(y[i]);
            k++;
        }
    if (k >= 3) {
        double c0, c1, cov00, cov01, cov11, ss;
        gsl_fit_linear(lx, 1, ly, 1, k, &c0, &c1, &cov00, &cov01, &cov11, &ss);
        *slope = c1;
        *intercept = c0;
        *pearson = gsl_stats_correlation(lx, 1, ly, 1, k);
        *spearman = gsl_stats_spearman(lx, 1, ly, 1, k, work);
    }
done:
    free(lx);
    free(ly);
    free(work);
    return k;
}
