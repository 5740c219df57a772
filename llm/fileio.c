/* rostesim LLM: small file helpers (see fileio.h). */
#include "llm/fileio.h"

#include <errno.h>
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
    if (!fp) return RS_ERROR(RS_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(fp);
        return RS_ERROR(RS_EIO, "%s: is a folder, not a file", path);
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

int llm_mkdir_p(const char *dir)
{
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p) return RS_ERROR(RS_EINVAL, "folder name '%s' is empty or too long", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return RS_ERROR(RS_EIO, "cannot create folder '%s': %s", p, strerror(errno));
        p[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return RS_ERROR(RS_EIO, "'%s' exists and is not a folder", dir);
    return RS_OK;
}

void llm_buf_put(llm_buf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n + 1) c *= 2;
        char *p = realloc(b->v, c);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->v = p;
        b->cap = c;
    }
    memcpy(b->v + b->n, s, n);
    b->n += n;
    b->v[b->n] = 0;
}
