/* bench_kernels: the fast layer kernels (llm/nn/kernels.c) at the size of a ~30M-parameter
 * Llama training step (B=8, T=256 so N=2048 tokens, C=512, F=1376, NH=8, NKV=8 and 4,
 * HS=64, V=8192), against
 *   (a) their naive _ref twins: speed-up ratio. The _ref kernels are too slow for the full
 *       size, so they run on a slice of the rows (a slice of the batch for attention) and
 *       their time is scaled up linearly (every _ref kernel is linear in the rows);
 *       the slice is printed in the last column;
 *   (b) for the matrix products, a bare cblas_sgemm of the same shapes ("bare 100%": the
 *       kernel adds nothing to it), and GFLOP/s as a fraction of a large square sgemm (the
 *       machine's sgemm peak as OpenBLAS reaches it here; attention counts the causal half);
 *   (c) for the memory-bound kernels, GB/s counting one read of every input and one write
 *       of every output (a lower bound on the traffic).
 * Best of several CLOCK_MONOTONIC timings; no assertions. Threads: OMP_NUM_THREADS.
 * On a loaded machine every OpenMP parallel region can wait a scheduler tick for a thread
 * that lost its core (the memory-bound kernels then all read ~8 ms): run it alone. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "llm/nn/kernels.h"
#include "quant/rng.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static rs_rng *RNG;

static float *frandn(long n, double sigma)
{
    float *x = malloc((size_t)n * sizeof *x);
    for (long i = 0; i < n; i++) x[i] = (float)rs_rng_gaussian(RNG, sigma);
    return x;
}

static float *fzero(long n) { return calloc((size_t)n, sizeof(float)); }

/* best time of `reps` runs of the statement (after one warm-up run) */
#define BEST(reps, stmt)                                                                          \
    ({                                                                                            \
        double best_ = INFINITY;                                                                  \
        stmt;                                                                                     \
        for (int r_ = 0; r_ < (reps); r_++) {                                                     \
            double t0_ = now_s();                                                                 \
            stmt;                                                                                 \
            double t_ = now_s() - t0_;                                                            \
            if (t_ < best_) best_ = t_;                                                           \
        }                                                                                         \
        best_;                                                                                    \
    })

/* one timed run (the slow _ref kernels) */
#define ONCE(stmt)                                                                                \
    ({                                                                                            \
        double t0_ = now_s();                                                                     \
        stmt;                                                                                     \
        now_s() - t0_;                                                                            \
    })

static double PEAK; /* GFLOP/s of a large square sgemm */

/* one line: kernel, fast ms, ref ms (scaled), ratio, then a throughput note */
static void row(const char *name, double tf, double tr, int slice, int of, const char *note)
{
    printf("%-30s %9.3f ms %11.1f ms %9.1fx   %-34s %d/%d\n", name, 1e3 * tf, 1e3 * tr, tr / tf, note, slice, of);
}

static void gemm_row(const char *name, double tf, double tr, int slice, int of, double flops, double tbare)
{
    char note[96];
    int k = snprintf(note, sizeof note, "%6.1f GF/s %3.0f%% peak", flops / tf * 1e-9, 100 * flops / tf * 1e-9 / PEAK);
    if (tbare == tbare) snprintf(note + k, sizeof note - (size_t)k, ", bare %3.0f%%", 100 * tbare / tf);
    row(name, tf, tr, slice, of, note);
}

static void mem_row(const char *name, double tf, double tr, int slice, int of, double bytes)
{
    char note[96];
    snprintf(note, sizeof note, "%6.1f GB/s", bytes / tf * 1e-9);
    row(name, tf, tr, slice, of, note);
}

/* linear layer (N,C) -> (N,OC): forward and backward against bare sgemm and _ref on Ns rows */
static void bench_linear(const char *name, int N, int C, int OC, int Ns, int bias)
{
    float *x = frandn((long)N * C, 1.0), *w = frandn((long)OC * C, 0.05), *b = bias ? frandn(OC, 1.0) : NULL;
    float *y = fzero((long)N * OC), *dy = frandn((long)N * OC, 1.0), *dx = fzero((long)N * C), *dw = fzero((long)OC * C);
    float *db = fzero(OC);
    char nm[64];
    double fl = 2.0 * N * C * OC;
    double tb = BEST(5, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, x, C, w, C, 0.0f, y, OC));
    double tf = BEST(5, lk_matmul_forward(y, x, w, b, N, C, OC));
    double tr = ONCE(lk_matmul_forward_ref(y, x, w, b, Ns, C, OC)) * N / Ns;
    snprintf(nm, sizeof nm, "matmul fwd %s", name);
    gemm_row(nm, tf, tr, Ns, N, fl, tb);
    tb = BEST(5, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dy, OC, w, C, 1.0f, dx, C);
              cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dy, OC, x, C, 1.0f, dw, C));
    tf = BEST(5, lk_matmul_backward(dx, dw, b ? db : NULL, dy, x, w, N, C, OC));
    tr = ONCE(lk_matmul_backward_ref(dx, dw, b ? db : NULL, dy, x, w, Ns, C, OC)) * N / Ns;
    snprintf(nm, sizeof nm, "matmul bwd %s", name);
    gemm_row(nm, tf, tr, Ns, N, 2 * fl, tb);
    free(x); free(w); free(b); free(y); free(dy); free(dx); free(dw); free(db);
}

int main(void)
{
    RNG = rs_rng_alloc(1, 1);
    const int B = 8, T = 256, N = B * T, C = 512, F = 1376, NH = 8, HS = 64, V = 8192;
    printf("bench_kernels: B=%d T=%d (N=%d) C=%d F=%d NH=%d HS=%d V=%d, %d threads\n", B, T, N, C, F, NH, HS, V,
           omp_get_max_threads());

    /* sgemm peak: a large square product */
    {
        int n = 2048;
        float *a = frandn((long)n * n, 1.0), *b = frandn((long)n * n, 1.0), *c = fzero((long)n * n);
        double t = BEST(5, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n));
        PEAK = 2.0 * n * n * n / t * 1e-9;
        printf("sgemm peak (OpenBLAS %s kernels, %dx%dx%d): %.1f GFLOP/s\n", openblas_get_corename(), n, n, n, PEAK);
        const char *core = openblas_get_corename();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && core &&
            strcasecmp(core, "SkylakeX") != 0 && strcasecmp(core, "Cooperlake") != 0 &&
            strcasecmp(core, "SapphireRapids") != 0)
            printf("note: this CPU has AVX-512 but OpenBLAS runs its %s kernels%s; OPENBLAS_CORETYPE=SkylakeX "
                   "selects the AVX-512 ones\n", core, getenv("OPENBLAS_CORETYPE") ? " (OPENBLAS_CORETYPE is set)" : "");
        printf("\n");
        free(a); free(b); free(c);
    }
    printf("%-30s %12s %14s %10s   %-34s %s\n", "kernel", "fast", "ref (scaled)", "ref/fast", "throughput",
           "ref rows");

    /* linear layers of a Llama block and the LM head */
    bench_linear("qkv 512->1536", N, C, 3 * C, 64, 0);
    bench_linear("o 512->512", N, C, C, 64, 0);
    bench_linear("gate|up 512->2752", N, C, 2 * F, 32, 0);
    bench_linear("down 1376->512", N, F, C, 32, 0);
    bench_linear("lm head 512->8192", N, C, V, 8, 0);
    bench_linear("qkv+bias 512->1536", N, C, 3 * C, 64, 1);

    /* norms */
    {
        long n = (long)N * C;
        float *x = frandn(n, 1.0), *w = frandn(C, 1.0), *b = frandn(C, 1.0), *y = fzero(n), *dy = frandn(n, 1.0);
        float *dx = fzero(n), *dw = fzero(C), *db = fzero(C), *m = fzero(N), *r = fzero(N);
        int Ns = 256;
        double tf = BEST(30, lk_layernorm_forward(y, m, r, x, w, b, N, C, 1e-5f));
        double tr = ONCE(lk_layernorm_forward_ref(y, m, r, x, w, b, Ns, C, 1e-5f)) * N / Ns;
        mem_row("layernorm fwd", tf, tr, Ns, N, 8.0 * n);
        tf = BEST(30, lk_layernorm_backward(dx, dw, db, dy, x, w, m, r, N, C));
        tr = ONCE(lk_layernorm_backward_ref(dx, dw, db, dy, x, w, m, r, Ns, C)) * N / Ns;
        mem_row("layernorm bwd", tf, tr, Ns, N, 16.0 * n);
        tf = BEST(30, lk_rmsnorm_forward(y, r, x, w, N, C, 1e-5f));
        tr = ONCE(lk_rmsnorm_forward_ref(y, r, x, w, Ns, C, 1e-5f)) * N / Ns;
        mem_row("rmsnorm fwd", tf, tr, Ns, N, 8.0 * n);
        tf = BEST(30, lk_rmsnorm_backward(dx, dw, dy, x, w, r, N, C));
        tr = ONCE(lk_rmsnorm_backward_ref(dx, dw, dy, x, w, r, Ns, C)) * N / Ns;
        mem_row("rmsnorm bwd", tf, tr, Ns, N, 16.0 * n);
        tf = BEST(30, lk_add(y, x, dy, n));
        mem_row("add", tf, NAN, 0, 0, 12.0 * n);
        free(x); free(w); free(b); free(y); free(dy); free(dx); free(dw); free(db); free(m); free(r);
    }

    /* embedding */
    {
        int32_t *tok = malloc((size_t)N * sizeof *tok);
        for (int i = 0; i < N; i++) tok[i] = (int32_t)rs_rng_uint(RNG, V);
        float *wte = frandn((long)V * C, 1.0), *y = fzero((long)N * C), *dwte = fzero((long)V * C);
        double tf = BEST(30, lk_embedding_forward(y, tok, wte, N, C));
        double tr = ONCE(lk_embedding_forward_ref(y, tok, wte, N, C));
        mem_row("embedding fwd", tf, tr, N, N, 8.0 * N * C);
        tf = BEST(30, lk_embedding_backward(dwte, y, tok, N, C, V));
        tr = ONCE(lk_embedding_backward_ref(dwte, y, tok, N, C, V));
        mem_row("embedding bwd", tf, tr, N, N, 12.0 * N * C);
        free(tok); free(wte); free(y); free(dwte);
    }

    /* RoPE on q and k of a fused qkv buffer, attention (MHA 8/8 and GQA 8/4) */
    for (int NKV = NH; NKV >= NH / 2; NKV /= 2) {
        int QKV = (NH + 2 * NKV) * HS, OC = NH * HS, Bs = 1;
        long nqkv = (long)N * QKV, natt = (long)B * NH * T * T;
        float *qkv = frandn(nqkv, 1.0), *out = fzero((long)N * OC), *att = fzero(natt), *datt = fzero(natt);
        float *dout = frandn((long)N * OC, 1.0), *dqkv = fzero(nqkv);
        char nm[64];
        if (NKV == NH) {
            double inv[64];
            lk_rope_inv_freq(inv, HS, 500000.0, 1, 32.0, 1.0, 4.0, 8192);
            float *ct = fzero((long)T * HS / 2), *st = fzero((long)T * HS / 2);
            lk_rope_table(ct, st, inv, T, HS);
            double bytes = 8.0 * N * (NH + NKV) * HS;
            double tf = BEST(30, lk_rope_forward(qkv, QKV, ct, st, B, T, NH + NKV, HS, HS, 0));
            double tr = ONCE(lk_rope_forward_ref(qkv, QKV, ct, st, B, T, NH + NKV, HS, HS, 0));
            mem_row("rope fwd (q,k)", tf, tr, N, N, bytes);
            tf = BEST(30, lk_rope_backward(qkv, QKV, ct, st, B, T, NH + NKV, HS, HS, 0));
            tr = ONCE(lk_rope_backward_ref(qkv, QKV, ct, st, B, T, NH + NKV, HS, HS, 0));
            mem_row("rope bwd (q,k)", tf, tr, N, N, bytes);
            free(ct); free(st);
        }
        /* causal flops: QK^T and att V over the lower triangle, 2 * 2 * T^2/2 * HS per head */
        double fl = 2.0 * B * NH * (double)T * T * HS;
        double tf = BEST(10, lk_attention_forward(out, att, qkv, B, T, NH, NKV, HS));
        double tr = ONCE(lk_attention_forward_ref(out, att, qkv, Bs, T, NH, NKV, HS)) * B / Bs;
        snprintf(nm, sizeof nm, "attention fwd NH=%d NKV=%d", NH, NKV);
        gemm_row(nm, tf, tr, Bs * T, N, fl, NAN);
        tf = BEST(10, lk_attention_backward(dqkv, datt, dout, qkv, att, B, T, NH, NKV, HS));
        tr = ONCE(lk_attention_backward_ref(dqkv, datt, dout, qkv, att, Bs, T, NH, NKV, HS)) * B / Bs;
        snprintf(nm, sizeof nm, "attention bwd NH=%d NKV=%d", NH, NKV);
        gemm_row(nm, tf, tr, Bs * T, N, 2 * fl, NAN);
        free(qkv); free(out); free(att); free(datt); free(dout); free(dqkv);
    }

    /* activations */
    {
        long n = (long)N * F;
        int Ns = 256;
        long ns = (long)Ns * F;
        float *h = frandn(2 * n, 1.5), *y = fzero(2 * n), *dy = frandn(2 * n, 1.0), *dh = fzero(2 * n);
        double tf = BEST(15, lk_swiglu_forward(y, h, N, F));
        double tr = ONCE(lk_swiglu_forward_ref(y, h, Ns, F)) * N / Ns;
        mem_row("swiglu fwd", tf, tr, Ns, N, 12.0 * n);
        tf = BEST(15, lk_swiglu_backward(dh, h, dy, N, F));
        tr = ONCE(lk_swiglu_backward_ref(dh, h, dy, Ns, F)) * N / Ns;
        mem_row("swiglu bwd", tf, tr, Ns, N, 28.0 * n);
        tf = BEST(15, lk_gelu_forward(y, h, n));
        tr = ONCE(lk_gelu_forward_ref(y, h, ns)) * N / Ns;
        mem_row("gelu fwd", tf, tr, Ns, N, 8.0 * n);
        tf = BEST(15, lk_gelu_backward(dh, h, dy, n));
        tr = ONCE(lk_gelu_backward_ref(dh, h, dy, ns)) * N / Ns;
        mem_row("gelu bwd", tf, tr, Ns, N, 16.0 * n);
        tf = BEST(15, lk_gelu_tanh_forward(y, h, n));
        tr = ONCE(lk_gelu_tanh_forward_ref(y, h, ns)) * N / Ns;
        mem_row("gelu_tanh fwd", tf, tr, Ns, N, 8.0 * n);
        tf = BEST(15, lk_gelu_tanh_backward(dh, h, dy, n));
        tr = ONCE(lk_gelu_tanh_backward_ref(dh, h, dy, ns)) * N / Ns;
        mem_row("gelu_tanh bwd", tf, tr, Ns, N, 16.0 * n);
        free(h); free(y); free(dy); free(dh);
    }

    /* cross-entropy over the vocabulary */
    {
        long n = (long)N * V;
        int Ns = 128;
        float *z = frandn(n, 2.0), *d = fzero(n), *loss = fzero(N), *lse = fzero(N);
        int32_t *tgt = malloc((size_t)N * sizeof *tgt);
        for (int i = 0; i < N; i++) tgt[i] = (int32_t)rs_rng_uint(RNG, V);
        double tf = BEST(15, lk_xent_forward(loss, lse, z, tgt, N, V));
        double tr = ONCE(lk_xent_forward_ref(loss, lse, z, tgt, Ns, V)) * N / Ns;
        mem_row("xent fwd", tf, tr, Ns, N, 4.0 * n);
        tf = BEST(15, lk_xent_backward(d, z, lse, tgt, 1.0f / N, N, V));
        tr = ONCE(lk_xent_backward_ref(d, z, lse, tgt, 1.0f / N, Ns, V)) * N / Ns;
        mem_row("xent bwd", tf, tr, Ns, N, 8.0 * n);
        free(z); free(d); free(loss); free(lse); free(tgt);
    }
    rs_rng_free(RNG);
    return 0;
}
