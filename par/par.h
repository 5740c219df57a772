/* rostesim: the one door to MPI (more than one process, possibly on several machines).
 *
 * Every other room that spreads work over processes calls these functions and never
 * includes <mpi.h>. Built with MPI (RS_HAVE_MPI, `make MPI=1`, the default where Open MPI's
 * development files are installed) they use MPI_COMM_WORLD; built without, or not launched
 * by mpirun, there is one rank and every collective is the identity, so a single-process run
 * does exactly what it did before MPI existed.
 *
 * Reductions are in a FIXED order: element i of a sum is ((x_0[i] + x_1[i]) + x_2[i]) + ...
 * in rank order, whatever algorithm MPI would have chosen, so the same ranks and inputs give
 * the same bytes on every run. Vectors are split into contiguous shards, rank r owning
 * [rs_par_shard_off(n, r), + rs_par_shard_len(n, r)); the reduce-scatter leaves each rank
 * its shard of the sum (ZeRO-1 style optimisers update only that), the all-gather rebuilds
 * the whole vector. Counts of any size (size_t) are sent in pieces MPI's int counts can hold.
 *
 * Errors: MPI's handler is set to return errors; a failed call returns RS_EIO with MPI's
 * message. A peer that dies makes mpirun end the job (Open MPI's default). Collective
 * functions must be called by every rank in the same order. Library code; never prints. */
#ifndef RS_PAR_H
#define RS_PAR_H

#include <stddef.h>
#include <stdint.h>

/* MPI_Init when the process was launched by mpirun (or another MPI launcher); otherwise one
 * rank. Returns RS_OK, or RS_ENOTSUP when launched by mpirun with several ranks in a build
 * without MPI (every rank would otherwise run the whole job and write the same files). Safe
 * to call once; rs_par_finalize ends it (both are no-ops without MPI). */
int rs_par_init(int *argc, char ***argv);
void rs_par_finalize(void);
/* Ends every rank at once (MPI_Abort); without MPI, exit(code). */
void rs_par_abort(int code);

int rs_par_built(void); /* 1 when compiled with MPI */
int rs_par_rank(void);  /* 0 when not initialised */
int rs_par_size(void);  /* 1 when not initialised */

size_t rs_par_shard_off(size_t n, int rank); /* rank's shard of n elements (contiguous, */
size_t rs_par_shard_len(size_t n, int rank); /* lengths differ by at most one)          */

int rs_par_barrier(void);

/* buf (bytes) on every rank := buf of rank root. */
int rs_par_bcast(void *buf, size_t bytes, int root);

/* Fixed-order sums of n floats / doubles (in place; every rank gets the same bytes). */
int rs_par_allreduce_f32(float *x, size_t n);
int rs_par_allreduce_f64(double *x, size_t n);

/* Reduce-scatter in fixed order: shard (rs_par_shard_len(n, rank) floats) := this rank's
 * shard of sum_r x_r. x is only read. */
int rs_par_reduce_scatter_f32(const float *x, float *shard, size_t n);
/* All-gather: x[shard of r] := rank r's x[shard of r], for every r (in place in x). */
int rs_par_allgather_f32(float *x, size_t n);

/* *out := the largest of every rank's v (e.g. a status code: when one rank failed, all see it). */
int rs_par_max_int(int v, int *out);
int rs_par_max_long(long v, long *out);

/* Every rank passes a hash of something that must be the same everywhere (options, data,
 * model shapes). RS_OK when all agree; else RS_EINVAL naming `what`, the first rank that
 * differs and both hashes. */
int rs_par_check_same(const char *what, uint64_t hash);

/* FNV-1a, 64 bits: the hash the callers of rs_par_check_same use. h0 = RS_PAR_HASH0. */
#define RS_PAR_HASH0 14695981039346656037ull
uint64_t rs_par_hash(uint64_t h, const void *p, size_t n);

#endif
