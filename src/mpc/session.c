/*
 * An mpc session: one party's view of a semi2k job over a link.
 *
 * Setup (ag_mpc_setup, collective, before any kernel):
 *   1. hello: every party sends every peer {magic, field, fraction bits,
 *      party count} and checks what it receives, so a misconfigured party
 *      is named before any share is made;
 *   2. PRSS: party i draws seed s_i and sends it to party i+1; it keeps
 *      s_i (shared with i+1) and s_(i-1) (shared with i-1). Its share of
 *      zero is G(s_i) - G(s_(i-1)); the sum over all parties telescopes to
 *      zero, with no message per use;
 *   3. dealer: party i draws its dealer seed t_i. Under the trusted first
 *      party, parties i > 0 send it to rank 0, which can then expand every
 *      party's share of a Beaver triple and correct its own so that the
 *      shares multiply (beaver.c). Under the trusted third party, rank 0
 *      draws a random session id and sends it to every party; each
 *      registers t_i with the dealer under that id (ttp.c), and parties
 *      i > 0 then tell rank 0, so that rank 0's first request finds every
 *      seed registered.
 *
 * Tags: setup messages use tags with the top bit set; every kernel call
 * takes the next operation number (every party issues the same calls in
 * the same order, so the numbers agree) and uses op << 8 | sub as tags.
 *
 * A failed kernel fails the job: the error is recorded here and the link is
 * aborted with it, so every other party's pending receive fails at once
 * with "party <name> failed: <op>: <why>" instead of waiting for a timeout.
 *
 * Scratch: the session owns up to AG__SCRATCH_SLOTS buffers that kernels
 * borrow for their temporaries and return, so that a kernel run after run
 * on the same shapes allocates nothing and faults in no page (a fresh
 * multi-megabyte allocation is served by mmap and costs a page fault per
 * 4 KiB at its first touch: far more than the arithmetic). Messages ride
 * on the same buffers: a message is sent in a scratch buffer that the link
 * takes over, and a received one joins the receiver's scratch, so in an
 * opening the buffers pass from party to party instead of being allocated
 * and freed. Invariants:
 *   1. every non-empty slot is lent (to the running kernel) or free, and
 *      scratch_bytes is the sum of the slots' capacities;
 *   2. between kernels no slot is lent, and the free ones hold at most
 *      AG__SCRATCH_KEEP bytes (beyond, the least recently returned are
 *      freed);
 *   3. every buffer that is freed is wiped first (it may hold masks); a
 *      buffer that leaves the session holds nothing past the bytes the
 *      receiver is told about.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define TAG_SETUP (1ull << 63)
#define TAG_HELLO (TAG_SETUP | 1)
#define TAG_PRSS (TAG_SETUP | 2)
#define TAG_DEALER (TAG_SETUP | 3)
#define TAG_DEALER_READY (TAG_SETUP | 4)

static const uint8_t hello_magic[8] = {'A', 'G', 'M', 'P', 'C', '1', 0, 0};

ag_mpc *ag_mpc_new(ag_link *link, const ag_mpc_config *cfg)
{
    ag_mpc *m = ag_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->link = link;
    m->field = cfg->field;
    m->fxp_bits = cfg->fxp_bits ? cfg->fxp_bits : (cfg->field == AG_FM64 ? 18 : 26);
    m->rank = ag_link_rank(link);
    m->n = ag_link_size(link);
    m->ttp = cfg->beaver_server;
    m->ttp_timeout_ms = cfg->beaver_timeout_ms ? cfg->beaver_timeout_ms : 60000;
    snprintf(m->ttp_label, sizeof(m->ttp_label), "%s", cfg->label ? cfg->label : "");
    return m;
}

ag_mpc *ag__mpc_new_dealer(ag_field f, unsigned n, const uint8_t (*seeds)[16],
                           const uint8_t secret[16])
{
    ag_mpc *m = ag_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->field = f;
    m->fxp_bits = f == AG_FM64 ? 18 : 26;
    m->n = n;
    m->dealer_all = ag_calloc(n, sizeof(*m->dealer_all));
    m->dealer_secret = ag_calloc(1, sizeof(*m->dealer_secret));
    if (!m->dealer_all || !m->dealer_secret)
        goto fail;
    for (unsigned j = 0; j < n; j++)
        if (ag__prg_init(&m->dealer_all[j], seeds[j]) < 0)
            goto fail;
    if (ag__prg_init(m->dealer_secret, secret) < 0)
        goto fail;
    m->ready = true;
    return m;
fail:
    ag_mpc_free(m);
    return NULL;
}

/* Wipes and frees the buffer in slot i, which becomes empty. */
static void scratch_evict(ag_mpc *m, int i)
{
    struct ag__scratch_slot *s = &m->scratch[i];
    ag_wipe(s->p, s->cap);
    ag_free(s->p);
    m->scratch_bytes -= s->cap;
    memset(s, 0, sizeof(*s));
}

void ag_mpc_free(ag_mpc *m)
{
    if (!m)
        return;
    for (int i = 0; i < AG__SCRATCH_SLOTS; i++)
        if (m->scratch[i].p)
            scratch_evict(m, i);
    ag__prg_cleanup(&m->prss_next);
    ag__prg_cleanup(&m->prss_prev);
    if (m->ttp_registered)
        ag__ttp_close(m);
    ag__prg_cleanup(&m->dealer_self);
    if (m->dealer_all)
        for (unsigned i = 0; i < m->n; i++)
            ag__prg_cleanup(&m->dealer_all[i]);
    ag_free(m->dealer_all);
    if (m->dealer_secret)
        ag__prg_cleanup(m->dealer_secret);
    ag_free(m->dealer_secret);
    ag_free(m->dealer_pos);
    ag_wipe(m->ttp_session, sizeof(m->ttp_session));
    ag_free(m);
}

const char *ag_mpc_errmsg(const ag_mpc *m)
{
    return m->err.msg;
}

ag_link *ag_mpc_link(const ag_mpc *m)
{
    return m->link;
}

ag_field ag_mpc_field(const ag_mpc *m)
{
    return m->field;
}

unsigned ag_mpc_fxp_bits(const ag_mpc *m)
{
    return m->fxp_bits;
}

unsigned ag_mpc_rank(const ag_mpc *m)
{
    return m->rank;
}

unsigned ag_mpc_nparties(const ag_mpc *m)
{
    return m->n;
}

int ag__mpc_fail(ag_mpc *m, int code, const char *op, const char *fmt, ...)
{
    char why[AG_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    ag_errbuf_set(&m->err, code, "%s: %s", op, why);
    ag_link_abort(m->link, m->err.msg);
    return code;
}

int ag__mpc_link_fail(ag_mpc *m, int code, const char *op)
{
    return ag__mpc_fail(m, code, op, "%s", ag_link_errmsg(m->link));
}

uint64_t ag__mpc_tag(ag_mpc *m)
{
    return ++m->op << 8;
}

/* G(s_next) - G(s_prev), chunk by chunk: each chunk of the second stream is
 * drawn into a chunk-sized buffer at its position, so no full-size
 * temporary is written. The streams move as two fills of n elements. */
int ag__mpc_zero_share(ag_mpc *m, size_t n, void *dst)
{
    size_t eb = ag_field_bytes(m->field), bytes = n * eb;
    uint8_t *tmp = ag__scratch_get(m, AG__CHUNK_BYTES);
    if (!tmp)
        return AG_E_NOMEM;
    int rc = 0;
    for (size_t off = 0; off < bytes && rc == 0; off += AG__CHUNK_BYTES) {
        size_t len = AG_MIN((size_t)AG__CHUNK_BYTES, bytes - off);
        uint8_t *d = (uint8_t *)dst + off;
        rc = ag__prg_fill_at(&m->prss_next, m->prss_next.ctr + off / 16, d, len);
        if (rc == 0)
            rc = ag__prg_fill_at(&m->prss_prev, m->prss_prev.ctr + off / 16, tmp, len);
        if (rc == 0)
            ag__ring_sub(m->field, len / eb, d, d, tmp);
    }
    if (rc == 0) {
        ag__prg_skip(&m->prss_next, bytes);
        ag__prg_skip(&m->prss_prev, bytes);
    }
    ag__scratch_put(m, tmp);
    return rc;
}

int ag__mpc_send(ag_mpc *m, const char *op, unsigned peer, uint64_t tag, const void *mine,
                 size_t len)
{
    void *copy = ag__scratch_get(m, len);
    if (!copy)
        return ag__mpc_fail(m, AG_E_NOMEM, op, "no memory for a %zu-byte message", len);
    if (len)
        memcpy(copy, mine, len);
    ag__scratch_give(m, copy, len);
    int rc = ag_link_send_take(m->link, peer, tag, copy, len);
    if (rc < 0)
        return ag__mpc_link_fail(m, rc, op);
    return 0;
}

int ag__mpc_send_all(ag_mpc *m, const char *op, uint64_t tag, const void *mine, size_t len)
{
    for (unsigned p = 0; p < m->n; p++) {
        if (p == m->rank)
            continue;
        int rc = ag__mpc_send(m, op, p, tag, mine, len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ag__mpc_send_all_take(ag_mpc *m, const char *op, uint64_t tag, void **mine, size_t len)
{
    unsigned last = m->rank == m->n - 1 ? m->n - 2 : m->n - 1;
    for (unsigned p = 0; p < last; p++) {
        if (p == m->rank)
            continue;
        int rc = ag__mpc_send(m, op, p, tag, *mine, len);
        if (rc < 0)
            return rc;
    }
    void *data = *mine;
    *mine = NULL;
    ag__scratch_give(m, data, len);
    int rc = ag_link_send_take(m->link, last, tag, data, len);
    if (rc < 0)
        return ag__mpc_link_fail(m, rc, op);
    return 0;
}

int ag__mpc_recv(ag_mpc *m, const char *op, unsigned peer, uint64_t tag, size_t len,
                 void **data)
{
    int rc = ag_link_recv_exact(m->link, peer, tag, len, data);
    if (rc < 0)
        return ag__mpc_link_fail(m, rc, op);
    return 0;
}

int ag__mpc_recv_sum(ag_mpc *m, const char *op, uint64_t tag, size_t n_elems, void **sum)
{
    size_t bytes = n_elems * ag_field_bytes(m->field);
    void *first = NULL;
    int rc = 0;
    for (unsigned p = 0; p < m->n && rc == 0; p++) {
        if (p == m->rank)
            continue;
        void *peer;
        rc = ag__mpc_recv(m, op, p, tag, bytes, &peer);
        if (rc < 0)
            break;
        if (!first) {
            first = peer;
        } else {
            ag__ring_add_inplace(m->field, n_elems, first, peer);
            ag__scratch_adopt(m, peer, bytes);
        }
    }
    if (rc < 0) {
        if (first)
            ag__scratch_adopt(m, first, bytes);
        return rc;
    }
    *sum = first;
    return 0;
}

/* The peers' shares are summed in the first one's message, added to mine
 * into sum, and kept as scratch (the next kernel's message may go out in
 * it). */
int ag__mpc_open(ag_mpc *m, const char *op, uint64_t tag, const void *mine, void *sum,
                 size_t n_elems)
{
    size_t bytes = n_elems * ag_field_bytes(m->field);
    void *peers = NULL;
    int rc = ag__mpc_send_all(m, op, tag, mine, bytes);
    if (rc == 0)
        rc = ag__mpc_recv_sum(m, op, tag, n_elems, &peers);
    if (rc < 0)
        return rc;
    ag__ring_add(m->field, n_elems, sum, mine, peers);
    ag__scratch_adopt(m, peers, bytes);
    return 0;
}

/* ---- scratch -------------------------------------------------------------- */

/* The slot lending p; asserts that there is one. */
static int scratch_find(ag_mpc *m, const void *p)
{
    for (int i = 0; i < AG__SCRATCH_SLOTS; i++)
        if (m->scratch[i].p == p && m->scratch[i].lent)
            return i;
    assert(!"not a lent scratch buffer");
    return -1;
}

/* The free slot returned longest ago, or -1. */
static int scratch_lru(const ag_mpc *m)
{
    int lru = -1;
    for (int i = 0; i < AG__SCRATCH_SLOTS; i++) {
        const struct ag__scratch_slot *s = &m->scratch[i];
        if (s->p && !s->lent && (lru < 0 || s->used < m->scratch[lru].used))
            lru = i;
    }
    return lru;
}

/* Frees free buffers, least recently returned first, while the slots hold
 * more than AG__SCRATCH_KEEP bytes (invariant 2). */
static void scratch_trim(ag_mpc *m)
{
    while (m->scratch_bytes > AG__SCRATCH_KEEP) {
        int i = scratch_lru(m);
        if (i < 0)
            break;
        scratch_evict(m, i);
    }
}

/* An empty slot, or the least recently returned free one emptied; -1 when
 * every slot is lent. */
static int scratch_slot(ag_mpc *m)
{
    for (int i = 0; i < AG__SCRATCH_SLOTS; i++)
        if (!m->scratch[i].p)
            return i;
    int i = scratch_lru(m);
    if (i >= 0)
        scratch_evict(m, i);
    return i;
}

void *ag__scratch_get(ag_mpc *m, size_t bytes)
{
    int best = -1;
    for (int i = 0; i < AG__SCRATCH_SLOTS; i++) {
        const struct ag__scratch_slot *s = &m->scratch[i];
        if (s->p && !s->lent && s->cap >= bytes && (best < 0 || s->cap < m->scratch[best].cap))
            best = i;
    }
    if (best >= 0) {
        m->scratch[best].lent = true;
        return m->scratch[best].p;
    }
    void *p = ag_malloc(bytes ? bytes : 1);
    if (!p)
        return NULL;
    int i = scratch_slot(m);
    assert(i >= 0 && "every scratch slot is lent");
    if (i < 0) {
        ag_free(p);
        return NULL;
    }
    m->scratch[i] = (struct ag__scratch_slot){p, bytes, true, 0};
    m->scratch_bytes += bytes;
    return p;
}

void ag__scratch_put(ag_mpc *m, void *p)
{
    if (!p)
        return;
    int i = scratch_find(m, p);
    if (i < 0)
        return;
    m->scratch[i].lent = false;
    m->scratch[i].used = ++m->scratch_tick;
    scratch_trim(m);
}

int ag__scratch_get_n(ag_mpc *m, void **bufs, int n_bufs, const size_t *bytes)
{
    for (int i = 0; i < n_bufs; i++) {
        bufs[i] = ag__scratch_get(m, bytes[i]);
        if (!bufs[i]) {
            ag__scratch_put_n(m, bufs, i);
            return AG_E_NOMEM;
        }
    }
    return 0;
}

void ag__scratch_put_n(ag_mpc *m, void **bufs, int n_bufs)
{
    for (int i = 0; i < n_bufs; i++)
        ag__scratch_put(m, bufs[i]);
}

void ag__scratch_give(ag_mpc *m, void *p, size_t used)
{
    int i = scratch_find(m, p);
    if (i < 0)
        return;
    struct ag__scratch_slot *s = &m->scratch[i];
    if (used < s->cap)
        ag_wipe((uint8_t *)s->p + used, s->cap - used);
    m->scratch_bytes -= s->cap;
    memset(s, 0, sizeof(*s));
}

void ag__scratch_adopt(ag_mpc *m, void *p, size_t len)
{
    int i = scratch_slot(m);
    if (i < 0) {
        ag_wipe(p, len);
        ag_free(p);
        return;
    }
    m->scratch[i] = (struct ag__scratch_slot){p, len, false, ++m->scratch_tick};
    m->scratch_bytes += len;
    scratch_trim(m);
}

/* ---- setup -------------------------------------------------------------- */

static const char *dealer_name(uint8_t kind)
{
    return kind == 1 ? "the trusted-first-party" : kind == 2 ? "a trusted-third-party"
                                                             : "an unknown";
}

static int hello(ag_mpc *m)
{
    uint8_t mine[16] = {0};
    memcpy(mine, hello_magic, 8);
    mine[8] = (uint8_t)m->field;
    mine[9] = (uint8_t)m->fxp_bits;
    mine[10] = (uint8_t)(m->n >> 8);
    mine[11] = (uint8_t)m->n;
    mine[12] = m->ttp ? 2 : 1; /* the dealer: first or third party */
    for (unsigned p = 0; p < m->n; p++) {
        if (p == m->rank)
            continue;
        int rc = ag_link_send(m->link, p, TAG_HELLO, mine, sizeof(mine));
        if (rc < 0)
            return ag__mpc_link_fail(m, rc, "setup");
    }
    for (unsigned p = 0; p < m->n; p++) {
        if (p == m->rank)
            continue;
        uint8_t theirs[16];
        int rc = ag_link_recv_into(m->link, p, TAG_HELLO, theirs, sizeof(theirs));
        if (rc < 0)
            return ag__mpc_link_fail(m, rc, "setup");
        if (memcmp(theirs, hello_magic, 8) != 0)
            return ag__mpc_fail(m, AG_E_MPC_PROTOCOL, "setup",
                                "party %s does not speak argot's semi2k",
                                ag_link_party(m->link, p));
        unsigned tn = (unsigned)theirs[10] << 8 | theirs[11];
        if (memcmp(theirs + 8, mine + 8, 4) != 0)
            return ag__mpc_fail(m, AG_E_MPC_CONFIG, "setup",
                                "party %s uses %s with %u fraction bits in a job of %u parties; "
                                "party %s uses %s with %u in a job of %u",
                                ag_link_party(m->link, p),
                                theirs[8] == AG_FM64 ? "FM64" : "FM128", theirs[9], tn,
                                ag_link_party(m->link, m->rank), ag_field_name(m->field),
                                m->fxp_bits, m->n);
        if (theirs[12] != mine[12])
            return ag__mpc_fail(m, AG_E_MPC_CONFIG, "setup",
                                "party %s uses %s Beaver dealer; party %s uses %s",
                                ag_link_party(m->link, p), dealer_name(theirs[12]),
                                ag_link_party(m->link, m->rank), dealer_name(mine[12]));
    }
    return 0;
}

static int seed_init(ag_mpc *m, ag__prg *p, const uint8_t seed[16])
{
    int rc = ag__prg_init(p, seed);
    if (rc < 0)
        return ag__mpc_fail(m, rc, "setup", "cannot start AES-CTR: %s", ag_strerror(rc));
    return 0;
}

/* Setup under the trusted third party (step 3). */
static int ttp_setup(ag_mpc *m, const uint8_t seed[16])
{
    int rc;
    if (m->rank == 0) {
        m->dealer_pos = ag_calloc(m->n, sizeof(*m->dealer_pos));
        if (!m->dealer_pos)
            return ag__mpc_fail(m, AG_E_NOMEM, "setup", "no memory");
        if (ag_random_bytes(m->ttp_session, sizeof(m->ttp_session)) < 0)
            return ag__mpc_fail(m, AG_E_SYS, "setup", "getrandom failed");
        for (unsigned p = 1; p < m->n; p++) {
            rc = ag_link_send(m->link, p, TAG_DEALER, m->ttp_session, sizeof(m->ttp_session));
            if (rc < 0)
                return ag__mpc_link_fail(m, rc, "setup");
        }
    } else {
        rc = ag_link_recv_into(m->link, 0, TAG_DEALER, m->ttp_session, sizeof(m->ttp_session));
        if (rc < 0)
            return ag__mpc_link_fail(m, rc, "setup");
    }
    rc = ag__ttp_register(m, seed);
    if (rc < 0)
        return ag__mpc_fail(m, rc, "setup", "%s", m->ttp_err);
    if (m->rank != 0) {
        uint8_t ready = 1;
        rc = ag_link_send(m->link, 0, TAG_DEALER_READY, &ready, 1);
        return rc < 0 ? ag__mpc_link_fail(m, rc, "setup") : 0;
    }
    m->ttp_registered = true;
    for (unsigned p = 1; p < m->n; p++) {
        uint8_t ready;
        rc = ag_link_recv_into(m->link, p, TAG_DEALER_READY, &ready, 1);
        if (rc < 0)
            return ag__mpc_link_fail(m, rc, "setup");
    }
    return 0;
}

static int prss_and_dealer(ag_mpc *m)
{
    uint8_t s[16], prev[16], t[16];
    unsigned next = (m->rank + 1) % m->n, before = (m->rank + m->n - 1) % m->n;
    int rc = ag_random_bytes(s, sizeof(s));
    if (rc == 0)
        rc = ag_random_bytes(t, sizeof(t));
    if (rc < 0)
        return ag__mpc_fail(m, rc, "setup", "getrandom failed");
    rc = ag_link_send(m->link, next, TAG_PRSS, s, sizeof(s));
    if (rc == 0 && m->rank != 0 && !m->ttp)
        rc = ag_link_send(m->link, 0, TAG_DEALER, t, sizeof(t));
    if (rc < 0) {
        ag__mpc_link_fail(m, rc, "setup");
        goto wipe;
    }
    /* the dealer's registration before the PRSS seed is received, so that
     * setup ends with a receive at every party under both dealers */
    if (m->ttp) {
        rc = seed_init(m, &m->dealer_self, t);
        if (rc == 0)
            rc = ttp_setup(m, t);
        if (rc < 0)
            goto wipe;
    }
    rc = ag_link_recv_into(m->link, before, TAG_PRSS, prev, sizeof(prev));
    if (rc < 0) {
        ag__mpc_link_fail(m, rc, "setup");
        goto wipe;
    }
    rc = seed_init(m, &m->prss_next, s);
    if (rc == 0)
        rc = seed_init(m, &m->prss_prev, prev);
    if (rc < 0)
        goto wipe;
    if (m->ttp)
        goto wipe;
    if (m->rank != 0) {
        rc = seed_init(m, &m->dealer_self, t);
        goto wipe;
    }
    /* rank 0: every party's dealer stream; its own is dealer_all[0] */
    m->dealer_all = ag_calloc(m->n, sizeof(*m->dealer_all));
    if (!m->dealer_all) {
        rc = ag__mpc_fail(m, AG_E_NOMEM, "setup", "no memory");
        goto wipe;
    }
    rc = seed_init(m, &m->dealer_all[0], t);
    for (unsigned p = 1; p < m->n && rc == 0; p++) {
        uint8_t tp[16];
        rc = ag_link_recv_into(m->link, p, TAG_DEALER, tp, sizeof(tp));
        if (rc < 0)
            ag__mpc_link_fail(m, rc, "setup");
        else
            rc = seed_init(m, &m->dealer_all[p], tp);
        ag_wipe(tp, sizeof(tp));
    }
wipe:
    ag_wipe(s, sizeof(s));
    ag_wipe(prev, sizeof(prev));
    ag_wipe(t, sizeof(t));
    return rc;
}

int ag_mpc_setup(ag_mpc *m)
{
    if (m->ready)
        return ag_errbuf_set(&m->err, AG_E_STATE, "setup: already done");
    if (m->n < 2)
        return ag__mpc_fail(m, AG_E_MPC_CONFIG, "setup", "semi2k needs at least 2 parties, "
                            "got %u", m->n);
    if (m->fxp_bits >= ag_field_bytes(m->field) * 8 / 2)
        return ag__mpc_fail(m, AG_E_MPC_CONFIG, "setup", "%u fraction bits leave no room for "
                            "products in %s (at most %zu)", m->fxp_bits,
                            ag_field_name(m->field), ag_field_bytes(m->field) * 4 - 1);
    int rc = hello(m);
    if (rc == 0)
        rc = prss_and_dealer(m);
    if (rc == 0)
        m->ready = true;
    return rc;
}

/* ---- fixed point -------------------------------------------------------- */

double ag_mpc_fxp_max(const ag_mpc *m)
{
    return ldexp(1.0, (int)(ag_field_bytes(m->field) * 8 - 2 - m->fxp_bits));
}

int ag_mpc_encode(ag_mpc *m, const double *v, int ndim, const int64_t *shape, ag_tensor *out)
{
    int rc = ag_tensor_init(out, m->field, AG_VIS_PUBLIC, ndim, shape);
    if (rc < 0)
        return ag_errbuf_set(&m->err, rc, "encode: %s", ag_strerror(rc));
    double max = ag_mpc_fxp_max(m), scale = ldexp(1.0, (int)m->fxp_bits);
    for (size_t i = 0; i < out->numel; i++) {
        if (!(fabs(v[i]) < max)) {
            ag_tensor_cleanup(out);
            return ag_errbuf_set(&m->err, AG_E_MPC_RANGE,
                                 "encode: value %g at index %zu is outside the %s fixed-point "
                                 "range (|v| < %g with %u fraction bits)",
                                 v[i], i, ag_field_name(m->field), max, m->fxp_bits);
        }
        double r = nearbyint(v[i] * scale);
        if (m->field == AG_FM64) {
            ag_tensor_u64(out)[i] = (uint64_t)(int64_t)r;
        } else {
            __extension__ typedef __int128 i128;
            ag_tensor_u128(out)[i] = (ag_u128)(i128)r;
        }
    }
    return 0;
}

int ag_mpc_decode(ag_mpc *m, const ag_tensor *t, double *out)
{
    if (t->vis != AG_VIS_PUBLIC)
        return ag_errbuf_set(&m->err, AG_E_MPC_VIS, "decode: the tensor is a share: reveal "
                             "it first");
    if (t->field != m->field)
        return ag_errbuf_set(&m->err, AG_E_MPC_FIELD, "decode: tensor is %s, session is %s",
                             ag_field_name(t->field), ag_field_name(m->field));
    double scale = ldexp(1.0, -(int)m->fxp_bits);
    for (size_t i = 0; i < t->numel; i++) {
        if (t->field == AG_FM64) {
            out[i] = (double)(int64_t)ag_tensor_u64(t)[i] * scale;
        } else {
            __extension__ typedef __int128 i128;
            out[i] = (double)(i128)ag_tensor_u128(t)[i] * scale;
        }
    }
    return 0;
}
