/* rostesim LLM: small file helpers shared by the readers and writers of llm/. */
#ifndef RS_LLM_FILEIO_H
#define RS_LLM_FILEIO_H

#include <stddef.h>

/* Read a whole file of at most `cap` bytes into a malloc'ed NUL-terminated buffer
 * (*out, caller frees; *len bytes without the NUL; len may be NULL). Pipes and other streams
 * are read to their end. Errors name the file: cannot open or a folder (RS_EIO), more than
 * cap bytes (RS_EINVAL), short read (RS_EIO). */
int llm_read_file(const char *path, size_t cap, char **out, size_t *len);

/* Create a folder and its parents (like mkdir -p); an existing folder is fine. */
int llm_mkdir_p(const char *dir);

/* A growable NUL-terminated byte buffer; on allocation failure `oom` is set and further
 * appends are ignored (check it once at the end). Free v when done. */
typedef struct {
    char *v;
    size_t n, cap;
    int oom;
} llm_buf;

void llm_buf_put(llm_buf *b, const char *s, size_t n);

#endif
