/*
 * Tests for src/mpc/shape.c. The shape operations (permute, slice, concat,
 * broadcast) against hand-computed results and against brute-force index
 * arithmetic on random tensors of 0..4 axes in both fields; every error's
 * return code and the empty dst it leaves; the same under failmalloc. Then
 * ag_mpc_sum and ag_mpc_mean for 2 and 3 parties, both fields, shared and
 * public inputs, every axis and AG_AXIS_ALL, against plaintext (sums exact
 * in the ring, means within (count + 2) * 2^-f of the true mean), with their
 * bytes and rounds against the cost model; and the reductions' errors.
 */
#include <math.h>

#include "parties.h"

/* ---- helpers --------------------------------------------------------------- */

static size_t numel_of(int ndim, const int64_t *shape)
{
    size_t n = 1;
    for (int k = 0; k < ndim; k++)
        n *= (size_t)shape[k];
    return n;
}

static ag_u128 get(const ag_tensor *t, size_t i)
{
    return t->field == AG_FM64 ? ag_tensor_u64(t)[i] : ag_tensor_u128(t)[i];
}

static void set(ag_tensor *t, size_t i, ag_u128 v)
{
    if (t->field == AG_FM64)
        ag_tensor_u64(t)[i] = (uint64_t)v;
    else
        ag_tensor_u128(t)[i] = v;
}

/* A tensor of random ring elements. */
static void rand_tensor(ag_tensor *t, ag_field f, ag_vis v, int ndim, const int64_t *shape)
{
    CHECK_OK(ag_tensor_init(t, f, v, ndim, shape));
    CHECK_OK(ag_random_bytes(t->data, t->numel * ag_field_bytes(f)));
}

/* A tensor holding base, base + 1, ... in row-major order. */
static void iota_tensor(ag_tensor *t, ag_field f, int ndim, const int64_t *shape, int base)
{
    CHECK_OK(ag_tensor_init(t, f, AG_VIS_PUBLIC, ndim, shape));
    for (size_t i = 0; i < t->numel; i++)
        set(t, i, (ag_u128)(base + (int)i));
}

static void unravel(size_t flat, int ndim, const int64_t *shape, int64_t *idx)
{
    for (int k = ndim - 1; k >= 0; k--) {
        idx[k] = (int64_t)(flat % (size_t)shape[k]);
        flat /= (size_t)shape[k];
    }
}

static size_t ravel(const int64_t *idx, int ndim, const int64_t *shape)
{
    size_t flat = 0;
    for (int k = 0; k < ndim; k++)
        flat = flat * (size_t)shape[k] + (size_t)idx[k];
    return flat;
}

/* Every byte of t is zero (data NULL). */
static bool is_empty(const ag_tensor *t)
{
    static const ag_tensor zero;
    return memcmp(t, &zero, sizeof(zero)) == 0;
}

static void check_meta(const ag_tensor *t, ag_field f, ag_vis v, int ndim, const int64_t *shape)
{
    CHECK_EQ(t->field, f);
    CHECK_EQ(t->vis, v);
    CHECK_EQ(t->ndim, ndim);
    for (int k = 0; k < ndim; k++)
        CHECK_EQ(t->shape[k], shape[k]);
    CHECK_EQ(t->numel, numel_of(ndim, shape));
    CHECK(t->data != NULL);
}

/* The elements of t (as small integers) equal want[0..n). */
static void check_values(const ag_tensor *t, const int *want, size_t n)
{
    CHECK_EQ(t->numel, n);
    for (size_t i = 0; i < n; i++)
        if (get(t, i) != (ag_u128)want[i])
            FAIL("element %zu is %llu, want %d", i, (unsigned long long)get(t, i), want[i]);
}

/* A random shape of ndim axes, each 0..maxdim (0 only when zeros). */
static void rand_shape(int ndim, int64_t *shape, int64_t maxdim, bool zeros)
{
    for (int k = 0; k < ndim; k++)
        shape[k] = zeros ? (int64_t)ag_random_uniform((uint64_t)maxdim + 1)
                         : 1 + (int64_t)ag_random_uniform((uint64_t)maxdim);
}

static const ag_vis vis_all[3] = {AG_VIS_PUBLIC, AG_VIS_ASHARE, AG_VIS_BSHARE};

/* ---- permute ---------------------------------------------------------------- */

TEST(mpc_shape_permute_by_hand)
{
    ag_tensor a, d;
    /* (2,3) [[0,1,2],[3,4,5]] transposed */
    iota_tensor(&a, AG_FM64, 2, (int64_t[]){2, 3}, 0);
    CHECK_OK(ag_tensor_permute(&d, &a, (int[]){1, 0}));
    check_meta(&d, AG_FM64, AG_VIS_PUBLIC, 2, (int64_t[]){3, 2});
    check_values(&d, (int[]){0, 3, 1, 4, 2, 5}, 6);
    ag_tensor_cleanup(&d);
    /* perm NULL reverses: the same for 2-D */
    CHECK_OK(ag_tensor_permute(&d, &a, NULL));
    check_values(&d, (int[]){0, 3, 1, 4, 2, 5}, 6);
    ag_tensor_cleanup(&d);
    /* identity copies */
    CHECK_OK(ag_tensor_permute(&d, &a, (int[]){0, 1}));
    check_values(&d, (int[]){0, 1, 2, 3, 4, 5}, 6);
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&a);

    /* (2,2,3) with perm (2,0,1): dst[k][i][j] = src[i][j][k], shape (3,2,2) */
    iota_tensor(&a, AG_FM128, 3, (int64_t[]){2, 2, 3}, 0);
    CHECK_OK(ag_tensor_permute(&d, &a, (int[]){2, 0, 1}));
    check_meta(&d, AG_FM128, AG_VIS_PUBLIC, 3, (int64_t[]){3, 2, 2});
    check_values(&d, (int[]){0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11}, 12);
    ag_tensor_cleanup(&d);
    /* (1,2,0): dst[j][k][i] = src[i][j][k], shape (2,3,2) */
    CHECK_OK(ag_tensor_permute(&d, &a, (int[]){1, 2, 0}));
    check_meta(&d, AG_FM128, AG_VIS_PUBLIC, 3, (int64_t[]){2, 3, 2});
    check_values(&d, (int[]){0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11}, 12);
    ag_tensor_cleanup(&d);
    /* (0,2,1): the rows of each matrix transposed, outer axis kept */
    CHECK_OK(ag_tensor_permute(&d, &a, (int[]){0, 2, 1}));
    check_values(&d, (int[]){0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11}, 12);
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&a);

    /* a scalar: ndim 0, perm NULL or empty */
    iota_tensor(&a, AG_FM64, 0, NULL, 42);
    CHECK_OK(ag_tensor_permute(&d, &a, NULL));
    CHECK_EQ(d.ndim, 0);
    check_values(&d, (int[]){42}, 1);
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&a);
}

/* The next permutation in lexicographic order; false after the last. */
static bool next_perm(int *p, int n)
{
    int i = n - 2;
    while (i >= 0 && p[i] >= p[i + 1])
        i--;
    if (i < 0)
        return false;
    int j = n - 1;
    while (p[j] <= p[i])
        j--;
    int t = p[i];
    p[i] = p[j];
    p[j] = t;
    for (int a = i + 1, b = n - 1; a < b; a++, b--) {
        t = p[a];
        p[a] = p[b];
        p[b] = t;
    }
    return true;
}

/* dst[idx] == src[idx permuted back] for every element. */
static void check_permuted(const ag_tensor *d, const ag_tensor *s, const int *perm)
{
    int64_t shape[AG_TENSOR_MAX_DIMS], di[AG_TENSOR_MAX_DIMS], si[AG_TENSOR_MAX_DIMS];
    for (int k = 0; k < s->ndim; k++)
        shape[k] = s->shape[perm[k]];
    check_meta(d, s->field, s->vis, s->ndim, shape);
    for (size_t i = 0; i < d->numel; i++) {
        unravel(i, d->ndim, d->shape, di);
        for (int k = 0; k < d->ndim; k++)
            si[perm[k]] = di[k];
        if (get(d, i) != get(s, ravel(si, s->ndim, s->shape)))
            FAIL("permute: element %zu wrong", i);
    }
}

TEST(mpc_shape_permute_every_perm_of_random_tensors)
{
    for (int f = AG_FM64; f <= AG_FM128; f++)
        for (int ndim = 0; ndim <= 4; ndim++)
            for (int rep = 0; rep < 6; rep++) {
                int64_t shape[4];
                rand_shape(ndim, shape, 4, rep == 5);
                ag_tensor s, d;
                rand_tensor(&s, (ag_field)f, vis_all[rep % 3], ndim, shape);
                int perm[4] = {0, 1, 2, 3};
                do {
                    CHECK_OK(ag_tensor_permute(&d, &s, perm));
                    check_permuted(&d, &s, perm);
                    ag_tensor_cleanup(&d);
                } while (next_perm(perm, ndim));
                int rev[4];
                for (int k = 0; k < ndim; k++)
                    rev[k] = ndim - 1 - k;
                CHECK_OK(ag_tensor_permute(&d, &s, NULL));
                check_permuted(&d, &s, rev);
                ag_tensor_cleanup(&d);
                ag_tensor_cleanup(&s);
            }
}

/* A larger 5-D permutation that keeps the inner axes (block copies). */
TEST(mpc_shape_permute_keeps_inner_blocks)
{
    int64_t shape[5] = {3, 4, 2, 5, 6};
    int perms[3][5] = {{1, 0, 2, 3, 4}, {2, 1, 0, 3, 4}, {4, 3, 2, 1, 0}};
    ag_tensor s, d;
    rand_tensor(&s, AG_FM128, AG_VIS_ASHARE, 5, shape);
    for (int p = 0; p < 3; p++) {
        CHECK_OK(ag_tensor_permute(&d, &s, perms[p]));
        check_permuted(&d, &s, perms[p]);
        ag_tensor_cleanup(&d);
    }
    ag_tensor_cleanup(&s);
}

TEST(mpc_shape_permute_errors)
{
    ag_tensor s, d;
    rand_tensor(&s, AG_FM64, AG_VIS_ASHARE, 3, (int64_t[]){2, 3, 4});
    static const int bad[][3] = {{0, 0, 1}, {0, 1, 3}, {-1, 0, 1}, {2, 2, 2}, {1, 0, 0}};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        memset(&d, 0xa5, sizeof(d));
        CHECK_EQ(ag_tensor_permute(&d, &s, bad[i]), AG_E_MPC_SHAPE);
        CHECK(is_empty(&d));
    }
    /* dst aliasing src is refused and src kept */
    void *data = s.data;
    CHECK_EQ(ag_tensor_permute(&s, &s, NULL), AG_E_INVAL);
    CHECK(s.data == data);
    CHECK_EQ(s.ndim, 3);
    ag_tensor_cleanup(&s);
}

/* ---- slice ------------------------------------------------------------------ */

/* src 1-D 0..9 sliced [start:stop:step], each NULL-able; want n values. */
static void slice1(const int64_t *start, const int64_t *stop, const int64_t *step,
                   const int *want, size_t n)
{
    ag_tensor a, d;
    iota_tensor(&a, AG_FM64, 1, (int64_t[]){10}, 0);
    CHECK_OK(ag_tensor_slice(&d, &a, start, stop, step));
    check_meta(&d, AG_FM64, AG_VIS_PUBLIC, 1, (int64_t[]){(int64_t)n});
    check_values(&d, want, n);
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&a);
}

#define I64(...) ((const int64_t[]){__VA_ARGS__})
#define INTS(...) ((const int[]){__VA_ARGS__})

TEST(mpc_shape_slice_by_hand)
{
    slice1(NULL, NULL, NULL, INTS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), 10);
    slice1(I64(2), I64(8), I64(3), INTS(2, 5), 2);       /* a[2:8:3] */
    slice1(I64(2), I64(9), I64(3), INTS(2, 5, 8), 3);    /* a[2:9:3] */
    slice1(I64(-3), NULL, NULL, INTS(7, 8, 9), 3);        /* a[-3:] */
    slice1(NULL, I64(-7), NULL, INTS(0, 1, 2), 3);        /* a[:-7] */
    slice1(I64(-100), I64(2), NULL, INTS(0, 1), 2);       /* start clamped to 0 */
    slice1(I64(7), I64(100), NULL, INTS(7, 8, 9), 3);     /* stop clamped to 10 */
    slice1(I64(-4), I64(-1), I64(2), INTS(6, 8), 2);      /* a[-4:-1:2] */
    slice1(NULL, NULL, I64(4), INTS(0, 4, 8), 3);         /* a[::4] */
    slice1(I64(3), NULL, I64(100), INTS(3), 1);           /* a huge step */
    slice1(I64(0), I64(10), I64(INT64_MAX), INTS(0), 1);  /* no overflow */
    slice1(I64(INT64_MIN), I64(INT64_MAX), NULL, INTS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), 10);
    /* empty results */
    slice1(I64(5), I64(5), NULL, NULL, 0);
    slice1(I64(6), I64(2), NULL, NULL, 0);
    slice1(I64(100), NULL, NULL, NULL, 0);
    slice1(NULL, I64(-100), NULL, NULL, 0);
    slice1(I64(10), NULL, I64(2), NULL, 0);

    /* (3,4) [[0..3],[4..7],[8..11]] sliced [1:, ::2] */
    ag_tensor a, d;
    iota_tensor(&a, AG_FM128, 2, (int64_t[]){3, 4}, 0);
    CHECK_OK(ag_tensor_slice(&d, &a, I64(1, 0), I64(3, 4), I64(1, 2)));
    check_meta(&d, AG_FM128, AG_VIS_PUBLIC, 2, (int64_t[]){2, 2});
    check_values(&d, INTS(4, 6, 8, 10), 4);
    ag_tensor_cleanup(&d);
    /* [:, 1:3]: two-element rows */
    CHECK_OK(ag_tensor_slice(&d, &a, I64(0, 1), I64(3, 3), NULL));
    check_values(&d, INTS(1, 2, 5, 6, 9, 10), 6);
    ag_tensor_cleanup(&d);
    /* [-1:, :]: the last row, one block */
    CHECK_OK(ag_tensor_slice(&d, &a, I64(-1, 0), NULL, NULL));
    check_meta(&d, AG_FM128, AG_VIS_PUBLIC, 2, (int64_t[]){1, 4});
    check_values(&d, INTS(8, 9, 10, 11), 4);
    ag_tensor_cleanup(&d);
    /* [::2, -1]: a column as (2,1) */
    CHECK_OK(ag_tensor_slice(&d, &a, I64(0, -1), NULL, I64(2, 1)));
    check_meta(&d, AG_FM128, AG_VIS_PUBLIC, 2, (int64_t[]){2, 1});
    check_values(&d, INTS(3, 11), 2);
    ag_tensor_cleanup(&d);
    /* [1:1, :]: empty, shape (0,4) */
    CHECK_OK(ag_tensor_slice(&d, &a, I64(1, 0), I64(1, 4), NULL));
    check_meta(&d, AG_FM128, AG_VIS_PUBLIC, 2, (int64_t[]){0, 4});
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&a);

    /* a scalar slices to itself */
    iota_tensor(&a, AG_FM64, 0, NULL, 7);
    CHECK_OK(ag_tensor_slice(&d, &a, NULL, NULL, NULL));
    CHECK_EQ(d.ndim, 0);
    check_values(&d, INTS(7), 1);
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&a);
}

/* The indices python's range(len)[b:e:st] selects, into sel; their number. */
static int64_t py_slice(int64_t len, int64_t b, int64_t e, int64_t st, int64_t *sel)
{
    /* PySlice_AdjustIndices for a positive step */
    if (b < 0) {
        b += len;
        if (b < 0)
            b = 0;
    } else if (b >= len) {
        b = len;
    }
    if (e < 0) {
        e += len;
        if (e < 0)
            e = 0;
    } else if (e >= len) {
        e = len;
    }
    int64_t n = 0;
    for (int64_t j = 0; j < len; j++)
        if (j >= b && j < e && (j - b) % st == 0)
            sel[n++] = j;
    return n;
}

TEST(mpc_shape_slice_random_vs_brute_force)
{
    for (int f = AG_FM64; f <= AG_FM128; f++)
        for (int ndim = 0; ndim <= 4; ndim++)
            for (int rep = 0; rep < 40; rep++) {
                int64_t shape[4], start[4], stop[4], step[4];
                rand_shape(ndim, shape, 5, rep % 8 == 7);
                for (int k = 0; k < ndim; k++) {
                    int64_t len = shape[k];
                    start[k] = (int64_t)ag_random_uniform((uint64_t)(2 * len + 5)) - len - 2;
                    stop[k] = (int64_t)ag_random_uniform((uint64_t)(2 * len + 5)) - len - 2;
                    step[k] = 1 + (int64_t)ag_random_uniform((uint64_t)len + 2);
                    if (rep % 4 == 0) /* the full axis, contiguous */
                        start[k] = 0, stop[k] = len, step[k] = 1;
                }
                bool nstart = rep % 5 == 1, nstop = rep % 5 == 2, nstep = rep % 5 == 3;
                ag_tensor s, d;
                rand_tensor(&s, (ag_field)f, vis_all[rep % 3], ndim, shape);
                CHECK_OK(ag_tensor_slice(&d, &s, nstart ? NULL : start, nstop ? NULL : stop,
                                         nstep ? NULL : step));
                int64_t sel[4][8], dshape[4];
                for (int k = 0; k < ndim; k++)
                    dshape[k] = py_slice(shape[k], nstart ? 0 : start[k],
                                         nstop ? shape[k] : stop[k], nstep ? 1 : step[k],
                                         sel[k]);
                check_meta(&d, s.field, s.vis, ndim, dshape);
                int64_t di[4], si[4];
                for (size_t i = 0; i < d.numel; i++) {
                    unravel(i, ndim, dshape, di);
                    for (int k = 0; k < ndim; k++)
                        si[k] = sel[k][di[k]];
                    if (get(&d, i) != get(&s, ravel(si, ndim, shape)))
                        FAIL("slice: element %zu wrong", i);
                }
                ag_tensor_cleanup(&d);
                ag_tensor_cleanup(&s);
            }
}

TEST(mpc_shape_slice_errors)
{
    ag_tensor s, d;
    rand_tensor(&s, AG_FM128, AG_VIS_ASHARE, 2, (int64_t[]){3, 4});
    static const int64_t bad[][2] = {{1, 0}, {0, 1}, {-1, 1}, {1, INT64_MIN}};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        memset(&d, 0xa5, sizeof(d));
        CHECK_EQ(ag_tensor_slice(&d, &s, NULL, NULL, bad[i]), AG_E_INVAL);
        CHECK(is_empty(&d));
    }
    void *data = s.data;
    CHECK_EQ(ag_tensor_slice(&s, &s, NULL, NULL, NULL), AG_E_INVAL);
    CHECK(s.data == data);
    ag_tensor_cleanup(&s);
}

/* ---- concat ----------------------------------------------------------------- */

TEST(mpc_shape_concat_by_hand)
{
    ag_tensor a, b, c, d;
    iota_tensor(&a, AG_FM64, 2, (int64_t[]){2, 2}, 0);   /* [[0,1],[2,3]] */
    iota_tensor(&b, AG_FM64, 2, (int64_t[]){2, 3}, 10);  /* [[10,11,12],[13,14,15]] */
    iota_tensor(&c, AG_FM64, 2, (int64_t[]){1, 2}, 20);  /* [[20,21]] */
    const ag_tensor *ab[2] = {&a, &b}, *ac[2] = {&a, &c}, *aca[3] = {&a, &c, &a};
    CHECK_OK(ag_tensor_concat(&d, ab, 2, 1));
    check_meta(&d, AG_FM64, AG_VIS_PUBLIC, 2, (int64_t[]){2, 5});
    check_values(&d, INTS(0, 1, 10, 11, 12, 2, 3, 13, 14, 15), 10);
    ag_tensor_cleanup(&d);
    CHECK_OK(ag_tensor_concat(&d, ab, 2, -1));
    check_values(&d, INTS(0, 1, 10, 11, 12, 2, 3, 13, 14, 15), 10);
    ag_tensor_cleanup(&d);
    CHECK_OK(ag_tensor_concat(&d, ac, 2, 0));
    check_meta(&d, AG_FM64, AG_VIS_PUBLIC, 2, (int64_t[]){3, 2});
    check_values(&d, INTS(0, 1, 2, 3, 20, 21), 6);
    ag_tensor_cleanup(&d);
    CHECK_OK(ag_tensor_concat(&d, aca, 3, -2));
    check_values(&d, INTS(0, 1, 2, 3, 20, 21, 0, 1, 2, 3), 10);
    ag_tensor_cleanup(&d);
    /* one tensor: a copy */
    CHECK_OK(ag_tensor_concat(&d, ab, 1, 0));
    check_meta(&d, AG_FM64, AG_VIS_PUBLIC, 2, (int64_t[]){2, 2});
    check_values(&d, INTS(0, 1, 2, 3), 4);
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&a);
    ag_tensor_cleanup(&b);
    ag_tensor_cleanup(&c);

    /* an empty piece along the axis, and all-empty */
    iota_tensor(&a, AG_FM128, 1, (int64_t[]){3}, 1);
    iota_tensor(&b, AG_FM128, 1, (int64_t[]){0}, 0);
    const ag_tensor *ba[3] = {&b, &a, &b}, *bb[2] = {&b, &b};
    CHECK_OK(ag_tensor_concat(&d, ba, 3, 0));
    check_meta(&d, AG_FM128, AG_VIS_PUBLIC, 1, (int64_t[]){3});
    check_values(&d, INTS(1, 2, 3), 3);
    ag_tensor_cleanup(&d);
    CHECK_OK(ag_tensor_concat(&d, bb, 2, 0));
    check_meta(&d, AG_FM128, AG_VIS_PUBLIC, 1, (int64_t[]){0});
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&a);
    ag_tensor_cleanup(&b);
}

TEST(mpc_shape_concat_random_vs_brute_force)
{
    for (int f = AG_FM64; f <= AG_FM128; f++)
        for (int ndim = 1; ndim <= 4; ndim++)
            for (int rep = 0; rep < 30; rep++) {
                int64_t shape[4], dshape[4];
                rand_shape(ndim, shape, 4, rep % 6 == 5);
                int axis = (int)ag_random_uniform((uint64_t)(2 * ndim)) - ndim;
                int ax = axis < 0 ? axis + ndim : axis;
                size_t n = 1 + ag_random_uniform(3);
                ag_tensor s[3], d;
                const ag_tensor *sp[3];
                int64_t first[4] = {0}; /* piece i's first index along ax */
                memcpy(dshape, shape, sizeof(shape));
                dshape[ax] = 0;
                for (size_t i = 0; i < n; i++) {
                    shape[ax] = (int64_t)ag_random_uniform(4);
                    rand_tensor(&s[i], (ag_field)f, vis_all[rep % 3], ndim, shape);
                    sp[i] = &s[i];
                    first[i] = dshape[ax];
                    dshape[ax] += shape[ax];
                }
                first[n] = dshape[ax];
                CHECK_OK(ag_tensor_concat(&d, sp, n, axis));
                check_meta(&d, (ag_field)f, vis_all[rep % 3], ndim, dshape);
                int64_t di[4];
                for (size_t e = 0; e < d.numel; e++) {
                    unravel(e, ndim, dshape, di);
                    size_t i = 0;
                    while (di[ax] >= first[i + 1])
                        i++;
                    di[ax] -= first[i];
                    if (get(&d, e) != get(&s[i], ravel(di, ndim, s[i].shape)))
                        FAIL("concat: element %zu wrong", e);
                }
                ag_tensor_cleanup(&d);
                for (size_t i = 0; i < n; i++)
                    ag_tensor_cleanup(&s[i]);
            }
}

/* concat of a and b along axis must fail with want and leave dst empty. */
static void concat_fails(const ag_tensor *a, const ag_tensor *b, int axis, int want)
{
    const ag_tensor *ab[2] = {a, b};
    ag_tensor d;
    memset(&d, 0xa5, sizeof(d));
    CHECK_EQ(ag_tensor_concat(&d, ab, 2, axis), want);
    CHECK(is_empty(&d));
}

TEST(mpc_shape_concat_errors)
{
    ag_tensor a, b, d;
    rand_tensor(&a, AG_FM64, AG_VIS_ASHARE, 2, (int64_t[]){2, 3});
    /* no tensor */
    memset(&d, 0xa5, sizeof(d));
    CHECK_EQ(ag_tensor_concat(&d, NULL, 0, 0), AG_E_INVAL);
    CHECK(is_empty(&d));
    /* field, visibility */
    rand_tensor(&b, AG_FM128, AG_VIS_ASHARE, 2, (int64_t[]){2, 3});
    concat_fails(&a, &b, 0, AG_E_MPC_FIELD);
    ag_tensor_cleanup(&b);
    rand_tensor(&b, AG_FM64, AG_VIS_PUBLIC, 2, (int64_t[]){2, 3});
    concat_fails(&a, &b, 0, AG_E_MPC_VIS);
    ag_tensor_cleanup(&b);
    rand_tensor(&b, AG_FM64, AG_VIS_BSHARE, 2, (int64_t[]){2, 3});
    concat_fails(&a, &b, 1, AG_E_MPC_VIS);
    ag_tensor_cleanup(&b);
    /* another axis differs; the number of axes differs */
    rand_tensor(&b, AG_FM64, AG_VIS_ASHARE, 2, (int64_t[]){2, 4});
    concat_fails(&a, &b, 0, AG_E_MPC_SHAPE);
    ag_tensor_cleanup(&b);
    rand_tensor(&b, AG_FM64, AG_VIS_ASHARE, 3, (int64_t[]){2, 3, 1});
    concat_fails(&a, &b, 0, AG_E_MPC_SHAPE);
    ag_tensor_cleanup(&b);
    /* axis out of range */
    rand_tensor(&b, AG_FM64, AG_VIS_ASHARE, 2, (int64_t[]){2, 3});
    concat_fails(&a, &b, 2, AG_E_MPC_SHAPE);
    concat_fails(&a, &b, -3, AG_E_MPC_SHAPE);
    concat_fails(&a, &b, INT32_MIN, AG_E_MPC_SHAPE);
    ag_tensor_cleanup(&b);
    /* scalars have no axis to join along */
    ag_tensor sa, sb;
    rand_tensor(&sa, AG_FM64, AG_VIS_ASHARE, 0, NULL);
    rand_tensor(&sb, AG_FM64, AG_VIS_ASHARE, 0, NULL);
    concat_fails(&sa, &sb, 0, AG_E_MPC_SHAPE);
    concat_fails(&sa, &sb, -1, AG_E_MPC_SHAPE);
    /* dst is one of the sources */
    const ag_tensor *asa[2] = {&sa, &a};
    void *data = a.data;
    CHECK_EQ(ag_tensor_concat(&a, asa, 2, 0), AG_E_INVAL);
    CHECK(a.data == data);
    ag_tensor_cleanup(&sa);
    ag_tensor_cleanup(&sb);
    ag_tensor_cleanup(&a);
}

/* ---- broadcast -------------------------------------------------------------- */

TEST(mpc_shape_broadcast_by_hand)
{
    ag_tensor a, d;
    /* a scalar to (2,3) */
    iota_tensor(&a, AG_FM64, 0, NULL, 5);
    CHECK_OK(ag_tensor_broadcast(&d, &a, 2, I64(2, 3)));
    check_meta(&d, AG_FM64, AG_VIS_PUBLIC, 2, (int64_t[]){2, 3});
    check_values(&d, INTS(5, 5, 5, 5, 5, 5), 6);
    ag_tensor_cleanup(&d);
    /* a scalar to a scalar, and to an empty shape */
    CHECK_OK(ag_tensor_broadcast(&d, &a, 0, NULL));
    check_values(&d, INTS(5), 1);
    ag_tensor_cleanup(&d);
    CHECK_OK(ag_tensor_broadcast(&d, &a, 2, I64(3, 0)));
    check_meta(&d, AG_FM64, AG_VIS_PUBLIC, 2, (int64_t[]){3, 0});
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&a);

    /* (3) to (2,3): rows repeat */
    iota_tensor(&a, AG_FM128, 1, (int64_t[]){3}, 0);
    CHECK_OK(ag_tensor_broadcast(&d, &a, 2, I64(2, 3)));
    check_meta(&d, AG_FM128, AG_VIS_PUBLIC, 2, (int64_t[]){2, 3});
    check_values(&d, INTS(0, 1, 2, 0, 1, 2), 6);
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&a);

    /* (2,1) to (2,3): columns repeat */
    iota_tensor(&a, AG_FM64, 2, (int64_t[]){2, 1}, 7);
    CHECK_OK(ag_tensor_broadcast(&d, &a, 2, I64(2, 3)));
    check_values(&d, INTS(7, 7, 7, 8, 8, 8), 6);
    ag_tensor_cleanup(&d);
    /* and to (2,2,5) (a new leading axis) */
    CHECK_OK(ag_tensor_broadcast(&d, &a, 3, I64(2, 2, 5)));
    check_values(&d, INTS(7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8), 20);
    ag_tensor_cleanup(&d);
    /* a size-1 axis to 0 */
    CHECK_OK(ag_tensor_broadcast(&d, &a, 2, I64(2, 0)));
    check_meta(&d, AG_FM64, AG_VIS_PUBLIC, 2, (int64_t[]){2, 0});
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&a);

    /* (1,2,1) to (3,2,2) */
    iota_tensor(&a, AG_FM64, 3, (int64_t[]){1, 2, 1}, 1);
    CHECK_OK(ag_tensor_broadcast(&d, &a, 3, I64(3, 2, 2)));
    check_values(&d, INTS(1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2), 12);
    ag_tensor_cleanup(&d);
    /* the same shape: a copy */
    CHECK_OK(ag_tensor_broadcast(&d, &a, 3, I64(1, 2, 1)));
    check_values(&d, INTS(1, 2), 2);
    ag_tensor_cleanup(&d);
    ag_tensor_cleanup(&a);
}

TEST(mpc_shape_broadcast_random_vs_brute_force)
{
    for (int f = AG_FM64; f <= AG_FM128; f++)
        for (int ndim = 0; ndim <= 4; ndim++)
            for (int rep = 0; rep < 40; rep++) {
                int64_t shape[4], dshape[AG_TENSOR_MAX_DIMS];
                rand_shape(ndim, shape, 3, rep % 8 == 7);
                for (int k = 0; k < ndim; k++) /* many size-1 axes */
                    if (ag_random_uniform(2))
                        shape[k] = 1;
                int lead = (int)ag_random_uniform(3), dn = lead + ndim;
                for (int k = 0; k < dn; k++) {
                    int64_t have = k < lead ? 1 : shape[k - lead];
                    dshape[k] = have == 1 ? (int64_t)ag_random_uniform(4) : have;
                }
                ag_tensor s, d;
                rand_tensor(&s, (ag_field)f, vis_all[rep % 3], ndim, shape);
                CHECK_OK(ag_tensor_broadcast(&d, &s, dn, dshape));
                check_meta(&d, s.field, s.vis, dn, dshape);
                int64_t di[AG_TENSOR_MAX_DIMS], si[4];
                for (size_t i = 0; i < d.numel; i++) {
                    unravel(i, dn, dshape, di);
                    for (int k = 0; k < ndim; k++)
                        si[k] = shape[k] == 1 ? 0 : di[k + lead];
                    if (get(&d, i) != get(&s, ravel(si, ndim, shape)))
                        FAIL("broadcast: element %zu wrong", i);
                }
                ag_tensor_cleanup(&d);
                ag_tensor_cleanup(&s);
            }
}

/* broadcast of a tensor of shape (sn) to (dn) must fail with want. */
static void broadcast_fails(int sndim, const int64_t *sshape, int dndim, const int64_t *dshape,
                            int want)
{
    ag_tensor s, d;
    rand_tensor(&s, AG_FM64, AG_VIS_ASHARE, sndim, sshape);
    memset(&d, 0xa5, sizeof(d));
    CHECK_EQ(ag_tensor_broadcast(&d, &s, dndim, dshape), want);
    CHECK(is_empty(&d));
    ag_tensor_cleanup(&s);
}

TEST(mpc_shape_broadcast_errors)
{
    broadcast_fails(1, I64(3), 1, I64(4), AG_E_MPC_SHAPE);
    broadcast_fails(1, I64(3), 2, I64(3, 2), AG_E_MPC_SHAPE); /* trailing axes align */
    broadcast_fails(2, I64(2, 3), 1, I64(3), AG_E_MPC_SHAPE); /* fewer axes */
    broadcast_fails(1, I64(0), 1, I64(5), AG_E_MPC_SHAPE);    /* 0 is not 1 */
    broadcast_fails(1, I64(2), 1, I64(1), AG_E_MPC_SHAPE);    /* no shrinking */
    broadcast_fails(1, I64(1), 1, I64(-1), AG_E_MPC_SHAPE);
    broadcast_fails(0, NULL, 2, I64(-2, 3), AG_E_MPC_SHAPE);
    broadcast_fails(0, NULL, -1, NULL, AG_E_MPC_SHAPE);
    broadcast_fails(0, NULL, 9, I64(1, 1, 1, 1, 1, 1, 1, 1, 1), AG_E_MPC_SHAPE);
    ag_tensor s;
    rand_tensor(&s, AG_FM64, AG_VIS_ASHARE, 1, I64(1));
    void *data = s.data;
    CHECK_EQ(ag_tensor_broadcast(&s, &s, 1, I64(1)), AG_E_INVAL);
    CHECK(s.data == data);
    ag_tensor_cleanup(&s);
}

/* ---- under failmalloc ------------------------------------------------------- */

/* FM_TRY for a shape operation: after an injected failure dst is empty. */
#define FM_SHAPE(expr, dst)                                                     \
    do {                                                                        \
        int fm_rc_ = (expr);                                                    \
        if (fm_rc_ == AG_E_NOMEM && ag_alloc_failed()) {                        \
            CHECK(is_empty(&(dst)));                                            \
            goto out;                                                           \
        }                                                                       \
        CHECK_OK(fm_rc_);                                                       \
    } while (0)

TEST_FM(mpc_shape_failmalloc)
{
    ag_tensor a = {0}, b = {0}, d[5] = {{0}};
    int64_t sa[3] = {2, 3, 4}, sb[3] = {2, 1, 4};
    FM_TRY(ag_tensor_init(&a, AG_FM128, AG_VIS_ASHARE, 3, sa), 0);
    FM_TRY(ag_tensor_init(&b, AG_FM128, AG_VIS_ASHARE, 3, sb), 0);
    for (size_t i = 0; i < a.numel; i++)
        set(&a, i, i);
    const ag_tensor *ab[2] = {&a, &b};
    FM_SHAPE(ag_tensor_permute(&d[0], &a, (int[]){2, 0, 1}), d[0]);
    FM_SHAPE(ag_tensor_slice(&d[1], &a, I64(1, -2, 0), NULL, I64(1, 1, 3)), d[1]);
    FM_SHAPE(ag_tensor_concat(&d[2], ab, 2, 1), d[2]);
    FM_SHAPE(ag_tensor_broadcast(&d[3], &b, 4, I64(2, 2, 3, 4)), d[3]);
    FM_SHAPE(ag_tensor_slice(&d[4], &a, I64(2, 0, 0), NULL, NULL), d[4]); /* empty */
    CHECK_EQ(d[0].numel, 24);
    CHECK(get(&d[0], 1) == 4); /* d[0][0][0][1] = a[0][1][0] */
    CHECK_EQ(d[1].numel, 4);
    CHECK(get(&d[1], 1) == 19); /* a[1][1][3] */
    CHECK_EQ(d[2].numel, 32);
    CHECK_EQ(d[3].numel, 48);
    CHECK_EQ(d[4].numel, 0);
out:
    for (size_t i = 0; i < AG_ARRAY_LEN(d); i++)
        ag_tensor_cleanup(&d[i]);
    ag_tensor_cleanup(&a);
    ag_tensor_cleanup(&b);
}

/* ---- sum and mean ------------------------------------------------------------ */

#define MAX_AXES 10

struct red_case {
    bool mean;     /* ag_mpc_mean on fixed point, else ag_mpc_sum on ring values */
    bool shared;   /* share the input from rank 0, else use it public */
    ag_field f;
    unsigned n;
    int ndim;
    int64_t shape[4];
    size_t numel;
    uint8_t *ring;  /* sum's input, numel ring elements */
    double *real;   /* mean's input */
    int naxes;
    int axes[MAX_AXES];
    /* per party and axis: the revealed result and the cost */
    ag_tensor got[MAX_PARTIES][MAX_AXES];
    double *dec[MAX_PARTIES][MAX_AXES];
    uint64_t bytes[MAX_PARTIES][MAX_AXES], rounds[MAX_PARTIES][MAX_AXES];
};

/* One reduction at one party: input, the reduction inside the cost
 * region, then the result opened (or copied, if public) into c->got. */
static int reduce_one(struct party *p, struct red_case *c, const ag_tensor *in, int a)
{
    ag_tensor z = {0};
    cost_begin(p);
    int rc = c->mean ? ag_mpc_mean(p->m, in, c->axes[a], &z) : ag_mpc_sum(p->m, in, c->axes[a], &z);
    cost_end(p);
    c->bytes[p->rank][a] = cost_bytes(p);
    c->rounds[p->rank][a] = cost_rounds(p);
    ag_tensor *g = &c->got[p->rank][a];
    if (rc == 0 && z.vis != (c->shared ? AG_VIS_ASHARE : AG_VIS_PUBLIC))
        FAIL("reduction: visibility %d", (int)z.vis);
    if (rc == 0)
        rc = c->shared ? ag_mpc_reveal(p->m, &z, g) : ag_tensor_copy(g, &z);
    if (rc == 0 && c->mean) {
        c->dec[p->rank][a] = ag_malloc(g->numel * sizeof(double) + 1);
        rc = ag_mpc_decode(p->m, g, c->dec[p->rank][a]);
    }
    ag_tensor_cleanup(&z);
    return rc;
}

static int reduce_fn(struct party *p)
{
    struct red_case *c = party_ctx(p);
    ag_mpc *m = p->m;
    ag_tensor px = {0}, sx = {0};
    int rc;
    if (c->mean) {
        rc = ag_mpc_encode(m, c->real, c->ndim, c->shape, &px);
    } else {
        rc = ag_tensor_init(&px, c->f, AG_VIS_PUBLIC, c->ndim, c->shape);
        if (rc == 0)
            memcpy(px.data, c->ring, c->numel * ag_field_bytes(c->f));
    }
    if (rc == 0 && c->shared)
        rc = ag_mpc_share(m, 0, p->rank == 0 ? &px : NULL, c->ndim, c->shape, &sx);
    for (int a = 0; rc == 0 && a < c->naxes; a++)
        rc = reduce_one(p, c, c->shared ? &sx : &px, a);
    ag_tensor_cleanup(&px);
    ag_tensor_cleanup(&sx);
    return rc;
}

/* The reduced shape of axis ax (-1: all) and the count each output sums. */
static int reduced_shape(const struct red_case *c, int ax, int64_t *shape, size_t *count)
{
    if (ax < 0) {
        *count = c->numel;
        return 0;
    }
    int nd = 0;
    for (int k = 0; k < c->ndim; k++)
        if (k != ax)
            shape[nd++] = c->shape[k];
    *count = (size_t)c->shape[ax];
    return nd;
}

/* Output element of input element i when reducing along ax (-1: all). */
static size_t reduced_index(const struct red_case *c, int ax, size_t i)
{
    if (ax < 0)
        return 0;
    int64_t idx[4], oshape[4];
    size_t count;
    unravel(i, c->ndim, c->shape, idx);
    int nd = reduced_shape(c, ax, oshape, &count);
    for (int k = ax; k < c->ndim - 1; k++)
        idx[k] = idx[k + 1];
    return ravel(idx, nd, oshape);
}

/* Checks party r's result for axis a against plaintext and the cost model;
 * returns the number of elements whose truncation wrapped (mean on shares
 * only), and adds to *expect the number the header's model expects: each
 * fails with probability about |x| / 2^(K-1), x the product truncated. */
static unsigned check_reduction(struct red_case *c, unsigned r, int a, double *expect)
{
    int ax = c->axes[a] == AG_AXIS_ALL ? -1
                                       : (c->axes[a] < 0 ? c->axes[a] + c->ndim : c->axes[a]);
    int64_t oshape[4];
    size_t count, eb = ag_field_bytes(c->f);
    int nd = reduced_shape(c, ax, oshape, &count);
    const ag_tensor *g = &c->got[r][a];
    check_meta(g, c->f, AG_VIS_PUBLIC, nd, oshape);
    size_t on = g->numel;
    /* plaintext reference: sums in the ring (u128, reduced below), or in
     * doubles */
    ag_u128 *rs = ag_calloc(on + 1, sizeof(*rs));
    double *ds = ag_calloc(on + 1, sizeof(*ds));
    for (size_t i = 0; i < c->numel; i++) {
        size_t o = reduced_index(c, ax, i);
        if (c->mean)
            ds[o] += c->real[i];
        else
            rs[o] += eb == 8 ? ((uint64_t *)c->ring)[i] : ((ag_u128 *)c->ring)[i];
    }
    unsigned wraps = 0;
    unsigned fb = c->f == AG_FM64 ? 18 : 26, kbits = (unsigned)eb * 8;
    double ulp = ldexp(1.0, -(int)fb);
    /* a failed truncation by t bits is off by 2^(K-t) ring units; mean
     * truncates by log2(count) bits when count is a power of two, else by
     * f + 9 */
    unsigned tbits = fb + 9;
    if (count > 0 && (count & (count - 1)) == 0)
        tbits = (unsigned)__builtin_ctzll(count);
    double wrap = ldexp(1.0, (int)(kbits - tbits - fb));
    for (size_t o = 0; o < on; o++) {
        if (!c->mean) {
            ag_u128 want = eb == 8 ? (uint64_t)rs[o] : rs[o];
            if (get(g, o) != want)
                FAIL("sum %s n=%u %s axis %d: element %zu wrong", ag_field_name(c->f), c->n,
                     c->shared ? "shared" : "public", c->axes[a], o);
            continue;
        }
        double want = ds[o] / (double)count, got = c->dec[r][a][o];
        *expect += fabs(want) * ldexp(1.0, (int)(fb + tbits + 1 - kbits));
        double err = fabs(got - want), bound = (double)(count + 2) * ulp;
        if (err > bound && c->shared && fabs(err - wrap) <= bound) {
            wraps++;
            continue;
        }
        if (err > bound)
            FAIL("mean %s n=%u %s axis %d count %zu: element %zu is %.10g, want %.10g "
                 "(error %g > %g)", ag_field_name(c->f), c->n, c->shared ? "shared" : "public",
                 c->axes[a], count, o, got, want, err, bound);
    }
    ag_free(rs);
    ag_free(ds);
    /* cost: the sum is local; the mean is one truncation */
    bool trunc_msg = c->mean && c->shared && c->n > 2;
    CHECK_U64_EQ(c->bytes[r][a], trunc_msg ? eb * (c->n - 1) * on : 0);
    CHECK_U64_EQ(c->rounds[r][a], trunc_msg ? 1 : 0);
    return wraps;
}

/* Runs sum or mean over every axis (negative ones too) and AG_AXIS_ALL of a
 * random input of the given shape, and checks every party's results. */
static void run_reduce(bool mean, bool shared, ag_field f, unsigned n, int ndim,
                       const int64_t *shape)
{
    struct red_case *c = ag_calloc(1, sizeof(*c));
    c->mean = mean;
    c->shared = shared;
    c->f = f;
    c->n = n;
    c->ndim = ndim;
    memcpy(c->shape, shape, (size_t)ndim * sizeof(*shape));
    c->numel = numel_of(ndim, shape);
    c->axes[c->naxes++] = AG_AXIS_ALL;
    for (int k = -ndim; k < ndim; k++)
        c->axes[c->naxes++] = k;
    if (mean) {
        /* magnitude <= 1000, with three decimals */
        c->real = ag_malloc(c->numel * sizeof(double) + 1);
        for (size_t i = 0; i < c->numel; i++)
            c->real[i] = ((double)ag_random_uniform(2000001) - 1000000) / 1000.0;
    } else {
        c->ring = ag_malloc(c->numel * ag_field_bytes(f) + 1);
        CHECK_OK(ag_random_bytes(c->ring, c->numel * ag_field_bytes(f)));
    }
    struct party ps[MAX_PARTIES];
    run_parties(n, f, reduce_fn, c, ps);
    unsigned wraps = 0;
    double expect = 0;
    for (unsigned r = 0; r < n; r++) {
        if (ps[r].rc < 0)
            FAIL("%s %s n=%u: party %u: %s", mean ? "mean" : "sum", ag_field_name(f), n, r,
                 ps[r].err);
        for (int a = 0; a < c->naxes; a++) {
            double e = 0;
            unsigned w = check_reduction(c, r, a, &e);
            if (r == 0) {
                wraps += w;
                expect += e;
            }
            /* every party opened the same value */
            CHECK_MEM_EQ(c->got[r][a].data, c->got[0][a].data,
                         c->got[0][a].numel * ag_field_bytes(f));
        }
    }
    /* a share's truncation fails now and then: |mean| * 2^-18 for FM64
     * (about 1e-3 at |mean| = 400); FM128 and public values never */
    if (wraps > 4 + 3 * expect)
        FAIL("%u truncations wrapped, %g expected", wraps, expect);
    CHECK(wraps == 0 || (f == AG_FM64 && shared));
    for (unsigned r = 0; r < n; r++)
        for (int a = 0; a < c->naxes; a++) {
            ag_tensor_cleanup(&c->got[r][a]);
            ag_free(c->dec[r][a]);
        }
    ag_free(c->ring);
    ag_free(c->real);
    ag_free(c);
}

static const int64_t red_shapes[][4] = {{0}, {5}, {3, 4}, {2, 3, 5}, {2, 1, 3, 2}, {2, 0, 3}};
static const int red_ndims[] = {0, 1, 2, 3, 4, 3};

TEST(mpc_shape_sum_every_axis_vs_plaintext_and_cost)
{
    for (unsigned n = 2; n <= 3; n++)
        for (int f = AG_FM64; f <= AG_FM128; f++)
            for (int shared = 0; shared <= 1; shared++)
                for (size_t s = 0; s < AG_ARRAY_LEN(red_shapes); s++)
                    run_reduce(false, shared, (ag_field)f, n, red_ndims[s], red_shapes[s]);
}

TEST(mpc_shape_mean_every_axis_within_bound_and_cost)
{
    for (unsigned n = 2; n <= 3; n++)
        for (int f = AG_FM64; f <= AG_FM128; f++)
            for (int shared = 0; shared <= 1; shared++)
                for (size_t s = 0; s + 1 < AG_ARRAY_LEN(red_shapes); s++) /* none empty */
                    run_reduce(true, shared, (ag_field)f, n, red_ndims[s], red_shapes[s]);
}

/* Many means of three: the non-power-of-two path, with means up to 1000. */
TEST(mpc_shape_mean_of_many_rows)
{
    static const int64_t rows[2] = {1000, 3};
    for (unsigned n = 2; n <= 3; n++)
        for (int f = AG_FM64; f <= AG_FM128; f++)
            run_reduce(true, true, (ag_field)f, n, 2, rows);
}

/* ---- reduction errors ------------------------------------------------------- */

/* Runs call and checks its code, its message and the empty output. */
#define RED_FAILS(call, z, code, msg)                                           \
    do {                                                                        \
        memset(&(z), 0xa5, sizeof(z));                                          \
        CHECK_EQ((call), (code));                                               \
        CHECK(is_empty(&(z)));                                                  \
        CHECK_STR_EQ(ag_mpc_errmsg(m), (msg));                                  \
    } while (0)

static int red_errors_fn(struct party *p)
{
    ag_mpc *m = p->m;
    ag_tensor x, s, b, w, e0, e1, z;
    rand_tensor(&x, AG_FM64, AG_VIS_ASHARE, 2, I64(2, 3));
    rand_tensor(&s, AG_FM64, AG_VIS_PUBLIC, 0, NULL);
    rand_tensor(&b, AG_FM64, AG_VIS_BSHARE, 2, I64(2, 3));
    rand_tensor(&w, AG_FM128, AG_VIS_ASHARE, 2, I64(2, 3));
    rand_tensor(&e0, AG_FM64, AG_VIS_ASHARE, 2, I64(2, 0));
    rand_tensor(&e1, AG_FM64, AG_VIS_ASHARE, 2, I64(0, 3));
    RED_FAILS(ag_mpc_sum(m, &x, 2, &z), z, AG_E_MPC_SHAPE,
              "sum: axis 2 out of range for shape (2,3)");
    RED_FAILS(ag_mpc_sum(m, &x, -3, &z), z, AG_E_MPC_SHAPE,
              "sum: axis -3 out of range for shape (2,3)");
    RED_FAILS(ag_mpc_sum(m, &s, 0, &z), z, AG_E_MPC_SHAPE,
              "sum: axis 0 out of range for shape ()");
    RED_FAILS(ag_mpc_mean(m, &x, INT32_MAX, &z), z, AG_E_MPC_SHAPE,
              "mean: axis 2147483647 out of range for shape (2,3)");
    RED_FAILS(ag_mpc_sum(m, &b, 0, &z), z, AG_E_MPC_VIS, "sum: not defined on boolean shares");
    RED_FAILS(ag_mpc_mean(m, &b, 0, &z), z, AG_E_MPC_VIS, "mean: not defined on boolean shares");
    RED_FAILS(ag_mpc_sum(m, &w, 0, &z), z, AG_E_MPC_FIELD,
              "sum: operand is FM128, the session is FM64");
    RED_FAILS(ag_mpc_mean(m, &e0, 1, &z), z, AG_E_MPC_SHAPE,
              "mean: empty axis: axis 1 of shape (2,0) has no element");
    RED_FAILS(ag_mpc_mean(m, &e0, -1, &z), z, AG_E_MPC_SHAPE,
              "mean: empty axis: axis -1 of shape (2,0) has no element");
    RED_FAILS(ag_mpc_mean(m, &e1, AG_AXIS_ALL, &z), z, AG_E_MPC_SHAPE,
              "mean: empty axis: shape (0,3) has no element");
    /* the output must not be the input: x is kept */
    void *data = x.data;
    CHECK_EQ(ag_mpc_sum(m, &x, 0, &x), AG_E_INVAL);
    CHECK_EQ(ag_mpc_mean(m, &x, 0, &x), AG_E_INVAL);
    CHECK(x.data == data);
    CHECK_STR_EQ(ag_mpc_errmsg(m), "mean: the output must not be an input");
    /* what is not an error: a mean over a non-empty axis of an empty
     * tensor, and sums over empty axes (zero) */
    CHECK_OK(ag_mpc_mean(m, &e0, 0, &z));
    check_meta(&z, AG_FM64, AG_VIS_ASHARE, 1, I64(0));
    ag_tensor_cleanup(&z);
    CHECK_OK(ag_mpc_sum(m, &e0, 1, &z));
    check_meta(&z, AG_FM64, AG_VIS_ASHARE, 1, I64(2));
    CHECK(get(&z, 0) == 0 && get(&z, 1) == 0);
    ag_tensor_cleanup(&z);
    CHECK_OK(ag_mpc_sum(m, &e1, AG_AXIS_ALL, &z));
    check_meta(&z, AG_FM64, AG_VIS_ASHARE, 0, NULL);
    CHECK(get(&z, 0) == 0);
    ag_tensor_cleanup(&z);
    /* the sum of a scalar is itself */
    CHECK_OK(ag_mpc_sum(m, &s, AG_AXIS_ALL, &z));
    CHECK(get(&z, 0) == get(&s, 0));
    ag_tensor_cleanup(&z);
    ag_tensor_cleanup(&x);
    ag_tensor_cleanup(&s);
    ag_tensor_cleanup(&b);
    ag_tensor_cleanup(&w);
    ag_tensor_cleanup(&e0);
    ag_tensor_cleanup(&e1);
    return 0;
}

TEST(mpc_shape_reduction_errors_are_named)
{
    struct party ps[MAX_PARTIES];
    run_parties(2, AG_FM64, red_errors_fn, NULL, ps);
    for (unsigned r = 0; r < 2; r++)
        CHECK_OK(ps[r].rc);
}

TEST(mpc_shape_reduction_needs_setup)
{
    ag_link *links[2];
    CHECK_OK(ag_link_mem_group(2, NULL, links));
    ag_mpc_config cfg = {.field = AG_FM64, .fxp_bits = 0};
    ag_mpc *m = ag_mpc_new(links[0], &cfg);
    CHECK(m != NULL);
    ag_tensor x, z;
    rand_tensor(&x, AG_FM64, AG_VIS_ASHARE, 1, I64(3));
    RED_FAILS(ag_mpc_sum(m, &x, 0, &z), z, AG_E_STATE,
              "sum: the session is not set up (call ag_mpc_setup first)");
    RED_FAILS(ag_mpc_mean(m, &x, 0, &z), z, AG_E_STATE,
              "mean: the session is not set up (call ag_mpc_setup first)");
    ag_tensor_cleanup(&x);
    ag_mpc_free(m);
    ag_link_free(links[0]);
    ag_link_free(links[1]);
}
