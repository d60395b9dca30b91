/*
 * Fuzz target for the mesh's routing model (src/mesh/dtab.c, ident.c).
 *
 * Parses the input as a dtab. A failure must carry AG_E_MESH_DTAB, a
 * message, and a position inside the text. A success is shown, and the
 * shown text must parse and show identically (the round trip). The dtab is
 * then concatenated with itself and with a fixed dtab, and a few fixed
 * paths and one path per dentry (its prefix with each '*' replaced, plus a
 * residual) are delegated through both, with a trace. A delegation either
 * fails with a message (a loop, too large) or gives a tree whose names are
 * all bound, alternations of 2..256 branches without negatives, unions of
 * 2..256 branches with finite weights > 0; that tree, shown, parses as a
 * dentry's tree and delegates to itself. Finally the input's first line is
 * given to ag__path_check and to the three identifier kinds, whose names
 * must be valid paths.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/base.h"
#include "mesh/dtab.h"

#define ENSURE(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: ENSURE(%s) failed\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_TEXT  (1 << 24)
#define MAX_PATHS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char FIXED[] = "/svc => /#/fixed; /s/* => /svc | 2 * /$/inet/127.0.0.1/80 & /#/b;";

static bool is_bound(const char *p)
{
    return strncmp(p, "/#/", 3) == 0 || strncmp(p, "/$/", 3) == 0;
}

/* The invariants of a delegation's result; returns its leaves. */
static size_t check_tree(const ag__ntree *t, int depth)
{
    ENSURE(t != NULL);
    ENSURE(depth < 100000);
    switch (t->kind) {
    case AG__NT_LEAF:
        ENSURE(t->path && t->n == 0);
        ENSURE(ag__path_check(t->path, strlen(t->path), false, NULL) == 0);
        ENSURE(is_bound(t->path));
        return 1;
    case AG__NT_NEG:
    case AG__NT_FAIL:
    case AG__NT_EMPTY:
        ENSURE(t->n == 0 && t->path == NULL);
        return 0;
    case AG__NT_ALT:
    case AG__NT_UNION:
        break;
    default:
        ENSURE(!"bad kind");
    }
    ENSURE(t->n >= 2 && t->n <= AG__TREE_MAX_BRANCHES);
    size_t leaves = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->kind == AG__NT_ALT)
            ENSURE(t->kids[i]->kind != AG__NT_NEG);
        else
            ENSURE(t->weights[i] > 0 && isfinite(t->weights[i]));
        leaves += check_tree(t->kids[i], depth + 1);
    }
    return leaves;
}

/* Shows t, then parses "/x => <shown>" and delegates /x: the same tree. */
static void check_reparse(const ag__ntree *t)
{
    ag_buf b, b2;
    ag_buf_init(&b, MAX_TEXT);
    ag_buf_init(&b2, MAX_TEXT);
    if (ag_buf_append_str(&b, "/x => ") < 0 || ag__ntree_show(t, &b) < 0)
        goto out;
    ag__dtab *d = NULL;
    ag_errbuf err = {0};
    int rc = ag__dtab_parse((const char *)b.data, b.len, &d, NULL, NULL, &err);
    if (rc == AG_E_NOMEM)
        goto out;
    if (rc < 0) {
        fprintf(stderr, "shown tree does not parse: %s\n%s\n", err.msg, (const char *)b.data);
        abort();
    }
    ag__ntree *t2 = NULL;
    rc = ag__dtab_delegate(d, "/x", &t2, NULL, &err);
    /* the tree's names and /x itself may pass the names limit */
    ENSURE(rc == 0 || rc == AG_E_TOO_LARGE || rc == AG_E_NOMEM);
    if (rc == 0 && ag__ntree_show(t2, &b2) == 0) {
        if (b.len - 6 != b2.len || memcmp(b.data + 6, b2.data, b2.len) != 0) {
            fprintf(stderr, "delegation is not idempotent:\n%s\n%s\n", (const char *)b.data + 6,
                    (const char *)b2.data);
            abort();
        }
    }
    ag__ntree_free(t2);
    ag__dtab_free(d);
out:
    ag_buf_cleanup(&b);
    ag_buf_cleanup(&b2);
}

static void delegate(const ag__dtab *d, const char *path)
{
    ag__ntree *t = (ag__ntree *)&t;
    ag_buf trace;
    ag_buf_init(&trace, 1 << 20);
    ag_errbuf err = {0};
    int rc = ag__dtab_delegate(d, path, &t, &trace, &err);
    if (rc < 0) {
        ENSURE(t == NULL);
        ENSURE(rc == AG_E_MESH_DTAB || rc == AG_E_TOO_LARGE || rc == AG_E_NOMEM);
        ENSURE(err.code == rc && err.msg[0] != '\0');
        if (rc == AG_E_MESH_DTAB && strncmp(err.msg, "delegation of ", 14) == 0)
            ENSURE(strstr(err.msg, " loops: ") != NULL);
    } else {
        ENSURE(rc == 0);
        size_t leaves = check_tree(t, 0);
        ENSURE(leaves <= 4096);
        /* the trace starts with the path */
        ENSURE(trace.len > strlen(path) && memcmp(trace.data, path, strlen(path)) == 0);
        check_reparse(t);
        ag__ntree_free(t);
    }
    ag_buf_cleanup(&trace);
}

/* Paths that the dentries of the shown dtab match: each prefix, '*'
 * segments replaced by "w", then "/r". Returns how many (in paths). */
static size_t prefix_paths(const char *shown, char paths[MAX_PATHS][AG__PATH_MAX + 1])
{
    size_t n = 0;
    for (const char *line = shown; *line && n < MAX_PATHS;) {
        const char *arrow = strstr(line, " => ");
        const char *nl = strchr(line, '\n');
        ENSURE(arrow && nl && arrow < nl);
        size_t len = (size_t)(arrow - line);
        if (len + 2 <= AG__PATH_MAX) {
            char *p = paths[n++];
            for (size_t i = 0; i < len; i++)
                p[i] = line[i] == '*' ? 'w' : line[i];
            if (len == 1)
                len = 0; /* the prefix "/" */
            memcpy(p + len, "/r", 3);
        }
        line = nl + 1;
    }
    return n;
}

/* Parse, show, parse again: the same text. */
static void check_round_trip(const ag__dtab *d, ag_buf *shown)
{
    ENSURE(ag__dtab_show(d, shown) == 0);
    ag__dtab *d2 = NULL;
    ag_errbuf err = {0};
    int line = 0, col = 0;
    int rc = ag__dtab_parse((const char *)shown->data, shown->len, &d2, &line, &col, &err);
    if (rc < 0) {
        fprintf(stderr, "shown dtab does not parse (%d:%d: %s):\n%s\n", line, col, err.msg,
                (const char *)shown->data);
        abort();
    }
    ENSURE(ag__dtab_len(d2) == ag__dtab_len(d));
    ag_buf again;
    ag_buf_init(&again, MAX_TEXT);
    ENSURE(ag__dtab_show(d2, &again) == 0);
    if (again.len != shown->len ||
        (again.len > 0 && memcmp(again.data, shown->data, again.len) != 0)) {
        fprintf(stderr, "round trip differs:\n%s\n---\n%s\n", (const char *)shown->data,
                (const char *)again.data);
        abort();
    }
    ag_buf_cleanup(&again);
    ag__dtab_free(d2);
}

/* The first line of the input (without NULs) as a path and as a request. */
static void check_idents(const uint8_t *data, size_t size)
{
    char s[2048];
    size_t n = 0;
    while (n < size && n < sizeof(s) - 1 && data[n] != '\n' && data[n] != '\0') {
        s[n] = (char)data[n];
        n++;
    }
    s[n] = '\0';
    (void)ag__path_check(s, n, true, NULL);
    (void)ag__path_check(s, n, false, NULL);
    ag__hdr hdr = {"X-Name", 6, s, n};
    ag__req_view r = {.method = "GET", .authority = s, .path = s, .hdrs = &hdr, .nhdrs = 1};
    ag__ident id;
    ag__ident_init(&id);
    snprintf(id.header, sizeof(id.header), "x-name");
    ag_buf out;
    ag_buf_init(&out, 4096);
    for (int kind = 0; kind < 3; kind++) {
        id.kind = (ag__ident_kind)kind;
        id.segments = (unsigned)(size % 3) + 1;
        ag_errbuf err = {0};
        int rc = ag__ident_name(&id, &r, &out, &err);
        if (rc == 0)
            ENSURE(ag__path_check((const char *)out.data, out.len, false, NULL) == 0);
        else
            ENSURE(rc == AG_E_MESH_ROUTE && err.msg[0]);
    }
    ag_buf_cleanup(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    ag__dtab *d = (ag__dtab *)&d;
    ag_errbuf err = {0};
    int line = 0, col = 0;
    int rc = ag__dtab_parse(text, size, &d, &line, &col, &err);
    check_idents(data, size);
    if (rc < 0) {
        ENSURE(rc == AG_E_MESH_DTAB || rc == AG_E_NOMEM);
        ENSURE(d == NULL);
        ENSURE(err.code == rc && err.msg[0] != '\0');
        size_t lines = 1;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        ENSURE(line >= 1 && (size_t)line <= lines);
        ENSURE(col >= 1 && (size_t)col <= size + 1);
        return 0;
    }
    ENSURE(d != NULL);

    ag_buf shown;
    ag_buf_init(&shown, MAX_TEXT);
    check_round_trip(d, &shown);

    ag__dtab *fixed = NULL;
    ENSURE(ag__dtab_parse(FIXED, strlen(FIXED), &fixed, NULL, NULL, NULL) == 0);
    ag__dtab *twice = ag__dtab_concat(d, d);
    ag__dtab *both = ag__dtab_concat(fixed, d);
    ENSURE(twice && both);
    ENSURE(ag__dtab_len(twice) == 2 * ag__dtab_len(d));
    ENSURE(ag__dtab_len(both) == ag__dtab_len(d) + 2);

    static const char *const fixed_paths[] = {"/svc/users", "/", "/a/b/c", "/#/fs/x", "/s/t/u"};
    char paths[MAX_PATHS][AG__PATH_MAX + 1];
    size_t np = prefix_paths((const char *)shown.data ? (const char *)shown.data : "", paths);
    for (size_t i = 0; i < AG_ARRAY_LEN(fixed_paths); i++) {
        delegate(d, fixed_paths[i]);
        delegate(both, fixed_paths[i]);
    }
    for (size_t i = 0; i < np; i++) {
        delegate(d, paths[i]);
        delegate(twice, paths[i]);
        delegate(both, paths[i]);
    }

    ag_buf_cleanup(&shown);
    ag__dtab_free(twice);
    ag__dtab_free(both);
    ag__dtab_free(fixed);
    ag__dtab_free(d);
    return 0;
}
