/* rostesim LLM: where a training step's time goes. Off by default; with llm_prof_enable(1)
 * the model's kernels, the QAT hooks and the caller add wall-clock seconds into one counter
 * per phase (bench/bench_llm.c and bench/bench_qat.c print the breakdown). The counters are
 * process-wide and meant for one thread of control (the OpenMP teams inside a phase are
 * timed as one); timing costs two clock reads per timed call, nothing when off. */
#ifndef RS_LLM_PROF_H
#define RS_LLM_PROF_H

#include <stddef.h>
#include <time.h>

enum {
    LLM_PH_MATMUL = 0, /* linear layers and the LM head: sgemm forward and backward (bias sums included) */
    LLM_PH_ATTN,       /* causal attention: scores, softmax, values, and their backward */
    LLM_PH_QUANT,      /* fake quantizers of weights, activations and K/V, and their STE backward */
    LLM_PH_ROT,        /* online rotations (R1 at the final norm, R2, R3, R4) and their transposes */
    LLM_PH_OPTIM,      /* gradient clipping and AdamW (timed by the caller) */
    LLM_NPH
};

extern int llm_prof_on;
extern double llm_prof_s[LLM_NPH];

void llm_prof_enable(int on);       /* on: zero the counters and start counting */
const char *llm_prof_name(int ph);  /* "matmul", "attention", "quantizers", "rotations", "optimizer" */
/* The counters as shares of `total` seconds, "matmul 61.2%, attention 9.8%, ..., other 4.1%"
 * (other = total minus the phases), into buf. */
void llm_prof_report(char *buf, size_t n, double total);

static inline double llm_prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs `stmt`, adding its wall-clock time to phase ph when profiling is on. */
#define LLM_PROF(ph, stmt)                                                                                               \
    do {                                                                                                                 \
        if (llm_prof_on) {                                                                                               \
            double llm_prof_t0_ = llm_prof_now();                                                                        \
            stmt;                                                                                                        \
            llm_prof_s[ph] += llm_prof_now() - llm_prof_t0_;                                                             \
        } else {                                                                                                         \
            stmt;                                                                                                        \
        }                                                                                                                \
    } while (0)

#endif
