/*
 * Plaintext values and tables (fed.h), and their wire form (internal.h):
 * how an object crosses from one party to another.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A table: every cell's text in one buffer, NUL-terminated, addressed by
 * offsets (row-major, ncols per row). */
struct ag_table {
    char *path;        /* where it was read from (for messages) */
    size_t ncols, nrows;
    char **colnames;   /* ncols, each its own allocation */
    uint64_t *lines;   /* nrows */
    size_t *offs;      /* nrows * ncols offsets into text */
    char *text;
    size_t text_len;
};

const char *ag_vtype_name(ag_vtype t)
{
    switch (t) {
    case AG_V_NONE: return "none";
    case AG_V_F64: return "f64";
    case AG_V_I64: return "i64";
    case AG_V_BYTES: return "bytes";
    case AG_V_TABLE: return "table";
    }
    return "?";
}

static int tensor_init(ag_value *v, ag_vtype type, int ndim, const int64_t *shape)
{
    memset(v, 0, sizeof(*v));
    if (ndim < 0 || ndim > AG_TENSOR_MAX_DIMS)
        return AG_E_MPC_SHAPE;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return AG_E_MPC_SHAPE;
        if (shape[i] && numel > SIZE_MAX / 8 / (size_t)shape[i])
            return AG_E_TOO_LARGE;
        numel *= (size_t)shape[i];
        v->shape[i] = shape[i];
    }
    v->data = ag_calloc(numel ? numel : 1, 8);
    if (!v->data)
        return AG_E_NOMEM;
    v->type = type;
    v->ndim = ndim;
    v->numel = numel;
    return 0;
}

int ag_value_f64_init(ag_value *v, int ndim, const int64_t *shape)
{
    return tensor_init(v, AG_V_F64, ndim, shape);
}

int ag_value_i64_init(ag_value *v, int ndim, const int64_t *shape)
{
    return tensor_init(v, AG_V_I64, ndim, shape);
}

int ag_value_scalar_f64(ag_value *v, double x)
{
    int rc = tensor_init(v, AG_V_F64, 0, NULL);
    if (rc == 0)
        ag_value_f64(v)[0] = x;
    return rc;
}

int ag_value_scalar_i64(ag_value *v, int64_t x)
{
    int rc = tensor_init(v, AG_V_I64, 0, NULL);
    if (rc == 0)
        ag_value_i64(v)[0] = x;
    return rc;
}

int ag_value_bytes(ag_value *v, const void *data, size_t len)
{
    memset(v, 0, sizeof(*v));
    v->data = ag_malloc(len + 1);
    if (!v->data)
        return AG_E_NOMEM;
    if (len)
        memcpy(v->data, data, len);
    ((char *)v->data)[len] = '\0';
    v->type = AG_V_BYTES;
    v->numel = len;
    return 0;
}

void ag_value_table(ag_value *v, ag_table *t)
{
    memset(v, 0, sizeof(*v));
    v->type = AG_V_TABLE;
    v->table = t;
}

static size_t elem_bytes(const ag_value *v)
{
    return v->type == AG_V_BYTES ? v->numel + 1 : v->numel * 8;
}

static int table_copy(ag_table **dst, const ag_table *src);

int ag_value_copy(ag_value *dst, const ag_value *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src->type == AG_V_TABLE) {
        ag_table *t;
        int rc = table_copy(&t, src->table);
        if (rc == 0)
            ag_value_table(dst, t);
        return rc;
    }
    *dst = *src;
    dst->data = NULL;
    if (src->type == AG_V_NONE)
        return 0;
    size_t n = elem_bytes(src);
    dst->data = ag_malloc(n ? n : 1);
    if (!dst->data) {
        memset(dst, 0, sizeof(*dst));
        return AG_E_NOMEM;
    }
    if (n)
        memcpy(dst->data, src->data, n);
    return 0;
}

void ag_value_cleanup(ag_value *v)
{
    if (v->data) {
        ag_wipe(v->data, elem_bytes(v));
        ag_free(v->data);
    }
    ag_table_free(v->table);
    memset(v, 0, sizeof(*v));
}

const char *ag_value_describe(const ag_value *v, char *buf, size_t cap)
{
    size_t n = 0;
    switch (v->type) {
    case AG_V_F64:
    case AG_V_I64:
        n = (size_t)snprintf(buf, cap, "%s(", ag_vtype_name(v->type));
        for (int i = 0; i < v->ndim && n < cap; i++)
            n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "",
                                  (long long)v->shape[i]);
        if (n < cap)
            snprintf(buf + n, cap - n, ")");
        break;
    case AG_V_BYTES:
        snprintf(buf, cap, "bytes(%zu)", v->numel);
        break;
    case AG_V_TABLE:
        snprintf(buf, cap, "table(%zux%zu)", ag_table_nrows(v->table), ag_table_ncols(v->table));
        break;
    default:
        snprintf(buf, cap, "none");
    }
    return buf;
}

/* ---- tables --------------------------------------------------------------- */

void ag_table_free(ag_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncols; i++)
        ag_free(t->colnames ? t->colnames[i] : NULL);
    ag_free(t->colnames);
    ag_free(t->lines);
    ag_free(t->offs);
    if (t->text)
        ag_wipe(t->text, t->text_len);
    ag_free(t->text);
    ag_free(t->path);
    ag_free(t);
}

size_t ag_table_nrows(const ag_table *t)
{
    return t ? t->nrows : 0;
}

size_t ag_table_ncols(const ag_table *t)
{
    return t ? t->ncols : 0;
}

const char *ag_table_colname(const ag_table *t, size_t col)
{
    return col < t->ncols ? t->colnames[col] : NULL;
}

int ag_table_col(const ag_table *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (strcmp(t->colnames[i], name) == 0)
            return (int)i;
    return -1;
}

const char *ag_table_cell(const ag_table *t, size_t row, size_t col, size_t *len)
{
    const char *s = t->text + t->offs[row * t->ncols + col];
    if (len)
        *len = strlen(s);
    return s;
}

uint64_t ag_table_line(const ag_table *t, size_t row)
{
    return t->lines[row];
}

static char *dup_str(const char *s, size_t n);

int ag_table_set_source(ag_table *t, const char *path)
{
    char *p = dup_str(path, strlen(path));
    if (!p)
        return AG_E_NOMEM;
    ag_free(t->path);
    t->path = p;
    return 0;
}

void ag_table_set_line(ag_table *t, size_t row, uint64_t line)
{
    if (row < t->nrows)
        t->lines[row] = line;
}

static char *dup_str(const char *s, size_t n)
{
    char *d = ag_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* An empty table of ncols columns named as given. */
static ag_table *table_new(const char *path, size_t ncols)
{
    ag_table *t = ag_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->path = dup_str(path, strlen(path));
    t->colnames = ag_calloc(ncols ? ncols : 1, sizeof(char *));
    if (!t->path || !t->colnames) {
        ag_table_free(t);
        return NULL;
    }
    t->ncols = ncols;
    return t;
}

int ag_table_read_csv(const char *path, ag_table **out, char *err, size_t errcap)
{
    *out = NULL;
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    ag_table *t = NULL;
    ag_buf text;
    ag_buf_init(&text, SIZE_MAX);
    text.secret = true;
    size_t row_cap = 0;
    int rc = r ? ag_csv_reader_open(r, path) : AG_E_NOMEM;
    if (rc < 0)
        goto fail;
    t = table_new(path, ag_csv_ncols(r));
    if (!t) {
        rc = AG_E_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        const char *name = ag_csv_colname(r, i);
        if (!(t->colnames[i] = dup_str(name, strlen(name)))) {
            rc = AG_E_NOMEM;
            goto fail;
        }
    }
    while ((rc = ag_csv_next(r)) == 1) {
        if (t->nrows == row_cap) {
            size_t nc = row_cap ? row_cap * 2 : 256;
            uint64_t *nl = ag_reallocarray(t->lines, nc, sizeof(*nl));
            if (nl)
                t->lines = nl;
            size_t *no = nl ? ag_reallocarray(t->offs, nc, t->ncols * sizeof(*no) + !t->ncols)
                            : NULL;
            if (!no) {
                rc = AG_E_NOMEM;
                goto fail;
            }
            t->offs = no;
            row_cap = nc;
        }
        t->lines[t->nrows] = ag_csv_line(r);
        for (size_t c = 0; c < t->ncols; c++) {
            ag_slice s = ag_csv_field(r, c);
            t->offs[t->nrows * t->ncols + c] = text.len;
            if (ag_buf_append(&text, s.ptr, s.len) < 0 || ag_buf_append_byte(&text, 0) < 0) {
                rc = AG_E_NOMEM;
                goto fail;
            }
        }
        t->nrows++;
    }
    if (rc < 0)
        goto fail;
    if (ag_buf_append_byte(&text, 0) < 0) { /* an empty table still has text */
        rc = AG_E_NOMEM;
        goto fail;
    }
    t->text = (char *)ag_buf_take(&text, &t->text_len);
    ag_csv_reader_free(r);
    *out = t;
    return 0;
fail:
    if (rc == AG_E_NOMEM || !r)
        snprintf(err, errcap, "%s: %s", path, ag_strerror(rc));
    else
        snprintf(err, errcap, "%s", ag_csv_reader_errmsg(r));
    ag_buf_cleanup(&text);
    ag_table_free(t);
    ag_csv_reader_free(r);
    return rc;
}

int ag_table_column_f64(const ag_table *t, const char *col, ag_value *out, char *err,
                        size_t errcap)
{
    memset(out, 0, sizeof(*out));
    int c = ag_table_col(t, col);
    if (c < 0) {
        const char *names[65];
        size_t n = t->ncols < 64 ? t->ncols : 64;
        for (size_t i = 0; i < n; i++)
            names[i] = t->colnames[i];
        names[n] = NULL;
        const char *near = ag_nearest(col, names);
        snprintf(err, errcap, "%s: no column '%s'%s%s%s", t->path, col,
                 near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        return AG_E_CSV_COLUMN;
    }
    int64_t shape[1] = {(int64_t)t->nrows};
    int rc = ag_value_f64_init(out, 1, shape);
    if (rc < 0) {
        snprintf(err, errcap, "%s: %s", t->path, ag_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < t->nrows; i++) {
        const char *s = ag_table_cell(t, i, (size_t)c, NULL);
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (!*s || *end || errno == ERANGE || !isfinite(v) || s[0] == ' ') {
            snprintf(err, errcap, "%s:%llu: column '%s': '%.40s' is not a number", t->path,
                     (unsigned long long)t->lines[i], col, s);
            ag_value_cleanup(out);
            return AG_E_CSV_VALUE;
        }
        ag_value_f64(out)[i] = v;
    }
    return 0;
}

static int table_copy(ag_table **dst, const ag_table *src)
{
    *dst = NULL;
    ag_table *t = table_new(src->path, src->ncols);
    if (!t)
        return AG_E_NOMEM;
    for (size_t i = 0; i < src->ncols; i++)
        if (!(t->colnames[i] = dup_str(src->colnames[i], strlen(src->colnames[i]))))
            goto nomem;
    size_t ncell = src->nrows * src->ncols;
    t->lines = ag_malloc(src->nrows * sizeof(uint64_t) + 1);
    t->offs = ag_malloc(ncell * sizeof(size_t) + 1);
    t->text = ag_malloc(src->text_len + 1);
    if (!t->lines || !t->offs || !t->text)
        goto nomem;
    if (src->nrows)
        memcpy(t->lines, src->lines, src->nrows * sizeof(uint64_t));
    if (ncell)
        memcpy(t->offs, src->offs, ncell * sizeof(size_t));
    memcpy(t->text, src->text, src->text_len);
    t->text_len = src->text_len;
    t->nrows = src->nrows;
    *dst = t;
    return 0;
nomem:
    ag_table_free(t);
    return AG_E_NOMEM;
}

/* ---- wire form -----------------------------------------------------------------
 *
 *   u8 status        0 ok, 1 error
 *   error:  i32 code, then the message (the rest)
 *   ok:     u8 vtype, u8 ndim, ndim x i64 shape, then (with data) the body:
 *           f64/i64: numel x 8 bytes (little-endian host order: x86-64 only
 *                    talks to itself here; the check below refuses others)
 *           bytes:   the bytes
 *           table:   u64 ncols, u64 nrows, per column u32 len + name,
 *                    per row u64 line, per cell u32 len + text
 */

static int put(ag_buf *b, const void *p, size_t n)
{
    return ag_buf_append(b, p, n);
}

static int put_u32(ag_buf *b, uint32_t v)
{
    return put(b, &v, 4);
}

static int put_u64(ag_buf *b, uint64_t v)
{
    return put(b, &v, 8);
}

int ag__fed_encode_error(ag_buf *b, int code, const char *msg)
{
    int32_t c = code;
    int rc = ag_buf_append_byte(b, 1);
    if (rc == 0)
        rc = put(b, &c, 4);
    if (rc == 0)
        rc = put(b, msg, strlen(msg));
    return rc;
}

int ag__fed_encode_value(ag_buf *b, const ag_value *v, bool with_data)
{
    uint8_t head[2] = {(uint8_t)v->type, (uint8_t)v->ndim};
    int rc = ag_buf_append_byte(b, 0);
    if (rc == 0)
        rc = put(b, head, 2);
    if (rc == 0 && v->ndim)
        rc = put(b, v->shape, (size_t)v->ndim * 8);
    if (rc < 0 || !with_data)
        return rc;
    switch (v->type) {
    case AG_V_F64:
    case AG_V_I64:
    case AG_V_BYTES:
        if (v->type == AG_V_BYTES)
            rc = put_u64(b, v->numel);
        if (rc == 0)
            rc = put(b, v->data, v->type == AG_V_BYTES ? v->numel : v->numel * 8);
        return rc;
    case AG_V_TABLE: {
        const ag_table *t = v->table;
        rc = put_u64(b, t->ncols);
        if (rc == 0)
            rc = put_u64(b, t->nrows);
        for (size_t i = 0; rc == 0 && i < t->ncols; i++) {
            size_t n = strlen(t->colnames[i]);
            rc = put_u32(b, (uint32_t)n);
            if (rc == 0)
                rc = put(b, t->colnames[i], n);
        }
        if (rc == 0 && t->nrows)
            rc = put(b, t->lines, t->nrows * 8);
        for (size_t i = 0; rc == 0 && i < t->nrows * t->ncols; i++) {
            const char *s = t->text + t->offs[i];
            size_t n = strlen(s);
            rc = put_u32(b, (uint32_t)n);
            if (rc == 0)
                rc = put(b, s, n);
        }
        return rc;
    }
    default:
        return 0;
    }
}

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader;

static bool take(reader *r, void *dst, size_t n)
{
    if (r->left < n)
        return false;
    if (n)
        memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return true;
}

#define BAD(...) (snprintf(err, errcap, __VA_ARGS__), AG_E_MPC_PROTOCOL)

static int decode_table(reader *r, ag_value *out, char *err, size_t errcap)
{
    uint64_t ncols, nrows;
    if (!take(r, &ncols, 8) || !take(r, &nrows, 8))
        return BAD("truncated table header");
    /* every column name and cell costs at least 4 bytes, every row 8 */
    if (ncols > r->left / 4 || (ncols && nrows > r->left / 4 / ncols) ||
        nrows > r->left / 8 || ncols > 65536)
        return BAD("table of %llu x %llu cells in %zu bytes", (unsigned long long)nrows,
                   (unsigned long long)ncols, r->left);
    ag_table *t = table_new("(received)", ncols);
    ag_buf text;
    ag_buf_init(&text, SIZE_MAX);
    text.secret = true;
    int rc = t ? 0 : AG_E_NOMEM;
    for (size_t i = 0; rc == 0 && i < ncols; i++) {
        uint32_t n;
        if (!take(r, &n, 4) || n > r->left || memchr(r->p, 0, n)) {
            rc = BAD("bad table column name");
            break;
        }
        if (!(t->colnames[i] = dup_str((const char *)r->p, n)))
            rc = AG_E_NOMEM;
        r->p += n;
        r->left -= n;
    }
    if (rc == 0) {
        t->lines = ag_malloc(nrows * 8 + 1);
        t->offs = ag_malloc(nrows * ncols * sizeof(size_t) + 1);
        if (!t->lines || !t->offs)
            rc = AG_E_NOMEM;
        else if (!take(r, t->lines, nrows * 8))
            rc = BAD("truncated table lines");
    }
    for (size_t i = 0; rc == 0 && i < nrows * ncols; i++) {
        uint32_t n;
        if (!take(r, &n, 4) || n > r->left || memchr(r->p, 0, n)) {
            rc = BAD("bad table cell");
            break;
        }
        t->offs[i] = text.len;
        if (ag_buf_append(&text, r->p, n) < 0 || ag_buf_append_byte(&text, 0) < 0)
            rc = AG_E_NOMEM;
        r->p += n;
        r->left -= n;
    }
    if (rc == 0 && ag_buf_append_byte(&text, 0) < 0)
        rc = AG_E_NOMEM;
    if (rc < 0) {
        if (rc == AG_E_NOMEM)
            snprintf(err, errcap, "%s", ag_strerror(rc));
        ag_buf_cleanup(&text);
        ag_table_free(t);
        return rc;
    }
    t->nrows = nrows;
    t->text = (char *)ag_buf_take(&text, &t->text_len);
    ag_value_table(out, t);
    return 0;
}

int ag__fed_decode(const void *data, size_t len, bool with_data, ag_value *out, int *status,
                   char *err, size_t errcap)
{
    reader r = {data, len};
    memset(out, 0, sizeof(*out));
    *status = 0;
    uint8_t st;
    if (!take(&r, &st, 1) || st > 1)
        return BAD("bad object header");
    if (st == 1) {
        int32_t code;
        if (!take(&r, &code, 4) || code >= 0 || code < -100000)
            return BAD("bad error code");
        snprintf(err, errcap, "%.*s", (int)(r.left < 4000 ? r.left : 4000), (const char *)r.p);
        *status = code;
        return 0;
    }
    uint8_t head[2];
    if (!take(&r, head, 2) || head[0] < AG_V_F64 || head[0] > AG_V_TABLE ||
        head[1] > AG_TENSOR_MAX_DIMS)
        return BAD("bad object type");
    ag_vtype type = head[0];
    int ndim = head[1];
    int64_t shape[AG_TENSOR_MAX_DIMS];
    if (!take(&r, shape, (size_t)ndim * 8))
        return BAD("truncated shape");
    if (type == AG_V_BYTES || type == AG_V_TABLE) {
        if (ndim != 0)
            return BAD("a %s has no shape", ag_vtype_name(type));
        if (type == AG_V_TABLE && with_data)
            return decode_table(&r, out, err, errcap);
        if (type == AG_V_BYTES && with_data) {
            uint64_t n;
            if (!take(&r, &n, 8) || n != r.left)
                return BAD("bytes of the wrong length");
            int rc = ag_value_bytes(out, r.p, n);
            if (rc < 0)
                snprintf(err, errcap, "%s", ag_strerror(rc));
            return rc;
        }
        out->type = type;
        return 0;
    }
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && numel > (SIZE_MAX / 16) / (size_t)shape[i]))
            return BAD("bad shape");
        numel *= (size_t)shape[i];
    }
    if (!with_data) {
        out->type = type;
        out->ndim = ndim;
        memcpy(out->shape, shape, (size_t)ndim * 8);
        out->numel = numel;
        return 0;
    }
    if (r.left != numel * 8)
        return BAD("tensor of %zu elements in %zu bytes", numel, r.left);
    int rc = tensor_init(out, type, ndim, shape);
    if (rc < 0) {
        snprintf(err, errcap, "%s", ag_strerror(rc));
        return rc;
    }
    memcpy(out->data, r.p, numel * 8);
    return 0;
}
