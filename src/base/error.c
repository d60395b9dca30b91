/*
 * Error codes and per-object error messages.
 *
 * The code tables are generated from AG_ERRNO_MAP (argot/error.h). An
 * ag_errbuf holds the last error of one object; nothing here is global, so a
 * callback on one loop thread never overwrites another object's message.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "argot/base.h"

const char *ag_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define AG__ERR_TEXT(name, code, text) \
    case code:                         \
        return text;
        AG_ERRNO_MAP(AG__ERR_TEXT)
#undef AG__ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *ag_err_name(int err)
{
    switch (err) {
    case 0:
        return "AG_OK";
#define AG__ERR_NAME(name, code, text) \
    case code:                         \
        return "AG_E_" #name;
        AG_ERRNO_MAP(AG__ERR_NAME)
#undef AG__ERR_NAME
    default:
        return "AG_E_UNKNOWN";
    }
}

int ag_err_from_errno(int errnum)
{
    switch (errnum) {
    case ENOMEM:
        return AG_E_NOMEM;
    case EINVAL:
        return AG_E_INVAL;
    case ENOENT:
    case ENOTDIR:
        return AG_E_NOENT;
    case EEXIST:
        return AG_E_EXISTS;
    case EACCES:
    case EPERM:
    case EROFS:
        return AG_E_PERM;
    case EIO:
    case ENOSPC:
    case EDQUOT:
    case EPIPE:
        return AG_E_IO;
    case ERANGE:
    case EOVERFLOW:
        return AG_E_RANGE;
    case EFBIG:
    case E2BIG:
    case ENAMETOOLONG:
        return AG_E_TOO_LARGE;
    case ETIMEDOUT:
        return AG_E_TIMEDOUT;
    case EAGAIN:
        return AG_E_AGAIN;
    case ECANCELED:
        return AG_E_CANCELED;
    case ENOTSUP:
        return AG_E_UNSUPPORTED;
    default:
        return AG_E_SYS;
    }
}

int ag_errbuf_vset(ag_errbuf *e, int code, const char *fmt, va_list ap)
{
    int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    if (n >= (int)sizeof(e->msg))
        memcpy(e->msg + sizeof(e->msg) - 4, "...", 4);
    else if (n < 0)
        e->msg[0] = '\0';
    e->code = code;
    return code;
}

int ag_errbuf_set(ag_errbuf *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ag_errbuf_vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

void ag_errbuf_clear(ag_errbuf *e)
{
    e->code = 0;
    e->msg[0] = '\0';
}
