/*
 * argot's gRPC against an independent implementation: Debian's
 * python3-grpcio (tests/integration/peers/grpc_peer.py), both ways. An
 * argot server in this process serves the peer's client; the peer's server,
 * a separate process, serves argot's channel. The same service on both
 * sides: unary with metadata and trailers, a 1 MiB message, statuses with
 * non-ASCII messages, an unknown method, streaming in each direction, and
 * a deadline.
 */
#include <unistd.h>

#include "argot/rpc.h"
#include "test.h"

#define PEER "tests/integration/peers/grpc_peer.py"
#define FAIL_MSG "no row with key 'k7' \xe2\x98\xba"

/* ---- the service, argot side ---------------------------------------------------- */

static int s_echo(ag_rpc_call *c, void *ud)
{
    (void)ud;
    ag_slice v;
    const char *k;
    for (size_t i = 0; (k = ag_rpc_call_metadata(c, false, i, &v)) != NULL; i++)
        if (strcmp(k, "x-in") == 0)
            ag_rpc_call_add_metadata(c, "x-out", v.ptr, v.len);
    uint8_t *m;
    size_t len;
    if (ag_rpc_call_recv(c, &m, &len) != 1)
        return AG_RPC_INVALID_ARGUMENT;
    ag_rpc_call_send(c, m, len);
    ag_free(m);
    ag_rpc_call_add_trailer(c, "x-trl-bin", "\x00\x01\xfe", 3);
    return AG_RPC_OK;
}

static int s_fail(ag_rpc_call *c, void *ud)
{
    (void)ud;
    ag_rpc_call_set_status_message(c, FAIL_MSG);
    return AG_RPC_NOT_FOUND;
}

static int s_many(ag_rpc_call *c, void *ud)
{
    (void)ud;
    uint8_t *m;
    size_t len;
    if (ag_rpc_call_recv(c, &m, &len) != 1)
        return AG_RPC_INVALID_ARGUMENT;
    char num[16];
    snprintf(num, sizeof(num), "%.*s", (int)AG_MIN(len, 15), (char *)m);
    ag_free(m);
    uint8_t buf[100];
    for (int i = 0, n = atoi(num); i < n; i++) {
        memset(buf, 'a' + i % 26, sizeof(buf));
        ag_rpc_call_send(c, buf, sizeof(buf));
    }
    return AG_RPC_OK;
}

static int s_count(ag_rpc_call *c, void *ud)
{
    (void)ud;
    uint8_t *m;
    size_t len;
    int n = 0;
    while (ag_rpc_call_recv(c, &m, &len) == 1) {
        ag_free(m);
        n++;
    }
    char out[16];
    int l = snprintf(out, sizeof(out), "%d", n);
    ag_rpc_call_send(c, out, (size_t)l);
    return AG_RPC_OK;
}

static int s_bidi(ag_rpc_call *c, void *ud)
{
    (void)ud;
    uint8_t *m;
    size_t len;
    while (ag_rpc_call_recv(c, &m, &len) == 1) {
        ag_rpc_call_send(c, m, len);
        ag_free(m);
    }
    return AG_RPC_OK;
}

static int s_wait(ag_rpc_call *c, void *ud)
{
    (void)ud;
    uint8_t *m;
    size_t len;
    while (ag_rpc_call_recv(c, &m, &len) == 1)
        ag_free(m);
    while (!ag_rpc_call_is_cancelled(c)) /* never answers: the client's deadline ends it */
        ag_sleep_ms(10);
    return AG_RPC_OK;
}

TEST_TIMEOUT(rpc_interop_python_client_to_argot_server, 120)
{
    ag_rpc_server *s = ag_rpc_server_new(NULL);
    CHECK(s);
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Echo", s_echo, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Fail", s_fail, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Many", s_many, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Count", s_count, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Bidi", s_bidi, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Wait", s_wait, NULL));
    if (ag_rpc_server_start(s, "127.0.0.1:0") < 0)
        FAIL("%s", ag_rpc_server_errmsg(s));
    char port[16];
    snprintf(port, sizeof(port), "%d", ag_rpc_server_port(s));
    const char *argv[] = {"/usr/bin/python3", PEER, "client", port, NULL};
    ag_test_proc p;
    int st = ag_test_run(&p, argv, NULL, 100);
    if (st != 0)
        FAIL("python client exit %d:\n%s%s", st, p.out, p.err);
    static const char *const cases[] = {"unary_with_metadata", "large_unary",
                                        "status_and_message", "unimplemented_method",
                                        "server_streaming", "client_streaming",
                                        "bidi_streaming", "deadline"};
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        char want[64];
        snprintf(want, sizeof(want), "ok %s\n", cases[i]);
        CHECK_CONTAINS(p.out, want);
    }
    ag_test_proc_cleanup(&p);
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_interop_argot_client_to_python_server, 120)
{
    const char *argv[] = {"/usr/bin/python3", PEER, "server", NULL};
    int fd;
    pid_t pid = ag_test_spawn(argv, &fd);
    char port[32];
    if (ag_test_read_line(fd, port, sizeof(port), 30) <= 0)
        FAIL("the python server did not print its port");
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%s", port);
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    CHECK(ch);

    /* unary with metadata and trailers */
    ag_rpc_call *c = ag_rpc_call_new(ch, "/t.S/Echo", ag_deadline_in_ms(10000));
    CHECK_OK(ag_rpc_call_add_metadata(c, "x-in", "alice", 5));
    CHECK_OK(ag_rpc_call_send(c, "ping", 4));
    CHECK_OK(ag_rpc_call_close_send(c));
    uint8_t *m;
    size_t len;
    CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 1);
    CHECK(len == 4 && memcmp(m, "ping", 4) == 0);
    ag_free(m);
    const char *msg;
    CHECK_EQ(ag_rpc_call_status(c, &msg), AG_RPC_OK);
    ag_slice v;
    bool out_seen = false, trl_seen = false;
    const char *k;
    for (size_t i = 0; (k = ag_rpc_call_metadata(c, false, i, &v)) != NULL; i++)
        out_seen |= strcmp(k, "x-out") == 0 && v.len == 5 && memcmp(v.ptr, "alice", 5) == 0;
    for (size_t i = 0; (k = ag_rpc_call_metadata(c, true, i, &v)) != NULL; i++)
        trl_seen |= strcmp(k, "x-trl-bin") == 0 && v.len == 3 &&
                    memcmp(v.ptr, "\x00\x01\xfe", 3) == 0;
    CHECK(out_seen && trl_seen);
    ag_rpc_call_free(c);

    /* a 1 MiB message */
    size_t big = 1u << 20;
    uint8_t *b = ag_malloc(big);
    for (size_t i = 0; i < big; i++)
        b[i] = (uint8_t)i;
    uint8_t *resp;
    char *smsg;
    CHECK_EQ(ag_rpc_unary(ch, "/t.S/Echo", b, big, ag_deadline_in_ms(20000), &resp, &len, &smsg),
             AG_RPC_OK);
    CHECK(len == big && memcmp(resp, b, big) == 0);
    ag_free(resp);
    ag_free(smsg);
    ag_free(b);

    /* statuses */
    CHECK_EQ(ag_rpc_unary(ch, "/t.S/Fail", "", 0, ag_deadline_in_ms(10000), &resp, &len, &smsg),
             AG_RPC_NOT_FOUND);
    CHECK_STR_EQ(smsg, FAIL_MSG);
    ag_free(smsg);
    CHECK_EQ(ag_rpc_unary(ch, "/t.S/Nope", "", 0, ag_deadline_in_ms(10000), &resp, &len, &smsg),
             AG_RPC_UNIMPLEMENTED);
    ag_free(smsg);

    /* server streaming */
    c = ag_rpc_call_new(ch, "/t.S/Many", ag_deadline_in_ms(20000));
    CHECK_OK(ag_rpc_call_send(c, "500", 3));
    CHECK_OK(ag_rpc_call_close_send(c));
    int n = 0;
    while (ag_rpc_call_recv(c, &m, &len) == 1) {
        CHECK(len == 100 && m[0] == 'a' + n % 26);
        ag_free(m);
        n++;
    }
    CHECK_EQ(n, 500);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);

    /* client streaming */
    c = ag_rpc_call_new(ch, "/t.S/Count", ag_deadline_in_ms(20000));
    for (int i = 0; i < 300; i++)
        CHECK_OK(ag_rpc_call_send(c, "x", 1));
    CHECK_OK(ag_rpc_call_close_send(c));
    CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 1);
    CHECK(len == 3 && memcmp(m, "300", 3) == 0);
    ag_free(m);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);

    /* bidirectional ping-pong */
    c = ag_rpc_call_new(ch, "/t.S/Bidi", ag_deadline_in_ms(20000));
    for (int i = 0; i < 100; i++) {
        char buf[16];
        int l = snprintf(buf, sizeof(buf), "m%d", i);
        CHECK_OK(ag_rpc_call_send(c, buf, (size_t)l));
        CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 1);
        CHECK(len == (size_t)l && memcmp(m, buf, len) == 0);
        ag_free(m);
    }
    CHECK_OK(ag_rpc_call_close_send(c));
    CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 0);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);

    /* deadline against a server that never answers */
    CHECK_EQ(ag_rpc_unary(ch, "/t.S/Wait", "", 0, ag_deadline_in_ms(300), &resp, &len, &smsg),
             AG_RPC_DEADLINE_EXCEEDED);
    ag_free(smsg);

    ag_rpc_channel_free(ch);
    close(fd);
    ag_test_stop(pid);
}
