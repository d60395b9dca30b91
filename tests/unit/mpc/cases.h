/*
 * Test helper for the boolean and comparison kernels: runs one kernel at N
 * parties on operands split into shares by the test itself (additive or
 * XOR shares drawn here, so a kernel is checked against plaintext without
 * relying on ag_mpc_share or another kernel), recombines each party's
 * output, and keeps each party's link counters around the kernel. Also the
 * cost model of argot/mpc.h for these kernels, per party, and generators
 * of test values.
 *
 * Values travel as ag_u128 reduced to the field's K bits.
 */
#ifndef ARGOT_TEST_CASES_H
#define ARGOT_TEST_CASES_H

#include "parties.h"

__extension__ typedef __int128 case_i128;

#define CASE_MAX_IN 3

/* Calls the kernel under test on in[0..nin) (its own view at one party). */
typedef int (*case_kernel)(ag_mpc *m, const ag_tensor *in, ag_tensor *out);

struct kcase {
    /* set by the test */
    ag_field f;
    unsigned np;                   /* parties */
    size_t n;                      /* elements of each operand */
    int nin;                       /* operands */
    ag_vis vis[CASE_MAX_IN];       /* each operand's visibility */
    ag_u128 *plain[CASE_MAX_IN];   /* the operands in the clear, n each */
    case_kernel kernel;
    /* set by case_run */
    ag_u128 *share[MAX_PARTIES][CASE_MAX_IN]; /* each party's view of each operand */
    ag_vis out_vis[MAX_PARTIES];
    ag_u128 *out[MAX_PARTIES];     /* each party's output */
    struct party ps[MAX_PARTIES];
    ag_vis vis_out;                /* the output's visibility (the same everywhere) */
    ag_u128 *result;               /* the output recombined, n elements */
};

static inline unsigned case_bits(ag_field f)
{
    return (unsigned)ag_field_bytes(f) * 8;
}

static inline ag_u128 case_mask(ag_field f)
{
    return f == AG_FM64 ? (ag_u128)UINT64_MAX : ~(ag_u128)0;
}

static inline ag_u128 case_rand(ag_field f)
{
    ag_u128 v = 0;
    CHECK_OK(ag_random_bytes(&v, sizeof(v)));
    return v & case_mask(f);
}

static inline ag_u128 case_from_signed(ag_field f, case_i128 v)
{
    return (ag_u128)v & case_mask(f);
}

static inline case_i128 case_signed(ag_field f, ag_u128 v)
{
    if (f == AG_FM64)
        return (int64_t)(uint64_t)v;
    return (case_i128)v;
}

/* A signed value of magnitude below 2^(K-2), of one of several kinds: zero,
 * small, wide, or at the edge of that range. */
static inline ag_u128 case_rand_cmp(ag_field f)
{
    unsigned k = case_bits(f);
    case_i128 edge = ((case_i128)1 << (k - 2)) - 1, v;
    switch (ag_random_uniform(6)) {
    case 0: v = 0; break;
    case 1: v = (case_i128)ag_random_uniform(2001) - 1000; break;
    case 2: v = edge - (case_i128)ag_random_uniform(3); break;
    case 3: v = -edge + (case_i128)ag_random_uniform(3); break;
    default: v = (case_i128)(case_rand(f) >> 3) - ((case_i128)1 << (k - 3)); break;
    }
    return case_from_signed(f, v);
}

/* A partner for x in a comparison: often x itself or next to it. */
static inline ag_u128 case_rand_partner(ag_field f, ag_u128 x)
{
    case_i128 sx = case_signed(f, x);
    case_i128 edge = ((case_i128)1 << (case_bits(f) - 2)) - 1;
    switch (ag_random_uniform(8)) {
    case 0:
    case 1: return x;
    case 2: return sx < edge ? case_from_signed(f, sx + 1) : x;
    case 3: return sx > -edge ? case_from_signed(f, sx - 1) : x;
    default: return case_rand_cmp(f);
    }
}

static inline ag_u128 *case_array(size_t n)
{
    ag_u128 *a = ag_calloc(n ? n : 1, sizeof(*a));
    CHECK(a != NULL);
    return a;
}

/* Splits operand i into the parties' views, unless the test has set them
 * (share[0][i] not NULL). */
static inline void case_split(struct kcase *c, int i)
{
    if (c->share[0][i])
        return;
    for (unsigned r = 0; r < c->np; r++)
        c->share[r][i] = case_array(c->n);
    for (size_t j = 0; j < c->n; j++) {
        ag_u128 rest = c->plain[i][j];
        for (unsigned r = 0; r < c->np; r++) {
            ag_u128 s = rest;
            if (c->vis[i] != AG_VIS_PUBLIC && r + 1 < c->np) {
                s = case_rand(c->f);
                rest = c->vis[i] == AG_VIS_ASHARE ? rest - s : rest ^ s;
            }
            c->share[r][i][j] = s & case_mask(c->f);
        }
    }
}

static inline void case_load(ag_field f, const ag_u128 *v, ag_tensor *t)
{
    for (size_t j = 0; j < t->numel; j++) {
        if (f == AG_FM64)
            ag_tensor_u64(t)[j] = (uint64_t)v[j];
        else
            ag_tensor_u128(t)[j] = v[j];
    }
}

static inline ag_u128 case_elem(const ag_tensor *t, size_t j)
{
    return t->field == AG_FM64 ? ag_tensor_u64(t)[j] : ag_tensor_u128(t)[j];
}

static inline int case_party(struct party *p)
{
    struct kcase *c = party_ctx(p);
    ag_tensor in[CASE_MAX_IN], out = {0};
    int64_t shape[1] = {(int64_t)c->n};
    int rc = 0, made = 0;
    for (; made < c->nin && rc == 0; made++) {
        rc = ag_tensor_init(&in[made], c->f, c->vis[made], 1, shape);
        if (rc == 0)
            case_load(c->f, c->share[p->rank][made], &in[made]);
    }
    if (rc == 0) {
        cost_begin(p);
        rc = c->kernel(p->m, in, &out);
        cost_end(p);
    }
    if (rc == 0) {
        c->out_vis[p->rank] = out.vis;
        c->out[p->rank] = case_array(out.numel);
        for (size_t j = 0; j < out.numel; j++)
            c->out[p->rank][j] = case_elem(&out, j);
    }
    for (int i = 0; i < made; i++)
        ag_tensor_cleanup(&in[i]);
    ag_tensor_cleanup(&out);
    return rc;
}

/* Runs the case; fails the test if a party fails or the parties disagree
 * on the output's visibility or on a public output. Leaves the recombined
 * output in c->result. */
static inline void case_run(struct kcase *c)
{
    for (int i = 0; i < c->nin; i++)
        case_split(c, i);
    run_parties(c->np, c->f, case_party, c, c->ps);
    for (unsigned r = 0; r < c->np; r++)
        if (c->ps[r].rc < 0)
            FAIL("%s N=%u: party %u: %s", ag_field_name(c->f), c->np, r, c->ps[r].err);
    c->vis_out = c->out_vis[0];
    c->result = case_array(c->n);
    for (size_t j = 0; j < c->n; j++) {
        ag_u128 v = c->vis_out == AG_VIS_PUBLIC ? c->out[0][j] : 0;
        for (unsigned r = 0; r < c->np; r++) {
            CHECK_EQ(c->out_vis[r], c->vis_out);
            if (c->vis_out == AG_VIS_PUBLIC)
                CHECK(c->out[r][j] == v);
            else if (c->vis_out == AG_VIS_ASHARE)
                v += c->out[r][j];
            else
                v ^= c->out[r][j];
        }
        c->result[j] = v & case_mask(c->f);
    }
}

static inline void case_free(struct kcase *c)
{
    for (unsigned r = 0; r < MAX_PARTIES; r++) {
        for (int i = 0; i < CASE_MAX_IN; i++)
            ag_free(c->share[r][i]);
        ag_free(c->out[r]);
    }
    for (int i = 0; i < CASE_MAX_IN; i++)
        ag_free(c->plain[i]);
    ag_free(c->result);
}

/* ---- the cost model (argot/mpc.h), bytes sent per party ---------------- */

struct cost {
    uint64_t bytes;
    uint64_t rounds;
};

static inline uint64_t log2_ceil(uint64_t v)
{
    uint64_t l = 0;
    while (((uint64_t)1 << l) < v)
        l++;
    return l;
}

static inline struct cost cost_add(struct cost a, struct cost b)
{
    return (struct cost){a.bytes + b.bytes, a.rounds + b.rounds};
}

/* One round of ANDs (or a Beaver product) on n ring elements. */
static inline struct cost cost_and(ag_field f, unsigned np, size_t n)
{
    return (struct cost){2 * ag_field_bytes(f) * (np - 1) * n, 1};
}

static inline struct cost cost_mul(ag_field f, unsigned np, size_t n)
{
    return cost_and(f, np, n);
}

/* a2b: N - 1 adders of 2 log2(K) ANDs each, ceil(log2 N) levels of
 * log2(K) + 1 rounds. */
static inline struct cost cost_a2b(ag_field f, unsigned np, size_t n)
{
    uint64_t lk = log2_ceil(case_bits(f));
    struct cost c = cost_and(f, np, n);
    return (struct cost){c.bytes * 2 * lk * (np - 1), log2_ceil(np) * (lk + 1)};
}

static inline struct cost cost_b2a(ag_field f, unsigned np, size_t n)
{
    return (struct cost){ag_field_bytes(f) * (np - 1) * n, 1};
}

/* One bit per element, packed. */
static inline struct cost cost_bit2a(unsigned np, size_t n)
{
    return (struct cost){(np - 1) * ((n + 7) / 8), 1};
}

static inline struct cost cost_msb_a(ag_field f, unsigned np, size_t n)
{
    return cost_add(cost_a2b(f, np, n), cost_bit2a(np, n));
}

/* equal: open d + r, log2(K) packed AND levels, one bit converted. */
static inline struct cost cost_equal(ag_field f, unsigned np, size_t n)
{
    unsigned k = case_bits(f);
    struct cost c = {ag_field_bytes(f) * (np - 1) * n, 1};
    for (unsigned h = k / 2; h >= 1; h /= 2)
        c = cost_add(c, (struct cost){2 * (np - 1) * ((n * h + 7) / 8), 1});
    return cost_add(c, cost_bit2a(np, n));
}

static inline void case_check_cost(const struct kcase *c, struct cost want, const char *what)
{
    for (unsigned r = 0; r < c->np; r++) {
        uint64_t b = cost_bytes(&c->ps[r]), rd = cost_rounds(&c->ps[r]);
        if (b != want.bytes || rd != want.rounds)
            FAIL("%s %s N=%u party %u: %" PRIu64 " bytes in %" PRIu64 " rounds, model %" PRIu64
                 " in %" PRIu64, what, ag_field_name(c->f), c->np, r, b, rd, want.bytes,
                 want.rounds);
    }
}

#endif
