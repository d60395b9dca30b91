/*
 * argot mesh: the party gateway (mesh.h) as a daemon. Loads the config
 * (errors name file:line:col), serves every router and the admin endpoint,
 * prints one line per listening address, reloads on SIGHUP and when the
 * config file changes, and on SIGTERM or SIGINT stops taking connections,
 * lets streams in flight finish (shutdown_grace) and exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

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
        "See docs/ARCHITECTURE.md (mesh) for every key.\n",
    .flags = flags,
    .run = run,
};
