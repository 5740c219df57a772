/* rostesim fuzzing: replay a corpus without libFuzzer. Built by gcc with the normal flags
 * beside one harness (fuzz/fuzz_<name>.c); `make test` runs it over fuzz/regress/<name>/.
 * Every file is fed to LLVMFuzzerTestOneInput once: a crash, a sanitizer report (under
 * `make test-asan`) or a hang fails the test. Arguments: folders or files (default: the
 * folder compiled in as FUZZ_REGRESS). Prints "fuzz_<name>: N passed, 0 failed".
 * FUZZ_VERBOSE=1 prints the last error message the library recorded for each file. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "quant/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#ifndef FUZZ_NAME
#define FUZZ_NAME "fuzz"
#endif

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open %s\n", FUZZ_NAME, path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    for (size_t k; buf && (k = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += k;
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "%s: out of memory reading %s\n", FUZZ_NAME, path);
        return -1;
    }
    /* an exact-size copy, so that ASan sees reads past the end */
    unsigned char *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path, int *count)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "%s: no such file or folder: %s\n", FUZZ_NAME, path);
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        rs_error(__FILE__, __LINE__, RS_OK, "%s", "");
        if (run_file(path)) return -1;
        if (getenv("FUZZ_VERBOSE")) printf("PASS %s (last error: %s)\n", path, rs_last_error());
        else printf("PASS %s\n", path);
        ++*count;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int st = 0;
    for (size_t i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, names[i]);
        if (!st && run_path(p, count)) st = -1;
        free(names[i]);
    }
    free(names);
    return st;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int count = 0, st = 0;
    if (argc < 2) {
#ifdef FUZZ_REGRESS
        st = run_path(FUZZ_REGRESS, &count);
#endif
    }
    for (int i = 1; i < argc && !st; i++) st = run_path(argv[i], &count);
    if (st == 0 && count == 0) {
        fprintf(stderr, "%s: empty corpus\n", FUZZ_NAME);
        st = -1;
    }
    printf("%s: %d passed, %d failed\n", FUZZ_NAME, count, st ? 1 : 0);
    return st ? 1 : 0;
}
