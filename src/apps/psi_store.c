/*
 * PSI storage on disk: the bucket spill files, and the sorted runs of a
 * receiver's output rows with their merge.
 *
 * Spill: one anonymous temporary file per bucket (O_TMPFILE, or mkstemp
 * and unlink at once where the file system lacks it), so nothing is left
 * behind whatever way the process ends. Each file is written through its
 * own buffer (32 MiB shared out among the buckets, 8 KiB to 256 KiB each)
 * and read back whole when its bucket's turn comes. A record:
 *
 *   line u64 | key length u32 | fields length u32 | key | fields
 *
 * where key is the encoded key tuple and fields every column of the row,
 * each a u32 length and its bytes (all little-endian).
 *
 * Runs: one anonymous file; each bucket appends one run of key groups in
 * key order, and the merge reads every run through its own window with a
 * binary heap on the groups' keys. A group:
 *
 *   key length u32 | repeat u32 | rows u32 | rows length u64 | key |
 *   rows, each a fields length u32 and the fields
 *
 * A group is read whole, so a window grows to the largest group (one key's
 * rows); otherwise memory is a fixed window per run.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"

#define SPILL_BUF_TOTAL ((size_t)32 << 20)
#define SPILL_BUF_MIN ((size_t)8 << 10)
#define SPILL_BUF_MAX ((size_t)256 << 10)
#define RUNS_BUF ((size_t)1 << 20)
#define WINDOW ((size_t)64 << 10)

/* ---- temporary files -------------------------------------------------------- */

static int tmpfile_open(const char *dir, ag_errbuf *err)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    char path[4096];
    snprintf(path, sizeof(path), "%s/argot-psi-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return ag_errbuf_set(err, ag_err_from_errno(errno), "%s: cannot create a temporary "
                             "file: %s", dir, strerror(errno));
    unlink(path);
    return fd;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            return -EIO;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static int io_fail(ag_errbuf *err, const char *what, int neg_errno)
{
    return ag_errbuf_set(err, ag_err_from_errno(-neg_errno), "%s: %s", what,
                         strerror(-neg_errno));
}

/* ---- spill ------------------------------------------------------------------ */

struct bucket_file {
    int fd;
    uint8_t *buf;
    size_t len;
    uint64_t bytes;
    uint64_t rows;
};

struct psi_spill {
    uint64_t n;
    struct bucket_file *b;
    size_t bufsize;
    ag_errbuf *err;
};

/* Makes sure `need` descriptors more can be opened, raising the soft limit
 * toward the hard one if that is what it takes. */
static int fd_room(uint64_t need, ag_errbuf *err)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    uint64_t want = need + 64;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
            return ag_errbuf_set(err, AG_E_TOO_LARGE, "%llu buckets need as many open files, "
                                 "and the limit is %llu: use larger buckets",
                                 (unsigned long long)need, (unsigned long long)rl.rlim_max);
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return ag_errbuf_set(err, AG_E_SYS, "cannot raise the open file limit to %llu: %s",
                                 (unsigned long long)want, strerror(errno));
    }
    return 0;
}

int ag__psi_spill_new(struct psi_spill **out, const char *tmpdir, uint64_t nbuckets,
                      ag_errbuf *err)
{
    int rc = fd_room(nbuckets, err);
    if (rc < 0)
        return rc;
    struct psi_spill *s = ag_calloc(1, sizeof(*s));
    if (!s)
        return ag_errbuf_set(err, AG_E_NOMEM, "out of memory");
    s->err = err;
    s->b = ag_calloc((size_t)nbuckets, sizeof(*s->b));
    if (!s->b) {
        ag_free(s);
        return ag_errbuf_set(err, AG_E_NOMEM, "out of memory for %llu buckets",
                             (unsigned long long)nbuckets);
    }
    for (uint64_t i = 0; i < nbuckets; i++)
        s->b[i].fd = -1;
    s->n = nbuckets;
    size_t per = SPILL_BUF_TOTAL / (size_t)nbuckets;
    s->bufsize = AG_MAX(SPILL_BUF_MIN, AG_MIN(SPILL_BUF_MAX, per));
    for (uint64_t i = 0; i < nbuckets; i++) {
        rc = tmpfile_open(tmpdir, err);
        if (rc < 0) {
            ag__psi_spill_free(s);
            return rc;
        }
        s->b[i].fd = rc;
    }
    *out = s;
    return 0;
}

void ag__psi_spill_free(struct psi_spill *s)
{
    if (!s)
        return;
    for (uint64_t i = 0; i < s->n; i++) {
        if (s->b[i].fd >= 0)
            close(s->b[i].fd);
        ag_free(s->b[i].buf);
    }
    ag_free(s->b);
    ag_free(s);
}

static int bf_flush(struct psi_spill *s, struct bucket_file *f)
{
    int rc = write_all(f->fd, f->buf, f->len);
    if (rc < 0)
        return io_fail(s->err, "writing a bucket's temporary file", rc);
    f->len = 0;
    return 0;
}

static int bf_write(struct psi_spill *s, struct bucket_file *f, const void *p, size_t n)
{
    const uint8_t *q = p;
    while (n > 0) {
        if (f->len == s->bufsize) {
            int rc = bf_flush(s, f);
            if (rc < 0)
                return rc;
        }
        size_t k = AG_MIN(n, s->bufsize - f->len);
        memcpy(f->buf + f->len, q, k);
        f->len += k;
        q += k;
        n -= k;
    }
    return 0;
}

int ag__psi_spill_add(struct psi_spill *s, uint64_t bucket, uint64_t line, ag_slice key,
                      const ag_slice *fields, size_t nfields)
{
    struct bucket_file *f = &s->b[bucket];
    if (!f->buf) {
        f->buf = ag_malloc(s->bufsize);
        if (!f->buf)
            return ag_errbuf_set(s->err, AG_E_NOMEM, "out of memory for a bucket's buffer");
    }
    uint64_t flen = 0;
    for (size_t i = 0; i < nfields; i++)
        flen += 4 + fields[i].len;
    if (flen > UINT32_MAX || key.len > UINT32_MAX)
        return ag_errbuf_set(s->err, AG_E_TOO_LARGE, "a row of %llu bytes",
                             (unsigned long long)flen);
    uint8_t hdr[16];
    psi_put_u64(hdr, line);
    psi_put_u32(hdr + 8, (uint32_t)key.len);
    psi_put_u32(hdr + 12, (uint32_t)flen);
    int rc = bf_write(s, f, hdr, sizeof(hdr));
    if (rc == 0)
        rc = bf_write(s, f, key.ptr, key.len);
    for (size_t i = 0; rc == 0 && i < nfields; i++) {
        uint8_t l[4];
        psi_put_u32(l, (uint32_t)fields[i].len);
        rc = bf_write(s, f, l, 4);
        if (rc == 0)
            rc = bf_write(s, f, fields[i].ptr, fields[i].len);
    }
    if (rc < 0)
        return rc;
    f->bytes += sizeof(hdr) + key.len + flen;
    f->rows++;
    return 0;
}

int ag__psi_spill_finish(struct psi_spill *s)
{
    for (uint64_t i = 0; i < s->n; i++) {
        struct bucket_file *f = &s->b[i];
        if (f->buf && f->len) {
            int rc = bf_flush(s, f);
            if (rc < 0)
                return rc;
        }
        ag_free(f->buf);
        f->buf = NULL;
    }
    return 0;
}

uint64_t ag__psi_spill_rows(const struct psi_spill *s, uint64_t bucket)
{
    return s->b[bucket].rows;
}

int ag__psi_spill_load(struct psi_spill *s, uint64_t b, uint8_t **data, struct psi_row **rows,
                       size_t *nrows)
{
    struct bucket_file *f = &s->b[b];
    *data = NULL;
    *rows = NULL;
    *nrows = 0;
    if (f->bytes > SIZE_MAX / 2 || f->rows > SIZE_MAX / sizeof(**rows))
        return ag_errbuf_set(s->err, AG_E_TOO_LARGE, "bucket %llu is too large",
                             (unsigned long long)b);
    uint8_t *d = ag_malloc(f->bytes ? (size_t)f->bytes : 1);
    struct psi_row *r = ag_malloc(f->rows ? (size_t)f->rows * sizeof(*r) : 1);
    if (!d || !r) {
        ag_free(d);
        ag_free(r);
        return ag_errbuf_set(s->err, AG_E_NOMEM, "out of memory for bucket %llu (%llu rows, "
                             "%llu bytes)", (unsigned long long)b, (unsigned long long)f->rows,
                             (unsigned long long)f->bytes);
    }
    int rc = pread_all(f->fd, d, (size_t)f->bytes, 0);
    if (rc < 0) {
        ag_free(d);
        ag_free(r);
        return io_fail(s->err, "reading a bucket's temporary file", rc);
    }
    size_t at = 0;
    for (uint64_t i = 0; i < f->rows; i++) {
        if (f->bytes - at < 16)
            goto corrupt;
        uint32_t kl = psi_get_u32(d + at + 8), fl = psi_get_u32(d + at + 12);
        if (f->bytes - at - 16 < (uint64_t)kl + fl)
            goto corrupt;
        r[i].line = psi_get_u64(d + at);
        r[i].key = ag_slice_make(d + at + 16, kl);
        r[i].fields = ag_slice_make(d + at + 16 + kl, fl);
        at += 16 + (size_t)kl + fl;
    }
    *data = d;
    *rows = r;
    *nrows = (size_t)f->rows;
    return 0;
corrupt:
    ag_free(d);
    ag_free(r);
    return ag_errbuf_set(s->err, AG_E_IO, "bucket %llu's temporary file is corrupt",
                         (unsigned long long)b);
}

bool ag__psi_row_fields(ag_slice enc, ag_slice *f, size_t ncols)
{
    size_t at = 0;
    for (size_t i = 0; i < ncols; i++) {
        if (enc.len - at < 4)
            return false;
        uint32_t l = psi_get_u32(enc.ptr + at);
        at += 4;
        if (enc.len - at < l)
            return false;
        f[i] = ag_slice_make(enc.ptr + at, l);
        at += l;
    }
    return at == enc.len;
}

/* ---- runs ------------------------------------------------------------------- */

struct run {
    int fd;             /* the runs' own file, or an adopted one */
    uint64_t off;
    uint64_t end;
};

struct psi_runs {
    int fd;
    uint8_t *buf;
    size_t len;
    uint64_t size;      /* bytes in the file, buffered ones included */
    uint64_t run_start;
    struct run *runs;
    size_t nruns;
    size_t cap_runs;
    int *adopted;       /* files of other processes' runs (ag__psi_runs_adopt) */
    size_t nadopted;
    ag_errbuf *err;
};

/* The runs in tmpdir's anonymous file, or (path set) in a new file path. */
static int runs_open(struct psi_runs **out, const char *tmpdir, const char *path,
                     ag_errbuf *err)
{
    struct psi_runs *r = ag_calloc(1, sizeof(*r));
    if (!r)
        return ag_errbuf_set(err, AG_E_NOMEM, "out of memory");
    r->err = err;
    r->buf = ag_malloc(RUNS_BUF);
    if (!r->buf) {
        ag_free(r);
        return ag_errbuf_set(err, AG_E_NOMEM, "out of memory");
    }
    int fd = path ? open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
                  : tmpfile_open(tmpdir, err);
    if (fd < 0 && path)
        fd = ag_errbuf_set(err, ag_err_from_errno(errno), "%s: %s", path, strerror(errno));
    if (fd < 0) {
        ag_free(r->buf);
        ag_free(r);
        return fd;
    }
    r->fd = fd;
    *out = r;
    return 0;
}

int ag__psi_runs_new(struct psi_runs **out, const char *tmpdir, ag_errbuf *err)
{
    return runs_open(out, tmpdir, NULL, err);
}

int ag__psi_runs_new_file(struct psi_runs **out, const char *path, ag_errbuf *err)
{
    return runs_open(out, NULL, path, err);
}

static int runs_flush(struct psi_runs *r)
{
    if (r->len) {
        int rc = write_all(r->fd, r->buf, r->len);
        if (rc < 0)
            return io_fail(r->err, "writing the output's temporary runs", rc);
        r->len = 0;
    }
    return 0;
}

int ag__psi_runs_flush(struct psi_runs *r)
{
    return runs_flush(r);
}

size_t ag__psi_runs_count(const struct psi_runs *r)
{
    return r->nruns;
}

void ag__psi_runs_get(const struct psi_runs *r, size_t i, uint64_t *off, uint64_t *end)
{
    *off = r->runs[i].off;
    *end = r->runs[i].end;
}

/* Room for one more run. */
static int runs_grow(struct psi_runs *r)
{
    if (r->nruns < r->cap_runs)
        return 0;
    size_t cap = r->cap_runs ? r->cap_runs * 2 : 16;
    struct run *nr = ag_reallocarray(r->runs, cap, sizeof(*nr));
    if (!nr)
        return ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
    r->runs = nr;
    r->cap_runs = cap;
    return 0;
}

int ag__psi_runs_adopt(struct psi_runs *r, const char *path, const uint64_t *bounds, size_t n)
{
    int *na = ag_reallocarray(r->adopted, r->nadopted + 1, sizeof(*na));
    if (!na)
        return ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
    r->adopted = na;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ag_errbuf_set(r->err, ag_err_from_errno(errno), "%s: %s", path, strerror(errno));
    r->adopted[r->nadopted++] = fd;
    off_t size = lseek(fd, 0, SEEK_END);
    for (size_t i = 0; i < n; i++) {
        uint64_t off = bounds[2 * i], end = bounds[2 * i + 1];
        if (size < 0 || off >= end || end > (uint64_t)size)
            return ag_errbuf_set(r->err, AG_E_IO, "%s: run %zu [%llu, %llu) is not in the "
                                 "file", path, i, (unsigned long long)off,
                                 (unsigned long long)end);
        int rc = runs_grow(r);
        if (rc < 0)
            return rc;
        r->runs[r->nruns++] = (struct run){fd, off, end};
    }
    return 0;
}

void ag__psi_runs_free(struct psi_runs *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nadopted; i++)
        close(r->adopted[i]);
    ag_free(r->adopted);
    close(r->fd);
    ag_free(r->buf);
    ag_free(r->runs);
    ag_free(r);
}

static int runs_write(struct psi_runs *r, const void *p, size_t n)
{
    const uint8_t *q = p;
    r->size += n;
    while (n > 0) {
        if (r->len == RUNS_BUF) {
            int rc = write_all(r->fd, r->buf, r->len);
            if (rc < 0)
                return io_fail(r->err, "writing the output's temporary runs", rc);
            r->len = 0;
        }
        size_t k = AG_MIN(n, RUNS_BUF - r->len);
        memcpy(r->buf + r->len, q, k);
        r->len += k;
        q += k;
        n -= k;
    }
    return 0;
}

int ag__psi_runs_add(struct psi_runs *r, ag_slice key, uint32_t repeat,
                     const struct psi_row *rows, size_t nrows)
{
    uint64_t rl = 0;
    for (size_t i = 0; i < nrows; i++)
        rl += 4 + rows[i].fields.len;
    uint8_t hdr[20];
    psi_put_u32(hdr, (uint32_t)key.len);
    psi_put_u32(hdr + 4, repeat);
    psi_put_u32(hdr + 8, (uint32_t)nrows);
    psi_put_u64(hdr + 12, rl);
    int rc = runs_write(r, hdr, sizeof(hdr));
    if (rc == 0)
        rc = runs_write(r, key.ptr, key.len);
    for (size_t i = 0; rc == 0 && i < nrows; i++) {
        uint8_t l[4];
        psi_put_u32(l, (uint32_t)rows[i].fields.len);
        rc = runs_write(r, l, 4);
        if (rc == 0)
            rc = runs_write(r, rows[i].fields.ptr, rows[i].fields.len);
    }
    return rc;
}

int ag__psi_runs_end(struct psi_runs *r)
{
    if (r->size == r->run_start)
        return 0;
    int rc = runs_grow(r);
    if (rc < 0)
        return rc;
    r->runs[r->nruns++] = (struct run){r->fd, r->run_start, r->size};
    r->run_start = r->size;
    return 0;
}

/* ---- merge ------------------------------------------------------------------ */

struct cursor {
    int fd;            /* the run's file */
    uint64_t off;      /* file offset of the current group */
    uint64_t end;      /* end of the run */
    uint8_t *win;      /* window: file bytes [win_off, win_off + win_len) */
    size_t win_cap;
    uint64_t win_off;
    size_t win_len;
    /* the current group */
    ag_slice key;
    uint32_t repeat;
    uint32_t nrows;
    ag_slice rows;
    size_t size;       /* header + key + rows */
};

/* Makes [off, off + n) readable in c's window. */
static int window(struct psi_runs *r, struct cursor *c, uint64_t off, size_t n)
{
    if (off >= c->win_off && off + n <= c->win_off + c->win_len)
        return 0;
    size_t want = AG_MAX(n, WINDOW);
    if (want > c->win_cap) {
        uint8_t *w = ag_realloc(c->win, want);
        if (!w)
            return ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory for a key group of %zu "
                                 "bytes", n);
        c->win = w;
        c->win_cap = want;
    }
    size_t len = (size_t)AG_MIN((uint64_t)c->win_cap, c->end - off);
    if (len < n)
        return ag_errbuf_set(r->err, AG_E_IO, "the output's temporary runs are corrupt");
    int rc = pread_all(c->fd, c->win, len, off);
    if (rc < 0)
        return io_fail(r->err, "reading the output's temporary runs", rc);
    c->win_off = off;
    c->win_len = len;
    return 0;
}

/* Reads the group at c->off; 1 if one was read, 0 at the run's end. */
static int cursor_read(struct psi_runs *r, struct cursor *c)
{
    if (c->off >= c->end)
        return 0;
    int rc = window(r, c, c->off, 20);
    if (rc < 0)
        return rc;
    const uint8_t *h = c->win + (c->off - c->win_off);
    uint32_t kl = psi_get_u32(h);
    uint64_t rl = psi_get_u64(h + 12);
    if (rl > c->end - c->off || kl > c->end - c->off - rl)
        return ag_errbuf_set(r->err, AG_E_IO, "the output's temporary runs are corrupt");
    size_t size = 20 + kl + (size_t)rl;
    rc = window(r, c, c->off, size);
    if (rc < 0)
        return rc;
    h = c->win + (c->off - c->win_off);
    c->repeat = psi_get_u32(h + 4);
    c->nrows = psi_get_u32(h + 8);
    c->key = ag_slice_make(h + 20, kl);
    c->rows = ag_slice_make(h + 20 + kl, (size_t)rl);
    c->size = size;
    return 1;
}

static bool cursor_less(const struct cursor *a, const struct cursor *b)
{
    int k = ag__psi_key_cmp(a->key, b->key);
    return k < 0 || (k == 0 && (a->fd < b->fd || (a->fd == b->fd && a->off < b->off)));
}

static void heap_down(struct cursor **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && cursor_less(h[l], h[m]))
            m = l;
        if (l + 1 < n && cursor_less(h[l + 1], h[m]))
            m = l + 1;
        if (m == i)
            return;
        struct cursor *t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Writes one group's rows (see ag__psi_runs_merge). */
static int write_group(struct psi_runs *r, const struct cursor *c, ag_csv_writer *w,
                       ag_slice *f, size_t ncols, bool rows_first, uint64_t *written)
{
    uint32_t outer = rows_first ? 1 : c->repeat, inner = rows_first ? c->repeat : 1;
    for (uint32_t o = 0; o < outer; o++) {
        size_t at = 0;
        for (uint32_t i = 0; i < c->nrows; i++) {
            if (c->rows.len - at < 4)
                goto corrupt;
            uint32_t l = psi_get_u32(c->rows.ptr + at);
            at += 4;
            if (c->rows.len - at < l ||
                !ag__psi_row_fields(ag_slice_make(c->rows.ptr + at, l), f, ncols))
                goto corrupt;
            at += l;
            for (uint32_t k = 0; k < inner; k++) {
                int rc = ag_csv_write_record(w, f, ncols);
                if (rc < 0)
                    return ag_errbuf_set(r->err, rc, "%s", ag_csv_writer_errmsg(w));
                (*written)++;
            }
        }
    }
    return 0;
corrupt:
    return ag_errbuf_set(r->err, AG_E_IO, "the output's temporary runs are corrupt");
}

int ag__psi_runs_merge(struct psi_runs *r, ag_csv_writer *w, size_t ncols, bool rows_first,
                       uint64_t *written)
{
    int frc = runs_flush(r);
    if (frc < 0)
        return frc;
    size_t n = r->nruns;
    struct cursor *cs = ag_calloc(n ? n : 1, sizeof(*cs));
    struct cursor **heap = ag_calloc(n ? n : 1, sizeof(*heap));
    ag_slice *f = ag_calloc(ncols ? ncols : 1, sizeof(*f));
    int rc = 0;
    if (!cs || !heap || !f) {
        rc = ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
        goto out;
    }
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        cs[i].fd = r->runs[i].fd;
        cs[i].off = r->runs[i].off;
        cs[i].end = r->runs[i].end;
        rc = cursor_read(r, &cs[i]);
        if (rc < 0)
            goto out;
        if (rc == 1)
            heap[hn++] = &cs[i];
    }
    rc = 0;
    for (size_t i = hn / 2; i-- > 0;)
        heap_down(heap, hn, i);
    while (hn > 0) {
        struct cursor *c = heap[0];
        rc = write_group(r, c, w, f, ncols, rows_first, written);
        if (rc < 0)
            goto out;
        c->off += c->size;
        rc = cursor_read(r, c);
        if (rc < 0)
            goto out;
        if (rc == 0)
            heap[0] = heap[--hn];
        rc = 0;
        heap_down(heap, hn, 0);
    }
out:
    if (cs)
        for (size_t i = 0; i < n; i++)
            ag_free(cs[i].win);
    ag_free(cs);
    ag_free(heap);
    ag_free(f);
    return rc;
}
