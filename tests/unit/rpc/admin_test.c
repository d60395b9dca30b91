/* Tests for src/rpc/admin.c: the admin endpoint over real sockets on
 * 127.0.0.1 (raw sockets: no HTTP client library or program). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "argot/rpc.h"
#include "test.h"

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    return fd;
}

static void send_all(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        CHECK(k > 0);
        s += k;
        n -= (size_t)k;
    }
}

/* Reads into buf (NUL-terminated) until the peer closes, cap is full, or
 * ms pass with nothing new. Returns the length; *closed says whether the
 * peer closed (EOF or reset). */
static size_t read_for(int fd, char *buf, size_t cap, int ms, bool *closed)
{
    size_t len = 0;
    *closed = false;
    while (len + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, ms) <= 0)
            break;
        ssize_t k = recv(fd, buf + len, cap - 1 - len, 0);
        if (k <= 0) {
            *closed = true;
            break;
        }
        len += (size_t)k;
    }
    buf[len] = '\0';
    return len;
}

/* Reads until the peer closes (within 5 s). */
static size_t read_to_close(int fd, char *buf, size_t cap)
{
    bool closed;
    size_t n = read_for(fd, buf, cap, 5000, &closed);
    CHECK(closed);
    return n;
}

/* Reads exactly one response: its head (a byte at a time, so as never to
 * read past it), then (unless head_only, for HEAD) Content-Length bytes of
 * body. */
static void read_response_ex(int fd, char *buf, size_t cap, bool head_only)
{
    size_t len = 0, want = 0;
    while (want == 0 || len < want) {
        size_t ask = want ? want - len : 1;
        CHECK(len + ask < cap);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        CHECK(poll(&p, 1, 5000) == 1);
        ssize_t k = recv(fd, buf + len, ask, 0);
        CHECK(k > 0);
        len += (size_t)k;
        buf[len] = '\0';
        if (want)
            continue;
        char *end = len >= 4 && memcmp(buf + len - 4, "\r\n\r\n", 4) == 0 ? buf + len - 4 : NULL;
        if (!end)
            continue;
        const char *cl = strstr(buf, "Content-Length: ");
        want = len;
        if (cl && !head_only)
            want += strtoul(cl + 16, NULL, 10);
    }
}

static void read_response(int fd, char *buf, size_t cap)
{
    read_response_ex(fd, buf, cap, false);
}

static atomic_bool healthy = true;

static bool is_serving(void *ud)
{
    (void)ud;
    return atomic_load(&healthy);
}

static int h_json(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    (void)ud;
    resp->content_type = "application/json";
    return ag_buf_printf(&resp->body, "{\"query\":\"%s\",\"body\":%zu}", req->query, req->body.len);
}

static int h_fail(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    (void)req;
    (void)ud;
    int rc = ag_buf_append_str(&resp->body, "partial");
    return rc < 0 ? rc : AG_E_IO;
}

/* An endpoint on 127.0.0.1, port 0, with a registry holding one counter. */
static ag_admin *admin_up(ag_metrics *m, uint64_t request_timeout_ms, unsigned max_conns)
{
    ag_admin_opts o;
    ag_admin_opts_init(&o);
    o.metrics = m;
    o.serving = is_serving;
    o.request_timeout_ms = request_timeout_ms;
    o.max_conns = max_conns;
    o.max_header = 1024;
    o.max_body = 64;
    ag_admin *a = ag_admin_new(&o);
    CHECK(a);
    CHECK_OK(ag_admin_route(a, "GET", "/api/state", h_json, NULL));
    CHECK_OK(ag_admin_route(a, "POST", "/api/state", h_json, NULL));
    CHECK_OK(ag_admin_route(a, "GET", "/fail", h_fail, NULL));
    CHECK_EQ(ag_admin_route(a, "GET", "/healthz", h_json, NULL), AG_E_EXISTS);
    CHECK_EQ(ag_admin_route(a, "BREW", "/x", h_json, NULL), AG_E_INVAL);
    CHECK_EQ(ag_admin_route(a, "GET", "x", h_json, NULL), AG_E_INVAL);
    if (ag_admin_start(a, "127.0.0.1:0") < 0)
        FAIL("start: %s", ag_admin_errmsg(a));
    CHECK(ag_admin_port(a) > 0);
    CHECK_EQ(ag_admin_route(a, "GET", "/late", h_json, NULL), AG_E_STATE);
    return a;
}

TEST_TIMEOUT(admin_metrics_health_and_routes, 60)
{
    ag_metrics *m = ag_metrics_new();
    ag_metric *c = ag_metrics_counter(m, "scrapes_total", "Scrapes.", NULL);
    ag_metric_add(c, 3);
    ag_admin *a = admin_up(m, 10000, 0);
    int fd = dial(ag_admin_port(a));
    char buf[8192], want[1024];

    send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(fd, buf, sizeof(buf));
    ag_buf text;
    ag_buf_init(&text, 1 << 20);
    CHECK_OK(ag_metrics_render(m, &text));
    snprintf(want, sizeof(want),
             "HTTP/1.1 200 OK\r\n"
             "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             text.len, (const char *)text.data);
    CHECK_STR_EQ(buf, want);
    ag_buf_cleanup(&text);

    send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(fd, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: 3\r\n\r\nok\n");
    atomic_store(&healthy, false);
    send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(fd, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "HTTP/1.1 503 Service Unavailable\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: 12\r\n\r\nnot serving\n");
    send_all(fd, "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "HTTP/1.1 503 ");
    atomic_store(&healthy, true);
    send_all(fd, "HEAD /ready HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response_ex(fd, buf, sizeof(buf), true); /* the length of GET's body, no body */
    CHECK_STR_EQ(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: 3\r\n\r\n");
    send_all(fd, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "HTTP/1.1 404 Not Found\r\n");
    send_all(fd, "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "HTTP/1.1 405 Method Not Allowed\r\n");
    CHECK_CONTAINS(buf, "Allow: GET, HEAD\r\n");
    send_all(fd, "PUT /api/state HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "Allow: GET, HEAD, POST\r\n");
    send_all(fd, "POST /api/state?verbose=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    read_response(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "Content-Type: application/json\r\n");
    CHECK_CONTAINS(buf, "\r\n\r\n{\"query\":\"verbose=1\",\"body\":5}");
    send_all(fd, "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "HTTP/1.1 500 Internal Server Error\r\n");
    CHECK_CONTAINS(buf, "\r\n\r\ninternal error\n");
    close(fd);
    ag_admin_free(a);
    ag_metrics_free(m);
}

TEST_TIMEOUT(admin_errors_close_the_connection, 60)
{
    ag_admin *a = admin_up(NULL, 10000, 0);
    int port = ag_admin_port(a);
    char buf[8192];

    int fd = dial(port);
    send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); /* no registry */
    read_response(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "HTTP/1.1 404 ");
    send_all(fd, "NOT HTTP AT ALL\r\n\r\n");
    read_to_close(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "HTTP/1.1 400 Bad Request\r\n");
    CHECK_CONTAINS(buf, "Connection: close\r\n");
    close(fd);

    /* a header block over max_header (1 KiB), the client still sending */
    fd = dial(port);
    send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    char big[4096];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    send_all(fd, big);
    read_to_close(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "HTTP/1.1 431 Request Header Fields Too Large\r\n");
    close(fd);

    /* a body over max_body (64) */
    fd = dial(port);
    send_all(fd, "POST /api/state HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n");
    read_to_close(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "HTTP/1.1 413 ");
    close(fd);
    ag_admin_free(a);
}

TEST_TIMEOUT(admin_pipelining_and_connection_close, 60)
{
    ag_admin *a = admin_up(NULL, 10000, 0);
    int port = ag_admin_port(a);
    char buf[8192];

    int fd = dial(port);
    send_all(fd, "GET /api/state?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /api/state?n=2 HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "{\"query\":\"n=1\"");
    read_response(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "{\"query\":\"n=2\"");
    /* still open: a third request on it */
    send_all(fd, "GET /api/state?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    read_to_close(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "Connection: close\r\n");
    CHECK_CONTAINS(buf, "{\"query\":\"n=3\"");
    close(fd);

    /* HTTP/1.0 closes unless keep-alive */
    fd = dial(port);
    send_all(fd, "GET /healthz HTTP/1.0\r\n\r\n");
    read_to_close(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "HTTP/1.1 200 OK\r\n");
    close(fd);
    fd = dial(port);
    send_all(fd, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    read_response(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "Connection: keep-alive\r\n");
    send_all(fd, "GET /healthz HTTP/1.0\r\n\r\n");
    read_to_close(fd, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "ok\n");
    close(fd);
    ag_admin_free(a);
}

TEST_TIMEOUT(admin_slow_client_is_cut, 60)
{
    ag_admin *a = admin_up(NULL, 300, 0);
    char buf[8192];
    int fd = dial(ag_admin_port(a));
    uint64_t t0 = ag_now_ms();
    send_all(fd, "GET /healthz HTTP/1.1\r\nHo");
    read_to_close(fd, buf, sizeof(buf));
    uint64_t took = ag_now_ms() - t0;
    CHECK_CONTAINS(buf, "HTTP/1.1 408 Request Timeout\r\n");
    CHECK(took >= 250 && took < 3000);
    close(fd);
    ag_admin_free(a);
}

TEST_TIMEOUT(admin_connection_cap, 60)
{
    ag_admin *a = admin_up(NULL, 10000, 2);
    char buf[1024];
    int f1 = dial(ag_admin_port(a)), f2 = dial(ag_admin_port(a));
    /* both are served (and so accepted) before the third comes */
    send_all(f1, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f1, buf, sizeof(buf));
    send_all(f2, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f2, buf, sizeof(buf));
    int f3 = dial(ag_admin_port(a));
    CHECK_EQ(read_to_close(f3, buf, sizeof(buf)), 0);
    close(f3);
    close(f1);
    /* a slot is free again once the server saw f1 go */
    for (int i = 0;; i++) {
        CHECK(i < 100);
        int f4 = dial(ag_admin_port(a));
        (void)send(f4, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 35, MSG_NOSIGNAL);
        bool closed;
        size_t n = read_for(f4, buf, sizeof(buf), 2000, &closed);
        close(f4);
        if (n > 0) {
            CHECK_CONTAINS(buf, "HTTP/1.1 200 OK\r\n");
            break;
        }
        ag_sleep_ms(20);
    }
    close(f2);
    ag_admin_free(a);
}

TEST_TIMEOUT(admin_shutdown_with_a_client_connected, 60)
{
    ag_admin *a = admin_up(NULL, 10000, 0);
    char buf[1024];
    int fd = dial(ag_admin_port(a));
    send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(fd, buf, sizeof(buf));
    send_all(fd, "GET /heal"); /* a request under way */
    uint64_t t0 = ag_now_ms();
    ag_admin_shutdown(a);
    CHECK(ag_now_ms() - t0 < 1000);
    read_to_close(fd, buf, sizeof(buf));
    ag_admin_shutdown(a); /* again: nothing */
    close(fd);
    ag_admin_free(a);
}

TEST_TIMEOUT(admin_address_in_use, 60)
{
    ag_admin *a = admin_up(NULL, 10000, 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ag_admin_port(a));
    ag_admin *b = ag_admin_new(NULL);
    CHECK(b);
    CHECK(ag_admin_start(b, addr) < 0);
    char want[128];
    snprintf(want, sizeof(want), "%s: address already in use", addr);
    CHECK_STR_EQ(ag_admin_errmsg(b), want);
    CHECK(ag_admin_start(b, "nonsense") < 0);
    CHECK_STR_EQ(ag_admin_errmsg(b), "nonsense: expected host:port");
    ag_admin_free(b);
    ag_admin_free(a);
    ag_admin_free(NULL);
}

TEST_FM(admin_new_and_routes_out_of_memory)
{
    ag_admin *a = NULL;
    ag_metrics *m = ag_metrics_new();
    FM_NEW(m);
    ag_admin_opts o;
    ag_admin_opts_init(&o);
    o.metrics = m;
    a = ag_admin_new(&o);
    FM_NEW(a);
    FM_TRY(ag_admin_route(a, "GET", "/api/state", h_json, NULL), 0);
    FM_TRY(ag_admin_route(a, "POST", "/api/state", h_json, NULL), 0);
out:
    ag_admin_free(a);
    ag_metrics_free(m);
}

static int h_big(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    (void)req;
    (void)ud;
    int rc = ag_buf_reserve(&resp->body, 256 * 1024);
    if (rc < 0)
        return rc;
    memset(resp->body.data, 'q', 256 * 1024);
    resp->body.len = 256 * 1024;
    return 0;
}

/* A client pipelining requests without reading: the server holds back (its
 * output past the high-water mark, it stops reading), then answers every
 * request in order once the client reads. */
TEST_TIMEOUT(admin_pipelining_client_that_reads_late, 60)
{
    ag_admin_opts o;
    ag_admin_opts_init(&o);
    ag_admin *a = ag_admin_new(&o);
    CHECK_OK(ag_admin_route(a, "GET", "/big", h_big, NULL));
    CHECK_OK(ag_admin_start(a, "127.0.0.1:0"));
    int fd = dial(ag_admin_port(a));
    enum { N = 40 };
    for (int i = 0; i < N; i++)
        send_all(fd, i % 2 ? "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"
                           : "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    ag_sleep_ms(200);
    static char buf[300 * 1024];
    for (int i = 0; i < N; i++) {
        read_response(fd, buf, sizeof(buf));
        if (i % 2)
            CHECK_CONTAINS(buf, "Content-Length: 262144\r\n");
        else
            CHECK_CONTAINS(buf, "\r\n\r\nok\n");
    }
    close(fd);
    ag_admin_free(a);
}

/* A client that sends requests and never reads the responses: once the idle
 * timer fires, the stuck write gets its grace and the connection is cut. */
TEST_TIMEOUT(admin_client_that_never_reads_is_cut, 60)
{
    ag_admin_opts o;
    ag_admin_opts_init(&o);
    o.idle_timeout_ms = 200;
    ag_admin *a = ag_admin_new(&o);
    CHECK_OK(ag_admin_route(a, "GET", "/big", h_big, NULL));
    CHECK_OK(ag_admin_start(a, "127.0.0.1:0"));
    int fd = dial(ag_admin_port(a));
    /* 24 MiB of responses: more than the kernel buffers both ends can hold */
    for (int i = 0; i < 96; i++)
        send_all(fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    ag_sleep_ms(3500); /* 200 ms idle, then 2 s for the stuck write */
    static char buf[64 * 1024];
    bool closed = false;
    size_t total = 0;
    uint64_t t0 = ag_now_ms();
    while (!closed && ag_now_ms() - t0 < 20000)
        total += read_for(fd, buf, sizeof(buf), 1000, &closed);
    CHECK(closed);
    CHECK(total < 96u * 256 * 1024); /* cut before the end */
    close(fd);
    ag_admin_free(a);
}
