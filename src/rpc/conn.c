/*
 * A connection: one HTTP/2 core (h2.c) over one libuv stream (TCP or a
 * unix socket), on its loop's thread.
 *
 * Reading: every read goes into the core, then whatever the core wants to
 * say is written. Writing: one uv_write in flight at a time, of up to 1 MiB
 * that the core produced; when it completes, the next. The connection
 * closes when the peer closes or breaks the protocol (after writing what
 * the core still has, such as a GOAWAY), or when its owner closes it; then
 * every call on it ends with the status given, the owner hears `closed`,
 * and the memory goes when libuv has closed the handle.
 */
#include <string.h>

#include "rt.h"

#define WRITE_CHUNK (1u << 20)

static void on_closed(uv_handle_t *h)
{
    ag__conn *c = h->data;
    ag_buf_cleanup(&c->wbuf);
    ag_free(c);
}

void ag__conn_close(ag__conn *c, int status, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    /* fail the calls first: their events must not reach a freed core */
    while (c->calls) {
        ag_rpc_call *call = c->calls;
        ag__call_on_done(call, NULL, status, why);
    }
    ag__h2conn_free(c->h2);
    c->h2 = NULL;
    if (c->ops && c->ops->closed)
        c->ops->closed(c->owner, c);
    uv_close((uv_handle_t *)&c->h.stream, on_closed);
}

static void on_write(uv_write_t *req, int status)
{
    ag__conn *c = req->data;
    c->writing = false;
    ag_buf_reset(&c->wbuf);
    if (status < 0) {
        ag__conn_close(c, AG_RPC_UNAVAILABLE, uv_strerror(status));
        return;
    }
    ag__conn_flush(c);
}

void ag__conn_flush(ag__conn *c)
{
    if (c->closing || c->writing || !c->h2)
        return;
    int rc = ag__h2conn_send(c->h2, &c->wbuf, WRITE_CHUNK);
    if (rc < 0) {
        ag__conn_close(c, AG_RPC_INTERNAL, ag__h2conn_errmsg(c->h2));
        return;
    }
    ag__conn_update_senders(c);
    if (c->wbuf.len == 0) {
        if (!ag__h2conn_alive(c->h2) || !c->reading || c->draining)
            ag__conn_close(c, AG_RPC_UNAVAILABLE, !c->reading ? ag__h2conn_errmsg(c->h2)
                                                              : "the connection was shut down");
        return;
    }
    uv_buf_t b = uv_buf_init((char *)c->wbuf.data, (unsigned)c->wbuf.len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, &c->h.stream, &b, 1, on_write) != 0) {
        ag__conn_close(c, AG_RPC_UNAVAILABLE, "write failed");
        return;
    }
    c->writing = true;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    ag__conn *c = h->data;
    *buf = uv_buf_init((char *)c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    ag__conn *c = s->data;
    if (n == 0 || c->closing)
        return;
    if (n < 0) {
        ag__conn_close(c, AG_RPC_UNAVAILABLE,
                       n == UV_EOF ? "the peer closed the connection" : uv_strerror((int)n));
        return;
    }
    if (ag__h2conn_recv(c->h2, c->rbuf, (size_t)n) < 0) {
        /* say goodbye (nghttp2 queued a GOAWAY), then close */
        uv_read_stop(&c->h.stream);
        c->reading = false;
    }
    ag__conn_flush(c);
}

void ag__conn_drain(ag__conn *c)
{
    c->draining = true;
    ag__conn_flush(c);
}

int ag__conn_start(ag__conn *c)
{
    ag_buf_init(&c->wbuf, WRITE_CHUNK + (64u << 10));
    c->h.stream.data = c;
    if (c->h.stream.type == UV_TCP)
        uv_tcp_nodelay(&c->h.tcp, 1);
    if (uv_read_start(&c->h.stream, on_alloc, on_read) != 0)
        return AG_E_SYS;
    c->reading = true;
    ag__conn_flush(c); /* the SETTINGS (and the client's preface) */
    return 0;
}
