/* Tests for src/rpc/http1.c: the HTTP/1.1 server core, without sockets. */
#include "rpc/http1.h"
#include "test.h"

/* Echoes what it saw: "METHOD path ?query host=... body=...". */
static void echo_serve(void *ud, const ag_admin_request *req, ag_admin_response *resp)
{
    int *calls = ud;
    (*calls)++;
    const char *host = ag_admin_request_header(req, "HOST");
    if (ag_buf_printf(&resp->body, "%s %s ?%s host=%s body=%.*s", req->method, req->path,
                      req->query, host ? host : "-", (int)req->body.len,
                      (const char *)req->body.ptr) < 0)
        resp->status = 500;
    if (strcmp(req->path, "/teapot") == 0) {
        resp->status = 429;
        resp->content_type = "application/json";
        int rc = ag_admin_response_header(resp, "X-Kind", "tea");
        if (rc < 0 && !(rc == AG_E_NOMEM && ag_alloc_failed()))
            FAIL("ag_admin_response_header: %s", ag_err_name(rc));
        CHECK_EQ(ag_admin_response_header(resp, "Bad Name", "x"), AG_E_INVAL);
        CHECK_EQ(ag_admin_response_header(resp, "X", "a\r\nInjected: 1"), AG_E_INVAL);
    }
}

/* Feeds s (all at once, or one byte at a time) and returns the output. */
static const char *run(ag__http *h, const char *s, bool bytewise)
{
    size_t n = strlen(s);
    if (bytewise) {
        for (size_t i = 0; i < n; i++)
            CHECK_EQ(ag__http_feed(h, (const uint8_t *)s + i, 1), 1);
    } else {
        CHECK_EQ(ag__http_feed(h, (const uint8_t *)s, n), n);
    }
    const ag_buf *out = ag__http_out(h);
    return out->data ? (const char *)out->data : "";
}

TEST(http1_one_request_exact_bytes)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        int calls = 0;
        ag__http *h = ag__http_new(0, 0, echo_serve, &calls);
        CHECK(h);
        const char *out = run(h, "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", bytewise);
        CHECK_STR_EQ(out, "HTTP/1.1 200 OK\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\n"
                          "Content-Length: 30\r\n"
                          "\r\n"
                          "GET /metrics ?x=1 host=a body=");
        CHECK(!ag__http_closing(h));
        CHECK(!ag__http_busy(h));
        CHECK_EQ(calls, 1);
        ag__http_free(h);
    }
}

TEST(http1_pipelined_in_order_and_body)
{
    int calls = 0;
    ag__http *h = ag__http_new(0, 0, echo_serve, &calls);
    const char *out = run(h,
                          "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
                          "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "2\r\nab\r\n1\r\nc\r\n0\r\nTrailer: t\r\n\r\n"
                          "GET /teapot HTTP/1.1\r\nHost: h\r\n\r\nGET /partial",
                          false);
    CHECK_EQ(calls, 3);
    const char *a = strstr(out, "POST /a ? host=h body=xyz");
    const char *b = strstr(out, "POST /b ? host=h body=abc");
    const char *t = strstr(out, "HTTP/1.1 429 Too Many Requests\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: 26\r\n"
                                "X-Kind: tea\r\n\r\n");
    CHECK(a && b && t && a < b && b < t);
    CHECK(ag__http_busy(h)); /* "GET /partial" has begun */
    ag_buf w;
    ag_buf_init(&w, ag__http_out(h)->max);
    ag__http_take_out(h, &w);
    CHECK_EQ(ag__http_out(h)->len, 0);
    ag__http_timeout(h);
    CHECK(ag__http_closing(h));
    CHECK_CONTAINS((const char *)ag__http_out(h)->data, "HTTP/1.1 408 Request Timeout\r\n");
    CHECK_CONTAINS((const char *)ag__http_out(h)->data, "Connection: close\r\n");
    ag_buf_cleanup(&w);
    ag__http_free(h);
}

TEST(http1_head_keeps_length_drops_body)
{
    int calls = 0;
    ag__http *h = ag__http_new(0, 0, echo_serve, &calls);
    const char *out = run(h, "HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n", false);
    CHECK_STR_EQ(out, "HTTP/1.1 200 OK\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: 22\r\n\r\n");
    ag__http_free(h);
}

TEST(http1_connection_close_and_http10)
{
    int calls = 0;
    ag__http *h = ag__http_new(0, 0, echo_serve, &calls);
    const char *out =
        run(h, "GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /b", false);
    CHECK_CONTAINS(out, "Connection: close\r\n");
    CHECK(ag__http_closing(h));
    CHECK_EQ(calls, 1); /* nothing after the close is parsed */
    ag__http_free(h);

    h = ag__http_new(0, 0, echo_serve, &calls);
    out = run(h, "GET /a HTTP/1.0\r\n\r\n", false);
    CHECK_CONTAINS(out, "Connection: close\r\n");
    CHECK(ag__http_closing(h));
    ag__http_free(h);

    h = ag__http_new(0, 0, echo_serve, &calls);
    out = run(h, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false);
    CHECK_CONTAINS(out, "Connection: keep-alive\r\n");
    CHECK(!ag__http_closing(h));
    ag__http_free(h);
}

/* Each refusal: the status line, Connection: close, the handler not run. */
static void refused(const char *req, const char *status_line, size_t max_header, size_t max_body,
                    bool bytewise)
{
    int calls = 0;
    ag__http *h = ag__http_new(max_header, max_body, echo_serve, &calls);
    const char *out = run(h, req, bytewise);
    if (strncmp(out, status_line, strlen(status_line)) != 0)
        FAIL("for %.40s: got %.60s, want %s", req, out, status_line);
    CHECK_CONTAINS(out, "Connection: close\r\n");
    CHECK(ag__http_closing(h));
    CHECK_EQ(calls, 0);
    ag__http_free(h);
}

TEST(http1_refusals)
{
    for (int bw = 0; bw < 2; bw++) {
        refused("GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n", 0, 0, bw);
        refused("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n", 0, 0, bw); /* no Host */
        refused("GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", "HTTP/1.1 400 ", 0, 0, bw);
        refused("GET / HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/1.1 505 ", 0, 0, bw);
        refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n",
                "HTTP/1.1 413 Payload Too Large\r\n", 0, 10, bw);
        refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                "6\r\n123456\r\n6\r\n123456\r\n0\r\n\r\n",
                "HTTP/1.1 413 Payload Too Large\r\n", 0, 10, bw);
        refused("GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", "HTTP/1.1 417 ", 0, 0, bw);
    }
    /* a header block one byte over the limit, and one far over it */
    char big[600];
    const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    size_t n = strlen(pre);
    memcpy(big, pre, n);
    memset(big + n, 'v', 100);
    memcpy(big + n + 100, "\r\n\r\n", 5);
    size_t len = strlen(big);
    refused(big, "HTTP/1.1 431 Request Header Fields Too Large\r\n", len - 2, 0, false);
    int calls = 0;
    ag__http *h = ag__http_new(len, 0, echo_serve, &calls);
    run(h, big, false); /* exactly at the limit: served */
    CHECK_EQ(calls, 1);
    ag__http_free(h);
    memset(big + n, 'v', sizeof(big) - n - 1);
    big[sizeof(big) - 1] = '\0';
    refused(big, "HTTP/1.1 431 ", 128, 0, true); /* refused before the end */
}

TEST(http1_too_many_headers)
{
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    CHECK_OK(ag_buf_append_str(&b, "GET / HTTP/1.1\r\nHost: a\r\n"));
    for (int i = 0; i < AG__HTTP_MAX_HEADERS; i++)
        CHECK_OK(ag_buf_printf(&b, "X-%d: %d\r\n", i, i));
    CHECK_OK(ag_buf_append_str(&b, "\r\n"));
    refused((const char *)b.data, "HTTP/1.1 431 ", 64 * 1024, 0, false);
    ag_buf_cleanup(&b);
}

TEST(http1_expect_continue)
{
    int calls = 0;
    ag__http *h = ag__http_new(0, 0, echo_serve, &calls);
    const char *out = run(h,
                          "PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                          "Content-Length: 2\r\n\r\nok",
                          false);
    CHECK(strncmp(out, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 42) == 0);
    CHECK_CONTAINS(out, "body=ok");
    ag__http_free(h);
}

static void big_serve(void *ud, const ag_admin_request *req, ag_admin_response *resp)
{
    (void)req;
    (*(int *)ud)++;
    CHECK_OK(ag_buf_reserve(&resp->body, 700 * 1024));
    memset(resp->body.data, 'z', 700 * 1024);
    resp->body.len = 700 * 1024;
}

TEST(http1_holds_back_past_high_water)
{
    int calls = 0;
    ag__http *h = ag__http_new(0, 0, big_serve, &calls);
    const char *reqs = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t one = strlen(reqs) / 3;
    size_t k = ag__http_feed(h, (const uint8_t *)reqs, strlen(reqs));
    CHECK_EQ(k, 2 * one); /* two responses pass the high-water mark */
    CHECK_EQ(calls, 2);
    ag_buf w;
    ag_buf_init(&w, ag__http_out(h)->max);
    ag__http_take_out(h, &w);
    CHECK_EQ(ag__http_feed(h, (const uint8_t *)reqs + k, one), one);
    CHECK_EQ(calls, 3);
    ag_buf_cleanup(&w);
    ag__http_free(h);
}

TEST_FM(http1_out_of_memory)
{
    int calls = 0;
    ag__http *h = ag__http_new(0, 0, echo_serve, &calls);
    FM_NEW(h);
    const char *reqs = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
                       "GET /teapot?q HTTP/1.1\r\nHost: h\r\n\r\n";
    /* a failed allocation costs a response (or the connection), never more */
    CHECK_EQ(ag__http_feed(h, (const uint8_t *)reqs, strlen(reqs)), strlen(reqs));
    if (!ag_alloc_failed())
        CHECK_EQ(calls, 2);
out:
    ag__http_free(h);
}

static void odd_serve(void *ud, const ag_admin_request *req, ag_admin_response *resp)
{
    (void)ud;
    resp->status = atoi(req->path + 1);
}

TEST(http1_status_lines)
{
    int calls = 0;
    ag__http *h = ag__http_new(0, 0, odd_serve, &calls);
    const char *out = run(h,
                          "GET /299 HTTP/1.1\r\nHost: a\r\n\r\n"
                          "GET /204 HTTP/1.1\r\nHost: a\r\n\r\n"
                          "GET /99 HTTP/1.1\r\nHost: a\r\n\r\n",
                          false);
    CHECK(strncmp(out,
                  "HTTP/1.1 299 Success\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Content-Length: 0\r\n\r\n"
                  "HTTP/1.1 204 No Content\r\n\r\n"
                  "HTTP/1.1 500 Internal Server Error\r\n",
                  147) == 0);
    CHECK(ag__http_closing(h)); /* a handler's bad status: 500, and the connection ends */
    ag__http_free(h);
}
