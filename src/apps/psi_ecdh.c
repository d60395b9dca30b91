/*
 * The "ecdh" PSI protocol over one bucket (semi-honest, Meadows 1986 as
 * secretflow/psi runs it), with ristretto255 from psi_curve.c.
 *
 * Each party draws a fresh scalar per run (start) and, per bucket:
 *
 *   1. masks its distinct keys, M[i] = H(key_i)^a, and sends them sorted by
 *      their bytes (so the order says nothing about the keys), with the
 *      row count of each when duplicates are allowed and the peer is a
 *      receiver (POINTS);
 *   2. raises the peer's points by its own scalar, D = M'^a, and sends D
 *      back in the peer's order when the peer is a receiver (ECHO);
 *   3. at a receiver: takes its own points back raised by the peer's
 *      scalar, E[j] = M[perm[j]]^b, and looks each up among D (an open
 *      addressing table on the points' first 8 bytes): a hit is a key the
 *      peer holds too, and the D entries never hit are the peer's rows
 *      outside the intersection.
 *
 * Costs per bucket, n own distinct keys and m the peer's: n hashes to the
 * group and n + m multiplications at each party; bytes sent 8 + 32 n
 * (+ 4 n with counts) and, to a receiving peer, 32 m; two messages and one
 * round when both receive. The curve work runs on the pool in chunks;
 * nothing is allocated per element.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHUNK 128 /* points per parallel_for chunk */

struct ecdh {
    uint8_t scalar[PSI_SCALAR_SIZE];
    psi_prefix prefix;
};

static int ecdh_start(struct psi_ctx *c, void **state)
{
    int rc = ag__psi_curve_init();
    if (rc < 0)
        return ag_errbuf_set(c->err, rc, "libsodium failed to initialize");
    struct ecdh *e = ag_malloc(sizeof(*e));
    if (!e)
        return ag_errbuf_set(c->err, AG_E_NOMEM, "out of memory");
    ag__psi_scalar_random(e->scalar);
    ag__psi_prefix_init(&e->prefix, c->session, c->session_len);
    *state = e;
    return 0;
}

static void ecdh_stop(void *state)
{
    if (!state)
        return;
    sodium_memzero(state, sizeof(struct ecdh));
    ag_free(state);
}

/* ---- parallel batches ------------------------------------------------------- */

struct batch {
    struct ecdh *e;
    struct psi_ctx *c;
    const ag_slice *keys;      /* hash_mul */
    const uint8_t *in;         /* mul */
    uint8_t *out;
    _Atomic size_t first_bad;  /* mul: lowest invalid index, or SIZE_MAX */
};

static void hash_mul_range(void *ctx, size_t b, size_t e)
{
    struct batch *t = ctx;
    ag__psi_hash_mul(&t->e->prefix, t->keys + b, e - b, t->e->scalar,
                     t->out + b * PSI_POINT_SIZE);
    ag__psi_progress_add(t->c->progress, e - b);
}

static void mul_range(void *ctx, size_t b, size_t e)
{
    struct batch *t = ctx;
    ssize_t bad = ag__psi_mul(t->in + b * PSI_POINT_SIZE, e - b, t->e->scalar,
                              t->out + b * PSI_POINT_SIZE);
    if (bad >= 0) {
        size_t at = b + (size_t)bad, cur = atomic_load(&t->first_bad);
        while (at < cur && !atomic_compare_exchange_weak(&t->first_bad, &cur, at))
            ;
    }
    ag__psi_progress_add(t->c->progress, e - b);
}

/* ---- sending order ---------------------------------------------------------- */

struct sorted_point {
    uint8_t p[PSI_POINT_SIZE];
    uint32_t idx;
};

static int point_cmp(const void *a, const void *b)
{
    return memcmp(((const struct sorted_point *)a)->p, ((const struct sorted_point *)b)->p,
                  PSI_POINT_SIZE);
}

/* ---- matching --------------------------------------------------------------- */

static uint64_t point_hash(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Marks ks->matched for every E[j] found among the m points of D, and
 * derives the peer's counts. pcounts (may be NULL: every count is 1). */
static int match(struct psi_ctx *c, struct psi_keyset *ks, const uint32_t *perm,
                 const uint8_t *E, const uint8_t *D, uint64_t m, const uint8_t *pcounts)
{
    size_t cap = 16;
    while (cap < 2 * m)
        cap *= 2;
    uint32_t *slot = ag_calloc(cap, sizeof(*slot)); /* D index + 1; 0 empty */
    uint8_t *hit = ag_calloc(m ? m : 1, 1);
    if (!slot || !hit) {
        ag_free(slot);
        ag_free(hit);
        return ag_errbuf_set(c->err, AG_E_NOMEM, "out of memory for a bucket's matching");
    }
    for (uint64_t i = 0; i < m; i++) {
        size_t h = point_hash(D + i * PSI_POINT_SIZE) & (cap - 1);
        while (slot[h])
            h = (h + 1) & (cap - 1);
        slot[h] = (uint32_t)(i + 1);
    }
    for (size_t j = 0; j < ks->n; j++) {
        const uint8_t *q = E + j * PSI_POINT_SIZE;
        size_t h = point_hash(q) & (cap - 1);
        for (; slot[h]; h = (h + 1) & (cap - 1)) {
            uint32_t i = slot[h] - 1;
            if (memcmp(D + (size_t)i * PSI_POINT_SIZE, q, PSI_POINT_SIZE) != 0)
                continue;
            uint32_t k = perm[j];
            ks->matched[k] = 1;
            ks->peer_counts[k] = pcounts ? psi_get_u32(pcounts + 4 * (size_t)i) : 1;
            hit[i] = 1;
            break;
        }
    }
    ks->peer_keys = m;
    ks->peer_unmatched_rows = 0;
    for (uint64_t i = 0; i < m; i++)
        if (!hit[i])
            ks->peer_unmatched_rows += pcounts ? psi_get_u32(pcounts + 4 * i) : 1;
    ag_free(slot);
    ag_free(hit);
    return 0;
}

/* ---- one bucket ------------------------------------------------------------- */

static int link_fail(struct psi_ctx *c, int rc)
{
    return ag_errbuf_set(c->err, rc, "%s", ag_link_errmsg(c->link));
}

/* Step 1: masks the keys and sends them in sorted order; *perm maps the
 * sent position to the key. */
static int send_points(struct psi_ctx *c, struct ecdh *e, uint64_t slot,
                       const struct psi_keyset *ks, uint32_t **perm)
{
    size_t n = ks->n;
    bool with_counts = c->dups && c->peer_receives;
    uint8_t *mine = ag_malloc(n ? n * PSI_POINT_SIZE : 1);
    struct sorted_point *sp = ag_malloc(n ? n * sizeof(*sp) : 1);
    uint8_t *msg = ag_malloc(ag__psi_points_size(n, with_counts));
    *perm = ag_malloc(n ? n * sizeof(**perm) : 1);
    if (!mine || !sp || !msg || !*perm) {
        ag_free(mine);
        ag_free(sp);
        ag_free(msg);
        ag_free(*perm);
        *perm = NULL;
        return ag_errbuf_set(c->err, AG_E_NOMEM, "out of memory for a bucket of %zu keys", n);
    }
    struct batch t = {.e = e, .c = c, .keys = ks->keys, .out = mine};
    ag_pool_parallel_for(c->pool, n, CHUNK, hash_mul_range, &t);
    for (size_t i = 0; i < n; i++) {
        memcpy(sp[i].p, mine + i * PSI_POINT_SIZE, PSI_POINT_SIZE);
        sp[i].idx = (uint32_t)i;
    }
    ag_free(mine);
    qsort(sp, n, sizeof(*sp), point_cmp);
    psi_put_u64(msg, n);
    uint8_t *counts = msg + 8 + n * PSI_POINT_SIZE;
    for (size_t j = 0; j < n; j++) {
        memcpy(msg + 8 + j * PSI_POINT_SIZE, sp[j].p, PSI_POINT_SIZE);
        (*perm)[j] = sp[j].idx;
        if (with_counts)
            psi_put_u32(counts + 4 * j, ks->counts[sp[j].idx]);
    }
    ag_free(sp);
    int rc = ag_link_send_take(c->link, c->peer, psi_tag(slot, PSI_STEP_POINTS), msg,
                               ag__psi_points_size(n, with_counts));
    if (rc < 0) {
        ag_free(*perm);
        *perm = NULL;
        return link_fail(c, rc);
    }
    return 0;
}

/* Step 2: receives the peer's points and raises them: *D (m points) and
 * the peer's counts inside *msg (free both). */
static int raise_peer(struct psi_ctx *c, struct ecdh *e, uint64_t slot, void **msg,
                      uint8_t **D, uint64_t *m, const uint8_t **pcounts)
{
    size_t len;
    *D = NULL;
    int rc = ag_link_recv(c->link, c->peer, psi_tag(slot, PSI_STEP_POINTS), msg, &len);
    if (rc < 0)
        return link_fail(c, rc);
    const uint8_t *points;
    char why[160];
    rc = ag__psi_points_decode(*msg, len, c->dups && c->i_receive, c->peer_rows, m, &points,
                               pcounts, why, sizeof(why));
    if (rc < 0)
        return ag_errbuf_set(c->err, rc, "party %s broke the PSI protocol: %s",
                             ag_link_party(c->link, c->peer), why);
    *D = ag_malloc(*m ? *m * PSI_POINT_SIZE : 1);
    if (!*D)
        return ag_errbuf_set(c->err, AG_E_NOMEM, "out of memory for %llu points",
                             (unsigned long long)*m);
    struct batch t = {.e = e, .c = c, .in = points, .out = *D};
    atomic_init(&t.first_bad, SIZE_MAX);
    ag_pool_parallel_for(c->pool, *m, CHUNK, mul_range, &t);
    size_t bad = atomic_load(&t.first_bad);
    if (bad != SIZE_MAX)
        return ag_errbuf_set(c->err, AG_E_PSI_PROTOCOL, "party %s broke the PSI protocol: point "
                             "%zu of bucket %llu is not a valid ristretto255 element",
                             ag_link_party(c->link, c->peer), bad,
                             (unsigned long long)(slot - 1));
    return 0;
}

static int ecdh_bucket(struct psi_ctx *c, void *state, uint64_t index, struct psi_keyset *ks)
{
    struct ecdh *e = state;
    uint64_t slot = index + 1;
    uint32_t *perm = NULL;
    void *msg = NULL;
    uint8_t *D = NULL, *E = NULL;
    uint64_t m = 0;
    const uint8_t *pcounts = NULL;
    int rc = send_points(c, e, slot, ks, &perm);
    if (rc == 0)
        rc = raise_peer(c, e, slot, &msg, &D, &m, &pcounts);
    if (rc == 0 && c->peer_receives) {
        size_t len = (size_t)m * PSI_POINT_SIZE;
        rc = c->i_receive ? ag_link_send(c->link, c->peer, psi_tag(slot, PSI_STEP_ECHO), D, len)
                          : ag_link_send_take(c->link, c->peer, psi_tag(slot, PSI_STEP_ECHO), D,
                                              len);
        if (!c->i_receive)
            D = NULL;
        if (rc < 0)
            rc = link_fail(c, rc);
    }
    if (rc == 0 && c->i_receive) {
        rc = ag_link_recv_exact(c->link, c->peer, psi_tag(slot, PSI_STEP_ECHO),
                                ks->n * PSI_POINT_SIZE, (void **)&E);
        if (rc < 0)
            rc = link_fail(c, rc);
        else
            rc = match(c, ks, perm, E, D, m, pcounts);
    }
    ag_free(E);
    ag_free(D);
    ag_free(msg);
    ag_free(perm);
    return rc;
}

const struct psi_protocol ag__psi_ecdh = {
    .name = "ecdh",
    .start = ecdh_start,
    .bucket = ecdh_bucket,
    .stop = ecdh_stop,
};
