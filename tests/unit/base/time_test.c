/* Tests for src/base/time.c and src/base/random.c. */
#include "test.h"

TEST(time_monotonic_and_deadlines)
{
    uint64_t t0 = ag_now_ns();
    ag_sleep_ms(20);
    uint64_t t1 = ag_now_ns();
    CHECK(t1 - t0 >= 20000000u);
    CHECK(ag_wall_ms() > 1700000000000LL);

    ag_deadline never = ag_deadline_never();
    CHECK(ag_deadline_is_never(never));
    CHECK(!ag_deadline_expired(never));
    CHECK_U64_EQ(ag_deadline_remaining_ms(never), UINT64_MAX);

    ag_deadline d = ag_deadline_in_ms(30);
    CHECK(!ag_deadline_expired(d));
    uint64_t left = ag_deadline_remaining_ms(d);
    CHECK(left > 0 && left <= 30);
    ag_sleep_ms(40);
    CHECK(ag_deadline_expired(d));
    CHECK_EQ(ag_deadline_remaining_ms(d), 0);
    CHECK_U64_EQ(ag_deadline_min(d, never).at_ns, d.at_ns);
    /* no overflow on huge timeouts */
    CHECK(ag_deadline_is_never(ag_deadline_in_ms(UINT64_MAX)));
}

TEST(random_bytes_and_uniform)
{
    uint8_t a[64], b[64];
    CHECK_OK(ag_random_bytes(a, sizeof(a)));
    CHECK_OK(ag_random_bytes(b, sizeof(b)));
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    unsigned hist[6] = {0};
    for (int i = 0; i < 6000; i++) {
        uint64_t v = ag_random_uniform(6);
        CHECK(v < 6);
        hist[v]++;
    }
    for (int i = 0; i < 6; i++)
        CHECK(hist[i] > 800 && hist[i] < 1200);
    CHECK_EQ(ag_random_uniform(1), 0);
}
