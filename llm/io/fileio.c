/* rostesim LLM: small file helpers (see fileio.h). */
#include "llm/io/fileio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "quant/status.h"

/* A pipe or other stream (e.g. `--data <(zcat x.jsonl.gz)`): read until EOF, up to cap. */
static int read_stream(FILE *fp, const char *path, size_t cap, char **out, size_t *len)
{
    size_t room = 1 << 16, n = 0;
    char *b = malloc(room + 1);
    if (!b) return RS_ERROR(RS_ENOMEM, "%s: out of memory", path);
    for (;;) {
        if (n == room) {
            char *nb = room <= cap ? realloc(b, 2 * room + 1) : NULL;
            if (!nb) {
                free(b);
                return room > cap ? RS_ERROR(RS_EINVAL, "%s: more than the limit of %zu bytes", path, cap)
                                  : RS_ERROR(RS_ENOMEM, "%s: out of memory", path);
            }
            b = nb;
            room *= 2;
        }
        size_t k = fread(b + n, 1, room - n, fp);
        n += k;
        if (k == 0) break;
    }
    if (ferror(fp) || n > cap) {
        free(b);
        return n > cap ? RS_ERROR(RS_EINVAL, "%s: more than the limit of %zu bytes", path, cap)
                       : RS_ERROR(RS_EIO, "%s: read error", path);
    }
    b[n] = 0;
    *out = b;
    if (len) *len = n;
    return RS_OK;
}

int llm_read_file(const char *path, size_t cap, char **out, size_t *len)
{
    *out = NULL;
    if (len) *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        int e = errno, rc = RS_ERROR(RS_EIO, "%s: cannot open: %s", path, strerror(e));
        errno = e;
        return rc;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(fp);
        int rc = RS_ERROR(RS_EIO, "%s: is a folder, not a file", path);
        errno = EISDIR;
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        int rc = read_stream(fp, path, cap, out, len);
        fclose(fp);
        return rc;
    }
    if ((unsigned long long)st.st_size > (unsigned long long)cap) {
        fclose(fp);
        return RS_ERROR(RS_EINVAL, "%s: %lld bytes, more than the limit of %zu", path, (long long)st.st_size, cap);
    }
    size_t n = (size_t)st.st_size;
    char *b = malloc(n + 1);
    if (!b) {
        fclose(fp);
        return RS_ERROR(RS_ENOMEM, "%s: out of memory", path);
    }
    size_t got = fread(b, 1, n, fp);
    int err = ferror(fp);
    fclose(fp);
    if (got != n || err) {
        free(b);
        return RS_ERROR(RS_EIO, "%s: read %zu of %zu bytes", path, got, n);
    }
    b[n] = 0;
    *out = b;
    if (len) *len = n;
    return RS_OK;
}

/* Room for `need` bytes in all; 0, or -1 with oom set. */
static int buf_reserve(llm_buf *b, size_t need)
{
    if (b->oom) return -1;
    if (need <= b->cap) return 0;
    size_t c = b->cap ? b->cap : 256;
    while (c < need) c *= 2;
    char *p = realloc(b->v, c);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->v = p;
    b->cap = c;
    return 0;
}

void llm_buf_put(llm_buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, b->n + n + 1)) return;
    memcpy(b->v + b->n, s, n);
    b->n += n;
    b->v[b->n] = 0;
}

void llm_buf_printf(llm_buf *b, const char *fmt, ...)
{
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(b->v ? b->v + b->n : NULL, b->v ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (m < 0) {
        b->oom = 1;
        return;
    }
    if (b->v && b->n + (size_t)m < b->cap) {
        b->n += (size_t)m;
        return;
    }
    if (buf_reserve(b, b->n + (size_t)m + 1)) return;
    va_start(ap, fmt);
    vsnprintf(b->v + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)m;
}

int llm_atomic_open(llm_atomic *a, const char *path, int flags)
{
    a->path = path, a->flags = flags, a->stage = LLM_ATOMIC_OK, a->err = 0;
    a->f = rs_atomic_create(path, a->tmp, sizeof a->tmp, &a->err);
    if (!a->f) {
        a->stage = LLM_ATOMIC_CREATE;
        return -1;
    }
    return 0;
}

int llm_atomic_commit(llm_atomic *a, int ok)
{
    a->err = errno; /* a failed write of the caller's left its errno */
    a->stage = rs_atomic_finish(a->f, a->tmp, a->path, ok, a->flags & LLM_ATOMIC_SYNC, &a->err);
    a->f = NULL;
    return a->stage == RS_ATOMIC_OK ? 0 : -1;
}

void llm_atomic_abort(llm_atomic *a)
{
    if (!a->f) return;
    fclose(a->f);
    a->f = NULL;
    remove(a->tmp);
}

int llm_atomic_write(llm_atomic *a, const char *path, const void *data, size_t n, int flags)
{
    if (llm_atomic_open(a, path, flags)) return -1;
    return llm_atomic_commit(a, fwrite(data, 1, n, a->f) == n);
}

int llm_atomic_write_line(llm_atomic *a, const char *path, const char *text, int flags)
{
    if (llm_atomic_open(a, path, flags)) return -1;
    return llm_atomic_commit(a, fputs(text, a->f) >= 0 && fputc('\n', a->f) != EOF);
}

int llm_atomic_error(const llm_atomic *a)
{
    const char *why = strerror(a->err);
    if (a->stage == LLM_ATOMIC_CREATE) return RS_ERROR(RS_EIO, "%s: cannot create: %s", a->tmp, why);
    if (a->stage == LLM_ATOMIC_WRITE) return RS_ERROR(RS_EIO, "%s: write failed: %s", a->tmp, why);
    return RS_ERROR(RS_EIO, "%s: cannot rename %s into place: %s", a->path, a->tmp, why);
}
