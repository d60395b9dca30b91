/*
 * The mesh's transport: one TCP connection, plaintext or TLS (the rpc
 * layer's I/O-free TLS core, tls.h), under a protocol core that only
 * produces and consumes bytes (an nghttp2 session, an HTTP/1.1 parser).
 *
 * Reading goes straight into the core (decrypted first under TLS); the
 * read buffer is one per loop thread, since a read is consumed before the
 * next. Writing: xport_flush pulls what the core has to say (up to 256 KiB
 * at a time), encrypts it under TLS and tries a synchronous write first;
 * what the kernel does not take goes out with one uv_write, and the next
 * pull waits for its callback. So a short answer costs one system call and
 * no extra loop turn, and a slow peer stops the core's output at one
 * buffer (nghttp2 then holds the rest, within HTTP/2's flow control).
 *
 * Closing: xport_close stops everything at once; xport_drain once the
 * output is written. Either way ops->closed runs once, then the handles
 * close, and ops->closed runs from the last one's close callback: the
 * transport is embedded in its owner, which may free itself there.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define PRODUCE_MAX (256u << 10)
#define WBUF_MAX (PRODUCE_MAX + (64u << 10))

/* A host name being resolved: the request outlives a transport closed
 * meanwhile (x NULL then; the callback only frees it). */
struct resolve {
    uv_getaddrinfo_t req;
    xport *x;
    uint16_t port;
};

static _Thread_local uint8_t rbuf[64 << 10];
/* Transports marked for a flush at the end of the loop turn. */
static _Thread_local xport *marked_head;

void xport_mark(xport *x)
{
    if (x->marked || x->closing)
        return;
    x->marked = true;
    x->mprev = NULL;
    x->mnext = marked_head;
    if (marked_head)
        marked_head->mprev = x;
    marked_head = x;
}

static void unmark(xport *x)
{
    if (!x->marked)
        return;
    x->marked = false;
    if (x->mprev)
        x->mprev->mnext = x->mnext;
    else
        marked_head = x->mnext;
    if (x->mnext)
        x->mnext->mprev = x->mprev;
    x->mnext = x->mprev = NULL;
}

void xport_flush_marked(void)
{
    /* a flush may mark others (or the same one again): until none is left */
    while (marked_head) {
        xport *x = marked_head;
        unmark(x);
        xport_flush(x);
    }
}

void xport_init(xport *x, uv_loop_t *loop, const xport_ops *ops, void *owner)
{
    memset(x, 0, sizeof(*x));
    x->loop = loop;
    x->ops = ops;
    x->owner = owner;
    ag_buf_init(&x->wbuf, WBUF_MAX + (1u << 20));
    ag_buf_init(&x->pbuf, WBUF_MAX);
}

static void on_handle_closed(uv_handle_t *h)
{
    xport *x = h->data;
    if (--x->handles > 0)
        return;
    ag__tls_free(x->tls);
    x->tls = NULL;
    ag_buf_cleanup(&x->wbuf);
    ag_buf_cleanup(&x->pbuf);
    x->ops->closed(x, x->why[0] ? x->why : "closed");
}

void xport_close(xport *x, const char *why)
{
    if (x->closing)
        return;
    x->closing = true;
    unmark(x);
    if (why && !x->why[0])
        snprintf(x->why, sizeof(x->why), "%s", why);
    if (x->resolving) {
        x->resolving->x = NULL;
        uv_cancel((uv_req_t *)&x->resolving->req);
        x->resolving = NULL;
    }
    x->handles = 1;
    if (x->timer_on) {
        x->timer_on = false;
        uv_timer_stop(&x->timer);
    }
    x->handles++;
    uv_close((uv_handle_t *)&x->timer, on_handle_closed);
    uv_close((uv_handle_t *)&x->tcp, on_handle_closed);
}

void xport_drain(xport *x)
{
    x->drain = true;
    xport_flush(x);
}

const char *xport_peer_identity(const xport *x)
{
    return x->tls ? ag__tls_peer_identity(x->tls) : NULL;
}

static void fail(xport *x, const char *what, const char *detail)
{
    if (!x->why[0])
        snprintf(x->why, sizeof(x->why), "%s: %s", what, detail);
    xport_close(x, NULL);
}

static void on_write(uv_write_t *req, int status);

/* Writes wbuf: synchronously what the kernel takes, the rest with uv_write. */
static void write_out(xport *x)
{
    while (x->wbuf.len > 0) {
        uv_buf_t b = uv_buf_init((char *)x->wbuf.data, (unsigned)x->wbuf.len);
        int n = uv_try_write((uv_stream_t *)&x->tcp, &b, 1);
        if (n > 0) {
            ag_buf_consume(&x->wbuf, (size_t)n);
            continue;
        }
        if (n == UV_EAGAIN || n == UV_ENOSYS)
            break;
        fail(x, "write", uv_strerror(n));
        return;
    }
    if (x->wbuf.len == 0)
        return;
    uv_buf_t b = uv_buf_init((char *)x->wbuf.data, (unsigned)x->wbuf.len);
    x->wreq.data = x;
    int rc = uv_write(&x->wreq, (uv_stream_t *)&x->tcp, &b, 1, on_write);
    if (rc < 0) {
        fail(x, "write", uv_strerror(rc));
        return;
    }
    x->writing = true;
}

void xport_flush(xport *x)
{
    unmark(x);
    if (x->closing || x->writing || !x->connected)
        return;
    for (;;) {
        if (x->secure) {
            ag_buf *dst = x->tls ? &x->pbuf : &x->wbuf;
            while (dst->len < PRODUCE_MAX) {
                size_t was = dst->len;
                if (x->ops->produce(x, dst) < 0) {
                    fail(x, "protocol", "the core failed");
                    return;
                }
                if (dst->len == was)
                    break;
            }
            if (x->tls && x->pbuf.len > 0) {
                if (ag__tls_write(x->tls, x->pbuf.data, x->pbuf.len) < 0) {
                    fail(x, "TLS", ag__tls_errmsg(x->tls));
                    return;
                }
                ag_buf_reset(&x->pbuf);
            }
        }
        if (x->tls && ag__tls_take_output(x->tls, &x->wbuf) < 0) {
            fail(x, "TLS", "output too large");
            return;
        }
        if (x->wbuf.len == 0)
            break;
        write_out(x);
        if (x->closing || x->writing)
            return;
    }
    if (x->drain && !x->writing)
        xport_close(x, NULL);
}

static void on_write(uv_write_t *req, int status)
{
    xport *x = req->data;
    x->writing = false;
    if (x->closing)
        return;
    if (status < 0) {
        fail(x, "write", uv_strerror(status));
        return;
    }
    ag_buf_reset(&x->wbuf);
    xport_flush(x);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    *b = uv_buf_init((char *)rbuf, sizeof(rbuf));
}

static void became_secure(xport *x)
{
    x->secure = true;
    if (x->timer_on) {
        x->timer_on = false;
        uv_timer_stop(&x->timer);
    }
    if (x->ops->up)
        x->ops->up(x);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    xport *x = s->data;
    if (x->closing)
        return;
    if (n < 0) {
        if (n == UV_EOF)
            xport_close(x, "the peer closed the connection");
        else
            fail(x, "read", uv_strerror((int)n));
        return;
    }
    if (n == 0)
        return;
    if (x->quickack) {
        /* an HTTP/1.1 endpoint that writes a response in small pieces
         * (a status line, then headers, then a body) would otherwise wait
         * on our delayed ACK under Nagle: 40 ms a response */
        uv_os_fd_t fd;
        int one = 1;
        if (uv_fileno((uv_handle_t *)&x->tcp, &fd) == 0)
            setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    }
    if (!x->tls) {
        if (x->ops->recv(x, (const uint8_t *)b->base, (size_t)n) < 0) {
            xport_drain(x);
            return;
        }
        xport_flush(x);
        return;
    }
    if (ag__tls_feed(x->tls, (const uint8_t *)b->base, (size_t)n) < 0) {
        fail(x, "TLS", "out of memory");
        return;
    }
    if (!x->secure) {
        int rc = ag__tls_handshake(x->tls);
        if (rc < 0) {
            snprintf(x->why, sizeof(x->why), "TLS handshake: %s", ag__tls_errmsg(x->tls));
            xport_drain(x);  /* the alert goes out */
            return;
        }
        if (rc == 0) {
            xport_flush(x);
            return;
        }
        became_secure(x);
        if (x->closing)
            return;
    }
    /* TLS records into the core, one plaintext chunk at a time (the
     * shared buffer is free again: the ciphertext was copied in) */
    for (;;) {
        ssize_t got = ag__tls_read(x->tls, rbuf, sizeof(rbuf));
        if (got == 0)
            break;
        if (got == AG_E_CLOSED) {
            xport_drain(x);
            return;
        }
        if (got < 0) {
            fail(x, "TLS", ag__tls_errmsg(x->tls));
            return;
        }
        if (x->ops->recv(x, rbuf, (size_t)got) < 0) {
            xport_drain(x);
            return;
        }
        if (x->closing)
            return;
    }
    xport_flush(x);
}

static void on_timer(uv_timer_t *t);

void xport_set_timeout(xport *x, uint64_t ms, void (*fn)(xport *x))
{
    if (x->closing || !x->secure)
        return;
    if (x->timer_on) {
        x->timer_on = false;
        uv_timer_stop(&x->timer);
    }
    x->timeout_fn = fn;
    if (fn && ms > 0) {
        x->timer_on = true;
        uv_timer_start(&x->timer, on_timer, ms, 0);
    }
}

void xport_pause(xport *x, bool paused)
{
    if (x->closing || x->paused == paused)
        return;
    x->paused = paused;
    if (paused)
        uv_read_stop((uv_stream_t *)&x->tcp);
    else if (x->connected)
        uv_read_start((uv_stream_t *)&x->tcp, on_alloc, on_read);
}

static void on_timer(uv_timer_t *t)
{
    xport *x = t->data;
    x->timer_on = false;
    if (x->secure && x->timeout_fn) {
        void (*fn)(xport *) = x->timeout_fn;
        x->timeout_fn = NULL;
        fn(x);
        return;
    }
    if (x->client && !x->connected)
        fail(x, "connect", "timed out");
    else
        fail(x, "TLS handshake", "timed out");
}

static void set_peer(xport *x)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[64] = "?";
    int port = 0;
    int rc = uv_tcp_getpeername(&x->tcp, (struct sockaddr *)&ss, &len);
    if (rc == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, host, sizeof(host));
            port = ntohs(a->sin6_port);
            snprintf(x->peer, sizeof(x->peer), "[%s]:%d", host, port);
            return;
        }
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, host, sizeof(host));
        port = ntohs(a->sin_port);
    }
    snprintf(x->peer, sizeof(x->peer), "%s:%d", host, port);
}

static int start(xport *x, const ag__tls_ctx *tls_ctx, uint64_t hs_timeout_ms)
{
    x->connected = true;
    uv_tcp_nodelay(&x->tcp, 1);
    set_peer(x);
    if (tls_ctx) {
        x->tls = ag__tls_new(tls_ctx);
        if (!x->tls) {
            fail(x, "TLS", "out of memory");
            return AG_E_NOMEM;
        }
        if (x->client && ag__tls_handshake(x->tls) < 0) {
            fail(x, "TLS handshake", ag__tls_errmsg(x->tls));
            return AG_E_RPC_TLS;
        }
        if (hs_timeout_ms > 0 && !x->timer_on) {
            x->timer_on = true;
            uv_timer_start(&x->timer, on_timer, hs_timeout_ms, 0);
        }
    }
    int rc = uv_read_start((uv_stream_t *)&x->tcp, on_alloc, on_read);
    if (rc < 0) {
        fail(x, "read", uv_strerror(rc));
        return AG_E_IO;
    }
    if (!x->tls)
        became_secure(x);
    xport_flush(x);
    return 0;
}

int xport_accept(xport *x, uv_stream_t *listener, const ag__tls_ctx *tls_ctx,
                 uint64_t handshake_timeout_ms)
{
    uv_tcp_init(x->loop, &x->tcp);
    uv_timer_init(x->loop, &x->timer);
    x->tcp.data = x;
    x->timer.data = x;
    int rc = uv_accept(listener, (uv_stream_t *)&x->tcp);
    if (rc < 0) {
        fail(x, "accept", uv_strerror(rc));
        return AG_E_IO;
    }
    return start(x, tls_ctx, handshake_timeout_ms);
}

/* ---- connecting ----------------------------------------------------------------------- */


static void connect_done(uv_connect_t *req, int status)
{
    xport *x = req->data;
    if (x->closing)
        return;
    if (status < 0) {
        fail(x, "connect", uv_strerror(status));
        return;
    }
    if (x->timer_on) {
        x->timer_on = false;
        uv_timer_stop(&x->timer);
    }
    start(x, x->cctx, x->ctimeout_ms);
}

static int connect_addr(xport *x, const struct sockaddr *sa)
{
    x->creq.data = x;
    int rc = uv_tcp_connect(&x->creq, &x->tcp, sa, connect_done);
    if (rc < 0) {
        fail(x, "connect", uv_strerror(rc));
        return AG_E_IO;
    }
    return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    struct resolve *r = req->data;
    xport *x = r->x;
    uint16_t port = r->port;
    ag_free(r);
    if (!x) {
        uv_freeaddrinfo(ai);
        return;
    }
    x->resolving = NULL;
    if (status < 0 || !ai) {
        uv_freeaddrinfo(ai);
        fail(x, "resolve", status < 0 ? uv_strerror(status) : "no address");
        return;
    }
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
    uv_freeaddrinfo(ai);
    connect_addr(x, (const struct sockaddr *)&ss);
}

int xport_connect(xport *x, const char *host, uint16_t port, const ag__tls_ctx *tls_ctx,
                  uint64_t timeout_ms)
{
    x->client = true;
    uv_tcp_init(x->loop, &x->tcp);
    uv_timer_init(x->loop, &x->timer);
    x->tcp.data = x;
    x->timer.data = x;
    x->cctx = tls_ctx;
    x->ctimeout_ms = timeout_ms;
    snprintf(x->peer, sizeof(x->peer), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    if (timeout_ms > 0) {
        x->timer_on = true;
        uv_timer_start(&x->timer, on_timer, timeout_ms, 0);
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0)
        return connect_addr(x, (const struct sockaddr *)&ss);
    struct resolve *r = ag_calloc(1, sizeof(*r));
    if (!r) {
        fail(x, "resolve", "out of memory");
        return AG_E_NOMEM;
    }
    r->x = x;
    r->port = port;
    r->req.data = r;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(x->loop, &r->req, on_resolved, host, NULL, &hints);
    if (rc < 0) {
        ag_free(r);
        fail(x, "resolve", uv_strerror(rc));
        return AG_E_IO;
    }
    x->resolving = r;
    return 0;
}
