/* Tests for src/link/link.c and mem.c: delivery by (peer, tag) in order,
 * counters and rounds, timeouts and aborts that name the party. */
#include <pthread.h>

#include "argot/link.h"
#include "test.h"

static const char *const names[] = {"alice", "bob", "carol"};

TEST(link_mem_delivery_by_peer_and_tag)
{
    ag_link *l[3];
    CHECK_OK(ag_link_mem_group(3, names, l));
    CHECK_EQ(ag_link_rank(l[2]), 2);
    CHECK_EQ(ag_link_size(l[0]), 3);
    CHECK_STR_EQ(ag_link_party(l[0], 1), "bob");
    CHECK_OK(ag_link_send(l[0], 2, 7, "first", 5));
    CHECK_OK(ag_link_send(l[1], 2, 7, "bob's", 5));
    CHECK_OK(ag_link_send(l[0], 2, 9, "other tag", 9));
    CHECK_OK(ag_link_send(l[0], 2, 7, "second", 6));
    void *d;
    size_t n;
    /* tag 9 first, though sent between the two tag-7 messages */
    CHECK_OK(ag_link_recv(l[2], 0, 9, &d, &n));
    CHECK_EQ(n, 9);
    CHECK_MEM_EQ(d, "other tag", 9);
    ag_free(d);
    CHECK_OK(ag_link_recv(l[2], 0, 7, &d, &n));
    CHECK_MEM_EQ(d, "first", 5);
    ag_free(d);
    char buf[6];
    CHECK_OK(ag_link_recv_into(l[2], 0, 7, buf, 6));
    CHECK_MEM_EQ(buf, "second", 6);
    CHECK_OK(ag_link_recv_into(l[2], 1, 7, buf, 5));
    CHECK_MEM_EQ(buf, "bob's", 5);

    ag_link_stats s;
    ag_link_stats_get(l[0], &s);
    CHECK_EQ(s.bytes_sent, 20);
    CHECK_EQ(s.msgs_sent, 3);
    CHECK_EQ(s.rounds, 1); /* three sends, no receive between them */
    ag_link_stats_get(l[2], &s);
    CHECK_EQ(s.bytes_recv, 25);
    CHECK_EQ(s.msgs_recv, 4);
    CHECK_EQ(s.rounds, 0);

    CHECK_EQ(ag_link_send(l[0], 0, 1, "x", 1), AG_E_LINK_PEER);
    CHECK_STR_EQ(ag_link_errmsg(l[0]), "party alice: no peer of rank 0 in a job of 3 parties");
    CHECK_EQ(ag_link_send(l[0], 5, 1, "x", 1), AG_E_LINK_PEER);
    /* undelivered messages are freed with the group */
    CHECK_OK(ag_link_send(l[1], 0, 3, "never read", 10));
    for (int i = 0; i < 3; i++)
        ag_link_free(l[i]);
    ag_link_free(NULL);
}

TEST(link_mem_rounds_count_send_phases)
{
    ag_link *l[2];
    CHECK_OK(ag_link_mem_group(2, NULL, l));
    CHECK_STR_EQ(ag_link_party(l[1], 0), "party0");
    char b[1];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(ag_link_send(l[0], 1, (uint64_t)i, "a", 1));
        CHECK_OK(ag_link_send(l[1], 0, (uint64_t)i, "b", 1));
        CHECK_OK(ag_link_recv_into(l[0], 1, (uint64_t)i, b, 1));
        CHECK_OK(ag_link_recv_into(l[1], 0, (uint64_t)i, b, 1));
    }
    ag_link_stats s;
    ag_link_stats_get(l[0], &s);
    CHECK_EQ(s.rounds, 3);
    CHECK_OK(ag_link_send(l[0], 1, 99, "abc", 3));
    CHECK_EQ(ag_link_recv_into(l[1], 0, 99, b, 1), AG_E_LINK_SIZE);
    CHECK_STR_EQ(ag_link_errmsg(l[1]), "party party0 sent 3 bytes where 1 were expected (tag 99): "
                                       "the parties disagree on a shape");
    ag_link_free(l[0]);
    ag_link_free(l[1]);
}

TEST(link_mem_timeout_names_the_peer)
{
    ag_link *l[2];
    CHECK_OK(ag_link_mem_group(2, names, l));
    ag_link_set_timeout_ms(l[0], 50);
    void *d;
    size_t n;
    uint64_t t0 = ag_now_ms();
    CHECK_EQ(ag_link_recv(l[0], 1, 5, &d, &n), AG_E_LINK_TIMEOUT);
    CHECK(ag_now_ms() - t0 >= 50);
    CHECK_STR_EQ(ag_link_errmsg(l[0]), "party alice: no message from party bob within 50 ms "
                                       "(tag 0x5)");
    ag_link_free(l[0]);
    ag_link_free(l[1]);
}

struct waiter {
    ag_link *l;
    int rc;
    char msg[AG_ERRMSG_MAX];
};

static void *wait_main(void *arg)
{
    struct waiter *w = arg;
    void *d;
    size_t n;
    w->rc = ag_link_recv(w->l, 0, 1, &d, &n);
    snprintf(w->msg, sizeof(w->msg), "%s", ag_link_errmsg(w->l));
    return NULL;
}

TEST(link_mem_abort_reaches_every_party)
{
    ag_link *l[3];
    CHECK_OK(ag_link_mem_group(3, names, l));
    struct waiter w[2] = {{l[1], 0, ""}, {l[2], 0, ""}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, wait_main, &w[i]), 0);
    ag_sleep_ms(20);
    uint64_t t0 = ag_now_ms();
    ag_link_abort(l[0], "input.csv:3: 2 fields, header has 3");
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(w[i].rc, AG_E_LINK_ABORTED);
        CHECK_STR_EQ(w[i].msg, "party alice failed: input.csv:3: 2 fields, header has 3");
    }
    CHECK(ag_now_ms() - t0 < 1000);
    /* later receives fail the same way; the first reason stays */
    ag_link_abort(l[1], "second");
    void *d;
    size_t n;
    CHECK_EQ(ag_link_recv(l[2], 1, 1, &d, &n), AG_E_LINK_ABORTED);
    CHECK_STR_EQ(ag_link_errmsg(l[2]), "party alice failed: input.csv:3: 2 fields, header has 3");
    for (int i = 0; i < 3; i++)
        ag_link_free(l[i]);
}

TEST_FM(link_mem_failmalloc)
{
    ag_link *l[2] = {NULL, NULL};
    void *d = NULL;
    size_t n;
    FM_TRY(ag_link_mem_group(2, names, l), 0);
    FM_TRY(ag_link_send(l[0], 1, 1, "hello", 5), 0);
    FM_TRY(ag_link_recv(l[1], 0, 1, &d, &n), 0);
    CHECK_MEM_EQ(d, "hello", 5);
out:
    ag_free(d);
    ag_link_free(l[0]);
    ag_link_free(l[1]);
}
