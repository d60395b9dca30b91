/*
 * Tests for TLS in rpc: src/rpc/tls.c as a core (contexts from PEM files
 * and their errors; a client and a server wired in memory, under
 * failmalloc), then real servers and channels on 127.0.0.1 with TLS and
 * mutual TLS: calls of every shape, the client's identity in handlers,
 * every way a handshake must fail (unknown CA both ways, wrong name, no
 * client certificate, plaintext on one side, no ALPN h2, a peer that never
 * answers) and that each fails promptly with a status naming the reason.
 * The certificates come from tests/harness/pki.c.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "argot/rpc.h"
#include "pki.h"
#include "rpc/tls.h"
#include "test.h"

/* A file of the test PKI, in one of 16 rotating slots. */
static const char *P(const char *name)
{
    static char slots[16][512];
    static unsigned next;
    char *p = slots[next++ % 16];
    snprintf(p, sizeof(slots[0]), "%s/%s", ag_test_pki(), name);
    return p;
}

/* ---- contexts ------------------------------------------------------------------- */

static void expect_ctx_error(const ag__tls_ctx_opts *o, int code, const char *want)
{
    ag__tls_ctx *ctx = NULL;
    ag_errbuf err = {0};
    CHECK_EQ(ag__tls_ctx_new(&ctx, o, &err), code);
    CHECK(ctx == NULL);
    CHECK_STR_EQ(err.msg, want);
}

TEST(rpc_tls_ctx_file_errors)
{
    char want[1200];
    ag__tls_ctx_opts o = {.server = true, .cert_file = P("nope.crt"), .key_file = P("server.key")};
    snprintf(want, sizeof(want), "%s: no such file or directory", o.cert_file);
    expect_ctx_error(&o, AG_E_NOENT, want);

    o.cert_file = P("server.crt");
    o.key_file = P("alice.key");
    snprintf(want, sizeof(want), "%s: key does not match certificate (key from %s)", o.cert_file,
             o.key_file);
    expect_ctx_error(&o, AG_E_RPC_TLS, want);

    o.cert_file = P("server.key");
    o.key_file = P("server.key");
    snprintf(want, sizeof(want),
             "%s: no certificate in the file (expected PEM 'BEGIN CERTIFICATE')", o.cert_file);
    expect_ctx_error(&o, AG_E_RPC_TLS, want);

    o.cert_file = P("alice.crt");
    o.key_file = P("alice.crt");
    snprintf(want, sizeof(want),
             "%s: no private key in the file (expected PEM 'BEGIN PRIVATE KEY')", o.key_file);
    expect_ctx_error(&o, AG_E_RPC_TLS, want);

    o.key_file = P("secret.key");
    snprintf(want, sizeof(want), "%s: the key is encrypted (give an unencrypted key file)",
             o.key_file);
    expect_ctx_error(&o, AG_E_RPC_TLS, want);

    const char bad[] = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
    o.cert_file = ag_test_write_file("bad.crt", bad, sizeof(bad) - 1);
    o.key_file = P("alice.key");
    snprintf(want, sizeof(want), "%s: bad certificate: ", o.cert_file);
    ag__tls_ctx *ctx = NULL;
    ag_errbuf err = {0};
    CHECK_EQ(ag__tls_ctx_new(&ctx, &o, &err), AG_E_RPC_TLS);
    CHECK(strncmp(err.msg, want, strlen(want)) == 0 && strlen(err.msg) > strlen(want));

    o.cert_file = ag_test_tmpdir(); /* a directory */
    snprintf(want, sizeof(want), "%s: illegal operation on a directory", o.cert_file);
    expect_ctx_error(&o, AG_E_SYS, want);

    o.cert_file = P("server.crt");
    o.key_file = P("server.key");
    o.ca_file = P("nope-ca.crt");
    snprintf(want, sizeof(want), "%s: no such file or directory", o.ca_file);
    expect_ctx_error(&o, AG_E_NOENT, want);

    ag__tls_ctx_opts nokey = {.server = true, .cert_file = P("server.crt")};
    expect_ctx_error(&nokey, AG_E_INVAL, "TLS: a server needs a certificate file and a key file");
    ag__tls_ctx_opts half = {.server = false, .key_file = P("alice.key"), .server_name = "x"};
    expect_ctx_error(&half, AG_E_INVAL,
                     "TLS: a client certificate file and a key file go together");
    ag__tls_ctx_opts noname = {.server = false, .ca_file = P("ca.crt"), .server_name = ""};
    expect_ctx_error(&noname, AG_E_INVAL, "TLS: bad server name ''");
}

/* Moves what `from` has for its peer into `to`. */
static int move(ag__tls *from, ag__tls *to, ag_buf *wire)
{
    ag_buf_reset(wire);
    int rc = ag__tls_take_output(from, wire);
    if (rc == 0 && wire->len)
        rc = ag__tls_feed(to, wire->data, wire->len);
    return rc;
}

#define FM_STEP(expr)                                                            \
    do {                                                                         \
        int fm_r_ = (expr);                                                      \
        if (fm_r_ == AG_E_NOMEM && ag_alloc_failed())                            \
            goto out;                                                            \
        if (fm_r_ < 0)                                                           \
            FAIL("%s = %s", #expr, ag_err_name(fm_r_));                          \
    } while (0)

/* A mutual-TLS handshake and records both ways, in memory: every
 * allocation failing in turn ends cleanly. */
TEST_FM(rpc_tls_core_in_memory_failmalloc)
{
    ag__tls_ctx *sctx = NULL, *cctx = NULL;
    ag__tls *srv = NULL, *cli = NULL;
    ag_errbuf err = {0};
    ag_buf wire;
    ag_buf_init(&wire, 1u << 20);
    ag__tls_ctx_opts so = {.server = true,
                           .cert_file = P("server.crt"),
                           .key_file = P("server.key"),
                           .ca_file = P("ca.crt")};
    ag__tls_ctx_opts co = {.server = false,
                           .cert_file = P("alice.crt"),
                           .key_file = P("alice.key"),
                           .ca_file = P("ca.crt"),
                           .server_name = "localhost"};
    FM_TRY(ag__tls_ctx_new(&sctx, &so, &err), 0);
    FM_TRY(ag__tls_ctx_new(&cctx, &co, &err), 0);
    FM_NEW(srv = ag__tls_new(sctx));
    FM_NEW(cli = ag__tls_new(cctx));
    int hc = ag__tls_handshake(cli), hs = 0;
    CHECK_EQ(hc, 0); /* the ClientHello, waiting for an answer */
    for (int i = 0; i < 10 && (hc != 1 || hs != 1); i++) {
        FM_STEP(move(cli, srv, &wire));
        FM_STEP(hs = ag__tls_handshake(srv));
        FM_STEP(move(srv, cli, &wire));
        FM_STEP(hc = ag__tls_handshake(cli));
    }
    CHECK(hc == 1 && hs == 1);
    CHECK(ag__tls_handshake_done(srv) && ag__tls_handshake_done(cli));
    CHECK_STR_EQ(ag__tls_peer_identity(srv), "alice");
    CHECK(ag__tls_peer_identity(cli) == NULL);
    CHECK_STR_EQ(ag__tls_version(srv), "TLSv1.3");

    uint8_t buf[64];
    FM_STEP(ag__tls_write(cli, "hello", 5));
    FM_STEP(move(cli, srv, &wire));
    CHECK_EQ(ag__tls_read(srv, buf, sizeof(buf)), 5);
    CHECK_MEM_EQ(buf, "hello", 5);
    CHECK_EQ(ag__tls_read(srv, buf, sizeof(buf)), 0); /* nothing more yet */
    FM_STEP(ag__tls_write(srv, "world!", 6));
    FM_STEP(move(srv, cli, &wire));
    CHECK_EQ(ag__tls_read(cli, buf, sizeof(buf)), 6);
    CHECK_MEM_EQ(buf, "world!", 6);
    /* a record cut in two arrives whole */
    FM_STEP(ag__tls_write(cli, "split", 5));
    ag_buf_reset(&wire);
    FM_STEP(ag__tls_take_output(cli, &wire));
    FM_STEP(ag__tls_feed(srv, wire.data, 7));
    CHECK_EQ(ag__tls_read(srv, buf, sizeof(buf)), 0);
    FM_STEP(ag__tls_feed(srv, wire.data + 7, wire.len - 7));
    CHECK_EQ(ag__tls_read(srv, buf, sizeof(buf)), 5);
    /* close_notify */
    ag__tls_shutdown(cli);
    FM_STEP(move(cli, srv, &wire));
    CHECK_EQ(ag__tls_read(srv, buf, sizeof(buf)), AG_E_CLOSED);
out:
    ag__tls_free(cli);
    ag__tls_free(srv);
    ag__tls_ctx_free(cctx);
    ag__tls_ctx_free(sctx);
    ag_buf_cleanup(&wire);
}

/* Runs a handshake in memory; returns the client's and the server's final
 * results and messages. */
static void handshake_pair(const ag__tls_ctx_opts *so, const ag__tls_ctx_opts *co, int *hc,
                           int *hs, char *cmsg, char *smsg, char *sid)
{
    ag__tls_ctx *sctx, *cctx;
    ag_errbuf err = {0};
    if (ag__tls_ctx_new(&sctx, so, &err) < 0 || ag__tls_ctx_new(&cctx, co, &err) < 0)
        FAIL("%s", err.msg);
    ag__tls *srv = ag__tls_new(sctx), *cli = ag__tls_new(cctx);
    ag_buf wire;
    ag_buf_init(&wire, 1u << 20);
    *hs = 0;
    *hc = ag__tls_handshake(cli);
    for (int i = 0; i < 10 && *hc >= 0 && *hs >= 0 && (*hc != 1 || *hs != 1); i++) {
        CHECK_OK(move(cli, srv, &wire));
        *hs = ag__tls_handshake(srv);
        CHECK_OK(move(srv, cli, &wire));
        *hc = ag__tls_handshake(cli);
    }
    /* TLS 1.3: the client may finish before the server refuses it */
    if (*hc == 1 && *hs < 0) {
        uint8_t b[16];
        CHECK_OK(move(srv, cli, &wire));
        *hc = (int)ag__tls_read(cli, b, sizeof(b));
    }
    snprintf(cmsg, 256, "%s", ag__tls_errmsg(cli));
    snprintf(smsg, 256, "%s", ag__tls_errmsg(srv));
    const char *id = ag__tls_peer_identity(srv);
    snprintf(sid, 64, "%s", id ? id : "(none)");
    ag__tls_free(cli);
    ag__tls_free(srv);
    ag__tls_ctx_free(cctx);
    ag__tls_ctx_free(sctx);
    ag_buf_cleanup(&wire);
}

TEST(rpc_tls_core_verification)
{
    int hc, hs;
    char cm[256], sm[256], id[64];
    ag__tls_ctx_opts so = {.server = true, .cert_file = P("server.crt"),
                           .key_file = P("server.key"), .ca_file = P("ca.crt")};
    ag__tls_ctx_opts co = {.server = false, .ca_file = P("ca.crt"), .server_name = "localhost"};
    /* identity: no CN, so the first DNS name */
    co.cert_file = P("carol.crt");
    co.key_file = P("carol.key");
    handshake_pair(&so, &co, &hc, &hs, cm, sm, id);
    CHECK(hc == 1 && hs == 1);
    CHECK_STR_EQ(id, "carol.example");
    /* the server's name by IP address, v4 and v6 */
    co.server_name = "127.0.0.1";
    handshake_pair(&so, &co, &hc, &hs, cm, sm, id);
    CHECK(hc == 1 && hs == 1);
    co.server_name = "::1";
    handshake_pair(&so, &co, &hc, &hs, cm, sm, id);
    CHECK(hc == 1 && hs == 1);
    /* wrong names */
    co.server_name = "127.0.0.2";
    handshake_pair(&so, &co, &hc, &hs, cm, sm, id);
    CHECK(hc < 0);
    CHECK_STR_EQ(cm, "certificate verify failed: IP address mismatch");
    co.server_name = "other.example";
    handshake_pair(&so, &co, &hc, &hs, cm, sm, id);
    CHECK(hc < 0);
    CHECK_STR_EQ(cm, "certificate verify failed: hostname mismatch");
    /* a client certificate from another CA */
    co.server_name = "localhost";
    co.cert_file = P("mallory.crt");
    co.key_file = P("mallory.key");
    handshake_pair(&so, &co, &hc, &hs, cm, sm, id);
    CHECK(hc < 0 && hs < 0);
    CHECK_STR_EQ(sm, "certificate verify failed: unable to get local issuer certificate");
    CHECK_STR_EQ(cm, "tlsv1 alert unknown ca");
    /* no client certificate */
    co.cert_file = co.key_file = NULL;
    handshake_pair(&so, &co, &hc, &hs, cm, sm, id);
    CHECK(hc < 0 && hs < 0);
    CHECK_STR_EQ(sm, "peer did not return a certificate");
    CHECK_STR_EQ(cm, "tlsv13 alert certificate required");
    /* a server from another CA */
    co.ca_file = P("ca2.crt");
    handshake_pair(&so, &co, &hc, &hs, cm, sm, id);
    CHECK(hc < 0);
    CHECK_STR_EQ(cm, "certificate verify failed: unable to get local issuer certificate");
}

/* ---- real servers and channels -------------------------------------------------- */

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

/* Answers with the client's identity, "(none)" without one. */
static int h_whoami(ag_rpc_call *c, void *ud)
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

/* 32 messages of 1 MiB. */
static int h_flood(ag_rpc_call *c, void *ud)
{
    (void)ud;
    uint8_t *buf = ag_calloc(1, 1u << 20);
    for (int i = 0; i < 32; i++) {
        buf[0] = (uint8_t)i;
        buf[(1u << 20) - 1] = (uint8_t)~i;
        if (ag_rpc_call_send(c, buf, 1u << 20) < 0)
            break;
    }
    ag_free(buf);
    return AG_RPC_OK;
}

/* A server on 127.0.0.1 (or addr) with the test PKI's files (NULL: none). */
static ag_rpc_server *server_up(const char *addr, const char *cert, const char *key,
                                const char *ca)
{
    ag_rpc_server_opts o;
    ag_rpc_server_opts_init(&o);
    o.loops = 2;
    o.tls_cert_file = cert ? P(cert) : NULL;
    o.tls_key_file = key ? P(key) : NULL;
    o.tls_ca_file = ca ? P(ca) : NULL;
    ag_rpc_server *s = ag_rpc_server_new(&o);
    CHECK(s);
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Echo", h_echo, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Whoami", h_whoami, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Many", h_many, NULL));
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Flood", h_flood, NULL));
    if (ag_rpc_server_start(s, addr ? addr : "127.0.0.1:0") < 0)
        FAIL("start: %s", ag_rpc_server_errmsg(s));
    return s;
}

static ag_rpc_channel *channel_to(const char *target, bool tls, const char *ca, const char *cert,
                                  const char *key, const char *name)
{
    ag_rpc_channel_opts o;
    ag_rpc_channel_opts_init(&o);
    o.tls = tls;
    o.tls_ca_file = ca ? P(ca) : NULL;
    o.tls_cert_file = cert ? P(cert) : NULL;
    o.tls_key_file = key ? P(key) : NULL;
    o.tls_server_name = name;
    o.connect_timeout_ms = 5000;
    ag_rpc_channel *ch = ag_rpc_channel_new(target, &o);
    CHECK(ch);
    CHECK_STR_EQ(ag_rpc_channel_errmsg(ch), "");
    return ch;
}

static ag_rpc_channel *channel(const ag_rpc_server *s, bool tls, const char *ca, const char *cert,
                               const char *key, const char *name)
{
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", ag_rpc_server_port(s));
    return channel_to(target, tls, ca, cert, key, name);
}

/* A unary call; returns the status, with the response (or the status
 * message) in out. */
static int unary(ag_rpc_channel *ch, const char *method, const char *req, char *out, size_t cap)
{
    uint8_t *resp;
    size_t len;
    char *msg;
    int st = ag_rpc_unary(ch, method, req, strlen(req), ag_deadline_in_ms(15000), &resp, &len,
                          &msg);
    if (st == AG_RPC_OK)
        snprintf(out, cap, "%.*s", (int)len, (char *)resp);
    else
        snprintf(out, cap, "%s", msg ? msg : "");
    ag_free(resp);
    ag_free(msg);
    return st;
}

TEST_TIMEOUT(rpc_tls_unary_and_streaming, 60)
{
    ag_rpc_server *s = server_up(NULL, "server.crt", "server.key", NULL);
    /* the server's certificate is checked against the target's IP */
    ag_rpc_channel *ch = channel(s, true, "ca.crt", NULL, NULL, NULL);
    char out[600];
    CHECK_EQ(unary(ch, "/t.S/Echo", "ping", out, sizeof(out)), AG_RPC_OK);
    CHECK_STR_EQ(out, "ping");
    CHECK_EQ(unary(ch, "/t.S/Whoami", "", out, sizeof(out)), AG_RPC_OK);
    CHECK_STR_EQ(out, "(none)"); /* no CA on the server: no client certificates */
    CHECK_EQ(unary(ch, "/t.S/Nope", "", out, sizeof(out)), AG_RPC_UNIMPLEMENTED);

    /* server streaming */
    ag_rpc_call *c = ag_rpc_call_new(ch, "/t.S/Many", ag_deadline_in_ms(20000));
    CHECK_OK(ag_rpc_call_send(c, "3000", 5));
    CHECK_OK(ag_rpc_call_close_send(c));
    uint8_t *m;
    size_t len;
    int n = 0;
    while (ag_rpc_call_recv(c, &m, &len) == 1) {
        CHECK(len == 100 && m[0] == 'a' + n % 26);
        ag_free(m);
        n++;
    }
    CHECK_EQ(n, 3000);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);

    /* ping-pong */
    c = ag_rpc_call_new(ch, "/t.S/Echo", ag_deadline_in_ms(20000));
    for (int i = 0; i < 300; i++) {
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

    /* 32 MiB down, in 1 MiB messages, through flow control */
    c = ag_rpc_call_new(ch, "/t.S/Flood", ag_deadline_in_ms(30000));
    CHECK_OK(ag_rpc_call_close_send(c));
    n = 0;
    while (ag_rpc_call_recv(c, &m, &len) == 1) {
        CHECK(len == (1u << 20) && m[0] == (uint8_t)n && m[len - 1] == (uint8_t)~n);
        ag_free(m);
        n++;
    }
    CHECK_EQ(n, 32);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);
    ag_rpc_channel_free(ch);

    /* by DNS name (and SNI), and a wrong one */
    ch = channel(s, true, "ca.crt", NULL, NULL, "localhost");
    CHECK_EQ(unary(ch, "/t.S/Echo", "dns", out, sizeof(out)), AG_RPC_OK);
    ag_rpc_channel_free(ch);
    ch = channel(s, false, "ca.crt", NULL, NULL, "other.example"); /* tls implied */
    CHECK_EQ(unary(ch, "/t.S/Echo", "x", out, sizeof(out)), AG_RPC_UNAVAILABLE);
    char want[300];
    snprintf(want, sizeof(want),
             "cannot connect to 127.0.0.1:%d: TLS handshake: certificate verify failed: "
             "hostname mismatch", ag_rpc_server_port(s));
    CHECK_STR_EQ(out, want);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_tls_unix_socket, 60)
{
    char addr[300];
    snprintf(addr, sizeof(addr), "unix:%s", ag_test_path("tls.sock"));
    ag_rpc_server *s = server_up(addr, "server.crt", "server.key", "ca.crt");
    /* the name to verify defaults to localhost */
    ag_rpc_channel *ch = channel_to(addr, true, "ca.crt", "alice.crt", "alice.key", NULL);
    char out[600];
    CHECK_EQ(unary(ch, "/t.S/Whoami", "", out, sizeof(out)), AG_RPC_OK);
    CHECK_STR_EQ(out, "alice");
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_mtls_identity_and_refusals, 60)
{
    ag_rpc_server *s = server_up(NULL, "server.crt", "server.key", "ca.crt");
    int port = ag_rpc_server_port(s);
    char out[600], want[400];

    ag_rpc_channel *ch = channel(s, true, "ca.crt", "alice.crt", "alice.key", NULL);
    CHECK_EQ(unary(ch, "/t.S/Whoami", "", out, sizeof(out)), AG_RPC_OK);
    CHECK_STR_EQ(out, "alice");
    /* many calls on the connection, each sees it */
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(unary(ch, "/t.S/Whoami", "", out, sizeof(out)), AG_RPC_OK);
        CHECK_STR_EQ(out, "alice");
    }
    ag_rpc_channel_free(ch);

    ch = channel(s, true, "ca.crt", "carol.crt", "carol.key", NULL);
    CHECK_EQ(unary(ch, "/t.S/Whoami", "", out, sizeof(out)), AG_RPC_OK);
    CHECK_STR_EQ(out, "carol.example");
    ag_rpc_channel_free(ch);

    /* a client certificate from another CA */
    uint64_t t0 = ag_now_ms();
    ch = channel(s, true, "ca.crt", "mallory.crt", "mallory.key", NULL);
    CHECK_EQ(unary(ch, "/t.S/Whoami", "", out, sizeof(out)), AG_RPC_UNAVAILABLE);
    snprintf(want, sizeof(want),
             "cannot connect to 127.0.0.1:%d: TLS handshake: tlsv1 alert unknown ca", port);
    CHECK_STR_EQ(out, want);
    /* and again, at once: the channel is backing off, and says so */
    CHECK_EQ(unary(ch, "/t.S/Whoami", "", out, sizeof(out)), AG_RPC_UNAVAILABLE);
    CHECK(strncmp(out, want, strlen(want)) == 0);
    CHECK(strstr(out, " (next attempt in "));
    ag_rpc_channel_free(ch);

    /* no client certificate */
    ch = channel(s, true, "ca.crt", NULL, NULL, NULL);
    CHECK_EQ(unary(ch, "/t.S/Whoami", "", out, sizeof(out)), AG_RPC_UNAVAILABLE);
    snprintf(want, sizeof(want),
             "cannot connect to 127.0.0.1:%d: TLS handshake: tlsv13 alert certificate required",
             port);
    CHECK_STR_EQ(out, want);
    ag_rpc_channel_free(ch);
    CHECK(ag_now_ms() - t0 < 5000);

    /* the server still serves */
    ch = channel(s, true, "ca.crt", "alice.crt", "alice.key", NULL);
    CHECK_EQ(unary(ch, "/t.S/Whoami", "", out, sizeof(out)), AG_RPC_OK);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_tls_server_not_trusted, 60)
{
    /* a server certificate for another name */
    ag_rpc_server *s = server_up(NULL, "wrong.crt", "wrong.key", NULL);
    int port = ag_rpc_server_port(s);
    char out[600], want[400];
    ag_rpc_channel *ch = channel(s, true, "ca.crt", NULL, NULL, NULL);
    CHECK_EQ(unary(ch, "/t.S/Echo", "x", out, sizeof(out)), AG_RPC_UNAVAILABLE);
    snprintf(want, sizeof(want),
             "cannot connect to 127.0.0.1:%d: TLS handshake: certificate verify failed: IP "
             "address mismatch", port);
    CHECK_STR_EQ(out, want);
    ag_rpc_channel_free(ch);
    ch = channel(s, true, "ca.crt", NULL, NULL, "localhost");
    CHECK_EQ(unary(ch, "/t.S/Echo", "x", out, sizeof(out)), AG_RPC_UNAVAILABLE);
    CHECK_CONTAINS(out, "certificate verify failed: hostname mismatch");
    ag_rpc_channel_free(ch);
    /* the right name, but the client trusts another CA, or the system's */
    ch = channel(s, true, "ca2.crt", NULL, NULL, "other.example");
    CHECK_EQ(unary(ch, "/t.S/Echo", "x", out, sizeof(out)), AG_RPC_UNAVAILABLE);
    CHECK_CONTAINS(out, "certificate verify failed: unable to get local issuer certificate");
    ag_rpc_channel_free(ch);
    ch = channel(s, true, NULL, NULL, NULL, "other.example");
    CHECK_EQ(unary(ch, "/t.S/Echo", "x", out, sizeof(out)), AG_RPC_UNAVAILABLE);
    CHECK_CONTAINS(out, "certificate verify failed: unable to get local issuer certificate");
    ag_rpc_channel_free(ch);
    ch = channel(s, true, "ca.crt", NULL, NULL, "other.example");
    CHECK_EQ(unary(ch, "/t.S/Echo", "fine", out, sizeof(out)), AG_RPC_OK);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_tls_plaintext_mismatch_fails_fast, 60)
{
    char out[600], want[400];
    /* a plaintext client to a TLS server, which is still TLS after a
     * first start failed (its port was taken) */
    ag_rpc_server *s0 = server_up(NULL, NULL, NULL, NULL);
    char taken[64];
    snprintf(taken, sizeof(taken), "127.0.0.1:%d", ag_rpc_server_port(s0));
    ag_rpc_server_opts o;
    ag_rpc_server_opts_init(&o);
    o.tls_cert_file = P("server.crt");
    o.tls_key_file = P("server.key");
    ag_rpc_server *s = ag_rpc_server_new(&o);
    CHECK_OK(ag_rpc_server_register(s, "/t.S/Echo", h_echo, NULL));
    CHECK_EQ(ag_rpc_server_start(s, taken), AG_E_SYS);
    snprintf(want, sizeof(want), "%s: address already in use", taken);
    CHECK_STR_EQ(ag_rpc_server_errmsg(s), want);
    ag_rpc_server_free(s0);
    CHECK_OK(ag_rpc_server_start(s, "127.0.0.1:0"));
    uint64_t t0 = ag_now_ms();
    ag_rpc_channel *ch = channel(s, false, NULL, NULL, NULL, NULL);
    CHECK_EQ(unary(ch, "/t.S/Echo", "x", out, sizeof(out)), AG_RPC_UNAVAILABLE);
    CHECK_CONTAINS(out, "before sending anything (does it expect TLS?)");
    CHECK(ag_now_ms() - t0 < 3000);
    ag_rpc_channel_free(ch);
    ch = channel(s, true, "ca.crt", NULL, NULL, NULL);
    CHECK_EQ(unary(ch, "/t.S/Echo", "tls", out, sizeof(out)), AG_RPC_OK);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);

    /* a TLS client to a plaintext server */
    s = server_up(NULL, NULL, NULL, NULL);
    t0 = ag_now_ms();
    ch = channel(s, true, "ca.crt", NULL, NULL, NULL);
    CHECK_EQ(unary(ch, "/t.S/Echo", "x", out, sizeof(out)), AG_RPC_UNAVAILABLE);
    snprintf(want, sizeof(want),
             "cannot connect to 127.0.0.1:%d: TLS handshake: wrong version number (the peer "
             "does not speak TLS?)", ag_rpc_server_port(s));
    CHECK_STR_EQ(out, want);
    CHECK(ag_now_ms() - t0 < 3000);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

/* A blocking TLS client made with OpenSSL itself, offering alpn (NULL:
 * no ALPN) and TLS versions up to max_version, to 127.0.0.1:port. Returns
 * "closed" when the handshake worked but the server then closed the
 * connection, "open" when the server spoke (its SETTINGS), or the
 * handshake's error. */
static const char *raw_client(int port, const char *alpn, int max_version, char *out,
                              size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL_CTX_set_security_level(ctx, 0); /* let it offer TLS 1.0 and 1.1 */
    if (alpn) {
        unsigned char wire[32];
        wire[0] = (unsigned char)strlen(alpn);
        memcpy(wire + 1, alpn, wire[0]);
        CHECK_EQ(SSL_CTX_set_alpn_protos(ctx, wire, wire[0] + 1u), 0);
    }
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
        snprintf(out, cap, "%s", ERR_reason_error_string(ERR_peek_error()));
    } else {
        char b[64];
        uint64_t t0 = ag_now_ms();
        int n = SSL_read(ssl, b, sizeof(b));
        snprintf(out, cap, "%s", n > 0 ? "open" : ag_now_ms() - t0 < 2500 ? "closed" : "silent");
    }
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return out;
}

TEST_TIMEOUT(rpc_tls_server_requires_alpn_h2_and_tls12, 60)
{
    ag_rpc_server *s = server_up(NULL, "server.crt", "server.key", NULL);
    int port = ag_rpc_server_port(s);
    char out[200];
    CHECK_STR_EQ(raw_client(port, "http/1.1", TLS1_3_VERSION, out, sizeof(out)),
                 "tlsv1 alert no application protocol");
    CHECK_STR_EQ(raw_client(port, NULL, TLS1_3_VERSION, out, sizeof(out)), "closed");
    /* with h2 the server speaks (its SETTINGS): the raw client reads them */
    CHECK_STR_EQ(raw_client(port, "h2", TLS1_3_VERSION, out, sizeof(out)), "open");
    /* TLS 1.2 is fine; older is refused */
    CHECK_STR_EQ(raw_client(port, "h2", TLS1_2_VERSION, out, sizeof(out)), "open");
    CHECK_STR_EQ(raw_client(port, "h2", TLS1_1_VERSION, out, sizeof(out)),
                 "tlsv1 alert protocol version");
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_tls_handshake_timeout_and_shutdown, 60)
{
    /* a peer that accepts connections (the kernel does, for the backlog)
     * and never says a word */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t sl = sizeof(sa);
    CHECK_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ(listen(lfd, 8), 0);
    CHECK_EQ(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", ntohs(sa.sin_port));
    ag_rpc_channel_opts o;
    ag_rpc_channel_opts_init(&o);
    o.tls = true;
    o.tls_ca_file = P("ca.crt");
    o.connect_timeout_ms = 300;
    ag_rpc_channel *ch = ag_rpc_channel_new(target, &o);
    uint64_t t0 = ag_now_ms();
    char out[600], want[300];
    CHECK_EQ(unary(ch, "/t.S/Echo", "x", out, sizeof(out)), AG_RPC_UNAVAILABLE);
    snprintf(want, sizeof(want), "cannot connect to %s: TLS handshake: timed out", target);
    CHECK_STR_EQ(out, want);
    uint64_t took = ag_now_ms() - t0;
    CHECK(took >= 250 && took < 3000);
    ag_rpc_channel_free(ch);
    close(lfd);

    /* a TLS server shuts down with a client stuck before its ClientHello */
    ag_rpc_server *s = server_up(NULL, "server.crt", "server.key", NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_port = htons((uint16_t)ag_rpc_server_port(s));
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ag_sleep_ms(100);
    t0 = ag_now_ms();
    ag_rpc_server_free(s);
    CHECK(ag_now_ms() - t0 < 3000);
    char b[16];
    CHECK_EQ(read(fd, b, sizeof(b)), 0); /* closed, having said nothing */
    close(fd);
}

TEST_TIMEOUT(rpc_tls_bad_files, 60)
{
    /* server: start fails, naming the file */
    ag_rpc_server_opts so;
    ag_rpc_server_opts_init(&so);
    so.tls_cert_file = P("server.crt");
    so.tls_key_file = P("nope.key");
    ag_rpc_server *s = ag_rpc_server_new(&so);
    char want[700];
    CHECK_EQ(ag_rpc_server_start(s, "127.0.0.1:0"), AG_E_NOENT);
    snprintf(want, sizeof(want), "%s: no such file or directory", so.tls_key_file);
    CHECK_STR_EQ(ag_rpc_server_errmsg(s), want);
    ag_rpc_server_free(s);
    so.tls_key_file = P("alice.key");
    s = ag_rpc_server_new(&so);
    CHECK_EQ(ag_rpc_server_start(s, "127.0.0.1:0"), AG_E_RPC_TLS);
    CHECK_CONTAINS(ag_rpc_server_errmsg(s), "server.crt: key does not match certificate");
    ag_rpc_server_free(s);

    /* channel: lame, every call fails at once with the reason */
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    co.tls_ca_file = P("ca.crt");
    co.tls_cert_file = P("alice.crt");
    co.tls_key_file = P("nope.key");
    ag_rpc_channel *ch = ag_rpc_channel_new("127.0.0.1:1", &co);
    CHECK(ch);
    snprintf(want, sizeof(want), "%s: no such file or directory", co.tls_key_file);
    CHECK_STR_EQ(ag_rpc_channel_errmsg(ch), want);
    char out[800], want2[800];
    CHECK_EQ(unary(ch, "/t.S/Echo", "x", out, sizeof(out)), AG_RPC_UNAVAILABLE);
    snprintf(want2, sizeof(want2), "cannot connect to 127.0.0.1:1: %s", want);
    CHECK_STR_EQ(out, want2);
    ag_rpc_channel_free(ch);
}
