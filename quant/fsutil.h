/* rostesim: the file-system helper both halves share (sim/ writes lsq folders, llm/ writes
 * checkpoints; neither may include the other, so the one copy lives here, with status.h). */
#ifndef RS_FSUTIL_H
#define RS_FSUTIL_H

/* Create a folder and its parents (like mkdir -p); an existing folder is fine. RS_OK, or
 * RS_EINVAL ("folder name '...' is empty or too long") or RS_EIO with a message naming the
 * part that failed ("cannot create folder '<part>': <why>", "'<dir>' exists and is not a
 * folder"). */
int rs_mkdir_p(const char *dir);

#endif
