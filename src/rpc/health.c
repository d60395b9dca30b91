/*
 * The gRPC health service, grpc.health.v1.Health (grpc's
 * doc/health-checking.md), on the handler table protoc-gen-argot generates
 * from Debian's grpc/health/v1/health.proto.
 *
 * State: a list of (service, status) and a list of open Watch calls, both
 * under `mu`. Threads:
 *   - Check runs on its call's handler thread: a lookup under mu.
 *   - Watch runs on its handler thread: under mu it joins the watch list
 *     and sends the current status; then it blocks in
 *     ag_rpc_call_wait_done until the call is over (the client cancelled,
 *     the server stops), and leaves the list under mu before returning, so
 *     the call outlives every send made to it.
 *   - ag_rpc_health_set / _shutdown run on the application's thread: under
 *     mu they update the status and send it on every watch of that service
 *     whose last sent status differs. Sending under mu keeps each watch's
 *     updates in order; a send only queues (it blocks only past 4 MiB of
 *     unsent messages on that call, some two million updates).
 * Invariants: (1) a watch is in the list only while its handler runs;
 * (2) after shutdown, every status is NOT_SERVING and stays so.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "argot/rpc.h"
#include "grpc/health/v1/health.argot.h"

struct entry {
    struct entry *next;
    int status;
    char service[];
};

struct watch {
    struct watch *next;
    ag_rpc_call *c;
    const char *service;  /* the request's, valid while the handler runs */
    int last;             /* the last status sent */
};

struct ag_rpc_health {
    pthread_mutex_t mu;
    struct entry *entries;   /* under mu */
    struct watch *watches;   /* under mu */
    bool shut;               /* under mu */
    Grpc__Health__V1__Health_Handlers handlers; /* ud: this */
};

static struct entry *find(ag_rpc_health *h, const char *service)
{
    for (struct entry *e = h->entries; e; e = e->next)
        if (strcmp(e->service, service) == 0)
            return e;
    return NULL;
}

static int send_status(ag_rpc_call *c, int status)
{
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    return grpc__health__v1__health__check__send_response(c, &r, 0);
}

static int h_check(ag_rpc_call *c, const Grpc__Health__V1__HealthCheckRequest *req, void *ud)
{
    ag_rpc_health *h = ud;
    pthread_mutex_lock(&h->mu);
    struct entry *e = find(h, req->service);
    int status = e ? e->status : -1;
    pthread_mutex_unlock(&h->mu);
    if (status < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "unknown service '%.256s'", req->service);
        ag_rpc_call_set_status_message(c, msg);
        return AG_RPC_NOT_FOUND;
    }
    if (send_status(c, status) < 0)
        return AG_RPC_CANCELLED;
    return AG_RPC_OK;
}

static int h_watch(ag_rpc_call *c, const Grpc__Health__V1__HealthCheckRequest *req, void *ud)
{
    ag_rpc_health *h = ud;
    struct watch w = {.c = c, .service = req->service};
    pthread_mutex_lock(&h->mu);
    struct entry *e = find(h, req->service);
    w.last = e ? e->status : AG_RPC_HEALTH_SERVICE_UNKNOWN;
    send_status(c, w.last);
    w.next = h->watches;
    h->watches = &w;
    pthread_mutex_unlock(&h->mu);

    ag_rpc_call_wait_done(c, ag_deadline_never());

    pthread_mutex_lock(&h->mu);
    for (struct watch **p = &h->watches; *p; p = &(*p)->next) {
        if (*p == &w) {
            *p = w.next;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    /* the client cancelled or the server is stopping: the status is moot */
    return AG_RPC_OK;
}

/* Under mu: records status and tells service's watchers. */
static int set_locked(ag_rpc_health *h, const char *service, int status)
{
    struct entry *e = find(h, service);
    if (!e) {
        size_t n = strlen(service) + 1;
        e = ag_malloc(sizeof(*e) + n);
        if (!e)
            return AG_E_NOMEM;
        memcpy(e->service, service, n);
        e->next = h->entries;
        h->entries = e;
    }
    e->status = status;
    for (struct watch *w = h->watches; w; w = w->next) {
        if (w->last != status && strcmp(w->service, service) == 0) {
            send_status(w->c, status); /* fails only once the call is over */
            w->last = status;
        }
    }
    return 0;
}

ag_rpc_health *ag_rpc_health_new(void)
{
    ag_rpc_health *h = ag_calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    pthread_mutex_init(&h->mu, NULL);
    h->handlers.check = h_check;
    h->handlers.watch = h_watch;
    h->handlers.ud = h;
    if (set_locked(h, "", AG_RPC_HEALTH_SERVING) < 0) {
        pthread_mutex_destroy(&h->mu);
        ag_free(h);
        return NULL;
    }
    return h;
}

int ag_rpc_health_register(ag_rpc_server *s, ag_rpc_health *h)
{
    return grpc__health__v1__health__register(s, &h->handlers);
}

int ag_rpc_health_set(ag_rpc_health *h, const char *service, int status)
{
    if (status != AG_RPC_HEALTH_SERVING && status != AG_RPC_HEALTH_NOT_SERVING)
        return AG_E_INVAL;
    pthread_mutex_lock(&h->mu);
    int rc = h->shut ? 0 : set_locked(h, service ? service : "", status);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

void ag_rpc_health_shutdown(ag_rpc_health *h)
{
    pthread_mutex_lock(&h->mu);
    h->shut = true;
    for (struct entry *e = h->entries; e; e = e->next)
        set_locked(h, e->service, AG_RPC_HEALTH_NOT_SERVING); /* existing: no allocation */
    pthread_mutex_unlock(&h->mu);
}

void ag_rpc_health_free(ag_rpc_health *h)
{
    if (!h)
        return;
    assert(!h->watches); /* the server, and with it every Watch, is gone */
    while (h->entries) {
        struct entry *e = h->entries;
        h->entries = e->next;
        ag_free(e);
    }
    pthread_mutex_destroy(&h->mu);
    ag_free(h);
}
