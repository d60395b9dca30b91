/*
 * The mesh in process, end to end over loopback: an argot gRPC server (the
 * health service) behind an fs namer, `ag_mesh` in front, argot's gRPC
 * client through it. Checks the HTTP/2 proxy (headers, messages, trailers
 * both ways), the errors the mesh makes (no route: UNIMPLEMENTED; no
 * endpoint up: UNAVAILABLE), retries to the endpoint that works, the
 * admin endpoint's state and resolver, and a reload that changes the dtab.
 * Every allocation is checked under ASan by the runner.
 */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argot/mesh.h"
#include "argot/rpc.h"
#include "pki.h"
#include "test.h"

struct fix {
    ag_rpc_server *srv;
    ag_rpc_health *health;
    int backend_port;
    ag_mesh *mesh;
    int port;
    char conf[1024];
};

static void backend_up(struct fix *f)
{
    ag_rpc_server_opts so;
    ag_rpc_server_opts_init(&so);
    f->srv = ag_rpc_server_new(&so);
    f->health = ag_rpc_health_new();
    CHECK(f->srv && f->health);
    CHECK_EQ(ag_rpc_health_register(f->srv, f->health), 0);
    CHECK_EQ(ag_rpc_server_start(f->srv, "127.0.0.1:0"), 0);
    f->backend_port = ag_rpc_server_port(f->srv);
    ag_rpc_health_set(f->health, "", AG_RPC_HEALTH_SERVING);
}

static void backend_down(struct fix *f)
{
    if (f->srv) {
        ag_rpc_server_shutdown(f->srv, 0);
        ag_rpc_server_free(f->srv);
        f->srv = NULL;
    }
    ag_rpc_health_free(f->health);
    f->health = NULL;
}

static void write_conf(struct fix *f, const char *dtab)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "admin: {ip: 127.0.0.1, port: 0}\n"
             "log: {level: warn}\n"
             "namers:\n"
             "  - {kind: fs, rootDir: disco}\n"
             "routers:\n"
             "  - protocol: h2\n"
             "    label: grpc\n"
             "    dtab: |\n"
             "      %s\n"
             "    servers: [{ip: 127.0.0.1, port: %d}]\n",
             dtab, f->port);
    snprintf(f->conf, sizeof(f->conf), "%s", ag_test_write_file("mesh.yaml", text, strlen(text)));
}

static void disco(const char *name, const char *lines)
{
    char path[256];
    snprintf(path, sizeof(path), "disco/%s", name);
    ag_test_write_file(path, lines, strlen(lines));
}

static void mesh_up(struct fix *f, const char *dtab)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/disco", ag_test_tmpdir());
    mkdir(dir, 0700);
    write_conf(f, dtab);
    char err[AG_ERRMSG_MAX];
    f->mesh = ag_mesh_load(f->conf, err, sizeof(err));
    if (!f->mesh)
        FAIL("load: %s", err);
    if (ag_mesh_start(f->mesh, err, sizeof(err)) < 0)
        FAIL("start: %s", err);
    f->port = ag_mesh_port(f->mesh, 0, 0);
    CHECK(f->port > 0);
}

static void mesh_down(struct fix *f)
{
    ag_mesh_free(f->mesh);
    f->mesh = NULL;
}

/* Health/Check through the mesh, with target's host as the authority. */
static int check(const char *target, char **msg)
{
    ag_rpc_channel_opts o;
    ag_rpc_channel_opts_init(&o);
    o.backoff_initial_ms = 10;
    o.backoff_max_ms = 10;
    ag_rpc_channel *ch = ag_rpc_channel_new(target, &o);
    CHECK(ch);
    uint8_t *resp = NULL;
    size_t len = 0;
    int st = ag_rpc_unary(ch, "/grpc.health.v1.Health/Check", "", 0,
                          ag_deadline_in_ms(5000), &resp, &len, msg);
    if (st == 0) {
        /* HealthCheckResponse{status: SERVING} */
        CHECK_EQ(len, 2u);
        CHECK_EQ(resp[0], 0x08);
        CHECK_EQ(resp[1], 0x01);
    }
    ag_free(resp);
    ag_rpc_channel_free(ch);
    return st;
}

/* GET path on the admin port; the response (static storage). */
static const char *admin_get(ag_mesh *m, const char *path)
{
    static char buf[1 << 16];
    char *r = ag_test_http(ag_mesh_admin_port(m), "GET", path, NULL);
    CHECK(r);
    snprintf(buf, sizeof(buf), "%s", r);
    free(r);
    CHECK_CONTAINS(buf, "HTTP/1.1 200");
    return buf;
}

TEST(mesh_proxies_grpc_through_fs_namer)
{
    struct fix f = {0};
    ag_log_set_level(AG_LOG_WARN);
    backend_up(&f);
    mesh_up(&f, "/svc => /#/fs;");
    char line[64];
    snprintf(line, sizeof(line), "127.0.0.1 %d\n", f.backend_port);
    disco("127.0.0.1", line);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", f.port);
    char *msg = NULL;
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(check(target, &msg), 0);
        ag_free(msg);
        msg = NULL;
    }
    /* the admin state shows the service and its endpoint */
    const char *state = admin_get(f.mesh, "/admin/state.json");
    CHECK_CONTAINS(state, "\"label\":\"grpc\"");
    CHECK_CONTAINS(state, "\"id\":\"/#/fs/127.0.0.1\"");
    char ep[64];
    snprintf(ep, sizeof(ep), "127.0.0.1:%d", f.backend_port);
    CHECK_CONTAINS(state, ep);
    const char *metrics = admin_get(f.mesh, "/metrics");
    CHECK_CONTAINS(metrics, "argot_mesh_requests_total{router=\"grpc\",service=\"/svc/127.0.0.1\"");
    const char *res = admin_get(f.mesh, "/delegator.json?router=grpc&path=/svc/127.0.0.1");
    CHECK_CONTAINS(res, "\"bound\":\"/#/fs/127.0.0.1\"");
    mesh_down(&f);
    backend_down(&f);
}

TEST(mesh_answers_unimplemented_and_unavailable)
{
    struct fix f = {0};
    ag_log_set_level(AG_LOG_WARN);
    mesh_up(&f, "/svc => /#/fs;");
    int dead = ag_test_free_port();
    char line[64];
    snprintf(line, sizeof(line), "127.0.0.1 %d\n", dead);
    disco("127.0.0.1", line);
    char target[64];
    char *msg = NULL;
    /* "localhost" has no file: no route */
    snprintf(target, sizeof(target), "localhost:%d", f.port);
    int st = check(target, &msg);
    if (st != 12)
        FAIL("status %d: %s", st, msg ? msg : "");
    CHECK_CONTAINS(msg, "/svc/localhost");
    ag_free(msg);
    msg = NULL;
    /* bound to a port nobody listens on: unavailable */
    snprintf(target, sizeof(target), "127.0.0.1:%d", f.port);
    CHECK_EQ(check(target, &msg), 14);
    ag_free(msg);
    mesh_down(&f);
}

TEST(mesh_retries_a_refused_connection_elsewhere)
{
    struct fix f = {0};
    ag_log_set_level(AG_LOG_WARN);
    backend_up(&f);
    mesh_up(&f, "/svc => /#/fs;");
    char lines[128];
    snprintf(lines, sizeof(lines), "127.0.0.1 %d\n127.0.0.1 %d\n", ag_test_free_port(),
             f.backend_port);
    disco("127.0.0.1", lines);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", f.port);
    /* every call succeeds: a connection refused is retried on the other endpoint */
    for (int i = 0; i < 50; i++) {
        char *msg = NULL;
        int st = check(target, &msg);
        if (st != 0)
            FAIL("call %d: status %d: %s", i, st, msg ? msg : "");
        ag_free(msg);
    }
    const char *state = admin_get(f.mesh, "/admin/state.json");
    CHECK_CONTAINS(state, "\"state\":\"down\"");
    mesh_down(&f);
    backend_down(&f);
}

TEST(mesh_reload_changes_the_dtab)
{
    struct fix f = {0};
    ag_log_set_level(AG_LOG_WARN);
    backend_up(&f);
    mesh_up(&f, "/svc => /#/fs;");
    char line[64];
    snprintf(line, sizeof(line), "127.0.0.1 %d\n", f.backend_port);
    disco("backend", line);
    char target[64], *msg = NULL;
    snprintf(target, sizeof(target), "127.0.0.1:%d", f.port);
    CHECK_EQ(check(target, &msg), 12);
    ag_free(msg);
    msg = NULL;
    /* same port, new dtab: every name goes to "backend" */
    write_conf(&f, "/svc => /#/fs/backend;");
    char err[AG_ERRMSG_MAX];
    if (ag_mesh_reload(f.mesh, err, sizeof(err)) < 0)
        FAIL("reload: %s", err);
    CHECK_EQ(ag_mesh_port(f.mesh, 0, 0), f.port);
    CHECK_EQ(check(target, &msg), 0);
    ag_free(msg);
    /* a bad config changes nothing and says where */
    write_conf(&f, "/svc => ;");
    CHECK(ag_mesh_reload(f.mesh, err, sizeof(err)) < 0);
    CHECK_CONTAINS(err, "mesh.yaml:");
    msg = NULL;
    CHECK_EQ(check(target, &msg), 0);
    ag_free(msg);
    mesh_down(&f);
    backend_down(&f);
}

TEST(mesh_config_errors_name_the_place)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"routers: []\n", "no router"},
        {"routers:\n  - {protocol: h3, servers: [{port: 1}]}\n", "protocol must be h2 or http"},
        {"routers:\n  - {protocol: h2, servers: [{port: 1}], dtabs: x}\n", "unknown key 'dtabs'"},
        {"routers:\n  - {protocol: h2, servers: [{port: 1}],\n     client: {loadBalancer: {kind: "
         "zz}}}\n",
         "unknown load balancer 'zz'"},
        {"routers:\n  - {protocol: h2, servers: [{ip: nope, port: 1}]}\n", "not an IP address"},
        {"admin: {ip: 127.0.0.1, port: 99999}\nrouters:\n  - {protocol: h2, servers: [{port: 1}]}\n",
         "port"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        const char *path = ag_test_write_file("bad.yaml", cases[i].text, strlen(cases[i].text));
        char err[AG_ERRMSG_MAX] = "";
        ag_mesh *m = ag_mesh_load(path, err, sizeof(err));
        if (m)
            FAIL("case %zu loaded", i);
        CHECK_CONTAINS(err, "bad.yaml:");
        CHECK_CONTAINS(err, cases[i].want);
    }
}

/* TLS on both sides: the client reaches the mesh over TLS (the server's
 * certificate), the mesh reaches the backend over mutual TLS (it presents
 * alice's certificate, the backend asks for one); then the backend sees
 * the mesh's identity. */
TEST(mesh_terminates_and_originates_tls)
{
    char crt[512], key[512], ca[512], acrt[512], akey[512];
    snprintf(crt, sizeof(crt), "%s/server.crt", ag_test_pki());
    snprintf(key, sizeof(key), "%s/server.key", ag_test_pki());
    snprintf(ca, sizeof(ca), "%s/ca.crt", ag_test_pki());
    snprintf(acrt, sizeof(acrt), "%s/alice.crt", ag_test_pki());
    snprintf(akey, sizeof(akey), "%s/alice.key", ag_test_pki());
    ag_log_set_level(AG_LOG_WARN);
    /* the backend: TLS, client certificates from ca required */
    ag_rpc_server_opts so;
    ag_rpc_server_opts_init(&so);
    so.tls_cert_file = crt;
    so.tls_key_file = key;
    so.tls_ca_file = ca;
    ag_rpc_server *srv = ag_rpc_server_new(&so);
    ag_rpc_health *health = ag_rpc_health_new();
    CHECK(srv && health);
    CHECK_EQ(ag_rpc_health_register(srv, health), 0);
    CHECK_EQ(ag_rpc_server_start(srv, "127.0.0.1:0"), 0);
    ag_rpc_health_set(health, "", AG_RPC_HEALTH_SERVING);
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/disco", ag_test_tmpdir());
    mkdir(dir, 0700);
    char line[64];
    snprintf(line, sizeof(line), "127.0.0.1 %d\n", ag_rpc_server_port(srv));
    disco("localhost", line);
    char text[4096];
    snprintf(text, sizeof(text),
             "admin: {ip: 127.0.0.1, port: 0}\n"
             "namers: [{kind: fs, rootDir: disco}]\n"
             "routers:\n"
             "  - protocol: h2\n"
             "    dtab: /svc => /#/fs;\n"
             "    servers: [{ip: 127.0.0.1, port: 0, tls: {certPath: %s, keyPath: %s}}]\n"
             "    client:\n"
             "      tls: {commonName: localhost, trustCerts: [%s],\n"
             "            clientAuth: {certPath: %s, keyPath: %s}}\n",
             crt, key, ca, acrt, akey);
    const char *conf = ag_test_write_file("tls.yaml", text, strlen(text));
    char err[AG_ERRMSG_MAX];
    ag_mesh *m = ag_mesh_load(conf, err, sizeof(err));
    if (!m)
        FAIL("load: %s", err);
    if (ag_mesh_start(m, err, sizeof(err)) < 0)
        FAIL("start: %s", err);
    char target[64];
    snprintf(target, sizeof(target), "localhost:%d", ag_mesh_port(m, 0, 0));
    ag_rpc_channel_opts o;
    ag_rpc_channel_opts_init(&o);
    o.tls_ca_file = ca;
    ag_rpc_channel *ch = ag_rpc_channel_new(target, &o);
    CHECK(ch);
    uint8_t *resp = NULL;
    size_t len = 0;
    char *msg = NULL;
    int st = ag_rpc_unary(ch, "/grpc.health.v1.Health/Check", "", 0, ag_deadline_in_ms(5000),
                          &resp, &len, &msg);
    if (st != 0)
        FAIL("through TLS: status %d: %s", st, msg ? msg : "");
    CHECK_EQ(len, 2u);
    ag_free(resp);
    ag_free(msg);
    ag_rpc_channel_free(ch);
    /* plaintext to the TLS listener fails (the mesh keeps serving) */
    ag_rpc_channel_opts_init(&o);
    o.backoff_initial_ms = 10;
    ch = ag_rpc_channel_new(target, &o);
    msg = NULL;
    resp = NULL;
    st = ag_rpc_unary(ch, "/grpc.health.v1.Health/Check", "", 0, ag_deadline_in_ms(3000), &resp,
                      &len, &msg);
    CHECK(st != 0);
    ag_free(resp);
    ag_free(msg);
    ag_rpc_channel_free(ch);
    ag_mesh_free(m);
    ag_rpc_server_shutdown(srv, 0);
    ag_rpc_server_free(srv);
    ag_rpc_health_free(health);
}

/* Echoes the l5d-client-id header it got (empty if none; INTERNAL if it
 * got more than one: a forged one was passed on). */
static int who_handler(ag_rpc_call *c, void *ud)
{
    (void)ud;
    uint8_t *msg = NULL;
    size_t len = 0;
    while (ag_rpc_call_recv(c, &msg, &len) == 1)
        ag_free(msg);
    ag_slice v = {NULL, 0};
    const char *k;
    const char *who = "";
    size_t wl = 0;
    int seen = 0;
    for (size_t i = 0; (k = ag_rpc_call_metadata(c, false, i, &v)) != NULL; i++)
        if (strcmp(k, "l5d-client-id") == 0) {
            who = (const char *)v.ptr;
            wl = v.len;
            seen++;
        }
    if (seen > 1)
        return 13;
    return ag_rpc_call_send(c, who, wl) < 0 ? 13 : 0;
}

static int call_who(const char *target, const char *cert, const char *key, char *out,
                    size_t cap, char **msg)
{
    ag_rpc_channel_opts o;
    ag_rpc_channel_opts_init(&o);
    char ca[512];
    snprintf(ca, sizeof(ca), "%s/ca.crt", ag_test_pki());
    o.tls_ca_file = ca;
    o.tls_cert_file = cert;
    o.tls_key_file = key;
    o.backoff_initial_ms = 10;
    o.backoff_max_ms = 10;
    ag_rpc_channel *ch = ag_rpc_channel_new(target, &o);
    CHECK(ch);
    uint8_t *resp = NULL;
    size_t len = 0;
    int st = ag_rpc_unary(ch, "/test.Who/Who", "", 0, ag_deadline_in_ms(5000), &resp, &len, msg);
    out[0] = '\0';
    if (st == 0)
        snprintf(out, cap, "%.*s", (int)len, resp ? (const char *)resp : "");
    ag_free(resp);
    ag_rpc_channel_free(ch);
    return st;
}

/* Mutual TLS at the mesh: the caller's party goes to the backend in
 * l5d-client-id (a forged one from the client is dropped); the rules let
 * alice call test.Who and refuse carol (PERMISSION_DENIED); a caller
 * without a certificate or with another CA's never gets in. */
TEST(mesh_identity_and_authorization)
{
    char crt[512], key[512], ca[512], a[2][512], c[2][512], mal[2][512];
    const char *pki = ag_test_pki();
    snprintf(crt, sizeof(crt), "%s/server.crt", pki);
    snprintf(key, sizeof(key), "%s/server.key", pki);
    snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
    snprintf(a[0], sizeof(a[0]), "%s/alice.crt", pki);
    snprintf(a[1], sizeof(a[1]), "%s/alice.key", pki);
    snprintf(c[0], sizeof(c[0]), "%s/carol.crt", pki);
    snprintf(c[1], sizeof(c[1]), "%s/carol.key", pki);
    snprintf(mal[0], sizeof(mal[0]), "%s/mallory.crt", pki);
    snprintf(mal[1], sizeof(mal[1]), "%s/mallory.key", pki);
    ag_log_set_level(AG_LOG_ERROR);
    ag_rpc_server_opts so;
    ag_rpc_server_opts_init(&so);
    ag_rpc_server *srv = ag_rpc_server_new(&so);
    CHECK(srv);
    CHECK_EQ(ag_rpc_server_register(srv, "/test.Who/Who", who_handler, NULL), 0);
    CHECK_EQ(ag_rpc_server_start(srv, "127.0.0.1:0"), 0);
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/disco", ag_test_tmpdir());
    mkdir(dir, 0700);
    char line[64];
    snprintf(line, sizeof(line), "127.0.0.1 %d\n", ag_rpc_server_port(srv));
    disco("localhost", line);
    char text[4096];
    snprintf(text, sizeof(text),
             "admin: {ip: 127.0.0.1, port: 0}\n"
             "namers: [{kind: fs, rootDir: disco}]\n"
             "routers:\n"
             "  - protocol: h2\n"
             "    dtab: /svc => /#/fs;\n"
             "    servers: [{ip: 127.0.0.1, port: 0, tls: {certPath: %s, keyPath: %s,\n"
             "               caCertPath: %s, requireClientAuth: true}}]\n"
             "    authorization:\n"
             "      default: deny\n"
             "      rules:\n"
             "        - {party: carol.example, service: test.Who, action: deny}\n"
             "        - {party: alice, service: test.Who, method: Who}\n",
             crt, key, ca);
    const char *conf = ag_test_write_file("authz.yaml", text, strlen(text));
    char err[AG_ERRMSG_MAX];
    ag_mesh *m = ag_mesh_load(conf, err, sizeof(err));
    if (!m)
        FAIL("load: %s", err);
    if (ag_mesh_start(m, err, sizeof(err)) < 0)
        FAIL("start: %s", err);
    char target[64], who[128];
    snprintf(target, sizeof(target), "localhost:%d", ag_mesh_port(m, 0, 0));
    char *msg = NULL;
    int st = call_who(target, a[0], a[1], who, sizeof(who), &msg);
    if (st != 0)
        FAIL("alice: status %d: %s", st, msg ? msg : "");
    CHECK_STR_EQ(who, "alice");
    ag_free(msg);
    msg = NULL;
    /* alice claiming to be bob in the header is still alice */
    {
        ag_rpc_channel_opts o;
        ag_rpc_channel_opts_init(&o);
        o.tls_ca_file = ca;
        o.tls_cert_file = a[0];
        o.tls_key_file = a[1];
        ag_rpc_channel *ch = ag_rpc_channel_new(target, &o);
        ag_rpc_call *call = ag_rpc_call_new(ch, "/test.Who/Who", ag_deadline_in_ms(5000));
        CHECK(ch && call);
        CHECK_EQ(ag_rpc_call_add_metadata(call, "l5d-client-id", "bob", 3), 0);
        CHECK_EQ(ag_rpc_call_send(call, "", 0), 0);
        CHECK_EQ(ag_rpc_call_close_send(call), 0);
        uint8_t *r = NULL;
        size_t rl = 0;
        CHECK_EQ(ag_rpc_call_recv(call, &r, &rl), 1);
        CHECK_EQ(rl, 5u);
        CHECK_MEM_EQ(r, "alice", 5);
        ag_free(r);
        CHECK_EQ(ag_rpc_call_status(call, NULL), 0);
        ag_rpc_call_free(call);
        ag_rpc_channel_free(ch);
    }
    st = call_who(target, c[0], c[1], who, sizeof(who), &msg);
    CHECK_EQ(st, 7);
    CHECK_CONTAINS(msg, "carol.example may not call /test.Who/Who");
    ag_free(msg);
    msg = NULL;
    /* another CA's certificate: the handshake fails, nothing is called */
    st = call_who(target, mal[0], mal[1], who, sizeof(who), &msg);
    CHECK(st != 0 && st != 7);
    ag_free(msg);
    msg = NULL;
    /* no certificate at all */
    st = call_who(target, NULL, NULL, who, sizeof(who), &msg);
    CHECK(st != 0 && st != 7);
    ag_free(msg);
    ag_mesh_free(m);
    ag_rpc_server_shutdown(srv, 0);
    ag_rpc_server_free(srv);
}

/* A DNS server on its own thread: A records of any name are 127.0.0.1
 * (TTL 60), AAAA questions get no answer; a datagram shorter than a DNS
 * header stops it. */
struct dns_srv {
    int fd;
    int port;
    pthread_t thread;
};

static void *dns_main(void *arg)
{
    struct dns_srv *d = arg;
    uint8_t q[512], r[600];
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(d->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
        if (n < 12)
            break;
        size_t i = 12;
        while (i < (size_t)n && q[i] != 0)
            i += (size_t)q[i] + 1;
        if (i + 5 > (size_t)n)
            continue;
        size_t qend = i + 5;
        uint16_t qtype = (uint16_t)(q[i + 1] << 8 | q[i + 2]);
        memcpy(r, q, qend);
        r[2] = 0x81;   /* response, recursion desired */
        r[3] = 0x80;   /* recursion available, NOERROR */
        r[4] = 0, r[5] = 1;
        r[6] = 0, r[7] = qtype == 1 ? 1 : 0;
        r[8] = r[9] = r[10] = r[11] = 0;
        size_t o = qend;
        if (qtype == 1) {
            static const uint8_t ans[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
            memcpy(r + o, ans, sizeof(ans));
            o += sizeof(ans);
        }
        sendto(d->fd, r, o, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

/* The first request to a DNS name waits for the namer's first answer
 * instead of failing while the binding is pending. */
TEST(mesh_waits_for_a_pending_binding)
{
    struct fix f = {0};
    ag_log_set_level(AG_LOG_WARN);
    backend_up(&f);
    struct dns_srv d = {0};
    d.fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(d.fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(d.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    CHECK_EQ(getsockname(d.fd, (struct sockaddr *)&sa, &sl), 0);
    d.port = ntohs(sa.sin_port);
    CHECK_EQ(pthread_create(&d.thread, NULL, dns_main, &d), 0);
    char text[2048];
    snprintf(text, sizeof(text),
             "admin: {ip: 127.0.0.1, port: 0}\n"
             "namers: [{kind: dns, servers: [\"127.0.0.1:%d\"]}]\n"
             "routers:\n"
             "  - protocol: h2\n"
             "    dtab: /svc => /#/dns/backend.test/%d;\n"
             "    servers: [{ip: 127.0.0.1, port: 0}]\n",
             d.port, f.backend_port);
    const char *conf = ag_test_write_file("dns.yaml", text, strlen(text));
    char err[AG_ERRMSG_MAX];
    f.mesh = ag_mesh_load(conf, err, sizeof(err));
    if (!f.mesh)
        FAIL("load: %s", err);
    if (ag_mesh_start(f.mesh, err, sizeof(err)) < 0)
        FAIL("start: %s", err);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", ag_mesh_port(f.mesh, 0, 0));
    char *msg = NULL;
    int st = check(target, &msg);
    if (st != 0)
        FAIL("the first call: status %d: %s", st, msg ? msg : "");
    ag_free(msg);
    mesh_down(&f);
    /* a datagram too short to be a query ends the server's loop */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(s >= 0);
    CHECK_EQ(sendto(s, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa)), 1);
    close(s);
    pthread_join(d.thread, NULL);
    close(d.fd);
    backend_down(&f);
}

/* Reads what the peer sends until it closes (or 3 s pass); into buf. */
static size_t read_to_close(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 3000) <= 0)
            return (size_t)-1;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* An HTTP/1.1 client that trickles its headers gets 408 and is closed;
 * one that sits idle between requests is closed. */
TEST(mesh_http_slow_and_idle_clients_are_cut)
{
    ag_log_set_level(AG_LOG_ERROR);
    const char *text = "admin: {ip: 127.0.0.1, port: -1}\n"
                       "routers:\n"
                       "  - protocol: http\n"
                       "    dtab: /svc => /$/inet/127.0.0.1/1;\n"
                       "    servers: [{ip: 127.0.0.1, port: 0}]\n"
                       "    requestHeaderTimeoutMs: 300\n"
                       "    idleTimeoutMs: 500\n";
    const char *conf = ag_test_write_file("slow.yaml", text, strlen(text));
    char err[AG_ERRMSG_MAX];
    ag_mesh *m = ag_mesh_load(conf, err, sizeof(err));
    if (!m)
        FAIL("load: %s", err);
    if (ag_mesh_start(m, err, sizeof(err)) < 0)
        FAIL("start: %s", err);
    int port = ag_mesh_port(m, 0, 0);
    char buf[4096];
    /* half a request, then nothing */
    int fd = connect_to(port);
    CHECK_EQ(write(fd, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", 33), 33);
    uint64_t t0 = ag_now_ms();
    size_t n = read_to_close(fd, buf, sizeof(buf));
    close(fd);
    CHECK(n != (size_t)-1);
    CHECK_CONTAINS(buf, "HTTP/1.1 408");
    CHECK(ag_now_ms() - t0 >= 250);
    /* connected, silent */
    fd = connect_to(port);
    t0 = ag_now_ms();
    n = read_to_close(fd, buf, sizeof(buf));
    close(fd);
    CHECK_EQ(n, 0u);
    CHECK(ag_now_ms() - t0 >= 400);
    ag_mesh_free(m);
}

/* An HTTP/2 connection without a stream for idleTimeoutMs gets GOAWAY and
 * is closed. */
TEST(mesh_h2_idle_connection_is_closed)
{
    ag_log_set_level(AG_LOG_ERROR);
    const char *text = "admin: {ip: 127.0.0.1, port: -1}\n"
                       "routers:\n"
                       "  - protocol: h2\n"
                       "    dtab: /svc => /$/inet/127.0.0.1/1;\n"
                       "    servers: [{ip: 127.0.0.1, port: 0}]\n"
                       "    idleTimeoutMs: 400\n";
    const char *conf = ag_test_write_file("idle.yaml", text, strlen(text));
    char err[AG_ERRMSG_MAX];
    ag_mesh *m = ag_mesh_load(conf, err, sizeof(err));
    if (!m)
        FAIL("load: %s", err);
    if (ag_mesh_start(m, err, sizeof(err)) < 0)
        FAIL("start: %s", err);
    int fd = connect_to(ag_mesh_port(m, 0, 0));
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                  "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    CHECK_EQ(write(fd, preface, sizeof(preface) - 1), (ssize_t)sizeof(preface) - 1);
    uint64_t t0 = ag_now_ms();
    char buf[4096];
    size_t n = read_to_close(fd, buf, sizeof(buf));
    close(fd);
    CHECK(n != (size_t)-1);
    CHECK(ag_now_ms() - t0 >= 300);
    /* frames: 9-byte headers; one of them is a GOAWAY (type 7) */
    bool goaway = false;
    for (size_t i = 0; i + 9 <= n;) {
        size_t len = (size_t)((uint8_t)buf[i] << 16 | (uint8_t)buf[i + 1] << 8 | (uint8_t)buf[i + 2]);
        if ((uint8_t)buf[i + 3] == 7)
            goaway = true;
        i += 9 + len;
    }
    CHECK(goaway);
    ag_mesh_free(m);
}
