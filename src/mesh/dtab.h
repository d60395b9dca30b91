/*
 * Names, dtabs and delegation (dtab.c), and request identifiers (ident.c):
 * the mesh's routing model, after Finagle's and linkerd 1.x's. No I/O,
 * no clock: the router and the admin page's resolver call these; the
 * fuzzer feeds ag__dtab_parse.
 *
 * Paths. A path is a string "/seg/seg/..." of one or more segments, or "/"
 * (the empty path). A segment is one or more of [A-Za-z0-9] and
 * "_:.#$%-" ('*' too, but only in a dentry's prefix, where a segment "*"
 * matches any one segment). Paths are compared segment by segment, byte
 * for byte.
 *
 * Dtabs. A dtab is a list of dentries "prefix => tree;" (the last ';' may
 * be left out; whitespace and newlines anywhere between tokens; "#" starts
 * a comment to the end of the line only where a token may start, since '#'
 * is also a segment character: "/#/fs" is a path). A tree is:
 *     /path                a name (a path)
 *     t1 | t2 | ...        alternation: the first that is not negative
 *     w1 * t1 & w2 * t2    union: weighted split (a weight is a decimal
 *                          number > 0, "w *" may be left out: weight 1)
 *     ~                    negative: nothing here, fall back
 *     !                    failure: stop, the request fails
 *     $                    empty: bound to no endpoint
 *     ( tree )             grouping
 * '&' binds tighter than '|' ("/a & /b | /c" is "(/a & /b) | /c").
 *
 * Delegation. A path that starts with "/#/" or "/$/" is bound: a namer
 * resolves it (the namers' business, namer.h), so delegation stops there.
 * Any other path is rewritten by every dentry whose prefix matches its
 * first segments: the dentry's tree, with the rest of the path (the
 * residual) appended to each name in it, is delegated in turn. Later
 * dentries take precedence: the rewrites of all matching dentries form an
 * alternation, last dentry first, so that a later entry that comes out
 * negative falls back to an earlier one. A path no dentry matches is
 * negative (~). The result is a tree whose names are all bound paths.
 * Alternations and unions of one branch are collapsed; negatives inside an
 * alternation are dropped (an alternation of nothing is ~); "~" branches of
 * a union are kept (the binder ignores them: their weight goes to the
 * others).
 */
#ifndef ARGOT_MESH_DTAB_H
#define ARGOT_MESH_DTAB_H

#include "argot/base.h"

/* Longest path (bytes) and deepest delegation (rewrites along one branch;
 * deeper is reported as a loop). */
#define AG__PATH_MAX 1024
#define AG__DELEGATE_MAX_DEPTH 64
/* Most branches in one alternation or union, most dentries in a dtab. */
#define AG__TREE_MAX_BRANCHES 256
#define AG__DTAB_MAX_ENTRIES 4096

/* 0 if s (len bytes) is a valid path ("/" included); AG_E_MESH_DTAB with a
 * message ("segment 2 of '/a//b' is empty", "'/a b' has ' ' at byte 3")
 * otherwise. allow_wildcard: a segment "*" is allowed. */
int ag__path_check(const char *s, size_t len, bool allow_wildcard, ag_errbuf *err);

typedef enum ag__nt_kind {
    AG__NT_LEAF,  /* path */
    AG__NT_ALT,   /* kids, in order */
    AG__NT_UNION, /* kids with weights */
    AG__NT_NEG,   /* ~ */
    AG__NT_FAIL,  /* ! */
    AG__NT_EMPTY, /* $ */
} ag__nt_kind;

typedef struct ag__ntree ag__ntree;
struct ag__ntree {
    ag__nt_kind kind;
    char *path;        /* LEAF: NUL-terminated */
    size_t n;          /* ALT, UNION: number of kids (>= 1) */
    ag__ntree **kids;
    double *weights;   /* UNION: one per kid, each > 0 */
};

void ag__ntree_free(ag__ntree *t);
/* Appends the tree in dtab syntax, fully parenthesized only where needed,
 * weights printed with %g ("0.9 * /#/fs/a & 0.1 * /#/fs/b | ~"). */
int ag__ntree_show(const ag__ntree *t, ag_buf *out);

typedef struct ag__dtab ag__dtab;

/* Parses len bytes of dtab text. On success *out is a new dtab (an empty
 * text gives an empty dtab). On failure returns AG_E_MESH_DTAB (or
 * AG_E_NOMEM), *out is NULL, *line and *col (1-based, within text; either
 * pointer may be NULL) say where, and err says what without the position
 * ("expected '=>' after prefix '/svc'", "weight must be > 0, got '0'",
 * "unbalanced ')'", "'*' is allowed only in a prefix"). */
int ag__dtab_parse(const char *text, size_t len, ag__dtab **out, int *line, int *col,
                   ag_errbuf *err);
void ag__dtab_free(ag__dtab *d);
size_t ag__dtab_len(const ag__dtab *d);
/* a followed by b (b's entries take precedence); either may be NULL (empty).
 * NULL on allocation failure. */
ag__dtab *ag__dtab_concat(const ag__dtab *a, const ag__dtab *b);
/* Appends the dtab as text, one "prefix => tree;" per line. */
int ag__dtab_show(const ag__dtab *d, ag_buf *out);

/* Delegates path through d (NULL: empty). On success *out is the tree of
 * bound names (or ~ / ! / $). trace, if not NULL, gets one line per
 * rewrite, indented by depth, for the admin page's resolver:
 *     /svc/users
 *       /svc => /#/fs  ->  /#/fs/users
 * Errors: AG_E_MESH_DTAB for a malformed path or a delegation deeper than
 * AG__DELEGATE_MAX_DEPTH ("delegation of /svc/a loops: /svc/a -> /x/a ->
 * /svc/a ..." naming the start), AG_E_TOO_LARGE for a rewritten path past
 * AG__PATH_MAX or a tree of more than 4096 leaves, AG_E_NOMEM. */
int ag__dtab_delegate(const ag__dtab *d, const char *path, ag__ntree **out, ag_buf *trace,
                      ag_errbuf *err);

/* ---- identifiers (ident.c) ------------------------------------------------ */
/*
 * An identifier turns a request into a name: dst_prefix followed by
 * segments taken from the request.
 *   AUTHORITY  the :authority (HTTP/2) or Host (HTTP/1.1) header, port
 *              stripped ("Users.Example:8080" -> /svc/users.example: host
 *              names are lowercased; "[::1]:80" -> /svc/::1)
 *   PATH       the first `segments` segments of the request path (query
 *              and fragment dropped): "/pkg.Svc/Method", segments 1 ->
 *              /svc/pkg.Svc; a path with fewer segments cannot be routed
 *   HEADER     the value of header `header` (any case), as one segment,
 *              or, if it starts with '/', as a path
 * A request the identifier cannot name (no such header, a value that is no
 * valid segment or path, too few segments) gets AG_E_MESH_ROUTE with a
 * message for the client ("no header 'x-service'", "path '/a' has fewer
 * than 2 segments", "authority 'a b' is not a valid name segment").
 */
typedef enum ag__ident_kind {
    AG__IDENT_AUTHORITY,
    AG__IDENT_PATH,
    AG__IDENT_HEADER,
} ag__ident_kind;

typedef struct ag__ident {
    ag__ident_kind kind;
    char dst_prefix[256];  /* a valid path, default "/svc" */
    unsigned segments;     /* PATH: >= 1 */
    char header[128];      /* HEADER: the header's name, lowercase */
} ag__ident;

/* One request header as the proxy sees it (names lowercase for HTTP/2;
 * HTTP/1.1 keeps the sender's case: compare without case). */
typedef struct ag__hdr {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} ag__hdr;

typedef struct ag__req_view {
    const char *method;     /* "GET", "POST" */
    const char *authority;  /* :authority or Host; NULL if absent */
    const char *path;       /* :path or the request target, as sent */
    const ag__hdr *hdrs;
    size_t nhdrs;
} ag__req_view;

/* Defaults: AUTHORITY, "/svc", segments 1. */
void ag__ident_init(ag__ident *id);
/* Replaces out's contents with the request's name (a valid path). */
int ag__ident_name(const ag__ident *id, const ag__req_view *r, ag_buf *out, ag_errbuf *err);

#endif /* ARGOT_MESH_DTAB_H */
