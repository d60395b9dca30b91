/*
 * The HTTP/2 proxy (gRPC included): nghttp2 on both sides, a server
 * session per downstream connection and a client session per upstream
 * connection, joined stream to stream.
 *
 * A proxied stream (struct xs) begins with a request's headers from
 * downstream. Once they are whole, the router names and binds the request
 * (router.c), the cluster's balancer picks an endpoint, and the request
 * goes out on a connection to it (one HTTP/2 connection per endpoint,
 * more when its streams are all taken). From there bytes flow both ways
 * without ever holding a whole stream:
 *
 *   flow control end to end: neither session returns window by itself
 *   (no_auto_window_update); bytes received on one side are buffered in
 *   the stream and returned to their sender's window (nghttp2_session_
 *   consume) only when the other side's data provider has sent them. So a
 *   stream holds at most one window of bytes per direction (the router's
 *   streamWindowBytes), and a slow reader slows its writer.
 *   trailers (gRPC's status) pass through: the data provider ends the DATA
 *   without END_STREAM and the trailers follow.
 *   resets pass both ways (RST_STREAM CANCEL); a connection lost fails its
 *   streams.
 *
 * Retries: until the first byte of the response goes downstream, a failed
 * attempt that is safe to repeat goes to another endpoint, under the
 * router's retry budget: a refused stream (RST_STREAM REFUSED_STREAM, or
 * past a GOAWAY's last stream), a connection that could not be made, a
 * gRPC response that is UNAVAILABLE (trailers-only), a 5xx on an
 * idempotent method -- as the service's response classifier says. The
 * request's bytes sent so far are kept for this (up to REPLAY_MAX; past
 * that the request is no longer retried).
 *
 * Deadlines: a gRPC request's grpc-timeout, capped by the route's
 * totalTimeoutMs, becomes the stream's deadline; each attempt sends the
 * time left as grpc-timeout. When it passes, the upstream stream is reset
 * and the client gets DEADLINE_EXCEEDED (or 504), or a reset if the
 * response had begun.
 *
 * Errors made here: no route -> UNIMPLEMENTED / 404; nothing to send to ->
 * UNAVAILABLE / 503; upstream failure -> UNAVAILABLE / 502; a header block
 * over the limit -> 431. gRPC requests (content-type application/grpc*)
 * get them as trailers-only responses with grpc-message.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../rpc/wire.h"
#include "internal.h"

#define REPLAY_MAX (64u << 10)
#define CONN_WINDOW (4u << 20)
#define MAX_HEADERS 256
/* A request whose binding is pending waits up to 2 s for it. */
#define BIND_WAIT_MS 20
#define BIND_WAIT_TRIES 100

/* ---- types -------------------------------------------------------------------- */

typedef struct hdr_list {
    nghttp2_nv *v;
    size_t n, cap;
    size_t bytes;       /* as HTTP/2 counts them: name + value + 32 each */
} hdr_list;

struct dconn;
struct uconn;


typedef struct xs {
    struct dconn *dc;
    int32_t dsid;
    struct uconn *uc;        /* the attempt's connection (NULL: none now) */
    int32_t usid;
    struct xs *dnext, *dprev;  /* in dc's streams */
    struct xs *unext, *uprev;  /* in uc's streams (or its waiting list) */
    bool waiting;            /* queued on uc until it connects */
    mesh_route route;
    bool routed;
    ag__ep *ep;              /* picked (counted outstanding); NULL once done */
    mesh_epc *epc;           /* its connections (a reference) */
    char ep_label[80];       /* the last endpoint tried, for metrics and logs */
    /* request */
    hdr_list req;
    const char *method, *path, *authority, *ctype;
    bool grpc;
    bool req_end;            /* downstream ended its side */
    hdr_list req_trailers;
    ag_buf req_body;         /* from downstream, not yet sent upstream */
    size_t req_paid;         /* bytes at its front already returned to the client's window
                              * (replayed by a retry) */
    ag_buf replay;           /* sent upstream this attempt, for a retry */
    bool replayable;
    bool req_deferred;       /* the upstream provider waits for bytes */
    /* response */
    hdr_list resp;
    int status;
    bool resp_begun;         /* response headers went downstream */
    bool resp_end;
    hdr_list resp_trailers;
    ag_buf resp_body;
    size_t resp_unpaid;      /* bytes of it not yet returned to the endpoint's window */
    bool resp_deferred;
    int grpc_status;         /* -1 unknown */
    bool local;              /* the response is made here */
    ag_arena *ar;            /* the stream's headers */
    /* control */
    uint64_t start_ns, attempt_ns;
    uint64_t deadline_ms;    /* loop ms; 0: none */
    uv_timer_t *timer;       /* waiting for a binding, then the deadline */
    unsigned bind_waits;
    unsigned attempts;
    bool up_done;            /* the attempt's outcome was given to the balancer */
    bool down_closed;
    bool recorded;
    bool too_large;
    bool override_bad;
} xs;

struct dconn {
    xport x;
    mesh_router *rt;
    nghttp2_session *ng;
    xs *streams;
    struct dconn *next, *prev;
    bool goaway;
    bool dead;               /* its session is being freed */
};

struct uconn {
    xport x;
    mesh_epc *epc;
    nghttp2_session *ng;
    bool up;
    bool dead;               /* no new streams (GOAWAY, closing) */
    bool https;
    unsigned nstreams;
    xs *streams;             /* submitted */
    xs *waiting;             /* before the connection is up */
    struct uconn *next;
    struct ag_mesh *m;       /* for the metrics when it closes (its router may be gone) */
    char rt_label[64], ep_label[80];
};

static void xs_dispatch(xs *s);
static void xs_fail(xs *s, int grpc_code, int http_status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void uconn_submit(struct uconn *u, xs *s);
static void xs_maybe_free(xs *s);
static void pay_down(xs *s);
static void route_step(xs *s);
struct dconn;
static void d_idle_check(struct dconn *d);


/* ---- headers --------------------------------------------------------------------- */

/* Headers live in the stream's arena (one block for most requests): the
 * list's array grows by moving to a larger one there. */
static int hdr_add(hdr_list *l, ag_arena *ar, const uint8_t *k, size_t kl, const uint8_t *v,
                   size_t vl)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        if (cap > MAX_HEADERS + 16)
            return AG_E_TOO_LARGE;
        nghttp2_nv *nv = ag_arena_alloc(ar, cap * sizeof(*nv));
        if (!nv)
            return AG_E_NOMEM;
        if (l->n)
            memcpy(nv, l->v, l->n * sizeof(*nv));
        l->v = nv;
        l->cap = cap;
    }
    uint8_t *p = ag_arena_alloc(ar, kl + vl + 2);
    if (!p)
        return AG_E_NOMEM;
    memcpy(p, k, kl);
    p[kl] = 0;
    memcpy(p + kl + 1, v, vl);
    p[kl + 1 + vl] = 0;
    l->v[l->n++] = (nghttp2_nv){p, p + kl + 1, kl, vl, NGHTTP2_NV_FLAG_NONE};
    l->bytes += kl + vl + 32;
    return 0;
}

/* Forgets the list (its memory stays in the arena until the stream ends). */
static void hdr_clear(hdr_list *l)
{
    memset(l, 0, sizeof(*l));
}

static const char *hdr_get(const hdr_list *l, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].namelen == n && memcmp(l->v[i].name, name, n) == 0)
            return (const char *)l->v[i].value;
    return NULL;
}

static bool hop_by_hop(const nghttp2_nv *h)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade", "l5d-dtab", NULL};
    for (size_t i = 0; names[i]; i++)
        if (h->namelen == strlen(names[i]) && memcmp(h->name, names[i], h->namelen) == 0)
            return true;
    if (h->namelen == 2 && memcmp(h->name, "te", 2) == 0)
        return !(h->valuelen == 8 && memcmp(h->value, "trailers", 8) == 0);
    return false;
}

/* ---- sessions' plumbing ------------------------------------------------------------- */

static int produce(nghttp2_session *ng, ag_buf *out)
{
    for (;;) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(ng, &p);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (ag_buf_append(out, p, (size_t)n) < 0)
            return -1;
        if (out->len >= (256u << 10))
            return 0;
    }
}

static uint64_t loop_ms(const xs *s);

static mesh_router *xs_router(const xs *s)
{
    return s->dc->rt;
}

static void dmark(struct dconn *d)
{
    if (d)
        xport_mark(&d->x);
}

static void umark(struct uconn *u)
{
    if (u)
        xport_mark(&u->x);
}

/* ---- recording ------------------------------------------------------------------------ */

static bool grpc_failure(int code)
{
    /* server-side trouble: UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE, DATA_LOSS */
    return code == 2 || code == 4 || code == 13 || code == 14 || code == 15;
}

static void xs_record(xs *s, bool success)
{
    if (s->recorded)
        return;
    s->recorded = true;
    double ms = (double)(ag_now_ns() - s->start_ns) / 1e6;
    int st = s->grpc && s->grpc_status >= 0 ? s->grpc_status : s->status;
    mesh_record(xs_router(s), s->routed ? s->route.name : "", s->routed ? s->route.cl : NULL,
                s->ep_label, ms, success, s->method ? s->method : "-", s->path ? s->path : "-",
                st);
}

/* The balancer hears how the attempt went, once. */
static void xs_attempt_done(xs *s, ag__outcome o)
{
    if (s->up_done || !s->ep)
        return;
    snprintf(s->ep_label, sizeof(s->ep_label), strchr(s->ep->addr.host, ':') ? "[%s]:%u" : "%s:%u",
             s->ep->addr.host, s->ep->addr.port);
    s->up_done = true;
    double ms = (double)(ag_now_ns() - s->attempt_ns) / 1e6;
    ag__lb_done(s->route.cl->lb, s->ep, ms, o);
    s->route.cl->requests++;
    if (o == AG__OUT_SUCCESS)
        s->route.cl->successes++;
    else if (o == AG__OUT_FAILURE)
        s->route.cl->failures++;
    if (o != AG__OUT_IGNORED)
        lat_add(&s->route.cl->lat, ms);
    s->ep = NULL;
}



/* ---- the downstream side's response -------------------------------------------------- */

static ssize_t resp_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)sid;
    (void)ud;
    xs *s = src->ptr;
    size_t n = AG_MIN(len, s->resp_body.len);
    if (n > 0) {
        memcpy(buf, s->resp_body.data, n);
        ag_buf_consume(&s->resp_body, n);
        size_t pay = AG_MIN(n, s->resp_unpaid);
        if (pay > 0 && s->uc && s->usid > 0) {
            nghttp2_session_consume(s->uc->ng, s->usid, pay);
            s->resp_unpaid -= pay;
            umark(s->uc);
        }
    }
    if (s->resp_body.len == 0 && s->resp_end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->resp_trailers.n > 0) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_submit_trailer(s->dc->ng, s->dsid, s->resp_trailers.v, s->resp_trailers.n);
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        s->resp_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static void resp_resume(xs *s)
{
    if (s->resp_deferred && !s->down_closed) {
        s->resp_deferred = false;
        nghttp2_session_resume_data(s->dc->ng, s->dsid);
    }
    dmark(s->dc);
}

/* Sends the response headers downstream (with a data provider unless the
 * response ends with them). */
static void resp_begin(xs *s, const hdr_list *h, bool end)
{
    s->resp_begun = true;
    nghttp2_nv nv[MAX_HEADERS + 8];
    size_t n = 0;
    for (size_t i = 0; i < h->n && n < AG_ARRAY_LEN(nv); i++)
        if (!hop_by_hop(&h->v[i]))
            nv[n++] = h->v[i];
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = resp_read};
    if (nghttp2_submit_response(s->dc->ng, s->dsid, nv, n, end ? NULL : &prd) != 0)
        nghttp2_submit_rst_stream(s->dc->ng, NGHTTP2_FLAG_NONE, s->dsid, NGHTTP2_INTERNAL_ERROR);
    dmark(s->dc);
}

/* A response made here: gRPC trailers-only, or a short text body. */
static void xs_fail(xs *s, int grpc_code, int http_status, const char *fmt, ...)
{
    char msg[512], code[16], clen[24];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->down_closed)
        return;
    pay_down(s);   /* the request goes nowhere now */
    if (s->resp_begun) {
        nghttp2_submit_rst_stream(s->dc->ng, NGHTTP2_FLAG_NONE, s->dsid, NGHTTP2_INTERNAL_ERROR);
        dmark(s->dc);
        return;
    }
    s->local = true;
    hdr_list h = {0};
    int rc;
    if (s->grpc) {
        s->grpc_status = grpc_code;
        s->status = 200;
        snprintf(code, sizeof(code), "%d", grpc_code);
        ag_buf enc;
        ag_buf_init(&enc, 4 * sizeof(msg));
        rc = ag__grpc_message_encode(&enc, msg, strlen(msg));
        if (rc == 0)
            rc = hdr_add(&h, s->ar, (const uint8_t *)":status", 7, (const uint8_t *)"200", 3);
        if (rc == 0)
            rc = hdr_add(&h, s->ar, (const uint8_t *)"content-type", 12,
                         (const uint8_t *)"application/grpc", 16);
        if (rc == 0)
            rc = hdr_add(&h, s->ar, (const uint8_t *)"grpc-status", 11, (const uint8_t *)code,
                         strlen(code));
        if (rc == 0)
            rc = hdr_add(&h, s->ar, (const uint8_t *)"grpc-message", 12, enc.data, enc.len);
        ag_buf_cleanup(&enc);
        s->resp_end = true;
        if (rc == 0)
            resp_begin(s, &h, true);
    } else {
        s->status = http_status;
        ag_buf_reset(&s->resp_body);
        rc = ag_buf_printf(&s->resp_body, "%s\n", msg);
        snprintf(code, sizeof(code), "%d", http_status);
        snprintf(clen, sizeof(clen), "%zu", s->resp_body.len);
        if (rc == 0)
            rc = hdr_add(&h, s->ar, (const uint8_t *)":status", 7, (const uint8_t *)code,
                         strlen(code));
        if (rc == 0)
            rc = hdr_add(&h, s->ar, (const uint8_t *)"content-type", 12,
                         (const uint8_t *)"text/plain; charset=utf-8", 25);
        if (rc == 0)
            rc = hdr_add(&h, s->ar, (const uint8_t *)"content-length", 14, (const uint8_t *)clen,
                         strlen(clen));
        if (rc == 0 && http_status == 503)
            rc = hdr_add(&h, s->ar, (const uint8_t *)"l5d-err", 7,
                         (const uint8_t *)"unavailable", 11);
        s->resp_end = true;
        if (rc == 0)
            resp_begin(s, &h, false);
    }
    if (rc < 0)
        nghttp2_submit_rst_stream(s->dc->ng, NGHTTP2_FLAG_NONE, s->dsid, NGHTTP2_INTERNAL_ERROR);
    hdr_clear(&h);
    AG_LOG(AG_LOG_DEBUG, "mesh", "local_response router=%s status=%d grpc=%d why=\"%s\"",
           xs_router(s)->rc->label, s->status, s->grpc ? s->grpc_status : -1, msg);
    dmark(s->dc);
}

/* ---- the upstream side ---------------------------------------------------------------- */

static ssize_t req_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)sid;
    (void)ud;
    xs *s = src->ptr;
    size_t n = AG_MIN(len, s->req_body.len);
    if (n > 0) {
        memcpy(buf, s->req_body.data, n);
        if (s->replayable) {
            if (s->replay.len + n <= REPLAY_MAX && ag_buf_append(&s->replay, buf, n) == 0) {
            } else {
                s->replayable = false;
                ag_buf_cleanup(&s->replay);
                ag_buf_init(&s->replay, REPLAY_MAX);
            }
        }
        ag_buf_consume(&s->req_body, n);
        size_t k = AG_MIN(n, s->req_paid);
        s->req_paid -= k;
        if (n > k && !s->down_closed) {
            nghttp2_session_consume(s->dc->ng, s->dsid, n - k);
            dmark(s->dc);
        }
    }
    if (s->req_body.len == 0 && s->req_end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->req_trailers.n > 0) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_submit_trailer(s->uc->ng, s->usid, s->req_trailers.v, s->req_trailers.n);
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        s->req_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static void req_resume(xs *s)
{
    if (s->uc && s->usid > 0 && s->req_deferred) {
        s->req_deferred = false;
        nghttp2_session_resume_data(s->uc->ng, s->usid);
        umark(s->uc);
    }
}

static void ulist_remove(xs *s)
{
    struct uconn *u = s->uc;
    if (!u)
        return;
    if (s->uprev)
        s->uprev->unext = s->unext;
    else if (s->waiting)
        u->waiting = s->unext;
    else
        u->streams = s->unext;
    if (s->unext)
        s->unext->uprev = s->uprev;
    s->unext = s->uprev = NULL;
    if (!s->waiting && u->nstreams > 0)
        u->nstreams--;
    s->waiting = false;
    s->uc = NULL;
    s->usid = 0;
}

static void ulist_add(struct uconn *u, xs *s, bool waiting)
{
    s->uc = u;
    s->waiting = waiting;
    xs **head = waiting ? &u->waiting : &u->streams;
    s->uprev = NULL;
    s->unext = *head;
    if (*head)
        (*head)->uprev = s;
    *head = s;
    if (!waiting)
        u->nstreams++;
}

/* Bytes that will never be forwarded still hold their sender's window:
 * give it back (nghttp2 returns the connection's part even when the
 * stream is gone). The endpoint's, for response bytes not yet sent
 * downstream, once the upstream stream is over (u is its connection)... */
static void pay_up(xs *s, nghttp2_session *ung, int32_t sid)
{
    if (s->resp_unpaid > 0 && ung) {
        nghttp2_session_consume(ung, sid, s->resp_unpaid);
        s->resp_unpaid = 0;
    }
}

/* ... and the client's, for request bytes the endpoint will not get. */
static void pay_down(xs *s)
{
    size_t unpaid = s->req_body.len > s->req_paid ? s->req_body.len - s->req_paid : 0;
    if (unpaid > 0 && !s->down_closed && !s->dc->dead) {
        nghttp2_session_consume(s->dc->ng, s->dsid, unpaid);
        dmark(s->dc);
    }
    ag_buf_reset(&s->req_body);
    s->req_paid = 0;
}

/* Detaches the stream from its upstream attempt: RST CANCEL if the stream
 * is still open there. */
static void xs_detach(xs *s, bool reset)
{
    struct uconn *u = s->uc;
    if (!u)
        return;
    int32_t sid = s->usid;
    ulist_remove(s);
    if (sid > 0) {
        pay_up(s, u->ng, sid);
        nghttp2_session_set_stream_user_data(u->ng, sid, NULL);
        if (reset) {
            nghttp2_submit_rst_stream(u->ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
            umark(u);
        }
    }
    s->req_deferred = false;
}

/* May this attempt's failure be retried? safe: the upstream surely did not
 * act on it (refused, never sent) or the classifier says so. */
static bool xs_retry(xs *s, bool safe, const char *why)
{
    mesh_router *rt = xs_router(s);
    if (s->resp_begun || s->down_closed || !s->replayable || !s->routed)
        return false;
    if (!safe)
        return false;
    if (s->attempts >= s->route.sc->max_attempts)
        return false;
    if (s->deadline_ms && loop_ms(s) >= s->deadline_ms)
        return false;
    if (!ag__budget_withdraw(&rt->budget, ag_now_ms())) {
        rt->budget_exhausted++;
        ag_metric_add(rt->m->mt.budget_exhausted, 1, rt->rc->label);
        return false;
    }
    rt->retries++;
    ag_metric_add(rt->m->mt.retries, 1, rt->rc->label, s->route.name);
    AG_LOG(AG_LOG_DEBUG, "mesh", "retry router=%s name=%s attempt=%u why=\"%s\"",
           rt->rc->label, s->route.name, s->attempts + 1, why);
    /* the bytes sent go again, before what has not been sent yet */
    if (s->replay.len > 0) {
        ag_buf all;
        ag_buf_init(&all, s->req_body.max);
        if (ag_buf_append(&all, s->replay.data, s->replay.len) < 0 ||
            ag_buf_append(&all, s->req_body.data, s->req_body.len) < 0) {
            ag_buf_cleanup(&all);
            return false;
        }
        s->req_paid += s->replay.len;
        ag_buf_cleanup(&s->req_body);
        s->req_body = all;
        ag_buf_reset(&s->replay);
    }
    hdr_clear(&s->resp);
    hdr_clear(&s->resp_trailers);
    ag_buf_reset(&s->resp_body);
    s->resp_end = false;
    s->status = 0;
    s->grpc_status = -1;
    xs_dispatch(s);
    return true;
}

/* The attempt on s failed before the response began (or during it). */
static void xs_upstream_failed(xs *s, bool safe, const char *why)
{
    xs_attempt_done(s, AG__OUT_FAILURE);
    xs_detach(s, false);
    if (xs_retry(s, safe, why))
        return;
    pay_down(s);
    if (!s->resp_begun) {
        xs_fail(s, 14, 502, "%s: %s", s->routed ? s->route.name : "upstream", why);
    } else if (!s->down_closed) {
        nghttp2_submit_rst_stream(s->dc->ng, NGHTTP2_FLAG_NONE, s->dsid, NGHTTP2_INTERNAL_ERROR);
        dmark(s->dc);
    }
    xs_record(s, false);
}

/* Whether a 5xx (or gRPC UNAVAILABLE) answer may be retried. */
static bool classifier_retryable(const xs *s, int status, int grpc)
{
    return mesh_retryable(s->route.sc, s->method, s->grpc ? grpc : -1, status);
}

/* ---- upstream session callbacks ------------------------------------------------------ */

static int u_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *k, size_t kl,
                       const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    xs *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!s || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    hdr_list *l = f->headers.cat == NGHTTP2_HCAT_HEADERS && s->resp.n > 0 ? &s->resp_trailers
                                                                          : &s->resp;
    if (hdr_add(l, s->ar, k, kl, v, vl) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static void u_response_headers(xs *s, bool end)
{
    const char *st = hdr_get(&s->resp, ":status");
    s->status = st ? atoi(st) : 0;
    if (s->status >= 100 && s->status < 200) {
        hdr_clear(&s->resp);   /* informational: wait for the final one */
        return;
    }
    const char *gs = end ? hdr_get(&s->resp, "grpc-status") : NULL;
    if (gs)
        s->grpc_status = atoi(gs);
    if (classifier_retryable(s, s->status, s->grpc_status) && (end || !s->grpc)) {
        char why[64];
        snprintf(why, sizeof(why), s->grpc_status >= 0 ? "grpc-status %d" : "status %d",
                 s->grpc_status >= 0 ? s->grpc_status : s->status);
        /* the upstream stream may still be open: cancel it */
        xs_attempt_done(s, AG__OUT_FAILURE);
        struct uconn *u = s->uc;
        int32_t sid = s->usid;
        ulist_remove(s);
        pay_up(s, u->ng, sid);
        nghttp2_session_set_stream_user_data(u->ng, sid, NULL);
        if (!end) {
            nghttp2_submit_rst_stream(u->ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
            umark(u);
        }
        if (xs_retry(s, true, why))
            return;
        /* no retry left: the answer goes to the client as it is */
        s->resp_end = end;
        resp_begin(s, &s->resp, end);
        if (!end) {
            /* its body was cancelled with the stream: end it here */
            s->resp_end = true;
            resp_resume(s);
        }
        xs_record(s, false);
        return;
    }
    s->resp_end = end;
    resp_begin(s, &s->resp, end);
    if (end) {
        bool ok = s->grpc ? !grpc_failure(s->grpc_status) : s->status < 500;
        xs_attempt_done(s, ok ? AG__OUT_SUCCESS : AG__OUT_FAILURE);
        xs_record(s, ok);
    }
}

static void u_response_end(xs *s)
{
    s->resp_end = true;
    const char *gs = hdr_get(&s->resp_trailers, "grpc-status");
    if (gs)
        s->grpc_status = atoi(gs);
    bool ok = s->grpc ? s->grpc_status >= 0 && !grpc_failure(s->grpc_status) : s->status < 500;
    xs_attempt_done(s, ok ? AG__OUT_SUCCESS : AG__OUT_FAILURE);
    xs_record(s, ok);
    resp_resume(s);
}

static int u_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct uconn *u = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        u->dead = true;
        return 0;
    }
    if (f->hd.stream_id == 0)
        return 0;
    xs *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!s)
        return 0;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->hd.type == NGHTTP2_HEADERS) {
        /* the response's headers (after a 1xx, nghttp2 calls the final ones
         * HCAT_HEADERS), or trailers that end it */
        if (!s->resp_begun)
            u_response_headers(s, end);
        else if (end)
            u_response_end(s);
    } else if (f->hd.type == NGHTTP2_DATA && end && s->resp_begun) {
        u_response_end(s);
    }
    return 0;
}

static int u_on_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                     size_t len, void *ud)
{
    (void)flags;
    struct uconn *u = ud;
    xs *s = nghttp2_session_get_stream_user_data(ng, sid);
    if (!s || s->down_closed || !s->resp_begun) {
        nghttp2_session_consume(ng, sid, len);
        umark(u);
        return 0;
    }
    if (ag_buf_append(&s->resp_body, data, len) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->resp_unpaid += len;
    resp_resume(s);
    return 0;
}

static int u_on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
    (void)ud;
    xs *s = nghttp2_session_get_stream_user_data(ng, sid);
    if (!s)
        return 0;
    nghttp2_session_set_stream_user_data(ng, sid, NULL);
    bool complete = s->resp_end;
    ulist_remove(s);
    pay_up(s, ng, sid);
    if (complete) {
        /* what the client still sends goes nowhere */
        pay_down(s);
        return 0;
    }
    char why[96];
    snprintf(why, sizeof(why), "stream reset by the endpoint (%s)",
             nghttp2_http2_strerror(code));
    bool safe = code == NGHTTP2_REFUSED_STREAM || (mesh_idempotent(s->method) && !s->grpc);
    if (s->resp_begun) {
        xs_attempt_done(s, AG__OUT_FAILURE);
        if (!s->down_closed) {
            nghttp2_submit_rst_stream(s->dc->ng, NGHTTP2_FLAG_NONE, s->dsid,
                                      code == NGHTTP2_NO_ERROR ? NGHTTP2_INTERNAL_ERROR : code);
            dmark(s->dc);
        }
        xs_record(s, false);
        return 0;
    }
    xs_upstream_failed(s, safe, why);
    return 0;
}

/* ---- upstream connections ---------------------------------------------------------- */

static int u_recv(xport *x, const uint8_t *p, size_t n)
{
    struct uconn *u = (struct uconn *)x;
    ssize_t r = nghttp2_session_mem_recv(u->ng, p, n);
    if (r < 0) {
        snprintf(x->why, sizeof(x->why), "HTTP/2 from the endpoint: %s",
                 nghttp2_strerror((int)r));
        u->dead = true;
        return -1;
    }
    return 0;
}

static int u_produce(xport *x, ag_buf *out)
{
    struct uconn *u = (struct uconn *)x;
    int rc = produce(u->ng, out);
    /* nghttp2 ends a connection the endpoint broke (a bad frame, bad
     * HPACK) by itself, with a GOAWAY: then neither side wants more;
     * close once that is written, which fails the streams still on it */
    if (rc == 0 && !nghttp2_session_want_read(u->ng) && !nghttp2_session_want_write(u->ng)) {
        u->dead = true;
        if (!x->why[0])
            snprintf(x->why, sizeof(x->why), "the endpoint broke HTTP/2");
        x->drain = true;
    }
    return rc;
}

static void u_up(xport *x)
{
    struct uconn *u = (struct uconn *)x;
    u->up = true;
    mesh_epc_up(u->epc);
    /* the waiting streams go out, oldest first */
    xs *rev = NULL;
    while (u->waiting) {
        xs *s = u->waiting;
        u->waiting = s->unext;
        if (u->waiting)
            u->waiting->uprev = NULL;
        s->unext = rev;
        s->uprev = NULL;
        s->uc = NULL;
        s->waiting = false;
        rev = s;
    }
    while (rev) {
        xs *s = rev;
        rev = s->unext;
        s->unext = NULL;
        uconn_submit(u, s);
    }
    xport_flush(x);
}


static void u_closed(xport *x, const char *why)
{
    struct uconn *u = (struct uconn *)x;
    mesh_epc *e = u->epc;
    bool was_up = u->up;
    /* unlink from the endpoint first, so that retries pick another connection */
    if (e) {
        struct uconn **pp = (struct uconn **)&e->conns;
        while (*pp && *pp != u)
            pp = &(*pp)->next;
        if (*pp)
            *pp = u->next;
    }
    if (e && !e->gone && !was_up) {
        AG_LOG(AG_LOG_INFO, "mesh", "endpoint_down router=%s service=%s endpoint=%s why=\"%s\"",
               e->cl->rt->rc->label, e->cl->id, x->peer, why);
        mesh_epc_down(e);
    }
    /* streams that never went out may go elsewhere */
    while (u->waiting) {
        xs *s = u->waiting;
        ulist_remove(s);
        xs_upstream_failed(s, true, why);
    }
    while (u->streams) {
        xs *s = u->streams;
        int32_t sid = s->usid;
        ulist_remove(s);
        (void)sid;
        if (s->resp_end)
            continue;
        if (s->resp_begun) {
            xs_attempt_done(s, AG__OUT_FAILURE);
            if (!s->down_closed) {
                nghttp2_submit_rst_stream(s->dc->ng, NGHTTP2_FLAG_NONE, s->dsid,
                                          NGHTTP2_INTERNAL_ERROR);
                dmark(s->dc);
            }
            xs_record(s, false);
        } else {
            xs_upstream_failed(s, mesh_idempotent(s->method) && !s->grpc, why);
        }
    }
    nghttp2_session_del(u->ng);
    ag_metric_add(u->m->mt.conns, -1, u->rt_label, "client");
    ag_metric_add(u->m->mt.ep_conns, -1, u->rt_label, u->ep_label);
    ag_free(u);
    if (e)
        mesh_epc_check(e);
}

static const xport_ops uconn_ops = {u_recv, u_produce, u_up, u_closed};

static nghttp2_session_callbacks *ucb, *dcb;
static nghttp2_option *uopt, *dopt;

static struct uconn *uconn_new(mesh_epc *e)
{
    struct uconn *u = ag_calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    mesh_router *rt = e->cl->rt;
    u->epc = e;
    if (nghttp2_session_client_new2(&u->ng, ucb, u, uopt) != 0) {
        ag_free(u);
        return NULL;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, rt->rc->stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 65536},
    };
    nghttp2_submit_settings(u->ng, NGHTTP2_FLAG_NONE, iv, AG_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(u->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    xport_init(&u->x, &rt->m->loop, &uconn_ops, u);
    u->https = e->cl->tls != NULL;
    u->next = e->conns;
    e->conns = u;
    u->m = rt->m;
    snprintf(u->rt_label, sizeof(u->rt_label), "%s", rt->rc->label);
    snprintf(u->ep_label, sizeof(u->ep_label),
             strchr(e->ep->addr.host, ':') ? "[%s]:%u" : "%s:%u", e->ep->addr.host,
             e->ep->addr.port);
    ag_metric_add(rt->m->mt.conns, 1, u->rt_label, "client");
    ag_metric_add(rt->m->mt.ep_conns, 1, u->rt_label, u->ep_label);
    xport_connect(&u->x, e->ep->addr.host, e->ep->addr.port, e->cl->tls,
                  e->cl->cc->connect_timeout_ms);
    return u;
}

static void *uc_next(void *c)
{
    return ((struct uconn *)c)->next;
}

static bool uc_busy(void *c)
{
    const struct uconn *u = c;
    return u->nstreams > 0 || u->waiting;
}

static void uc_drop(void *c)
{
    struct uconn *u = c;
    u->epc = NULL;
    xport_close(&u->x, "endpoint removed");
}

static void *uc_open(mesh_epc *e)
{
    return uconn_new(e);
}

const mesh_conn_ops mesh_h2_conn_ops = {uc_next, uc_busy, uc_drop, uc_open};

/* ---- dispatching --------------------------------------------------------------------- */

static void uconn_submit(struct uconn *u, xs *s)
{
    mesh_router *rt = xs_router(s);
    nghttp2_nv nv[MAX_HEADERS + 8];
    size_t n = 0;
    char tmo[10];
    size_t idl = strlen(rt->rc->identity_header);
    for (size_t i = 0; i < s->req.n && n < AG_ARRAY_LEN(nv) - 2; i++) {
        const nghttp2_nv *h = &s->req.v[i];
        if (hop_by_hop(h))
            continue;
        if (h->namelen == 12 && memcmp(h->name, "grpc-timeout", 12) == 0)
            continue;
        if (h->namelen == idl && memcmp(h->name, rt->rc->identity_header, idl) == 0)
            continue;   /* only the mesh says who calls */
        if (h->namelen == 7 && memcmp(h->name, ":scheme", 7) == 0) {
            nv[n++] = (nghttp2_nv){(uint8_t *)":scheme", (uint8_t *)(u->https ? "https" : "http"),
                                   7, u->https ? 5u : 4u, NGHTTP2_NV_FLAG_NONE};
            continue;
        }
        nv[n++] = *h;
    }
    const char *party = xport_peer_identity(&s->dc->x);
    if (party && n < AG_ARRAY_LEN(nv))
        nv[n++] = (nghttp2_nv){(uint8_t *)rt->rc->identity_header, (uint8_t *)(uintptr_t)party,
                               idl, strlen(party), NGHTTP2_NV_FLAG_NONE};
    if (s->deadline_ms) {
        uint64_t now = loop_ms(s);
        uint64_t left = s->deadline_ms > now ? s->deadline_ms - now : 1;
        ag__grpc_timeout_format(left * 1000000, tmo);
        nv[n++] = (nghttp2_nv){(uint8_t *)"grpc-timeout", (uint8_t *)tmo, 12, strlen(tmo),
                               NGHTTP2_NV_FLAG_NONE};
    }
    bool body = !(s->req_end && s->req_body.len == 0 && s->req_trailers.n == 0);
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = req_read};
    s->attempt_ns = ag_now_ns();
    s->up_done = false;
    int32_t sid = nghttp2_submit_request(u->ng, NULL, nv, n, body ? &prd : NULL, s);
    if (sid < 0) {
        char why[96];
        snprintf(why, sizeof(why), "cannot start a stream: %s", nghttp2_strerror(sid));
        u->dead = true;
        xs_upstream_failed(s, true, why);
        return;
    }
    ulist_add(u, s, false);
    s->usid = sid;
    s->req_deferred = false;
    umark(u);
}

static bool uconn_has_room(const struct uconn *u)
{
    if (u->dead || u->x.closing)
        return false;
    if (!u->up)
        return true;
    uint32_t max = nghttp2_session_get_remote_settings(u->ng,
                                                       NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return u->nstreams < max;
}

static void xs_dispatch(xs *s)
{
    mesh_router *rt = xs_router(s);
    mesh_cluster *cl = s->route.cl;
    const ag__ep *avoid = s->epc ? s->epc->ep : NULL;
    ag__ep *ep = ag__lb_pick(cl->lb, avoid);
    mesh_epc_release(s->epc);
    s->epc = NULL;
    s->ep = NULL;
    s->attempts++;
    if (!ep) {
        xs_fail(s, 14, 503, "%s: no endpoint available for %s (%zu endpoints, none up)",
                rt->rc->label, cl->id, ag__lb_size(cl->lb));
        xs_record(s, false);
        return;
    }
    s->ep = ep;
    mesh_epc *e = mesh_epc_get(cl, ep);
    if (!e) {
        ag__lb_done(cl->lb, ep, 0, AG__OUT_IGNORED);
        s->ep = NULL;
        s->up_done = true;
        xs_fail(s, 14, 503, "out of memory");
        xs_record(s, false);
        return;
    }
    s->epc = e;
    e->refs++;
    s->up_done = false;
    s->attempt_ns = ag_now_ns();
    struct uconn *u = e->conns;
    while (u && !uconn_has_room(u))
        u = u->next;
    if (!u)
        u = uconn_new(e);
    if (!u) {
        xs_upstream_failed(s, true, "out of memory");
        return;
    }
    if (!u->up)
        ulist_add(u, s, true);
    else
        uconn_submit(u, s);
}

/* ---- deadlines --------------------------------------------------------------------- */

static uint64_t loop_ms(const xs *s)
{
    return uv_now(&s->dc->rt->m->loop);
}

static void on_deadline(uv_timer_t *t)
{
    xs *s = t->data;
    if (s->down_closed || s->resp_end)
        return;
    xs_attempt_done(s, AG__OUT_FAILURE);
    xs_detach(s, true);
    if (s->resp_begun) {
        nghttp2_submit_rst_stream(s->dc->ng, NGHTTP2_FLAG_NONE, s->dsid, NGHTTP2_CANCEL);
        dmark(s->dc);
    } else {
        xs_fail(s, 4, 504, "%s: deadline exceeded after %llu ms",
                s->routed ? s->route.name : "request",
                (unsigned long long)((ag_now_ns() - s->start_ns) / 1000000));
    }
    xs_record(s, false);
}

static void timer_closed(uv_handle_t *h)
{
    ag_free(h);
}

/* ---- downstream ------------------------------------------------------------------ */

static void xs_free(xs *s)
{
    hdr_clear(&s->req);
    hdr_clear(&s->req_trailers);
    hdr_clear(&s->resp);
    hdr_clear(&s->resp_trailers);
    ag_buf_cleanup(&s->req_body);
    ag_buf_cleanup(&s->replay);
    ag_buf_cleanup(&s->resp_body);
    ag_arena_free(s->ar);
    if (s->timer) {
        uv_timer_stop(s->timer);
        uv_close((uv_handle_t *)s->timer, timer_closed);
    }
    ag_free(s);
}

static void xs_maybe_free(xs *s)
{
    if (!s->down_closed)
        return;
    if (!s->up_done && s->ep)
        xs_attempt_done(s, AG__OUT_IGNORED);
    xs_detach(s, true);
    pay_down(s);
    if (!s->recorded)
        xs_record(s, s->resp_end && !s->local && s->status < 500);
    mesh_epc_release(s->epc);
    if (s->routed)
        s->route.cl->refs--;
    xs_free(s);
}

/* The request as the router sees it (its headers in hv). */
static ag__req_view req_view(const xs *s, ag__hdr *hv, size_t cap)
{
    size_t nh = 0;
    for (size_t i = 0; i < s->req.n && nh < cap; i++)
        hv[nh++] = (ag__hdr){(const char *)s->req.v[i].name, s->req.v[i].namelen,
                             (const char *)s->req.v[i].value, s->req.v[i].valuelen};
    return (ag__req_view){s->method, s->authority, s->path, hv, nh};
}

static void route_and_go(xs *s)
{
    struct dconn *d = s->dc;
    mesh_router *rt = d->rt;
    if (s->too_large) {
        s->grpc = false;
        xs_fail(s, 8, 431, "request header block over %zu bytes", rt->rc->max_header_bytes);
        xs_record(s, false);
        return;
    }
    s->method = hdr_get(&s->req, ":method");
    s->path = hdr_get(&s->req, ":path");
    s->authority = hdr_get(&s->req, ":authority");
    if (!s->authority)
        s->authority = hdr_get(&s->req, "host");
    s->ctype = hdr_get(&s->req, "content-type");
    s->grpc = s->ctype && strncmp(s->ctype, "application/grpc", 16) == 0;
    if (!s->method || !s->path) {
        xs_fail(s, 13, 400, "request without :method or :path");
        xs_record(s, false);
        return;
    }
    ag__hdr hv[MAX_HEADERS];
    ag__req_view view = req_view(s, hv, AG_ARRAY_LEN(hv));
    char why[1024], denied[1024];
    int named = mesh_name_request(rt, &view, &s->route, why, sizeof(why));
    /* who calls (a verified client certificate), and may it, towards this name */
    if (!mesh_authorize(rt, xport_peer_identity(&d->x), s->path, named == 0 ? s->route.name : NULL,
                        denied, sizeof(denied))) {
        xs_fail(s, 7, 403, "%s", denied);
        xs_record(s, false);
        return;
    }
    ag__budget_deposit(&rt->budget, ag_now_ms());
    rt->requests++;
    if (named < 0) {
        xs_fail(s, 12, 404, "%s", why);
        xs_record(s, false);
        return;
    }
    route_step(s);
}

/* A binding still pending (a first DNS answer): ask again shortly. */
static void on_bind_wait(uv_timer_t *t)
{
    xs *s = t->data;
    if (!s->down_closed)
        route_step(s);
}

/* Names, binds and dispatches the request; waits (BIND_WAIT_MS at a time,
 * BIND_WAIT_TRIES times) while its binding is pending. */
static void route_step(xs *s)
{
    mesh_router *rt = s->dc->rt;
    const char *ov = rt->rc->allow_dtab_override ? hdr_get(&s->req, "l5d-dtab") : NULL;
    char why[512];
    int rc = mesh_route_request(rt, ov, &s->route, why, sizeof(why));
    if (rc == AG_E_AGAIN && s->bind_waits < BIND_WAIT_TRIES &&
        mesh_timer_arm(rt->m, &s->timer, s, on_bind_wait, BIND_WAIT_MS)) {
        s->bind_waits++;
        return;
    }
    if (rc == AG_E_MESH_ROUTE) {
        xs_fail(s, 12, 404, "%s", why);
        xs_record(s, false);
        return;
    }
    if (rc < 0) {
        xs_fail(s, 14, 503, "%s", why);
        xs_record(s, false);
        return;
    }
    s->routed = true;
    s->route.cl->refs++;
    /* the deadline: the client's grpc-timeout, capped by the route's timeout */
    uint64_t tmo = s->route.sc->total_timeout_ms;
    const char *gt = hdr_get(&s->req, "grpc-timeout");
    uint64_t ns;
    if (gt && ag__grpc_timeout_parse(gt, strlen(gt), &ns) == 0) {
        uint64_t ms = ns / 1000000 + (ns % 1000000 != 0); /* rounded up */
        if (tmo == 0 || ms < tmo)
            tmo = ms;
    }
    if (tmo > 0) {
        s->deadline_ms = loop_ms(s) + tmo;
        mesh_timer_arm(rt->m, &s->timer, s, on_deadline, tmo);
    }
    xs_dispatch(s);
}

static int d_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct dconn *d = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    xs *s = ag_calloc(1, sizeof(*s));
    if (!s)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->ar = ag_arena_new(2048, (size_t)d->rt->rc->max_header_bytes * 12 + 65536, 0);
    if (!s->ar) {
        ag_free(s);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    s->dc = d;
    s->dsid = f->hd.stream_id;
    s->start_ns = ag_now_ns();
    s->grpc_status = -1;
    s->replayable = true;
    ag_buf_init(&s->req_body, (size_t)d->rt->rc->stream_window + CONN_WINDOW + REPLAY_MAX);
    ag_buf_init(&s->replay, REPLAY_MAX);
    ag_buf_init(&s->resp_body, (size_t)d->rt->rc->stream_window + CONN_WINDOW);
    s->dnext = d->streams;
    if (d->streams)
        d->streams->dprev = s;
    d->streams = s;
    if (!s->dnext)
        d_idle_check(d);   /* busy again */
    nghttp2_session_set_stream_user_data(ng, s->dsid, s);
    return 0;
}

static int d_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *k, size_t kl,
                       const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
    (void)flags;
    struct dconn *d = ud;
    xs *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!s || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    bool trailers = f->headers.cat == NGHTTP2_HCAT_HEADERS;
    hdr_list *l = trailers ? &s->req_trailers : &s->req;
    if (s->too_large)
        return 0;
    if (l->bytes + kl + vl + 32 > d->rt->rc->max_header_bytes || l->n >= MAX_HEADERS) {
        if (trailers)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST the stream */
        s->too_large = true;
        return 0;
    }
    if (hdr_add(l, s->ar, k, kl, v, vl) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int d_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if (f->hd.stream_id == 0)
        return 0;
    xs *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!s)
        return 0;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        s->req_end = end;
        route_and_go(s);
    } else if (f->hd.type == NGHTTP2_HEADERS) {
        s->req_end = true;   /* trailers end the request */
        req_resume(s);
    } else if (f->hd.type == NGHTTP2_DATA && end) {
        s->req_end = true;
        req_resume(s);
    }
    return 0;
}

static int d_on_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                     size_t len, void *ud)
{
    (void)flags;
    struct dconn *d = ud;
    xs *s = nghttp2_session_get_stream_user_data(ng, sid);
    if (!s || s->local || s->resp_end) {
        nghttp2_session_consume(ng, sid, len);
        dmark(d);
        return 0;
    }
    if (ag_buf_append(&s->req_body, data, len) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    req_resume(s);
    return 0;
}

static int d_on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
    struct dconn *d = ud;
    xs *s = nghttp2_session_get_stream_user_data(ng, sid);
    if (!s)
        return 0;
    nghttp2_session_set_stream_user_data(ng, sid, NULL);
    s->down_closed = true;
    if (s->dprev)
        s->dprev->dnext = s->dnext;
    else
        d->streams = s->dnext;
    if (s->dnext)
        s->dnext->dprev = s->dprev;
    if (code != NGHTTP2_NO_ERROR && !s->resp_end)
        AG_LOG(AG_LOG_DEBUG, "mesh", "stream_reset router=%s by=client code=%s",
               d->rt->rc->label, nghttp2_http2_strerror(code));
    xs_maybe_free(s);
    if (!d->streams && !d->dead)
        d_idle_check(d);
    return 0;
}

/* A response that ended while the client was still sending: RST_STREAM
 * NO_ERROR after it (RFC 9113 8.1) tells the client to stop. Sent once
 * the end went out: submitted earlier, nghttp2 would drop the response. */
static int d_on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    xs *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (s && !s->req_end)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static int d_recv(xport *x, const uint8_t *p, size_t n)
{
    struct dconn *d = (struct dconn *)x;
    ssize_t r = nghttp2_session_mem_recv(d->ng, p, n);
    if (r < 0) {
        snprintf(x->why, sizeof(x->why), "HTTP/2 from the client: %s", nghttp2_strerror((int)r));
        return -1;
    }
    return 0;
}

static int d_produce(xport *x, ag_buf *out)
{
    struct dconn *d = (struct dconn *)x;
    int rc = produce(d->ng, out);
    if (rc == 0 && !nghttp2_session_want_read(d->ng) && !nghttp2_session_want_write(d->ng))
        x->drain = true;   /* both sides are done: close once this is written */
    return rc;
}

/* A connection without a stream for idleTimeoutMs: GOAWAY, then closed
 * once that is written. */
static void on_d_idle(xport *x)
{
    struct dconn *d = (struct dconn *)x;
    if (d->streams)
        return;
    d->goaway = true;
    nghttp2_submit_goaway(d->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(d->ng),
                          NGHTTP2_NO_ERROR, (const uint8_t *)"idle", 4);
    x->drain = true;
    xport_flush(x);
}

static void d_idle_check(struct dconn *d)
{
    uint64_t ms = d->rt->rc->idle_timeout_ms;
    xport_set_timeout(&d->x, d->streams ? 0 : ms, d->streams || !ms ? NULL : on_d_idle);
}

static void d_up(xport *x)
{
    d_idle_check((struct dconn *)x);
}

static void d_closed(xport *x, const char *why)
{
    struct dconn *d = (struct dconn *)x;
    mesh_router *rt = d->rt;
    AG_LOG(AG_LOG_DEBUG, "mesh", "conn_close router=%s peer=%s why=\"%s\"", rt->rc->label,
           x->peer, why);
    /* the streams end with the connection: nghttp2_session_del does not
     * call back, so end each here */
    d->dead = true;
    while (d->streams) {
        xs *s = d->streams;
        d->streams = s->dnext;
        s->down_closed = true;
        xs_maybe_free(s);
    }
    nghttp2_session_del(d->ng);
    if (d->prev)
        d->prev->next = d->next;
    else
        rt->conns = d->next;
    if (d->next)
        d->next->prev = d->prev;
    rt->nconns--;
    ag_metric_add(rt->m->mt.conns, -1, rt->rc->label, "server");
    ag_free(d);
}

static const xport_ops dconn_ops = {d_recv, d_produce, d_up, d_closed};

static int callbacks_init(void)
{
    if (dcb)
        return 0;
    if (nghttp2_session_callbacks_new(&dcb) != 0 || nghttp2_session_callbacks_new(&ucb) != 0 ||
        nghttp2_option_new(&dopt) != 0 || nghttp2_option_new(&uopt) != 0)
        return AG_E_NOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(dcb, d_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(dcb, d_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(dcb, d_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(dcb, d_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(dcb, d_on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(dcb, d_on_frame_send);
    nghttp2_session_callbacks_set_on_header_callback(ucb, u_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(ucb, u_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(ucb, u_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(ucb, u_on_stream_close);
    nghttp2_option_set_no_auto_window_update(dopt, 1);
    nghttp2_option_set_no_auto_window_update(uopt, 1);
    /* a peer that never reads should not make us queue without end */
    nghttp2_option_set_max_outbound_ack(dopt, 1000);
    return 0;
}

void mesh_h2_accept(mesh_listener *l)
{
    mesh_router *rt = l->rt;
    if (callbacks_init() < 0)
        return;
    struct dconn *d = ag_calloc(1, sizeof(*d));
    if (!d)
        return;
    d->rt = rt;
    if (nghttp2_session_server_new2(&d->ng, dcb, d, dopt) != 0) {
        ag_free(d);
        return;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, rt->rc->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, rt->rc->stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)rt->rc->max_header_bytes},
    };
    nghttp2_submit_settings(d->ng, NGHTTP2_FLAG_NONE, iv, AG_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(d->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    xport_init(&d->x, &rt->m->loop, &dconn_ops, d);
    d->next = rt->conns;
    if (rt->conns)
        ((struct dconn *)rt->conns)->prev = d;
    rt->conns = d;
    rt->nconns++;
    ag_metric_add(rt->m->mt.conns, 1, rt->rc->label, "server");
    xport_accept(&d->x, (uv_stream_t *)&l->tcp, l->tls, 10000);
}

int mesh_h2_upstream_init(void);
int mesh_h2_upstream_init(void)
{
    return callbacks_init();
}

void mesh_h2_drain(mesh_router *rt)
{
    for (struct dconn *d = rt->conns; d; d = d->next) {
        if (d->goaway)
            continue;
        d->goaway = true;
        nghttp2_submit_shutdown_notice(d->ng);
        nghttp2_submit_goaway(d->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(d->ng), NGHTTP2_NO_ERROR,
                              NULL, 0);
        dmark(d);
    }
}

/* Closes every downstream connection at once (the grace is over). */
void mesh_h2_close_all(mesh_router *rt)
{
    for (struct dconn *d = rt->conns; d; d = d->next)
        xport_close(&d->x, "shutting down");
}
