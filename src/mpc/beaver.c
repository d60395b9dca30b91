/*
 * The Beaver dealer, trusted first party (SPU's TFP): rank 0 knows every
 * party's dealer seed (sent once at setup), so every party expands its own
 * shares of a correlation locally, and rank 0 expands everyone's, computes
 * the true correlation and sets its own share so the shares add up. No
 * message per triple. Rank 0 knows every party's masks, so it can unmask
 * every opened value on its own: it must be trusted with the data (see the
 * warning in argot/mpc.h).
 *
 * Boolean correlations follow the same pattern with XOR in place of the
 * sum: AND triples (c = a & b bitwise, XOR-shared), random bits (additive
 * shares of r in {0, 1}; the low bits of those shares are also an XOR
 * sharing of r, since the low bit of a sum is the XOR of the low bits) and
 * random values shared both ways (ra additively, rb by XOR, same r). The
 * secret bits of a random-bit request come from rank 0's own stream, which
 * only rank 0 can expand.
 *
 * Invariants:
 *   1. A request of `comps` components of `bytes` each is drawn by party
 *      j > 0 as `comps` consecutive fills of its stream (a, then b, then
 *      c), and by rank 0 as `own` consecutive fills of its own stream (its
 *      components that are not computed: a_0 and b_0 of a triple, never
 *      c_0). Whatever order rank 0 expands them in, its copy of party j's
 *      stream ends the request where party j's own stream does.
 *   2. Element-wise requests are dealt chunk by chunk (CHUNK_BYTES per
 *      component), every chunk drawn at its position in the streams
 *      (ag__prg_fill_at). Rank 0 draws the chunk of every party's
 *      components, sums them in a chunk-sized workspace and computes its
 *      last components for that chunk, so the dealer's sums never leave the
 *      cache and cost no full-size buffer. A caller may pass a function that
 *      runs on each chunk as soon as it is dealt (the _each variants), while
 *      the chunk is still in the cache: mul computes its e = x - a there.
 *      Only the matrix triple needs full sums (of a and b, for the product).
 *   3. Under the trusted third party (m->ttp, rank 0 only), rank 0 draws
 *      its first `own` components as every other party draws its own, and
 *      reads the rest from the dealer's Deal stream (ttp.c), chunk by
 *      chunk in the same order; the dealer computes them by running this
 *      file's TFP code on a session holding every party's stream
 *      (dealer.c), so both dealers deal the same shares from the same
 *      seeds. Random bits are the exception: their secret bits come from
 *      the dealer's own stream (dealer_secret), since rank 0 could expand
 *      its own, and rank 0 reads its share whole from the dealer.
 *      Positions: rank 0 tracks every party's (dealer_pos), moving them as
 *      the parties' own fills move their streams.
 */
#include <string.h>

#include "internal.h"

enum { CHUNK_BYTES = AG__CHUNK_BYTES }; /* of one component */

/* Fills dst with this party's next `bytes` of its own dealer stream. */
static int draw_own(ag_mpc *m, void *dst, size_t bytes)
{
    ag__prg *p = m->rank == 0 ? &m->dealer_all[0] : &m->dealer_self;
    return ag__prg_fill(p, dst, bytes);
}

static uint64_t blocks(size_t bytes)
{
    return (bytes + 15) / 16;
}

/* Rank 0: into sum, the sum (XOR when xored) over parties j > 0 of one
 * component of a request: len bytes from byte off (a multiple of 16) of the
 * component that starts `comp` blocks after pos[j], party j's position at
 * the start of the request. tmp (len bytes) is needed for more than two
 * parties. */
static int others_sum(ag_mpc *m, const uint64_t *pos, uint64_t comp, size_t off, size_t len,
                      bool xored, void *sum, void *tmp)
{
    ag_field f = m->field;
    size_t n = len / ag_field_bytes(f);
    for (unsigned j = 1; j < m->n; j++) {
        void *dst = j == 1 ? sum : tmp;
        int rc = ag__prg_fill_at(&m->dealer_all[j], pos[j] + comp + off / 16, dst, len);
        if (rc < 0)
            return rc;
        if (j == 1)
            continue;
        if (xored)
            ag__bits_xor(len, sum, sum, tmp);
        else
            ag__ring_add_inplace(f, n, sum, tmp);
    }
    return 0;
}

/* Rank 0: every party's position in its stream (a scratch buffer), read
 * before a request moves them; NULL when out of memory. */
static uint64_t *positions(ag_mpc *m)
{
    uint64_t *pos = ag__scratch_get(m, m->n * sizeof(*pos));
    if (pos)
        for (unsigned j = 0; j < m->n; j++)
            pos[j] = m->dealer_all[j].ctr;
    return pos;
}

/* ---- element-wise correlations ---------------------------------------- */

/* One element-wise request: what differs between mul, square, trunc, AND,
 * random bits and random values shared both ways. */
struct request {
    unsigned kind;  /* enum ag__deal_kind */
    unsigned comps; /* components each party j > 0 draws */
    unsigned own;   /* of which rank 0 draws its first `own` */
    unsigned xored; /* bit k: component k is XOR-shared */
    bool secret;    /* rank 0's own components hold the secret (random bits):
                     * the TTP dealer draws them from its own stream */
    /* Rank 0, one chunk of len elements: computes its components own..
     * comps-1 (or rewrites drawn ones) in out[], from its drawn ones and
     * sum[k], the others' component k summed (or XORed). */
    void (*finish)(ag_field f, size_t len, void **out, void **sum, unsigned bits);
};

/* The stream rank 0's own components of rq come from, where rank 0 holds
 * every stream (TFP, and the TTP dealer's sessions): its own, or for
 * secrets the TTP dealer's own stream. */
static ag__prg *own_stream(ag_mpc *m, const struct request *rq)
{
    return rq->secret && m->dealer_secret ? m->dealer_secret : &m->dealer_all[0];
}

/* Moves every stream rank 0 holds past a whole request of `bytes` per
 * component: its own by `own` components, every other party's by all. */
static void skip_request0(ag_mpc *m, const struct request *rq, size_t bytes)
{
    ag__prg *own_src = own_stream(m, rq);
    for (unsigned k = 0; k < rq->own; k++)
        ag__prg_skip(own_src, bytes);
    for (unsigned j = 1; j < m->n; j++)
        for (unsigned k = 0; k < rq->comps; k++)
            ag__prg_skip(&m->dealer_all[j], bytes);
}

/* Rank 0's part of one chunk (len bytes from byte off) of a request, into
 * chunk[k] for component k: draws its own components (from own_src),
 * sums the others' in work and finishes its computed components. pos:
 * every party's position at the request's start (pos[0]: own_src's);
 * step: blocks per component. */
static int deal_chunk0(ag_mpc *m, const struct request *rq, const ag__prg *own_src,
                       const uint64_t *pos, uint64_t step, size_t off, size_t len, unsigned bits,
                       void **chunk, uint8_t *work)
{
    void *sum[4];
    int rc = 0;
    for (unsigned k = 0; k < rq->comps; k++)
        sum[k] = work + k * (size_t)CHUNK_BYTES;
    for (unsigned k = 0; k < rq->own && rc == 0; k++)
        rc = ag__prg_fill_at(own_src, pos[0] + k * step + off / 16, chunk[k], len);
    for (unsigned k = 0; k < rq->comps && rc == 0; k++)
        rc = others_sum(m, pos, k * step, off, len, rq->xored >> k & 1, sum[k],
                        work + rq->comps * (size_t)CHUNK_BYTES);
    if (rc == 0)
        rq->finish(m->field, len / ag_field_bytes(m->field), chunk, sum, bits);
    return rc;
}

/* The first component the TTP dealer sends rank 0. */
static unsigned first_sent(const struct request *rq)
{
    return rq->secret ? 0 : rq->own;
}

/* TTP rank 0's side of deal(): its own components drawn as any party's,
 * the rest read from the dealer's stream (invariant 3). */
static int deal_ttp(ag_mpc *m, const struct request *rq, size_t n, unsigned bits, void **out,
                    ag__deal_fn each, void *ctx)
{
    size_t eb = ag_field_bytes(m->field), bytes = n * eb;
    uint64_t step = blocks(bytes), self_pos = m->dealer_self.ctr;
    unsigned own = first_sent(rq);
    struct ag__ttp_call c;
    int rc = ag__ttp_deal(m, &c, rq->kind, n, bits, 0, 0, 0, false, NULL);
    if (rc < 0)
        return rc;
    for (size_t off = 0; off < bytes && rc == 0; off += CHUNK_BYTES) {
        size_t len = AG_MIN((size_t)CHUNK_BYTES, bytes - off);
        for (unsigned k = 0; k < own && rc == 0; k++)
            rc = ag__prg_fill_at(&m->dealer_self, self_pos + k * step + off / 16,
                                 (uint8_t *)out[k] + off, len);
        for (unsigned k = own; k < rq->comps && rc == 0; k++)
            rc = ag__ttp_read(&c, (uint8_t *)out[k] + off, len);
        if (rc == 0 && each)
            each(ctx, off / eb, len / eb);
    }
    int end = ag__ttp_end(&c, rc == 0);
    if (rc == 0)
        rc = end;
    if (rc == 0) {
        for (unsigned k = 0; k < own; k++)
            ag__prg_skip(&m->dealer_self, bytes);
        for (unsigned j = 1; j < m->n; j++)
            m->dealer_pos[j] += rq->comps * step;
    }
    return rc;
}

/* Draws this party's shares of a request into out[0..comps) (n elements
 * each), chunk by chunk (invariant 2), calling each(ctx, i, len) after the
 * chunk of elements [i, i + len) is dealt when each is not NULL. At the
 * end, every stream stands where `comps` (rank 0's own: `own`) whole fills
 * would have left it. */
static int deal(ag_mpc *m, const struct request *rq, size_t n, unsigned bits, void **out,
                ag__deal_fn each, void *ctx)
{
    if (m->rank == 0 && m->ttp)
        return deal_ttp(m, rq, n, bits, out, each, ctx);
    size_t eb = ag_field_bytes(m->field), bytes = n * eb;
    ag__prg *self = m->rank == 0 ? own_stream(m, rq) : &m->dealer_self;
    uint64_t step = blocks(bytes), self_pos = self->ctr;
    uint64_t *pos = NULL;
    uint8_t *work = NULL;
    int rc = 0;
    if (m->rank == 0) {
        pos = positions(m);
        work = ag__scratch_get(m, (rq->comps + 1) * (size_t)CHUNK_BYTES);
        if (!pos || !work) {
            rc = AG_E_NOMEM;
            goto out;
        }
        pos[0] = self_pos;
    }
    for (size_t off = 0; off < bytes && rc == 0; off += CHUNK_BYTES) {
        size_t len = AG_MIN((size_t)CHUNK_BYTES, bytes - off);
        if (m->rank == 0) {
            void *chunk[4];
            for (unsigned k = 0; k < rq->comps; k++)
                chunk[k] = (uint8_t *)out[k] + off;
            rc = deal_chunk0(m, rq, self, pos, step, off, len, bits, chunk, work);
        } else {
            for (unsigned k = 0; k < rq->comps && rc == 0; k++)
                rc = ag__prg_fill_at(self, self_pos + k * step + off / 16,
                                     (uint8_t *)out[k] + off, len);
        }
        if (rc == 0 && each)
            each(ctx, off / eb, len / eb);
    }
    if (rc == 0 && m->rank == 0)
        skip_request0(m, rq, bytes);
    else if (rc == 0)
        for (unsigned k = 0; k < rq->comps; k++)
            ag__prg_skip(self, bytes);
out:
    ag__scratch_put(m, work);
    ag__scratch_put(m, pos);
    return rc;
}

/* c_0 = (a_0 + A) * (b_0 + B) - C, with A, B, C the others' sums. */
static void finish_mul(ag_field f, size_t len, void **out, void **sum, unsigned bits)
{
    (void)bits;
    ag__ring_add_inplace(f, len, sum[0], out[0]);
    ag__ring_add_inplace(f, len, sum[1], out[1]);
    ag__ring_mul(f, len, out[2], sum[0], sum[1]);
    ag__ring_sub(f, len, out[2], out[2], sum[2]);
}

/* b_0 = (a_0 + A)^2 - B. */
static void finish_square(ag_field f, size_t len, void **out, void **sum, unsigned bits)
{
    (void)bits;
    ag__ring_add_inplace(f, len, sum[0], out[0]);
    ag__ring_mul(f, len, out[1], sum[0], sum[0]);
    ag__ring_sub(f, len, out[1], out[1], sum[1]);
}

/* rt_0 = ((r_0 + R) >> bits) - RT, the shift arithmetic. */
static void finish_trunc(ag_field f, size_t len, void **out, void **sum, unsigned bits)
{
    ag__ring_add_inplace(f, len, sum[0], out[0]);
    ag__ring_arshift(f, len, out[1], sum[0], bits);
    ag__ring_sub(f, len, out[1], out[1], sum[1]);
}

/* c_0 = ((a_0 ^ A) & (b_0 ^ B)) ^ C. */
static void finish_and(ag_field f, size_t len, void **out, void **sum, unsigned bits)
{
    (void)bits;
    size_t nb = len * ag_field_bytes(f);
    ag__bits_xor(nb, sum[0], sum[0], out[0]);
    ag__bits_xor(nb, sum[1], sum[1], out[1]);
    ag__bits_and(nb, out[2], sum[0], sum[1]);
    ag__bits_xor(nb, out[2], out[2], sum[2]);
}

/* r_0 = (low bit of rank 0's draw) - R: the bit is the secret. */
static void finish_randbit(ag_field f, size_t len, void **out, void **sum, unsigned bits)
{
    (void)bits;
    if (f == AG_FM64) {
        uint64_t *p = out[0];
        for (size_t i = 0; i < len; i++)
            p[i] &= 1;
    } else {
        ag_u128 *p = out[0];
        for (size_t i = 0; i < len; i++)
            p[i] &= 1;
    }
    ag__ring_sub(f, len, out[0], out[0], sum[0]);
}

/* rb_0 = (ra_0 + RA) ^ RB: r's XOR shares. */
static void finish_rand_ab(ag_field f, size_t len, void **out, void **sum, unsigned bits)
{
    (void)bits;
    ag__ring_add_inplace(f, len, sum[0], out[0]);
    ag__bits_xor(len * ag_field_bytes(f), out[1], sum[0], sum[1]);
}

static const struct request requests[] = {
    {AG__DEAL_MUL, 3, 2, 0, false, finish_mul},
    {AG__DEAL_SQUARE, 2, 1, 0, false, finish_square},
    {AG__DEAL_TRUNC, 2, 1, 0, false, finish_trunc},
    /* AND triples: every party draws a, b, c; rank 0 draws a_0 and b_0 and
     * sets c_0 so the XOR of the c shares is (XOR a) & (XOR b). */
    {AG__DEAL_AND, 3, 2, 7, false, finish_and},
    /* Random bits: parties j > 0 draw their shares; rank 0 draws n
     * elements from its own stream, which no one else can expand, keeps
     * their low bits as the secret bits and subtracts the others' shares
     * from them. */
    {AG__DEAL_RANDBIT, 1, 1, 0, true, finish_randbit},
    /* A random r shared both ways: every party draws ra then rb; rank 0
     * draws ra_0 only, and sets rb_0 = r ^ (XOR of rb_j, j > 0), r the sum
     * of the ra. */
    {AG__DEAL_RAND_AB, 2, 1, 2, false, finish_rand_ab},
};

static const struct request *request_of(unsigned kind)
{
    for (size_t i = 0; i < AG_ARRAY_LEN(requests); i++)
        if (requests[i].kind == kind)
            return &requests[i];
    return NULL;
}

int ag__beaver_deal(ag_mpc *m, unsigned kind, size_t n, unsigned bits, void **out,
                    ag__deal_fn each, void *ctx)
{
    const struct request *rq = request_of(kind);
    if (!rq)
        return AG_E_INVAL;
    return deal(m, rq, n, bits, out, each, ctx);
}

int ag__beaver_deal_range(ag_mpc *m, unsigned kind, size_t n, unsigned bits, size_t i,
                          size_t len, void **out)
{
    const struct request *rq = request_of(kind);
    size_t eb = ag_field_bytes(m->field), from = i * eb, to = (i + len) * eb;
    if (!rq || !m->dealer_all || from % CHUNK_BYTES != 0 || i + len > n)
        return AG_E_INVAL;
    const ag__prg *own_src = own_stream(m, rq);
    uint64_t step = blocks(n * eb);
    uint64_t *pos = positions(m);
    uint8_t *work = ag__scratch_get(m, (rq->comps + 1) * (size_t)CHUNK_BYTES);
    int rc = pos && work ? 0 : AG_E_NOMEM;
    if (pos)
        pos[0] = own_src->ctr;
    for (size_t off = from; off < to && rc == 0; off += CHUNK_BYTES) {
        void *chunk[4];
        for (unsigned k = 0; k < rq->comps; k++)
            chunk[k] = (uint8_t *)out[k] + (off - from);
        rc = deal_chunk0(m, rq, own_src, pos, step, off, AG_MIN((size_t)CHUNK_BYTES, to - off),
                         bits, chunk, work);
    }
    ag__scratch_put(m, work);
    ag__scratch_put(m, pos);
    return rc;
}

void ag__beaver_deal_skip(ag_mpc *m, unsigned kind, size_t n)
{
    const struct request *rq = request_of(kind);
    size_t bytes = n * ag_field_bytes(m->field);
    if (!rq || !m->dealer_all)
        return;
    skip_request0(m, rq, bytes);
}

unsigned ag__beaver_comps(unsigned kind, unsigned *first_sent_out)
{
    const struct request *rq = request_of(kind);
    if (!rq)
        return 0;
    *first_sent_out = first_sent(rq);
    return rq->comps;
}

int ag__beaver_mul_each(ag_mpc *m, size_t n, void *a, void *b, void *c, ag__deal_fn each,
                        void *ctx)
{
    void *out[3] = {a, b, c};
    return ag__beaver_deal(m, AG__DEAL_MUL, n, 0, out, each, ctx);
}

int ag__beaver_mul(ag_mpc *m, size_t n, void *a, void *b, void *c)
{
    return ag__beaver_mul_each(m, n, a, b, c, NULL, NULL);
}

int ag__beaver_square_each(ag_mpc *m, size_t n, void *a, void *b, ag__deal_fn each, void *ctx)
{
    void *out[2] = {a, b};
    return ag__beaver_deal(m, AG__DEAL_SQUARE, n, 0, out, each, ctx);
}

int ag__beaver_square(ag_mpc *m, size_t n, void *a, void *b)
{
    return ag__beaver_square_each(m, n, a, b, NULL, NULL);
}

int ag__beaver_trunc_each(ag_mpc *m, size_t n, unsigned bits, void *r, void *rt,
                          ag__deal_fn each, void *ctx)
{
    void *out[2] = {r, rt};
    return ag__beaver_deal(m, AG__DEAL_TRUNC, n, bits, out, each, ctx);
}

int ag__beaver_trunc(ag_mpc *m, size_t n, unsigned bits, void *r, void *rt)
{
    return ag__beaver_trunc_each(m, n, bits, r, rt, NULL, NULL);
}

int ag__beaver_and(ag_mpc *m, size_t n, void *a, void *b, void *c)
{
    void *out[3] = {a, b, c};
    return ag__beaver_deal(m, AG__DEAL_AND, n, 0, out, NULL, NULL);
}

int ag__beaver_randbit(ag_mpc *m, size_t n, void *r)
{
    void *out[1] = {r};
    return ag__beaver_deal(m, AG__DEAL_RANDBIT, n, 0, out, NULL, NULL);
}

int ag__beaver_rand_ab(ag_mpc *m, size_t n, void *ra, void *rb)
{
    void *out[2] = {ra, rb};
    return ag__beaver_deal(m, AG__DEAL_RAND_AB, n, 0, out, NULL, NULL);
}

/* ---- the matrix triple --------------------------------------------------- */

/* Rank 0: dst = mine + (or - when sub) the others' component that starts
 * `comp` blocks after pos[j] (bytes long), chunk by chunk in work (two
 * chunks). dst may be mine. */
static int full_sum(ag_mpc *m, const uint64_t *pos, uint64_t comp, size_t bytes,
                    const void *mine, bool sub, void *dst, uint8_t *work)
{
    ag_field f = m->field;
    size_t eb = ag_field_bytes(f);
    for (size_t off = 0; off < bytes; off += CHUNK_BYTES) {
        size_t len = AG_MIN((size_t)CHUNK_BYTES, bytes - off);
        int rc = others_sum(m, pos, comp, off, len, false, work, work + CHUNK_BYTES);
        if (rc < 0)
            return rc;
        void *d = (uint8_t *)dst + off;
        const void *s = (const uint8_t *)mine + off;
        if (sub)
            ag__ring_sub(f, len / eb, d, s, work);
        else
            ag__ring_add(f, len / eb, d, s, work);
    }
    return 0;
}

/* Matrix triple: every party draws a, b, c (c only at j > 0); rank 0 sums
 * everyone's a and b in full (the product needs them whole) and sets
 * c_0 = A.B - the sum of the others' c. */
/* TTP rank 0's matrix requests: draws its own components (own_bytes[0..n_own),
 * into own[]), reads c (cb bytes) from the dealer's stream, and moves the
 * other parties' positions by `others` blocks. */
static int matrix_ttp(ag_mpc *m, unsigned kind, uint64_t mm, uint64_t k, uint64_t nn, bool tr,
                      const uint64_t *mask, void **own, const size_t *own_bytes, int n_own,
                      void *c, size_t cb, uint64_t others)
{
    struct ag__ttp_call call;
    int rc = ag__ttp_deal(m, &call, kind, kind == AG__DEAL_MASK ? mm * k : 0, 0, mm, k, nn, tr,
                          mask);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n_own && rc == 0; i++)
        rc = ag__prg_fill(&m->dealer_self, own[i], own_bytes[i]);
    if (rc == 0 && cb)
        rc = ag__ttp_read(&call, c, cb);
    int end = ag__ttp_end(&call, rc == 0);
    if (rc == 0)
        rc = end;
    if (rc == 0)
        for (unsigned j = 1; j < m->n; j++)
            m->dealer_pos[j] += others;
    return rc;
}

int ag__beaver_matmul(ag_mpc *m, size_t mm, size_t k, size_t nn, void *a, void *b, void *c)
{
    ag_field f = m->field;
    size_t eb = ag_field_bytes(f);
    size_t ab = mm * k * eb, bb = k * nn * eb, cb = mm * nn * eb;
    if (m->rank == 0 && m->ttp) {
        void *own[2] = {a, b};
        size_t own_bytes[2] = {ab, bb};
        return matrix_ttp(m, AG__DEAL_MATMUL, mm, k, nn, false, NULL, own, own_bytes, 2, c, cb,
                          blocks(ab) + blocks(bb) + blocks(cb));
    }
    int rc = draw_own(m, a, ab);
    if (rc == 0)
        rc = draw_own(m, b, bb);
    if (m->rank != 0)
        return rc == 0 ? draw_own(m, c, cb) : rc;
    if (rc < 0)
        return rc;
    size_t sizes[4] = {m->n * sizeof(uint64_t), ab, bb, 2 * (size_t)CHUNK_BYTES};
    void *buf[4]; /* positions, A, B, chunk workspace */
    if (ag__scratch_get_n(m, buf, 4, sizes) < 0)
        return AG_E_NOMEM;
    uint64_t *pos = buf[0];
    for (unsigned j = 0; j < m->n; j++)
        pos[j] = m->dealer_all[j].ctr;
    uint64_t pb = blocks(ab), pc = pb + blocks(bb);
    rc = full_sum(m, pos, 0, ab, a, false, buf[1], buf[3]);
    if (rc == 0)
        rc = full_sum(m, pos, pb, bb, b, false, buf[2], buf[3]);
    if (rc == 0) {
        ag__ring_matmul(f, mm, k, nn, c, buf[1], buf[2]);
        rc = full_sum(m, pos, pc, cb, c, true, c, buf[3]);
    }
    if (rc == 0)
        for (unsigned j = 1; j < m->n; j++) {
            ag__prg_skip(&m->dealer_all[j], ab);
            ag__prg_skip(&m->dealer_all[j], bb);
            ag__prg_skip(&m->dealer_all[j], cb);
        }
    ag__scratch_put_n(m, buf, 4);
    return rc;
}

/* ---- the Beaver cache ------------------------------------------------------ */

int ag__beaver_mask(ag_mpc *m, size_t bytes, void *a, void *full, uint64_t *mpos)
{
    if (m->rank == 0 && m->ttp) {
        mpos[0] = m->dealer_self.ctr;
        for (unsigned j = 1; j < m->n; j++)
            mpos[j] = m->dealer_pos[j];
        size_t eb = ag_field_bytes(m->field);
        return matrix_ttp(m, AG__DEAL_MASK, bytes / eb, 1, 0, false, NULL, &a, &bytes, 1, NULL,
                          0, blocks(bytes));
    }
    int rc = draw_own(m, a, bytes);
    if (m->rank != 0 || rc < 0)
        return rc;
    size_t sizes[2] = {m->n * sizeof(uint64_t), 2 * (size_t)CHUNK_BYTES};
    void *buf[2]; /* positions, chunk workspace */
    if (ag__scratch_get_n(m, buf, 2, sizes) < 0)
        return AG_E_NOMEM;
    uint64_t *pos = buf[0];
    for (unsigned j = 0; j < m->n; j++)
        pos[j] = m->dealer_all[j].ctr;
    rc = full_sum(m, pos, 0, bytes, a, false, full, buf[1]);
    if (rc == 0)
        for (unsigned j = 1; j < m->n; j++)
            ag__prg_skip(&m->dealer_all[j], bytes);
    ag__scratch_put_n(m, buf, 2);
    return rc;
}

/* As ag__beaver_matmul with a already dealt: every party draws b, then c
 * (j > 0); rank 0 sums everyone's b in full and sets c_0 = A.B - the sum
 * of the others' c. */
int ag__beaver_matmul_fixed(ag_mpc *m, const void *full, const uint64_t *mpos, bool tr, size_t p,
                            size_t q, size_t nn, void *b, void *c)
{
    ag_field f = m->field;
    size_t eb = ag_field_bytes(f), bb = q * nn * eb, cb = p * nn * eb;
    if (m->rank == 0 && m->ttp)
        return matrix_ttp(m, AG__DEAL_MATMUL_FIXED, p, q, nn, tr, mpos, &b, &bb, 1, c, cb,
                          blocks(bb) + blocks(cb));
    int rc = draw_own(m, b, bb);
    if (m->rank != 0)
        return rc == 0 ? draw_own(m, c, cb) : rc;
    if (rc < 0)
        return rc;
    size_t sizes[3] = {m->n * sizeof(uint64_t), bb, 2 * (size_t)CHUNK_BYTES};
    void *buf[3]; /* positions, B, chunk workspace */
    if (ag__scratch_get_n(m, buf, 3, sizes) < 0)
        return AG_E_NOMEM;
    uint64_t *pos = buf[0];
    for (unsigned j = 0; j < m->n; j++)
        pos[j] = m->dealer_all[j].ctr;
    rc = full_sum(m, pos, 0, bb, b, false, buf[1], buf[2]);
    if (rc == 0) {
        memset(c, 0, cb);
        if (tr)
            ag__ring_matmul_tn_acc(f, p, q, nn, c, full, buf[1]);
        else
            ag__ring_matmul_acc(f, p, q, nn, c, full, buf[1]);
        rc = full_sum(m, pos, blocks(bb), cb, c, true, c, buf[2]);
    }
    if (rc == 0)
        for (unsigned j = 1; j < m->n; j++) {
            ag__prg_skip(&m->dealer_all[j], bb);
            ag__prg_skip(&m->dealer_all[j], cb);
        }
    ag__scratch_put_n(m, buf, 3);
    return rc;
}
