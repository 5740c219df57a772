/* rostesim LLM: generation scored with ROUGE (see generate.h). */
#include "llm/eval/generate.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm/io/fileio.h"
#include "llm/nn/sample.h"
#include "quant/status.h"

/* The prediction (or reference): the text's first line, trimmed. */
static void first_line(char *s)
{
    char *p = s;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    memmove(s, p, strlen(p) + 1);
    char *nl = strchr(s, '\n');
    if (nl) *nl = 0;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
}

/* One example: the completion of prompt `pp` (first line, trimmed) into *pred, the trimmed
 * reference into *ref, their ROUGE into s; gen holds max_new + 1 tokens. */
static int one_example(const llm_generate_opts *o, int max_pos, const char *pp, const char *cc, int32_t *gen,
                       char **pred, char **ref, int *truncated, rouge_scores *s)
{
    static const llm_sample_opts greedy = {0, 1.0};
    int32_t *ids = NULL;
    size_t ni = 0, tl = 0;
    int nout = 0, st;
    *pred = *ref = NULL;
    if ((st = tok_encode(o->tok, pp, strlen(pp), TOK_ADD_SPECIAL, &ids, &ni))) return st;
    size_t room = (size_t)max_pos - (size_t)o->max_new, skip = 0;
    if (ni > room) skip = ni - room; /* keep the end: it holds "TL;DR:" */
    *truncated = skip > 0;
    if (ni - skip == 0) st = RS_ERROR(RS_EINVAL, "empty prompt");
    else if (o->intq)
        st = llm_intq_generate(o->intq, ids + skip, (int)(ni - skip), o->max_new, o->eos, &greedy, NULL, gen, &nout, NULL,
                               NULL);
    else
        st = llm_generate(o->model, ids + skip, (int)(ni - skip), o->max_new, o->eos, &greedy, NULL, gen, &nout, NULL,
                          NULL);
    free(ids);
    if (st || (st = tok_decode(o->tok, gen, (size_t)nout, 1, pred, &tl))) return st;
    first_line(*pred);
    if (!(*ref = strdup(cc))) return RS_ERROR(RS_ENOMEM, "out of memory");
    first_line(*ref);
    return rouge_score(*ref, *pred, o->stem, s) ? RS_ERROR(RS_ENOMEM, "out of memory (ROUGE)") : RS_OK;
}

/* The predictions line of one example; 0, or -1 when out of memory or the write failed. */
static int write_prediction(FILE *f, long lineno, const char *pred, const char *ref, const rouge_scores *s)
{
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddNumberToObject(rec, "line", (double)lineno);
    cJSON_AddStringToObject(rec, "prediction", pred);
    cJSON_AddStringToObject(rec, "reference", ref);
    cJSON_AddNumberToObject(rec, "rougeL", round(s->rl.f * 1e6) / 1e6);
    char *js = cJSON_PrintUnformatted(rec);
    int bad = !js || fprintf(f, "%s\n", js) < 0;
    free(js);
    cJSON_Delete(rec);
    return bad ? -1 : 0;
}

int llm_eval_generate(const char *data, const char *pred_path, const llm_generate_opts *o, llm_generate_result *r)
{
    memset(r, 0, sizeof *r);
    const int max_pos = o->intq ? llm_intq_config(o->intq)->max_pos : o->model->cfg.max_pos;
    if (o->max_new < 1 || o->max_new >= max_pos)
        return RS_ERROR(RS_EINVAL, "%d new tokens per prompt: need 1 to %d (the model has %d positions)", o->max_new,
                        max_pos - 1, max_pos);
    char *b = NULL;
    int st = llm_read_file(data, LLM_READ_ANY_SIZE, &b, NULL);
    if (st) return st;
    llm_atomic a;
    if (llm_atomic_open(&a, pred_path, 0)) {
        free(b);
        return llm_atomic_error(&a);
    }
    rouge_acc acc = {0};
    long lineno = 0;
    int32_t *gen = malloc(((size_t)o->max_new + 1) * sizeof *gen);
    if (!gen) st = RS_ERROR(RS_ENOMEM, "out of memory");
    for (char *save = NULL, *l = st ? NULL : strtok_r(b, "\n", &save); l && (o->limit <= 0 || r->n < o->limit);
         l = strtok_r(NULL, "\n", &save)) {
        lineno++;
        cJSON *js = cJSON_Parse(l);
        const cJSON *pp = cJSON_GetObjectItem(js, "prompt"), *cc = cJSON_GetObjectItem(js, "completion");
        if (!cJSON_IsString(pp) || !cJSON_IsString(cc)) {
            cJSON_Delete(js);
            st = RS_ERROR(RS_EINVAL, "%s:%ld: expected {\"prompt\": string, \"completion\": string}", data, lineno);
            break;
        }
        char *pred, *ref;
        int truncated = 0;
        rouge_scores s;
        st = one_example(o, max_pos, pp->valuestring, cc->valuestring, gen, &pred, &ref, &truncated, &s);
        cJSON_Delete(js);
        if (st) st = RS_ERROR(st, "%s:%ld: %s", data, lineno, rs_last_error());
        else if (write_prediction(a.f, lineno, pred, ref, &s)) st = RS_ERROR(RS_EIO, "%s: write failed", a.tmp);
        free(pred);
        free(ref);
        if (st) break;
        rouge_acc_add(&acc, &s);
        r->ntrunc += truncated;
        r->n++;
    }
    free(gen);
    free(b);
    if (st) {
        llm_atomic_abort(&a);
        return st;
    }
    if (llm_atomic_commit(&a, 1)) return llm_atomic_error(&a);
    if (r->n == 0) return RS_ERROR(RS_EINVAL, "%s: no examples", data);
    rouge_acc_mean(&acc, &r->mean);
    return RS_OK;
}
