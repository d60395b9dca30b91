/*
 * Tests for src/rpc/h2.c: a client connection core and a server connection
 * core wired back to back in memory (what one writes, the other reads), so
 * whole gRPC exchanges run with no socket: unary and streaming calls,
 * metadata and trailers both ways, status and messages, trailers-only
 * errors, size limits, compression, cancellation, GOAWAY, and a peer that
 * speaks HTTP/2 but not gRPC.
 */
#include <nghttp2/nghttp2.h>

#include "rpc/h2.h"
#include "test.h"

struct side {
    ag__h2conn *conn;
    bool server;
    /* what happened */
    int begun, messages, half_closed, headers, done;
    int status;
    char msg[256];
    ag_buf got;             /* messages received, concatenated with '|' */
    ag__md_list seen_md;    /* server: request md; client: response headers */
    ag__md_list seen_trl;   /* client: trailers */
    uint64_t timeout_ns;
    /* server behaviour */
    int stream_replies;     /* messages to send at half-close */
    size_t reply_size;      /* 0: echo */
    bool compress;
    ag__h2call *last;
};

static void copy_md(ag__md_list *dst, const ag__md_list *src)
{
    for (size_t i = 0; i < src->n; i++)
        CHECK_OK(ag__md_add(dst, src->v[i].key, strlen(src->v[i].key), src->v[i].value,
                            src->v[i].len));
}

static int ev_begin(void *ud, ag__h2call *c)
{
    struct side *s = ud;
    s->begun++;
    s->last = c;
    s->timeout_ns = ag__h2call_timeout_ns(c);
    copy_md(&s->seen_md, ag__h2call_md(c));
    if (strcmp(ag__h2call_method(c), "/test.Echo/Missing") == 0)
        return AG_RPC_UNIMPLEMENTED;
    if (strcmp(ag__h2call_method(c), "/test.Echo/Deny") == 0) {
        ag__h2call_finish(c, AG_RPC_PERMISSION_DENIED, "party carol may not call this", NULL);
        return AG_RPC_PERMISSION_DENIED;
    }
    return 0;
}

static void ev_message(void *ud, ag__h2call *c, uint8_t *m, size_t len)
{
    struct side *s = ud;
    s->messages++;
    CHECK_OK(ag_buf_printf(&s->got, "%s%zu", s->got.len ? "|" : "", len));
    if (s->server && strcmp(ag__h2call_method(c), "/test.Echo/Echo") == 0 &&
        s->stream_replies == 0)
        CHECK_OK(ag__h2call_send(c, m, len, s->compress)); /* server echo, bidi style */
    ag_free(m);
}

static void ev_half_close(void *ud, ag__h2call *c)
{
    struct side *s = ud;
    s->half_closed++;
    if (strcmp(ag__h2call_method(c), "/test.Echo/Hang") == 0)
        return; /* never answers: for deadlines and cancels */
    for (int i = 0; i < s->stream_replies; i++) {
        uint8_t *b = ag_calloc(1, s->reply_size + 1);
        CHECK(b);
        memset(b, 'a' + i % 26, s->reply_size);
        CHECK_OK(ag__h2call_send(c, b, s->reply_size, s->compress));
        ag_free(b);
    }
    ag__md_list t = {0};
    CHECK_OK(ag__md_add(&t, "x-trailer", 9, "t1", 2));
    CHECK_OK(ag__md_add(&t, "x-raw-bin", 9, "\x00\xff\x10", 3));
    CHECK_OK(ag__h2call_finish(c, AG_RPC_OK, NULL, &t));
    ag__md_free(&t);
}

static void ev_headers(void *ud, ag__h2call *c)
{
    struct side *s = ud;
    s->headers++;
    copy_md(&s->seen_md, ag__h2call_md(c));
}

static void ev_done(void *ud, ag__h2call *c, int status, const char *msg)
{
    struct side *s = ud;
    s->done++;
    s->status = status;
    snprintf(s->msg, sizeof(s->msg), "%s", msg);
    copy_md(&s->seen_trl, ag__h2call_trailers(c));
}

static const ag__h2_events events = {ev_begin, ev_message, ev_half_close, ev_headers, ev_done};

static void side_init(struct side *s, bool server, const ag__h2_opts *o)
{
    memset(s, 0, sizeof(*s));
    s->server = server;
    ag_buf_init(&s->got, 1 << 20);
    s->conn = ag__h2conn_new(server, o, &events, s);
    CHECK(s->conn);
    s->status = -1;
}

static void side_cleanup(struct side *s)
{
    ag__h2conn_free(s->conn);
    ag_buf_cleanup(&s->got);
    ag__md_free(&s->seen_md);
    ag__md_free(&s->seen_trl);
}

/* Moves bytes both ways until neither side has anything to say. Returns
 * the total moved. */
static size_t pump(struct side *cl, struct side *sv)
{
    size_t total = 0;
    for (int round = 0; round < 100000; round++) {
        ag_buf b;
        ag_buf_init(&b, 64u << 20);
        CHECK_OK(ag__h2conn_send(cl->conn, &b, 0));
        size_t moved = b.len;
        if (b.len)
            CHECK_OK(ag__h2conn_recv(sv->conn, b.data, b.len));
        ag_buf_reset(&b);
        CHECK_OK(ag__h2conn_send(sv->conn, &b, 0));
        moved += b.len;
        if (b.len)
            CHECK_OK(ag__h2conn_recv(cl->conn, b.data, b.len));
        ag_buf_cleanup(&b);
        total += moved;
        if (moved == 0)
            return total;
    }
    FAIL("pump: the connections never went quiet");
}

TEST(rpc_h2_unary_with_metadata_and_trailers)
{
    struct side cl, sv;
    side_init(&cl, false, NULL);
    side_init(&sv, true, NULL);
    ag__md_list md = {0};
    CHECK_OK(ag__md_add(&md, "x-party", 7, "alice", 5));
    CHECK_OK(ag__md_add(&md, "x-token-bin", 11, "\x01\x02\x03\x04", 4));
    ag__h2call *c = ag__h2conn_call_start(cl.conn, "/test.Echo/Echo", 1500000000ull, &md,
                                          AG__ENC_IDENTITY);
    CHECK(c);
    CHECK_OK(ag__h2call_send(c, "hello", 5, false));
    CHECK_OK(ag__h2call_close_send(c));
    pump(&cl, &sv);
    CHECK_EQ(sv.begun, 1);
    CHECK_U64_EQ(sv.timeout_ns, 1500000000ull); /* "1500000u" on the wire, exact */
    const ag__md *party = ag__md_get(&sv.seen_md, "x-party");
    CHECK(party && party->len == 5 && memcmp(party->value, "alice", 5) == 0);
    const ag__md *tok = ag__md_get(&sv.seen_md, "x-token-bin");
    CHECK(tok && tok->len == 4 && memcmp(tok->value, "\x01\x02\x03\x04", 4) == 0);
    CHECK(!ag__md_get(&sv.seen_md, "te") && !ag__md_get(&sv.seen_md, "user-agent"));
    CHECK_STR_EQ((char *)sv.got.data, "5");
    CHECK_EQ(sv.half_closed, 1);
    CHECK_EQ(cl.headers, 1);
    CHECK_STR_EQ((char *)cl.got.data, "5"); /* the echo */
    CHECK_EQ(cl.done, 1);
    CHECK_EQ(cl.status, AG_RPC_OK);
    const ag__md *tr = ag__md_get(&cl.seen_trl, "x-trailer");
    CHECK(tr && tr->len == 2 && memcmp(tr->value, "t1", 2) == 0);
    const ag__md *rb = ag__md_get(&cl.seen_trl, "x-raw-bin");
    CHECK(rb && rb->len == 3 && memcmp(rb->value, "\x00\xff\x10", 3) == 0);
    CHECK_EQ(sv.done, 1);
    CHECK_EQ(sv.status, AG_RPC_OK);
    CHECK_EQ(ag__h2conn_ncalls(cl.conn), 0);
    CHECK_EQ(ag__h2conn_ncalls(sv.conn), 0);
    ag__md_free(&md);
    side_cleanup(&cl);
    side_cleanup(&sv);
}

TEST(rpc_h2_streaming_both_ways_and_many_calls)
{
    struct side cl, sv;
    side_init(&cl, false, NULL);
    side_init(&sv, true, NULL);
    sv.stream_replies = 50;
    sv.reply_size = 1000;
    ag__h2call *calls[10];
    for (int i = 0; i < 10; i++) {
        calls[i] = ag__h2conn_call_start(cl.conn, "/test.Echo/Stream", UINT64_MAX, NULL,
                                         AG__ENC_IDENTITY);
        CHECK(calls[i]);
        for (int k = 0; k < 20; k++)
            CHECK_OK(ag__h2call_send(calls[i], "0123456789", (size_t)k % 11, false));
        CHECK_OK(ag__h2call_close_send(calls[i]));
    }
    pump(&cl, &sv);
    CHECK_EQ(sv.begun, 10);
    CHECK_EQ(sv.messages, 200);
    CHECK_EQ(cl.messages, 500);
    CHECK_EQ(cl.done, 10);
    CHECK_EQ(cl.status, AG_RPC_OK);
    side_cleanup(&cl);
    side_cleanup(&sv);
}

TEST(rpc_h2_large_message_flows_through_windows)
{
    struct side cl, sv;
    side_init(&cl, false, NULL);
    side_init(&sv, true, NULL);
    size_t big = 3u << 20; /* 3 MiB: three stream windows */
    uint8_t *m = ag_malloc(big);
    CHECK(m);
    for (size_t i = 0; i < big; i++)
        m[i] = (uint8_t)(i * 7);
    ag__h2call *c = ag__h2conn_call_start(cl.conn, "/test.Echo/Echo", UINT64_MAX, NULL,
                                          AG__ENC_IDENTITY);
    CHECK_OK(ag__h2call_send(c, m, big, false));
    CHECK_OK(ag__h2call_close_send(c));
    pump(&cl, &sv);
    CHECK_STR_EQ((char *)sv.got.data, "3145728");
    CHECK_STR_EQ((char *)cl.got.data, "3145728");
    CHECK_EQ(cl.status, AG_RPC_OK);
    ag_free(m);
    side_cleanup(&cl);
    side_cleanup(&sv);
}

TEST(rpc_h2_compressed_messages_both_ways)
{
    for (int e = AG__ENC_GZIP; e <= AG__ENC_DEFLATE; e++) {
        struct side cl, sv;
        side_init(&cl, false, NULL);
        side_init(&sv, true, NULL);
        sv.compress = true; /* the server answers compressed only if its call has an encoding */
        uint8_t m[5000];
        memset(m, 'z', sizeof(m));
        ag__h2call *c = ag__h2conn_call_start(cl.conn, "/test.Echo/Echo", UINT64_MAX, NULL,
                                              (ag__grpc_encoding)e);
        CHECK_OK(ag__h2call_send(c, m, sizeof(m), true));
        CHECK_OK(ag__h2call_close_send(c));
        size_t moved = pump(&cl, &sv);
        CHECK(moved < 5000 + 1000 + 5000); /* the request went compressed */
        CHECK_STR_EQ((char *)sv.got.data, "5000");
        CHECK_STR_EQ((char *)cl.got.data, "5000");
        CHECK_EQ(cl.status, AG_RPC_OK);
        side_cleanup(&cl);
        side_cleanup(&sv);
    }
}

TEST(rpc_h2_refusals_are_trailers_only)
{
    struct side cl, sv;
    side_init(&cl, false, NULL);
    side_init(&sv, true, NULL);
    ag__h2call *c = ag__h2conn_call_start(cl.conn, "/test.Echo/Missing", UINT64_MAX, NULL,
                                          AG__ENC_IDENTITY);
    CHECK_OK(ag__h2call_close_send(c));
    pump(&cl, &sv);
    CHECK_EQ(cl.status, AG_RPC_UNIMPLEMENTED);
    CHECK_STR_EQ(cl.msg, "unknown method");
    CHECK_EQ(cl.headers, 0); /* trailers-only */

    c = ag__h2conn_call_start(cl.conn, "/test.Echo/Deny", UINT64_MAX, NULL, AG__ENC_IDENTITY);
    CHECK_OK(ag__h2call_send(c, "x", 1, false));
    CHECK_OK(ag__h2call_close_send(c));
    pump(&cl, &sv);
    CHECK_EQ(cl.status, AG_RPC_PERMISSION_DENIED);
    CHECK_STR_EQ(cl.msg, "party carol may not call this");
    CHECK_EQ(sv.messages, 0); /* a refused call's messages are dropped */
    CHECK_EQ(ag__h2conn_ncalls(sv.conn), 0);
    side_cleanup(&cl);
    side_cleanup(&sv);
}

TEST(rpc_h2_message_over_limit)
{
    struct side cl, sv;
    ag__h2_opts o;
    ag__h2_opts_init(&o);
    o.max_recv_msg = 1000;
    side_init(&cl, false, &o);
    side_init(&sv, true, &o);
    uint8_t m[1001] = {0};
    /* client to server: the server ends the call */
    ag__h2call *c = ag__h2conn_call_start(cl.conn, "/test.Echo/Echo", UINT64_MAX, NULL,
                                          AG__ENC_IDENTITY);
    CHECK_OK(ag__h2call_send(c, m, sizeof(m), false));
    pump(&cl, &sv);
    CHECK_EQ(cl.status, AG_RPC_RESOURCE_EXHAUSTED);
    CHECK_STR_EQ(cl.msg, "received message larger than max (1001 vs. 1000)");
    /* server to client: the client gives up on the call */
    sv.stream_replies = 1;
    sv.reply_size = 2000;
    c = ag__h2conn_call_start(cl.conn, "/test.Echo/Stream", UINT64_MAX, NULL, AG__ENC_IDENTITY);
    CHECK_OK(ag__h2call_close_send(c));
    pump(&cl, &sv);
    CHECK_EQ(cl.status, AG_RPC_RESOURCE_EXHAUSTED);
    CHECK_STR_EQ(cl.msg, "received message larger than max (2000 vs. 1000)");
    CHECK_EQ(sv.done, 2); /* the server had finished before the client gave up */
    CHECK_EQ(ag__h2conn_ncalls(cl.conn) + ag__h2conn_ncalls(sv.conn), 0);
    side_cleanup(&cl);
    side_cleanup(&sv);
}

TEST(rpc_h2_cancel_and_deadline)
{
    struct side cl, sv;
    side_init(&cl, false, NULL);
    side_init(&sv, true, NULL);
    ag__h2call *c = ag__h2conn_call_start(cl.conn, "/test.Echo/Hang", 50000000ull, NULL,
                                          AG__ENC_IDENTITY);
    CHECK_OK(ag__h2call_close_send(c));
    pump(&cl, &sv);
    CHECK_EQ(sv.half_closed, 1);
    CHECK_EQ(cl.done, 0);
    /* the owner's timer fires: the client gives up with DEADLINE_EXCEEDED */
    CHECK_OK(ag__h2call_cancel(c, AG_RPC_DEADLINE_EXCEEDED, "deadline exceeded after 50 ms"));
    pump(&cl, &sv);
    CHECK_EQ(cl.status, AG_RPC_DEADLINE_EXCEEDED);
    CHECK_STR_EQ(cl.msg, "deadline exceeded after 50 ms");
    CHECK_EQ(sv.status, AG_RPC_CANCELLED);
    CHECK_STR_EQ(sv.msg, "the client cancelled the call");
    side_cleanup(&cl);
    side_cleanup(&sv);
}

TEST(rpc_h2_goaway_refuses_new_calls)
{
    struct side cl, sv;
    side_init(&cl, false, NULL);
    side_init(&sv, true, NULL);
    ag__h2call *a = ag__h2conn_call_start(cl.conn, "/test.Echo/Hang", UINT64_MAX, NULL,
                                          AG__ENC_IDENTITY);
    CHECK_OK(ag__h2call_close_send(a));
    pump(&cl, &sv);
    CHECK_OK(ag__h2conn_goaway(sv.conn));
    pump(&cl, &sv);
    ag__h2call *b = ag__h2conn_call_start(cl.conn, "/test.Echo/Echo", UINT64_MAX, NULL,
                                          AG__ENC_IDENTITY);
    CHECK(b != NULL); /* accepted locally; refused when nghttp2 tries to send it */
    CHECK_OK(ag__h2call_close_send(b));
    pump(&cl, &sv);
    CHECK_EQ(cl.done, 1);
    CHECK_EQ(cl.status, AG_RPC_UNAVAILABLE);
    CHECK_STR_EQ(cl.msg, "the server is shutting down this connection (GOAWAY)");
    CHECK_EQ(sv.begun, 1);
    /* the call in flight goes on */
    CHECK_OK(ag__h2call_finish(sv.last, AG_RPC_OK, "late but fine", NULL));
    pump(&cl, &sv);
    CHECK_EQ(cl.done, 2);
    CHECK_EQ(cl.status, AG_RPC_OK);
    CHECK_STR_EQ(cl.msg, "late but fine");
    side_cleanup(&cl);
    side_cleanup(&sv);
}

/* ---- a raw HTTP/2 client, to send what a gRPC client never would ---------- */

struct raw {
    nghttp2_session *s;
    char status[8];
    char grpc_status[8];
    char grpc_message[256];
    bool closed;
};

static int raw_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *k, size_t kl,
                      const uint8_t *v, size_t vl, uint8_t fl, void *ud)
{
    (void)s;
    (void)f;
    (void)fl;
    struct raw *r = ud;
    char *dst = kl == 7 && !memcmp(k, ":status", 7)        ? r->status
                : kl == 11 && !memcmp(k, "grpc-status", 11) ? r->grpc_status
                : kl == 12 && !memcmp(k, "grpc-message", 12) ? r->grpc_message
                                                             : NULL;
    size_t cap = dst == r->grpc_message ? sizeof(r->grpc_message) : sizeof(r->status);
    if (dst)
        snprintf(dst, cap, "%.*s", (int)vl, (const char *)v);
    return 0;
}

static int raw_close(nghttp2_session *s, int32_t id, uint32_t e, void *ud)
{
    (void)s;
    (void)id;
    (void)e;
    ((struct raw *)ud)->closed = true;
    return 0;
}

struct raw_body {
    const uint8_t *p;
    size_t len, off;
};

static ssize_t raw_body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                             uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    struct raw_body *b = src->ptr;
    size_t n = AG_MIN(len, b->len - b->off);
    memcpy(buf, b->p + b->off, n);
    b->off += n;
    if (b->off == b->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* Sends one request with the given headers (and a body, if any) to a server
 * core and collects the response's status fields. */
static void raw_request_body(struct raw *r, struct side *sv, const nghttp2_nv *nv, size_t n,
                             const void *body, size_t body_len);

static void raw_request(struct raw *r, struct side *sv, const nghttp2_nv *nv, size_t n,
                        const char *body)
{
    raw_request_body(r, sv, nv, n, body, body ? strlen(body) : 0);
}

static void raw_request_body(struct raw *r, struct side *sv, const nghttp2_nv *nv, size_t n,
                             const void *body, size_t body_len)
{
    memset(r, 0, sizeof(*r));
    nghttp2_session_callbacks *cb;
    CHECK_EQ(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, raw_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, raw_close);
    CHECK_EQ(nghttp2_session_client_new(&r->s, cb, r), 0);
    nghttp2_session_callbacks_del(cb);
    CHECK_EQ(nghttp2_submit_settings(r->s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    struct raw_body rb = {body, body_len, 0};
    nghttp2_data_provider prd = {.source.ptr = &rb, .read_callback = raw_body_read};
    CHECK(nghttp2_submit_request(r->s, NULL, nv, n, body ? &prd : NULL, NULL) > 0);
    for (int i = 0; i < 100 && !r->closed; i++) {
        const uint8_t *p;
        ssize_t k;
        while ((k = nghttp2_session_mem_send(r->s, &p)) > 0)
            CHECK_OK(ag__h2conn_recv(sv->conn, p, (size_t)k));
        ag_buf b;
        ag_buf_init(&b, 1 << 20);
        CHECK_OK(ag__h2conn_send(sv->conn, &b, 0));
        if (b.len)
            CHECK(nghttp2_session_mem_recv(r->s, b.data, b.len) == (ssize_t)b.len);
        ag_buf_cleanup(&b);
    }
    CHECK(r->closed);
    nghttp2_session_del(r->s);
}

#define NV(k, v) {(uint8_t *)(k), (uint8_t *)(v), sizeof(k) - 1, sizeof(v) - 1, 0}

TEST(rpc_h2_bad_requests_get_grpc_statuses)
{
    static const struct {
        nghttp2_nv extra[2];
        size_t nextra;
        const char *ctype, *method, *http, *grpc_status, *grpc_message;
    } cases[] = {
        {{NV("x", "y")}, 0, "application/json", "POST", "415", "2",
         "content-type is not application/grpc"},
        {{NV("x", "y")}, 0, "application/grpc", "GET", "405", "2", "gRPC requires method POST"},
        {{NV("grpc-timeout", "12x")}, 1, "application/grpc", "POST", "200", "13",
         "malformed grpc-timeout '12x'"},
        {{NV("grpc-timeout", "123456789S")}, 1, "application/grpc", "POST", "200", "13",
         "malformed grpc-timeout '123456789S'"},
        {{NV("grpc-encoding", "snappy")}, 1, "application/grpc", "POST", "200", "12",
         "grpc-encoding 'snappy' is not supported"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        struct side sv;
        side_init(&sv, true, NULL);
        nghttp2_nv nv[8] = {NV(":scheme", "http"), NV(":path", "/test.Echo/Echo"),
                            NV(":authority", "x")};
        size_t n = 3;
        nv[n++] = (nghttp2_nv){(uint8_t *)":method", (uint8_t *)cases[i].method, 7,
                               strlen(cases[i].method), 0};
        nv[n++] = (nghttp2_nv){(uint8_t *)"content-type", (uint8_t *)cases[i].ctype, 12,
                               strlen(cases[i].ctype), 0};
        for (size_t k = 0; k < cases[i].nextra; k++)
            nv[n++] = cases[i].extra[k];
        struct raw r;
        raw_request(&r, &sv, nv, n, NULL);
        CHECK_STR_EQ(r.status, cases[i].http);
        CHECK_STR_EQ(r.grpc_status, cases[i].grpc_status);
        CHECK_STR_EQ(r.grpc_message, cases[i].grpc_message);
        CHECK_EQ(sv.begun, 0); /* the application never saw it */
        CHECK_EQ(ag__h2conn_ncalls(sv.conn), 0);
        side_cleanup(&sv);
    }
}

TEST(rpc_h2_header_list_over_limit)
{
    struct side sv;
    ag__h2_opts o;
    ag__h2_opts_init(&o);
    o.max_header_list = 1024;
    side_init(&sv, true, &o);
    static char big[2000];
    memset(big, 'v', sizeof(big) - 1);
    nghttp2_nv nv[] = {NV(":scheme", "http"), NV(":path", "/test.Echo/Echo"),
                       NV(":authority", "x"), NV(":method", "POST"),
                       NV("content-type", "application/grpc"),
                       {(uint8_t *)"x-big", (uint8_t *)big, 5, sizeof(big) - 1, 0}};
    struct raw r;
    raw_request(&r, &sv, nv, AG_ARRAY_LEN(nv), NULL);
    CHECK_STR_EQ(r.grpc_status, "8");
    CHECK_CONTAINS(r.grpc_message, "exceeds the limit of 1024");
    CHECK_EQ(sv.begun, 0);
    side_cleanup(&sv);
}

TEST(rpc_h2_garbage_is_a_connection_error)
{
    struct side sv;
    side_init(&sv, true, NULL);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_EQ(ag__h2conn_recv(sv.conn, (const uint8_t *)junk, sizeof(junk) - 1),
             AG_E_RPC_PROTOCOL);
    CHECK_CONTAINS(ag__h2conn_errmsg(sv.conn), "HTTP/2: ");
    side_cleanup(&sv);
}

/* ---- pings ------------------------------------------------------------------- */

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
    return fake_now;
}

/* One ping from the client, through to its ACK. */
static void ping_once(struct side *cl, struct side *sv)
{
    CHECK_OK(ag__h2conn_ping(cl->conn));
    CHECK(ag__h2conn_ping_outstanding(cl->conn));
    CHECK_EQ(ag__h2conn_ping(cl->conn), AG_E_STATE); /* one at a time */
    pump(cl, sv);
    CHECK(!ag__h2conn_ping_outstanding(cl->conn));
}

TEST(rpc_h2_ping_policy_too_many_pings)
{
    ag__h2_opts so;
    ag__h2_opts_init(&so);
    so.now_ns = fake_clock;
    fake_now = 1000000000ull;
    struct side cl, sv;
    side_init(&cl, false, NULL);
    side_init(&sv, true, &so);
    pump(&cl, &sv);

    /* a call open, pings 5 minutes apart: always allowed */
    ag__h2call *c = ag__h2conn_call_start(cl.conn, "/test.Echo/Hang", UINT64_MAX, NULL,
                                          AG__ENC_IDENTITY);
    CHECK(c);
    CHECK_OK(ag__h2call_send(c, "x", 1, false));
    pump(&cl, &sv);
    for (int i = 0; i < 5; i++) {
        fake_now += 300ull * 1000000000u;
        ping_once(&cl, &sv);
    }
    /* two pings too soon are strikes, tolerated; data from the server
     * clears them */
    fake_now += 1000000000u;
    ping_once(&cl, &sv);
    fake_now += 1000000000u;
    ping_once(&cl, &sv);
    CHECK_OK(ag__h2call_send(sv.last, "y", 1, false));
    pump(&cl, &sv);
    fake_now += 1000000000u;
    ping_once(&cl, &sv); /* the first since the data: no strike */
    fake_now += 1000000000u;
    ping_once(&cl, &sv);
    fake_now += 1000000000u;
    ping_once(&cl, &sv);
    CHECK(!ag__h2conn_told_too_many_pings(cl.conn));

    /* the third strike ends the connection: GOAWAY ENHANCE_YOUR_CALM
     * too_many_pings, and the server reads nothing more */
    fake_now += 1000000000u;
    CHECK_OK(ag__h2conn_ping(cl.conn));
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    CHECK_OK(ag__h2conn_send(cl.conn, &b, 0));
    CHECK_EQ(ag__h2conn_recv(sv.conn, b.data, b.len), AG_E_RPC_PROTOCOL);
    CHECK(strstr(ag__h2conn_errmsg(sv.conn), "too many pings"));
    ag_buf_reset(&b);
    CHECK_OK(ag__h2conn_send(sv.conn, &b, 0));
    CHECK(b.len > 0);
    CHECK_OK(ag__h2conn_recv(cl.conn, b.data, b.len));
    CHECK(ag__h2conn_told_too_many_pings(cl.conn));
    CHECK_EQ(ag__h2conn_recv(sv.conn, (const uint8_t *)"x", 1), AG_E_RPC_PROTOCOL);
    ag_buf_cleanup(&b);
    side_cleanup(&cl);
    side_cleanup(&sv);
}

TEST(rpc_h2_ping_policy_without_calls)
{
    ag__h2_opts so;
    ag__h2_opts_init(&so);
    so.now_ns = fake_clock;
    so.max_ping_strikes = 0;
    fake_now = 1000000000ull;
    struct side cl, sv;
    side_init(&cl, false, NULL);
    side_init(&sv, true, &so);
    pump(&cl, &sv);
    /* no call open: 2 hours between pings unless permitted */
    ping_once(&cl, &sv);
    fake_now += 2 * 3600ull * 1000000000u;
    ping_once(&cl, &sv);
    fake_now += 600ull * 1000000000u; /* 10 minutes: too soon without calls */
    CHECK_OK(ag__h2conn_ping(cl.conn));
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    CHECK_OK(ag__h2conn_send(cl.conn, &b, 0));
    CHECK_EQ(ag__h2conn_recv(sv.conn, b.data, b.len), AG_E_RPC_PROTOCOL);
    ag_buf_cleanup(&b);
    side_cleanup(&cl);
    side_cleanup(&sv);

    /* permitted: 5 minutes apart is fine without calls */
    so.pings_without_calls = true;
    side_init(&cl, false, NULL);
    side_init(&sv, true, &so);
    pump(&cl, &sv);
    for (int i = 0; i < 3; i++) {
        fake_now += 300ull * 1000000000u;
        ping_once(&cl, &sv);
    }
    side_cleanup(&cl);
    side_cleanup(&sv);
}

/* Message bodies a server must refuse, each with the status the protocol
 * documents; the connection goes on serving. */
TEST(rpc_h2_bad_message_bodies)
{
    static const struct {
        const char *encoding; /* NULL: no grpc-encoding */
        const char *body;
        size_t len;
        const char *grpc_status, *grpc_message;
    } cases[] = {
        /* the compressed flag with no grpc-encoding */
        {NULL, "\x01\x00\x00\x00\x03" "abc", 8, "13", "compressed"},
        /* a gzip body that is not gzip */
        {"gzip", "\x01\x00\x00\x00\x04nope", 9, "13", "could not decompress a gzip message"},
        /* a flag that is neither 0 nor 1 */
        {NULL, "\x02\x00\x00\x00\x01x", 6, "13", "flag"},
        /* a frame cut short by the end of the stream */
        {NULL, "\x00\x00\x00\x00\x0a" "abc", 8, "13", "stream ended inside a message (3 of 10 bytes)"},
        /* a length prefix of 4 GB: refused before anything is buffered */
        {NULL, "\x00\xff\xff\xff\xff", 5, "8", "larger than"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        struct side sv;
        side_init(&sv, true, NULL);
        nghttp2_nv nv[8] = {NV(":scheme", "http"), NV(":path", "/test.Echo/Echo"),
                            NV(":authority", "x"), NV(":method", "POST"),
                            NV("content-type", "application/grpc")};
        size_t n = 5;
        if (cases[i].encoding)
            nv[n++] = (nghttp2_nv){(uint8_t *)"grpc-encoding", (uint8_t *)cases[i].encoding, 13,
                                   strlen(cases[i].encoding), 0};
        struct raw r;
        raw_request_body(&r, &sv, nv, n, cases[i].body, cases[i].len);
        CHECK_STR_EQ(r.status, "200");
        if (strcmp(r.grpc_status, cases[i].grpc_status) != 0 ||
            !strstr(r.grpc_message, cases[i].grpc_message))
            FAIL("case %zu: grpc-status %s '%s', expected %s with '%s'", i, r.grpc_status,
                 r.grpc_message, cases[i].grpc_status, cases[i].grpc_message);
        CHECK_EQ(sv.messages, 0);
        CHECK_EQ(ag__h2conn_ncalls(sv.conn), 0);
        CHECK(ag__h2conn_alive(sv.conn));
        side_cleanup(&sv);
    }
}

/* A server's deadline: the client hears DEADLINE_EXCEEDED in the status
 * (trailers), not a bare RST_STREAM CANCEL, with or without headers sent,
 * and what was queued is dropped. */
TEST(rpc_h2_server_deadline_is_a_status)
{
    for (int with_msg = 0; with_msg < 2; with_msg++) {
        struct side cl, sv;
        side_init(&cl, false, NULL);
        side_init(&sv, true, NULL);
        ag__h2call *c = ag__h2conn_call_start(cl.conn, "/test.Echo/Hang", 1000000ull, NULL,
                                              AG__ENC_IDENTITY);
        CHECK_OK(ag__h2call_send(c, "x", 1, false));
        pump(&cl, &sv);
        CHECK_EQ(sv.begun, 1);
        if (with_msg) {
            CHECK_OK(ag__h2call_send(sv.last, "early", 5, false));
            pump(&cl, &sv);
            CHECK_EQ(cl.messages, 1);
        }
        CHECK_OK(ag__h2call_expire(sv.last));
        pump(&cl, &sv);
        CHECK_EQ(cl.done, 1);
        CHECK_EQ(cl.status, AG_RPC_DEADLINE_EXCEEDED);
        CHECK_STR_EQ(cl.msg, "deadline exceeded");
        CHECK_EQ(ag__h2conn_ncalls(sv.conn), 0);
        side_cleanup(&cl);
        side_cleanup(&sv);
    }
}
