/* Tests for src/base/strings.c: edit distance and suggestions. */
#include "test.h"

TEST(strings_edit_distance)
{
    CHECK_EQ(ag_edit_distance("", ""), 0);
    CHECK_EQ(ag_edit_distance("abc", ""), 3);
    CHECK_EQ(ag_edit_distance("kitten", "sitting"), 3);
    CHECK_EQ(ag_edit_distance("adress", "address"), 1);
    CHECK_EQ(ag_edit_distance("flaw", "lawn"), 2);
    CHECK_EQ(ag_edit_distance("alcie", "alice"), 1); /* a transposition is one edit */
    CHECK_EQ(ag_edit_distance("ab", "ba"), 1);
    CHECK_EQ(ag_edit_distance("ca", "abc"), 3);       /* OSA, not full Damerau (2) */
}

TEST(strings_nearest)
{
    const char *const keys[] = {"address", "gateway", "cert", NULL};
    CHECK_STR_EQ(ag_nearest("adress", keys), "address");
    CHECK_STR_EQ(ag_nearest("gatway", keys), "gateway");
    CHECK_STR_EQ(ag_nearest("crt", keys), "cert");
    CHECK_STR_EQ(ag_nearest("adderss", keys), "address");
    CHECK(ag_nearest("zzzzzz", keys) == NULL);
    const char *const none[] = {NULL};
    CHECK(ag_nearest("x", none) == NULL);
}
