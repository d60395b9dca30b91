/*
 * argot nm: the node manager as a daemon (sched.h, ag_nm). Reads the YAML
 * config (errors name file:line:col), starts the node manager, prints
 * "nm listening on HOST:PORT" once serving ContainerManagement, then waits:
 * SIGTERM or SIGINT (or the RM ordering a shutdown) stop heartbeating, stop
 * taking calls, kill the containers (or, with recovery, save their state
 * and leave them running), and the process exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "argot/sched.h"
#include "cmd.h"

static const struct flag_def flags[] = {
    {"config", "FILE", "the YAML config (see below)", FLAG_REQUIRED},
    {NULL, NULL, NULL, 0},
};

/* The daemon's tick: the RM's shutdown order stops the node manager. */
static bool rm_said_stop(void *ud)
{
    return ag_nm_wait_shutdown(ud, 0);
}

static int run(struct cmd_args *a)
{
    const char *path = args_get(a, "config");
    char err[AG_ERRMSG_MAX];
    ag_nm_config c;
    ag_nm_config_init(&c);
    if (ag_nm_config_load(&c, path, err, sizeof(err)) < 0)
        return runtime_error("nm: %s", err);

    /* the signals stay blocked in every thread the node manager starts */
    sigset_t old;
    daemon_signals_block(&old);

    int status = EXIT_RUNTIME;
    ag_nm *nm = ag_nm_new(&c);
    if (!nm) {
        runtime_error("nm: %s", ag_strerror(AG_E_NOMEM));
        goto out;
    }
    if (ag_nm_start(nm) < 0) {
        runtime_error("nm: %s", ag_nm_errmsg(nm));
        goto out;
    }
    char shown[300];
    daemon_shown_address(c.address, ag_nm_port(nm), shown, sizeof(shown));
    printf("nm listening on %s\n", shown);
    if (c.admin[0]) {
        daemon_shown_address(c.admin, ag_nm_admin_port(nm), shown, sizeof(shown));
        printf("nm admin on http://%s (/metrics, /healthz)\n", shown);
    }
    fflush(stdout);
    int sig = daemon_wait_stop("nm", 200, rm_said_stop, nm);
    AG_LOG(AG_LOG_INFO, "nm", "stopping reason=%s",
           sig == SIGTERM  ? "SIGTERM"
           : sig == SIGINT ? "SIGINT"
                           : "rm_shutdown");
    ag_nm_stop(nm);
    AG_LOG(AG_LOG_INFO, "nm", "stopped");
    status = EXIT_OK;
out:
    ag_nm_free(nm);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return status;
}

const struct subcmd cmd_nm = {
    .name = "nm",
    .summary = "run a node manager of the sched module (daemon)",
    .details = "Runs a YARN-style NodeManager: registers with the resource manager\n"
               "(argot.sched.v1.ResourceTracker), heartbeats its containers' statuses, and\n"
               "serves argot.sched.v1.ContainerManagement and gRPC health on its address.\n"
               "Every ContainerManagement call needs an NM token the RM issued for this node\n"
               "(metadata argot-nm-token) and acts only on that application's containers.\n"
               "A container starts only with a container token the RM signed for this node\n"
               "(not expired, not started before); it runs as its own process group in\n"
               "work_dir/<application>/<container>/ (stdout and stderr files there), limited\n"
               "by cgroup v2 where the machine allows it, else by RLIMIT_AS. While the RM is\n"
               "down the NM retries with backoff and its containers keep running. Prints\n"
               "\"nm listening on HOST:PORT\" once serving; SIGTERM or SIGINT stop heartbeating,\n"
               "kill the containers (SIGTERM to each group, SIGKILL after kill_grace; with\n"
               "recovery: true, leave them to the next nm) and exit 0.\n"
               "\n"
               "Config (YAML):\n"
               "  rm: \"127.0.0.1:8030\"               # the RM's ResourceTracker (required)\n"
               "  address: \"127.0.0.1:8040\"          # ContainerManagement; port 0 picks one\n"
               "  resources: {memory_mb: 4096, vcores: 4}   # offered to the RM (required)\n"
               "  work_dir: /var/lib/argot/nm         # containers' directories (required;\n"
               "                                     # relative to the config file)\n"
               "  rack: /default\n"
               "  labels: [gpu]                      # node labels (optional)\n"
               "  heartbeat_interval: 1s             # until the RM says otherwise\n"
               "  cgroup: {parent: /sys/fs/cgroup/argot-nm}  # the default; or cgroup: off\n"
               "                                     # (rlimits only). Used only where cgroup2\n"
               "                                     # is mounted, writable and delegates the\n"
               "                                     # memory and cpu controllers\n"
               "  kill_grace: 2s                     # SIGTERM to SIGKILL of a container\n"
               "  memory_check: true                 # false: no RLIMIT_AS when cgroups are\n"
               "                                     # not available (e.g. for programs that\n"
               "                                     # reserve large address spaces)\n"
               "  shutdown_grace: 5s                 # calls in flight when stopping\n"
               "  log: {level: info}                 # debug, info, warn, error, off\n"
               "  admin: {address: \"127.0.0.1:8042\"} # HTTP: /metrics (Prometheus), /healthz\n"
               "  recovery: false                    # true: on stop, leave the containers\n"
               "                                     # running (state in work_dir/nm-state); the\n"
               "                                     # next nm on that work_dir adopts them\n"
               "                                     # (give address a fixed port)\n"
               "  tls: {cert: nm.crt, key: nm.key, ca: ca.crt}  # relative to this file: serve\n"
               "                                     # and reach the RM over TLS; with ca, mutual\n"
               "                                     # (callers present a certificate ca issued)\n",
    .flags = flags,
    .run = run,
};
