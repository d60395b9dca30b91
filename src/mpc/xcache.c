/*
 * The Beaver cache (mpc.h, ag_mpc_xcache_*): a shared matrix x multiplied
 * many times, as logistic regression's features are every epoch, is masked
 * once. Making the cache draws a Beaver mask a of x's shape from the dealer
 * and opens e = x - a (what one Beaver product of x would open); each
 * product x.y (or x^T.y) then draws fresh b and c = A.b (c = A^T.b) and
 * opens only f = y - b:
 *
 *   x.y = (e + a)(f + b) = e.f + e.b + a.f + c,
 *
 * party j's share [j = 0] e.f + e.b_j + a_j.f + c_j. Each mask b is used
 * once; a is used only with the one x it masks, so e says nothing new on
 * reuse (SPU's beaver cache does the same).
 *
 * Memory: e and a_j at every party, and at rank 0 under the trusted first
 * party the full A (the dealer needs it for every c): three times x's size
 * there, twice elsewhere. Under the trusted third party, rank 0 keeps only
 * the mask's stream positions; the dealer expands A again for every c.
 */
#include <string.h>

#include "internal.h"

struct ag_mpc_xcache {
    ag_field field;
    size_t rows, cols;
    void *e;     /* x - a, opened (rows x cols) */
    void *a;     /* this party's share of the mask */
    void *full;  /* TFP rank 0: the mask in full; NULL elsewhere */
    uint64_t *pos; /* TTP rank 0: where the mask was drawn; NULL elsewhere */
};

void ag_mpc_xcache_free(ag_mpc_xcache *c)
{
    if (!c)
        return;
    size_t bytes = c->rows * c->cols * ag_field_bytes(c->field);
    if (c->a)
        memset(c->a, 0, bytes);
    if (c->full)
        memset(c->full, 0, bytes);
    ag_free(c->e);
    ag_free(c->a);
    ag_free(c->full);
    ag_free(c->pos);
    ag_free(c);
}

int ag_mpc_xcache_new(ag_mpc *m, const ag_tensor *x, ag_mpc_xcache **out)
{
    *out = NULL;
    if (x->field != m->field || x->vis != AG_VIS_ASHARE || x->ndim != 2)
        return ag__mpc_fail(m, AG_E_INVAL, "xcache", "a shared matrix of the session's field "
                            "is needed");
    ag_mpc_xcache *c = ag_calloc(1, sizeof(*c));
    if (!c)
        return ag__mpc_fail(m, AG_E_NOMEM, "xcache", "no memory");
    c->field = m->field;
    c->rows = (size_t)x->shape[0];
    c->cols = (size_t)x->shape[1];
    size_t n = c->rows * c->cols, bytes = n * ag_field_bytes(m->field);
    c->e = ag_malloc(bytes + 1);
    c->a = ag_malloc(bytes + 1);
    bool want_full = m->rank == 0 && !m->ttp, want_pos = m->rank == 0 && m->ttp;
    if (want_full)
        c->full = ag_malloc(bytes + 1);
    if (want_pos)
        c->pos = ag_calloc(m->n, sizeof(*c->pos));
    if (!c->e || !c->a || (want_full && !c->full) || (want_pos && !c->pos)) {
        ag_mpc_xcache_free(c);
        return ag__mpc_fail(m, AG_E_NOMEM, "xcache", "no memory for %zu elements", n);
    }
    int rc = ag__beaver_mask(m, bytes, c->a, c->full, c->pos);
    if (rc < 0) {
        ag_mpc_xcache_free(c);
        return ag__mpc_fail(m, rc, "xcache", "dealer: %s", ag__dealer_why(m, rc));
    }
    ag__ring_sub(m->field, n, c->e, x->data, c->a);
    rc = ag__mpc_open(m, "xcache", ag__mpc_tag(m), c->e, c->e, n);
    if (rc < 0) {
        ag_mpc_xcache_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int ag_mpc_xcache_matmul(ag_mpc *m, ag_mpc_xcache *c, bool tr, const ag_tensor *y,
                         ag_tensor *out)
{
    size_t p = tr ? c->cols : c->rows, q = tr ? c->rows : c->cols;
    if (y->field != m->field || y->vis != AG_VIS_ASHARE || y->ndim != 2 ||
        (size_t)y->shape[0] != q || c->field != m->field)
        return ag__mpc_fail(m, AG_E_MPC_SHAPE, "xcache matmul", "needs a shared matrix of %zu "
                            "rows", q);
    size_t nn = (size_t)y->shape[1], eb = ag_field_bytes(m->field);
    int64_t shape[2] = {(int64_t)p, (int64_t)nn};
    int rc = ag__tensor_init_raw(out, m->field, AG_VIS_ASHARE, 2, shape);
    if (rc < 0)
        return ag__mpc_fail(m, rc, "xcache matmul", "%s", ag_strerror(rc));
    size_t sizes[2] = {q * nn * eb, q * nn * eb};
    void *buf[2]; /* b, f */
    if (ag__scratch_get_n(m, buf, 2, sizes) < 0) {
        ag_tensor_cleanup(out);
        return ag__mpc_fail(m, AG_E_NOMEM, "xcache matmul", "no memory");
    }
    rc = ag__beaver_matmul_fixed(m, c->full, c->pos, tr, p, q, nn, buf[0], out->data);
    if (rc < 0) {
        rc = ag__mpc_fail(m, rc, "xcache matmul", "dealer: %s", ag__dealer_why(m, rc));
        goto out;
    }
    ag__ring_sub(m->field, q * nn, buf[1], y->data, buf[0]);
    rc = ag__mpc_open(m, "xcache matmul", ag__mpc_tag(m), buf[1], buf[1], q * nn);
    if (rc < 0)
        goto out;
    /* z = c + e.b + a.f; rank 0: c + e.(b + f) + a.f */
    if (m->rank == 0)
        ag__ring_add_inplace(m->field, q * nn, buf[0], buf[1]);
    if (tr) {
        ag__ring_matmul_tn_acc(m->field, p, q, nn, out->data, c->e, buf[0]);
        ag__ring_matmul_tn_acc(m->field, p, q, nn, out->data, c->a, buf[1]);
    } else {
        ag__ring_matmul_acc(m->field, p, q, nn, out->data, c->e, buf[0]);
        ag__ring_matmul_acc(m->field, p, q, nn, out->data, c->a, buf[1]);
    }
out:
    ag__scratch_put_n(m, buf, 2);
    if (rc < 0)
        ag_tensor_cleanup(out);
    return rc;
}

int ag_mpc_xcache_fmatmul(ag_mpc *m, ag_mpc_xcache *c, bool tr, const ag_tensor *y,
                          ag_tensor *out)
{
    ag_tensor z = {0};
    int rc = ag_mpc_xcache_matmul(m, c, tr, y, &z);
    if (rc == 0)
        rc = ag_mpc_trunc(m, &z, m->fxp_bits, out);
    ag_tensor_cleanup(&z);
    return rc;
}
