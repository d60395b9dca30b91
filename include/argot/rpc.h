/*
 * argot rpc: gRPC in C, protobuf (protobuf-c) over HTTP/2 (nghttp2),
 * interoperable with every other gRPC.
 *
 * Servers and channels run event-loop threads (libuv); applications use
 * calls from their own threads with blocking functions. Beneath them, the
 * protocol cores in src/rpc/ (wire.c: framing, grpc-timeout, grpc-message,
 * metadata, compression; h2.c: one HTTP/2 connection's gRPC) do no I/O, so
 * tests and fuzzers drive them directly.
 *
 * TLS (OpenSSL 3, tls.c) is optional on both sides, plaintext being the
 * default: TLS 1.2 or 1.3, ALPN "h2", the server's certificate verified by
 * the client (issuer and name), and with a CA on the server, mutual TLS:
 * every client presents a certificate that CA issued, and handlers see
 * whom it names (ag_rpc_call_peer_identity).
 *
 * Typed code: protoc-gen-argot generates, per .proto file, client stubs
 * and a server handler table on top of the "protobuf messages" section;
 * health (grpc.health.v1) and reflection (grpc.reflection.v1alpha, v1)
 * services come with the library.
 *
 * The admin endpoint (admin.c) is a small HTTP/1.1 server, apart from gRPC,
 * that every daemon runs for Prometheus metrics, health checks and pages.
 *
 * Not yet here: wait-for-ready calls, background reconnection, certificate
 * reloading and revocation lists.
 */
#ifndef ARGOT_RPC_H
#define ARGOT_RPC_H

#include "argot/base.h"

/* gRPC status codes (grpc/grpc doc/statuscodes.md), by their numbers. */
typedef enum ag_rpc_status {
    AG_RPC_OK = 0,
    AG_RPC_CANCELLED = 1,
    AG_RPC_UNKNOWN = 2,
    AG_RPC_INVALID_ARGUMENT = 3,
    AG_RPC_DEADLINE_EXCEEDED = 4,
    AG_RPC_NOT_FOUND = 5,
    AG_RPC_ALREADY_EXISTS = 6,
    AG_RPC_PERMISSION_DENIED = 7,
    AG_RPC_RESOURCE_EXHAUSTED = 8,
    AG_RPC_FAILED_PRECONDITION = 9,
    AG_RPC_ABORTED = 10,
    AG_RPC_OUT_OF_RANGE = 11,
    AG_RPC_UNIMPLEMENTED = 12,
    AG_RPC_INTERNAL = 13,
    AG_RPC_UNAVAILABLE = 14,
    AG_RPC_DATA_LOSS = 15,
    AG_RPC_UNAUTHENTICATED = 16,
} ag_rpc_status;

/* "OK", "CANCELLED", ... "UNAUTHENTICATED"; "UNKNOWN" for other values. */
const char *ag_rpc_status_name(int status);

/* ---- calls (both sides) --------------------------------------------------- *
 *
 * A call is used from one application thread with blocking functions; the
 * I/O happens on the connection's event-loop thread. Messages are byte
 * strings (serialized protobufs); the generated stubs wrap them. */

typedef struct ag_rpc_call ag_rpc_call;

/* Receives the next message: 1 with *msg (free with ag_free) and *len, 0
 * at the end of the peer's messages (client: the call is over, see
 * ag_rpc_call_status; server: the client half-closed), or a negative code:
 * AG_E_CANCELED when the call was cancelled or its deadline passed,
 * AG_E_CLOSED when the connection broke. */
int ag_rpc_call_recv(ag_rpc_call *c, uint8_t **msg, size_t *len);
/* Queues a message (copied) for the loop thread to send. Blocks while more
 * than 4 MiB of this call's messages wait to go out (the peer's HTTP/2
 * flow control sets the pace), so a fast sender never fills memory.
 * AG_E_CANCELED when the call is over. */
int ag_rpc_call_send(ag_rpc_call *c, const void *msg, size_t len);
/* As ag_rpc_call_send, without copying: msg (allocated with ag_malloc)
 * belongs to the call from now on, on success or failure. */
int ag_rpc_call_send_take(ag_rpc_call *c, void *msg, size_t len);
/* Metadata to send: the client's request metadata (before the first send)
 * or the server's response headers (before its first message). -bin keys
 * carry binary values. */
int ag_rpc_call_add_metadata(ag_rpc_call *c, const char *key, const void *value, size_t len);
/* Received metadata: the server sees the request's; the client the
 * response headers' (once a message or the status arrived) and, with
 * trailers true, the trailers' (after the status). i-th entry; NULL past
 * the end. */
const char *ag_rpc_call_metadata(ag_rpc_call *c, bool trailers, size_t i, ag_slice *value);
void ag_rpc_call_cancel(ag_rpc_call *c);
/* True once the call is over for reasons other than the handler's own
 * status: the peer cancelled, its deadline passed, the connection broke. */
bool ag_rpc_call_is_cancelled(ag_rpc_call *c);
/* Blocks until the call is over (server: the peer cancelled, the deadline
 * passed, the connection broke, or the server is closing it; client: its
 * status arrived), or until deadline. True if it is over. For a handler
 * whose stream lives on other threads' sends (a watch). */
bool ag_rpc_call_wait_done(ag_rpc_call *c, ag_deadline deadline);
ag_deadline ag_rpc_call_deadline(const ag_rpc_call *c);
const char *ag_rpc_call_method(const ag_rpc_call *c);
/* Server, mutual TLS: who the client is, from the certificate it presented
 * and the server verified against its CA file: the subject's common name
 * (the last one if several), or if it has none, its first DNS
 * subjectAltName. NULL on a plaintext connection, with TLS but no client
 * certificates (no CA configured), on a client's call, and for a
 * certificate whose names are empty or hold a NUL byte. Valid until the
 * call is freed; the same for every call of one connection. */
const char *ag_rpc_call_peer_identity(const ag_rpc_call *c);

/* ---- server ------------------------------------------------------------------ */

typedef struct ag_rpc_server ag_rpc_server;

/* Serves one call, on a pool thread (one per call in flight; idle ones
 * are kept 30 s for the next calls); returns the status to end the call
 * with (AG_RPC_OK, or a code with a message set through
 * ag_rpc_call_set_status). Messages queued with ag_rpc_call_send go before
 * the status. */
typedef int (*ag_rpc_handler)(ag_rpc_call *c, void *ud);

/* Server side: the message that goes with the handler's non-OK status,
 * and trailing metadata (add before the handler returns). */
int ag_rpc_call_set_status_message(ag_rpc_call *c, const char *message);
int ag_rpc_call_add_trailer(ag_rpc_call *c, const char *key, const void *value, size_t len);

typedef struct ag_rpc_server_opts {
    unsigned loops;          /* event-loop threads (0: one per CPU, at most 4) */
    uint32_t max_recv_msg;   /* bytes (default 4 MiB) */
    unsigned max_calls;      /* concurrent calls (default 1024): more get RESOURCE_EXHAUSTED */
    /* Keepalive (doc/keepalive.md): a PING after keepalive_time_ms without
     * a byte from the client (default 2 hours; 0: never), and the
     * connection closed if no ACK comes within keepalive_timeout_ms
     * (default 20 s). The ping policy: a client's ping sooner than
     * min_ping_interval_ms after its previous one (default 5 minutes; 2
     * hours while it has no call open, unless permit_pings_without_calls)
     * is a strike, sending headers or data clears them, and past
     * max_ping_strikes (default 2) the server answers GOAWAY
     * ENHANCE_YOUR_CALM "too_many_pings" and closes the connection. */
    uint64_t keepalive_time_ms;
    uint64_t keepalive_timeout_ms;
    /* A client that has not finished its TLS handshake and sent its first
     * HTTP/2 frame within handshake_timeout_ms (default 20 s; 0: no limit)
     * is disconnected, so silent connections cannot pile up. */
    uint64_t handshake_timeout_ms;
    uint64_t min_ping_interval_ms;
    unsigned max_ping_strikes;
    bool permit_pings_without_calls;
    /* TLS: on when any tls_* file is set (default NULL: plaintext). PEM
     * files; ag_rpc_server_new copies their names, ag_rpc_server_start
     * reads them, and a file that cannot be used fails the start with a
     * message naming it ("alice.key: no such file or directory", "bob.crt:
     * key does not match certificate (key from bob.key)"); so does a CA
     * or key file without a certificate. Clients must offer ALPN h2; the
     * handshakes run on the loop threads. */
    const char *tls_cert_file; /* the server's certificate, then its chain */
    const char *tls_key_file;  /* its private key, unencrypted */
    const char *tls_ca_file;   /* NULL, or CAs: then every client must present a
                                * certificate one of them issued (mutual TLS) */
} ag_rpc_server_opts;

void ag_rpc_server_opts_init(ag_rpc_server_opts *o);
ag_rpc_server *ag_rpc_server_new(const ag_rpc_server_opts *o);
/* method: "/package.Service/Method". Before start. */
int ag_rpc_server_register(ag_rpc_server *s, const char *method, ag_rpc_handler h, void *ud);
/* addr: "host:port" (port 0 picks a free one) or "unix:/path". Loads the
 * TLS files, binds, starts the loop threads; returns 0 or an error with
 * ag_rpc_server_errmsg naming the address or the file ("127.0.0.1:9100:
 * address already in use"). The port is this server's alone: one socket,
 * bound without SO_REUSEPORT, shared by the loop threads, so neither
 * another server in this process nor another process can bind it while
 * the server runs. */
int ag_rpc_server_start(ag_rpc_server *s, const char *addr);
/* The port bound (after start, TCP). */
int ag_rpc_server_port(const ag_rpc_server *s);
/* Graceful stop: GOAWAY to every client, calls in flight get up to
 * grace_ms to finish, then are cancelled; new calls are refused. */
void ag_rpc_server_shutdown(ag_rpc_server *s, uint64_t grace_ms);
/* Shuts down (grace 0) if still running, joins every thread, frees. */
void ag_rpc_server_free(ag_rpc_server *s);
const char *ag_rpc_server_errmsg(const ag_rpc_server *s);

/* ---- client ------------------------------------------------------------------ */

typedef struct ag_rpc_channel ag_rpc_channel;

typedef struct ag_rpc_channel_opts {
    uint32_t max_recv_msg;       /* bytes (default 4 MiB) */
    uint64_t connect_timeout_ms; /* TCP connect and TLS handshake (default 20000) */
    /* Reconnect backoff (doc/connection-backoff.md): after a failed
     * connection attempt, calls fail at once with UNAVAILABLE (the last
     * error, and when the next attempt may start) until the backoff has
     * passed; it starts at backoff_initial_ms (default 1000), grows 1.6x
     * per failure with +-20% jitter up to backoff_max_ms (default 120000),
     * and resets once a connection is made. */
    uint64_t backoff_initial_ms;
    uint64_t backoff_max_ms;
    /* Keepalive: a PING after keepalive_time_ms without a byte from the
     * server (default 0: never), while calls are open or always with
     * keepalive_without_calls; no ACK within keepalive_timeout_ms (default
     * 20 s) closes the connection and fails its calls with UNAVAILABLE. A
     * server's GOAWAY "too_many_pings" doubles keepalive_time_ms. Servers
     * allow a ping every 5 minutes by default: ask before going lower. */
    uint64_t keepalive_time_ms;
    uint64_t keepalive_timeout_ms;
    bool keepalive_without_calls;
    /* TLS: on when tls is true or any tls_* string is set (default:
     * plaintext). PEM files, read by ag_rpc_channel_new (the strings need
     * not outlive it). The server must select ALPN h2 and present a
     * certificate that a trusted CA issued for tls_server_name. */
    bool tls;
    const char *tls_ca_file;     /* CAs trusted to issue the server's certificate
                                  * (NULL: the system's trust store) */
    const char *tls_cert_file;   /* the client's certificate and chain, for mutual TLS
                                  * (NULL: none); needs tls_key_file */
    const char *tls_key_file;    /* its private key, unencrypted */
    const char *tls_server_name; /* the DNS name (sent as SNI) or IP address the server's
                                  * certificate must carry (NULL: the target's host;
                                  * "localhost" for unix:) */
} ag_rpc_channel_opts;

void ag_rpc_channel_opts_init(ag_rpc_channel_opts *o);
/* target: "host:port" or "unix:/path". Connects on the first call, and
 * again after a failure; with TLS, a connection takes calls once the
 * handshake is done and the server's first HTTP/2 frame has arrived, so
 * that a server refusing the client's certificate (which TLS 1.3 tells
 * after the client's side of the handshake) shows as a failed handshake.
 * NULL on allocation failure or a malformed target. A channel whose TLS
 * files cannot be used is still returned, but every call on it fails at
 * once with UNAVAILABLE and the reason: check ag_rpc_channel_errmsg. */
ag_rpc_channel *ag_rpc_channel_new(const char *target, const ag_rpc_channel_opts *o);
void ag_rpc_channel_free(ag_rpc_channel *ch);
/* "" for a usable channel; otherwise why its TLS setup failed, naming the
 * file ("client.key: no such file or directory"). */
const char *ag_rpc_channel_errmsg(const ag_rpc_channel *ch);

/* Starts a call (headers go when the first message or close_send does).
 * deadline: ag_deadline_never() or a point in time. NULL on allocation
 * failure. A call that cannot get a connection ends with UNAVAILABLE and
 * a message naming the target and the reason ("cannot connect to
 * 127.0.0.1:9100: TLS handshake: certificate verify failed: IP address
 * mismatch"). */
ag_rpc_call *ag_rpc_call_new(ag_rpc_channel *ch, const char *method, ag_deadline deadline);
/* Client: starts the call now (connects, sends the request headers with
 * the metadata added so far) instead of with the first message. */
int ag_rpc_call_begin(ag_rpc_call *c);
/* Client: no more messages. */
int ag_rpc_call_close_send(ag_rpc_call *c);
/* Client: waits for the end of the call; returns its status and (borrowed
 * until free) message. Messages not yet received are dropped. */
int ag_rpc_call_status(ag_rpc_call *c, const char **message);
void ag_rpc_call_free(ag_rpc_call *c);

/* A unary call: one request, one response (free with ag_free). Returns the
 * status; *message (may be NULL) gets a copy of the status message, for
 * ag_free. */
int ag_rpc_unary(ag_rpc_channel *ch, const char *method, const void *req, size_t req_len,
                 ag_deadline deadline, uint8_t **resp, size_t *resp_len, char **message);

/* ---- compression (per call, per message) --------------------------------------- *
 *
 * gzip and deflate per grpc-encoding (doc/compression.md). A client chooses
 * the encoding of its request messages before the call starts; a server the
 * encoding of its responses before its first message, and it is used only
 * if the client listed it in grpc-accept-encoding (identity otherwise, as
 * the spec asks). Receiving needs nothing: any supported encoding is
 * decompressed, within the maximum message size. */

/* name: "gzip", "deflate" or "identity" (NULL: identity). AG_E_INVAL for
 * another name, AG_E_STATE once the call's headers are out. */
int ag_rpc_call_set_compression(ag_rpc_call *c, const char *name);

/* Flags of ag_rpc_call_send_ex. */
#define AG_RPC_SEND_NO_COMPRESS 1u /* this message goes uncompressed (flag 0) */

int ag_rpc_call_send_ex(ag_rpc_call *c, const void *msg, size_t len, unsigned flags);
/* Flags of ag_rpc_call_recv_ex's *flags. */
#define AG_RPC_RECV_COMPRESSED 1u /* the message arrived compressed */

/* As ag_rpc_call_recv; *flags (may be NULL) says how the message came. */
int ag_rpc_call_recv_ex(ag_rpc_call *c, uint8_t **msg, size_t *len, unsigned *flags);
/* The flags of the last message received (by any recv function, including
 * the typed ones and the request a typed handler was given); 0 before. */
unsigned ag_rpc_call_recv_flags(ag_rpc_call *c);

/* ---- protobuf messages and generated code ----------------------------------------- *
 *
 * Messages are protobuf-c's (ProtobufCMessage and its descriptors, from
 * protoc-c's output). `protoc-gen-argot` (tools/, run by the Makefile next to
 * protoc-c) generates, for every service in a .proto file, typed client
 * stubs and a typed server handler table on top of these functions, and
 * for every file its reflection data (ag_rpc_proto_file). For method M of
 * service S in package P (names converted as protoc-c does, e.g.
 * grpc__testing__test_service__unary_call): P__S__M__method, client
 * __start / __send_request / __recv_response (/ __invoke if unary), server
 * __recv_request / __send_response, and P__S_Handlers with P__S__register;
 * see docs/ARCHITECTURE.md. */

struct ProtobufCMessage;
struct ProtobufCMessageDescriptor;

typedef enum ag_rpc_kind {
    AG_RPC_UNARY = 0,            /* one request, one response */
    AG_RPC_CLIENT_STREAMING = 1, /* requests, one response */
    AG_RPC_SERVER_STREAMING = 2, /* one request, responses */
    AG_RPC_BIDI_STREAMING = 3,   /* both ways */
} ag_rpc_kind;

/* One method of a service, as generated code describes it. */
typedef struct ag_rpc_method {
    const char *path;                                /* "/grpc.testing.TestService/UnaryCall" */
    const struct ProtobufCMessageDescriptor *input;  /* the request type */
    const struct ProtobufCMessageDescriptor *output; /* the response type */
    ag_rpc_kind kind;
} ag_rpc_method;

/* Packs m and sends it (ag_rpc_call_send_ex, flags as there). */
int ag_rpc_call_send_msg(ag_rpc_call *c, const struct ProtobufCMessage *m, unsigned flags);
/* Receives the next message and unpacks it as a d: 1 with *m (free with
 * ag_rpc_msg_free), 0 at the end, or a negative code as ag_rpc_call_recv;
 * AG_E_RPC_PARSE when the bytes are not a d. A client's call is then
 * cancelled (its status says INTERNAL: the response could not be parsed);
 * a server's caller chooses the status (the generated handlers and
 * ag_rpc_server_register_method answer INTERNAL, as gRPC's servers do). */
int ag_rpc_call_recv_msg(ag_rpc_call *c, const struct ProtobufCMessageDescriptor *d,
                         struct ProtobufCMessage **m);
void ag_rpc_msg_free(struct ProtobufCMessage *m);
/* Unpacks len bytes as a d with argot's allocator (free with
 * ag_rpc_msg_free): 0, or AG_E_RPC_PARSE (a malformed message, or no
 * memory). */
int ag_rpc_msg_unpack(const struct ProtobufCMessageDescriptor *d, const void *buf, size_t len,
                      struct ProtobufCMessage **m);
/* A client call of method m (its path; the descriptors are for the stubs). */
ag_rpc_call *ag_rpc_call_start(ag_rpc_channel *ch, const ag_rpc_method *m, ag_deadline deadline);
/* A unary call with messages: *resp (ag_rpc_msg_free) on AG_RPC_OK;
 * *message as ag_rpc_unary. */
int ag_rpc_unary_msg(ag_rpc_channel *ch, const ag_rpc_method *m, const struct ProtobufCMessage *req,
                     ag_deadline deadline, struct ProtobufCMessage **resp, char **message);

/* A typed method's handler. req is the request, unpacked, for UNARY and
 * SERVER_STREAMING methods (the server waited for the client's half-close
 * and freed it after the handler returns), NULL for the streaming-request
 * kinds (the handler receives with ag_rpc_call_recv_msg). A handler of a
 * UNARY or CLIENT_STREAMING method sends exactly one response before
 * returning AG_RPC_OK (none: the client gets INTERNAL). */
typedef int (*ag_rpc_method_handler)(ag_rpc_call *c, const struct ProtobufCMessage *req, void *ud);

/* Flags of ag_rpc_server_register_method. */
#define AG_RPC_ON_LOOP 1u /* run the handler on the connection's loop thread, once
                           * the request is whole (UNARY and SERVER_STREAMING only):
                           * no thread hand-off, for handlers that never block; its
                           * sends go out at once and are not paced */

/* Registers m's handler (generated code adapts its typed handlers to h).
 * flags: 0 (the handler runs on a pool thread: it may block) or
 * AG_RPC_ON_LOOP. A request that is not an m->input gets INTERNAL, a
 * second request to a single-request method INTERNAL, none at all
 * INTERNAL (gRPC's servers do the same). Before start. */
int ag_rpc_server_register_method(ag_rpc_server *s, const ag_rpc_method *m,
                                  ag_rpc_method_handler h, void *ud, unsigned flags);
/* ag_rpc_server_register with flags: AG_RPC_ON_LOOP runs h on the loop
 * once the client has half-closed (so its receives never wait): for
 * single-request methods whose handler never blocks. */
int ag_rpc_server_register_ex(ag_rpc_server *s, const char *method, ag_rpc_handler h, void *ud,
                              unsigned flags);

/* A .proto file as the generated code describes it for server reflection
 * (protoc-gen-argot emits one per file, named after its path:
 * grpc/health/v1/health.proto gives grpc_health_v1_health__proto_file). */
typedef struct ag_rpc_proto_file {
    const char *name;              /* "grpc/health/v1/health.proto" */
    const uint8_t *data;           /* its serialized FileDescriptorProto (as protoc
                                    * gave it, without source_code_info) */
    size_t len;                    /* bytes */
    const char *const *deps;       /* names of the files it imports */
    size_t ndeps;
    const char *const *symbols;    /* fully-qualified names it defines: messages (nested
                                    * too), enums, services, methods ("pkg.Svc.Method") */
    size_t nsymbols;
    const char *const *services;   /* fully-qualified names of its services */
    size_t nservices;
} ag_rpc_proto_file;

/* True if a handler is registered for path ("/pkg.Service/Method"). The
 * methods are fixed once the server has started, so any thread may ask
 * then. */
bool ag_rpc_server_has_method(const ag_rpc_server *s, const char *path);

/* ---- health service (health.c) ---------------------------------------------------------- *
 *
 * grpc.health.v1.Health (grpc's doc/health-checking.md): Check answers a
 * service's status, NOT_FOUND for a service never set; Watch sends the
 * status at once (SERVICE_UNKNOWN for a service never set, keeping the
 * stream open), then every change, until the client cancels or the server
 * stops. The service "" is the whole server, SERVING from the start. */

typedef enum ag_rpc_health_status {
    AG_RPC_HEALTH_UNKNOWN = 0,
    AG_RPC_HEALTH_SERVING = 1,
    AG_RPC_HEALTH_NOT_SERVING = 2,
    AG_RPC_HEALTH_SERVICE_UNKNOWN = 3, /* Watch only: never set */
} ag_rpc_health_status;

typedef struct ag_rpc_health ag_rpc_health;

/* NULL on allocation failure. */
ag_rpc_health *ag_rpc_health_new(void);
/* Serves h on s (before ag_rpc_server_start); h must outlive s. */
int ag_rpc_health_register(ag_rpc_server *s, ag_rpc_health *h);
/* Sets service's status (SERVING or NOT_SERVING; "" is the server) and
 * sends it to its watchers, from the calling thread. Any thread. After
 * ag_rpc_health_shutdown, does nothing (as gRPC's servers). 0, AG_E_INVAL
 * for another status, AG_E_NOMEM. */
int ag_rpc_health_set(ag_rpc_health *h, const char *service, int status);
/* Every service NOT_SERVING for good (call it before shutting the server
 * down, so that watchers hear it). Any thread. */
void ag_rpc_health_shutdown(ag_rpc_health *h);
/* After the server it was registered on is freed. NULL: nothing. */
void ag_rpc_health_free(ag_rpc_health *h);

/* ---- server reflection (reflection.c) --------------------------------------------------- *
 *
 * grpc.reflection.v1alpha.ServerReflection and grpc.reflection.v1 (the same
 * messages), what grpcurl and grpc_cli use to discover a server's services:
 * list_services names every service of the known files that has a method
 * registered on the server (reflection and health included);
 * file_by_filename and file_containing_symbol answer the file's descriptor
 * and those of its dependencies among the known files, each once; unknown
 * names, and extension queries (argot has no extensions), get an
 * error_response NOT_FOUND. The known files: those given, plus reflection's
 * and health's own. */

typedef struct ag_rpc_reflection ag_rpc_reflection;

/* files: the generated <id>__proto_file of the services to describe and of
 * the files they import (the array is copied; the files are static data).
 * NULL on allocation failure. */
ag_rpc_reflection *ag_rpc_reflection_new(const ag_rpc_proto_file *const *files, size_t n);
/* Serves r on s (before ag_rpc_server_start); r must outlive s. */
int ag_rpc_reflection_register(ag_rpc_server *s, ag_rpc_reflection *r);
/* After the server it was registered on is freed. NULL: nothing. */
void ag_rpc_reflection_free(ag_rpc_reflection *r);

/* ---- admin endpoint (admin.c, http1.c) ---------------------------------------------- *
 *
 * A daemon's plain HTTP/1.1 endpoint for operators and monitoring, on one
 * libuv loop thread of its own. Built in:
 *   GET /metrics  the registry given in the options, in Prometheus's text
 *                 format 0.0.4 (Content-Type: text/plain; version=0.0.4;
 *                 charset=utf-8); 404 if there is none
 *   GET /healthz  200 "ok\n" while the health callback says serving (no
 *                 callback: always), 503 "not serving\n" otherwise
 *   GET /ready    the same as /healthz
 * and the routes added with ag_admin_route. Every GET route answers HEAD
 * (headers only). A path with no route gets 404, a route's path with another
 * method 405 with Allow; a malformed request 400, a request line and header
 * block over max_header 431, a body over max_body 413, an HTTP version other
 * than 1.x 505, an HTTP/1.1 request without Host 400; each of these closes
 * the connection after the response. Connections are persistent as HTTP/1.1
 * says (pipelined requests are answered in order; "Connection: close", and
 * HTTP/1.0 without "Connection: keep-alive", close after the response). A
 * request must arrive whole within request_timeout_ms of its first byte (or
 * gets 408 and the connection closes); a connection idle for idle_timeout_ms
 * between requests is closed; past max_conns open connections, a new one is
 * closed at once.
 *
 * Handlers run on the admin loop's thread, one request at a time: they must
 * not block for long (no waiting on locks held across slow work, no network
 * calls), or every other request waits, /healthz included. */

typedef struct ag_admin ag_admin;

/* One request header, as received (names keep their case). */
typedef struct ag_admin_header {
    const char *name;
    const char *value;
} ag_admin_header;

/* A request, as a handler sees it (valid during the handler's call). */
typedef struct ag_admin_request {
    const char *method;             /* "GET", "HEAD", "POST", ... */
    const char *path;               /* the target's path as sent (not percent-decoded) */
    const char *query;              /* what follows '?', without it; "" if none */
    const ag_admin_header *headers; /* in the order received */
    size_t nheaders;
    ag_slice body;                  /* the whole body (chunked bodies joined) */
} ag_admin_request;

/* The value of the request's first header called name (any case), or NULL. */
const char *ag_admin_request_header(const ag_admin_request *r, const char *name);

/* What a handler fills. Preset: status 200, content type "text/plain;
 * charset=utf-8", empty body and no extra headers. */
typedef struct ag_admin_response {
    int status;               /* 200..599 (anything else: the client gets 500) */
    const char *content_type; /* static, or living as long as the route */
    ag_buf body;              /* at most 64 MiB */
    ag_buf headers;           /* extra header lines: use ag_admin_response_header */
} ag_admin_response;

/* Adds "name: value" to the response's headers. AG_E_INVAL for a name that
 * is not an HTTP token or a value holding CR, LF or NUL. */
int ag_admin_response_header(ag_admin_response *r, const char *name, const char *value);

/* Serves one request, on the admin thread. Returns 0, or a negative code
 * for a failure: the client then gets 500 and the response is dropped. */
typedef int (*ag_admin_handler)(const ag_admin_request *req, ag_admin_response *resp,
                                void *ud);

typedef struct ag_admin_opts {
    ag_metrics *metrics;           /* served at /metrics (NULL: 404); must outlive the endpoint */
    bool (*serving)(void *ud);     /* health: true while serving (NULL: always); admin thread */
    void *serving_ud;
    size_t max_header;             /* bytes of request line and headers (default 16 KiB) */
    size_t max_body;               /* bytes of a request body (default 1 MiB) */
    uint64_t request_timeout_ms;   /* first byte to last of a request (default 10 s) */
    uint64_t idle_timeout_ms;      /* between requests (default 60 s) */
    unsigned max_conns;            /* open connections (default 256) */
} ag_admin_opts;

void ag_admin_opts_init(ag_admin_opts *o);
/* o NULL: the defaults (no metrics). NULL on allocation failure. */
ag_admin *ag_admin_new(const ag_admin_opts *o);
/* Adds a route (before start): method "GET", "POST", ...; path exact, as
 * sent ("/debug/sessions"). AG_E_EXISTS if that method and path have a
 * route (the built-in ones included), AG_E_INVAL for a path not starting
 * with '/' or an unknown method, AG_E_STATE after start. */
int ag_admin_route(ag_admin *a, const char *method, const char *path, ag_admin_handler h,
                   void *ud);
/* addr "host:port" (port 0 picks a free one): binds, listens and starts the
 * admin thread. 0, or an error with ag_admin_errmsg naming the address
 * ("127.0.0.1:9990: address already in use"). */
int ag_admin_start(ag_admin *a, const char *addr);
/* The port bound (after start). */
int ag_admin_port(const ag_admin *a);
/* Stops listening, closes every connection at once (a response being
 * written is cut) and joins the admin thread. Idempotent. */
void ag_admin_shutdown(ag_admin *a);
/* Shuts down if needed, then frees. NULL does nothing. */
void ag_admin_free(ag_admin *a);
const char *ag_admin_errmsg(const ag_admin *a);

/* ---- a deployment's certificates (pki.c) --------------------------------------------- *
 *
 * What `argot ca` runs: a CA the parties agree on, and for each party a key
 * and a certificate naming it (CN and DNS subjectAltName = the party name,
 * for serving and for connecting), which the fed link checks: a party is
 * whom its certificate names. ECDSA P-256, SHA-256. Nothing is overwritten;
 * keys get mode 0600. Errors name the file and the cause. */

/* dir/ca.crt and dir/ca.key (dir is created, mode 0700); name is the CA's
 * CN (NULL: "argot CA"); days 0: 3650. */
int ag_rpc_pki_init(const char *dir, const char *name, unsigned days, char *err, size_t cap);
/* dir/PARTY.crt and dir/PARTY.key, signed by dir's CA; extra_san adds names
 * ("DNS:alice.example,IP:10.0.0.1", may be NULL); days 0: 825. */
int ag_rpc_pki_issue(const char *dir, const char *party, const char *extra_san, unsigned days,
                     char *err, size_t cap);

#endif /* ARGOT_RPC_H */
