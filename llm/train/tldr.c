/* rostesim LLM: the Debian TL;DR data set (see tldr.h). */
#include "llm/train/tldr.h"
#include "llm/io/fileio.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/status.h"

/* ---------------------------------------------------------------- small helpers */

typedef llm_buf sbuf;

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Append s[0..n) with whitespace runs collapsed to one space and trimmed; `sep` goes before it
 * when b is not empty and the piece is not. */
static void put_collapsed(sbuf *b, const char *s, size_t n, const char *sep)
{
    size_t i = 0;
    while (i < n && is_ws((unsigned char)s[i])) i++;
    while (n > i && is_ws((unsigned char)s[n - 1])) n--;
    if (i >= n) return;
    if (b->n && sep) llm_buf_put(b, sep, strlen(sep));
    int space = 0;
    for (; i < n; i++) {
        if (is_ws((unsigned char)s[i])) { space = 1; continue; }
        if (space) llm_buf_put(b, " ", 1);
        space = 0;
        llm_buf_put(b, s + i, 1);
    }
}

char *tldr_clean_desc(const char *s, size_t len)
{
    sbuf out = {0}, para = {0};
    llm_buf_put(&out, "", 0);
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && s[j] != '\n') j++;
        const char *l = s + i;
        size_t n = j - i;
        while (n && is_ws((unsigned char)l[n - 1])) n--;
        i = j + 1;
        size_t lead = 0;
        while (lead < n && l[lead] == ' ') lead++;
        if (n == 0 || (lead == 1 && n == 2 && l[1] == '.')) { /* paragraph separator */
            if (para.n) { put_collapsed(&out, para.v, para.n, "\n"); para.n = 0; }
            continue;
        }
        if (lead >= 2) { /* verbatim line */
            if (para.n) { put_collapsed(&out, para.v, para.n, "\n"); para.n = 0; }
            put_collapsed(&out, l, n, "\n");
            continue;
        }
        if (para.n) llm_buf_put(&para, " ", 1);
        llm_buf_put(&para, l, n);
    }
    if (para.n) put_collapsed(&out, para.v, para.n, "\n");
    free(para.v);
    if (out.oom || para.oom) { free(out.v); return NULL; }
    return out.v;
}

static size_t count_words(const char *s)
{
    size_t n = 0;
    int in = 0;
    for (; *s; s++) {
        int w = isalnum((unsigned char)*s) || ((unsigned char)*s >= 0x80);
        if (w && !in) n++;
        in = w;
    }
    return n;
}

/* ---------------------------------------------------------------- parsing */

void tldr_free(tldr_set *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].package);
        if (s->e[i].source != s->e[i].package) free(s->e[i].source);
        free(s->e[i].synopsis);
        free(s->e[i].desc);
    }
    free(s->e);
    memset(s, 0, sizeof *s);
}

typedef struct {
    char *package, *synopsis;
    sbuf desc;
    size_t line;
    int has_desc;
} stanza;

static int flush_stanza(tldr_set *s, stanza *st, size_t *cap, const char *name)
{
    if (!st->package) {
        if (st->has_desc) return RS_ERROR(RS_EINVAL, "%s:%zu: Description-en without a Package field", name, st->line);
        return 0;
    }
    if (!st->has_desc) {
        return RS_ERROR(RS_EINVAL, "%s:%zu: package %s has no Description-en field", name, st->line, st->package);
    }
    if (s->n == *cap) {
        size_t c = *cap ? 2 * *cap : 1024;
        tldr_entry *p = realloc(s->e, c * sizeof(*p));
        if (!p) return RS_ERROR(RS_ENOMEM, "%s: out of memory", name);
        s->e = p;
        *cap = c;
    }
    tldr_entry *e = &s->e[s->n];
    memset(e, 0, sizeof *e);
    e->package = st->package;
    e->source = st->package;
    sbuf syn = {0};
    llm_buf_put(&syn, "", 0);
    put_collapsed(&syn, st->synopsis, strlen(st->synopsis), NULL);
    free(st->synopsis);
    e->synopsis = syn.v;
    e->desc = tldr_clean_desc(st->desc.v ? st->desc.v : "", st->desc.n);
    free(st->desc.v);
    e->line = st->line;
    e->split = TLDR_DROPPED;
    memset(st, 0, sizeof *st);
    s->n++;
    if (!e->synopsis || !e->desc || syn.oom) return RS_ERROR(RS_ENOMEM, "%s: out of memory", name);
    return 0;
}

int tldr_parse(tldr_set *s, const char *text, size_t len, const char *name)
{
    memset(s, 0, sizeof *s);
    size_t cap = 0, lineno = 0;
    stanza st;
    memset(&st, 0, sizeof st);
    int in_desc = 0, rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        size_t j = i;
        while (j < len && text[j] != '\n') j++;
        const char *l = text + i;
        size_t n = j - i;
        i = j + 1;
        lineno++;
        if (memchr(l, 0, n)) { rc = RS_ERROR(RS_EINVAL, "%s:%zu: NUL byte", name, lineno); break; }
        if (n == 0 || (n == 1 && l[0] == '\r')) { /* end of stanza */
            rc = flush_stanza(s, &st, &cap, name);
            in_desc = 0;
            continue;
        }
        if (l[0] == ' ' || l[0] == '\t') { /* continuation */
            if (in_desc) {
                llm_buf_put(&st.desc, l, n);
                llm_buf_put(&st.desc, "\n", 1);
            } else if (!st.package && !st.has_desc) {
                rc = RS_ERROR(RS_EINVAL, "%s:%zu: continuation line outside a field", name, lineno);
            }
            continue;
        }
        const char *colon = memchr(l, ':', n);
        if (!colon) { rc = RS_ERROR(RS_EINVAL, "%s:%zu: expected \"Field: value\"", name, lineno); break; }
        size_t kn = (size_t)(colon - l);
        const char *v = colon + 1;
        size_t vn = n - kn - 1;
        while (vn && is_ws((unsigned char)*v)) { v++; vn--; }
        while (vn && is_ws((unsigned char)v[vn - 1])) vn--;
        in_desc = 0;
        if (kn == 7 && !memcmp(l, "Package", 7)) {
            if (st.package) { rc = RS_ERROR(RS_EINVAL, "%s:%zu: second Package field in a stanza", name, lineno); break; }
            if (!vn) { rc = RS_ERROR(RS_EINVAL, "%s:%zu: empty Package field", name, lineno); break; }
            st.package = strndup(v, vn);
            st.line = lineno;
        } else if (kn == 14 && !memcmp(l, "Description-en", 14)) {
            if (st.has_desc) { rc = RS_ERROR(RS_EINVAL, "%s:%zu: second Description-en field", name, lineno); break; }
            st.synopsis = strndup(v, vn);
            st.has_desc = 1;
            in_desc = 1;
            if (!st.line) st.line = lineno;
        }
        if ((st.package == NULL && kn == 7 && !memcmp(l, "Package", 7)) || (st.has_desc && !st.synopsis))
            rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", name);
    }
    if (!rc) rc = flush_stanza(s, &st, &cap, name);
    free(st.package);
    free(st.synopsis);
    free(st.desc.v);
    if (rc) tldr_free(s);
    return rc;
}

/* ---------------------------------------------------------------- string -> index map */

typedef struct { uint64_t *h; size_t *idx; size_t cap; } imap;

static int imap_init(imap *m, size_t n)
{
    m->cap = 16;
    while (m->cap < 2 * n + 2) m->cap *= 2;
    m->h = calloc(m->cap, sizeof(uint64_t));
    m->idx = malloc(m->cap * sizeof(size_t));
    if (!m->h || !m->idx) return -1;
    for (size_t i = 0; i < m->cap; i++) m->idx[i] = (size_t)-1;
    return 0;
}
static void imap_free(imap *m) { free(m->h); free(m->idx); }

/* Slot of key (strings compared through get(i)); empty slot when absent. */
typedef const char *(*key_fn)(const void *ctx, size_t i);
static size_t imap_find(const imap *m, const char *k, uint64_t h, key_fn get, const void *ctx)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (m->idx[i] == (size_t)-1) return i;
        if (m->h[i] == h && !strcmp(get(ctx, m->idx[i]), k)) return i;
    }
}

typedef struct { char **pkg, **src; } pkgsrc;
static const char *get_pkg(const void *ctx, size_t i) { return ((const pkgsrc *)ctx)->pkg[i]; }

int tldr_set_sources(tldr_set *s, const char *text, size_t len, const char *name)
{
    size_t cap = 0, n = 0, lineno = 0;
    pkgsrc ps = {NULL, NULL};
    char *pkg = NULL, *src = NULL;
    int rc = 0;
    for (size_t i = 0; i <= len && !rc;) {
        size_t j = i;
        while (j < len && text[j] != '\n') j++;
        const char *l = text + i;
        size_t ln = j < len ? j - i : len - i;
        if (i == len) ln = 0;
        i = j + 1;
        lineno++;
        if (ln == 0) {
            if (pkg) {
                if (n == cap) {
                    cap = cap ? 2 * cap : 1024;
                    char **a = realloc(ps.pkg, cap * sizeof(char *)), **b = a ? realloc(ps.src, cap * sizeof(char *)) : NULL;
                    if (a) ps.pkg = a;
                    if (b) ps.src = b;
                    if (!a || !b) { rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", name); break; }
                }
                ps.pkg[n] = pkg;
                ps.src[n] = src;
                n++;
                pkg = src = NULL;
            }
            if (i > len) break;
            continue;
        }
        if (ln > 8 && !memcmp(l, "Package:", 8)) {
            const char *v = l + 8;
            size_t vn = ln - 8;
            while (vn && is_ws((unsigned char)*v)) { v++; vn--; }
            while (vn && is_ws((unsigned char)v[vn - 1])) vn--;
            free(pkg);
            pkg = strndup(v, vn);
        } else if (ln > 7 && !memcmp(l, "Source:", 7)) {
            const char *v = l + 7;
            size_t vn = ln - 7;
            while (vn && is_ws((unsigned char)*v)) { v++; vn--; }
            size_t k = 0;
            while (k < vn && !is_ws((unsigned char)v[k])) k++; /* drop " (version)" */
            if (!k) { rc = RS_ERROR(RS_EINVAL, "%s:%zu: empty Source field", name, lineno); break; }
            free(src);
            src = strndup(v, k);
        }
    }
    free(pkg);
    free(src);
    imap m = {0};
    if (!rc && imap_init(&m, n)) rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", name);
    for (size_t k = 0; !rc && k < n; k++) {
        size_t slot = imap_find(&m, ps.pkg[k], fnv1a(ps.pkg[k], strlen(ps.pkg[k])), get_pkg, &ps);
        if (m.idx[slot] == (size_t)-1) { m.idx[slot] = k; m.h[slot] = fnv1a(ps.pkg[k], strlen(ps.pkg[k])); }
    }
    for (size_t k = 0; !rc && k < s->n; k++) {
        tldr_entry *e = &s->e[k];
        size_t slot = imap_find(&m, e->package, fnv1a(e->package, strlen(e->package)), get_pkg, &ps);
        if (m.idx[slot] == (size_t)-1) continue;
        s->n_source_found++;
        const char *so = ps.src[m.idx[slot]];
        if (!so || !strcmp(so, e->package)) continue;
        if (e->source != e->package) free(e->source);
        e->source = strdup(so);
        if (!e->source) { e->source = e->package; rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", name); }
    }
    imap_free(&m);
    for (size_t k = 0; k < n; k++) { free(ps.pkg[k]); free(ps.src[k]); }
    free(ps.pkg);
    free(ps.src);
    return rc;
}

/* ---------------------------------------------------------------- building */

static size_t uf_find(size_t *p, size_t x)
{
    while (p[x] != x) { p[x] = p[p[x]]; x = p[x]; }
    return x;
}
static void uf_union(size_t *p, size_t a, size_t b)
{
    a = uf_find(p, a);
    b = uf_find(p, b);
    if (a < b) p[b] = a;
    else if (b < a) p[a] = b;
}

static const char *get_desc(const void *ctx, size_t i) { return ((const tldr_set *)ctx)->e[i].desc; }
static const char *get_source(const void *ctx, size_t i) { return ((const tldr_set *)ctx)->e[i].source; }

typedef struct { const tldr_set *s; char **first; } fp_ctx;
static const char *get_first(const void *ctx, size_t i) { return ((const fp_ctx *)ctx)->first[i]; }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorted unique hashes of the lowercased alphanumeric words of s. */
static uint64_t *word_set(const char *s, size_t *n)
{
    size_t cap = count_words(s) + 1, k = 0;
    uint64_t *w = malloc(cap * sizeof(uint64_t));
    if (!w) return NULL;
    char buf[256];
    size_t bn = 0;
    for (const char *p = s;; p++) {
        int c = (unsigned char)*p;
        int in = c && (isalnum(c) || c >= 0x80);
        if (in) {
            if (bn < sizeof buf) buf[bn++] = (char)tolower(c);
        } else if (bn) {
            w[k++] = fnv1a(buf, bn);
            bn = 0;
        }
        if (!c) break;
    }
    qsort(w, k, sizeof(uint64_t), cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (!u || w[u - 1] != w[i]) w[u++] = w[i];
    *n = u;
    return w;
}

static double jaccard(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
    size_t i = 0, j = 0, inter = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) { inter++; i++; j++; }
        else if (a[i] < b[j]) i++;
        else j++;
    }
    size_t uni = na + nb - inter;
    return uni ? (double)inter / (double)uni : 1.0;
}

static int is_boiler(const tldr_entry *e)
{
    if (strstr(e->synopsis, "<insert") || strstr(e->desc, "<insert")) return 1;
    char low[512];
    size_t n = strlen(e->synopsis);
    if (n >= sizeof low) n = sizeof low - 1;
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)e->synopsis[i]);
    low[n] = 0;
    return strstr(low, "transitional") || strstr(low, "dummy package") || strstr(low, "dummy transitional");
}

typedef struct { size_t root, idx; } fam_item;
static int cmp_fam(const void *a, const void *b)
{
    const fam_item *x = a, *y = b;
    if (x->root != y->root) return x->root < y->root ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int tldr_build(tldr_set *s)
{
    size_t n = s->n;
    s->n_empty = s->n_boiler = s->n_short = s->n_exact = s->n_near = s->n_families = 0;
    s->n_split[0] = s->n_split[1] = s->n_split[2] = 0;
    int rc = 0;
    unsigned char *keep = calloc(n + 1, 1);
    size_t *parent = malloc((n + 1) * sizeof(size_t));
    char **first = calloc(n + 1, sizeof(char *));
    fam_item *items = malloc((n + 1) * sizeof(fam_item));
    imap md = {0}, ms = {0}, mf = {0};
    if (!keep || !parent || !first || !items || imap_init(&md, n) || imap_init(&ms, n) || imap_init(&mf, n)) {
        rc = RS_ERROR(RS_ENOMEM, "tldr: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        tldr_entry *e = &s->e[i];
        e->split = TLDR_DROPPED;
        parent[i] = i;
        if (!e->synopsis[0] || !e->desc[0]) { s->n_empty++; continue; }
        if (is_boiler(e)) { s->n_boiler++; continue; }
        if (count_words(e->desc) < TLDR_MIN_WORDS) { s->n_short++; continue; }
        uint64_t h = fnv1a(e->desc, strlen(e->desc));
        size_t slot = imap_find(&md, e->desc, h, get_desc, s);
        if (md.idx[slot] != (size_t)-1) { s->n_exact++; continue; }
        md.idx[slot] = i;
        md.h[slot] = h;
        keep[i] = 1;
    }
    /* families: same source, or same first paragraph of at least TLDR_MIN_WORDS words */
    fp_ctx fc = {s, first};
    for (size_t i = 0; i < n; i++) {
        if (!keep[i]) continue;
        tldr_entry *e = &s->e[i];
        uint64_t h = fnv1a(e->source, strlen(e->source));
        size_t slot = imap_find(&ms, e->source, h, get_source, s);
        if (ms.idx[slot] == (size_t)-1) { ms.idx[slot] = i; ms.h[slot] = h; }
        else uf_union(parent, ms.idx[slot], i);
        const char *nl = strchr(e->desc, '\n');
        first[i] = nl ? strndup(e->desc, (size_t)(nl - e->desc)) : strdup(e->desc);
        if (!first[i]) { rc = RS_ERROR(RS_ENOMEM, "tldr: out of memory"); goto done; }
        if (count_words(first[i]) < TLDR_MIN_WORDS) continue;
        h = fnv1a(first[i], strlen(first[i]));
        slot = imap_find(&mf, first[i], h, get_first, &fc);
        if (mf.idx[slot] == (size_t)-1) { mf.idx[slot] = i; mf.h[slot] = h; }
        else uf_union(parent, mf.idx[slot], i);
    }
    size_t ni = 0;
    for (size_t i = 0; i < n; i++)
        if (keep[i]) items[ni++] = (fam_item){uf_find(parent, i), i};
    qsort(items, ni, sizeof(fam_item), cmp_fam);
    /* near-duplicates within each family, then the family's split */
    for (size_t a = 0; a < ni;) {
        size_t b = a;
        while (b < ni && items[b].root == items[a].root) b++;
        size_t k = b - a;
        uint64_t **ws = calloc(k, sizeof(uint64_t *));
        size_t *wn = calloc(k, sizeof(size_t));
        if (!ws || !wn) { free(ws); free(wn); rc = RS_ERROR(RS_ENOMEM, "tldr: out of memory"); goto done; }
        const char *key = s->e[items[a].idx].source;
        for (size_t x = a; x < b; x++) {
            size_t i = items[x].idx;
            if (strcmp(s->e[i].source, key) < 0) key = s->e[i].source;
            if (k == 1) continue;
            ws[x - a] = word_set(s->e[i].desc, &wn[x - a]);
            if (!ws[x - a]) { rc = RS_ERROR(RS_ENOMEM, "tldr: out of memory"); break; }
            for (size_t y = a; y < x; y++)
                if (keep[items[y].idx] && jaccard(ws[x - a], wn[x - a], ws[y - a], wn[y - a]) >= TLDR_NEAR_JACCARD) {
                    keep[i] = 0;
                    s->n_near++;
                    break;
                }
        }
        for (size_t x = 0; x < k; x++) free(ws[x]);
        free(ws);
        free(wn);
        if (rc) goto done;
        unsigned bucket = (unsigned)(fnv1a(key, strlen(key)) % 100);
        int split = bucket < 90 ? TLDR_TRAIN : bucket < 95 ? TLDR_VALIDATION : TLDR_TEST;
        s->n_families++;
        for (size_t x = a; x < b; x++) {
            tldr_entry *e = &s->e[items[x].idx];
            e->family = items[a].idx;
            if (keep[items[x].idx]) { e->split = split; s->n_split[split]++; }
        }
        a = b;
    }
done:
    if (first)
        for (size_t i = 0; i < n; i++) free(first[i]);
    free(first);
    free(keep);
    free(parent);
    free(items);
    imap_free(&md);
    imap_free(&ms);
    imap_free(&mf);
    return rc;
}

char *tldr_jsonl(const tldr_entry *e)
{
    sbuf p = {0}, c = {0};
    llm_buf_put(&p, "Package: ", 9);
    llm_buf_put(&p, e->package, strlen(e->package));
    llm_buf_put(&p, "\n", 1);
    llm_buf_put(&p, e->desc, strlen(e->desc));
    llm_buf_put(&p, "\nTL;DR:", 7);
    llm_buf_put(&c, " ", 1);
    llm_buf_put(&c, e->synopsis, strlen(e->synopsis));
    char *out = NULL;
    cJSON *o = cJSON_CreateObject();
    if (o && !p.oom && !c.oom && cJSON_AddStringToObject(o, "prompt", p.v) &&
        cJSON_AddStringToObject(o, "completion", c.v)) {
        char *js = cJSON_PrintUnformatted(o);
        if (js) {
            size_t n = strlen(js);
            out = malloc(n + 2);
            if (out) { memcpy(out, js, n); out[n] = '\n'; out[n + 1] = 0; }
            free(js);
        }
    }
    cJSON_Delete(o);
    free(p.v);
    free(c.v);
    return out;
}

/* ---------------------------------------------------------------- SHA-256 (FIPS 180-4) */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, r) (((x) >> (r)) | ((x) << (32 - (r))))

static void sha_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void tldr_sha256_init(tldr_sha256 *c)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof h0);
    c->n = 0;
    c->nb = 0;
}

void tldr_sha256_update(tldr_sha256 *c, const void *data, size_t n)
{
    const unsigned char *p = data;
    c->n += n;
    while (n) {
        size_t k = 64 - c->nb < n ? 64 - c->nb : n;
        memcpy(c->buf + c->nb, p, k);
        c->nb += k;
        p += k;
        n -= k;
        if (c->nb == 64) { sha_block(c->h, c->buf); c->nb = 0; }
    }
}

void tldr_sha256_final(tldr_sha256 *c, char hex[65])
{
    uint64_t bits = c->n * 8;
    unsigned char pad = 0x80, z = 0;
    tldr_sha256_update(c, &pad, 1);
    while (c->nb != 56) tldr_sha256_update(c, &z, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(bits >> (56 - 8 * i));
    tldr_sha256_update(c, len, 8);
    for (int i = 0; i < 8; i++) snprintf(hex + 8 * i, 9, "%08x", c->h[i]);
}

void tldr_sha256_hex(const void *data, size_t n, char hex[65])
{
    tldr_sha256 c;
    tldr_sha256_init(&c);
    tldr_sha256_update(&c, data, n);
    tldr_sha256_final(&c, hex);
}
