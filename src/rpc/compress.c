/*
 * Per-message compression for gRPC (doc/compression.md): gzip and deflate
 * through zlib, a new context per message as the protocol requires.
 * "deflate" is the zlib format (RFC 1950), as in HTTP.
 *
 * Decompression is bounded: it stops with AG_E_TOO_LARGE as soon as the
 * output would pass the caller's maximum (the channel's or server's maximum
 * receive size), so a few kilobytes of compressed zeros cannot make us
 * allocate gigabytes. Trailing bytes after the end of the compressed stream,
 * or a stream that stops before its end, are corruption.
 */
#include <string.h>
#include <zlib.h>

#include "wire.h"

static int window_bits(ag__grpc_encoding e)
{
    return e == AG__ENC_GZIP ? 15 + 16 : 15;
}

int ag__grpc_compress(ag__grpc_encoding e, const uint8_t *in, size_t len, ag_buf *out)
{
    if (e != AG__ENC_GZIP && e != AG__ENC_DEFLATE)
        return AG_E_INVAL;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits(e), 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return AG_E_NOMEM;
    /* stream out in chunks: deflateBound is pessimistic, and the output's
     * own limit should decide, not a worst case */
    size_t start = out->len;
    int rc = 0, zr = Z_OK;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    while (zr != Z_STREAM_END) {
        size_t chunk = AG_MIN((size_t)deflateBound(&z, z.avail_in), (size_t)64 * 1024);
        rc = ag_buf_reserve(out, chunk);
        if (rc < 0)
            break;
        z.next_out = out->data + out->len;
        z.avail_out = (uInt)chunk;
        zr = deflate(&z, Z_FINISH);
        out->len += chunk - z.avail_out;
        out->data[out->len] = '\0';
        if (zr != Z_OK && zr != Z_STREAM_END) {
            rc = AG_E_RPC_COMPRESSION;
            break;
        }
    }
    if (rc < 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    deflateEnd(&z);
    return rc;
}

/* At max output: the stream must end without producing another byte.
 * Returns 0 at its end, AG_E_TOO_LARGE if more output follows, or
 * AG_E_RPC_COMPRESSION if it is corrupt or cut short. */
static int probe_end(z_stream *z)
{
    for (;;) {
        uint8_t probe;
        z->next_out = &probe;
        z->avail_out = 1;
        int zr = inflate(z, Z_NO_FLUSH);
        if (z->avail_out == 0)
            return AG_E_TOO_LARGE;
        if (zr == Z_STREAM_END)
            return 0;
        if (zr != Z_OK || z->avail_in == 0)
            return AG_E_RPC_COMPRESSION;
    }
}

int ag__grpc_decompress(ag__grpc_encoding e, const uint8_t *in, size_t len, size_t max,
                        ag_buf *out)
{
    if (e != AG__ENC_GZIP && e != AG__ENC_DEFLATE)
        return AG_E_INVAL;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, window_bits(e)) != Z_OK)
        return AG_E_NOMEM;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    size_t start = out->len;
    int rc = 0, zr = Z_OK;
    while (zr != Z_STREAM_END) {
        size_t produced = out->len - start;
        if (produced >= max) {
            rc = probe_end(&z);
            break;
        }
        size_t chunk = AG_MIN(max - produced, (size_t)64 * 1024);
        rc = ag_buf_reserve(out, chunk);
        if (rc < 0)
            break;
        z.next_out = out->data + out->len;
        z.avail_out = (uInt)chunk;
        zr = inflate(&z, Z_NO_FLUSH);
        out->len += chunk - z.avail_out;
        out->data[out->len] = '\0';
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK || (z.avail_in == 0 && z.avail_out > 0)) {
            rc = zr == Z_MEM_ERROR ? AG_E_NOMEM : AG_E_RPC_COMPRESSION; /* corrupt, truncated */
            break;
        }
    }
    if (rc == 0 && z.avail_in != 0)
        rc = AG_E_RPC_COMPRESSION; /* bytes after the end of the stream */
    inflateEnd(&z);
    if (rc < 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}
