/*
 * Fuzz target: per-message decompression of untrusted bodies. The first
 * byte picks gzip or deflate and the output limit; the output must never
 * pass the limit, and a failure must leave the output as it was.
 */
#include <stdlib.h>
#include <string.h>

#include "rpc/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    ag__grpc_encoding e = (data[0] & 1) ? AG__ENC_GZIP : AG__ENC_DEFLATE;
    size_t max = (size_t)1 << (data[0] >> 4);
    ag_buf out;
    ag_buf_init(&out, 1 << 20);
    if (ag_buf_append(&out, "pre", 3) < 0)
        abort();
    int rc = ag__grpc_decompress(e, data + 1, size - 1, max, &out);
    if (rc == 0 && out.len - 3 > max)
        abort();
    if (rc < 0 && out.len != 3)
        abort();
    if (rc == 0) {
        /* what came out compresses and decompresses back to itself */
        ag_buf c, d;
        ag_buf_init(&c, 4 << 20);
        ag_buf_init(&d, 1 << 20);
        if (ag__grpc_compress(e, out.data + 3, out.len - 3, &c) != 0 ||
            ag__grpc_decompress(e, c.data, c.len, max, &d) != 0 || d.len != out.len - 3 ||
            (d.len && memcmp(d.data, out.data + 3, d.len) != 0))
            abort();
        ag_buf_cleanup(&c);
        ag_buf_cleanup(&d);
    }
    ag_buf_cleanup(&out);
    return 0;
}
