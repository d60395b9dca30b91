/*
 * Tests for src/link/rpc.c: the link over gRPC on loopback. Messages of
 * every size (chunked past 1 MiB) by (peer, tag) in order; the semi2k
 * kernels across real sockets with the cost model intact; a peer that
 * starts late (messages wait and are resent, delivered once); frames of
 * another job refused; a failure at one party reaching the others.
 */
#include <pthread.h>

#include "argot/link.h"
#include "argot/mpc.h"
#include "test.h"

static const char *const names[] = {"alice", "bob", "carol"};

/* n links on 127.0.0.1 with free ports, each told the others' addresses. */
static void links_up(unsigned n, const char *session, ag_link **l)
{
    char err[256];
    for (unsigned i = 0; i < n; i++) {
        ag_link_rpc_opts o = {.rank = i, .n = n, .names = names, .listen = "127.0.0.1:0",
                              .session = session, .timeout_ms = 20000};
        l[i] = ag_link_rpc_new(&o, err, sizeof(err));
        if (!l[i])
            FAIL("link %u: %s", i, err);
    }
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < n; j++)
            if (i != j) {
                char addr[64];
                snprintf(addr, sizeof(addr), "127.0.0.1:%d", ag_link_rpc_port(l[j]));
                CHECK_OK(ag_link_rpc_set_peer(l[i], j, addr));
            }
}

TEST_TIMEOUT(link_rpc_messages_of_every_size, 60)
{
    ag_link *l[2];
    links_up(2, "job-1", l);
    size_t big = (3u << 20) + 17;
    uint8_t *m = ag_malloc(big);
    for (size_t i = 0; i < big; i++)
        m[i] = (uint8_t)(i * 13);
    CHECK_OK(ag_link_send(l[0], 1, 7, "first", 5));
    CHECK_OK(ag_link_send(l[0], 1, 9, "", 0));
    CHECK_OK(ag_link_send(l[0], 1, 7, m, big));
    CHECK_OK(ag_link_send(l[1], 0, 7, "back", 4));
    void *d;
    size_t n;
    CHECK_OK(ag_link_recv(l[1], 0, 9, &d, &n));
    CHECK_EQ(n, 0);
    ag_free(d);
    CHECK_OK(ag_link_recv(l[1], 0, 7, &d, &n));
    CHECK(n == 5 && memcmp(d, "first", 5) == 0);
    ag_free(d);
    CHECK_OK(ag_link_recv(l[1], 0, 7, &d, &n));
    CHECK(n == big && memcmp(d, m, big) == 0);
    ag_free(d);
    CHECK_OK(ag_link_recv(l[0], 1, 7, &d, &n));
    CHECK(n == 4 && memcmp(d, "back", 4) == 0);
    ag_free(d);
    ag_link_stats s;
    ag_link_stats_get(l[0], &s);
    CHECK_U64_EQ(s.bytes_sent, 5 + big); /* payload only, as the in-memory link counts */
    ag_free(m);
    ag_link_free(l[0]);
    ag_link_free(l[1]);
}

/* ---- semi2k across the sockets ---------------------------------------------- */

struct job {
    ag_link *link;
    unsigned n;
    int rc;
    char err[AG_ERRMSG_MAX];
    double prod[4];
    uint64_t mul_bytes;
};

static void *party_main(void *arg)
{
    struct job *j = arg;
    ag_mpc_config cfg = {.field = AG_FM64, .fxp_bits = 0};
    ag_mpc *m = ag_mpc_new(j->link, &cfg);
    int64_t shape[1] = {4};
    double xs[4] = {1.5, -2.0, 3.25, 0.5}, ys[4] = {2.0, 4.0, -1.0, 8.0};
    ag_tensor px = {0}, py = {0}, x = {0}, y = {0}, z = {0}, r = {0};
    unsigned rank = ag_link_rank(j->link);
    int rc = ag_mpc_setup(m);
    if (rc == 0)
        rc = ag_mpc_encode(m, xs, 1, shape, &px);
    if (rc == 0)
        rc = ag_mpc_encode(m, ys, 1, shape, &py);
    if (rc == 0)
        rc = ag_mpc_share(m, 0, rank == 0 ? &px : NULL, 1, shape, &x);
    if (rc == 0)
        rc = ag_mpc_share(m, j->n - 1, rank == j->n - 1 ? &py : NULL, 1, shape, &y);
    ag_link_stats a, b;
    ag_link_stats_get(j->link, &a);
    if (rc == 0)
        rc = ag_mpc_fmul(m, &x, &y, &z);
    ag_link_stats_get(j->link, &b);
    j->mul_bytes = b.bytes_sent - a.bytes_sent;
    if (rc == 0)
        rc = ag_mpc_reveal(m, &z, &r);
    if (rc == 0)
        rc = ag_mpc_decode(m, &r, j->prod);
    j->rc = rc;
    if (rc < 0)
        snprintf(j->err, sizeof(j->err), "%s", ag_mpc_errmsg(m));
    ag_tensor *all[] = {&px, &py, &x, &y, &z, &r};
    for (size_t i = 0; i < 6; i++)
        ag_tensor_cleanup(all[i]);
    ag_mpc_free(m);
    return NULL;
}

TEST_TIMEOUT(link_rpc_semi2k_across_sockets, 60)
{
    for (unsigned n = 2; n <= 3; n++) {
        ag_link *l[3];
        links_up(n, "job-mpc", l);
        struct job j[3];
        pthread_t t[3];
        for (unsigned i = 0; i < n; i++) {
            j[i] = (struct job){.link = l[i], .n = n};
            CHECK_EQ(pthread_create(&t[i], NULL, party_main, &j[i]), 0);
        }
        for (unsigned i = 0; i < n; i++)
            pthread_join(t[i], NULL);
        double want[4] = {3.0, -8.0, -3.25, 4.0};
        for (unsigned i = 0; i < n; i++) {
            if (j[i].rc < 0)
                FAIL("n=%u party %u: %s", n, i, j[i].err);
            for (int k = 0; k < 4; k++)
                CHECK(j[i].prod[k] > want[k] - 1e-4 && j[i].prod[k] < want[k] + 1e-4);
            /* mul's model: 2 * 8 * (n-1) bytes per element, plus trunc's for n > 2 */
            CHECK_U64_EQ(j[i].mul_bytes, 4 * 8 * 2 * (n - 1) + (n > 2 ? 4 * 8 * (n - 1) : 0));
        }
        for (unsigned i = 0; i < n; i++)
            ag_link_free(l[i]);
    }
}

/* ---- failures ---------------------------------------------------------------------- */

TEST_TIMEOUT(link_rpc_late_peer_gets_every_message_once, 60)
{
    char err[256];
    /* find a free port, then let it go */
    ag_link_rpc_opts ob = {.rank = 1, .n = 2, .names = names, .listen = "127.0.0.1:0",
                           .session = "job-late", .timeout_ms = 20000};
    ag_link *probe = ag_link_rpc_new(&ob, err, sizeof(err));
    CHECK(probe);
    char baddr[64];
    snprintf(baddr, sizeof(baddr), "127.0.0.1:%d", ag_link_rpc_port(probe));
    ag_link_free(probe);
    ag_link_rpc_opts oa = {.rank = 0, .n = 2, .names = names, .listen = "127.0.0.1:0",
                           .session = "job-late", .timeout_ms = 20000};
    ag_link *a = ag_link_rpc_new(&oa, err, sizeof(err));
    CHECK(a);
    CHECK_OK(ag_link_rpc_set_peer(a, 1, baddr));
    for (int i = 0; i < 5; i++)
        CHECK_OK(ag_link_send(a, 1, (uint64_t)i, "early", 5)); /* nobody listens yet */
    ag_sleep_ms(400);
    ob.listen = baddr;
    ag_link *b = ag_link_rpc_new(&ob, err, sizeof(err));
    if (!b)
        FAIL("%s", err);
    for (int i = 0; i < 5; i++) {
        void *d;
        size_t n;
        CHECK_OK(ag_link_recv(b, 0, (uint64_t)i, &d, &n));
        CHECK(n == 5 && memcmp(d, "early", 5) == 0);
        ag_free(d);
    }
    /* and nothing twice */
    ag_link_set_timeout_ms(b, 300);
    void *d;
    size_t n;
    CHECK_EQ(ag_link_recv(b, 0, 0, &d, &n), AG_E_LINK_TIMEOUT);
    ag_link_free(a);
    ag_link_free(b);
}

TEST_TIMEOUT(link_rpc_other_job_is_refused, 60)
{
    ag_link *a[2], *b[2];
    links_up(2, "job-a", a);
    links_up(2, "job-b", b);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ag_link_rpc_port(b[1]));
    ag_link_free(a[1]);
    ag_link_free(a[0]);
    /* a party of job-a talking to job-b's bob */
    char err[256];
    ag_link_rpc_opts o = {.rank = 0, .n = 2, .names = names, .listen = "127.0.0.1:0",
                          .session = "job-a", .timeout_ms = 20000};
    ag_link *x = ag_link_rpc_new(&o, err, sizeof(err));
    CHECK(x);
    CHECK_OK(ag_link_rpc_set_peer(x, 1, addr));
    CHECK_OK(ag_link_send(x, 1, 1, "intruder", 8));
    ag_link_set_timeout_ms(b[1], 500);
    void *d;
    size_t n;
    CHECK_EQ(ag_link_recv(b[1], 0, 1, &d, &n), AG_E_LINK_TIMEOUT);
    ag_link_free(x);
    ag_link_free(b[0]);
    ag_link_free(b[1]);
}

struct waiter {
    ag_link *l;
    int rc;
    char msg[AG_ERRMSG_MAX];
};

static void *wait_main(void *arg)
{
    struct waiter *w = arg;
    void *d;
    size_t n;
    w->rc = ag_link_recv(w->l, 0, 42, &d, &n);
    snprintf(w->msg, sizeof(w->msg), "%s", ag_link_errmsg(w->l));
    return NULL;
}

TEST_TIMEOUT(link_rpc_abort_reaches_the_peer, 60)
{
    ag_link *l[2];
    links_up(2, "job-abort", l);
    /* open the stream first (an abort rides the existing stream) */
    CHECK_OK(ag_link_send(l[0], 1, 1, "hi", 2));
    void *d;
    size_t n;
    CHECK_OK(ag_link_recv(l[1], 0, 1, &d, &n));
    ag_free(d);
    struct waiter w = {l[1], 0, ""};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, wait_main, &w), 0);
    ag_sleep_ms(50);
    uint64_t t0 = ag_now_ms();
    ag_link_abort(l[0], "alice.csv:3: 2 fields, header has 3");
    pthread_join(t, NULL);
    CHECK(ag_now_ms() - t0 < 5000);
    CHECK_EQ(w.rc, AG_E_LINK_ABORTED);
    CHECK_STR_EQ(w.msg, "party alice failed: alice.csv:3: 2 fields, header has 3");
    ag_link_free(l[0]);
    ag_link_free(l[1]);
}

/* A party that sends its last messages and exits at once does not take
 * them with it: freeing the link waits for the acks. */
TEST_TIMEOUT(link_rpc_free_delivers_what_was_sent, 60)
{
    ag_link *l[2];
    links_up(2, "job-linger", l);
    uint8_t *big = ag_calloc(1, 2u << 20);
    CHECK_OK(ag_link_send(l[0], 1, 1, "one", 3));
    CHECK_OK(ag_link_send(l[0], 1, 2, big, 2u << 20));
    CHECK_OK(ag_link_send(l[0], 1, 3, "last", 4));
    ag_link_free(l[0]); /* right away */
    void *d;
    size_t n;
    CHECK_OK(ag_link_recv(l[1], 0, 1, &d, &n));
    ag_free(d);
    CHECK_OK(ag_link_recv(l[1], 0, 2, &d, &n));
    CHECK_EQ(n, 2u << 20);
    ag_free(d);
    CHECK_OK(ag_link_recv(l[1], 0, 3, &d, &n));
    CHECK(n == 4 && memcmp(d, "last", 4) == 0);
    ag_free(d);
    ag_free(big);
    ag_link_free(l[1]);
}

TEST(link_rpc_gateways_need_tls)
{
    char err[256];
    const char *addrs[] = {"127.0.0.1:0", "127.0.0.1:1"};
    ag_link_rpc_opts o = {.rank = 0, .n = 2, .names = names, .addresses = addrs,
                          .gateway = "127.0.0.1:4143"};
    CHECK(ag_link_rpc_new(&o, err, sizeof(err)) == NULL);
    CHECK_STR_EQ(err, "gateways need TLS between parties (a certificate, its key and the CA)");
    o.gateway = NULL;
    o.via_gateway = true;
    CHECK(ag_link_rpc_new(&o, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "gateways need TLS");
}
