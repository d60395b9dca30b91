/*
 * argot mesh: the party gateway (mesh.h) as a daemon. Loads the config
 * (errors name file:line:col), serves every router and the admin endpoint,
 * prints one line per listening address, reloads on SIGHUP and when the
 * config file changes (TLS files are read again then: new connections use
 * the new certificate, open ones keep theirs), and on SIGTERM or SIGINT
 * stops taking connections, lets streams in flight finish (shutdown_grace)
 * and exits 0.
 *
 * argot mesh init: writes one party's gateway config from the cluster
 * config (fed.h), so that the link between parties goes gateway to gateway
 * without hand-written dtabs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/link.h"
#include "argot/mesh.h"
#include "cmd.h"

static const struct flag_def flags[] = {
    {"config", "FILE", "the YAML config (see below)", FLAG_REQUIRED},
    {"check", NULL, "only read and check the config, then exit (0: good)", 0},
    {NULL, NULL, NULL, 0},
};

static void on_hup(void *ud)
{
    char err[AG_ERRMSG_MAX];
    if (ag_mesh_reload(ud, err, sizeof(err)) < 0)
        fprintf(stderr, "argot: mesh: reload: %s\n", err);
}

static int run(struct cmd_args *a)
{
    const char *path = args_get(a, "config");
    char err[AG_ERRMSG_MAX];
    ag_mesh *m = ag_mesh_load(path, err, sizeof(err));
    if (!m)
        return runtime_error("mesh: %s", err);
    if (args_bool(a, "check")) {
        printf("%s: ok\n", path);
        ag_mesh_free(m);
        return EXIT_OK;
    }
    sigset_t old;
    daemon_signals_block(&old);
    int status = EXIT_RUNTIME;
    if (ag_mesh_start(m, err, sizeof(err)) < 0) {
        runtime_error("mesh: %s", err);
        goto out;
    }
    /* one line per address, in config order: tests and scripts read them */
    for (size_t r = 0; ag_mesh_router_label(m, r); r++) {
        int port;
        for (size_t s = 0; (port = ag_mesh_port(m, r, s)) >= 0; s++) {
            const char *ip = ag_mesh_server_ip(m, r, s);
            printf(strchr(ip, ':') ? "mesh router %s listening on [%s]:%d\n"
                                   : "mesh router %s listening on %s:%d\n",
                   ag_mesh_router_label(m, r), ip, port);
        }
    }
    if (ag_mesh_admin_port(m) >= 0)
        printf("mesh admin listening on %s:%d\n", ag_mesh_admin_ip(m), ag_mesh_admin_port(m));
    fflush(stdout);
    daemon_on_hup(on_hup, m);
    int sig = daemon_wait_stop("mesh", 1000, NULL, NULL);
    daemon_on_hup(NULL, NULL);
    AG_LOG(AG_LOG_INFO, "mesh", "stopping signal=%s grace_ms=%llu",
           sig == SIGTERM ? "SIGTERM" : "SIGINT", (unsigned long long)ag_mesh_grace_ms(m));
    ag_mesh_shutdown(m, ag_mesh_grace_ms(m));
    status = EXIT_OK;
out:
    ag_mesh_free(m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return status;
}

const struct subcmd cmd_mesh = {
    .name = "mesh",
    .summary = "run the party gateway: an HTTP/2 (gRPC) and HTTP/1.1 proxy (daemon)",
    .details =
        "Proxies HTTP/2 (gRPC included) and HTTP/1.1 as linkerd 1.x does: each router\n"
        "names a request (/svc/<authority> by default), delegates the name through its\n"
        "dtab to a bound name (/#/<namer>/...), which a namer resolves to endpoints\n"
        "(files watched with inotify, DNS A/AAAA/SRV, static lists; /$/inet/HOST/PORT\n"
        "needs none), balances over them (ewma, p2c, aperture, roundRobin), marks\n"
        "failing endpoints dead (5 consecutive failures, backoff 5 s to 300 s) and\n"
        "retries what is safe under a budget (20% of requests + 10/s). The admin port\n"
        "serves a page (/), /metrics (Prometheus), /healthz, /admin/state.json and a\n"
        "resolver (/delegator.json?router=L&path=/svc/x). SIGHUP or a change of the\n"
        "config file reloads it without dropping streams; SIGTERM drains and exits 0.\n"
        "\n"
        "Config (YAML; paths relative to the file):\n"
        "  admin: {ip: 127.0.0.1, port: 9990}\n"
        "  namers:\n"
        "    - {kind: fs, rootDir: disco}        # /#/fs/NAME: file disco/NAME,\n"
        "                                        # lines \"host port [weight]\"\n"
        "    - {kind: dns, servers: [\"127.0.0.1:53\"]}   # /#/dns/HOST/PORT\n"
        "    - {kind: static, services: {users: [\"127.0.0.1:8080\"]}}\n"
        "  routers:\n"
        "    - protocol: h2                      # h2 (gRPC included) or http\n"
        "      label: grpc\n"
        "      dtab: |\n"
        "        /svc => /#/fs;\n"
        "        /svc/users => 0.9 * /#/fs/users & 0.1 * /#/fs/users-canary;\n"
        "      servers: [{ip: 127.0.0.1, port: 4140}]\n"
        "      client: {loadBalancer: {kind: ewma}, connectTimeoutMs: 1000}\n"
        "      service: {totalTimeoutMs: 0}\n"
        "See docs/ARCHITECTURE.md (mesh) for every key. 'argot mesh init' writes a\n"
        "party's gateway config from the cluster config.\n",
    .flags = flags,
    .run = run,
};

/* ---- argot mesh init ----------------------------------------------------------------- */

static const struct flag_def init_flags[] = {
    {"cluster", "FILE", "the cluster config, with a gateway for every party", FLAG_REQUIRED},
    {"party", "NAME", "the party whose gateway this is", FLAG_REQUIRED},
    {"out", "FILE", "where to write the config (default: stdout); checked after writing", 0},
    {"admin-port", "N", "the admin endpoint's port on 127.0.0.1 (default 0: any free port, "
                        "printed at start; -1: none)", 0},
    {NULL, NULL, NULL, 0},
};

/* Splits "host:port" ("[v6]:port" too) into host and port; false if it is
 * not one. */
static bool split_hostport(const char *a, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon = strrchr(a, ':');
    if (!colon || colon == a || !colon[1])
        return false;
    const char *h = a;
    size_t hl = (size_t)(colon - a);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hcap || strlen(colon + 1) >= pcap)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, pcap, "%s", colon + 1);
    return true;
}

/* True if host is an IPv4 or IPv6 literal (a server may listen on it). */
static bool is_ip(const char *host)
{
    unsigned char b[16];
    return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

/* Appends s as a YAML double-quoted scalar. */
static int yaml_quoted(ag_buf *b, const char *s)
{
    int rc = ag_buf_append_str(b, "\"");
    for (; rc == 0 && *s; s++)
        rc = (*s == '"' || *s == '\\') ? ag_buf_printf(b, "\\%c", *s)
                                        : ag_buf_printf(b, "%c", *s);
    return rc == 0 ? ag_buf_append_str(b, "\"") : rc;
}

/* The client TLS of one bound name: the endpoint must present the
 * certificate of party `name`; we present our own. */
static int client_tls_item(ag_buf *b, const char *host, const char *port, const char *name,
                           const char *const files[3])
{
    int rc = ag_buf_printf(b, "        - prefix: /$/inet/%s/%s\n          tls:\n"
                              "            commonName: %s\n            trustCerts: [",
                           host, port, name);
    if (rc == 0)
        rc = yaml_quoted(b, files[2]);
    if (rc == 0)
        rc = ag_buf_append_str(b, "]\n            clientAuth: {certPath: ");
    if (rc == 0)
        rc = yaml_quoted(b, files[0]);
    if (rc == 0)
        rc = ag_buf_append_str(b, ", keyPath: ");
    if (rc == 0)
        rc = yaml_quoted(b, files[1]);
    if (rc == 0)
        rc = ag_buf_append_str(b, "}\n");
    return rc;
}

/* The gateway config of party me of c into b: one h2 router "parties"
 * that routes by the argot-party header, to this party's link server or to
 * a peer's gateway, mutual TLS on both sides with the party certificate,
 * and only the link service allowed. files: absolute cert, key, CA. */
static int mesh_init_yaml(ag_buf *b, const ag_cluster *c, int me, const char *cluster_path,
                          const char *const files[3], long admin_port, char *err, size_t cap)
{
    char host[256], port[16], gw_host[256], gw_port[16];
    const char *self = c->names[me];
    if (!split_hostport(c->addresses[me], host, sizeof(host), port, sizeof(port)) ||
        !split_hostport(c->gateways[me], gw_host, sizeof(gw_host), gw_port, sizeof(gw_port))) {
        snprintf(err, cap, "party %s: bad address or gateway", self);
        return AG_E_CONFIG_VALUE;
    }
    int rc = ag_buf_printf(b, "# The gateway of party %s, written by `argot mesh init` from %s.\n"
                              "# Other parties reach it at %s (the only port they need);\n"
                              "# it hands their link streams to %s's link at %s.\n",
                           self, cluster_path, c->gateways[me], self, c->addresses[me]);
    if (rc == 0 && admin_port >= 0)
        rc = ag_buf_printf(b, "admin: {ip: 127.0.0.1, port: %ld}\n", admin_port);
    else if (rc == 0)
        rc = ag_buf_append_str(b, "admin: {port: -1}\n");
    if (rc == 0)
        rc = ag_buf_printf(b, "routers:\n  - protocol: h2\n    label: parties\n"
                              "    identifier: {kind: header, header: %s}\n"
                              "    dtab: |\n      /svc/%s => /$/inet/%s/%s;\n",
                           AG_LINK_PARTY_HEADER, self, host, port);
    for (int i = 0; rc == 0 && i < c->n; i++) {
        char h[256], p[16];
        if (i == me)
            continue;
        if (!split_hostport(c->gateways[i], h, sizeof(h), p, sizeof(p))) {
            snprintf(err, cap, "party %s: bad gateway '%s'", c->names[i], c->gateways[i]);
            return AG_E_CONFIG_VALUE;
        }
        rc = ag_buf_printf(b, "      /svc/%s => /$/inet/%s/%s;\n", c->names[i], h, p);
    }
    /* the server: on the gateway's address (every interface when it is a
     * host name), the party certificate, client certificates required */
    if (rc == 0)
        rc = ag_buf_printf(b, "    servers:\n      - ip: %s\n        port: %s\n"
                              "        tls:\n          certPath: ",
                           is_ip(gw_host) ? gw_host : "0.0.0.0", gw_port);
    if (rc == 0)
        rc = yaml_quoted(b, files[0]);
    if (rc == 0)
        rc = ag_buf_append_str(b, "\n          keyPath: ");
    if (rc == 0)
        rc = yaml_quoted(b, files[1]);
    if (rc == 0)
        rc = ag_buf_append_str(b, "\n          caCertPath: ");
    if (rc == 0)
        rc = yaml_quoted(b, files[2]);
    /* one endpoint per name: failure accrual could only make a party
     * unreachable for seconds (the link retries by itself) */
    if (rc == 0)
        rc = ag_buf_append_str(b, "\n          requireClientAuth: true\n"
                                  "    client:\n      failureAccrual: {kind: none}\n"
                                  "      configs:\n");
    if (rc == 0)
        rc = client_tls_item(b, host, port, self, files);
    for (int i = 0; rc == 0 && i < c->n; i++) {
        char h[256], p[16];
        if (i != me && split_hostport(c->gateways[i], h, sizeof(h), p, sizeof(p)))
            rc = client_tls_item(b, h, p, c->names[i], files);
    }
    /* the link service only; a peer (any certificate of the CA) only towards
     * this party, this party's own link towards anyone: else a holder of a
     * certificate could relay through this gateway to Q and arrive as us */
    if (rc == 0)
        rc = ag_buf_printf(b,
                           "    authorization:\n      default: deny\n      rules:\n"
                           "        - {party: %s, service: argot.link.v1.Link}\n"
                           "        - {party: \"*\", service: argot.link.v1.Link, dst: /svc/%s}\n",
                           self, self);
    if (rc < 0)
        snprintf(err, cap, "out of memory");
    return rc;
}

static int run_init(struct cmd_args *a)
{
    const char *path = args_get(a, "cluster"), *party = args_get(a, "party");
    const char *out = args_get(a, "out"), *ap = args_get(a, "admin-port");
    long admin_port = 0;
    if (ap) {
        char *end;
        errno = 0;
        admin_port = strtol(ap, &end, 10);
        if (errno || end == ap || *end || admin_port < -1 || admin_port > 65535)
            return usage_error(a->sc, "--admin-port %s: a port (0: any free one; -1: none)",
                               ap);
    }
    ag_cluster *c = ag_calloc(1, sizeof(*c));
    if (!c)
        return runtime_error("mesh init: out of memory");
    char err[AG_ERRMSG_MAX];
    int status = EXIT_RUNTIME, me;
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    if (ag_cluster_load(path, c, err, sizeof(err)) < 0) {
        runtime_error("mesh init: %s", err);
        goto out;
    }
    if ((me = ag_cluster_rank(c, party)) < 0) {
        status = usage_error(a->sc, "--party %s: no such party in %s", party, path);
        goto out;
    }
    if (!c->has_gateways) {
        runtime_error("mesh init: %s: the parties have no gateways (parties: {%s: {address: "
                      "..., gateway: \"host:port\"}, ...})", path, party);
        goto out;
    }
    /* absolute paths: the mesh reads them relative to its own file */
    char abs[3][PATH_MAX];
    const char *src[3] = {c->tls_cert, c->tls_key, c->tls_ca}, *files[3];
    for (int i = 0; i < 3; i++) {
        if (!realpath(src[i], abs[i])) {
            runtime_error("mesh init: %s: %s", src[i], strerror(errno));
            goto out;
        }
        files[i] = abs[i];
    }
    if (mesh_init_yaml(&b, c, me, path, files, admin_port, err, sizeof(err)) < 0) {
        runtime_error("mesh init: %s", err);
        goto out;
    }
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) {
        runtime_error("mesh init: %s: %s", out, strerror(errno));
        goto out;
    }
    bool ok = fwrite(b.data, 1, b.len, f) == b.len;
    ok = (out ? fclose(f) : fflush(f)) == 0 && ok;
    if (!ok) {
        runtime_error("mesh init: %s: write failed", out ? out : "stdout");
        goto out;
    }
    if (out) {
        /* what we wrote must be a config the mesh takes */
        ag_mesh *m = ag_mesh_load(out, err, sizeof(err));
        if (!m) {
            runtime_error("mesh init: the config written to %s does not load: %s", out, err);
            goto out;
        }
        ag_mesh_free(m);
        printf("wrote %s: the gateway of party %s on %s\n", out, party, c->gateways[me]);
    }
    status = EXIT_OK;
out:
    ag_buf_cleanup(&b);
    ag_free(c);
    return status;
}

const struct subcmd cmd_mesh_init = {
    .name = "mesh init",
    .summary = "write a party's gateway config from the cluster config",
    .details =
        "Reads the cluster config (its parties each with an address and a gateway, and\n"
        "its tls section) and writes the config of PARTY's gateway: one h2 router,\n"
        "'parties', on PARTY's gateway address, that routes each link stream by its\n"
        "argot-party header: PARTY's own to its link server (its address), a peer's to\n"
        "that peer's gateway. TLS both ways with PARTY's certificate: callers must\n"
        "present a certificate from the CA, and each endpoint must present the\n"
        "certificate of the party it serves. Only the link service\n"
        "(argot.link.v1.Link) passes, a peer's only towards PARTY and PARTY's own towards\n"
        "any peer; anything else gets PERMISSION_DENIED. The caller's\n"
        "party goes to the link server in l5d-client-id. Run the result with\n"
        "'argot mesh --config FILE'; SIGHUP makes it read the certificates again.\n",
    .flags = init_flags,
    .run = run_init,
};
