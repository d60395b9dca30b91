/*
 * Comparison and the kernels built on it: less, greater, equal, select,
 * relu, abs, min and max, on arithmetic shares and public tensors in any
 * mix (public operands only: computed locally, in the clear). Results of
 * comparisons are 0/1 as ring integers. Costs are in argot/mpc.h and
 * checked by tests/unit/mpc/compare_test.c.
 *
 * less(x, y) is the top bit of x - y (boolean.c's msb), so it is right only
 * while |x - y| < 2^(K-1) as signed K-bit integers: beyond, the difference
 * wraps and the answer flips. Two fixed-point encodings (each below
 * 2^(K-2) in magnitude) always qualify. greater(x, y) is less(y, x).
 *
 * equal is a zero test of d = x - y, exact for every input and much cheaper
 * than 1 - less(x, y) - less(y, x) (two adders): the dealer deals a random
 * r shared both ways (additively and by XOR); the parties open c = d + r;
 * d = 0 exactly when c = r, that is when every bit of ~(c ^ r) is 1, and
 * the parties hold XOR shares of ~(c ^ r) locally (rank 0 folds in ~c).
 * Then log2(K) rounds of ANDs, each of the two halves of what is left,
 * packed tight (K/2 bits per element, K/4, .., 1), and the one-bit
 * conversion msb uses: K/8 + 2 (K - 1)/8 + 1/8 bytes per peer per element
 * (23.9 for FM64) in log2(K) + 2 rounds.
 *
 * select(c, a, b) = b + c * (a - b): one Beaver product when c and a - b are
 * both shared, and no truncation (c is an integer), so a and b may be fixed
 * point. relu(x) = (1 - msb(x)) * x, abs(x) = (1 - 2 msb(x)) * x; min and
 * max select between x and y on less(x, y).
 *
 * These kernels call the public ones (sub, mul, add); their errors come
 * back as "<op>: <inner op>: <why>", and operands are checked first under
 * the outer name, so an inner call fails only for memory or the link.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ARITH (AG__VIS_OK(AG_VIS_PUBLIC) | AG__VIS_OK(AG_VIS_ASHARE))

/* Prefixes the session's error message with op when rc is an error, so a
 * failure inside a kernel this one calls names both. Returns rc. */
static int nested(ag_mpc *m, const char *op, int rc)
{
    if (rc < 0) {
        char inner[AG_ERRMSG_MAX];
        snprintf(inner, sizeof(inner), "%s", m->err.msg);
        ag_errbuf_set(&m->err, rc, "%s: %s", op, inner);
    }
    return rc;
}

/* ---- less and greater ---------------------------------------------------- */

/* out = msb(x - y), the operands checked under op. */
static int less_than(ag_mpc *m, const char *op, const ag_tensor *x, const ag_tensor *y,
                     ag_tensor *out)
{
    const ag_tensor *in[2] = {x, y};
    int rc = ag__mpc_begin(m, op, ARITH, out, in, 2);
    if (rc < 0)
        return rc;
    ag_tensor d;
    rc = nested(m, op, ag_mpc_sub(m, x, y, &d));
    if (rc < 0)
        return rc;
    rc = ag__bool_msb(m, op, &d, out);
    ag_tensor_cleanup(&d);
    return rc;
}

int ag_mpc_less(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    return less_than(m, "less", x, y, out);
}

int ag_mpc_greater(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    return less_than(m, "greater", y, x, out);
}

/* ---- equal ----------------------------------------------------------------- */

/* Packs bits [shift, shift + h) of each of v[0..n) into dst, element i at
 * bits [i*h, (i+1)*h); h is a power of two, so no element straddles a byte
 * unless h >= 8, when each takes h/8 whole bytes. */
static void pack(size_t n, const ag_u128 *v, unsigned shift, unsigned h, uint8_t *dst)
{
    memset(dst, 0, (n * h + 7) / 8);
    if (h >= 8) {
        for (size_t i = 0; i < n; i++)
            for (unsigned j = 0; j < h / 8; j++)
                dst[i * (h / 8) + j] = (uint8_t)(v[i] >> (shift + 8 * j));
        return;
    }
    unsigned mask = (1u << h) - 1;
    for (size_t i = 0; i < n; i++) {
        size_t bit = i * h;
        dst[bit / 8] |= (uint8_t)(((unsigned)(v[i] >> shift) & mask) << (bit % 8));
    }
}

/* The inverse of pack with shift 0: element i of src (h bits) into v[i]. */
static void unpack(size_t n, const uint8_t *src, unsigned h, ag_u128 *v)
{
    if (h >= 8) {
        for (size_t i = 0; i < n; i++) {
            ag_u128 x = 0;
            for (unsigned j = 0; j < h / 8; j++)
                x |= (ag_u128)src[i * (h / 8) + j] << (8 * j);
            v[i] = x;
        }
        return;
    }
    unsigned mask = (1u << h) - 1;
    for (size_t i = 0; i < n; i++) {
        size_t bit = i * h;
        v[i] = (src[bit / 8] >> (bit % 8)) & mask;
    }
}

/* XOR shares of ~(c ^ r) into v: rb is this party's XOR share of r, c the
 * opened d + r; rank 0 folds in ~c. */
static void not_c_xor_r(ag_field f, size_t n, const void *c, const void *rb, bool rank0, ag_u128 *v)
{
    for (size_t i = 0; i < n; i++) {
        if (f == AG_FM64) {
            uint64_t w = ((const uint64_t *)rb)[i];
            v[i] = rank0 ? (uint64_t)~(w ^ ((const uint64_t *)c)[i]) : w;
        } else {
            ag_u128 w = ((const ag_u128 *)rb)[i];
            v[i] = rank0 ? ~(w ^ ((const ag_u128 *)c)[i]) : w;
        }
    }
}

/* out = (d == 0) as 0/1 shares, for a shared d (see the file comment). */
static int zero_test(ag_mpc *m, const char *op, const ag_tensor *d, ag_tensor *out)
{
    ag_field f = m->field;
    unsigned k = (unsigned)ag_field_bytes(f) * 8;
    size_t n = d->numel, wb = n * ag_field_bytes(f), half = (n * k / 2 + 7) / 8;
    size_t sizes[6] = {wb, wb, n * sizeof(ag_u128), half, half, ag__bool_and_work_bytes(m, half)};
    void *buf[6]; /* ra then c, rb, the bits left, two halves, AND workspace */
    if (ag__scratch_get_n(m, buf, 6, sizes) < 0)
        return ag__mpc_fail(m, AG_E_NOMEM, op, "no memory for %zu elements", n);
    ag_u128 *v = buf[2];
    uint8_t *lo = buf[3], *hi = buf[4];
    int rc = ag__beaver_rand_ab(m, n, buf[0], buf[1]);
    if (rc < 0) {
        rc = ag__mpc_fail(m, rc, op, "dealer: %s", ag__dealer_why(m, rc));
        goto out;
    }
    ag__ring_add_inplace(f, n, buf[0], d->data);
    rc = ag__mpc_open(m, op, ag__mpc_tag(m), buf[0], buf[0], n);
    if (rc < 0)
        goto out;
    not_c_xor_r(f, n, buf[0], buf[1], m->rank == 0, v);
    for (unsigned h = k / 2; h >= 1 && rc == 0; h /= 2) {
        pack(n, v, 0, h, lo);
        pack(n, v, h, h, hi);
        rc = ag__bool_and_in(m, op, buf[5], (n * h + 7) / 8, lo, hi, lo);
        if (rc == 0)
            unpack(n, lo, h, v);
    }
    /* lo now holds one bit per element, packed as bits_to_a wants them */
    if (rc == 0)
        rc = ag__bool_bits_to_a(m, op, n, lo, out->data);
out:
    ag__scratch_put_n(m, buf, 6);
    return rc;
}

/* A zero test of x - y when it is shared (zero_test); in the clear when
 * both operands are public. */
int ag_mpc_equal(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    const ag_tensor *in[2] = {x, y};
    int rc = ag__mpc_begin(m, "equal", ARITH, out, in, 2);
    if (rc < 0)
        return rc;
    ag_tensor d;
    rc = nested(m, "equal", ag_mpc_sub(m, x, y, &d));
    if (rc < 0)
        return rc;
    rc = ag_tensor_init(out, m->field, d.vis, d.ndim, d.shape);
    if (rc < 0) {
        rc = ag__mpc_fail(m, rc, "equal", "%s", ag_strerror(rc));
    } else if (d.vis == AG_VIS_ASHARE) {
        rc = zero_test(m, "equal", &d, out);
    } else {
        for (size_t i = 0; i < d.numel; i++) {
            bool z = m->field == AG_FM64 ? ag_tensor_u64(&d)[i] == 0
                                         : ag_tensor_u128(&d)[i] == 0;
            if (m->field == AG_FM64)
                ag_tensor_u64(out)[i] = z;
            else
                ag_tensor_u128(out)[i] = z;
        }
    }
    if (rc < 0)
        ag_tensor_cleanup(out);
    ag_tensor_cleanup(&d);
    return rc;
}

/* ---- select and what is built on it -------------------------------------- */

/* out = b + cond * (a - b), operands already checked. */
static int select_checked(ag_mpc *m, const char *op, const ag_tensor *cond, const ag_tensor *a,
                          const ag_tensor *b, ag_tensor *out)
{
    ag_tensor d = {0}, t = {0};
    int rc = nested(m, op, ag_mpc_sub(m, a, b, &d));
    if (rc == 0)
        rc = nested(m, op, ag_mpc_mul(m, cond, &d, &t));
    if (rc == 0)
        rc = nested(m, op, ag_mpc_add(m, b, &t, out));
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&t);
    return rc;
}

int ag_mpc_select(ag_mpc *m, const ag_tensor *cond, const ag_tensor *a, const ag_tensor *b,
                  ag_tensor *out)
{
    const ag_tensor *in[3] = {cond, a, b};
    int rc = ag__mpc_begin(m, "select", ARITH, out, in, 3);
    if (rc < 0)
        return rc;
    return select_checked(m, "select", cond, a, b, out);
}

/* out = (1 - k * msb(x)) * x: relu for k = 1, abs for k = 2. */
static int sign_times(ag_mpc *m, const char *op, const ag_tensor *x, unsigned k, ag_tensor *out)
{
    int rc = ag__mpc_begin(m, op, ARITH, out, &x, 1);
    if (rc < 0)
        return rc;
    ag_tensor s;
    rc = ag__bool_msb(m, op, x, &s);
    if (rc < 0)
        return rc;
    /* s = 1 - k * msb, the 1 at rank 0 only when s is a share */
    unsigned one = s.vis == AG_VIS_PUBLIC || m->rank == 0;
    for (size_t i = 0; i < s.numel; i++) {
        if (m->field == AG_FM64)
            ag_tensor_u64(&s)[i] = one - k * ag_tensor_u64(&s)[i];
        else
            ag_tensor_u128(&s)[i] = one - k * ag_tensor_u128(&s)[i];
    }
    rc = nested(m, op, ag_mpc_mul(m, &s, x, out));
    ag_tensor_cleanup(&s);
    return rc;
}

int ag_mpc_relu(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    return sign_times(m, "relu", x, 1, out);
}

int ag_mpc_abs(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    return sign_times(m, "abs", x, 2, out);
}

/* min (x where x < y, else y) or max (y where x < y, else x). */
static int min_max(ag_mpc *m, const char *op, const ag_tensor *x, const ag_tensor *y, bool max,
                   ag_tensor *out)
{
    const ag_tensor *in[2] = {x, y};
    int rc = ag__mpc_begin(m, op, ARITH, out, in, 2);
    if (rc < 0)
        return rc;
    ag_tensor c;
    rc = less_than(m, op, x, y, &c);
    if (rc < 0)
        return rc;
    rc = select_checked(m, op, &c, max ? y : x, max ? x : y, out);
    ag_tensor_cleanup(&c);
    return rc;
}

int ag_mpc_min(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    return min_max(m, "min", x, y, false, out);
}

int ag_mpc_max(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    return min_max(m, "max", x, y, true, out);
}
