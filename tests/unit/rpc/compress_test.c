/* Tests for src/rpc/compress.c: round trips, corrupt and truncated bodies,
 * trailing garbage, and the bound that stops a decompression bomb. */
#include "rpc/wire.h"
#include "test.h"

TEST(rpc_compress_roundtrip_both_encodings)
{
    uint8_t in[20000];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i % 251 < 200 ? 'a' + i % 7 : i);
    for (int e = AG__ENC_GZIP; e <= AG__ENC_DEFLATE; e++) {
        ag_buf c, d;
        ag_buf_init(&c, 1 << 20);
        ag_buf_init(&d, 1 << 20);
        CHECK_OK(ag__grpc_compress((ag__grpc_encoding)e, in, sizeof(in), &c));
        CHECK(c.len < sizeof(in));
        CHECK_OK(ag__grpc_decompress((ag__grpc_encoding)e, c.data, c.len, sizeof(in), &d));
        CHECK_EQ(d.len, sizeof(in));
        CHECK_MEM_EQ(d.data, in, sizeof(in));
        /* exactly at the limit is fine; one byte under is too large */
        ag_buf_reset(&d);
        CHECK_EQ(ag__grpc_decompress((ag__grpc_encoding)e, c.data, c.len, sizeof(in) - 1, &d),
                 AG_E_TOO_LARGE);
        CHECK_EQ(d.len, 0);
        /* the gzip magic differs from zlib's: the other decoder refuses it */
        ag_buf_reset(&d);
        ag__grpc_encoding other = e == AG__ENC_GZIP ? AG__ENC_DEFLATE : AG__ENC_GZIP;
        CHECK_EQ(ag__grpc_decompress(other, c.data, c.len, sizeof(in), &d), AG_E_RPC_COMPRESSION);
        /* truncated, corrupted, trailing bytes */
        CHECK_EQ(ag__grpc_decompress((ag__grpc_encoding)e, c.data, c.len - 3, sizeof(in), &d),
                 AG_E_RPC_COMPRESSION);
        c.data[c.len / 2] ^= 0x55;
        int rc = ag__grpc_decompress((ag__grpc_encoding)e, c.data, c.len, sizeof(in), &d);
        CHECK(rc == AG_E_RPC_COMPRESSION || rc == AG_E_TOO_LARGE);
        c.data[c.len / 2] ^= 0x55;
        CHECK_OK(ag_buf_append(&c, "junk", 4));
        CHECK_EQ(ag__grpc_decompress((ag__grpc_encoding)e, c.data, c.len, sizeof(in), &d),
                 AG_E_RPC_COMPRESSION);
        CHECK_EQ(d.len, 0); /* a failed decompression leaves nothing behind */
        ag_buf_cleanup(&c);
        ag_buf_cleanup(&d);
    }
}

TEST(rpc_decompress_bomb_is_bounded)
{
    /* 64 MiB of zeros compress to ~64 KiB; the 4 MiB limit stops it early */
    size_t big = 64u << 20;
    uint8_t *zeros = ag_calloc(1, big);
    CHECK(zeros);
    ag_buf c, d;
    ag_buf_init(&c, 1 << 20);
    ag_buf_init(&d, 8u << 20);
    CHECK_OK(ag__grpc_compress(AG__ENC_GZIP, zeros, big, &c));
    ag_free(zeros);
    CHECK(c.len < 100000);
    CHECK_EQ(ag__grpc_decompress(AG__ENC_GZIP, c.data, c.len, AG__GRPC_DEFAULT_MAX_RECV, &d),
             AG_E_TOO_LARGE);
    /* memory stays within the buffer's doubling of the limit, never the 64 MiB */
    CHECK(d.cap <= 2 * (size_t)AG__GRPC_DEFAULT_MAX_RECV + 1);
    ag_buf_cleanup(&c);
    ag_buf_cleanup(&d);
}

TEST(rpc_compress_empty_message)
{
    ag_buf c, d;
    ag_buf_init(&c, 1024);
    ag_buf_init(&d, 1024);
    CHECK_OK(ag__grpc_compress(AG__ENC_DEFLATE, (const uint8_t *)"", 0, &c));
    CHECK_OK(ag__grpc_decompress(AG__ENC_DEFLATE, c.data, c.len, 0, &d));
    CHECK_EQ(d.len, 0);
    CHECK_EQ(ag__grpc_compress(AG__ENC_IDENTITY, (const uint8_t *)"x", 1, &c), AG_E_INVAL);
    ag_buf_cleanup(&c);
    ag_buf_cleanup(&d);
}
