/*
 * The RM's etcd client (etcd.h). Calls are rpc's blocking ones; an
 * endpoint that cannot be reached is skipped for the rest of the call and
 * the next one starts from the endpoint that answered last.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "argot/rpc.h"
#include "etcd.h"
#include "etcd/v3/rpc.argot.h"

struct ag__etcd {
    char target[AG__ETCD_MAX_ENDPOINTS][256];
    ag_rpc_channel *ch[AG__ETCD_MAX_ENDPOINTS];
    size_t n;
    size_t cur; /* the endpoint that answered last */
    uint64_t timeout_ms;
    pthread_mutex_t mu; /* ch[], cur */
};

ag__etcd *ag__etcd_new(const char *const *endpoints, size_t n, uint64_t timeout_ms)
{
    if (n == 0 || n > AG__ETCD_MAX_ENDPOINTS)
        return NULL;
    ag__etcd *e = ag_calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *t = endpoints[i];
        if (strncmp(t, "http://", 7) == 0)
            t += 7;
        snprintf(e->target[i], sizeof(e->target[i]), "%s", t);
    }
    e->n = n;
    e->timeout_ms = timeout_ms ? timeout_ms : 2000;
    pthread_mutex_init(&e->mu, NULL);
    return e;
}

void ag__etcd_free(ag__etcd *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        ag_rpc_channel_free(e->ch[i]);
    pthread_mutex_destroy(&e->mu);
    ag_free(e);
}

/* The channel to endpoint i, made on first use. */
static ag_rpc_channel *chan(ag__etcd *e, size_t i)
{
    pthread_mutex_lock(&e->mu);
    if (!e->ch[i]) {
        ag_rpc_channel_opts o;
        ag_rpc_channel_opts_init(&o);
        o.connect_timeout_ms = e->timeout_ms;
        /* an etcd member that restarts is tried again soon: elections are
         * timed in seconds */
        o.backoff_initial_ms = 100;
        o.backoff_max_ms = 1000;
        o.max_recv_msg = 16u << 20;
        e->ch[i] = ag_rpc_channel_new(e->target[i], &o);
    }
    ag_rpc_channel *ch = e->ch[i];
    pthread_mutex_unlock(&e->mu);
    return ch;
}

/* Runs one unary call on each endpoint in turn from the last good one until
 * one answers; a refusal (any status but UNAVAILABLE and DEADLINE_EXCEEDED)
 * ends the call at once. */
static int call(ag__etcd *e, const char *what, const ag_rpc_method *m, const ProtobufCMessage *req, ProtobufCMessage **resp,
                char *err, size_t cap)
{
    size_t at = 0;
    err[0] = '\0';
    pthread_mutex_lock(&e->mu);
    size_t first = e->cur;
    pthread_mutex_unlock(&e->mu);
    for (size_t k = 0; k < e->n; k++) {
        size_t i = (first + k) % e->n;
        ag_rpc_channel *ch = chan(e, i);
        if (!ch) {
            snprintf(err, cap, "%s: out of memory", what);
            return -1;
        }
        char *msg = NULL;
        *resp = NULL;
        int st = ag_rpc_unary_msg(ch, m, req, ag_deadline_in_ms(e->timeout_ms), resp, &msg);
        if (st == AG_RPC_OK) {
            ag_free(msg);
            pthread_mutex_lock(&e->mu);
            e->cur = i;
            pthread_mutex_unlock(&e->mu);
            return 0;
        }
        if (at < cap)
            at += (size_t)snprintf(err + at, cap - at, "%s%s on %s: %s%s%s", k ? "; " : "", what,
                                   e->target[i], ag_rpc_status_name(st), msg && msg[0] ? ": " : "",
                                   msg && msg[0] ? msg : "");
        ag_free(msg);
        if (st != AG_RPC_UNAVAILABLE && st != AG_RPC_DEADLINE_EXCEEDED)
            return -1;
    }
    return -1;
}

int ag__etcd_txn(ag__etcd *e, const Etcdserverpb__TxnRequest *req,
                 Etcdserverpb__TxnResponse **resp, char *err, size_t cap)
{
    return call(e, "Txn", &etcdserverpb__kv__txn__method,
                &req->base, (ProtobufCMessage **)resp, err, cap);
}

int ag__etcd_range(ag__etcd *e, const void *key, size_t key_len, const void *end, size_t end_len,
                   int64_t limit, Etcdserverpb__RangeResponse **resp, char *err, size_t cap)
{
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key.data = (uint8_t *)key;
    req.key.len = key_len;
    req.range_end.data = (uint8_t *)end;
    req.range_end.len = end_len;
    req.limit = limit;
    return call(e, "Range", &etcdserverpb__kv__range__method, &req.base, (ProtobufCMessage **)resp, err, cap);
}

int ag__etcd_grant(ag__etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted, char *err,
                   size_t cap)
{
    Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    Etcdserverpb__LeaseGrantResponse *r = NULL;
    req.ttl = ttl_s;
    if (call(e, "LeaseGrant", &etcdserverpb__lease__lease_grant__method, &req.base, (ProtobufCMessage **)&r, err,
             cap) < 0)
        return -1;
    int rc = 0;
    if (r->error && r->error[0]) {
        snprintf(err, cap, "LeaseGrant: %s", r->error);
        rc = -1;
    }
    *id = r->id;
    *granted = r->ttl;
    ag_rpc_msg_free(&r->base);
    return rc;
}

/* LeaseKeepAlive is a stream: one request, one answer, then the stream is
 * closed (a renewal every few seconds does not need a stream kept open). */
int ag__etcd_keepalive(ag__etcd *e, int64_t id, int64_t *ttl_left, char *err, size_t cap)
{
    size_t at = 0;
    pthread_mutex_lock(&e->mu);
    size_t first = e->cur;
    pthread_mutex_unlock(&e->mu);
    err[0] = '\0';
    for (size_t k = 0; k < e->n; k++) {
        size_t i = (first + k) % e->n;
        ag_rpc_channel *ch = chan(e, i);
        ag_rpc_call *c =
            ch ? etcdserverpb__lease__lease_keep_alive__start(ch, ag_deadline_in_ms(e->timeout_ms))
               : NULL;
        if (!c) {
            snprintf(err, cap, "LeaseKeepAlive: out of memory");
            return -1;
        }
        Etcdserverpb__LeaseKeepAliveRequest req = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
        Etcdserverpb__LeaseKeepAliveResponse *r = NULL;
        req.id = id;
        int rc = etcdserverpb__lease__lease_keep_alive__send_request(c, &req, 0);
        if (rc == 0)
            rc = etcdserverpb__lease__lease_keep_alive__recv_response(c, &r);
        if (rc == 1) {
            *ttl_left = r->ttl;
            ag_rpc_msg_free(&r->base);
            ag_rpc_call_cancel(c); /* etcd keeps the stream open: we are done with it */
            ag_rpc_call_free(c);
            pthread_mutex_lock(&e->mu);
            e->cur = i;
            pthread_mutex_unlock(&e->mu);
            return 0;
        }
        const char *msg = NULL;
        ag_rpc_call_cancel(c);
        int st = ag_rpc_call_status(c, &msg);
        if (at < cap)
            at += (size_t)snprintf(err + at, cap - at, "%sLeaseKeepAlive on %s: %s%s%s",
                                   k ? "; " : "", e->target[i],
                                   st == AG_RPC_OK ? "ended without an answer"
                                                   : ag_rpc_status_name(st),
                                   msg && msg[0] ? ": " : "", msg && msg[0] ? msg : "");
        ag_rpc_call_free(c);
    }
    return -1;
}

int ag__etcd_revoke(ag__etcd *e, int64_t id, char *err, size_t cap)
{
    Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    Etcdserverpb__LeaseRevokeResponse *r = NULL;
    req.id = id;
    if (call(e, "LeaseRevoke", &etcdserverpb__lease__lease_revoke__method, &req.base, (ProtobufCMessage **)&r, err,
             cap) < 0)
        return -1;
    ag_rpc_msg_free(&r->base);
    return 0;
}

size_t ag__etcd_prefix_end(const char *prefix, size_t len, uint8_t *end)
{
    memcpy(end, prefix, len);
    while (len > 0 && end[len - 1] == 0xff)
        len--;
    if (len == 0) {
        end[0] = 0;
        return 1;
    }
    end[len - 1]++;
    return len;
}
