/*
 * Tests for the session's scratch (src/mpc/session.c): buffers are lent
 * best fit and reused, evicted least recently returned first, wiped past
 * what leaves the session, and adopted from the link; kernels run again on
 * the same shapes allocate nothing but their output and the link's message
 * headers; and every kernel fails cleanly, leaking nothing, whichever
 * allocation fails at whichever party.
 */
#include "mpc/internal.h"
#include "parties.h"

/* A session over a one-party link: enough for the scratch, which needs no
 * setup. */
static ag_mpc *lone_session(ag_link **l)
{
    ag_mpc_config cfg = {.field = AG_FM64, .fxp_bits = 0};
    CHECK_OK(ag_link_mem_group(1, NULL, l));
    ag_mpc *m = ag_mpc_new(*l, &cfg);
    CHECK(m != NULL);
    return m;
}

TEST(mpc_scratch_lends_best_fit_and_reuses)
{
    ag_link *l;
    ag_mpc *m = lone_session(&l);
    void *small = ag__scratch_get(m, 100), *big = ag__scratch_get(m, 1000);
    CHECK(small && big && small != big);
    ag__scratch_put(m, big);
    ag__scratch_put(m, small);
    /* the smallest that fits, whatever the order they came back in */
    CHECK(ag__scratch_get(m, 50) == small);
    CHECK(ag__scratch_get(m, 50) == big);
    void *third = ag__scratch_get(m, 50);
    CHECK(third && third != small && third != big);
    void *bufs[3] = {small, big, third};
    ag__scratch_put_n(m, bufs, 3);
    CHECK_U64_EQ(m->scratch_bytes, 1150);
    CHECK(ag__scratch_get(m, 1001) != big);
    ag_mpc_free(m);
    ag_link_free(l);
}

TEST(mpc_scratch_evicts_least_recently_returned)
{
    ag_link *l;
    ag_mpc *m = lone_session(&l);
    void *b[AG__SCRATCH_SLOTS];
    for (int i = 0; i < AG__SCRATCH_SLOTS; i++)
        CHECK((b[i] = ag__scratch_get(m, 64)) != NULL);
    /* returned in reverse: b[last] is the least recently returned */
    for (int i = AG__SCRATCH_SLOTS - 1; i >= 0; i--)
        ag__scratch_put(m, b[i]);
    void *big = ag__scratch_get(m, 128);
    CHECK(big != NULL);
    for (int i = 0; i < AG__SCRATCH_SLOTS - 1; i++)
        CHECK(ag__scratch_get(m, 64) == b[i]);
    CHECK_U64_EQ(m->scratch_bytes, 64 * (AG__SCRATCH_SLOTS - 1) + 128);
    ag_mpc_free(m);
    ag_link_free(l);
}

TEST(mpc_scratch_give_wipes_the_rest_and_adopt_keeps)
{
    ag_link *l;
    ag_mpc *m = lone_session(&l);
    uint8_t *p = ag__scratch_get(m, 64);
    CHECK(p != NULL);
    memset(p, 0xff, 64);
    ag__scratch_put(m, p);
    CHECK(ag__scratch_get(m, 10) == p);
    ag__scratch_give(m, p, 10);
    CHECK_U64_EQ(m->scratch_bytes, 0);
    for (int i = 0; i < 64; i++)
        CHECK_EQ(p[i], i < 10 ? 0xff : 0);
    /* a buffer from elsewhere (a received message) joins the scratch */
    ag__scratch_adopt(m, p, 64);
    CHECK(ag__scratch_get(m, 64) == p);
    ag__scratch_put(m, p);
    ag_mpc_free(m);
    ag_link_free(l);
}

/* ---- kernels reuse it ------------------------------------------------------ */

struct reuse_case {
    pthread_barrier_t bar;
    uint64_t allocs[8]; /* rank 0's reading of the allocation count */
};

/* Runs each kernel three times and records the allocations of the last
 * run (between barriers, so all parties' count). */
static int reuse_fn(struct party *p)
{
    struct reuse_case *c = party_ctx(p);
    ag_mpc *m = p->m;
    int64_t shape[1] = {5000}, sq[2] = {70, 70};
    ag_tensor px = {0}, pa = {0}, x = {0}, a = {0}, z = {0};
    int rc = ag_tensor_init(&px, AG_FM64, AG_VIS_PUBLIC, 1, shape);
    if (rc == 0)
        rc = ag_tensor_init(&pa, AG_FM64, AG_VIS_PUBLIC, 2, sq);
    if (rc == 0)
        rc = ag_mpc_share(m, 0, p->rank == 0 ? &px : NULL, 1, shape, &x);
    if (rc == 0)
        rc = ag_mpc_share(m, 0, p->rank == 0 ? &pa : NULL, 2, sq, &a);
    for (int k = 0; k < 5; k++) {
        for (int run = 0; run < 3; run++) {
            pthread_barrier_wait(&c->bar);
            uint64_t before = ag_alloc_count();
            pthread_barrier_wait(&c->bar);
            switch (k) {
            case 0: rc = rc ? rc : ag_mpc_mul(m, &x, &x, &z); break;
            case 1: rc = rc ? rc : ag_mpc_square(m, &x, &z); break;
            case 2: rc = rc ? rc : ag_mpc_reveal(m, &x, &z); break;
            case 3: rc = rc ? rc : ag_mpc_trunc(m, &x, 18, &z); break;
            case 4: rc = rc ? rc : ag_mpc_matmul(m, &a, &a, &z); break;
            }
            pthread_barrier_wait(&c->bar);
            if (p->rank == 0)
                c->allocs[k] = ag_alloc_count() - before;
            ag_tensor_cleanup(&z);
        }
    }
    ag_tensor_cleanup(&px);
    ag_tensor_cleanup(&pa);
    ag_tensor_cleanup(&x);
    ag_tensor_cleanup(&a);
    return rc;
}

TEST(mpc_kernels_run_again_allocate_only_outputs_and_headers)
{
    /* the sessions' scratch reuse, counted process-wide: under the TTP
     * pass (ARGOT_TEST_BEAVER=ttp) rank 0's dealer calls allocate rpc
     * messages too, so this runs in the TFP pass only */
    if (ttp_wanted())
        return;
    for (unsigned n = 2; n <= 3; n++) {
        struct reuse_case c;
        struct party ps[MAX_PARTIES];
        CHECK_EQ(pthread_barrier_init(&c.bar, NULL, n), 0);
        run_parties(n, AG_FM64, reuse_fn, &c, ps);
        for (unsigned i = 0; i < n; i++)
            CHECK_OK(ps[i].rc);
        /* per party: one output's worth and the in-memory link's header of
         * each message it sends; trunc for two parties sends nothing. A
         * reveal's output is a received message: it allocates the copy it
         * sends, unless an earlier kernel left one of the size */
        uint64_t out_and_headers = n * (1 + (n - 1));
        CHECK_U64_EQ(c.allocs[0], out_and_headers);
        CHECK_U64_EQ(c.allocs[1], out_and_headers);
        CHECK(c.allocs[2] >= n * (n - 1) && c.allocs[2] <= out_and_headers);
        CHECK_U64_EQ(c.allocs[3], n == 2 ? n : out_and_headers);
        CHECK_U64_EQ(c.allocs[4], out_and_headers);
        pthread_barrier_destroy(&c.bar);
    }
}

/* ---- under failmalloc ---------------------------------------------------------- */

/* Setup and one of each kind of kernel; stops at the first failure. */
static void *fm_party_main(void *arg)
{
    struct fm_party *p = arg;
    ag_mpc *m = p->m;
    int64_t shape[1] = {3000}, sq[2] = {9, 9};
    ag_tensor px = {0}, pa = {0}, x = {0}, a = {0}, z[6] = {{0}};
    int rc = ag_mpc_setup(m);
    if (rc == 0)
        rc = ag_tensor_init(&px, AG_FM64, AG_VIS_PUBLIC, 1, shape);
    if (rc == 0)
        rc = ag_tensor_init(&pa, AG_FM64, AG_VIS_PUBLIC, 2, sq);
    if (rc == 0)
        rc = ag_mpc_share(m, 0, p->rank == 0 ? &px : NULL, 1, shape, &x);
    if (rc == 0)
        rc = ag_mpc_share(m, 1, p->rank == 1 ? &pa : NULL, 2, sq, &a);
    if (rc == 0)
        rc = ag_mpc_mul(m, &x, &x, &z[0]);
    if (rc == 0)
        rc = ag_mpc_square(m, &x, &z[1]);
    if (rc == 0)
        rc = ag_mpc_matmul(m, &a, &a, &z[2]);
    if (rc == 0)
        rc = ag_mpc_reveal(m, &x, &z[3]);
    if (rc == 0)
        rc = ag_mpc_trunc(m, &x, 18, &z[4]);
    if (rc == 0)
        rc = ag_mpc_equal(m, &x, &x, &z[5]);
    /* a failure outside a kernel (the tensors here) must fail the others
     * too, as a kernel's does */
    if (rc < 0)
        ag_link_abort(ag_mpc_link(m), "failed");
    for (int i = 0; i < 6; i++)
        ag_tensor_cleanup(&z[i]);
    ag_tensor_cleanup(&px);
    ag_tensor_cleanup(&pa);
    ag_tensor_cleanup(&x);
    ag_tensor_cleanup(&a);
    p->rc = rc;
    return NULL;
}

TEST_FM(mpc_kernels_failmalloc)
{
    run_parties_fm(3, fm_party_main);
}
