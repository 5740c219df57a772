/* rostesim: the integer inference path (llm/quantize/intq.h, llm/quantize/intq_kernels.h).
 *   - the u8 x u4 GEMM: AVX2 kernel, portable loop and dispatcher against the _ref loop, exact
 *     integers, on random codes and edge values (all-maximal codes, zeros, widths that are
 *     not multiples of 64); packing round trip;
 *   - exactness against the fake-quant path on the three families (llama_gqa, neox_parallel,
 *     qwen2_gqa), each with plain W4A4KV4 and with R1-R4 rotations (W4A8, symmetric,
 *     KV4 / KV16): every quantized site of every layer on the model's real activations
 *     within the bound of intq.h, also with zero points in the 1e4-1e5; whole model,
 *     flip-aware (e2e below): every quantizer's codes compared between the paths, logits
 *     within 1e-4 of their scale and the same argmax before the first (boundary) flip, on
 *     random tokens and teacher-forced on the fake path's greedy continuation; prefill
 *     against cached one-token decoding; save/load round trip bit for bit;
 *   - the opt-in int8 embedding / LM head (LLM_INTQ_HEAD_Q8): the s8 x s8 GEMM (AVX2, portable,
 *     dispatcher) against its _ref loop on random codes and the extremes +-127, the int8
 *     quantizer's rounding (ties to even, zero / tiny / non-finite rows); on a tied and an
 *     untied family: every embedding row within half a step of the fp32 one, the head's
 *     logits within the bound of intq.h against the fp32 head, the whole model's logits
 *     against the fp32-head int model (measured, bounded), save/load of a q8 file bit for
 *     bit, corrupt int8 sections refused, and a version-1 file (the previous layout) still
 *     read with the same logits;
 *   - clear errors: no QAT state, unsupported bits, corrupt or truncated files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "llm/io/safetensors.h"
#include "llm/quantize/intq.h"
#include "llm/quantize/intq_kernels.h"
#include "llm/nn/kernels.h"
#include "llm/nn/model.h"
#include "llm/quantize/qat.h"
#include "llm/quantize/rotate.h"
#include "llm/nn/sample.h"
#include "quant/rng.h"
#include "quant/rotation.h"
#include "quant/status.h"

/* ---- kernels ------------------------------------------------------------------------------ */

static void test_gemm(rs_rng *rng)
{
    const int Ns[] = {1, 3, 4, 5, 9}, ICs[] = {1, 63, 64, 72, 130, 576, 1536}, OCs[] = {1, 7, 33};
    int bad_pack = 0, bad_ref = 0, bad_il = 0, runs = 0, runs_a4 = 0;
    for (int mode = 0; mode < 3; mode++) /* random, all maximal, zeros mixed with maximal */
        for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
            for (size_t b = 0; b < sizeof ICs / sizeof *ICs; b++)
                for (size_t c = 0; c < sizeof OCs / sizeof *OCs; c++) {
                    int N = Ns[a], IC = ICs[b], OC = OCs[c], ICp = (int)iq_padded((size_t)IC);
                    uint8_t *x = calloc((size_t)N * ICp, 1), *w = malloc((size_t)OC * ICp / 2);
                    uint8_t *u = malloc((size_t)IC), *u2 = malloc((size_t)IC);
                    int32_t *r0 = malloc((size_t)N * OC * 4), *r1 = malloc((size_t)N * OC * 4);
                    int32_t *r2 = malloc((size_t)N * OC * 4), *r3 = malloc((size_t)N * OC * 4);
                    int32_t *r4 = malloc((size_t)N * OC * 4), *r5 = malloc((size_t)N * OC * 4);
                    const int amax = mode == 0 && (b & 1) ? 15 : 255; /* every other width: 4-bit activations */
                    for (int n = 0; n < N; n++)
                        for (int i = 0; i < IC; i++)
                            x[(size_t)n * ICp + i] = (uint8_t)(mode == 1 ? 255 : mode == 2 ? ((i + n) % 3 ? 255 : 0)
                                                                                     : rs_rng_uniform(rng) * (amax + 1));
                    for (int o = 0; o < OC; o++) {
                        for (int i = 0; i < IC; i++)
                            u[i] = (uint8_t)(mode == 1 ? 15 : mode == 2 ? ((i + o) % 2 ? 15 : 0) : rs_rng_uniform(rng) * 16);
                        iq_pack4(w + (size_t)o * ICp / 2, u, (size_t)IC);
                        iq_unpack4(u2, w + (size_t)o * ICp / 2, (size_t)IC);
                        if (memcmp(u, u2, (size_t)IC)) bad_pack++;
                    }
                    iq_gemm_u8u4_ref(r0, x, w, N, ICp, OC);
                    iq_gemm_u8u4_portable(r1, x, w, N, ICp, OC);
                    iq_gemm_u8u4(r2, x, w, N, ICp, OC, amax);
                    int have = iq_gemm_u8u4_avx2(r3, x, w, N, ICp, OC);
                    if (memcmp(r0, r1, (size_t)N * OC * 4) || memcmp(r0, r2, (size_t)N * OC * 4) ||
                        (have && memcmp(r0, r3, (size_t)N * OC * 4)))
                        bad_ref++;
                    if (iq_gemm_u8u4_vnni(r3, x, w, N, ICp, OC) && memcmp(r0, r3, (size_t)N * OC * 4)) bad_ref++;
                    /* the IL16 layout: repacked, its naive loop and its VNNI kernel */
                    uint8_t *wil = malloc(iq_il16_bytes(OC, ICp));
                    iq_repack_il16(wil, w, OC, ICp);
                    iq_gemm_u8u4_il16_ref(r3, x, wil, N, ICp, OC);
                    if (memcmp(r0, r3, (size_t)N * OC * 4)) bad_il++;
                    memset(r3, 0x55, (size_t)N * OC * 4);
                    if (iq_gemm_u8u4_il16_vnni(r3, x, wil, N, ICp, OC) && memcmp(r0, r3, (size_t)N * OC * 4)) bad_il++;
                    /* the A4 kernel: on codes <= 15 (these, or the all-15 edge case) */
                    for (size_t e = 0; e < (size_t)N * ICp; e++) if (amax == 255 && mode) x[e] = x[e] ? 15 : 0;
                    if (amax == 15 || mode) {
                        iq_gemm_u8u4_ref(r4, x, w, N, ICp, OC);
                        if (iq_gemm_u4u4_avx2(r5, x, w, N, ICp, OC) && memcmp(r4, r5, (size_t)N * OC * 4)) bad_ref++;
                        if (iq_gemm_u8u4_vnni(r5, x, w, N, ICp, OC) && memcmp(r4, r5, (size_t)N * OC * 4)) bad_ref++;
                        if (iq_gemm_u8u4_il16_vnni(r5, x, wil, N, ICp, OC) && memcmp(r4, r5, (size_t)N * OC * 4)) bad_il++;
                        iq_gemm_u8u4(r5, x, w, N, ICp, OC, 15);
                        if (memcmp(r4, r5, (size_t)N * OC * 4)) bad_ref++;
                        runs_a4++;
                    }
                    if (mode == 1 && r0[0] != 255 * 15 * IC) bad_ref++; /* the closed form of all-maximal codes */
                    runs++;
                    free(x), free(w), free(wil), free(u), free(u2), free(r0), free(r1), free(r2), free(r3), free(r4), free(r5);
                }
    CHECK(bad_pack == 0, "iq_pack4/iq_unpack4 round trip (%d mismatches)", bad_pack);
    CHECK(bad_ref == 0,
          "u8 x u4 GEMM: portable, dispatcher (%s), AVX2 (%s) and AVX-512 VNNI (%s) equal the _ref loop on %d shapes, "
          "the A4 kernels on %d",
          iq_kernel_name(), iq_have_avx2() ? "tested" : "not on this CPU", iq_have_vnni() ? "tested" : "not on this CPU", runs,
          runs_a4);
    CHECK(bad_il == 0, "u8 x u4 GEMM on the IL16 layout (repacked from the rows): its naive loop and its VNNI kernel (%s) "
          "equal the _ref loop on the same %d shapes (OC 1, 7, 33: partial 16-channel groups), the A4 codes too",
          iq_have_vnni() ? "tested" : "not on this CPU", runs);
    /* the largest width the kernels accept: all-maximal codes must not overflow int32 */
    int ICp = (int)IQ_MAX_IC;
    uint8_t *x = malloc((size_t)ICp), *w = malloc((size_t)ICp / 2);
    memset(x, 255, (size_t)ICp), memset(w, 0xff, (size_t)ICp / 2);
    int32_t r0 = 0, r2 = 0;
    iq_gemm_u8u4_ref(&r0, x, w, 1, ICp, 1);
    iq_gemm_u8u4(&r2, x, w, 1, ICp, 1, 255);
    CHECK(r0 == r2 && (int64_t)r0 == (int64_t)255 * 15 * ICp, "IQ_MAX_IC all-maximal codes: %d = 255*15*%d, no overflow", r2, ICp);
    memset(x, 15, (size_t)ICp);
    iq_gemm_u8u4_ref(&r0, x, w, 1, ICp, 1);
    iq_gemm_u8u4(&r2, x, w, 1, ICp, 1, 15);
    CHECK(r0 == r2 && r0 == 225 * ICp, "IQ_MAX_IC all-maximal 4-bit codes (A4 kernel): %d = 15*15*%d, no s16 overflow", r2, ICp);
    /* each kernel the CPU has, at the largest width, all-maximal codes */
    memset(x, 255, (size_t)ICp);
    int32_t r3 = 0, r4 = 0;
    int hv = iq_gemm_u8u4_vnni(&r3, x, w, 1, ICp, 1), ha = iq_gemm_u8u4_avx2(&r4, x, w, 1, ICp, 1);
    uint8_t *wil = malloc(iq_il16_bytes(1, ICp));
    iq_repack_il16(wil, w, 1, ICp);
    int32_t r5 = 0;
    int hi = iq_gemm_u8u4_il16_vnni(&r5, x, wil, 1, ICp, 1);
    free(wil);
    CHECK(!hi || (int64_t)r5 == (int64_t)255 * 15 * ICp, "IQ_MAX_IC all-maximal codes, the IL16 VNNI kernel: %s",
          hi ? "exact" : "not on this CPU");
    CHECK((!hv || (int64_t)r3 == (int64_t)255 * 15 * ICp) && (!ha || (int64_t)r4 == (int64_t)255 * 15 * ICp),
          "IQ_MAX_IC all-maximal codes, each kernel alone: VNNI %s, AVX2 %s", hv ? "exact" : "not on this CPU",
          ha ? "exact" : "not on this CPU");
    free(x), free(w);
}

/* The s8 x s8 GEMM of the int8 head: AVX2 kernel, portable loop and dispatcher equal the
 * _ref loop on random codes, the extremes +-127 (same and opposite signs), zeros mixed with
 * extremes; odd N and OC (the 4-row AVX2 blocks and the rows left over), N = 1 (decode) and
 * N > 1 (prefill / evaluation), widths not multiples of 64. */
static void test_gemm_s8(rs_rng *rng)
{
    const int Ns[] = {1, 2, 3, 4, 5, 9}, ICs[] = {1, 31, 32, 33, 72, 576, 577}, OCs[] = {1, 3, 4, 5, 7, 33};
    int bad = 0, runs = 0, closed = 0;
    for (int mode = 0; mode < 4; mode++) /* random, all +127 x -127, all -127 x -127, zeros and extremes */
        for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
            for (size_t b = 0; b < sizeof ICs / sizeof *ICs; b++)
                for (size_t c = 0; c < sizeof OCs / sizeof *OCs; c++) {
                    int N = Ns[a], IC = ICs[b], OC = OCs[c], ICp = (int)iq_padded_s8((size_t)IC);
                    int8_t *x = calloc((size_t)N * ICp, 1), *w = calloc((size_t)OC * ICp, 1);
                    int32_t *r0 = malloc((size_t)N * OC * 4), *r1 = malloc((size_t)N * OC * 4);
                    int32_t *r2 = malloc((size_t)N * OC * 4), *r3 = malloc((size_t)N * OC * 4);
                    for (int n = 0; n < N; n++)
                        for (int i = 0; i < IC; i++)
                            x[(size_t)n * ICp + i] = (int8_t)(mode == 0 ? (int)(rs_rng_uniform(rng) * 255) - 127
                                                              : mode == 1 ? 127 : mode == 2 ? -127
                                                                                            : ((i + n) % 3 ? 127 : 0));
                    for (int o = 0; o < OC; o++)
                        for (int i = 0; i < IC; i++)
                            w[(size_t)o * ICp + i] = (int8_t)(mode == 0 ? (int)(rs_rng_uniform(rng) * 255) - 127
                                                              : mode == 3 ? ((i + o) % 2 ? -127 : 0) : -127);
                    iq_gemm_s8s8_ref(r0, x, w, N, ICp, OC);
                    iq_gemm_s8s8_portable(r1, x, w, N, ICp, OC);
                    iq_gemm_s8s8(r2, x, w, N, ICp, OC);
                    int have = iq_gemm_s8s8_avx2(r3, x, w, N, ICp, OC);
                    const size_t nb = (size_t)N * OC * 4;
                    if (memcmp(r0, r1, nb) || memcmp(r0, r2, nb) || (have && memcmp(r0, r3, nb))) bad++;
                    if (iq_gemm_s8s8_vnni(r3, x, w, N, ICp, OC) && memcmp(r0, r3, nb)) bad++;
                    if (mode == 1 || mode == 2) { /* closed form: every element -+127*127*IC */
                        closed++;
                        for (size_t e = 0; e < (size_t)N * OC; e++)
                            if (r0[e] != (mode == 1 ? -1 : 1) * 16129 * IC) bad++;
                    }
                    runs++;
                    free(x), free(w), free(r0), free(r1), free(r2), free(r3);
                }
    CHECK(bad == 0, "s8 x s8 GEMM: portable, dispatcher, AVX2 (%s) and AVX-512 VNNI (%s) equal the _ref loop on %d shapes x "
          "modes (random, +-127 extremes, zeros), %d of them also the closed form +-16129 IC",
          iq_have_avx2() ? "tested" : "not on this CPU", iq_have_vnni() ? "tested" : "not on this CPU", runs, closed);
    /* the largest width: all -127 x +127 must not overflow int32 (16129 * 131072 < 2^31) */
    const int ICp = (int)IQ_S8_MAX_IC;
    int8_t *x = malloc((size_t)ICp * 5), *w = malloc((size_t)ICp * 5);
    memset(x, 127, (size_t)ICp * 5), memset(w, 0x81, (size_t)ICp * 5); /* 0x81 = -127 */
    int32_t r0[25], r2[25];
    iq_gemm_s8s8_ref(r0, x, w, 5, ICp, 5);
    iq_gemm_s8s8(r2, x, w, 5, ICp, 5);
    int ok = !memcmp(r0, r2, sizeof r0);
    for (int e = 0; e < 25; e++) ok &= (int64_t)r2[e] == -(int64_t)16129 * ICp;
    CHECK(ok, "IQ_S8_MAX_IC (%d) all 127 x -127: %d = -16129*%d, no overflow, 5 x 5 (4-row block and remainder)", ICp, r2[0],
          ICp);
    /* the VNNI kernel's offset sum (x + 128) * w passes 2^31 here: its modulo-2^32 correction
     * must still give the exact products, with both signs */
    int hv = iq_gemm_s8s8_vnni(r2, x, w, 5, ICp, 5);
    ok = 1;
    for (int e = 0; e < 25; e++) ok &= (int64_t)r2[e] == -(int64_t)16129 * ICp;
    memset(x, 0x81, (size_t)ICp * 5); /* -127 x -127 */
    hv &= iq_gemm_s8s8_vnni(r2, x, w, 5, ICp, 5);
    for (int e = 0; e < 25; e++) ok &= (int64_t)r2[e] == (int64_t)16129 * ICp;
    CHECK(!hv || ok, "IQ_S8_MAX_IC, the VNNI kernel alone (%s): +-16129*%d exact though (x + 128) * w passes 2^31",
          hv ? "tested" : "not on this CPU", ICp);
    free(x), free(w);
    /* the quantizer: ties to even, zero / tiny / non-finite rows, padding */
    float xs[5][8] = {{127, 2.5f, 3.5f, -2.5f, -0.5f, 0.5f, 1.5f, -127},
                      {0},
                      {1e-38f, -1e-38f},
                      {1, NAN, 2},
                      {254, 1, 3, -5, 253, 0.25f, -254, 100}};
    int8_t q[5][32];
    float sc[5];
    memset(q, 99, sizeof q);
    iq_quantize_s8(&q[0][0], sc, &xs[0][0], 5, 8, 32);
    const int8_t want0[8] = {127, 2, 4, -2, 0, 0, 2, -127}, want4[8] = {127, 0, 2, -2, 126, 0, -127, 50};
    int pad = 1, zeros = 1;
    for (int r = 0; r < 5; r++)
        for (int i = 8; i < 32; i++) pad &= q[r][i] == 0;
    for (int r = 1; r < 4; r++)
        for (int i = 0; i < 8; i++) zeros &= q[r][i] == 0;
    CHECK(!memcmp(q[0], want0, 8) && sc[0] == 1.0f && !memcmp(q[4], want4, 8) && sc[4] == 2.0f && sc[1] == 1.0f &&
          sc[2] == 1.0f && isnan(sc[3]) && pad && zeros,
          "iq_quantize_s8: scale max|x|/127, ties to even (2.5 -> 2, 3.5 -> 4, 0.5 -> 0, -2.5 -> -2); a zero row and a "
          "1e-38 row: scale 1, codes 0; a NaN row: scale NaN, codes 0; padding 0");
}

/* ---- exactness against the fake-quant path ------------------------------------------------- */

typedef struct {
    float *inp[64][LLM_NSITES];
    int N;
} taps;

static int tap(void *ctx, int site, int layer, const float *inp, int N, int IC)
{
    taps *t = ctx;
    if (layer < 0 || layer >= 64 || site < 0 || site >= LLM_NSITES) return RS_OK;
    free(t->inp[layer][site]);
    t->inp[layer][site] = malloc((size_t)N * IC * sizeof(float));
    if (!t->inp[layer][site]) return RS_ENOMEM;
    memcpy(t->inp[layer][site], inp, (size_t)N * IC * sizeof(float));
    t->N = N;
    return RS_OK;
}

static void site_w(const llm_model *m, int l, int site, const float **w, const float **b, int *OC, int *IC)
{
    const llm_config *c = &m->cfg;
    const llm_layer *L = &m->w.layers[l];
    int QKV = (c->n_head + 2 * c->n_kv_head) * c->head_dim, HD = c->n_head * c->head_dim;
    int F1 = c->arch == LLM_GPT_NEOX ? c->d_ff : 2 * c->d_ff;
    const float *W[4] = {L->qkv_w, L->o_w, L->up_w, L->down_w}, *B[4] = {L->qkv_b, L->o_b, L->up_b, L->down_b};
    int oc[4] = {QKV, c->d, F1, c->d}, ic[4] = {c->d, HD, c->d, c->d_ff};
    *w = W[site], *b = B[site], *OC = oc[site], *IC = ic[site];
}

/* Every site of every layer on the captured inputs: |int - fake| within intq.h's bound.
 * Returns the largest diff / bound ratio (> 1: violated). */
static double site_bounds(llm_model *m, const llm_intq *iq, taps *t, int *nsites)
{
    const llm_qat *q = m->qat;
    double worst = 0;
    const double u = 0x1p-24;
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int s = 0; s < LLM_NSITES; s++) {
            const float *w, *b;
            int OC, IC, N = t->N;
            site_w(m, l, s, &w, &b, &OC, &IC);
            float *fo = malloc((size_t)N * OC * 4), *io = malloc((size_t)N * OC * 4), *xr = malloc((size_t)N * IC * 4);
            int16_t *ca = malloc((size_t)N * IC * 2), *cw = malloc((size_t)OC * IC * 2);
            float *sa = malloc((size_t)N * 4), *za = malloc((size_t)N * 4), *sw = malloc((size_t)OC * 4), *zw = malloc((size_t)OC * 4);
            int st = llm_qat_linear_forward(m->qat, s, l, fo, t->inp[l][s], w, b, N, IC, OC);
            st |= llm_intq_linear(iq, s, l, t->inp[l][s], N, io);
            memcpy(xr, t->inp[l][s], (size_t)N * IC * 4);
            if (s == LLM_SITE_DOWN && q->r4 && q->r4_on[l]) st |= rot_apply_rows_f32(q->r4, xr, (size_t)N, 0);
            st |= qz_quantize_f32(&q->a, xr, (size_t)N, (size_t)IC, ca, sa, za);
            st |= qz_quantize_f32(&q->w, w, (size_t)OC, (size_t)IC, cw, sw, zw);
            if (st) {
                worst = 1e30;
                printf("  site %s layer %d: %s\n", llm_site_name(s), l, rs_last_error());
            }
            for (int n = 0; n < N && !st; n++)
                for (int o = 0; o < OC; o++) {
                    double A = 0;
                    for (int i = 0; i < IC; i++)
                        A += fabs(((double)ca[(size_t)n * IC + i] - za[n]) * ((double)cw[(size_t)o * IC + i] - zw[o]));
                    A *= (double)sa[n] * (double)sw[o];
                    double oi = io[(size_t)n * OC + o], of = fo[(size_t)n * OC + o];
                    double bound = (IC + 6) * u * (A + (b ? fabs(b[o]) : 0)) + 2 * u * (fabs(oi) + fabs(of));
                    double r = fabs(oi - of) / (bound > 0 ? bound : 1e-300);
                    if (oi == of) r = 0;
                    if (r > worst) worst = r;
                }
            (*nsites)++;
            free(fo), free(io), free(xr), free(ca), free(cw), free(sa), free(za), free(sw), free(zw);
        }
    return worst;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > m) m = fabs((double)a[i] - b[i]);
    return m;
}

/* ---- end to end, flip-aware -------------------------------------------------------------
 * The quantized model is a discontinuous function: where the two paths' inputs to some
 * quantizer differ at the rounding level (they do, by the bound above) and one element sits
 * that close to a rounding boundary, the paths pick neighbouring codes, and from there on
 * differ by a quantization step, not by rounding. So the whole-model check first compares
 * every quantizer's input of the two paths, in computation order (layer by layer: QKV input,
 * K/V, O input, UP input, DOWN input after R4): codes equal everywhere -> logits must agree to
 * 1e-4 of their scale and give the same argmax wherever the fake top-2 margin exceeds that;
 * the first differing code must be a boundary flip (codes one apart, inputs within 1e-3 code
 * units), and then only the tokens before the flipped one are compared (causality). */
#define NQ 5 /* four sites and the K/V quantizer */
typedef struct {
    float *x[64][NQ];
    int rows[64][NQ], cols[64][NQ];
} qins;

static void qins_free(qins *q)
{
    for (int l = 0; l < 64; l++)
        for (int k = 0; k < NQ; k++) free(q->x[l][k]), q->x[l][k] = NULL;
}

static int qtap(void *ctx, int what, int layer, const float *x, int rows, int cols)
{
    qins *q = ctx;
    int k = what == LLM_INTQ_TAP_KV ? 4 : what;
    if (layer < 0 || layer >= 64 || k < 0 || k >= NQ) return RS_OK;
    free(q->x[layer][k]);
    q->x[layer][k] = malloc((size_t)rows * cols * sizeof(float));
    if (!q->x[layer][k]) return RS_ENOMEM;
    memcpy(q->x[layer][k], x, (size_t)rows * cols * sizeof(float));
    q->rows[layer][k] = rows, q->cols[layer][k] = cols;
    return RS_OK;
}

/* The fake path's quantizer inputs from its linear sites' inputs (tp): sites as they are
 * (DOWN after R4), K/V recomputed as the forward does (QKV site, RoPE, R3). */
static int fake_qins(llm_model *m, taps *tp, int T, qins *f)
{
    const llm_config *c = &m->cfg;
    const llm_qat *q = m->qat;
    const int HS = c->head_dim, NH = c->n_head, NKV = c->n_kv_head, QKV = (NH + 2 * NKV) * HS, KVD = NKV * HS;
    for (int l = 0; l < c->n_layer; l++) {
        for (int s = 0; s < LLM_NSITES; s++) {
            const float *w, *b;
            int OC, IC;
            site_w(m, l, s, &w, &b, &OC, &IC);
            f->x[l][s] = malloc((size_t)T * IC * sizeof(float));
            memcpy(f->x[l][s], tp->inp[l][s], (size_t)T * IC * sizeof(float));
            if (s == LLM_SITE_DOWN && q->r4 && q->r4_on[l] && rot_apply_rows_f32(q->r4, f->x[l][s], (size_t)T, 0)) return 1;
            f->rows[l][s] = T, f->cols[l][s] = IC;
            if (s != LLM_SITE_QKV || qz_is_identity(&q->kv)) continue;
            float *o = malloc((size_t)T * QKV * sizeof(float));
            if (llm_qat_linear_forward(m->qat, s, l, o, tp->inp[l][s], w, b, T, IC, OC)) return 1;
            if (c->rot_dim > 0) lk_rope_forward(o + (size_t)NH * HS, QKV, m->rope_cos, m->rope_sin, 1, T, NKV, HS, c->rot_dim, 0);
            float *g = malloc((size_t)T * 2 * KVD * sizeof(float));
            for (int i = 0; i < T; i++) memcpy(g + (size_t)i * 2 * KVD, o + (size_t)i * QKV + NH * HS, (size_t)2 * KVD * sizeof(float));
            if (q->r3 && q->r3_on[l])
                for (int i = 0; i < T; i++)
                    for (int h = 0; h < NKV; h++)
                        if (rot_apply_rows_f32(q->r3, g + ((size_t)i * 2 * NKV + h) * HS, 1, 0)) return 1;
            f->x[l][4] = g, f->rows[l][4] = T * 2 * NKV, f->cols[l][4] = HS;
            free(o);
        }
    }
    return 0;
}

/* First differing code, in computation order: -1 if none, else its token; *legit: a boundary
 * flip (codes one apart, quantizer inputs x/s + z within 1e-3). */
static int first_flip(const llm_model *m, const qins *a, const qins *b, int T, int *legit, char *where, size_t wl)
{
    const llm_qat *q = m->qat;
    const int order[NQ] = {LLM_SITE_QKV, 4, LLM_SITE_O, LLM_SITE_UP, LLM_SITE_DOWN};
    const char *nm[NQ] = {"qkv", "o", "up", "down", "kv"};
    *legit = 0;
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int k = 0; k < NQ; k++) {
            int w = order[k];
            if (!a->x[l][w] || !b->x[l][w]) continue;
            const qz_spec *spec = w == 4 ? &q->kv : &q->a;
            int R = a->rows[l][w], C = a->cols[l][w];
            int16_t *ca = malloc((size_t)R * C * 2), *cb = malloc((size_t)R * C * 2);
            float *sa = malloc((size_t)R * 4), *za = malloc((size_t)R * 4), *sb = malloc((size_t)R * 4), *zb = malloc((size_t)R * 4);
            qz_quantize_f32(spec, a->x[l][w], (size_t)R, (size_t)C, ca, sa, za);
            qz_quantize_f32(spec, b->x[l][w], (size_t)R, (size_t)C, cb, sb, zb);
            int tok = -1;
            for (int r = 0; r < R && tok < 0; r++)
                for (int i = 0; i < C; i++) {
                    size_t e = (size_t)r * C + i;
                    if (ca[e] == cb[e]) continue;
                    double ua = (double)a->x[l][w][e] / sa[r] + za[r], ub = (double)b->x[l][w][e] / sb[r] + zb[r];
                    *legit = abs(ca[e] - cb[e]) == 1 && fabs(ua - ub) <= 1e-3;
                    tok = w == 4 ? r / (2 * m->cfg.n_kv_head) : r;
                    snprintf(where, wl, "layer %d, %s quantizer, token %d: codes %d/%d, inputs %.7f/%.7f code units", l, nm[w],
                             tok, ca[e], cb[e], ua, ub);
                    break;
                }
            free(ca), free(cb), free(sa), free(za), free(sb), free(zb);
            if (tok >= 0) return tok;
        }
    return -1;
}

static int argmax(const float *x, int n, double *margin)
{
    int a = 0, b = -1;
    for (int i = 1; i < n; i++)
        if (x[i] > x[a]) b = a, a = i;
        else if (b < 0 || x[i] > x[b]) b = i;
    *margin = b < 0 ? 1e30 : (double)x[a] - x[b];
    return a;
}

/* Int against fake on T tokens: logits and argmax, flip-aware as above. want: the tokens the
 * fake path chose greedily after position `from` (NULL: none to check). */
static void e2e(llm_model *m, llm_intq *iq, const int32_t *tok, int T, const char *tag, const char *what)
{
    const int V = m->cfg.vocab;
    taps tp;
    memset(&tp, 0, sizeof tp);
    m->tap = tap, m->tap_ctx = &tp;
    int st = llm_model_forward(m, tok, NULL, 1, T, NULL, NULL);
    m->tap = NULL;
    float *fake = malloc((size_t)T * V * 4), *mine = malloc((size_t)T * V * 4), *step = malloc((size_t)T * V * 4);
    memcpy(fake, m->logits, (size_t)T * V * 4);
    qins fi, ii;
    memset(&fi, 0, sizeof fi), memset(&ii, 0, sizeof ii);
    if (!st) st = fake_qins(m, &tp, T, &fi);
    llm_intq_kv *kv = NULL;
    if (!st) st = llm_intq_kv_alloc(&kv, iq, T);
    llm_intq_set_tap(iq, qtap, &ii);
    if (!st) st = llm_intq_decode(iq, kv, tok, T, mine, 1);
    llm_intq_set_tap(iq, NULL, NULL);
    llm_intq_kv_reset(kv);
    if (!st) st = llm_intq_decode(iq, kv, tok, T / 2, step, 1);
    for (int i = T / 2; i < T && !st; i++) st = llm_intq_decode(iq, kv, tok + i, 1, step + (size_t)i * V, 0);
    llm_intq_kv_free(kv);
    int legit = 0;
    char where[256] = "";
    int t0 = st ? 0 : first_flip(m, &ii, &fi, T, &legit, where, sizeof where);
    int upto = t0 < 0 ? T : t0; /* tokens before any flip */
    double scale = fx_max_abs(fake, (size_t)T * V), tol = 1e-4 * scale;
    double d1 = max_diff(fake, mine, (size_t)upto * V), d2 = max_diff(mine, step, (size_t)T * V);
    int same = 0, tested = 0;
    for (int t = 0; t < upto; t++) {
        double mf, mi;
        int af = argmax(fake + (size_t)t * V, V, &mf), ai = argmax(mine + (size_t)t * V, V, &mi);
        if (mf > 2 * tol) tested++, same += af == ai;
    }
    CHECK(!st && (t0 < 0 || legit), "%s, %s: %s", tag, what,
          st ? rs_last_error() : t0 < 0 ? "no code differs from the fake-quant path's anywhere" : where);
    CHECK(!st && d1 <= tol && same == tested,
          "%s, %s: logits of the %d tokens %s: max|int - fake| %.3g (tol %.3g = 1e-4 max|logit|); argmax equal at %d/%d "
          "positions with a top-2 margin above 2 tol", tag, what, upto, t0 < 0 ? "(all)" : "before the flip", d1, tol, same,
          tested);
    CHECK(!st && d2 <= 1e-5 * scale, "%s, %s: int prefill of %d against prefill of %d + cached one-token steps: max|diff| %.3g",
          tag, what, T, T / 2, d2);
    for (int l = 0; l < 64; l++)
        for (int s = 0; s < LLM_NSITES; s++) free(tp.inp[l][s]);
    qins_free(&fi), qins_free(&ii);
    free(fake), free(mine), free(step);
}

/* cfg 0: W4A4KV4 asym, no rotation; 1: W4A8KV4 sym (weights asym), R1-R4; 2: W4A4KV16, R3/R4 only. */
/* Rewrites the safetensors file src into dst with tensor `drop` left out, or with `retype`
 * declared I32 instead of its dtype (its bytes reinterpreted; the shape adjusted when the
 * element size differs), or with one byte of tensor `poke` flipped. */
static int st_variant(const char *src, const char *dst, const char *drop, const char *retype, const char *poke)
{
    st_set *s = NULL;
    if (st_open(&s, src)) return -1;
    size_t n = st_count(s), k = 0;
    st_out *o = calloc(n, sizeof *o);
    void **own = calloc(n, sizeof *own);
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_get(s, i);
        if (drop && !strcmp(t->name, drop)) continue;
        st_out *x = &o[k++];
        x->name = t->name, x->data = t->data, x->ndim = t->ndim, x->dtype = t->dtype;
        for (int d = 0; d < t->ndim; d++) x->shape[d] = t->shape[d];
        if (retype && !strcmp(t->name, retype)) {
            x->dtype = t->dtype == ST_I32 ? ST_F32 : ST_I32;
            if (t->dtype == ST_U8 || t->dtype == ST_I8) x->ndim = 1, x->shape[0] = (int64_t)t->nbytes / 4;
        }
        if (poke && !strcmp(t->name, poke) && t->nbytes) {
            own[i] = malloc(t->nbytes);
            memcpy(own[i], t->data, t->nbytes);
            ((uint8_t *)own[i])[0] ^= 0x01;
            x->data = own[i];
        }
    }
    const char *meta[] = {"format", st_metadata(s, 0, "format")};
    int rc = st_write(dst, o, k, meta, 1);
    for (size_t i = 0; i < n; i++) free(own[i]);
    free(own), free(o);
    st_close(s);
    return rc;
}

static void test_family(const char *name, int cfg, rs_rng *rng)
{
    char dir[256], tag[128];
    snprintf(dir, sizeof dir, "tests/fixtures/llm/%s", name);
    snprintf(tag, sizeof tag, "%s/%s", name, cfg == 0 ? "W4A4KV4" : cfg == 1 ? "W4A8KV4-sym-R1234" : "W4A4KV16-R34");
    llm_model *m = NULL;
    llm_qat_opts o;
    llm_qat_opts_default(&o);
    if (cfg == 1) o.abits = 8, o.scheme = QZ_SYM, o.wclip = 0.9, o.aclip = 0.95;
    if (cfg == 2) o.kvbits = 16, o.clipmode = QZ_CLIP_PAPER, o.kvclip = 0.9;
    int st = llm_qat_load_model(&m, dir);
    if (!st) st = llm_qat_attach(m, &o);
    llm_rot_config rc;
    memset(&rc, 0, sizeof rc);
    if (!st && cfg) {
        st = llm_rot_config_init(&rc, m->cfg.n_layer, cfg == 1, cfg == 1, 1, 1, LLM_SIGNS_ALL, 7);
        if (!st) st = llm_rotate(&m, &rc);
        llm_rot_config_free(&rc);
    }
    llm_intq *iq = NULL;
    if (!st) st = llm_intq_build(&iq, m);
    CHECK(st == 0, "%s: load, quantizers, rotations, pack (%s)", tag, st ? rs_last_error() : "ok");
    if (st) {
        llm_model_free(m);
        return;
    }
    const int T = 24, V = m->cfg.vocab;
    int32_t tok[24];
    for (int i = 0; i < T; i++) tok[i] = (int32_t)(rs_rng_uniform(rng) * V);
    /* the fake-quant forward, capturing each site's input */
    taps tp;
    memset(&tp, 0, sizeof tp);
    m->tap = tap, m->tap_ctx = &tp;
    st = llm_model_forward(m, tok, NULL, 1, T, NULL, NULL);
    m->tap = NULL;
    int nsites = 0;
    double worst = st ? 1e30 : site_bounds(m, iq, &tp, &nsites);
    CHECK(worst <= 1.0, "%s: %d sites x %d tokens: |int - fake| within (IC+6)u(A+|b|) + 2u(|out|), worst diff/bound %.3f",
          tag, nsites, T, worst);
    for (int l = 0; l < 64; l++)
        for (int s = 0; s < LLM_NSITES; s++) free(tp.inp[l][s]);
    /* large activation zero points: rows far from 0 with a small range (z_a' in the
     * thousands), every site of layer 0, same bound */
    if (cfg == 0) {
        memset(&tp, 0, sizeof tp);
        tp.N = 3;
        for (int s = 0; s < LLM_NSITES; s++) {
            const float *w, *b;
            int OC, IC;
            site_w(m, 0, s, &w, &b, &OC, &IC);
            tp.inp[0][s] = malloc((size_t)3 * IC * sizeof(float));
            for (int i = 0; i < 3 * IC; i++) tp.inp[0][s][i] = (i < IC ? 3.0f : -40.0f) + 1e-3f * (float)rs_rng_uniform(rng);
        }
        int L = m->cfg.n_layer, ns = 0;
        m->cfg.n_layer = 1; /* site_bounds walks layer 0 only */
        double wz = site_bounds(m, iq, &tp, &ns);
        m->cfg.n_layer = L;
        CHECK(wz <= 1.0, "%s: inputs 3 + 1e-3 U and -40 + 1e-3 U (zero points ~ -4e4, 6e5): worst diff/bound %.3f", tag, wz);
        for (int s = 0; s < LLM_NSITES; s++) free(tp.inp[0][s]);
    }
    /* whole model, flip-aware: random tokens; then greedy generation, teacher-forced: the
     * fake path's 16 greedy tokens after a 6-token prompt fed to both paths, the int path's
     * argmax at each position must be the fake path's choice */
    e2e(m, iq, tok, T, tag, "24 random tokens");
    int32_t g1[22], g2[16];
    int n1 = 0, n2 = 0;
    llm_sample_opts so = {0.0, 1.0};
    memcpy(g1, tok, 6 * sizeof *g1);
    int st1 = llm_generate(m, tok, 6, 16, -1, &so, NULL, g1 + 6, &n1, NULL, NULL);
    CHECK(!st1 && n1 == 16, "%s: fake-quant greedy generation of 16 tokens", tag);
    if (!st1 && n1 == 16) e2e(m, iq, g1, 22, tag, "the fake path's greedy continuation");
    int st2 = llm_intq_generate(iq, tok, 6, 16, -1, &so, NULL, g2, &n2, NULL, NULL);
    printf("info %s: free-running greedy generation int %s fake (%d tokens)\n", tag,
           !st2 && n2 == 16 && !memcmp(g1 + 6, g2, sizeof g2) ? "==" : "!=", n2);
    llm_intq_kv *kv = NULL;
    float *mine = malloc((size_t)T * V * 4), *step = malloc((size_t)T * V * 4);
    st = llm_intq_kv_alloc(&kv, iq, T);
    if (!st) st = llm_intq_decode(iq, kv, tok, T, mine, 1);
    CHECK(!st && llm_intq_kv_bytes(kv) > 0, "%s: KV cache %zu bytes for %d positions", tag, llm_intq_kv_bytes(kv), T);
    llm_intq_kv_free(kv);
    /* save / load: same logits bit for bit */
    char path[256];
    snprintf(path, sizeof path, "/tmp/rostesim_test_intq_%d_%s_%d.rsiq", (int)getpid(), name, cfg);
    llm_intq *back = NULL;
    st = llm_intq_save(iq, path);
    if (!st) st = llm_intq_load(&back, path);
    if (!st) st = llm_intq_kv_alloc(&kv, back, T);
    if (!st) st = llm_intq_decode(back, kv, tok, T, step, 1);
    llm_intq_kv_free(kv);
    size_t pk = 0, fp = 0, total = llm_intq_bytes(iq, &pk, &fp);
    CHECK(!st && !memcmp(step, mine, (size_t)T * V * 4), "%s: save/load round trip gives the same logits bit for bit (%s)", tag,
          st ? rs_last_error() : "ok");
    /* the safetensors form: the same logits bit for bit, tensors users can find by name */
    char spath[300], vpath[300];
    snprintf(spath, sizeof spath, "%s.safetensors", path);
    snprintf(vpath, sizeof vpath, "%s.v.safetensors", path);
    llm_intq *sb = NULL;
    st = llm_intq_save_safetensors(iq, spath);
    if (!st) st = llm_intq_load(&sb, spath);
    if (!st) st = llm_intq_kv_alloc(&kv, sb, T);
    if (!st) st = llm_intq_decode(sb, kv, tok, T, step, 1);
    llm_intq_kv_free(kv);
    CHECK(!st && !memcmp(step, mine, (size_t)T * V * 4), "%s: safetensors export / load gives the same logits bit for bit (%s)",
          tag, st ? rs_last_error() : "ok");
    llm_intq_free(sb);
    st_set *ss = NULL;
    const st_tensor *tq = NULL, *tz = NULL, *ts = NULL;
    if (!st_open(&ss, spath)) {
        tq = st_find(ss, "layers.0.qkv.qweight"), tz = st_find(ss, "layers.0.down.zeros"), ts = st_find(ss, "layers.1.up.scales");
    }
    const llm_config *ic = llm_intq_config(iq);
    CHECK(ss && tq && tz && ts && tq->dtype == ST_U8 && tq->ndim == 2 && tz->dtype == ST_I32 && tz->shape[0] == ic->d &&
              ts->dtype == ST_F32 && !strcmp(st_metadata(ss, 0, "format"), "rostesim-int") && st_metadata(ss, 0, "weights"),
          "%s: safetensors tensors by name (qweight U8 %lld x %lld, zeros I32, scales F32), metadata format and weights '%s'",
          tag, tq ? (long long)tq->shape[0] : -1LL, tq ? (long long)tq->shape[1] : -1LL,
          ss && st_metadata(ss, 0, "weights") ? st_metadata(ss, 0, "weights") : "?");
    st_close(ss);
    if (cfg == 0) {
        const char *what[4] = {"a missing tensor", "a tensor of the wrong dtype", "a packed byte changed (code sums)",
                               "the header tensor missing"};
        int refused = 0;
        for (int k = 0; k < 4; k++) {
            int w = k == 0   ? st_variant(spath, vpath, "layers.1.o.scales", NULL, NULL)
                    : k == 1 ? st_variant(spath, vpath, NULL, "layers.0.up.zeros", NULL)
                    : k == 2 ? st_variant(spath, vpath, NULL, NULL, "layers.0.o.qweight")
                             : st_variant(spath, vpath, "rostesim.header", NULL, NULL);
            llm_intq *bad = NULL;
            int e = w ? 0 : llm_intq_load(&bad, vpath);
            if (e && !bad && strstr(rs_last_error(), vpath)) refused++;
            else printf("  safetensors variant '%s' accepted (write %d)\n", what[k], w);
            llm_intq_free(bad);
        }
        CHECK(refused == 4, "%s: safetensors with a missing tensor, a wrong dtype, changed codes or no header refused: "
              "%d/4 (last: %s)", tag, refused, rs_last_error());
        remove(vpath);
    }
    remove(spath);
    /* corrupt copies: each must be refused with a message */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)len);
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    CHECK(got == (size_t)len && (size_t)len > total, "%s: file %ld bytes (packed %zu + fp32 %zu + header)", tag, len, pk, fp);
    if (cfg == 0) {
        const long cut[] = {3, 10, 40, len / 2, len - 1};
        int refused = 0;
        /* the first value of the fp32 section (after the header, flags and signs sections) */
        size_t f32_at = 8;
        for (int sec = 0; sec < 3; sec++) {
            uint64_t sl;
            memcpy(&sl, buf + f32_at, 8);
            f32_at += 8 + (size_t)sl;
        }
        f32_at += 8;
        int huge_named = 0;
        for (int k = 0; k < 9; k++) {
            uint8_t *b2 = malloc((size_t)len + 1);
            memcpy(b2, buf, (size_t)len);
            long n = len;
            if (k < 5) n = cut[k];
            else if (k == 5) b2[4] = 9;                  /* version */
            else if (k == 7) memcpy(b2 + f32_at, &(float){NAN}, 4); /* a NaN weight (found by fuzz_intq) */
            else if (k == 8) memcpy(b2 + 8 + 8 + 4, &(int32_t){1 << 24}, 4); /* vocab 2^24: gigabytes (fuzz_intq) */
            else b2[len - 16 - 5] ^= 0x10, b2[len - 16 - 8 - 4] ^= 0x01; /* a code sum (before two empty sections) */
            FILE *g = fopen(path, "wb");
            fwrite(b2, 1, (size_t)n, g);
            fclose(g);
            llm_intq *bad = NULL;
            int e = llm_intq_load(&bad, path);
            if (e && !bad && strlen(rs_last_error()) > 10) refused++;
            else printf("  corrupt copy %d accepted\n", k);
            if (k == 8 && e && strstr(rs_last_error(), "the header describes")) huge_named = 1;
            llm_intq_free(bad);
            free(b2);
        }
        CHECK(refused == 9, "%s: truncated (5 lengths), wrong version, inconsistent sums, a NaN weight and a 2^24 vocab "
              "refused: %d/9 (last: %s)", tag, refused, rs_last_error());
        CHECK(huge_named, "%s: a header asking for more bytes than the file holds is refused before allocating: %s", tag,
              rs_last_error());
    }
    free(buf);
    remove(path);
    llm_intq_free(back);
    free(mine), free(step);
    llm_intq_free(iq);
    llm_model_free(m);
}

/* ---- the opt-in int8 embedding / LM head ------------------------------------------------------ */

static long file_bytes(const char *path, uint8_t **buf)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)len + 1);
    size_t got = fread(*buf, 1, (size_t)len, f);
    fclose(f);
    return got == (size_t)len ? len : -1;
}

static int write_bytes(const char *path, const uint8_t *b, size_t n)
{
    FILE *g = fopen(path, "wb");
    if (!g) return -1;
    size_t w = fwrite(b, 1, n, g);
    return fclose(g) == 0 && w == n ? 0 : -1;
}

/* Logits of T tokens (all positions) from an int model. */
static int int_logits(llm_intq *iq, const int32_t *tok, int T, float *out)
{
    llm_intq_kv *kv = NULL;
    int st = llm_intq_kv_alloc(&kv, iq, T);
    if (!st) st = llm_intq_decode(iq, kv, tok, T, out, 1);
    llm_intq_kv_free(kv);
    return st;
}

/* The q8 head's logits l8 against the fp32 head's l32 on the same hidden states h (N, C), W the
 * fp32 head (V, C): the largest |l8 - l32| / B_o (and the mean in *mean), B_o intq.h's bound
 * with margins for the rounding of the scales and of both sums:
 *   B_o = (s_w/2 + 127u s_w) sum|h| + (s_a/2 + 127u s_a) sum(|W_o| + s_w/2 + 127u s_w)
 *         + (C+2)u sum|h||W_o| + 4u |l8|,   s_w = max|W_o| / 127, s_a = max|h| / 127. */
static double head_ratio(const float *W, int V, int C, const float *h, int N, const float *l8, const float *l32, double *mean)
{
    const double u = 0x1p-24;
    double worst = 0;
    *mean = 0;
    for (int n = 0; n < N; n++) {
        const float *hn = h + (size_t)n * C;
        double sh = 0, amax = 0;
        for (int i = 0; i < C; i++) sh += fabs(hn[i]), amax = fmax(amax, fabs(hn[i]));
        const double sa = amax / 127;
        for (int v = 0; v < V; v++) {
            const float *wr = W + (size_t)v * C;
            double wmax = 0, sw1 = 0, shw = 0;
            for (int i = 0; i < C; i++) wmax = fmax(wmax, fabs(wr[i]));
            const double sw = wmax / 127;
            for (int i = 0; i < C; i++) sw1 += fabs(wr[i]) + sw * (0.5 + 127 * u), shw += fabs(hn[i]) * fabs(wr[i]);
            const double l = l8[(size_t)n * V + v];
            const double b = sw * (0.5 + 127 * u) * sh + sa * (0.5 + 127 * u) * sw1 + (C + 2) * u * shw + 4 * u * fabs(l);
            const double d = fabs(l - l32[(size_t)n * V + v]), r = d == 0 ? 0 : d / b;
            worst = fmax(worst, r);
            *mean += r / ((double)N * V);
        }
    }
    return worst;
}

typedef struct {
    float *h;
    int rows;
} head_tap;

static int htap(void *ctx, int what, int layer, const float *x, int rows, int cols)
{
    head_tap *t = ctx;
    if (what != LLM_INTQ_TAP_HEAD) return RS_OK;
    free(t->h);
    t->h = malloc((size_t)rows * cols * sizeof(float));
    if (!t->h) return RS_ENOMEM;
    memcpy(t->h, x, (size_t)rows * cols * sizeof(float));
    t->rows = rows;
    return RS_OK;
}

/* The q8 head on a tied (llama_gqa) and an untied (neox_parallel) family, W4A4KV4. */
static void test_head_q8(const char *name, int a8, rs_rng *rng)
{
    char dir[256], tag[128];
    snprintf(dir, sizeof dir, "tests/fixtures/llm/%s", name);
    llm_model *m = NULL;
    llm_qat_opts o;
    llm_qat_opts_default(&o);
    if (a8) o.abits = 8, o.scheme = QZ_SYM;
    int st = llm_model_load(&m, dir);
    if (!st) st = llm_qat_attach(m, &o);
    llm_intq *f32 = NULL, *q8 = NULL;
    if (!st) st = llm_intq_build(&f32, m);
    if (!st) st = llm_intq_build_head(&q8, m, LLM_INTQ_HEAD_Q8);
    snprintf(tag, sizeof tag, "%s/%s q8 head (%s)", name, a8 ? "W4A8KV4-sym" : "W4A4KV4", m && m->cfg.tied ? "tied" : "untied");
    CHECK(!st && llm_intq_head_kind(q8) == LLM_INTQ_HEAD_Q8 && llm_intq_head_kind(f32) == LLM_INTQ_HEAD_F32,
          "%s: build (%s)", tag, st ? rs_last_error() : "ok");
    if (st) {
        llm_intq_free(f32), llm_intq_free(q8), llm_model_free(m);
        return;
    }
    const int V = m->cfg.vocab, C = m->cfg.d;
    const double u = 0x1p-24;
    /* every embedding row: |e8 - e| <= s (1/2 + 127u) + u |e8|, s = max|row| / 127 */
    int32_t *all = malloc((size_t)V * sizeof *all);
    float *e8 = malloc((size_t)V * C * 4);
    for (int v = 0; v < V; v++) all[v] = v;
    st = llm_intq_embed(q8, all, V, e8);
    double we = 0;
    for (int v = 0; v < V && !st; v++) {
        const float *e = m->w.wte + (size_t)v * C;
        double amax = 0;
        for (int i = 0; i < C; i++) amax = fmax(amax, fabs(e[i]));
        const double sw = amax / 127;
        for (int i = 0; i < C; i++) {
            const double d = fabs((double)e8[(size_t)v * C + i] - e[i]), b = sw * (0.5 + 127 * u) + u * fabs(e8[(size_t)v * C + i]);
            we = fmax(we, b > 0 ? d / b : d > 0 ? 1e30 : 0);
        }
    }
    CHECK(!st && we <= 1.0, "%s: every embedding row within half an int8 step of fp32: worst diff/bound %.3f", tag, we);
    /* the head on hidden states of several magnitudes: |l8 - l32| <= B_o (head_ratio) */
    const int N = 6;
    float *h = malloc((size_t)N * C * 4), *l32 = malloc((size_t)N * V * 4), *l8 = malloc((size_t)N * V * 4);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < C; i++) h[(size_t)n * C + i] = (float)((rs_rng_uniform(rng) * 2 - 1) * pow(10.0, n - 2));
    h[(size_t)5 * C + 3] = 400; /* one outlier: a coarse s_a */
    st = llm_intq_head_forward(f32, h, N, l32);
    if (!st) st = llm_intq_head_forward(q8, h, N, l8);
    double mean = 0, wh = st ? 1e30 : head_ratio(m->w.lm_head, V, C, h, N, l8, l32, &mean);
    CHECK(!st && wh <= 1.0, "%s: LM head on %d hidden states (max|h| 1e-2..1e3): |q8 - f32| within (s_w/2) sum|h| + "
          "(s_a/2) sum(|W| + s_w/2) + rounding: worst diff/bound %.3f, mean %.3f", tag, N, wh, mean);
    /* the whole model, 24 random tokens. The q8 model is the fp32-head int model of the same
     * model with its embedding replaced by the int8 one (e8 above), up to the head's bound:
     * built so (f32r), both must see the same final hidden states bit for bit
     * (LLM_INTQ_TAP_HEAD) and their logits differ within head_ratio's bound (W: e8 when tied) */
    const int T = 24;
    int32_t tok[24];
    for (int i = 0; i < T; i++) tok[i] = (int32_t)(rs_rng_uniform(rng) * V);
    float *a = malloc((size_t)T * V * 4), *b = malloc((size_t)T * V * 4), *c = malloc((size_t)T * V * 4);
    float *wte0 = malloc((size_t)V * C * 4);
    llm_intq *f32r = NULL;
    memcpy(wte0, m->w.wte, (size_t)V * C * 4);
    memcpy(m->w.wte, e8, (size_t)V * C * 4);
    st = llm_intq_build(&f32r, m);
    memcpy(m->w.wte, wte0, (size_t)V * C * 4);
    head_tap h8 = {NULL, 0}, hr = {NULL, 0};
    llm_intq_set_tap(q8, htap, &h8);
    if (!st) st = int_logits(q8, tok, T, b);
    llm_intq_set_tap(q8, NULL, NULL);
    if (!st) llm_intq_set_tap(f32r, htap, &hr);
    if (!st) st = int_logits(f32r, tok, T, c);
    const int same_h = !st && h8.rows == T && hr.rows == T && !memcmp(h8.h, hr.h, (size_t)T * C * 4);
    double wm = !same_h ? 1e30 : head_ratio(m->cfg.tied ? e8 : m->w.lm_head, V, C, h8.h, T, b, c, &mean);
    CHECK(same_h && wm <= 1.0, "%s: whole model, 24 random tokens: the same final hidden states as the fp32-head int model "
          "of the int8-rounded embedding (%s), logits within the head's bound: worst diff/bound %.3f, mean %.3f", tag,
          st ? rs_last_error() : same_h ? "bit for bit" : "they differ", wm, mean);
    free(h8.h), free(hr.h), free(wte0);
    llm_intq_free(f32r);
    /* against the fp32-head int model of the original weights: measured only. The int8
     * embedding moves every quantizer's input by up to half an int8 step, and the 4-bit
     * activation / KV codes turn that into whole steps (the README's one-ulp nudge) */
    if (!st) st = int_logits(f32, tok, T, a);
    double scale = fx_max_abs(a, (size_t)T * V), d = max_diff(a, b, (size_t)T * V);
    int same = 0;
    for (int t = 0; t < T && !st; t++) {
        double ma, mb;
        same += argmax(a + (size_t)t * V, V, &ma) == argmax(b + (size_t)t * V, V, &mb);
    }
    int32_t g1[16], g2[16];
    int n1 = 0, n2 = 0;
    llm_sample_opts so = {0.0, 1.0};
    if (!st) st = llm_intq_generate(f32, tok, 6, 16, -1, &so, NULL, g1, &n1, NULL, NULL);
    if (!st) st = llm_intq_generate(q8, tok, 6, 16, -1, &so, NULL, g2, &n2, NULL, NULL);
    int agree = 0;
    while (!st && agree < n1 && agree < n2 && g1[agree] == g2[agree]) agree++;
    printf("info %s: against the fp32-head int model: max|logit diff| %.3g (%.3f of max|logit|), argmax equal at %d/%d "
           "positions; free-running greedy generations agree on the first %d of 16 tokens\n", tag, d, d / scale, same, T,
           agree);
    /* bytes, save / load */
    size_t pk8 = 0, fp8 = 0, pk = 0, fp = 0, t8 = llm_intq_bytes(q8, &pk8, &fp8), t32 = llm_intq_bytes(f32, &pk, &fp);
    const size_t tables = m->cfg.tied ? 1 : 2, Cp = iq_padded_s8((size_t)C);
    CHECK(t32 - t8 == tables * (size_t)V * (4 * (size_t)C - Cp - 4) && fp - fp8 == tables * (size_t)V * C * 4,
          "%s: bytes %zu against %zu with the fp32 head (%zu int8 table(s) of %d x %zu codes + scales)", tag, t8, t32, tables,
          V, Cp);
    char path[256], path1[256];
    snprintf(path, sizeof path, "/tmp/rostesim_test_intq_%d_%s_q8.rsiq", (int)getpid(), name);
    snprintf(path1, sizeof path1, "/tmp/rostesim_test_intq_%d_%s_v1.rsiq", (int)getpid(), name);
    llm_intq *back = NULL;
    st = llm_intq_save(q8, path);
    if (!st) st = llm_intq_load(&back, path);
    if (!st) st = int_logits(back, tok, T, c);
    CHECK(!st && llm_intq_head_kind(back) == LLM_INTQ_HEAD_Q8 && !memcmp(b, c, (size_t)T * V * 4),
          "%s: save/load of the q8 file gives the same logits bit for bit (%s)", tag, st ? rs_last_error() : "ok");
    llm_intq_free(back), back = NULL;
    /* corrupt int8 sections: a code of -128, a zero scale, a cut inside the codes */
    uint8_t *buf = NULL;
    long len = file_bytes(path, &buf);
    const size_t nq = tables * (size_t)V, sec9 = 8 + nq * 4, codes_end = (size_t)len - sec9;
    int refused = 0;
    for (int k = 0; k < 3 && len > 0; k++) {
        uint8_t *b2 = malloc((size_t)len);
        memcpy(b2, buf, (size_t)len);
        size_t n = (size_t)len;
        if (k == 0) b2[codes_end - Cp * 3 + 1] = 0x80;        /* a code -128 */
        else if (k == 1) memset(b2 + (size_t)len - 8, 0, 4);  /* the second-to-last row's scale 0 */
        else n = codes_end - 100;
        write_bytes(path, b2, n);
        llm_intq *bad = NULL;
        int e = llm_intq_load(&bad, path);
        if (e && !bad && strstr(rs_last_error(), path)) refused++;
        else printf("  corrupt q8 copy %d accepted\n", k);
        llm_intq_free(bad);
        free(b2);
    }
    CHECK(refused == 3, "%s: a -128 code, a zero scale, a file cut inside the int8 codes refused naming the file: %d/3 (last: %s)",
          tag, refused, rs_last_error());
    free(buf), buf = NULL;
    /* a version-1 file (the previous release's layout: version 1, a 200-byte header without
     * the head field, seven sections) made from this version's fp32-head file: still read,
     * the same logits bit for bit; an fp32-head file whose header field says q8 refused */
    st = llm_intq_save(f32, path);
    len = st ? -1 : file_bytes(path, &buf);
    int v1ok = 0, v2bad = 0;
    if (len > 0) {
        uint8_t *b1 = malloc((size_t)len);
        uint64_t hl;
        memcpy(&hl, buf + 8, 8);
        const uint32_t one = 1;
        const uint64_t h1 = hl - 4;
        memcpy(b1, "RSIQ", 4), memcpy(b1 + 4, &one, 4), memcpy(b1 + 8, &h1, 8);
        memcpy(b1 + 16, buf + 16, (size_t)h1);                                            /* header without its last field */
        memcpy(b1 + 16 + h1, buf + 16 + hl, (size_t)len - 16 - (size_t)hl - 16);          /* sections 2..7 */
        size_t n1b = (size_t)len - 4 - 16;
        uint64_t z[2];
        memcpy(z, buf + len - 16, 16);
        int32_t headf;
        memcpy(&headf, buf + 16 + hl - 4, 4);
        write_bytes(path1, b1, n1b);
        float *c1 = malloc((size_t)T * V * 4);
        st = llm_intq_load(&back, path1);
        if (!st) st = int_logits(back, tok, T, c1);
        v1ok = !st && hl == 204 && headf == 0 && z[0] == 0 && z[1] == 0 && llm_intq_head_kind(back) == LLM_INTQ_HEAD_F32 &&
               !memcmp(a, c1, (size_t)T * V * 4);
        llm_intq_free(back), back = NULL;
        free(c1);
        const int32_t q8f = 1;
        memcpy(buf + 16 + hl - 4, &q8f, 4);
        write_bytes(path, buf, (size_t)len);
        v2bad = llm_intq_load(&back, path) != 0 && !back && strstr(rs_last_error(), path);
        llm_intq_free(back), back = NULL;
        free(b1);
    }
    CHECK(v1ok, "%s: a version-1 file (%ld bytes, 20 fewer) loads with the fp32-head logits bit for bit (%s)", tag, len - 20,
          st ? rs_last_error() : "ok");
    CHECK(v2bad, "%s: an fp32-head file whose header says q8 refused: %s", tag, rs_last_error());
    free(buf);
    remove(path), remove(path1);
    free(all), free(e8), free(h), free(l32), free(l8), free(a), free(b), free(c);
    llm_intq_free(f32), llm_intq_free(q8);
    llm_model_free(m);
}

/* The whole int model under each kernel family the CPU has, pinned by iq_set_kernel: the
 * integer GEMMs give the same integers, so every logit of a 20-token decode (all positions)
 * must be the same bytes as under "ref"; W4A4 (the A4 kernels) and W4A8 with the q8 head
 * (the s8 x s8 kernels too). Then iq_set_kernel's refusals. */
static void test_kernel_pins(rs_rng *rng)
{
    const char *names[] = {"avx512vnni", "avx2"};
    for (int a8 = 0; a8 < 2; a8++) {
        llm_model *m = NULL;
        llm_qat_opts o;
        llm_qat_opts_default(&o);
        if (a8) o.abits = 8, o.scheme = QZ_SYM;
        int st = llm_model_load(&m, "tests/fixtures/llm/llama_gqa");
        if (!st) st = llm_qat_attach(m, &o);
        llm_intq *iq = NULL;
        llm_intq_kv *kv = NULL;
        if (!st) st = llm_intq_build_head(&iq, m, a8 ? LLM_INTQ_HEAD_Q8 : LLM_INTQ_HEAD_F32);
        if (!st) st = llm_intq_kv_alloc(&kv, iq, 32);
        const int T = 20, V = m ? m->cfg.vocab : 1;
        int32_t tok[20];
        for (int i = 0; i < T; i++) tok[i] = (int32_t)(rs_rng_uniform(rng) * V);
        float *ref = malloc((size_t)T * V * 4), *got = malloc((size_t)T * V * 4);
        if (!st) st = iq_set_kernel("ref");
        if (!st) st = llm_intq_decode(iq, kv, tok, T, ref, 1);
        CHECK(!st && !strcmp(iq_kernel_name(), "ref"), "%s: decode under the pinned ref kernel (%s)",
              a8 ? "W4A8KV4 q8 head" : "W4A4KV4", st ? rs_last_error() : "ok");
        if (!st) { /* the IL16 copy: kept with VNNI only; each site's OC rounded up to 16 rows of ICp/2 bytes */
            const llm_config *c = llm_intq_config(iq);
#define R16(x) (((size_t)(x) + 15) / 16 * 16)
            const size_t il = (size_t)c->n_layer *
                              (R16((c->n_head + 2 * c->n_kv_head) * c->head_dim) * iq_padded((size_t)c->d) +
                               R16(c->d) * iq_padded((size_t)c->n_head * c->head_dim) +
                               R16((c->arch == LLM_GPT_NEOX ? 1 : 2) * c->d_ff) * iq_padded((size_t)c->d) +
                               R16(c->d) * iq_padded((size_t)c->d_ff)) / 2;
#undef R16
            CHECK(llm_intq_il16_bytes(iq) == (iq_have_vnni() ? il : 0), "%s: IL16 copy %zu bytes (%s; expected %zu)",
                  a8 ? "W4A8KV4 q8 head" : "W4A4KV4", llm_intq_il16_bytes(iq), iq_have_vnni() ? "VNNI" : "no VNNI", il);
        }
        for (int k = 0; k < 2 && !st; k++) {
            if (iq_set_kernel(names[k])) {
                printf("info kernel %s: not on this CPU (%s)\n", names[k], rs_last_error());
                continue;
            }
            llm_intq_kv_reset(kv);
            int e = llm_intq_decode(iq, kv, tok, T, got, 1);
            CHECK(!e && !strcmp(iq_kernel_name(), names[k]) && !memcmp(ref, got, (size_t)T * V * 4),
                  "%s: the %s kernels give the ref kernels' logits byte for byte (%d positions x %d)",
                  a8 ? "W4A8KV4 q8 head" : "W4A4KV4", names[k], T, V);
        }
        iq_set_kernel("auto");
        free(ref), free(got), llm_intq_kv_free(kv), llm_intq_free(iq), llm_model_free(m);
    }
    const char *before = iq_kernel_name();
    int e = iq_set_kernel("avx1024");
    CHECK(e == RS_EINVAL && strstr(rs_last_error(), "avx1024") && !strcmp(before, iq_kernel_name()),
          "iq_set_kernel: an unknown name refused, the choice unchanged: %s", rs_last_error());
    if (!iq_have_vnni()) {
        e = iq_set_kernel("avx512vnni");
        CHECK(e == RS_ENOTSUP && strstr(rs_last_error(), "does not have"), "iq_set_kernel: a kernel this CPU lacks refused: %s",
              rs_last_error());
    }
}

static void test_errors(void)
{
    llm_model *m = NULL;
    int st = llm_qat_load_model(&m, "tests/fixtures/llm/llama_gqa");
    llm_intq *iq = NULL;
    int e = st ? st : llm_intq_build(&iq, m);
    CHECK(e == RS_ENOTSUP && !iq && strstr(rs_last_error(), "rostesim_qat.json"), "no QAT state refused: %s", rs_last_error());
    llm_qat_opts o;
    llm_qat_opts_default(&o);
    const int bits[3][3] = {{16, 4, 4}, {4, 16, 4}, {4, 4, 8}};
    for (int k = 0; k < 3 && !st; k++) {
        o.wbits = bits[k][0], o.abits = bits[k][1], o.kvbits = bits[k][2];
        st = llm_qat_attach(m, &o);
        e = st ? st : llm_intq_build(&iq, m);
        CHECK(e == RS_ENOTSUP && !iq, "W%dA%dKV%d refused: %s", o.wbits, o.abits, o.kvbits, rs_last_error());
    }
    e = llm_intq_load(&iq, "tests/fixtures/llm/llama_gqa/config.json");
    CHECK(e == RS_EINVAL && !iq && strstr(rs_last_error(), "magic"), "a file that is not an int model: %s", rs_last_error());
    llm_intq_head h = LLM_INTQ_HEAD_Q8;
    CHECK(llm_intq_head_parse("q3", &h) == RS_EINVAL && llm_intq_head_parse("f32", &h) == RS_OK && h == LLM_INTQ_HEAD_F32 &&
          llm_intq_head_parse("q8", &h) == RS_OK && h == LLM_INTQ_HEAD_Q8 && !strcmp(llm_intq_head_name(h), "q8"),
          "llm_intq_head_parse: f32, q8; q3 refused");
    llm_model_free(m);
}

int main(void)
{
    rs_rng *rng = rs_rng_alloc(2024, 1);
    test_gemm(rng);
    test_gemm_s8(rng);
    test_head_q8("llama_gqa", 0, rng);
    test_head_q8("neox_parallel", 0, rng);
    test_head_q8("llama_gqa", 1, rng);
    test_head_q8("neox_parallel", 1, rng);
    test_head_q8("qwen2_gqa", 1, rng);
    const char *fam[] = {"llama_gqa", "neox_parallel", "qwen2_gqa"};
    for (int f = 0; f < 3; f++)
        for (int cfg = 0; cfg < 3; cfg++) test_family(fam[f], cfg, rng);
    test_kernel_pins(rng);
    test_errors();
    rs_rng_free(rng);
    return check_summary("test_intq");
}
