/*
 * Fuzz target: protoc-gen-argot's CodeGeneratorRequest parser
 * (tools/protoc_gen/request.c), then the generator and the response
 * encoder on whatever it accepts. Any input must end in a request or an
 * error message, never a crash, a leak or undefined behaviour.
 */
#include <stdlib.h>
#include <string.h>

#include "protoc_gen/protoc_gen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg_request r;
    pg_output o;
    memset(&o, 0, sizeof(o));
    const char *err = NULL;
    if (pg_request_parse(&r, data, size) < 0)
        err = r.err;
    else if (pg_generate(&r, &o) < 0)
        err = o.err;
    if (err && !err[0])
        abort(); /* a failure always says why */
    uint8_t *resp;
    size_t len;
    if (pg_response_encode(&o, err, &resp, &len) == 0)
        free(resp);
    pg_output_free(&o);
    pg_request_free(&r);
    return 0;
}
