/*
 * argot's gRPC against an independent implementation: Debian's
 * python3-grpcio (tests/integration/peers/grpc_peer.py), both ways. An
 * argot server in this process serves the peer's client; the peer's server,
 * a separate process, serves argot's channel. The same service on both
 * sides: unary with metadata and trailers, a 1 MiB message, statuses with
 * non-ASCII messages, an unknown method, streaming in each direction, and
 * a deadline; then all of it again over TLS, and mutual TLS with the
 * client's identity seen by the server and refusals of clients without a
 * good certificate (certificates: tests/harness/pki.c). Last, another
 * process cannot bind a running server's port.
 */
#include <unistd.h>

#include "argot/rpc.h"
#include "pki.h"
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

static int s_whoami(ag_rpc_call *c, void *ud)
{
    (void)ud;
    uint8_t *m;
    size_t len;
    while (ag_rpc_call_recv(c, &m, &len) == 1)
        ag_free(m);
    const char *id = ag_rpc_call_peer_identity(c);
    if (!id)
        id = "(none)";
    ag_rpc_call_send(c, id, strlen(id));
    return AG_RPC_OK;
}

/* A file of the test PKI (rotating static slots). */
static const char *P(const char *name)
{
    static char slots[16][512];
    static unsigned next;
    char *p = slots[next++ % 16];
    snprintf(p, sizeof(slots[0]), "%s/%s", ag_test_pki(), name);
    return p;
}

static const char *const plain_cases[] = {"unary_with_metadata", "large_unary",
                                          "status_and_message", "unimplemented_method",
                                          "server_streaming", "client_streaming",
                                          "bidi_streaming", "deadline"};

/* An argot server with the whole service, TLS files from the test PKI
 * (NULL: none). */
static ag_rpc_server *argot_server(const char *cert, const char *key, const char *ca)
{
    ag_rpc_server_opts o;
    ag_rpc_server_opts_init(&o);
    o.tls_cert_file = cert ? P(cert) : NULL;
    o.tls_key_file = key ? P(key) : NULL;
    o.tls_ca_file = ca ? P(ca) : NULL;
    ag_rpc_server *s = ag_rpc_server_new(&o);
    CHECK(s);
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Echo", s_echo, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Fail", s_fail, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Many", s_many, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Count", s_count, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Bidi", s_bidi, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Wait", s_wait, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Whoami", s_whoami, NULL));
    if (ag_rpc_server_start(s, "127.0.0.1:0") < 0)
        FAIL("%s", ag_rpc_server_errmsg(s));
    return s;
}

/* Runs the python client against s with flags (NULL-terminated, after the
 * port), expecting "ok CASE" for each of cases. */
static void python_client(ag_rpc_server *s, const char *const *flags, const char *const *cases,
                          size_t ncases)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", ag_rpc_server_port(s));
    const char *argv[24] = {"/usr/bin/python3", PEER, "client", port};
    size_t n = 4;
    for (size_t i = 0; flags && flags[i] && n < AG_ARRAY_LEN(argv) - 1; i++)
        argv[n++] = flags[i];
    argv[n] = NULL;
    ag_test_proc p;
    int st = ag_test_run(&p, argv, NULL, 100);
    if (st != 0)
        FAIL("python client exit %d:\n%s%s", st, p.out, p.err);
    for (size_t i = 0; i < ncases; i++) {
        char want[64];
        snprintf(want, sizeof(want), "ok %s\n", cases[i]);
        CHECK_CONTAINS(p.out, want);
    }
    ag_test_proc_cleanup(&p);
}

TEST_TIMEOUT(rpc_interop_python_client_to_argot_server, 120)
{
    ag_rpc_server *s = argot_server(NULL, NULL, NULL);
    python_client(s, NULL, plain_cases, AG_ARRAY_LEN(plain_cases));
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_interop_python_tls_client_to_argot_server, 120)
{
    ag_rpc_server *s = argot_server("server.crt", "server.key", NULL);
    /* the certificate is checked for 127.0.0.1 (its IP subjectAltName) */
    const char *flags[] = {"--ca", P("ca.crt"), NULL};
    python_client(s, flags, plain_cases, AG_ARRAY_LEN(plain_cases));
    const char *flags2[] = {"--ca", P("ca.crt"), "--server-name", "localhost",
                            "--cases", "unary_with_metadata,whoami",
                            "--expect-identity", "(none)", NULL};
    const char *const cases2[] = {"unary_with_metadata", "whoami"};
    python_client(s, flags2, cases2, 2);
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_interop_python_mtls_client_to_argot_server, 120)
{
    ag_rpc_server *s = argot_server("server.crt", "server.key", "ca.crt");
    const char *alice[] = {"--ca", P("ca.crt"), "--cert", P("alice.crt"), "--key",
                           P("alice.key"), "--cases", "whoami,bidi_streaming,large_unary",
                           "--expect-identity", "alice", NULL};
    const char *const ok_cases[] = {"whoami", "bidi_streaming", "large_unary"};
    python_client(s, alice, ok_cases, 3);
    /* a certificate from another CA, and none */
    const char *const refused[] = {"refused"};
    const char *mallory[] = {"--ca", P("ca.crt"), "--cert", P("mallory.crt"), "--key",
                             P("mallory.key"), "--cases", "refused", NULL};
    python_client(s, mallory, refused, 1);
    const char *nobody[] = {"--ca", P("ca.crt"), "--cases", "refused", NULL};
    python_client(s, nobody, refused, 1);
    ag_rpc_server_free(s);
}

/* Starts the python server with flags (NULL-terminated); returns its pid,
 * with its stdout in *fd and "127.0.0.1:PORT" in target. */
static pid_t python_server(const char *const *flags, int *fd, char *target, size_t cap)
{
    const char *argv[16] = {"/usr/bin/python3", PEER, "server"};
    size_t n = 3;
    for (size_t i = 0; flags && flags[i] && n < AG_ARRAY_LEN(argv) - 1; i++)
        argv[n++] = flags[i];
    argv[n] = NULL;
    pid_t pid = ag_test_spawn(argv, fd);
    char port[32];
    if (ag_test_read_line(*fd, port, sizeof(port), 30) <= 0)
        FAIL("the python server did not print its port");
    snprintf(target, cap, "127.0.0.1:%s", port);
    return pid;
}

/* Every case of the service, from argot's channel. */
static void argot_client_cases(ag_rpc_channel *ch)
{
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
}

static ag_rpc_channel *tls_channel(const char *target, const char *cert, const char *key)
{
    ag_rpc_channel_opts o;
    ag_rpc_channel_opts_init(&o);
    o.tls = true;
    o.tls_ca_file = P("ca.crt");
    o.tls_cert_file = cert ? P(cert) : NULL;
    o.tls_key_file = key ? P(key) : NULL;
    ag_rpc_channel *ch = ag_rpc_channel_new(target, &o);
    CHECK(ch);
    CHECK_STR_EQ(ag_rpc_channel_errmsg(ch), "");
    return ch;
}

/* A unary call to Whoami; returns the status, the answer or message in out. */
static int whoami(ag_rpc_channel *ch, char *out, size_t cap)
{
    uint8_t *resp;
    size_t len;
    char *msg;
    int st = ag_rpc_unary(ch, "/t.S/Whoami", "", 0, ag_deadline_in_ms(10000), &resp, &len, &msg);
    snprintf(out, cap, "%.*s", st == AG_RPC_OK ? (int)len : (int)strlen(msg),
             st == AG_RPC_OK ? (char *)resp : msg);
    ag_free(resp);
    ag_free(msg);
    return st;
}

TEST_TIMEOUT(rpc_interop_argot_client_to_python_server, 120)
{
    int fd;
    char target[64];
    pid_t pid = python_server(NULL, &fd, target, sizeof(target));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    CHECK(ch);
    argot_client_cases(ch);
    ag_rpc_channel_free(ch);
    close(fd);
    ag_test_stop(pid);
}

TEST_TIMEOUT(rpc_interop_argot_tls_client_to_python_server, 120)
{
    int fd;
    char target[64];
    const char *flags[] = {"--cert", P("server.crt"), "--key", P("server.key"), NULL};
    pid_t pid = python_server(flags, &fd, target, sizeof(target));
    ag_rpc_channel *ch = tls_channel(target, NULL, NULL);
    argot_client_cases(ch);
    char out[600];
    CHECK_EQ(whoami(ch, out, sizeof(out)), AG_RPC_OK);
    CHECK_STR_EQ(out, "(none)");
    ag_rpc_channel_free(ch);
    close(fd);
    ag_test_stop(pid);
}

TEST_TIMEOUT(rpc_interop_argot_mtls_client_to_python_server, 120)
{
    int fd;
    char target[64];
    const char *flags[] = {"--cert", P("server.crt"), "--key", P("server.key"), "--ca",
                           P("ca.crt"), NULL};
    pid_t pid = python_server(flags, &fd, target, sizeof(target));
    ag_rpc_channel *ch = tls_channel(target, "alice.crt", "alice.key");
    char out[600];
    CHECK_EQ(whoami(ch, out, sizeof(out)), AG_RPC_OK);
    CHECK_STR_EQ(out, "alice");
    uint8_t *resp;
    size_t len;
    char *msg;
    CHECK_EQ(ag_rpc_unary(ch, "/t.S/Echo", "ping", 4, ag_deadline_in_ms(10000), &resp, &len,
                          &msg),
             AG_RPC_OK);
    CHECK(len == 4 && memcmp(resp, "ping", 4) == 0);
    ag_free(resp);
    ag_free(msg);
    ag_rpc_channel_free(ch);
    /* refused: a certificate from another CA, and none */
    char want[200];
    snprintf(want, sizeof(want), "cannot connect to %s: TLS handshake: ", target);
    ch = tls_channel(target, "mallory.crt", "mallory.key");
    CHECK_EQ(whoami(ch, out, sizeof(out)), AG_RPC_UNAVAILABLE);
    CHECK_CONTAINS(out, want);
    ag_rpc_channel_free(ch);
    ch = tls_channel(target, NULL, NULL);
    CHECK_EQ(whoami(ch, out, sizeof(out)), AG_RPC_UNAVAILABLE);
    CHECK_CONTAINS(out, want);
    ag_rpc_channel_free(ch);
    close(fd);
    ag_test_stop(pid);
}

/* Another process cannot take a running server's port, even asking for
 * SO_REUSEPORT (which the server's old per-loop listeners allowed). */
TEST_TIMEOUT(rpc_interop_port_is_exclusive_across_processes, 60)
{
    ag_rpc_server *s = argot_server(NULL, NULL, NULL);
    char port[16];
    snprintf(port, sizeof(port), "%d", ag_rpc_server_port(s));
    const char *script =
        "import socket, sys\n"
        "s = socket.socket()\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n"
        "try:\n"
        "    s.bind(('127.0.0.1', int(sys.argv[1])))\n"
        "    s.listen()\n"
        "    print('bound')\n"
        "except OSError as e:\n"
        "    print('refused', e.strerror)\n";
    const char *argv[] = {"/usr/bin/python3", "-c", script, port, NULL};
    ag_test_proc p;
    CHECK_EQ(ag_test_run(&p, argv, NULL, 30), 0);
    CHECK_STR_EQ(p.out, "refused Address already in use\n");
    ag_test_proc_cleanup(&p);
    ag_rpc_server_free(s);
}
