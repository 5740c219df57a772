/* rostesim LLM: safetensors reader and writer (see llm/io/safetensors.h).
 *
 * Layout of a file: u64 LE header length N | N bytes of JSON | data buffer.
 * Every header entry is checked before any data byte is touched: the header length
 * against the file size and a cap, the JSON syntax (with the byte position of an
 * error), each entry's dtype, shape (ndim <= 8, non-negative integers, overflow-safe
 * product) and data_offsets (two integers, begin <= end <= data size, end - begin =
 * nelem * dtype size); then the tensors, sorted by offset, must tile the data buffer
 * exactly (no overlap, no gap, no trailing bytes) as the reference implementation
 * requires; names must be unique across all shards. */
#include "llm/io/safetensors.h"
#include "llm/io/fileio.h"
#include "llm/io/jsonutil.h"
#include "llm/io/names.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cJSON.h"
#include "quant/status.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "llm/io/safetensors.c assumes a little-endian host (safetensors data is little endian)"
#endif

#define ST_HEADER_MAX ((uint64_t)100 << 20) /* 100 MB of JSON header at most */
#define ST_INDEX_MAX ((size_t)64 << 20)     /* index.json files */
#define ST_INT_MAX 9007199254740992.0       /* 2^53: larger JSON integers are not exact */

/* ------------------------------------------------------------------ dtypes */

typedef struct {
    const char *name;
    st_dtype code;
    int bits; /* bits per element (F4 and F6 pack several elements per byte) */
} dtype_info;

static const dtype_info dtypes[] = {
    {"F32", ST_F32, 32},          {"F16", ST_F16, 16},          {"BF16", ST_BF16, 16},
    {"F64", ST_F64, 64},          {"I64", ST_I64, 64},          {"I32", ST_I32, 32},
    {"I8", ST_I8, 8},             {"U8", ST_U8, 8},             {"BOOL", ST_BOOL, 8},
    {"I16", ST_OTHER, 16},        {"U16", ST_OTHER, 16},        {"U32", ST_OTHER, 32},
    {"U64", ST_OTHER, 64},        {"C64", ST_OTHER, 64},        {"F8_E4M3", ST_OTHER, 8},
    {"F8_E5M2", ST_OTHER, 8},     {"F8_E4M3FNUZ", ST_OTHER, 8}, {"F8_E5M2FNUZ", ST_OTHER, 8},
    {"F8_E8M0", ST_OTHER, 8},     {"F6_E2M3", ST_OTHER, 6},     {"F6_E3M2", ST_OTHER, 6},
    {"F4", ST_OTHER, 4},
};

static const dtype_info *dtype_lookup(const char *s)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, s) == 0) return &dtypes[i];
    return NULL;
}

/* ------------------------------------------------------------------ the set */

typedef struct {
    char *path;            /* as opened, used in every message */
    unsigned char *map;    /* whole file, read-only */
    size_t size;           /* file size */
    size_t data_start;     /* 8 + N */
    size_t data_size;      /* size - data_start */
    cJSON *metadata;       /* detached "__metadata__" object or NULL */
} st_file;

struct st_set {
    st_file *files;
    int nfiles;
    st_tensor *t;
    size_t n, cap;
    size_t *by_name; /* indices into t sorted by name (after a successful open) */
};

size_t st_count(const st_set *s) { return s ? s->n : 0; }

const st_tensor *st_get(const st_set *s, size_t i) { return s && i < s->n ? &s->t[i] : NULL; }

int st_nfiles(const st_set *s) { return s ? s->nfiles : 0; }

const char *st_file_name(const st_set *s, int file)
{
    return s && file >= 0 && file < s->nfiles ? s->files[file].path : NULL;
}

const char *st_metadata(const st_set *s, int file, const char *key)
{
    if (!s || file < 0 || file >= s->nfiles || !s->files[file].metadata || !key) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->files[file].metadata, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const st_tensor *st_find(const st_set *s, const char *name)
{
    if (!s || !name || !s->by_name) return NULL;
    return llm_names_find(s->by_name, s->n, s->t, sizeof *s->t, offsetof(st_tensor, name), name);
}

void st_close(st_set *s)
{
    if (!s) return;
    for (int i = 0; i < s->nfiles; i++) {
        if (s->files[i].map) munmap(s->files[i].map, s->files[i].size);
        cJSON_Delete(s->files[i].metadata);
        free(s->files[i].path);
    }
    for (size_t i = 0; i < s->n; i++) free((char *)s->t[i].name);
    free(s->files);
    free(s->t);
    free(s->by_name);
    free(s);
}

/* ------------------------------------------------------------------ messages */

/* A tensor name fit for a message (untrusted headers may hold anything). */
#define QNAME(buf, s) llm_quoted(buf, sizeof buf, (s), strlen(s))

/* Parse text[0..len) as one JSON value followed only by whitespace. On failure
 * records an error naming `file` and the byte offset (plus `base`, the offset of the
 * text in its file) and returns NULL. */
static cJSON *parse_json(const char *text, size_t len, const char *file, size_t base, int *rc)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    size_t pos = end && end >= text ? (size_t)(end - text) : 0;
    if (j) {
        while (pos < len && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r'))
            pos++;
        if (pos == len) return j;
        cJSON_Delete(j);
    }
    if (pos > len) pos = len;
    char ex[64];
    size_t exl = len - pos < 16 ? len - pos : 16;
    char where[48] = "";
    if (base) snprintf(where, sizeof where, " (file offset %zu)", base + pos);
    *rc = RS_ERROR(RS_EINVAL, "%s: %s JSON at byte %zu%s near '%s'", file,
                   j ? "trailing characters after the" : "invalid", pos, where, llm_quoted(ex, sizeof ex, text + pos, exl));
    return NULL;
}

/* A JSON number that is an integer in [0, 2^53]. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_INT_MAX) || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static void describe_number(char *buf, size_t cap, const cJSON *v)
{
    if (cJSON_IsNumber(v)) snprintf(buf, cap, "%.17g", v->valuedouble);
    else snprintf(buf, cap, "%s", llm_json_type(v));
}

/* ------------------------------------------------------------------ reading */

static int push_tensor(st_set *s, st_tensor *t)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 64;
        st_tensor *p = realloc(s->t, nc * sizeof *p);
        if (!p) return RS_ERROR(RS_ENOMEM, "safetensors: out of memory for %zu tensors", nc);
        s->t = p;
        s->cap = nc;
    }
    s->t[s->n++] = *t;
    return RS_OK;
}

/* Check one header entry and append the tensor (its name is copied). */
static int parse_entry(st_set *s, int fi, const cJSON *e)
{
    const st_file *f = &s->files[fi];
    char qn[96], num[64];
    QNAME(qn, e->string);
    if (!cJSON_IsObject(e))
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': entry is %s, not an object", f->path, qn,
                        llm_json_type(e));
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
    int seen[3] = {0, 0, 0};
    for (const cJSON *x = e->child; x; x = x->next)
        for (int i = 0; i < 3; i++)
            if (x->string && strcmp(x->string, fields[i]) == 0 && seen[i]++)
                return RS_ERROR(RS_EINVAL, "%s: tensor '%s': duplicate field '%s'", f->path, qn, fields[i]);
    if (!dt || !sh || !of)
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': no %s", f->path, qn,
                        !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    if (!cJSON_IsString(dt))
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': dtype is %s, not a string", f->path, qn,
                        llm_json_type(dt));
    const dtype_info *di = dtype_lookup(dt->valuestring);
    if (!di) {
        char qd[48];
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': unknown dtype '%s'", f->path, qn, QNAME(qd, dt->valuestring));
    }
    if (!cJSON_IsArray(sh))
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': shape is %s, not an array", f->path, qn,
                        llm_json_type(sh));
    st_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = di->code;
    t.dtype_name = di->name;
    t.file = fi;
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS)
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': shape has %d dimensions (at most %d)", f->path, qn,
                        nd, ST_MAX_DIMS);
    t.ndim = nd;
    uint64_t nelem = 1;
    int k = 0, overflow = 0;
    for (const cJSON *d = sh->child; d; d = d->next, k++) {
        uint64_t v;
        if (!json_uint(d, &v)) {
            describe_number(num, sizeof num, d);
            return RS_ERROR(RS_EINVAL, "%s: tensor '%s': shape[%d] is %s, not a non-negative integer",
                            f->path, qn, k, num);
        }
        t.shape[k] = (int64_t)v;
        if (__builtin_mul_overflow(nelem, v, &nelem)) overflow = 1;
    }
    /* a zero dimension makes the product 0 even if earlier dims overflowed */
    for (k = 0; k < nd; k++)
        if (t.shape[k] == 0) { nelem = 0; overflow = 0; }
    uint64_t nbits;
    if (overflow || nelem > SIZE_MAX || __builtin_mul_overflow(nelem, (uint64_t)di->bits, &nbits))
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': shape product overflows", f->path, qn);
    if (nbits % 8)
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': %llu elements of %d-bit %s do not fill whole bytes",
                        f->path, qn, (unsigned long long)nelem, di->bits, di->name);
    uint64_t want = nbits / 8;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': data_offsets is %s, not an array of two integers",
                        f->path, qn, cJSON_IsArray(of) ? "an array of another length" : llm_json_type(of));
    uint64_t b, en;
    if (!json_uint(of->child, &b)) {
        describe_number(num, sizeof num, of->child);
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': data_offsets[0] is %s, not a non-negative integer",
                        f->path, qn, num);
    }
    if (!json_uint(of->child->next, &en)) {
        describe_number(num, sizeof num, of->child->next);
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': data_offsets[1] is %s, not a non-negative integer",
                        f->path, qn, num);
    }
    if (b > en)
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                        f->path, qn, (unsigned long long)b, (unsigned long long)en);
    if (en > f->data_size)
        return RS_ERROR(RS_EINVAL, "%s: tensor '%s': data_offsets [%llu, %llu] exceed the %zu bytes of data",
                        f->path, qn, (unsigned long long)b, (unsigned long long)en, f->data_size);
    if (en - b != want)
        return RS_ERROR(RS_EINVAL,
                        "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but %llu elements of %s "
                        "need %llu",
                        f->path, qn, (unsigned long long)b, (unsigned long long)en,
                        (unsigned long long)(en - b), (unsigned long long)nelem, di->name,
                        (unsigned long long)want);
    t.nelem = (size_t)nelem;
    t.nbytes = (size_t)want;
    t.offset = f->data_start + (size_t)b;
    t.data = f->map + t.offset;
    t.name = strdup(e->string);
    if (!t.name) return RS_ERROR(RS_ENOMEM, "%s: out of memory", f->path);
    int rc = push_tensor(s, &t);
    if (rc) free((char *)t.name);
    return rc;
}

static int cmp_offset(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Tensors [first, s->n) of file fi, sorted by offset, must tile its data buffer. */
static int check_tiling(st_set *s, int fi, size_t first)
{
    const st_file *f = &s->files[fi];
    size_t m = s->n - first;
    if (m == 0) {
        if (f->data_size)
            return RS_ERROR(RS_EINVAL, "%s: no tensors, but %zu bytes of data", f->path, f->data_size);
        return RS_OK;
    }
    const st_tensor **p = malloc(m * sizeof *p);
    if (!p) return RS_ERROR(RS_ENOMEM, "%s: out of memory", f->path);
    for (size_t i = 0; i < m; i++) p[i] = &s->t[first + i];
    qsort(p, m, sizeof *p, cmp_offset);
    size_t cur = f->data_start;
    const st_tensor *prev = NULL;
    int rc = RS_OK;
    char q1[96], q2[96];
    for (size_t i = 0; i < m && !rc; i++) {
        const st_tensor *t = p[i];
        if (t->offset < cur)
            rc = RS_ERROR(RS_EINVAL, "%s: tensor '%s' (data bytes %zu..%zu) overlaps tensor '%s' (ending at %zu)",
                          f->path, QNAME(q1, t->name), t->offset - f->data_start,
                          t->offset - f->data_start + t->nbytes, QNAME(q2, prev->name), cur - f->data_start);
        else if (t->offset > cur)
            rc = RS_ERROR(RS_EINVAL, "%s: data bytes %zu..%zu (before tensor '%s') belong to no tensor",
                          f->path, cur - f->data_start, t->offset - f->data_start, QNAME(q1, t->name));
        cur = t->offset + t->nbytes;
        prev = t;
    }
    if (!rc && cur != f->size)
        rc = RS_ERROR(RS_EINVAL, "%s: %zu trailing data bytes after the last tensor ('%s')", f->path,
                      f->size - cur, QNAME(q1, prev->name));
    free(p);
    return rc;
}

/* Map file `path` as shard number fi and parse its header. */
static int open_file(st_set *s, const char *path)
{
    st_file *nf = realloc(s->files, (size_t)(s->nfiles + 1) * sizeof *nf);
    if (!nf) return RS_ERROR(RS_ENOMEM, "%s: out of memory", path);
    s->files = nf;
    int fi = s->nfiles++;
    st_file *f = &s->files[fi];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path) return RS_ERROR(RS_ENOMEM, "%s: out of memory", path);

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return RS_ERROR(RS_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return RS_ERROR(RS_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return RS_ERROR(RS_EIO, "%s: not a regular file", path);
    }
    if (st.st_size < 8) {
        close(fd);
        return RS_ERROR(RS_EINVAL, "%s: file is %lld bytes, shorter than the 8-byte header length",
                        path, (long long)st.st_size);
    }
    f->size = (size_t)st.st_size;
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) return RS_ERROR(RS_EIO, "%s: cannot map: %s", path, strerror(e));
    f->map = m;

    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->map[i];
    if (hlen > f->size - 8)
        return RS_ERROR(RS_EINVAL, "%s: header length %llu exceeds the %zu bytes after the length field",
                        path, (unsigned long long)hlen, f->size - 8);
    if (hlen > ST_HEADER_MAX)
        return RS_ERROR(RS_EINVAL, "%s: header length %llu exceeds the limit of %llu bytes", path,
                        (unsigned long long)hlen, (unsigned long long)ST_HEADER_MAX);
    if (hlen < 2) return RS_ERROR(RS_EINVAL, "%s: header length %llu is too short for a JSON object", path,
                                  (unsigned long long)hlen);
    f->data_start = 8 + (size_t)hlen;
    f->data_size = f->size - f->data_start;
    const char *h = (const char *)f->map + 8;
    const char *nul = memchr(h, 0, (size_t)hlen);
    if (nul)
        return RS_ERROR(RS_EINVAL, "%s: NUL byte in the JSON header at byte %zu (file offset %zu)", path,
                        (size_t)(nul - h), (size_t)(nul - h) + 8);
    if (h[0] != '{')
        return RS_ERROR(RS_EINVAL, "%s: header does not start with '{' (byte 8 is 0x%02x)", path,
                        (unsigned char)h[0]);
    /* parse a NUL-terminated private copy: the parser can never run past it */
    char *hc = malloc((size_t)hlen + 1);
    if (!hc) return RS_ERROR(RS_ENOMEM, "%s: out of memory for a %llu-byte header", path, (unsigned long long)hlen);
    memcpy(hc, h, (size_t)hlen);
    hc[hlen] = 0;
    int rc = RS_OK;
    cJSON *j = parse_json(hc, (size_t)hlen, path, 8, &rc);
    free(hc);
    if (!j) return rc;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return RS_ERROR(RS_EINVAL, "%s: header is %s, not a JSON object", path, llm_json_type(j));
    }
    size_t first = s->n;
    char qn[96];
    cJSON *meta = NULL;
    for (cJSON *e2 = j->child; e2 && !rc; e2 = e2->next) {
        if (!e2->string) {
            rc = RS_ERROR(RS_EINVAL, "%s: header entry without a name", path);
        } else if (strcmp(e2->string, "__metadata__") == 0) {
            if (meta) {
                rc = RS_ERROR(RS_EINVAL, "%s: duplicate \"__metadata__\"", path);
            } else if (!cJSON_IsObject(e2)) {
                rc = RS_ERROR(RS_EINVAL, "%s: \"__metadata__\" is %s, not an object", path, llm_json_type(e2));
            } else {
                meta = e2;
                for (const cJSON *kv = e2->child; kv && !rc; kv = kv->next)
                    if (!cJSON_IsString(kv))
                        rc = RS_ERROR(RS_EINVAL, "%s: \"__metadata__\" value '%s' is %s, not a string", path,
                                      QNAME(qn, kv->string ? kv->string : ""), llm_json_type(kv));
            }
        } else {
            rc = parse_entry(s, fi, e2);
        }
    }
    if (!rc && meta) f->metadata = cJSON_DetachItemViaPointer(j, meta);
    cJSON_Delete(j);
    if (!rc) rc = check_tiling(s, fi, first);
    return rc;
}


/* Sort names and report the first duplicate. */
static int build_name_index(st_set *s)
{
    free(s->by_name);
    s->by_name = malloc((s->n ? s->n : 1) * sizeof *s->by_name);
    if (!s->by_name) return RS_ERROR(RS_ENOMEM, "safetensors: out of memory");
    for (size_t i = 0; i < s->n; i++) s->by_name[i] = i;
    llm_names_sort(s->by_name, s->n, s->t, sizeof *s->t, offsetof(st_tensor, name));
    for (size_t i = 1; i < s->n; i++) {
        const st_tensor *a = &s->t[s->by_name[i - 1]], *b = &s->t[s->by_name[i]];
        if (strcmp(a->name, b->name) == 0) {
            char qn[96];
            free(s->by_name);
            s->by_name = NULL;
            if (a->file == b->file)
                return RS_ERROR(RS_EINVAL, "%s: duplicate tensor '%s'", s->files[a->file].path, QNAME(qn, a->name));
            return RS_ERROR(RS_EINVAL, "%s: tensor '%s' is also in %s", s->files[b->file].path,
                            QNAME(qn, a->name), s->files[a->file].path);
        }
    }
    return RS_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int valid_shard_name(const char *n)
{
    return n[0] && strchr(n, '/') == NULL && strcmp(n, ".") != 0 && strcmp(n, "..") != 0 && strlen(n) < 256;
}

/* index.json with {"weight_map": {"tensor": "shard file"}}; shards live in dir. */
static int open_index(st_set *s, const char *ipath, const char *dir)
{
    char *text = NULL;
    size_t len = 0;
    int rc = llm_read_file(ipath, ST_INDEX_MAX, &text, &len);
    if (rc) return rc;
    cJSON *j = parse_json(text, len, ipath, 0, &rc);
    free(text);
    if (!j) return rc;
    const char **shards = NULL, **keys = NULL;
    unsigned char *seen = NULL;
    char *full = NULL;
    char qn[96], qs[96];
    const cJSON *wm = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "weight_map") : NULL;
    if (!cJSON_IsObject(j)) {
        rc = RS_ERROR(RS_EINVAL, "%s: index is %s, not a JSON object", ipath, llm_json_type(j));
        goto done;
    }
    if (!wm) {
        rc = RS_ERROR(RS_EINVAL, "%s: no \"weight_map\"", ipath);
        goto done;
    }
    if (!cJSON_IsObject(wm)) {
        rc = RS_ERROR(RS_EINVAL, "%s: \"weight_map\" is %s, not an object", ipath, llm_json_type(wm));
        goto done;
    }
    size_t nk = (size_t)cJSON_GetArraySize(wm);
    if (nk == 0) {
        rc = RS_ERROR(RS_EINVAL, "%s: \"weight_map\" is empty", ipath);
        goto done;
    }
    shards = malloc(nk * sizeof *shards);
    keys = malloc(nk * sizeof *keys);
    if (!shards || !keys) {
        rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", ipath);
        goto done;
    }
    size_t k = 0;
    for (const cJSON *e = wm->child; e; e = e->next, k++) {
        if (!e->string || !cJSON_IsString(e)) {
            rc = RS_ERROR(RS_EINVAL, "%s: weight_map entry '%s' is %s, not a file name", ipath,
                          QNAME(qn, e->string ? e->string : ""), llm_json_type(e));
            goto done;
        }
        if (!valid_shard_name(e->valuestring)) {
            rc = RS_ERROR(RS_EINVAL, "%s: weight_map entry '%s': '%s' is not a file name in the same folder",
                          ipath, QNAME(qn, e->string), QNAME(qs, e->valuestring));
            goto done;
        }
        keys[k] = e->string;
        shards[k] = e->valuestring;
    }
    qsort(keys, nk, sizeof *keys, cmp_str);
    for (size_t i = 1; i < nk; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            rc = RS_ERROR(RS_EINVAL, "%s: duplicate weight_map entry '%s'", ipath, QNAME(qn, keys[i]));
            goto done;
        }
    qsort(shards, nk, sizeof *shards, cmp_str);
    size_t ns = 0;
    for (size_t i = 0; i < nk; i++)
        if (ns == 0 || strcmp(shards[ns - 1], shards[i]) != 0) shards[ns++] = shards[i];
    full = malloc(strlen(dir) + 258);
    if (!full) {
        rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", ipath);
        goto done;
    }
    for (size_t i = 0; i < ns; i++) {
        sprintf(full, "%s/%s", dir, shards[i]);
        if (access(full, F_OK) != 0) {
            rc = RS_ERROR(RS_EIO, "%s: shard '%s' is missing (%s: %s)", ipath, QNAME(qs, shards[i]), full,
                          strerror(errno));
            goto done;
        }
        if ((rc = open_file(s, full))) goto done;
    }
    if ((rc = build_name_index(s))) goto done;
    seen = calloc(s->n ? s->n : 1, 1);
    if (!seen) {
        rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", ipath);
        goto done;
    }
    for (const cJSON *e = wm->child; e; e = e->next) {
        const char **sh = bsearch(&e->valuestring, shards, ns, sizeof *shards, cmp_str);
        int want = (int)(sh - shards);
        const st_tensor *t = st_find(s, e->string);
        if (!t) {
            rc = RS_ERROR(RS_EINVAL, "%s: tensor '%s' of the weight_map is missing from shard '%s'", ipath,
                          QNAME(qn, e->string), QNAME(qs, e->valuestring));
            goto done;
        }
        if (t->file != want) {
            rc = RS_ERROR(RS_EINVAL, "%s: tensor '%s' is in %s, but the weight_map says '%s'", ipath,
                          QNAME(qn, e->string), s->files[t->file].path, QNAME(qs, e->valuestring));
            goto done;
        }
        seen[t - s->t] = 1;
    }
    for (size_t i = 0; i < s->n; i++)
        if (!seen[i]) {
            rc = RS_ERROR(RS_EINVAL, "%s: tensor '%s' of %s is not listed in the weight_map", ipath,
                          QNAME(qn, s->t[i].name), s->files[s->t[i].file].path);
            goto done;
        }
done:
    free(full);
    free(seen);
    free(shards);
    free(keys);
    cJSON_Delete(j);
    return rc;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

int st_open(st_set **out, const char *path)
{
    if (!out) return RS_ERROR(RS_EINVAL, "st_open: NULL output");
    *out = NULL;
    if (!path || !path[0]) return RS_ERROR(RS_EINVAL, "st_open: empty path");
    st_set *s = calloc(1, sizeof *s);
    if (!s) return RS_ERROR(RS_ENOMEM, "%s: out of memory", path);
    struct stat st;
    int rc = RS_OK;
    char *buf = NULL;
    if (stat(path, &st) != 0) {
        rc = RS_ERROR(RS_EIO, "%s: cannot open: %s", path, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        size_t L = strlen(path);
        buf = malloc(L + 40);
        if (!buf) {
            rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", path);
        } else {
            sprintf(buf, "%s/model.safetensors", path);
            if (access(buf, F_OK) == 0) {
                rc = open_file(s, buf);
                if (!rc) rc = build_name_index(s);
            } else {
                sprintf(buf, "%s/model.safetensors.index.json", path);
                if (access(buf, F_OK) == 0)
                    rc = open_index(s, buf, path);
                else
                    rc = RS_ERROR(RS_EIO, "%s: no model.safetensors or model.safetensors.index.json in the folder",
                                  path);
            }
        }
    } else if (ends_with(path, ".index.json")) {
        buf = strdup(path);
        if (!buf) {
            rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", path);
        } else {
            char *slash = strrchr(buf, '/');
            if (slash == buf) slash[1] = 0;
            else if (slash) *slash = 0;
            else strcpy(buf, ".");
            rc = open_index(s, path, buf);
        }
    } else {
        rc = open_file(s, path);
        if (!rc) rc = build_name_index(s);
    }
    free(buf);
    if (rc) {
        st_close(s);
        return rc;
    }
    *out = s;
    return RS_OK;
}

/* ------------------------------------------------------------------ conversions */

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        /* subnormal: mant * 2^-24; normalise so the leading 1 reaches bit 10 */
        uint32_t e = 113;
        while (!(mant & 0x400u)) {
            mant <<= 1;
            e--;
        }
        return bits_f32(sign | e << 23 | (mant & 0x3ffu) << 13);
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | mant << 13); /* inf, NaN (payload kept) */
    return bits_f32(sign | (exp + 112) << 23 | mant << 13);
}

float st_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t st_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* quiet NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (ax < 0x38800000u) {                                    /* below 2^-14: subnormal or zero */
        if (ax <= 0x33000000u) return sign;                    /* <= 2^-25 (the tie) rounds to 0 */
        uint32_t e = ax >> 23, mant = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* value in units of 2^-24 is mant >> shift; 14..24 */
        uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t q = ((ax >> 23) - 112) << 10 | ((ax >> 13) & 0x3ffu), rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1))) q++; /* carries into the exponent */
    return (uint16_t)(sign | q);
}

uint16_t st_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x0040u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

int st_read_f32(const st_tensor *t, float *dst)
{
    if (!t || (!dst && t->nelem)) return RS_ERROR(RS_EINVAL, "st_read_f32: NULL argument");
    const unsigned char *p = t->data;
    size_t n = t->nelem;
    char qn[96];
    switch (t->dtype) {
    case ST_F32:
        if (n) memcpy(dst, p, n * 4);
        return RS_OK;
    case ST_F16:
#pragma omp parallel for schedule(static) if (n > (1u << 18))
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = st_f16_to_f32(h);
        }
        return RS_OK;
    case ST_BF16:
#pragma omp parallel for schedule(static) if (n > (1u << 18))
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = st_bf16_to_f32(h);
        }
        return RS_OK;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return RS_OK;
    default:
        return RS_ERROR(RS_ENOTSUP, "tensor '%s': dtype %s is not a floating type (F32, F16, BF16, F64)",
                        QNAME(qn, t->name), t->dtype_name ? t->dtype_name : "?");
    }
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

int st_expect_shape(const st_set *s, const st_tensor *t, int ndim, const int64_t *shape)
{
    if (!t || ndim < 0 || ndim > ST_MAX_DIMS || (ndim && !shape))
        return RS_ERROR(RS_EINVAL, "st_expect_shape: invalid arguments");
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (same) return RS_OK;
    char a[160], b[160], qn[96];
    shape_str(a, sizeof a, t->ndim, t->shape);
    shape_str(b, sizeof b, ndim, shape);
    const char *fn = st_file_name(s, t->file);
    return RS_ERROR(RS_EINVAL, "%s: tensor '%s' has shape %s, expected %s", fn ? fn : "safetensors",
                    QNAME(qn, t->name), a, b);
}

/* ------------------------------------------------------------------ writer */

static void sb_str(llm_buf *b, const char *s) { llm_buf_put(b, s, strlen(s)); }

/* A JSON string literal: quotes, backslash and control characters escaped; other
 * bytes (UTF-8) verbatim. */
static void sb_json_string(llm_buf *b, const char *s)
{
    llm_buf_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char e[8];
        if (*c == '"' || *c == '\\') {
            e[0] = '\\';
            e[1] = (char)*c;
            llm_buf_put(b, e, 2);
        } else if (*c < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", *c);
            llm_buf_put(b, e, 6);
        } else {
            llm_buf_put(b, (const char *)c, 1);
        }
    }
    llm_buf_put(b, "\"", 1);
}

/* Make a rename durable: fsync the folder holding path (best effort). */
static void sync_parent_dir(const char *path)
{
    char *d = strdup(path);
    if (!d) return;
    char *slash = strrchr(d, '/');
    if (slash == d) slash[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(d, ".");
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(d);
}

static int cmp_out_name(const void *a, const void *b)
{
    return strcmp((*(const st_out *const *)a)->name, (*(const st_out *const *)b)->name);
}

/* The dtypes st_write writes: bytes per element and the header's name. */
static size_t out_size(st_dtype d) { return d == ST_I8 || d == ST_U8 ? 1 : 4; }
static const char *out_dtype_name(st_dtype d) { return d == ST_I32 ? "I32" : d == ST_I8 ? "I8" : d == ST_U8 ? "U8" : "F32"; }

int st_write(const char *path, const st_out *t, size_t n, const char *const *metadata, size_t nmeta)
{
    if (!path || !path[0]) return RS_ERROR(RS_EINVAL, "st_write: empty path");
    if (n && !t) return RS_ERROR(RS_EINVAL, "%s: NULL tensor list", path);
    if (nmeta && !metadata) return RS_ERROR(RS_EINVAL, "%s: NULL metadata list", path);
    char qn[96];
    size_t *nelem = malloc((n ? n : 1) * sizeof *nelem);
    const st_out **sorted = malloc((n ? n : 1) * sizeof *sorted);
    llm_buf h = {0};
    llm_atomic a;
    int rc = RS_OK;
    if (!nelem || !sorted) {
        rc = RS_ERROR(RS_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    /* validate everything before creating any file */
    for (size_t i = 0; i < n; i++) {
        const st_out *o = &t[i];
        if (!o->name || !o->name[0] || strcmp(o->name, "__metadata__") == 0) {
            rc = RS_ERROR(RS_EINVAL, "%s: tensor %zu has an invalid name '%s'", path, i, o->name ? o->name : "(null)");
            goto done;
        }
        if (o->dtype != ST_F32 && o->dtype != ST_I32 && o->dtype != ST_I8 && o->dtype != ST_U8) {
            rc = RS_ERROR(RS_EINVAL, "%s: tensor '%s': dtype %d cannot be written (F32, I32, I8, U8)", path,
                          QNAME(qn, o->name), (int)o->dtype);
            goto done;
        }
        if (o->ndim < 0 || o->ndim > ST_MAX_DIMS) {
            rc = RS_ERROR(RS_EINVAL, "%s: tensor '%s': ndim %d (0..%d)", path, QNAME(qn, o->name), o->ndim, ST_MAX_DIMS);
            goto done;
        }
        size_t ne = 1;
        int ovf = 0;
        for (int d = 0; d < o->ndim; d++) {
            if (o->shape[d] < 0) {
                rc = RS_ERROR(RS_EINVAL, "%s: tensor '%s': shape[%d] = %lld is negative", path, QNAME(qn, o->name), d,
                              (long long)o->shape[d]);
                goto done;
            }
            if (__builtin_mul_overflow(ne, (size_t)o->shape[d], &ne)) ovf = 1;
        }
        for (int d = 0; d < o->ndim; d++)
            if (o->shape[d] == 0) ne = 0, ovf = 0;
        if (ovf || ne > SIZE_MAX / 4) {
            rc = RS_ERROR(RS_EINVAL, "%s: tensor '%s': shape product overflows", path, QNAME(qn, o->name));
            goto done;
        }
        if (ne && !o->data) {
            rc = RS_ERROR(RS_EINVAL, "%s: tensor '%s': NULL data", path, QNAME(qn, o->name));
            goto done;
        }
        nelem[i] = ne;
        sorted[i] = o;
    }
    qsort(sorted, n, sizeof *sorted, cmp_out_name);
    for (size_t i = 1; i < n; i++)
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0) {
            rc = RS_ERROR(RS_EINVAL, "%s: duplicate tensor name '%s'", path, QNAME(qn, sorted[i]->name));
            goto done;
        }
    for (size_t i = 0; i < nmeta; i++)
        if (!metadata[2 * i] || !metadata[2 * i + 1]) {
            rc = RS_ERROR(RS_EINVAL, "%s: metadata pair %zu has a NULL key or value", path, i);
            goto done;
        }
    for (size_t i = 0; i < nmeta; i++)
        for (size_t k = 0; k < i; k++)
            if (strcmp(metadata[2 * i], metadata[2 * k]) == 0) {
                rc = RS_ERROR(RS_EINVAL, "%s: duplicate metadata key '%s'", path, QNAME(qn, metadata[2 * i]));
                goto done;
            }

    /* header */
    sb_str(&h, "{");
    if (nmeta) {
        sb_str(&h, "\"__metadata__\":{");
        for (size_t i = 0; i < nmeta; i++) {
            if (i) sb_str(&h, ",");
            sb_json_string(&h, metadata[2 * i]);
            sb_str(&h, ":");
            sb_json_string(&h, metadata[2 * i + 1]);
        }
        sb_str(&h, "}");
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        char num[64];
        if (i || nmeta) sb_str(&h, ",");
        sb_json_string(&h, t[i].name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, out_dtype_name(t[i].dtype));
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
            sb_str(&h, num);
        }
        size_t es = out_size(t[i].dtype);
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + es * nelem[i]);
        sb_str(&h, num);
        off += es * nelem[i];
    }
    sb_str(&h, "}");
    while (h.n % 8) sb_str(&h, " ");
    if (h.oom) {
        rc = RS_ERROR(RS_ENOMEM, "%s: out of memory for the header", path);
        goto done;
    }

    if (llm_atomic_open(&a, path, LLM_ATOMIC_SYNC)) {
        rc = llm_atomic_error(&a);
        goto done;
    }
    FILE *fp = a.f;
    unsigned char len8[8];
    uint64_t hl = h.n;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(h.v, 1, h.n, fp) == h.n;
    for (size_t i = 0; ok && i < n; i++)
        if (nelem[i]) ok = fwrite(t[i].data, out_size(t[i].dtype), nelem[i], fp) == nelem[i];
    if (llm_atomic_commit(&a, ok)) rc = llm_atomic_error(&a);
    else sync_parent_dir(path);
done:
    free(h.v);
    free(nelem);
    free(sorted);
    return rc;
}
