/* rostesim LLM: safetensors reader and writer.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}),
 * then the data. Files are untrusted: the header length, every offset, every shape
 * product and dtype size are checked against each other and the file size before any
 * byte is used; tensors must not overlap. Files are mapped read-only (mmap).
 *
 * A checkpoint folder holds either model.safetensors or model.safetensors.index.json
 * ({"weight_map": {"tensor name": "shard file"}}) with its shards. */
#ifndef RS_LLM_SAFETENSORS_H
#define RS_LLM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32 = 0, ST_F16 = 1, ST_BF16 = 2, ST_F64 = 3, ST_I64 = 4, ST_I32 = 5,
               ST_I8 = 6, ST_U8 = 7, ST_BOOL = 8, ST_OTHER = 9 } st_dtype;

#define ST_MAX_DIMS 8

typedef struct {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t nelem;       /* product of shape (1 for a scalar) */
    size_t nbytes;      /* end - begin */
    const void *data;   /* inside the mapping of its file (not necessarily aligned) */
    int file;           /* index of the shard it lives in */
    size_t offset;      /* byte offset of data in its file (8 + header length + begin) */
    const char *dtype_name; /* as in the header: "F32", "BF16", "F8_E4M3", ... */
} st_tensor;

typedef struct st_set st_set;

/* Open a folder (model.safetensors or model.safetensors.index.json + shards) or a single
 * .safetensors file. Errors name the file and what is wrong (offset past end of file,
 * bad JSON at byte k, unknown dtype, shape/offset mismatch, duplicate tensor, shard
 * missing, ...). Returns RS_OK, RS_EIO, RS_EINVAL, RS_ENOMEM. */
int st_open(st_set **s, const char *path);
void st_close(st_set *s); /* NULL is a no-op */

size_t st_count(const st_set *s);
const st_tensor *st_get(const st_set *s, size_t i);
const st_tensor *st_find(const st_set *s, const char *name); /* NULL if absent */
const char *st_file_name(const st_set *s, int file);          /* path of shard `file` */
int st_nfiles(const st_set *s);
/* Value of key in the "__metadata__" of shard `file`; NULL if absent. */
const char *st_metadata(const st_set *s, int file, const char *key);

/* Convert a floating tensor (F32, F16, BF16, F64) to f32 into dst (t->nelem floats).
 * RS_ENOTSUP for non-float dtypes. F16 subnormals, infinities and NaN convert exactly. */
int st_read_f32(const st_tensor *t, float *dst);

/* Check that t has this exact shape; on mismatch an error naming the tensor, the file
 * and both shapes. */
int st_expect_shape(const st_set *s, const st_tensor *t, int ndim, const int64_t *shape);

/* Writer, written to path + ".tmp" and renamed into place. Tensors are F32 unless their
 * dtype says ST_I32, ST_I8 or ST_U8 (zero-initialised st_out are F32); data points to nelem
 * values of that type. Tensor names must be unique; the header is padded with spaces to a
 * multiple of 8 bytes (as the reference implementation does). `metadata` may be NULL or a
 * list of nmeta key/value string pairs stored under "__metadata__" (e.g. {"format", "pt"}). */
typedef struct {
    const char *name;
    const void *data;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    st_dtype dtype; /* ST_F32 (0), ST_I32, ST_I8 or ST_U8 */
} st_out;

int st_write(const char *path, const st_out *t, size_t n, const char *const *metadata, size_t nmeta);

/* f16 / bf16 <-> f32 conversions (round-to-nearest-even on the way down). */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);
uint16_t st_f32_to_f16(float f);
uint16_t st_f32_to_bf16(float f);

#endif
