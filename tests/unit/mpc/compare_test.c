/*
 * Tests for src/mpc/compare.c: less, greater, equal, select, relu, abs, min
 * and max against plaintext, for 2 and 3 parties and both fields, on every
 * mix of public and shared operands, with values near 0, equal pairs and
 * values near +-2^(K-2); every kernel's bytes and rounds per party against
 * the cost model in argot/mpc.h; the documented wrap-around limit of less;
 * fixed-point use end to end; and errors naming the operation.
 */
#include <math.h>

#include "cases.h"

#define A AG_VIS_ASHARE
#define P AG_VIS_PUBLIC

static int k_less(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_less(m, &in[0], &in[1], out);
}

static int k_greater(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_greater(m, &in[0], &in[1], out);
}

static int k_equal(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_equal(m, &in[0], &in[1], out);
}

static int k_min(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_min(m, &in[0], &in[1], out);
}

static int k_max(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_max(m, &in[0], &in[1], out);
}

static int k_relu(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_relu(m, &in[0], out);
}

static int k_abs(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_abs(m, &in[0], out);
}

static int k_select(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_select(m, &in[0], &in[1], &in[2], out);
}

static const size_t sizes[] = {1, 37, 256};

enum kind { K_LESS, K_GREATER, K_EQUAL, K_MIN, K_MAX, K_RELU, K_ABS };

static const struct {
    case_kernel k;
    int nin;
    const char *name;
} kinds[] = {
    [K_LESS] = {k_less, 2, "less"},     [K_GREATER] = {k_greater, 2, "greater"},
    [K_EQUAL] = {k_equal, 2, "equal"},  [K_MIN] = {k_min, 2, "min"},
    [K_MAX] = {k_max, 2, "max"},        [K_RELU] = {k_relu, 1, "relu"},
    [K_ABS] = {k_abs, 1, "abs"},
};

/* The plaintext answer for element j. */
static ag_u128 expected(enum kind kd, ag_field f, ag_u128 x, ag_u128 y)
{
    case_i128 sx = case_signed(f, x), sy = case_signed(f, y);
    switch (kd) {
    case K_LESS: return sx < sy;
    case K_GREATER: return sx > sy;
    case K_EQUAL: return x == y;
    case K_MIN: return sx < sy ? x : y;
    case K_MAX: return sx < sy ? y : x;
    case K_RELU: return sx > 0 ? x : 0;
    case K_ABS: return case_from_signed(f, sx < 0 ? -sx : sx);
    }
    return 0;
}

/* The model's cost of a kernel, given whether any operand is shared. */
static struct cost model(enum kind kd, ag_field f, unsigned np, size_t n, bool shared)
{
    if (!shared)
        return (struct cost){0, 0};
    switch (kd) {
    case K_LESS:
    case K_GREATER: return cost_msb_a(f, np, n);
    case K_EQUAL: return cost_equal(f, np, n);
    default: return cost_add(cost_msb_a(f, np, n), cost_mul(f, np, n));
    }
}

/* Runs kernel kd on x (and y) of the given visibilities and checks the
 * result, its visibility and the cost. */
static void run_kind(enum kind kd, ag_field f, unsigned np, size_t n, const ag_vis *vis,
                     const ag_u128 *x, const ag_u128 *y)
{
    struct kcase c;
    memset(&c, 0, sizeof(c));
    c.f = f;
    c.np = np;
    c.n = n;
    c.nin = kinds[kd].nin;
    c.kernel = kinds[kd].k;
    const ag_u128 *src[2] = {x, y};
    bool shared = false;
    for (int i = 0; i < c.nin; i++) {
        c.vis[i] = vis[i];
        c.plain[i] = case_array(n);
        memcpy(c.plain[i], src[i], n * sizeof(ag_u128));
        shared = shared || vis[i] == A;
    }
    case_run(&c);
    CHECK_EQ(c.vis_out, shared ? A : P);
    for (size_t j = 0; j < n; j++) {
        ag_u128 want = expected(kd, f, x[j], y[j]);
        if (c.result[j] != want)
            FAIL("%s %s N=%u vis %d,%d: element %zu: x %lld y %lld: got %lld, want %lld",
                 kinds[kd].name, ag_field_name(f), np, vis[0], vis[1], j,
                 (long long)case_signed(f, x[j]), (long long)case_signed(f, y[j]),
                 (long long)case_signed(f, c.result[j]), (long long)case_signed(f, want));
    }
    case_check_cost(&c, model(kd, f, np, n, shared), kinds[kd].name);
    case_free(&c);
}

/* Comparison operands: |x|, |y| < 2^(K-2), y often x or next to it. */
static void cmp_values(ag_field f, size_t n, ag_u128 *x, ag_u128 *y)
{
    for (size_t j = 0; j < n; j++) {
        x[j] = case_rand_cmp(f);
        y[j] = case_rand_partner(f, x[j]);
    }
}

static void run_kinds(const enum kind *kds, size_t n_kds)
{
    static const ag_vis mixes[][2] = {{A, A}, {A, P}, {P, A}, {P, P}};
    for (unsigned np = 2; np <= 3; np++)
        for (int f = AG_FM64; f <= AG_FM128; f++)
            for (size_t s = 0; s < AG_ARRAY_LEN(sizes); s++) {
                size_t n = sizes[s];
                ag_u128 *x = case_array(n), *y = case_array(n);
                cmp_values((ag_field)f, n, x, y);
                for (size_t k = 0; k < n_kds; k++)
                    for (size_t v = 0; v < AG_ARRAY_LEN(mixes); v++) {
                        if (kinds[kds[k]].nin == 1 && v % 2)
                            continue; /* unary: A and P once each */
                        run_kind(kds[k], (ag_field)f, np, n, mixes[v], x, y);
                    }
                ag_free(x);
                ag_free(y);
            }
}

TEST(mpc_cmp_less_greater_equal_vs_plaintext_and_cost)
{
    static const enum kind kds[] = {K_LESS, K_GREATER, K_EQUAL};
    run_kinds(kds, AG_ARRAY_LEN(kds));
}

TEST(mpc_cmp_min_max_relu_abs_vs_plaintext_and_cost)
{
    static const enum kind kds[] = {K_MIN, K_MAX, K_RELU, K_ABS};
    run_kinds(kds, AG_ARRAY_LEN(kds));
}

/* equal is exact over the whole ring, not only within 2^(K-2). */
TEST(mpc_cmp_equal_on_any_ring_values)
{
    static const ag_vis aa[2] = {A, A};
    for (unsigned np = 2; np <= 3; np++)
        for (int f = AG_FM64; f <= AG_FM128; f++) {
            ag_field fld = (ag_field)f;
            size_t n = 300;
            ag_u128 *x = case_array(n), *y = case_array(n);
            for (size_t j = 0; j < n; j++) {
                x[j] = case_rand(fld);
                switch (j % 4) {
                case 0: y[j] = x[j]; break;
                case 1: y[j] = x[j] ^ ((ag_u128)1 << ag_random_uniform(case_bits(fld))); break;
                case 2: y[j] = (x[j] + ((ag_u128)1 << (case_bits(fld) - 1))) & case_mask(fld);
                        break;
                default: y[j] = case_rand(fld); break;
                }
            }
            run_kind(K_EQUAL, fld, np, n, aa, x, y);
            ag_free(x);
            ag_free(y);
        }
}

/* less(x, y) is the sign of x - y: right while |x - y| < 2^(K-1), flipped
 * beyond (documented in compare.c). */
TEST(mpc_cmp_less_wraps_beyond_half_the_ring)
{
    static const ag_vis aa[2] = {A, A};
    for (int f = AG_FM64; f <= AG_FM128; f++) {
        ag_field fld = (ag_field)f;
        unsigned k = case_bits(fld);
        case_i128 half = (case_i128)1 << (k - 2);
        /* x - y = 2^(K-1) - 1: still right; x - y = 2^(K-1): wraps */
        ag_u128 x[2] = {case_from_signed(fld, half), case_from_signed(fld, half - 1 + half)};
        ag_u128 y[2] = {case_from_signed(fld, -half + 1), case_from_signed(fld, -1)};
        struct kcase c;
        memset(&c, 0, sizeof(c));
        c.f = fld;
        c.np = 2;
        c.n = 2;
        c.nin = 2;
        c.kernel = k_less;
        c.vis[0] = c.vis[1] = aa[0];
        c.plain[0] = case_array(2);
        c.plain[1] = case_array(2);
        memcpy(c.plain[0], x, sizeof(x));
        memcpy(c.plain[1], y, sizeof(y));
        case_run(&c);
        CHECK(c.result[0] == 0); /* x > y, and less says so */
        CHECK(c.result[1] == 1); /* x > y, but the difference wrapped */
        case_free(&c);
    }
}

/* select on every mix of shared and public cond, a and b; a and b anywhere
 * in the ring (the product needs no truncation). */
TEST(mpc_cmp_select_vs_plaintext_and_cost)
{
    for (unsigned np = 2; np <= 3; np++)
        for (int f = AG_FM64; f <= AG_FM128; f++)
            for (size_t s = 0; s < AG_ARRAY_LEN(sizes); s++)
                for (unsigned mix = 0; mix < 8; mix++) {
                    ag_field fld = (ag_field)f;
                    size_t n = sizes[s];
                    struct kcase c;
                    memset(&c, 0, sizeof(c));
                    c.f = fld;
                    c.np = np;
                    c.n = n;
                    c.nin = 3;
                    c.kernel = k_select;
                    bool shared = false;
                    for (int i = 0; i < 3; i++) {
                        c.vis[i] = mix >> i & 1 ? A : P;
                        shared = shared || c.vis[i] == A;
                        c.plain[i] = case_array(n);
                        for (size_t j = 0; j < n; j++)
                            c.plain[i][j] = i == 0 ? ag_random_uniform(2) : case_rand(fld);
                    }
                    case_run(&c);
                    CHECK_EQ(c.vis_out, shared ? A : P);
                    for (size_t j = 0; j < n; j++)
                        if (c.result[j] != (c.plain[0][j] ? c.plain[1][j] : c.plain[2][j]))
                            FAIL("select %s N=%u mix %u: element %zu wrong", ag_field_name(fld),
                                 np, mix, j);
                    /* a Beaver product only when cond and a - b are both shared */
                    bool beaver = c.vis[0] == A && (c.vis[1] == A || c.vis[2] == A);
                    struct cost none = {0, 0};
                    case_check_cost(&c, beaver ? cost_mul(fld, np, n) : none, "select");
                    case_free(&c);
                }
}

/* ---- fixed point, as a user writes it ---------------------------------------- */

struct fxp_case {
    size_t n;
    const double *x, *y;
    double got_max[MAX_PARTIES][8], got_relu[MAX_PARTIES][8], got_sel[MAX_PARTIES][8];
    uint64_t got_less[MAX_PARTIES][8];
};

/* alice's x and bob's y: max(x, y), relu(x), and select(x < y, x * 2, y)
 * with 2 a public ring integer: the product is exact and local, so the
 * check of select does not inherit fmul's probabilistic truncation (which
 * fails about |x * 2| * 2^-27 of the time in FM64: 1.5% for x = -1e6). */
static int fxp_party(struct party *p)
{
    struct fxp_case *c = party_ctx(p);
    ag_mpc *m = p->m;
    int64_t shape[1] = {(int64_t)c->n};
    ag_tensor px = {0}, py = {0}, two = {0}, x = {0}, y = {0}, lt = {0}, x2 = {0}, t = {0},
              r = {0};
    int rc = ag_mpc_encode(m, c->x, 1, shape, &px);
    if (rc == 0)
        rc = ag_mpc_encode(m, c->y, 1, shape, &py);
    if (rc == 0)
        rc = ag_tensor_init(&two, ag_mpc_field(m), AG_VIS_PUBLIC, 1, shape);
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        if (two.field == AG_FM64)
            ag_tensor_u64(&two)[i] = 2;
        else
            ag_tensor_u128(&two)[i] = 2;
    }
    if (rc == 0)
        rc = ag_mpc_share(m, 0, p->rank == 0 ? &px : NULL, 1, shape, &x);
    if (rc == 0)
        rc = ag_mpc_share(m, 1, p->rank == 1 ? &py : NULL, 1, shape, &y);
    if (rc == 0)
        rc = ag_mpc_max(m, &x, &y, &t);
    if (rc == 0)
        rc = ag_mpc_reveal(m, &t, &r);
    if (rc == 0)
        rc = ag_mpc_decode(m, &r, c->got_max[p->rank]);
    ag_tensor_cleanup(&t);
    ag_tensor_cleanup(&r);
    if (rc == 0)
        rc = ag_mpc_relu(m, &x, &t);
    if (rc == 0)
        rc = ag_mpc_reveal(m, &t, &r);
    if (rc == 0)
        rc = ag_mpc_decode(m, &r, c->got_relu[p->rank]);
    ag_tensor_cleanup(&t);
    ag_tensor_cleanup(&r);
    if (rc == 0)
        rc = ag_mpc_less(m, &x, &y, &lt);
    if (rc == 0)
        rc = ag_mpc_reveal(m, &lt, &r);
    for (size_t i = 0; rc == 0 && i < c->n; i++)
        c->got_less[p->rank][i] = (uint64_t)case_elem(&r, i);
    ag_tensor_cleanup(&r);
    if (rc == 0)
        rc = ag_mpc_mul(m, &x, &two, &x2);
    if (rc == 0)
        rc = ag_mpc_select(m, &lt, &x2, &y, &t);
    if (rc == 0)
        rc = ag_mpc_reveal(m, &t, &r);
    if (rc == 0)
        rc = ag_mpc_decode(m, &r, c->got_sel[p->rank]);
    ag_tensor *all[] = {&px, &py, &two, &x, &y, &lt, &x2, &t, &r};
    for (size_t i = 0; i < AG_ARRAY_LEN(all); i++)
        ag_tensor_cleanup(all[i]);
    return rc;
}

TEST(mpc_cmp_fixed_point_end_to_end)
{
    static const double x[8] = {-3.25, 0.0, 1e-5, 2.5, -1e6, 1e6 + 0.5, 7.0, -0.125};
    static const double y[8] = {-3.5, 0.0, -1e-5, 2.5 + 1e-5, -1e6 + 1, 1e6, -7.0, 0.125};
    for (unsigned np = 2; np <= 3; np++)
        for (int f = AG_FM64; f <= AG_FM128; f++) {
            struct fxp_case c = {.n = 8, .x = x, .y = y};
            struct party ps[MAX_PARTIES];
            run_parties(np, (ag_field)f, fxp_party, &c, ps);
            double ulp = ldexp(1.0, f == AG_FM64 ? -18 : -26);
            for (unsigned r = 0; r < np; r++) {
                if (ps[r].rc < 0)
                    FAIL("%s N=%u party %u: %s", ag_field_name((ag_field)f), np, r, ps[r].err);
                for (size_t i = 0; i < c.n; i++) {
                    double mx = x[i] > y[i] ? x[i] : y[i], rl = x[i] > 0 ? x[i] : 0;
                    double sel = x[i] < y[i] ? 2 * x[i] : y[i];
                    CHECK(fabs(c.got_max[r][i] - mx) <= ulp);
                    CHECK(fabs(c.got_relu[r][i] - rl) <= ulp);
                    CHECK_EQ(c.got_less[r][i], x[i] < y[i]);
                    CHECK(fabs(c.got_sel[r][i] - sel) <= 2 * ulp);
                }
            }
        }
}

/* ---- errors ---------------------------------------------------------------- */

enum { E_LESS_BSHARE, E_SELECT_SHAPE, E_EQUAL_FIELD, E_RELU_BSHARE, E_MAX_ALIAS, E_MIN_SHAPE,
       E_ABS_BSHARE };

static int error_party(struct party *p)
{
    int which = *(const int *)party_ctx(p);
    ag_mpc *m = p->m;
    ag_tensor a = {0}, b = {0}, z = {0};
    int64_t s3[1] = {3}, s4[1] = {4}, s31[2] = {3, 1};
    ag_vis va = A;
    ag_field fa = AG_FM64;
    int bdim = 1;
    const int64_t *bshape = s3;
    switch (which) {
    case E_LESS_BSHARE:
    case E_RELU_BSHARE:
    case E_ABS_BSHARE: va = AG_VIS_BSHARE; break;
    case E_EQUAL_FIELD: fa = AG_FM128; break;
    case E_SELECT_SHAPE: bshape = s4; break;
    case E_MIN_SHAPE: bdim = 2, bshape = s31; break;
    default: break;
    }
    int rc = ag_tensor_init(&a, fa, va, 1, s3);
    if (rc == 0)
        rc = ag_tensor_init(&b, AG_FM64, A, bdim, bshape);
    if (rc < 0)
        goto out;
    switch (which) {
    case E_LESS_BSHARE: rc = ag_mpc_less(m, &a, &b, &z); break;
    case E_SELECT_SHAPE: rc = ag_mpc_select(m, &a, &a, &b, &z); break;
    case E_EQUAL_FIELD: rc = ag_mpc_equal(m, &a, &b, &z); break;
    case E_RELU_BSHARE: rc = ag_mpc_relu(m, &a, &z); break;
    case E_MAX_ALIAS: rc = ag_mpc_max(m, &a, &b, &b); break;
    case E_MIN_SHAPE: rc = ag_mpc_min(m, &a, &b, &z); break;
    case E_ABS_BSHARE: rc = ag_mpc_abs(m, &a, &z); break;
    }
    CHECK(z.data == NULL);
    CHECK(a.data != NULL && b.data != NULL);
out:
    ag_tensor_cleanup(&a);
    ag_tensor_cleanup(&b);
    ag_tensor_cleanup(&z);
    return rc;
}

TEST(mpc_cmp_errors_name_the_op)
{
    static const struct {
        int which;
        int rc;
        const char *msg;
    } cases[] = {
        {E_LESS_BSHARE, AG_E_MPC_VIS, "less: not defined on boolean shares"},
        {E_SELECT_SHAPE, AG_E_MPC_SHAPE, "select: shapes (3) and (4) differ"},
        {E_EQUAL_FIELD, AG_E_MPC_FIELD, "equal: operand is FM128, the session is FM64"},
        {E_RELU_BSHARE, AG_E_MPC_VIS, "relu: not defined on boolean shares"},
        {E_MAX_ALIAS, AG_E_INVAL, "max: the output must not be an input"},
        {E_MIN_SHAPE, AG_E_MPC_SHAPE, "min: shapes (3) and (3,1) differ"},
        {E_ABS_BSHARE, AG_E_MPC_VIS, "abs: not defined on boolean shares"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        struct party ps[MAX_PARTIES];
        int which = cases[i].which;
        run_parties(2, AG_FM64, error_party, &which, ps);
        for (unsigned r = 0; r < 2; r++) {
            CHECK_EQ(ps[r].rc, cases[i].rc);
            CHECK_STR_EQ(ps[r].err, cases[i].msg);
        }
    }
}

/* bob never joins: alice's select fails inside its product, within the
 * timeout, and the message names both operations and bob. */
static int lonely_select_party(struct party *p)
{
    if (p->rank != 0)
        return 0;
    ag_tensor s = {0}, z = {0};
    int64_t s2[1] = {2};
    int rc = ag_tensor_init(&s, AG_FM64, A, 1, s2);
    if (rc == 0)
        rc = ag_mpc_select(p->m, &s, &s, &s, &z);
    CHECK(z.data == NULL);
    ag_tensor_cleanup(&s);
    return rc;
}

TEST(mpc_cmp_inner_failure_names_both_ops)
{
    ag_mpc_config cfg = {.field = AG_FM64, .fxp_bits = 0};
    struct party ps[MAX_PARTIES];
    uint64_t t0 = ag_now_ms();
    run_parties_cfg(2, &cfg, false, lonely_select_party, NULL, ps, 200);
    CHECK(ag_now_ms() - t0 < 5000);
    CHECK_EQ(ps[0].rc, AG_E_LINK_TIMEOUT);
    CHECK_CONTAINS(ps[0].err, "select: mul: party alice: no message from party bob within "
                              "200 ms");
    CHECK_EQ(ps[1].rc, 0);
}
