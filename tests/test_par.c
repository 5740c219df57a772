/* par/: the MPI door. Run plainly it checks the one-rank behaviour (every collective the
 * identity, the shard arithmetic); run under mpirun (tests/mpi_test.sh, 2 and 3 ranks) it
 * checks that the fixed-order reduce-scatter / all-gather / all-reduce give exactly the sum
 * in rank order, on sizes that do not divide by the rank count and across several message
 * pieces, and that the hash exchange names a rank that differs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "par/par.h"
#include "quant/status.h"
#include "tests/check.h"

/* The value rank q contributes at element i: awkward floats whose sum depends on the order. */
static float val32(int q, size_t i) { return (float)(((i * 2654435761u + (size_t)q * 40503u) % 100003) * 1e-3) * (q % 2 ? -1.0f : 1.0f) + (float)q * 1e4f; }
static double val64(int q, size_t i) { return ((double)((i * 2654435761u + (size_t)q * 97u) % 1000003) * 1e-7 + q) * (q % 2 ? -1 : 1); }

int main(int argc, char **argv)
{
    CHECK(rs_par_init(&argc, &argv) == RS_OK, "rs_par_init: %s", rs_last_error());
    const int R = rs_par_size(), r = rs_par_rank();
    printf("ranks %d, this one %d, built with MPI: %d\n", R, r, rs_par_built());

    /* shards tile [0, n) in rank order */
    for (size_t n = 0; n < 40; n++) {
        size_t next = 0, lmin = (size_t)-1, lmax = 0;
        int ok = 1;
        for (int q = 0; q < R; q++) {
            ok &= rs_par_shard_off(n, q) == next;
            size_t l = rs_par_shard_len(n, q);
            next += l;
            lmin = l < lmin ? l : lmin, lmax = l > lmax ? l : lmax;
        }
        ok &= next == n && lmax - lmin <= 1;
        if (!ok || n == 39) CHECK(ok, "shards of n = %zu tile it, lengths within one (%d ranks)", n, R);
    }

    /* sizes: tiny, fewer elements than ranks, odd, and several 2^20-element pieces per shard */
    const size_t sizes[] = {1, 2, 7, 1000, ((size_t)1 << 21) * (size_t)R + 5};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        float *x = malloc(n * sizeof *x), *want = malloc(n * sizeof *want), *sh = malloc((n / R + 1) * sizeof *sh);
        double *y = malloc(n * sizeof *y), *wy = malloc(n * sizeof *wy);
        for (size_t i = 0; i < n; i++) {
            x[i] = val32(r, i);
            y[i] = val64(r, i);
            want[i] = val32(0, i);
            wy[i] = val64(0, i);
            for (int q = 1; q < R; q++) want[i] += val32(q, i), wy[i] += val64(q, i);
        }
        CHECK(rs_par_reduce_scatter_f32(x, sh, n) == RS_OK, "reduce-scatter n = %zu: %s", n, rs_last_error());
        size_t off = rs_par_shard_off(n, r), len = rs_par_shard_len(n, r);
        CHECK(memcmp(sh, want + off, len * sizeof *sh) == 0, "reduce-scatter n = %zu: shard [%zu, +%zu) = the sum in rank order, bit for bit", n, off, len);
        float *g = malloc(n * sizeof *g);
        for (size_t i = 0; i < n; i++) g[i] = -1;
        memcpy(g + off, sh, len * sizeof *g);
        CHECK(rs_par_allgather_f32(g, n) == RS_OK && memcmp(g, want, n * sizeof *g) == 0, "all-gather n = %zu rebuilds the whole sum", n);
        CHECK(rs_par_allreduce_f32(x, n) == RS_OK && memcmp(x, want, n * sizeof *x) == 0, "all-reduce f32 n = %zu, bit for bit", n);
        CHECK(rs_par_allreduce_f64(y, n) == RS_OK && memcmp(y, wy, n * sizeof *y) == 0, "all-reduce f64 n = %zu, bit for bit", n);
        free(x), free(want), free(sh), free(y), free(wy), free(g);
    }

    /* broadcast, max, barrier */
    char buf[64];
    snprintf(buf, sizeof buf, "from rank %d", r);
    CHECK(rs_par_bcast(buf, sizeof buf, 0) == RS_OK && strcmp(buf, "from rank 0") == 0, "bcast: '%s'", buf);
    int mx = -1;
    long ml = -1;
    CHECK(rs_par_max_int(r * 3, &mx) == RS_OK && mx == (R - 1) * 3, "max_int = %d", mx);
    CHECK(rs_par_max_long(-(long)r, &ml) == RS_OK && ml == 0, "max_long = %ld", ml);
    CHECK(rs_par_barrier() == RS_OK, "barrier");

    /* the hash exchange */
    uint64_t h = rs_par_hash(RS_PAR_HASH0, "options", 7);
    CHECK(rs_par_check_same("the options", h) == RS_OK, "equal hashes agree");
    CHECK(rs_par_hash(RS_PAR_HASH0, "", 0) == RS_PAR_HASH0 && rs_par_hash(RS_PAR_HASH0, "a", 1) == 0xaf63dc4c8601ec8cull,
          "FNV-1a 64 of \"a\" is af63dc4c8601ec8c");
    if (R > 1) {
        int st = rs_par_check_same("the data file", r == R - 1 ? h + 1 : h);
        char want_msg[80];
        snprintf(want_msg, sizeof want_msg, "rank %d has hash", R - 1);
        CHECK(st == RS_EINVAL && strstr(rs_last_error(), "the data file") && strstr(rs_last_error(), want_msg),
              "a differing rank is named: %s", rs_last_error());
    }

    char name[32];
    snprintf(name, sizeof name, R > 1 ? "test_par_np%d_r%d" : "test_par", R, r);
    int rc = check_summary(name);
    rs_par_finalize();
    return rc;
}
