/* rostesim LLM: byte-level BPE training (see bpe_train.h). */
#include "llm/text/bpe_train.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/text/tokenizer.h"
#include "quant/status.h"

#define NOMEM() RS_ERROR(RS_ENOMEM, "bpe_train: out of memory")

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ^ (h >> 32);
}

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

/* ---------------------------------------------------------------- words (pre-token -> count) */

typedef struct {
    char *arena;
    size_t an, acap;
    size_t *off, *len; /* per word */
    long *count;
    size_t n, cap;
    size_t *slot; /* hash table of word indices + 1 */
    size_t scap;
    size_t total;
} wordmap;

static int wm_grow(wordmap *w)
{
    size_t nc = w->scap ? 2 * w->scap : 1 << 16;
    size_t *ns = calloc(nc, sizeof(size_t));
    if (!ns) return -1;
    for (size_t i = 0; i < w->n; i++) {
        size_t j = fnv(w->arena + w->off[i], w->len[i]) & (nc - 1);
        while (ns[j]) j = (j + 1) & (nc - 1);
        ns[j] = i + 1;
    }
    free(w->slot);
    w->slot = ns;
    w->scap = nc;
    return 0;
}

static int wm_add(void *ctx, const char *s, size_t n)
{
    wordmap *w = ctx;
    w->total++;
    if (2 * (w->n + 1) > w->scap && wm_grow(w)) return -1;
    size_t j = fnv(s, n) & (w->scap - 1);
    while (w->slot[j]) {
        size_t i = w->slot[j] - 1;
        if (w->len[i] == n && !memcmp(w->arena + w->off[i], s, n)) { w->count[i]++; return 0; }
        j = (j + 1) & (w->scap - 1);
    }
    if (w->n == w->cap) {
        size_t c = w->cap ? 2 * w->cap : 4096;
        size_t *o = realloc(w->off, c * sizeof(size_t)), *l = o ? realloc(w->len, c * sizeof(size_t)) : NULL;
        long *k = l ? realloc(w->count, c * sizeof(long)) : NULL;
        if (o) w->off = o;
        if (l) w->len = l;
        if (k) w->count = k;
        if (!k) return -1;
        w->cap = c;
    }
    if (w->an + n > w->acap) {
        size_t c = w->acap ? 2 * w->acap : 1 << 20;
        while (c < w->an + n) c *= 2;
        char *a = realloc(w->arena, c);
        if (!a) return -1;
        w->arena = a;
        w->acap = c;
    }
    memcpy(w->arena + w->an, s, n);
    w->off[w->n] = w->an;
    w->len[w->n] = n;
    w->count[w->n] = 1;
    w->an += n;
    w->slot[j] = ++w->n;
    return 0;
}

static void wm_free(wordmap *w)
{
    free(w->arena);
    free(w->off);
    free(w->len);
    free(w->count);
    free(w->slot);
}

/* ---------------------------------------------------------------- pair -> count */

typedef struct { uint64_t *key; long *val; size_t cap, n; } pcount;
#define PEMPTY UINT64_MAX

static inline uint64_t pkey(uint32_t a, uint32_t b) { return (uint64_t)a << 32 | b; }

static long *pc_ref(pcount *m, uint64_t k)
{
    if (2 * (m->n + 1) > m->cap) {
        size_t nc = m->cap ? 2 * m->cap : 1 << 16;
        uint64_t *nk = malloc(nc * sizeof(uint64_t));
        long *nv = malloc(nc * sizeof(long));
        if (!nk || !nv) { free(nk); free(nv); return NULL; }
        for (size_t i = 0; i < nc; i++) nk[i] = PEMPTY;
        for (size_t i = 0; i < m->cap; i++) {
            if (m->key[i] == PEMPTY) continue;
            size_t j = mix(m->key[i]) & (nc - 1);
            while (nk[j] != PEMPTY) j = (j + 1) & (nc - 1);
            nk[j] = m->key[i];
            nv[j] = m->val[i];
        }
        free(m->key);
        free(m->val);
        m->key = nk;
        m->val = nv;
        m->cap = nc;
    }
    size_t j = mix(k) & (m->cap - 1);
    while (m->key[j] != PEMPTY && m->key[j] != k) j = (j + 1) & (m->cap - 1);
    if (m->key[j] == PEMPTY) { m->key[j] = k; m->val[j] = 0; m->n++; }
    return &m->val[j];
}

/* ---------------------------------------------------------------- pair -> words where it was (re)created */

typedef struct { uint32_t *v; size_t n, cap; } u32vec;

static int u32_push(u32vec *a, uint32_t x)
{
    if (a->n && a->v[a->n - 1] == x) return 0; /* a word's changes come together: set semantics */
    if (a->n == a->cap) {
        size_t c = a->cap ? 2 * a->cap : 4;
        uint32_t *p = realloc(a->v, c * sizeof(uint32_t));
        if (!p) return -1;
        a->v = p;
        a->cap = c;
    }
    a->v[a->n++] = x;
    return 0;
}

typedef struct {
    uint64_t *key;  /* hash: pair -> index in list */
    size_t *idx;
    size_t cap;
    uint64_t *pair; /* insertion order */
    u32vec *pos;
    size_t n, lcap;
} where_map;

static u32vec *wh_get(where_map *m, uint64_t k)
{
    if (2 * (m->n + 1) > m->cap) {
        size_t nc = m->cap ? 2 * m->cap : 1 << 12;
        uint64_t *nk = malloc(nc * sizeof(uint64_t));
        size_t *ni = malloc(nc * sizeof(size_t));
        if (!nk || !ni) { free(nk); free(ni); return NULL; }
        for (size_t i = 0; i < nc; i++) nk[i] = PEMPTY;
        for (size_t i = 0; i < m->n; i++) {
            size_t j = mix(m->pair[i]) & (nc - 1);
            while (nk[j] != PEMPTY) j = (j + 1) & (nc - 1);
            nk[j] = m->pair[i];
            ni[j] = i;
        }
        free(m->key);
        free(m->idx);
        m->key = nk;
        m->idx = ni;
        m->cap = nc;
    }
    size_t j = mix(k) & (m->cap - 1);
    while (m->key[j] != PEMPTY && m->key[j] != k) j = (j + 1) & (m->cap - 1);
    if (m->key[j] != PEMPTY) return &m->pos[m->idx[j]];
    if (m->n == m->lcap) {
        size_t c = m->lcap ? 2 * m->lcap : 1024;
        uint64_t *p = realloc(m->pair, c * sizeof(uint64_t));
        if (!p) return NULL;
        m->pair = p;
        u32vec *q = realloc(m->pos, c * sizeof(u32vec));
        if (!q) return NULL;
        m->pos = q;
        m->lcap = c;
    }
    m->key[j] = k;
    m->idx[j] = m->n;
    m->pair[m->n] = k;
    memset(&m->pos[m->n], 0, sizeof(u32vec));
    return &m->pos[m->n++];
}

/* empty the map (the position lists have been handed over) */
static void wh_clear(where_map *m)
{
    for (size_t i = 0; i < m->cap; i++) m->key[i] = PEMPTY;
    m->n = 0;
}

/* ---------------------------------------------------------------- the heap (HF's Merge order) */

typedef struct {
    long count;
    uint64_t pair;
    uint64_t seq; /* insertion order: equal (count, pair) entries pop oldest first */
    u32vec pos;
} entry;

typedef struct { entry *v; size_t n, cap; uint64_t seq; } heap;

static int before(const entry *x, const entry *y) /* x pops before y */
{
    if (x->count != y->count) return x->count > y->count;
    if (x->pair != y->pair) return x->pair < y->pair;
    return x->seq < y->seq;
}

static int heap_push(heap *h, long count, uint64_t pair, u32vec pos)
{
    if (h->n == h->cap) {
        size_t c = h->cap ? 2 * h->cap : 1 << 12;
        entry *p = realloc(h->v, c * sizeof(entry));
        if (!p) return -1;
        h->v = p;
        h->cap = c;
    }
    size_t i = h->n++;
    h->v[i] = (entry){count, pair, h->seq++, pos};
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&h->v[i], &h->v[p])) break;
        entry t = h->v[i];
        h->v[i] = h->v[p];
        h->v[p] = t;
        i = p;
    }
    return 0;
}

static entry heap_pop(heap *h)
{
    entry top = h->v[0];
    h->v[0] = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && before(&h->v[l], &h->v[m])) m = l;
        if (r < h->n && before(&h->v[r], &h->v[m])) m = r;
        if (m == i) break;
        entry t = h->v[i];
        h->v[i] = h->v[m];
        h->v[m] = t;
        i = m;
    }
    return top;
}

/* ---------------------------------------------------------------- vocabulary strings */

typedef struct {
    char **s;
    size_t n, cap;
    uint64_t *hkey; /* hash table: string -> id + 1 */
    size_t *hid;
    size_t hcap;
} vocab;

static long vocab_find(const vocab *v, const char *s)
{
    if (!v->hcap) return -1;
    size_t n = strlen(s), j = fnv(s, n) & (v->hcap - 1);
    while (v->hid[j]) {
        if (!strcmp(v->s[v->hid[j] - 1], s)) return (long)v->hid[j] - 1;
        j = (j + 1) & (v->hcap - 1);
    }
    return -1;
}

static int vocab_add(vocab *v, char *s) /* takes s */
{
    if (v->n == v->cap) {
        size_t c = v->cap ? 2 * v->cap : 1024;
        char **p = realloc(v->s, c * sizeof(char *));
        if (!p) return -1;
        v->s = p;
        v->cap = c;
    }
    if (2 * (v->n + 1) > v->hcap) {
        size_t nc = v->hcap ? 2 * v->hcap : 1 << 12;
        size_t *ni = calloc(nc, sizeof(size_t));
        if (!ni) return -1;
        for (size_t i = 0; i < v->n; i++) {
            size_t j = fnv(v->s[i], strlen(v->s[i])) & (nc - 1);
            while (ni[j]) j = (j + 1) & (nc - 1);
            ni[j] = i + 1;
        }
        free(v->hid);
        v->hid = ni;
        v->hcap = nc;
    }
    v->s[v->n++] = s;
    size_t j = fnv(s, strlen(s)) & (v->hcap - 1);
    while (v->hid[j]) j = (j + 1) & (v->hcap - 1);
    v->hid[j] = v->n;
    return 0;
}

/* ---------------------------------------------------------------- training */

typedef struct { uint32_t *sym; uint32_t n; } word;

/* HF's Word::merge: replace every (a, b) left to right; report pair count changes. */
typedef struct { uint64_t pair; int delta; } change;
typedef struct { change *v; size_t n, cap; } chvec;

static int ch_push(chvec *c, uint32_t a, uint32_t b, int d)
{
    if (c->n == c->cap) {
        size_t k = c->cap ? 2 * c->cap : 64;
        change *p = realloc(c->v, k * sizeof(change));
        if (!p) return -1;
        c->v = p;
        c->cap = k;
    }
    c->v[c->n++] = (change){pkey(a, b), d};
    return 0;
}

static int word_merge(word *w, uint32_t a, uint32_t b, uint32_t rep, chvec *ch)
{
    uint32_t *s = w->sym;
    uint32_t n = w->n;
    for (uint32_t i = 0; i < n; i++) {
        if (s[i] != a || i + 1 >= n || s[i + 1] != b) continue;
        uint32_t second = s[i + 1];
        if (i > 0 && (ch_push(ch, s[i - 1], a, -1) || ch_push(ch, s[i - 1], rep, 1))) return -1;
        s[i] = rep;
        memmove(s + i + 1, s + i + 2, (n - i - 2) * sizeof(uint32_t));
        n--;
        if (i + 1 < n && (ch_push(ch, second, s[i + 1], -1) || ch_push(ch, rep, s[i + 1], 1))) return -1;
    }
    w->n = n;
    return 0;
}

static void byte_alphabet(int32_t b2u[256])
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        b2u[b] = printable ? b : 256 + n++;
    }
}

static size_t put_utf8(char *o, int32_t c)
{
    if (c < 0x80) { o[0] = (char)c; return 1; }
    o[0] = (char)(0xC0 | (c >> 6));
    o[1] = (char)(0x80 | (c & 0x3F));
    return 2; /* the alphabet stays below U+0800 */
}

void bpe_result_free(bpe_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nvocab; i++) free(r->vocab[i]);
    for (size_t i = 0; i < r->nmerges; i++) { free(r->merge_a[i]); free(r->merge_b[i]); }
    free(r->vocab);
    free(r->merge_a);
    free(r->merge_b);
    memset(r, 0, sizeof *r);
}

void bpe_result_spec(const bpe_result *r, const bpe_train_opts *o, tok_spec *s, int *added_id, int *added_special)
{
    for (size_t i = 0; i < o->nspecial; i++) { added_id[i] = (int)i; added_special[i] = 1; }
    *s = (tok_spec){.pre = o->pre, .nfc = o->nfc, .nvocab = r->nvocab, .vocab = (const char *const *)r->vocab,
                    .nmerges = r->nmerges, .merge_a = (const char *const *)r->merge_a,
                    .merge_b = (const char *const *)r->merge_b, .nadded = o->nspecial, .added = o->special,
                    .added_id = added_id, .added_special = added_special, .bos_prepend = NULL};
}

int bpe_train(const char *text, size_t len, const bpe_train_opts *o, bpe_result *r)
{
    memset(r, 0, sizeof *r);
    if (o->vocab_size < o->nspecial + 256)
        return RS_ERROR(RS_EINVAL, "vocabulary size %zu is below the %zu special tokens + 256 byte tokens", o->vocab_size,
                        o->nspecial);
    int rc = 0;
    int32_t b2u[256];
    byte_alphabet(b2u);
    /* vocabulary: special tokens, then the alphabet in code-point order (b2u is increasing
     * over printable bytes, the others follow at 256..; sort by code point) */
    vocab v = {0};
    uint32_t byte_id[256];
    for (size_t i = 0; i < o->nspecial && !rc; i++) {
        char *s = strdup(o->special[i]);
        if (!s || vocab_add(&v, s)) { free(s); rc = NOMEM(); }
    }
    for (int32_t cp = 0; cp < 324 && !rc; cp++)
        for (int b = 0; b < 256; b++)
            if (b2u[b] == cp) {
                char buf[4];
                size_t k = put_utf8(buf, cp);
                char *s = strndup(buf, k);
                long have = s ? vocab_find(&v, s) : -1;
                if (!s) { rc = NOMEM(); break; }
                if (have >= 0) { byte_id[b] = (uint32_t)have; free(s); continue; } /* a special token equal to a byte */
                byte_id[b] = (uint32_t)v.n;
                if (vocab_add(&v, s)) { free(s); rc = NOMEM(); }
            }
    /* pre-tokenize with llm/text/tokenizer.c, on a tokenizer with the preset and the bare alphabet */
    tok_tokenizer *pt = NULL;
    wordmap wm = {0};
    if (!rc) {
        tok_spec s0 = {.pre = o->pre, .nfc = o->nfc, .nvocab = v.n, .vocab = (const char *const *)v.s};
        char *json = NULL;
        size_t jn = 0;
        rc = tok_write_json_buf(&s0, &json, &jn);
        if (!rc) rc = tok_parse(&pt, json, jn, "bpe_train pre-tokenizer");
        free(json);
    }
    size_t line = 1;
    for (size_t i = 0; !rc && i < len; line++) {
        const char *e = memchr(text + i, '\n', len - i);
        size_t j = e ? (size_t)(e - text) + 1 : len; /* lines keep their "\n" */
        rc = tok_pretokenize(pt, text + i, j - i, wm_add, &wm);
        if (rc > 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", rs_last_error());
            rc = RS_ERROR(rc, "corpus line %zu: %s", line, msg);
        }
        else if (rc < 0) rc = NOMEM();
        i = j;
    }
    tok_free(pt);
    /* words as symbol ids */
    size_t nw = wm.n;
    word *w = rc ? NULL : calloc(nw + 1, sizeof(word));
    uint32_t *symstore = rc ? NULL : malloc((wm.an + 1) * sizeof(uint32_t));
    if (!rc && (!w || !symstore)) rc = NOMEM();
    size_t so = 0;
    for (size_t i = 0; !rc && i < nw; i++) {
        w[i].sym = symstore + so;
        w[i].n = (uint32_t)wm.len[i];
        for (size_t k = 0; k < wm.len[i]; k++) w[i].sym[k] = byte_id[(unsigned char)wm.arena[wm.off[i] + k]];
        so += wm.len[i];
    }
    /* count pairs, queue them */
    pcount pc = {0};
    where_map wh = {0};
    heap h = {0};
    chvec ch = {0};
    for (size_t i = 0; !rc && i < nw; i++)
        for (uint32_t k = 0; k + 1 < w[i].n && !rc; k++) {
            uint64_t p = pkey(w[i].sym[k], w[i].sym[k + 1]);
            long *c = pc_ref(&pc, p);
            u32vec *pos = c ? wh_get(&wh, p) : NULL;
            if (!pos || u32_push(pos, (uint32_t)i)) { rc = NOMEM(); break; }
            *c += wm.count[i];
        }
    for (size_t i = 0; !rc && i < wh.n; i++) {
        long c = *pc_ref(&pc, wh.pair[i]);
        if (c > 0) { if (heap_push(&h, c, wh.pair[i], wh.pos[i])) rc = NOMEM(); }
        else free(wh.pos[i].v);
    }
    if (!rc && wh.cap) wh_clear(&wh);
    /* merges */
    size_t mcap = 0;
    uint64_t *mpair = NULL;
    while (!rc && v.n < o->vocab_size && h.n) {
        entry top = heap_pop(&h);
        long cur = *pc_ref(&pc, top.pair);
        if (top.count != cur) {
            top.count = cur;
            if (heap_push(&h, cur, top.pair, top.pos)) { free(top.pos.v); rc = NOMEM(); }
            continue;
        }
        if (top.count < 1 || top.count < o->min_frequency) { free(top.pos.v); break; }
        uint32_t a = (uint32_t)(top.pair >> 32), b = (uint32_t)top.pair;
        size_t la = strlen(v.s[a]), lb = strlen(v.s[b]);
        char *ns = malloc(la + lb + 1);
        if (!ns) { free(top.pos.v); rc = NOMEM(); break; }
        memcpy(ns, v.s[a], la);
        memcpy(ns + la, v.s[b], lb + 1);
        long id = vocab_find(&v, ns);
        if (id < 0) {
            id = (long)v.n;
            if (vocab_add(&v, ns)) { free(ns); free(top.pos.v); rc = NOMEM(); break; }
        } else {
            free(ns);
        }
        if (r->nmerges == mcap) {
            mcap = mcap ? 2 * mcap : 1024;
            uint64_t *p = realloc(mpair, mcap * sizeof(uint64_t));
            if (!p) { free(top.pos.v); rc = NOMEM(); break; }
            mpair = p;
        }
        mpair[r->nmerges++] = top.pair;
        for (size_t q = 0; q < top.pos.n && !rc; q++) {
            uint32_t iw = top.pos.v[q];
            ch.n = 0;
            if (word_merge(&w[iw], a, b, (uint32_t)id, &ch)) { rc = NOMEM(); break; }
            for (size_t k = 0; k < ch.n; k++) {
                long *c = pc_ref(&pc, ch.v[k].pair);
                if (!c) { rc = NOMEM(); break; }
                *c += ch.v[k].delta * wm.count[iw];
                if (ch.v[k].delta > 0) {
                    u32vec *pos = wh_get(&wh, ch.v[k].pair);
                    if (!pos || u32_push(pos, iw)) { rc = NOMEM(); break; }
                }
            }
        }
        free(top.pos.v);
        for (size_t i = 0; i < wh.n; i++) {
            long c = rc ? 0 : *pc_ref(&pc, wh.pair[i]);
            if (c > 0) { if (heap_push(&h, c, wh.pair[i], wh.pos[i])) { free(wh.pos[i].v); rc = NOMEM(); } }
            else free(wh.pos[i].v);
        }
        if (wh.cap) wh_clear(&wh);
    }
    /* result: vocabulary; merges with a pair merged twice kept at its last rank */
    if (!rc) {
        r->vocab = v.s;
        r->nvocab = v.n;
        v.s = NULL;
        v.n = 0;
        size_t nm = r->nmerges;
        r->nmerges = 0;
        r->merge_a = malloc((nm + 1) * sizeof(char *));
        r->merge_b = malloc((nm + 1) * sizeof(char *));
        if (!r->merge_a || !r->merge_b) rc = NOMEM();
        for (size_t i = 0; !rc && i < nm; i++) {
            int later = 0;
            for (size_t k = i + 1; k < nm && !later; k++) later = mpair[k] == mpair[i];
            if (later) continue;
            r->merge_a[r->nmerges] = strdup(r->vocab[mpair[i] >> 32]);
            r->merge_b[r->nmerges] = strdup(r->vocab[(uint32_t)mpair[i]]);
            if (!r->merge_a[r->nmerges] || !r->merge_b[r->nmerges]) {
                free(r->merge_a[r->nmerges]);
                free(r->merge_b[r->nmerges]);
                rc = NOMEM();
                break;
            }
            r->nmerges++;
        }
        r->nwords = nw;
        r->ntokens = wm.total;
    }
    for (size_t i = 0; i < h.n; i++) free(h.v[i].pos.v);
    free(h.v);
    free(pc.key);
    free(pc.val);
    free(wh.key);
    free(wh.idx);
    free(wh.pair);
    free(wh.pos);
    free(ch.v);
    free(mpair);
    free(w);
    free(symstore);
    wm_free(&wm);
    for (size_t i = 0; i < v.n; i++) free(v.s[i]);
    free(v.s);
    free(v.hid);
    if (rc) bpe_result_free(r);
    return rc;
}
