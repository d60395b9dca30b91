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
 * Memory traffic is what these kernels cost once the dealer's AES is paid,
 * so mul, square and the truncation pair touch each buffer as few times as
 * they can: a party masks (x - a) each chunk of the dealer's output while it
 * is still in the cache, sends the message itself to its last peer (a copy
 * only to the others), and recombines in one pass that recomputes its own
 * part of e and f from x - a instead of keeping a copy. Reveal's output is
 * the first peer's message with the other shares added in. Temporaries come
 * from the session's scratch (session.c), so a kernel run again on the same
 * shapes allocates only its output.
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

/* out of x's shape, not zeroed: every kernel here writes all of it. */
static int new_like(ag_mpc *m, const char *op, const ag_tensor *x, ag_vis v, ag_tensor *out)
{
    int rc = ag__tensor_init_raw(out, m->field, v, x->ndim, x->shape);
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
    rc = ag__tensor_init_raw(&want, m->field, AG_VIS_ASHARE, ndim, shape);
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

/* At a party that opens x: receives every peer's share of x under tag and
 * initializes out, public, with the sum. The sum is made in the first
 * peer's message, which becomes out's data: no copy, no allocation. */
static int recv_sum(ag_mpc *m, const char *op, uint64_t tag, const ag_tensor *x, ag_tensor *out)
{
    void *sum;
    int rc = ag__mpc_recv_sum(m, op, tag, x->numel, &sum);
    if (rc < 0)
        return rc;
    ag__ring_add_inplace(m->field, x->numel, sum, x->data);
    ag__tensor_init_with(out, m->field, AG_VIS_PUBLIC, x->ndim, x->shape, sum);
    return 0;
}

int ag_mpc_reveal(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    int rc = check_unary(m, "reveal", x, out);
    if (rc < 0)
        return rc;
    if (x->vis == AG_VIS_PUBLIC) {
        rc = new_like(m, "reveal", x, AG_VIS_PUBLIC, out);
        if (rc == 0)
            memcpy(out->data, x->data, x->numel * ag_field_bytes(m->field));
        return rc;
    }
    uint64_t tag = ag__mpc_tag(m);
    rc = ag__mpc_send_all(m, "reveal", tag, x->data, x->numel * ag_field_bytes(m->field));
    if (rc == 0)
        rc = recv_sum(m, "reveal", tag, x, out);
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
    if (m->rank != to)
        return ag__mpc_send(m, "reveal_to", to, tag, x->data, bytes);
    return recv_sum(m, "reveal_to", tag, x, out);
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

/* What a mul or square computes on each chunk the dealer deals: this
 * party's e = x - a (and f = y - b), into the message. */
struct mask_ctx {
    ag_field f;
    size_t eb;            /* bytes per element */
    const uint8_t *x, *a; /* e = x - a into e */
    const uint8_t *y, *b; /* f = y - b into fv; y NULL for square */
    uint8_t *e, *fv;
};

static void mask_chunk(void *ctx, size_t i, size_t len)
{
    const struct mask_ctx *c = ctx;
    size_t o = i * c->eb;
    ag__ring_sub(c->f, len, c->e + o, c->x + o, c->a + o);
    if (c->y)
        ag__ring_sub(c->f, len, c->fv + o, c->y + o, c->b + o);
}

/* The opening and recombination of a mul (y != NULL) or square: sends msg
 * ([e | f], or e), which leaves the session, receives the peers' parts and
 * adds e*b + f*a (+ e*f at rank 0) to z, recomputing this party's e and f
 * from x - a and y - b rather than keeping a copy of what it sent. */
static int beaver_open(ag_mpc *m, const char *op, const ag_tensor *x, const ag_tensor *y,
                       const void *a, const void *b, void **msg, ag_tensor *z)
{
    ag_field f = m->field;
    size_t n = x->numel, bytes = n * ag_field_bytes(f), parts = y ? 2 : 1;
    uint64_t tag = ag__mpc_tag(m);
    void *peers = NULL;
    int rc = ag__mpc_send_all_take(m, op, tag, msg, parts * bytes);
    if (rc == 0)
        rc = ag__mpc_recv_sum(m, op, tag, parts * n, &peers);
    if (rc < 0)
        return rc;
    const uint8_t *pe = peers, *pf = y ? pe + bytes : pe;
    ag__ring_beaver(f, n, z->data, x->data, y ? y->data : x->data, a, y ? b : a, pe, pf,
                    m->rank == 0);
    ag__scratch_adopt(m, peers, parts * bytes);
    return 0;
}

/* z = x * y for shares x, y (Beaver): the dealer's chunks are masked as
 * they come (mask_chunk), then one opening and one recombination pass. */
static int mul_aa(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *z)
{
    ag_field f = m->field;
    size_t n = x->numel, eb = ag_field_bytes(f), bytes = n * eb;
    size_t sizes[3] = {bytes, bytes, 2 * bytes};
    void *buf[3]; /* a, b, then [e | f] opened together */
    if (ag__scratch_get_n(m, buf, 3, sizes) < 0)
        return ag__mpc_fail(m, AG_E_NOMEM, "mul", "no memory for %zu elements", n);
    struct mask_ctx mc = {f, eb, x->data, buf[0], y->data, buf[1], buf[2],
                          (uint8_t *)buf[2] + bytes};
    int rc = ag__beaver_mul_each(m, n, buf[0], buf[1], z->data, mask_chunk, &mc);
    if (rc < 0)
        rc = ag__mpc_fail(m, rc, "mul", "dealer: %s", ag__dealer_why(m, rc));
    else
        rc = beaver_open(m, "mul", x, y, buf[0], buf[1], &buf[2], z);
    ag__scratch_put_n(m, buf, 3);
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
    size_t sizes[2] = {bytes, bytes};
    void *buf[2]; /* a, e */
    if (ag__scratch_get_n(m, buf, 2, sizes) < 0) {
        ag_tensor_cleanup(out);
        return ag__mpc_fail(m, AG_E_NOMEM, "square", "no memory for %zu elements", n);
    }
    /* z = b + 2*e*a (+ e*e at rank 0) */
    struct mask_ctx mc = {f, ag_field_bytes(f), x->data, buf[0], NULL, NULL, buf[1], NULL};
    rc = ag__beaver_square_each(m, n, buf[0], out->data, mask_chunk, &mc);
    if (rc < 0)
        rc = ag__mpc_fail(m, rc, "square", "dealer: %s", ag__dealer_why(m, rc));
    else
        rc = beaver_open(m, "square", x, NULL, buf[0], NULL, &buf[1], out);
    ag__scratch_put_n(m, buf, 2);
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
    size_t eb = ag_field_bytes(f), xb = mm * k * eb, yb = k * nn * eb;
    size_t sizes[3] = {xb, yb, xb + yb};
    void *buf[3]; /* a, b, [e | f] */
    if (ag__scratch_get_n(m, buf, 3, sizes) < 0)
        return ag__mpc_fail(m, AG_E_NOMEM, "matmul", "no memory");
    uint8_t *e = buf[2], *fm = e + xb;
    int rc = ag__beaver_matmul(m, mm, k, nn, buf[0], buf[1], z->data);
    if (rc < 0) {
        rc = ag__mpc_fail(m, rc, "matmul", "dealer: %s", ag__dealer_why(m, rc));
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
    ag__ring_matmul_acc(f, mm, k, nn, z->data, e, buf[1]);
    ag__ring_matmul_acc(f, mm, k, nn, z->data, buf[0], fm);
out:
    ag__scratch_put_n(m, buf, 3);
    return rc;
}

int ag_mpc_matmul(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    int rc = check_matmul(m, x, y, out);
    if (rc < 0)
        return rc;
    int64_t shape[2] = {x->shape[0], y->shape[1]};
    rc = ag__tensor_init_raw(out, m->field, result_vis(x, y), 2, shape);
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

/* Rank 0's share of x >> bits from a truncation pair: with the peers' parts
 * of the opening in peers, z += (x - r + peers) >> bits, chunk by chunk in
 * tmp (AG__CHUNK_BYTES) so the opened value is never stored whole. */
static void trunc_open0(ag_field f, size_t n, unsigned bits, const uint8_t *x, const uint8_t *r,
                        const uint8_t *peers, uint8_t *z, void *tmp)
{
    size_t eb = ag_field_bytes(f), step = AG__CHUNK_BYTES / eb;
    for (size_t i = 0; i < n; i += step) {
        size_t len = AG_MIN(step, n - i), o = i * eb;
        ag__ring_sub(f, len, tmp, x + o, r + o);
        ag__ring_add_inplace(f, len, tmp, peers + o);
        ag__ring_arshift(f, len, tmp, tmp, bits);
        ag__ring_add_inplace(f, len, z + o, tmp);
    }
}

/* Truncation by a pair (r, r >> bits): x - r is opened (its mask computed
 * as the dealer's chunks come, and sent without a copy to the last peer);
 * rank 0 adds the shifted opening to its share of r >> bits. */
static int trunc_pair(ag_mpc *m, const ag_tensor *x, unsigned bits, ag_tensor *z)
{
    ag_field f = m->field;
    size_t n = x->numel, eb = ag_field_bytes(f), bytes = n * eb;
    size_t sizes[3] = {bytes, bytes, AG__CHUNK_BYTES};
    void *buf[3]; /* r, x - r (the message), a chunk */
    if (ag__scratch_get_n(m, buf, 3, sizes) < 0)
        return ag__mpc_fail(m, AG_E_NOMEM, "trunc", "no memory");
    struct mask_ctx mc = {f, eb, x->data, buf[0], NULL, NULL, buf[1], NULL};
    uint64_t tag = ag__mpc_tag(m);
    void *peers = NULL;
    int rc = ag__beaver_trunc_each(m, n, bits, buf[0], z->data, mask_chunk, &mc);
    if (rc < 0) {
        rc = ag__mpc_fail(m, rc, "trunc", "dealer: %s", ag__dealer_why(m, rc));
        goto out;
    }
    rc = ag__mpc_send_all_take(m, "trunc", tag, &buf[1], bytes);
    if (rc == 0)
        rc = ag__mpc_recv_sum(m, "trunc", tag, n, &peers);
    if (rc < 0)
        goto out;
    if (m->rank == 0)
        trunc_open0(f, n, bits, x->data, buf[0], peers, z->data, buf[2]);
    ag__scratch_adopt(m, peers, bytes);
out:
    ag__scratch_put_n(m, buf, 3);
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
