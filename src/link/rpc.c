/*
 * The link over gRPC: each party serves argot.link.v1.Link/Push and, for
 * each peer, keeps one long-lived Push stream (client streaming frames,
 * server streaming acks) opened by that peer's ack thread.
 *
 * Sending: a message gets the next sequence number for its receiver, is
 * kept in the peer's unacked list, and is written as frames of at most
 * 1 MiB on the current stream (if there is none yet, the ack thread sends
 * it when it opens one). The ack thread reads acks and drops what they
 * cover; when the stream ends (the peer is not up yet, restarted, or the
 * connection broke), it opens a new one after a backoff (50 ms doubling to
 * 1 s) and sends every unacked message again, in order.
 *
 * Receiving: a handler thread per incoming stream checks each frame's
 * session and sender, reassembles messages, delivers a complete one to the
 * mailbox only if its number is past the last delivered from that sender
 * (so a message resent after a reconnect is delivered once), and acks it.
 * An abort frame fails the job at this party with the sender's reason.
 *
 * Gateways (opts.gateway, opts.via_gateway): every peer's stream goes to
 * this party's gateway instead of the peer's address, with the metadata
 * argot-party naming the peer; the gateway routes it to the peer's
 * gateway, which hands it to the peer's link server with l5d-client-id
 * naming this party. Such a server then takes frames only from a client
 * holding its own name's certificate (its gateway) and believes the
 * sender's name from l5d-client-id.
 *
 * Invariants:
 *   1. for each peer, messages are numbered 1, 2, ... in send order, and
 *      the unacked list is in that order;
 *   2. delivered[s] is the highest number delivered from sender s, and a
 *      message is delivered iff its number is delivered[s] + 1 (streams are
 *      ordered, and a resend starts from the oldest unacked);
 *   3. peer->push changes only under peer->mu, by the ack thread.
 */
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "argot/link/v1/link.pb-c.h"
#include "argot/rpc.h"
#include "internal.h"

#define METHOD "/argot.link.v1.Link/Push"
#define CHUNK (1u << 20)
#define MAX_MESSAGE ((uint64_t)1 << 36) /* 64 GiB: a bound on a peer's claim */
#define LINGER_MS 10000                 /* ag_link_free waits this long for acks */

struct out_msg {
    struct out_msg *next;
    uint64_t seq;
    uint64_t tag;
    uint8_t *data;
    size_t len;
};

struct in_msg {
    struct in_msg *next;
    unsigned src;
    uint64_t tag;
    uint8_t *data;
    size_t len;
};

struct rpc_link;

struct peer {
    struct rpc_link *l;
    unsigned rank;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *addr;                 /* NULL until known */
    ag_rpc_channel *ch;
    ag_rpc_call *push;          /* the current stream (invariant 3) */
    uint64_t next_seq;
    struct out_msg *unacked;
    struct out_msg **tail;
    pthread_t acker;
    bool acker_started;
    bool closing;
    char last_err[256];         /* why the last stream to it failed ("" since an ack) */
    bool last_informative;      /* last_err is what the peer said, not that it was absent */
    bool refused;               /* it refused our frames (another job, a wrong name) */
};

struct rpc_link {
    ag_link base;               /* first: an rpc_link is an ag_link */
    char *session;
    char *tls_cert, *tls_key, *tls_ca; /* all NULL: plaintext */
    char *gateway;              /* NULL: straight to the peers' addresses */
    bool via_gateway;           /* frames come through this party's gateway */
    ag_rpc_server *srv;
    int port;
    struct peer *peers;         /* n; peers[rank] unused */
    pthread_mutex_t mu;         /* the mailbox */
    pthread_cond_t cv;
    struct in_msg *head;
    struct in_msg **tail;
    uint64_t *delivered;        /* n: invariant 2 */
    bool aborted;
    char abort_msg[AG_ERRMSG_MAX];
};

static void *pb_alloc(void *ud, size_t n)
{
    (void)ud;
    return ag_malloc(n);
}

static void pb_free(void *ud, void *p)
{
    (void)ud;
    ag_free(p);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

/* Condition variables wait on CLOCK_MONOTONIC, as deadlines are. */
static void cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

/* ---- sending ------------------------------------------------------------------ */

/* Writes one message as frames on call. */
static int send_frames(struct rpc_link *l, ag_rpc_call *call, const struct out_msg *m,
                       const char *abort)
{
    Argot__Link__V1__Frame f = ARGOT__LINK__V1__FRAME__INIT;
    f.session = l->session;
    f.from_rank = l->base.rank;
    f.tag = m ? m->tag : 0;
    f.seq = m ? m->seq : 0;
    f.total = m ? m->len : 0;
    f.abort = (char *)(uintptr_t)(abort ? abort : "");
    size_t off = 0, len = m ? m->len : 0;
    do {
        size_t n = AG_MIN((size_t)CHUNK, len - off);
        f.offset = off;
        f.data.data = m ? m->data + off : NULL;
        f.data.len = n;
        size_t sz = argot__link__v1__frame__get_packed_size(&f);
        uint8_t *buf = ag_malloc(sz ? sz : 1);
        if (!buf)
            return AG_E_NOMEM;
        argot__link__v1__frame__pack(&f, buf);
        int rc = ag_rpc_call_send_take(call, buf, sz); /* the one copy on the way out */
        if (rc < 0)
            return rc;
        off += n;
    } while (off < len);
    return 0;
}

/* Opens a new stream to the peer and resends every unacked message on it
 * (peer->mu held). */
static int open_stream(struct peer *p)
{
    struct rpc_link *l = p->l;
    if (!p->ch) {
        ag_rpc_channel_opts co;
        ag_rpc_channel_opts_init(&co);
        /* the link paces its own retries (50 ms doubling to 1 s): each of
         * them must be a real attempt, not a fast failure inside the
         * channel's own backoff (a peer that starts a moment later is the
         * common case) */
        co.backoff_initial_ms = 1;
        co.backoff_max_ms = 1;
        /* a peer host that dies without closing its sockets is found within
         * a minute, not at the link timeout only */
        co.keepalive_time_ms = 30000;
        co.keepalive_timeout_ms = 20000;
        if (l->tls_ca) {
            /* the peer's server must be the party it is supposed to be */
            co.tls = true;
            co.tls_ca_file = l->tls_ca;
            co.tls_cert_file = l->tls_cert;
            co.tls_key_file = l->tls_key;
            co.tls_server_name = l->base.names[p->rank];
            /* our own gateway presents our own party certificate */
            if (l->gateway)
                co.tls_server_name = l->base.names[l->base.rank];
        }
        p->ch = ag_rpc_channel_new(l->gateway ? l->gateway : p->addr, &co);
        if (!p->ch)
            return AG_E_NOMEM;
    }
    ag_rpc_call *call = ag_rpc_call_new(p->ch, METHOD, ag_deadline_never());
    if (!call)
        return AG_E_NOMEM;
    const char *dest = l->base.names[p->rank];
    if (l->gateway && ag_rpc_call_add_metadata(call, AG_LINK_PARTY_HEADER, dest,
                                               strlen(dest)) < 0) {
        ag_rpc_call_free(call);
        return AG_E_NOMEM;
    }
    for (struct out_msg *m = p->unacked; m; m = m->next)
        if (send_frames(p->l, call, m, NULL) < 0)
            break; /* the stream is already over: the next round reopens */
    p->push = call;
    return 0;
}

/* Drops the acknowledged messages (peer->mu held). */
static void drop_acked(struct peer *p, uint64_t seq)
{
    while (p->unacked && p->unacked->seq <= seq) {
        struct out_msg *m = p->unacked;
        p->unacked = m->next;
        ag_free(m->data);
        ag_free(m);
    }
    if (!p->unacked)
        p->tail = &p->unacked;
}

/* Waits up to ms or until the link closes (peer->mu held). */
/* A failure that says only that nobody answered at the peer's address. */
static bool peer_absent(const char *why)
{
    return strstr(why, ": connection refused") || strstr(why, ": timed out") ||
           strstr(why, "(next attempt in ") || strstr(why, "no route to host");
}

static void nap(struct peer *p, uint64_t ms)
{
    ag_deadline d = ag_deadline_in_ms(ms);
    struct timespec ts = {(time_t)(d.at_ns / 1000000000u), (long)(d.at_ns % 1000000000u)};
    while (!p->closing && !ag_deadline_expired(d))
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

/* The ack thread of one peer: keeps a stream open and reads its acks. */
static void *acker_main(void *arg)
{
    struct peer *p = arg;
    uint64_t backoff = 50;
    pthread_mutex_lock(&p->mu);
    while (!p->closing) {
        if (!p->addr && !p->l->gateway) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        if (!p->push && open_stream(p) < 0) {
            nap(p, backoff);
            continue;
        }
        ag_rpc_call *call = p->push;
        pthread_mutex_unlock(&p->mu);
        uint8_t *msg;
        size_t len;
        int rc = ag_rpc_call_recv(call, &msg, &len);
        if (rc == 1) {
            Argot__Link__V1__Ack *a = argot__link__v1__ack__unpack(&pb_allocator, len, msg);
            ag_free(msg);
            pthread_mutex_lock(&p->mu);
            if (a) {
                drop_acked(p, a->seq);
                p->last_err[0] = '\0';
                p->last_informative = false;
                p->refused = false;
                pthread_cond_broadcast(&p->cv); /* a lingering free may be waiting */
                argot__link__v1__ack__free_unpacked(a, &pb_allocator);
                backoff = 50;
            }
            continue;
        }
        /* the stream is over: log why, reopen after a pause */
        const char *why;
        int st = ag_rpc_call_status(call, &why);
        if (st != AG_RPC_OK && st != AG_RPC_CANCELLED)
            AG_LOG(AG_LOG_DEBUG, "link", "stream_down peer=%s status=%s why=\"%s\"",
                   ag_link_party(&p->l->base, p->rank), ag_rpc_status_name(st), why);
        pthread_mutex_lock(&p->mu);
        if (p->push == call)
            p->push = NULL;
        /* keep what the peer itself said (a refusal, a failed handshake)
         * over a later failure to reach it at all: when the peer has gone,
         * "connection refused" would hide why it never took our frames */
        bool absent = st == AG_RPC_UNAVAILABLE && why && peer_absent(why);
        if (st != AG_RPC_OK && st != AG_RPC_CANCELLED && !(absent && p->last_informative)) {
            snprintf(p->last_err, sizeof(p->last_err), "%s: %.200s", ag_rpc_status_name(st),
                     why && *why ? why : "(no message)");
            p->last_informative = !absent;
        }
        if (!(absent && p->refused))
            p->refused = st == AG_RPC_PERMISSION_DENIED;
        pthread_cond_broadcast(&p->cv); /* a lingering free need not wait for it */
        pthread_mutex_unlock(&p->mu);
        ag_rpc_call_free(call);
        pthread_mutex_lock(&p->mu);
        nap(p, backoff);
        backoff = AG_MIN(backoff * 2, 1000);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int rpc_send(ag_link *base, unsigned peer, uint64_t tag, void *data, size_t len)
{
    struct rpc_link *l = (struct rpc_link *)base;
    struct peer *p = &l->peers[peer];
    struct out_msg *m = ag_malloc(sizeof(*m));
    if (!m) {
        ag_free(data);
        return ag_errbuf_set(&base->err, AG_E_NOMEM, "party %s: no memory to send",
                             base->names[base->rank]);
    }
    pthread_mutex_lock(&p->mu);
    *m = (struct out_msg){NULL, ++p->next_seq, tag, data, len};
    *p->tail = m;
    p->tail = &m->next;
    int rc = 0;
    if (!p->acker_started) {
        rc = pthread_create(&p->acker, NULL, acker_main, p) == 0 ? 0 : AG_E_SYS;
        p->acker_started = rc == 0;
    }
    if (p->push)
        send_frames(l, p->push, m, NULL); /* on failure, the ack thread resends it */
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (rc < 0)
        return ag_errbuf_set(&base->err, rc, "party %s: cannot start a sender thread",
                             base->names[base->rank]);
    return 0;
}

/* ---- receiving -------------------------------------------------------------------- */

static void set_aborted(struct rpc_link *l, const char *msg)
{
    pthread_mutex_lock(&l->mu);
    if (!l->aborted) {
        snprintf(l->abort_msg, sizeof(l->abort_msg), "%s", msg);
        l->aborted = true;
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* A whole message from src: into the mailbox (m, allocated by the caller)
 * unless already delivered. Takes m and data. */
static void deliver(struct rpc_link *l, struct in_msg *m, unsigned src, uint64_t seq,
                    uint64_t tag, uint8_t *data, size_t len)
{
    bool fresh = false;
    pthread_mutex_lock(&l->mu);
    if (seq == l->delivered[src] + 1) {
        *m = (struct in_msg){NULL, src, tag, data, len};
        *l->tail = m;
        l->tail = &m->next;
        l->delivered[src] = seq;
        fresh = true;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    if (!fresh) { /* a duplicate after a resend */
        ag_free(data);
        ag_free(m);
    }
}

static int send_ack(ag_rpc_call *c, uint64_t seq)
{
    Argot__Link__V1__Ack a = ARGOT__LINK__V1__ACK__INIT;
    a.seq = seq;
    uint8_t buf[16];
    size_t n = argot__link__v1__ack__pack(&a, buf);
    return ag_rpc_call_send(c, buf, n);
}

/* The caller's party as the gateway says (l5d-client-id), copied into
 * out; "" if the call has none (or an unusable one). */
static void gateway_client_id(ag_rpc_call *c, char *out, size_t cap)
{
    out[0] = '\0';
    ag_slice v;
    const char *key;
    for (size_t i = 0; (key = ag_rpc_call_metadata(c, false, i, &v)); i++)
        if (strcmp(key, AG_LINK_CLIENT_ID_HEADER) == 0) {
            if (v.len >= cap || memchr(v.ptr, '\0', v.len))
                return;
            memcpy(out, v.ptr, v.len);
            out[v.len] = '\0';
            return;
        }
}

/* A frame claiming to come from party `claimed` through this party's
 * gateway: the client must be the gateway (our own certificate) and the
 * gateway must name the claimed party. Returns a gRPC status (0: fine). */
static int gateway_check(struct rpc_link *l, const char *claimed, const char *via,
                         ag_rpc_call *c)
{
    const char *who = ag_rpc_call_peer_identity(c);
    const char *me = l->base.names[l->base.rank];
    char msg[300];
    if (!who || strcmp(who, me) != 0) {
        snprintf(msg, sizeof(msg), "party %s takes frames only through its gateway (a "
                 "certificate for '%.60s'), not from a certificate for '%.60s'", me, me,
                 who ? who : "(none)");
        AG_LOG(AG_LOG_WARN, "link", "refused_frame claimed=%s certificate=%s via=gateway",
               claimed, who ? who : "(none)");
        ag_rpc_call_set_status_message(c, msg);
        return AG_RPC_PERMISSION_DENIED;
    }
    if (strcmp(via, claimed) != 0) {
        snprintf(msg, sizeof(msg), "the gateway says the caller is '%.60s', who may not send "
                 "as party %s", via[0] ? via : "(nobody)", claimed);
        AG_LOG(AG_LOG_WARN, "link", "refused_frame claimed=%s client_id=%s", claimed,
               via[0] ? via : "(none)");
        ag_rpc_call_set_status_message(c, msg);
        return AG_RPC_PERMISSION_DENIED;
    }
    return 0;
}

/* Checks a frame against the job; returns a gRPC status (0: fine). via is
 * the caller's name from the gateway (via_gateway only). */
static int frame_check(struct rpc_link *l, const Argot__Link__V1__Frame *f, ag_rpc_call *c,
                       const char *via)
{
    char msg[300];
    if (strcmp(f->session, l->session) != 0) {
        snprintf(msg, sizeof(msg), "frame for job '%.100s', party %s runs job '%.100s'",
                 f->session, l->base.names[l->base.rank], l->session);
        ag_rpc_call_set_status_message(c, msg);
        return AG_RPC_PERMISSION_DENIED;
    }
    if (f->from_rank >= l->base.size || f->from_rank == l->base.rank) {
        snprintf(msg, sizeof(msg), "no peer of rank %u in a job of %u parties", f->from_rank,
                 l->base.size);
        ag_rpc_call_set_status_message(c, msg);
        return AG_RPC_INVALID_ARGUMENT;
    }
    if (l->via_gateway)
        return gateway_check(l, l->base.names[f->from_rank], via, c);
    const char *who = ag_rpc_call_peer_identity(c);
    if (l->tls_ca && (!who || strcmp(who, l->base.names[f->from_rank]) != 0)) {
        /* a party may only send as itself */
        snprintf(msg, sizeof(msg), "a certificate for '%.60s' may not send as party %s",
                 who ? who : "(none)", l->base.names[f->from_rank]);
        AG_LOG(AG_LOG_WARN, "link", "refused_frame claimed=%s certificate=%s",
               l->base.names[f->from_rank], who ? who : "(none)");
        ag_rpc_call_set_status_message(c, msg);
        return AG_RPC_PERMISSION_DENIED;
    }
    return 0;
}

/* Serves one incoming Push stream (a handler thread). */
static int push_handler(ag_rpc_call *c, void *ud)
{
    struct rpc_link *l = ud;
    ag_buf cur;
    ag_buf_init(&cur, 0);
    uint64_t cur_seq = 0, cur_tag = 0, cur_total = 0;
    int status = AG_RPC_OK;
    char via[64] = "";
    if (l->via_gateway)
        gateway_client_id(c, via, sizeof(via));
    for (;;) {
        uint8_t *raw;
        size_t len;
        int rc = ag_rpc_call_recv(c, &raw, &len);
        if (rc <= 0) {
            status = rc == 0 ? AG_RPC_OK : AG_RPC_CANCELLED;
            break;
        }
        Argot__Link__V1__Frame *f = argot__link__v1__frame__unpack(&pb_allocator, len, raw);
        ag_free(raw);
        if (!f) {
            ag_rpc_call_set_status_message(c, "malformed link frame");
            status = AG_RPC_INVALID_ARGUMENT;
            break;
        }
        status = frame_check(l, f, c, via);
        if (status == 0 && f->abort[0]) {
            set_aborted(l, f->abort);
        } else if (status == 0) {
            bool whole = false;
            if (f->offset == 0) { /* a new message */
                ag_buf_cleanup(&cur);
                ag_buf_init(&cur, f->total <= MAX_MESSAGE ? (size_t)f->total : 0);
                cur_seq = f->seq;
                cur_tag = f->tag;
                cur_total = f->total;
                if (f->data.len == f->total && f->data.data) {
                    /* a whole message in one frame: keep the decoder's buffer */
                    cur.data = f->data.data;
                    cur.len = cur.cap = f->data.len;
                    f->data.data = NULL;
                    f->data.len = 0;
                    whole = true;
                } else if (f->total <= MAX_MESSAGE && f->total &&
                           ag_buf_reserve(&cur, (size_t)f->total) < 0) {
                    /* one allocation for the whole message; the frames are
                     * copied into it, the one copy on the way in */
                    ag_rpc_call_set_status_message(c, "no memory for a link message");
                    status = AG_RPC_RESOURCE_EXHAUSTED;
                }
            }
            if (status != 0) {
                /* refused above */
            } else if (f->seq != cur_seq || f->total != cur_total ||
                       (!whole && (f->offset != cur.len ||
                                   (f->data.len &&
                                    ag_buf_append(&cur, f->data.data, f->data.len) < 0)))) {
                ag_rpc_call_set_status_message(c, "link frame out of order or too large");
                status = AG_RPC_INVALID_ARGUMENT;
            } else if (cur.len == cur_total) {
                /* acknowledged before it is delivered, so that a receiver
                 * that exits right after reading it has sent the ack; a
                 * receiver without the memory for it does not ack, and the
                 * sender resends */
                size_t n;
                uint8_t *data = ag_buf_take(&cur, &n);
                struct in_msg *m = ag_malloc(sizeof(*m));
                if (!data)
                    data = ag_malloc(1);
                if (m && data) {
                    send_ack(c, cur_seq);
                    deliver(l, m, f->from_rank, cur_seq, cur_tag, data, n);
                } else {
                    ag_free(m);
                    ag_free(data);
                }
            }
        }
        argot__link__v1__frame__free_unpacked(f, &pb_allocator);
        if (status != 0)
            break;
    }
    ag_buf_cleanup(&cur);
    return status;
}

static int rpc_recv(ag_link *base, unsigned peer, uint64_t tag, void **data, size_t *len,
                    ag_deadline deadline)
{
    struct rpc_link *l = (struct rpc_link *)base;
    struct timespec ts = {(time_t)(deadline.at_ns / 1000000000u),
                          (long)(deadline.at_ns % 1000000000u)};
    pthread_mutex_lock(&l->mu);
    for (;;) {
        for (struct in_msg **pp = &l->head; *pp; pp = &(*pp)->next) {
            struct in_msg *m = *pp;
            if (m->src != peer || m->tag != tag)
                continue;
            *pp = m->next;
            if (l->tail == &m->next)
                l->tail = pp;
            pthread_mutex_unlock(&l->mu);
            *data = m->data;
            *len = m->len;
            ag_free(m);
            return 0;
        }
        if (l->aborted) {
            int rc = ag_errbuf_set(&base->err, AG_E_LINK_ABORTED, "%s", l->abort_msg);
            pthread_mutex_unlock(&l->mu);
            return rc;
        }
        if (ag_deadline_expired(deadline))
            break;
        if (ag_deadline_is_never(deadline))
            pthread_cond_wait(&l->cv, &l->mu);
        else
            pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    }
    pthread_mutex_unlock(&l->mu);
    /* what this party saw of that peer's address helps more than the tag */
    struct peer *p = &l->peers[peer];
    char seen[448] = "";
    pthread_mutex_lock(&p->mu);
    if (p->last_err[0])
        snprintf(seen, sizeof(seen), "; sending to %s %s %.100s failed: %s", base->names[peer],
                 l->gateway ? "through the gateway at" : "at",
                 l->gateway ? l->gateway : p->addr ? p->addr : "?", p->last_err);
    pthread_mutex_unlock(&p->mu);
    return ag_errbuf_set(&base->err, AG_E_LINK_TIMEOUT,
                         "party %s: no message from party %s within %llu ms (tag %#llx)%s",
                         base->names[base->rank], base->names[peer],
                         (unsigned long long)base->timeout_ms, (unsigned long long)tag, seen);
}

static void rpc_abort(ag_link *base, const char *msg)
{
    struct rpc_link *l = (struct rpc_link *)base;
    set_aborted(l, msg);
    for (unsigned i = 0; i < base->size; i++) {
        if (i == base->rank)
            continue;
        struct peer *p = &l->peers[i];
        pthread_mutex_lock(&p->mu);
        if (p->push)
            send_frames(l, p->push, NULL, msg); /* best effort: the job is over anyway */
        pthread_mutex_unlock(&p->mu);
    }
}

/* ---- life cycle -------------------------------------------------------------------- */

/* Waits until every peer acknowledged what was sent to it, or the linger
 * time passed: a party that finishes first must not take its last
 * messages (its share of the final reveal) with it. Not after an abort. */
static void linger(struct rpc_link *l)
{
    pthread_mutex_lock(&l->mu);
    bool aborted = l->aborted;
    pthread_mutex_unlock(&l->mu);
    if (aborted)
        return;
    ag_deadline d = ag_deadline_in_ms(LINGER_MS);
    struct timespec ts = {(time_t)(d.at_ns / 1000000000u), (long)(d.at_ns % 1000000000u)};
    for (unsigned i = 0; i < l->base.size; i++) {
        struct peer *p = &l->peers[i];
        if (i == l->base.rank)
            continue;
        pthread_mutex_lock(&p->mu);
        while (p->unacked && p->acker_started && !p->refused && !ag_deadline_expired(d))
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        if (p->unacked)
            AG_LOG(AG_LOG_WARN, "link", "unacked_on_close peer=%s first_seq=%llu",
                   l->base.names[i], (unsigned long long)p->unacked->seq);
        pthread_mutex_unlock(&p->mu);
    }
}

static void rpc_destroy(ag_link *base)
{
    struct rpc_link *l = (struct rpc_link *)base;
    if (l->peers && l->srv)
        linger(l);
    for (unsigned i = 0; l->peers && i < base->size; i++) {
        struct peer *p = &l->peers[i];
        if (i == base->rank)
            continue;
        pthread_mutex_lock(&p->mu);
        p->closing = true;
        if (p->push)
            ag_rpc_call_cancel(p->push);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (p->acker_started)
            pthread_join(p->acker, NULL);
        if (p->push)
            ag_rpc_call_free(p->push);
        drop_acked(p, UINT64_MAX);
        ag_rpc_channel_free(p->ch);
        ag_free(p->addr);
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
    }
    ag_rpc_server_free(l->srv);
    for (struct in_msg *m = l->head, *n; m; m = n) {
        n = m->next;
        ag_wipe(m->data, m->len);
        ag_free(m->data);
        ag_free(m);
    }
    ag_free(l->peers);
    ag_free(l->delivered);
    ag_free(l->session);
    ag_free(l->tls_cert);
    ag_free(l->tls_key);
    ag_free(l->tls_ca);
    ag_free(l->gateway);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    ag__link_cleanup(base);
    ag_free(l);
}

static const struct ag_link_ops rpc_ops = {rpc_send, rpc_recv, rpc_abort, rpc_destroy};

int ag_link_rpc_port(const ag_link *base)
{
    return ((const struct rpc_link *)base)->port;
}

int ag_link_rpc_set_peer(ag_link *base, unsigned rank, const char *address)
{
    struct rpc_link *l = (struct rpc_link *)base;
    if (rank >= base->size || rank == base->rank)
        return AG_E_LINK_PEER;
    struct peer *p = &l->peers[rank];
    char *a = ag_strdup(address);
    if (!a)
        return AG_E_NOMEM;
    pthread_mutex_lock(&p->mu);
    int rc = p->ch ? AG_E_STATE : 0;
    if (rc == 0) {
        ag_free(p->addr);
        p->addr = a;
        pthread_cond_broadcast(&p->cv);
    } else {
        ag_free(a);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

ag_link *ag_link_rpc_new(const ag_link_rpc_opts *o, char *err, size_t errcap)
{
    snprintf(err, errcap, "out of memory");
    if (o->n < 1 || o->rank >= o->n) {
        snprintf(err, errcap, "rank %u in a job of %u parties", o->rank, o->n);
        return NULL;
    }
    if ((o->tls_cert || o->tls_key || o->tls_ca) && (!o->tls_cert || !o->tls_key || !o->tls_ca)) {
        snprintf(err, errcap, "TLS between parties needs a certificate, its key and the CA");
        return NULL;
    }
    if ((o->gateway || o->via_gateway) && !o->tls_ca) {
        snprintf(err, errcap, "gateways need TLS between parties (a certificate, its key and "
                 "the CA)");
        return NULL;
    }
    struct rpc_link *l = ag_calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    cond_init_mono(&l->cv);
    l->tail = &l->head;
    if (ag__link_init(&l->base, &rpc_ops, o->rank, o->n, o->names) < 0) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        ag_free(l);
        return NULL;
    }
    if (o->timeout_ms)
        l->base.timeout_ms = o->timeout_ms;
    l->session = ag_strdup(o->session ? o->session : "");
    l->peers = ag_calloc(o->n, sizeof(*l->peers));
    l->delivered = ag_calloc(o->n, sizeof(*l->delivered));
    bool tls = o->tls_cert || o->tls_key || o->tls_ca;
    if (tls && (!(l->tls_cert = ag_strdup(o->tls_cert)) || !(l->tls_key = ag_strdup(o->tls_key)) ||
                !(l->tls_ca = ag_strdup(o->tls_ca))))
        goto fail;
    if (o->gateway && !(l->gateway = ag_strdup(o->gateway)))
        goto fail;
    l->via_gateway = o->via_gateway;
    ag_rpc_server_opts so;
    ag_rpc_server_opts_init(&so);
    so.tls_cert_file = l->tls_cert;
    so.tls_key_file = l->tls_key;
    so.tls_ca_file = l->tls_ca; /* clients must present a party certificate */
    /* the peers' keepalive pings every 30 s (open_stream): allowed */
    so.min_ping_interval_ms = 20000;
    so.keepalive_time_ms = 30000;
    l->srv = ag_rpc_server_new(&so);
    if (!l->session || !l->peers || !l->delivered || !l->srv)
        goto fail;
    for (unsigned i = 0; i < o->n; i++) {
        struct peer *p = &l->peers[i];
        p->l = l;
        p->rank = i;
        p->tail = &p->unacked;
        pthread_mutex_init(&p->mu, NULL);
        cond_init_mono(&p->cv);
        if (i != o->rank && o->addresses && o->addresses[i] && o->addresses[i][0] &&
            !(p->addr = ag_strdup(o->addresses[i])))
            goto fail;
    }
    const char *listen = o->listen ? o->listen : o->addresses ? o->addresses[o->rank] : NULL;
    if (!listen) {
        snprintf(err, errcap, "party %s has no address to serve on",
                 l->base.names[o->rank]);
        goto fail;
    }
    if (ag_rpc_server_register(l->srv, METHOD, push_handler, l) < 0 ||
        ag_rpc_server_start(l->srv, listen) < 0) {
        snprintf(err, errcap, "%s", ag_rpc_server_errmsg(l->srv));
        goto fail;
    }
    l->port = ag_rpc_server_port(l->srv);
    err[0] = '\0';
    return &l->base;
fail:
    rpc_destroy(&l->base);
    return NULL;
}
