/* Tests for src/mesh/ident.c: the names the three identifier kinds give a
 * request, and the messages for requests that cannot be named. */
#include "mesh/dtab.h"
#include "test.h"

static ag__req_view req(const char *authority, const char *path)
{
    ag__req_view r = {.method = "POST", .authority = authority, .path = path};
    return r;
}

/* id names r want. */
static void check_name(const ag__ident *id, const ag__req_view *r, const char *want)
{
    ag_buf out;
    ag_buf_init(&out, 4096);
    CHECK_OK(ag_buf_append_str(&out, "left over")); /* replaced, not appended to */
    ag_errbuf err = {0};
    int rc = ag__ident_name(id, r, &out, &err);
    if (rc < 0)
        FAIL("want %s: %s: %s", want, ag_err_name(rc), err.msg);
    CHECK_STR_EQ((const char *)out.data, want);
    CHECK_EQ(out.len, strlen(want));
    CHECK_OK(ag__path_check((const char *)out.data, out.len, false, NULL));
    ag_buf_cleanup(&out);
}

/* id cannot name r: code and exactly msg. */
static void check_fail(const ag__ident *id, const ag__req_view *r, int code, const char *msg)
{
    ag_buf out;
    ag_buf_init(&out, 4096);
    ag_errbuf err = {0};
    int rc = ag__ident_name(id, r, &out, &err);
    if (rc != code)
        FAIL("want %s (%s), got %s (%s)", ag_err_name(code), msg, ag_err_name(rc),
             rc < 0 ? err.msg : (const char *)out.data);
    CHECK_STR_EQ(err.msg, msg);
    ag_buf_cleanup(&out);
}

static void check_authority(const char *authority, const char *want)
{
    ag__ident id;
    ag__ident_init(&id);
    ag__req_view r = req(authority, "/pkg.Svc/Method");
    check_name(&id, &r, want);
}

static void check_authority_fail(const char *authority, const char *msg)
{
    ag__ident id;
    ag__ident_init(&id);
    ag__req_view r = req(authority, "/pkg.Svc/Method");
    check_fail(&id, &r, AG_E_MESH_ROUTE, msg);
}

TEST(ident_init)
{
    ag__ident id;
    memset(&id, 0x5a, sizeof(id));
    ag__ident_init(&id);
    CHECK_EQ(id.kind, AG__IDENT_AUTHORITY);
    CHECK_STR_EQ(id.dst_prefix, "/svc");
    CHECK_EQ(id.segments, 1);
    CHECK_STR_EQ(id.header, "");
}

TEST(ident_authority)
{
    /* port stripped, host lowercased */
    check_authority("Users.Example:8080", "/svc/users.example");
    check_authority("users", "/svc/users");
    check_authority("users.example.com.", "/svc/users.example.com.");
    check_authority("10.0.0.1:443", "/svc/10.0.0.1");
    check_authority("host:", "/svc/host");
    check_authority(" host:80\t", "/svc/host");
    /* IPv6: brackets removed, with or without a port */
    check_authority("[::1]:80", "/svc/::1");
    check_authority("[::1]", "/svc/::1");
    check_authority("[FE80::1%25eth0]:9000", "/svc/fe80::1%25eth0");
    /* several ':' without brackets: taken whole */
    check_authority("fe80::1", "/svc/fe80::1");
}

TEST(ident_authority_errors)
{
    check_authority_fail(NULL, "no authority (:authority or Host header)");
    check_authority_fail("", "no authority (:authority or Host header)");
    check_authority_fail("  ", "no authority (:authority or Host header)");
    check_authority_fail("a b", "authority 'a b' is not a valid name segment");
    check_authority_fail("user@host", "authority 'user@host' is not a valid name segment");
    check_authority_fail("a/b", "authority 'a/b' is not a valid name segment");
    check_authority_fail("a*", "authority 'a*' is not a valid name segment");
    check_authority_fail(":80", "authority ':80' is not a valid name segment");
    check_authority_fail("[::1", "authority '[::1' is not a valid name segment");
    check_authority_fail("[::1]x", "authority '[::1]x' is not a valid name segment");
    check_authority_fail("[]:80", "authority '[]:80' is not a valid name segment");
    check_authority_fail("host:8x", "authority 'host:8x' has an invalid port");
    check_authority_fail("[::1]:http", "authority '[::1]:http' has an invalid port");
    check_authority_fail("caf\xc3\xa9", "authority 'caf\\xc3\\xa9' is not a valid name segment");
    /* a long authority is cut in the message */
    char big[300];
    memset(big, 'a', sizeof(big) - 2);
    big[sizeof(big) - 2] = '@';
    big[sizeof(big) - 1] = '\0';
    ag__ident id;
    ag__ident_init(&id);
    ag__req_view r = req(big, "/");
    ag_buf out;
    ag_buf_init(&out, 4096);
    ag_errbuf err = {0};
    CHECK_EQ(ag__ident_name(&id, &r, &out, &err), AG_E_MESH_ROUTE);
    CHECK(strlen(err.msg) < 200);
    CHECK_CONTAINS(err.msg, "aaa...' is not a valid name segment");
    /* a name past AG__PATH_MAX */
    char huge[AG__PATH_MAX + 1];
    memset(huge, 'h', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    r = req(huge, "/");
    CHECK_EQ(ag__ident_name(&id, &r, &out, &err), AG_E_MESH_ROUTE);
    CHECK_STR_EQ(err.msg, "the authority makes a name longer than 1024 bytes");
    /* and a name past out's maximum */
    r = req("users", "/");
    out.max = 6;
    CHECK_EQ(ag__ident_name(&id, &r, &out, &err), AG_E_TOO_LARGE);
    ag_buf_cleanup(&out);
}

TEST(ident_dst_prefix)
{
    ag__ident id;
    ag__ident_init(&id);
    ag__req_view r = req("Users:80", "/a/b");
    snprintf(id.dst_prefix, sizeof(id.dst_prefix), "/http/1.1/GET");
    check_name(&id, &r, "/http/1.1/GET/users");
    snprintf(id.dst_prefix, sizeof(id.dst_prefix), "/");
    check_name(&id, &r, "/users");
    id.kind = AG__IDENT_PATH;
    check_name(&id, &r, "/a");
    snprintf(id.dst_prefix, sizeof(id.dst_prefix), "svc");
    check_fail(&id, &r, AG_E_INVAL, "identifier's dst_prefix is not a valid path");
    memset(id.dst_prefix, 'a', sizeof(id.dst_prefix));
    check_fail(&id, &r, AG_E_INVAL, "identifier's dst_prefix is not a valid path");
}

TEST(ident_path)
{
    ag__ident id;
    ag__ident_init(&id);
    id.kind = AG__IDENT_PATH;
    ag__req_view r = req("ignored", "/pkg.Svc/Method");
    check_name(&id, &r, "/svc/pkg.Svc");
    id.segments = 2;
    check_name(&id, &r, "/svc/pkg.Svc/Method");
    /* query and fragment dropped; the rest of the path ignored */
    r = req(NULL, "/a/b?x=1/2");
    check_name(&id, &r, "/svc/a/b");
    r = req(NULL, "/a/b#frag");
    check_name(&id, &r, "/svc/a/b");
    r = req(NULL, "/a/b/c d/@");
    check_name(&id, &r, "/svc/a/b");
    r = req(NULL, "/a/b/");
    check_name(&id, &r, "/svc/a/b");
    /* absolute form, as sent to a proxy */
    r = req(NULL, "http://users.example:8080/a/b?q");
    check_name(&id, &r, "/svc/a/b");
    id.segments = 1;
    r = req(NULL, "/Users%20x/");
    check_name(&id, &r, "/svc/Users%20x");
}

TEST(ident_path_errors)
{
    ag__ident id;
    ag__ident_init(&id);
    id.kind = AG__IDENT_PATH;
    id.segments = 2;
    ag__req_view r = req("a", "/a");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "path '/a' has fewer than 2 segments");
    r = req("a", "/a/");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "path '/a/' has fewer than 2 segments");
    r = req("a", "/a?/b");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "path '/a' has fewer than 2 segments");
    r = req("a", "http://host");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "path '/' has fewer than 2 segments");
    id.segments = 1;
    r = req("a", "/");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "path '/' has fewer than 1 segment");
    id.segments = 2;
    r = req("a", "/a//b");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "segment 2 of path '/a//b' is empty");
    r = req("a", "//b");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "segment 1 of path '//b' is empty");
    r = req("a", "/a/b c");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "segment 2 of path '/a/b c' is not a valid name segment");
    r = req("a", "/a*/b");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "segment 1 of path '/a*/b' is not a valid name segment");
    r = req("a", "*");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "path '*' does not start with '/'");
    r = req("a", NULL);
    check_fail(&id, &r, AG_E_MESH_ROUTE, "no request path");
    r = req("a", "");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "no request path");
    id.segments = 0;
    r = req("a", "/a/b");
    check_fail(&id, &r, AG_E_INVAL, "identifier's segments must be >= 1");
}

TEST(ident_header)
{
    ag__hdr hdrs[] = {
        {"content-type", 12, "application/grpc", 16},
        {"X-Service", 9, " users ", 7},
        {"x-service", 9, "second", 6},
        {"x-route", 7, "/users/v2", 9},
        {"x-root", 6, "/", 1},
        {"x-bad", 5, "a b", 3},
        {"x-badpath", 9, "/a//b", 5},
        {"x-empty", 7, "", 0},
        {"x-ctl", 5, "a\x7f", 2},
    };
    ag__req_view r = req("auth", "/p/q");
    r.hdrs = hdrs;
    r.nhdrs = AG_ARRAY_LEN(hdrs);
    ag__ident id;
    ag__ident_init(&id);
    id.kind = AG__IDENT_HEADER;
    /* any case; the first one; the value trimmed and kept as written */
    snprintf(id.header, sizeof(id.header), "x-service");
    check_name(&id, &r, "/svc/users");
    /* a value starting with '/' is a path */
    snprintf(id.header, sizeof(id.header), "x-route");
    check_name(&id, &r, "/svc/users/v2");
    snprintf(id.header, sizeof(id.header), "x-root");
    check_name(&id, &r, "/svc");
    snprintf(id.dst_prefix, sizeof(id.dst_prefix), "/");
    check_name(&id, &r, "/");
    snprintf(id.header, sizeof(id.header), "x-route");
    check_name(&id, &r, "/users/v2");
    ag__ident_init(&id);
    id.kind = AG__IDENT_HEADER;
    /* errors */
    snprintf(id.header, sizeof(id.header), "x-missing");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "no header 'x-missing'");
    snprintf(id.header, sizeof(id.header), "x-bad");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "header 'x-bad' value 'a b' is not a valid name segment");
    snprintf(id.header, sizeof(id.header), "x-badpath");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "header 'x-badpath' value '/a//b' is not a valid path");
    snprintf(id.header, sizeof(id.header), "x-empty");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "header 'x-empty' value '' is not a valid name segment");
    snprintf(id.header, sizeof(id.header), "x-ctl");
    check_fail(&id, &r, AG_E_MESH_ROUTE,
               "header 'x-ctl' value 'a\\x7f' is not a valid name segment");
    /* a header name that is a prefix of another does not match it */
    snprintf(id.header, sizeof(id.header), "x-servic");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "no header 'x-servic'");
    r.nhdrs = 0;
    snprintf(id.header, sizeof(id.header), "x-service");
    check_fail(&id, &r, AG_E_MESH_ROUTE, "no header 'x-service'");
    id.header[0] = '\0';
    check_fail(&id, &r, AG_E_INVAL, "identifier's header is not set");
}

/* The only allocation is out's growth: its failure is a clean AG_E_NOMEM. */
TEST_FM(ident_failmalloc)
{
    ag__hdr hdr = {"x-service", 9, "/users/v1", 9};
    ag__req_view r = req("Users.Example:443", "/pkg.Svc/Method?x");
    r.hdrs = &hdr;
    r.nhdrs = 1;
    ag__ident id;
    ag__ident_init(&id);
    snprintf(id.header, sizeof(id.header), "x-service");
    ag_buf out;
    ag_buf_init(&out, 4096);
    ag_errbuf err = {0};
    for (int kind = 0; kind < 3; kind++) {
        id.kind = (ag__ident_kind)kind;
        ag_buf_cleanup(&out); /* so that each call allocates */
        FM_TRY(ag__ident_name(&id, &r, &out, &err), 0);
    }
    CHECK_STR_EQ((const char *)out.data, "/svc/users/v1");
out:
    ag_buf_cleanup(&out);
}
