/* Tests for src/base/strings.c: edit distance and suggestions. */
#include "test.h"

TEST(strings_edit_distance)
{
    CHECK_EQ(ag_edit_distance("", ""), 0);
    CHECK_EQ(ag_edit_distance("abc", ""), 3);
    CHECK_EQ(ag_edit_distance("kitten", "sitting"), 3);
    CHECK_EQ(ag_edit_distance("adress", "address"), 1);
    CHECK_EQ(ag_edit_distance("flaw", "lawn"), 2);
}

TEST(strings_nearest)
{
    const char *const keys[] = {"address", "gateway", "cert", NULL};
    CHECK_STR_EQ(ag_nearest("adress", keys), "address");
    CHECK_STR_EQ(ag_nearest("gatway", keys), "gateway");
    CHECK_STR_EQ(ag_nearest("crt", keys), "cert");
    CHECK(ag_nearest("zzzzzz", keys) == NULL);
    const char *const none[] = {NULL};
    CHECK(ag_nearest("x", none) == NULL);
}
