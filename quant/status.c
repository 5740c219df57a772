#include "quant/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_msg[512];
static rs_error_handler *handler = NULL;

rs_error_handler *rs_set_error_handler(rs_error_handler *h)
{
    rs_error_handler *old = handler;
    handler = h;
    return old;
}

int rs_error(const char *file, int line, int status, const char *fmt, ...)
{
    /* format into a scratch buffer first: callers may pass rs_last_error() itself as an
     * argument (to prefix the previous message), which must not overlap the output */
    char buf[sizeof last_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(last_msg, buf, sizeof last_msg);
    if (handler) handler(last_msg, file, line, status);
    return status;
}

const char *rs_last_error(void) { return last_msg; }

const char *rs_strerror(int status)
{
    switch (status) {
    case RS_OK: return "success";
    case RS_EINVAL: return "invalid argument";
    case RS_ENOMEM: return "out of memory";
    case RS_ENOTSUP: return "not supported";
    case RS_ENUMERIC: return "numerical failure";
    case RS_EIO: return "input/output error";
    default: return "unknown error";
    }
}
