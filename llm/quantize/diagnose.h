/* rostesim LLM: quantization diagnostics (`rostesim llm diagnose`, the paper's Figs. 3, 6, 7):
 * every site's weight, input and K/V quantization errors and input ranges without and with
 * rotation, and per-channel max |input| of q/k/v and down_proj in one layer. The tables are
 * written here; the CLI draws them. */
#ifndef RS_LLM_DIAGNOSE_H
#define RS_LLM_DIAGNOSE_H

#include <stdint.h>

#include "llm/nn/model.h"
#include "llm/quantize/qat.h"
#include "llm/quantize/rotate.h"
#include "llm/train/data.h"

/* m[0] and m[1], two loads of one full-precision model, get the quantizers o; m[0] no rotation,
 * m[1] every rotation R1-R4 (Hadamards with these signs and seed; llm_rotate may replace m[k]);
 * rc[k] receives each configuration (free with llm_rot_config_free). Both record per-channel
 * maxima in `layer` and run forward over the first `calib` rows of ds. */
int llm_diag_calibrate(llm_model *m[2], llm_rot_config rc[2], const llm_qat_opts *o, llm_signs signs, uint64_t seed,
                       int layer, const llm_dataset *ds, int calib);

/* fig7.tsv: per layer and site (then the K and V cache) the errors and mean ranges of `off` and
 * `on` and their relative reductions. RS_EIO "cannot write '<path>': <why>". */
int llm_diag_write_sites(const char *path, const llm_model *off, const llm_model *on);

/* fig3.tsv: per input channel of q/k/v and of down_proj, max |x| of `off` and `on`.
 * RS_EIO "cannot write '<path>'". */
int llm_diag_write_channels(const char *path, const llm_model *off, const llm_model *on);

/* fig6.tsv: the same per-channel maxima for n calibrated models, one column each, headed by
 * labels[k]. RS_EIO "cannot write '<path>': <why>", or "cannot write '<path>'" at the close. */
int llm_diag_write_runs(const char *path, llm_model *const *m, const char *const *labels, int n);

#endif
