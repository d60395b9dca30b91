/*
 * argot-interop-server: grpc.testing.TestService as gRPC's interop test
 * descriptions define the server (doc/interop-test-descriptions.md), for
 * every interop client: EmptyCall, UnaryCall, StreamingOutputCall,
 * StreamingInputCall, FullDuplexCall, HalfDuplexCall; echo of status and of
 * the x-grpc-test-echo-* metadata; compressed responses on request and the
 * check of compressed requests (expect_compressed); interval_us.
 * UnimplementedCall is left unregistered, so it answers UNIMPLEMENTED.
 * It also serves grpc.health.v1.Health (SERVING) and server reflection,
 * so grpcurl-style tools can list and describe the test service.
 *
 *   argot-interop-server --port=N [--use_tls=true --tls_cert_file=F --tls_key_file=F]
 *
 * Serves until SIGTERM or SIGINT, then shuts down gracefully (GOAWAY, calls
 * in flight get a second).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "argot/rpc.h"
#include "flags.h"
#include "grpc/testing/empty.argot.h"
#include "grpc/testing/messages.argot.h"
#include "grpc/testing/test.argot.h"

#define ECHO_INITIAL "x-grpc-test-echo-initial"
#define ECHO_TRAILING "x-grpc-test-echo-trailing-bin"
#define MAX_PAYLOAD (64u << 20)

/* The x-grpc-test-echo-* metadata back, as initial and trailing metadata. */
static void echo_metadata(ag_rpc_call *c)
{
    ag_slice v;
    const char *k;
    for (size_t i = 0; (k = ag_rpc_call_metadata(c, false, i, &v)) != NULL; i++) {
        if (!strcmp(k, ECHO_INITIAL))
            ag_rpc_call_add_metadata(c, k, v.ptr, v.len);
        else if (!strcmp(k, ECHO_TRAILING))
            ag_rpc_call_add_trailer(c, k, v.ptr, v.len);
    }
}

/* CompressedRequest: a request that says it was compressed must have been. */
static int check_compressed(ag_rpc_call *c, const Grpc__Testing__BoolValue *expect)
{
    if (expect && expect->value && !(ag_rpc_call_recv_flags(c) & AG_RPC_RECV_COMPRESSED)) {
        ag_rpc_call_set_status_message(c, "expected a compressed request (expect_compressed)");
        return AG_RPC_INVALID_ARGUMENT;
    }
    return AG_RPC_OK;
}

/* Echo Status: the status the request asks for, if any. */
static int echo_status(ag_rpc_call *c, const Grpc__Testing__EchoStatus *st)
{
    if (!st || st->code == 0)
        return AG_RPC_OK;
    ag_rpc_call_set_status_message(c, st->message ? st->message : "");
    return st->code;
}

/* A payload of n zero bytes (the caller frees body.data). */
static int make_payload(ag_rpc_call *c, Grpc__Testing__PayloadType type, int32_t n,
                        Grpc__Testing__Payload *p)
{
    if (type != GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE) {
        ag_rpc_call_set_status_message(c, "unsupported response_type");
        return AG_RPC_INVALID_ARGUMENT;
    }
    if (n < 0 || (uint32_t)n > MAX_PAYLOAD) {
        ag_rpc_call_set_status_message(c, "response size out of range");
        return AG_RPC_INVALID_ARGUMENT;
    }
    p->type = type;
    p->body.len = (size_t)n;
    p->body.data = ag_calloc(1, n ? (size_t)n : 1);
    if (!p->body.data) {
        ag_rpc_call_set_status_message(c, "out of memory");
        return AG_RPC_RESOURCE_EXHAUSTED;
    }
    return AG_RPC_OK;
}

static int empty_call(ag_rpc_call *c, const Grpc__Testing__Empty *req, void *ud)
{
    (void)req;
    (void)ud;
    echo_metadata(c);
    Grpc__Testing__Empty resp = GRPC__TESTING__EMPTY__INIT;
    return grpc__testing__test_service__empty_call__send_response(c, &resp, 0) < 0
               ? AG_RPC_CANCELLED
               : AG_RPC_OK;
}

static int unary_call(ag_rpc_call *c, const Grpc__Testing__SimpleRequest *req, void *ud)
{
    (void)ud;
    echo_metadata(c);
    int st = check_compressed(c, req->expect_compressed);
    if (st == AG_RPC_OK)
        st = echo_status(c, req->response_status);
    if (st != AG_RPC_OK)
        return st;
    Grpc__Testing__SimpleResponse resp = GRPC__TESTING__SIMPLE_RESPONSE__INIT;
    Grpc__Testing__Payload payload = GRPC__TESTING__PAYLOAD__INIT;
    st = make_payload(c, req->response_type, req->response_size, &payload);
    if (st != AG_RPC_OK)
        return st;
    resp.payload = &payload;
    unsigned flags = 0;
    if (req->response_compressed && req->response_compressed->value)
        ag_rpc_call_set_compression(c, "gzip");
    else
        flags = AG_RPC_SEND_NO_COMPRESS;
    int rc = grpc__testing__test_service__unary_call__send_response(c, &resp, flags);
    ag_free(payload.body.data);
    return rc < 0 ? AG_RPC_CANCELLED : AG_RPC_OK;
}

static void sleep_us(int32_t us)
{
    if (us <= 0)
        return;
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* One response per ResponseParameters, compressed where asked. */
static int stream_responses(ag_rpc_call *c, const Grpc__Testing__StreamingOutputCallRequest *req,
                            bool *compression_set)
{
    for (size_t i = 0; i < req->n_response_parameters; i++) {
        const Grpc__Testing__ResponseParameters *p = req->response_parameters[i];
        bool compress = p->compressed && p->compressed->value;
        if (compress && !*compression_set) {
            /* only possible before the first message: the encoding is in the
             * response headers */
            ag_rpc_call_set_compression(c, "gzip");
            *compression_set = true;
        }
        sleep_us(p->interval_us);
        Grpc__Testing__StreamingOutputCallResponse resp =
            GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
        Grpc__Testing__Payload payload = GRPC__TESTING__PAYLOAD__INIT;
        int st = make_payload(c, req->response_type, p->size, &payload);
        if (st != AG_RPC_OK)
            return st;
        resp.payload = &payload;
        int rc = grpc__testing__test_service__streaming_output_call__send_response(
            c, &resp, compress ? 0 : AG_RPC_SEND_NO_COMPRESS);
        ag_free(payload.body.data);
        if (rc < 0)
            return AG_RPC_CANCELLED;
    }
    return AG_RPC_OK;
}

/* Whether any response of the request wants compression. */
static bool wants_compression(const Grpc__Testing__StreamingOutputCallRequest *req)
{
    for (size_t i = 0; i < req->n_response_parameters; i++)
        if (req->response_parameters[i]->compressed && req->response_parameters[i]->compressed->value)
            return true;
    return false;
}

static int streaming_output_call(ag_rpc_call *c, const Grpc__Testing__StreamingOutputCallRequest *req,
                                 void *ud)
{
    (void)ud;
    echo_metadata(c);
    int st = echo_status(c, req->response_status);
    if (st != AG_RPC_OK)
        return st;
    bool set = false;
    if (wants_compression(req)) {
        ag_rpc_call_set_compression(c, "gzip");
        set = true;
    }
    return stream_responses(c, req, &set);
}

static int streaming_input_call(ag_rpc_call *c, void *ud)
{
    (void)ud;
    echo_metadata(c);
    int64_t total = 0;
    for (;;) {
        Grpc__Testing__StreamingInputCallRequest *req;
        int rc = grpc__testing__test_service__streaming_input_call__recv_request(c, &req);
        if (rc == AG_E_RPC_PARSE) {
            ag_rpc_call_set_status_message(c, "cannot parse a StreamingInputCallRequest");
            return AG_RPC_INTERNAL;
        }
        if (rc < 0)
            return AG_RPC_CANCELLED;
        if (rc == 0)
            break;
        int st = check_compressed(c, req->expect_compressed);
        if (req->payload)
            total += (int64_t)req->payload->body.len;
        ag_rpc_msg_free(&req->base);
        if (st != AG_RPC_OK)
            return st;
    }
    if (total > INT32_MAX) {
        ag_rpc_call_set_status_message(c, "aggregated payload size over 2^31");
        return AG_RPC_OUT_OF_RANGE;
    }
    Grpc__Testing__StreamingInputCallResponse resp = GRPC__TESTING__STREAMING_INPUT_CALL_RESPONSE__INIT;
    resp.aggregated_payload_size = (int32_t)total;
    return grpc__testing__test_service__streaming_input_call__send_response(c, &resp, 0) < 0
               ? AG_RPC_CANCELLED
               : AG_RPC_OK;
}

static int full_duplex_call(ag_rpc_call *c, void *ud)
{
    (void)ud;
    echo_metadata(c);
    bool set = false;
    for (;;) {
        Grpc__Testing__StreamingOutputCallRequest *req;
        int rc = grpc__testing__test_service__full_duplex_call__recv_request(c, &req);
        if (rc == AG_E_RPC_PARSE) {
            ag_rpc_call_set_status_message(c, "cannot parse a StreamingOutputCallRequest");
            return AG_RPC_INTERNAL;
        }
        if (rc < 0)
            return AG_RPC_CANCELLED;
        if (rc == 0)
            return AG_RPC_OK;
        int st = echo_status(c, req->response_status);
        if (st == AG_RPC_OK)
            st = stream_responses(c, req, &set);
        ag_rpc_msg_free(&req->base);
        if (st != AG_RPC_OK)
            return st;
    }
}

/* HalfDuplexCall: every request first, then the responses, in order. */
static int half_duplex_call(ag_rpc_call *c, void *ud)
{
    (void)ud;
    echo_metadata(c);
    Grpc__Testing__StreamingOutputCallRequest **reqs = NULL;
    size_t n = 0, cap = 0;
    int st = AG_RPC_OK;
    for (;;) {
        Grpc__Testing__StreamingOutputCallRequest *req;
        int rc = grpc__testing__test_service__half_duplex_call__recv_request(c, &req);
        if (rc <= 0) {
            if (rc == AG_E_RPC_PARSE) {
                ag_rpc_call_set_status_message(c, "cannot parse a StreamingOutputCallRequest");
                st = AG_RPC_INTERNAL;
            } else if (rc < 0) {
                st = AG_RPC_CANCELLED;
            }
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            void *p = ag_realloc(reqs, cap * sizeof(*reqs));
            if (!p) {
                ag_rpc_msg_free(&req->base);
                st = AG_RPC_RESOURCE_EXHAUSTED;
                break;
            }
            reqs = p;
        }
        reqs[n++] = req;
    }
    bool set = false;
    for (size_t i = 0; i < n && st == AG_RPC_OK; i++) {
        st = echo_status(c, reqs[i]->response_status);
        if (st == AG_RPC_OK)
            st = stream_responses(c, reqs[i], &set);
    }
    for (size_t i = 0; i < n; i++)
        ag_rpc_msg_free(&reqs[i]->base);
    ag_free(reqs);
    return st;
}

static const Grpc__Testing__TestService_Handlers test_service = {
    .empty_call = empty_call,
    .unary_call = unary_call,
    .streaming_output_call = streaming_output_call,
    .streaming_input_call = streaming_input_call,
    .full_duplex_call = full_duplex_call,
    .half_duplex_call = half_duplex_call,
};

int main(int argc, char **argv)
{
    int port = -1;
    bool use_tls = false;
    const char *cert = NULL, *key = NULL;
    const iflag flags[] = {
        {"port", FLAG_INT, &port, "the port to listen on (0: any free one, printed)"},
        {"use_tls", FLAG_BOOL, &use_tls, "serve TLS (needs --tls_cert_file and --tls_key_file)"},
        {"tls_cert_file", FLAG_STR, &cert, "PEM certificate chain for TLS"},
        {"tls_key_file", FLAG_STR, &key, "PEM private key for TLS"},
        {0},
    };
    int fr = flags_parse(argc, argv, flags,
                         "usage: argot-interop-server --port=N [--use_tls=true "
                         "--tls_cert_file=F --tls_key_file=F]\n\n"
                         "grpc.testing.TestService for gRPC interop clients; stops on SIGTERM.");
    if (fr != 0)
        return fr > 0 ? 0 : 2;
    if (port < 0 || port > 65535) {
        fprintf(stderr, "argot-interop-server: --port is required (0-65535)\n");
        return 2;
    }
    if (use_tls && (!cert || !key)) {
        fprintf(stderr, "argot-interop-server: --use_tls needs --tls_cert_file and --tls_key_file "
                        "(gRPC's test certificates are not shipped)\n");
        return 2;
    }
    /* SIGTERM and SIGINT are taken by sigwait below, on this thread only */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    ag_rpc_server_opts o;
    ag_rpc_server_opts_init(&o);
    if (use_tls) {
        o.tls_cert_file = cert;
        o.tls_key_file = key;
    }
    ag_rpc_server *s = ag_rpc_server_new(&o);
    static const ag_rpc_proto_file *const files[] = {
        &grpc_testing_test__proto_file, &grpc_testing_messages__proto_file,
        &grpc_testing_empty__proto_file};
    ag_rpc_health *health = ag_rpc_health_new();
    ag_rpc_reflection *refl = ag_rpc_reflection_new(files, 3);
    if (!s || !health || !refl || grpc__testing__test_service__register(s, &test_service) < 0 ||
        ag_rpc_health_register(s, health) < 0 || ag_rpc_reflection_register(s, refl) < 0) {
        fprintf(stderr, "argot-interop-server: %s\n", s ? ag_rpc_server_errmsg(s) : "out of memory");
        ag_rpc_server_free(s);
        ag_rpc_health_free(health);
        ag_rpc_reflection_free(refl);
        return 1;
    }
    char addr[32];
    snprintf(addr, sizeof(addr), "[::]:%d", port);
    int rc = ag_rpc_server_start(s, addr);
    if (rc < 0) { /* no IPv6 here: IPv4 then */
        snprintf(addr, sizeof(addr), "0.0.0.0:%d", port);
        rc = ag_rpc_server_start(s, addr);
    }
    if (rc < 0) {
        fprintf(stderr, "argot-interop-server: %s\n", ag_rpc_server_errmsg(s));
        ag_rpc_server_free(s);
        return 1;
    }
    printf("listening %d\n", ag_rpc_server_port(s));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "argot-interop-server: %s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ag_rpc_health_shutdown(health); /* watchers hear NOT_SERVING */
    ag_rpc_server_shutdown(s, 1000);
    ag_rpc_server_free(s);
    ag_rpc_health_free(health);
    ag_rpc_reflection_free(refl);
    return 0;
}
