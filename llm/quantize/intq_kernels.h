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
 * No VNNI (vpdpbusd) kernel: the machines this was written and tested on have AVX2 but
 * not AVX-512 VNNI / AVX-VNNI, and an untested kernel is not shipped. */
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
 * dispatcher picks an AVX2 kernel when the CPU has AVX2 (iq_kernel_name says which; the
 * A4 one when amax <= 15), else the portable loop; all give identical results. */
void iq_gemm_u8u4(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC, int amax);
void iq_gemm_u8u4_ref(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC);
/* The portable loop the dispatcher uses without AVX2 (rows in parallel). */
void iq_gemm_u8u4_portable(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC);
/* The AVX2 kernel itself; returns 0 (and computes nothing) on a CPU without AVX2. */
int iq_gemm_u8u4_avx2(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC);
/* The AVX2 kernel for activation codes <= 15: pair sums (<= 450) added in s16 over 32 blocks
 * (<= 28800) before widening. Returns 0 on a CPU without AVX2. */
int iq_gemm_u4u4_avx2(int32_t *acc, const uint8_t *a, const uint8_t *w, int N, int ICp, int OC);
int iq_have_avx2(void);
const char *iq_kernel_name(void); /* "avx2" or "ref" */

#endif
