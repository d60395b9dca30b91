/*
 * Tests for the trusted-third-party dealer (src/mpc/dealer.c, ttp.c): a real
 * Dealer service on a loopback gRPC server, parties over in-memory links
 * reaching it through one channel. Every kind of correlation the kernels
 * ask for gives results equal to plaintext, at the same link cost as the
 * trusted first party; rank 0 holds no other party's seed and what the
 * dealer sends it is uniformly distributed; the dealer refuses what it
 * must (unknown sessions, ranges dealt twice, a second seed, missing
 * ranks, a mismatched registration); a dealer that cannot be reached
 * fails the setup with its address.
 */
#include <math.h>

#include <protobuf-c/protobuf-c.h>

#include "mpc/internal.h"
#include "argot/beaver/v1/beaver.argot.h"
#include "argot/beaver/v1/beaver.pb-c.h"
#include "argot/rpc.h"
#include "parties.h"

/* ---- kernels against plaintext, and their cost ------------------------------ */

#define NV 300 /* elements of the element-wise operands */
#define MR 7   /* matrices: MR x MK by MK x MN */
#define MK 5
#define MN 3

struct kernels {
    double x[NV], y[NV], a[MR * MK], bm[MK * MN], pos[NV];
    /* what rank 0 revealed */
    double mul[NV], square[NV], less[NV], equal[NV], recip[NV], mm[MR * MN], xmm[MR * MN],
        xtm[MK * MN];
    uint64_t bytes[MAX_PARTIES], rounds[MAX_PARTIES];
};

static int share_f(ag_mpc *m, unsigned owner, const double *v, int ndim, const int64_t *shape,
                   ag_tensor *out)
{
    ag_tensor pub = {0};
    int rc = 0;
    if (ag_mpc_rank(m) == owner)
        rc = ag_mpc_encode(m, v, ndim, shape, &pub);
    if (rc == 0)
        rc = ag_mpc_share(m, owner, ag_mpc_rank(m) == owner ? &pub : NULL, ndim, shape, out);
    ag_tensor_cleanup(&pub);
    return rc;
}

static int reveal_f(ag_mpc *m, const ag_tensor *t, double *out)
{
    ag_tensor pub = {0};
    int rc = ag_mpc_reveal(m, t, &pub);
    if (rc == 0)
        rc = ag_mpc_decode(m, &pub, out);
    ag_tensor_cleanup(&pub);
    return rc;
}

/* A ring integer 0/1 result as a double. */
static int reveal_int(ag_mpc *m, const ag_tensor *t, double *out)
{
    ag_tensor pub = {0};
    int rc = ag_mpc_reveal(m, t, &pub);
    for (size_t i = 0; rc == 0 && i < pub.numel; i++)
        out[i] = (double)(pub.field == AG_FM64 ? ag_tensor_u64(&pub)[i]
                                               : (uint64_t)ag_tensor_u128(&pub)[i]);
    ag_tensor_cleanup(&pub);
    return rc;
}

static int kernels_fn(struct party *p)
{
    struct kernels *k = party_ctx(p);
    ag_mpc *m = p->m;
    unsigned last = ag_mpc_nparties(m) - 1;
    int64_t vs[1] = {NV}, as[2] = {MR, MK}, bs[2] = {MK, MN};
    ag_tensor x = {0}, y = {0}, a = {0}, b = {0}, ps = {0}, z[9] = {{0}};
    ag_mpc_xcache *xc = NULL;
    double scratch[NV];
    int rc = share_f(m, 0, k->x, 1, vs, &x);
    if (rc == 0)
        rc = share_f(m, last, k->y, 1, vs, &y);
    if (rc == 0)
        rc = share_f(m, 0, k->a, 2, as, &a);
    if (rc == 0)
        rc = share_f(m, last, k->bm, 2, bs, &b);
    if (rc == 0)
        rc = share_f(m, last, k->pos, 1, vs, &ps);
    if (rc < 0)
        goto out;
    cost_begin(p);
    rc = ag_mpc_fmul(m, &x, &y, &z[0]);
    if (rc == 0)
        rc = ag_mpc_square(m, &x, &z[1]);
    if (rc == 0)
        rc = ag_mpc_less(m, &x, &y, &z[2]);
    if (rc == 0)
        rc = ag_mpc_equal(m, &x, &x, &z[3]);
    if (rc == 0)
        rc = ag_mpc_reciprocal(m, &ps, &z[4]);
    if (rc == 0)
        rc = ag_mpc_fmatmul(m, &a, &b, &z[5]);
    if (rc == 0)
        rc = ag_mpc_xcache_new(m, &a, &xc);
    if (rc == 0) {
        ag_tensor bt = {0};
        int64_t ts[2] = {MR, MN};
        /* x.b and x^T.y' with y' of MR rows: both directions of the cache */
        rc = ag_mpc_xcache_fmatmul(m, xc, false, &b, &z[6]);
        if (rc == 0)
            rc = ag_tensor_slice(&bt, &z[6], NULL, NULL, NULL);
        if (rc == 0)
            rc = ag_tensor_reshape(&bt, 2, ts);
        if (rc == 0)
            rc = ag_mpc_xcache_fmatmul(m, xc, true, &bt, &z[7]);
        ag_tensor_cleanup(&bt);
    }
    cost_end(p);
    if (rc == 0)
        rc = reveal_f(m, &z[0], p->rank == 0 ? k->mul : scratch);
    if (rc == 0) {
        /* square is a ring product: 2f fraction bits */
        ag_tensor t = {0};
        rc = ag_mpc_trunc(m, &z[1], ag_mpc_fxp_bits(m), &t);
        if (rc == 0)
            rc = reveal_f(m, &t, p->rank == 0 ? k->square : scratch);
        ag_tensor_cleanup(&t);
    }
    if (rc == 0)
        rc = reveal_int(m, &z[2], p->rank == 0 ? k->less : scratch);
    if (rc == 0)
        rc = reveal_int(m, &z[3], p->rank == 0 ? k->equal : scratch);
    if (rc == 0)
        rc = reveal_f(m, &z[4], p->rank == 0 ? k->recip : scratch);
    if (rc == 0)
        rc = reveal_f(m, &z[5], p->rank == 0 ? k->mm : scratch);
    if (rc == 0)
        rc = reveal_f(m, &z[6], p->rank == 0 ? k->xmm : scratch);
    if (rc == 0)
        rc = reveal_f(m, &z[7], p->rank == 0 ? k->xtm : scratch);
out:
    ag_mpc_xcache_free(xc);
    ag_tensor_cleanup(&x);
    ag_tensor_cleanup(&y);
    ag_tensor_cleanup(&a);
    ag_tensor_cleanup(&b);
    ag_tensor_cleanup(&ps);
    for (int i = 0; i < 9; i++)
        ag_tensor_cleanup(&z[i]);
    return rc;
}

static double urand(double lo, double hi)
{
    uint32_t r;
    CHECK_OK(ag_random_bytes(&r, sizeof(r)));
    return lo + (hi - lo) * (r / 4294967296.0);
}

static void kernels_fill(struct kernels *k)
{
    memset(k, 0, sizeof(*k));
    for (int i = 0; i < NV; i++) {
        k->x[i] = urand(-50, 50);
        k->y[i] = i % 10 == 0 ? k->x[i] : urand(-50, 50);
        k->pos[i] = urand(0.5, 100);
    }
    for (int i = 0; i < MR * MK; i++)
        k->a[i] = urand(-8, 8);
    for (int i = 0; i < MK * MN; i++)
        k->bm[i] = urand(-8, 8);
}

/* The bounds: each operand's encoding is within u/2 of it, and every
 * kernel adds its own (argot/mpc.h). */
static void kernels_check(const struct kernels *k, unsigned fbits)
{
    double u = ldexp(1.0, -(int)fbits);
    for (int i = 0; i < NV; i++) {
        double x = k->x[i], y = k->y[i];
        CHECK(fabs(k->mul[i] - x * y) <= (fabs(x) + fabs(y) + 2) * u);
        CHECK(fabs(k->square[i] - x * x) <= (2 * fabs(x) + 2) * u);
        CHECK_EQ(k->less[i], x < y ? 1.0 : 0.0);
        CHECK_EQ(k->equal[i], 1.0);
        CHECK(fabs(k->recip[i] - 1 / k->pos[i]) <= 8 * u / k->pos[i] + 5 * u);
    }
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < MN; c++) {
            double want = 0, bound = 2 * u;
            for (int i = 0; i < MK; i++) {
                want += k->a[r * MK + i] * k->bm[i * MN + c];
                bound += (fabs(k->a[r * MK + i]) + fabs(k->bm[i * MN + c]) + 1) * u / 2;
            }
            CHECK(fabs(k->mm[r * MN + c] - want) <= bound);
            CHECK(fabs(k->xmm[r * MN + c] - want) <= bound);
        }
    /* x^T (x b), the second factor the shares of x b themselves */
    for (int r = 0; r < MK; r++)
        for (int c = 0; c < MN; c++) {
            double want = 0, bound = 2 * u;
            for (int i = 0; i < MR; i++) {
                want += k->a[i * MK + r] * k->xmm[i * MN + c];
                bound += (fabs(k->xmm[i * MN + c]) + 1) * u / 2;
            }
            CHECK(fabs(k->xtm[r * MN + c] - want) <= bound);
        }
}

static void kernels_case(unsigned n, ag_field f)
{
    struct ttp_for_run d;
    ttp_for_run_start(&d);
    struct kernels *tfp = ag_malloc(sizeof(*tfp)), *ttp = ag_malloc(sizeof(*ttp));
    CHECK(tfp && ttp);
    kernels_fill(ttp);
    memcpy(tfp, ttp, sizeof(*ttp));
    struct party ps[MAX_PARTIES];
    ag_mpc_config cfg = {.field = f, .beaver_server = d.ch, .label = "ttp-test"};
    run_parties_cfg(n, &cfg, false, kernels_fn, ttp, ps, 0);
    for (unsigned i = 0; i < n; i++) {
        if (ps[i].rc != 0)
            FAIL("%u parties %s, party %u: %s", n, ag_field_name(f), i, ps[i].err);
        ttp->bytes[i] = cost_bytes(&ps[i]);
        ttp->rounds[i] = cost_rounds(&ps[i]);
    }
    kernels_check(ttp, f == AG_FM64 ? 18 : 26);
    /* the same program under the trusted first party: the same link cost */
    cfg.beaver_server = NULL;
    run_parties_cfg(n, &cfg, false, kernels_fn, tfp, ps, 0);
    for (unsigned i = 0; i < n; i++) {
        CHECK_OK(ps[i].rc);
        CHECK_EQ(cost_bytes(&ps[i]), ttp->bytes[i]);
        CHECK_EQ(cost_rounds(&ps[i]), ttp->rounds[i]);
    }
    kernels_check(tfp, f == AG_FM64 ? 18 : 26);
    /* rank 0 closed its session when it freed it */
    ag_beaver_server_stats st;
    ag_beaver_server_stats_get(d.b, &st);
    CHECK_EQ(st.sessions, 0);
    CHECK_EQ(st.sessions_total, 1);
    CHECK_EQ(st.registrations, n);
    CHECK(st.deals[AG__DEAL_MUL] > 0 && st.deals[AG__DEAL_AND] > 0 &&
          st.deals[AG__DEAL_RANDBIT] > 0 && st.deals[AG__DEAL_MATMUL] > 0 &&
          st.deals[AG__DEAL_MASK] == 1 && st.deals[AG__DEAL_MATMUL_FIXED] == 2);
    CHECK(n == 2 || st.deals[AG__DEAL_TRUNC] > 0);
    CHECK_EQ(st.refused, 0);
    ag_free(tfp);
    ag_free(ttp);
    ttp_for_run_stop(&d);
}

TEST_TIMEOUT(ttp_kernels_2_parties_fm64, 120)
{
    kernels_case(2, AG_FM64);
}

TEST_TIMEOUT(ttp_kernels_3_parties_fm64, 120)
{
    kernels_case(3, AG_FM64);
}

TEST_TIMEOUT(ttp_kernels_2_parties_fm128, 120)
{
    kernels_case(2, AG_FM128);
}

TEST_TIMEOUT(ttp_kernels_3_parties_fm128, 120)
{
    kernels_case(3, AG_FM128);
}

/* ---- triples, rank 0's view --------------------------------------------------- */

#define NT 65536 /* triples, more than one dealer window */

struct triples {
    uint64_t *a[MAX_PARTIES], *b[MAX_PARTIES], *c[MAX_PARTIES];
    bool rank0_has_seeds;
};

static int triples_fn(struct party *p)
{
    struct triples *t = party_ctx(p);
    if (p->rank == 0)
        t->rank0_has_seeds = p->m->dealer_all != NULL;
    /* an odd size first, so later requests start mid-block */
    uint64_t tmp[3][5];
    int rc = ag__beaver_mul(p->m, 5, tmp[0], tmp[1], tmp[2]);
    if (rc == 0)
        rc = ag__beaver_mul(p->m, NT, t->a[p->rank], t->b[p->rank], t->c[p->rank]);
    return rc;
}

TEST_TIMEOUT(ttp_triples_add_up_and_rank0_sees_uniform_shares, 120)
{
    struct ttp_for_run d;
    ttp_for_run_start(&d);
    struct triples t = {0};
    unsigned n = 3;
    for (unsigned i = 0; i < n; i++) {
        t.a[i] = ag_malloc(NT * 8);
        t.b[i] = ag_malloc(NT * 8);
        t.c[i] = ag_malloc(NT * 8);
        CHECK(t.a[i] && t.b[i] && t.c[i]);
    }
    struct party ps[MAX_PARTIES];
    ag_mpc_config cfg = {.field = AG_FM64, .beaver_server = d.ch};
    run_parties_cfg(n, &cfg, false, triples_fn, &t, ps, 0);
    for (unsigned i = 0; i < n; i++)
        if (ps[i].rc != 0)
            FAIL("party %u: %s", i, ps[i].err);
    CHECK(!t.rank0_has_seeds);
    for (size_t i = 0; i < NT; i++) {
        uint64_t a = 0, b = 0, c = 0;
        for (unsigned j = 0; j < n; j++) {
            a += t.a[j][i];
            b += t.b[j][i];
            c += t.c[j][i];
        }
        if (c != a * b)
            FAIL("triple %zu does not multiply", i);
    }
    /* rank 0's c_0 came from the dealer: its bytes are uniform (chi-square
     * with 255 degrees of freedom; 340 is beyond the 0.9999 quantile) */
    uint64_t hist[256] = {0};
    const uint8_t *c0 = (const uint8_t *)t.c[0];
    for (size_t i = 0; i < NT * 8; i++)
        hist[c0[i]]++;
    double want = NT * 8 / 256.0, chi = 0;
    for (int v = 0; v < 256; v++)
        chi += (hist[v] - want) * (hist[v] - want) / want;
    CHECK(chi < 340);
    for (unsigned i = 0; i < n; i++) {
        ag_free(t.a[i]);
        ag_free(t.b[i]);
        ag_free(t.c[i]);
    }
    ttp_for_run_stop(&d);
}

/* ---- what the dealer refuses ----------------------------------------------------- */

static int do_register(struct ttp_for_run *d, const uint8_t sid[16], unsigned rank, unsigned parties,
                       uint8_t seedbyte, char **message)
{
    uint8_t seed[16];
    memset(seed, seedbyte, sizeof(seed));
    Argot__Beaver__V1__RegisterRequest req = ARGOT__BEAVER__V1__REGISTER_REQUEST__INIT;
    req.session.data = (uint8_t *)sid;
    req.session.len = 16;
    req.rank = rank;
    req.parties = parties;
    req.field = ARGOT__BEAVER__V1__FIELD__FM64;
    req.seed.data = seed;
    req.seed.len = 16;
    Argot__Beaver__V1__RegisterResponse *resp = NULL;
    int st = argot__beaver__v1__dealer__register_seed__invoke(d->ch, &req, ag_deadline_in_ms(5000),
                                                              &resp, message);
    ag_rpc_msg_free(resp ? &resp->base : NULL);
    return st;
}

/* A MUL of 4 elements at positions pos; the status, *message. */
static int do_deal(struct ttp_for_run *d, const uint8_t sid[16], const uint64_t *pos, size_t npos,
                   char *message, size_t cap)
{
    Argot__Beaver__V1__DealRequest req = ARGOT__BEAVER__V1__DEAL_REQUEST__INIT;
    req.session.data = (uint8_t *)sid;
    req.session.len = 16;
    req.kind = ARGOT__BEAVER__V1__KIND__MUL;
    req.elements = 4;
    req.positions = (uint64_t *)pos;
    req.n_positions = npos;
    ag_rpc_call *c = argot__beaver__v1__dealer__deal__start(d->ch, ag_deadline_in_ms(5000));
    CHECK(c != NULL);
    CHECK_OK(argot__beaver__v1__dealer__deal__send_request(c, &req, 0));
    CHECK_OK(ag_rpc_call_close_send(c));
    Argot__Beaver__V1__DealChunk *chunk;
    size_t got = 0;
    while (argot__beaver__v1__dealer__deal__recv_response(c, &chunk) == 1) {
        got += chunk->data.len;
        ag_rpc_msg_free(&chunk->base);
    }
    const char *msg = NULL;
    int st = ag_rpc_call_status(c, &msg);
    snprintf(message, cap, "%s", msg ? msg : "");
    if (st == AG_RPC_OK)
        CHECK_EQ(got, 4 * 8); /* c_0 of 4 elements */
    ag_rpc_call_free(c);
    return st;
}

TEST_TIMEOUT(ttp_dealer_refuses_what_it_must, 60)
{
    struct ttp_for_run d;
    ttp_for_run_start(&d);
    uint8_t sid[16] = {1, 2, 3}, other[16] = {9};
    char *message = NULL, msg[512];
    uint64_t pos[3] = {0, 0, 0};

    CHECK_EQ(do_deal(&d, other, pos, 3, msg, sizeof(msg)), AG_RPC_NOT_FOUND);
    CHECK_EQ(do_register(&d, sid, 0, 3, 0xa0, &message), AG_RPC_OK);
    ag_free(message);
    message = NULL;
    /* the same seed again is a retry; another is refused */
    CHECK_EQ(do_register(&d, sid, 0, 3, 0xa0, &message), AG_RPC_OK);
    ag_free(message);
    message = NULL;
    CHECK_EQ(do_register(&d, sid, 0, 3, 0xa1, &message), AG_RPC_ALREADY_EXISTS);
    CHECK_CONTAINS(message, "rank 0");
    ag_free(message);
    message = NULL;
    /* a registration that disagrees on the party count */
    CHECK_EQ(do_register(&d, sid, 1, 2, 0xb0, &message), AG_RPC_INVALID_ARGUMENT);
    CHECK_CONTAINS(message, "3 parties");
    ag_free(message);
    message = NULL;
    CHECK_EQ(do_register(&d, sid, 5, 3, 0xb0, &message), AG_RPC_INVALID_ARGUMENT);
    ag_free(message);
    message = NULL;
    /* ranks 1 and 2 missing */
    CHECK_EQ(do_deal(&d, sid, pos, 3, msg, sizeof(msg)), AG_RPC_FAILED_PRECONDITION);
    CHECK_CONTAINS(msg, "ranks 1, 2 have not registered");
    CHECK_EQ(do_register(&d, sid, 1, 3, 0xb0, &message), AG_RPC_OK);
    ag_free(message);
    message = NULL;
    CHECK_EQ(do_deal(&d, sid, pos, 3, msg, sizeof(msg)), AG_RPC_FAILED_PRECONDITION);
    CHECK_CONTAINS(msg, "rank 2 has not registered");
    CHECK_EQ(do_register(&d, sid, 2, 3, 0xc0, &message), AG_RPC_OK);
    ag_free(message);
    message = NULL;
    /* positions for the wrong party count, then a good deal */
    CHECK_EQ(do_deal(&d, sid, pos, 2, msg, sizeof(msg)), AG_RPC_INVALID_ARGUMENT);
    CHECK_EQ(do_deal(&d, sid, pos, 3, msg, sizeof(msg)), AG_RPC_OK);
    /* the same range again: refused, naming the party */
    CHECK_EQ(do_deal(&d, sid, pos, 3, msg, sizeof(msg)), AG_RPC_INVALID_ARGUMENT);
    CHECK_CONTAINS(msg, "rank 0's stream position 0 is behind 4");
    /* after the range: fine (a 4-element MUL moves rank 0 by 2 blocks of
     * 16 bytes, the others by 3 x 2) */
    uint64_t after[3] = {4, 6, 6};
    CHECK_EQ(do_deal(&d, sid, after, 3, msg, sizeof(msg)), AG_RPC_OK);
    ag_beaver_server_stats st;
    ag_beaver_server_stats_get(d.b, &st);
    CHECK_EQ(st.sessions, 1);
    CHECK_EQ(st.deals[AG__DEAL_MUL], 2);
    CHECK(st.refused >= 7);
    ttp_for_run_stop(&d);
}

/* ---- a dealer that cannot be reached, a party without one ---------------------- */

static int setup_only(struct party *p)
{
    (void)p;
    return 0;
}

TEST_TIMEOUT(ttp_unreachable_dealer_fails_setup_naming_it, 60)
{
    /* a port nothing listens on: bind one, then close it */
    struct ttp_for_run d;
    ttp_for_run_start(&d);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ag_rpc_server_port(d.srv));
    ttp_for_run_stop(&d);
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    ag_rpc_channel *ch = ag_rpc_channel_new(addr, &co);
    CHECK(ch != NULL);
    struct party ps[MAX_PARTIES];
    ag_mpc_config cfg = {.field = AG_FM64, .beaver_server = ch, .beaver_timeout_ms = 3000};
    run_parties_cfg(2, &cfg, false, setup_only, NULL, ps, 10000);
    for (unsigned i = 0; i < 2; i++) {
        CHECK(ps[i].rc < 0);
        CHECK_CONTAINS(ps[i].err, "setup");
    }
    /* each party either failed to register itself (naming the dealer) or
     * was told by the other */
    CHECK(strstr(ps[0].err, "beaver server") || strstr(ps[1].err, "beaver server"));
    ag_rpc_channel_free(ch);
}

TEST_TIMEOUT(ttp_and_tfp_parties_do_not_mix, 60)
{
    struct ttp_for_run d;
    ttp_for_run_start(&d);
    ag_mpc_config cfg[2] = {{.field = AG_FM64, .beaver_server = d.ch}, {.field = AG_FM64}};
    struct party ps[MAX_PARTIES];
    run_parties_cfg(2, cfg, true, setup_only, NULL, ps, 10000);
    CHECK(ps[0].rc == AG_E_MPC_CONFIG);
    CHECK_CONTAINS(ps[0].err, "party bob uses the trusted-first-party Beaver dealer");
    CHECK(ps[1].rc == AG_E_MPC_CONFIG);
    CHECK_CONTAINS(ps[1].err, "party alice uses a trusted-third-party Beaver dealer");
    ttp_for_run_stop(&d);
}

/* ---- the dealer dies mid-job ------------------------------------------------------ */

struct dies {
    struct ttp_for_run *d;
};

static int dies_fn(struct party *p)
{
    struct dies *t = party_ctx(p);
    uint64_t a[3][64];
    int rc = ag__beaver_mul(p->m, 64, a[0], a[1], a[2]);
    if (rc < 0)
        return rc;
    /* every party has its first triples; rank 0 stops the dealer */
    if (p->rank == 0)
        ag_rpc_server_shutdown(t->d->srv, 0);
    ag_tensor x = {0}, z = {0};
    int64_t shape[1] = {64};
    rc = ag_tensor_init(&x, AG_FM64, AG_VIS_ASHARE, 1, shape);
    if (rc == 0)
        rc = ag_mpc_mul(p->m, &x, &x, &z);
    ag_tensor_cleanup(&x);
    ag_tensor_cleanup(&z);
    return rc;
}

TEST_TIMEOUT(ttp_dealer_gone_mid_job_fails_every_party_naming_it, 60)
{
    struct ttp_for_run d;
    ttp_for_run_start(&d);
    struct dies t = {&d};
    struct party ps[MAX_PARTIES];
    ag_mpc_config cfg = {.field = AG_FM64, .beaver_server = d.ch, .beaver_timeout_ms = 5000};
    uint64_t t0 = ag_now_ms();
    run_parties_cfg(3, &cfg, false, dies_fn, &t, ps, 20000);
    /* within the dealer call's deadline, not the link's timeout */
    CHECK(ag_now_ms() - t0 < 15000);
    CHECK(ps[0].rc < 0);
    CHECK_CONTAINS(ps[0].err, "mul: dealer: beaver server: deal: ");
    for (unsigned i = 1; i < 3; i++) {
        CHECK(ps[i].rc < 0);
        CHECK_CONTAINS(ps[i].err, "party alice failed: mul: dealer: beaver server");
    }
    ttp_for_run_stop(&d);
}
