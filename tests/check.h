/* rostesim: a minimal test harness. One PASS/FAIL line per check; main() ends with
 * `return check_summary("name");`, which prints "name: N passed, M failed" and
 * returns non-zero on any failure. tests/run.sh adds the totals up. */
#ifndef RS_CHECK_H
#define RS_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_npass, check_nfail;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        int ok_ = !!(cond);                                                                \
        if (ok_) check_npass++; else check_nfail++;                                        \
        printf("%s ", ok_ ? "PASS" : "FAIL");                                              \
        printf(__VA_ARGS__);                                                               \
        if (!ok_) printf("  [%s:%d: %s]", __FILE__, __LINE__, #cond);                      \
        printf("\n");                                                                      \
        fflush(stdout);                                                                    \
    } while (0)

/* |a - b| <= tol, printing both values. */
#define CHECK_NEAR(a, b, tol, what)                                                        \
    do {                                                                                   \
        double a_ = (a), b_ = (b), t_ = (tol);                                             \
        CHECK(fabs(a_ - b_) <= t_, "%s: %.17g vs %.17g (|diff| %.3g, tol %.3g)", what, a_, \
              b_, fabs(a_ - b_), t_);                                                      \
    } while (0)

static inline int check_summary(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_npass, check_nfail);
    return check_nfail ? 1 : 0;
}

#endif
