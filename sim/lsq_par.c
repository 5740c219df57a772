/* rostesim: an lsq sweep spread over the ranks of `mpirun -np R` (par/), see sim/lsq.h.
 *
 * Point i is run by rank i mod R (lsq_sweep_owner). Points are independent and every number
 * in a point depends only on its configuration (lsq_run_point's runs are parallel over
 * OpenMP, but each run is sequential and the aggregation is in a fixed order, so neither the
 * thread count nor the rank that ran a point changes a byte). The results travel to the root
 * as bytes: the lsq_point struct itself (its scalars; the pointers in it are replaced on
 * arrival), then, per rotation present, the arrays it owns (log, per-seed finals, duplicate
 * marks). Every rank runs the same binary (the options hash of the CLI makes sure they were
 * given the same job), so the struct's layout is the same on both ends; the header's sizes
 * catch a mismatch anyway. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "par/par.h"
#include "quant/status.h"
#include "sim/lsq.h"

#define PACK_MAGIC 0x5051534cu /* "LSQP" */
#define PACK_VERSION 1u

typedef struct {
    uint32_t magic, version;
    uint64_t point_bytes, logpt_bytes, total;
} pack_head;

int lsq_sweep_owner(size_t i, int nranks) { return nranks > 1 ? (int)(i % (size_t)nranks) : 0; }

/* Bytes of the arrays rotation r of p owns (nlog log points, seeds values of each final). */
static size_t rot_arrays(const lsq_point *p, int r)
{
    const lsq_rotres *x = &p->rot[r];
    if (!x->present) return 0;
    size_t M = (size_t)p->cfg.seeds;
    return x->nlog * sizeof(lsq_logpt) + 4 * M * sizeof(double) + 2 * M * sizeof(int);
}

int lsq_point_pack(const lsq_point *p, void **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    size_t total = sizeof(pack_head) + sizeof *p;
    for (int r = 0; r < LSQ_NROT; r++) {
        const lsq_rotres *x = &p->rot[r];
        if (x->present && (!x->log || !x->final_loss || !x->final_D || !x->final_eG || !x->final_e2 || !x->dup_rot ||
                           !x->dup_seed))
            return RS_ERROR(RS_EINVAL, "lsq point to pack: rotation %s has no results", lsq_rot_name((lsq_rot)r));
        total += rot_arrays(p, r);
    }
    unsigned char *b = malloc(total);
    if (!b) return RS_ERROR(RS_ENOMEM, "out of memory packing an lsq point (%zu bytes)", total);
    pack_head h = {PACK_MAGIC, PACK_VERSION, sizeof *p, sizeof(lsq_logpt), total};
    size_t o = 0;
#define PUT(src, n)                                                                                                      \
    do {                                                                                                                 \
        memcpy(b + o, (src), (n));                                                                                       \
        o += (n);                                                                                                        \
    } while (0)
    PUT(&h, sizeof h);
    PUT(p, sizeof *p);
    size_t M = (size_t)p->cfg.seeds;
    for (int r = 0; r < LSQ_NROT; r++) {
        const lsq_rotres *x = &p->rot[r];
        if (!x->present) continue;
        PUT(x->log, x->nlog * sizeof *x->log);
        PUT(x->final_loss, M * sizeof(double));
        PUT(x->final_D, M * sizeof(double));
        PUT(x->final_eG, M * sizeof(double));
        PUT(x->final_e2, M * sizeof(double));
        PUT(x->dup_rot, M * sizeof(int));
        PUT(x->dup_seed, M * sizeof(int));
    }
#undef PUT
    *buf = b;
    *len = total;
    return RS_OK;
}

int lsq_point_unpack(const void *buf, size_t len, lsq_point *p)
{
    const unsigned char *b = buf;
    memset(p, 0, sizeof *p);
    pack_head h;
    if (len < sizeof h + sizeof *p) return RS_ERROR(RS_EINVAL, "packed lsq point: %zu bytes, too short", len);
    memcpy(&h, b, sizeof h);
    if (h.magic != PACK_MAGIC || h.version != PACK_VERSION || h.point_bytes != sizeof *p ||
        h.logpt_bytes != sizeof(lsq_logpt) || h.total != len)
        return RS_ERROR(RS_EINVAL,
                        "packed lsq point: not from this build of rostesim (magic %08x version %u, struct sizes %llu/%llu, "
                        "here %zu/%zu; every rank must run the same binary)",
                        (unsigned)h.magic, (unsigned)h.version, (unsigned long long)h.point_bytes,
                        (unsigned long long)h.logpt_bytes, sizeof *p, sizeof(lsq_logpt));
    size_t o = sizeof h;
    memcpy(p, b + o, sizeof *p);
    o += sizeof *p;
    /* the pointers came from another process: none of them is ours */
    for (int r = 0; r < LSQ_NROT; r++) {
        lsq_rotres *x = &p->rot[r];
        x->log = NULL;
        x->final_loss = x->final_D = x->final_eG = x->final_e2 = NULL;
        x->dup_rot = x->dup_seed = NULL;
        if (!x->present) x->nlog = 0;
    }
    if (p->cfg.seeds < 1) return RS_ERROR(RS_EINVAL, "packed lsq point: %d seeds", p->cfg.seeds);
    size_t need = o;
    for (int r = 0; r < LSQ_NROT; r++) {
        size_t a = rot_arrays(p, r);
        if (p->rot[r].nlog > len || a > len - need)
            return RS_ERROR(RS_EINVAL, "packed lsq point: %zu bytes, its arrays need more", len);
        need += a;
    }
    if (need != len) return RS_ERROR(RS_EINVAL, "packed lsq point: %zu bytes, its arrays %zu", len, need);
    size_t M = (size_t)p->cfg.seeds;
    int st = RS_OK;
    for (int r = 0; r < LSQ_NROT && !st; r++) {
        lsq_rotres *x = &p->rot[r];
        if (!x->present) continue;
        x->log = malloc((x->nlog ? x->nlog : 1) * sizeof *x->log);
        x->final_loss = malloc(M * sizeof(double));
        x->final_D = malloc(M * sizeof(double));
        x->final_eG = malloc(M * sizeof(double));
        x->final_e2 = malloc(M * sizeof(double));
        x->dup_rot = malloc(M * sizeof(int));
        x->dup_seed = malloc(M * sizeof(int));
        if (!x->log || !x->final_loss || !x->final_D || !x->final_eG || !x->final_e2 || !x->dup_rot || !x->dup_seed) {
            st = RS_ERROR(RS_ENOMEM, "out of memory unpacking an lsq point");
            break;
        }
#define GET(dst, n)                                                                                                      \
    do {                                                                                                                 \
        memcpy((dst), b + o, (n));                                                                                       \
        o += (n);                                                                                                        \
    } while (0)
        GET(x->log, x->nlog * sizeof *x->log);
        GET(x->final_loss, M * sizeof(double));
        GET(x->final_D, M * sizeof(double));
        GET(x->final_eG, M * sizeof(double));
        GET(x->final_e2, M * sizeof(double));
        GET(x->dup_rot, M * sizeof(int));
        GET(x->dup_seed, M * sizeof(int));
#undef GET
    }
    if (st) lsq_point_free(p);
    return st;
}

int lsq_points_gather(lsq_point *pts, size_t n, int root)
{
    const int R = rs_par_size(), me = rs_par_rank();
    if (R == 1) return RS_OK;
    int st = RS_OK;
    for (size_t i = 0; i < n; i++) {
        int owner = lsq_sweep_owner(i, R);
        if (owner == root) continue;
        void *buf = NULL;
        size_t len = 0;
        /* the owner packs; a failure still takes part in the collectives (length 0), so that
         * no rank waits for a broadcast that never comes */
        int bad = 0;
        if (me == owner && lsq_point_pack(&pts[i], &buf, &len) != RS_OK) bad = 1, len = 0;
        uint64_t len64 = len;
        if ((st = rs_par_bcast(&len64, sizeof len64, owner))) {
            free(buf);
            return st;
        }
        if (len64 == 0) {
            free(buf);
            return bad ? RS_ERROR(RS_ENOMEM, "rank %d could not pack sweep point %zu: %s", owner, i + 1, rs_last_error())
                       : RS_ERROR(RS_EIO, "rank %d could not send sweep point %zu", owner, i + 1);
        }
        /* a rank that cannot receive returns; its caller must end the job (the others wait
         * in the broadcast) */
        if (me != owner && !(buf = malloc((size_t)len64)))
            return RS_ERROR(RS_ENOMEM, "out of memory receiving sweep point %zu (%llu bytes)", i + 1,
                            (unsigned long long)len64);
        st = rs_par_bcast(buf, (size_t)len64, owner);
        if (!st && me == root) st = lsq_point_unpack(buf, (size_t)len64, &pts[i]);
        free(buf);
        if (st) return st;
    }
    return RS_OK;
}
