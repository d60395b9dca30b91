/*
 * HTTP/1.1 server connection core (http1.h): http-parser turns the bytes
 * into callbacks; this file gathers one request at a time, hands it to the
 * serve function and writes the response into the output buffer.
 *
 * The parser is paused at two points of every request, so that the loop in
 * ag__http_feed regains control there:
 *   - at the end of the header block (on_headers_complete), where the bytes
 *     of the request line and headers are counted exactly: before it, the
 *     parser is never given more than one byte past max_header, so a header
 *     block over the limit is caught without reading it all;
 *   - at the end of the request (on_message_complete), where the response
 *     is made, before any byte of the next pipelined request is parsed.
 *
 * Invariants:
 *   1. head_bytes <= max_header between calls (past it: 431 and closing).
 *   2. Once closing, no byte is parsed any more and no response is added
 *      except, on a timeout, the 408.
 *   3. The request's strings live in `head` (URL, then each header's name
 *      and value, NUL-terminated); `head` never grows after the header block
 *      ends (trailers of chunked bodies are ignored), so the pointers in
 *      `hdrs` stay valid until the next request begins.
 */
#include <assert.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http1.h"

enum hstate { H_URL, H_FIELD, H_VALUE };

struct hoff {
    size_t name;  /* offset in head */
    size_t value; /* offset in head; SIZE_MAX until the value starts */
};

struct ag__http {
    http_parser p;
    ag__http_serve_fn serve;
    void *ud;
    size_t max_header; /* bytes */
    size_t max_body;   /* bytes */
    ag_buf out;        /* responses not yet taken */
    ag_buf head;       /* the request's strings (invariant 3) */
    ag_buf body;
    size_t head_bytes; /* raw bytes of the current request's head so far */
    enum hstate hs;
    size_t nh;
    struct hoff hoffs[AG__HTTP_MAX_HEADERS];
    ag_admin_header hdrs[AG__HTTP_MAX_HEADERS];
    bool in_msg;     /* on_message_begin came, on_message_complete not yet */
    bool head_done;  /* the current request's header block has ended */
    bool msg_done;   /* on_message_complete paused the parser */
    bool keep_alive; /* the current request lets the connection go on */
    int err_status;  /* a callback's refusal: the status to answer */
    bool closing;
    uint64_t served;
};

ag__http *ag__http_new(size_t max_header, size_t max_body, ag__http_serve_fn serve, void *ud)
{
    ag__http *h = ag_calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
    h->serve = serve;
    h->ud = ud;
    h->max_header = max_header ? max_header : 16 * 1024;
    h->max_body = max_body ? max_body : 1024 * 1024;
    ag_buf_init(&h->out, AG__HTTP_OUT_HIGH + AG__HTTP_MAX_RESPONSE + 128 * 1024);
    /* the strings: at most the raw head bytes, plus the NULs that end them */
    ag_buf_init(&h->head, h->max_header + 2 * AG__HTTP_MAX_HEADERS + 16);
    ag_buf_init(&h->body, h->max_body);
    return h;
}

void ag__http_free(ag__http *h)
{
    if (!h)
        return;
    ag_buf_cleanup(&h->out);
    ag_buf_cleanup(&h->head);
    ag_buf_cleanup(&h->body);
    ag_free(h);
}

/* ---- responses ------------------------------------------------------------------ */

/* The reason phrase: http-parser's, or for a code it lacks (it answers
 * "<unknown>"), its class's. */
static const char *reason(int status)
{
    static const char *const classes[] = {"Informational", "Success", "Redirection", "Client Error",
                                          "Server Error"};
    const char *r = http_status_str((enum http_status)status);
    if (r[0] != '<')
        return r;
    return status >= 100 && status <= 599 ? classes[status / 100 - 1] : "Status";
}

/* Appends one whole response to out, or nothing (out of memory: closing).
 * body is dropped for HEAD and the statuses that have none. */
static void put_response(ag__http *h, int status, const char *ctype, const ag_buf *extra,
                         ag_slice body, bool head_only, bool close)
{
    char line[512];
    bool no_body = status == 204 || status == 304;
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (!no_body)
        n += snprintf(line + n, sizeof(line) - (size_t)n,
                      "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, body.len);
    size_t extra_len = extra ? extra->len : 0;
    const char *conn = close                  ? "Connection: close\r\n"
                       : h->p.http_minor == 0 ? "Connection: keep-alive\r\n"
                                              : "";
    size_t old = h->out.len;
    size_t body_len = (no_body || head_only) ? 0 : body.len;
    if (n < 0 || (size_t)n >= sizeof(line) ||
        ag_buf_reserve(&h->out, (size_t)n + extra_len + strlen(conn) + 2 + body_len) < 0 ||
        ag_buf_append(&h->out, line, (size_t)n) < 0 ||
        (extra_len && ag_buf_append(&h->out, extra->data, extra_len) < 0) ||
        ag_buf_append_str(&h->out, conn) < 0 || ag_buf_append(&h->out, "\r\n", 2) < 0 ||
        (body_len && ag_buf_append(&h->out, body.ptr, body_len) < 0)) {
        h->out.len = old; /* none of it: the earlier responses still go */
        if (h->out.data)
            h->out.data[old] = '\0';
        h->closing = true;
        return;
    }
    if (close)
        h->closing = true;
}

/* A refusal made here (400, 408, 413, 431, 505, ...): its reason as the
 * body, and the connection closes. */
static void put_error(ag__http *h, int status)
{
    char text[64];
    snprintf(text, sizeof(text), "%s\n", reason(status));
    put_response(h, status, "text/plain; charset=utf-8", NULL, ag_slice_str(text), false, true);
}

/* Splits the URL in head (in place) into path and query. */
static void split_target(ag__http *h, ag_admin_request *req)
{
    char *url = (char *)h->head.data;
    size_t len = strlen(url);
    struct http_parser_url u;
    http_parser_url_init(&u);
    req->path = url;
    req->query = "";
    if (http_parser_parse_url(url, len, h->p.method == HTTP_CONNECT, &u) != 0 ||
        !(u.field_set & (1u << UF_PATH)))
        return; /* "*", or an authority: no route has such a path */
    req->path = url + u.field_data[UF_PATH].off;
    if (u.field_set & (1u << UF_QUERY)) {
        req->query = url + u.field_data[UF_QUERY].off;
        url[u.field_data[UF_QUERY].off + u.field_data[UF_QUERY].len] = '\0';
    }
    url[u.field_data[UF_PATH].off + u.field_data[UF_PATH].len] = '\0';
}

/* The current request is whole: serve it and queue the response. */
static void respond(ag__http *h)
{
    ag_admin_request req = {
        .method = http_method_str((enum http_method)h->p.method),
        .headers = h->hdrs,
        .nheaders = h->nh,
        .body = ag_buf_slice(&h->body),
    };
    split_target(h, &req);
    ag_admin_response resp = {.status = 200, .content_type = "text/plain; charset=utf-8"};
    ag_buf_init(&resp.body, AG__HTTP_MAX_RESPONSE);
    ag_buf_init(&resp.headers, 64 * 1024);
    h->serve(h->ud, &req, &resp);
    bool close = !h->keep_alive || h->p.upgrade;
    if (resp.status < 200 || resp.status > 599 || !resp.content_type)
        put_error(h, 500);
    else
        put_response(h, resp.status, resp.content_type, &resp.headers, ag_buf_slice(&resp.body),
                     h->p.method == HTTP_HEAD, close);
    ag_buf_cleanup(&resp.body);
    ag_buf_cleanup(&resp.headers);
    h->served++;
}

/* ---- parser callbacks ---------------------------------------------------------------- */

static int on_message_begin(http_parser *p)
{
    ag__http *h = p->data;
    ag_buf_reset(&h->head);
    ag_buf_reset(&h->body);
    h->nh = 0;
    h->hs = H_URL;
    h->in_msg = true;
    h->head_done = false;
    return 0;
}

static int refuse(ag__http *h, int status)
{
    h->err_status = status;
    return -1;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    ag__http *h = p->data;
    return ag_buf_append(&h->head, at, len) < 0 ? refuse(h, 431) : 0;
}

/* Ends the string being gathered (URL, name or value). */
static int end_string(ag__http *h)
{
    return ag_buf_append_byte(&h->head, 0) < 0 ? refuse(h, 431) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    ag__http *h = p->data;
    if (h->head_done)
        return 0; /* a chunked body's trailers: ignored (invariant 3) */
    if (h->hs != H_FIELD) {
        if (h->hs == H_VALUE || h->hs == H_URL) {
            if (end_string(h) < 0)
                return -1;
        }
        if (h->nh == AG__HTTP_MAX_HEADERS)
            return refuse(h, 431);
        h->hoffs[h->nh].name = h->head.len;
        h->hoffs[h->nh].value = SIZE_MAX;
        h->nh++;
        h->hs = H_FIELD;
    }
    return ag_buf_append(&h->head, at, len) < 0 ? refuse(h, 431) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    ag__http *h = p->data;
    if (h->head_done)
        return 0;
    if (h->hs == H_FIELD) {
        if (end_string(h) < 0)
            return -1;
        h->hoffs[h->nh - 1].value = h->head.len;
        h->hs = H_VALUE;
    }
    return ag_buf_append(&h->head, at, len) < 0 ? refuse(h, 431) : 0;
}

/* Ends the header block's strings and points hdrs at them. */
static int finish_head(ag__http *h)
{
    if (end_string(h) < 0)
        return -1;
    if (h->hs == H_FIELD) { /* a name without a value */
        h->hoffs[h->nh - 1].value = h->head.len;
        if (end_string(h) < 0)
            return -1;
    }
    const char *base = (const char *)h->head.data;
    for (size_t i = 0; i < h->nh; i++) {
        h->hdrs[i].name = base + h->hoffs[i].name;
        h->hdrs[i].value = base + h->hoffs[i].value;
    }
    return 0;
}

static const char *find_header(const ag__http *h, const char *name)
{
    for (size_t i = 0; i < h->nh; i++)
        if (strcasecmp(h->hdrs[i].name, name) == 0)
            return h->hdrs[i].value;
    return NULL;
}

static int on_headers_complete(http_parser *p)
{
    ag__http *h = p->data;
    if (finish_head(h) < 0)
        return -1;
    h->head_done = true;
    h->keep_alive = http_should_keep_alive(p) != 0;
    if (p->http_major != 1)
        return refuse(h, 505);
    if (p->http_minor >= 1 && !find_header(h, "host"))
        return refuse(h, 400); /* RFC 9112 3.2: a 1.1 request must name its host */
    bool has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length);
    if ((p->flags & F_CONTENTLENGTH) && !(p->flags & F_CHUNKED) && p->content_length > h->max_body)
        return refuse(h, 413);
    const char *expect = find_header(h, "expect");
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0)
            return refuse(h, 417);
        if (has_body && p->http_minor >= 1 &&
            ag_buf_append_str(&h->out, "HTTP/1.1 100 Continue\r\n\r\n") < 0)
            return refuse(h, 500);
    }
    http_parser_pause(p, 1); /* to count the head's bytes (see the top) */
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    ag__http *h = p->data;
    return ag_buf_append(&h->body, at, len) < 0 ? refuse(h, 413) : 0;
}

static int on_message_complete(http_parser *p)
{
    ag__http *h = p->data;
    h->msg_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- the feed loop ---------------------------------------------------------------------- */

/* The status for a parser error. */
static int error_status(ag__http *h, enum http_errno e)
{
    if (h->err_status)
        return h->err_status;
    if (e == HPE_HEADER_OVERFLOW)
        return 431;
    return 400;
}

size_t ag__http_feed(ag__http *h, const uint8_t *data, size_t len)
{
    size_t used = 0;
    while (used < len && !h->closing && h->out.len < AG__HTTP_OUT_HIGH) {
        size_t n = len - used;
        bool in_head = !h->head_done;
        if (in_head)
            n = AG_MIN(n, h->max_header + 1 - h->head_bytes); /* invariant 1 */
        size_t k = http_parser_execute(&h->p, &settings, (const char *)data + used, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&h->p);
        used += k;
        if (in_head)
            h->head_bytes += k;
        if (e != HPE_OK && e != HPE_PAUSED) {
            put_error(h, error_status(h, e));
            break;
        }
        if (in_head && h->head_bytes > h->max_header && !h->msg_done) {
            put_error(h, 431);
            break;
        }
        if (e == HPE_PAUSED)
            http_parser_pause(&h->p, 0);
        if (h->msg_done) {
            h->msg_done = false;
            h->in_msg = false;
            h->head_done = false;
            h->head_bytes = 0;
            respond(h);
            if (h->p.upgrade)
                h->closing = true; /* what follows is another protocol */
        }
    }
    return h->closing ? len : used;
}

void ag__http_eof(ag__http *h)
{
    h->closing = true;
}

void ag__http_timeout(ag__http *h)
{
    if (!h->closing && ag__http_busy(h))
        put_error(h, 408);
    h->closing = true;
}

const ag_buf *ag__http_out(const ag__http *h)
{
    return &h->out;
}

void ag__http_take_out(ag__http *h, ag_buf *dst)
{
    assert(dst->len == 0 && dst->max == h->out.max);
    ag_buf t = *dst;
    *dst = h->out;
    h->out = t;
}

bool ag__http_closing(const ag__http *h)
{
    return h->closing;
}

bool ag__http_busy(const ag__http *h)
{
    return h->in_msg || h->head_bytes > 0;
}

uint64_t ag__http_served(const ag__http *h)
{
    return h->served;
}
