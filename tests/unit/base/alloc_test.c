/* Tests for src/base/alloc.c: failure injection and live counting. */
#include "test.h"

TEST(alloc_injection_and_counting)
{
    /* the runner turned tracking on for this test: restart it cleanly */
    ag_alloc_tracking(true);
    void *a = ag_malloc(10);
    char *s = ag_strdup("hello");
    CHECK(a && s);
    CHECK_STR_EQ(s, "hello");
    CHECK_EQ(ag_alloc_count(), 2);
    CHECK_EQ(ag_alloc_live(), 2);
    ag_alloc_fail_at(4); /* the 4th allocation since tracking began */
    void *b = ag_calloc(2, 8);
    CHECK(b != NULL);
    CHECK(!ag_alloc_failed());
    CHECK(ag_malloc(1) == NULL);
    CHECK(ag_alloc_failed());
    ag_alloc_fail_at(0);
    a = ag_realloc(a, 1000);
    CHECK(a != NULL);
    CHECK(ag_reallocarray(NULL, SIZE_MAX / 2, 4) == NULL);
    char *t = ag_strndup("abcdef", 3);
    CHECK_STR_EQ(t, "abc");
    ag_free(t);
    ag_free(b);
    ag_free(s);
    ag_free(a);
    ag_free(NULL);
    CHECK_EQ(ag_alloc_live(), 0);
    uint8_t secret[16];
    memset(secret, 0xaa, sizeof(secret));
    ag_wipe(secret, sizeof(secret));
    for (size_t i = 0; i < sizeof(secret); i++)
        CHECK_EQ(secret[i], 0);
}
