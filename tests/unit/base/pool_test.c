/* Tests for src/base/pool.c: the work queue, backpressure, parallel for. */
#include <stdatomic.h>

#include "test.h"

static atomic_int counter;

static void bump(void *arg)
{
    atomic_fetch_add(&counter, (int)(intptr_t)arg);
}

TEST(pool_runs_every_task)
{
    ag_pool *p = NULL;
    CHECK_OK(ag_pool_new(&p, 3, 4, "test"));
    CHECK_EQ(ag_pool_nthreads(p), 3);
    atomic_store(&counter, 0);
    for (int i = 0; i < 1000; i++)
        CHECK_OK(ag_pool_submit(p, bump, (void *)(intptr_t)1)); /* blocks when full */
    ag_pool_wait_idle(p);
    CHECK_EQ(atomic_load(&counter), 1000);
    for (int i = 0; i < 100; i++)
        CHECK_OK(ag_pool_submit(p, bump, (void *)(intptr_t)2));
    ag_pool_free(p); /* drains the queue */
    CHECK_EQ(atomic_load(&counter), 1200);
    ag_pool_free(NULL);
}

static void slow(void *arg)
{
    (void)arg;
    ag_sleep_ms(50);
}

TEST(pool_try_submit_full_queue)
{
    ag_pool *p = NULL;
    CHECK_OK(ag_pool_new(&p, 1, 2, "test"));
    int accepted = 0, again = 0;
    for (int i = 0; i < 10; i++) {
        int rc = ag_pool_try_submit(p, slow, NULL);
        if (rc == 0)
            accepted++;
        else if (rc == AG_E_AGAIN)
            again++;
    }
    CHECK(accepted >= 2 && accepted <= 3); /* 2 queued, maybe 1 already running */
    CHECK_EQ(accepted + again, 10);
    ag_pool_free(p);
}

struct sum_ctx {
    const uint64_t *v;
    atomic_uint_fast64_t sum;
    atomic_int calls;
};

static void sum_range(void *ctx, size_t b, size_t e)
{
    struct sum_ctx *c = ctx;
    uint64_t s = 0;
    for (size_t i = b; i < e; i++)
        s += c->v[i];
    atomic_fetch_add(&c->sum, s);
    atomic_fetch_add(&c->calls, 1);
}

TEST(pool_parallel_for_covers_range_once)
{
    enum { N = 100003 };
    uint64_t *v = ag_malloc(N * sizeof(*v));
    CHECK(v);
    uint64_t want = 0;
    for (size_t i = 0; i < N; i++) {
        v[i] = i * 7 + 1;
        want += v[i];
    }
    ag_pool *p = NULL;
    CHECK_OK(ag_pool_new(&p, 2, 0, "pfor"));
    size_t grains[] = {1, 7, 1000, N, N + 5};
    for (size_t g = 0; g < AG_ARRAY_LEN(grains); g++) {
        struct sum_ctx c = {.v = v};
        CHECK_OK(ag_pool_parallel_for(p, N, grains[g], sum_range, &c));
        CHECK_U64_EQ(atomic_load(&c.sum), want);
        CHECK_EQ(atomic_load(&c.calls), (N + grains[g] - 1) / grains[g]);
    }
    struct sum_ctx c = {.v = v};
    CHECK_OK(ag_pool_parallel_for(NULL, N, 100, sum_range, &c)); /* no pool: inline */
    CHECK_U64_EQ(atomic_load(&c.sum), want);
    CHECK_OK(ag_pool_parallel_for(p, 0, 10, sum_range, &c));
    ag_pool_free(p);
    ag_free(v);
}

TEST_FM(pool_failmalloc)
{
    ag_pool *p = NULL;
    FM_TRY(ag_pool_new(&p, 2, 8, "fm"), 0);
    atomic_store(&counter, 0);
    for (int i = 0; i < 10; i++)
        CHECK_OK(ag_pool_submit(p, bump, (void *)(intptr_t)1));
    ag_pool_wait_idle(p);
    CHECK_EQ(atomic_load(&counter), 10);
out:
    ag_pool_free(p);
}
