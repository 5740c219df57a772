/* rostesim LLM: sampling and generation (see sample.h). */
#include "llm/nn/sample.h"

#include <math.h>
#include <stdlib.h>

#include "quant/rng.h"
#include "quant/status.h"

int llm_sampler_alloc(llm_sampler **out, int V)
{
    *out = NULL;
    if (V < 1) return RS_ERROR(RS_EINVAL, "vocabulary size %d", V);
    llm_sampler *s = calloc(1, sizeof *s);
    if (!s) return RS_ERROR(RS_ENOMEM, "out of memory (sampler)");
    s->V = V;
    s->prob = malloc((size_t)V * sizeof *s->prob);
    s->idx = malloc((size_t)V * sizeof *s->idx);
    if (!s->prob || !s->idx) {
        llm_sampler_free(s);
        return RS_ERROR(RS_ENOMEM, "out of memory (sampler)");
    }
    *out = s;
    return RS_OK;
}

void llm_sampler_free(llm_sampler *s)
{
    if (!s) return;
    free(s->prob);
    free(s->idx);
    free(s);
}

static int by_prob_desc(const void *a, const void *b, void *ctx)
{
    const double *prob = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (prob[i] > prob[j]) return -1;
    if (prob[i] < prob[j]) return 1;
    return (i > j) - (i < j);
}

int llm_sample(llm_sampler *s, const float *logits, const llm_sample_opts *o, rs_rng *rng)
{
    int V = s->V, best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (o->temperature <= 0) return best;
    double mx = logits[best], z = 0;
    for (int i = 0; i < V; i++) {
        s->prob[i] = exp(((double)logits[i] - mx) / o->temperature);
        z += s->prob[i];
    }
    for (int i = 0; i < V; i++) {
        s->prob[i] /= z;
        s->idx[i] = i;
    }
    int keep = V;
    if (o->top_p < 1.0) {
        qsort_r(s->idx, (size_t)V, sizeof *s->idx, by_prob_desc, s->prob);
        double c = 0;
        keep = 0;
        while (keep < V) {
            c += s->prob[s->idx[keep++]];
            if (c >= o->top_p) break;
        }
    }
    double mass = 0;
    for (int k = 0; k < keep; k++) mass += s->prob[s->idx[k]];
    double u = rs_rng_uniform(rng) * mass, c = 0;
    for (int k = 0; k < keep; k++) {
        c += s->prob[s->idx[k]];
        if (u < c) return s->idx[k];
    }
    return s->idx[keep - 1];
}

int llm_generate(llm_model *m, const int32_t *prompt, int n, int max_new, int eos_id, const llm_sample_opts *o,
                 rs_rng *rng, int32_t *out, int *nout, llm_token_cb cb, void *ctx)
{
    *nout = 0;
    if (n < 1) return RS_ERROR(RS_EINVAL, "generation needs a prompt of at least one token");
    if (max_new < 0) return RS_ERROR(RS_EINVAL, "max_new %d < 0", max_new);
    if ((long)n + max_new > m->cfg.max_pos)
        return RS_ERROR(RS_EINVAL, "prompt (%d tokens) + %d new tokens exceed the model's max_position_embeddings %d", n,
                        max_new, m->cfg.max_pos);
    if (o->temperature > 0 && !rng) return RS_ERROR(RS_EINVAL, "sampling needs an rng");
    for (int i = 0; i < n; i++)
        if (prompt[i] < 0 || prompt[i] >= m->cfg.vocab)
            return RS_ERROR(RS_EINVAL, "prompt token %d is outside the model's vocabulary (%d)", prompt[i], m->cfg.vocab);
    if (max_new == 0) return RS_OK;
    llm_kv *kv = NULL;
    llm_sampler *s = NULL;
    float *logits = malloc((size_t)m->cfg.vocab * sizeof *logits);
    int st = logits ? RS_OK : RS_ERROR(RS_ENOMEM, "out of memory (logits)");
    if (st == RS_OK) st = llm_kv_alloc(&kv, m, n + max_new);
    if (st == RS_OK) st = llm_sampler_alloc(&s, m->cfg.vocab);
    if (st == RS_OK) st = llm_model_decode(m, kv, prompt, n, logits);
    for (int k = 0; st == RS_OK && k < max_new; k++) {
        int32_t t = llm_sample(s, logits, o, rng);
        if (t == eos_id) break;
        out[(*nout)++] = t;
        if (cb && cb(ctx, t)) break;
        if (k + 1 < max_new) st = llm_model_decode(m, kv, &t, 1, logits);
    }
    llm_sampler_free(s);
    llm_kv_free(kv);
    free(logits);
    return st;
}
