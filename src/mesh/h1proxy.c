/*
 * The HTTP/1.1 proxy: http-parser on both sides, one exchange at a time
 * per downstream connection (pipelined requests wait their turn, in
 * order), a pool of persistent connections per endpoint upstream.
 *
 * An exchange (struct hx) starts when a request's headers are whole: the
 * router names and binds it (by Host), the balancer picks an endpoint, and
 * the request head goes out on an idle pooled connection or a new one.
 * Bodies stream both ways: what the parser hands over is re-framed (a
 * Content-Length body as it is, anything else as chunked) and queued for
 * the other side; past HIGH_WATER bytes queued, the side that produces
 * stops reading until the other has written below half of it. So neither
 * a large upload nor a large download is ever held whole.
 *
 * Hop-by-hop headers (Connection and what it names, Keep-Alive, TE,
 * Trailer, Transfer-Encoding, Upgrade, Proxy-Connection) are not passed
 * on. An upstream connection goes back to its pool after a response that
 * leaves it reusable (keep-alive, the whole body read); a downstream
 * connection closes after a response when the client asked for it (or
 * spoke HTTP/1.0 without keep-alive) or the router is draining.
 *
 * Retries (before the response head went downstream, under the budget):
 * a connection that failed before the request went out; a pooled
 * connection that closed before any response byte, for an idempotent
 * method; a 5xx the classifier calls retryable. Only a request whose
 * bytes so far fit in REPLAY_MAX is retried.
 *
 * Errors made here: 400 (malformed), 404 (no route), 431 (header block
 * over maxHeaderListBytes), 501 (Upgrade, CONNECT), 502 (upstream
 * failure), 503 (no endpoint), 504 (deadline).
 */
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define HIGH_WATER (1u << 20)
/* A client has requestHeaderTimeoutMs from a request's first byte to its
 * last header (else 408), and a connection may sit idle between requests
 * idleTimeoutMs (then it closes): a client trickling bytes holds nothing
 * for ever. */
#define REPLAY_MAX (64u << 10)
#define MAX_HDRS 200
#define BUF_MAX (HIGH_WATER * 4 + (1u << 20))
/* A request whose binding is pending waits up to 2 s for it. */
#define BIND_WAIT_MS 20
#define BIND_WAIT_TRIES 100

struct h1d;
struct h1u;

typedef struct hx {
    struct h1d *d;
    struct h1u *u;           /* the attempt's connection */
    mesh_route route;
    bool routed;
    mesh_epc *epc;           /* a reference, while an attempt holds it */
    ag__ep *ep;
    bool up_done;
    char ep_label[80];
    /* request */
    char method[24];
    ag_buf url;
    ag_buf hdrs;             /* "name\0value\0" pairs, as received */
    size_t nhdrs;
    bool req_chunked;
    bool req_end;
    ag_buf pend;             /* request bytes waiting for a connection */
    ag_buf replay;           /* the request bytes so far, for a retry */
    bool replayable;
    bool keep_alive;
    bool http10;
    /* response */
    int status;
    bool resp_begun;
    bool resp_chunked;       /* re-framed downstream as chunked */
    bool resp_close;         /* the body ends when the endpoint closes */
    bool resp_end;
    bool head;
    ag_buf rhdrs;            /* response "name\0value\0" pairs */
    size_t nrhdrs;
    bool local;
    uint64_t start_ns, attempt_ns;
    unsigned attempts;
    uv_timer_t *timer;       /* waiting for a binding, then the deadline */
    unsigned bind_waits;
    bool recorded;
} hx;

struct h1d {
    xport x;
    mesh_router *rt;
    http_parser p;
    ag_buf out;              /* to the client */
    ag_buf in;               /* read but not parsed: the next pipelined request */
    hx *cur;
    ag_buf field, value;
    bool in_value;
    size_t hdr_bytes;
    bool too_large;
    bool closing;            /* close once the current response is out */
    bool waiting;            /* the parser stopped after a request (its response is due) */
    bool parsing;            /* inside d_parse */
    bool reading_paused;
    struct h1d *next, *prev;
};

struct h1u {
    xport x;
    mesh_epc *epc;
    http_parser p;
    ag_buf out;              /* to the endpoint */
    hx *cur;
    bool up;
    bool got_bytes;
    bool failed;
    bool retry_status;       /* closed to retry a retryable status elsewhere */
    bool parsing;            /* inside its parser: not to be given another request yet */
    ag_buf field, value;
    bool in_value;
    struct h1u *next;
    struct ag_mesh *m;       /* for the metrics when it closes (its router may be gone) */
    char rt_label[64], ep_label[80];
};

static http_parser_settings dset, uset;
static void hx_dispatch(hx *h);
static void route_step(hx *h);
static void hx_fail(hx *h, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void d_parse(struct h1d *d);
static void on_idle_timeout(xport *x);


/* ---- helpers -------------------------------------------------------------------- */

static bool hop_by_hop(const char *name, const char *connection_value)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection", "te",
                                        "trailer", "transfer-encoding", "upgrade", "l5d-dtab",
                                        NULL};
    for (size_t i = 0; names[i]; i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    /* names listed in Connection */
    if (connection_value) {
        size_t nl = strlen(name);
        const char *p = connection_value;
        while (*p) {
            while (*p == ' ' || *p == ',' || *p == '\t')
                p++;
            size_t l = strcspn(p, ", \t");
            if (l == nl && strncasecmp(p, name, l) == 0)
                return true;
            p += l;
        }
    }
    return false;
}

static const char *pair_get(const ag_buf *b, size_t n, const char *name)
{
    const char *p = (const char *)b->data;
    for (size_t i = 0; i < n; i++) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

static bool retryable_status(const hx *h, int status)
{
    return h->routed && mesh_retryable(h->route.sc, h->method, -1, status);
}

/* Appends request bytes (head or framed body) for the endpoint. */
static int req_put(hx *h, const void *p, size_t n)
{
    if (h->replayable) {
        if (h->replay.len + n > REPLAY_MAX || ag_buf_append(&h->replay, p, n) < 0) {
            h->replayable = false;
            ag_buf_cleanup(&h->replay);
            ag_buf_init(&h->replay, REPLAY_MAX);
        }
    }
    struct h1u *u = h->u;
    int rc;
    if (u && u->up) {
        rc = ag_buf_append(&u->out, p, n);
        xport_mark(&u->x);
        if (u->out.len > HIGH_WATER && !h->d->reading_paused) {
            h->d->reading_paused = true;
            xport_pause(&h->d->x, true);
        }
    } else {
        rc = ag_buf_append(&h->pend, p, n);
        if (h->pend.len > HIGH_WATER && !h->d->reading_paused) {
            h->d->reading_paused = true;
            xport_pause(&h->d->x, true);
        }
    }
    return rc;
}

/* ---- recording and the end of an exchange ------------------------------------------- */

static void hx_attempt_done(hx *h, ag__outcome o)
{
    if (h->up_done || !h->ep)
        return;
    h->up_done = true;
    snprintf(h->ep_label, sizeof(h->ep_label), strchr(h->ep->addr.host, ':') ? "[%s]:%u" : "%s:%u",
             h->ep->addr.host, h->ep->addr.port);
    double ms = (double)(ag_now_ns() - h->attempt_ns) / 1e6;
    mesh_cluster *cl = h->route.cl;
    ag__lb_done(cl->lb, h->ep, ms, o);
    cl->requests++;
    if (o == AG__OUT_SUCCESS)
        cl->successes++;
    else if (o == AG__OUT_FAILURE)
        cl->failures++;
    if (o != AG__OUT_IGNORED)
        lat_add(&cl->lat, ms);
    h->ep = NULL;
}

static void hx_record(hx *h, bool ok)
{
    if (h->recorded)
        return;
    h->recorded = true;
    mesh_record(h->d->rt, h->routed ? h->route.name : "", h->routed ? h->route.cl : NULL,
                h->ep_label, (double)(ag_now_ns() - h->start_ns) / 1e6, ok, h->method,
                h->url.data ? (const char *)h->url.data : "-", h->status);
}

static void timer_closed(uv_handle_t *t)
{
    ag_free(t);
}

static void epc_release(hx *h)
{
    mesh_epc *e = h->epc;
    h->epc = NULL;
    mesh_epc_release(e);
}

static void hx_free(hx *h)
{
    hx_attempt_done(h, AG__OUT_IGNORED);
    if (h->u) {
        struct h1u *u = h->u;
        h->u = NULL;
        u->cur = NULL;
        /* a connection left mid-exchange cannot be reused */
        xport_close(&u->x, "exchange abandoned");
    }
    epc_release(h);
    if (h->routed)
        h->route.cl->refs--;
    if (h->timer) {
        uv_timer_stop(h->timer);
        uv_close((uv_handle_t *)h->timer, timer_closed);
    }
    ag_buf_cleanup(&h->url);
    ag_buf_cleanup(&h->hdrs);
    ag_buf_cleanup(&h->pend);
    ag_buf_cleanup(&h->replay);
    ag_buf_cleanup(&h->rhdrs);
    ag_free(h);
}

/* The response is whole in d->out: the exchange is over; the next
 * pipelined request may go. */
static void hx_finish(hx *h)
{
    struct h1d *d = h->d;
    if (!h->keep_alive)
        d->closing = true;
    d->cur = NULL;
    hx_free(h);
    xport_mark(&d->x);
    if (!d->closing) {
        xport_set_timeout(&d->x, d->rt->rc->idle_timeout_ms, on_idle_timeout);
        d_parse(d);
    }
}

/* A response made here. */
static void hx_fail(hx *h, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct h1d *d = h->d;
    if (h->resp_begun) {
        /* the client has part of a response: only closing tells it */
        d->closing = true;
        xport_close(&d->x, "upstream failed mid-response");
        return;
    }
    h->local = true;
    h->status = status;
    h->resp_begun = true;
    const char *reason = http_status_str((enum http_status)status);
    bool close = !h->keep_alive || status == 400 || status == 431 || !h->req_end;
    if (close)
        h->keep_alive = false;
    int rc = ag_buf_printf(&d->out,
                           "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                           "Content-Length: %zu\r\n%s%s\r\n%s\n",
                           status, reason, strlen(msg) + 1, status == 503 ? "l5d-err: unavailable\r\n" : "",
                           close ? "Connection: close\r\n" : "", h->head ? "" : msg);
    if (rc < 0)
        d->closing = true;
    AG_LOG(AG_LOG_DEBUG, "mesh", "local_response router=%s status=%d why=\"%s\"",
           d->rt->rc->label, status, msg);
    hx_record(h, false);
    h->resp_end = true;
    if (h->req_end)
        hx_finish(h);
    /* else: the rest of the request is read and dropped, then the
     * connection closes (keep_alive is off) */
    xport_mark(&d->x);
}

/* ---- upstream connections ------------------------------------------------------- */

static int u_recv(xport *x, const uint8_t *p, size_t n);
static int u_produce(xport *x, ag_buf *out);
static void u_up(xport *x);
static void u_closed(xport *x, const char *why);
static const xport_ops uops = {u_recv, u_produce, u_up, u_closed};

static struct h1u *u_new(mesh_epc *e);

static void *hu_next(void *c)
{
    return ((struct h1u *)c)->next;
}

static bool hu_busy(void *c)
{
    return ((struct h1u *)c)->cur != NULL;
}

static void hu_drop(void *c)
{
    struct h1u *u = c;
    u->epc = NULL;
    xport_close(&u->x, "endpoint removed");
}

static void *hu_open(mesh_epc *e)
{
    return u_new(e);
}

const mesh_conn_ops mesh_h1_conn_ops = {hu_next, hu_busy, hu_drop, hu_open};

static struct h1u *u_new(mesh_epc *e)
{
    struct h1u *u = ag_calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    mesh_router *rt = e->cl->rt;
    u->epc = e;
    http_parser_init(&u->p, HTTP_RESPONSE);
    u->p.data = u;
    xport_init(&u->x, &rt->m->loop, &uops, u);
    u->x.quickack = true;
    ag_buf_init(&u->out, BUF_MAX);
    ag_buf_init(&u->field, 1024);
    ag_buf_init(&u->value, 65536);
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

/* Gives the request to a connection that is up. */
static void u_start(struct h1u *u, hx *h)
{
    u->cur = h;
    h->u = u;
    u->got_bytes = false;
    http_parser_init(&u->p, HTTP_RESPONSE);
    u->p.data = u;
    h->attempt_ns = ag_now_ns();
    if (h->pend.len > 0) {
        if (ag_buf_append(&u->out, h->pend.data, h->pend.len) < 0) {
            u->failed = true;
            xport_close(&u->x, "out of memory");
            return;
        }
        ag_buf_reset(&h->pend);
    }
    xport_mark(&u->x);
}

static void u_up(xport *x)
{
    struct h1u *u = (struct h1u *)x;
    u->up = true;
    mesh_epc_up(u->epc);
    if (u->cur)
        u_start(u, u->cur);
}

static int u_produce(xport *x, ag_buf *out)
{
    struct h1u *u = (struct h1u *)x;
    if (u->out.len == 0)
        return 0;
    size_t n = AG_MIN(u->out.len, (size_t)(256u << 10) - AG_MIN(out->len, (size_t)(256u << 10)));
    if (n == 0)
        return 0;
    if (ag_buf_append(out, u->out.data, n) < 0)
        return -1;
    ag_buf_consume(&u->out, n);
    if (u->cur && u->out.len < HIGH_WATER / 2) {
        struct h1d *d = u->cur->d;
        if (d->reading_paused && d->in.len < HIGH_WATER) {
            d->reading_paused = false;
            xport_pause(&d->x, false);
            d_parse(d);
        }
    }
    return 0;
}

static void u_retry_or_fail(hx *h, bool safe, const char *why)
{
    mesh_router *rt = h->d->rt;
    hx_attempt_done(h, AG__OUT_FAILURE);
    h->u = NULL;
    bool ok = safe && !h->resp_begun && h->replayable && h->routed &&
              h->attempts < h->route.sc->max_attempts;
    if (ok && !ag__budget_withdraw(&rt->budget, ag_now_ms())) {
        rt->budget_exhausted++;
        ag_metric_add(rt->m->mt.budget_exhausted, 1, rt->rc->label);
        ok = false;
    }
    if (ok) {
        rt->retries++;
        ag_metric_add(rt->m->mt.retries, 1, rt->rc->label, h->route.name);
        ag_buf_reset(&h->pend);
        if (ag_buf_append(&h->pend, h->replay.data, h->replay.len) == 0) {
            hx_dispatch(h);
            return;
        }
    }
    hx_fail(h, 502, "%s: %s", h->routed ? h->route.name : "upstream", why);
}

static void u_closed(xport *x, const char *why)
{
    struct h1u *u = (struct h1u *)x;
    mesh_epc *e = u->epc;
    if (e) {
        struct h1u **pp = (struct h1u **)&e->conns;
        while (*pp && *pp != u)
            pp = &(*pp)->next;
        if (*pp)
            *pp = u->next;
        if (!u->up && !e->gone) {
            AG_LOG(AG_LOG_INFO, "mesh", "endpoint_down router=%s service=%s endpoint=%s why=\"%s\"",
                   e->cl->rt->rc->label, e->cl->id, x->peer, why);
            mesh_epc_down(e);
        }
    }
    hx *h = u->cur;
    u->cur = NULL;
    if (h) {
        h->u = NULL;
        if (h->resp_begun && !h->resp_end && h->resp_close && !u->failed) {
            /* a body that ends with the connection: tell the parser */
            u->cur = h;
            h->u = u;
            http_parser_execute(&u->p, &uset, NULL, 0);
            u->cur = NULL;
            h->u = NULL;
        }
        if (!h->resp_end) {
            if (h->resp_begun) {
                hx_attempt_done(h, AG__OUT_FAILURE);
                hx_fail(h, 502, "%s", why);
            } else {
                /* not yet connected, or a pooled connection the endpoint
                 * closed before answering */
                bool safe = !u->up || u->retry_status ||
                            (!u->got_bytes && mesh_idempotent(h->method));
                u_retry_or_fail(h, safe, why);
            }
        }
    }
    ag_metric_add(u->m->mt.conns, -1, u->rt_label, "client");
    ag_metric_add(u->m->mt.ep_conns, -1, u->rt_label, u->ep_label);
    ag_buf_cleanup(&u->out);
    ag_buf_cleanup(&u->field);
    ag_buf_cleanup(&u->value);
    ag_free(u);
    if (e)
        mesh_epc_check(e);
}

static int u_recv(xport *x, const uint8_t *p, size_t n)
{
    struct h1u *u = (struct h1u *)x;
    if (!u->cur) {
        /* bytes with no request: the endpoint broke the exchange */
        snprintf(x->why, sizeof(x->why), "unexpected bytes from the endpoint");
        u->failed = true;
        return -1;
    }
    u->got_bytes = true;
    u->parsing = true;
    size_t done = http_parser_execute(&u->p, &uset, (const char *)p, n);
    u->parsing = false;
    if (HTTP_PARSER_ERRNO(&u->p) != HPE_OK) {
        snprintf(x->why, sizeof(x->why), "malformed response from the endpoint: %s",
                 http_errno_description(HTTP_PARSER_ERRNO(&u->p)));
        u->failed = true;
        return -1;
    }
    if (done < n && !u->cur) {
        snprintf(x->why, sizeof(x->why), "bytes after the response");
        u->failed = true;
        return -1;
    }
    return 0;
}

/* response parser */

static int pair_commit(ag_buf *pairs, size_t *n, ag_buf *field, ag_buf *value)
{
    if (field->len == 0)
        return 0;
    int rc = ag_buf_append(pairs, field->data, field->len + 1);
    if (rc == 0)
        rc = ag_buf_append(pairs, value->data ? value->data : (const uint8_t *)"",
                           value->len + 1);
    (*n)++;
    ag_buf_reset(field);
    ag_buf_reset(value);
    return rc;
}

static int u_on_field(http_parser *p, const char *at, size_t len)
{
    struct h1u *u = p->data;
    hx *h = u->cur;
    if (u->in_value) {
        if (pair_commit(&h->rhdrs, &h->nrhdrs, &u->field, &u->value) < 0)
            return -1;
        u->in_value = false;
    }
    return ag_buf_append(&u->field, at, len) < 0 ? -1 : 0;
}

static int u_on_value(http_parser *p, const char *at, size_t len)
{
    struct h1u *u = p->data;
    u->in_value = true;
    return ag_buf_append(&u->value, at, len) < 0 ? -1 : 0;
}

static int u_on_headers_complete(http_parser *p)
{
    struct h1u *u = p->data;
    hx *h = u->cur;
    struct h1d *d = h->d;
    if (u->in_value && pair_commit(&h->rhdrs, &h->nrhdrs, &u->field, &u->value) < 0)
        return -1;
    u->in_value = false;
    int status = p->status_code;
    if (status >= 100 && status < 200) {
        /* informational: dropped; the final response follows */
        ag_buf_reset(&h->rhdrs);
        h->nrhdrs = 0;
        return 0;
    }
    h->status = status;
    if (retryable_status(h, status) && h->replayable && h->req_end) {
        /* throw this answer away with its connection and go elsewhere */
        u->failed = true;
        u->retry_status = true;
        snprintf(u->x.why, sizeof(u->x.why), "status %d", status);
        return -1;
    }
    const char *conn = pair_get(&h->rhdrs, h->nrhdrs, "connection");
    bool has_len = pair_get(&h->rhdrs, h->nrhdrs, "content-length") != NULL;
    bool chunked = (p->flags & F_CHUNKED) != 0;
    bool no_body = h->head || status == 204 || status == 304;
    h->resp_chunked = false;
    h->resp_close = false;
    if (!no_body && !chunked && !has_len) {
        h->resp_close = true;      /* until the endpoint closes */
        if (h->http10)
            h->keep_alive = false; /* an HTTP/1.0 client reads to the close too */
        else
            h->resp_chunked = true;
    } else if (!no_body && chunked) {
        if (h->http10)
            h->keep_alive = false;
        else
            h->resp_chunked = true;
    }
    if (d->closing || d->x.closing)
        h->keep_alive = false;
    int rc = ag_buf_printf(&d->out, "HTTP/1.1 %d %s\r\n", status,
                           http_status_str((enum http_status)status));
    const char *q = (const char *)h->rhdrs.data;
    for (size_t i = 0; rc == 0 && i < h->nrhdrs; i++) {
        const char *v = q + strlen(q) + 1;
        if (!hop_by_hop(q, conn) && !(h->resp_chunked && strcasecmp(q, "content-length") == 0))
            rc = ag_buf_printf(&d->out, "%s: %s\r\n", q, v);
        q = v + strlen(v) + 1;
    }
    if (rc == 0 && h->resp_chunked)
        rc = ag_buf_append_str(&d->out, "Transfer-Encoding: chunked\r\n");
    if (rc == 0 && !h->keep_alive)
        rc = ag_buf_append_str(&d->out, "Connection: close\r\n");
    else if (rc == 0 && h->http10)
        rc = ag_buf_append_str(&d->out, "Connection: keep-alive\r\n");
    if (rc == 0)
        rc = ag_buf_append_str(&d->out, "\r\n");
    if (rc < 0)
        return -1;
    h->resp_begun = true;
    xport_mark(&d->x);
    return h->head ? 1 : 0;
}

static int u_on_body(http_parser *p, const char *at, size_t len)
{
    struct h1u *u = p->data;
    hx *h = u->cur;
    struct h1d *d = h->d;
    int rc = 0;
    if (h->resp_chunked)
        rc = ag_buf_printf(&d->out, "%zx\r\n", len);
    if (rc == 0)
        rc = ag_buf_append(&d->out, at, len);
    if (rc == 0 && h->resp_chunked)
        rc = ag_buf_append(&d->out, "\r\n", 2);
    if (rc < 0)
        return -1;
    xport_mark(&d->x);
    if (d->out.len > HIGH_WATER)
        xport_pause(&u->x, true);
    return 0;
}

static int u_on_message_complete(http_parser *p)
{
    struct h1u *u = p->data;
    hx *h = u->cur;
    if (!h || p->status_code < 200)
        return 0;
    struct h1d *d = h->d;
    if (h->resp_chunked && ag_buf_append(&d->out, "0\r\n\r\n", 5) < 0)
        return -1;
    h->resp_end = true;
    bool ok = h->status < 500;
    hx_attempt_done(h, ok ? AG__OUT_SUCCESS : AG__OUT_FAILURE);
    hx_record(h, ok);
    bool reusable = http_should_keep_alive(p) && !h->resp_close && h->req_end;
    u->cur = NULL;
    h->u = NULL;
    epc_release(h);
    if (!reusable)
        xport_drain(&u->x);
    if (h->req_end) {
        hx_finish(h);
    } else {
        /* answered before the request was whole: drop the rest, then close */
        h->keep_alive = false;
    }
    xport_mark(&d->x);
    return 0;
}

/* ---- dispatching ------------------------------------------------------------------ */

static void hx_dispatch(hx *h)
{
    mesh_cluster *cl = h->route.cl;
    const ag__ep *avoid = h->epc ? h->epc->ep : NULL;
    ag__ep *ep = ag__lb_pick(cl->lb, avoid);
    epc_release(h);
    h->attempts++;
    if (!ep) {
        hx_fail(h, 503, "%s: no endpoint available for %s (%zu endpoints, none up)",
                h->d->rt->rc->label, cl->id, ag__lb_size(cl->lb));
        return;
    }
    h->ep = ep;
    h->up_done = false;
    h->attempt_ns = ag_now_ns();
    mesh_epc *e = mesh_epc_get(cl, ep);
    if (!e) {
        hx_attempt_done(h, AG__OUT_IGNORED);
        hx_fail(h, 503, "out of memory");
        return;
    }
    h->epc = e;
    e->refs++;
    struct h1u *u = e->conns;
    while (u && (u->cur || !u->up || u->parsing || u->x.closing || u->x.drain))
        u = u->next;
    if (u) {
        u_start(u, h);
        return;
    }
    u = u_new(e);
    if (!u) {
        u_retry_or_fail(h, true, "out of memory");
        return;
    }
    u->cur = h;
    h->u = u;
}

/* ---- downstream ------------------------------------------------------------------ */

static void on_deadline(uv_timer_t *t)
{
    hx *h = t->data;
    if (h->resp_end)
        return;
    hx_attempt_done(h, AG__OUT_FAILURE);
    if (h->u) {
        struct h1u *u = h->u;
        h->u = NULL;
        u->cur = NULL;
        u->failed = true;
        xport_close(&u->x, "deadline exceeded");
    }
    h->keep_alive = false;
    hx_fail(h, 504, "%s: deadline exceeded", h->routed ? h->route.name : "request");
}

/* The request as the router sees it (its headers in hv). */
static ag__req_view req_view(const hx *h, ag__hdr *hv, size_t cap)
{
    size_t nh = 0;
    const char *q = (const char *)h->hdrs.data;
    for (size_t i = 0; i < h->nhdrs && nh < cap; i++) {
        const char *v = q + strlen(q) + 1;
        hv[nh++] = (ag__hdr){q, strlen(q), v, strlen(v)};
        q = v + strlen(v) + 1;
    }
    return (ag__req_view){h->method, pair_get(&h->hdrs, h->nhdrs, "host"),
                          (const char *)h->url.data, hv, nh};
}

static void route_and_go(hx *h)
{
    struct h1d *d = h->d;
    mesh_router *rt = d->rt;
    ag__hdr hv[MAX_HDRS];
    ag__req_view view = req_view(h, hv, MAX_HDRS);
    char why[1024], denied[1024];
    int named = mesh_name_request(rt, &view, &h->route, why, sizeof(why));
    if (!mesh_authorize(rt, xport_peer_identity(&d->x), (const char *)h->url.data,
                        named == 0 ? h->route.name : NULL, denied, sizeof(denied))) {
        hx_fail(h, 403, "%s", denied);
        return;
    }
    ag__budget_deposit(&rt->budget, ag_now_ms());
    rt->requests++;
    if (named < 0) {
        hx_fail(h, 404, "%s", why);
        return;
    }
    route_step(h);
}

static void on_bind_wait(uv_timer_t *t)
{
    hx *h = t->data;
    route_step(h);
}

/* Names, binds and dispatches the request; waits (BIND_WAIT_MS at a time,
 * BIND_WAIT_TRIES times) while its binding is pending (a first DNS answer). */
static void route_step(hx *h)
{
    struct h1d *d = h->d;
    mesh_router *rt = d->rt;
    const char *party = xport_peer_identity(&d->x);
    const char *host = pair_get(&h->hdrs, h->nhdrs, "host");
    const char *ov = rt->rc->allow_dtab_override ? pair_get(&h->hdrs, h->nhdrs, "l5d-dtab") : NULL;
    char why[512];
    int rc = mesh_route_request(rt, ov, &h->route, why, sizeof(why));
    if (rc == AG_E_AGAIN && h->bind_waits < BIND_WAIT_TRIES &&
        mesh_timer_arm(rt->m, &h->timer, h, on_bind_wait, BIND_WAIT_MS)) {
        h->bind_waits++;
        return;
    }
    if (rc == AG_E_MESH_ROUTE) {
        hx_fail(h, 404, "%s", why);
        return;
    }
    if (rc < 0) {
        hx_fail(h, 503, "%s", why);
        return;
    }
    h->routed = true;
    h->route.cl->refs++;
    /* the request head, for the endpoint */
    const char *conn = pair_get(&h->hdrs, h->nhdrs, "connection");
    ag_buf head;
    ag_buf_init(&head, 1 << 20);
    rc = ag_buf_printf(&head, "%s %s HTTP/1.1\r\n", h->method, (const char *)h->url.data);
    const char *q = (const char *)h->hdrs.data;
    for (size_t i = 0; rc == 0 && i < h->nhdrs; i++) {
        const char *v = q + strlen(q) + 1;
        if (!hop_by_hop(q, conn) && !(h->req_chunked && strcasecmp(q, "content-length") == 0) &&
            strcasecmp(q, rt->rc->identity_header) != 0)
            rc = ag_buf_printf(&head, "%s: %s\r\n", q, v);
        q = v + strlen(v) + 1;
    }
    if (rc == 0 && !host)
        rc = ag_buf_printf(&head, "Host: %s\r\n", h->route.cl->id);
    if (rc == 0 && party)
        rc = ag_buf_printf(&head, "%s: %s\r\n", rt->rc->identity_header, party);
    if (rc == 0 && h->req_chunked)
        rc = ag_buf_append_str(&head, "Transfer-Encoding: chunked\r\n");
    if (rc == 0)
        rc = ag_buf_append_str(&head, "\r\n");
    if (rc == 0)
        rc = req_put(h, head.data, head.len);
    ag_buf_cleanup(&head);
    if (rc < 0) {
        hx_fail(h, 502, "request head too large");
        return;
    }
    uint64_t tmo = h->route.sc->total_timeout_ms;
    if (tmo > 0)
        mesh_timer_arm(rt->m, &h->timer, h, on_deadline, tmo);
    hx_dispatch(h);
}

static void on_header_timeout(xport *x)
{
    struct h1d *d = (struct h1d *)x;
    hx *h = d->cur;
    if (h && !h->routed && !h->resp_begun) {
        h->keep_alive = false;
        h->req_end = true;   /* what follows is not read */
        d->closing = true;
        hx_fail(h, 408, "the request's headers did not arrive within %llu ms",
                (unsigned long long)d->rt->rc->header_timeout_ms);
    } else {
        xport_close(x, "request timeout");
    }
}

static void on_idle_timeout(xport *x)
{
    struct h1d *d = (struct h1d *)x;
    if (!d->cur)
        xport_close(x, "idle");
}

static int d_on_message_begin(http_parser *p)
{
    struct h1d *d = p->data;
    xport_set_timeout(&d->x, d->rt->rc->header_timeout_ms, on_header_timeout);
    hx *h = ag_calloc(1, sizeof(*h));
    if (!h)
        return -1;
    h->d = d;
    h->start_ns = ag_now_ns();
    h->replayable = true;
    ag_buf_init(&h->url, 8192);
    ag_buf_init(&h->hdrs, d->rt->rc->max_header_bytes + 4096);
    ag_buf_init(&h->pend, BUF_MAX);
    ag_buf_init(&h->replay, REPLAY_MAX);
    ag_buf_init(&h->rhdrs, 1 << 20);
    d->cur = h;
    d->hdr_bytes = 0;
    d->too_large = false;
    d->in_value = false;
    ag_buf_reset(&d->field);
    ag_buf_reset(&d->value);
    return 0;
}

static int d_on_url(http_parser *p, const char *at, size_t len)
{
    struct h1d *d = p->data;
    d->hdr_bytes += len;
    if (ag_buf_append(&d->cur->url, at, len) < 0) {
        d->too_large = true;
        return 0;
    }
    return 0;
}

static int d_on_field(http_parser *p, const char *at, size_t len)
{
    struct h1d *d = p->data;
    hx *h = d->cur;
    d->hdr_bytes += len;
    if (d->hdr_bytes > d->rt->rc->max_header_bytes || h->nhdrs >= MAX_HDRS)
        d->too_large = true;
    if (d->too_large)
        return 0;
    if (d->in_value) {
        if (pair_commit(&h->hdrs, &h->nhdrs, &d->field, &d->value) < 0)
            d->too_large = true;
        d->in_value = false;
    }
    if (ag_buf_append(&d->field, at, len) < 0)
        d->too_large = true;
    return 0;
}

static int d_on_value(http_parser *p, const char *at, size_t len)
{
    struct h1d *d = p->data;
    d->hdr_bytes += len;
    if (d->hdr_bytes > d->rt->rc->max_header_bytes)
        d->too_large = true;
    if (d->too_large)
        return 0;
    d->in_value = true;
    if (ag_buf_append(&d->value, at, len) < 0)
        d->too_large = true;
    return 0;
}

static int d_on_headers_complete(http_parser *p)
{
    struct h1d *d = p->data;
    xport_set_timeout(&d->x, 0, NULL);
    hx *h = d->cur;
    if (!d->too_large && d->in_value &&
        pair_commit(&h->hdrs, &h->nhdrs, &d->field, &d->value) < 0)
        d->too_large = true;
    d->in_value = false;
    snprintf(h->method, sizeof(h->method), "%s", http_method_str((enum http_method)p->method));
    h->head = p->method == HTTP_HEAD;
    h->http10 = p->http_major == 1 && p->http_minor == 0;
    h->keep_alive = http_should_keep_alive(p) && !d->closing;
    h->req_chunked = (p->flags & F_CHUNKED) != 0;
    bool has_body = h->req_chunked || pair_get(&h->hdrs, h->nhdrs, "content-length");
    h->req_end = !has_body;
    if (d->too_large) {
        h->keep_alive = false;
        hx_fail(h, 431, "request header block over %zu bytes", d->rt->rc->max_header_bytes);
        return 0;
    }
    if (p->upgrade || p->method == HTTP_CONNECT) {
        h->keep_alive = false;
        hx_fail(h, 501, "%s is not supported", p->upgrade ? "Upgrade" : "CONNECT");
        return 1;
    }
    route_and_go(h);
    return 0;
}

static int d_on_body(http_parser *p, const char *at, size_t len)
{
    struct h1d *d = p->data;
    hx *h = d->cur;
    if (!h || h->local || h->resp_end)
        return 0;   /* answered already: dropped */
    int rc = 0;
    if (h->req_chunked) {
        char hdr[24];
        int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
        rc = req_put(h, hdr, (size_t)n);
        if (rc == 0)
            rc = req_put(h, at, len);
        if (rc == 0)
            rc = req_put(h, "\r\n", 2);
    } else {
        rc = req_put(h, at, len);
    }
    return rc < 0 ? -1 : 0;
}

static int d_on_message_complete(http_parser *p)
{
    struct h1d *d = p->data;
    hx *h = d->cur;
    if (!h)
        return 0;
    if (!h->local && !h->resp_end && h->req_chunked && req_put(h, "0\r\n\r\n", 5) < 0)
        return -1;
    h->req_end = true;
    if (h->resp_end) {
        /* answered before the request was whole (a local error, or an
         * early response): the exchange ends now */
        hx_finish(h);
    }
    /* the next request waits for this one's response */
    if (d->cur)
        d->waiting = true;
    http_parser_pause(p, 1);
    return 0;
}

/* Parses what is buffered: a request's head and body; after a request
 * is whole, the parser stops until its response is out (pipelined
 * requests wait in d->in, in order). Never nested: callbacks that end an
 * exchange (hx_finish) call it, and it returns at once inside itself. */
static void d_parse(struct h1d *d)
{
    if (d->parsing)
        return;
    d->parsing = true;
    while (d->in.len > 0 && !d->closing && !d->x.closing) {
        if (d->cur && d->waiting)
            break;
        if (!d->cur) {
            d->waiting = false;
            http_parser_pause(&d->p, 0);
        }
        size_t n = http_parser_execute(&d->p, &dset, (const char *)d->in.data, d->in.len);
        enum http_errno e = HTTP_PARSER_ERRNO(&d->p);
        ag_buf_consume(&d->in, n);
        if (e == HPE_PAUSED) {
            if (d->cur)
                d->waiting = true;
            continue;
        }
        if (e != HPE_OK) {
            d->closing = true;
            if (!d->cur || !d->cur->resp_begun) {
                const char *why = http_errno_description(e);
                if (ag_buf_printf(&d->out,
                                  "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                                  strlen(why) + 1, why) < 0)
                    xport_close(&d->x, "malformed request");
            }
            if (d->cur && !d->cur->resp_end) {
                hx *h = d->cur;
                d->cur = NULL;
                hx_record(h, false);
                hx_free(h);
            }
            AG_LOG(AG_LOG_DEBUG, "mesh", "bad_request router=%s peer=%s why=\"%s\"",
                   d->rt->rc->label, d->x.peer, http_errno_description(e));
            xport_mark(&d->x);
            break;
        }
        if (n == 0)
            break;
    }
    d->parsing = false;
    bool want_pause = d->in.len > HIGH_WATER || (d->cur && d->cur->u && d->cur->u->out.len > HIGH_WATER) ||
                      (d->cur && d->cur->pend.len > HIGH_WATER);
    if (want_pause != d->reading_paused) {
        d->reading_paused = want_pause;
        xport_pause(&d->x, want_pause);
    }
}

static int d_recv(xport *x, const uint8_t *p, size_t n)
{
    struct h1d *d = (struct h1d *)x;
    if (d->closing && !d->cur)
        return 0;
    if (ag_buf_append(&d->in, p, n) < 0) {
        snprintf(x->why, sizeof(x->why), "too many bytes waiting from the client");
        return -1;
    }
    d_parse(d);
    return 0;
}

static int d_produce(xport *x, ag_buf *out)
{
    struct h1d *d = (struct h1d *)x;
    if (d->out.len > 0) {
        size_t room = out->len < (256u << 10) ? (256u << 10) - out->len : 0;
        size_t n = AG_MIN(room, d->out.len);
        if (n > 0) {
            if (ag_buf_append(out, d->out.data, n) < 0)
                return -1;
            ag_buf_consume(&d->out, n);
        }
        /* the endpoint may read again */
        if (d->out.len < HIGH_WATER / 2 && d->cur && d->cur->u && d->cur->u->x.paused)
            xport_pause(&d->cur->u->x, false);
    }
    if (d->out.len == 0 && d->closing && !d->cur)
        x->drain = true;
    return 0;
}

static void d_up(xport *x)
{
    struct h1d *d = (struct h1d *)x;
    xport_set_timeout(x, d->rt->rc->idle_timeout_ms, on_idle_timeout);
}

static void d_closed(xport *x, const char *why)
{
    struct h1d *d = (struct h1d *)x;
    mesh_router *rt = d->rt;
    AG_LOG(AG_LOG_DEBUG, "mesh", "conn_close router=%s peer=%s why=\"%s\"", rt->rc->label,
           x->peer, why);
    if (d->cur) {
        hx *h = d->cur;
        d->cur = NULL;
        if (!h->recorded)
            hx_record(h, false);
        hx_free(h);
    }
    if (d->prev)
        d->prev->next = d->next;
    else
        rt->conns = d->next;
    if (d->next)
        d->next->prev = d->prev;
    rt->nconns--;
    ag_metric_add(rt->m->mt.conns, -1, rt->rc->label, "server");
    ag_buf_cleanup(&d->out);
    ag_buf_cleanup(&d->in);
    ag_buf_cleanup(&d->field);
    ag_buf_cleanup(&d->value);
    ag_free(d);
}

static const xport_ops dops = {d_recv, d_produce, d_up, d_closed};

static void settings_init(void)
{
    if (dset.on_message_begin)
        return;
    http_parser_settings_init(&dset);
    dset.on_message_begin = d_on_message_begin;
    dset.on_url = d_on_url;
    dset.on_header_field = d_on_field;
    dset.on_header_value = d_on_value;
    dset.on_headers_complete = d_on_headers_complete;
    dset.on_body = d_on_body;
    dset.on_message_complete = d_on_message_complete;
    http_parser_settings_init(&uset);
    uset.on_header_field = u_on_field;
    uset.on_header_value = u_on_value;
    uset.on_headers_complete = u_on_headers_complete;
    uset.on_body = u_on_body;
    uset.on_message_complete = u_on_message_complete;
}

void mesh_h1_accept(mesh_listener *l)
{
    mesh_router *rt = l->rt;
    settings_init();
    struct h1d *d = ag_calloc(1, sizeof(*d));
    if (!d)
        return;
    d->rt = rt;
    http_parser_init(&d->p, HTTP_REQUEST);
    d->p.data = d;
    ag_buf_init(&d->out, BUF_MAX);
    ag_buf_init(&d->in, BUF_MAX);
    ag_buf_init(&d->field, 1024);
    ag_buf_init(&d->value, rt->rc->max_header_bytes + 1024);
    xport_init(&d->x, &rt->m->loop, &dops, d);
    d->next = rt->conns;
    if (rt->conns)
        ((struct h1d *)rt->conns)->prev = d;
    rt->conns = d;
    rt->nconns++;
    ag_metric_add(rt->m->mt.conns, 1, rt->rc->label, "server");
    xport_accept(&d->x, (uv_stream_t *)&l->tcp, l->tls, 10000);
}

void mesh_h1_drain(mesh_router *rt)
{
    for (struct h1d *d = rt->conns; d; d = d->next) {
        d->closing = true;
        if (!d->cur)
            xport_drain(&d->x);
    }
}

void mesh_h1_close_all(mesh_router *rt)
{
    for (struct h1d *d = rt->conns; d; d = d->next)
        xport_close(&d->x, "shutting down");
}
