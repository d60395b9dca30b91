/*
 * The ApplicationMaster client (sched.h): YARN's AMRMClient and NMClient.
 *
 * The ask table holds, per key (priority, resource name, capability,
 * allocation request id, relax, label), the total the AM wants and whether
 * it changed since the last allocate; an allocate sends the changed keys
 * (YARN's protocol takes totals, so a key is sent whole), every release and
 * blacklist change queued since, and the last response's id.
 *
 * Invariants:
 *   1. The packed request of the last allocate is kept until a response to
 *      it arrives: a call that failed in transit is resent byte for byte
 *      with the same response_id, so the RM answers from its cache if it
 *      had processed it (nothing granted twice, nothing lost).
 *   2. A grant lowers the totals of its key at "*" and at its node (as the
 *      RM does; racks are not known here), so a resync resends what is
 *      still outstanding, not what was first asked.
 *   3. Resync (FAILED_PRECONDITION "ApplicationMasterNotRegistered", or
 *      AM_RESYNC, e.g. from an RM restarted with its state): register
 *      again, response_id back to 0, every key marked changed, releases
 *      and the blacklist resent. Finish resyncs the same way, and both
 *      retry an unavailable RM (about 8 s: an RM restart takes well under
 *      a second, the NMs' re-registration does not hold up the AM).
 *   4. Granted containers stay in `granted` (with their tokens, which the
 *      NM needs) until the RM reports them completed.
 *   5. A new AMRM token in an allocate response (am_rm_token: the RM rolled
 *      its key) replaces the one the AM had, for every call after.
 *   6. The NM tokens the RM hands out (allocate's nm_tokens, register's
 *      nm_tokens_from_previous_attempts) are kept per node, the latest
 *      replacing the one before; every ContainerManagement call to a node
 *      carries that node's (metadata "argot-nm-token"). They are secrets:
 *      wiped when replaced or freed, never logged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "argot/sched.h"
#include "argot/sched/v1/sched.argot.h"
#include "argot/sched/v1/sched.pb-c.h"
#include "chans.h"
#include "scheduler.h"
#include "asks.h"
#include "slurm_am.h"
#include "token.h"

struct strlist {
    char s[256];
    bool add; /* blacklist: add or remove */
    struct strlist *next;
};

struct nmtok {
    char node[300];  /* "host:port" */
    char text[2048]; /* token.h's text form */
    struct nmtok *next;
};

struct granted {
    char id[96];
    char node[300];
    Argot__Sched__V1__Container *c; /* owned */
    bool started;
    struct granted *next;
};

struct ag_am {
    ag_am_opts o;
    ag__slurm_am *slurm; /* provider "slurm": every call goes there (slurm.c) */
    char token[2048];
    char rm_target[300]; /* the RM address list, for messages */
    ag__rms rms;         /* the RMs (one active among them) */
    ag_rpc_channel *last; /* the channel of the last rm_call */
    ag_errbuf err;
    /* registration, for resync */
    char host[256], tracking[512];
    int port;
    bool registered;
    int32_t response_id;
    ag__ask *asks;
    struct strlist *releases;  /* queued since the last allocate */
    struct strlist *blacklist; /* changes queued */
    struct strlist *blacklisted; /* every entry in force (resent on resync) */
    struct granted *granted;
    ag__chans *nodes; /* channels to the NMs */
    struct nmtok *nmtoks; /* invariant 6 */
    ag__sched_tls tls;
    int64_t head_mb;
    int32_t head_vcores, cluster_nodes;
};

static void list_free(struct strlist *l)
{
    while (l) {
        struct strlist *n = l->next;
        ag_free(l);
        l = n;
    }
}

static int list_push(struct strlist **l, const char *s, bool add)
{
    struct strlist *n = ag_calloc(1, sizeof(*n));
    if (!n)
        return AG_E_NOMEM;
    snprintf(n->s, sizeof(n->s), "%s", s);
    n->add = add;
    n->next = *l;
    *l = n;
    return 0;
}

/* provider "slurm": an ag_am that only forwards to slurm.c */
static ag_am *new_slurm(const ag_am_opts *o, char *err, size_t cap)
{
    ag_am *am = ag_calloc(1, sizeof(*am));
    if (!am) {
        snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
        return NULL;
    }
    am->o = *o;
    am->slurm = ag__slurm_am_new(am, o, err, cap);
    if (!am->slurm) {
        ag_free(am);
        return NULL;
    }
    return am;
}

ag_am *ag_am_new(const ag_am_opts *o, char *err, size_t cap)
{
    if (o->provider && strcmp(o->provider, "slurm") == 0)
        return new_slurm(o, err, cap);
    if (o->provider && strcmp(o->provider, "argot") != 0) {
        snprintf(err, cap, "unknown provider '%.40s' (argot or slurm)", o->provider);
        return NULL;
    }
    const char *token = o->token ? o->token : getenv("ARGOT_AMRM_TOKEN");
    if (!token || !*token) {
        snprintf(err, cap, "no AMRM token (ARGOT_AMRM_TOKEN is not set: is this process an "
                           "application master started by the RM?)");
        return NULL;
    }
    if (strlen(token) >= sizeof(((ag_am *)0)->token) || !strchr(token, '.')) {
        snprintf(err, cap, "the AMRM token is malformed");
        return NULL;
    }
    ag_am *am = ag_calloc(1, sizeof(*am));
    if (!am) {
        snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
        return NULL;
    }
    am->o = *o;
    if (!am->o.call_timeout_ms)
        am->o.call_timeout_ms = 10000;
    snprintf(am->token, sizeof(am->token), "%s", token);
    snprintf(am->rm_target, sizeof(am->rm_target), "%s", o->rm);
    if ((o->tls_key && o->tls_key[0]) != (o->tls_cert && o->tls_cert[0])) {
        snprintf(err, cap, "TLS: a client certificate needs its key and a key its certificate");
        ag_free(am);
        return NULL;
    }
    am->tls = (ag__sched_tls){o->tls_cert, o->tls_key, o->tls_ca};
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    co.backoff_initial_ms = 100;
    co.backoff_max_ms = 2000;
    ag__sched_tls_channel(&am->tls, &co);
    if (ag__rms_init(&am->rms, o->rm, &co, err, cap) < 0) {
        ag_free(am);
        return NULL;
    }
    return am;
}

void ag_am_free(ag_am *am)
{
    if (!am)
        return;
    if (am->slurm) {
        ag__slurm_am_free(am->slurm);
        ag_free(am);
        return;
    }
    ag__asks_free(&am->asks);
    list_free(am->releases);
    list_free(am->blacklist);
    list_free(am->blacklisted);
    while (am->granted) {
        struct granted *n = am->granted->next;
        ag_rpc_msg_free(&am->granted->c->base);
        ag_free(am->granted);
        am->granted = n;
    }
    while (am->nmtoks) {
        struct nmtok *n = am->nmtoks->next;
        ag_wipe(am->nmtoks, sizeof(*am->nmtoks));
        ag_free(am->nmtoks);
        am->nmtoks = n;
    }
    ag__chans_free(&am->nodes);
    ag__rms_cleanup(&am->rms);
    ag_wipe(am->token, sizeof(am->token));
    ag_free(am);
}

/* Keeps the NM tokens of a response (invariant 6). 0 or AG_E_NOMEM. */
static int take_nm_tokens(ag_am *am, Argot__Sched__V1__NMToken *const *ts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const Argot__Sched__V1__NMToken *t = ts[i];
        if (!t->node_id || !t->token)
            continue;
        char node[300];
        snprintf(node, sizeof(node), "%s:%d", t->node_id->host, (int)t->node_id->port);
        struct nmtok *k = am->nmtoks;
        while (k && strcmp(k->node, node) != 0)
            k = k->next;
        if (!k) {
            if (!(k = ag_calloc(1, sizeof(*k))))
                return AG_E_NOMEM;
            snprintf(k->node, sizeof(k->node), "%s", node);
            k->next = am->nmtoks;
            am->nmtoks = k;
        }
        ag_wipe(k->text, sizeof(k->text));
        if (ag__sched_token_text(t->token->identifier.data, t->token->identifier.len,
                                 t->token->password.data, t->token->password.len, k->text,
                                 sizeof(k->text)) < 0)
            k->text[0] = '\0';
    }
    return 0;
}

/* The NM token for node ("host:port"), or "" (the NM will refuse). */
static const char *nm_token_of(const ag_am *am, const char *node)
{
    for (const struct nmtok *k = am->nmtoks; k; k = k->next)
        if (strcmp(k->node, node) == 0)
            return k->text;
    return "";
}

const char *ag_am_errmsg(const ag_am *am)
{
    if (am->slurm)
        return ag__slurm_am_errmsg(am->slurm);
    return am->err.msg;
}

/* A call to the (current) RM with the token in its metadata. */
static ag_rpc_call *rm_call(ag_am *am, const ag_rpc_method *m)
{
    am->last = ag__rms_channel(&am->rms, NULL);
    ag_rpc_call *c = ag_rpc_call_start(am->last, m, ag_deadline_in_ms(am->o.call_timeout_ms));
    if (c && ag_rpc_call_add_metadata(c, "argot-amrm-token", am->token, strlen(am->token)) < 0) {
        ag_rpc_call_free(c);
        return NULL;
    }
    return c;
}

static int rm_unary_once(ag_am *am, const ag_rpc_method *m, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, char *msg, size_t cap);

/* One unary call to the RM: status, *resp, message into am->err on failure.
 * With several RMs, a call that cannot reach one goes to the next (each
 * tried a few times, as an active RM may take seconds to be elected). */
static int rm_unary(ag_am *am, const ag_rpc_method *m, const ProtobufCMessage *req,
                    ProtobufCMessage **resp, char *msg, size_t cap)
{
    int st = rm_unary_once(am, m, req, resp, msg, cap);
    for (int i = 0; i < 20 && ag__rms_failed(&am->rms, am->last, st); i++) {
        ag_sleep_ms(i < (int)am->rms.n ? 0 : 250);
        st = rm_unary_once(am, m, req, resp, msg, cap);
    }
    return st;
}

static int rm_unary_once(ag_am *am, const ag_rpc_method *m, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, char *msg, size_t cap)
{
    *resp = NULL;
    msg[0] = 0;
    ag_rpc_call *c = rm_call(am, m);
    if (!c) {
        snprintf(msg, cap, "%s", ag_strerror(AG_E_NOMEM));
        return AG_RPC_RESOURCE_EXHAUSTED;
    }
    int rc = ag_rpc_call_send_msg(c, req, 0);
    if (rc == 0)
        rc = ag_rpc_call_close_send(c);
    if (rc == 0 && ag_rpc_call_recv_msg(c, m->output, resp) != 1)
        *resp = NULL;
    const char *message = NULL;
    int st = ag_rpc_call_status(c, &message);
    if (st != AG_RPC_OK) {
        ag_rpc_msg_free(*resp);
        *resp = NULL;
    } else if (!*resp) {
        st = AG_RPC_INTERNAL;
        message = "no response";
    }
    if (st != AG_RPC_OK)
        snprintf(msg, cap, "%s", message ? message : "");
    ag_rpc_call_free(c);
    return st;
}

static int fail(ag_am *am, int code, const char *what, int st, const char *msg)
{
    return ag_errbuf_set(&am->err, code, "%s: RM %s: %s: %s", what, am->rm_target,
                         ag_rpc_status_name(st), msg[0] ? msg : "(no message)");
}

int ag_am_register(ag_am *am, const char *host, int port, const char *tracking_url)
{
    if (am->slurm)
        return ag__slurm_am_register(am->slurm, host, port, tracking_url);
    snprintf(am->host, sizeof(am->host), "%s", host ? host : "");
    snprintf(am->tracking, sizeof(am->tracking), "%s", tracking_url ? tracking_url : "");
    am->port = port;
    Argot__Sched__V1__RegisterApplicationMasterRequest req =
        ARGOT__SCHED__V1__REGISTER_APPLICATION_MASTER_REQUEST__INIT;
    req.host = am->host;
    req.rpc_port = port;
    req.tracking_url = am->tracking;
    ProtobufCMessage *resp = NULL;
    char msg[AG_ERRMSG_MAX];
    int st = rm_unary(am, &argot__sched__v1__application_master__register_application_master__method,
                      &req.base, &resp, msg, sizeof(msg));
    if (st != AG_RPC_OK)
        return fail(am, AG_E_STATE, "register", st, msg);
    Argot__Sched__V1__RegisterApplicationMasterResponse *r =
        (Argot__Sched__V1__RegisterApplicationMasterResponse *)resp;
    int rc = take_nm_tokens(am, r->nm_tokens_from_previous_attempts,
                            r->n_nm_tokens_from_previous_attempts);
    ag_rpc_msg_free(resp);
    if (rc < 0)
        return ag_errbuf_set(&am->err, rc, "register: no memory");
    am->registered = true;
    am->response_id = 0;
    return 0;
}


int ag_am_ask(ag_am *am, int32_t priority, const char *resource_name, int64_t memory_mb,
              int32_t vcores, int32_t total, bool relax_locality, const char *label,
              int64_t allocation_request_id)
{
    if (am->slurm)
        return ag__slurm_am_ask(am->slurm, priority, resource_name, memory_mb, vcores, total,
                                relax_locality, label, allocation_request_id);
    return ag__ask_set(&am->asks, &am->err, priority, resource_name, memory_mb, vcores, total,
                       relax_locality, label, allocation_request_id);
}

int ag_am_release(ag_am *am, const char *container_id)
{
    if (am->slurm)
        return ag__slurm_am_release(am->slurm, container_id);
    return list_push(&am->releases, container_id, true) < 0
               ? ag_errbuf_set(&am->err, AG_E_NOMEM, "release: no memory")
               : 0;
}

int ag_am_blacklist(ag_am *am, const char *resource_name, bool add)
{
    if (am->slurm)
        return ag__slurm_am_blacklist(am->slurm, resource_name, add);
    if (list_push(&am->blacklist, resource_name, add) < 0)
        return ag_errbuf_set(&am->err, AG_E_NOMEM, "blacklist: no memory");
    /* the entries in force, for a resync */
    for (struct strlist **pp = &am->blacklisted; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->s, resource_name) == 0) {
            struct strlist *d = *pp;
            *pp = d->next;
            ag_free(d);
            break;
        }
    if (add && list_push(&am->blacklisted, resource_name, true) < 0)
        return ag_errbuf_set(&am->err, AG_E_NOMEM, "blacklist: no memory");
    return 0;
}

/* Parses a container id text back into the record (for release). */
static Argot__Sched__V1__ContainerId *container_id_of(ag_am *am, const char *text)
{
    for (struct granted *g = am->granted; g; g = g->next)
        if (strcmp(g->id, text) == 0)
            return g->c->id;
    return NULL;
}

/* After a resync: everything outstanding goes again. */
static void mark_all_changed(ag_am *am)
{
    for (ag__ask *a = am->asks; a; a = a->next)
        a->changed = true;
    for (struct strlist *b = am->blacklisted; b; b = b->next)
        list_push(&am->blacklist, b->s, true);
}

/* Builds the allocate request into packed bytes (*buf, *len). */
static int build_request(ag_am *am, float progress, uint8_t **buf, size_t *len)
{
    size_t nask = 0, nrel = 0, nadd = 0, nrem = 0;
    for (ag__ask *a = am->asks; a; a = a->next)
        nask += a->changed;
    for (struct strlist *r = am->releases; r; r = r->next)
        nrel++;
    for (struct strlist *b = am->blacklist; b; b = b->next)
        b->add ? nadd++ : nrem++;
    Argot__Sched__V1__ResourceRequest *rr = ag_calloc(nask + 1, sizeof(*rr));
    Argot__Sched__V1__ResourceRequest **rp = ag_calloc(nask + 1, sizeof(*rp));
    Argot__Sched__V1__Resource *caps = ag_calloc(nask + 1, sizeof(*caps));
    Argot__Sched__V1__ContainerId **rel = ag_calloc(nrel + 1, sizeof(*rel));
    char **adds = ag_calloc(nadd + 1, sizeof(*adds)), **rems = ag_calloc(nrem + 1, sizeof(*rems));
    int rc = rr && rp && caps && rel && adds && rems ? 0 : AG_E_NOMEM;
    Argot__Sched__V1__AllocateRequest req = ARGOT__SCHED__V1__ALLOCATE_REQUEST__INIT;
    Argot__Sched__V1__ResourceBlacklistRequest bl = ARGOT__SCHED__V1__RESOURCE_BLACKLIST_REQUEST__INIT;
    if (rc == 0) {
        size_t i = 0;
        for (ag__ask *a = am->asks; a; a = a->next) {
            if (!a->changed)
                continue;
            argot__sched__v1__resource_request__init(&rr[i]);
            argot__sched__v1__resource__init(&caps[i]);
            caps[i].memory_mb = a->memory_mb;
            caps[i].vcores = a->vcores;
            rr[i].priority = a->priority;
            rr[i].resource_name = a->name;
            rr[i].capability = &caps[i];
            rr[i].num_containers = a->total;
            rr[i].relax_locality = a->relax;
            rr[i].node_label_expression = a->label;
            rr[i].allocation_request_id = a->alloc_id;
            rp[i] = &rr[i];
            i++;
        }
        req.n_ask = nask;
        req.ask = rp;
        size_t j = 0;
        for (struct strlist *r = am->releases; r; r = r->next) {
            Argot__Sched__V1__ContainerId *cid = container_id_of(am, r->s);
            if (cid)
                rel[j++] = cid;
        }
        req.n_release = j;
        req.release = rel;
        size_t x = 0, y = 0;
        for (struct strlist *b = am->blacklist; b; b = b->next)
            if (b->add)
                adds[x++] = b->s;
            else
                rems[y++] = b->s;
        bl.n_blacklist_additions = x;
        bl.blacklist_additions = adds;
        bl.n_blacklist_removals = y;
        bl.blacklist_removals = rems;
        if (x + y)
            req.blacklist_request = &bl;
        req.response_id = am->response_id;
        req.progress = progress;
        *len = argot__sched__v1__allocate_request__get_packed_size(&req);
        *buf = ag_malloc(*len + 1);
        if (!*buf)
            rc = AG_E_NOMEM;
        else
            argot__sched__v1__allocate_request__pack(&req, *buf);
    }
    ag_free(rr);
    ag_free(rp);
    ag_free(caps);
    ag_free(rel);
    ag_free(adds);
    ag_free(rems);
    return rc;
}

/* Lowers the totals that a grant of c satisfies (invariant 2): of the
 * keys at its priority and allocation request id with a "*" total left,
 * the one of the largest capability within the grant's (the RM rounds
 * capabilities up, so the grant may be larger than the ask), at "*" and
 * at the grant's host. Rack totals stay as asked: the client does not know
 * which rack a node is in (the RM caps them by the "*" total). */
static void lower_totals(ag_am *am, const Argot__Sched__V1__Container *c)
{
    int64_t mb = c->resource ? c->resource->memory_mb : 0;
    int32_t vc = c->resource ? c->resource->vcores : 0;
    ag__ask *best = NULL;
    for (ag__ask *a = am->asks; a; a = a->next)
        if (a->priority == c->priority && a->alloc_id == c->allocation_request_id &&
            strcmp(a->name, "*") == 0 && a->total > 0 && a->memory_mb <= mb &&
            a->vcores <= vc &&
            (!best || a->memory_mb > best->memory_mb ||
             (a->memory_mb == best->memory_mb && a->vcores > best->vcores)))
            best = a;
    if (!best)
        return;
    best->total--;
    if (!c->node_id)
        return;
    ag__ask *host = ag__ask_find(am->asks, best->priority, c->node_id->host, best->memory_mb,
                                best->vcores, best->alloc_id);
    if (host && host->total > 0)
        host->total--;
}

static int handle_response(ag_am *am, Argot__Sched__V1__AllocateResponse *r)
{
    am->response_id = r->response_id;
    if (r->limit) {
        am->head_mb = r->limit->memory_mb;
        am->head_vcores = r->limit->vcores;
    }
    am->cluster_nodes = r->num_cluster_nodes;
    const Argot__Sched__V1__Token *t = r->am_rm_token;
    if (t && t->identifier.len) {
        /* the RM rolled its AMRM key: the calls from now on carry the new
         * token (the old one stays valid until the roll after) */
        char text[sizeof(am->token)];
        if (ag__sched_token_text(t->identifier.data, t->identifier.len, t->password.data,
                                 t->password.len, text, sizeof(text)) == 0) {
            memcpy(am->token, text, sizeof(am->token));
            AG_LOG(AG_LOG_INFO, "am", "amrm_token_renewed rm=%s", am->rm_target);
        }
        ag_wipe(text, sizeof(text));
    }
    if (take_nm_tokens(am, r->nm_tokens, r->n_nm_tokens) < 0)
        return ag_errbuf_set(&am->err, AG_E_NOMEM, "allocate: no memory");
    /* the granted containers move into am->granted; the response keeps the
     * ones not moved (on failure), so that freeing it frees those */
    size_t moved = 0;
    int rc = 0;
    for (size_t i = 0; i < r->n_allocated_containers; i++) {
        Argot__Sched__V1__Container *c = r->allocated_containers[i];
        struct granted *g = ag_calloc(1, sizeof(*g));
        if (!g) {
            rc = ag_errbuf_set(&am->err, AG_E_NOMEM, "allocate: no memory");
            break;
        }
        moved++;
        ag_sched_container_id_str(c->id, g->id, sizeof(g->id));
        snprintf(g->node, sizeof(g->node), "%s:%d", c->node_id ? c->node_id->host : "",
                 c->node_id ? c->node_id->port : 0);
        g->c = c;
        r->allocated_containers[i] = NULL; /* moved */
        g->next = am->granted;
        am->granted = g;
        lower_totals(am, c);
        if (am->o.cb.allocated) {
            ag_container ac = {g->id, g->node, c->resource ? c->resource->memory_mb : 0,
                               c->resource ? c->resource->vcores : 0, c->priority,
                               c->allocation_request_id};
            am->o.cb.allocated(am->o.ud, am, &ac);
        }
    }
    if (moved)
        memmove(r->allocated_containers, r->allocated_containers + moved,
                (r->n_allocated_containers - moved) * sizeof(*r->allocated_containers));
    r->n_allocated_containers -= moved;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < r->n_completed_container_statuses; i++) {
        Argot__Sched__V1__ContainerStatus *s = r->completed_container_statuses[i];
        char id[96];
        ag_sched_container_id_str(s->container_id, id, sizeof(id));
        for (struct granted **pp = &am->granted; *pp; pp = &(*pp)->next)
            if (strcmp((*pp)->id, id) == 0) {
                struct granted *d = *pp;
                *pp = d->next;
                ag_rpc_msg_free(&d->c->base);
                ag_free(d);
                break;
            }
        if (am->o.cb.completed) {
            ag_container_status cs = {id, s->exit_status, s->diagnostics ? s->diagnostics : ""};
            am->o.cb.completed(am->o.ud, am, &cs);
        }
    }
    if (r->preempt && am->o.cb.preempted) {
        char id[96];
        if (r->preempt->strict_contract)
            for (size_t i = 0; i < r->preempt->strict_contract->n_container; i++)
                am->o.cb.preempted(am->o.ud, am,
                                   ag_sched_container_id_str(
                                       r->preempt->strict_contract->container[i]->id, id,
                                       sizeof(id)),
                                   true);
        if (r->preempt->contract)
            for (size_t i = 0; i < r->preempt->contract->n_container; i++)
                am->o.cb.preempted(am->o.ud, am,
                                   ag_sched_container_id_str(
                                       r->preempt->contract->container[i]->id, id, sizeof(id)),
                                   false);
    }
    if (r->am_command == ARGOT__SCHED__V1__AMCOMMAND__AM_SHUTDOWN && am->o.cb.shutdown)
        am->o.cb.shutdown(am->o.ud, am);
    return 0;
}

int ag_am_allocate(ag_am *am, float progress)
{
    if (am->slurm)
        return ag__slurm_am_allocate(am->slurm, progress);
    if (!am->registered)
        return ag_errbuf_set(&am->err, AG_E_STATE, "allocate: register first");
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = build_request(am, progress, &buf, &len);
    if (rc < 0)
        return ag_errbuf_set(&am->err, rc, "allocate: no memory");
    /* the asks and lists are now in flight: cleared once answered */
    int resyncs = 0;
    for (int attempt = 0;; attempt++) {
        ag_rpc_call *c = rm_call(am, &argot__sched__v1__application_master__allocate__method);
        if (!c) {
            ag_free(buf);
            return ag_errbuf_set(&am->err, AG_E_NOMEM, "allocate: no memory");
        }
        ProtobufCMessage *resp = NULL;
        int sr = ag_rpc_call_send(c, buf, len);
        if (sr == 0)
            sr = ag_rpc_call_close_send(c);
        if (sr == 0 &&
            ag_rpc_call_recv_msg(c, &argot__sched__v1__allocate_response__descriptor, &resp) != 1)
            resp = NULL;
        const char *message = NULL;
        int st = ag_rpc_call_status(c, &message);
        char msg[AG_ERRMSG_MAX];
        snprintf(msg, sizeof(msg), "%s", message ? message : "");
        ag_rpc_call_free(c);
        if (st == AG_RPC_OK && resp) {
            Argot__Sched__V1__AllocateResponse *r = (Argot__Sched__V1__AllocateResponse *)resp;
            bool resync = r->am_command == ARGOT__SCHED__V1__AMCOMMAND__AM_RESYNC;
            if (!resync) {
                for (ag__ask *a = am->asks; a; a = a->next)
                    a->changed = false;
                list_free(am->releases);
                am->releases = NULL;
                list_free(am->blacklist);
                am->blacklist = NULL;
                rc = handle_response(am, r);
                ag_rpc_msg_free(resp);
                ag_free(buf);
                return rc;
            }
            ag_rpc_msg_free(resp);
            st = AG_RPC_FAILED_PRECONDITION;
            snprintf(msg, sizeof(msg), "ApplicationMasterNotRegistered (AM_RESYNC)");
        }
        ag_rpc_msg_free(resp);
        if (st == AG_RPC_FAILED_PRECONDITION && strstr(msg, "ApplicationMasterNotRegistered") &&
            resyncs++ < 3) {
            /* invariant 3: register again and resend everything */
            AG_LOG(AG_LOG_INFO, "am", "resync rm=%s", am->rm_target);
            ag_free(buf);
            buf = NULL;
            rc = ag_am_register(am, am->host, am->port, am->tracking);
            if (rc < 0)
                return rc;
            mark_all_changed(am);
            rc = build_request(am, progress, &buf, &len);
            if (rc < 0)
                return ag_errbuf_set(&am->err, rc, "allocate: no memory");
            continue;
        }
        if ((st == AG_RPC_UNAVAILABLE || st == AG_RPC_DEADLINE_EXCEEDED) && attempt < 20) {
            /* invariant 1: the same bytes again (to the next RM, if there
             * are several: it answers NOT_REGISTERED and we resync) */
            if (!ag__rms_failed(&am->rms, am->last, st) || attempt >= (int)am->rms.n)
                ag_sleep_ms(attempt < 5 ? 100 : 500);
            continue;
        }
        ag_free(buf);
        return fail(am, st == AG_RPC_UNAVAILABLE ? AG_E_IO : AG_E_STATE, "allocate", st, msg);
    }
}

static struct granted *granted_find(ag_am *am, const char *id)
{
    for (struct granted *g = am->granted; g; g = g->next)
        if (strcmp(g->id, id) == 0)
            return g;
    return NULL;
}

int ag_am_start(ag_am *am, const char *container_id, const char *const *argv,
                const char *const *env)
{
    if (am->slurm)
        return ag__slurm_am_start(am->slurm, container_id, argv, env);
    struct granted *g = granted_find(am, container_id);
    if (!g)
        return ag_errbuf_set(&am->err, AG_E_NOENT, "start: no granted container %s",
                             container_id);
    if (!argv || !argv[0])
        return ag_errbuf_set(&am->err, AG_E_INVAL, "start: no command");
    ag_rpc_channel *ch = ag__chans_get(&am->nodes, g->node, 0, &am->tls);
    if (!ch)
        return ag_errbuf_set(&am->err, AG_E_NOMEM, "start: no memory");
    size_t argc = 0, envc = 0;
    while (argv[argc])
        argc++;
    while (env && env[envc])
        envc++;
    Argot__Sched__V1__ContainerLaunchContext ctx = ARGOT__SCHED__V1__CONTAINER_LAUNCH_CONTEXT__INIT;
    Argot__Sched__V1__ContainerLaunchContext__EnvironmentEntry *ents =
        ag_calloc(envc + 1, sizeof(*ents));
    Argot__Sched__V1__ContainerLaunchContext__EnvironmentEntry **ep =
        ag_calloc(envc + 1, sizeof(*ep));
    char *envcopy = NULL;
    size_t envbytes = 0;
    for (size_t i = 0; i < envc; i++)
        envbytes += strlen(env[i]) + 1;
    envcopy = ag_malloc(envbytes + 1);
    if (!ents || !ep || !envcopy) {
        ag_free(ents);
        ag_free(ep);
        ag_free(envcopy);
        return ag_errbuf_set(&am->err, AG_E_NOMEM, "start: no memory");
    }
    char *at = envcopy;
    size_t ne = 0;
    for (size_t i = 0; i < envc; i++) {
        size_t l = strlen(env[i]);
        memcpy(at, env[i], l + 1);
        char *eq = strchr(at, '=');
        if (eq) {
            *eq = 0;
            argot__sched__v1__container_launch_context__environment_entry__init(&ents[ne]);
            ents[ne].key = at;
            ents[ne].value = eq + 1;
            ep[ne] = &ents[ne];
            ne++;
        }
        at += l + 1;
    }
    ctx.n_command = argc;
    ctx.command = (char **)argv;
    ctx.n_environment = ne;
    ctx.environment = ep;
    Argot__Sched__V1__StartContainerRequest one = ARGOT__SCHED__V1__START_CONTAINER_REQUEST__INIT;
    one.container_launch_context = &ctx;
    one.container_token = g->c->container_token;
    Argot__Sched__V1__StartContainerRequest *onep = &one;
    Argot__Sched__V1__StartContainersRequest req = ARGOT__SCHED__V1__START_CONTAINERS_REQUEST__INIT;
    req.n_start_container_request = 1;
    req.start_container_request = &onep;
    ProtobufCMessage *m = NULL;
    char message[AG_ERRMSG_MAX];
    int st = ag__sched_unary(ch, &argot__sched__v1__container_management__start_containers__method,
                             &req.base, AG_SCHED_NM_TOKEN_KEY, nm_token_of(am, g->node),
                             am->o.call_timeout_ms, &m, message, sizeof(message));
    Argot__Sched__V1__StartContainersResponse *resp =
        (Argot__Sched__V1__StartContainersResponse *)m;
    int rc = 0;
    if (st != AG_RPC_OK)
        rc = ag_errbuf_set(&am->err, AG_E_IO, "start %s: node %s: %s: %s", container_id, g->node,
                           ag_rpc_status_name(st), message);
    else if (resp->n_failed_requests > 0)
        rc = ag_errbuf_set(&am->err, AG_E_PERM, "start %s: node %s refused it: %s",
                           container_id, g->node, resp->failed_requests[0]->exception);
    else
        g->started = true;
    ag_rpc_msg_free(m);
    ag_free(ents);
    ag_free(ep);
    ag_free(envcopy);
    return rc;
}

int ag_am_stop(ag_am *am, const char *container_id)
{
    if (am->slurm)
        return ag__slurm_am_stop(am->slurm, container_id);
    struct granted *g = granted_find(am, container_id);
    if (!g)
        return ag_errbuf_set(&am->err, AG_E_NOENT, "stop: no granted container %s",
                             container_id);
    ag_rpc_channel *ch = ag__chans_get(&am->nodes, g->node, 0, &am->tls);
    if (!ch)
        return ag_errbuf_set(&am->err, AG_E_NOMEM, "stop: no memory");
    Argot__Sched__V1__StopContainersRequest req = ARGOT__SCHED__V1__STOP_CONTAINERS_REQUEST__INIT;
    Argot__Sched__V1__ContainerId *idp = g->c->id;
    req.n_container_id = 1;
    req.container_id = &idp;
    ProtobufCMessage *m = NULL;
    char message[AG_ERRMSG_MAX];
    int st = ag__sched_unary(ch, &argot__sched__v1__container_management__stop_containers__method,
                             &req.base, AG_SCHED_NM_TOKEN_KEY, nm_token_of(am, g->node),
                             am->o.call_timeout_ms, &m, message, sizeof(message));
    Argot__Sched__V1__StopContainersResponse *resp = (Argot__Sched__V1__StopContainersResponse *)m;
    int rc = 0;
    if (st != AG_RPC_OK)
        rc = ag_errbuf_set(&am->err, AG_E_IO, "stop %s: node %s: %s: %s", container_id, g->node,
                           ag_rpc_status_name(st), message);
    else if (resp->n_failed_requests > 0)
        rc = ag_errbuf_set(&am->err, AG_E_PERM, "stop %s: node %s refused: %s", container_id,
                           g->node, resp->failed_requests[0]->exception);
    ag_rpc_msg_free(m);
    return rc;
}

int ag_am_finish(ag_am *am, ag_am_final final, const char *diagnostics)
{
    if (am->slurm)
        return ag__slurm_am_finish(am->slurm, final, diagnostics);
    Argot__Sched__V1__FinishApplicationMasterRequest req =
        ARGOT__SCHED__V1__FINISH_APPLICATION_MASTER_REQUEST__INIT;
    req.final_application_status = (Argot__Sched__V1__FinalApplicationStatus)final;
    req.diagnostics = (char *)(diagnostics ? diagnostics : "");
    req.tracking_url = am->tracking;
    char msg[AG_ERRMSG_MAX];
    bool resynced = false;
    for (int attempt = 0;; attempt++) {
        ProtobufCMessage *resp = NULL;
        int st = rm_unary(am,
                          &argot__sched__v1__application_master__finish_application_master__method,
                          &req.base, &resp, msg, sizeof(msg));
        ag_rpc_msg_free(resp);
        if (st == AG_RPC_OK)
            break;
        if ((st == AG_RPC_UNAVAILABLE || st == AG_RPC_DEADLINE_EXCEEDED) && attempt < 20) {
            /* the RM restarting: as allocate does */
            ag_sleep_ms(attempt < 5 ? 100 : 500);
            continue;
        }
        if (st == AG_RPC_FAILED_PRECONDITION && strstr(msg, "ApplicationMasterNotRegistered") &&
            !resynced) {
            /* a restarted RM waits for this attempt to register again */
            resynced = true;
            int rc = ag_am_register(am, am->host, am->port, am->tracking);
            if (rc < 0)
                return rc;
            continue;
        }
        return fail(am, st == AG_RPC_UNAVAILABLE ? AG_E_IO : AG_E_STATE, "finish", st, msg);
    }
    am->registered = false;
    return 0;
}

size_t ag_am_running(const ag_am *am)
{
    if (am->slurm)
        return ag__slurm_am_running(am->slurm);
    size_t n = 0;
    for (const struct granted *g = am->granted; g; g = g->next)
        n++;
    return n;
}

void ag_am_headroom(const ag_am *am, int64_t *memory_mb, int32_t *vcores, int32_t *nodes)
{
    if (am->slurm) {
        ag__slurm_am_headroom(am->slurm, memory_mb, vcores, nodes);
        return;
    }
    *memory_mb = am->head_mb;
    *vcores = am->head_vcores;
    *nodes = am->cluster_nodes;
}

/* ---- ids ------------------------------------------------------------------------ */

const char *ag_sched_format_app_id(int64_t ts, int32_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "application_%" PRId64 "_%04" PRId32, ts, id);
    return buf;
}

int ag_sched_parse_app_id(const char *s, int64_t *ts, int32_t *id)
{
    const char *p = s;
    if (strncmp(p, "application_", 12) != 0)
        return AG_E_INVAL;
    p += 12;
    char *end;
    if (*p < '0' || *p > '9')
        return AG_E_INVAL;
    long long t = strtoll(p, &end, 10);
    if (*end != '_' || t <= 0)
        return AG_E_INVAL;
    p = end + 1;
    if (*p < '0' || *p > '9')
        return AG_E_INVAL;
    long n = strtol(p, &end, 10);
    if (*end || n <= 0 || n > INT32_MAX)
        return AG_E_INVAL;
    *ts = (int64_t)t;
    *id = (int32_t)n;
    return 0;
}
