/* rostesim LLM: quantization diagnostics (`rostesim llm diagnose`, the paper's Figs. 3, 4, 6, 7):
 * every site's weight, input and K/V quantization errors and input ranges without and with
 * rotation, per-channel max |input| of q/k/v and down_proj in one layer, the same maxima of
 * trained runs' final models, and the error E of their training logs. The tables are written
 * here (each atomically: <path>.tmp renamed into place); the CLI draws them. */
#ifndef RS_LLM_DIAGNOSE_H
#define RS_LLM_DIAGNOSE_H

#include <stddef.h>
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
 * `on` and their relative reductions. */
int llm_diag_write_sites(const char *path, const llm_model *off, const llm_model *on);

/* fig3.tsv: per input channel of q/k/v and of down_proj, max |x| of `off` and `on`. */
int llm_diag_write_channels(const char *path, const llm_model *off, const llm_model *on);

/* Fig. 6's models: the final model of each run folder dirs[0..n-1], loaded with its saved
 * quantizers and rotations (a folder without them is read as full precision, quantizers off),
 * recording per-channel maxima in `layer` over the first `calib` rows of ds. m[k] receives
 * them (free each with llm_model_free; after a failure m[0..*nloaded-1] hold those loaded).
 * Each run must have the first's width and MLP width and a layer `layer`: otherwise RS_EINVAL
 * "'<dir>' is not the architecture of '<dirs[0]>' (or has no layer L)" and *mismatch = 1 (a
 * usage error, where the other failures are the loader's: "cannot load the final model of
 * '<dir>': <why>", *mismatch = 0). */
int llm_diag_load_runs(llm_model **m, const char *const *dirs, int n, int layer, const llm_dataset *ds, int calib,
                       int *nloaded, int *mismatch);

/* fig6.tsv: the same per-channel maxima for n calibrated models, one column each, headed by
 * labels[k]. */
int llm_diag_write_runs(const char *path, llm_model *const *m, const char *const *labels, int n);

/* fig4.tsv, "run step E loss" rows: the quantization error E and the training loss of every
 * step recorded in each run's train_log.jsonl (run = its index in dirs; records without a
 * numeric step and E are skipped; a record without a loss gets nan). found[k] (may be NULL)
 * is 1 when dirs[k] had a readable log, 0 when it had none (the table then has no rows of
 * that run). */
int llm_diag_write_errors(const char *path, const char *const *dirs, int n, int *found);

/* A run's label in tables and figures: the last component of its folder (trailing '/'
 * ignored; a last component "model", as in a paper cell's CELL/model, gives the one before
 * it; quotes and backslashes dropped so that gnuplot strings stay intact). */
void llm_diag_run_label(const char *dir, char *out, size_t n);

#endif
