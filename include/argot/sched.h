/*
 * argot sched: a resource manager, node managers and the ApplicationMaster
 * protocol, with Hadoop YARN's split and record semantics over gRPC
 * (proto/argot/sched/v1/sched.proto). The RM (`argot rm`) owns the
 * cluster's resources and schedules them over capacity queues; node
 * managers (`argot nm`) run containers as process groups under cgroup v2
 * or rlimits; an application's ApplicationMaster asks the RM for
 * containers (register, allocate, finish) and starts them on the NMs.
 */
#ifndef ARGOT_SCHED_H
#define ARGOT_SCHED_H

#include "argot/base.h"
#include "argot/rpc.h"

/* ---- ids -------------------------------------------------------------------- */

/* An application id as text, application_<cluster timestamp>_<id, at least
 * 4 digits>, into buf; returns buf. parse: 0, or AG_E_INVAL for anything
 * else. */
const char *ag_sched_format_app_id(int64_t ts, int32_t id, char *buf, size_t cap);
int ag_sched_parse_app_id(const char *s, int64_t *ts, int32_t *id);

/* ---- the node manager (nm.c, launch.c) ------------------------------------ *
 *
 * `argot nm`: registers with the RM (ResourceTracker), heartbeats with its
 * containers' statuses, and serves ContainerManagement (and gRPC health):
 * every ContainerManagement call needs an NM token (metadata
 * "argot-nm-token") the RM issued to an application attempt for this node
 * (UNAUTHENTICATED without a valid one), and acts only on that
 * application's containers; StartContainers launches a container only for
 * a container token the RM signed (its current or previous container master
 * key) for this node, not expired and not started before; each refusal is
 * per container, in failed_requests, with a sentence saying why. Containers are process groups
 * under work_dir/<application>/<container>/, limited by cgroup v2 where the
 * machine allows it, else by rlimits. On stop, containers are killed (exit
 * status -107), unless recovery is on: then they keep running and the next
 * node manager on the same work_dir adopts them (YARN's work-preserving NM
 * restart; give a fixed port, the node's id). While the RM is down the NM
 * retries with backoff and its containers keep running; an RM that answers
 * RESYNC gets a new registration listing them. Threads: one heartbeat thread, the gRPC
 * server's threads and the launcher's reaper; every function here is for
 * one controlling thread. */

typedef struct ag_nm ag_nm;

#define AG_NM_MAX_LABELS 16

typedef struct ag_nm_config {
    char rm[1024];                  /* the RM's ResourceTracker, "host:port", or the
                                     * RMs' of an ha set, "host:port,host:port" */
    char address[256];              /* ContainerManagement, "host:port" (port 0 picks one) */
    int64_t memory_mb;              /* offered to the RM */
    int32_t vcores;
    char work_dir[1024];            /* containers' directories (created if missing) */
    char rack[256];                 /* "/default" */
    char labels[AG_NM_MAX_LABELS][64];
    size_t nlabels;
    uint64_t heartbeat_interval_ms; /* until the RM says otherwise (1000) */
    char admin[256];                /* HTTP /metrics and /healthz address; "" none */
    char cgroup_parent[1024];       /* cgroup v2 parent of the containers' cgroups;
                                     * "" (cgroup: off): rlimits only */
    int log_level;                  /* ag_log_level, or -1 to leave it */
    uint64_t shutdown_grace_ms;     /* calls in flight on stop (5000) */
    uint64_t kill_grace_ms;         /* SIGTERM to SIGKILL of a container (2000) */
    bool memory_check;              /* enforce containers' memory (true; YARN's
                                     * pmem-check-enabled): cgroup memory.max, or
                                     * RLIMIT_AS without cgroups. false leaves
                                     * rlimits off (programs that reserve large
                                     * address spaces, as sanitizer runtimes do,
                                     * cannot start under RLIMIT_AS) */
    bool recovery;                  /* leave containers running on stop (their state in
                                     * work_dir/nm-state) and adopt them on the next start */
    /* TLS (config `tls: {cert, key, ca}`; "" each: plaintext): the
     * certificate and key ContainerManagement serves with and the NM
     * presents to the RM; ca, the CAs it trusts for the RM's certificate
     * and, when set, the ones whose client certificates it requires
     * (mutual TLS). */
    char tls_cert[1024];
    char tls_key[1024];
    char tls_ca[1024];
} ag_nm_config;

/* The defaults: address 127.0.0.1:8040, rack /default, heartbeats every
 * second, cgroup parent /sys/fs/cgroup/argot-nm, and no RM, resources or
 * work_dir (which a config must give). */
void ag_nm_config_init(ag_nm_config *c);
/* Reads the YAML file at path over the defaults in c. 0, or a config code
 * with err holding "nm.yaml:3:1: unknown key 'adress' (did you mean
 * 'address'?)". Relative paths are relative to the file. */
int ag_nm_config_load(ag_nm_config *c, const char *path, char *err, size_t cap);

/* c is copied. NULL on allocation failure. */
ag_nm *ag_nm_new(const ag_nm_config *c);
/* Creates the work directory, starts the launcher (with recovery, adopts the
 * containers work_dir/nm-state lists), serves ContainerManagement
 * and health (and the admin endpoint), then starts heartbeating (the first
 * registration happens on the heartbeat thread, so an RM that is down does
 * not stop the start). 0 or a code with ag_nm_errmsg. */
int ag_nm_start(ag_nm *nm);
/* The bound ContainerManagement port, and the admin port (0 without). */
int ag_nm_port(const ag_nm *nm);
int ag_nm_admin_port(const ag_nm *nm);
/* Waits up to timeout_ms for the RM to order a shutdown (NodeAction
 * SHUTDOWN): true if it did. */
bool ag_nm_wait_shutdown(ag_nm *nm, uint64_t timeout_ms);
/* Stops heartbeating, health NOT_SERVING, stops taking calls (in-flight ones
 * get shutdown_grace), then kills every container (SIGTERM to its group,
 * SIGKILL after kill_grace) and waits for them; with recovery, writes the
 * containers' state to work_dir/nm-state and leaves them running instead.
 * Idempotent. */
void ag_nm_stop(ag_nm *nm);
/* Stops if needed, then frees. NULL does nothing. */
void ag_nm_free(ag_nm *nm);
const char *ag_nm_errmsg(const ag_nm *nm);

/* ---- the resource manager (rm.c) ------------------------------------------ *
 *
 * `argot rm --config rm.yaml` (YAML; keys as Hadoop operators know them):
 *
 *   address: "127.0.0.1:8030"        # every service: clients, AMs, NMs
 *   state: {sqlite: rm.db}           # relative to the config file; a restart
 *                                    # on it keeps running applications
 *                                    # (work-preserving; fixed address)
 *   ha: {etcd: ["127.0.0.1:2379"], prefix: /argot/rm, id: rm1, lease: 2s}
 *                                    # instead of state: RMs of one etcd and
 *                                    # prefix elect an active one (lease +
 *                                    # Txn); the state lives in etcd, every
 *                                    # write guarded by the leader key
 *   liveness: {nm_expiry_ms: 600000, am_expiry_ms: 600000}
 *   queues:                          # optional; default: root.default 100%
 *     root.prod: {capacity: 70, max_capacity: 100, user_limit_factor: 1,
 *                 max_am_share: 0.1, labels: [gpu]}
 *     root.dev:  {capacity: 30, max_capacity: 50}
 *   scheduler: {min_allocation: {memory_mb: 1024, vcores: 1},
 *               max_allocation: {memory_mb: 8192, vcores: 4},
 *               node_locality_delay: 40, rack_locality_delay: 80,
 *               max_app_attempts: 2, preemption: {enabled: false, wait: 15s}}
 *   heartbeat_interval: 1s           # told to the NMs
 *   admin: {address: "127.0.0.1:8088"}  # /metrics, /healthz
 *   shutdown_grace: 5s
 *   log: {level: info}
 *   tls: {cert: rm.crt, key: rm.key, ca: ca.crt, nodes: [nm1]}
 *                                    # relative to the config file; with ca,
 *                                    # mutual TLS: every caller (NMs, AMs,
 *                                    # clients) presents a certificate ca
 *                                    # issued; nodes (optional): the names
 *                                    # that may call ResourceTracker. The
 *                                    # RM's channels to NMs use the files.
 *   tokens: {roll_interval_ms: 86400000}  # master keys' life
 *
 * liveness also takes container_alloc_expiry_ms (600000): a container its
 * NM has not reported running that long after the grant is taken back.
 */

typedef struct ag_rm ag_rm;

/* Reads config (NULL: every default) and makes the RM; listen (may be
 * NULL) overrides the address. NULL with err set ("rm.yaml:4:3: ...", a
 * bad queue tree) on failure. */
ag_rm *ag_rm_load(const char *config, const char *listen, char *err, size_t cap);
/* Serves: binds, starts the clock. 0 or an error in err. */
int ag_rm_start(ag_rm *rm, char *err, size_t cap);
/* "host:port" as bound (after start; with ha, once active). */
const char *ag_rm_address(const ag_rm *rm);
/* With ha, an RM starts STANDBY and serves nothing until elected; ACTIVE
 * once it serves; FENCED for good once it lost the lead (its lease ran
 * out, or the store refused a write): it answers every call UNAVAILABLE
 * and should be stopped (`argot rm` exits). Without ha: ACTIVE once
 * started. */
typedef enum ag_rm_role { AG_RM_STANDBY = 0, AG_RM_ACTIVE = 1, AG_RM_FENCED = 2 } ag_rm_role;
ag_rm_role ag_rm_get_role(const ag_rm *rm);
/* The name this RM campaigns under (ha.id, default its address; "" without ha). */
const char *ag_rm_id(const ag_rm *rm);
int ag_rm_admin_port(const ag_rm *rm);
/* Stops taking calls (calls in flight get shutdown_grace) and the clock. */
void ag_rm_stop(ag_rm *rm);
void ag_rm_free(ag_rm *rm);

/* ---- clients of the RM (rmclient.c) ------------------------------------------ *
 *
 * rms: "host:port" or, for RMs in high availability, "host:port,host:port"
 * (at most 8): calls go to the current address; one that cannot reach it
 * (UNAVAILABLE, DEADLINE_EXCEEDED: a standby RM does not listen, a fenced
 * one answers UNAVAILABLE) goes on to the next, round the list, for up to
 * about 8 s (an election). NMs (`rm:` in nm.yaml) and the AM client
 * (ag_am_opts.rm) take the same lists. Thread-safe. */

typedef struct ag_rm_client ag_rm_client;

/* TLS files as ag_am_opts' (NULL or "" each: plaintext). NULL with err set
 * (a malformed list). */
ag_rm_client *ag_rm_client_new(const char *rms, const char *tls_cert, const char *tls_key,
                               const char *tls_ca, char *err, size_t cap);
void ag_rm_client_free(ag_rm_client *c);
/* One unary call of method m (any RM service's, e.g.
 * &argot__sched__v1__application_client__get_new_application__method):
 * the status; *resp (ag_rpc_msg_free) on OK; *message (ag_free, may be
 * NULL) the status message. timeout_ms per try (0: 10 s). */
int ag_rm_client_call(ag_rm_client *c, const ag_rpc_method *m,
                      const struct ProtobufCMessage *req, uint64_t timeout_ms,
                      struct ProtobufCMessage **resp, char **message);
/* The address calls go to now. */
const char *ag_rm_client_target(ag_rm_client *c);

/* ---- the ApplicationMaster client (am.c) ------------------------------------ *
 *
 * What an application's master uses (YARN's AMRMClient and NMClient in
 * one): register with the RM, keep a table of asks (totals per priority,
 * resource name, capability and allocation request id), call allocate
 * (ag_am_allocate, one round) and get callbacks for granted, completed and
 * preempted containers, start and stop containers on their nodes, finish.
 * The client keeps YARN's rules by itself: the responseId of each call, the
 * same request resent (never a new one) after a lost response, the totals
 * lowered as grants arrive, and on an RM that no longer knows the attempt
 * (restarted, or AM_RESYNC) it registers again and resends every
 * outstanding ask, release and blacklist entry. Not thread-safe: one
 * thread drives an ag_am (callbacks run on it, inside ag_am_allocate). */

typedef struct ag_am ag_am;

/* A granted container, valid during the callback (copy what you keep). */
typedef struct ag_container {
    const char *id;        /* "container_1700000000000_0001_01_000002" */
    const char *node;      /* its NM's address, "host:port" */
    int64_t memory_mb;
    int32_t vcores;
    int32_t priority;
    int64_t allocation_request_id;
} ag_container;

/* A container's end, as the RM reports it. */
typedef struct ag_container_status {
    const char *id;
    int exit_status;       /* the process's, or YARN's negative codes (sched.proto) */
    const char *diagnostics;
} ag_container_status;

typedef struct ag_am_callbacks {
    void (*allocated)(void *ud, ag_am *am, const ag_container *c);
    void (*completed)(void *ud, ag_am *am, const ag_container_status *s);
    /* the RM will take this container back (strict: it will be killed) */
    void (*preempted)(void *ud, ag_am *am, const char *container_id, bool strict);
    /* the RM ended the application (killed): finish and exit */
    void (*shutdown)(void *ud, ag_am *am);
} ag_am_callbacks;

typedef struct ag_am_opts {
    /* NULL or "argot": the argot RM at rm; "slurm": a Slurm cluster through
     * libslurm (the controller from SLURM_CONF or /etc/slurm/slurm.conf; rm,
     * token and the TLS files unused): each container a batch job, ids
     * "slurm_<jobid>" (docs/ARCHITECTURE.md, "Slurm provider") */
    const char *provider;
    const char *rm;        /* "host:port", or several (ag_rm_client's lists) */
    const char *token;     /* the AMRM token's text; NULL: $ARGOT_AMRM_TOKEN */
    ag_am_callbacks cb;
    void *ud;
    uint64_t call_timeout_ms; /* each RM or NM call (0: 10 s) */
    /* TLS to the RM and the NMs (PEM files; NULL each: plaintext): the
     * client certificate and key for mutual TLS, and the CAs trusted for
     * the servers' certificates (NULL with a certificate: the system's). */
    const char *tls_cert;
    const char *tls_key;
    const char *tls_ca;
} ag_am_opts;

typedef enum ag_am_final {
    AG_AM_SUCCEEDED = 1,
    AG_AM_FAILED = 2,
    AG_AM_KILLED = 3,
} ag_am_final;

/* NULL with err set (no token, malformed token, no memory). */
ag_am *ag_am_new(const ag_am_opts *o, char *err, size_t cap);
/* For a program that is its own master (client.c): submits an application
 * named name to queue (NULL or "": the RM's default) at o->rm with an
 * unmanaged AM (GetNewApplication, SubmitApplication with unmanaged_am),
 * waits (up to 30 s) for the report to carry the attempt's AMRM token and
 * returns an ag_am holding it (o->token is ignored), ready for
 * ag_am_register; its id ("application_<ts>_<n>") into app_id (may be
 * NULL). NULL with err set ("RM 127.0.0.1:8030 refused the application:
 * ..."); an application submitted before the failure is killed. Blocks;
 * the token is never logged. */
ag_am *ag_am_new_unmanaged(const ag_am_opts *o, const char *name, const char *queue,
                           char *app_id, size_t id_cap, char *err, size_t cap);
void ag_am_free(ag_am *am);
const char *ag_am_errmsg(const ag_am *am);
/* RegisterApplicationMaster. 0, or an error (ag_am_errmsg). */
int ag_am_register(ag_am *am, const char *host, int port, const char *tracking_url);
/* Sets the total of containers wanted for one key (0 withdraws it); sent
 * with the next allocate. resource_name: a host, a rack or "*". */
int ag_am_ask(ag_am *am, int32_t priority, const char *resource_name, int64_t memory_mb,
              int32_t vcores, int32_t total, bool relax_locality, const char *label,
              int64_t allocation_request_id);
/* Gives a container back (sent with the next allocate). */
int ag_am_release(ag_am *am, const char *container_id);
/* Adds (or removes) a node or rack from the application's blacklist. */
int ag_am_blacklist(ag_am *am, const char *resource_name, bool add);
/* One allocate round: sends what changed, runs the callbacks for what came
 * back. 0, or an error (the RM unreachable after retries, refused). */
int ag_am_allocate(ag_am *am, float progress);
/* Starts a granted container on its node: argv (NULL-terminated), env
 * ("KEY=VALUE" strings, NULL-terminated, may be NULL). 0 or an error naming
 * the node. */
int ag_am_start(ag_am *am, const char *container_id, const char *const *argv,
                const char *const *env);
/* Stops a started container. */
int ag_am_stop(ag_am *am, const char *container_id);
/* FinishApplicationMaster (unregister). */
int ag_am_finish(ag_am *am, ag_am_final final, const char *diagnostics);
/* Containers granted and not yet completed. */
size_t ag_am_running(const ag_am *am);
/* The last allocate's headroom and cluster size. */
void ag_am_headroom(const ag_am *am, int64_t *memory_mb, int32_t *vcores, int32_t *nodes);

#endif /* ARGOT_SCHED_H */
