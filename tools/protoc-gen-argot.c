/*
 * protoc-gen-argot: protoc's plugin that writes argot's typed gRPC code for
 * .proto files, next to protoc-c's message code:
 *
 *   protoc --plugin=protoc-gen-argot=PATH --argot_out=DIR -I... foo/bar.proto
 *
 * gives DIR/foo/bar.argot.h and DIR/foo/bar.argot.c (see
 * tools/protoc_gen/gen.c for what they hold, docs/ARCHITECTURE.md for how
 * to use them). protoc sends a CodeGeneratorRequest on stdin and reads a
 * CodeGeneratorResponse from stdout; a request this plugin cannot handle
 * gets a response whose `error` says why (protoc prints it and fails), so
 * the exit status is non-zero only when stdin or stdout fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protoc_gen/protoc_gen.h"

#define MAX_REQUEST (512u << 20)

static int read_all(FILE *in, pg_buf *b)
{
    uint8_t chunk[64 * 1024];
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), in);
        pg_buf_put(b, chunk, n);
        if (b->failed || b->len > MAX_REQUEST)
            return -1;
        if (n < sizeof(chunk))
            return ferror(in) ? -1 : 0;
    }
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "usage: protoc --plugin=protoc-gen-argot=%s --argot_out=DIR FILE.proto\n",
                argv[0]);
        return 2;
    }
    pg_buf in = {0};
    if (read_all(stdin, &in) < 0) {
        fprintf(stderr, "protoc-gen-argot: cannot read the request from stdin\n");
        pg_buf_free(&in);
        return 1;
    }
    pg_request req;
    pg_output out;
    memset(&out, 0, sizeof(out));
    const char *error = NULL;
    if (pg_request_parse(&req, in.p, in.len) < 0)
        error = req.err;
    else if (pg_generate(&req, &out) < 0)
        error = out.err;
    uint8_t *resp = NULL;
    size_t len = 0;
    int rc = pg_response_encode(&out, error, &resp, &len);
    if (rc == 0 && (fwrite(resp, 1, len, stdout) != len || fflush(stdout) != 0))
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "protoc-gen-argot: cannot write the response\n");
    free(resp);
    pg_output_free(&out);
    pg_request_free(&req);
    pg_buf_free(&in);
    return rc < 0 ? 1 : 0;
}
