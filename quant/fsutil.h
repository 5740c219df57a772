/* rostesim: the file-system helpers both halves share (sim/ writes lsq folders, llm/ writes
 * checkpoints; neither may include the other, so the one copy lives here, with status.h):
 * mkdir -p and the one atomic writer. */
#ifndef RS_FSUTIL_H
#define RS_FSUTIL_H

#include <stddef.h>
#include <stdio.h>

/* Create a folder and its parents (like mkdir -p); an existing folder is fine. RS_OK, or
 * RS_EINVAL ("folder name '...' is empty or too long") or RS_EIO with a message naming the
 * part that failed ("cannot create folder '<part>': <why>", "'<dir>' exists and is not a
 * folder"). */
int rs_mkdir_p(const char *dir);

/* The one atomic writer: the bytes go to "<path>.tmp", which is renamed over path only when
 * every write, the flush (and, asked for, the fsync) and the close succeeded, so path holds
 * its old bytes or all the new ones, never a truncated file; on failure the temporary is
 * removed. Two faces share it: llm_atomic_* (llm/io/fileio.h, which records no message: its
 * callers word their own) and the pair below, which records one.
 *
 * rs_atomic_create: fopen "<path>.tmp" (its name into tmp, tmplen bytes) for writing; NULL
 * with *err = errno (ENAMETOOLONG when the name does not fit). rs_atomic_finish: the end of
 * the write, `ok` saying whether the caller's own writes succeeded; RS_ATOMIC_OK, or the step
 * that failed (RS_ATOMIC_WRITE: a write, the flush, fsync or close; RS_ATOMIC_RENAME) with its
 * errno in *err (a caller's !ok keeps the *err it passed). */
enum { RS_ATOMIC_OK = 0, RS_ATOMIC_CREATE, RS_ATOMIC_WRITE, RS_ATOMIC_RENAME };
FILE *rs_atomic_create(const char *path, char *tmp, size_t tmplen, int *err);
int rs_atomic_finish(FILE *f, const char *tmp, const char *path, int ok, int sync, int *err);

/* The same with messages: rs_atomic_open records "cannot write '<tmp>': <why>" on failure;
 * rs_atomic_close (flush, close, rename) returns RS_OK or RS_EIO with "write error on '<tmp>':
 * <why>" or "cannot rename '<tmp>' to '<path>': <why>". */
FILE *rs_atomic_open(const char *path, char *tmp, size_t tmplen);
int rs_atomic_close(FILE *f, const char *tmp, const char *path);

#endif
