/*
 * What namer.c, namer_fs.c, namer_dns.c and namer_etcd.c share (and the
 * fuzz targets for the fs file parser and the etcd value parser): the
 * namer object, the binding behind an ag__bound, the kinds' hooks, and
 * helpers for endpoints.
 *
 * Invariants:
 *   1. An ag__bound handed out is the first member of an ag__bnd, so the
 *      two pointers convert both ways.
 *   2. A binding is in its namer's list (n->bindings) exactly while it has
 *      a reference and its namer is alive (b->namer != NULL). The system
 *      bindings (/$) have no namer.
 *   3. A binding's state only changes through ag__bnd_set(), which bumps
 *      the version, logs one line and calls the watchers, and does nothing
 *      when the new state and addresses equal the current ones.
 *   4. The namer's memory outlives every libuv handle of it: n->closing
 *      counts handles whose close callback is still to come, and the namer
 *      is freed when it reaches 0 after ag__namer_free.
 * Everything runs on the loop's thread (but the etcd namer's worker, which
 * touches only the namer's impl: see namer_etcd.c).
 */
#ifndef ARGOT_MESH_NAMER_INT_H
#define ARGOT_MESH_NAMER_INT_H

#include "namer.h"

/* Longest file the fs namer reads, endpoints one binding may hold. */
#define AG__NAMER_FILE_MAX  (1024 * 1024)
#define AG__NAMER_ADDRS_MAX 10000
/* Longest host name (RFC 1035: 253 characters written out). */
#define AG__NAMER_HOST_MAX 253

typedef struct ag__bnd ag__bnd;

struct ag__watch {
    ag__bound_fn fn; /* NULL: unwatched during a notification, swept after */
    void *ud;
    ag__watch *next;
    ag__watch *prev;
};

struct ag__bnd {
    ag__bound pub;    /* first (invariant 1) */
    ag__namer *namer; /* NULL: a system binding, or its namer was freed */
    char *residual;   /* the key in the namer: "/users" */
    unsigned refs;
    unsigned notifying; /* depth of watcher calls under way */
    bool dead_watches;  /* some watcher has fn == NULL */
    ag__watch *watch_head;
    ag__watch *watch_tail;
    char *error;   /* last error while the last state is kept; NULL if none */
    void *impl;    /* the kind's per-binding state */
    ag__bnd *next; /* in namer->bindings */
    ag__bnd *prev;
};

/* A kind's hooks. bind_init sets the first state of a new binding (it is
 * already in the list, with one reference) and starts keeping it current;
 * 0 or AG_E_NOMEM (the binding is then dropped). bind_release is called
 * when the last reference goes while the namer lives: stop, free b->impl.
 * stop is called by ag__namer_free after every binding was detached
 * (their impl released through bind_release): close handles, counting
 * them in n->closing, and free what needs no close. destroy (may be NULL)
 * frees n->impl once every handle has closed. */
typedef struct ag__namer_ops {
    const char *kind;
    int (*bind_init)(ag__namer *n, ag__bnd *b);
    void (*bind_release)(ag__namer *n, ag__bnd *b);
    void (*stop)(ag__namer *n);
    void (*destroy)(ag__namer *n);
} ag__namer_ops;

struct ag__namer {
    const ag__namer_ops *ops;
    char *prefix; /* "/fs" */
    uv_loop_t *loop;
    ag__namer_stats stats;
    ag__bnd *bindings; /* live bindings, most recent first (a list: a mesh binds
                        * few distinct names, each once, and the router caches them) */
    unsigned closing;  /* libuv handles whose close callback is pending */
    bool freed;        /* ag__namer_free was called */
    void *impl;        /* the kind's state */
};

/* The kinds (static_ops lives in namer.c). */
extern const ag__namer_ops ag__namer_fs_ops;
extern const ag__namer_ops ag__namer_dns_ops;
extern const ag__namer_ops ag__namer_dnssrv_ops;
extern const ag__namer_ops ag__namer_etcd_ops;

/* ---- bindings (namer.c) ------------------------------------------------- */

static inline ag__bnd *ag__bnd_of(ag__bound *b)
{
    return (ag__bnd *)b;
}

/* Moves b to state st with addrs (ownership of addrs passes to b, or they
 * are freed; n may be 0 with addrs NULL) and why (copied; NULL for BOUND).
 * Sorts addrs and merges duplicates (weights added). No-op (0) if nothing
 * would change; else bumps the version, logs one line, calls the
 * watchers. 0 or AG_E_NOMEM (b unchanged). */
int ag__bnd_set(ag__bnd *b, ag__bind_state st, ag__addr *addrs, size_t n, const char *why);
/* Records (or clears, with NULL) the error that left b's state as it was;
 * shown in the JSON. Logs nothing. */
void ag__bnd_set_error(ag__bnd *b, const char *error);

/* A close callback for handles whose data is their namer: counts the close
 * down (invariant 4). Kinds with handles of their own free memory in their
 * own callbacks and then call ag__namer_closed(). */
void ag__namer_close_cb(uv_handle_t *h);
void ag__namer_closed(ag__namer *n);

/* ---- endpoints (namer.c) ------------------------------------------------ */

/* Is s (len bytes) a host we accept: an IPv4 or IPv6 literal (no brackets),
 * or a DNS name of letters, digits, '-', '_' and '.' (at most
 * AG__NAMER_HOST_MAX)? */
bool ag__host_valid(const char *s, size_t len);
/* A port "1".."65535" (decimal digits only); 0 if s is not one. */
uint16_t ag__port_parse(const char *s, size_t len);
/* A weight: decimal digits with an optional fraction ("2", "0.5"), > 0 and
 * finite; -1 if s is not one. */
double ag__weight_parse(const char *s, size_t len);
/* Splits a path "/a/b" into segments, storing the first max (borrowed
 * slices); a segment is one or more of [A-Za-z0-9] and "_:.#$%-" (dtab.h's
 * rule). Returns the number of segments (0 for "/" or "", possibly more
 * than max), or -1 if path is malformed. */
int ag__path_segments(const char *path, ag_slice *segs, int max);
/* Sorts by (host, port) and merges duplicates, adding their weights. */
void ag__addrs_normalize(ag__addr *a, size_t *n);
/* An endpoint tagged with where it came from (a line, a list index), to
 * report duplicates. ag__addrs_sort_at sorts by (host, port, at) and
 * returns the index i > 0 of an entry equal in (host, port) to entry i - 1
 * (the one with the smallest at), or 0 if there is none. */
typedef struct ag__addr_at {
    ag__addr a;
    size_t at;
} ag__addr_at;
size_t ag__addrs_sort_at(ag__addr_at *v, size_t n);
/* Appends "host:port*weight" ("[::1]:80*1" for IPv6) to out. */
int ag__addr_show(const ag__addr *a, ag_buf *out);

/* ---- fs (namer_fs.c) ---------------------------------------------------- */

/* Parses the text of an fs namer file (len bytes, any bytes; name is what
 * messages call it, "disco/users"): one endpoint per line, "host port
 * [weight]", fields separated by spaces or tabs, '#' starting a comment
 * (a whole line, or after the fields), blank lines skipped, LF or CRLF.
 * On success *out holds the endpoints sorted by (host, port) (NULL when
 * none) and *n their count. On error nothing is allocated and err holds
 * "disco/users:3: ...": AG_E_INVAL for a bad line or duplicate endpoint,
 * AG_E_TOO_LARGE past AG__NAMER_ADDRS_MAX endpoints, AG_E_NOMEM. */
int ag__fs_parse(const char *text, size_t len, const char *name, ag__addr **out, size_t *n,
                 ag_errbuf *err);

int ag__namer_fs_init(ag__namer *n, ag_config *c, const ag_cnode *node);

/* ---- dns (namer_dns.c) -------------------------------------------------- */

/* srv: the dnssrv kind. */
int ag__namer_dns_init(ag__namer *n, ag_config *c, const ag_cnode *node, bool srv);

/* ---- etcd (namer_etcd.c) ------------------------------------------------ */

int ag__namer_etcd_init(ag__namer *n, ag_config *c, const ag_cnode *node);
/* Parses one etcd value (len bytes, any bytes): "host:port [weight]"
 * ("[v6]:port") or "host port [weight]", blanks (space, tab, CR, LF)
 * around and between the fields, at most 512 bytes. 0 with *a filled (its
 * host allocated); AG_E_INVAL with *why (static text) set; AG_E_NOMEM. */
int ag__etcd_parse_value(const char *s, size_t len, ag__addr *a, const char **why);

#endif /* ARGOT_MESH_NAMER_INT_H */
