/*
 * The semi2k kernels: sharing, opening and arithmetic on additive shares
 * over Z_2^K, n >= 2 parties, semi-honest. Each kernel's rounds and bytes
 * are listed in argot/mpc.h and checked by tests/unit/mpc/semi2k_test.c.
 *
 * Beaver multiplication: with a triple c = a*b shared by the dealer, the
 * parties open e = x - a and f = y - b (one message per peer holding both)
 * and set z_i = c_i + e*b_i + f*a_i, rank 0 adding e*f. The matrix product
 * is the same with matrix products; rank 0 folds its extra term as
 * e.(b_0 + f) so it does two matrix products, like everyone else.
 *
 * Truncation: for two parties, SecureML's local truncation with the
 * asymmetric rounding SPU uses (rank 0 shifts x_0, rank 1 negates, shifts,
 * negates); for more, a truncation pair (r, r >> d) from the dealer: open
 * x - r, and rank 0 adds its shifted value to its share of r >> d.
 */
#include <string.h>

#include "internal.h"

#define VIS_ARITH (AG__VIS_OK(AG_VIS_PUBLIC) | AG__VIS_OK(AG_VIS_ASHARE))

/* The shared operand checks (boolean.c): the output is not an input, the
 * session is set up, operands are non-empty, of the session's field, of an
 * allowed visibility, and of one shape. */
static int check_unary(ag_mpc *m, const char *op, const ag_tensor *x, ag_tensor *out)
{
    const ag_tensor *in[1] = {x};
    return ag__mpc_begin(m, op, VIS_ARITH, out, in, 1);
}

static int check_binary(ag_mpc *m, const char *op, const ag_tensor *x, const ag_tensor *y,
                        ag_tensor *out)
{
    const ag_tensor *in[2] = {x, y};
    return ag__mpc_begin(m, op, VIS_ARITH, out, in, 2);
}

static void out_reset(ag_tensor *out)
{
    memset(out, 0, sizeof(*out));
}

static int new_like(ag_mpc *m, const char *op, const ag_tensor *x, ag_vis v, ag_tensor *out)
{
    int rc = ag_tensor_init(out, m->field, v, x->ndim, x->shape);
    if (rc < 0)
        return ag__mpc_fail(m, rc, op, "%s", ag_strerror(rc));
    return 0;
}

static ag_vis result_vis(const ag_tensor *x, const ag_tensor *y)
{
    return x->vis == AG_VIS_PUBLIC && y->vis == AG_VIS_PUBLIC ? AG_VIS_PUBLIC : AG_VIS_ASHARE;
}

/* ---- sharing and opening ------------------------------------------------ */

int ag_mpc_share(ag_mpc *m, unsigned owner, const ag_tensor *in, int ndim, const int64_t *shape,
                 ag_tensor *out)
{
    if (in == out)
        return ag__mpc_fail(m, AG_E_INVAL, "share", "the output must not be an input");
    out_reset(out);
    if (!m->ready)
        return ag_errbuf_set(&m->err, AG_E_STATE, "share: the session is not set up "
                             "(call ag_mpc_setup first)");
    int rc = 0;
    if (owner >= m->n)
        return ag__mpc_fail(m, AG_E_INVAL, "share", "no party of rank %u", owner);
    ag_tensor want;
    rc = ag_tensor_init(&want, m->field, AG_VIS_ASHARE, ndim, shape);
    if (rc < 0)
        return ag__mpc_fail(m, rc, "share", "%s", ag_strerror(rc));
    if (m->rank == owner) {
        if (!in || in->vis != AG_VIS_PUBLIC || in->field != m->field ||
            !ag_tensor_same_shape(in, &want)) {
            char a[64] = "none", b[64];
            if (in)
                ag_tensor_shape_str(in, a, sizeof(a));
            ag_tensor_shape_str(&want, b, sizeof(b));
            ag_tensor_cleanup(&want);
            return ag__mpc_fail(m, AG_E_MPC_SHAPE, "share",
                                "the owner's input (%s %s) is not a %s public tensor of "
                                "shape %s", a, in ? ag_field_name(in->field) : "",
                                ag_field_name(m->field), b);
        }
    }
    rc = ag__mpc_zero_share(m, want.numel, want.data);
    if (rc < 0) {
        ag_tensor_cleanup(&want);
        return ag__mpc_fail(m, rc, "share", "%s", ag_strerror(rc));
    }
    if (m->rank == owner)
        ag__ring_add_inplace(m->field, want.numel, want.data, in->data);
    *out = want;
    return 0;
}

int ag_mpc_reveal(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    int rc = check_unary(m, "reveal", x, out);
    if (rc == 0)
        rc = new_like(m, "reveal", x, AG_VIS_PUBLIC, out);
    if (rc < 0)
        return rc;
    if (x->vis == AG_VIS_PUBLIC) {
        memcpy(out->data, x->data, x->numel * ag_field_bytes(m->field));
        return 0;
    }
    rc = ag__mpc_open(m, "reveal", ag__mpc_tag(m), x->data, out->data, x->numel);
    if (rc < 0)
        ag_tensor_cleanup(out);
    return rc;
}

int ag_mpc_reveal_to(ag_mpc *m, const ag_tensor *x, unsigned to, ag_tensor *out)
{
    int rc = check_unary(m, "reveal_to", x, out);
    if (rc == 0 && to >= m->n)
        rc = ag__mpc_fail(m, AG_E_INVAL, "reveal_to", "no party of rank %u", to);
    if (rc < 0)
        return rc;
    uint64_t tag = ag__mpc_tag(m);
    size_t bytes = x->numel * ag_field_bytes(m->field);
    if (x->vis == AG_VIS_PUBLIC)
        return m->rank == to ? ag_tensor_copy(out, x) : 0;
    if (m->rank != to) {
        rc = ag_link_send(m->link, to, tag, x->data, bytes);
        return rc < 0 ? ag__mpc_link_fail(m, rc, "reveal_to") : 0;
    }
    rc = new_like(m, "reveal_to", x, AG_VIS_PUBLIC, out);
    if (rc < 0)
        return rc;
    memcpy(out->data, x->data, bytes);
    void *peer = ag_malloc(bytes ? bytes : 1);
    if (!peer) {
        ag_tensor_cleanup(out);
        return ag__mpc_fail(m, AG_E_NOMEM, "reveal_to", "no memory");
    }
    for (unsigned p = 0; p < m->n && rc == 0; p++) {
        if (p == m->rank)
            continue;
        rc = ag_link_recv_into(m->link, p, tag, peer, bytes);
        if (rc < 0)
            ag__mpc_link_fail(m, rc, "reveal_to");
        else
            ag__ring_add_inplace(m->field, x->numel, out->data, peer);
    }
    ag_wipe(peer, bytes);
    ag_free(peer);
    if (rc < 0)
        ag_tensor_cleanup(out);
    return rc;
}

/* ---- local arithmetic --------------------------------------------------- */

/* x + sign*y where a public operand joins only rank 0's share. */
static int add_sub(ag_mpc *m, const char *op, const ag_tensor *x, const ag_tensor *y,
                   bool subtract, ag_tensor *out)
{
    int rc = check_binary(m, op, x, y, out);
    if (rc == 0)
        rc = new_like(m, op, x, result_vis(x, y), out);
    if (rc < 0)
        return rc;
    ag_field f = m->field;
    size_t n = x->numel;
    bool mixed = out->vis == AG_VIS_ASHARE && (x->vis == AG_VIS_PUBLIC || y->vis == AG_VIS_PUBLIC);
    if (!mixed || m->rank == 0) {
        if (subtract)
            ag__ring_sub(f, n, out->data, x->data, y->data);
        else
            ag__ring_add(f, n, out->data, x->data, y->data);
    } else if (x->vis == AG_VIS_ASHARE) {
        memcpy(out->data, x->data, n * ag_field_bytes(f)); /* y public: rank 0's job */
    } else if (subtract) {
        ag__ring_neg(f, n, out->data, y->data); /* x public: rank 0's job */
    } else {
        memcpy(out->data, y->data, n * ag_field_bytes(f));
    }
    return 0;
}

int ag_mpc_add(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    return add_sub(m, "add", x, y, false, out);
}

int ag_mpc_sub(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    return add_sub(m, "sub", x, y, true, out);
}

int ag_mpc_neg(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    int rc = check_unary(m, "neg", x, out);
    if (rc == 0)
        rc = new_like(m, "neg", x, x->vis, out);
    if (rc == 0)
        ag__ring_neg(m->field, x->numel, out->data, x->data);
    return rc;
}

/* ---- multiplication ----------------------------------------------------- */

/* z = x * y for shares x, y (Beaver). */
static int mul_aa(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *z)
{
    ag_field f = m->field;
    size_t n = x->numel, eb = ag_field_bytes(f), bytes = n * eb;
    /* a, b, then [e | f] opened together, then a temporary */
    size_t sizes[4] = {bytes, bytes, 2 * bytes, bytes};
    void *buf[4];
    if (ag__bufs_new(buf, 4, sizes) < 0)
        return ag__mpc_fail(m, AG_E_NOMEM, "mul", "no memory for %zu elements", n);
    uint8_t *ef = buf[2];
    int rc = ag__beaver_mul(m, n, buf[0], buf[1], z->data);
    if (rc < 0) {
        rc = ag__mpc_fail(m, rc, "mul", "dealer: %s", ag_strerror(rc));
        goto out;
    }
    ag__ring_sub(f, n, ef, x->data, buf[0]);
    ag__ring_sub(f, n, ef + bytes, y->data, buf[1]);
    rc = ag__mpc_open(m, "mul", ag__mpc_tag(m), ef, ef, 2 * n);
    if (rc < 0)
        goto out;
    /* z = c + e*b + f*a (+ e*f at rank 0) */
    ag__ring_mul(f, n, buf[3], ef, buf[1]);
    ag__ring_add_inplace(f, n, z->data, buf[3]);
    ag__ring_mul(f, n, buf[3], ef + bytes, buf[0]);
    ag__ring_add_inplace(f, n, z->data, buf[3]);
    if (m->rank == 0) {
        ag__ring_mul(f, n, buf[3], ef, ef + bytes);
        ag__ring_add_inplace(f, n, z->data, buf[3]);
    }
out:
    ag__bufs_free(buf, 4, sizes);
    return rc;
}

int ag_mpc_mul(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    int rc = check_binary(m, "mul", x, y, out);
    if (rc == 0)
        rc = new_like(m, "mul", x, result_vis(x, y), out);
    if (rc < 0)
        return rc;
    if (x->vis == AG_VIS_ASHARE && y->vis == AG_VIS_ASHARE)
        rc = mul_aa(m, x, y, out);
    else
        ag__ring_mul(m->field, x->numel, out->data, x->data, y->data);
    if (rc < 0)
        ag_tensor_cleanup(out);
    return rc;
}

int ag_mpc_square(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    int rc = check_unary(m, "square", x, out);
    if (rc == 0)
        rc = new_like(m, "square", x, x->vis, out);
    if (rc < 0)
        return rc;
    ag_field f = m->field;
    size_t n = x->numel, bytes = n * ag_field_bytes(f);
    if (x->vis == AG_VIS_PUBLIC) {
        ag__ring_mul(f, n, out->data, x->data, x->data);
        return 0;
    }
    size_t sizes[3] = {bytes, bytes, bytes};
    void *buf[3]; /* a, e, temporary */
    if (ag__bufs_new(buf, 3, sizes) < 0) {
        ag_tensor_cleanup(out);
        return ag__mpc_fail(m, AG_E_NOMEM, "square", "no memory for %zu elements", n);
    }
    rc = ag__beaver_square(m, n, buf[0], out->data);
    if (rc < 0) {
        rc = ag__mpc_fail(m, rc, "square", "dealer: %s", ag_strerror(rc));
        goto out;
    }
    ag__ring_sub(f, n, buf[1], x->data, buf[0]);
    rc = ag__mpc_open(m, "square", ag__mpc_tag(m), buf[1], buf[1], n);
    if (rc < 0)
        goto out;
    /* z = b + 2*e*a (+ e*e at rank 0) */
    ag__ring_mul(f, n, buf[2], buf[1], buf[0]);
    ag__ring_add_inplace(f, n, out->data, buf[2]);
    ag__ring_add_inplace(f, n, out->data, buf[2]);
    if (m->rank == 0) {
        ag__ring_mul(f, n, buf[2], buf[1], buf[1]);
        ag__ring_add_inplace(f, n, out->data, buf[2]);
    }
out:
    ag__bufs_free(buf, 3, sizes);
    if (rc < 0)
        ag_tensor_cleanup(out);
    return rc;
}

/* ---- matrix product ----------------------------------------------------- */

static int check_matmul(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    /* both aliases first: the checks below empty out */
    if (out == x || out == y)
        return ag__mpc_fail(m, AG_E_INVAL, "matmul", "the output must not be an input");
    int rc = check_unary(m, "matmul", x, out);
    if (rc == 0)
        rc = check_unary(m, "matmul", y, out);
    if (rc == 0 && (x->ndim != 2 || y->ndim != 2 || x->shape[1] != y->shape[0])) {
        char a[64], b[64];
        rc = ag__mpc_fail(m, AG_E_MPC_SHAPE, "matmul", "cannot multiply %s by %s",
                          ag_tensor_shape_str(x, a, sizeof(a)),
                          ag_tensor_shape_str(y, b, sizeof(b)));
    }
    return rc;
}

static int matmul_aa(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *z)
{
    ag_field f = m->field;
    size_t mm = (size_t)x->shape[0], k = (size_t)x->shape[1], nn = (size_t)y->shape[1];
    size_t eb = ag_field_bytes(f), xb = mm * k * eb, yb = k * nn * eb, zb = mm * nn * eb;
    /* a, b, [e | f], temporary product */
    size_t sizes[4] = {xb, yb, xb + yb, zb};
    void *buf[4];
    if (ag__bufs_new(buf, 4, sizes) < 0)
        return ag__mpc_fail(m, AG_E_NOMEM, "matmul", "no memory");
    uint8_t *e = buf[2], *fm = e + xb;
    int rc = ag__beaver_matmul(m, mm, k, nn, buf[0], buf[1], z->data);
    if (rc < 0) {
        rc = ag__mpc_fail(m, rc, "matmul", "dealer: %s", ag_strerror(rc));
        goto out;
    }
    ag__ring_sub(f, mm * k, e, x->data, buf[0]);
    ag__ring_sub(f, k * nn, fm, y->data, buf[1]);
    rc = ag__mpc_open(m, "matmul", ag__mpc_tag(m), e, e, mm * k + k * nn);
    if (rc < 0)
        goto out;
    /* z = c + e.b + a.f; rank 0: c + e.(b + f) + a.f */
    if (m->rank == 0)
        ag__ring_add_inplace(f, k * nn, buf[1], fm);
    ag__ring_matmul(f, mm, k, nn, buf[3], e, buf[1]);
    ag__ring_add_inplace(f, mm * nn, z->data, buf[3]);
    ag__ring_matmul(f, mm, k, nn, buf[3], buf[0], fm);
    ag__ring_add_inplace(f, mm * nn, z->data, buf[3]);
out:
    ag__bufs_free(buf, 4, sizes);
    return rc;
}

int ag_mpc_matmul(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    int rc = check_matmul(m, x, y, out);
    if (rc < 0)
        return rc;
    int64_t shape[2] = {x->shape[0], y->shape[1]};
    rc = ag_tensor_init(out, m->field, result_vis(x, y), 2, shape);
    if (rc < 0)
        return ag__mpc_fail(m, rc, "matmul", "%s", ag_strerror(rc));
    if (x->vis == AG_VIS_ASHARE && y->vis == AG_VIS_ASHARE)
        rc = matmul_aa(m, x, y, out);
    else
        ag__ring_matmul(m->field, (size_t)x->shape[0], (size_t)x->shape[1],
                        (size_t)y->shape[1], out->data, x->data, y->data);
    if (rc < 0)
        ag_tensor_cleanup(out);
    return rc;
}

/* ---- truncation --------------------------------------------------------- */

static int trunc_pair(ag_mpc *m, const ag_tensor *x, unsigned bits, ag_tensor *z)
{
    ag_field f = m->field;
    size_t n = x->numel, bytes = n * ag_field_bytes(f);
    size_t sizes[2] = {bytes, bytes};
    void *buf[2]; /* r, then x - r opened */
    if (ag__bufs_new(buf, 2, sizes) < 0)
        return ag__mpc_fail(m, AG_E_NOMEM, "trunc", "no memory");
    int rc = ag__beaver_trunc(m, n, bits, buf[0], z->data);
    if (rc < 0) {
        rc = ag__mpc_fail(m, rc, "trunc", "dealer: %s", ag_strerror(rc));
        goto out;
    }
    ag__ring_sub(f, n, buf[1], x->data, buf[0]);
    rc = ag__mpc_open(m, "trunc", ag__mpc_tag(m), buf[1], buf[1], n);
    if (rc < 0)
        goto out;
    if (m->rank == 0) {
        ag__ring_arshift(f, n, buf[1], buf[1], bits);
        ag__ring_add_inplace(f, n, z->data, buf[1]);
    }
out:
    ag__bufs_free(buf, 2, sizes);
    return rc;
}

int ag_mpc_trunc(ag_mpc *m, const ag_tensor *x, unsigned bits, ag_tensor *out)
{
    int rc = check_unary(m, "trunc", x, out);
    if (rc == 0 && bits >= ag_field_bytes(m->field) * 8)
        rc = ag__mpc_fail(m, AG_E_INVAL, "trunc", "cannot shift %s by %u bits",
                          ag_field_name(m->field), bits);
    if (rc == 0)
        rc = new_like(m, "trunc", x, x->vis, out);
    if (rc < 0)
        return rc;
    ag_field f = m->field;
    size_t n = x->numel;
    if (x->vis == AG_VIS_PUBLIC || (m->n == 2 && m->rank == 0)) {
        ag__ring_arshift(f, n, out->data, x->data, bits);
    } else if (m->n == 2) {
        ag__ring_neg(f, n, out->data, x->data);
        ag__ring_arshift(f, n, out->data, out->data, bits);
        ag__ring_neg(f, n, out->data, out->data);
    } else {
        rc = trunc_pair(m, x, bits, out);
    }
    if (rc < 0)
        ag_tensor_cleanup(out);
    return rc;
}

/* ---- fixed point -------------------------------------------------------- */

/* op(x, y) then truncation by the fraction bits, through a temporary. */
static int with_trunc(ag_mpc *m, int (*op)(ag_mpc *, const ag_tensor *, const ag_tensor *,
                                           ag_tensor *),
                      const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    if (out == x || out == y)
        return ag__mpc_fail(m, AG_E_INVAL, "fmul", "the output must not be an input");
    out_reset(out);
    ag_tensor t;
    int rc = op(m, x, y, &t);
    if (rc < 0)
        return rc;
    rc = ag_mpc_trunc(m, &t, m->fxp_bits, out);
    ag_tensor_cleanup(&t);
    return rc;
}

int ag_mpc_fmul(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    return with_trunc(m, ag_mpc_mul, x, y, out);
}

int ag_mpc_fmatmul(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    return with_trunc(m, ag_mpc_matmul, x, y, out);
}
