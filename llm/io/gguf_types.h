/* rostesim LLM: the ggml tensor types, one table of traits (name, block, bytes per block,
 * dequantizer to f32), as ggml's type_traits. Knows nothing of the GGUF container
 * (llm/io/gguf.h reads the file and uses these to dequantize its tensors). */
#ifndef RS_LLM_GGUF_TYPES_H
#define RS_LLM_GGUF_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;       /* "Q4_K" */
    int blck;               /* elements per block */
    size_t type_size;       /* bytes per block */
    /* nblocks blocks from src to nblocks * blck floats; NULL: not supported here */
    void (*to_f32)(const void *src, float *dst, size_t nblocks);
} gguf_type_traits;

/* Traits of a ggml type; NULL for an unknown or removed type id. */
const gguf_type_traits *gguf_type_info(uint32_t type);

/* The supported types as "F32, F16, ..." (static). */
const char *gguf_supported_types(void);

#endif
