/*
 * argot beaver-server: the trusted-third-party Beaver dealer as a daemon
 * (mpc.h, ag_beaver_server): the argot.beaver.v1.Dealer service and gRPC
 * health checking on one port, optionally over mutual TLS; Prometheus
 * metrics and HTTP health (/metrics, /healthz, /ready) on the admin port
 * when the config names one.
 *
 * Lifecycle: the config is read and checked (errors name file:line:col),
 * the server starts and prints "beaver-server listening on HOST:PORT";
 * SIGTERM or SIGINT set health to NOT_SERVING, stop taking calls and give
 * calls in flight shutdown_grace to finish, then the process exits 0.
 * Idle sessions are swept every second.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "argot/mpc.h"
#include "argot/rpc.h"
#include "cmd.h"

static const struct flag_def flags[] = {
    {"config", "FILE", "the YAML config (see below)", 0},
    {"listen", "HOST:PORT", "where to serve (overrides the config's address; port 0 picks "
                            "one)", 0},
    {NULL, NULL, NULL, 0},
};

struct dealer_config {
    char address[256];
    char admin[256]; /* "": no admin endpoint */
    char tls_cert[1024], tls_key[1024], tls_ca[1024];
    bool tls;
    ag_beaver_server_opts opts;
    uint64_t grace_ms;
    int log_level;
};

/* Reads path into dc; on failure err holds "file:line:col: why". */
static int load_config(const char *path, struct dealer_config *dc, char *err, size_t cap)
{
    static const char *const top[] = {"address", "tls", "sessions", "max_elements",
                                      "shutdown_grace", "log", "admin", NULL};
    static const char *const tls_keys[] = {"cert", "key", "ca", NULL};
    static const char *const session_keys[] = {"max", "idle_timeout", NULL};
    ag_config *cfg = ag_config_new();
    if (!cfg) {
        snprintf(err, cap, "%s: %s", path, ag_strerror(AG_E_NOMEM));
        return AG_E_NOMEM;
    }
    const ag_cnode *root = NULL, *tls = NULL, *sessions = NULL;
    ag_daemon_conf d = {.log_level = -1, .shutdown_grace_ms = dc->grace_ms};
    int64_t max_sessions = 0, max_elements = 0;
    int rc = ag_config_load_file(cfg, path);
    if (rc == 0) {
        root = ag_config_root(cfg);
        rc = ag_config_check_keys(cfg, root, top);
    }
    if (rc == 0)
        rc = ag_config_get_hostport(cfg, root, "address", AG_OPTIONAL, dc->address,
                                    sizeof(dc->address));
    if (rc == 0)
        rc = ag_config_get_map(cfg, root, "tls", AG_OPTIONAL, &tls);
    if (rc == 0 && tls) {
        rc = ag_config_check_keys(cfg, tls, tls_keys);
        if (rc == 0)
            rc = ag_config_get_path(cfg, tls, "cert", AG_REQUIRED, dc->tls_cert,
                                    sizeof(dc->tls_cert));
        if (rc == 0)
            rc = ag_config_get_path(cfg, tls, "key", AG_REQUIRED, dc->tls_key,
                                    sizeof(dc->tls_key));
        if (rc == 0)
            rc = ag_config_get_path(cfg, tls, "ca", AG_OPTIONAL, dc->tls_ca,
                                    sizeof(dc->tls_ca));
        dc->tls = rc == 0;
    }
    if (rc == 0)
        rc = ag_config_get_map(cfg, root, "sessions", AG_OPTIONAL, &sessions);
    if (rc == 0)
        rc = ag_config_check_keys(cfg, sessions, session_keys);
    if (rc == 0)
        rc = ag_config_get_i64(cfg, sessions, "max", AG_OPTIONAL, 1, 1 << 20, &max_sessions);
    if (rc == 0)
        rc = ag_config_get_duration_ms(cfg, sessions, "idle_timeout", AG_OPTIONAL,
                                       &dc->opts.idle_timeout_ms);
    if (rc == 0)
        rc = ag_config_get_i64(cfg, root, "max_elements", AG_OPTIONAL, 1, (int64_t)1 << 34,
                               &max_elements);
    if (rc == 0)
        rc = ag_config_get_daemon(cfg, root, &d);
    snprintf(dc->admin, sizeof(dc->admin), "%s", d.admin);
    dc->log_level = d.log_level;
    dc->grace_ms = d.shutdown_grace_ms;
    dc->opts.max_sessions = (unsigned)max_sessions;
    dc->opts.max_elements = (uint64_t)max_elements;
    if (rc < 0)
        snprintf(err, cap, "%s", ag_config_errmsg(cfg));
    ag_config_free(cfg);
    return rc;
}

static atomic_bool serving;

static bool is_serving(void *ud)
{
    (void)ud;
    return atomic_load(&serving);
}

/* The daemon's tick: idle sessions are swept every second. */
static bool sweep(void *ud)
{
    ag_beaver_server_sweep(ud);
    return false;
}

static int run(struct cmd_args *a)
{
    struct dealer_config dc = {.grace_ms = 10000, .log_level = -1};
    const char *path = args_get(a, "config"), *listen = args_get(a, "listen");
    char err[AG_ERRMSG_MAX];
    if (!path && !listen)
        return usage_error(a->sc, "give --config FILE (or --listen HOST:PORT)");
    if (path && load_config(path, &dc, err, sizeof(err)) < 0)
        return runtime_error("beaver-server: %s", err);
    if (listen)
        snprintf(dc.address, sizeof(dc.address), "%s", listen);
    if (!dc.address[0])
        return runtime_error("beaver-server: %s: no address to serve on (address: "
                             "\"host:port\")", path);
    if (dc.log_level >= 0)
        ag_log_set_level((ag_log_level)dc.log_level);

    /* the signals stay blocked in every thread the servers start */
    sigset_t old;
    daemon_signals_block(&old);

    int status = EXIT_RUNTIME;
    ag_rpc_server_opts so;
    ag_rpc_server_opts_init(&so);
    if (dc.tls) {
        so.tls_cert_file = dc.tls_cert;
        so.tls_key_file = dc.tls_key;
        so.tls_ca_file = dc.tls_ca[0] ? dc.tls_ca : NULL;
    }
    ag_metrics *metrics = ag_metrics_new();
    dc.opts.metrics = metrics;
    ag_rpc_server *srv = ag_rpc_server_new(&so);
    ag_beaver_server *b = metrics ? ag_beaver_server_new(&dc.opts) : NULL;
    ag_rpc_health *health = ag_rpc_health_new();
    ag_admin *admin = NULL;
    atomic_store(&serving, false);
    if (dc.admin[0]) {
        ag_admin_opts ao;
        ag_admin_opts_init(&ao);
        ao.metrics = metrics;
        ao.serving = is_serving;
        admin = ag_admin_new(&ao);
    }
    if (!srv || !b || !health || (dc.admin[0] && !admin)) {
        runtime_error("beaver-server: %s", ag_strerror(AG_E_NOMEM));
        goto out;
    }
    if (ag_beaver_server_register(srv, b) < 0 || ag_rpc_health_register(srv, health) < 0) {
        runtime_error("beaver-server: %s", ag_rpc_server_errmsg(srv));
        goto out;
    }
    if (ag_rpc_server_start(srv, dc.address) < 0) {
        runtime_error("beaver-server: cannot serve: %s", ag_rpc_server_errmsg(srv));
        goto out;
    }
    if (admin && ag_admin_start(admin, dc.admin) < 0) {
        runtime_error("beaver-server: admin: cannot serve: %s", ag_admin_errmsg(admin));
        goto out;
    }
    atomic_store(&serving, true);
    ag_rpc_health_set(health, "", AG_RPC_HEALTH_SERVING);
    ag_rpc_health_set(health, "argot.beaver.v1.Dealer", AG_RPC_HEALTH_SERVING);
    char shown[300];
    daemon_shown_address(dc.address, ag_rpc_server_port(srv), shown, sizeof(shown));
    printf("beaver-server listening on %s%s\n", shown,
           dc.tls ? (dc.tls_ca[0] ? " (mutual TLS)" : " (TLS)") : "");
    if (admin) {
        char ashown[300];
        daemon_shown_address(dc.admin, ag_admin_port(admin), ashown, sizeof(ashown));
        printf("beaver-server admin on http://%s (/metrics, /healthz)\n", ashown);
    }
    fflush(stdout);
    AG_LOG(AG_LOG_INFO, "beaver", "serving address=%s tls=%s max_sessions=%u", shown,
           dc.tls ? (dc.tls_ca[0] ? "mutual" : "server") : "off",
           dc.opts.max_sessions ? dc.opts.max_sessions : 1024);

    int sig = daemon_wait_stop("beaver", 1000, sweep, b);
    AG_LOG(AG_LOG_INFO, "beaver", "stopping signal=%s grace_ms=%llu",
           sig == SIGTERM ? "SIGTERM" : "SIGINT", (unsigned long long)dc.grace_ms);
    atomic_store(&serving, false);
    ag_rpc_health_shutdown(health);
    ag_rpc_server_shutdown(srv, dc.grace_ms);
    ag_beaver_server_stats st;
    ag_beaver_server_stats_get(b, &st);
    AG_LOG(AG_LOG_INFO, "beaver", "stopped sessions_total=%llu refused=%llu",
           (unsigned long long)st.sessions_total, (unsigned long long)st.refused);
    status = EXIT_OK;
out:
    ag_admin_free(admin);
    ag_rpc_server_free(srv);
    ag_rpc_health_free(health);
    ag_beaver_server_free(b);
    ag_metrics_free(metrics);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return status;
}

const struct subcmd cmd_beaver_server = {
    .name = "beaver-server",
    .summary = "run the trusted-third-party Beaver dealer (daemon)",
    .details =
        "Serves argot.beaver.v1.Dealer, the trusted third party that deals the Beaver\n"
        "triples of an SPU whose cluster config says `beaver: ttp` (and names this\n"
        "server in `beaver_server`), so that no party deals: each party registers its\n"
        "dealer seed here, and rank 0 gets the rest of its shares from here. It must\n"
        "not collude with any party. gRPC health checking (grpc.health.v1.Health) is on\n"
        "the same port. Prints \"beaver-server listening on HOST:PORT\" once serving;\n"
        "SIGTERM or SIGINT drain calls in flight (shutdown_grace) and exit 0.\n"
        "\n"
        "Config (YAML; every key optional but an address, here or in --listen):\n"
        "  address: \"127.0.0.1:9400\"          # host:port, or unix:/path\n"
        "  tls: {cert: dealer.crt, key: dealer.key, ca: ca.crt}\n"
        "                                     # with ca: parties must present a\n"
        "                                     # certificate it issued (mutual TLS),\n"
        "                                     # and only rank 0's may ask for its shares\n"
        "  sessions: {max: 1024, idle_timeout: 1h}\n"
        "  max_elements: 67108864             # per component of one request\n"
        "  shutdown_grace: 10s\n"
        "  log: {level: info}                 # debug, info, warn, error, off\n"
        "  admin: {address: \"127.0.0.1:9401\"} # HTTP: /metrics (Prometheus), /healthz,\n"
        "                                     # /ready (503 once stopping)\n"
        "Paths are relative to the config file. A certificate for the dealer:\n"
        "  argot ca issue dealer --dir ca --san DNS:dealer.example,IP:10.0.0.5\n",
    .flags = flags,
    .run = run,
};
