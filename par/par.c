/* rostesim: the one door to MPI (see par/par.h). */
#include "par/par.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/status.h"

#ifdef RS_HAVE_MPI
#include <mpi.h>
#endif

static int g_init, g_rank, g_size = 1;

int rs_par_built(void)
{
#ifdef RS_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}
int rs_par_rank(void) { return g_rank; }
int rs_par_size(void) { return g_size; }

size_t rs_par_shard_len(size_t n, int rank)
{
    size_t R = (size_t)g_size, q = n / R, r = n % R;
    return q + ((size_t)rank < r);
}
size_t rs_par_shard_off(size_t n, int rank)
{
    size_t R = (size_t)g_size, q = n / R, r = n % R, k = (size_t)rank;
    return k * q + (k < r ? k : r);
}

uint64_t rs_par_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* The number of ranks a launcher announced in the environment (0: none). */
static long launcher_size(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return strtol(v, NULL, 10);
    }
    return getenv("PMIX_RANK") ? 1 : 0;
}

#ifdef RS_HAVE_MPI
/* Elements per message: MPI counts are ints, and the receive buffer of a reduce-scatter
 * holds one piece per rank. */
#define PIECE ((size_t)1 << 20)

static int mpi_fail(int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return RS_ERROR(RS_EIO, "MPI: %s failed on rank %d of %d: %s", what, g_rank, g_size, msg);
}
#define MPI_TRY(call, what)                                                                                              \
    do {                                                                                                                 \
        int mpi_rc_ = (call);                                                                                            \
        if (mpi_rc_ != MPI_SUCCESS) return mpi_fail(mpi_rc_, what);                                                      \
    } while (0)
#endif

int rs_par_init(int *argc, char ***argv)
{
    if (g_init) return RS_OK;
    long announced = launcher_size();
#ifdef RS_HAVE_MPI
    if (announced > 0) {
        int provided = 0;
        MPI_TRY(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank), "MPI_Comm_rank");
        MPI_TRY(MPI_Comm_size(MPI_COMM_WORLD, &g_size), "MPI_Comm_size");
        g_init = 1;
    }
    return RS_OK;
#else
    (void)argc, (void)argv;
    if (announced > 1)
        return RS_ERROR(RS_ENOTSUP,
                        "launched by mpirun with %ld ranks, but this rostesim was built without MPI "
                        "(install libopenmpi-dev and rebuild: make MPI=1)",
                        announced);
    return RS_OK;
#endif
}

void rs_par_finalize(void)
{
#ifdef RS_HAVE_MPI
    if (g_init) MPI_Finalize();
#endif
    g_init = 0;
    g_rank = 0;
    g_size = 1;
}

void rs_par_abort(int code)
{
#ifdef RS_HAVE_MPI
    if (g_init) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

int rs_par_barrier(void)
{
#ifdef RS_HAVE_MPI
    if (g_init) MPI_TRY(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
    return RS_OK;
}

int rs_par_bcast(void *buf, size_t bytes, int root)
{
#ifdef RS_HAVE_MPI
    if (g_size > 1)
        for (size_t o = 0; o < bytes; o += (size_t)1 << 30) {
            size_t c = bytes - o < ((size_t)1 << 30) ? bytes - o : (size_t)1 << 30;
            MPI_TRY(MPI_Bcast((char *)buf + o, (int)c, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
        }
#else
    (void)buf, (void)bytes, (void)root;
#endif
    return RS_OK;
}

#ifdef RS_HAVE_MPI
/* Elements of piece o (PIECE elements from offset o) of a shard of len elements: 0 past its end. */
static size_t piece_len(size_t len, size_t o) { return o < len ? (len - o < PIECE ? len - o : PIECE) : 0; }

/* Post a receive into rbuf (rc elements) from rank q and a send of sbuf (sc elements) to q,
 * either skipped when its count is 0; requests appended at req[*nreq]. */
static int post_pair(void *rbuf, size_t rc, const void *sbuf, size_t sc, MPI_Datatype t, int q, int tag,
                     MPI_Request *req, int *nreq)
{
    int e;
    if (rc && (e = MPI_Irecv(rbuf, (int)rc, t, q, tag, MPI_COMM_WORLD, &req[(*nreq)++])) != MPI_SUCCESS)
        return mpi_fail(e, "MPI_Irecv");
    if (sc && (e = MPI_Isend(sbuf, (int)sc, t, q, tag, MPI_COMM_WORLD, &req[(*nreq)++])) != MPI_SUCCESS)
        return mpi_fail(e, "MPI_Isend");
    return RS_OK;
}

/* d[0..c) = the R contributions summed in rank order (rank 0's first, then 1's, ...): src(q)
 * is rank q's piece. One loop per element type. */
#define SUM_IN_ORDER(T, d, c, src)                                         \
    do {                                                                   \
        for (int q_ = 0; q_ < R; q_++) {                                   \
            const T *s_ = (const T *)(src(q_));                            \
            if (q_ == 0) memcpy((d), s_, (c) * sizeof(T));                 \
            else for (size_t i_ = 0; i_ < (c); i_++) (d)[i_] += s_[i_];    \
        }                                                                  \
    } while (0)

/* Reduce-scatter of n elements of esz bytes (4: float, 8: double), fixed order. */
static int reduce_scatter(const void *x, void *shard, size_t n, size_t esz)
{
    const int R = g_size, r = g_rank;
    const size_t mylen = rs_par_shard_len(n, r), myoff = rs_par_shard_off(n, r), maxlen = rs_par_shard_len(n, 0);
    MPI_Datatype t = esz == 4 ? MPI_FLOAT : MPI_DOUBLE;
    char *tmp = malloc((size_t)R * PIECE * esz);
    MPI_Request *req = malloc(2 * (size_t)R * sizeof *req);
    if (!tmp || !req) {
        free(tmp), free(req);
        return RS_ERROR(RS_ENOMEM, "out of memory (reduce-scatter buffers, %d ranks)", R);
    }
    int rc = RS_OK;
    for (size_t o = 0; o < maxlen && !rc; o += PIECE) {
        int nreq = 0;
        const size_t c = piece_len(mylen, o);
        /* from every other rank its values of my piece; to each its piece of my values */
        for (int q = 0; q < R && !rc; q++)
            if (q != r)
                rc = post_pair(tmp + (size_t)q * PIECE * esz, c, (const char *)x + (rs_par_shard_off(n, q) + o) * esz,
                               piece_len(rs_par_shard_len(n, q), o), t, q, 71, req, &nreq);
        int e = MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
        if (!rc && e != MPI_SUCCESS) rc = mpi_fail(e, "MPI_Waitall (reduce-scatter)");
        if (rc || !c) continue;
        const char *mine = (const char *)x + (myoff + o) * esz;
#define SRC(q) ((q) == r ? mine : tmp + (size_t)(q) * PIECE * esz)
        if (esz == 4) SUM_IN_ORDER(float, (float *)shard + o, c, SRC);
        else SUM_IN_ORDER(double, (double *)shard + o, c, SRC);
#undef SRC
    }
    free(tmp);
    free(req);
    return rc;
}

static int allgather(void *x, size_t n, size_t esz)
{
    const int R = g_size, r = g_rank;
    const size_t mylen = rs_par_shard_len(n, r), maxlen = rs_par_shard_len(n, 0);
    MPI_Datatype t = esz == 4 ? MPI_FLOAT : MPI_DOUBLE;
    MPI_Request *req = malloc(2 * (size_t)R * sizeof *req);
    if (!req) return RS_ERROR(RS_ENOMEM, "out of memory (all-gather, %d ranks)", R);
    int rc = RS_OK;
    for (size_t o = 0; o < maxlen && !rc; o += PIECE) {
        int nreq = 0;
        /* from every other rank its piece of its shard; to each my piece of mine */
        for (int q = 0; q < R && !rc; q++)
            if (q != r)
                rc = post_pair((char *)x + (rs_par_shard_off(n, q) + o) * esz, piece_len(rs_par_shard_len(n, q), o),
                               (const char *)x + (rs_par_shard_off(n, r) + o) * esz, piece_len(mylen, o), t, q, 72, req,
                               &nreq);
        int e = MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
        if (!rc && e != MPI_SUCCESS) rc = mpi_fail(e, "MPI_Waitall (all-gather)");
    }
    free(req);
    return rc;
}
#endif

int rs_par_reduce_scatter_f32(const float *x, float *shard, size_t n)
{
#ifdef RS_HAVE_MPI
    if (g_size > 1) return reduce_scatter(x, shard, n, sizeof(float));
#endif
    if (shard != x) memcpy(shard, x, n * sizeof *x);
    return RS_OK;
}

int rs_par_allgather_f32(float *x, size_t n)
{
#ifdef RS_HAVE_MPI
    if (g_size > 1) return allgather(x, n, sizeof(float));
#else
    (void)x, (void)n;
#endif
    return RS_OK;
}

#ifdef RS_HAVE_MPI
static int allreduce(void *x, size_t n, size_t esz)
{
    size_t len = rs_par_shard_len(n, g_rank), off = rs_par_shard_off(n, g_rank);
    void *shard = malloc((len ? len : 1) * esz);
    if (!shard) return RS_ERROR(RS_ENOMEM, "out of memory (all-reduce of %zu values)", n);
    int rc = reduce_scatter(x, shard, n, esz);
    if (!rc) {
        memcpy((char *)x + off * esz, shard, len * esz);
        rc = allgather(x, n, esz);
    }
    free(shard);
    return rc;
}
#endif

int rs_par_allreduce_f32(float *x, size_t n)
{
#ifdef RS_HAVE_MPI
    if (g_size > 1) return allreduce(x, n, sizeof *x);
#else
    (void)x, (void)n;
#endif
    return RS_OK;
}

int rs_par_allreduce_f64(double *x, size_t n)
{
#ifdef RS_HAVE_MPI
    if (g_size > 1) return allreduce(x, n, sizeof *x);
#else
    (void)x, (void)n;
#endif
    return RS_OK;
}

int rs_par_max_int(int v, int *out)
{
    *out = v;
#ifdef RS_HAVE_MPI
    if (g_size > 1) MPI_TRY(MPI_Allreduce(&v, out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce (max)");
#endif
    return RS_OK;
}

int rs_par_max_long(long v, long *out)
{
    *out = v;
#ifdef RS_HAVE_MPI
    if (g_size > 1) MPI_TRY(MPI_Allreduce(&v, out, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce (max)");
#endif
    return RS_OK;
}

int rs_par_check_same(const char *what, uint64_t hash)
{
#ifdef RS_HAVE_MPI
    if (g_size > 1) {
        uint64_t *all = malloc((size_t)g_size * sizeof *all);
        if (!all) return RS_ERROR(RS_ENOMEM, "out of memory (hash exchange)");
        int e = MPI_Allgather(&hash, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
        if (e != MPI_SUCCESS) {
            free(all);
            return mpi_fail(e, "MPI_Allgather (hash exchange)");
        }
        for (int q = 1; q < g_size; q++)
            if (all[q] != all[0]) {
                unsigned long long h0 = all[0], hq = all[q];
                free(all);
                return RS_ERROR(RS_EINVAL,
                                "the ranks disagree on %s: rank %d has hash %016llx, rank 0 %016llx "
                                "(every rank must be given the same options and the same files)",
                                what, q, hq, h0);
            }
        free(all);
    }
#else
    (void)what, (void)hash;
#endif
    return RS_OK;
}
