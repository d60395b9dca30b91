/*
 * What the mesh's files share: the parsed config (config.c), the running
 * gateway's objects (mesh.c), the transport every connection rides on
 * (xport.c), the router's naming, binding and balancing (router.c), and
 * the HTTP/2 and HTTP/1.1 proxies (h2proxy.c, h1proxy.c).
 *
 * Threads: one libuv loop thread runs everything here (listeners, both
 * sides of every proxied connection, namers, balancers, timers). The admin
 * endpoint runs on its own thread and reaches the loop by posting a task
 * and waiting for its answer (mesh.c); the metrics registry is
 * thread-safe.
 */
#ifndef ARGOT_MESH_INTERNAL_H
#define ARGOT_MESH_INTERNAL_H

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "argot/mesh.h"
#include "argot/rpc.h"
#include "balance.h"
#include "dtab.h"
#include "namer.h"
#include "../rpc/tls.h"

/* ---- config (config.c) ------------------------------------------------------------ */

typedef enum mesh_proto { MESH_H2, MESH_HTTP } mesh_proto;

/* What decides whether a response failed and whether a request may be
 * retried (linkerd's response classifiers). */
typedef enum mesh_classifier {
    CLASS_GRPC,            /* io.l5d.h2.grpc.default: UNAVAILABLE is retryable; other
                            * server errors fail; plain HTTP as IDEMPOTENT_5XX */
    CLASS_IDEMPOTENT_5XX,  /* io.l5d.http.retryableIdempotent5XX */
    CLASS_READ_5XX,        /* io.l5d.http.retryableRead5XX (GET, HEAD, OPTIONS, TRACE) */
    CLASS_NON_RETRYABLE,   /* io.l5d.http.nonRetryable5XX */
} mesh_classifier;

typedef struct mesh_tls_server {
    bool on;
    char cert[1024], key[1024], ca[1024]; /* ca "": no client certificates asked */
} mesh_tls_server;

typedef struct mesh_tls_client {
    bool on;
    char server_name[256];   /* commonName: the name the endpoint's certificate must carry */
    char ca[1024];           /* trustCerts ("": the system's trust store) */
    char cert[1024], key[1024]; /* clientAuth ("": none) */
} mesh_tls_client;

/* client: per bound name (linkerd's io.l5d.static configs: the last item
 * whose prefix matches applies, over the global values). */
typedef struct mesh_client_conf {
    char prefix[AG__PATH_MAX];   /* "" for the global one */
    ag__lb_conf lb;
    uint64_t connect_timeout_ms; /* default 1000 */
    mesh_tls_client tls;
} mesh_client_conf;

/* service: per request name (/svc/...). */
typedef struct mesh_service_conf {
    char prefix[AG__PATH_MAX];
    uint64_t total_timeout_ms;   /* 0: none */
    double budget_percent;       /* 0.2 */
    double budget_min_per_sec;   /* 10 */
    uint64_t budget_ttl_ms;      /* 10000 */
    unsigned max_attempts;       /* tries per request, retries included (default 10) */
    mesh_classifier classifier;
} mesh_service_conf;

typedef struct mesh_server_conf {
    char ip[64];
    int port;
    mesh_tls_server tls;
} mesh_server_conf;

/* One authorization rule: who (a party named by its certificate, "*"
 * anyone, "-" a caller without a certificate) may (or may not) call
 * what: a gRPC service and method ("*" any), or an HTTP path prefix. */
typedef struct mesh_rule {
    char party[128];
    char service[256];           /* "" with a path rule */
    char method[128];            /* "*": every method */
    char path[512];              /* "" with a service rule */
    char dst[AG__PATH_MAX];      /* the request's name must start with it ("": any) */
    bool allow;
    int line;                    /* in the config file, for the log */
} mesh_rule;

typedef struct mesh_authz {
    bool on;                     /* an authorization section was given */
    bool default_allow;          /* when no rule matches (default: deny) */
    mesh_rule *rules;
    size_t nrules;
} mesh_authz;

/* The rule deciding whether party (NULL: no certificate) may call path
 * (":path" or the request target) on the request name dst (its name by the
 * router's identifier, "/svc/bob"; NULL if it has none); NULL when none
 * matches (the default applies). authz.c, no I/O. */
const mesh_rule *mesh_authz_match(const mesh_authz *a, const char *party, const char *path,
                                  const char *dst);
/* true if the call may go on; *rule gets the deciding rule (or NULL). */
bool mesh_authz_allows(const mesh_authz *a, const char *party, const char *path,
                       const char *dst, const mesh_rule **rule);

typedef struct mesh_router_conf {
    mesh_proto proto;
    char label[64];
    ag__dtab *dtab;              /* owned */
    char *dtab_text;             /* as written */
    ag__ident ident;
    bool allow_dtab_override;    /* honour l5d-dtab from clients */
    mesh_server_conf *servers;
    size_t nservers;
    mesh_client_conf *clients;   /* [0] global, then the prefixed ones in order */
    size_t nclients;
    mesh_service_conf *services; /* [0] global, then the prefixed ones */
    size_t nservices;
    size_t max_header_bytes;     /* request header block (default 16 KiB): 431 past it */
    unsigned max_streams;        /* h2: concurrent streams per downstream connection (1000) */
    uint32_t stream_window;      /* h2: bytes buffered per stream and direction (256 KiB) */
    char access_log[1024];       /* "": none; "-": stderr */
    uint64_t header_timeout_ms;  /* http: first byte of a request to its last header (10 s) */
    uint64_t idle_timeout_ms;    /* a client connection idle (http: between requests; h2:
                                  * without a stream) this long closes (120 s; 0: never) */
    /* the verified client certificate's name goes to the endpoint in this
     * header (any such header from the client is dropped first) */
    char identity_header[64];    /* default "l5d-client-id" */
    mesh_authz authz;
} mesh_router_conf;

typedef struct mesh_conf {
    int refs;                    /* the mesh's, and each router's made from it */
    char path[1024];             /* the config file */
    ag_config *cfg;              /* kept for the namers' nodes until they are made */
    char admin_ip[64];
    int admin_port;              /* default 9990; -1: none */
    int log_level;               /* -1: leave as is */
    uint64_t shutdown_grace_ms;
    const ag_cnode **namer_nodes;
    size_t nnamers;
    mesh_router_conf *routers;
    size_t nrouters;
} mesh_conf;

/* Reads and checks the file; errors as "mesh.yaml:7:5: why" in err. */
int mesh_conf_load(const char *path, mesh_conf **out, char *err, size_t cap);
void mesh_conf_free(mesh_conf *c);
/* The client / service settings for a bound name / a request name. */
const mesh_client_conf *mesh_client_for(const mesh_router_conf *r, const char *bound);
const mesh_service_conf *mesh_service_for(const mesh_router_conf *r, const char *name);
bool mesh_path_has_prefix(const char *path, const char *prefix);

/* ---- transport (xport.c) -------------------------------------------------------- */
/*
 * One TCP connection, plaintext or TLS, carrying a protocol core's bytes:
 * what is read goes to ops->recv (decrypted), what the core has to say is
 * pulled with ops->produce whenever the transport can write (one write in
 * flight; uv_try_write first, so a small answer leaves at once).
 */
typedef struct xport xport;
typedef struct xport_ops {
    int (*recv)(xport *x, const uint8_t *p, size_t n);  /* < 0: close */
    int (*produce)(xport *x, ag_buf *out);              /* appends; < 0: close */
    void (*up)(xport *x);                               /* connected (and TLS done) */
    void (*closed)(xport *x, const char *why);          /* last call */
} xport_ops;

struct xport {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_timer_t timer;            /* connect / handshake timeout */
    uv_write_t wreq;
    ag_buf wbuf;                 /* bytes being written */
    ag_buf pbuf;                 /* TLS: plaintext produced, before encryption */
    ag__tls *tls;
    const xport_ops *ops;
    void *owner;
    bool client;
    bool connected;
    bool secure;                 /* no TLS, or its handshake done */
    bool writing;
    bool paused;                 /* reads stopped by the owner */
    bool closing;
    bool drain;                  /* close once the output is written */
    bool timer_on;
    bool quickack;               /* re-arm TCP_QUICKACK after each read (see xport.c) */
    void (*timeout_fn)(xport *x); /* the owner's timer (xport_set_timeout) */
    int handles;
    const ag__tls_ctx *cctx;     /* client: TLS to start once connected */
    uint64_t ctimeout_ms;        /* client: the connect (and handshake) timeout */
    struct resolve *resolving;   /* client: a host name lookup under way */
    struct xport *mnext, *mprev; /* in the list of transports to flush */
    bool marked;
    char why[160];
    char peer[80];               /* "127.0.0.1:4140" */
};

void xport_init(xport *x, uv_loop_t *loop, const xport_ops *ops, void *owner);
/* Accepts a connection from a listener; tls_ctx NULL: plaintext. */
int xport_accept(xport *x, uv_stream_t *listener, const ag__tls_ctx *tls_ctx,
                 uint64_t handshake_timeout_ms);
/* Connects to host:port (an IP literal; host names are resolved first,
 * asynchronously); closed(why) on failure, up() on success. */
int xport_connect(xport *x, const char *host, uint16_t port, const ag__tls_ctx *tls_ctx,
                  uint64_t timeout_ms);
void xport_flush(xport *x);
/* Flushes x at the end of this loop turn (xport_flush_marked, from the
 * mesh's check handle): for a transport whose core got something to say
 * while another one's callbacks ran, without nesting one core's output in
 * another's. */
void xport_mark(xport *x);
void xport_flush_marked(void);
/* Once connected (TLS done): calls fn(x) after ms unless set again first;
 * fn NULL or ms 0 stops it. One timer per transport: the owner's. */
void xport_set_timeout(xport *x, uint64_t ms, void (*fn)(xport *x));
void xport_pause(xport *x, bool paused);
/* Closes now (why is reported to closed). */
void xport_close(xport *x, const char *why);
/* Closes once what is produced is written. */
void xport_drain(xport *x);
/* Mutual TLS: the client certificate's name; NULL without one. */
const char *xport_peer_identity(const xport *x);

/* ---- the gateway (mesh.c) ------------------------------------------------------- */

typedef struct mesh_router mesh_router;
typedef struct mesh_cluster mesh_cluster;

/* A fixed histogram of latencies for the admin page's percentiles. */
#define LAT_BUCKETS 48
typedef struct lat_hist {
    uint64_t n;
    uint64_t b[LAT_BUCKETS];     /* bucket i: up to 2^(i/2) * 10 us */
} lat_hist;
void lat_add(lat_hist *h, double ms);
double lat_quantile(const lat_hist *h, double q);

/* A service the router sends to: one bound name, its endpoints and their
 * balancer (router.c). */
struct mesh_cluster {
    mesh_router *rt;
    char *id;                    /* "/#/fs/users" */
    ag__bound *bound;
    ag__watch *watch;
    ag__lb *lb;
    const mesh_client_conf *cc;
    ag__tls_ctx *tls;            /* TLS origination, or NULL */
    uint64_t last_used_ms;
    unsigned refs;               /* requests routed to it, not yet over */
    uint64_t requests, successes, failures;
    lat_hist lat;
    struct mesh_cluster *next;
};

/* One listener of a router. */
typedef struct mesh_listener {
    mesh_router *rt;
    uv_tcp_t tcp;
    char ip[64];                 /* as configured */
    int cport;                   /* as configured (0: the kernel picked port) */
    ag__tls_ctx *tls;
    int port;                    /* bound */
    bool closing;
    struct mesh_listener *next;
} mesh_listener;

/* A cached delegation of a request name. */
typedef struct name_entry {
    char *name;
    ag__ntree *tree;             /* NULL: delegation failed (err) */
    char *err;
    uint32_t *rr;                /* smooth round robin state of unions: one per node */
    double *cur;
    struct name_entry *next;
} name_entry;

struct mesh_router {
    struct ag_mesh *m;
    struct mesh_conf *conf;      /* a reference: rc lives in it */
    mesh_router_conf *rc;
    mesh_listener *listeners;
    mesh_cluster *clusters;
    name_entry *names[256];      /* by hash */
    size_t nnames;
    ag__budget budget;
    uint64_t requests, retries, budget_exhausted;
    FILE *access_log;
    /* downstream connections (h2proxy.c / h1proxy.c lists) */
    void *conns;
    size_t nconns;
    bool retired;                /* replaced by a reload: drain, then free */
    struct mesh_router *next_retired;
};

struct ag_mesh {
    uv_loop_t loop;
    bool loop_init, loop_closed;
    uv_async_t wake;
    uv_check_t check;            /* flushes the transports marked during the turn */
    uv_timer_t conf_timer;       /* debounces changes of the config file */
    uv_fs_event_t conf_watch;
    char conf_path_abs[4096];
    bool stop_loop;
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    struct mesh_task *tasks;     /* under mu */
    mesh_conf *conf;
    mesh_router **routers;       /* one per router of conf, in order */
    size_t nrouters;
    mesh_router *retired;        /* old routers draining after a reload */
    ag__namer **namers;
    size_t nnamers;
    ag_metrics *metrics;
    ag_admin *admin;
    uv_timer_t tick;             /* 1 s: reaping idle clusters, retired routers */
    uint64_t reloads, reload_failures;
    char last_reload_error[AG_ERRMSG_MAX];
    bool stopping;
    struct {
        ag_metric *requests, *responses, *latency, *retries, *budget_exhausted,
            *conns, *reloads, *namer_reloads, *denied, *ep_conns, *namer_up, *namer_down,
            *namer_errors;
    } mt;
    ag_errbuf err;
};

/* Runs fn(arg) on the loop thread and waits for it (mesh.c). */
int mesh_run_on_loop(struct ag_mesh *m, void (*fn)(void *), void *arg);

/* ---- routing (router.c) -------------------------------------------------------------- */

/* What a request was routed to. */
typedef struct mesh_route {
    char name[AG__PATH_MAX];     /* /svc/... */
    mesh_cluster *cl;
    const mesh_service_conf *sc;
} mesh_route;

/* Names a request by the router's identifier: 0 with r->name and r->sc
 * set, or AG_E_MESH_ROUTE with why for the client (404 / UNIMPLEMENTED). */
int mesh_name_request(mesh_router *rt, const ag__req_view *req, mesh_route *r, char *why,
                      size_t cap);
/* Binds the named request r: 0 with r->cl set; AG_E_MESH_ROUTE (no route:
 * 404 / UNIMPLEMENTED), AG_E_MESH_UNAVAILABLE (bound to nothing usable:
 * 503 / UNAVAILABLE) or AG_E_AGAIN (its binding is pending) with why for
 * the client. override: the l5d-dtab header's value when allowed, else
 * NULL. */
int mesh_route_request(mesh_router *rt, const char *override, mesh_route *r, char *why,
                       size_t cap);
/* Whether party (a verified client certificate's name, NULL: none) may
 * make this request (path; dst its name, NULL if it has none): true, or
 * false with why for the client (the refusal is logged, naming party and
 * rule, and counted). */
bool mesh_authorize(mesh_router *rt, const char *party, const char *path, const char *dst,
                    char *why, size_t cap);
/* GET, HEAD, OPTIONS, TRACE, PUT, DELETE: a repeat does no more than once. */
bool mesh_idempotent(const char *method);
/* Whether the service's response classifier lets an answer be retried:
 * grpc_status >= 0 (a gRPC request's status) or else the HTTP status. */
bool mesh_retryable(const mesh_service_conf *sc, const char *method, int grpc_status,
                    int status);
/* (Re)starts the timer *t (made on first use, data ud) to call fn after
 * ms; false without memory. Whoever holds *t closes it (uv_close). */
bool mesh_timer_arm(struct ag_mesh *m, uv_timer_t **t, void *ud, uv_timer_cb fn, uint64_t ms);
void mesh_router_free(mesh_router *rt);
int mesh_router_json(mesh_router *rt, ag_buf *out);
/* The admin page's resolver: the delegation trace and the binding. */
int mesh_router_resolve(mesh_router *rt, const char *path, const char *dtab_extra, ag_buf *out);
/* Drops clusters unused for a minute (their bindings and connections). */
void mesh_router_sweep(mesh_router *rt, uint64_t now_ms);

/* An endpoint's connections (ep->user; epc.c): the proxy's connections
 * (conns, a list it walks through ops), the background reconnect while
 * the endpoint is down, and its end once it left the service (gone) and
 * nothing holds it (refs: requests whose attempt picked it). */
typedef struct mesh_epc mesh_epc;
typedef struct mesh_conn_ops {
    void *(*next)(void *conn);    /* the next connection of the list */
    bool (*busy)(void *conn);     /* it carries a request */
    void (*drop)(void *conn);     /* forget the epc (conn's epc = NULL) and close it */
    void *(*open)(mesh_epc *e);   /* a new connection (added to e->conns); its up
                                   * calls mesh_epc_up */
} mesh_conn_ops;
struct mesh_epc {
    mesh_cluster *cl;
    ag__ep *ep;
    const mesh_conn_ops *ops;
    void *conns;
    uv_timer_t retry;        /* background reconnect while the endpoint is down */
    bool retry_on;
    uint64_t backoff_ms;
    bool gone;
    bool freeing;
    unsigned refs;
};
extern const mesh_conn_ops mesh_h2_conn_ops, mesh_h1_conn_ops;
mesh_epc *mesh_epc_get(mesh_cluster *cl, ag__ep *ep);
/* The balancer removed ep (its `gone` callback). */
void mesh_epc_gone(mesh_cluster *cl, ag__ep *ep);
/* A connection could not be made / one was: down (and reconnect later) / up. */
void mesh_epc_down(mesh_epc *e);
void mesh_epc_up(mesh_epc *e);
/* Drops a request's reference; frees a gone endpoint nothing holds. */
void mesh_epc_release(mesh_epc *e);
/* Frees e if it is gone and nothing holds it (after a connection's request ended). */
void mesh_epc_check(mesh_epc *e);

/* ---- proxies ---------------------------------------------------------------------- */

/* A new downstream connection on a listener (h2proxy.c / h1proxy.c). */
void mesh_h2_accept(mesh_listener *l);
void mesh_h1_accept(mesh_listener *l);
/* Graceful drain of a router's downstream connections (GOAWAY /
 * Connection: close after the response in flight). */
void mesh_h2_drain(mesh_router *rt);
void mesh_h1_drain(mesh_router *rt);
/* Closes every downstream connection at once (the grace is over). */
void mesh_h2_close_all(mesh_router *rt);
void mesh_h1_close_all(mesh_router *rt);

/* Records one finished request (metrics, page, access log). */
void mesh_record(mesh_router *rt, const char *name, mesh_cluster *cl, const char *endpoint,
                 double ms, bool success, const char *method, const char *path, int status);

#endif /* ARGOT_MESH_INTERNAL_H */
