/*
 * One gRPC connection over HTTP/2, client or server side, as a protocol
 * core with no I/O: bytes from the peer go in (ag__h2conn_recv), bytes for
 * the peer come out (ag__h2conn_send), and what happens to calls is
 * reported through events. nghttp2 does the HTTP/2 framing, HPACK and flow
 * control; this layer does gRPC: request and response headers, validation,
 * message framing and compression, status and trailers, cancellation.
 *
 * The socket glue (libuv, TLS) feeds and drains it on one loop thread; the
 * tests wire a client core to a server core in memory; a fuzz target feeds
 * the server core raw bytes.
 *
 * Call lifetime: a call (ag__h2call) exists from its request headers
 * (server) or ag__h2conn_call_start (client) until its stream closes; the
 * `done` event is its last, after which the core frees it. Events are
 * delivered from inside ag__h2conn_recv / _send; an event handler may call
 * any ag__h2call_* function on the same connection.
 */
#ifndef ARGOT_RPC_H2_H
#define ARGOT_RPC_H2_H

#include "wire.h"

typedef struct ag__h2conn ag__h2conn;
typedef struct ag__h2call ag__h2call;

/* Metadata: keys lowercase, values raw bytes (a -bin value decoded). */
typedef struct ag__md {
    char *key;
    uint8_t *value;
    size_t len;
} ag__md;

typedef struct ag__md_list {
    ag__md *v;
    size_t n;
    size_t cap;
} ag__md_list;

int ag__md_add(ag__md_list *l, const char *key, size_t klen, const void *value, size_t len);
void ag__md_free(ag__md_list *l);
/* The first value of key, or NULL. */
const ag__md *ag__md_get(const ag__md_list *l, const char *key);

typedef struct ag__h2_events {
    /* Server: a call's request headers are complete and valid. Return 0 to
     * take it, or a gRPC status to refuse it (sent as trailers-only, with
     * the message the handler may set through ag__h2call_finish first). */
    int (*call_begin)(void *ud, ag__h2call *c);
    /* A whole message arrived (decompressed); the handler takes msg
     * (ag_free; NULL when len is 0). */
    void (*message)(void *ud, ag__h2call *c, uint8_t *msg, size_t len);
    /* Server: the client half-closed (no more messages). */
    void (*half_close)(void *ud, ag__h2call *c);
    /* Client: the response headers arrived (not for trailers-only). */
    void (*headers)(void *ud, ag__h2call *c);
    /* The call is over, with its final status and message (never NULL).
     * Last event of the call; the core frees it afterwards. */
    void (*done)(void *ud, ag__h2call *c, int status, const char *message);
} ag__h2_events;

typedef struct ag__h2_opts {
    uint32_t max_recv_msg;       /* bytes (default 4 MiB) */
    uint32_t max_header_list;    /* bytes, as HTTP/2 counts them (default 16 KiB) */
    uint32_t stream_window;      /* initial stream window (default 1 MiB) */
    uint32_t max_concurrent;     /* server: streams per connection (default 1000) */
    const char *authority;       /* client: :authority (default "localhost") */
    const char *scheme;          /* client: "http" or "https" (default "http") */
    /* server: the ping policy (doc/keepalive.md): a ping sooner than this
     * after the previous one is a strike (default 5 minutes; 2 hours when
     * no call is open, unless pings_without_calls); sending headers or data
     * clears the strikes; past max_ping_strikes (default 2) the server
     * sends GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and the connection
     * ends */
    uint64_t min_ping_interval_ms;
    unsigned max_ping_strikes;
    bool pings_without_calls;
    uint64_t (*now_ns)(void);    /* the clock (default ag_now_ns; tests set their own) */
} ag__h2_opts;

void ag__h2_opts_init(ag__h2_opts *o);

/* A connection core; NULL on allocation failure. */
ag__h2conn *ag__h2conn_new(bool server, const ag__h2_opts *o, const ag__h2_events *ev, void *ud);
/* Frees the connection and every call still open (no events). */
void ag__h2conn_free(ag__h2conn *c);
const char *ag__h2conn_errmsg(const ag__h2conn *c);
/* The code of the last error: AG_E_CLOSED from call_start means the server
 * sent GOAWAY (start the call on a new connection). */
int ag__h2conn_errcode(const ag__h2conn *c);
/* Bytes from the peer. Returns 0, or AG_E_RPC_PROTOCOL when the peer broke
 * HTTP/2 (the connection is then over: send what is pending, then close). */
int ag__h2conn_recv(ag__h2conn *c, const uint8_t *data, size_t len);
/* Appends bytes for the peer to out (at most max_bytes per call, 0 = no
 * limit). Returns 0 or an error code. */
int ag__h2conn_send(ag__h2conn *c, ag_buf *out, size_t max_bytes);
bool ag__h2conn_want_write(const ag__h2conn *c);
/* False once both sides are done with the connection (GOAWAY or error). */
bool ag__h2conn_alive(const ag__h2conn *c);
/* Server: graceful shutdown: GOAWAY with the last stream taken; calls in
 * flight go on, new ones are refused (the client sees UNAVAILABLE). */
int ag__h2conn_goaway(ag__h2conn *c);
/* Open calls. */
size_t ag__h2conn_ncalls(const ag__h2conn *c);
/* Sends a PING (keepalive); AG_E_STATE while the previous one waits for
 * its ACK. */
int ag__h2conn_ping(ag__h2conn *c);
bool ag__h2conn_ping_outstanding(const ag__h2conn *c);
/* The peer's first frame arrived (its connection preface is done). */
bool ag__h2conn_got_preface(const ag__h2conn *c);
/* Client: the server ended the connection for too many pings (a keepalive
 * client then doubles its interval, as gRPC's do). */
bool ag__h2conn_told_too_many_pings(const ag__h2conn *c);

/* ---- calls ----------------------------------------------------------------- */

/* Client: starts a call to method ("/pkg.Service/Method"); timeout_ns
 * UINT64_MAX for none; md is sent as request metadata; enc compresses the
 * messages sent. NULL on failure (see ag__h2conn_errmsg). */
ag__h2call *ag__h2conn_call_start(ag__h2conn *c, const char *method, uint64_t timeout_ns,
                                  const ag__md_list *md, ag__grpc_encoding enc);

void ag__h2call_set_owner(ag__h2call *call, void *owner);
void *ag__h2call_owner(const ag__h2call *call);
const char *ag__h2call_method(const ag__h2call *call);
/* Server: the client's timeout (UINT64_MAX: none). */
uint64_t ag__h2call_timeout_ns(const ag__h2call *call);
/* Server: request metadata. Client: response headers' metadata. */
const ag__md_list *ag__h2call_md(const ag__h2call *call);
/* Client: trailers' custom metadata (valid in `done`). */
const ag__md_list *ag__h2call_trailers(const ag__h2call *call);

/* Server: sends the response headers now with md (otherwise they go with
 * the first message or the status). */
int ag__h2call_send_headers(ag__h2call *call, const ag__md_list *md);
/* In the `message` event: whether that message came compressed. */
bool ag__h2call_last_compressed(const ag__h2call *call);
/* Server, before the response headers: compress responses with enc if the
 * client's grpc-accept-encoding lists it (returns 0), identity otherwise
 * (returns 1). AG_E_STATE after the headers or on a client. */
int ag__h2call_set_encoding(ag__h2call *call, ag__grpc_encoding enc);
/* Queues one message (copied). compress: use the call's encoding. */
int ag__h2call_send(ag__h2call *call, const void *msg, size_t len, bool compress);
/* The same without the copy: msg (ag_malloc'd) is the core's from now on,
 * on success or failure. */
int ag__h2call_send_take(ag__h2call *call, void *msg, size_t len, bool compress);
/* Client: no more messages (END_STREAM after the queued ones). */
int ag__h2call_close_send(ag__h2call *call);
/* Server: ends the call with status, message (may be NULL) and trailers
 * (may be NULL), after the queued messages. */
int ag__h2call_finish(ag__h2call *call, int status, const char *message,
                      const ag__md_list *trailers);
/* Either side: abandons the call (RST_STREAM CANCEL); `done` reports
 * status and message (DEADLINE_EXCEEDED on a client's expired deadline,
 * CANCELLED otherwise). */
int ag__h2call_cancel(ag__h2call *call, int status, const char *message);
/* The call's deadline passed. Server: the status DEADLINE_EXCEEDED goes
 * to the client now (trailers, or trailers-only), whatever was queued is
 * dropped, and RST_STREAM NO_ERROR follows if the client was still
 * sending (a message already partly framed forces RST_STREAM CANCEL
 * instead). Client: as ag__h2call_cancel with DEADLINE_EXCEEDED. */
int ag__h2call_expire(ag__h2call *call);
/* Bytes of this call's messages still queued here (not yet taken by
 * HTTP/2 framing, which waits for the peer's flow-control window). */
size_t ag__h2call_queued(const ag__h2call *call);
/* Flow control: while paused, received bytes are not returned to the
 * peer's window, so a sender faster than the application stalls after one
 * window instead of filling memory. */
void ag__h2call_pause(ag__h2call *call, bool paused);

#endif /* ARGOT_RPC_H2_H */
