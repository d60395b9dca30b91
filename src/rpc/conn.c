/*
 * A connection: one HTTP/2 core (h2.c) over one libuv stream (TCP or a
 * unix socket), plaintext or through TLS (tls.c), on its loop's thread.
 *
 * Reading: every read goes into the core (with TLS: into the TLS state,
 * which advances the handshake and then decrypts records for the core),
 * then whatever the core and TLS want to say is written. Writing: one
 * uv_write in flight at a time, of up to 1 MiB that the core produced
 * (encrypted, with TLS); when it completes, the next. The connection
 * closes when the peer closes or breaks the protocol (after writing what
 * the core still has, such as a GOAWAY), or when its owner closes it; then
 * every call on it ends with the status given, the owner hears `closed`,
 * and the memory goes when libuv has closed the handle.
 *
 * TLS, in three steps:
 *   1. handshaking: only TLS's own bytes flow; the core's (its SETTINGS, a
 *      client's requests) wait in the core. A client starts by sending its
 *      ClientHello.
 *   2. secure: the handshake is done (ALPN h2, certificates verified); the
 *      core's bytes flow, encrypted.
 *   3. client only, ready: the server's first bytes came through; the
 *      owner (channel.c) hears `ready` and starts calls. Waiting for them
 *      matters with TLS 1.3, where a server refuses a client's certificate
 *      only after the client has finished its side of the handshake: that
 *      refusal then fails the connection before any call is on it.
 * A TLS failure stops reading, writes the alert OpenSSL queued, then closes
 * with the reason ("TLS handshake: certificate verify failed: hostname
 * mismatch"). Closing a secure connection sends close_notify first.
 */
#include <stdio.h>
#include <string.h>

#include "rt.h"

#define WRITE_CHUNK (1u << 20)
/* The core's bytes per write (WRITE_CHUNK and the last frame) ... */
#define PBUF_MAX (WRITE_CHUNK + (64u << 10))
/* ... and once encrypted (22 bytes per 16 KiB record), with handshake
 * messages and alerts. */
#define WBUF_MAX (PBUF_MAX + (192u << 10))

static void on_closed(uv_handle_t *h)
{
    ag__conn *c = h->data;
    if (--c->handles > 0)
        return;
    ag__tls_free(c->tls);
    ag_buf_cleanup(&c->pbuf);
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
    c->too_many_pings = c->h2 && ag__h2conn_told_too_many_pings(c->h2);
    ag__h2conn_free(c->h2);
    c->h2 = NULL;
    if (c->ops && c->ops->closed)
        c->ops->closed(c->owner, c, status, why);
    c->handles = 1;
    if (c->ka_on) {
        c->ka_on = false;
        c->handles++;
        uv_timer_stop(&c->ka_timer);
        uv_close((uv_handle_t *)&c->ka_timer, on_closed);
    }
    uv_close((uv_handle_t *)&c->h.stream, on_closed);
}

static void peer_name(ag__conn *c, char *buf, size_t cap);

/* ---- keepalive -------------------------------------------------------------------- */

/* After ka_time_ms without a byte from the peer, a PING (with calls open,
 * or always when ka_without_calls); no ACK within ka_timeout_ms closes the
 * connection, so its calls fail instead of waiting on a dead peer. */
static void on_keepalive(uv_timer_t *t)
{
    ag__conn *c = t->data;
    if (c->closing || !c->h2)
        return;
    uint64_t now = ag_now_ns();
    if (c->hs_timeout_ms && !c->established) {
        uint64_t age = (now - c->start_ns) / 1000000u;
        if (age >= c->hs_timeout_ms) {
            char why[128];
            snprintf(why, sizeof(why), "the client did not %s within %llu ms",
                     c->tls && !c->secure ? "complete its TLS handshake" : "start HTTP/2",
                     (unsigned long long)c->hs_timeout_ms);
            if (ag_log_get_level() <= AG_LOG_INFO) {
                char peer[80];
                peer_name(c, peer, sizeof(peer));
                AG_LOG(AG_LOG_INFO, "rpc", "handshake_timeout peer=%s why=\"%s\"", peer, why);
            }
            ag__conn_close(c, AG_RPC_UNAVAILABLE, why);
            return;
        }
        uint64_t left = c->hs_timeout_ms - age;
        uint64_t ka_left = c->ka_time_ms ? c->ka_time_ms : left;
        uv_timer_start(t, on_keepalive, left < ka_left ? left : ka_left, 0);
        return;
    }
    if (!c->ka_time_ms) { /* the timer was only for the handshake */
        uv_timer_stop(t);
        return;
    }
    if (c->ping_sent_ns && ag__h2conn_ping_outstanding(c->h2)) {
        uint64_t waited = (now - c->ping_sent_ns) / 1000000u;
        if (waited >= c->ka_timeout_ms) {
            char why[128];
            snprintf(why, sizeof(why), "keepalive: the peer did not answer a ping within %llu ms",
                     (unsigned long long)c->ka_timeout_ms);
            ag__conn_close(c, AG_RPC_UNAVAILABLE, why);
            return;
        }
        uv_timer_start(t, on_keepalive, c->ka_timeout_ms - waited, 0);
        return;
    }
    c->ping_sent_ns = 0;
    uint64_t idle = (now - c->last_read_ns) / 1000000u;
    if (idle < c->ka_time_ms) {
        uv_timer_start(t, on_keepalive, c->ka_time_ms - idle, 0);
        return;
    }
    if ((c->calls || c->ka_without_calls) && ag__h2conn_ping(c->h2) == 0) {
        c->ping_sent_ns = now;
        ag__conn_flush(c);
        uv_timer_start(t, on_keepalive, c->ka_timeout_ms, 0);
        return;
    }
    uv_timer_start(t, on_keepalive, c->ka_time_ms, 0);
}

/* ---- TLS ------------------------------------------------------------------------ */

/* Is the connection still in its handshake, as its calls see it? */
static bool handshaking(const ag__conn *c)
{
    return c->tls && (!c->secure || (c->client && !c->ready));
}

/* The reason a TLS connection failed, for its calls and its owner. */
static const char *tls_why(const ag__conn *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s: %s", handshaking(c) ? "TLS handshake" : "TLS",
             ag__tls_errmsg(c->tls));
    return buf;
}

/* "10.0.0.2:51234", for logs. */
static void peer_name(ag__conn *c, char *buf, size_t cap)
{
    struct sockaddr_storage ss = {.ss_family = AF_INET};
    int len = sizeof(ss);
    char ip[64] = "?";
    int port = 0;
    if (c->h.stream.type != UV_TCP) {
        snprintf(buf, cap, "unix");
        return;
    }
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(buf, cap, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

/* TLS failed (the reason is in the TLS state): stop taking bytes, and
 * close once the alert is written. A server logs it, having no call to
 * tell; a client's calls and owner hear it at the close. */
static int tls_fail(ag__conn *c)
{
    c->tls_failed = true;
    ag_log_level lvl = c->client ? AG_LOG_DEBUG : AG_LOG_INFO;
    if (ag_log_get_level() <= lvl) {
        char peer[80], why[AG_ERRMSG_MAX + 32];
        peer_name(c, peer, sizeof(peer));
        AG_LOG(lvl, "rpc", "tls_failed peer=%s why=\"%s\"", peer, tls_why(c, why, sizeof(why)));
    }
    return AG_E_RPC_TLS;
}

/* Ciphertext from the socket (in rbuf): the handshake, then records into
 * the core. Returns 0; AG_E_CLOSED when the peer said close_notify (close
 * now); or another code: stop reading, write what is left (TLS's alert
 * when c->tls_failed, the core's GOAWAY otherwise), then close. */
static int tls_recv(ag__conn *c, size_t n)
{
    if (ag__tls_feed(c->tls, c->rbuf, n) < 0)
        return tls_fail(c);
    if (!c->secure) {
        int rc = ag__tls_handshake(c->tls);
        if (rc < 0)
            return tls_fail(c);
        if (rc == 0)
            return 0;
        c->secure = true;
    }
    uint8_t plain[16 * 1024]; /* one TLS record */
    while (!c->closing) { /* `ready` may have closed it (its flush failed) */
        ssize_t m = ag__tls_read(c->tls, plain, sizeof(plain));
        if (m == 0)
            return 0;
        if (m == AG_E_CLOSED)
            return AG_E_CLOSED;
        if (m < 0)
            return tls_fail(c);
        if (ag__h2conn_recv(c->h2, plain, (size_t)m) < 0)
            return AG_E_RPC_PROTOCOL;
        if (c->client && !c->ready) {
            c->ready = true;
            if (c->ops && c->ops->ready)
                c->ops->ready(c->owner, c);
        }
    }
    return 0;
}

/* ---- writing ---------------------------------------------------------------------- */

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

/* Fills wbuf with what to write next; on failure, closes the connection
 * and returns a negative code. */
static int fill(ag__conn *c)
{
    if (!c->tls) {
        int rc = ag__h2conn_send(c->h2, &c->wbuf, WRITE_CHUNK);
        if (rc < 0)
            ag__conn_close(c, AG_RPC_INTERNAL, ag__h2conn_errmsg(c->h2));
        return rc;
    }
    if (c->secure && !c->tls_failed && !c->tls_shut) {
        int rc = ag__h2conn_send(c->h2, &c->pbuf, WRITE_CHUNK);
        if (rc < 0) {
            ag__conn_close(c, AG_RPC_INTERNAL, ag__h2conn_errmsg(c->h2));
            return rc;
        }
        rc = ag__tls_write(c->tls, c->pbuf.data, c->pbuf.len);
        ag_buf_reset(&c->pbuf);
        if (rc < 0) {
            char why[AG_ERRMSG_MAX + 32];
            ag__conn_close(c, AG_RPC_UNAVAILABLE, tls_why(c, why, sizeof(why)));
            return rc;
        }
    }
    int rc = ag__tls_take_output(c->tls, &c->wbuf);
    if (rc < 0)
        ag__conn_close(c, AG_RPC_INTERNAL, rc == AG_E_NOMEM ? "TLS: out of memory"
                                                            : "TLS: output over its limit");
    return rc;
}

/* Nothing is left to write: closes the connection if it is over. */
static void close_if_over(ag__conn *c)
{
    char why[AG_ERRMSG_MAX + 32];
    if (c->tls && c->tls_failed) {
        ag__conn_close(c, AG_RPC_UNAVAILABLE, tls_why(c, why, sizeof(why)));
        return;
    }
    if (c->tls && !c->secure) { /* no core to wait for yet */
        if (c->draining)
            ag__conn_close(c, AG_RPC_UNAVAILABLE, "the connection was shut down");
        return;
    }
    if (ag__h2conn_alive(c->h2) && c->reading && !c->draining)
        return;
    if (c->tls && !c->tls_shut) { /* close_notify, then close */
        c->tls_shut = true;
        ag__tls_shutdown(c->tls);
        ag__conn_flush(c);
        return;
    }
    ag__conn_close(c, AG_RPC_UNAVAILABLE,
                   !c->reading ? ag__h2conn_errmsg(c->h2) : "the connection was shut down");
}

/* Writes what the core has to say: straight to the socket while it takes
 * it (uv_try_write: no waiting for the next loop turn, so a reply goes out
 * at once and a stream keeps the socket busy), up to FLUSH_ROUNDS buffers
 * per turn so other connections get theirs; the rest goes through one
 * uv_write, and on_write comes back for more. */
#define FLUSH_ROUNDS 8

void ag__conn_flush(ag__conn *c)
{
    if (c->closing || c->writing || !c->h2)
        return;
    for (int round = 0;; round++) {
        if (fill(c) < 0)
            return;
        ag__conn_update_senders(c);
        if (c->wbuf.len == 0) {
            close_if_over(c);
            return;
        }
        size_t off = 0;
        if (round < FLUSH_ROUNDS) {
            uv_buf_t t = uv_buf_init((char *)c->wbuf.data, (unsigned)c->wbuf.len);
            int w = uv_try_write(&c->h.stream, &t, 1);
            if (w < 0 && w != UV_EAGAIN) {
                ag__conn_close(c, AG_RPC_UNAVAILABLE, uv_strerror(w));
                return;
            }
            if (w == (int)c->wbuf.len) {
                ag_buf_reset(&c->wbuf);
                continue;
            }
            off = w > 0 ? (size_t)w : 0;
        }
        uv_buf_t b = uv_buf_init((char *)c->wbuf.data + off, (unsigned)(c->wbuf.len - off));
        c->wreq.data = c;
        if (uv_write(&c->wreq, &c->h.stream, &b, 1, on_write) != 0) {
            ag__conn_close(c, AG_RPC_UNAVAILABLE, "write failed");
            return;
        }
        c->writing = true;
        return;
    }
}

/* ---- reading ------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    ag__conn *c = h->data;
    *buf = uv_buf_init((char *)c->rbuf, sizeof(c->rbuf));
}

/* A TLS record's header (handshake or alert, version 3.x): what a TLS peer
 * sends first. No HTTP/2 peer can: its first frame would be over 1 MiB. */
static bool looks_like_tls(const uint8_t *p, size_t n)
{
    return n >= 3 && (p[0] == 0x15 || p[0] == 0x16) && p[1] == 0x03 && p[2] <= 0x04;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    ag__conn *c = s->data;
    if (n == 0 || c->closing)
        return;
    if (n < 0) {
        const char *why = n == UV_EOF ? "the peer closed the connection" : uv_strerror((int)n);
        char msg[160];
        if (handshaking(c)) {
            snprintf(msg, sizeof(msg), "TLS handshake: %s", why);
            why = msg;
        } else if (c->client && !c->tls && !c->seen_bytes) {
            /* every HTTP/2 server speaks first (SETTINGS); a TLS server
             * drops a plaintext client without a word */
            snprintf(msg, sizeof(msg), "%s before sending anything (does it expect TLS?)", why);
            why = msg;
        }
        ag__conn_close(c, AG_RPC_UNAVAILABLE, why);
        return;
    }
    if (!c->seen_bytes && !c->tls && looks_like_tls(c->rbuf, (size_t)n)) {
        ag__conn_close(c, AG_RPC_UNAVAILABLE,
                       c->client ? "the server speaks TLS and this channel does not"
                                 : "the client speaks TLS and this server does not");
        return;
    }
    c->seen_bytes = true;
    if (c->ka_on)
        c->last_read_ns = ag_now_ns();
    int rc = c->tls ? tls_recv(c, (size_t)n) : ag__h2conn_recv(c->h2, c->rbuf, (size_t)n);
    if (rc == 0 && !c->established && c->h2 && ag__h2conn_got_preface(c->h2))
        c->established = true;
    if (c->closing)
        return;
    if (rc == AG_E_CLOSED) {
        ag__conn_close(c, AG_RPC_UNAVAILABLE, "the peer closed the connection");
        return;
    }
    if (rc < 0) {
        /* say goodbye (nghttp2 queued a GOAWAY, OpenSSL an alert), then close */
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
    ag_buf_init(&c->wbuf, WBUF_MAX);
    ag_buf_init(&c->pbuf, PBUF_MAX);
    c->h.stream.data = c;
    if (c->tls && c->client && ag__tls_handshake(c->tls) < 0) /* the ClientHello */
        return AG_E_RPC_TLS;
    if (c->h.stream.type == UV_TCP)
        uv_tcp_nodelay(&c->h.tcp, 1);
    if (uv_read_start(&c->h.stream, on_alloc, on_read) != 0)
        return AG_E_SYS;
    c->reading = true;
    c->start_ns = ag_now_ns();
    if ((c->ka_time_ms || c->hs_timeout_ms) && uv_timer_init(&c->loop->uv, &c->ka_timer) == 0) {
        c->ka_on = true;
        c->ka_timer.data = c;
        c->last_read_ns = c->start_ns;
        if (!c->ka_timeout_ms)
            c->ka_timeout_ms = 20000;
        uint64_t first = c->ka_time_ms;
        if (c->hs_timeout_ms && (!first || c->hs_timeout_ms < first))
            first = c->hs_timeout_ms;
        uv_timer_start(&c->ka_timer, on_keepalive, first, 0);
    }
    ag__conn_flush(c); /* the SETTINGS (and the client's preface), or the ClientHello */
    return 0;
}
