/* rostesim: status codes and the replaceable error reporter (GSL-style).
 * Library code (quant/, solvers/) never prints or exits: it returns one of these
 * codes and records a message with RS_ERROR, which the CLI turns into text. */
#ifndef RS_STATUS_H
#define RS_STATUS_H

enum {
    RS_OK = 0,
    RS_EINVAL = 1,   /* invalid argument (shape, range, spec) */
    RS_ENOMEM = 2,   /* allocation failed */
    RS_ENOTSUP = 3,  /* no construction/implementation for this case */
    RS_ENUMERIC = 4, /* numerical failure (factorisation, non-finite values) */
    RS_EIO = 5       /* file input/output (used by layers that touch files) */
};

/* Called on every error; the default handler only records the message. */
typedef void rs_error_handler(const char *reason, const char *file, int line, int status);

/* Install a handler; returns the previous one. NULL restores the default. */
rs_error_handler *rs_set_error_handler(rs_error_handler *h);

/* Record an error (message formatted printf-style) and return `status`. */
int rs_error(const char *file, int line, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The last recorded message of this thread ("" if none). */
const char *rs_last_error(void);

/* A short name for a status code. */
const char *rs_strerror(int status);

#define RS_ERROR(status, ...) rs_error(__FILE__, __LINE__, (status), __VA_ARGS__)

#endif
