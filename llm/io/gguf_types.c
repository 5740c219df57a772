/* rostesim LLM: ggml tensor types and their dequantization to f32 (see llm/io/gguf_types.h).
 *
 * One table of traits per type (block size, bytes per block, dequantizer), as ggml's
 * type_traits. The dequantizers are the plain loops of ggml-quants.c's
 * dequantize_row_*: blocks of 32 (legacy quants) or super-blocks of 256 (K-quants) with
 * f16 scales. They are written as the reference: one block at a time, float arithmetic in
 * ggml's order (so results are bit-identical where the reference computes in f32). */
#include <string.h>

#include "llm/io/gguf_types.h"
#include "llm/io/safetensors.h"

#define QK 32   /* legacy block */
#define QK_K 256 /* K-quant super-block */

static float f16(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return st_f16_to_f32(h);
}

/* ---------------------------------------------------------------- float types */

static void deq_f32(const void *src, float *dst, size_t n) { memcpy(dst, src, n * sizeof(float)); }

static void deq_f16(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++) dst[i] = f16(p + 2 * i);
}

static void deq_bf16(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = st_bf16_to_f32(h);
    }
}

/* ---------------------------------------------------------------- legacy quants (32) */

/* Q4_0: d (f16), qs[16]: low nibbles are elements 0..15, high nibbles 16..31; x = (q - 8) d */
static void deq_q4_0(const void *src, float *y, size_t nb)
{
    const unsigned char *b = src;
    for (size_t i = 0; i < nb; i++, b += 18, y += QK) {
        float d = f16(b);
        const unsigned char *qs = b + 2;
        for (int j = 0; j < QK / 2; j++) {
            y[j] = (float)((qs[j] & 0x0F) - 8) * d;
            y[j + QK / 2] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

/* Q4_1: d, m (f16), qs[16]; x = q d + m */
static void deq_q4_1(const void *src, float *y, size_t nb)
{
    const unsigned char *b = src;
    for (size_t i = 0; i < nb; i++, b += 20, y += QK) {
        float d = f16(b), m = f16(b + 2);
        const unsigned char *qs = b + 4;
        for (int j = 0; j < QK / 2; j++) {
            y[j] = (float)(qs[j] & 0x0F) * d + m;
            y[j + QK / 2] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

/* Q5_0: d (f16), qh (u32: the 5th bit of each element), qs[16]; x = (q - 16) d */
static void deq_q5_0(const void *src, float *y, size_t nb)
{
    const unsigned char *b = src;
    for (size_t i = 0; i < nb; i++, b += 22, y += QK) {
        float d = f16(b);
        uint32_t qh;
        memcpy(&qh, b + 2, 4);
        const unsigned char *qs = b + 6;
        for (int j = 0; j < QK / 2; j++) {
            int xh0 = (int)(((qh >> j) << 4) & 0x10);
            int xh1 = (int)((qh >> (j + 12)) & 0x10);
            y[j] = (float)(((qs[j] & 0x0F) | xh0) - 16) * d;
            y[j + QK / 2] = (float)(((qs[j] >> 4) | xh1) - 16) * d;
        }
    }
}

/* Q5_1: d, m (f16), qh (u32), qs[16]; x = q d + m */
static void deq_q5_1(const void *src, float *y, size_t nb)
{
    const unsigned char *b = src;
    for (size_t i = 0; i < nb; i++, b += 24, y += QK) {
        float d = f16(b), m = f16(b + 2);
        uint32_t qh;
        memcpy(&qh, b + 4, 4);
        const unsigned char *qs = b + 8;
        for (int j = 0; j < QK / 2; j++) {
            int xh0 = (int)(((qh >> j) << 4) & 0x10);
            int xh1 = (int)((qh >> (j + 12)) & 0x10);
            y[j] = (float)((qs[j] & 0x0F) | xh0) * d + m;
            y[j + QK / 2] = (float)((qs[j] >> 4) | xh1) * d + m;
        }
    }
}

/* Q8_0: d (f16), qs[32] (i8); x = q d */
static void deq_q8_0(const void *src, float *y, size_t nb)
{
    const unsigned char *b = src;
    for (size_t i = 0; i < nb; i++, b += 34, y += QK) {
        float d = f16(b);
        const signed char *qs = (const signed char *)(b + 2);
        for (int j = 0; j < QK; j++) y[j] = (float)qs[j] * d;
    }
}

/* ---------------------------------------------------------------- K-quants (256) */

/* The 6-bit scale and min of sub-block j packed in scales[12] (Q4_K, Q5_K). */
static void scale_min_k4(int j, const unsigned char *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K: d, dmin (f16), scales[12], qs[128]; 8 sub-blocks of 32: x = d sc q - dmin m */
static void deq_q4_k(const void *src, float *y, size_t nb)
{
    const unsigned char *b = src;
    for (size_t i = 0; i < nb; i++, b += 144) {
        float d = f16(b), dmin = f16(b + 2);
        const unsigned char *scales = b + 4, *q = b + 16;
        int is = 0;
        for (int j = 0; j < QK_K; j += 64) {
            int sc, m;
            scale_min_k4(is + 0, scales, &sc, &m);
            float d1 = d * (float)sc, m1 = dmin * (float)m;
            scale_min_k4(is + 1, scales, &sc, &m);
            float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0x0F) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

/* Q5_K: d, dmin (f16), scales[12], qh[32], qs[128] */
static void deq_q5_k(const void *src, float *y, size_t nb)
{
    const unsigned char *b = src;
    for (size_t i = 0; i < nb; i++, b += 176) {
        float d = f16(b), dmin = f16(b + 2);
        const unsigned char *scales = b + 4, *qh = b + 16, *ql = b + 48;
        int is = 0;
        unsigned u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K; j += 64) {
            int sc, m;
            scale_min_k4(is + 0, scales, &sc, &m);
            float d1 = d * (float)sc, m1 = dmin * (float)m;
            scale_min_k4(is + 1, scales, &sc, &m);
            float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0x0F) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

/* Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (i8), d (f16);
 * 16 sub-blocks of 16: x = d sc (q - 32) */
static void deq_q6_k(const void *src, float *y, size_t nb)
{
    const unsigned char *b = src;
    for (size_t i = 0; i < nb; i++, b += 210) {
        float d = f16(b + 208);
        const unsigned char *ql = b, *qh = b + 128;
        const signed char *sc = (const signed char *)(b + 192);
        for (int n = 0; n < QK_K; n += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = (int)((ql[l + 0] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = (int)((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = (int)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * (float)sc[is + 0] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

/* ---------------------------------------------------------------- the table */

/* Indexed by ggml type id; sizes as ggml's type_traits (and the gguf package's
 * GGML_QUANT_SIZES). Removed ids (4, 5, 31-33, 36-38) have no entry. */
static const gguf_type_traits traits[] = {
    [0] = {"F32", 1, 4, deq_f32},
    [1] = {"F16", 1, 2, deq_f16},
    [2] = {"Q4_0", 32, 18, deq_q4_0},
    [3] = {"Q4_1", 32, 20, deq_q4_1},
    [6] = {"Q5_0", 32, 22, deq_q5_0},
    [7] = {"Q5_1", 32, 24, deq_q5_1},
    [8] = {"Q8_0", 32, 34, deq_q8_0},
    [9] = {"Q8_1", 32, 40, NULL},
    [10] = {"Q2_K", 256, 84, NULL},
    [11] = {"Q3_K", 256, 110, NULL},
    [12] = {"Q4_K", 256, 144, deq_q4_k},
    [13] = {"Q5_K", 256, 176, deq_q5_k},
    [14] = {"Q6_K", 256, 210, deq_q6_k},
    [15] = {"Q8_K", 256, 292, NULL},
    [16] = {"IQ2_XXS", 256, 66, NULL},
    [17] = {"IQ2_XS", 256, 74, NULL},
    [18] = {"IQ3_XXS", 256, 98, NULL},
    [19] = {"IQ1_S", 256, 50, NULL},
    [20] = {"IQ4_NL", 32, 18, NULL},
    [21] = {"IQ3_S", 256, 110, NULL},
    [22] = {"IQ2_S", 256, 82, NULL},
    [23] = {"IQ4_XS", 256, 136, NULL},
    [24] = {"I8", 1, 1, NULL},
    [25] = {"I16", 1, 2, NULL},
    [26] = {"I32", 1, 4, NULL},
    [27] = {"I64", 1, 8, NULL},
    [28] = {"F64", 1, 8, NULL},
    [29] = {"IQ1_M", 256, 56, NULL},
    [30] = {"BF16", 1, 2, deq_bf16},
    [34] = {"TQ1_0", 256, 54, NULL},
    [35] = {"TQ2_0", 256, 66, NULL},
    [39] = {"MXFP4", 32, 17, NULL},
    [40] = {"NVFP4", 64, 36, NULL},
    [41] = {"Q1_0", 128, 18, NULL},
};

const gguf_type_traits *gguf_type_info(uint32_t type)
{
    if (type >= sizeof traits / sizeof traits[0] || !traits[type].name) return NULL;
    return &traits[type];
}

const char *gguf_supported_types(void)
{
    return "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K";
}
