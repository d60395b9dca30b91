/*
 * The rpc runtime's shared parts: event-loop threads with a task queue
 * (loop.c), a connection that carries one HTTP/2 core over a libuv stream
 * (conn.c), and the call object shared by an application thread and a loop
 * thread (call.c). server.c and channel.c build on them.
 *
 * Threads: everything with "loop side" in its comment runs on the owning
 * loop's thread only (or, for a channel's lendable loop, by the thread it
 * is lent to, ag__loop_drive); an application thread reaches it by posting a task
 * (ag__loop_post). The call object's fields under `mu` are the only state
 * both sides touch.
 */
#ifndef ARGOT_RPC_RT_H
#define ARGOT_RPC_RT_H

#include <pthread.h>
#include <uv.h>

#include "h2.h"
#include "tls.h"

/* ---- loops ------------------------------------------------------------------ */

typedef void (*ag__task_fn)(void *arg);

typedef struct ag__task {
    struct ag__task *next;
    ag__task_fn fn;
    void *arg;
} ag__task;

typedef struct ag__loop {
    uv_loop_t uv;
    uv_async_t wake;
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    ag__task *head, *tail;  /* posted tasks, under mu */
    bool stop;              /* under mu: close `wake` after the tasks */
    /* A lendable loop (channels): whoever holds `drive` runs it, its own
     * thread between events, or an application thread waiting for its
     * call (ag__loop_drive), which then does the call's I/O itself. */
    bool lendable;
    pthread_mutex_t drive;
    pthread_cond_t lent_cv;  /* under mu: the loop's thread waits while lent */
    bool lent;               /* under mu: an application thread drives */
    uint64_t poll_until;     /* under mu: when the loop's thread wakes by itself
                              * (loop ms; UINT64_MAX: only for an event) */
} ag__loop;

/* Initializes the uv loop (handles may then be created on it from this
 * thread, before start). */
int ag__loop_init(ag__loop *l);
/* The loop may be driven by an application thread (before start). */
void ag__loop_set_lendable(ag__loop *l);
/* Application thread, lendable loop: if no other thread drives it, takes
 * it and runs it here (loop-side code may then run on this thread) until
 * done(arg) holds, and returns true; false if another application thread
 * is driving it (wait for the loop the usual way). prep(arg), if set, runs
 * first, on the loop. */
bool ag__loop_drive(ag__loop *l, void (*prep)(void *), bool (*done)(void *), void *arg);
int ag__loop_start(ag__loop *l, const char *name);
/* Runs fn(arg) on the loop's thread, soon. Thread-safe. AG_E_CLOSED once
 * the loop is stopping (fn will not run then). */
int ag__loop_post(ag__loop *l, ag__task_fn fn, void *arg);
/* After every handle of the owner is closed (by tasks posted before):
 * stops the loop and joins its thread, then closes the uv loop. */
void ag__loop_stop(ag__loop *l);

/* A TCP socket listening on addr ("host:port", port 0: the kernel picks),
 * bound with SO_REUSEADDR and without SO_REUSEPORT (the port is the
 * caller's alone); returns its fd (nonblocking, the caller's) and sets
 * *bound to the port, or a negative code with err naming the address
 * ("127.0.0.1:9100: address already in use"; a malformed one: "x: expected
 * <expected>"). server.c. */
int ag__tcp_listen(const char *addr, const char *expected, int *bound, ag_errbuf *err);

/* ---- connections -------------------------------------------------------------- */

typedef struct ag__conn ag__conn;
typedef struct ag_rpc_call ag_rpc_call;

/* What a connection tells its owner (server or channel), loop side. */
typedef struct ag__conn_owner_ops {
    /* TLS client: the connection can take calls: the handshake is done and
     * the server's first bytes came through it. (A plaintext connection is
     * ready at once; its owner knows without being told.) */
    void (*ready)(void *owner, ag__conn *c);
    /* The connection is gone (closed by either side); its calls have been
     * failed already with status and why, which say what happened. The
     * owner drops its pointer; the memory is freed after this returns. */
    void (*closed)(void *owner, ag__conn *c, int status, const char *why);
} ag__conn_owner_ops;

struct ag__conn {
    ag__loop *loop;
    union {
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    ag__h2conn *h2;
    const ag__conn_owner_ops *ops;
    void *owner;
    uv_write_t wreq;
    ag_buf wbuf;            /* bytes in the write in flight */
    bool writing;
    bool closing;
    bool reading;
    bool draining;          /* close once nothing is left to write */
    bool client;
    bool seen_bytes;        /* something was read */
    /* TLS (tls.c) between the socket and the core; tls NULL: plaintext */
    ag__tls *tls;
    ag_buf pbuf;            /* TLS: the core's bytes, before encryption */
    bool secure;            /* TLS: the handshake is done: the core's bytes flow */
    bool ready;             /* TLS client: the owner heard `ready` */
    bool tls_failed;        /* TLS: close with the TLS error once the alert is out */
    bool tls_shut;          /* TLS: close_notify is queued */
    ag_rpc_call *calls;     /* calls on this connection (loop references) */
    /* keepalive (set by the owner before ag__conn_start; time 0: off) */
    uint64_t ka_time_ms;    /* ping after this long without reading anything */
    uint64_t ka_timeout_ms; /* close if its ACK takes longer */
    bool ka_without_calls;  /* ping even with no call open */
    uv_timer_t ka_timer;
    bool ka_on;
    uint64_t last_read_ns;
    uint64_t ping_sent_ns;  /* 0: no keepalive ping waiting */
    bool too_many_pings;    /* client: the server ended it for too many pings */
    uint64_t hs_timeout_ms; /* server: the client must have completed its TLS handshake and
                             * sent its HTTP/2 preface by then (0: no limit) */
    uint64_t start_ns;
    bool established;       /* server: the client's preface (and TLS handshake) arrived */
    int handles;            /* libuv handles still open (the memory goes at 0) */
    struct ag__conn *next;  /* in the owner's list */
    uint8_t rbuf[64 * 1024];
};

/* Takes an initialized, connected stream handle (c->h) and starts reading;
 * h2 is the core, with c as its events' ud; tls, if set, the TLS state
 * (the connection owns both from here). A TLS client sends its
 * ClientHello; the core's bytes flow once the handshake is done. */
int ag__conn_start(ag__conn *c);
/* Writes what the core has to say, if no write is in flight. */
void ag__conn_flush(ag__conn *c);
/* Closes the connection: every call on it ends (status given for the
 * calls' owners), then `closed`, then the memory. */
void ag__conn_close(ag__conn *c, int status, const char *why);
/* Closes the connection once what the core has to say is written. */
void ag__conn_drain(ag__conn *c);

/* ---- calls --------------------------------------------------------------------- */

struct rmsg {
    struct rmsg *next;
    size_t len;
    uint8_t *data;
    bool compressed;             /* it came compressed */
};

struct ag_rpc_server;
struct ag_rpc_channel;
struct job;

struct ag_rpc_call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;                    /* under mu: the application's + the loop's */
    bool server;
    char *method;
    ag_deadline deadline;
    ag__loop *loop;              /* the loop that runs it (set before any task) */
    struct ag__op *pend_head;    /* loop side, client: operations that came before the
                                  * stream existed, replayed in order once it does */
    struct ag__op *pend_tail;
    bool ended_unstarted;        /* loop side: failed before it had a stream */
    bool done_loop;              /* loop side: its stream ended */
    size_t applied;              /* loop side: bytes handed to the core's queue */
    unsigned send_waiters;       /* under mu: senders blocked on backpressure */
    /* loop side */
    ag__conn *conn;
    ag__h2call *h2;              /* NULL until started (client) and after done */
    struct ag_rpc_call *conn_next, *conn_prev;
    uv_timer_t timer;
    bool timer_on;
    struct ag_rpc_channel *ch;   /* client */
    struct ag_rpc_server *srv;   /* server */
    bool on_loop;                /* server: its handler runs on the loop (AG_RPC_ON_LOOP) */
    struct job *loop_job;        /* loop side: that handler, until the request is whole */
    char *peer_identity;         /* server, mutual TLS: the client certificate's name
                                  * (set before the handler starts, then read-only) */
    /* under mu */
    bool start_posted;           /* client: the start task is on its way */
    ag__md_list out_md;          /* to send: request metadata / response headers */
    ag__md_list out_trailers;    /* server */
    char *out_message;           /* server: the status message */
    ag__grpc_encoding send_enc;  /* the encoding chosen (ag_rpc_call_set_compression) */
    unsigned nsent;              /* messages the application sent */
    int out_status;              /* server: what the handler returned */
    bool headers_done;           /* server, loop side: response headers went out */
    struct rmsg *rq_head, *rq_tail;
    bool recv_end;               /* server: half-closed; client: done */
    bool done;
    int status;
    char *message;
    ag__md_list in_md;
    ag__md_list in_trailers;
    bool cancelled;              /* the application cancelled */
    int cancel_status;           /* and the status it ends with (0: CANCELLED) */
    char *cancel_msg;
    size_t rq_bytes;             /* bytes waiting in the receive queue */
    unsigned last_recv_flags;    /* AG_RPC_RECV_* of the last message taken */
    bool rq_paused;              /* the loop stopped returning window for this call */
    bool resume_posted;          /* the application asked the loop to resume */
    size_t posted;               /* bytes of messages the application queued */
    size_t sent;                 /* of those, bytes no longer waiting (loop-updated) */
};

/* ag_rpc_call_send blocks while more than this many bytes of the call's
 * messages wait to go out: the network's pace reaches the application. */
#define AG__CALL_SEND_LIMIT (4u << 20)
/* Past this many bytes received and not yet taken by the application, the
 * call stops returning flow-control window to the peer, which then stalls
 * within one window; below half of it, the window flows again. */
#define AG__CALL_RECV_LIMIT (4u << 20)

/* Client: a unary call's start, request (taken) and half-close as one
 * chain of operations, to run on the loop in one go (ag__call_ops_run:
 * posted as one task, or run by a thread driving the loop); NULL when out
 * of memory or the call has started (msg is freed). ag__call_ops_drop
 * frees a chain that will not run. */
void *ag__call_unary_ops(ag_rpc_call *c, void *msg, size_t len);
void ag__call_ops_run(void *chain);
void ag__call_ops_drop(void *chain);
/* Client: runs a unary call's operations and waits for its end, driving
 * the channel's loop on this thread when it is free (no hand-off to the
 * loop's thread and back), or through the loop's thread otherwise. The
 * call has ended (its status is in) when this returns. */
void ag__channel_unary(ag_rpc_call *c, void *msg, size_t len);
/* ag_rpc_call_send_take with ag_rpc_call_send_ex's flags. */
int ag__call_send_take_flags(ag_rpc_call *c, void *msg, size_t len, unsigned flags);
/* Cancels the call (RST_STREAM CANCEL to the peer); the application sees
 * status and the message (client). */
void ag__call_cancel_status(ag_rpc_call *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Server: ag_rpc_call_set_status_message with a format. */
void ag__call_status_message(ag_rpc_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Loop side: after writes, tells waiting senders how far their calls got. */
void ag__conn_update_senders(ag__conn *c);

ag_rpc_call *ag__call_new(bool server, const char *method, ag_deadline deadline);
void ag__call_unref(ag_rpc_call *c);
/* Loop side: links the call to the connection and core (one loop ref). */
void ag__call_attach(ag_rpc_call *c, ag__conn *conn, ag__h2call *h2);
/* Loop side: the call is over; wakes the application, drops the loop's
 * reference. */
void ag__call_done(ag_rpc_call *c, int status, const char *message);
/* Loop side: the core's events for calls, shared by server and channel. */
void ag__call_on_message(ag_rpc_call *c, uint8_t *msg, size_t len, bool compressed);
void ag__call_on_half_close(ag_rpc_call *c);
void ag__call_on_headers(ag_rpc_call *c, const ag__md_list *md);
void ag__call_on_done(ag_rpc_call *c, const ag__md_list *trailers, int status, const char *msg);
/* Loop side: starts the deadline timer, if the call has a deadline. */
void ag__call_arm_deadline(ag_rpc_call *c);

/* Posts an operation on the call to its loop (it holds a reference until
 * it ran). kind: OP_SEND (takes data; OP_SEND_PLAIN: uncompressed), OP_CLOSE_SEND, OP_CANCEL, OP_FINISH. */
enum { OP_SEND, OP_SEND_PLAIN, OP_CLOSE_SEND, OP_CANCEL, OP_FINISH, OP_START, OP_RESUME };
int ag__call_post(ag_rpc_call *c, int kind, uint8_t *data, size_t len);
/* Loop side, client: the call has its stream (run what waited) or never
 * will (drop what waited). */
void ag__call_replay(ag_rpc_call *c);
void ag__call_drop_pending(ag_rpc_call *c);
/* Loop side, server: sends the status the handler left (server.c). */
void ag__server_finish(ag_rpc_call *c);
/* Loop side, client: starts the call on the channel's connection. */
void ag__channel_do_start(ag_rpc_call *c);
/* Client: posts the start task once (channel.c). */
int ag__channel_start_call(ag_rpc_call *c);

#endif /* ARGOT_RPC_RT_H */
