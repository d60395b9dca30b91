/*
 * Server reflection (src/rpc/reflection.c) over a real server on loopback,
 * from argot's generated v1alpha and v1 stubs: list_services (what is
 * registered, not what is merely known), file_by_filename and
 * file_containing_symbol with transitive dependencies, NOT_FOUND for
 * unknown names and extensions, valid_host and original_request echoed,
 * several requests on one stream.
 */
#include "argot/rpc.h"
#include "grpc/health/v1/health.argot.h"
#include "grpc/reflection/v1/reflection.argot.h"
#include "grpc/reflection/v1alpha/reflection.argot.h"
#include "grpc/testing/empty.argot.h"
#include "grpc/testing/messages.argot.h"
#include "grpc/testing/test.argot.h"
#include "test.h"

typedef Grpc__Reflection__V1alpha__ServerReflectionRequest rreq;
typedef Grpc__Reflection__V1alpha__ServerReflectionResponse rresp;

static int unary_stub(ag_rpc_call *c, const Grpc__Testing__Empty *req, void *ud)
{
    (void)req;
    (void)ud;
    Grpc__Testing__Empty e = GRPC__TESTING__EMPTY__INIT;
    grpc__testing__test_service__empty_call__send_response(c, &e, 0);
    return AG_RPC_OK;
}

static const Grpc__Testing__TestService_Handlers handlers = {.empty_call = unary_stub};

static rresp *ask(ag_rpc_call *c, rreq *req)
{
    req->host = "example:1";
    CHECK_OK(grpc__reflection__v1alpha__server_reflection__server_reflection_info__send_request(
        c, req, 0));
    rresp *r;
    CHECK_EQ(grpc__reflection__v1alpha__server_reflection__server_reflection_info__recv_response(
                 c, &r),
             1);
    CHECK_STR_EQ(r->valid_host, "example:1");
    CHECK(r->original_request);
    CHECK_EQ(r->original_request->message_request_case, req->message_request_case);
    return r;
}

/* The names of the files in a file_descriptor_response (their field 1). */
static void file_names(const rresp *r, char names[][64], size_t *n)
{
    CHECK_EQ(r->message_response_case,
             GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    *n = r->file_descriptor_response->n_file_descriptor_proto;
    for (size_t i = 0; i < *n; i++) {
        const uint8_t *p = r->file_descriptor_response->file_descriptor_proto[i].data;
        CHECK(p[0] == 0x0a && p[1] < 64);
        memcpy(names[i], p + 2, p[1]);
        names[i][p[1]] = 0;
    }
}

static void check_error(const rresp *r, const char *want)
{
    CHECK_EQ(r->message_response_case,
             GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
    CHECK_EQ(r->error_response->error_code, AG_RPC_NOT_FOUND);
    CHECK_CONTAINS(r->error_response->error_message, want);
}

TEST_TIMEOUT(rpc_reflection_answers, 60)
{
    const ag_rpc_proto_file *files[] = {&grpc_testing_test__proto_file,
                                        &grpc_testing_messages__proto_file,
                                        &grpc_testing_empty__proto_file};
    ag_rpc_reflection *refl = ag_rpc_reflection_new(files, AG_ARRAY_LEN(files));
    CHECK(refl);
    ag_rpc_health *h = ag_rpc_health_new();
    ag_rpc_server *s = ag_rpc_server_new(NULL);
    CHECK(s && h);
    CHECK_OK(ag_rpc_reflection_register(s, refl));
    CHECK_OK(ag_rpc_health_register(s, h));
    CHECK_OK(grpc__testing__test_service__register(s, &handlers));
    CHECK_OK(ag_rpc_server_start(s, "127.0.0.1:0"));
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", ag_rpc_server_port(s));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    CHECK(ch);
    ag_rpc_call *c = grpc__reflection__v1alpha__server_reflection__server_reflection_info__start(
        ch, ag_deadline_in_ms(20000));

    /* list_services: the registered ones only (not UnimplementedService,
     * ReconnectService... of test.proto) */
    rreq req = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    req.message_request_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    req.list_services = "*";
    rresp *r = ask(c, &req);
    CHECK_EQ(r->message_response_case,
             GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
    const char *want[] = {"grpc.reflection.v1alpha.ServerReflection",
                          "grpc.reflection.v1.ServerReflection", "grpc.health.v1.Health",
                          "grpc.testing.TestService"};
    CHECK_EQ(r->list_services_response->n_service, AG_ARRAY_LEN(want));
    for (size_t i = 0; i < AG_ARRAY_LEN(want); i++)
        CHECK_STR_EQ(r->list_services_response->service[i]->name, want[i]);
    ag_rpc_msg_free(&r->base);

    /* a method's file, then its imports */
    char names[8][64];
    size_t n;
    req.message_request_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    req.file_containing_symbol = "grpc.testing.TestService.UnaryCall";
    r = ask(c, &req);
    file_names(r, names, &n);
    CHECK_EQ(n, 3);
    CHECK_STR_EQ(names[0], "grpc/testing/test.proto");
    CHECK_STR_EQ(names[1], "grpc/testing/empty.proto");
    CHECK_STR_EQ(names[2], "grpc/testing/messages.proto");
    ag_rpc_msg_free(&r->base);

    /* a nested enum; a file by name */
    req.file_containing_symbol = "grpc.health.v1.HealthCheckResponse.ServingStatus";
    r = ask(c, &req);
    file_names(r, names, &n);
    CHECK_EQ(n, 1);
    CHECK_STR_EQ(names[0], "grpc/health/v1/health.proto");
    ag_rpc_msg_free(&r->base);
    req.message_request_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
    req.file_by_filename = "grpc/testing/messages.proto";
    r = ask(c, &req);
    file_names(r, names, &n);
    CHECK_EQ(n, 1);
    CHECK_STR_EQ(names[0], "grpc/testing/messages.proto");
    ag_rpc_msg_free(&r->base);

    /* unknown names, extensions */
    req.file_by_filename = "nope.proto";
    r = ask(c, &req);
    check_error(r, "file 'nope.proto' not found");
    ag_rpc_msg_free(&r->base);
    req.message_request_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    req.file_containing_symbol = "grpc.testing.Nope";
    r = ask(c, &req);
    check_error(r, "symbol 'grpc.testing.Nope' not found");
    ag_rpc_msg_free(&r->base);
    Grpc__Reflection__V1alpha__ExtensionRequest ext =
        GRPC__REFLECTION__V1ALPHA__EXTENSION_REQUEST__INIT;
    ext.containing_type = "grpc.testing.SimpleRequest";
    ext.extension_number = 100;
    req.message_request_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
    req.file_containing_extension = &ext;
    r = ask(c, &req);
    check_error(r, "extension 100 of 'grpc.testing.SimpleRequest'");
    ag_rpc_msg_free(&r->base);
    req.message_request_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
    req.all_extension_numbers_of_type = "grpc.testing.SimpleRequest";
    r = ask(c, &req);
    check_error(r, "grpc.testing.SimpleRequest");
    ag_rpc_msg_free(&r->base);

    CHECK_OK(ag_rpc_call_close_send(c));
    CHECK_EQ(grpc__reflection__v1alpha__server_reflection__server_reflection_info__recv_response(c,
                                                                                                 &r),
             0);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);

    /* v1: the same service under its new name */
    Grpc__Reflection__V1__ServerReflectionRequest req1 =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    req1.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    req1.file_containing_symbol = "grpc.reflection.v1.ServerReflection";
    c = grpc__reflection__v1__server_reflection__server_reflection_info__start(
        ch, ag_deadline_in_ms(20000));
    CHECK_OK(grpc__reflection__v1__server_reflection__server_reflection_info__send_request(c, &req1,
                                                                                          0));
    CHECK_OK(ag_rpc_call_close_send(c));
    Grpc__Reflection__V1__ServerReflectionResponse *r1;
    CHECK_EQ(grpc__reflection__v1__server_reflection__server_reflection_info__recv_response(c, &r1),
             1);
    CHECK_EQ(r1->message_response_case,
             GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    CHECK_EQ(r1->file_descriptor_response->n_file_descriptor_proto, 1);
    ag_rpc_msg_free(&r1->base);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);

    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
    ag_rpc_health_free(h);
    ag_rpc_reflection_free(refl);
}

TEST_FM(rpc_reflection_new_failmalloc)
{
    const ag_rpc_proto_file *files[] = {&grpc_testing_test__proto_file,
                                        &grpc_health_v1_health__proto_file};
    ag_rpc_reflection *r = ag_rpc_reflection_new(files, 2);
    FM_NEW(r);
out:
    ag_rpc_reflection_free(r);
}
