/* rostesim LLM: small file helpers shared by the readers and writers of llm/. */
#ifndef RS_LLM_FILEIO_H
#define RS_LLM_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include "quant/fsutil.h"

/* Read a whole file of at most `cap` bytes into a malloc'ed NUL-terminated buffer
 * (*out, caller frees; *len bytes without the NUL; len may be NULL). Pipes and other streams
 * are read to their end. Errors name the file: cannot open or a folder (RS_EIO), more than
 * cap bytes (RS_EINVAL), short read (RS_EIO). */
int llm_read_file(const char *path, size_t cap, char **out, size_t *len);
/* (errno after a failure to open is the open's; after a folder, EISDIR.) */

/* No size limit for llm_read_file beyond the memory there is (small files we wrote ourselves). */
#define LLM_READ_ANY_SIZE ((size_t)-1 / 2)

/* The one atomic writer (rs_atomic_create/finish in quant/fsutil.h, which sim/ shares), as llm/
 * uses it: the bytes go to "<path>.tmp", which is renamed over path only when every write, the
 * flush (and with LLM_ATOMIC_SYNC the fsync) and the close succeeded, so path holds its old
 * bytes or all the new ones, never a truncated file; on failure the temporary is removed. It
 * records no error message: the caller words its own from `stage` and `err`.
 *
 *     llm_atomic a;
 *     if (llm_atomic_open(&a, path, 0)) ...   a.err: errno of the failed create (a.tmp names it)
 *     int ok = fwrite(..., a.f) == n;         any writes into a.f
 *     if (llm_atomic_commit(&a, ok)) ...      a.stage: LLM_ATOMIC_WRITE or _RENAME; a.err
 *
 * A caller that gives up between open and commit calls llm_atomic_abort. */
enum { LLM_ATOMIC_SYNC = 1 };
enum { LLM_ATOMIC_OK = RS_ATOMIC_OK, LLM_ATOMIC_CREATE = RS_ATOMIC_CREATE, LLM_ATOMIC_WRITE = RS_ATOMIC_WRITE,
       LLM_ATOMIC_RENAME = RS_ATOMIC_RENAME };
typedef struct {
    FILE *f;        /* the temporary, open for writing between open and commit */
    char tmp[4200]; /* its name, "<path>.tmp" */
    const char *path;
    int flags;      /* LLM_ATOMIC_SYNC: fflush and fsync before the close */
    int stage;      /* the step that failed: LLM_ATOMIC_CREATE, _WRITE or _RENAME */
    int err;        /* its errno */
} llm_atomic;

/* Create "<path>.tmp"; 0, or -1 with stage LLM_ATOMIC_CREATE and err set (ENAMETOOLONG for a
 * path too long for tmp). */
int llm_atomic_open(llm_atomic *a, const char *path, int flags);
/* Close the temporary and rename it over path when `ok` (the caller's writes succeeded) and the
 * stream has no error; 0, or -1 with stage and err set and the temporary removed. */
int llm_atomic_commit(llm_atomic *a, int ok);
/* Close and remove the temporary without renaming it. */
void llm_atomic_abort(llm_atomic *a);
/* open + one write of n bytes + commit. */
int llm_atomic_write(llm_atomic *a, const char *path, const void *data, size_t n, int flags);
/* Record the writer's standard message for a failed open or commit and return RS_EIO:
 * "<tmp>: cannot create: <why>", "<tmp>: write failed: <why>" or
 * "<path>: cannot rename <tmp> into place: <why>". */
int llm_atomic_error(const llm_atomic *a);
/* open + the text and a newline + commit (JSON files). */
int llm_atomic_write_line(llm_atomic *a, const char *path, const char *text, int flags);

/* Folders are created with rs_mkdir_p (mkdir -p), shared with sim/ and so kept in quant/fsutil.h,
 * included above for every writer of llm/. */

/* A growable NUL-terminated byte buffer; on allocation failure `oom` is set and further
 * appends are ignored (check it once at the end). Free v when done. */
typedef struct {
    char *v;
    size_t n, cap;
    int oom;
} llm_buf;

void llm_buf_put(llm_buf *b, const char *s, size_t n);
void llm_buf_printf(llm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
