/* Tests of quant/quant.c: hand-computed tables, ties, degenerate groups, the fast
 * path against the scalar reference, codes, STE masks, spec validation, and a
 * golden file written by PyTorch (tools/quant_fixture.py). x is (R, C) row-major. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"
#include "quant/rng.h"
#include "quant/status.h"
#include "tests/check.h"

/* ---------------------------------------------------------------- helpers */

/* y = Q(x) with the fast f32 path; compares with `want` element by element (==,
 * so +0 and -0 are equal here; the bit-level checks use memcmp). */
static void table_f32(const char *what, qz_spec q, const float *x, const float *want, size_t R,
                      size_t C)
{
    float *y = malloc(R * C * sizeof *y);
    int rc = qz_fake_f32(&q, x, y, R, C);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < R * C; i++)
        if (!(y[i] == want[i]) && bad++ == 0) first = i;
    CHECK(rc == RS_OK && bad == 0, "%s: %zu of %zu wrong%s (first at %zu: got %.9g want %.9g)", what,
          bad, R * C, rc ? " [rc != OK]" : "", first, (double)y[first], (double)want[first]);
    /* the double path on the same (exactly representable) table */
    double *xd = malloc(R * C * sizeof *xd), *yd = malloc(R * C * sizeof *yd);
    for (size_t i = 0; i < R * C; i++) xd[i] = x[i];
    rc = qz_fake_f64(&q, xd, yd, R, C);
    bad = 0;
    for (size_t i = 0; i < R * C; i++)
        if (!(yd[i] == (double)want[i]) && bad++ == 0) first = i;
    CHECK(rc == RS_OK && bad == 0, "%s (f64): %zu of %zu wrong (first at %zu: got %.17g)", what, bad,
          R * C, first, yd[first]);
    free(y);
    free(xd);
    free(yd);
}

static qz_spec spec(int bits, qz_scheme sc, qz_gran g, size_t group, float clip, qz_clipmode cm,
                    qz_round rd)
{
    qz_spec q = qz_spec_make(bits, sc, g, group);
    q.clip = clip;
    q.clipmode = cm;
    q.round = rd;
    return q;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define EVEN QZ_HALF_EVEN
#define AWAY QZ_HALF_AWAY

/* Random test matrix: Gaussian, a few outlier columns (x25), one constant row. */
static void fill_random(rs_rng *r, float *x, size_t R, size_t C)
{
    for (size_t i = 0; i < R * C; i++) x[i] = (float)rs_rng_gaussian(r, 1.0);
    for (size_t j = 0; j < C; j += 7 + (C / 5))
        for (size_t i = 0; i < R; i++) x[i * C + j] *= 25.0f;
    if (R > 2)
        for (size_t j = 0; j < C; j++) x[(R / 2) * C + j] = 0.375f;
}

/* ---------------------------------------------------------------- hand tables */

static void test_symmetric(void)
{
    /* 4-bit sym, per-tensor, c = 1: amax = 7, s = 7/7 = 1, z = 0, codes [-8, 7].
     * x/s = x; round half-even: 2.4->2, -2.6->-3, 0.5->0, -0.5->-0, 1.5->2, 3.5->4. */
    float x4[] = {7, -7, 2.4f, -2.6f, 0.5f, -0.5f, 1.5f, 3.5f};
    float e4[] = {7, -7, 2, -3, 0, 0, 2, 4};
    table_f32("sym4 tensor c=1 half-even", spec(4, QZ_SYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, EVEN), x4,
              e4, 2, 4);
    /* half-away: 0.5->1, -0.5->-1, 1.5->2, 3.5->4 */
    float e4a[] = {7, -7, 2, -3, 1, -1, 2, 4};
    table_f32("sym4 tensor c=1 half-away", spec(4, QZ_SYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, AWAY), x4,
              e4a, 2, 4);

    /* 4-bit sym, c = 0.5: amax 14, s = 0.5*14/7 = 1. x/s = x, rounded (7.5 -> 8 even),
     * clamped to [-8, 7]: 14->7, -14->-8, 6.9->7, -7.6->-8, 7.5->8->7, 3.2->3. */
    float xc[] = {14, -14, 6.9f, -7.6f, 7.5f, 3.2f};
    float ec[] = {7, -8, 7, -8, 7, 3};
    table_f32("sym4 tensor c=0.5 clamps", spec(4, QZ_SYM, QZ_TENSOR, 0, 0.5f, QZ_CLIP_CODE, EVEN), xc,
              ec, 1, 6);

    /* 2-bit sym, codes [-2, 1], qmax 1. c = 1: amax 3, s = 3: x/s = -1, -1/3, 0.13, 0.2,
     * 1/3, 0.83 -> -1, 0, 0, 0, 0, 1 -> Q = -3, 0, 0, 0, 0, 3. */
    float x2[] = {-3, -1, 0.4f, 0.6f, 1, 2.5f};
    float e2[] = {-3, 0, 0, 0, 0, 3};
    table_f32("sym2 tensor c=1", spec(2, QZ_SYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, EVEN), x2, e2, 1, 6);
    /* c = 0.5: s = 1.5: x/s = -2, -0.67, 0.27, 0.4, 0.67, 1.67 -> -2, -1, 0, 0, 1, 2->clamp 1
     * -> Q = -3, -1.5, 0, 0, 1.5, 1.5 (code -2 reachable, +2 is not). */
    float e2c[] = {-3, -1.5f, 0, 0, 1.5f, 1.5f};
    table_f32("sym2 tensor c=0.5", spec(2, QZ_SYM, QZ_TENSOR, 0, 0.5f, QZ_CLIP_CODE, EVEN), x2, e2c,
              1, 6);

    /* 3-bit sym, codes [-4, 3]: amax 6, s = 6/3 = 2. x/s = 3, -3, .5, -.5, 1.5, -1.5, 2.5, .45
     * half-even: 3, -3, 0, -0, 2, -2, 2, 0  -> Q = 6, -6, 0, 0, 4, -4, 4, 0
     * half-away: 3, -3, 1, -1, 2, -2, 3, 0  -> Q = 6, -6, 2, -2, 4, -4, 6, 0 */
    float x3[] = {6, -6, 1, -1, 3, -3, 5, 0.9f};
    float e3[] = {6, -6, 0, 0, 4, -4, 4, 0};
    float e3a[] = {6, -6, 2, -2, 4, -4, 6, 0};
    table_f32("sym3 row ties half-even", spec(3, QZ_SYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, EVEN), x3, e3, 1,
              8);
    table_f32("sym3 row ties half-away", spec(3, QZ_SYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, AWAY), x3, e3a, 1,
              8);

    /* 8-bit sym, qmax 127: amax 127, s = 1.
     * half-even: 0.5->0, 1.5->2, -2.5->-2, 100.25->100, -100.75->-101, 126.5->126
     * half-away: 0.5->1, 1.5->2, -2.5->-3, 100.25->100, -100.75->-101, 126.5->127 */
    float x8[] = {127, -127, 0.5f, 1.5f, -2.5f, 100.25f, -100.75f, 126.5f};
    float e8[] = {127, -127, 0, 2, -2, 100, -101, 126};
    float e8a[] = {127, -127, 1, 2, -3, 100, -101, 127};
    table_f32("sym8 tensor ties half-even", spec(8, QZ_SYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, EVEN), x8,
              e8, 2, 4);
    table_f32("sym8 tensor ties half-away", spec(8, QZ_SYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, AWAY), x8,
              e8a, 2, 4);

    /* per-group, 3-bit sym, group 4 on a 1x8 row:
     * g0 {6,-1,3,1}: s = 2, x/s = 3,-.5,1.5,.5 -> (even) 3,-0,2,0 -> 6,0,4,0
     * g1 {.75,-.25,.375,.125}: s = .75/3 = .25, x/s = 3,-1,1.5,.5 -> 3,-1,2,0 -> .75,-.25,.5,0 */
    float xg[] = {6, -1, 3, 1, 0.75f, -0.25f, 0.375f, 0.125f};
    float eg[] = {6, 0, 4, 0, 0.75f, -0.25f, 0.5f, 0};
    table_f32("sym3 group4 half-even", spec(3, QZ_SYM, QZ_GROUP, 4, 1, QZ_CLIP_CODE, EVEN), xg, eg, 1,
              8);
    /* the same as a 2x4 matrix per row gives the same groups */
    table_f32("sym3 row (2x4) = group4", spec(3, QZ_SYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, EVEN), xg, eg, 2,
              4);
    /* ... but per-tensor uses amax 6, s = 2 everywhere: g1/2 = .375,-.125,.1875,.0625 -> 0 */
    float et[] = {6, 0, 4, 0, 0, 0, 0, 0};
    table_f32("sym3 tensor (2x4)", spec(3, QZ_SYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, EVEN), xg, et, 2,
              4);

    /* group parameters land at r*(C/G) + g: 2x4, group 2, sym 3-bit (qmax 3).
     * r0g0 {3,-6}: s = 2; r0g1 {1.5,0}: s = .5; r1g0 {0,0}: degenerate s = 1;
     * r1g1 {-.75,.375}: s = .25. */
    float xp[] = {3, -6, 1.5f, 0, 0, 0, -0.75f, 0.375f};
    float s[4], z[4], sref[4] = {2, 0.5f, 1, 0.25f};
    qz_spec qg = spec(3, QZ_SYM, QZ_GROUP, 2, 1, QZ_CLIP_CODE, EVEN);
    int rc = qz_params_f32(&qg, xp, 2, 4, s, z);
    CHECK(rc == RS_OK && qz_ngroups(&qg, 2, 4) == 4 && memcmp(s, sref, sizeof s) == 0 && z[0] == 0 &&
              z[1] == 0 && z[2] == 0 && z[3] == 0,
          "sym3 group2 params: s = %g %g %g %g (want 2 0.5 1 0.25), z = 0", (double)s[0],
          (double)s[1], (double)s[2], (double)s[3]);
    double xpd[8], sd[4], zd[4];
    for (int i = 0; i < 8; i++) xpd[i] = xp[i];
    rc = qz_params_f64(&qg, xpd, 2, 4, sd, zd);
    CHECK(rc == RS_OK && sd[0] == 2 && sd[1] == 0.5 && sd[2] == 1 && sd[3] == 0.25,
          "sym3 group2 params (f64): s = %g %g %g %g", sd[0], sd[1], sd[2], sd[3]);
}

static void test_asymmetric(void)
{
    /* 4-bit asym, codes [0, 15], c = 1: min -5, max 10 -> s = 15/15 = 1, z = round(5) = 5.
     * half-even x/s: -5,10,0.5->0,1.5->2,-2.5->-2,3.7->4 (+5, clamp, -5 keep them)
     * half-away: 0.5->1, -2.5->-3 */
    float x4[] = {-5, 10, 0.5f, 1.5f, -2.5f, 3.7f};
    float e4[] = {-5, 10, 0, 2, -2, 4};
    float e4a[] = {-5, 10, 1, 2, -3, 4};
    table_f32("asym4 tensor half-even", spec(4, QZ_ASYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, EVEN), x4, e4,
              2, 3);
    table_f32("asym4 tensor half-away", spec(4, QZ_ASYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, AWAY), x4, e4a,
              2, 3);

    /* zero-point tie: min -2.5, max 12.5 -> s = 1, -min/s = 2.5 -> z = 2 (even) or 3 (away).
     * even: -2.5 -> round -2 +2 = 0 -> -2;  12.5 -> 12 +2 = 14 -> 12;  0 -> 0;  1 -> 1
     * away: -2.5 -> -3 +3 = 0 -> -3;  12.5 -> 13 +3 = 16 -> 15 -> 12;  0 -> 0;  1 -> 1 */
    float xz[] = {-2.5f, 12.5f, 0, 1};
    float ez[] = {-2, 12, 0, 1};
    float eza[] = {-3, 12, 0, 1};
    table_f32("asym4 zero-point tie half-even", spec(4, QZ_ASYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, EVEN), xz,
              ez, 1, 4);
    table_f32("asym4 zero-point tie half-away", spec(4, QZ_ASYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, AWAY), xz,
              eza, 1, 4);
    float s, z;
    qz_spec qa = spec(4, QZ_ASYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, AWAY);
    qz_params_f32(&qa, xz, 1, 4, &s, &z);
    CHECK(s == 1 && z == 3, "asym4 half-away zero point: s = %g (1), z = %g (3)", (double)s, (double)z);
    qa.round = EVEN;
    qz_params_f32(&qa, xz, 1, 4, &s, &z);
    CHECK(s == 1 && z == 2, "asym4 half-even zero point: s = %g (1), z = %g (2)", (double)s, (double)z);

    /* 2-bit asym, codes [0, 3]: min 0, max 3, s = 1, z = 0: 1.2->1, 2.5->2, 1.5->2 (even) */
    float x2[] = {0, 3, 1.2f, 2.5f, 1.5f};
    float e2[] = {0, 3, 1, 2, 2};
    table_f32("asym2 tensor", spec(2, QZ_ASYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, EVEN), x2, e2, 1, 5);

    /* 3-bit asym, codes [0, 7]: min -3.5, max 3.5, s = 7/7 = 1, z = round(3.5) = 4 (both).
     * even: -3.5 -> -4 +4 = 0 -> -4;  3.5 -> 4 +4 = 8 -> 7 -> 3;  .5 -> 0;  -.5 -> -0 -> 0;  2
     * away: -3.5 -> -4;  3.5 -> 3;  .5 -> 1;  -.5 -> -1;  2 */
    float x3[] = {-3.5f, 3.5f, 0.5f, -0.5f, 2};
    float e3[] = {-4, 3, 0, 0, 2};
    float e3a[] = {-4, 3, 1, -1, 2};
    table_f32("asym3 row half-even", spec(3, QZ_ASYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, EVEN), x3, e3, 1, 5);
    table_f32("asym3 row half-away", spec(3, QZ_ASYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, AWAY), x3, e3a, 1, 5);

    /* 8-bit asym, codes [0, 255]: min 0, max 255: s = 1, z = 0: 17.5->18, 18.5->18, 254.6->255 */
    float x8[] = {0, 255, 17.5f, 18.5f, 254.6f, 3.25f};
    float e8[] = {0, 255, 18, 18, 255, 3};
    table_f32("asym8 row half-even", spec(8, QZ_ASYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, EVEN), x8, e8, 1, 6);

    /* 1-bit asym, codes {0, 1}: min 0, max 1, s = 1: .4 -> 0, .6 -> 1 */
    float x1[] = {0, 1, 0.4f, 0.6f};
    float e1[] = {0, 1, 0, 1};
    table_f32("asym1 tensor", spec(1, QZ_ASYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, EVEN), x1, e1, 1, 4);

    /* clip conventions, 4-bit, c = 0.5, min -6, max 9, x/s below is the same for both:
     * CODE : lo = -3, hi = 4.5, s = 7.5/15 = .5, z = round(3/.5) = 6
     *        x/s = -12, 18, -6, 9, 2.4 -> round +6 = -6, 24, 0, 15, 8 -> clamp 0,15,0,15,8
     *        -6 -> -6, 9, -6, 9, 2 -> *.5 = -3, 4.5, -3, 4.5, 1      (both ends clipped)
     * PAPER: s = .5*15/15 = .5, z = round(6/.5) = 12
     *        round +12 = 0, 30, 6, 21, 14 -> clamp 0,15,6,15,14 -> -12 -> -12,3,-6,3,2
     *        *.5 = -6, 1.5, -3, 1.5, 1                                (min kept, top clipped) */
    float xc[] = {-6, 9, -3, 4.5f, 1.2f};
    float ecode[] = {-3, 4.5f, -3, 4.5f, 1};
    float epaper[] = {-6, 1.5f, -3, 1.5f, 1};
    table_f32("asym4 c=0.5 code clip", spec(4, QZ_ASYM, QZ_ROW, 0, 0.5f, QZ_CLIP_CODE, EVEN), xc, ecode,
              1, 5);
    table_f32("asym4 c=0.5 paper clip", spec(4, QZ_ASYM, QZ_ROW, 0, 0.5f, QZ_CLIP_PAPER, EVEN), xc,
              epaper, 1, 5);
    /* 3-bit, c = 0.75, min -4, max 10:
     * CODE : lo = -3, hi = 7.5, s = 10.5/7 = 1.5, z = round(2) = 2
     *        x/s: -4/1.5=-2.67->-3+2=-1->0 -> -2 -> -3;  10/1.5=6.67->7+2=9->7 -> 5 -> 7.5;
     *        3/1.5=2 -> 4 -> 2 -> 3;  -1.5/1.5=-1 -> 1 -> -1 -> -1.5
     * PAPER: s = .75*14/7 = 1.5, z = round(4/1.5=2.67) = 3
     *        -4 -> -3+3=0 -> -3 -> -4.5;  10 -> 7+3=10->7 -> 4 -> 6;  3 -> 2+3 = 5 -> 2 -> 3;
     *        -1.5 -> -1+3 = 2 -> -1 -> -1.5 */
    float xd[] = {-4, 10, 3, -1.5f};
    float ecode3[] = {-3, 7.5f, 3, -1.5f};
    float epaper3[] = {-4.5f, 6, 3, -1.5f};
    table_f32("asym3 c=0.75 code clip", spec(3, QZ_ASYM, QZ_TENSOR, 0, 0.75f, QZ_CLIP_CODE, EVEN), xd,
              ecode3, 2, 2);
    table_f32("asym3 c=0.75 paper clip", spec(3, QZ_ASYM, QZ_TENSOR, 0, 0.75f, QZ_CLIP_PAPER, EVEN), xd,
              epaper3, 2, 2);

    /* per-row, 4-bit: row0 min -5 max 10 (s 1, z 5); row1 min 0 max 30 (s 2, z 0):
     * row1/2 = 0, 15, 1.5, 2.5 -> (even) 0, 15, 2, 2 -> 0, 30, 4, 4 */
    float xr[] = {-5, 10, 0.5f, 1.5f, 0, 30, 3, 5};
    float er[] = {-5, 10, 0, 2, 0, 30, 4, 4};
    table_f32("asym4 per-row", spec(4, QZ_ASYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, EVEN), xr, er, 2, 4);
    /* per-group 2 on the same 2x4: groups {-5,10} {.5,1.5} {0,30} {3,5}
     * g0: s 1, z 5: exact.  g1: s = 1/15, z = round(-7.5) = -8 (even): .5*15 = 7.5 -> 8 - 8 = 0
     *     -> 8*(1/15) -- not exact in float, so only check g0, g2, g3 via a 2-group row:
     * g2 {0,30}: s 2, z 0 exact. g3 {3,5}: s = 2/15, not exact either. Use {0,15},{-15,0}:
     * {0,15}: s 1, z 0. {-15,0}: s 1, z 15: -15 -> 0 -> -15, 0 -> 15 -> 0. */
    float xg[] = {-5, 10, 0, 15, -15, 0, 0, 30};
    float eg[] = {-5, 10, 0, 15, -15, 0, 0, 30};
    table_f32("asym4 per-group2", spec(4, QZ_ASYM, QZ_GROUP, 2, 1, QZ_CLIP_CODE, EVEN), xg, eg, 2, 4);
    /* all-positive group: min 1, max 2.5 (2-bit): s = 1.5/3 = .5, z = round(-2) = -2:
     * 1 -> 2-2 = 0 -> 2 -> 1;  2.5 -> 5-2 = 3 -> 5 -> 2.5;  1.75 -> 3.5->4 (even) -2 = 2 -> 2 */
    float xpos[] = {1, 2.5f, 1.75f};
    float epos[] = {1, 2.5f, 2};
    table_f32("asym2 all-positive (z < 0)", spec(2, QZ_ASYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, EVEN), xpos,
              epos, 1, 3);
}

static void test_degenerate(void)
{
    /* Constant rows are reproduced exactly: s = |v| (1 if v = 0); asym z = round(-v/s) = -+1,
     * round(v/s) + z = 0, Q = (0 - z)*s = v; sym z = 0, round(v/s) = +-1, Q = v. */
    float x[] = {2.5f, 2.5f, 2.5f, -3, -3, -3, 0, 0, 0, 1e-30f, 1e-30f, 1e-30f};
    qz_spec specs[] = {
        spec(4, QZ_ASYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, EVEN),
        spec(4, QZ_ASYM, QZ_ROW, 0, 0.9f, QZ_CLIP_CODE, EVEN),
        spec(4, QZ_ASYM, QZ_ROW, 0, 0.9f, QZ_CLIP_PAPER, AWAY),
        spec(1, QZ_ASYM, QZ_GROUP, 3, 0.5f, QZ_CLIP_CODE, AWAY),
        /* c*min would give z = round(+-0.4) = 0 here and lose the negative row */
        spec(4, QZ_ASYM, QZ_ROW, 0, 0.4f, QZ_CLIP_CODE, EVEN),
        spec(2, QZ_SYM, QZ_ROW, 0, 1, QZ_CLIP_CODE, EVEN),
        spec(8, QZ_SYM, QZ_GROUP, 3, 0.95f, QZ_CLIP_CODE, AWAY),
    };
    for (size_t k = 0; k < N(specs); k++) {
        char d[96];
        qz_describe(&specs[k], d, sizeof d);
        char what[128];
        snprintf(what, sizeof what, "constant rows reproduced: %s", d);
        if (specs[k].scheme == QZ_SYM) {
            /* sym is only degenerate for all-zero rows: a constant v != 0 gives
             * s = c|v|/qmax, v/s = qmax/c, clamped to qmax -> Q = c|v| rounded. Check
             * the all-zero row here and the row 2.5 separately. */
            float xz[] = {0, 0, 0, -0.0f, 0, 0};
            float ez[] = {0, 0, 0, 0, 0, 0};
            table_f32(what, specs[k], xz, ez, 2, 3);
        } else {
            table_f32(what, specs[k], x, x, 4, 3);
        }
    }
    /* sym 4-bit, constant row 2.5 with c = 1: s = 2.5/7, 2.5/s = 7 exactly? Not exactly in
     * float in general, but 7 +- rounding -> 7 -> 7*s: compare with qz_fake_scalar. Instead
     * sym degenerate params: */
    float s[4], z[4];
    qz_spec qa = specs[0];
    int rc = qz_params_f32(&qa, x, 4, 3, s, z);
    CHECK(rc == RS_OK && s[0] == 2.5f && z[0] == -1 && s[1] == 3 && z[1] == 1 && s[2] == 1 &&
              z[2] == 0 && !signbit(z[2]) && s[3] == 1e-30f && z[3] == -1,
          "asym degenerate params: (s,z) = (%g,%g) (%g,%g) (%g,%g) (%g,%g) want (2.5,-1) (3,1) (1,+0) "
          "(1e-30,-1)",
          (double)s[0], (double)z[0], (double)s[1], (double)z[1], (double)s[2], (double)z[2],
          (double)s[3], (double)z[3]);
    qz_spec qs = specs[4];
    float xz[] = {0, 0, 0};
    rc = qz_params_f32(&qs, xz, 1, 3, s, z);
    CHECK(rc == RS_OK && s[0] == 1 && z[0] == 0, "sym all-zero row: s = %g (1), z = %g (0)",
          (double)s[0], (double)z[0]);
    /* underflowing scale: {min, max} = {1, 2} denormal ulps; (max-min)/15 underflows to 0 ->
     * degenerate: s = max|.| = 2 ulps, z = round(-1/2) = -0 -> +0; values stay finite. */
    float tiny = 1.4e-45f;
    float xu[] = {tiny, 2 * tiny, tiny};
    float yu[3];
    rc = qz_params_f32(&qa, xu, 1, 3, s, z);
    int finite = qz_fake_f32(&qa, xu, yu, 1, 3) == RS_OK && isfinite(yu[0]) && isfinite(yu[1]) &&
                 isfinite(yu[2]);
    CHECK(rc == RS_OK && s[0] == 2 * tiny && z[0] == 0 && finite && yu[1] == 2 * tiny,
          "underflowing scale: s = %g (2.8e-45), z = %g, Q finite, max reproduced (%g)", (double)s[0],
          (double)z[0], (double)yu[1]);
}

/* ---------------------------------------------------------------- identity, codes, STE */

static void test_identity(void)
{
    float x[] = {0.1f, -3.7f, 1e-20f, 12345.678f, -0.0f, 2.5f};
    float y[6];
    qz_spec q = qz_spec_make(16, QZ_ASYM, QZ_ROW, 0);
    int rc = qz_fake_f32(&q, x, y, 2, 3);
    CHECK(rc == RS_OK && qz_is_identity(&q) && memcmp(x, y, sizeof x) == 0, "16-bit fake = copy");
    q.bits = 17;
    rc = qz_fake_f32(&q, x, y, 2, 3);
    CHECK(rc == RS_OK && memcmp(x, y, sizeof x) == 0, "17-bit is identity too (bits >= 16)");
    double sum = -1, mean = -1;
    rc = qz_error_f32(&q, x, 2, 3, &sum, &mean);
    CHECK(rc == RS_OK && sum == 0 && mean == 0, "identity error = 0");
    CHECK(qz_fake_scalar_f32(&q, 0.3f, 7, 1) == 0.3f && qz_fake_scalar_f64(&q, 0.3, 7, 1) == 0.3,
          "identity scalar returns x");
    int16_t codes[6];
    float s, z;
    rc = qz_quantize_f32(&q, x, 2, 3, codes, &s, &z);
    CHECK(rc == RS_EINVAL && strlen(rs_last_error()) > 0, "identity quantize rejected: %s",
          rs_last_error());
    float dy[6] = {1, 2, 3, 4, 5, 6}, dx[6];
    q.ste = QZ_STE_CLIPPED;
    rc = qz_ste_backward_f32(&q, x, dy, dx, 2, 3);
    CHECK(rc == RS_OK && memcmp(dx, dy, sizeof dy) == 0, "identity spec: clipped STE passes all");
}

static void test_codes_roundtrip(void)
{
    rs_rng *r = rs_rng_alloc(7, RS_STREAM_DATA);
    const size_t R = 37, C = 96;
    float *x = malloc(R * C * sizeof *x), *y = malloc(R * C * sizeof *y), *d = malloc(R * C * sizeof *d);
    int16_t *codes = malloc(R * C * sizeof *codes);
    float *s = malloc(R * C * sizeof *s), *z = malloc(R * C * sizeof *z);
    fill_random(r, x, R, C);
    qz_gran grans[] = {QZ_TENSOR, QZ_ROW, QZ_GROUP};
    int bits[] = {1, 2, 3, 4, 8};
    size_t fails = 0, range_fails = 0, runs = 0;
    for (int sc = 0; sc < 2; sc++)
        for (size_t gi = 0; gi < 3; gi++)
            for (size_t bi = 0; bi < N(bits); bi++)
                for (int rd = 0; rd < 2; rd++) {
                    if (sc == QZ_SYM && bits[bi] == 1) continue;
                    qz_spec q = spec(bits[bi], (qz_scheme)sc, grans[gi], 32, 0.9f, (qz_clipmode)(rd),
                                     (qz_round)rd);
                    int rc = qz_quantize_f32(&q, x, R, C, codes, s, z);
                    rc |= qz_dequantize_f32(&q, codes, s, z, d, R, C);
                    rc |= qz_fake_f32(&q, x, y, R, C);
                    runs++;
                    if (rc || memcmp(d, y, R * C * sizeof *y) != 0) fails++;
                    for (size_t i = 0; i < R * C; i++)
                        if (codes[i] < qz_qmin(&q) || codes[i] > qz_qmax(&q)) {
                            range_fails++;
                            break;
                        }
                }
    CHECK(fails == 0, "dequantize(quantize(x)) == fake(x) bit for bit: %zu of %zu specs differ", fails,
          runs);
    CHECK(range_fails == 0, "codes within [qmin, qmax]: %zu of %zu specs out of range", range_fails,
          runs);
    /* hand case: asym 4-bit, min -5, max 10: s 1, z 5, codes = round(x) + 5 */
    float xh[] = {-5, 10, 0.5f, 1.5f, -2.5f, 3.7f};
    int16_t ch[6], want[] = {0, 15, 5, 7, 3, 9};
    float sh, zh;
    qz_spec qh = qz_spec_make(4, QZ_ASYM, QZ_TENSOR, 0);
    int rc = qz_quantize_f32(&qh, xh, 1, 6, ch, &sh, &zh);
    CHECK(rc == RS_OK && memcmp(ch, want, sizeof want) == 0 && sh == 1 && zh == 5,
          "asym4 codes by hand: %d %d %d %d %d %d (0 15 5 7 3 9), s %g z %g", ch[0], ch[1], ch[2],
          ch[3], ch[4], ch[5], (double)sh, (double)zh);
    free(x);
    free(y);
    free(d);
    free(codes);
    free(s);
    free(z);
    rs_rng_free(r);
}

static void test_ste(void)
{
    /* sym 3-bit (codes [-4, 3]), c = 0.75, amax 8: s = .75*8/3 = 2. x/s + 0:
     * -8 -> -4 (edge, kept), 6 -> 3 (edge, kept), 6.5 -> 3.25 (cut), 7.9 -> 3.95 (cut),
     * -7.9 -> -3.95 (kept), 0 -> 0 (kept) */
    float x[] = {-8, 6, 6.5f, 7.9f, -7.9f, 0};
    float dy[] = {1, 2, 3, 4, 5, 6}, dx[6];
    float want[] = {1, 2, 0, 0, 5, 6};
    qz_spec q = spec(3, QZ_SYM, QZ_TENSOR, 0, 0.75f, QZ_CLIP_CODE, EVEN);
    int rc = qz_ste_backward_f32(&q, x, dy, dx, 1, 6);
    CHECK(rc == RS_OK && memcmp(dx, dy, sizeof dy) == 0, "identity STE: dx = dy");
    q.ste = QZ_STE_CLIPPED;
    rc = qz_ste_backward_f32(&q, x, dy, dx, 2, 3);
    CHECK(rc == RS_OK && memcmp(dx, want, sizeof want) == 0,
          "clipped STE sym: %g %g %g %g %g %g (want 1 2 0 0 5 6)", (double)dx[0], (double)dx[1],
          (double)dx[2], (double)dx[3], (double)dx[4], (double)dx[5]);
    /* asym 2-bit (codes [0, 3]), code clip c = .75, min -4, max 4: lo -3, hi 3, s = 6/3 = 2,
     * z = round(1.5) = 2. x/s + z: -4 -> 0 kept, 4 -> 4 cut, 1 -> 2.5 kept, 3 -> 3.5 cut,
     * -3 -> .5 kept, 2 -> 3 kept (edge). In place (dx == dy). */
    float xa[] = {-4, 4, 1, 3, -3, 2};
    float g[] = {1, 2, 3, 4, 5, 6};
    float wa[] = {1, 0, 3, 0, 5, 6};
    qz_spec qa = spec(2, QZ_ASYM, QZ_ROW, 0, 0.75f, QZ_CLIP_CODE, EVEN);
    qa.ste = QZ_STE_CLIPPED;
    rc = qz_ste_backward_f32(&qa, xa, g, g, 1, 6);
    CHECK(rc == RS_OK && memcmp(g, wa, sizeof wa) == 0,
          "clipped STE asym in place: %g %g %g %g %g %g (want 1 0 3 0 5 6)", (double)g[0],
          (double)g[1], (double)g[2], (double)g[3], (double)g[4], (double)g[5]);
    /* per-group: the mask uses each group's own (s, z). Two groups of 3 of the row above,
     * {-4,4,1} (s 2, z 2: masks as above) and {3,-3,2} (lo -2.25, hi 2.25, s 1.5,
     * z = round(1.5) = 2: 3/1.5+2 = 4 cut, -3/1.5+2 = 0 kept, 2/1.5+2 = 3.33 cut). */
    float g2[] = {1, 2, 3, 4, 5, 6};
    float w2[] = {1, 0, 3, 0, 5, 0};
    qa.gran = QZ_GROUP;
    qa.group = 3;
    rc = qz_ste_backward_f32(&qa, xa, g2, g2, 1, 6);
    CHECK(rc == RS_OK && memcmp(g2, w2, sizeof w2) == 0,
          "clipped STE per-group: %g %g %g %g %g %g (want 1 0 3 0 5 0)", (double)g2[0],
          (double)g2[1], (double)g2[2], (double)g2[3], (double)g2[4], (double)g2[5]);
}

/* ---------------------------------------------------------------- validation */

static void test_validation(void)
{
    size_t C = 12;
    struct {
        const char *what;
        qz_spec q;
        int want;
    } cases[] = {
        {"bits 0", qz_spec_make(0, QZ_ASYM, QZ_ROW, 0), RS_EINVAL},
        {"bits -3", qz_spec_make(-3, QZ_ASYM, QZ_ROW, 0), RS_EINVAL},
        {"bits 9", qz_spec_make(9, QZ_ASYM, QZ_ROW, 0), RS_EINVAL},
        {"bits 15", qz_spec_make(15, QZ_SYM, QZ_ROW, 0), RS_EINVAL},
        {"bits 16 (identity)", qz_spec_make(16, QZ_SYM, QZ_ROW, 0), RS_OK},
        {"bits 17 (identity)", qz_spec_make(17, QZ_ASYM, QZ_ROW, 0), RS_OK},
        {"sym 1-bit", qz_spec_make(1, QZ_SYM, QZ_ROW, 0), RS_EINVAL},
        {"asym 1-bit", qz_spec_make(1, QZ_ASYM, QZ_ROW, 0), RS_OK},
        {"sym 2-bit", qz_spec_make(2, QZ_SYM, QZ_ROW, 0), RS_OK},
        {"asym 8-bit", qz_spec_make(8, QZ_ASYM, QZ_TENSOR, 0), RS_OK},
        {"clip 0", spec(4, QZ_ASYM, QZ_ROW, 0, 0.0f, QZ_CLIP_CODE, EVEN), RS_EINVAL},
        {"clip 1.5", spec(4, QZ_ASYM, QZ_ROW, 0, 1.5f, QZ_CLIP_CODE, EVEN), RS_EINVAL},
        {"clip -0.5", spec(4, QZ_ASYM, QZ_ROW, 0, -0.5f, QZ_CLIP_CODE, EVEN), RS_EINVAL},
        {"clip NaN", spec(4, QZ_ASYM, QZ_ROW, 0, NAN, QZ_CLIP_CODE, EVEN), RS_EINVAL},
        {"clip 1", spec(4, QZ_ASYM, QZ_ROW, 0, 1.0f, QZ_CLIP_CODE, EVEN), RS_OK},
        {"group 5 on 12 cols", qz_spec_make(4, QZ_ASYM, QZ_GROUP, 5), RS_EINVAL},
        {"group 0", qz_spec_make(4, QZ_ASYM, QZ_GROUP, 0), RS_EINVAL},
        {"group 4 on 12 cols", qz_spec_make(4, QZ_ASYM, QZ_GROUP, 4), RS_OK},
        {"group 5 ignored per-row", qz_spec_make(4, QZ_ASYM, QZ_ROW, 5), RS_OK},
        {"scheme 7", qz_spec_make(4, (qz_scheme)7, QZ_ROW, 0), RS_EINVAL},
        {"granularity 9", qz_spec_make(4, QZ_ASYM, (qz_gran)9, 0), RS_EINVAL},
    };
    for (size_t k = 0; k < N(cases); k++) {
        int rc = qz_spec_check(&cases[k].q, C);
        CHECK(rc == cases[k].want, "spec check %s -> %s (%s)", cases[k].what, rs_strerror(rc),
              rc ? rs_last_error() : "");
    }
    qz_spec bad = qz_spec_make(4, QZ_ASYM, QZ_GROUP, 5);
    CHECK(qz_spec_check(&bad, 0) == RS_OK, "group 5 with cols = 0: divisibility not checked");
    float x[12] = {0}, y[12];
    CHECK(qz_fake_f32(&bad, x, y, 1, 12) == RS_EINVAL, "fake with group not dividing cols -> EINVAL");
    qz_spec bits9 = qz_spec_make(9, QZ_SYM, QZ_ROW, 0);
    CHECK(qz_fake_f32(&bits9, x, y, 1, 12) == RS_EINVAL, "fake with 9 bits -> EINVAL");
    qz_spec ok = qz_spec_make(4, QZ_ASYM, QZ_ROW, 0);
    CHECK(qz_fake_f32(&ok, NULL, y, 1, 12) == RS_EINVAL, "fake with NULL x -> EINVAL");
    CHECK(qz_fake_f32(&ok, NULL, NULL, 0, 12) == RS_OK, "empty matrix: nothing to do");
    CHECK(qz_fake_f32(NULL, x, y, 1, 12) == RS_EINVAL, "NULL spec -> EINVAL");
    /* qmin/qmax table */
    int ok_range = 1;
    for (int b = 2; b <= 8; b++) {
        qz_spec s1 = qz_spec_make(b, QZ_SYM, QZ_ROW, 0), s2 = qz_spec_make(b, QZ_ASYM, QZ_ROW, 0);
        ok_range &= qz_qmin(&s1) == -(1 << (b - 1)) && qz_qmax(&s1) == (1 << (b - 1)) - 1 &&
                    qz_qmin(&s2) == 0 && qz_qmax(&s2) == (1 << b) - 1;
    }
    CHECK(ok_range, "qmin/qmax: sym [-2^(b-1), 2^(b-1)-1], asym [0, 2^b-1] for b = 2..8");
    /* defaults and description */
    qz_spec d = qz_spec_make(4, QZ_ASYM, QZ_ROW, 0);
    CHECK(d.clip == 1.0f && d.clipmode == QZ_CLIP_CODE && d.round == QZ_HALF_EVEN &&
              d.ste == QZ_STE_IDENTITY,
          "qz_spec_make defaults: clip 1, code clip, half-even, identity STE");
    d.clip = 0.9f;
    char buf[96];
    qz_describe(&d, buf, sizeof buf);
    CHECK(strcmp(buf, "4-bit asym per-row c=0.90 (code clip) half-even") == 0, "describe: '%s'", buf);
    qz_spec g = spec(3, QZ_SYM, QZ_GROUP, 128, 1, QZ_CLIP_PAPER, AWAY);
    qz_describe(&g, buf, sizeof buf);
    CHECK(strcmp(buf, "3-bit sym per-group-128 c=1.00 half-away") == 0, "describe: '%s'", buf);
    CHECK(strcmp(qz_scheme_name(QZ_SYM), "sym") == 0 && strcmp(qz_scheme_name(QZ_ASYM), "asym") == 0,
          "scheme names");
}

/* ---------------------------------------------------------------- fast = reference */

static void test_fast_vs_ref(void)
{
    rs_rng *r = rs_rng_alloc(11, RS_STREAM_DATA);
    struct {
        size_t R, C, G;
    } shapes[] = {{1, 1, 1}, {3, 7, 7}, {17, 33, 11}, {5, 96, 32}, {257, 130, 13}, {300, 257, 257},
                  {129, 384, 128}};
    int bits[] = {1, 2, 3, 4, 8};
    float clips[] = {1.0f, 0.95f, 0.9f};
    size_t runs = 0, bad = 0, badp = 0;
    char first[160] = "";
    for (size_t si = 0; si < N(shapes); si++) {
        size_t R = shapes[si].R, C = shapes[si].C, n = R * C;
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *yr = malloc(n * sizeof *yr);
        float *s = malloc(n * sizeof *s), *z = malloc(n * sizeof *z);
        float *sr = malloc(n * sizeof *sr), *zr = malloc(n * sizeof *zr);
        fill_random(r, x, R, C);
        for (int sc = 0; sc < 2; sc++)
            for (int gr = 0; gr < 3; gr++)
                for (size_t bi = 0; bi < N(bits); bi++)
                    for (size_t ci = 0; ci < N(clips); ci++)
                        for (int cm = 0; cm < 2; cm++)
                            for (int rd = 0; rd < 2; rd++) {
                                if (sc == QZ_SYM && (bits[bi] == 1 || cm == 1)) continue;
                                qz_spec q = spec(bits[bi], (qz_scheme)sc, (qz_gran)gr, shapes[si].G,
                                                 clips[ci], (qz_clipmode)cm, (qz_round)rd);
                                int rc = qz_fake_f32(&q, x, y, R, C);
                                rc |= qz_fake_f32_ref(&q, x, yr, R, C, sr, zr);
                                rc |= qz_params_f32(&q, x, R, C, s, z);
                                size_t ng = qz_ngroups(&q, R, C);
                                runs++;
                                if (rc || memcmp(y, yr, n * sizeof *y) != 0) {
                                    if (!bad++) {
                                        char d[96];
                                        qz_describe(&q, d, sizeof d);
                                        snprintf(first, sizeof first, "%zux%zu %s", R, C, d);
                                    }
                                }
                                if (memcmp(s, sr, ng * sizeof *s) || memcmp(z, zr, ng * sizeof *z))
                                    badp++;
                            }
        free(x);
        free(y);
        free(yr);
        free(s);
        free(z);
        free(sr);
        free(zr);
    }
    CHECK(bad == 0, "fast fake == reference bit for bit: %zu of %zu runs differ %s", bad, runs, first);
    CHECK(badp == 0, "fast params == reference params: %zu of %zu runs differ", badp, runs);

    /* Rounding on exact ties, many of them, both signs, through the fast (vectorised,
     * OpenMP) path: sym 8-bit, amax 127 -> s = 1, x = k + 0.5 for random k. */
    size_t n = 1 << 16;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *yr = malloc(n * sizeof *yr);
    float sr[1], zr[1];
    x[0] = 127;
    for (size_t i = 1; i < n; i++) x[i] = (float)((long)rs_rng_uint(r, 254) - 127) + 0.5f;
    x[1] = 0.49999997f; /* 0.5 - 2^-25: rounds to 0 in both modes (floor(x + .5) would give 1) */
    x[2] = -0.49999997f;
    for (int rd = 0; rd < 2; rd++) {
        qz_spec q = spec(8, QZ_SYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, (qz_round)rd);
        int rc = qz_fake_f32(&q, x, y, 1, n) | qz_fake_f32_ref(&q, x, yr, 1, n, sr, zr);
        size_t wrong = 0;
        for (size_t i = 3; i < n; i++) {
            float k = x[i] - 0.5f; /* the integer below the tie */
            float want = rd == EVEN ? (fmodf(fabsf(k), 2) == 0 ? k : k + 1)
                                    : (x[i] > 0 ? k + 1 : k);
            want = want > 127 ? 127 : want;
            if (y[i] != want) wrong++;
        }
        CHECK(rc == RS_OK && memcmp(y, yr, n * sizeof *y) == 0 && wrong == 0 && y[1] == 0 && y[2] == 0,
              "%zu exact ties (%s): fast == ref, %zu wrong vs the rule, 0.49999997 -> %g, -0.49999997 "
              "-> %g",
              n - 3, rd == EVEN ? "half-even" : "half-away", wrong, (double)y[1], (double)y[2]);
    }
    /* in place gives the same as out of place */
    qz_spec q = spec(4, QZ_ASYM, QZ_GROUP, 64, 0.9f, QZ_CLIP_CODE, EVEN);
    fill_random(r, x, 256, 256);
    qz_fake_f32(&q, x, y, 256, 256);
    qz_fake_f32(&q, x, x, 256, 256);
    CHECK(memcmp(x, y, n * sizeof *x) == 0, "in-place fake == out-of-place");
    /* thread count does not change results (fake and error sums) */
    fill_random(r, x, 256, 256);
    double s1, sN;
    qz_spec qt = spec(4, QZ_ASYM, QZ_TENSOR, 0, 0.95f, QZ_CLIP_PAPER, AWAY);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    qz_fake_f32(&qt, x, y, 256, 256);
    qz_error_f32(&qt, x, 256, 256, &s1, NULL);
    omp_set_num_threads(nt > 1 ? nt : 3);
    qz_fake_f32(&qt, x, yr, 256, 256);
    qz_error_f32(&qt, x, 256, 256, &sN, NULL);
    omp_set_num_threads(nt);
    CHECK(memcmp(y, yr, n * sizeof *y) == 0 && s1 == sN,
          "1 thread vs %d threads: same Q(x), same error sum (%.17g vs %.17g)", nt > 1 ? nt : 3, s1, sN);
    free(x);
    free(y);
    free(yr);
    rs_rng_free(r);
}

/* ---------------------------------------------------------------- error metrics, f64 */

static void test_error_and_f64(void)
{
    rs_rng *r = rs_rng_alloc(5, RS_STREAM_DATA);
    const size_t R = 190, C = 200, n = R * C;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    double *xd = malloc(n * sizeof *xd), *yd = malloc(n * sizeof *yd);
    fill_random(r, x, R, C);
    for (size_t i = 0; i < n; i++) xd[i] = x[i];
    qz_spec specs[] = {spec(4, QZ_ASYM, QZ_ROW, 0, 0.9f, QZ_CLIP_CODE, EVEN),
                       spec(3, QZ_SYM, QZ_GROUP, 40, 1, QZ_CLIP_CODE, AWAY),
                       spec(8, QZ_SYM, QZ_TENSOR, 0, 0.95f, QZ_CLIP_CODE, EVEN)};
    for (size_t k = 0; k < N(specs); k++) {
        char d[96];
        qz_describe(&specs[k], d, sizeof d);
        double sum, mean, direct = 0;
        qz_fake_f32(&specs[k], x, y, R, C);
        for (size_t i = 0; i < n; i++) direct += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        int rc = qz_error_f32(&specs[k], x, R, C, &sum, &mean);
        CHECK(rc == RS_OK && fabs(sum - direct) <= 1e-12 * direct && direct > 0 &&
                  fabs(mean - direct / n) <= 1e-12 * direct / n,
              "error_f32 %s: sum %.10g vs direct %.10g, mean %.6g", d, sum, direct, mean);
        double direct64 = 0;
        qz_fake_f64(&specs[k], xd, yd, R, C);
        for (size_t i = 0; i < n; i++) direct64 += (yd[i] - xd[i]) * (yd[i] - xd[i]);
        rc = qz_error_f64(&specs[k], xd, R, C, &sum, NULL);
        CHECK(rc == RS_OK && fabs(sum - direct64) <= 1e-12 * direct64,
              "error_f64 %s: sum %.10g vs direct %.10g", d, sum, direct64);
        /* f32 and f64 grids differ by rounding only: the errors agree to a few percent,
         * and every f64 output is within one f32 step of the f32 output */
        CHECK(fabs(direct64 - direct) <= 0.05 * direct, "error f32 %.6g ~ f64 %.6g (5%%)", direct,
              direct64);
    }
    /* f32 vs f64 where every operation is exact: values on a 1/16 grid, s a power of 2.
     * sym 4-bit: amax 1.75 -> s = .25; asym 4-bit: min -1, max 2.75 -> s = .25, z = 4. */
    float xe[64];
    double xed[64], ye[64];
    float yf[64];
    for (int i = 0; i < 64; i++) {
        xe[i] = (float)((int)rs_rng_uint(r, 60) - 16) / 16.0f; /* [-1, 2.6875] */
        xed[i] = xe[i];
    }
    xe[0] = -1;
    xe[1] = 2.75f;
    xed[0] = -1;
    xed[1] = 2.75;
    int same = 1;
    for (int rd = 0; rd < 2; rd++) {
        qz_spec qa = spec(4, QZ_ASYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, (qz_round)rd);
        qz_fake_f32(&qa, xe, yf, 8, 8);
        qz_fake_f64(&qa, xed, ye, 8, 8);
        for (int i = 0; i < 64; i++) same &= (double)yf[i] == ye[i];
        xe[1] = 1.75f; /* sym: amax 1.75 */
        xed[1] = 1.75;
        for (int i = 2; i < 64; i++) {
            xe[i] = fminf(xe[i], 1.75f);
            xed[i] = xe[i];
        }
        qz_spec qs = spec(4, QZ_SYM, QZ_TENSOR, 0, 1, QZ_CLIP_CODE, (qz_round)rd);
        qz_fake_f32(&qs, xe, yf, 8, 8);
        qz_fake_f64(&qs, xed, ye, 8, 8);
        for (int i = 0; i < 64; i++) same &= (double)yf[i] == ye[i];
        xe[1] = 2.75f;
        xed[1] = 2.75;
    }
    CHECK(same, "f32 == f64 on a dyadic grid (sym and asym 4-bit, both roundings)");
    /* scalar API = array API for given (s, z) */
    qz_spec q = spec(4, QZ_ASYM, QZ_ROW, 0, 0.9f, QZ_CLIP_CODE, AWAY);
    float s[190], z[190];
    qz_params_f32(&q, x, R, C, s, z);
    qz_fake_f32(&q, x, y, R, C);
    size_t diff = 0;
    for (size_t i = 0; i < n; i++)
        if (qz_fake_scalar_f32(&q, x[i], s[i / C], z[i / C]) != y[i]) diff++;
    double sd[190], zd[190];
    qz_params_f64(&q, xd, R, C, sd, zd);
    qz_fake_f64(&q, xd, yd, R, C);
    for (size_t i = 0; i < n; i++)
        if (qz_fake_scalar_f64(&q, xd[i], sd[i / C], zd[i / C]) != yd[i]) diff++;
    CHECK(diff == 0, "fake_scalar (f32 and f64) == array fake with the same (s, z): %zu differ", diff);
    free(x);
    free(y);
    free(xd);
    free(yd);
    rs_rng_free(r);
}

/* ---------------------------------------------------------------- PyTorch fixture */

/* Format (little endian), written by tools/quant_fixture.py:
 *   "RSQZFIX\0", u32 version (1), u32 ninputs, u32 ncases
 *   ninputs x { u32 rows, u32 cols, f32 x[rows*cols] }
 *   ncases  x { i32 input, bits, scheme, gran, group, clipmode, round, ste; f32 clip;
 *               u32 flags (1: gradient follows); f32 y[n]; [f32 g[n], f32 dx[n]] } */
typedef struct {
    const unsigned char *p;
    size_t left;
    int ok;
} reader;

static int rd_bytes(reader *r, void *dst, size_t n)
{
    if (!r->ok || n > r->left) return r->ok = 0;
    memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return 1;
}
static uint32_t rd_u32(reader *r)
{
    uint32_t v = 0;
    rd_bytes(r, &v, 4);
    return v;
}
/* A pointer to n floats inside the buffer, or NULL if the file is too short. */
static const float *rd_floats(reader *r, size_t n)
{
    if (!r->ok || n > r->left / 4) {
        r->ok = 0;
        return NULL;
    }
    const float *f = (const float *)(const void *)r->p;
    r->p += 4 * n;
    r->left -= 4 * n;
    return f;
}

static void test_fixture(void)
{
    const char *path = getenv("QUANT_FIXTURE");
    if (!path) path = "tests/fixtures/quant_torch.bin";
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "fixture %s opens (regenerate with tools/quant_fixture.py, see tools/README.md; "
                     "run tests from the repository root or set QUANT_FIXTURE)", path);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *buf = malloc(sz > 0 ? (size_t)sz + 4 : 4); /* float-aligned storage */
    size_t got = sz > 0 ? fread(buf, 1, (size_t)sz, f) : 0;
    fclose(f);
    reader r = {(const unsigned char *)buf, got, got == (size_t)sz};
    char magic[8] = {0};
    rd_bytes(&r, magic, 8);
    uint32_t version = rd_u32(&r), ninputs = rd_u32(&r), ncases = rd_u32(&r);
    CHECK(r.ok && memcmp(magic, "RSQZFIX", 8) == 0 && version == 1 && ninputs <= 64 && ncases < 100000,
          "fixture header: magic, version %u (want 1), %u inputs, %u cases", version, ninputs, ncases);
    if (!r.ok || memcmp(magic, "RSQZFIX", 8) != 0 || version != 1 || ninputs > 64) {
        free(buf);
        return;
    }
    const float *inx[64];
    uint32_t inR[64], inC[64];
    for (uint32_t i = 0; i < ninputs && r.ok; i++) {
        inR[i] = rd_u32(&r);
        inC[i] = rd_u32(&r);
        inx[i] = (inR[i] && inC[i] <= (1u << 24) / inR[i]) ? rd_floats(&r, (size_t)inR[i] * inC[i])
                                                          : (r.ok = 0, NULL);
    }
    size_t ncase_ok = 0, nmis_cases = 0, nmis_elems = 0, nelems = 0, ngrad = 0, ngrad_bad = 0;
    char firstbad[160] = "";
    float *y = NULL, *dx = NULL;
    size_t cap = 0;
    uint32_t c;
    for (c = 0; c < ncases && r.ok; c++) {
        int32_t h[8];
        float clip;
        rd_bytes(&r, h, sizeof h);
        rd_bytes(&r, &clip, 4);
        uint32_t flags = rd_u32(&r);
        if (!r.ok || h[0] < 0 || (uint32_t)h[0] >= ninputs || h[4] < 0) {
            r.ok = 0;
            break;
        }
        size_t R = inR[h[0]], C = inC[h[0]], n = R * C;
        qz_spec q = qz_spec_make(h[1], (qz_scheme)h[2], (qz_gran)h[3], (size_t)h[4]);
        q.clipmode = (qz_clipmode)h[5];
        q.round = (qz_round)h[6];
        q.ste = (qz_ste)h[7];
        q.clip = clip;
        const float *want = rd_floats(&r, n);
        const float *g = NULL, *dxw = NULL;
        if (flags & 1) {
            g = rd_floats(&r, n);
            dxw = rd_floats(&r, n);
        }
        if (!r.ok) break;
        if (n > cap) {
            free(y);
            free(dx);
            y = malloc(n * sizeof *y);
            dx = malloc(n * sizeof *dx);
            cap = n;
        }
        int rc = qz_fake_f32(&q, inx[h[0]], y, R, C);
        size_t mis = 0;
        for (size_t i = 0; i < n; i++) mis += memcmp(&y[i], &want[i], 4) != 0;
        nelems += n;
        if (rc == RS_OK) ncase_ok++;
        if (rc || mis) {
            nmis_elems += mis;
            if (!nmis_cases++) {
                char d[96];
                qz_describe(&q, d, sizeof d);
                snprintf(firstbad, sizeof firstbad, "case %u (%s, input %d): rc %d, %zu mismatches", c, d,
                         h[0], rc, mis);
            }
        }
        if (g) {
            ngrad++;
            rc = qz_ste_backward_f32(&q, inx[h[0]], g, dx, R, C);
            if (rc || memcmp(dx, dxw, n * sizeof *dx) != 0) ngrad_bad++;
        }
    }
    CHECK(r.ok && c == ncases && r.left == 0,
          "fixture parsed: %u of %u cases, %zu bytes left over (want 0)", c, ncases, r.left);
    CHECK(nmis_cases == 0 && ncase_ok == ncases && ncases > 0,
          "PyTorch fixture: %zu of %u cases differ, %zu of %zu floats differ bit for bit %s", nmis_cases,
          ncases, nmis_elems, nelems, firstbad);
    CHECK(ngrad >= 2 && ngrad_bad == 0, "PyTorch STE gradients (x + (Q(x)-x).detach()): %zu of %zu differ",
          ngrad_bad, ngrad);
    free(y);
    free(dx);
    free(buf);
}

int main(void)
{
    test_symmetric();
    test_asymmetric();
    test_degenerate();
    test_identity();
    test_codes_roundtrip();
    test_ste();
    test_validation();
    test_fast_vs_ref();
    test_error_and_f64();
    test_fixture();
    return check_summary("test_quant");
}
