/*
 * Namers: what a bound name ("/#/fs/users", "/$/inet/127.0.0.1/8080")
 * resolves to, kept current (namer.c: the interface, bindings, the static
 * namer and /$/inet; namer_fs.c: files watched with inotify; namer_dns.c:
 * DNS through c-ares; namer_etcd.c: etcd's Watch stream). Everything here
 * runs on the mesh's loop thread (libuv); nothing blocks it (DNS is
 * asynchronous, files are small and read when inotify says they changed,
 * the etcd namer's blocking gRPC calls run on a thread of its own).
 *
 * A binding (ag__bound) is what a namer returns for a name: its state and,
 * when bound, its endpoints; watchers hear every change. A namer keeps one
 * binding per name (binding the same name twice returns the same object,
 * with one more reference) and keeps it current until its last reference
 * goes.
 *
 * Namers in the config (the mesh's YAML, linkerd 1.x's shape):
 *   namers:
 *     - {kind: fs, rootDir: disco}                  # prefix /fs
 *     - {kind: dns, prefix: /dns, servers: ["127.0.0.1:5353"]}
 *     - {kind: static, prefix: /static, services: {users: ["127.0.0.1:8080", "127.0.0.1:8081 2"]}}
 *     - {kind: etcd, endpoints: ["127.0.0.1:2379"], keyPrefix: /argot/services}
 * kind is fs, dns, dnssrv, static or etcd (io.l5d.fs, io.l5d.dns,
 * io.l5d.dnssrv, io.l5d.static and io.l5d.etcd are accepted too); prefix
 * defaults to "/" + kind as written ("/fs", "/io.l5d.fs"); a name "/#" +
 * prefix + "/rest" goes to that namer with the residual "/rest". Two namers
 * may not share a prefix.
 *
 *   fs      "/NAME[/...]": the file rootDir/NAME (rootDir relative to the
 *           config file). One endpoint per line, "host port [weight]"
 *           (weight a decimal > 0, default 1); blank lines and lines
 *           starting with '#' skipped. No file: negative. A file that cannot
 *           be parsed keeps the last good endpoints (the error is logged
 *           once per change with file:line and counted). Changes are seen
 *           through inotify on rootDir (edits, renames into it, deletions),
 *           debounced (50 ms after the last event, so an editor's burst of
 *           writes is one reload), and never polled.
 *   dns     "/HOST/PORT": A and AAAA records of HOST, each an endpoint on
 *           PORT. Re-resolved when the shortest TTL runs out (at least
 *           every minTtlMs, default 1000; at most maxTtlMs, default 300000).
 *           NXDOMAIN or no records: negative. A failed lookup (timeout,
 *           server failure) keeps the last endpoints and retries with
 *           backoff; failed only if there never were any.
 *   dnssrv  "/SRVNAME": SRV records ("_grpc._tcp.example.com"), each target
 *           resolved as dns does, endpoint weight = the record's weight
 *           (0 counted as 1); only the lowest priority value is used.
 *   static  "/NAME": the service NAME of `services`, each entry
 *           "host:port" or "host:port weight" ([v6]:port for IPv6).
 *   etcd    "/NAME[/...]": the keys under keyPrefix/NAME/ in etcd (v3 API,
 *           plaintext gRPC to `endpoints`, tried in turn; dialTimeoutMs,
 *           default 1000, bounds a connection attempt), each value one
 *           endpoint as static's or fs's ("host:port [weight]", "host port
 *           [weight]"). No key: negative; values that do not parse are
 *           skipped (all bad: kept as fs keeps a bad file). Kept current by
 *           a Watch from the revision read (changes seen as etcd sends
 *           them). etcd lost: every binding keeps its state and endpoints,
 *           its error says so, stats.disconnected_since_ms is set, and the
 *           namer reconnects (100 ms doubling to 5 s), reads again and
 *           watches again; failed if it never read keyPrefix.
 * Built in, without config: "/$/inet/HOST/PORT" is bound to HOST:PORT;
 * "/$/nil" is negative.
 *
 * Endpoint hosts are kept as written (an IP literal or a host name); the
 * proxy resolves names when it connects.
 */
#ifndef ARGOT_MESH_NAMER_H
#define ARGOT_MESH_NAMER_H

#include <uv.h>

#include "argot/base.h"

typedef struct ag__addr {
    char *host;      /* IP literal (no brackets) or host name */
    uint16_t port;   /* > 0 */
    double weight;   /* > 0 */
} ag__addr;

typedef enum ag__bind_state {
    AG__BIND_PENDING, /* not known yet (the first lookup is under way) */
    AG__BIND_BOUND,   /* addrs is current (maybe empty) */
    AG__BIND_NEG,     /* no such name: fall back */
    AG__BIND_FAILED,  /* could not be resolved; why says why */
} ag__bind_state;

typedef struct ag__bound ag__bound;
/* Read-only for everyone but its namer. */
struct ag__bound {
    char *id;             /* the bound name: "/#/fs/users" */
    ag__bind_state state;
    ag__addr *addrs;      /* BOUND: sorted by (host, port), no duplicates */
    size_t naddrs;
    char *why;            /* NEG / FAILED: for the admin page ("no file disco/users");
                           * NULL otherwise */
    uint64_t version;     /* bumped on every change of state or addrs */
    uint64_t changed_ms;  /* ag_now_ms() of the last change */
};

/* A watcher: called after b changed (on the loop thread). It may unwatch
 * itself or others, and unref b (the call stays valid until it returns). */
typedef void (*ag__bound_fn)(void *ud, ag__bound *b);
typedef struct ag__watch ag__watch;
/* NULL on allocation failure. */
ag__watch *ag__bound_watch(ag__bound *b, ag__bound_fn fn, void *ud);
void ag__bound_unwatch(ag__bound *b, ag__watch *w);
void ag__bound_ref(ag__bound *b);
/* At the last reference the namer stops keeping it current and frees it. */
void ag__bound_unref(ag__bound *b);

/* Copies n addresses into a new array (*out; n 0: NULL). 0 or AG_E_NOMEM. */
int ag__addrs_dup(const ag__addr *a, size_t n, ag__addr **out);
void ag__addrs_free(ag__addr *a, size_t n);

typedef struct ag__namer ag__namer;

/* A namer from one item of the config's `namers:` list; errors through the
 * config ("mesh.yaml:4:7: unknown namer kind 'zk'", "...: rootDir 'disco':
 * no such directory"). Created on the loop's thread, used there only. */
int ag__namer_new(ag_config *c, const ag_cnode *node, uv_loop_t *loop, ag__namer **out);
/* The prefix without "/#": "/fs". */
const char *ag__namer_prefix(const ag__namer *n);
const char *ag__namer_kind(const ag__namer *n);
/* The binding of residual (the bound name after "/#" + prefix: "/users"),
 * with a reference for the caller; NULL on allocation failure or a
 * residual the namer cannot take (then it returns a NEG binding instead,
 * with why saying so, whenever it has the memory). */
ag__bound *ag__namer_bind(ag__namer *n, const char *residual);
/* Stops every watch and lookup; bindings still referenced stay valid and
 * keep their last state, but change no more. Then frees. The loop must
 * run afterwards for libuv handles to close (ag__namer_free closes them
 * and the memory goes in their close callbacks). NULL does nothing. */
void ag__namer_free(ag__namer *n);
/* Appends a JSON object describing the namer and its live bindings
 * ({"kind":"fs","prefix":"/fs","bindings":[{"id":...,"state":"bound",
 * "addrs":["127.0.0.1:8080*1"],"why":null,"version":3}]}) to out. */
int ag__namer_json(const ag__namer *n, ag_buf *out);

/* Appends s as a JSON string (quoted, escaped; NULL: null). Invalid UTF-8 (a
 * message quoting a file's bytes) is shown byte by byte as \u00XX, so the
 * output is always valid JSON. The one JSON string writer of the mesh's
 * state pages (namers, balancers, routers). */
int ag__json_str(ag_buf *out, const char *s);

/* Counters every namer of a process adds to (the proxy exports them). */
typedef struct ag__namer_stats {
    uint64_t reloads;        /* fs: files re-read; dns: lookups completed */
    uint64_t errors;         /* fs: unparsable files; dns: failed lookups; etcd: failed
                              * attempts, broken streams and unparsable values */
    /* etcd: ag_now_ms() since when etcd is unreachable (the stream broke or
     * the first attempt failed); 0 while connected, before the first attempt
     * ended, and for the kinds that keep no connection. The mesh exports it
     * as "etcd lost" (nonzero) and for how long (now - it). */
    uint64_t disconnected_since_ms;
} ag__namer_stats;
void ag__namer_get_stats(const ag__namer *n, ag__namer_stats *out);

/* "/$/inet/HOST/PORT" and "/$/nil": a binding that never changes (the
 * residual after "/$"); NEG with why for anything else under /$. NULL on
 * allocation failure. */
ag__bound *ag__bound_system(const char *residual);

#endif /* ARGOT_MESH_NAMER_H */
