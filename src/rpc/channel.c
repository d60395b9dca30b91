/*
 * The client channel: one event-loop thread and one HTTP/2 connection to
 * a target ("host:port" or "unix:/path"), shared by every call. The
 * connection is made when the first call starts (and again after it is
 * lost); calls that start while it is being made wait in a list and go
 * when it is up, or fail with UNAVAILABLE naming the target and the reason
 * when it cannot be made.
 *
 * States: IDLE -> RESOLVING -> CONNECTING -> READY, and with TLS a
 * HANDSHAKE step before READY, which ends when the connection says it is
 * ready (conn.c: the handshake is done and the server's first bytes came
 * through). connect_timeout_ms covers everything before READY. Any failure
 * before READY fails the waiting calls with "cannot connect to TARGET:
 * REASON" and goes back to IDLE; the next call tries again.
 *
 * TLS files are loaded once, by ag_rpc_channel_new, into a context every
 * connection shares. If they cannot be used, the channel is lame: it keeps
 * the message, and every call fails at once with it.
 *
 * Loop side: the connection, its state and the waiting list. The
 * application's calls reach it through tasks (call.c's OP_START).
 */
#include <stdio.h>
#include <string.h>

#include "rt.h"

enum ch_state { CH_IDLE, CH_RESOLVING, CH_CONNECTING, CH_HANDSHAKE, CH_READY };

struct waiter {
    struct waiter *next;
    ag_rpc_call *c;
};

struct ag_rpc_channel {
    char *target;
    ag_rpc_channel_opts o;
    ag__loop loop;
    /* loop side */
    enum ch_state state;
    ag__conn *conn;
    struct waiter *waiting;
    uv_getaddrinfo_t gai;
    struct addrinfo *ai_head; /* the resolved addresses, tried in order */
    struct addrinfo *ai_next; /* the next one to try */
    unsigned ai_tried;
    uv_connect_t creq;
    uv_timer_t ctimer;
    bool ctimer_on;
    char host[256];
    char port[16];
    bool is_unix;
    bool closing;       /* loop side: the channel is being freed */
    ag__tls_ctx *tls;   /* NULL: plaintext (read-only after new) */
    bool lame;          /* the TLS setup failed: every call fails with err */
    /* loop side: reconnect backoff and keepalive */
    uint64_t backoff_ms;   /* the next backoff (0: the initial one) */
    uint64_t retry_at_ns;  /* no new attempt before this (after a failure) */
    char last_err[AG_ERRMSG_MAX + 300]; /* the failure that set it */
    uint64_t jitter_state;
    uint64_t ka_time_ms;   /* doubled by each "too_many_pings" */
    ag_errbuf err;      /* why it is lame (set by new, then read-only) */
};

void ag_rpc_channel_opts_init(ag_rpc_channel_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_recv_msg = AG__GRPC_DEFAULT_MAX_RECV;
    o->connect_timeout_ms = 20000;
    o->backoff_initial_ms = 1000;
    o->backoff_max_ms = 120000;
    o->keepalive_timeout_ms = 20000;
}

const char *ag_rpc_channel_errmsg(const ag_rpc_channel *ch)
{
    return ch->err.msg;
}

/* Fails a call that never reached a connection (no loop reference), and
 * drops the operations that waited for its stream (loop side). */
static void fail_unstarted(ag_rpc_call *c, int status, const char *msg)
{
    ag__call_drop_pending(c);
    pthread_mutex_lock(&c->mu);
    c->done = c->recv_end = true;
    c->status = status;
    ag_free(c->message);
    c->message = ag_strdup(msg);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void fail_waiting(ag_rpc_channel *ch, int status, const char *msg)
{
    while (ch->waiting) {
        struct waiter *w = ch->waiting;
        ch->waiting = w->next;
        fail_unstarted(w->c, status, msg);
        ag__call_unref(w->c); /* the list's reference */
        ag_free(w);
    }
}

/* ---- the connection core's events ------------------------------------------------ */

static void ev_message(void *ud, ag__h2call *h, uint8_t *msg, size_t len)
{
    (void)ud;
    ag__call_on_message(ag__h2call_owner(h), msg, len, ag__h2call_last_compressed(h));
}

static void ev_headers(void *ud, ag__h2call *h)
{
    (void)ud;
    ag__call_on_headers(ag__h2call_owner(h), ag__h2call_md(h));
}

static void ev_done(void *ud, ag__h2call *h, int status, const char *msg)
{
    (void)ud;
    ag_rpc_call *c = ag__h2call_owner(h);
    if (c)
        ag__call_on_done(c, ag__h2call_trailers(h), status, msg);
}

static const ag__h2_events ch_events = {NULL, ev_message, NULL, ev_headers, ev_done};

static void connect_failed(ag_rpc_channel *ch, const char *why);
static void stop_ctimer(ag_rpc_channel *ch);
static void conn_ready(void *owner, ag__conn *c);

static void conn_closed(void *owner, ag__conn *c, int status, const char *why)
{
    (void)status;
    ag_rpc_channel *ch = owner;
    if (ch->conn != c)
        return;
    bool before_ready = ch->state == CH_CONNECTING || ch->state == CH_HANDSHAKE;
    if (c->too_many_pings && ch->ka_time_ms) {
        /* the server's policy is stricter than our keepalive: halve the rate */
        ch->ka_time_ms = ch->ka_time_ms > UINT64_MAX / 2 ? UINT64_MAX : ch->ka_time_ms * 2;
        AG_LOG(AG_LOG_WARN, "rpc", "keepalive_backoff target=%s time_ms=%llu why=too_many_pings",
                    ch->target, (unsigned long long)ch->ka_time_ms);
    }
    ch->conn = NULL;
    ch->state = CH_IDLE;
    if (before_ready) { /* the waiting calls never got their connection */
        stop_ctimer(ch);
        connect_failed(ch, why);
    }
}

static const ag__conn_owner_ops ch_conn_ops = {conn_ready, conn_closed};

/* ---- starting calls ------------------------------------------------------------------- */

static void connect_start(ag_rpc_channel *ch);

/* Loop side: puts the call on the connection, or in the waiting list. */
static void start_on_conn(ag_rpc_channel *ch, ag_rpc_call *c)
{
    ag__md_list md = {0};
    pthread_mutex_lock(&c->mu);
    bool cancelled = c->cancelled;
    ag__grpc_encoding enc = c->send_enc;
    md = c->out_md;
    memset(&c->out_md, 0, sizeof(c->out_md));
    pthread_mutex_unlock(&c->mu);
    if (cancelled) {
        fail_unstarted(c, AG_RPC_CANCELLED, "cancelled by the application");
        ag__md_free(&md);
        return;
    }
    uint64_t tmo = UINT64_MAX;
    if (!ag_deadline_is_never(c->deadline)) {
        uint64_t now = ag_now_ns();
        tmo = c->deadline.at_ns > now ? c->deadline.at_ns - now : 1;
    }
    ag__h2call *h = ag__h2conn_call_start(ch->conn->h2, c->method, tmo, &md, enc);
    ag__md_free(&md);
    if (!h) {
        fail_unstarted(c, ag__h2conn_errcode(ch->conn->h2) == AG_E_CLOSED ? AG_RPC_UNAVAILABLE
                                                                          : AG_RPC_INTERNAL,
                       ag__h2conn_errmsg(ch->conn->h2));
        return;
    }
    ag__call_attach(c, ch->conn, h);
    ag__call_arm_deadline(c);
    ag__call_replay(c);
}

void ag__channel_do_start(ag_rpc_call *c)
{
    ag_rpc_channel *ch = c->ch;
    if (ch->lame) {
        char msg[AG_ERRMSG_MAX + 300];
        snprintf(msg, sizeof(msg), "cannot connect to %s: %s", ch->target, ch->err.msg);
        fail_unstarted(c, AG_RPC_UNAVAILABLE, msg);
        return;
    }
    if (ch->state == CH_READY && ch->conn && ch->conn->h2) {
        start_on_conn(ch, c);
        ag__conn_flush(ch->conn);
        return;
    }
    uint64_t now = ag_now_ns();
    if (ch->state == CH_IDLE && now < ch->retry_at_ns) {
        /* backing off: fail fast with the last error, as gRPC does for
         * calls that do not wait for ready */
        char msg[sizeof(ch->last_err) + 64];
        snprintf(msg, sizeof(msg), "%s (next attempt in %llu ms)", ch->last_err,
                 (unsigned long long)((ch->retry_at_ns - now + 999999u) / 1000000u));
        fail_unstarted(c, AG_RPC_UNAVAILABLE, msg);
        return;
    }
    struct waiter *w = ag_malloc(sizeof(*w));
    if (!w) {
        fail_unstarted(c, AG_RPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->refs++; /* the waiting list's */
    pthread_mutex_unlock(&c->mu);
    w->c = c;
    w->next = ch->waiting;
    ch->waiting = w;
    if (ch->state == CH_IDLE)
        connect_start(ch);
}

int ag__channel_start_call(ag_rpc_call *c)
{
    pthread_mutex_lock(&c->mu);
    bool posted = c->start_posted;
    c->start_posted = true;
    pthread_mutex_unlock(&c->mu);
    return posted ? 0 : ag__call_post(c, OP_START, NULL, 0);
}

/* ---- connecting -------------------------------------------------------------------------- */

/* The backoff before the next attempt (doc/connection-backoff.md): the
 * current one with +-20% jitter; the next grows 1.6x up to the maximum. */
static uint64_t next_backoff(ag_rpc_channel *ch)
{
    uint64_t cur = ch->backoff_ms ? ch->backoff_ms : ch->o.backoff_initial_ms;
    uint64_t next = cur + cur * 3 / 5;
    ch->backoff_ms = next > ch->o.backoff_max_ms ? ch->o.backoff_max_ms : next;
    /* xorshift64: jitter needs no cryptographic quality */
    uint64_t x = ch->jitter_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ch->jitter_state = x;
    uint64_t span = cur * 2 / 5; /* 0.8 .. 1.2 of cur */
    return cur - cur / 5 + (span ? x % (span + 1) : 0);
}

static void connect_failed(ag_rpc_channel *ch, const char *why)
{
    snprintf(ch->last_err, sizeof(ch->last_err), "cannot connect to %s: %s", ch->target, why);
    ch->state = CH_IDLE;
    if (!ch->closing)
        ch->retry_at_ns = ag_now_ns() + next_backoff(ch) * 1000000u;
    fail_waiting(ch, AG_RPC_UNAVAILABLE, ch->last_err);
}

static void stop_ctimer(ag_rpc_channel *ch)
{
    if (ch->ctimer_on) {
        ch->ctimer_on = false;
        uv_timer_stop(&ch->ctimer);
    }
}

static void on_raw_closed(uv_handle_t *h)
{
    ag_free(h->data);
}

/* The connection can take calls: start the waiting ones, oldest first. */
static void start_waiting(ag_rpc_channel *ch)
{
    ag__conn *c = ch->conn;
    ch->state = CH_READY;
    ch->backoff_ms = 0;
    ch->retry_at_ns = 0;
    struct waiter *rev = NULL;
    while (ch->waiting) {
        struct waiter *w = ch->waiting;
        ch->waiting = w->next;
        w->next = rev;
        rev = w;
    }
    while (rev) {
        struct waiter *w = rev;
        rev = w->next;
        start_on_conn(ch, w->c);
        ag__call_unref(w->c);
        ag_free(w);
    }
    ag__conn_flush(c);
}

/* TLS: the handshake is done and the server's first bytes came through. */
static void conn_ready(void *owner, ag__conn *c)
{
    ag_rpc_channel *ch = owner;
    if (ch->conn != c || ch->state != CH_HANDSHAKE)
        return;
    stop_ctimer(ch);
    start_waiting(ch);
}

static int connect_next(ag_rpc_channel *ch);
static void free_addrs(ag_rpc_channel *ch);

static void on_connect(uv_connect_t *req, int status)
{
    ag_rpc_channel *ch = req->data;
    ag__conn *c = ch->conn;
    if (status < 0) {
        ch->conn = NULL;
        c->h.stream.data = c;
        if (!uv_is_closing((uv_handle_t *)&c->h.stream))
            uv_close((uv_handle_t *)&c->h.stream, on_raw_closed);
        /* the name's next address, within the same connect timeout */
        while (!ch->closing && status != UV_ECANCELED && ch->ai_next)
            if (connect_next(ch) == 0)
                return;
        stop_ctimer(ch);
        unsigned tried = ch->ai_tried;
        free_addrs(ch);
        char why[160];
        snprintf(why, sizeof(why), "%s%s",
                 ch->closing               ? "the channel was closed"
                 : status == UV_ECANCELED ? "timed out"
                                          : uv_strerror(status),
                 tried > 1 ? " (on every address of the name)" : "");
        connect_failed(ch, why);
        return;
    }
    free_addrs(ch);
    ag__h2_opts o;
    ag__h2_opts_init(&o);
    o.max_recv_msg = ch->o.max_recv_msg;
    o.authority = ch->is_unix ? "localhost" : ch->target;
    o.scheme = ch->tls ? "https" : "http";
    c->client = true;
    c->h2 = ag__h2conn_new(false, &o, &ch_events, c);
    if (c->h2 && ch->tls)
        c->tls = ag__tls_new(ch->tls);
    /* a failure from here on closes the connection; conn_closed then fails
     * the waiting calls (the state is CONNECTING until the end) */
    int rc = !c->h2 || (ch->tls && !c->tls) ? AG_E_NOMEM : ag__conn_start(c);
    if (rc < 0) {
        char why[AG_ERRMSG_MAX + 32];
        if (rc == AG_E_RPC_TLS)
            snprintf(why, sizeof(why), "TLS handshake: %s", ag__tls_errmsg(c->tls));
        else
            snprintf(why, sizeof(why), "%s",
                     rc == AG_E_NOMEM ? "out of memory" : "cannot read from the socket");
        ag__conn_close(c, AG_RPC_UNAVAILABLE, why);
        return;
    }
    if (ch->conn != c) /* closed already: a write failed at once */
        return;
    if (ch->tls) { /* the connect timer runs on: it covers the handshake */
        ch->state = CH_HANDSHAKE;
        return;
    }
    stop_ctimer(ch);
    start_waiting(ch);
}

static void on_connect_timeout(uv_timer_t *t)
{
    ag_rpc_channel *ch = t->data;
    ch->ctimer_on = false;
    ag__conn *c = ch->conn;
    if (ch->state == CH_HANDSHAKE && c) {
        ag__conn_close(c, AG_RPC_UNAVAILABLE, "TLS handshake: timed out");
        return;
    }
    if (ch->state == CH_CONNECTING && c && !uv_is_closing((uv_handle_t *)&c->h.stream)) {
        c->h.stream.data = c;
        uv_close((uv_handle_t *)&c->h.stream, on_raw_closed); /* on_connect sees ECANCELED */
    }
}

static ag__conn *conn_new(ag_rpc_channel *ch)
{
    ag__conn *c = ag_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = &ch->loop;
    c->ops = &ch_conn_ops;
    c->owner = ch;
    c->ka_time_ms = ch->ka_time_ms;
    c->ka_timeout_ms = ch->o.keepalive_timeout_ms;
    c->ka_without_calls = ch->o.keepalive_without_calls;
    return c;
}

static void free_addrs(ag_rpc_channel *ch)
{
    if (ch->ai_head)
        uv_freeaddrinfo(ch->ai_head);
    ch->ai_head = ch->ai_next = NULL;
}

/* Starts connecting to the next resolved address (every one of a DNS
 * name's, in the resolver's order, until one answers). 0, or a negative
 * libuv code when this one could not even start (then try the next). */
static int connect_next(ag_rpc_channel *ch)
{
    struct addrinfo *ai = ch->ai_next;
    ch->ai_next = ai->ai_next;
    ch->ai_tried++;
    ag__conn *c = conn_new(ch);
    if (!c)
        return UV_ENOMEM;
    int r = uv_tcp_init(&ch->loop.uv, &c->h.tcp);
    if (r != 0) {
        ag_free(c);
        return r;
    }
    ch->conn = c;
    ch->state = CH_CONNECTING;
    ch->creq.data = ch;
    r = uv_tcp_connect(&ch->creq, &c->h.tcp, ai->ai_addr, on_connect);
    if (r != 0) {
        ch->conn = NULL;
        c->h.stream.data = c;
        uv_close((uv_handle_t *)&c->h.stream, on_raw_closed);
    }
    return r;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    ag_rpc_channel *ch = req->data;
    if (status < 0 || ch->closing) {
        if (ai)
            uv_freeaddrinfo(ai);
        connect_failed(ch, ch->closing ? "the channel was closed" : uv_strerror(status));
        return;
    }
    ch->ai_head = ch->ai_next = ai;
    ch->ai_tried = 0;
    int r = UV_EAI_NONAME;
    while (ch->ai_next && (r = connect_next(ch)) != 0) {
    }
    if (r != 0) {
        free_addrs(ch);
        connect_failed(ch, uv_strerror(r));
        return;
    }
    uv_timer_start(&ch->ctimer, on_connect_timeout, ch->o.connect_timeout_ms, 0);
    ch->ctimer_on = true;
}

static void connect_start(ag_rpc_channel *ch)
{
    if (ch->is_unix) {
        ag__conn *c = conn_new(ch);
        if (!c || uv_pipe_init(&ch->loop.uv, &c->h.pipe, 0) != 0) {
            ag_free(c);
            connect_failed(ch, "out of memory");
            return;
        }
        ch->conn = c;
        ch->state = CH_CONNECTING;
        ch->creq.data = ch;
        uv_pipe_connect(&ch->creq, &c->h.pipe, ch->target + 5, on_connect);
        uv_timer_start(&ch->ctimer, on_connect_timeout, ch->o.connect_timeout_ms, 0);
        ch->ctimer_on = true;
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    ch->state = CH_RESOLVING;
    ch->gai.data = ch;
    int r = uv_getaddrinfo(&ch->loop.uv, &ch->gai, on_resolved, ch->host, ch->port, &hints);
    if (r != 0)
        connect_failed(ch, uv_strerror(r));
}

/* ---- the channel ---------------------------------------------------------------------------- */

ag_rpc_channel *ag_rpc_channel_new(const char *target, const ag_rpc_channel_opts *o)
{
    ag_rpc_channel *ch = ag_calloc(1, sizeof(*ch));
    if (!ch)
        return NULL;
    if (o)
        ch->o = *o;
    else
        ag_rpc_channel_opts_init(&ch->o);
    if (!ch->o.max_recv_msg)
        ch->o.max_recv_msg = AG__GRPC_DEFAULT_MAX_RECV;
    if (!ch->o.connect_timeout_ms)
        ch->o.connect_timeout_ms = 20000;
    if (!ch->o.backoff_initial_ms)
        ch->o.backoff_initial_ms = 1000;
    if (ch->o.backoff_max_ms < ch->o.backoff_initial_ms)
        ch->o.backoff_max_ms = ch->o.backoff_initial_ms > 120000 ? ch->o.backoff_initial_ms : 120000;
    if (!ch->o.keepalive_timeout_ms)
        ch->o.keepalive_timeout_ms = 20000;
    ch->ka_time_ms = ch->o.keepalive_time_ms;
    ch->jitter_state = ag_now_ns() ^ (uint64_t)(uintptr_t)ch ^ 0x9e3779b97f4a7c15ull;
    if (!ch->jitter_state)
        ch->jitter_state = 1;
    ch->target = ag_strdup(target);
    if (!ch->target)
        goto free_ch;
    ch->is_unix = strncmp(target, "unix:", 5) == 0;
    if (!ch->is_unix) {
        const char *colon = strrchr(target, ':');
        const char *h = target;
        size_t hl = colon ? (size_t)(colon - target) : 0;
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
            h++;
            hl -= 2;
        }
        if (!colon || hl == 0 || hl >= sizeof(ch->host) || strlen(colon + 1) >= sizeof(ch->port))
            goto free_target;
        memcpy(ch->host, h, hl);
        ch->host[hl] = '\0';
        snprintf(ch->port, sizeof(ch->port), "%s", colon + 1);
    }
    const ag_rpc_channel_opts *co = &ch->o;
    if (co->tls || co->tls_ca_file || co->tls_cert_file || co->tls_key_file ||
        co->tls_server_name) {
        ag__tls_ctx_opts t = {
            .server = false,
            .cert_file = co->tls_cert_file,
            .key_file = co->tls_key_file,
            .ca_file = co->tls_ca_file,
            .server_name = co->tls_server_name ? co->tls_server_name
                           : ch->is_unix       ? "localhost"
                                               : ch->host,
        };
        int rc = ag__tls_ctx_new(&ch->tls, &t, &ch->err);
        if (rc == AG_E_NOMEM)
            goto free_target;
        ch->lame = rc < 0;
        ch->o.tls = true;
    }
    /* the strings are the caller's: not kept */
    ch->o.tls_ca_file = ch->o.tls_cert_file = ch->o.tls_key_file = NULL;
    ch->o.tls_server_name = NULL;
    if (ag__loop_init(&ch->loop) < 0)
        goto free_tls;
    uv_timer_init(&ch->loop.uv, &ch->ctimer);
    ch->ctimer.data = ch;
    ag__loop_set_lendable(&ch->loop); /* unary calls drive it themselves */
    if (ag__loop_start(&ch->loop, "rpc-channel") < 0) {
        uv_close((uv_handle_t *)&ch->ctimer, NULL);
        ag__loop_stop(&ch->loop);
        goto free_tls;
    }
    return ch;
free_tls:
    ag__tls_ctx_free(ch->tls);
free_target:
    ag_free(ch->target);
free_ch:
    ag_free(ch);
    return NULL;
}

static void task_close(void *arg)
{
    ag_rpc_channel *ch = arg;
    ch->closing = true;
    stop_ctimer(ch);
    uv_close((uv_handle_t *)&ch->ctimer, NULL);
    if (ch->state == CH_RESOLVING)
        uv_cancel((uv_req_t *)&ch->gai); /* on_resolved sees the channel closing */
    fail_waiting(ch, AG_RPC_CANCELLED, "the channel was closed");
    ag__conn *c = ch->conn;
    if (c && c->h2) {
        ag__conn_close(c, AG_RPC_CANCELLED, "the channel was closed");
    } else if (c && !uv_is_closing((uv_handle_t *)&c->h.stream)) {
        c->h.stream.data = c; /* still connecting: on_connect sees ECANCELED */
        uv_close((uv_handle_t *)&c->h.stream, on_raw_closed);
    }
}

void ag_rpc_channel_free(ag_rpc_channel *ch)
{
    if (!ch)
        return;
    ag__loop_post(&ch->loop, task_close, ch);
    ag__loop_stop(&ch->loop);
    ag__tls_ctx_free(ch->tls);
    ag_free(ch->target);
    ag_free(ch);
}

/* ---- client calls ---------------------------------------------------------------------------- */

ag_rpc_call *ag_rpc_call_new(ag_rpc_channel *ch, const char *method, ag_deadline deadline)
{
    ag_rpc_call *c = ag__call_new(false, method, deadline);
    if (!c)
        return NULL;
    c->ch = ch;
    c->loop = &ch->loop;
    return c;
}

int ag_rpc_call_begin(ag_rpc_call *c)
{
    if (c->server)
        return AG_E_STATE;
    return ag__channel_start_call(c);
}

int ag_rpc_call_close_send(ag_rpc_call *c)
{
    int rc = ag__channel_start_call(c);
    return rc < 0 ? rc : ag__call_post(c, OP_CLOSE_SEND, NULL, 0);
}

int ag_rpc_call_status(ag_rpc_call *c, const char **message)
{
    int rc = ag__channel_start_call(c);
    if (rc < 0)
        return AG_RPC_INTERNAL;
    pthread_mutex_lock(&c->mu);
    while (!c->done)
        pthread_cond_wait(&c->cv, &c->mu);
    int st = c->status;
    if (message)
        *message = c->message ? c->message : "";
    pthread_mutex_unlock(&c->mu);
    return st;
}

void ag_rpc_call_free(ag_rpc_call *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    bool over = c->done;
    pthread_mutex_unlock(&c->mu);
    if (!over)
        ag_rpc_call_cancel(c);
    ag__call_unref(c);
}

struct drive {
    ag_rpc_call *c;
    void *ops;
};

static void drive_prep(void *arg)
{
    struct drive *d = arg;
    ag__call_ops_run(d->ops);
}

static bool drive_done(void *arg)
{
    struct drive *d = arg;
    pthread_mutex_lock(&d->c->mu);
    bool done = d->c->done;
    pthread_mutex_unlock(&d->c->mu);
    return done;
}

void ag__channel_unary(ag_rpc_call *c, void *msg, size_t len)
{
    struct drive d = {c, ag__call_unary_ops(c, msg, len)};
    if (!d.ops) {
        ag_rpc_call_cancel(c);
        return;
    }
    if (ag__loop_drive(&c->ch->loop, drive_prep, drive_done, &d))
        return;
    if (ag__loop_post(&c->ch->loop, ag__call_ops_run, d.ops) < 0) {
        ag__call_ops_drop(d.ops);
        ag_rpc_call_cancel(c);
    }
}

int ag_rpc_unary(ag_rpc_channel *ch, const char *method, const void *req, size_t req_len,
                 ag_deadline deadline, uint8_t **resp, size_t *resp_len, char **message)
{
    *resp = NULL;
    *resp_len = 0;
    if (message)
        *message = NULL;
    ag_rpc_call *c = ag_rpc_call_new(ch, method, deadline);
    if (!c)
        return AG_RPC_RESOURCE_EXHAUSTED;
    void *copy = ag_memdup(req, req_len);
    if (copy)
        ag__channel_unary(c, copy, req_len);
    else
        ag_rpc_call_cancel(c);
    uint8_t *m;
    size_t len;
    while (ag_rpc_call_recv(c, &m, &len) == 1) {
        if (!*resp) {
            *resp = m;
            *resp_len = len;
        } else {
            ag_free(m); /* a unary call has one response */
        }
    }
    const char *msg;
    int st = ag_rpc_call_status(c, &msg);
    if (message)
        *message = ag_strdup(msg);
    if (st != AG_RPC_OK) {
        ag_free(*resp);
        *resp = NULL;
        *resp_len = 0;
    }
    ag_rpc_call_free(c);
    return st;
}
