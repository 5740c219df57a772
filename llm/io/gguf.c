/* rostesim LLM: GGUF reader (see llm/io/gguf.h).
 *
 * Parsing walks a cursor over the mapped bytes; every read first checks that the bytes are
 * there (`need`), so a truncated file fails at the field it cut. Counts are checked
 * against what the remaining bytes could possibly hold before anything is allocated from
 * them (a u64 count of 2^60 strings in a 1 KB file is rejected, not malloc'ed). */
#include "llm/io/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm/io/jsonutil.h"
#include "llm/io/names.h"
#include "quant/status.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "llm/io/gguf.c assumes a little-endian host (GGUF files are little endian)"
#endif

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_STRING ((uint64_t)1 << 30) /* 1 GiB: longer strings are refused */

struct gguf_file {
    char *path;
    const unsigned char *map;
    size_t size;
    int mapped;             /* map is ours to munmap */
    uint32_t version;
    size_t alignment, data_offset;
    gguf_kv *kv;
    size_t nkv;
    gguf_tensor *t;
    size_t nt;
    size_t *t_by_name;      /* indices into t sorted by name */
};

const char *gguf_vtype_name(int t)
{
    static const char *const names[GGUF_NTYPES] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                   "bool", "string", "array", "u64", "i64", "f64"};
    return t >= 0 && t < GGUF_NTYPES ? names[t] : "?";
}

static const size_t vtype_size[GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* ------------------------------------------------------------------ cursor */

typedef struct {
    const gguf_file *g;
    size_t pos;
} cursor;

__attribute__((format(printf, 4, 5)))
static int fail(const gguf_file *g, int status, size_t off, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return RS_ERROR(status, "%s: offset %zu: %s", g->path, off, msg);
}

static int need(cursor *c, size_t n, const char *what)
{
    if (n > c->g->size - c->pos)
        return fail(c->g, RS_EINVAL, c->pos, "%s: needs %zu bytes, only %zu left (file of %zu bytes truncated?)",
                    what, n, c->g->size - c->pos, c->g->size);
    return RS_OK;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what)
{
    int rc = need(c, 4, what);
    if (rc) return rc;
    memcpy(v, c->g->map + c->pos, 4);
    c->pos += 4;
    return RS_OK;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what)
{
    int rc = need(c, 8, what);
    if (rc) return rc;
    memcpy(v, c->g->map + c->pos, 8);
    c->pos += 8;
    return RS_OK;
}

/* A string: u64 length then bytes (a view). */
static int rd_str(cursor *c, const char **s, size_t *len, const char *what)
{
    size_t at = c->pos;
    uint64_t n;
    int rc = rd_u64(c, &n, what);
    if (rc) return rc;
    if (n > GGUF_MAX_STRING || n > c->g->size - c->pos)
        return fail(c->g, RS_EINVAL, at, "%s: string length %llu is past the end of the file (%zu bytes left)",
                    what, (unsigned long long)n, c->g->size - c->pos);
    *s = (const char *)c->g->map + c->pos;
    *len = (size_t)n;
    c->pos += (size_t)n;
    return RS_OK;
}

static char *dup_name(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}

/* ------------------------------------------------------------------ accessors */

const char *gguf_path(const gguf_file *g) { return g ? g->path : NULL; }
uint32_t gguf_version(const gguf_file *g) { return g ? g->version : 0; }
size_t gguf_alignment(const gguf_file *g) { return g ? g->alignment : 0; }
size_t gguf_data_offset(const gguf_file *g) { return g ? g->data_offset : 0; }
size_t gguf_nkv(const gguf_file *g) { return g ? g->nkv : 0; }
size_t gguf_ntensors(const gguf_file *g) { return g ? g->nt : 0; }
const gguf_kv *gguf_kv_at(const gguf_file *g, size_t i) { return g && i < g->nkv ? &g->kv[i] : NULL; }
const gguf_tensor *gguf_tensor_at(const gguf_file *g, size_t i) { return g && i < g->nt ? &g->t[i] : NULL; }

const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key)
{
    if (!g || !key) return NULL;
    for (size_t i = 0; i < g->nkv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name)
{
    if (!g || !name || !g->t_by_name) return NULL;
    return llm_names_find(g->t_by_name, g->nt, g->t, sizeof *g->t, offsetof(gguf_tensor, name), name);
}

void gguf_close(gguf_file *g)
{
    if (!g) return;
    if (g->mapped && g->map) munmap((void *)g->map, g->size);
    for (size_t i = 0; i < g->nkv; i++) {
        free((char *)g->kv[i].key);
        free((size_t *)g->kv[i].arr_str_off);
    }
    for (size_t i = 0; i < g->nt; i++) free((char *)g->t[i].name);
    free(g->kv);
    free(g->t);
    free(g->t_by_name);
    free(g->path);
    free(g);
}

/* ------------------------------------------------------------------ parsing */

static void scalar_value(gguf_kv *kv, const unsigned char *p)
{
    switch (kv->type) {
    case GGUF_U8: kv->u = p[0]; break;
    case GGUF_I8: { int8_t v; memcpy(&v, p, 1); kv->i = v; kv->f = v; return; }
    case GGUF_U16: { uint16_t v; memcpy(&v, p, 2); kv->u = v; break; }
    case GGUF_I16: { int16_t v; memcpy(&v, p, 2); kv->i = v; kv->f = v; return; }
    case GGUF_U32: { uint32_t v; memcpy(&v, p, 4); kv->u = v; break; }
    case GGUF_I32: { int32_t v; memcpy(&v, p, 4); kv->i = v; kv->f = v; return; }
    case GGUF_F32: { float v; memcpy(&v, p, 4); kv->f = v; return; }
    case GGUF_BOOL: kv->u = p[0]; kv->i = p[0]; kv->f = p[0]; return;
    case GGUF_U64: { uint64_t v; memcpy(&v, p, 8); kv->u = v; break; }
    case GGUF_I64: { int64_t v; memcpy(&v, p, 8); kv->i = v; kv->f = (double)v; return; }
    case GGUF_F64: { double v; memcpy(&v, p, 8); kv->f = v; return; }
    default: return;
    }
    /* unsigned */
    kv->i = kv->u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)kv->u;
    kv->f = (double)kv->u;
}

/* A metadata key or a tensor name ("<owner> <idx>: <noun>" in messages): a non-empty string
 * without NUL bytes, copied NUL-terminated into *out and quoted into qb (80 bytes) for the
 * messages that follow. */
static int rd_name(cursor *c, const char *owner, size_t idx, const char *noun, const char **out, char qb[80])
{
    const gguf_file *g = c->g;
    char what[192];
    size_t at = c->pos;
    snprintf(what, sizeof what, "%s %zu: %s", owner, idx, noun);
    const char *s = NULL;
    size_t len = 0;
    int rc = rd_str(c, &s, &len, what);
    if (rc) return rc;
    if (len == 0) return fail(g, RS_EINVAL, at, "%s %zu: empty %s", owner, idx, noun);
    if (memchr(s, 0, len)) return fail(g, RS_EINVAL, at, "%s %zu: %s contains a NUL byte", owner, idx, noun);
    if (!(*out = dup_name(s, len))) return RS_ERROR(RS_ENOMEM, "%s: out of memory", g->path);
    llm_quoted(qb, 80, s, len);
    return RS_OK;
}

static int parse_kv(cursor *c, gguf_kv *kv, size_t idx)
{
    const gguf_file *g = c->g;
    char what[192], qb[80];
    int rc = rd_name(c, "metadata", idx, "key", &kv->key, qb);
    if (rc) return rc;
    snprintf(what, sizeof what, "metadata '%s': type", qb);
    uint32_t type;
    size_t at = c->pos;
    if ((rc = rd_u32(c, &type, what))) return rc;
    if (type >= GGUF_NTYPES) return fail(g, RS_EINVAL, at, "metadata '%s': unknown value type %u", qb, type);
    kv->type = (gguf_vtype)type;
    kv->offset = c->pos;
    snprintf(what, sizeof what, "metadata '%s' (%s): value", qb, gguf_vtype_name((int)type));
    if (type == GGUF_STRING) return rd_str(c, &kv->str, &kv->str_len, what);
    if (type != GGUF_ARRAY) {
        if ((rc = need(c, vtype_size[type], what))) return rc;
        scalar_value(kv, g->map + c->pos);
        c->pos += vtype_size[type];
        return RS_OK;
    }
    uint32_t et;
    at = c->pos;
    if ((rc = rd_u32(c, &et, what))) return rc;
    if (et >= GGUF_NTYPES) return fail(g, RS_EINVAL, at, "metadata '%s': unknown array element type %u", qb, et);
    if (et == GGUF_ARRAY) return fail(g, RS_ENOTSUP, at, "metadata '%s': arrays of arrays are not supported", qb);
    kv->arr_type = (gguf_vtype)et;
    uint64_t n;
    at = c->pos;
    if ((rc = rd_u64(c, &n, what))) return rc;
    size_t left = g->size - c->pos;
    size_t esz = et == GGUF_STRING ? 8 : vtype_size[et]; /* a string takes at least its length field */
    if (n > left / esz)
        return fail(g, RS_EINVAL, at, "metadata '%s': array of %llu %s elements cannot fit in the %zu bytes left",
                    qb, (unsigned long long)n, gguf_vtype_name((int)et), left);
    kv->arr_n = n;
    kv->arr_data = g->map + c->pos;
    if (et != GGUF_STRING) {
        c->pos += (size_t)n * esz;
        return RS_OK;
    }
    size_t *off = malloc((n ? (size_t)n : 1) * sizeof *off);
    if (!off) return RS_ERROR(RS_ENOMEM, "%s: out of memory for %llu strings", g->path, (unsigned long long)n);
    kv->arr_str_off = off;
    for (uint64_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        off[i] = c->pos;
        snprintf(what, sizeof what, "metadata '%s': element %llu", qb, (unsigned long long)i);
        if ((rc = rd_str(c, &s, &len, what))) return rc;
    }
    return RS_OK;
}

static int parse_tensor(cursor *c, gguf_tensor *t, size_t idx)
{
    const gguf_file *g = c->g;
    char what[192], qb[80];
    int rc = rd_name(c, "tensor", idx, "name", &t->name, qb);
    if (rc) return rc;
    snprintf(what, sizeof what, "tensor %zu ('%s')", idx, qb);
    uint32_t nd;
    size_t at = c->pos;
    if ((rc = rd_u32(c, &nd, what))) return rc;
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return fail(g, RS_EINVAL, at, "%s: n_dims %u is not in 1..%d", what, nd, GGUF_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t nelem = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        at = c->pos;
        if ((rc = rd_u64(c, &t->ne[d], what))) return rc;
        if (t->ne[d] == 0 || t->ne[d] > ((uint64_t)1 << 40))
            return fail(g, RS_EINVAL, at, "%s: dimension %u is %llu (must be in 1..2^40)", what, d,
                        (unsigned long long)t->ne[d]);
        if (nelem > ((uint64_t)1 << 50) / t->ne[d])
            return fail(g, RS_EINVAL, at, "%s: element count overflows (more than 2^50 elements)", what);
        nelem *= t->ne[d];
    }
    t->nelem = nelem;
    at = c->pos;
    if ((rc = rd_u32(c, &t->type, what))) return rc;
    const gguf_type_traits *tr = gguf_type_info(t->type);
    if (!tr) return fail(g, RS_EINVAL, at, "%s: unknown ggml type %u", what, t->type);
    if (t->ne[0] % (uint64_t)tr->blck)
        return fail(g, RS_EINVAL, at, "%s: type %s needs the first dimension (%llu) to be a multiple of %d", what,
                    tr->name, (unsigned long long)t->ne[0], tr->blck);
    uint64_t nbytes = nelem / (uint64_t)tr->blck * tr->type_size;
    if (nbytes > g->size) return fail(g, RS_EINVAL, at, "%s: %llu bytes of data cannot fit in a file of %zu bytes",
                                      what, (unsigned long long)nbytes, g->size);
    t->nbytes = (size_t)nbytes;
    at = c->pos;
    uint64_t off;
    if ((rc = rd_u64(c, &off, what))) return rc;
    if (off > g->size) return fail(g, RS_EINVAL, at, "%s: data offset %llu is past the end of the file", what,
                                   (unsigned long long)off);
    t->offset = (size_t)off; /* relative for now; made absolute once the data section is known */
    return RS_OK;
}

static int cmp_toff(const void *a, const void *b, void *ctx)
{
    const gguf_tensor *t = ctx;
    size_t x = t[*(const size_t *)a].offset, y = t[*(const size_t *)b].offset;
    return x < y ? -1 : x > y;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(((const gguf_kv *)a)->key, ((const gguf_kv *)b)->key);
}

static int parse(gguf_file *g)
{
    cursor c = {g, 0};
    int rc = need(&c, 4, "magic");
    if (rc) return rc;
    if (memcmp(g->map, GGUF_MAGIC, 4))
        return fail(g, RS_EINVAL, 0, "not a GGUF file (magic is not \"GGUF\")");
    c.pos = 4;
    if ((rc = rd_u32(&c, &g->version, "version"))) return rc;
    if (g->version == 1)
        return fail(g, RS_ENOTSUP, 4, "GGUF version 1 is not supported (convert it again with a current llama.cpp)");
    if (g->version != 2 && g->version != 3)
        return fail(g, RS_EINVAL, 4, "unknown GGUF version %u (2 and 3 are supported)", g->version);
    uint64_t nt, nkv;
    if ((rc = rd_u64(&c, &nt, "tensor count"))) return rc;
    if ((rc = rd_u64(&c, &nkv, "metadata count"))) return rc;
    /* each key/value takes at least 8 + 1 + 4 + 1 bytes, each tensor info 8 + 1 + 4 + 8 + 4 + 8 */
    size_t left = g->size - c.pos;
    if (nkv > left / 14) return fail(g, RS_EINVAL, 16, "metadata count %llu cannot fit in the %zu bytes left",
                                     (unsigned long long)nkv, left);
    if (nt > left / 33) return fail(g, RS_EINVAL, 8, "tensor count %llu cannot fit in the %zu bytes left",
                                    (unsigned long long)nt, left);
    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    g->t = calloc(nt ? (size_t)nt : 1, sizeof *g->t);
    g->t_by_name = malloc((nt ? (size_t)nt : 1) * sizeof *g->t_by_name);
    if (!g->kv || !g->t || !g->t_by_name) return RS_ERROR(RS_ENOMEM, "%s: out of memory", g->path);
    for (size_t i = 0; i < nkv; i++) {
        g->nkv = i + 1; /* so that close frees what parse_kv allocated */
        if ((rc = parse_kv(&c, &g->kv[i], i))) return rc;
    }
    /* unique keys */
    if (g->nkv > 1) {
        gguf_kv *sorted = malloc(g->nkv * sizeof *sorted);
        if (!sorted) return RS_ERROR(RS_ENOMEM, "%s: out of memory", g->path);
        memcpy(sorted, g->kv, g->nkv * sizeof *sorted);
        qsort(sorted, g->nkv, sizeof *sorted, cmp_key);
        for (size_t i = 1; i < g->nkv; i++)
            if (!strcmp(sorted[i].key, sorted[i - 1].key)) {
                char qb[80];
                rc = fail(g, RS_EINVAL, sorted[i].offset, "metadata key '%s' appears twice",
                          llm_quoted(qb, sizeof qb, sorted[i].key, strlen(sorted[i].key)));
                free(sorted);
                return rc;
            }
        free(sorted);
    }
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *al = gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != GGUF_U32 || al->u == 0 || (al->u & (al->u - 1)) || al->u > 65536)
            return fail(g, RS_EINVAL, al->offset, "general.alignment must be a u32 power of two <= 65536 (got %s %llu)",
                        gguf_vtype_name(al->type), (unsigned long long)al->u);
        g->alignment = (size_t)al->u;
    }
    for (size_t i = 0; i < nt; i++) {
        g->nt = i + 1;
        if ((rc = parse_tensor(&c, &g->t[i], i))) return rc;
    }
    size_t data = c.pos + (g->alignment - c.pos % g->alignment) % g->alignment;
    if (nt && data > g->size)
        return fail(g, RS_EINVAL, c.pos, "data section (aligned to %zu bytes at offset %zu) is past the end of the file",
                    g->alignment, data);
    g->data_offset = data;
    size_t dsize = data <= g->size ? g->size - data : 0;
    char qb[80];
    for (size_t i = 0; i < g->nt; i++) {
        gguf_tensor *t = &g->t[i];
        size_t rel = t->offset;
        if (rel % g->alignment)
            return fail(g, RS_EINVAL, data, "tensor %zu ('%s'): data offset %zu is not a multiple of the alignment %zu", i,
                        llm_quoted(qb, sizeof qb, t->name, strlen(t->name)), rel, g->alignment);
        if (rel > dsize || t->nbytes > dsize - rel)
            return fail(g, RS_EINVAL, data + (rel < dsize ? rel : dsize),
                        "tensor %zu ('%s'): data [%zu, %zu) of the data section (at file offset %zu) is past the end of "
                        "the file (%zu bytes of data)", i, llm_quoted(qb, sizeof qb, t->name, strlen(t->name)), rel,
                        rel + t->nbytes, data, dsize);
        t->offset = data + rel;
        t->data = g->map + t->offset;
        g->t_by_name[i] = i;
    }
    /* no overlap */
    qsort_r(g->t_by_name, g->nt, sizeof *g->t_by_name, cmp_toff, g->t);
    for (size_t i = 1; i < g->nt; i++) {
        const gguf_tensor *a = &g->t[g->t_by_name[i - 1]], *b = &g->t[g->t_by_name[i]];
        if (a->offset + a->nbytes > b->offset) {
            char qa[80];
            return fail(g, RS_EINVAL, b->offset, "tensors '%s' and '%s' overlap",
                        llm_quoted(qa, sizeof qa, a->name, strlen(a->name)), llm_quoted(qb, sizeof qb, b->name, strlen(b->name)));
        }
    }
    /* unique names, then the name index */
    llm_names_sort(g->t_by_name, g->nt, g->t, sizeof *g->t, offsetof(gguf_tensor, name));
    for (size_t i = 1; i < g->nt; i++)
        if (!strcmp(g->t[g->t_by_name[i]].name, g->t[g->t_by_name[i - 1]].name)) {
            const char *n = g->t[g->t_by_name[i]].name;
            return fail(g, RS_EINVAL, data, "tensor name '%s' appears twice", llm_quoted(qb, sizeof qb, n, strlen(n)));
        }
    return RS_OK;
}

static int open_common(gguf_file **out, gguf_file *g)
{
    int rc = parse(g);
    if (rc) {
        gguf_close(g);
        return rc;
    }
    *out = g;
    return RS_OK;
}

int gguf_open_mem(gguf_file **out, const void *buf, size_t size, const char *name)
{
    *out = NULL;
    gguf_file *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(name ? name : "(memory)"))) {
        free(g);
        return RS_ERROR(RS_ENOMEM, "out of memory");
    }
    g->map = buf;
    g->size = buf ? size : 0;
    return open_common(out, g);
}

int gguf_open(gguf_file **out, const char *path)
{
    *out = NULL;
    gguf_file *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return RS_ERROR(RS_ENOMEM, "out of memory");
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = RS_ERROR(RS_EIO, "%s: cannot open: %s", path, strerror(errno));
        gguf_close(g);
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int rc = RS_ERROR(RS_EIO, "%s: not a regular file", path);
        close(fd);
        gguf_close(g);
        return rc;
    }
    g->size = (size_t)st.st_size;
    if (g->size) {
        void *m = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int rc = RS_ERROR(RS_EIO, "%s: cannot map %zu bytes: %s", path, g->size, strerror(errno));
            close(fd);
            gguf_close(g);
            return rc;
        }
        g->map = m;
        g->mapped = 1;
    }
    close(fd);
    return open_common(out, g);
}

/* ------------------------------------------------------------------ typed getters */

static int lookup(const gguf_file *g, const char *key, int required, int *found, const gguf_kv **kv)
{
    *kv = gguf_find_kv(g, key);
    if (found) *found = *kv != NULL;
    if (!*kv && required) return RS_ERROR(RS_EINVAL, "%s: metadata '%s' is missing", g->path, key);
    return RS_OK;
}

static int is_int_type(int t)
{
    return t == GGUF_U8 || t == GGUF_I8 || t == GGUF_U16 || t == GGUF_I16 || t == GGUF_U32 || t == GGUF_I32 ||
           t == GGUF_U64 || t == GGUF_I64;
}

int gguf_get_int(const gguf_file *g, const char *key, int required, int64_t *out, int *found)
{
    const gguf_kv *kv;
    int rc = lookup(g, key, required, found, &kv);
    if (rc || !kv) return rc;
    if (!is_int_type(kv->type))
        return fail(g, RS_EINVAL, kv->offset, "metadata '%s' is %s, expected an integer", key, gguf_vtype_name(kv->type));
    if ((kv->type == GGUF_U64) && kv->u > (uint64_t)INT64_MAX)
        return fail(g, RS_EINVAL, kv->offset, "metadata '%s' = %llu is out of range", key, (unsigned long long)kv->u);
    *out = kv->i;
    return RS_OK;
}

int gguf_get_float(const gguf_file *g, const char *key, int required, double *out, int *found)
{
    const gguf_kv *kv;
    int rc = lookup(g, key, required, found, &kv);
    if (rc || !kv) return rc;
    if (kv->type != GGUF_F32 && kv->type != GGUF_F64 && !is_int_type(kv->type))
        return fail(g, RS_EINVAL, kv->offset, "metadata '%s' is %s, expected a number", key, gguf_vtype_name(kv->type));
    *out = kv->f;
    return RS_OK;
}

int gguf_get_bool(const gguf_file *g, const char *key, int required, int *out, int *found)
{
    const gguf_kv *kv;
    int rc = lookup(g, key, required, found, &kv);
    if (rc || !kv) return rc;
    if (kv->type != GGUF_BOOL)
        return fail(g, RS_EINVAL, kv->offset, "metadata '%s' is %s, expected a bool", key, gguf_vtype_name(kv->type));
    if (kv->u > 1) return fail(g, RS_EINVAL, kv->offset, "metadata '%s': bool byte is %llu", key, (unsigned long long)kv->u);
    *out = (int)kv->u;
    return RS_OK;
}

int gguf_get_str(const gguf_file *g, const char *key, int required, char **out, int *found)
{
    const gguf_kv *kv;
    int rc = lookup(g, key, required, found, &kv);
    if (rc || !kv) return rc;
    if (kv->type != GGUF_STRING)
        return fail(g, RS_EINVAL, kv->offset, "metadata '%s' is %s, expected a string", key, gguf_vtype_name(kv->type));
    if (memchr(kv->str, 0, kv->str_len))
        return fail(g, RS_EINVAL, kv->offset, "metadata '%s': string contains a NUL byte", key);
    if (!(*out = dup_name(kv->str, kv->str_len))) return RS_ERROR(RS_ENOMEM, "out of memory");
    return RS_OK;
}

int gguf_get_arr(const gguf_file *g, const char *key, int required, const gguf_kv **out)
{
    *out = NULL;
    const gguf_kv *kv;
    int rc = lookup(g, key, required, NULL, &kv);
    if (rc || !kv) return rc;
    if (kv->type != GGUF_ARRAY)
        return fail(g, RS_EINVAL, kv->offset, "metadata '%s' is %s, expected an array", key, gguf_vtype_name(kv->type));
    *out = kv;
    return RS_OK;
}

void gguf_arr_str(const gguf_file *g, const gguf_kv *kv, uint64_t i, const char **s, size_t *len)
{
    uint64_t n;
    size_t at = kv->arr_str_off[i];
    memcpy(&n, g->map + at, 8);
    *s = (const char *)g->map + at + 8;
    *len = (size_t)n;
}

int64_t gguf_arr_int(const gguf_kv *kv, uint64_t i)
{
    const unsigned char *p = kv->arr_data + i * vtype_size[kv->arr_type];
    switch (kv->arr_type) {
    case GGUF_U8: return p[0];
    case GGUF_I8: { int8_t v; memcpy(&v, p, 1); return v; }
    case GGUF_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case GGUF_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case GGUF_U64: { uint64_t v; memcpy(&v, p, 8); return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v; }
    case GGUF_I64: { int64_t v; memcpy(&v, p, 8); return v; }
    case GGUF_BOOL: return p[0];
    default: return 0;
    }
}

int gguf_tensor_to_f32(const gguf_file *g, const gguf_tensor *t, float *dst)
{
    const gguf_type_traits *tr = gguf_type_info(t->type);
    if (!tr || !tr->to_f32)
        return RS_ERROR(RS_ENOTSUP, "%s: tensor '%s' has type %s, which cannot be dequantized here (supported: %s)",
                        gguf_path(g), t->name, tr ? tr->name : "unknown", gguf_supported_types());
    size_t nb = (size_t)(t->nelem / (uint64_t)tr->blck);
    const unsigned char *src = t->data;
    /* chunks of 1024 blocks, in parallel for large tensors */
    const size_t chunk = 1024;
    size_t nchunks = (nb + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (nchunks > 4)
    for (size_t c = 0; c < nchunks; c++) {
        size_t b0 = c * chunk, n = nb - b0 < chunk ? nb - b0 : chunk;
        tr->to_f32(src + b0 * tr->type_size, dst + b0 * (size_t)tr->blck, n);
    }
    return RS_OK;
}
