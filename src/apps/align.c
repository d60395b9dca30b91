/*
 * Row alignment for vertically partitioned jobs (apps.h, ag_apps_align):
 * an inner-join PSI to a private temporary file, read back as a table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argot/apps.h"

/* A row's key cells joined by a unit separator (keys hold no NUL). */
static int row_key(const ag_table *t, size_t row, const int *cols, size_t nkeys, ag_buf *b)
{
    ag_buf_reset(b);
    for (size_t k = 0; k < nkeys; k++) {
        size_t len;
        const char *cell = ag_table_cell(t, row, (size_t)cols[k], &len);
        if ((k && ag_buf_append_byte(b, 0x1f) < 0) || ag_buf_append(b, cell, len) < 0)
            return AG_E_NOMEM;
    }
    return ag_buf_append_byte(b, 0);
}

struct keyed {
    char *key;
    uint64_t line;
};

static int keyed_cmp(const void *a, const void *b)
{
    return strcmp(((const struct keyed *)a)->key, ((const struct keyed *)b)->key);
}

/* Gives the aligned rows the input's name and their lines in it, so that a
 * later error points into the user's file, not the temporary one. */
static int restore_lines(ag_table *aligned, const char *input, const char *const *keys,
                         size_t nkeys, ag_errbuf *err)
{
    ag_table *orig;
    int rc = ag_table_read_csv(input, &orig, err->msg, sizeof(err->msg));
    if (rc < 0)
        return err->code = rc;
    int cols_o[AG_PSI_MAX_KEYS], cols_a[AG_PSI_MAX_KEYS];
    for (size_t k = 0; k < nkeys; k++) {
        cols_o[k] = ag_table_col(orig, keys[k]);
        cols_a[k] = ag_table_col(aligned, keys[k]);
        if (cols_o[k] < 0 || cols_a[k] < 0) {
            ag_table_free(orig);
            return ag_errbuf_set(err, AG_E_CSV_COLUMN, "%s: no column '%s'", input, keys[k]);
        }
    }
    size_t n = ag_table_nrows(orig);
    struct keyed *idx = ag_calloc(n ? n : 1, sizeof(*idx));
    ag_buf b;
    ag_buf_init(&b, SIZE_MAX);
    rc = idx ? 0 : AG_E_NOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = row_key(orig, i, cols_o, nkeys, &b);
        if (rc == 0 && !(idx[i].key = ag_strdup((const char *)b.data)))
            rc = AG_E_NOMEM;
        idx[i].line = ag_table_line(orig, i);
    }
    if (rc == 0)
        qsort(idx, n, sizeof(*idx), keyed_cmp);
    for (size_t i = 0; rc == 0 && i < ag_table_nrows(aligned); i++) {
        rc = row_key(aligned, i, cols_a, nkeys, &b);
        struct keyed want = {rc == 0 ? (char *)b.data : NULL, 0};
        const struct keyed *hit = rc == 0 ? bsearch(&want, idx, n, sizeof(*idx), keyed_cmp) : NULL;
        if (hit)
            ag_table_set_line(aligned, i, hit->line);
    }
    if (rc == 0)
        rc = ag_table_set_source(aligned, input);
    for (size_t i = 0; idx && i < n; i++)
        ag_free(idx[i].key);
    ag_free(idx);
    ag_buf_cleanup(&b);
    ag_table_free(orig);
    if (rc < 0)
        ag_errbuf_set(err, rc, "%s: %s", input, ag_strerror(rc));
    return rc;
}

int ag_apps_align(ag_fed *f, const char *input, const char *const *keys, size_t nkeys,
                  ag_table **out, ag_errbuf *err)
{
    *out = NULL;
    if (ag_fed_size(f) != 2)
        return ag_errbuf_set(err, AG_E_INVAL, "aligning rows by key is a two-party PSI; this "
                             "job has %u parties", ag_fed_size(f));
    /* a private name for the output: ag_psi_run writes it through a
     * temporary name and renames it there */
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[600];
    snprintf(dir, sizeof(dir), "%s/argot-align-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return ag_errbuf_set(err, AG_E_IO, "%s: cannot create a temporary directory: %s", dir,
                             strerror(errno));
    snprintf(path, sizeof(path), "%s/aligned.csv", dir);
    ag_psi_opts o;
    ag_psi_opts_init(&o);
    o.input = input;
    o.keys = keys;
    o.nkeys = nkeys;
    o.output = path;
    o.receiver = "both";
    o.join = AG_PSI_INNER;
    o.session = "argot-align";
    o.tmpdir = dir;
    int rc = ag_psi_run(ag_fed_link(f), &o, NULL, err);
    if (rc == 0) {
        rc = ag_table_read_csv(path, out, err->msg, sizeof(err->msg));
        if (rc < 0)
            err->code = rc;
        else if ((rc = restore_lines(*out, input, keys, nkeys, err)) < 0) {
            ag_table_free(*out);
            *out = NULL;
        }
    }
    unlink(path);
    rmdir(dir);
    return rc;
}
