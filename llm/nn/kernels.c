/* rostesim LLM: the fast layer kernels (kernels.h).
 *
 * Every matrix product goes through OpenBLAS (cblas_sgemm, cblas_sgemv for one row); the
 * remaining loops are parallelised with OpenMP over rows (or over columns for the reductions
 * over rows) with vectorisable inner loops. Determinism: no atomics and no OpenMP
 * reduction across threads: every output element is produced by exactly one thread, and each sum is taken
 * in an order fixed by the code (a sum over rows runs over the rows in order inside the
 * thread that owns the column), so results depend neither on the thread schedule nor on
 * the number of threads (the GEMMs are OpenBLAS's: reproducible for a fixed thread count).
 *
 * Attention runs one task per (batch, head). Inside an OpenMP parallel region the
 * OpenMP build of OpenBLAS runs single-threaded, so each task's GEMMs run on its own
 * core; the GEMMs read q, k, v in place from the fused qkv buffer through leading
 * dimensions (no copies) and skip the blocks above the causal diagonal.
 *
 * The loops that compute (exponentials, norms) sit in row helpers compiled three times
 * (AVX-512, AVX2, baseline x86-64; GCC target_clones, chosen once at load time for the
 * machine): the project builds for baseline x86-64, whose 4-wide SSE2 vectors made the
 * softmax and cross-entropy exponentials 4x slower than AVX-512 on the same core. Results
 * can differ between machines in the last bits (vector widths change the order of the
 * in-row sums) but not between runs on one machine.
 *
 * Dimension letters as in kernels.h. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "llm/nn/kernels.h"
#include "llm/nn/prof.h"

/* Loops over fewer elements than this run on one thread (thread start-up costs more). */
#define LK_PAR_MIN 16384L
/* Columns per pass in the column-split reductions over rows (double accumulators). */
#define LK_COLS 512
/* Rows per block of the blocked causal attention GEMMs. */
#ifndef LK_ATT_BLK
#define LK_ATT_BLK 64
#endif

/* Elements per task in the elementwise activation loops. */
#define LK_CHUNK 8192L

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(LK_NO_CLONES)
#define LK_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), noinline))
#else
#define LK_CLONES
#endif

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline long lmin(long a, long b) { return a < b ? a : b; }

/* The calling thread's share [*c0, *c1) of C columns: contiguous, multiples of 16 floats.
 * Reductions over rows give every column to one thread, which sums the rows in order, so
 * the result does not depend on the number of threads. */
static void thread_cols(int C, int *c0, int *c1)
{
    int nt = omp_get_num_threads(), id = omp_get_thread_num();
    int per = ((C + nt - 1) / nt + 15) / 16 * 16;
    *c0 = imin(C, id * per);
    *c1 = imin(C, *c0 + per);
}

/* exp(x) in float, vectorisable (no libm call, no branches): Cody-Waite reduction
 * x = n ln2 + r, |r| <= ln2/2, the Cephes degree-6 polynomial for e^r, and 2^n built in
 * the exponent bits. Relative error about 2 ulp on [-87.3, 88]; below -87.3 (where the
 * normal floats end) it returns 0, above 88 it returns e^88 (callers only pass x <= ~0:
 * softmax after the max shift, sigmoid of -|x|); NaN propagates.
 * The clamps are bit masks on the float's bits rather than ?: because a select on a
 * float stops GCC from vectorising the loops under the default -ftrapping-math. */
static inline __attribute__((always_inline)) float lk_expf(float x)
{
    uint32_t ux;
    memcpy(&ux, &x, sizeof ux);
    /* as unsigned bits, -87.3 < x <= -inf is 0xC2AE999A < ux <= 0xFF800000 (negative NaNs
     * lie above), 88 < x <= +inf is 0x42B00000 < ux <= 0x7F800000 */
    uint32_t lo = -(uint32_t)((ux > 0xC2AE999Au) & (ux <= 0xFF800000u));
    uint32_t hi = -(uint32_t)((ux > 0x42B00000u) & (ux <= 0x7F800000u));
    ux = (ux & ~(lo | hi)) | (0xC2AE999Au & lo) | (0x42B00000u & hi);
    float xc;
    memcpy(&xc, &ux, sizeof xc);
    /* round to nearest by the 1.5 * 2^23 trick (no rint call) */
    float nf = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)nf + 127) << 23;
    float sc;
    memcpy(&sc, &bits, sizeof sc);
    float y = p * sc;
    uint32_t uy;
    memcpy(&uy, &y, sizeof uy);
    uy &= ~lo; /* underflow to +0 */
    memcpy(&y, &uy, sizeof y);
    return y;
}

/* --- embedding -------------------------------------------------------------------------- */

/* out (N,C) = wte (V,C) rows selected by tokens (N) */
void lk_embedding_forward(float *out, const int32_t *tokens, const float *wte, int N, int C)
{
#pragma omp parallel for schedule(static) if ((long)N * C > LK_PAR_MIN)
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * C, wte + (size_t)tokens[n] * C, (size_t)C * sizeof *out);
}

/* dwte (V,C) += dout (N,C) scattered by tokens. Threads own column ranges and walk the
 * tokens in order, so repeated tokens add up in a fixed order without atomics. */
void lk_embedding_backward(float *dwte, const float *dout, const int32_t *tokens, int N, int C, int V)
{
    (void)V;
#pragma omp parallel if ((long)N * C > LK_PAR_MIN)
    {
        int c0, c1;
        thread_cols(C, &c0, &c1);
        for (int n = 0; n < N && c0 < c1; n++) {
            float *d = dwte + (size_t)tokens[n] * C;
            const float *g = dout + (size_t)n * C;
#pragma omp simd
            for (int c = c0; c < c1; c++) d[c] += g[c];
        }
    }
}

/* --- linear ----------------------------------------------------------------------------- */

/* out (N,OC) = inp (N,C) · w (OC,C)^T + bias (OC) */
void lk_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC)
{
    const double prof_t0 = llm_prof_on ? llm_prof_now() : 0;
    float beta = 0.0f;
    if (bias) {
#pragma omp parallel for schedule(static) if ((long)N * OC > LK_PAR_MIN)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof *out);
        beta = 1.0f;
    }
    if (N == 1) { /* one token (decode): sgemv reads w once; sgemm would first pack all of w */
        /* beta 0 scales y by 0, which some OpenBLAS versions let a NaN in y survive: start from 0 */
        if (!bias) memset(out, 0, (size_t)OC * sizeof *out);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, C, 1.0f, w, C, inp, 1, beta, out, 1);
    } else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, beta, out, OC);
    if (llm_prof_on) llm_prof_s[LLM_PH_MATMUL] += llm_prof_now() - prof_t0;
}

/* acc[0..nc) = column sums of x[0..N) rows (stride ld) over columns [0, nc), rows in order */
static void colsum_block(double *acc, const float *x, int N, int ld, int nc)
{
    for (int j = 0; j < nc; j++) acc[j] = 0.0;
    for (int n = 0; n < N; n++) {
        const float *g = x + (size_t)n * ld;
#pragma omp simd
        for (int j = 0; j < nc; j++) acc[j] += g[j];
    }
}

/* dinp (N,C) += dout (N,OC) · w (OC,C); dw (OC,C) += dout^T · inp; dbias (OC) += column sums */
void lk_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                        const float *w, int N, int C, int OC)
{
    const double prof_t0 = llm_prof_on ? llm_prof_now() : 0;
    if (dinp) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (dbias) {
#pragma omp parallel if ((long)N * OC > LK_PAR_MIN)
        {
            int c0, c1;
            thread_cols(OC, &c0, &c1);
            for (int o0 = c0; o0 < c1; o0 += LK_COLS) {
                int no = imin(c1, o0 + LK_COLS) - o0;
                double acc[LK_COLS];
                colsum_block(acc, dout + o0, N, OC, no);
                for (int j = 0; j < no; j++) dbias[o0 + j] += (float)acc[j];
            }
        }
    }
    if (llm_prof_on) llm_prof_s[LLM_PH_MATMUL] += llm_prof_now() - prof_t0;
}

/* --- LayerNorm, RMSNorm ------------------------------------------------------------------ */

/* One row: two-pass mean and variance; b may be NULL. */
static LK_CLONES void ln_fwd_row(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                                 int C, float eps)
{
    float m = 0.0f, v = 0.0f;
#pragma omp simd reduction(+ : m)
    for (int c = 0; c < C; c++) m += x[c];
    m /= (float)C;
#pragma omp simd reduction(+ : v)
    for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
    v /= (float)C;
    float s = 1.0f / sqrtf(v + eps);
    if (b) {
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s * w[c] + b[c];
    } else {
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s * w[c];
    }
    *mean = m;
    *rstd = s;
}

/* out, inp (N,C); w, b (C) (b may be NULL); mean, rstd (N) */
void lk_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int C, float eps)
{
#pragma omp parallel for schedule(static) if ((long)N * C > LK_PAR_MIN)
    for (int n = 0; n < N; n++) ln_fwd_row(out + (size_t)n * C, mean + n, rstd + n, inp + (size_t)n * C, w, b, C, eps);
}

/* dx += s (dy w - mean(dy w) - xhat mean(dy w xhat)), xhat = (x - m) s */
static LK_CLONES void ln_bwd_row(float *dx, const float *dy, const float *x, const float *w, float m, float s, int C)
{
    float m1 = 0.0f, m2 = 0.0f;
#pragma omp simd reduction(+ : m1, m2)
    for (int c = 0; c < C; c++) {
        float dxh = dy[c] * w[c];
        m1 += dxh;
        m2 += dxh * (x[c] - m) * s;
    }
    m1 /= (float)C;
    m2 /= (float)C;
#pragma omp simd
    for (int c = 0; c < C; c++) dx[c] += s * (dy[c] * w[c] - m1 - (x[c] - m) * s * m2);
}

/* Over the columns [c0, c0 + nc), rows in order: aw = sum dy xhat, ab = sum dy (ab may be
 * NULL); mean NULL means RMSNorm (xhat = x rstd). */
static LK_CLONES void norm_dw_cols(double *aw, double *ab, const float *dout, const float *inp, const float *mean,
                                   const float *rstd, int N, int C, int c0, int nc)
{
    for (int j = 0; j < nc; j++) aw[j] = 0.0;
    if (ab)
        for (int j = 0; j < nc; j++) ab[j] = 0.0;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C + c0, *dy = dout + (size_t)n * C + c0;
        float m = mean ? mean[n] : 0.0f, s = rstd[n];
#pragma omp simd
        for (int j = 0; j < nc; j++) aw[j] += dy[j] * ((x[j] - m) * s);
        if (ab) {
#pragma omp simd
            for (int j = 0; j < nc; j++) ab[j] += dy[j];
        }
    }
}

/* dinp += per row (ln_bwd_row); dw += sum over rows of dout xhat; db += sum over rows of
 * dout (tasks own column blocks and run over the rows in order) */
void lk_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const float *mean, const float *rstd, int N, int C)
{
    int par = (long)N * C > LK_PAR_MIN;
    if (dinp) {
#pragma omp parallel for schedule(static) if (par)
        for (int n = 0; n < N; n++)
            ln_bwd_row(dinp + (size_t)n * C, dout + (size_t)n * C, inp + (size_t)n * C, w, mean[n], rstd[n], C);
    }
    if (dw || db) {
#pragma omp parallel if (par)
        {
            int t0, t1;
            thread_cols(C, &t0, &t1);
            for (int c0 = t0; c0 < t1; c0 += LK_COLS) {
                int nc = imin(t1, c0 + LK_COLS) - c0;
                double aw[LK_COLS], ab[LK_COLS];
                norm_dw_cols(aw, ab, dout, inp, mean, rstd, N, C, c0, nc);
                for (int j = 0; j < nc; j++) {
                    if (dw) dw[c0 + j] += (float)aw[j];
                    if (db) db[c0 + j] += (float)ab[j];
                }
            }
        }
    }
}

static LK_CLONES void rms_fwd_row(float *y, float *rstd, const float *x, const float *w, int C, float eps)
{
    float ms = 0.0f;
#pragma omp simd reduction(+ : ms)
    for (int c = 0; c < C; c++) ms += x[c] * x[c];
    float s = 1.0f / sqrtf(ms / (float)C + eps);
#pragma omp simd
    for (int c = 0; c < C; c++) y[c] = x[c] * s * w[c];
    *rstd = s;
}

void lk_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps)
{
#pragma omp parallel for schedule(static) if ((long)N * C > LK_PAR_MIN)
    for (int n = 0; n < N; n++) rms_fwd_row(out + (size_t)n * C, rstd + n, inp + (size_t)n * C, w, C, eps);
}

/* dx += s (dy w - xhat mean(dy w xhat)), xhat = x s */
static LK_CLONES void rms_bwd_row(float *dx, const float *dy, const float *x, const float *w, float s, int C)
{
    float m2 = 0.0f;
#pragma omp simd reduction(+ : m2)
    for (int c = 0; c < C; c++) m2 += dy[c] * w[c] * x[c];
    m2 *= s * s / (float)C; /* mean(dy w xhat) * s */
#pragma omp simd
    for (int c = 0; c < C; c++) dx[c] += s * (dy[c] * w[c] - x[c] * m2);
}

void lk_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                         const float *rstd, int N, int C)
{
    int par = (long)N * C > LK_PAR_MIN;
    if (dinp) {
#pragma omp parallel for schedule(static) if (par)
        for (int n = 0; n < N; n++)
            rms_bwd_row(dinp + (size_t)n * C, dout + (size_t)n * C, inp + (size_t)n * C, w, rstd[n], C);
    }
    if (dw) {
#pragma omp parallel if (par)
        {
            int t0, t1;
            thread_cols(C, &t0, &t1);
            for (int c0 = t0; c0 < t1; c0 += LK_COLS) {
                int nc = imin(t1, c0 + LK_COLS) - c0;
                double aw[LK_COLS];
                norm_dw_cols(aw, NULL, dout, inp, NULL, rstd, N, C, c0, nc);
                for (int j = 0; j < nc; j++) dw[c0 + j] += (float)aw[j];
            }
        }
    }
}

/* --- RoPE ------------------------------------------------------------------------------- */

/* inv_freq (rot_dim/2), computed in double; rope_type 1 is Llama 3.1 scaling exactly as
 * transformers' _compute_llama3_parameters (low frequencies divided by factor, high ones
 * kept, a linear blend in 1/wavelength between). */
void lk_rope_inv_freq(double *inv_freq, int rot_dim, double theta, int rope_type, double factor,
                      double low_freq_factor, double high_freq_factor, int orig_max_pos)
{
    int half = rot_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow(theta, (2.0 * i) / rot_dim);
        if (rope_type == 1) {
            double wavelen = 2.0 * M_PI / f;
            double low_wl = orig_max_pos / low_freq_factor, high_wl = orig_max_pos / high_freq_factor;
            if (wavelen > low_wl) {
                f = f / factor;
            } else if (!(wavelen < high_wl)) {
                double sm = (orig_max_pos / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                f = (1.0 - sm) * f / factor + sm * f;
            }
        }
        inv_freq[i] = f;
    }
}

/* cos_t, sin_t (maxT, rot_dim/2): angles t * inv_freq[i] in double, stored as float */
void lk_rope_table(float *cos_t, float *sin_t, const double *inv_freq, int maxT, int rot_dim)
{
    int half = rot_dim / 2;
#pragma omp parallel for schedule(static) if ((long)maxT * half > LK_PAR_MIN)
    for (int t = 0; t < maxT; t++)
        for (int i = 0; i < half; i++) {
            double a = (double)t * inv_freq[i];
            cos_t[(size_t)t * half + i] = (float)cos(a);
            sin_t[(size_t)t * half + i] = (float)sin(a);
        }
}

/* rotate the first rot_dim dims of each of H heads of every token by +angle (sgn = 1)
 * or -angle (sgn = -1, the transpose) */
static void rope_apply(float *x, int stride, const float *cos_t, const float *sin_t, int B, int T, int H, int HS,
                       int rot_dim, int pos0, float sgn)
{
    int half = rot_dim / 2;
    long rows = (long)B * T;
#pragma omp parallel for schedule(static) if (rows * H * rot_dim > LK_PAR_MIN)
    for (long bt = 0; bt < rows; bt++) {
        int t = (int)(bt % T);
        const float *ct = cos_t + (size_t)(pos0 + t) * half, *st = sin_t + (size_t)(pos0 + t) * half;
        for (int h = 0; h < H; h++) {
            float *v = x + (size_t)bt * stride + (size_t)h * HS;
#pragma omp simd
            for (int i = 0; i < half; i++) {
                float c = ct[i], s = sgn * st[i], x1 = v[i], x2 = v[i + half];
                v[i] = x1 * c - x2 * s;
                v[i + half] = x2 * c + x1 * s;
            }
        }
    }
}

void lk_rope_forward(float *x, int stride, const float *cos_t, const float *sin_t, int B, int T, int H, int HS,
                     int rot_dim, int pos0)
{
    rope_apply(x, stride, cos_t, sin_t, B, T, H, HS, rot_dim, pos0, 1.0f);
}

void lk_rope_backward(float *dx, int stride, const float *cos_t, const float *sin_t, int B, int T, int H,
                      int HS, int rot_dim, int pos0)
{
    rope_apply(dx, stride, cos_t, sin_t, B, T, H, HS, rot_dim, pos0, -1.0f);
}

/* --- causal self-attention (GQA) -------------------------------------------------------- */

/* In place over a row s (n valid entries, then T - n zeros): s = softmax(s[0..n)). */
static LK_CLONES void softmax_row(float *s, int n, int T)
{
    float mx = s[0];
#pragma omp simd reduction(max : mx)
    for (int u = 1; u < n; u++) mx = s[u] > mx ? s[u] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int u = 0; u < n; u++) {
        float e = lk_expf(s[u] - mx);
        s[u] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int u = 0; u < n; u++) s[u] *= inv;
    if (n < T) memset(s + n, 0, (size_t)(T - n) * sizeof *s);
}

/* Softmax backward in place over a row d (n valid entries, then T - n zeros):
 * d = p o (d - sum(d o p)), p the probabilities. */
static LK_CLONES void softmax_bwd_row(float *d, const float *p, int n, int T)
{
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int u = 0; u < n; u++) dot += d[u] * p[u];
#pragma omp simd
    for (int u = 0; u < n; u++) d[u] = p[u] * (d[u] - dot);
    if (n < T) memset(d + n, 0, (size_t)(T - n) * sizeof *d);
}

/* qkv (B,T,QKV), out (B,T,NH*HS), att (B,NH,T,T). Per (b,h), by blocks of query rows
 * [r0,r1): S = scale Q[r0:r1] K[0:r1]^T (sgemm), causal softmax of the rows, then
 * out[r0:r1] = att[r0:r1, 0:r1] V[0:r1] (sgemm). */
void lk_attention_forward(float *out, float *att, const float *qkv, int B, int T, int NH, int NKV, int HS)
{
    const double prof_t0 = llm_prof_on ? llm_prof_now() : 0;
    int QKV = (NH + 2 * NKV) * HS, OC = NH * HS, grp = NH / NKV;
    float scale = (float)(1.0 / sqrt((double)HS));
    int tasks = B * NH;
#pragma omp parallel for schedule(static) if (tasks > 1)
    for (int bh = 0; bh < tasks; bh++) {
        int b = bh / NH, h = bh % NH, kh = h / grp;
        const float *q = qkv + (size_t)b * T * QKV + (size_t)h * HS;
        const float *k = qkv + (size_t)b * T * QKV + (size_t)(NH + kh) * HS;
        const float *v = qkv + (size_t)b * T * QKV + (size_t)(NH + NKV + kh) * HS;
        float *a = att + (size_t)bh * T * T;
        float *o = out + (size_t)b * T * OC + (size_t)h * HS;
        for (int r0 = 0; r0 < T; r0 += LK_ATT_BLK) {
            int r1 = imin(T, r0 + LK_ATT_BLK), m = r1 - r0;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, r1, HS, scale, q + (size_t)r0 * QKV, QKV, k,
                        QKV, 0.0f, a + (size_t)r0 * T, T);
            for (int r = r0; r < r1; r++) softmax_row(a + (size_t)r * T, r + 1, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, HS, r1, 1.0f, a + (size_t)r0 * T, T, v, QKV,
                        0.0f, o + (size_t)r0 * OC, OC);
        }
    }
    if (llm_prof_on) llm_prof_s[LLM_PH_ATTN] += llm_prof_now() - prof_t0;
}

/* dqkv (B,T,QKV) +=, datt (B,NH,T,T) scratch. Phase 1, one task per (b,h): datt = dout V^T,
 * dS = att o (datt - rowsum(datt o att)) (stored in datt), dQ += scale dS K. Phase 2, one task
 * per (b, kv head): the group's query heads in order, dK += scale dS^T Q, dV += att^T dout.
 * Every GEMM skips the blocks above the causal diagonal. */
void lk_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                           int B, int T, int NH, int NKV, int HS)
{
    const double prof_t0 = llm_prof_on ? llm_prof_now() : 0;
    int QKV = (NH + 2 * NKV) * HS, OC = NH * HS, grp = NH / NKV;
    float scale = (float)(1.0 / sqrt((double)HS));
    int tasks = B * NH;
#pragma omp parallel for schedule(static) if (tasks > 1)
    for (int bh = 0; bh < tasks; bh++) {
        int b = bh / NH, h = bh % NH, kh = h / grp;
        const float *k = qkv + (size_t)b * T * QKV + (size_t)(NH + kh) * HS;
        const float *v = qkv + (size_t)b * T * QKV + (size_t)(NH + NKV + kh) * HS;
        const float *a = att + (size_t)bh * T * T;
        const float *dy = dout + (size_t)b * T * OC + (size_t)h * HS;
        float *ds = datt + (size_t)bh * T * T;
        float *dq = dqkv + (size_t)b * T * QKV + (size_t)h * HS;
        for (int r0 = 0; r0 < T; r0 += LK_ATT_BLK) {
            int r1 = imin(T, r0 + LK_ATT_BLK), m = r1 - r0;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, r1, HS, 1.0f, dy + (size_t)r0 * OC, OC, v, QKV,
                        0.0f, ds + (size_t)r0 * T, T);
            for (int r = r0; r < r1; r++) softmax_bwd_row(ds + (size_t)r * T, a + (size_t)r * T, r + 1, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, HS, r1, scale, ds + (size_t)r0 * T, T, k, QKV,
                        1.0f, dq + (size_t)r0 * QKV, QKV);
        }
    }
    int kvtasks = B * NKV;
#pragma omp parallel for schedule(static) if (kvtasks > 1)
    for (int bj = 0; bj < kvtasks; bj++) {
        int b = bj / NKV, kh = bj % NKV;
        float *dk = dqkv + (size_t)b * T * QKV + (size_t)(NH + kh) * HS;
        float *dv = dqkv + (size_t)b * T * QKV + (size_t)(NH + NKV + kh) * HS;
        for (int h = kh * grp; h < (kh + 1) * grp; h++) {
            size_t bh = (size_t)b * NH + h;
            const float *q = qkv + (size_t)b * T * QKV + (size_t)h * HS;
            const float *a = att + bh * T * T, *ds = datt + bh * T * T;
            const float *dy = dout + (size_t)b * T * OC + (size_t)h * HS;
            /* key rows [c0,c1) receive from query rows [c0,T) (rows above c0 are masked) */
            for (int c0 = 0; c0 < T; c0 += LK_ATT_BLK) {
                int c1 = imin(T, c0 + LK_ATT_BLK), m = c1 - c0, kk = T - c0;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, HS, kk, scale, ds + (size_t)c0 * T + c0, T,
                            q + (size_t)c0 * QKV, QKV, 1.0f, dk + (size_t)c0 * QKV, QKV);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, HS, kk, 1.0f, a + (size_t)c0 * T + c0, T,
                            dy + (size_t)c0 * OC, OC, 1.0f, dv + (size_t)c0 * QKV, QKV);
            }
        }
    }
    if (llm_prof_on) llm_prof_s[LLM_PH_ATTN] += llm_prof_now() - prof_t0;
}

/* --- activations ------------------------------------------------------------------------ */

#define LK_SQRT1_2 0.70710678118654752440f
#define LK_INV_SQRT_2PI 0.39894228040143267794f
#define LK_SQRT_2_PI 0.79788456080286535588f

/* sigmoid(g) = 1 / (1 + e^-g) and 1 - sigmoid(g) = e^-g sigmoid(g), the latter without the
 * cancellation of 1 - s for large g. For g < -88 sigmoid(-88) ~ 6e-39 instead of less. */
static inline __attribute__((always_inline)) float lk_sigmoid2(float g, float *one_minus)
{
    float e = lk_expf(-g), s = 1.0f / (1.0f + e);
    *one_minus = e * s;
    return s;
}

static inline __attribute__((always_inline)) float lk_sigmoid(float g) { return 1.0f / (1.0f + lk_expf(-g)); }

/* The normal CDF Phi(x) = erfc(-x/sqrt2) / 2, vectorisable (glibc's erff is a scalar call,
 * the slowest part of a GeLU MLP): erfc(z) = t exp(-z^2 + P(t)), t = 1/(1 + |z|/2), for z >= 0,
 * 2 - that for z < 0 (Numerical Recipes' erfcc, relative error < 1.2e-7 for all z, so both
 * tails of Phi are relatively accurate). The sign is applied arithmetically: a float select
 * would stop the vectoriser (see lk_expf). */
static inline __attribute__((always_inline)) float lk_phi(float x)
{
    float az = fabsf(x) * LK_SQRT1_2, t = 1.0f / (1.0f + 0.5f * az);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    float h = 0.5f * t * lk_expf(p - az * az); /* erfc(|x|/sqrt2) / 2 = Phi(-|x|) */
    float pos = (float)(x > 0.0f);              /* Phi(x) = 1 - h for x > 0, h otherwise */
    return pos + h * (1.0f - 2.0f * pos);
}

static LK_CLONES void gelu_fwd_chunk(float *out, const float *inp, long n)
{
#pragma omp simd
    for (long i = 0; i < n; i++) out[i] = inp[i] * lk_phi(inp[i]);
}

/* exact GeLU: x Phi(x) */
void lk_gelu_forward(float *out, const float *inp, long n)
{
#pragma omp parallel for schedule(static) if (n > LK_PAR_MIN)
    for (long i = 0; i < n; i += LK_CHUNK) gelu_fwd_chunk(out + i, inp + i, lmin(LK_CHUNK, n - i));
}

/* d/dx x Phi(x) = Phi(x) + x phi(x) */
static LK_CLONES void gelu_bwd_chunk(float *dinp, const float *inp, const float *dout, long n)
{
#pragma omp simd
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        float d = lk_phi(x) + x * LK_INV_SQRT_2PI * lk_expf(-0.5f * x * x);
        dinp[i] += d * dout[i];
    }
}

void lk_gelu_backward(float *dinp, const float *inp, const float *dout, long n)
{
#pragma omp parallel for schedule(static) if (n > LK_PAR_MIN)
    for (long i = 0; i < n; i += LK_CHUNK) gelu_bwd_chunk(dinp + i, inp + i, dout + i, lmin(LK_CHUNK, n - i));
}

/* tanh GeLU: x/2 (1 + tanh(y)) = x sigmoid(2y), y = sqrt(2/pi) (x + 0.044715 x^3); the
 * sigmoid form is relatively accurate where 1 + tanh(y) is tiny (x very negative) */
static LK_CLONES void gelu_tanh_fwd_chunk(float *out, const float *inp, long n)
{
#pragma omp simd
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = x * lk_sigmoid(2.0f * LK_SQRT_2_PI * (x + 0.044715f * x * x * x));
    }
}

void lk_gelu_tanh_forward(float *out, const float *inp, long n)
{
#pragma omp parallel for schedule(static) if (n > LK_PAR_MIN)
    for (long i = 0; i < n; i += LK_CHUNK) gelu_tanh_fwd_chunk(out + i, inp + i, lmin(LK_CHUNK, n - i));
}

/* d/dx = s + 2 x s (1 - s) y'(x), s = sigmoid(2y), y' = sqrt(2/pi) (1 + 3 0.044715 x^2) */
static LK_CLONES void gelu_tanh_bwd_chunk(float *dinp, const float *inp, const float *dout, long n)
{
#pragma omp simd
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        float s1, s = lk_sigmoid2(2.0f * LK_SQRT_2_PI * (x + 0.044715f * x * x * x), &s1);
        float d = s + 2.0f * x * s * s1 * LK_SQRT_2_PI * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += d * dout[i];
    }
}

void lk_gelu_tanh_backward(float *dinp, const float *inp, const float *dout, long n)
{
#pragma omp parallel for schedule(static) if (n > LK_PAR_MIN)
    for (long i = 0; i < n; i += LK_CHUNK) gelu_tanh_bwd_chunk(dinp + i, inp + i, dout + i, lmin(LK_CHUNK, n - i));
}

/* one row: y = silu(g) u */
static LK_CLONES void swiglu_fwd_row(float *y, const float *g, const float *u, int F)
{
#pragma omp simd
    for (int f = 0; f < F; f++) y[f] = g[f] * lk_sigmoid(g[f]) * u[f];
}

/* inp (N,2F) rows [gate | up], out (N,F) = silu(gate) * up */
void lk_swiglu_forward(float *out, const float *inp, int N, int F)
{
#pragma omp parallel for schedule(static) if ((long)N * F > LK_PAR_MIN)
    for (int n = 0; n < N; n++) swiglu_fwd_row(out + (size_t)n * F, inp + (size_t)n * 2 * F, inp + (size_t)n * 2 * F + F, F);
}

/* one row: dg += dy u silu'(g), silu'(g) = s (1 + g (1 - s)); du += dy silu(g) */
static LK_CLONES void swiglu_bwd_row(float *dg, float *du, const float *g, const float *u, const float *dy, int F)
{
#pragma omp simd
    for (int f = 0; f < F; f++) {
        float s1, s = lk_sigmoid2(g[f], &s1);
        dg[f] += dy[f] * u[f] * s * (1.0f + g[f] * s1);
        du[f] += dy[f] * g[f] * s;
    }
}

void lk_swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int F)
{
#pragma omp parallel for schedule(static) if ((long)N * F > LK_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * F;
        float *dg = dinp + (size_t)n * 2 * F;
        swiglu_bwd_row(dg, dg + F, g, g + F, dout + (size_t)n * F, F);
    }
}

/* --- elementwise ------------------------------------------------------------------------ */

void lk_add(float *out, const float *a, const float *b, long n)
{
#pragma omp parallel for simd schedule(static) if (n > LK_PAR_MIN)
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void lk_accumulate(float *acc, const float *x, long n)
{
#pragma omp parallel for simd schedule(static) if (n > LK_PAR_MIN)
    for (long i = 0; i < n; i++) acc[i] += x[i];
}

/* --- cross-entropy ---------------------------------------------------------------------- */

/* logsumexp of one row; the exponentials are summed in double (V can be 150k) */
static LK_CLONES float xent_row_lse(const float *z, int V)
{
    float mx = z[0];
#pragma omp simd reduction(max : mx)
    for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int v = 0; v < V; v++) s += lk_expf(z[v] - mx);
    return mx + (float)log(s);
}

/* logits (N,V), targets (N), losses and lse (N); one row per iteration */
int lk_xent_forward(float *losses, float *lse, const float *logits, const int32_t *targets, int N, int V)
{
    int count = 0;
    for (int n = 0; n < N; n++) count += targets[n] >= 0;
#pragma omp parallel for schedule(static) if ((long)N * V > LK_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * V;
        float l = xent_row_lse(z, V);
        lse[n] = l;
        losses[n] = targets[n] < 0 ? 0.0f : l - z[targets[n]];
    }
    return count;
}

/* d = scale exp(z - l), element by element (d may be z) */
static LK_CLONES void xent_row_grad(float *d, const float *z, float l, float scale, int V)
{
#pragma omp simd
    for (int v = 0; v < V; v++) d[v] = scale * lk_expf(z[v] - l);
}

/* dlogits (N,V) = scale (softmax - onehot); may alias logits (element v is read before it is written) */
void lk_xent_backward(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                      float scale, int N, int V)
{
#pragma omp parallel for schedule(static) if ((long)N * V > LK_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        int t = targets[n];
        if (t < 0) {
            memset(d, 0, (size_t)V * sizeof *d);
            continue;
        }
        float pt = lk_expf(z[t] - lse[n]);
        xent_row_grad(d, z, lse[n], scale, V);
        d[t] = scale * (pt - 1.0f);
    }
}
