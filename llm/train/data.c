/* rostesim LLM: SFT data (JSONL prompt/completion, plain text), see data.h. */
#include "llm/train/data.h"
#include "llm/io/fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "quant/status.h"

uint64_t llm_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Re-record the last error with a prefix (copied first: rs_error writes the same buffer). */
static int prefix_error(int st, const char *name, size_t lineno)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rs_last_error());
    if (lineno) return RS_ERROR(st, "%s:%zu: %s", name, lineno, msg);
    return RS_ERROR(st, "%s: %s", name, msg);
}

/* Offset of the first invalid UTF-8 byte in s[0..n), or n when all is valid. */
static size_t utf8_bad_offset(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) { i++; continue; }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return i;
        i += (size_t)k;
    }
    return n;
}


/* Growing arrays of the data set under construction. */
typedef struct {
    llm_dataset *ds;
    size_t cap_rows, cap_tok;
} builder;

static int add_row(builder *b, const int32_t *ids, const int32_t *tgt, size_t L, size_t line)
{
    llm_dataset *ds = b->ds;
    if (ds->n + 2 > b->cap_rows) {
        size_t c = b->cap_rows ? 2 * b->cap_rows : 256;
        size_t *o = realloc(ds->off, c * sizeof *o);
        if (!o) return RS_ERROR(RS_ENOMEM, "%s: out of memory", ds->path);
        ds->off = o;
        size_t *l = realloc(ds->line, c * sizeof *l);
        if (!l) return RS_ERROR(RS_ENOMEM, "%s: out of memory", ds->path);
        ds->line = l;
        b->cap_rows = c;
    }
    size_t at = ds->off[ds->n];
    if (at + L > b->cap_tok) {
        size_t c = b->cap_tok ? 2 * b->cap_tok : 4096;
        while (c < at + L) c *= 2;
        int32_t *a = realloc(ds->ids, c * sizeof *a);
        if (!a) return RS_ERROR(RS_ENOMEM, "%s: out of memory", ds->path);
        ds->ids = a;
        int32_t *t = realloc(ds->tgt, c * sizeof *t);
        if (!t) return RS_ERROR(RS_ENOMEM, "%s: out of memory", ds->path);
        ds->tgt = t;
        b->cap_tok = c;
    }
    memcpy(ds->ids + at, ids, L * sizeof *ids);
    memcpy(ds->tgt + at, tgt, L * sizeof *tgt);
    for (size_t t = 0; t < L; t++)
        if (tgt[t] != LLM_IGNORE) ds->ntok++;
    ds->line[ds->n] = line;
    ds->n++;
    ds->off[ds->n] = at + L;
    if ((int)L > ds->max_row) ds->max_row = (int)L;
    return RS_OK;
}

/* One JSONL line (NUL not required; s[0..n)). */
static int jsonl_line(builder *b, const char *s, size_t n, size_t lineno, const tok_tokenizer *tok,
                      const llm_data_opts *o, int32_t *row, int32_t *tgt)
{
    const char *name = b->ds->path;
    size_t bad = utf8_bad_offset(s, n);
    if (bad < n) return RS_ERROR(RS_EINVAL, "%s:%zu: invalid UTF-8 at byte %zu of the line", name, lineno, bad + 1);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (!j) {
        size_t col = end && end >= s && end <= s + n ? (size_t)(end - s) + 1 : 1;
        const char *ep = cJSON_GetErrorPtr();
        if (ep && ep >= s && ep <= s + n) col = (size_t)(ep - s) + 1;
        return RS_ERROR(RS_EINVAL, "%s:%zu: invalid JSON near column %zu", name, lineno, col);
    }
    for (const char *p = end; p < s + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r') {
            cJSON_Delete(j);
            return RS_ERROR(RS_EINVAL, "%s:%zu: text after the JSON object at column %zu (one object per line)", name,
                            lineno, (size_t)(p - s) + 1);
        }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return RS_ERROR(RS_EINVAL, "%s:%zu: expected a JSON object with \"prompt\" and \"completion\"", name, lineno);
    }
    const char *field[2] = {"prompt", "completion"};
    const char *text[2];
    for (int k = 0; k < 2; k++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(j, field[k]);
        if (!v) {
            cJSON_Delete(j);
            return RS_ERROR(RS_EINVAL, "%s:%zu: missing \"%s\" (each line needs string fields \"prompt\" and \"completion\")",
                            name, lineno, field[k]);
        }
        if (!cJSON_IsString(v) || !v->valuestring) {
            cJSON_Delete(j);
            return RS_ERROR(RS_EINVAL, "%s:%zu: \"%s\" is not a string", name, lineno, field[k]);
        }
        text[k] = v->valuestring;
        size_t tl = strlen(text[k]);
        size_t tb = utf8_bad_offset(text[k], tl);
        if (tb < tl) {
            cJSON_Delete(j);
            return RS_ERROR(RS_EINVAL, "%s:%zu: \"%s\" holds invalid UTF-8 (an escape decodes to byte %zu of the value)",
                            name, lineno, field[k], tb + 1);
        }
    }
    int32_t *pi = NULL, *ci = NULL;
    size_t np = 0, nc = 0;
    int st = tok_encode(tok, text[0], strlen(text[0]), TOK_ADD_SPECIAL, &pi, &np);
    if (st == RS_OK) st = tok_encode(tok, text[1], strlen(text[1]), 0, &ci, &nc);
    cJSON_Delete(j);
    if (st != RS_OK) {
        free(pi);
        free(ci);
        return prefix_error(st, name, lineno);
    }
    size_t full = np + nc + 1, L = full;
    llm_dataset *ds = b->ds;
    ds->nread++;
    if (L > (size_t)o->max_len) {
        L = (size_t)o->max_len;
        ds->ntrunc++;
    }
    for (size_t t = 0; t < L; t++) row[t] = t < np ? pi[t] : t < np + nc ? ci[t - np] : o->eos_id;
    free(pi);
    free(ci);
    size_t nloss = 0;
    for (size_t t = 0; t < L; t++) {
        size_t nx = t + 1;
        int in = nx < L && (o->full_loss || nx >= np);
        tgt[t] = in ? row[nx] : LLM_IGNORE;
        nloss += (size_t)in;
    }
    if (nloss == 0) {
        ds->nskip++;
        return RS_OK;
    }
    return add_row(b, row, tgt, L, lineno);
}

static int parse_jsonl(builder *b, const char *buf, size_t len, const tok_tokenizer *tok, const llm_data_opts *o)
{
    int32_t *row = malloc((size_t)o->max_len * sizeof *row), *tgt = malloc((size_t)o->max_len * sizeof *tgt);
    if (!row || !tgt) {
        free(row);
        free(tgt);
        return RS_ERROR(RS_ENOMEM, "%s: out of memory", b->ds->path);
    }
    int st = RS_OK;
    size_t lineno = 0, i = 0;
    while (i < len && st == RS_OK) {
        const char *s = buf + i;
        const char *nl = memchr(s, '\n', len - i);
        size_t n = nl ? (size_t)(nl - s) : len - i;
        i += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && s[n - 1] == '\r') n--;
        if (lineno == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) { s += 3; n -= 3; } /* BOM */
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
        if (k == n) continue; /* blank line */
        if (memchr(s, '\0', n)) {
            st = RS_ERROR(RS_EINVAL, "%s:%zu: NUL byte in the line", b->ds->path, lineno);
            break;
        }
        st = jsonl_line(b, s, n, lineno, tok, o, row, tgt);
    }
    free(row);
    free(tgt);
    return st;
}

static int parse_text(builder *b, const char *buf, size_t len, const tok_tokenizer *tok, const llm_data_opts *o)
{
    const char *name = b->ds->path;
    size_t bad = utf8_bad_offset(buf, len);
    if (bad < len) {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < bad; i++) {
            if (buf[i] == '\n') { line++; col = 1; }
            else col++;
        }
        return RS_ERROR(RS_EINVAL, "%s:%zu: invalid UTF-8 at byte %zu of the line", name, line, col);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int st = tok_encode(tok, buf, len, 0, &ids, &n);
    if (st != RS_OK) return prefix_error(st, name, 0);
    int32_t *tgt = malloc((size_t)o->max_len * sizeof *tgt);
    if (!tgt) {
        free(ids);
        return RS_ERROR(RS_ENOMEM, "%s: out of memory", name);
    }
    size_t blk = 0;
    for (size_t a = 0; a < n && st == RS_OK; a += (size_t)o->max_len) {
        size_t L = n - a < (size_t)o->max_len ? n - a : (size_t)o->max_len;
        b->ds->nread++;
        blk++;
        if (L < 2) {
            b->ds->nskip++;
            continue;
        }
        for (size_t t = 0; t < L; t++) tgt[t] = t + 1 < L ? ids[a + t + 1] : LLM_IGNORE;
        st = add_row(b, ids + a, tgt, L, blk);
    }
    free(tgt);
    free(ids);
    return st;
}

void llm_data_free(llm_dataset *ds)
{
    if (!ds) return;
    free(ds->path);
    free(ds->off);
    free(ds->line);
    free(ds->ids);
    free(ds->tgt);
    free(ds);
}

int llm_data_parse(llm_dataset **out, const char *buf, size_t len, llm_data_kind kind, const char *name,
                   const tok_tokenizer *tok, const llm_data_opts *o)
{
    *out = NULL;
    if (!name) name = "(data)";
    if (!o || o->max_len < 2) return RS_ERROR(RS_EINVAL, "%s: max_len must be >= 2", name);
    if (kind == LLM_DATA_JSONL && o->eos_id < 0)
        return RS_ERROR(RS_EINVAL, "%s: no eos token to end the completions (set eos_token_id in the model's config.json)",
                        name);
    llm_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return RS_ERROR(RS_ENOMEM, "%s: out of memory", name);
    ds->kind = kind;
    ds->path = strdup(name);
    ds->off = malloc(sizeof *ds->off);
    if (!ds->path || !ds->off) {
        llm_data_free(ds);
        return RS_ERROR(RS_ENOMEM, "%s: out of memory", name);
    }
    ds->off[0] = 0;
    builder b = {ds, 1, 0};
    int st = kind == LLM_DATA_JSONL ? parse_jsonl(&b, buf, len, tok, o) : parse_text(&b, buf, len, tok, o);
    if (st == RS_OK && ds->n == 0) {
        if (ds->nread == 0) st = RS_ERROR(RS_EINVAL, "%s: empty data set (no %s)", name, kind == LLM_DATA_JSONL ? "JSON lines" : "text");
        else
            st = RS_ERROR(RS_EINVAL,
                          "%s: empty data set: all %zu examples were skipped (nothing left in the loss after truncation "
                          "to %d tokens; raise --max-len)",
                          name, ds->nread, o->max_len);
    }
    if (st != RS_OK) {
        llm_data_free(ds);
        return st;
    }
    ds->file_hash = llm_fnv1a(LLM_FNV_INIT, buf, len);
    uint64_t h = llm_fnv1a(LLM_FNV_INIT, ds->ids, ds->off[ds->n] * sizeof *ds->ids);
    h = llm_fnv1a(h, ds->tgt, ds->off[ds->n] * sizeof *ds->tgt);
    ds->tok_hash = llm_fnv1a(h, ds->off, (ds->n + 1) * sizeof *ds->off);
    *out = ds;
    return RS_OK;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcasecmp(s + a - b, suf) == 0;
}

int llm_data_load(llm_dataset **ds, const char *path, const tok_tokenizer *tok, const llm_data_opts *o)
{
    *ds = NULL;
    llm_data_kind kind;
    if (ends_with(path, ".jsonl") || ends_with(path, ".json")) kind = LLM_DATA_JSONL;
    else if (ends_with(path, ".txt")) kind = LLM_DATA_TEXT;
    else
        return RS_ERROR(RS_EINVAL, "%s: unknown data format (use .jsonl with prompt/completion lines, or .txt plain text)",
                        path);
    char *buf;
    size_t len;
    int st = llm_read_file(path, (size_t)1 << 40, &buf, &len);
    if (st) return st;
    st = llm_data_parse(ds, buf, len, kind, path, tok, o);
    free(buf);
    return st;
}

int llm_data_check_vocab(const llm_dataset *ds, int vocab, int pad_id, const char *tok_name, const char *model_name)
{
    if (pad_id >= vocab)
        return RS_ERROR(RS_EINVAL, "pad token id %d is outside the vocabulary of model %s (%d tokens)", pad_id, model_name,
                        vocab);
    for (size_t r = 0; r < ds->n; r++)
        for (size_t t = ds->off[r]; t < ds->off[r + 1]; t++)
            if (ds->ids[t] < 0 || ds->ids[t] >= vocab)
                return RS_ERROR(RS_EINVAL,
                                "%s:%zu: token id %d from tokenizer %s is outside the vocabulary of model %s (%d tokens): "
                                "tokenizer and model do not match",
                                ds->path, ds->line[r], ds->ids[t], tok_name, model_name, vocab);
    return RS_OK;
}

void llm_data_batch(const llm_dataset *ds, const size_t *idx, int nrows, int pad_id, int32_t *tokens, int32_t *targets,
                    int *T, int *ntok)
{
    int Tm = 1, nt = 0;
    for (int b = 0; b < nrows; b++) {
        int L = (int)(ds->off[idx[b] + 1] - ds->off[idx[b]]);
        if (L > Tm) Tm = L;
    }
    for (int b = 0; b < nrows; b++) {
        size_t a = ds->off[idx[b]];
        int L = (int)(ds->off[idx[b] + 1] - a);
        for (int t = 0; t < Tm; t++) {
            tokens[(size_t)b * Tm + t] = t < L ? ds->ids[a + t] : pad_id;
            int32_t y = t < L ? ds->tgt[a + t] : LLM_IGNORE;
            targets[(size_t)b * Tm + t] = y;
            nt += y != LLM_IGNORE;
        }
    }
    *T = Tm;
    if (ntok) *ntok = nt;
}

size_t llm_data_count(const llm_dataset *ds, const size_t *idx, size_t nrows)
{
    size_t n = 0;
    for (size_t b = 0; b < nrows; b++)
        for (size_t t = ds->off[idx[b]]; t < ds->off[idx[b] + 1]; t++) n += ds->tgt[t] != LLM_IGNORE;
    return n;
}

/* tokenizer_config.json "NAME": a string or {"content": string}; NULL if absent. */
static const char *tc_token(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

int llm_special_ids(const llm_config *c, const char *model_dir, const tok_tokenizer *tok, int *eos, int *pad)
{
    *eos = c->eos_id;
    *pad = c->pad_id;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", model_dir);
    cJSON *j = NULL;
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        char *buf;
        size_t len;
        int st = llm_read_file(path, (size_t)1 << 40, &buf, &len);
        if (st) return st;
        j = cJSON_ParseWithLength(buf, len);
        free(buf);
        if (!j) return RS_ERROR(RS_EINVAL, "%s: invalid JSON", path);
    }
    const char *which[2] = {"eos_token", "pad_token"};
    int *dst[2] = {eos, pad};
    for (int k = 0; k < 2 && j; k++) {
        if (*dst[k] >= 0) continue;
        const char *s = tc_token(j, which[k]);
        if (!s) continue;
        int id = tok_token_id(tok, s);
        if (id < 0) {
            int st = RS_ERROR(RS_EINVAL, "%s: %s '%s' is not a token of %s/tokenizer.json", path, which[k], s, model_dir);
            cJSON_Delete(j);
            return st;
        }
        *dst[k] = id;
    }
    cJSON_Delete(j);
    if (*pad < 0) *pad = *eos;
    return RS_OK;
}
