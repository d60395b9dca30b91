/*
 * protoc-gen-argot's parts: a protobuf wire reader and writer (just enough
 * for protoc's plugin protocol), the CodeGeneratorRequest parser, and the
 * generator of <file>.argot.h / <file>.argot.c.
 *
 * The plugin (tools/protoc-gen-argot.c) reads a CodeGeneratorRequest from
 * protoc on stdin and writes a CodeGeneratorResponse on stdout. The request
 * is untrusted input as far as this code is concerned: every length is
 * checked against the bytes there are, nesting is bounded, names that end
 * up in C code are checked to be identifiers, and any problem comes back as
 * a sentence in pg_request.err / pg_output.err (which the plugin returns in
 * the response's `error` field), never a crash. Fuzzed by
 * fuzz/protoc_request.c.
 *
 * Field numbers (google/protobuf/compiler/plugin.proto and descriptor.proto):
 *   CodeGeneratorRequest:   file_to_generate 1, parameter 2, proto_file 15
 *   FileDescriptorProto:    name 1, package 2, dependency 3, message_type 4,
 *                           enum_type 5, service 6, source_code_info 9
 *   DescriptorProto:        name 1, nested_type 3, enum_type 4
 *   EnumDescriptorProto:    name 1
 *   ServiceDescriptorProto: name 1, method 2
 *   MethodDescriptorProto:  name 1, input_type 2, output_type 3,
 *                           client_streaming 5, server_streaming 6
 *   CodeGeneratorResponse:  error 1, supported_features 2,
 *                           file 15 (name 1, content 15)
 *
 * Memory: plain malloc (the plugin is a standalone program); every object
 * has its _free. Single-threaded.
 */
#ifndef ARGOT_PROTOC_GEN_H
#define ARGOT_PROTOC_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- writer ------------------------------------------------------------------ */

/* A growable byte buffer; an allocation failure sets `failed` and later
 * writes do nothing (check once at the end). */
typedef struct pg_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
    bool failed;
} pg_buf;

void pg_buf_put(pg_buf *b, const void *p, size_t n);
void pg_buf_puts(pg_buf *b, const char *s);
void pg_buf_printf(pg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pg_buf_free(pg_buf *b);

void pg_put_varint(pg_buf *b, uint64_t v);
/* A varint field (wire type 0). */
void pg_put_uint_field(pg_buf *b, uint32_t field, uint64_t v);
/* A length-delimited field (wire type 2): bytes, a string, a message. */
void pg_put_bytes_field(pg_buf *b, uint32_t field, const void *p, size_t n);
void pg_put_str_field(pg_buf *b, uint32_t field, const char *s);

/* ---- reader ------------------------------------------------------------------ */

typedef struct pg_slice {
    const uint8_t *p;
    size_t n;
} pg_slice;

/* ---- the request ------------------------------------------------------------- */

typedef enum pg_sym_kind {
    PG_SYM_MESSAGE,
    PG_SYM_ENUM,
    PG_SYM_SERVICE,
    PG_SYM_METHOD,
} pg_sym_kind;

typedef struct pg_symbol {
    char *name;        /* fully qualified, without a leading dot: "pkg.Outer.Inner" */
    pg_sym_kind kind;
} pg_symbol;

typedef struct pg_method {
    char *name;        /* "UnaryCall" */
    char *input;       /* fully qualified with a leading dot: ".grpc.testing.SimpleRequest" */
    char *output;
    bool client_streaming;
    bool server_streaming;
} pg_method;

typedef struct pg_service {
    char *name;        /* "TestService" */
    pg_method *methods;
    size_t nmethods;
} pg_service;

typedef struct pg_file {
    char *name;        /* "grpc/testing/test.proto" */
    char *package;     /* "grpc.testing", or "" */
    char **deps;       /* names of the files it imports */
    size_t ndeps;
    pg_symbol *symbols; /* what it defines, in the order the descriptor has them */
    size_t nsymbols;
    pg_service *services;
    size_t nservices;
    uint8_t *descriptor; /* its FileDescriptorProto as protoc sent it, less
                          * source_code_info (field 9: comments and
                          * positions, which reflection clients do not need) */
    size_t descriptor_len;
} pg_file;

typedef struct pg_request {
    char **to_generate; /* file_to_generate */
    size_t ngenerate;
    char *parameter;    /* NULL if absent */
    pg_file *files;     /* proto_file: every file to generate and what it imports */
    size_t nfiles;
    char err[512];      /* why parsing failed */
} pg_request;

/* Parses a serialized CodeGeneratorRequest. Returns 0, or -1 with r->err
 * saying what is wrong and where ("malformed CodeGeneratorRequest at byte
 * 17: ..."); either way pg_request_free(r) releases what it holds. */
int pg_request_parse(pg_request *r, const uint8_t *data, size_t len);
void pg_request_free(pg_request *r);

/* ---- generation ---------------------------------------------------------------- */

typedef struct pg_out_file {
    char *name;        /* "grpc/testing/test.argot.h" */
    char *content;     /* NUL-terminated */
    size_t len;
} pg_out_file;

typedef struct pg_output {
    pg_out_file *files;
    size_t nfiles;
    char err[512];     /* why generation failed */
} pg_output;

/* Generates <name>.argot.h and <name>.argot.c for every file to generate.
 * Returns 0, or -1 with o->err (an unknown message type, a name clash);
 * pg_output_free(o) either way. */
int pg_generate(const pg_request *r, pg_output *o);
void pg_output_free(pg_output *o);

/* The CodeGeneratorResponse: error (if not NULL) or o's files, with
 * supported_features = FEATURE_PROTO3_OPTIONAL. Returns 0, or -1 when out
 * of memory. *out is malloc'd. */
int pg_response_encode(const pg_output *o, const char *error, uint8_t **out, size_t *len);

/* protoc-c's name conversions, which generated code must match:
 * "TestService" -> "test_service" (CamelToLower: '_' before an upper-case
 * letter that follows a non-upper-case one) and "foo_bar" -> "FooBar"
 * (ToCamel). Full names convert piece by piece, joined with "__":
 * ".grpc.testing.SimpleRequest" -> "grpc__testing__simple_request" and
 * "Grpc__Testing__SimpleRequest". malloc'd; NULL when out of memory. */
char *pg_full_to_lower(const char *full);
char *pg_full_to_c(const char *full);

#endif /* ARGOT_PROTOC_GEN_H */
