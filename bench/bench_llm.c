/* rostesim bench: training throughput of the LLM engine on a Llama-style config, and the
 * achieved GFLOP/s against the machine's OpenBLAS sgemm peak.
 *
 * One iteration is what `rostesim llm sft` does per optimizer step: zero grads, forward,
 * backward (mean loss), global-norm clipping at 1.0, AdamW. Tokens are random; targets are
 * the next tokens (as HF's labels=input_ids). bench/llm_vs_torch.sh runs the same config
 * through PyTorch eager (bench/llm_torch_peer.py) side by side.
 *
 * Model FLOPs per trained token: 6 * (parameters in matrix products, LM head included)
 * + 6 * L * T * d (causal attention scores and values, forward 2 * (T/2) * d * 2, times 3
 * for backward): the count of useful work, not of what the kernels happen to compute.
 *
 * usage: bench_llm D LAYERS HEADS KV_HEADS FF VOCAB B T STEPS   (BENCH_PROFILE=1: phase breakdown) */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm/io/config.h"
#include "llm/nn/model.h"
#include "llm/nn/prof.h"
#include "llm/train/train.h"
#include "quant/rng.h"
#include "quant/status.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Best of several runs of an n x n x n sgemm with all threads: the machine's practical peak. */
static double sgemm_peak_gflops(int n)
{
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) return 0;
    for (long i = 0; i < (long)n * n; i++) a[i] = b[i] = (float)((i % 17) - 8) / 8.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    free(a), free(b), free(c);
    return 2.0 * n * n * (double)n / best / 1e9;
}

int main(int argc, char **argv)
{
    /* BENCH_PROFILE=1: time the phases of the steps too (llm/nn/prof.h; two clock reads per
     * kernel call, so the tokens/s of a profiled run are a little lower) */
    const char *pe = getenv("BENCH_PROFILE");
    int profile = pe && *pe == '1';
    if (argc != 10) {
        fprintf(stderr, "usage: %s D LAYERS HEADS KV_HEADS FF VOCAB B T STEPS\n", argv[0]);
        return 2;
    }
    int v[9];
    for (int i = 0; i < 9; i++) v[i] = atoi(argv[i + 1]);
    int d = v[0], L = v[1], H = v[2], KV = v[3], F = v[4], V = v[5], B = v[6], T = v[7], steps = v[8];

    llm_config c;
    memset(&c, 0, sizeof c);
    c.arch = LLM_LLAMA;
    c.vocab = V, c.d = d, c.n_layer = L, c.n_head = H, c.n_kv_head = KV, c.head_dim = d / H;
    c.d_ff = F, c.max_pos = T > 256 ? T : 256, c.norm_eps = 1e-6, c.act = LLM_ACT_SILU;
    c.rope_theta = 10000, c.rot_dim = d / H, c.rope_type = LLM_ROPE_DEFAULT;
    c.tied = 0, c.bos_id = c.eos_id = c.pad_id = -1;
    strcpy(c.torch_dtype, "float32");
    if (llm_config_check(&c) != RS_OK) {
        fprintf(stderr, "bench_llm: %s\n", rs_last_error());
        return 1;
    }
    rs_rng *rng = rs_rng_alloc(1, RS_STREAM_INIT);
    llm_model *m = NULL;
    if (!rng || llm_model_init_random(&m, &c, rng) != RS_OK || llm_model_alloc_grads(m) != RS_OK ||
        llm_model_reserve(m, B, T) != RS_OK) {
        fprintf(stderr, "bench_llm: %s\n", rs_last_error());
        return 1;
    }
    size_t n = m->nparams;
    float *mom = calloc(n, sizeof(float)), *vel = calloc(n, sizeof(float));
    int32_t *tok = malloc(sizeof(int32_t) * B * T), *tgt = malloc(sizeof(int32_t) * B * T);
    if (!mom || !vel || !tok || !tgt) return 1;
    rs_rng *dr = rs_rng_alloc(2, RS_STREAM_DATA);
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)rs_rng_uint(dr, (unsigned long)V);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) tgt[b * T + t] = t + 1 < T ? tok[b * T + t + 1] : -100;

    llm_adamw_hp hp = {0.9, 0.95, 1e-8, 0.1};
    float loss = 0;
    int ntok = 0;
    double t0 = 0;
    for (int s = 0; s <= steps; s++) { /* step 0 is the warm-up */
        if (s == 1) t0 = now(), llm_prof_enable(profile);
        llm_model_zero_grad(m);
        if (llm_model_forward(m, tok, tgt, B, T, &loss, &ntok) != RS_OK ||
            llm_model_backward(m, 1.0f / (float)ntok) != RS_OK) {
            fprintf(stderr, "bench_llm: %s\n", rs_last_error());
            return 1;
        }
        LLM_PROF(LLM_PH_OPTIM, llm_clip_grad(m->grads, n, 1.0);
                 llm_adamw_update(m->params, m->grads, mom, vel, n, s + 1, 1e-4, &hp));
    }
    double dt = now() - t0;
    char phases[256] = "";
    if (profile) llm_prof_report(phases, sizeof phases, dt);
    llm_prof_enable(0);
    double tps = (double)B * T * steps / dt;

    /* parameters that go through matrix products: everything but norms and the embedding
     * lookup (the untied LM head is a matrix product) */
    double nmat = (double)L * ((double)(H + 2 * KV) * (d / H) * d + (double)d * d + 3.0 * d * F) + (double)V * d;
    double flops_tok = 6.0 * nmat + 6.0 * L * (double)T * d;
    double peak = sgemm_peak_gflops(2048);
    double gf = flops_tok * tps / 1e9;
    printf("config d=%d layers=%d heads=%d/%d ff=%d vocab=%d batch=%dx%d threads=%d params=%zu openblas=%s\n", d, L, H,
           KV, F, V, B, T, omp_get_max_threads(), n, openblas_get_corename());
    printf("loss %.4f after %d steps (ln V = %.4f)\n", loss, steps + 1, __builtin_log((double)V));
    printf("tokens_per_s %.1f\n", tps);
    printf("gflops %.2f of sgemm peak %.2f (%.0f%%)\n", gf, peak, 100.0 * gf / peak);
    if (profile) printf("phases %s\n", phases);
    free(mom), free(vel), free(tok), free(tgt);
    llm_model_free(m);
    rs_rng_free(rng), rs_rng_free(dr);
    return 0;
}
