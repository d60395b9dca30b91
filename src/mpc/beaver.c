/*
 * The Beaver dealer, trusted first party (SPU's TFP): rank 0 knows every
 * party's dealer seed (sent once at setup), so every party expands its own
 * shares of a correlation locally, and rank 0 expands everyone's, computes
 * the true correlation and sets its own share so the shares add up. No
 * message per triple. Rank 0 knows every party's masks, so it can unmask
 * every opened value on its own: it must be trusted with the data (see the
 * warning in argot/mpc.h).
 *
 * Every party consumes its dealer stream in the same order for the same
 * request (a, then b, then c), so rank 0's copy of party j's stream stays
 * in step with party j's own. Rank 0 never draws its own last component
 * (c_0, b_0 of a square, rt_0): it computes it.
 *
 * Boolean correlations follow the same pattern with XOR in place of the
 * sum: AND triples (c = a & b bitwise, XOR-shared), random bits (additive
 * shares of r in {0, 1}; the low bits of those shares are also an XOR
 * sharing of r, since the low bit of a sum is the XOR of the low bits) and
 * random values shared both ways (ra additively, rb by XOR, same r). The
 * secret bits of a random-bit request come from rank 0's own stream, which
 * only rank 0 can expand.
 */
#include <string.h>

#include "internal.h"

/* One buffer per component, zeroed; sums accumulated over parties. */
struct scratch {
    void *buf[3];
    size_t bytes[3];
};

static int scratch_new(struct scratch *s, size_t b0, size_t b1, size_t b2)
{
    memset(s, 0, sizeof(*s));
    size_t b[3] = {b0, b1, b2};
    for (int i = 0; i < 3; i++) {
        s->bytes[i] = b[i];
        if (!b[i])
            continue;
        s->buf[i] = ag_calloc(1, b[i]);
        if (!s->buf[i])
            return AG_E_NOMEM;
    }
    return 0;
}

static void scratch_free(struct scratch *s)
{
    for (int i = 0; i < 3; i++) {
        ag_wipe(s->buf[i], s->bytes[i]);
        ag_free(s->buf[i]);
    }
}

/* Fills dst with party j's next `bytes` of dealer stream (rank 0 only for
 * j != rank). */
static int draw(ag_mpc *m, unsigned j, void *dst, size_t bytes)
{
    ag__prg *p = m->rank == 0 ? &m->dealer_all[j] : &m->dealer_self;
    return ag__prg_fill(p, dst, bytes);
}

int ag__beaver_mul(ag_mpc *m, size_t n, void *a, void *b, void *c)
{
    ag_field f = m->field;
    size_t bytes = n * ag_field_bytes(f);
    int rc = draw(m, m->rank, a, bytes);
    if (rc == 0)
        rc = draw(m, m->rank, b, bytes);
    if (m->rank != 0)
        return rc == 0 ? draw(m, m->rank, c, bytes) : rc;
    /* rank 0: A = sum a_j, B = sum b_j, S = sum_{j>0} c_j; c_0 = A*B - S */
    struct scratch s;
    if (rc == 0)
        rc = scratch_new(&s, bytes, bytes, bytes);
    else
        memset(&s, 0, sizeof(s));
    if (rc == 0) {
        memcpy(s.buf[0], a, bytes);
        memcpy(s.buf[1], b, bytes);
    }
    for (unsigned j = 1; j < m->n && rc == 0; j++) {
        /* c (rank 0's output) is free until the end: use it as a buffer */
        rc = draw(m, j, c, bytes);
        if (rc < 0)
            break;
        ag__ring_add_inplace(f, n, s.buf[0], c);
        rc = draw(m, j, c, bytes);
        if (rc < 0)
            break;
        ag__ring_add_inplace(f, n, s.buf[1], c);
        rc = draw(m, j, c, bytes);
        if (rc < 0)
            break;
        ag__ring_add_inplace(f, n, s.buf[2], c);
    }
    if (rc == 0) {
        ag__ring_mul(f, n, c, s.buf[0], s.buf[1]);
        ag__ring_sub(f, n, c, c, s.buf[2]);
    }
    scratch_free(&s);
    return rc;
}

int ag__beaver_square(ag_mpc *m, size_t n, void *a, void *b)
{
    ag_field f = m->field;
    size_t bytes = n * ag_field_bytes(f);
    int rc = draw(m, m->rank, a, bytes);
    if (m->rank != 0)
        return rc == 0 ? draw(m, m->rank, b, bytes) : rc;
    struct scratch s;
    if (rc == 0)
        rc = scratch_new(&s, bytes, bytes, 0);
    else
        memset(&s, 0, sizeof(s));
    if (rc == 0)
        memcpy(s.buf[0], a, bytes);
    for (unsigned j = 1; j < m->n && rc == 0; j++) {
        rc = draw(m, j, b, bytes);
        if (rc < 0)
            break;
        ag__ring_add_inplace(f, n, s.buf[0], b);
        rc = draw(m, j, b, bytes);
        if (rc < 0)
            break;
        ag__ring_add_inplace(f, n, s.buf[1], b);
    }
    if (rc == 0) {
        ag__ring_mul(f, n, b, s.buf[0], s.buf[0]);
        ag__ring_sub(f, n, b, b, s.buf[1]);
    }
    scratch_free(&s);
    return rc;
}

int ag__beaver_matmul(ag_mpc *m, size_t mm, size_t k, size_t nn, void *a, void *b, void *c)
{
    ag_field f = m->field;
    size_t eb = ag_field_bytes(f);
    size_t ab = mm * k * eb, bb = k * nn * eb, cb = mm * nn * eb;
    int rc = draw(m, m->rank, a, ab);
    if (rc == 0)
        rc = draw(m, m->rank, b, bb);
    if (m->rank != 0)
        return rc == 0 ? draw(m, m->rank, c, cb) : rc;
    /* rank 0: sums of a_j, b_j and of c_j (j > 0), then c_0 = A.B - S */
    struct scratch s;
    if (rc == 0)
        rc = scratch_new(&s, ab, bb, cb);
    else
        memset(&s, 0, sizeof(s));
    void *tmp = NULL;
    size_t tb = AG_MAX(ab, bb);
    if (rc == 0) {
        tmp = ag_malloc(tb ? tb : 1);
        rc = tmp ? 0 : AG_E_NOMEM;
    }
    if (rc == 0) {
        memcpy(s.buf[0], a, ab);
        memcpy(s.buf[1], b, bb);
    }
    for (unsigned j = 1; j < m->n && rc == 0; j++) {
        rc = draw(m, j, tmp, ab);
        if (rc < 0)
            break;
        ag__ring_add_inplace(f, mm * k, s.buf[0], tmp);
        rc = draw(m, j, tmp, bb);
        if (rc < 0)
            break;
        ag__ring_add_inplace(f, k * nn, s.buf[1], tmp);
        rc = draw(m, j, c, cb);
        if (rc < 0)
            break;
        ag__ring_add_inplace(f, mm * nn, s.buf[2], c);
    }
    if (rc == 0) {
        ag__ring_matmul(f, mm, k, nn, c, s.buf[0], s.buf[1]);
        ag__ring_sub(f, mm * nn, c, c, s.buf[2]);
    }
    if (tmp)
        ag_wipe(tmp, tb);
    ag_free(tmp);
    scratch_free(&s);
    return rc;
}

int ag__beaver_trunc(ag_mpc *m, size_t n, unsigned bits, void *r, void *rt)
{
    ag_field f = m->field;
    size_t bytes = n * ag_field_bytes(f);
    int rc = draw(m, m->rank, r, bytes);
    if (m->rank != 0)
        return rc == 0 ? draw(m, m->rank, rt, bytes) : rc;
    struct scratch s;
    if (rc == 0)
        rc = scratch_new(&s, bytes, bytes, 0);
    else
        memset(&s, 0, sizeof(s));
    if (rc == 0)
        memcpy(s.buf[0], r, bytes);
    for (unsigned j = 1; j < m->n && rc == 0; j++) {
        rc = draw(m, j, rt, bytes);
        if (rc < 0)
            break;
        ag__ring_add_inplace(f, n, s.buf[0], rt);
        rc = draw(m, j, rt, bytes);
        if (rc < 0)
            break;
        ag__ring_add_inplace(f, n, s.buf[1], rt);
    }
    if (rc == 0) {
        ag__ring_arshift(f, n, rt, s.buf[0], bits);
        ag__ring_sub(f, n, rt, rt, s.buf[1]);
    }
    scratch_free(&s);
    return rc;
}

/* ---- boolean correlations ------------------------------------------------ */

/* Keeps only the lowest bit of each of n elements. */
static void keep_low_bit(ag_field f, size_t n, void *v)
{
    if (f == AG_FM64) {
        uint64_t *p = v;
        for (size_t i = 0; i < n; i++)
            p[i] &= 1;
    } else {
        ag_u128 *p = v;
        for (size_t i = 0; i < n; i++)
            p[i] &= 1;
    }
}

/* AND triples: every party draws a, b, c from its stream; rank 0 draws a_0
 * and b_0, XORs everyone's a, b and c_(j>0), and sets c_0 so the XOR of
 * the c shares is (XOR a) & (XOR b). */
int ag__beaver_and(ag_mpc *m, size_t n, void *a, void *b, void *c)
{
    size_t bytes = n * ag_field_bytes(m->field);
    int rc = draw(m, m->rank, a, bytes);
    if (rc == 0)
        rc = draw(m, m->rank, b, bytes);
    if (m->rank != 0)
        return rc == 0 ? draw(m, m->rank, c, bytes) : rc;
    struct scratch s;
    if (rc == 0)
        rc = scratch_new(&s, bytes, bytes, bytes);
    else
        memset(&s, 0, sizeof(s));
    if (rc == 0) {
        memcpy(s.buf[0], a, bytes);
        memcpy(s.buf[1], b, bytes);
    }
    for (unsigned j = 1; j < m->n && rc == 0; j++) {
        for (int k = 0; k < 3 && rc == 0; k++) {
            /* c (rank 0's output) is free until the end: use it as a buffer */
            rc = draw(m, j, c, bytes);
            if (rc == 0)
                ag__bits_xor(bytes, s.buf[k], s.buf[k], c);
        }
    }
    if (rc == 0) {
        ag__bits_and(bytes, c, s.buf[0], s.buf[1]);
        ag__bits_xor(bytes, c, c, s.buf[2]);
    }
    scratch_free(&s);
    return rc;
}

/* Random bits: parties j > 0 draw their shares; rank 0 draws n elements
 * from its own stream, which no one else can expand, keeps their low bits
 * as the secret bits and subtracts the others' shares from them. */
int ag__beaver_randbit(ag_mpc *m, size_t n, void *r)
{
    ag_field f = m->field;
    size_t bytes = n * ag_field_bytes(f);
    int rc = draw(m, m->rank, r, bytes);
    if (m->rank != 0 || rc < 0)
        return rc;
    struct scratch s;
    rc = scratch_new(&s, bytes, bytes, 0);
    for (unsigned j = 1; j < m->n && rc == 0; j++) {
        rc = draw(m, j, s.buf[1], bytes);
        if (rc == 0)
            ag__ring_add_inplace(f, n, s.buf[0], s.buf[1]);
    }
    if (rc == 0) {
        keep_low_bit(f, n, r);
        ag__ring_sub(f, n, r, r, s.buf[0]);
    }
    scratch_free(&s);
    return rc;
}

/* A random r shared both ways: every party draws ra then rb; rank 0 draws
 * ra_0 only, adds everyone's ra into r, and sets rb_0 = r ^ (XOR of rb_j,
 * j > 0). */
int ag__beaver_rand_ab(ag_mpc *m, size_t n, void *ra, void *rb)
{
    ag_field f = m->field;
    size_t bytes = n * ag_field_bytes(f);
    int rc = draw(m, m->rank, ra, bytes);
    if (m->rank != 0)
        return rc == 0 ? draw(m, m->rank, rb, bytes) : rc;
    struct scratch s;
    if (rc == 0)
        rc = scratch_new(&s, bytes, bytes, 0);
    else
        memset(&s, 0, sizeof(s));
    if (rc == 0)
        memcpy(s.buf[0], ra, bytes);
    for (unsigned j = 1; j < m->n && rc == 0; j++) {
        /* rb (rank 0's output) is free until the end: use it as a buffer */
        rc = draw(m, j, rb, bytes);
        if (rc == 0) {
            ag__ring_add_inplace(f, n, s.buf[0], rb);
            rc = draw(m, j, rb, bytes);
        }
        if (rc == 0)
            ag__bits_xor(bytes, s.buf[1], s.buf[1], rb);
    }
    if (rc == 0)
        ag__bits_xor(bytes, rb, s.buf[0], s.buf[1]);
    scratch_free(&s);
    return rc;
}
