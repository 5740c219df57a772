/* rostesim LLM: writing a Hugging Face tokenizer.json (see tokenizer_write.h).
 *
 * The file is written by hand, in the key order HF `tokenizers` itself uses (version,
 * truncation, padding, added_tokens, normalizer, pre_tokenizer, post_processor, decoder,
 * model), with the vocabulary in id order and merges as ["a", "b"] pairs (unambiguous even
 * for tokens holding a space). Same spec, same bytes. */
#include "llm/text/tokenizer_write.h"
#include "llm/io/fileio.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/status.h"

static const char *PAT_GPT2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char *PAT_LLAMA3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *PAT_QWEN2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const char *tok_pre_pattern(tok_pre_style s)
{
    switch (s) {
    case TOK_PRE_GPT2: return PAT_GPT2;
    case TOK_PRE_LLAMA3: return PAT_LLAMA3;
    case TOK_PRE_QWEN2: return PAT_QWEN2;
    }
    return NULL;
}

int tok_pre_style_parse(const char *name, tok_pre_style *s)
{
    static const char *names[] = {"gpt2", "llama3", "qwen2"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) { *s = (tok_pre_style)i; return 0; }
    if (!strcmp(name, "neox")) { *s = TOK_PRE_GPT2; return 0; }
    return RS_ERROR(RS_EINVAL, "pre-tokenizer \"%s\" is unknown (gpt2, neox, llama3, qwen2)", name);
}

/* ---------------------------------------------------------------- output buffer */

typedef llm_buf obuf;
static void puts_(obuf *b, const char *s) { llm_buf_put(b, s, strlen(s)); }

/* A JSON string literal; s is valid UTF-8 (checked by the caller). */
static void put_str(obuf *b, const char *s)
{
    llm_buf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8];
        if (*p == '"') llm_buf_put(b, "\\\"", 2);
        else if (*p == '\\') llm_buf_put(b, "\\\\", 2);
        else if (*p == '\n') llm_buf_put(b, "\\n", 2);
        else if (*p == '\r') llm_buf_put(b, "\\r", 2);
        else if (*p == '\t') llm_buf_put(b, "\\t", 2);
        else if (*p < 0x20 || *p == 0x7F) {
            snprintf(e, sizeof e, "\\u%04x", *p);
            llm_buf_put(b, e, 6);
        } else llm_buf_put(b, (const char *)p, 1);
    }
    llm_buf_put(b, "\"", 1);
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) { p++; continue; }
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return 0;
        p++;
        for (int i = 0; i < need; i++, p++) {
            if (*p < lo || *p > hi) return 0;
            lo = 0x80;
            hi = 0xBF;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- vocabulary lookup */

typedef struct { const char **key; size_t cap; } vset;

static uint64_t hstr(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ^ (h >> 31);
}

static const char **vset_slot(const vset *m, const char *s, size_t n)
{
    size_t mask = m->cap - 1;
    for (size_t i = hstr(s, n) & mask;; i = (i + 1) & mask)
        if (!m->key[i] || (strlen(m->key[i]) == n && !memcmp(m->key[i], s, n))) return &m->key[i];
}

/* ---------------------------------------------------------------- sections */

static void put_pretok(obuf *b, tok_pre_style pre)
{
    if (pre == TOK_PRE_GPT2) {
        puts_(b, "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true}");
        return;
    }
    puts_(b, "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":");
    put_str(b, tok_pre_pattern(pre));
    puts_(b, "},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
             "\"trim_offsets\":true,\"use_regex\":false}]}");
}

static void put_added(obuf *b, const char *content, int id, int special)
{
    char num[32];
    snprintf(num, sizeof num, "%d", id);
    puts_(b, "{\"id\":");
    puts_(b, num);
    puts_(b, ",\"content\":");
    put_str(b, content);
    puts_(b, ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":");
    puts_(b, special ? "true}" : "false}");
}

static int write_file(const char *path, const char *data, size_t n)
{
    llm_atomic a;
    if (!llm_atomic_write(&a, path, data, n, 0)) return 0;
    return RS_ERROR(RS_EIO, a.stage == LLM_ATOMIC_CREATE ? "%s: cannot create: %s" : "%s: cannot write: %s", path,
                    strerror(a.err));
}

static int build_json(const char *path, const tok_spec *s, obuf *out)
{
    if (!s || (s->nvocab && !s->vocab) || (s->nmerges && (!s->merge_a || !s->merge_b)) ||
        (s->nadded && (!s->added || !s->added_id)) || (unsigned)s->pre > TOK_PRE_QWEN2)
        return RS_ERROR(RS_EINVAL, "%s: incomplete tokenizer spec", path);
    if (s->nvocab > (1u << 24)) return RS_ERROR(RS_EINVAL, "%s: %zu tokens is too many", path, s->nvocab);
    int rc = 0;
    vset m = {NULL, 16};
    while (m.cap < 2 * s->nvocab + 2) m.cap *= 2;
    m.key = calloc(m.cap, sizeof(*m.key));
    char *cat = NULL;
    size_t catcap = 0;
    obuf b = {0};
    if (!m.key) { rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", path); goto done; }
    for (size_t i = 0; i < s->nvocab; i++) {
        const char *v = s->vocab[i];
        if (!v || !*v) { rc = RS_ERROR(RS_EINVAL, "%s: vocab[%zu] is empty", path, i); goto done; }
        if (!utf8_valid(v)) { rc = RS_ERROR(RS_EINVAL, "%s: vocab[%zu] is not valid UTF-8", path, i); goto done; }
        const char **e = vset_slot(&m, v, strlen(v));
        if (*e) {
            rc = RS_ERROR(RS_EINVAL, "%s: vocab[%zu] \"%s\" repeats an earlier token", path, i, v);
            goto done;
        }
        *e = v;
    }
    for (size_t r = 0; r < s->nmerges; r++) {
        const char *a = s->merge_a[r], *c = s->merge_b[r];
        if (!a || !c || !*vset_slot(&m, a, strlen(a)) || !*vset_slot(&m, c, strlen(c))) {
            rc = RS_ERROR(RS_EINVAL, "%s: merge %zu: \"%s\" is not in the vocabulary", path, r,
                          !a ? "(null)" : !*vset_slot(&m, a, strlen(a)) ? a : c ? c : "(null)");
            goto done;
        }
        size_t la = strlen(a), lc = strlen(c);
        if (la + lc + 1 > catcap) {
            catcap = 2 * (la + lc + 1);
            char *p = realloc(cat, catcap);
            if (!p) { rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", path); goto done; }
            cat = p;
        }
        memcpy(cat, a, la);
        memcpy(cat + la, c, lc + 1);
        if (!*vset_slot(&m, cat, la + lc)) {
            rc = RS_ERROR(RS_EINVAL, "%s: merge %zu: result \"%s\" is not in the vocabulary", path, r, cat);
            goto done;
        }
    }
    int bos_found = !s->bos_prepend;
    int bos_id = -1;
    for (size_t i = 0; i < s->nadded; i++) {
        const char *a = s->added[i];
        int id = s->added_id[i];
        if (!a || !*a || !utf8_valid(a)) {
            rc = RS_ERROR(RS_EINVAL, "%s: added token %zu is empty or not valid UTF-8", path, i);
            goto done;
        }
        if (id < 0 || id >= (1 << 24)) {
            rc = RS_ERROR(RS_EINVAL, "%s: added token \"%s\": id %d out of range", path, a, id);
            goto done;
        }
        for (size_t j = 0; j < i; j++)
            if (s->added_id[j] == id || !strcmp(s->added[j], a)) {
                rc = RS_ERROR(RS_EINVAL, "%s: added token \"%s\" (id %d) repeats added token %zu", path, a, id, j);
                goto done;
            }
        /* an id inside the vocabulary must name the same string */
        if ((size_t)id < s->nvocab && strcmp(s->vocab[id], a)) {
            rc = RS_ERROR(RS_EINVAL, "%s: added token \"%s\" reuses id %d of vocab token \"%s\"", path, a, id,
                          s->vocab[id]);
            goto done;
        }
        if ((size_t)id >= s->nvocab && *vset_slot(&m, a, strlen(a))) {
            rc = RS_ERROR(RS_EINVAL, "%s: added token \"%s\" (id %d) is also a vocab token with another id", path,
                          a, id);
            goto done;
        }
        if (s->bos_prepend && !strcmp(a, s->bos_prepend)) { bos_found = 1; bos_id = id; }
    }
    if (!bos_found) {
        rc = RS_ERROR(RS_EINVAL, "%s: bos_prepend \"%s\" is not an added token", path, s->bos_prepend);
        goto done;
    }

    char num[32];
    puts_(&b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    for (size_t i = 0; i < s->nadded; i++) {
        puts_(&b, i ? ",\n    " : "\n    ");
        put_added(&b, s->added[i], s->added_id[i], s->added_special ? s->added_special[i] : 1);
    }
    puts_(&b, s->nadded ? "\n  ],\n" : "],\n");
    puts_(&b, s->nfc ? "  \"normalizer\": {\"type\":\"NFC\"},\n" : "  \"normalizer\": null,\n");
    puts_(&b, "  \"pre_tokenizer\": ");
    put_pretok(&b, s->pre);
    puts_(&b, ",\n  \"post_processor\": ");
    const char *bl_post = "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":false,\"use_regex\":true}";
    if (s->bos_prepend) {
        puts_(&b, "{\"type\":\"Sequence\",\"processors\":[");
        puts_(&b, bl_post);
        puts_(&b, ",{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":");
        put_str(&b, s->bos_prepend);
        puts_(&b, ",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[{\"SpecialToken\":{\"id\":");
        put_str(&b, s->bos_prepend);
        puts_(&b, ",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":");
        put_str(&b, s->bos_prepend);
        puts_(&b, ",\"type_id\":1}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],\"special_tokens\":{");
        put_str(&b, s->bos_prepend);
        puts_(&b, ":{\"id\":");
        put_str(&b, s->bos_prepend);
        snprintf(num, sizeof num, "%d", bos_id);
        puts_(&b, ",\"ids\":[");
        puts_(&b, num);
        puts_(&b, "],\"tokens\":[");
        put_str(&b, s->bos_prepend);
        puts_(&b, "]}}}]}");
    } else {
        puts_(&b, bl_post);
    }
    puts_(&b, ",\n  \"decoder\": {\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,"
              "\"use_regex\":true},\n");
    puts_(&b, "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
              "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
              "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": ");
    puts_(&b, s->pre == TOK_PRE_LLAMA3 ? "true" : "false");
    puts_(&b, ",\n    \"vocab\": {");
    for (size_t i = 0; i < s->nvocab; i++) {
        puts_(&b, i ? ",\n      " : "\n      ");
        put_str(&b, s->vocab[i]);
        snprintf(num, sizeof num, ": %zu", i);
        puts_(&b, num);
    }
    puts_(&b, s->nvocab ? "\n    },\n    \"merges\": [" : "},\n    \"merges\": [");
    for (size_t r = 0; r < s->nmerges; r++) {
        puts_(&b, r ? ",\n      [" : "\n      [");
        put_str(&b, s->merge_a[r]);
        puts_(&b, ", ");
        put_str(&b, s->merge_b[r]);
        puts_(&b, "]");
    }
    puts_(&b, s->nmerges ? "\n    ]\n  }\n}\n" : "]\n  }\n}\n");
    if (b.oom) { rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", path); goto done; }
    *out = b;
    b.v = NULL;
done:
    free(m.key);
    free(cat);
    free(b.v);
    return rc;
}

int tok_write_json(const char *path, const tok_spec *s)
{
    obuf b = {0};
    int rc = build_json(path, s, &b);
    if (!rc) rc = write_file(path, b.v, b.n);
    free(b.v);
    return rc;
}

int tok_write_json_buf(const tok_spec *s, char **json, size_t *len)
{
    obuf b = {0};
    int rc = build_json("tokenizer.json", s, &b);
    if (rc) return rc;
    *json = b.v;
    *len = b.n;
    return 0;
}

int tok_write_config(const char *path, const char *bos, const char *eos, const char *pad)
{
    const char *names[3] = {"bos_token", "eos_token", "pad_token"}, *vals[3] = {bos, eos, pad};
    obuf b = {0};
    puts_(&b, "{\n");
    for (int i = 0; i < 3; i++) {
        if (vals[i] && !utf8_valid(vals[i])) return RS_ERROR(RS_EINVAL, "%s: %s is not valid UTF-8", path, names[i]);
        puts_(&b, "  \"");
        puts_(&b, names[i]);
        puts_(&b, "\": ");
        if (vals[i]) put_str(&b, vals[i]);
        else puts_(&b, "null");
        puts_(&b, ",\n");
    }
    puts_(&b, "  \"add_bos_token\": false,\n  \"add_eos_token\": false,\n"
              "  \"clean_up_tokenization_spaces\": false,\n  \"model_max_length\": 1000000000000000019884624838656,\n"
              "  \"tokenizer_class\": \"PreTrainedTokenizerFast\"\n}\n");
    int rc = b.oom ? RS_ERROR(RS_ENOMEM, "%s: out of memory", path) : write_file(path, b.v, b.n);
    free(b.v);
    return rc;
}
