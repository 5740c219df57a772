/* Tests of the least-squares simulator: STE-SGD iteration, Theorem 4.3's bound,
 * the experiment's invariants. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"
#include "quant/rng.h"
#include "sim/lsq.h"
#include "solvers/linalg.h"
#include "solvers/ste_sgd.h"
#include "tests/check.h"

/* Hand-computed: mu = 0.5 (q = 0.5, K = 6 + 2/mu = 10), D0 = 1, e = 0.1 at every step.
 * S_0 = e/q = 0.2, B_0 = 1 + 10*0.2 = 3; S_1 = q S_0 + e/q = 0.1 + 0.2 = 0.3,
 * B_1 = 0.5 + 3 = 3.5; S_2 = 0.15 + 0.2 = 0.35, B_2 = 0.25 + 3.5 = 3.75. */
static void test_bound_hand(void)
{
    size_t t[3] = {0, 1, 2};
    double e[3] = {0.1, 0.1, 0.1}, b[3];
    lsq_theorem_bound(t, e, 3, 1.0, 0.5, b);
    CHECK_NEAR(b[0], 3.0, 1e-14, "B_0 hand-computed");
    CHECK_NEAR(b[1], 3.5, 1e-14, "B_1 hand-computed");
    CHECK_NEAR(b[2], 3.75, 1e-14, "B_2 hand-computed");
    /* Logging only t = 0 and 2 with a linear e: e_1 is interpolated to 0.2.
     * e = (0, ., 0.4): S_0 = 0, S_1 = 0 + 0.2/0.5 = 0.4, S_2 = 0.2 + 0.8 = 1.0, B_2 = 0.25 + 10 = 10.25 */
    size_t t2[2] = {0, 2};
    double e2[2] = {0.0, 0.4}, b2[2];
    lsq_theorem_bound(t2, e2, 2, 1.0, 0.5, b2);
    CHECK_NEAR(b2[0], 1.0, 1e-14, "B_0 with zero e");
    CHECK_NEAR(b2[1], 10.25, 1e-13, "B_2 with interpolated e_1");
    /* the same as logging every step with the interpolated value */
    size_t t3[3] = {0, 1, 2};
    double e3[3] = {0.0, 0.2, 0.4}, b3[3];
    lsq_theorem_bound(t3, e3, 3, 1.0, 0.5, b3);
    CHECK_NEAR(b2[1], b3[2], 1e-14, "interpolated bound = bound from every step");
}

/* Random full-row-rank problem. */
static void make_problem(size_t N, size_t d, uint64_t seed, double *A, double *y)
{
    rs_rng *r = rs_rng_alloc(seed, 1);
    for (size_t i = 0; i < N * d; i++) A[i] = rs_rng_gaussian(r, 1.0) / sqrt((double)d);
    for (size_t i = 0; i < N; i++) y[i] = rs_rng_gaussian(r, 1.0);
    rs_rng_free(r);
}

/* With identity quantizers STE-SGD is SGD on an interpolable problem: it converges
 * linearly to the min-norm interpolator (starting from 0 it stays in the row space). */
static void test_fp_linear_convergence(void)
{
    const size_t N = 16, d = 64;
    double *A = malloc(N * d * sizeof *A), *y = malloc(N * sizeof *y), *ws = malloc(d * sizeof *ws);
    double *tmp = malloc(N * sizeof *tmp), *u = malloc(d * sizeof *u);
    make_problem(N, d, 7, A, y);
    size_t rank;
    CHECK(ls_minnorm(N, d, A, y, -1, ws, &rank, NULL) == 0 && rank == N, "min-norm interpolator, rank %zu", rank);
    double lmin, lmax, rho;
    size_t r2;
    ls_gram_spectrum(N, d, A, -1, NULL, &r2, &lmin, &lmax);
    ls_gram_rho(N, d, A, &rho);
    double eta = lmin / (6 * rho), mu = lmin * lmin / (12 * rho);
    qz_spec id = qz_spec_make(16, QZ_SYM, QZ_TENSOR, 0);
    lsq_ste *s;
    CHECK(lsq_ste_alloc(N, d, &s) == 0, "alloc");
    lsq_ste_set(s, A, y, &id, eta, 1, NULL);
    rs_rng *order = rs_rng_alloc(3, 3);
    double D[6];
    const size_t chunk = (size_t)(0.7 / mu); /* (1-mu)^chunk ~ 0.5: the theorem's rate */
    for (int k = 0; k < 6; k++) {
        for (size_t j = 0; j < d; j++) u[j] = s->v[j] - ws[j];
        D[k] = ls_gnorm2(N, d, A, u, tmp);
        lsq_ste_iterate(s, order, chunk);
    }
    /* linear: D falls at least as fast as the theorem's (1 - mu)^t, every chunk */
    int linear = 1;
    for (int k = 1; k < 6; k++)
        if (!(D[k] <= D[k - 1] * 0.6)) linear = 0;
    CHECK(linear, "D_t falls geometrically: %.3g %.3g %.3g %.3g %.3g %.3g (chunks of %zu steps)", D[0], D[1], D[2],
          D[3], D[4], D[5], chunk);
    /* run to convergence: the iterate reaches the interpolator */
    lsq_ste_iterate(s, order, 60 * chunk);
    double dist = 0, nrm = 0;
    for (size_t j = 0; j < d; j++) {
        dist += (s->v[j] - ws[j]) * (s->v[j] - ws[j]);
        nrm += ws[j] * ws[j];
    }
    CHECK(sqrt(dist / nrm) < 1e-6, "SGD reaches the min-norm interpolator: relative distance %.3g", sqrt(dist / nrm));

    /* fast iteration = reference iteration (same draws) */
    qz_spec q4 = qz_spec_make(4, QZ_SYM, QZ_TENSOR, 0);
    lsq_ste *s2;
    lsq_ste_alloc(N, d, &s2);
    lsq_ste_set(s, A, y, &q4, 0.05, 3, NULL);
    lsq_ste_set(s2, A, y, &q4, 0.05, 3, NULL);
    rs_rng *o1 = rs_rng_alloc(5, 5), *o2 = rs_rng_alloc(5, 5);
    lsq_ste_iterate(s, o1, 500);
    lsq_ste_iterate_ref(s2, o2, 500);
    double md = 0;
    for (size_t j = 0; j < d; j++) md = fmax(md, fabs(s->v[j] - s2->v[j]));
    CHECK(md < 1e-9, "fast STE-SGD = reference (4-bit, batch 3, 500 steps): max diff %.3g", md);
    /* bad arguments */
    CHECK(lsq_ste_set(s, A, y, &q4, -1, 1, NULL) != 0, "negative step size rejected");
    CHECK(lsq_ste_set(s, A, y, &q4, 0.1, N + 1, NULL) != 0, "batch > N rejected");
    rs_rng_free(o1);
    rs_rng_free(o2);
    rs_rng_free(order);
    lsq_ste_free(s);
    lsq_ste_free(s2);
    free(A), free(y), free(ws), free(tmp), free(u);
}

/* A small experiment: invariants the simulator must keep. */
static void test_experiment(void)
{
    lsq_config c;
    lsq_config_default(&c);
    c.d = 128;
    c.N = 32;
    c.seeds = 3;
    c.max_steps = 20000;
    c.log_points = 60;
    lsq_point p;
    CHECK(lsq_run_point(&c, &p, NULL, NULL) == 0, "small experiment runs");
    for (int r = 0; r < LSQ_NROT; r++) {
        const lsq_rotres *R = &p.rot[r];
        CHECK(R->present, "%s present", lsq_rot_name(r));
        CHECK(R->interp && R->rank == c.N, "%s: A4.2 holds (rank %zu)", lsq_rot_name(r), R->rank);
        CHECK(R->log[0].t == 0 && R->log[R->nlog - 1].t == p.steps, "%s: log spans 0..%zu", lsq_rot_name(r), p.steps);
        /* w^0 = 0: D_0 = ||w*||_G^2 and e(0) = 0 */
        CHECK(R->log[0].eG == 0 && R->log[0].D > 0, "%s: D_0 = %.3g > 0, e_0 = 0", lsq_rot_name(r), R->log[0].D);
        CHECK(R->violations == 0, "%s: Theorem 4.3 holds at all %zu logged steps", lsq_rot_name(r), R->nlog);
        CHECK(R->log[R->nlog - 1].D < 0.5 * R->log[0].D, "%s: D falls (%.3g -> %.3g)", lsq_rot_name(r), R->log[0].D,
              R->log[R->nlog - 1].D);
        /* loss = D/2 exactly when interpolation holds */
        CHECK(fabs(R->log[R->nlog - 1].loss - 0.5 * R->log[R->nlog - 1].D) <= 1e-9 * R->log[0].D,
              "%s: loss = D/2 under interpolation", lsq_rot_name(r));
        CHECK(R->ptq_gptq <= R->ptq_rtn * (1 + 1e-12), "%s: GPTQ(w*) D %.3g <= RTN(w*) D %.3g", lsq_rot_name(r),
              R->ptq_gptq, R->ptq_rtn);
    }
    /* K = 1 adaptive at w = 0 chooses by activation error alone */
    int expect = p.rot[LSQ_R_HADAMARD].act_err < p.rot[LSQ_R_NONE].act_err;
    CHECK(p.rot[LSQ_R_ADAPTIVE].choice_hadamard_first == expect, "adaptive first choice follows the activation error");
    CHECK(fabs(p.rot[LSQ_R_ADAPTIVE].final_D_mean - p.rot[expect ? LSQ_R_HADAMARD : LSQ_R_NONE].final_D_mean) <= 0,
          "adaptive (K=1) = the rotation it chose, run for run");
    /* determinism */
    lsq_point p2;
    lsq_run_point(&c, &p2, NULL, NULL);
    CHECK(memcmp(p.rot[LSQ_R_HAAR].final_D, p2.rot[LSQ_R_HAAR].final_D, (size_t)c.seeds * sizeof(double)) == 0,
          "same seed, same results");
    lsq_point_free(&p2);
    lsq_point_free(&p);

    /* bad configurations */
    lsq_config b = c;
    b.N = b.d;
    CHECK(lsq_config_check(&b) != 0, "N >= d rejected");
    b = c;
    b.wq.bits = 12;
    CHECK(lsq_config_check(&b) != 0, "12-bit weights rejected");
    b = c;
    b.rounds = 3;
    CHECK(lsq_config_check(&b) != 0, "rounds > 1 without an interval rejected");
}

static void test_prop44(void)
{
    lsq_config c;
    lsq_config_default(&c);
    c.d = 256;
    const size_t n = 400;
    double *o = malloc(n * 6 * sizeof *o);
    CHECK(lsq_prop44(&c, n, o) == 0, "Prop. 4.4 experiment runs");
    size_t above20 = 0, above21 = 0;
    for (size_t i = 0; i < n; i++) {
        if (o[6 * i + 2] > o[6 * i + 3] * (1 + 1e-12)) above20++;
        if (o[6 * i + 4] > o[6 * i + 5]) above21++;
    }
    CHECK(above20 == 0, "bound (20) holds for every vector (%zu above)", above20);
    CHECK((double)above21 / n <= c.delta, "bound (21) fails at rate %.4f <= delta %.2f", (double)above21 / n, c.delta);
    free(o);
}

int main(void)
{
    test_bound_hand();
    test_fp_linear_convergence();
    test_experiment();
    test_prop44();
    return check_summary("test_lsq");
}
