/*
 * Shape operations on ring tensors (permute, slice, concat, broadcast) and
 * the reductions ag_mpc_sum and ag_mpc_mean.
 *
 * The shape operations are pure tensor functions: no session, no message
 * object, a return code only. Each builds a new row-major tensor dst from
 * its sources and:
 *   1. never writes a source; dst must not be a source (refused with
 *      AG_E_INVAL, and then dst is not touched either);
 *   2. on any other failure leaves dst empty (all zero, data NULL), so the
 *      caller can always ag_tensor_cleanup it;
 *   3. keeps the field and the visibility: they move shares and public
 *      values alike, since an index map applied by every party to its share
 *      is the same map applied to the secret.
 *
 * Permute, slice and broadcast are one gather: dst, walked in row-major
 * order, reads src at base + sum(i_k * stride_k), with a per-axis stride in
 * elements (0 for a repeated axis). The innermost axes that read src
 * contiguously are merged into one block copied with memcpy; innermost
 * axes of stride 0 are merged into one run filled by doubling copies; an
 * odometer walks the remaining outer axes.
 *
 * Sum is local for public and arithmetic shares alike (a share of a sum is
 * the sum of the shares). Mean multiplies the sum by a public fixed-point
 * constant 1/count and truncates once, so it costs one truncation: nothing
 * for two parties, one round for more. The constant carries 9 fraction bits
 * more than the session's, and the truncation drops them too: see
 * MEAN_EXTRA_BITS for why and what it costs.
 */
#include <string.h>

#include "internal.h"

/* ---- the gather ------------------------------------------------------------ */

/* What dst reads from src: dst's axis k has count[k] entries, stepping
 * stride[k] elements through src, starting at element base. */
struct view {
    int ndim;
    size_t count[AG_TENSOR_MAX_DIMS];
    size_t stride[AG_TENSOR_MAX_DIMS]; /* elements; 0 repeats */
    size_t base;                       /* elements */
};

/* Row-major strides (elements) of t's axes. */
static void row_major_strides(const ag_tensor *t, size_t *stride)
{
    size_t s = 1;
    for (int k = t->ndim - 1; k >= 0; k--) {
        stride[k] = s;
        s *= (size_t)t->shape[k];
    }
}

/* n copies of the element at src into dst (elements of eb bytes): one
 * memcpy, then copies of what is already written, doubling each time. */
static void fill_run(uint8_t *dst, const uint8_t *src, size_t eb, size_t n)
{
    memcpy(dst, src, eb);
    for (size_t done = 1; done < n;) {
        size_t k = done < n - done ? done : n - done;
        memcpy(dst + done * eb, dst, k * eb);
        done += k;
    }
}

/* Writes every element of view v of src into dst (contiguous, row-major,
 * elements of eb bytes). dst must hold the view's numel elements. */
static void gather(void *dst, const void *src, size_t eb, const struct view *v)
{
    size_t numel = 1;
    for (int k = 0; k < v->ndim; k++)
        numel *= v->count[k];
    if (numel == 0)
        return;
    /* merge the innermost axes into a contiguous block (or a run of one
     * repeated element); axes of length 1 merge with anything */
    int outer = v->ndim;
    size_t blk = 1;
    while (outer > 0 && (v->count[outer - 1] == 1 || v->stride[outer - 1] == blk)) {
        blk *= v->count[outer - 1];
        outer--;
    }
    size_t run = 1;
    if (blk == 1)
        while (outer > 0 && (v->count[outer - 1] == 1 || v->stride[outer - 1] == 0)) {
            run *= v->count[outer - 1];
            outer--;
        }
    size_t idx[AG_TENSOR_MAX_DIMS] = {0};
    size_t off = v->base;
    uint8_t *d = dst;
    const uint8_t *s = src;
    for (;;) {
        if (run > 1) {
            fill_run(d, s + off * eb, eb, run);
            d += run * eb;
        } else {
            memcpy(d, s + off * eb, blk * eb);
            d += blk * eb;
        }
        /* the odometer: step the last outer axis, carrying leftwards */
        int a = outer - 1;
        for (; a >= 0; a--) {
            off += v->stride[a];
            if (++idx[a] < v->count[a])
                break;
            off -= v->stride[a] * v->count[a];
            idx[a] = 0;
        }
        if (a < 0)
            break;
    }
}

/* Allocates dst with src's field and visibility and the given shape, then
 * gathers view v of src into it. */
static int gather_new(ag_tensor *dst, const ag_tensor *src, int ndim, const int64_t *shape,
                      const struct view *v)
{
    int rc = ag_tensor_init(dst, src->field, src->vis, ndim, shape);
    if (rc < 0)
        return rc;
    gather(dst->data, src->data, ag_field_bytes(src->field), v);
    return 0;
}

/* ---- permute, slice, broadcast ------------------------------------------- */

/* Checks that perm holds each of 0..ndim-1 once. */
static bool is_permutation(const int *perm, int ndim)
{
    bool seen[AG_TENSOR_MAX_DIMS] = {false};
    for (int k = 0; k < ndim; k++) {
        if (perm[k] < 0 || perm[k] >= ndim || seen[perm[k]])
            return false;
        seen[perm[k]] = true;
    }
    return true;
}

/* dst's axis k is src's axis perm[k], so dst reads src with src's stride
 * of that axis. Returns 0, AG_E_MPC_SHAPE if perm is not a permutation of
 * 0..ndim-1, AG_E_INVAL if dst is src, or AG_E_NOMEM. */
int ag_tensor_permute(ag_tensor *dst, const ag_tensor *src, const int *perm)
{
    if (dst == src)
        return AG_E_INVAL;
    memset(dst, 0, sizeof(*dst));
    int rev[AG_TENSOR_MAX_DIMS];
    if (!perm) {
        for (int k = 0; k < src->ndim; k++)
            rev[k] = src->ndim - 1 - k;
        perm = rev;
    }
    if (!is_permutation(perm, src->ndim))
        return AG_E_MPC_SHAPE;
    size_t stride[AG_TENSOR_MAX_DIMS];
    row_major_strides(src, stride);
    struct view v = {.ndim = src->ndim};
    int64_t shape[AG_TENSOR_MAX_DIMS];
    for (int k = 0; k < src->ndim; k++) {
        shape[k] = src->shape[perm[k]];
        v.count[k] = (size_t)shape[k];
        v.stride[k] = stride[perm[k]];
    }
    return gather_new(dst, src, src->ndim, shape, &v);
}

/* numpy's normalization of one bound of a slice of an axis of length len:
 * a negative bound counts from the end, then it is clamped to [0, len]. */
static int64_t slice_bound(int64_t b, int64_t len)
{
    if (b < 0)
        b = b + len < 0 ? 0 : b + len;
    return b > len ? len : b;
}

/* Each axis is cut to [start, stop) by numpy's rules and read every step
 * elements; an axis may come out empty (then so is dst, with data still
 * allocated). Returns 0, AG_E_INVAL for a step below 1 or dst being src, or
 * AG_E_NOMEM. */
int ag_tensor_slice(ag_tensor *dst, const ag_tensor *src, const int64_t *start,
                    const int64_t *stop, const int64_t *step)
{
    if (dst == src)
        return AG_E_INVAL;
    memset(dst, 0, sizeof(*dst));
    for (int k = 0; step && k < src->ndim; k++)
        if (step[k] < 1)
            return AG_E_INVAL;
    size_t stride[AG_TENSOR_MAX_DIMS];
    row_major_strides(src, stride);
    struct view v = {.ndim = src->ndim};
    int64_t shape[AG_TENSOR_MAX_DIMS];
    for (int k = 0; k < src->ndim; k++) {
        int64_t len = src->shape[k];
        int64_t b = slice_bound(start ? start[k] : 0, len);
        int64_t e = slice_bound(stop ? stop[k] : len, len);
        int64_t st = step ? step[k] : 1;
        /* (e - b - 1) / st + 1 rather than (e - b + st - 1) / st: no
         * overflow for a huge step */
        shape[k] = e > b ? (e - b - 1) / st + 1 : 0;
        v.count[k] = (size_t)shape[k];
        v.stride[k] = shape[k] > 1 ? stride[k] * (size_t)st : 0;
        if (shape[k] > 0)
            v.base += (size_t)b * stride[k];
    }
    return gather_new(dst, src, src->ndim, shape, &v);
}

/* numpy's broadcast_to: src's axes align with the trailing axes of shape;
 * a new leading axis, or an axis of length 1 grown to any length
 * (including 0), reads with stride 0. Returns 0, AG_E_MPC_SHAPE when the
 * shapes are incompatible (or shape is not a valid shape), AG_E_INVAL if
 * dst is src, or AG_E_NOMEM. */
int ag_tensor_broadcast(ag_tensor *dst, const ag_tensor *src, int ndim, const int64_t *shape)
{
    if (dst == src)
        return AG_E_INVAL;
    memset(dst, 0, sizeof(*dst));
    if (ndim < src->ndim || ndim > AG_TENSOR_MAX_DIMS)
        return AG_E_MPC_SHAPE;
    size_t stride[AG_TENSOR_MAX_DIMS];
    row_major_strides(src, stride);
    struct view v = {.ndim = ndim};
    int lead = ndim - src->ndim; /* new axes in front: stride 0 */
    for (int k = 0; k < ndim; k++) {
        if (shape[k] < 0)
            return AG_E_MPC_SHAPE;
        v.count[k] = (size_t)shape[k];
        if (k < lead)
            continue;
        int64_t have = src->shape[k - lead];
        if (have == shape[k])
            v.stride[k] = stride[k - lead];
        else if (have != 1)
            return AG_E_MPC_SHAPE;
    }
    return gather_new(dst, src, ndim, shape, &v);
}

/* ---- concat ---------------------------------------------------------------- */

/* Checks concat's operands and computes the result's shape into shape;
 * *ax gets the normalized axis. */
static int concat_shape(const ag_tensor *const *srcs, size_t n, int axis, int *ax, int64_t *shape)
{
    const ag_tensor *a = srcs[0];
    for (size_t i = 1; i < n; i++) {
        if (srcs[i]->field != a->field)
            return AG_E_MPC_FIELD;
        if (srcs[i]->vis != a->vis)
            return AG_E_MPC_VIS;
    }
    if (axis < 0)
        axis += a->ndim;
    if (axis < 0 || axis >= a->ndim)
        return AG_E_MPC_SHAPE;
    for (int k = 0; k < a->ndim; k++)
        shape[k] = a->shape[k];
    for (size_t i = 1; i < n; i++) {
        const ag_tensor *b = srcs[i];
        if (b->ndim != a->ndim)
            return AG_E_MPC_SHAPE;
        for (int k = 0; k < a->ndim; k++)
            if (k != axis && b->shape[k] != a->shape[k])
                return AG_E_MPC_SHAPE;
        if (b->shape[axis] > INT64_MAX - shape[axis])
            return AG_E_MPC_SHAPE;
        shape[axis] += b->shape[axis];
    }
    *ax = axis;
    return 0;
}

/* For each index over the axes before `axis`, dst takes each source's whole
 * slab (its axis and everything after it, contiguous) in turn. Returns 0,
 * AG_E_INVAL for n == 0 or dst being a source, AG_E_MPC_FIELD or
 * AG_E_MPC_VIS when the sources disagree (checked first),
 * AG_E_MPC_SHAPE for a scalar, an axis out of range or another axis that
 * differs, or AG_E_NOMEM. */
int ag_tensor_concat(ag_tensor *dst, const ag_tensor *const *srcs, size_t n, int axis)
{
    for (size_t i = 0; i < n; i++)
        if (dst == srcs[i])
            return AG_E_INVAL;
    memset(dst, 0, sizeof(*dst));
    if (n == 0)
        return AG_E_INVAL;
    int64_t shape[AG_TENSOR_MAX_DIMS];
    int ax = 0;
    int rc = concat_shape(srcs, n, axis, &ax, shape);
    if (rc == 0)
        rc = ag_tensor_init(dst, srcs[0]->field, srcs[0]->vis, srcs[0]->ndim, shape);
    if (rc < 0)
        return rc;
    size_t eb = ag_field_bytes(dst->field), outer = 1, inner = 1;
    for (int k = 0; k < ax; k++)
        outer *= (size_t)shape[k];
    for (int k = ax + 1; k < dst->ndim; k++)
        inner *= (size_t)shape[k];
    uint8_t *d = dst->data;
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < n; i++) {
            size_t slab = (size_t)srcs[i]->shape[ax] * inner * eb;
            if (slab == 0)
                continue;
            memcpy(d, (const uint8_t *)srcs[i]->data + o * slab, slab);
            d += slab;
        }
    return 0;
}

/* ---- reductions ------------------------------------------------------------ */

/* Checks a reduction's session and operand and resolves axis: on success
 * *ax is the axis in [0, ndim), or -1 for AG_AXIS_ALL, and *count the
 * number of elements each output element sums. */
static int reduce_check(ag_mpc *m, const char *op, const ag_tensor *x, int axis,
                        const ag_tensor *out, int *ax, uint64_t *count)
{
    if (!m->ready)
        return ag_errbuf_set(&m->err, AG_E_STATE, "%s: the session is not set up "
                             "(call ag_mpc_setup first)", op);
    if (x == out)
        return ag__mpc_fail(m, AG_E_INVAL, op, "the output must not be an input");
    if (x->field != m->field)
        return ag__mpc_fail(m, AG_E_MPC_FIELD, op, "operand is %s, the session is %s",
                            ag_field_name(x->field), ag_field_name(m->field));
    if (x->vis == AG_VIS_BSHARE)
        return ag__mpc_fail(m, AG_E_MPC_VIS, op, "not defined on boolean shares");
    if (axis == AG_AXIS_ALL) {
        *ax = -1;
        *count = x->numel;
        return 0;
    }
    int a = axis < 0 ? axis + x->ndim : axis;
    if (a < 0 || a >= x->ndim) {
        char s[64];
        return ag__mpc_fail(m, AG_E_MPC_SHAPE, op, "axis %d out of range for shape %s", axis,
                            ag_tensor_shape_str(x, s, sizeof(s)));
    }
    *ax = a;
    *count = (uint64_t)x->shape[a];
    return 0;
}

/* dst[o][j] = sum over k of src[o][k][j], for o < outer, k < len, j < inner
 * (dst zeroed by the caller). */
static void sum_axis(ag_field f, void *dst, const void *src, size_t outer, size_t len,
                     size_t inner)
{
    if (f == AG_FM64) {
        uint64_t *d = dst;
        const uint64_t *s = src;
        for (size_t o = 0; o < outer; o++, d += inner)
            for (size_t k = 0; k < len; k++, s += inner)
                for (size_t j = 0; j < inner; j++)
                    d[j] += s[j];
    } else {
        ag_u128 *d = dst;
        const ag_u128 *s = src;
        for (size_t o = 0; o < outer; o++, d += inner)
            for (size_t k = 0; k < len; k++, s += inner)
                for (size_t j = 0; j < inner; j++)
                    d[j] += s[j];
    }
}

/* The sum of x along ax (-1: all of it) into out, initialized here. */
static int reduce_sum(ag_mpc *m, const char *op, const ag_tensor *x, int ax, ag_tensor *out)
{
    int64_t shape[AG_TENSOR_MAX_DIMS];
    int ndim = 0;
    size_t outer = 1, len = x->numel, inner = 1;
    if (ax >= 0) {
        for (int k = 0; k < x->ndim; k++)
            if (k != ax)
                shape[ndim++] = x->shape[k];
        for (int k = 0; k < ax; k++)
            outer *= (size_t)x->shape[k];
        len = (size_t)x->shape[ax];
        for (int k = ax + 1; k < x->ndim; k++)
            inner *= (size_t)x->shape[k];
    }
    int rc = ag_tensor_init(out, x->field, x->vis, ndim, shape);
    if (rc < 0)
        return ag__mpc_fail(m, rc, op, "%s", ag_strerror(rc));
    sum_axis(x->field, out->data, x->data, outer, len, inner);
    return 0;
}

/* Local at every party: a public sum of a public tensor, a share of the
 * sum of a shared one (ring arithmetic, so fixed point keeps its fraction
 * bits). Errors are recorded in m and, except the setup check, abort the
 * link, as every kernel's do. */
int ag_mpc_sum(ag_mpc *m, const ag_tensor *x, int axis, ag_tensor *out)
{
    int ax;
    uint64_t count;
    if (x != out)
        memset(out, 0, sizeof(*out));
    int rc = reduce_check(m, "sum", x, axis, out, &ax, &count);
    if (rc < 0)
        return rc;
    return reduce_sum(m, "sum", x, ax, out);
}

/* Extra fraction bits of mean's constant 1/count beyond the session's f.
 * With f bits alone (ag_mpc_fmul by the encoding of 1/count) the
 * constant's rounding error, up to half a unit, a relative error of
 * count * 2^-(f+1), puts the mean off by up to count * |mean| / 2 units of
 * 2^-f (500 units for a mean of 1000 over 3 values), and a count above
 * 2^(f+1) rounds the constant to 0. With f + 9 bits the error is at most
 * count * |mean| / 1024 units, under count units while |mean| < 1024, and
 * counts up to 2^(f+10) keep a nonzero constant. The price: the product
 * before truncation is |mean| * 2^(2f+9) in the ring, so it does not wrap
 * only while |mean| < 2^(K-2-2f-9) (FM64 with f = 18: 131072; FM128 with
 * f = 26: 2^65), and a share's truncation fails (is off by 2^(K-f-9) units)
 * with probability about |mean| * 2^(2f+10-K) (FM64: |mean| * 2^-18;
 * FM128: |mean| * 2^-66), against |mean| * 2^(2f+1-K) for fmul. */
#define MEAN_EXTRA_BITS 9

/* mean = (sum * C) >> g with C = round(2^g / count), g = f + extra bits;
 * a power of two count = 2^k is exact: sum >> k, with no product. Either
 * way one truncation. */
static int mean_scale(ag_mpc *m, const ag_tensor *sum, uint64_t count, ag_tensor *out)
{
    if ((count & (count - 1)) == 0) {
        unsigned k = 0;
        while (((uint64_t)1 << k) < count)
            k++;
        return ag_mpc_trunc(m, sum, k, out);
    }
    unsigned g = m->fxp_bits + MEAN_EXTRA_BITS;
    ag_u128 c = (((ag_u128)1 << g) + count / 2) / count;
    ag_tensor ct, prod;
    int rc = ag_tensor_init(&ct, m->field, AG_VIS_PUBLIC, sum->ndim, sum->shape);
    if (rc < 0)
        return ag__mpc_fail(m, rc, "mean", "%s", ag_strerror(rc));
    for (size_t i = 0; i < ct.numel; i++) {
        if (m->field == AG_FM64)
            ag_tensor_u64(&ct)[i] = (uint64_t)c;
        else
            ag_tensor_u128(&ct)[i] = c;
    }
    rc = ag_mpc_mul(m, sum, &ct, &prod);
    ag_tensor_cleanup(&ct);
    if (rc < 0)
        return rc;
    rc = ag_mpc_trunc(m, &prod, g, out);
    ag_tensor_cleanup(&prod);
    return rc;
}

/* The sum, then mean_scale(): collective only through the truncation (no
 * message for two parties or a public x; one round for more parties). An
 * empty axis is AG_E_MPC_SHAPE, as a division by zero. */
int ag_mpc_mean(ag_mpc *m, const ag_tensor *x, int axis, ag_tensor *out)
{
    int ax;
    uint64_t count;
    if (x != out)
        memset(out, 0, sizeof(*out));
    int rc = reduce_check(m, "mean", x, axis, out, &ax, &count);
    if (rc < 0)
        return rc;
    if (count == 0) {
        char s[64];
        ag_tensor_shape_str(x, s, sizeof(s));
        if (ax < 0)
            return ag__mpc_fail(m, AG_E_MPC_SHAPE, "mean", "empty axis: shape %s has no "
                                "element", s);
        return ag__mpc_fail(m, AG_E_MPC_SHAPE, "mean", "empty axis: axis %d of shape %s has "
                            "no element", axis, s);
    }
    ag_tensor sum;
    rc = reduce_sum(m, "mean", x, ax, &sum);
    if (rc < 0)
        return rc;
    rc = mean_scale(m, &sum, count, out);
    ag_tensor_cleanup(&sum);
    return rc;
}
