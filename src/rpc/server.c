/*
 * The gRPC server: N event-loop threads sharing one listening socket, each
 * connection owned by the loop that accepted it; every call's handler runs
 * on a thread of its own with the blocking call API, so a long stream (an
 * MPC link) never holds up other calls.
 *
 * Listening: one socket is bound and listens, without SO_REUSEPORT, so the
 * port is this server's alone (with SO_REUSEPORT, any later socket of the
 * same user that also set it, in this process or another, would bind the
 * same port and take a share of the connections). Every loop watches its
 * own dup() of it: a new connection wakes the loops, one accepts it, the
 * others find nothing (EAGAIN, which libuv takes in its stride).
 *
 * TLS: with a certificate in the options, ag_rpc_server_start builds one
 * TLS context (tls.c) that every connection uses; each connection does its
 * handshake on its loop (conn.c). With mutual TLS, a call's handler gets
 * the client certificate's name from its connection (ev_begin copies it).
 *
 * Shutdown: stop listening and send GOAWAY everywhere (calls in flight go
 * on, new ones are refused), wait for the handlers up to the grace period,
 * then close every connection once its last bytes are written (calls still
 * open end as CANCELLED for their handlers), stop the loops and wait for
 * the last handler.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <fcntl.h>
#include <netdb.h>
#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rt.h"

struct method {
    struct method *next;
    char *path;
    ag_rpc_handler h;             /* bytes, or: */
    const ag_rpc_method *desc;    /* typed: the method, */
    ag_rpc_method_handler mh;     /* and its handler */
    void *ud;
    unsigned flags;               /* AG_RPC_ON_LOOP */
};

/* A pool thread: runs handlers one after another, waits idle for the next
 * (WORKER_IDLE_MS), then exits. */
struct worker {
    struct worker *next;          /* in the idle list */
    pthread_cond_t cv;
    struct job *job;              /* handed over by dispatch (under the server's mu) */
};

#define WORKER_IDLE_MS 30000

struct srv_loop {
    ag__loop loop;
    union {
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } lis;
    bool listening;
    ag__conn *conns;
    struct ag_rpc_server *s;
    char name[24];
};

struct ag_rpc_server {
    ag_rpc_server_opts o;
    struct method *methods;
    unsigned nloops;
    struct srv_loop *loops;
    int port;
    bool started;
    bool stopped;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned handlers;  /* under mu: handlers running (pool threads) */
    unsigned workers;   /* under mu: pool threads alive */
    struct worker *idle; /* under mu: pool threads waiting for a call */
    bool quit;          /* under mu: pool threads exit */
    unsigned calls;     /* under mu: calls taken and not yet handled */
    bool refusing;      /* shutting down: no new calls */
    char *tls_files[3]; /* copies of the options' cert, key and CA file names */
    ag__tls_ctx *tls;   /* built by the first start from them (read-only after) */
    ag_errbuf err;
};

void ag_rpc_server_opts_init(ag_rpc_server_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->loops = 0;
    o->max_recv_msg = AG__GRPC_DEFAULT_MAX_RECV;
    o->max_calls = 1024;
    o->keepalive_time_ms = 2 * 3600 * 1000;
    o->keepalive_timeout_ms = 20000;
    o->min_ping_interval_ms = 5 * 60 * 1000;
    o->max_ping_strikes = 2;
    o->handshake_timeout_ms = 20000;
}

ag_rpc_server *ag_rpc_server_new(const ag_rpc_server_opts *o)
{
    ag_rpc_server *s = ag_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (o)
        s->o = *o;
    else
        ag_rpc_server_opts_init(&s->o);
    if (!s->o.max_recv_msg)
        s->o.max_recv_msg = AG__GRPC_DEFAULT_MAX_RECV;
    if (!s->o.max_calls)
        s->o.max_calls = 1024;
    /* the file names are the caller's: the server keeps copies, so that a
     * start that failed and is tried again still asks for TLS */
    const char *names[3] = {s->o.tls_cert_file, s->o.tls_key_file, s->o.tls_ca_file};
    s->o.tls_cert_file = s->o.tls_key_file = s->o.tls_ca_file = NULL;
    for (int i = 0; i < 3; i++) {
        if (names[i] && !(s->tls_files[i] = ag_strdup(names[i]))) {
            while (i-- > 0)
                ag_free(s->tls_files[i]);
            ag_free(s);
            return NULL;
        }
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca; /* waits are on monotonic deadlines */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    return s;
}

const char *ag_rpc_server_errmsg(const ag_rpc_server *s)
{
    return s->err.msg;
}

static int add_method(ag_rpc_server *s, const char *method, ag_rpc_handler h,
                      const ag_rpc_method *desc, ag_rpc_method_handler mh, void *ud);

int ag_rpc_server_register(ag_rpc_server *s, const char *method, ag_rpc_handler h, void *ud)
{
    return add_method(s, method, h, NULL, NULL, ud);
}

int ag_rpc_server_register_ex(ag_rpc_server *s, const char *method, ag_rpc_handler h, void *ud,
                              unsigned flags)
{
    if (flags & ~AG_RPC_ON_LOOP)
        return ag_errbuf_set(&s->err, AG_E_INVAL, "register %s: unknown flags", method);
    int rc = add_method(s, method, h, NULL, NULL, ud);
    if (rc == 0)
        s->methods->flags = flags;
    return rc;
}

int ag_rpc_server_register_method(ag_rpc_server *s, const ag_rpc_method *m,
                                  ag_rpc_method_handler h, void *ud, unsigned flags)
{
    if ((flags & ~AG_RPC_ON_LOOP) || !m->input || !m->output ||
        (unsigned)m->kind > AG_RPC_BIDI_STREAMING)
        return ag_errbuf_set(&s->err, AG_E_INVAL, "register %s: bad method description or flags",
                             m->path);
    if ((flags & AG_RPC_ON_LOOP) &&
        (m->kind == AG_RPC_CLIENT_STREAMING || m->kind == AG_RPC_BIDI_STREAMING))
        return ag_errbuf_set(&s->err, AG_E_INVAL,
                             "register %s: only unary and server-streaming handlers run on the loop",
                             m->path);
    int rc = add_method(s, m->path, NULL, m, h, ud);
    if (rc == 0)
        s->methods->flags = flags;
    return rc;
}

static int add_method(ag_rpc_server *s, const char *method, ag_rpc_handler h,
                      const ag_rpc_method *desc, ag_rpc_method_handler mh, void *ud)
{
    if (s->started || method[0] != '/')
        return ag_errbuf_set(&s->err, AG_E_INVAL, "register %s: %s", method,
                             s->started ? "the server has started" : "not a /pkg.Service/Method path");
    struct method *m = ag_calloc(1, sizeof(*m));
    if (!m || !(m->path = ag_strdup(method))) {
        ag_free(m);
        return ag_errbuf_set(&s->err, AG_E_NOMEM, "register %s: out of memory", method);
    }
    m->h = h;
    m->desc = desc;
    m->mh = mh;
    m->ud = ud;
    m->next = s->methods;
    s->methods = m;
    return 0;
}

static struct method *find_method(ag_rpc_server *s, const char *path)
{
    for (struct method *m = s->methods; m; m = m->next)
        if (strcmp(m->path, path) == 0)
            return m;
    return NULL;
}

/* ---- handlers ----------------------------------------------------------------- */

struct job {
    ag_rpc_call *c;
    struct method *m;
};

/* A typed method: the single request unpacked before the handler, the
 * response count checked after it. */
static int typed_dispatch(ag_rpc_call *c, const struct method *m)
{
    const ag_rpc_method *d = m->desc;
    bool one_req = d->kind == AG_RPC_UNARY || d->kind == AG_RPC_SERVER_STREAMING;
    bool one_resp = d->kind == AG_RPC_UNARY || d->kind == AG_RPC_CLIENT_STREAMING;
    ProtobufCMessage *req = NULL;
    if (one_req) {
        int rc = ag_rpc_call_recv_msg(c, d->input, &req);
        if (rc == AG_E_RPC_PARSE) {
            ag__call_status_message(c, "cannot parse the request as %s", d->input->name);
            return AG_RPC_INTERNAL;
        }
        if (rc == 0) {
            ag__call_status_message(c, "no request message for %s", d->path);
            return AG_RPC_INTERNAL;
        }
        if (rc < 0)
            return AG_RPC_CANCELLED;
        /* the whole request first (END_STREAM), as gRPC's servers do */
        uint8_t *extra;
        size_t len;
        rc = ag_rpc_call_recv(c, &extra, &len);
        if (rc != 0) {
            ag_free(extra);
            ag_rpc_msg_free(req);
            if (rc < 0)
                return AG_RPC_CANCELLED;
            ag__call_status_message(c, "more than one request message for %s", d->path);
            return AG_RPC_INTERNAL;
        }
    }
    int st = m->mh(c, req, m->ud);
    ag_rpc_msg_free(req);
    if (st == AG_RPC_OK && one_resp) {
        pthread_mutex_lock(&c->mu);
        unsigned n = c->nsent;
        pthread_mutex_unlock(&c->mu);
        if (n != 1) {
            ag__call_status_message(c, "the handler of %s sent %u responses (one expected)",
                                    d->path, n);
            st = AG_RPC_INTERNAL;
        }
    }
    return st;
}

/* Runs one call's handler to its end (a pool thread, or the loop for
 * AG_RPC_ON_LOOP methods) and posts the status. */
static void run_job(struct job *j)
{
    ag_rpc_call *c = j->c;
    ag_rpc_server *s = c->srv;
    int st = j->m->desc ? typed_dispatch(c, j->m) : j->m->h(c, j->m->ud);
    ag_free(j);
    pthread_mutex_lock(&c->mu);
    c->out_status = st;
    pthread_mutex_unlock(&c->mu);
    ag__call_post(c, OP_FINISH, NULL, 0);
    ag__call_unref(c); /* the handler's reference */
    pthread_mutex_lock(&s->mu);
    s->calls--;
    pthread_mutex_unlock(&s->mu);
}

static void *worker_main(void *arg)
{
    struct job *j = arg;
    ag_rpc_server *s = j->c->srv;
    struct worker w = {.job = NULL};
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cv, &ca);
    pthread_condattr_destroy(&ca);
    for (;;) {
        run_job(j);
        pthread_mutex_lock(&s->mu);
        s->handlers--;
        pthread_cond_broadcast(&s->cv);
        /* idle: wait for the next call, or exit after a while */
        w.job = NULL;
        w.next = s->idle;
        s->idle = &w;
        ag_deadline dl = ag_deadline_in_ms(WORKER_IDLE_MS);
        struct timespec ts = {(time_t)(dl.at_ns / 1000000000u), (long)(dl.at_ns % 1000000000u)};
        while (!w.job && !s->quit && !ag_deadline_expired(dl))
            pthread_cond_timedwait(&w.cv, &s->mu, &ts);
        j = w.job;
        if (!j) { /* not handed a call: leave the idle list, exit */
            for (struct worker **pp = &s->idle; *pp; pp = &(*pp)->next)
                if (*pp == &w) {
                    *pp = w.next;
                    break;
                }
            pthread_mutex_unlock(&s->mu);
            /* this detached thread's OpenSSL state (handlers may sign, hash
             * or push errors) goes now, not in a thread-exit destructor that
             * may run after the server is freed and the process gone */
            OPENSSL_thread_stop();
            pthread_mutex_lock(&s->mu);
            s->workers--;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            break;
        }
        pthread_mutex_unlock(&s->mu);
    }
    pthread_cond_destroy(&w.cv);
    return NULL;
}

/* Hands the job to an idle pool thread, or starts a new one (the pool
 * grows with the calls in flight: a long stream never holds up others). */
static int dispatch(ag_rpc_server *s, struct job *j)
{
    pthread_mutex_lock(&s->mu);
    s->handlers++;
    struct worker *w = s->idle;
    if (w) {
        s->idle = w->next;
        w->job = j;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    s->workers++;
    pthread_mutex_unlock(&s->mu);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 1u << 20);
    pthread_t t;
    int rc = pthread_create(&t, &attr, worker_main, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&s->mu);
        s->handlers--;
        s->workers--;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return AG_E_SYS;
    }
    return 0;
}

/* Loop side, AG_RPC_ON_LOOP: the whole request is here; run the handler
 * now, on this thread (a task: outside the HTTP/2 core's callbacks, so
 * its sends go out at once). */
static void task_on_loop(void *arg)
{
    struct job *j = arg;
    run_job(j);
}

/* Loop side: the handler returned; send what it left. */
void ag__server_finish(ag_rpc_call *c)
{
    ag__md_list hdr = {0}, trl = {0};
    pthread_mutex_lock(&c->mu);
    int st = c->out_status;
    char *msg = ag_strdup(c->out_message ? c->out_message : "");
    hdr = c->out_md;
    trl = c->out_trailers;
    memset(&c->out_md, 0, sizeof(c->out_md));
    memset(&c->out_trailers, 0, sizeof(c->out_trailers));
    pthread_mutex_unlock(&c->mu);
    if (!c->headers_done && hdr.n)
        ag__h2call_send_headers(c->h2, &hdr);
    c->headers_done = true;
    ag__h2call_finish(c->h2, st, msg, &trl);
    ag_free(msg);
    ag__md_free(&hdr);
    ag__md_free(&trl);
}

void ag__call_status_message(ag_rpc_call *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ag_rpc_call_set_status_message(c, buf);
}

int ag_rpc_call_set_status_message(ag_rpc_call *c, const char *message)
{
    char *m = ag_strdup(message);
    if (!m)
        return AG_E_NOMEM;
    pthread_mutex_lock(&c->mu);
    ag_free(c->out_message);
    c->out_message = m;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int ag_rpc_call_add_trailer(ag_rpc_call *c, const char *key, const void *value, size_t len)
{
    size_t kl = strlen(key);
    if (!ag__grpc_key_valid(key, kl) || ag__grpc_key_reserved(key, kl) ||
        (!ag__grpc_key_is_bin(key, kl) && !ag__grpc_value_valid(value, len)))
        return AG_E_INVAL;
    pthread_mutex_lock(&c->mu);
    int rc = ag__md_add(&c->out_trailers, key, kl, value, len);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---- the connection core's events ---------------------------------------------- */

static int ev_begin(void *ud, ag__h2call *h)
{
    ag__conn *conn = ud;
    struct srv_loop *sl = conn->owner;
    ag_rpc_server *s = sl->s;
    struct method *m = find_method(s, ag__h2call_method(h));
    char msg[300];
    if (!m) {
        snprintf(msg, sizeof(msg), "unknown method %.200s", ag__h2call_method(h));
        ag__h2call_finish(h, AG_RPC_UNIMPLEMENTED, msg, NULL);
        return AG_RPC_UNIMPLEMENTED;
    }
    pthread_mutex_lock(&s->mu);
    int refuse = s->refusing ? AG_RPC_UNAVAILABLE
                 : s->calls >= s->o.max_calls ? AG_RPC_RESOURCE_EXHAUSTED : 0;
    if (!refuse)
        s->calls++;
    pthread_mutex_unlock(&s->mu);
    if (refuse) {
        ag__h2call_finish(h, refuse, refuse == AG_RPC_UNAVAILABLE ? "the server is shutting down"
                                                                  : "too many calls in flight",
                          NULL);
        return refuse;
    }
    uint64_t tmo = ag__h2call_timeout_ns(h);
    ag_deadline dl = tmo == UINT64_MAX ? ag_deadline_never() : ag_deadline_in_ns(tmo);
    ag_rpc_call *c = ag__call_new(true, ag__h2call_method(h), dl);
    struct job *j = ag_malloc(sizeof(*j));
    if (!c || !j) {
        ag_free(j);
        if (c)
            ag__call_unref(c);
        pthread_mutex_lock(&s->mu);
        s->calls--;
        pthread_mutex_unlock(&s->mu);
        return AG_RPC_RESOURCE_EXHAUSTED;
    }
    const char *id = conn->tls ? ag__tls_peer_identity(conn->tls) : NULL;
    if (id && !(c->peer_identity = ag_strdup(id))) {
        ag_free(j);
        ag__call_unref(c);
        pthread_mutex_lock(&s->mu);
        s->calls--;
        pthread_mutex_unlock(&s->mu);
        return AG_RPC_RESOURCE_EXHAUSTED;
    }
    c->srv = s;
    c->loop = &sl->loop;
    ag__call_on_headers(c, ag__h2call_md(h));
    ag__call_attach(c, conn, h);
    ag__call_arm_deadline(c);
    *j = (struct job){c, m};
    if (m->flags & AG_RPC_ON_LOOP) {
        /* runs once the client half-closed (ev_half_close) */
        c->on_loop = true;
        c->loop_job = j;
        return 0;
    }
    if (dispatch(s, j) < 0) {
        pthread_mutex_lock(&s->mu);
        s->calls--;
        pthread_mutex_unlock(&s->mu);
        ag_free(j);
        ag__call_unref(c); /* the handler's reference */
        ag__h2call_cancel(h, AG_RPC_RESOURCE_EXHAUSTED, "cannot start a handler thread");
    }
    return 0;
}

static void ev_message(void *ud, ag__h2call *h, uint8_t *msg, size_t len)
{
    (void)ud;
    ag__call_on_message(ag__h2call_owner(h), msg, len, ag__h2call_last_compressed(h));
}

static void ev_half_close(void *ud, ag__h2call *h)
{
    (void)ud;
    ag_rpc_call *c = ag__h2call_owner(h);
    ag__call_on_half_close(c);
    if (c->on_loop && c->loop_job) {
        struct job *j = c->loop_job;
        c->loop_job = NULL;
        if (ag__loop_post(c->loop, task_on_loop, j) < 0)
            run_job(j); /* the loop is stopping: the call ends anyway */
    }
}

static void ev_done(void *ud, ag__h2call *h, int status, const char *msg)
{
    (void)ud;
    ag_rpc_call *c = ag__h2call_owner(h);
    if (!c)
        return;
    struct job *j = c->on_loop ? c->loop_job : NULL;
    c->loop_job = NULL;
    ag__call_on_done(c, NULL, status, msg);
    if (j) { /* ended before its request was whole: the handler never runs */
        ag_rpc_server *s = c->srv;
        ag_free(j);
        ag__call_unref(c); /* the handler's reference */
        pthread_mutex_lock(&s->mu);
        s->calls--;
        pthread_mutex_unlock(&s->mu);
    }
}

static const ag__h2_events srv_events = {ev_begin, ev_message, ev_half_close, NULL, ev_done};

static void conn_closed(void *owner, ag__conn *c, int status, const char *why)
{
    (void)status;
    (void)why;
    struct srv_loop *sl = owner;
    for (ag__conn **pp = &sl->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            return;
        }
}

static const ag__conn_owner_ops srv_conn_ops = {NULL, conn_closed};

static void on_connection(uv_stream_t *lis, int status)
{
    struct srv_loop *sl = lis->data;
    if (status < 0)
        return;
    ag__conn *c = ag_calloc(1, sizeof(*c));
    if (!c)
        return;
    c->loop = &sl->loop;
    int rc = lis->type == UV_TCP ? uv_tcp_init(&sl->loop.uv, &c->h.tcp)
                                 : uv_pipe_init(&sl->loop.uv, &c->h.pipe, 0);
    if (rc != 0) {
        ag_free(c);
        return;
    }
    c->h.stream.data = c;
    ag__h2_opts o;
    ag__h2_opts_init(&o);
    o.max_recv_msg = sl->s->o.max_recv_msg;
    o.min_ping_interval_ms = sl->s->o.min_ping_interval_ms;
    o.max_ping_strikes = sl->s->o.max_ping_strikes;
    o.pings_without_calls = sl->s->o.permit_pings_without_calls;
    c->h2 = ag__h2conn_new(true, &o, &srv_events, c);
    c->ka_time_ms = sl->s->o.keepalive_time_ms;
    c->ka_timeout_ms = sl->s->o.keepalive_timeout_ms;
    c->ka_without_calls = true; /* a server checks idle clients too */
    c->hs_timeout_ms = sl->s->o.handshake_timeout_ms;
    if (sl->s->tls)
        c->tls = ag__tls_new(sl->s->tls);
    c->ops = &srv_conn_ops;
    c->owner = sl;
    c->next = sl->conns;
    sl->conns = c;
    if (!c->h2 || (sl->s->tls && !c->tls) || uv_accept(lis, &c->h.stream) != 0 ||
        ag__conn_start(c) < 0)
        ag__conn_close(c, AG_RPC_UNAVAILABLE, "accept failed");
}

/* ---- listening ---------------------------------------------------------------------- */

/* A TCP socket bound to the address in ai with the given port, listening;
 * returns the fd or -errno. SO_REUSEADDR lets a restarted server take its
 * port back from connections in TIME_WAIT; it does not let two sockets
 * listen on one port. No SO_REUSEPORT, which would. */
static int tcp_listen_fd(const struct addrinfo *ai, int port)
{
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) != 0 || listen(fd, 511) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* The port a bound socket has. */
static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int split_hostport(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1])
        return AG_E_INVAL;
    size_t hl = (size_t)(colon - addr);
    if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
        addr++;
        hl -= 2;
    }
    if (hl >= hcap || strlen(colon + 1) >= pcap)
        return AG_E_INVAL;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    snprintf(port, pcap, "%s", colon + 1);
    return 0;
}

int ag__tcp_listen(const char *addr, const char *expected, int *bound, ag_errbuf *err)
{
    char host[256], port[16];
    if (split_hostport(addr, host, sizeof(host), port, sizeof(port)) < 0)
        return ag_errbuf_set(err, AG_E_INVAL, "%s: expected %s", addr, expected);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g != 0)
        return ag_errbuf_set(err, AG_E_NOENT, "%s: %s", addr, gai_strerror(g));
    int fd = tcp_listen_fd(ai, atoi(port));
    freeaddrinfo(ai);
    if (fd < 0)
        return ag_errbuf_set(err, ag_err_from_errno(-fd), "%s: %s", addr,
                             uv_strerror(uv_translate_sys_error(-fd)));
    *bound = bound_port(fd);
    return fd;
}

/* Every loop listens on its own dup of one socket (see the top). */
static int listen_tcp(ag_rpc_server *s, const char *addr)
{
    int fd = ag__tcp_listen(addr, "host:port or unix:/path", &s->port, &s->err);
    if (fd < 0)
        return fd;
    int rc = 0;
    for (unsigned i = 0; i < s->nloops && rc == 0; i++) {
        struct srv_loop *sl = &s->loops[i];
        int lfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (lfd < 0) {
            rc = ag_errbuf_set(&s->err, ag_err_from_errno(errno), "%s: dup: %s", addr,
                               uv_strerror(uv_translate_sys_error(errno)));
            break;
        }
        uv_tcp_init(&sl->loop.uv, &sl->lis.tcp);
        sl->lis.stream.data = sl;
        int r = uv_tcp_open(&sl->lis.tcp, lfd);
        if (r != 0)
            close(lfd); /* not the handle's */
        else
            r = uv_listen(&sl->lis.stream, 511, on_connection);
        if (r != 0) {
            rc = ag_errbuf_set(&s->err, AG_E_SYS, "%s: cannot listen: %s", addr, uv_strerror(r));
            uv_close((uv_handle_t *)&sl->lis.tcp, NULL);
            break;
        }
        sl->listening = true;
    }
    close(fd); /* the loops' dups keep the socket */
    return rc;
}

static int listen_unix(ag_rpc_server *s, const char *path)
{
    struct srv_loop *sl = &s->loops[0];
    uv_pipe_init(&sl->loop.uv, &sl->lis.pipe, 0);
    sl->lis.stream.data = sl;
    int r = uv_pipe_bind(&sl->lis.pipe, path);
    if (r == 0)
        r = uv_listen(&sl->lis.stream, 511, on_connection);
    if (r != 0) {
        uv_close((uv_handle_t *)&sl->lis.pipe, NULL);
        return ag_errbuf_set(&s->err, AG_E_SYS, "unix:%s: %s", path, uv_strerror(r));
    }
    sl->listening = true;
    return 0;
}

static void task_unlisten(void *arg)
{
    struct srv_loop *sl = arg;
    if (sl->listening) {
        sl->listening = false;
        uv_close((uv_handle_t *)&sl->lis.stream, NULL);
    }
}

/* A start that failed: closes the listeners, stops the loops that were
 * initialized, frees them (the TLS context stays for another try). */
static void start_undo(ag_rpc_server *s, unsigned inited)
{
    for (unsigned i = 0; i < inited; i++) {
        struct srv_loop *sl = &s->loops[i];
        if (sl->loop.running)
            ag__loop_post(&sl->loop, task_unlisten, sl);
        else
            task_unlisten(sl); /* no thread yet: this one may touch its handles */
        ag__loop_stop(&sl->loop);
    }
    ag_free(s->loops);
    s->loops = NULL;
    s->nloops = 0;
}

/* The TLS context, if the options asked for TLS and it is not built yet. */
static int tls_setup(ag_rpc_server *s)
{
    if (s->tls || !(s->tls_files[0] || s->tls_files[1] || s->tls_files[2]))
        return 0;
    ag__tls_ctx_opts t = {
        .server = true,
        .cert_file = s->tls_files[0],
        .key_file = s->tls_files[1],
        .ca_file = s->tls_files[2],
    };
    return ag__tls_ctx_new(&s->tls, &t, &s->err);
}

int ag_rpc_server_start(ag_rpc_server *s, const char *addr)
{
    if (s->started)
        return ag_errbuf_set(&s->err, AG_E_STATE, "the server has started already");
    int rc = tls_setup(s);
    if (rc < 0)
        return rc;
    bool is_unix = strncmp(addr, "unix:", 5) == 0;
    unsigned n = s->o.loops;
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c < 1 ? 1 : c > 4 ? 4 : (unsigned)c;
    }
    if (is_unix)
        n = 1; /* one socket, one loop */
    s->loops = ag_calloc(n, sizeof(*s->loops));
    if (!s->loops) {
        start_undo(s, 0);
        return ag_errbuf_set(&s->err, AG_E_NOMEM, "out of memory");
    }
    s->nloops = n;
    unsigned inited = 0;
    for (; inited < n && rc == 0; inited++) {
        s->loops[inited].s = s;
        rc = ag__loop_init(&s->loops[inited].loop);
        if (rc < 0) {
            rc = ag_errbuf_set(&s->err, rc, "cannot start an event loop");
            break; /* this one cleaned up after itself */
        }
    }
    if (rc == 0)
        rc = is_unix ? listen_unix(s, addr + 5) : listen_tcp(s, addr);
    for (unsigned i = 0; i < s->nloops && rc == 0; i++) {
        snprintf(s->loops[i].name, sizeof(s->loops[i].name), "rpc-srv-%u", i % 100u);
        rc = ag__loop_start(&s->loops[i].loop, s->loops[i].name);
        if (rc < 0)
            ag_errbuf_set(&s->err, rc, "cannot start an event-loop thread");
    }
    if (rc < 0) {
        start_undo(s, inited);
        return rc;
    }
    s->started = true;
    return 0;
}

int ag_rpc_server_port(const ag_rpc_server *s)
{
    return s->port;
}

/* ---- shutdown ------------------------------------------------------------------------ */

static void task_goaway(void *arg)
{
    struct srv_loop *sl = arg;
    task_unlisten(sl);
    for (ag__conn *c = sl->conns; c; c = c->next) {
        ag__h2conn_goaway(c->h2);
        ag__conn_flush(c);
    }
}

static void task_close(void *arg)
{
    struct srv_loop *sl = arg;
    for (ag__conn *c = sl->conns, *n; c; c = n) {
        n = c->next;
        ag__conn_drain(c);
    }
}

void ag_rpc_server_shutdown(ag_rpc_server *s, uint64_t grace_ms)
{
    if (!s->started || s->stopped)
        return;
    s->stopped = true;
    pthread_mutex_lock(&s->mu);
    s->refusing = true;
    pthread_mutex_unlock(&s->mu);
    for (unsigned i = 0; i < s->nloops; i++)
        ag__loop_post(&s->loops[i].loop, task_goaway, &s->loops[i]);
    ag_deadline dl = ag_deadline_in_ms(grace_ms);
    struct timespec ts = {(time_t)(dl.at_ns / 1000000000u), (long)(dl.at_ns % 1000000000u)};
    pthread_mutex_lock(&s->mu);
    while (s->handlers > 0 && !ag_deadline_expired(dl))
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    pthread_mutex_unlock(&s->mu);
    for (unsigned i = 0; i < s->nloops; i++)
        ag__loop_post(&s->loops[i].loop, task_close, &s->loops[i]);
    /* the closed connections ended every call: the handlers return (and
     * post their last task) while the loops still run */
    pthread_mutex_lock(&s->mu);
    while (s->handlers > 0)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    /* the listeners are closed: no connection came after task_close */
    for (unsigned i = 0; i < s->nloops; i++)
        ag__loop_stop(&s->loops[i].loop);
}

void ag_rpc_server_free(ag_rpc_server *s)
{
    if (!s)
        return;
    ag_rpc_server_shutdown(s, 0);
    /* the pool's idle threads exit; wait until the last one let go of s */
    pthread_mutex_lock(&s->mu);
    s->quit = true;
    for (struct worker *w = s->idle; w; w = w->next)
        pthread_cond_signal(&w->cv);
    while (s->workers > 0)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    for (struct method *m = s->methods, *n; m; m = n) {
        n = m->next;
        ag_free(m->path);
        ag_free(m);
    }
    ag_free(s->loops);
    ag__tls_ctx_free(s->tls);
    for (int i = 0; i < 3; i++)
        ag_free(s->tls_files[i]);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    ag_free(s);
}

bool ag_rpc_server_has_method(const ag_rpc_server *s, const char *path)
{
    for (const struct method *m = s->methods; m; m = m->next)
        if (strcmp(m->path, path) == 0)
            return true;
    return false;
}
