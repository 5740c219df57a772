/* rostesim hadamard N [N ...] [--check]: which Hadamard construction covers an
 * order, and (with --check) how orthogonal and how fast it is. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "quant/hadamard.h"
#include "quant/rng.h"
#include "quant/status.h"

#define MAX_ORDERS 256
#define MAX_N ((size_t)1 << 24)
#define TIMING_VECTORS 1000

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* max |H H^T - I| in double through the fast transform: rows e_i -> e_i H -> e_i H H^T.
 * All n rows when affordable, else `rows` rows spread evenly (*sampled set). */
static int orth_check(const had_plan *p, double *err, size_t *checked)
{
    size_t n = had_order(p), K = had_core_order(p);
    double cost = (double)n * n * (K + log2((double)n / K) + 1);
    size_t rows = cost <= 2e11 ? n : 1024, chunk = 256;
    if (rows > n) rows = n;
    double *X = malloc(chunk * n * sizeof *X), worst = 0;
    if (!X) return RS_ERROR(RS_ENOMEM, "out of memory for the check of order %zu", n);
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        size_t nb = rows - r0 < chunk ? rows - r0 : chunk;
        memset(X, 0, nb * n * sizeof *X);
        for (size_t b = 0; b < nb; b++) X[b * n + (r0 + b) * n / rows] = 1.0;
        int st = had_apply_f64(p, X, nb, 0);
        if (!st) st = had_apply_f64(p, X, nb, 1);
        if (st) { free(X); return st; }
        for (size_t b = 0; b < nb; b++) {
            size_t i = (r0 + b) * n / rows;
            for (size_t j = 0; j < n; j++) {
                double e = fabs(X[b * n + j] - (j == i ? 1.0 : 0.0));
                if (e > worst) worst = e;
            }
        }
    }
    free(X);
    *err = worst;
    *checked = rows;
    return RS_OK;
}

/* Best of 3 to 10 wall-clock times to apply H to TIMING_VECTORS float vectors. */
static int time_apply(const had_plan *p, double *secs)
{
    size_t n = had_order(p), m = TIMING_VECTORS;
    float *x = malloc(m * n * sizeof *x);
    if (!x) return RS_ERROR(RS_ENOMEM, "out of memory for the timing of order %zu", n);
    rs_rng *g = rs_rng_alloc(1, RS_STREAM_DATA);
    if (!g) { free(x); return RS_ERROR(RS_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < m * n; i++) x[i] = (float)rs_rng_gaussian(g, 1.0);
    rs_rng_free(g);
    double best = INFINITY;
    int st = had_apply_f32(p, x, m, 0); /* warm-up */
    /* At least 3 runs, up to 10 while under half a second: a shared machine's hiccups
     * (a descheduled thread) otherwise show up as outliers. */
    double spent = 0;
    for (int rep = 0; (rep < 3 || (rep < 10 && spent < 0.5)) && !st; rep++) {
        double t0 = now_s();
        st = had_apply_f32(p, x, m, rep & 1);
        double t = now_s() - t0;
        spent += t;
        if (t < best) best = t;
    }
    free(x);
    *secs = best;
    return st;
}

/* Parse a positive order no larger than MAX_N; 0 on failure. */
static size_t parse_order(const char *s)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-' || *s == '+') return 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v == 0 || v > MAX_N) return 0;
    return (size_t)v;
}

int cmd_hadamard(int argc, char **argv)
{
    int check = 0;
    cli_opt opts[] = {
        {"--check", OPT_FLAG, &check, 0, -1, NULL,
         "measure max|H*H^T - I| in double and time applying H to 1000 float vectors", 0},
    };
    cli_cmd cmd = {
        "hadamard",
        "N [N ...] [--check]",
        "Tell which Hadamard construction covers each order N: N = K * 2^m is rotated by\n"
        "(H_K (x) H_{2^m}) / sqrt(N) with H_K from Sylvester, Paley I (prime power q = 3 mod 4,\n"
        "order q+1), Paley II (q = 1 mod 4, order 2(q+1)), Williamson-type (orders 156, 172)\n"
        "or a Kronecker product of these, and H_{2^m} applied by a fast Walsh-Hadamard\n"
        "transform. Use it to learn whether a model's hidden and FFN sizes are supported.\n"
        "An unsupported order is reported with the nearest supported orders below and above.\n"
        "N must be a positive integer no larger than 16777216.",
        opts,
        sizeof opts / sizeof *opts,
        1,
        MAX_ORDERS,
        "exit status: 0 all orders supported, 1 some order unsupported (or a check failed),\n"
        "2 usage error.\n\n"
        "example: rostesim hadamard 4864 576 29568 --check",
    };
    char *pos[MAX_ORDERS];
    size_t npos = 0;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    size_t orders[MAX_ORDERS];
    for (size_t i = 0; i < npos; i++) {
        orders[i] = parse_order(pos[i]);
        if (!orders[i])
            return cli_error("hadamard", "'%s' is not a valid order (a positive integer up to %zu)", pos[i], MAX_N);
    }

    int rc = 0;
    if (check)
        printf("%8s  %-44s  %-19s  %10s  %12s\n", "N", "construction", "max|H*H^T - I|", "1000 vec", "vectors/s");
    else
        printf("%8s  %s\n", "N", "construction");
    for (size_t i = 0; i < npos; i++) {
        size_t n = orders[i];
        had_plan *p = NULL;
        if (had_plan_alloc(n, &p) != RS_OK) {
            size_t b, a;
            had_nearest(n, &b, &a);
            char near[96];
            if (b) snprintf(near, sizeof near, "nearest supported: %zu and %zu", b, a);
            else snprintf(near, sizeof near, "nearest supported: %zu", a);
            printf("%8zu  no construction available (%s)\n", n, near);
            rc = 1;
            continue;
        }
        const char *d = had_describe(p);
        /* Pad by characters, not bytes ("⊗" is three bytes in UTF-8). */
        int extra = 0;
        for (const char *c = d; *c; c++)
            if (((unsigned char)*c & 0xC0) == 0x80) extra++;
        if (!check) {
            printf("%8zu  %s\n", n, d);
        } else {
            double err = 0, secs = 0;
            size_t checked = 0;
            int st = orth_check(p, &err, &checked);
            if (!st) st = time_apply(p, &secs);
            if (st) {
                printf("%8zu  %-*s  check failed: %s\n", n, 44 + extra, d, rs_last_error());
                rc = 1;
            } else {
                char e[32];
                if (checked == n) snprintf(e, sizeof e, "%.2e", err);
                else snprintf(e, sizeof e, "%.2e (%zu rows)", err, checked);
                printf("%8zu  %-*s  %-19s  %7.2f ms  %12.0f\n", n, 44 + extra, d, e, 1e3 * secs, TIMING_VECTORS / secs);
                if (!(err <= 1e-10)) rc = 1;
            }
        }
        had_plan_free(p);
    }
    return rc;
}
