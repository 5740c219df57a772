/* rostesim LLM: GGUF reader (llama.cpp / ggml checkpoint files, versions 2 and 3).
 *
 * A file is: magic "GGUF", u32 version, u64 tensor count, u64 metadata count; the metadata
 * key/values (key: u64 length + bytes; u32 value type; value); the tensor infos (name,
 * u32 n_dims, n_dims u64 dimensions INNERMOST FIRST, u32 ggml type, u64 offset into the
 * data section); padding to the alignment (general.alignment, default 32); the data
 * section. All integers are little endian.
 *
 * Files are untrusted: every count, string length, array length, dimension, tensor offset
 * and size is checked against the file size (overflow-safe) before it is used; tensors must
 * lie inside the data section, be aligned and not overlap; keys and tensor names must be
 * unique. Errors name the file, the byte offset and the field ("x.gguf: offset 1234: tensor
 * 7 ('blk.0.attn_q.weight'): dimension 1 is 0"). The file is mapped read-only (mmap);
 * strings and arrays are views into the mapping (strings are NOT NUL-terminated). */
#ifndef RS_LLM_GGUF_H
#define RS_LLM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "llm/io/gguf_types.h"

/* Metadata value types. */
typedef enum {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12, GGUF_NTYPES = 13
} gguf_vtype;

/* ggml tensor types the reader knows the sizes of (see gguf_type_traits). */
enum {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7,
    GGML_Q8_0 = 8, GGML_Q8_1 = 9, GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q4_K = 12,
    GGML_Q5_K = 13, GGML_Q6_K = 14, GGML_Q8_K = 15, GGML_BF16 = 30
};

#define GGUF_MAX_DIMS 4

typedef struct {
    const char *key;        /* NUL-terminated copy */
    gguf_vtype type;
    size_t offset;          /* file offset of the value (after the type) */
    /* scalars */
    uint64_t u;             /* unsigned integers and bool */
    int64_t i;              /* signed integers (and unsigned ones that fit) */
    double f;               /* floats (and every integer, converted) */
    const char *str;        /* GGUF_STRING: view into the mapping, str_len bytes */
    size_t str_len;
    /* GGUF_ARRAY */
    gguf_vtype arr_type;    /* element type (never GGUF_ARRAY: nested arrays are rejected) */
    uint64_t arr_n;
    const unsigned char *arr_data; /* first element (fixed-size element types) */
    const size_t *arr_str_off;     /* string arrays: file offset of each element's length field */
} gguf_kv;

typedef struct {
    const char *name;       /* NUL-terminated copy */
    int ndim;
    uint64_t ne[GGUF_MAX_DIMS]; /* innermost first; unused dims are 1 */
    uint32_t type;          /* ggml type */
    uint64_t nelem;
    size_t nbytes;
    size_t offset;          /* absolute file offset of the data */
    const void *data;       /* inside the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Open and validate path. RS_OK, RS_EIO (cannot read), RS_EINVAL (malformed), RS_ENOTSUP
 * (version 1, nested arrays), RS_ENOMEM. */
int gguf_open(gguf_file **g, const char *path);
/* Same over a buffer the caller keeps alive while g is open (tests, fuzzing). */
int gguf_open_mem(gguf_file **g, const void *buf, size_t size, const char *name);
void gguf_close(gguf_file *g); /* NULL is a no-op */

const char *gguf_path(const gguf_file *g);
uint32_t gguf_version(const gguf_file *g);
size_t gguf_alignment(const gguf_file *g);
size_t gguf_data_offset(const gguf_file *g);

size_t gguf_nkv(const gguf_file *g);
const gguf_kv *gguf_kv_at(const gguf_file *g, size_t i);
const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key); /* NULL if absent */

size_t gguf_ntensors(const gguf_file *g);
const gguf_tensor *gguf_tensor_at(const gguf_file *g, size_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name); /* NULL if absent */

/* Typed getters. Absent key: RS_EINVAL naming the key when `required`, else RS_OK with
 * *out untouched and *found (if not NULL) 0. Wrong type or out of range: RS_EINVAL naming
 * key, type and value. Integers of any width are accepted where they fit. */
int gguf_get_int(const gguf_file *g, const char *key, int required, int64_t *out, int *found);
int gguf_get_float(const gguf_file *g, const char *key, int required, double *out, int *found);
int gguf_get_bool(const gguf_file *g, const char *key, int required, int *out, int *found);
/* A malloc'ed NUL-terminated copy (embedded NUL bytes are an error). */
int gguf_get_str(const gguf_file *g, const char *key, int required, char **out, int *found);
/* An array of the given element type (GGUF_STRING, or any integer type for int arrays). */
int gguf_get_arr(const gguf_file *g, const char *key, int required, const gguf_kv **out);
/* Element i of a string array (view, *len bytes). */
void gguf_arr_str(const gguf_file *g, const gguf_kv *kv, uint64_t i, const char **s, size_t *len);
/* Element i of an integer array, widened. */
int64_t gguf_arr_int(const gguf_kv *kv, uint64_t i);

const char *gguf_vtype_name(int t); /* "u32", "string", ...; "?" if unknown */

/* Dequantize a tensor to t->nelem floats (OpenMP over blocks for large tensors).
 * RS_ENOTSUP naming the tensor and type, and the supported types, when there is no
 * dequantizer. */
int gguf_tensor_to_f32(const gguf_file *g, const gguf_tensor *t, float *dst);


#endif
