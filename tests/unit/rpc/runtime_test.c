/*
 * Tests for the rpc runtime (loop.c, conn.c, call.c, server.c, channel.c):
 * a real server and a real channel in one process, over TCP and unix
 * sockets on this machine: unary and streaming calls, metadata and
 * trailers, statuses, deadlines, cancellation, unreachable targets,
 * graceful shutdown, calls from several threads at once, and a port no
 * one else can bind. (TLS: tls_test.c.)
 */
#include <arpa/inet.h>
#include <nghttp2/nghttp2.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "argot/rpc.h"
#include "test.h"

static atomic_int cancelled_seen;

static int h_echo(ag_rpc_call *c, void *ud)
{
    (void)ud;
    uint8_t *m;
    size_t len;
    int rc;
    while ((rc = ag_rpc_call_recv(c, &m, &len)) == 1) {
        ag_rpc_call_send(c, m, len);
        ag_free(m);
    }
    return rc == 0 ? AG_RPC_OK : AG_RPC_CANCELLED;
}

static int h_meta(ag_rpc_call *c, void *ud)
{
    (void)ud;
    ag_slice v;
    const char *k;
    for (size_t i = 0; (k = ag_rpc_call_metadata(c, false, i, &v)) != NULL; i++)
        if (strcmp(k, "x-in") == 0)
            ag_rpc_call_add_metadata(c, "x-out", v.ptr, v.len);
    uint8_t *m;
    size_t len;
    while (ag_rpc_call_recv(c, &m, &len) == 1)
        ag_free(m);
    ag_rpc_call_send(c, "ok", 2);
    ag_rpc_call_add_trailer(c, "x-trl-bin", "\x00\x01\xfe", 3);
    return AG_RPC_OK;
}

static int h_fail(ag_rpc_call *c, void *ud)
{
    (void)ud;
    ag_rpc_call_set_status_message(c, "no row with key 'k7' \xe2\x98\xba");
    return AG_RPC_NOT_FOUND;
}

static int h_wait(ag_rpc_call *c, void *ud)
{
    (void)ud;
    uint8_t *m;
    size_t len;
    int rc;
    while ((rc = ag_rpc_call_recv(c, &m, &len)) == 1)
        ag_free(m);
    if (rc < 0)
        atomic_fetch_add(&cancelled_seen, 1);
    return AG_RPC_OK;
}

/* One request holding a count n; n responses of 100 bytes. */
static int h_many(ag_rpc_call *c, void *ud)
{
    (void)ud;
    uint8_t *m;
    size_t len;
    if (ag_rpc_call_recv(c, &m, &len) != 1)
        return AG_RPC_INVALID_ARGUMENT;
    int n = atoi((char *)m);
    ag_free(m);
    uint8_t buf[100];
    for (int i = 0; i < n; i++) {
        memset(buf, 'a' + i % 26, sizeof(buf));
        if (ag_rpc_call_send(c, buf, sizeof(buf)) < 0)
            return AG_RPC_CANCELLED;
    }
    return AG_RPC_OK;
}

/* Streams 40 messages of 1 MiB, counting how many it got out. */
static atomic_int big_sent;

static int h_flood(ag_rpc_call *c, void *ud)
{
    (void)ud;
    uint8_t *buf = ag_calloc(1, 1u << 20);
    for (int i = 0; i < 40; i++) {
        buf[0] = (uint8_t)i;
        if (ag_rpc_call_send(c, buf, 1u << 20) < 0)
            break;
        atomic_fetch_add(&big_sent, 1);
    }
    ag_free(buf);
    return AG_RPC_OK;
}

static ag_rpc_server *server_up(const char *addr, char *target, size_t cap)
{
    ag_rpc_server_opts o;
    ag_rpc_server_opts_init(&o);
    o.loops = 2;
    ag_rpc_server *s = ag_rpc_server_new(&o);
    CHECK(s);
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Echo", h_echo, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Meta", h_meta, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Fail", h_fail, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Wait", h_wait, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Many", h_many, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Flood", h_flood, NULL));
    if (ag_rpc_server_start(s, addr) < 0)
        FAIL("start: %s", ag_rpc_server_errmsg(s));
    if (strncmp(addr, "unix:", 5) == 0)
        snprintf(target, cap, "%s", addr);
    else
        snprintf(target, cap, "127.0.0.1:%d", ag_rpc_server_port(s));
    return s;
}

TEST_TIMEOUT(rpc_rt_unary_and_statuses, 60)
{
    char target[128];
    ag_rpc_server *s = server_up("127.0.0.1:0", target, sizeof(target));
    CHECK(ag_rpc_server_port(s) > 0);
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    CHECK(ch);
    uint8_t *resp;
    size_t len;
    char *msg;
    int st = ag_rpc_unary(ch, "/t.S/Echo", "ping", 4, ag_deadline_in_ms(10000), &resp, &len,
                          &msg);
    CHECK_EQ(st, AG_RPC_OK);
    CHECK(len == 4 && memcmp(resp, "ping", 4) == 0);
    ag_free(resp);
    ag_free(msg);

    st = ag_rpc_unary(ch, "/t.S/Fail", "", 0, ag_deadline_never(), &resp, &len, &msg);
    CHECK_EQ(st, AG_RPC_NOT_FOUND);
    CHECK_STR_EQ(msg, "no row with key 'k7' \xe2\x98\xba");
    CHECK(resp == NULL);
    ag_free(msg);

    st = ag_rpc_unary(ch, "/t.S/Nope", "", 0, ag_deadline_never(), &resp, &len, &msg);
    CHECK_EQ(st, AG_RPC_UNIMPLEMENTED);
    CHECK_STR_EQ(msg, "unknown method /t.S/Nope");
    ag_free(msg);

    /* a message over the server's 4 MiB limit */
    size_t big = (4u << 20) + 1;
    uint8_t *b = ag_calloc(1, big);
    st = ag_rpc_unary(ch, "/t.S/Echo", b, big, ag_deadline_never(), &resp, &len, &msg);
    CHECK_EQ(st, AG_RPC_RESOURCE_EXHAUSTED);
    CHECK_STR_EQ(msg, "received message larger than max (4194305 vs. 4194304)");
    ag_free(msg);
    ag_free(b);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_rt_metadata_both_ways, 60)
{
    char target[128];
    ag_rpc_server *s = server_up("127.0.0.1:0", target, sizeof(target));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    ag_rpc_call *c = ag_rpc_call_new(ch, "/t.S/Meta", ag_deadline_in_ms(10000));
    CHECK_OK(ag_rpc_call_add_metadata(c, "x-in", "alice", 5));
    CHECK_EQ(ag_rpc_call_add_metadata(c, "grpc-timeout", "1S", 2), AG_E_INVAL);
    CHECK_EQ(ag_rpc_call_add_metadata(c, "x-bad", "a\nb", 3), AG_E_INVAL);
    CHECK_OK(ag_rpc_call_close_send(c));
    uint8_t *m;
    size_t len;
    CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 1);
    CHECK(len == 2 && memcmp(m, "ok", 2) == 0);
    ag_free(m);
    CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 0);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_slice v;
    const char *k = ag_rpc_call_metadata(c, false, 0, &v);
    CHECK_STR_EQ(k, "x-out");
    CHECK(v.len == 5 && memcmp(v.ptr, "alice", 5) == 0);
    k = ag_rpc_call_metadata(c, true, 0, &v);
    CHECK_STR_EQ(k, "x-trl-bin");
    CHECK(v.len == 3 && memcmp(v.ptr, "\x00\x01\xfe", 3) == 0);
    CHECK(ag_rpc_call_metadata(c, true, 1, &v) == NULL);
    ag_rpc_call_free(c);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_rt_streaming, 60)
{
    char target[128];
    ag_rpc_server *s = server_up("127.0.0.1:0", target, sizeof(target));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    /* server streaming: 2000 responses */
    ag_rpc_call *c = ag_rpc_call_new(ch, "/t.S/Many", ag_deadline_in_ms(20000));
    CHECK_OK(ag_rpc_call_send(c, "2000", 5));
    CHECK_OK(ag_rpc_call_close_send(c));
    uint8_t *m;
    size_t len;
    int n = 0;
    while (ag_rpc_call_recv(c, &m, &len) == 1) {
        CHECK_EQ(len, 100);
        CHECK_EQ(m[0], 'a' + n % 26);
        ag_free(m);
        n++;
    }
    CHECK_EQ(n, 2000);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);
    /* ping-pong on one stream */
    c = ag_rpc_call_new(ch, "/t.S/Echo", ag_deadline_in_ms(20000));
    for (int i = 0; i < 200; i++) {
        char buf[32];
        int l = snprintf(buf, sizeof(buf), "msg-%d", i);
        CHECK_OK(ag_rpc_call_send(c, buf, (size_t)l));
        CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 1);
        CHECK(len == (size_t)l && memcmp(m, buf, len) == 0);
        ag_free(m);
    }
    CHECK_OK(ag_rpc_call_close_send(c));
    CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 0);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_rt_deadline_and_cancel, 60)
{
    char target[128];
    ag_rpc_server *s = server_up("127.0.0.1:0", target, sizeof(target));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    atomic_store(&cancelled_seen, 0);
    uint64_t t0 = ag_now_ms();
    ag_rpc_call *c = ag_rpc_call_new(ch, "/t.S/Wait", ag_deadline_in_ms(200));
    CHECK_OK(ag_rpc_call_send(c, "x", 1));
    const char *msg;
    CHECK_EQ(ag_rpc_call_status(c, &msg), AG_RPC_DEADLINE_EXCEEDED);
    CHECK_STR_EQ(msg, "deadline exceeded");
    uint64_t took = ag_now_ms() - t0;
    CHECK(took >= 190 && took < 3000);
    ag_rpc_call_free(c);
    /* the application cancels */
    c = ag_rpc_call_new(ch, "/t.S/Wait", ag_deadline_never());
    CHECK_OK(ag_rpc_call_send(c, "x", 1));
    ag_sleep_ms(50);
    ag_rpc_call_cancel(c);
    CHECK_EQ(ag_rpc_call_status(c, &msg), AG_RPC_CANCELLED);
    ag_rpc_call_free(c);
    for (int i = 0; i < 200 && atomic_load(&cancelled_seen) < 2; i++)
        ag_sleep_ms(10);
    CHECK_EQ(atomic_load(&cancelled_seen), 2); /* both handlers saw it */
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_rt_unreachable_target, 60)
{
    ag_rpc_channel *ch = ag_rpc_channel_new("127.0.0.1:1", NULL);
    uint8_t *resp;
    size_t len;
    char *msg;
    int st = ag_rpc_unary(ch, "/t.S/Echo", "x", 1, ag_deadline_in_ms(5000), &resp, &len, &msg);
    CHECK_EQ(st, AG_RPC_UNAVAILABLE);
    CHECK_STR_EQ(msg, "cannot connect to 127.0.0.1:1: connection refused");
    ag_free(msg);
    ag_rpc_channel_free(ch);
}

TEST_TIMEOUT(rpc_rt_unix_socket_and_shutdown, 60)
{
    char addr[300], target[300];
    snprintf(addr, sizeof(addr), "unix:%s", ag_test_path("rpc.sock"));
    ag_rpc_server *s = server_up(addr, target, sizeof(target));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    uint8_t *resp;
    size_t len;
    char *msg;
    CHECK_EQ(ag_rpc_unary(ch, "/t.S/Echo", "hi", 2, ag_deadline_never(), &resp, &len, &msg),
             AG_RPC_OK);
    ag_free(resp);
    ag_free(msg);
    /* a call in flight survives a graceful shutdown's grace period */
    ag_rpc_call *c = ag_rpc_call_new(ch, "/t.S/Echo", ag_deadline_in_ms(10000));
    CHECK_OK(ag_rpc_call_send(c, "a", 1));
    uint8_t *m;
    CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 1);
    ag_free(m);
    ag_rpc_server_shutdown(s, 100); /* the call never ends: cancelled after 100 ms */
    CHECK_EQ(ag_rpc_call_status(c, NULL) != AG_RPC_OK, 1);
    ag_rpc_call_free(c);
    /* nothing listens any more */
    int st = ag_rpc_unary(ch, "/t.S/Echo", "x", 1, ag_deadline_in_ms(3000), &resp, &len, &msg);
    CHECK_EQ(st, AG_RPC_UNAVAILABLE);
    ag_free(msg);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

struct worker {
    ag_rpc_channel *ch;
    int ok;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 50; i++) {
        char req[32];
        int l = snprintf(req, sizeof(req), "req-%d", i);
        uint8_t *resp;
        size_t len;
        char *msg;
        int st = ag_rpc_unary(w->ch, "/t.S/Echo", req, (size_t)l, ag_deadline_in_ms(20000),
                              &resp, &len, &msg);
        if (st == AG_RPC_OK && len == (size_t)l && memcmp(resp, req, len) == 0)
            w->ok++;
        ag_free(resp);
        ag_free(msg);
    }
    return NULL;
}

TEST_TIMEOUT(rpc_rt_many_threads_one_channel, 60)
{
    char target[128];
    ag_rpc_server *s = server_up("127.0.0.1:0", target, sizeof(target));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    struct worker w[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){ch, 0};
        CHECK_EQ(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ(w[i].ok, 50);
    }
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

/* A fast sender and a slow reader: flow control stalls the sender after a
 * bounded amount (the reader's queue limit, the windows, the sender's own
 * limit), then everything arrives once the reader reads. */
TEST_TIMEOUT(rpc_rt_backpressure_both_ways, 60)
{
    char target[128];
    ag_rpc_server *s = server_up("127.0.0.1:0", target, sizeof(target));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    atomic_store(&big_sent, 0);
    ag_rpc_call *c = ag_rpc_call_new(ch, "/t.S/Flood", ag_deadline_in_ms(30000));
    CHECK_OK(ag_rpc_call_close_send(c));
    ag_sleep_ms(500); /* read nothing for a while */
    int early = atomic_load(&big_sent);
    CHECK(early >= 4);  /* it did start */
    CHECK(early <= 16); /* 4 MiB queued here + windows + 4 MiB there, not 40 */
    uint8_t *m;
    size_t len;
    int n = 0;
    while (ag_rpc_call_recv(c, &m, &len) == 1) {
        CHECK(len == (1u << 20) && m[0] == (uint8_t)n);
        ag_free(m);
        n++;
    }
    CHECK_EQ(n, 40);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

/* The port is the server's alone: a second server, in this process or
 * another, cannot bind it, not even with SO_REUSEPORT, while every loop of
 * the first still takes connections. */
TEST_TIMEOUT(rpc_rt_port_is_exclusive, 60)
{
    char target[128];
    ag_rpc_server *s = server_up("127.0.0.1:0", target, sizeof(target));
    int port = ag_rpc_server_port(s);
    char addr[64], want[128];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    ag_rpc_server *s2 = ag_rpc_server_new(NULL);
    CHECK_EQ(ag_rpc_server_start(s2, addr), AG_E_SYS);
    snprintf(want, sizeof(want), "%s: address already in use", addr);
    CHECK_STR_EQ(ag_rpc_server_errmsg(s2), want);
    ag_rpc_server_free(s2);
    /* what another process would do to share the port */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
    CHECK_EQ(errno, EADDRINUSE);
    close(fd);
    /* many connections, spread over the loops, all served */
    ag_rpc_channel *chs[8];
    for (int i = 0; i < 8; i++)
        chs[i] = ag_rpc_channel_new(target, NULL);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 8; i++) {
            uint8_t *resp;
            size_t len;
            char *msg;
            CHECK_EQ(ag_rpc_unary(chs[i], "/t.S/Echo", "hi", 2, ag_deadline_in_ms(10000), &resp,
                                  &len, &msg),
                     AG_RPC_OK);
            ag_free(resp);
            ag_free(msg);
        }
    }
    for (int i = 0; i < 8; i++)
        ag_rpc_channel_free(chs[i]);
    ag_rpc_server_free(s);
    /* once it is gone, the port is free again */
    s2 = ag_rpc_server_new(NULL);
    if (ag_rpc_server_start(s2, addr) < 0)
        FAIL("%s", ag_rpc_server_errmsg(s2));
    ag_rpc_server_free(s2);
}

/* gRPC's connection backoff: after a failed attempt, calls fail fast until
 * the backoff passed; then the channel connects again, and a success
 * resets it. */
TEST_TIMEOUT(rpc_rt_reconnect_backoff, 60)
{
    int port = ag_test_free_port();
    char target[64], addr[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    co.backoff_initial_ms = 300;
    co.backoff_max_ms = 1000;
    ag_rpc_channel *ch = ag_rpc_channel_new(target, &co);
    uint8_t *resp;
    size_t len;
    char *msg;
    char want[128];
    snprintf(want, sizeof(want), "cannot connect to %s: connection refused", target);
    CHECK_EQ(ag_rpc_unary(ch, "/t.S/Echo", "x", 1, ag_deadline_in_ms(5000), &resp, &len, &msg),
             AG_RPC_UNAVAILABLE);
    CHECK_STR_EQ(msg, want);
    ag_free(msg);
    /* within the backoff: at once, the same error and when the next try is */
    uint64_t t0 = ag_now_ms();
    CHECK_EQ(ag_rpc_unary(ch, "/t.S/Echo", "x", 1, ag_deadline_in_ms(5000), &resp, &len, &msg),
             AG_RPC_UNAVAILABLE);
    CHECK(strncmp(msg, want, strlen(want)) == 0);
    CHECK(strstr(msg, "(next attempt in "));
    CHECK(ag_now_ms() - t0 < 200);
    ag_free(msg);
    /* the server comes up; after the backoff (at most 1.2 x 300 ms) the
     * channel connects */
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    char t2[128];
    ag_rpc_server *s = server_up(addr, t2, sizeof(t2));
    ag_sleep_ms(400);
    CHECK_EQ(ag_rpc_unary(ch, "/t.S/Echo", "x", 1, ag_deadline_in_ms(5000), &resp, &len, &msg),
             AG_RPC_OK);
    ag_free(resp);
    ag_free(msg);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

/* A peer that accepted the connection and went silent (a dead host, a
 * stuck process): keepalive pings find out, and the call fails instead of
 * waiting for its deadline. */
TEST_TIMEOUT(rpc_rt_keepalive_detects_a_silent_peer, 60)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ(listen(fd, 4), 0); /* the kernel accepts; nobody ever reads */
    socklen_t sl = sizeof(sa);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", ntohs(sa.sin_port));
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    co.keepalive_time_ms = 200;
    co.keepalive_timeout_ms = 300;
    ag_rpc_channel *ch = ag_rpc_channel_new(target, &co);
    uint64_t t0 = ag_now_ms();
    uint8_t *resp;
    size_t len;
    char *msg;
    CHECK_EQ(ag_rpc_unary(ch, "/t.S/Echo", "x", 1, ag_deadline_in_ms(20000), &resp, &len, &msg),
             AG_RPC_UNAVAILABLE);
    CHECK_STR_EQ(msg, "keepalive: the peer did not answer a ping within 300 ms");
    uint64_t took = ag_now_ms() - t0;
    CHECK(took >= 450 && took < 5000);
    ag_free(msg);
    ag_rpc_channel_free(ch);
    close(fd);
}

/* A DNS name with several addresses: every one is tried, in order ("localhost"
 * is often ::1 first, and this server listens on 127.0.0.1 only). */
TEST_TIMEOUT(rpc_rt_name_with_several_addresses, 60)
{
    char target[128], byname[128];
    ag_rpc_server *s = server_up("127.0.0.1:0", target, sizeof(target));
    snprintf(byname, sizeof(byname), "localhost:%d", ag_rpc_server_port(s));
    ag_rpc_channel *ch = ag_rpc_channel_new(byname, NULL);
    uint8_t *resp;
    size_t len;
    char *msg;
    CHECK_EQ(ag_rpc_unary(ch, "/t.S/Echo", "x", 1, ag_deadline_in_ms(5000), &resp, &len, &msg),
             AG_RPC_OK);
    ag_free(resp);
    ag_free(msg);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

/* A client that vanishes mid-stream: its request headers and half a message
 * arrive, then the socket closes. The handler's receive ends (the call is
 * cancelled), nothing leaks, and the server keeps serving. */
static ssize_t half_message(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)flags;
    (void)ud;
    int *sent = src->ptr;
    if (*sent)
        return NGHTTP2_ERR_DEFERRED; /* the rest never comes */
    static const uint8_t part[] = {0, 0, 0, 0, 100, 'a', 'b', 'c'}; /* 3 of 100 bytes */
    CHECK(len >= sizeof(part));
    memcpy(buf, part, sizeof(part));
    *sent = 1;
    return sizeof(part);
}

TEST_TIMEOUT(rpc_rt_client_vanishes_mid_stream, 60)
{
    char target[128];
    ag_rpc_server *s = server_up("127.0.0.1:0", target, sizeof(target));
    atomic_store(&cancelled_seen, 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)ag_rpc_server_port(s))};
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    nghttp2_session_callbacks *cb;
    CHECK_EQ(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session *h;
    CHECK_EQ(nghttp2_session_client_new(&h, cb, NULL), 0);
    nghttp2_session_callbacks_del(cb);
    CHECK_EQ(nghttp2_submit_settings(h, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)"/t.S/Wait", 5, 9, 0},
        {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
    };
    int sent = 0;
    nghttp2_data_provider prd = {.source.ptr = &sent, .read_callback = half_message};
    CHECK(nghttp2_submit_request(h, NULL, nv, AG_ARRAY_LEN(nv), &prd, NULL) > 0);
    const uint8_t *p;
    ssize_t k;
    while ((k = nghttp2_session_mem_send(h, &p)) > 0)
        CHECK_EQ(write(fd, p, (size_t)k), k);
    ag_sleep_ms(100); /* the handler is waiting for the rest */
    close(fd);
    nghttp2_session_del(h);
    for (int i = 0; i < 200 && atomic_load(&cancelled_seen) < 1; i++)
        ag_sleep_ms(10);
    CHECK_EQ(atomic_load(&cancelled_seen), 1);
    /* and the server goes on */
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    uint8_t *resp;
    size_t len;
    char *msg;
    CHECK_EQ(ag_rpc_unary(ch, "/t.S/Echo", "hi", 2, ag_deadline_in_ms(5000), &resp, &len, &msg),
             AG_RPC_OK);
    ag_free(resp);
    ag_free(msg);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

/* A client that connects and never speaks is disconnected after the
 * server's handshake timeout; one that speaks stays. */
TEST_TIMEOUT(rpc_rt_server_handshake_timeout, 60)
{
    ag_rpc_server_opts o;
    ag_rpc_server_opts_init(&o);
    o.handshake_timeout_ms = 300;
    ag_rpc_server *s = ag_rpc_server_new(&o);
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Echo", h_echo, NULL));
    CHECK_OK(ag_rpc_server_start(s, "127.0.0.1:0"));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)ag_rpc_server_port(s))};
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    uint64_t t0 = ag_now_ms();
    char b[256];
    ssize_t n;
    while ((n = read(fd, b, sizeof(b))) > 0) {
        /* the server's SETTINGS; then nothing until it closes */
    }
    CHECK_EQ(n, 0);
    uint64_t took = ag_now_ms() - t0;
    CHECK(took >= 250 && took < 5000);
    close(fd);
    /* a real client, idle longer than the timeout, keeps its connection */
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", ag_rpc_server_port(s));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    for (int i = 0; i < 2; i++) {
        uint8_t *resp;
        size_t len;
        char *msg;
        CHECK_EQ(ag_rpc_unary(ch, "/t.S/Echo", "x", 1, ag_deadline_in_ms(5000), &resp, &len, &msg),
                 AG_RPC_OK);
        ag_free(resp);
        ag_free(msg);
        ag_sleep_ms(400);
    }
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}
