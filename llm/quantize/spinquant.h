/* rostesim LLM: SpinQuant's learned rotations (Liu et al. 2024; ROSTE.md §3, §6).
 *
 * R1 (d_model, the residual stream) and R2 (head_dim, one per layer, V-out / O-in as in
 * SpinQuant) are learned by Cayley SGD on the orthogonal group (solvers/stiefel.h) through
 * the fake-quantized model with the straight-through estimator; R3 (Q/K after RoPE, online)
 * and R4 (down_proj's input, W_down R4 merged) are fixed random Hadamards, as in SpinQuant.
 *
 * Parameterisation. llm_rotate first folds the norms, unties the head and merges a random
 * Hadamard H1 (R1 of the configuration, seed `seed`) and R4; R2 is not merged. Those
 * weights are kept (`base`). The learned matrices are U1 (d x d, from I) and R2_l
 * (head_dim x head_dim, from the configuration's random Hadamard R2), double, and every
 * step the model's weights are formed from base in double:
 *   readers  W U1 (q/k/v, gate/up, LM head), the embedding E U1,
 *   writers  U1^T W and b U1 (o_proj, down_proj),
 *   V        R2_l^T W_v per kv head (bias b_v R2_l), O  W_o R2_l per head,
 * so the model's R1 is H1 U1 (the Cayley step is equivariant under a fixed left factor:
 * learning U1 from I is learning R1 from H1). The gradients of the loss w.r.t. U1 and R2_l
 * come from the model's parameter gradients of the formed weights by the chain rule, summed
 * over every tensor they touch; they are exact derivatives of the (STE) loss as a function
 * of unconstrained U1, R2_l.
 * GPT-NeoX: the final LayerNorm reads the stream through an online R1^T (llm/quantize/qat.h), a use
 * of R1 that the parameter gradients do not see and that a saved folder rebuilds as H1, so
 * R1 stays the random Hadamard there (U1 = I) and only R2 is learned.
 *
 * Loss: the model's next-token loss (mean over target tokens) on `rows` calibration rows
 * per step, taken in order and cycled over the first `calib` rows; learning rate with a
 * cosine decay to 0 over `steps`; the Cayley step is capped at 1 / ||W||_1 as SpinQuant's
 * optimizer does. At the end the model holds the learned rotations merged (the rotation
 * configuration: R1-R4 on, R2 merged), as QuaRot's. */
#ifndef RS_LLM_SPINQUANT_H
#define RS_LLM_SPINQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "llm/train/data.h"
#include "llm/nn/model.h"
#include "llm/quantize/qat.h"
#include "llm/quantize/rotate.h"

typedef struct {
    int steps;       /* Cayley steps (100) */
    double lr;       /* initial learning rate (1.5, SpinQuant's) */
    double momentum; /* Cayley SGD momentum (0) */
    int rows;        /* calibration rows per step (4) */
    int calib;       /* rows cycled over (the data's first `calib`; 128) */
    int eval_rows;   /* rows of the before/after loss (the first; 16) */
    uint64_t seed;   /* seed of the Hadamards' random signs */
    double progress; /* a "spinquant: step t/N" line on stderr every this many seconds (0: none) */
} llm_spin_opts;

void llm_spin_opts_default(llm_spin_opts *o);

/* The learning state (fields read by tests). */
typedef struct {
    llm_model *m;
    int learn_r1;     /* 0 for GPT-NeoX */
    int L;
    size_t C, HS;
    float *base;      /* m->nparams: weights with H1 and R4 merged, R2 not */
    double *u1, *g1, *m1;           /* C x C */
    double *r2, *g2, *m2;           /* L x HS x HS */
    double *wk;       /* scratch */
    size_t wk_n;
    int32_t *tgt;     /* targets of one row when the data set has none */
} llm_spin;

/* Attach the quantizers q to the full-precision *m (no QAT state; *m may be replaced: the
 * head is untied), rotate (R1 = H1 merged, R2 not, R3/R4 on) and set up U1 = I, R2 = the
 * Hadamard. rc receives the configuration (R1-R4 on, R2 merged, as at the end). */
int llm_spin_init(llm_spin **s, llm_model **m, const llm_qat_opts *q, uint64_t seed, llm_rot_config *rc);
void llm_spin_free(llm_spin *s); /* the model is not freed */
/* The model's weights from base, U1 and R2 (any matrices, orthogonal or not). */
int llm_spin_form(llm_spin *s);
/* Forms the weights, then the mean next-token loss over rows r0, r0+1, ... (nrows of them,
 * modulo `ncycle`) of ds; with grad also the gradients g1, g2 (dL/dU1, dL/dR2_l). */
int llm_spin_loss(llm_spin *s, const llm_dataset *ds, size_t r0, size_t nrows, size_t ncycle, int grad,
                  double *loss);
/* One Cayley step on U1 (when learned) and every R2_l with the current g1, g2. */
int llm_spin_step(llm_spin *s, double lr, double momentum);
/* max |R^T R - I| over U1 and every R2_l (in double, and after rounding to float). */
void llm_spin_orth(const llm_spin *s, double *err_f64, double *err_f32);

typedef struct {
    double loss0, loss1;  /* mean loss on the first eval_rows rows before / after */
    double orth_f64, orth_f32;
    int steps, learn_r1;
} llm_spin_report;

/* The whole learning: init, `steps` steps, final weights formed; the quantizers stay q. */
int llm_spinquant(llm_model **m, const llm_qat_opts *q, const llm_spin_opts *o, const llm_dataset *ds,
                  llm_rot_config *rc, llm_spin_report *rep);

#endif
