/*
 * Fuzz target: the header values gRPC parses from untrusted peers:
 * grpc-timeout, grpc-status, grpc-message (decode, and encode/decode round
 * trip), -bin metadata values, content-type, grpc-encoding and
 * grpc-accept-encoding, metadata key and value checks.
 */
#include <stdlib.h>
#include <string.h>

#include "rpc/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    uint64_t ns;
    if (ag__grpc_timeout_parse(s, size, &ns) == 0) {
        char out[10];
        uint64_t back;
        ag__grpc_timeout_format(ns, out);
        if (ag__grpc_timeout_parse(out, strlen(out), &back) != 0 || back < ns)
            abort();
    }
    int st = ag__grpc_status_parse(s, size);
    if (st < 0 || st > AG_RPC_UNAUTHENTICATED)
        abort();
    ag_buf a, b;
    ag_buf_init(&a, 1 << 20);
    ag_buf_init(&b, 1 << 20);
    if (ag__grpc_message_decode(&a, s, size) == 0 && a.len > size)
        abort();
    ag_buf_reset(&a);
    /* any bytes survive encode then decode */
    if (ag__grpc_message_encode(&a, s, size) == 0) {
        if (!ag__grpc_value_valid((char *)a.data, a.len))
            abort();
        if (ag__grpc_message_decode(&b, (char *)a.data, a.len) != 0 || b.len != size ||
            (size && memcmp(b.data, data, size) != 0))
            abort();
    }
    ag_buf_reset(&a);
    (void)ag__grpc_bin_decode(&a, s, size);
    (void)ag__grpc_content_type_ok(s, size);
    (void)ag__grpc_encoding_parse(s, size);
    (void)ag__grpc_accept_encoding_parse(s, size);
    (void)ag__grpc_key_valid(s, size);
    (void)ag__grpc_key_reserved(s, size);
    (void)ag__grpc_value_valid(s, size);
    ag_buf_cleanup(&a);
    ag_buf_cleanup(&b);
    return 0;
}
