/*
 * Tests for src/mpc/semi2k.c, session.c and beaver.c: every kernel against
 * plaintext ring arithmetic on random inputs, for 2 and 3 parties and both
 * fields; each kernel's bytes and rounds against the cost model in
 * argot/mpc.h; fixed-point error bounds; the errors a party sees when
 * another misbehaves; and the distribution of a share.
 */
#include <math.h>

#include "parties.h"

enum op { OP_ADD, OP_SUB_PA, OP_NEG, OP_MUL, OP_MUL_AP, OP_SQUARE, OP_MATMUL, OP_MATMUL_PA,
          OP_REVEAL_TO };

struct ring_case {
    enum op op;
    ag_field f;
    unsigned n;
    int xdim, ydim;
    int64_t xshape[2], yshape[2];
    size_t xn, yn, zn;
    uint8_t *x, *y;                  /* plaintext inputs */
    uint8_t *got[MAX_PARTIES];       /* each party's revealed result */
    size_t zsize[MAX_PARTIES];
};

static int public_from(ag_mpc *m, const uint8_t *bytes, int ndim, const int64_t *shape,
                       ag_tensor *t)
{
    int rc = ag_tensor_init(t, ag_mpc_field(m), AG_VIS_PUBLIC, ndim, shape);
    if (rc == 0)
        memcpy(t->data, bytes, t->numel * ag_field_bytes(ag_mpc_field(m)));
    return rc;
}

static int ring_fn(struct party *p)
{
    struct ring_case *c = party_ctx(p);
    ag_mpc *m = p->m;
    unsigned last = c->n - 1;
    ag_tensor px = {0}, py = {0}, sx = {0}, sy = {0}, z = {0}, r = {0};
    int rc = public_from(m, c->x, c->xdim, c->xshape, &px);
    if (rc == 0)
        rc = public_from(m, c->y, c->ydim, c->yshape, &py);
    /* x from rank 0, y from the last party: each only passes its own */
    if (rc == 0)
        rc = ag_mpc_share(m, 0, p->rank == 0 ? &px : NULL, c->xdim, c->xshape, &sx);
    if (rc == 0)
        rc = ag_mpc_share(m, last, p->rank == last ? &py : NULL, c->ydim, c->yshape, &sy);
    if (rc < 0)
        goto out;
    cost_begin(p);
    switch (c->op) {
    case OP_ADD: rc = ag_mpc_add(m, &sx, &sy, &z); break;
    case OP_SUB_PA: rc = ag_mpc_sub(m, &px, &sy, &z); break;
    case OP_NEG: rc = ag_mpc_neg(m, &sx, &z); break;
    case OP_MUL: rc = ag_mpc_mul(m, &sx, &sy, &z); break;
    case OP_MUL_AP: rc = ag_mpc_mul(m, &sx, &py, &z); break;
    case OP_SQUARE: rc = ag_mpc_square(m, &sx, &z); break;
    case OP_MATMUL: rc = ag_mpc_matmul(m, &sx, &sy, &z); break;
    case OP_MATMUL_PA: rc = ag_mpc_matmul(m, &px, &sy, &z); break;
    case OP_REVEAL_TO: rc = ag_mpc_reveal_to(m, &sx, 1, &z); break;
    }
    cost_end(p);
    if (rc < 0)
        goto out;
    if (c->op == OP_REVEAL_TO) {
        r = z;
        memset(&z, 0, sizeof(z));
    } else if ((rc = ag_mpc_reveal(m, &z, &r)) < 0) {
        goto out;
    }
    if (r.data) {
        c->zsize[p->rank] = r.numel * ag_field_bytes(r.field);
        c->got[p->rank] = ag_malloc(c->zsize[p->rank]);
        memcpy(c->got[p->rank], r.data, c->zsize[p->rank]);
    }
out:
    ag_tensor_cleanup(&px);
    ag_tensor_cleanup(&py);
    ag_tensor_cleanup(&sx);
    ag_tensor_cleanup(&sy);
    ag_tensor_cleanup(&z);
    ag_tensor_cleanup(&r);
    return rc;
}

/* Plaintext reference in the ring, for element i of the result. */
static ag_u128 elem(const struct ring_case *c, const uint8_t *v, size_t i)
{
    if (c->f == AG_FM64)
        return ((const uint64_t *)v)[i];
    return ((const ag_u128 *)v)[i];
}

static ag_u128 expected_wide(const struct ring_case *c, size_t i);

/* The reference, reduced to the case's ring. */
static ag_u128 expected(const struct ring_case *c, size_t i)
{
    ag_u128 v = expected_wide(c, i);
    return c->f == AG_FM64 ? (uint64_t)v : v;
}

static ag_u128 expected_wide(const struct ring_case *c, size_t i)
{
    ag_u128 x = c->xn ? elem(c, c->x, i % c->xn) : 0, y = c->yn ? elem(c, c->y, i % c->yn) : 0;
    switch (c->op) {
    case OP_ADD: return x + y;
    case OP_SUB_PA: return x - y;
    case OP_NEG: return 0 - x;
    case OP_MUL:
    case OP_MUL_AP: return x * y;
    case OP_SQUARE: return x * x;
    case OP_REVEAL_TO: return x;
    case OP_MATMUL:
    case OP_MATMUL_PA: {
        size_t k = (size_t)c->xshape[1], nn = (size_t)c->yshape[1];
        size_t row = i / nn, col = i % nn;
        ag_u128 s = 0;
        for (size_t t = 0; t < k; t++)
            s += elem(c, c->x, row * k + t) * elem(c, c->y, t * nn + col);
        return s;
    }
    }
    return 0;
}

/* The model's bytes sent by party `rank` for the case (argot/mpc.h). */
static uint64_t model_bytes(const struct ring_case *c, unsigned rank)
{
    uint64_t eb = ag_field_bytes(c->f), peers = c->n - 1;
    switch (c->op) {
    case OP_MUL: return eb * 2 * peers * c->xn;
    case OP_SQUARE: return eb * peers * c->xn;
    case OP_MATMUL: return eb * peers * (c->xn + c->yn);
    case OP_REVEAL_TO: return rank == 1 ? 0 : eb * c->xn;
    default: return 0;
    }
}

static uint64_t model_rounds(const struct ring_case *c, unsigned rank)
{
    switch (c->op) {
    case OP_MUL:
    case OP_SQUARE:
    case OP_MATMUL: return 1;
    case OP_REVEAL_TO: return rank == 1 ? 0 : 1;
    default: return 0;
    }
}

static void run_case(enum op op, ag_field f, unsigned n, int xdim, const int64_t *xs, int ydim,
                     const int64_t *ys)
{
    struct ring_case c = {.op = op, .f = f, .n = n, .xdim = xdim, .ydim = ydim};
    size_t eb = ag_field_bytes(f);
    c.xn = c.yn = 1;
    for (int i = 0; i < xdim; i++)
        c.xn *= (size_t)(c.xshape[i] = xs[i]);
    for (int i = 0; i < ydim; i++)
        c.yn *= (size_t)(c.yshape[i] = ys[i]);
    c.zn = (op == OP_MATMUL || op == OP_MATMUL_PA) ? (size_t)(xs[0] * ys[1]) : c.xn;
    c.x = ag_malloc(c.xn * eb + 1);
    c.y = ag_malloc(c.yn * eb + 1);
    CHECK_OK(ag_random_bytes(c.x, c.xn * eb));
    CHECK_OK(ag_random_bytes(c.y, c.yn * eb));
    struct party ps[MAX_PARTIES];
    run_parties(n, f, ring_fn, &c, ps);
    for (unsigned r = 0; r < n; r++) {
        if (ps[r].rc < 0)
            FAIL("op %d %s n=%u: party %u: %s", op, ag_field_name(f), n, r, ps[r].err);
        bool receives = op != OP_REVEAL_TO || r == 1;
        CHECK_EQ(c.got[r] != NULL, receives);
        for (size_t i = 0; receives && i < c.zn; i++)
            if (elem(&c, c.got[r], i) != expected(&c, i))
                FAIL("op %d %s n=%u: party %u: element %zu wrong", op, ag_field_name(f), n, r, i);
        CHECK_U64_EQ(cost_bytes(&ps[r]), model_bytes(&c, r));
        CHECK_U64_EQ(cost_rounds(&ps[r]), model_rounds(&c, r));
        ag_free(c.got[r]);
    }
    ag_free(c.x);
    ag_free(c.y);
}

static const int64_t v1[1] = {1}, v37[1] = {37}, m23[2] = {2, 3}, m34[2] = {3, 4},
                     m11[2] = {1, 1}, m17[2] = {1, 7}, m16x9[2] = {16, 9}, m9x5[2] = {9, 5};

TEST(semi2k_elementwise_vs_plaintext_and_cost)
{
    static const enum op ops[] = {OP_ADD, OP_SUB_PA, OP_NEG, OP_MUL, OP_MUL_AP, OP_SQUARE,
                                  OP_REVEAL_TO};
    for (unsigned n = 2; n <= 3; n++)
        for (int f = AG_FM64; f <= AG_FM128; f++)
            for (size_t o = 0; o < AG_ARRAY_LEN(ops); o++) {
                run_case(ops[o], (ag_field)f, n, 1, v37, 1, v37);
                run_case(ops[o], (ag_field)f, n, 2, m23, 2, m23);
                run_case(ops[o], (ag_field)f, n, 0, v1, 0, v1); /* scalars */
            }
}

TEST(semi2k_matmul_vs_plaintext_and_cost)
{
    for (unsigned n = 2; n <= 3; n++)
        for (int f = AG_FM64; f <= AG_FM128; f++) {
            run_case(OP_MATMUL, (ag_field)f, n, 2, m23, 2, m34);
            run_case(OP_MATMUL, (ag_field)f, n, 2, m11, 2, m17);
            run_case(OP_MATMUL, (ag_field)f, n, 2, m16x9, 2, m9x5);
            run_case(OP_MATMUL_PA, (ag_field)f, n, 2, m23, 2, m34);
        }
}

/* ---- fixed point ---------------------------------------------------------- */

struct fxp_case {
    size_t n;
    double *x, *y;
    double *z[MAX_PARTIES];   /* revealed fmul */
    double *t[MAX_PARTIES];   /* revealed trunc of a share of x * 2^f (exact: x) */
    ag_link_stats trunc_cost[MAX_PARTIES];
};

static int fxp_fn(struct party *p)
{
    struct fxp_case *c = party_ctx(p);
    ag_mpc *m = p->m;
    int64_t shape[1] = {(int64_t)c->n};
    ag_tensor px = {0}, py = {0}, sx = {0}, sy = {0}, z = {0}, r = {0}, big = {0}, tr = {0};
    int rc = ag_mpc_encode(m, c->x, 1, shape, &px);
    if (rc == 0)
        rc = ag_mpc_encode(m, c->y, 1, shape, &py);
    if (rc == 0)
        rc = ag_mpc_share(m, 0, p->rank == 0 ? &px : NULL, 1, shape, &sx);
    if (rc == 0)
        rc = ag_mpc_share(m, 1, p->rank == 1 ? &py : NULL, 1, shape, &sy);
    if (rc == 0)
        rc = ag_mpc_fmul(m, &sx, &sy, &z);
    if (rc == 0)
        rc = ag_mpc_reveal(m, &z, &r);
    if (rc == 0) {
        c->z[p->rank] = ag_malloc(c->n * sizeof(double));
        rc = ag_mpc_decode(m, &r, c->z[p->rank]);
    }
    ag_tensor_cleanup(&r);
    /* trunc alone: shift x's encoding up by f bits (a ring product with the
     * public integer 2^f, exact), then truncate it back */
    if (rc == 0) {
        ag_tensor sv = {0};
        rc = ag_tensor_init(&sv, ag_mpc_field(m), AG_VIS_PUBLIC, 1, shape);
        for (size_t i = 0; rc == 0 && i < c->n; i++) {
            if (ag_mpc_field(m) == AG_FM64)
                ag_tensor_u64(&sv)[i] = (uint64_t)1 << ag_mpc_fxp_bits(m);
            else
                ag_tensor_u128(&sv)[i] = (ag_u128)1 << ag_mpc_fxp_bits(m);
        }
        if (rc == 0)
            rc = ag_mpc_mul(m, &sx, &sv, &big);
        ag_tensor_cleanup(&sv);
    }
    if (rc == 0) {
        cost_begin(p);
        rc = ag_mpc_trunc(m, &big, ag_mpc_fxp_bits(m), &tr);
        cost_end(p);
    }
    if (rc == 0)
        rc = ag_mpc_reveal(m, &tr, &r);
    if (rc == 0) {
        c->t[p->rank] = ag_malloc(c->n * sizeof(double));
        rc = ag_mpc_decode(m, &r, c->t[p->rank]);
    }
    ag_tensor_cleanup(&px);
    ag_tensor_cleanup(&py);
    ag_tensor_cleanup(&sx);
    ag_tensor_cleanup(&sy);
    ag_tensor_cleanup(&z);
    ag_tensor_cleanup(&r);
    ag_tensor_cleanup(&big);
    ag_tensor_cleanup(&tr);
    return rc;
}

/* fmul's documented bound: |err| <= (|x| + |y| + 2) * 2^-f, from the two
 * encodings' rounding and one truncation; except that probabilistic
 * truncation fails with probability about |x*y| * 2^(2f+1-K), and then the
 * result is off by exactly 2^(K-2f) (one wrap of the shares). Inputs up to
 * 30 in magnitude make that about 2^-16 per element for FM64: a run may
 * see one, never many. */
TEST(semi2k_fixed_point_mul_and_trunc_error_bounds)
{
    for (unsigned n = 2; n <= 3; n++)
        for (int f = AG_FM64; f <= AG_FM128; f++) {
            struct fxp_case c = {.n = 1000};
            c.x = ag_malloc(c.n * sizeof(double));
            c.y = ag_malloc(c.n * sizeof(double));
            for (size_t i = 0; i < c.n; i++) {
                c.x[i] = ((double)ag_random_uniform(2000001) - 1000000) / 33331.0;
                c.y[i] = ((double)ag_random_uniform(2000001) - 1000000) / 33343.0;
            }
            struct party ps[MAX_PARTIES];
            run_parties(n, (ag_field)f, fxp_fn, &c, ps);
            unsigned fb = f == AG_FM64 ? 18 : 26;
            double ulp = ldexp(1.0, -(int)fb);
            double wrap = ldexp(1.0, (int)(ag_field_bytes((ag_field)f) * 8 - 2 * fb));
            unsigned wraps = 0;
            for (unsigned r = 0; r < n; r++) {
                if (ps[r].rc < 0)
                    FAIL("n=%u %s party %u: %s", n, ag_field_name((ag_field)f), r, ps[r].err);
                for (size_t i = 0; i < c.n; i++) {
                    double want = c.x[i] * c.y[i];
                    double bound = (fabs(c.x[i]) + fabs(c.y[i]) + 2) * ulp;
                    double err = fabs(c.z[r][i] - want);
                    if (err > bound && fabs(err - wrap) <= bound * wrap / 1e6 + bound) {
                        wraps++;
                        continue;
                    }
                    if (err > bound)
                        FAIL("fmul %g * %g = %g, error %g > %g", c.x[i], c.y[i], c.z[r][i],
                             err, bound);
                    /* trunc: within one unit of the exact value (plus x's encoding) */
                    if (fabs(c.t[r][i] - c.x[i]) > 2 * ulp)
                        FAIL("trunc of %g gave %g", c.x[i], c.t[r][i]);
                }
                /* cost: local for 2 parties, one opening for more */
                CHECK_U64_EQ(cost_bytes(&ps[r]), n == 2 ? 0 : ag_field_bytes(f) * (n - 1) * c.n);
                CHECK_U64_EQ(cost_rounds(&ps[r]), n == 2 ? 0 : 1);
                ag_free(c.z[r]);
                ag_free(c.t[r]);
            }
            CHECK(wraps <= 2 * n); /* every party sees the same wrapped elements */
            ag_free(c.x);
            ag_free(c.y);
        }
}

/* ---- errors ---------------------------------------------------------------- */

static int shape_mismatch_fn(struct party *p)
{
    ag_tensor a = {0}, b = {0}, z = {0};
    int64_t s1[1] = {3}, s2[2] = {3, 1};
    int rc = ag_tensor_init(&a, AG_FM64, AG_VIS_ASHARE, 1, s1);
    if (rc == 0)
        rc = ag_tensor_init(&b, AG_FM64, AG_VIS_ASHARE, 2, s2);
    if (rc == 0)
        rc = ag_mpc_mul(p->m, &a, &b, &z);
    ag_tensor_cleanup(&a);
    ag_tensor_cleanup(&b);
    ag_tensor_cleanup(&z);
    return rc;
}

TEST(semi2k_shape_mismatch_is_named)
{
    struct party ps[MAX_PARTIES];
    run_parties(2, AG_FM64, shape_mismatch_fn, NULL, ps);
    for (unsigned r = 0; r < 2; r++) {
        CHECK_EQ(ps[r].rc, AG_E_MPC_SHAPE);
        CHECK_STR_EQ(ps[r].err, "mul: shapes (3) and (3,1) differ");
    }
}

TEST(semi2k_config_mismatch_names_the_party)
{
    ag_mpc_config cfg[2] = {{.field = AG_FM64}, {.field = AG_FM128}};
    struct party ps[MAX_PARTIES];
    run_parties_cfg(2, cfg, true, shape_mismatch_fn, NULL, ps, 0);
    CHECK_EQ(ps[0].rc, AG_E_MPC_CONFIG);
    CHECK_CONTAINS(ps[0].err, "setup: party bob uses FM128 with 26 fraction bits in a job of 2 "
                              "parties; party alice uses FM64 with 18 in a job of 2");
    CHECK(ps[1].rc < 0); /* either its own check, or alice's abort */
}

/* bob never takes part in the reveal: alice must fail within the timeout,
 * naming bob */
static int silent_peer_fn(struct party *p)
{
    ag_tensor a = {0}, z = {0};
    int64_t s1[1] = {4};
    int rc = ag_tensor_init(&a, AG_FM64, AG_VIS_ASHARE, 1, s1);
    if (rc == 0 && p->rank == 0)
        rc = ag_mpc_reveal(p->m, &a, &z);
    ag_tensor_cleanup(&a);
    ag_tensor_cleanup(&z);
    return rc;
}

TEST(semi2k_silent_peer_times_out_naming_it)
{
    ag_mpc_config cfg = {.field = AG_FM64, .fxp_bits = 0};
    struct party ps[MAX_PARTIES];
    uint64_t t0 = ag_now_ms();
    run_parties_cfg(2, &cfg, false, silent_peer_fn, NULL, ps, 200);
    CHECK(ag_now_ms() - t0 < 5000);
    CHECK_EQ(ps[0].rc, AG_E_LINK_TIMEOUT);
    CHECK_STR_EQ(ps[0].err, "reveal: party alice: no message from party bob within 200 ms "
                            "(tag 0x100)");
    CHECK_EQ(ps[1].rc, 0);
}

/* alice fails a local check inside share; bob, waiting in the next reveal,
 * hears of it at once rather than after a timeout */
static int failing_owner_fn(struct party *p)
{
    ag_tensor in = {0}, s = {0}, z = {0};
    int64_t good[1] = {4}, bad[1] = {5};
    int rc = 0;
    if (p->rank == 0)
        rc = ag_tensor_init(&in, AG_FM64, AG_VIS_PUBLIC, 1, bad);
    if (rc == 0)
        rc = ag_mpc_share(p->m, 0, p->rank == 0 ? &in : NULL, 1, good, &s);
    if (rc == 0)
        rc = ag_mpc_reveal(p->m, &s, &z);
    ag_tensor_cleanup(&in);
    ag_tensor_cleanup(&s);
    ag_tensor_cleanup(&z);
    return rc;
}

TEST(semi2k_failure_at_one_party_reaches_the_others)
{
    ag_mpc_config cfg = {.field = AG_FM64, .fxp_bits = 0};
    struct party ps[MAX_PARTIES];
    uint64_t t0 = ag_now_ms();
    run_parties_cfg(2, &cfg, false, failing_owner_fn, NULL, ps, 30000);
    CHECK(ag_now_ms() - t0 < 5000); /* not the 30 s timeout */
    CHECK_EQ(ps[0].rc, AG_E_MPC_SHAPE);
    CHECK_STR_EQ(ps[0].err, "share: the owner's input ((5) FM64) is not a FM64 public tensor "
                            "of shape (4)");
    CHECK_EQ(ps[1].rc, AG_E_LINK_ABORTED);
    CHECK_STR_EQ(ps[1].err, "reveal: party alice failed: share: the owner's input ((5) FM64) is "
                            "not a FM64 public tensor of shape (4)");
}

/* ---- what a share reveals -------------------------------------------------- */

struct view_case {
    size_t n;
    uint64_t *view[MAX_PARTIES]; /* each party's share of the constant */
};

static int view_fn(struct party *p)
{
    struct view_case *c = party_ctx(p);
    int64_t shape[1] = {(int64_t)c->n};
    ag_tensor in = {0}, s = {0};
    int rc = ag_tensor_init(&in, AG_FM64, AG_VIS_PUBLIC, 1, shape);
    for (size_t i = 0; rc == 0 && i < c->n; i++)
        ag_tensor_u64(&in)[i] = 42; /* the same secret everywhere */
    if (rc == 0)
        rc = ag_mpc_share(p->m, 0, p->rank == 0 ? &in : NULL, 1, shape, &s);
    if (rc == 0) {
        c->view[p->rank] = ag_malloc(c->n * sizeof(uint64_t));
        memcpy(c->view[p->rank], s.data, c->n * sizeof(uint64_t));
    }
    ag_tensor_cleanup(&in);
    ag_tensor_cleanup(&s);
    return rc;
}

/* Each party's share of a constant must look uniform: every bit is set in
 * about half the elements (within 5 sigma), and no two shares of the
 * constant repeat. */
TEST(semi2k_shares_of_a_constant_look_uniform)
{
    for (unsigned np = 2; np <= 3; np++) {
        struct view_case c = {.n = 1u << 14};
        struct party ps[MAX_PARTIES];
        run_parties(np, AG_FM64, view_fn, &c, ps);
        double mean = c.n / 2.0, sigma = sqrt(c.n / 4.0);
        for (unsigned r = 0; r < np; r++) {
            CHECK_OK(ps[r].rc);
            for (int bit = 0; bit < 64; bit++) {
                size_t ones = 0;
                for (size_t i = 0; i < c.n; i++)
                    ones += (c.view[r][i] >> bit) & 1;
                if (fabs((double)ones - mean) > 5 * sigma)
                    FAIL("party %u: bit %d set in %zu of %zu shares", r, bit, ones, c.n);
            }
            CHECK(c.view[r][0] != c.view[r][1]);
        }
        /* and they still add up to the constant */
        for (size_t i = 0; i < c.n; i++) {
            uint64_t s = 0;
            for (unsigned r = 0; r < np; r++)
                s += c.view[r][i];
            CHECK_U64_EQ(s, 42);
        }
        for (unsigned r = 0; r < np; r++)
            ag_free(c.view[r]);
    }
}

/* ---- encoding ---------------------------------------------------------------- */

static int encode_fn(struct party *p)
{
    double ok[3] = {-1.5, 0.0, 12345.678}, back[3];
    int64_t shape[1] = {3};
    ag_tensor t = {0};
    int rc = ag_mpc_encode(p->m, ok, 1, shape, &t);
    if (rc == 0)
        rc = ag_mpc_decode(p->m, &t, back);
    ag_tensor_cleanup(&t);
    for (int i = 0; rc == 0 && i < 3; i++)
        if (fabs(back[i] - ok[i]) > ldexp(1.0, -19))
            return AG_E_RANGE;
    if (rc < 0)
        return rc;
    double bad[2] = {1.0, 1e20};
    rc = ag_mpc_encode(p->m, bad, 1, (int64_t[]){2}, &t);
    CHECK(t.data == NULL);
    return rc;
}

TEST(semi2k_fixed_point_range_is_checked)
{
    struct party ps[MAX_PARTIES];
    run_parties(2, AG_FM64, encode_fn, NULL, ps);
    CHECK_EQ(ps[0].rc, AG_E_MPC_RANGE);
    CHECK_STR_EQ(ps[0].err, "encode: value 1e+20 at index 1 is outside the FM64 fixed-point "
                            "range (|v| < 1.75922e+13 with 18 fraction bits)");
}

/* An output that is also an input is refused, and the input survives. */
static int alias_fn(struct party *p)
{
    int64_t shape[1] = {4};
    ag_tensor a = {0}, b = {0};
    int rc = ag_tensor_init(&a, AG_FM64, AG_VIS_ASHARE, 1, shape);
    if (rc == 0)
        rc = ag_tensor_init(&b, AG_FM64, AG_VIS_ASHARE, 1, shape);
    int r1 = ag_mpc_add(p->m, &a, &b, &a);
    int r2 = a.data != NULL && a.numel == 4 ? 0 : AG_E_STATE;
    ag_tensor empty = {0}, z = {0};
    int r3 = ag_mpc_neg(p->m, &empty, &z);
    ag_tensor_cleanup(&a);
    ag_tensor_cleanup(&b);
    if (rc < 0 || r2 < 0)
        return AG_E_STATE;
    return r1 == AG_E_INVAL && r3 == AG_E_INVAL ? 0 : AG_E_STATE;
}

TEST(semi2k_output_aliasing_an_input_is_refused)
{
    struct party ps[MAX_PARTIES];
    run_parties(2, AG_FM64, alias_fn, NULL, ps);
    for (unsigned r = 0; r < 2; r++)
        CHECK_EQ(ps[r].rc, 0);
}
