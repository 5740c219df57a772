/* rostesim LLM: Hugging Face tokenizer.json, byte-level BPE (see tokenizer.h).
 *
 * Pipeline of tok_encode, as in HF `tokenizers`:
 *   1. added tokens with normalized=false are cut out of the raw text (leftmost-longest);
 *   2. each remaining piece is normalized (NFC through utf8proc) and added tokens with
 *      normalized=true are cut out of it;
 *   3. the pre-tokenizer steps (Split regexes through PCRE2, then ByteLevel) cut pieces into
 *      pre-tokens;
 *   4. BPE merges each pre-token: symbols in a linked list, candidate pairs in a min-heap
 *      ordered by (rank, position), exactly the order of HF's Word::merge_all;
 *   5. TOK_ADD_SPECIAL applies the TemplateProcessing post-processor.
 * The byte-level alphabet (GPT-2's bytes_to_unicode) is undone once at load: the model
 * works on raw bytes, so encode never builds the mapped strings. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "llm/text/tokenizer.h"

#include <cJSON.h>
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "llm/io/jsonutil.h"
#include "quant/status.h"

#define TOK_MAX_ID (1 << 24) /* ids beyond this are refused (bounds every allocation) */

/* ---------------------------------------------------------------- small vectors */

typedef struct { char *v; size_t n, cap; } cvec;
typedef struct { int32_t *v; size_t n, cap; } ivec;
typedef struct { size_t off, len; } span;
typedef struct { span *v; size_t n, cap; } svec;

static int grow(void **v, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *p = realloc(*v, c * elem);
    if (!p) return -1;
    *v = p;
    *cap = c;
    return 0;
}
#define VEC_RESERVE(vec, need) grow((void **)&(vec)->v, &(vec)->cap, (need), sizeof(*(vec)->v))

static int cvec_put(cvec *b, const char *s, size_t len)
{
    if (VEC_RESERVE(b, b->n + len + 1)) return -1;
    if (len) memcpy(b->v + b->n, s, len);
    b->n += len;
    return 0;
}
static int ivec_push(ivec *a, int32_t x)
{
    if (VEC_RESERVE(a, a->n + 1)) return -1;
    a->v[a->n++] = x;
    return 0;
}
static int svec_push(svec *a, size_t off, size_t len)
{
    if (VEC_RESERVE(a, a->n + 1)) return -1;
    a->v[a->n].off = off;
    a->v[a->n].len = len;
    a->n++;
    return 0;
}

/* ---------------------------------------------------------------- UTF-8 */

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 if invalid; *sub receives the
 * length of the maximal invalid subpart (>= 1) when invalid, as Rust's from_utf8_lossy. */
static int utf8_seq(const unsigned char *s, size_t n, int *sub)
{
    unsigned c = s[0];
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *sub = 1;
        return 0;
    }
    int i = 1;
    for (; i < need && (size_t)i < n; i++) {
        unsigned d = s[i];
        if (d < lo || d > hi) break;
        lo = 0x80;
        hi = 0xBF;
    }
    if (i == need) return need;
    *sub = i;
    return 0;
}

/* Offset of the first invalid byte, or n if s is valid UTF-8. */
static size_t utf8_check(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) { i++; continue; }
        int sub, k = utf8_seq((const unsigned char *)s + i, n - i, &sub);
        if (!k) return i;
        i += (size_t)k;
    }
    return n;
}

static int32_t utf8_get(const unsigned char *s, int k)
{
    if (k == 1) return s[0];
    if (k == 2) return ((s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    if (k == 3) return ((s[0] & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    return ((s[0] & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

/* Rust's char::is_whitespace (the White_Space property), for lstrip/rstrip. */
static int is_white(int32_t c)
{
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* ---------------------------------------------------------------- GPT-2 byte alphabet */

/* bytes_to_unicode(): printable bytes map to themselves, the other 68 to U+0100.. in order. */
static void byte_alphabet(int32_t b2u[256], int16_t u2b[324])
{
    int n = 0;
    for (int i = 0; i < 324; i++) u2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        b2u[b] = printable ? b : 256 + n++;
        u2b[b2u[b]] = (int16_t)b;
    }
}

/* ---------------------------------------------------------------- hash maps */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

/* Open addressing map from byte strings (kept in the tokenizer's arena) to ids. */
typedef struct { uint32_t hash, off, len; int32_t id; } smap_slot;
typedef struct { smap_slot *s; size_t cap, n; } smap;

static smap_slot *smap_find(const smap *m, const char *arena, const char *k, size_t n, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        smap_slot *e = &m->s[i];
        if (e->id < 0) return e;
        if (e->hash == (uint32_t)h && e->len == n && memcmp(arena + e->off, k, n) == 0) return e;
    }
}

static int smap_init(smap *m, size_t n)
{
    m->cap = 16;
    while (m->cap < 2 * n + 2) m->cap *= 2;
    m->n = 0;
    m->s = malloc(m->cap * sizeof(*m->s));
    if (!m->s) return -1;
    for (size_t i = 0; i < m->cap; i++) m->s[i].id = -1;
    return 0;
}

/* Insert (key at arena+off) -> id; returns the previous id for that key or -1. The map is
 * sized at init for every key it will get. */
static int32_t smap_put(smap *m, const char *arena, uint32_t off, uint32_t len, int32_t id)
{
    uint64_t h = hash_bytes(arena + off, len);
    smap_slot *e = smap_find(m, arena, arena + off, len, h);
    int32_t prev = e->id;
    if (prev < 0) m->n++;
    e->hash = (uint32_t)h;
    e->off = off;
    e->len = len;
    e->id = id;
    return prev;
}

static int32_t smap_get(const smap *m, const char *arena, const char *k, size_t n)
{
    if (!m->cap) return -1;
    return smap_find(m, arena, k, n, hash_bytes(k, n))->id;
}

/* Merges: (left id, right id) -> (rank, merged id). */
typedef struct { uint64_t key; int32_t rank, id; } pmap_slot;
typedef struct { pmap_slot *s; size_t cap; } pmap;
#define PMAP_EMPTY UINT64_MAX

static inline uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

static inline size_t pair_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k;
}

static inline const pmap_slot *pmap_get(const pmap *m, int32_t a, int32_t b)
{
    if (!m->cap) return NULL;
    uint64_t k = pair_key(a, b);
    size_t mask = m->cap - 1;
    for (size_t i = pair_hash(k) & mask;; i = (i + 1) & mask) {
        const pmap_slot *e = &m->s[i];
        if (e->key == k) return e;
        if (e->key == PMAP_EMPTY) return NULL;
    }
}

/* ---------------------------------------------------------------- the tokenizer */

enum { SPLIT_ISOLATED, SPLIT_REMOVED, SPLIT_PREV, SPLIT_NEXT, SPLIT_CONTIGUOUS };

typedef struct {
    pcre2_code *re;
    int behavior, invert; /* Split */
} pt_split;

typedef struct {
    uint32_t off, len; /* content in the arena */
    int32_t id;
    int special, lstrip, rstrip, normalized;
} added_tok;

/* Added tokens of one kind (normalized or not), by first byte, longest first. */
typedef struct {
    int32_t *idx; /* indices into t->added */
    uint32_t first[257];
    size_t n;
} added_set;

enum { F_MODEL = 1, F_ADDED = 2, F_SPECIAL = 4 };

struct tok_tokenizer {
    char *name;
    cvec arena;                   /* every string: model tokens, decoded bytes, added tokens */
    int32_t nid;                  /* 1 + largest id */
    uint8_t *flags;               /* F_* per id */
    uint32_t *mstr_off, *mstr_len; /* model token string per id */
    uint32_t *dec_off, *dec_len;   /* bytes the ByteLevel decoder gives for the id */
    int32_t *added_of;            /* index in added[] per id, -1 if none */
    smap model;                   /* model token string -> id */
    smap model_raw;               /* raw bytes of a byte-level model token -> id (ignore_merges) */
    smap added_map;               /* added token content -> id */
    pmap merges;
    int32_t byte_id[256];         /* id of the one-byte token of each byte, -1 if missing */
    added_tok *added;
    size_t nadded;
    added_set set_raw, set_norm;
    int nfc;
    pt_split *splits; /* Split steps, in order, then the ByteLevel step */
    size_t nsplits;
    int prefix_space;
    pcre2_code *bl_re; /* ByteLevel's GPT-2 regex, NULL when use_regex is false */
    int ignore_merges, fuse_unk;
    int32_t unk_id;
    int32_t *tpl; /* TemplateProcessing single: ids, -1 marks $A */
    size_t ntpl;
    int has_tpl;
};

static const char *GPT2_PATTERN =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

void tok_free(tok_tokenizer *t)
{
    if (!t) return;
    free(t->name);
    free(t->arena.v);
    free(t->flags);
    free(t->mstr_off);
    free(t->mstr_len);
    free(t->dec_off);
    free(t->dec_len);
    free(t->added_of);
    free(t->model.s);
    free(t->model_raw.s);
    free(t->added_map.s);
    free(t->merges.s);
    free(t->added);
    free(t->set_raw.idx);
    free(t->set_norm.idx);
    for (size_t i = 0; i < t->nsplits; i++) pcre2_code_free(t->splits[i].re);
    free(t->splits);
    pcre2_code_free(t->bl_re);
    free(t->tpl);
    free(t);
}

/* ---------------------------------------------------------------- loading helpers */

#define NOMEM(t) RS_ERROR(RS_ENOMEM, "%s: out of memory", (t)->name)

/* Optional boolean member: absent or null gives `def`. */
static int get_bool(const tok_tokenizer *t, const cJSON *obj, const char *key, const char *path, int def,
                    int *out)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!x || cJSON_IsNull(x)) { *out = def; return 0; }
    if (!cJSON_IsBool(x))
        return RS_ERROR(RS_EINVAL, "%s: %s.%s must be a boolean, not %s", t->name, path, key, llm_json_type(x));
    *out = cJSON_IsTrue(x);
    return 0;
}

static int get_type(const tok_tokenizer *t, const cJSON *obj, const char *path, const char **type)
{
    if (!cJSON_IsObject(obj))
        return RS_ERROR(RS_EINVAL, "%s: %s must be an object, not %s", t->name, path, llm_json_type(obj));
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (!cJSON_IsString(x))
        return RS_ERROR(RS_EINVAL, "%s: %s.type must be a string, not %s", t->name, path, llm_json_type(x));
    *type = x->valuestring;
    return 0;
}

/* Store a NUL-terminated copy of s in the arena; *off receives its offset. */
static int arena_put(tok_tokenizer *t, const char *s, size_t len, uint32_t *off)
{
    if (t->arena.n + len + 1 > UINT32_MAX) return RS_ERROR(RS_EINVAL, "%s: strings too large", t->name);
    *off = (uint32_t)t->arena.n;
    if (cvec_put(&t->arena, s, len) || cvec_put(&t->arena, "", 1)) return NOMEM(t);
    return 0;
}

/* The bytes the ByteLevel decoder gives for a token: each char through the inverse alphabet,
 * or the token's own UTF-8 when a char is outside the alphabet (as HF). Returns 1 if the whole
 * token is in the alphabet. */
static int byte_level_decode(const char *s, size_t n, const int16_t u2b[324], char *out, size_t *outn)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int sub, k = utf8_seq((const unsigned char *)s + i, n - i, &sub);
        if (!k) break;
        int32_t c = utf8_get((const unsigned char *)s + i, k);
        if (c >= 324 || u2b[c] < 0) {
            memcpy(out, s, n);
            *outn = n;
            return 0;
        }
        out[o++] = (char)u2b[c];
        i += (size_t)k;
    }
    *outn = o;
    return 1;
}

static int compile_re(tok_tokenizer *t, const char *pat, size_t len, int literal, const char *path,
                      pcre2_code **re)
{
    int err;
    PCRE2_SIZE eoff;
    uint32_t opt = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP); /* LITERAL refuses UCP */
    *re = pcre2_compile((PCRE2_SPTR)pat, len, opt, &err, &eoff, NULL);
    if (!*re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return RS_ERROR(RS_ENOTSUP, "%s: %s: regex does not compile at offset %zu: %s", t->name, path,
                        (size_t)eoff, (const char *)msg);
    }
    (void)pcre2_jit_compile(*re, PCRE2_JIT_COMPLETE); /* without JIT, the interpreter runs */
    return 0;
}

/* ---------------------------------------------------------------- sections of tokenizer.json */

/* A section's loader: the step x at `path`, with the loader's own state (may be unused). */
typedef int tok_step_fn(tok_tokenizer *t, const cJSON *x, const char *path, void *ctx);

/* A "Sequence" step of a section: every element of p[key] loaded in order by fn, at the path
 * "<path>.<key>[i]". */
static int load_sequence(tok_tokenizer *t, const cJSON *p, const char *key, const char *path, tok_step_fn *fn, void *ctx)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, key);
    if (!cJSON_IsArray(list))
        return RS_ERROR(RS_EINVAL, "%s: %s.%s must be an array, not %s", t->name, path, key, llm_json_type(list));
    size_t i = 0;
    for (const cJSON *x = list->child; x; x = x->next, i++) {
        char sub[128];
        snprintf(sub, sizeof sub, "%s.%s[%zu]", path, key, i);
        int rc = fn(t, x, sub, ctx);
        if (rc) return rc;
    }
    return 0;
}

static int load_normalizer(tok_tokenizer *t, const cJSON *n, const char *path, void *unused)
{
    if (!n || cJSON_IsNull(n)) return 0;
    const char *type;
    int rc = get_type(t, n, path, &type);
    if (rc) return rc;
    if (!strcmp(type, "NFC")) { t->nfc = 1; return 0; }
    if (!strcmp(type, "Sequence")) return load_sequence(t, n, "normalizers", path, load_normalizer, unused);
    return RS_ERROR(RS_ENOTSUP, "%s: %s.type: %s is not supported (NFC or a Sequence of NFC)", t->name, path, type);
}

/* seen_bl (an int *): set once a ByteLevel step was loaded (only one may end the chain). */
static int load_pretok(tok_tokenizer *t, const cJSON *p, const char *path, void *seen_bl_)
{
    int *seen_bl = seen_bl_;
    const char *type;
    int rc = get_type(t, p, path, &type);
    if (rc) return rc;
    if (*seen_bl)
        return RS_ERROR(RS_ENOTSUP, "%s: %s: only a ByteLevel step can end the pre-tokenizer (found %s after it)",
                        t->name, path, type);
    if (!strcmp(type, "Sequence")) return load_sequence(t, p, "pretokenizers", path, load_pretok, seen_bl);
    if (!strcmp(type, "ByteLevel")) {
        int use_regex = 1; /* set by get_bool (initialised for -Wmaybe-uninitialized) */
        if ((rc = get_bool(t, p, "add_prefix_space", path, 1, &t->prefix_space))) return rc;
        if ((rc = get_bool(t, p, "use_regex", path, 1, &use_regex))) return rc;
        if (use_regex) {
            char sub[160];
            snprintf(sub, sizeof sub, "%s (GPT-2 regex)", path);
            if ((rc = compile_re(t, GPT2_PATTERN, PCRE2_ZERO_TERMINATED, 0, sub, &t->bl_re))) return rc;
        }
        *seen_bl = 1;
        return 0;
    }
    if (!strcmp(type, "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(p, "behavior");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *lit = cJSON_GetObjectItemCaseSensitive(pat, "String");
        const cJSON *s = re ? re : lit;
        if (!cJSON_IsObject(pat) || !cJSON_IsString(s))
            return RS_ERROR(RS_EINVAL, "%s: %s.pattern must be {\"Regex\": string} or {\"String\": string}",
                            t->name, path);
        if (!cJSON_IsString(beh))
            return RS_ERROR(RS_EINVAL, "%s: %s.behavior must be a string, not %s", t->name, path, llm_json_type(beh));
        static const char *names[] = {"Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
        int b = -1;
        for (int i = 0; i < 5; i++)
            if (!strcmp(beh->valuestring, names[i])) b = i;
        if (b < 0)
            return RS_ERROR(RS_ENOTSUP, "%s: %s.behavior: %s is not supported", t->name, path, beh->valuestring);
        pt_split *np = realloc(t->splits, (t->nsplits + 1) * sizeof(*np));
        if (!np) return NOMEM(t);
        t->splits = np;
        pt_split *sp = &t->splits[t->nsplits];
        memset(sp, 0, sizeof(*sp));
        sp->behavior = b;
        if ((rc = get_bool(t, p, "invert", path, 0, &sp->invert))) return rc;
        char sub[160];
        snprintf(sub, sizeof sub, "%s.pattern", path);
        if ((rc = compile_re(t, s->valuestring, strlen(s->valuestring), s == lit, sub, &sp->re))) return rc;
        t->nsplits++;
        return 0;
    }
    return RS_ERROR(RS_ENOTSUP, "%s: %s.type: %s is not supported (ByteLevel, Split, Sequence)", t->name, path,
                    type);
}

/* One merge, either "a b" or ["a", "b"], into ids. */
static int merge_ids(tok_tokenizer *t, const cJSON *m, size_t i, int32_t *a, int32_t *b, int32_t *ab, cvec *tmp)
{
    const char *sa, *sb;
    size_t na, nb;
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring, *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return RS_ERROR(RS_EINVAL, "%s: model.merges[%zu]: \"%s\" is not two tokens separated by one space",
                            t->name, i, s);
        sa = s;
        na = (size_t)(sp - s);
        sb = sp + 1;
        nb = strlen(sb);
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
               cJSON_IsString(m->child->next)) {
        sa = m->child->valuestring;
        na = strlen(sa);
        sb = m->child->next->valuestring;
        nb = strlen(sb);
    } else {
        return RS_ERROR(RS_EINVAL, "%s: model.merges[%zu] must be \"a b\" or [\"a\", \"b\"], not %s", t->name, i,
                        llm_json_type(m));
    }
    *a = smap_get(&t->model, t->arena.v, sa, na);
    *b = smap_get(&t->model, t->arena.v, sb, nb);
    if (*a < 0 || *b < 0)
        return RS_ERROR(RS_EINVAL, "%s: model.merges[%zu]: token \"%.*s\" is not in model.vocab", t->name, i,
                        (int)(*a < 0 ? na : nb), *a < 0 ? sa : sb);
    tmp->n = 0;
    if (cvec_put(tmp, sa, na) || cvec_put(tmp, sb, nb)) return NOMEM(t);
    *ab = smap_get(&t->model, t->arena.v, tmp->v, tmp->n);
    if (*ab < 0)
        return RS_ERROR(RS_EINVAL, "%s: model.merges[%zu]: merged token \"%.*s\" is not in model.vocab", t->name,
                        i, (int)tmp->n, tmp->v);
    return 0;
}

static int check_id(const tok_tokenizer *t, const cJSON *x, const char *path, const char *key, int32_t *id)
{
    if (!cJSON_IsNumber(x))
        return RS_ERROR(RS_EINVAL, "%s: %s \"%s\": id must be an integer, not %s", t->name, path, key, llm_json_type(x));
    if (!(x->valuedouble >= 0 && x->valuedouble < TOK_MAX_ID) || x->valuedouble != (double)(int32_t)x->valuedouble)
        return RS_ERROR(RS_EINVAL, "%s: %s \"%s\": id %.17g is not an integer in [0, %d)", t->name, path, key,
                        x->valuedouble, TOK_MAX_ID);
    *id = (int32_t)x->valuedouble;
    return 0;
}

static int load_model(tok_tokenizer *t, const cJSON *model, const cJSON *added, const int16_t u2b[324])
{
    const char *type;
    int rc = get_type(t, model, "model", &type);
    if (rc) return rc;
    if (strcmp(type, "BPE"))
        return RS_ERROR(RS_ENOTSUP, "%s: model.type: %s is not supported (BPE only)", t->name, type);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (x && !cJSON_IsNull(x)) return RS_ERROR(RS_ENOTSUP, "%s: model.dropout: BPE dropout is not supported", t->name);
    static const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        x = cJSON_GetObjectItemCaseSensitive(model, affixes[i]);
        if (x && !cJSON_IsNull(x) && !(cJSON_IsString(x) && !x->valuestring[0]))
            return RS_ERROR(RS_ENOTSUP, "%s: model.%s is not supported", t->name, affixes[i]);
    }
    int byte_fallback = 0; /* set by get_bool (initialised for -Wmaybe-uninitialized) */
    if ((rc = get_bool(t, model, "byte_fallback", "model", 0, &byte_fallback))) return rc;
    if (byte_fallback) return RS_ERROR(RS_ENOTSUP, "%s: model.byte_fallback: true is not supported", t->name);
    if ((rc = get_bool(t, model, "ignore_merges", "model", 0, &t->ignore_merges))) return rc;
    if ((rc = get_bool(t, model, "fuse_unk", "model", 0, &t->fuse_unk))) return rc;

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab))
        return RS_ERROR(RS_EINVAL, "%s: model.vocab must be an object, not %s", t->name, llm_json_type(vocab));
    /* size: 1 + the largest id of the vocab and the added tokens */
    size_t nvocab = 0;
    int32_t maxid = -1, id = -1;
    for (x = vocab->child; x; x = x->next, nvocab++) {
        if ((rc = check_id(t, x, "model.vocab", x->string, &id))) return rc;
        if (id > maxid) maxid = id;
    }
    if (added && !cJSON_IsArray(added))
        return RS_ERROR(RS_EINVAL, "%s: added_tokens must be an array, not %s", t->name, llm_json_type(added));
    size_t i = 0;
    for (x = added ? added->child : NULL; x; x = x->next, i++) {
        char path[64];
        snprintf(path, sizeof path, "added_tokens[%zu]", i);
        if ((rc = check_id(t, cJSON_GetObjectItemCaseSensitive(x, "id"), path, "id", &id))) return rc;
        if (id > maxid) maxid = id;
    }
    if ((size_t)maxid >= nvocab + i + (1u << 20)) /* bounds the per-id tables a small file can ask for */
        return RS_ERROR(RS_EINVAL, "%s: id %d leaves more than 2^20 ids unused (%zu tokens in model.vocab and "
                        "added_tokens)", t->name, maxid, nvocab + i);
    t->nid = maxid + 1;
    size_t nid = (size_t)t->nid;
    t->flags = calloc(nid + 1, 1);
    t->mstr_off = calloc(nid + 1, sizeof(uint32_t));
    t->mstr_len = calloc(nid + 1, sizeof(uint32_t));
    t->dec_off = calloc(nid + 1, sizeof(uint32_t));
    t->dec_len = calloc(nid + 1, sizeof(uint32_t));
    t->added_of = malloc((nid + 1) * sizeof(int32_t));
    if (!t->flags || !t->mstr_off || !t->mstr_len || !t->dec_off || !t->dec_len || !t->added_of) return NOMEM(t);
    for (size_t k = 0; k < nid; k++) t->added_of[k] = -1;
    if (smap_init(&t->model, nvocab) || smap_init(&t->model_raw, nvocab)) return NOMEM(t);

    for (x = vocab->child; x; x = x->next) {
        id = (int32_t)x->valuedouble;
        size_t len = strlen(x->string);
        size_t bad = utf8_check(x->string, len);
        if (bad < len)
            return RS_ERROR(RS_EINVAL, "%s: model.vocab: token with id %d is not valid UTF-8 (byte %zu)", t->name,
                            id, bad);
        if (t->flags[id] & F_MODEL)
            return RS_ERROR(RS_EINVAL, "%s: model.vocab: id %d is given to two tokens (\"%s\" and \"%s\")", t->name,
                            id, t->arena.v + t->mstr_off[id], x->string);
        uint32_t off;
        if ((rc = arena_put(t, x->string, len, &off))) return rc;
        if (smap_put(&t->model, t->arena.v, off, (uint32_t)len, id) >= 0)
            return RS_ERROR(RS_EINVAL, "%s: model.vocab: token \"%s\" appears twice", t->name, x->string);
        t->flags[id] |= F_MODEL;
        t->mstr_off[id] = off;
        t->mstr_len[id] = (uint32_t)len;
    }
    /* raw bytes of the byte-level tokens, and the one-byte tokens */
    size_t maxlen = 0;
    for (id = 0; id < t->nid; id++) maxlen = t->mstr_len[id] > maxlen ? t->mstr_len[id] : maxlen;
    char *buf = malloc(maxlen + 1); /* decoded bytes are never longer than the token */
    if (!buf) return NOMEM(t);
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (id = 0; id < t->nid; id++) {
        if (!(t->flags[id] & F_MODEL)) continue;
        size_t n;
        if (!byte_level_decode(t->arena.v + t->mstr_off[id], t->mstr_len[id], u2b, buf, &n)) continue;
        uint32_t off;
        if ((rc = arena_put(t, buf, n, &off))) { free(buf); return rc; }
        smap_put(&t->model_raw, t->arena.v, off, (uint32_t)n, id);
        if (n == 1) t->byte_id[(unsigned char)buf[0]] = id;
    }
    free(buf);

    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    t->unk_id = -1;
    if (unk && !cJSON_IsNull(unk)) {
        if (!cJSON_IsString(unk))
            return RS_ERROR(RS_EINVAL, "%s: model.unk_token must be a string or null, not %s", t->name, llm_json_type(unk));
        t->unk_id = smap_get(&t->model, t->arena.v, unk->valuestring, strlen(unk->valuestring));
        if (t->unk_id < 0)
            return RS_ERROR(RS_EINVAL, "%s: model.unk_token \"%s\" is not in model.vocab", t->name, unk->valuestring);
    }

    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (merges && !cJSON_IsArray(merges))
        return RS_ERROR(RS_EINVAL, "%s: model.merges must be an array, not %s", t->name, llm_json_type(merges));
    size_t nm = 0;
    for (x = merges ? merges->child : NULL; x; x = x->next) nm++;
    t->merges.cap = 16;
    while (t->merges.cap < 2 * nm + 2) t->merges.cap *= 2;
    t->merges.s = malloc(t->merges.cap * sizeof(pmap_slot));
    if (!t->merges.s) return NOMEM(t);
    for (size_t k = 0; k < t->merges.cap; k++) t->merges.s[k].key = PMAP_EMPTY;
    cvec tmp = {0};
    i = 0;
    for (x = merges ? merges->child : NULL; x; x = x->next, i++) {
        int32_t a = -1, b = -1, ab = -1;
        if ((rc = merge_ids(t, x, i, &a, &b, &ab, &tmp))) { free(tmp.v); return rc; }
        uint64_t k = pair_key(a, b);
        size_t mask = t->merges.cap - 1, j = pair_hash(k) & mask;
        while (t->merges.s[j].key != PMAP_EMPTY && t->merges.s[j].key != k) j = (j + 1) & mask;
        t->merges.s[j].key = k; /* a repeated pair keeps its last rank, as HF's HashMap */
        t->merges.s[j].rank = (int32_t)i;
        t->merges.s[j].id = ab;
    }
    free(tmp.v);
    return 0;
}

static int cmp_added(const void *pa, const void *pb, void *ctx)
{
    const tok_tokenizer *t = ctx;
    const added_tok *a = &t->added[*(const int32_t *)pa], *b = &t->added[*(const int32_t *)pb];
    unsigned ca = (unsigned char)t->arena.v[a->off], cb = (unsigned char)t->arena.v[b->off];
    if (ca != cb) return ca < cb ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return *(const int32_t *)pa - *(const int32_t *)pb;
}

static int build_set(tok_tokenizer *t, added_set *s, int normalized)
{
    s->idx = malloc((t->nadded + 1) * sizeof(int32_t));
    if (!s->idx) return NOMEM(t);
    s->n = 0;
    for (size_t i = 0; i < t->nadded; i++)
        if (t->added[i].normalized == normalized && t->added[i].len) s->idx[s->n++] = (int32_t)i;
    qsort_r(s->idx, s->n, sizeof(int32_t), cmp_added, t);
    size_t j = 0;
    for (int c = 0; c <= 256; c++) {
        while (j < s->n && (unsigned char)t->arena.v[t->added[s->idx[j]].off] < c) j++;
        s->first[c] = (uint32_t)j;
    }
    return 0;
}

static int load_added(tok_tokenizer *t, const cJSON *added)
{
    size_t n = 0, i = 0;
    const cJSON *x;
    for (x = added ? added->child : NULL; x; x = x->next) n++;
    t->added = calloc(n + 1, sizeof(added_tok));
    if (!t->added || smap_init(&t->added_map, n)) return NOMEM(t);
    int rc;
    for (x = added ? added->child : NULL; x; x = x->next, i++) {
        char path[64];
        snprintf(path, sizeof path, "added_tokens[%zu]", i);
        added_tok *a = &t->added[i];
        a->id = (int32_t)cJSON_GetObjectItemCaseSensitive(x, "id")->valuedouble; /* checked in load_model */
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(x, "content");
        if (!cJSON_IsString(c) || !c->valuestring[0])
            return RS_ERROR(RS_EINVAL, "%s: %s.content must be a non-empty string", t->name, path);
        size_t len = strlen(c->valuestring), bad = utf8_check(c->valuestring, len);
        if (bad < len)
            return RS_ERROR(RS_EINVAL, "%s: %s.content is not valid UTF-8 (byte %zu)", t->name, path, bad);
        int single_word = 0;
        if ((rc = get_bool(t, x, "special", path, 0, &a->special)) || (rc = get_bool(t, x, "lstrip", path, 0, &a->lstrip)) ||
            (rc = get_bool(t, x, "rstrip", path, 0, &a->rstrip)) ||
            (rc = get_bool(t, x, "normalized", path, !a->special, &a->normalized)) ||
            (rc = get_bool(t, x, "single_word", path, 0, &single_word)))
            return rc;
        if (single_word) return RS_ERROR(RS_ENOTSUP, "%s: %s.single_word: true is not supported", t->name, path);
        if ((rc = arena_put(t, c->valuestring, len, &a->off))) return rc;
        a->len = (uint32_t)len;
        if (t->added_of[a->id] >= 0)
            return RS_ERROR(RS_EINVAL, "%s: %s: id %d is already the added token \"%s\"", t->name, path, a->id,
                            t->arena.v + t->added[t->added_of[a->id]].off);
        if (smap_put(&t->added_map, t->arena.v, a->off, a->len, a->id) >= 0)
            return RS_ERROR(RS_EINVAL, "%s: %s: content \"%s\" appears twice", t->name, path, c->valuestring);
        t->added_of[a->id] = (int32_t)i;
        t->flags[a->id] |= F_ADDED | (a->special ? F_SPECIAL : 0);
    }
    t->nadded = n;
    if ((rc = build_set(t, &t->set_raw, 0)) || (rc = build_set(t, &t->set_norm, 1))) return rc;
    return 0;
}

/* Decoded bytes per id: the added content (it wins, as HF's id_to_token) or the model token,
 * through the ByteLevel decoder. */
static int build_decode(tok_tokenizer *t, const int16_t u2b[324])
{
    size_t maxlen = 0;
    for (size_t i = 0; i < t->nadded; i++) maxlen = t->added[i].len > maxlen ? t->added[i].len : maxlen;
    for (int32_t id = 0; id < t->nid; id++) maxlen = t->mstr_len[id] > maxlen ? t->mstr_len[id] : maxlen;
    char *buf = malloc(maxlen + 1); /* decoded bytes are never longer than the token */
    if (!buf) return NOMEM(t);
    for (int32_t id = 0; id < t->nid; id++) {
        uint32_t off, len;
        if (t->added_of[id] >= 0) {
            off = t->added[t->added_of[id]].off;
            len = t->added[t->added_of[id]].len;
        } else if (t->flags[id] & F_MODEL) {
            off = t->mstr_off[id];
            len = t->mstr_len[id];
        } else {
            continue;
        }
        size_t n;
        byte_level_decode(t->arena.v + off, len, u2b, buf, &n);
        int rc = arena_put(t, buf, n, &t->dec_off[id]); /* may move the arena: buf is a copy */
        if (rc) { free(buf); return rc; }
        t->dec_len[id] = (uint32_t)n;
    }
    free(buf);
    return 0;
}

static int find_template(tok_tokenizer *t, const cJSON *p, const char *path, void *unused)
{
    if (!p || cJSON_IsNull(p)) return 0;
    const char *type;
    int rc = get_type(t, p, path, &type);
    if (rc) return rc;
    if (!strcmp(type, "ByteLevel")) return 0; /* offsets only */
    if (!strcmp(type, "Sequence")) return load_sequence(t, p, "processors", path, find_template, unused);
    if (strcmp(type, "TemplateProcessing"))
        return RS_ERROR(RS_ENOTSUP, "%s: %s.type: %s is not supported (TemplateProcessing, ByteLevel, Sequence)",
                        t->name, path, type);
    if (t->has_tpl) return RS_ERROR(RS_ENOTSUP, "%s: %s: a second TemplateProcessing is not supported", t->name, path);
    t->has_tpl = 1;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    if (!cJSON_IsArray(single))
        return RS_ERROR(RS_EINVAL, "%s: %s.single must be an array, not %s", t->name, path, llm_json_type(single));
    if (sp && !cJSON_IsObject(sp) && !cJSON_IsNull(sp))
        return RS_ERROR(RS_EINVAL, "%s: %s.special_tokens must be an object, not %s", t->name, path, llm_json_type(sp));
    ivec out = {0};
    size_t i = 0;
    int nseq = 0;
    for (const cJSON *x = single->child; x; x = x->next, i++) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(x, "Sequence");
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(x, "SpecialToken");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(seq ? seq : tok, "id");
        if ((!seq && !tok) || !cJSON_IsString(name)) {
            free(out.v);
            return RS_ERROR(RS_EINVAL, "%s: %s.single[%zu] must be {\"Sequence\": {\"id\": ...}} or "
                            "{\"SpecialToken\": {\"id\": ...}}", t->name, path, i);
        }
        if (seq) {
            if (strcmp(name->valuestring, "A") || nseq++) {
                free(out.v);
                return RS_ERROR(RS_EINVAL, "%s: %s.single[%zu]: a single template holds sequence A once", t->name,
                                path, i);
            }
            if (ivec_push(&out, -1)) { free(out.v); return NOMEM(t); }
            continue;
        }
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sp, name->valuestring), "ids");
        if (!cJSON_IsArray(ids)) {
            free(out.v);
            return RS_ERROR(RS_EINVAL, "%s: %s.special_tokens[\"%s\"].ids must be an array (the token is used in "
                            "single[%zu])", t->name, path, name->valuestring, i);
        }
        size_t j = 0;
        for (const cJSON *y = ids->child; y; y = y->next, j++) {
            int32_t id = -1;
            char sub[160];
            snprintf(sub, sizeof sub, "%s.special_tokens[\"%s\"].ids[%zu]", path, name->valuestring, j);
            if ((rc = check_id(t, y, sub, "id", &id))) { free(out.v); return rc; }
            if (id >= t->nid) {
                free(out.v);
                return RS_ERROR(RS_EINVAL, "%s: %s: id %d is not in the vocabulary", t->name, sub, id);
            }
            if (ivec_push(&out, id)) { free(out.v); return NOMEM(t); }
        }
    }
    if (!nseq) {
        free(out.v);
        return RS_ERROR(RS_EINVAL, "%s: %s.single has no {\"Sequence\": {\"id\": \"A\"}}", t->name, path);
    }
    t->tpl = out.v;
    t->ntpl = out.n;
    return 0;
}

static int load_root(tok_tokenizer *t, const cJSON *root)
{
    int rc;
    int32_t b2u[256];
    int16_t u2b[324];
    byte_alphabet(b2u, u2b);
    if (!cJSON_IsObject(root))
        return RS_ERROR(RS_EINVAL, "%s: the top level must be an object, not %s", t->name, llm_json_type(root));
    static const char *unsupported_if_set[] = {"truncation", "padding"};
    for (int i = 0; i < 2; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, unsupported_if_set[i]);
        if (x && !cJSON_IsNull(x))
            return RS_ERROR(RS_ENOTSUP, "%s: %s: only null is supported", t->name, unsupported_if_set[i]);
    }
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (cJSON_IsNull(added)) added = NULL;
    if ((rc = load_model(t, cJSON_GetObjectItemCaseSensitive(root, "model"), added, u2b))) return rc;
    if ((rc = load_added(t, added))) return rc;
    if ((rc = build_decode(t, u2b))) return rc;
    if ((rc = load_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "normalizer", NULL))) return rc;
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    int seen_bl = 0;
    if (pre && !cJSON_IsNull(pre) && (rc = load_pretok(t, pre, "pre_tokenizer", &seen_bl))) return rc;
    if (!seen_bl)
        return RS_ERROR(RS_ENOTSUP, "%s: pre_tokenizer: byte-level BPE needs a ByteLevel pre-tokenizer (last)", t->name);
    if ((rc = find_template(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), "post_processor", NULL))) return rc;
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    const char *type;
    if ((rc = get_type(t, dec, "decoder", &type))) return rc;
    if (strcmp(type, "ByteLevel"))
        return RS_ERROR(RS_ENOTSUP, "%s: decoder.type: %s is not supported (ByteLevel only)", t->name, type);
    return 0;
}

int tok_parse(tok_tokenizer **out, const char *json, size_t len, const char *name)
{
    if (!out) return RS_ERROR(RS_EINVAL, "tok_parse: NULL output");
    *out = NULL;
    if (!name) name = "tokenizer.json";
    if (!json && len) return RS_ERROR(RS_EINVAL, "%s: NULL text", name);
    tok_tokenizer *t = calloc(1, sizeof(*t));
    if (!t || !(t->name = strdup(name))) {
        free(t);
        return RS_ERROR(RS_ENOMEM, "%s: out of memory", name);
    }
    if (!len) {
        tok_free(t);
        return RS_ERROR(RS_EINVAL, "%s: empty text", name);
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        size_t off = (ep && ep >= json && ep <= json + len) ? (size_t)(ep - json) : len;
        size_t line = 1;
        for (size_t i = 0; i < off; i++) line += json[i] == '\n';
        int rc = RS_ERROR(RS_EINVAL, "%s: malformed JSON near byte %zu (line %zu)%s", name, off, line,
                          off >= len ? ": the text ends early" : "");
        tok_free(t);
        return rc;
    }
    for (size_t off = (size_t)(end - json); off < len; off++)
        if (!strchr(" \t\r\n", json[off]) || !json[off]) {
            cJSON_Delete(root);
            tok_free(t);
            return RS_ERROR(RS_EINVAL, "%s: unexpected data after the JSON value at byte %zu", name, off);
        }
    int rc = load_root(t, root);
    cJSON_Delete(root);
    if (rc) {
        tok_free(t);
        return rc;
    }
    *out = t;
    return RS_OK;
}

int tok_load(tok_tokenizer **out, const char *path)
{
    if (!out || !path) return RS_ERROR(RS_EINVAL, "tok_load: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return RS_ERROR(RS_EIO, "%s: cannot open: %s", path, strerror(errno));
    cvec b = {0};
    char chunk[1 << 16];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (cvec_put(&b, chunk, k)) {
            fclose(f);
            free(b.v);
            return RS_ERROR(RS_ENOMEM, "%s: out of memory", path);
        }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b.v);
        return RS_ERROR(RS_EIO, "%s: read error", path);
    }
    int rc = b.n ? tok_parse(out, b.v, b.n, path) : RS_ERROR(RS_EINVAL, "%s: empty file", path);
    free(b.v);
    return rc;
}

/* ---------------------------------------------------------------- encoding */

typedef struct { int32_t rank, pos, id; } merge_c;
typedef struct { int32_t id, prev, next, len; } sym;

typedef struct {
    ivec out;
    cvec buf[2];       /* pre-tokenizer buffers */
    svec pieces[2];
    struct { merge_c *v; size_t n, cap; } heap;
    struct { sym *v; size_t n, cap; } syms;
    pcre2_match_data *md;
    tok_pretok_cb cb; /* tok_pretokenize: pre-tokens go here instead of BPE */
    void *cb_ctx;
} enc_ws;

static inline int merge_less(merge_c a, merge_c b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static int heap_push(enc_ws *w, merge_c m)
{
    if (VEC_RESERVE(&w->heap, w->heap.n + 1)) return -1;
    size_t i = w->heap.n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!merge_less(m, w->heap.v[p])) break;
        w->heap.v[i] = w->heap.v[p];
        i = p;
    }
    w->heap.v[i] = m;
    return 0;
}

static merge_c heap_pop(enc_ws *w)
{
    merge_c top = w->heap.v[0], last = w->heap.v[--w->heap.n];
    size_t i = 0, n = w->heap.n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && merge_less(w->heap.v[c + 1], w->heap.v[c])) c++;
        if (!merge_less(w->heap.v[c], last)) break;
        w->heap.v[i] = w->heap.v[c];
        i = c;
    }
    if (n) w->heap.v[i] = last;
    return top;
}

/* BPE of one pre-token (raw bytes), appended to w->out. HF's Word::merge_all: the heap holds
 * candidate merges ordered by (rank, position); a popped candidate whose symbols changed is
 * skipped. */
static int bpe_piece(const tok_tokenizer *t, enc_ws *w, const unsigned char *s, size_t n)
{
    if (t->ignore_merges) {
        int32_t id = smap_get(&t->model_raw, t->arena.v, (const char *)s, n);
        if (id >= 0) return ivec_push(&w->out, id);
    }
    w->syms.n = 0;
    if (VEC_RESERVE(&w->syms, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[s[i]];
        if (id < 0) {
            if (t->unk_id < 0) continue; /* HF drops a char it cannot map when there is no unk */
            if (t->fuse_unk && w->syms.n && w->syms.v[w->syms.n - 1].id == t->unk_id) {
                w->syms.v[w->syms.n - 1].len++;
                continue;
            }
            id = t->unk_id;
        }
        sym *y = &w->syms.v[w->syms.n];
        y->id = id;
        y->len = 1;
        y->prev = (int32_t)w->syms.n - 1;
        y->next = (int32_t)w->syms.n + 1;
        w->syms.n++;
    }
    int32_t ns = (int32_t)w->syms.n;
    if (ns == 0) return 0;
    sym *y = w->syms.v;
    y[ns - 1].next = -1;
    w->heap.n = 0;
    for (int32_t i = 0; i + 1 < ns; i++) {
        const pmap_slot *m = pmap_get(&t->merges, y[i].id, y[i + 1].id);
        if (m && heap_push(w, (merge_c){m->rank, i, m->id})) return -1;
    }
    while (w->heap.n) {
        merge_c top = heap_pop(w);
        sym *cur = &y[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        sym *right = &y[cur->next];
        const pmap_slot *m = pmap_get(&t->merges, cur->id, right->id);
        if (!m || m->id != top.id) continue;
        cur->id = top.id;
        cur->len += right->len;
        right->len = 0;
        cur->next = right->next;
        if (cur->next >= 0) y[cur->next].prev = top.pos;
        if (cur->prev >= 0) {
            m = pmap_get(&t->merges, y[cur->prev].id, cur->id);
            if (m && heap_push(w, (merge_c){m->rank, cur->prev, m->id})) return -1;
        }
        if (cur->next >= 0) {
            m = pmap_get(&t->merges, cur->id, y[cur->next].id);
            if (m && heap_push(w, (merge_c){m->rank, top.pos, m->id})) return -1;
        }
    }
    for (int32_t i = 0; i >= 0; i = y[i].next)
        if (ivec_push(&w->out, y[i].id)) return -1;
    return 0;
}

/* Cut one piece (buffer offsets off..off+len) by a regex, HF's Split with a behaviour, pushing
 * the non-empty resulting pieces to `out`. */
static int split_piece(const tok_tokenizer *t, enc_ws *w, pcre2_code *re, int behavior, int invert,
                       const char *buf, size_t off, size_t len, svec *out)
{
    const char *s = buf + off;
    size_t pos = 0, prev = 0, first = out->n;
    int prev_match = 0;
    /* Each (start, end, is_match) of HF's find_matches goes through EMIT, which applies the
     * behaviour: Removed drops matches; MergedWithPrevious joins a match to the piece before;
     * MergedWithNext (HF folds the reversed list) joins a non-match to the match before it;
     * Contiguous joins runs of the same kind. */
#define EMIT(a, b, ism)                                                                               \
    do {                                                                                              \
        size_t a_ = (a), b_ = (b);                                                                    \
        int m_ = (ism) ^ invert;                                                                      \
        int join_ = 0;                                                                                \
        if (behavior == SPLIT_REMOVED && m_) { prev_match = m_; break; }                              \
        if (behavior == SPLIT_CONTIGUOUS) join_ = out->n > first && m_ == prev_match;                 \
        if (behavior == SPLIT_PREV) join_ = out->n > first && m_ && !prev_match;                      \
        if (behavior == SPLIT_NEXT) join_ = out->n > first && prev_match && !m_;                      \
        if (join_) out->v[out->n - 1].len = off + b_ - out->v[out->n - 1].off;                        \
        else if (svec_push(out, off + a_, b_ - a_)) return -1;                                        \
        prev_match = m_;                                                                              \
    } while (0)
    while (pos <= len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, pos, PCRE2_NO_UTF_CHECK, w->md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(re, (PCRE2_SPTR)s, len, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, w->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return RS_ERROR(RS_EINVAL, "%s: pre-tokenizer regex failed: %s", t->name, (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
        size_t a = ov[0], b = ov[1];
        if (a == b) { /* empty matches give empty pieces, which HF drops */
            if (a >= len) break;
            int sub, k = utf8_seq((const unsigned char *)s + a, len - a, &sub);
            pos = a + (size_t)(k ? k : 1);
            continue;
        }
        if (prev != a) EMIT(prev, a, 0);
        EMIT(a, b, 1);
        prev = pos = b;
    }
    if (prev != len) EMIT(prev, len, 0);
#undef EMIT
    return 0;
}

/* Pre-tokenize one normalized piece and BPE every pre-token. */
static int encode_piece(const tok_tokenizer *t, enc_ws *w, const char *s, size_t len)
{
    if (!len) return 0;
    int rc, cur = 0;
    const char *buf = s;
    w->pieces[0].n = 0;
    if (svec_push(&w->pieces[0], 0, len)) return -1;
    for (size_t k = 0; k <= t->nsplits; k++) {
        pcre2_code *re;
        int behavior = SPLIT_ISOLATED, invert = 0;
        if (k < t->nsplits) {
            re = t->splits[k].re;
            behavior = t->splits[k].behavior;
            invert = t->splits[k].invert;
        } else { /* ByteLevel */
            if (t->prefix_space) {
                cvec *nb = &w->buf[cur];
                svec *np = &w->pieces[1 - cur];
                nb->n = 0;
                np->n = 0;
                for (size_t i = 0; i < w->pieces[cur].n; i++) {
                    span p = w->pieces[cur].v[i];
                    size_t o = nb->n;
                    if (buf[p.off] != ' ' && cvec_put(nb, " ", 1)) return -1;
                    if (cvec_put(nb, buf + p.off, p.len) || svec_push(np, o, nb->n - o)) return -1;
                }
                buf = nb->v;
                cur = 1 - cur;
            }
            re = t->bl_re;
            if (!re) break;
        }
        svec *np = &w->pieces[1 - cur];
        np->n = 0;
        for (size_t i = 0; i < w->pieces[cur].n; i++)
            if ((rc = split_piece(t, w, re, behavior, invert, buf, w->pieces[cur].v[i].off, w->pieces[cur].v[i].len,
                                  np)))
                return rc;
        cur = 1 - cur;
    }
    for (size_t i = 0; i < w->pieces[cur].n; i++) {
        span p = w->pieces[cur].v[i];
        if (p.len && w->cb) {
            if ((rc = w->cb(w->cb_ctx, buf + p.off, p.len))) return rc;
        } else if (p.len && bpe_piece(t, w, (const unsigned char *)buf + p.off, p.len)) return -1;
    }
    return 0;
}

/* Leftmost-longest added token of `set` in s[from..n): returns 1 and the match. */
static int next_added(const tok_tokenizer *t, const added_set *set, const char *s, size_t n, size_t from,
                      size_t *ms, size_t *me, const added_tok **tok)
{
    if (!set->n) return 0;
    for (size_t i = from; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        for (uint32_t j = set->first[c]; j < set->first[c + 1]; j++) {
            const added_tok *a = &t->added[set->idx[j]];
            if (a->len <= n - i && memcmp(s + i, t->arena.v + a->off, a->len) == 0) {
                *ms = i;
                *me = i + a->len;
                *tok = a;
                return 1;
            }
        }
    }
    return 0;
}

/* HF's AddedVocabulary::find_matches: gaps go to `gap`, tokens to the output. lstrip/rstrip
 * take the whitespace beside the token into it. */
typedef int (*gap_fn)(const tok_tokenizer *t, enc_ws *w, const char *s, size_t len);

static int split_added(const tok_tokenizer *t, enc_ws *w, const added_set *set, const char *s, size_t n, gap_fn gap)
{
    size_t start_off = 0, from = 0, ms, me;
    const added_tok *a;
    int rc;
    while (next_added(t, set, s, n, from, &ms, &me, &a)) {
        from = me;
        if (a->lstrip) {
            size_t i = ms;
            while (i > start_off) {
                size_t j = i - 1;
                while (j > start_off && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
                int sub, k = utf8_seq((const unsigned char *)s + j, i - j, &sub);
                if (!k || !is_white(utf8_get((const unsigned char *)s + j, k))) break;
                i = j;
            }
            ms = i;
        }
        if (a->rstrip) {
            while (me < n) {
                int sub, k = utf8_seq((const unsigned char *)s + me, n - me, &sub);
                if (!k || !is_white(utf8_get((const unsigned char *)s + me, k))) break;
                me += (size_t)k;
            }
            from = me;
        }
        if (start_off < ms && (rc = gap(t, w, s + start_off, ms - start_off))) return rc;
        if (ivec_push(&w->out, a->id)) return -1;
        start_off = me;
    }
    if (start_off < n && (rc = gap(t, w, s + start_off, n - start_off))) return rc;
    return 0;
}

static int gap_normalized(const tok_tokenizer *t, enc_ws *w, const char *s, size_t len)
{
    return split_added(t, w, &t->set_norm, s, len, encode_piece);
}

static int gap_raw(const tok_tokenizer *t, enc_ws *w, const char *s, size_t len)
{
    int ascii = 1;
    for (size_t i = 0; i < len && ascii; i++) ascii = (unsigned char)s[i] < 0x80;
    if (!t->nfc || ascii) return gap_normalized(t, w, s, len);
    utf8proc_uint8_t *nf = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &nf,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m < 0) {
        free(nf);
        return RS_ERROR(m == UTF8PROC_ERROR_NOMEM ? RS_ENOMEM : RS_EINVAL, "%s: NFC failed: %s", t->name,
                        utf8proc_errmsg(m));
    }
    int rc = gap_normalized(t, w, (const char *)nf, (size_t)m);
    free(nf);
    return rc;
}

int tok_pretokenize(const tok_tokenizer *t, const char *text, size_t len, tok_pretok_cb cb, void *ctx)
{
    if (!t || !cb || (!text && len)) return RS_ERROR(RS_EINVAL, "tok_pretokenize: NULL argument");
    size_t bad = utf8_check(text, len);
    if (bad < len)
        return RS_ERROR(RS_EINVAL, "%s: input is not valid UTF-8 at byte %zu (0x%02x)", t->name, bad,
                        (unsigned char)text[bad]);
    enc_ws w;
    memset(&w, 0, sizeof w);
    w.cb = cb;
    w.cb_ctx = ctx;
    int rc = 0;
    if (t->nsplits + !!t->bl_re && !(w.md = pcre2_match_data_create(1, NULL))) rc = -1;
    if (!rc && len) rc = split_added(t, &w, &t->set_raw, text, len, gap_raw);
    pcre2_match_data_free(w.md);
    free(w.buf[0].v);
    free(w.buf[1].v);
    free(w.pieces[0].v);
    free(w.pieces[1].v);
    free(w.out.v);
    return rc < 0 ? RS_ERROR(RS_ENOMEM, "%s: out of memory while pre-tokenizing", t->name) : rc;
}

int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int flags, int32_t **ids, size_t *n)
{
    if (!t || !ids || !n || (!text && len)) return RS_ERROR(RS_EINVAL, "tok_encode: NULL argument");
    *ids = NULL;
    *n = 0;
    size_t bad = utf8_check(text, len);
    if (bad < len)
        return RS_ERROR(RS_EINVAL, "%s: input is not valid UTF-8 at byte %zu (0x%02x)", t->name, bad,
                        (unsigned char)text[bad]);
    enc_ws w;
    memset(&w, 0, sizeof w);
    int rc = 0;
    size_t a_at = 0; /* where $A goes in the template */
    int tpl = (flags & TOK_ADD_SPECIAL) && t->has_tpl;
    if (tpl)
        for (; a_at < t->ntpl && t->tpl[a_at] >= 0; a_at++)
            if (ivec_push(&w.out, t->tpl[a_at])) rc = -1;
    if (!rc && t->nsplits + !!t->bl_re) {
        if (!(w.md = pcre2_match_data_create(1, NULL))) rc = -1; /* only the whole match is read */
    }
    if (!rc && len) rc = split_added(t, &w, &t->set_raw, text, len, gap_raw);
    if (!rc && tpl)
        for (size_t i = a_at + 1; i < t->ntpl; i++)
            if (ivec_push(&w.out, t->tpl[i])) rc = -1;
    pcre2_match_data_free(w.md);
    free(w.buf[0].v);
    free(w.buf[1].v);
    free(w.pieces[0].v);
    free(w.pieces[1].v);
    free(w.heap.v);
    free(w.syms.v);
    if (rc) {
        free(w.out.v);
        return rc < 0 ? RS_ERROR(RS_ENOMEM, "%s: out of memory while encoding", t->name) : rc;
    }
    if (!w.out.v) w.out.v = malloc(sizeof(int32_t)); /* a valid pointer even for no ids */
    if (!w.out.v) return RS_ERROR(RS_ENOMEM, "%s: out of memory while encoding", t->name);
    *ids = w.out.v;
    *n = w.out.n;
    return RS_OK;
}

/* ---------------------------------------------------------------- decoding and queries */

int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **out, size_t *len)
{
    if (!t || !out || (!ids && n)) return RS_ERROR(RS_EINVAL, "tok_decode: NULL argument");
    *out = NULL;
    if (len) *len = 0;
    cvec raw = {0};
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->nid || !(t->flags[id] & (F_MODEL | F_ADDED))) {
            free(raw.v);
            return RS_ERROR(RS_EINVAL, "%s: tok_decode: id %d at position %zu is not a token (vocabulary size %d)",
                            t->name, id, i, t->nid);
        }
        if (skip_special && (t->flags[id] & F_SPECIAL)) continue;
        if (cvec_put(&raw, t->arena.v + t->dec_off[id], t->dec_len[id])) {
            free(raw.v);
            return RS_ERROR(RS_ENOMEM, "%s: out of memory while decoding", t->name);
        }
    }
    /* from_utf8_lossy: each maximal invalid subpart becomes U+FFFD */
    cvec s = {0};
    int oom = VEC_RESERVE(&s, raw.n + 1);
    for (size_t i = 0; i < raw.n && !oom;) {
        int sub, k = utf8_seq((const unsigned char *)raw.v + i, raw.n - i, &sub);
        if (k) {
            oom = cvec_put(&s, raw.v + i, (size_t)k);
            i += (size_t)k;
        } else {
            oom = cvec_put(&s, "\xEF\xBF\xBD", 3);
            i += (size_t)sub;
        }
    }
    free(raw.v);
    if (!oom) oom = cvec_put(&s, "", 1);
    if (oom) {
        free(s.v);
        return RS_ERROR(RS_ENOMEM, "%s: out of memory while decoding", t->name);
    }
    *out = s.v;
    if (len) *len = s.n - 1;
    return RS_OK;
}

int tok_vocab_size(const tok_tokenizer *t) { return t ? t->nid : 0; }

int tok_token_id(const tok_tokenizer *t, const char *token)
{
    if (!t || !token) return -1;
    size_t n = strlen(token);
    int32_t id = smap_get(&t->added_map, t->arena.v, token, n);
    return id >= 0 ? id : smap_get(&t->model, t->arena.v, token, n);
}

const char *tok_token_str(const tok_tokenizer *t, int id)
{
    if (!t || id < 0 || id >= t->nid) return NULL;
    if (t->added_of[id] >= 0) return t->arena.v + t->added[t->added_of[id]].off;
    if (t->flags[id] & F_MODEL) return t->arena.v + t->mstr_off[id];
    return NULL;
}

int tok_is_special(const tok_tokenizer *t, int id)
{
    return t && id >= 0 && id < t->nid && (t->flags[id] & F_SPECIAL) != 0;
}
