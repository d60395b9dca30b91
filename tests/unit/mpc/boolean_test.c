/*
 * Tests for src/mpc/boolean.c and the boolean correlations of beaver.c:
 * xor, is_and, a2b, b2a and msb against plaintext, for 2 and 3 parties (a2b
 * also 4) and both fields, on operands the test splits into shares itself;
 * every kernel's bytes and rounds per party against the cost model in
 * argot/mpc.h; and the errors for operands of the wrong visibility, field
 * or shape.
 */
#include "cases.h"

static int k_xor(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_xor(m, &in[0], &in[1], out);
}

static int k_and(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_and(m, &in[0], &in[1], out);
}

static int k_a2b(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_a2b(m, &in[0], out);
}

static int k_b2a(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_b2a(m, &in[0], out);
}

static int k_msb(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    return ag_mpc_msb(m, &in[0], out);
}

/* a2b then b2a: the value must come back. */
static int k_round_trip(ag_mpc *m, const ag_tensor *in, ag_tensor *out)
{
    ag_tensor b;
    int rc = ag_mpc_a2b(m, &in[0], &b);
    if (rc == 0)
        rc = ag_mpc_b2a(m, &b, out);
    ag_tensor_cleanup(&b);
    return rc;
}

static const size_t sizes[] = {1, 37, 256};

/* Uniform, or one of the ring's edges: 0, -1, the most negative and the
 * most positive value, or a small or mid-sized signed value. */
static ag_u128 rand_any(ag_field f)
{
    ag_u128 top = (ag_u128)1 << (case_bits(f) - 1);
    switch (ag_random_uniform(8)) {
    case 0: return 0;
    case 1: return case_mask(f);
    case 2: return top;
    case 3: return top - 1;
    case 4: return case_rand_cmp(f);
    default: return case_rand(f);
    }
}

/* A case of nin random operands of the given visibilities. */
static void setup(struct kcase *c, ag_field f, unsigned np, size_t n, case_kernel k, int nin,
                  const ag_vis *vis)
{
    memset(c, 0, sizeof(*c));
    c->f = f;
    c->np = np;
    c->n = n;
    c->nin = nin;
    c->kernel = k;
    for (int i = 0; i < nin; i++) {
        c->vis[i] = vis[i];
        c->plain[i] = case_array(n);
        for (size_t j = 0; j < n; j++)
            c->plain[i][j] = rand_any(f);
    }
}

static void check_result(const struct kcase *c, size_t j, ag_u128 want, const char *what)
{
    if (c->result[j] != want)
        FAIL("%s %s N=%u: element %zu of %zu: got %#llx, want %#llx", what, ag_field_name(c->f),
             c->np, j, c->n, (unsigned long long)c->result[j], (unsigned long long)want);
}

#define B AG_VIS_BSHARE
#define A AG_VIS_ASHARE
#define P AG_VIS_PUBLIC

TEST(mpc_bool_xor_and_vs_plaintext_and_cost)
{
    static const ag_vis mixes[][2] = {{B, B}, {B, P}, {P, B}, {P, P}};
    for (unsigned np = 2; np <= 3; np++)
        for (int f = AG_FM64; f <= AG_FM128; f++)
            for (size_t s = 0; s < AG_ARRAY_LEN(sizes); s++)
                for (size_t x = 0; x < AG_ARRAY_LEN(mixes); x++)
                    for (int is_and = 0; is_and <= 1; is_and++) {
                        struct kcase c;
                        size_t n = sizes[s];
                        const char *what = is_and ? "and" : "xor";
                        setup(&c, (ag_field)f, np, n, is_and ? k_and : k_xor, 2, mixes[x]);
                        case_run(&c);
                        bool pub = mixes[x][0] == P && mixes[x][1] == P;
                        CHECK_EQ(c.vis_out, pub ? P : B);
                        for (size_t j = 0; j < n; j++) {
                            ag_u128 a = c.plain[0][j], b = c.plain[1][j];
                            check_result(&c, j, is_and ? a & b : a ^ b, what);
                        }
                        bool beaver = is_and && mixes[x][0] == B && mixes[x][1] == B;
                        struct cost none = {0, 0};
                        case_check_cost(&c, beaver ? cost_and((ag_field)f, np, n) : none, what);
                        case_free(&c);
                    }
}

TEST(mpc_bool_a2b_b2a_vs_plaintext_and_cost)
{
    static const ag_vis va[1] = {A}, vb[1] = {B}, vp[1] = {P};
    for (unsigned np = 2; np <= 4; np++)
        for (int f = AG_FM64; f <= AG_FM128; f++)
            for (size_t s = 0; s < AG_ARRAY_LEN(sizes); s++) {
                ag_field fld = (ag_field)f;
                size_t n = sizes[s];
                struct {
                    case_kernel k;
                    const ag_vis *vis;
                    ag_vis out;
                    struct cost cost;
                    const char *what;
                } runs[] = {
                    {k_a2b, va, B, cost_a2b(fld, np, n), "a2b"},
                    {k_b2a, vb, A, cost_b2a(fld, np, n), "b2a"},
                    {k_round_trip, va, A, cost_add(cost_a2b(fld, np, n), cost_b2a(fld, np, n)),
                     "a2b+b2a"},
                    {k_a2b, vp, P, {0, 0}, "a2b public"},
                    {k_b2a, vp, P, {0, 0}, "b2a public"},
                };
                for (size_t r = 0; r < AG_ARRAY_LEN(runs); r++) {
                    struct kcase c;
                    setup(&c, fld, np, n, runs[r].k, 1, runs[r].vis);
                    case_run(&c);
                    CHECK_EQ(c.vis_out, runs[r].out);
                    for (size_t j = 0; j < n; j++)
                        check_result(&c, j, c.plain[0][j], runs[r].what);
                    case_check_cost(&c, runs[r].cost, runs[r].what);
                    case_free(&c);
                }
            }
}

TEST(mpc_bool_msb_vs_plaintext_and_cost)
{
    static const ag_vis vis[3] = {A, B, P};
    for (unsigned np = 2; np <= 3; np++)
        for (int f = AG_FM64; f <= AG_FM128; f++)
            for (size_t s = 0; s < AG_ARRAY_LEN(sizes); s++)
                for (int v = 0; v < 3; v++) {
                    ag_field fld = (ag_field)f;
                    size_t n = sizes[s];
                    struct kcase c;
                    setup(&c, fld, np, n, k_msb, 1, &vis[v]);
                    case_run(&c);
                    CHECK_EQ(c.vis_out, vis[v] == P ? P : A);
                    for (size_t j = 0; j < n; j++)
                        check_result(&c, j, c.plain[0][j] >> (case_bits(fld) - 1), "msb");
                    struct cost want = vis[v] == A   ? cost_msb_a(fld, np, n)
                                       : vis[v] == B ? cost_bit2a(np, n)
                                                     : (struct cost){0, 0};
                    case_check_cost(&c, want, "msb");
                    case_free(&c);
                }
}

/* The adder's long carry chains, which random shares almost never make:
 * two parties hold a (odd) and x - a, the others 0, so the propagate bits
 * a ^ (x - a) run for most of the word and the carry out of bit 0 travels
 * all of it. */
TEST(mpc_bool_a2b_long_carry_chains)
{
    for (unsigned np = 2; np <= 4; np++)
        for (int f = AG_FM64; f <= AG_FM128; f++) {
            ag_field fld = (ag_field)f;
            struct kcase c;
            static const ag_vis va[1] = {A};
            setup(&c, fld, np, 200, k_a2b, 1, va);
            for (unsigned r = 0; r < np; r++)
                c.share[r][0] = case_array(c.n);
            for (size_t j = 0; j < c.n; j++) {
                ag_u128 x = c.plain[0][j] = case_rand_cmp(fld) >> ag_random_uniform(8);
                ag_u128 a = case_rand(fld) | 1;
                unsigned p = (unsigned)ag_random_uniform(np);
                unsigned q = (p + 1 + (unsigned)ag_random_uniform(np - 1)) % np;
                c.share[p][0][j] = a;
                c.share[q][0][j] = (x - a) & case_mask(fld);
            }
            case_run(&c);
            for (size_t j = 0; j < c.n; j++)
                check_result(&c, j, c.plain[0][j], "a2b");
            case_free(&c);
        }
}

/* ---- errors ---------------------------------------------------------------- */

enum { E_XOR_ASHARE, E_AND_SHAPE, E_A2B_BSHARE, E_B2A_ASHARE, E_MUL_BSHARE, E_ADD_BSHARE,
       E_XOR_FIELD, E_AND_ALIAS, E_MSB_ALIAS };

static int error_party(struct party *p)
{
    int which = *(const int *)party_ctx(p);
    ag_mpc *m = p->m;
    ag_tensor a = {0}, b = {0}, z = {0};
    int64_t s3[1] = {3}, s31[2] = {3, 1};
    ag_vis va = B, vb = B;
    ag_field fb = AG_FM64;
    switch (which) {
    case E_XOR_ASHARE: va = A; break;
    case E_B2A_ASHARE: va = A; break;
    case E_ADD_BSHARE: va = A; break;
    case E_XOR_FIELD: fb = AG_FM128; break;
    default: break;
    }
    int rc = ag_tensor_init(&a, AG_FM64, va, 1, s3);
    if (rc == 0)
        rc = ag_tensor_init(&b, fb, vb, which == E_AND_SHAPE ? 2 : 1,
                            which == E_AND_SHAPE ? s31 : s3);
    if (rc < 0)
        goto out;
    switch (which) {
    case E_XOR_ASHARE: rc = ag_mpc_xor(m, &a, &b, &z); break;
    case E_AND_SHAPE: rc = ag_mpc_and(m, &a, &b, &z); break;
    case E_A2B_BSHARE: rc = ag_mpc_a2b(m, &a, &z); break;
    case E_B2A_ASHARE: rc = ag_mpc_b2a(m, &a, &z); break;
    case E_MUL_BSHARE: rc = ag_mpc_mul(m, &a, &b, &z); break;
    case E_ADD_BSHARE: rc = ag_mpc_add(m, &a, &b, &z); break;
    case E_XOR_FIELD: rc = ag_mpc_xor(m, &a, &b, &z); break;
    case E_AND_ALIAS: rc = ag_mpc_and(m, &a, &b, &a); break;
    case E_MSB_ALIAS: rc = ag_mpc_msb(m, &b, &b); break;
    }
    /* a failed kernel leaves its output empty, and never an operand */
    CHECK(z.data == NULL);
    CHECK(a.data != NULL && b.data != NULL);
out:
    ag_tensor_cleanup(&a);
    ag_tensor_cleanup(&b);
    ag_tensor_cleanup(&z);
    return rc;
}

TEST(mpc_bool_errors_name_the_op)
{
    static const struct {
        int which;
        int rc;
        const char *msg;
    } cases[] = {
        {E_XOR_ASHARE, AG_E_MPC_VIS, "xor: not defined on arithmetic shares"},
        {E_AND_SHAPE, AG_E_MPC_SHAPE, "and: shapes (3) and (3,1) differ"},
        {E_A2B_BSHARE, AG_E_MPC_VIS, "a2b: not defined on boolean shares"},
        {E_B2A_ASHARE, AG_E_MPC_VIS, "b2a: not defined on arithmetic shares"},
        {E_MUL_BSHARE, AG_E_MPC_VIS, "mul: not defined on boolean shares"},
        {E_ADD_BSHARE, AG_E_MPC_VIS, "add: not defined on boolean shares"},
        {E_XOR_FIELD, AG_E_MPC_FIELD, "xor: operand is FM128, the session is FM64"},
        {E_AND_ALIAS, AG_E_INVAL, "and: the output must not be an input"},
        {E_MSB_ALIAS, AG_E_INVAL, "msb: the output must not be an input"},
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
