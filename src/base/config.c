/*
 * Config: a YAML document read into a tree of positioned nodes, and typed
 * getters whose errors name the file, line and column.
 *
 * Loading drives libfyaml's event parser (not its document builder) and
 * builds argot's own tree, so that every node, keys included, carries the
 * 1-based line and column where its content starts, and its dotted path
 * ("parties.alice.ports[0]"). libfyaml's diagnostics are collected through
 * a private fy_diag and turned into "<file>:<line>:<col>: syntax error: ...";
 * nothing is ever printed.
 *
 * Invariants, once a load has succeeded:
 *   1. every node, string and path lives in the config's arena and stays
 *      valid until ag_config_free(); nothing in the tree is allocated apart;
 *   2. the tree is acyclic and at most MAX_DEPTH collections deep along any
 *      path, counting the collections reached through aliases (an alias
 *      shares the anchored node, it is not copied, so a node may have
 *      several parents; its path is the one where it was anchored);
 *   3. a mapping has no two keys with the same text, and every key is a
 *      scalar (AG_CNODE_SCALAR, even when written `null` or `~`: the null
 *      rule applies to values only, so such keys stay addressable by name);
 *   4. a scalar's text is NUL-terminated after len bytes (it may hold NULs);
 *      an AG_CNODE_NULL node's text is "".
 * On a failed load the arena is released and the root stays NULL.
 *
 * Positions: libfyaml gives a node's position as that of its content, so a
 * node written `&a !!str 5` is at the `5`, and an alias at its `*`. An empty
 * plain scalar has no token; it takes the end of the token before it (for
 * `key:` that is the colon). An empty document's root is a NULL node at 1:1.
 *
 * Not thread-safe: a config is used by one thread at a time.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libfyaml.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argot/base.h"

#define MAX_DEPTH       64                  /* collections along one path */
#define MAX_FILE_BYTES  ((size_t)64 << 20)  /* a config file we will read */
#define MAX_ARENA_BYTES ((size_t)256 << 20) /* nodes, texts and paths */
#define GOT_CUT         40                  /* bytes of a value quoted in errors */
#define NAME_CUT        200                 /* bytes of a key quoted in errors */
#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

struct ag_cnode {
    ag_cnode_type type;
    int line;                     /* 1-based */
    int column;                   /* 1-based */
    bool quoted;                  /* scalar written quoted, as a block, or tagged !!str */
    bool open;                    /* a collection still being built */
    uint8_t height;               /* collections from here down, this one included */
    const char *path;             /* "" for the root */
    const char *text;             /* scalars: the text; NULL: ""; else NULL */
    size_t len;                   /* bytes of text */
    size_t n;                     /* items of a sequence, pairs of a mapping */
    const ag_cnode *const *items; /* sequence items or mapping values */
    const ag_cnode *const *keys;  /* mapping keys (NULL for a sequence) */
};

struct ag_config {
    ag_errbuf err;
    ag_arena *arena; /* NULL before a load and after a failed one */
    char *name;      /* the name given to load (ag_strdup) */
    const ag_cnode *root;
    bool loaded; /* a load was attempted */
};

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */
/* ------------------------------------------------------------------------ */

/* Writes len bytes of s into out (cap bytes, NUL-terminated) for quoting in
 * a message: control bytes are escaped (\n, \t, \xNN) so a message stays on
 * one line; past max bytes the text is cut on a UTF-8 boundary and "..."
 * is appended. Returns out. */
static const char *render(char *out, size_t cap, const char *s, size_t len, size_t max)
{
    size_t n = len, o = 0;
    bool cut = false;
    if (len > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        cut = true;
    }
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n' || ch == '\t') {
            out[o++] = '\\';
            out[o++] = ch == '\n' ? 'n' : 't';
        } else if (ch < 0x20 || ch == 0x7f) {
            snprintf(out + o, cap - o, "\\x%02x", ch);
            o += 4;
        } else {
            out[o++] = (char)ch;
        }
    }
    if (cut && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* Records "<file>:<line>:<col>: <message>" (or "<file>: <message>" when
 * line is 0) as the config's error; returns code. */
static int verr(ag_config *c, int line, int col, int code, const char *fmt, va_list ap)
    AG_PRINTF(5, 0);
static int verr(ag_config *c, int line, int col, int code, const char *fmt, va_list ap)
{
    char msg[AG_ERRMSG_MAX];
    const char *name = c->name ? c->name : "";
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (line > 0)
        return ag_errbuf_set(&c->err, code, "%s:%d:%d: %s", name, line, col, msg);
    return ag_errbuf_set(&c->err, code, "%s: %s", name, msg);
}

static int err_at(ag_config *c, int line, int col, int code, const char *fmt, ...) AG_PRINTF(5, 6);
static int err_at(ag_config *c, int line, int col, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(c, line, col, code, fmt, ap);
    va_end(ap);
    return code;
}

int ag_config_errorf(ag_config *c, const ag_cnode *n, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(c, n ? n->line : 0, n ? n->column : 0, code, fmt, ap);
    va_end(ap);
    return code;
}

int ag_config_errorf_within(ag_config *c, const ag_cnode *n, int line, int col, int code,
                            const char *fmt, ...)
{
    int l = n ? n->line : 0, k = n ? n->column : 0;
    if (n && line >= 1 && col >= 1) {
        /* a block scalar's node starts at its first content line, at the
         * indentation; a flow scalar at its first character (after the
         * quote, if quoted): position i within it is that much further */
        bool quoted = ag_cnode_is_quoted(n) && n->text && !memchr(n->text, '\n', n->len);
        l = n->line + line - 1;
        k = (line == 1 ? n->column + (quoted ? 1 : 0) : n->column) + col - 1;
    }
    va_list ap;
    va_start(ap, fmt);
    verr(c, l, k, code, fmt, ap);
    va_end(ap);
    return code;
}

/* What a node is, for "got ...": 'text' for a scalar, or, when a plain
 * scalar was wanted (a number, a bool, a duration, a size) and the scalar
 * is quoted, "a quoted string 'text'". */
static const char *got_desc(char *out, size_t cap, const ag_cnode *n, bool want_plain)
{
    char txt[GOT_CUT * 4 + 8];
    switch (n->type) {
    case AG_CNODE_MAP:
        return "a mapping";
    case AG_CNODE_SEQ:
        return "a sequence";
    case AG_CNODE_NULL:
        return "no value";
    case AG_CNODE_SCALAR:
        break;
    }
    render(txt, sizeof(txt), n->text, n->len, GOT_CUT);
    snprintf(out, cap, "%s'%s'", n->quoted && want_plain ? "a quoted string " : "", txt);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Building: a hash table for anchors and for duplicate keys                 */
/* ------------------------------------------------------------------------ */

/* One name in a scope: a key in one mapping (scope = the mapping node), or
 * an anchor (scope = the builder). text is borrowed from the arena. */
struct ent {
    const void *scope;
    const char *text;
    size_t len;
    uint64_t hash;
    ag_cnode *node; /* anchors: the anchored node */
    int line;       /* keys: where the key was first written */
    int column;
};

struct table {
    struct ent *slots; /* open addressing, linear probing; scope NULL = free */
    size_t cap;        /* a power of two, or 0 */
    size_t n;
};

static uint64_t hash_name(const void *scope, const char *s, size_t len)
{
    uint64_t h = 14695981039346656037u ^ ((uint64_t)(uintptr_t)scope * 0x9E3779B97F4A7C15u);
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211u;
    }
    return h ^ (h >> 29);
}

static struct ent *table_slot(struct ent *slots, size_t cap, const void *scope, const char *s,
                              size_t len, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    while (slots[i].scope) {
        struct ent *e = &slots[i];
        if (e->hash == h && e->scope == scope && e->len == len && memcmp(e->text, s, len) == 0)
            return e;
        i = (i + 1) & (cap - 1);
    }
    return &slots[i];
}

static int table_grow(struct table *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    struct ent *ns = ag_calloc(ncap, sizeof(*ns));
    if (!ns)
        return AG_E_NOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        struct ent *e = &t->slots[i];
        if (e->scope)
            *table_slot(ns, ncap, e->scope, e->text, e->len, e->hash) = *e;
    }
    ag_free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

/* The entry for (scope, text): *out is the existing one (returns 1) or a
 * new one with its key fields set (returns 0); AG_E_NOMEM. text must stay
 * valid as long as the table. */
static int table_put(struct table *t, const void *scope, const char *text, size_t len,
                     struct ent **out)
{
    if ((t->n + 1) * 2 > t->cap) {
        int rc = table_grow(t);
        if (rc < 0)
            return rc;
    }
    uint64_t h = hash_name(scope, text, len);
    struct ent *e = table_slot(t->slots, t->cap, scope, text, len, h);
    *out = e;
    if (e->scope)
        return 1;
    e->scope = scope;
    e->text = text;
    e->len = len;
    e->hash = h;
    t->n++;
    return 0;
}

/* The entry for (scope, text), or NULL. */
static struct ent *table_get(const struct table *t, const void *scope, const char *text, size_t len)
{
    if (t->cap == 0)
        return NULL;
    struct ent *e = table_slot(t->slots, t->cap, scope, text, len, hash_name(scope, text, len));
    return e->scope ? e : NULL;
}

/* ------------------------------------------------------------------------ */
/* Building: the tree from libfyaml's events                                 */
/* ------------------------------------------------------------------------ */

struct pos {
    int line; /* 1-based; 0: unknown */
    int column;
};

/* A collection being built. Its children so far are kids[base..nkids). */
struct frame {
    ag_cnode *node;
    size_t base;
    bool want_key;       /* mapping: the next node is a key */
    const ag_cnode *key; /* mapping: the key whose value comes next */
};

struct builder {
    ag_config *c;
    struct frame frames[MAX_DEPTH];
    int depth;             /* open collections */
    const ag_cnode **kids; /* children of the open collections, a stack */
    size_t nkids;
    size_t capkids;
    struct table names; /* anchors and mapping keys */
    ag_cnode *root;
    int ndocs;        /* documents started */
    bool extra_doc;   /* a second document started with no position */
    struct pos last;  /* end of the last token seen */
    const char *text; /* the input */
    size_t len;
    char raw_diag[160]; /* the first unstructured libfyaml diagnostic */
};

/* Arena allocation that tells a full arena (AG_E_TOO_LARGE) from a failed
 * allocation (AG_E_NOMEM) and records the error. */
static void *balloc(struct builder *b, size_t n, int *rc)
{
    ag_arena *a = b->c->arena;
    void *p = ag_arena_alloc(a, n);
    if (p)
        return p;
    if (n > MAX_ARENA_BYTES || ag_arena_used(a) + n + 16 > MAX_ARENA_BYTES)
        *rc = err_at(b->c, 0, 0, AG_E_TOO_LARGE, "too large: more than %zu MiB of nodes and paths",
                     MAX_ARENA_BYTES >> 20);
    else
        *rc = err_at(b->c, 0, 0, AG_E_NOMEM, "out of memory");
    return NULL;
}

static struct pos mark_pos(const struct fy_mark *m)
{
    struct pos p = {0, 0};
    if (m) {
        p.line = m->line + 1;
        p.column = m->column + 1;
    }
    return p;
}

/* Where the content of a scalar starts. libfyaml's token starts after the
 * opening quote, and for a block scalar at the start of its first line. */
static struct pos scalar_pos(const struct builder *b, struct fy_token *value)
{
    const struct fy_mark *m = fy_token_start_mark(value);
    struct pos p = mark_pos(m);
    switch (fy_token_scalar_style(value)) {
    case FYSS_SINGLE_QUOTED:
    case FYSS_DOUBLE_QUOTED:
        if (p.column > 1)
            p.column--;
        break;
    case FYSS_LITERAL:
    case FYSS_FOLDED:
        for (size_t i = m->input_pos; i < b->len && b->text[i] == ' '; i++)
            p.column++;
        break;
    default:
        break;
    }
    return p;
}

/* Where the node of event ev starts (see the file comment). */
static struct pos event_pos(const struct builder *b, struct fy_event *ev)
{
    struct pos p = mark_pos(fy_event_start_mark(ev));
    if (p.line > 0) {
        if (ev->type == FYET_SCALAR)
            return scalar_pos(b, ev->scalar.value);
        if (ev->type == FYET_ALIAS && p.column > 1)
            p.column--; /* libfyaml's alias token starts after the '*' */
        return p;
    }
    p = mark_pos(fy_token_start_mark(fy_event_get_tag_token(ev)));
    if (p.line > 0)
        return p;
    p = mark_pos(fy_token_start_mark(fy_event_get_anchor_token(ev)));
    if (p.line > 0)
        return p;
    return b->last;
}

static bool at_key(const struct builder *b)
{
    const struct frame *f = b->depth ? &b->frames[b->depth - 1] : NULL;
    return f && f->node->type == AG_CNODE_MAP && f->want_key;
}

/* The path of the node about to be attached to the top frame. */
static const char *child_path(struct builder *b, int *rc)
{
    if (b->depth == 0)
        return "";
    const struct frame *f = &b->frames[b->depth - 1];
    const char *base = f->node->path;
    size_t blen = strlen(base);
    char tail[32];
    const char *add = tail;
    size_t alen;
    if (f->node->type == AG_CNODE_SEQ) {
        alen = (size_t)snprintf(tail, sizeof(tail), "[%zu]", b->nkids - f->base);
    } else if (f->want_key) {
        return base; /* a key's path is its mapping's */
    } else {
        add = f->key->text;
        alen = f->key->len;
    }
    bool dot = blen > 0 && add != tail;
    char *p = balloc(b, blen + dot + alen + 1, rc);
    if (!p)
        return NULL;
    memcpy(p, base, blen);
    p[blen] = '.';
    memcpy(p + blen + dot, add, alen);
    p[blen + dot + alen] = '\0';
    return p;
}

static ag_cnode *node_new(struct builder *b, ag_cnode_type type, struct pos p, int *rc)
{
    ag_cnode *n = balloc(b, sizeof(*n), rc);
    if (!n)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->type = type;
    n->line = p.line > 0 ? p.line : 1;
    n->column = p.line > 0 ? p.column : 1;
    n->text = type == AG_CNODE_NULL ? "" : NULL;
    n->path = child_path(b, rc);
    return n->path ? n : NULL;
}

static int kids_push(struct builder *b, const ag_cnode *n)
{
    if (b->nkids == b->capkids) {
        size_t ncap = b->capkids ? b->capkids * 2 : 64;
        const ag_cnode **nk = ag_reallocarray(b->kids, ncap, sizeof(*nk));
        if (!nk)
            return err_at(b->c, 0, 0, AG_E_NOMEM, "out of memory");
        b->kids = nk;
        b->capkids = ncap;
    }
    b->kids[b->nkids++] = n;
    return 0;
}

/* Makes n (new, or shared through an alias at p) the next child of the
 * top frame, or the root. A key must be a scalar and new in its mapping. */
static int attach(struct builder *b, ag_cnode *n, struct pos p)
{
    if (b->depth == 0) {
        b->root = n;
        return 0;
    }
    struct frame *f = &b->frames[b->depth - 1];
    if (f->node->type == AG_CNODE_MAP && f->want_key) {
        char name[NAME_CUT * 4 + 8];
        struct ent *e;
        if (n->type != AG_CNODE_SCALAR && n->type != AG_CNODE_NULL)
            return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX,
                          "mapping keys must be scalars");
        int rc = table_put(&b->names, f->node, n->text, n->len, &e);
        if (rc < 0)
            return err_at(b->c, 0, 0, AG_E_NOMEM, "out of memory");
        if (rc == 1)
            return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX,
                          "duplicate key '%s' (first at line %d, column %d)",
                          render(name, sizeof(name), n->text, n->len, NAME_CUT), e->line,
                          e->column);
        e->line = p.line;
        e->column = p.column;
        f->key = n;
    }
    if (f->node->type == AG_CNODE_MAP)
        f->want_key = !f->want_key;
    return kids_push(b, n);
}

/* Checks a node's tag: !!str sets *str; the other core tags are accepted
 * and ignored; anything else is an error at the tag. */
static int check_tag(struct builder *b, struct fy_token *tag, bool *str)
{
    static const char *const core[] = {"int", "float", "bool", "null", "map", "seq"};
    size_t len, hlen = 0, slen = 0;
    *str = false;
    if (!tag)
        return 0;
    const char *t = fy_token_get_text(tag, &len);
    size_t plen = strlen(YAML_TAG_PREFIX);
    if (t && len > plen && memcmp(t, YAML_TAG_PREFIX, plen) == 0) {
        const char *s = t + plen;
        size_t sl = len - plen;
        if (sl == 3 && memcmp(s, "str", 3) == 0) {
            *str = true;
            return 0;
        }
        for (size_t i = 0; i < AG_ARRAY_LEN(core); i++)
            if (sl == strlen(core[i]) && memcmp(s, core[i], sl) == 0)
                return 0;
    }
    const char *h = fy_tag_token_handle(tag, &hlen);
    const char *s = fy_tag_token_suffix(tag, &slen);
    char hb[64], sb[NAME_CUT * 4 + 8];
    struct pos p = mark_pos(fy_token_start_mark(tag));
    render(hb, sizeof(hb), h ? h : "", h ? hlen : 0, 16);
    render(sb, sizeof(sb), s ? s : "", s ? slen : 0, NAME_CUT);
    if (hlen == 0 && slen > 0)
        return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX, "unsupported tag '!<%s>'", sb);
    return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX, "unsupported tag '%s%s'", hb, sb);
}

/* Records n under its anchor (if any); a later anchor of the same name
 * replaces an earlier one, as YAML says. */
static int add_anchor(struct builder *b, struct fy_event *ev, ag_cnode *n)
{
    struct fy_token *at = fy_event_get_anchor_token(ev);
    size_t len;
    int rc = 0;
    if (!at)
        return 0;
    const char *name = fy_token_get_text(at, &len);
    if (!name)
        return 0;
    char *copy = balloc(b, len + 1, &rc);
    if (!copy)
        return rc;
    memcpy(copy, name, len);
    copy[len] = '\0';
    struct ent *e;
    if (table_put(&b->names, b, copy, len, &e) < 0)
        return err_at(b->c, 0, 0, AG_E_NOMEM, "out of memory");
    e->node = n;
    return 0;
}

static bool is_null_text(const char *s, size_t len)
{
    static const char *const nulls[] = {"~", "null", "Null", "NULL"};
    if (len == 0)
        return true;
    for (size_t i = 0; i < AG_ARRAY_LEN(nulls); i++)
        if (len == strlen(nulls[i]) && memcmp(s, nulls[i], len) == 0)
            return true;
    return false;
}

/* libfyaml 0.7 misreads a single-quoted scalar whose content holds four
 * quotes in a row (two escaped quotes), and leaks while at it (fixed
 * upstream in 0.9.5). On one line such a scalar is decoded here from the
 * input ('' is '); over several lines it is refused. Returns 1 with *out
 * and *outlen set, 0 when libfyaml's text is right, or an error. */
static int single_quoted_text(struct builder *b, struct fy_token *value, struct pos p, char **out,
                              size_t *outlen)
{
    const struct fy_mark *s = fy_token_start_mark(value), *e = fy_token_end_mark(value);
    int rc = 0;
    if (fy_token_scalar_style(value) != FYSS_SINGLE_QUOTED || !s || !e ||
        e->input_pos < s->input_pos || e->input_pos > b->len)
        return 0;
    const char *raw = b->text + s->input_pos;
    size_t n = e->input_pos - s->input_pos, o = 0;
    if (!memmem(raw, n, "''''", 4))
        return 0;
    if (s->line != e->line)
        return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX,
                      "syntax error: '' escapes in a row in a single-quoted scalar over "
                      "several lines are not supported; use double quotes");
    char *d = balloc(b, n + 1, &rc);
    if (!d)
        return rc;
    for (size_t i = 0; i < n; i++) {
        d[o++] = raw[i];
        if (raw[i] == '\'' && i + 1 < n && raw[i + 1] == '\'')
            i++;
    }
    d[o] = '\0';
    *out = d;
    *outlen = o;
    return 1;
}

/* The text of a scalar's value token (NULL for an empty scalar), copied
 * into the arena. */
static int scalar_text(struct builder *b, struct fy_token *value, struct pos p, char **out,
                       size_t *outlen)
{
    size_t len = 0;
    int rc = value ? single_quoted_text(b, value, p, out, outlen) : 0;
    if (rc != 0)
        return rc < 0 ? rc : 0;
    const char *t = value ? fy_token_get_text(value, &len) : "";
    if (!t)
        return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX,
                      "syntax error: the YAML parser could not read this scalar");
    char *d = balloc(b, len + 1, &rc);
    if (!d)
        return rc;
    memcpy(d, t, len);
    d[len] = '\0';
    *out = d;
    *outlen = len;
    return 0;
}

static int on_scalar(struct builder *b, struct fy_event *ev, struct pos p)
{
    bool str;
    char *t = NULL;
    size_t len = 0;
    int rc = check_tag(b, ev->scalar.tag, &str);
    if (rc == 0)
        rc = scalar_text(b, ev->scalar.value, p, &t, &len);
    if (rc < 0)
        return rc;
    bool plain = !ev->scalar.value || fy_token_scalar_style(ev->scalar.value) == FYSS_PLAIN;
    bool null = plain && !str && !at_key(b) && is_null_text(t, len);
    ag_cnode *n = node_new(b, null ? AG_CNODE_NULL : AG_CNODE_SCALAR, p, &rc);
    if (!n)
        return rc;
    if (!null) {
        n->text = t;
        n->len = len;
        n->quoted = !plain || str;
    }
    rc = add_anchor(b, ev, n);
    return rc < 0 ? rc : attach(b, n, p);
}

static int on_alias(struct builder *b, struct fy_event *ev, struct pos p)
{
    size_t len = 0;
    char name[NAME_CUT * 4 + 8];
    const char *t = fy_token_get_text(ev->alias.anchor, &len);
    struct ent *e = t ? table_get(&b->names, b, t, len) : NULL;
    render(name, sizeof(name), t ? t : "", t ? len : 0, NAME_CUT);
    if (!e)
        return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX, "alias to unknown anchor '%s'",
                      name);
    if (e->node->open)
        return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX,
                      "recursive alias '%s' (it is inside the node it refers to)", name);
    if (b->depth + e->node->height > MAX_DEPTH)
        return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX, "nesting deeper than %d levels",
                      MAX_DEPTH);
    return attach(b, e->node, p);
}

static int on_collection_start(struct builder *b, struct fy_event *ev, struct pos p)
{
    bool map = ev->type == FYET_MAPPING_START;
    bool str;
    int rc;
    if (at_key(b))
        return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX, "mapping keys must be scalars");
    if (b->depth == MAX_DEPTH)
        return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX, "nesting deeper than %d levels",
                      MAX_DEPTH);
    rc = check_tag(b, map ? ev->mapping_start.tag : ev->sequence_start.tag, &str);
    if (rc < 0)
        return rc;
    ag_cnode *n = node_new(b, map ? AG_CNODE_MAP : AG_CNODE_SEQ, p, &rc);
    if (!n)
        return rc;
    n->open = true;
    rc = add_anchor(b, ev, n);
    if (rc == 0)
        rc = attach(b, n, p);
    if (rc < 0)
        return rc;
    struct frame *f = &b->frames[b->depth++];
    f->node = n;
    f->base = b->nkids;
    f->want_key = true;
    f->key = NULL;
    return 0;
}

/* Closes the top collection: its children move from the kids stack into
 * arrays in the arena. */
static int on_collection_end(struct builder *b)
{
    int rc = 0;
    assert(b->depth > 0);
    struct frame *f = &b->frames[b->depth - 1];
    ag_cnode *n = f->node;
    size_t nk = b->nkids - f->base;
    const ag_cnode **arr = balloc(b, (nk ? nk : 1) * sizeof(*arr), &rc);
    if (!arr)
        return rc;
    unsigned h = 0;
    if (n->type == AG_CNODE_MAP) {
        assert(nk % 2 == 0);
        n->n = nk / 2;
        for (size_t i = 0; i < n->n; i++) {
            arr[i] = b->kids[f->base + 2 * i];
            arr[n->n + i] = b->kids[f->base + 2 * i + 1];
        }
        n->keys = arr;
        n->items = arr + n->n;
    } else {
        n->n = nk;
        if (nk > 0) /* kids is still NULL when the first collection is empty */
            memcpy(arr, b->kids + f->base, nk * sizeof(*arr));
        n->items = arr;
    }
    for (size_t i = 0; i < nk; i++)
        h = AG_MAX(h, (unsigned)arr[i]->height);
    n->height = (uint8_t)(h + 1);
    n->open = false;
    b->nkids = f->base;
    b->depth--;
    return 0;
}

static int on_document_start(struct builder *b, struct fy_event *ev)
{
    if (b->ndocs++ == 0)
        return 0;
    struct pos p = mark_pos(fy_event_start_mark(ev));
    if (p.line == 0) {
        b->extra_doc = true; /* report it where its content starts */
        return 0;
    }
    return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX, "more than one YAML document");
}

static int on_event(struct builder *b, struct fy_event *ev)
{
    struct pos p = event_pos(b, ev);
    if (b->extra_doc)
        return err_at(b->c, p.line ? p.line : 1, p.line ? p.column : 1, AG_E_CONFIG_SYNTAX,
                      "more than one YAML document");
    switch (ev->type) {
    case FYET_DOCUMENT_START:
        return on_document_start(b, ev);
    case FYET_SCALAR:
        return on_scalar(b, ev, p);
    case FYET_ALIAS:
        return on_alias(b, ev, p);
    case FYET_MAPPING_START:
    case FYET_SEQUENCE_START:
        return on_collection_start(b, ev, p);
    case FYET_MAPPING_END:
    case FYET_SEQUENCE_END:
        return on_collection_end(b);
    default:
        return 0;
    }
}

/* libfyaml's unstructured output (internal errors); kept for a message,
 * never printed. */
static void diag_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    struct builder *b = user;
    (void)diag;
    if (b->raw_diag[0] == '\0' && len > 0) {
        const char *nl = memchr(buf, '\n', len);
        render(b->raw_diag, sizeof(b->raw_diag), buf, nl ? (size_t)(nl - buf) : len, 120);
    }
}

/* The error after libfyaml stopped: its first collected error, with the
 * position it gives (already 1-based). */
static int syntax_error(struct builder *b, struct fy_diag *diag)
{
    char msg[AG_ERRMSG_MAX];
    void *it = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(diag, &it)) != NULL) {
        if (e->type != FYET_ERROR)
            continue;
        render(msg, sizeof(msg), e->msg ? e->msg : "", e->msg ? strlen(e->msg) : 0, 300);
        if (e->line > 0 && e->column > 0)
            return err_at(b->c, e->line, e->column, AG_E_CONFIG_SYNTAX, "syntax error: %s", msg);
        return err_at(b->c, b->last.line ? b->last.line : 1, b->last.line ? b->last.column : 1,
                      AG_E_CONFIG_SYNTAX, "syntax error: %s", msg);
    }
    return err_at(b->c, b->last.line ? b->last.line : 1, b->last.line ? b->last.column : 1,
                  AG_E_CONFIG_SYNTAX, "syntax error: %s",
                  b->raw_diag[0] ? b->raw_diag : "invalid YAML");
}

static struct fy_diag *diag_new(struct builder *b)
{
    struct fy_diag_cfg dc;
    fy_diag_cfg_default(&dc);
    dc.fp = NULL;
    dc.output_fn = diag_output;
    dc.user = b;
    dc.level = FYET_ERROR;
    dc.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dc);
    if (diag)
        fy_diag_set_collect_errors(diag, true);
    return diag;
}

/* The position of byte off in b's input: lines end at LF, CR LF or CR;
 * columns count characters. */
static struct pos offset_pos(const struct builder *b, size_t off)
{
    struct pos p = {1, 1};
    for (size_t i = 0; i < off; i++) {
        char ch = b->text[i];
        if (ch == '\n' || (ch == '\r' && (i + 1 >= b->len || b->text[i + 1] != '\n'))) {
            p.line++;
            p.column = 1;
        } else if (((unsigned char)ch & 0xC0) != 0x80 && ch != '\r') {
            p.column++;
        }
    }
    return p;
}

/* libfyaml stops silently at a NUL byte and at some malformed UTF-8, as
 * if the input ended there: refuse both before it runs. */
static int check_input(struct builder *b)
{
    size_t bad = 0;
    const char *what = NULL;
    if (!ag_utf8_valid(ag_slice_make(b->text, b->len), &bad)) {
        what = "invalid UTF-8";
    } else {
        const char *nul = b->len ? memchr(b->text, '\0', b->len) : NULL;
        if (nul) {
            what = "NUL character";
            bad = (size_t)(nul - b->text);
        }
    }
    if (!what)
        return 0;
    struct pos p = offset_pos(b, bad);
    return err_at(b->c, p.line, p.column, AG_E_CONFIG_SYNTAX, "syntax error: %s", what);
}

/* Runs libfyaml over b's input and builds the tree. */
static int parse(struct builder *b)
{
    int rc = check_input(b);
    if (rc < 0)
        return rc;
    struct fy_diag *diag = diag_new(b);
    if (!diag)
        return err_at(b->c, 0, 0, AG_E_NOMEM, "out of memory");
    struct fy_parse_cfg pc;
    memset(&pc, 0, sizeof(pc));
    pc.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_AUTO;
    pc.diag = diag;
    struct fy_parser *fyp = fy_parser_create(&pc);
    if (!fyp || fy_parser_set_string(fyp, b->len ? b->text : "", b->len) != 0) {
        rc = err_at(b->c, 0, 0, AG_E_NOMEM, "out of memory");
        goto out_parser;
    }
    for (;;) {
        struct fy_event *ev = fy_parser_parse(fyp);
        if (!ev)
            break;
        rc = on_event(b, ev);
        struct pos end = mark_pos(fy_event_end_mark(ev));
        if (end.line > 0)
            b->last = end;
        fy_parser_event_free(fyp, ev);
        if (rc < 0)
            goto out_parser;
    }
    if (fy_parser_get_stream_error(fyp) || fy_diag_got_error(diag))
        rc = syntax_error(b, diag);
    else if (b->extra_doc)
        rc = err_at(b->c, b->last.line ? b->last.line : 1, b->last.line ? b->last.column : 1,
                    AG_E_CONFIG_SYNTAX, "more than one YAML document");
out_parser:
    fy_parser_destroy(fyp);
    fy_diag_destroy(diag);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Lifecycle and loading                                                     */
/* ------------------------------------------------------------------------ */

ag_config *ag_config_new(void)
{
    ag_config *c = ag_calloc(1, sizeof(*c));
    if (c)
        ag_errbuf_clear(&c->err);
    return c;
}

void ag_config_free(ag_config *c)
{
    if (!c)
        return;
    ag_arena_free(c->arena);
    ag_free(c->name);
    ag_free(c);
}

/* Marks c as loaded and records its name; fails on a second load. */
static int load_begin(ag_config *c, const char *name)
{
    if (c->loaded)
        return ag_errbuf_set(&c->err, AG_E_STATE, "%s: config already loaded",
                             c->name ? c->name : name);
    c->loaded = true;
    ag_errbuf_clear(&c->err);
    c->name = ag_strdup(name);
    if (!c->name)
        return ag_errbuf_set(&c->err, AG_E_NOMEM, "%s: out of memory", name);
    return 0;
}

/* Parses text into c's tree. On failure, releases what was built. */
static int load_text(ag_config *c, const char *text, size_t len)
{
    struct builder *b = ag_calloc(1, sizeof(*b));
    int rc;
    if (!b)
        return err_at(c, 0, 0, AG_E_NOMEM, "out of memory");
    b->c = c;
    b->text = text;
    b->len = len;
    c->arena = ag_arena_new(0, MAX_ARENA_BYTES, 0);
    if (!c->arena) {
        rc = err_at(c, 0, 0, AG_E_NOMEM, "out of memory");
        goto out;
    }
    rc = parse(b);
    if (rc == 0 && !b->root) {
        struct pos p = {1, 1};
        b->root = node_new(b, AG_CNODE_NULL, p, &rc);
    }
    if (rc < 0) {
        ag_arena_free(c->arena);
        c->arena = NULL;
        goto out;
    }
    assert(b->depth == 0 && b->nkids == 0);
    c->root = b->root;
out:
    ag_free(b->kids);
    ag_free(b->names.slots);
    ag_free(b);
    return rc;
}

int ag_config_load_string(ag_config *c, const char *name, const char *text, size_t len)
{
    int rc = load_begin(c, name ? name : "<string>");
    if (rc < 0)
        return rc;
    return load_text(c, text, len);
}

/* Reads the whole file at path into out (at most MAX_FILE_BYTES). */
static int read_file(ag_config *c, const char *path, ag_buf *out)
{
    char ebuf[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto fail_errno;
    for (;;) {
        char probe;
        size_t room = AG_MIN((size_t)65536, MAX_FILE_BYTES - out->len);
        if (room == 0) {
            ssize_t r = read(fd, &probe, 1);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                goto fail_errno;
            if (r == 0)
                break;
            close(fd);
            return err_at(c, 0, 0, AG_E_TOO_LARGE, "larger than %zu MiB", MAX_FILE_BYTES >> 20);
        }
        if (ag_buf_reserve(out, room) < 0) {
            close(fd);
            return err_at(c, 0, 0, AG_E_NOMEM, "out of memory");
        }
        ssize_t r = read(fd, out->data + out->len, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail_errno;
        if (r == 0)
            break;
        out->len += (size_t)r;
        out->data[out->len] = '\0';
    }
    close(fd);
    return 0;
fail_errno:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    return err_at(c, 0, 0, ag_err_from_errno(e), "%s", strerror_r(e, ebuf, sizeof(ebuf)));
}

int ag_config_load_file(ag_config *c, const char *path)
{
    ag_buf text;
    int rc = load_begin(c, path);
    if (rc < 0)
        return rc;
    ag_buf_init(&text, MAX_FILE_BYTES);
    rc = read_file(c, path, &text);
    if (rc == 0)
        rc = load_text(c, (const char *)text.data, text.len);
    ag_buf_cleanup(&text);
    return rc;
}

const char *ag_config_errmsg(const ag_config *c)
{
    return c->err.msg;
}

int ag_config_errcode(const ag_config *c)
{
    return c->err.code;
}

const char *ag_config_name(const ag_config *c)
{
    return c->name ? c->name : "";
}

const ag_cnode *ag_config_root(const ag_config *c)
{
    return c->root;
}

/* ------------------------------------------------------------------------ */
/* Nodes                                                                     */
/* ------------------------------------------------------------------------ */

ag_cnode_type ag_cnode_type_of(const ag_cnode *n)
{
    return n ? n->type : AG_CNODE_NULL;
}

int ag_cnode_line(const ag_cnode *n)
{
    return n ? n->line : 0;
}

int ag_cnode_column(const ag_cnode *n)
{
    return n ? n->column : 0;
}

const char *ag_cnode_path(const ag_cnode *n)
{
    return n ? n->path : "";
}

const char *ag_cnode_scalar(const ag_cnode *n)
{
    return n ? n->text : NULL;
}

size_t ag_cnode_scalar_len(const ag_cnode *n)
{
    return n ? n->len : 0;
}

bool ag_cnode_is_quoted(const ag_cnode *n)
{
    return n && n->quoted;
}

size_t ag_cnode_len(const ag_cnode *n)
{
    return n ? n->n : 0;
}

const ag_cnode *ag_cnode_item(const ag_cnode *n, size_t i)
{
    return n && i < n->n ? n->items[i] : NULL;
}

const ag_cnode *ag_cnode_key(const ag_cnode *n, size_t i)
{
    return n && n->keys && i < n->n ? n->keys[i] : NULL;
}

const ag_cnode *ag_cnode_get(const ag_cnode *map, const char *key)
{
    if (!map || map->type != AG_CNODE_MAP)
        return NULL;
    size_t len = strlen(key);
    for (size_t i = 0; i < map->n; i++) {
        const ag_cnode *k = map->keys[i];
        if (k->len == len && memcmp(k->text, key, len) == 0)
            return map->items[i];
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Checks and typed getters                                                  */
/* ------------------------------------------------------------------------ */

/* "'<path>' must be a mapping, got ..." for a getter's map argument. */
static int not_a_mapping(ag_config *c, const ag_cnode *map)
{
    char buf[GOT_CUT * 4 + 32], path[AG_ERRMSG_MAX];
    const char *got = got_desc(buf, sizeof(buf), map, false);
    if (map->path[0] == '\0')
        return ag_config_errorf(c, map, AG_E_CONFIG_TYPE, "the top level must be a mapping, got %s",
                                got);
    render(path, sizeof(path), map->path, strlen(map->path), SIZE_MAX);
    return ag_config_errorf(c, map, AG_E_CONFIG_TYPE, "'%s' must be a mapping, got %s", path, got);
}

static int missing(ag_config *c, const ag_cnode *map, const char *key)
{
    char path[AG_ERRMSG_MAX];
    if (!map || map->path[0] == '\0') {
        if (!map || map->type == AG_CNODE_NULL)
            return ag_config_errorf(c, NULL, AG_E_CONFIG_MISSING, "missing required key '%s'", key);
        return ag_config_errorf(c, map, AG_E_CONFIG_MISSING, "missing required key '%s'", key);
    }
    render(path, sizeof(path), map->path, strlen(map->path), SIZE_MAX);
    return ag_config_errorf(c, map, AG_E_CONFIG_MISSING, "missing required key '%s' in '%s'", key,
                            path);
}

/* The value of key in map for a getter: 1 and *out when there is one; 0
 * when the key is absent or null and not required (a NULL map, or a NULL
 * node, is an empty mapping); else the error. */
static int lookup(ag_config *c, const ag_cnode *map, const char *key, bool required,
                  const ag_cnode **out)
{
    if (map && map->type != AG_CNODE_MAP && map->type != AG_CNODE_NULL)
        return not_a_mapping(c, map);
    const ag_cnode *v = ag_cnode_get(map, key);
    if (!v)
        return required ? missing(c, map, key) : 0;
    if (v->type == AG_CNODE_NULL)
        return required ? ag_config_errorf(c, v, AG_E_CONFIG_MISSING,
                                           "required key '%s' has no value", key)
                        : 0;
    *out = v;
    return 1;
}

static int type_error(ag_config *c, const ag_cnode *v, const char *key, const char *what,
                      bool want_plain)
{
    char got[GOT_CUT * 4 + 32];
    return ag_config_errorf(c, v, AG_E_CONFIG_TYPE, "'%s' must be %s, got %s", key, what,
                            got_desc(got, sizeof(got), v, want_plain));
}

static int range_error(ag_config *c, const ag_cnode *v, const char *key)
{
    char txt[GOT_CUT * 4 + 8];
    return ag_config_errorf(c, v, AG_E_CONFIG_VALUE, "'%s' is out of range, got '%s'", key,
                            render(txt, sizeof(txt), v->text, v->len, GOT_CUT));
}

static bool plain_scalar(const ag_cnode *v)
{
    return v->type == AG_CNODE_SCALAR && !v->quoted;
}

enum { PARSE_OK = 0, PARSE_BAD = -1, PARSE_RANGE = -2 };

/* len > 0 digits of base, all of them, into *out. */
static int parse_digits(const char *s, size_t len, unsigned base, uint64_t *out)
{
    uint64_t v = 0;
    bool over = false;
    if (len == 0)
        return PARSE_BAD;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)ag_hex_digit(s[i]); /* -1 becomes too big */
        if (d >= base)
            return PARSE_BAD;
        if (v > (UINT64_MAX - d) / base)
            over = true;
        else
            v = v * base + d;
    }
    *out = v;
    return over ? PARSE_RANGE : PARSE_OK;
}

/* YAML 1.2 core integers: [-+]? then decimal digits, 0x hex or 0o octal. */
static int parse_i64(const char *s, size_t len, int64_t *out)
{
    bool neg = false;
    unsigned base = 10;
    uint64_t mag;
    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        s++;
        len--;
    }
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        base = s[1] == 'x' ? 16 : 8;
        s += 2;
        len -= 2;
    }
    int rc = parse_digits(s, len, base, &mag);
    if (rc < 0)
        return rc;
    if (mag > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return PARSE_RANGE;
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return PARSE_OK;
}

int ag_config_get_i64(ag_config *c, const ag_cnode *map, const char *key, bool required,
                      int64_t min, int64_t max, int64_t *out)
{
    const ag_cnode *v = NULL;
    int64_t x = 0;
    int rc = lookup(c, map, key, required, &v);
    if (rc <= 0)
        return rc;
    rc = plain_scalar(v) ? parse_i64(v->text, v->len, &x) : PARSE_BAD;
    if (rc == PARSE_BAD)
        return type_error(c, v, key, "an integer", true);
    if (rc == PARSE_RANGE)
        return range_error(c, v, key);
    if (x < min || x > max)
        return ag_config_errorf(c, v, AG_E_CONFIG_VALUE,
                                "'%s' must be between %" PRId64 " and %" PRId64 ", got %" PRId64,
                                key, min, max, x);
    *out = x;
    return 0;
}

/* Is s (len bytes) one of the NULL-terminated words? */
static bool is_one_of(const char *s, size_t len, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == len && memcmp(s, *words, len) == 0)
            return true;
    return false;
}

/* Length of the run of decimal digits at s[i..len). */
static size_t span_digits(const char *s, size_t i, size_t len)
{
    size_t j = i;
    while (j < len && s[j] >= '0' && s[j] <= '9')
        j++;
    return j - i;
}

/* YAML 1.2 core floats in decimal: [-+]? ( \.[0-9]+ | [0-9]+ (\.[0-9]*)? )
 * ( [eE] [-+]? [0-9]+ )? */
static bool is_decimal_float(const char *s, size_t len)
{
    size_t i = 0, d;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    d = span_digits(s, i, len);
    i += d;
    if (i < len && s[i] == '.') {
        size_t f = span_digits(s, i + 1, len);
        if (d == 0 && f == 0)
            return false;
        i += 1 + f;
    } else if (d == 0) {
        return false;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        d = span_digits(s, i, len);
        if (d == 0)
            return false;
        i += d;
    }
    return i == len;
}

/* A number: a YAML 1.2 core float, or an integer in any form get_i64 takes
 * (into *out). */
static int parse_double(const char *s, size_t len, double *out)
{
    static const char *const pinf[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninf[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    int64_t i;
    if (is_one_of(s, len, pinf) || is_one_of(s, len, ninf)) {
        *out = s[0] == '-' ? -HUGE_VAL : HUGE_VAL;
        return PARSE_OK;
    }
    if (is_one_of(s, len, nans)) {
        *out = NAN;
        return PARSE_OK;
    }
    if (!is_decimal_float(s, len)) {
        /* 0x and 0o integers; past 64 bits they are out of range */
        int rc = parse_i64(s, len, &i);
        if (rc == PARSE_OK)
            *out = (double)i;
        return rc;
    }
    /* s is NUL-terminated after len and holds no NUL (it matched above);
     * the C locale keeps '.' the decimal point whatever the program set. */
    locale_t cl = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (cl == (locale_t)0)
        return PARSE_BAD;
    double v = strtod_l(s, NULL, cl);
    freelocale(cl);
    if (isinf(v))
        return PARSE_RANGE;
    *out = v;
    return PARSE_OK;
}

int ag_config_get_double(ag_config *c, const ag_cnode *map, const char *key, bool required,
                         double *out)
{
    const ag_cnode *v = NULL;
    double x = 0;
    int rc = lookup(c, map, key, required, &v);
    if (rc <= 0)
        return rc;
    rc = plain_scalar(v) ? parse_double(v->text, v->len, &x) : PARSE_BAD;
    if (rc == PARSE_BAD)
        return type_error(c, v, key, "a number", true);
    if (rc == PARSE_RANGE)
        return range_error(c, v, key);
    *out = x;
    return 0;
}

int ag_config_get_bool(ag_config *c, const ag_cnode *map, const char *key, bool required, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", NULL};
    static const char *const no[] = {"false", "False", "FALSE", NULL};
    const ag_cnode *v = NULL;
    int rc = lookup(c, map, key, required, &v);
    if (rc <= 0)
        return rc;
    if (plain_scalar(v) && is_one_of(v->text, v->len, yes))
        *out = true;
    else if (plain_scalar(v) && is_one_of(v->text, v->len, no))
        *out = false;
    else
        return type_error(c, v, key, "a boolean (true or false)", true);
    return 0;
}

/* A count of units: digits then a unit from units (with its multiplier;
 * divisor for units below the result's, rounding up). */
struct unit {
    const char *name;
    uint64_t mul;
    uint64_t div;
};

static int parse_units(const char *s, size_t len, const struct unit *units, size_t nunits,
                       uint64_t *out)
{
    size_t d = span_digits(s, 0, len);
    uint64_t n;
    if (d == 0)
        return PARSE_BAD;
    for (size_t i = 0; i < nunits; i++) {
        const struct unit *u = &units[i];
        if (strlen(u->name) != len - d || memcmp(s + d, u->name, len - d) != 0)
            continue;
        int rc = parse_digits(s, d, 10, &n);
        if (rc < 0)
            return rc;
        if (u->div > 1) {
            *out = n / u->div + (n % u->div != 0);
            return PARSE_OK;
        }
        if (n > UINT64_MAX / u->mul)
            return PARSE_RANGE;
        *out = n * u->mul;
        return PARSE_OK;
    }
    return PARSE_BAD;
}

int ag_config_get_duration_ms(ag_config *c, const ag_cnode *map, const char *key, bool required,
                              uint64_t *out)
{
    static const struct unit units[] = {
        {"us", 1, 1000}, {"ms", 1, 1}, {"s", 1000, 1}, {"m", 60000, 1}, {"h", 3600000, 1},
    };
    const ag_cnode *v = NULL;
    uint64_t x = 0;
    int rc = lookup(c, map, key, required, &v);
    if (rc <= 0)
        return rc;
    if (!plain_scalar(v))
        rc = PARSE_BAD;
    else if (v->len == 1 && v->text[0] == '0')
        rc = PARSE_OK;
    else
        rc = parse_units(v->text, v->len, units, AG_ARRAY_LEN(units), &x);
    if (rc == PARSE_BAD)
        return type_error(c, v, key, "a duration (e.g. 500ms, 10s, 5m)", true);
    if (rc == PARSE_RANGE)
        return range_error(c, v, key);
    *out = x;
    return 0;
}

int ag_config_get_size(ag_config *c, const ag_cnode *map, const char *key, bool required,
                       uint64_t *out)
{
    static const struct unit units[] = {
        {"", 1, 1},
        {"B", 1, 1},
        {"KiB", (uint64_t)1 << 10, 1},
        {"MiB", (uint64_t)1 << 20, 1},
        {"GiB", (uint64_t)1 << 30, 1},
        {"TiB", (uint64_t)1 << 40, 1},
        {"K", (uint64_t)1 << 10, 1},
        {"M", (uint64_t)1 << 20, 1},
        {"G", (uint64_t)1 << 30, 1},
        {"T", (uint64_t)1 << 40, 1},
    };
    const ag_cnode *v = NULL;
    uint64_t x = 0;
    int rc = lookup(c, map, key, required, &v);
    if (rc <= 0)
        return rc;
    rc = plain_scalar(v) ? parse_units(v->text, v->len, units, AG_ARRAY_LEN(units), &x) : PARSE_BAD;
    if (rc == PARSE_BAD)
        return type_error(c, v, key, "a size (e.g. 512KiB, 64MiB)", true);
    if (rc == PARSE_RANGE)
        return range_error(c, v, key);
    *out = x;
    return 0;
}

int ag_config_get_str(ag_config *c, const ag_cnode *map, const char *key, bool required,
                      const char **out)
{
    const ag_cnode *v = NULL;
    int rc = lookup(c, map, key, required, &v);
    if (rc <= 0)
        return rc;
    if (v->type != AG_CNODE_SCALAR)
        return type_error(c, v, key, "a string", false);
    *out = v->text;
    return 0;
}

int ag_config_path_of(ag_config *c, const ag_cnode *n, const char *what, char *out, size_t cap)
{
    ag_cnode_type t = ag_cnode_type_of(n);
    if (t != AG_CNODE_SCALAR && t != AG_CNODE_NULL)
        return ag_config_errorf(c, n, AG_E_CONFIG_TYPE, "%s: expected a path", what);
    const char *v = ag_cnode_scalar(n);
    const char *name = ag_config_name(c), *slash = name ? strrchr(name, '/') : NULL;
    int len;
    if (v[0] == '/' || !slash)
        len = snprintf(out, cap, "%s", v);
    else
        len = snprintf(out, cap, "%.*s/%s", (int)(slash - name), name, v);
    if (len < 0 || (size_t)len >= cap)
        return ag_config_errorf(c, n, AG_E_CONFIG_VALUE, "%s: the path is longer than %zu bytes",
                                what, cap - 1);
    return 0;
}

int ag_config_get_path(ag_config *c, const ag_cnode *map, const char *key, bool required,
                       char *out, size_t cap)
{
    const char *v = NULL;
    int rc = ag_config_get_str(c, map, key, required, &v);
    if (rc < 0 || !v)
        return rc;
    return ag_config_path_of(c, ag_cnode_get(map, key), key, out, cap);
}

int ag_config_get_hostport(ag_config *c, const ag_cnode *map, const char *key, bool required,
                           char *out, size_t cap)
{
    const char *v = NULL;
    int rc = ag_config_get_str(c, map, key, required, &v);
    if (rc < 0 || !v)
        return rc;
    const char *colon = strrchr(v, ':');
    bool unix_path = strncmp(v, "unix:", 5) == 0 && v[5];
    if ((!unix_path && (!colon || colon == v || !colon[1])) || strlen(v) >= cap)
        return ag_config_errorf(c, ag_cnode_get(map, key), AG_E_CONFIG_VALUE,
                                "'%s' must be \"host:port\", got '%s'", key, v);
    snprintf(out, cap, "%s", v);
    return 0;
}

int ag_config_get_daemon(ag_config *c, const ag_cnode *root, ag_daemon_conf *d)
{
    static const char *const admin_keys[] = {"address", NULL};
    static const char *const log_keys[] = {"level", NULL};
    const ag_cnode *admin = NULL, *log = NULL;
    const char *level = NULL;
    int rc = ag_config_get_map(c, root, "admin", AG_OPTIONAL, &admin);
    if (rc == 0)
        rc = ag_config_check_keys(c, admin, admin_keys);
    if (rc == 0 && admin)
        rc = ag_config_get_hostport(c, admin, "address", AG_REQUIRED, d->admin,
                                    sizeof(d->admin));
    if (rc == 0)
        rc = ag_config_get_map(c, root, "log", AG_OPTIONAL, &log);
    if (rc == 0)
        rc = ag_config_check_keys(c, log, log_keys);
    if (rc == 0)
        rc = ag_config_get_str(c, log, "level", AG_OPTIONAL, &level);
    if (rc == 0 && level) {
        int l = ag_log_level_parse(level);
        if (l < 0)
            rc = ag_config_errorf(c, ag_cnode_get(log, "level"), AG_E_CONFIG_VALUE,
                                  "log level '%s' is not debug, info, warn, error or off",
                                  level);
        else
            d->log_level = l;
    }
    if (rc == 0)
        rc = ag_config_get_duration_ms(c, root, "shutdown_grace", AG_OPTIONAL,
                                       &d->shutdown_grace_ms);
    return rc;
}

/* A nested collection of the given type under key. */
static int get_collection(ag_config *c, const ag_cnode *map, const char *key, bool required,
                          ag_cnode_type type, const ag_cnode **out)
{
    const ag_cnode *v = NULL;
    int rc = lookup(c, map, key, required, &v);
    if (rc <= 0)
        return rc;
    if (v->type != type)
        return type_error(c, v, key, type == AG_CNODE_MAP ? "a mapping" : "a sequence", false);
    *out = v;
    return 0;
}

int ag_config_get_map(ag_config *c, const ag_cnode *map, const char *key, bool required,
                      const ag_cnode **out)
{
    return get_collection(c, map, key, required, AG_CNODE_MAP, out);
}

int ag_config_get_seq(ag_config *c, const ag_cnode *map, const char *key, bool required,
                      const ag_cnode **out)
{
    return get_collection(c, map, key, required, AG_CNODE_SEQ, out);
}

/* "(expected one of: a, b, c)" into out, cut to fit. */
static void expected_list(char *out, size_t cap, const char *const *known)
{
    size_t o = (size_t)snprintf(out, cap, "expected one of: ");
    for (const char *const *k = known; *k && o + 1 < cap; k++) {
        int w = snprintf(out + o, cap - o, "%s%s", k == known ? "" : ", ", *k);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (!known[0])
        snprintf(out, cap, "no keys are expected here");
}

int ag_config_check_keys(ag_config *c, const ag_cnode *map, const char *const *known)
{
    char name[NAME_CUT * 4 + 8], list[AG_ERRMSG_MAX];
    if (!map || map->type == AG_CNODE_NULL)
        return 0;
    if (map->type != AG_CNODE_MAP)
        return not_a_mapping(c, map);
    for (size_t i = 0; i < map->n; i++) {
        const ag_cnode *k = map->keys[i];
        if (strlen(k->text) == k->len && is_one_of(k->text, k->len, known))
            continue;
        render(name, sizeof(name), k->text, k->len, NAME_CUT);
        const char *near = strlen(k->text) == k->len ? ag_nearest(k->text, known) : NULL;
        if (near)
            return ag_config_errorf(c, k, AG_E_CONFIG_UNKNOWN_KEY,
                                    "unknown key '%s' (did you mean '%s'?)", name, near);
        expected_list(list, sizeof(list), known);
        return ag_config_errorf(c, k, AG_E_CONFIG_UNKNOWN_KEY, "unknown key '%s' (%s)", name, list);
    }
    return 0;
}
