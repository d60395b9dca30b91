/*
 * The etcd namer: "/NAME[/...]" is bound to the keys under
 * keyPrefix/NAME/ in an etcd v3 cluster, each key's value one endpoint,
 * kept current through etcd's Watch stream (gRPC, proto/etcd/v3/rpc.proto).
 *
 *   namers:
 *     - {kind: etcd, prefix: /etcd, endpoints: ["127.0.0.1:2379"],
 *        keyPrefix: /argot/services, dialTimeoutMs: 1000}
 *
 * kind etcd (or io.l5d.etcd); prefix defaults to "/etcd"; endpoints (one or
 * more "host:port", "http://" allowed and ignored; no TLS yet) and
 * keyPrefix are required; dialTimeoutMs (default 1000) bounds a connection
 * attempt. A value is "host:port", "host:port weight", "host port" or
 * "host port weight" ("[v6]:port" or a bare v6 literal before a separate
 * port), with surrounding blanks and line endings ignored: what the static
 * and fs namers take.
 *
 * Binding states:
 *   keys under keyPrefix/NAME/, >= 1 good    -> BOUND with their endpoints
 *                                               (values that do not parse
 *                                               are skipped, logged and
 *                                               counted once per change,
 *                                               and shown as the error)
 *   no key under keyPrefix/NAME/              -> NEG "no keys under ..."
 *   keys, but no value parses                 -> stays BOUND with the last
 *                                               endpoints if it was, else
 *                                               FAILED with the first error
 *   etcd never read since the namer started,
 *   and an attempt failed                     -> FAILED "etcd unreachable: ..."
 *   etcd lost after it was read               -> as the last copy says; the
 *                                               state does not change, the
 *                                               error (JSON) says etcd is
 *                                               unreachable, and the stats'
 *                                               disconnected_since_ms is set
 *   a residual that is no name                -> NEG for good
 *
 * One copy of keyPrefix per namer. A worker thread (one per namer; the
 * rpc client blocks) reads everything under keyPrefix/ with one Range,
 * then opens one Watch from the Range's revision + 1 (so no change made
 * between the two is missed) and applies its events to the copy: a change
 * reaches the bindings as soon as etcd sends it. When the Range fails or
 * the stream breaks, the worker keeps the copy, reports the loss, waits
 * (100 ms, doubling to 5 s, back to 100 ms once etcd created a watch) and
 * starts again with the next endpoint: a new Range (which replaces the
 * copy) and a new Watch. A watch whose start revision etcd compacted away
 * is re-read at once. So every binding, whenever it was made, is computed
 * from the copy, and a binding made while etcd is down gets the last
 * known endpoints, or FAILED if the namer never read them.
 *
 * Threads. The worker never touches the bindings: it changes the copy
 * under ei->mu, notes which services changed (a hash of each name, up to
 * 64 between two passes; more, a Range or a change of connection: all)
 * and wakes the loop thread with ei->async; the loop thread (on_async)
 * recomputes those bindings from the copy (ag__bnd_set does nothing when
 * a binding did not change) and copies the counters into n->stats. Stop (from ag__namer_free): set
 * stopping, cancel the call under way, wake a sleeping worker; the worker returns at once, sets
 * done and sends the async a last time, and on_async then joins it (it has returned) and closes the
 * async handle, the namer's last (invariant 4 of namer_int.h: n->closing counts it from stop on).
 *
 * Invariants:
 *   1. ei->kvs is sorted by name (strcmp), names unique; only the worker
 *      writes it, always under ei->mu; the loop thread reads it under
 *      ei->mu.
 *   2. ei->call is the call the worker is blocked on (or about to be), set
 *      and cleared under ei->mu; stop cancels it under ei->mu, so it is
 *      never cancelled after it was freed.
 *   3. After done is set, the worker touches nothing but ei->async (one
 *      uv_async_send) before returning.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/rpc.h"
#include "etcd/v3/rpc.argot.h"
#include "etcd/v3/rpc.pb-c.h"
#include "namer_int.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* A Range may take this long beyond the dial timeout (a big keyPrefix). */
#define RANGE_EXTRA_MS 10000
/* Keys under keyPrefix kept; more is an error (the copy is not taken). */
#define KEYS_MAX 1000000
/* Longest value taken as an endpoint ("host:port weight"). */
#define VALUE_MAX 512
/* Responses: a Range of a big keyPrefix is one message. */
#define RECV_MAX (64u * 1024 * 1024)
/* Services whose keys changed, remembered between two passes of the loop
 * thread; more changed services: every binding is recomputed. */
#define DIRTY_MAX 64
/* Longest residual (namer.c's NAME_MAX_LEN). */
#define NAME_MAX_LEN 1024

typedef struct kv_ent {
    char *name;  /* the key without keyPrefix + "/": "users/10.0.0.1" */
    char *value; /* NUL-terminated copy of the value */
    size_t vlen; /* bytes of value (it may hold NULs: then it is bad) */
} kv_ent;

typedef struct etcd_impl {
    /* Set by init, read-only afterwards (both threads). */
    char **endpoints; /* "host:port" */
    size_t nendpoints;
    char *key_prefix; /* keyPrefix + "/": "/argot/services/" */
    size_t key_prefix_len;
    uint64_t dial_timeout_ms;

    uv_async_t async; /* data: the namer */
    bool async_init;
    uv_mutex_t mu;
    bool mu_init;
    uv_cond_t cv; /* wakes the worker's backoff sleep */
    bool cv_init;
    uv_thread_t thread;
    bool thread_started;

    /* Under mu. */
    bool stopping;     /* stop was called */
    bool done;         /* the worker is returning (invariant 3) */
    ag_rpc_call *call; /* invariant 2 */
    kv_ent *kvs;       /* invariant 1 */
    size_t nkvs;
    size_t cap;
    bool loaded;               /* kvs holds a Range's answer */
    bool connected;            /* the last Range succeeded and its stream has not broken */
    uint64_t lost_ms;          /* ag_now_ms() when etcd was lost (or the first attempt
                                * failed); 0 while connected and before any attempt ended */
    char error[512];           /* why the last attempt failed or the stream broke */
    bool dirty_all;            /* recompute every binding at the next pass */
    uint64_t dirty[DIRTY_MAX]; /* name_hash() of the services whose keys changed */
    size_t ndirty;
    uint64_t reloads; /* Ranges read and watch responses applied */
    uint64_t errors;  /* failed attempts and broken streams */

    /* Loop thread only. */
    uint64_t bad_values; /* bad values found (once per change of a binding's error) */
} etcd_impl;

typedef struct etcd_bind {
    char *name;    /* "users/" (NULL: the residual is no name) */
    size_t len;    /* strlen(name) */
    uint64_t hash; /* name_hash(name, len) */
    bool dirty;    /* recomputed by the on_async pass under way */
    char bad[256]; /* the last bad-value message logged ("" if none) */
} etcd_bind;

/* ------------------------------------------------------------------------ */
/* Values                                                                    */
/* ------------------------------------------------------------------------ */

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Splits "host:port" (or "[v6]:port") of len bytes into host and port. */
static int split_hostport(const char *s, size_t len, const char **h, size_t *hl, uint16_t *port,
                          const char **why)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close || close + 1 >= s + len || close[1] != ':') {
            *why = "want '[v6]:port'";
            return AG_E_INVAL;
        }
        *h = s + 1;
        *hl = (size_t)(close - *h);
        colon = close + 1;
        if (!memchr(*h, ':', *hl)) {
            *why = "brackets are for IPv6 addresses";
            return AG_E_INVAL;
        }
    } else {
        colon = memchr(s, ':', len);
        *h = s;
        *hl = colon ? (size_t)(colon - s) : len;
    }
    *port = colon ? ag__port_parse(colon + 1, (size_t)(s + len - colon - 1)) : 0;
    if (!*port) {
        *why = "bad port (want 1..65535)";
        return AG_E_INVAL;
    }
    return 0;
}

int ag__etcd_parse_value(const char *s, size_t len, ag__addr *a, const char **why)
{
    const char *tok[3];
    size_t tl[3];
    int nt = 0;
    memset(a, 0, sizeof(*a));
    if (len > VALUE_MAX || memchr(s, '\0', len)) {
        *why = len > VALUE_MAX ? "longer than 512 bytes" : "holds a NUL byte";
        return AG_E_INVAL;
    }
    for (size_t i = 0; i < len;) {
        if (blank(s[i])) {
            i++;
            continue;
        }
        if (nt == 3) {
            *why = "too many fields (want 'host:port [weight]' or 'host port [weight]')";
            return AG_E_INVAL;
        }
        tok[nt] = s + i;
        while (i < len && !blank(s[i]))
            i++;
        tl[nt] = (size_t)(s + i - tok[nt]);
        nt++;
    }
    if (nt == 0) {
        *why = "empty (want 'host:port [weight]' or 'host port [weight]')";
        return AG_E_INVAL;
    }
    /* "host:port [weight]" when the first field is bracketed or has one
     * colon; else "host port [weight]" (the host may be a bare v6). */
    const char *c1 = memchr(tok[0], ':', tl[0]);
    bool joined =
        tok[0][0] == '[' || (c1 && !memchr(c1 + 1, ':', tl[0] - (size_t)(c1 - tok[0]) - 1));
    const char *h = tok[0];
    size_t hl = tl[0];
    int wi;
    if (joined) {
        if (nt > 2) {
            *why = "too many fields (want 'host:port [weight]')";
            return AG_E_INVAL;
        }
        if (split_hostport(tok[0], tl[0], &h, &hl, &a->port, why) < 0)
            return AG_E_INVAL;
        wi = 1;
    } else {
        if (nt < 2) {
            *why = "no port (want 'host:port [weight]' or 'host port [weight]')";
            return AG_E_INVAL;
        }
        a->port = ag__port_parse(tok[1], tl[1]);
        if (!a->port) {
            *why = "bad port (want 1..65535)";
            return AG_E_INVAL;
        }
        wi = 2;
    }
    if (!ag__host_valid(h, hl)) {
        *why = "bad host";
        return AG_E_INVAL;
    }
    a->weight = nt > wi ? ag__weight_parse(tok[wi], tl[wi]) : 1;
    if (a->weight <= 0) {
        *why = "bad weight (want a decimal number > 0)";
        return AG_E_INVAL;
    }
    a->host = ag_strndup(h, hl);
    return a->host ? 0 : AG_E_NOMEM;
}

/* ------------------------------------------------------------------------ */
/* The copy of keyPrefix (worker writes, under mu)                           */
/* ------------------------------------------------------------------------ */

/* FNV-1a of a service's name with its slash ("users/"): to remember which
 * services changed without allocating (a collision costs one recompute). */
static uint64_t name_hash(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211u;
    }
    return h;
}

/* Remembers that the keys of the service of name ("users/a": "users/")
 * changed (under mu). A key with no slash belongs to no binding. */
static void mark_dirty(etcd_impl *ei, const char *name)
{
    const char *slash = strchr(name, '/');
    if (!slash || ei->dirty_all)
        return;
    uint64_t h = name_hash(name, (size_t)(slash - name) + 1);
    for (size_t i = 0; i < ei->ndirty; i++) {
        if (ei->dirty[i] == h)
            return;
    }
    if (ei->ndirty == DIRTY_MAX)
        ei->dirty_all = true;
    else
        ei->dirty[ei->ndirty++] = h;
}

static void kvs_free(kv_ent *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ag_free(v[i].name);
        ag_free(v[i].value);
    }
    ag_free(v);
}

/* The index of the first entry whose name is >= name (len bytes, not
 * NUL-terminated): where name would go, and with a prefix "users/", the
 * first entry that starts with it if any does. */
static size_t kvs_lower(const kv_ent *v, size_t n, const char *name, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        size_t ml = strlen(v[mid].name);
        int c = memcmp(v[mid].name, name, AG_MIN(ml, len));
        if (c == 0)
            c = (ml > len) - (ml < len);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Fills e from a KeyValue under keyPrefix; false if the key is not under
 * it or holds a NUL (skipped: no binding can name it). AG_E_NOMEM. */
static int ent_make(const etcd_impl *ei, const Etcdserverpb__KeyValue *kv, kv_ent *e, bool *ok)
{
    *ok = false;
    if (kv->key.len <= ei->key_prefix_len ||
        memcmp(kv->key.data, ei->key_prefix, ei->key_prefix_len) != 0 ||
        memchr(kv->key.data, '\0', kv->key.len))
        return 0;
    e->name = ag_strndup((const char *)kv->key.data + ei->key_prefix_len,
                         kv->key.len - ei->key_prefix_len);
    e->value = ag_malloc(kv->value.len + 1);
    if (!e->name || !e->value) {
        ag_free(e->name);
        ag_free(e->value);
        return AG_E_NOMEM;
    }
    if (kv->value.len)
        memcpy(e->value, kv->value.data, kv->value.len);
    e->value[kv->value.len] = '\0';
    e->vlen = kv->value.len;
    *ok = true;
    return 0;
}

static int ent_cmp_q(const void *x, const void *y)
{
    const kv_ent *a = x, *b = y;
    return strcmp(a->name, b->name);
}

/* A sorted copy of a Range's answer into *out / *n. 0, AG_E_NOMEM or
 * AG_E_TOO_LARGE. */
static int kvs_from_range(const etcd_impl *ei, const Etcdserverpb__RangeResponse *r, kv_ent **out,
                          size_t *n)
{
    *out = NULL;
    *n = 0;
    if (r->n_kvs > KEYS_MAX)
        return AG_E_TOO_LARGE;
    if (r->n_kvs == 0)
        return 0;
    kv_ent *v = ag_calloc(r->n_kvs, sizeof(*v));
    if (!v)
        return AG_E_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < r->n_kvs; i++) {
        bool ok;
        if (ent_make(ei, r->kvs[i], &v[k], &ok) < 0) {
            kvs_free(v, k);
            return AG_E_NOMEM;
        }
        k += ok;
    }
    qsort(v, k, sizeof(*v), ent_cmp_q);
    *out = v;
    *n = k;
    return 0;
}

/* Applies one event to the copy (under mu). 0, AG_E_NOMEM, AG_E_TOO_LARGE
 * (the copy is then unchanged). */
static int kvs_apply(etcd_impl *ei, const Etcdserverpb__Event *ev)
{
    if (!ev->kv)
        return 0;
    kv_ent e = {0};
    bool ok;
    if (ent_make(ei, ev->kv, &e, &ok) < 0)
        return AG_E_NOMEM;
    if (!ok)
        return 0;
    size_t len = strlen(e.name);
    size_t i = kvs_lower(ei->kvs, ei->nkvs, e.name, len);
    bool found = i < ei->nkvs && strcmp(ei->kvs[i].name, e.name) == 0;
    mark_dirty(ei, e.name);
    if (ev->type == ETCDSERVERPB__EVENT__EVENT_TYPE__DELETE) {
        if (found) {
            ag_free(ei->kvs[i].name);
            ag_free(ei->kvs[i].value);
            memmove(&ei->kvs[i], &ei->kvs[i + 1], (ei->nkvs - i - 1) * sizeof(*ei->kvs));
            ei->nkvs--;
        }
        ag_free(e.name);
        ag_free(e.value);
        return 0;
    }
    if (found) {
        ag_free(e.name);
        ag_free(ei->kvs[i].value);
        ei->kvs[i].value = e.value;
        ei->kvs[i].vlen = e.vlen;
        return 0;
    }
    int rc = 0;
    if (ei->nkvs == KEYS_MAX)
        rc = AG_E_TOO_LARGE;
    if (rc == 0 && ei->nkvs == ei->cap) {
        size_t cap = ei->cap ? ei->cap * 2 : 16;
        kv_ent *v = ag_reallocarray(ei->kvs, cap, sizeof(*v));
        if (v) {
            ei->kvs = v;
            ei->cap = cap;
        } else {
            rc = AG_E_NOMEM;
        }
    }
    if (rc < 0) {
        ag_free(e.name);
        ag_free(e.value);
        return rc;
    }
    memmove(&ei->kvs[i + 1], &ei->kvs[i], (ei->nkvs - i) * sizeof(*ei->kvs));
    ei->kvs[i] = e;
    ei->nkvs++;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The worker thread                                                         */
/* ------------------------------------------------------------------------ */

typedef enum sess_end {
    SESS_FAILED, /* etcd unreachable or the stream broke: back off, try the next */
    SESS_RESYNC, /* the watch's revision was compacted: read again at once */
    SESS_STOP,   /* the namer is stopping */
} sess_end;

/* Registers c as the call stop cancels (invariant 2); false if the namer
 * is stopping (c is then freed). */
static bool call_enter(etcd_impl *ei, ag_rpc_call *c)
{
    uv_mutex_lock(&ei->mu);
    bool stopping = ei->stopping;
    if (!stopping)
        ei->call = c;
    uv_mutex_unlock(&ei->mu);
    if (stopping)
        ag_rpc_call_free(c);
    return !stopping;
}

static void call_leave(etcd_impl *ei, ag_rpc_call *c)
{
    uv_mutex_lock(&ei->mu);
    ei->call = NULL;
    uv_mutex_unlock(&ei->mu);
    ag_rpc_call_free(c);
}

static bool is_stopping(etcd_impl *ei)
{
    uv_mutex_lock(&ei->mu);
    bool s = ei->stopping;
    uv_mutex_unlock(&ei->mu);
    return s;
}

/* The message of a call that did not give what was wanted: its status,
 * e.g. "Range on 127.0.0.1:2379: UNAVAILABLE: cannot connect to
 * 127.0.0.1:2379: connection refused". Cancels c first, so that a call
 * still under way ends ("CANCELLED") instead of blocking. */
static void call_error(ag_rpc_call *c, const char *what, const char *target, char *err, size_t cap)
{
    const char *msg = NULL;
    ag_rpc_call_cancel(c);
    int st = ag_rpc_call_status(c, &msg);
    snprintf(err, cap, "%s on %s: %s%s%s", what, target,
             st == AG_RPC_OK ? "ended without an answer" : ag_rpc_status_name(st),
             msg && msg[0] ? ": " : "", msg && msg[0] ? msg : "");
}

/* [key, range_end) of every key starting with the namer's key prefix:
 * the prefix with its last byte below 0xff incremented (the trailing 0xff
 * bytes dropped); "\0" (every key >= key) if all are 0xff. end has
 * key_prefix_len + 1 bytes. */
static size_t prefix_end(const etcd_impl *ei, uint8_t *end)
{
    size_t n = ei->key_prefix_len;
    memcpy(end, ei->key_prefix, n);
    while (n > 0 && end[n - 1] == 0xff)
        n--;
    if (n == 0) {
        end[0] = 0;
        return 1;
    }
    end[n - 1]++;
    return n;
}

/* Publishes a Range's answer: the new copy, connected. */
static void publish_range(etcd_impl *ei, kv_ent *v, size_t n)
{
    uv_mutex_lock(&ei->mu);
    kvs_free(ei->kvs, ei->nkvs);
    ei->kvs = v;
    ei->nkvs = ei->cap = n;
    ei->loaded = true;
    ei->connected = true;
    ei->lost_ms = 0;
    ei->error[0] = '\0';
    ei->dirty_all = true;
    ei->reloads++;
    uv_mutex_unlock(&ei->mu);
    uv_async_send(&ei->async);
}

/* Reads everything under the key prefix from target into the copy; *rev
 * gets the revision read at. 0, or -1 with err set (or stopping). */
static int do_range(etcd_impl *ei, ag_rpc_channel *ch, const char *target, int64_t *rev, char *err,
                    size_t cap)
{
    uint8_t *end = ag_malloc(ei->key_prefix_len + 1);
    ag_rpc_call *c = end ? etcdserverpb__kv__range__start(
                               ch, ag_deadline_in_ms(ei->dial_timeout_ms + RANGE_EXTRA_MS))
                         : NULL;
    if (!c) {
        ag_free(end);
        snprintf(err, cap, "Range on %s: out of memory", target);
        return -1;
    }
    if (!call_enter(ei, c)) {
        ag_free(end);
        return -1;
    }
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key.data = (uint8_t *)ei->key_prefix;
    req.key.len = ei->key_prefix_len;
    req.range_end.data = end;
    req.range_end.len = prefix_end(ei, end);
    Etcdserverpb__RangeResponse *resp = NULL;
    int rc = etcdserverpb__kv__range__send_request(c, &req, 0);
    if (rc == 0)
        rc = ag_rpc_call_close_send(c);
    if (rc == 0)
        rc = etcdserverpb__kv__range__recv_response(c, &resp);
    ag_free(end);
    if (rc != 1) {
        call_error(c, "Range", target, err, cap);
        call_leave(ei, c);
        return -1;
    }
    const char *msg = NULL;
    int st = ag_rpc_call_status(c, &msg); /* the trailers follow the answer */
    if (st != AG_RPC_OK) {
        snprintf(err, cap, "Range on %s: %s%s%s", target, ag_rpc_status_name(st),
                 msg && msg[0] ? ": " : "", msg && msg[0] ? msg : "");
        ag_rpc_msg_free(&resp->base);
        call_leave(ei, c);
        return -1;
    }
    call_leave(ei, c);
    kv_ent *v = NULL;
    size_t n = 0;
    rc = kvs_from_range(ei, resp, &v, &n);
    *rev = resp->header ? resp->header->revision : 0;
    ag_rpc_msg_free(&resp->base);
    if (rc < 0) {
        snprintf(err, cap, "Range on %s: %s", target,
                 rc == AG_E_TOO_LARGE ? "more than 1000000 keys under keyPrefix" : "out of memory");
        return -1;
    }
    publish_range(ei, v, n);
    AG_LOG(AG_LOG_INFO, "mesh", "namer_etcd_read target=%s prefix=%s keys=%zu revision=%" PRId64,
           target, ei->key_prefix, n, *rev);
    return 0;
}

/* Applies one watch response's events to the copy. 0 or -1 with err. */
static int apply_events(etcd_impl *ei, const Etcdserverpb__WatchResponse *r, const char *target,
                        char *err, size_t cap)
{
    int rc = 0;
    uv_mutex_lock(&ei->mu);
    for (size_t i = 0; i < r->n_events && rc == 0; i++)
        rc = kvs_apply(ei, r->events[i]);
    ei->reloads++;
    uv_mutex_unlock(&ei->mu);
    uv_async_send(&ei->async);
    if (rc < 0)
        snprintf(err, cap, "Watch on %s: %s", target,
                 rc == AG_E_TOO_LARGE ? "more than 1000000 keys under keyPrefix" : "out of memory");
    return rc < 0 ? -1 : 0;
}

/* Watches the key prefix from revision from on, applying events, until
 * the stream ends; *up is set once etcd created the watch. */
static sess_end do_watch(etcd_impl *ei, ag_rpc_channel *ch, const char *target, int64_t from,
                         bool *up, char *err, size_t cap)
{
    uint8_t *end = ag_malloc(ei->key_prefix_len + 1);
    ag_rpc_call *c = end ? etcdserverpb__watch__watch__start(ch, ag_deadline_never()) : NULL;
    if (!c) {
        ag_free(end);
        snprintf(err, cap, "Watch on %s: out of memory", target);
        return SESS_FAILED;
    }
    if (!call_enter(ei, c)) {
        ag_free(end);
        return SESS_STOP;
    }
    Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    cr.key.data = (uint8_t *)ei->key_prefix;
    cr.key.len = ei->key_prefix_len;
    cr.range_end.data = end;
    cr.range_end.len = prefix_end(ei, end);
    cr.start_revision = from;
    Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
    req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    req.create_request = &cr;
    /* "hasleader: true" (etcd's WithRequireLeader): a member cut off from
     * its cluster's leader ends the stream instead of going silent, so the
     * next endpoint is tried. The send side stays open: etcd ends the
     * stream when it closes. */
    int rc = ag_rpc_call_add_metadata(c, "hasleader", "true", 4);
    if (rc == 0)
        rc = etcdserverpb__watch__watch__send_request(c, &req, 0);
    ag_free(end);
    sess_end how = SESS_FAILED;
    err[0] = '\0';
    while (rc == 0) {
        Etcdserverpb__WatchResponse *r = NULL;
        if (etcdserverpb__watch__watch__recv_response(c, &r) != 1)
            break; /* the stream ended or broke: the status says why */
        if (r->created && !r->canceled)
            *up = true;
        if (r->compact_revision > 0) {
            AG_LOG(AG_LOG_WARN, "mesh",
                   "namer_etcd_compacted target=%s from=%" PRId64 " compacted=%" PRId64, target,
                   from, r->compact_revision);
            how = SESS_RESYNC;
            rc = 1;
        } else if (r->canceled) {
            snprintf(err, cap, "Watch on %s: cancelled by etcd%s%s", target,
                     r->cancel_reason && r->cancel_reason[0] ? ": " : "",
                     r->cancel_reason ? r->cancel_reason : "");
            rc = 1;
        } else if (r->n_events > 0) {
            rc = apply_events(ei, r, target, err, cap);
        }
        ag_rpc_msg_free(&r->base);
    }
    if (is_stopping(ei))
        how = SESS_STOP;
    else if (how == SESS_FAILED && !err[0])
        call_error(c, "Watch", target, err, cap);
    call_leave(ei, c);
    return how;
}

/* One connection to target: Range, then Watch until it breaks. *up is
 * set once the watch was created (etcd said so). */
static sess_end session(etcd_impl *ei, const char *target, bool *up, char *err, size_t cap)
{
    ag_rpc_channel_opts o;
    ag_rpc_channel_opts_init(&o);
    o.connect_timeout_ms = ei->dial_timeout_ms;
    o.max_recv_msg = RECV_MAX;
    /* etcd allows a ping every 5 s with a stream open: a silent partition
     * is seen within keepalive_time + keepalive_timeout. */
    o.keepalive_time_ms = 30000;
    o.keepalive_timeout_ms = 10000;
    *up = false;
    err[0] = '\0';
    ag_rpc_channel *ch = ag_rpc_channel_new(target, &o);
    if (!ch) {
        snprintf(err, cap, "%s: cannot make a channel (out of memory?)", target);
        return SESS_FAILED;
    }
    int64_t rev = 0;
    sess_end how = SESS_FAILED;
    if (do_range(ei, ch, target, &rev, err, cap) == 0) {
        how = do_watch(ei, ch, target, rev + 1, up, err, cap);
    } else if (is_stopping(ei)) {
        how = SESS_STOP;
    }
    ag_rpc_channel_free(ch);
    return how;
}

/* Records that etcd is unreachable (err says why) and tells the loop. */
static void report_lost(etcd_impl *ei, const char *err, bool was_connected)
{
    uv_mutex_lock(&ei->mu);
    ei->connected = false;
    if (ei->lost_ms == 0)
        ei->lost_ms = ag_now_ms();
    snprintf(ei->error, sizeof(ei->error), "%s", err);
    ei->dirty_all = true;
    ei->errors++;
    uv_mutex_unlock(&ei->mu);
    if (was_connected)
        AG_LOG(AG_LOG_WARN, "mesh", "namer_etcd_lost prefix=%s error=\"%s\"", ei->key_prefix, err);
    else
        AG_LOG(AG_LOG_DEBUG, "mesh", "namer_etcd_retry prefix=%s error=\"%s\"", ei->key_prefix,
               err);
    uv_async_send(&ei->async);
}

/* Sleeps ms unless stop comes first; true if stopping. */
static bool backoff_wait(etcd_impl *ei, uint64_t ms)
{
    uint64_t end = ag_now_ns() + ms * 1000000u;
    uv_mutex_lock(&ei->mu);
    while (!ei->stopping) {
        uint64_t now = ag_now_ns();
        if (now >= end)
            break;
        (void)uv_cond_timedwait(&ei->cv, &ei->mu, end - now);
    }
    bool s = ei->stopping;
    uv_mutex_unlock(&ei->mu);
    return s;
}

static void worker(void *arg)
{
    etcd_impl *ei = arg;
    char err[sizeof(ei->error)];
    uint64_t backoff = BACKOFF_MIN_MS;
    size_t ep = 0;
    bool was_connected = true; /* so that the first failure is logged */
    for (;;) {
        bool up = false;
        sess_end how = session(ei, ei->endpoints[ep], &up, err, sizeof(err));
        if (how == SESS_STOP || is_stopping(ei))
            break;
        if (up) /* not for a Range whose watch fails at once: that would spin */
            backoff = BACKOFF_MIN_MS;
        if (how == SESS_RESYNC)
            continue;
        report_lost(ei, err, was_connected || up);
        was_connected = false;
        ep = (ep + 1) % ei->nendpoints;
        if (backoff_wait(ei, backoff))
            break;
        backoff = AG_MIN(backoff * 2, (uint64_t)BACKOFF_MAX_MS);
    }
    uv_mutex_lock(&ei->mu);
    ei->done = true;
    uv_mutex_unlock(&ei->mu);
    uv_async_send(&ei->async); /* the last touch (invariant 3) */
}

/* ------------------------------------------------------------------------ */
/* Bindings (loop thread)                                                    */
/* ------------------------------------------------------------------------ */

typedef struct resolved {
    ag__bind_state st; /* PENDING: leave the binding as it is */
    ag__addr *addrs;
    size_t n;
    char why[640];
    char error[1280]; /* for ag__bnd_set_error ("" : none) */
    char bad[256];    /* the first bad value's message ("" : none) */
} resolved;

/* The endpoints of eb's keys in the copy, under mu. 0 or AG_E_NOMEM. */
static int collect(etcd_impl *ei, const etcd_bind *eb, resolved *r, size_t *nkeys)
{
    size_t i = kvs_lower(ei->kvs, ei->nkvs, eb->name, eb->len);
    size_t end = i;
    while (end < ei->nkvs && strncmp(ei->kvs[end].name, eb->name, eb->len) == 0)
        end++;
    *nkeys = end - i;
    if (end == i)
        return 0;
    size_t want = AG_MIN(end - i, (size_t)AG__NAMER_ADDRS_MAX);
    r->addrs = ag_calloc(want, sizeof(*r->addrs));
    if (!r->addrs)
        return AG_E_NOMEM;
    for (; i < end; i++) {
        const kv_ent *e = &ei->kvs[i];
        const char *why = NULL;
        ag__addr a;
        int rc = AG_E_TOO_LARGE;
        if (r->n < want)
            rc = ag__etcd_parse_value(e->value, e->vlen, &a, &why);
        if (rc == AG_E_NOMEM)
            return rc;
        if (rc == 0) {
            r->addrs[r->n++] = a;
        } else if (!r->bad[0]) {
            snprintf(r->bad, sizeof(r->bad), "%s%.100s: %s", ei->key_prefix, e->name,
                     why ? why : "more than 10000 endpoints");
        }
    }
    return 0;
}

/* What b should be now (under mu). 0 or AG_E_NOMEM. */
static int compute(etcd_impl *ei, ag__bnd *b, resolved *r)
{
    etcd_bind *eb = b->impl;
    r->st = AG__BIND_PENDING;
    if (!ei->loaded) {
        if (ei->lost_ms) {
            r->st = AG__BIND_FAILED;
            snprintf(r->why, sizeof(r->why), "etcd unreachable: %s", ei->error);
        }
        return 0;
    }
    size_t nkeys = 0;
    int rc = collect(ei, eb, r, &nkeys);
    if (rc < 0)
        return rc;
    if (nkeys == 0) {
        r->st = AG__BIND_NEG;
        snprintf(r->why, sizeof(r->why), "no keys under %s%.*s", ei->key_prefix,
                 (int)AG_MIN(eb->len, (size_t)400), eb->name);
    } else if (r->n > 0) {
        r->st = AG__BIND_BOUND;
    } else if (b->pub.state != AG__BIND_BOUND) {
        r->st = AG__BIND_FAILED;
        snprintf(r->why, sizeof(r->why), "%s", r->bad);
    }
    size_t len = 0;
    if (!ei->connected)
        len = (size_t)snprintf(r->error, sizeof(r->error),
                               "etcd unreachable: %s; keeping the last known keys", ei->error);
    if (r->bad[0] && len < sizeof(r->error))
        snprintf(r->error + len, sizeof(r->error) - len, "%s%s", len ? "; " : "", r->bad);
    return 0;
}

/* Recomputes b from the copy and moves it there. 0 or AG_E_NOMEM. The last
 * thing it does is ag__bnd_set, whose watchers may release b or free the
 * namer. */
static int resolve(ag__namer *n, ag__bnd *b)
{
    etcd_impl *ei = n->impl;
    etcd_bind *eb = b->impl;
    if (!eb->name)
        return 0;
    resolved *r = ag_calloc(1, sizeof(*r));
    if (!r)
        return AG_E_NOMEM;
    uv_mutex_lock(&ei->mu);
    int rc = compute(ei, b, r);
    uv_mutex_unlock(&ei->mu);
    if (rc == 0 && strcmp(r->bad, eb->bad) != 0) {
        if (r->bad[0]) {
            ei->bad_values++;
            n->stats.errors++;
            AG_LOG(AG_LOG_WARN, "mesh", "namer_etcd_bad_value id=%s error=\"%s\"", b->pub.id,
                   r->bad);
        }
        snprintf(eb->bad, sizeof(eb->bad), "%s", r->bad);
    }
    if (rc == 0)
        ag__bnd_set_error(b, r->error[0] ? r->error : NULL);
    if (rc == 0 && r->st != AG__BIND_PENDING) {
        ag__addr *a = r->addrs;
        size_t na = r->n;
        r->addrs = NULL;
        rc = ag__bnd_set(b, r->st, a, na, r->why[0] ? r->why : NULL);
    }
    ag__addrs_free(r->addrs, r->n);
    ag_free(r);
    return rc;
}

/* What the worker changed since the last pass: which services (all, or
 * the hashes in dirty), taken under mu with the counters for n->stats. */
typedef struct changes {
    bool all;
    uint64_t dirty[DIRTY_MAX];
    size_t ndirty;
} changes;

static void take_changes(ag__namer *n, changes *ch)
{
    etcd_impl *ei = n->impl;
    uv_mutex_lock(&ei->mu);
    n->stats.reloads = ei->reloads;
    n->stats.errors = ei->errors + ei->bad_values;
    n->stats.disconnected_since_ms = ei->lost_ms;
    ch->all = ei->dirty_all;
    ch->ndirty = ei->ndirty;
    memcpy(ch->dirty, ei->dirty, ei->ndirty * sizeof(*ei->dirty));
    ei->dirty_all = false;
    ei->ndirty = 0;
    uv_mutex_unlock(&ei->mu);
}

static bool changed(const changes *ch, const etcd_bind *eb)
{
    if (ch->all)
        return true;
    for (size_t i = 0; i < ch->ndirty; i++) {
        if (ch->dirty[i] == eb->hash)
            return true;
    }
    return false;
}

/* The worker changed the copy or its connection, or returned. Recomputes
 * the bindings of the services that changed (every binding after a Range
 * or a change of connection), as fs's on_debounce does: a watcher may
 * unbind others or free the namer, so the list is searched afresh after
 * each. */
static void on_async(uv_async_t *h)
{
    ag__namer *n = h->data;
    etcd_impl *ei = n->impl;
    uv_mutex_lock(&ei->mu);
    bool done = ei->done;
    uv_mutex_unlock(&ei->mu);
    if (done) {
        /* Only after stop: the worker has returned or is about to. */
        uv_thread_join(&ei->thread);
        ei->thread_started = false;
        uv_close((uv_handle_t *)&ei->async, ag__namer_close_cb);
        return;
    }
    if (n->freed)
        return;
    changes ch;
    take_changes(n, &ch);
    for (ag__bnd *b = n->bindings; b; b = b->next) {
        etcd_bind *eb = b->impl;
        eb->dirty = eb->name && changed(&ch, eb);
    }
    while (!n->freed) {
        ag__bnd *b = n->bindings;
        while (b && !((etcd_bind *)b->impl)->dirty)
            b = b->next;
        if (!b)
            break;
        ((etcd_bind *)b->impl)->dirty = false;
        if (resolve(n, b) < 0)
            AG_LOG(AG_LOG_ERROR, "mesh", "namer_etcd_error id=%s error=\"out of memory\"",
                   b->pub.id);
    }
}

/* ------------------------------------------------------------------------ */
/* The kind's hooks                                                          */
/* ------------------------------------------------------------------------ */

/* An endpoint of the config: "host:port", "http://host:port" (the scheme
 * dropped). AG_E_INVAL with *why, AG_E_NOMEM. */
static int endpoint_read(const char *s, char **out, const char **why)
{
    if (strncmp(s, "https://", 8) == 0) {
        *why = "TLS to etcd is not supported yet (want 'host:port' or 'http://host:port')";
        return AG_E_INVAL;
    }
    if (strncmp(s, "http://", 7) == 0)
        s += 7;
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '/')
        len--;
    const char *h;
    size_t hl;
    uint16_t port;
    if (len == 0 || split_hostport(s, len, &h, &hl, &port, why) < 0 || !ag__host_valid(h, hl)) {
        *why = "want 'host:port' ('[v6]:port' for IPv6)";
        return AG_E_INVAL;
    }
    *out = ag_strndup(s, len);
    return *out ? 0 : AG_E_NOMEM;
}

static int read_endpoints(etcd_impl *ei, ag_config *c, const ag_cnode *node)
{
    const ag_cnode *seq = NULL;
    int rc = ag_config_get_seq(c, node, "endpoints", AG_REQUIRED, &seq);
    if (rc < 0)
        return rc;
    size_t n = ag_cnode_len(seq);
    if (n == 0 || n > 64)
        return ag_config_errorf(c, seq, AG_E_CONFIG_VALUE,
                                "endpoints: give 1 to 64 etcd addresses \"host:port\"");
    ei->endpoints = ag_calloc(n, sizeof(*ei->endpoints));
    if (!ei->endpoints)
        return AG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const ag_cnode *it = ag_cnode_item(seq, i);
        const char *s = ag_cnode_scalar(it), *why = "must be a string \"host:port\"";
        rc = AG_E_INVAL;
        if (ag_cnode_type_of(it) == AG_CNODE_SCALAR && strlen(s) == ag_cnode_scalar_len(it))
            rc = endpoint_read(s, &ei->endpoints[i], &why);
        if (rc == AG_E_INVAL)
            return ag_config_errorf(c, it, AG_E_CONFIG_VALUE, "bad etcd endpoint '%s': %s",
                                    s ? s : "", why);
        if (rc < 0)
            return rc;
        ei->nendpoints = i + 1;
    }
    return 0;
}

static int read_key_prefix(etcd_impl *ei, ag_config *c, const ag_cnode *node)
{
    const char *kp = NULL;
    int rc = ag_config_get_str(c, node, "keyPrefix", AG_REQUIRED, &kp);
    if (rc < 0)
        return rc;
    size_t len = strlen(kp);
    if (len == 0 || len > NAME_MAX_LEN)
        return ag_config_errorf(c, ag_cnode_get(node, "keyPrefix"), AG_E_CONFIG_VALUE,
                                "keyPrefix must be a key prefix such as '/argot/services'");
    bool slash = kp[len - 1] == '/';
    ei->key_prefix = ag_malloc(len + 2);
    if (!ei->key_prefix)
        return AG_E_NOMEM;
    memcpy(ei->key_prefix, kp, len);
    if (!slash)
        ei->key_prefix[len++] = '/';
    ei->key_prefix[len] = '\0';
    ei->key_prefix_len = len;
    return 0;
}

int ag__namer_etcd_init(ag__namer *n, ag_config *c, const ag_cnode *node)
{
    etcd_impl *ei = ag_calloc(1, sizeof(*ei));
    if (!ei)
        return AG_E_NOMEM;
    n->impl = ei;
    int64_t dial = 1000;
    int rc = ag_config_get_i64(c, node, "dialTimeoutMs", AG_OPTIONAL, 1, 600000, &dial);
    if (rc == 0)
        rc = read_key_prefix(ei, c, node);
    if (rc == 0)
        rc = read_endpoints(ei, c, node);
    if (rc < 0)
        return rc;
    ei->dial_timeout_ms = (uint64_t)dial;
    if (uv_mutex_init(&ei->mu) < 0)
        return ag_config_errorf(c, node, AG_E_SYS, "etcd namer: cannot make a mutex");
    ei->mu_init = true;
    if (uv_cond_init(&ei->cv) < 0)
        return ag_config_errorf(c, node, AG_E_SYS, "etcd namer: cannot make a condition");
    ei->cv_init = true;
    rc = uv_async_init(n->loop, &ei->async, on_async);
    if (rc < 0)
        return ag_config_errorf(c, node, AG_E_SYS, "etcd namer: %s", uv_strerror(rc));
    ei->async.data = n;
    ei->async_init = true;
    rc = uv_thread_create(&ei->thread, worker, ei);
    if (rc < 0)
        return ag_config_errorf(c, node, AG_E_SYS, "etcd namer: cannot start its thread: %s",
                                uv_strerror(rc));
    ei->thread_started = true;
    return 0;
}

static int etcd_bind_init(ag__namer *n, ag__bnd *b)
{
    etcd_bind *eb = ag_calloc(1, sizeof(*eb));
    if (!eb)
        return AG_E_NOMEM;
    b->impl = eb;
    ag_slice seg;
    int ns = ag__path_segments(b->residual, &seg, 1);
    if (ns < 1)
        return ag__bnd_set(b, AG__BIND_NEG, NULL, 0, "not a service name (want /NAME)");
    eb->name = ag_malloc(seg.len + 2);
    if (!eb->name)
        return AG_E_NOMEM;
    memcpy(eb->name, seg.ptr, seg.len);
    eb->name[seg.len] = '/';
    eb->name[seg.len + 1] = '\0';
    eb->len = seg.len + 1;
    eb->hash = name_hash(eb->name, eb->len);
    return resolve(n, b);
}

static void etcd_bind_release(ag__namer *n, ag__bnd *b)
{
    (void)n;
    etcd_bind *eb = b->impl;
    if (eb)
        ag_free(eb->name);
    ag_free(eb);
    b->impl = NULL;
}

static void etcd_stop(ag__namer *n)
{
    etcd_impl *ei = n->impl;
    if (!ei || !ei->async_init)
        return;
    n->closing++; /* the async handle: closed here, or by on_async once the worker is done */
    if (!ei->thread_started) {
        uv_close((uv_handle_t *)&ei->async, ag__namer_close_cb);
        return;
    }
    uv_mutex_lock(&ei->mu);
    ei->stopping = true;
    if (ei->call)
        ag_rpc_call_cancel(ei->call);
    uv_cond_signal(&ei->cv);
    uv_mutex_unlock(&ei->mu);
}

static void etcd_destroy(ag__namer *n)
{
    etcd_impl *ei = n->impl;
    if (!ei)
        return;
    assert(!ei->thread_started);
    kvs_free(ei->kvs, ei->nkvs);
    for (size_t i = 0; i < ei->nendpoints; i++)
        ag_free(ei->endpoints[i]);
    ag_free(ei->endpoints);
    ag_free(ei->key_prefix);
    if (ei->cv_init)
        uv_cond_destroy(&ei->cv);
    if (ei->mu_init)
        uv_mutex_destroy(&ei->mu);
    ag_free(ei);
    n->impl = NULL;
}

const ag__namer_ops ag__namer_etcd_ops = {
    .kind = "etcd",
    .bind_init = etcd_bind_init,
    .bind_release = etcd_bind_release,
    .stop = etcd_stop,
    .destroy = etcd_destroy,
};
