/*
 * gRPC over one HTTP/2 connection, as a protocol core (see h2.h): an
 * nghttp2 session driven by nghttp2_session_mem_recv / mem_send, and the
 * gRPC rules on top of it.
 *
 * A call's life, server side: request HEADERS start it (on_begin_headers);
 * each header is checked as it comes (on_header); when the block is complete
 * (on_frame_recv) the request is validated (POST, application/grpc, a
 * well-formed grpc-timeout, a known grpc-encoding, headers within the limit)
 * and offered to the owner (call_begin), or refused with a trailers-only
 * response; DATA goes through the deframer into `message` events; the
 * owner's ag__h2call_finish sends the status in trailers after the queued
 * messages (or trailers-only, if nothing was sent); the stream's close
 * delivers `done`. If trailers go out while the client is still sending,
 * RST_STREAM NO_ERROR follows them (PROTOCOL-HTTP2.md, early server
 * closure).
 *
 * Client side: ag__h2conn_call_start submits the request HEADERS with a
 * data provider; the response's first HEADERS are headers (or, with
 * END_STREAM, trailers-only), the second are trailers; the final status at
 * stream close is, in order: one decided locally (cancel, deadline, message
 * too large), the grpc-status received, one mapped from a non-200 HTTP
 * status, one mapped from RST_STREAM's code, or INTERNAL.
 *
 * Outgoing messages wait in a per-call queue of chunks (prefix + payload);
 * the data provider copies from it and defers when it is empty, and any
 * queueing resumes it. Flow control is manual (no automatic WINDOW_UPDATE):
 * received bytes are given back at once unless the owner paused the call.
 *
 * Runs on one thread (the connection's loop thread); not thread-safe.
 */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>

#include "h2.h"

#define USER_AGENT "grpc-c-argot/" AG_VERSION
#define ACCEPT_ENCODING "identity,deflate,gzip"

/* A queued message: its 5-byte prefix, then its body (owned). */
struct chunk {
    struct chunk *next;
    size_t len;                     /* prefix + body */
    size_t off;                     /* bytes already handed to nghttp2 */
    uint8_t *body;
    uint8_t prefix[AG__GRPC_PREFIX];
};

static void chunk_free(struct chunk *k)
{
    ag_free(k->body);
    ag_free(k);
}

struct ag__h2call {
    ag__h2conn *conn;
    struct ag__h2call *prev, *next; /* the connection's list of calls */
    int32_t id;
    void *owner;
    char *method;
    uint64_t timeout_ns;
    ag__grpc_encoding recv_enc;  /* encoding of the messages we receive */
    ag__grpc_encoding send_enc;  /* encoding we compress with */
    unsigned accept_enc;         /* server: what the client accepts (1 << encoding) */
    bool last_compressed;        /* the message being delivered came compressed */
    ag__md_list md;              /* server: request; client: response headers */
    ag__md_list trailers;        /* client: trailers */
    size_t header_bytes;         /* received header list, as HTTP/2 counts it */
    bool headers_too_large;
    int http_status;             /* client: :status; server: 0 */
    bool post;                   /* server: :method is POST */
    bool content_type_ok;
    char *bad_timeout;           /* server: a malformed grpc-timeout, kept for the message */
    char *bad_encoding;          /* an unknown grpc-encoding, kept for the message */
    bool saw_headers;            /* client: the first response HEADERS arrived */
    bool has_status;             /* client: grpc-status received / server: status set */
    int status;
    char *status_msg;
    bool local_status;           /* client: the status was decided here */
    ag__deframer d;
    struct chunk *q_head, *q_tail;
    size_t q_bytes;              /* bytes in the queue, not yet handed to nghttp2 */
    bool deferred;               /* the data provider is waiting for data */
    bool send_closed;            /* client: END_STREAM after the queue */
    bool finishing;              /* server: trailers after the queue */
    ag__md_list fin_trailers;
    bool headers_sent;           /* server: response HEADERS submitted */
    bool trailers_sent;          /* server: the status went out */
    bool remote_closed;          /* the peer sent END_STREAM */
    bool started;                /* server: the owner took the call */
    bool done;                   /* `done` delivered */
    bool paused;
    size_t unconsumed;           /* bytes held back from the peer's window */
};

struct ag__h2conn {
    nghttp2_session *s;
    bool server;
    ag__h2_opts o;
    ag__h2_events ev;
    void *ud;
    ag__h2call *calls;           /* open calls, newest first */
    size_t ncalls;
    char authority[256];
    char scheme[8];
    ag_errbuf err;
    /* pings (doc/keepalive.md) */
    bool ping_out;               /* our PING waits for its ACK */
    unsigned ping_strikes;       /* server: pings that came too soon */
    uint64_t last_ping_ns;       /* server: when the last one came (0: none since data) */
    bool calm_down;              /* server: too many pings, GOAWAY sent: end the connection */
    bool told_too_many_pings;    /* client: the server's GOAWAY said too_many_pings */
    bool got_preface;            /* a first frame (the peer's SETTINGS) arrived */
};

/* ---- metadata lists -------------------------------------------------------- */

int ag__md_add(ag__md_list *l, const char *key, size_t klen, const void *value, size_t len)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        ag__md *nv = ag_reallocarray(l->v, ncap, sizeof(*nv));
        if (!nv)
            return AG_E_NOMEM;
        l->v = nv;
        l->cap = ncap;
    }
    ag__md *m = &l->v[l->n];
    m->key = ag_strndup(key, klen);
    m->value = ag_malloc(len + 1);
    if (!m->key || !m->value) {
        ag_free(m->key);
        ag_free(m->value);
        return AG_E_NOMEM;
    }
    if (len)
        memcpy(m->value, value, len);
    m->value[len] = '\0';
    m->len = len;
    l->n++;
    return 0;
}

void ag__md_free(ag__md_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        ag_free(l->v[i].key);
        ag_free(l->v[i].value);
    }
    ag_free(l->v);
    memset(l, 0, sizeof(*l));
}

const ag__md *ag__md_get(const ag__md_list *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].key, key) == 0)
            return &l->v[i];
    return NULL;
}

/* ---- calls ------------------------------------------------------------------ */

static ag__h2call *call_new(ag__h2conn *c, int32_t id)
{
    ag__h2call *call = ag_calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->conn = c;
    call->id = id;
    call->timeout_ns = UINT64_MAX;
    call->content_type_ok = false;
    ag__deframer_init(&call->d, c->o.max_recv_msg, false);
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->ncalls++;
    return call;
}

static void call_free(ag__h2call *call)
{
    ag__h2conn *c = call->conn;
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    c->ncalls--;
    for (struct chunk *k = call->q_head, *n; k; k = n) {
        n = k->next;
        chunk_free(k);
    }
    ag__deframer_cleanup(&call->d);
    ag__md_free(&call->md);
    ag__md_free(&call->trailers);
    ag__md_free(&call->fin_trailers);
    ag_free(call->method);
    ag_free(call->bad_timeout);
    ag_free(call->bad_encoding);
    ag_free(call->status_msg);
    ag_free(call);
}

static ag__h2call *call_of(ag__h2conn *c, int32_t id)
{
    return nghttp2_session_get_stream_user_data(c->s, id);
}

static int set_status(ag__h2call *call, int status, const char *msg)
{
    char *m = ag_strdup(msg ? msg : "");
    if (!m)
        return AG_E_NOMEM;
    ag_free(call->status_msg);
    call->status_msg = m;
    call->status = status;
    call->has_status = true;
    return 0;
}

static void resume(ag__h2call *call)
{
    if (call->deferred) {
        call->deferred = false;
        nghttp2_session_resume_data(call->conn->s, call->id);
    }
}

/* ---- building header blocks --------------------------------------------------- */

struct nvs {
    nghttp2_nv v[64];
    size_t n;
    ag_buf enc; /* base64 of -bin values; freed after submit (nghttp2 copies) */
    size_t offs[64];
    bool from_enc[64];
};

static void nvs_init(struct nvs *h)
{
    h->n = 0;
    ag_buf_init(&h->enc, 1 << 20);
}

static int nvs_add(struct nvs *h, const char *k, size_t klen, const void *v, size_t vlen)
{
    if (h->n == AG_ARRAY_LEN(h->v))
        return AG_E_TOO_LARGE;
    h->v[h->n] = (nghttp2_nv){(uint8_t *)(uintptr_t)k, (uint8_t *)(uintptr_t)v, klen, vlen,
                              NGHTTP2_NV_FLAG_NONE};
    h->from_enc[h->n] = false;
    h->n++;
    return 0;
}

static int nvs_lit(struct nvs *h, const char *k, const char *v)
{
    return nvs_add(h, k, strlen(k), v, strlen(v));
}

/* Adds application metadata: checked keys, base64 for -bin values. The
 * encoded values live in h->enc; pointers are fixed up in nvs_finish. */
static int nvs_md(struct nvs *h, const ag__md_list *md)
{
    for (size_t i = 0; md && i < md->n; i++) {
        const ag__md *m = &md->v[i];
        size_t kl = strlen(m->key);
        if (!ag__grpc_key_valid(m->key, kl) || ag__grpc_key_reserved(m->key, kl))
            return AG_E_INVAL;
        if (!ag__grpc_key_is_bin(m->key, kl)) {
            if (!ag__grpc_value_valid((const char *)m->value, m->len))
                return AG_E_INVAL;
            int rc = nvs_add(h, m->key, kl, m->value, m->len);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t el = ag_base64_encoded_len(m->len, AG_B64_NOPAD);
        int rc = ag_buf_reserve(&h->enc, el + 1);
        if (rc < 0)
            return rc;
        size_t off = h->enc.len;
        ag_base64_encode((char *)h->enc.data + off, m->value, m->len, AG_B64_NOPAD);
        h->enc.len += el;
        rc = nvs_add(h, m->key, kl, NULL, el);
        if (rc < 0)
            return rc;
        h->from_enc[h->n - 1] = true;
        h->offs[h->n - 1] = off;
    }
    return 0;
}

static void nvs_finish(struct nvs *h)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->from_enc[i])
            h->v[i].value = h->enc.data + h->offs[i];
}

static void nvs_cleanup(struct nvs *h)
{
    ag_buf_cleanup(&h->enc);
}

/* grpc-status and grpc-message (percent-encoded) and trailers into h. */
static int nvs_status(struct nvs *h, int status, const char *msg, char numbuf[4], ag_buf *pct,
                      const ag__md_list *trailers)
{
    snprintf(numbuf, 4, "%d", status);
    int rc = nvs_lit(h, "grpc-status", numbuf);
    if (rc == 0 && msg && *msg) {
        rc = ag__grpc_message_encode(pct, msg, strlen(msg));
        if (rc == 0)
            rc = nvs_add(h, "grpc-message", 12, pct->data, pct->len);
    }
    if (rc == 0)
        rc = nvs_md(h, trailers);
    return rc;
}

/* ---- sending data ----------------------------------------------------------------- */

static int submit_trailers(ag__h2call *call)
{
    struct nvs h;
    char num[4];
    ag_buf pct;
    nvs_init(&h);
    ag_buf_init(&pct, 64 * 1024);
    int rc = nvs_status(&h, call->status, call->status_msg, num, &pct, &call->fin_trailers);
    if (rc == 0) {
        nvs_finish(&h);
        rc = nghttp2_submit_trailer(call->conn->s, call->id, h.v, h.n) == 0 ? 0
                                                                          : AG_E_RPC_PROTOCOL;
    }
    call->trailers_sent = true;
    nvs_cleanup(&h);
    ag_buf_cleanup(&pct);
    return rc;
}

static ssize_t read_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                       uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    ag__h2call *call = src->ptr;
    size_t n = 0;
    while (n < len && call->q_head) {
        struct chunk *k = call->q_head;
        size_t take;
        if (k->off < AG__GRPC_PREFIX) {
            take = AG_MIN(len - n, AG__GRPC_PREFIX - k->off);
            memcpy(buf + n, k->prefix + k->off, take);
        } else {
            take = AG_MIN(len - n, k->len - k->off);
            memcpy(buf + n, k->body + (k->off - AG__GRPC_PREFIX), take);
        }
        k->off += take;
        n += take;
        call->q_bytes -= take;
        if (k->off == k->len) {
            call->q_head = k->next;
            if (!call->q_head)
                call->q_tail = NULL;
            chunk_free(k);
        }
    }
    if (!call->q_head) {
        if (call->conn->server && call->finishing) {
            *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (submit_trailers(call) < 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        } else if (!call->conn->server && call->send_closed) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (n == 0) {
            call->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

/* Server: submits the response HEADERS (with a data provider) once. */
static int send_response_headers(ag__h2call *call, const ag__md_list *md)
{
    if (call->headers_sent)
        return 0;
    struct nvs h;
    nvs_init(&h);
    int rc = nvs_lit(&h, ":status", "200");
    if (rc == 0)
        rc = nvs_lit(&h, "content-type", "application/grpc");
    if (rc == 0)
        rc = nvs_lit(&h, "grpc-accept-encoding", ACCEPT_ENCODING);
    if (rc == 0 && call->send_enc != AG__ENC_IDENTITY)
        rc = nvs_lit(&h, "grpc-encoding", ag__grpc_encoding_name(call->send_enc));
    if (rc == 0)
        rc = nvs_md(&h, md);
    if (rc == 0) {
        nvs_finish(&h);
        nghttp2_data_provider prd = {.source.ptr = call, .read_callback = read_cb};
        rc = nghttp2_submit_response(call->conn->s, call->id, h.v, h.n, &prd) == 0
                 ? 0
                 : AG_E_RPC_PROTOCOL;
    }
    if (rc == 0)
        call->headers_sent = true;
    nvs_cleanup(&h);
    return rc;
}

/* Server: a trailers-only response (an immediate error, or a status with no
 * message sent). http is the :status (200 unless the request was not gRPC). */
static int send_trailers_only(ag__h2call *call, const char *http)
{
    struct nvs h;
    char num[4];
    ag_buf pct;
    nvs_init(&h);
    ag_buf_init(&pct, 64 * 1024);
    int rc = nvs_lit(&h, ":status", http);
    if (rc == 0)
        rc = nvs_lit(&h, "content-type", "application/grpc");
    if (rc == 0 && call->status == AG_RPC_UNIMPLEMENTED && call->bad_encoding)
        rc = nvs_lit(&h, "grpc-accept-encoding", ACCEPT_ENCODING);
    if (rc == 0)
        rc = nvs_status(&h, call->status, call->status_msg, num, &pct, &call->fin_trailers);
    if (rc == 0) {
        nvs_finish(&h);
        rc = nghttp2_submit_response(call->conn->s, call->id, h.v, h.n, NULL) == 0
                 ? 0
                 : AG_E_RPC_PROTOCOL;
    }
    call->headers_sent = call->trailers_sent = true;
    nvs_cleanup(&h);
    ag_buf_cleanup(&pct);
    return rc;
}

/* ---- public call operations ---------------------------------------------------------- */

void ag__h2call_set_owner(ag__h2call *call, void *owner)
{
    call->owner = owner;
}

void *ag__h2call_owner(const ag__h2call *call)
{
    return call->owner;
}

const char *ag__h2call_method(const ag__h2call *call)
{
    return call->method ? call->method : "";
}

uint64_t ag__h2call_timeout_ns(const ag__h2call *call)
{
    return call->timeout_ns;
}

const ag__md_list *ag__h2call_md(const ag__h2call *call)
{
    return &call->md;
}

const ag__md_list *ag__h2call_trailers(const ag__h2call *call)
{
    return &call->trailers;
}

int ag__h2call_send_headers(ag__h2call *call, const ag__md_list *md)
{
    if (!call->conn->server || call->headers_sent)
        return AG_E_STATE;
    return send_response_headers(call, md);
}

bool ag__h2call_last_compressed(const ag__h2call *call)
{
    return call->last_compressed;
}

int ag__h2call_set_encoding(ag__h2call *call, ag__grpc_encoding enc)
{
    if (enc == AG__ENC_UNKNOWN)
        return AG_E_INVAL;
    if (!call->conn->server)
        return AG_E_STATE; /* a client's is chosen at ag__h2conn_call_start */
    if (call->headers_sent)
        return AG_E_STATE;
    /* only what the client said it accepts (doc/compression.md) */
    call->send_enc = (call->accept_enc & (1u << enc)) ? enc : AG__ENC_IDENTITY;
    return call->send_enc == enc ? 0 : 1;
}

int ag__h2call_send_take(ag__h2call *call, void *msg, size_t len, bool compress)
{
    if (call->done || call->finishing || call->send_closed || len > UINT32_MAX) {
        ag_free(msg);
        return len > UINT32_MAX ? AG_E_TOO_LARGE : AG_E_STATE;
    }
    bool compressed = compress && call->send_enc != AG__ENC_IDENTITY;
    if (compressed) {
        ag_buf z;
        ag_buf_init(&z, UINT32_MAX);
        int rc = ag__grpc_compress(call->send_enc, msg, len, &z);
        ag_free(msg);
        if (rc < 0) {
            ag_buf_cleanup(&z);
            return rc;
        }
        msg = ag_buf_take(&z, &len);
    }
    struct chunk *k = ag_malloc(sizeof(*k));
    if (!k) {
        ag_free(msg);
        return AG_E_NOMEM;
    }
    ag__grpc_prefix(k->prefix, compressed, (uint32_t)len);
    k->body = msg;
    k->len = AG__GRPC_PREFIX + len;
    k->off = 0;
    k->next = NULL;
    call->q_bytes += k->len;
    if (call->q_tail)
        call->q_tail->next = k;
    else
        call->q_head = k;
    call->q_tail = k;
    if (call->conn->server) {
        int rc = send_response_headers(call, NULL);
        if (rc < 0)
            return rc;
    }
    resume(call);
    return 0;
}

int ag__h2call_send(ag__h2call *call, const void *msg, size_t len, bool compress)
{
    void *copy = ag_memdup(msg, len);
    return copy ? ag__h2call_send_take(call, copy, len, compress) : AG_E_NOMEM;
}

int ag__h2call_close_send(ag__h2call *call)
{
    if (call->conn->server || call->done)
        return AG_E_STATE;
    call->send_closed = true;
    resume(call);
    return 0;
}

int ag__h2call_finish(ag__h2call *call, int status, const char *message,
                      const ag__md_list *trailers)
{
    if (!call->conn->server || call->done || call->finishing || call->trailers_sent)
        return AG_E_STATE;
    int rc = set_status(call, status, message);
    for (size_t i = 0; rc == 0 && trailers && i < trailers->n; i++)
        rc = ag__md_add(&call->fin_trailers, trailers->v[i].key, strlen(trailers->v[i].key),
                        trailers->v[i].value, trailers->v[i].len);
    if (rc < 0)
        return rc;
    if (!call->started)
        return 0; /* refused in call_begin: the caller sends trailers-only */
    call->finishing = true;
    if (!call->headers_sent && !call->q_head)
        return send_trailers_only(call, "200");
    rc = send_response_headers(call, NULL);
    resume(call);
    return rc;
}

int ag__h2call_cancel(ag__h2call *call, int status, const char *message)
{
    if (call->done)
        return AG_E_STATE;
    if (!call->conn->server) {
        int rc = set_status(call, status, message);
        if (rc < 0)
            return rc;
        call->local_status = true;
    }
    nghttp2_submit_rst_stream(call->conn->s, NGHTTP2_FLAG_NONE, call->id, NGHTTP2_CANCEL);
    return 0;
}

int ag__h2call_expire(ag__h2call *call)
{
    if (!call->conn->server)
        return ag__h2call_cancel(call, AG_RPC_DEADLINE_EXCEEDED, "deadline exceeded");
    if (call->done || call->trailers_sent)
        return AG_E_STATE;
    /* a message half handed to HTTP/2 cannot be cut short: reset instead */
    if (!call->started || (call->q_head && call->q_head->off > 0))
        return ag__h2call_cancel(call, AG_RPC_DEADLINE_EXCEEDED, "deadline exceeded");
    for (struct chunk *k = call->q_head, *n; k; k = n) {
        n = k->next;
        chunk_free(k);
    }
    call->q_head = call->q_tail = NULL;
    call->q_bytes = 0;
    ag__md_free(&call->fin_trailers);
    int rc = set_status(call, AG_RPC_DEADLINE_EXCEEDED, "deadline exceeded");
    if (rc < 0)
        return rc;
    call->finishing = true;
    if (!call->headers_sent)
        return send_trailers_only(call, "200");
    resume(call);
    return 0;
}

size_t ag__h2call_queued(const ag__h2call *call)
{
    return call->q_bytes;
}

void ag__h2call_pause(ag__h2call *call, bool paused)
{
    call->paused = paused;
    if (!paused && call->unconsumed) {
        nghttp2_session_consume(call->conn->s, call->id, call->unconsumed);
        call->unconsumed = 0;
    }
}

/* ---- receiving: headers ---------------------------------------------------------------- */

static bool is(const uint8_t *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* A custom metadata entry (already known not to be reserved). */
static int add_custom(ag__md_list *l, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    if (!ag__grpc_key_valid((const char *)k, kl))
        return 0; /* not a gRPC key: drop it */
    if (!ag__grpc_key_is_bin((const char *)k, kl))
        return ag__md_add(l, (const char *)k, kl, v, vl);
    ag_buf dec;
    ag_buf_init(&dec, vl + 8);
    int rc = ag__grpc_bin_decode(&dec, (const char *)v, vl);
    if (rc == 0)
        rc = ag__md_add(l, (const char *)k, kl, dec.data, dec.len);
    else if (rc == AG_E_ENCODING)
        rc = 0; /* a broken -bin value is dropped, not fatal */
    ag_buf_cleanup(&dec);
    return rc;
}

static int server_header(ag__h2call *call, const uint8_t *k, size_t kl, const uint8_t *v,
                         size_t vl)
{
    if (is(k, kl, ":method")) {
        call->post = is(v, vl, "POST");
    } else if (is(k, kl, ":path")) {
        ag_free(call->method);
        call->method = ag_strndup((const char *)v, vl);
        return call->method ? 0 : AG_E_NOMEM;
    } else if (is(k, kl, "content-type")) {
        call->content_type_ok = ag__grpc_content_type_ok((const char *)v, vl);
    } else if (is(k, kl, "grpc-timeout")) {
        if (ag__grpc_timeout_parse((const char *)v, vl, &call->timeout_ns) < 0) {
            ag_free(call->bad_timeout);
            call->bad_timeout = ag_strndup((const char *)v, AG_MIN(vl, 32));
            return call->bad_timeout ? 0 : AG_E_NOMEM;
        }
    } else if (is(k, kl, "grpc-encoding")) {
        ag__grpc_encoding e = ag__grpc_encoding_parse((const char *)v, vl);
        if (e == AG__ENC_UNKNOWN) {
            ag_free(call->bad_encoding);
            call->bad_encoding = ag_strndup((const char *)v, AG_MIN(vl, 32));
            return call->bad_encoding ? 0 : AG_E_NOMEM;
        }
        call->recv_enc = e;
    } else if (is(k, kl, "grpc-accept-encoding")) {
        call->accept_enc |= ag__grpc_accept_encoding_parse((const char *)v, vl);
    } else if (!ag__grpc_key_reserved((const char *)k, kl)) {
        return add_custom(&call->md, k, kl, v, vl);
    }
    return 0;
}

static int client_header(ag__h2call *call, bool trailers, const uint8_t *k, size_t kl,
                         const uint8_t *v, size_t vl)
{
    if (is(k, kl, ":status")) {
        int st = 0;
        for (size_t i = 0; i < vl && i < 3; i++)
            st = st * 10 + (v[i] >= '0' && v[i] <= '9' ? v[i] - '0' : 0);
        call->http_status = st;
    } else if (is(k, kl, "content-type")) {
        call->content_type_ok = ag__grpc_content_type_ok((const char *)v, vl);
    } else if (is(k, kl, "grpc-encoding")) {
        call->recv_enc = ag__grpc_encoding_parse((const char *)v, vl);
    } else if (is(k, kl, "grpc-status")) {
        call->status = ag__grpc_status_parse((const char *)v, vl);
        call->has_status = true;
    } else if (is(k, kl, "grpc-message")) {
        ag_buf m;
        ag_buf_init(&m, vl + 1);
        int rc = ag__grpc_message_decode(&m, (const char *)v, vl);
        if (rc == 0) {
            ag_free(call->status_msg);
            call->status_msg = ag_strdup(m.data ? (const char *)m.data : "");
            rc = call->status_msg ? 0 : AG_E_NOMEM;
        }
        ag_buf_cleanup(&m);
        return rc;
    } else if (!ag__grpc_key_reserved((const char *)k, kl)) {
        return add_custom(trailers ? &call->trailers : &call->md, k, kl, v, vl);
    }
    return 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    ag__h2conn *c = ud;
    if (!c->server || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    ag__h2call *call = call_new(c, f->hd.stream_id);
    if (!call)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, call);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *k, size_t kl,
                     const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
    (void)s;
    (void)flags;
    ag__h2conn *c = ud;
    ag__h2call *call = call_of(c, f->hd.stream_id);
    if (!call || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    call->header_bytes += kl + vl + 32;
    if (call->header_bytes > c->o.max_header_list) {
        call->headers_too_large = true;
        return 0;
    }
    int rc = c->server ? server_header(call, k, kl, v, vl)
                       : client_header(call, f->headers.cat == NGHTTP2_HCAT_HEADERS, k, kl, v,
                                       vl);
    return rc < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

/* Server: the request headers are complete: validate, then offer. */
static void request_ready(ag__h2conn *c, ag__h2call *call)
{
    char msg[160];
    const char *http = "200";
    int refuse = 0;
    if (!call->content_type_ok) {
        http = "415";
        refuse = AG_RPC_UNKNOWN;
        snprintf(msg, sizeof(msg), "content-type is not application/grpc");
    } else if (!call->post) {
        http = "405";
        refuse = AG_RPC_UNKNOWN;
        snprintf(msg, sizeof(msg), "gRPC requires method POST");
    } else if (call->headers_too_large) {
        refuse = AG_RPC_RESOURCE_EXHAUSTED;
        snprintf(msg, sizeof(msg), "request header list of %zu bytes exceeds the limit of %u",
                 call->header_bytes, c->o.max_header_list);
    } else if (call->bad_timeout) {
        refuse = AG_RPC_INTERNAL;
        snprintf(msg, sizeof(msg), "malformed grpc-timeout '%s'", call->bad_timeout);
    } else if (call->bad_encoding) {
        refuse = AG_RPC_UNIMPLEMENTED;
        snprintf(msg, sizeof(msg), "grpc-encoding '%s' is not supported", call->bad_encoding);
    } else if (!call->method || call->method[0] != '/') {
        refuse = AG_RPC_UNIMPLEMENTED;
        snprintf(msg, sizeof(msg), "malformed method path");
    }
    if (refuse) {
        if (set_status(call, refuse, msg) == 0)
            send_trailers_only(call, http);
        return;
    }
    call->d.may_compress = call->recv_enc != AG__ENC_IDENTITY;
    int st = c->ev.call_begin ? c->ev.call_begin(c->ud, call) : AG_RPC_UNIMPLEMENTED;
    if (st != 0) {
        if (!call->has_status)
            set_status(call, st, st == AG_RPC_UNIMPLEMENTED ? "unknown method" : NULL);
        else
            call->status = st;
        send_trailers_only(call, "200");
        return;
    }
    call->started = true;
}

/* ---- receiving: data --------------------------------------------------------------------- */

/* The deframer failed: end the call with its status. */
static void deframer_failed(ag__h2call *call)
{
    if (call->conn->server) {
        if (!call->trailers_sent && !call->finishing) {
            ag__h2call_finish(call, call->d.status, call->d.err.msg, NULL);
            if (!call->started)
                send_trailers_only(call, "200");
        }
    } else {
        ag__h2call_cancel(call, call->d.status, call->d.err.msg);
    }
}

/* A complete message: decompress it if needed, then hand it over. */
static void deliver(ag__h2conn *c, ag__h2call *call)
{
    size_t len;
    bool compressed;
    uint8_t *msg = ag__deframer_take(&call->d, &len, &compressed);
    if (compressed) {
        ag_buf out;
        ag_buf_init(&out, c->o.max_recv_msg);
        int rc = ag__grpc_decompress(call->recv_enc, msg, len, c->o.max_recv_msg, &out);
        ag_free(msg);
        if (rc < 0) {
            ag_buf_cleanup(&out);
            if (rc == AG_E_TOO_LARGE) {
                call->d.status = AG_RPC_RESOURCE_EXHAUSTED;
                ag_errbuf_set(&call->d.err, rc, "decompressed message larger than max (%u)",
                              c->o.max_recv_msg);
            } else {
                call->d.status = AG_RPC_INTERNAL;
                ag_errbuf_set(&call->d.err, rc, "could not decompress a %s message",
                              ag__grpc_encoding_name(call->recv_enc));
            }
            deframer_failed(call);
            return;
        }
        msg = ag_buf_take(&out, &len);
    }
    call->last_compressed = compressed;
    if (c->ev.message && (!c->server || call->started) && !call->done)
        c->ev.message(c->ud, call, msg, len);
    else
        ag_free(msg);
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    ag__h2conn *c = ud;
    ag__h2call *call = call_of(c, id);
    if (!call || call->local_status || call->trailers_sent || (c->server && !call->started)) {
        nghttp2_session_consume(s, id, len); /* nobody wants it: give the window back */
        return 0;
    }
    if (call->paused)
        call->unconsumed += len;
    else
        nghttp2_session_consume(s, id, len);
    size_t off = 0;
    while (off < len) {
        ssize_t used = ag__deframer_feed(&call->d, data + off, len - off);
        if (used < 0) {
            deframer_failed(call);
            return 0;
        }
        off += (size_t)used;
        if (ag__deframer_ready(&call->d))
            deliver(c, call);
        if (call->local_status || call->trailers_sent)
            return 0;
    }
    return 0;
}

/* The peer sent END_STREAM. */
static void remote_end(ag__h2conn *c, ag__h2call *call)
{
    call->remote_closed = true;
    if (ag__deframer_finish(&call->d) < 0) {
        deframer_failed(call);
        return;
    }
    if (c->server && call->started && !call->trailers_sent && c->ev.half_close)
        c->ev.half_close(c->ud, call);
}

#define TOO_MANY_PINGS "too_many_pings"

/* Server: gRPC's ping policy. A ping that comes sooner than the allowed
 * interval after the previous one (5 minutes by default, 2 hours when no
 * call is open unless pings without calls are permitted) is a strike;
 * sending headers or data clears them. Past max_ping_strikes: GOAWAY
 * ENHANCE_YOUR_CALM "too_many_pings", and the connection ends. */
static void police_ping(ag__h2conn *c)
{
    uint64_t now = c->o.now_ns ? c->o.now_ns() : ag_now_ns();
    uint64_t min_ms = c->ncalls == 0 && !c->o.pings_without_calls ? 2 * 3600 * 1000ull
                                                                  : c->o.min_ping_interval_ms;
    if (c->last_ping_ns && now - c->last_ping_ns < min_ms * 1000000u &&
        ++c->ping_strikes > c->o.max_ping_strikes && !c->calm_down) {
        c->calm_down = true;
        nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->s),
                              NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)TOO_MANY_PINGS,
                              strlen(TOO_MANY_PINGS));
    }
    c->last_ping_ns = now;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    ag__h2conn *c = ud;
    c->got_preface = true;
    if (f->hd.type == NGHTTP2_PING) {
        if (f->hd.flags & NGHTTP2_FLAG_ACK)
            c->ping_out = false;
        else if (c->server)
            police_ping(c);
        return 0;
    }
    if (f->hd.type == NGHTTP2_GOAWAY && !c->server &&
        f->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM &&
        f->goaway.opaque_data_len == strlen(TOO_MANY_PINGS) &&
        memcmp(f->goaway.opaque_data, TOO_MANY_PINGS, strlen(TOO_MANY_PINGS)) == 0) {
        c->told_too_many_pings = true;
        return 0;
    }
    ag__h2call *call = f->hd.stream_id ? call_of(c, f->hd.stream_id) : NULL;
    if (!call)
        return 0;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->hd.type == NGHTTP2_HEADERS) {
        if (c->server && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
            request_ready(c, call);
        } else if (!c->server && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
            call->saw_headers = true;
            call->d.may_compress = call->recv_enc != AG__ENC_IDENTITY &&
                                   call->recv_enc != AG__ENC_UNKNOWN;
            if (end) { /* trailers-only: its metadata is trailers */
                ag__md_list t = call->md;
                call->md = call->trailers;
                call->trailers = t;
            } else if (c->ev.headers && call->http_status == 200 && call->content_type_ok) {
                c->ev.headers(c->ud, call);
            }
        }
    }
    if (end && (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA))
        remote_end(c, call);
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    ag__h2conn *c = ud;
    if (c->server && (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA)) {
        c->ping_strikes = 0; /* the ping clock restarts with data */
        c->last_ping_ns = 0;
    }
    if (!c->server || f->hd.type != NGHTTP2_HEADERS || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    ag__h2call *call = call_of(c, f->hd.stream_id);
    /* the status went out before the client finished sending: release it */
    if (call && !call->remote_closed)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

/* A frame nghttp2 gave up on. For a client's request HEADERS (refused
 * after a GOAWAY, or past the server's stream limit) the call never
 * started: record why, as UNAVAILABLE (the server processed nothing, so the
 * caller may retry elsewhere); nghttp2 then closes the stream, and
 * on_stream_close delivers `done`. */
static int on_frame_not_send(nghttp2_session *s, const nghttp2_frame *f, int err, void *ud)
{
    (void)s;
    ag__h2conn *c = ud;
    if (c->server || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    ag__h2call *call = c->calls;
    while (call && call->id != f->hd.stream_id)
        call = call->next;
    if (!call || call->local_status)
        return 0;
    if (set_status(call, AG_RPC_UNAVAILABLE,
                   err == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED
                       ? "the server is shutting down this connection (GOAWAY)"
                       : nghttp2_strerror(err)) == 0)
        call->local_status = true;
    return 0;
}

/* The final status of a client call (see the file comment). */
static int client_final(ag__h2call *call, const char **msg, char *buf, size_t cap,
                        uint32_t err)
{
    if (call->local_status || call->has_status) {
        *msg = call->status_msg ? call->status_msg : "";
        return call->status;
    }
    *msg = buf;
    if (call->http_status && call->http_status != 200) {
        snprintf(buf, cap, "HTTP status %d", call->http_status);
        return ag__grpc_status_from_http(call->http_status);
    }
    if (err != NGHTTP2_NO_ERROR) {
        snprintf(buf, cap, "stream reset with HTTP/2 error %s (%u)",
                 nghttp2_http2_strerror(err), err);
        return ag__grpc_status_from_rst(err);
    }
    if (call->saw_headers && !call->content_type_ok) {
        snprintf(buf, cap, "response content-type is not application/grpc");
        return AG_RPC_UNKNOWN;
    }
    snprintf(buf, cap, "stream ended without a grpc-status");
    return AG_RPC_INTERNAL;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    (void)s;
    ag__h2conn *c = ud;
    ag__h2call *call = call_of(c, id);
    if (!call)
        return 0;
    char buf[160];
    const char *msg;
    int status;
    if (c->server) {
        if (call->trailers_sent) {
            status = call->status;
            msg = call->status_msg ? call->status_msg : "";
        } else {
            status = err == NGHTTP2_CANCEL || err == NGHTTP2_NO_ERROR
                         ? AG_RPC_CANCELLED
                         : ag__grpc_status_from_rst(err);
            snprintf(buf, sizeof(buf), "the client cancelled the call");
            msg = buf;
        }
    } else {
        status = client_final(call, &msg, buf, sizeof(buf), err);
    }
    if (!call->done && (!c->server || call->started) && c->ev.done) {
        call->done = true;
        c->ev.done(c->ud, call, status, msg);
    }
    nghttp2_session_set_stream_user_data(s, id, NULL);
    call_free(call);
    return 0;
}

/* ---- connections ------------------------------------------------------------------------ */

void ag__h2_opts_init(ag__h2_opts *o)
{
    o->max_recv_msg = AG__GRPC_DEFAULT_MAX_RECV;
    o->max_header_list = 16 * 1024;
    o->stream_window = 1u << 20;
    o->max_concurrent = 1000;
    o->authority = "localhost";
    o->scheme = "http";
    o->min_ping_interval_ms = 5 * 60 * 1000;
    o->max_ping_strikes = 2;
    o->pings_without_calls = false;
    o->now_ns = NULL;
}

ag__h2conn *ag__h2conn_new(bool server, const ag__h2_opts *o, const ag__h2_events *ev, void *ud)
{
    ag__h2conn *c = ag_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->server = server;
    if (o)
        c->o = *o;
    else
        ag__h2_opts_init(&c->o);
    c->ev = *ev;
    c->ud = ud;
    snprintf(c->authority, sizeof(c->authority), "%s", c->o.authority ? c->o.authority : "");
    snprintf(c->scheme, sizeof(c->scheme), "%s", c->o.scheme ? c->o.scheme : "http");
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        goto free_conn;
    if (nghttp2_option_new(&opt) != 0)
        goto free_cb;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rc = server ? nghttp2_session_server_new2(&c->s, cb, c, opt)
                    : nghttp2_session_client_new2(&c->s, cb, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0)
        goto free_conn;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->o.max_concurrent},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->o.stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->o.max_header_list},
    };
    if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, AG_ARRAY_LEN(iv)) != 0 ||
        nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, 16 << 20) != 0) {
        nghttp2_session_del(c->s);
        goto free_conn;
    }
    return c;
free_cb:
    nghttp2_session_callbacks_del(cb);
free_conn:
    ag_free(c);
    return NULL;
}

void ag__h2conn_free(ag__h2conn *c)
{
    if (!c)
        return;
    nghttp2_session_del(c->s); /* delivers no stream-close callbacks */
    while (c->calls)
        call_free(c->calls);
    ag_free(c);
}

const char *ag__h2conn_errmsg(const ag__h2conn *c)
{
    return c->err.msg;
}

int ag__h2conn_errcode(const ag__h2conn *c)
{
    return c->err.code;
}

int ag__h2conn_recv(ag__h2conn *c, const uint8_t *data, size_t len)
{
    if (c->calm_down)
        return AG_E_RPC_PROTOCOL; /* nothing more is read */
    ssize_t n = nghttp2_session_mem_recv(c->s, data, len);
    if (n < 0)
        return ag_errbuf_set(&c->err, AG_E_RPC_PROTOCOL, "HTTP/2: %s",
                             nghttp2_strerror((int)n));
    if (c->calm_down)
        return ag_errbuf_set(&c->err, AG_E_RPC_PROTOCOL,
                             "the client sent too many pings (GOAWAY ENHANCE_YOUR_CALM "
                             "too_many_pings)");
    return 0;
}

int ag__h2conn_ping(ag__h2conn *c)
{
    if (c->ping_out)
        return AG_E_STATE;
    if (nghttp2_submit_ping(c->s, NGHTTP2_FLAG_NONE, NULL) != 0)
        return AG_E_NOMEM;
    c->ping_out = true;
    return 0;
}

bool ag__h2conn_got_preface(const ag__h2conn *c)
{
    return c->got_preface;
}

bool ag__h2conn_ping_outstanding(const ag__h2conn *c)
{
    return c->ping_out;
}

bool ag__h2conn_told_too_many_pings(const ag__h2conn *c)
{
    return c->told_too_many_pings;
}

int ag__h2conn_send(ag__h2conn *c, ag_buf *out, size_t max_bytes)
{
    for (;;) {
        if (max_bytes && out->len >= max_bytes)
            return 0;
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(c->s, &p);
        if (n < 0)
            return ag_errbuf_set(&c->err, AG_E_RPC_PROTOCOL, "HTTP/2: %s",
                                 nghttp2_strerror((int)n));
        if (n == 0)
            return 0;
        int rc = ag_buf_append(out, p, (size_t)n);
        if (rc < 0)
            return ag_errbuf_set(&c->err, rc, "output buffer: %s", ag_strerror(rc));
    }
}

bool ag__h2conn_want_write(const ag__h2conn *c)
{
    return nghttp2_session_want_write(c->s);
}

bool ag__h2conn_alive(const ag__h2conn *c)
{
    return nghttp2_session_want_read(c->s) || nghttp2_session_want_write(c->s);
}

int ag__h2conn_goaway(ag__h2conn *c)
{
    if (!c->server)
        return AG_E_STATE;
    int32_t last = nghttp2_session_get_last_proc_stream_id(c->s);
    return nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0) == 0
               ? 0
               : AG_E_RPC_PROTOCOL;
}

size_t ag__h2conn_ncalls(const ag__h2conn *c)
{
    return c->ncalls;
}

ag__h2call *ag__h2conn_call_start(ag__h2conn *c, const char *method, uint64_t timeout_ns,
                                  const ag__md_list *md, ag__grpc_encoding enc)
{
    if (c->server) {
        ag_errbuf_set(&c->err, AG_E_STATE, "a server connection cannot start calls");
        return NULL;
    }
    ag__h2call *call = call_new(c, -1);
    if (!call || !(call->method = ag_strdup(method))) {
        if (call)
            call_free(call);
        ag_errbuf_set(&c->err, AG_E_NOMEM, "no memory for a call");
        return NULL;
    }
    call->send_enc = enc;
    call->timeout_ns = timeout_ns;
    struct nvs h;
    char tmo[10];
    nvs_init(&h);
    int rc = nvs_lit(&h, ":method", "POST");
    if (rc == 0)
        rc = nvs_lit(&h, ":scheme", c->scheme);
    if (rc == 0)
        rc = nvs_lit(&h, ":path", method);
    if (rc == 0)
        rc = nvs_lit(&h, ":authority", c->authority);
    if (rc == 0)
        rc = nvs_lit(&h, "te", "trailers");
    if (rc == 0)
        rc = nvs_lit(&h, "content-type", "application/grpc");
    if (rc == 0)
        rc = nvs_lit(&h, "user-agent", USER_AGENT);
    if (rc == 0)
        rc = nvs_lit(&h, "grpc-accept-encoding", ACCEPT_ENCODING);
    if (rc == 0 && enc != AG__ENC_IDENTITY)
        rc = nvs_lit(&h, "grpc-encoding", ag__grpc_encoding_name(enc));
    if (rc == 0 && timeout_ns != UINT64_MAX) {
        ag__grpc_timeout_format(timeout_ns, tmo);
        rc = nvs_lit(&h, "grpc-timeout", tmo);
    }
    if (rc == 0)
        rc = nvs_md(&h, md);
    int32_t id = -1;
    if (rc == 0) {
        nvs_finish(&h);
        nghttp2_data_provider prd = {.source.ptr = call, .read_callback = read_cb};
        id = nghttp2_submit_request(c->s, NULL, h.v, h.n, &prd, call);
    }
    nvs_cleanup(&h);
    if (rc < 0 || id < 0) {
        if (id == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED)
            ag_errbuf_set(&c->err, AG_E_CLOSED, "cannot start a call to %s: the server is "
                          "shutting down this connection (GOAWAY)", method);
        else
            ag_errbuf_set(&c->err, rc < 0 ? rc : AG_E_RPC_PROTOCOL,
                          "cannot start a call to %s: %s", method,
                          rc == AG_E_INVAL ? "invalid or reserved metadata"
                          : rc < 0         ? ag_strerror(rc)
                                           : nghttp2_strerror(id));
        call_free(call);
        return NULL;
    }
    call->id = id;
    return call;
}
