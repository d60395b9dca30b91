/*
 * The Beaver dealer, trusted first party (SPU's TFP): rank 0 knows every
 * party's dealer seed (sent once at setup), so every party expands its own
 * shares of a correlation locally, and rank 0 expands everyone's, computes
 * the true correlation and sets its own share so the shares add up. No
 * message per triple; rank 0 must not collude (it sees a, b and c).
 *
 * Every party consumes its dealer stream in the same order for the same
 * request (a, then b, then c), so rank 0's copy of party j's stream stays
 * in step with party j's own. Rank 0 never draws its own last component
 * (c_0, b_0 of a square, rt_0): it computes it.
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
        if ((rc = draw(m, j, c, bytes)) < 0)
            break;
        ag__ring_add_inplace(f, n, s.buf[0], c);
        if ((rc = draw(m, j, c, bytes)) < 0)
            break;
        ag__ring_add_inplace(f, n, s.buf[1], c);
        if ((rc = draw(m, j, c, bytes)) < 0)
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
        if ((rc = draw(m, j, b, bytes)) < 0)
            break;
        ag__ring_add_inplace(f, n, s.buf[0], b);
        if ((rc = draw(m, j, b, bytes)) < 0)
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
        if ((rc = draw(m, j, tmp, ab)) < 0)
            break;
        ag__ring_add_inplace(f, mm * k, s.buf[0], tmp);
        if ((rc = draw(m, j, tmp, bb)) < 0)
            break;
        ag__ring_add_inplace(f, k * nn, s.buf[1], tmp);
        if ((rc = draw(m, j, c, cb)) < 0)
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
        if ((rc = draw(m, j, rt, bytes)) < 0)
            break;
        ag__ring_add_inplace(f, n, s.buf[0], rt);
        if ((rc = draw(m, j, rt, bytes)) < 0)
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
