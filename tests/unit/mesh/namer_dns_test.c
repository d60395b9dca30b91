/* Tests for src/mesh/namer_dns.c: the dns and dnssrv namers against a tiny
 * DNS server on 127.0.0.1 (a uv_udp_t on the test's own loop) that answers
 * A, AAAA and SRV questions from a table the test controls, with TTLs, and
 * NXDOMAIN for names it does not know. It parses just enough of a query:
 * the ID, the question name and type. */
#include <arpa/nameser.h>
#include <ctype.h>
#include <sys/socket.h>
#include <unistd.h>

#include "namer_util.h"

/* ---- the DNS server ------------------------------------------------------ */

typedef struct rr {
    char name[64];
    int type;      /* ns_t_a, ns_t_aaaa, ns_t_srv */
    char data[64]; /* A, AAAA: the address; SRV: the target */
    uint16_t prio;
    uint16_t weight;
    uint16_t port;
    uint32_t ttl; /* seconds */
} rr;

typedef struct dnsd {
    uv_udp_t udp;
    int port;
    rr recs[32];
    int n;
    bool mute;   /* receive, answer nothing */
    int queries; /* questions received */
    char slab[2048];
} dnsd;

static void dnsd_add(dnsd *d, const char *name, int type, const char *data, uint32_t ttl)
{
    CHECK(d->n < (int)AG_ARRAY_LEN(d->recs));
    rr *r = &d->recs[d->n++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->data, sizeof(r->data), "%s", data);
    r->type = type;
    r->ttl = ttl;
}

static void dnsd_add_srv(dnsd *d, const char *name, uint16_t prio, uint16_t weight, uint16_t port,
                         const char *target, uint32_t ttl)
{
    dnsd_add(d, name, ns_t_srv, target, ttl);
    rr *r = &d->recs[d->n - 1];
    r->prio = prio;
    r->weight = weight;
    r->port = port;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Appends one answer record (name: a pointer to the question's). */
static size_t put_rr(uint8_t *out, size_t off, const rr *r)
{
    uint8_t *p = out + off;
    put16(p, 0xc00c);
    put16(p + 2, (unsigned)r->type);
    put16(p + 4, ns_c_in);
    put16(p + 6, r->ttl >> 16);
    put16(p + 8, r->ttl & 0xffff);
    uint8_t *rd = p + 12;
    size_t len = 0;
    if (r->type == ns_t_a) {
        CHECK_EQ(inet_pton(AF_INET, r->data, rd), 1);
        len = 4;
    } else if (r->type == ns_t_aaaa) {
        CHECK_EQ(inet_pton(AF_INET6, r->data, rd), 1);
        len = 16;
    } else {
        put16(rd, r->prio);
        put16(rd + 2, r->weight);
        put16(rd + 4, r->port);
        len = 6;
        const char *s = r->data;
        while (*s) {
            size_t l = strcspn(s, ".");
            rd[len++] = (uint8_t)l;
            memcpy(rd + len, s, l);
            len += l;
            s += l + (s[l] == '.');
        }
        rd[len++] = 0;
    }
    put16(p + 10, (unsigned)len);
    return off + 12 + len;
}

static void dnsd_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    dnsd *d = h->data;
    (void)size;
    buf->base = d->slab;
    buf->len = sizeof(d->slab);
}

static void dnsd_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                      unsigned flags)
{
    dnsd *d = u->data;
    const uint8_t *q = (const uint8_t *)buf->base;
    (void)flags;
    if (nread < 12 || !addr)
        return;
    d->queries++;
    if (d->mute)
        return;
    /* The question: name (labels, no compression in a query) and type. */
    char name[256];
    size_t off = 12, nl = 0;
    while (off < (size_t)nread && q[off] != 0) {
        size_t l = q[off++];
        if (off + l > (size_t)nread || nl + l + 2 > sizeof(name))
            return;
        if (nl)
            name[nl++] = '.';
        for (size_t i = 0; i < l; i++)
            name[nl++] = (char)tolower(q[off + i]);
        off += l;
    }
    name[nl] = '\0';
    if (off + 5 > (size_t)nread)
        return;
    int qtype = q[off + 1] << 8 | q[off + 2];
    size_t qend = off + 5;

    uint8_t out[1500];
    memcpy(out, q, 2);                               /* ID */
    out[2] = (uint8_t)(0x80 | (q[2] & 0x79) | 0x04); /* QR, opcode, AA, RD */
    out[3] = 0x80;                                   /* RA, rcode below */
    put16(out + 4, 1);
    put16(out + 6, 0);
    put16(out + 8, 0);
    put16(out + 10, 0);
    memcpy(out + 12, q + 12, qend - 12);
    size_t len = qend;
    bool known = false;
    unsigned an = 0;
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->recs[i].name, name) != 0)
            continue;
        known = true;
        if (d->recs[i].type == qtype) {
            len = put_rr(out, len, &d->recs[i]);
            an++;
        }
    }
    put16(out + 6, an);
    if (!known)
        out[3] |= 3; /* NXDOMAIN */
    uv_buf_t b = uv_buf_init((char *)out, (unsigned)len);
    uv_udp_try_send(u, &b, 1, addr);
}

static void dnsd_start(uv_loop_t *loop, dnsd *d)
{
    memset(d, 0, sizeof(*d));
    struct sockaddr_in sa;
    CHECK_EQ(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
    CHECK_EQ(uv_udp_init(loop, &d->udp), 0);
    d->udp.data = d;
    CHECK_EQ(uv_udp_bind(&d->udp, (const struct sockaddr *)&sa, 0), 0);
    int len = sizeof(sa);
    CHECK_EQ(uv_udp_getsockname(&d->udp, (struct sockaddr *)&sa, &len), 0);
    d->port = ntohs(sa.sin_port);
    CHECK_EQ(uv_udp_recv_start(&d->udp, dnsd_alloc, dnsd_recv), 0);
}

static void dnsd_stop(dnsd *d)
{
    uv_close((uv_handle_t *)&d->udp, NULL);
}

/* A namer of kind (dns or dnssrv) asking only the server on port. */
static ag__namer *dns_namer(uv_loop_t *loop, const char *kind, int port, const char *extra)
{
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "namers:\n  - {kind: %s, servers: [\"127.0.0.1:%d\"]%s}\n", kind,
             port, extra ? extra : "");
    return nt_namer(loop, "mesh.yaml", yaml);
}

static bool not_pending(void *ud)
{
    return ((ag__bound *)ud)->state != AG__BIND_PENDING;
}

static void wait_resolved(uv_loop_t *loop, ag__bound *b)
{
    if (!nt_run_until(loop, not_pending, b, 5000))
        FAIL("%s still pending after 5 s", b->id);
}

static uint64_t stat_errors(ag__namer *n)
{
    ag__namer_stats st;
    ag__namer_get_stats(n, &st);
    return st.errors;
}

static uint64_t stat_reloads(ag__namer *n)
{
    ag__namer_stats st;
    ag__namer_get_stats(n, &st);
    return st.reloads;
}

/* ---- dns ----------------------------------------------------------------- */

TEST(namer_dns_a_and_aaaa)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    dnsd d;
    dnsd_start(&loop, &d);
    dnsd_add(&d, "users.test", ns_t_a, "10.0.0.2", 60);
    dnsd_add(&d, "users.test", ns_t_a, "10.0.0.1", 60);
    dnsd_add(&d, "users.test", ns_t_aaaa, "fd00::1", 60);
    dnsd_add(&d, "v4only.test", ns_t_a, "10.0.0.7", 60);
    ag__namer *n = dns_namer(&loop, "dns", d.port, NULL);

    ag__bound *b = ag__namer_bind(n, "/users.test/8080");
    CHECK_STR_EQ(b->id, "/#/dns/users.test/8080");
    CHECK_EQ(b->state, AG__BIND_PENDING);
    ag__bound *same = ag__namer_bind(n, "/users.test/8080");
    CHECK(same == b);
    ag__bound_unref(same);
    nt_watch w = {0};
    ag__watch *wh = ag__bound_watch(b, nt_on_change, &w);
    wait_resolved(&loop, b);
    CHECK_EQ(b->state, AG__BIND_BOUND);
    CHECK_EQ(w.calls, 1);
    char s[256];
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.1:8080*1,10.0.0.2:8080*1,[fd00::1]:8080*1");
    CHECK_EQ(stat_reloads(n), 1);
    CHECK_EQ(stat_errors(n), 0);

    /* Only A records: fine (the AAAA question has no answer). */
    ag__bound *v4 = ag__namer_bind(n, "/v4only.test/53/rest");
    wait_resolved(&loop, v4);
    CHECK_STR_EQ(nt_addrs(v4, s, sizeof(s)), "10.0.0.7:53*1");

    /* Nothing more within the TTL: the idle channel asks nothing. */
    int q = d.queries;
    nt_run_for(&loop, 300);
    CHECK_EQ(d.queries, q);

    ag__bound_unwatch(b, wh);
    ag__bound_unref(b);
    ag__bound_unref(v4);
    ag__namer_free(n);
    dnsd_stop(&d);
    nt_loop_close(&loop);
}

TEST(namer_dns_negative)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    dnsd d;
    dnsd_start(&loop, &d);
    dnsd_add_srv(&d, "srvonly.test", 1, 1, 80, "x.test", 60);
    ag__namer *n = dns_namer(&loop, "dns", d.port, NULL);

    ag__bound *nx = ag__namer_bind(n, "/nope.test/80");
    ag__bound *nodata = ag__namer_bind(n, "/srvonly.test/80");
    wait_resolved(&loop, nx);
    wait_resolved(&loop, nodata);
    CHECK_EQ(nx->state, AG__BIND_NEG);
    CHECK_STR_EQ(nx->why, "no A or AAAA records for nope.test");
    CHECK_EQ(nodata->state, AG__BIND_NEG);
    CHECK_EQ(stat_errors(n), 0);

    /* Names it cannot take, and IP literals (no query). */
    int q = d.queries;
    ag__bound *lit = ag__namer_bind(n, "/127.0.0.1/8080");
    CHECK_EQ(lit->state, AG__BIND_BOUND);
    char s[64];
    CHECK_STR_EQ(nt_addrs(lit, s, sizeof(s)), "127.0.0.1:8080*1");
    ag__bound *lit6 = ag__namer_bind(n, "/::1/80");
    CHECK_STR_EQ(nt_addrs(lit6, s, sizeof(s)), "[::1]:80*1");
    ag__bound *noport = ag__namer_bind(n, "/users.test");
    CHECK_EQ(noport->state, AG__BIND_NEG);
    CHECK_STR_EQ(noport->why, "want /HOST/PORT");
    ag__bound *badport = ag__namer_bind(n, "/users.test/http");
    CHECK_EQ(badport->state, AG__BIND_NEG);
    ag__bound *badhost = ag__namer_bind(n, "/a..b/80");
    CHECK_EQ(badhost->state, AG__BIND_NEG);
    nt_run_for(&loop, 50);
    CHECK_EQ(d.queries, q);

    ag__bound_unref(nx);
    ag__bound_unref(nodata);
    ag__bound_unref(lit);
    ag__bound_unref(lit6);
    ag__bound_unref(noport);
    ag__bound_unref(badport);
    ag__bound_unref(badhost);
    ag__namer_free(n);
    dnsd_stop(&d);
    nt_loop_close(&loop);
}

TEST(namer_dns_ttl)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    dnsd d;
    dnsd_start(&loop, &d);
    dnsd_add(&d, "short.test", ns_t_a, "10.0.0.1", 1);
    ag__namer *n = dns_namer(&loop, "dns", d.port, NULL);
    ag__bound *b = ag__namer_bind(n, "/short.test/80");
    nt_watch w = {0};
    ag__watch *wh = ag__bound_watch(b, nt_on_change, &w);
    wait_resolved(&loop, b);
    uint64_t t0 = ag_now_ms();
    char s[64];
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.1:80*1");

    /* The table changes; nothing at 100 ms, the new address after ~1 s. */
    snprintf(d.recs[0].data, sizeof(d.recs[0].data), "10.0.0.9");
    nt_run_for(&loop, 100);
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.1:80*1");
    nt_wait x = {&w, 2};
    CHECK(nt_run_until(&loop, nt_called, &x, 3000));
    uint64_t took = w.at_ms - t0;
    if (took < 800 || took > 2000)
        FAIL("re-resolved after %" PRIu64 " ms, want about 1000", took);
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.9:80*1");

    ag__bound_unwatch(b, wh);
    ag__bound_unref(b);
    ag__namer_free(n);
    dnsd_stop(&d);
    nt_loop_close(&loop);
}

static bool has_error(void *ud)
{
    return stat_errors(ud) > 0;
}

TEST_TIMEOUT(namer_dns_server_stops_answering, 30)
{
    nt_log lg = {0};
    ag_log_set_sink(nt_log_sink, &lg);
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    dnsd d;
    dnsd_start(&loop, &d);
    dnsd_add(&d, "users.test", ns_t_a, "10.0.0.1", 1);
    ag__namer *n = dns_namer(&loop, "dns", d.port, NULL);
    ag__bound *b = ag__namer_bind(n, "/users.test/80");
    nt_watch w = {0};
    ag__watch *wh = ag__bound_watch(b, nt_on_change, &w);
    wait_resolved(&loop, b);
    uint64_t v = b->version;

    /* Silent: the lookup after the TTL times out (1 s, then 2 s). */
    d.mute = true;
    if (!nt_run_until(&loop, has_error, n, 8000))
        FAIL("no failed lookup counted within 8 s");
    CHECK_EQ(b->state, AG__BIND_BOUND);
    CHECK_U64_EQ(b->version, v);
    CHECK_EQ(w.calls, 1);
    char s[64];
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.1:80*1");
    CHECK_EQ(lg.lines, 1);
    CHECK_CONTAINS(lg.text, "namer_dns_error id=/#/dns/users.test/80 kept=last_good");
    ag_buf j;
    ag_buf_init(&j, 1 << 16);
    CHECK_OK(ag__namer_json(n, &j));
    CHECK_CONTAINS((const char *)j.data, "\"state\":\"bound\"");
    CHECK_CONTAINS((const char *)j.data, "\"error\":\"");
    ag_buf_cleanup(&j);

    /* Back, with a new address: picked up at the retry. */
    d.mute = false;
    snprintf(d.recs[0].data, sizeof(d.recs[0].data), "10.0.0.5");
    nt_wait x = {&w, 2};
    CHECK(nt_run_until(&loop, nt_called, &x, 5000));
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.5:80*1");

    ag__bound_unwatch(b, wh);
    ag__bound_unref(b);
    ag__namer_free(n);
    dnsd_stop(&d);
    nt_loop_close(&loop);
    ag_log_set_sink(NULL, NULL);
}

/* No server at all (a port nobody listens on): FAILED, never bound. */
TEST(namer_dns_unreachable_fails)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    ag__namer *n = dns_namer(&loop, "dns", ntohs(sa.sin_port), NULL);
    ag__bound *b = ag__namer_bind(n, "/users.test/80");
    wait_resolved(&loop, b);
    CHECK_EQ(b->state, AG__BIND_FAILED);
    CHECK_CONTAINS(b->why, "users.test");
    CHECK(stat_errors(n) >= 1);
    ag__bound_unref(b);
    ag__namer_free(n);
    nt_loop_close(&loop);
}

/* ---- dnssrv -------------------------------------------------------------- */

TEST(namer_dnssrv_priorities_and_weights)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    dnsd d;
    dnsd_start(&loop, &d);
    dnsd_add_srv(&d, "_grpc._tcp.svc.test", 10, 5, 9000, "a.test", 60);
    dnsd_add_srv(&d, "_grpc._tcp.svc.test", 10, 0, 9001, "b.test", 60);
    dnsd_add_srv(&d, "_grpc._tcp.svc.test", 20, 7, 9002, "c.test", 60);
    dnsd_add(&d, "a.test", ns_t_a, "10.0.0.1", 60);
    dnsd_add(&d, "b.test", ns_t_a, "10.0.0.2", 60);
    dnsd_add(&d, "b.test", ns_t_aaaa, "fd00::2", 60);
    dnsd_add(&d, "c.test", ns_t_a, "10.0.0.3", 60);
    ag__namer *n = dns_namer(&loop, "dnssrv", d.port, NULL);

    ag__bound *b = ag__namer_bind(n, "/_grpc._tcp.svc.test");
    CHECK_STR_EQ(b->id, "/#/dnssrv/_grpc._tcp.svc.test");
    wait_resolved(&loop, b);
    CHECK_EQ(b->state, AG__BIND_BOUND);
    char s[256];
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.1:9000*5,10.0.0.2:9001*1,[fd00::2]:9001*1");

    ag__bound *nx = ag__namer_bind(n, "/_x._tcp.none.test");
    wait_resolved(&loop, nx);
    CHECK_EQ(nx->state, AG__BIND_NEG);
    CHECK_STR_EQ(nx->why, "no SRV records for _x._tcp.none.test");
    ag__bound *bad = ag__namer_bind(n, "/");
    CHECK_EQ(bad->state, AG__BIND_NEG);

    /* The lowest priority's records gone: bound afresh, the next priority
     * is used. */
    ag__bound_unref(b);
    d.n = 0;
    dnsd_add_srv(&d, "_grpc._tcp.svc.test", 20, 7, 9002, "c.test", 1);
    dnsd_add(&d, "c.test", ns_t_a, "10.0.0.3", 1);
    b = ag__namer_bind(n, "/_grpc._tcp.svc.test");
    wait_resolved(&loop, b);
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.3:9002*7");

    ag__bound_unref(b);
    ag__bound_unref(nx);
    ag__bound_unref(bad);
    ag__namer_free(n);
    dnsd_stop(&d);
    nt_loop_close(&loop);
}

/* ---- lifetimes ----------------------------------------------------------- */

TEST(namer_dns_free_and_unref_in_flight)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    dnsd d;
    dnsd_start(&loop, &d);
    dnsd_add(&d, "users.test", ns_t_a, "10.0.0.1", 60);
    ag__namer *n = dns_namer(&loop, "dns", d.port, NULL);

    /* Unref'd while its queries are out: the answers are dropped. */
    ag__bound *b = ag__namer_bind(n, "/users.test/80");
    ag__bound_unref(b);
    nt_run_for(&loop, 100);
    CHECK(d.queries >= 2);
    CHECK_EQ(stat_reloads(n), 0);

    /* The namer freed while a lookup is out: the binding stays PENDING. */
    b = ag__namer_bind(n, "/users.test/80");
    ag__namer_free(n);
    nt_run_for(&loop, 100);
    CHECK_EQ(b->state, AG__BIND_PENDING);
    ag__bound_unref(b);
    dnsd_stop(&d);
    nt_loop_close(&loop);
}

typedef struct free_ctx {
    ag__namer *n;
    int calls;
} free_ctx;

static void free_in_cb(void *ud, ag__bound *b)
{
    free_ctx *f = ud;
    (void)b;
    f->calls++;
    ag__namer_free(f->n);
    f->n = NULL;
}

static void debug_sink(void *ud, ag_log_level level, const char *module, const char *msg)
{
    (void)level;
    (void)module;
    if (strstr(msg, "namer_dns_stop deferred=1"))
        (*(int *)ud)++;
}

static bool called_once(void *ud)
{
    return ((free_ctx *)ud)->calls > 0;
}

/* A watcher frees the namer from inside c-ares's callback, with another
 * lookup still out: c-ares is destroyed after the callback returns. */
TEST(namer_dns_free_inside_callback)
{
    int deferred = 0;
    ag_log_set_sink(debug_sink, &deferred);
    ag_log_set_level(AG_LOG_DEBUG);
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    dnsd d;
    dnsd_start(&loop, &d);
    dnsd_add(&d, "a.test", ns_t_a, "10.0.0.1", 60);
    ag__namer *n = dns_namer(&loop, "dns", d.port, NULL);
    ag__bound *a = ag__namer_bind(n, "/a.test/80");
    d.mute = true; /* b's lookup never ends */
    ag__bound *b = ag__namer_bind(n, "/b.test/80");
    nt_run_for(&loop, 50);
    d.mute = false;
    /* a again, through a second binding (the first is resolved). */
    ag__bound *a2 = ag__namer_bind(n, "/a.test/81");
    free_ctx f = {.n = n};
    ag__bound_watch(a2, free_in_cb, &f);
    CHECK(nt_run_until(&loop, called_once, &f, 3000));
    CHECK(f.n == NULL);
    CHECK_EQ(deferred, 1); /* freed inside c-ares: its destruction waited */
    ag_log_set_sink(NULL, NULL);
    ag_log_set_level(AG_LOG_INFO);
    CHECK_EQ(a2->state, AG__BIND_BOUND);
    CHECK_EQ(b->state, AG__BIND_PENDING);
    nt_run_for(&loop, 50);
    ag__bound_unref(a);
    ag__bound_unref(a2);
    ag__bound_unref(b);
    dnsd_stop(&d);
    nt_loop_close(&loop);
}

/* Every allocation of a dns namer's life failing in turn (lookups that
 * cannot allocate fail like any failed lookup): nothing leaks, every
 * handle closes. */
TEST_FM(namer_dns_failmalloc)
{
    uv_loop_t loop;
    ag__namer *n = NULL;
    ag_config *c = NULL;
    ag__bound *b = NULL, *s = NULL;
    CHECK_EQ(uv_loop_init(&loop), 0);
    dnsd d;
    dnsd_start(&loop, &d);
    dnsd_add(&d, "users.test", ns_t_a, "10.0.0.1", 60);
    dnsd_add(&d, "users.test", ns_t_aaaa, "fd00::1", 60);
    dnsd_add_srv(&d, "_h._tcp.test", 1, 2, 80, "users.test", 60);
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "namers:\n  - {kind: dnssrv, servers: [\"127.0.0.1:%d\"]}\n",
             d.port);
    c = ag_config_new();
    FM_NEW(c);
    FM_TRY(ag_config_load_string(c, "mesh.yaml", yaml, strlen(yaml)), 0);
    FM_TRY(ag__namer_new(c, ag_cnode_item(ag_cnode_get(ag_config_root(c), "namers"), 0), &loop, &n),
           0);
    b = ag__namer_bind(n, "/_h._tcp.test");
    FM_NEW(b);
    s = ag__namer_bind(n, "/_h._tcp.test");
    FM_NEW(s);
    wait_resolved(&loop, b);
    if (!ag_alloc_failed()) {
        char txt[128];
        CHECK_STR_EQ(nt_addrs(b, txt, sizeof(txt)), "10.0.0.1:80*2,[fd00::1]:80*2");
    }
out:
    ag__bound_unref(s);
    ag__bound_unref(b);
    ag__namer_free(n);
    ag_config_free(c);
    dnsd_stop(&d);
    nt_loop_close(&loop);
}
