/* Tests for src/base/buf.c: slices and growable buffers with a maximum. */
#include "test.h"

TEST(buf_append_printf_and_terminator)
{
    ag_buf b;
    ag_buf_init(&b, 1024);
    CHECK(b.data == NULL);
    CHECK_OK(ag_buf_append_str(&b, "key="));
    CHECK_OK(ag_buf_printf(&b, "%d-%s", 42, "x"));
    CHECK_EQ(b.len, 8);
    CHECK_STR_EQ((char *)b.data, "key=42-x");
    CHECK(ag_slice_eq_str(ag_buf_slice(&b), "key=42-x"));
    ag_buf_consume(&b, 4);
    CHECK_STR_EQ((char *)b.data, "42-x");
    ag_buf_reset(&b);
    CHECK_EQ(b.len, 0);
    CHECK_STR_EQ((char *)b.data, "");
    ag_buf_cleanup(&b);
    CHECK(b.data == NULL);
}

TEST(buf_max_is_enforced)
{
    ag_buf b;
    ag_buf_init(&b, 10);
    CHECK_OK(ag_buf_append(&b, "0123456789", 10));
    CHECK_EQ(ag_buf_append_byte(&b, 'x'), AG_E_TOO_LARGE);
    CHECK_EQ(ag_buf_printf(&b, "%s", "y"), AG_E_TOO_LARGE);
    CHECK_EQ(b.len, 10); /* nothing lost or corrupted */
    CHECK_MEM_EQ(b.data, "0123456789", 10);
    CHECK(b.cap <= 11);
    ag_buf_cleanup(&b);
    ag_buf_init(&b, SIZE_MAX);
    CHECK_EQ(ag_buf_reserve(&b, SIZE_MAX), AG_E_TOO_LARGE);
    ag_buf_cleanup(&b);
}

TEST(buf_take_transfers_ownership)
{
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    size_t len;
    CHECK(ag_buf_take(&b, &len) == NULL);
    CHECK_EQ(len, 0);
    for (int i = 0; i < 1000; i++)
        CHECK_OK(ag_buf_append(&b, "abcdefgh", 8));
    uint8_t *p = ag_buf_take(&b, &len);
    CHECK_EQ(len, 8000);
    CHECK(b.data == NULL && b.len == 0);
    CHECK_MEM_EQ(p + 7992, "abcdefgh", 8);
    ag_free(p);
    ag_buf_cleanup(&b);
}

TEST(buf_secret_growth_keeps_content)
{
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    b.secret = true;
    uint8_t chunk[100];
    for (int i = 0; i < 100; i++)
        chunk[i] = (uint8_t)i;
    for (int i = 0; i < 50; i++)
        CHECK_OK(ag_buf_append(&b, chunk, sizeof(chunk)));
    for (int i = 0; i < 50; i++)
        CHECK_MEM_EQ(b.data + i * 100, chunk, 100);
    ag_buf_cleanup(&b);
}

TEST_FM(buf_failmalloc)
{
    ag_buf b;
    ag_buf_init(&b, 1 << 16);
    for (int i = 0; i < 64; i++)
        FM_TRY(ag_buf_printf(&b, "%08d", i), 0);
    CHECK_EQ(b.len, 512);
out:
    /* a failed append leaves the buffer intact */
    CHECK(b.len % 8 == 0);
    ag_buf_cleanup(&b);
}

TEST(buf_slices)
{
    ag_slice a = ag_slice_str("abc"), b = ag_slice_make("abcd", 3), e = ag_slice_str(NULL);
    CHECK(ag_slice_eq(a, b));
    CHECK(!ag_slice_eq(a, ag_slice_str("abd")));
    CHECK(ag_slice_eq(e, ag_slice_make(NULL, 0)));
    CHECK(ag_slice_eq_str(e, ""));
}
