/* rostesim LLM: ROUGE with rouge-score's semantics (see rouge.h). */
#include "llm/eval/rouge.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quant/status.h"

/* ---------------------------------------------------------------- Porter stemmer (NLTK) */

static int is_vowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

/* NLTK's _is_consonant: 'y' is a consonant at the start or after a vowel. */
static int cons(const char *w, size_t i)
{
    if (is_vowel(w[i])) return 0;
    if (w[i] != 'y') return 1;
    int neg = 0;
    while (i > 0 && w[i] == 'y') { neg = !neg; i--; }
    return (!is_vowel(w[i])) != neg;
}

/* m: the number of "vc" in the word's consonant/vowel pattern */
static int measure(const char *w, size_t n)
{
    int m = 0, prev_v = 0;
    for (size_t i = 0; i < n; i++) {
        int c = cons(w, i);
        if (c && prev_v) m++;
        prev_v = !c;
    }
    return m;
}

static int has_vowel(const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!cons(w, i)) return 1;
    return 0;
}

static int ends_double(const char *w, size_t n) { return n >= 2 && w[n - 1] == w[n - 2] && cons(w, n - 1); }

static int ends_cvc(const char *w, size_t n)
{
    if (n >= 3 && cons(w, n - 3) && !cons(w, n - 2) && cons(w, n - 1) && w[n - 1] != 'w' && w[n - 1] != 'x' &&
        w[n - 1] != 'y')
        return 1;
    return n == 2 && !cons(w, 0) && cons(w, 1); /* NLTK extension */
}

static int ends(const char *w, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n >= k && !memcmp(w + n - k, suf, k);
}

enum { C_NONE, C_M0, C_M1, C_M1CVC, C_ION, C_LOGI, C_LL };

typedef struct { const char *suf, *rep; int cond; } rule;

static int cond_ok(int cond, const char *w, size_t n, size_t stem_n)
{
    switch (cond) {
    case C_NONE: return 1;
    case C_M0: return measure(w, stem_n) > 0;
    case C_M1: return measure(w, stem_n) > 1;
    case C_M1CVC: return measure(w, stem_n) == 1 && ends_cvc(w, stem_n);
    case C_ION: return measure(w, stem_n) > 1 && (w[stem_n - 1] == 's' || w[stem_n - 1] == 't');
    case C_LOGI: return measure(w, n - 3) > 0; /* word[:-3] */
    case C_LL: return measure(w, n - 1) > 1;   /* word[:-1] */
    }
    return 0;
}

/* _apply_rule_list: the first rule whose suffix matches decides (condition false: unchanged).
 * w has room for n + 4 bytes. */
static void apply_rules(char *w, size_t *n, const rule *r, size_t nr)
{
    for (size_t i = 0; i < nr; i++) {
        if (!ends(w, *n, r[i].suf)) continue;
        size_t sn = *n - strlen(r[i].suf);
        if (cond_ok(r[i].cond, w, *n, sn)) {
            size_t k = strlen(r[i].rep);
            memcpy(w + sn, r[i].rep, k);
            *n = sn + k;
        }
        return;
    }
}

static void step1a(char *w, size_t *n)
{
    if (*n == 4 && ends(w, *n, "ies")) { *n = 3; return; } /* "ies" -> "ie" */
    static const rule r[] = {{"sses", "ss", C_NONE}, {"ies", "i", C_NONE}, {"ss", "ss", C_NONE}, {"s", "", C_NONE}};
    apply_rules(w, n, r, 4);
}

static void step1b(char *w, size_t *n)
{
    if (ends(w, *n, "ied")) { *n -= *n == 4 ? 1 : 2; return; } /* -> "ie" (4 letters) or "i" */
    if (ends(w, *n, "eed")) {
        if (measure(w, *n - 3) > 0) *n -= 1;
        return;
    }
    size_t sn;
    if (ends(w, *n, "ed") && has_vowel(w, *n - 2)) sn = *n - 2;
    else if (ends(w, *n, "ing") && has_vowel(w, *n - 3)) sn = *n - 3;
    else return;
    *n = sn;
    if (ends(w, sn, "at") || ends(w, sn, "bl") || ends(w, sn, "iz")) { w[(*n)++] = 'e'; return; }
    if (ends_double(w, sn)) {
        char last = w[sn - 1];
        if (last != 'l' && last != 's' && last != 'z') *n = sn - 1;
        return;
    }
    if (measure(w, sn) == 1 && ends_cvc(w, sn)) w[(*n)++] = 'e';
}

static void step1c(char *w, size_t *n)
{
    if (ends(w, *n, "y") && *n - 1 > 1 && cons(w, *n - 2)) w[*n - 1] = 'i';
}

static void step2(char *w, size_t *n)
{
    while (ends(w, *n, "alli") && measure(w, *n - 4) > 0) *n -= 2; /* "alli" -> "al", then step 2 again */
    static const rule r[] = {
        {"ational", "ate", C_M0}, {"tional", "tion", C_M0}, {"enci", "ence", C_M0}, {"anci", "ance", C_M0},
        {"izer", "ize", C_M0},    {"bli", "ble", C_M0},     {"alli", "al", C_M0},    {"entli", "ent", C_M0},
        {"eli", "e", C_M0},       {"ousli", "ous", C_M0},   {"ization", "ize", C_M0}, {"ation", "ate", C_M0},
        {"ator", "ate", C_M0},    {"alism", "al", C_M0},    {"iveness", "ive", C_M0}, {"fulness", "ful", C_M0},
        {"ousness", "ous", C_M0}, {"aliti", "al", C_M0},    {"iviti", "ive", C_M0},  {"biliti", "ble", C_M0},
        {"fulli", "ful", C_M0},   {"logi", "log", C_LOGI}};
    apply_rules(w, n, r, sizeof r / sizeof r[0]);
}

static void step3(char *w, size_t *n)
{
    static const rule r[] = {{"icate", "ic", C_M0}, {"ative", "", C_M0}, {"alize", "al", C_M0}, {"iciti", "ic", C_M0},
                             {"ical", "ic", C_M0},  {"ful", "", C_M0},   {"ness", "", C_M0}};
    apply_rules(w, n, r, sizeof r / sizeof r[0]);
}

static void step4(char *w, size_t *n)
{
    static const rule r[] = {{"al", "", C_M1},   {"ance", "", C_M1}, {"ence", "", C_M1},  {"er", "", C_M1},
                             {"ic", "", C_M1},   {"able", "", C_M1}, {"ible", "", C_M1},  {"ant", "", C_M1},
                             {"ement", "", C_M1}, {"ment", "", C_M1}, {"ent", "", C_M1},  {"ion", "", C_ION},
                             {"ou", "", C_M1},   {"ism", "", C_M1},  {"ate", "", C_M1},   {"iti", "", C_M1},
                             {"ous", "", C_M1},  {"ive", "", C_M1},  {"ize", "", C_M1}};
    apply_rules(w, n, r, sizeof r / sizeof r[0]);
}

static void step5(char *w, size_t *n)
{
    if (ends(w, *n, "e")) {
        int m = measure(w, *n - 1);
        if (m > 1 || (m == 1 && !ends_cvc(w, *n - 1))) *n -= 1;
    }
    static const rule r[] = {{"ll", "l", C_LL}};
    apply_rules(w, n, r, 1);
}

char *rouge_porter_stem(const char *word)
{
    static const char *const pool[][2] = {
        {"sky", "sky"},         {"skies", "sky"},       {"dying", "die"},     {"lying", "lie"},
        {"tying", "tie"},       {"news", "news"},       {"innings", "inning"}, {"inning", "inning"},
        {"outings", "outing"},  {"outing", "outing"},   {"cannings", "canning"}, {"canning", "canning"},
        {"howe", "howe"},       {"proceed", "proceed"}, {"exceed", "exceed"}, {"succeed", "succeed"}};
    for (size_t i = 0; i < sizeof pool / sizeof pool[0]; i++)
        if (!strcmp(word, pool[i][0])) return strdup(pool[i][1]);
    size_t n = strlen(word);
    char *w = malloc(n + 8);
    if (!w) return NULL;
    memcpy(w, word, n + 1);
    if (n > 2) {
        step1a(w, &n);
        step1b(w, &n);
        step1c(w, &n);
        step2(w, &n);
        step3(w, &n);
        step4(w, &n);
        step5(w, &n);
    }
    w[n] = 0;
    return w;
}

/* ---------------------------------------------------------------- tokens */

void rouge_tokens_free(char **toks, size_t n)
{
    if (!toks) return;
    for (size_t i = 0; i < n; i++) free(toks[i]);
    free(toks);
}

int rouge_tokenize(const char *text, size_t len, int use_stemmer, char ***toks, size_t *ntok)
{
    /* lowered text with every non-[a-z0-9] as a space */
    char *low = malloc(len + 2);
    if (!low) return RS_ERROR(RS_ENOMEM, "rouge: out of memory");
    size_t m = 0;
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        if (c < 0x80) {
            low[m++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? (char)c : ' ';
            i++;
            continue;
        }
        /* U+0130 (C4 B0) lowers to "i" + U+0307; U+212A (E2 84 AA) to "k" */
        if (c == 0xC4 && i + 1 < len && s[i + 1] == 0xB0) { low[m++] = 'i'; low[m++] = ' '; i += 2; continue; }
        if (c == 0xE2 && i + 2 < len && s[i + 1] == 0x84 && s[i + 2] == 0xAA) { low[m++] = 'k'; i += 3; continue; }
        low[m++] = ' ';
        i++;
        while (i < len && (s[i] & 0xC0) == 0x80) i++; /* the rest of a multi-byte character */
    }
    low[m] = 0;
    size_t cap = 16, n = 0;
    char **t = malloc(cap * sizeof(char *));
    int rc = t ? 0 : RS_ERROR(RS_ENOMEM, "rouge: out of memory");
    for (size_t i = 0; !rc && i < m;) {
        while (i < m && low[i] == ' ') i++;
        size_t j = i;
        while (j < m && low[j] != ' ') j++;
        if (j == i) break;
        char *w = strndup(low + i, j - i);
        if (w && use_stemmer && j - i > 3) {
            char *st = rouge_porter_stem(w);
            free(w);
            w = st;
        }
        i = j;
        if (!w) { rc = RS_ERROR(RS_ENOMEM, "rouge: out of memory"); break; }
        if (!w[0]) { free(w); continue; }
        if (n == cap) {
            char **p = realloc(t, (cap *= 2) * sizeof(char *));
            if (!p) { free(w); rc = RS_ERROR(RS_ENOMEM, "rouge: out of memory"); break; }
            t = p;
        }
        t[n++] = w;
    }
    free(low);
    if (rc) { rouge_tokens_free(t, n); return rc; }
    *toks = t;
    *ntok = n;
    return 0;
}

/* ---------------------------------------------------------------- scores */

static rouge_prf prf(double hits, double npred, double ntarget)
{
    rouge_prf x;
    x.p = npred > 0 ? hits / npred : 0;
    x.r = ntarget > 0 ? hits / ntarget : 0;
    x.f = x.p + x.r > 0 ? 2 * x.p * x.r / (x.p + x.r) : 0;
    return x;
}

static int tok_eq(char **a, size_t i, char **b, size_t j, int k)
{
    for (int q = 0; q < k; q++)
        if (strcmp(a[i + q], b[j + q])) return 0;
    return 1;
}

/* clipped n-gram overlap, quadratic (summaries are short) */
static rouge_prf rouge_n(char **t, size_t nt, char **p, size_t np, int k)
{
    size_t gt = nt >= (size_t)k ? nt - k + 1 : 0, gp = np >= (size_t)k ? np - k + 1 : 0;
    unsigned char *used = calloc(gp + 1, 1);
    size_t hits = 0;
    for (size_t i = 0; i < gt && used; i++)
        for (size_t j = 0; j < gp; j++)
            if (!used[j] && tok_eq(t, i, p, j, k)) { used[j] = 1; hits++; break; }
    free(used);
    /* precision / max(count, 1) as rouge-score */
    rouge_prf x;
    x.p = (double)hits / (double)(gp ? gp : 1);
    x.r = (double)hits / (double)(gt ? gt : 1);
    x.f = x.p + x.r > 0 ? 2 * x.p * x.r / (x.p + x.r) : 0;
    return x;
}

/* LCS table (rows+1) x (cols+1) of ref vs can */
static int *lcs_table(char **ref, size_t nr, char **can, size_t nc)
{
    int *t = calloc((nr + 1) * (nc + 1), sizeof(int));
    if (!t) return NULL;
    for (size_t i = 1; i <= nr; i++)
        for (size_t j = 1; j <= nc; j++) {
            int *c = &t[i * (nc + 1) + j];
            if (!strcmp(ref[i - 1], can[j - 1])) *c = t[(i - 1) * (nc + 1) + j - 1] + 1;
            else {
                int up = t[(i - 1) * (nc + 1) + j], left = t[i * (nc + 1) + j - 1];
                *c = up > left ? up : left;
            }
        }
    return t;
}

typedef struct { char **tok; size_t n; } sent;

static int split_sents(const char *text, int stem, sent **out, size_t *nout)
{
    size_t cap = 4, n = 0;
    sent *s = malloc(cap * sizeof(sent));
    if (!s) return RS_ERROR(RS_ENOMEM, "rouge: out of memory");
    const char *p = text;
    for (;;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) {
            if (n == cap) {
                sent *q = realloc(s, (cap *= 2) * sizeof(sent));
                if (!q) break;
                s = q;
            }
            if (rouge_tokenize(p, len, stem, &s[n].tok, &s[n].n)) break;
            n++;
        }
        if (!e) { *out = s; *nout = n; return 0; }
        p = e + 1;
    }
    for (size_t i = 0; i < n; i++) rouge_tokens_free(s[i].tok, s[i].n);
    free(s);
    return RS_ERROR(RS_ENOMEM, "rouge: out of memory");
}

/* count of token tok in a multiset kept as parallel (string, count) arrays */
typedef struct { char **key; int *cnt; size_t n; } bag;

static int *bag_slot(bag *b, char *k)
{
    for (size_t i = 0; i < b->n; i++)
        if (!strcmp(b->key[i], k)) return &b->cnt[i];
    return NULL;
}

static int bag_fill(bag *b, const sent *s, size_t ns)
{
    size_t tot = 0;
    for (size_t i = 0; i < ns; i++) tot += s[i].n;
    b->key = malloc((tot + 1) * sizeof(char *));
    b->cnt = malloc((tot + 1) * sizeof(int));
    b->n = 0;
    if (!b->key || !b->cnt) return -1;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < s[i].n; j++) {
            int *c = bag_slot(b, s[i].tok[j]);
            if (c) (*c)++;
            else { b->key[b->n] = s[i].tok[j]; b->cnt[b->n++] = 1; }
        }
    return 0;
}

static int rouge_lsum(const char *target, const char *pred, int stem, rouge_prf *out)
{
    sent *rs = NULL, *cs = NULL;
    size_t nr = 0, nc = 0;
    int rc = split_sents(target, stem, &rs, &nr);
    if (!rc) rc = split_sents(pred, stem, &cs, &nc);
    memset(out, 0, sizeof *out);
    bag br = {0}, bc = {0};
    size_t m = 0, n = 0;
    for (size_t i = 0; i < nr; i++) m += rs[i].n;
    for (size_t i = 0; i < nc; i++) n += cs[i].n;
    if (!rc && nr && nc && m && n) {
        if (bag_fill(&br, rs, nr) || bag_fill(&bc, cs, nc)) rc = RS_ERROR(RS_ENOMEM, "rouge: out of memory");
        size_t hits = 0;
        for (size_t i = 0; !rc && i < nr; i++) {
            const sent *r = &rs[i];
            unsigned char *in = calloc(r->n + 1, 1); /* union of the LCS index sets */
            if (!in) { rc = RS_ERROR(RS_ENOMEM, "rouge: out of memory"); break; }
            for (size_t k = 0; k < nc && !rc; k++) {
                const sent *c = &cs[k];
                int *t = lcs_table(r->tok, r->n, c->tok, c->n);
                if (!t) { rc = RS_ERROR(RS_ENOMEM, "rouge: out of memory"); break; }
                size_t a = r->n, b = c->n, w = c->n + 1; /* _backtrack_norec */
                while (a > 0 && b > 0) {
                    if (!strcmp(r->tok[a - 1], c->tok[b - 1])) { in[a - 1] = 1; a--; b--; }
                    else if (t[a * w + b - 1] > t[(a - 1) * w + b]) b--;
                    else a--;
                }
                free(t);
            }
            for (size_t j = 0; j < r->n; j++) {
                if (!in[j]) continue;
                int *cc = bag_slot(&bc, r->tok[j]), *cr = bag_slot(&br, r->tok[j]);
                if (cc && cr && *cc > 0 && *cr > 0) { hits++; (*cc)--; (*cr)--; }
            }
            free(in);
        }
        if (!rc) *out = prf((double)hits, (double)n, (double)m);
    }
    free(br.key); free(br.cnt); free(bc.key); free(bc.cnt);
    for (size_t i = 0; i < nr; i++) rouge_tokens_free(rs[i].tok, rs[i].n);
    for (size_t i = 0; i < nc; i++) rouge_tokens_free(cs[i].tok, cs[i].n);
    free(rs);
    free(cs);
    return rc;
}

int rouge_score(const char *target, const char *prediction, int use_stemmer, rouge_scores *out)
{
    char **t = NULL, **p = NULL;
    size_t nt = 0, np = 0;
    memset(out, 0, sizeof *out);
    int rc = rouge_tokenize(target, strlen(target), use_stemmer, &t, &nt);
    if (!rc) rc = rouge_tokenize(prediction, strlen(prediction), use_stemmer, &p, &np);
    if (!rc) {
        out->r1 = rouge_n(t, nt, p, np, 1);
        out->r2 = rouge_n(t, nt, p, np, 2);
        if (nt && np) {
            int *tab = lcs_table(t, nt, p, np);
            if (!tab) rc = RS_ERROR(RS_ENOMEM, "rouge: out of memory");
            else out->rl = prf(tab[nt * (np + 1) + np], (double)np, (double)nt);
            free(tab);
        }
    }
    if (!rc) rc = rouge_lsum(target, prediction, use_stemmer, &out->rlsum);
    rouge_tokens_free(t, nt);
    rouge_tokens_free(p, np);
    return rc;
}

void rouge_acc_add(rouge_acc *a, const rouge_scores *s)
{
    rouge_prf *d = &a->sum.r1;
    const rouge_prf *x = &s->r1;
    for (int i = 0; i < 4; i++) { d[i].p += x[i].p; d[i].r += x[i].r; d[i].f += x[i].f; }
    a->n++;
}

void rouge_acc_mean(const rouge_acc *a, rouge_scores *mean)
{
    double k = a->n ? 1.0 / (double)a->n : 0;
    const rouge_prf *x = &a->sum.r1;
    rouge_prf *d = &mean->r1;
    for (int i = 0; i < 4; i++) { d[i].p = x[i].p * k; d[i].r = x[i].r * k; d[i].f = x[i].f * k; }
}
