/* rostesim: the shared file-system helpers (see fsutil.h). */
#include "quant/fsutil.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant/status.h"

int rs_mkdir_p(const char *dir)
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

FILE *rs_atomic_create(const char *path, char *tmp, size_t tmplen, int *err)
{
    int n = snprintf(tmp, tmplen, "%s.tmp", path);
    if (n < 0 || (size_t)n >= tmplen) {
        *err = ENAMETOOLONG;
        return NULL;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) *err = errno;
    return f;
}

int rs_atomic_finish(FILE *f, const char *tmp, const char *path, int ok, int sync, int *err)
{
    int e = *err;
    /* the flush first: it retries what is still buffered, and says why (ENOSPC, EFBIG, EIO...) */
    if (ok && fflush(f) != 0) ok = 0, e = errno;
    if (ok && ferror(f)) ok = 0;
    if (ok && sync && fsync(fileno(f)) != 0) ok = 0, e = errno;
    if (fclose(f) != 0 && ok) ok = 0, e = errno;
    if (!ok) {
        remove(tmp);
        *err = e;
        return RS_ATOMIC_WRITE;
    }
    if (rename(tmp, path) != 0) {
        *err = errno;
        remove(tmp);
        return RS_ATOMIC_RENAME;
    }
    return RS_ATOMIC_OK;
}

FILE *rs_atomic_open(const char *path, char *tmp, size_t tmplen)
{
    int e = 0;
    FILE *f = rs_atomic_create(path, tmp, tmplen, &e);
    if (!f) RS_ERROR(RS_EIO, "cannot write '%s': %s", tmp, strerror(e));
    return f;
}

int rs_atomic_close(FILE *f, const char *tmp, const char *path)
{
    int e = 0, stage = rs_atomic_finish(f, tmp, path, 1, 0, &e);
    if (stage == RS_ATOMIC_WRITE)
        return e ? RS_ERROR(RS_EIO, "write error on '%s': %s", tmp, strerror(e)) : RS_ERROR(RS_EIO, "write error on '%s'", tmp);
    if (stage == RS_ATOMIC_RENAME) return RS_ERROR(RS_EIO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
    return RS_OK;
}
