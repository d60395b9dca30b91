/* Tests for src/rpc/wire.c: gRPC's framing, grpc-timeout, status and
 * grpc-message, the HTTP and RST_STREAM mappings, metadata and header
 * rules, each against PROTOCOL-HTTP2.md. */
#include "rpc/wire.h"
#include "test.h"

/* Feeds all of in to d in chunks of `step` bytes, collecting messages. */
static int feed_all(ag__deframer *d, const uint8_t *in, size_t n, size_t step, ag_buf *msgs,
                    int *count)
{
    size_t off = 0;
    while (off < n) {
        size_t chunk = AG_MIN(step, n - off);
        ssize_t used = ag__deframer_feed(d, in + off, chunk);
        if (used < 0)
            return (int)used;
        off += (size_t)used;
        if (ag__deframer_ready(d)) {
            size_t len;
            bool comp;
            uint8_t *m = ag__deframer_take(d, &len, &comp);
            CHECK_OK(ag_buf_printf(msgs, "[%zu:%.*s]", len, (int)len, m ? (char *)m : ""));
            ag_free(m);
            (*count)++;
        }
    }
    return ag__deframer_finish(d);
}

TEST(rpc_deframer_any_chunking)
{
    uint8_t in[64];
    size_t n = 0;
    const char *msgs[] = {"hello", "", "gRPC over HTTP/2"};
    for (size_t i = 0; i < 3; i++) {
        size_t l = strlen(msgs[i]);
        ag__grpc_prefix(in + n, false, (uint32_t)l);
        memcpy(in + n + 5, msgs[i], l);
        n += 5 + l;
    }
    for (size_t step = 1; step <= n; step++) {
        ag__deframer d;
        ag__deframer_init(&d, 1024, false);
        ag_buf out;
        ag_buf_init(&out, 1024);
        int count = 0;
        CHECK_OK(feed_all(&d, in, n, step, &out, &count));
        CHECK_EQ(count, 3);
        CHECK_STR_EQ((char *)out.data, "[5:hello][0:][16:gRPC over HTTP/2]");
        ag_buf_cleanup(&out);
        ag__deframer_cleanup(&d);
    }
}

TEST(rpc_deframer_refuses_4gb_before_buffering)
{
    ag__deframer d;
    ag__deframer_init(&d, AG__GRPC_DEFAULT_MAX_RECV, false);
    uint8_t p[5];
    ag__grpc_prefix(p, false, 0xffffffffu);
    CHECK_EQ(ag__deframer_feed(&d, p, 5), AG_E_TOO_LARGE);
    CHECK_EQ(d.status, AG_RPC_RESOURCE_EXHAUSTED);
    CHECK_STR_EQ(d.err.msg, "received message larger than max (4294967295 vs. 4194304)");
    CHECK(d.body.cap == 0); /* nothing was allocated for it */
    CHECK_EQ(ag__deframer_feed(&d, p, 5), AG_E_TOO_LARGE); /* sticky */
    ag__deframer_cleanup(&d);
}

TEST(rpc_deframer_bad_flags_and_truncation)
{
    ag__deframer d;
    uint8_t p[8];
    ag__grpc_prefix(p, true, 3);
    ag__deframer_init(&d, 100, false);
    CHECK_EQ(ag__deframer_feed(&d, p, 5), AG_E_RPC_PROTOCOL);
    CHECK_EQ(d.status, AG_RPC_INTERNAL);
    CHECK_STR_EQ(d.err.msg, "compressed message on a stream without grpc-encoding");
    ag__deframer_cleanup(&d);

    ag__deframer_init(&d, 100, true); /* with an encoding it is fine */
    memcpy(p + 5, "abc", 3);
    CHECK_EQ(ag__deframer_feed(&d, p, 8), 8);
    CHECK(ag__deframer_ready(&d));
    size_t len;
    bool comp;
    uint8_t *m = ag__deframer_take(&d, &len, &comp);
    CHECK(comp && len == 3);
    ag_free(m);
    p[0] = 7;
    CHECK_EQ(ag__deframer_feed(&d, p, 5), AG_E_RPC_PROTOCOL);
    CHECK_STR_EQ(d.err.msg, "message prefix has compressed flag 7 (must be 0 or 1)");
    ag__deframer_cleanup(&d);

    ag__deframer_init(&d, 100, false);
    ag__grpc_prefix(p, false, 10);
    CHECK_EQ(ag__deframer_feed(&d, p, 8), 8);
    CHECK_EQ(ag__deframer_finish(&d), AG_E_RPC_PROTOCOL);
    CHECK_STR_EQ(d.err.msg, "stream ended inside a message (3 of 10 bytes)");
    ag__deframer_cleanup(&d);

    ag__deframer_init(&d, 100, false);
    CHECK_EQ(ag__deframer_feed(&d, p, 2), 2);
    CHECK_EQ(ag__deframer_finish(&d), AG_E_RPC_PROTOCOL);
    CHECK_STR_EQ(d.err.msg, "stream ended inside a message prefix (2 of 5 bytes)");
    ag__deframer_cleanup(&d);
}

TEST_FM(rpc_deframer_failmalloc)
{
    uint8_t in[5 + 300];
    ag__grpc_prefix(in, false, 300);
    memset(in + 5, 'x', 300);
    ag__deframer d;
    ag__deframer_init(&d, 1000, false);
    uint8_t *m = NULL;
    ssize_t used = ag__deframer_feed(&d, in, sizeof(in));
    if (used == AG_E_NOMEM && ag_alloc_failed())
        goto out;
    CHECK_EQ(used, (ssize_t)sizeof(in));
    size_t len;
    bool comp;
    m = ag__deframer_take(&d, &len, &comp);
    CHECK_EQ(len, 300);
out:
    ag_free(m);
    ag__deframer_cleanup(&d);
}

TEST(rpc_timeout_parse_and_format)
{
    uint64_t ns;
    CHECK_OK(ag__grpc_timeout_parse("1S", 2, &ns));
    CHECK_U64_EQ(ns, 1000000000u);
    CHECK_OK(ag__grpc_timeout_parse("250m", 4, &ns));
    CHECK_U64_EQ(ns, 250000000u);
    CHECK_OK(ag__grpc_timeout_parse("99999999H", 9, &ns));
    CHECK_U64_EQ(ns, UINT64_MAX); /* saturates */
    CHECK_OK(ag__grpc_timeout_parse("7n", 2, &ns));
    CHECK_U64_EQ(ns, 7);
    static const char *const bad[] = {"", "S", "1", "1s", "123456789S", "-1S", "1.5S", " 1S",
                                      "1 S", "0x1S"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++)
        CHECK_EQ(ag__grpc_timeout_parse(bad[i], strlen(bad[i]), &ns), AG_E_INVAL);
    char out[10];
    ag__grpc_timeout_format(1, out);
    CHECK_STR_EQ(out, "1n");
    ag__grpc_timeout_format(99999999, out);
    CHECK_STR_EQ(out, "99999999n");
    ag__grpc_timeout_format(100000001, out); /* rounds up, never shortens */
    CHECK_STR_EQ(out, "100001u");
    ag__grpc_timeout_format(60000000000ull, out);
    CHECK_STR_EQ(out, "60000000u");
    ag__grpc_timeout_format(UINT64_MAX, out);
    CHECK_STR_EQ(out, "5124096H");
    /* every format parses back to at least the original */
    for (uint64_t v = 1; v < UINT64_MAX / 3; v = v * 3 + 1) {
        ag__grpc_timeout_format(v, out);
        CHECK_OK(ag__grpc_timeout_parse(out, strlen(out), &ns));
        CHECK(ns >= v);
    }
}

TEST(rpc_status_and_message)
{
    CHECK_EQ(ag__grpc_status_parse("0", 1), AG_RPC_OK);
    CHECK_EQ(ag__grpc_status_parse("16", 2), AG_RPC_UNAUTHENTICATED);
    CHECK_EQ(ag__grpc_status_parse("17", 2), AG_RPC_UNKNOWN);
    CHECK_EQ(ag__grpc_status_parse("05", 2), AG_RPC_UNKNOWN);
    CHECK_EQ(ag__grpc_status_parse("", 0), AG_RPC_UNKNOWN);
    CHECK_EQ(ag__grpc_status_parse("x", 1), AG_RPC_UNKNOWN);
    CHECK_STR_EQ(ag_rpc_status_name(AG_RPC_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
    CHECK_STR_EQ(ag_rpc_status_name(99), "UNKNOWN");

    /* the interop special_status_message text */
    const char *msg = "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP "
                      "\xf0\x9f\x98\x88\t\n";
    ag_buf e, d;
    ag_buf_init(&e, 4096);
    ag_buf_init(&d, 4096);
    CHECK_OK(ag__grpc_message_encode(&e, msg, strlen(msg)));
    CHECK_STR_EQ((char *)e.data, "%09%0Atest with whitespace%0D%0Aand Unicode BMP %E2%98%BA "
                                 "and non-BMP %F0%9F%98%88%09%0A");
    CHECK_OK(ag__grpc_message_decode(&d, (char *)e.data, e.len));
    CHECK_STR_EQ((char *)d.data, msg);
    ag_buf_reset(&e);
    CHECK_OK(ag__grpc_message_encode(&e, "100%", 4));
    CHECK_STR_EQ((char *)e.data, "100%25");
    /* broken encodings are kept, never an error */
    ag_buf_reset(&d);
    CHECK_OK(ag__grpc_message_decode(&d, "a%zzb%4%41%", 11));
    CHECK_STR_EQ((char *)d.data, "a%zzb%4A%");
    ag_buf_cleanup(&e);
    ag_buf_cleanup(&d);
}

TEST(rpc_http_and_rst_mappings)
{
    CHECK_EQ(ag__grpc_status_from_http(400), AG_RPC_INTERNAL);
    CHECK_EQ(ag__grpc_status_from_http(401), AG_RPC_UNAUTHENTICATED);
    CHECK_EQ(ag__grpc_status_from_http(403), AG_RPC_PERMISSION_DENIED);
    CHECK_EQ(ag__grpc_status_from_http(404), AG_RPC_UNIMPLEMENTED);
    CHECK_EQ(ag__grpc_status_from_http(429), AG_RPC_UNAVAILABLE);
    CHECK_EQ(ag__grpc_status_from_http(502), AG_RPC_UNAVAILABLE);
    CHECK_EQ(ag__grpc_status_from_http(503), AG_RPC_UNAVAILABLE);
    CHECK_EQ(ag__grpc_status_from_http(504), AG_RPC_UNAVAILABLE);
    CHECK_EQ(ag__grpc_status_from_http(500), AG_RPC_UNKNOWN);
    CHECK_EQ(ag__grpc_status_from_http(418), AG_RPC_UNKNOWN);
    CHECK_EQ(ag__grpc_status_from_rst(0), AG_RPC_INTERNAL);
    CHECK_EQ(ag__grpc_status_from_rst(1), AG_RPC_INTERNAL);
    CHECK_EQ(ag__grpc_status_from_rst(7), AG_RPC_UNAVAILABLE);
    CHECK_EQ(ag__grpc_status_from_rst(8), AG_RPC_CANCELLED);
    CHECK_EQ(ag__grpc_status_from_rst(11), AG_RPC_RESOURCE_EXHAUSTED);
    CHECK_EQ(ag__grpc_status_from_rst(12), AG_RPC_PERMISSION_DENIED);
    CHECK_EQ(ag__grpc_status_from_rst(0x99), AG_RPC_INTERNAL);
}

TEST(rpc_metadata_rules)
{
    CHECK(ag__grpc_key_valid("x-user_id.v2", 12));
    CHECK(!ag__grpc_key_valid("X-User", 6));
    CHECK(!ag__grpc_key_valid("", 0));
    CHECK(!ag__grpc_key_valid("a b", 3));
    CHECK(ag__grpc_key_is_bin("trace-proto-bin", 15));
    CHECK(!ag__grpc_key_is_bin("bin", 3));
    CHECK(ag__grpc_key_reserved("grpc-timeout", 12));
    CHECK(ag__grpc_key_reserved(":path", 5));
    CHECK(ag__grpc_key_reserved("te", 2));
    CHECK(ag__grpc_key_reserved("content-type", 12));
    CHECK(!ag__grpc_key_reserved("authorization", 13));
    CHECK(ag__grpc_value_valid("Bearer y235.wef315", 18));
    CHECK(!ag__grpc_value_valid("a\nb", 3));
    CHECK(!ag__grpc_value_valid("\xc3\xa9", 2));

    ag_buf b;
    ag_buf_init(&b, 1024);
    CHECK_OK(ag__grpc_bin_decode(&b, "AAEC", 4)); /* unpadded, as gRPC emits */
    CHECK_EQ(b.len, 3);
    CHECK_MEM_EQ(b.data, "\x00\x01\x02", 3);
    ag_buf_reset(&b);
    CHECK_OK(ag__grpc_bin_decode(&b, "q80=, q80", 9)); /* joined duplicates, padded or not */
    CHECK_EQ(b.len, 4);
    CHECK_MEM_EQ(b.data, "\xab\xcd\xab\xcd", 4);
    ag_buf_reset(&b);
    CHECK_EQ(ag__grpc_bin_decode(&b, "q8*=", 4), AG_E_ENCODING);
    ag_buf_cleanup(&b);
}

TEST(rpc_content_type_and_encodings)
{
    CHECK(ag__grpc_content_type_ok("application/grpc", 16));
    CHECK(ag__grpc_content_type_ok("application/grpc+proto", 22));
    CHECK(ag__grpc_content_type_ok("application/grpc;charset=utf-8", 30));
    CHECK(!ag__grpc_content_type_ok("application/grpcx", 17));
    CHECK(!ag__grpc_content_type_ok("application/json", 16));
    CHECK(!ag__grpc_content_type_ok("", 0));
    CHECK_EQ(ag__grpc_encoding_parse("gzip", 4), AG__ENC_GZIP);
    CHECK_EQ(ag__grpc_encoding_parse("deflate", 7), AG__ENC_DEFLATE);
    CHECK_EQ(ag__grpc_encoding_parse("identity", 8), AG__ENC_IDENTITY);
    CHECK_EQ(ag__grpc_encoding_parse("snappy", 6), AG__ENC_UNKNOWN);
    CHECK_EQ(ag__grpc_encoding_parse("GZIP", 4), AG__ENC_UNKNOWN);
    CHECK_STR_EQ(ag__grpc_encoding_name(AG__ENC_DEFLATE), "deflate");
    const char *acc = "identity, deflate ,snappy,gzip";
    CHECK_EQ(ag__grpc_accept_encoding_parse(acc, strlen(acc)), 0x7);
    CHECK_EQ(ag__grpc_accept_encoding_parse("", 0), 0x1);
}
