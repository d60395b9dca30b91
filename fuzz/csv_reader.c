/*
 * Fuzz target for the CSV reader (src/base/csv.c).
 *
 * The first input byte picks the options (bit 0: header; bits 1-2: the
 * delimiter; bit 3: CRLF for the writer; bits 4-7: how the stream is cut),
 * the rest is the CSV, read with small limits (max_record 4096, max_fields
 * 64). Three checks, each aborting on a mismatch:
 *   1. read everything from memory, looking up columns and calling every
 *      typed getter on every field, and write each record (the header too)
 *      with the writer;
 *   2. the written CSV reads back as the same records, header included,
 *      and then ends (an input that failed ends where the error was);
 *   3. the same input through a descriptor, cut into packets (a
 *      SOCK_SEQPACKET socket returns one per read), reads exactly as from
 *      memory: same codes, fields, lines, byte counts and error messages,
 *      which exercises records straddling refills.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "argot/base.h"

#define MAX_FIELDS 64
#define MAX_PACKETS 100

#define ASSERT(cond)                                                            \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "csv_reader: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                            \
        }                                                                       \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void opts_from(uint8_t flags, ag_csv_opts *o)
{
    static const char delims[] = {',', ';', '\t', '|'};
    ag_csv_opts_init(o);
    o->header = flags & 1;
    o->delimiter = delims[(flags >> 1) & 3];
    o->crlf = (flags & 8) != 0;
    o->max_record = 4096;
    o->max_fields = MAX_FIELDS;
}

static bool same_record(const ag_csv_reader *a, const ag_csv_reader *b)
{
    if (ag_csv_nfields(a) != ag_csv_nfields(b))
        return false;
    for (size_t i = 0; i < ag_csv_nfields(a); i++)
        if (!ag_slice_eq(ag_csv_field(a, i), ag_csv_field(b, i)))
            return false;
    return true;
}

/* Calls every getter on every field and checks what can be checked. */
static void touch_fields(ag_csv_reader *r)
{
    size_t n = ag_csv_nfields(r);
    ASSERT(n >= 1 && n <= MAX_FIELDS);
    for (size_t i = 0; i <= n; i++) {
        int64_t v;
        double d;
        ag_slice s;
        int rc = ag_csv_get_i64(r, i, &v);
        ASSERT(i < n ? rc == 0 || rc == AG_E_CSV_VALUE : rc == AG_E_INVAL);
        rc = ag_csv_get_double(r, i, &d);
        ASSERT(i < n ? rc == 0 || rc == AG_E_CSV_VALUE : rc == AG_E_INVAL);
        rc = ag_csv_get_utf8(r, i, &s);
        if (i == n) {
            ASSERT(rc == AG_E_INVAL);
            continue;
        }
        ag_slice f = ag_csv_field(r, i);
        size_t bad;
        bool ok = ag_utf8_valid(f, &bad);
        ASSERT(ok ? rc == 0 && ag_slice_eq(s, f) : rc == AG_E_CSV_UTF8 && bad < f.len);
        ASSERT(strlen(ag_csv_reader_errmsg(r)) < AG_ERRMSG_MAX);
    }
}

/* Writes the current record with w; the writer must accept it. */
static void write_current(ag_csv_writer *w, const ag_csv_reader *r)
{
    ag_slice f[MAX_FIELDS];
    size_t n = ag_csv_nfields(r);
    for (size_t i = 0; i < n; i++)
        f[i] = ag_csv_field(r, i);
    ASSERT(ag_csv_write_record(w, f, n) == 0);
}

/* Check 1: reads everything, touching fields; writes the records to out.
 * Returns false if the header could not be read (nothing was written). */
static bool read_and_write(const ag_csv_opts *o, const uint8_t *d, size_t n, ag_buf *out)
{
    ag_csv_reader *r = ag_csv_reader_new(o);
    ag_csv_writer *w = ag_csv_writer_new(o);
    ASSERT(r && w);
    ASSERT(ag_csv_writer_open_buf(w, out) == 0);
    int rc = ag_csv_reader_open_mem(r, d, n, "fuzz.csv");
    bool opened = rc == 0;
    if (opened && o->header) {
        ASSERT(ag_csv_ncols(r) == ag_csv_nfields(r));
        write_current(w, r);
        int c = ag_csv_col(r, "id");
        ASSERT(c >= 0 ? strcmp(ag_csv_colname(r, (size_t)c), "id") == 0 : c == AG_E_CSV_COLUMN);
        c = ag_csv_col(r, "name");
        ASSERT(c >= 0 || c == AG_E_CSV_COLUMN);
        const char *first = ag_csv_colname(r, 0);
        c = ag_csv_col(r, first);
        ASSERT(c >= 0 && (size_t)c < ag_csv_ncols(r));
    }
    uint64_t line = 0, bytes = 0;
    while (opened) {
        rc = ag_csv_next(r);
        if (rc <= 0)
            break;
        ASSERT(ag_csv_line(r) > line || line == 0);
        ASSERT(ag_csv_bytes(r) > bytes && ag_csv_bytes(r) <= n);
        line = ag_csv_line(r);
        bytes = ag_csv_bytes(r);
        touch_fields(r);
        write_current(w, r);
    }
    if (rc < 0) {
        ASSERT(ag_csv_reader_errmsg(r)[0] != '\0');
        ASSERT(ag_csv_next(r) == rc);
    } else {
        ASSERT(ag_csv_bytes(r) == n);
    }
    ag_csv_reader_free(r);
    ASSERT(ag_csv_writer_close(w) == 0);
    return opened;
}

/* Check 2: the written CSV reads back as the records of the input. */
static void check_round_trip(const ag_csv_opts *o, const uint8_t *d, size_t n, const ag_buf *out)
{
    ag_csv_reader *a = ag_csv_reader_new(o);
    ag_csv_reader *b = ag_csv_reader_new(o);
    ASSERT(a && b);
    ASSERT(ag_csv_reader_open_mem(a, d, n, "a") == 0);
    ASSERT(ag_csv_reader_open_mem(b, out->data, out->len, "b") == 0);
    if (o->header) {
        ASSERT(ag_csv_ncols(a) == ag_csv_ncols(b));
        ASSERT(same_record(a, b));
    }
    for (;;) {
        int ra = ag_csv_next(a);
        int rb = ag_csv_next(b);
        if (ra <= 0) {
            ASSERT(rb == 0);
            break;
        }
        ASSERT(rb == 1);
        ASSERT(same_record(a, b));
    }
    ag_csv_reader_free(a);
    ag_csv_reader_free(b);
}

/* Sends d as packets into a SOCK_SEQPACKET pair; returns the read end or
 * -1. Packet sizes come from seed; no packet is empty (that reads as EOF). */
static int packet_stream(const uint8_t *d, size_t n, unsigned seed)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
        return -1;
    size_t chunk = n / MAX_PACKETS + 1;
    size_t off = 0;
    while (off < n) {
        size_t k = AG_MIN(n - off, chunk + (seed % 7));
        seed = seed * 1103515245u + 12345u;
        if (write(sv[1], d + off, k) != (ssize_t)k) {
            close(sv[0]);
            close(sv[1]);
            return -1;
        }
        off += k;
    }
    close(sv[1]);
    return sv[0];
}

/* Check 3: a descriptor cut into packets reads exactly as memory. */
static void check_stream(const ag_csv_opts *o, const uint8_t *d, size_t n, unsigned seed)
{
    int fd = packet_stream(d, n, seed);
    if (fd < 0)
        return;
    ag_csv_reader *a = ag_csv_reader_new(o);
    ag_csv_reader *b = ag_csv_reader_new(o);
    ASSERT(a && b);
    int ra = ag_csv_reader_open_mem(a, d, n, "x.csv");
    int rb = ag_csv_reader_open_fd(b, fd, "x.csv");
    bool first = true; /* after open: the header, or nothing yet */
    for (;;) {
        ASSERT(ra == rb);
        ASSERT(strcmp(ag_csv_reader_errmsg(a), ag_csv_reader_errmsg(b)) == 0);
        if (ra < 0)
            break;
        ASSERT(ag_csv_ncols(a) == ag_csv_ncols(b));
        ASSERT(ag_csv_line(a) == ag_csv_line(b));
        ASSERT(ag_csv_bytes(a) == ag_csv_bytes(b));
        ASSERT(ag_csv_record(a) == ag_csv_record(b));
        if (ra == 0 && !first)
            break;
        ASSERT(same_record(a, b));
        first = false;
        ra = ag_csv_next(a);
        rb = ag_csv_next(b);
    }
    ag_csv_reader_free(a);
    ag_csv_reader_free(b);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    ag_csv_opts o;
    opts_from(data[0], &o);
    unsigned seed = data[0] >> 4;
    data++;
    size--;
    ag_buf out;
    ag_buf_init(&out, (size_t)64 << 20);
    if (read_and_write(&o, data, size, &out))
        check_round_trip(&o, data, size, &out);
    ag_buf_cleanup(&out);
    check_stream(&o, data, size, seed);
    return 0;
}
