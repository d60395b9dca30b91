/*
 * Boolean shares (AG_VIS_BSHARE) and the conversions between the two
 * sharings, semi2k style as in SPU; each kernel's rounds and bytes are in
 * argot/mpc.h and checked by tests/unit/mpc/boolean_test.c.
 *
 * A boolean share is a K-bit ring element and the secret is the XOR of the
 * parties' shares. XOR is local (a public operand joins rank 0's share
 * only), and so is AND with a public operand. AND of two shares uses a
 * dealer triple c = a & b: the parties open e = x ^ a and f = y ^ b in one
 * message per peer and set z = c ^ (e & b) ^ (f & a), rank 0 adding e & f.
 *
 * a2b: party i's additive share x_i, held by party i as its XOR share and
 * as 0 by everyone else, is a boolean sharing of x_i; the N of them are
 * added by Kogge-Stone adders in a tree of ceil(log2 N) levels, every
 * adder of a level running in the same messages. An adder is log2(K) + 1
 * rounds: G = x & y, P = x ^ y; then for s = 1, 2, .., K/2 both
 * G ^= P & (G << s) and P &= P << s in one message; the sum is
 * x ^ y ^ (G << 1). The last level skips P &= P << s, which nothing reads,
 * so an adder makes 2 log2(K) ANDs of K bits: one fewer than SPU's cost
 * model row for a2b, which counts that AND (its kernel computes it).
 *
 * b2a (SPDZ2k's conversion, as SPU's semi2k does it with a trusted
 * dealer): the dealer deals K random bits r_b per element as additive
 * shares; the low bits of those shares XOR-share r = sum 2^b r_b. The
 * parties open c = x ^ r (K bits per peer, one round), and then
 * x = c ^ r = sum 2^b (c_b + r_b - 2 c_b r_b) = c + sum 2^b (1 - 2 c_b) r_b
 * is linear in the shares of the r_b (rank 0 adds c). The dealer's output
 * is K ring elements per element (512 bytes for FM64, 2 KiB for FM128),
 * held until the opening returns.
 *
 * msb: a2b, the top bit of every element, then a one-bit b2a with one
 * random bit r: open c = b ^ r (packed, one bit per element), and the
 * additive bit is c + r - 2cr = (c ? 1 - r : r), rank 0 adding the 1.
 *
 * Invariants:
 *   1. Every party makes the same dealer requests and link operations in
 *      the same order: only the operands' visibilities and shapes, which
 *      all parties share, choose a kernel's path; never its rank or data.
 *   2. XOR and AND act byte by byte, so they mean the same on ring elements
 *      and on packed bit strings (bit i at byte i / 8, position i % 8), and
 *      an AND triple of ring elements serves a string of any length (a
 *      prefix of its bytes).
 *   3. A failing kernel leaves out empty and fails the job (ag__mpc_fail
 *      aborts the link), as in semi2k.c.
 */
#include <string.h>

#include "internal.h"

/* An empty output on entry, so every failure path can clean up. */
static void out_reset(ag_tensor *out)
{
    memset(out, 0, sizeof(*out));
}

static unsigned field_bits(ag_field f)
{
    return (unsigned)ag_field_bytes(f) * 8;
}

static int new_like(ag_mpc *m, const char *op, const ag_tensor *x, ag_vis v, ag_tensor *out)
{
    int rc = ag_tensor_init(out, m->field, v, x->ndim, x->shape);
    if (rc < 0)
        return ag__mpc_fail(m, rc, op, "%s", ag_strerror(rc));
    return 0;
}

/* ---- bit strings ------------------------------------------------------- */

void ag__bits_xor(size_t nbytes, void *dst, const void *a, const void *b)
{
    uint8_t *d = dst;
    const uint8_t *x = a, *y = b;
    size_t i = 0;
    /* whole words through memcpy (plain loads and stores once compiled) */
    for (; i + 8 <= nbytes; i += 8) {
        uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        u ^= v;
        memcpy(d + i, &u, 8);
    }
    for (; i < nbytes; i++)
        d[i] = x[i] ^ y[i];
}

void ag__bits_and(size_t nbytes, void *dst, const void *a, const void *b)
{
    uint8_t *d = dst;
    const uint8_t *x = a, *y = b;
    size_t i = 0;
    for (; i + 8 <= nbytes; i += 8) {
        uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        u &= v;
        memcpy(d + i, &u, 8);
    }
    for (; i < nbytes; i++)
        d[i] = x[i] & y[i];
}

/* dst = a << s (left) or a >> s (logical right), n elements, s < K. */
static void words_shift(ag_field f, size_t n, void *dst, const void *a, unsigned s, bool left)
{
    if (f == AG_FM64) {
        uint64_t *d = dst;
        const uint64_t *x = a;
        for (size_t i = 0; i < n; i++)
            d[i] = left ? x[i] << s : x[i] >> s;
    } else {
        ag_u128 *d = dst;
        const ag_u128 *x = a;
        for (size_t i = 0; i < n; i++)
            d[i] = left ? x[i] << s : x[i] >> s;
    }
}

/* The top bit of each of n elements, packed into bits (zeroed by the
 * caller, (n + 7) / 8 bytes). */
static void top_bits(ag_field f, size_t n, const void *words, uint8_t *bits)
{
    unsigned top = field_bits(f) - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned b = f == AG_FM64 ? (unsigned)(((const uint64_t *)words)[i] >> top)
                                  : (unsigned)(((const ag_u128 *)words)[i] >> top);
        bits[i / 8] |= (uint8_t)(b << (i % 8));
    }
}

/* ---- checks and buffers -------------------------------------------------- */

static const char *vis_plural(ag_vis v)
{
    switch (v) {
    case AG_VIS_PUBLIC: return "public tensors";
    case AG_VIS_ASHARE: return "arithmetic shares";
    case AG_VIS_BSHARE: return "boolean shares";
    }
    return "tensors of unknown visibility";
}

int ag__mpc_begin(ag_mpc *m, const char *op, unsigned vis_ok, ag_tensor *out,
                  const ag_tensor *const *in, size_t n_in)
{
    /* an output that is an input is left alone: emptying it would lose the
     * caller's operand */
    for (size_t i = 0; i < n_in; i++)
        if (in[i] == out)
            return ag__mpc_fail(m, AG_E_INVAL, op, "the output must not be an input");
    out_reset(out);
    if (!m->ready)
        return ag_errbuf_set(&m->err, AG_E_STATE, "%s: the session is not set up "
                             "(call ag_mpc_setup first)", op);
    for (size_t i = 0; i < n_in; i++) {
        const ag_tensor *x = in[i];
        if (!x->data)
            return ag__mpc_fail(m, AG_E_INVAL, op, "operand %zu is an empty tensor", i + 1);
        if (x->field != m->field)
            return ag__mpc_fail(m, AG_E_MPC_FIELD, op, "operand is %s, the session is %s",
                                ag_field_name(x->field), ag_field_name(m->field));
        if ((unsigned)x->vis > AG_VIS_BSHARE || !(vis_ok & AG__VIS_OK(x->vis)))
            return ag__mpc_fail(m, AG_E_MPC_VIS, op, "not defined on %s", vis_plural(x->vis));
        if (i > 0 && !ag_tensor_same_shape(in[0], x)) {
            char a[64], b[64];
            return ag__mpc_fail(m, AG_E_MPC_SHAPE, op, "shapes %s and %s differ",
                                ag_tensor_shape_str(in[0], a, sizeof(a)),
                                ag_tensor_shape_str(x, b, sizeof(b)));
        }
    }
    return 0;
}

int ag__bufs_new(void **bufs, int n_bufs, const size_t *bytes)
{
    for (int i = 0; i < n_bufs; i++) {
        bufs[i] = ag_calloc(1, bytes[i] ? bytes[i] : 1);
        if (!bufs[i]) {
            while (i-- > 0)
                ag_free(bufs[i]);
            return AG_E_NOMEM;
        }
    }
    return 0;
}

void ag__bufs_free(void **bufs, int n_bufs, const size_t *bytes)
{
    for (int i = 0; i < n_bufs; i++) {
        ag_wipe(bufs[i], bytes[i]);
        ag_free(bufs[i]);
    }
}

/* ---- opening and AND ----------------------------------------------------- */

/* Sends buf (nbytes) to every peer and XORs every peer's into it: the XOR
 * over all parties, in place. One round. Peers' messages are kept as
 * scratch. */
static int xor_open(ag_mpc *m, const char *op, void *buf, size_t nbytes)
{
    uint64_t tag = ag__mpc_tag(m);
    int rc = ag__mpc_send_all(m, op, tag, buf, nbytes);
    for (unsigned p = 0; p < m->n && rc == 0; p++) {
        if (p == m->rank)
            continue;
        void *peer;
        rc = ag__mpc_recv(m, op, p, tag, nbytes, &peer);
        if (rc < 0)
            break;
        ag__bits_xor(nbytes, buf, buf, peer);
        ag__scratch_adopt(m, peer, nbytes);
    }
    return rc;
}

size_t ag__bool_and_work_bytes(ag_mpc *m, size_t nbytes)
{
    /* triples come in whole ring elements; a packed string uses a prefix */
    size_t eb = ag_field_bytes(m->field), tb = (nbytes + eb - 1) / eb * eb;
    return 3 * tb + 2 * nbytes;
}

int ag__bool_and_in(ag_mpc *m, const char *op, void *work, size_t nbytes, const void *x,
                    const void *y, void *z)
{
    size_t eb = ag_field_bytes(m->field), nel = (nbytes + eb - 1) / eb, tb = nel * eb;
    uint8_t *a = work, *b = a + tb, *c = b + tb, *e = c + tb, *f = e + nbytes;
    int rc = ag__beaver_and(m, nel, a, b, c);
    if (rc < 0)
        return ag__mpc_fail(m, rc, op, "dealer: %s", ag__dealer_why(m, rc));
    /* e and f go out together, in one message per peer */
    ag__bits_xor(nbytes, e, x, a);
    ag__bits_xor(nbytes, f, y, b);
    rc = xor_open(m, op, e, 2 * nbytes);
    if (rc < 0)
        return rc;
    /* z = c ^ (e & b) ^ (f & a), rank 0 adding e & f; x and y are read for
     * the last time above, so z may be one of them */
    ag__bits_and(nbytes, b, e, b);
    ag__bits_and(nbytes, a, f, a);
    ag__bits_xor(nbytes, z, c, b);
    ag__bits_xor(nbytes, z, z, a);
    if (m->rank == 0) {
        ag__bits_and(nbytes, b, e, f);
        ag__bits_xor(nbytes, z, z, b);
    }
    return 0;
}

int ag__bool_and(ag_mpc *m, const char *op, size_t nbytes, const void *x, const void *y, void *z)
{
    void *work = ag__scratch_get(m, ag__bool_and_work_bytes(m, nbytes));
    if (!work)
        return ag__mpc_fail(m, AG_E_NOMEM, op, "no memory for %zu bytes of AND", nbytes);
    int rc = ag__bool_and_in(m, op, work, nbytes, x, y, z);
    ag__scratch_put(m, work);
    return rc;
}

/* ---- the adder ------------------------------------------------------------ */

/* sum = x + y mod 2^K for n boolean-shared elements: a Kogge-Stone adder,
 * log2(K) + 1 rounds of 2 log2(K) ANDs in all (see the file comment). sum
 * may be x or y. */
static int ks_add(ag_mpc *m, const char *op, size_t n, const void *x, const void *y, void *sum)
{
    ag_field f = m->field;
    unsigned k = field_bits(f);
    size_t wb = n * ag_field_bytes(f);
    /* one allocation for every level: P, G, [left operands], [right
     * operands], then the AND triples and openings of the widest level */
    size_t work = ag__bool_and_work_bytes(m, 2 * wb), total = 6 * wb + work;
    uint8_t *p = ag__scratch_get(m, total);
    if (!p)
        return ag__mpc_fail(m, AG_E_NOMEM, op, "no memory for an adder of %zu elements", n);
    uint8_t *g = p + wb, *l = g + wb, *r = l + 2 * wb, *and_work = r + 2 * wb;
    ag__bits_xor(wb, p, x, y);
    int rc = ag__bool_and_in(m, op, and_work, wb, x, y, g);
    for (unsigned s = 1; rc == 0 && s < k; s <<= 1) {
        if (2 * s < k) {
            /* [P | P] & [P << s | G << s] = [new P | P & (G << s)] */
            memcpy(l, p, wb);
            memcpy(l + wb, p, wb);
            words_shift(f, n, r, p, s, true);
            words_shift(f, n, r + wb, g, s, true);
            rc = ag__bool_and_in(m, op, and_work, 2 * wb, l, r, l);
            if (rc == 0) {
                memcpy(p, l, wb);
                ag__bits_xor(wb, g, g, l + wb);
            }
        } else {
            /* the last level: P is not read again */
            words_shift(f, n, r, g, s, true);
            rc = ag__bool_and_in(m, op, and_work, wb, p, r, l);
            if (rc == 0)
                ag__bits_xor(wb, g, g, l);
        }
    }
    if (rc == 0) {
        words_shift(f, n, r, g, 1, true);
        ag__bits_xor(wb, sum, x, y);
        ag__bits_xor(wb, sum, sum, r);
    }
    ag__scratch_put(m, p);
    return rc;
}

/* Boolean shares of x (n elements of this party's additive share) into
 * out: the parties' shares summed by a tree of adders, every adder of a
 * level in one vectorized ks_add. */
static int a2b_words(ag_mpc *m, const char *op, size_t n, const void *x, void *out)
{
    size_t wb = n * ag_field_bytes(m->field);
    unsigned cnt = m->n;
    size_t sizes[3] = {cnt * wb, cnt / 2 * wb, cnt / 2 * wb};
    void *buf[3]; /* the values still to add, then left and right operands */
    if (ag__scratch_get_n(m, buf, 3, sizes) < 0)
        return ag__mpc_fail(m, AG_E_NOMEM, op, "no memory for %zu elements", n);
    uint8_t *v = buf[0], *xs = buf[1], *ys = buf[2];
    /* the other parties' shares count as 0 here */
    memset(v, 0, cnt * wb);
    memcpy(v + m->rank * wb, x, wb);
    int rc = 0;
    while (cnt > 1 && rc == 0) {
        unsigned pairs = cnt / 2;
        for (unsigned i = 0; i < pairs; i++) {
            memcpy(xs + i * wb, v + 2 * i * wb, wb);
            memcpy(ys + i * wb, v + (2 * i + 1) * wb, wb);
        }
        rc = ks_add(m, op, pairs * n, xs, ys, v);
        /* an odd value out waits for the next level, after the sums */
        if (cnt % 2)
            memmove(v + pairs * wb, v + (cnt - 1) * wb, wb);
        cnt = pairs + cnt % 2;
    }
    if (rc == 0)
        memcpy(out, v, wb);
    ag__scratch_put_n(m, buf, 3);
    return rc;
}

/* ---- b2a ------------------------------------------------------------------ */

/* The b2a loops for one element type T of k bits: c = x ^ r, r's bit b the
 * low bit of rb[i*k + b]; then out = sum 2^b (1 - 2 c_b) rb[i*k + b], plus
 * c at rank 0. */
#define B2A_LOOPS(T, sfx)                                                          \
    static void b2a_mask##sfx(size_t n, T *c, const T *x, const T *rb)             \
    {                                                                              \
        const unsigned k = sizeof(T) * 8;                                          \
        for (size_t i = 0; i < n; i++) {                                           \
            T mask = 0;                                                            \
            for (unsigned b = 0; b < k; b++)                                       \
                mask |= (rb[i * k + b] & 1) << b;                                  \
            c[i] = x[i] ^ mask;                                                    \
        }                                                                          \
    }                                                                              \
    static void b2a_combine##sfx(size_t n, T *out, const T *c, const T *rb, bool rank0) \
    {                                                                              \
        const unsigned k = sizeof(T) * 8;                                          \
        for (size_t i = 0; i < n; i++) {                                           \
            T acc = rank0 ? c[i] : 0;                                              \
            for (unsigned b = 0; b < k; b++) {                                     \
                T t = rb[i * k + b] << b;                                          \
                acc += (c[i] >> b & 1) ? 0 - t : t;                                \
            }                                                                      \
            out[i] = acc;                                                          \
        }                                                                          \
    }

B2A_LOOPS(uint64_t, 64)
B2A_LOOPS(ag_u128, 128)

/* Additive shares of the boolean-shared x (n elements) into out. */
static int b2a_words(ag_mpc *m, const char *op, size_t n, const void *x, void *out)
{
    ag_field f = m->field;
    size_t eb = ag_field_bytes(f), k = field_bits(f);
    size_t sizes[2] = {n * k * eb, n * eb};
    void *buf[2]; /* the random bits, then c */
    if (ag__scratch_get_n(m, buf, 2, sizes) < 0)
        return ag__mpc_fail(m, AG_E_NOMEM, op, "no memory for %zu elements", n);
    int rc = ag__beaver_randbit(m, n * k, buf[0]);
    if (rc < 0) {
        rc = ag__mpc_fail(m, rc, op, "dealer: %s", ag__dealer_why(m, rc));
        goto out;
    }
    if (f == AG_FM64)
        b2a_mask64(n, buf[1], x, buf[0]);
    else
        b2a_mask128(n, buf[1], x, buf[0]);
    rc = xor_open(m, op, buf[1], n * eb);
    if (rc < 0)
        goto out;
    if (f == AG_FM64)
        b2a_combine64(n, out, buf[1], buf[0], m->rank == 0);
    else
        b2a_combine128(n, out, buf[1], buf[0], m->rank == 0);
out:
    ag__scratch_put_n(m, buf, 2);
    return rc;
}

/* The low bit of element i of v. */
static unsigned low_bit(ag_field f, const void *v, size_t i)
{
    return f == AG_FM64 ? (unsigned)(((const uint64_t *)v)[i] & 1)
                        : (unsigned)(((const ag_u128 *)v)[i] & 1);
}

/* Element i of v becomes one - v[i]. */
static void one_minus(ag_field f, void *v, size_t i, unsigned one)
{
    if (f == AG_FM64)
        ((uint64_t *)v)[i] = one - ((uint64_t *)v)[i];
    else
        ((ag_u128 *)v)[i] = one - ((ag_u128 *)v)[i];
}

int ag__bool_bits_to_a(ag_mpc *m, const char *op, size_t n, const uint8_t *bits, void *out)
{
    size_t nb = (n + 7) / 8;
    uint8_t *c = ag__scratch_get(m, nb);
    if (!c)
        return ag__mpc_fail(m, AG_E_NOMEM, op, "no memory for %zu bits", n);
    memset(c, 0, nb);
    /* out holds this party's shares of the random bits r until the end */
    int rc = ag__beaver_randbit(m, n, out);
    if (rc < 0) {
        rc = ag__mpc_fail(m, rc, op, "dealer: %s", ag__dealer_why(m, rc));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned b = (bits[i / 8] >> (i % 8) ^ low_bit(m->field, out, i)) & 1;
        c[i / 8] |= (uint8_t)(b << (i % 8));
    }
    rc = xor_open(m, op, c, nb);
    if (rc < 0)
        goto out;
    /* the bit is c + r - 2cr: r where c = 0, 1 - r where c = 1 */
    for (size_t i = 0; i < n; i++)
        if (c[i / 8] >> (i % 8) & 1)
            one_minus(m->field, out, i, m->rank == 0);
out:
    ag__scratch_put(m, c);
    return rc;
}

int ag__bool_msb(ag_mpc *m, const char *op, const ag_tensor *x, ag_tensor *out)
{
    out_reset(out);
    ag_field f = m->field;
    size_t n = x->numel, wb = n * ag_field_bytes(f), nb = (n + 7) / 8;
    int rc = new_like(m, op, x, x->vis == AG_VIS_PUBLIC ? AG_VIS_PUBLIC : AG_VIS_ASHARE, out);
    if (rc < 0)
        return rc;
    if (x->vis == AG_VIS_PUBLIC) {
        words_shift(f, n, out->data, x->data, field_bits(f) - 1, false);
        return 0;
    }
    size_t sizes[2] = {x->vis == AG_VIS_ASHARE ? wb : 0, nb};
    void *buf[2]; /* boolean shares of an arithmetic x, then the top bits */
    if (ag__scratch_get_n(m, buf, 2, sizes) < 0) {
        ag_tensor_cleanup(out);
        return ag__mpc_fail(m, AG_E_NOMEM, op, "no memory for %zu elements", n);
    }
    memset(buf[1], 0, nb);
    const void *words = x->data;
    if (x->vis == AG_VIS_ASHARE) {
        rc = a2b_words(m, op, n, x->data, buf[0]);
        words = buf[0];
    }
    if (rc == 0) {
        top_bits(f, n, words, buf[1]);
        rc = ag__bool_bits_to_a(m, op, n, buf[1], out->data);
    }
    ag__scratch_put_n(m, buf, 2);
    if (rc < 0)
        ag_tensor_cleanup(out);
    return rc;
}

/* ---- kernels ----------------------------------------------------------- */

/* x ^ y or x & y, for public and boolean-shared operands. */
static int xor_and(ag_mpc *m, const char *op, const ag_tensor *x, const ag_tensor *y, bool is_and,
                   ag_tensor *out)
{
    const ag_tensor *in[2] = {x, y};
    int rc = ag__mpc_begin(m, op, AG__VIS_OK(AG_VIS_PUBLIC) | AG__VIS_OK(AG_VIS_BSHARE), out,
                           in, 2);
    bool pub = x->vis == AG_VIS_PUBLIC && y->vis == AG_VIS_PUBLIC;
    bool shared = x->vis == AG_VIS_BSHARE && y->vis == AG_VIS_BSHARE;
    if (rc == 0)
        rc = new_like(m, op, x, pub ? AG_VIS_PUBLIC : AG_VIS_BSHARE, out);
    if (rc < 0)
        return rc;
    size_t bytes = x->numel * ag_field_bytes(m->field);
    if (is_and && shared) {
        rc = ag__bool_and(m, op, bytes, x->data, y->data, out->data);
    } else if (is_and) {
        ag__bits_and(bytes, out->data, x->data, y->data); /* distributes over the shares */
    } else if (pub || shared || m->rank == 0) {
        ag__bits_xor(bytes, out->data, x->data, y->data);
    } else {
        /* a public operand joins rank 0's share only */
        memcpy(out->data, (x->vis == AG_VIS_BSHARE ? x : y)->data, bytes);
    }
    if (rc < 0)
        ag_tensor_cleanup(out);
    return rc;
}

int ag_mpc_xor(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    return xor_and(m, "xor", x, y, false, out);
}

int ag_mpc_and(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    return xor_and(m, "and", x, y, true, out);
}

/* a2b (to_bool) or b2a: from vis `from` to the other sharing; a public
 * tensor is copied. */
static int convert(ag_mpc *m, const char *op, const ag_tensor *x, ag_vis from, ag_vis to,
                   ag_tensor *out)
{
    int rc = ag__mpc_begin(m, op, AG__VIS_OK(AG_VIS_PUBLIC) | AG__VIS_OK(from), out, &x, 1);
    if (rc == 0)
        rc = new_like(m, op, x, x->vis == AG_VIS_PUBLIC ? AG_VIS_PUBLIC : to, out);
    if (rc < 0)
        return rc;
    if (x->vis == AG_VIS_PUBLIC)
        memcpy(out->data, x->data, x->numel * ag_field_bytes(m->field));
    else if (to == AG_VIS_BSHARE)
        rc = a2b_words(m, op, x->numel, x->data, out->data);
    else
        rc = b2a_words(m, op, x->numel, x->data, out->data);
    if (rc < 0)
        ag_tensor_cleanup(out);
    return rc;
}

int ag_mpc_a2b(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    return convert(m, "a2b", x, AG_VIS_ASHARE, AG_VIS_BSHARE, out);
}

int ag_mpc_b2a(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    return convert(m, "b2a", x, AG_VIS_BSHARE, AG_VIS_ASHARE, out);
}

/* Accepts a boolean share as well: its top bit needs no adder, only the
 * one-bit conversion. */
int ag_mpc_msb(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    unsigned any = AG__VIS_OK(AG_VIS_PUBLIC) | AG__VIS_OK(AG_VIS_ASHARE) |
                   AG__VIS_OK(AG_VIS_BSHARE);
    int rc = ag__mpc_begin(m, "msb", any, out, &x, 1);
    if (rc < 0)
        return rc;
    return ag__bool_msb(m, "msb", x, out);
}
