/* rostesim bench: the int backend (llm/quantize/intq.h) against the fp32 fake-quant path, side by side
 * in one process on the same model: prefill tokens/s (one decode call of P tokens), decode
 * tokens/s (D tokens one at a time after the prompt), model bytes against the F16 and fp32
 * sizes, and where the int path's decode time goes (the fp32 LM head alone, timed with the
 * same sgemm call); then the same int model with the int8 embedding / LM head (--int-head q8,
 * LLM_INTQ_HEAD_Q8) beside it: tokens/s, process CPU seconds, bytes, the head alone, and how
 * far its last logits are from the fp32 head's.
 *
 * Default model: SmolLM2-135M's shapes (Llama, d 576, 30 layers, 9 heads / 3 KV heads,
 * MLP 1536, vocab 49152, tied head) with random weights, W4A4KV4 asymmetric quantizers and
 * online R3/R4 random Hadamards (R1/R2 are merged into the weights and cost nothing at
 * inference; R1 would untie the head). --model DIR takes a QAT/PTQ folder instead.
 * Each measurement is run twice, interleaved, and the faster kept (a shared machine).
 *
 * The integer GEMM of each site's shape is timed under each kernel the CPU has (VNNI on the
 * IL16 layout and on packed rows, AVX2, the portable loop) beside sgemm; --kernel pins the
 * family the whole run uses (avx512vnni runs the IL16 kernel, as the int model does).
 *
 * usage: bench_intq [--model DIR] [--prefill P] [--decode D] [--threads N] [--kernel NAME] */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm/io/config.h"
#include "llm/quantize/intq.h"
#include "llm/quantize/intq_kernels.h"
#include "llm/nn/kernels.h"
#include "llm/nn/model.h"
#include "llm/quantize/qat.h"
#include "llm/quantize/rotate.h"
#include "quant/rng.h"
#include "quant/status.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double mind(double a, double b) { return a < b ? a : b; }

static void die(const char *what)
{
    fprintf(stderr, "bench_intq: %s: %s\n", what, rs_last_error());
    exit(1);
}

/* seconds for the prefill of P tokens and for D single-token decodes after it */
/* wall seconds in tp, td; process CPU seconds in cp, cd (steadier on a shared machine) */
static void run_fake(llm_model *m, const int32_t *tok, int P, int D, float *logits, double *tp, double *td, double *cp,
                     double *cd)
{
    llm_kv *kv = NULL;
    if (llm_kv_alloc(&kv, m, P + D)) die("kv");
    double t0 = now(), c0 = cpu_now();
    if (llm_model_decode(m, kv, tok, P, logits)) die("fake prefill");
    double t1 = now(), c1 = cpu_now();
    for (int i = 0; i < D; i++)
        if (llm_model_decode(m, kv, tok + P + i, 1, logits)) die("fake decode");
    *tp = t1 - t0, *td = now() - t1, *cp = c1 - c0, *cd = cpu_now() - c1;
    llm_kv_free(kv);
}

/* ph: NULL, or 2 * LLM_INTQ_NPHASE seconds by phase (prefill, then decode) */
static void run_int(llm_intq *iq, const int32_t *tok, int P, int D, float *logits, double *tp, double *td, double *cp,
                    double *cd, double *ph)
{
    llm_intq_kv *kv = NULL;
    if (llm_intq_kv_alloc(&kv, iq, P + D)) die("int kv");
    llm_intq_kv_profile(kv, ph != NULL);
    double t0 = now(), c0 = cpu_now();
    if (llm_intq_decode(iq, kv, tok, P, logits, 0)) die("int prefill");
    double t1 = now(), c1 = cpu_now();
    if (ph) memcpy(ph, llm_intq_kv_phases(kv), LLM_INTQ_NPHASE * sizeof(double)), llm_intq_kv_profile(kv, 1);
    for (int i = 0; i < D; i++)
        if (llm_intq_decode(iq, kv, tok + P + i, 1, logits, 0)) die("int decode");
    *tp = t1 - t0, *td = now() - t1, *cp = c1 - c0, *cd = cpu_now() - c1;
    if (ph) memcpy(ph + LLM_INTQ_NPHASE, llm_intq_kv_phases(kv), LLM_INTQ_NPHASE * sizeof(double));
    llm_intq_kv_free(kv);
}

/* The integer GEMM against sgemm on one site's shape, N tokens: seconds each (best of 3).
 * ti[k] for each kernel of KNAMES the CPU has (else 0): the VNNI kernel on the IL16 layout
 * (what the int model runs with AVX-512 VNNI), the VNNI kernel on packed rows, AVX2, and the
 * portable loop (the last three pinned by iq_set_kernel). */
#define NK 4
static const char *const KNAMES[NK] = {"vnni-il16", "vnni-rows", "avx2", "ref"};
static const char *const KPIN[NK] = {"avx512vnni", "avx512vnni", "avx2", "ref"};
static void gemm_vs_sgemm(int N, int IC, int OC, int amax, double ti[NK], double *ts)
{
    int ICp = (int)iq_padded((size_t)IC);
    uint8_t *a = calloc((size_t)N * ICp, 1), *w = calloc((size_t)OC * ICp / 2, 1);
    uint8_t *wil = calloc(iq_il16_bytes(OC, ICp), 1);
    int32_t *acc = malloc((size_t)N * OC * sizeof *acc);
    float *x = calloc((size_t)N * IC, sizeof(float)), *W = calloc((size_t)OC * IC, sizeof(float));
    float *y = malloc((size_t)N * OC * sizeof(float));
    const char *keep = iq_kernel_name();
    *ts = 1e30;
    for (int k = 0; k < NK; k++) ti[k] = iq_set_kernel(KPIN[k]) ? 0 : 1e30;
    for (int r = 0; r < 3; r++) {
        for (int k = 0; k < NK; k++) {
            if (ti[k] == 0 || iq_set_kernel(KPIN[k])) continue;
            double t0 = now();
            if (k == 0) iq_gemm_u8u4_il16_vnni(acc, a, wil, N, ICp, OC);
            else iq_gemm_u8u4(acc, a, w, N, ICp, OC, amax);
            ti[k] = mind(ti[k], now() - t0);
        }
        double t1 = now();
        lk_matmul_forward(y, x, W, NULL, N, IC, OC);
        *ts = mind(*ts, now() - t1);
    }
    iq_set_kernel(keep);
    free(a), free(w), free(wil), free(acc), free(x), free(W), free(y);
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int P = 128, D = 32, threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--prefill") && i + 1 < argc) P = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--decode") && i + 1 < argc) D = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kernel") && i + 1 < argc) {
            if (iq_set_kernel(argv[++i])) return fprintf(stderr, "bench_intq: --kernel: %s\n", rs_last_error()), 2;
        } else {
            fprintf(stderr, "usage: %s [--model DIR] [--prefill P] [--decode D] [--threads N] [--kernel auto|avx512vnni|avx2|ref]\n",
                    argv[0]);
            return 2;
        }
    }
    if (P < 1 || D < 1 || threads < 1) return fprintf(stderr, "bench_intq: P, D and threads must be >= 1\n"), 2;
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    llm_model *m = NULL;
    if (dir) {
        if (llm_qat_load_model(&m, dir)) die(dir);
    } else {
        llm_config c;
        memset(&c, 0, sizeof c);
        c.arch = LLM_LLAMA;
        c.vocab = 49152, c.d = 576, c.n_layer = 30, c.n_head = 9, c.n_kv_head = 3, c.head_dim = 64;
        c.d_ff = 1536, c.max_pos = 2048, c.norm_eps = 1e-5, c.act = LLM_ACT_SILU;
        c.rope_theta = 100000, c.rot_dim = 64, c.rope_type = LLM_ROPE_DEFAULT;
        c.tied = 1, c.bos_id = c.eos_id = c.pad_id = -1;
        strcpy(c.torch_dtype, "float32");
        rs_rng *rng = rs_rng_alloc(1, RS_STREAM_INIT);
        llm_qat_opts o;
        llm_qat_opts_default(&o); /* W4A4KV4 asym */
        llm_rot_config rc;
        if (llm_config_check(&c) || llm_model_init_random(&m, &c, rng) || llm_qat_attach(m, &o) ||
            llm_rot_config_init(&rc, c.n_layer, 0, 0, 1, 1, LLM_SIGNS_ALL, 1) || llm_rotate(&m, &rc))
            die("SmolLM2-shaped model");
        llm_rot_config_free(&rc);
        rs_rng_free(rng);
    }
    const llm_config *c = &m->cfg;
    if (P + D > c->max_pos) return fprintf(stderr, "bench_intq: P + D exceeds max_pos %d\n", c->max_pos), 2;
    llm_intq *iq = NULL, *iq8 = NULL;
    if (llm_intq_build(&iq, m)) die("pack");
    if (llm_intq_build_head(&iq8, m, LLM_INTQ_HEAD_Q8)) die("pack (q8 head)");
    llm_qat_freeze(m); /* as llm eval / generate run it: Q_w(W) quantized once, not per forward */
    rs_rng *dr = rs_rng_alloc(2, RS_STREAM_DATA);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(P + D));
    for (int i = 0; i < P + D; i++) tok[i] = (int32_t)rs_rng_uint(dr, (unsigned long)c->vocab);
    float *lf = malloc((size_t)c->vocab * sizeof(float)), *li = malloc((size_t)c->vocab * sizeof(float));
    float *l8 = malloc((size_t)c->vocab * sizeof(float));
    double fp[2], fd[2], ip[2], id[2], cfp[2], cfd[2], cip[2], cid[2], ph[2][2 * LLM_INTQ_NPHASE];
    double qp[2], qd[2], cqp[2], cqd[2], ph8[2][2 * LLM_INTQ_NPHASE];
    for (int r = 0; r < 2; r++) {
        run_fake(m, tok, P, D, lf, &fp[r], &fd[r], &cfp[r], &cfd[r]);
        run_int(iq, tok, P, D, li, &ip[r], &id[r], &cip[r], &cid[r], ph[r]);
        run_int(iq8, tok, P, D, l8, &qp[r], &qd[r], &cqp[r], &cqd[r], ph8[r]);
    }
    double d8 = 0, m32 = 0;
    for (int v = 0; v < c->vocab; v++) d8 = fmax(d8, fabs((double)l8[v] - li[v])), m32 = fmax(m32, fabs((double)li[v]));
    double dmax = 0, lmax = 0, pmax = 0;
    for (int v = 0; v < c->vocab; v++) {
        double d = lf[v] - li[v];
        if (d < 0) d = -d;
        if (d > dmax) dmax = d;
        if ((lf[v] < 0 ? -lf[v] : lf[v]) > lmax) lmax = lf[v] < 0 ? -lf[v] : lf[v];
    }
    /* the fake-quant path against itself: its full forward over the same P + D tokens */
    if (llm_model_forward(m, tok, NULL, 1, P + D, NULL, NULL)) die("fake forward");
    const float *lw = m->logits + (size_t)(P + D - 1) * c->vocab;
    for (int v = 0; v < c->vocab; v++)
        if (fabs((double)lw[v] - lf[v]) > pmax) pmax = fabs((double)lw[v] - lf[v]);
    /* the LM head alone: the same sgemm on one token, D times; the int8 head likewise (one
     * token's quantization, the s8 GEMV and the scaling), interleaved, best of 3 */
    float *x = calloc((size_t)c->d, sizeof(float));
    for (int i = 0; i < c->d; i++) x[i] = (float)((i * 37) % 101 - 50);
    double th = 1e30, th8 = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        for (int i = 0; i < D; i++) lk_matmul_forward(li, x, m->w.lm_head, NULL, 1, c->d, c->vocab);
        double t1 = now();
        for (int i = 0; i < D; i++)
            if (llm_intq_head_forward(iq8, x, 1, l8)) die("q8 head");
        th = mind(th, (t1 - t0) / D), th8 = mind(th8, (now() - t1) / D);
    }
    size_t np = llm_config_nparams(c), pk = 0, f32 = 0, ib = llm_intq_bytes(iq, &pk, &f32);
    size_t pk8 = 0, f328 = 0, ib8 = llm_intq_bytes(iq8, &pk8, &f328);
    double tfp = mind(fp[0], fp[1]), tfd = mind(fd[0], fd[1]), tip = mind(ip[0], ip[1]), tid = mind(id[0], id[1]);
    printf("config %s: d=%d layers=%d heads=%d/%d ff=%d vocab=%d tied=%d, %zu params; %s; threads=%d; int kernels %s\n",
           dir ? dir : "SmolLM2-135M shapes, random weights, W4A4KV4, R3/R4 online", c->d, c->n_layer, c->n_head,
           c->n_kv_head, c->d_ff, c->vocab, c->tied, np, llm_arch_name(c->arch), threads, iq_kernel_name());
    printf("model_bytes fp32 %zu  f16 %zu  int %zu (packed %zu + fp32 %zu)  int/f16 %.3f  int/fp32 %.3f\n", 4 * np, 2 * np,
           ib, pk, f32, (double)ib / (2.0 * np), (double)ib / (4.0 * np));
    printf("prefill_%d tokens/s  fake %.1f  int %.1f  int/fake %.2fx\n", P, P / tfp, P / tip, tfp / tip);
    printf("decode_%d tokens/s   fake %.1f  int %.1f  int/fake %.2fx\n", D, D / tfd, D / tid, tfd / tid);
    double xfp = mind(cfp[0], cfp[1]), xfd = mind(cfd[0], cfd[1]), xip = mind(cip[0], cip[1]), xid = mind(cid[0], cid[1]);
    printf("cpu-time tokens/s per core-second: prefill fake %.1f int %.1f (%.2fx); decode fake %.2f int %.2f (%.2fx)\n",
           P / xfp, P / xip, xfp / xip, D / xfd, D / xid, xfd / xid);
    printf("int decode ms/token %.2f, of which the fp32 LM head (%dx%d sgemv) %.2f (%.0f%%)\n", 1e3 * tid / D, c->vocab,
           c->d, 1e3 * th, 100.0 * th / (tid / D));
    const double *pr = ip[0] <= ip[1] ? ph[0] : ph[1], *pd = (id[0] <= id[1] ? ph[0] : ph[1]) + LLM_INTQ_NPHASE;
    double sp = 0, sd = 0;
    for (int k = 0; k < LLM_INTQ_NPHASE; k++) sp += pr[k], sd += pd[k];
    printf("int time by phase (prefill %% | decode %%):");
    for (int k = 0; k < LLM_INTQ_NPHASE; k++)
        printf(" %s %.0f|%.0f", llm_intq_phase_name(k), 100 * pr[k] / sp, 100 * pd[k] / sd);
    printf("\n");
    const int OCs[4] = {(c->n_head + 2 * c->n_kv_head) * c->head_dim, c->d, 2 * c->d_ff, c->d};
    const int ICs[4] = {c->d, c->n_head * c->head_dim, c->d, c->d_ff};
    const char *nm[4] = {"qkv", "o", "up", "down"};
    const int amax = qz_qmax(&m->qat->a) - qz_qmin(&m->qat->a);
    for (int k = 0; k < 4; k++) {
        double gi[NK], gs, gi1[NK], gs1;
        gemm_vs_sgemm(P, ICs[k], OCs[k], amax, gi, &gs);
        gemm_vs_sgemm(1, ICs[k], OCs[k], amax, gi1, &gs1);
        const double op = 2e-9 * OCs[k] * ICs[k];
        printf("gemm %-4s %4dx%-4d sgemm N=%d %.2f GFLOP/s, N=1 %.2f;", nm[k], OCs[k], ICs[k], P, op * P / gs, op / gs1);
        for (int j = 0; j < NK; j++)
            if (gi[j] > 0)
                printf("  %s N=%d %.2f GOP/s (%.2fx sgemm), N=1 %.2f (%.2fx)", KNAMES[j], P, op * P / gi[j], gs / gi[j],
                       op / gi1[j], gs1 / gi1[j]);
        printf("\n");
    }
    printf("last logits: max|int - fake decode| %.3g; the fake path's own max|forward - decode| %.3g (max|logit| %.3g)\n",
           dmax, pmax, lmax);
    /* the int8 embedding / LM head beside the fp32 one */
    double tqp = mind(qp[0], qp[1]), tqd = mind(qd[0], qd[1]), xqp = mind(cqp[0], cqp[1]), xqd = mind(cqd[0], cqd[1]);
    printf("q8head model_bytes int %zu (packed + int8 head %zu + fp32 %zu)  int/f16 %.3f  (fp32 head: %zu, %.3f)\n", ib8, pk8,
           f328, (double)ib8 / (2.0 * np), ib, (double)ib / (2.0 * np));
    printf("q8head prefill_%d tokens/s  int-f32head %.1f  int-q8head %.1f  q8/f32 %.2fx\n", P, P / tip, P / tqp, tip / tqp);
    printf("q8head decode_%d tokens/s   int-f32head %.1f  int-q8head %.1f  q8/f32 %.2fx\n", D, D / tid, D / tqd, tid / tqd);
    printf("q8head cpu-time tokens/s per core-second: prefill f32head %.1f q8head %.1f (%.2fx); decode f32head %.2f q8head "
           "%.2f (%.2fx); cpu seconds decode f32head %.2f q8head %.2f\n",
           P / xip, P / xqp, xip / xqp, D / xid, D / xqd, xid / xqd, xid, xqd);
    printf("q8head decode ms/token %.2f, of which the LM head alone: fp32 sgemv %.2f ms, int8 (quantize + s8 GEMV + scale) "
           "%.2f ms -> %.2fx\n", 1e3 * tqd / D, 1e3 * th, 1e3 * th8, th / th8);
    const double *pd8 = (qd[0] <= qd[1] ? ph8[0] : ph8[1]) + LLM_INTQ_NPHASE;
    double sd8 = 0;
    for (int k = 0; k < LLM_INTQ_NPHASE; k++) sd8 += pd8[k];
    printf("q8head int time by phase (decode %%):");
    for (int k = 0; k < LLM_INTQ_NPHASE; k++) printf(" %s %.0f", llm_intq_phase_name(k), 100 * pd8[k] / sd8);
    printf("\nq8head last logits: max|q8 head - f32 head| %.3g (max|logit| %.3g)\n", d8, m32);
    free(x), free(tok), free(lf), free(li), free(l8);
    rs_rng_free(dr);
    llm_intq_free(iq), llm_intq_free(iq8);
    llm_model_free(m);
    return 0;
}
