/* Tests for src/base/error.c: the code tables and ag_errbuf. */
#include <errno.h>

#include "test.h"

TEST(error_names_and_texts)
{
    CHECK_STR_EQ(ag_err_name(AG_E_NOMEM), "AG_E_NOMEM");
    CHECK_STR_EQ(ag_strerror(AG_E_NOMEM), "out of memory");
    CHECK_STR_EQ(ag_err_name(0), "AG_OK");
    CHECK_STR_EQ(ag_err_name(-9999), "AG_E_UNKNOWN");
    CHECK_STR_EQ(ag_strerror(-9999), "unknown error");
    CHECK_STR_EQ(ag_err_name(AG_E_CSV_FIELDS), "AG_E_CSV_FIELDS");
    CHECK_EQ(ag_err_from_errno(ENOENT), AG_E_NOENT);
    CHECK_EQ(ag_err_from_errno(ENOSPC), AG_E_IO);
    CHECK_EQ(ag_err_from_errno(EXDEV), AG_E_SYS);
}

TEST(error_errbuf_set_and_truncate)
{
    ag_errbuf e;
    ag_errbuf_clear(&e);
    CHECK_EQ(e.code, 0);
    CHECK_STR_EQ(e.msg, "");
    CHECK_EQ(ag_errbuf_set(&e, AG_E_INVAL, "x.yaml:%d:%d: bad", 3, 4), AG_E_INVAL);
    CHECK_STR_EQ(e.msg, "x.yaml:3:4: bad");
    char big[AG_ERRMSG_MAX * 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ag_errbuf_set(&e, AG_E_IO, "%s", big);
    CHECK_EQ(strlen(e.msg), AG_ERRMSG_MAX - 1);
    CHECK_STR_EQ(e.msg + AG_ERRMSG_MAX - 4, "...");
}
