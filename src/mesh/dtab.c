/*
 * The mesh's routing model: paths, name trees, dtabs (parsing, showing,
 * concatenation) and delegation, after Finagle's and linkerd 1.x's. dtab.h
 * specifies the syntax and the semantics; this file adds the choices it
 * leaves open. No I/O and no global state: any thread may call anything
 * here, on distinct objects (a parsed dtab is never modified, so one dtab may
 * also be read by several threads at once).
 *
 * Invariants:
 *   1. Every path stored in a dtab or a tree passed ag__path_check: prefixes
 *      with wildcards allowed, tree names without. A path is at most
 *      AG__PATH_MAX bytes.
 *   2. Trees from the parser have no alternation or union of one branch, and
 *      at most AG__TREE_MAX_BRANCHES branches in each; weights are finite
 *      and > 0.
 *   3. A dentry (struct entry) is immutable once parsed and may be shared by
 *      several dtabs (ag__dtab_concat shares instead of copying, since the
 *      router concatenates a request's override dtab with the base one); an
 *      atomic reference count frees it with its last dtab.
 *   4. ag__ntree_show's output parses back (as a dentry's tree) to a tree
 *      that shows identically: weights are shown with %g, and the weight is
 *      left out exactly when %g shows it as "1"; an alternation inside an
 *      alternation and a union inside a union are parenthesized, so that
 *      re-parsing keeps the shape (and the branch limit still holds).
 *
 * Delegation is a depth-first expansion: each unbound name is matched
 * against every dentry, last first, and each matching dentry's tree, with
 * the residual appended to its names, is expanded in turn. It is bounded
 * three ways: a branch deeper than AG__DELEGATE_MAX_DEPTH rewrites, or one
 * that meets a name already on it (which would never end), is a loop;
 * more than DELEGATE_MAX_NAMES names in all (the delegation tree's leaves,
 * bound or not) is too large, which also bounds the work of dtabs that fan
 * out exponentially without looping. Its result is simplified as dtab.h
 * says; nested alternations are also flattened (alternation is
 * associative), and an alternation of more than AG__TREE_MAX_BRANCHES
 * branches is then split: its last AG__TREE_MAX_BRANCHES branches become
 * one, until the rest fits. So the result is itself a tree the parser
 * accepts, and delegating it (shown, as a dentry's tree) gives it back. '!' and '$' are no
 * negatives: they stay in their place in an alternation, and so do the branches after them.
 *
 * The trace has a line for each unbound name delegated, indented four
 * spaces per rewrite above it, and under it a line for each dentry that
 * rewrites it (two spaces further): "prefix => tree  ->  rewritten tree". A
 * name no dentry matches ends with "  ->  ~". Bound names appear only in the
 * rewritten trees (or on the first line, when the path itself is bound):
 *     /svc/users
 *       /svc => /env | /#/x  ->  /env/users | /#/x/users
 *         /env/users
 *           /env => /#/fs  ->  /#/fs/users
 */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtab.h"

/* Most names one delegation may visit (see the file comment). */
#define DELEGATE_MAX_NAMES 4096
/* Deepest nesting of parentheses the parser accepts (it recurses). */
#define PARSE_MAX_NEST 32
/* Longest text of user input quoted in a message (longer is cut, "..."). */
#define QUOTE_MAX 96
#define QBUF      (QUOTE_MAX + 8)  /* room for a quoted text */
#define DBUF      (QUOTE_MAX + 16) /* room for a token's description */

/* ---- small helpers ------------------------------------------------------- */

/* [A-Za-z0-9] and "_:.#$%-": the bytes of a path segment (besides '*'). */
static bool is_seg_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
    case '_':
    case ':':
    case '.':
    case '#':
    case '$':
    case '%':
    case '-':
        return true;
    default:
        return false;
    }
}

/* Records a message in err (which may be NULL); returns code. */
static int fail(ag_errbuf *err, int code, const char *fmt, ...) AG_PRINTF(3, 4);
static int fail(ag_errbuf *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        ag_errbuf_vset(err, code, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Copies len bytes of s into dst (QBUF bytes) for a message:
 * printable ASCII as is, other bytes as \xNN, cut with "..." past QUOTE_MAX.
 * Returns dst. */
static const char *quote(char *dst, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o >= QUOTE_MAX) {
            memcpy(dst + o, "...", 4);
            return dst;
        }
        if (c >= 0x20 && c < 0x7f) {
            dst[o++] = (char)c;
        } else {
            snprintf(dst + o, 5, "\\x%02x", c);
            o += 4;
        }
    }
    dst[o] = '\0';
    return dst;
}

/* ---- paths --------------------------------------------------------------- */

/* Checks a path as ag__path_check does and also returns, in *bad, the
 * offset of the byte the error is about (the parser turns it into a column). */
static int path_scan(const char *s, size_t len, bool allow_wildcard, size_t *bad, ag_errbuf *err)
{
    char q[QBUF], qc[8];
    *bad = 0;
    if (len > AG__PATH_MAX) {
        *bad = AG__PATH_MAX;
        return fail(err, AG_E_MESH_DTAB, "path '%s' is longer than %d bytes", quote(q, s, len),
                    AG__PATH_MAX);
    }
    if (len == 0)
        return fail(err, AG_E_MESH_DTAB, "empty path (a path starts with '/')");
    if (s[0] != '/')
        return fail(err, AG_E_MESH_DTAB, "'%s' does not start with '/'", quote(q, s, len));
    if (len == 1)
        return 0; /* "/", the empty path */
    size_t seg = 1, start = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i == len || s[i] == '/') {
            if (i == start) {
                *bad = i < len ? i : len - 1;
                return fail(err, AG_E_MESH_DTAB, "segment %zu of '%s' is empty", seg,
                            quote(q, s, len));
            }
            seg++;
            start = i + 1;
        } else if (s[i] == '*') {
            *bad = i;
            if (!allow_wildcard)
                return fail(err, AG_E_MESH_DTAB,
                            "'%s' has '*' at byte %zu: '*' is allowed only in a prefix",
                            quote(q, s, len), i + 1);
            if (i != start || (i + 1 < len && s[i + 1] != '/'))
                return fail(err, AG_E_MESH_DTAB,
                            "'%s' has '*' at byte %zu: a wildcard is a whole segment",
                            quote(q, s, len), i + 1);
        } else if (!is_seg_char((unsigned char)s[i])) {
            *bad = i;
            return fail(err, AG_E_MESH_DTAB, "'%s' has '%s' at byte %zu", quote(q, s, len),
                        quote(qc, s + i, 1), i + 1);
        }
    }
    return 0;
}

int ag__path_check(const char *s, size_t len, bool allow_wildcard, ag_errbuf *err)
{
    size_t bad;
    return path_scan(s, len, allow_wildcard, &bad, err);
}

/* A path bound to a namer: "/#/..." or "/$/...". */
static bool path_is_bound(const char *s, size_t len)
{
    return len >= 3 && s[0] == '/' && (s[1] == '#' || s[1] == '$') && s[2] == '/';
}

/* ---- name trees ---------------------------------------------------------- */

static ag__ntree *nt_new(ag__nt_kind kind)
{
    ag__ntree *t = ag_calloc(1, sizeof(*t));
    if (t)
        t->kind = kind;
    return t;
}

/* A leaf that takes ownership of path (freed here on failure). */
static ag__ntree *nt_leaf_take(char *path)
{
    ag__ntree *t = nt_new(AG__NT_LEAF);
    if (!t) {
        ag_free(path);
        return NULL;
    }
    t->path = path;
    return t;
}

void ag__ntree_free(ag__ntree *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        ag__ntree_free(t->kids[i]);
    ag_free(t->kids);
    ag_free(t->weights);
    ag_free(t->path);
    ag_free(t);
}

/* A growing list of branches, while an alternation or union is built. */
typedef struct kidvec {
    ag__ntree **kids;
    double *weights; /* only for unions */
    size_t n;
    size_t cap;
} kidvec;

static void kidvec_cleanup(kidvec *v)
{
    for (size_t i = 0; i < v->n; i++)
        ag__ntree_free(v->kids[i]);
    ag_free(v->kids);
    ag_free(v->weights);
    memset(v, 0, sizeof(*v));
}

/* Appends t (taking it: freed on failure) with weight w (unions only). */
static int kidvec_push(kidvec *v, ag__ntree *t, double w, bool weighted)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 4;
        ag__ntree **k = ag_reallocarray(v->kids, cap, sizeof(*k));
        if (!k)
            goto nomem;
        v->kids = k;
        if (weighted) {
            double *ws = ag_reallocarray(v->weights, cap, sizeof(*ws));
            if (!ws)
                goto nomem;
            v->weights = ws;
        }
        v->cap = cap;
    }
    v->kids[v->n] = t;
    if (weighted)
        v->weights[v->n] = w;
    v->n++;
    return 0;
nomem:
    ag__ntree_free(t);
    return AG_E_NOMEM;
}

/* Turns v into a node of kind (ALT or UNION), emptying v; a list of one
 * branch is that branch. NULL on allocation failure (v is then cleaned). */
static ag__ntree *kidvec_finish(kidvec *v, ag__nt_kind kind)
{
    assert(v->n >= 1);
    if (v->n == 1) {
        ag__ntree *only = v->kids[0];
        v->n = 0;
        kidvec_cleanup(v);
        return only;
    }
    ag__ntree *t = nt_new(kind);
    if (!t) {
        kidvec_cleanup(v);
        return NULL;
    }
    t->n = v->n;
    t->kids = v->kids;
    t->weights = v->weights;
    memset(v, 0, sizeof(*v));
    return t;
}

/* ---- showing trees ------------------------------------------------------- */

/* Appends a name, with the residual suffix (sfx, slen bytes) when there is
 * one: "/" followed by "/x" is "/x", not "//x". */
static int show_name(const char *path, const char *sfx, size_t slen, ag_buf *out)
{
    if (slen == 0)
        return ag_buf_append_str(out, path);
    if (strcmp(path, "/") == 0)
        return ag_buf_append(out, sfx, slen);
    int rc = ag_buf_append_str(out, path);
    return rc < 0 ? rc : ag_buf_append(out, sfx, slen);
}

/* Appends t in dtab syntax, each name followed by the residual sfx. */
static int show_tree(const ag__ntree *t, const char *sfx, size_t slen, ag_buf *out)
{
    int rc = 0;
    switch (t->kind) {
    case AG__NT_LEAF:
        return show_name(t->path, sfx, slen, out);
    case AG__NT_NEG:
        return ag_buf_append_byte(out, '~');
    case AG__NT_FAIL:
        return ag_buf_append_byte(out, '!');
    case AG__NT_EMPTY:
        return ag_buf_append_byte(out, '$');
    case AG__NT_ALT:
    case AG__NT_UNION:
        break;
    }
    bool uni = t->kind == AG__NT_UNION;
    for (size_t i = 0; i < t->n && rc == 0; i++) {
        const ag__ntree *k = t->kids[i];
        if (i > 0)
            rc = ag_buf_append_str(out, uni ? " & " : " | ");
        if (rc == 0 && uni) {
            /* the weight is left out when it shows as "1", so that what is
             * shown parses back to the same weight (invariant 4) */
            char w[32];
            snprintf(w, sizeof(w), "%g", t->weights[i]);
            if (strcmp(w, "1") != 0)
                rc = ag_buf_printf(out, "%s * ", w);
        }
        /* '&' binds tighter than '|': only a tree of the same kind (kept
         * apart as it was written) or an alternation in a union needs
         * parentheses */
        bool paren = k->kind == AG__NT_ALT || (uni && k->kind == AG__NT_UNION);
        if (rc == 0 && paren)
            rc = ag_buf_append_byte(out, '(');
        if (rc == 0)
            rc = show_tree(k, sfx, slen, out);
        if (rc == 0 && paren)
            rc = ag_buf_append_byte(out, ')');
    }
    return rc;
}

int ag__ntree_show(const ag__ntree *t, ag_buf *out)
{
    return show_tree(t, NULL, 0, out);
}

/* ---- dtabs --------------------------------------------------------------- */

/* One segment of a prefix: its place in the prefix text. */
typedef struct pseg {
    uint16_t off;  /* offset of the segment's first byte */
    uint16_t len;  /* bytes */
    bool wildcard; /* the segment is "*" */
} pseg;

/* A dentry, immutable and shared between dtabs (invariant 3). */
typedef struct entry {
    atomic_size_t refs; /* dtabs holding it */
    char *prefix;       /* NUL-terminated, "/" for the empty prefix */
    ag__ntree *tree;
    size_t nseg;
    pseg segs[]; /* nseg */
} entry;

struct ag__dtab {
    size_t n;     /* dentries */
    entry **ents; /* in order; later ones take precedence */
};

static void entry_unref(entry *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    ag_free(e->prefix);
    ag__ntree_free(e->tree);
    ag_free(e);
}

/* A new entry for the prefix p (len bytes, already checked), without a
 * tree yet; NULL on allocation failure. */
static entry *entry_new(const char *p, size_t len)
{
    size_t nseg = 0;
    for (size_t i = 1; i < len; i++)
        nseg += p[i - 1] == '/';
    entry *e = ag_calloc(1, sizeof(*e) + nseg * sizeof(e->segs[0]));
    if (!e)
        return NULL;
    atomic_init(&e->refs, 1);
    e->prefix = ag_strndup(p, len);
    if (!e->prefix) {
        ag_free(e);
        return NULL;
    }
    e->nseg = nseg;
    size_t s = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] != '/')
            continue;
        size_t j = i + 1;
        while (j < len && p[j] != '/')
            j++;
        e->segs[s].off = (uint16_t)(i + 1);
        e->segs[s].len = (uint16_t)(j - i - 1);
        e->segs[s].wildcard = j - i - 1 == 1 && p[i + 1] == '*';
        s++;
    }
    assert(s == nseg);
    return e;
}

/* Does e's prefix match the first segments of path (len bytes, valid)? On
 * a match, *rest is the offset of the residual (len when there is none).
 * Walks the path once, without splitting it first: most dentries differ
 * from it in their first bytes. */
static bool entry_match(const entry *e, const char *path, size_t len, size_t *rest)
{
    if (len == 1) { /* "/" has no segments: only the prefix "/" matches */
        *rest = len;
        return e->nseg == 0;
    }
    size_t pos = 0; /* at a '/' of path, or at len */
    for (size_t i = 0; i < e->nseg; i++) {
        if (pos >= len)
            return false;
        size_t start = pos + 1, end = start;
        while (end < len && path[end] != '/')
            end++;
        const pseg *sg = &e->segs[i];
        if (!sg->wildcard &&
            (end - start != sg->len || memcmp(path + start, e->prefix + sg->off, sg->len) != 0))
            return false;
        pos = end;
    }
    *rest = pos;
    return true;
}

void ag__dtab_free(ag__dtab *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        entry_unref(d->ents[i]);
    ag_free(d->ents);
    ag_free(d);
}

size_t ag__dtab_len(const ag__dtab *d)
{
    return d ? d->n : 0;
}

ag__dtab *ag__dtab_concat(const ag__dtab *a, const ag__dtab *b)
{
    size_t na = ag__dtab_len(a), nb = ag__dtab_len(b);
    ag__dtab *d = ag_calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    if (na + nb > 0) {
        d->ents = ag_calloc(na + nb, sizeof(*d->ents));
        if (!d->ents) {
            ag_free(d);
            return NULL;
        }
    }
    /* entries are immutable: share them (invariant 3) */
    for (size_t i = 0; i < na + nb; i++) {
        entry *e = i < na ? a->ents[i] : b->ents[i - na];
        atomic_fetch_add(&e->refs, 1);
        d->ents[i] = e;
    }
    d->n = na + nb;
    return d;
}

int ag__dtab_show(const ag__dtab *d, ag_buf *out)
{
    for (size_t i = 0; i < ag__dtab_len(d); i++) {
        const entry *e = d->ents[i];
        int rc = ag_buf_append_str(out, e->prefix);
        if (rc == 0)
            rc = ag_buf_append_str(out, " => ");
        if (rc == 0)
            rc = ag__ntree_show(e->tree, out);
        if (rc == 0)
            rc = ag_buf_append_str(out, ";\n");
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- the parser ---------------------------------------------------------- */
/*
 * Recursive descent over bytes, one function per level of the grammar:
 *     dtab     := [dentry (';' dentry)* [';']]
 *     dentry   := prefix '=>' alt
 *     alt      := union ('|' union)*
 *     union    := weighted ('&' weighted)*
 *     weighted := [weight '*'] simple
 *     simple   := path | '~' | '!' | '$' | '(' alt ')'
 * Whitespace and comments are skipped before every token. An error records
 * its offset; ag__dtab_parse turns it into a line and a column.
 */

typedef struct parser {
    const char *s;
    size_t len;
    size_t pos;     /* next byte */
    int nest;       /* open parentheses */
    size_t err_off; /* where the error is */
    ag_errbuf *err;
} parser;

static int perr(parser *p, size_t off, const char *fmt, ...) AG_PRINTF(3, 4);
static int perr(parser *p, size_t off, const char *fmt, ...)
{
    p->err_off = off;
    if (p->err) {
        va_list ap;
        va_start(ap, fmt);
        ag_errbuf_vset(p->err, AG_E_MESH_DTAB, fmt, ap);
        va_end(ap);
    }
    return AG_E_MESH_DTAB;
}

static int pnomem(parser *p)
{
    p->err_off = p->pos;
    return fail(p->err, AG_E_NOMEM, "out of memory");
}

/* Skips whitespace and comments ('#' to the end of the line). */
static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            p->pos++;
        } else if (c == '#') {
            while (p->pos < p->len && p->s[p->pos] != '\n')
                p->pos++;
        } else {
            break;
        }
    }
}

/* The end of the path token starting at off (a '/'). */
static size_t path_end(const parser *p, size_t off)
{
    size_t e = off;
    while (e < p->len && (p->s[e] == '/' || p->s[e] == '*' || is_seg_char((unsigned char)p->s[e])))
        e++;
    return e;
}

/* Describes the token at off for a message: "end of input" or the quoted
 * token ("'/c'", "'=>'", "'foo'", "'@'"), in buf. */
static const char *tok_desc(const parser *p, size_t off, char buf[DBUF])
{
    if (off >= p->len)
        return "end of input";
    char q[QBUF];
    size_t e = off + 1;
    unsigned char c = (unsigned char)p->s[off];
    if (c == '/')
        e = path_end(p, off);
    else if (c == '=' && off + 1 < p->len && p->s[off + 1] == '>')
        e = off + 2;
    else if (is_seg_char(c) && c != '#' && c != '$')
        while (e < p->len && is_seg_char((unsigned char)p->s[e]))
            e++;
    snprintf(buf, DBUF, "'%s'", quote(q, p->s + off, e - off));
    return buf;
}

/* Scans the path token at p->pos, checks it and returns it in *out (a new
 * string). */
static int parse_path(parser *p, bool prefix, char **out)
{
    size_t start = p->pos, end = path_end(p, start), bad;
    int rc = path_scan(p->s + start, end - start, prefix, &bad, p->err);
    if (rc < 0) {
        if (!prefix && p->s[start + bad] == '*')
            return perr(p, start + bad, "'*' is allowed only in a prefix");
        p->err_off = start + bad;
        return rc;
    }
    *out = ag_strndup(p->s + start, end - start);
    if (!*out)
        return pnomem(p);
    p->pos = end;
    return 0;
}

static int parse_alt(parser *p, ag__ntree **out);

/* A weight: [+-]digits[.digits][e[+-]digits] (or .digits), finite, > 0. */
static int parse_weight(parser *p, double *w)
{
    size_t start = p->pos, e = start;
    while (e < p->len && (is_seg_char((unsigned char)p->s[e]) || p->s[e] == '+') &&
           p->s[e] != '#' && p->s[e] != '$')
        e++;
    char tok[QBUF], q[QBUF];
    size_t n = e - start, i = 0, digits = 0;
    quote(q, p->s + start, n);
    const char *s = p->s + start;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (digits > 0 && i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp = 0;
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            exp++;
        if (exp == 0)
            digits = 0;
    }
    if (digits == 0 || i != n)
        return perr(p, start, "weight '%s' is not a decimal number", q);
    if (n >= sizeof(tok))
        return perr(p, start, "weight '%s' is too long", q);
    memcpy(tok, s, n);
    tok[n] = '\0';
    char *end;
    *w = strtod(tok, &end);
    if (end != tok + n)
        return perr(p, start, "weight '%s' is not a decimal number", q);
    if (!(*w > 0))
        return perr(p, start, "weight must be > 0, got '%s'", q);
    if (isinf(*w))
        return perr(p, start, "weight '%s' is too large", q);
    p->pos = e;
    skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != '*') {
        char d[DBUF];
        return perr(p, p->pos, "expected '*' after weight '%s', got %s", q, tok_desc(p, p->pos, d));
    }
    p->pos++;
    return 0;
}

/* simple := path | '~' | '!' | '$' | '(' alt ')' */
static int parse_simple(parser *p, ag__ntree **out)
{
    char d[DBUF];
    skip_ws(p);
    *out = NULL;
    if (p->pos >= p->len)
        return perr(p, p->pos, "expected a tree, got end of input");
    char c = p->s[p->pos];
    ag__nt_kind kind;
    switch (c) {
    case '/': {
        char *path = NULL;
        int rc = parse_path(p, false, &path);
        if (rc < 0)
            return rc;
        *out = nt_leaf_take(path);
        return *out ? 0 : pnomem(p);
    }
    case '(': {
        size_t open = p->pos;
        if (p->nest >= PARSE_MAX_NEST)
            return perr(p, open, "more than %d nested '('", PARSE_MAX_NEST);
        p->pos++;
        p->nest++;
        int rc = parse_alt(p, out);
        p->nest--;
        if (rc < 0)
            return rc;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ')') {
            p->pos++;
            return 0;
        }
        ag__ntree_free(*out);
        *out = NULL;
        if (p->pos >= p->len || p->s[p->pos] == ';')
            return perr(p, open, "unbalanced '('");
        return perr(p, p->pos, "expected '|', '&' or ')', got %s", tok_desc(p, p->pos, d));
    }
    case ')':
        if (p->nest == 0)
            return perr(p, p->pos, "unbalanced ')'");
        return perr(p, p->pos, "expected a tree, got ')'");
    case '~':
        kind = AG__NT_NEG;
        break;
    case '!':
        kind = AG__NT_FAIL;
        break;
    case '$':
        kind = AG__NT_EMPTY;
        break;
    default:
        return perr(p, p->pos, "expected a tree, got %s", tok_desc(p, p->pos, d));
    }
    p->pos++;
    *out = nt_new(kind);
    return *out ? 0 : pnomem(p);
}

/* weighted := [weight '*'] simple */
static int parse_weighted(parser *p, double *w, ag__ntree **out)
{
    skip_ws(p);
    *w = 1;
    if (p->pos < p->len) {
        char c = p->s[p->pos];
        if ((c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-') {
            int rc = parse_weight(p, w);
            if (rc < 0)
                return rc;
        }
    }
    return parse_simple(p, out);
}

/* union := weighted ('&' weighted)* */
static int parse_union(parser *p, ag__ntree **out)
{
    kidvec v = {0};
    for (;;) {
        double w;
        ag__ntree *t;
        int rc = parse_weighted(p, &w, &t);
        if (rc == 0)
            rc = kidvec_push(&v, t, w, true) < 0 ? pnomem(p) : 0;
        if (rc < 0) {
            kidvec_cleanup(&v);
            return rc;
        }
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '&')
            break;
        if (v.n == AG__TREE_MAX_BRANCHES) {
            kidvec_cleanup(&v);
            return perr(p, p->pos, "more than %d branches in a union", AG__TREE_MAX_BRANCHES);
        }
        p->pos++;
    }
    *out = kidvec_finish(&v, AG__NT_UNION);
    return *out ? 0 : pnomem(p);
}

/* alt := union ('|' union)* */
static int parse_alt(parser *p, ag__ntree **out)
{
    kidvec v = {0};
    for (;;) {
        ag__ntree *t;
        int rc = parse_union(p, &t);
        if (rc == 0)
            rc = kidvec_push(&v, t, 0, false) < 0 ? pnomem(p) : 0;
        if (rc < 0) {
            kidvec_cleanup(&v);
            return rc;
        }
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '|')
            break;
        if (v.n == AG__TREE_MAX_BRANCHES) {
            kidvec_cleanup(&v);
            return perr(p, p->pos, "more than %d branches in an alternation",
                        AG__TREE_MAX_BRANCHES);
        }
        p->pos++;
    }
    *out = kidvec_finish(&v, AG__NT_ALT);
    return *out ? 0 : pnomem(p);
}

/* dentry := prefix '=>' alt; appends it to d (whose ents has room). */
static int parse_dentry(parser *p, ag__dtab *d)
{
    char q[QBUF], desc[DBUF];
    if (p->s[p->pos] != '/')
        return perr(p, p->pos, "expected a prefix (a path starting with '/'), got %s",
                    tok_desc(p, p->pos, desc));
    size_t start = p->pos, end = path_end(p, start), bad;
    int rc = path_scan(p->s + start, end - start, true, &bad, p->err);
    if (rc < 0) {
        p->err_off = start + bad;
        return rc;
    }
    entry *e = entry_new(p->s + start, end - start);
    if (!e)
        return pnomem(p);
    p->pos = end;
    skip_ws(p);
    if (p->pos + 1 >= p->len || p->s[p->pos] != '=' || p->s[p->pos + 1] != '>') {
        rc = perr(p, p->pos, "expected '=>' after prefix '%s'", quote(q, e->prefix, end - start));
        entry_unref(e);
        return rc;
    }
    p->pos += 2;
    rc = parse_alt(p, &e->tree);
    if (rc < 0) {
        entry_unref(e);
        return rc;
    }
    d->ents[d->n++] = e;
    return 0;
}

/* dtab := [dentry (';' dentry)* [';']] */
static int parse_dtab(parser *p, ag__dtab *d)
{
    size_t cap = 0;
    char desc[DBUF];
    skip_ws(p);
    while (p->pos < p->len) {
        if (d->n == AG__DTAB_MAX_ENTRIES)
            return perr(p, p->pos, "more than %d dentries", AG__DTAB_MAX_ENTRIES);
        if (d->n == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            entry **ents = ag_reallocarray(d->ents, ncap, sizeof(*ents));
            if (!ents)
                return pnomem(p);
            d->ents = ents;
            cap = ncap;
        }
        int rc = parse_dentry(p, d);
        if (rc < 0)
            return rc;
        skip_ws(p);
        if (p->pos >= p->len)
            break;
        char c = p->s[p->pos];
        if (c == ')')
            return perr(p, p->pos, "unbalanced ')'");
        if (c != ';')
            return perr(p, p->pos, "expected '|', '&', ';' or end of input, got %s",
                        tok_desc(p, p->pos, desc));
        p->pos++;
        skip_ws(p);
    }
    return 0;
}

int ag__dtab_parse(const char *text, size_t len, ag__dtab **out, int *line, int *col,
                   ag_errbuf *err)
{
    parser p = {.s = text, .len = len, .err = err};
    *out = NULL;
    ag__dtab *d = ag_calloc(1, sizeof(*d));
    int rc = d ? parse_dtab(&p, d) : pnomem(&p);
    if (rc == 0) {
        *out = d;
        return 0;
    }
    ag__dtab_free(d);
    /* the position, 1-based, from the offset (once, only on failure) */
    int ln = 1, cl = 1;
    for (size_t i = 0; i < p.err_off && i < len; i++) {
        if (text[i] == '\n') {
            ln++;
            cl = 1;
        } else {
            cl++;
        }
    }
    if (line)
        *line = ln;
    if (col)
        *col = cl;
    return rc;
}

/* ---- delegation ---------------------------------------------------------- */

typedef struct dctx {
    const ag__dtab *d;
    ag_buf *trace; /* NULL: no trace */
    ag_errbuf *err;
    const char *start; /* the path delegated, for messages */
    size_t names;      /* names visited so far */
    size_t depth;      /* unbound names on the current branch */
    /* those names, outermost first (the last one may be as deep as allowed
     * and still be pushed, to find that no dentry matches it) */
    const char *stack[AG__DELEGATE_MAX_DEPTH + 1];
} dctx;

static int delegate_name(dctx *c, char *path, size_t len, ag__ntree **out);

static int trace_err(dctx *c, int rc)
{
    if (rc == AG_E_TOO_LARGE)
        return fail(c->err, rc, "delegation of %s: trace longer than %zu bytes", c->start,
                    c->trace->max);
    return fail(c->err, rc, "out of memory");
}

/* Appends indent spaces to the trace. */
static int trace_indent(dctx *c, size_t indent)
{
    static const char spaces[] = "                                ";
    while (indent > 0) {
        size_t n = AG_MIN(indent, sizeof(spaces) - 1);
        int rc = ag_buf_append(c->trace, spaces, n);
        if (rc < 0)
            return trace_err(c, rc);
        indent -= n;
    }
    return 0;
}

/* The trace line of a rewrite: "prefix => tree  ->  tree-with-residual". */
static int trace_rewrite(dctx *c, const entry *e, const char *rest, size_t rlen)
{
    int rc = trace_indent(c, 4 * c->depth - 2);
    if (rc == 0)
        rc = ag_buf_printf(c->trace, "%s => ", e->prefix);
    if (rc == 0)
        rc = show_tree(e->tree, NULL, 0, c->trace);
    if (rc == 0)
        rc = ag_buf_append_str(c->trace, "  ->  ");
    if (rc == 0)
        rc = show_tree(e->tree, rest, rlen, c->trace);
    if (rc == 0)
        rc = ag_buf_append_byte(c->trace, '\n');
    return rc < 0 ? trace_err(c, rc) : 0;
}

/* The loop error: the chain of names on the branch, then path again. */
static int loop_err(dctx *c, const char *path)
{
    char chain[AG_ERRMSG_MAX];
    size_t o = 0;
    for (size_t i = 0; i <= c->depth && o < sizeof(chain); i++) {
        const char *name = i < c->depth ? c->stack[i] : path;
        int n = snprintf(chain + o, sizeof(chain) - o, "%s%s", i ? " -> " : "", name);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    return fail(c->err, AG_E_MESH_DTAB, "delegation of %s loops: %s ...", c->start, chain);
}

/* Adds t (taken) to an alternation being built: a negative is dropped, an
 * alternation is flattened into v all the way down, whatever its size (the
 * parts alt_finish split off too), so that the flat list, and then how
 * alt_finish splits it, depends only on the branches: delegating a
 * delegation's result, shown, gives it back. */
static int alt_add(kidvec *v, ag__ntree *t)
{
    if (t->kind == AG__NT_NEG) {
        ag__ntree_free(t);
        return 0;
    }
    if (t->kind != AG__NT_ALT)
        return kidvec_push(v, t, 0, false);
    for (size_t i = 0; i < t->n; i++) {
        ag__ntree *k = t->kids[i];
        t->kids[i] = NULL;
        if (alt_add(v, k) < 0) {
            ag__ntree_free(t);
            return AG_E_NOMEM;
        }
    }
    ag__ntree_free(t); /* its kids are NULL now */
    return 0;
}

/* The alternation of v's branches (emptying v): ~ for none, the branch for
 * one; past the branch limit, the last AG__TREE_MAX_BRANCHES branches are
 * nested into one, until the rest fits. NULL on allocation failure. */
static ag__ntree *alt_finish(kidvec *v)
{
    if (v->n == 0) {
        kidvec_cleanup(v);
        return nt_new(AG__NT_NEG);
    }
    while (v->n > AG__TREE_MAX_BRANCHES) {
        ag__ntree *t = nt_new(AG__NT_ALT);
        ag__ntree **kids = ag_reallocarray(NULL, AG__TREE_MAX_BRANCHES, sizeof(*kids));
        if (!t || !kids) {
            ag_free(t);
            ag_free(kids);
            kidvec_cleanup(v);
            return NULL;
        }
        v->n -= AG__TREE_MAX_BRANCHES;
        memcpy(kids, v->kids + v->n, AG__TREE_MAX_BRANCHES * sizeof(*kids));
        t->kids = kids;
        t->n = AG__TREE_MAX_BRANCHES;
        v->kids[v->n++] = t;
    }
    return kidvec_finish(v, AG__NT_ALT);
}

/* The rewrite of tree t with the residual rest (rlen bytes) appended to its
 * names, delegated. */
static int rewrite(dctx *c, const ag__ntree *t, const char *rest, size_t rlen, ag__ntree **out)
{
    *out = NULL;
    switch (t->kind) {
    case AG__NT_LEAF: {
        size_t plen = strcmp(t->path, "/") == 0 ? 0 : strlen(t->path);
        size_t len = plen + rlen;
        if (len > AG__PATH_MAX)
            return fail(c->err, AG_E_TOO_LARGE,
                        "delegation of %s: rewriting makes a path longer than %d bytes", c->start,
                        AG__PATH_MAX);
        char *path = ag_malloc(len + 2);
        if (!path)
            return fail(c->err, AG_E_NOMEM, "out of memory");
        memcpy(path, t->path, plen);
        memcpy(path + plen, rest, rlen);
        if (len == 0)
            path[len++] = '/';
        path[len] = '\0';
        return delegate_name(c, path, len, out);
    }
    case AG__NT_NEG:
    case AG__NT_FAIL:
    case AG__NT_EMPTY:
        *out = nt_new(t->kind);
        return *out ? 0 : fail(c->err, AG_E_NOMEM, "out of memory");
    case AG__NT_ALT:
    case AG__NT_UNION:
        break;
    }
    bool uni = t->kind == AG__NT_UNION;
    kidvec v = {0};
    for (size_t i = 0; i < t->n; i++) {
        ag__ntree *k;
        int rc = rewrite(c, t->kids[i], rest, rlen, &k);
        if (rc == 0) {
            /* a union keeps its negative branches (the binder gives their
             * weight to the others) */
            rc = uni ? kidvec_push(&v, k, t->weights[i], true) : alt_add(&v, k);
            if (rc < 0)
                rc = fail(c->err, AG_E_NOMEM, "out of memory");
        }
        if (rc < 0) {
            kidvec_cleanup(&v);
            return rc;
        }
    }
    *out = uni ? kidvec_finish(&v, AG__NT_UNION) : alt_finish(&v);
    return *out ? 0 : fail(c->err, AG_E_NOMEM, "out of memory");
}

/* Appends n bytes of s to the trace, if there is one. */
static int trace_str(dctx *c, const char *s, size_t n)
{
    if (!c->trace)
        return 0;
    int rc = ag_buf_append(c->trace, s, n);
    return rc < 0 ? trace_err(c, rc) : 0;
}

/* The leaf of path (taken). */
static int leaf_out(dctx *c, char *path, ag__ntree **out)
{
    *out = nt_leaf_take(path);
    return *out ? 0 : fail(c->err, AG_E_NOMEM, "out of memory");
}

/* Would delegating path (unbound) never end? It does if the name is
 * already on this branch (it would be rewritten the same way again, and
 * so on), or if it is as deep as allowed and a dentry would rewrite it. */
static int check_loop(dctx *c, const char *path, size_t len)
{
    bool loops = false;
    for (size_t i = 0; i < c->depth && !loops; i++)
        loops = strcmp(c->stack[i], path) == 0;
    for (size_t i = 0; c->depth == AG__DELEGATE_MAX_DEPTH && i < c->d->n && !loops; i++) {
        size_t rest;
        loops = entry_match(c->d->ents[i], path, len, &rest);
    }
    return loops ? loop_err(c, path) : 0;
}

/* Adds to v the rewrite of path (unbound, on top of the stack) by every
 * dentry that matches it, last dentry first, each delegated. */
static int rewrite_matches(dctx *c, const char *path, size_t len, kidvec *v)
{
    bool matched = false;
    for (size_t i = c->d ? c->d->n : 0; i-- > 0;) {
        const entry *e = c->d->ents[i];
        size_t rest;
        if (!entry_match(e, path, len, &rest))
            continue;
        int rc = matched ? 0 : trace_str(c, "\n", 1);
        matched = true;
        if (rc == 0 && c->trace)
            rc = trace_rewrite(c, e, path + rest, len - rest);
        ag__ntree *t = NULL;
        if (rc == 0)
            rc = rewrite(c, e->tree, path + rest, len - rest, &t);
        if (rc == 0 && alt_add(v, t) < 0)
            rc = fail(c->err, AG_E_NOMEM, "out of memory");
        if (rc < 0)
            return rc;
    }
    return matched ? 0 : trace_str(c, "  ->  ~\n", 8);
}

/* Delegates the valid path (len bytes; taken: freed here or kept in the
 * result's leaf) at the current depth. */
static int delegate_name(dctx *c, char *path, size_t len, ag__ntree **out)
{
    int rc;
    bool bound = path_is_bound(path, len);
    *out = NULL;
    if (++c->names > DELEGATE_MAX_NAMES)
        rc = fail(c->err, AG_E_TOO_LARGE, "delegation of %s makes more than %d names", c->start,
                  DELEGATE_MAX_NAMES);
    else if (bound && c->depth > 0)
        return leaf_out(c, path, out); /* shown in the rewrite's trace line */
    else
        rc = bound ? 0 : check_loop(c, path, len);
    if (rc == 0 && c->trace)
        rc = trace_indent(c, 4 * c->depth);
    if (rc == 0)
        rc = trace_str(c, path, len);
    if (rc == 0 && bound) { /* the start itself is bound */
        rc = trace_str(c, "\n", 1);
        if (rc == 0)
            return leaf_out(c, path, out);
    }
    if (rc < 0) {
        ag_free(path);
        return rc;
    }

    kidvec v = {0};
    c->stack[c->depth++] = path;
    rc = rewrite_matches(c, path, len, &v);
    c->depth--;
    ag_free(path);
    if (rc < 0) {
        kidvec_cleanup(&v);
        return rc;
    }
    *out = alt_finish(&v);
    return *out ? 0 : fail(c->err, AG_E_NOMEM, "out of memory");
}

int ag__dtab_delegate(const ag__dtab *d, const char *path, ag__ntree **out, ag_buf *trace,
                      ag_errbuf *err)
{
    *out = NULL;
    size_t len = strnlen(path, AG__PATH_MAX + 1);
    int rc = ag__path_check(path, len, false, err);
    if (rc < 0)
        return rc;
    char *copy = ag_strndup(path, len);
    if (!copy)
        return fail(err, AG_E_NOMEM, "out of memory");
    /* delegate_name takes (and frees) the copy; messages name the
     * caller's string */
    dctx c = {.d = d, .trace = trace, .err = err, .start = path};
    return delegate_name(&c, copy, len, out);
}
