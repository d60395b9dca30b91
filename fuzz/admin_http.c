/*
 * Fuzz target: the admin endpoint's HTTP/1.1 server core (src/rpc/http1.c)
 * receiving arbitrary bytes from a client. The first byte chooses how the
 * rest is cut into reads (1 to 64 bytes each, or one read) and whether the
 * request timer fires at the end; the second, the header limit. A serve
 * function looks at everything a handler can see and answers with several
 * kinds of responses (a metrics page, no body, a large body, extra headers).
 * Whatever arrives, the core must not crash, leak or read out of bounds;
 * every response it queues starts with a status line, and once it says it
 * is closing it takes no more requests.
 */
#include <stdlib.h>
#include <string.h>

#include "rpc/http1.h"

static ag_metrics *registry;

static void serve(void *ud, const ag_admin_request *req, ag_admin_response *resp)
{
    (void)ud;
    size_t seen = strlen(req->method) + strlen(req->path) + strlen(req->query);
    for (size_t i = 0; i < req->nheaders; i++)
        seen += strlen(req->headers[i].name) + strlen(req->headers[i].value);
    const char *host = ag_admin_request_header(req, "host");
    if (req->body.len && (req->body.ptr[0] == 0xff || req->body.ptr[req->body.len - 1] == 0xff))
        seen++;
    if (strcmp(req->path, "/metrics") == 0) {
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        if (ag_metrics_render(registry, &resp->body) < 0)
            abort();
    } else if (strcmp(req->path, "/empty") == 0) {
        resp->status = 204;
    } else if (strcmp(req->path, "/big") == 0) {
        if (ag_buf_reserve(&resp->body, 300000) < 0)
            abort();
        memset(resp->body.data, 'b', 300000);
        resp->body.len = 300000;
    } else if (strcmp(req->path, "/hdr") == 0) {
        (void)ag_admin_response_header(resp, host ? host : "X", req->query);
        resp->status = 299;
    } else {
        resp->status = 404;
        if (ag_buf_printf(&resp->body, "%zu\n", seen) < 0)
            abort();
    }
}

/* Takes the core's output, checking it starts with a status line. */
static void drain(ag__http *h, ag_buf *w)
{
    const ag_buf *out = ag__http_out(h);
    if (out->len && (out->len < 9 || memcmp(out->data, "HTTP/1.1 ", 9) != 0))
        abort();
    ag__http_take_out(h, w);
    ag_buf_reset(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (!registry) {
        registry = ag_metrics_new();
        ag_metric *c = ag_metrics_counter(registry, "requests_total", "Requests.", "path");
        ag_metric_add(c, 1, "/a\"b\\c\n");
    }
    uint8_t cfg = data[0];
    size_t max_header = 64 + (size_t)data[1] * 64;
    data += 2;
    size -= 2;
    ag__http *h = ag__http_new(max_header, 4096, serve, NULL);
    if (!h)
        return 0;
    ag_buf w;
    ag_buf_init(&w, ag__http_out(h)->max);
    size_t step = (cfg & 0x40) ? size : 1 + (cfg & 0x3f);
    size_t at = 0;
    while (at < size && !ag__http_closing(h)) {
        size_t n = AG_MIN(step, size - at);
        size_t k = ag__http_feed(h, data + at, n);
        if (k > n || (k < n && ag__http_out(h)->len < AG__HTTP_OUT_HIGH))
            abort(); /* holds back only past its high-water mark */
        at += k;
        drain(h, &w);
    }
    uint64_t served = ag__http_served(h);
    if (ag__http_closing(h) && at < size &&
        (ag__http_feed(h, data + at, size - at) != size - at || ag__http_served(h) != served))
        abort(); /* closing: everything dropped, nothing served */
    if (cfg & 0x80)
        ag__http_timeout(h);
    else
        ag__http_eof(h);
    drain(h, &w);
    if (!ag__http_closing(h))
        abort();
    ag_buf_cleanup(&w);
    ag__http_free(h);
    return 0;
}
