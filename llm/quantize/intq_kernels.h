/* rostesim LLM: integer kernels of the W4A8 inference path (llm/quantize/intq.h).
 *
 * Codes are unsigned here: a quantizer's code c in [qmin, qmax] is stored as u = c - qmin
 * (weights: 0..15, four bits; activations: 0..255, one byte); the zero points shift with
 * them, so (c - z) = (u - z') with z' = z - qmin.
 *
 * Packed 4-bit rows. A row of IC weight codes is padded with zero codes to
 * ICp = iq_padded(IC) (a multiple of 64) and stored in ICp/2 bytes: byte 32*b + j
 * (block b, 0 <= j < 32) holds column 64*b + j in its low nibble and column 64*b + 32 + j
 * in its high nibble. One AND and one shift+AND give 32 consecutive codes each, in the
 * order of the activation bytes they multiply. Activation rows are ICp bytes, padded
 * with zero codes (which add nothing to the products below).
 *
 * iq_gemm_u8u4: acc (N,OC) int32 = a (N,ICp) u8 . w (OC,ICp) u4^T, the plain sums of code
 * products; the caller subtracts the zero points (llm/quantize/intq.c). Overflow: a product is at
 * most 255*15 = 3825, so the sum is below 2^31 while ICp <= IQ_MAX_IC (524288). The AVX2
 * kernel multiplies with vpmaddubsw (u8 x s8 -> pairwise sums in s16: at most
 * 2*3825 = 7650, and the two such vectors added before widening at most 15300, below
 * 32767: no saturation), then vpmaddwd against ones (-> s32). Results are exact integers:
 * the kernel and its _ref twin agree bit for bit.
 *
 * The AVX-512 VNNI kernel (a CPU with AVX512F/BW/VL and AVX512_VNNI, detected at run time)
 * unpacks a block's 64 codes into one 512-bit vector (codes 0..15 read as s8) and
 * multiplies with vpdpbusd (u8 x s8, four products summed into each s32 lane, added
 * without saturation): one instruction per 64 columns and token, exact, equal to the _ref
 * loop bit for bit. AVX-VNNI (the 256-bit VEX form without AVX-512) is not used. */
#ifndef RS_LLM_INTQ_KERNELS_H
#define RS_LLM_INTQ_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define IQ_BLOCK 64
#define IQ_MAX_IC ((size_t)1 << 19)

/* IC rounded up to a multiple of IQ_BLOCK. */
size_t iq_padded(size_t IC);

/* One row: u (IC codes, each 0..15) -> dst (iq_padded(IC)/2 bytes, padding codes 0). */
void iq_pack4(uint8_t *dst, const uint8_t *u, size_t IC);
/* The inverse: dst (IC codes) from a packed row. */
void iq_unpack4(uint8_t *u, const uint8_t *src, size_t IC);
/* Code i of a packed row. */
static inline unsigned iq_get4(const uint8_t *row, size_t i)
{
    size_t b = i / IQ_BLOCK, j = i % IQ_BLOCK;
    uint8_t v = row[b * (IQ_BLOCK / 2) + (j & 31)];
    return j < 32 ? (v & 15u) : (v >> 4);
}

/* acc (N,OC) = a (N,ICp) . w^T, w is OC packed rows of ICp/2 bytes; ICp a multiple of 64,
 * at most IQ_MAX_IC; amax bounds the activation codes (15 for abits <= 4, else 255). The
 * dispatcher picks the VNNI kernel when the CPU has it, else an AVX2 kernel when it has
 * AVX2 (the A4 one when amax <= 15), else the portable loop (iq_kernel_name says which;
 * iq_set_kernel can pin a lower one); all give identical results. */
void iq_gemm_u8u4(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC, int amax);
void iq_gemm_u8u4_ref(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC);
/* The portable loop the dispatcher uses without AVX2 (rows in parallel). */
void iq_gemm_u8u4_portable(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC);
/* The AVX2 kernel itself; returns 0 (and computes nothing) on a CPU without AVX2. */
int iq_gemm_u8u4_avx2(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC);
/* The AVX2 kernel for activation codes <= 15: pair sums (<= 450) added in s16 over 32 blocks
 * (<= 28800) before widening. Returns 0 on a CPU without AVX2. */
int iq_gemm_u4u4_avx2(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC);
/* The AVX-512 VNNI kernel; returns 0 (and computes nothing) on a CPU without it. */
int iq_gemm_u8u4_vnni(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC);
int iq_have_avx2(void);
int iq_have_vnni(void); /* AVX512F, BW, VL and AVX512_VNNI */
/* The kernel family both dispatchers (u8 x u4 and s8 x s8) use: "avx512vnni", "avx2" or "ref". */
const char *iq_kernel_name(void);
/* Pin the dispatchers to "avx512vnni", "avx2" or "ref" ("auto" or NULL: the best the CPU
 * has), for benchmarks and A/B checks; the results are the same integers. RS_EINVAL for an
 * unknown name, RS_ENOTSUP for one this CPU lacks (the choice is then unchanged). Process-wide,
 * not thread-safe: call it before the kernels run. */
int iq_set_kernel(const char *name);

/* ---- IL16: the VNNI kernel's own weight layout ----
 *
 * Output channels in groups of 16 (OC padded to a multiple of 16 with zero codes), each
 * group's ICp columns in chunks of 8: chunk c of group g is 64 bytes at (g * ICp/8 + c) * 64;
 * byte 4j + i (channel 16g + j, 0 <= i < 4) holds column 8c + i in its low nibble and column
 * 8c + 4 + i in its high nibble. A chunk is one 512-bit load; AND / shift+AND give two
 * vectors whose 32-bit lane j holds channel 16g+j's codes of 4 consecutive columns, which
 * vpdpbusd multiplies by a broadcast of the token's 4 activation bytes: every lane sums its
 * own channel, with no horizontal reduction. The same bytes as the row layout
 * (iq_il16_bytes: 16 * ceil(OC/16) * ICp / 2); built from it at run time by iq_repack_il16
 * (the file keeps the row layout). */
size_t iq_il16_bytes(int OC, int ICp);
void iq_repack_il16(uint8_t *dst, const uint8_t *w, int OC, int ICp); /* w: OC packed rows */
/* acc (N,OC) = a (N,ICp) . wil^T: the naive loop over the IL16 layout, and the VNNI kernel
 * (returns 0 and computes nothing on a CPU without it); both equal iq_gemm_u8u4_ref on the
 * row-packed matrix the IL16 one was built from. */
void iq_gemm_u8u4_il16_ref(int32_t *acc, const uint8_t *a, const uint8_t *wil, int N, int ICp, int OC);
int iq_gemm_u8u4_il16_vnni(int32_t *acc, const uint8_t *a, const uint8_t *wil, int N, int ICp, int OC);
/* 1 when the dispatchers use the VNNI family (the CPU has it and no lower kernel is pinned):
 * then the int model keeps an IL16 copy of its weights and runs iq_gemm_u8u4_il16_vnni. */
int iq_kernel_is_vnni(void);

/* ---- int8 x int8: the opt-in int8 embedding / LM head (llm/intq.h, LLM_INTQ_HEAD_Q8) ----
 *
 * Symmetric int8 codes in -127..127 (never -128), rows padded with zero codes to
 * ICp = iq_padded_s8(IC) (a multiple of 32), one byte per code.
 *
 * iq_quantize_s8: per row r of x (N, IC), scale[r] = max_i |x_ri| / 127 and
 * q_ri = round-half-even(x_ri / scale[r]) (clamped to +-127, which it never exceeds but for
 * the rounding of the division), padding codes 0; dequantized x_ri ~ q_ri * scale[r], off by
 * at most scale[r] / 2 (plus the rounding of the scale). A row whose max |x| is zero or too
 * small for a normal scale (max|x| / 127 < FLT_MIN) gets scale 1 and all codes 0; a row with
 * a non-finite value gets scale NaN and all codes 0 (so anything computed from it is NaN).
 *
 * iq_gemm_s8s8: acc (N,OC) int32 = a (N,ICp) s8 . w (OC,ICp) s8^T. A product is at most
 * 127^2 = 16129 in magnitude, so the sum stays below 2^31 while ICp <= IQ_S8_MAX_IC
 * (131072: 16129 * 131072 = 2114060288). The AVX2 kernel (as llama.cpp's Q8_0 dot):
 * vpsignb puts w's sign on a (a * sign(w), 0 where w is 0; exact because a != -128), then
 * vpmaddubsw multiplies |w| (read unsigned, <= 127) by that (signed): pair sums at most
 * 2 * 127 * 127 = 32258 < 32767, no saturation; vpmaddwd against ones widens to int32. Four
 * output rows at a time share each activation load; exact integers, equal to the _ref loop
 * bit for bit. The VNNI kernel offsets the activations to u = a + 128 (u8) for vpdpbusd and
 * subtracts 128 * sum(w) per row, modulo 2^32 (see intq_kernels.c): the same integers. */
#define IQ_S8_BLOCK 32
#define IQ_S8_MAX_IC ((size_t)1 << 17)
size_t iq_padded_s8(size_t IC); /* IC rounded up to a multiple of IQ_S8_BLOCK */
void iq_quantize_s8(int8_t *q, float *scale, const float *x, int N, int IC, int ICp);
/* ICp a multiple of IQ_S8_BLOCK, at most IQ_S8_MAX_IC; codes in -127..127. The dispatcher
 * takes the VNNI kernel, else the AVX2 one, else the portable loop (as above); identical results. */
void iq_gemm_s8s8(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC);
void iq_gemm_s8s8_ref(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC);
void iq_gemm_s8s8_portable(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC);
int iq_gemm_s8s8_avx2(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC); /* 0: no AVX2 */
int iq_gemm_s8s8_vnni(int32_t *acc, const int8_t *a, const int8_t *w, int N, int ICp, int OC); /* 0: no VNNI */

#endif
