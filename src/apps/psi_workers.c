/*
 * The files a PSI coordinator and its workers share in the job directory
 * (psi.c runs the flow; docs/ARCHITECTURE.md "apps: PSI", "Workers"):
 *
 *   plan          coordinator -> workers: rows, peer_rows, buckets, workers
 *   w<i>.addr     worker i -> coordinator: where its PSI link serves
 *   w<i>.peer     coordinator -> worker i: where the peer's worker i serves
 *   w<i>.inter    worker i's sorted runs of matched groups (psi_store.c's
 *   w<i>.except   format), and of unmatched ones its join keeps
 *   w<i>.done     worker i -> coordinator: its counts and where its runs lie
 *   w<i>.err      worker i -> coordinator: why it failed (code, message)
 *
 * Every small file is written whole to a temporary name and renamed, so a
 * reader sees all of it or nothing. The files are text, one "name value"
 * per line. They are written and read by processes of the same party (the
 * same user, the same binary): a malformed file is reported as such,
 * never trusted for sizes beyond the file's own.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define FILE_MAX ((size_t)1 << 20)

void ag__psi_wpath(char *out, size_t cap, const char *dir, unsigned i, const char *what)
{
    if (i == PSI_NO_WORKER)
        snprintf(out, cap, "%s/%s", dir, what);
    else
        snprintf(out, cap, "%s/w%u.%s", dir, i, what);
}

int ag__psi_file_put(const char *path, const char *text, ag_errbuf *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ag_errbuf_set(err, ag_err_from_errno(errno), "%s: %s", tmp, strerror(errno));
    size_t n = strlen(text), at = 0;
    while (at < n) {
        ssize_t k = write(fd, text + at, n - at);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return ag_errbuf_set(err, ag_err_from_errno(e), "%s: %s", tmp, strerror(e));
        }
        at += (size_t)k;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ag_errbuf_set(err, ag_err_from_errno(e), "%s: %s", path, strerror(e));
    }
    return 0;
}

int ag__psi_file_get(const char *path, char **text, ag_errbuf *err)
{
    *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0)
        return ag_errbuf_set(err, ag_err_from_errno(errno), "%s: %s", path, strerror(errno));
    char *buf = ag_malloc(FILE_MAX + 1);
    if (!buf) {
        close(fd);
        return ag_errbuf_set(err, AG_E_NOMEM, "out of memory");
    }
    size_t len = 0;
    for (;;) {
        ssize_t k = read(fd, buf + len, FILE_MAX - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            ag_free(buf);
            return ag_errbuf_set(err, ag_err_from_errno(e), "%s: %s", path, strerror(e));
        }
        if (k == 0)
            break;
        len += (size_t)k;
        if (len == FILE_MAX) {
            close(fd);
            ag_free(buf);
            return ag_errbuf_set(err, AG_E_TOO_LARGE, "%s: larger than %zu bytes", path, FILE_MAX);
        }
    }
    close(fd);
    buf[len] = '\0';
    *text = buf;
    return 1;
}

/* The value of "name N" in text; false if absent or not a number. */
static bool field_u64(const char *text, const char *name, uint64_t *out)
{
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, nl) != 0 || p[nl] != ' ')
            continue;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p + nl + 1, &end, 10);
        if (errno || end == p + nl + 1 || (*end != '\n' && *end != '\0') || p[nl + 1] == '-')
            return false;
        *out = v;
        return true;
    }
    return false;
}

int ag__psi_plan_write(const char *dir, const struct psi_plan *p, ag_errbuf *err)
{
    char path[4096], text[256];
    ag__psi_wpath(path, sizeof(path), dir, PSI_NO_WORKER, "plan");
    snprintf(text, sizeof(text),
             "rows %llu\npeer_rows %llu\nbuckets %llu\nworkers %u\nkeep_rows %d\n",
             (unsigned long long)p->rows, (unsigned long long)p->peer_rows,
             (unsigned long long)p->buckets, p->workers, p->keep_rows ? 1 : 0);
    return ag__psi_file_put(path, text, err);
}

int ag__psi_plan_read(const char *dir, struct psi_plan *p, ag_errbuf *err)
{
    char path[4096], *text;
    ag__psi_wpath(path, sizeof(path), dir, PSI_NO_WORKER, "plan");
    int rc = ag__psi_file_get(path, &text, err);
    if (rc == 0)
        return ag_errbuf_set(err, AG_E_IO,
                             "%s: no such file (is the job directory shared "
                             "with the workers?)",
                             path);
    if (rc < 0)
        return rc;
    uint64_t w = 0, keep = 0;
    bool ok = field_u64(text, "rows", &p->rows) && field_u64(text, "peer_rows", &p->peer_rows) &&
              field_u64(text, "buckets", &p->buckets) && field_u64(text, "workers", &w) &&
              field_u64(text, "keep_rows", &keep) && keep <= 1 && w >= 1 && w <= PSI_MAX_WORKERS &&
              p->buckets >= 1 && p->buckets < PSI_MAX_SLOT;
    ag_free(text);
    p->workers = (unsigned)w;
    p->keep_rows = keep == 1;
    if (!ok)
        return ag_errbuf_set(err, AG_E_IO, "%s: malformed", path);
    return 0;
}

/* Appends " off end" pairs of runs to buf (ag_buf). */
static int put_runs(ag_buf *b, const char *name, struct psi_runs *runs)
{
    char line[96];
    size_t n = runs ? ag__psi_runs_count(runs) : 0;
    int k = snprintf(line, sizeof(line), "%s %zu\n", name, n);
    int rc = ag_buf_append(b, line, (size_t)k);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint64_t off, end;
        ag__psi_runs_get(runs, i, &off, &end);
        k = snprintf(line, sizeof(line), "%llu %llu\n", (unsigned long long)off,
                     (unsigned long long)end);
        rc = ag_buf_append(b, line, (size_t)k);
    }
    return rc;
}

int ag__psi_result_write(const char *dir, unsigned i, const struct psi_wresult *res,
                         struct psi_runs *inter, struct psi_runs *except, ag_errbuf *err)
{
    ag_buf b;
    ag_buf_init(&b, FILE_MAX - 1);
    char head[512];
    int k = snprintf(head, sizeof(head),
                     "intersection %llu\nmatched_rows %llu\nna_rows %llu\nbytes_sent %llu\n"
                     "bytes_recv %llu\n",
                     (unsigned long long)res->intersection, (unsigned long long)res->matched_rows,
                     (unsigned long long)res->na_rows, (unsigned long long)res->bytes_sent,
                     (unsigned long long)res->bytes_recv);
    int rc = ag_buf_append(&b, head, (size_t)k);
    if (rc == 0)
        rc = put_runs(&b, "inter", inter);
    if (rc == 0)
        rc = put_runs(&b, "except", except);
    if (rc == 0)
        rc = ag_buf_append(&b, "", 1);
    if (rc < 0) {
        ag_buf_cleanup(&b);
        return ag_errbuf_set(err, rc, "worker %u's result: %s", i, ag_strerror(rc));
    }
    char path[4096];
    ag__psi_wpath(path, sizeof(path), dir, i, "done");
    rc = ag__psi_file_put(path, (const char *)ag_buf_slice(&b).ptr, err);
    ag_buf_cleanup(&b);
    return rc;
}

/* Reads "name K" then K lines "off end" at *p; the pairs into *out. */
static bool get_runs(const char **p, const char *name, uint64_t **out, size_t *n)
{
    size_t nl = strlen(name);
    const char *s = *p;
    while ((s = strstr(s, name)) && ((s != *p && s[-1] != '\n') || s[nl] != ' '))
        s++;
    if (!s)
        return false;
    char *end;
    unsigned long long k = strtoull(s + nl + 1, &end, 10);
    if (*end != '\n' || k > FILE_MAX / 4)
        return false;
    uint64_t *v = ag_calloc(2 * (size_t)k + 1, sizeof(*v));
    if (!v)
        return false;
    const char *q = end;
    for (size_t i = 0; i < 2 * (size_t)k; i++) {
        while (*q == ' ' || *q == '\n')
            q++;
        if (*q < '0' || *q > '9') {
            ag_free(v);
            return false;
        }
        v[i] = strtoull(q, &end, 10);
        q = end;
    }
    *out = v;
    *n = (size_t)k;
    *p = q;
    return true;
}

int ag__psi_result_read(const char *dir, unsigned i, struct psi_wresult *res, ag_errbuf *err)
{
    memset(res, 0, sizeof(*res));
    char path[4096], *text;
    ag__psi_wpath(path, sizeof(path), dir, i, "done");
    int rc = ag__psi_file_get(path, &text, err);
    if (rc <= 0)
        return rc;
    const char *p = text;
    bool ok = field_u64(text, "intersection", &res->intersection) &&
              field_u64(text, "matched_rows", &res->matched_rows) &&
              field_u64(text, "na_rows", &res->na_rows) &&
              field_u64(text, "bytes_sent", &res->bytes_sent) &&
              field_u64(text, "bytes_recv", &res->bytes_recv) &&
              get_runs(&p, "inter", &res->inter, &res->ninter) &&
              get_runs(&p, "except", &res->except, &res->nexcept);
    ag_free(text);
    if (!ok) {
        ag__psi_result_cleanup(res);
        return ag_errbuf_set(err, AG_E_IO, "%s: malformed", path);
    }
    return 1;
}

void ag__psi_result_cleanup(struct psi_wresult *res)
{
    ag_free(res->inter);
    ag_free(res->except);
    res->inter = res->except = NULL;
}

void ag__psi_dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[4400];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}
