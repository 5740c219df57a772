/* rostesim LLM: the sorted-name index (see names.h). */
#include "llm/io/names.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *recs;
    size_t stride, off;
} table;

static const char *name_at(const table *t, size_t i)
{
    return *(const char *const *)(t->recs + i * t->stride + t->off);
}

static int cmp_name(const void *a, const void *b, void *ctx)
{
    return strcmp(name_at(ctx, *(const size_t *)a), name_at(ctx, *(const size_t *)b));
}

void llm_names_sort(size_t *idx, size_t n, const void *recs, size_t stride, size_t name_off)
{
    table t = {recs, stride, name_off};
    qsort_r(idx, n, sizeof *idx, cmp_name, &t);
}

const void *llm_names_find(const size_t *idx, size_t n, const void *recs, size_t stride, size_t name_off,
                           const char *name)
{
    table t = {recs, stride, name_off};
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name_at(&t, idx[mid]), name);
        if (c == 0) return t.recs + idx[mid] * stride;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}
