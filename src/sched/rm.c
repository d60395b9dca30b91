/*
 * The resource manager (`argot rm`): the scheduler core (scheduler.c) behind
 * the gRPC services of sched.proto, its config, its AM launcher and its
 * clock.
 *
 *   - Every service call takes the core's lock, calls the core with the
 *     request and a heap response, and sends that response. The core never
 *     blocks, so the lock is held for microseconds; calls run on the rpc
 *     server's pool threads.
 *   - ApplicationMaster calls are authenticated by the attempt's AMRM token
 *     in the metadata key "argot-amrm-token" (token.h's text form); the core
 *     checks it and names the attempt.
 *   - TLS (config `tls: {cert, key, ca}`): every service, and the channels
 *     to the NMs; with ca, mutual (ResourceTracker callers must name
 *     themselves). AM launches carry the attempt's NM token for the node.
 *   - The clock thread ticks the core every 100 ms (key rolls, expiry,
 *     preemption's kills) and starts the AM containers the core asks for: a
 *     StartContainers call to the node, outside the lock, on a channel per
 *     node kept for the RM's life. A failed start fails the attempt.
 *   - State (YARN's work-preserving RM restart): the config's
 *     `state: {sqlite: FILE}` (WAL) keeps
 *       rm_state  one row: cluster_timestamp, epoch (starts of this RM on
 *                 this file, from 0), last_app_id, the three master keys
 *                 (id and bytes each);
 *       apps      every application's last report (id text, state, packed
 *                 ApplicationReport);
 *       app_state each unfinished application's packed submission context
 *                 and start time (deleted at its end);
 *       attempts  its attempts (app, attempt, AM container id, finished;
 *                 deleted at its end);
 *       grants    containers granted and not yet running (the core's grant
 *                 log, drained after every call and tick), put back at a
 *                 restart (ag_sched_recover_grant);
 *       keys      every master key in use (signing, previous, next),
 *                 written whenever a roll changes them.
 *     Written only here, never by the core: last_app_id at every
 *     GetNewApplication, the context at submit, and the rest by store_sync,
 *     which reads the core's per-application state (ag_sched_get_app_state)
 *     whenever ag_sched_changes moved: after every call and every tick,
 *     under the lock, so before any answer goes out and before any AM
 *     container is started (a restarted RM knows which container is an
 *     attempt's AM, and never retries an application that finished). A
 *     restart on the same file keeps cluster_timestamp (ids and tokens stay
 *     valid) and the keys, and puts back every unfinished application with
 *     its attempt waiting for its AM to register again; new containers of a
 *     recovered application get ids from epoch << 40, past any id the
 *     earlier run handed out. Reports of applications that ended in an
 *     earlier run come from apps; an unfinished one that cannot be
 *     recovered (its queue is gone, no context) is recorded FAILED.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <protobuf-c/protobuf-c.h>

#include "argot/sched.h"
#include "argot/sched/v1/sched.argot.h"
#include "argot/sched/v1/sched.pb-c.h"
#include "chans.h"
#include "etcd.h"
#include "scheduler.h"
#include "store.h"
#include "token.h"

#define MAX_QUEUES     64
#define TICK_MS        100
#define NM_TOKEN_MAX   2048 /* an NM token's text form */
#define MAX_NODE_NAMES 4096

struct ag_rm {
    /* config */
    char address[256];
    char admin_address[256];
    char state_path[1024];
    ag_sched_conf conf;
    ag_sched_queue_conf queues[MAX_QUEUES];
    char queue_text[MAX_QUEUES][2][256]; /* path, labels */
    uint64_t grace_ms;
    int log_level;
    char tls_cert[1024]; /* tls: {cert, key, ca} ("" each: plaintext) */
    char tls_key[1024];
    char tls_ca[1024];
    ag__sched_tls tls;       /* into the three above */
    char (*node_names)[256]; /* tls.nodes: who may call ResourceTracker (none: any) */
    size_t nnode_names;
    /* running */
    ag_sched *core;
    pthread_mutex_t lock;
    ag_rpc_server *srv;
    ag_rpc_health *health;
    ag_metrics *metrics;
    ag_admin *admin;
    pthread_t clock;
    bool clock_started;
    atomic_bool stopping;
    ag__chans *nodes; /* channels to the NMs, for AM launches */
    char bound[300];
    Argot__Sched__V1__ApplicationClient_Handlers client_h;
    Argot__Sched__V1__ApplicationMaster_Handlers am_h;
    Argot__Sched__V1__ResourceTracker_Handlers rt_h;
    ag_metric *m_calls, *m_launches, *m_active;
    uint64_t mono0;  /* ag_now_ms() at cluster_timestamp: the core's clock starts there */
    ag__store *store; /* state store (NULL: none kept) */
    atomic_bool fenced; /* the store refused a write: another RM leads */
    /* ha: {etcd, prefix, id, lease} (nha_endpoints 0: no ha) */
    char ha_endpoints[AG__ETCD_MAX_ENDPOINTS][256];
    size_t nha_endpoints;
    char ha_prefix[256];
    char ha_id[256];    /* this RM's name in the election ("" without ha) */
    int64_t ha_lease_s;
    ag__etcd *etcd;
    pthread_t elector;
    bool elector_started;
    atomic_int role;                /* ag_rm_role */
    _Atomic uint64_t lease_deadline_ms; /* ag_now_ms() by which the lease must be renewed */
    char leader_seen[512];          /* the leader key's value as last read (standby) */
    int recovered_apps, recovered_grants;
    int64_t epoch;   /* starts of this RM on its state file, from 0 */
    uint64_t synced; /* ag_sched_changes at the last store_sync */
    uint64_t key_changes; /* ag_sched_key_changes at the last store_keys */
    bool grants_began;    /* store_grants opened its transaction */
    struct seen *seen; /* what the store holds of each application in the core */
};

/* The state last written to the store, per application id. */
struct seen {
    char id[64];
    int state;
    int32_t attempt;
    int64_t am_container;
    bool attempt_ended;
    struct seen *next;
};

/* ---- config ------------------------------------------------------------------------ */

static int load_queues(ag_config *cfg, const ag_cnode *qs, ag_rm *rm)
{
    size_t n = ag_cnode_len(qs);
    if (ag_cnode_type_of(qs) != AG_CNODE_MAP)
        return ag_config_errorf(cfg, qs, AG_E_CONFIG_TYPE, "queues must be a mapping of "
                                "queue paths (root.a) to their settings");
    if (n > MAX_QUEUES)
        return ag_config_errorf(cfg, qs, AG_E_CONFIG_VALUE, "at most %d queues", MAX_QUEUES);
    static const char *const keys[] = {"capacity", "max_capacity", "user_limit_factor",
                                       "max_am_share", "labels", NULL};
    for (size_t i = 0; i < n; i++) {
        const ag_cnode *k = ag_cnode_key(qs, i), *v = ag_cnode_item(qs, i);
        ag_sched_queue_conf *q = &rm->queues[i];
        snprintf(rm->queue_text[i][0], sizeof(rm->queue_text[i][0]), "%s", ag_cnode_scalar(k));
        q->path = rm->queue_text[i][0];
        int rc = ag_config_check_keys(cfg, v, keys);
        if (rc == 0)
            rc = ag_config_get_double(cfg, v, "capacity", AG_REQUIRED, &q->capacity);
        if (rc == 0)
            rc = ag_config_get_double(cfg, v, "max_capacity", AG_OPTIONAL, &q->max_capacity);
        if (rc == 0)
            rc = ag_config_get_double(cfg, v, "user_limit_factor", AG_OPTIONAL,
                                      &q->user_limit_factor);
        if (rc == 0)
            rc = ag_config_get_double(cfg, v, "max_am_share", AG_OPTIONAL, &q->max_am_share);
        const ag_cnode *labels = NULL;
        if (rc == 0)
            rc = ag_config_get_seq(cfg, v, "labels", AG_OPTIONAL, &labels);
        if (rc < 0)
            return rc;
        char *lt = rm->queue_text[i][1];
        size_t at = 0;
        lt[0] = 0;
        for (size_t j = 0; labels && j < ag_cnode_len(labels); j++)
            at += (size_t)snprintf(lt + at, at < 255 ? 256 - at : 0, "%s%s", j ? "," : "",
                                   ag_cnode_scalar(ag_cnode_item(labels, j)));
        q->labels = lt;
        if (q->capacity < 0 || q->capacity > 100 || q->max_capacity < 0 || q->max_capacity > 100)
            return ag_config_errorf(cfg, v, AG_E_CONFIG_VALUE,
                                    "queue %s: capacities are percents from 0 to 100", q->path);
    }
    rm->conf.queues = rm->queues;
    rm->conf.nqueues = n;
    return 0;
}

/* tls.nodes: the names (certificate CN, or first DNS name) that may call
 * ResourceTracker; needs tls.ca (the names come from client certificates). */
static int load_node_names(ag_config *cfg, const ag_cnode *tls, ag_rm *rm)
{
    const ag_cnode *seq = NULL;
    int rc = ag_config_get_seq(cfg, tls, "nodes", AG_OPTIONAL, &seq);
    if (rc < 0 || !seq)
        return rc;
    if (!rm->tls_ca[0])
        return ag_config_errorf(cfg, seq, AG_E_CONFIG_VALUE,
                                "tls.nodes needs tls.ca: node names come from client "
                                "certificates, which only mutual TLS asks for");
    size_t n = ag_cnode_len(seq);
    if (n == 0 || n > MAX_NODE_NAMES)
        return ag_config_errorf(cfg, seq, AG_E_CONFIG_VALUE, "tls.nodes: 1 to %d names",
                                MAX_NODE_NAMES);
    rm->node_names = ag_calloc(n, sizeof(*rm->node_names));
    if (!rm->node_names)
        return ag_config_errorf(cfg, seq, AG_E_NOMEM, "%s", ag_strerror(AG_E_NOMEM));
    for (size_t i = 0; i < n; i++) {
        const ag_cnode *it = ag_cnode_item(seq, i);
        const char *v = ag_cnode_scalar(it);
        if (ag_cnode_type_of(it) != AG_CNODE_SCALAR || !v[0] ||
            strlen(v) >= sizeof(rm->node_names[0]))
            return ag_config_errorf(cfg, it, AG_E_CONFIG_VALUE,
                                    "tls.nodes: a certificate name of 1 to %zu characters",
                                    sizeof(rm->node_names[0]) - 1);
        snprintf(rm->node_names[i], sizeof(rm->node_names[0]), "%s", v);
    }
    rm->nnode_names = n;
    return 0;
}

/* ha: {etcd: [host:port, ...], prefix: /argot/rm, id: NAME, lease: 2s}:
 * the RM's election and state in etcd (instead of state: sqlite). */
static int load_ha(ag_config *cfg, const ag_cnode *ha, const ag_cnode *state, ag_rm *rm)
{
    if (state)
        return ag_config_errorf(cfg, state, AG_E_CONFIG_VALUE,
                                "state and ha exclude each other: with ha the state is kept in "
                                "etcd, where the standby RMs find it");
    const ag_cnode *eps = NULL;
    int rc = ag_config_get_seq(cfg, ha, "etcd", AG_REQUIRED, &eps);
    if (rc < 0)
        return rc;
    size_t n = ag_cnode_len(eps);
    if (n == 0 || n > AG__ETCD_MAX_ENDPOINTS)
        return ag_config_errorf(cfg, eps, AG_E_CONFIG_VALUE, "ha.etcd: 1 to %d endpoints "
                                "(host:port)", AG__ETCD_MAX_ENDPOINTS);
    for (size_t i = 0; i < n; i++) {
        const ag_cnode *it = ag_cnode_item(eps, i);
        const char *v = ag_cnode_scalar(it);
        if (ag_cnode_type_of(it) != AG_CNODE_SCALAR || !v[0] || !strchr(v, ':') ||
            strlen(v) >= sizeof(rm->ha_endpoints[0]))
            return ag_config_errorf(cfg, it, AG_E_CONFIG_VALUE,
                                    "ha.etcd: an endpoint is host:port");
        snprintf(rm->ha_endpoints[i], sizeof(rm->ha_endpoints[0]), "%s", v);
    }
    rm->nha_endpoints = n;
    const char *prefix = "/argot/rm", *id = "";
    rc = ag_config_get_str(cfg, ha, "prefix", AG_OPTIONAL, &prefix);
    if (rc == 0 && (prefix[0] != '/' || prefix[strlen(prefix) - 1] == '/' ||
                    strlen(prefix) >= sizeof(rm->ha_prefix)))
        rc = ag_config_errorf(cfg, ag_cnode_get(ha, "prefix"), AG_E_CONFIG_VALUE,
                              "ha.prefix: a key path that starts with '/' and does not end "
                              "with one, e.g. /argot/rm");
    snprintf(rm->ha_prefix, sizeof(rm->ha_prefix), "%s", prefix);
    if (rc == 0)
        rc = ag_config_get_str(cfg, ha, "id", AG_OPTIONAL, &id);
    if (rc == 0 && (strlen(id) >= sizeof(rm->ha_id) || strchr(id, ' ')))
        rc = ag_config_errorf(cfg, ag_cnode_get(ha, "id"), AG_E_CONFIG_VALUE,
                              "ha.id: a name without spaces, under %zu characters",
                              sizeof(rm->ha_id));
    snprintf(rm->ha_id, sizeof(rm->ha_id), "%s", id);
    uint64_t lease_ms = 2000;
    if (rc == 0)
        rc = ag_config_get_duration_ms(cfg, ha, "lease", AG_OPTIONAL, &lease_ms);
    if (rc == 0 && (lease_ms < 1000 || lease_ms > 60000 || lease_ms % 1000))
        rc = ag_config_errorf(cfg, ag_cnode_get(ha, "lease"), AG_E_CONFIG_VALUE,
                              "ha.lease: whole seconds from 1s to 60s (etcd's leases are in "
                              "seconds)");
    rm->ha_lease_s = (int64_t)(lease_ms / 1000);
    return rc;
}

static int load_config(ag_rm *rm, const char *path, char *err, size_t cap)
{
    static const char *const top[] = {
        "address", "state",          "liveness",           "queues", "scheduler", "admin",
        "log",     "shutdown_grace", "heartbeat_interval", "tls",    "tokens",    "ha", NULL};
    static const char *const state_keys[] = {"sqlite", NULL};
    static const char *const live_keys[] = {"nm_expiry_ms", "am_expiry_ms",
                                            "container_alloc_expiry_ms", NULL};
    static const char *const token_keys[] = {"roll_interval_ms", NULL};
    static const char *const ha_keys[] = {"etcd", "prefix", "id", "lease", NULL};
    static const char *const sched_keys[] = {"min_allocation", "max_allocation",
                                             "node_locality_delay", "rack_locality_delay",
                                             "max_app_attempts", "preemption", NULL};
    static const char *const res_keys[] = {"memory_mb", "vcores", NULL};
    static const char *const pre_keys[] = {"enabled", "wait", NULL};
    ag_config *cfg = ag_config_new();
    if (!cfg) {
        snprintf(err, cap, "%s: %s", path, ag_strerror(AG_E_NOMEM));
        return AG_E_NOMEM;
    }
    const ag_cnode *root = NULL, *state = NULL, *live = NULL, *qs = NULL, *sc = NULL, *minr = NULL,
                   *maxr = NULL, *pre = NULL, *tokens = NULL, *tls = NULL, *ha = NULL;
    ag_daemon_conf dc = {.log_level = -1, .shutdown_grace_ms = rm->grace_ms};
    int64_t nm_exp = 600000, am_exp = 600000, alloc_exp = 600000, roll = 86400000, v = 0;
    int rc = ag_config_load_file(cfg, path);
    if (rc == 0) {
        root = ag_config_root(cfg);
        rc = ag_config_check_keys(cfg, root, top);
    }
    if (rc == 0)
        rc = ag_config_get_hostport(cfg, root, "address", AG_OPTIONAL, rm->address,
                                    sizeof(rm->address));
    if (rc == 0)
        rc = ag_config_get_map(cfg, root, "state", AG_OPTIONAL, &state);
    if (rc == 0)
        rc = ag_config_check_keys(cfg, state, state_keys);
    if (rc == 0 && state)
        rc = ag_config_get_path(cfg, state, "sqlite", AG_REQUIRED, rm->state_path,
                                sizeof(rm->state_path));
    if (rc == 0)
        rc = ag_config_get_map(cfg, root, "ha", AG_OPTIONAL, &ha);
    if (rc == 0)
        rc = ag_config_check_keys(cfg, ha, ha_keys);
    if (rc == 0 && ha)
        rc = load_ha(cfg, ha, state, rm);
    if (rc == 0)
        rc = ag_config_get_map(cfg, root, "liveness", AG_OPTIONAL, &live);
    if (rc == 0)
        rc = ag_config_check_keys(cfg, live, live_keys);
    if (rc == 0)
        rc = ag_config_get_i64(cfg, live, "nm_expiry_ms", AG_OPTIONAL, 100, INT64_MAX / 2,
                               &nm_exp);
    if (rc == 0)
        rc = ag_config_get_i64(cfg, live, "am_expiry_ms", AG_OPTIONAL, 100, INT64_MAX / 2,
                               &am_exp);
    if (rc == 0)
        rc = ag_config_get_i64(cfg, live, "container_alloc_expiry_ms", AG_OPTIONAL, 100,
                               INT64_MAX / 2, &alloc_exp);
    rm->conf.nm_expiry_ms = (uint64_t)nm_exp;
    rm->conf.am_expiry_ms = (uint64_t)am_exp;
    rm->conf.container_alloc_expiry_ms = (uint64_t)alloc_exp;
    if (rc == 0)
        rc = ag_config_get_map(cfg, root, "tokens", AG_OPTIONAL, &tokens);
    if (rc == 0)
        rc = ag_config_check_keys(cfg, tokens, token_keys);
    if (rc == 0)
        rc = ag_config_get_i64(cfg, tokens, "roll_interval_ms", AG_OPTIONAL, 1000, INT64_MAX / 4,
                               &roll);
    rm->conf.key_roll_interval_ms = (uint64_t)roll;
    if (rc == 0)
        rc = ag__sched_tls_load(cfg, root, "nodes", rm->tls_cert, rm->tls_key, rm->tls_ca,
                                sizeof(rm->tls_cert), &tls);
    if (rc == 0 && tls)
        rc = load_node_names(cfg, tls, rm);
    if (rc == 0)
        rc = ag_config_get_map(cfg, root, "queues", AG_OPTIONAL, &qs);
    if (rc == 0 && qs)
        rc = load_queues(cfg, qs, rm);
    if (rc == 0)
        rc = ag_config_get_map(cfg, root, "scheduler", AG_OPTIONAL, &sc);
    if (rc == 0)
        rc = ag_config_check_keys(cfg, sc, sched_keys);
    if (rc == 0)
        rc = ag_config_get_map(cfg, sc, "min_allocation", AG_OPTIONAL, &minr);
    if (rc == 0)
        rc = ag_config_check_keys(cfg, minr, res_keys);
    if (rc == 0 && ag_config_get_i64(cfg, minr, "memory_mb", AG_OPTIONAL, 1, 1 << 30, &v) == 0)
        rm->conf.min_alloc_mb = v, v = 0;
    if (rc == 0 && ag_config_get_i64(cfg, minr, "vcores", AG_OPTIONAL, 1, 1 << 20, &v) == 0)
        rm->conf.min_alloc_vcores = (int32_t)v, v = 0;
    if (rc == 0)
        rc = ag_config_errcode(cfg) < 0 ? ag_config_errcode(cfg) : 0;
    if (rc == 0)
        rc = ag_config_get_map(cfg, sc, "max_allocation", AG_OPTIONAL, &maxr);
    if (rc == 0)
        rc = ag_config_check_keys(cfg, maxr, res_keys);
    if (rc == 0 && ag_config_get_i64(cfg, maxr, "memory_mb", AG_OPTIONAL, 1, 1 << 30, &v) == 0)
        rm->conf.max_alloc_mb = v, v = 0;
    if (rc == 0 && ag_config_get_i64(cfg, maxr, "vcores", AG_OPTIONAL, 1, 1 << 20, &v) == 0)
        rm->conf.max_alloc_vcores = (int32_t)v, v = 0;
    if (rc == 0)
        rc = ag_config_errcode(cfg) < 0 ? ag_config_errcode(cfg) : 0;
    if (rc == 0 &&
        ag_config_get_i64(cfg, sc, "node_locality_delay", AG_OPTIONAL, -1, 1 << 20, &v) == 0)
        rm->conf.node_locality_delay = (int)v, v = 0;
    if (rc == 0 &&
        ag_config_get_i64(cfg, sc, "rack_locality_delay", AG_OPTIONAL, -1, 1 << 20, &v) == 0)
        rm->conf.rack_locality_delay = (int)v, v = 0;
    if (rc == 0 && ag_config_get_i64(cfg, sc, "max_app_attempts", AG_OPTIONAL, 1, 100, &v) == 0)
        rm->conf.max_app_attempts = (int)v, v = 0;
    if (rc == 0)
        rc = ag_config_errcode(cfg) < 0 ? ag_config_errcode(cfg) : 0;
    if (rc == 0)
        rc = ag_config_get_map(cfg, sc, "preemption", AG_OPTIONAL, &pre);
    if (rc == 0)
        rc = ag_config_check_keys(cfg, pre, pre_keys);
    if (rc == 0)
        rc = ag_config_get_bool(cfg, pre, "enabled", AG_OPTIONAL, &rm->conf.preemption);
    if (rc == 0)
        rc = ag_config_get_duration_ms(cfg, pre, "wait", AG_OPTIONAL,
                                       &rm->conf.preemption_wait_ms);
    if (rc == 0)
        rc = ag_config_get_duration_ms(cfg, root, "heartbeat_interval", AG_OPTIONAL,
                                       &rm->conf.heartbeat_interval_ms);
    if (rc == 0) {
        /* new keys reach the NMs with heartbeats a quarter of the interval
         * before they sign (ag_sched_tick): at least three heartbeats */
        uint64_t hb = rm->conf.heartbeat_interval_ms ? rm->conf.heartbeat_interval_ms : 1000;
        if ((uint64_t)roll / 4 < 3 * hb)
            rc = ag_config_errorf(cfg, tokens ? ag_cnode_get(tokens, "roll_interval_ms") : root,
                                  AG_E_CONFIG_VALUE,
                                  "tokens.roll_interval_ms %lld is under 12 heartbeat intervals "
                                  "(%llu ms): the NMs would not learn new keys before they sign",
                                  (long long)roll, (unsigned long long)(12 * hb));
    }
    if (rc == 0)
        rc = ag_config_get_daemon(cfg, root, &dc);
    snprintf(rm->admin_address, sizeof(rm->admin_address), "%s", dc.admin);
    rm->log_level = dc.log_level;
    rm->grace_ms = dc.shutdown_grace_ms;
    if (rc < 0)
        snprintf(err, cap, "%s", ag_config_errmsg(cfg));
    ag_config_free(cfg);
    return rc;
}

/* The core's clock: ms since the RM started (cluster_timestamp), monotonic. */
#define now_ms() (ag_now_ms() - rm->mono0)

/* ---- the state store ------------------------------------------------------------------ */

static bool state_final(int state)
{
    return state == ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FINISHED ||
           state == ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FAILED ||
           state == ARGOT__SCHED__V1__YARN_APPLICATION_STATE__KILLED;
}

/* Notes a write's result: a fenced store means another RM leads now, and
 * this one stops acting at once (every call refused from here on). */
static void store_check(ag_rm *rm, int rc)
{
    if (rc == AG__STORE_FENCED && !atomic_load(&rm->fenced)) {
        atomic_store(&rm->fenced, true);
        AG_LOG(AG_LOG_ERROR, "rm", "fenced id=%s why=\"%s refused a write: another RM is "
               "active\"", rm->ha_id, rm->store->name);
    }
}

#define STORE(op, ...) store_check(rm, rm->store->ops->op(rm->store, __VA_ARGS__))
#define STORE0(op) store_check(rm, rm->store->ops->op(rm->store))

/* Writes r as id's last report. */
static void store_put(ag_rm *rm, const char *id, const Argot__Sched__V1__ApplicationReport *r)
{
    size_t len = argot__sched__v1__application_report__get_packed_size(r);
    uint8_t *buf = ag_malloc(len + 1);
    if (!buf)
        return;
    argot__sched__v1__application_report__pack(r, buf);
    STORE(report_put, id, (int)r->yarn_application_state, buf, len);
    ag_free(buf);
}

/* The stored report of id, or NULL. One the RM lost while it ran (state
 * -1: it could not be recovered) is reported FAILED, saying why. */
static Argot__Sched__V1__ApplicationReport *store_get(ag_rm *rm, const char *id)
{
    Argot__Sched__V1__ApplicationReport *r = NULL;
    uint8_t *blob = NULL;
    size_t len = 0;
    int state = 0;
    if (!rm->store || rm->store->ops->report_get(rm->store, id, &state, &blob, &len) != 1)
        return NULL;
    if (len > 0)
        ag_rpc_msg_unpack(&argot__sched__v1__application_report__descriptor, blob, len,
                          (ProtobufCMessage **)&r);
    ag_free(blob);
    if (r && state == -1) {
        r->yarn_application_state = ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FAILED;
        r->final_application_status = ARGOT__SCHED__V1__FINAL_APPLICATION_STATUS__APP_FAILED;
        char *d = ag_strdup("the RM restarted while the application ran and could not "
                            "recover it (see the RM's log)");
        if (d) {
            if (r->diagnostics != protobuf_c_empty_string)
                ag_free(r->diagnostics);
            r->diagnostics = d;
        }
    }
    return r;
}

/* Writes what changed of one application since the last pass: its
 * attempts while it runs, nothing but its report once it has ended. */
static void store_app(ag_rm *rm, int32_t app_id, const ag_sched_app_state *as)
{
    if (state_final(as->state))
        STORE(app_drop, app_id);
    else
        STORE(attempt_put, app_id, as->attempt, as->am_container, as->attempt_ended);
}

/* The lock held (when ag_sched_changes moved, and at the end): writes the
 * reports and attempts of applications whose state, attempt or AM
 * container changed since the last pass, in one transaction. Every such
 * change moves the counter, so nothing else needs a pass. */
static void store_sync(ag_rm *rm)
{
    Argot__Sched__V1__GetApplicationsRequest req = ARGOT__SCHED__V1__GET_APPLICATIONS_REQUEST__INIT;
    Argot__Sched__V1__GetApplicationsResponse resp = ARGOT__SCHED__V1__GET_APPLICATIONS_RESPONSE__INIT;
    if (ag_sched_apps(rm->core, &req, &resp) != AG_SCHED_OK)
        return;
    rm->synced = ag_sched_changes(rm->core);
    bool began = false;
    for (size_t i = 0; i < resp.n_applications; i++) {
        Argot__Sched__V1__ApplicationReport *r = resp.applications[i];
        char id[64];
        ag_sched_app_state as;
        if (ag_sched_get_app_state(rm->core, r->application_id->id, &as) != AG_SCHED_OK)
            continue;
        ag_sched_format_app_id(r->application_id->cluster_timestamp, r->application_id->id, id,
                               sizeof(id));
        struct seen *s = rm->seen;
        while (s && strcmp(s->id, id) != 0)
            s = s->next;
        if (s && s->state == (int)r->yarn_application_state && s->attempt == as.attempt &&
            s->am_container == as.am_container && s->attempt_ended == as.attempt_ended)
            continue;
        if (!s && (s = ag_calloc(1, sizeof(*s)))) {
            snprintf(s->id, sizeof(s->id), "%s", id);
            s->next = rm->seen;
            rm->seen = s;
        }
        if (s) {
            s->state = (int)r->yarn_application_state;
            s->attempt = as.attempt;
            s->am_container = as.am_container;
            s->attempt_ended = as.attempt_ended;
        }
        if (!began)
            began = rm->store->ops->begin(rm->store) == 0;
        store_put(rm, id, r);
        store_app(rm, r->application_id->id, &as);
    }
    if (began)
        STORE0(commit);
    ag_sched_resp_clear(&resp.base);
}

/* One change of the core's grant log into the store (g NULL: forget them
 * all), in the transaction store_grants opens at the first. */
static void grant_row(void *ud, bool added, const ag_sched_grant *g)
{
    ag_rm *rm = ud;
    if (!rm->grants_began)
        rm->grants_began = rm->store->ops->begin(rm->store) == 0;
    if (!g)
        STORE0(grants_clear);
    else if (!added)
        STORE(grant_del, g->app_id, g->container);
    else
        STORE(grant_put, g);
}

/* Writes the grants that came or went since the last pass (the lock held),
 * so that a restarted RM knows containers granted but not yet started. */
static void store_grants(ag_rm *rm)
{
    rm->grants_began = false;
    ag_sched_grant_changes(rm->core, grant_row, rm);
    if (rm->grants_began)
        STORE0(commit);
    rm->grants_began = false;
}

/* Puts back one stored grant of a recovered application; drops one that
 * cannot be (logged). */
static int recover_grant(void *ud, const ag_sched_grant *g)
{
    ag_rm *rm = ud;
    char err[AG_ERRMSG_MAX];
    if (ag_sched_recover_grant(rm->core, g, now_ms(), err, sizeof(err)) == AG_SCHED_OK) {
        rm->recovered_grants++;
        return 0;
    }
    AG_LOG(AG_LOG_INFO, "rm", "grant_dropped app=%d container=%lld why=\"%s\"", (int)g->app_id,
           (long long)g->container, err);
    STORE(grant_del, g->app_id, g->container);
    return 0;
}

/* Syncs the store if the core's stored state changed since the last sync,
 * and the grants (after every call and tick, the lock held). */
static void store_sync_changed(ag_rm *rm)
{
    if (!rm->store)
        return;
    if (ag_sched_changes(rm->core) != rm->synced)
        store_sync(rm);
    store_grants(rm);
}

/* Records the last application id handed out (before the id is answered,
 * so that a restarted RM never hands it out again). The lock held. */
static void store_last_app(ag_rm *rm)
{
    STORE(last_app_put, ag_sched_last_app_id(rm->core));
}

/* Records a submitted application's context (the lock held). */
static void store_context(ag_rm *rm, const Argot__Sched__V1__ApplicationSubmissionContext *ctx)
{
    size_t len = argot__sched__v1__application_submission_context__get_packed_size(ctx);
    uint8_t *buf = ag_malloc(len + 1);
    if (!buf)
        return;
    argot__sched__v1__application_submission_context__pack(ctx, buf);
    STORE(context_put, ctx->application_id->id, buf, len, ag_wall_ms());
    ag_free(buf);
}

/* Writes every key of the core (a slot without a key deleted). The lock
 * held (or before serving). */
static void store_keys(ag_rm *rm)
{
    ag_sched_keys k;
    ag_sched_export_keys(rm->core, &k);
    rm->key_changes = ag_sched_key_changes(rm->core);
    STORE(keys_put, &k);
    ag_wipe(&k, sizeof(k));
}

/* Takes back the identity of an earlier run on this store, if any: its
 * cluster_timestamp (the core is rebuilt with it and the clock continues
 * from it), keys and last application id; the epoch goes up by one. Then
 * writes the identity. */
static int store_identity(ag_rm *rm, char *err, size_t cap)
{
    ag_sched_keys k;
    ag__store_identity id = {0};
    bool found = false;
    memset(&k, 0, sizeof(k));
    int rc = rm->store->ops->identity_get(rm->store, &id, &k, &found, err, cap);
    if (rc < 0) {
        ag_wipe(&k, sizeof(k));
        return rc;
    }
    if (found) {
        rm->conf.cluster_timestamp = id.cluster_timestamp;
        rm->epoch = id.epoch + 1;
        ag_sched_free(rm->core);
        rm->core = ag_sched_new(&rm->conf, err, cap);
        if (!rm->core) {
            ag_wipe(&k, sizeof(k));
            return AG_E_NOMEM;
        }
        ag_sched_import_keys(rm->core, &k);
        ag_sched_set_last_app_id(rm->core, (int32_t)AG_MIN(id.last_app_id, INT32_MAX));
        /* the core's clock counts from cluster_timestamp, as in the first run
         * (modular arithmetic: now_ms() stays right if mono0 wraps) */
        int64_t since = ag_wall_ms() - rm->conf.cluster_timestamp;
        rm->mono0 = ag_now_ms() - (uint64_t)AG_MAX(since, 0);
    }
    ag_wipe(&k, sizeof(k));
    ag_sched_export_keys(rm->core, &k);
    rm->key_changes = ag_sched_key_changes(rm->core);
    id.cluster_timestamp = rm->conf.cluster_timestamp;
    id.epoch = rm->epoch;
    id.last_app_id = ag_sched_last_app_id(rm->core);
    rc = rm->store->ops->identity_put(rm->store, &id, &k, err, cap);
    ag_wipe(&k, sizeof(k));
    store_check(rm, rc);
    return rc;
}

/* Puts one unfinished application of the store back into the core; one
 * that cannot be (logged) is dropped from the store and recorded FAILED by
 * store_start. */
static int recover_app(void *ud, int32_t app_id, const uint8_t *blob, size_t len,
                       int64_t start_ms)
{
    ag_rm *rm = ud;
    char err[AG_ERRMSG_MAX] = "no submission context", id[64];
    Argot__Sched__V1__ApplicationSubmissionContext *ctx = NULL;
    ag_sched_recovery r = {.attempt = 1, .start_ms = start_ms,
                           .next_container = (rm->epoch << 40) + 1};
    rm->store->ops->attempt_get(rm->store, app_id, &r.attempt, &r.am_container,
                                &r.attempt_ended);
    ag_sched_format_app_id(rm->conf.cluster_timestamp, app_id, id, sizeof(id));
    uint8_t *rep = NULL;
    size_t rlen = 0;
    int state = 0;
    if (rm->store->ops->report_get(rm->store, id, &state, &rep, &rlen) == 1)
        r.registered = state == ARGOT__SCHED__V1__YARN_APPLICATION_STATE__RUNNING;
    ag_free(rep);
    int rc = AG_SCHED_INVALID;
    if (blob && len > 0 &&
        ag_rpc_msg_unpack(&argot__sched__v1__application_submission_context__descriptor, blob,
                          len, (ProtobufCMessage **)&ctx) == 0 &&
        ctx->application_id)
        rc = ag_sched_recover_app(rm->core, ctx, &r, now_ms(), err, sizeof(err));
    if (rc == AG_SCHED_OK) {
        rm->recovered_apps++;
    } else {
        AG_LOG(AG_LOG_WARN, "rm", "recover_failed app=%s why=\"%s\"", id, err);
        STORE(app_drop, app_id);
    }
    ag_rpc_msg_free(ctx ? &ctx->base : NULL);
    return 0;
}

/* Recovers from the opened store (before serving): identity and keys,
 * unfinished applications and their grants; what was not finished and
 * did not come back is recorded as lost. */
static int store_start(ag_rm *rm, char *err, size_t cap)
{
    int rc = store_identity(rm, err, cap);
    if (rc < 0)
        return rc;
    rm->recovered_apps = rm->recovered_grants = 0;
    rc = rm->store->ops->contexts(rm->store, recover_app, rm);
    if (rc == 0)
        rc = rm->store->ops->grants(rm->store, recover_grant, rm);
    if (rc < 0) {
        snprintf(err, cap, "%s: cannot read the stored applications (see the log)",
                 rm->store->name);
        return AG_E_IO;
    }
    /* recovered applications get their true state back from the sync below */
    STORE0(reports_mark_lost);
    store_sync(rm);
    if (atomic_load(&rm->fenced)) {
        snprintf(err, cap, "%s: another RM became active during recovery", rm->store->name);
        return AG__STORE_FENCED;
    }
    AG_LOG(AG_LOG_INFO, "rm", "state_loaded store=\"%s\" epoch=%lld recovered=%d grants=%d",
           rm->store->name, (long long)rm->epoch, rm->recovered_apps, rm->recovered_grants);
    return 0;
}

/* ---- high availability: is this RM the one acting? ----------------------------------- */

/* Whether this RM may act: not fenced and, with ha, its lease still runs by
 * its own clock (a paused RM that wakes after its lease ran out sees that
 * before it answers anything). Once false, false for good. */
static bool acting(ag_rm *rm)
{
    if (atomic_load(&rm->fenced))
        return false;
    if (rm->nha_endpoints && ag_now_ms() >= atomic_load(&rm->lease_deadline_ms)) {
        atomic_store(&rm->fenced, true);
        AG_LOG(AG_LOG_ERROR, "rm", "fenced id=%s why=\"its lease ran out before it was "
               "renewed\"", rm->ha_id);
        return false;
    }
    return true;
}

/* A call's status: st, or UNAVAILABLE (which sends clients to the next RM)
 * when this RM no longer acts; what the call did is then not answered. */
static int acting_or_refuse(ag_rm *rm, int st, char *err, size_t cap)
{
    if (acting(rm))
        return st;
    snprintf(err, cap, "RM %s is not the active resource manager any more: ask the others",
             rm->ha_id[0] ? rm->ha_id : rm->bound);
    return AG_RPC_UNAVAILABLE;
}

/* ---- calls ------------------------------------------------------------------------- */

/* A heap response of descriptor d, initialized. */
static ProtobufCMessage *resp_new(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = ag_malloc(d->sizeof_message);
    if (m)
        protobuf_c_message_init(d, m);
    return m;
}

/* Sends resp (when st is OK) and frees it; returns the call's status. */
static int reply(ag_rpc_call *c, int st, const char *err, ProtobufCMessage *resp)
{
    if (st == AG_SCHED_OK) {
        if (ag_rpc_call_send_msg(c, resp, 0) < 0)
            st = AG_RPC_UNAVAILABLE;
    } else {
        ag_rpc_call_set_status_message(c, err);
        AG_LOG(AG_LOG_DEBUG, "rm", "refused method=%s status=%s why=\"%s\"",
               ag_rpc_call_method(c), ag_rpc_status_name(st), err);
    }
    ag_rpc_msg_free(resp);
    return st;
}

#define CALL_BEGIN(T, d)                                                                     \
    ag_rm *rm = ud;                                                                          \
    char err[AG_ERRMSG_MAX] = "";                                                            \
    T *resp = (T *)resp_new(&d);                                                             \
    if (!resp)                                                                               \
        return AG_RPC_RESOURCE_EXHAUSTED;                                                    \
    ag_metric_add(rm->m_calls, 1, strrchr(ag_rpc_call_method(c), '/') + 1);                  \
    pthread_mutex_lock(&rm->lock)

#define CALL_END()                                                                           \
    store_sync_changed(rm);                                                                  \
    st = acting_or_refuse(rm, st, err, sizeof(err));                                         \
    pthread_mutex_unlock(&rm->lock);                                                         \
    return reply(c, st, err, &resp->base)


static int on_new_app(ag_rpc_call *c, const Argot__Sched__V1__GetNewApplicationRequest *req,
                      void *ud)
{
    (void)req;
    CALL_BEGIN(Argot__Sched__V1__GetNewApplicationResponse,
               argot__sched__v1__get_new_application_response__descriptor);
    int st = ag_sched_new_application(rm->core, now_ms(), resp, err, sizeof(err));
    if (st == AG_SCHED_OK && rm->store)
        store_last_app(rm);
    CALL_END();
}

static int on_submit(ag_rpc_call *c, const Argot__Sched__V1__SubmitApplicationRequest *req,
                     void *ud)
{
    CALL_BEGIN(Argot__Sched__V1__SubmitApplicationResponse,
               argot__sched__v1__submit_application_response__descriptor);
    int st = AG_SCHED_INVALID;
    if (!req->application_submission_context)
        snprintf(err, sizeof(err), "no application_submission_context");
    else
        st = ag_sched_submit(rm->core, req->application_submission_context, now_ms(), err,
                             sizeof(err));
    if (st == AG_SCHED_OK && rm->store)
        store_context(rm, req->application_submission_context); /* then CALL_END syncs */
    else if (st == AG_SCHED_EXISTS)
        st = AG_SCHED_OK; /* as YARN's: a client resending a submission whose answer it lost
                           * (an RM failover, a restart) hears that it is in */
    CALL_END();
}

static int on_report(ag_rpc_call *c, const Argot__Sched__V1__GetApplicationReportRequest *req,
                     void *ud)
{
    CALL_BEGIN(Argot__Sched__V1__GetApplicationReportResponse,
               argot__sched__v1__get_application_report_response__descriptor);
    int st = AG_SCHED_INVALID;
    if (!req->application_id) {
        snprintf(err, sizeof(err), "no application_id");
    } else {
        st = ag_sched_app_report(rm->core, req->application_id, &resp->application_report, err,
                                 sizeof(err));
        if (st == AG_SCHED_NOT_FOUND && rm->store) {
            /* an application of an earlier run of this RM */
            char id[64];
            ag_sched_format_app_id(req->application_id->cluster_timestamp,
                                   req->application_id->id, id, sizeof(id));
            if ((resp->application_report = store_get(rm, id)))
                st = AG_SCHED_OK;
        }
    }
    CALL_END();
}

static int on_apps(ag_rpc_call *c, const Argot__Sched__V1__GetApplicationsRequest *req, void *ud)
{
    CALL_BEGIN(Argot__Sched__V1__GetApplicationsResponse,
               argot__sched__v1__get_applications_response__descriptor);
    int st = ag_sched_apps(rm->core, req, resp);
    CALL_END();
}

static int on_kill(ag_rpc_call *c, const Argot__Sched__V1__KillApplicationRequest *req, void *ud)
{
    CALL_BEGIN(Argot__Sched__V1__KillApplicationResponse,
               argot__sched__v1__kill_application_response__descriptor);
    int st = AG_SCHED_INVALID;
    if (!req->application_id) {
        snprintf(err, sizeof(err), "no application_id");
    } else {
        st = ag_sched_kill(rm->core, req->application_id,
                           req->diagnostics && req->diagnostics[0] ? req->diagnostics
                                                                   : "killed by a client",
                           now_ms(), err, sizeof(err));
        resp->is_kill_completed = st == AG_SCHED_OK;
    }
    CALL_END();
}

static int on_nodes(ag_rpc_call *c, const Argot__Sched__V1__GetClusterNodesRequest *req,
                    void *ud)
{
    CALL_BEGIN(Argot__Sched__V1__GetClusterNodesResponse,
               argot__sched__v1__get_cluster_nodes_response__descriptor);
    int st = ag_sched_nodes(rm->core, req, resp);
    CALL_END();
}

static int on_metrics(ag_rpc_call *c, const Argot__Sched__V1__GetClusterMetricsRequest *req,
                      void *ud)
{
    (void)req;
    CALL_BEGIN(Argot__Sched__V1__GetClusterMetricsResponse,
               argot__sched__v1__get_cluster_metrics_response__descriptor);
    int st = ag_sched_metrics(rm->core, resp);
    CALL_END();
}

static int on_queue(ag_rpc_call *c, const Argot__Sched__V1__GetQueueInfoRequest *req, void *ud)
{
    CALL_BEGIN(Argot__Sched__V1__GetQueueInfoResponse,
               argot__sched__v1__get_queue_info_response__descriptor);
    int st = ag_sched_queue_info(rm->core, req, resp, err, sizeof(err));
    CALL_END();
}

/* The caller's AMRM token, decoded (before the lock): 0, or a refusal
 * (status in *st, why in err). */
struct amrm {
    uint8_t *id, *pw;
    size_t idlen, pwlen;
};

static int amrm_parse(ag_rpc_call *c, struct amrm *t, char *err, size_t cap)
{
    memset(t, 0, sizeof(*t));
    const char *text = NULL;
    ag_slice v;
    const char *key;
    char buf[1024];
    for (size_t i = 0; (key = ag_rpc_call_metadata(c, false, i, &v)); i++)
        if (strcmp(key, "argot-amrm-token") == 0 && v.len < sizeof(buf)) {
            memcpy(buf, v.ptr, v.len);
            buf[v.len] = 0;
            text = buf;
        }
    if (!text) {
        snprintf(err, cap, "no AMRM token (metadata argot-amrm-token): only an application's "
                           "master may call this");
        return AG_SCHED_DENIED;
    }
    if (ag__sched_token_parse(text, &t->id, &t->idlen, &t->pw, &t->pwlen) < 0) {
        snprintf(err, cap, "the AMRM token is not id.password in base64url");
        return AG_SCHED_DENIED;
    }
    return AG_SCHED_OK;
}

static void amrm_clear(struct amrm *t)
{
    ag_free(t->id);
    ag_free(t->pw);
}

#define AM_CALL_BEGIN(T, d)                                                                  \
    ag_rm *rm = ud;                                                                          \
    char err[AG_ERRMSG_MAX] = "";                                                            \
    struct amrm tok;                                                                         \
    int st = amrm_parse(c, &tok, err, sizeof(err));                                          \
    T *resp = (T *)resp_new(&d);                                                             \
    if (!resp) {                                                                             \
        amrm_clear(&tok);                                                                    \
        return AG_RPC_RESOURCE_EXHAUSTED;                                                    \
    }                                                                                        \
    ag_metric_add(rm->m_calls, 1, strrchr(ag_rpc_call_method(c), '/') + 1);                  \
    Argot__Sched__V1__ApplicationAttemptId *att = NULL;                                      \
    pthread_mutex_lock(&rm->lock);                                                           \
    if (st == AG_SCHED_OK)                                                                   \
        st = ag_sched_amrm_check(rm->core, tok.id, tok.idlen, tok.pw, tok.pwlen, &att, err,   \
                                 sizeof(err))

#define AM_CALL_END()                                                                        \
    store_sync_changed(rm);                                                                  \
    st = acting_or_refuse(rm, st, err, sizeof(err));                                         \
    pthread_mutex_unlock(&rm->lock);                                                         \
    amrm_clear(&tok);                                                                        \
    ag_rpc_msg_free(att ? &att->base : NULL);                                                \
    return reply(c, st, err, &resp->base)

static int on_register_am(ag_rpc_call *c,
                          const Argot__Sched__V1__RegisterApplicationMasterRequest *req, void *ud)
{
    AM_CALL_BEGIN(Argot__Sched__V1__RegisterApplicationMasterResponse,
                  argot__sched__v1__register_application_master_response__descriptor);
    if (st == AG_SCHED_OK)
        st = ag_sched_register_am(rm->core, att, req, now_ms(), resp, err, sizeof(err));
    AM_CALL_END();
}

static int on_allocate(ag_rpc_call *c, const Argot__Sched__V1__AllocateRequest *req, void *ud)
{
    AM_CALL_BEGIN(Argot__Sched__V1__AllocateResponse,
                  argot__sched__v1__allocate_response__descriptor);
    if (st == AG_SCHED_OK)
        st = ag_sched_allocate(rm->core, att, req, now_ms(), resp, err, sizeof(err));
    AM_CALL_END();
}

static int on_finish_am(ag_rpc_call *c,
                        const Argot__Sched__V1__FinishApplicationMasterRequest *req, void *ud)
{
    AM_CALL_BEGIN(Argot__Sched__V1__FinishApplicationMasterResponse,
                  argot__sched__v1__finish_application_master_response__descriptor);
    if (st == AG_SCHED_OK)
        st = ag_sched_finish_am(rm->core, att, req, now_ms(), resp, err, sizeof(err));
    AM_CALL_END(); /* synced before the AM hears it: a restart must not retry it */
}

/* ResourceTracker calls carry the master keys: with mutual TLS, only a
 * caller whose certificate the RM's CA issued gets them (the rpc layer
 * refuses a connection without one; this also refuses a certificate that
 * names no one), and with tls.nodes only the names listed. AG_SCHED_OK,
 * or UNAUTHENTICATED / PERMISSION_DENIED with err set. */
static int tracker_caller_ok(const ag_rm *rm, ag_rpc_call *c, char *err, size_t cap)
{
    if (!rm->tls_ca[0])
        return AG_SCHED_OK;
    const char *who = ag_rpc_call_peer_identity(c);
    if (!who) {
        snprintf(err, cap,
                 "ResourceTracker: the caller's certificate names no one: node "
                 "managers present a certificate the RM's CA issued");
        return AG_RPC_UNAUTHENTICATED;
    }
    if (!rm->nnode_names)
        return AG_SCHED_OK;
    for (size_t i = 0; i < rm->nnode_names; i++)
        if (strcmp(rm->node_names[i], who) == 0)
            return AG_SCHED_OK;
    snprintf(err, cap,
             "ResourceTracker: certificate '%.200s' is not one of the node managers "
             "in tls.nodes",
             who);
    return AG_RPC_PERMISSION_DENIED;
}

static int on_register_nm(ag_rpc_call *c,
                          const Argot__Sched__V1__RegisterNodeManagerRequest *req, void *ud)
{
    CALL_BEGIN(Argot__Sched__V1__RegisterNodeManagerResponse,
               argot__sched__v1__register_node_manager_response__descriptor);
    int st = tracker_caller_ok(rm, c, err, sizeof(err));
    if (st == AG_SCHED_OK)
        st = ag_sched_register_node(rm->core, req, now_ms(), resp, err, sizeof(err));
    CALL_END();
}

static int on_heartbeat(ag_rpc_call *c, const Argot__Sched__V1__NodeHeartbeatRequest *req,
                        void *ud)
{
    CALL_BEGIN(Argot__Sched__V1__NodeHeartbeatResponse,
               argot__sched__v1__node_heartbeat_response__descriptor);
    int st = tracker_caller_ok(rm, c, err, sizeof(err));
    if (st == AG_SCHED_OK)
        st = ag_sched_node_heartbeat(rm->core, req, now_ms(), resp, err, sizeof(err));
    CALL_END();
}

/* ---- the clock and the AM launcher ----------------------------------------------------- */

static ag_rpc_channel *node_channel(ag_rm *rm, const Argot__Sched__V1__NodeId *node)
{
    char target[300];
    snprintf(target, sizeof(target), "%s:%d", node->host, node->port);
    return ag__chans_get(&rm->nodes, target, 5000, &rm->tls);
}

/* Starts one AM container (outside the lock) with the NM token of its
 * attempt for its node (nm_token, text form); the reason it failed, or ""
 * on success, in why. */
static void launch_am(ag_rm *rm, const ag_sched_am_launch *l, const char *nm_token, char *why,
                      size_t cap)
{
    why[0] = 0;
    ag_rpc_channel *ch = node_channel(rm, l->node);
    if (!ch) {
        snprintf(why, cap, "no memory for a channel to %s:%d", l->node->host, l->node->port);
        return;
    }
    ProtobufCMessage *m = NULL;
    char message[AG_ERRMSG_MAX];
    int st = ag__sched_unary(ch, &argot__sched__v1__container_management__start_containers__method,
                             &l->request->base, nm_token[0] ? AG_SCHED_NM_TOKEN_KEY : NULL,
                             nm_token, 10000, &m, message, sizeof(message));
    Argot__Sched__V1__StartContainersResponse *resp =
        (Argot__Sched__V1__StartContainersResponse *)m;
    if (st != AG_RPC_OK)
        snprintf(why, cap, "cannot start the AM on %s:%d: %s: %.*s", l->node->host, l->node->port,
                 ag_rpc_status_name(st), (int)(cap > 120 ? cap - 120 : 0), message);
    else if (resp->n_failed_requests > 0)
        snprintf(why, cap, "node %s:%d refused the AM container: %s", l->node->host,
                 l->node->port, resp->failed_requests[0]->exception);
    ag_rpc_msg_free(m);
}

static void *clock_main(void *arg)
{
    ag_rm *rm = arg;
    while (!atomic_load(&rm->stopping)) {
        ag_sched_am_launch *ls = NULL;
        size_t n = 0;
        pthread_mutex_lock(&rm->lock);
        ag_sched_tick(rm->core, now_ms());
        if (rm->store && ag_sched_key_changes(rm->core) != rm->key_changes)
            store_keys(rm); /* rolled: a restart must know every key in use */
        ag_sched_take_am_launches(rm->core, &ls, &n);
        /* each launch's NM token, as its AM would hold it (NM_TOKEN_MAX each) */
        char *toks = n ? ag_calloc(n, NM_TOKEN_MAX) : NULL;
        for (size_t i = 0; toks && i < n; i++)
            ag_sched_nm_token_text(rm->core, ls[i].container, now_ms(), toks + i * NM_TOKEN_MAX,
                                   NM_TOKEN_MAX);
        /* an AM container is in the store before it starts */
        store_sync_changed(rm);
        pthread_mutex_unlock(&rm->lock);
        for (size_t i = 0; i < n; i++) {
            char why[AG_ERRMSG_MAX], cid[128];
            launch_am(rm, &ls[i], toks ? toks + i * NM_TOKEN_MAX : "", why, sizeof(why));
            ag_metric_add(rm->m_launches, 1, why[0] ? "failed" : "ok");
            AG_LOG(why[0] ? AG_LOG_WARN : AG_LOG_INFO, "rm", "am_launch container=%s%s%s",
                   ag_sched_container_id_str(ls[i].container, cid, sizeof(cid)),
                   why[0] ? " error=" : "", why);
            if (why[0]) {
                pthread_mutex_lock(&rm->lock);
                ag_sched_am_launch_failed(rm->core, ls[i].container, why, now_ms());
                pthread_mutex_unlock(&rm->lock);
            }
            ag_rpc_msg_free(&ls[i].node->base);
            ag_rpc_msg_free(&ls[i].request->base);
            ag_rpc_msg_free(&ls[i].container->base);
        }
        ag_free(ls);
        if (toks) {
            ag_wipe(toks, n * NM_TOKEN_MAX);
            ag_free(toks);
        }
        if (n == 0)
            ag_sleep_ms(TICK_MS);
    }
    return NULL;
}

/* ---- the object ----------------------------------------------------------------------- */

ag_rm *ag_rm_load(const char *config, const char *listen, char *err, size_t cap)
{
    ag_rm *rm = ag_calloc(1, sizeof(*rm));
    if (!rm) {
        snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
        return NULL;
    }
    rm->grace_ms = 5000;
    rm->log_level = -1;
    rm->tls = (ag__sched_tls){rm->tls_cert, rm->tls_key, rm->tls_ca};
    pthread_mutex_init(&rm->lock, NULL);
    atomic_init(&rm->stopping, false);
    atomic_init(&rm->fenced, false);
    atomic_init(&rm->role, AG_RM_STANDBY);
    atomic_init(&rm->lease_deadline_ms, 0);
    if (config && load_config(rm, config, err, cap) < 0) {
        ag_rm_free(rm);
        return NULL;
    }
    if (listen)
        snprintf(rm->address, sizeof(rm->address), "%s", listen);
    if (!rm->address[0])
        snprintf(rm->address, sizeof(rm->address), "127.0.0.1:8030");
    if (rm->log_level >= 0)
        ag_log_set_level((ag_log_level)rm->log_level);
    rm->conf.cluster_timestamp = ag_wall_ms();
    rm->mono0 = ag_now_ms();
    /* the store drains the log */
    rm->conf.track_grants = rm->state_path[0] != '\0' || rm->nha_endpoints > 0;
    if (rm->nha_endpoints && !rm->ha_id[0])
        snprintf(rm->ha_id, sizeof(rm->ha_id), "%s", rm->address);
    rm->core = ag_sched_new(&rm->conf, err, cap);
    if (!rm->core) {
        ag_rm_free(rm);
        return NULL;
    }
    return rm;
}

/* Serves the four services and starts the clock: the RM acts from here on. */
static int serve(ag_rm *rm, char *err, size_t cap)
{
    ag_rpc_server_opts so;
    ag_rpc_server_opts_init(&so);
    ag__sched_tls_server(&rm->tls, &so);
    rm->srv = ag_rpc_server_new(&so);
    if (!rm->srv) {
        snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
        return AG_E_NOMEM;
    }
    rm->client_h = (Argot__Sched__V1__ApplicationClient_Handlers){
        .get_new_application = on_new_app,
        .submit_application = on_submit,
        .get_application_report = on_report,
        .get_applications = on_apps,
        .force_kill_application = on_kill,
        .get_cluster_nodes = on_nodes,
        .get_cluster_metrics = on_metrics,
        .get_queue_info = on_queue,
        .ud = rm,
    };
    rm->am_h = (Argot__Sched__V1__ApplicationMaster_Handlers){
        .register_application_master = on_register_am,
        .allocate = on_allocate,
        .finish_application_master = on_finish_am,
        .ud = rm,
    };
    rm->rt_h = (Argot__Sched__V1__ResourceTracker_Handlers){
        .register_node_manager = on_register_nm,
        .node_heartbeat = on_heartbeat,
        .ud = rm,
    };
    if (argot__sched__v1__application_client__register(rm->srv, &rm->client_h) < 0 ||
        argot__sched__v1__application_master__register(rm->srv, &rm->am_h) < 0 ||
        argot__sched__v1__resource_tracker__register(rm->srv, &rm->rt_h) < 0 ||
        ag_rpc_health_register(rm->srv, rm->health) < 0) {
        snprintf(err, cap, "%s", ag_rpc_server_errmsg(rm->srv));
        return AG_E_STATE;
    }
    if (ag_rpc_server_start(rm->srv, rm->address) < 0) {
        snprintf(err, cap, "cannot serve: %s", ag_rpc_server_errmsg(rm->srv));
        return AG_E_IO;
    }
    char bound[sizeof(rm->bound)];
    snprintf(bound, sizeof(bound), "%s", rm->address);
    char *colon = strrchr(bound, ':');
    if (colon && strncmp(rm->address, "unix:", 5) != 0)
        snprintf(colon + 1, sizeof(bound) - (size_t)(colon + 1 - bound), "%d",
                 ag_rpc_server_port(rm->srv));
    pthread_mutex_lock(&rm->lock);
    snprintf(rm->bound, sizeof(rm->bound), "%s", bound);
    pthread_mutex_unlock(&rm->lock);
    if (pthread_create(&rm->clock, NULL, clock_main, rm) != 0) {
        snprintf(err, cap, "cannot start the clock thread");
        return AG_E_SYS;
    }
    rm->clock_started = true;
    ag_rpc_health_set(rm->health, "", AG_RPC_HEALTH_SERVING);
    AG_LOG(AG_LOG_INFO, "rm", "serving address=%s tls=%s", bound,
           !ag__sched_tls_on(&rm->tls) ? "off"
           : rm->tls_ca[0]             ? "mutual"
                                       : "on");
    return 0;
}

/* ---- the election (ha) ------------------------------------------------------------------ */

static void set_role(ag_rm *rm, ag_rm_role r)
{
    atomic_store(&rm->role, (int)r);
    ag_metric_set(rm->m_active, r == AG_RM_ACTIVE ? 1.0 : 0.0);
}

/* Sleeps up to ms, waking early when the RM stops. */
static void nap(ag_rm *rm, uint64_t ms)
{
    for (uint64_t t = 0; t < ms && !atomic_load(&rm->stopping); t += 20)
        ag_sleep_ms(AG_MIN(ms - t, (uint64_t)20));
}

/* One try to become the leader with lease: puts P/leader ("id address")
 * if no one holds it. 1 with *rev (the key's creation), 0 when someone
 * else leads (leader_seen says who), -1 on failure (err). */
static int campaign(ag_rm *rm, int64_t lease, int64_t *rev, char *err, size_t cap)
{
    char key[300], val[600];
    snprintf(key, sizeof(key), "%s/leader", rm->ha_prefix);
    snprintf(val, sizeof(val), "%s %s", rm->ha_id, rm->address);
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
    cmp.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
    cmp.create_revision = 0; /* the key does not exist */
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key = cmp.key;
    put.value = (ProtobufCBinaryData){strlen(val), (uint8_t *)val};
    put.lease = lease;
    Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
    get.key = cmp.key;
    Etcdserverpb__RequestOp ok = ETCDSERVERPB__REQUEST_OP__INIT, no = ETCDSERVERPB__REQUEST_OP__INIT;
    ok.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    ok.request_put = &put;
    no.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
    no.request_range = &get;
    Etcdserverpb__Compare *cmps[] = {&cmp};
    Etcdserverpb__RequestOp *oks[] = {&ok}, *nos[] = {&no};
    Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
    req.n_compare = 1;
    req.compare = cmps;
    req.n_success = 1;
    req.success = oks;
    req.n_failure = 1;
    req.failure = nos;
    Etcdserverpb__TxnResponse *r = NULL;
    if (ag__etcd_txn(rm->etcd, &req, &r, err, cap) < 0)
        return -1;
    int won = r->succeeded ? 1 : 0;
    if (won) {
        *rev = r->header ? r->header->revision : 0;
    } else if (r->n_responses == 1 && r->responses[0]->response_range &&
               r->responses[0]->response_range->n_kvs == 1) {
        const ProtobufCBinaryData *v = &r->responses[0]->response_range->kvs[0]->value;
        int n = (int)AG_MIN(v->len, sizeof(rm->leader_seen) - 1);
        pthread_mutex_lock(&rm->lock);
        snprintf(rm->leader_seen, sizeof(rm->leader_seen), "%.*s", n, (const char *)v->data);
        pthread_mutex_unlock(&rm->lock);
    }
    ag_rpc_msg_free(&r->base);
    if (won && *rev <= 0) {
        snprintf(err, cap, "etcd answered the election without a revision");
        return -1;
    }
    return won;
}

/* Keeps the lease while active: a renewal every third of its life; the
 * lease deadline moves with each answer. Returns when the RM stops or the
 * lease is lost (then the RM is fenced). */
static void lead(ag_rm *rm, int64_t lease)
{
    uint64_t period = (uint64_t)rm->ha_lease_s * 1000 / 3;
    while (!atomic_load(&rm->stopping) && !atomic_load(&rm->fenced)) {
        nap(rm, period);
        if (atomic_load(&rm->stopping))
            break;
        char err[AG_ERRMSG_MAX];
        int64_t left = 0;
        uint64_t sent = ag_now_ms();
        if (ag__etcd_keepalive(rm->etcd, lease, &left, err, sizeof(err)) < 0) {
            AG_LOG(AG_LOG_WARN, "rm", "lease_renewal_failed id=%s why=\"%s\"", rm->ha_id, err);
            if (!acting(rm))
                break;
            continue;
        }
        if (left <= 0) {
            atomic_store(&rm->fenced, true);
            AG_LOG(AG_LOG_ERROR, "rm", "fenced id=%s why=\"etcd says its lease expired\"",
                   rm->ha_id);
            break;
        }
        atomic_store(&rm->lease_deadline_ms, sent + (uint64_t)left * 1000);
    }
    if (atomic_load(&rm->fenced))
        set_role(rm, AG_RM_FENCED);
}

/* Recovers from the store and serves, once elected. */
static int take_over(ag_rm *rm, char *err, size_t cap)
{
    uint64_t t0 = ag_now_ms();
    pthread_mutex_lock(&rm->lock);
    int rc = store_start(rm, err, cap);
    pthread_mutex_unlock(&rm->lock);
    if (rc == 0)
        rc = serve(rm, err, cap);
    if (rc == 0) {
        set_role(rm, AG_RM_ACTIVE);
        AG_LOG(AG_LOG_INFO, "rm", "active id=%s epoch=%lld address=%s recovered=%d took_ms=%llu",
               rm->ha_id, (long long)rm->epoch, ag_rm_address(rm), rm->recovered_apps,
               (unsigned long long)(ag_now_ms() - t0));
    }
    return rc;
}

static void *elector_main(void *arg)
{
    ag_rm *rm = arg;
    int64_t lease = 0;
    uint64_t backoff = 100;
    bool said_standby = false;
    char err[AG_ERRMSG_MAX];
    while (!atomic_load(&rm->stopping)) {
        int64_t granted = 0, rev = 0;
        uint64_t sent = ag_now_ms();
        if (!lease && ag__etcd_grant(rm->etcd, rm->ha_lease_s, &lease, &granted, err,
                                     sizeof(err)) < 0) {
            lease = 0;
            AG_LOG(AG_LOG_WARN, "rm", "election_failed id=%s why=\"%s\"", rm->ha_id, err);
            nap(rm, backoff);
            backoff = AG_MIN(backoff * 2, (uint64_t)2000);
            continue;
        }
        if (granted)
            atomic_store(&rm->lease_deadline_ms, sent + (uint64_t)granted * 1000);
        int won = campaign(rm, lease, &rev, err, sizeof(err));
        if (won < 0) {
            AG_LOG(AG_LOG_WARN, "rm", "election_failed id=%s why=\"%s\"", rm->ha_id, err);
            /* the lease may have run out meanwhile: take a new one */
            ag__etcd_revoke(rm->etcd, lease, err, sizeof(err));
            lease = 0;
            nap(rm, backoff);
            backoff = AG_MIN(backoff * 2, (uint64_t)2000);
            continue;
        }
        backoff = 100;
        if (won) {
            ag__store_etcd_guard(rm->store, rev);
            if (take_over(rm, err, sizeof(err)) < 0) {
                AG_LOG(AG_LOG_ERROR, "rm", "takeover_failed id=%s why=\"%s\"", rm->ha_id, err);
                atomic_store(&rm->fenced, true);
                set_role(rm, AG_RM_FENCED);
                break;
            }
            lead(rm, lease);
            break;
        }
        if (!said_standby) {
            pthread_mutex_lock(&rm->lock);
            AG_LOG(AG_LOG_INFO, "rm", "standby id=%s leader=\"%s\"", rm->ha_id, rm->leader_seen);
            pthread_mutex_unlock(&rm->lock);
            said_standby = true;
        }
        /* someone leads: ask again soon (the lease it holds bounds how long
         * a dead leader keeps the key); ours is revoked and taken anew */
        ag__etcd_revoke(rm->etcd, lease, err, sizeof(err));
        lease = 0;
        nap(rm, 100);
    }
    /* a stopping leader hands over at once: its key goes with the lease */
    if (lease && atomic_load(&rm->stopping))
        ag__etcd_revoke(rm->etcd, lease, err, sizeof(err));
    return NULL;
}

static bool admin_serving(void *ud)
{
    return ag_rm_get_role(ud) != AG_RM_FENCED;
}

int ag_rm_start(ag_rm *rm, char *err, size_t cap)
{
    rm->metrics = ag_metrics_new();
    rm->health = ag_rpc_health_new();
    if (!rm->metrics || !rm->health) {
        snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
        return AG_E_NOMEM;
    }
    rm->m_calls = ag_metrics_counter(rm->metrics, "argot_rm_calls_total",
                                     "Calls to the RM's services, by method.", "method");
    rm->m_launches = ag_metrics_counter(rm->metrics, "argot_rm_am_launches_total",
                                        "AM containers started on nodes, by outcome.",
                                        "outcome");
    rm->m_active = ag_metrics_gauge(rm->metrics, "argot_rm_active",
                                    "1 while this RM is the active one.", NULL);
    if (rm->admin_address[0]) {
        ag_admin_opts ao;
        ag_admin_opts_init(&ao);
        ao.metrics = rm->metrics;
        ao.serving = admin_serving;
        ao.serving_ud = rm;
        rm->admin = ag_admin_new(&ao);
        if (!rm->admin || ag_admin_start(rm->admin, rm->admin_address) < 0) {
            snprintf(err, cap, "admin: cannot serve: %s",
                     rm->admin ? ag_admin_errmsg(rm->admin) : ag_strerror(AG_E_NOMEM));
            return AG_E_IO;
        }
    }
    if (rm->nha_endpoints) {
        const char *eps[AG__ETCD_MAX_ENDPOINTS];
        char where[300];
        for (size_t i = 0; i < rm->nha_endpoints; i++)
            eps[i] = rm->ha_endpoints[i];
        snprintf(where, sizeof(where), "%s%s", rm->ha_endpoints[0],
                 rm->nha_endpoints > 1 ? ",..." : "");
        rm->etcd = ag__etcd_new(eps, rm->nha_endpoints, 2000);
        rm->store = rm->etcd ? ag__store_etcd_open(rm->etcd, rm->ha_prefix, where, err, cap) : NULL;
        if (!rm->store) {
            if (!rm->etcd)
                snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
            return AG_E_NOMEM;
        }
        set_role(rm, AG_RM_STANDBY);
        if (pthread_create(&rm->elector, NULL, elector_main, rm) != 0) {
            snprintf(err, cap, "cannot start the election thread");
            return AG_E_SYS;
        }
        rm->elector_started = true;
        AG_LOG(AG_LOG_INFO, "rm", "campaigning id=%s etcd=%s prefix=%s lease_s=%lld", rm->ha_id,
               where, rm->ha_prefix, (long long)rm->ha_lease_s);
        return 0;
    }
    if (rm->state_path[0]) {
        rm->store = ag__store_sqlite_open(rm->state_path, err, cap);
        if (!rm->store)
            return AG_E_IO;
        int rc = store_start(rm, err, cap);
        if (rc < 0)
            return rc;
    }
    int rc = serve(rm, err, cap);
    if (rc == 0)
        set_role(rm, AG_RM_ACTIVE);
    return rc;
}

ag_rm_role ag_rm_get_role(const ag_rm *rm)
{
    ag_rm *m = (ag_rm *)rm;
    return atomic_load(&m->fenced) ? AG_RM_FENCED : (ag_rm_role)atomic_load(&m->role);
}

const char *ag_rm_id(const ag_rm *rm)
{
    return rm->ha_id;
}

const char *ag_rm_address(const ag_rm *rm)
{
    return rm->bound;
}

int ag_rm_admin_port(const ag_rm *rm)
{
    return rm->admin ? ag_admin_port(rm->admin) : 0;
}

void ag_rm_stop(ag_rm *rm)
{
    atomic_store(&rm->stopping, true);
    if (rm->health)
        ag_rpc_health_shutdown(rm->health);
    if (rm->srv)
        ag_rpc_server_shutdown(rm->srv, rm->grace_ms);
    if (rm->clock_started) {
        pthread_join(rm->clock, NULL);
        rm->clock_started = false;
    }
    pthread_mutex_lock(&rm->lock);
    if (rm->store && rm->core && atomic_load(&rm->role) == AG_RM_ACTIVE && acting(rm)) {
        store_sync(rm); /* the last word on every application */
        store_grants(rm);
    }
    pthread_mutex_unlock(&rm->lock);
    if (rm->elector_started) { /* after the last write: the lease goes with it */
        pthread_join(rm->elector, NULL);
        rm->elector_started = false;
    }
    if (rm->admin)
        ag_admin_shutdown(rm->admin);
}

void ag_rm_free(ag_rm *rm)
{
    if (!rm)
        return;
    ag_rm_stop(rm);
    ag_rpc_server_free(rm->srv);
    ag_admin_free(rm->admin);
    ag_rpc_health_free(rm->health);
    ag__chans_free(&rm->nodes);
    if (rm->store)
        rm->store->ops->free(rm->store);
    ag__etcd_free(rm->etcd);
    while (rm->seen) {
        struct seen *n = rm->seen->next;
        ag_free(rm->seen);
        rm->seen = n;
    }
    ag_sched_free(rm->core);
    ag_free(rm->node_names);
    ag_metrics_free(rm->metrics);
    pthread_mutex_destroy(&rm->lock);
    ag_free(rm);
}
