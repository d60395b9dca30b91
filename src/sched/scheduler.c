/*
 * The resource manager's core (scheduler.h): queues, applications and their
 * attempts, nodes, containers, asks, and every scheduling decision, with no
 * I/O and no clock (callers pass now_ms). rm.c calls it under one mutex.
 *
 * Invariants:
 *   1. A container lives in exactly one node's list and one application's
 *      map from allocation until it completes; node.used, app.used, the
 *      leaf's (and every ancestor's) used and the user's used are each the
 *      sum of the live containers under them.
 *   2. A node is in its partition's free list and its rack's free list iff
 *      it is RUNNING and has at least the minimum allocation free.
 *   3. key.any is the outstanding total of a scheduler key; leaf.pending is
 *      the sum of key.any over the leaf's live applications' current asks.
 *   4. What an allocate response delivers (new containers, completed
 *      statuses, node updates) leaves the application's pending lists only
 *      once the response has been built and cached, so an allocation that
 *      runs out of memory loses nothing: the next allocate delivers it.
 *
 * An attempt's states (app.astate): WAIT_AM (a managed AM waits for its
 * container) -> LAUNCHED (AM container placed, or an unmanaged attempt
 * created) -> REGISTERED -> ENDED. ENDED comes from unregistering, a kill,
 * the AM container's end, a failed launch, the AM's silence or its node's
 * loss; all but the first two start the next attempt (back to WAIT_AM or
 * LAUNCHED) while attempts remain. An attempt put back by
 * ag_sched_recover_app (an RM restart) is LAUNCHED with am_cid naming its
 * AM container and am_ctr NULL until its NM re-registers and the container
 * is adopted as the AM's; its AM's registration makes it REGISTERED as
 * usual. ag__sched_check verifies invariants 1-3
 * (the tests call it); cheap asserts guard them inline.
 *
 * Thread: the caller's; no locking (rm.c serializes).
 */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/base.h"
#include "argot/rpc.h"
#include "argot/sched.h"
#include "scheduler.h"

typedef Argot__Sched__V1__ApplicationId AppId;
typedef Argot__Sched__V1__ApplicationAttemptId AttemptId;
typedef Argot__Sched__V1__ContainerId ContainerId;
typedef Argot__Sched__V1__Resource Resource;
typedef Argot__Sched__V1__NodeId NodeId;
typedef Argot__Sched__V1__Token Token;
typedef Argot__Sched__V1__ContainerStatus ContainerStatus;

#define ST(x) ARGOT__SCHED__V1__YARN_APPLICATION_STATE__##x
#define FS(x) ARGOT__SCHED__V1__FINAL_APPLICATION_STATUS__##x
#define NS(x) ARGOT__SCHED__V1__NODE_STATE__NS_##x

#define EXIT_ABORTED       (-100)
#define EXIT_PREEMPTED     (-102)
#define EXIT_KILLED        (-105)
#define EXIT_ATTEMPT_ENDED (-106)

#define MAX_NODE_EVENTS 100000 /* node-state changes kept for AMs' updated_nodes */

/* ------------------------------------------------------------------------ */
/* A small hash table: open addressing, linear probing, keyed by a string    */
/* (borrowed from the value) or by a uint64.                                 */
/* ------------------------------------------------------------------------ */

typedef struct hent {
    uint64_t h;
    const char *k; /* NULL: integer key */
    uint64_t ik;
    void *v; /* NULL: empty; TOMB: deleted */
} hent;

typedef struct hmap {
    hent *e;
    size_t cap;  /* power of two, or 0 */
    size_t used; /* live + tombstones */
    size_t n;    /* live */
} hmap;

static char tomb_;
#define TOMB ((void *)&tomb_)

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The slot holding the key, or (when absent) the slot to insert it in. */
static hent *hm_slot(const hmap *m, uint64_t h, const char *k, uint64_t ik)
{
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    hent *free_slot = NULL;
    for (;;) {
        hent *e = &m->e[i];
        if (!e->v)
            return free_slot ? free_slot : e;
        if (e->v == TOMB) {
            if (!free_slot)
                free_slot = e;
        } else if (e->h == h && (k ? (e->k && strcmp(e->k, k) == 0) : (!e->k && e->ik == ik))) {
            return e;
        }
        i = (i + 1) & mask;
    }
}

static void *hm_get(const hmap *m, uint64_t h, const char *k, uint64_t ik)
{
    if (!m->n)
        return NULL;
    hent *e = hm_slot(m, h, k, ik);
    return e->v && e->v != TOMB ? e->v : NULL;
}

static int hm_grow(hmap *m)
{
    size_t ncap = m->cap ? m->cap : 8;
    while ((m->n + 1) * 2 > ncap)
        ncap *= 2;
    hent *ne = ag_calloc(ncap, sizeof(*ne));
    if (!ne)
        return AG_E_NOMEM;
    hmap nm = {ne, ncap, 0, 0};
    for (size_t i = 0; i < m->cap; i++) {
        hent *e = &m->e[i];
        if (e->v && e->v != TOMB) {
            *hm_slot(&nm, e->h, e->k, e->ik) = *e;
            nm.used++;
            nm.n++;
        }
    }
    ag_free(m->e);
    *m = nm;
    return 0;
}

/* Inserts or replaces. 0 or AG_E_NOMEM (then m is unchanged). */
static int hm_put(hmap *m, uint64_t h, const char *k, uint64_t ik, void *v)
{
    if ((m->used + 1) * 4 > m->cap * 3 && hm_grow(m) < 0)
        return AG_E_NOMEM;
    hent *e = hm_slot(m, h, k, ik);
    if (!e->v)
        m->used++;
    if (!e->v || e->v == TOMB)
        m->n++;
    e->h = h;
    e->k = k;
    e->ik = ik;
    e->v = v;
    return 0;
}

static void hm_del(hmap *m, uint64_t h, const char *k, uint64_t ik)
{
    if (!m->n)
        return;
    hent *e = hm_slot(m, h, k, ik);
    if (e->v && e->v != TOMB) {
        e->v = TOMB;
        m->n--;
    }
}

static void hm_cleanup(hmap *m)
{
    ag_free(m->e);
    memset(m, 0, sizeof(*m));
}

#define SGET(m, k)    hm_get((m), hash_str(k), (k), 0)
#define SPUT(m, k, v) hm_put((m), hash_str(k), (k), 0, (v))
#define SDEL(m, k)    hm_del((m), hash_str(k), (k), 0)
#define IGET(m, i)    hm_get((m), hash_u64(i), NULL, (i))
#define IPUT(m, i, v) hm_put((m), hash_u64(i), NULL, (i), (v))
#define IDEL(m, i)    hm_del((m), hash_u64(i), NULL, (i))
#define HM_EACH(m, e)                                                                              \
    for (hent *e = (m)->e; e && e < (m)->e + (m)->cap; e++)                                        \
        if (e->v && e->v != TOMB)

/* ------------------------------------------------------------------------ */
/* State                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct res {
    int64_t mb;
    int32_t vc;
} res;

static res radd(res a, res b)
{
    return (res){a.mb + b.mb, a.vc + b.vc};
}

static res rsub(res a, res b)
{
    return (res){a.mb - b.mb, a.vc - b.vc};
}

static bool rfits(res want, res room)
{
    return want.mb <= room.mb && want.vc <= room.vc;
}

/* A compact container id. */
typedef struct cid {
    int32_t app_id;
    int32_t attempt;
    int64_t id;
} cid;

typedef struct queue queue;
typedef struct app app;
typedef struct node node;
typedef struct rack rack;
typedef struct part part;

typedef struct user {
    char *name;
    res used;
} user;

struct queue {
    char *path;       /* "root.a.b" */
    const char *name; /* last component (into path) */
    queue *parent;
    queue *child; /* first child */
    queue *sib;
    double cap;      /* percent of the parent's */
    double maxcap;   /* percent of the parent's */
    double abs_cap;  /* fraction of the cluster */
    double abs_max;  /* fraction of the cluster */
    double ulf;      /* user limit factor */
    double am_share; /* fraction of the leaf */
    char *labels;    /* comma-separated, "" none, "*" any */
    res used;        /* in the default partition */
    res am_used;
    int napps;       /* live applications */
    int64_t pending; /* outstanding containers of its live apps (leaves) */
    app *apps;       /* live apps, FIFO by (priority, submission) */
    hmap users;      /* name -> user */
    uint64_t mark;   /* s->gen when tried in this scheduling round */
};

/* One location of a scheduler key: a host, a rack or "*". */
typedef struct loc {
    char *name;
    int32_t n; /* outstanding */
    bool relax;
    bool is_rack; /* name starts with '/' */
} loc;

/* Asks of one (priority, capability, allocation_request_id). */
typedef struct skey {
    int32_t prio;
    res cap;
    int64_t arid;
    char *label; /* node label expression */
    int32_t any; /* the "*" total: what is outstanding */
    bool any_relax;
    hmap locs;         /* name -> loc (hosts and racks) */
    size_t nhosts;     /* locs that are hosts */
    int misses;        /* missed scheduling opportunities */
    struct skey *next; /* by priority */
} skey;

typedef struct ctr {
    cid id;
    app *a;
    node *n;
    res r;
    int32_t prio;
    int64_t arid;
    bool am;
    bool running;
    bool delivered; /* handed to the AM in an allocate response */
    uint64_t created;
    uint64_t preempt_at; /* 0: not marked; else when it is killed */
    struct ctr *nprev;   /* node's list */
    struct ctr *nnext;
    struct ctr *anext; /* app's undelivered list */
    struct ctr *uprev; /* the unlaunched list (while !running), oldest first */
    struct ctr *unext;
    bool logged; /* in the grant log as added (conf.track_grants) */
} ctr;

/* A change of the set of grants not yet running (conf.track_grants). */
typedef struct gev {
    bool added;
    cid id;
    node *n; /* added: its node (nodes live as long as the core) */
    res r;
    int32_t prio;
    int64_t arid;
} gev;

/* A grant put back from the store, waiting for its node to register. */
typedef struct pgrant {
    cid id;
    char *node; /* "host:port" */
    char *host;
    int32_t port;
    res r;
    int32_t prio;
    int64_t arid;
    uint64_t since;
} pgrant;

/* A completed container's status waiting for the AM. */
typedef struct cstat {
    cid id;
    int32_t exit;
    char *diag;
    res r;
} cstat;

enum { AT_NONE, AT_WAIT_AM, AT_LAUNCHED, AT_REGISTERED, AT_ENDED };

struct app {
    int32_t id;
    char *name;
    char *user;
    char *type;
    char *label;
    queue *q;
    user *u;
    int32_t prio;
    uint64_t seq; /* submission order */
    int state;    /* YarnApplicationState */
    int final;    /* FinalApplicationStatus */
    char *diag;
    char *host;
    int32_t rpc_port;
    int64_t start_ms;
    int64_t finish_ms;
    float progress;
    bool unmanaged;
    bool keep;
    int max_attempts;
    res am_res;
    uint8_t *am_spec; /* packed ContainerLaunchContext */
    size_t am_spec_len;
    bool live;  /* in its queue (not finished) */
    app *qnext; /* queue's list */
    app *wnext; /* waiting-for-AM list */
    bool waiting;
    /* the current attempt */
    int32_t attempt;
    int astate;
    uint64_t last_seen;
    ctr *am_ctr;
    int64_t am_cid;  /* the attempt's AM container id (0: none placed) */
    int32_t resp_id; /* the last response's id */
    uint8_t *last;   /* packed last allocate response */
    size_t last_len;
    bool has_last;
    size_t ev_seen; /* node events delivered */
    hmap nm_sent;   /* node id -> marker: NM token sent in this attempt */
    uint64_t nm_sent_at; /* when the oldest of those tokens was issued */
    bool nm_renew;       /* the NM-token key changed: renew them at the next allocate */
    int32_t amrm_key_id; /* the AMRM key of the attempt's token as last handed out */
    hmap black;     /* host -> marker */
    bool shutdown;  /* tell the AM AM_SHUTDOWN */
    /* asks and containers */
    skey *keys;
    hmap ctrs; /* container id -> ctr */
    int64_t next_cid;
    res used;
    ctr *undelivered; /* newly allocated, in order */
    ctr **undelivered_tail;
    cstat *done; /* completed, not yet delivered */
    size_t ndone;
    size_t done_cap; /* allocated */
    ctr **preempt;   /* marked for preemption, not yet told */
    size_t npreempt;
    size_t preempt_cap; /* allocated */
};

struct rack {
    char *name;
    node *free; /* free list (rprev/rnext) */
};

struct part {
    char *label; /* "" default */
    node *free;  /* free list (fprev/fnext) */
    hmap racks;  /* name -> rack */
    res total;
    res used;
};

struct node {
    char *key; /* "host:port" */
    char *host;
    int32_t port;
    int32_t http_port;
    char *rack_name;
    char *label;
    part *p;
    rack *rk;
    res cap;
    res used;
    int state; /* NodeState */
    uint64_t last_seen;
    char *health;
    int64_t health_ms;
    int32_t hb_id;
    ctr *ctrs;
    int nctrs;
    node *hnext; /* same host */
    node *fprev; /* partition's free list */
    node *fnext;
    node *rprev; /* rack's free list */
    node *rnext;
    bool in_free;
    cid *cleanup; /* containers_to_cleanup */
    size_t ncleanup;
    size_t cleanup_cap; /* allocated */
    cid *removed;       /* containers_to_be_removed_from_nm */
    size_t nremoved;
    size_t removed_cap; /* allocated */
    int32_t *app_cleanup;
    size_t napp_cleanup;
    size_t app_cleanup_cap; /* allocated */
    bool dirty;             /* room freed since the last flush_freed */
};

typedef struct launch {
    app *a;
    int32_t attempt;
    int64_t cid;
} launch;

struct ag_sched {
    ag_sched_conf c;
    int nl_delay;
    int rack_delay;
    res min;
    res max;
    queue *root;
    queue **queues; /* every queue, pre-order */
    size_t nqueues;
    hmap qmap;  /* path and leaf short names -> queue */
    app **apps; /* by id - 1 */
    size_t napps;
    size_t apps_cap;  /* allocated */
    int32_t next_app; /* ids handed out */
    uint64_t seq;
    uint64_t gen; /* scheduling rounds (queue.mark) */
    node **nodes;
    size_t nnodes;
    size_t nodes_cap; /* allocated */
    hmap nodemap;     /* "host:port" -> node */
    int32_t nactive;  /* nodes RUNNING or UNHEALTHY */
    hmap hosts;       /* host -> first node */
    part **parts;
    size_t nparts;
    hmap partmap;  /* label -> part */
    node **events; /* node-state changes, for updated_nodes */
    size_t nevents;
    size_t events_cap; /* allocated */
    app *wait;         /* apps waiting for their AM container, FIFO */
    node **freed;      /* nodes with room freed: offered in queue order first */
    size_t nfreed;
    size_t freed_cap; /* allocated */
    ctr *unl_head;    /* containers not yet reported running, by grant time */
    ctr *unl_tail;
    gev *gevs; /* the grant log since the last ag_sched_grant_changes */
    size_t ngevs;
    size_t gevs_cap; /* allocated */
    bool gevs_lost;  /* the log ran out of memory: the next drain resends the set */
    pgrant *pgrants; /* grants put back by ag_sched_recover_grant, waiting for nodes */
    size_t npgrants;
    size_t pgrants_cap; /* allocated */
    launch *launches;
    size_t nlaunches;
    size_t launches_cap; /* allocated */
    ag_sched_key ctr_key;  /* container tokens are signed with it */
    ag_sched_key nm_key;   /* NM tokens */
    ag_sched_key amrm_key; /* AMRM tokens */
    ag_sched_key ctr_prev; /* the keys before (id 0: none), still accepted */
    ag_sched_key nm_prev;
    ag_sched_key amrm_prev;
    ag_sched_key ctr_next; /* drawn, sent to the NMs, signing from activate_at */
    ag_sched_key nm_next;  /* (id 0: none) */
    bool roll_timed;       /* roll_at (and activate_at) set since start or import */
    uint64_t roll_at;      /* when the next keys are drawn */
    uint64_t activate_at;  /* when they start signing */
    uint64_t key_changes;  /* ag_sched_key_changes */
    int64_t containers_allocated;
    int apps_submitted;
    int apps_completed;
    int apps_killed;
    int apps_failed;
    uint64_t changes; /* ag_sched_changes: stored application state changed */
};

static int errf(char *err, size_t cap, int code, const char *fmt, ...) AG_PRINTF(4, 5);
static int errf(char *err, size_t cap, int code, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

#define NOMEM(err, cap) errf((err), (cap), AG_SCHED_EXHAUSTED, "out of memory")

/* Grows an array to hold one more element. 0 or AG_E_NOMEM. */
static int grow(void **arr, size_t n, size_t *capp, size_t elem)
{
    if (n < *capp)
        return 0;
    size_t nc = *capp ? *capp * 2 : 8;
    void *p = ag_reallocarray(*arr, nc, elem);
    if (!p)
        return AG_E_NOMEM;
    *arr = p;
    *capp = nc;
    return 0;
}
#define GROW(arr, n, capv) grow((void **)&(arr), (n), &(capv), sizeof(*(arr)))

/* ------------------------------------------------------------------------ */
/* Messages                                                                   */
/* ------------------------------------------------------------------------ */

static void *pbnew(size_t size, const void *init)
{
    void *p = ag_malloc(size);
    if (p)
        memcpy(p, init, size);
    return p;
}
#define MK(T, INIT) ((T *)pbnew(sizeof(T), &(T)INIT))

/* protobuf-c's allocator over argot's, for packing and unpacking. */
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

void ag_sched_resp_clear(ProtobufCMessage *m)
{
    if (!m)
        return;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *at = (char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(size_t *)((char *)m + f->quantifier_offset);
            void *arr = *(void **)at;
            for (size_t j = 0; arr && j < n; j++) {
                if (f->type == PROTOBUF_C_TYPE_STRING) {
                    ag_free(((char **)arr)[j]);
                } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
                    ag_free(((ProtobufCBinaryData *)arr)[j].data);
                } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                    ag_rpc_msg_free(((ProtobufCMessage **)arr)[j]);
                }
            }
            ag_free(arr);
        } else if (f->type == PROTOBUF_C_TYPE_STRING) {
            char *str = *(char **)at;
            if (str && str != f->default_value)
                ag_free(str);
        } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
            ProtobufCBinaryData *b = (ProtobufCBinaryData *)at;
            const ProtobufCBinaryData *def = f->default_value;
            if (b->data && (!def || b->data != def->data))
                ag_free(b->data);
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            ag_rpc_msg_free(*(ProtobufCMessage **)at);
        }
    }
    protobuf_c_message_init(d, m);
}

/* A string field's value: an ag_malloc'd copy, or protobuf-c's empty
 * string for "" (which free_unpacked leaves alone). NULL on no memory. */
static char *pbstr(const char *s)
{
    if (!s || !*s)
        return (char *)protobuf_c_empty_string;
    return ag_strdup(s);
}

static bool str_empty(const char *s)
{
    return !s || !*s;
}

static Resource *mk_res(res r)
{
    Resource *x = MK(Resource, ARGOT__SCHED__V1__RESOURCE__INIT);
    if (x) {
        x->memory_mb = r.mb;
        x->vcores = r.vc;
    }
    return x;
}

static AppId *mk_appid(const ag_sched *s, int32_t id)
{
    AppId *x = MK(AppId, ARGOT__SCHED__V1__APPLICATION_ID__INIT);
    if (x) {
        x->cluster_timestamp = s->c.cluster_timestamp;
        x->id = id;
    }
    return x;
}

static AttemptId *mk_attempt(const ag_sched *s, int32_t app_id, int32_t attempt)
{
    AttemptId *x = MK(AttemptId, ARGOT__SCHED__V1__APPLICATION_ATTEMPT_ID__INIT);
    if (!x)
        return NULL;
    x->attempt_id = attempt;
    x->application_id = mk_appid(s, app_id);
    if (!x->application_id) {
        ag_free(x);
        return NULL;
    }
    return x;
}

static ContainerId *mk_cid(const ag_sched *s, cid c)
{
    ContainerId *x = MK(ContainerId, ARGOT__SCHED__V1__CONTAINER_ID__INIT);
    if (!x)
        return NULL;
    x->id = c.id;
    x->app_attempt_id = mk_attempt(s, c.app_id, c.attempt);
    if (!x->app_attempt_id) {
        ag_free(x);
        return NULL;
    }
    return x;
}

static NodeId *mk_nodeid(const node *n)
{
    NodeId *x = MK(NodeId, ARGOT__SCHED__V1__NODE_ID__INIT);
    if (!x)
        return NULL;
    x->port = n->port;
    x->host = pbstr(n->host);
    if (!x->host) {
        ag_free(x);
        return NULL;
    }
    return x;
}

/* Packs m into a fresh ag_malloc'd buffer. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = ag_malloc(*len ? *len : 1);
    if (b)
        protobuf_c_message_pack(m, b);
    return b;
}

/* A token: identifier = the packed message, password = its MAC under k. */
static Token *mk_token(const ProtobufCMessage *ident, const ag_sched_key *k, const char *kind,
                       const char *service)
{
    Token *t = MK(Token, ARGOT__SCHED__V1__TOKEN__INIT);
    if (!t)
        return NULL;
    t->identifier.data = pack(ident, &t->identifier.len);
    t->password.data = ag_malloc(AG_SCHED_MAC_BYTES);
    t->kind = pbstr(kind);
    t->service = pbstr(service);
    if (!t->identifier.data || !t->password.data || !t->kind || !t->service) {
        ag_rpc_msg_free(&t->base);
        return NULL;
    }
    t->password.len = AG_SCHED_MAC_BYTES;
    ag__sched_mac(k, t->identifier.data, t->identifier.len, t->password.data);
    return t;
}

/* ------------------------------------------------------------------------ */
/* Queues                                                                     */
/* ------------------------------------------------------------------------ */

static void queue_free(queue *q)
{
    if (!q)
        return;
    HM_EACH(&q->users, e)
    {
        user *u = e->v;
        ag_free(u->name);
        ag_free(u);
    }
    hm_cleanup(&q->users);
    ag_free(q->path);
    ag_free(q->labels);
    ag_free(q);
}

static queue *queue_new(const char *path, queue *parent)
{
    queue *q = ag_calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->path = ag_strdup(path);
    q->labels = ag_strdup("");
    if (!q->path || !q->labels) {
        queue_free(q);
        return NULL;
    }
    const char *dot = strrchr(q->path, '.');
    q->name = dot ? dot + 1 : q->path;
    q->parent = parent;
    q->cap = q->maxcap = 100;
    q->ulf = 1;
    q->am_share = 0.1;
    return q;
}

static bool is_leaf(const queue *q)
{
    return q->child == NULL;
}

/* Adds q to s->queues and s->qmap. */
static int queue_add(ag_sched *s, queue *q)
{
    queue **nq = ag_reallocarray(s->queues, s->nqueues + 1, sizeof(*nq));
    if (!nq)
        return AG_E_NOMEM;
    s->queues = nq;
    if (SPUT(&s->qmap, q->path, q) < 0)
        return AG_E_NOMEM;
    s->queues[s->nqueues++] = q;
    if (q->parent) {
        queue **pp = &q->parent->child;
        while (*pp)
            pp = &(*pp)->sib;
        *pp = q;
    }
    return 0;
}

static int queue_conf(ag_sched *s, const ag_sched_queue_conf *qc, char *err, size_t cap)
{
    char path[256];
    const char *p = qc->path ? qc->path : "";
    if (strcmp(p, "root") == 0 || strncmp(p, "root.", 5) == 0)
        snprintf(path, sizeof(path), "%s", p);
    else
        snprintf(path, sizeof(path), "root.%s", p);
    if (strcmp(path, "root") == 0) {
        /* root is always 100%: only its labels may be set */
        if (!str_empty(qc->labels)) {
            char *l = ag_strdup(qc->labels);
            if (!l)
                return NOMEM(err, cap);
            ag_free(s->root->labels);
            s->root->labels = l;
        }
        return 0;
    }
    if (path[strlen(path) - 1] == '.' || strstr(path, ".."))
        return errf(err, cap, AG_E_INVAL, "queue '%s': not a valid queue path", p);
    if (SGET(&s->qmap, path))
        return errf(err, cap, AG_E_INVAL, "queue %s: configured twice", path);
    char ppath[256];
    snprintf(ppath, sizeof(ppath), "%s", path);
    *strrchr(ppath, '.') = '\0';
    queue *parent = SGET(&s->qmap, ppath);
    if (!parent)
        return errf(err, cap, AG_E_INVAL,
                    "queue %s: its parent %s is not configured (list parents first)", path, ppath);
    double mx = qc->max_capacity == 0 ? 100 : qc->max_capacity;
    if (!(qc->capacity >= 0 && qc->capacity <= 100))
        return errf(err, cap, AG_E_INVAL, "queue %s: capacity %g is not in 0..100", path,
                    qc->capacity);
    if (!(mx >= qc->capacity && mx <= 100))
        return errf(err, cap, AG_E_INVAL,
                    "queue %s: maximum capacity %g is not in capacity (%g)..100", path, mx,
                    qc->capacity);
    if (qc->user_limit_factor < 0 || qc->max_am_share < 0 || qc->max_am_share > 1)
        return errf(err, cap, AG_E_INVAL,
                    "queue %s: user limit factor must be >= 0 and AM share in 0..1", path);
    queue *q = queue_new(path, parent);
    if (!q)
        return NOMEM(err, cap);
    q->cap = qc->capacity;
    q->maxcap = mx;
    q->ulf = qc->user_limit_factor == 0 ? 1 : qc->user_limit_factor;
    q->am_share = qc->max_am_share == 0 ? 0.1 : qc->max_am_share;
    if (!str_empty(qc->labels)) {
        ag_free(q->labels);
        q->labels = ag_strdup(qc->labels);
    }
    if (!q->labels || queue_add(s, q) < 0) {
        queue_free(q);
        return NOMEM(err, cap);
    }
    return 0;
}

/* Children sum to 100; absolute capacities. */
static int queue_check(ag_sched *s, char *err, size_t cap)
{
    for (size_t i = 0; i < s->nqueues; i++) {
        queue *q = s->queues[i];
        if (q->parent) {
            q->abs_cap = q->parent->abs_cap * q->cap / 100;
            q->abs_max = q->parent->abs_max * q->maxcap / 100;
        } else {
            q->abs_cap = q->abs_max = 1;
        }
        if (is_leaf(q))
            continue;
        double sum = 0;
        for (queue *c = q->child; c; c = c->sib)
            sum += c->cap;
        if (fabs(sum - 100) > 1e-6)
            return errf(err, cap, AG_E_INVAL,
                        "queue %s: capacities of its children sum to %g, not 100", q->path, sum);
    }
    return 0;
}

/* Short leaf names resolve too when unambiguous ("a" for root.x.a). */
static int queue_names(ag_sched *s)
{
    for (size_t i = 0; i < s->nqueues; i++) {
        queue *q = s->queues[i];
        if (!is_leaf(q) || SGET(&s->qmap, q->name))
            continue;
        bool unique = true;
        for (size_t j = 0; j < s->nqueues; j++)
            if (j != i && strcmp(s->queues[j]->name, q->name) == 0)
                unique = false;
        if (unique && SPUT(&s->qmap, q->name, q) < 0)
            return AG_E_NOMEM;
    }
    return 0;
}

/* The labels a queue may use: its own, else its nearest ancestor's. */
static bool queue_has_label(const queue *q, const char *label)
{
    if (str_empty(label))
        return true;
    for (; q; q = q->parent) {
        if (str_empty(q->labels))
            continue;
        if (strcmp(q->labels, "*") == 0)
            return true;
        size_t n = strlen(label);
        for (const char *p = q->labels; *p;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            while (len && *p == ' ') {
                p++;
                len--;
            }
            while (len && p[len - 1] == ' ')
                len--;
            if (len == n && memcmp(p, label, n) == 0)
                return true;
            if (!e)
                break;
            p = e + 1;
        }
        return false;
    }
    return false;
}

static user *queue_user(queue *q, const char *name)
{
    user *u = SGET(&q->users, name);
    if (u)
        return u;
    u = ag_calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->name = ag_strdup(name);
    if (!u->name || SPUT(&q->users, u->name, u) < 0) {
        ag_free(u->name);
        ag_free(u);
        return NULL;
    }
    return u;
}

/* ------------------------------------------------------------------------ */
/* Partitions, racks and the free-node index                                  */
/* ------------------------------------------------------------------------ */

static part *part_get(ag_sched *s, const char *label)
{
    part *p = SGET(&s->partmap, label ? label : "");
    if (p)
        return p;
    part **np = ag_reallocarray(s->parts, s->nparts + 1, sizeof(*np));
    if (!np)
        return NULL;
    s->parts = np;
    p = ag_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->label = ag_strdup(label ? label : "");
    if (!p->label || SPUT(&s->partmap, p->label, p) < 0) {
        ag_free(p->label);
        ag_free(p);
        return NULL;
    }
    s->parts[s->nparts++] = p;
    return p;
}

static rack *rack_get(part *p, const char *name)
{
    rack *r = SGET(&p->racks, name);
    if (r)
        return r;
    r = ag_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->name = ag_strdup(name);
    if (!r->name || SPUT(&p->racks, r->name, r) < 0) {
        ag_free(r->name);
        ag_free(r);
        return NULL;
    }
    return r;
}

static res node_free_res(const node *n)
{
    return rsub(n->cap, n->used);
}

/* Keeps invariant 2 for n. */
static void node_index(ag_sched *s, node *n)
{
    bool want = n->state == NS(RUNNING) && rfits(s->min, node_free_res(n));
    if (want == n->in_free)
        return;
    part *p = n->p;
    rack *r = n->rk;
    if (want) {
        n->fprev = NULL;
        n->fnext = p->free;
        if (p->free)
            p->free->fprev = n;
        p->free = n;
        n->rprev = NULL;
        n->rnext = r->free;
        if (r->free)
            r->free->rprev = n;
        r->free = n;
    } else {
        if (n->fprev)
            n->fprev->fnext = n->fnext;
        else
            p->free = n->fnext;
        if (n->fnext)
            n->fnext->fprev = n->fprev;
        if (n->rprev)
            n->rprev->rnext = n->rnext;
        else
            r->free = n->rnext;
        if (n->rnext)
            n->rnext->rprev = n->rprev;
        n->fprev = n->fnext = n->rprev = n->rnext = NULL;
    }
    n->in_free = want;
}

static bool node_active(const node *n)
{
    return n->state == NS(RUNNING) || n->state == NS(UNHEALTHY);
}

/* Records a node-state change for the AMs' updated_nodes. */
static void node_event(ag_sched *s, node *n)
{
    if (s->nevents >= MAX_NODE_EVENTS)
        return;
    if (GROW(s->events, s->nevents, s->events_cap) < 0)
        return; /* the AMs miss one update; nothing else depends on it */
    s->events[s->nevents++] = n;
}

static res cluster_total(const ag_sched *s)
{
    part *p = SGET((hmap *)&s->partmap, "");
    return p ? p->total : (res){0, 0};
}

/* ------------------------------------------------------------------------ */
/* Applications and containers                                                */
/* ------------------------------------------------------------------------ */

static app *app_get(const ag_sched *s, const AppId *id)
{
    if (!id || id->cluster_timestamp != s->c.cluster_timestamp || id->id < 1 ||
        (size_t)id->id > s->napps)
        return NULL;
    return s->apps[id->id - 1];
}

static ctr *ctr_get(const ag_sched *s, const ContainerId *id, app **ap)
{
    app *a = id && id->app_attempt_id ? app_get(s, id->app_attempt_id->application_id) : NULL;
    if (ap)
        *ap = a;
    return a ? IGET(&a->ctrs, (uint64_t)id->id) : NULL;
}

static cid cid_of(const ContainerId *id)
{
    cid c = {0, 0, id->id};
    if (id->app_attempt_id) {
        c.attempt = id->app_attempt_id->attempt_id;
        if (id->app_attempt_id->application_id)
            c.app_id = id->app_attempt_id->application_id->id;
    }
    return c;
}

static void node_add_cid(cid **arr, size_t *n, size_t *capv, cid c)
{
    for (size_t i = 0; i < *n; i++)
        if ((*arr)[i].app_id == c.app_id && (*arr)[i].id == c.id)
            return;
    if (grow((void **)arr, *n, capv, sizeof(**arr)) < 0)
        return; /* the NM reports it again; we ask again then */
    (*arr)[(*n)++] = c;
}

static void node_cleanup_app(node *n, int32_t app_id)
{
    for (size_t i = 0; i < n->napp_cleanup; i++)
        if (n->app_cleanup[i] == app_id)
            return;
    if (GROW(n->app_cleanup, n->napp_cleanup, n->app_cleanup_cap) < 0)
        return;
    n->app_cleanup[n->napp_cleanup++] = app_id;
}

/* Accounts r to (or, with sign -1, from) the container's node, app, user,
 * leaf and ancestors. */
static void account(ag_sched *s, ctr *c, int sign)
{
    res r = sign > 0 ? c->r : (res){-c->r.mb, -c->r.vc};
    (void)s;
    assert(sign < 0 || IGET(&c->a->ctrs, (uint64_t)c->id.id) == c);
    c->n->used = radd(c->n->used, r);
    assert(c->n->used.mb >= 0 && c->n->used.vc >= 0 && c->a->used.mb + r.mb >= 0);
    c->n->nctrs += sign;
    c->n->p->used = radd(c->n->p->used, r);
    c->a->used = radd(c->a->used, r);
    if (str_empty(c->n->p->label)) {
        if (c->a->u)
            c->a->u->used = radd(c->a->u->used, r);
        for (queue *q = c->a->q; q; q = q->parent)
            q->used = radd(q->used, r);
        if (c->am)
            c->a->q->am_used = radd(c->a->q->am_used, r);
    }
}

/* A new container of a on n: in both lists and accounted. NULL on no
 * memory, with nothing changed. */
static ctr *ctr_new(ag_sched *s, app *a, node *n, res r, int32_t prio, int64_t arid, bool am,
                    int64_t id, uint64_t now)
{
    ctr *c = ag_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->id = (cid){a->id, a->attempt, id ? id : a->next_cid};
    if (IPUT(&a->ctrs, (uint64_t)c->id.id, c) < 0) {
        ag_free(c);
        return NULL;
    }
    if (c->id.id >= a->next_cid)
        a->next_cid = c->id.id + 1;
    c->a = a;
    c->n = n;
    c->r = r;
    c->prio = prio;
    c->arid = arid;
    c->am = am;
    c->created = now;
    c->nnext = n->ctrs;
    if (n->ctrs)
        n->ctrs->nprev = c;
    n->ctrs = c;
    account(s, c, 1);
    node_index(s, n);
    s->containers_allocated++;
    c->uprev = s->unl_tail;
    if (s->unl_tail)
        s->unl_tail->unext = c;
    else
        s->unl_head = c;
    s->unl_tail = c;
    return c;
}

/* Logs a grant's coming (added) or going (conf.track_grants; AM
 * containers are the attempts' business). When the log cannot grow, it is
 * dropped and the next drain sends the whole set instead. */
static void grant_log(ag_sched *s, ctr *c, bool added)
{
    if (!s->c.track_grants || c->am || (!added && !c->logged))
        return;
    c->logged = added;
    if (s->gevs_lost)
        return;
    if (GROW(s->gevs, s->ngevs, s->gevs_cap) < 0) {
        s->gevs_lost = true;
        s->ngevs = 0;
        return;
    }
    s->gevs[s->ngevs++] = (gev){added, c->id, c->n, c->r, c->prio, c->arid};
}

/* Takes a container off the unlaunched list (it runs, or it ended). */
static void unlaunched_remove(ag_sched *s, ctr *c)
{
    if (c->running)
        return;
    grant_log(s, c, false);
    if (c->uprev)
        c->uprev->unext = c->unext;
    else
        s->unl_head = c->unext;
    if (c->unext)
        c->unext->uprev = c->uprev;
    else
        s->unl_tail = c->uprev;
    c->uprev = c->unext = NULL;
}

/* Its NM reported it running (or adopted it running). */
static void ctr_running(ag_sched *s, ctr *c)
{
    unlaunched_remove(s, c);
    c->running = true;
}

static void undelivered_remove(app *a, ctr *c)
{
    for (ctr **pp = &a->undelivered; *pp; pp = &(*pp)->anext) {
        if (*pp == c) {
            *pp = c->anext;
            if (a->undelivered_tail == &c->anext)
                a->undelivered_tail = pp;
            c->anext = NULL;
            return;
        }
    }
}

static void undelivered_add(app *a, ctr *c)
{
    c->anext = NULL;
    if (!a->undelivered_tail)
        a->undelivered_tail = &a->undelivered;
    *a->undelivered_tail = c;
    a->undelivered_tail = &c->anext;
}

static void preempt_forget(app *a, ctr *c)
{
    for (size_t i = 0; i < a->npreempt; i++) {
        if (a->preempt[i] == c) {
            a->preempt[i] = a->preempt[--a->npreempt];
            return;
        }
    }
}

static void fail_attempt(ag_sched *s, app *a, const char *why, uint64_t now);

/* A container ends: out of every list, its resources freed, its status
 * queued for its AM (report) and, when cleanup, its node told to stop it.
 * An AM container's end fails its attempt (unless the attempt has ended). */
static void ctr_complete(ag_sched *s, ctr *c, int32_t exit_status, const char *diag, bool report,
                         bool cleanup, uint64_t now)
{
    app *a = c->a;
    node *n = c->n;
    account(s, c, -1);
    unlaunched_remove(s, c);
    if (c->nprev)
        c->nprev->nnext = c->nnext;
    else
        n->ctrs = c->nnext;
    if (c->nnext)
        c->nnext->nprev = c->nprev;
    node_index(s, n);
    if (!n->dirty && n->in_free && GROW(s->freed, s->nfreed, s->freed_cap) == 0) {
        n->dirty = true; /* else: the next caller's allocate takes the room */
        s->freed[s->nfreed++] = n;
    }
    IDEL(&a->ctrs, (uint64_t)c->id.id);
    if (!c->delivered) /* a delivered container left the list when it went */
        undelivered_remove(a, c);
    preempt_forget(a, c);
    if (cleanup && node_active(n))
        node_add_cid(&n->cleanup, &n->ncleanup, &n->cleanup_cap, c->id);
    if (report && !c->am && c->delivered && a->live && GROW(a->done, a->ndone, a->done_cap) == 0) {
        cstat *st = &a->done[a->ndone];
        st->id = c->id;
        st->exit = exit_status;
        st->r = c->r;
        st->diag = ag_strdup(diag ? diag : "");
        if (st->diag)
            a->ndone++;
    }
    bool was_am = c->am && a->am_ctr == c;
    if (was_am)
        a->am_ctr = NULL;
    if (c->am && !a->live)
        node_cleanup_app(n, a->id); /* the application's last word on this node */
    ag_free(c);
    if (was_am && a->live && a->astate != AT_ENDED) {
        char why[256];
        snprintf(why, sizeof(why), "AM container exited with status %d: %s", (int)exit_status,
                 diag ? diag : "");
        fail_attempt(s, a, why, now);
    }
}

static void app_clear_asks(ag_sched *s, app *a)
{
    (void)s;
    for (skey *k = a->keys, *next; k; k = next) {
        next = k->next;
        if (a->live)
            a->q->pending -= k->any;
        HM_EACH(&k->locs, e)
        {
            loc *l = e->v;
            ag_free(l->name);
            ag_free(l);
        }
        hm_cleanup(&k->locs);
        ag_free(k->label);
        ag_free(k);
    }
    a->keys = NULL;
}

static void app_clear_done(app *a)
{
    for (size_t i = 0; i < a->ndone; i++)
        ag_free(a->done[i].diag);
    a->ndone = 0;
}

static void wait_remove(ag_sched *s, app *a)
{
    if (!a->waiting)
        return;
    for (app **pp = &s->wait; *pp; pp = &(*pp)->wnext) {
        if (*pp == a) {
            *pp = a->wnext;
            break;
        }
    }
    a->wnext = NULL;
    a->waiting = false;
}

static void wait_add(ag_sched *s, app *a)
{
    if (a->waiting)
        return;
    app **pp = &s->wait;
    while (*pp)
        pp = &(*pp)->wnext;
    *pp = a;
    a->wnext = NULL;
    a->waiting = true;
}

enum { KILL_ALL, KILL_AM_ONLY, KILL_ALL_BUT_AM };

static bool kill_wanted(const ctr *c, int mode)
{
    return mode == KILL_ALL || (mode == KILL_AM_ONLY ? c->am : !c->am);
}

/* Completes a's containers chosen by mode (the AM's only, when the others
 * are kept across attempts; all but the AM's, when the AM unregistered and
 * exits on its own). */
static void app_kill_containers(ag_sched *s, app *a, int mode, int32_t exit_status,
                                const char *diag, uint64_t now)
{
    size_t n = 0;
    ctr **v = a->ctrs.n ? ag_calloc(a->ctrs.n, sizeof(*v)) : NULL;
    if (v) {
        HM_EACH(&a->ctrs, e)
        {
            if (kill_wanted(e->v, mode))
                v[n++] = e->v;
        }
        for (size_t i = 0; i < n; i++) {
            node_cleanup_app(v[i]->n, a->id);
            ctr_complete(s, v[i], exit_status, diag, true, true, now);
        }
        ag_free(v);
        return;
    }
    for (;;) { /* no memory for the list: one at a time */
        ctr *victim = NULL;
        HM_EACH(&a->ctrs, e)
        {
            if (kill_wanted(e->v, mode)) {
                victim = e->v;
                break;
            }
        }
        if (!victim)
            break;
        node_cleanup_app(victim->n, a->id);
        ctr_complete(s, victim, exit_status, diag, true, true, now);
    }
}

/* The application ends in state (FINISHED, FAILED, KILLED). */
static void app_end(ag_sched *s, app *a, int state, int final, const char *diag, uint64_t now)
{
    if (!a->live)
        return;
    a->astate = AT_ENDED;
    app_clear_asks(s, a);
    wait_remove(s, a);
    a->live = false; /* before the kills: no attempt retry, no reports */
    /* an AM that unregistered exits by itself: its container ends when its
     * NM says so (or the node is lost) */
    app_kill_containers(s, a, state == ST(FINISHED) ? KILL_ALL_BUT_AM : KILL_ALL, EXIT_KILLED, diag,
                        now);
    app_clear_done(a);
    for (app **pp = &a->q->apps; *pp; pp = &(*pp)->qnext) {
        if (*pp == a) {
            *pp = a->qnext;
            break;
        }
    }
    a->qnext = NULL;
    a->q->napps--;
    a->state = state;
    a->final = final;
    if (diag) {
        char *d = ag_strdup(diag);
        if (d) {
            ag_free(a->diag);
            a->diag = d;
        }
    }
    a->finish_ms = (int64_t)now;
    s->changes++;
    a->undelivered = NULL;
    a->undelivered_tail = NULL;
    a->npreempt = 0;
    s->apps_completed++;
    if (state == ST(KILLED))
        s->apps_killed++;
    else if (state == ST(FAILED))
        s->apps_failed++;
}

static void app_free(app *a)
{
    if (!a)
        return;
    app_clear_asks(NULL, a);
    app_clear_done(a);
    ag_free(a->done);
    ag_free(a->preempt);
    HM_EACH(&a->ctrs, e)
    {
        ag_free(e->v);
    }
    hm_cleanup(&a->ctrs);
    hm_cleanup(&a->nm_sent);
    HM_EACH(&a->black, e)
    {
        ag_free(e->v);
    }
    hm_cleanup(&a->black);
    ag_free(a->name);
    ag_free(a->user);
    ag_free(a->type);
    ag_free(a->label);
    ag_free(a->diag);
    ag_free(a->host);
    ag_free(a->am_spec);
    ag_free(a->last);
    ag_free(a);
}

/* ------------------------------------------------------------------------ */
/* Tokens                                                                     */
/* ------------------------------------------------------------------------ */

static Token *amrm_token(const ag_sched *s, const app *a)
{
    Argot__Sched__V1__AMRMTokenIdentifier ti = ARGOT__SCHED__V1__AMRMTOKEN_IDENTIFIER__INIT;
    ti.app_attempt_id = mk_attempt(s, a->id, a->attempt);
    if (!ti.app_attempt_id)
        return NULL;
    ti.key_id = s->amrm_key.id;
    Token *t = mk_token(&ti.base, &s->amrm_key, "AMRMToken", "");
    ag_rpc_msg_free(&ti.app_attempt_id->base);
    return t;
}

static Token *container_token(const ag_sched *s, const ctr *c)
{
    Argot__Sched__V1__ContainerTokenIdentifier ti =
        ARGOT__SCHED__V1__CONTAINER_TOKEN_IDENTIFIER__INIT;
    uint64_t ttl = s->c.container_token_expiry_ms;
    ti.container_id = mk_cid(s, c->id);
    ti.node_id = mk_nodeid(c->n);
    ti.resource = mk_res(c->r);
    Token *t = NULL;
    if (ti.container_id && ti.node_id && ti.resource) {
        ti.app_submitter = c->a->user;
        ti.expiry_time = s->c.cluster_timestamp + (int64_t)c->created + (int64_t)ttl;
        ti.master_key_id = s->ctr_key.id;
        ti.rm_identifier = s->c.cluster_timestamp;
        ti.priority = c->prio;
        ti.creation_time = s->c.cluster_timestamp + (int64_t)c->created;
        ti.allocation_request_id = c->arid;
        t = mk_token(&ti.base, &s->ctr_key, "ContainerToken", c->n->key);
    }
    ti.app_submitter = NULL;
    ag_rpc_msg_free(ti.container_id ? &ti.container_id->base : NULL);
    ag_rpc_msg_free(ti.node_id ? &ti.node_id->base : NULL);
    ag_rpc_msg_free(ti.resource ? &ti.resource->base : NULL);
    return t;
}

/* An NM token's life: half the keys' (a key signs for about one roll
 * interval and the NMs keep it one more, so a token outlives its key's
 * signing by at most half an interval and stays verifiable till it
 * expires). */
static uint64_t nm_token_ttl(const ag_sched *s)
{
    return s->c.key_roll_interval_ms / 2;
}

/* An NM token: a ContainerTokenIdentifier naming only the attempt (container
 * id 0), the node, the submitter and an expiry (nm_token_ttl from now),
 * signed with the NM-token master key. */
static Argot__Sched__V1__NMToken *nm_token(const ag_sched *s, const app *a, const node *n,
                                           uint64_t now)
{
    Argot__Sched__V1__NMToken *x = MK(Argot__Sched__V1__NMToken, ARGOT__SCHED__V1__NMTOKEN__INIT);
    if (!x)
        return NULL;
    Argot__Sched__V1__ContainerTokenIdentifier ti =
        ARGOT__SCHED__V1__CONTAINER_TOKEN_IDENTIFIER__INIT;
    ti.container_id = mk_cid(s, (cid){a->id, a->attempt, 0});
    ti.node_id = mk_nodeid(n);
    x->node_id = mk_nodeid(n);
    if (ti.container_id && ti.node_id && x->node_id) {
        ti.app_submitter = a->user;
        ti.master_key_id = s->nm_key.id;
        ti.rm_identifier = s->c.cluster_timestamp;
        ti.creation_time = s->c.cluster_timestamp + (int64_t)now;
        ti.expiry_time = ti.creation_time + (int64_t)nm_token_ttl(s);
        x->token = mk_token(&ti.base, &s->nm_key, "NMToken", n->key);
    }
    ti.app_submitter = NULL;
    ag_rpc_msg_free(ti.container_id ? &ti.container_id->base : NULL);
    ag_rpc_msg_free(ti.node_id ? &ti.node_id->base : NULL);
    if (!x->token) {
        ag_rpc_msg_free(&x->base);
        return NULL;
    }
    return x;
}

int ag_sched_amrm_check(ag_sched *s, const uint8_t *id, size_t idlen, const uint8_t *pw,
                        size_t pwlen, Argot__Sched__V1__ApplicationAttemptId **attempt, char *err,
                        size_t cap)
{
    *attempt = NULL;
    Argot__Sched__V1__AMRMTokenIdentifier *ti =
        argot__sched__v1__amrmtoken_identifier__unpack(&pb_allocator, idlen, id);
    if (!ti)
        return errf(err, cap, AG_SCHED_DENIED, "AMRM token: the identifier does not parse");
    int rc = AG_SCHED_DENIED;
    char buf[64];
    const ag_sched_key *k = ti->key_id == s->amrm_key.id                       ? &s->amrm_key
                            : s->amrm_prev.id && ti->key_id == s->amrm_prev.id ? &s->amrm_prev
                                                                               : NULL;
    if (!k || !ag__sched_mac_ok(k, id, idlen, pw, pwlen)) {
        errf(err, cap, rc, "AMRM token: invalid password (forged, or from another RM)");
        goto out;
    }
    app *a = ti->app_attempt_id ? app_get(s, ti->app_attempt_id->application_id) : NULL;
    if (!a) {
        errf(err, cap, rc, "AMRM token: unknown application");
        goto out;
    }
    if (!a->live || ti->app_attempt_id->attempt_id != a->attempt) {
        errf(err, cap, rc, "AMRM token: attempt %d of %s has ended",
             (int)ti->app_attempt_id->attempt_id,
             ag_sched_app_id_str(ti->app_attempt_id->application_id, buf, sizeof(buf)));
        /* a killed application's AM still hears AM_SHUTDOWN from allocate */
        if (!(a->shutdown && ti->app_attempt_id->attempt_id == a->attempt))
            goto out;
    }
    *attempt = mk_attempt(s, a->id, ti->app_attempt_id->attempt_id);
    rc = *attempt ? AG_SCHED_OK : NOMEM(err, cap);
out:
    ag_rpc_msg_free(&ti->base);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Attempts and AM containers                                                 */
/* ------------------------------------------------------------------------ */

static void attempt_reset(ag_sched *s, app *a, uint64_t now)
{
    app_clear_asks(s, a);
    a->resp_id = 0;
    a->has_last = false;
    ag_free(a->last);
    a->last = NULL;
    a->last_len = 0;
    a->last_seen = now;
    hm_cleanup(&a->nm_sent);
    a->nm_renew = false;
    a->amrm_key_id = s->amrm_key.id;
    ag_free(a->host);
    a->host = NULL;
    a->rpc_port = 0;
    a->npreempt = 0;
    a->ev_seen = s->nevents;
    a->am_cid = 0;
}

/* Starts the next attempt: unmanaged AMs may register at once; managed ones
 * wait for an AM container. */
static void attempt_start(ag_sched *s, app *a, uint64_t now)
{
    s->changes++;
    a->attempt++;
    attempt_reset(s, a, now);
    a->state = ST(ACCEPTED);
    if (a->unmanaged) {
        a->astate = AT_LAUNCHED;
    } else {
        a->astate = AT_WAIT_AM;
        wait_add(s, a);
    }
}

static void fail_attempt(ag_sched *s, app *a, const char *why, uint64_t now)
{
    if (!a->live || a->astate == AT_ENDED)
        return;
    char buf[64], msg[512];
    AppId id = ARGOT__SCHED__V1__APPLICATION_ID__INIT;
    id.cluster_timestamp = s->c.cluster_timestamp;
    id.id = a->id;
    ag_sched_app_id_str(&id, buf, sizeof(buf));
    snprintf(msg, sizeof(msg), "attempt %d of %s failed: %s", (int)a->attempt, buf, why);
    AG_LOG(AG_LOG_INFO, "sched", "attempt_failed app=%s attempt=%d", buf, (int)a->attempt);
    a->astate = AT_ENDED;
    s->changes++;
    wait_remove(s, a);
    bool retry = a->attempt < a->max_attempts;
    app_kill_containers(s, a, retry && a->keep ? KILL_AM_ONLY : KILL_ALL, EXIT_ATTEMPT_ENDED, msg,
                        now);
    char *d = ag_strdup(msg);
    if (d) {
        ag_free(a->diag);
        a->diag = d;
    }
    if (!retry) {
        app_end(s, a, ST(FAILED), FS(APP_FAILED), msg, now);
        return;
    }
    app_clear_done(a);
    /* kept containers are the new attempt's to learn at registration */
    HM_EACH(&a->ctrs, e)
    {
        ((ctr *)e->v)->delivered = false;
    }
    a->undelivered = NULL;
    a->undelivered_tail = NULL;
    attempt_start(s, a, now);
}

static bool queue_allows(const ag_sched *s, const app *a, res r, bool am, const part *p);

/* A node of partition p with r free (and, if a is given, not on its
 * blacklist), from a free list. */
static node *find_free(node *head, bool by_rack, res r, const app *a)
{
    for (node *n = head; n; n = by_rack ? n->rnext : n->fnext) {
        if (!rfits(r, node_free_res(n)))
            continue;
        if (a && a->black.n && SGET(&a->black, n->host))
            continue;
        return n;
    }
    return NULL;
}

static bool launch_add(ag_sched *s, app *a, int64_t id)
{
    if (GROW(s->launches, s->nlaunches, s->launches_cap) < 0)
        return false;
    s->launches[s->nlaunches++] = (launch){a, a->attempt, id};
    return true;
}

/* Places a's AM container on n (or, n NULL, anywhere in its partition). */
static bool place_am(ag_sched *s, app *a, node *n, uint64_t now)
{
    part *p = SGET(&s->partmap, a->label ? a->label : "");
    if (!p || !queue_allows(s, a, a->am_res, true, p))
        return false;
    if (n) {
        if (n->p != p || !n->in_free || !rfits(a->am_res, node_free_res(n)))
            return false;
    } else {
        n = find_free(p->free, false, a->am_res, NULL);
        if (!n)
            return false;
    }
    if (GROW(s->launches, s->nlaunches, s->launches_cap) < 0)
        return false;
    ctr *c = ctr_new(s, a, n, a->am_res, a->prio, 0, true, 0, now);
    if (!c)
        return false;
    launch_add(s, a, c->id.id); /* cannot fail: room was made */
    a->am_ctr = c;
    a->am_cid = c->id.id;
    s->changes++;
    a->astate = AT_LAUNCHED;
    a->last_seen = now;
    wait_remove(s, a);
    return true;
}

/* Gives AM containers to waiting applications, FIFO (on n, or anywhere). */
static void place_ams(ag_sched *s, node *n, uint64_t now)
{
    for (app *a = s->wait, *next; a; a = next) {
        next = a->wnext;
        place_am(s, a, n, now);
        if (n && !n->in_free)
            return;
    }
}

/* ------------------------------------------------------------------------ */
/* Limits and scheduling                                                      */
/* ------------------------------------------------------------------------ */

static bool over(res used, res r, double frac, res total)
{
    return (double)(used.mb + r.mb) > frac * (double)total.mb + 1e-6 ||
           (double)(used.vc + r.vc) > frac * (double)total.vc + 1e-6;
}

/* May a (in its leaf) take r more in partition p? Labelled partitions are
 * shared FIFO by the queues that may use them: only node room limits them. */
static bool queue_allows(const ag_sched *s, const app *a, res r, bool am, const part *p)
{
    if (!str_empty(p->label))
        return true;
    res total = p->total;
    queue *leaf = a->q;
    for (queue *q = leaf; q; q = q->parent)
        if (over(q->used, r, q->abs_max, total))
            return false;
    if (over(leaf->used, r, leaf->abs_cap, total)) {
        /* elastic growth past the guarantee only while no other leaf with
         * asks waiting could still take a container within its own
         * guarantee (so free room is never left idle by two leaves
         * deferring to each other) */
        for (size_t i = 0; i < s->nqueues; i++) {
            queue *o = s->queues[i];
            if (o == leaf || !is_leaf(o) || o->pending <= 0)
                continue;
            if (!over(o->used, s->min, o->abs_cap, total))
                return false;
        }
    }
    if (a->u && a->u->used.mb > 0 && over(a->u->used, r, leaf->abs_cap * leaf->ulf, total))
        return false;
    if (am && leaf->am_used.mb > 0 && over(leaf->am_used, r, leaf->abs_cap * leaf->am_share, total))
        return false;
    return true;
}

static res headroom(const ag_sched *s, const app *a)
{
    part *p = SGET((hmap *)&s->partmap, "");
    if (!p)
        return (res){0, 0};
    res total = p->total;
    queue *leaf = a->q;
    double fm = (double)total.mb, fv = (double)total.vc;
    res room = rsub(total, p->used);
    for (queue *q = leaf; q; q = q->parent) {
        room.mb = AG_MIN(room.mb, (int64_t)(q->abs_max * fm) - q->used.mb);
        room.vc = AG_MIN(room.vc, (int32_t)(q->abs_max * fv) - q->used.vc);
    }
    if (a->u) {
        double f = leaf->abs_cap * leaf->ulf;
        room.mb = AG_MIN(room.mb, (int64_t)(f * fm) - a->u->used.mb);
        room.vc = AG_MIN(room.vc, (int32_t)(f * fv) - a->u->used.vc);
    }
    room.mb = AG_MAX(room.mb, 0);
    room.vc = AG_MAX(room.vc, 0);
    return room;
}

static bool node_ok(const node *n, const part *p, res r, const app *a)
{
    return n->p == p && n->in_free && rfits(r, node_free_res(n)) &&
           !(a->black.n && SGET((hmap *)&a->black, n->host));
}

enum { L_NODE, L_RACK, L_ANY };

/* The node for one container of k: node-local first, then (after the
 * delays) rack-local and off-switch. only: the one node on offer (a
 * heartbeat), else any node (an allocate). */
static node *pick(ag_sched *s, app *a, skey *k, part *p, node *only, int *level)
{
    if (!k->locs.n) {
        *level = L_ANY;
        if (only)
            return node_ok(only, p, k->cap, a) ? only : NULL;
        return find_free(p->free, false, k->cap, a);
    }
    *level = L_NODE;
    if (only) {
        loc *l = SGET(&k->locs, only->host);
        if (l && !l->is_rack && l->n > 0 && node_ok(only, p, k->cap, a))
            return only;
    } else if (k->nhosts) {
        HM_EACH(&k->locs, e)
        {
            loc *l = e->v;
            if (l->is_rack || l->n <= 0)
                continue;
            for (node *n = SGET(&s->hosts, l->name); n; n = n->hnext)
                if (node_ok(n, p, k->cap, a))
                    return n;
        }
    }
    if (k->misses < s->nl_delay)
        return NULL;
    *level = L_RACK;
    if (only) {
        loc *l = SGET(&k->locs, only->rack_name);
        if (l && l->is_rack && l->n > 0 && l->relax && node_ok(only, p, k->cap, a))
            return only;
    } else {
        HM_EACH(&k->locs, e)
        {
            loc *l = e->v;
            if (!l->is_rack || l->n <= 0 || !l->relax)
                continue;
            rack *r = SGET(&p->racks, l->name);
            node *n = r ? find_free(r->free, true, k->cap, a) : NULL;
            if (n)
                return n;
        }
    }
    if (k->misses < s->rack_delay || !k->any_relax)
        return NULL;
    *level = L_ANY;
    if (only)
        return node_ok(only, p, k->cap, a) ? only : NULL;
    return find_free(p->free, false, k->cap, a);
}

static void loc_dec(skey *k, const char *name)
{
    loc *l = SGET(&k->locs, name);
    if (l && l->n > 0)
        l->n--;
}

/* Grants what it can of k; returns how many. */
static int sched_key(ag_sched *s, app *a, skey *k, node *only, uint64_t now)
{
    part *p = SGET(&s->partmap, k->label);
    int granted = 0;
    if (!p || (only && only->p != p))
        return 0;
    while (k->any > 0) {
        if (!queue_allows(s, a, k->cap, false, p))
            break;
        int level;
        node *n = pick(s, a, k, p, only, &level);
        if (!n) {
            if (k->locs.n)
                k->misses++;
            break;
        }
        ctr *c = ctr_new(s, a, n, k->cap, k->prio, k->arid, false, 0, now);
        if (!c)
            break;
        grant_log(s, c, true);
        undelivered_add(a, c);
        k->any--;
        a->q->pending--;
        assert(a->q->pending >= 0);
        loc_dec(k, n->host);
        loc_dec(k, n->rack_name);
        if (level == L_NODE)
            k->misses = 0;
        granted++;
        if (only && !only->in_free)
            break;
    }
    return granted;
}

static int sched_app(ag_sched *s, app *a, node *only, uint64_t now)
{
    int granted = 0;
    for (skey *k = a->keys; k; k = k->next) {
        if (k->any > 0)
            granted += sched_key(s, a, k, only, now);
        if (only && !only->in_free)
            break;
    }
    return granted;
}

static double rel_used(const queue *q, res total)
{
    if (q->abs_cap <= 0 || total.mb <= 0)
        return q->used.mb > 0 ? 1e300 : 0;
    return (double)q->used.mb / (q->abs_cap * (double)total.mb);
}

/* A heartbeat's scheduling: the node's room goes to waiting AMs first,
 * then to leaves least used relative to their capacity, FIFO within each. */
static void sched_node(ag_sched *s, node *n, uint64_t now)
{
    place_ams(s, n, now);
    res total = cluster_total(s);
    while (n->in_free) {
        bool granted = false;
        s->gen++;
        for (;;) {
            /* the least relatively used leaf with work not yet tried */
            queue *best = NULL;
            for (size_t i = 0; i < s->nqueues; i++) {
                queue *q = s->queues[i];
                if (!is_leaf(q) || q->pending <= 0 || q->mark == s->gen)
                    continue;
                if (!best || rel_used(q, total) < rel_used(best, total))
                    best = q;
            }
            if (!best)
                break;
            best->mark = s->gen;
            for (app *a = best->apps; a && !granted; a = a->qnext)
                if (a->keys && sched_app(s, a, n, now) > 0)
                    granted = true;
            if (granted)
                break;
        }
        if (!granted)
            break;
    }
}

/* Room that containers freed goes first to waiting AMs and to the leaves
 * and applications whose turn it is (as a heartbeat of that node would
 * give it), before the caller of an allocate takes what is left: so FIFO
 * within a leaf and the leaves' order hold although allocation is driven
 * by allocate calls. */
static void flush_freed(ag_sched *s, uint64_t now)
{
    while (s->nfreed) {
        node *n = s->freed[--s->nfreed];
        n->dirty = false;
        sched_node(s, n, now);
    }
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                  */
/* ------------------------------------------------------------------------ */

ag_sched *ag_sched_new(const ag_sched_conf *c, char *err, size_t cap)
{
    ag_sched *s = ag_calloc(1, sizeof(*s));
    if (!s) {
        NOMEM(err, cap);
        return NULL;
    }
    s->c = *c;
    s->c.queues = NULL;
    s->c.nqueues = 0;
    s->min = (res){c->min_alloc_mb ? c->min_alloc_mb : 1024,
                   c->min_alloc_vcores ? c->min_alloc_vcores : 1};
    s->max = (res){c->max_alloc_mb ? c->max_alloc_mb : 8192,
                   c->max_alloc_vcores ? c->max_alloc_vcores : 4};
    s->nl_delay = c->node_locality_delay == 0 ? 40 : AG_MAX(c->node_locality_delay, 0);
    s->rack_delay = c->rack_locality_delay == 0 ? 80 : AG_MAX(c->rack_locality_delay, 0);
    if (!s->c.max_app_attempts)
        s->c.max_app_attempts = 2;
    if (!s->c.nm_expiry_ms)
        s->c.nm_expiry_ms = 600000;
    if (!s->c.am_expiry_ms)
        s->c.am_expiry_ms = 600000;
    if (!s->c.heartbeat_interval_ms)
        s->c.heartbeat_interval_ms = 1000;
    if (!s->c.preemption_wait_ms)
        s->c.preemption_wait_ms = 15000;
    if (!s->c.container_token_expiry_ms)
        s->c.container_token_expiry_ms = 600000;
    if (!s->c.container_alloc_expiry_ms)
        s->c.container_alloc_expiry_ms = 600000;
    if (!s->c.key_roll_interval_ms)
        s->c.key_roll_interval_ms = 86400000;
    if (s->min.mb <= 0 || s->min.vc <= 0 || !rfits(s->min, s->max)) {
        errf(err, cap, AG_E_INVAL,
             "minimum allocation %" PRId64 " MB, %d vcores is not within"
             " the maximum %" PRId64 " MB, %d vcores",
             s->min.mb, (int)s->min.vc, s->max.mb, (int)s->max.vc);
        goto fail;
    }
    if (ag__sched_key_new(&s->ctr_key, 1) < 0 || ag__sched_key_new(&s->nm_key, 1) < 0 ||
        ag__sched_key_new(&s->amrm_key, 1) < 0) {
        errf(err, cap, AG_E_SYS, "cannot draw master keys");
        goto fail;
    }
    s->root = queue_new("root", NULL);
    if (!s->root || queue_add(s, s->root) < 0) {
        if (s->root && s->nqueues == 0)
            queue_free(s->root);
        NOMEM(err, cap);
        goto fail;
    }
    if (!c->nqueues) {
        ag_sched_queue_conf d = {"root.default", 100, 100, 1, 0.1, ""};
        if (queue_conf(s, &d, err, cap) != 0)
            goto fail;
    }
    for (size_t i = 0; i < c->nqueues; i++)
        if (queue_conf(s, &c->queues[i], err, cap) != 0)
            goto fail;
    if (queue_check(s, err, cap) != 0)
        goto fail;
    if (queue_names(s) < 0 || !part_get(s, "")) {
        NOMEM(err, cap);
        goto fail;
    }
    return s;
fail:
    ag_sched_free(s);
    return NULL;
}

static void node_free(node *n)
{
    ag_free(n->key);
    ag_free(n->host);
    ag_free(n->rack_name);
    ag_free(n->label);
    ag_free(n->health);
    ag_free(n->cleanup);
    ag_free(n->removed);
    ag_free(n->app_cleanup);
    ag_free(n);
}

void ag_sched_free(ag_sched *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->napps; i++)
        app_free(s->apps[i]);
    ag_free(s->apps);
    for (size_t i = 0; i < s->nnodes; i++)
        node_free(s->nodes[i]);
    ag_free(s->nodes);
    hm_cleanup(&s->nodemap);
    hm_cleanup(&s->hosts);
    for (size_t i = 0; i < s->nparts; i++) {
        part *p = s->parts[i];
        HM_EACH(&p->racks, e)
        {
            rack *r = e->v;
            ag_free(r->name);
            ag_free(r);
        }
        hm_cleanup(&p->racks);
        ag_free(p->label);
        ag_free(p);
    }
    ag_free(s->parts);
    hm_cleanup(&s->partmap);
    for (size_t i = 0; i < s->nqueues; i++)
        queue_free(s->queues[i]);
    ag_free(s->queues);
    hm_cleanup(&s->qmap);
    ag_free(s->events);
    ag_free(s->freed);
    ag_free(s->launches);
    ag_free(s->gevs);
    for (size_t i = 0; i < s->npgrants; i++) {
        ag_free(s->pgrants[i].node);
        ag_free(s->pgrants[i].host);
    }
    ag_free(s->pgrants);
    ag_wipe(&s->ctr_key, sizeof(s->ctr_key));
    ag_wipe(&s->nm_key, sizeof(s->nm_key));
    ag_wipe(&s->amrm_key, sizeof(s->amrm_key));
    ag_wipe(&s->ctr_prev, sizeof(s->ctr_prev));
    ag_wipe(&s->nm_prev, sizeof(s->nm_prev));
    ag_wipe(&s->amrm_prev, sizeof(s->amrm_prev));
    ag_wipe(&s->ctr_next, sizeof(s->ctr_next));
    ag_wipe(&s->nm_next, sizeof(s->nm_next));
    ag_free(s);
}

/* ------------------------------------------------------------------------ */
/* ApplicationClient                                                          */
/* ------------------------------------------------------------------------ */

int ag_sched_new_application(ag_sched *s, uint64_t now_ms,
                             Argot__Sched__V1__GetNewApplicationResponse *resp, char *err,
                             size_t cap)
{
    (void)now_ms;
    if (s->next_app == INT32_MAX)
        return errf(err, cap, AG_SCHED_EXHAUSTED, "no application ids left");
    resp->application_id = mk_appid(s, s->next_app + 1);
    resp->maximum_capability = mk_res(s->max);
    if (!resp->application_id || !resp->maximum_capability) {
        ag_sched_resp_clear(&resp->base);
        return NOMEM(err, cap);
    }
    s->next_app++;
    return AG_SCHED_OK;
}

static res normalize(const ag_sched *s, res r)
{
    res n;
    n.mb = AG_MAX(r.mb, s->min.mb);
    n.mb = (n.mb + s->min.mb - 1) / s->min.mb * s->min.mb;
    n.vc = AG_MAX(r.vc, s->min.vc);
    n.vc = (n.vc + s->min.vc - 1) / s->min.vc * s->min.vc;
    return n;
}

static int check_res(const ag_sched *s, const Resource *r, res *out, const char *what, char *err,
                     size_t cap)
{
    res x = r ? (res){r->memory_mb, r->vcores} : (res){0, 0};
    if (x.mb < 0 || x.vc < 0)
        return errf(err, cap, AG_SCHED_INVALID, "%s: negative resource (%" PRId64 " MB, %d vcores)",
                    what, x.mb, (int)x.vc);
    x = normalize(s, x);
    if (!rfits(x, s->max))
        return errf(err, cap, AG_SCHED_INVALID,
                    "%s: %" PRId64 " MB, %d vcores exceeds the maximum allocation (%" PRId64
                    " MB, %d vcores)",
                    what, r ? r->memory_mb : 0, r ? (int)r->vcores : 0, s->max.mb, (int)s->max.vc);
    *out = x;
    return 0;
}

static queue *find_leaf(ag_sched *s, const char *name, char *err, size_t cap, int *rc)
{
    const char *qn = str_empty(name) ? "default" : name;
    queue *q = SGET(&s->qmap, qn);
    if (!q) {
        char full[256];
        snprintf(full, sizeof(full), "root.%s", qn);
        q = SGET(&s->qmap, full);
    }
    if (!q) {
        *rc = errf(err, cap, AG_SCHED_NOT_FOUND, "queue '%s' does not exist", qn);
        return NULL;
    }
    if (!is_leaf(q)) {
        *rc = errf(err, cap, AG_SCHED_INVALID, "queue %s is not a leaf queue", q->path);
        return NULL;
    }
    return q;
}

/* Inserts a into q's list by (priority, submission): a higher application
 * priority first (YARN's application priority; a ResourceRequest's
 * priority is the other way round), then earlier submissions. */
static void queue_insert(queue *q, app *a)
{
    app **pp = &q->apps;
    while (*pp && ((*pp)->prio > a->prio || ((*pp)->prio == a->prio && (*pp)->seq < a->seq)))
        pp = &(*pp)->qnext;
    a->qnext = *pp;
    *pp = a;
    q->napps++;
}

/* Checks a submission and creates its application in its queue, with no
 * attempt yet (submit and recovery start one each their way): 0 with *out
 * set, or a refusal with nothing changed. */
static int app_create(ag_sched *s, const Argot__Sched__V1__ApplicationSubmissionContext *ctx,
                      uint64_t now_ms, app **out, char *err, size_t cap)
{
    char buf[64];
    const AppId *id = ctx->application_id;
    ag_sched_app_id_str(id, buf, sizeof(buf));
    if ((size_t)id->id <= s->napps && s->apps[id->id - 1])
        return errf(err, cap, AG_SCHED_EXISTS, "application %s was already submitted", buf);
    int rc = 0;
    queue *q = find_leaf(s, ctx->queue, err, cap, &rc);
    if (!q)
        return rc;
    res am = {0, 0};
    if (!ctx->unmanaged_am) {
        char what[96];
        snprintf(what, sizeof(what), "application %s: AM resource", buf);
        rc = check_res(s, ctx->resource, &am, what, err, cap);
        if (rc != 0)
            return rc;
    }
    const char *label = ctx->node_label_expression ? ctx->node_label_expression : "";
    if (!queue_has_label(q, label))
        return errf(err, cap, AG_SCHED_INVALID, "application %s: queue %s may not use label '%s'",
                    buf, q->path, label);
    if ((size_t)id->id > s->apps_cap) {
        size_t nc = AG_MAX(s->apps_cap * 2, (size_t)id->id);
        nc = AG_MAX(nc, 16);
        app **na = ag_reallocarray(s->apps, nc, sizeof(*na));
        if (!na)
            return NOMEM(err, cap);
        memset(na + s->apps_cap, 0, (nc - s->apps_cap) * sizeof(*na));
        s->apps = na;
        s->apps_cap = nc;
    }
    const char *uname = str_empty(ctx->user) ? "anonymous" : ctx->user;
    app *a = ag_calloc(1, sizeof(*a));
    if (!a)
        return NOMEM(err, cap);
    a->id = id->id;
    a->name = ag_strdup(ctx->application_name ? ctx->application_name : "");
    a->user = ag_strdup(uname);
    a->type = ag_strdup(ctx->application_type ? ctx->application_type : "");
    a->label = ag_strdup(label);
    a->u = queue_user(q, uname);
    if (!ctx->unmanaged_am && ctx->am_container_spec)
        a->am_spec = pack(&ctx->am_container_spec->base, &a->am_spec_len);
    if (!a->name || !a->user || !a->type || !a->label || !a->u ||
        (!ctx->unmanaged_am && ctx->am_container_spec && !a->am_spec) ||
        (str_empty(label) ? false : !part_get(s, label))) {
        app_free(a);
        return NOMEM(err, cap);
    }
    a->q = q;
    a->prio = ctx->priority;
    a->seq = ++s->seq;
    a->unmanaged = ctx->unmanaged_am;
    a->keep = ctx->keep_containers_across_application_attempts;
    a->max_attempts = ctx->max_app_attempts > 0 ? ctx->max_app_attempts : s->c.max_app_attempts;
    a->am_res = am;
    a->start_ms = s->c.cluster_timestamp + (int64_t)now_ms;
    a->next_cid = 1;
    a->live = true;
    s->apps[a->id - 1] = a;
    if ((size_t)a->id > s->napps)
        s->napps = (size_t)a->id;
    queue_insert(q, a);
    s->apps_submitted++;
    *out = a;
    return AG_SCHED_OK;
}

int ag_sched_submit(ag_sched *s, const Argot__Sched__V1__ApplicationSubmissionContext *ctx,
                    uint64_t now_ms, char *err, size_t cap)
{
    char buf[64];
    const AppId *id = ctx ? ctx->application_id : NULL;
    if (!id || id->cluster_timestamp != s->c.cluster_timestamp || id->id < 1 ||
        id->id > s->next_app)
        return errf(err, cap, AG_SCHED_INVALID, "application id %s was not handed out by this RM",
                    id ? ag_sched_app_id_str(id, buf, sizeof(buf)) : "(none)");
    app *a = NULL;
    int rc = app_create(s, ctx, now_ms, &a, err, cap);
    if (rc != AG_SCHED_OK)
        return rc;
    attempt_start(s, a, now_ms);
    if (!a->unmanaged)
        place_ams(s, NULL, now_ms);
    AG_LOG(AG_LOG_INFO, "sched", "app_submitted app=%s queue=%s user=%s",
           ag_sched_app_id_str(id, buf, sizeof(buf)), a->q->path, a->user);
    return AG_SCHED_OK;
}

/* ---- recovery ---- */

void ag_sched_export_keys(const ag_sched *s, ag_sched_keys *out)
{
    out->container = s->ctr_key;
    out->nm = s->nm_key;
    out->amrm = s->amrm_key;
    out->prev_container = s->ctr_prev;
    out->prev_nm = s->nm_prev;
    out->prev_amrm = s->amrm_prev;
    out->next_container = s->ctr_next;
    out->next_nm = s->nm_next;
}

void ag_sched_import_keys(ag_sched *s, const ag_sched_keys *k)
{
    s->ctr_key = k->container;
    s->nm_key = k->nm;
    s->amrm_key = k->amrm;
    s->ctr_prev = k->prev_container;
    s->nm_prev = k->prev_nm;
    s->amrm_prev = k->prev_amrm;
    s->ctr_next = k->next_container;
    s->nm_next = k->next_nm;
    if (!s->ctr_next.id || !s->nm_next.id) /* both or neither */
        s->ctr_next.id = s->nm_next.id = 0;
    s->roll_timed = false; /* the clock of the rolls starts again at the next tick */
}

uint64_t ag_sched_key_changes(const ag_sched *s)
{
    return s->key_changes;
}

int32_t ag_sched_last_app_id(const ag_sched *s)
{
    return s->next_app;
}

void ag_sched_set_last_app_id(ag_sched *s, int32_t id)
{
    if (id > s->next_app)
        s->next_app = id;
}

int ag_sched_recover_app(ag_sched *s, const Argot__Sched__V1__ApplicationSubmissionContext *ctx,
                         const ag_sched_recovery *r, uint64_t now_ms, char *err, size_t cap)
{
    char buf[64];
    const AppId *id = ctx ? ctx->application_id : NULL;
    if (!id || id->cluster_timestamp != s->c.cluster_timestamp || id->id < 1)
        return errf(err, cap, AG_SCHED_INVALID, "recover: application id %s is not this RM's",
                    id ? ag_sched_app_id_str(id, buf, sizeof(buf)) : "(none)");
    ag_sched_app_id_str(id, buf, sizeof(buf));
    if (r->attempt < 1 || r->am_container < 0 || r->next_container < 0)
        return errf(err, cap, AG_SCHED_INVALID, "recover %s: bad attempt %d", buf,
                    (int)r->attempt);
    ag_sched_set_last_app_id(s, id->id);
    app *a = NULL;
    int rc = app_create(s, ctx, now_ms, &a, err, cap);
    if (rc != AG_SCHED_OK)
        return rc;
    if (r->start_ms > 0)
        a->start_ms = r->start_ms;
    a->next_cid = AG_MAX(r->next_container, 1);
    if (r->am_container >= a->next_cid)
        a->next_cid = r->am_container + 1;
    a->attempt = r->attempt;
    if (r->attempt_ended) {
        /* the attempt ended and its successor was not recorded: start it */
        if (a->attempt >= a->max_attempts) {
            app_end(s, a, ST(FAILED), FS(APP_FAILED), "attempts exhausted before the RM restart",
                    now_ms);
            return AG_SCHED_OK;
        }
        attempt_start(s, a, now_ms);
    } else if (!a->unmanaged && !r->am_container) {
        /* no AM container was placed (the store has it before the launch) */
        a->attempt--;
        attempt_start(s, a, now_ms);
    } else {
        attempt_reset(s, a, now_ms);
        a->amrm_key_id = 0; /* its AM's token may be of a key about to go: a fresh one */
        a->am_cid = r->am_container;
        a->astate = AT_LAUNCHED; /* waits for its AM to register again */
        a->state = r->registered ? ST(RUNNING) : ST(ACCEPTED);
    }
    if (a->astate == AT_WAIT_AM)
        place_ams(s, NULL, now_ms);
    s->changes++;
    AG_LOG(AG_LOG_INFO, "sched", "app_recovered app=%s queue=%s attempt=%d", buf, a->q->path,
           (int)a->attempt);
    return AG_SCHED_OK;
}

uint64_t ag_sched_changes(const ag_sched *s)
{
    return s->changes;
}

int ag_sched_get_app_state(const ag_sched *s, int32_t app_id, ag_sched_app_state *out)
{
    if (app_id < 1 || (size_t)app_id > s->napps || !s->apps[app_id - 1])
        return AG_SCHED_NOT_FOUND;
    const app *a = s->apps[app_id - 1];
    out->state = a->state;
    out->attempt = a->attempt;
    out->attempt_ended = a->astate == AT_ENDED;
    out->am_container = a->am_cid;
    return AG_SCHED_OK;
}

static Argot__Sched__V1__ApplicationReport *app_report(const ag_sched *s, const app *a)
{
    Argot__Sched__V1__ApplicationReport *r =
        MK(Argot__Sched__V1__ApplicationReport, ARGOT__SCHED__V1__APPLICATION_REPORT__INIT);
    if (!r)
        return NULL;
    r->yarn_application_state = a->state;
    r->final_application_status = a->final;
    r->start_time = a->start_ms;
    r->finish_time = a->finish_ms ? s->c.cluster_timestamp + a->finish_ms : 0;
    r->progress = a->progress;
    r->rpc_port = a->rpc_port;
    r->num_containers = (int32_t)a->ctrs.n;
    /* on failure the whole message goes: NULL fields free as nothing */
    r->application_id = mk_appid(s, a->id);
    r->user = pbstr(a->user);
    r->queue = pbstr(a->q->path);
    r->name = pbstr(a->name);
    r->host = pbstr(a->host);
    r->diagnostics = pbstr(a->diag);
    r->application_type = pbstr(a->type);
    r->used = mk_res(a->used);
    r->current_application_attempt_id = mk_attempt(s, a->id, a->attempt);
    if (a->unmanaged && a->live)
        r->am_rm_token = amrm_token(s, a);
    bool ok = r->application_id && r->user && r->queue && r->name && r->host && r->diagnostics &&
              r->application_type && r->used && r->current_application_attempt_id &&
              (r->am_rm_token || !(a->unmanaged && a->live));
    if (!ok) {
        ag_rpc_msg_free(&r->base);
        return NULL;
    }
    return r;
}

int ag_sched_app_report(ag_sched *s, const Argot__Sched__V1__ApplicationId *id,
                        Argot__Sched__V1__ApplicationReport **out, char *err, size_t cap)
{
    char buf[64];
    *out = NULL;
    app *a = app_get(s, id);
    if (!a)
        return errf(err, cap, AG_SCHED_NOT_FOUND, "application %s does not exist",
                    id ? ag_sched_app_id_str(id, buf, sizeof(buf)) : "(none)");
    *out = app_report(s, a);
    return *out ? AG_SCHED_OK : NOMEM(err, cap);
}

int ag_sched_apps(ag_sched *s, const Argot__Sched__V1__GetApplicationsRequest *req,
                  Argot__Sched__V1__GetApplicationsResponse *resp)
{
    if (s->napps) {
        resp->applications = ag_calloc(s->napps, sizeof(*resp->applications));
        if (!resp->applications)
            return AG_SCHED_EXHAUSTED;
    }
    for (size_t i = 0; i < s->napps; i++) {
        app *a = s->apps[i];
        if (!a)
            continue;
        bool want = !req || req->n_application_states == 0;
        for (size_t j = 0; req && j < req->n_application_states; j++)
            if ((int)req->application_states[j] == a->state)
                want = true;
        if (!want)
            continue;
        Argot__Sched__V1__ApplicationReport *r = app_report(s, a);
        if (!r) {
            ag_sched_resp_clear(&resp->base);
            return AG_SCHED_EXHAUSTED;
        }
        resp->applications[resp->n_applications++] = r;
    }
    return AG_SCHED_OK;
}

int ag_sched_kill(ag_sched *s, const Argot__Sched__V1__ApplicationId *id, const char *why,
                  uint64_t now_ms, char *err, size_t cap)
{
    char buf[64];
    app *a = app_get(s, id);
    if (!a)
        return errf(err, cap, AG_SCHED_NOT_FOUND, "application %s does not exist",
                    id ? ag_sched_app_id_str(id, buf, sizeof(buf)) : "(none)");
    if (!a->live)
        return AG_SCHED_OK; /* already ended: nothing to kill */
    char msg[512];
    snprintf(msg, sizeof(msg), "killed: %s", str_empty(why) ? "by the user" : why);
    bool am_up = a->astate == AT_REGISTERED || a->astate == AT_LAUNCHED;
    app_end(s, a, ST(KILLED), FS(APP_KILLED), msg, now_ms);
    a->shutdown = am_up;
    flush_freed(s, now_ms);
    AG_LOG(AG_LOG_INFO, "sched", "app_killed app=%s", ag_sched_app_id_str(id, buf, sizeof(buf)));
    return AG_SCHED_OK;
}

static Argot__Sched__V1__NodeReport *node_report(const node *n)
{
    Argot__Sched__V1__NodeReport *r =
        MK(Argot__Sched__V1__NodeReport, ARGOT__SCHED__V1__NODE_REPORT__INIT);
    if (!r)
        return NULL;
    char http[300];
    snprintf(http, sizeof(http), "%s:%d", n->host, (int)n->http_port);
    r->num_containers = n->nctrs;
    r->node_state = n->state;
    r->last_health_report_time = n->health_ms;
    r->node_id = mk_nodeid(n);
    r->http_address = pbstr(http);
    r->rack_name = pbstr(n->rack_name);
    r->used = mk_res(n->used);
    r->capability = mk_res(n->cap);
    r->health_report = pbstr(n->health);
    bool ok = r->node_id && r->http_address && r->rack_name && r->used && r->capability &&
              r->health_report;
    if (ok && !str_empty(n->label)) {
        r->node_labels = ag_calloc(1, sizeof(char *));
        ok = r->node_labels != NULL;
        if (ok) {
            r->node_labels[0] = ag_strdup(n->label);
            r->n_node_labels = 1; /* a NULL entry frees as nothing */
            ok = r->node_labels[0] != NULL;
        }
    }
    if (!ok) {
        ag_rpc_msg_free(&r->base);
        return NULL;
    }
    return r;
}

int ag_sched_nodes(ag_sched *s, const Argot__Sched__V1__GetClusterNodesRequest *req,
                   Argot__Sched__V1__GetClusterNodesResponse *resp)
{
    if (s->nnodes) {
        resp->node_reports = ag_calloc(s->nnodes, sizeof(*resp->node_reports));
        if (!resp->node_reports)
            return AG_SCHED_EXHAUSTED;
    }
    for (size_t i = 0; i < s->nnodes; i++) {
        node *n = s->nodes[i];
        bool want = !req || req->n_node_states == 0;
        for (size_t j = 0; req && j < req->n_node_states; j++)
            if ((int)req->node_states[j] == n->state)
                want = true;
        if (!want)
            continue;
        Argot__Sched__V1__NodeReport *r = node_report(n);
        if (!r) {
            ag_sched_resp_clear(&resp->base);
            return AG_SCHED_EXHAUSTED;
        }
        resp->node_reports[resp->n_node_reports++] = r;
    }
    return AG_SCHED_OK;
}

int ag_sched_metrics(ag_sched *s, Argot__Sched__V1__GetClusterMetricsResponse *resp)
{
    Argot__Sched__V1__ClusterMetrics *m =
        MK(Argot__Sched__V1__ClusterMetrics, ARGOT__SCHED__V1__CLUSTER_METRICS__INIT);
    if (!m)
        return AG_SCHED_EXHAUSTED;
    resp->cluster_metrics = m;
    res total = {0, 0}, used = {0, 0};
    for (size_t i = 0; i < s->nparts; i++) {
        total = radd(total, s->parts[i]->total);
        used = radd(used, s->parts[i]->used);
    }
    for (size_t i = 0; i < s->nnodes; i++) {
        int st = s->nodes[i]->state;
        m->num_node_managers++;
        m->num_lost_nms += st == NS(LOST);
        m->num_unhealthy_nms += st == NS(UNHEALTHY);
        m->num_active_nms += st == NS(RUNNING);
        m->num_decommissioned_nms += st == NS(DECOMMISSIONED);
    }
    for (size_t i = 0; i < s->napps; i++) {
        app *a = s->apps[i];
        if (!a)
            continue;
        m->num_apps_running += a->state == ST(RUNNING);
        m->num_apps_pending += a->state == ST(ACCEPTED);
    }
    m->num_apps_submitted = s->apps_submitted;
    m->num_apps_completed = s->apps_completed;
    m->num_apps_killed = s->apps_killed;
    m->num_apps_failed = s->apps_failed;
    m->num_containers_allocated = (int32_t)AG_MIN(s->containers_allocated, INT32_MAX);
    m->available = mk_res(rsub(total, used));
    m->allocated = mk_res(used);
    m->total = mk_res(total);
    if (!m->available || !m->allocated || !m->total) {
        ag_sched_resp_clear(&resp->base);
        return AG_SCHED_EXHAUSTED;
    }
    return AG_SCHED_OK;
}

static Argot__Sched__V1__QueueInfo *queue_info(const ag_sched *s, const queue *q, int depth)
{
    Argot__Sched__V1__QueueInfo *x =
        MK(Argot__Sched__V1__QueueInfo, ARGOT__SCHED__V1__QUEUE_INFO__INIT);
    if (!x)
        return NULL;
    res total = cluster_total(s);
    x->capacity = (float)(q->cap / 100);
    x->maximum_capacity = (float)(q->maxcap / 100);
    x->current_capacity = (float)rel_used(q, total);
    x->user_limit_factor = (float)q->ulf;
    x->maximum_am_resource_percent = (float)q->am_share;
    int napps = 0;
    for (size_t i = 0; i < s->nqueues; i++) {
        const queue *l = s->queues[i];
        for (const queue *p = l; p; p = p->parent)
            if (p == q && is_leaf(l))
                napps += l->napps;
    }
    x->num_applications = napps;
    x->queue_name = pbstr(q->path);
    bool ok = x->queue_name != NULL;
    if (ok && !str_empty(q->labels)) {
        x->accessible_node_labels = ag_calloc(1, sizeof(char *));
        ok = x->accessible_node_labels != NULL;
        if (ok) {
            x->accessible_node_labels[0] = ag_strdup(q->labels);
            x->n_accessible_node_labels = 1;
            ok = x->accessible_node_labels[0] != NULL;
        }
    }
    size_t nc = 0;
    for (const queue *c = q->child; c; c = c->sib)
        nc++;
    if (ok && depth > 0 && nc) {
        x->child_queues = ag_calloc(nc, sizeof(*x->child_queues));
        ok = x->child_queues != NULL;
        for (const queue *c = q->child; ok && c; c = c->sib) {
            Argot__Sched__V1__QueueInfo *ci = queue_info(s, c, depth - 1);
            ok = ci != NULL;
            if (ok)
                x->child_queues[x->n_child_queues++] = ci;
        }
    }
    if (!ok) {
        ag_rpc_msg_free(&x->base);
        return NULL;
    }
    return x;
}

int ag_sched_queue_info(ag_sched *s, const Argot__Sched__V1__GetQueueInfoRequest *req,
                        Argot__Sched__V1__GetQueueInfoResponse *resp, char *err, size_t cap)
{
    const char *name = req && !str_empty(req->queue_name) ? req->queue_name : "root";
    queue *q = SGET(&s->qmap, name);
    if (!q) {
        char full[256];
        snprintf(full, sizeof(full), "root.%s", name);
        q = SGET(&s->qmap, full);
    }
    if (!q)
        return errf(err, cap, AG_SCHED_NOT_FOUND, "queue '%s' does not exist", name);
    int depth = !req || !req->include_child_queues ? 0 : req->recursive ? 64 : 1;
    resp->queue_info = queue_info(s, q, depth);
    return resp->queue_info ? AG_SCHED_OK : NOMEM(err, cap);
}

/* ------------------------------------------------------------------------ */
/* ApplicationMaster                                                          */
/* ------------------------------------------------------------------------ */

/* The live application whose current attempt is `attempt`, registered (or,
 * with want_registered false, launched or registered). */
static app *am_app(ag_sched *s, const AttemptId *attempt, bool want_registered, char *err,
                   size_t cap, int *rc)
{
    char buf[64];
    app *a = attempt ? app_get(s, attempt->application_id) : NULL;
    if (!a) {
        *rc = errf(err, cap, AG_SCHED_NOT_REGISTERED,
                   "ApplicationMasterNotRegistered: application %s is not known",
                   attempt && attempt->application_id
                       ? ag_sched_app_id_str(attempt->application_id, buf, sizeof(buf))
                       : "(none)");
        return NULL;
    }
    ag_sched_app_id_str(attempt->application_id, buf, sizeof(buf));
    bool ok = a->live && attempt->attempt_id == a->attempt &&
              (a->astate == AT_REGISTERED || (!want_registered && a->astate == AT_LAUNCHED));
    if (!ok) {
        *rc = errf(err, cap, AG_SCHED_NOT_REGISTERED,
                   "ApplicationMasterNotRegistered: attempt %d of %s is not registered",
                   (int)attempt->attempt_id, buf);
        return NULL;
    }
    return a;
}

/* A Container record for c (with its container token). */
static Argot__Sched__V1__Container *container_rec(const ag_sched *s, const ctr *c)
{
    Argot__Sched__V1__Container *x =
        MK(Argot__Sched__V1__Container, ARGOT__SCHED__V1__CONTAINER__INIT);
    if (!x)
        return NULL;
    char http[300];
    snprintf(http, sizeof(http), "%s:%d", c->n->host, (int)c->n->http_port);
    x->priority = c->prio;
    x->allocation_request_id = c->arid;
    x->id = mk_cid(s, c->id);
    x->node_id = mk_nodeid(c->n);
    x->node_http_address = pbstr(http);
    x->resource = mk_res(c->r);
    x->container_token = container_token(s, c);
    if (!x->id || !x->node_id || !x->node_http_address || !x->resource || !x->container_token) {
        ag_rpc_msg_free(&x->base);
        return NULL;
    }
    return x;
}

/* Appends NM tokens for nodes of a's containers (in list cs) not yet given
 * to this attempt (sent: node key -> marker, checked and not changed; with
 * all, every node of cs gets one). */
static int add_nm_tokens(const ag_sched *s, const app *a, const ctr *const *cs, size_t n, bool all,
                         uint64_t now, Argot__Sched__V1__NMToken ***arr, size_t *narr)
{
    if (!n)
        return 0;
    *arr = ag_calloc(n, sizeof(**arr));
    if (!*arr)
        return AG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const node *nd = cs[i]->n;
        if (!all && SGET((hmap *)&a->nm_sent, nd->key))
            continue;
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = cs[j]->n == nd;
        if (dup)
            continue;
        Argot__Sched__V1__NMToken *t = nm_token(s, a, nd, now);
        if (!t)
            return AG_E_NOMEM;
        (*arr)[(*narr)++] = t;
    }
    return 0;
}

/* Records the nodes of cs as holding a token of this attempt issued at now
 * (with all: the only ones, issued now). */
static void mark_nm_sent(app *a, const ctr *const *cs, size_t n, bool all, uint64_t now)
{
    if (all) {
        hm_cleanup(&a->nm_sent);
        a->nm_renew = false;
    }
    if (!a->nm_sent.n)
        a->nm_sent_at = now;
    for (size_t i = 0; i < n; i++)
        if (!SGET(&a->nm_sent, cs[i]->n->key))
            (void)SPUT(&a->nm_sent, cs[i]->n->key, cs[i]->n); /* else: sent again next time */
}

/* Whether a's NM tokens are due for renewal: half their life has passed
 * since the oldest was issued, or the NM-token key rolled, so the AM holds
 * valid ones for every node it has containers on before the old ones
 * expire. */
static bool nm_tokens_due(const ag_sched *s, const app *a, uint64_t now)
{
    return a->nm_sent.n && (a->nm_renew || now - a->nm_sent_at >= nm_token_ttl(s) / 2);
}

/* The nodes of a's delivered live containers and of the containers of cs
 * (n), one container each: the set an NM-token renewal covers. *out for
 * ag_free, NULL with *nout 0 when none. 0 or AG_E_NOMEM. */
static int renewal_set(const app *a, ctr *const *cs, size_t n, ctr ***out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    size_t cap = a->ctrs.n + n;
    if (!cap)
        return 0;
    ctr **v = ag_calloc(cap, sizeof(*v));
    hmap seen = {0};
    if (!v)
        return AG_E_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n + a->ctrs.cap; i++) {
        ctr *c = NULL;
        if (i < n) {
            c = cs[i];
        } else {
            const hent *e = &a->ctrs.e[i - n];
            c = e->v && e->v != TOMB ? e->v : NULL;
            if (c && !c->delivered)
                c = NULL;
        }
        if (!c || SGET(&seen, c->n->key))
            continue;
        if (SPUT(&seen, c->n->key, c) < 0) {
            hm_cleanup(&seen);
            ag_free(v);
            return AG_E_NOMEM;
        }
        v[k++] = c;
    }
    hm_cleanup(&seen);
    *out = v;
    *nout = k;
    return 0;
}

int ag_sched_nm_token_text(ag_sched *s, const Argot__Sched__V1__ContainerId *container,
                           uint64_t now_ms, char *text, size_t cap)
{
    app *a = NULL;
    ctr *c = ctr_get(s, container, &a);
    if (!c || !a->live)
        return AG_SCHED_NOT_FOUND;
    Argot__Sched__V1__NMToken *t = nm_token(s, a, c->n, now_ms);
    if (!t)
        return AG_SCHED_EXHAUSTED;
    int rc = ag__sched_token_text(t->token->identifier.data, t->token->identifier.len,
                                  t->token->password.data, t->token->password.len, text, cap);
    ag_wipe(t->token->password.data, t->token->password.len);
    ag_rpc_msg_free(&t->base);
    return rc < 0 ? AG_SCHED_EXHAUSTED : AG_SCHED_OK;
}

int ag_sched_register_am(ag_sched *s, const Argot__Sched__V1__ApplicationAttemptId *attempt,
                         const Argot__Sched__V1__RegisterApplicationMasterRequest *req,
                         uint64_t now_ms, Argot__Sched__V1__RegisterApplicationMasterResponse *resp,
                         char *err, size_t cap)
{
    int rc = 0;
    app *a = am_app(s, attempt, false, err, cap, &rc);
    if (!a)
        return rc;
    if (a->astate == AT_REGISTERED)
        return errf(err, cap, AG_SCHED_INVALID,
                    "attempt %d of application %d is already registered", (int)a->attempt,
                    (int)a->id);
    /* containers kept from earlier attempts */
    ctr **cs = NULL;
    size_t n = 0;
    if (a->ctrs.n) {
        cs = ag_calloc(a->ctrs.n, sizeof(*cs));
        if (!cs)
            return NOMEM(err, cap);
        HM_EACH(&a->ctrs, e)
        {
            ctr *c = e->v;
            if (!c->am && c->id.attempt != a->attempt)
                cs[n++] = c;
        }
    }
    char *host = ag_strdup(req && req->host ? req->host : "");
    resp->maximum_capability = mk_res(s->max);
    resp->queue = pbstr(a->q->path);
    bool ok = host && resp->maximum_capability && resp->queue;
    if (ok && n) {
        resp->containers_from_previous_attempts = ag_calloc(n, sizeof(void *));
        ok = resp->containers_from_previous_attempts != NULL;
        for (size_t i = 0; ok && i < n; i++) {
            Argot__Sched__V1__Container *x = container_rec(s, cs[i]);
            ok = x != NULL;
            if (ok)
                resp->containers_from_previous_attempts
                    [resp->n_containers_from_previous_attempts++] = x;
        }
        ok = ok && add_nm_tokens(s, a, (const ctr *const *)cs, n, false, now_ms,
                                 &resp->nm_tokens_from_previous_attempts,
                                 &resp->n_nm_tokens_from_previous_attempts) == 0;
    }
    if (!ok) {
        ag_free(cs);
        ag_free(host);
        ag_sched_resp_clear(&resp->base);
        return NOMEM(err, cap);
    }
    mark_nm_sent(a, (const ctr *const *)cs, n, false, now_ms);
    for (size_t i = 0; i < n; i++)
        cs[i]->delivered = true;
    ag_free(cs);
    ag_free(a->host);
    a->host = host;
    a->rpc_port = req ? req->rpc_port : 0;
    a->astate = AT_REGISTERED;
    a->state = ST(RUNNING);
    s->changes++;
    a->last_seen = now_ms;
    return AG_SCHED_OK;
}

/* Checks every ask before any is applied: capability (normalized in
 * place into caps[i]), count, label. */
static int check_asks(ag_sched *s, app *a, const Argot__Sched__V1__AllocateRequest *req, res *caps,
                      char *err, size_t cap)
{
    for (size_t i = 0; i < req->n_ask; i++) {
        const Argot__Sched__V1__ResourceRequest *r = req->ask[i];
        char what[128];
        snprintf(what, sizeof(what), "ask %zu (priority %d, '%s')", i, (int)r->priority,
                 r->resource_name ? r->resource_name : "");
        int rc = check_res(s, r->capability, &caps[i], what, err, cap);
        if (rc)
            return rc;
        if (r->num_containers < 0)
            return errf(err, cap, AG_SCHED_INVALID, "%s: negative number of containers", what);
        if (str_empty(r->resource_name))
            return errf(err, cap, AG_SCHED_INVALID, "%s: no resource name", what);
        const char *label =
            str_empty(r->node_label_expression) ? a->label : r->node_label_expression;
        if (!queue_has_label(a->q, label))
            return errf(err, cap, AG_SCHED_INVALID, "%s: queue %s may not use label '%s'", what,
                        a->q->path, label);
    }
    return 0;
}

static skey *key_get(app *a, int32_t prio, res c, int64_t arid, const char *label)
{
    skey **pp = &a->keys;
    for (; *pp; pp = &(*pp)->next) {
        skey *k = *pp;
        if (k->prio == prio && k->cap.mb == c.mb && k->cap.vc == c.vc && k->arid == arid)
            break;
        if (k->prio > prio)
            break;
    }
    skey *k = *pp;
    if (k && k->prio == prio && k->cap.mb == c.mb && k->cap.vc == c.vc && k->arid == arid) {
        if (strcmp(k->label, label) != 0) {
            char *l = ag_strdup(label);
            if (!l)
                return NULL;
            ag_free(k->label);
            k->label = l;
        }
        return k;
    }
    k = ag_calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->label = ag_strdup(label);
    if (!k->label) {
        ag_free(k);
        return NULL;
    }
    k->prio = prio;
    k->cap = c;
    k->arid = arid;
    k->next = *pp;
    *pp = k;
    return k;
}

static int apply_ask(ag_sched *s, app *a, const Argot__Sched__V1__ResourceRequest *r, res c)
{
    const char *label = str_empty(r->node_label_expression) ? a->label : r->node_label_expression;
    if (!str_empty(label) && !part_get(s, label))
        return AG_E_NOMEM;
    skey *k = key_get(a, r->priority, c, r->allocation_request_id, label);
    if (!k)
        return AG_E_NOMEM;
    if (strcmp(r->resource_name, "*") == 0) {
        a->q->pending += r->num_containers - k->any;
        k->any = r->num_containers;
        k->any_relax = r->relax_locality;
        return 0;
    }
    loc *l = SGET(&k->locs, r->resource_name);
    if (!l) {
        l = ag_calloc(1, sizeof(*l));
        if (!l)
            return AG_E_NOMEM;
        l->name = ag_strdup(r->resource_name);
        if (!l->name || SPUT(&k->locs, l->name, l) < 0) {
            ag_free(l->name);
            ag_free(l);
            return AG_E_NOMEM;
        }
        l->is_rack = r->resource_name[0] == '/';
        if (!l->is_rack)
            k->nhosts++;
    }
    l->n = r->num_containers;
    l->relax = r->relax_locality;
    return 0;
}

static void apply_release(ag_sched *s, app *a, const ContainerId *id, uint64_t now)
{
    app *owner = NULL;
    ctr *c = ctr_get(s, id, &owner);
    if (!c || owner != a || c->am)
        return; /* unknown or not the AM's to release: nothing to do */
    ctr_complete(s, c, EXIT_ABORTED, "Container released by the application", true, true, now);
}

static int apply_blacklist(app *a, const Argot__Sched__V1__ResourceBlacklistRequest *b)
{
    if (!b)
        return 0;
    for (size_t i = 0; i < b->n_blacklist_removals; i++) {
        char *k = SGET(&a->black, b->blacklist_removals[i]);
        if (k) {
            SDEL(&a->black, k);
            ag_free(k);
        }
    }
    for (size_t i = 0; i < b->n_blacklist_additions; i++) {
        const char *h = b->blacklist_additions[i];
        if (SGET(&a->black, h))
            continue;
        char *k = ag_strdup(h);
        if (!k || SPUT(&a->black, k, k) < 0) {
            ag_free(k);
            return AG_E_NOMEM;
        }
    }
    return 0;
}

/* Drops keys with nothing outstanding, so that an application's keys stay
 * as many as its live asks (an AM resends every level of a key it changes). */
static void prune_keys(app *a)
{
    for (skey **pp = &a->keys; *pp;) {
        skey *k = *pp;
        if (k->any > 0) {
            pp = &k->next;
            continue;
        }
        *pp = k->next;
        HM_EACH(&k->locs, e)
        {
            loc *l = e->v;
            ag_free(l->name);
            ag_free(l);
        }
        hm_cleanup(&k->locs);
        ag_free(k->label);
        ag_free(k);
    }
}

/* Fills resp from a's pending lists without changing them (invariant 4). */
/* Fills an allocate response from a's pending lists: the new containers
 * (*csp, n of them, for the commit), their NM tokens (with renew: tokens
 * for every node a has containers on, the set in *tsp, *nts), completions,
 * node updates, preemption. 0 or AG_E_NOMEM; nothing is committed here. */
static int build_allocate(ag_sched *s, app *a, Argot__Sched__V1__AllocateResponse *resp, ctr ***csp,
                          size_t *ncs, bool renew, uint64_t now, ctr ***tsp, size_t *nts)
{
    size_t n = 0;
    for (ctr *c = a->undelivered; c; c = c->anext)
        n++;
    ctr **cs = n ? ag_calloc(n, sizeof(*cs)) : NULL;
    *csp = cs;
    *ncs = n;
    if (n && !cs)
        return AG_E_NOMEM;
    n = 0;
    for (ctr *c = a->undelivered; c; c = c->anext)
        cs[n++] = c;
    resp->response_id = a->resp_id + 1;
    resp->num_cluster_nodes = s->nactive;
    resp->limit = mk_res(headroom(s, a));
    if (!resp->limit)
        return AG_E_NOMEM;
    if (n) {
        resp->allocated_containers = ag_calloc(n, sizeof(void *));
        if (!resp->allocated_containers)
            return AG_E_NOMEM;
        for (size_t i = 0; i < n; i++) {
            Argot__Sched__V1__Container *x = container_rec(s, cs[i]);
            if (!x)
                return AG_E_NOMEM;
            resp->allocated_containers[resp->n_allocated_containers++] = x;
        }
        if (!renew && add_nm_tokens(s, a, (const ctr *const *)cs, n, false, now, &resp->nm_tokens,
                                    &resp->n_nm_tokens))
            return AG_E_NOMEM;
    }
    if (a->amrm_key_id != s->amrm_key.id && !(resp->am_rm_token = amrm_token(s, a)))
        return AG_E_NOMEM; /* the AMRM key rolled: the AM's new token */
    if (renew && (renewal_set(a, cs, n, tsp, nts) < 0 ||
                  add_nm_tokens(s, a, (const ctr *const *)*tsp, *nts, true, now, &resp->nm_tokens,
                                &resp->n_nm_tokens) < 0))
        return AG_E_NOMEM;
    if (a->ndone) {
        resp->completed_container_statuses = ag_calloc(a->ndone, sizeof(void *));
        if (!resp->completed_container_statuses)
            return AG_E_NOMEM;
        for (size_t i = 0; i < a->ndone; i++) {
            ContainerStatus *st = MK(ContainerStatus, ARGOT__SCHED__V1__CONTAINER_STATUS__INIT);
            if (!st)
                return AG_E_NOMEM;
            resp->completed_container_statuses[resp->n_completed_container_statuses++] = st;
            st->state = ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE;
            st->exit_status = a->done[i].exit;
            st->container_id = mk_cid(s, a->done[i].id);
            st->diagnostics = pbstr(a->done[i].diag);
            st->capability = mk_res(a->done[i].r);
            if (!st->container_id || !st->diagnostics || !st->capability)
                return AG_E_NOMEM;
        }
    }
    size_t nev = s->nevents > a->ev_seen ? s->nevents - a->ev_seen : 0;
    if (nev) {
        resp->updated_nodes = ag_calloc(nev, sizeof(void *));
        if (!resp->updated_nodes)
            return AG_E_NOMEM;
        for (size_t i = a->ev_seen; i < s->nevents; i++) {
            bool dup = false;
            for (size_t j = i + 1; j < s->nevents && !dup; j++)
                dup = s->events[j] == s->events[i];
            if (dup)
                continue; /* its latest state is reported once */
            Argot__Sched__V1__NodeReport *r = node_report(s->events[i]);
            if (!r)
                return AG_E_NOMEM;
            resp->updated_nodes[resp->n_updated_nodes++] = r;
        }
    }
    if (a->npreempt) {
        Argot__Sched__V1__PreemptionMessage *pm =
            MK(Argot__Sched__V1__PreemptionMessage, ARGOT__SCHED__V1__PREEMPTION_MESSAGE__INIT);
        resp->preempt = pm;
        if (!pm)
            return AG_E_NOMEM;
        Argot__Sched__V1__StrictPreemptionContract *sc =
            MK(Argot__Sched__V1__StrictPreemptionContract,
               ARGOT__SCHED__V1__STRICT_PREEMPTION_CONTRACT__INIT);
        Argot__Sched__V1__PreemptionContract *nc =
            MK(Argot__Sched__V1__PreemptionContract, ARGOT__SCHED__V1__PREEMPTION_CONTRACT__INIT);
        pm->strict_contract = sc;
        pm->contract = nc;
        if (!sc || !nc)
            return AG_E_NOMEM;
        sc->container = ag_calloc(a->npreempt, sizeof(void *));
        nc->container = ag_calloc(a->npreempt, sizeof(void *));
        if (!sc->container || !nc->container)
            return AG_E_NOMEM;
        for (size_t i = 0; i < a->npreempt; i++) {
            for (int w = 0; w < 2; w++) {
                Argot__Sched__V1__PreemptionContainer *pc =
                    MK(Argot__Sched__V1__PreemptionContainer,
                       ARGOT__SCHED__V1__PREEMPTION_CONTAINER__INIT);
                if (!pc)
                    return AG_E_NOMEM;
                if (w == 0)
                    sc->container[sc->n_container++] = pc;
                else
                    nc->container[nc->n_container++] = pc;
                pc->id = mk_cid(s, a->preempt[i]->id);
                if (!pc->id)
                    return AG_E_NOMEM;
            }
        }
    }
    return 0;
}

int ag_sched_allocate(ag_sched *s, const Argot__Sched__V1__ApplicationAttemptId *attempt,
                      const Argot__Sched__V1__AllocateRequest *req, uint64_t now_ms,
                      Argot__Sched__V1__AllocateResponse *resp, char *err, size_t cap)
{
    app *k = attempt ? app_get(s, attempt->application_id) : NULL;
    if (k && k->shutdown && !k->live && attempt->attempt_id == k->attempt) {
        resp->response_id = req->response_id + 1;
        resp->am_command = ARGOT__SCHED__V1__AMCOMMAND__AM_SHUTDOWN;
        return AG_SCHED_OK;
    }
    int rc = 0;
    app *a = am_app(s, attempt, true, err, cap, &rc);
    if (!a)
        return rc;
    a->last_seen = now_ms;
    if (a->has_last && req->response_id + 1 == a->resp_id) {
        /* a resend: the cached response, unchanged */
        Argot__Sched__V1__AllocateResponse *m =
            argot__sched__v1__allocate_response__unpack(&pb_allocator, a->last_len, a->last);
        if (!m)
            return NOMEM(err, cap);
        *resp = *m;
        ag_free(m);
        return AG_SCHED_OK;
    }
    if (req->response_id != a->resp_id)
        return errf(err, cap, AG_SCHED_INVALID,
                    "allocate: response_id %d is neither the last response's (%d) nor a resend "
                    "of the one before",
                    (int)req->response_id, (int)a->resp_id);
    res *caps = req->n_ask ? ag_calloc(req->n_ask, sizeof(*caps)) : NULL;
    if (req->n_ask && !caps)
        return NOMEM(err, cap);
    rc = check_asks(s, a, req, caps, err, cap);
    if (rc != 0) {
        ag_free(caps);
        return rc;
    }
    for (size_t i = 0; i < req->n_release; i++)
        apply_release(s, a, req->release[i], now_ms);
    bool ok = apply_blacklist(a, req->blacklist_request) == 0;
    for (size_t i = 0; ok && i < req->n_ask; i++)
        ok = apply_ask(s, a, req->ask[i], caps[i]) == 0;
    ag_free(caps);
    if (!ok)
        return NOMEM(err, cap); /* asks are totals: the AM's retry sets them again */
    a->progress = req->progress;
    flush_freed(s, now_ms);
    sched_app(s, a, NULL, now_ms);
    prune_keys(a);
    ctr **cs = NULL, **ts = NULL;
    size_t ncs = 0, nts = 0;
    uint8_t *packed = NULL;
    size_t plen = 0;
    bool renew = nm_tokens_due(s, a, now_ms);
    if (build_allocate(s, a, resp, &cs, &ncs, renew, now_ms, &ts, &nts) == 0)
        packed = pack(&resp->base, &plen);
    if (!packed) {
        ag_free(cs);
        ag_free(ts);
        ag_sched_resp_clear(&resp->base);
        return NOMEM(err, cap);
    }
    /* commit what the response delivers */
    a->amrm_key_id = s->amrm_key.id;
    if (renew)
        mark_nm_sent(a, (const ctr *const *)ts, nts, true, now_ms);
    else
        mark_nm_sent(a, (const ctr *const *)cs, ncs, false, now_ms);
    ag_free(ts);
    for (size_t i = 0; i < ncs; i++)
        cs[i]->delivered = true;
    ag_free(cs);
    a->undelivered = NULL;
    a->undelivered_tail = NULL;
    app_clear_done(a);
    a->ev_seen = s->nevents;
    a->npreempt = 0;
    ag_free(a->last);
    a->last = packed;
    a->last_len = plen;
    a->has_last = true;
    a->resp_id++;
    return AG_SCHED_OK;
}

int ag_sched_finish_am(ag_sched *s, const Argot__Sched__V1__ApplicationAttemptId *attempt,
                       const Argot__Sched__V1__FinishApplicationMasterRequest *req, uint64_t now_ms,
                       Argot__Sched__V1__FinishApplicationMasterResponse *resp, char *err,
                       size_t cap)
{
    int rc = 0;
    app *a = am_app(s, attempt, true, err, cap, &rc);
    if (!a)
        return rc;
    int final = req ? (int)req->final_application_status : FS(APP_UNDEFINED);
    if (final < FS(APP_UNDEFINED) || final > FS(APP_KILLED))
        return errf(err, cap, AG_SCHED_INVALID, "finish: unknown final status %d", final);
    const char *diag = req && !str_empty(req->diagnostics) ? req->diagnostics : NULL;
    app_end(s, a, ST(FINISHED), final, diag, now_ms);
    resp->is_unregistered = true;
    flush_freed(s, now_ms);
    place_ams(s, NULL, now_ms);
    return AG_SCHED_OK;
}

/* ------------------------------------------------------------------------ */
/* ResourceTracker                                                            */
/* ------------------------------------------------------------------------ */

static Argot__Sched__V1__MasterKey *mk_key(const ag_sched_key *k)
{
    Argot__Sched__V1__MasterKey *x =
        MK(Argot__Sched__V1__MasterKey, ARGOT__SCHED__V1__MASTER_KEY__INIT);
    if (!x)
        return NULL;
    x->key_id = k->id;
    x->bytes.data = ag_memdup(k->bytes, sizeof(k->bytes));
    if (!x->bytes.data) {
        ag_free(x);
        return NULL;
    }
    x->bytes.len = sizeof(k->bytes);
    return x;
}

/* The node leaves the schedulable pool (LOST, or re-registering): its
 * capacity leaves the totals. */
static void node_down(ag_sched *s, node *n, int state)
{
    if (node_active(n)) {
        n->p->total = rsub(n->p->total, n->cap);
        s->nactive--;
    }
    n->state = state;
    node_index(s, n);
}

static void node_up(ag_sched *s, node *n)
{
    if (!node_active(n)) {
        n->p->total = radd(n->p->total, n->cap);
        s->nactive++;
    }
    n->state = NS(RUNNING);
    node_index(s, n);
}

/* Completes every container on n. */
static void node_drain(ag_sched *s, node *n, int32_t exit_status, const char *diag, uint64_t now)
{
    while (n->ctrs)
        ctr_complete(s, n->ctrs, exit_status, diag, true, false, now);
}

static node *node_create(ag_sched *s, const char *key, const NodeId *nid, const char *rack_name,
                         const char *label)
{
    part *p = part_get(s, label);
    rack *r = p ? rack_get(p, rack_name) : NULL;
    if (!r || GROW(s->nodes, s->nnodes, s->nodes_cap) < 0)
        return NULL;
    node *n = ag_calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->key = ag_strdup(key);
    n->host = ag_strdup(nid->host);
    n->rack_name = ag_strdup(rack_name);
    n->label = ag_strdup(label);
    if (!n->key || !n->host || !n->rack_name || !n->label || SPUT(&s->nodemap, n->key, n) < 0) {
        node_free(n);
        return NULL;
    }
    node *first = SGET(&s->hosts, n->host);
    if (SPUT(&s->hosts, n->host, n) < 0) {
        SDEL(&s->nodemap, n->key);
        node_free(n);
        return NULL;
    }
    n->hnext = first;
    n->port = nid->port;
    n->p = p;
    n->rk = r;
    n->state = NS(NEW);
    s->nodes[s->nnodes++] = n;
    return n;
}

/* Whether id is the AM container of a's current attempt as recovered (an
 * attempt waiting for its AM to register again, its AM container not
 * adopted yet). */
static bool is_recovered_am(const app *a, cid id)
{
    return a->live && !a->unmanaged && !a->am_ctr && a->am_cid == id.id &&
           a->attempt == id.attempt && (a->astate == AT_LAUNCHED || a->astate == AT_REGISTERED);
}

/* A completed container the RM does not know (it ended while the RM was
 * away): its status goes to its live application's AM; the recovered
 * attempt's AM container ending fails that attempt. */
static void adopt_completed(ag_sched *s, app *a, const Argot__Sched__V1__NMContainerStatus *st,
                            cid id, uint64_t now)
{
    if (!a || !a->live)
        return;
    if (is_recovered_am(a, id)) {
        char why[300];
        snprintf(why, sizeof(why), "AM container exited with status %d while the RM was away",
                 (int)st->container_exit_status);
        fail_attempt(s, a, why, now);
        return;
    }
    if ((!a->keep && id.attempt != a->attempt) || id.id == a->am_cid ||
        GROW(a->done, a->ndone, a->done_cap) < 0)
        return;
    cstat *cs = &a->done[a->ndone];
    cs->id = id;
    cs->exit = st->container_exit_status;
    cs->r = st->resource ? (res){st->resource->memory_mb, st->resource->vcores} : s->min;
    cs->diag = ag_strdup(st->diagnostics ? st->diagnostics : "");
    if (cs->diag)
        a->ndone++;
    if (id.id >= a->next_cid)
        a->next_cid = id.id + 1;
}

/* A container an NM reports at registration that the RM does not know:
 * adopted for its live application (the recovered attempt's AM container
 * as its AM container), else cleaned up. */
static void adopt(ag_sched *s, node *n, const Argot__Sched__V1__NMContainerStatus *st, uint64_t now)
{
    if (!st->container_id)
        return;
    app *a = NULL;
    ctr *c = ctr_get(s, st->container_id, &a);
    cid id = cid_of(st->container_id);
    if (st->container_state == ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE) {
        if (c && c->n == n)
            ctr_complete(s, c, st->container_exit_status, st->diagnostics, true, false, now);
        else if (!c)
            adopt_completed(s, a, st, id, now);
        node_add_cid(&n->removed, &n->nremoved, &n->removed_cap, id);
        return;
    }
    if (c && c->n == n) {
        ctr_running(s, c);
        return;
    }
    if (c || !a || !a->live || (!a->keep && id.attempt != a->attempt)) {
        node_add_cid(&n->cleanup, &n->ncleanup, &n->cleanup_cap, id);
        return;
    }
    res r = st->resource ? (res){st->resource->memory_mb, st->resource->vcores} : s->min;
    bool am = is_recovered_am(a, id);
    ctr *nc = ctr_new(s, a, n, r, st->priority, st->allocation_request_id, am, id.id, now);
    if (!nc) {
        node_add_cid(&n->cleanup, &n->ncleanup, &n->cleanup_cap, id);
        return;
    }
    nc->id.attempt = id.attempt;
    ctr_running(s, nc);
    nc->delivered = true; /* its AM knew it before the RM restarted */
    if (am)
        a->am_ctr = nc;
}

static bool reported_running(const Argot__Sched__V1__RegisterNodeManagerRequest *req, const ctr *c)
{
    for (size_t i = 0; i < req->n_container_statuses; i++) {
        const Argot__Sched__V1__NMContainerStatus *st = req->container_statuses[i];
        if (st->container_id && cid_of(st->container_id).app_id == c->id.app_id &&
            st->container_id->id == c->id.id &&
            st->container_state != ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE)
            return true;
    }
    return false;
}

static void pgrants_place(ag_sched *s, node *n, uint64_t now);

int ag_sched_register_node(ag_sched *s, const Argot__Sched__V1__RegisterNodeManagerRequest *req,
                           uint64_t now_ms, Argot__Sched__V1__RegisterNodeManagerResponse *resp,
                           char *err, size_t cap)
{
    const NodeId *nid = req->node_id;
    if (!nid || str_empty(nid->host))
        return errf(err, cap, AG_SCHED_INVALID, "register node: no node id");
    if (!req->resource || req->resource->memory_mb <= 0 || req->resource->vcores <= 0)
        return errf(err, cap, AG_SCHED_INVALID, "register node %s:%d: no resources", nid->host,
                    (int)nid->port);
    if (req->n_node_labels > 1)
        return errf(err, cap, AG_SCHED_INVALID,
                    "register node %s:%d: %zu labels (a node has at most one exclusive label)",
                    nid->host, (int)nid->port, req->n_node_labels);
    char key[300];
    snprintf(key, sizeof(key), "%s:%d", nid->host, (int)nid->port);
    const char *rack_name = str_empty(req->rack) ? "/default-rack" : req->rack;
    const char *label = req->n_node_labels ? req->node_labels[0] : "";
    resp->container_token_master_key = mk_key(&s->ctr_key);
    resp->nm_token_master_key = mk_key(&s->nm_key);
    resp->rm_version = pbstr(AG_VERSION);
    if (!resp->container_token_master_key || !resp->nm_token_master_key || !resp->rm_version) {
        ag_sched_resp_clear(&resp->base);
        return NOMEM(err, cap);
    }
    node *n = SGET(&s->nodemap, key);
    if (n && (strcmp(n->rack_name, rack_name) != 0 || strcmp(n->label, label) != 0)) {
        ag_sched_resp_clear(&resp->base);
        return errf(err, cap, AG_SCHED_INVALID,
                    "register node %s: rack or label changed (was %s, '%s'): restart the RM to "
                    "move a node",
                    key, n->rack_name, n->label);
    }
    if (!n)
        n = node_create(s, key, nid, rack_name, label);
    if (!n) {
        ag_sched_resp_clear(&resp->base);
        return NOMEM(err, cap);
    }
    /* a re-registration: the node restarted; what it does not report is gone */
    node_down(s, n, NS(NEW));
    n->cap = (res){req->resource->memory_mb, req->resource->vcores};
    /* one at a time from the head: an AM container's end fails its attempt,
     * which may end other containers of this node */
    for (ctr *c = n->ctrs; c;) {
        if (reported_running(req, c) || !(c->running || c->am)) {
            c = c->nnext;
            continue;
        }
        char diag[400];
        snprintf(diag, sizeof(diag), "container lost on node %s (the node restarted)", key);
        ctr_complete(s, c, EXIT_ABORTED, diag, true, false, now_ms);
        c = n->ctrs;
    }
    node_up(s, n);
    for (size_t i = 0; i < req->n_container_statuses; i++)
        adopt(s, n, req->container_statuses[i], now_ms);
    pgrants_place(s, n, now_ms);
    n->http_port = req->http_port;
    n->last_seen = now_ms;
    n->hb_id = 0;
    node_event(s, n);
    resp->node_action = ARGOT__SCHED__V1__NODE_ACTION__NORMAL;
    resp->rm_identifier = s->c.cluster_timestamp;
    resp->next_heartbeat_interval_ms = (int64_t)s->c.heartbeat_interval_ms;
    AG_LOG(AG_LOG_INFO, "sched", "node_registered node=%s rack=%s mb=%" PRId64 " vcores=%d", key,
           rack_name, n->cap.mb, (int)n->cap.vc);
    sched_node(s, n, now_ms);
    return AG_SCHED_OK;
}

static void node_status(ag_sched *s, node *n, const ContainerStatus *st, uint64_t now)
{
    if (!st->container_id)
        return;
    app *a = NULL;
    ctr *c = ctr_get(s, st->container_id, &a);
    cid id = cid_of(st->container_id);
    if (c && c->n != n)
        c = NULL;
    if (st->state == ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE) {
        if (c)
            ctr_complete(s, c, st->exit_status, st->diagnostics, true, false, now);
        node_add_cid(&n->removed, &n->nremoved, &n->removed_cap, id);
        return;
    }
    if (c)
        ctr_running(s, c);
    else
        node_add_cid(&n->cleanup, &n->ncleanup, &n->cleanup_cap, id); /* not ours (any more) */
}

static int take_cids(const ag_sched *s, cid *ids, size_t n, ContainerId ***out, size_t *nout)
{
    if (!n)
        return 0;
    *out = ag_calloc(n, sizeof(**out));
    if (!*out)
        return AG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        ContainerId *x = mk_cid(s, ids[i]);
        if (!x)
            return AG_E_NOMEM;
        (*out)[(*nout)++] = x;
    }
    return 0;
}

int ag_sched_node_heartbeat(ag_sched *s, const Argot__Sched__V1__NodeHeartbeatRequest *req,
                            uint64_t now_ms, Argot__Sched__V1__NodeHeartbeatResponse *resp,
                            char *err, size_t cap)
{
    const Argot__Sched__V1__NodeStatus *ns = req->node_status;
    const NodeId *nid = ns ? ns->node_id : NULL;
    if (!nid)
        return errf(err, cap, AG_SCHED_INVALID, "heartbeat: no node id");
    char key[300];
    snprintf(key, sizeof(key), "%s:%d", nid->host ? nid->host : "", (int)nid->port);
    node *n = SGET(&s->nodemap, key);
    resp->next_heartbeat_interval_ms = (int64_t)s->c.heartbeat_interval_ms;
    if (!n || !node_active(n)) {
        resp->node_action = ARGOT__SCHED__V1__NODE_ACTION__RESYNC;
        char msg[400];
        snprintf(msg, sizeof(msg), "node %s is not registered with this RM: register again", key);
        resp->diagnostics_message = pbstr(msg);
        if (!resp->diagnostics_message)
            return NOMEM(err, cap);
        return AG_SCHED_OK;
    }
    n->last_seen = now_ms;
    for (size_t i = 0; i < ns->n_container_statuses; i++)
        node_status(s, n, ns->container_statuses[i], now_ms);
    const Argot__Sched__V1__NodeHealthStatus *h = ns->node_health_status;
    if (h) {
        int was = n->state;
        if (!str_empty(h->health_report) && (!n->health || strcmp(n->health, h->health_report))) {
            char *d = ag_strdup(h->health_report);
            if (d) {
                ag_free(n->health);
                n->health = d;
            }
        }
        n->health_ms = h->last_health_report_time;
        n->state = h->is_node_healthy ? NS(RUNNING) : NS(UNHEALTHY);
        node_index(s, n);
        if (was != n->state)
            node_event(s, n);
    }
    /* keys the NM does not have yet: the next ones once drawn, so that it
     * knows them before they sign (and keeps the signing one as previous) */
    const Argot__Sched__V1__MasterKey *ck = req->last_known_container_token_master_key;
    const Argot__Sched__V1__MasterKey *nk = req->last_known_nm_token_master_key;
    const ag_sched_key *cd = s->ctr_next.id ? &s->ctr_next : &s->ctr_key;
    const ag_sched_key *nd = s->nm_next.id ? &s->nm_next : &s->nm_key;
    bool ok = true;
    if (!ck || ck->key_id != cd->id) {
        resp->container_token_master_key = mk_key(cd);
        ok = resp->container_token_master_key != NULL;
    }
    if (!nk || nk->key_id != nd->id) {
        resp->nm_token_master_key = mk_key(nd);
        ok = ok && resp->nm_token_master_key != NULL;
    }
    flush_freed(s, now_ms);
    sched_node(s, n, now_ms);
    ok = ok &&
         take_cids(s, n->cleanup, n->ncleanup, &resp->containers_to_cleanup,
                   &resp->n_containers_to_cleanup) == 0 &&
         take_cids(s, n->removed, n->nremoved, &resp->containers_to_be_removed_from_nm,
                   &resp->n_containers_to_be_removed_from_nm) == 0;
    if (ok && n->napp_cleanup) {
        resp->applications_to_cleanup = ag_calloc(n->napp_cleanup, sizeof(void *));
        ok = resp->applications_to_cleanup != NULL;
        for (size_t i = 0; ok && i < n->napp_cleanup; i++) {
            AppId *x = mk_appid(s, n->app_cleanup[i]);
            ok = x != NULL;
            if (ok)
                resp->applications_to_cleanup[resp->n_applications_to_cleanup++] = x;
        }
    }
    if (!ok) {
        ag_sched_resp_clear(&resp->base);
        return NOMEM(err, cap); /* the lists stay for the next heartbeat */
    }
    n->ncleanup = n->nremoved = n->napp_cleanup = 0;
    n->hb_id = ns->response_id + 1;
    resp->response_id = n->hb_id;
    resp->node_action = ARGOT__SCHED__V1__NODE_ACTION__NORMAL;
    return AG_SCHED_OK;
}

/* ------------------------------------------------------------------------ */
/* Time, preemption and the AM launcher                                       */
/* ------------------------------------------------------------------------ */

static void expire_nodes(ag_sched *s, uint64_t now)
{
    for (size_t i = 0; i < s->nnodes; i++) {
        node *n = s->nodes[i];
        if (!node_active(n) || now - n->last_seen < s->c.nm_expiry_ms)
            continue;
        char diag[400];
        snprintf(diag, sizeof(diag), "container lost on node %s (no heartbeat for %" PRIu64 " ms)",
                 n->key, now - n->last_seen);
        AG_LOG(AG_LOG_WARN, "sched", "node_lost node=%s", n->key);
        node_down(s, n, NS(LOST));
        node_drain(s, n, EXIT_ABORTED, diag, now);
        n->ncleanup = n->nremoved = n->napp_cleanup = 0;
        node_event(s, n);
    }
}

static void expire_attempts(ag_sched *s, uint64_t now)
{
    for (size_t i = 0; i < s->napps; i++) {
        app *a = s->apps[i];
        if (!a || !a->live || (a->astate != AT_LAUNCHED && a->astate != AT_REGISTERED))
            continue;
        if (now - a->last_seen < s->c.am_expiry_ms)
            continue;
        char why[128];
        snprintf(why, sizeof(why), "the AM was silent for %" PRIu64 " ms", now - a->last_seen);
        fail_attempt(s, a, why, now);
    }
}

/* ---- grants across a restart (rm.c's store) ---- */

static void grant_fill(ag_sched_grant *g, cid id, const char *host, int32_t port, res r,
                       int32_t prio, int64_t arid)
{
    *g = (ag_sched_grant){id.app_id, id.attempt, id.id, host, port, r.mb, r.vc, prio, arid};
}

void ag_sched_grant_changes(ag_sched *s, void (*fn)(void *ud, bool added, const ag_sched_grant *g),
                            void *ud)
{
    ag_sched_grant g;
    if (s->gevs_lost) {
        fn(ud, false, NULL);
        for (ctr *c = s->unl_head; c; c = c->unext) {
            if (c->am)
                continue;
            grant_fill(&g, c->id, c->n->host, c->n->port, c->r, c->prio, c->arid);
            fn(ud, true, &g);
            c->logged = true;
        }
        for (size_t i = 0; i < s->npgrants; i++) {
            const pgrant *p = &s->pgrants[i];
            grant_fill(&g, p->id, p->host, p->port, p->r, p->prio, p->arid);
            fn(ud, true, &g);
        }
        s->gevs_lost = false;
        s->ngevs = 0;
        return;
    }
    for (size_t i = 0; i < s->ngevs; i++) {
        const gev *e = &s->gevs[i];
        if (e->added)
            grant_fill(&g, e->id, e->n->host, e->n->port, e->r, e->prio, e->arid);
        else
            grant_fill(&g, e->id, NULL, 0, (res){0, 0}, 0, 0);
        fn(ud, e->added, &g);
    }
    s->ngevs = 0;
}

/* Logs that a grant put back from the store is gone (its row goes). */
static void pgrant_gone(ag_sched *s, const pgrant *p)
{
    if (!s->c.track_grants || s->gevs_lost)
        return;
    if (GROW(s->gevs, s->ngevs, s->gevs_cap) < 0) {
        s->gevs_lost = true;
        s->ngevs = 0;
        return;
    }
    s->gevs[s->ngevs++] = (gev){.added = false, .id = p->id};
}

static void pgrant_drop(ag_sched *s, size_t i)
{
    pgrant_gone(s, &s->pgrants[i]);
    ag_free(s->pgrants[i].node);
    ag_free(s->pgrants[i].host);
    s->pgrants[i] = s->pgrants[--s->npgrants];
}

int ag_sched_recover_grant(ag_sched *s, const ag_sched_grant *g, uint64_t now_ms, char *err,
                           size_t cap)
{
    app *a = g->app_id >= 1 && (size_t)g->app_id <= s->napps ? s->apps[g->app_id - 1] : NULL;
    if (!a || !a->live)
        return errf(err, cap, AG_SCHED_INVALID, "recover grant: application %d is not running",
                    (int)g->app_id);
    if (g->attempt < 1 || g->attempt > a->attempt || (!a->keep && g->attempt != a->attempt) ||
        g->container < 1 || g->container == a->am_cid)
        return errf(err, cap, AG_SCHED_INVALID,
                    "recover grant: container %" PRId64 " of attempt %d is not one attempt %d "
                    "of application %d may hold",
                    g->container, (int)g->attempt, (int)a->attempt, (int)g->app_id);
    if (str_empty(g->host) || g->memory_mb <= 0 || g->vcores <= 0)
        return errf(err, cap, AG_SCHED_INVALID,
                    "recover grant: container %" PRId64 " of application %d has no node or "
                    "resources",
                    g->container, (int)g->app_id);
    if (GROW(s->pgrants, s->npgrants, s->pgrants_cap) < 0)
        return NOMEM(err, cap);
    char key[300];
    snprintf(key, sizeof(key), "%s:%d", g->host, (int)g->port);
    pgrant *p = &s->pgrants[s->npgrants];
    *p = (pgrant){.id = {g->app_id, g->attempt, g->container},
                  .node = ag_strdup(key),
                  .host = ag_strdup(g->host),
                  .port = g->port,
                  .r = {g->memory_mb, g->vcores},
                  .prio = g->priority,
                  .arid = g->allocation_request_id,
                  .since = now_ms};
    if (!p->node || !p->host) {
        ag_free(p->node);
        ag_free(p->host);
        return NOMEM(err, cap);
    }
    s->npgrants++;
    if (g->container >= a->next_cid)
        a->next_cid = g->container + 1;
    return AG_SCHED_OK;
}

/* Node n registered (after its reported containers were adopted): the
 * grants put back for it become granted containers again, unless the node
 * reported them (then they are known already) or their application can no
 * longer hold them. */
static void pgrants_place(ag_sched *s, node *n, uint64_t now)
{
    for (size_t i = 0; i < s->npgrants;) {
        pgrant *p = &s->pgrants[i];
        if (strcmp(p->node, n->key) != 0) {
            i++;
            continue;
        }
        app *a = s->apps[p->id.app_id - 1];
        if (a && a->live && !IGET(&a->ctrs, (uint64_t)p->id.id) &&
            (a->keep || p->id.attempt == a->attempt)) {
            ctr *c = ctr_new(s, a, n, p->r, p->prio, p->arid, false, p->id.id, now);
            if (c) {
                c->id.attempt = p->id.attempt;
                c->delivered = true; /* its AM had it before the restart */
                c->logged = true;    /* its row is in the store */
                ag_free(p->node);
                ag_free(p->host);
                s->pgrants[i] = s->pgrants[--s->npgrants];
                continue;
            }
        }
        pgrant_drop(s, i);
    }
}

/* Grants put back whose node has not registered within
 * container_alloc_expiry_ms: dropped, and their AMs told (-100). */
static void pgrants_expire(ag_sched *s, uint64_t now)
{
    for (size_t i = 0; i < s->npgrants;) {
        pgrant *p = &s->pgrants[i];
        if (now < p->since || now - p->since < s->c.container_alloc_expiry_ms) {
            i++;
            continue;
        }
        app *a = s->apps[p->id.app_id - 1];
        if (a && a->live && GROW(a->done, a->ndone, a->done_cap) == 0) {
            cstat *st = &a->done[a->ndone];
            char diag[400];
            snprintf(diag, sizeof(diag),
                     "container expired: granted before the RM restarted, and its node %s did "
                     "not come back within %" PRIu64 " ms",
                     p->node, s->c.container_alloc_expiry_ms);
            *st = (cstat){p->id, EXIT_ABORTED, ag_strdup(diag), p->r};
            if (st->diag)
                a->ndone++;
        }
        pgrant_drop(s, i);
    }
}

/* Containers granted container_alloc_expiry_ms ago or more that their NM
 * never reported running (YARN's ContainerAllocationExpirer): each ends with
 * -100 and a diagnostic its AM hears in completed containers (an AM
 * container's end fails its attempt, as any AM container's end does), and
 * its node is told to stop it should it start after all. The list is in
 * grant order, so the walk stops at the first that has not expired. */
static void expire_unlaunched(ag_sched *s, uint64_t now)
{
    uint64_t ttl = s->c.container_alloc_expiry_ms;
    while (s->unl_head && now >= s->unl_head->created && now - s->unl_head->created >= ttl) {
        ctr *c = s->unl_head;
        char diag[400], id[128];
        ContainerId *x = mk_cid(s, c->id);
        snprintf(diag, sizeof(diag),
                 "container expired: granted %" PRIu64 " ms ago on node %s and never reported "
                 "running by it (liveness.container_alloc_expiry_ms %" PRIu64 ")",
                 now - c->created, c->n->key, ttl);
        AG_LOG(AG_LOG_INFO, "sched", "container_expired container=%s node=%s",
               x ? ag_sched_container_id_str(x, id, sizeof(id)) : "?", c->n->key);
        ag_rpc_msg_free(x ? &x->base : NULL);
        ctr_complete(s, c, EXIT_ABORTED, diag, true, true, now);
    }
}

/* Youngest non-AM container of a leaf above its capacity (labelled
 * partitions are never preempted). */
static ctr *preempt_victim(ag_sched *s, queue *q)
{
    ctr *best = NULL;
    for (app *a = q->apps; a; a = a->qnext) {
        HM_EACH(&a->ctrs, e)
        {
            ctr *c = e->v;
            if (c->am || c->preempt_at || !str_empty(c->n->p->label))
                continue;
            if (!best || c->created > best->created ||
                (c->created == best->created && c->id.id > best->id.id))
                best = c;
        }
    }
    (void)s;
    return best;
}

/* Preemption: for each leaf under its capacity with pending asks that do
 * not fit, mark containers of leaves over their capacity (youngest first,
 * never AMs) until the marked resources would cover the shortfall; their
 * AMs hear of them on their next allocate; preemption_wait_ms later the RM
 * kills what is still running (-102). */
static void preempt(ag_sched *s, uint64_t now)
{
    part *p = SGET(&s->partmap, "");
    if (!p || !p->total.mb)
        return;
    res total = p->total;
    res freeres = rsub(total, p->used);
    bool starving = false;
    for (size_t i = 0; i < s->nqueues; i++) {
        queue *q = s->queues[i];
        starving |= is_leaf(q) && q->pending > 0 && !over(q->used, s->min, q->abs_cap, total);
    }
    /* kills first; with no leaf starving any more, marks are lifted */
    for (size_t i = 0; i < s->napps; i++) {
        app *a = s->apps[i];
        if (!a || !a->live)
            continue;
        for (bool again = true; again;) {
            again = false;
            HM_EACH(&a->ctrs, e)
            {
                ctr *c = e->v;
                if (c->preempt_at && !starving) {
                    c->preempt_at = 0;
                    preempt_forget(a, c);
                } else if (c->preempt_at && now >= c->preempt_at) {
                    ctr_complete(s, c, EXIT_PREEMPTED, "Container preempted by the scheduler", true,
                                 true, now);
                    again = true;
                    break;
                }
            }
        }
    }
    for (size_t i = 0; starving && i < s->nqueues; i++) {
        queue *starved = s->queues[i];
        if (!is_leaf(starved) || starved->pending <= 0 ||
            over(starved->used, s->min, starved->abs_cap, total))
            continue;
        double guar = starved->abs_cap * (double)total.mb;
        double want =
            AG_MIN(guar - (double)starved->used.mb, (double)starved->pending * (double)s->min.mb);
        want -= (double)freeres.mb;
        /* containers already marked count toward the shortfall */
        for (size_t j = 0; j < s->nqueues; j++) {
            queue *o = s->queues[j];
            if (o == starved || !is_leaf(o))
                continue;
            for (app *a = o->apps; a; a = a->qnext) {
                HM_EACH(&a->ctrs, e)
                {
                    if (((ctr *)e->v)->preempt_at)
                        want -= (double)((ctr *)e->v)->r.mb;
                }
            }
        }
        while (want > 0) {
            queue *over_q = NULL;
            for (size_t j = 0; j < s->nqueues; j++) {
                queue *o = s->queues[j];
                if (o != starved && is_leaf(o) &&
                    (double)o->used.mb > o->abs_cap * (double)total.mb + 1e-6 &&
                    (!over_q || rel_used(o, total) > rel_used(over_q, total)))
                    over_q = o;
            }
            ctr *c = over_q ? preempt_victim(s, over_q) : NULL;
            if (!c ||
                (double)(over_q->used.mb - c->r.mb) < over_q->abs_cap * (double)total.mb - 1e-6)
                break;
            if (GROW(c->a->preempt, c->a->npreempt, c->a->preempt_cap) < 0)
                break;
            c->a->preempt[c->a->npreempt++] = c;
            c->preempt_at = now + s->c.preemption_wait_ms;
            want -= (double)c->r.mb;
            AG_LOG(AG_LOG_INFO, "sched", "preempt_mark queue=%s container=%" PRId64 " app=%d",
                   over_q->path, c->id.id, (int)c->a->id);
        }
    }
}

/* A fresh key of kind after the ids in use (ids never repeat, so that an
 * NM never takes a new key for an old one it holds). 0 or AG_E_SYS. */
static int key_draw(ag_sched_key *out, const ag_sched_key *a, const ag_sched_key *b,
                    const ag_sched_key *c)
{
    int32_t id = AG_MAX(AG_MAX(a->id, b->id), c->id);
    return ag__sched_key_new(out, id < INT32_MAX ? id + 1 : 1);
}

/* The delay between drawing keys (sent to the NMs with their next
 * heartbeat) and signing with them: a quarter of the interval (rm.c makes
 * that at least three heartbeats; YARN waits 1.5 NM expiry intervals). At
 * most a quarter, so that a key's NM tokens (half an interval) expire
 * before the NMs drop the key, an interval and a quarter after it signs
 * for the last time. */
static uint64_t key_activation_delay(const ag_sched *s)
{
    return s->c.key_roll_interval_ms / 4;
}

/* YARN's master-key roll, every key_roll_interval_ms: first the next
 * container and NM-token keys are drawn and handed to the NMs in their
 * heartbeats; key_activation_delay later they sign, the keys they replace
 * stay as the previous ones (the NMs keep them too), the AMRM key rolls
 * the same way (allocate hands each AM its new token), and every attempt's
 * NM tokens are renewed at its next allocate. */
static void roll_keys(ag_sched *s, uint64_t now)
{
    if (!s->roll_timed) {
        s->roll_at = now + s->c.key_roll_interval_ms;
        s->activate_at = now + key_activation_delay(s);
        s->roll_timed = true;
    }
    if (s->ctr_next.id && now >= s->activate_at) {
        ag_sched_key amrm;
        if (key_draw(&amrm, &s->amrm_key, &s->amrm_prev, &s->amrm_prev) < 0)
            return; /* the next tick tries again */
        s->ctr_prev = s->ctr_key;
        s->ctr_key = s->ctr_next;
        s->nm_prev = s->nm_key;
        s->nm_key = s->nm_next;
        s->amrm_prev = s->amrm_key;
        s->amrm_key = amrm;
        ag_wipe(&amrm, sizeof(amrm));
        memset(&s->ctr_next, 0, sizeof(s->ctr_next));
        memset(&s->nm_next, 0, sizeof(s->nm_next));
        for (size_t i = 0; i < s->napps; i++)
            if (s->apps[i] && s->apps[i]->live)
                s->apps[i]->nm_renew = true;
        s->key_changes++;
        AG_LOG(AG_LOG_INFO, "sched", "master_keys_active container=%d nm_token=%d amrm=%d",
               (int)s->ctr_key.id, (int)s->nm_key.id, (int)s->amrm_key.id);
    }
    if (!s->ctr_next.id && now >= s->roll_at) {
        if (key_draw(&s->ctr_next, &s->ctr_key, &s->ctr_prev, &s->ctr_prev) < 0 ||
            key_draw(&s->nm_next, &s->nm_key, &s->nm_prev, &s->nm_prev) < 0) {
            ag_wipe(&s->ctr_next, sizeof(s->ctr_next));
            ag_wipe(&s->nm_next, sizeof(s->nm_next));
            return;
        }
        s->roll_at = now + s->c.key_roll_interval_ms;
        s->activate_at = now + key_activation_delay(s);
        s->key_changes++;
        AG_LOG(
            AG_LOG_INFO, "sched", "master_keys_drawn container=%d nm_token=%d activate_in_ms=%llu",
            (int)s->ctr_next.id, (int)s->nm_next.id, (unsigned long long)key_activation_delay(s));
    }
}

void ag_sched_tick(ag_sched *s, uint64_t now_ms)
{
    roll_keys(s, now_ms);
    expire_nodes(s, now_ms);
    expire_unlaunched(s, now_ms);
    pgrants_expire(s, now_ms);
    expire_attempts(s, now_ms);
    if (s->c.preemption)
        preempt(s, now_ms);
    flush_freed(s, now_ms);
    place_ams(s, NULL, now_ms);
}

static int env_add(Argot__Sched__V1__ContainerLaunchContext *clc, const char *k, const char *v)
{
    Argot__Sched__V1__ContainerLaunchContext__EnvironmentEntry **ne =
        ag_reallocarray(clc->environment, clc->n_environment + 1, sizeof(*ne));
    if (!ne)
        return AG_E_NOMEM;
    clc->environment = ne;
    Argot__Sched__V1__ContainerLaunchContext__EnvironmentEntry *e =
        MK(Argot__Sched__V1__ContainerLaunchContext__EnvironmentEntry,
           ARGOT__SCHED__V1__CONTAINER_LAUNCH_CONTEXT__ENVIRONMENT_ENTRY__INIT);
    if (!e)
        return AG_E_NOMEM;
    clc->environment[clc->n_environment++] = e;
    /* replace an entry of the same name the submitter set */
    for (size_t i = 0; i + 1 < clc->n_environment; i++) {
        if (strcmp(clc->environment[i]->key, k) == 0) {
            ag_rpc_msg_free(&clc->environment[i]->base);
            clc->environment[i] = e;
            clc->n_environment--;
            break;
        }
    }
    e->key = pbstr(k);
    e->value = pbstr(v);
    if (!e->key || !e->value)
        return AG_E_NOMEM;
    return 0;
}

static int build_launch(ag_sched *s, app *a, ctr *c, ag_sched_am_launch *l)
{
    char buf[128], tok[4096];
    l->node = mk_nodeid(c->n);
    l->container = mk_cid(s, c->id);
    if (!l->node || !l->container)
        return AG_E_NOMEM;
    Argot__Sched__V1__StartContainersRequest *r = MK(
        Argot__Sched__V1__StartContainersRequest, ARGOT__SCHED__V1__START_CONTAINERS_REQUEST__INIT);
    l->request = r;
    if (!r)
        return AG_E_NOMEM;
    r->start_container_request = ag_calloc(1, sizeof(void *));
    if (!r->start_container_request)
        return AG_E_NOMEM;
    Argot__Sched__V1__StartContainerRequest *sr = MK(
        Argot__Sched__V1__StartContainerRequest, ARGOT__SCHED__V1__START_CONTAINER_REQUEST__INIT);
    if (!sr)
        return AG_E_NOMEM;
    r->start_container_request[r->n_start_container_request++] = sr;
    if (a->am_spec)
        sr->container_launch_context = argot__sched__v1__container_launch_context__unpack(
            &pb_allocator, a->am_spec_len, a->am_spec);
    else
        sr->container_launch_context = MK(Argot__Sched__V1__ContainerLaunchContext,
                                          ARGOT__SCHED__V1__CONTAINER_LAUNCH_CONTEXT__INIT);
    Argot__Sched__V1__ContainerLaunchContext *clc = sr->container_launch_context;
    if (!clc)
        return AG_E_NOMEM;
    sr->container_token = container_token(s, c);
    if (!sr->container_token)
        return AG_E_NOMEM;
    AppId aid = ARGOT__SCHED__V1__APPLICATION_ID__INIT;
    aid.cluster_timestamp = s->c.cluster_timestamp;
    aid.id = a->id;
    if (env_add(clc, "ARGOT_APP_ID", ag_sched_app_id_str(&aid, buf, sizeof(buf))) < 0 ||
        env_add(clc, "ARGOT_CONTAINER_ID",
                ag_sched_container_id_str(l->container, buf, sizeof(buf))) < 0)
        return AG_E_NOMEM;
    snprintf(buf, sizeof(buf), "%s:%d", c->n->host, (int)c->n->port);
    if (env_add(clc, "ARGOT_NM_HOST", buf) < 0)
        return AG_E_NOMEM;
    Token *t = amrm_token(s, a);
    if (!t)
        return AG_E_NOMEM;
    int rc = ag__sched_token_text(t->identifier.data, t->identifier.len, t->password.data,
                                  t->password.len, tok, sizeof(tok));
    ag_rpc_msg_free(&t->base);
    if (rc < 0)
        return rc;
    rc = env_add(clc, "ARGOT_AMRM_TOKEN", tok);
    ag_wipe(tok, sizeof(tok));
    return rc;
}

static void launch_cleanup(ag_sched_am_launch *l)
{
    ag_rpc_msg_free(l->node ? &l->node->base : NULL);
    ag_rpc_msg_free(l->request ? &l->request->base : NULL);
    ag_rpc_msg_free(l->container ? &l->container->base : NULL);
    memset(l, 0, sizeof(*l));
}

int ag_sched_take_am_launches(ag_sched *s, ag_sched_am_launch **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!s->nlaunches)
        return 0;
    ag_sched_am_launch *arr = ag_calloc(s->nlaunches, sizeof(*arr));
    if (!arr)
        return AG_E_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < s->nlaunches; i++) {
        launch *l = &s->launches[i];
        app *a = l->a;
        ctr *c = a->live && a->attempt == l->attempt ? IGET(&a->ctrs, (uint64_t)l->cid) : NULL;
        if (!c || !c->am)
            continue; /* the attempt ended before its launch */
        if (build_launch(s, a, c, &arr[k]) < 0) {
            for (size_t j = 0; j <= k; j++)
                launch_cleanup(&arr[j]);
            ag_free(arr);
            return AG_E_NOMEM; /* all stay pending */
        }
        k++;
    }
    s->nlaunches = 0;
    if (!k) {
        ag_free(arr);
        arr = NULL;
    }
    *out = arr;
    *n = k;
    return 0;
}

void ag_sched_am_launch_failed(ag_sched *s, const Argot__Sched__V1__ContainerId *container,
                               const char *why, uint64_t now_ms)
{
    app *a = NULL;
    ctr *c = ctr_get(s, container, &a);
    if (!c || !c->am || a->am_ctr != c)
        return;
    char diag[512];
    snprintf(diag, sizeof(diag), "AM container could not start: %s", why ? why : "");
    /* the node never ran it: nothing to clean up there */
    ctr_complete(s, c, EXIT_ABORTED, diag, false, false, now_ms);
    flush_freed(s, now_ms);
}

/* ------------------------------------------------------------------------ */
/* Ids                                                                        */
/* ------------------------------------------------------------------------ */

const char *ag_sched_app_id_str(const Argot__Sched__V1__ApplicationId *id, char *buf, size_t cap)
{
    return ag_sched_format_app_id(id ? id->cluster_timestamp : 0, id ? id->id : 0, buf, cap);
}

const char *ag_sched_container_id_str(const Argot__Sched__V1__ContainerId *id, char *buf,
                                      size_t cap)
{
    const AttemptId *at = id ? id->app_attempt_id : NULL;
    const AppId *ap = at ? at->application_id : NULL;
    snprintf(buf, cap, "container_%" PRId64 "_%04d_%02d_%06" PRId64, ap ? ap->cluster_timestamp : 0,
             ap ? (int)ap->id : 0, at ? (int)at->attempt_id : 0, id ? id->id : 0);
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Invariants, for tests                                                      */
/* ------------------------------------------------------------------------ */

static bool req_eq(res a, res b)
{
    return a.mb == b.mb && a.vc == b.vc;
}

static int check_nodes(const ag_sched *s, size_t *nctrs, char *err, size_t cap)
{
    for (size_t i = 0; i < s->nnodes; i++) {
        const node *n = s->nodes[i];
        res sum = {0, 0};
        int cnt = 0;
        for (const ctr *c = n->ctrs; c; c = c->nnext) {
            if (c->n != n || IGET(&c->a->ctrs, (uint64_t)c->id.id) != c)
                return errf(err, cap, -1, "node %s: container %" PRId64 " not in its app's map",
                            n->key, c->id.id);
            sum = radd(sum, c->r);
            cnt++;
        }
        *nctrs += (size_t)cnt;
        if (!req_eq(sum, n->used) || cnt != n->nctrs)
            return errf(err, cap, -1, "node %s: used %" PRId64 " MB, containers sum to %" PRId64,
                        n->key, n->used.mb, sum.mb);
        bool want = n->state == NS(RUNNING) && rfits(s->min, node_free_res(n));
        if (want != n->in_free)
            return errf(err, cap, -1, "node %s: in the free lists: %d, should be %d", n->key,
                        (int)n->in_free, (int)want);
    }
    for (size_t i = 0; i < s->nparts; i++) {
        const part *p = s->parts[i];
        res used = {0, 0}, total = {0, 0};
        for (size_t j = 0; j < s->nnodes; j++) {
            if (s->nodes[j]->p != p)
                continue;
            used = radd(used, s->nodes[j]->used);
            if (node_active(s->nodes[j]))
                total = radd(total, s->nodes[j]->cap);
        }
        if (!req_eq(used, p->used) || !req_eq(total, p->total))
            return errf(err, cap, -1, "partition '%s': used or total off", p->label);
    }
    return 0;
}

static int check_apps(const ag_sched *s, size_t nctrs, char *err, size_t cap)
{
    size_t in_apps = 0;
    for (size_t i = 0; i < s->nqueues; i++) {
        const queue *q = s->queues[i];
        res used = {0, 0}, am_used = {0, 0};
        int64_t pending = 0;
        for (size_t j = 0; j < s->napps; j++) {
            const app *a = s->apps[j];
            if (!a)
                continue;
            bool under = false;
            for (const queue *x = a->q; x && !under; x = x->parent)
                under = x == q;
            HM_EACH(&a->ctrs, e)
            {
                const ctr *c = e->v;
                if (under && str_empty(c->n->p->label)) {
                    used = radd(used, c->r);
                    if (c->am && a->q == q)
                        am_used = radd(am_used, c->r);
                }
            }
            for (const skey *k = a->keys; under && a->live && k; k = k->next)
                pending += k->any;
        }
        if (!req_eq(used, q->used) || !req_eq(am_used, q->am_used))
            return errf(err, cap, -1, "queue %s: used %" PRId64 " MB, containers sum to %" PRId64,
                        q->path, q->used.mb, used.mb);
        if (is_leaf(q) && pending != q->pending)
            return errf(err, cap, -1, "queue %s: pending %" PRId64 ", asks sum to %" PRId64,
                        q->path, q->pending, pending);
    }
    for (size_t j = 0; j < s->napps; j++) {
        const app *a = s->apps[j];
        if (!a)
            continue;
        res used = {0, 0};
        HM_EACH(&a->ctrs, e)
        {
            used = radd(used, ((const ctr *)e->v)->r);
        }
        in_apps += a->ctrs.n;
        if (!req_eq(used, a->used))
            return errf(err, cap, -1, "application %d: used off", (int)a->id);
        HM_EACH(&a->ctrs, e)
        {
            /* an ended application keeps only an AM container that exits */
            if (!a->live && !((const ctr *)e->v)->am)
                return errf(err, cap, -1, "application %d: ended with live containers", (int)a->id);
        }
    }
    if (in_apps != nctrs)
        return errf(err, cap, -1, "%zu containers in applications, %zu on nodes", in_apps, nctrs);
    return 0;
}

/* The unlaunched list holds exactly the containers not reported running. */
static int check_unlaunched(const ag_sched *s, char *err, size_t cap)
{
    size_t listed = 0, want = 0;
    const ctr *prev = NULL;
    for (const ctr *c = s->unl_head; c; prev = c, c = c->unext) {
        if (c->running || c->uprev != prev)
            return errf(err, cap, -1, "unlaunched list: container %" PRId64 " %s", c->id.id,
                        c->running ? "is running" : "has a wrong back link");
        listed++;
    }
    if (prev != s->unl_tail)
        return errf(err, cap, -1, "unlaunched list: wrong tail");
    for (size_t j = 0; j < s->napps; j++) {
        const app *a = s->apps[j];
        if (!a)
            continue;
        HM_EACH(&a->ctrs, e)
        {
            want += !((const ctr *)e->v)->running;
        }
    }
    if (listed != want)
        return errf(err, cap, -1, "unlaunched list: %zu containers, %zu not running", listed, want);
    return 0;
}

int ag__sched_check(const ag_sched *s, char *err, size_t cap)
{
    size_t nctrs = 0;
    int rc = check_nodes(s, &nctrs, err, cap);
    if (rc == 0)
        rc = check_apps(s, nctrs, err, cap);
    return rc ? rc : check_unlaunched(s, err, cap);
}
