/* rostesim bench: time per training step of RoSTE (W4A4KV4, R1-R4 all on: fake quantizers
 * at every linear site and the K/V cache, online R3/R4 Hadamards) against full-precision
 * SFT on the same Llama-style model (bench_llm's ~7M config by default; the ~30M one with
 * "512 7 8 8 1376 8192 8 256"). One step = zero grads, forward, backward, clip, AdamW,
 * as bench_llm. The aim is a ratio <= 1.15 (issue 14; the paper's GPU cost ratio is 1.33).
 *
 * Wall-clock and process CPU seconds per step are both reported: on a machine shared
 * with other jobs the CPU-time ratio is the steadier one (the wall clock of 2 OpenMP
 * threads spinning at barriers against foreign processes varies by 2x).
 *
 * usage: bench_qat [D LAYERS HEADS KV_HEADS FF VOCAB B T STEPS] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm/io/config.h"
#include "llm/nn/model.h"
#include "llm/nn/prof.h"
#include "llm/quantize/qat.h"
#include "llm/quantize/rotate.h"
#include "llm/train/train.h"
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

/* seconds per step of `steps` steps after one warm-up step; prof (may be NULL) gets where the
 * time of those steps went (llm/nn/prof.h) */
static double time_steps(llm_model *m, const int32_t *tok, const int32_t *tgt, int B, int T, int steps, float *loss,
                         double *cpu, char *prof, size_t nprof)
{
    size_t n = m->nparams;
    float *mom = calloc(n, sizeof(float)), *vel = calloc(n, sizeof(float));
    llm_adamw_hp hp = {0.9, 0.95, 1e-8, 0.1};
    int ntok = 0;
    double t0 = 0, c0 = 0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1) t0 = now(), c0 = cpu_now(), llm_prof_enable(prof != NULL);
        llm_model_zero_grad(m);
        if (llm_model_forward(m, tok, tgt, B, T, loss, &ntok) || llm_model_backward(m, 1.0f / (float)ntok)) {
            fprintf(stderr, "bench_qat: %s\n", rs_last_error());
            exit(1);
        }
        LLM_PROF(LLM_PH_OPTIM, llm_clip_grad(m->grads, n, 1.0);
                 llm_adamw_update(m->params, m->grads, mom, vel, n, s + 1, 1e-4, &hp));
    }
    double dt = (now() - t0) / steps;
    if (prof) llm_prof_report(prof, nprof, dt * steps);
    llm_prof_enable(0);
    *cpu = (cpu_now() - c0) / steps;
    free(mom), free(vel);
    return dt;
}

int main(int argc, char **argv)
{
    int v[9] = {256, 4, 4, 4, 688, 8192, 8, 256, 5};
    if (argc == 10)
        for (int i = 0; i < 9; i++) v[i] = atoi(argv[i + 1]);
    else if (argc != 1) {
        fprintf(stderr, "usage: %s [D LAYERS HEADS KV_HEADS FF VOCAB B T STEPS]\n", argv[0]);
        return 2;
    }
    int d = v[0], L = v[1], H = v[2], KV = v[3], F = v[4], V = v[5], B = v[6], T = v[7], steps = v[8];
    llm_config c;
    memset(&c, 0, sizeof c);
    c.arch = LLM_LLAMA;
    c.vocab = V, c.d = d, c.n_layer = L, c.n_head = H, c.n_kv_head = KV, c.head_dim = d / H;
    c.d_ff = F, c.max_pos = T > 256 ? T : 256, c.norm_eps = 1e-6, c.act = LLM_ACT_SILU;
    c.rope_theta = 10000, c.rot_dim = d / H, c.rope_type = LLM_ROPE_DEFAULT;
    c.tied = 0, c.bos_id = c.eos_id = c.pad_id = -1;
    strcpy(c.torch_dtype, "float32");
    rs_rng *rng = rs_rng_alloc(1, RS_STREAM_INIT), *dr = rs_rng_alloc(2, RS_STREAM_DATA);
    llm_model *fp = NULL, *q = NULL;
    if (llm_config_check(&c) || llm_model_init_random(&fp, &c, rng) || llm_model_alloc_grads(fp)) {
        fprintf(stderr, "bench_qat: %s\n", rs_last_error());
        return 1;
    }
    rs_rng_free(rng);
    rng = rs_rng_alloc(1, RS_STREAM_INIT);
    llm_qat_opts o;
    llm_qat_opts_default(&o); /* W4A4KV4 */
    llm_rot_config rc;
    if (llm_model_init_random(&q, &c, rng) || llm_qat_attach(q, &o) ||
        llm_rot_config_init(&rc, L, 1, 1, 1, 1, LLM_SIGNS_ALL, 1) || llm_rotate(&q, &rc) || llm_model_alloc_grads(q)) {
        fprintf(stderr, "bench_qat: %s (is %d or %d a Hadamard order?)\n", rs_last_error(), d, F);
        return 1;
    }
    int32_t *tok = malloc(sizeof(int32_t) * B * T), *tgt = malloc(sizeof(int32_t) * B * T);
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)rs_rng_uint(dr, (unsigned long)V);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) tgt[b * T + t] = t + 1 < T ? tok[b * T + t + 1] : -100;
    float l0, l1;
    double cf, cq, cf2, cq2;
    char pf[256], pq[256];
    double tf = time_steps(fp, tok, tgt, B, T, steps, &l0, &cf, NULL, 0);
    double tq = time_steps(q, tok, tgt, B, T, steps, &l1, &cq, NULL, 0);
    double tf2 = time_steps(fp, tok, tgt, B, T, steps, &l0, &cf2, NULL, 0); /* interleave: machine noise */
    double tq2 = time_steps(q, tok, tgt, B, T, steps, &l1, &cq2, NULL, 0);
    /* a third, profiled pass of each: where the time goes (timing adds two clock reads per
     * kernel call, so it is kept out of the figures above) */
    double tfp = time_steps(fp, tok, tgt, B, T, steps, &l0, &cf2, pf, sizeof pf);
    double tqp = time_steps(q, tok, tgt, B, T, steps, &l1, &cq2, pq, sizeof pq);
    tf = tf < tf2 ? tf : tf2;
    tq = tq < tq2 ? tq : tq2;
    cf = cf < cf2 ? cf : cf2;
    cq = cq < cq2 ? cq : cq2;
    printf("config d=%d layers=%d heads=%d/%d ff=%d vocab=%d batch=%dx%d threads=%d params=%zu\n", d, L, H, KV, F, V,
           B, T, omp_get_max_threads(), fp->nparams);
    printf("sft_s_per_step %.4f\nroste_w4a4kv4_s_per_step %.4f\nratio %.3f (aim <= 1.15)\n", tf, tq, tq / tf);
    printf("sft_cpu_s_per_step %.4f\nroste_w4a4kv4_cpu_s_per_step %.4f\ncpu_ratio %.3f\n", cf, cq, cq / cf);
    printf("phases_sft (%.3f s/step) %s\nphases_roste (%.3f s/step) %s\n", tfp, pf, tqp, pq);
    llm_rot_config_free(&rc);
    llm_model_free(fp);
    llm_model_free(q);
    rs_rng_free(rng), rs_rng_free(dr);
    free(tok), free(tgt);
    return 0;
}
