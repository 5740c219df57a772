/* rostesim: llm/text/tokenizer.c against golden files written by HF `tokenizers`
 * (tools/tokenizer_fixtures.py): three byte-level BPE families (GPT-NeoX, Qwen2, Llama-3
 * styles), loader variants (probes.jsonl), round trips, queries and error messages.
 * Run from the repository root (make test does); $TOK_FIXTURES overrides tests/fixtures/tok. */
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "llm/text/tokenizer.h"
#include "quant/status.h"
#include "tests/check.h"
#include "tests/fixture.h"

static char dir[1024];

typedef struct {
    char *text, *decoded, *decoded_skip;
    size_t ntext, ndecoded, ndecoded_skip;
    int32_t *ids, *ids_sp;
    size_t nids, nids_sp;
} golden;

static int32_t *json_ids(const cJSON *a, size_t *n)
{
    *n = (size_t)cJSON_GetArraySize(a);
    int32_t *v = malloc((*n + 1) * sizeof(int32_t));
    size_t i = 0;
    for (const cJSON *x = a ? a->child : NULL; x; x = x->next) v[i++] = (int32_t)x->valuedouble;
    return v;
}

static void golden_from_json(golden *g, const cJSON *r)
{
    memset(g, 0, sizeof *g);
    g->text = fx_unhex(cJSON_GetObjectItem(r, "text")->valuestring, &g->ntext);
    g->ids = json_ids(cJSON_GetObjectItem(r, "ids"), &g->nids);
    g->ids_sp = json_ids(cJSON_GetObjectItem(r, "ids_special"), &g->nids_sp);
    const cJSON *d = cJSON_GetObjectItem(r, "decoded"), *ds = cJSON_GetObjectItem(r, "decoded_skip");
    if (d) g->decoded = fx_unhex(d->valuestring, &g->ndecoded);
    if (ds) g->decoded_skip = fx_unhex(ds->valuestring, &g->ndecoded_skip);
}

static size_t check_decode(const tok_tokenizer *t, const golden *g, size_t n, int skip, char *why, size_t cap);

/* decode.jsonl: random id sequences (partial UTF-8 included) and their HF decodes */
static void check_random_decodes(const char *style, const tok_tokenizer *t)
{
    char path[1200], why[1200];
    size_t len, n = 0, bad = 0, nrepl = 0;
    snprintf(path, sizeof path, "%s/%s/decode.jsonl", dir, style);
    char *b = fx_read_file(path, &len);
    CHECK(b != NULL, "%s: %s present", style, path);
    if (!b) return;
    for (char *line = strtok(b, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *r = cJSON_Parse(line);
        golden g;
        memset(&g, 0, sizeof g);
        g.ids_sp = json_ids(cJSON_GetObjectItem(r, "ids"), &g.nids_sp);
        g.decoded = fx_unhex(cJSON_GetObjectItem(r, "decoded")->valuestring, &g.ndecoded);
        g.decoded_skip = fx_unhex(cJSON_GetObjectItem(r, "decoded_skip")->valuestring, &g.ndecoded_skip);
        nrepl += strstr(g.decoded, "\xEF\xBF\xBD") != NULL;
        for (int skip = 0; skip < 2 && !bad; skip++)
            if (check_decode(t, &g, 1, skip, why, sizeof why) == 0) bad = n + 1;
        n++;
        free(g.ids_sp);
        free(g.decoded);
        free(g.decoded_skip);
        cJSON_Delete(r);
    }
    free(b);
    CHECK(n > 0 && !bad, "%s: %zu random id sequences decode as HF (%zu with U+FFFD), special tokens kept and skipped%s%s",
          style, n, nrepl, bad ? "; first mismatch: " : "", bad ? why : "");
}

static void golden_free(golden *g)
{
    free(g->text);
    free(g->decoded);
    free(g->decoded_skip);
    free(g->ids);
    free(g->ids_sp);
}

static golden *load_golden(const char *path, size_t *n)
{
    size_t len;
    char *b = fx_read_file(path, &len);
    *n = 0;
    if (!b) return NULL;
    size_t cap = 256;
    golden *g = malloc(cap * sizeof(golden));
    for (char *line = strtok(b, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *r = cJSON_Parse(line);
        if (!r) continue;
        if (*n == cap) g = realloc(g, (cap *= 2) * sizeof(golden));
        golden_from_json(&g[(*n)++], r);
        cJSON_Delete(r);
    }
    free(b);
    return g;
}

static void show_ids(char *out, size_t cap, const int32_t *v, size_t n)
{
    size_t o = 0;
    o += (size_t)snprintf(out + o, cap - o, "[");
    for (size_t i = 0; i < n && o + 16 < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%s%d", i ? " " : "", v[i]);
    snprintf(out + o, cap - o, "%s]", o + 16 >= cap ? " ..." : "");
}

static void show_text(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        o += (size_t)(c < 0x20 || c == 0x7f ? snprintf(out + o, cap - o, "\\x%02x", c) : snprintf(out + o, cap - o, "%c", c));
    }
    out[o] = 0;
}

/* Encode every golden text with `flags`; returns the index of the first mismatch or n. */
static size_t check_encode(const tok_tokenizer *t, const golden *g, size_t n, int flags, char *why, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        int32_t *ids = NULL;
        size_t m = 0;
        int rc = tok_encode(t, g[i].text, g[i].ntext, flags, &ids, &m);
        const int32_t *want = flags ? g[i].ids_sp : g[i].ids;
        size_t nwant = flags ? g[i].nids_sp : g[i].nids;
        if (rc || m != nwant || memcmp(ids, want, m * sizeof(int32_t))) {
            char a[300], b[300], s[200];
            show_ids(a, sizeof a, ids, rc ? 0 : m);
            show_ids(b, sizeof b, want, nwant);
            show_text(s, sizeof s, g[i].text, g[i].ntext);
            snprintf(why, cap, "string %zu \"%s\": got %s%s%s, want %s", i, s, a, rc ? " error " : "",
                     rc ? rs_last_error() : "", b);
            free(ids);
            return i;
        }
        free(ids);
    }
    return n;
}

static size_t check_decode(const tok_tokenizer *t, const golden *g, size_t n, int skip, char *why, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        const char *want = skip ? g[i].decoded_skip : g[i].decoded;
        size_t nwant = skip ? g[i].ndecoded_skip : g[i].ndecoded;
        if (!want) continue;
        char *s = NULL;
        size_t m = 0;
        int rc = tok_decode(t, g[i].ids_sp, g[i].nids_sp, skip, &s, &m);
        if (rc || m != nwant || memcmp(s, want, m) || s[m]) {
            char a[200], b[200];
            show_text(a, sizeof a, rc ? "" : s, rc ? 0 : m);
            show_text(b, sizeof b, want, nwant);
            snprintf(why, cap, "string %zu: got \"%s\" (rc %d), want \"%s\"", i, a, rc, b);
            free(s);
            return i;
        }
        free(s);
    }
    return n;
}

/* decode(encode(x)) == NFC(x) (or x) for every golden text */
static size_t check_roundtrip(const tok_tokenizer *t, const golden *g, size_t n, int nfc, char *why, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        int32_t *ids = NULL;
        size_t m = 0, k = 0;
        char *s = NULL;
        const char *want = g[i].text;
        size_t nwant = g[i].ntext;
        utf8proc_uint8_t *nf = NULL;
        if (nfc) {
            utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)g[i].text, (utf8proc_ssize_t)g[i].ntext, &nf,
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            want = (const char *)nf;
            nwant = r < 0 ? 0 : (size_t)r;
        }
        int ok = !tok_encode(t, g[i].text, g[i].ntext, 0, &ids, &m) && !tok_decode(t, ids, m, 0, &s, &k) &&
                 k == nwant && !memcmp(s, want, k);
        if (!ok) {
            char a[200];
            show_text(a, sizeof a, g[i].text, g[i].ntext);
            snprintf(why, cap, "string %zu \"%s\"", i, a);
        }
        free(ids);
        free(s);
        free(nf);
        if (!ok) return i;
    }
    return n;
}

static void check_goldens(const char *style, const tok_tokenizer *t, const golden *g, size_t n, const char *what)
{
    char why[1200] = "";
    size_t k;
    k = check_encode(t, g, n, 0, why, sizeof why);
    CHECK(k == n, "%s%s: %zu strings encode to the golden ids (add_special_tokens=False)%s%s", style, what, n,
          k < n ? "; first mismatch: " : "", k < n ? why : "");
    k = check_encode(t, g, n, TOK_ADD_SPECIAL, why, sizeof why);
    CHECK(k == n, "%s%s: %zu strings encode to the golden ids (add_special_tokens=True)%s%s", style, what, n,
          k < n ? "; first mismatch: " : "", k < n ? why : "");
    k = check_decode(t, g, n, 0, why, sizeof why);
    CHECK(k == n, "%s%s: golden ids decode to the golden text (special tokens kept)%s%s", style, what,
          k < n ? "; first mismatch: " : "", k < n ? why : "");
}

static int count_special(const tok_tokenizer *t)
{
    int c = 0;
    for (int id = 0; id < tok_vocab_size(t); id++) c += tok_is_special(t, id);
    return c;
}

/* ids <-> strings agree for every id, and the special ids are exactly `specials` */
static void check_queries(const char *style, const tok_tokenizer *t, const cJSON *json, const char **specials)
{
    int maxid = -1, nstr = 0, agree = 1, bad = -1;
    for (const cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(json, "model"), "vocab")->child; x; x = x->next)
        if ((int)x->valuedouble > maxid) maxid = (int)x->valuedouble;
    for (const cJSON *x = cJSON_GetObjectItem(json, "added_tokens")->child; x; x = x->next)
        if ((int)cJSON_GetObjectItem(x, "id")->valuedouble > maxid) maxid = (int)cJSON_GetObjectItem(x, "id")->valuedouble;
    CHECK(tok_vocab_size(t) == maxid + 1, "%s: tok_vocab_size %d == 1 + largest id in the file (%d)", style,
          tok_vocab_size(t), maxid + 1);
    for (int id = 0; id < tok_vocab_size(t); id++) {
        const char *s = tok_token_str(t, id);
        if (!s) continue;
        nstr++;
        if (tok_token_id(t, s) != id && agree) { agree = 0; bad = id; }
    }
    CHECK(agree && nstr == tok_vocab_size(t), "%s: tok_token_id(tok_token_str(id)) == id for all %d ids%s", style,
          nstr, agree ? "" : " (first failure below)");
    if (!agree) printf("  id %d \"%s\" -> %d\n", bad, tok_token_str(t, bad), tok_token_id(t, tok_token_str(t, bad)));
    int nsp = 0, ok = 1;
    for (; specials[nsp]; nsp++) {
        int id = tok_token_id(t, specials[nsp]);
        ok &= id >= 0 && tok_is_special(t, id) && !strcmp(tok_token_str(t, id), specials[nsp]);
    }
    CHECK(ok && count_special(t) == nsp, "%s: exactly the %d special tokens are special (%s ... id %d)", style, nsp,
          specials[0], tok_token_id(t, specials[0]));
    CHECK(tok_token_str(t, -1) == NULL && tok_token_str(t, tok_vocab_size(t)) == NULL && !tok_is_special(t, -1) &&
              !tok_is_special(t, tok_vocab_size(t)) && tok_token_id(t, "no such token \x01") == -1,
          "%s: out-of-range queries give NULL / 0 / -1", style);
}

/* Parse a (patched) cJSON tree as a tokenizer. */
static int parse_json(tok_tokenizer **t, const cJSON *j, const char *name)
{
    char *s = cJSON_PrintUnformatted(j);
    int rc = tok_parse(t, s, strlen(s), name);
    free(s);
    return rc;
}

static void set_path(cJSON *root, const cJSON *path, cJSON *value)
{
    cJSON *node = root;
    for (const cJSON *k = path->child; k; k = k->next) {
        int last = k->next == NULL;
        if (cJSON_IsNumber(k)) {
            int i = (int)k->valuedouble;
            if (last) {
                if (i == cJSON_GetArraySize(node)) cJSON_AddItemToArray(node, value);
                else cJSON_ReplaceItemInArray(node, i, value);
                return;
            }
            node = cJSON_GetArrayItem(node, i);
        } else {
            if (last) {
                if (cJSON_GetObjectItem(node, k->valuestring)) cJSON_ReplaceItemInObject(node, k->valuestring, value);
                else cJSON_AddItemToObject(node, k->valuestring, value);
                return;
            }
            node = cJSON_GetObjectItem(node, k->valuestring);
        }
    }
}

static cJSON *load_json(const char *style)
{
    char path[1200];
    size_t len;
    snprintf(path, sizeof path, "%s/%s/tokenizer.json", dir, style);
    char *b = fx_read_file(path, &len);
    cJSON *j = b ? cJSON_Parse(b) : NULL;
    free(b);
    return j;
}

static void test_probes(void)
{
    char path[1200];
    size_t len;
    snprintf(path, sizeof path, "%s/probes.jsonl", dir);
    char *b = fx_read_file(path, &len);
    CHECK(b != NULL, "probes: %s present", path);
    if (!b) return;
    for (char *line = strtok(b, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *r = cJSON_Parse(line);
        const char *base = cJSON_GetObjectItem(r, "base")->valuestring, *name = cJSON_GetObjectItem(r, "name")->valuestring;
        cJSON *j = load_json(base);
        for (const cJSON *p = cJSON_GetObjectItem(r, "patches")->child; p; p = p->next)
            set_path(j, p->child, cJSON_Duplicate(p->child->next, 1));
        tok_tokenizer *t = NULL;
        int rc = parse_json(&t, j, name);
        CHECK(rc == RS_OK, "probe %s (%s patched): loads%s%s", name, base, rc ? ": " : "", rc ? rs_last_error() : "");
        if (!rc) {
            size_t n = 0;
            golden *g = malloc(64 * sizeof(golden));
            for (const cJSON *c = cJSON_GetObjectItem(r, "cases")->child; c && n < 64; c = c->next) golden_from_json(&g[n++], c);
            char what[96];
            snprintf(what, sizeof what, " probe %s", name);
            check_goldens(base, t, g, n, what);
            for (size_t i = 0; i < n; i++) golden_free(&g[i]);
            free(g);
        }
        tok_free(t);
        cJSON_Delete(j);
        cJSON_Delete(r);
    }
    free(b);
}

/* Expect `rc` and a message containing `needle`. */
static void check_error(int rc, int want, const char *needle, const char *what)
{
    const char *msg = rs_last_error();
    CHECK(rc == want && strstr(msg, needle) != NULL, "%s -> %s: \"%s\"", what, rs_strerror(rc), msg);
}

static void test_errors(void)
{
    tok_tokenizer *t = (tok_tokenizer *)1;
    char path[1200];
    snprintf(path, sizeof path, "%s/no/such/tokenizer.json", dir);
    check_error(tok_load(&t, path), RS_EIO, "no/such/tokenizer.json", "missing file");
    CHECK(t == NULL, "failed load leaves *t NULL");

    size_t len;
    snprintf(path, sizeof path, "%s/neox/tokenizer.json", dir);
    char *txt = fx_read_file(path, &len);
    check_error(tok_parse(&t, txt, len / 2, "half.json"), RS_EINVAL, "half.json: malformed JSON", "truncated JSON");
    check_error(tok_parse(&t, "{\"model\": [1,, 2]}", 18, "bad.json"), RS_EINVAL, "near byte 13", "malformed JSON");
    check_error(tok_parse(&t, "{} x", 4, "tail.json"), RS_EINVAL, "after the JSON value at byte 3", "trailing data");
    check_error(tok_parse(&t, "", 0, "empty.json"), RS_EINVAL, "empty.json: empty text", "empty text");
    check_error(tok_parse(&t, "[1]", 3, "arr.json"), RS_EINVAL, "top level must be an object", "top-level array");
    free(txt);

    cJSON *j = load_json("neox");
    cJSON *model = cJSON_GetObjectItem(j, "model");
    cJSON *merges = cJSON_GetObjectItem(model, "merges");
    cJSON *m0 = cJSON_Duplicate(cJSON_GetArrayItem(merges, 0), 1);
    cJSON_ReplaceItemInArray(merges, 0, cJSON_CreateString("zzunknown t"));
    check_error(parse_json(&t, j, "m.json"), RS_EINVAL, "model.merges[0]: token \"zzunknown\" is not in model.vocab",
                "merge of an unknown token");
    const char *pair[2] = {"\xc4\x80", "\xc4\x80"}; /* "Ā Ā": both bytes exist, "ĀĀ" does not */
    cJSON_ReplaceItemInArray(merges, 0, cJSON_CreateStringArray(pair, 2));
    check_error(parse_json(&t, j, "m.json"), RS_EINVAL, "model.merges[0]: merged token \"\xc4\x80\xc4\x80\" is not in",
                "merge whose result is not in the vocabulary");
    cJSON_ReplaceItemInArray(merges, 0, cJSON_CreateString("a b c"));
    check_error(parse_json(&t, j, "m.json"), RS_EINVAL, "model.merges[0]: \"a b c\" is not two tokens", "merge with two spaces");
    cJSON_ReplaceItemInArray(merges, 0, cJSON_CreateNumber(3));
    check_error(parse_json(&t, j, "m.json"), RS_EINVAL, "model.merges[0] must be", "merge of the wrong type");
    cJSON_ReplaceItemInArray(merges, 0, m0);

    cJSON *type = cJSON_GetObjectItem(model, "type");
    cJSON_SetValuestring(type, "Unigram");
    check_error(parse_json(&t, j, "u.json"), RS_ENOTSUP, "u.json: model.type: Unigram", "Unigram model");
    cJSON_SetValuestring(type, "BPE");
    cJSON_ReplaceItemInObject(model, "byte_fallback", cJSON_CreateTrue());
    check_error(parse_json(&t, j, "u.json"), RS_ENOTSUP, "model.byte_fallback", "byte_fallback");
    cJSON_ReplaceItemInObject(model, "byte_fallback", cJSON_CreateFalse());
    cJSON *norm = cJSON_Duplicate(cJSON_GetObjectItem(j, "normalizer"), 1);
    cJSON_ReplaceItemInObject(j, "normalizer", cJSON_Parse("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Lowercase\"}]}"));
    check_error(parse_json(&t, j, "n.json"), RS_ENOTSUP, "normalizer.normalizers[1].type: Lowercase", "Lowercase normalizer");
    cJSON_ReplaceItemInObject(j, "normalizer", norm);
    cJSON *vocab = cJSON_DetachItemFromObject(model, "vocab");
    cJSON_AddItemToObject(model, "vocab", cJSON_CreateArray());
    check_error(parse_json(&t, j, "v.json"), RS_EINVAL, "v.json: model.vocab must be an object, not an array", "vocab of the wrong type");
    cJSON_ReplaceItemInObject(model, "vocab", vocab);
    cJSON *va = cJSON_GetObjectItemCaseSensitive(vocab, "a");
    double keep = va->valuedouble;
    cJSON_SetNumberValue(va, -5);
    check_error(parse_json(&t, j, "v.json"), RS_EINVAL, "model.vocab \"a\": id -5 is not an integer in [0, ", "negative id");
    cJSON_SetNumberValue(va, 5e6);
    check_error(parse_json(&t, j, "v.json"), RS_EINVAL, "v.json: id 5000000 leaves more than 2^20 ids unused", "sparse ids");
    cJSON_SetNumberValue(va, keep);
    cJSON *dec = cJSON_GetObjectItem(j, "decoder");
    cJSON_SetValuestring(cJSON_GetObjectItem(dec, "type"), "WordPiece");
    check_error(parse_json(&t, j, "d.json"), RS_ENOTSUP, "decoder.type: WordPiece", "WordPiece decoder");
    cJSON_SetValuestring(cJSON_GetObjectItem(dec, "type"), "ByteLevel");
    cJSON_ReplaceItemInObject(j, "truncation", cJSON_Parse("{\"max_length\": 8}"));
    check_error(parse_json(&t, j, "tr.json"), RS_ENOTSUP, "truncation", "truncation");
    cJSON_ReplaceItemInObject(j, "truncation", cJSON_CreateNull());
    cJSON_ReplaceItemInObject(j, "pre_tokenizer", cJSON_Parse("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"}"));
    check_error(parse_json(&t, j, "re.json"), RS_ENOTSUP, "pre_tokenizer.pattern: regex does not compile", "bad regex");
    cJSON_ReplaceItemInObject(j, "pre_tokenizer", cJSON_Parse("{\"type\":\"Whitespace\"}"));
    check_error(parse_json(&t, j, "w.json"), RS_ENOTSUP, "pre_tokenizer.type: Whitespace", "Whitespace pre-tokenizer");
    cJSON_Delete(j);

    /* encode / decode errors on a good tokenizer */
    int rc = tok_load(&t, path);
    CHECK(rc == RS_OK, "neox loads for the error cases");
    if (rc) return;
    static const struct { const char *s; size_t n; size_t at; } bad[] = {
        {"abc\xff", 4, 3}, {"ok \xe6\x97", 5, 3}, {"\xc0\x80", 2, 0}, {"x\xed\xa0\x80", 4, 1}, {"12\xf4\x90\x80\x80", 6, 2},
        {"\x80", 1, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        char needle[64];
        snprintf(needle, sizeof needle, "not valid UTF-8 at byte %zu", bad[i].at);
        check_error(tok_encode(t, bad[i].s, bad[i].n, 0, &ids, &n), RS_EINVAL, needle, "invalid UTF-8 input");
        free(ids);
    }
    int32_t ids[3] = {5, tok_vocab_size(t), 6}, neg[1] = {-1};
    char *s = NULL;
    size_t n;
    check_error(tok_decode(t, ids, 3, 0, &s, &n), RS_EINVAL, "id 700 at position 1 is not a token", "decode of an out-of-range id");
    check_error(tok_decode(t, neg, 1, 0, &s, &n), RS_EINVAL, "id -1 at position 0", "decode of a negative id");
    CHECK(s == NULL, "failed decode leaves *out NULL");
    int32_t *e = NULL;
    rc = tok_encode(t, "", 0, TOK_ADD_SPECIAL, &e, &n);
    CHECK(rc == RS_OK && n == 0 && e != NULL, "empty text encodes to no ids (neox has no template)");
    free(e);
    tok_free(t);
    tok_free(NULL);
}

/* Merges spelled the other way ("a b" <-> ["a","b"]) load to the same tokenizer. */
static void test_spelling(const char *style, const golden *g, size_t n)
{
    cJSON *j = load_json(style);
    cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "merges");
    int was_string = cJSON_IsString(merges->child);
    for (cJSON *m = merges->child; m; m = m->next) {
        cJSON *r;
        if (cJSON_IsString(m)) {
            char *sp = strchr(m->valuestring, ' ');
            *sp = 0;
            const char *pr[2] = {m->valuestring, sp + 1};
            r = cJSON_CreateStringArray(pr, 2);
        } else {
            char buf[512];
            snprintf(buf, sizeof buf, "%s %s", m->child->valuestring, m->child->next->valuestring);
            r = cJSON_CreateString(buf);
        }
        cJSON_ReplaceItemViaPointer(merges, m, r);
        m = r;
    }
    tok_tokenizer *t = NULL;
    int rc = parse_json(&t, j, style);
    char what[64];
    snprintf(what, sizeof what, " (merges rewritten as %s)", was_string ? "[\"a\",\"b\"] pairs" : "\"a b\" strings");
    CHECK(rc == RS_OK, "%s%s: loads", style, what);
    if (!rc) {
        char why[1200];
        size_t k = check_encode(t, g, n, TOK_ADD_SPECIAL, why, sizeof why);
        CHECK(k == n, "%s%s: same golden ids%s%s", style, what, k < n ? "; " : "", k < n ? why : "");
    }
    tok_free(t);
    cJSON_Delete(j);
}

/* Encode speed on English-like text built from the golden strings (no timing assertion). */
static void bench(const char *style, const tok_tokenizer *t, const golden *g, size_t n)
{
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    for (size_t r = 0, last = 1; len < (cap >> 1) && len != last; r++) {
        last = len;
        for (size_t i = 0; i < n && len + g[i].ntext + 2 < cap; i++) {
            int ascii = 1;
            for (size_t k = 0; k < g[i].ntext; k++) ascii &= (unsigned char)g[i].text[k] >= 0x20 && (unsigned char)g[i].text[k] < 0x7f;
            if (!ascii || g[i].ntext < 20) continue;
            memcpy(text + len, g[i].text, g[i].ntext);
            len += g[i].ntext;
            text[len++] = (r + i) % 7 ? ' ' : '\n';
        }
    }
    struct timespec a, b;
    int32_t *ids = NULL;
    size_t m = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = tok_encode(t, text, len, 0, &ids, &m);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    char *d = NULL;
    size_t k = 0;
    int rt = !rc && !tok_decode(t, ids, m, 0, &d, &k) && k == len && !memcmp(d, text, len);
    CHECK(rc == RS_OK && rt, "%s: %.2f MB of English-like text -> %zu ids in %.3f s (%.1f MB/s, one thread), decodes back",
          style, (double)len / 1e6, m, s, (double)len / 1e6 / s);
    free(ids);
    free(d);
    free(text);
}

/* A small deterministic generator for the fuzz loops (xorshift64*). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Mutated tokenizer files load or fail with a message (never crash: ASan watches); random
 * text round-trips or is refused as invalid UTF-8 at the right byte. */
static void test_fuzz(void)
{
    char path[1200];
    size_t len;
    snprintf(path, sizeof path, "%s/tiny/tokenizer.json", dir);
    char *txt = fx_read_file(path, &len);
    CHECK(txt != NULL, "fuzz: %s present", path);
    if (!txt) return;
    char *buf = malloc(len + 1);
    int nok = 0, nerr = 0, silent = 0;
    for (int it = 0; it < 300; it++) {
        memcpy(buf, txt, len);
        size_t n = len;
        if (it % 3 == 0) n = (size_t)(rnd() % len); /* truncate */
        else
            for (int k = 0; k < 1 + it % 4; k++) {
                static const char junk[] = "{}[]\",:0-9 a\\\xc4\xff";
                buf[rnd() % len] = junk[rnd() % (sizeof junk - 1)];
            }
        tok_tokenizer *t = NULL;
        rs_error(__FILE__, __LINE__, RS_OK, "%s", ""); /* clear the last message */
        int rc = tok_parse(&t, buf, n, "fuzz.json");
        if (rc == RS_OK) {
            int32_t *ids = NULL;
            size_t m = 0;
            char *d = NULL;
            nok += !tok_encode(t, "hello world <eos> abc", 21, TOK_ADD_SPECIAL, &ids, &m) &&
                   !tok_decode(t, ids, m, 0, &d, &len);
            free(ids);
            free(d);
            tok_free(t);
        } else {
            nerr++;
            silent += t != NULL || !strstr(rs_last_error(), "fuzz.json");
        }
    }
    CHECK(nerr > 100 && silent == 0, "fuzz: 300 mutated tiny/tokenizer.json: %d load and encode, %d refused with a "
          "message naming the file, %d without", nok, nerr, silent);
    free(buf);
    free(txt);

    snprintf(path, sizeof path, "%s/neox/tokenizer.json", dir);
    tok_tokenizer *t = NULL;
    if (tok_load(&t, path)) return;
    char s[64];
    int nrt = 0, ninv = 0, bad = 0;
    for (int it = 0; it < 2000; it++) {
        size_t n = 0;
        if (it % 2) { /* random bytes, mostly invalid */
            n = rnd() % 12;
            for (size_t i = 0; i < n; i++) s[i] = (char)(rnd() & 0xff);
        } else { /* random code points from several planes */
            size_t k = rnd() % 8;
            for (size_t i = 0; i < k; i++) {
                static const int32_t base[] = {0x20, 0x80, 0x300, 0x3040, 0x4e00, 0xac00, 0x1f300, 0x10000};
                int32_t c = base[rnd() % 8] + (int32_t)(rnd() % 0x100);
                if (!utf8proc_codepoint_valid(c)) c = 'x';
                n += (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)s + n);
            }
        }
        int32_t *ids = NULL;
        size_t m = 0, k = 0;
        char *d = NULL;
        int rc = tok_encode(t, s, n, 0, &ids, &m);
        utf8proc_int32_t cp;
        size_t at = 0; /* the first invalid byte by utf8proc's reading */
        while (at < n) {
            utf8proc_ssize_t r = utf8proc_iterate((const utf8proc_uint8_t *)s + at, (utf8proc_ssize_t)(n - at), &cp);
            if (r < 0) break;
            at += (size_t)r;
        }
        if (at < n) {
            char needle[48];
            snprintf(needle, sizeof needle, "at byte %zu ", at);
            ninv++;
            bad += rc != RS_EINVAL || !strstr(rs_last_error(), needle);
        } else {
            utf8proc_uint8_t *nf = NULL;
            utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &nf,
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            int ok = rc == RS_OK && !tok_decode(t, ids, m, 0, &d, &k) && r >= 0 && k == (size_t)r && !memcmp(d, nf, k);
            nrt += ok;
            bad += !ok;
            free(nf);
        }
        free(ids);
        free(d);
    }
    CHECK(bad == 0, "fuzz: 2000 random strings: %d round-trip to NFC, %d refused at utf8proc's first invalid byte, "
          "%d wrong", nrt, ninv, bad);
    tok_free(t);
}

int main(void)
{
    const char *env = getenv("TOK_FIXTURES");
    snprintf(dir, sizeof dir, "%s", env ? env : "tests/fixtures/tok");
    static const char *styles[] = {"neox", "qwen2", "llama3"};
    static const char *specials[3][4] = {{"<|endoftext|>", "<|padding|>", NULL},
                                         {"<|endoftext|>", "<|im_start|>", "<|im_end|>", NULL},
                                         {"<|begin_of_text|>", "<|end_of_text|>", NULL}};
    for (int s = 0; s < 3; s++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s/tokenizer.json", dir, styles[s]);
        tok_tokenizer *t = NULL;
        int rc = tok_load(&t, path);
        CHECK(rc == RS_OK, "%s: %s loads%s%s", styles[s], path, rc ? ": " : "", rc ? rs_last_error() : "");
        snprintf(path, sizeof path, "%s/%s/golden.jsonl", dir, styles[s]);
        size_t n;
        golden *g = load_golden(path, &n);
        CHECK(g && n >= 200, "%s: %zu golden strings in %s", styles[s], n, path);
        if (rc || !g) { tok_free(t); free(g); continue; }
        check_goldens(styles[s], t, g, n, "");
        char why[1200];
        size_t k = check_decode(t, g, n, 1, why, sizeof why);
        CHECK(k == n, "%s: golden ids decode to the golden text (special tokens skipped)%s%s", styles[s],
              k < n ? "; first mismatch: " : "", k < n ? why : "");
        int nfc = s != 2;
        k = check_roundtrip(t, g, n, nfc, why, sizeof why);
        CHECK(k == n, "%s: decode(encode(x)) == %s for all %zu strings%s%s", styles[s], nfc ? "NFC(x)" : "x", n,
              k < n ? "; first failure: " : "", k < n ? why : "");
        check_random_decodes(styles[s], t);
        cJSON *j = load_json(styles[s]);
        check_queries(styles[s], t, j, specials[s]);
        cJSON_Delete(j);
        test_spelling(styles[s], g, n);
        bench(styles[s], t, g, n);
        for (size_t i = 0; i < n; i++) golden_free(&g[i]);
        free(g);
        tok_free(t);
    }
    test_probes();
    test_errors();
    test_fuzz();
    return check_summary("test_tokenizer");
}
