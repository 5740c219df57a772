/* rostesim: the shared file-system helper (see fsutil.h). */
#include "quant/fsutil.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

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
