/* Tests for src/base/arena.c. */
#include "test.h"

TEST(arena_alignment_and_reset)
{
    ag_arena *a = ag_arena_new(1024, 0, 0);
    CHECK(a != NULL);
    for (int i = 1; i < 200; i++) {
        uint8_t *p = ag_arena_alloc(a, (size_t)i);
        CHECK(p != NULL);
        CHECK_EQ((uintptr_t)p % 16, 0);
        memset(p, 0xab, (size_t)i);
    }
    CHECK(ag_arena_used(a) > 0);
    /* a large request gets its own chunk */
    uint8_t *big = ag_arena_alloc(a, 100000);
    CHECK(big != NULL);
    memset(big, 1, 100000);
    ag_arena_reset(a);
    CHECK_EQ(ag_arena_used(a), 0);
    char *s = ag_arena_strndup(a, "hello world", 5);
    CHECK_STR_EQ(s, "hello");
    uint32_t *z = ag_arena_calloc(a, 10, sizeof(*z));
    for (int i = 0; i < 10; i++)
        CHECK_EQ(z[i], 0);
    CHECK(ag_arena_alloc(a, 0) != NULL);
    CHECK(ag_arena_calloc(a, SIZE_MAX / 2, 4) == NULL);
    ag_arena_free(a);
    ag_arena_free(NULL);
}

TEST(arena_max)
{
    ag_arena *a = ag_arena_new(256, 1000, AG_ARENA_SECRET);
    CHECK(a != NULL);
    size_t got = 0;
    while (ag_arena_alloc(a, 100))
        got++;
    CHECK_EQ(got, 8); /* 8 * 112 (aligned) <= 1000 < 9 * 112 */
    CHECK(ag_arena_used(a) <= 1000);
    ag_arena_reset(a);
    CHECK(ag_arena_alloc(a, 100) != NULL);
    ag_arena_free(a);
}

TEST_FM(arena_failmalloc)
{
    ag_arena *a = ag_arena_new(128, 0, 0);
    FM_NEW(a);
    for (int i = 0; i < 40; i++) {
        void *p = ag_arena_alloc(a, (size_t)(i * 13 % 90 + 1));
        FM_NEW(p);
    }
out:
    ag_arena_free(a);
}
