/* Tests for src/base/csv.c: the streaming reader (sources, quoting, line
 * numbers, read-buffer boundaries, every error message), the typed getters,
 * ag_utf8_valid, and the writer (quoting, round trips, I/O errors). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define RBUF (256u * 1024u) /* the reader's read buffer, as in csv.c */

/* ---- helpers -------------------------------------------------------------- */

static ag_csv_reader *reader_mem(const ag_csv_opts *opts, const char *text)
{
    ag_csv_reader *r = ag_csv_reader_new(opts);
    CHECK(r != NULL);
    CHECK_OK(ag_csv_reader_open_mem(r, text, strlen(text), "t.csv"));
    return r;
}

static ag_csv_opts no_header(void)
{
    ag_csv_opts o;
    ag_csv_opts_init(&o);
    o.header = false;
    return o;
}

/* Checks the current record's fields against want (NULL-terminated). */
#define CHECK_FIELDS(r, ...)                                                    \
    do {                                                                        \
        const char *want_[] = {__VA_ARGS__, NULL};                              \
        size_t n_ = 0;                                                          \
        while (want_[n_])                                                       \
            n_++;                                                               \
        CHECK_EQ(ag_csv_nfields(r), n_);                                        \
        for (size_t i_ = 0; i_ < n_; i_++)                                      \
            if (!ag_slice_eq_str(ag_csv_field(r, i_), want_[i_]))               \
                FAIL("field %zu: got '%.*s', want '%s'", i_,                    \
                     (int)ag_csv_field(r, i_).len,                              \
                     (const char *)ag_csv_field(r, i_).ptr, want_[i_]);         \
    } while (0)

/* Opens text (or fails at open) and reads until an error, which must be
 * code with message msg. */
static void expect_error(const ag_csv_opts *opts, const char *text, int code, const char *msg)
{
    ag_csv_reader *r = ag_csv_reader_new(opts);
    CHECK(r != NULL);
    int rc = ag_csv_reader_open_mem(r, text, strlen(text), "t.csv");
    while (rc >= 0) {
        rc = ag_csv_next(r);
        CHECK(rc != 0);
    }
    if (rc != code)
        FAIL("got %s (%s), want %s", ag_err_name(rc), ag_csv_reader_errmsg(r),
             ag_err_name(code));
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), msg);
    /* the reader is done: the same error again, the message kept */
    CHECK_EQ(ag_csv_next(r), code);
    CHECK_EQ(ag_csv_next(r), code);
    int64_t v;
    CHECK_EQ(ag_csv_get_i64(r, 0, &v), code);
    CHECK_EQ(ag_csv_col(r, "no such column"), code);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), msg);
    CHECK_EQ(ag_csv_nfields(r), 0);
    ag_csv_reader_free(r);
}

/* xorshift64*: reproducible test data. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/* A random record: 1..8 fields of 0..12 pieces, each piece an ASCII
 * letter, a delimiter, a quote, CR, LF, a space or a 2-, 3- or 4-byte
 * UTF-8 character. fields[i] point into store. */
#define RMAX_FIELDS 8
static size_t random_record(uint64_t *s, char store[RMAX_FIELDS][64], ag_slice *fields)
{
    static const char *const pieces[] = {"a", "b", "Z", ",", ";", "\"", "\r", "\n", " ",
                                         "\t", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    size_t n = 1 + rnd(s) % RMAX_FIELDS;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0, np = rnd(s) % 13;
        if (rnd(s) % 5 == 0)
            np = 0;
        for (size_t k = 0; k < np; k++) {
            const char *p = pieces[rnd(s) % AG_ARRAY_LEN(pieces)];
            memcpy(store[i] + len, p, strlen(p));
            len += strlen(p);
        }
        fields[i] = ag_slice_make(store[i], len);
    }
    return n;
}

/* ---- reading ------------------------------------------------------------ */

TEST(csv_basic_header_and_records)
{
    const char *text = "id,name,age\n1,alice,30\n2,bob,41\n";
    ag_csv_reader *r = reader_mem(NULL, text);
    CHECK_EQ(ag_csv_ncols(r), 3);
    CHECK_STR_EQ(ag_csv_colname(r, 0), "id");
    CHECK_STR_EQ(ag_csv_colname(r, 2), "age");
    CHECK(ag_csv_colname(r, 3) == NULL);
    CHECK_EQ(ag_csv_line(r), 1);
    CHECK_EQ(ag_csv_record(r), 0);
    CHECK_EQ(ag_csv_bytes(r), 12);
    CHECK_EQ(ag_csv_col(r, "name"), 1);
    CHECK_EQ(ag_csv_col(r, "age"), 2);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "1", "alice", "30");
    CHECK_EQ(ag_csv_line(r), 2);
    CHECK_EQ(ag_csv_record(r), 1);
    CHECK_EQ(ag_csv_bytes(r), 23);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "2", "bob", "41");
    CHECK_EQ(ag_csv_line(r), 3);
    CHECK_EQ(ag_csv_record(r), 2);
    CHECK_EQ(ag_csv_next(r), 0);
    CHECK_EQ(ag_csv_next(r), 0);
    CHECK_EQ(ag_csv_record(r), 2);
    CHECK_EQ(ag_csv_bytes(r), strlen(text));
    /* out of range */
    CHECK_EQ(ag_csv_field(r, 7).len, 0);
    ag_csv_reader_free(r);
    ag_csv_reader_free(NULL);
}

TEST(csv_quoted_fields)
{
    const char *text = "a,b,c\n"
                       "\"x,y\",\"say \"\"hi\"\"\",\"\"\n"
                       "\"\"\"\",\"\"\"\"\"\",plain\n"
                       "\"cr\rin\",\"crlf\r\nin\",\"lf\nin\"\n"
                       "last,\"\",x\n";
    ag_csv_reader *r = reader_mem(NULL, text);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "x,y", "say \"hi\"", "");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "\"", "\"\"", "plain");
    CHECK_EQ(ag_csv_line(r), 3);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "cr\rin", "crlf\r\nin", "lf\nin");
    CHECK_EQ(ag_csv_line(r), 4);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "last", "", "x");
    CHECK_EQ(ag_csv_line(r), 7); /* two LFs inside the previous record */
    CHECK_EQ(ag_csv_next(r), 0);
    ag_csv_reader_free(r);
}

TEST(csv_embedded_newlines_line_numbers)
{
    const char *text = "k,v\n"
                       "1,\"one\ntwo\nthree\"\n"   /* lines 2-4 */
                       "2,\"\n\"\n"                /* lines 5-6 */
                       "\n"                        /* 7, blank */
                       "3,x\n"                     /* 8 */
                       "4,\"a\r\nb\",extra\n";      /* 9-10: 3 fields */
    ag_csv_reader *r = reader_mem(NULL, text);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "1", "one\ntwo\nthree");
    CHECK_EQ(ag_csv_line(r), 2);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "2", "\n");
    CHECK_EQ(ag_csv_line(r), 5);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "3", "x");
    CHECK_EQ(ag_csv_line(r), 8);
    CHECK_EQ(ag_csv_record(r), 3);
    CHECK_EQ(ag_csv_next(r), AG_E_CSV_FIELDS);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), "t.csv:9: 3 fields, header has 2");
    ag_csv_reader_free(r);
}

TEST(csv_crlf_input)
{
    ag_csv_reader *r = reader_mem(NULL, "a,b\r\n1,2\r\n\"3\r\n\",4\r\n5,6");
    CHECK_STR_EQ(ag_csv_colname(r, 1), "b");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "1", "2");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "3\r\n", "4");
    CHECK_EQ(ag_csv_line(r), 3);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "5", "6");
    CHECK_EQ(ag_csv_line(r), 5);
    CHECK_EQ(ag_csv_next(r), 0);
    ag_csv_reader_free(r);
}

TEST(csv_bom_skipped)
{
    ag_csv_reader *r = reader_mem(NULL, "\xEF\xBB\xBFid,v\n1,2\n");
    CHECK_STR_EQ(ag_csv_colname(r, 0), "id");
    CHECK_EQ(ag_csv_col(r, "id"), 0);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "1", "2");
    CHECK_EQ(ag_csv_next(r), 0);
    ag_csv_reader_free(r);

    /* only at the very start; and through a file */
    const char *path = ag_test_write_file("bom.csv", "\xEF\xBB\xBF\"q\",\xEF\xBB\xBF\n", 11);
    r = ag_csv_reader_new(NULL);
    CHECK_OK(ag_csv_reader_open(r, path));
    CHECK_STR_EQ(ag_csv_colname(r, 0), "q");
    CHECK_STR_EQ(ag_csv_colname(r, 1), "\xEF\xBB\xBF");
    CHECK_EQ(ag_csv_next(r), 0);
    ag_csv_reader_free(r);

    /* a partial BOM is data */
    ag_csv_opts o = no_header();
    r = reader_mem(&o, "\xEF\xBB");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "\xEF\xBB");
    ag_csv_reader_free(r);
}

TEST(csv_blank_lines_skipped)
{
    const char *text = "\n\r\nh1,h2\n\n1,2\r\n\r\n\n3,4\n\n";
    ag_csv_reader *r = reader_mem(NULL, text);
    CHECK_EQ(ag_csv_line(r), 3);
    CHECK_STR_EQ(ag_csv_colname(r, 0), "h1");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "1", "2");
    CHECK_EQ(ag_csv_line(r), 5);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "3", "4");
    CHECK_EQ(ag_csv_line(r), 8);
    CHECK_EQ(ag_csv_next(r), 0);
    CHECK_EQ(ag_csv_bytes(r), strlen(text));
    ag_csv_reader_free(r);

    /* a line holding "" is one empty field, not a blank line */
    ag_csv_opts o = no_header();
    r = reader_mem(&o, "\"\"\n\n,\n");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "", "");
    CHECK_EQ(ag_csv_line(r), 3);
    CHECK_EQ(ag_csv_next(r), 0);
    ag_csv_reader_free(r);
}

TEST(csv_no_trailing_newline)
{
    ag_csv_opts o = no_header();
    static const struct {
        const char *text;
        size_t nfields;
        const char *last;
    } cases[] = {
        {"a,b", 2, "b"},       {"a,", 2, ""},          {"\"a\",\"b\"", 2, "b"},
        {"\"x\"\"\"", 1, "x\""}, {"a,b\r\n", 2, "b"},   {"\"\"", 1, ""},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        ag_csv_reader *r = reader_mem(&o, cases[i].text);
        CHECK_EQ(ag_csv_next(r), 1);
        CHECK_EQ(ag_csv_nfields(r), cases[i].nfields);
        CHECK(ag_slice_eq_str(ag_csv_field(r, cases[i].nfields - 1), cases[i].last));
        CHECK_EQ(ag_csv_next(r), 0);
        ag_csv_reader_free(r);
    }
    /* header only, with and without its line ending */
    ag_csv_reader *r = reader_mem(NULL, "a,b");
    CHECK_EQ(ag_csv_ncols(r), 2);
    CHECK_EQ(ag_csv_next(r), 0);
    ag_csv_reader_free(r);
}

TEST(csv_raw_bytes_not_trimmed)
{
    ag_csv_opts o = no_header();
    ag_csv_reader *r = reader_mem(&o, " a , b\t,\"  c  \" \n");
    /* a space after a closing quote is an error; the rest are kept */
    CHECK_EQ(ag_csv_next(r), AG_E_CSV_SYNTAX);
    ag_csv_reader_free(r);
    r = reader_mem(&o, " a , b\t,\"  c  \"\n");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, " a ", " b\t", "  c  ");
    ag_csv_reader_free(r);
    /* NUL bytes are data */
    static const char nul[] = "x\0y,z\n";
    r = ag_csv_reader_new(&o);
    CHECK_OK(ag_csv_reader_open_mem(r, nul, sizeof(nul) - 1, "nul.csv"));
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK(ag_slice_eq(ag_csv_field(r, 0), ag_slice_make("x\0y", 3)));
    ag_csv_reader_free(r);
}

TEST(csv_other_delimiters)
{
    ag_csv_opts o;
    ag_csv_opts_init(&o);
    o.delimiter = ';';
    ag_csv_reader *r = reader_mem(&o, "a;b\n1,5;\"x;y\"\n");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "1,5", "x;y");
    ag_csv_reader_free(r);
    o.delimiter = '\t';
    r = reader_mem(&o, "a\tb\n1 2\t\n");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "1 2", "");
    ag_csv_reader_free(r);
    /* a delimiter the format cannot have */
    o.delimiter = '"';
    r = ag_csv_reader_new(&o);
    CHECK_EQ(ag_csv_reader_open_mem(r, "a", 1, "t.csv"), AG_E_INVAL);
    CHECK_EQ(ag_csv_next(r), AG_E_INVAL);
    ag_csv_reader_free(r);
}

TEST(csv_no_header_mode)
{
    ag_csv_opts o = no_header();
    ag_csv_reader *r = reader_mem(&o, "1,2,3\n4\n\n5,6\n");
    CHECK_EQ(ag_csv_ncols(r), 0);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "1", "2", "3");
    CHECK_EQ(ag_csv_line(r), 1);
    CHECK_EQ(ag_csv_record(r), 1);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "4");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "5", "6");
    CHECK_EQ(ag_csv_line(r), 4);
    CHECK_EQ(ag_csv_next(r), 0);
    CHECK_EQ(ag_csv_record(r), 3);
    CHECK_EQ(ag_csv_col(r, "id"), AG_E_CSV_COLUMN);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), "t.csv: no column 'id' (no header)");
    ag_csv_reader_free(r);
    /* an empty input is simply no records */
    r = reader_mem(&o, "");
    CHECK_EQ(ag_csv_next(r), 0);
    ag_csv_reader_free(r);
}

TEST(csv_state_errors)
{
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    CHECK_EQ(ag_csv_next(r), AG_E_STATE);
    CHECK_OK(ag_csv_reader_open_mem(r, "a\n", 2, "t.csv"));
    CHECK_EQ(ag_csv_reader_open_mem(r, "a\n", 2, "u.csv"), AG_E_STATE);
    CHECK_EQ(ag_csv_next(r), 0);
    ag_csv_reader_free(r);
}

/* ---- sources and read-buffer boundaries ----------------------------------- */

TEST(csv_file_fd_and_stdin_sources)
{
    const char *text = "a,b\n1,\"x\ny\"\n2,z\n";
    const char *path = ag_test_write_file("src.csv", text, strlen(text));
    for (int mode = 0; mode < 3; mode++) {
        ag_csv_reader *r = ag_csv_reader_new(NULL);
        int fd = -1;
        if (mode == 0) {
            CHECK_OK(ag_csv_reader_open(r, path));
        } else if (mode == 1) {
            fd = open(path, O_RDONLY);
            CHECK(fd >= 0);
            CHECK_OK(ag_csv_reader_open_fd(r, fd, "fd.csv"));
        } else {
            fd = open(path, O_RDONLY);
            CHECK(fd >= 0);
            CHECK(dup2(fd, 0) == 0);
            CHECK_OK(ag_csv_reader_open(r, "-"));
        }
        CHECK_EQ(ag_csv_next(r), 1);
        CHECK_FIELDS(r, "1", "x\ny");
        CHECK_EQ(ag_csv_next(r), 1);
        CHECK_FIELDS(r, "2", "z");
        CHECK_EQ(ag_csv_line(r), 4);
        CHECK_EQ(ag_csv_next(r), 0);
        CHECK_EQ(ag_csv_bytes(r), strlen(text));
        ag_csv_reader_free(r);
        if (fd >= 0) {
            /* the reader did not close what it was given */
            CHECK(fcntl(fd, F_GETFD) >= 0);
            CHECK(fcntl(0, F_GETFD) >= 0);
            close(fd);
        }
    }
}

/* For every position of the 256 KiB boundary within a record full of
 * tricky bytes (a doubled quote, a CRLF in quotes, a CRLF line ending),
 * the record reads back whole. */
TEST(csv_record_straddles_read_buffer)
{
    static const char tricky[] = "\"q\"\"x\r\ny\",abc,\"\"\r\n";
    size_t tlen = sizeof(tricky) - 1;
    size_t total = RBUF + 64;
    char *data = ag_malloc(total);
    CHECK(data != NULL);
    for (size_t shift = 1; shift <= tlen + 1; shift++) {
        /* header, then filler records, then tricky at RBUF - shift */
        size_t start = RBUF - shift;
        size_t off = (size_t)snprintf(data, total, "a,b,c\n");
        while (start - off > 40) {
            memcpy(data + off, "0123456789,0123456789,0123456789\n", 33);
            off += 33;
        }
        size_t pad = start - off - 5; /* "x,y,<pad>\n" */
        memcpy(data + off, "x,y,", 4);
        memset(data + off + 4, 'p', pad);
        data[off + 4 + pad] = '\n';
        off = start;
        memcpy(data + off, tricky, tlen);
        off += tlen;
        memcpy(data + off, "end,1,2", 7);
        off += 7;
        const char *path = ag_test_write_file("straddle.csv", data, off);
        ag_csv_reader *r = ag_csv_reader_new(NULL);
        CHECK_OK(ag_csv_reader_open(r, path));
        uint64_t n = 0;
        for (;;) {
            CHECK_EQ(ag_csv_next(r), 1);
            n++;
            if (ag_slice_eq_str(ag_csv_field(r, 0), "q\"x\r\ny"))
                break;
        }
        CHECK_FIELDS(r, "q\"x\r\ny", "abc", "");
        uint64_t line = ag_csv_line(r);
        CHECK_EQ(ag_csv_bytes(r), start + tlen);
        CHECK_EQ(ag_csv_next(r), 1);
        CHECK_FIELDS(r, "end", "1", "2");
        CHECK_EQ(ag_csv_line(r), line + 2);
        CHECK_EQ(ag_csv_record(r), n + 1);
        CHECK_EQ(ag_csv_next(r), 0);
        ag_csv_reader_free(r);
    }
    ag_free(data);
}

/* One record bigger than the read buffer: a quoted field of 600 KiB with
 * quotes and newlines in it, through a file. */
TEST(csv_record_bigger_than_read_buffer)
{
    size_t flen = 600 * 1024, nlines = 0;
    ag_buf text, want;
    ag_buf_init(&text, SIZE_MAX);
    ag_buf_init(&want, SIZE_MAX);
    CHECK_OK(ag_buf_append_str(&text, "k,big\n1,\""));
    for (size_t i = 0; i < flen; i++) {
        uint8_t c = (uint8_t)('a' + i % 26);
        if (i % 1000 == 999)
            c = '"';
        else if (i % 777 == 0)
            c = '\n';
        nlines += c == '\n';
        CHECK_OK(ag_buf_append_byte(&want, c));
        CHECK_OK(ag_buf_append_byte(&text, c));
        if (c == '"')
            CHECK_OK(ag_buf_append_byte(&text, '"'));
    }
    CHECK_OK(ag_buf_append_str(&text, "\"\n2,small\n"));
    const char *path = ag_test_write_file("big.csv", text.data, text.len);
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    CHECK_OK(ag_csv_reader_open(r, path));
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK(ag_slice_eq(ag_csv_field(r, 1), ag_buf_slice(&want)));
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "2", "small");
    CHECK_EQ(ag_csv_line(r), 3 + nlines);
    CHECK_EQ(ag_csv_next(r), 0);
    CHECK_EQ(ag_csv_bytes(r), text.len);
    ag_csv_reader_free(r);
    ag_buf_cleanup(&text);
    ag_buf_cleanup(&want);
}

/* A pipe delivers the input in arbitrary chunks (a child writes it in
 * pieces of varying size); the result must not depend on where they end. */
TEST(csv_pipe_in_pieces)
{
    ag_buf text;
    ag_buf_init(&text, SIZE_MAX);
    CHECK_OK(ag_buf_append_str(&text, "\xEF\xBB\xBFn,s\n"));
    for (int i = 0; i < 20000; i++)
        CHECK_OK(ag_buf_printf(&text, "%d,\"v\"\"%d\r\n\"\r\n", i, i));
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        uint64_t s = 42;
        size_t off = 0;
        while (off < text.len) {
            size_t n = AG_MIN(text.len - off, 1 + rnd(&s) % 9000);
            if (off < 3)
                n = 1; /* split the BOM */
            ssize_t k = write(p[1], text.data + off, n);
            if (k <= 0)
                _exit(1);
            off += (size_t)k;
        }
        _exit(0);
    }
    close(p[1]);
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    CHECK_OK(ag_csv_reader_open_fd(r, p[0], "pipe"));
    CHECK_STR_EQ(ag_csv_colname(r, 0), "n");
    char want[64];
    for (int i = 0; i < 20000; i++) {
        CHECK_EQ(ag_csv_next(r), 1);
        int64_t v;
        CHECK_OK(ag_csv_get_i64(r, 0, &v));
        CHECK_EQ(v, i);
        snprintf(want, sizeof(want), "v\"%d\r\n", i);
        CHECK(ag_slice_eq_str(ag_csv_field(r, 1), want));
        CHECK_EQ(ag_csv_line(r), 2 + 2 * (uint64_t)i);
    }
    CHECK_EQ(ag_csv_next(r), 0);
    CHECK_EQ(ag_csv_bytes(r), text.len);
    ag_csv_reader_free(r);
    close(p[0]);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ag_buf_cleanup(&text);
}

/* ---- error messages ----------------------------------------------------- */

TEST(csv_error_field_count)
{
    expect_error(NULL, "a,b,c,d,e\n1,2,3,4,5\n1,2,3\n", AG_E_CSV_FIELDS,
                 "t.csv:3: 3 fields, header has 5");
    expect_error(NULL, "a\n1\n1,\n", AG_E_CSV_FIELDS, "t.csv:3: 2 fields, header has 1");
}

TEST(csv_error_unterminated_quote)
{
    expect_error(NULL, "a,b\n1,\"xx\nyy\n", AG_E_CSV_SYNTAX,
                 "t.csv:2: unterminated quote in field 2");
    /* the line where that quoted field opened, not where the record did */
    expect_error(NULL, "a,b\n\"x\ny\",\"zz\n\n", AG_E_CSV_SYNTAX,
                 "t.csv:3: unterminated quote in field 2");
    expect_error(NULL, "\"abc", AG_E_CSV_SYNTAX, "t.csv:1: unterminated quote in field 1");
    expect_error(NULL, "a\n\"", AG_E_CSV_SYNTAX, "t.csv:2: unterminated quote in field 1");
}

TEST(csv_error_quotes)
{
    expect_error(NULL, "a,b\n1,ab\"c\n", AG_E_CSV_SYNTAX,
                 "t.csv:2: quote inside unquoted field 2");
    expect_error(NULL, "a,b\n1, \"c\"\n", AG_E_CSV_SYNTAX,
                 "t.csv:2: quote inside unquoted field 2");
    expect_error(NULL, "a,b\n\"ab\"c,1\n", AG_E_CSV_SYNTAX,
                 "t.csv:2: unexpected character after closing quote in field 1");
    expect_error(NULL, "a,b\n\"x\ny\",\"ab\" \n", AG_E_CSV_SYNTAX,
                 "t.csv:2: unexpected character after closing quote in field 2");
}

TEST(csv_error_bare_cr)
{
    expect_error(NULL, "a,b\n1,2\r3\n", AG_E_CSV_SYNTAX, "t.csv:2: bare CR in unquoted field 2");
    expect_error(NULL, "a,b\rx", AG_E_CSV_SYNTAX, "t.csv:1: bare CR in unquoted field 2");
    expect_error(NULL, "a\n\rx\n", AG_E_CSV_SYNTAX, "t.csv:2: bare CR in unquoted field 1");
    expect_error(NULL, "a\n1\r", AG_E_CSV_SYNTAX, "t.csv:2: bare CR in unquoted field 1");
    expect_error(NULL, "a\n\r", AG_E_CSV_SYNTAX, "t.csv:2: bare CR in unquoted field 1");
    expect_error(NULL, "a,b\n\"1\"\r2\n", AG_E_CSV_SYNTAX,
                 "t.csv:2: bare CR in unquoted field 1");
}

TEST(csv_error_limits)
{
    ag_csv_opts o;
    ag_csv_opts_init(&o);
    o.max_record = 10;
    /* exactly max_record unescaped bytes is fine ("" counts as one) */
    ag_csv_reader *r = reader_mem(&o, "a\n0123456789\n\"01234567\"\"8\"\n");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "01234567\"8");
    ag_csv_reader_free(r);
    expect_error(&o, "a\n0123456789\n01234567890\n", AG_E_TOO_LARGE,
                 "t.csv:3: record longer than 10 bytes");
    expect_error(&o, "a,b\n\"01234\n\",\"0123\n\"\n", AG_E_TOO_LARGE,
                 "t.csv:2: record longer than 10 bytes");
    ag_csv_opts_init(&o);
    o.max_fields = 3;
    expect_error(&o, "a,b,c\n1,2,3\n1,2,3,4\n", AG_E_TOO_LARGE, "t.csv:3: more than 3 fields");
    expect_error(&o, "a,b,c,d\n", AG_E_TOO_LARGE, "t.csv:1: more than 3 fields");
    /* a wide record under the default limit */
    ag_buf wide;
    ag_buf_init(&wide, SIZE_MAX);
    for (int i = 0; i < 5000; i++)
        CHECK_OK(ag_buf_printf(&wide, "%sc%d", i ? "," : "", i));
    CHECK_OK(ag_buf_append_str(&wide, "\n"));
    r = reader_mem(NULL, (const char *)wide.data);
    CHECK_EQ(ag_csv_ncols(r), 5000);
    CHECK_EQ(ag_csv_col(r, "c4999"), 4999);
    ag_csv_reader_free(r);
    ag_buf_cleanup(&wide);
}

TEST(csv_error_empty_and_duplicates)
{
    expect_error(NULL, "", AG_E_CSV_SYNTAX, "t.csv: no header row (the file is empty)");
    expect_error(NULL, "\n\r\n\n", AG_E_CSV_SYNTAX, "t.csv: no header row (the file is empty)");
    expect_error(NULL, "\xEF\xBB\xBF", AG_E_CSV_SYNTAX,
                 "t.csv: no header row (the file is empty)");
    expect_error(NULL, "a,x,b,c,x\n1,2,3,4,5\n", AG_E_CSV_SYNTAX,
                 "t.csv:1: duplicate column 'x' in header (fields 2 and 5)");
    /* the first repeat in field order is reported */
    expect_error(NULL, "a,b,b,a\n", AG_E_CSV_SYNTAX,
                 "t.csv:1: duplicate column 'b' in header (fields 2 and 3)");
    expect_error(NULL, "z,y,z,y,z\n", AG_E_CSV_SYNTAX,
                 "t.csv:1: duplicate column 'z' in header (fields 1 and 3)");
    expect_error(NULL, "a,,\"\"\n", AG_E_CSV_SYNTAX,
                 "t.csv:1: duplicate column '' in header (fields 2 and 3)");
    /* a prefix is not a duplicate */
    ag_csv_reader *r = reader_mem(NULL, "ab,a,abc\n");
    CHECK_EQ(ag_csv_ncols(r), 3);
    ag_csv_reader_free(r);
}

TEST(csv_error_open_and_read)
{
    const char *missing = ag_test_path("nope.csv");
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    CHECK_EQ(ag_csv_reader_open(r, missing), AG_E_NOENT);
    char want[600];
    snprintf(want, sizeof(want), "%s: No such file or directory", missing);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), want);
    CHECK_EQ(ag_csv_next(r), AG_E_NOENT);
    ag_csv_reader_free(r);

    /* reading a directory fails in read(2) with EISDIR */
    const char *dir = ag_test_tmpdir();
    r = ag_csv_reader_new(NULL);
    CHECK_EQ(ag_csv_reader_open(r, dir), AG_E_IO);
    snprintf(want, sizeof(want), "%s: read error: Is a directory", dir);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), want);
    CHECK_EQ(ag_csv_next(r), AG_E_IO);
    ag_csv_reader_free(r);

    /* a descriptor that is not open */
    r = ag_csv_reader_new(NULL);
    CHECK_EQ(ag_csv_reader_open_fd(r, 999, "bad.csv"), AG_E_IO);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), "bad.csv: read error: Bad file descriptor");
    ag_csv_reader_free(r);
}

TEST(csv_col_lookup_messages)
{
    ag_csv_reader *r = reader_mem(NULL, "id,name\n");
    CHECK_EQ(ag_csv_col(r, "nme"), AG_E_CSV_COLUMN);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r),
                 "t.csv: no column 'nme' in header (did you mean 'name'?)");
    ag_csv_reader_free(r);

    r = reader_mem(NULL, "k,v\n1,2\n");
    CHECK_EQ(ag_csv_col(r, "id"), AG_E_CSV_COLUMN);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), "t.csv: no column 'id' in header (columns: k, v)");
    /* a lookup error does not end the reader */
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "1", "2");
    ag_csv_reader_free(r);

    /* a long list is cut with ", ..." and fits the message */
    ag_buf hdr;
    ag_buf_init(&hdr, SIZE_MAX);
    for (int i = 0; i < 200; i++)
        CHECK_OK(ag_buf_printf(&hdr, "%scolumn_%03d", i ? "," : "", i));
    r = reader_mem(NULL, (const char *)hdr.data);
    CHECK_EQ(ag_csv_col(r, "zz"), AG_E_CSV_COLUMN);
    const char *msg = ag_csv_reader_errmsg(r);
    const char *head = "t.csv: no column 'zz' in header (columns: column_000, column_001, ";
    CHECK(strncmp(msg, head, strlen(head)) == 0);
    size_t len = strlen(msg);
    CHECK(len < AG_ERRMSG_MAX);
    CHECK(len > AG_ERRMSG_MAX - 20);
    CHECK_STR_EQ(msg + len - 6, ", ...)");
    CHECK(strstr(msg, "column_199") == NULL);
    /* the names before the ", ..." are whole */
    CHECK(strncmp(msg + len - 16, "column_", 7) == 0);
    ag_csv_reader_free(r);
    ag_buf_cleanup(&hdr);
}

/* ---- typed getters ------------------------------------------------------ */

TEST(csv_get_i64)
{
    ag_csv_reader *r = reader_mem(NULL, "n\n0\n-5\n+7\n9223372036854775807\n-9223372036854775808\n"
                                        "007\n");
    static const int64_t want[] = {0, -5, 7, INT64_MAX, INT64_MIN, 7};
    for (size_t i = 0; i < AG_ARRAY_LEN(want); i++) {
        int64_t v = 1;
        CHECK_EQ(ag_csv_next(r), 1);
        CHECK_OK(ag_csv_get_i64(r, 0, &v));
        CHECK(v == want[i]);
    }
    ag_csv_reader_free(r);

    static const struct {
        const char *val;
        const char *msg;
    } bad[] = {
        {"", "t.csv:2: column 'age': '' is not an integer"},
        {"1.5", "t.csv:2: column 'age': '1.5' is not an integer"},
        {" 1", "t.csv:2: column 'age': ' 1' is not an integer"},
        {"1 ", "t.csv:2: column 'age': '1 ' is not an integer"},
        {"-", "t.csv:2: column 'age': '-' is not an integer"},
        {"+-1", "t.csv:2: column 'age': '+-1' is not an integer"},
        {"0x10", "t.csv:2: column 'age': '0x10' is not an integer"},
        {"99999999999999999999x",
         "t.csv:2: column 'age': '99999999999999999999x' is not an integer"},
        {"9223372036854775808",
         "t.csv:2: column 'age': '9223372036854775808' is out of range for a 64-bit integer"},
        {"-9223372036854775809",
         "t.csv:2: column 'age': '-9223372036854775809' is out of range for a 64-bit integer"},
        {"123456789012345678901234567890123456789012345",
         "t.csv:2: column 'age': '1234567890123456789012345678901234567890...' is out of "
         "range for a 64-bit integer"},
        {"abcdefghijabcdefghijabcdefghijabcdefghij",
         "t.csv:2: column 'age': 'abcdefghijabcdefghijabcdefghijabcdefghij' is not an integer"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        char text[256];
        snprintf(text, sizeof(text), "id,age\nx,\"%s\"\n", bad[i].val);
        r = reader_mem(NULL, text);
        CHECK_EQ(ag_csv_next(r), 1);
        int64_t v = 42;
        CHECK_EQ(ag_csv_get_i64(r, 1, &v), AG_E_CSV_VALUE);
        CHECK_EQ(v, 42);
        CHECK_STR_EQ(ag_csv_reader_errmsg(r), bad[i].msg);
        /* a getter's error does not end the reader */
        CHECK_EQ(ag_csv_next(r), 0);
        ag_csv_reader_free(r);
    }
}

TEST(csv_get_double)
{
    static const struct {
        const char *val;
        double want;
    } good[] = {
        {"1.5", 1.5}, {"-2e3", -2000.0}, {"0", 0.0}, {".5", 0.5}, {"5.", 5.0},
        {"+1E-2", 0.01}, {"1e999", HUGE_VAL},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(good); i++) {
        char text[64];
        snprintf(text, sizeof(text), "x\n%s\n", good[i].val);
        ag_csv_reader *r = reader_mem(NULL, text);
        CHECK_EQ(ag_csv_next(r), 1);
        double v = -1;
        CHECK_OK(ag_csv_get_double(r, 0, &v));
        CHECK(v == good[i].want);
        ag_csv_reader_free(r);
    }
    ag_csv_reader *r = reader_mem(NULL, "a,b,c,d,e\nnan,INF,-inf,NaN,+Infinity\n");
    CHECK_EQ(ag_csv_next(r), 1);
    double v;
    CHECK_OK(ag_csv_get_double(r, 0, &v));
    CHECK(isnan(v));
    CHECK_OK(ag_csv_get_double(r, 1, &v));
    CHECK(isinf(v) && v > 0);
    CHECK_OK(ag_csv_get_double(r, 2, &v));
    CHECK(isinf(v) && v < 0);
    CHECK_OK(ag_csv_get_double(r, 3, &v));
    CHECK(isnan(v));
    CHECK_OK(ag_csv_get_double(r, 4, &v));
    CHECK(isinf(v) && v > 0);
    ag_csv_reader_free(r);

    static const char *const bad[] = {"", "0x1p3", " 1", "1 ", "abc", "1e", "-", "1,5",
                                      "nanx", "in", "1.2.3", "e5"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        char text[64], want[128];
        snprintf(text, sizeof(text), "score\n\"%s\"\n", bad[i]);
        snprintf(want, sizeof(want), "t.csv:2: column 'score': '%s' is not a number", bad[i]);
        r = reader_mem(NULL, text);
        CHECK_EQ(ag_csv_next(r), 1);
        v = 42;
        CHECK_EQ(ag_csv_get_double(r, 0, &v), AG_E_CSV_VALUE);
        CHECK(v == 42);
        CHECK_STR_EQ(ag_csv_reader_errmsg(r), want);
        ag_csv_reader_free(r);
    }
    /* strtod's view of the field stops at its end, not the next field's */
    ag_csv_opts o = no_header();
    r = reader_mem(&o, "1,5\n");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_OK(ag_csv_get_double(r, 0, &v));
    CHECK(v == 1.0);
    CHECK_FIELDS(r, "1", "5");
    ag_csv_reader_free(r);
}

TEST(csv_get_utf8_and_field_index)
{
    ag_csv_reader *r = reader_mem(NULL, "id,name\n\"ab\xff\",\"caf\xc3\xa9\"\n");
    CHECK_EQ(ag_csv_next(r), 1);
    ag_slice s;
    CHECK_OK(ag_csv_get_utf8(r, 1, &s));
    CHECK(ag_slice_eq_str(s, "caf\xc3\xa9"));
    CHECK_EQ(ag_csv_get_utf8(r, 0, &s), AG_E_CSV_UTF8);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), "t.csv:2: column 'id': invalid UTF-8 at byte 3");
    int64_t i;
    CHECK_EQ(ag_csv_get_i64(r, 5, &i), AG_E_INVAL);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), "t.csv:2: no field 6");
    double d;
    CHECK_EQ(ag_csv_get_double(r, 2, &d), AG_E_INVAL);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), "t.csv:2: no field 3");
    CHECK_EQ(ag_csv_get_utf8(r, 2, &s), AG_E_INVAL);
    ag_csv_reader_free(r);

    /* without a header the column is named by its number */
    ag_csv_opts o = no_header();
    r = reader_mem(&o, "\n\nx,\xe2\x82,y\n");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_EQ(ag_csv_get_utf8(r, 1, &s), AG_E_CSV_UTF8);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), "t.csv:3: column 'field 2': invalid UTF-8 at byte 1");
    CHECK_EQ(ag_csv_get_i64(r, 2, &i), AG_E_CSV_VALUE);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r), "t.csv:3: column 'field 3': 'y' is not an integer");
    ag_csv_reader_free(r);
}

TEST(csv_utf8_valid)
{
    static const struct {
        const char *s;
        size_t len;
        bool ok;
        size_t bad;
    } cases[] = {
        {"", 0, true, 0},
        {"plain ascii text, longer than eight", 35, true, 35},
        {"\xc3\xa9", 2, true, 2},
        {"\xe2\x82\xac", 3, true, 3},
        {"\xf0\x9f\x98\x80", 4, true, 4},
        {"\xf4\x8f\xbf\xbf", 4, true, 4},         /* U+10FFFF */
        {"\xed\x9f\xbf", 3, true, 3},             /* U+D7FF */
        {"\xee\x80\x80", 3, true, 3},             /* U+E000 */
        {"\xc0\x80", 2, false, 0},                /* overlong NUL */
        {"\xc1\xbf", 2, false, 0},                /* overlong */
        {"\xe0\x80\x80", 3, false, 0},            /* overlong */
        {"\xe0\x9f\xbf", 3, false, 0},            /* overlong */
        {"\xf0\x80\x80\x80", 4, false, 0},        /* overlong */
        {"\xed\xa0\x80", 3, false, 0},            /* surrogate D800 */
        {"\xed\xbf\xbf", 3, false, 0},            /* surrogate DFFF */
        {"\xf4\x90\x80\x80", 4, false, 0},        /* U+110000 */
        {"\xf5\x80\x80\x80", 4, false, 0},
        {"\xff", 1, false, 0},
        {"\x80", 1, false, 0},                    /* lone continuation */
        {"abc\xe2\x82", 5, false, 3},             /* truncated at the end */
        {"abcdefgh\xf0\x9f\x98", 11, false, 8},
        {"\xe2\x82x", 3, false, 0},               /* truncated before ASCII */
        {"01234567\xc3\xa9\x80", 11, false, 10},
        {"0123456789abcdef\xc3", 17, false, 16},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        size_t bad = 999;
        bool ok = ag_utf8_valid(ag_slice_make(cases[i].s, cases[i].len), &bad);
        if (ok != cases[i].ok || bad != cases[i].bad)
            FAIL("case %zu: ok %d bad %zu, want ok %d bad %zu", i, ok, bad, cases[i].ok,
                 cases[i].bad);
    }
    CHECK(ag_utf8_valid(ag_slice_make(NULL, 0), NULL));
    CHECK(!ag_utf8_valid(ag_slice_make("\xc0\x80", 2), NULL));
    /* every 2-byte lead against every second byte agrees with the rules */
    for (unsigned a = 0x80; a < 0x100; a++)
        for (unsigned b = 0; b < 0x100; b++) {
            uint8_t s[2] = {(uint8_t)a, (uint8_t)b};
            bool want = a >= 0xC2 && a <= 0xDF && b >= 0x80 && b <= 0xBF;
            CHECK_EQ(ag_utf8_valid(ag_slice_make(s, 2), NULL), want);
        }
}

/* ---- writer ------------------------------------------------------------- */

static void write_fields(ag_csv_writer *w, const char *const *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CHECK_OK(ag_csv_write_field(w, ag_slice_str(f[i])));
    CHECK_OK(ag_csv_end_record(w));
}

TEST(csv_writer_quoting)
{
    ag_buf out;
    ag_buf_init(&out, 1 << 20);
    ag_csv_writer *w = ag_csv_writer_new(NULL);
    CHECK_OK(ag_csv_writer_open_buf(w, &out));
    static const char *const r1[] = {"a", "b,c", "d\"e", "", "x\ny", "\r", "\"", "é"};
    write_fields(w, r1, AG_ARRAY_LEN(r1));
    static const char *const r2[] = {""};
    write_fields(w, r2, 1);
    static const char *const r3[] = {"", ""};
    write_fields(w, r3, 2);
    ag_slice r4[] = {ag_slice_str("x"), ag_slice_str("semi;colon")};
    CHECK_OK(ag_csv_write_record(w, r4, 2));
    CHECK_EQ(ag_csv_end_record(w), AG_E_INVAL);
    CHECK_STR_EQ(ag_csv_writer_errmsg(w), "(buffer): a record needs at least one field");
    CHECK_OK(ag_csv_writer_flush(w));
    CHECK_STR_EQ((const char *)out.data,
                 "a,\"b,c\",\"d\"\"e\",,\"x\ny\",\"\r\",\"\"\"\",é\n\"\"\n,\nx,semi;colon\n");
    /* close reports the usage error above as the writer's first error */
    CHECK_EQ(ag_csv_writer_close(w), AG_E_INVAL);
    CHECK_EQ(ag_csv_writer_close(NULL), 0);

    ag_buf_reset(&out);
    ag_csv_opts o;
    ag_csv_opts_init(&o);
    o.delimiter = ';';
    o.crlf = true;
    w = ag_csv_writer_new(&o);
    CHECK_OK(ag_csv_writer_open_buf(w, &out));
    CHECK_OK(ag_csv_write_record(w, r4, 2));
    CHECK_OK(ag_csv_write_record(w, (ag_slice[]){ag_slice_str("1,2")}, 1));
    CHECK_EQ(ag_csv_writer_close(w), 0);
    CHECK_STR_EQ((const char *)out.data, "x;\"semi;colon\"\r\n1,2\r\n");
    ag_buf_cleanup(&out);
}

/* A first field that starts with the bytes of a BOM is quoted, so that the
 * reader does not strip them; elsewhere they need no quotes. */
TEST(csv_writer_leading_bom_quoted)
{
    ag_buf out;
    ag_buf_init(&out, 1 << 20);
    ag_csv_writer *w = ag_csv_writer_new(NULL);
    CHECK_OK(ag_csv_writer_open_buf(w, &out));
    ag_slice f[] = {ag_slice_str("\xEF\xBB\xBFx"), ag_slice_str("\xEF\xBB\xBF")};
    CHECK_OK(ag_csv_write_record(w, f, 2));
    CHECK_OK(ag_csv_write_record(w, f, 2));
    CHECK_EQ(ag_csv_writer_close(w), 0);
    CHECK_STR_EQ((const char *)out.data, "\"\xEF\xBB\xBFx\",\xEF\xBB\xBF\n"
                                         "\xEF\xBB\xBFx,\xEF\xBB\xBF\n");
    ag_csv_reader *r = reader_mem(NULL, (const char *)out.data);
    CHECK_STR_EQ(ag_csv_colname(r, 0), "\xEF\xBB\xBFx");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "\xEF\xBB\xBFx", "\xEF\xBB\xBF");
    ag_csv_reader_free(r);
    ag_buf_cleanup(&out);
}

TEST(csv_writer_buf_too_large)
{
    ag_buf out;
    ag_buf_init(&out, 10);
    ag_csv_writer *w = ag_csv_writer_new(NULL);
    CHECK_OK(ag_csv_writer_open_buf(w, &out));
    ag_slice f[] = {ag_slice_str("12345"), ag_slice_str("6789")};
    CHECK_EQ(ag_csv_write_record(w, f, 2), AG_E_TOO_LARGE);
    CHECK_STR_EQ(ag_csv_writer_errmsg(w), "(buffer): output longer than 10 bytes");
    /* sticky */
    CHECK_EQ(ag_csv_write_field(w, ag_slice_str("x")), AG_E_TOO_LARGE);
    CHECK_EQ(ag_csv_writer_flush(w), AG_E_TOO_LARGE);
    CHECK_EQ(ag_csv_writer_close(w), AG_E_TOO_LARGE);
    ag_buf_cleanup(&out);

    w = ag_csv_writer_new(NULL);
    CHECK_EQ(ag_csv_write_field(w, ag_slice_str("x")), AG_E_STATE);
    CHECK_EQ(ag_csv_writer_close(w), AG_E_STATE);
}

TEST(csv_writer_dev_full)
{
    ag_csv_writer *w = ag_csv_writer_new(NULL);
    CHECK_OK(ag_csv_writer_open(w, "/dev/full"));
    ag_slice f[] = {ag_slice_str("a"), ag_slice_str("b")};
    CHECK_OK(ag_csv_write_record(w, f, 2)); /* buffered */
    CHECK_EQ(ag_csv_writer_flush(w), AG_E_IO);
    CHECK_STR_EQ(ag_csv_writer_errmsg(w), "/dev/full: write error: No space left on device");
    CHECK_EQ(ag_csv_write_record(w, f, 2), AG_E_IO);
    CHECK_EQ(ag_csv_writer_close(w), AG_E_IO);

    /* without an explicit flush, close still reports it */
    w = ag_csv_writer_new(NULL);
    CHECK_OK(ag_csv_writer_open(w, "/dev/full"));
    CHECK_OK(ag_csv_write_record(w, f, 2));
    CHECK_EQ(ag_csv_writer_close(w), AG_E_IO);

    /* an open failure */
    w = ag_csv_writer_new(NULL);
    const char *bad = ag_test_path("no/such/dir.csv");
    CHECK_EQ(ag_csv_writer_open(w, bad), AG_E_NOENT);
    char want[600];
    snprintf(want, sizeof(want), "%s: No such file or directory", bad);
    CHECK_STR_EQ(ag_csv_writer_errmsg(w), want);
    CHECK_EQ(ag_csv_write_record(w, f, 2), AG_E_NOENT);
    CHECK_EQ(ag_csv_writer_close(w), AG_E_NOENT);
}

/* Writes n random records with w (from seed), half of them field by
 * field and half with ag_csv_write_record. */
static void write_random(ag_csv_writer *w, uint64_t seed, size_t n)
{
    char store[RMAX_FIELDS][64];
    ag_slice f[RMAX_FIELDS];
    for (size_t i = 0; i < n; i++) {
        size_t nf = random_record(&seed, store, f);
        if (i % 2) {
            CHECK_OK(ag_csv_write_record(w, f, nf));
        } else {
            for (size_t k = 0; k < nf; k++)
                CHECK_OK(ag_csv_write_field(w, f[k]));
            CHECK_OK(ag_csv_end_record(w));
        }
    }
}

/* Reads back what write_random wrote and compares. */
static void check_random(ag_csv_reader *r, uint64_t seed, size_t n)
{
    char store[RMAX_FIELDS][64];
    ag_slice f[RMAX_FIELDS];
    for (size_t i = 0; i < n; i++) {
        size_t nf = random_record(&seed, store, f);
        int rc = ag_csv_next(r);
        if (rc != 1)
            FAIL("record %zu: %s: %s", i, ag_err_name(rc), ag_csv_reader_errmsg(r));
        CHECK_EQ(ag_csv_nfields(r), nf);
        for (size_t k = 0; k < nf; k++)
            if (!ag_slice_eq(ag_csv_field(r, k), f[k]))
                FAIL("record %zu field %zu differs", i, k);
        CHECK_EQ(ag_csv_record(r), i + 1);
    }
    CHECK_EQ(ag_csv_next(r), 0);
}

TEST(csv_round_trip_random)
{
    static const struct {
        char delim;
        bool crlf;
    } variants[] = {{',', false}, {',', true}, {';', false}, {'\t', true}};
    for (size_t v = 0; v < AG_ARRAY_LEN(variants); v++) {
        ag_csv_opts o = no_header();
        o.delimiter = variants[v].delim;
        o.crlf = variants[v].crlf;
        ag_buf out;
        ag_buf_init(&out, SIZE_MAX);
        ag_csv_writer *w = ag_csv_writer_new(&o);
        CHECK_OK(ag_csv_writer_open_buf(w, &out));
        write_random(w, 1000 + v, 3000);
        CHECK_EQ(ag_csv_writer_close(w), 0);
        ag_csv_reader *r = ag_csv_reader_new(&o);
        CHECK_OK(ag_csv_reader_open_mem(r, out.data, out.len, "rt.csv"));
        check_random(r, 1000 + v, 3000);
        CHECK_EQ(ag_csv_bytes(r), out.len);
        ag_csv_reader_free(r);
        ag_buf_cleanup(&out);
    }
}

/* Through a file: more than the writer's 64 KiB buffer and the reader's
 * 256 KiB one, plus a field bigger than both. */
TEST(csv_writer_file_round_trip)
{
    const char *path = ag_test_path("out.csv");
    ag_csv_opts o = no_header();
    ag_csv_writer *w = ag_csv_writer_new(&o);
    CHECK_OK(ag_csv_writer_open(w, path));
    write_random(w, 7, 40000);
    size_t blen = 300 * 1024;
    char *big = ag_malloc(blen);
    CHECK(big != NULL);
    for (size_t i = 0; i < blen; i++)
        big[i] = i % 100 == 0 ? '"' : (char)('a' + i % 26);
    ag_slice bigf[] = {ag_slice_str("big"), ag_slice_make(big, blen)};
    CHECK_OK(ag_csv_write_record(w, bigf, 2));
    CHECK_OK(ag_csv_write_record(w, bigf, 1));
    CHECK_EQ(ag_csv_writer_close(w), 0);

    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK(st.st_size > 1024 * 1024);
    ag_csv_reader *r = ag_csv_reader_new(&o);
    CHECK_OK(ag_csv_reader_open(r, path));
    char store[RMAX_FIELDS][64];
    ag_slice f[RMAX_FIELDS];
    uint64_t seed = 7;
    for (size_t i = 0; i < 40000; i++) {
        size_t nf = random_record(&seed, store, f);
        CHECK_EQ(ag_csv_next(r), 1);
        CHECK_EQ(ag_csv_nfields(r), nf);
        for (size_t k = 0; k < nf; k++)
            CHECK(ag_slice_eq(ag_csv_field(r, k), f[k]));
    }
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_EQ(ag_csv_nfields(r), 2);
    CHECK(ag_slice_eq(ag_csv_field(r, 1), bigf[1]));
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "big");
    CHECK_EQ(ag_csv_next(r), 0);
    CHECK_EQ(ag_csv_bytes(r), (uint64_t)st.st_size);
    ag_csv_reader_free(r);
    ag_free(big);
}

TEST(csv_writer_fd_not_closed)
{
    const char *path = ag_test_path("fd.csv");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    ag_csv_writer *w = ag_csv_writer_new(NULL);
    CHECK_OK(ag_csv_writer_open_fd(w, fd, "fd.csv"));
    ag_slice f[] = {ag_slice_str("h"), ag_slice_str("i j")};
    CHECK_OK(ag_csv_write_record(w, f, 2));
    CHECK_EQ(ag_csv_writer_close(w), 0);
    CHECK(write(fd, "x,y\n", 4) == 4); /* still open */
    close(fd);
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    CHECK_OK(ag_csv_reader_open(r, path));
    CHECK_STR_EQ(ag_csv_colname(r, 1), "i j");
    CHECK_EQ(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "x", "y");
    ag_csv_reader_free(r);
}

/* ---- failmalloc --------------------------------------------------------- */

TEST_FM(csv_fm_reader_mem)
{
    static const char text[] = "\xEF\xBB\xBFid,name,score\n"
                               "1,alice,2.5\n"
                               "\n"
                               "2,\"bob, \"\"the\"\"\nbuilder\",-1e3\n"
                               "3,carol,7\r\n";
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    FM_NEW(r);
    FM_TRY(ag_csv_reader_open_mem(r, text, sizeof(text) - 1, "fm.csv"), 0);
    FM_TRY(ag_csv_col(r, "score"), 2);
    FM_TRY(ag_csv_col(r, "scor"), AG_E_CSV_COLUMN);
    CHECK_STR_EQ(ag_csv_reader_errmsg(r),
                 "fm.csv: no column 'scor' in header (did you mean 'score'?)");
    double sum = 0;
    int64_t ids = 0;
    for (int i = 0; i < 3; i++) {
        FM_TRY(ag_csv_next(r), 1);
        int64_t id;
        double s;
        ag_slice name;
        FM_TRY(ag_csv_get_i64(r, 0, &id), 0);
        FM_TRY(ag_csv_get_double(r, 2, &s), 0);
        FM_TRY(ag_csv_get_utf8(r, 1, &name), 0);
        ids += id;
        sum += s;
        if (i == 1)
            CHECK(ag_slice_eq_str(name, "bob, \"the\"\nbuilder"));
    }
    FM_TRY(ag_csv_next(r), 0);
    CHECK_EQ(ids, 6);
    CHECK(sum == 2.5 - 1000 + 7);
    CHECK_EQ(ag_csv_line(r), 6); /* the last record's */
out:
    ag_csv_reader_free(r);
}

TEST_FM(csv_fm_reader_file)
{
    static const char text[] = "k,v\n1,\"x\"\"y\"\n2,z\n";
    const char *path = ag_test_write_file("fm.csv", text, sizeof(text) - 1);
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    FM_NEW(r);
    FM_TRY(ag_csv_reader_open(r, path), 0);
    FM_TRY(ag_csv_next(r), 1);
    CHECK_FIELDS(r, "1", "x\"y");
    FM_TRY(ag_csv_next(r), 1);
    FM_TRY(ag_csv_next(r), 0);
out:
    ag_csv_reader_free(r);
}

TEST_FM(csv_fm_writer_buf)
{
    ag_buf out;
    ag_buf_init(&out, 1 << 16);
    ag_csv_reader *r = NULL;
    ag_csv_writer *w = ag_csv_writer_new(NULL);
    FM_NEW(w);
    FM_TRY(ag_csv_writer_open_buf(w, &out), 0);
    ag_slice hdr[] = {ag_slice_str("k"), ag_slice_str("v")};
    FM_TRY(ag_csv_write_record(w, hdr, 2), 0);
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof(k), "%d", i);
        FM_TRY(ag_csv_write_field(w, ag_slice_str(k)), 0);
        FM_TRY(ag_csv_write_field(w, ag_slice_str(i % 2 ? "a,\"b\"" : "plain")), 0);
        FM_TRY(ag_csv_end_record(w), 0);
    }
    int rc = ag_csv_writer_close(w);
    w = NULL;
    FM_TRY(rc, 0);
    r = ag_csv_reader_new(NULL);
    FM_NEW(r);
    FM_TRY(ag_csv_reader_open_mem(r, out.data, out.len, "buf"), 0);
    for (int i = 0; i < 50; i++) {
        FM_TRY(ag_csv_next(r), 1);
        int64_t k;
        FM_TRY(ag_csv_get_i64(r, 0, &k), 0);
        CHECK_EQ(k, i);
        CHECK(ag_slice_eq_str(ag_csv_field(r, 1), i % 2 ? "a,\"b\"" : "plain"));
    }
    FM_TRY(ag_csv_next(r), 0);
out:
    ag_csv_writer_close(w);
    ag_csv_reader_free(r);
    ag_buf_cleanup(&out);
}
