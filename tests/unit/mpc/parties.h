/*
 * Test helper: runs a function once per party, each on its own thread with
 * its own in-memory link endpoint and semi2k session (simulation mode in
 * miniature), and records each party's link counters around one marked
 * region so a test can compare a kernel's cost with its model.
 */
#ifndef ARGOT_TEST_PARTIES_H
#define ARGOT_TEST_PARTIES_H

#include <pthread.h>

#include "argot/mpc.h"
#include "argot/rpc.h"
#include "test.h"

#define MAX_PARTIES 4

struct party {
    unsigned rank;
    ag_mpc *m;
    ag_link *link;
    void *ctx;
    int rc;            /* what the party's function returned */
    char err[AG_ERRMSG_MAX];
    ag_link_stats before, after; /* around cost_begin / cost_end */
};

typedef int (*party_fn)(struct party *p);

/* Marks the region whose cost the test checks. */
static inline void cost_begin(struct party *p)
{
    ag_link_stats_get(p->link, &p->before);
}
static inline void cost_end(struct party *p)
{
    ag_link_stats_get(p->link, &p->after);
}
static inline uint64_t cost_bytes(const struct party *p)
{
    return p->after.bytes_sent - p->before.bytes_sent;
}
static inline uint64_t cost_rounds(const struct party *p)
{
    return p->after.rounds - p->before.rounds;
}

static void *party_main(void *arg)
{
    struct party *p = arg;
    party_fn fn = (party_fn)((void **)p->ctx)[0];
    p->rc = ag_mpc_setup(p->m);
    if (p->rc == 0)
        p->rc = fn(p);
    if (p->rc < 0)
        snprintf(p->err, sizeof(p->err), "%s", ag_mpc_errmsg(p->m));
    return NULL;
}

/* With ARGOT_TEST_BEAVER=ttp in the environment, every run whose configs
 * name no dealer gets a trusted-third-party one: a Beaver server started
 * for the run on a loopback port of the test process (scripts/test.sh
 * runs the mpc suite again so, which must pass unchanged: the dealers deal
 * the same shares at the same link cost). */
struct ttp_for_run {
    ag_rpc_server *srv;
    ag_beaver_server *b;
    ag_rpc_channel *ch;
};

static inline bool ttp_wanted(void)
{
    const char *v = getenv("ARGOT_TEST_BEAVER");
    return v && strcmp(v, "ttp") == 0;
}

static inline void ttp_for_run_start(struct ttp_for_run *t)
{
    ag_log_set_level(AG_LOG_WARN); /* no line per registration */
    ag_rpc_server_opts so;
    ag_rpc_server_opts_init(&so);
    so.loops = 1;
    t->srv = ag_rpc_server_new(&so);
    t->b = ag_beaver_server_new(NULL);
    CHECK(t->srv && t->b);
    CHECK_OK(ag_beaver_server_register(t->srv, t->b));
    CHECK_OK(ag_rpc_server_start(t->srv, "127.0.0.1:0"));
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ag_rpc_server_port(t->srv));
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    t->ch = ag_rpc_channel_new(addr, &co);
    CHECK(t->ch != NULL);
}

static inline void ttp_for_run_stop(struct ttp_for_run *t)
{
    ag_rpc_channel_free(t->ch);
    ag_rpc_server_free(t->srv);
    ag_beaver_server_free(t->b);
}

/* Runs fn at n parties with the given configs (cfg[i] per party, or one
 * config for all when per_party is false). ctx is passed in p->ctx[1]. */
static inline void run_parties_cfg(unsigned n, const ag_mpc_config *cfg, bool per_party,
                                   party_fn fn, void *ctx, struct party *out,
                                   uint64_t timeout_ms)
{
    static const char *const names[] = {"alice", "bob", "carol", "dave"};
    ag_link *links[MAX_PARTIES];
    CHECK(n <= MAX_PARTIES);
    struct ttp_for_run ttp = {0};
    ag_mpc_config mine[MAX_PARTIES];
    bool any_dealer = false;
    for (unsigned i = 0; i < n; i++)
        any_dealer = any_dealer || (per_party ? &cfg[i] : cfg)->beaver_server;
    if (ttp_wanted() && !any_dealer) {
        ttp_for_run_start(&ttp);
        for (unsigned i = 0; i < n; i++) {
            mine[i] = per_party ? cfg[i] : *cfg;
            mine[i].beaver_server = ttp.ch;
        }
        cfg = mine;
        per_party = true;
    }
    CHECK_OK(ag_link_mem_group(n, names, links));
    void *fnctx[2] = {(void *)fn, ctx};
    pthread_t th[MAX_PARTIES];
    for (unsigned i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        out[i].rank = i;
        out[i].link = links[i];
        out[i].ctx = fnctx;
        if (timeout_ms)
            ag_link_set_timeout_ms(links[i], timeout_ms);
        out[i].m = ag_mpc_new(links[i], per_party ? &cfg[i] : cfg);
        CHECK(out[i].m != NULL);
    }
    for (unsigned i = 0; i < n; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, party_main, &out[i]), 0);
    for (unsigned i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < n; i++) {
        out[i].ctx = ctx;
        ag_mpc_free(out[i].m);
        out[i].m = NULL;
        ag_link_free(links[i]);
        out[i].link = NULL;
    }
    if (ttp.srv)
        ttp_for_run_stop(&ttp);
}

static inline void run_parties(unsigned n, ag_field f, party_fn fn, void *ctx, struct party *out)
{
    ag_mpc_config cfg = {.field = f, .fxp_bits = 0};
    run_parties_cfg(n, &cfg, false, fn, ctx, out, 0);
}

/* ---- under failmalloc ------------------------------------------------------ */

/* One party of a failmalloc run: its function sets rc (0, or the failure,
 * which must leave nothing behind). */
struct fm_party {
    unsigned rank;
    ag_mpc *m;
    int rc;
};

/* For TEST_FM tests: runs fn (a thread body taking a struct fm_party) at n
 * parties with FM64 sessions over an in-memory link. Setup may fail only
 * for an injected allocation failure, and a party only for an injected
 * failure, its own or another's. */
static inline void run_parties_fm(unsigned n, void *(*fn)(void *))
{
    ag_link *l[MAX_PARTIES] = {NULL};
    struct fm_party ps[MAX_PARTIES] = {{0}};
    pthread_t th[MAX_PARTIES];
    ag_mpc_config cfg = {.field = AG_FM64, .fxp_bits = 0};
    CHECK(n <= MAX_PARTIES);
    FM_TRY(ag_link_mem_group(n, NULL, l), 0);
    for (unsigned i = 0; i < n; i++) {
        ps[i].rank = i;
        ps[i].m = ag_mpc_new(l[i], &cfg);
        FM_NEW(ps[i].m);
    }
    for (unsigned i = 0; i < n; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, fn, &ps[i]), 0);
    for (unsigned i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < n; i++)
        CHECK(ps[i].rc == 0 || ag_alloc_failed());
out:
    for (unsigned i = 0; i < n; i++) {
        ag_mpc_free(ps[i].m);
        ag_link_free(l[i]);
    }
}

/* The user context inside a party function. */
static inline void *party_ctx(struct party *p)
{
    return ((void **)p->ctx)[1];
}

#endif
