/*
 * Slices and growable byte buffers with a maximum size.
 *
 * Invariants of ag_buf:
 *   1. len <= max, and len < cap whenever data != NULL (room for the NUL);
 *   2. data[len] == '\0' whenever data != NULL;
 *   3. a secret buffer's old memory is wiped before it is released, also
 *      when growth moves it (so no copy of a share is left in freed memory).
 */
#include <stdio.h>
#include <string.h>

#include "argot/base.h"

ag_slice ag_slice_str(const char *s)
{
    return ag_slice_make(s, s ? strlen(s) : 0);
}

bool ag_slice_eq(ag_slice a, ag_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool ag_slice_eq_str(ag_slice a, const char *s)
{
    return ag_slice_eq(a, ag_slice_str(s));
}

void ag_buf_init(ag_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->secret = false;
}

void ag_buf_cleanup(ag_buf *b)
{
    if (b->data && b->secret)
        ag_wipe(b->data, b->cap);
    ag_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void ag_buf_reset(ag_buf *b)
{
    if (b->data) {
        if (b->secret)
            ag_wipe(b->data, b->len);
        b->data[0] = '\0';
    }
    b->len = 0;
}

int ag_buf_reserve(ag_buf *b, size_t extra)
{
    /* the second test keeps len + extra + 1 (the terminator) from wrapping */
    if (extra > b->max - b->len || extra > SIZE_MAX - 1 - b->len)
        return AG_E_TOO_LARGE;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > b->max + 1 && need <= b->max + 1)
        ncap = b->max + 1;
    uint8_t *nd;
    if (b->secret && b->data) {
        nd = ag_malloc(ncap);
        if (!nd)
            return AG_E_NOMEM;
        memcpy(nd, b->data, b->len + 1);
        ag_wipe(b->data, b->cap);
        ag_free(b->data);
    } else {
        nd = ag_realloc(b->data, ncap);
        if (!nd)
            return AG_E_NOMEM;
        if (!b->data)
            nd[0] = '\0';
    }
    b->data = nd;
    b->cap = ncap;
    return 0;
}

int ag_buf_append(ag_buf *b, const void *p, size_t n)
{
    int rc = ag_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ag_buf_append_byte(ag_buf *b, uint8_t c)
{
    return ag_buf_append(b, &c, 1);
}

int ag_buf_append_str(ag_buf *b, const char *s)
{
    return ag_buf_append(b, s, strlen(s));
}

int ag_buf_vprintf(ag_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return AG_E_INVAL;
    int rc = ag_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int ag_buf_printf(ag_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ag_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void ag_buf_consume(ag_buf *b, size_t n)
{
    if (n >= b->len) {
        ag_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    if (b->secret)
        ag_wipe(b->data + b->len, n);
    b->data[b->len] = '\0';
}

uint8_t *ag_buf_take(ag_buf *b, size_t *len)
{
    uint8_t *d = b->data;
    *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
