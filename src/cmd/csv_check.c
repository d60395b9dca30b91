/*
 * argot csv check: validates a CSV file the way every argot app will read
 * it, streaming (any size, constant memory), and says where the first
 * problem is. Run it on an input before a joint job to catch a broken row at
 * home rather than mid-protocol.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const struct flag_def flags[] = {
    {"in", "FILE", "the CSV file to check ('-' for standard input)", FLAG_REQUIRED},
    {"key", "COL[,COL]", "key columns: must exist and hold valid UTF-8", 0},
    {"delimiter", "C", "field delimiter (default ',')", 0},
    {NULL, NULL, NULL, 0},
};

/* Resolves "a,b" to column indexes; returns the count or a negative code. */
static int resolve_keys(ag_csv_reader *r, const char *spec, int *cols, int max)
{
    int n = 0;
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[256];
        if (len == 0 || len >= sizeof(name) || n == max)
            return AG_E_INVAL;
        memcpy(name, p, len);
        name[len] = '\0';
        int c = ag_csv_col(r, name);
        if (c < 0)
            return c;
        cols[n++] = c;
        p += len + (comma ? 1 : 0);
    }
    return n;
}

static int run(struct cmd_args *a)
{
    const char *path = args_get(a, "in"), *keys = args_get(a, "key");
    const char *delim = args_get(a, "delimiter");
    ag_csv_opts opts;
    ag_csv_opts_init(&opts);
    if (delim) {
        if (strlen(delim) != 1 || delim[0] == '"' || delim[0] == '\n' || delim[0] == '\r')
            return usage_error(a->sc, "--delimiter must be one character other than '\"', CR "
                                      "or LF, got '%s'", delim);
        opts.delimiter = delim[0];
    }
    ag_csv_reader *r = ag_csv_reader_new(&opts);
    if (!r)
        return runtime_error("%s", ag_strerror(AG_E_NOMEM));
    int rc = ag_csv_reader_open(r, path);
    int key_cols[64];
    int nkeys = 0;
    if (rc == 0 && keys) {
        nkeys = resolve_keys(r, keys, key_cols, (int)AG_ARRAY_LEN(key_cols));
        if (nkeys == AG_E_INVAL) {
            ag_csv_reader_free(r);
            return usage_error(a->sc, "--key must be column names separated by commas, got '%s'",
                               keys);
        }
        rc = nkeys < 0 ? nkeys : 0;
    }
    uint64_t t0 = ag_now_ns();
    while (rc == 0) {
        rc = ag_csv_next(r);
        if (rc <= 0)
            break;
        rc = 0;
        for (int k = 0; k < nkeys && rc == 0; k++) {
            ag_slice s;
            rc = ag_csv_get_utf8(r, (size_t)key_cols[k], &s);
        }
    }
    if (rc < 0) {
        int ret = runtime_error("%s", ag_csv_reader_errmsg(r));
        ag_csv_reader_free(r);
        return ret;
    }
    double secs = (double)(ag_now_ns() - t0) / 1e9;
    uint64_t bytes = ag_csv_bytes(r);
    printf("%s: ok: %llu rows, %zu columns, %llu bytes, %.2f s", path,
           (unsigned long long)ag_csv_record(r), ag_csv_ncols(r), (unsigned long long)bytes,
           secs);
    if (secs > 0.01)
        printf(" (%.0f MB/s)", (double)bytes / 1e6 / secs);
    printf("\n");
    ag_csv_reader_free(r);
    return EXIT_OK;
}

const struct subcmd cmd_csv_check = {
    .name = "csv check",
    .summary = "check that a CSV file is well formed, as every argot app reads it",
    .details = "Streams the file in constant memory and stops at the first problem, naming\n"
               "the line: a row with the wrong number of fields, an unterminated quote,\n"
               "invalid UTF-8 in a key column, a missing key column. RFC 4180 with a\n"
               "header row; LF or CRLF; a UTF-8 byte order mark is skipped; empty lines\n"
               "are skipped.",
    .flags = flags,
    .run = run,
};
