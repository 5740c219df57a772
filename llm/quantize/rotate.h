/* rostesim LLM: rotations of a model (ROSTE.md §3, SpinQuant layout).
 *
 * A rotation configuration: R1 (d_model, on the residual stream) global, and R2 (head_dim,
 * V-out / O-in), R3 (head_dim, Q and K after RoPE), R4 (d_ff, down_proj's input) per layer.
 * Each is a Hadamard matrix of its order (quant/hadamard.h), times random signs
 * (seeded: stream 16 + k of `seed` for Rk) when `signs` says so.
 *
 * llm_rotate applies a configuration to a model in its original basis:
 *   - with R1: untie tied embeddings (a new model replaces *m); fold the norms' scales into
 *     the linear layers that read them (RMSNorm: q/k/v, gate/up, LM head; GPT-NeoX
 *     LayerNorm: also absorb the mean (embeddings and every residual writer are made
 *     zero-mean) and move the shift into the q/k/v and up biases; ln1/ln2 become RMSNorm);
 *     then merge R1 in double into the embedding, every reader (W R1), every writer (R1^T W
 *     and its bias) and the LM head. GPT-NeoX's final LayerNorm is kept exact by reading
 *     x R1^T online (the model has no LM-head bias to fold its shift into);
 *   - R2: merged in double into W_v (R2^T W_v per kv head, bias b_v R2) and W_o (W_o R2);
 *     or, with rc->r2_online (the authors' training), kept out of the weights and applied
 *     on the fly to the weights the QKV and O sites compute with (m->qat->r2_on, qat.h):
 *     same forward as merged up to float rounding, gradients of the stored (unrotated)
 *     weights; llm_rotate_merge_r2 merges it (at the end of training, before saving);
 *   - R4: W_down R4 merged in double, x R4 online (m->qat->r4);
 *   - R3: online on q and k (m->qat->r3).
 * With every quantizer off the rotated model computes the same function.
 * A QAT state with 16-bit quantizers is attached first when m->qat is NULL. */
#ifndef RS_LLM_ROTATE_H
#define RS_LLM_ROTATE_H

#include <stdint.h>

#include "llm/nn/model.h"

typedef enum { LLM_SIGNS_ALL = 0, LLM_SIGNS_R1 = 1, LLM_SIGNS_NONE = 2 } llm_signs;
const char *llm_signs_name(llm_signs s); /* "all", "r1", "none" */
int llm_signs_parse(const char *s);       /* -1 if unknown */

typedef struct llm_rot_config {
    int n_layer;
    int r1;
    unsigned char *r2, *r3, *r4; /* n_layer flags each */
    int r2_online;               /* R2 applied on the fly, weights unrotated (not in the JSON:
                                  * a configuration read from JSON describes merged weights) */
    llm_signs signs;
    uint64_t seed;
} llm_rot_config;

/* Every layer the same: r2, r3, r4 in {0, 1}. */
int llm_rot_config_init(llm_rot_config *rc, int n_layer, int r1, int r2, int r3, int r4, llm_signs signs,
                        uint64_t seed);
void llm_rot_config_free(llm_rot_config *rc);
int llm_rot_config_copy(llm_rot_config *dst, const llm_rot_config *src);
int llm_rot_config_any(const llm_rot_config *rc); /* any rotation on */

int llm_rotate(llm_model **m, const llm_rot_config *rc);

/* For a model whose weights already hold the configuration (a saved rotated model): build
 * the rotation objects and the online parts only. */
int llm_rotate_attach(llm_model *m, const llm_rot_config *rc);

/* Change R2 / R3 / R4 (which = 2, 3, 4) of one layer of a rotated model to `on`, merging or
 * un-merging in double (rc is updated). The rotation objects must exist (llm_rotate made
 * them, with every kind present in the model's config or created on demand). With
 * rc->r2_online, R2 is switched without touching the weights (m->qat->r2_on). */
int llm_rotate_set(llm_model *m, llm_rot_config *rc, int layer, int which, int on);

/* Merge every online R2 into W_v / W_o (in double, as llm_rotate would have); the model
 * then computes the same function with R2 merged (rc->r2_online becomes 0). No-op when
 * nothing is online. */
int llm_rotate_merge_r2(llm_model *m, llm_rot_config *rc);

/* ---- the rotation-config JSON (the authors' layout, plus our fields) ------------------
 * {"is_rotate_R1": true, "in_block_rotation": {"0": {"is_rotate_R2": true, "is_rotate_R3":
 *  false, "is_rotate_R4": true}, ...}, "signs": "all", "seed": 42}
 * "signs" and "seed" are optional on reading (defaults: "r1" as the authors' code, seed 0). */
typedef struct cJSON cJSON;
cJSON *llm_rot_config_to_json(const llm_rot_config *rc); /* NULL if out of memory */
/* n_layer must match the model's; the message names `what` (e.g. a file name). */
int llm_rot_config_from_json(llm_rot_config *rc, const cJSON *j, int n_layer, const char *what);
int llm_rot_config_save(const llm_rot_config *rc, const char *path);
int llm_rot_config_load(llm_rot_config *rc, const char *path, int n_layer);

#endif
