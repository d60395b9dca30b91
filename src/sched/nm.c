/*
 * The node manager (sched.h, "node manager"): the ResourceTracker client
 * (registration and heartbeats), the ContainerManagement service, the
 * container table and its config.
 *
 * Invariants:
 *   1. A container starts only for a container token whose password is the
 *      HMAC of its identifier under the RM's current or previous container
 *      master key, whose identifier names this node (host and port as the
 *      NM registered them), has not expired, and names a container this
 *      node has not started before (the table, then a ring of the last
 *      AG_NM_REMEMBERED ids the RM let it forget: a token expires long
 *      before that ring wraps in any sane deployment).
 *   2. A container stays in the table, its status in every heartbeat,
 *      until the RM names it in containers_to_be_removed_from_nm after it
 *      completed (so a completion lost with a heartbeat is sent again).
 *   3. Every ContainerManagement call carries an NM token (metadata
 *      "argot-nm-token") whose password is the HMAC of its identifier under
 *      the RM's current or previous NM-token master key, naming an
 *      application attempt, this node and an expiry not passed; the call
 *      acts only on containers of that application.
 *   4. nm->mu guards the table, the keys and the RM-session state; it is
 *      never held across a call to the RM. The lock order is nm->mu, then
 *      the launcher's own (launch.c takes no lock of ours).
 *
 * Threads: ag_nm_start/stop/free on the controlling thread; the heartbeat
 * thread (hb_main) talks to the RM; ContainerManagement handlers run on the
 * gRPC server's pool threads; the launcher's reaper thread watches the
 * processes (launch.c).
 *
 * TLS (cfg.tls_*): ContainerManagement is served with the node's
 * certificate (mutual TLS with a CA), and the channel to the RM presents it.
 *
 * Recovery (cfg.recovery): ag_nm_stop writes the table to work_dir/nm-state
 * and leaves the containers running; ag_nm_start adopts them (launch.h)
 * before it serves, so that the first registration lists them.
 *
 * RM session: unregistered -> RegisterNodeManager (retried with backoff,
 * 0.5 s doubling to 10 s, while the RM is unreachable) -> registered:
 * NodeHeartbeat every interval (retried the same way on failure, the
 * containers running meanwhile); RESYNC -> unregistered (register again at
 * once, listing the containers); SHUTDOWN -> the NM stops heartbeating and
 * ag_nm_wait_shutdown returns true.
 */
#include <errno.h>
#include <limits.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argot/sched.h"
#include "argot/sched/v1/sched.argot.h"
#include "argot/sched/v1/sched.pb-c.h"
#include "chans.h"
#include "launch.h"
#include "scheduler.h"
#include "token.h"

#define AG_NM_REMEMBERED   4096
#define RM_CALL_TIMEOUT_MS 5000
#define BACKOFF_MIN_MS     500
#define BACKOFF_MAX_MS     10000
#define CM_SERVICE         "argot.sched.v1.ContainerManagement"

typedef Argot__Sched__V1__ContainerId ContainerId;

/* A master key and the one before it (a roll keeps the previous key, so
 * that what was signed just before the roll still verifies). */
struct keys {
    const char *what; /* "container" or "NM-token", for logs and errors */
    ag_sched_key cur;
    ag_sched_key prev;
    bool have;
    bool have_prev;
};

/* One container this node started. */
struct container {
    char name[128]; /* container_<ts>_<app>_<attempt>_<id> */
    char app[64];   /* application_<ts>_<app> */
    int64_t ts;     /* the application id's cluster timestamp */
    int32_t app_id;
    int32_t attempt;
    int64_t id;
    int64_t memory_mb;
    int32_t vcores;
    int32_t priority;
    int64_t alloc_id;
    int64_t created_ms; /* wall clock */
    struct container *next;
};

struct ag_nm {
    ag_nm_config cfg;
    ag_errbuf err;
    char host[256]; /* this node's id: the host it serves on, */
    int port;       /* and its bound port */
    ag__launcher *launcher;
    ag_rpc_server *srv;
    ag_rpc_health *health;
    ag_admin *admin;
    ag_metrics *metrics;
    ag__rms rms;         /* the RMs (one active among them) */
    int rm_moves;        /* failovers since the last call that reached an RM */
    Argot__Sched__V1__ContainerManagement_Handlers handlers;
    atomic_bool serving;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* stop, shutdown ordered, resync, containers ended */
    bool oob;          /* containers ended: heartbeat now (under mu) */
    pthread_t hb;
    bool hb_started;
    bool started;
    bool stopping; /* ag_nm_stop called */
    bool stopped;
    bool shutdown_ordered; /* the RM said SHUTDOWN */
    bool registered;
    int32_t response_id; /* the RM's last heartbeat response's */
    int64_t rm_identifier;
    uint64_t interval_ms;  /* between heartbeats */
    ag__sched_tls tls;     /* into cfg */
    struct keys ctr_keys;  /* container-token master keys */
    struct keys nm_keys;   /* NM-token master keys */
    struct container *containers;
    char (*removed)[128]; /* ring of names the RM let us forget */
    size_t nremoved;      /* total ever added */

    ag_metric *m_launched, *m_refused, *m_completed, *m_heartbeats, *m_registrations,
        *m_rm_failures;
};

/* ---- protobuf-c on argot's allocator ------------------------------------------- */

static void *pb_alloc(void *ud, size_t size)
{
    (void)ud;
    return ag_malloc(size ? size : 1);
}

static void pb_free(void *ud, void *p)
{
    (void)ud;
    ag_free(p);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

/* ---- config ---------------------------------------------------------------------- */

void ag_nm_config_init(ag_nm_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->address, sizeof(c->address), "127.0.0.1:8040");
    snprintf(c->rack, sizeof(c->rack), "/default");
    snprintf(c->cgroup_parent, sizeof(c->cgroup_parent), "/sys/fs/cgroup/argot-nm");
    c->heartbeat_interval_ms = 1000;
    c->log_level = -1;
    c->shutdown_grace_ms = 5000;
    c->kill_grace_ms = 2000;
    c->memory_check = true;
}

/* A "host:port" string at key in map into out (required or not). */
/* rm: "host:port", "host:port,host:port" or a list of them (the RMs of an
 * ha pair or trio: the NM talks to whichever is active), into out. */
static int load_rms(ag_config *cfg, const ag_cnode *root, char *out, size_t cap)
{
    const ag_cnode *n = ag_cnode_get(root, "rm");
    if (!n || (ag_cnode_type_of(n) == AG_CNODE_SCALAR && !strchr(ag_cnode_scalar(n), ',')))
        return ag_config_get_hostport(cfg, root, "rm", AG_REQUIRED, out, cap); /* one RM */
    size_t at = 0;
    if (ag_cnode_type_of(n) == AG_CNODE_SEQ) {
        out[0] = 0;
        for (size_t i = 0; i < ag_cnode_len(n); i++) {
            const ag_cnode *it = ag_cnode_item(n, i);
            if (ag_cnode_type_of(it) != AG_CNODE_SCALAR)
                return ag_config_errorf(cfg, it, AG_E_CONFIG_TYPE, "rm: a list of host:port");
            at += (size_t)snprintf(out + at, at < cap ? cap - at : 0, "%s%s", i ? "," : "",
                                   ag_cnode_scalar(it));
        }
    } else if (ag_cnode_type_of(n) == AG_CNODE_SCALAR) {
        at = (size_t)snprintf(out, cap, "%s", ag_cnode_scalar(n));
    } else {
        return ag_config_errorf(cfg, n, AG_E_CONFIG_TYPE, "rm: host:port or a list of them");
    }
    if (at >= cap)
        return ag_config_errorf(cfg, n, AG_E_CONFIG_VALUE, "rm: longer than %zu characters",
                                cap - 1);
    if (!ag__rms_valid(out))
        return ag_config_errorf(cfg, n, AG_E_CONFIG_VALUE,
                                "rm: '%s' is not host:port, nor a list of 1 to %d of them", out,
                                AG__RMS_MAX);
    return 0;
}

static int load_resources(ag_config *cfg, const ag_cnode *root, ag_nm_config *c)
{
    static const char *const keys[] = {"memory_mb", "vcores", NULL};
    const ag_cnode *res = NULL;
    int64_t vcores = 0;
    int rc = ag_config_get_map(cfg, root, "resources", AG_REQUIRED, &res);
    if (rc == 0)
        rc = ag_config_check_keys(cfg, res, keys);
    if (rc == 0)
        rc = ag_config_get_i64(cfg, res, "memory_mb", AG_REQUIRED, 1, (int64_t)1 << 40,
                               &c->memory_mb);
    if (rc == 0)
        rc = ag_config_get_i64(cfg, res, "vcores", AG_REQUIRED, 1, 1 << 20, &vcores);
    c->vcores = (int32_t)vcores;
    return rc;
}

static int load_labels(ag_config *cfg, const ag_cnode *root, ag_nm_config *c)
{
    const ag_cnode *seq = NULL;
    int rc = ag_config_get_seq(cfg, root, "labels", AG_OPTIONAL, &seq);
    if (rc < 0 || !seq)
        return rc;
    if (ag_cnode_len(seq) > AG_NM_MAX_LABELS)
        return ag_config_errorf(cfg, seq, AG_E_CONFIG_VALUE, "at most %d labels", AG_NM_MAX_LABELS);
    for (size_t i = 0; i < ag_cnode_len(seq); i++) {
        const ag_cnode *it = ag_cnode_item(seq, i);
        const char *s = ag_cnode_scalar(it);
        if (ag_cnode_type_of(it) != AG_CNODE_SCALAR || !s[0] || strlen(s) >= 64 ||
            strpbrk(s, ", \t"))
            return ag_config_errorf(cfg, it, AG_E_CONFIG_VALUE,
                                    "a label is a non-empty word of at most 63 characters");
        snprintf(c->labels[i], sizeof(c->labels[i]), "%s", s);
    }
    c->nlabels = ag_cnode_len(seq);
    return 0;
}

/* cgroup: off, or cgroup: {parent: /sys/fs/cgroup/NAME}. */
static int load_cgroup(ag_config *cfg, const ag_cnode *root, ag_nm_config *c)
{
    static const char *const keys[] = {"parent", NULL};
    const ag_cnode *n = ag_cnode_get(root, "cgroup");
    if (!n)
        return 0;
    if (ag_cnode_type_of(n) == AG_CNODE_SCALAR) {
        const char *s = ag_cnode_scalar(n);
        if (strcmp(s, "off") != 0 && strcmp(s, "false") != 0)
            return ag_config_errorf(cfg, n, AG_E_CONFIG_VALUE,
                                    "cgroup is 'off' or {parent: /sys/fs/cgroup/NAME}, got '%s'",
                                    s);
        c->cgroup_parent[0] = '\0';
        return 0;
    }
    const char *parent = NULL;
    int rc = ag_config_check_keys(cfg, n, keys);
    if (rc == 0)
        rc = ag_config_get_str(cfg, n, "parent", AG_REQUIRED, &parent);
    if (rc < 0)
        return rc;
    if (parent[0] != '/' || strlen(parent) >= sizeof(c->cgroup_parent) - 200)
        return ag_config_errorf(cfg, ag_cnode_get(n, "parent"), AG_E_CONFIG_VALUE,
                                "cgroup parent must be an absolute path, got '%s'", parent);
    snprintf(c->cgroup_parent, sizeof(c->cgroup_parent), "%s", parent);
    return 0;
}

static int load_misc(ag_config *cfg, const ag_cnode *root, ag_nm_config *c)
{
    const char *rack = NULL;
    int rc = ag_config_get_str(cfg, root, "rack", AG_OPTIONAL, &rack);
    if (rc == 0 && rack && (rack[0] != '/' || strlen(rack) >= sizeof(c->rack)))
        rc = ag_config_errorf(cfg, ag_cnode_get(root, "rack"), AG_E_CONFIG_VALUE,
                              "a rack is a path like '/default', got '%s'", rack);
    if (rc == 0 && rack)
        snprintf(c->rack, sizeof(c->rack), "%s", rack);
    if (rc == 0)
        rc = ag_config_get_duration_ms(cfg, root, "heartbeat_interval", AG_OPTIONAL,
                                       &c->heartbeat_interval_ms);
    if (rc == 0 && (c->heartbeat_interval_ms < 10 || c->heartbeat_interval_ms > 3600000))
        rc = ag_config_errorf(cfg, ag_cnode_get(root, "heartbeat_interval"), AG_E_CONFIG_VALUE,
                              "heartbeat_interval must be between 10ms and 1h");
    if (rc == 0) {
        ag_daemon_conf d = {.log_level = c->log_level, .shutdown_grace_ms = c->shutdown_grace_ms};
        snprintf(d.admin, sizeof(d.admin), "%s", c->admin);
        rc = ag_config_get_daemon(cfg, root, &d);
        snprintf(c->admin, sizeof(c->admin), "%s", d.admin);
        c->log_level = d.log_level;
        c->shutdown_grace_ms = d.shutdown_grace_ms;
    }
    if (rc == 0)
        rc = ag_config_get_duration_ms(cfg, root, "kill_grace", AG_OPTIONAL, &c->kill_grace_ms);
    if (rc == 0)
        rc = ag_config_get_bool(cfg, root, "memory_check", AG_OPTIONAL, &c->memory_check);
    if (rc == 0 && c->kill_grace_ms == 0)
        c->kill_grace_ms = 1;
    if (rc == 0)
        rc = ag_config_get_bool(cfg, root, "recovery", AG_OPTIONAL, &c->recovery);
    return rc;
}

int ag_nm_config_load(ag_nm_config *c, const char *path, char *err, size_t cap)
{
    static const char *const top[] = {"rm",       "address",      "resources", "work_dir",
                                      "rack",     "labels",       "heartbeat_interval",
                                      "admin",    "cgroup",       "log",       "shutdown_grace",
                                      "kill_grace", "recovery",   "memory_check", "tls", NULL};
    ag_config *cfg = ag_config_new();
    if (!cfg) {
        snprintf(err, cap, "%s: %s", path, ag_strerror(AG_E_NOMEM));
        return AG_E_NOMEM;
    }
    const ag_cnode *root = NULL;
    int rc = ag_config_load_file(cfg, path);
    if (rc == 0) {
        root = ag_config_root(cfg);
        if (ag_cnode_type_of(root) != AG_CNODE_MAP)
            rc = ag_config_errorf(cfg, root, AG_E_CONFIG_TYPE, "the config must be a mapping");
    }
    if (rc == 0)
        rc = ag_config_check_keys(cfg, root, top);
    if (rc == 0)
        rc = load_rms(cfg, root, c->rm, sizeof(c->rm));
    if (rc == 0)
        rc = ag_config_get_hostport(cfg, root, "address", AG_OPTIONAL, c->address, sizeof(c->address));
    if (rc == 0)
        rc = load_resources(cfg, root, c);
    if (rc == 0)
        rc = ag_config_get_path(cfg, root, "work_dir", AG_REQUIRED, c->work_dir,
                                sizeof(c->work_dir));
    if (rc == 0)
        rc = load_labels(cfg, root, c);
    if (rc == 0)
        rc = load_cgroup(cfg, root, c);
    if (rc == 0)
        rc = load_misc(cfg, root, c);
    if (rc == 0)
        rc = ag__sched_tls_load(cfg, root, NULL, c->tls_cert, c->tls_key, c->tls_ca,
                                sizeof(c->tls_cert), NULL);
    if (rc < 0)
        snprintf(err, cap, "%s", ag_config_errmsg(cfg));
    ag_config_free(cfg);
    return rc;
}

/* ---- ids ---------------------------------------------------------------------------- */

/* Storage for a ContainerId with its nested ids, filled from a container. */
struct cid_store {
    ContainerId cid;
    Argot__Sched__V1__ApplicationAttemptId attempt;
    Argot__Sched__V1__ApplicationId app;
};

static ContainerId *cid_fill(struct cid_store *s, const struct container *c)
{
    argot__sched__v1__container_id__init(&s->cid);
    argot__sched__v1__application_attempt_id__init(&s->attempt);
    argot__sched__v1__application_id__init(&s->app);
    s->app.cluster_timestamp = c->ts;
    s->app.id = c->app_id;
    s->attempt.application_id = &s->app;
    s->attempt.attempt_id = c->attempt;
    s->cid.app_attempt_id = &s->attempt;
    s->cid.id = c->id;
    return &s->cid;
}

/* The parts of a ContainerId (missing parts read as 0). */
static void cid_parts(const ContainerId *id, int64_t *ts, int32_t *app, int32_t *attempt,
                      int64_t *n)
{
    const Argot__Sched__V1__ApplicationAttemptId *a = id ? id->app_attempt_id : NULL;
    const Argot__Sched__V1__ApplicationId *ap = a ? a->application_id : NULL;
    *ts = ap ? ap->cluster_timestamp : 0;
    *app = ap ? ap->id : 0;
    *attempt = a ? a->attempt_id : 0;
    *n = id ? id->id : 0;
}

static const char *cid_str(const ContainerId *id, char *buf, size_t cap)
{
    return ag_sched_container_id_str(id, buf, cap);
}

static struct container *find_container(ag_nm *nm, const char *name)
{
    for (struct container *c = nm->containers; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static bool was_removed(ag_nm *nm, const char *name)
{
    size_t n = nm->nremoved < AG_NM_REMEMBERED ? nm->nremoved : AG_NM_REMEMBERED;
    for (size_t i = 0; i < n; i++)
        if (strcmp(nm->removed[i], name) == 0)
            return true;
    return false;
}

/* ---- keys ----------------------------------------------------------------------------- */

/* Takes a master key from the RM (NULL: none sent) into ks; the key it
 * replaces becomes the previous one. nm->mu held. */
static void take_key(struct keys *ks, const Argot__Sched__V1__MasterKey *k)
{
    if (!k || k->key_id == 0)
        return;
    if (k->bytes.len != AG_SCHED_KEY_BYTES) {
        AG_LOG(AG_LOG_WARN, "nm", "master_key_ignored kind=%s key_id=%d len=%zu", ks->what,
               (int)k->key_id, k->bytes.len);
        return;
    }
    if (ks->have && ks->cur.id == k->key_id &&
        memcmp(ks->cur.bytes, k->bytes.data, AG_SCHED_KEY_BYTES) == 0)
        return;
    if (ks->have) {
        ks->prev = ks->cur;
        ks->have_prev = true;
    }
    ks->cur.id = k->key_id;
    memcpy(ks->cur.bytes, k->bytes.data, AG_SCHED_KEY_BYTES);
    ks->have = true;
    AG_LOG(AG_LOG_INFO, "nm", "master_key kind=%s key_id=%d previous=%d", ks->what, (int)ks->cur.id,
           ks->have_prev ? (int)ks->prev.id : 0);
}

/* The key of id, or NULL. nm->mu held. */
static const ag_sched_key *key_of(const struct keys *ks, int32_t id)
{
    if (ks->have && ks->cur.id == id)
        return &ks->cur;
    if (ks->have_prev && ks->prev.id == id)
        return &ks->prev;
    return NULL;
}

/* Why no key of ks has id: into why (prefix names the token). */
static void key_unknown(const struct keys *ks, int32_t id, const char *prefix, char *why,
                        size_t cap)
{
    if (!ks->have)
        snprintf(why, cap, "%s: this node has no %s master key yet (not registered with the RM)",
                 prefix, ks->what);
    else
        snprintf(why, cap, "%s: master key %d is unknown to this node (it knows key %d%s)", prefix,
                 (int)id, (int)ks->cur.id, ks->have_prev ? " and the previous one" : "");
}

/* ---- ContainerManagement ---------------------------------------------------------------- */

/* Checks a start request's token (invariant 1). 0 with *tid (free with
 * protobuf_c_message_free_unpacked on pb_allocator), or a negative code
 * with why set (*tid set too when the identifier could be read). nm->mu
 * held. */
static int check_token(ag_nm *nm, const Argot__Sched__V1__Token *t,
                       Argot__Sched__V1__ContainerTokenIdentifier **tid, char *why, size_t cap)
{
    char name[128];
    *tid = NULL;
    if (!t || t->identifier.len == 0) {
        snprintf(why, cap, "no container token: nothing starts without an allocation");
        return AG_E_PERM;
    }
    *tid = (Argot__Sched__V1__ContainerTokenIdentifier *)protobuf_c_message_unpack(
        &argot__sched__v1__container_token_identifier__descriptor, &pb_allocator, t->identifier.len,
        t->identifier.data);
    if (!*tid) {
        snprintf(why, cap, "container token: the identifier is not a ContainerTokenIdentifier");
        return AG_E_PERM;
    }
    const Argot__Sched__V1__ContainerTokenIdentifier *id = *tid;
    cid_str(id->container_id, name, sizeof(name));
    if (!id->container_id || !id->container_id->app_attempt_id ||
        !id->container_id->app_attempt_id->application_id) {
        snprintf(why, cap, "container token: the identifier names no container");
        return AG_E_PERM;
    }
    const ag_sched_key *k = key_of(&nm->ctr_keys, id->master_key_id);
    if (!k) {
        char prefix[160];
        snprintf(prefix, sizeof(prefix), "container token of %s", name);
        key_unknown(&nm->ctr_keys, id->master_key_id, prefix, why, cap);
        return AG_E_PERM;
    }
    if (!ag__sched_mac_ok(k, t->identifier.data, t->identifier.len, t->password.data,
                          t->password.len)) {
        snprintf(why, cap,
                 "container token of %s: invalid password (forged, or signed by "
                 "another RM)",
                 name);
        return AG_E_PERM;
    }
    const Argot__Sched__V1__NodeId *node = id->node_id;
    if (!node || !node->host || strcmp(node->host, nm->host) != 0 || node->port != nm->port) {
        snprintf(why, cap, "container token of %s is for node %s:%d, this is node %s:%d", name,
                 node && node->host ? node->host : "", node ? (int)node->port : 0, nm->host,
                 nm->port);
        return AG_E_PERM;
    }
    int64_t now = ag_wall_ms();
    if (id->expiry_time <= now) {
        snprintf(why, cap, "container token of %s expired %lld ms ago", name,
                 (long long)(now - id->expiry_time));
        return AG_E_PERM;
    }
    if (find_container(nm, name) || was_removed(nm, name)) {
        snprintf(why, cap, "container %s was already started on this node", name);
        return AG_E_EXISTS;
    }
    return 0;
}

/* The application a caller's verified NM token is for. */
struct nm_auth {
    int64_t ts;
    int32_t app_id;
    char app[64]; /* application_<ts>_<id> */
};

/* Whether container id belongs to the token's application (an NM token is
 * for an attempt; containers of earlier attempts that the application kept
 * are its own too). Otherwise why says so. */
static bool auth_allows(const struct nm_auth *auth, const ContainerId *id, char *why, size_t cap)
{
    int64_t ts, n;
    int32_t app, attempt;
    char name[128];
    cid_parts(id, &ts, &app, &attempt, &n);
    if (ts == auth->ts && app == auth->app_id)
        return true;
    snprintf(why, cap,
             "permission denied: container %s is not of application %s, which the NM token "
             "is for",
             cid_str(id, name, sizeof(name)), auth->app);
    return false;
}

/* Checks the NM token in call's metadata (YARN's NMToken): issued by the RM
 * (the HMAC under its current or previous NM-token master key) to an
 * application attempt for this node, and not expired. AG_RPC_OK with
 * *auth set, or the call's status with why set: UNAUTHENTICATED when it
 * is missing, malformed, forged or expired, PERMISSION_DENIED when it is
 * another node's. nm->mu held. The token is never logged. */
static int check_nm_token(ag_nm *nm, ag_rpc_call *call, struct nm_auth *auth, char *why, size_t cap)
{
    const char *key, *text = NULL;
    char buf[2048];
    ag_slice v;
    for (size_t i = 0; (key = ag_rpc_call_metadata(call, false, i, &v)); i++)
        if (strcmp(key, AG_SCHED_NM_TOKEN_KEY) == 0 && v.len < sizeof(buf)) {
            memcpy(buf, v.ptr, v.len);
            buf[v.len] = '\0';
            text = buf;
        }
    if (!text) {
        snprintf(why, cap,
                 "no NM token (metadata %s): only an application the RM gave containers on "
                 "this node may call it",
                 AG_SCHED_NM_TOKEN_KEY);
        return AG_RPC_UNAUTHENTICATED;
    }
    uint8_t *id = NULL, *pw = NULL;
    size_t idlen = 0, pwlen = 0;
    int st = AG_RPC_UNAUTHENTICATED;
    Argot__Sched__V1__ContainerTokenIdentifier *ti = NULL;
    if (ag__sched_token_parse(text, &id, &idlen, &pw, &pwlen) < 0) {
        snprintf(why, cap, "the NM token is not id.password in base64url");
        goto out;
    }
    ti = (Argot__Sched__V1__ContainerTokenIdentifier *)protobuf_c_message_unpack(
        &argot__sched__v1__container_token_identifier__descriptor, &pb_allocator, idlen, id);
    const Argot__Sched__V1__ApplicationAttemptId *att =
        ti && ti->container_id ? ti->container_id->app_attempt_id : NULL;
    if (!att || !att->application_id || ti->container_id->id != 0) {
        snprintf(why, cap, "the NM token's identifier names no application attempt%s",
                 ti && ti->container_id && ti->container_id->id ? " (a container token?)" : "");
        goto out;
    }
    char app[64];
    ag_sched_format_app_id(att->application_id->cluster_timestamp, att->application_id->id, app,
                           sizeof(app));
    const ag_sched_key *k = key_of(&nm->nm_keys, ti->master_key_id);
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "NM token of %s", app);
    if (!k) {
        key_unknown(&nm->nm_keys, ti->master_key_id, prefix, why, cap);
        goto out;
    }
    if (!ag__sched_mac_ok(k, id, idlen, pw, pwlen)) {
        snprintf(why, cap, "%s: invalid password (forged, or signed by another RM)", prefix);
        goto out;
    }
    const Argot__Sched__V1__NodeId *node = ti->node_id;
    if (!node || !node->host || strcmp(node->host, nm->host) != 0 || node->port != nm->port) {
        snprintf(why, cap, "%s is for node %s:%d, this is node %s:%d", prefix,
                 node && node->host ? node->host : "", node ? (int)node->port : 0, nm->host,
                 nm->port);
        st = AG_RPC_PERMISSION_DENIED;
        goto out;
    }
    int64_t now = ag_wall_ms();
    if (ti->expiry_time <= now) {
        snprintf(why, cap, "%s expired %lld ms ago", prefix, (long long)(now - ti->expiry_time));
        goto out;
    }
    auth->ts = att->application_id->cluster_timestamp;
    auth->app_id = att->application_id->id;
    snprintf(auth->app, sizeof(auth->app), "%s", app);
    st = AG_RPC_OK;
out:
    if (ti)
        protobuf_c_message_free_unpacked(&ti->base, &pb_allocator);
    if (pw)
        ag_wipe(pw, pwlen);
    ag_free(id);
    ag_free(pw);
    ag_wipe(buf, sizeof(buf));
    return st;
}

/* Checks the call's NM token (nm->mu taken here); on refusal sets the
 * call's status message, logs why and returns the status. */
static int authenticate(ag_nm *nm, ag_rpc_call *call, struct nm_auth *auth)
{
    char why[512];
    pthread_mutex_lock(&nm->mu);
    int st = check_nm_token(nm, call, auth, why, sizeof(why));
    pthread_mutex_unlock(&nm->mu);
    if (st != AG_RPC_OK) {
        const char *m = ag_rpc_call_method(call);
        AG_LOG(AG_LOG_WARN, "nm", "call_refused method=%s status=%s reason=\"%s\"",
               m ? strrchr(m, '/') + 1 : "?", ag_rpc_status_name(st), why);
        ag_metric_add(nm->m_refused, 1);
        ag_rpc_call_set_status_message(call, why);
    }
    return st;
}

/* Builds the launch spec of a verified container and launches it. 0 or a
 * code with why set. nm->mu held. */
static int launch(ag_nm *nm, const Argot__Sched__V1__ContainerTokenIdentifier *id,
                  const Argot__Sched__V1__ContainerLaunchContext *ctx, struct container *c,
                  char *why, size_t cap)
{
    char dir[PATH_MAX], err[512];
    if (!ctx || ctx->n_command == 0 || !ctx->command[0][0]) {
        snprintf(why, cap, "%s: the launch context has no command", c->name);
        return AG_E_INVAL;
    }
    if (snprintf(dir, sizeof(dir), "%s/%s/%s", nm->cfg.work_dir, c->app, c->name) >=
        (int)sizeof(dir)) {
        snprintf(why, cap, "%s: the work directory's path is too long", c->name);
        return AG_E_INVAL;
    }
    size_t nenv = ctx->n_environment + 3;
    char **env = ag_calloc(nenv, sizeof(*env));
    ag__launch_file *files = ag_calloc(ctx->n_files + 1, sizeof(*files));
    int rc = env && files ? 0 : AG_E_NOMEM;
    for (size_t i = 0; rc == 0 && i < ctx->n_environment; i++) {
        const char *k = ctx->environment[i]->key, *v = ctx->environment[i]->value;
        if (!k || !k[0] || strchr(k, '=')) {
            snprintf(why, cap, "%s: environment variable name '%s' is not valid", c->name,
                     k ? k : "");
            rc = AG_E_INVAL;
            break;
        }
        size_t n = strlen(k) + strlen(v ? v : "") + 2;
        if (!(env[i] = ag_malloc(n)))
            rc = AG_E_NOMEM;
        else
            snprintf(env[i], n, "%s=%s", k, v ? v : "");
    }
    /* the NM's own variables come last, so that they win */
    size_t e = ctx->n_environment;
    char host[300];
    snprintf(host, sizeof(host), "%s:%d", nm->host, nm->port);
    const char *mine[3][2] = {
        {"ARGOT_CONTAINER_ID", c->name}, {"ARGOT_APP_ID", c->app}, {"ARGOT_NM_HOST", host}};
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        size_t n = strlen(mine[i][0]) + strlen(mine[i][1]) + 2;
        if (!(env[e + i] = ag_malloc(n)))
            rc = AG_E_NOMEM;
        else
            snprintf(env[e + i], n, "%s=%s", mine[i][0], mine[i][1]);
    }
    for (size_t i = 0; rc == 0 && i < ctx->n_files; i++) {
        files[i].path = ctx->files[i]->path ? ctx->files[i]->path : "";
        files[i].data = ctx->files[i]->content.data;
        files[i].len = ctx->files[i]->content.len;
        files[i].mode = ctx->files[i]->mode;
    }
    if (rc == AG_E_NOMEM)
        snprintf(why, cap, "%s: %s", c->name, ag_strerror(rc));
    if (rc == 0) {
        ag__launch_spec s = {.id = c->name,
                             .dir = dir,
                             .argv = (const char *const *)ctx->command,
                             .argc = ctx->n_command,
                             .env = (const char *const *)env,
                             .nenv = nenv,
                             .files = files,
                             .nfiles = ctx->n_files,
                             .memory_mb = id->resource ? id->resource->memory_mb : 0,
                             .vcores = id->resource ? id->resource->vcores : 0};
        rc = ag__launch_start(nm->launcher, &s, err, sizeof(err));
        if (rc < 0)
            snprintf(why, cap, "%s: cannot launch: %.360s", c->name, err);
    }
    for (size_t i = 0; env && i < nenv; i++)
        ag_free(env[i]);
    ag_free(env);
    ag_free(files);
    return rc;
}

/* Verifies and starts one request. 0 with the container added, or a code
 * with why set. */
static int start_one(ag_nm *nm, const struct nm_auth *auth,
                     const Argot__Sched__V1__StartContainerRequest *r,
                     Argot__Sched__V1__ContainerTokenIdentifier **tid, char *why, size_t cap)
{
    pthread_mutex_lock(&nm->mu);
    int rc = nm->stopping ? AG_E_STATE : check_token(nm, r->container_token, tid, why, cap);
    if (nm->stopping)
        snprintf(why, cap, "the node manager is stopping");
    if (rc == 0 && !auth_allows(auth, (*tid)->container_id, why, cap))
        rc = AG_E_PERM;
    struct container *c = NULL;
    if (rc == 0 && !(c = ag_calloc(1, sizeof(*c)))) {
        snprintf(why, cap, "%s", ag_strerror(AG_E_NOMEM));
        rc = AG_E_NOMEM;
    }
    if (rc == 0) {
        const Argot__Sched__V1__ContainerTokenIdentifier *id = *tid;
        cid_parts(id->container_id, &c->ts, &c->app_id, &c->attempt, &c->id);
        cid_str(id->container_id, c->name, sizeof(c->name));
        snprintf(c->app, sizeof(c->app), "application_%lld_%04d", (long long)c->ts, (int)c->app_id);
        c->memory_mb = id->resource ? id->resource->memory_mb : 0;
        c->vcores = id->resource ? id->resource->vcores : 0;
        c->priority = id->priority;
        c->alloc_id = id->allocation_request_id;
        c->created_ms = ag_wall_ms();
        rc = launch(nm, id, r->container_launch_context, c, why, cap);
    }
    if (rc == 0) {
        c->next = nm->containers;
        nm->containers = c;
    } else {
        ag_free(c);
    }
    pthread_mutex_unlock(&nm->mu);
    return rc;
}

static int start_containers(ag_rpc_call *call, const Argot__Sched__V1__StartContainersRequest *req,
                            void *ud)
{
    ag_nm *nm = ud;
    size_t n = req->n_start_container_request;
    struct nm_auth auth;
    int st = authenticate(nm, call, &auth);
    if (st != AG_RPC_OK)
        return st;
    Argot__Sched__V1__StartContainersResponse resp =
        ARGOT__SCHED__V1__START_CONTAINERS_RESPONSE__INIT;
    Argot__Sched__V1__ContainerTokenIdentifier **tids = ag_calloc(n + 1, sizeof(*tids));
    ContainerId **ok = ag_calloc(n + 1, sizeof(*ok));
    Argot__Sched__V1__ContainerExceptionMap *fails = ag_calloc(n + 1, sizeof(*fails));
    Argot__Sched__V1__ContainerExceptionMap **failp = ag_calloc(n + 1, sizeof(*failp));
    char(*whys)[512] = ag_calloc(n + 1, sizeof(*whys));
    int status = AG_RPC_OK;
    if (!tids || !ok || !fails || !failp || !whys) {
        ag_rpc_call_set_status_message(call, "node manager: out of memory");
        status = AG_RPC_RESOURCE_EXHAUSTED;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = start_one(nm, &auth, req->start_container_request[i], &tids[i], whys[i],
                           sizeof(whys[i]));
        if (rc == 0) {
            ok[resp.n_succeeded_requests++] = tids[i]->container_id;
            ag_metric_add(nm->m_launched, 1);
            continue;
        }
        AG_LOG(AG_LOG_WARN, "nm", "container_refused reason=\"%s\"", whys[i]);
        ag_metric_add(nm->m_refused, 1);
        Argot__Sched__V1__ContainerExceptionMap *f = &fails[resp.n_failed_requests];
        argot__sched__v1__container_exception_map__init(f);
        f->container_id = tids[i] ? tids[i]->container_id : NULL;
        f->exception = whys[i];
        failp[resp.n_failed_requests++] = f;
    }
    resp.succeeded_requests = ok;
    resp.failed_requests = failp;
    if (argot__sched__v1__container_management__start_containers__send_response(call, &resp, 0) < 0)
        status = AG_RPC_INTERNAL;
out:
    for (size_t i = 0; tids && i < n; i++)
        if (tids[i])
            protobuf_c_message_free_unpacked(&tids[i]->base, &pb_allocator);
    ag_free(tids);
    ag_free(ok);
    ag_free(fails);
    ag_free(failp);
    ag_free(whys);
    return status;
}

/* The status of container c into st (with its storage). nm->mu held. */
struct status_store {
    Argot__Sched__V1__ContainerStatus st;
    struct cid_store id;
    Argot__Sched__V1__Resource res;
    char diagnostics[600];
};

static void status_fill(ag_nm *nm, const struct container *c, struct status_store *s)
{
    ag__launch_status ls;
    argot__sched__v1__container_status__init(&s->st);
    argot__sched__v1__resource__init(&s->res);
    s->res.memory_mb = c->memory_mb;
    s->res.vcores = c->vcores;
    s->st.container_id = cid_fill(&s->id, c);
    s->st.capability = &s->res;
    if (ag__launch_status_get(nm->launcher, c->name, &ls) < 0) {
        s->st.state = ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE;
        s->st.exit_status = -1000;
        snprintf(s->diagnostics, sizeof(s->diagnostics), "lost by the launcher");
    } else if (ls.running) {
        s->st.state = ARGOT__SCHED__V1__CONTAINER_STATE__C_RUNNING;
        snprintf(s->diagnostics, sizeof(s->diagnostics), "running pid=%d; limits: %.300s",
                 (int)ls.pid, ls.limits);
    } else {
        s->st.state = ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE;
        s->st.exit_status = ls.exit_status;
        snprintf(s->diagnostics, sizeof(s->diagnostics), "%s", ls.diagnostics);
    }
    s->st.diagnostics = s->diagnostics;
}

static int stop_containers(ag_rpc_call *call, const Argot__Sched__V1__StopContainersRequest *req,
                           void *ud)
{
    ag_nm *nm = ud;
    size_t n = req->n_container_id;
    struct nm_auth auth;
    int st = authenticate(nm, call, &auth);
    if (st != AG_RPC_OK)
        return st;
    Argot__Sched__V1__StopContainersResponse resp =
        ARGOT__SCHED__V1__STOP_CONTAINERS_RESPONSE__INIT;
    ContainerId **ok = ag_calloc(n + 1, sizeof(*ok));
    Argot__Sched__V1__ContainerExceptionMap *fails = ag_calloc(n + 1, sizeof(*fails));
    Argot__Sched__V1__ContainerExceptionMap **failp = ag_calloc(n + 1, sizeof(*failp));
    char(*whys)[300] = ag_calloc(n + 1, sizeof(*whys));
    int status = AG_RPC_OK;
    if (!ok || !fails || !failp || !whys) {
        ag_rpc_call_set_status_message(call, "node manager: out of memory");
        status = AG_RPC_RESOURCE_EXHAUSTED;
        goto out;
    }
    pthread_mutex_lock(&nm->mu);
    for (size_t i = 0; i < n; i++) {
        char name[128];
        cid_str(req->container_id[i], name, sizeof(name));
        bool mine = auth_allows(&auth, req->container_id[i], whys[i], sizeof(whys[i]));
        if (mine && find_container(nm, name) &&
            ag__launch_stop(nm->launcher, name, AG__EXIT_STOPPED) == 0) {
            ok[resp.n_succeeded_requests++] = req->container_id[i];
            continue;
        }
        Argot__Sched__V1__ContainerExceptionMap *f = &fails[resp.n_failed_requests];
        argot__sched__v1__container_exception_map__init(f);
        f->container_id = req->container_id[i];
        if (mine)
            snprintf(whys[i], sizeof(whys[i]), "container %s is not on this node", name);
        f->exception = whys[i];
        failp[resp.n_failed_requests++] = f;
    }
    pthread_mutex_unlock(&nm->mu);
    resp.succeeded_requests = ok;
    resp.failed_requests = failp;
    if (argot__sched__v1__container_management__stop_containers__send_response(call, &resp, 0) < 0)
        status = AG_RPC_INTERNAL;
out:
    ag_free(ok);
    ag_free(fails);
    ag_free(failp);
    ag_free(whys);
    return status;
}

static int get_statuses(ag_rpc_call *call, const Argot__Sched__V1__GetContainerStatusesRequest *req,
                        void *ud)
{
    ag_nm *nm = ud;
    size_t n = req->n_container_id;
    struct nm_auth auth;
    int st = authenticate(nm, call, &auth);
    if (st != AG_RPC_OK)
        return st;
    Argot__Sched__V1__GetContainerStatusesResponse resp =
        ARGOT__SCHED__V1__GET_CONTAINER_STATUSES_RESPONSE__INIT;
    struct status_store *ss = ag_calloc(n + 1, sizeof(*ss));
    Argot__Sched__V1__ContainerStatus **stp = ag_calloc(n + 1, sizeof(*stp));
    Argot__Sched__V1__ContainerExceptionMap *fails = ag_calloc(n + 1, sizeof(*fails));
    Argot__Sched__V1__ContainerExceptionMap **failp = ag_calloc(n + 1, sizeof(*failp));
    char(*whys)[300] = ag_calloc(n + 1, sizeof(*whys));
    int status = AG_RPC_OK;
    if (!ss || !stp || !fails || !failp || !whys) {
        ag_rpc_call_set_status_message(call, "node manager: out of memory");
        status = AG_RPC_RESOURCE_EXHAUSTED;
        goto out;
    }
    pthread_mutex_lock(&nm->mu);
    for (size_t i = 0; i < n; i++) {
        char name[128];
        cid_str(req->container_id[i], name, sizeof(name));
        bool mine = auth_allows(&auth, req->container_id[i], whys[i], sizeof(whys[i]));
        const struct container *c = mine ? find_container(nm, name) : NULL;
        if (c) {
            status_fill(nm, c, &ss[resp.n_status]);
            stp[resp.n_status] = &ss[resp.n_status].st;
            resp.n_status++;
            continue;
        }
        Argot__Sched__V1__ContainerExceptionMap *f = &fails[resp.n_failed_requests];
        argot__sched__v1__container_exception_map__init(f);
        f->container_id = req->container_id[i];
        if (mine)
            snprintf(whys[i], sizeof(whys[i]), "container %s is not on this node", name);
        f->exception = whys[i];
        failp[resp.n_failed_requests++] = f;
    }
    pthread_mutex_unlock(&nm->mu);
    resp.status = stp;
    resp.failed_requests = failp;
    if (argot__sched__v1__container_management__get_container_statuses__send_response(call, &resp,
                                                                                      0) < 0)
        status = AG_RPC_INTERNAL;
out:
    ag_free(ss);
    ag_free(stp);
    ag_free(fails);
    ag_free(failp);
    ag_free(whys);
    return status;
}

/* ---- the RM session ------------------------------------------------------------------------ */

/* Statuses of every container in the table: arrays for a heartbeat or a
 * registration (ag_free both). nm->mu held. 0 or AG_E_NOMEM. */
static int collect(ag_nm *nm, struct status_store **ss, size_t *n)
{
    size_t k = 0;
    for (struct container *c = nm->containers; c; c = c->next)
        k++;
    *ss = ag_calloc(k + 1, sizeof(**ss));
    if (!*ss)
        return AG_E_NOMEM;
    k = 0;
    for (struct container *c = nm->containers; c; c = c->next)
        status_fill(nm, c, &(*ss)[k++]);
    *n = k;
    return 0;
}

static Argot__Sched__V1__NodeId *node_fill(ag_nm *nm, Argot__Sched__V1__NodeId *node)
{
    argot__sched__v1__node_id__init(node);
    node->host = nm->host;
    node->port = nm->port;
    return node;
}

/* Registers with the RM. 0 (registered, or shut down by it) or a negative
 * code (the RM could not be reached or refused: retry later). */
static int rm_register(ag_nm *nm)
{
    Argot__Sched__V1__RegisterNodeManagerRequest req =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_REQUEST__INIT;
    Argot__Sched__V1__NodeId node;
    Argot__Sched__V1__Resource res = ARGOT__SCHED__V1__RESOURCE__INIT;
    struct status_store *ss = NULL;
    size_t n = 0;
    char *labels[AG_NM_MAX_LABELS];
    Argot__Sched__V1__RegisterNodeManagerResponse *resp = NULL;
    char *msg = NULL;
    pthread_mutex_lock(&nm->mu);
    int rc = collect(nm, &ss, &n);
    pthread_mutex_unlock(&nm->mu);
    Argot__Sched__V1__NMContainerStatus *cs = ag_calloc(n + 1, sizeof(*cs));
    Argot__Sched__V1__NMContainerStatus **csp = ag_calloc(n + 1, sizeof(*csp));
    Argot__Sched__V1__ApplicationId **apps = ag_calloc(n + 1, sizeof(*apps));
    if (rc < 0 || !cs || !csp || !apps) {
        rc = AG_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        argot__sched__v1__nmcontainer_status__init(&cs[i]);
        cs[i].container_id = ss[i].st.container_id;
        cs[i].container_state = ss[i].st.state;
        cs[i].resource = &ss[i].res;
        cs[i].diagnostics = ss[i].diagnostics;
        cs[i].container_exit_status = ss[i].st.exit_status;
        csp[i] = &cs[i];
        /* running applications, each once */
        const Argot__Sched__V1__ApplicationId *a = &ss[i].id.app;
        bool seen = ss[i].st.state != ARGOT__SCHED__V1__CONTAINER_STATE__C_RUNNING;
        for (size_t j = 0; !seen && j < req.n_running_applications; j++)
            seen = apps[j]->cluster_timestamp == a->cluster_timestamp && apps[j]->id == a->id;
        if (!seen)
            apps[req.n_running_applications++] = &ss[i].id.app;
    }
    for (size_t i = 0; i < nm->cfg.nlabels; i++)
        labels[i] = nm->cfg.labels[i];
    req.node_id = node_fill(nm, &node);
    req.http_port = nm->admin ? ag_admin_port(nm->admin) : 0;
    res.memory_mb = nm->cfg.memory_mb;
    res.vcores = nm->cfg.vcores;
    req.resource = &res;
    req.nm_version = (char *)"argot";
    req.n_container_statuses = n;
    req.container_statuses = csp;
    req.running_applications = apps;
    req.n_node_labels = nm->cfg.nlabels;
    req.node_labels = labels;
    req.rack = nm->cfg.rack;
    const char *rm_target = NULL;
    ag_rpc_channel *rm_ch = ag__rms_channel(&nm->rms, &rm_target);
    int st = argot__sched__v1__resource_tracker__register_node_manager__invoke(
        rm_ch, &req, ag_deadline_in_ms(RM_CALL_TIMEOUT_MS), &resp, &msg);
    nm->rm_moves = st == AG_RPC_OK                             ? 0
                   : ag__rms_failed(&nm->rms, rm_ch, st) ? nm->rm_moves + 1
                                                               : nm->rm_moves;
    if (st != AG_RPC_OK) {
        AG_LOG(AG_LOG_WARN, "nm", "register_failed rm=%s status=%s message=\"%s\"", rm_target,
               ag_rpc_status_name(st), msg ? msg : "");
        ag_metric_add(nm->m_rm_failures, 1);
        rc = AG_E_AGAIN;
        goto out;
    }
    pthread_mutex_lock(&nm->mu);
    if (resp->node_action == ARGOT__SCHED__V1__NODE_ACTION__SHUTDOWN) {
        nm->shutdown_ordered = true;
        pthread_cond_broadcast(&nm->cv);
        AG_LOG(AG_LOG_WARN, "nm", "rm_shutdown diagnostics=\"%s\"",
               resp->diagnostics_message ? resp->diagnostics_message : "");
    } else if (resp->node_action == ARGOT__SCHED__V1__NODE_ACTION__RESYNC) {
        rc = AG_E_AGAIN;
    } else {
        take_key(&nm->ctr_keys, resp->container_token_master_key);
        take_key(&nm->nm_keys, resp->nm_token_master_key);
        nm->registered = true;
        nm->response_id = 0;
        nm->rm_identifier = resp->rm_identifier;
        if (resp->next_heartbeat_interval_ms > 0)
            nm->interval_ms = (uint64_t)resp->next_heartbeat_interval_ms;
        AG_LOG(AG_LOG_INFO, "nm",
               "registered rm=%s node=%s:%d containers=%zu rm_identifier=%lld "
               "interval_ms=%llu",
               nm->cfg.rm, nm->host, nm->port, n, (long long)nm->rm_identifier,
               (unsigned long long)nm->interval_ms);
        ag_metric_add(nm->m_registrations, 1);
    }
    pthread_mutex_unlock(&nm->mu);
out:
    ag_rpc_msg_free(resp ? &resp->base : NULL);
    ag_free(msg);
    ag_free(ss);
    ag_free(cs);
    ag_free(csp);
    ag_free(apps);
    return rc;
}

/* Stops every container of application a (exit_status). nm->mu held. */
static void cleanup_app(ag_nm *nm, const Argot__Sched__V1__ApplicationId *a)
{
    for (struct container *c = nm->containers; c; c = c->next)
        if (c->ts == a->cluster_timestamp && c->app_id == a->id)
            ag__launch_stop(nm->launcher, c->name, AG__EXIT_APP_DONE);
}

/* Removes a completed container the RM has seen (invariant 2). nm->mu held. */
static void forget(ag_nm *nm, const ContainerId *id)
{
    char name[128];
    cid_str(id, name, sizeof(name));
    for (struct container **pp = &nm->containers; *pp; pp = &(*pp)->next) {
        struct container *c = *pp;
        if (strcmp(c->name, name) != 0)
            continue;
        if (ag__launch_forget(nm->launcher, name) == AG_E_STATE)
            return; /* still running: the RM is wrong; report it again */
        *pp = c->next;
        snprintf(nm->removed[nm->nremoved++ % AG_NM_REMEMBERED], 128, "%s", name);
        ag_free(c);
        ag_metric_add(nm->m_completed, 1);
        return;
    }
}

/* What a heartbeat response asks. nm->mu held. */
static void heartbeat_apply(ag_nm *nm, const Argot__Sched__V1__NodeHeartbeatResponse *r)
{
    nm->response_id = r->response_id;
    take_key(&nm->ctr_keys, r->container_token_master_key);
    take_key(&nm->nm_keys, r->nm_token_master_key);
    if (r->next_heartbeat_interval_ms > 0)
        nm->interval_ms = (uint64_t)r->next_heartbeat_interval_ms;
    for (size_t i = 0; i < r->n_containers_to_cleanup; i++) {
        char name[128];
        cid_str(r->containers_to_cleanup[i], name, sizeof(name));
        if (find_container(nm, name))
            ag__launch_stop(nm->launcher, name, AG__EXIT_STOPPED);
    }
    for (size_t i = 0; i < r->n_applications_to_cleanup; i++)
        if (r->applications_to_cleanup[i])
            cleanup_app(nm, r->applications_to_cleanup[i]);
    for (size_t i = 0; i < r->n_containers_to_be_removed_from_nm; i++)
        forget(nm, r->containers_to_be_removed_from_nm[i]);
    if (r->node_action == ARGOT__SCHED__V1__NODE_ACTION__RESYNC) {
        AG_LOG(AG_LOG_INFO, "nm", "rm_resync rm=%s", nm->cfg.rm);
        nm->registered = false;
    } else if (r->node_action == ARGOT__SCHED__V1__NODE_ACTION__SHUTDOWN) {
        AG_LOG(AG_LOG_WARN, "nm", "rm_shutdown diagnostics=\"%s\"",
               r->diagnostics_message ? r->diagnostics_message : "");
        nm->shutdown_ordered = true;
        pthread_cond_broadcast(&nm->cv);
    }
}

/* One heartbeat. 0, or a negative code when the RM was not reached. */
static int rm_heartbeat(ag_nm *nm)
{
    Argot__Sched__V1__NodeHeartbeatRequest req = ARGOT__SCHED__V1__NODE_HEARTBEAT_REQUEST__INIT;
    Argot__Sched__V1__NodeStatus ns = ARGOT__SCHED__V1__NODE_STATUS__INIT;
    Argot__Sched__V1__NodeHealthStatus health = ARGOT__SCHED__V1__NODE_HEALTH_STATUS__INIT;
    Argot__Sched__V1__MasterKey known = ARGOT__SCHED__V1__MASTER_KEY__INIT;
    Argot__Sched__V1__MasterKey known_nm = ARGOT__SCHED__V1__MASTER_KEY__INIT;
    Argot__Sched__V1__NodeId node;
    struct status_store *ss = NULL;
    size_t n = 0;
    pthread_mutex_lock(&nm->mu);
    int rc = collect(nm, &ss, &n);
    ns.response_id = nm->response_id;
    known.key_id = nm->ctr_keys.have ? nm->ctr_keys.cur.id : 0;
    known_nm.key_id = nm->nm_keys.have ? nm->nm_keys.cur.id : 0;
    pthread_mutex_unlock(&nm->mu);
    Argot__Sched__V1__ContainerStatus **stp = ag_calloc(n + 1, sizeof(*stp));
    if (rc < 0 || !stp) {
        ag_free(ss);
        ag_free(stp);
        return AG_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        stp[i] = &ss[i].st;
    ns.node_id = node_fill(nm, &node);
    ns.n_container_statuses = n;
    ns.container_statuses = stp;
    health.is_node_healthy = true;
    health.health_report = (char *)"";
    health.last_health_report_time = ag_wall_ms();
    ns.node_health_status = &health;
    req.node_status = &ns;
    req.last_known_container_token_master_key = &known;
    req.last_known_nm_token_master_key = &known_nm;
    Argot__Sched__V1__NodeHeartbeatResponse *resp = NULL;
    char *msg = NULL;
    const char *rm_target = NULL;
    ag_rpc_channel *rm_ch = ag__rms_channel(&nm->rms, &rm_target);
    int st = argot__sched__v1__resource_tracker__node_heartbeat__invoke(
        rm_ch, &req, ag_deadline_in_ms(RM_CALL_TIMEOUT_MS), &resp, &msg);
    nm->rm_moves = st == AG_RPC_OK                             ? 0
                   : ag__rms_failed(&nm->rms, rm_ch, st) ? nm->rm_moves + 1
                                                               : nm->rm_moves;
    if (st == AG_RPC_OK) {
        pthread_mutex_lock(&nm->mu);
        heartbeat_apply(nm, resp);
        pthread_mutex_unlock(&nm->mu);
        ag_metric_add(nm->m_heartbeats, 1);
    } else {
        AG_LOG(AG_LOG_WARN, "nm", "heartbeat_failed rm=%s status=%s message=\"%s\"", rm_target,
               ag_rpc_status_name(st), msg ? msg : "");
        ag_metric_add(nm->m_rm_failures, 1);
        rc = AG_E_AGAIN;
    }
    ag_rpc_msg_free(resp ? &resp->base : NULL);
    ag_free(msg);
    ag_free(ss);
    ag_free(stp);
    return rc;
}

/* Waits on nm->cv for ms (nm->mu held). */
static void wait_ms(ag_nm *nm, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&nm->cv, &nm->mu, &ts);
}

/* The launcher saw containers end: heartbeat now rather than at the next
 * interval (YARN's out-of-band heartbeat), so that the RM frees their room
 * and their AMs hear of them at once. */
static void containers_ended(void *ud)
{
    ag_nm *nm = ud;
    pthread_mutex_lock(&nm->mu);
    nm->oob = true;
    pthread_cond_broadcast(&nm->cv);
    pthread_mutex_unlock(&nm->mu);
}

/* The heartbeat thread: the RM session's state machine (file comment). */
static void *hb_main(void *arg)
{
    ag_nm *nm = arg;
    uint64_t backoff = 0;
    pthread_mutex_lock(&nm->mu);
    while (!nm->stopping && !nm->shutdown_ordered) {
        bool registered = nm->registered;
        pthread_mutex_unlock(&nm->mu);
        int rc = registered ? rm_heartbeat(nm) : rm_register(nm);
        pthread_mutex_lock(&nm->mu);
        uint64_t delay = nm->interval_ms;
        if (rc < 0 && nm->rm_moves > 0 && (size_t)nm->rm_moves < 2 * nm->rms.n) {
            delay = 100; /* another RM may be the active one: ask it soon */
        } else if (rc < 0) {
            backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
            if (backoff > BACKOFF_MAX_MS)
                backoff = BACKOFF_MAX_MS;
            delay = backoff;
        } else {
            backoff = 0;
            if (registered && !nm->registered)
                delay = 0; /* RESYNC: register again at once */
        }
        if (nm->oob && registered && rc == 0)
            delay = 0; /* containers ended since the statuses were taken */
        nm->oob = false;
        if (delay > 0 && !nm->stopping && !nm->shutdown_ordered)
            wait_ms(nm, delay);
        nm->oob = false; /* the heartbeat about to go takes every status */
    }
    pthread_mutex_unlock(&nm->mu);
    return NULL;
}

/* ---- recovery (work-preserving restart) ------------------------------------------------------ *
 *
 * work_dir/nm-state: a line "argot-nm-state 1", then one line per container,
 * tab-separated: name ts app attempt id memory_mb vcores priority alloc_id
 * created_ms running pid starttime exit_status cgroup dir limits diagnostics
 * (text fields with tabs and newlines turned to spaces, "-" for empty). */

#define STATE_MAGIC  "argot-nm-state 1"
#define STATE_FIELDS 18

/* s with tabs and newlines as spaces, "-" when empty, into out. */
static const char *state_text(const char *s, char *out, size_t cap)
{
    snprintf(out, cap, "%s", s && s[0] ? s : "-");
    for (char *p = out; *p; p++)
        if (*p == '\t' || *p == '\n' || *p == '\r')
            *p = ' ';
    return out;
}

/* Writes the table to work_dir/nm-state (through a temporary file and a
 * rename). nm->mu held. */
static void save_state(ag_nm *nm)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s/nm-state", nm->cfg.work_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    if (!f) {
        AG_LOG(AG_LOG_ERROR, "nm", "state_save_failed path=%s err=\"%s\"", tmp, strerror(errno));
        return;
    }
    fprintf(f, "%s\n", STATE_MAGIC);
    size_t n = 0;
    for (struct container *c = nm->containers; c; c = c->next) {
        ag__launch_status ls;
        char a[600], b[600], d[600], g[600];
        if (ag__launch_status_get(nm->launcher, c->name, &ls) < 0)
            continue;
        fprintf(
            f,
            "%s\t%lld\t%d\t%d\t%lld\t%lld\t%d\t%d\t%lld\t%lld\t%d\t%d\t%llu\t%d\t%s\t%s\t%s\t%s\n",
            c->name, (long long)c->ts, (int)c->app_id, (int)c->attempt, (long long)c->id,
            (long long)c->memory_mb, (int)c->vcores, (int)c->priority, (long long)c->alloc_id,
            (long long)c->created_ms, ls.running ? 1 : 0, (int)ls.pid, ls.starttime, ls.exit_status,
            state_text(ls.cgroup, a, sizeof(a)), state_text(ls.dir, b, sizeof(b)),
            state_text(ls.limits, d, sizeof(d)), state_text(ls.diagnostics, g, sizeof(g)));
        n++;
    }
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        AG_LOG(AG_LOG_ERROR, "nm", "state_save_failed path=%s err=\"%s\"", path, strerror(errno));
        unlink(tmp);
        return;
    }
    AG_LOG(AG_LOG_INFO, "nm", "state_saved path=%s containers=%zu", path, n);
}

/* Splits line at tabs into f (n fields); the count found. */
static size_t split_tabs(char *line, char **f, size_t n)
{
    size_t k = 0;
    for (char *p = line; k < n;) {
        f[k++] = p;
        char *t = strchr(p, '\t');
        if (!t)
            break;
        *t = '\0';
        p = t + 1;
    }
    return k;
}

/* One state line into the table and the launcher. */
static int recover_line(ag_nm *nm, char *line, int lineno)
{
    char *f[STATE_FIELDS];
    line[strcspn(line, "\n")] = '\0';
    if (split_tabs(line, f, STATE_FIELDS) != STATE_FIELDS)
        return ag_errbuf_set(&nm->err, AG_E_ENCODING, "%s/nm-state:%d: %s", nm->cfg.work_dir,
                             lineno, "not a container line");
    for (size_t i = 14; i < STATE_FIELDS; i++)
        if (strcmp(f[i], "-") == 0)
            f[i][0] = '\0';
    struct container *c = ag_calloc(1, sizeof(*c));
    if (!c)
        return ag_errbuf_set(&nm->err, AG_E_NOMEM, "%s", ag_strerror(AG_E_NOMEM));
    snprintf(c->name, sizeof(c->name), "%s", f[0]);
    c->ts = strtoll(f[1], NULL, 10);
    c->app_id = (int32_t)strtol(f[2], NULL, 10);
    c->attempt = (int32_t)strtol(f[3], NULL, 10);
    c->id = strtoll(f[4], NULL, 10);
    c->memory_mb = strtoll(f[5], NULL, 10);
    c->vcores = (int32_t)strtol(f[6], NULL, 10);
    c->priority = (int32_t)strtol(f[7], NULL, 10);
    c->alloc_id = strtoll(f[8], NULL, 10);
    c->created_ms = strtoll(f[9], NULL, 10);
    snprintf(c->app, sizeof(c->app), "application_%lld_%04d", (long long)c->ts, (int)c->app_id);
    ag__launch_adopted a = {.id = c->name,
                            .dir = f[15],
                            .pid = (pid_t)strtol(f[11], NULL, 10),
                            .starttime = strtoull(f[12], NULL, 10),
                            .cgroup = f[14],
                            .limits = f[16],
                            .running = strcmp(f[10], "1") == 0,
                            .exit_status = (int)strtol(f[13], NULL, 10),
                            .diagnostics = f[17]};
    int rc = ag__launch_adopt(nm->launcher, &a);
    if (rc < 0) {
        ag_free(c);
        return ag_errbuf_set(&nm->err, rc, "%s/nm-state:%d: cannot adopt %s: %s", nm->cfg.work_dir,
                             lineno, f[0], ag_strerror(rc));
    }
    c->next = nm->containers;
    nm->containers = c;
    return 0;
}

/* Adopts the containers work_dir/nm-state lists, then removes the file
 * (they are in the table now; the next stop writes it again). */
static int recover(ag_nm *nm)
{
    char path[PATH_MAX], line[8192];
    snprintf(path, sizeof(path), "%s/nm-state", nm->cfg.work_dir);
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        return ag_errbuf_set(&nm->err, AG_E_IO, "%s: %s", path, strerror(errno));
    }
    int rc = 0, lineno = 1;
    if (!fgets(line, sizeof(line), f) || strncmp(line, STATE_MAGIC, strlen(STATE_MAGIC)) != 0)
        rc = ag_errbuf_set(&nm->err, AG_E_ENCODING, "%s:1: not an argot nm state file", path);
    pthread_mutex_lock(&nm->mu);
    while (rc == 0 && fgets(line, sizeof(line), f))
        rc = recover_line(nm, line, ++lineno);
    pthread_mutex_unlock(&nm->mu);
    fclose(f);
    if (rc == 0) {
        unlink(path);
        AG_LOG(AG_LOG_INFO, "nm", "state_recovered path=%s containers=%d", path, lineno - 1);
    }
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static double running_gauge(void *ud)
{
    ag_nm *nm = ud;
    return (double)ag__launch_running(nm->launcher);
}

static bool is_serving(void *ud)
{
    ag_nm *nm = ud;
    return atomic_load(&nm->serving);
}

ag_nm *ag_nm_new(const ag_nm_config *c)
{
    ag_nm *nm = ag_calloc(1, sizeof(*nm));
    if (!nm)
        return NULL;
    nm->cfg = *c;
    nm->interval_ms = c->heartbeat_interval_ms ? c->heartbeat_interval_ms : 1000;
    nm->ctr_keys.what = "container";
    nm->tls = (ag__sched_tls){nm->cfg.tls_cert, nm->cfg.tls_key, nm->cfg.tls_ca};
    nm->nm_keys.what = "NM-token";
    nm->removed = ag_calloc(AG_NM_REMEMBERED, sizeof(*nm->removed));
    nm->metrics = ag_metrics_new();
    if (!nm->removed || !nm->metrics)
        goto err_free;
    if (pthread_mutex_init(&nm->mu, NULL) != 0)
        goto err_free;
    if (pthread_cond_init(&nm->cv, NULL) != 0)
        goto err_mutex;
    ag_metrics *m = nm->metrics;
    nm->m_launched =
        ag_metrics_counter(m, "argot_nm_containers_launched_total", "Containers started.", NULL);
    nm->m_refused = ag_metrics_counter(m, "argot_nm_containers_refused_total",
                                       "Start requests refused (bad token, launch failure).", NULL);
    nm->m_completed = ag_metrics_counter(m, "argot_nm_containers_completed_total",
                                         "Completed containers the RM acknowledged.", NULL);
    nm->m_heartbeats =
        ag_metrics_counter(m, "argot_nm_heartbeats_total", "Heartbeats the RM answered.", NULL);
    nm->m_registrations =
        ag_metrics_counter(m, "argot_nm_registrations_total", "Registrations with the RM.", NULL);
    nm->m_rm_failures =
        ag_metrics_counter(m, "argot_nm_rm_failures_total", "Calls to the RM that failed.", NULL);
    return nm;
err_mutex:
    pthread_mutex_destroy(&nm->mu);
err_free:
    ag_metrics_free(nm->metrics);
    ag_free(nm->removed);
    ag_free(nm);
    return NULL;
}

/* This node's host: the one it serves on, or the machine's name for a
 * wildcard address. */
static void pick_host(ag_nm *nm)
{
    char *colon = strrchr(nm->cfg.address, ':');
    size_t n = colon ? (size_t)(colon - nm->cfg.address) : 0;
    snprintf(nm->host, sizeof(nm->host), "%.*s", (int)n, nm->cfg.address);
    if (nm->host[0] == '[' && n > 1 && nm->host[n - 1] == ']') {
        memmove(nm->host, nm->host + 1, n - 2);
        nm->host[n - 2] = '\0';
    }
    if (!nm->host[0] || strcmp(nm->host, "0.0.0.0") == 0 || strcmp(nm->host, "::") == 0) {
        if (gethostname(nm->host, sizeof(nm->host) - 1) != 0)
            snprintf(nm->host, sizeof(nm->host), "localhost");
    }
}

/* Starts the servers (ContainerManagement, health, admin). */
static int start_servers(ag_nm *nm)
{
    ag_rpc_server_opts so;
    ag_rpc_server_opts_init(&so);
    ag__sched_tls_server(&nm->tls, &so);
    nm->srv = ag_rpc_server_new(&so);
    nm->health = ag_rpc_health_new();
    if (!nm->srv || !nm->health)
        return ag_errbuf_set(&nm->err, AG_E_NOMEM, "%s", ag_strerror(AG_E_NOMEM));
    nm->handlers.start_containers = start_containers;
    nm->handlers.stop_containers = stop_containers;
    nm->handlers.get_container_statuses = get_statuses;
    nm->handlers.ud = nm;
    int rc = argot__sched__v1__container_management__register(nm->srv, &nm->handlers);
    if (rc == 0)
        rc = ag_rpc_health_register(nm->srv, nm->health);
    if (rc < 0)
        return ag_errbuf_set(&nm->err, rc, "%s", ag_rpc_server_errmsg(nm->srv));
    if ((rc = ag_rpc_server_start(nm->srv, nm->cfg.address)) < 0)
        return ag_errbuf_set(&nm->err, rc, "cannot serve: %s", ag_rpc_server_errmsg(nm->srv));
    nm->port = ag_rpc_server_port(nm->srv);
    if (nm->cfg.admin[0]) {
        ag_admin_opts ao;
        ag_admin_opts_init(&ao);
        ao.metrics = nm->metrics;
        ao.serving = is_serving;
        ao.serving_ud = nm;
        if (!(nm->admin = ag_admin_new(&ao)))
            return ag_errbuf_set(&nm->err, AG_E_NOMEM, "%s", ag_strerror(AG_E_NOMEM));
        if ((rc = ag_admin_start(nm->admin, nm->cfg.admin)) < 0)
            return ag_errbuf_set(&nm->err, rc, "admin: cannot serve: %s",
                                 ag_admin_errmsg(nm->admin));
    }
    return 0;
}

/* mkdir -p dir. 0 or -errno. */
static int make_dirs(const char *dir)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -errno : 0;
}

int ag_nm_start(ag_nm *nm)
{
    if (nm->started)
        return ag_errbuf_set(&nm->err, AG_E_STATE, "node manager already started");
    nm->started = true;
    if (!nm->cfg.rm[0] || !nm->cfg.work_dir[0] || nm->cfg.memory_mb <= 0 || nm->cfg.vcores <= 0)
        return ag_errbuf_set(&nm->err, AG_E_INVAL,
                             "node manager config needs rm, work_dir and resources");
    if (nm->cfg.log_level >= 0)
        ag_log_set_level((ag_log_level)nm->cfg.log_level);
    int e = make_dirs(nm->cfg.work_dir);
    if (e != 0)
        return ag_errbuf_set(&nm->err, AG_E_IO, "work_dir %s: %s", nm->cfg.work_dir, strerror(-e));
    pick_host(nm);
    ag__launcher_opts lo = {.cgroup_parent =
                                nm->cfg.cgroup_parent[0] ? nm->cfg.cgroup_parent : NULL,
                            .kill_grace_ms = nm->cfg.kill_grace_ms,
                            .no_rlimit = !nm->cfg.memory_check,
                            .record_exit = nm->cfg.recovery,
                            .ended = containers_ended,
                            .ended_ud = nm};
    if (!(nm->launcher = ag__launcher_new(&lo)))
        return ag_errbuf_set(&nm->err, AG_E_NOMEM, "cannot start the container launcher");
    if (nm->cfg.recovery && (e = recover(nm)) < 0)
        return e;
    ag_metrics_gauge_fn(nm->metrics, "argot_nm_containers_running", "Containers running now.",
                        running_gauge, nm);
    int rc = start_servers(nm);
    if (rc < 0)
        return rc;
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    co.connect_timeout_ms = 3000;
    /* the heartbeat loop backs off by itself; a channel retries soon, so
     * that an RM just elected is reached at the next try */
    co.backoff_initial_ms = 100;
    co.backoff_max_ms = 1000;
    ag__sched_tls_channel(&nm->tls, &co);
    char err[AG_ERRMSG_MAX];
    if (ag__rms_init(&nm->rms, nm->cfg.rm, &co, err, sizeof(err)) < 0)
        return ag_errbuf_set(&nm->err, AG_E_INVAL, "rm: %s", err);
    atomic_store(&nm->serving, true);
    ag_rpc_health_set(nm->health, "", AG_RPC_HEALTH_SERVING);
    ag_rpc_health_set(nm->health, CM_SERVICE, AG_RPC_HEALTH_SERVING);
    if (pthread_create(&nm->hb, NULL, hb_main, nm) != 0)
        return ag_errbuf_set(&nm->err, AG_E_SYS, "cannot start the heartbeat thread");
    nm->hb_started = true;
    AG_LOG(AG_LOG_INFO, "nm",
           "serving node=%s:%d rm=%s memory_mb=%lld vcores=%d tls=%s limits=\"%s\"", nm->host,
           nm->port, nm->cfg.rm, (long long)nm->cfg.memory_mb, (int)nm->cfg.vcores,
           !ag__sched_tls_on(&nm->tls) ? "off"
           : nm->cfg.tls_ca[0]         ? "mutual"
                                       : "on",
           ag__launcher_limits(nm->launcher));
    return 0;
}

int ag_nm_port(const ag_nm *nm)
{
    return nm->port;
}

int ag_nm_admin_port(const ag_nm *nm)
{
    return nm->admin ? ag_admin_port(nm->admin) : 0;
}

bool ag_nm_wait_shutdown(ag_nm *nm, uint64_t timeout_ms)
{
    ag_deadline d = ag_deadline_in_ms(timeout_ms);
    pthread_mutex_lock(&nm->mu);
    while (!nm->shutdown_ordered && !ag_deadline_expired(d))
        wait_ms(nm, ag_deadline_remaining_ms(d));
    bool ordered = nm->shutdown_ordered;
    pthread_mutex_unlock(&nm->mu);
    return ordered;
}

void ag_nm_stop(ag_nm *nm)
{
    pthread_mutex_lock(&nm->mu);
    bool already = nm->stopped;
    nm->stopping = nm->stopped = true;
    pthread_cond_broadcast(&nm->cv);
    pthread_mutex_unlock(&nm->mu);
    if (already)
        return;
    if (nm->hb_started)
        pthread_join(nm->hb, NULL);
    nm->hb_started = false;
    atomic_store(&nm->serving, false);
    if (nm->health)
        ag_rpc_health_shutdown(nm->health);
    if (nm->srv)
        ag_rpc_server_shutdown(nm->srv, nm->cfg.shutdown_grace_ms);
    if (nm->launcher && nm->cfg.recovery) {
        pthread_mutex_lock(&nm->mu);
        save_state(nm);
        pthread_mutex_unlock(&nm->mu);
        ag__launch_detach_all(nm->launcher);
    } else if (nm->launcher) {
        size_t n = ag__launch_running(nm->launcher);
        AG_LOG(AG_LOG_INFO, "nm", "stopping containers=%zu", n);
        ag__launch_stop_all(nm->launcher, AG__EXIT_SHUTDOWN);
    }
    if (nm->admin)
        ag_admin_shutdown(nm->admin);
}

void ag_nm_free(ag_nm *nm)
{
    if (!nm)
        return;
    ag_nm_stop(nm);
    ag_rpc_server_free(nm->srv);
    ag_rpc_health_free(nm->health);
    ag_admin_free(nm->admin);
    ag__rms_cleanup(&nm->rms);
    ag__launcher_free(nm->launcher);
    for (struct container *c = nm->containers, *next; c; c = next) {
        next = c->next;
        ag_free(c);
    }
    ag_metrics_free(nm->metrics);
    ag_wipe(&nm->ctr_keys, sizeof(nm->ctr_keys));
    ag_wipe(&nm->nm_keys, sizeof(nm->nm_keys));
    pthread_cond_destroy(&nm->cv);
    pthread_mutex_destroy(&nm->mu);
    ag_free(nm->removed);
    ag_free(nm);
}

const char *ag_nm_errmsg(const ag_nm *nm)
{
    return nm->err.msg;
}
