/* rostesim fuzzing: helpers shared by the libFuzzer harnesses (fuzz/fuzz_*.c).
 *
 * Each harness defines LLVMFuzzerTestOneInput. Built by `make fuzz` with clang
 * -fsanitize=fuzzer,address,undefined; the same file is built by gcc with the plain
 * replay main (fuzz/replay_main.c) that `make test` runs over fuzz/regress/<harness>/.
 * Harnesses run from the repository root (fixtures are read from tests/fixtures). */
#ifndef RS_FUZZ_UTIL_H
#define RS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir_path[256];

static inline void fuzz_dir_remove(void)
{
    DIR *d = opendir(fuzz_dir_path);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[600];
            snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(fuzz_dir_path);
}

/* A private scratch folder (created on first use, under /dev/shm when it exists). */
static inline const char *fuzz_dir(void)
{
    char *dir = fuzz_dir_path;
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        snprintf(dir, sizeof fuzz_dir_path, "%s/rostesim-fuzz-XXXXXX", base);
        if (!mkdtemp(dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_dir_remove);
    }
    return dir;
}

/* Write n bytes to fuzz_dir()/name; returns the path (static buffer per slot 0..3). */
static inline const char *fuzz_write(int slot, const char *name, const void *p, size_t n)
{
    static char path[4][512];
    snprintf(path[slot], sizeof path[slot], "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path[slot], "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        perror("fuzz: write");
        abort();
    }
    return path[slot];
}

/* A malloc'ed NUL-terminated copy (libFuzzer's data is not terminated). */
static inline char *fuzz_strdup(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Split at the first occurrence of the separator "\n--8<--\n": part a before, b after
 * (b = NULL, bn = 0 when absent). */
#define FUZZ_SEP "\n--8<--\n"
static inline void fuzz_split(const uint8_t *p, size_t n, const uint8_t **a, size_t *an, const uint8_t **b, size_t *bn)
{
    const size_t k = sizeof FUZZ_SEP - 1;
    *a = p, *an = n, *b = NULL, *bn = 0;
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, FUZZ_SEP, k) == 0) {
            *an = i;
            *b = p + i + k;
            *bn = n - i - k;
            return;
        }
}

#endif
