/* Tests for src/mesh/balance.c: the balancers (RR, P2C, peak EWMA,
 * aperture), address updates, failure accrual, fail-fast, the admin JSON
 * and the retry budget. Everything runs on a simulated clock with a seeded
 * generator (ag__lb_conf's now_ms and rand), so every count is
 * reproducible. Endpoints are 127.0.0.1:8000+i, so an endpoint's index is
 * its port - 8000 whatever order the balancer keeps. */
#include <jansson.h>
#include <math.h>

#include "mesh/balance.h"
#include "test.h"

typedef struct sim {
    uint64_t now; /* ms */
    uint64_t rng;
} sim;

static uint64_t sim_now(void *ud)
{
    return ((sim *)ud)->now;
}

static uint64_t sim_rand(void *ud)
{
    sim *s = ud;
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static ag__lb *lb_make(sim *s, ag__lb_kind kind)
{
    ag__lb_conf c;
    ag__lb_conf_init(&c);
    c.kind = kind;
    c.now_ms = sim_now;
    c.rand = sim_rand;
    c.ud = s;
    return ag__lb_new(&c);
}

/* n endpoints 127.0.0.1:8000+id[i] with weights w (NULL: all 1). */
static int lb_set(ag__lb *lb, size_t n, const unsigned *id, const double *w, ag__ep_gone_fn gone,
                  void *ud)
{
    ag__addr a[16];
    CHECK(n <= AG_ARRAY_LEN(a));
    for (size_t i = 0; i < n; i++) {
        a[i].host = (char *)"127.0.0.1";
        a[i].port = (uint16_t)(8000 + (id ? id[i] : i));
        a[i].weight = w ? w[i] : 1.0;
    }
    return ag__lb_update(lb, a, n, gone, ud);
}

static unsigned ep_id(const ag__ep *ep)
{
    return (unsigned)ep->addr.port - 8000;
}

/* The endpoint with id, NULL if none. */
static ag__ep *ep_by_id(const ag__lb *lb, unsigned id)
{
    for (size_t i = 0; i < ag__lb_size(lb); i++)
        if (ep_id(ag__lb_get(lb, i)) == id)
            return ag__lb_get(lb, i);
    return NULL;
}

/* Picks and completes at once (no load), n times; counts by id. */
static void pick_done(ag__lb *lb, unsigned n, unsigned *count, const ag__ep *avoid)
{
    for (unsigned i = 0; i < n; i++) {
        ag__ep *ep = ag__lb_pick(lb, avoid);
        CHECK(ep != NULL);
        count[ep_id(ep)]++;
        ag__lb_done(lb, ep, 1.0, AG__OUT_SUCCESS);
    }
}

/* ---- a small discrete-event simulation of traffic --------------------------- */

#define SIM_MAX_INFLIGHT 4096

typedef struct traffic {
    ag__ep *ep[SIM_MAX_INFLIGHT];
    uint64_t end[SIM_MAX_INFLIGHT];
    size_t n;
    unsigned latency_ms[16]; /* by endpoint id */
    unsigned count[16];      /* picks by id */
} traffic;

/* Runs ticks of 1 ms: requests whose latency passed complete, then
 * per_tick new requests are picked. */
static void traffic_run(sim *s, ag__lb *lb, traffic *t, unsigned ticks, unsigned per_tick)
{
    for (unsigned k = 0; k < ticks; k++) {
        s->now++;
        for (size_t i = 0; i < t->n;) {
            if (t->end[i] <= s->now) {
                ag__lb_done(lb, t->ep[i], (double)t->latency_ms[ep_id(t->ep[i])], AG__OUT_SUCCESS);
                t->n--;
                t->ep[i] = t->ep[t->n];
                t->end[i] = t->end[t->n];
            } else {
                i++;
            }
        }
        for (unsigned j = 0; j < per_tick; j++) {
            ag__ep *ep = ag__lb_pick(lb, NULL);
            CHECK(ep != NULL);
            CHECK(t->n < SIM_MAX_INFLIGHT);
            t->count[ep_id(ep)]++;
            t->ep[t->n] = ep;
            t->end[t->n] = s->now + t->latency_ms[ep_id(ep)];
            t->n++;
        }
    }
}

/* Completes everything still in flight. */
static void traffic_drain(ag__lb *lb, traffic *t)
{
    for (size_t i = 0; i < t->n; i++)
        ag__lb_done(lb, t->ep[i], 1.0, AG__OUT_IGNORED);
    t->n = 0;
}

/* ---- configuration ---------------------------------------------------------- */

TEST(balance_conf_and_names)
{
    ag__lb_conf c;
    ag__lb_conf_init(&c);
    CHECK_EQ(c.kind, AG__LB_EWMA);
    CHECK_U64_EQ(c.decay_ms, 10000);
    CHECK(c.low_load == 0.5 && c.high_load == 2.0);
    CHECK_EQ(c.min_aperture, 1);
    CHECK_EQ(c.failures, 5);
    CHECK_U64_EQ(c.backoff_min_ms, 5000);
    CHECK_U64_EQ(c.backoff_max_ms, 300000);
    CHECK(c.now_ms == NULL && c.rand == NULL);

    ag__lb_kind k;
    CHECK_OK(ag__lb_kind_parse("roundRobin", &k));
    CHECK_EQ(k, AG__LB_RR);
    CHECK_OK(ag__lb_kind_parse("rr", &k));
    CHECK_EQ(k, AG__LB_RR);
    CHECK_OK(ag__lb_kind_parse("p2c", &k));
    CHECK_EQ(k, AG__LB_P2C);
    CHECK_OK(ag__lb_kind_parse("ewma", &k));
    CHECK_EQ(k, AG__LB_EWMA);
    CHECK_OK(ag__lb_kind_parse("aperture", &k));
    CHECK_EQ(k, AG__LB_APERTURE);
    CHECK_EQ(ag__lb_kind_parse("heap", &k), AG_E_INVAL);
    CHECK_EQ(ag__lb_kind_parse("", &k), AG_E_INVAL);
    CHECK_STR_EQ(ag__lb_kind_name(AG__LB_RR), "roundRobin");
    CHECK_STR_EQ(ag__lb_kind_name(AG__LB_APERTURE), "aperture");
    CHECK_STR_EQ(ag__ep_state_name(AG__EP_OPEN), "open");
    CHECK_STR_EQ(ag__ep_state_name(AG__EP_DOWN), "down");
    CHECK_STR_EQ(ag__ep_state_name(AG__EP_DEAD), "dead");
    CHECK_STR_EQ(ag__ep_state_name(AG__EP_PROBING), "probing");
}

TEST(balance_empty_and_real_clock)
{
    /* No clock or generator given: ag_now_ms and the internal PRNG. */
    ag__lb_conf c;
    ag__lb_conf_init(&c);
    ag__lb *lb = ag__lb_new(&c);
    CHECK(lb != NULL);
    CHECK_EQ(ag__lb_size(lb), 0);
    CHECK_EQ(ag__lb_available(lb), 0);
    CHECK(ag__lb_pick(lb, NULL) == NULL);
    CHECK(ag__lb_get(lb, 0) == NULL);
    CHECK_OK(lb_set(lb, 3, NULL, NULL, NULL, NULL));
    unsigned count[16] = {0};
    pick_done(lb, 300, count, NULL);
    CHECK(count[0] > 0 && count[1] > 0 && count[2] > 0);
    ag__lb_free(lb);
    ag__lb_free(NULL);
}

/* ---- round robin ------------------------------------------------------------ */

TEST(balance_rr_smooth_weighted_order)
{
    sim s = {1000, 1};
    ag__lb *lb = lb_make(&s, AG__LB_RR);
    double w[] = {3, 1};
    CHECK_OK(lb_set(lb, 2, NULL, w, NULL, NULL));
    /* nginx's smooth WRR: a a b a, repeated; never a burst of b */
    const char *want = "aabaaabaaaba";
    for (size_t i = 0; want[i]; i++) {
        ag__ep *ep = ag__lb_pick(lb, NULL);
        CHECK_EQ("ab"[ep_id(ep)], want[i]);
        ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
    }
    unsigned count[16] = {0};
    pick_done(lb, 4000, count, NULL);
    CHECK_EQ(count[0], 3000);
    CHECK_EQ(count[1], 1000);

    /* Weights change in place: now 1:3 (each endpoint re-placed at the
     * current virtual time, so no catching up). */
    double w2[] = {1, 3};
    CHECK_OK(lb_set(lb, 2, NULL, w2, NULL, NULL));
    memset(count, 0, sizeof(count));
    pick_done(lb, 4000, count, NULL);
    CHECK(count[0] >= 999 && count[0] <= 1001);
    CHECK_EQ(count[0] + count[1], 4000);

    /* Fractional weights: 1.5 : 0.5 is 3:1 again. */
    double w3[] = {1.5, 0.5};
    CHECK_OK(lb_set(lb, 2, NULL, w3, NULL, NULL));
    memset(count, 0, sizeof(count));
    pick_done(lb, 4001, count, NULL);
    CHECK(count[0] >= 2999 && count[0] <= 3002);
    ag__lb_free(lb);
}

TEST(balance_rr_skips_down_and_dead)
{
    sim s = {1000, 2};
    ag__lb *lb = lb_make(&s, AG__LB_RR);
    CHECK_OK(lb_set(lb, 3, NULL, NULL, NULL, NULL));
    ag__lb_conn_failed(lb, ep_by_id(lb, 1));
    CHECK_EQ(ag__lb_available(lb), 2);
    unsigned count[16] = {0};
    pick_done(lb, 1000, count, NULL);
    CHECK_EQ(count[1], 0);
    CHECK_EQ(count[0], 500);
    CHECK_EQ(count[2], 500);

    /* c dies of 5 failures: only a is left */
    ag__ep *c = ep_by_id(lb, 2);
    for (int i = 0; i < 5; i++) {
        ag__ep *ep;
        do { /* RR reaches c within two picks; a's requests complete fine */
            ep = ag__lb_pick(lb, NULL);
            if (ep != c)
                ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
        } while (ep != c);
        ag__lb_done(lb, c, 1, AG__OUT_FAILURE);
    }
    CHECK_EQ(c->state, AG__EP_DEAD);
    memset(count, 0, sizeof(count));
    pick_done(lb, 100, count, NULL);
    CHECK_EQ(count[0], 100);

    ag__lb_conn_ok(lb, ep_by_id(lb, 1));
    CHECK_EQ(ep_by_id(lb, 1)->state, AG__EP_OPEN);
    /* back after 1100 picks without it: its share, not a burst to catch up */
    memset(count, 0, sizeof(count));
    pick_done(lb, 100, count, NULL);
    CHECK_EQ(count[0], 50);
    CHECK_EQ(count[1], 50);
    ag__lb_free(lb);
}

/* ---- P2C least loaded ------------------------------------------------------- */

TEST(balance_p2c_loaded_endpoint_picked_less)
{
    sim s = {1000, 3};
    ag__lb *lb = lb_make(&s, AG__LB_P2C);
    CHECK_OK(lb_set(lb, 4, NULL, NULL, NULL, NULL));
    /* Load endpoint 0 with 20 outstanding requests (the others down for
     * the moment, so that every pick lands on it). */
    ag__ep *held[20];
    unsigned nheld = 0;
    for (unsigned i = 1; i < 4; i++)
        ag__lb_conn_failed(lb, ep_by_id(lb, i));
    while (nheld < 20)
        held[nheld++] = ag__lb_pick(lb, NULL);
    for (unsigned i = 1; i < 4; i++)
        ag__lb_conn_ok(lb, ep_by_id(lb, i));
    CHECK_EQ(ep_by_id(lb, 0)->outstanding, 20);

    unsigned count[16] = {0};
    pick_done(lb, 9000, count, NULL);
    /* 0 loses every comparison: the others never hold more than 1 */
    CHECK_EQ(count[0], 0);
    for (unsigned i = 1; i < 4; i++)
        CHECK(count[i] > 2700 && count[i] < 3300);

    /* Under real load, 0 is still picked far less than its fair share. */
    traffic t = {.n = 0};
    for (unsigned i = 0; i < 4; i++)
        t.latency_ms[i] = 8;
    traffic_run(&s, lb, &t, 2000, 2); /* ~16 in flight over 4 */
    CHECK(t.count[0] < t.count[1] / 4);
    traffic_drain(lb, &t);
    for (unsigned i = 0; i < nheld; i++)
        ag__lb_done(lb, held[i], 1, AG__OUT_SUCCESS);
    CHECK_EQ(ep_by_id(lb, 0)->outstanding, 0);
    ag__lb_free(lb);
}

TEST(balance_p2c_weighted_share)
{
    sim s = {1000, 4};
    ag__lb *lb = lb_make(&s, AG__LB_P2C);
    double w[] = {1, 2, 3, 4};
    CHECK_OK(lb_set(lb, 4, NULL, w, NULL, NULL));
    /* idle: the first draw (by weight) wins every tie */
    unsigned count[16] = {0};
    pick_done(lb, 40000, count, NULL);
    for (unsigned i = 0; i < 4; i++) {
        double share = count[i] / 40000.0;
        if (fabs(share - w[i] / 10) > 0.02)
            FAIL("idle: endpoint %u share %.3f, want %.3f", i, share, w[i] / 10);
    }
    /* loaded (~40 in flight, equal latencies): outstanding / weight evens
     * out, so throughput follows weight */
    traffic t = {.n = 0};
    for (unsigned i = 0; i < 4; i++)
        t.latency_ms[i] = 10;
    traffic_run(&s, lb, &t, 10000, 4);
    for (unsigned i = 0; i < 4; i++) {
        double share = t.count[i] / 40000.0;
        if (fabs(share - w[i] / 10) > 0.03)
            FAIL("loaded: endpoint %u share %.3f, want %.3f", i, share, w[i] / 10);
    }
    traffic_drain(lb, &t);
    ag__lb_free(lb);
}

/* ---- peak EWMA -------------------------------------------------------------- */

TEST(balance_ewma_slow_endpoint_small_share_then_recovers)
{
    sim s = {1000, 5};
    ag__lb *lb = lb_make(&s, AG__LB_EWMA);
    CHECK_OK(lb_set(lb, 3, NULL, NULL, NULL, NULL));
    traffic t = {.n = 0};
    t.latency_ms[0] = 1;
    t.latency_ms[1] = 1;
    t.latency_ms[2] = 100;
    traffic_run(&s, lb, &t, 20000, 2);
    unsigned total = t.count[0] + t.count[1] + t.count[2];
    if (t.count[2] * 50 > total)
        FAIL("slow endpoint got %u of %u", t.count[2], total);
    CHECK(ep_by_id(lb, 2)->ewma_ms > 50);

    /* It becomes fast: it is tried again as its cost decays, and its share
     * comes back once its EWMA falls. */
    t.latency_ms[2] = 1;
    memset(t.count, 0, sizeof(t.count));
    /* Its cost decays towards the others' in a few decay constants (it is
     * probed), then its EWMA falls to 1 ms with each answer; after 160 s it
     * has its share back. */
    unsigned share[8];
    for (unsigned k = 0; k < 8; k++) { /* spans of 20 s */
        memset(t.count, 0, sizeof(t.count));
        traffic_run(&s, lb, &t, 20000, 2);
        share[k] = t.count[2];
    }
    CHECK(share[1] > 1000); /* probed back within 40 s */
    CHECK(share[7] > share[1] && share[7] > share[3]);
    total = t.count[0] + t.count[1] + t.count[2];
    if (t.count[2] * 4 < total)
        FAIL("recovered endpoint got %u of %u", t.count[2], total);
    CHECK(ep_by_id(lb, 2)->ewma_ms < 2);
    traffic_drain(lb, &t);
    ag__lb_free(lb);
}

TEST(balance_ewma_decay_constant_and_peak)
{
    sim s = {1000, 6};
    ag__lb *lb = lb_make(&s, AG__LB_EWMA);
    CHECK_OK(lb_set(lb, 1, NULL, NULL, NULL, NULL));
    ag__ep *ep = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, ep, 100, AG__OUT_SUCCESS);
    CHECK(ep->ewma_ms == 100); /* the first latency is taken as it is */

    /* One decay constant later, a fast answer: 100 e^-1 + 1 (1 - e^-1). */
    s.now += 10000;
    ep = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
    double want = 100 * exp(-1) + 1 * (1 - exp(-1));
    if (fabs(ep->ewma_ms - want) > 1e-9)
        FAIL("ewma %.6f after decay_ms, want %.6f", ep->ewma_ms, want);
    CHECK(fabs((ep->ewma_ms - 1) / 99 - 0.3679) < 0.001);

    /* Half a constant: the excess shrinks by e^-0.5. */
    s.now += 5000;
    double before = ep->ewma_ms;
    ep = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
    CHECK(fabs((ep->ewma_ms - 1) - (before - 1) * exp(-0.5)) < 1e-9);

    /* Settle at 1 ms with answers every ms, then one slow answer: the
     * EWMA jumps to it at once (peak-sensitive). */
    for (int i = 0; i < 200000; i++) {
        s.now++;
        ep = ag__lb_pick(lb, NULL);
        ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
    }
    CHECK(ep->ewma_ms < 1.001);
    ep = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, ep, 250, AG__OUT_SUCCESS);
    CHECK(ep->ewma_ms == 250);
    /* an answer right after barely moves it down (no time has passed) */
    ep = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
    CHECK(ep->ewma_ms == 250);
    /* failures are latencies too; ignored requests are not */
    s.now += 10;
    ep = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, ep, 900, AG__OUT_IGNORED);
    CHECK(ep->ewma_ms == 250);
    ep = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, ep, 900, AG__OUT_FAILURE);
    CHECK(ep->ewma_ms == 900);
    /* but a fast failure does not make it look fast */
    s.now += 100000;
    ep = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, ep, 0.5, AG__OUT_FAILURE);
    CHECK(ep->ewma_ms == 900);
    ag__lb_free(lb);

    /* nor does one on an endpoint with no latency yet */
    lb = lb_make(&s, AG__LB_EWMA);
    CHECK_OK(lb_set(lb, 1, NULL, NULL, NULL, NULL));
    ep = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, ep, 0.5, AG__OUT_FAILURE);
    CHECK(ep->ewma_ms == 0);
    ep = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, ep, 3000, AG__OUT_FAILURE); /* slower than the penalty: kept */
    CHECK(ep->ewma_ms == 3000);
    ag__lb_free(lb);
}

TEST(balance_ewma_peak_steers_away_at_once)
{
    sim s = {1000, 7};
    ag__lb *lb = lb_make(&s, AG__LB_EWMA);
    CHECK_OK(lb_set(lb, 2, NULL, NULL, NULL, NULL));
    traffic t = {.n = 0};
    t.latency_ms[0] = 2;
    t.latency_ms[1] = 2;
    traffic_run(&s, lb, &t, 2000, 1);
    traffic_drain(lb, &t);
    CHECK(t.count[0] > 500 && t.count[1] > 500);
    /* one slow answer from 0: the next picks all go to 1 */
    ag__ep *a = ep_by_id(lb, 0);
    ag__ep *ep;
    do {
        ep = ag__lb_pick(lb, NULL);
        if (ep != a)
            ag__lb_done(lb, ep, 2, AG__OUT_SUCCESS);
    } while (ep != a);
    ag__lb_done(lb, a, 200, AG__OUT_SUCCESS);
    unsigned count[16] = {0};
    for (int i = 0; i < 20; i++) {
        s.now++;
        ep = ag__lb_pick(lb, NULL);
        count[ep_id(ep)]++;
        ag__lb_done(lb, ep, 2, AG__OUT_SUCCESS);
    }
    CHECK_EQ(count[0], 0);
    ag__lb_free(lb);
}

TEST(balance_ewma_penalty_for_new_endpoints)
{
    sim s = {1000, 8};
    ag__lb *lb = lb_make(&s, AG__LB_EWMA);
    unsigned ids_a[] = {0};
    CHECK_OK(lb_set(lb, 1, ids_a, NULL, NULL, NULL));
    ag__ep *a = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, a, 10, AG__OUT_SUCCESS);
    unsigned ids_ab[] = {0, 1};
    CHECK_OK(lb_set(lb, 2, ids_ab, NULL, NULL, NULL));
    ag__ep *b = ep_by_id(lb, 1);
    CHECK(ep_by_id(lb, 0) == a);
    /* b has no latency: idle, it costs 0 and is tried first ... */
    ag__ep *first = ag__lb_pick(lb, NULL);
    CHECK(first == b);
    /* ... but with one request out it costs 1 s: a takes the next 50 (its
     * cost is 10 ms x (outstanding + 1)) */
    ag__ep *held[50];
    for (int i = 0; i < 50; i++) {
        held[i] = ag__lb_pick(lb, NULL);
        CHECK(held[i] == a);
    }
    CHECK_EQ(b->outstanding, 1);
    /* b answers in 5 ms: now the cheaper by far */
    ag__lb_done(lb, b, 5, AG__OUT_SUCCESS);
    ag__ep *ep = ag__lb_pick(lb, NULL);
    CHECK(ep == b);
    ag__lb_done(lb, ep, 5, AG__OUT_SUCCESS);
    for (int i = 0; i < 50; i++)
        ag__lb_done(lb, held[i], 10, AG__OUT_SUCCESS);
    ag__lb_free(lb);
}

/* ---- aperture --------------------------------------------------------------- */

static unsigned distinct(const unsigned *count, unsigned n)
{
    unsigned d = 0;
    for (unsigned i = 0; i < n; i++)
        d += count[i] > 0;
    return d;
}

TEST(balance_aperture_grows_and_shrinks)
{
    sim s = {1000, 9};
    ag__lb *lb = lb_make(&s, AG__LB_APERTURE);
    CHECK_OK(lb_set(lb, 10, NULL, NULL, NULL, NULL));
    /* idle: the window stays at min_aperture, one endpoint */
    unsigned count[16] = {0};
    pick_done(lb, 200, count, NULL);
    CHECK_EQ(distinct(count, 10), 1);
    unsigned first = 0;
    while (count[first] == 0)
        first++;

    /* 8 requests always in flight: the window widens while the load per
     * endpoint in it exceeds 2 (8/1, 8/2, 8/3), then holds at 4 (8/4 = 2
     * is not above high_load, and above low_load) */
    ag__ep *ring[8];
    unsigned loaded[16] = {0};
    for (unsigned i = 0; i < 8; i++) {
        ring[i] = ag__lb_pick(lb, NULL);
        loaded[ep_id(ring[i])]++;
    }
    for (unsigned i = 0; i < 2000; i++) {
        ag__ep *ep = ag__lb_pick(lb, NULL);
        loaded[ep_id(ep)]++;
        ag__lb_done(lb, ring[i % 8], 1, AG__OUT_SUCCESS);
        ring[i % 8] = ep;
    }
    CHECK_EQ(distinct(loaded, 10), 4);
    CHECK(loaded[first] > 0);
    /* the load is spread over the window by P2C */
    for (unsigned i = 0; i < 10; i++)
        CHECK(loaded[i] == 0 || loaded[i] > 300);

    /* the load goes: the window narrows back to the same first endpoint */
    for (unsigned i = 0; i < 8; i++)
        ag__lb_done(lb, ring[i], 1, AG__OUT_SUCCESS);
    memset(count, 0, sizeof(count));
    pick_done(lb, 10, count, NULL);
    memset(count, 0, sizeof(count));
    pick_done(lb, 200, count, NULL);
    CHECK_EQ(distinct(count, 10), 1);
    CHECK_EQ(count[first], 200);

    /* the window's endpoint goes down: the next in the order takes over */
    ag__lb_conn_failed(lb, ep_by_id(lb, first));
    memset(count, 0, sizeof(count));
    pick_done(lb, 200, count, NULL);
    CHECK_EQ(distinct(count, 10), 1);
    CHECK_EQ(count[first], 0);
    ag__lb_free(lb);
}

TEST(balance_aperture_min_and_all)
{
    sim s = {1000, 10};
    ag__lb_conf c;
    ag__lb_conf_init(&c);
    c.kind = AG__LB_APERTURE;
    c.min_aperture = 3;
    c.now_ms = sim_now;
    c.rand = sim_rand;
    c.ud = &s;
    ag__lb *lb = ag__lb_new(&c);
    CHECK_OK(lb_set(lb, 6, NULL, NULL, NULL, NULL));
    unsigned count[16] = {0};
    pick_done(lb, 3000, count, NULL);
    CHECK_EQ(distinct(count, 6), 3); /* never below min_aperture */

    /* a heavy load opens every endpoint, and no more */
    ag__ep *held[100];
    memset(count, 0, sizeof(count));
    for (unsigned i = 0; i < 100; i++) {
        held[i] = ag__lb_pick(lb, NULL);
        count[ep_id(held[i])]++;
    }
    CHECK_EQ(distinct(count, 6), 6);
    for (unsigned i = 0; i < 100; i++)
        ag__lb_done(lb, held[i], 1, AG__OUT_SUCCESS);
    ag__lb_free(lb);
}

/* ---- updates ---------------------------------------------------------------- */

typedef struct gone_log {
    ag__ep *ep[512];
    unsigned n;
} gone_log;

static void on_gone(void *ud, ag__ep *ep)
{
    gone_log *g = ud;
    CHECK(ep->removed);
    CHECK(g->n < AG_ARRAY_LEN(g->ep));
    g->ep[g->n++] = ep;
}

/* gone that releases at once when nothing is outstanding (as the proxy
 * does). */
typedef struct release_ctx {
    ag__lb *lb;
    unsigned released;
} release_ctx;

static void on_gone_release(void *ud, ag__ep *ep)
{
    release_ctx *r = ud;
    if (ep->outstanding == 0) {
        ag__lb_release(r->lb, ep);
        r->released++;
    }
}

TEST(balance_update_keeps_state_and_retires)
{
    sim s = {1000, 11};
    ag__lb *lb = lb_make(&s, AG__LB_RR);
    unsigned abc[] = {0, 1, 2};
    CHECK_OK(lb_set(lb, 3, abc, NULL, NULL, NULL));
    ag__ep *a = ep_by_id(lb, 0), *b = ep_by_id(lb, 1);
    /* a: a request in flight; b: two failures and some history */
    ag__ep *ep = ag__lb_pick(lb, NULL);
    CHECK(ep == a);
    ep = ag__lb_pick(lb, NULL);
    CHECK(ep == b);
    ag__lb_done(lb, b, 7, AG__OUT_FAILURE);
    ep = ag__lb_pick(lb, NULL); /* c */
    ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
    ep = ag__lb_pick(lb, NULL); /* a again: RR ignores load */
    CHECK(ep == a);
    ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
    ep = ag__lb_pick(lb, NULL);
    CHECK(ep == b);
    ag__lb_done(lb, b, 7, AG__OUT_FAILURE);
    CHECK_EQ(b->consecutive_failures, 2);

    /* b stays with weight 2, c stays, d is new, a leaves */
    gone_log g = {.n = 0};
    unsigned bcd[] = {1, 2, 3};
    double w[] = {2, 1, 1};
    CHECK_OK(lb_set(lb, 3, bcd, w, on_gone, &g));
    CHECK_EQ(ag__lb_size(lb), 3);
    CHECK(ep_by_id(lb, 1) == b);
    CHECK_EQ(b->consecutive_failures, 2);
    CHECK_U64_EQ(b->requests, 2);
    CHECK_U64_EQ(b->failures, 2);
    CHECK_EQ(a->outstanding, 1);
    CHECK(b->addr.weight == 2);
    ag__ep *d = ep_by_id(lb, 3);
    CHECK(d != NULL && d->state == AG__EP_OPEN && d->requests == 0 && !d->removed);
    CHECK(ep_by_id(lb, 0) == NULL);
    CHECK_EQ(g.n, 1);
    CHECK(g.ep[0] == a && a->removed && a->outstanding == 1);
    CHECK_EQ(ag__lb_available(lb), 3);

    /* a is never picked again; the weights show in the order */
    unsigned count[16] = {0};
    pick_done(lb, 400, count, NULL);
    CHECK_EQ(count[0], 0);
    CHECK_EQ(count[1], 200);
    CHECK_EQ(count[2], 100);
    CHECK_EQ(count[3], 100);
    /* a retry that avoids a removed endpoint is fine */
    ep = ag__lb_pick(lb, a);
    CHECK(ep != a);
    ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);

    /* the same list again: nobody is gone twice */
    CHECK_OK(lb_set(lb, 3, bcd, w, on_gone, &g));
    CHECK_EQ(g.n, 1);
    /* a's last request ends (its outcome does not touch accrual), then the
     * proxy releases it */
    ag__lb_done(lb, a, 1, AG__OUT_FAILURE);
    CHECK_EQ(a->outstanding, 0);
    ag__lb_release(lb, a);

    /* duplicates count once */
    unsigned dup[] = {2, 3, 2, 3, 3};
    CHECK_OK(lb_set(lb, 5, dup, NULL, on_gone, &g));
    CHECK_EQ(ag__lb_size(lb), 2);
    CHECK_EQ(g.n, 2);
    CHECK(g.ep[1] == b);
    ag__lb_release(lb, b);

    /* everything goes; gone may release at once */
    release_ctx r = {lb, 0};
    CHECK_OK(ag__lb_update(lb, NULL, 0, on_gone_release, &r));
    CHECK_EQ(r.released, 2);
    CHECK_EQ(ag__lb_size(lb), 0);
    CHECK(ag__lb_pick(lb, NULL) == NULL);
    ag__lb_free(lb);
}

TEST(balance_free_takes_unreleased_endpoints)
{
    sim s = {1000, 12};
    ag__lb *lb = lb_make(&s, AG__LB_P2C);
    CHECK_OK(lb_set(lb, 3, NULL, NULL, NULL, NULL));
    CHECK_OK(lb_set(lb, 1, NULL, NULL, NULL, NULL)); /* two removed, never released */
    CHECK_EQ(ag__lb_size(lb), 1);
    ag__lb_free(lb); /* the leak check of the runner judges */
}

TEST_FM(balance_update_failmalloc)
{
    sim s = {1000, 13};
    gone_log g = {.n = 0};
    ag__lb *lb = lb_make(&s, AG__LB_APERTURE);
    FM_NEW(lb);
    unsigned abc[] = {0, 1, 2};
    FM_TRY(lb_set(lb, 3, abc, NULL, on_gone, &g), 0);
    ag__ep *before[3];
    for (size_t i = 0; i < 3; i++)
        before[i] = ag__lb_get(lb, i);
    ag__ep *held = ag__lb_pick(lb, NULL);
    CHECK(held != NULL);

    unsigned bcde[] = {1, 2, 3, 4};
    double w[] = {5, 1, 1, 1};
    int rc = lb_set(lb, 4, bcde, w, on_gone, &g);
    if (rc == AG_E_NOMEM && ag_alloc_failed()) {
        /* nothing changed: same endpoints, order, weights, no callback */
        CHECK_EQ(ag__lb_size(lb), 3);
        for (size_t i = 0; i < 3; i++) {
            CHECK(ag__lb_get(lb, i) == before[i]);
            CHECK(before[i]->addr.weight == 1);
            CHECK(!before[i]->removed);
        }
        CHECK_EQ(g.n, 0);
        CHECK_EQ(ag__lb_available(lb), 3);
        ag__lb_done(lb, held, 1, AG__OUT_SUCCESS);
        goto out;
    }
    CHECK_OK(rc);
    CHECK_EQ(ag__lb_size(lb), 4);
    CHECK(ep_by_id(lb, 1)->addr.weight == 5);
    CHECK_EQ(g.n, 1);
    ag__lb_done(lb, held, 1, AG__OUT_SUCCESS);
out:
    ag__lb_free(lb);
}

/* ---- failure accrual -------------------------------------------------------- */

/* Fails one request on ep (the only endpoint, or forced by picking). */
static void fail_once(ag__lb *lb, ag__ep *want)
{
    ag__ep *ep;
    for (;;) {
        ep = ag__lb_pick(lb, NULL);
        CHECK(ep != NULL);
        if (ep == want)
            break;
        ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
    }
    ag__lb_done(lb, ep, 1, AG__OUT_FAILURE);
}

TEST(balance_accrual_dead_after_consecutive_failures)
{
    sim s = {1000, 14};
    ag__lb *lb = lb_make(&s, AG__LB_P2C);
    CHECK_OK(lb_set(lb, 1, NULL, NULL, NULL, NULL));
    ag__ep *a = ag__lb_get(lb, 0);
    for (int i = 0; i < 4; i++)
        fail_once(lb, a);
    CHECK_EQ(a->state, AG__EP_OPEN);
    CHECK_EQ(a->consecutive_failures, 4);
    /* a success resets the count */
    ag__ep *ep = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
    CHECK_EQ(a->consecutive_failures, 0);
    /* ignored requests count neither way */
    for (int i = 0; i < 4; i++)
        fail_once(lb, a);
    ep = ag__lb_pick(lb, NULL);
    ag__lb_done(lb, ep, 1, AG__OUT_IGNORED);
    CHECK_EQ(a->consecutive_failures, 4);
    CHECK_EQ(a->state, AG__EP_OPEN);
    fail_once(lb, a);
    CHECK_EQ(a->state, AG__EP_DEAD);
    CHECK(a->dead_until_ms >= s.now + 2500 && a->dead_until_ms <= s.now + 5000);
    CHECK(ag__lb_pick(lb, NULL) == NULL);
    CHECK_EQ(ag__lb_available(lb), 0);
    CHECK_U64_EQ(a->successes, 1);
    CHECK_U64_EQ(a->failures, 9);
    CHECK_U64_EQ(a->requests, 11);
    ag__lb_free(lb);
}

TEST(balance_accrual_backoff_probe_cycle)
{
    sim s = {1000, 15};
    ag__lb *lb = lb_make(&s, AG__LB_EWMA);
    CHECK_OK(lb_set(lb, 1, NULL, NULL, NULL, NULL));
    ag__ep *a = ag__lb_get(lb, 0);
    for (int i = 0; i < 5; i++)
        fail_once(lb, a);
    uint64_t d = 5000;
    uint64_t want[] = {10000, 20000, 40000, 80000, 160000, 300000, 300000, 300000};
    for (size_t k = 0; k <= AG_ARRAY_LEN(want); k++) {
        CHECK_EQ(a->state, AG__EP_DEAD);
        uint64_t delay = a->dead_until_ms - s.now;
        if (delay < d / 2 || delay > d)
            FAIL("backoff %zu: %" PRIu64 " ms, want [%" PRIu64 ", %" PRIu64 "]", k, delay, d / 2,
                 d);
        /* not a ms early */
        s.now = a->dead_until_ms - 1;
        CHECK(ag__lb_pick(lb, NULL) == NULL);
        CHECK_EQ(ag__lb_available(lb), 0);
        s.now++;
        CHECK_EQ(ag__lb_available(lb), 1);
        ag__ep *probe = ag__lb_pick(lb, NULL);
        CHECK(probe == a);
        CHECK_EQ(a->state, AG__EP_PROBING);
        /* one request at a time */
        CHECK(ag__lb_pick(lb, NULL) == NULL);
        CHECK_EQ(ag__lb_available(lb), 0);
        if (k == AG_ARRAY_LEN(want))
            break;
        ag__lb_done(lb, a, 1, AG__OUT_FAILURE);
        d = want[k];
    }
    /* the probe succeeds: OPEN, and the backoff starts over at 5 s */
    ag__lb_done(lb, a, 1, AG__OUT_SUCCESS);
    CHECK_EQ(a->state, AG__EP_OPEN);
    CHECK_EQ(a->consecutive_failures, 0);
    for (int i = 0; i < 5; i++)
        fail_once(lb, a);
    CHECK_EQ(a->state, AG__EP_DEAD);
    CHECK(a->dead_until_ms - s.now >= 2500 && a->dead_until_ms - s.now <= 5000);
    ag__lb_free(lb);
}

TEST(balance_accrual_jitter_spreads)
{
    sim s = {1000, 16};
    ag__lb *lb = lb_make(&s, AG__LB_RR);
    CHECK_OK(lb_set(lb, 1, NULL, NULL, NULL, NULL));
    ag__ep *a = ag__lb_get(lb, 0);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int k = 0; k < 200; k++) {
        for (int i = 0; i < 5; i++)
            fail_once(lb, a);
        uint64_t delay = a->dead_until_ms - s.now;
        CHECK(delay >= 2500 && delay <= 5000);
        lo = AG_MIN(lo, delay);
        hi = AG_MAX(hi, delay);
        s.now = a->dead_until_ms;
        ag__ep *ep = ag__lb_pick(lb, NULL);
        CHECK(ep == a);
        ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS); /* back to 5 s */
    }
    CHECK(lo < 2700 && hi > 4800);
    ag__lb_free(lb);
}

TEST(balance_accrual_probe_ignored_and_others)
{
    sim s = {1000, 17};
    ag__lb *lb = lb_make(&s, AG__LB_P2C);
    CHECK_OK(lb_set(lb, 2, NULL, NULL, NULL, NULL));
    ag__ep *a = ep_by_id(lb, 0), *b = ep_by_id(lb, 1);
    for (int i = 0; i < 5; i++)
        fail_once(lb, a);
    for (int i = 0; i < 5; i++)
        fail_once(lb, b);
    CHECK(a->state == AG__EP_DEAD && b->state == AG__EP_DEAD);
    CHECK(ag__lb_pick(lb, NULL) == NULL);
    /* the first whose backoff passes is probed, the other stays out */
    ag__ep *early = a->dead_until_ms <= b->dead_until_ms ? a : b;
    ag__ep *late = early == a ? b : a;
    s.now = early->dead_until_ms;
    ag__ep *ep = ag__lb_pick(lb, NULL);
    CHECK(ep == early);
    CHECK(ag__lb_pick(lb, NULL) == NULL);
    /* an ignored probe frees the slot: still PROBING, probed again */
    ag__lb_done(lb, ep, 1, AG__OUT_IGNORED);
    CHECK_EQ(early->state, AG__EP_PROBING);
    ep = ag__lb_pick(lb, NULL);
    CHECK(ep == early);
    ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
    CHECK_EQ(early->state, AG__EP_OPEN);
    CHECK_EQ(late->state, late->dead_until_ms <= s.now ? AG__EP_PROBING : AG__EP_DEAD);
    ag__lb_free(lb);
}

TEST(balance_accrual_off)
{
    sim s = {1000, 18};
    ag__lb_conf c;
    ag__lb_conf_init(&c);
    c.kind = AG__LB_RR;
    c.failures = 0;
    c.now_ms = sim_now;
    c.rand = sim_rand;
    c.ud = &s;
    ag__lb *lb = ag__lb_new(&c);
    CHECK_OK(lb_set(lb, 1, NULL, NULL, NULL, NULL));
    for (int i = 0; i < 50; i++)
        fail_once(lb, ag__lb_get(lb, 0));
    CHECK_EQ(ag__lb_get(lb, 0)->state, AG__EP_OPEN);
    ag__lb_free(lb);
}

/* ---- fail-fast and avoid ---------------------------------------------------- */

TEST(balance_failfast_down_and_back)
{
    static const ag__lb_kind kinds[] = {AG__LB_RR, AG__LB_P2C, AG__LB_EWMA, AG__LB_APERTURE};
    for (size_t k = 0; k < AG_ARRAY_LEN(kinds); k++) {
        sim s = {1000, 19 + k};
        ag__lb *lb = lb_make(&s, kinds[k]);
        CHECK_OK(lb_set(lb, 3, NULL, NULL, NULL, NULL));
        ag__ep *b = ep_by_id(lb, 1);
        ag__lb_conn_failed(lb, b);
        CHECK_EQ(b->state, AG__EP_DOWN);
        CHECK_EQ(ag__lb_available(lb), 2);
        unsigned count[16] = {0};
        pick_done(lb, 1000, count, NULL);
        CHECK_EQ(count[1], 0);
        ag__lb_conn_ok(lb, b);
        CHECK_EQ(b->state, AG__EP_OPEN);
        /* all down: nothing to pick */
        for (unsigned i = 0; i < 3; i++)
            ag__lb_conn_failed(lb, ep_by_id(lb, i));
        CHECK(ag__lb_pick(lb, NULL) == NULL);
        ag__lb_conn_ok(lb, b);
        ag__ep *ep = ag__lb_pick(lb, NULL);
        CHECK(ep == b);
        ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
        ag__lb_free(lb);
    }
}

TEST(balance_failfast_does_not_revive_dead)
{
    sim s = {1000, 23};
    ag__lb *lb = lb_make(&s, AG__LB_RR);
    CHECK_OK(lb_set(lb, 2, NULL, NULL, NULL, NULL));
    ag__ep *a = ep_by_id(lb, 0);
    for (int i = 0; i < 5; i++)
        fail_once(lb, a);
    ag__lb_conn_failed(lb, a);
    CHECK_EQ(a->state, AG__EP_DOWN);
    ag__lb_conn_ok(lb, a);
    CHECK_EQ(a->state, AG__EP_DEAD); /* accrual still holds it */
    unsigned count[16] = {0};
    pick_done(lb, 10, count, NULL);
    CHECK_EQ(count[0], 0);
    ag__lb_free(lb);
}

TEST(balance_avoid_unless_only_one)
{
    static const ag__lb_kind kinds[] = {AG__LB_RR, AG__LB_P2C, AG__LB_EWMA, AG__LB_APERTURE};
    for (size_t k = 0; k < AG_ARRAY_LEN(kinds); k++) {
        sim s = {1000, 24 + k};
        ag__lb *lb = lb_make(&s, kinds[k]);
        CHECK_OK(lb_set(lb, 3, NULL, NULL, NULL, NULL));
        for (unsigned x = 0; x < 3; x++) {
            ag__ep *avoid = ep_by_id(lb, x);
            unsigned count[16] = {0};
            pick_done(lb, 300, count, avoid);
            CHECK_EQ(count[x], 0);
            CHECK_EQ(count[0] + count[1] + count[2], 300);
        }
        /* only the avoided one is left: it is picked */
        ag__ep *a = ep_by_id(lb, 0);
        ag__lb_conn_failed(lb, ep_by_id(lb, 1));
        ag__lb_conn_failed(lb, ep_by_id(lb, 2));
        ag__ep *ep = ag__lb_pick(lb, a);
        CHECK(ep == a);
        ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
        ag__lb_free(lb);
    }
}

/* ---- many endpoints, random changes ----------------------------------------- */

static uint64_t stress_rand(sim *s, uint64_t bound)
{
    return sim_rand(s) % bound;
}

/* Random updates, DOWN/OK flips, picks held and completed, for each kind,
 * on up to 300 endpoints: picks never land on a DOWN or removed endpoint,
 * available() follows, and an RR period of W picks gives each endpoint
 * exactly its weight. Exercises the trees and RR's heap through every
 * kind of change. */
TEST(balance_stress_many_endpoints)
{
    static const ag__lb_kind kinds[] = {AG__LB_RR, AG__LB_P2C, AG__LB_EWMA, AG__LB_APERTURE};
    enum { MAXE = 300, MAXH = 64 };
    for (size_t k = 0; k < AG_ARRAY_LEN(kinds); k++) {
        sim s = {1000, 100 + k};
        ag__lb *lb = lb_make(&s, kinds[k]);
        static ag__addr a[MAXE];
        static bool down[MAXE];
        ag__ep *held[MAXH];
        unsigned nheld = 0;
        gone_log g = {.n = 0};
        for (unsigned round = 0; round < 30; round++) {
            /* a random subset of 0..MAXE-1 with weights 1..4; the
             * balancer's DOWN marks survive for endpoints that stay */
            size_t n = 0;
            for (unsigned i = 0; i < MAXE; i++) {
                if (stress_rand(&s, 3) == 0)
                    continue;
                a[n].host = (char *)"10.1.1.1";
                a[n].port = (uint16_t)(8000 + i);
                a[n].weight = (double)(1 + stress_rand(&s, 4));
                n++;
            }
            g.n = 0;
            CHECK_OK(ag__lb_update(lb, a, n, on_gone, &g));
            for (unsigned i = 0; i < g.n; i++)
                if (g.ep[i]->outstanding == 0)
                    ag__lb_release(lb, g.ep[i]);
            /* else: freed by ag__lb_free, or released below when done */
            CHECK_EQ(ag__lb_size(lb), n);
            memset(down, 0, sizeof(down));
            for (size_t i = 0; i < n; i++) {
                ag__ep *ep = ag__lb_get(lb, i);
                down[ep_id(ep)] = ep->state == AG__EP_DOWN;
            }
            for (unsigned op = 0; op < 500; op++) {
                unsigned r = (unsigned)stress_rand(&s, 10);
                if (r == 0 && n) {
                    ag__ep *ep = ag__lb_get(lb, stress_rand(&s, n));
                    down[ep_id(ep)] = !down[ep_id(ep)];
                    if (down[ep_id(ep)])
                        ag__lb_conn_failed(lb, ep);
                    else
                        ag__lb_conn_ok(lb, ep);
                } else if (r < 4 && nheld) {
                    unsigned h = (unsigned)stress_rand(&s, nheld);
                    ag__ep *ep = held[h];
                    held[h] = held[--nheld];
                    ag__lb_done(lb, ep, (double)stress_rand(&s, 50), AG__OUT_SUCCESS);
                    if (ep->removed && ep->outstanding == 0)
                        ag__lb_release(lb, ep);
                } else {
                    s.now += stress_rand(&s, 3);
                    ag__ep *avoid = n && r == 9 ? ag__lb_get(lb, stress_rand(&s, n)) : NULL;
                    ag__ep *ep = ag__lb_pick(lb, avoid);
                    size_t up = 0;
                    for (size_t i = 0; i < n; i++)
                        up += !down[ep_id(ag__lb_get(lb, i))];
                    CHECK_EQ(ag__lb_available(lb), up);
                    if (!ep) {
                        CHECK_EQ(up, 0);
                        continue;
                    }
                    CHECK(!ep->removed && !down[ep_id(ep)] && ep->state == AG__EP_OPEN);
                    CHECK(ep != avoid || up == 1);
                    if (nheld < MAXH)
                        held[nheld++] = ep;
                    else
                        ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
                }
            }
            if (kinds[k] != AG__LB_RR)
                continue;
            /* one period of RR over the endpoints up: exact weights */
            unsigned period = 0;
            for (size_t i = 0; i < n; i++)
                if (!down[ep_id(ag__lb_get(lb, i))])
                    period += (unsigned)ag__lb_get(lb, i)->addr.weight;
            static unsigned count[MAXE];
            memset(count, 0, sizeof(count));
            for (unsigned i = 0; i < 3 * period; i++) {
                ag__ep *ep = ag__lb_pick(lb, NULL);
                count[ep_id(ep)]++;
                ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);
            }
            for (size_t i = 0; i < n; i++) {
                ag__ep *ep = ag__lb_get(lb, i);
                unsigned want = down[ep_id(ep)] ? 0 : 3 * (unsigned)ep->addr.weight;
                if (count[ep_id(ep)] + 1 < want || count[ep_id(ep)] > want + 1)
                    FAIL("round %u: endpoint %u weight %g picked %u of %u, want %u", round,
                         ep_id(ep), ep->addr.weight, count[ep_id(ep)], 3 * period, want);
            }
        }
        while (nheld)
            ag__lb_done(lb, held[--nheld], 1, AG__OUT_SUCCESS);
        ag__lb_free(lb);
    }
}

/* ---- admin JSON ------------------------------------------------------------- */

TEST(balance_json_describes_endpoints)
{
    sim s = {1000, 30};
    ag__lb *lb = lb_make(&s, AG__LB_EWMA);
    ag__addr addrs[] = {
        {(char *)"10.0.0.1", 8080, 1.5},
        {(char *)"::1", 9090, 1},
        {(char *)"we\"ird", 7070, 1},
    };
    CHECK_OK(ag__lb_update(lb, addrs, 3, NULL, NULL));
    ag__ep *v4 = ag__lb_get(lb, 0), *v6 = ag__lb_get(lb, 1);
    ag__lb_conn_failed(lb, ag__lb_get(lb, 2));
    for (int i = 0; i < 5; i++)
        fail_once(lb, v6);
    ag__ep *ep = ag__lb_pick(lb, NULL);
    CHECK(ep == v4);
    ag__lb_done(lb, ep, 12.5, AG__OUT_SUCCESS);
    ep = ag__lb_pick(lb, NULL); /* left outstanding */
    s.now += 1000;

    ag_buf out;
    ag_buf_init(&out, 1 << 16);
    CHECK_OK(ag__lb_json(lb, &out));
    json_error_t err;
    json_t *j = json_loads((const char *)out.data, 0, &err);
    if (!j)
        FAIL("json: %s in %s", err.text, (const char *)out.data);
    CHECK(json_is_array(j));
    CHECK_EQ(json_array_size(j), 3);
    json_t *o = json_array_get(j, 0);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "addr")), "10.0.0.1:8080");
    CHECK(json_number_value(json_object_get(o, "weight")) == 1.5);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "state")), "open");
    CHECK_EQ(json_integer_value(json_object_get(o, "outstanding")), 1);
    CHECK(fabs(json_number_value(json_object_get(o, "ewma_ms")) - 12.5) < 1e-9);
    CHECK_EQ(json_integer_value(json_object_get(o, "requests")), v4->requests);
    CHECK_EQ(json_integer_value(json_object_get(o, "successes")), v4->successes);
    CHECK(v4->requests >= 2 && v4->successes == v4->requests - 1);
    CHECK_EQ(json_integer_value(json_object_get(o, "failures")), 0);
    CHECK_EQ(json_integer_value(json_object_get(o, "dead_for_ms")), 0);
    o = json_array_get(j, 1);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "addr")), "[::1]:9090");
    CHECK_STR_EQ(json_string_value(json_object_get(o, "state")), "dead");
    CHECK_EQ(json_integer_value(json_object_get(o, "failures")), 5);
    long long dead_for = json_integer_value(json_object_get(o, "dead_for_ms"));
    CHECK_EQ(dead_for, (long long)(v6->dead_until_ms - s.now));
    CHECK(dead_for > 0);
    o = json_array_get(j, 2);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "addr")), "we\"ird:7070");
    CHECK_STR_EQ(json_string_value(json_object_get(o, "state")), "down");
    json_decref(j);
    ag_buf_cleanup(&out);
    ag__lb_done(lb, ep, 1, AG__OUT_SUCCESS);

    /* an empty balancer is an empty array */
    CHECK_OK(ag__lb_update(lb, NULL, 0, NULL, NULL));
    ag_buf_init(&out, 64);
    CHECK_OK(ag__lb_json(lb, &out));
    CHECK_STR_EQ((const char *)out.data, "[]");
    ag_buf_cleanup(&out);
    ag__lb_free(lb);
}

/* ---- retry budget ----------------------------------------------------------- */

TEST(balance_budget_percent_plus_reserve)
{
    ag__budget b;
    ag__budget_init(&b, 0.2, 10, 10000);
    CHECK(fabs(ag__budget_balance(&b, 0) - 100) < 1e-9); /* the reserve alone */
    for (uint64_t t = 0; t < 10000; t += 100)
        ag__budget_deposit(&b, t); /* 100 requests over 10 s */
    CHECK(fabs(ag__budget_balance(&b, 9999) - 120) < 1e-9);
    for (int i = 0; i < 120; i++)
        if (!ag__budget_withdraw(&b, 9999))
            FAIL("retry %d refused", i + 1);
    CHECK(!ag__budget_withdraw(&b, 9999)); /* the 121st */
    CHECK(fabs(ag__budget_balance(&b, 9999)) < 1e-9);

    /* slices expire as the window slides: at 15 s the deposits of 6..10 s
     * (40) are left and the 120 withdrawals of 9.999 s */
    CHECK(fabs(ag__budget_balance(&b, 15000) - (8 + 100 - 120)) < 1e-9);
    CHECK(!ag__budget_withdraw(&b, 15000));
    CHECK(fabs(ag__budget_balance(&b, 18999) - (2 + 100 - 120)) < 1e-9);
    /* after a whole ttl, only the reserve */
    CHECK(fabs(ag__budget_balance(&b, 19000) - 100) < 1e-9);
    CHECK(ag__budget_withdraw(&b, 19000));
    CHECK(fabs(ag__budget_balance(&b, 19500) - 99) < 1e-9);
    /* a slot reused after a wrap forgets its old counts */
    CHECK(fabs(ag__budget_balance(&b, 1000000) - 100) < 1e-9);
    ag__budget_deposit(&b, 1000000);
    CHECK(fabs(ag__budget_balance(&b, 1000000) - 100.2) < 1e-9);
}

TEST(balance_budget_percent_only)
{
    ag__budget b;
    ag__budget_init(&b, 0.1, 0, 1000);
    CHECK(!ag__budget_withdraw(&b, 5));
    for (int i = 0; i < 25; i++)
        ag__budget_deposit(&b, 5 + (uint64_t)i);
    CHECK(ag__budget_withdraw(&b, 40));
    CHECK(ag__budget_withdraw(&b, 40));
    CHECK(!ag__budget_withdraw(&b, 40)); /* 2.5 - 2 < 1 */
    for (int i = 0; i < 5; i++)
        ag__budget_deposit(&b, 50);
    CHECK(ag__budget_withdraw(&b, 60)); /* 3.0 - 2 >= 1, despite rounding */
    CHECK(!ag__budget_withdraw(&b, 60));
}
