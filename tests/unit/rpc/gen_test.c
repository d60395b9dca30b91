/*
 * protoc-gen-argot (tools/protoc_gen/): protoc-c's name conversions, the
 * CodeGeneratorRequest parser on requests built with its own writer (good
 * ones and malformed ones: each gets an error, never a crash), what the
 * generator emits; then generated code for real: grpc.testing.TestService
 * (built by the Makefile's GRPC_TESTING_OBJS) over a server on loopback,
 * one method of each kind, an unimplemented one and a bad request payload.
 */
#include <stdlib.h>

#include "argot/rpc.h"
#include "grpc/testing/test.argot.h"
#include "protoc_gen/protoc_gen.h"
#include "test.h"

/* ---- names -------------------------------------------------------------------- */

static void check_conv(const char *full, const char *lower, const char *c)
{
    char *l = pg_full_to_lower(full), *u = pg_full_to_c(full);
    CHECK_STR_EQ(l, lower);
    CHECK_STR_EQ(u, c);
    free(l);
    free(u);
}

TEST(rpc_gen_names_match_protoc_c)
{
    /* what protoc-c 1.4 emits for these (checked against its output) */
    check_conv(".grpc.testing.SimpleRequest", "grpc__testing__simple_request",
               "Grpc__Testing__SimpleRequest");
    check_conv("grpc.testing.TestService", "grpc__testing__test_service",
               "Grpc__Testing__TestService");
    check_conv(".my_pkg.Sub2.ABTest2Svc", "my_pkg__sub2__abtest2_svc", "MyPkg__Sub2__ABTest2Svc");
    check_conv(".my_pkg.Sub2.HTTPRequest.Inner_x", "my_pkg__sub2__httprequest__inner_x",
               "MyPkg__Sub2__HTTPRequest__InnerX");
    check_conv("foo_bar", "foo_bar", "FooBar");
    check_conv("Foo9Bar", "foo9_bar", "Foo9Bar");
}

/* ---- requests built with the writer ---------------------------------------------- */

static void put_msg(pg_buf *b, uint32_t field, pg_buf *m)
{
    pg_put_bytes_field(b, field, m->p, m->len);
    pg_buf_free(m);
}

static void method(pg_buf *svc, const char *name, const char *in, const char *out, bool cs,
                   bool ss)
{
    pg_buf m = {0};
    pg_put_str_field(&m, 1, name);
    pg_put_str_field(&m, 2, in);
    pg_put_str_field(&m, 3, out);
    if (cs)
        pg_put_uint_field(&m, 5, 1);
    if (ss)
        pg_put_uint_field(&m, 6, 1);
    put_msg(svc, 2, &m);
}

/* t/b.proto: package t.other; message Msg. */
static void file_b(pg_buf *req)
{
    pg_buf f = {0}, m = {0};
    pg_put_str_field(&f, 1, "t/b.proto");
    pg_put_str_field(&f, 2, "t.other");
    pg_put_str_field(&m, 1, "Msg");
    put_msg(&f, 4, &m);
    put_msg(req, 15, &f);
}

/* t/a.proto: imports t/b.proto; messages Req (with Inner and enum Color),
 * Resp; enum Top; service EchoSvc with a method of each kind, and an
 * extra method (name and types given; NULL: none). The package comes last
 * and a source_code_info (field 9) in the middle, which the parser must
 * take in its stride. *desc_len: the descriptor's length less field 9. */
static void file_a(pg_buf *req, const char *extra, const char *extra_in, size_t *desc_len)
{
    pg_buf f = {0}, m = {0}, inner = {0}, e = {0}, svc = {0};
    pg_put_str_field(&f, 1, "t/a.proto");
    pg_put_str_field(&f, 3, "t/b.proto");
    pg_put_str_field(&inner, 1, "Inner");
    put_msg(&m, 3, &inner);
    pg_put_str_field(&e, 1, "Color");
    put_msg(&m, 4, &e);
    pg_put_str_field(&m, 1, "Req"); /* after its members */
    put_msg(&f, 4, &m);
    pg_put_str_field(&m, 1, "Resp");
    put_msg(&f, 4, &m);
    pg_put_str_field(&e, 1, "Top");
    put_msg(&f, 5, &e);
    pg_put_str_field(&svc, 1, "EchoSvc");
    method(&svc, "Say", ".t.pkg.Req", ".t.pkg.Resp", false, false);
    method(&svc, "GetHTTPThing", ".t.pkg.Req.Inner", ".t.pkg.Resp", false, true);
    method(&svc, "Up", ".t.other.Msg", ".t.pkg.Resp", true, false);
    method(&svc, "Chat", ".t.pkg.Req", ".t.pkg.Resp", true, true);
    if (extra)
        method(&svc, extra, extra_in, ".t.pkg.Resp", false, false);
    put_msg(&f, 6, &svc);
    size_t before = f.len;
    pg_put_str_field(&f, 9, "comments and positions");
    size_t info = f.len - before;
    pg_put_str_field(&f, 2, "t.pkg");
    *desc_len = f.len - info;
    put_msg(req, 15, &f);
}

static pg_buf make_request(const char *extra, const char *extra_in, size_t *desc_len)
{
    pg_buf req = {0};
    pg_put_str_field(&req, 1, "t/a.proto");
    file_b(&req);
    file_a(&req, extra, extra_in, desc_len);
    CHECK(!req.failed);
    return req;
}

static const pg_out_file *out_file(const pg_output *o, const char *name)
{
    for (size_t i = 0; i < o->nfiles; i++)
        if (strcmp(o->files[i].name, name) == 0)
            return &o->files[i];
    FAIL("no output file %s", name);
}

TEST(rpc_gen_parses_and_generates)
{
    size_t desc_len;
    pg_buf req = make_request(NULL, NULL, &desc_len);
    pg_request r;
    CHECK_EQ(pg_request_parse(&r, req.p, req.len), 0);
    CHECK_EQ(r.nfiles, 2);
    const pg_file *a = &r.files[1];
    CHECK_STR_EQ(a->name, "t/a.proto");
    CHECK_STR_EQ(a->package, "t.pkg");
    CHECK_EQ(a->descriptor_len, desc_len);
    CHECK_EQ(a->ndeps, 1);
    CHECK_STR_EQ(a->deps[0], "t/b.proto");
    const char *syms[] = {"t.pkg.Req",         "t.pkg.Req.Inner",      "t.pkg.Req.Color",
                          "t.pkg.Resp",        "t.pkg.Top",            "t.pkg.EchoSvc",
                          "t.pkg.EchoSvc.Say", "t.pkg.EchoSvc.GetHTTPThing", "t.pkg.EchoSvc.Up",
                          "t.pkg.EchoSvc.Chat"};
    CHECK_EQ(a->nsymbols, AG_ARRAY_LEN(syms));
    for (size_t i = 0; i < AG_ARRAY_LEN(syms); i++)
        CHECK_STR_EQ(a->symbols[i].name, syms[i]);

    pg_output o;
    CHECK_EQ(pg_generate(&r, &o), 0);
    CHECK_EQ(o.nfiles, 2);
    const char *h = out_file(&o, "t/a.argot.h")->content;
    const char *c = out_file(&o, "t/a.argot.c")->content;
    CHECK_CONTAINS(h, "#include \"t/a.pb-c.h\"");
    CHECK_CONTAINS(h, "extern const ag_rpc_proto_file t_a__proto_file;");
    CHECK_CONTAINS(h, "extern const ag_rpc_method t__pkg__echo_svc__say__method;");
    CHECK_CONTAINS(h, "static inline ag_rpc_call *t__pkg__echo_svc__say__start(ag_rpc_channel *ch, "
                      "ag_deadline dl)");
    CHECK_CONTAINS(h, "static inline int t__pkg__echo_svc__say__invoke(ag_rpc_channel *ch, const "
                      "T__Pkg__Req *req, ag_deadline dl,");
    CHECK_CONTAINS(h, "static inline int t__pkg__echo_svc__up__send_request(ag_rpc_call *c, const "
                      "T__Other__Msg *m, unsigned flags)");
    CHECK_CONTAINS(h, "static inline int t__pkg__echo_svc__chat__recv_response(ag_rpc_call *c, "
                      "T__Pkg__Resp **m)");
    CHECK_CONTAINS(h, "static inline int t__pkg__echo_svc__get_httpthing__recv_request(ag_rpc_call "
                      "*c, T__Pkg__Req__Inner **m)");
    CHECK(!strstr(h, "t__pkg__echo_svc__chat__invoke")); /* unary only */
    CHECK(!strstr(h, "get_httpthing__invoke"));
    CHECK_CONTAINS(h, "typedef struct T__Pkg__EchoSvc_Handlers {");
    CHECK_CONTAINS(h, "int (*say)(ag_rpc_call *c, const T__Pkg__Req *req, void *ud);");
    CHECK_CONTAINS(h, "int (*get_httpthing)(ag_rpc_call *c, const T__Pkg__Req__Inner *req, "
                      "void *ud);");
    CHECK_CONTAINS(h, "int (*up)(ag_rpc_call *c, void *ud);");
    CHECK_CONTAINS(h, "int (*chat)(ag_rpc_call *c, void *ud);");
    CHECK_CONTAINS(h, "int t__pkg__echo_svc__register(ag_rpc_server *s, const "
                      "T__Pkg__EchoSvc_Handlers *h);");
    CHECK_CONTAINS(c, "#include \"t/a.argot.h\"");
    CHECK_CONTAINS(c, ".path = \"/t.pkg.EchoSvc/GetHTTPThing\",\n"
                      "    .input = &t__pkg__req__inner__descriptor,\n"
                      "    .output = &t__pkg__resp__descriptor,\n"
                      "    .kind = AG_RPC_SERVER_STREAMING,");
    CHECK_CONTAINS(c, ".input = &t__other__msg__descriptor,");
    CHECK_CONTAINS(c, ".kind = AG_RPC_CLIENT_STREAMING,");
    CHECK_CONTAINS(c, ".kind = AG_RPC_BIDI_STREAMING,");
    CHECK_CONTAINS(c, "static int t__pkg__echo_svc__up__serve(ag_rpc_call *c, const "
                      "ProtobufCMessage *req, void *ud)");
    CHECK_CONTAINS(c, "\"t.pkg.Req.Color\",");
    CHECK_CONTAINS(c, "\"t/b.proto\",");
    char want[64];
    snprintf(want, sizeof(want), ".len = %zu,", desc_len);
    CHECK_CONTAINS(c, want);
    CHECK(!strstr(c, "comments and positions"));

    /* the response: supported_features, then the two files */
    uint8_t *resp;
    size_t len;
    CHECK_EQ(pg_response_encode(&o, NULL, &resp, &len), 0);
    CHECK(len > 4 && resp[0] == 0x10 && resp[1] == 1 && resp[2] == 0x7a);
    free(resp);
    pg_output_free(&o);
    pg_request_free(&r);
    pg_buf_free(&req);
}

/* A request that must fail with an error containing want. */
static void check_bad(const uint8_t *p, size_t n, const char *want)
{
    pg_request r;
    pg_output o;
    memset(&o, 0, sizeof(o));
    const char *err = NULL;
    if (pg_request_parse(&r, p, n) < 0)
        err = r.err;
    else if (pg_generate(&r, &o) < 0)
        err = o.err;
    if (!err)
        FAIL("no error, expected one with \"%s\"", want);
    CHECK_CONTAINS(err, want);
    uint8_t *resp;
    size_t len;
    CHECK_EQ(pg_response_encode(&o, err, &resp, &len), 0);
    CHECK(len > 2 && resp[0] == 0x0a); /* field 1: error */
    free(resp);
    pg_output_free(&o);
    pg_request_free(&r);
}

TEST(rpc_gen_malformed_requests_get_errors)
{
    size_t desc_len;
    pg_buf req = make_request(NULL, NULL, &desc_len);
    /* every truncation: an error or (at field boundaries) a smaller request */
    for (size_t n = 0; n < req.len; n++) {
        pg_request r;
        if (pg_request_parse(&r, req.p, n) == 0) {
            pg_output o;
            pg_generate(&r, &o);
            pg_output_free(&o);
        }
        pg_request_free(&r);
    }
    check_bad(req.p, req.len - 1, "runs past the end");
    pg_buf_free(&req);

    check_bad((const uint8_t *)"\x0b", 1, "unsupported wire type 3");
    check_bad((const uint8_t *)"\x08\x01", 2, "field 1 has wire type 0, expected 2");
    check_bad((const uint8_t *)"\x0a\x80", 2, "truncated or overlong length");
    check_bad((const uint8_t *)"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11,
              "truncated or overlong length");
    check_bad((const uint8_t *)"\x00", 1, "field number 0 out of range");
    check_bad((const uint8_t *)"\x0a\x03\x61\x00\x62", 5, "a NUL byte");

    req = make_request("Register", ".t.pkg.Req", &desc_len);
    check_bad(req.p, req.len, "would clash");
    pg_buf_free(&req);
    req = make_request("Nope", ".t.pkg.Missing", &desc_len);
    check_bad(req.p, req.len, "input type .t.pkg.Missing is not a message");
    pg_buf_free(&req);
    req = make_request("Bad", "t.pkg.Req", &desc_len);
    check_bad(req.p, req.len, "is not a fully qualified name");
    pg_buf_free(&req);
    req = make_request("say", ".t.pkg.Req", &desc_len);
    check_bad(req.p, req.len, "have the same C name 'say'");
    pg_buf_free(&req);

    /* a file to generate that was not sent; a name that is not a path */
    pg_buf b = {0};
    pg_put_str_field(&b, 1, "nowhere.proto");
    check_bad(b.p, b.len, "not among the request's proto_file");
    pg_buf_free(&b);
    pg_buf f = {0};
    pg_put_str_field(&f, 1, "../x\".proto");
    pg_put_bytes_field(&b, 15, f.p, f.len);
    check_bad(b.p, b.len, "is not a relative path");
    pg_buf_free(&f);
    pg_buf_free(&b);

    /* messages nested past the limit */
    pg_buf m = {0};
    pg_put_str_field(&m, 1, "M");
    for (int i = 0; i < 70; i++) {
        pg_buf outer = {0};
        pg_put_str_field(&outer, 1, "M");
        pg_put_bytes_field(&outer, 3, m.p, m.len);
        pg_buf_free(&m);
        m = outer;
    }
    pg_put_str_field(&f, 1, "deep.proto");
    pg_put_bytes_field(&f, 4, m.p, m.len);
    pg_put_bytes_field(&b, 15, f.p, f.len);
    check_bad(b.p, b.len, "nested deeper than 64");
    pg_buf_free(&m);
    pg_buf_free(&f);
    pg_buf_free(&b);
}

/* ---- generated code, for real: grpc.testing.TestService ----------------------------- */

static int t_unary(ag_rpc_call *c, const Grpc__Testing__SimpleRequest *req, void *ud)
{
    CHECK_STR_EQ(ud, "ud");
    Grpc__Testing__Payload p = GRPC__TESTING__PAYLOAD__INIT;
    Grpc__Testing__SimpleResponse r = GRPC__TESTING__SIMPLE_RESPONSE__INIT;
    if (req->payload)
        p.body = req->payload->body;
    r.payload = &p;
    r.username = "echo";
    grpc__testing__test_service__unary_call__send_response(c, &r, 0);
    return AG_RPC_OK;
}

static int t_out(ag_rpc_call *c, const Grpc__Testing__StreamingOutputCallRequest *req, void *ud)
{
    (void)ud;
    for (size_t i = 0; i < req->n_response_parameters; i++) {
        uint8_t body[256];
        int32_t size = req->response_parameters[i]->size;
        if (size < 0 || size > (int32_t)sizeof(body))
            return AG_RPC_INVALID_ARGUMENT;
        memset(body, 'a' + (int)i, (size_t)size);
        Grpc__Testing__Payload p = GRPC__TESTING__PAYLOAD__INIT;
        p.body.data = body;
        p.body.len = (size_t)size;
        Grpc__Testing__StreamingOutputCallResponse r =
            GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
        r.payload = &p;
        if (grpc__testing__test_service__streaming_output_call__send_response(c, &r, 0) < 0)
            return AG_RPC_CANCELLED;
    }
    return AG_RPC_OK;
}

static int t_in(ag_rpc_call *c, void *ud)
{
    (void)ud;
    Grpc__Testing__StreamingInputCallRequest *m;
    int32_t total = 0;
    int rc;
    for (;;) {
        rc = grpc__testing__test_service__streaming_input_call__recv_request(c, &m);
        if (rc != 1)
            break;
        total += m->payload ? (int32_t)m->payload->body.len : 0;
        ag_rpc_msg_free(&m->base);
    }
    if (rc < 0)
        return AG_RPC_INTERNAL;
    Grpc__Testing__StreamingInputCallResponse r = GRPC__TESTING__STREAMING_INPUT_CALL_RESPONSE__INIT;
    r.aggregated_payload_size = total;
    grpc__testing__test_service__streaming_input_call__send_response(c, &r, 0);
    return AG_RPC_OK;
}

static int t_duplex(ag_rpc_call *c, void *ud)
{
    (void)ud;
    Grpc__Testing__StreamingOutputCallRequest *m;
    for (;;) {
        if (grpc__testing__test_service__full_duplex_call__recv_request(c, &m) != 1)
            break;
        Grpc__Testing__StreamingOutputCallResponse r =
            GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
        r.payload = m->payload;
        grpc__testing__test_service__full_duplex_call__send_response(c, &r, 0);
        ag_rpc_msg_free(&m->base);
    }
    return AG_RPC_OK;
}

static const Grpc__Testing__TestService_Handlers test_handlers = {
    .unary_call = t_unary,
    .streaming_output_call = t_out,
    .streaming_input_call = t_in,
    .full_duplex_call = t_duplex,
    .ud = "ud",
};

static Grpc__Testing__Payload payload(const char *s)
{
    Grpc__Testing__Payload p = GRPC__TESTING__PAYLOAD__INIT;
    p.body.data = (uint8_t *)s;
    p.body.len = strlen(s);
    return p;
}

TEST_TIMEOUT(rpc_gen_test_service_end_to_end, 60)
{
    ag_rpc_server *s = ag_rpc_server_new(NULL);
    CHECK(s);
    CHECK_OK(grpc__testing__test_service__register(s, &test_handlers));
    CHECK_OK(ag_rpc_server_start(s, "127.0.0.1:0"));
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", ag_rpc_server_port(s));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    CHECK(ch);
    ag_deadline dl = ag_deadline_in_ms(20000);

    /* unary */
    Grpc__Testing__Payload p = payload("ping");
    Grpc__Testing__SimpleRequest req = GRPC__TESTING__SIMPLE_REQUEST__INIT;
    req.payload = &p;
    Grpc__Testing__SimpleResponse *resp;
    char *msg;
    int st = grpc__testing__test_service__unary_call__invoke(ch, &req, dl, &resp, &msg);
    CHECK_EQ(st, AG_RPC_OK);
    CHECK_STR_EQ(resp->username, "echo");
    CHECK(resp->payload && resp->payload->body.len == 4 &&
          memcmp(resp->payload->body.data, "ping", 4) == 0);
    ag_rpc_msg_free(&resp->base);
    ag_free(msg);

    /* server streaming */
    ag_rpc_call *c = grpc__testing__test_service__streaming_output_call__start(ch, dl);
    CHECK(c);
    Grpc__Testing__ResponseParameters rp[3], *rpp[3];
    for (int i = 0; i < 3; i++) {
        Grpc__Testing__ResponseParameters init = GRPC__TESTING__RESPONSE_PARAMETERS__INIT;
        rp[i] = init;
        rp[i].size = 10 * (i + 1);
        rpp[i] = &rp[i];
    }
    Grpc__Testing__StreamingOutputCallRequest oreq = GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
    oreq.n_response_parameters = 3;
    oreq.response_parameters = rpp;
    CHECK_OK(grpc__testing__test_service__streaming_output_call__send_request(c, &oreq, 0));
    CHECK_OK(ag_rpc_call_close_send(c));
    Grpc__Testing__StreamingOutputCallResponse *oresp;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(grpc__testing__test_service__streaming_output_call__recv_response(c, &oresp), 1);
        CHECK_EQ(oresp->payload->body.len, 10 * (i + 1));
        CHECK_EQ(oresp->payload->body.data[0], 'a' + i);
        ag_rpc_msg_free(&oresp->base);
    }
    CHECK_EQ(grpc__testing__test_service__streaming_output_call__recv_response(c, &oresp), 0);
    CHECK(oresp == NULL);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);

    /* client streaming */
    c = grpc__testing__test_service__streaming_input_call__start(ch, dl);
    const char *parts[] = {"a", "bb", "cccc"};
    for (int i = 0; i < 3; i++) {
        Grpc__Testing__Payload pp = payload(parts[i]);
        Grpc__Testing__StreamingInputCallRequest ir = GRPC__TESTING__STREAMING_INPUT_CALL_REQUEST__INIT;
        ir.payload = &pp;
        CHECK_OK(grpc__testing__test_service__streaming_input_call__send_request(c, &ir, 0));
    }
    CHECK_OK(ag_rpc_call_close_send(c));
    Grpc__Testing__StreamingInputCallResponse *iresp;
    CHECK_EQ(grpc__testing__test_service__streaming_input_call__recv_response(c, &iresp), 1);
    CHECK_EQ(iresp->aggregated_payload_size, 7);
    ag_rpc_msg_free(&iresp->base);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);

    /* bidirectional: each message back before the next goes */
    c = grpc__testing__test_service__full_duplex_call__start(ch, dl);
    for (int i = 0; i < 3; i++) {
        Grpc__Testing__Payload pp = payload(parts[i]);
        Grpc__Testing__StreamingOutputCallRequest dr = GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
        dr.payload = &pp;
        CHECK_OK(grpc__testing__test_service__full_duplex_call__send_request(c, &dr, 0));
        CHECK_EQ(grpc__testing__test_service__full_duplex_call__recv_response(c, &oresp), 1);
        CHECK_EQ(oresp->payload->body.len, strlen(parts[i]));
        ag_rpc_msg_free(&oresp->base);
    }
    CHECK_OK(ag_rpc_call_close_send(c));
    CHECK_EQ(grpc__testing__test_service__full_duplex_call__recv_response(c, &oresp), 0);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);

    /* a NULL handler: not registered, UNIMPLEMENTED */
    Grpc__Testing__Empty e = GRPC__TESTING__EMPTY__INIT, *eresp;
    st = grpc__testing__test_service__empty_call__invoke(ch, &e, dl, &eresp, NULL);
    CHECK_EQ(st, AG_RPC_UNIMPLEMENTED);
    CHECK(eresp == NULL);

    /* bytes that are not a SimpleRequest (field 3, a truncated payload) */
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    st = ag_rpc_unary(ch, grpc__testing__test_service__unary_call__method.path, "\x1a\x05\x0a", 3,
                      dl, &raw, &rawlen, &msg);
    CHECK_EQ(st, AG_RPC_INTERNAL);
    CHECK_CONTAINS(msg, "grpc.testing.SimpleRequest");
    ag_free(msg);
    ag_free(raw);

    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}
