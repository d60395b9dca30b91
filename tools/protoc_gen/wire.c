/*
 * The protobuf wire format's writing half for protoc-gen-argot: a growable
 * buffer, varints and length-delimited fields (the reading half is in
 * request.c, next to its only user). An allocation failure is sticky
 * (pg_buf.failed), so callers check once at the end.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protoc_gen.h"

static bool reserve(pg_buf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n <= b->cap - b->len)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void pg_buf_put(pg_buf *b, const void *p, size_t n)
{
    if (n == 0 || !reserve(b, n))
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void pg_buf_puts(pg_buf *b, const char *s)
{
    pg_buf_put(b, s, strlen(s));
}

void pg_buf_printf(pg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    /* one more for vsnprintf's NUL, which is not counted in len */
    if (!reserve(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void pg_buf_free(pg_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void pg_put_varint(pg_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        tmp[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    pg_buf_put(b, tmp, n);
}

void pg_put_uint_field(pg_buf *b, uint32_t field, uint64_t v)
{
    pg_put_varint(b, (uint64_t)field << 3);
    pg_put_varint(b, v);
}

void pg_put_bytes_field(pg_buf *b, uint32_t field, const void *p, size_t n)
{
    pg_put_varint(b, ((uint64_t)field << 3) | 2);
    pg_put_varint(b, n);
    pg_buf_put(b, p, n);
}

void pg_put_str_field(pg_buf *b, uint32_t field, const char *s)
{
    pg_put_bytes_field(b, field, s, strlen(s));
}
