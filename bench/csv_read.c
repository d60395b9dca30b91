/*
 * csv_read: the streaming CSV reader against Python's csv module.
 *
 * Generates a CSV file of --size-mb MiB (default 1024) under /tmp: a header
 * of six columns (id, name, age, score, city, note) and rows whose name is
 * UTF-8 text, sometimes quoted with commas and doubled quotes, now and then
 * with an embedded newline. Then, each in its own child process so that
 * wait4() gives its peak RSS alone:
 *   argot        ag_csv_reader over the file, touching every field (sums
 *                their lengths) and parsing age with ag_csv_get_i64;
 *   python3-csv  /usr/bin/python3 with csv.reader over the same file,
 *                counting rows, summing field lengths and parsing age.
 * Prints one table row for each (MB are MiB; seconds are wall time from
 * fork to exit), the time ratio, and checks that both counted the rows the
 * generator wrote. A row-count mismatch or a failed child exits 1; timings
 * never decide the exit status. The file is removed unless --keep PATH
 * names where to write (and keep) it.
 *
 * Usage: csv_read [--size-mb N] [--keep PATH]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "argot/base.h"

#define GEN_BUF (1u << 20)
#define MIB (1024.0 * 1024.0)

static const char *const py_script =
    "import csv, sys\n"
    "rows = 0\n"
    "total = 0\n"
    "with open(sys.argv[1], newline='', encoding='utf-8') as f:\n"
    "    r = csv.reader(f)\n"
    "    next(r)\n"
    "    for row in r:\n"
    "        rows += 1\n"
    "        for x in row:\n"
    "            total += len(x)\n"
    "        int(row[2])\n"
    "print(rows, total)\n";

struct result {
    uint64_t rows;
    double seconds;
    double rss_mb;
    bool ok;
};

/* ---- generating the file ------------------------------------------------ */

struct gen {
    uint64_t seed;
    char *buf;   /* GEN_BUF bytes */
    size_t len;  /* bytes waiting in buf */
    int fd;
    uint64_t written;
};

static uint64_t rnd(struct gen *g)
{
    g->seed ^= g->seed >> 12;
    g->seed ^= g->seed << 25;
    g->seed ^= g->seed >> 27;
    return g->seed * UINT64_C(2685821657736338717);
}

static const char *pick(struct gen *g, const char *const *list, size_t n)
{
    return list[rnd(g) % n];
}

static void put(struct gen *g, const char *s)
{
    size_t n = strlen(s);
    memcpy(g->buf + g->len, s, n);
    g->len += n;
}

static void put_u64(struct gen *g, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        g->buf[g->len++] = tmp[--n];
}

static int gen_flush(struct gen *g)
{
    size_t off = 0;
    while (off < g->len) {
        ssize_t k = write(g->fd, g->buf + off, g->len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        off += (size_t)k;
    }
    g->written += g->len;
    g->len = 0;
    return 0;
}

static const char *const firsts[] = {"Alice", "Bob", "José", "Zoë", "李雷", "Søren", "Ærin",
                                     "Анна", "Mary", "Jean-Luc", "Οδυσσέας", "Priya", "Ølaf"};
static const char *const lasts[] = {"Smith", "García", "Müller", "王", "O'Brien", "Nakamura",
                                    "Kowalski", "Ibáñez", "Dubois", "Иванов", "Nguyễn"};
static const char *const cities[] = {"Berlin", "São Paulo", "Zürich", "New York", "Kraków",
                                     "\"Washington, D.C.\"", "東京", "Lagos", "Montréal"};
static const char *const words[] = {"ok", "late", "paid", "vip", "refund", "n/a", "früh",
                                    "返品", "check", "again", "new", "x"};

/* The name column: plain, or quoted with a comma, doubled quotes, or an
 * embedded newline. */
static void gen_name(struct gen *g)
{
    const char *first = pick(g, firsts, AG_ARRAY_LEN(firsts));
    const char *last = pick(g, lasts, AG_ARRAY_LEN(lasts));
    uint64_t kind = rnd(g) % 1000;
    if (kind < 100) {
        put(g, "\"");
        put(g, last);
        put(g, ", ");
        put(g, first);
        put(g, "\"");
    } else if (kind < 130) {
        put(g, "\"");
        put(g, first);
        put(g, " \"\"");
        put(g, pick(g, words, AG_ARRAY_LEN(words)));
        put(g, "\"\" ");
        put(g, last);
        put(g, "\"");
    } else if (kind < 135) {
        put(g, "\"");
        put(g, first);
        put(g, "\n");
        put(g, last);
        put(g, "\"");
    } else {
        put(g, first);
        put(g, " ");
        put(g, last);
    }
}

static void gen_row(struct gen *g, uint64_t id)
{
    put_u64(g, id);
    put(g, ",");
    gen_name(g);
    put(g, ",");
    put_u64(g, 18 + rnd(g) % 73);
    put(g, ",");
    uint64_t score = rnd(g) % 100000;
    put_u64(g, score / 100);
    put(g, score % 100 < 10 ? ".0" : ".");
    put_u64(g, score % 100);
    put(g, ",");
    put(g, pick(g, cities, AG_ARRAY_LEN(cities)));
    put(g, ",");
    uint64_t nwords = rnd(g) % 5;
    for (uint64_t i = 0; i < nwords; i++) {
        if (i)
            put(g, " ");
        put(g, pick(g, words, AG_ARRAY_LEN(words)));
    }
    put(g, "\n");
}

/* Writes about size bytes of rows to fd; returns the number of rows, or
 * -1 on a write error. */
static int64_t generate(int fd, uint64_t size)
{
    struct gen g = {.seed = 0x9E3779B97F4A7C15u, .fd = fd};
    g.buf = ag_malloc(GEN_BUF);
    if (!g.buf)
        return -1;
    put(&g, "id,name,age,score,city,note\n");
    uint64_t rows = 0;
    while (g.written + g.len < size) {
        gen_row(&g, rows + 1);
        rows++;
        if (g.len > GEN_BUF - 1024 && gen_flush(&g) < 0)
            goto fail;
    }
    if (gen_flush(&g) < 0)
        goto fail;
    ag_free(g.buf);
    return (int64_t)rows;
fail:
    ag_free(g.buf);
    return -1;
}

/* ---- the two readers ---------------------------------------------------- */

/* The argot side, in the child: prints "rows sum" to out_fd; exits 1 on
 * a reader error. */
static void argot_child(const char *path, int out_fd)
{
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    if (!r || ag_csv_reader_open(r, path) < 0)
        goto fail;
    int age = ag_csv_col(r, "age");
    if (age < 0)
        goto fail;
    uint64_t total = 0;
    int64_t ages = 0;
    int rc;
    for (;;) {
        rc = ag_csv_next(r);
        if (rc <= 0)
            break;
        size_t n = ag_csv_nfields(r);
        for (size_t i = 0; i < n; i++)
            total += ag_csv_field(r, i).len;
        int64_t v;
        if (ag_csv_get_i64(r, (size_t)age, &v) < 0)
            goto fail;
        ages += v;
    }
    if (rc < 0)
        goto fail;
    dprintf(out_fd, "%" PRIu64 " %" PRIu64 " %" PRId64 "\n", ag_csv_record(r), total, ages);
    ag_csv_reader_free(r);
    _exit(0);
fail:
    fprintf(stderr, "csv_read: argot: %s\n", r ? ag_csv_reader_errmsg(r) : "out of memory");
    _exit(1);
}

/* Runs one side in a child (argot_child, or python3 when path_py is set),
 * reading the row count from its first output word, timing it from fork
 * to exit, and taking its peak RSS from wait4. */
static struct result run_side(const char *path, bool python)
{
    struct result res = {0};
    int p[2];
    if (pipe(p) < 0)
        return res;
    uint64_t t0 = ag_now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return res;
    }
    if (pid == 0) {
        close(p[0]);
        if (!python)
            argot_child(path, p[1]);
        dup2(p[1], 1);
        execl("/usr/bin/python3", "python3", "-c", py_script, path, (char *)NULL);
        fprintf(stderr, "csv_read: exec /usr/bin/python3: %s\n", strerror(errno));
        _exit(127);
    }
    close(p[1]);
    char out[256];
    size_t len = 0;
    ssize_t k;
    while (len < sizeof(out) - 1) {
        k = read(p[0], out + len, sizeof(out) - 1 - len);
        if (k > 0)
            len += (size_t)k;
        else if (k == 0 || errno != EINTR)
            break;
    }
    out[len] = '\0';
    close(p[0]);
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR)
            return res;
    res.seconds = (double)(ag_now_ns() - t0) / 1e9;
    res.rss_mb = (double)ru.ru_maxrss / 1024.0;
    char *end;
    res.rows = strtoull(out, &end, 10);
    res.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && end != out;
    return res;
}

/* ---- main --------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: csv_read [--size-mb N] [--keep PATH]\n");
    return 2;
}

static void print_row(const char *impl, const struct result *r, double mib)
{
    if (!r->ok) {
        printf("%-12s %12s %9s %9s %12s\n", impl, "failed", "-", "-", "-");
        return;
    }
    printf("%-12s %12" PRIu64 " %9.2f %9.1f %12.1f\n", impl, r->rows, r->seconds,
           mib / r->seconds, r->rss_mb);
}

int main(int argc, char **argv)
{
    uint64_t size_mb = 1024;
    const char *keep = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size-mb") == 0 && i + 1 < argc)
            size_mb = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc)
            keep = argv[++i];
        else
            return usage();
    }
    if (size_mb == 0)
        return usage();

    char tmp[] = "/tmp/argot-csv-bench-XXXXXX";
    const char *path = keep;
    int fd = keep ? open(keep, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : mkstemp(tmp);
    if (!keep)
        path = tmp;
    if (fd < 0) {
        fprintf(stderr, "csv_read: %s: %s\n", keep ? keep : tmp, strerror(errno));
        return 1;
    }
    uint64_t t0 = ag_now_ns();
    int64_t rows = generate(fd, size_mb * 1024 * 1024);
    int crc = close(fd);
    if (rows < 0 || crc < 0) {
        fprintf(stderr, "csv_read: writing %s: %s\n", path, strerror(errno));
        if (!keep)
            unlink(path);
        return 1;
    }
    double mib = (double)(size_mb * 1024 * 1024) / MIB;
    printf("csv_read: %s, %" PRIu64 " MiB, %" PRId64 " rows (generated in %.1f s)\n", path,
           size_mb, rows, (double)(ag_now_ns() - t0) / 1e9);
    fflush(stdout);

    struct result a = run_side(path, false);
    struct result py = run_side(path, true);
    printf("%-12s %12s %9s %9s %12s\n", "impl", "rows", "seconds", "MB/s", "peak_rss_MB");
    print_row("argot", &a, mib);
    print_row("python3-csv", &py, mib);
    if (a.ok && py.ok)
        printf("ratio (python3/argot time): %.2f\n", py.seconds / a.seconds);
    if (!keep)
        unlink(path);

    int ret = 0;
    if (!a.ok || !py.ok) {
        printf("csv_read: FAILED: %s did not finish cleanly\n",
               !a.ok ? "argot" : "python3-csv");
        ret = 1;
    } else if (a.rows != (uint64_t)rows || py.rows != (uint64_t)rows) {
        printf("csv_read: ROW COUNT MISMATCH: generated %" PRId64 ", argot %" PRIu64
               ", python3-csv %" PRIu64 "\n",
               rows, a.rows, py.rows);
        ret = 1;
    }
    return ret;
}
