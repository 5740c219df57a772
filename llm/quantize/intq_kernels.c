/* rostesim LLM: integer kernels of the W4A8 inference path. See intq_kernels.h.
 * Dimension letters: N tokens, OC output channels, ICp padded input width. */
#include "llm/quantize/intq_kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "quant/status.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define IQ_X86 1
#else
#define IQ_X86 0
#endif

size_t iq_padded(size_t IC) { return (IC + IQ_BLOCK - 1) / IQ_BLOCK * IQ_BLOCK; }

void iq_pack4(uint8_t *dst, const uint8_t *u, size_t IC)
{
    size_t ICp = iq_padded(IC);
    memset(dst, 0, ICp / 2);
    for (size_t i = 0; i < IC; i++) {
        size_t b = i / IQ_BLOCK, j = i % IQ_BLOCK;
        uint8_t *p = dst + b * (IQ_BLOCK / 2) + (j & 31);
        *p |= (uint8_t)(j < 32 ? (u[i] & 15u) : (unsigned)(u[i] & 15u) << 4);
    }
}

void iq_unpack4(uint8_t *u, const uint8_t *src, size_t IC)
{
    for (size_t i = 0; i < IC; i++) u[i] = (uint8_t)iq_get4(src, i);
}

/* acc (N,OC) = a (N,ICp) . w (OC packed rows)^T, one element at a time. */
void iq_gemm_u8u4_ref(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC)
{
    const size_t rb = (size_t)ICp / 2;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            const uint8_t *x = a + (size_t)n * ICp, *wr = w + (size_t)o * rb;
            int32_t s = 0;
            for (int i = 0; i < ICp; i++) s += (int32_t)x[i] * (int32_t)iq_get4(wr, (size_t)i);
            acc[(size_t)n * OC + o] = s;
        }
}

/* ---- the 16-channel interleaved layout (IL16) of the VNNI kernel, see intq_kernels.h ---- */
size_t iq_il16_bytes(int OC, int ICp) { return (size_t)((OC + 15) / 16) * 16 * (size_t)ICp / 2; }

void iq_repack_il16(uint8_t *dst, const uint8_t *w, int OC, int ICp)
{
    const size_t rb = (size_t)ICp / 2, nc = (size_t)ICp / 8;
    const int G = (OC + 15) / 16;
    memset(dst, 0, iq_il16_bytes(OC, ICp));
    for (int g = 0; g < G; g++)
        for (int j = 0; j < 16 && 16 * g + j < OC; j++) {
            const uint8_t *wr = w + (size_t)(16 * g + j) * rb;
            for (size_t c = 0; c < nc; c++) {
                uint8_t *chunk = dst + ((size_t)g * nc + c) * 64 + 4 * j;
                for (int i = 0; i < 4; i++)
                    chunk[i] = (uint8_t)(iq_get4(wr, 8 * c + (size_t)i) | iq_get4(wr, 8 * c + 4 + (size_t)i) << 4);
            }
        }
}

/* Code (o, i) of an IL16 matrix. */
static unsigned il16_get(const uint8_t *wil, int ICp, int o, int i)
{
    const size_t nc = (size_t)ICp / 8;
    const uint8_t v = wil[((size_t)(o / 16) * nc + (size_t)(i / 8)) * 64 + 4 * (o % 16) + (i % 4)];
    return i % 8 < 4 ? (v & 15u) : (v >> 4);
}

void iq_gemm_u8u4_il16_ref(int32_t *acc, const uint8_t *a, const uint8_t *wil, int N, int ICp, int OC)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            const uint8_t *x = a + (size_t)n * ICp;
            int32_t s = 0;
            for (int i = 0; i < ICp; i++) s += (int32_t)x[i] * (int32_t)il16_get(wil, ICp, o, i);
            acc[(size_t)n * OC + o] = s;
        }
}

size_t iq_padded_s8(size_t IC) { return (IC + IQ_S8_BLOCK - 1) / IQ_S8_BLOCK * IQ_S8_BLOCK; }

void iq_quantize_s8(int8_t *q, float *scale, const float *x, int N, int IC, int ICp)
{
#pragma omp parallel for schedule(static) if ((long)N * IC >= (1L << 20))
    for (int r = 0; r < N; r++) {
        const float *xr = x + (size_t)r * IC;
        int8_t *qr = q + (size_t)r * ICp;
        float amax = 0;
        int finite = 1;
        for (int i = 0; i < IC; i++) {
            float a = fabsf(xr[i]);
            finite &= a <= FLT_MAX; /* 0 for inf and NaN */
            amax = a > amax ? a : amax;
        }
        memset(qr, 0, (size_t)ICp);
        const float s = amax / 127.0f;
        if (!finite || !(s >= FLT_MIN)) {
            scale[r] = finite ? 1.0f : NAN;
            continue;
        }
        scale[r] = s;
        for (int i = 0; i < IC; i++) {
            float v = nearbyintf(xr[i] / s);
            qr[i] = (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v);
        }
    }
}

/* acc (N,OC) = a (N,ICp) . w (OC,ICp)^T in int8, one element at a time. */
void iq_gemm_s8s8_ref(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            const int8_t *x = a + (size_t)n * ICp, *wr = w + (size_t)o * ICp;
            int32_t s = 0;
            for (int i = 0; i < ICp; i++) s += (int32_t)x[i] * (int32_t)wr[i];
            acc[(size_t)n * OC + o] = s;
        }
}

#if IQ_X86
int iq_have_avx2(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return cached;
}

__attribute__((target("avx2"))) static inline int32_t hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* s += the products of 64 activation bytes at x with the 64 codes lo|hi, in s32 lanes:
 * vpmaddubsw gives s16 pair sums (<= 7650), two of them added (<= 15300), vpmaddwd widens. */
#define IQ_DOT64(s, x, lo, hi, ones)                                                                    \
    do {                                                                                               \
        __m256i x0_ = _mm256_loadu_si256((const __m256i *)(x));                                        \
        __m256i x1_ = _mm256_loadu_si256((const __m256i *)((x) + 32));                                 \
        __m256i q_ = _mm256_add_epi16(_mm256_maddubs_epi16(x0_, lo), _mm256_maddubs_epi16(x1_, hi));   \
        s = _mm256_add_epi32(s, _mm256_madd_epi16(q_, ones));                                          \
    } while (0)

/* One output channel o: its packed row is unpacked once per 64 columns and used for four
 * tokens at a time (their activation rows stay in L1 for the widths of interest). */
__attribute__((target("avx2"))) static void row_avx2(int32_t *acc, const uint8_t *a, const uint8_t *wr, int N,
                                                      int ICp, int OC, int o)
{
    const __m256i m = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    const int nb = ICp / IQ_BLOCK;
    int t = 0;
    for (; t + 4 <= N; t += 4) {
        const uint8_t *a0 = a + (size_t)t * ICp, *a1 = a0 + ICp, *a2 = a1 + ICp, *a3 = a2 + ICp;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        for (int b = 0; b < nb; b++) {
            __m256i p = _mm256_loadu_si256((const __m256i *)(wr + (size_t)b * 32));
            __m256i lo = _mm256_and_si256(p, m), hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), m);
            size_t off = (size_t)b * IQ_BLOCK;
            IQ_DOT64(s0, a0 + off, lo, hi, ones);
            IQ_DOT64(s1, a1 + off, lo, hi, ones);
            IQ_DOT64(s2, a2 + off, lo, hi, ones);
            IQ_DOT64(s3, a3 + off, lo, hi, ones);
        }
        acc[(size_t)t * OC + o] = hsum_i32(s0);
        acc[(size_t)(t + 1) * OC + o] = hsum_i32(s1);
        acc[(size_t)(t + 2) * OC + o] = hsum_i32(s2);
        acc[(size_t)(t + 3) * OC + o] = hsum_i32(s3);
    }
    for (; t < N; t++) {
        const uint8_t *a0 = a + (size_t)t * ICp;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        int b = 0;
        for (; b + 2 <= nb; b += 2) { /* two independent chains for the single-token (decode) case */
            __m256i p = _mm256_loadu_si256((const __m256i *)(wr + (size_t)b * 32));
            __m256i p2 = _mm256_loadu_si256((const __m256i *)(wr + (size_t)(b + 1) * 32));
            IQ_DOT64(s0, a0 + (size_t)b * IQ_BLOCK, _mm256_and_si256(p, m), _mm256_and_si256(_mm256_srli_epi16(p, 4), m),
                     ones);
            IQ_DOT64(s1, a0 + (size_t)(b + 1) * IQ_BLOCK, _mm256_and_si256(p2, m),
                     _mm256_and_si256(_mm256_srli_epi16(p2, 4), m), ones);
        }
        for (; b < nb; b++) {
            __m256i p = _mm256_loadu_si256((const __m256i *)(wr + (size_t)b * 32));
            IQ_DOT64(s0, a0 + (size_t)b * IQ_BLOCK, _mm256_and_si256(p, m), _mm256_and_si256(_mm256_srli_epi16(p, 4), m),
                     ones);
        }
        acc[(size_t)t * OC + o] = hsum_i32(_mm256_add_epi32(s0, s1));
    }
}

/* Activation codes <= 15 (abits <= 4): a vpmaddubsw pair sum is at most 2*15*15 = 450, so
 * the s16 lanes can add A4_SPAN blocks (two vpmaddubsw each: at most 32*900 = 28800 < 32767)
 * before one vpmaddwd widens them: a third fewer multiplies per block. */
#define A4_SPAN 32
__attribute__((target("avx2"))) static void row_avx2_a4(int32_t *acc, const uint8_t *a, const uint8_t *wr, int N,
                                                         int ICp, int OC, int o)
{
    const __m256i m = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    const int nb = ICp / IQ_BLOCK;
    int t = 0;
    for (; t + 4 <= N; t += 4) {
        const int nt = 4;
        const uint8_t *ap[4];
        for (int k = 0; k < 4; k++) ap[k] = a + (size_t)(t + k) * ICp;
        __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int b0 = 0; b0 < nb; b0 += A4_SPAN) {
            const int b1 = b0 + A4_SPAN < nb ? b0 + A4_SPAN : nb;
            __m256i h[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
            for (int b = b0; b < b1; b++) {
                __m256i p = _mm256_loadu_si256((const __m256i *)(wr + (size_t)b * 32));
                __m256i lo = _mm256_and_si256(p, m), hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), m);
                const size_t off = (size_t)b * IQ_BLOCK;
                for (int k = 0; k < 4; k++) { /* unrolled by the compiler */
                    __m256i x0 = _mm256_loadu_si256((const __m256i *)(ap[k] + off));
                    __m256i x1 = _mm256_loadu_si256((const __m256i *)(ap[k] + off + 32));
                    h[k] = _mm256_add_epi16(h[k], _mm256_add_epi16(_mm256_maddubs_epi16(x0, lo), _mm256_maddubs_epi16(x1, hi)));
                }
            }
            for (int k = 0; k < 4; k++) s[k] = _mm256_add_epi32(s[k], _mm256_madd_epi16(h[k], ones));
        }
        for (int k = 0; k < nt; k++) acc[(size_t)(t + k) * OC + o] = hsum_i32(s[k]);
    }
    for (; t < N; t++) { /* one token at a time (decode), two s16 chains */
        const uint8_t *a0 = a + (size_t)t * ICp;
        __m256i s0 = _mm256_setzero_si256();
        for (int b0 = 0; b0 < nb; b0 += A4_SPAN) {
            const int b1 = b0 + A4_SPAN < nb ? b0 + A4_SPAN : nb;
            __m256i h0 = _mm256_setzero_si256(), h1 = h0;
            for (int b = b0; b < b1; b++) {
                __m256i p = _mm256_loadu_si256((const __m256i *)(wr + (size_t)b * 32));
                const size_t off = (size_t)b * IQ_BLOCK;
                __m256i x0 = _mm256_loadu_si256((const __m256i *)(a0 + off));
                __m256i x1 = _mm256_loadu_si256((const __m256i *)(a0 + off + 32));
                h0 = _mm256_add_epi16(h0, _mm256_maddubs_epi16(x0, _mm256_and_si256(p, m)));
                h1 = _mm256_add_epi16(h1, _mm256_maddubs_epi16(x1, _mm256_and_si256(_mm256_srli_epi16(p, 4), m)));
            }
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_add_epi16(h0, h1), ones));
        }
        acc[(size_t)t * OC + o] = hsum_i32(s0);
    }
}

int iq_gemm_u8u4_avx2(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC)
{
    if (!iq_have_avx2()) return 0;
    const size_t rb = (size_t)ICp / 2;
#pragma omp parallel for schedule(static) if ((long)N * OC * (long)ICp >= (1L << 18))
    for (int o = 0; o < OC; o++) row_avx2(acc, a, w + (size_t)o * rb, N, ICp, OC, o);
    return 1;
}

int iq_gemm_u4u4_avx2(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC)
{
    if (!iq_have_avx2()) return 0;
    const size_t rb = (size_t)ICp / 2;
#pragma omp parallel for schedule(static) if ((long)N * OC * (long)ICp >= (1L << 18))
    for (int o = 0; o < OC; o++) row_avx2_a4(acc, a, w + (size_t)o * rb, N, ICp, OC, o);
    return 1;
}

/* s += the products of 32 codes x (activations) with 32 codes w (weights), |w| given, in
 * s32 lanes: vpsignb gives x * sign(w), vpmaddubsw |w| (u8) times that (s8), pairs in s16
 * (<= 32258), vpmaddwd widens. */
#define IQ_DOT32_S8(s, x, w, aw, ones)                                                                      \
    s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w)), ones))

/* Output rows o..o+3 for every token: each activation block is loaded once for the four
 * rows (their 4 ICp bytes stay in L1), the four sums reduced together and stored as one
 * 128-bit vector (acc's rows are contiguous in o). */
__attribute__((target("avx2"))) static void rows4_s8_avx2(int32_t *acc, const int8_t *a, const int8_t *w, int N,
                                                           int ICp, int OC, int o)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const int nb = ICp / IQ_S8_BLOCK;
    const int8_t *w0 = w + (size_t)o * ICp, *w1 = w0 + ICp, *w2 = w1 + ICp, *w3 = w2 + ICp;
    for (int t = 0; t < N; t++) {
        const int8_t *x = a + (size_t)t * ICp;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        for (int b = 0; b < nb; b++) {
            const size_t off = (size_t)b * IQ_S8_BLOCK;
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + off));
            const __m256i v0 = _mm256_loadu_si256((const __m256i *)(w0 + off));
            const __m256i v1 = _mm256_loadu_si256((const __m256i *)(w1 + off));
            const __m256i v2 = _mm256_loadu_si256((const __m256i *)(w2 + off));
            const __m256i v3 = _mm256_loadu_si256((const __m256i *)(w3 + off));
            IQ_DOT32_S8(s0, xv, v0, _mm256_sign_epi8(v0, v0), ones);
            IQ_DOT32_S8(s1, xv, v1, _mm256_sign_epi8(v1, v1), ones);
            IQ_DOT32_S8(s2, xv, v2, _mm256_sign_epi8(v2, v2), ones);
            IQ_DOT32_S8(s3, xv, v3, _mm256_sign_epi8(v3, v3), ones);
        }
        /* lane sums of s0..s3: hadd twice leaves [s0 s1 s2 s3] partial sums in each half */
        const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
        const __m128i r = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        _mm_storeu_si128((__m128i *)(acc + (size_t)t * OC + o), r);
    }
}

/* One output row (the OC % 4 left over), two chains. */
__attribute__((target("avx2"))) static void row_s8_avx2(int32_t *acc, const int8_t *a, const int8_t *wr, int N,
                                                         int ICp, int OC, int o)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const int nb = ICp / IQ_S8_BLOCK;
    for (int t = 0; t < N; t++) {
        const int8_t *x = a + (size_t)t * ICp;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        int b = 0;
        for (; b + 2 <= nb; b += 2) {
            const size_t off = (size_t)b * IQ_S8_BLOCK;
            const __m256i v0 = _mm256_loadu_si256((const __m256i *)(wr + off));
            const __m256i v1 = _mm256_loadu_si256((const __m256i *)(wr + off + IQ_S8_BLOCK));
            IQ_DOT32_S8(s0, _mm256_loadu_si256((const __m256i *)(x + off)), v0, _mm256_sign_epi8(v0, v0), ones);
            IQ_DOT32_S8(s1, _mm256_loadu_si256((const __m256i *)(x + off + IQ_S8_BLOCK)), v1, _mm256_sign_epi8(v1, v1),
                        ones);
        }
        if (b < nb) {
            const size_t off = (size_t)b * IQ_S8_BLOCK;
            const __m256i v0 = _mm256_loadu_si256((const __m256i *)(wr + off));
            IQ_DOT32_S8(s0, _mm256_loadu_si256((const __m256i *)(x + off)), v0, _mm256_sign_epi8(v0, v0), ones);
        }
        acc[(size_t)t * OC + o] = hsum_i32(_mm256_add_epi32(s0, s1));
    }
}

int iq_gemm_s8s8_avx2(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC)
{
    if (!iq_have_avx2()) return 0;
    const int ng = OC / 4;
#pragma omp parallel for schedule(static) if ((long)N * OC * (long)ICp >= (1L << 18))
    for (int g = 0; g < ng; g++) rows4_s8_avx2(acc, a, w, N, ICp, OC, 4 * g);
    for (int o = 4 * ng; o < OC; o++) row_s8_avx2(acc, a, w + (size_t)o * ICp, N, ICp, OC, o);
    return 1;
}
/* ---- AVX-512 VNNI: vpdpbusd (u8 x s8, four products summed into each s32 lane, no
 * saturation) on 512-bit vectors ---- */
int iq_have_vnni(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")
                     ? 1
                     : 0;
    }
    return cached;
}

#define IQ_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/* The sum of the 16 lanes, modulo 2^32, by vector adds (which wrap): _mm512_reduce_add_epi32
 * adds in signed int, undefined behaviour where the s8 kernel's offset sums pass 2^31. */
IQ_VNNI_TARGET static inline uint32_t hsum_u32_512(__m512i v)
{
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0x4E));
    q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1));
    return (uint32_t)_mm_cvtsi128_si32(q);
}

/* The 64 codes of one packed block in column order: low nibbles (columns 0..31) in the
 * lower 256 bits, high nibbles (32..63) in the upper. Codes 0..15 read as s8 by vpdpbusd. */
IQ_VNNI_TARGET static inline __m512i unpack64_vnni(const uint8_t *p, __m256i m)
{
    const __m256i v = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m)),
                              _mm256_and_si256(_mm256_srli_epi16(v, 4), m), 1);
}

/* One output channel o, four tokens at a time (each unpacked block feeds four vpdpbusd),
 * then the tokens left over with two chains. Sums at most 255*15*ICp < 2^31: exact. */
IQ_VNNI_TARGET static void row_vnni(int32_t *acc, const uint8_t *a, const uint8_t *wr, int N, int ICp, int OC, int o)
{
    const __m256i m = _mm256_set1_epi8(15);
    const int nb = ICp / IQ_BLOCK;
    int t = 0;
    for (; t + 4 <= N; t += 4) {
        const uint8_t *a0 = a + (size_t)t * ICp, *a1 = a0 + ICp, *a2 = a1 + ICp, *a3 = a2 + ICp;
        __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
        for (int b = 0; b < nb; b++) {
            const __m512i w = unpack64_vnni(wr + (size_t)b * 32, m);
            const size_t off = (size_t)b * IQ_BLOCK;
            s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(a0 + off), w);
            s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(a1 + off), w);
            s2 = _mm512_dpbusd_epi32(s2, _mm512_loadu_si512(a2 + off), w);
            s3 = _mm512_dpbusd_epi32(s3, _mm512_loadu_si512(a3 + off), w);
        }
        acc[(size_t)t * OC + o] = (int32_t)hsum_u32_512(s0);
        acc[(size_t)(t + 1) * OC + o] = (int32_t)hsum_u32_512(s1);
        acc[(size_t)(t + 2) * OC + o] = (int32_t)hsum_u32_512(s2);
        acc[(size_t)(t + 3) * OC + o] = (int32_t)hsum_u32_512(s3);
    }
    for (; t < N; t++) {
        const uint8_t *a0 = a + (size_t)t * ICp;
        __m512i s0 = _mm512_setzero_si512(), s1 = s0;
        int b = 0;
        for (; b + 2 <= nb; b += 2) {
            const size_t off = (size_t)b * IQ_BLOCK;
            s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(a0 + off), unpack64_vnni(wr + (size_t)b * 32, m));
            s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(a0 + off + IQ_BLOCK), unpack64_vnni(wr + (size_t)(b + 1) * 32, m));
        }
        if (b < nb)
            s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(a0 + (size_t)b * IQ_BLOCK), unpack64_vnni(wr + (size_t)b * 32, m));
        acc[(size_t)t * OC + o] = (int32_t)hsum_u32_512(_mm512_add_epi32(s0, s1));
    }
}

int iq_gemm_u8u4_vnni(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC)
{
    if (!iq_have_vnni()) return 0;
    const size_t rb = (size_t)ICp / 2;
#pragma omp parallel for schedule(static) if ((long)N * OC * (long)ICp >= (1L << 18))
    for (int o = 0; o < OC; o++) row_vnni(acc, a, w + (size_t)o * rb, N, ICp, OC, o);
    return 1;
}

/* IL16: each 512-bit lane is one output channel, so the sums need no horizontal reduction.
 * A 64-byte chunk (8 columns x 16 channels) gives two code vectors (low nibbles: columns
 * 0..3, high: 4..7); each meets a broadcast of the token's 4 activation bytes in one
 * vpdpbusd. lo and hi go to separate accumulators (independent chains). Output lanes past
 * OC are masked off on the store. */
static inline int32_t bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* NT tokens (1 or 4) at t, NG channel groups (1..4) at g: 2 NT NG accumulators (at most 16
 * of the 32 zmm registers). */
#define IL16_BODY(NT, NG)                                                                                              \
    do {                                                                                                               \
        __m512i lo_[NT][NG], hi_[NT][NG];                                                                              \
        for (int k_ = 0; k_ < NT; k_++)                                                                                \
            for (int q_ = 0; q_ < NG; q_++) lo_[k_][q_] = hi_[k_][q_] = _mm512_setzero_si512();                        \
        for (int c = 0; c < nc; c++) {                                                                                 \
            __m512i wl_[NG], wh_[NG];                                                                                  \
            for (int q_ = 0; q_ < NG; q_++) {                                                                          \
                const __m512i p_ = _mm512_loadu_si512(wil + ((size_t)(g + q_) * nc + c) * 64);                        \
                wl_[q_] = _mm512_and_si512(p_, m);                                                                     \
                wh_[q_] = _mm512_and_si512(_mm512_srli_epi16(p_, 4), m);                                               \
            }                                                                                                          \
            for (int k_ = 0; k_ < NT; k_++) {                                                                          \
                const uint8_t *x_ = a + (size_t)(t + k_) * ICp + 8 * (size_t)c;                                        \
                const __m512i b0_ = _mm512_set1_epi32(bcast4(x_)), b1_ = _mm512_set1_epi32(bcast4(x_ + 4));           \
                for (int q_ = 0; q_ < NG; q_++) {                                                                      \
                    lo_[k_][q_] = _mm512_dpbusd_epi32(lo_[k_][q_], b0_, wl_[q_]);                                      \
                    hi_[k_][q_] = _mm512_dpbusd_epi32(hi_[k_][q_], b1_, wh_[q_]);                                      \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        for (int k_ = 0; k_ < NT; k_++)                                                                                \
            for (int q_ = 0; q_ < NG; q_++) {                                                                          \
                const int o_ = 16 * (g + q_);                                                                          \
                const __mmask16 mk_ = OC - o_ >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (OC - o_)) - 1);          \
                _mm512_mask_storeu_epi32(acc + (size_t)(t + k_) * OC + o_, mk_,                                        \
                                         _mm512_add_epi32(lo_[k_][q_], hi_[k_][q_]));                                  \
            }                                                                                                          \
    } while (0)

/* Channel groups g.. (ng of them, 1..2) for tokens t0..t1-1 four at a time, or (ng 1..4)
 * for one token at a time: eight accumulators either way (decode has no second token to
 * fill the pipeline, so it takes four groups). */
IQ_VNNI_TARGET static void il16_block4(int32_t *acc, const uint8_t *a, const uint8_t *wil, int t0, int t1, int ICp, int OC,
                                        int g, int ng)
{
    const __m512i m = _mm512_set1_epi8(15);
    const int nc = ICp / 8;
    for (int t = t0; t + 4 <= t1; t += 4) {
        if (ng == 2) IL16_BODY(4, 2);
        else IL16_BODY(4, 1);
    }
}

IQ_VNNI_TARGET static void il16_block1(int32_t *acc, const uint8_t *a, const uint8_t *wil, int t0, int t1, int ICp, int OC,
                                        int g, int ng)
{
    const __m512i m = _mm512_set1_epi8(15);
    const int nc = ICp / 8;
    for (int t = t0; t < t1; t++) {
        if (ng == 4) IL16_BODY(1, 4);
        else if (ng == 3) IL16_BODY(1, 3);
        else if (ng == 2) IL16_BODY(1, 2);
        else IL16_BODY(1, 1);
    }
}

int iq_gemm_u8u4_il16_vnni(int32_t *acc, const uint8_t *a, const uint8_t *wil, int N, int ICp, int OC)
{
    if (!iq_have_vnni()) return 0;
    const int G = (OC + 15) / 16, N4 = N / 4 * 4;
    const int par = (long)N * OC * (long)ICp >= (1L << 18);
    if (N4 > 0) {
        const int np = (G + 1) / 2;
#pragma omp parallel for schedule(static) if (par)
        for (int q = 0; q < np; q++) il16_block4(acc, a, wil, 0, N4, ICp, OC, 2 * q, G - 2 * q < 2 ? G - 2 * q : 2);
    }
    if (N4 < N) {
        const int nq = (G + 3) / 4;
#pragma omp parallel for schedule(static) if (par)
        for (int q = 0; q < nq; q++) il16_block1(acc, a, wil, N4, N, ICp, OC, 4 * q, G - 4 * q < 4 ? G - 4 * q : 4);
    }
    return 1;
}

/* s8 x s8 by vpdpbusd (u8 x s8): the activations are offset to u = x + 128 (0..255, an XOR
 * of the sign bit), so sum u*w = sum x*w + 128 * sum w, and sum w is taken once per row
 * with vpdpbusd against a vector of ones. The uncorrected sum can pass 2^31 at large
 * widths (255*127*ICp); it is carried modulo 2^32 (vpdpbusd adds without saturation, the
 * correction is in unsigned arithmetic) and the exact result, |sum x*w| <= 16129*ICp <
 * 2^31, comes out. Up to 64 columns per step; a 32-column tail by masked loads. Four
 * output rows share each activation load. */
IQ_VNNI_TARGET static void rows_s8_vnni(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC, int o,
                                        int nr)
{
    const __m512i sign = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    const int8_t *wr[4];
    uint32_t corr[4] = {0, 0, 0, 0};
    for (int r = 0; r < nr; r++) {
        wr[r] = w + (size_t)(o + r) * ICp;
        __m512i ws = _mm512_setzero_si512();
        for (int off = 0; off < ICp; off += 64) {
            const __mmask64 k = ICp - off >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (ICp - off)) - 1);
            ws = _mm512_dpbusd_epi32(ws, ones, _mm512_maskz_loadu_epi8(k, wr[r] + off));
        }
        corr[r] = hsum_u32_512(ws) * 128u;
    }
    for (int t = 0; t < N; t++) {
        const int8_t *x = a + (size_t)t * ICp;
        __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
        for (int off = 0; off < ICp; off += 64) {
            const __mmask64 k = ICp - off >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (ICp - off)) - 1);
            /* masked-off bytes load as 0 in both: (0 ^ 0x80) * 0 adds nothing */
            const __m512i u = _mm512_xor_si512(_mm512_maskz_loadu_epi8(k, x + off), sign);
            s0 = _mm512_dpbusd_epi32(s0, u, _mm512_maskz_loadu_epi8(k, wr[0] + off));
            if (nr > 1) s1 = _mm512_dpbusd_epi32(s1, u, _mm512_maskz_loadu_epi8(k, wr[1] + off));
            if (nr > 2) s2 = _mm512_dpbusd_epi32(s2, u, _mm512_maskz_loadu_epi8(k, wr[2] + off));
            if (nr > 3) s3 = _mm512_dpbusd_epi32(s3, u, _mm512_maskz_loadu_epi8(k, wr[3] + off));
        }
        const __m512i sv[4] = {s0, s1, s2, s3};
        for (int r = 0; r < nr; r++)
            acc[(size_t)t * OC + o + r] = (int32_t)(hsum_u32_512(sv[r]) - corr[r]);
    }
}

int iq_gemm_s8s8_vnni(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC)
{
    if (!iq_have_vnni()) return 0;
    const int ng = (OC + 3) / 4;
#pragma omp parallel for schedule(static) if ((long)N * OC * (long)ICp >= (1L << 18))
    for (int g = 0; g < ng; g++) rows_s8_vnni(acc, a, w, N, ICp, OC, 4 * g, OC - 4 * g < 4 ? OC - 4 * g : 4);
    return 1;
}
#else
int iq_have_vnni(void) { return 0; }
int iq_gemm_u8u4_vnni(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC)
{
    (void)acc, (void)a, (void)w, (void)N, (void)ICp, (void)OC;
    return 0;
}
int iq_gemm_s8s8_vnni(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC)
{
    (void)acc, (void)a, (void)w, (void)N, (void)ICp, (void)OC;
    return 0;
}
int iq_gemm_u8u4_il16_vnni(int32_t *acc, const uint8_t *a, const uint8_t *wil, int N, int ICp, int OC)
{
    (void)acc, (void)a, (void)wil, (void)N, (void)ICp, (void)OC;
    return 0;
}
int iq_have_avx2(void) { return 0; }
int iq_gemm_u8u4_avx2(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC)
{
    (void)acc, (void)a, (void)w, (void)N, (void)ICp, (void)OC;
    return 0;
}
int iq_gemm_u4u4_avx2(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC)
{
    (void)acc, (void)a, (void)w, (void)N, (void)ICp, (void)OC;
    return 0;
}
int iq_gemm_s8s8_avx2(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC)
{
    (void)acc, (void)a, (void)w, (void)N, (void)ICp, (void)OC;
    return 0;
}
#endif

/* The kernel the dispatchers use: the best the CPU has, or the one iq_set_kernel chose. */
static int forced = -1; /* -1 auto, else IQ_K_* */
enum { IQ_K_REF, IQ_K_AVX2, IQ_K_VNNI };

static int active_kernel(void)
{
    if (forced >= 0) return forced;
    return iq_have_vnni() ? IQ_K_VNNI : iq_have_avx2() ? IQ_K_AVX2 : IQ_K_REF;
}

int iq_set_kernel(const char *name)
{
    if (!name || !strcmp(name, "auto")) {
        forced = -1;
        return 0;
    }
    if (!strcmp(name, "ref")) forced = IQ_K_REF;
    else if (!strcmp(name, "avx2") && iq_have_avx2()) forced = IQ_K_AVX2;
    else if (!strcmp(name, "avx512vnni") && iq_have_vnni()) forced = IQ_K_VNNI;
    else if (!strcmp(name, "avx2") || !strcmp(name, "avx512vnni")) {
        return RS_ERROR(RS_ENOTSUP, "integer kernel '%s': this CPU does not have it (it has: %s)", name,
                        iq_have_vnni() ? "avx512vnni, avx2, ref" : iq_have_avx2() ? "avx2, ref" : "ref");
    } else
        return RS_ERROR(RS_EINVAL, "integer kernel '%s': not one of auto, avx512vnni, avx2, ref", name);
    return RS_OK;
}

int iq_kernel_is_vnni(void) { return active_kernel() == IQ_K_VNNI; }

const char *iq_kernel_name(void)
{
    const int k = active_kernel();
    return k == IQ_K_VNNI ? "avx512vnni" : k == IQ_K_AVX2 ? "avx2" : "ref";
}

/* The portable path used when the CPU lacks AVX2: the reference loop, rows in parallel
 * (each output element is computed by one thread in a fixed order: same integers). */
void iq_gemm_u8u4_portable(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC)
{
    const size_t rb = (size_t)ICp / 2;
#pragma omp parallel for schedule(static) if ((long)N * OC * (long)ICp >= (1L << 18))
    for (int o = 0; o < OC; o++) {
        const uint8_t *wr = w + (size_t)o * rb;
        for (int n = 0; n < N; n++) {
            const uint8_t *x = a + (size_t)n * ICp;
            int32_t s = 0;
            for (int b = 0; b < ICp / IQ_BLOCK; b++)
                for (int j = 0; j < 32; j++) {
                    uint8_t v = wr[b * 32 + j];
                    s += (int32_t)x[b * IQ_BLOCK + j] * (v & 15) + (int32_t)x[b * IQ_BLOCK + 32 + j] * (v >> 4);
                }
            acc[(size_t)n * OC + o] = s;
        }
    }
}

void iq_gemm_u8u4(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC, int amax)
{
    const int k = active_kernel();
    if (k == IQ_K_VNNI && iq_gemm_u8u4_vnni(acc, a, w, N, ICp, OC)) return;
    if (k >= IQ_K_AVX2 && amax <= 15 && iq_gemm_u4u4_avx2(acc, a, w, N, ICp, OC)) return;
    if (k >= IQ_K_AVX2 && iq_gemm_u8u4_avx2(acc, a, w, N, ICp, OC)) return;
    iq_gemm_u8u4_portable(acc, a, w, N, ICp, OC);
}

/* The portable int8 loop (no AVX2): rows in parallel, each element summed by one thread in
 * a fixed order (same integers as the _ref loop); the inner loop vectorises as is. */
void iq_gemm_s8s8_portable(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC)
{
#pragma omp parallel for schedule(static) if ((long)N * OC * (long)ICp >= (1L << 18))
    for (int o = 0; o < OC; o++) {
        const int8_t *wr = w + (size_t)o * ICp;
        for (int n = 0; n < N; n++) {
            const int8_t *x = a + (size_t)n * ICp;
            int32_t s = 0;
            for (int i = 0; i < ICp; i++) s += (int32_t)x[i] * (int32_t)wr[i];
            acc[(size_t)n * OC + o] = s;
        }
    }
}

void iq_gemm_s8s8(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC)
{
    const int k = active_kernel();
    if (k == IQ_K_VNNI && iq_gemm_s8s8_vnni(acc, a, w, N, ICp, OC)) return;
    if (k >= IQ_K_AVX2 && iq_gemm_s8s8_avx2(acc, a, w, N, ICp, OC)) return;
    iq_gemm_s8s8_portable(acc, a, w, N, ICp, OC);
}
