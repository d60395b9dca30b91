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

/* Runs fn at n parties with the given configs (cfg[i] per party, or one
 * config for all when per_party is false). ctx is passed in p->ctx[1]. */
static inline void run_parties_cfg(unsigned n, const ag_mpc_config *cfg, bool per_party,
                                   party_fn fn, void *ctx, struct party *out,
                                   uint64_t timeout_ms)
{
    static const char *const names[] = {"alice", "bob", "carol", "dave"};
    ag_link *links[MAX_PARTIES];
    CHECK(n <= MAX_PARTIES);
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
