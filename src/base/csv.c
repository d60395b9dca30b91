/*
 * CSV: a streaming RFC 4180 reader and writer, and the UTF-8 check they use.
 *
 * The reader holds one read buffer (RBUF_SIZE bytes, file and descriptor
 * sources only; a memory source is parsed in place) and one record: the
 * unescaped bytes of its fields back to back in an ag_buf whose max is
 * opts.max_record, and ends[], the offset just past each field. Nothing else
 * grows with the input, so memory stays constant whatever the file size.
 * Every byte the parser accepts is copied into the record at once, so a
 * refill may overwrite the whole read buffer and a record may straddle any
 * number of refills.
 *
 * The parser is a state machine over bytes (read_record()):
 *
 *   START      at a record's start: LF (or CRLF) is a blank line, skipped
 *   START_CR   a CR at a record's start; only LF may follow
 *   FIELD      at a field's start (after a delimiter): '"' opens a quoted
 *              field, anything else is an unquoted one
 *   UNQUOTED   inside an unquoted field; bytes up to the next delimiter,
 *              '"', CR or LF are found sixteen at a time (SSE2) and copied
 *              in bulk; a plain record is read in one call of the loop
 *   QUOTED     inside a quoted field; bytes up to the next '"' are copied
 *              in bulk (memchr), LFs in them counted as lines
 *   QUOTE      just after a '"' in a quoted field: '"' is an escaped quote;
 *              a delimiter, CR, LF or the end close the field
 *   CR         a CR that ended a field; only LF may follow
 *
 * Invariants:
 *   1. p <= end; bytes() == before + (p - win) counts every byte parsed;
 *   2. line is the physical line of *p (1-based: LFs consumed + 1) and
 *      rec_line the line where the current record's first byte is;
 *   3. ends[0..nfields) is non-decreasing and ends[nfields-1] <= rec.len;
 *      rec.data[rec.len] == '\0' whenever rec.data != NULL (ag_buf's rule);
 *   4. once sticky != 0 the reader is done: ag_csv_next, ag_csv_col and the
 *      getters return sticky and leave the message that ended it in err.
 *
 * Choices where base.h leaves room: zero in opts.max_record, opts.max_fields
 * or opts.delimiter means the default; a delimiter of '"', CR or LF makes
 * the open calls fail with AG_E_INVAL; "-" keeps "-" as the name used in
 * messages; a CR not followed by LF outside quotes (also at the end of the
 * input) is a syntax error; an offset reported for bad UTF-8 is the first
 * byte of the bad sequence; after the header is read, the current record
 * is the header (ag_csv_field() reads its names as bytes).
 *
 * The writer buffers WBUF_SIZE bytes in front of write(2), or appends to a
 * caller's ag_buf. I/O and size errors are sticky: after one, every call
 * returns it and close reports it; close returns the first error of any
 * kind. Besides the four bytes that force quotes, a first field starting
 * with the bytes of a BOM is quoted, so every record reads back as written.
 * A single thread uses a reader or writer.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "argot/base.h"

#define RBUF_SIZE (256u * 1024u)
#define WBUF_SIZE (64u * 1024u)
#define DEFAULT_MAX_RECORD ((size_t)16 * 1024 * 1024)
#define DEFAULT_MAX_FIELDS ((size_t)65536)
#define VALUE_SHOWN 40 /* bytes of a bad value quoted in a message */

static const uint8_t bom[3] = {0xEF, 0xBB, 0xBF};

void ag_csv_opts_init(ag_csv_opts *opts)
{
    opts->delimiter = ',';
    opts->header = true;
    opts->max_record = DEFAULT_MAX_RECORD;
    opts->max_fields = DEFAULT_MAX_FIELDS;
    opts->crlf = false;
}

/* Copies opts (or the defaults) into out, with zeros replaced by defaults. */
static void opts_resolve(ag_csv_opts *out, const ag_csv_opts *opts)
{
    if (opts)
        *out = *opts;
    else
        ag_csv_opts_init(out);
    if (out->delimiter == '\0')
        out->delimiter = ',';
    if (out->max_record == 0)
        out->max_record = DEFAULT_MAX_RECORD;
    if (out->max_fields == 0)
        out->max_fields = DEFAULT_MAX_FIELDS;
}

static bool delimiter_ok(char d)
{
    return d != '"' && d != '\r' && d != '\n';
}

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                     */
/* ------------------------------------------------------------------------ */

/* Length of the well-formed sequence at p (avail bytes readable), or 0 if
 * it is not one. Follows Unicode's table of well-formed byte sequences
 * (Table 3-7), which excludes overlongs, surrogates and values past
 * U+10FFFF through the bounds of the second byte. */
static size_t utf8_seq_len(const uint8_t *p, size_t avail)
{
    uint8_t c = p[0];
    uint8_t lo = 0x80, hi = 0xBF;
    size_t len;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if ((p[k] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* Checks s, eight ASCII bytes at a time while it can. On failure *bad gets
 * the offset of the first byte of the first ill-formed sequence (a
 * truncated sequence is bad at its lead byte); on success, s.len. */
bool ag_utf8_valid(ag_slice s, size_t *bad)
{
    const uint8_t *p = s.ptr;
    size_t n = s.len, i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & UINT64_C(0x8080808080808080)) == 0) {
                i += 8;
                continue;
            }
        }
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = utf8_seq_len(p + i, n - i);
        if (len == 0) {
            if (bad)
                *bad = i;
            return false;
        }
        i += len;
    }
    if (bad)
        *bad = n;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */
/* ------------------------------------------------------------------------ */

enum {
    S_START,
    S_START_CR,
    S_FIELD,
    S_UNQUOTED,
    S_QUOTED,
    S_QUOTE,
    S_CR,
    S_DONE,  /* a record is complete */
    S_ERROR, /* sticky is set */
};

struct ag_csv_reader {
    ag_csv_opts opts;
    ag_errbuf err;
    int sticky;          /* the error that ended the reader; 0 if none */
    bool opened;
    bool done;           /* the end of the input was reached */
    char *name;          /* for messages */
    /* input */
    int fd;              /* -1 for a memory source */
    bool own_fd;         /* opened by us from a path */
    bool eof;            /* no bytes beyond [p, end) */
    uint8_t *rbuf;       /* RBUF_SIZE bytes; fd sources only */
    const uint8_t *win;  /* start of the current window */
    const uint8_t *p;    /* next byte to parse */
    const uint8_t *end;  /* end of the window */
    uint64_t before;     /* bytes in the windows before win */
    /* position */
    uint64_t line;       /* physical line of *p, 1-based */
    uint64_t rec_line;   /* line where the current record starts */
    uint64_t quote_line; /* line where the open quoted field starts */
    uint64_t nrecords;   /* data records returned */
    /* current record */
    ag_buf rec;          /* unescaped field bytes, back to back */
    size_t *ends;        /* ends[i]: offset in rec just past field i */
    size_t nfields;
    size_t ends_cap;     /* entries allocated in ends */
    /* header */
    char *hdr;           /* column names, each NUL-terminated */
    const char **cols;   /* ncols pointers into hdr, then NULL */
    size_t ncols;
    bool special[256];   /* delimiter, '"', CR, LF */
};

ag_csv_reader *ag_csv_reader_new(const ag_csv_opts *opts)
{
    ag_csv_reader *r = ag_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    opts_resolve(&r->opts, opts);
    ag_errbuf_clear(&r->err);
    r->fd = -1;
    r->line = 1;
    r->rec_line = 1;
    ag_buf_init(&r->rec, r->opts.max_record);
    r->special[(uint8_t)r->opts.delimiter] = true;
    r->special['"'] = true;
    r->special['\r'] = true;
    r->special['\n'] = true;
    return r;
}

void ag_csv_reader_free(ag_csv_reader *r)
{
    if (!r)
        return;
    if (r->own_fd && r->fd >= 0)
        close(r->fd);
    ag_free(r->name);
    ag_free(r->rbuf);
    ag_buf_cleanup(&r->rec);
    ag_free(r->ends);
    ag_free(r->hdr);
    ag_free(r->cols);
    ag_free(r);
}

const char *ag_csv_reader_errmsg(const ag_csv_reader *r)
{
    return r->err.msg;
}

/* Records an error that ends the reader; returns code. */
static int fail(ag_csv_reader *r, int code, const char *fmt, ...) AG_PRINTF(3, 4);
static int fail(ag_csv_reader *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ag_errbuf_vset(&r->err, code, fmt, ap);
    va_end(ap);
    r->sticky = code;
    r->nfields = 0;
    return code;
}

/* Makes the next window: RBUF_SIZE bytes at most from the descriptor.
 * Called only when the window is used up (p == end). Returns 1 when bytes
 * are available, 0 at the end of the input, or AG_E_IO. */
static int refill(ag_csv_reader *r)
{
    assert(r->p == r->end);
    if (r->eof)
        return 0;
    r->before += (uint64_t)(r->end - r->win);
    r->win = r->p = r->end = r->rbuf;
    for (;;) {
        ssize_t n = read(r->fd, r->rbuf, RBUF_SIZE);
        if (n > 0) {
            r->end = r->rbuf + n;
            return 1;
        }
        if (n == 0) {
            r->eof = true;
            return 0;
        }
        if (errno != EINTR)
            return fail(r, AG_E_IO, "%s: read error: %s", r->name, strerror(errno));
    }
}

/* Reads the first bytes of a descriptor, as long as they could still be a
 * byte order mark (so a pipe is never waited on for bytes it may not send
 * yet), and sets up the first window. Returns 0 or AG_E_IO. */
static int prime_fd(ag_csv_reader *r)
{
    size_t have = 0;
    while (have < sizeof(bom) && memcmp(r->rbuf, bom, have) == 0) {
        ssize_t n = read(r->fd, r->rbuf + have, RBUF_SIZE - have);
        if (n > 0) {
            have += (size_t)n;
        } else if (n == 0) {
            r->eof = true;
            break;
        } else if (errno != EINTR) {
            return fail(r, AG_E_IO, "%s: read error: %s", r->name, strerror(errno));
        }
    }
    r->win = r->p = r->rbuf;
    r->end = r->rbuf + have;
    return 0;
}

/* rec_put's slow path: grows the record (AG_E_TOO_LARGE past
 * opts.max_record, AG_E_NOMEM), then appends. */
static __attribute__((noinline)) int rec_grow_put(ag_csv_reader *r, const uint8_t *s, size_t n)
{
    ag_buf *b = &r->rec;
    int rc = ag_buf_reserve(b, n);
    if (rc == AG_E_TOO_LARGE)
        return fail(r, rc, "%s:%" PRIu64 ": record longer than %zu bytes", r->name,
                    r->rec_line, r->opts.max_record);
    if (rc < 0)
        return fail(r, rc, "%s: out of memory", r->name);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* Appends the n bytes at s (readable up to lim) to the record. Most fields
 * are short: when 16 bytes may be read at s and written at the record's
 * end, a fixed 16-byte copy (bytes past n are scratch, overwritten later)
 * beats a call to memcpy. Room in the buffer implies the max holds, since
 * ag_buf never makes cap larger than max + 1. */
static inline int rec_put(ag_csv_reader *r, const uint8_t *s, size_t n, const uint8_t *lim)
{
    ag_buf *b = &r->rec;
    size_t room = b->cap - b->len;
    if (n <= 16 && room > 16 && lim - s >= 16)
        memcpy(b->data + b->len, s, 16);
    else if (n < room)
        memcpy(b->data + b->len, s, n);
    else
        return rec_grow_put(r, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* end_field's slow path: grows ends[] up to opts.max_fields. */
static __attribute__((noinline)) int end_field_grow(ag_csv_reader *r)
{
    if (r->nfields >= r->opts.max_fields)
        return fail(r, AG_E_TOO_LARGE, "%s:%" PRIu64 ": more than %zu fields", r->name,
                    r->rec_line, r->opts.max_fields);
    size_t ncap = r->ends_cap ? r->ends_cap * 2 : 16;
    ncap = AG_MIN(ncap, r->opts.max_fields);
    size_t *ne = ag_reallocarray(r->ends, ncap, sizeof(*ne));
    if (!ne)
        return fail(r, AG_E_NOMEM, "%s: out of memory", r->name);
    r->ends = ne;
    r->ends_cap = ncap;
    r->ends[r->nfields++] = r->rec.len;
    return 0;
}

/* Ends the field being read at the record's current length. Returns 0,
 * AG_E_TOO_LARGE past opts.max_fields, or AG_E_NOMEM. */
static inline int end_field(ag_csv_reader *r)
{
    if (r->nfields < r->ends_cap) {
        r->ends[r->nfields++] = r->rec.len;
        return 0;
    }
    return end_field_grow(r);
}

static int bare_cr(ag_csv_reader *r, size_t field)
{
    return fail(r, AG_E_CSV_SYNTAX, "%s:%" PRIu64 ": bare CR in unquoted field %zu", r->name,
                r->rec_line, field);
}

/* The next special byte (delimiter, '"', CR, LF) in [p, end), or end.
 * With SSE2 (every x86-64), sixteen bytes at a time: fields are short, so
 * the first block usually holds the answer and the loop's branch is
 * predictable, where a byte-at-a-time scan mispredicts once per field.
 * The tail, and other targets, use the special[] table. */
static inline const uint8_t *scan_special(const ag_csv_reader *r, const uint8_t *p,
                                          const uint8_t *end)
{
#if defined(__SSE2__)
    const __m128i vd = _mm_set1_epi8(r->opts.delimiter);
    const __m128i vq = _mm_set1_epi8('"');
    const __m128i vr = _mm_set1_epi8('\r');
    const __m128i vn = _mm_set1_epi8('\n');
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, vd), _mm_cmpeq_epi8(x, vq)),
                                 _mm_or_si128(_mm_cmpeq_epi8(x, vr), _mm_cmpeq_epi8(x, vn)));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
    while (p < end && !r->special[*p])
        p++;
    return p;
}

/* UNQUOTED: the hot loop. Copies a run of ordinary bytes, then acts on the
 * byte that ends it; after a delimiter it carries on into the next field
 * while that one is unquoted, so a plain record takes one call. Returns
 * the next state. */
static int step_unquoted(ag_csv_reader *r)
{
    const uint8_t *p = r->p, *end = r->end;
    const uint8_t delim = (uint8_t)r->opts.delimiter;
    for (;;) {
        const uint8_t *q = scan_special(r, p, end);
        if (q > p && rec_put(r, p, (size_t)(q - p), end) < 0)
            return S_ERROR;
        r->p = q;
        if (q == end)
            return S_UNQUOTED;
        uint8_t c = *q;
        p = ++r->p;
        if (c == '"') {
            fail(r, AG_E_CSV_SYNTAX, "%s:%" PRIu64 ": quote inside unquoted field %zu",
                 r->name, r->rec_line, r->nfields + 1);
            return S_ERROR;
        }
        if (end_field(r) < 0)
            return S_ERROR;
        if (c == delim) {
            if (p < end && *p != '"')
                continue;
            return S_FIELD;
        }
        if (c == '\r') {
            if (p == end)
                return S_CR;
            if (*p != '\n') {
                bare_cr(r, r->nfields);
                return S_ERROR;
            }
            r->p = ++p;
        }
        r->line++;
        return S_DONE;
    }
}

/* QUOTED: copies bytes up to the next quote, counting the LFs among them
 * as lines. Returns the next state. */
static int step_quoted(ag_csv_reader *r)
{
    const uint8_t *q = memchr(r->p, '"', (size_t)(r->end - r->p));
    if (!q)
        q = r->end;
    for (const uint8_t *s = r->p; s < q; s++) {
        s = memchr(s, '\n', (size_t)(q - s));
        if (!s)
            break;
        r->line++;
    }
    if (q > r->p && rec_put(r, r->p, (size_t)(q - r->p), r->end) < 0)
        return S_ERROR;
    r->p = q;
    if (q == r->end)
        return S_QUOTED;
    r->p++;
    return S_QUOTE;
}

/* QUOTE: the byte after a quote inside a quoted field. */
static int step_quote(ag_csv_reader *r)
{
    uint8_t c = *r->p;
    if (c == '"') {
        r->p++;
        return rec_put(r, &c, 1, &c + 1) < 0 ? S_ERROR : S_QUOTED;
    }
    if (c != (uint8_t)r->opts.delimiter && c != '\r' && c != '\n') {
        fail(r, AG_E_CSV_SYNTAX,
             "%s:%" PRIu64 ": unexpected character after closing quote in field %zu", r->name,
             r->rec_line, r->nfields + 1);
        return S_ERROR;
    }
    r->p++;
    if (end_field(r) < 0)
        return S_ERROR;
    if (c == '\n') {
        r->line++;
        return S_DONE;
    }
    return c == '\r' ? S_CR : S_FIELD;
}

/* FIELD: a field starts at p, quoted or not. */
static int step_field(ag_csv_reader *r)
{
    if (*r->p == '"') {
        r->p++;
        r->quote_line = r->line;
        return S_QUOTED;
    }
    return step_unquoted(r);
}

/* One transition from state st on the byte at p (there is one). */
static int step(ag_csv_reader *r, int st)
{
    uint8_t c = *r->p;
    switch (st) {
    case S_START:
        if (c == '\r') {
            r->p++;
            return S_START_CR;
        }
        if (c == '\n') {
            r->p++;
            r->rec_line = ++r->line;
            return S_START;
        }
        return step_field(r);
    case S_FIELD:
        return step_field(r);
    case S_START_CR:
    case S_CR:
        if (c != '\n') {
            bare_cr(r, st == S_CR ? r->nfields : 1);
            return S_ERROR;
        }
        r->p++;
        r->line++;
        if (st == S_CR)
            return S_DONE;
        r->rec_line = r->line;
        return S_START;
    case S_UNQUOTED:
        return step_unquoted(r);
    case S_QUOTED:
        return step_quoted(r);
    case S_QUOTE:
        return step_quote(r);
    default:
        fail(r, AG_E_STATE, "%s: parser state %d", r->name, st);
        return S_ERROR;
    }
}

/* What the end of the input means in state st: 0 (no record), 1 (the
 * record is complete) or an error. */
static int at_eof(ag_csv_reader *r, int st)
{
    switch (st) {
    case S_START:
        return 0;
    case S_START_CR:
        return bare_cr(r, 1);
    case S_CR:
        return bare_cr(r, r->nfields);
    case S_QUOTED:
        return fail(r, AG_E_CSV_SYNTAX, "%s:%" PRIu64 ": unterminated quote in field %zu",
                    r->name, r->quote_line, r->nfields + 1);
    default: /* S_FIELD, S_UNQUOTED, S_QUOTE */
        return end_field(r) < 0 ? r->sticky : 1;
    }
}

/* Parses the next record into rec and ends[]. Returns 1, 0 at the end of
 * the input, or a negative code (sticky). */
static int read_record(ag_csv_reader *r)
{
    uint64_t prev_line = r->rec_line;
    ag_buf_reset(&r->rec);
    r->nfields = 0;
    r->rec_line = r->line;
    int st = S_START;
    for (;;) {
        if (r->p == r->end) {
            int rc = refill(r);
            if (rc < 0)
                return rc;
            if (rc == 0 && st == S_START)
                r->rec_line = prev_line; /* no record: keep the last one's line */
            if (rc == 0)
                return at_eof(r, st);
        }
        st = step(r, st);
        if (st == S_DONE) {
            assert(r->nfields > 0 && r->ends[r->nfields - 1] == r->rec.len);
            assert(r->p <= r->end);
            return 1;
        }
        if (st == S_ERROR)
            return r->sticky;
    }
}

struct colref {
    ag_slice name;
    size_t idx;
};

static int colref_cmp(const void *a, const void *b)
{
    const struct colref *x = a, *y = b;
    size_t n = AG_MIN(x->name.len, y->name.len);
    int c = n ? memcmp(x->name.ptr, y->name.ptr, n) : 0;
    if (c == 0 && x->name.len != y->name.len)
        c = x->name.len < y->name.len ? -1 : 1;
    if (c == 0)
        c = x->idx < y->idx ? -1 : 1;
    return c;
}

/* Checks the header (the current record) for duplicate names: reports
 * the first name that repeats an earlier one (the smallest second index),
 * with the field of its first occurrence. Sorting keeps this O(n log n)
 * for wide headers. */
static int check_duplicates(ag_csv_reader *r)
{
    size_t n = r->nfields;
    struct colref *refs = ag_calloc(n, sizeof(*refs));
    if (!refs)
        return fail(r, AG_E_NOMEM, "%s: out of memory", r->name);
    for (size_t i = 0; i < n; i++) {
        refs[i].name = ag_csv_field(r, i);
        refs[i].idx = i;
    }
    qsort(refs, n, sizeof(*refs), colref_cmp);
    size_t first = 0, second = SIZE_MAX;
    for (size_t i = 1; i < n; i++) {
        bool same = ag_slice_eq(refs[i].name, refs[i - 1].name);
        bool group_start = i < 2 || !ag_slice_eq(refs[i - 2].name, refs[i - 1].name);
        if (same && group_start && refs[i].idx < second) {
            first = refs[i - 1].idx;
            second = refs[i].idx;
        }
    }
    ag_free(refs);
    if (second == SIZE_MAX)
        return 0;
    ag_slice col = ag_csv_field(r, first);
    return fail(r, AG_E_CSV_SYNTAX,
                "%s:%" PRIu64 ": duplicate column '%.*s' in header (fields %zu and %zu)", r->name,
                r->rec_line, (int)AG_MIN(col.len, (size_t)AG_ERRMSG_MAX), (const char *)col.ptr,
                first + 1, second + 1);
}

/* Reads the header record and keeps a copy of its names. */
static int read_header(ag_csv_reader *r)
{
    int rc = read_record(r);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return fail(r, AG_E_CSV_SYNTAX, "%s: no header row (the file is empty)", r->name);
    rc = check_duplicates(r);
    if (rc < 0)
        return rc;
    size_t n = r->nfields;
    r->hdr = ag_malloc(r->rec.len + n);
    r->cols = ag_calloc(n + 1, sizeof(*r->cols));
    if (!r->hdr || !r->cols)
        return fail(r, AG_E_NOMEM, "%s: out of memory", r->name);
    char *d = r->hdr;
    for (size_t i = 0; i < n; i++) {
        ag_slice f = ag_csv_field(r, i);
        if (f.len)
            memcpy(d, f.ptr, f.len);
        d[f.len] = '\0';
        r->cols[i] = d;
        d += f.len + 1;
    }
    r->ncols = n;
    return 0;
}

/* What the three open calls share once the source is set: the BOM, then
 * the header. */
static int open_finish(ag_csv_reader *r)
{
    if (r->end - r->p >= 3 && memcmp(r->p, bom, sizeof(bom)) == 0)
        r->p += sizeof(bom);
    if (r->opts.header)
        return read_header(r);
    return 0;
}

/* Shared start of the open calls: state and name checks, the name copy. */
static int open_begin(ag_csv_reader *r, const char *name)
{
    if (r->opened)
        return ag_errbuf_set(&r->err, AG_E_STATE, "%s: reader already open",
                             r->name ? r->name : name);
    r->opened = true;
    r->name = ag_strdup(name);
    if (!r->name) {
        ag_errbuf_set(&r->err, AG_E_NOMEM, "out of memory");
        r->sticky = AG_E_NOMEM;
        return AG_E_NOMEM;
    }
    if (!delimiter_ok(r->opts.delimiter))
        return fail(r, AG_E_INVAL, "%s: invalid delimiter (a quote, CR or LF)", name);
    return 0;
}

int ag_csv_reader_open_fd(ag_csv_reader *r, int fd, const char *name)
{
    int rc = open_begin(r, name ? name : "(fd)");
    if (rc < 0)
        return rc;
    r->fd = fd;
    r->rbuf = ag_malloc(RBUF_SIZE);
    if (!r->rbuf)
        return fail(r, AG_E_NOMEM, "%s: out of memory", r->name);
    rc = prime_fd(r);
    if (rc < 0)
        return rc;
    return open_finish(r);
}

int ag_csv_reader_open(ag_csv_reader *r, const char *path)
{
    if (strcmp(path, "-") == 0)
        return ag_csv_reader_open_fd(r, 0, path);
    int rc = open_begin(r, path);
    if (rc < 0)
        return rc;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return fail(r, ag_err_from_errno(errno), "%s: %s", path, strerror(errno));
    r->own_fd = true;
    r->rbuf = ag_malloc(RBUF_SIZE);
    if (!r->rbuf)
        return fail(r, AG_E_NOMEM, "%s: out of memory", r->name);
    rc = prime_fd(r);
    if (rc < 0)
        return rc;
    return open_finish(r);
}

int ag_csv_reader_open_mem(ag_csv_reader *r, const void *data, size_t len, const char *name)
{
    int rc = open_begin(r, name ? name : "(memory)");
    if (rc < 0)
        return rc;
    static const uint8_t empty[1];
    r->win = r->p = data ? data : empty;
    r->end = r->p + (data ? len : 0);
    r->eof = true;
    return open_finish(r);
}

/* Reads the next data record. See base.h; with a header, a record of
 * another width is AG_E_CSV_FIELDS. */
int ag_csv_next(ag_csv_reader *r)
{
    if (r->sticky)
        return r->sticky;
    if (!r->opened)
        return ag_errbuf_set(&r->err, AG_E_STATE, "ag_csv_next: reader not open");
    if (r->done)
        return 0;
    int rc = read_record(r);
    if (rc == 0) {
        r->done = true;
        r->nfields = 0;
        return 0;
    }
    if (rc < 0)
        return rc;
    if (r->opts.header && r->nfields != r->ncols)
        return fail(r, AG_E_CSV_FIELDS, "%s:%" PRIu64 ": %zu fields, header has %zu", r->name,
                    r->rec_line, r->nfields, r->ncols);
    r->nrecords++;
    return 1;
}

size_t ag_csv_ncols(const ag_csv_reader *r)
{
    return r->ncols;
}

const char *ag_csv_colname(const ag_csv_reader *r, size_t i)
{
    return i < r->ncols ? r->cols[i] : NULL;
}

/* Writes ", "-separated column names into out (cap bytes), as many as fit
 * in budget characters, ending with ", ..." when some had to be left out. */
static void list_columns(const ag_csv_reader *r, char *out, size_t cap, size_t budget)
{
    static const char more[] = ", ...";
    size_t used = 0;
    budget = AG_MIN(budget, cap - 1);
    out[0] = '\0';
    for (size_t i = 0; i < r->ncols; i++) {
        const char *sep = i ? ", " : "";
        size_t piece = strlen(sep) + strlen(r->cols[i]);
        bool last = i + 1 == r->ncols;
        if (used + piece + (last ? 0 : strlen(more)) > budget) {
            const char *tail = i ? more : "...";
            if (used + strlen(tail) <= budget)
                used += (size_t)snprintf(out + used, cap - used, "%s", tail);
            return;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s%s", sep, r->cols[i]);
    }
}

/* Looks a column up by name. On a miss, the message offers the nearest
 * name when one is close, else the list of columns. */
int ag_csv_col(ag_csv_reader *r, const char *name)
{
    if (r->sticky)
        return r->sticky;
    for (size_t i = 0; i < r->ncols; i++)
        if (strcmp(r->cols[i], name) == 0)
            return (int)i;
    const char *rname = r->name ? r->name : "(not open)";
    if (r->ncols == 0)
        return ag_errbuf_set(&r->err, AG_E_CSV_COLUMN, "%s: no column '%s' (no header)", rname,
                             name);
    const char *near = ag_nearest(name, r->cols);
    if (near)
        return ag_errbuf_set(&r->err, AG_E_CSV_COLUMN,
                             "%s: no column '%s' in header (did you mean '%s'?)", rname, name,
                             near);
    char list[AG_ERRMSG_MAX];
    size_t fixed = strlen(rname) + strlen(name) + strlen(": no column '' in header (columns: )");
    size_t budget = fixed < AG_ERRMSG_MAX - 1 ? AG_ERRMSG_MAX - 1 - fixed : 0;
    list_columns(r, list, sizeof(list), budget);
    return ag_errbuf_set(&r->err, AG_E_CSV_COLUMN, "%s: no column '%s' in header (columns: %s)",
                         rname, name, list);
}

size_t ag_csv_nfields(const ag_csv_reader *r)
{
    return r->nfields;
}

ag_slice ag_csv_field(const ag_csv_reader *r, size_t i)
{
    if (i >= r->nfields || !r->rec.data)
        return ag_slice_make("", 0);
    size_t start = i ? r->ends[i - 1] : 0;
    return ag_slice_make(r->rec.data + start, r->ends[i] - start);
}

uint64_t ag_csv_line(const ag_csv_reader *r)
{
    return r->rec_line;
}

uint64_t ag_csv_record(const ag_csv_reader *r)
{
    return r->nrecords;
}

uint64_t ag_csv_bytes(const ag_csv_reader *r)
{
    return r->before + (uint64_t)(r->p - r->win);
}

/* The field's column as messages name it: "column 'age'", or "column
 * 'field 3'" without a header. Writes into out (cap bytes). */
static const char *field_label(const ag_csv_reader *r, size_t i, char *out, size_t cap)
{
    if (i < r->ncols)
        snprintf(out, cap, "column '%s'", r->cols[i]);
    else
        snprintf(out, cap, "column 'field %zu'", i + 1);
    return out;
}

/* Checks that field i exists; AG_E_INVAL otherwise (or the error that
 * ended the reader). */
static int field_check(ag_csv_reader *r, size_t i)
{
    if (r->sticky)
        return r->sticky;
    if (i < r->nfields)
        return 0;
    return ag_errbuf_set(&r->err, AG_E_INVAL, "%s:%" PRIu64 ": no field %zu",
                         r->name ? r->name : "(not open)", r->rec_line, i + 1);
}

/* A typed getter's error: "<name>:<line>: column 'c': '<value>' <what>",
 * with the value cut to VALUE_SHOWN bytes. */
static int value_error(ag_csv_reader *r, size_t i, const char *what)
{
    char label[AG_ERRMSG_MAX];
    ag_slice f = ag_csv_field(r, i);
    int shown = (int)AG_MIN(f.len, (size_t)VALUE_SHOWN);
    return ag_errbuf_set(&r->err, AG_E_CSV_VALUE, "%s:%" PRIu64 ": %s: '%.*s%s' %s", r->name,
                         r->rec_line, field_label(r, i, label, sizeof(label)), shown,
                         (const char *)f.ptr, f.len > VALUE_SHOWN ? "..." : "", what);
}

/* Decimal integer: an optional sign, then one or more digits, nothing
 * else. Overflow is checked against the sign's limit. */
int ag_csv_get_i64(ag_csv_reader *r, size_t i, int64_t *out)
{
    int rc = field_check(r, i);
    if (rc < 0)
        return rc;
    ag_slice f = ag_csv_field(r, i);
    size_t k = 0;
    bool neg = false;
    if (f.len && (f.ptr[0] == '-' || f.ptr[0] == '+')) {
        neg = f.ptr[0] == '-';
        k = 1;
    }
    if (k == f.len)
        return value_error(r, i, "is not an integer");
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    bool over = false;
    for (; k < f.len; k++) {
        unsigned d = (unsigned)f.ptr[k] - '0';
        if (d > 9)
            return value_error(r, i, "is not an integer");
        if (v > (limit - d) / 10)
            over = true;
        else
            v = v * 10 + d;
    }
    if (over)
        return value_error(r, i, "is out of range for a 64-bit integer");
    *out = !neg ? (int64_t)v : v ? -(int64_t)(v - 1) - 1 : 0;
    return 0;
}

/* Is s (after an optional sign) one of the spellings of NaN or infinity
 * that the reader accepts? Sets *v. */
static bool special_number(ag_slice f, double *v)
{
    size_t k = f.len && (f.ptr[0] == '-' || f.ptr[0] == '+') ? 1 : 0;
    const char *s = (const char *)f.ptr + k;
    size_t n = f.len - k;
    bool neg = k && f.ptr[0] == '-';
    if ((n == 3 && strncasecmp(s, "inf", 3) == 0) || (n == 8 && strncasecmp(s, "infinity", 8) == 0))
        *v = neg ? -HUGE_VAL : HUGE_VAL;
    else if (n == 3 && strncasecmp(s, "nan", 3) == 0)
        *v = neg ? -NAN : NAN;
    else
        return false;
    return true;
}

/* A decimal number as strtod reads it, over the whole field: no spaces,
 * no hex floats; "nan" and "inf" (any case, signed) are accepted. The
 * field is NUL-terminated in place for strtod and restored. */
int ag_csv_get_double(ag_csv_reader *r, size_t i, double *out)
{
    int rc = field_check(r, i);
    if (rc < 0)
        return rc;
    ag_slice f = ag_csv_field(r, i);
    if (f.len == 0)
        return value_error(r, i, "is not a number");
    if (special_number(f, out))
        return 0;
    for (size_t k = 0; k < f.len; k++) {
        uint8_t c = f.ptr[k];
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
            return value_error(r, i, "is not a number");
    }
    uint8_t *end = (uint8_t *)f.ptr + f.len;
    uint8_t saved = *end;
    *end = '\0';
    char *stop;
    double v = strtod((const char *)f.ptr, &stop);
    *end = saved;
    if ((const uint8_t *)stop != end)
        return value_error(r, i, "is not a number");
    *out = v;
    return 0;
}

int ag_csv_get_utf8(ag_csv_reader *r, size_t i, ag_slice *out)
{
    int rc = field_check(r, i);
    if (rc < 0)
        return rc;
    ag_slice f = ag_csv_field(r, i);
    size_t bad;
    if (!ag_utf8_valid(f, &bad)) {
        char label[AG_ERRMSG_MAX];
        return ag_errbuf_set(&r->err, AG_E_CSV_UTF8,
                             "%s:%" PRIu64 ": %s: invalid UTF-8 at byte %zu", r->name,
                             r->rec_line, field_label(r, i, label, sizeof(label)), bad + 1);
    }
    *out = f;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */
/* ------------------------------------------------------------------------ */

struct ag_csv_writer {
    ag_csv_opts opts;
    ag_errbuf err;
    int sticky;         /* I/O or size error: every later call returns it */
    int first_err;      /* the first error of any kind, for close */
    bool opened;
    char *name;         /* for messages */
    int fd;             /* -1 when writing to a buffer */
    bool own_fd;        /* opened by us from a path */
    ag_buf *out;        /* the caller's buffer, or NULL */
    uint8_t *wbuf;      /* WBUF_SIZE bytes in front of fd */
    size_t wlen;        /* bytes waiting in wbuf */
    size_t nfields;     /* fields written in the current record */
    bool first_empty;   /* the current record's first field is empty */
    bool started;       /* a field has been written */
    bool special[256];  /* bytes that force quoting */
};

ag_csv_writer *ag_csv_writer_new(const ag_csv_opts *opts)
{
    ag_csv_writer *w = ag_calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    opts_resolve(&w->opts, opts);
    ag_errbuf_clear(&w->err);
    w->fd = -1;
    w->special[(uint8_t)w->opts.delimiter] = true;
    w->special['"'] = true;
    w->special['\r'] = true;
    w->special['\n'] = true;
    return w;
}

const char *ag_csv_writer_errmsg(const ag_csv_writer *w)
{
    return w->err.msg;
}

/* Records an error; sticky ones end the writer. Returns code. */
static int wfail(ag_csv_writer *w, bool sticky, int code, const char *fmt, ...) AG_PRINTF(4, 5);
static int wfail(ag_csv_writer *w, bool sticky, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ag_errbuf_vset(&w->err, code, fmt, ap);
    va_end(ap);
    if (sticky)
        w->sticky = code;
    if (!w->first_err)
        w->first_err = code;
    return code;
}

/* Writes all n bytes to the descriptor, through short writes and EINTR. */
static int write_all(ag_csv_writer *w, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return wfail(w, true, AG_E_IO, "%s: write error: %s", w->name,
                         k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int ag_csv_writer_flush(ag_csv_writer *w)
{
    if (w->sticky)
        return w->sticky;
    if (w->fd < 0 || w->wlen == 0)
        return 0;
    size_t n = w->wlen;
    w->wlen = 0;
    return write_all(w, w->wbuf, n);
}

/* Queues n bytes of output. */
static int emit(ag_csv_writer *w, const void *p, size_t n)
{
    if (w->sticky)
        return w->sticky;
    if (w->out) {
        int rc = ag_buf_append(w->out, p, n);
        if (rc == AG_E_TOO_LARGE)
            return wfail(w, true, rc, "%s: output longer than %zu bytes", w->name, w->out->max);
        if (rc < 0)
            return wfail(w, true, rc, "%s: out of memory", w->name);
        return 0;
    }
    if (n > WBUF_SIZE - w->wlen) {
        int rc = ag_csv_writer_flush(w);
        if (rc < 0)
            return rc;
        if (n >= WBUF_SIZE)
            return write_all(w, p, n);
    }
    memcpy(w->wbuf + w->wlen, p, n);
    w->wlen += n;
    return 0;
}

static int emit_byte(ag_csv_writer *w, uint8_t c)
{
    if (w->out || w->wlen == WBUF_SIZE || w->sticky)
        return emit(w, &c, 1);
    w->wbuf[w->wlen++] = c;
    return 0;
}

/* Writes a field quoted, each inner quote doubled. */
static int emit_quoted(ag_csv_writer *w, ag_slice f)
{
    int rc = emit_byte(w, '"');
    const uint8_t *p = f.ptr, *end = f.ptr + f.len;
    while (rc == 0 && p < end) {
        const uint8_t *q = memchr(p, '"', (size_t)(end - p));
        size_t n = q ? (size_t)(q - p) + 1 : (size_t)(end - p);
        rc = emit(w, p, n);
        if (rc == 0 && q)
            rc = emit_byte(w, '"');
        p += n;
    }
    return rc < 0 ? rc : emit_byte(w, '"');
}

static int writer_ready(ag_csv_writer *w)
{
    if (w->sticky)
        return w->sticky;
    if (!w->opened)
        return wfail(w, false, AG_E_STATE, "csv writer: not open");
    return 0;
}

/* Does field need quotes: does it hold a delimiter, quote, CR or LF, or
 * would it begin the output with bytes a reader takes for a BOM? */
static bool needs_quotes(const ag_csv_writer *w, ag_slice field)
{
    if (!w->started && field.len >= sizeof(bom) && memcmp(field.ptr, bom, sizeof(bom)) == 0)
        return true;
    for (size_t k = 0; k < field.len; k++)
        if (w->special[field.ptr[k]])
            return true;
    return false;
}

int ag_csv_write_field(ag_csv_writer *w, ag_slice field)
{
    int rc = writer_ready(w);
    if (rc < 0)
        return rc;
    bool quote = needs_quotes(w, field);
    w->started = true;
    if (w->nfields > 0) {
        rc = emit_byte(w, (uint8_t)w->opts.delimiter);
        if (rc < 0)
            return rc;
    } else {
        w->first_empty = field.len == 0;
    }
    w->nfields++;
    if (quote)
        return emit_quoted(w, field);
    return field.len ? emit(w, field.ptr, field.len) : 0;
}

/* Ends the record. A record of one empty field is written as "" so that
 * it is not an empty line, which the reader would skip. */
int ag_csv_end_record(ag_csv_writer *w)
{
    int rc = writer_ready(w);
    if (rc < 0)
        return rc;
    if (w->nfields == 0)
        return wfail(w, false, AG_E_INVAL, "%s: a record needs at least one field", w->name);
    if (w->nfields == 1 && w->first_empty) {
        rc = emit(w, "\"\"", 2);
        if (rc < 0)
            return rc;
    }
    w->nfields = 0;
    return w->opts.crlf ? emit(w, "\r\n", 2) : emit_byte(w, '\n');
}

int ag_csv_write_record(ag_csv_writer *w, const ag_slice *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = ag_csv_write_field(w, fields[i]);
        if (rc < 0)
            return rc;
    }
    return ag_csv_end_record(w);
}

/* Shared start of the open calls. */
static int wopen_begin(ag_csv_writer *w, const char *name)
{
    if (w->opened)
        return wfail(w, false, AG_E_STATE, "%s: writer already open", w->name);
    w->opened = true;
    w->name = ag_strdup(name);
    if (!w->name)
        return wfail(w, true, AG_E_NOMEM, "out of memory");
    if (!delimiter_ok(w->opts.delimiter))
        return wfail(w, true, AG_E_INVAL, "%s: invalid delimiter (a quote, CR or LF)", name);
    return 0;
}

int ag_csv_writer_open_fd(ag_csv_writer *w, int fd, const char *name)
{
    int rc = wopen_begin(w, name ? name : "(fd)");
    if (rc < 0)
        return rc;
    w->fd = fd;
    w->wbuf = ag_malloc(WBUF_SIZE);
    if (!w->wbuf)
        return wfail(w, true, AG_E_NOMEM, "%s: out of memory", w->name);
    return 0;
}

int ag_csv_writer_open(ag_csv_writer *w, const char *path)
{
    if (strcmp(path, "-") == 0)
        return ag_csv_writer_open_fd(w, 1, path);
    int rc = wopen_begin(w, path);
    if (rc < 0)
        return rc;
    w->wbuf = ag_malloc(WBUF_SIZE);
    if (!w->wbuf)
        return wfail(w, true, AG_E_NOMEM, "%s: out of memory", w->name);
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (w->fd < 0)
        return wfail(w, true, ag_err_from_errno(errno), "%s: %s", path, strerror(errno));
    w->own_fd = true;
    return 0;
}

int ag_csv_writer_open_buf(ag_csv_writer *w, ag_buf *out)
{
    int rc = wopen_begin(w, "(buffer)");
    if (rc < 0)
        return rc;
    w->out = out;
    return 0;
}

/* Flushes, closes a descriptor opened from a path, frees w, and returns
 * the first error of the writer's life (so a full disk is never silent). */
int ag_csv_writer_close(ag_csv_writer *w)
{
    if (!w)
        return 0;
    if (w->opened)
        ag_csv_writer_flush(w);
    if (w->own_fd && w->fd >= 0 && close(w->fd) < 0 && !w->first_err)
        wfail(w, true, AG_E_IO, "%s: write error: %s", w->name, strerror(errno));
    int rc = w->first_err;
    ag_free(w->wbuf);
    ag_free(w->name);
    ag_free(w);
    return rc;
}
