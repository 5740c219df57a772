/* rostesim LLM: post-training quantization baselines (ROSTE.md §6): RTN, GPTQ, QuaRot.
 *
 * Each method leaves the model with a QAT state (llm/quantize/qat.h) that `llm eval` and
 * `llm generate` apply exactly as for a QAT model, and llm_ptq_save writes the same folder
 * layout (HF checkpoint + rostesim_qat.json):
 *   RTN    : the quantizers of ROSTE.md §2 as they are (weights per output channel, acts per
 *            token, K/V per token per head); weights stay full precision in the model and
 *            are fake-quantized at every forward, as for QAT.
 *   GPTQ   : weights replaced by GPTQ's values (solvers/gptq.h: per layer, H = X^T X from the
 *            calibration inputs of that linear site, damping, optional act-order and
 *            groups); the grid is the one GPTQ fixed from the original W, which the per-row
 *            quantizer would not reproduce from GPTQ's output (its min/max move), so the
 *            weight quantizer is turned off (wbits 16) in the state and the saved JSON, and
 *            the real weight bits are recorded under "ptq". Activations and K/V stay RTN.
 *            Sequential by layer: layer l's inputs come from the model whose layers < l are
 *            already GPTQ-quantized; within a layer the four sites use that layer's
 *            full-precision inputs (no "true-sequential"). Calibration activations are not
 *            quantized (as QuaRot's GPTQ, which quantizes weights before activations).
 *   QuaRot : llm_rotate with R1-R4 on (random Hadamards, signs on all), then RTN or GPTQ
 *            weights; QuaRot's clips 0.9 (activations) and 0.95 (K/V) by default.
 *   SpinQuant: R1 and R2 (one per layer) learned by Cayley SGD through the fake-quantized
 *            model with STE on the calibration rows (llm/quantize/spinquant.h), R3/R4 fixed random
 *            Hadamards, then RTN or GPTQ weights. With GPTQ weights the rotations are learned
 *            with the weight quantizer off (W16 A/KV as given), GPTQ quantizing afterwards;
 *            with RTN weights, with it on. Same clips as QuaRot by default (0.9, 0.95), so that
 *            the two differ only by the learned rotations. The learned R1/R2 are merged into
 *            the saved weights, the configuration and rostesim_qat.json as QuaRot's.
 * Calibration rows: the first `calib` rows of a data set, one forward each, no padding. */
#ifndef RS_LLM_PTQ_H
#define RS_LLM_PTQ_H

#include <stdint.h>

#include "llm/train/data.h"
#include "llm/nn/model.h"
#include "llm/quantize/qat.h"
#include "llm/quantize/rotate.h"
#include "llm/quantize/spinquant.h"

typedef enum { LLM_PTQ_RTN = 0, LLM_PTQ_GPTQ = 1, LLM_PTQ_QUAROT = 2, LLM_PTQ_SPINQUANT = 3 } llm_ptq_method;
const char *llm_ptq_method_name(llm_ptq_method m); /* "rtn", "gptq", "quarot", "spinquant" */
int llm_ptq_method_parse(const char *s);           /* -1 if unknown */

typedef struct {
    llm_ptq_method method;
    llm_qat_opts q;       /* quantizers (weights: per row, or groups below with GPTQ) */
    int gptq_weights;     /* QuaRot, SpinQuant: 1 = GPTQ weights, 0 = RTN (GPTQ: always 1) */
    double damp;          /* GPTQ: fraction of mean(diag H) added to the diagonal (0.01) */
    int act_order;        /* GPTQ: columns in decreasing diag(H) */
    int group;            /* GPTQ: weight group length (0 = per output channel) */
    int block;            /* GPTQ: lazy block (128) */
    int calib;            /* calibration rows (128) */
    uint64_t rot_seed;    /* QuaRot, SpinQuant: seed of the Hadamards' random signs */
    llm_spin_opts spin;   /* SpinQuant: steps, lr, momentum, rows per step (calib and seed: the above) */
    llm_spin_report *spin_report; /* SpinQuant: optional output (loss before/after, orthogonality) */
} llm_ptq_opts;

/* Defaults of a method: W4A4KV4 asym; QuaRot, SpinQuant: aclip 0.9, kvclip 0.95, RTN weights;
 * SpinQuant: 100 steps, lr 1.5 (cosine decay), no momentum, 4 rows per step. */
void llm_ptq_opts_default(llm_ptq_opts *o, llm_ptq_method method);
int llm_ptq_opts_check(const llm_ptq_opts *o); /* RS_EINVAL naming the bad field */
int llm_ptq_uses_gptq(const llm_ptq_opts *o);

/* GPTQ's effect per layer and site: the layer-output error on the calibration inputs,
 * sum_rows (W - Q)_r H (W - Q)_r^T = ||X W^T - X Q^T||^2 (H = X^T X, undamped), for the
 * round-to-nearest weights of the same grid spec and for GPTQ's. */
typedef struct {
    double rtn[LLM_NSITES], gptq[LLM_NSITES];
    double ntok; /* calibration tokens (rows of X) */
} llm_ptq_layer_err;

/* Apply the method to a full-precision model (no QAT state). *m may be replaced (QuaRot
 * and SpinQuant untie embeddings). ds: calibration data (needed for GPTQ and SpinQuant; may be
 * NULL otherwise). rc: receives the rotation configuration (QuaRot, SpinQuant; zeroed otherwise; free with
 * llm_rot_config_free). err: n_layer entries filled for GPTQ (may be NULL). */
int llm_ptq_apply(llm_model **m, const llm_ptq_opts *o, const llm_dataset *ds, llm_rot_config *rc,
                  llm_ptq_layer_err *err);

/* One GPTQ sweep over every quantized site of *m (its QAT state's rotations used for the
 * inputs), the calibration as above; the weight quantizer is left off (bits 16). */
int llm_ptq_gptq(llm_model *m, const llm_ptq_opts *o, const llm_dataset *ds, llm_ptq_layer_err *err);

/* dir/config.json + model.safetensors + rostesim_qat.json (method = the PTQ method, plus a
 * "ptq" object: method, weights (rtn|gptq), wbits, group, damp, act_order, calib, rot_seed). */
int llm_ptq_save(const llm_model *m, const llm_rot_config *rc, const llm_ptq_opts *o, const char *dir);

/* path (gptq_errors.tsv): per layer and site the RTN and GPTQ layer-output errors of err
 * (n_layer entries) and their ratio; mean_ratio[s] receives the ratio's mean over layers.
 * RS_EIO "cannot write <path>". */
int llm_ptq_write_errors(const char *path, const llm_ptq_layer_err *err, int n_layer, double mean_ratio[LLM_NSITES]);

#endif
