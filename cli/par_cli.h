/* rostesim: the command line's side of data-parallel training (`mpirun -np R rostesim llm
 * sft|qat`): who prints, how the ranks agree on a failure, and what `llm qat` adds to the
 * checks and the logged statistics. With one rank every function does what a one-process
 * run always did. */
#ifndef RS_CLI_PAR_CLI_H
#define RS_CLI_PAR_CLI_H

#include <stddef.h>
#include <stdint.h>

struct llm_model;
struct llm_qat;

/* The command's name in messages: cmd on rank 0 (and alone), "cmd (rank r)" on the others. */
const char *par_cli_name(const char *cmd, char *buf, size_t n);

/* A status every rank reached at the same point (a collective: every rank must call it
 * there). 0 when every rank has RS_OK. When every rank failed with the same status, rank 0
 * alone prints rs_last_error(); otherwise each failed rank prints its own and rank 0 says
 * another rank failed. Then (several ranks) MPI is finalized, so that the job ends without an
 * abort, and `code` is returned on every rank. One rank: prints and returns `code`. */
int par_cli_status(const char *cmd, int st, int code);

/* What every rank of `llm qat` must share beyond the training options: the quantizers, the
 * rotations (R1..R4: where they are on, their kinds and sizes) and extra, hashed (0 for a
 * model without quantizers gives a hash of extra alone). */
uint64_t par_cli_job_hash(const struct llm_model *m, uint64_t extra);

/* Several ranks: sum the activation and K/V error statistics of q over the ranks (each saw
 * its own rows; the weights' are the same everywhere and kept). Collective. */
int par_cli_qat_stats_sum(struct llm_qat *q);

#endif
