/*
 * gRPC server reflection: grpc.reflection.v1alpha.ServerReflection and
 * grpc.reflection.v1.ServerReflection (grpc's doc/server-reflection.md and
 * the two reflection.proto files), on the handler tables protoc-gen-argot
 * generates. The two versions' messages are the same on the wire, so one
 * handler serves both, reading and writing v1alpha's types.
 *
 * What it knows is static: the ag_rpc_proto_file records the generated
 * code holds (the serialized FileDescriptorProto, its imports, the symbols
 * it defines), the caller's plus reflection's and health's own. Each
 * request on the bidirectional stream gets one response, in order,
 * echoing valid_host (the request's host) and original_request:
 *   - list_services: the services of the known files that have a method
 *     registered on the server (ag_rpc_server_has_method; the methods are
 *     fixed once the server runs);
 *   - file_by_filename, file_containing_symbol (a message, nested or not,
 *     an enum, a service or "pkg.Service.Method"): that file, then its
 *     imports among the known files, transitively, each once, as gRPC's
 *     servers do;
 *   - file_containing_extension, all_extension_numbers_of_type (argot's
 *     files define no extensions), an unknown file or symbol: an
 *     error_response NOT_FOUND naming what was asked for.
 * Threads: each call's handler thread reads the immutable state only.
 */
#include <stdio.h>
#include <string.h>

#include "argot/rpc.h"
#include "grpc/health/v1/health.argot.h"
#include "grpc/reflection/v1/reflection.argot.h"
#include "grpc/reflection/v1alpha/reflection.argot.h"

typedef Grpc__Reflection__V1alpha__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1alpha__ServerReflectionResponse resp_t;

struct ag_rpc_reflection {
    const ag_rpc_proto_file **files;
    size_t nfiles;
    ag_rpc_server *server;   /* set by register, before the server starts */
    Grpc__Reflection__V1alpha__ServerReflection_Handlers v1alpha; /* ud: this */
    Grpc__Reflection__V1__ServerReflection_Handlers v1;           /* ud: this */
};

static const ag_rpc_proto_file *find_file(const ag_rpc_reflection *r, const char *name)
{
    for (size_t i = 0; i < r->nfiles; i++)
        if (strcmp(r->files[i]->name, name) == 0)
            return r->files[i];
    return NULL;
}

static const ag_rpc_proto_file *find_symbol(const ag_rpc_reflection *r, const char *sym)
{
    if (sym[0] == '.') /* a fully-qualified name as descriptors write it */
        sym++;
    for (size_t i = 0; i < r->nfiles; i++)
        for (size_t j = 0; j < r->files[i]->nsymbols; j++)
            if (strcmp(r->files[i]->symbols[j], sym) == 0)
                return r->files[i];
    return NULL;
}

/* f, then its imports among the known files, transitively, each once.
 * out has room for every known file; returns how many were put there. */
static size_t closure(const ag_rpc_reflection *r, const ag_rpc_proto_file *f,
                      const ag_rpc_proto_file **out)
{
    size_t n = 0;
    out[n++] = f;
    for (size_t i = 0; i < n; i++) {
        for (size_t d = 0; d < out[i]->ndeps; d++) {
            const ag_rpc_proto_file *dep = find_file(r, out[i]->deps[d]);
            bool seen = !dep;
            for (size_t k = 0; !seen && k < n; k++)
                seen = out[k] == dep;
            if (!seen)
                out[n++] = dep;
        }
    }
    return n;
}

/* Does the server have a method of service svc (of file f)? */
static bool served(const ag_rpc_reflection *r, const ag_rpc_proto_file *f, const char *svc)
{
    size_t len = strlen(svc);
    char path[1024];
    for (size_t i = 0; i < f->nsymbols; i++) {
        const char *m = f->symbols[i];
        if (strncmp(m, svc, len) != 0 || m[len] != '.' || strchr(m + len + 1, '.'))
            continue;
        int n = snprintf(path, sizeof(path), "/%s/%s", svc, m + len + 1);
        if (n > 0 && (size_t)n < sizeof(path) && ag_rpc_server_has_method(r->server, path))
            return true;
    }
    return false;
}

/* Builds and sends the answer to one request. 0 or a negative code. */
static int answer(ag_rpc_call *c, const ag_rpc_reflection *r, req_t *req)
{
    resp_t resp = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ErrorResponse er = GRPC__REFLECTION__V1ALPHA__ERROR_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__FileDescriptorResponse fr =
        GRPC__REFLECTION__V1ALPHA__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ListServiceResponse lr =
        GRPC__REFLECTION__V1ALPHA__LIST_SERVICE_RESPONSE__INIT;
    const ag_rpc_proto_file **files = ag_calloc(r->nfiles, sizeof(*files));
    ProtobufCBinaryData *blobs = ag_calloc(r->nfiles, sizeof(*blobs));
    size_t nsvc = 0;
    for (size_t i = 0; i < r->nfiles; i++)
        nsvc += r->files[i]->nservices;
    Grpc__Reflection__V1alpha__ServiceResponse *svcs = ag_calloc(nsvc + 1, sizeof(*svcs));
    Grpc__Reflection__V1alpha__ServiceResponse **svcp = ag_calloc(nsvc + 1, sizeof(*svcp));
    char msg[600];
    int rc = AG_E_NOMEM;
    if (!files || !blobs || !svcs || !svcp)
        goto out;

    resp.valid_host = req->host;
    resp.original_request = req;
    const ag_rpc_proto_file *f = NULL;
    const char *missing = NULL;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        f = find_file(r, req->file_by_filename);
        missing = f ? NULL : "file";
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        f = find_symbol(r, req->file_containing_symbol);
        missing = f ? NULL : "symbol";
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        snprintf(msg, sizeof(msg), "extension %d of '%.256s' not found",
                 req->file_containing_extension ? req->file_containing_extension->extension_number
                                                : 0,
                 req->file_containing_extension
                     ? req->file_containing_extension->containing_type
                     : "");
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        snprintf(msg, sizeof(msg), "no extensions of type '%.256s' known",
                 req->all_extension_numbers_of_type);
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        for (size_t i = 0; i < r->nfiles; i++) {
            for (size_t j = 0; j < r->files[i]->nservices; j++) {
                const char *name = r->files[i]->services[j];
                bool dup = false;
                for (size_t k = 0; !dup && k < lr.n_service; k++)
                    dup = strcmp(svcp[k]->name, name) == 0;
                if (dup || !served(r, r->files[i], name))
                    continue;
                Grpc__Reflection__V1alpha__ServiceResponse init =
                    GRPC__REFLECTION__V1ALPHA__SERVICE_RESPONSE__INIT;
                svcs[lr.n_service] = init;
                svcs[lr.n_service].name = (char *)name;
                svcp[lr.n_service] = &svcs[lr.n_service];
                lr.n_service++;
            }
        }
        lr.service = svcp;
        resp.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &lr;
        break;
    default:
        snprintf(msg, sizeof(msg), "the request asks for nothing");
        er.error_code = AG_RPC_INVALID_ARGUMENT;
        break;
    }
    if (f) {
        size_t n = closure(r, f, files);
        for (size_t i = 0; i < n; i++) {
            blobs[i].data = (uint8_t *)files[i]->data;
            blobs[i].len = files[i]->len;
        }
        fr.n_file_descriptor_proto = n;
        fr.file_descriptor_proto = blobs;
        resp.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &fr;
    } else if (resp.message_response_case ==
               GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE__NOT_SET) {
        if (missing)
            snprintf(msg, sizeof(msg), "%s '%.256s' not found", missing,
                     req->message_request_case ==
                             GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME
                         ? req->file_by_filename
                         : req->file_containing_symbol);
        if (!er.error_code)
            er.error_code = AG_RPC_NOT_FOUND;
        er.error_message = msg;
        resp.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &er;
    }
    rc = ag_rpc_call_send_msg(c, &resp.base, 0);
out:
    ag_free(files);
    ag_free(blobs);
    ag_free(svcs);
    ag_free(svcp);
    return rc;
}

/* The bidirectional stream, for either version. */
static int serve(ag_rpc_call *c, ag_rpc_reflection *r)
{
    for (;;) {
        ProtobufCMessage *m;
        int rc = ag_rpc_call_recv_msg(
            c, &grpc__reflection__v1alpha__server_reflection_request__descriptor, &m);
        if (rc == 0)
            return AG_RPC_OK;
        if (rc == AG_E_RPC_PARSE) {
            ag_rpc_call_set_status_message(c, "cannot parse the request as a "
                                              "ServerReflectionRequest");
            return AG_RPC_INTERNAL;
        }
        if (rc < 0)
            return AG_RPC_CANCELLED;
        rc = answer(c, r, (req_t *)m);
        ag_rpc_msg_free(m);
        if (rc == AG_E_NOMEM) {
            ag_rpc_call_set_status_message(c, "out of memory");
            return AG_RPC_RESOURCE_EXHAUSTED;
        }
        if (rc < 0)
            return AG_RPC_CANCELLED;
    }
}

static int h_v1alpha(ag_rpc_call *c, void *ud)
{
    return serve(c, ud);
}

static int h_v1(ag_rpc_call *c, void *ud)
{
    return serve(c, ud);
}

static bool add_file(ag_rpc_reflection *r, const ag_rpc_proto_file *f)
{
    if (find_file(r, f->name))
        return false;
    r->files[r->nfiles++] = f;
    return true;
}

ag_rpc_reflection *ag_rpc_reflection_new(const ag_rpc_proto_file *const *files, size_t n)
{
    static const ag_rpc_proto_file *const own[] = {
        &grpc_reflection_v1alpha_reflection__proto_file,
        &grpc_reflection_v1_reflection__proto_file,
        &grpc_health_v1_health__proto_file,
    };
    ag_rpc_reflection *r = ag_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->files = ag_calloc(n + AG_ARRAY_LEN(own), sizeof(*r->files));
    if (!r->files) {
        ag_free(r);
        return NULL;
    }
    for (size_t i = 0; i < AG_ARRAY_LEN(own); i++)
        add_file(r, own[i]);
    for (size_t i = 0; i < n; i++)
        add_file(r, files[i]);
    r->v1alpha.server_reflection_info = h_v1alpha;
    r->v1alpha.ud = r;
    r->v1.server_reflection_info = h_v1;
    r->v1.ud = r;
    return r;
}

int ag_rpc_reflection_register(ag_rpc_server *s, ag_rpc_reflection *r)
{
    r->server = s;
    int rc = grpc__reflection__v1alpha__server_reflection__register(s, &r->v1alpha);
    if (rc == 0)
        rc = grpc__reflection__v1__server_reflection__register(s, &r->v1);
    return rc;
}

void ag_rpc_reflection_free(ag_rpc_reflection *r)
{
    if (!r)
        return;
    ag_free(r->files);
    ag_free(r);
}
