/*
 * argot-interop-client: the client side of gRPC's interop test cases
 * (doc/interop-test-descriptions.md) against any grpc.testing.TestService
 * server.
 *
 *   argot-interop-client --server_host=H --server_port=N --test_case=CASE
 *       [--use_tls=true [--ca_file=F] [--server_host_override=NAME]]
 *
 * CASE is one of the names below, a comma-separated list, or "all". Each
 * case prints "ok CASE" or "FAIL CASE: why"; the exit status is 0 when all
 * passed, 1 otherwise, 2 for bad flags.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/rpc.h"
#include "flags.h"
#include "grpc/testing/test.argot.h"

#define ECHO_INITIAL "x-grpc-test-echo-initial"
#define ECHO_INITIAL_VALUE "test_initial_metadata_value"
#define ECHO_TRAILING "x-grpc-test-echo-trailing-bin"
#define SPECIAL_MESSAGE                                                                        \
    "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP \xf0\x9f\x98\x88\t\n"

typedef struct env {
    ag_rpc_channel *ch;
    char why[1024];
} env;

static uint8_t zeros[314159]; /* the largest request payload of any case */

static int fail(env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(env *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->why, sizeof(e->why), fmt, ap);
    va_end(ap);
    return -1;
}

static ag_deadline dl(void)
{
    return ag_deadline_in_ms(30000);
}

static Grpc__Testing__Payload payload_of(size_t n)
{
    Grpc__Testing__Payload p = GRPC__TESTING__PAYLOAD__INIT;
    p.body.len = n;
    p.body.data = zeros;
    return p;
}

/* The payload is n bytes, all zero. */
static int check_payload(env *e, const Grpc__Testing__Payload *p, size_t n, const char *what)
{
    size_t got = p ? p->body.len : 0;
    if (got != n)
        return fail(e, "%s: payload of %zu bytes, expected %zu", what, got, n);
    for (size_t i = 0; i < n; i++)
        if (p->body.data[i] != 0)
            return fail(e, "%s: payload byte %zu is not zero", what, i);
    return 0;
}

static int check_status(env *e, int st, const char *msg, int want, const char *what)
{
    if (st != want)
        return fail(e, "%s: status %s (%s), expected %s", what, ag_rpc_status_name(st), msg,
                    ag_rpc_status_name(want));
    return 0;
}

/* ---- unary helpers --------------------------------------------------------------- */

typedef struct unary_out {
    int status;
    char msg[512];
    Grpc__Testing__SimpleResponse *resp;
    unsigned resp_flags;
} unary_out;

/* UnaryCall with req; compress: send the request gzip-compressed; with_md:
 * send the x-grpc-test-echo-* metadata. keep (or NULL) gets the finished
 * call, to look at its metadata (the caller frees it). */
static void unary(env *e, const Grpc__Testing__SimpleRequest *req, bool compress, bool with_md,
                  unary_out *out, ag_rpc_call **keep)
{
    memset(out, 0, sizeof(*out));
    ag_rpc_call *c = grpc__testing__test_service__unary_call__start(e->ch, dl());
    if (!c) {
        out->status = AG_RPC_RESOURCE_EXHAUSTED;
        snprintf(out->msg, sizeof(out->msg), "out of memory");
        return;
    }
    if (compress)
        ag_rpc_call_set_compression(c, "gzip");
    if (with_md) {
        ag_rpc_call_add_metadata(c, ECHO_INITIAL, ECHO_INITIAL_VALUE, strlen(ECHO_INITIAL_VALUE));
        ag_rpc_call_add_metadata(c, ECHO_TRAILING, "\xab\xab\xab", 3);
    }
    if (grpc__testing__test_service__unary_call__send_request(c, req, 0) == 0)
        ag_rpc_call_close_send(c);
    Grpc__Testing__SimpleResponse *resp = NULL;
    if (grpc__testing__test_service__unary_call__recv_response(c, &resp) == 1)
        out->resp_flags = ag_rpc_call_recv_flags(c);
    const char *msg;
    out->status = ag_rpc_call_status(c, &msg);
    snprintf(out->msg, sizeof(out->msg), "%s", msg);
    out->resp = resp;
    if (keep)
        *keep = c;
    else
        ag_rpc_call_free(c);
}

static Grpc__Testing__SimpleRequest large_request(Grpc__Testing__Payload *p)
{
    Grpc__Testing__SimpleRequest req = GRPC__TESTING__SIMPLE_REQUEST__INIT;
    *p = payload_of(271828);
    req.response_size = 314159;
    req.payload = p;
    return req;
}

/* An OK unary call with a 314159-byte zero payload back. */
static int expect_large(env *e, unary_out *o, const char *what)
{
    int rc = check_status(e, o->status, o->msg, AG_RPC_OK, what);
    if (rc == 0 && !o->resp)
        rc = fail(e, "%s: no response", what);
    if (rc == 0)
        rc = check_payload(e, o->resp->payload, 314159, what);
    ag_rpc_msg_free(o->resp ? &o->resp->base : NULL);
    o->resp = NULL;
    return rc;
}

/* ---- the cases ---------------------------------------------------------------------- */

static int empty_unary(env *e)
{
    Grpc__Testing__Empty req = GRPC__TESTING__EMPTY__INIT, *resp = NULL;
    char *msg = NULL;
    int st = grpc__testing__test_service__empty_call__invoke(e->ch, &req, dl(), &resp, &msg);
    int rc = check_status(e, st, msg ? msg : "", AG_RPC_OK, "EmptyCall");
    if (rc == 0 && !resp)
        rc = fail(e, "EmptyCall: no response");
    ag_free(msg);
    ag_rpc_msg_free(resp ? &resp->base : NULL);
    return rc;
}

static int large_unary(env *e)
{
    Grpc__Testing__Payload p;
    Grpc__Testing__SimpleRequest req = large_request(&p);
    unary_out o;
    unary(e, &req, false, false, &o, NULL);
    return expect_large(e, &o, "UnaryCall");
}

static int client_compressed_unary(env *e)
{
    Grpc__Testing__Payload p;
    Grpc__Testing__SimpleRequest req = large_request(&p);
    Grpc__Testing__BoolValue yes = GRPC__TESTING__BOOL_VALUE__INIT, no = GRPC__TESTING__BOOL_VALUE__INIT;
    yes.value = true;
    unary_out o;
    /* the probe: uncompressed, but claiming to be compressed */
    req.expect_compressed = &yes;
    unary(e, &req, false, false, &o, NULL);
    ag_rpc_msg_free(o.resp ? &o.resp->base : NULL);
    if (check_status(e, o.status, o.msg, AG_RPC_INVALID_ARGUMENT, "the uncompressed probe") < 0)
        return -1;
    unary(e, &req, true, false, &o, NULL);
    if (expect_large(e, &o, "the compressed request") < 0)
        return -1;
    req.expect_compressed = &no;
    unary(e, &req, false, false, &o, NULL);
    return expect_large(e, &o, "the uncompressed request");
}

static int server_compressed_unary(env *e)
{
    Grpc__Testing__Payload p;
    Grpc__Testing__SimpleRequest req = large_request(&p);
    Grpc__Testing__BoolValue flag = GRPC__TESTING__BOOL_VALUE__INIT;
    req.response_compressed = &flag;
    for (int i = 0; i < 2; i++) {
        flag.value = i == 0;
        const char *what = flag.value ? "response_compressed true" : "response_compressed false";
        unary_out o;
        unary(e, &req, false, false, &o, NULL);
        bool compressed = o.resp_flags & AG_RPC_RECV_COMPRESSED;
        if (expect_large(e, &o, what) < 0)
            return -1;
        if (compressed != flag.value)
            return fail(e, "%s: the response came %s", what,
                        compressed ? "compressed" : "uncompressed");
    }
    return 0;
}

/* StreamingInputCall with payloads of these sizes; compressed[i]: gzip
 * message i (the call's encoding is gzip if any is). */
static int streaming_input(env *e, const size_t *sizes, const int *expect, const bool *compressed,
                           size_t n, int *status, char *msg, size_t cap, int32_t *aggregated)
{
    ag_rpc_call *c = grpc__testing__test_service__streaming_input_call__start(e->ch, dl());
    if (!c)
        return fail(e, "out of memory");
    bool any = false;
    for (size_t i = 0; i < n; i++)
        any = any || (compressed && compressed[i]);
    if (any)
        ag_rpc_call_set_compression(c, "gzip");
    for (size_t i = 0; i < n; i++) {
        Grpc__Testing__StreamingInputCallRequest req = GRPC__TESTING__STREAMING_INPUT_CALL_REQUEST__INIT;
        Grpc__Testing__Payload p = payload_of(sizes[i]);
        Grpc__Testing__BoolValue ex = GRPC__TESTING__BOOL_VALUE__INIT;
        req.payload = &p;
        if (expect && expect[i] >= 0) {
            ex.value = expect[i] > 0;
            req.expect_compressed = &ex;
        }
        unsigned flags = compressed && compressed[i] ? 0 : AG_RPC_SEND_NO_COMPRESS;
        if (grpc__testing__test_service__streaming_input_call__send_request(c, &req, flags) < 0)
            break; /* the call is over: its status says why */
    }
    ag_rpc_call_close_send(c);
    Grpc__Testing__StreamingInputCallResponse *resp = NULL;
    grpc__testing__test_service__streaming_input_call__recv_response(c, &resp);
    const char *m;
    *status = ag_rpc_call_status(c, &m);
    snprintf(msg, cap, "%s", m);
    *aggregated = resp ? resp->aggregated_payload_size : -1;
    ag_rpc_msg_free(resp ? &resp->base : NULL);
    ag_rpc_call_free(c);
    return 0;
}

static int client_streaming(env *e)
{
    static const size_t sizes[] = {27182, 8, 1828, 45904};
    int st;
    char msg[512];
    int32_t agg;
    if (streaming_input(e, sizes, NULL, NULL, 4, &st, msg, sizeof(msg), &agg) < 0 ||
        check_status(e, st, msg, AG_RPC_OK, "StreamingInputCall") < 0)
        return -1;
    return agg == 74922 ? 0 : fail(e, "aggregated_payload_size %d, expected 74922", (int)agg);
}

static int client_compressed_streaming(env *e)
{
    int st;
    char msg[512];
    int32_t agg;
    static const size_t probe_sizes[] = {27182};
    static const int probe_expect[] = {1};
    static const bool probe_compressed[] = {false};
    if (streaming_input(e, probe_sizes, probe_expect, probe_compressed, 1, &st, msg, sizeof(msg),
                        &agg) < 0 ||
        check_status(e, st, msg, AG_RPC_INVALID_ARGUMENT, "the uncompressed probe") < 0)
        return -1;
    static const size_t sizes[] = {27182, 45904};
    static const int expect[] = {1, 0};
    static const bool compressed[] = {true, false};
    if (streaming_input(e, sizes, expect, compressed, 2, &st, msg, sizeof(msg), &agg) < 0 ||
        check_status(e, st, msg, AG_RPC_OK, "StreamingInputCall") < 0)
        return -1;
    return agg == 73086 ? 0 : fail(e, "aggregated_payload_size %d, expected 73086", (int)agg);
}

/* StreamingOutputCall with these response sizes; compressed[i] (or NULL)
 * sets ResponseParameters.compressed and is checked on the responses. */
static int server_streaming_with(env *e, const int32_t *sizes, const bool *compressed, size_t n)
{
    Grpc__Testing__StreamingOutputCallRequest req = GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
    Grpc__Testing__ResponseParameters params[4], *pp[4];
    Grpc__Testing__BoolValue flags[4];
    for (size_t i = 0; i < n; i++) {
        params[i] = (Grpc__Testing__ResponseParameters)GRPC__TESTING__RESPONSE_PARAMETERS__INIT;
        params[i].size = sizes[i];
        if (compressed) {
            flags[i] = (Grpc__Testing__BoolValue)GRPC__TESTING__BOOL_VALUE__INIT;
            flags[i].value = compressed[i];
            params[i].compressed = &flags[i];
        }
        pp[i] = &params[i];
    }
    req.n_response_parameters = n;
    req.response_parameters = pp;
    ag_rpc_call *c = grpc__testing__test_service__streaming_output_call__start(e->ch, dl());
    if (!c)
        return fail(e, "out of memory");
    int rc = grpc__testing__test_service__streaming_output_call__send_request(c, &req, 0);
    if (rc == 0)
        rc = ag_rpc_call_close_send(c);
    size_t got = 0;
    int result = 0;
    for (;;) {
        Grpc__Testing__StreamingOutputCallResponse *resp;
        rc = grpc__testing__test_service__streaming_output_call__recv_response(c, &resp);
        if (rc != 1)
            break;
        char what[64];
        snprintf(what, sizeof(what), "response %zu", got + 1);
        bool was = ag_rpc_call_recv_flags(c) & AG_RPC_RECV_COMPRESSED;
        if (result == 0 && got >= n)
            result = fail(e, "more than %zu responses", n);
        if (result == 0)
            result = check_payload(e, resp->payload, (size_t)sizes[got], what);
        if (result == 0 && compressed && was != compressed[got])
            result = fail(e, "%s came %s, expected %s", what, was ? "compressed" : "uncompressed",
                          compressed[got] ? "compressed" : "uncompressed");
        ag_rpc_msg_free(&resp->base);
        got++;
    }
    const char *msg;
    int st = ag_rpc_call_status(c, &msg);
    if (result == 0)
        result = check_status(e, st, msg, AG_RPC_OK, "StreamingOutputCall");
    if (result == 0 && got != n)
        result = fail(e, "%zu responses, expected %zu", got, n);
    ag_rpc_call_free(c);
    return result;
}

static int server_streaming(env *e)
{
    static const int32_t sizes[] = {31415, 9, 2653, 58979};
    return server_streaming_with(e, sizes, NULL, 4);
}

static int server_compressed_streaming(env *e)
{
    static const int32_t sizes[] = {31415, 92653};
    static const bool compressed[] = {true, false};
    return server_streaming_with(e, sizes, compressed, 2);
}

/* A FullDuplexCall request: one response of resp_size, a request payload
 * of req_size (negative: none). */
static void duplex_request(Grpc__Testing__StreamingOutputCallRequest *req,
                           Grpc__Testing__ResponseParameters *param,
                           Grpc__Testing__ResponseParameters **pp, Grpc__Testing__Payload *p,
                           int32_t resp_size, long req_size)
{
    *req = (Grpc__Testing__StreamingOutputCallRequest)GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
    *param = (Grpc__Testing__ResponseParameters)GRPC__TESTING__RESPONSE_PARAMETERS__INIT;
    param->size = resp_size;
    *pp = param;
    req->n_response_parameters = 1;
    req->response_parameters = pp;
    if (req_size >= 0) {
        *p = payload_of((size_t)req_size);
        req->payload = p;
    }
}

static int ping_pong(env *e)
{
    static const int32_t resp_sizes[] = {31415, 9, 2653, 58979};
    static const long req_sizes[] = {27182, 8, 1828, 45904};
    ag_rpc_call *c = grpc__testing__test_service__full_duplex_call__start(e->ch, dl());
    if (!c)
        return fail(e, "out of memory");
    int result = 0;
    for (int i = 0; i < 4 && result == 0; i++) {
        Grpc__Testing__StreamingOutputCallRequest req;
        Grpc__Testing__ResponseParameters param, *pp;
        Grpc__Testing__Payload p;
        duplex_request(&req, &param, &pp, &p, resp_sizes[i], req_sizes[i]);
        if (grpc__testing__test_service__full_duplex_call__send_request(c, &req, 0) < 0) {
            result = fail(e, "round %d: the call ended before the request went", i + 1);
            break;
        }
        Grpc__Testing__StreamingOutputCallResponse *resp;
        if (grpc__testing__test_service__full_duplex_call__recv_response(c, &resp) != 1) {
            result = fail(e, "round %d: no response", i + 1);
            break;
        }
        char what[32];
        snprintf(what, sizeof(what), "round %d", i + 1);
        result = check_payload(e, resp->payload, (size_t)resp_sizes[i], what);
        ag_rpc_msg_free(&resp->base);
    }
    ag_rpc_call_close_send(c);
    Grpc__Testing__StreamingOutputCallResponse *extra = NULL;
    if (result == 0 && grpc__testing__test_service__full_duplex_call__recv_response(c, &extra) == 1)
        result = fail(e, "a fifth response");
    ag_rpc_msg_free(extra ? &extra->base : NULL);
    const char *msg;
    int st = ag_rpc_call_status(c, &msg);
    if (result == 0)
        result = check_status(e, st, msg, AG_RPC_OK, "FullDuplexCall");
    ag_rpc_call_free(c);
    return result;
}

static int empty_stream(env *e)
{
    ag_rpc_call *c = grpc__testing__test_service__full_duplex_call__start(e->ch, dl());
    if (!c)
        return fail(e, "out of memory");
    ag_rpc_call_close_send(c);
    Grpc__Testing__StreamingOutputCallResponse *resp = NULL;
    int rc = grpc__testing__test_service__full_duplex_call__recv_response(c, &resp);
    ag_rpc_msg_free(resp ? &resp->base : NULL);
    const char *msg;
    int st = ag_rpc_call_status(c, &msg);
    int result = rc == 1 ? fail(e, "a response to an empty stream")
                         : check_status(e, st, msg, AG_RPC_OK, "FullDuplexCall");
    ag_rpc_call_free(c);
    return result;
}

static int timeout_on_sleeping_server(env *e)
{
    ag_rpc_call *c = grpc__testing__test_service__full_duplex_call__start(e->ch, ag_deadline_in_ms(1));
    if (!c)
        return fail(e, "out of memory");
    Grpc__Testing__StreamingOutputCallRequest req = GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
    Grpc__Testing__Payload p = payload_of(27182);
    req.payload = &p;
    /* the send may fail: the deadline may be gone already */
    grpc__testing__test_service__full_duplex_call__send_request(c, &req, 0);
    const char *msg;
    int st = ag_rpc_call_status(c, &msg);
    int result = check_status(e, st, msg, AG_RPC_DEADLINE_EXCEEDED, "FullDuplexCall");
    ag_rpc_call_free(c);
    return result;
}

static int cancel_after_begin(env *e)
{
    ag_rpc_call *c = grpc__testing__test_service__streaming_input_call__start(e->ch, dl());
    if (!c)
        return fail(e, "out of memory");
    ag_rpc_call_begin(c);
    ag_rpc_call_cancel(c);
    const char *msg;
    int st = ag_rpc_call_status(c, &msg);
    int result = check_status(e, st, msg, AG_RPC_CANCELLED, "StreamingInputCall");
    ag_rpc_call_free(c);
    return result;
}

static int cancel_after_first_response(env *e)
{
    ag_rpc_call *c = grpc__testing__test_service__full_duplex_call__start(e->ch, dl());
    if (!c)
        return fail(e, "out of memory");
    Grpc__Testing__StreamingOutputCallRequest req;
    Grpc__Testing__ResponseParameters param, *pp;
    Grpc__Testing__Payload p;
    duplex_request(&req, &param, &pp, &p, 31415, 27182);
    int result = 0;
    Grpc__Testing__StreamingOutputCallResponse *resp = NULL;
    if (grpc__testing__test_service__full_duplex_call__send_request(c, &req, 0) < 0 ||
        grpc__testing__test_service__full_duplex_call__recv_response(c, &resp) != 1)
        result = fail(e, "no first response");
    ag_rpc_msg_free(resp ? &resp->base : NULL);
    ag_rpc_call_cancel(c);
    const char *msg;
    int st = ag_rpc_call_status(c, &msg);
    if (result == 0)
        result = check_status(e, st, msg, AG_RPC_CANCELLED, "FullDuplexCall");
    ag_rpc_call_free(c);
    return result;
}

/* The echoed x-grpc-test-echo-* metadata is on the call. */
static int check_echo(env *e, ag_rpc_call *c, const char *what)
{
    bool initial = false, trailing = false;
    ag_slice v;
    const char *k;
    for (size_t i = 0; (k = ag_rpc_call_metadata(c, false, i, &v)) != NULL; i++)
        if (!strcmp(k, ECHO_INITIAL) && v.len == strlen(ECHO_INITIAL_VALUE) &&
            !memcmp(v.ptr, ECHO_INITIAL_VALUE, v.len))
            initial = true;
    for (size_t i = 0; (k = ag_rpc_call_metadata(c, true, i, &v)) != NULL; i++)
        if (!strcmp(k, ECHO_TRAILING) && v.len == 3 && !memcmp(v.ptr, "\xab\xab\xab", 3))
            trailing = true;
    if (!initial)
        return fail(e, "%s: no %s: %s in the initial metadata", what, ECHO_INITIAL,
                    ECHO_INITIAL_VALUE);
    if (!trailing)
        return fail(e, "%s: no %s: 0xababab in the trailing metadata", what, ECHO_TRAILING);
    return 0;
}

static int custom_metadata(env *e)
{
    Grpc__Testing__Payload p;
    Grpc__Testing__SimpleRequest req = large_request(&p);
    unary_out o;
    ag_rpc_call *c = NULL;
    unary(e, &req, false, true, &o, &c);
    int result = expect_large(e, &o, "UnaryCall");
    if (result == 0 && c)
        result = check_echo(e, c, "UnaryCall");
    ag_rpc_call_free(c);
    if (result < 0)
        return result;

    c = grpc__testing__test_service__full_duplex_call__start(e->ch, dl());
    if (!c)
        return fail(e, "out of memory");
    ag_rpc_call_add_metadata(c, ECHO_INITIAL, ECHO_INITIAL_VALUE, strlen(ECHO_INITIAL_VALUE));
    ag_rpc_call_add_metadata(c, ECHO_TRAILING, "\xab\xab\xab", 3);
    Grpc__Testing__StreamingOutputCallRequest dreq;
    Grpc__Testing__ResponseParameters param, *pp;
    duplex_request(&dreq, &param, &pp, &p, 314159, 271828);
    if (grpc__testing__test_service__full_duplex_call__send_request(c, &dreq, 0) == 0)
        ag_rpc_call_close_send(c);
    Grpc__Testing__StreamingOutputCallResponse *resp;
    size_t n = 0;
    while (grpc__testing__test_service__full_duplex_call__recv_response(c, &resp) == 1) {
        if (result == 0)
            result = check_payload(e, resp->payload, 314159, "FullDuplexCall");
        ag_rpc_msg_free(&resp->base);
        n++;
    }
    const char *msg;
    int st = ag_rpc_call_status(c, &msg);
    if (result == 0)
        result = check_status(e, st, msg, AG_RPC_OK, "FullDuplexCall");
    if (result == 0 && n != 1)
        result = fail(e, "FullDuplexCall: %zu responses, expected 1", n);
    if (result == 0)
        result = check_echo(e, c, "FullDuplexCall");
    ag_rpc_call_free(c);
    return result;
}

/* UnaryCall and FullDuplexCall asking for status 2 with message m. */
static int echo_status_case(env *e, const char *m, bool duplex)
{
    Grpc__Testing__EchoStatus es = GRPC__TESTING__ECHO_STATUS__INIT;
    es.code = 2;
    es.message = (char *)m;
    Grpc__Testing__SimpleRequest req = GRPC__TESTING__SIMPLE_REQUEST__INIT;
    req.response_status = &es;
    unary_out o;
    unary(e, &req, false, false, &o, NULL);
    ag_rpc_msg_free(o.resp ? &o.resp->base : NULL);
    if (check_status(e, o.status, o.msg, AG_RPC_UNKNOWN, "UnaryCall") < 0)
        return -1;
    if (strcmp(o.msg, m) != 0)
        return fail(e, "UnaryCall: status message '%s', expected '%s'", o.msg, m);
    if (!duplex)
        return 0;
    ag_rpc_call *c = grpc__testing__test_service__full_duplex_call__start(e->ch, dl());
    if (!c)
        return fail(e, "out of memory");
    Grpc__Testing__StreamingOutputCallRequest dreq = GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
    dreq.response_status = &es;
    if (grpc__testing__test_service__full_duplex_call__send_request(c, &dreq, 0) == 0)
        ag_rpc_call_close_send(c);
    const char *msg;
    int st = ag_rpc_call_status(c, &msg);
    int result = check_status(e, st, msg, AG_RPC_UNKNOWN, "FullDuplexCall");
    if (result == 0 && strcmp(msg, m) != 0)
        result = fail(e, "FullDuplexCall: status message '%s', expected '%s'", msg, m);
    ag_rpc_call_free(c);
    return result;
}

static int status_code_and_message(env *e)
{
    return echo_status_case(e, "test status message", true);
}

static int special_status_message(env *e)
{
    return echo_status_case(e, SPECIAL_MESSAGE, false);
}

static int unimplemented_with(env *e, const ag_rpc_method *m)
{
    Grpc__Testing__Empty req = GRPC__TESTING__EMPTY__INIT;
    ProtobufCMessage *resp = NULL;
    char *msg = NULL;
    int st = ag_rpc_unary_msg(e->ch, m, &req.base, dl(), &resp, &msg);
    int rc = check_status(e, st, msg ? msg : "", AG_RPC_UNIMPLEMENTED, m->path);
    ag_free(msg);
    ag_rpc_msg_free(resp);
    return rc;
}

static int unimplemented_method(env *e)
{
    return unimplemented_with(e, &grpc__testing__test_service__unimplemented_call__method);
}

static int unimplemented_service(env *e)
{
    return unimplemented_with(e, &grpc__testing__unimplemented_service__unimplemented_call__method);
}

static const struct test_case {
    const char *name;
    int (*run)(env *e);
} cases[] = {
    {"empty_unary", empty_unary},
    {"large_unary", large_unary},
    {"client_compressed_unary", client_compressed_unary},
    {"server_compressed_unary", server_compressed_unary},
    {"client_streaming", client_streaming},
    {"client_compressed_streaming", client_compressed_streaming},
    {"server_streaming", server_streaming},
    {"server_compressed_streaming", server_compressed_streaming},
    {"ping_pong", ping_pong},
    {"empty_stream", empty_stream},
    {"timeout_on_sleeping_server", timeout_on_sleeping_server},
    {"cancel_after_begin", cancel_after_begin},
    {"cancel_after_first_response", cancel_after_first_response},
    {"custom_metadata", custom_metadata},
    {"status_code_and_message", status_code_and_message},
    {"special_status_message", special_status_message},
    {"unimplemented_method", unimplemented_method},
    {"unimplemented_service", unimplemented_service},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static const struct test_case *find_case(const char *name, size_t len)
{
    for (size_t i = 0; i < NCASES; i++)
        if (strlen(cases[i].name) == len && !memcmp(cases[i].name, name, len))
            return &cases[i];
    return NULL;
}

int main(int argc, char **argv)
{
    const char *host = "localhost", *override = NULL, *test_case = "large_unary";
    const char *ca_file = NULL, *ignored = NULL;
    int port = -1;
    bool use_tls = false, use_test_ca = false;
    const iflag flags[] = {
        {"server_host", FLAG_STR, &host, "the server's host (default localhost)"},
        {"server_port", FLAG_INT, &port, "the server's port"},
        {"server_host_override", FLAG_STR, &override,
         "the name the server's certificate must carry (default: --server_host)"},
        {"test_case", FLAG_STR, &test_case, "a case, a comma-separated list, or all"},
        {"use_tls", FLAG_BOOL, &use_tls, "connect with TLS (ALPN h2, certificate checked)"},
        {"use_test_ca", FLAG_BOOL, &use_test_ca, "trust gRPC's test CA (needs --ca_file: not shipped)"},
        {"ca_file", FLAG_STR, &ca_file, "PEM CAs to trust for the server's certificate"},
        {"default_service_account", FLAG_STR, &ignored, "accepted, unused (cloud cases)"},
        {"oauth_scope", FLAG_STR, &ignored, "accepted, unused (cloud cases)"},
        {"service_account_key_file", FLAG_STR, &ignored, "accepted, unused (cloud cases)"},
        {0},
    };
    int fr = flags_parse(argc, argv, flags,
                         "usage: argot-interop-client --server_host=H --server_port=N "
                         "--test_case=CASE[,CASE...|all] [--use_tls=true [--ca_file=F] "
                         "[--server_host_override=NAME]]\n\ncases: empty_unary large_unary "
                         "client_compressed_unary server_compressed_unary client_streaming\n"
                         "  client_compressed_streaming server_streaming "
                         "server_compressed_streaming ping_pong empty_stream\n"
                         "  timeout_on_sleeping_server cancel_after_begin "
                         "cancel_after_first_response custom_metadata\n"
                         "  status_code_and_message special_status_message "
                         "unimplemented_method unimplemented_service");
    if (fr != 0)
        return fr > 0 ? 0 : 2;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "argot-interop-client: --server_port is required (1-65535)\n");
        return 2;
    }
    if (use_tls && use_test_ca && !ca_file) {
        fprintf(stderr, "argot-interop-client: --use_test_ca: gRPC's test CA is not shipped; "
                        "give its file with --ca_file\n");
        return 2;
    }
    /* the cases to run, checked before any call */
    const struct test_case *run[NCASES * 4];
    size_t nrun = 0;
    if (!strcmp(test_case, "all")) {
        for (size_t i = 0; i < NCASES; i++)
            run[nrun++] = &cases[i];
    } else {
        for (const char *p = test_case; *p;) {
            size_t len = strcspn(p, ",");
            const struct test_case *tc = find_case(p, len);
            if (!tc) {
                fprintf(stderr, "argot-interop-client: unknown test case '%.*s' (see --help)\n",
                        (int)len, p);
                return 2;
            }
            if (nrun < sizeof(run) / sizeof(run[0]))
                run[nrun++] = tc;
            p += len + (p[len] == ',');
        }
    }
    char target[300];
    snprintf(target, sizeof(target), strchr(host, ':') && host[0] != '[' ? "[%s]:%d" : "%s:%d",
             host, port);
    ag_rpc_channel_opts o;
    ag_rpc_channel_opts_init(&o);
    o.tls = use_tls;
    if (use_tls) {
        o.tls_ca_file = ca_file;
        o.tls_server_name = override;
    }
    env e = {0};
    e.ch = ag_rpc_channel_new(target, &o);
    if (!e.ch) {
        fprintf(stderr, "argot-interop-client: bad target %s\n", target);
        return 2;
    }
    if (ag_rpc_channel_errmsg(e.ch)[0]) {
        fprintf(stderr, "argot-interop-client: %s\n", ag_rpc_channel_errmsg(e.ch));
        ag_rpc_channel_free(e.ch);
        return 2;
    }
    int failed = 0;
    for (size_t i = 0; i < nrun; i++) {
        e.why[0] = '\0';
        if (run[i]->run(&e) == 0) {
            printf("ok %s\n", run[i]->name);
        } else {
            printf("FAIL %s: %s\n", run[i]->name, e.why);
            failed++;
        }
        fflush(stdout);
    }
    ag_rpc_channel_free(e.ch);
    return failed ? 1 : 0;
}
