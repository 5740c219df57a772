/* rostesim LLM: the rotation search, RoSTE's lower level (ROSTE.md §1, §4).
 *
 * Error terms per site, from the quantizers' statistics over n calibration rows (the
 * first n rows of a data set, in file order, one forward each, no padding):
 *   R2 at o_proj   : ||Q_w(W_o) - W_o||^2 + (1/n) sum_rows ||Q_a(X_o) - X_o||^2
 *   R4 at down_proj: the same with W_down and its input (after R4 when on)
 *   R3 at the K cache (after RoPE and R3): (1/n) sum_rows ||Q_kv(K) - K||^2
 * LLM_ERR_SUM is the paper's form (above); LLM_ERR_MEAN the authors' code: every term a
 * mean per element. The search makes two calibration passes, every R2/R3/R4 off and every
 * one on (R1 as configured), and turns a rotation on iff its own term is lower (ties:
 * identity). */
#ifndef RS_LLM_SEARCH_H
#define RS_LLM_SEARCH_H

#include <stdio.h>

#include "llm/train/data.h"
#include "llm/nn/model.h"
#include "llm/quantize/qat.h"
#include "llm/quantize/rotate.h"

typedef enum { LLM_ERR_SUM = 0, LLM_ERR_MEAN = 1 } llm_err_mode;
const char *llm_err_mode_name(llm_err_mode e); /* "sum", "mean" */

/* Per layer: error terms of R2, R3, R4 (index 0, 1, 2) without and with the rotation. */
typedef struct {
    double off[3], on[3];
} llm_search_terms;

/* Reset the statistics and forward the first n rows of ds (all when n > rows) with the
 * statistics on; *nrows gets the rows used. m->qat must exist. */
int llm_calibrate(llm_model *m, const llm_dataset *ds, int n, int *nrows);

/* The term of rotation `which` (2, 3, 4) of a layer from the current statistics. */
double llm_search_term(const llm_qat *q, int layer, int which, llm_err_mode mode, int nrows);
/* E over every site (weights and inputs of q/k/v, o, up, down; K and V) of every layer. */
double llm_search_total(const llm_qat *q, llm_err_mode mode, int nrows);

/* The search on a rotated model (llm_rotate done, rc its configuration): two calibration
 * passes, per-site choice; the model is left with the chosen configuration (rc updated).
 * terms (n_layer entries) may be NULL. */
int llm_search_select(llm_model *m, llm_rot_config *rc, const llm_dataset *ds, int n, llm_err_mode mode,
                      llm_search_terms *terms);

/* TSV: layer, rotation, error without, error with, relative reduction, chosen. */
int llm_search_write_tsv(const char *path, const llm_rot_config *rc, const llm_search_terms *terms);

#endif
