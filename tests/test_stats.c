/* rostesim: llm/eval/stats.c, the bootstrap of mean ROUGE over prompts.
 *  1. against numpy (tools/stats_fixture.py, tests/fixtures/stats/stats.txt): the mean to 1e-12
 *     and the B = 4000 bootstrap 95% interval against the normal-theory one;
 *  2. exact cases (constant scores, n = 1, a == b, every a_i - b_i = 0.1);
 *  3. determinism and the seed; the paired interval is the interval of the differences;
 *  4. pairing: unpaired intervals overlap, the paired one excludes 0;
 *  5. bad input;
 *  6. the quantile against numpy.quantile to the bit, and the bootstrap against a naive twin.
 * Run from the repository root. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/eval/stats.h"
#include "quant/rng.h"
#include "quant/status.h"
#include "tests/check.h"
#include "tests/fixture.h"

#define FX "tests/fixtures/stats/stats.txt"
#define B 4000

typedef struct { char name[32]; long n; double mean, sd, lo, hi, *x; } fx_vector;

static double num(char **save) /* the next token as a double (NaN when missing) */
{
    char *t = strtok_r(NULL, " \t\r\n", save);
    return t ? strtod(t, NULL) : NAN;
}

/* The naive twin of rs_boot_mean_ci's resampling: the sorted means of B resamples. */
static void boot_ref(const double *x, long n, int nb, uint64_t seed, double *m)
{
    rs_rng *r = rs_rng_alloc(seed, RS_STREAM_BOOTSTRAP);
    for (int k = 0; k < nb; k++) {
        double s = 0;
        for (long j = 0; j < n; j++) s += x[rs_rng_uint(r, (unsigned long)n)];
        m[k] = s / (double)n;
    }
    rs_rng_free(r);
    for (int i = 1; i < nb; i++) /* insertion sort: small nb */
        for (int j = i; j > 0 && m[j - 1] > m[j]; j--) { double t = m[j]; m[j] = m[j - 1]; m[j - 1] = t; }
}

int main(void)
{
    /* ------------------------------------------------------------ the fixture */
    char *buf = fx_read_file(FX, NULL);
    CHECK(buf != NULL, FX " present (run tools/stats_fixture.py)");
    if (!buf) return check_summary("test_stats");
    for (char *c = buf; *c; c++) /* '#' lines are comments */
        if (*c == '#' && (c == buf || c[-1] == '\n'))
            while (*c && *c != '\n') *c++ = ' ';
    fx_vector v[8];
    int nv = 0, nq = 0, qbad = 0;
    char qwhy[200] = "";
    char *save = NULL;
    for (char *t = strtok_r(buf, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
        if (!strcmp(t, "vector") && nv < 8) {
            fx_vector *f = &v[nv++];
            char *name = strtok_r(NULL, " \t\r\n", &save);
            snprintf(f->name, sizeof f->name, "%s", name ? name : "?");
            f->n = (long)num(&save);
            f->mean = num(&save), f->sd = num(&save), f->lo = num(&save), f->hi = num(&save);
            f->x = malloc((size_t)f->n * sizeof *f->x);
            for (long i = 0; i < f->n; i++) f->x[i] = num(&save);
        } else if (!strcmp(t, "quantile")) {
            /* 6. numpy.quantile(x, q), x ascending: the same double */
            long k = (long)num(&save);
            double x[64];
            for (long i = 0; i < k; i++) { double y = num(&save); if (i < 64) x[i] = y; }
            double q = num(&save), want = num(&save), got = k <= 64 ? rs_quantile_sorted(x, k, q) : NAN;
            if (memcmp(&got, &want, sizeof got) && !qbad++)
                snprintf(qwhy, sizeof qwhy, "; first: n %ld q %.17g: %.17g, numpy %.17g", k, q, got, want);
            nq++;
        }
    }
    free(buf);
    CHECK(nq >= 30 && qbad == 0, "rs_quantile_sorted = numpy.quantile to the bit on %d (x, q) (%d differ%s)", nq, qbad,
          qwhy);
    CHECK(nv >= 4, "%d score vectors in the fixture", nv);

    /* ------------------------------------------------------------ 1. against numpy
     * The bootstrap distribution of the mean has the spread sd0 / sqrt(n), sd0 = sd sqrt((n-1)/n)
     * the ddof = 0 deviation, so its 95% interval is the normal one (sd: ddof = 1) up to
     *   - the factor sqrt((n-1)/n): 1.4% of the half-width at n = 37, 0.1% at n = 500;
     *   - skewness gamma (Edgeworth): both percentile ends move by gamma (z^2 - 1) / (6 sqrt n)
     *     standard errors, 0.24 gamma / sqrt(n) of the half-width: 1.8% for rouge37
     *     (gamma 0.46), 0.9% for rouge500 (gamma 0.85);
     *   - Monte Carlo: a 2.5% quantile of B = 4000 means has the standard deviation
     *     sqrt(0.025 * 0.975 / B) / phi(1.96) = 0.042 standard errors, 2.2% of the half-width.
     * 10% of the half-width leaves the Monte Carlo term more than 3 standard deviations after
     * the systematic terms (3.2% at worst). n = 1: the half-width is 0 and the check exact. */
    for (int k = 0; k < nv; k++) {
        const fx_vector *f = &v[k];
        double mean, lo, hi, half = (f->hi - f->lo) / 2;
        int rc = rs_boot_mean_ci(f->x, f->n, B, 20250502, 0.05, &mean, &lo, &hi);
        CHECK(rc == RS_OK, "%s: rs_boot_mean_ci returns RS_OK (%s)", f->name, rs_last_error());
        char what[sizeof f->name + 32];
        snprintf(what, sizeof what, "%.31s: mean = numpy's", f->name);
        CHECK_NEAR(mean, f->mean, 1e-12, what);
        CHECK(fabs(lo - f->lo) <= 0.1 * half && fabs(hi - f->hi) <= 0.1 * half,
              "%s (n %ld): bootstrap [%.6f, %.6f] vs normal [%.6f, %.6f]: ends off by %.1f%%, %.1f%% of the "
              "half-width (tolerance 10%%)", f->name, f->n, lo, hi, f->lo, f->hi,
              half > 0 ? 100 * fabs(lo - f->lo) / half : 0.0, half > 0 ? 100 * fabs(hi - f->hi) / half : 0.0);
    }
    const fx_vector *r500 = NULL, *r37 = NULL;
    for (int k = 0; k < nv; k++) {
        if (!strcmp(v[k].name, "rouge500")) r500 = &v[k];
        if (!strcmp(v[k].name, "rouge37")) r37 = &v[k];
    }
    CHECK(r500 && r37, "rouge500 and rouge37 in the fixture");
    if (!r500 || !r37) return check_summary("test_stats");

    /* ------------------------------------------------------------ 2. exact cases */
    double c[30], a[30], b[30], mean, lo, hi, diff, p;
    for (int i = 0; i < 30; i++) c[i] = 0.1;
    rs_boot_mean_ci(c, 30, B, 1, 0.05, &mean, &lo, &hi);
    CHECK(lo == mean && hi == mean && fabs(mean - 0.1) < 1e-15, "constant scores: lo = hi = mean = %.17g", mean);
    double one = 0.123456789;
    rs_boot_mean_ci(&one, 1, B, 1, 0.05, &mean, &lo, &hi);
    CHECK(mean == one && lo == one && hi == one, "n = 1: mean = lo = hi = x[0] (%.17g, %.17g, %.17g)", mean, lo, hi);
    rs_boot_paired(r37->x, r37->x, r37->n, B, 1, 0.05, &diff, &lo, &hi, &p);
    CHECK(diff == 0 && lo == 0 && hi == 0 && p == 1, "a == b: diff %g, [%g, %g], p %g", diff, lo, hi, p);
    /* b_i = k/64 with k < 10 are values whose (b + 0.1) - b is 0.1 exactly */
    int exact = 1;
    for (int i = 0; i < 30; i++) {
        b[i] = (i * 7 % 10) / 64.0;
        a[i] = b[i] + 0.1;
        exact &= a[i] - b[i] == 0.1;
    }
    CHECK(exact, "every a_i - b_i is 0.1 exactly");
    rs_boot_paired(a, b, 30, B, 1, 0.05, &diff, &lo, &hi, &p);
    CHECK(lo == diff && hi == diff && fabs(diff - 0.1) < 1e-15 && p == 2.0 / (B + 1),
          "a = b + 0.1: diff %.17g, [%.17g, %.17g], p %.17g = 2/(B+1)", diff, lo, hi, p);

    /* ------------------------------------------------------------ 3. determinism */
    long n = r37->n;
    double *x = r37->x, *y = malloc((size_t)n * sizeof *y), *d = malloc((size_t)n * sizeof *d);
    for (long i = 0; i < n; i++) {
        y[i] = x[(i * 11 + 3) % n] * 0.9;
        d[i] = x[i] - y[i];
    }
    double r1[3], r2[3], r3[3], m1, l1, h1, l2, h2;
    rs_boot_paired(x, y, n, B, 42, 0.05, &diff, &r1[0], &r1[1], &r1[2]);
    rs_boot_paired(x, y, n, B, 42, 0.05, &diff, &r2[0], &r2[1], &r2[2]);
    rs_boot_paired(x, y, n, B, 43, 0.05, &diff, &r3[0], &r3[1], &r3[2]);
    CHECK(!memcmp(r1, r2, sizeof r1), "same seed: the same bytes of (lo, hi, p) = (%.17g, %.17g, %.17g)", r1[0], r1[1],
          r1[2]);
    CHECK(r3[0] != r1[0], "another seed: another lo (%.17g vs %.17g)", r3[0], r1[0]);
    rs_boot_mean_ci(x, n, B, 42, 0.05, &m1, &l1, &h1);
    rs_boot_mean_ci(x, n, B, 43, 0.05, &m1, &l2, &h2);
    CHECK(l1 != l2, "rs_boot_mean_ci: another seed, another lo (%.17g vs %.17g)", l1, l2);
    rs_boot_mean_ci(d, n, B, 42, 0.05, &m1, &l1, &h1);
    CHECK(!memcmp(&l1, &r1[0], sizeof l1) && !memcmp(&h1, &r1[1], sizeof h1),
          "paired interval = rs_boot_mean_ci of a - b, same seed, to the bit");

    /* ------------------------------------------------------------ 4. the point of pairing
     * b: the first 100 ROUGE-like scores (sd ~0.22); a_i = b_i + e_i, e_i in [-0.01, 0.03)
     * (mean ~0.01): the systems' 95% intervals (half-width ~0.04) overlap, the paired one
     * (standard error ~0.001) does not hold 0. */
    long np = 100;
    double *pa = malloc((size_t)np * sizeof *pa), la, ha, lb, hb;
    for (long i = 0; i < np; i++) pa[i] = r500->x[i] + 0.01 + 0.04 * ((double)(i * 37 % 100) / 100 - 0.5);
    rs_boot_mean_ci(pa, np, B, 5, 0.05, &m1, &la, &ha);
    rs_boot_mean_ci(r500->x, np, B, 5, 0.05, &m1, &lb, &hb);
    rs_boot_paired(pa, r500->x, np, B, 5, 0.05, &diff, &lo, &hi, &p);
    CHECK(la < hb && lb < ha, "unpaired intervals overlap: a [%.4f, %.4f], b [%.4f, %.4f]", la, ha, lb, hb);
    CHECK(lo > 0 && p < 0.05, "paired: diff %.4f, [%.4f, %.4f] excludes 0, p %.5f < 0.05", diff, lo, hi, p);
    free(pa);

    /* ------------------------------------------------------------ 5. bad input */
    double nanx[3] = {0.1, NAN, 0.2}, infx[3] = {0.1, INFINITY, 0.2};
    int e[12];
    e[0] = rs_boot_mean_ci(x, 0, B, 1, 0.05, &mean, &lo, &hi);
    e[1] = rs_boot_mean_ci(x, -1, B, 1, 0.05, &mean, &lo, &hi);
    e[2] = rs_boot_mean_ci(x, n, 0, 1, 0.05, &mean, &lo, &hi);
    e[3] = rs_boot_mean_ci(x, n, B, 1, 0, &mean, &lo, &hi);
    e[4] = rs_boot_mean_ci(x, n, B, 1, 1, &mean, &lo, &hi);
    e[5] = rs_boot_mean_ci(x, n, B, 1, NAN, &mean, &lo, &hi);
    e[6] = rs_boot_mean_ci(nanx, 3, B, 1, 0.05, &mean, &lo, &hi);
    e[7] = rs_boot_mean_ci(infx, 3, B, 1, 0.05, &mean, &lo, &hi);
    e[8] = rs_boot_paired(x, y, 0, B, 1, 0.05, &diff, &lo, &hi, &p);
    e[9] = rs_boot_paired(x, y, n, 0, 1, 0.05, &diff, &lo, &hi, &p);
    e[10] = rs_boot_paired(nanx, c, 3, B, 1, 0.05, &diff, &lo, &hi, &p);
    e[11] = rs_boot_paired(c, nanx, 3, B, 1, 0.05, &diff, &lo, &hi, &p);
    int all = 1;
    for (int i = 0; i < 12; i++) all &= e[i] == RS_EINVAL;
    CHECK(all, "n = 0 or -1, B = 0, alpha = 0, 1 or NaN, a NaN or Inf score: RS_EINVAL (12 calls)");
    CHECK(rs_boot_paired(c, nanx, 3, B, 1, 0.05, &diff, &lo, &hi, &p) == RS_EINVAL && strstr(rs_last_error(), "a[1] - b[1]"),
          "the message names the prompt: \"%s\"", rs_last_error());
    CHECK(rs_boot_mean_ci(NULL, 3, B, 1, 0.05, &mean, &lo, &hi) == RS_EINVAL &&
              rs_boot_paired(c, c, 3, B, 1, 0.05, &diff, &lo, &hi, NULL) == RS_EINVAL,
          "NULL arguments: RS_EINVAL");
    free(y);
    free(d);

    /* ------------------------------------------------------------ 6. quantile and naive twin */
    const double s4[4] = {0, 1, 2, 3};
    CHECK(rs_quantile_sorted(s4, 4, 0) == 0 && rs_quantile_sorted(s4, 4, 0.25) == 0.75 &&
              rs_quantile_sorted(s4, 4, 0.5) == 1.5 && rs_quantile_sorted(s4, 4, 1) == 3,
          "{0,1,2,3}: q 0, 0.25, 0.5, 1 -> 0, 0.75, 1.5, 3 (h = 3q)");
    CHECK(isnan(rs_quantile_sorted(s4, 0, 0.5)) && isnan(rs_quantile_sorted(s4, 4, -0.1)) &&
              isnan(rs_quantile_sorted(s4, 4, 1.5)) && isnan(rs_quantile_sorted(s4, 4, NAN)),
          "n = 0, q outside [0, 1]: NaN");
    /* x = {0,1,2,3}, B = 9, alpha = 0.2: the ends are the 0.1 and 0.9 quantiles of nine means
     * (h = 0.8 and 7.2), each mean a multiple of 1/4 */
    double m9[9];
    boot_ref(s4, 4, 9, 3, m9);
    rs_boot_mean_ci(s4, 4, 9, 3, 0.2, &mean, &lo, &hi);
    double wlo = m9[0] + (m9[1] - m9[0]) * 0.8, whi = m9[7] + (m9[8] - m9[7]) * 0.2;
    CHECK(mean == 1.5 && fabs(lo - wlo) < 1e-15 && fabs(hi - whi) < 1e-15,
          "{0,1,2,3}, B = 9, alpha = 0.2: [%.17g, %.17g] = the naive twin's [%.17g, %.17g] (means %g .. %g)", lo, hi, wlo,
          whi, m9[0], m9[8]);
    double *mr = malloc(B * sizeof *mr);
    boot_ref(r37->x, r37->n, B, 20250502, mr);
    rs_boot_mean_ci(r37->x, r37->n, B, 20250502, 0.05, &mean, &lo, &hi);
    CHECK(lo == rs_quantile_sorted(mr, B, 0.025) && hi == rs_quantile_sorted(mr, B, 0.975),
          "rouge37, B = %d: the interval = the naive twin's to the bit", B);
    free(mr);

    for (int k = 0; k < nv; k++) free(v[k].x);
    return check_summary("test_stats");
}
