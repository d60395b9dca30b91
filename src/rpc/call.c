/*
 * The call object: shared by the application thread that uses a call
 * (blocking) and the loop thread that runs its HTTP/2 stream.
 *
 * The loop side delivers into the object under its mutex (messages,
 * metadata, the end) and signals; the application side waits on the
 * condition variable. Operations the application starts (send, finish,
 * cancel) travel to the loop as tasks carrying their own copy of the data,
 * so nothing the application owns is read by the loop thread.
 *
 * References: the application holds one (client: from ag_rpc_call_new to
 * ag_rpc_call_free; server: the handler thread, until the handler
 * returns), the loop holds one from attach to done. The last one frees.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rt.h"

ag_rpc_call *ag__call_new(bool server, const char *method, ag_deadline deadline)
{
    ag_rpc_call *c = ag_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->method = ag_strdup(method);
    if (!c->method) {
        ag_free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->refs = 1;
    c->server = server;
    c->deadline = deadline;
    return c;
}

static void call_free(ag_rpc_call *c)
{
    for (struct rmsg *m = c->rq_head, *n; m; m = n) {
        n = m->next;
        ag_free(m->data);
        ag_free(m);
    }
    ag__md_free(&c->out_md);
    ag__md_free(&c->out_trailers);
    ag__md_free(&c->in_md);
    ag__md_free(&c->in_trailers);
    ag_free(c->out_message);
    ag_free(c->cancel_msg);
    ag_free(c->message);
    ag_free(c->method);
    ag_free(c->peer_identity);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    ag_free(c);
}

void ag__call_unref(ag_rpc_call *c)
{
    pthread_mutex_lock(&c->mu);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (last)
        call_free(c);
}

void ag__call_attach(ag_rpc_call *c, ag__conn *conn, ag__h2call *h2)
{
    pthread_mutex_lock(&c->mu);
    c->refs++;
    pthread_mutex_unlock(&c->mu);
    c->conn = conn;
    c->h2 = h2;
    ag__h2call_set_owner(h2, c);
    c->conn_next = conn->calls;
    c->conn_prev = NULL;
    if (conn->calls)
        conn->calls->conn_prev = c;
    conn->calls = c;
}

static void on_timer_closed(uv_handle_t *h)
{
    ag__call_unref(h->data); /* the timer's hold on the call */
}

static void on_deadline(uv_timer_t *t)
{
    ag_rpc_call *c = t->data;
    if (!c->h2)
        return;
    /* a server tells the client DEADLINE_EXCEEDED in its status, not with
     * a bare RST_STREAM CANCEL (which a client whose own timer has not yet
     * fired would report as CANCELLED) */
    ag__h2call_expire(c->h2);
    ag__conn_flush(c->conn);
}

void ag__call_arm_deadline(ag_rpc_call *c)
{
    if (ag_deadline_is_never(c->deadline) || !c->conn)
        return;
    if (uv_timer_init(&c->conn->loop->uv, &c->timer) != 0)
        return;
    pthread_mutex_lock(&c->mu);
    c->refs++; /* until the timer handle is closed */
    pthread_mutex_unlock(&c->mu);
    c->timer.data = c;
    c->timer_on = true;
    /* the loop's clock is cached from the start of this turn: refresh it,
     * or the timer fires early by however long the turn has run */
    uv_update_time(&c->conn->loop->uv);
    uv_timer_start(&c->timer, on_deadline, ag_deadline_remaining_ms(c->deadline), 0);
}

void ag__call_on_message(ag_rpc_call *c, uint8_t *msg, size_t len, bool compressed)
{
    struct rmsg *m = ag_malloc(sizeof(*m));
    if (!m) {
        ag_free(msg);
        ag__h2call_cancel(c->h2, AG_RPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    m->next = NULL;
    m->len = len;
    m->data = msg;
    m->compressed = compressed;
    pthread_mutex_lock(&c->mu);
    if (c->rq_tail)
        c->rq_tail->next = m;
    else
        c->rq_head = m;
    c->rq_tail = m;
    c->rq_bytes += len;
    bool pause = c->rq_bytes > AG__CALL_RECV_LIMIT && !c->rq_paused;
    if (pause) {
        c->rq_paused = true;
        c->resume_posted = false;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (pause && c->h2)
        ag__h2call_pause(c->h2, true);
}

void ag__call_on_half_close(ag_rpc_call *c)
{
    pthread_mutex_lock(&c->mu);
    c->recv_end = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void copy_md(ag__md_list *dst, const ag__md_list *src)
{
    for (size_t i = 0; src && i < src->n; i++)
        if (ag__md_add(dst, src->v[i].key, strlen(src->v[i].key), src->v[i].value,
                       src->v[i].len) < 0)
            return;
}

void ag__call_on_headers(ag_rpc_call *c, const ag__md_list *md)
{
    pthread_mutex_lock(&c->mu);
    copy_md(&c->in_md, md);
    pthread_mutex_unlock(&c->mu);
}

void ag__call_on_done(ag_rpc_call *c, const ag__md_list *trailers, int status, const char *msg)
{
    /* unlink from the connection (loop side) */
    if (c->conn) {
        if (c->conn_prev)
            c->conn_prev->conn_next = c->conn_next;
        else
            c->conn->calls = c->conn_next;
        if (c->conn_next)
            c->conn_next->conn_prev = c->conn_prev;
    }
    if (c->timer_on) {
        c->timer_on = false;
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    }
    c->h2 = NULL;
    c->conn = NULL;
    c->done_loop = true;
    pthread_mutex_lock(&c->mu);
    /* the server's copy of the deadline may fire first and reset the
     * stream: a client whose deadline has passed reports that instead
     * (PROTOCOL-HTTP2.md, client cancellation) */
    if (!c->server && status == AG_RPC_CANCELLED && !c->cancelled &&
        ag_deadline_expired(c->deadline)) {
        status = AG_RPC_DEADLINE_EXCEEDED;
        msg = "deadline exceeded";
    }
    copy_md(&c->in_trailers, trailers);
    c->done = true;
    c->recv_end = true;
    c->status = status;
    ag_free(c->message);
    c->message = ag_strdup(msg ? msg : "");
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    ag__call_unref(c); /* the loop's reference */
}

/* ---- the application's side ------------------------------------------------------ */

/* A message or the end is there to take. */
static bool recv_ready(void *arg)
{
    ag_rpc_call *c = arg;
    pthread_mutex_lock(&c->mu);
    bool ready = c->rq_head || c->recv_end;
    pthread_mutex_unlock(&c->mu);
    return ready;
}

int ag_rpc_call_recv(ag_rpc_call *c, uint8_t **msg, size_t *len)
{
    return ag_rpc_call_recv_ex(c, msg, len, NULL);
}

int ag_rpc_call_recv_ex(ag_rpc_call *c, uint8_t **msg, size_t *len, unsigned *flags)
{
    if (flags)
        *flags = 0;
    *msg = NULL;
    *len = 0;
    if (!c->server) {
        int rc = ag__channel_start_call(c);
        if (rc < 0)
            return rc;
    }
    if (!c->server && !recv_ready(c))
        ag__loop_drive(c->loop, NULL, recv_ready, c); /* the reply comes to this thread */
    pthread_mutex_lock(&c->mu);
    while (!c->rq_head && !c->recv_end)
        pthread_cond_wait(&c->cv, &c->mu);
    struct rmsg *m = c->rq_head;
    int rc = 0;
    bool resume = false;
    if (m) {
        c->rq_head = m->next;
        if (!c->rq_head)
            c->rq_tail = NULL;
        *msg = m->data;
        *len = m->len;
        c->last_recv_flags = m->compressed ? AG_RPC_RECV_COMPRESSED : 0;
        if (flags)
            *flags = c->last_recv_flags;
        c->rq_bytes -= m->len;
        ag_free(m);
        rc = 1;
        resume = c->rq_paused && !c->resume_posted && c->rq_bytes < AG__CALL_RECV_LIMIT / 2 &&
                 !c->done;
        if (resume)
            c->resume_posted = true;
    } else if (c->server && c->done) {
        rc = AG_E_CANCELED; /* the client went away before half-closing */
    }
    pthread_mutex_unlock(&c->mu);
    if (resume)
        ag__call_post(c, OP_RESUME, NULL, 0);
    return rc;
}

int ag_rpc_call_add_metadata(ag_rpc_call *c, const char *key, const void *value, size_t len)
{
    size_t kl = strlen(key);
    if (!ag__grpc_key_valid(key, kl) || ag__grpc_key_reserved(key, kl) ||
        (!ag__grpc_key_is_bin(key, kl) && !ag__grpc_value_valid(value, len)))
        return AG_E_INVAL;
    pthread_mutex_lock(&c->mu);
    int rc = c->start_posted ? AG_E_STATE : ag__md_add(&c->out_md, key, kl, value, len);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

const char *ag_rpc_call_metadata(ag_rpc_call *c, bool trailers, size_t i, ag_slice *value)
{
    pthread_mutex_lock(&c->mu);
    const ag__md_list *l = trailers ? &c->in_trailers : &c->in_md;
    const char *key = NULL;
    if (i < l->n) {
        key = l->v[i].key;
        *value = ag_slice_make(l->v[i].value, l->v[i].len);
    }
    pthread_mutex_unlock(&c->mu);
    return key;
}

bool ag_rpc_call_is_cancelled(ag_rpc_call *c)
{
    pthread_mutex_lock(&c->mu);
    bool over = c->done || c->cancelled;
    pthread_mutex_unlock(&c->mu);
    return over;
}

unsigned ag_rpc_call_recv_flags(ag_rpc_call *c)
{
    pthread_mutex_lock(&c->mu);
    unsigned f = c->last_recv_flags;
    pthread_mutex_unlock(&c->mu);
    return f;
}

bool ag_rpc_call_wait_done(ag_rpc_call *c, ag_deadline deadline)
{
    pthread_mutex_lock(&c->mu);
    while (!c->done && !ag_deadline_expired(deadline)) {
        if (ag_deadline_is_never(deadline)) {
            pthread_cond_wait(&c->cv, &c->mu);
        } else {
            /* the call's condition variable runs on CLOCK_REALTIME: wait in
             * short slices against the monotonic deadline */
            uint64_t ms = ag_deadline_remaining_ms(deadline);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (ms > 100 ? 100 : ms) * 1000000u;
            ts.tv_sec += (time_t)(ns / 1000000000u);
            ts.tv_nsec = (long)(ns % 1000000000u);
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
    }
    bool done = c->done;
    pthread_mutex_unlock(&c->mu);
    return done;
}

ag_deadline ag_rpc_call_deadline(const ag_rpc_call *c)
{
    return c->deadline;
}

const char *ag_rpc_call_method(const ag_rpc_call *c)
{
    return c->method;
}

const char *ag_rpc_call_peer_identity(const ag_rpc_call *c)
{
    return c->peer_identity;
}

/* ---- operations travel to the loop as tasks ------------------------------------- */

struct ag__op {
    struct ag__op *next;
    ag_rpc_call *c;
    int kind;
    uint8_t *data;
    size_t len;
};

static void op_free(struct ag__op *op)
{
    ag_rpc_call *c = op->c;
    ag_free(op->data);
    ag_free(op);
    ag__call_unref(c);
}

/* Server: the response headers, with the metadata the handler added,
 * before the first message (loop side). */
static void send_headers(ag_rpc_call *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->send_enc != AG__ENC_IDENTITY)
        ag__h2call_set_encoding(c->h2, c->send_enc);
    ag__md_list md = c->out_md;
    memset(&c->out_md, 0, sizeof(c->out_md));
    pthread_mutex_unlock(&c->mu);
    ag__h2call_send_headers(c->h2, &md);
    c->headers_done = true;
    ag__md_free(&md);
}

/* Applies an operation to the call's stream (loop side). */
static void op_apply(struct ag__op *op)
{
    ag_rpc_call *c = op->c;
    if (c->h2) {
        switch (op->kind) {
        case OP_SEND:
        case OP_SEND_PLAIN:
            if (c->server && !c->headers_done)
                send_headers(c);
            ag__h2call_send_take(c->h2, op->data, op->len, op->kind == OP_SEND);
            op->data = NULL; /* the core's now */
            c->applied += op->len + AG__GRPC_PREFIX;
            break;
        case OP_CLOSE_SEND:
            ag__h2call_close_send(c->h2);
            break;
        case OP_CANCEL: {
            pthread_mutex_lock(&c->mu);
            int st = c->cancel_status ? c->cancel_status : AG_RPC_CANCELLED;
            char *why = c->cancel_msg;
            c->cancel_msg = NULL;
            pthread_mutex_unlock(&c->mu);
            ag__h2call_cancel(c->h2, st, why ? why : "cancelled by the application");
            ag_free(why);
            break;
        }
        case OP_FINISH:
            ag__server_finish(c);
            break;
        case OP_RESUME:
            pthread_mutex_lock(&c->mu);
            c->rq_paused = false;
            pthread_mutex_unlock(&c->mu);
            ag__h2call_pause(c->h2, false);
            break;
        }
    }
}

static void op_run(void *arg)
{
    struct ag__op *op = arg;
    ag_rpc_call *c = op->c;
    if (op->kind == OP_START) {
        ag__channel_do_start(c);
    } else if (!c->server && !c->h2 && !c->done_loop && !c->ended_unstarted) {
        /* the stream does not exist yet: wait for it */
        op->next = NULL;
        if (c->pend_tail)
            c->pend_tail->next = op;
        else
            c->pend_head = op;
        c->pend_tail = op;
        return;
    } else {
        op_apply(op);
    }
    if (c->conn)
        ag__conn_flush(c->conn);
    op_free(op);
}

void ag__call_replay(ag_rpc_call *c)
{
    while (c->pend_head) {
        struct ag__op *op = c->pend_head;
        c->pend_head = op->next;
        op_apply(op);
        op_free(op);
    }
    c->pend_tail = NULL;
}

void ag__call_drop_pending(ag_rpc_call *c)
{
    c->ended_unstarted = true;
    while (c->pend_head) {
        struct ag__op *op = c->pend_head;
        c->pend_head = op->next;
        op_free(op);
    }
    c->pend_tail = NULL;
}

int ag__call_post(ag_rpc_call *c, int kind, uint8_t *data, size_t len)
{
    struct ag__op *op = ag_malloc(sizeof(*op));
    if (!op) {
        ag_free(data);
        return AG_E_NOMEM;
    }
    *op = (struct ag__op){NULL, c, kind, data, len};
    pthread_mutex_lock(&c->mu);
    c->refs++;
    pthread_mutex_unlock(&c->mu);
    if (c->on_loop && c->loop->running && pthread_equal(pthread_self(), c->loop->thread)) {
        /* a handler on the loop (a task, outside the core's callbacks):
         * apply it now, no hand-off */
        op_run(op);
        return 0;
    }
    int rc = ag__loop_post(c->loop, op_run, op);
    if (rc < 0) {
        ag_free(data);
        ag_free(op);
        ag__call_unref(c);
    }
    return rc;
}

int ag_rpc_call_send_take(ag_rpc_call *c, void *msg, size_t len)
{
    return ag__call_send_take_flags(c, msg, len, 0);
}

int ag_rpc_call_set_compression(ag_rpc_call *c, const char *name)
{
    ag__grpc_encoding e = name ? ag__grpc_encoding_parse(name, strlen(name)) : AG__ENC_IDENTITY;
    if (e == AG__ENC_UNKNOWN)
        return AG_E_INVAL;
    pthread_mutex_lock(&c->mu);
    int rc = c->start_posted ? AG_E_STATE : 0;
    if (rc == 0)
        c->send_enc = e;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int ag__call_send_take_flags(ag_rpc_call *c, void *msg, size_t len, unsigned flags)
{
    if (!c->server) {
        int rc = ag__channel_start_call(c);
        if (rc < 0) {
            ag_free(msg);
            return rc;
        }
    }
    pthread_mutex_lock(&c->mu);
    c->start_posted = true; /* server: the headers are committed */
    /* backpressure: wait while too much of this call waits to go out
     * (not on the loop: the loop is what sends it) */
    while (!c->on_loop && !c->done && !c->cancelled && c->posted - c->sent > AG__CALL_SEND_LIMIT) {
        c->send_waiters++;
        pthread_cond_wait(&c->cv, &c->mu);
        c->send_waiters--;
    }
    bool over = c->done || c->cancelled;
    if (!over) {
        c->posted += len + AG__GRPC_PREFIX;
        c->nsent++;
    }
    pthread_mutex_unlock(&c->mu);
    if (over) {
        ag_free(msg);
        return AG_E_CANCELED;
    }
    if (!msg && !(msg = ag_malloc(1)))
        return AG_E_NOMEM;
    return ag__call_post(c, (flags & AG_RPC_SEND_NO_COMPRESS) ? OP_SEND_PLAIN : OP_SEND, msg, len);
}

static void ops_run(void *arg)
{
    for (struct ag__op *op = arg, *next; op; op = next) {
        next = op->next;
        op_run(op);
    }
}

void ag__call_ops_run(void *chain)
{
    ops_run(chain);
}

void *ag__call_unary_ops(ag_rpc_call *c, void *msg, size_t len)
{
    struct ag__op *ops[3];
    for (int i = 0; i < 3; i++) {
        ops[i] = ag_malloc(sizeof(*ops[i]));
        if (!ops[i]) {
            while (i-- > 0)
                ag_free(ops[i]);
            ag_free(msg);
            return NULL;
        }
    }
    pthread_mutex_lock(&c->mu);
    bool ok = !c->start_posted && !c->cancelled && !c->done;
    if (ok) {
        c->start_posted = true;
        c->posted += len + AG__GRPC_PREFIX;
        c->nsent++;
        c->refs += 3; /* one per operation, as ag__call_post takes */
    }
    pthread_mutex_unlock(&c->mu);
    if (!ok) {
        for (int i = 0; i < 3; i++)
            ag_free(ops[i]);
        ag_free(msg);
        return NULL;
    }
    *ops[0] = (struct ag__op){ops[1], c, OP_START, NULL, 0};
    *ops[1] = (struct ag__op){ops[2], c, OP_SEND, msg, len};
    *ops[2] = (struct ag__op){NULL, c, OP_CLOSE_SEND, NULL, 0};
    return ops[0];
}

void ag__call_ops_drop(void *chain)
{
    for (struct ag__op *op = chain, *next; op; op = next) {
        next = op->next;
        op_free(op);
    }
}

int ag_rpc_call_send_ex(ag_rpc_call *c, const void *msg, size_t len, unsigned flags)
{
    void *copy = ag_memdup(msg, len);
    return copy ? ag__call_send_take_flags(c, copy, len, flags) : AG_E_NOMEM;
}

int ag_rpc_call_send(ag_rpc_call *c, const void *msg, size_t len)
{
    return ag_rpc_call_send_ex(c, msg, len, 0);
}

void ag_rpc_call_cancel(ag_rpc_call *c)
{
    ag__call_cancel_status(c, AG_RPC_CANCELLED, "cancelled by the application");
}

void ag__call_cancel_status(ag_rpc_call *c, int status, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&c->mu);
    if (!c->done && !c->cancelled) {
        c->cancel_status = status;
        ag_free(c->cancel_msg);
        c->cancel_msg = ag_strdup(why);
    }
    bool skip = c->done || c->cancelled || (!c->server && !c->start_posted);
    c->cancelled = true;
    if (!c->server && !c->start_posted) {
        /* never started: it ends here */
        c->done = c->recv_end = true;
        c->status = status;
        ag_free(c->message);
        c->message = ag_strdup(why);
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    if (!skip)
        ag__call_post(c, OP_CANCEL, NULL, 0);
}

void ag__conn_update_senders(ag__conn *conn)
{
    for (ag_rpc_call *c = conn->calls; c; c = c->conn_next) {
        if (!c->h2)
            continue;
        size_t waiting = ag__h2call_queued(c->h2);
        size_t sent = c->applied > waiting ? c->applied - waiting : 0;
        pthread_mutex_lock(&c->mu);
        if (sent != c->sent) {
            c->sent = sent;
            /* only a blocked sender cares: a receiver waiting on the same
             * condition must not wake for every write */
            if (c->send_waiters)
                pthread_cond_broadcast(&c->cv);
        }
        pthread_mutex_unlock(&c->mu);
    }
}
