/*
 * Tests for src/mpc/nonlinear.c: reciprocal, div, exp, log, sqrt, rsqrt and
 * the three sigmoids against double precision, for 2 and 3 parties and
 * both fields (FM64 with 18 fraction bits, FM128 with 26), on random inputs
 * across each function's documented domain and on its edges, each with
 * the error bound argot/mpc.h documents; their rounds and bytes per party
 * against the cost table there; argmax exactly (ties: the lowest index)
 * along every kind of axis; public operands in the clear; errors naming
 * the operation.
 *
 * Probabilistic truncation fails now and then (argot/mpc.h): in FM64 about
 * 2^-27 per truncation of a value near 2^(2f), and a failed one garbles its
 * element. With a few hundred elements and about ten truncations each, an
 * FM64 batch sees one with probability about 10^-4: a batch may have one
 * element out of bounds (counted, and reported beyond one), never more.
 * FM128's truncations fail with probability below 2^-40: none allowed.
 */
#include <math.h>

#include "cases.h"

#define A AG_VIS_ASHARE
#define P AG_VIS_PUBLIC

enum fn { F_RECIPROCAL, F_DIV, F_EXP, F_LOG, F_SQRT, F_RSQRT, F_MM1, F_SEG3, F_REAL, F_COUNT };

static const char *const fn_names[F_COUNT] = {"reciprocal", "div",          "exp",
                                              "log",        "sqrt",         "rsqrt",
                                              "sigmoid MM1", "sigmoid SEG3", "sigmoid REAL"};

static int call_fn(ag_mpc *m, enum fn fn, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    switch (fn) {
    case F_RECIPROCAL: return ag_mpc_reciprocal(m, x, out);
    case F_DIV: return ag_mpc_div(m, x, y, out);
    case F_EXP: return ag_mpc_exp(m, x, out);
    case F_LOG: return ag_mpc_log(m, x, out);
    case F_SQRT: return ag_mpc_sqrt(m, x, out);
    case F_RSQRT: return ag_mpc_rsqrt(m, x, out);
    case F_MM1: return ag_mpc_sigmoid(m, x, AG_SIGMOID_MM1, out);
    case F_SEG3: return ag_mpc_sigmoid(m, x, AG_SIGMOID_SEG3, out);
    default: return ag_mpc_sigmoid(m, x, AG_SIGMOID_REAL, out);
    }
}

static unsigned fbits(ag_field f)
{
    return f == AG_FM64 ? 18 : 26;
}

/* The domain exponent D of argot/mpc.h for the default fraction bits. */
static int dom(ag_field f)
{
    return f == AG_FM64 ? 18 : 61;
}

static double ulp_of(ag_field f)
{
    return ldexp(1.0, -(int)fbits(f));
}

/* The value v encodes to. */
static double enc(ag_field f, double v)
{
    return ldexp(nearbyint(ldexp(v, (int)fbits(f))), -(int)fbits(f));
}

/* ---- running one function at N parties --------------------------------------- */

struct nl_case {
    enum fn fn;
    size_t n;
    const double *x, *y; /* y: div's divisor */
    ag_vis vx, vy;
    int ndim;            /* the operands' shape: (n) unless set */
    int64_t shape[3];
    double *got[MAX_PARTIES];
    ag_vis out_vis[MAX_PARTIES];
    int out_ndim[MAX_PARTIES];
    struct party ps[MAX_PARTIES];
};

/* v encoded, and shared by rank 0 when vis is a share (no message). */
static int input(struct party *p, const struct nl_case *c, const double *v, ag_vis vis,
                 ag_tensor *t)
{
    ag_tensor pub = {0};
    int rc = ag_mpc_encode(p->m, v, c->ndim, c->shape, &pub);
    if (rc < 0 || vis == P) {
        *t = pub;
        return rc;
    }
    rc = ag_mpc_share(p->m, 0, p->rank == 0 ? &pub : NULL, c->ndim, c->shape, t);
    ag_tensor_cleanup(&pub);
    return rc;
}

static int nl_party(struct party *p)
{
    struct nl_case *c = party_ctx(p);
    ag_tensor x = {0}, y = {0}, z = {0}, r = {0};
    int rc = input(p, c, c->x, c->vx, &x);
    if (rc == 0 && c->fn == F_DIV)
        rc = input(p, c, c->y, c->vy, &y);
    if (rc == 0) {
        cost_begin(p);
        rc = call_fn(p->m, c->fn, &x, &y, &z);
        cost_end(p);
    }
    if (rc == 0) {
        c->out_vis[p->rank] = z.vis;
        c->out_ndim[p->rank] = z.ndim;
        rc = ag_mpc_reveal(p->m, &z, &r);
    }
    if (rc == 0) {
        c->got[p->rank] = ag_malloc(c->n * sizeof(double));
        CHECK(c->got[p->rank] != NULL);
        rc = ag_mpc_decode(p->m, &r, c->got[p->rank]);
    }
    ag_tensor_cleanup(&x);
    ag_tensor_cleanup(&y);
    ag_tensor_cleanup(&z);
    ag_tensor_cleanup(&r);
    return rc;
}

static void nl_run(struct nl_case *c, unsigned np, ag_field f)
{
    if (c->ndim == 0) {
        c->ndim = 1;
        c->shape[0] = (int64_t)c->n;
    }
    run_parties(np, f, nl_party, c, c->ps);
    for (unsigned r = 0; r < np; r++) {
        if (c->ps[r].rc < 0)
            FAIL("%s %s N=%u party %u: %s", fn_names[c->fn], ag_field_name(f), np, r,
                 c->ps[r].err);
        CHECK_EQ(c->out_vis[r], c->vx == A || (c->fn == F_DIV && c->vy == A) ? A : P);
        CHECK_EQ(c->out_ndim[r], c->ndim);
        for (size_t i = 0; i < c->n; i++)
            CHECK(c->got[r][i] == c->got[0][i]); /* the same revealed value everywhere */
    }
}

static void nl_free(struct nl_case *c)
{
    for (unsigned r = 0; r < MAX_PARTIES; r++)
        ag_free(c->got[r]);
}

/* ---- references and the documented bounds ------------------------------------- */

static double sat_exp(ag_field f, double x)
{
    return fmin(exp(x), ldexp(1.0, dom(f) - 1));
}

static double reference(ag_field f, enum fn fn, double x, double y)
{
    switch (fn) {
    case F_RECIPROCAL: return 1 / x;
    case F_DIV: return x / y;
    case F_EXP: return sat_exp(f, x);
    case F_LOG: return log(x);
    case F_SQRT: return sqrt(x);
    case F_RSQRT: return 1 / sqrt(x);
    case F_MM1: return 0.5 + x / 8;
    case F_SEG3: return x > 4 ? 1 : x < -4 ? 0 : 0.5 + x / 8;
    default: return 1 / (1 + exp(-x));
    }
}

/* argot/mpc.h's bound on |result - reference| (u = 2^-f). */
static double bound(ag_field f, enum fn fn, double x, double y, double want)
{
    double u = ulp_of(f);
    (void)x;
    switch (fn) {
    case F_DIV: return 8 * u * fabs(want) + u * (2 + 8 / fabs(y));
    case F_LOG: return 10 * u;
    case F_MM1:
    case F_SEG3: return 2 * u;
    case F_REAL: return 8 * u;
    default: return 8 * u * fabs(want) + 2 * u;
    }
}

/* Checks every element against its bound; see the file comment on FM64's
 * rare failed truncation. */
static void check_bounds(const struct nl_case *c, unsigned np, ag_field f)
{
    unsigned outliers = 0;
    for (size_t i = 0; i < c->n; i++) {
        double y = c->y ? c->y[i] : 0, want = reference(f, c->fn, c->x[i], y);
        double err = fabs(c->got[0][i] - want), b = bound(f, c->fn, c->x[i], y, want);
        if (err <= b)
            continue;
        if (f == AG_FM64 && ++outliers <= 1)
            continue;
        FAIL("%s %s N=%u vis %d,%d: element %zu: x %.17g y %.17g: got %.17g, want %.17g "
             "(error %.3g ulp, bound %.3g)", fn_names[c->fn], ag_field_name(f), np, c->vx, c->vy,
             i, c->x[i], y, c->got[0][i], want, err / ulp_of(f), b / ulp_of(f));
    }
}

/* ---- inputs ----------------------------------------------------------------------- */

static double urand(void)
{
    return (double)ag_random_uniform((uint64_t)1 << 40) / ldexp(1.0, 40);
}

/* Log-uniform in [2^lo, 2^hi), with a random sign when sign is set. */
static double lrand(double lo, double hi, bool sign)
{
    double v = exp2(lo + (hi - lo) * urand());
    return sign && ag_random_uniform(2) ? -v : v;
}

/* Positive inputs of the normalized functions: both ends of [2^-f, 2^D),
 * powers of two and their neighbours, then log-uniform values; negated
 * when sign is set (half of them). */
static void norm_inputs(ag_field f, size_t n, bool sign, double *x)
{
    double u = ulp_of(f), top = ldexp(1.0, dom(f));
    /* the largest encoding below 2^D (in FM128, below the double's one) */
    double below = f == AG_FM64 ? top - u : nextafter(top, 0);
    double edges[] = {u, 2 * u, 3 * u, below, top / 2, below / 2, 1, 1 - u, 1 + u, 0.5,
                      0.75, 2, 4 - u, 1024};
    size_t i = 0;
    for (; i < AG_ARRAY_LEN(edges) && i < n; i++)
        x[i] = edges[i];
    for (; i < n; i++)
        x[i] = lrand(-(double)fbits(f), dom(f), false);
    for (i = 0; i < n; i++) {
        x[i] = enc(f, x[i]);
        if (sign && i % 2)
            x[i] = -x[i];
    }
}

/* ---- cost ------------------------------------------------------------------------ */

/* Rounds and bytes sent per party per element of each function on shared
 * operands, for n a multiple of 8 (the packed bits then fill whole bytes):
 * argot/mpc.h's table. Index [fn][N - 2][field]. */
static const struct {
    uint64_t rounds;
    double bytes; /* per element, a multiple of 1/8 */
} model[F_COUNT][2][2] = {
    [F_RECIPROCAL] = {{{20, 378.875}, {22, 867.5}}, {{33, 1269.75}, {36, 2887.0}}},
    [F_DIV] = {{{20, 394.875}, {22, 899.5}}, {{33, 1317.75}, {36, 2983.0}}},
    [F_EXP] = {{{19, 334.875}, {21, 769.75}}, {{31, 1197.75}, {34, 2787.5}}},
    [F_LOG] = {{{18, 330.75}, {21, 867.375}}, {{29, 1205.5}, {34, 3110.75}}},
    [F_SQRT] = {{{23, 410.75}, {27, 1027.375}}, {{39, 1397.5}, {46, 3430.75}}},
    [F_RSQRT] = {{{23, 410.75}, {27, 1027.375}}, {{39, 1397.5}, {46, 3430.75}}},
    [F_MM1] = {{{0, 0.0}, {0, 0.0}}, {{1, 16.0}, {1, 32.0}}},
    [F_SEG3] = {{{9, 416.25}, {10, 960.25}}, {{17, 1616.5}, {19, 3744.5}}},
    [F_REAL] = {{{39, 713.75}, {43, 1637.25}}, {{64, 2467.5}, {70, 5674.5}}},
};

static void check_cost(const struct nl_case *c, unsigned np, ag_field f)
{
    uint64_t want_r = model[c->fn][np - 2][f].rounds;
    double want_b = model[c->fn][np - 2][f].bytes * (double)c->n;
    CHECK(c->n % 8 == 0);
    for (unsigned r = 0; r < np; r++) {
        uint64_t b = cost_bytes(&c->ps[r]), rd = cost_rounds(&c->ps[r]);
        if (rd != want_r || (double)b != want_b)
            FAIL("%s %s N=%u party %u: %" PRIu64 " rounds and %.3f bytes per element, the "
                 "table says %" PRIu64 " and %.3f", fn_names[c->fn], ag_field_name(f), np, r, rd,
                 (double)b / (double)c->n, want_r, model[c->fn][np - 2][f].bytes);
    }
}

/* ---- the element-wise functions --------------------------------------------------- */

enum { N_EL = 512 };

/* One batch: fn on x (and y) of the given visibilities, checked against
 * its bound, and its cost against the table when every operand is shared. */
static void batch(enum fn fn, unsigned np, ag_field f, const double *x, const double *y, ag_vis vx,
                  ag_vis vy, size_t n)
{
    struct nl_case c = {.fn = fn, .n = n, .x = x, .y = y, .vx = vx, .vy = vy};
    nl_run(&c, np, f);
    check_bounds(&c, np, f);
    if (vx == A && (fn != F_DIV || vy == A))
        check_cost(&c, np, f);
    nl_free(&c);
}

static double *darray(size_t n)
{
    double *d = ag_calloc(n, sizeof(double));
    CHECK(d != NULL);
    return d;
}

/* Inputs of fn (y: div's divisor) across its domain and on its edges. */
static void inputs(enum fn fn, ag_field f, size_t n, double *x, double *y)
{
    double u = ulp_of(f), ln2 = 0.69314718055994531;
    switch (fn) {
    case F_RECIPROCAL: norm_inputs(f, n, true, x); break;
    case F_DIV:
        /* |x| below 16: div's products fail as an fmul by |x| does
         * (argot/mpc.h); zero and one-unit numerators too */
        norm_inputs(f, n, true, y);
        for (size_t i = 0; i < n; i++)
            x[i] = i < 4 ? (double)i * u : enc(f, lrand(-(double)fbits(f), 4, true));
        break;
    case F_LOG:
    case F_SQRT:
    case F_RSQRT: norm_inputs(f, n, false, x); break;
    case F_EXP: {
        /* from below the underflow to beyond the saturation, and the edges */
        double lo = -(double)(fbits(f) + 3) * ln2, hi = (dom(f) + 1) * ln2;
        double edges[] = {0, u, -u, -(double)(fbits(f) + 1) * ln2, (dom(f) - 1) * ln2, 1, -1,
                          lo, hi};
        for (size_t i = 0; i < n; i++)
            x[i] = enc(f, i < AG_ARRAY_LEN(edges) ? edges[i] : lo + (hi - lo) * urand());
        break;
    }
    default: {
        double edges[] = {0, 4, -4, 4 + u, -4 - u, 4 - u, -4 + u, 40, -40, u, -u};
        for (size_t i = 0; i < n; i++)
            x[i] = enc(f, i < AG_ARRAY_LEN(edges) ? edges[i] : -12 + 24 * urand());
        break;
    }
    }
}

static void run_fns(const enum fn *fns, size_t cnt)
{
    for (unsigned np = 2; np <= 3; np++)
        for (int fi = AG_FM64; fi <= AG_FM128; fi++)
            for (size_t k = 0; k < cnt; k++) {
                ag_field f = (ag_field)fi;
                double *x = darray(N_EL), *y = darray(N_EL);
                inputs(fns[k], f, N_EL, x, y);
                batch(fns[k], np, f, x, y, A, A, N_EL);
                ag_free(x);
                ag_free(y);
            }
}

TEST(mpc_nl_reciprocal_and_div_vs_double)
{
    static const enum fn fns[] = {F_RECIPROCAL, F_DIV};
    run_fns(fns, AG_ARRAY_LEN(fns));
}

/* A public divisor goes through the same algorithm in the clear (only the
 * truncations of the shared numerator's products communicate); a public
 * numerator multiplies locally. */
TEST(mpc_nl_div_with_one_public_operand)
{
    for (unsigned np = 2; np <= 3; np++)
        for (int fi = AG_FM64; fi <= AG_FM128; fi++) {
            ag_field f = (ag_field)fi;
            double *x = darray(N_EL), *y = darray(N_EL);
            inputs(F_DIV, f, N_EL, x, y);
            batch(F_DIV, np, f, x, y, A, P, N_EL);
            batch(F_DIV, np, f, x, y, P, A, N_EL);
            ag_free(x);
            ag_free(y);
        }
}

TEST(mpc_nl_exp_and_log_vs_double)
{
    static const enum fn fns[] = {F_EXP, F_LOG};
    run_fns(fns, AG_ARRAY_LEN(fns));
}

TEST(mpc_nl_sqrt_and_rsqrt_vs_double)
{
    static const enum fn fns[] = {F_SQRT, F_RSQRT};
    run_fns(fns, AG_ARRAY_LEN(fns));
}

/* MM1 and SEG3 within the truncation's two units of their formulas (SEG3
 * also at and next to +-4), REAL within 8 units of the true sigmoid,
 * saturated inputs included. */
TEST(mpc_nl_sigmoid_modes_vs_their_formulas)
{
    static const enum fn fns[] = {F_MM1, F_SEG3, F_REAL};
    run_fns(fns, AG_ARRAY_LEN(fns));
}

/* exp saturates at 2^(D-1) above (D-1) ln 2 and is 0 (within the bound)
 * below -(f+1) ln 2, far beyond both too; sqrt(0) is 0. */
TEST(mpc_nl_exp_saturates_and_sqrt_of_zero)
{
    for (int fi = AG_FM64; fi <= AG_FM128; fi++) {
        ag_field f = (ag_field)fi;
        double x[8] = {1000, -1000, 200, -200, 60, -60, 30, -30};
        for (size_t i = 0; i < 8; i++)
            x[i] = enc(f, x[i]);
        struct nl_case c = {.fn = F_EXP, .n = 8, .x = x, .vx = A};
        nl_run(&c, 2, f);
        check_bounds(&c, 2, f);
        double ln2 = 0.69314718055994531;
        for (size_t i = 0; i < 8; i++) {
            if (x[i] >= (dom(f) - 1) * ln2)
                CHECK(c.got[0][i] == ldexp(1.0, dom(f) - 1));
            if (x[i] <= -(double)(fbits(f) + 2) * ln2)
                CHECK(fabs(c.got[0][i]) <= 2 * ulp_of(f));
        }
        nl_free(&c);
        double zero[1] = {0};
        struct nl_case s = {.fn = F_SQRT, .n = 1, .x = zero, .vx = A};
        nl_run(&s, 3, f);
        CHECK(fabs(s.got[0][0]) <= 2 * ulp_of(f));
        nl_free(&s);
    }
}

/* Any shape: the result takes the operand's (here (2,3,5)). */
TEST(mpc_nl_keeps_the_shape)
{
    double x[30], y[30];
    for (size_t i = 0; i < 30; i++) {
        x[i] = enc(AG_FM64, 0.25 + (double)i);
        y[i] = enc(AG_FM64, (i % 2 ? -0.5 : 0.5) - 0.3 * (double)i);
    }
    for (int fn = 0; fn < F_COUNT; fn++) {
        struct nl_case c = {.fn = (enum fn)fn, .n = 30, .x = x, .y = y, .vx = A, .vy = A,
                            .ndim = 3, .shape = {2, 3, 5}};
        nl_run(&c, 2, AG_FM64);
        check_bounds(&c, 2, AG_FM64);
        nl_free(&c);
    }
}

/* ---- argmax ------------------------------------------------------------------------ */

struct am_case {
    const double *x;
    int ndim;
    int64_t shape[3];
    int axis;
    ag_vis vis;
    size_t nout;
    int64_t *got[MAX_PARTIES];
    ag_vis out_vis[MAX_PARTIES];
    int out_ndim[MAX_PARTIES];
    int64_t out_shape[MAX_PARTIES][3];
    struct party ps[MAX_PARTIES];
};

static int am_party(struct party *p)
{
    struct am_case *c = party_ctx(p);
    ag_tensor pub = {0}, x = {0}, z = {0}, r = {0};
    int rc = ag_mpc_encode(p->m, c->x, c->ndim, c->shape, &pub);
    if (rc == 0 && c->vis == A)
        rc = ag_mpc_share(p->m, 0, p->rank == 0 ? &pub : NULL, c->ndim, c->shape, &x);
    else if (rc == 0)
        rc = ag_tensor_copy(&x, &pub);
    if (rc == 0) {
        cost_begin(p);
        rc = ag_mpc_argmax(p->m, &x, c->axis, &z);
        cost_end(p);
    }
    if (rc == 0) {
        c->out_vis[p->rank] = z.vis;
        c->out_ndim[p->rank] = z.ndim;
        memcpy(c->out_shape[p->rank], z.shape, sizeof(c->out_shape[0]));
        rc = ag_mpc_reveal(p->m, &z, &r);
    }
    if (rc == 0) {
        CHECK_EQ(r.numel, c->nout);
        c->got[p->rank] = ag_calloc(c->nout ? c->nout : 1, sizeof(int64_t));
        CHECK(c->got[p->rank] != NULL);
        for (size_t i = 0; i < c->nout; i++)
            c->got[p->rank][i] = (int64_t)case_signed(r.field, case_elem(&r, i));
    }
    ag_tensor_cleanup(&pub);
    ag_tensor_cleanup(&x);
    ag_tensor_cleanup(&z);
    ag_tensor_cleanup(&r);
    return rc;
}

/* The tournament's cost: per round, a comparison of the pairs, then one
 * product per pair for the values, two once the indices are shared. */
static struct cost am_cost(ag_field f, unsigned np, size_t len, size_t nout)
{
    struct cost c = {0, 0};
    for (size_t cnt = len, level = 0; cnt > 1; cnt = cnt / 2 + cnt % 2, level++) {
        size_t pairs = cnt / 2 * nout;
        c = cost_add(c, cost_msb_a(f, np, pairs));
        c = cost_add(c, cost_mul(f, np, level ? 2 * pairs : pairs));
    }
    return c;
}

/* Runs one argmax and checks it exactly against the first maximum along
 * the axis (the lowest index wins a tie, as numpy's argmax), with its
 * shape, visibility and cost. */
static void am_check(ag_field f, unsigned np, const double *x, int ndim, const int64_t *shape,
                     int axis, ag_vis vis)
{
    struct am_case c = {.x = x, .ndim = ndim, .axis = axis, .vis = vis};
    size_t numel = 1, outer = 1, len, inner = 1;
    for (int k = 0; k < ndim; k++) {
        c.shape[k] = shape[k];
        numel *= (size_t)shape[k];
    }
    int ax = axis == AG_AXIS_ALL ? -1 : axis < 0 ? axis + ndim : axis;
    if (ax < 0) {
        len = numel;
    } else {
        for (int k = 0; k < ax; k++)
            outer *= (size_t)shape[k];
        for (int k = ax + 1; k < ndim; k++)
            inner *= (size_t)shape[k];
        len = (size_t)shape[ax];
    }
    c.nout = outer * inner;
    run_parties(np, f, am_party, &c, c.ps);
    for (unsigned r = 0; r < np; r++) {
        if (c.ps[r].rc < 0)
            FAIL("argmax %s N=%u party %u: %s", ag_field_name(f), np, r, c.ps[r].err);
        CHECK_EQ(c.out_vis[r], vis);
        CHECK_EQ(c.out_ndim[r], ax < 0 ? 0 : ndim - 1);
        for (int k = 0, j = 0; ax >= 0 && k < ndim; k++)
            if (k != ax)
                CHECK_EQ(c.out_shape[r][j++], shape[k]);
        for (size_t o = 0; o < outer; o++)
            for (size_t i = 0; i < inner; i++) {
                size_t best = 0;
                for (size_t k = 1; k < len; k++)
                    if (x[(o * len + k) * inner + i] > x[(o * len + best) * inner + i])
                        best = k;
                if (c.got[r][o * inner + i] != (int64_t)best)
                    FAIL("argmax %s N=%u axis %d: output %zu: got %" PRId64 ", want %zu",
                         ag_field_name(f), np, axis, o * inner + i, c.got[r][o * inner + i],
                         best);
            }
        struct cost want = vis == A ? am_cost(f, np, len, c.nout) : (struct cost){0, 0};
        CHECK_U64_EQ(cost_bytes(&c.ps[r]), want.bytes);
        CHECK_U64_EQ(cost_rounds(&c.ps[r]), want.rounds);
        ag_free(c.got[r]);
    }
}

TEST(mpc_nl_argmax_exact_ties_to_the_lowest_index)
{
    static const struct {
        int ndim;
        int64_t shape[3];
        int axis;
    } cases[] = {
        {1, {13}, 0},     {1, {13}, AG_AXIS_ALL}, {1, {16}, -1},   {2, {4, 7}, 1},
        {2, {4, 7}, -2},  {3, {3, 8, 5}, 1},      {2, {6, 1}, 1},  {3, {2, 3, 4}, AG_AXIS_ALL},
        {3, {2, 5, 3}, 2}, {1, {1}, 0},
    };
    for (unsigned np = 2; np <= 3; np++)
        for (int fi = AG_FM64; fi <= AG_FM128; fi++)
            for (size_t k = 0; k < AG_ARRAY_LEN(cases); k++)
                for (int kind = 0; kind < 3; kind++) {
                    ag_field f = (ag_field)fi;
                    double x[128];
                    for (size_t i = 0; i < AG_ARRAY_LEN(x); i++) {
                        switch (kind) {
                        case 0: x[i] = (double)ag_random_uniform(4) - 2; break; /* ties */
                        case 1: x[i] = enc(f, lrand(-18, 20, true)); break;
                        default: x[i] = -1e6; break; /* all tied */
                        }
                    }
                    am_check(f, np, x, cases[k].ndim, cases[k].shape, cases[k].axis,
                             kind == 1 && k % 3 == 0 ? P : A);
                }
}

/* ---- public operands --------------------------------------------------------------- */

struct pub_case {
    enum fn fn;
    size_t n;
    const double *x, *y;
    double *got[MAX_PARTIES];
    struct party ps[MAX_PARTIES];
};

/* All-public calls are the C library's result, rounded to the nearest
 * encoding, with no message; a divisor public with a shared numerator
 * costs only the truncations (none for two parties). */
TEST(mpc_nl_public_operands_in_the_clear)
{
    for (int fi = AG_FM64; fi <= AG_FM128; fi++)
        for (int fn = 0; fn < F_COUNT; fn++) {
            ag_field f = (ag_field)fi;
            double *x = darray(64), *y = darray(64);
            inputs((enum fn)fn, f, 64, x, y);
            struct nl_case c = {.fn = (enum fn)fn, .n = 64, .x = x, .y = y, .vx = P, .vy = P};
            nl_run(&c, 3, f);
            for (size_t i = 0; i < 64; i++) {
                double want = fn == F_EXP ? exp(x[i]) : reference(f, (enum fn)fn, x[i], y[i]);
                if (fabs(want) >= ldexp(1.0, (int)ag_field_bytes(f) * 8 - 2 - (int)fbits(f)))
                    continue;
                if (c.got[0][i] != enc(f, want))
                    FAIL("%s %s public: x %.17g: got %.17g, want %.17g", fn_names[fn],
                         ag_field_name(f), x[i], c.got[0][i], enc(f, want));
            }
            for (unsigned r = 0; r < 3; r++) {
                CHECK_U64_EQ(cost_bytes(&c.ps[r]), 0);
                CHECK_U64_EQ(cost_rounds(&c.ps[r]), 0);
            }
            nl_free(&c);
            ag_free(x);
            ag_free(y);
        }
}

/* ---- errors -------------------------------------------------------------------------- */

enum { E_EXP_BSHARE, E_DIV_SHAPE, E_SIGMOID_MODE, E_ARGMAX_AXIS, E_ARGMAX_EMPTY, E_LOG_ALIAS,
       E_RECIPROCAL_ZERO, E_LOG_NEGATIVE, E_SQRT_FIELD };

static int error_party(struct party *p)
{
    int which = *(const int *)party_ctx(p);
    ag_mpc *m = p->m;
    ag_tensor a = {0}, b = {0}, z = {0};
    int64_t s3[1] = {3}, s4[1] = {4}, s30[2] = {3, 0};
    double v[3] = {1, 0, -1};
    int rc = 0;
    switch (which) {
    case E_EXP_BSHARE: rc = ag_tensor_init(&a, AG_FM64, AG_VIS_BSHARE, 1, s3); break;
    case E_SQRT_FIELD: rc = ag_tensor_init(&a, AG_FM128, A, 1, s3); break;
    case E_ARGMAX_EMPTY: rc = ag_tensor_init(&a, AG_FM64, A, 2, s30); break;
    case E_RECIPROCAL_ZERO:
    case E_LOG_NEGATIVE: rc = ag_mpc_encode(m, v, 1, s3, &a); break;
    default: rc = ag_tensor_init(&a, AG_FM64, A, 1, s3); break;
    }
    if (rc == 0)
        rc = ag_tensor_init(&b, AG_FM64, A, 1, which == E_DIV_SHAPE ? s4 : s3);
    if (rc < 0)
        goto out;
    switch (which) {
    case E_EXP_BSHARE: rc = ag_mpc_exp(m, &a, &z); break;
    case E_DIV_SHAPE: rc = ag_mpc_div(m, &a, &b, &z); break;
    case E_SIGMOID_MODE: rc = ag_mpc_sigmoid(m, &a, (ag_sigmoid_mode)7, &z); break;
    case E_ARGMAX_AXIS: rc = ag_mpc_argmax(m, &a, 1, &z); break;
    case E_ARGMAX_EMPTY: rc = ag_mpc_argmax(m, &a, 1, &z); break;
    case E_LOG_ALIAS: rc = ag_mpc_log(m, &a, &a); break;
    case E_RECIPROCAL_ZERO: rc = ag_mpc_reciprocal(m, &a, &z); break;
    case E_LOG_NEGATIVE: rc = ag_mpc_log(m, &a, &z); break;
    case E_SQRT_FIELD: rc = ag_mpc_sqrt(m, &a, &z); break;
    }
    CHECK(z.data == NULL);
    CHECK(a.data != NULL && b.data != NULL);
out:
    ag_tensor_cleanup(&a);
    ag_tensor_cleanup(&b);
    ag_tensor_cleanup(&z);
    return rc;
}

TEST(mpc_nl_errors_name_the_op)
{
    static const struct {
        int which;
        int rc;
        const char *msg;
    } cases[] = {
        {E_EXP_BSHARE, AG_E_MPC_VIS, "exp: not defined on boolean shares"},
        {E_DIV_SHAPE, AG_E_MPC_SHAPE, "div: shapes (3) and (4) differ"},
        {E_SIGMOID_MODE, AG_E_INVAL, "sigmoid: unknown mode 7"},
        {E_ARGMAX_AXIS, AG_E_MPC_SHAPE, "argmax: axis 1 out of range for shape (3)"},
        {E_ARGMAX_EMPTY, AG_E_MPC_SHAPE, "argmax: empty axis: axis 1 of shape (3,0) has no "
                                         "element"},
        {E_LOG_ALIAS, AG_E_INVAL, "log: the output must not be an input"},
        {E_RECIPROCAL_ZERO, AG_E_MPC_RANGE, "reciprocal: element 1: the result inf (of 0) is "
                                            "outside the FM64 fixed-point range"},
        {E_LOG_NEGATIVE, AG_E_MPC_RANGE, "log: element 1: the result -inf (of 0) is outside "
                                         "the FM64 fixed-point range"},
        {E_SQRT_FIELD, AG_E_MPC_FIELD, "sqrt: operand is FM128, the session is FM64"},
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

/* bob never joins: alice's exp fails inside its a2b within the timeout,
 * and the message names both operations and bob. */
static int lonely_party(struct party *p)
{
    if (p->rank != 0)
        return 0;
    ag_tensor s = {0}, z = {0};
    int64_t s2[1] = {2};
    int rc = ag_tensor_init(&s, AG_FM64, A, 1, s2);
    if (rc == 0)
        rc = ag_mpc_exp(p->m, &s, &z);
    CHECK(z.data == NULL);
    ag_tensor_cleanup(&s);
    return rc;
}

TEST(mpc_nl_inner_failure_names_both_ops)
{
    ag_mpc_config cfg = {.field = AG_FM64, .fxp_bits = 0};
    struct party ps[MAX_PARTIES];
    run_parties_cfg(2, &cfg, false, lonely_party, NULL, ps, 200);
    CHECK_EQ(ps[0].rc, AG_E_LINK_TIMEOUT);
    CHECK_CONTAINS(ps[0].err, "exp: a2b: party alice: no message from party bob within 200 ms");
    CHECK_EQ(ps[1].rc, 0);
}

/* ---- under failmalloc ------------------------------------------------------------ */

/* Setup, then every function once on a few shared elements; stops at the
 * first failure, which must be clean (no leak, out left empty). */
static void *fm_party_main(void *arg)
{
    struct fm_party *p = arg;
    ag_mpc *m = p->m;
    int64_t shape[2] = {2, 3};
    double v[6] = {0.5, 1.5, 3, 0.25, 7, 2};
    ag_tensor px = {0}, x = {0}, z[10] = {{0}};
    int rc = ag_mpc_setup(m);
    if (rc == 0)
        rc = ag_mpc_encode(m, v, 2, shape, &px);
    if (rc == 0)
        rc = ag_mpc_share(m, 0, p->rank == 0 ? &px : NULL, 2, shape, &x);
    for (int k = 0; k < 10 && rc == 0; k++) {
        switch (k) {
        case 0: rc = ag_mpc_reciprocal(m, &x, &z[k]); break;
        case 1: rc = ag_mpc_div(m, &x, &px, &z[k]); break;
        case 2: rc = ag_mpc_div(m, &px, &x, &z[k]); break;
        case 3: rc = ag_mpc_exp(m, &x, &z[k]); break;
        case 4: rc = ag_mpc_log(m, &x, &z[k]); break;
        case 5: rc = ag_mpc_rsqrt(m, &x, &z[k]); break;
        case 6: rc = ag_mpc_sigmoid(m, &x, AG_SIGMOID_SEG3, &z[k]); break;
        case 7: rc = ag_mpc_argmax(m, &x, 1, &z[k]); break;
        case 8: rc = ag_mpc_argmax(m, &x, AG_AXIS_ALL, &z[k]); break;
        default: rc = ag_mpc_reciprocal(m, &px, &z[k]); break;
        }
        if (rc < 0)
            CHECK(z[k].data == NULL);
    }
    /* a failure outside a kernel must fail the others too, as a kernel's
     * does */
    if (rc < 0)
        ag_link_abort(ag_mpc_link(m), "failed");
    for (int i = 0; i < 10; i++)
        ag_tensor_cleanup(&z[i]);
    ag_tensor_cleanup(&px);
    ag_tensor_cleanup(&x);
    p->rc = rc;
    return NULL;
}

TEST_FM(mpc_nl_failmalloc)
{
    run_parties_fm(2, fm_party_main);
}
