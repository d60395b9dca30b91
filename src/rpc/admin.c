/*
 * The admin endpoint (rpc.h, "admin endpoint"): routes, the built-in
 * handlers (/metrics, /healthz, /ready) and the libuv glue that runs one
 * HTTP/1.1 core (http1.c) per connection.
 *
 * Threads: ag_admin_new, _route, _start, _shutdown and _free run on the
 * owner's thread; everything else (accepting, reading, the handlers,
 * writing, timers) on the admin loop's thread. Routes are fixed before the
 * loop starts, so the loop reads them without a lock.
 *
 * A connection's life:
 *   READING   read bytes go to the core; its output is written, one write in
 *             flight; while the core holds back (output past its high-water
 *             mark), reading stops and the unread rest waits in rbuf; a timer
 *             runs: the request timeout while a request is under way, the
 *             idle timeout between requests.
 *   LINGERING the core is closing: once its output is written, our side is
 *             shut down (FIN) and what the client still sends is read and
 *             dropped, for up to LINGER_MS or until its FIN, so that a client
 *             still sending (a header block over the limit) is not sent an
 *             RST that would destroy the response before it reads it.
 *   CLOSED    both handles closing; the memory goes with the last one.
 * A timer that fires while a write is still in flight (a client that stops
 * reading) leaves the write LINGER_MS to finish before the connection is cut.
 * ag_admin_shutdown closes every connection at once, whatever its state.
 */
#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http1.h"
#include "rt.h"

#define LINGER_MS 2000

struct route {
    struct route *next;
    char *method;
    char *path;
    ag_admin_handler h;
    void *ud;
};

enum tmode { T_NONE, T_IDLE, T_REQUEST, T_LINGER };

struct aconn {
    struct aconn *next, *prev; /* in the admin's list */
    ag_admin *a;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    ag__http *core;
    ag_buf wbuf; /* the write in flight */
    bool writing;
    bool shut; /* our FIN is queued: lingering */
    bool eof;  /* the client's FIN came */
    bool closed;
    int handles; /* open handles: the memory goes at 0 */
    enum tmode tmode;
    uint64_t served_at_arm; /* the core's served count when the timer was armed */
    size_t pend_off;        /* rbuf[pend_off, pend_off + pend_len): read, not yet fed */
    size_t pend_len;
    uint8_t rbuf[16 * 1024];
};

struct ag_admin {
    ag_admin_opts o;
    ag_errbuf err;
    struct route *routes;
    ag__loop loop;
    uv_tcp_t lis;
    bool loop_inited;
    bool lis_inited;
    bool started;
    bool stopped;
    int port;
    struct aconn *conns;
    unsigned nconns;
};

/* ---- requests and responses ------------------------------------------------------- */

const char *ag_admin_request_header(const ag_admin_request *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static bool token_char(unsigned char c)
{
    return c > 32 && c < 127 && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

int ag_admin_response_header(ag_admin_response *r, const char *name, const char *value)
{
    if (!*name)
        return AG_E_INVAL;
    for (const char *p = name; *p; p++)
        if (!token_char((unsigned char)*p))
            return AG_E_INVAL;
    if (strpbrk(value, "\r\n"))
        return AG_E_INVAL;
    return ag_buf_printf(&r->headers, "%s: %s\r\n", name, value);
}

/* ---- routes and the built-in handlers ------------------------------------------------- */

static bool method_known(const char *m)
{
    for (int i = 0;; i++) {
        const char *s = http_method_str((enum http_method)i);
        if (s[0] == '<')
            return false;
        if (strcmp(s, m) == 0)
            return true;
    }
}

static int add_route(ag_admin *a, const char *method, const char *path, ag_admin_handler h,
                     void *ud)
{
    if (a->started)
        return ag_errbuf_set(&a->err, AG_E_STATE, "routes are added before start");
    if (!method || !method_known(method))
        return ag_errbuf_set(&a->err, AG_E_INVAL, "unknown HTTP method '%.32s'",
                             method ? method : "(null)");
    if (!path || path[0] != '/' || !h)
        return ag_errbuf_set(&a->err, AG_E_INVAL, "%.200s: a route's path starts with '/'",
                             path ? path : "(null)");
    for (struct route *r = a->routes; r; r = r->next)
        if (strcmp(r->method, method) == 0 && strcmp(r->path, path) == 0)
            return ag_errbuf_set(&a->err, AG_E_EXISTS, "%s %.200s: a route exists already", method,
                                 path);
    struct route *r = ag_calloc(1, sizeof(*r));
    if (!r)
        return ag_errbuf_set(&a->err, AG_E_NOMEM, "out of memory");
    r->method = ag_strdup(method);
    r->path = ag_strdup(path);
    if (!r->method || !r->path) {
        ag_free(r->method);
        ag_free(r->path);
        ag_free(r);
        return ag_errbuf_set(&a->err, AG_E_NOMEM, "out of memory");
    }
    r->h = h;
    r->ud = ud;
    /* at the end: the Allow header lists methods in the order they were added */
    struct route **tail = &a->routes;
    while (*tail)
        tail = &(*tail)->next;
    *tail = r;
    return 0;
}

int ag_admin_route(ag_admin *a, const char *method, const char *path, ag_admin_handler h, void *ud)
{
    return add_route(a, method, path, h, ud);
}

static int h_metrics(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    (void)req;
    ag_admin *a = ud;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return ag_metrics_render(a->o.metrics, &resp->body);
}

static int h_health(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    (void)req;
    ag_admin *a = ud;
    bool serving = !a->o.serving || a->o.serving(a->o.serving_ud);
    resp->status = serving ? 200 : 503;
    return ag_buf_append_str(&resp->body, serving ? "ok\n" : "not serving\n");
}

/* Sets a plain-text response with no extra headers. */
static void plain(ag_admin_response *resp, int status, const char *text)
{
    ag_buf_reset(&resp->body);
    ag_buf_reset(&resp->headers);
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    if (ag_buf_append_str(&resp->body, text) < 0)
        resp->status = 500;
}

/* 405's Allow: the methods of the routes on path, HEAD after GET. */
static int allow_header(ag_admin *a, const char *path, ag_admin_response *resp)
{
    char allow[256];
    size_t n = 0;
    allow[0] = '\0';
    for (struct route *r = a->routes; r; r = r->next) {
        if (strcmp(r->path, path) != 0)
            continue;
        bool get = strcmp(r->method, "GET") == 0;
        int k = snprintf(allow + n, sizeof(allow) - n, "%s%s%s", n ? ", " : "", r->method,
                         get ? ", HEAD" : "");
        if (k < 0 || (size_t)k >= sizeof(allow) - n)
            break;
        n += (size_t)k;
    }
    return ag_admin_response_header(resp, "Allow", allow);
}

/* The core's serve function: finds the route and runs its handler. */
static void serve(void *ud, const ag_admin_request *req, ag_admin_response *resp)
{
    ag_admin *a = ud;
    const char *m = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    struct route *match = NULL;
    bool path_known = false;
    for (struct route *r = a->routes; r && !match; r = r->next) {
        if (strcmp(r->path, req->path) != 0)
            continue;
        path_known = true;
        if (strcmp(r->method, m) == 0)
            match = r;
    }
    if (!path_known) {
        plain(resp, 404, "not found\n");
        return;
    }
    if (!match) {
        plain(resp, 405, "method not allowed\n");
        if (allow_header(a, req->path, resp) < 0)
            plain(resp, 500, "internal error\n");
        return;
    }
    int rc = match->h(req, resp, match->ud);
    if (rc < 0) {
        AG_LOG(AG_LOG_WARN, "admin", "handler_failed method=%s path=%s err=%s", match->method,
               match->path, ag_err_name(rc));
        plain(resp, 500, "internal error\n");
    }
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

void ag_admin_opts_init(ag_admin_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_header = 16 * 1024;
    o->max_body = 1024 * 1024;
    o->request_timeout_ms = 10000;
    o->idle_timeout_ms = 60000;
    o->max_conns = 256;
}

ag_admin *ag_admin_new(const ag_admin_opts *o)
{
    ag_admin *a = ag_calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    ag_admin_opts_init(&a->o);
    if (o)
        a->o = *o;
    ag_admin_opts d;
    ag_admin_opts_init(&d);
    if (!a->o.max_header)
        a->o.max_header = d.max_header;
    if (!a->o.max_body)
        a->o.max_body = d.max_body;
    if (!a->o.request_timeout_ms)
        a->o.request_timeout_ms = d.request_timeout_ms;
    if (!a->o.idle_timeout_ms)
        a->o.idle_timeout_ms = d.idle_timeout_ms;
    if (!a->o.max_conns)
        a->o.max_conns = d.max_conns;
    if ((a->o.metrics && add_route(a, "GET", "/metrics", h_metrics, a) < 0) ||
        add_route(a, "GET", "/healthz", h_health, a) < 0 ||
        add_route(a, "GET", "/ready", h_health, a) < 0) {
        ag_admin_free(a);
        return NULL;
    }
    return a;
}

const char *ag_admin_errmsg(const ag_admin *a)
{
    return a->err.msg;
}

int ag_admin_port(const ag_admin *a)
{
    return a->port;
}

/* ---- connections (loop side) ------------------------------------------------------------------
 */

static void conn_handle_closed(uv_handle_t *hd)
{
    struct aconn *c = hd->data;
    if (--c->handles > 0)
        return;
    ag__http_free(c->core);
    ag_buf_cleanup(&c->wbuf);
    ag_free(c);
}

static void conn_close(struct aconn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    ag_admin *a = c->a;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->nconns--;
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void after_io(struct aconn *c);

static void arm(struct aconn *c, enum tmode mode, uint64_t ms);

static void on_timer(uv_timer_t *t)
{
    struct aconn *c = t->data;
    if (c->tmode == T_LINGER) {
        conn_close(c);
        return;
    }
    c->tmode = T_NONE;
    ag__http_timeout(c->core); /* 408 if a request is under way; closing either way */
    after_io(c);
    /* a write still in flight (a client that does not read) gets LINGER_MS
     * more, then the connection is cut: it cannot hold its slot for ever */
    if (!c->closed && !c->shut)
        arm(c, T_LINGER, LINGER_MS);
}

static void arm(struct aconn *c, enum tmode mode, uint64_t ms)
{
    c->tmode = mode;
    c->served_at_arm = ag__http_served(c->core);
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void alloc_cb(uv_handle_t *hd, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct aconn *c = hd->data;
    buf->base = (char *)c->rbuf;
    buf->len = sizeof(c->rbuf);
}

/* Feeds what waits in rbuf (read while the core held back). */
static void feed_pending(struct aconn *c)
{
    size_t k = ag__http_feed(c->core, c->rbuf + c->pend_off, c->pend_len);
    c->pend_off += k;
    c->pend_len -= k;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct aconn *c = s->data;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF || c->shut) {
            conn_close(c); /* an error, or the end of lingering */
            return;
        }
        c->eof = true;
        uv_read_stop(s);
        ag__http_eof(c->core);
        after_io(c);
        return;
    }
    if (c->shut)
        return; /* lingering: dropped */
    c->pend_off = 0;
    c->pend_len = (size_t)nread;
    size_t k = ag__http_feed(c->core, c->rbuf, c->pend_len);
    c->pend_off = k;
    c->pend_len -= k;
    if (c->pend_len > 0)
        uv_read_stop(s); /* the core holds back: resume once written */
    after_io(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct aconn *c = req->data;
    if (c->closed)
        return;
    if (status < 0 || c->eof) {
        conn_close(c);
        return;
    }
    /* linger: read and drop until the client's FIN or the timer */
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    arm(c, T_LINGER, LINGER_MS);
}

static void on_write(uv_write_t *req, int status)
{
    struct aconn *c = req->data;
    c->writing = false;
    ag_buf_reset(&c->wbuf);
    if (c->closed)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->pend_len > 0 && !ag__http_closing(c->core)) {
        feed_pending(c);
        if (c->pend_len == 0 && !ag__http_closing(c->core) && !c->eof)
            uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    }
    after_io(c);
}

/* After any event: write what the core has, shut down once it is closing
 * and all is written, and keep the right timer running. */
static void after_io(struct aconn *c)
{
    if (c->closed || c->shut)
        return;
    if (!c->writing && ag__http_out(c->core)->len > 0) {
        ag__http_take_out(c->core, &c->wbuf);
        uv_buf_t b = uv_buf_init((char *)c->wbuf.data, (unsigned)c->wbuf.len);
        c->wreq.data = c;
        if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
            conn_close(c);
            return;
        }
        c->writing = true;
    }
    if (ag__http_closing(c->core)) {
        if (c->writing)
            return;
        c->shut = true;
        uv_timer_stop(&c->timer);
        c->sreq.data = c;
        if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
            conn_close(c);
        return;
    }
    ag_admin *a = c->a;
    if (ag__http_busy(c->core)) {
        if (c->tmode != T_REQUEST || c->served_at_arm != ag__http_served(c->core))
            arm(c, T_REQUEST, a->o.request_timeout_ms); /* from this request's first bytes */
    } else if (c->tmode != T_IDLE || c->served_at_arm != ag__http_served(c->core)) {
        arm(c, T_IDLE, a->o.idle_timeout_ms);
    }
}

static void free_handle(uv_handle_t *hd)
{
    ag_free(hd);
}

/* Accepts and closes at once (past max_conns, or when out of memory). */
static void refuse_conn(uv_stream_t *lis)
{
    uv_tcp_t *t = ag_malloc(sizeof(*t));
    if (!t)
        return; /* libuv stops accepting until a later accept: out of memory anyway */
    uv_tcp_init(lis->loop, t);
    uv_accept(lis, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, free_handle);
}

static void on_connection(uv_stream_t *lis, int status)
{
    ag_admin *a = lis->data;
    if (status < 0)
        return;
    struct aconn *c = a->nconns < a->o.max_conns ? ag_calloc(1, sizeof(*c)) : NULL;
    if (c)
        c->core = ag__http_new(a->o.max_header, a->o.max_body, serve, a);
    if (!c || !c->core) {
        if (c)
            ag_free(c);
        refuse_conn(lis);
        return;
    }
    c->a = a;
    ag_buf_init(&c->wbuf, ag__http_out(c->core)->max);
    uv_tcp_init(lis->loop, &c->tcp);
    uv_timer_init(lis->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->nconns++;
    if (uv_accept(lis, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read) != 0) {
        conn_close(c);
        return;
    }
    after_io(c); /* the idle timer: a client that never sends goes too */
}

/* ---- start and shutdown -------------------------------------------------------------------- */

int ag_admin_start(ag_admin *a, const char *addr)
{
    if (a->started || a->stopped)
        return ag_errbuf_set(&a->err, AG_E_STATE, "the admin endpoint has started already");
    int rc = ag__loop_init(&a->loop);
    if (rc < 0)
        return ag_errbuf_set(&a->err, rc, "cannot start an event loop");
    a->loop_inited = true;
    int fd = ag__tcp_listen(addr, "host:port", &a->port, &a->err);
    if (fd < 0) {
        rc = fd;
        goto fail_loop;
    }
    uv_tcp_init(&a->loop.uv, &a->lis);
    a->lis_inited = true;
    a->lis.data = a;
    int r = uv_tcp_open(&a->lis, fd);
    if (r != 0) {
        close(fd); /* not the handle's */
    } else {
        r = uv_listen((uv_stream_t *)&a->lis, 128, on_connection);
    }
    if (r != 0) {
        rc = ag_errbuf_set(&a->err, AG_E_SYS, "%s: cannot listen: %s", addr, uv_strerror(r));
        goto fail_loop;
    }
    a->started = true; /* routes are fixed from here: the loop reads them */
    rc = ag__loop_start(&a->loop, "admin");
    if (rc < 0) {
        a->started = false;
        ag_errbuf_set(&a->err, rc, "cannot start the admin thread");
        goto fail_loop;
    }
    AG_LOG(AG_LOG_INFO, "admin", "listening addr=%s port=%d", addr, a->port);
    return 0;

fail_loop:
    if (a->lis_inited)
        uv_close((uv_handle_t *)&a->lis, NULL);
    a->lis_inited = false;
    ag__loop_stop(&a->loop); /* runs the loop here until the closes are done */
    a->loop_inited = false;
    return rc;
}

/* Loop side: stop listening, close every connection now. */
static void task_close_all(void *arg)
{
    ag_admin *a = arg;
    uv_close((uv_handle_t *)&a->lis, NULL);
    while (a->conns)
        conn_close(a->conns);
}

void ag_admin_shutdown(ag_admin *a)
{
    if (!a->started || a->stopped)
        return;
    a->stopped = true;
    /* the loop ends only once every handle is closed: this task must go */
    while (ag__loop_post(&a->loop, task_close_all, a) < 0)
        ag_sleep_ms(1);
    ag__loop_stop(&a->loop);
}

void ag_admin_free(ag_admin *a)
{
    if (!a)
        return;
    ag_admin_shutdown(a);
    for (struct route *r = a->routes, *n; r; r = n) {
        n = r->next;
        ag_free(r->method);
        ag_free(r->path);
        ag_free(r);
    }
    ag_free(a);
}
