/* rostesim LLM: the sorted-name index shared by the tensor tables of llm/io/safetensors.c and
 * llm/io/gguf.c. The records are an array (stride bytes apart) each holding a `const char *` name
 * at byte offset name_off; the index is an array of their positions sorted by name. */
#ifndef RS_LLM_NAMES_H
#define RS_LLM_NAMES_H

#include <stddef.h>

/* Sort idx[0..n) (positions into recs) by the records' names (strcmp order). */
void llm_names_sort(size_t *idx, size_t n, const void *recs, size_t stride, size_t name_off);

/* The record named `name` by binary search in an index sorted by llm_names_sort; NULL if none. */
const void *llm_names_find(const size_t *idx, size_t n, const void *recs, size_t stride, size_t name_off,
                           const char *name);

#endif
