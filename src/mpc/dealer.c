/*
 * The trusted-third-party Beaver dealer: the service argot.beaver.v1.Dealer
 * (beaver.proto) that `argot beaver-server` runs.
 *
 * A session is created by its first registration and holds every party's
 * dealer seed, a stream of the dealer's own (for the secret bits of random
 * bits), the next position each party's stream may be dealt from, and the
 * masks dealt for the Beaver cache. Once every rank has registered, the
 * session gets a dealer session of the mpc code (ag__mpc_new_dealer): rank
 * 0 as the trusted first party, holding every stream; each Deal sets the
 * streams to the request's positions and runs beaver.c's own code on it,
 * so the shares are the ones the trusted first party would deal from the
 * same seeds, and the parties' side (beaver.c, ttp.c) is unchanged but for
 * where rank 0's computed components come from.
 *
 * Invariants:
 *   1. A session's next[j] only grows: a fresh request must start at or
 *      after it for every party, so no stream range is dealt twice (a
 *      range dealt twice under two kinds would give rank 0 two equations in
 *      the same masks). MATMUL_FIXED re-expands a mask only at the
 *      positions of a MASK request the session recorded, of the same size.
 *   2. Element-wise requests are computed a window at a time
 *      (WINDOW_BYTES per component), so a dealer's memory per request does
 *      not grow with its size; matrix requests need their matrices whole.
 *   3. Sessions live in the table while open; a call holds a reference
 *      (refs) while it works, so a session closed or expired mid-call is
 *      freed (and wiped) by the last call to let go. One call works on a
 *      session at a time (its lock); the table's lock is never held while
 *      dealing.
 *   4. Nothing secret is logged: lines name sessions by label and the first
 *      4 bytes of their id, never a seed or a share.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "argot/beaver/v1/beaver.argot.h"
#include "argot/beaver/v1/beaver.pb-c.h"
#include "argot/rpc.h"
#include "internal.h"

#define MAX_PARTIES 64
#define WINDOW_BYTES ((size_t)AG__CHUNK_BYTES * 16) /* of one component, per message */
#define MATRIX_MSG_BYTES ((size_t)1 << 20)
#define MAX_MASKS ((size_t)1 << 20)

struct mask {
    uint64_t *pos; /* n positions */
    uint64_t elements;
};

struct session {
    uint8_t id[16];
    char label[64];
    unsigned n;
    ag_field field;
    uint8_t (*seeds)[16];
    bool *have;
    unsigned registered;
    char *identity;    /* rank 0's certificate identity (mutual TLS), or NULL */
    uint64_t *next;    /* per party: where its next fresh request may start */
    struct mask *masks;
    size_t nmasks, capmasks;
    ag_mpc *dealer;    /* once every rank registered */
    uint64_t used_ms;  /* last call */
    unsigned refs;     /* calls working on it, plus one while in the table */
    pthread_mutex_t lock;
    struct session *next_in_table;
};

struct ag_beaver_server {
    ag_beaver_server_opts o;
    /* metrics (NULL without a registry; ag_metric_* ignore NULL) */
    ag_metric *m_sessions_total, *m_registrations, *m_deals, *m_bytes, *m_seconds, *m_refused,
        *m_expired;
    pthread_mutex_t lock; /* the table, counts and stats */
    struct session *sessions;
    ag_beaver_server_stats stats;
    Argot__Beaver__V1__Dealer_Handlers handlers;
};

static const char *const kind_names[] = {
    NULL, "MUL", "SQUARE", "TRUNC", "AND", "RANDBIT", "RAND_AB", "MATMUL", "MASK", "MATMUL_FIXED",
};

const char *ag_beaver_kind_name(unsigned kind)
{
    return kind < AG_ARRAY_LEN(kind_names) ? kind_names[kind] : NULL;
}

static void session_free(struct session *s)
{
    if (!s)
        return;
    if (s->seeds)
        ag_wipe(s->seeds, s->n * sizeof(*s->seeds));
    ag_free(s->seeds);
    ag_free(s->have);
    ag_free(s->identity);
    ag_free(s->next);
    for (size_t i = 0; i < s->nmasks; i++)
        ag_free(s->masks[i].pos);
    ag_free(s->masks);
    ag_mpc_free(s->dealer);
    pthread_mutex_destroy(&s->lock);
    ag_wipe(s->id, sizeof(s->id));
    ag_free(s);
}

/* Drops a reference (the server's lock held); frees at the last. */
static void session_unref_locked(struct session *s)
{
    if (--s->refs == 0)
        session_free(s);
}

static void session_release(ag_beaver_server *b, struct session *s)
{
    pthread_mutex_lock(&b->lock);
    session_unref_locked(s);
    pthread_mutex_unlock(&b->lock);
}

/* Unlinks s from the table (the server's lock held) and drops the table's
 * reference. */
static void session_remove_locked(ag_beaver_server *b, struct session *s)
{
    for (struct session **pp = &b->sessions; *pp; pp = &(*pp)->next_in_table)
        if (*pp == s) {
            *pp = s->next_in_table;
            b->stats.sessions--;
            session_unref_locked(s);
            return;
        }
}

static struct session *find_locked(ag_beaver_server *b, const ProtobufCBinaryData *id)
{
    if (id->len != 16)
        return NULL;
    for (struct session *s = b->sessions; s; s = s->next_in_table)
        if (memcmp(s->id, id->data, 16) == 0)
            return s;
    return NULL;
}

/* The session with this id, with a reference for the caller; NULL if
 * none. */
static struct session *session_get(ag_beaver_server *b, const ProtobufCBinaryData *id)
{
    pthread_mutex_lock(&b->lock);
    struct session *s = find_locked(b, id);
    if (s) {
        s->refs++;
        s->used_ms = ag_now_ms();
    }
    pthread_mutex_unlock(&b->lock);
    return s;
}

void ag_beaver_server_sweep(ag_beaver_server *b)
{
    pthread_mutex_lock(&b->lock);
    /* the clock read under the lock: every used_ms set before is <= now
     * (a session touched after an earlier read would look ages old) */
    uint64_t now = ag_now_ms();
    struct session *s = b->sessions;
    while (s) {
        struct session *nx = s->next_in_table;
        if (now > s->used_ms && now - s->used_ms > b->o.idle_timeout_ms) {
            AG_LOG(AG_LOG_INFO, "beaver", "session_expired label=%s id=%02x%02x%02x%02x",
                   s->label, s->id[0], s->id[1], s->id[2], s->id[3]);
            b->stats.expired++;
            ag_metric_add(b->m_expired, 1);
            session_remove_locked(b, s);
        }
        s = nx;
    }
    pthread_mutex_unlock(&b->lock);
}

/* Answers a call with status st and a message; counts the refusal. */
static int refuse(ag_beaver_server *b, struct ag__dealer_reply *r, int st, const char *fmt, ...)
    AG_PRINTF(4, 5);
static int refuse(ag_beaver_server *b, struct ag__dealer_reply *r, int st, const char *fmt, ...)
{
    char *msg = r->msg;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&b->lock);
    b->stats.refused++;
    pthread_mutex_unlock(&b->lock);
    const char *slash = r->method ? strrchr(r->method, '/') : NULL;
    ag_metric_add(b->m_refused, 1, slash ? slash + 1 : r->method ? r->method : "",
                  ag_rpc_status_name(st));
    AG_LOG(AG_LOG_INFO, "beaver", "refused method=%s status=%s why=\"%s\"",
           r->method, ag_rpc_status_name(st), msg);
    return st;
}

static bool field_from(Argot__Beaver__V1__Field f, ag_field *out)
{
    if (f == ARGOT__BEAVER__V1__FIELD__FM64)
        *out = AG_FM64;
    else if (f == ARGOT__BEAVER__V1__FIELD__FM128)
        *out = AG_FM128;
    else
        return false;
    return true;
}

static struct session *session_new(const Argot__Beaver__V1__RegisterRequest *req, ag_field f)
{
    struct session *s = ag_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    memcpy(s->id, req->session.data, 16);
    snprintf(s->label, sizeof(s->label), "%s", req->label ? req->label : "");
    /* keep the label printable: it goes into log lines */
    for (char *p = s->label; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\' || (unsigned char)*p >= 0x7f)
            *p = '?';
    s->n = req->parties;
    s->field = f;
    s->seeds = ag_calloc(s->n, sizeof(*s->seeds));
    s->have = ag_calloc(s->n, sizeof(*s->have));
    s->next = ag_calloc(s->n, sizeof(*s->next));
    s->refs = 1;
    s->used_ms = ag_now_ms();
    pthread_mutex_init(&s->lock, NULL);
    if (!s->seeds || !s->have || !s->next) {
        session_free(s);
        return NULL;
    }
    return s;
}

/* Builds the dealer session once every rank has registered (the session's
 * lock held). */
static int session_complete(struct session *s)
{
    uint8_t secret[16];
    if (ag_random_bytes(secret, sizeof(secret)) < 0)
        return AG_E_SYS;
    s->dealer = ag__mpc_new_dealer(s->field, s->n, (const uint8_t(*)[16])s->seeds, secret);
    ag_wipe(secret, sizeof(secret));
    return s->dealer ? 0 : AG_E_NOMEM;
}

int ag__dealer_register(ag_beaver_server *b, const Argot__Beaver__V1__RegisterRequest *req,
                        struct ag__dealer_reply *r)
{
    ag_field f;
    if (req->session.len != 16)
        return refuse(b, r, AG_RPC_INVALID_ARGUMENT, "session id must be 16 bytes, got %zu",
                      req->session.len);
    if (req->seed.len != 16)
        return refuse(b, r, AG_RPC_INVALID_ARGUMENT, "seed must be 16 bytes, got %zu",
                      req->seed.len);
    if (req->parties < 2 || req->parties > MAX_PARTIES)
        return refuse(b, r, AG_RPC_INVALID_ARGUMENT, "a session has 2 to %d parties, not %u",
                      MAX_PARTIES, req->parties);
    if (req->rank >= req->parties)
        return refuse(b, r, AG_RPC_INVALID_ARGUMENT, "rank %u is not below the party count %u",
                      req->rank, req->parties);
    if (!field_from(req->field, &f))
        return refuse(b, r, AG_RPC_INVALID_ARGUMENT, "unknown field %d", (int)req->field);
    ag_beaver_server_sweep(b);

    pthread_mutex_lock(&b->lock);
    struct session *s = find_locked(b, &req->session);
    if (!s) {
        if (b->stats.sessions >= b->o.max_sessions) {
            pthread_mutex_unlock(&b->lock);
            return refuse(b, r, AG_RPC_RESOURCE_EXHAUSTED,
                          "the dealer holds its maximum of %u sessions", b->o.max_sessions);
        }
        s = session_new(req, f);
        if (!s) {
            pthread_mutex_unlock(&b->lock);
            return refuse(b, r, AG_RPC_RESOURCE_EXHAUSTED, "no memory for a new session");
        }
        s->next_in_table = b->sessions;
        b->sessions = s;
        b->stats.sessions++;
        b->stats.sessions_total++;
        ag_metric_add(b->m_sessions_total, 1);
    }
    s->refs++;
    s->used_ms = ag_now_ms();
    pthread_mutex_unlock(&b->lock);

    int st = AG_RPC_OK;
    pthread_mutex_lock(&s->lock);
    if (s->n != req->parties || s->field != f) {
        st = refuse(b, r, AG_RPC_INVALID_ARGUMENT,
                    "session '%s' has %u parties over %s; rank %u registers %u over %s",
                    s->label, s->n, ag_field_name(s->field), req->rank, req->parties,
                    ag_field_name(f));
    } else if (s->have[req->rank]) {
        if (memcmp(s->seeds[req->rank], req->seed.data, 16) != 0)
            st = refuse(b, r, AG_RPC_ALREADY_EXISTS,
                        "rank %u of session '%s' registered another seed already", req->rank,
                        s->label);
    } else {
        const char *who = r->identity;
        if (req->rank == 0 && who && !(s->identity = ag_strdup(who))) {
            st = refuse(b, r, AG_RPC_RESOURCE_EXHAUSTED, "no memory");
        } else {
            memcpy(s->seeds[req->rank], req->seed.data, 16);
            s->have[req->rank] = true;
            s->registered++;
            if (s->registered == s->n && session_complete(s) < 0)
                st = refuse(b, r, AG_RPC_RESOURCE_EXHAUSTED, "no memory for the session");
        }
    }
    bool complete = s->dealer != NULL;
    pthread_mutex_unlock(&s->lock);
    if (st == AG_RPC_OK) {
        pthread_mutex_lock(&b->lock);
        b->stats.registrations++;
        pthread_mutex_unlock(&b->lock);
        ag_metric_add(b->m_registrations, 1);
        AG_LOG(AG_LOG_INFO, "beaver",
               "registered label=%s id=%02x%02x%02x%02x rank=%u parties=%u field=%s%s",
               s->label, s->id[0], s->id[1], s->id[2], s->id[3], req->rank, s->n,
               ag_field_name(s->field), complete ? " complete" : "");
    }
    session_release(b, s);
    return st;
}

/* Checks that the caller may act for rank 0 of s: with mutual TLS, the
 * certificate rank 0 registered with. */
static bool caller_is_rank0(const struct session *s, const struct ag__dealer_reply *r)
{
    if (!s->identity)
        return true;
    const char *who = r->identity;
    return who && strcmp(who, s->identity) == 0;
}

/* ---- dealing ---------------------------------------------------------------- */

/* Sends data (len bytes) as one DealChunk, then wipes it. */
static int send_chunk(struct ag__dealer_reply *o, uint8_t *data, size_t len)
{
    int rc = o->send(o->ctx, data, len);
    ag_wipe(data, len);
    if (rc == 0)
        o->sent += len;
    return rc;
}

/* Multiplies with overflow check; false past max. */
static bool elems(uint64_t a, uint64_t b, uint64_t max, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return false;
    *out = a * b;
    return *out <= max;
}

static void set_positions(ag_mpc *d, const uint64_t *pos)
{
    for (unsigned j = 0; j < d->n; j++)
        d->dealer_all[j].ctr = pos[j];
}

/* An element-wise request, window by window (invariant 2). */
static int deal_elementwise(struct session *s, const Argot__Beaver__V1__DealRequest *req,
                            struct ag__dealer_reply *o)
{
    ag_mpc *d = s->dealer;
    unsigned first, comps = ag__beaver_comps(req->kind, &first);
    size_t eb = ag_field_bytes(s->field), n = req->elements, win = WINDOW_BYTES / eb;
    size_t wbytes = AG_MIN(n, win) * eb;
    int rc = 0;
    void *out[4] = {NULL};
    uint8_t *msg = ag_malloc((comps - first) * wbytes + 1);
    for (unsigned k = 0; k < comps; k++)
        out[k] = ag_malloc(wbytes + 1);
    for (unsigned k = 0; k < comps && msg; k++)
        if (!out[k])
            rc = AG_E_NOMEM;
    if (!msg)
        rc = AG_E_NOMEM;
    set_positions(d, req->positions);
    for (size_t i = 0; i < n && rc == 0; i += win) {
        size_t len = AG_MIN(win, n - i), lb = len * eb, at = 0;
        rc = ag__beaver_deal_range(d, req->kind, n, req->bits, i, len, out);
        /* chunk by chunk: each computed component's part in turn */
        for (size_t off = 0; off < lb && rc == 0; off += AG__CHUNK_BYTES) {
            size_t cl = AG_MIN((size_t)AG__CHUNK_BYTES, lb - off);
            for (unsigned k = first; k < comps; k++) {
                memcpy(msg + at, (uint8_t *)out[k] + off, cl);
                at += cl;
            }
        }
        if (rc == 0)
            rc = send_chunk(o, msg, at);
    }
    if (rc == 0)
        ag__beaver_deal_skip(d, req->kind, n);
    for (unsigned k = 0; k < comps; k++) {
        if (out[k])
            ag_wipe(out[k], wbytes);
        ag_free(out[k]);
    }
    ag_free(msg);
    return rc;
}

/* Sends c (bytes) in messages of at most MATRIX_MSG_BYTES. */
static int send_matrix(struct ag__dealer_reply *o, uint8_t *c, size_t bytes)
{
    int rc = 0;
    for (size_t off = 0; off < bytes && rc == 0; off += MATRIX_MSG_BYTES)
        rc = send_chunk(o, c + off, AG_MIN(MATRIX_MSG_BYTES, bytes - off));
    return rc;
}

static const struct mask *find_mask(const struct session *s, const uint64_t *pos,
                                    uint64_t elements)
{
    for (size_t i = s->nmasks; i-- > 0;)
        if (s->masks[i].elements == elements &&
            memcmp(s->masks[i].pos, pos, s->n * sizeof(*pos)) == 0)
            return &s->masks[i];
    return NULL;
}

static int record_mask(struct session *s, const Argot__Beaver__V1__DealRequest *req)
{
    if (s->nmasks == s->capmasks) {
        size_t cap = s->capmasks ? s->capmasks * 2 : 16;
        struct mask *m = ag_realloc(s->masks, cap * sizeof(*m));
        if (!m)
            return AG_E_NOMEM;
        s->masks = m;
        s->capmasks = cap;
    }
    uint64_t *pos = ag_memdup(req->positions, s->n * sizeof(*pos));
    if (!pos)
        return AG_E_NOMEM;
    s->masks[s->nmasks++] = (struct mask){pos, req->elements};
    size_t bytes = req->elements * ag_field_bytes(s->field);
    for (unsigned j = 0; j < s->n; j++)
        s->dealer->dealer_all[j].ctr = req->positions[j] + (bytes + 15) / 16;
    return 0;
}

/* A matrix request: MATMUL or MATMUL_FIXED (whose mask was checked). */
static int deal_matrix(struct session *s, const Argot__Beaver__V1__DealRequest *req,
                       const struct mask *mask, struct ag__dealer_reply *o)
{
    ag_mpc *d = s->dealer;
    size_t eb = ag_field_bytes(s->field);
    size_t mm = req->m, k = req->k, nn = req->n;
    size_t sizes[4] = {mm * k * eb, k * nn * eb, mm * nn * eb, mm * k * eb};
    void *buf[4] = {NULL}; /* a (MATMUL) or the mask's a_0, b, c, the full mask */
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++)
        if (i < 3 || mask)
            if (!(buf[i] = ag_malloc(sizes[i] + 1)))
                rc = AG_E_NOMEM;
    if (rc == 0 && !mask) {
        set_positions(d, req->positions);
        rc = ag__beaver_matmul(d, mm, k, nn, buf[0], buf[1], buf[2]);
    } else if (rc == 0) {
        set_positions(d, mask->pos);
        rc = ag__beaver_mask(d, sizes[0], buf[0], buf[3], NULL);
        if (rc == 0) {
            set_positions(d, req->positions);
            rc = ag__beaver_matmul_fixed(d, buf[3], NULL, req->transposed, mm, k, nn, buf[1],
                                         buf[2]);
        }
    }
    if (rc == 0)
        rc = send_matrix(o, buf[2], sizes[2]);
    for (int i = 0; i < 4; i++) {
        if (buf[i])
            ag_wipe(buf[i], sizes[i]);
        ag_free(buf[i]);
    }
    return rc;
}

/* Checks a Deal request against the session (its lock held); returns
 * AG_RPC_OK or refuses. *mask: MATMUL_FIXED's mask. */
static int check_deal(ag_beaver_server *b, struct ag__dealer_reply *r, struct session *s,
                      const Argot__Beaver__V1__DealRequest *req, const struct mask **mask)
{
    uint64_t max = b->o.max_elements, e;
    unsigned first, K = (unsigned)ag_field_bytes(s->field) * 8;
    if (!s->dealer) {
        char missing[256] = "";
        size_t at = 0;
        for (unsigned j = 0; j < s->n && at < sizeof(missing) - 16; j++)
            if (!s->have[j])
                at += (size_t)snprintf(missing + at, sizeof(missing) - at, "%s%u",
                                       at ? ", " : "", j);
        return refuse(b, r, AG_RPC_FAILED_PRECONDITION,
                      "session '%s': rank%s %s %s not registered", s->label,
                      s->n - s->registered > 1 ? "s" : "", missing,
                      s->n - s->registered > 1 ? "have" : "has");
    }
    if (req->n_positions != s->n)
        return refuse(b, r, AG_RPC_INVALID_ARGUMENT, "%zu positions for a session of %u parties",
                      req->n_positions, s->n);
    bool elementwise = ag__beaver_comps(req->kind, &first) != 0;
    switch (req->kind) {
    case ARGOT__BEAVER__V1__KIND__MATMUL:
    case ARGOT__BEAVER__V1__KIND__MATMUL_FIXED:
        if (req->m == 0 || req->k == 0 || req->n == 0 || !elems(req->m, req->k, max, &e) ||
            !elems(req->k, req->n, max, &e) || !elems(req->m, req->n, max, &e))
            return refuse(b, r, AG_RPC_INVALID_ARGUMENT,
                          "matrices %" PRIu64 "x%" PRIu64 " by %" PRIu64 "x%" PRIu64
                          " are empty or beyond the dealer's %" PRIu64 " elements",
                          req->m, req->k, req->k, req->n, max);
        break;
    case ARGOT__BEAVER__V1__KIND__MASK:
        if (req->elements == 0 || req->elements > max)
            return refuse(b, r, AG_RPC_INVALID_ARGUMENT,
                          "a mask of %" PRIu64 " elements (1 to %" PRIu64 ")", req->elements,
                          max);
        break;
    default:
        if (!elementwise)
            return refuse(b, r, AG_RPC_INVALID_ARGUMENT, "unknown kind %d", (int)req->kind);
        if (req->elements == 0 || req->elements > max)
            return refuse(b, r, AG_RPC_INVALID_ARGUMENT,
                          "%s of %" PRIu64 " elements (1 to %" PRIu64 ")",
                          ag_beaver_kind_name(req->kind), req->elements, max);
        if (req->kind == ARGOT__BEAVER__V1__KIND__TRUNC && req->bits >= K)
            return refuse(b, r, AG_RPC_INVALID_ARGUMENT, "a truncation by %u bits in %s",
                          req->bits, ag_field_name(s->field));
    }
    for (unsigned j = 0; j < s->n; j++)
        if (req->positions[j] < s->next[j])
            return refuse(b, r, AG_RPC_INVALID_ARGUMENT,
                          "rank %u's stream position %" PRIu64 " is behind %" PRIu64
                          ": that range was dealt already",
                          j, req->positions[j], s->next[j]);
    *mask = NULL;
    if (req->kind == ARGOT__BEAVER__V1__KIND__MATMUL_FIXED) {
        uint64_t pq = req->m * req->k;
        if (req->n_mask_positions != s->n ||
            !(*mask = find_mask(s, req->mask_positions, pq)))
            return refuse(b, r, AG_RPC_INVALID_ARGUMENT,
                          "no mask of %" PRIu64 " elements was dealt at those positions", pq);
    }
    return AG_RPC_OK;
}

int ag__dealer_deal(ag_beaver_server *b, const Argot__Beaver__V1__DealRequest *req,
                    struct ag__dealer_reply *r)
{
    struct session *s = session_get(b, &req->session);
    if (!s)
        return refuse(b, r, AG_RPC_NOT_FOUND, "no such session (never registered, closed or "
                      "expired)");
    if (!caller_is_rank0(s, r)) {
        session_release(b, s);
        return refuse(b, r, AG_RPC_PERMISSION_DENIED,
                      "only rank 0 of the session (the certificate it registered with) may "
                      "ask for its shares");
    }
    uint64_t t0 = ag_now_ns();
    pthread_mutex_lock(&s->lock);
    const struct mask *mask = NULL;
    int st = check_deal(b, r, s, req, &mask);
    if (st == AG_RPC_OK) {
        int rc = 0;
        if (req->kind == ARGOT__BEAVER__V1__KIND__MASK)
            rc = record_mask(s, req);
        else if (req->kind == ARGOT__BEAVER__V1__KIND__MATMUL ||
                 req->kind == ARGOT__BEAVER__V1__KIND__MATMUL_FIXED)
            rc = deal_matrix(s, req, mask, r);
        else
            rc = deal_elementwise(s, req, r);
        if (rc == 0) {
            for (unsigned j = 0; j < s->n; j++)
                s->next[j] = s->dealer->dealer_all[j].ctr;
        } else if (rc == AG_E_NOMEM) {
            st = refuse(b, r, AG_RPC_RESOURCE_EXHAUSTED, "no memory for %s",
                        ag_beaver_kind_name(req->kind));
        } else {
            /* the caller went away, or the stream broke: the call's own
             * status tells the client */
            st = AG_RPC_UNAVAILABLE;
            snprintf(r->msg, sizeof(r->msg), "the deal's stream broke");
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (st == AG_RPC_OK) {
        pthread_mutex_lock(&b->lock);
        b->stats.deals[req->kind]++;
        b->stats.deal_bytes += r->sent;
        pthread_mutex_unlock(&b->lock);
        const char *kind = ag_beaver_kind_name(req->kind);
        ag_metric_add(b->m_deals, 1, kind);
        ag_metric_add(b->m_bytes, (double)r->sent);
        ag_metric_observe(b->m_seconds, (double)(ag_now_ns() - t0) / 1e9, kind);
    }
    session_release(b, s);
    return st;
}

int ag__dealer_close(ag_beaver_server *b, const Argot__Beaver__V1__CloseRequest *req,
                     struct ag__dealer_reply *r)
{
    pthread_mutex_lock(&b->lock);
    struct session *s = find_locked(b, &req->session);
    int st = AG_RPC_OK;
    if (!s) {
        pthread_mutex_unlock(&b->lock);
        return refuse(b, r, AG_RPC_NOT_FOUND, "no such session");
    }
    if (req->rank != 0 || !caller_is_rank0(s, r)) {
        pthread_mutex_unlock(&b->lock);
        return refuse(b, r, AG_RPC_PERMISSION_DENIED, "only rank 0 closes a session");
    }
    AG_LOG(AG_LOG_INFO, "beaver", "closed label=%s id=%02x%02x%02x%02x", s->label, s->id[0],
           s->id[1], s->id[2], s->id[3]);
    session_remove_locked(b, s);
    pthread_mutex_unlock(&b->lock);
    return st;
}

/* ---- the rpc handlers ---------------------------------------------------------- */

static void reply_init(struct ag__dealer_reply *r, ag_rpc_call *c)
{
    memset(r, 0, sizeof(*r));
    r->method = ag_rpc_call_method(c);
    r->identity = ag_rpc_call_peer_identity(c);
    r->ctx = c;
}

/* Ends the call with the core's status (and message). */
static int reply_end(ag_rpc_call *c, const struct ag__dealer_reply *r, int st)
{
    if (st != AG_RPC_OK)
        ag_rpc_call_set_status_message(c, r->msg);
    return st;
}

static int send_deal_chunk(void *ctx, uint8_t *data, size_t len)
{
    Argot__Beaver__V1__DealChunk m = ARGOT__BEAVER__V1__DEAL_CHUNK__INIT;
    m.data.data = data;
    m.data.len = len;
    return argot__beaver__v1__dealer__deal__send_response(ctx, &m, AG_RPC_SEND_NO_COMPRESS);
}

static int on_register(ag_rpc_call *c, const Argot__Beaver__V1__RegisterRequest *req, void *ud)
{
    struct ag__dealer_reply r;
    reply_init(&r, c);
    int st = ag__dealer_register(ud, req, &r);
    if (st == AG_RPC_OK) {
        Argot__Beaver__V1__RegisterResponse resp = ARGOT__BEAVER__V1__REGISTER_RESPONSE__INIT;
        if (argot__beaver__v1__dealer__register_seed__send_response(c, &resp, 0) < 0)
            st = AG_RPC_UNAVAILABLE;
    }
    return reply_end(c, &r, st);
}

static int on_deal(ag_rpc_call *c, const Argot__Beaver__V1__DealRequest *req, void *ud)
{
    struct ag__dealer_reply r;
    reply_init(&r, c);
    r.send = send_deal_chunk;
    return reply_end(c, &r, ag__dealer_deal(ud, req, &r));
}

static int on_close(ag_rpc_call *c, const Argot__Beaver__V1__CloseRequest *req, void *ud)
{
    struct ag__dealer_reply r;
    reply_init(&r, c);
    int st = ag__dealer_close(ud, req, &r);
    if (st == AG_RPC_OK) {
        Argot__Beaver__V1__CloseResponse resp = ARGOT__BEAVER__V1__CLOSE_RESPONSE__INIT;
        if (argot__beaver__v1__dealer__close_session__send_response(c, &resp, 0) < 0)
            st = AG_RPC_UNAVAILABLE;
    }
    return reply_end(c, &r, st);
}

/* ---- the server object -------------------------------------------------------- */

static double open_sessions(void *ud)
{
    ag_beaver_server *b = ud;
    pthread_mutex_lock(&b->lock);
    double n = (double)b->stats.sessions;
    pthread_mutex_unlock(&b->lock);
    return n;
}

static int metrics_init(ag_beaver_server *b)
{
    ag_metrics *r = b->o.metrics;
    b->m_sessions_total = ag_metrics_counter(r, "argot_beaver_sessions_total",
                                             "Sessions opened (by a first registration).", NULL);
    b->m_registrations = ag_metrics_counter(r, "argot_beaver_registrations_total",
                                            "Seeds registered.", NULL);
    b->m_deals = ag_metrics_counter(r, "argot_beaver_deals_total",
                                    "Correlations dealt, by kind.", "kind");
    b->m_bytes = ag_metrics_counter(r, "argot_beaver_deal_bytes_total",
                                    "Bytes of rank 0 shares sent.", NULL);
    b->m_seconds = ag_metrics_histogram(r, "argot_beaver_deal_seconds",
                                        "Time to deal one request, by kind.", "kind", NULL, 0);
    b->m_refused = ag_metrics_counter(r, "argot_beaver_refused_total",
                                      "Calls refused, by method and gRPC status.",
                                      "method,code");
    b->m_expired = ag_metrics_counter(r, "argot_beaver_sessions_expired_total",
                                      "Sessions dropped for idleness.", NULL);
    ag_metric *open = ag_metrics_gauge_fn(r, "argot_beaver_sessions", "Sessions open now.",
                                          open_sessions, b);
    if (!b->m_sessions_total || !b->m_registrations || !b->m_deals || !b->m_bytes ||
        !b->m_seconds || !b->m_refused || !b->m_expired || !open)
        return AG_E_INVAL;
    return 0;
}

ag_beaver_server *ag_beaver_server_new(const ag_beaver_server_opts *o)
{
    ag_beaver_server *b = ag_calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    if (o)
        b->o = *o;
    if (!b->o.max_sessions)
        b->o.max_sessions = 1024;
    if (!b->o.idle_timeout_ms)
        b->o.idle_timeout_ms = 3600 * 1000;
    if (!b->o.max_elements)
        b->o.max_elements = (uint64_t)1 << 26;
    pthread_mutex_init(&b->lock, NULL);
    if (b->o.metrics && metrics_init(b) < 0) {
        pthread_mutex_destroy(&b->lock);
        ag_free(b);
        return NULL;
    }
    b->handlers.register_seed = on_register;
    b->handlers.deal = on_deal;
    b->handlers.close_session = on_close;
    b->handlers.ud = b;
    return b;
}

int ag_beaver_server_register(ag_rpc_server *s, ag_beaver_server *b)
{
    return argot__beaver__v1__dealer__register(s, &b->handlers);
}

void ag_beaver_server_stats_get(ag_beaver_server *b, ag_beaver_server_stats *out)
{
    pthread_mutex_lock(&b->lock);
    *out = b->stats;
    pthread_mutex_unlock(&b->lock);
}

void ag_beaver_server_free(ag_beaver_server *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    while (b->sessions)
        session_remove_locked(b, b->sessions);
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_destroy(&b->lock);
    ag_free(b);
}
