/* rostesim verify DIR: run the theory checks listed in DIR/claims.tsv.
 *
 * claims.tsv columns: id, check, lsq arguments, statement. Each claim runs
 * `rostesim lsq ARGS --out OUT/ID` (the command a user can rerun), then reads
 * OUT/ID/summary.json and applies the named check, printing PASS/FAIL with the
 * measured numbers. Exit 0 iff every claim passes. */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "quant/fsutil.h"
#include "quant/status.h"
#include "sim/lsq_out.h"

#define MAXARGS 64

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        snprintf(err, errlen, "cannot read '%s'", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* o[k], or o itself when k is NULL; NaN unless a number */
static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = k ? cJSON_GetObjectItemCaseSensitive(o, k) : o;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const cJSON *jrot(const cJSON *point, const char *rot)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(point, "rotations"), rot);
}

/* The checks. Each fills msg with the measured numbers and returns 1 (pass) or 0. */
static int check_theorem43(const cJSON *s, char *msg, size_t n)
{
    int viol = 0, runs = 0;
    double worst = 0;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, cJSON_GetObjectItemCaseSensitive(s, "points"))
    {
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(pt, "rotations"))
        {
            if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "bound_applies"))) continue;
            runs++;
            viol += (int)jnum(r, "bound_violations");
            double ratio = jnum(r, "final_D") / jnum(r, "bound_final");
            if (ratio > worst) worst = ratio;
        }
    }
    snprintf(msg, n, "%d violations over %d rotation settings; largest final D/bound = %.3g", viol, runs, worst);
    return runs > 0 && viol == 0;
}

static int check_prop44(const cJSON *s, char *msg, size_t n)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(s, "prop44");
    if (!p) return snprintf(msg, n, "no prop44 data"), 0;
    double f20 = jnum(p, "fraction_above_bound20"), f21 = jnum(p, "fraction_above_bound21"), d = jnum(p, "delta");
    double g = jnum(p, "geomean_error_reduction_by_rotation");
    snprintf(msg, n, "%.0f vectors: above (20) %.2f%% (must be 0), above (21) %.2f%% (delta %.2f%%), rotation lowers the error %.2fx",
             jnum(p, "vectors"), 100 * f20, 100 * f21, 100 * d, g);
    return f20 == 0 && f21 <= d && g > 1;
}

/* The claim checks the headline fit: every setting of the run (each sweep point and
 * rotation), duplicate runs left out. The within-setting fits are reported, not checked. */
static int check_tracking(const cJSON *s, char *msg, size_t n, double min_spearman)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(s, "fit_final_D_vs_eG_loglog");
    double slope = jnum(f, "slope"), sp = jnum(f, "spearman"), pe = jnum(f, "pearson");
    const cJSON *ci = cJSON_GetObjectItemCaseSensitive(f, "spearman_ci95");
    double lo = jnum(cJSON_GetArrayItem(ci, 0), NULL), hi = jnum(cJSON_GetArrayItem(ci, 1), NULL);
    double wmin = INFINITY, wmax = -INFINITY;
    int nw = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "fits"), "within_setting"))
    {
        double v = jnum(w, "spearman");
        if (!isfinite(v)) continue;
        wmin = fmin(wmin, v), wmax = fmax(wmax, v), nw++;
    }
    int len = snprintf(msg, n,
                       "checked: the log-log fit of final D on final ||e||_G^2 across all settings (%d sweep point(s) x "
                       "rotations), distinct runs only: n %.0f (%.0f duplicate runs left out), slope %.3f, Pearson %.3f, "
                       "Spearman %.3f [95%% CI %.2f, %.2f] (need slope > 0, Spearman >= %.2f)",
                       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s, "points")), jnum(f, "n"), jnum(f, "duplicate_runs_left_out"), slope, pe, sp, lo, hi, min_spearman);
    const cJSON *a;
    int first_across = 1;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "fits"), "across_sweep"))
    {
        if (len < 0 || (size_t)len >= n) break;
        if (!(jnum(a, "n") >= 3)) continue; /* every run a duplicate */
        const cJSON *rn = cJSON_GetObjectItemCaseSensitive(a, "rotation");
        len += snprintf(msg + len, n - (size_t)len, "%s %s across the sweep: n %.0f, Spearman %.3f",
                        first_across ? "; not checked: per rotation," : ",",
                        cJSON_IsString(rn) ? rn->valuestring : "?", jnum(a, "n"), jnum(a, "spearman"));
        first_across = 0;
    }
    if (nw && len > 0 && (size_t)len < n)
        snprintf(msg + len, n - (size_t)len, "; within one setting (seeds only) Spearman %.2f to %.2f over %d fits",
                 wmin, wmax, nw);
    return slope > 0 && sp >= min_spearman;
}

static int check_rotation_outliers(const cJSON *s, char *msg, size_t n)
{
    const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "points"), 0);
    const cJSON *a = jrot(p0, "none"), *h = jrot(p0, "hadamard");
    if (!a || !h) return snprintf(msg, n, "needs rotations none and hadamard"), 0;
    double ea = jnum(a, "final_e2"), eh = jnum(h, "final_e2"), la = jnum(a, "final_loss"), lh = jnum(h, "final_loss");
    snprintf(msg, n, "weight quantization error none %.3g vs hadamard %.3g (%.2fx); final loss none %.3g vs hadamard %.3g (%.2fx)", ea,
             eh, ea / eh, la, lh, la / lh);
    return eh < ea && lh < la;
}

/* weight bits always help: final D strictly decreasing in the sweep value, per rotation */
static int check_wbits(const cJSON *s, char *msg, size_t n)
{
    static const char *rots[] = {"none", "hadamard", "haar", "adaptive"};
    int ok = 1, len = 0;
    for (int k = 0; k < 4; k++) {
        double prev = INFINITY;
        int present = 0;
        const cJSON *pt;
        len += snprintf(msg + len, n - (size_t)len, "%s%s:", k ? "; " : "", rots[k]);
        cJSON_ArrayForEach(pt, cJSON_GetObjectItemCaseSensitive(s, "points"))
        {
            const cJSON *r = jrot(pt, rots[k]);
            if (!r) continue;
            present = 1;
            double D = jnum(r, "final_D");
            if (!(D < prev)) ok = 0;
            prev = D;
            if ((size_t)len < n) len += snprintf(msg + len, n - (size_t)len, " %.2g", D);
        }
        if (!present && (size_t)len < n) len += snprintf(msg + len, n - (size_t)len, " -");
    }
    return ok;
}

/* activation bits help until interpolation holds, then stop helping (rotation none):
 * the final loss (the prediction error; D is no measure of fit without an
 * interpolator) of every point without A4.2 exceeds that of every point with it by
 * more than gap_factor, and past the first interpolating bit width the loss falls by
 * less than 2x (flat, or worse). */
static int check_abits(const cJSON *s, char *msg, size_t n, double gap_factor)
{
    double worst_fail = INFINITY, hi = 0, first = NAN, last = NAN;
    int nf = 0, ni = 0, len = 0;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, cJSON_GetObjectItemCaseSensitive(s, "points"))
    {
        const cJSON *r = jrot(pt, "none");
        if (!r) continue;
        double L = jnum(r, "final_loss");
        int interp = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "interpolation_A42"));
        if ((size_t)len < n)
            len += snprintf(msg + len, n - (size_t)len, "%g bits: loss %.2g%s; ", jnum(pt, "sweep_value"), L, interp ? "" : " (no A4.2)");
        if (interp) {
            if (ni == 0) first = L;
            last = L;
            ni++;
            hi = fmax(hi, L);
        } else {
            nf++;
            worst_fail = fmin(worst_fail, L);
        }
    }
    if ((size_t)len < n)
        snprintf(msg + len, n - (size_t)len, "gap %.0fx (need > %.0fx); after A4.2 the loss changes %.2fx", worst_fail / hi, gap_factor,
                 last / first);
    return nf > 0 && ni > 1 && worst_fail > gap_factor * hi && last >= 0.5 * first;
}

/* wider d makes interpolation with low-bit activations easier: rank/N non-decreasing */
static int check_d(const cJSON *s, char *msg, size_t n)
{
    double prev = -1;
    int ok = 1, len = 0, first_interp = -1, last_interp = -1, k = 0;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, cJSON_GetObjectItemCaseSensitive(s, "points"))
    {
        const cJSON *r = jrot(pt, "none");
        if (!r) continue;
        double frac = jnum(r, "rank") / jnum(cJSON_GetObjectItemCaseSensitive(s, "config"), "N");
        int interp = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "interpolation_A42"));
        if (k == 0) first_interp = interp;
        last_interp = interp;
        if (frac < prev) ok = 0;
        prev = frac;
        if ((size_t)len < n) len += snprintf(msg + len, n - (size_t)len, "d=%g: rank/N %.2f; ", jnum(pt, "sweep_value"), frac);
        k++;
    }
    return ok && first_interp == 0 && last_interp == 1;
}

static int split_args(char *s, char **argv, int max)
{
    int n = 0;
    for (char *t = strtok(s, " "); t && n < max; t = strtok(NULL, " ")) argv[n++] = t;
    return n;
}

int cmd_verify(int argc, char **argv)
{
    const char *out = "out/verify";
    const char *only = NULL;
    int no_plot = 0;
    cli_opt opts[] = {
        {"--out", OPT_STRING, &out, 0, -1, "DIR", "folder for each claim's lsq output", 0},
        {"--only", OPT_STRING, &only, 0, -1, "ID", "run one claim", 0},
        {"--no-plot", OPT_FLAG, &no_plot, 0, -1, NULL, "draw no figures", 0},
    };
    cli_cmd cmd = {"verify", "PAPER_DIR [options]",
                   "Run the theory checks listed in PAPER_DIR/claims.tsv (e.g. papers/roste-2502.09003):\n"
                   "each claim runs 'rostesim lsq' with the listed arguments into OUT/ID, then checks\n"
                   "the measured numbers. Prints PASS/FAIL per claim; exits 1 if any claim fails.",
                   opts, sizeof opts / sizeof opts[0], 1, 1, NULL};
    char *pos[1];
    size_t npos;
    int pr = cli_parse(&cmd, argc, argv, pos, &npos);
    if (pr == CLI_HELP) return 0;
    if (pr != CLI_OK) return 2;
    char path[4200], err[512];
    snprintf(path, sizeof path, "%s/claims.tsv", pos[0]);
    char *text = read_file(path, err, sizeof err);
    if (!text) return cli_error("verify", "%s (is '%s' a paper folder?)", err, pos[0]), 2;
    int npass = 0, nfail = 0, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (lineno == 1 || line[0] == '#' || line[0] == '\0') continue; /* header */
        char *f[4];
        int nf = 0;
        for (char *p = line; nf < 4;) {
            f[nf++] = p;
            char *tab = strchr(p, '\t');
            if (!tab) break;
            *tab = '\0';
            p = tab + 1;
        }
        if (nf != 4) {
            cli_error("verify", "%s:%d: expected 4 tab-separated fields (id, check, args, statement)", path, lineno);
            free(text);
            return 2;
        }
        const char *id = f[0], *check = f[1], *statement = f[3];
        if (only && strcmp(only, id)) continue;
        char args[1024], odir[4096];
        snprintf(args, sizeof args, "%s", f[2]);
        snprintf(odir, sizeof odir, "%s/%s", out, id);
        char *av[MAXARGS + 8];
        int ac = 0;
        av[ac++] = "lsq";
        ac += split_args(args, av + ac, MAXARGS);
        av[ac++] = "--out";
        av[ac++] = odir;
        av[ac++] = "--quiet";
        if (no_plot) av[ac++] = "--no-plot";
        av[ac] = NULL;
        printf("[%s] %s\n  rostesim", id, statement);
        for (int i = 0; i < ac; i++) printf(" %s", av[i]);
        printf("\n");
        fflush(stdout);
        /* the lsq table goes to OUT/ID.log */
        char logp[4200];
        snprintf(logp, sizeof logp, "%s.log", odir);
        int saved = dup(1);
        int rc;
        {
            if (rs_mkdir_p(out) != 0) {
                cli_error("verify", "%s", rs_last_error());
                free(text);
                return 1;
            }
            int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
            if (fd >= 0) {
                dup2(fd, 1);
                close(fd);
            }
            rc = cmd_lsq(ac, av);
            fflush(stdout);
            dup2(saved, 1);
            close(saved);
        }
        char msg[4400] = "";
        int ok = 0;
        if (rc != 0) {
            snprintf(msg, sizeof msg, "the lsq run failed (exit %d); see %s", rc, logp);
        } else {
            snprintf(path, sizeof path, "%s/summary.json", odir);
            char *js = read_file(path, err, sizeof err);
            cJSON *s = js ? cJSON_Parse(js) : NULL;
            free(js);
            if (!s) snprintf(msg, sizeof msg, "cannot read %s", path);
            else if (!strcmp(check, "theorem43")) ok = check_theorem43(s, msg, sizeof msg);
            else if (!strcmp(check, "prop44")) ok = check_prop44(s, msg, sizeof msg);
            else if (!strncmp(check, "tracking", 8)) ok = check_tracking(s, msg, sizeof msg, check[8] == ':' ? atof(check + 9) : 0.8);
            else if (!strcmp(check, "rotation_outliers")) ok = check_rotation_outliers(s, msg, sizeof msg);
            else if (!strcmp(check, "remark45_wbits")) ok = check_wbits(s, msg, sizeof msg);
            else if (!strncmp(check, "remark45_abits", 14)) ok = check_abits(s, msg, sizeof msg, check[14] == ':' ? atof(check + 15) : 10.0);
            else if (!strcmp(check, "remark45_d")) ok = check_d(s, msg, sizeof msg);
            else snprintf(msg, sizeof msg, "unknown check '%s' in %s", check, pos[0]);
            cJSON_Delete(s);
        }
        printf("  %s %s\n", ok ? "PASS" : "FAIL", msg);
        fflush(stdout);
        if (ok) npass++;
        else nfail++;
    }
    free(text);
    if (npass + nfail == 0) return cli_error("verify", "no claim ran (check --only or %s/claims.tsv)", pos[0]), 2;
    printf("verify: %d passed, %d failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
