/* rostesim: the command line's side of data-parallel training (see cli/par_cli.h). */
#include "cli/par_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "llm/nn/model.h"
#include "llm/quantize/qat.h"
#include "par/par.h"
#include "quant/rotation.h"
#include "quant/status.h"

const char *par_cli_name(const char *cmd, char *buf, size_t n)
{
    if (rs_par_rank() == 0) return cmd;
    snprintf(buf, n, "%s (rank %d)", cmd, rs_par_rank());
    return buf;
}

int par_cli_status(const char *cmd, int st, int code)
{
    if (rs_par_size() == 1) return st ? (cli_error(cmd, "%s", rs_last_error()), code) : 0;
    int hi = 0, lo = 0;
    if (rs_par_max_int(st, &hi) || rs_par_max_int(-st, &lo)) {
        cli_error(cmd, "%s", rs_last_error());
        return 1; /* main ends every rank */
    }
    lo = -lo;
    if (hi == 0 && lo == 0) return 0;
    if (hi == lo) { /* every rank failed the same way: one message */
        if (rs_par_rank() == 0) cli_error(cmd, "%s", rs_last_error());
    } else if (st) {
        cli_error(cmd, "%s", rs_last_error());
    } else if (rs_par_rank() == 0) {
        cli_error(cmd, "another rank failed (its message is above)");
    }
    fflush(stderr);
    rs_par_finalize();
    return code;
}

static uint64_t hash_rot(uint64_t h, const rot *r)
{
    size_t v[3] = {0, 0, 0};
    if (r) v[0] = 1 + (size_t)rot_get_kind(r), v[1] = rot_dim(r), v[2] = rot_block(r);
    return rs_par_hash(h, v, sizeof v);
}

uint64_t par_cli_job_hash(const struct llm_model *m, uint64_t extra)
{
    uint64_t h = rs_par_hash(RS_PAR_HASH0, &extra, sizeof extra);
    const llm_qat *q = m->qat;
    if (!q) return h;
    const llm_qat_opts *o = &q->o;
    int iv[6] = {o->wbits, o->abits, o->kvbits, (int)o->scheme, (int)o->clipmode, (int)o->ste};
    double dv[3] = {o->wclip, o->aclip, o->kvclip};
    h = rs_par_hash(h, iv, sizeof iv);
    h = rs_par_hash(h, dv, sizeof dv);
    h = rs_par_hash(h, &q->n_layer, sizeof q->n_layer);
    h = hash_rot(h, q->r1), h = hash_rot(h, q->r2), h = hash_rot(h, q->r3), h = hash_rot(h, q->r4);
    size_t L = (size_t)q->n_layer;
    const unsigned char *fl[3] = {q->r2_on, q->r3_on, q->r4_on};
    for (int k = 0; k < 3; k++) {
        unsigned char none = 0xff;
        h = fl[k] ? rs_par_hash(h, fl[k], L) : rs_par_hash(h, &none, 1);
    }
    return h;
}

int par_cli_qat_stats_sum(struct llm_qat *q)
{
    if (rs_par_size() == 1) return RS_OK;
    const size_t per = 4 * LLM_NSITES + 3, L = (size_t)q->n_layer;
    double *buf = malloc(L * per * sizeof *buf);
    if (!buf) return RS_ERROR(RS_ENOMEM, "out of memory (error statistics)");
    for (size_t l = 0; l < L; l++) {
        llm_qat_stats *s = &q->stats[l];
        double *b = buf + l * per;
        memcpy(b, s->a_err, sizeof s->a_err);
        memcpy(b + LLM_NSITES, s->a_n, sizeof s->a_n);
        memcpy(b + 2 * LLM_NSITES, s->a_range, sizeof s->a_range);
        memcpy(b + 3 * LLM_NSITES, s->a_tok, sizeof s->a_tok);
        b[4 * LLM_NSITES] = s->k_err, b[4 * LLM_NSITES + 1] = s->v_err, b[4 * LLM_NSITES + 2] = s->kv_n;
    }
    int st = rs_par_allreduce_f64(buf, L * per);
    for (size_t l = 0; l < L && !st; l++) {
        llm_qat_stats *s = &q->stats[l];
        const double *b = buf + l * per;
        memcpy(s->a_err, b, sizeof s->a_err);
        memcpy(s->a_n, b + LLM_NSITES, sizeof s->a_n);
        memcpy(s->a_range, b + 2 * LLM_NSITES, sizeof s->a_range);
        memcpy(s->a_tok, b + 3 * LLM_NSITES, sizeof s->a_tok);
        s->k_err = b[4 * LLM_NSITES], s->v_err = b[4 * LLM_NSITES + 1], s->kv_n = b[4 * LLM_NSITES + 2];
    }
    free(buf);
    return st;
}
