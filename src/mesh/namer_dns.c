/*
 * The dns and dnssrv namers: names resolved through c-ares, on the loop.
 *
 *   dns     "/HOST/PORT[/...]": A and AAAA records of HOST, each an
 *           endpoint HOST-ADDRESS:PORT of weight 1. An IP literal HOST is
 *           bound at once and never looked up.
 *   dnssrv  "/SRVNAME[/...]": the SRV records of SRVNAME with the lowest
 *           priority value; each target's A and AAAA records are endpoints
 *           on the record's port, weighted by the record's weight (0 counts
 *           as 1; a target named twice adds up).
 *
 * c-ares on libuv. Each namer has one c-ares channel. c-ares tells which
 * sockets it wants watched through its socket-state callback: one uv_poll_t
 * per socket, started with the events asked for, stopped and closed when it
 * asks for none (it does so before it closes the socket). A uv_timer_t runs
 * c-ares's own timeouts (ares_timeout) and is stopped when no query is
 * outstanding, so an idle channel costs nothing.
 *
 * Lookups. A binding has at most one lookup in flight (a dns_lookup: its
 * queries, the endpoints gathered, the shortest TTL seen) and a refresh
 * timer. When the lookup ends:
 *   endpoints found           -> BOUND; next lookup when the shortest TTL
 *                                runs out, clamped to [minTtlMs, maxTtlMs]
 *   NXDOMAIN / no records     -> NEG; next lookup after NEG_TTL_MS clamped
 *                                likewise (ares_search hands back no answer
 *                                for a negative result, so the SOA's
 *                                negative TTL is not available)
 *   a query failed (timeout,  -> the last state is kept (BOUND stays BOUND
 *   SERVFAIL, refused...)        with its endpoints); FAILED only if there
 *                                never was one; retried after minTtlMs,
 *                                doubling per consecutive failure up to
 *                                RETRY_MAX_MS (and maxTtlMs). Logged once
 *                                when failures start and once when they end.
 * Queries use ares_search, so short names get the resolver's search
 * domains as getaddrinfo would. Each query waits QUERY_TIMEOUT_MS, then
 * 2 x that on the second try (c-ares doubles per round over the servers).
 *
 * Reentrancy. Query callbacks run inside c-ares (ares_process_fd,
 * ares_search, ares_destroy) and call watchers, which may release
 * bindings or free the namer. So: a lookup whose binding was released
 * only drops its results; ag__namer_free during a c-ares call defers
 * ares_destroy until the outermost c-ares call returns (in_ares counts
 * them, and a hold on n->closing keeps the namer's memory); callbacks
 * that ares_destroy makes (ARES_EDESTRUCTION) change nothing.
 *
 * Loop thread only.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "namer_int.h"

#define QUERY_TIMEOUT_MS 1000
#define QUERY_TRIES      2
#define NEG_TTL_MS       5000
#define RETRY_MAX_MS     30000
/* Records read from one answer, SRV targets followed in one lookup. */
#define MAX_RECORDS 256
#define MAX_TARGETS 64

typedef struct dns_poll dns_poll;
struct dns_poll {
    uv_poll_t h; /* data: this */
    ag__namer *n;
    ares_socket_t fd;
    dns_poll *next;
};

typedef struct dns_impl {
    bool srv; /* the dnssrv kind */
    uint64_t min_ttl_ms;
    uint64_t max_ttl_ms;
    ares_channel ch;
    bool lib_init;    /* ares_library_init succeeded */
    bool ch_init;     /* ch is live */
    uv_timer_t timer; /* c-ares's timeouts; data: the namer */
    bool timer_init;
    dns_poll *polls;
    unsigned in_ares; /* c-ares calls under way (nested) */
    bool stopping;    /* ag__namer_free was called */
    bool shut;        /* ares_destroy done */
} dns_impl;

typedef struct dns_lookup dns_lookup;

typedef struct dns_bind {
    ag__namer *n;
    ag__bnd *b;
    bool valid;                        /* the residual is a name we look up */
    char host[AG__NAMER_HOST_MAX + 1]; /* dns: HOST; dnssrv: SRVNAME */
    uint16_t port;                     /* dns */
    uv_timer_t refresh;                /* next lookup; data: this */
    bool refresh_init;
    dns_lookup *lookup; /* in flight, or NULL */
    unsigned failures;  /* consecutive failed lookups */
} dns_bind;

struct dns_lookup {
    ag__namer *n;
    dns_bind *db;     /* NULL once the binding was released: drop the results */
    unsigned pending; /* queries outstanding */
    ag__addr *addrs;
    size_t naddrs;
    size_t cap;
    uint64_t ttl_s;   /* shortest TTL of what was used (UINT64_MAX: none) */
    unsigned targets; /* dnssrv: targets followed */
    bool failed;      /* some query failed (not NXDOMAIN, not no-data) */
    bool nomem;
    char why[384]; /* the first failure, or why nothing was found */
};

typedef struct dns_query {
    dns_lookup *l;
    int type; /* ns_t_a, ns_t_aaaa, ns_t_srv */
    uint16_t port;
    double weight;
} dns_query;

static void lookup_start(dns_bind *db);

/* ------------------------------------------------------------------------ */
/* c-ares on the loop                                                        */
/* ------------------------------------------------------------------------ */

static void on_ares_timer(uv_timer_t *t);

/* Starts (or stops) the timeout timer from what c-ares waits for. */
static void arm_timer(dns_impl *di)
{
    struct timeval tv, *t = ares_timeout(di->ch, NULL, &tv);
    if (!t) {
        uv_timer_stop(&di->timer);
        return;
    }
    uint64_t ms = (uint64_t)t->tv_sec * 1000 + ((uint64_t)t->tv_usec + 999) / 1000;
    uv_timer_start(&di->timer, on_ares_timer, ms, 0);
}

static void poll_close_cb(uv_handle_t *h)
{
    dns_poll *p = h->data;
    ag__namer *n = p->n;
    ag_free(p);
    ag__namer_closed(n);
}

static void poll_close(ag__namer *n, dns_poll *p)
{
    n->closing++;
    uv_close((uv_handle_t *)&p->h, poll_close_cb);
}

/* Destroys the channel (its queries end with ARES_EDESTRUCTION) and closes
 * every handle. */
static void shutdown_channel(ag__namer *n)
{
    dns_impl *di = n->impl;
    di->shut = true;
    if (di->ch_init) {
        di->in_ares++;
        ares_destroy(di->ch);
        di->in_ares--;
        di->ch_init = false;
    }
    while (di->polls) {
        dns_poll *p = di->polls;
        di->polls = p->next;
        poll_close(n, p);
    }
    if (di->timer_init) {
        n->closing++;
        uv_close((uv_handle_t *)&di->timer, ag__namer_close_cb);
        di->timer_init = false;
    }
    if (di->lib_init) {
        ares_library_cleanup();
        di->lib_init = false;
    }
}

static void ares_enter(dns_impl *di)
{
    di->in_ares++;
}

/* Ends a c-ares call. Returns false when the namer is stopping (then the
 * caller touches nothing more: the namer may be gone). */
static bool ares_leave(ag__namer *n)
{
    dns_impl *di = n->impl;
    di->in_ares--;
    if (!di->stopping) {
        if (di->in_ares == 0)
            arm_timer(di);
        return true;
    }
    if (di->in_ares == 0 && !di->shut) {
        shutdown_channel(n);
        ag__namer_closed(n); /* the hold dns_stop took */
    }
    return false;
}

static void on_ares_timer(uv_timer_t *t)
{
    ag__namer *n = t->data;
    dns_impl *di = n->impl;
    ares_enter(di);
    ares_process_fd(di->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    ares_leave(n);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    dns_poll *p = h->data;
    ag__namer *n = p->n;
    dns_impl *di = n->impl;
    ares_socket_t fd = p->fd, rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
    if (status < 0 || (events & UV_READABLE))
        rfd = fd;
    if (status < 0 || (events & UV_WRITABLE))
        wfd = fd;
    /* p may be closed from inside (c-ares closing the socket). */
    ares_enter(di);
    ares_process_fd(di->ch, rfd, wfd);
    ares_leave(n);
}

/* c-ares's socket-state callback: watch fd for what it asks, or stop. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    ag__namer *n = data;
    dns_impl *di = n->impl;
    dns_poll **pp = &di->polls;
    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    dns_poll *p = *pp;
    if (!readable && !writable) {
        if (p) {
            *pp = p->next;
            poll_close(n, p);
        }
        return;
    }
    if (!p) {
        p = ag_calloc(1, sizeof(*p));
        if (!p)
            return; /* the query times out and fails like any other */
        int rc = uv_poll_init_socket(n->loop, &p->h, fd);
        if (rc < 0) {
            AG_LOG(AG_LOG_ERROR, "mesh", "namer_dns_poll fd=%d error=\"%s\"", (int)fd,
                   uv_strerror(rc));
            ag_free(p);
            return;
        }
        p->h.data = p;
        p->n = n;
        p->fd = fd;
        p->next = di->polls;
        di->polls = p;
    }
    uv_poll_start(&p->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

/* ------------------------------------------------------------------------ */
/* Answers                                                                   */
/* ------------------------------------------------------------------------ */

/* Skips the (possibly compressed) name at *off of the message m. */
static bool skip_name(const unsigned char *m, int len, int *off)
{
    int o = *off;
    while (o < len) {
        unsigned c = m[o];
        if (c == 0) {
            *off = o + 1;
            return true;
        }
        if ((c & 0xc0) == 0xc0) {
            if (o + 2 > len)
                return false;
            *off = o + 2;
            return true;
        }
        if (c & 0xc0)
            return false;
        o += 1 + (int)c;
    }
    return false;
}

/* The shortest TTL (seconds) of the answer records of type type in the
 * message m; UINT64_MAX if none or malformed. (ares_parse_srv_reply gives
 * no TTLs, so SRV answers are walked here.) */
static uint64_t answer_ttl(const unsigned char *m, int len, int type)
{
    uint64_t ttl = UINT64_MAX;
    if (!m || len < 12)
        return ttl;
    int qd = m[4] << 8 | m[5], an = m[6] << 8 | m[7], off = 12;
    for (int i = 0; i < qd; i++) {
        if (!skip_name(m, len, &off))
            return UINT64_MAX;
        off += 4;
    }
    for (int i = 0; i < an; i++) {
        if (!skip_name(m, len, &off) || off + 10 > len)
            return ttl;
        const unsigned char *r = m + off;
        int t = r[0] << 8 | r[1], rdlen = r[8] << 8 | r[9];
        /* RFC 2181 8: a TTL with the top bit set counts as 0. */
        uint64_t rttl = (uint64_t)r[4] << 24 | (uint64_t)r[5] << 16 | (uint64_t)r[6] << 8 | r[7];
        if (rttl > 0x7fffffffu)
            rttl = 0;
        if (t == type && rttl < ttl)
            ttl = rttl;
        off += 10 + rdlen;
    }
    return ttl;
}

static void lookup_fail(dns_lookup *l, const char *what, const char *name, int status)
{
    if (!l->failed)
        snprintf(l->why, sizeof(l->why), "%s %s: %s", what, name, ares_strerror(status));
    l->failed = true;
}

static void lookup_add(dns_lookup *l, const char *ip, uint16_t port, double weight, uint64_t ttl)
{
    if (l->naddrs == AG__NAMER_ADDRS_MAX)
        return;
    if (l->naddrs == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        ag__addr *a = ag_reallocarray(l->addrs, cap, sizeof(*a));
        if (!a) {
            l->nomem = true;
            return;
        }
        l->addrs = a;
        l->cap = cap;
    }
    ag__addr *a = &l->addrs[l->naddrs];
    a->host = ag_strdup(ip);
    if (!a->host) {
        l->nomem = true;
        return;
    }
    a->port = port;
    a->weight = weight;
    l->naddrs++;
    if (ttl < l->ttl_s)
        l->ttl_s = ttl;
}

static void add_a(dns_lookup *l, const dns_query *q, const unsigned char *abuf, int alen)
{
    struct ares_addrttl ttls[MAX_RECORDS];
    int nt = MAX_RECORDS;
    if (ares_parse_a_reply(abuf, alen, NULL, ttls, &nt) != ARES_SUCCESS)
        return; /* a CNAME without addresses: no records */
    for (int i = 0; i < nt; i++) {
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &ttls[i].ipaddr, ip, sizeof(ip));
        lookup_add(l, ip, q->port, q->weight, ttls[i].ttl < 0 ? 0 : (uint64_t)ttls[i].ttl);
    }
}

static void add_aaaa(dns_lookup *l, const dns_query *q, const unsigned char *abuf, int alen)
{
    struct ares_addr6ttl ttls[MAX_RECORDS];
    int nt = MAX_RECORDS;
    if (ares_parse_aaaa_reply(abuf, alen, NULL, ttls, &nt) != ARES_SUCCESS)
        return;
    for (int i = 0; i < nt; i++) {
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &ttls[i].ip6addr, ip, sizeof(ip));
        lookup_add(l, ip, q->port, q->weight, ttls[i].ttl < 0 ? 0 : (uint64_t)ttls[i].ttl);
    }
}

static void query_send(dns_lookup *l, const char *name, int type, uint16_t port, double weight);

/* An SRV answer: a query pair per target of the lowest priority value. */
static void add_srv(dns_lookup *l, const char *name, const unsigned char *abuf, int alen)
{
    struct ares_srv_reply *srv = NULL;
    int rc = ares_parse_srv_reply(abuf, alen, &srv);
    if (rc == ARES_ENODATA)
        return;
    if (rc != ARES_SUCCESS) {
        lookup_fail(l, "SRV", name, rc);
        return;
    }
    unsigned best = 65536;
    for (struct ares_srv_reply *r = srv; r; r = r->next) {
        if (r->priority < best)
            best = r->priority;
    }
    uint64_t ttl = answer_ttl(abuf, alen, ns_t_srv);
    if (ttl < l->ttl_s)
        l->ttl_s = ttl;
    for (struct ares_srv_reply *r = srv; r; r = r->next) {
        /* "." is RFC 2782's "no such service here". */
        if (r->priority != best || r->port == 0 || !r->host[0] || strcmp(r->host, ".") == 0)
            continue;
        if (l->targets == MAX_TARGETS)
            break;
        l->targets++;
        double w = r->weight ? r->weight : 1;
        query_send(l, r->host, ns_t_a, r->port, w);
        query_send(l, r->host, ns_t_aaaa, r->port, w);
    }
    ares_free_data(srv);
}

static void lookup_done(dns_lookup *l);

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    dns_query *q = arg;
    dns_lookup *l = q->l;
    dns_impl *di = l->n->impl;
    (void)timeouts;
    const char *tname = q->type == ns_t_a ? "A" : q->type == ns_t_aaaa ? "AAAA" : "SRV";
    if (status == ARES_SUCCESS && l->db && !di->stopping) {
        if (q->type == ns_t_a)
            add_a(l, q, abuf, alen);
        else if (q->type == ns_t_aaaa)
            add_aaaa(l, q, abuf, alen);
        else
            add_srv(l, l->db->host, abuf, alen);
    } else if (status != ARES_SUCCESS && status != ARES_ENOTFOUND && status != ARES_ENODATA) {
        lookup_fail(l, tname, l->db ? l->db->host : "?", status);
    }
    ag_free(q);
    if (--l->pending == 0)
        lookup_done(l);
}

static void query_send(dns_lookup *l, const char *name, int type, uint16_t port, double weight)
{
    dns_impl *di = l->n->impl;
    dns_query *q = ag_calloc(1, sizeof(*q));
    if (!q) {
        l->nomem = true;
        return;
    }
    q->l = l;
    q->type = type;
    q->port = port;
    q->weight = weight;
    l->pending++;
    ares_search(di->ch, name, ns_c_in, type, on_answer, q);
}

/* ------------------------------------------------------------------------ */
/* Lookups                                                                   */
/* ------------------------------------------------------------------------ */

static uint64_t clamp_ms(const dns_impl *di, uint64_t ms)
{
    return AG_MAX(di->min_ttl_ms, AG_MIN(ms, di->max_ttl_ms));
}

static void on_refresh(uv_timer_t *t)
{
    lookup_start(t->data);
}

/* A lookup ended (all its queries answered): moves the binding, schedules
 * the next lookup, frees l. */
static void lookup_done(dns_lookup *l)
{
    ag__namer *n = l->n;
    dns_impl *di = n->impl;
    dns_bind *db = l->db;
    if (!db || di->stopping) {
        ag__addrs_free(l->addrs, l->naddrs);
        ag_free(l);
        return;
    }
    ag__bnd *b = db->b;
    db->lookup = NULL;
    n->stats.reloads++;
    if (l->nomem && !l->failed) {
        l->failed = true;
        snprintf(l->why, sizeof(l->why), "%s: out of memory", db->host);
    }
    ag__bind_state st;
    uint64_t delay;
    char why[sizeof(l->why)];
    snprintf(why, sizeof(why), "%s", l->why);
    bool keep = false;
    if (l->failed) {
        n->stats.errors++;
        db->failures++;
        unsigned shift = AG_MIN(db->failures - 1, 16u);
        delay = AG_MIN(di->min_ttl_ms << shift,
                       AG_MAX(di->min_ttl_ms, AG_MIN(di->max_ttl_ms, (uint64_t)RETRY_MAX_MS)));
        if (db->failures == 1)
            AG_LOG(AG_LOG_WARN, "mesh",
                   "namer_dns_error id=%s kept=%s retry_ms=%" PRIu64 " error=\"%s\"", b->pub.id,
                   b->pub.state == AG__BIND_BOUND ? "last_good" : "none", delay, why);
        ag__bnd_set_error(b, why);
        /* Keep what we had; with nothing yet, take whatever was found. */
        keep = b->pub.state == AG__BIND_BOUND || b->pub.state == AG__BIND_NEG;
        st = l->naddrs ? AG__BIND_BOUND : AG__BIND_FAILED;
    } else {
        if (db->failures)
            AG_LOG(AG_LOG_INFO, "mesh", "namer_dns_recovered id=%s failures=%u", b->pub.id,
                   db->failures);
        db->failures = 0;
        ag__bnd_set_error(b, NULL);
        if (l->naddrs) {
            st = AG__BIND_BOUND;
            delay = clamp_ms(di, l->ttl_s > UINT64_MAX / 1000 ? UINT64_MAX : l->ttl_s * 1000);
        } else {
            st = AG__BIND_NEG;
            delay = clamp_ms(di, NEG_TTL_MS);
            if (di->srv && l->targets)
                snprintf(why, sizeof(why), "no A or AAAA records for the targets of %s", db->host);
            else
                snprintf(why, sizeof(why), "no %s records for %s", di->srv ? "SRV" : "A or AAAA",
                         db->host);
        }
    }
    ag__addr *addrs = l->addrs;
    size_t na = l->naddrs;
    ag_free(l);
    uv_timer_start(&db->refresh, on_refresh, delay, 0);
    if (keep) {
        ag__addrs_free(addrs, na);
        return;
    }
    /* Our own reference: b outlives the watchers, and while b->namer is
     * set, db (its impl) is alive too. */
    ag__bound_ref(&b->pub);
    if (ag__bnd_set(b, st, addrs, na, st == AG__BIND_BOUND ? NULL : why) < 0) {
        AG_LOG(AG_LOG_ERROR, "mesh", "namer_dns_error id=%s error=\"out of memory\"", b->pub.id);
        if (b->namer)
            uv_timer_start(&db->refresh, on_refresh, di->min_ttl_ms, 0);
    }
    ag__bound_unref(&b->pub);
}

/* Starts a lookup for db (none is in flight). */
static void lookup_start(dns_bind *db)
{
    ag__namer *n = db->n;
    dns_impl *di = n->impl;
    dns_lookup *l = ag_calloc(1, sizeof(*l));
    if (!l) {
        uv_timer_start(&db->refresh, on_refresh, di->min_ttl_ms, 0);
        return;
    }
    l->n = n;
    l->db = db;
    l->ttl_s = UINT64_MAX;
    db->lookup = l;
    /* One extra count while sending: c-ares may answer from inside
     * ares_search (a bad name, no memory), and the lookup must not end
     * before every query was sent. */
    l->pending = 1;
    ares_enter(di);
    if (di->srv) {
        query_send(l, db->host, ns_t_srv, 0, 1);
    } else {
        query_send(l, db->host, ns_t_a, db->port, 1);
        query_send(l, db->host, ns_t_aaaa, db->port, 1);
    }
    if (--l->pending == 0)
        lookup_done(l);
    ares_leave(n);
}

/* ------------------------------------------------------------------------ */
/* The kinds' hooks                                                          */
/* ------------------------------------------------------------------------ */

/* "1.2.3.4", "1.2.3.4:53", "[::1]:5353" -> "1.2.3.4:53" / "[::1]:5353" in
 * csv (for ares_set_servers_ports_csv). 0, AG_E_INVAL if s is not one, or
 * AG_E_NOMEM. */
static int server_csv(const char *s, ag_buf *csv)
{
    char ip[INET6_ADDRSTRLEN];
    const char *port = NULL;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || (close[1] != '\0' && close[1] != ':'))
            return AG_E_INVAL;
        hl = (size_t)(close - s - 1);
        port = close[1] ? close + 2 : NULL;
        s++;
    } else {
        const char *colon = strchr(s, ':');
        hl = colon ? (size_t)(colon - s) : strlen(s);
        port = colon ? colon + 1 : NULL;
    }
    if (hl == 0 || hl >= sizeof(ip))
        return AG_E_INVAL;
    memcpy(ip, s, hl);
    ip[hl] = '\0';
    unsigned char a[16];
    bool v6 = inet_pton(AF_INET6, ip, a) == 1;
    if (!v6 && inet_pton(AF_INET, ip, a) != 1)
        return AG_E_INVAL;
    uint16_t p = port ? ag__port_parse(port, strlen(port)) : 53;
    if (!p)
        return AG_E_INVAL;
    return ag_buf_printf(csv, "%s%s%s%s:%u", csv->len ? "," : "", v6 ? "[" : "", ip, v6 ? "]" : "",
                         (unsigned)p);
}

static int read_servers(ag__namer *n, ag_config *c, const ag_cnode *node)
{
    dns_impl *di = n->impl;
    const ag_cnode *seq = NULL;
    int rc = ag_config_get_seq(c, node, "servers", AG_OPTIONAL, &seq);
    if (rc < 0 || !seq)
        return rc;
    if (ag_cnode_len(seq) == 0)
        return ag_config_errorf(c, seq, AG_E_CONFIG_VALUE,
                                "servers: give at least one, or leave "
                                "it out for the system's resolvers");
    ag_buf csv;
    ag_buf_init(&csv, 64 * 1024);
    for (size_t i = 0; rc == 0 && i < ag_cnode_len(seq); i++) {
        const ag_cnode *it = ag_cnode_item(seq, i);
        const char *s = ag_cnode_scalar(it);
        if (ag_cnode_type_of(it) == AG_CNODE_SCALAR && strlen(s) == ag_cnode_scalar_len(it))
            rc = server_csv(s, &csv);
        else
            rc = AG_E_INVAL;
        if (rc == AG_E_INVAL)
            rc = ag_config_errorf(c, it, AG_E_CONFIG_VALUE,
                                  "bad DNS server '%s' (want an IP address with an optional "
                                  "port: \"10.0.0.53\", \"127.0.0.1:5353\", \"[::1]:53\")",
                                  s ? s : "");
    }
    if (rc == 0) {
        int arc = ares_set_servers_ports_csv(di->ch, (const char *)csv.data);
        if (arc != ARES_SUCCESS)
            rc = ag_config_errorf(c, seq, arc == ARES_ENOMEM ? AG_E_NOMEM : AG_E_CONFIG_VALUE,
                                  "servers: %s", ares_strerror(arc));
    }
    ag_buf_cleanup(&csv);
    return rc;
}

int ag__namer_dns_init(ag__namer *n, ag_config *c, const ag_cnode *node, bool srv)
{
    dns_impl *di = ag_calloc(1, sizeof(*di));
    if (!di)
        return AG_E_NOMEM;
    n->impl = di;
    di->srv = srv;
    int64_t min_ttl = 1000, max_ttl = 300000;
    int rc = ag_config_get_i64(c, node, "minTtlMs", AG_OPTIONAL, 1, 86400000, &min_ttl);
    if (rc == 0)
        rc = ag_config_get_i64(c, node, "maxTtlMs", AG_OPTIONAL, 1, 7 * 86400000LL, &max_ttl);
    if (rc == 0 && max_ttl < min_ttl)
        rc = ag_config_errorf(c, ag_cnode_get(node, "maxTtlMs"), AG_E_CONFIG_VALUE,
                              "maxTtlMs %" PRId64 " is below minTtlMs %" PRId64, max_ttl, min_ttl);
    if (rc < 0)
        return rc;
    di->min_ttl_ms = (uint64_t)min_ttl;
    di->max_ttl_ms = (uint64_t)max_ttl;

    int arc = ares_library_init(ARES_LIB_INIT_ALL);
    if (arc != ARES_SUCCESS)
        return ag_config_errorf(c, node, AG_E_SYS, "c-ares: %s", ares_strerror(arc));
    di->lib_init = true;
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = n;
    o.timeout = QUERY_TIMEOUT_MS;
    o.tries = QUERY_TRIES;
    arc = ares_init_options(&di->ch, &o,
                            ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (arc != ARES_SUCCESS)
        return ag_config_errorf(c, node, arc == ARES_ENOMEM ? AG_E_NOMEM : AG_E_SYS, "c-ares: %s",
                                ares_strerror(arc));
    di->ch_init = true;
    rc = uv_timer_init(n->loop, &di->timer);
    if (rc < 0)
        return ag_config_errorf(c, node, AG_E_SYS, "namer timer: %s", uv_strerror(rc));
    di->timer.data = n;
    di->timer_init = true;
    return read_servers(n, c, node);
}

static int dns_bind_init(ag__namer *n, ag__bnd *b)
{
    dns_impl *di = n->impl;
    dns_bind *db = ag_calloc(1, sizeof(*db));
    if (!db)
        return AG_E_NOMEM;
    b->impl = db;
    db->n = n;
    db->b = b;
    ag_slice seg[2];
    int ns = ag__path_segments(b->residual, seg, 2);
    if (ns < (di->srv ? 1 : 2) || !ag__host_valid((const char *)seg[0].ptr, seg[0].len))
        return ag__bnd_set(b, AG__BIND_NEG, NULL, 0,
                           di->srv ? "not an SRV name (want /SRVNAME)" : "want /HOST/PORT");
    memcpy(db->host, seg[0].ptr, seg[0].len);
    db->host[seg[0].len] = '\0';
    if (!di->srv) {
        db->port = ag__port_parse((const char *)seg[1].ptr, seg[1].len);
        if (!db->port)
            return ag__bnd_set(b, AG__BIND_NEG, NULL, 0, "bad port (want 1..65535)");
        unsigned char ip[16];
        if (inet_pton(AF_INET, db->host, ip) == 1 || inet_pton(AF_INET6, db->host, ip) == 1) {
            ag__addr *a = ag_calloc(1, sizeof(*a));
            if (a)
                a->host = ag_strdup(db->host);
            if (!a || !a->host) {
                ag_free(a);
                return AG_E_NOMEM;
            }
            a->port = db->port;
            a->weight = 1;
            return ag__bnd_set(b, AG__BIND_BOUND, a, 1, NULL);
        }
    }
    int rc = uv_timer_init(n->loop, &db->refresh);
    if (rc < 0)
        return ag__bnd_set(b, AG__BIND_FAILED, NULL, 0, uv_strerror(rc));
    db->refresh.data = db;
    db->refresh_init = true;
    db->valid = true;
    lookup_start(db);
    return 0;
}

static void refresh_close_cb(uv_handle_t *h)
{
    dns_bind *db = h->data;
    ag__namer *n = db->n;
    ag_free(db);
    ag__namer_closed(n);
}

static void dns_bind_release(ag__namer *n, ag__bnd *b)
{
    dns_bind *db = b->impl;
    b->impl = NULL;
    if (!db)
        return;
    if (db->lookup)
        db->lookup->db = NULL;
    if (!db->refresh_init) {
        ag_free(db);
        return;
    }
    n->closing++;
    uv_close((uv_handle_t *)&db->refresh, refresh_close_cb);
}

static void dns_stop(ag__namer *n)
{
    dns_impl *di = n->impl;
    if (!di)
        return;
    di->stopping = true;
    if (di->in_ares > 0) {
        AG_LOG(AG_LOG_DEBUG, "mesh", "namer_dns_stop deferred=1 depth=%u", di->in_ares);
        n->closing++; /* a hold until the outermost c-ares call returns */
        return;
    }
    shutdown_channel(n);
}

static void dns_destroy(ag__namer *n)
{
    ag_free(n->impl);
    n->impl = NULL;
}

const ag__namer_ops ag__namer_dns_ops = {
    .kind = "dns",
    .bind_init = dns_bind_init,
    .bind_release = dns_bind_release,
    .stop = dns_stop,
    .destroy = dns_destroy,
};

const ag__namer_ops ag__namer_dnssrv_ops = {
    .kind = "dnssrv",
    .bind_init = dns_bind_init,
    .bind_release = dns_bind_release,
    .stop = dns_stop,
    .destroy = dns_destroy,
};
