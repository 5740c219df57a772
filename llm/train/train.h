/* rostesim LLM: supervised fine-tuning in fp32 (AdamW, schedules, clipping, gradient
 * accumulation, checkpoints that resume bit-identically). Library code: it never prints;
 * the caller sees every optimizer step through a callback.
 *
 * One optimizer step takes batch * grad_accum rows of the data set (micro-batches of
 * `batch` rows, each padded to its longest row); the loss is the mean over the target
 * tokens of the WHOLE step: every micro-batch's backward is weighted by 1/ntok_step. An
 * epoch is ceil(n / (batch * grad_accum)) steps; its last step takes what is left. The
 * order of the rows in epoch e is a permutation drawn from rs_rng(seed, stream
 * RS_STREAM_ORDER + (e << 32)), so (epoch, position in the epoch) alone determines
 * everything that follows.
 *
 * Semantics follow PyTorch / Hugging Face exactly:
 *   AdamW      torch.optim.AdamW (decoupled decay p -= lr*wd*p before the Adam update,
 *              bias corrections 1 - beta^t), applied to every parameter;
 *   clipping   torch.nn.utils.clip_grad_norm_: g *= max_norm / (norm + 1e-6) when that
 *              factor is below 1 (norm = global 2-norm of all gradients);
 *   schedules  get_{cosine,linear,constant}_schedule_with_warmup: the lr of step s
 *              (0-based) is lr * lambda(s), warm-up steps = ceil(ratio * total).
 *
 * Data parallel (par/par.h: launched by `mpirun -np R`, R = rs_par_size() > 1): every rank
 * holds the whole model and data set and draws the same order. A step's nrows rows form
 * nmb = ceil(nrows / batch) micro-batches (the last may be short); when nmb >= R, rank r takes
 * the whole micro-batches [rs_par_shard_off(nmb, r), + rs_par_shard_len(nmb, r)) (contiguous,
 * the first nmb % R ranks one more), so each forward has the one-process shape; when nmb < R,
 * rank r takes the rows [rs_par_shard_off(nrows, r), + rs_par_shard_len(nrows, r)) as one
 * micro-batch. A step with fewer rows than ranks is refused at start, except the short last
 * step of an epoch, where ranks without rows contribute nothing. The loss scale stays 1 /
 * (target tokens of the whole step); the gradients are summed over the ranks in rank order
 * (rs_par_allreduce_f32), and the squared norm for clipping is the fixed-order sum of the
 * squared norms of the R shards (so plain data parallel and ZeRO-1 clip with the same
 * bytes). Every rank applies the same AdamW update. With zero1, each rank keeps the AdamW
 * moments of its shard of the parameters only: the gradients are reduce-scattered, each rank
 * updates its shard, and the parameters are all-gathered; the result is the same bytes as
 * without zero1 at the same R. With R = 1 every collective is the identity and the trainer
 * does exactly what it did before MPI. */
#ifndef RS_LLM_TRAIN_H
#define RS_LLM_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "llm/train/data.h"
#include "llm/nn/model.h"

/* ---- the pieces (each tested on its own) ---------------------------------------------- */

typedef struct {
    double beta1, beta2, eps, weight_decay;
} llm_adamw_hp;

/* One AdamW update of n parameters at step t (1-based), learning rate lr. */
void llm_adamw_update(float *p, const float *g, float *m, float *v, size_t n, long t, double lr,
                      const llm_adamw_hp *hp);

typedef enum { LLM_SCHED_COSINE = 0, LLM_SCHED_LINEAR = 1, LLM_SCHED_CONSTANT = 2 } llm_sched;

long llm_warmup_steps(double ratio, long total);                       /* ceil(ratio * total) */
double llm_sched_factor(llm_sched s, long step, long warmup, long total); /* lambda(step), 0-based */
const char *llm_sched_name(llm_sched s);                                /* "cosine", ... */

/* Global 2-norm of g (accumulated in double); when max_norm > 0, scale g by
 * max_norm / (norm + 1e-6) if that is < 1. Returns the norm before clipping. */
double llm_clip_grad(float *g, size_t n, double max_norm);
/* The squared 2-norm of g as llm_clip_grad sums it (fixed chunks, in double, whatever the
 * thread count). */
double llm_grad_sumsq(const float *g, size_t n);

/* ---- the trainer ------------------------------------------------------------------------ */

typedef struct {
    double lr;           /* peak learning rate */
    int epochs;          /* passes over the data (when max_steps == 0) */
    long max_steps;      /* > 0: this many optimizer steps (the data repeats as needed) */
    int batch;           /* rows per micro-batch */
    int grad_accum;      /* micro-batches per optimizer step */
    double warmup;       /* warm-up ratio of the total steps, [0, 1] */
    llm_sched sched;
    double weight_decay; /* on every parameter */
    double clip_grad;    /* max global gradient norm; 0 = no clipping */
    double beta1, beta2, eps;
    uint64_t seed;       /* shuffle order */
    long save_every;     /* checkpoint every this many steps (0: never) */
    int max_len, full_loss; /* recorded so that a resume can check them (they shaped the data) */
    int zero1;           /* several ranks: shard the AdamW moments (ZeRO-1); no effect on one */
    uint64_t job_hash;   /* several ranks: a hash of whatever else every rank must share (the CLI
                          * passes its quantizers and rotations); checked with the options */
} llm_train_opts;

void llm_train_opts_default(llm_train_opts *o); /* lr 2e-5, 1 epoch, batch 1, cosine, ... */

typedef struct {
    long step;        /* optimizer steps done, counting this one */
    long total;
    long epoch;       /* epoch and position (rows) in it AFTER this step */
    size_t pos;
    double loss;      /* mean loss over the step's target tokens (before the update) */
    double lr;        /* learning rate used by this step */
    double grad_norm; /* global gradient norm before clipping */
    long ntok;        /* target tokens in the step */
    long ninput;      /* input positions processed (padding included) */
    int saved;        /* a checkpoint was written after this step */
} llm_train_stats;

/* Called after every optimizer step; a non-zero return stops the run (llm_trainer_run
 * then returns RS_OK with the trainer positioned after that step). */
typedef int (*llm_train_cb)(void *ctx, const llm_train_stats *s);

typedef struct llm_trainer llm_trainer;

/* The trainer borrows m and ds (they must outlive it). pad_id fills short rows.
 * Several ranks: every rank calls it (and then every function below but llm_trainer_total,
 * _step_no, _steps_per_epoch and _last) in the same order. It first checks that the ranks
 * agree on the options (and zero1 and job_hash), the data, the model's shapes and its
 * parameters (RS_EINVAL naming what differs, on every rank), then that a step has at least R
 * rows (RS_EINVAL). */
int llm_trainer_alloc(llm_trainer **tr, llm_model *m, const llm_dataset *ds, int pad_id, const llm_train_opts *o);
void llm_trainer_free(llm_trainer *tr); /* NULL is a no-op */

long llm_trainer_total(const llm_trainer *tr); /* optimizer steps of the whole run */
long llm_trainer_step_no(const llm_trainer *tr); /* steps done */
long llm_trainer_steps_per_epoch(const llm_trainer *tr);
/* Statistics of the last step done (after llm_trainer_load: of the checkpoint's step, with
 * saved = 1); NULL before the first step. */
const llm_train_stats *llm_trainer_last(const llm_trainer *tr);

/* One optimizer step (the caller saves checkpoints); st may be NULL. */
int llm_trainer_step(llm_trainer *tr, llm_train_stats *st);

/* Steps until the total, writing a checkpoint to ckpt_path every save_every steps
 * (ckpt_path may be NULL: no checkpoints). cb may be NULL; with several ranks it is called
 * on every rank and the run stops when it returns non-zero on any. A non-finite loss or gradient
 * norm stops the run with RS_ENUMERIC naming the step and, with checkpoints, the step of the
 * last one on disk (which is left as it was). */
int llm_trainer_run(llm_trainer *tr, const char *ckpt_path, llm_train_cb cb, void *ctx);

/* Checkpoint file (format in train.c): parameters, AdamW m and v, step, epoch, position,
 * hashes of the data file, of the tokenized data, of the model's shapes and the options
 * that must not change. Written to path.tmp, synced and renamed. Several ranks: rank 0
 * alone writes (with zero1 the moments are gathered to it first); every rank returns the
 * same status. The file does not depend on R or zero1. */
int llm_trainer_save(const llm_trainer *tr, const char *path);
/* Load a checkpoint written for the same model shapes, data and options; every mismatch
 * is an error saying what differs and what to do. Overwrites the model's parameters.
 * Several ranks: each reads the file (with zero1 keeping its shard of the moments); when
 * one fails, all return an error. A checkpoint written at any R, with or without zero1,
 * resumes at any R. */
int llm_trainer_load(llm_trainer *tr, const char *path);

/* ---- evaluation ------------------------------------------------------------------------- */

/* Mean loss over every target token of the data set (rows in file order, micro-batches
 * of `batch` rows); *ntok gets the token count (may be NULL). */
int llm_eval_loss(llm_model *m, const llm_dataset *ds, int batch, int pad_id, double *loss, size_t *ntok);

#endif
