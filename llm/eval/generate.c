/* rostesim LLM: generation scored with ROUGE (see generate.h). */
#include "llm/eval/generate.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm/io/fileio.h"
#include "llm/nn/prof.h"
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

/* The stop test of a generation: the prediction is the first line of the text, so decoding
 * ends once the tokens so far decode to a text that has a newline after its leading white
 * space. A later token cannot change the text before that newline (the decode of a longer
 * token list extends the shorter one's bytes), so the prediction is the one the full
 * max_new tokens give; the rest of the line budget is not spent. */
typedef struct {
    const tok_tokenizer *tok;
    const int32_t *gen;
    int n;
} line_stop;

static int stop_at_line(void *ctx, int32_t token)
{
    (void)token;
    line_stop *ls = ctx;
    ls->n++;
    char *t = NULL;
    size_t tl = 0;
    if (tok_decode(ls->tok, ls->gen, (size_t)ls->n, 1, &t, &tl)) return 0; /* the full decode reports it */
    const char *p = t;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    int stop = strchr(p, '\n') != NULL;
    free(t);
    return stop;
}

/* One example: the completion of prompt `pp` (first line, trimmed) into *pred, the trimmed
 * reference into *ref, their ROUGE into s; gen holds max_new + 1 tokens. */
static int one_example(const llm_generate_opts *o, int max_pos, const char *pp, const char *cc, int32_t *gen,
                       char **pred, char **ref, int *truncated, rouge_scores *s, long *ntok_in, long *ntok_out)
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
    else {
        line_stop ls = {o->tok, gen, 0};
        llm_token_cb cb = o->full_length ? NULL : stop_at_line;
        if (o->intq)
            st = llm_intq_generate(o->intq, ids + skip, (int)(ni - skip), o->max_new, o->eos, &greedy, NULL, gen, &nout,
                                   cb, &ls);
        else
            st = llm_generate(o->model, ids + skip, (int)(ni - skip), o->max_new, o->eos, &greedy, NULL, gen, &nout, cb,
                              &ls);
    }
    free(ids);
    *ntok_in = (long)(ni - skip), *ntok_out = nout;
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

/* One example of the file and what became of it. */
typedef struct {
    long line;
    char *prompt, *completion; /* owned */
    char *pred, *ref;          /* set when done */
    rouge_scores s;
    int truncated;
    long nin, nout;
} example;

static void examples_free(example *ex, long n)
{
    for (long i = 0; ex && i < n; i++) free(ex[i].prompt), free(ex[i].completion), free(ex[i].pred), free(ex[i].ref);
    free(ex);
}

/* The prompt/completion lines of `data` (the first `limit`, 0: all) into *out (*n). */
static int read_examples(const char *data, long limit, example **out, long *n)
{
    *out = NULL, *n = 0;
    char *b = NULL;
    int st = llm_read_file(data, LLM_READ_ANY_SIZE, &b, NULL);
    if (st) return st;
    long cap = 0, lineno = 0;
    example *ex = NULL;
    for (char *save = NULL, *l = strtok_r(b, "\n", &save); l && (limit <= 0 || *n < limit); l = strtok_r(NULL, "\n", &save)) {
        lineno++;
        cJSON *js = cJSON_Parse(l);
        const cJSON *pp = cJSON_GetObjectItem(js, "prompt"), *cc = cJSON_GetObjectItem(js, "completion");
        if (!cJSON_IsString(pp) || !cJSON_IsString(cc)) {
            cJSON_Delete(js);
            st = RS_ERROR(RS_EINVAL, "%s:%ld: expected {\"prompt\": string, \"completion\": string}", data, lineno);
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            example *t = realloc(ex, (size_t)cap * sizeof *t);
            if (!t) {
                cJSON_Delete(js);
                st = RS_ERROR(RS_ENOMEM, "out of memory");
                break;
            }
            ex = t;
        }
        example *e = &ex[*n];
        memset(e, 0, sizeof *e);
        e->line = lineno;
        e->prompt = strdup(pp->valuestring), e->completion = strdup(cc->valuestring);
        cJSON_Delete(js);
        (*n)++;
        if (!e->prompt || !e->completion) {
            st = RS_ERROR(RS_ENOMEM, "out of memory");
            break;
        }
    }
    free(b);
    if (st) {
        examples_free(ex, *n);
        *n = 0;
        return st;
    }
    *out = ex;
    return RS_OK;
}

static void report(const llm_generate_opts *o, long done, long total, long nin, long nout, double t0, double *tlast)
{
    double t = llm_prof_now();
    if (!o->progress || (t - *tlast < o->progress && done != total)) return;
    double el = t - t0;
    fprintf(stderr, "generate: %ld/%ld prompts, %.0f prompt + %.1f new tokens/s, %.0f s, ETA %.0f s\n", done, total,
            (double)nin / el, (double)nout / el, el, done ? el / (double)done * (double)(total - done) : 0.0);
    *tlast = t;
}

/* The prediction of a finished generation, its reference and their ROUGE. */
static int finish(const llm_generate_opts *o, example *e, const int32_t *gen, int nout)
{
    size_t tl = 0;
    e->nout = nout;
    int st = tok_decode(o->tok, gen, (size_t)nout, 1, &e->pred, &tl);
    if (st) return st;
    first_line(e->pred);
    if (!(e->ref = strdup(e->completion))) return RS_ERROR(RS_ENOMEM, "out of memory");
    first_line(e->ref);
    return rouge_score(e->ref, e->pred, o->stem, &e->s) ? RS_ERROR(RS_ENOMEM, "out of memory (ROUGE)") : RS_OK;
}

/* A slot of the batched decoder: one prompt in flight. */
typedef struct {
    long ex;       /* example, -1: free */
    llm_kv *kv;
    int32_t *gen;  /* max_new + 1 */
    int nout;
} gslot;

/* Continuous batching on the fp32 model: up to o->batch prompts in flight; each is prefilled
 * alone (its prompt's products as one), then every step decodes one token of every prompt in
 * flight as one product (llm_model_decode_batch); a prompt that ends (eos, its first line
 * done, max_new tokens) leaves its slot to the next. Greedy tokens as one prompt at a time
 * gives, up to the products' rounding. */
static int generate_batched(const llm_generate_opts *o, int max_pos, example *ex, long n, double t0, long *nin_all,
                            long *nout_all)
{
    static const llm_sample_opts greedy = {0, 1.0};
    const int B = o->batch, V = o->model->cfg.vocab;
    gslot *sl = calloc((size_t)B, sizeof *sl);
    llm_kv **act = calloc((size_t)B, sizeof *act), *work = NULL;
    int *who = calloc((size_t)B, sizeof *who);
    int32_t *next = calloc((size_t)B, sizeof *next);
    float *logits = malloc((size_t)B * V * sizeof *logits);
    llm_sampler *smp = NULL;
    int st = sl && act && who && next && logits ? RS_OK : RS_ERROR(RS_ENOMEM, "out of memory");
    for (int b = 0; b < B && !st; b++) {
        sl[b].ex = -1;
        if (!(sl[b].gen = malloc(((size_t)o->max_new + 1) * sizeof *sl[b].gen))) st = RS_ERROR(RS_ENOMEM, "out of memory");
    }
    if (!st) st = llm_kv_alloc(&work, o->model, B);
    if (!st) st = llm_sampler_alloc(&smp, V);
    long todo = 0, done = 0;
    double tlast = t0;
    while (!st) {
        /* fill free slots: prefill the next prompts */
        for (int b = 0; b < B && !st && todo < n; b++) {
            if (sl[b].ex >= 0) continue;
            example *e = &ex[todo];
            int32_t *ids = NULL;
            size_t ni = 0;
            if ((st = tok_encode(o->tok, e->prompt, strlen(e->prompt), TOK_ADD_SPECIAL, &ids, &ni))) {
                st = RS_ERROR(st, "%ld: %s", e->line, rs_last_error());
                break;
            }
            size_t room = (size_t)max_pos - (size_t)o->max_new, skip = ni > room ? ni - room : 0;
            e->truncated = skip > 0, e->nin = (long)(ni - skip);
            if (ni - skip == 0) st = RS_ERROR(RS_EINVAL, "%ld: empty prompt", e->line);
            if (!st) st = llm_kv_alloc(&sl[b].kv, o->model, (int)(ni - skip) + o->max_new);
            if (!st) st = llm_model_decode(o->model, sl[b].kv, ids + skip, (int)(ni - skip), logits + (size_t)b * V);
            free(ids);
            if (st) break;
            sl[b].ex = todo++, sl[b].nout = 0;
        }
        if (st) break;
        /* one token of every prompt in flight: the ones that end leave */
        int na = 0;
        for (int b = 0; b < B && !st; b++) {
            if (sl[b].ex < 0) continue;
            example *e = &ex[sl[b].ex];
            int32_t t = llm_sample(smp, logits + (size_t)b * V, &greedy, NULL);
            int end = t == o->eos;
            if (!end) {
                sl[b].gen[sl[b].nout++] = t;
                line_stop ls = {o->tok, sl[b].gen, sl[b].nout - 1};
                end = sl[b].nout == o->max_new || (!o->full_length && stop_at_line(&ls, t));
            }
            if (!end) {
                act[na] = sl[b].kv, who[na] = b, next[na] = t, na++;
                continue;
            }
            if ((st = finish(o, e, sl[b].gen, sl[b].nout))) st = RS_ERROR(st, "%ld: %s", e->line, rs_last_error());
            llm_kv_free(sl[b].kv);
            sl[b].kv = NULL, sl[b].ex = -1;
            *nin_all += e->nin, *nout_all += e->nout;
            done++;
            report(o, done, n, *nin_all, *nout_all, t0, &tlast);
        }
        if (st || (na == 0 && todo == n)) break;
        if (na == 0) continue;
        /* logits of the decoded rows go back to their slots' rows (b >= its row in the batch) */
        float *lg = malloc((size_t)na * V * sizeof *lg);
        if (!lg) st = RS_ERROR(RS_ENOMEM, "out of memory");
        if (!st) st = llm_model_decode_batch(o->model, work, act, na, next, lg);
        for (int k = 0; k < na && !st; k++) memcpy(logits + (size_t)who[k] * V, lg + (size_t)k * V, (size_t)V * sizeof *lg);
        free(lg);
    }
    for (int b = 0; sl && b < B; b++) llm_kv_free(sl[b].kv), free(sl[b].gen);
    llm_kv_free(work);
    llm_sampler_free(smp);
    free(sl), free(act), free(who), free(next), free(logits);
    return st;
}

int llm_eval_generate(const char *data, const char *pred_path, const llm_generate_opts *o, llm_generate_result *r)
{
    memset(r, 0, sizeof *r);
    const int max_pos = o->intq ? llm_intq_config(o->intq)->max_pos : o->model->cfg.max_pos;
    if (o->max_new < 1 || o->max_new >= max_pos)
        return RS_ERROR(RS_EINVAL, "%d new tokens per prompt: need 1 to %d (the model has %d positions)", o->max_new,
                        max_pos - 1, max_pos);
    if (o->batch < 0 || o->batch > 4096) return RS_ERROR(RS_EINVAL, "batch %d outside 0..4096", o->batch);
    example *ex = NULL;
    long n = 0;
    int st = read_examples(data, o->limit, &ex, &n);
    if (st) return st;
    if (n == 0) {
        examples_free(ex, n);
        return RS_ERROR(RS_EINVAL, "%s: no examples", data);
    }
    /* the predictions' temporary file exists from here to the commit (a kill leaves it, never
     * a partial pred_path) */
    llm_atomic a;
    if (llm_atomic_open(&a, pred_path, 0)) {
        examples_free(ex, n);
        return llm_atomic_error(&a);
    }
    double t0 = llm_prof_now(), tlast = t0;
    if (!o->intq && o->batch > 1) {
        st = generate_batched(o, max_pos, ex, n, t0, &r->prompt_tokens, &r->new_tokens);
        if (st) st = RS_ERROR(st, "%s:%s", data, rs_last_error());
    } else {
        int32_t *gen = malloc(((size_t)o->max_new + 1) * sizeof *gen);
        if (!gen) st = RS_ERROR(RS_ENOMEM, "out of memory");
        for (long i = 0; i < n && !st; i++) {
            example *e = &ex[i];
            st = one_example(o, max_pos, e->prompt, e->completion, gen, &e->pred, &e->ref, &e->truncated, &e->s, &e->nin,
                             &e->nout);
            if (st) st = RS_ERROR(st, "%s:%ld: %s", data, e->line, rs_last_error());
            r->prompt_tokens += e->nin, r->new_tokens += e->nout;
            report(o, i + 1, n, r->prompt_tokens, r->new_tokens, t0, &tlast);
        }
        free(gen);
    }
    if (st) llm_atomic_abort(&a);
    else {
        rouge_acc acc = {0};
        for (long i = 0; i < n && !st; i++) {
            if (write_prediction(a.f, ex[i].line, ex[i].pred, ex[i].ref, &ex[i].s))
                st = RS_ERROR(RS_EIO, "%s: write failed", a.tmp);
            rouge_acc_add(&acc, &ex[i].s);
            r->ntrunc += ex[i].truncated;
        }
        if (st) llm_atomic_abort(&a);
        else if (llm_atomic_commit(&a, 1)) st = llm_atomic_error(&a);
        else {
            r->n = n;
            rouge_acc_mean(&acc, &r->mean);
        }
    }
    examples_free(ex, n);
    return st;
}
