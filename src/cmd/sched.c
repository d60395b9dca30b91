/*
 * The sched subcommands: `argot rm` (the resource manager daemon), `argot
 * app submit|status|kill` and `argot nodes` (clients of the RM), and `argot
 * app master`, the built-in ApplicationMaster that runs a command in N
 * containers (YARN's DistributedShell), which `argot app submit` asks the
 * RM to start.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "argot/sched.h"
#include "argot/sched/v1/sched.argot.h"
#include "argot/sched/v1/sched.pb-c.h"
#include "cmd.h"

/* ---- argot rm -------------------------------------------------------------------- */

static const struct flag_def rm_flags[] = {
    {"config", "FILE", "the YAML config (see below)", 0},
    {"listen", "HOST:PORT", "where to serve (overrides the config's address)", 0},
    {NULL, NULL, NULL, 0},
};

/* What `argot rm` says as its role changes (ha): "rm listening on ..."
 * once it serves; the tick stops the daemon once it is fenced. */
struct rm_watch {
    ag_rm *rm;
    bool said_active;
};

static void rm_say_active(struct rm_watch *w)
{
    if (w->said_active || ag_rm_get_role(w->rm) != AG_RM_ACTIVE)
        return;
    w->said_active = true;
    printf("rm listening on %s\n", ag_rm_address(w->rm));
    fflush(stdout);
}

static bool rm_tick(void *ud)
{
    struct rm_watch *w = ud;
    rm_say_active(w);
    return ag_rm_get_role(w->rm) == AG_RM_FENCED;
}

static int run_rm(struct cmd_args *a)
{
    char err[AG_ERRMSG_MAX];
    sigset_t old;
    daemon_signals_block(&old);
    ag_rm *rm = ag_rm_load(args_get(a, "config"), args_get(a, "listen"), err, sizeof(err));
    int status = EXIT_RUNTIME;
    if (!rm) {
        runtime_error("rm: %s", err);
        goto out;
    }
    if (ag_rm_start(rm, err, sizeof(err)) < 0) {
        runtime_error("rm: %s", err);
        goto out;
    }
    struct rm_watch w = {rm, false};
    if (ag_rm_get_role(rm) == AG_RM_STANDBY)
        printf("rm standby id=%s (campaigning to become the active RM)\n", ag_rm_id(rm));
    rm_say_active(&w);
    if (ag_rm_admin_port(rm))
        printf("rm admin on port %d (/metrics, /healthz)\n", ag_rm_admin_port(rm));
    fflush(stdout);
    int sig = daemon_wait_stop("rm", 50, rm_tick, &w);
    if (sig == 0) {
        ag_rm_stop(rm);
        runtime_error("rm: %s lost the lead (fenced: another RM is active, or its etcd lease "
                      "ran out); restart it to stand by again", ag_rm_id(rm));
        goto out;
    }
    AG_LOG(AG_LOG_INFO, "rm", "stopping signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    ag_rm_stop(rm);
    status = EXIT_OK;
out:
    ag_rm_free(rm);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return status;
}

const struct subcmd cmd_rm = {
    .name = "rm",
    .summary = "run the resource manager (daemon)",
    .details =
        "The cluster's resource manager, as YARN's: node managers (argot nm) register and\n"
        "heartbeat, clients submit applications (argot app submit), each application's\n"
        "master asks for containers (register, allocate, finish) and the RM grants them\n"
        "from capacity queues. Prints \"rm listening on HOST:PORT\" once serving; SIGTERM\n"
        "or SIGINT stop it. With state, a restart on the same state file and address\n"
        "keeps running applications (YARN's work-preserving restart): their AMs register\n"
        "again and the NMs' containers are taken back.\n"
        "\n"
        "Config (YAML; every key optional):\n"
        "  address: \"127.0.0.1:8030\"\n"
        "  state: {sqlite: rm.db}\n"
        "  liveness: {nm_expiry_ms: 600000, am_expiry_ms: 600000,\n"
        "             container_alloc_expiry_ms: 600000}  # unlaunched grants taken back\n"
        "  queues:\n"
        "    root.prod: {capacity: 70, max_capacity: 100, user_limit_factor: 1,\n"
        "                max_am_share: 0.1, labels: [gpu]}\n"
        "    root.dev:  {capacity: 30, max_capacity: 50}\n"
        "  scheduler: {min_allocation: {memory_mb: 1024, vcores: 1},\n"
        "              max_allocation: {memory_mb: 8192, vcores: 4},\n"
        "              node_locality_delay: 40, rack_locality_delay: 80,\n"
        "              max_app_attempts: 2, preemption: {enabled: false, wait: 15s}}\n"
        "  heartbeat_interval: 1s\n"
        "  admin: {address: \"127.0.0.1:8088\"}   # /metrics, /healthz\n"
        "  shutdown_grace: 5s\n"
        "  log: {level: info}\n"
        "  tls: {cert: rm.crt, key: rm.key, ca: ca.crt}   # relative to this file; with ca,\n"
        "                                    # mutual TLS: NMs, AMs and clients present a\n"
        "                                    # certificate ca issued (argot ca issue);\n"
        "                                    # nodes: [nm1, nm2] limits who may be a node\n"
        "  tokens: {roll_interval_ms: 86400000}   # master keys roll (at least 12 heartbeats)\n"
        "  ha: {etcd: [\"127.0.0.1:2379\"], prefix: /argot/rm, id: rm1, lease: 2s}\n"
        "                                    # high availability (instead of state): RMs with\n"
        "                                    # the same etcd and prefix elect one active; the\n"
        "                                    # others stand by (serving nothing) and take over\n"
        "                                    # within seconds of its end, with its state.\n"
        "                                    # Clients list every RM: --rm a:8030,b:8030\n",
    .flags = rm_flags,
    .run = run_rm,
};

/* ---- clients ---------------------------------------------------------------------- */

/* The TLS flags every client of the RM takes. */
#define TLS_FLAGS                                                                          \
    {"tls-cert", "FILE", "client certificate (PEM) for mutual TLS with the RM and the NMs", 0}, \
        {"tls-key", "FILE", "the client certificate's private key (PEM, unencrypted)", 0},     \
        {"tls-ca", "FILE",                                                                     \
         "CAs (PEM) trusted for the servers' certificates; turns TLS on (without it, with "    \
         "--tls-cert: the system's CAs)",                                                      \
         0}

/* The TLS files of the flags, as absolute paths ("" when not given): the
 * distributed shell's master gets them from another directory. */
struct tls_files {
    char cert[4096];
    char key[4096];
    char ca[4096];
};

/* Reads --tls-cert, --tls-key and --tls-ca into t; EXIT_OK, or EXIT_USAGE
 * after saying which flag is wrong. */
static int tls_flags(const struct cmd_args *a, struct tls_files *t)
{
    static const char *const names[] = {"tls-cert", "tls-key", "tls-ca"};
    char *outs[] = {t->cert, t->key, t->ca};
    for (int i = 0; i < 3; i++) {
        const char *v = args_get(a, names[i]);
        outs[i][0] = '\0';
        if (!v)
            continue;
        if (!realpath(v, outs[i]) || access(outs[i], R_OK) != 0)
            return usage_error(a->sc, "--%s %s: cannot read it: %s", names[i], v, strerror(errno));
    }
    if (!t->cert[0] != !t->key[0])
        return usage_error(a->sc, "--tls-cert and --tls-key go together (a client certificate "
                                  "and its key)");
    return EXIT_OK;
}

/* A client of the RM (or of the RMs of an ha set: "host:port,host:port")
 * with the TLS files t; NULL after saying why (a usage error for a
 * malformed address, a runtime one for TLS files that cannot be used). */
static ag_rm_client *rm_channel(const struct cmd_args *a, const char *addr,
                                const struct tls_files *t, int *exit_code)
{
    char err[AG_ERRMSG_MAX];
    ag_rm_client *ch = ag_rm_client_new(addr, t->cert, t->key, t->ca, err, sizeof(err));
    if (!ch)
        *exit_code = strstr(err, "TLS") || strstr(err, "tls") || t->cert[0] || t->ca[0]
                         ? runtime_error("%s: %s", a->sc->name, err)
                         : usage_error(a->sc, "--rm %s: %s", addr, err);
    return ch;
}

/* A unary call of ApplicationClient's method through the client (with
 * failover between RMs); *resp typed. */
#define RM_CALL(ch, method, req, resp, message)                                              \
    ag_rm_client_call((ch), &argot__sched__v1__application_client__##method##__method,        \
                      &(req)->base, 10000, (ProtobufCMessage **)(resp), (message))

static const char *state_name(Argot__Sched__V1__YarnApplicationState s)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&argot__sched__v1__yarn_application_state__descriptor,
                                             (int)s);
    return v ? v->name : "?";
}

static const char *final_name(Argot__Sched__V1__FinalApplicationStatus s)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &argot__sched__v1__final_application_status__descriptor, (int)s);
    return v ? v->name + 4 : "?"; /* APP_SUCCEEDED -> SUCCEEDED */
}

/* Parses an application id argument; prints the usage error. */
static int app_id_arg(const struct cmd_args *a, Argot__Sched__V1__ApplicationId *id)
{
    int64_t ts;
    int32_t n;
    if (!a->pos)
        return usage_error(a->sc, "which application? give its id (application_<ts>_<n>)");
    if (ag_sched_parse_app_id(a->pos, &ts, &n) < 0)
        return usage_error(a->sc, "'%s' is not an application id (application_<ts>_<n>)",
                           a->pos);
    argot__sched__v1__application_id__init(id);
    id->cluster_timestamp = ts;
    id->id = n;
    return EXIT_OK;
}

static int report(ag_rm_client *ch, const Argot__Sched__V1__ApplicationId *id,
                  Argot__Sched__V1__GetApplicationReportResponse **resp, char **message)
{
    Argot__Sched__V1__GetApplicationReportRequest req =
        ARGOT__SCHED__V1__GET_APPLICATION_REPORT_REQUEST__INIT;
    req.application_id = (Argot__Sched__V1__ApplicationId *)id;
    return RM_CALL(ch, get_application_report, &req, resp, message);
}

static const struct flag_def submit_flags[] = {
    {"provider", "argot|slurm", "where the containers run (default argot)", 0},
    {"rm", "HOST:PORT[,...]", "the resource manager, or the RMs of an ha set (required with "
     "--provider argot)", 0},
    {"name", "NAME", "the application's name", FLAG_REQUIRED},
    {"containers", "N", "containers to run the command in (default 1)", 0},
    {"memory", "MB", "memory of each container (default 1024)", 0},
    {"vcores", "V", "virtual cores of each container (default 1)", 0},
    {"queue", "QUEUE", "the leaf queue (default root.default)", 0},
    {"priority", "P", "the containers' priority (default 0)", 0},
    {"max-attempts", "K", "runs of a failing container, each on another node where "
                          "possible (default 1)", 0},
    {"am-memory", "MB", "memory of the application master's container (default 256)", 0},
    {"wait", NULL, "wait for the end; exit 0 only if every container exited 0", 0},
    TLS_FLAGS,
    {NULL, NULL, NULL, 0},
};

static int int_flag(const struct cmd_args *a, const char *name, long def, long min, long max,
                    long *out)
{
    const char *s = args_get(a, name);
    *out = def;
    if (!s)
        return EXIT_OK;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v < min || v > max)
        return usage_error(a->sc, "--%s %s: a number from %ld to %ld", name, s, min, max);
    *out = v;
    return EXIT_OK;
}

static int submit_slurm(struct cmd_args *a, long n, long mem, long vc, long prio,
                        long attempts);

static int run_submit(struct cmd_args *a)
{
    long n, mem, vc, prio, attempts, am_mem;
    if (int_flag(a, "containers", 1, 1, 100000, &n) || int_flag(a, "memory", 1024, 1, 1 << 30, &mem) ||
        int_flag(a, "vcores", 1, 1, 1024, &vc) || int_flag(a, "priority", 0, 0, 1 << 20, &prio) ||
        int_flag(a, "max-attempts", 1, 1, 100, &attempts) ||
        int_flag(a, "am-memory", 256, 1, 1 << 30, &am_mem))
        return EXIT_USAGE;
    if (a->nrest == 0)
        return usage_error(a->sc, "no command: argot app submit ... -- COMMAND ARGS");
    const char *provider = args_get(a, "provider");
    if (provider && strcmp(provider, "argot") != 0 && strcmp(provider, "slurm") != 0)
        return usage_error(a->sc, "--provider %s: argot or slurm", provider);
    if (provider && strcmp(provider, "slurm") == 0)
        return submit_slurm(a, n, mem, vc, prio, attempts);
    if (!args_get(a, "rm"))
        return usage_error(a->sc, "--rm HOST:PORT is required (with --provider argot)");
    static struct tls_files tls;
    if (tls_flags(a, &tls) != EXIT_OK)
        return EXIT_USAGE;
    const char *rm = args_get(a, "rm");
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0)
        return runtime_error("app submit: cannot find the argot binary (/proc/self/exe)");
    self[sl] = 0;
    int code = EXIT_USAGE;
    ag_rm_client *ch = rm_channel(a, rm, &tls, &code);
    if (!ch)
        return code;
    int status = EXIT_RUNTIME;
    char *message = NULL;
    Argot__Sched__V1__GetNewApplicationResponse *nresp = NULL;
    Argot__Sched__V1__GetNewApplicationRequest nreq = ARGOT__SCHED__V1__GET_NEW_APPLICATION_REQUEST__INIT;
    int st = RM_CALL(ch, get_new_application, &nreq, &nresp, &message);
    if (st != AG_RPC_OK) {
        runtime_error("app submit: RM %s: %s: %s", rm, ag_rpc_status_name(st),
                      message ? message : "");
        goto out;
    }
    /* the AM: this binary's `app master`, with the command after -- */
    char sn[32], smem[32], svc[32], sprio[32], satt[32];
    snprintf(sn, sizeof(sn), "%ld", n);
    snprintf(smem, sizeof(smem), "%ld", mem);
    snprintf(svc, sizeof(svc), "%ld", vc);
    snprintf(sprio, sizeof(sprio), "%ld", prio);
    snprintf(satt, sizeof(satt), "%ld", attempts);
    const char *head[] = {self,   "app",    "master",     "--rm",     rm,   "--containers",
                          sn,     "--memory", smem,        "--vcores", svc,  "--priority",
                          sprio,  "--max-attempts", satt};
    /* the master talks to the RM and the NMs with the same TLS files (by
     * absolute path: the NMs must see them, as they see this binary) */
    const char *tls_argv[6];
    size_t ntls = 0;
    if (tls.cert[0]) {
        tls_argv[ntls++] = "--tls-cert";
        tls_argv[ntls++] = tls.cert;
        tls_argv[ntls++] = "--tls-key";
        tls_argv[ntls++] = tls.key;
    }
    if (tls.ca[0]) {
        tls_argv[ntls++] = "--tls-ca";
        tls_argv[ntls++] = tls.ca;
    }
    size_t nh = AG_ARRAY_LEN(head), argc = nh + ntls + 1 + (size_t)a->nrest;
    char **argv = ag_calloc(argc + 1, sizeof(*argv));
    if (!argv) {
        runtime_error("app submit: %s", ag_strerror(AG_E_NOMEM));
        goto out;
    }
    for (size_t i = 0; i < nh; i++)
        argv[i] = (char *)head[i];
    for (size_t i = 0; i < ntls; i++)
        argv[nh + i] = (char *)tls_argv[i];
    nh += ntls;
    argv[nh++] = "--";
    for (int i = 0; i < a->nrest; i++)
        argv[nh + (size_t)i] = a->rest[i];
    Argot__Sched__V1__ContainerLaunchContext clc = ARGOT__SCHED__V1__CONTAINER_LAUNCH_CONTEXT__INIT;
    clc.n_command = argc;
    clc.command = argv;
    Argot__Sched__V1__Resource res = ARGOT__SCHED__V1__RESOURCE__INIT;
    res.memory_mb = am_mem;
    res.vcores = 1;
    Argot__Sched__V1__ApplicationSubmissionContext ctx =
        ARGOT__SCHED__V1__APPLICATION_SUBMISSION_CONTEXT__INIT;
    ctx.application_id = nresp->application_id;
    ctx.application_name = (char *)args_get(a, "name");
    ctx.queue = (char *)(args_get(a, "queue") ? args_get(a, "queue") : "");
    ctx.am_container_spec = &clc;
    ctx.resource = &res;
    ctx.application_type = "argot-dshell";
    const char *user = getenv("USER");
    ctx.user = (char *)(user ? user : "argot");
    Argot__Sched__V1__SubmitApplicationRequest sreq = ARGOT__SCHED__V1__SUBMIT_APPLICATION_REQUEST__INIT;
    sreq.application_submission_context = &ctx;
    Argot__Sched__V1__SubmitApplicationResponse *sresp = NULL;
    ag_free(message);
    message = NULL;
    st = RM_CALL(ch, submit_application, &sreq, &sresp, &message);
    ag_free(argv);
    ag_rpc_msg_free(sresp ? &sresp->base : NULL);
    char idtext[64];
    ag_sched_format_app_id(nresp->application_id->cluster_timestamp, nresp->application_id->id,
                           idtext, sizeof(idtext));
    if (st != AG_RPC_OK) {
        runtime_error("app submit: RM %s refused %s: %s: %s", rm, idtext,
                      ag_rpc_status_name(st), message ? message : "");
        goto out;
    }
    printf("%s\n", idtext);
    fflush(stdout);
    if (!args_bool(a, "wait")) {
        status = EXIT_OK;
        goto out;
    }
    for (;;) {
        Argot__Sched__V1__GetApplicationReportResponse *r = NULL;
        ag_free(message);
        message = NULL;
        st = report(ch, nresp->application_id, &r, &message);
        if (st == AG_RPC_OK && r->application_report) {
            Argot__Sched__V1__ApplicationReport *ar = r->application_report;
            Argot__Sched__V1__YarnApplicationState s = ar->yarn_application_state;
            if (s == ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FINISHED ||
                s == ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FAILED ||
                s == ARGOT__SCHED__V1__YARN_APPLICATION_STATE__KILLED) {
                bool ok = s == ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FINISHED &&
                          ar->final_application_status ==
                              ARGOT__SCHED__V1__FINAL_APPLICATION_STATUS__APP_SUCCEEDED;
                fprintf(ok ? stdout : stderr, "%s%s %s: %s%s%s\n", ok ? "" : "argot: app submit: ",
                        idtext, state_name(s), final_name(ar->final_application_status),
                        ar->diagnostics && ar->diagnostics[0] ? ": " : "",
                        ar->diagnostics ? ar->diagnostics : "");
                status = ok ? EXIT_OK : EXIT_RUNTIME;
                ag_rpc_msg_free(&r->base);
                break;
            }
        } else if (st != AG_RPC_UNAVAILABLE) {
            runtime_error("app submit: report of %s: %s: %s", idtext, ag_rpc_status_name(st),
                          message ? message : "");
            ag_rpc_msg_free(r ? &r->base : NULL);
            break;
        }
        ag_rpc_msg_free(r ? &r->base : NULL);
        ag_sleep_ms(100);
    }
out:
    ag_free(message);
    ag_rpc_msg_free(nresp ? &nresp->base : NULL);
    ag_rm_client_free(ch);
    return status;
}

const struct subcmd cmd_app_submit = {
    .name = "app submit",
    .summary = "run a command in N containers of the cluster (distributed shell)",
    .details =
        "Submits an application whose master (argot app master, started by the RM in a\n"
        "container) asks for N containers and runs COMMAND ARGS in each. Prints the\n"
        "application id. Each container's environment has ARGOT_CONTAINER_ID,\n"
        "ARGOT_APP_ID and ARGOT_NM_HOST. A container that fails runs again, up to\n"
        "--max-attempts, on another node where possible. With --wait, waits for the end\n"
        "and exits 0 only if every container exited 0. With the --tls-* flags every call\n"
        "is over TLS, the master's too (it gets the files by absolute path: the NMs must\n"
        "see them).\n"
        "\n"
        "--provider slurm runs the containers on a Slurm cluster instead (libslurm; the\n"
        "controller from SLURM_CONF): the master runs here (with --wait in this process,\n"
        "else detached; SIGTERM ends it and cancels its jobs), each container is a batch\n"
        "job \"argot-container\" with id slurm_<jobid>. Its spool directory goes under\n"
        "$ARGOT_SLURM_SPOOL (default: the current directory), which the compute nodes\n"
        "must see at the same path. --rm, --queue, --am-memory and --tls-* are argot's\n"
        "only; app status and app kill do not apply (squeue, scancel).\n",
    .flags = submit_flags,
    .run = run_submit,
    .rest = "-- COMMAND [ARGS...]",
};

static const struct flag_def rm_only_flags[] = {
    {"rm", "HOST:PORT[,...]", "the resource manager (several: the RMs of an ha set)",
     FLAG_REQUIRED},
    TLS_FLAGS,
    {NULL, NULL, NULL, 0},
};

static int run_status(struct cmd_args *a)
{
    Argot__Sched__V1__ApplicationId id;
    static struct tls_files tls;
    if (app_id_arg(a, &id) != EXIT_OK || tls_flags(a, &tls) != EXIT_OK)
        return EXIT_USAGE;
    int code = EXIT_USAGE;
    ag_rm_client *ch = rm_channel(a, args_get(a, "rm"), &tls, &code);
    if (!ch)
        return code;
    Argot__Sched__V1__GetApplicationReportResponse *r = NULL;
    char *message = NULL;
    int st = report(ch, &id, &r, &message);
    int status = EXIT_OK;
    if (st != AG_RPC_OK || !r->application_report) {
        status = runtime_error("app status: %s: %s: %s", a->pos, ag_rpc_status_name(st),
                               message ? message : "");
    } else {
        Argot__Sched__V1__ApplicationReport *ar = r->application_report;
        printf("application %s\n  name %s\n  queue %s\n  user %s\n  state %s\n  final %s\n"
               "  progress %.0f%%\n  containers %d\n  diagnostics %s\n",
               a->pos, ar->name, ar->queue, ar->user, state_name(ar->yarn_application_state),
               final_name(ar->final_application_status), ar->progress * 100.0,
               ar->num_containers, ar->diagnostics && ar->diagnostics[0] ? ar->diagnostics : "-");
    }
    ag_rpc_msg_free(r ? &r->base : NULL);
    ag_free(message);
    ag_rm_client_free(ch);
    return status;
}

const struct subcmd cmd_app_status = {
    .name = "app status",
    .summary = "show an application's state",
    .details = "Prints the RM's report of APP: name, queue, state, final status, progress.\n",
    .flags = rm_only_flags,
    .run = run_status,
    .positional = "APP",
};

static int run_kill(struct cmd_args *a)
{
    Argot__Sched__V1__ApplicationId id;
    static struct tls_files tls;
    if (app_id_arg(a, &id) != EXIT_OK || tls_flags(a, &tls) != EXIT_OK)
        return EXIT_USAGE;
    int code = EXIT_USAGE;
    ag_rm_client *ch = rm_channel(a, args_get(a, "rm"), &tls, &code);
    if (!ch)
        return code;
    Argot__Sched__V1__KillApplicationRequest req = ARGOT__SCHED__V1__KILL_APPLICATION_REQUEST__INIT;
    req.application_id = &id;
    req.diagnostics = "killed by argot app kill";
    Argot__Sched__V1__KillApplicationResponse *r = NULL;
    char *message = NULL;
    int st = RM_CALL(ch, force_kill_application, &req, &r, &message);
    int status = EXIT_OK;
    if (st != AG_RPC_OK)
        status = runtime_error("app kill: %s: %s: %s", a->pos, ag_rpc_status_name(st),
                               message ? message : "");
    else
        printf("killed %s\n", a->pos);
    ag_rpc_msg_free(r ? &r->base : NULL);
    ag_free(message);
    ag_rm_client_free(ch);
    return status;
}

const struct subcmd cmd_app_kill = {
    .name = "app kill",
    .summary = "kill an application",
    .details = "Kills APP: its containers stop at their nodes' next heartbeats and its master\n"
               "is told to shut down.\n",
    .flags = rm_only_flags,
    .run = run_kill,
    .positional = "APP",
};

static int run_nodes(struct cmd_args *a)
{
    static struct tls_files tls;
    if (tls_flags(a, &tls) != EXIT_OK)
        return EXIT_USAGE;
    int code = EXIT_USAGE;
    ag_rm_client *ch = rm_channel(a, args_get(a, "rm"), &tls, &code);
    if (!ch)
        return code;
    Argot__Sched__V1__GetClusterNodesRequest req = ARGOT__SCHED__V1__GET_CLUSTER_NODES_REQUEST__INIT;
    Argot__Sched__V1__GetClusterNodesResponse *r = NULL;
    char *message = NULL;
    int st = RM_CALL(ch, get_cluster_nodes, &req, &r, &message);
    int status = EXIT_OK;
    if (st != AG_RPC_OK) {
        status = runtime_error("nodes: RM %s: %s: %s", args_get(a, "rm"), ag_rpc_status_name(st),
                               message ? message : "");
    } else {
        printf("%-28s %-10s %-12s %10s %10s %6s %6s %s\n", "node", "state", "rack", "used_mb",
               "total_mb", "used_v", "total_v", "containers");
        for (size_t i = 0; i < r->n_node_reports; i++) {
            Argot__Sched__V1__NodeReport *n = r->node_reports[i];
            char node[300];
            snprintf(node, sizeof(node), "%s:%d", n->node_id ? n->node_id->host : "?",
                     n->node_id ? n->node_id->port : 0);
            const ProtobufCEnumValue *sv = protobuf_c_enum_descriptor_get_value(
                &argot__sched__v1__node_state__descriptor, (int)n->node_state);
            printf("%-28s %-10s %-12s %10" PRId64 " %10" PRId64 " %6d %6d %d\n", node,
                   sv ? sv->name + 3 : "?", n->rack_name, n->used ? n->used->memory_mb : 0,
                   n->capability ? n->capability->memory_mb : 0, n->used ? n->used->vcores : 0,
                   n->capability ? n->capability->vcores : 0, n->num_containers);
        }
    }
    ag_rpc_msg_free(r ? &r->base : NULL);
    ag_free(message);
    ag_rm_client_free(ch);
    return status;
}

const struct subcmd cmd_nodes = {
    .name = "nodes",
    .summary = "list the cluster's node managers",
    .details = "Prints every node the RM knows: its state, rack, used and total resources.\n",
    .flags = rm_only_flags,
    .run = run_nodes,
};

/* ---- argot app master: the distributed shell's ApplicationMaster ------------------------ */

struct task {
    char container[96]; /* "" while waiting for one */
    int attempts;
    int exit_status;
    bool done;
    char node[300];     /* where it last ran */
    char avoid[300];    /* the host blacklisted for its retry ("" none) */
    int waited;         /* allocate rounds waited with that blacklist in force */
};

struct dshell {
    struct task *tasks;
    long n, mem, vcores, prio, max_attempts;
    char **argv;
    long done, failed;
    bool shutdown;
    char why[1024];
    char diag[1200]; /* what the finish said (or why there was none) */
    ag_am *am;
    int32_t pending; /* tasks waiting for a container (the ask's total) */
};

static struct task *task_waiting(struct dshell *d)
{
    for (long i = 0; i < d->n; i++)
        if (!d->tasks[i].done && !d->tasks[i].container[0])
            return &d->tasks[i];
    return NULL;
}

static struct task *task_of(struct dshell *d, const char *container)
{
    for (long i = 0; i < d->n; i++)
        if (strcmp(d->tasks[i].container, container) == 0)
            return &d->tasks[i];
    return NULL;
}

static void dshell_ask(struct dshell *d)
{
    int32_t want = 0;
    for (long i = 0; i < d->n; i++)
        want += !d->tasks[i].done && !d->tasks[i].container[0];
    d->pending = want;
    ag_am_ask(d->am, (int32_t)d->prio, "*", d->mem, (int32_t)d->vcores, want, true, "", 0);
}

static void task_failed(struct dshell *d, struct task *t, int exit_status, const char *why)
{
    t->attempts++;
    t->exit_status = exit_status;
    if (t->attempts < d->max_attempts) {
        /* again, elsewhere where the cluster has room: blacklist its node */
        int64_t mb;
        int32_t vc, nodes;
        ag_am_headroom(d->am, &mb, &vc, &nodes);
        if (nodes > 1 && t->node[0] && !t->avoid[0]) {
            snprintf(t->avoid, sizeof(t->avoid), "%s", t->node);
            char *colon = strrchr(t->avoid, ':');
            if (colon)
                *colon = 0;
            t->waited = 0;
            ag_am_blacklist(d->am, t->avoid, true);
        }
        t->container[0] = 0;
        dshell_ask(d);
        return;
    }
    t->done = true;
    d->done++;
    d->failed++;
    if (!d->why[0])
        snprintf(d->why, sizeof(d->why), "container %s on %s %s", t->container, t->node, why);
}

static void on_allocated(void *ud, ag_am *am, const ag_container *c)
{
    struct dshell *d = ud;
    struct task *t = task_waiting(d);
    if (!t) {
        ag_am_release(am, c->id); /* more than we need */
        return;
    }
    snprintf(t->container, sizeof(t->container), "%s", c->id);
    snprintf(t->node, sizeof(t->node), "%s", c->node);
    if (t->avoid[0]) {
        /* placed: the node it failed on is open to the others again */
        ag_am_blacklist(am, t->avoid, false);
        t->avoid[0] = 0;
    }
    dshell_ask(d);
    if (ag_am_start(am, c->id, (const char *const *)d->argv, NULL) < 0) {
        AG_LOG(AG_LOG_WARN, "dshell", "start_failed container=%s why=\"%s\"", c->id,
               ag_am_errmsg(am));
        ag_am_release(am, c->id);
        char why[600];
        snprintf(why, sizeof(why), "could not start: %s", ag_am_errmsg(am));
        task_failed(d, t, -1000, why);
    }
}

static void on_completed(void *ud, ag_am *am, const ag_container_status *s)
{
    (void)am;
    struct dshell *d = ud;
    struct task *t = task_of(d, s->id);
    if (!t || t->done)
        return;
    if (s->exit_status == 0) {
        t->done = true;
        t->exit_status = 0;
        d->done++;
        return;
    }
    char why[700];
    snprintf(why, sizeof(why), "exited %d%s%s", s->exit_status,
             s->diagnostics[0] ? ": " : "", s->diagnostics);
    task_failed(d, t, s->exit_status, why);
}

static void on_shutdown(void *ud, ag_am *am)
{
    (void)am;
    struct dshell *d = ud;
    d->shutdown = true;
}

/* SIGTERM/SIGINT to a distributed shell whose master runs here (the Slurm
 * provider's): the loop ends, the containers are cancelled */
static volatile sig_atomic_t stop_signal;

static int dshell_run(struct dshell *d, ag_am_opts *o, const char *who);

static const struct flag_def master_flags[] = {
    {"rm", "HOST:PORT[,...]", "the resource manager (several: the RMs of an ha set)",
     FLAG_REQUIRED},
    {"containers", "N", "containers to run the command in", FLAG_REQUIRED},
    {"memory", "MB", "memory of each", 0},
    {"vcores", "V", "virtual cores of each", 0},
    {"priority", "P", "the containers' priority", 0},
    {"max-attempts", "K", "runs of a failing container", 0},
    TLS_FLAGS,
    {NULL, NULL, NULL, 0},
};

static int run_master(struct cmd_args *a)
{
    struct dshell d = {0};
    if (int_flag(a, "containers", 1, 1, 100000, &d.n) ||
        int_flag(a, "memory", 1024, 1, 1 << 30, &d.mem) ||
        int_flag(a, "vcores", 1, 1, 1024, &d.vcores) ||
        int_flag(a, "priority", 0, 0, 1 << 20, &d.prio) ||
        int_flag(a, "max-attempts", 1, 1, 100, &d.max_attempts))
        return EXIT_USAGE;
    if (a->nrest == 0)
        return usage_error(a->sc, "no command after --");
    static struct tls_files tls;
    if (tls_flags(a, &tls) != EXIT_OK)
        return EXIT_USAGE;
    d.argv = a->rest;
    d.tasks = ag_calloc((size_t)d.n, sizeof(*d.tasks));
    if (!d.tasks)
        return runtime_error("app master: %s", ag_strerror(AG_E_NOMEM));
    ag_am_opts o = {
        .rm = args_get(a, "rm"),
        .tls_cert = tls.cert,
        .tls_key = tls.key,
        .tls_ca = tls.ca};
    int status = dshell_run(&d, &o, "app master");
    ag_free(d.tasks);
    return status;
}

/* The distributed shell on the provider of o (its callbacks set here):
 * asks for d->n containers, runs d->argv in each, retries, finishes. Writes
 * what the finish said into d->diag; errors go to stderr, prefixed with
 * who. The exit status: EXIT_OK only if every container exited 0. */
static int dshell_run(struct dshell *d, ag_am_opts *o, const char *who)
{
    char err[AG_ERRMSG_MAX];
    o->cb = (ag_am_callbacks){.allocated = on_allocated, .completed = on_completed,
                              .shutdown = on_shutdown};
    o->ud = d;
    d->am = ag_am_new(o, err, sizeof(err));
    if (!d->am)
        return runtime_error("%s: %s", who, err);
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    int status = EXIT_RUNTIME;
    if (ag_am_register(d->am, host, 0, "") < 0) {
        runtime_error("%s: %s", who, ag_am_errmsg(d->am));
        goto out;
    }
    dshell_ask(d);
    while (d->done < d->n && !d->shutdown && !stop_signal) {
        /* another node "where possible": a retry that found no room away from
         * the node it failed on for about 2 s may go back there */
        for (long i = 0; i < d->n; i++) {
            struct task *t = &d->tasks[i];
            if (t->avoid[0] && !t->container[0] && ++t->waited > 40) {
                ag_am_blacklist(d->am, t->avoid, false);
                t->avoid[0] = 0;
            }
        }
        if (ag_am_allocate(d->am, (float)d->done / (float)d->n) < 0) {
            runtime_error("%s: %s", who, ag_am_errmsg(d->am));
            goto out;
        }
        if (d->done < d->n && !d->shutdown && !stop_signal)
            ag_sleep_ms(50);
    }
    if (d->shutdown || stop_signal) {
        snprintf(d->diag, sizeof(d->diag), "%s", d->shutdown ? "killed" : "stopped by a signal");
        status = EXIT_RUNTIME;
        if (stop_signal)
            ag_am_finish(d->am, AG_AM_KILLED, d->diag);
        goto out;
    }
    if (d->failed)
        snprintf(d->diag, sizeof(d->diag), "%ld of %ld containers failed; first: %s", d->failed,
                 d->n, d->why);
    else
        snprintf(d->diag, sizeof(d->diag), "%ld containers exited 0", d->n);
    if (ag_am_finish(d->am, d->failed ? AG_AM_FAILED : AG_AM_SUCCEEDED, d->diag) < 0) {
        runtime_error("%s: %s", who, ag_am_errmsg(d->am));
        goto out;
    }
    status = d->failed ? EXIT_RUNTIME : EXIT_OK;
out:
    ag_am_free(d->am);
    d->am = NULL;
    return status;
}

const struct subcmd cmd_app_master = {
    .name = "app master",
    .summary = "the distributed shell's application master (started by the RM)",
    .details = "Runs inside the container the RM starts for an application submitted with\n"
               "argot app submit: asks for the containers, starts the command in each,\n"
               "retries failures, and finishes the application with SUCCEEDED only if every\n"
               "container exited 0. Needs ARGOT_AMRM_TOKEN, which the RM sets.\n",
    .flags = master_flags,
    .run = run_master,
    .rest = "-- COMMAND [ARGS...]",
};

/* ---- argot app submit --provider slurm ------------------------------------------------- */

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_signal = 1;
}

/* The distributed shell on Slurm: its master runs here, an unmanaged AM
 * (there is no RM to start it); without --wait, in a detached child whose
 * pid is in the printed id "slurm-<host>-<pid>". */
static int submit_slurm(struct cmd_args *a, long n, long mem, long vc, long prio,
                        long attempts)
{
    static const char *const argot_only[] = {"rm",      "queue",   "am-memory",
                                             "tls-cert", "tls-key", "tls-ca"};
    for (size_t i = 0; i < AG_ARRAY_LEN(argot_only); i++)
        if (args_get(a, argot_only[i]))
            return usage_error(a->sc, "--%s applies to --provider argot only", argot_only[i]);
    struct dshell d = {.n = n, .mem = mem, .vcores = vc, .prio = prio, .max_attempts = attempts,
                       .argv = a->rest};
    d.tasks = ag_calloc((size_t)n, sizeof(*d.tasks));
    if (!d.tasks)
        return runtime_error("app submit: %s", ag_strerror(AG_E_NOMEM));
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    bool wait = args_bool(a, "wait");
    fflush(stdout);
    if (!wait) {
        pid_t pid = fork();
        if (pid < 0) {
            ag_free(d.tasks);
            return runtime_error("app submit: fork: %s", strerror(errno));
        }
        if (pid > 0) {
            printf("slurm-%s-%ld\n", host, (long)pid);
            ag_free(d.tasks);
            return EXIT_OK;
        }
        setsid();
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            if (null > 2)
                close(null);
        }
    } else {
        printf("slurm-%s-%ld\n", host, (long)getpid());
        fflush(stdout);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    ag_am_opts o = {.provider = "slurm"};
    int status = dshell_run(&d, &o, "app submit");
    if (wait && d.diag[0]) {
        bool ok = status == EXIT_OK;
        fprintf(ok ? stdout : stderr, "%sslurm-%s-%ld %s: %s\n", ok ? "" : "argot: app submit: ",
                host, (long)getpid(), ok ? "FINISHED: SUCCEEDED" : "FINISHED: FAILED", d.diag);
    }
    ag_free(d.tasks);
    return status;
}
