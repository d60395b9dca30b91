/* Tests for src/mesh/dtab.c: paths, the dtab parser (every construct, every
 * error with its position, the limits), showing and the round trip,
 * concatenation, and delegation (rewrites, precedence and fallback,
 * wildcards, bound names, unions, loops, limits, the trace). */
#include "mesh/dtab.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------- */

static ag__dtab *parse_ok(const char *text)
{
    ag__dtab *d = NULL;
    ag_errbuf err = {0};
    int line = 0, col = 0;
    int rc = ag__dtab_parse(text, strlen(text), &d, &line, &col, &err);
    if (rc < 0)
        FAIL("parse of \"%s\": %s at %d:%d: %s", text, ag_err_name(rc), line, col, err.msg);
    CHECK(d != NULL);
    return d;
}

/* The dtab shown, in a new string (free with ag_free). */
static char *show_dtab(const ag__dtab *d)
{
    ag_buf b;
    ag_buf_init(&b, 1 << 24);
    CHECK_OK(ag__dtab_show(d, &b));
    CHECK_OK(ag_buf_append(&b, "", 0));
    size_t n;
    return (char *)ag_buf_take(&b, &n);
}

static char *show_tree(const ag__ntree *t)
{
    ag_buf b;
    ag_buf_init(&b, 1 << 24);
    CHECK_OK(ag__ntree_show(t, &b));
    CHECK_OK(ag_buf_append(&b, "", 0));
    size_t n;
    return (char *)ag_buf_take(&b, &n);
}

/* text parses, shows as want, and want parses back and shows the same. */
static void check_show(const char *text, const char *want)
{
    ag__dtab *d = parse_ok(text);
    char *s = show_dtab(d);
    CHECK_STR_EQ(s, want);
    ag__dtab *d2 = parse_ok(s);
    char *s2 = show_dtab(d2);
    CHECK_STR_EQ(s2, s);
    CHECK_EQ(ag__dtab_len(d2), ag__dtab_len(d));
    ag_free(s);
    ag_free(s2);
    ag__dtab_free(d);
    ag__dtab_free(d2);
}

/* text must fail with AG_E_MESH_DTAB at line:col with exactly msg. */
static void check_err(const char *text, size_t len, int line, int col, const char *msg)
{
    ag__dtab *d = (ag__dtab *)&d; /* must be reset to NULL */
    ag_errbuf err = {0};
    int l = 0, c = 0;
    int rc = ag__dtab_parse(text, len, &d, &l, &c, &err);
    if (rc != AG_E_MESH_DTAB)
        FAIL("parse of \"%s\": %s, want AG_E_MESH_DTAB", text, ag_err_name(rc));
    CHECK(d == NULL);
    CHECK_EQ(err.code, AG_E_MESH_DTAB);
    CHECK_STR_EQ(err.msg, msg);
    if (l != line || c != col)
        FAIL("parse of \"%s\": error at %d:%d, want %d:%d (%s)", text, l, c, line, col, msg);
}
#define CHECK_ERR(text, line, col, msg) check_err((text), strlen(text), (line), (col), (msg))

/* Delegates path through dtab and returns the result shown (ag_free it). */
static char *deleg(const char *dtab, const char *path)
{
    ag__dtab *d = parse_ok(dtab);
    ag__ntree *t = NULL;
    ag_errbuf err = {0};
    int rc = ag__dtab_delegate(d, path, &t, NULL, &err);
    if (rc < 0)
        FAIL("delegation of %s: %s: %s", path, ag_err_name(rc), err.msg);
    char *s = show_tree(t);
    ag__ntree_free(t);
    ag__dtab_free(d);
    return s;
}

static void check_deleg(const char *dtab, const char *path, const char *want)
{
    char *s = deleg(dtab, path);
    CHECK_STR_EQ(s, want);
    ag_free(s);
}

static void check_deleg_err(const char *dtab, const char *path, int code, const char *msg)
{
    ag__dtab *d = parse_ok(dtab);
    ag__ntree *t = (ag__ntree *)&t;
    ag_errbuf err = {0};
    int rc = ag__dtab_delegate(d, path, &t, NULL, &err);
    if (rc != code)
        FAIL("delegation of %s: %s (%s), want %s", path, ag_err_name(rc), err.msg,
             ag_err_name(code));
    CHECK(t == NULL);
    CHECK_STR_EQ(err.msg, msg);
    ag__dtab_free(d);
}

/* n copies of head, i, tail (i from 0) separated by sep, for the limits
 * (ag_free it). */
static char *repeat(const char *head, const char *tail, size_t n, const char *sep)
{
    ag_buf b;
    ag_buf_init(&b, 1 << 26);
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(ag_buf_append_str(&b, i ? sep : ""));
        CHECK_OK(ag_buf_printf(&b, "%s%zu%s", head, i, tail));
    }
    CHECK_OK(ag_buf_append(&b, "", 0));
    size_t len;
    return (char *)ag_buf_take(&b, &len);
}

/* ---- paths --------------------------------------------------------------- */

static void check_path_err(const char *p, bool wild, const char *msg)
{
    ag_errbuf err = {0};
    CHECK_EQ(ag__path_check(p, strlen(p), wild, &err), AG_E_MESH_DTAB);
    CHECK_STR_EQ(err.msg, msg);
}

TEST(dtab_path_check)
{
    const char *ok[] = {
        "/", "/a", "/a/b", "/Svc/users.example:8080", "/#/fs/a_b-c%20", "/$/inet/::1/80"};
    for (size_t i = 0; i < AG_ARRAY_LEN(ok); i++)
        CHECK_OK(ag__path_check(ok[i], strlen(ok[i]), false, NULL));
    CHECK_OK(ag__path_check("/svc/*/x", 8, true, NULL));
    CHECK_OK(ag__path_check("/*", 2, true, NULL));
    check_path_err("/a//b", false, "segment 2 of '/a//b' is empty");
    check_path_err("/a b", false, "'/a b' has ' ' at byte 3");
    check_path_err("//", false, "segment 1 of '//' is empty");
    check_path_err("/a/", false, "segment 2 of '/a/' is empty");
    check_path_err("a/b", false, "'a/b' does not start with '/'");
    check_path_err("", false, "empty path (a path starts with '/')");
    check_path_err("/a\x01", false, "'/a\\x01' has '\\x01' at byte 3");
    check_path_err("/svc/*", false, "'/svc/*' has '*' at byte 6: '*' is allowed only in a prefix");
    check_path_err("/svc/a*", true, "'/svc/a*' has '*' at byte 7: a wildcard is a whole segment");
    check_path_err("/svc/*a", true, "'/svc/*a' has '*' at byte 6: a wildcard is a whole segment");
    /* the length limit, and a path with a NUL inside */
    char buf[AG__PATH_MAX + 2];
    buf[0] = '/';
    memset(buf + 1, 'a', sizeof(buf) - 1);
    CHECK_OK(ag__path_check(buf, AG__PATH_MAX, false, NULL));
    ag_errbuf err = {0};
    CHECK_EQ(ag__path_check(buf, AG__PATH_MAX + 1, false, &err), AG_E_MESH_DTAB);
    CHECK_CONTAINS(err.msg, "is longer than 1024 bytes");
    CHECK_EQ(ag__path_check("/a\0b", 4, false, &err), AG_E_MESH_DTAB);
    CHECK_STR_EQ(err.msg, "'/a\\x00b' has '\\x00' at byte 3");
}

/* ---- parsing and showing ------------------------------------------------- */

TEST(dtab_parse_names)
{
    check_show("/svc => /#/fs", "/svc => /#/fs;\n");
    check_show("/svc=>/#/fs;", "/svc => /#/fs;\n");
    check_show("/a => /b; /c/d => /e/f.g:h_i-j%k$l#m;", "/a => /b;\n/c/d => /e/f.g:h_i-j%k$l#m;\n");
    check_show("/ => /#/root", "/ => /#/root;\n");
    check_show("/svc => /", "/svc => /;\n");
    /* an empty text, whitespace and comments: an empty dtab */
    const char *empty[] = {"", "  \n\t\r\n", "# only a comment", "# a\n   # b\n"};
    for (size_t i = 0; i < AG_ARRAY_LEN(empty); i++) {
        ag__dtab *d = parse_ok(empty[i]);
        CHECK_EQ(ag__dtab_len(d), 0);
        char *s = show_dtab(d);
        CHECK_STR_EQ(s, "");
        ag_free(s);
        ag__dtab_free(d);
    }
    ag__dtab *d = parse_ok("/a => /b; /c => /d; /e => /f");
    CHECK_EQ(ag__dtab_len(d), 3);
    ag__dtab_free(d);
    CHECK_EQ(ag__dtab_len(NULL), 0);
}

TEST(dtab_parse_trees)
{
    check_show("/a => ~", "/a => ~;\n");
    check_show("/a => !", "/a => !;\n");
    check_show("/a => $", "/a => $;\n");
    check_show("/a => /b | /c | ~", "/a => /b | /c | ~;\n");
    check_show("/a => 0.9 * /#/fs/a & 0.1 * /#/fs/b | ~",
               "/a => 0.9 * /#/fs/a & 0.1 * /#/fs/b | ~;\n");
    /* the default weight is 1, and a weight of 1 is not shown */
    check_show("/a => /b & 2 * /c & 1 * /d", "/a => /b & 2 * /c & /d;\n");
    check_show("/a => 3*/b&.5*/c", "/a => 3 * /b & 0.5 * /c;\n");
    check_show("/a => 1e6 * /b & 2.5e-3 * /c & 1000000 * /d & 7. * /e",
               "/a => 1e+06 * /b & 0.0025 * /c & 1e+06 * /d & 7 * /e;\n");
    check_show("/a => 0.1234567 * /b & /c", "/a => 0.123457 * /b & /c;\n");
    /* weights apply to any tree; a union of one branch is that branch */
    check_show("/a => 2 * ~ & 3 * ! & $", "/a => 2 * ~ & 3 * ! & $;\n");
    check_show("/a => 5 * /b", "/a => /b;\n");
    /* grouping: parentheses kept only where needed */
    check_show("/a => (/b)", "/a => /b;\n");
    check_show("/a => ((((/b))))", "/a => /b;\n");
    check_show("/a => (/b & /c) | /d", "/a => /b & /c | /d;\n");
    check_show("/a => /b & (/c | /d)", "/a => /b & (/c | /d);\n");
    check_show("/a => 2 * (/b | /c) & /d", "/a => 2 * (/b | /c) & /d;\n");
    check_show("/a => (/b | /c) | /d", "/a => (/b | /c) | /d;\n");
    check_show("/a => /b | (/c | /d)", "/a => /b | (/c | /d);\n");
    check_show("/a => (/b & /c) & /d", "/a => (/b & /c) & /d;\n");
    check_show("/a => 2 * (3 * /b & /c) & /d", "/a => 2 * (3 * /b & /c) & /d;\n");
}

/* '&' binds tighter than '|': seen in the tree itself (delegation of a
 * bound dtab gives the parsed tree back). */
TEST(dtab_parse_precedence)
{
    ag__dtab *d = parse_ok("/x => /#/a & /#/b | /#/c & 2 * /#/d | /#/e");
    ag__ntree *t;
    CHECK_OK(ag__dtab_delegate(d, "/x", &t, NULL, NULL));
    CHECK_EQ(t->kind, AG__NT_ALT);
    CHECK_EQ(t->n, 3);
    CHECK_EQ(t->kids[0]->kind, AG__NT_UNION);
    CHECK_EQ(t->kids[0]->n, 2);
    CHECK_STR_EQ(t->kids[0]->kids[1]->path, "/#/b");
    CHECK_EQ(t->kids[1]->kind, AG__NT_UNION);
    CHECK(t->kids[1]->weights[0] == 1.0);
    CHECK(t->kids[1]->weights[1] == 2.0);
    CHECK_EQ(t->kids[2]->kind, AG__NT_LEAF);
    CHECK_STR_EQ(t->kids[2]->path, "/#/e");
    ag__ntree_free(t);
    ag__dtab_free(d);

    d = parse_ok("/x => /#/a & (/#/b | /#/c)");
    CHECK_OK(ag__dtab_delegate(d, "/x", &t, NULL, NULL));
    CHECK_EQ(t->kind, AG__NT_UNION);
    CHECK_EQ(t->kids[1]->kind, AG__NT_ALT);
    ag__ntree_free(t);
    ag__dtab_free(d);
}

TEST(dtab_parse_whitespace_comments)
{
    const char *text = "# the base dtab\n"
                       "/svc   =>\t/#/fs  # users live on disk\n"
                       "  ;\n"
                       "/svc/b\n"
                       "  =>\n"
                       "  /#/a\n"
                       "  | # a comment inside a tree\n"
                       "  /#/b\r\n"
                       ";   # the last ';' is optional\n";
    check_show(text, "/svc => /#/fs;\n/svc/b => /#/a | /#/b;\n");
    /* '#' inside a path is a segment character, not a comment */
    check_show("/#/fs => /#/fs#x#y;/a#b => /#", "/#/fs => /#/fs#x#y;\n/a#b => /#;\n");
    check_show("/a=>/b|/c&/d", "/a => /b | /c & /d;\n");
}

TEST(dtab_parse_wildcards)
{
    check_show("/svc/*/users => /#/fs/users", "/svc/*/users => /#/fs/users;\n");
    check_show("/* => /#/any", "/* => /#/any;\n");
    CHECK_ERR("/a => /b/*", 1, 10, "'*' is allowed only in a prefix");
    CHECK_ERR("/a => 2 * /*", 1, 12, "'*' is allowed only in a prefix");
    CHECK_ERR("/a/b* => /c", 1, 5, "'/a/b*' has '*' at byte 5: a wildcard is a whole segment");
}

TEST(dtab_parse_errors)
{
    CHECK_ERR("/svc /#/fs", 1, 6, "expected '=>' after prefix '/svc'");
    CHECK_ERR("/svc = /#/fs", 1, 6, "expected '=>' after prefix '/svc'");
    CHECK_ERR("/svc", 1, 5, "expected '=>' after prefix '/svc'");
    CHECK_ERR("/a => 0 * /b", 1, 7, "weight must be > 0, got '0'");
    CHECK_ERR("/a => /b & 0.0 * /c", 1, 12, "weight must be > 0, got '0.0'");
    CHECK_ERR("/a => -1 * /b", 1, 7, "weight must be > 0, got '-1'");
    CHECK_ERR("/a => 1e-400 * /b", 1, 7, "weight must be > 0, got '1e-400'");
    CHECK_ERR("/a => 1e999 * /b", 1, 7, "weight '1e999' is too large");
    CHECK_ERR("/a => 1x * /b", 1, 7, "weight '1x' is not a decimal number");
    CHECK_ERR("/a => 1e * /b", 1, 7, "weight '1e' is not a decimal number");
    CHECK_ERR("/a => . * /b", 1, 7, "weight '.' is not a decimal number");
    CHECK_ERR("/a => 2 /b", 1, 9, "expected '*' after weight '2', got '/b'");
    CHECK_ERR("/a => /b)", 1, 9, "unbalanced ')'");
    CHECK_ERR("/a => )", 1, 7, "unbalanced ')'");
    CHECK_ERR("/a => (/b", 1, 7, "unbalanced '('");
    CHECK_ERR("/a => ((/b) | /c;\n/d => /e", 1, 7, "unbalanced '('");
    CHECK_ERR("/a => (/b /c)", 1, 11, "expected '|', '&' or ')', got '/c'");
    CHECK_ERR("/a => ()", 1, 8, "expected a tree, got ')'");
    CHECK_ERR("/a => ", 1, 7, "expected a tree, got end of input");
    CHECK_ERR("/a => ;", 1, 7, "expected a tree, got ';'");
    CHECK_ERR("/a => /b |", 1, 11, "expected a tree, got end of input");
    CHECK_ERR("/a => /b & | /c", 1, 12, "expected a tree, got '|'");
    CHECK_ERR("/a => foo", 1, 7, "expected a tree, got 'foo'");
    CHECK_ERR("/a => @", 1, 7, "expected a tree, got '@'");
    CHECK_ERR("/a => /b /c", 1, 10, "expected '|', '&', ';' or end of input, got '/c'");
    CHECK_ERR("/a => /b => /c", 1, 10, "expected '|', '&', ';' or end of input, got '=>'");
    CHECK_ERR("/a => /b;;", 1, 10, "expected a prefix (a path starting with '/'), got ';'");
    CHECK_ERR(";", 1, 1, "expected a prefix (a path starting with '/'), got ';'");
    CHECK_ERR("svc => /b", 1, 1, "expected a prefix (a path starting with '/'), got 'svc'");
    CHECK_ERR("/a => /b//c", 1, 10, "segment 2 of '/b//c' is empty");
    CHECK_ERR("/a/ => /b", 1, 3, "segment 2 of '/a/' is empty");
    CHECK_ERR("/a => /b/", 1, 9, "segment 2 of '/b/' is empty");
    /* lines and columns: 1-based, counted in bytes, comments included */
    CHECK_ERR("/a => /b;\n# c\n  /c => /d\n\t/e => 0 * /f", 4, 2,
              "expected '|', '&', ';' or end of input, got '/e'");
    CHECK_ERR("/a => /b;\n# c\n/c =>\n\t\t0 * /f", 4, 3, "weight must be > 0, got '0'");
    /* bytes that are no token are quoted */
    check_err("/a => \x01", 7, 1, 7, "expected a tree, got '\\x01'");
    check_err("/a => /b\0", 9, 1, 9, "expected '|', '&', ';' or end of input, got '\\x00'");
    /* line and col may be NULL; *out is NULL on failure */
    ag__dtab *d = NULL;
    ag_errbuf err = {0};
    CHECK_EQ(ag__dtab_parse("/a =>", 5, &d, NULL, NULL, &err), AG_E_MESH_DTAB);
    CHECK(d == NULL);
    CHECK_EQ(ag__dtab_parse("/a =>", 5, &d, NULL, NULL, NULL), AG_E_MESH_DTAB);
    /* only len bytes are read */
    CHECK_OK(ag__dtab_parse("/a => /b garbage", 8, &d, NULL, NULL, &err));
    CHECK_EQ(ag__dtab_len(d), 1);
    ag__dtab_free(d);
}

TEST(dtab_parse_limits)
{
    ag_buf b, want;
    ag_buf_init(&b, 1 << 24);
    ag_buf_init(&want, 1 << 24);
    size_t col = strlen("/a => ");

    /* AG__TREE_MAX_BRANCHES in an alternation and in a union */
    char *alts = repeat("/b", "", AG__TREE_MAX_BRANCHES, " | ");
    char *unis = repeat("/b", "", AG__TREE_MAX_BRANCHES, " & ");
    CHECK_OK(ag_buf_printf(&b, "/a => %s", alts));
    CHECK_OK(ag_buf_printf(&want, "/a => %s;\n", alts));
    check_show((const char *)b.data, (const char *)want.data);
    CHECK_OK(ag_buf_append_str(&b, " | /c"));
    CHECK_ERR((const char *)b.data, 1, (int)(col + strlen(alts) + 2),
              "more than 256 branches in an alternation");
    ag_buf_reset(&b);
    ag_buf_reset(&want);
    CHECK_OK(ag_buf_printf(&b, "/a => %s", unis));
    CHECK_OK(ag_buf_printf(&want, "/a => %s;\n", unis));
    check_show((const char *)b.data, (const char *)want.data);
    CHECK_OK(ag_buf_append_str(&b, " & 2 * /c"));
    CHECK_ERR((const char *)b.data, 1, (int)(col + strlen(unis) + 2),
              "more than 256 branches in a union");
    /* the limit is per alternation: groups of 256 are fine, and shown with
     * their parentheses (so that the text parses again) */
    ag_buf_reset(&b);
    ag_buf_reset(&want);
    CHECK_OK(ag_buf_printf(&b, "/a => (%s) | (%s) | %s", alts, alts, unis));
    CHECK_OK(ag_buf_printf(&want, "/a => (%s) | (%s) | %s;\n", alts, alts, unis));
    check_show((const char *)b.data, (const char *)want.data);
    ag_free(alts);
    ag_free(unis);

    /* AG__DTAB_MAX_ENTRIES dentries */
    char *ents = repeat("/a", " => /b", AG__DTAB_MAX_ENTRIES, ";\n");
    ag__dtab *d = parse_ok(ents);
    CHECK_EQ(ag__dtab_len(d), AG__DTAB_MAX_ENTRIES);
    ag__dtab_free(d);
    ag_buf_reset(&b);
    CHECK_OK(ag_buf_printf(&b, "%s;\n  /x => /y", ents));
    CHECK_ERR((const char *)b.data, AG__DTAB_MAX_ENTRIES + 1, 3, "more than 4096 dentries");
    ag_free(ents);

    /* AG__PATH_MAX bytes in a path, in a prefix and in a tree */
    char path[AG__PATH_MAX + 2];
    path[0] = '/';
    memset(path + 1, 'p', AG__PATH_MAX);
    path[AG__PATH_MAX] = '\0';
    ag_buf_reset(&b);
    CHECK_OK(ag_buf_printf(&b, "%s => %s", path, path));
    d = parse_ok((const char *)b.data);
    ag__dtab_free(d);
    ag_buf_cleanup(&b);
    ag_buf_cleanup(&want);
}

/* A path longer than AG__PATH_MAX: the message names it (cut) and the
 * column is the first byte past the limit. */
TEST(dtab_parse_long_path)
{
    char text[AG__PATH_MAX + 16];
    memcpy(text, "/a => /", 7);
    memset(text + 7, 'q', AG__PATH_MAX);
    text[7 + AG__PATH_MAX] = '\0';
    ag__dtab *d = NULL;
    ag_errbuf err = {0};
    int line, col;
    CHECK_EQ(ag__dtab_parse(text, strlen(text), &d, &line, &col, &err), AG_E_MESH_DTAB);
    CHECK_EQ(line, 1);
    CHECK_EQ(col, 7 + AG__PATH_MAX);
    CHECK_CONTAINS(err.msg, "path '/qqqq");
    CHECK_CONTAINS(err.msg, "...' is longer than 1024 bytes");
}

TEST(dtab_parse_nesting)
{
    char text[256];
    snprintf(text, sizeof(text), "/a => %.*s/b%.*s", 32, "((((((((((((((((((((((((((((((((((((((((",
             32, "))))))))))))))))))))))))))))))))))))))))");
    check_show(text, "/a => /b;\n");
    snprintf(text, sizeof(text), "/a => %.*s/b%.*s", 33, "((((((((((((((((((((((((((((((((((((((((",
             33, "))))))))))))))))))))))))))))))))))))))))");
    CHECK_ERR(text, 1, 7 + 32, "more than 32 nested '('");
}

/* Every tree shown parses back to a tree shown the same way. */
TEST(dtab_show_round_trip)
{
    static const char *const texts[] = {
        "/a => /b",
        "/a => ~ | ! | $",
        "/a/*/c => 0.25 * /#/x & 0.75 * (/#/y | ~) | !",
        "/a => ((/b | /c) & (3 * /d & /e)) | (/f | (/g | /h))",
        "/a => 1.5 * (2 * (3 * /b & /c) & /d) & 1e-300 * /e & 123456789 * /f",
        "/ => /; /* => /#/$; /#/x => /$/inet/127.0.0.1/80",
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(texts); i++) {
        ag__dtab *d = parse_ok(texts[i]);
        char *s = show_dtab(d);
        check_show(s, s);
        ag_free(s);
        ag__dtab_free(d);
    }
    check_show("/a => 1.5 * (2 * (3 * /b & /c) & /d) & 123456789 * /f",
               "/a => 1.5 * (2 * (3 * /b & /c) & /d) & 1.23457e+08 * /f;\n");
    /* showing appends */
    ag__dtab *d = parse_ok("/a => /b");
    ag_buf b;
    ag_buf_init(&b, 64);
    CHECK_OK(ag_buf_append_str(&b, "x:"));
    CHECK_OK(ag__dtab_show(d, &b));
    CHECK_STR_EQ((const char *)b.data, "x:/a => /b;\n");
    /* and fails cleanly past the buffer's maximum */
    ag_buf_reset(&b);
    b.max = 5;
    CHECK_EQ(ag__dtab_show(d, &b), AG_E_TOO_LARGE);
    ag_buf_cleanup(&b);
    ag__dtab_free(d);
}

TEST(dtab_concat)
{
    ag__dtab *a = parse_ok("/svc => /#/a; /x => /#/x");
    ag__dtab *b = parse_ok("/svc => /#/b");
    ag__dtab *ab = ag__dtab_concat(a, b);
    ag__dtab *ba = ag__dtab_concat(b, a);
    CHECK(ab && ba);
    CHECK_EQ(ag__dtab_len(ab), 3);
    char *s = show_dtab(ab);
    CHECK_STR_EQ(s, "/svc => /#/a;\n/x => /#/x;\n/svc => /#/b;\n");
    ag_free(s);
    /* b's entries take precedence; the inputs may go first (entries are
     * shared, not copied) */
    ag__dtab_free(a);
    ag__dtab_free(b);
    ag__ntree *t;
    CHECK_OK(ag__dtab_delegate(ab, "/svc/u", &t, NULL, NULL));
    s = show_tree(t);
    CHECK_STR_EQ(s, "/#/b/u | /#/a/u");
    ag_free(s);
    ag__ntree_free(t);
    CHECK_OK(ag__dtab_delegate(ba, "/svc/u", &t, NULL, NULL));
    s = show_tree(t);
    CHECK_STR_EQ(s, "/#/a/u | /#/b/u");
    ag_free(s);
    ag__ntree_free(t);
    /* NULL is the empty dtab */
    ag__dtab *c = ag__dtab_concat(ab, NULL);
    ag__dtab *e = ag__dtab_concat(NULL, NULL);
    CHECK(c && e);
    CHECK_EQ(ag__dtab_len(c), 3);
    CHECK_EQ(ag__dtab_len(e), 0);
    ag__dtab *f = ag__dtab_concat(NULL, c);
    CHECK_EQ(ag__dtab_len(f), 3);
    ag__dtab_free(ab);
    ag__dtab_free(ba);
    s = show_dtab(f);
    CHECK_STR_EQ(s, "/svc => /#/a;\n/x => /#/x;\n/svc => /#/b;\n");
    ag_free(s);
    ag__dtab_free(c);
    ag__dtab_free(e);
    ag__dtab_free(f);
    ag__dtab_free(NULL);
}

/* ---- delegation ---------------------------------------------------------- */

TEST(dtab_delegate_rewrite)
{
    /* the residual is appended to each name */
    check_deleg("/svc => /#/fs", "/svc/users", "/#/fs/users");
    check_deleg("/svc => /#/fs", "/svc/users/v2/x", "/#/fs/users/v2/x");
    check_deleg("/svc => /#/fs", "/svc", "/#/fs");
    check_deleg("/svc/users => /#/fs/u", "/svc/users/a", "/#/fs/u/a");
    /* prefixes match whole segments */
    check_deleg("/svc => /#/fs", "/svcx/users", "~");
    check_deleg("/svc/users => /#/fs", "/svc/user", "~");
    check_deleg("/svc/users => /#/fs", "/svc", "~");
    /* the empty prefix matches everything; the name "/" takes the residual */
    check_deleg("/ => /#/root", "/a/b", "/#/root/a/b");
    check_deleg("/ => /#/root", "/", "/#/root");
    check_deleg("/svc => /; /a => /#/a", "/svc/a/b", "/#/a/b");
    check_deleg("/svc => /", "/svc", "~");
    /* each name of the tree gets the residual */
    check_deleg("/svc => /#/a | 2 * /#/b & /#/c", "/svc/x", "/#/a/x | 2 * /#/b/x & /#/c/x");
    /* no dtab, or no match: negative */
    ag__ntree *t;
    CHECK_OK(ag__dtab_delegate(NULL, "/svc/a", &t, NULL, NULL));
    CHECK_EQ(t->kind, AG__NT_NEG);
    ag__ntree_free(t);
    check_deleg("/a => /#/a", "/b", "~");
    check_deleg("", "/b", "~");
}

TEST(dtab_delegate_precedence)
{
    /* later dentries first, earlier ones as fallbacks */
    check_deleg("/svc => /#/a; /svc => /#/b", "/svc/x", "/#/b/x | /#/a/x");
    check_deleg("/svc => /#/a; /svc/x => /#/b; /svc => /#/c", "/svc/x/y",
                "/#/c/x/y | /#/b/y | /#/a/x/y");
    /* a later dentry that comes out negative falls back to an earlier one */
    check_deleg("/svc => /#/a; /svc/x => ~", "/svc/x", "/#/a/x");
    check_deleg("/svc => /#/a; /svc => /nowhere", "/svc/x", "/#/a/x");
    check_deleg("/svc => ~; /svc => /nowhere | ~", "/svc/x", "~");
    /* failure and empty are not negative: they stay in their place */
    check_deleg("/svc => /#/a; /svc/x => !", "/svc/x", "! | /#/a/x");
    check_deleg("/svc => /#/a; /svc/x => $", "/svc/x", "$ | /#/a/x");
    check_deleg("/svc => !", "/svc/x", "!");
    check_deleg("/svc => $", "/svc/x", "$");
    /* an alternation of one is its branch */
    ag__dtab *d = parse_ok("/svc => /#/a; /svc => /n");
    ag__ntree *t;
    CHECK_OK(ag__dtab_delegate(d, "/svc/x", &t, NULL, NULL));
    CHECK_EQ(t->kind, AG__NT_LEAF);
    CHECK_STR_EQ(t->path, "/#/a/x");
    ag__ntree_free(t);
    ag__dtab_free(d);
}

TEST(dtab_delegate_wildcard)
{
    const char *dtab = "/svc/*/users => /#/fs/users; /svc/prod/* => /#/prod";
    check_deleg(dtab, "/svc/dev/users/42", "/#/fs/users/42");
    check_deleg(dtab, "/svc/prod/users/42", "/#/prod/42 | /#/fs/users/42");
    check_deleg(dtab, "/svc/prod/orders", "/#/prod");
    check_deleg(dtab, "/svc/dev", "~");
    check_deleg("/* => /#/x", "/a/b", "/#/x/b");
    check_deleg("/*/* => /#/x", "/a", "~");
}

TEST(dtab_delegate_bound)
{
    /* bound names stop delegation, even where a dentry would match */
    const char *dtab = "/ => /#/catchall; /# => /#/no; /#/fs => /#/no; /$ => /#/no";
    check_deleg(dtab, "/#/fs/users", "/#/fs/users");
    check_deleg(dtab, "/$/inet/127.0.0.1/8080", "/$/inet/127.0.0.1/8080");
    check_deleg(dtab, "/a", "/#/catchall/a");
    /* "/#" alone is no bound name */
    check_deleg(dtab, "/#", "/#/no | /#/catchall/#");
    /* a rewrite to a bound name stops there */
    check_deleg("/svc => /#/svc; /#/svc => /loop", "/svc/a", "/#/svc/a");
}

TEST(dtab_delegate_nested)
{
    const char *dtab = "/env => /#/fs/default;\n"
                       "/env/prod => /#/fs/prod;\n"
                       "/svc => /env/prod | /env/staging;\n"
                       "/http/1.1/* => /svc;\n";
    check_deleg(dtab, "/http/1.1/GET/users",
                "/#/fs/prod/users | /#/fs/default/prod/users | "
                "/#/fs/default/staging/users");
    /* nested alternations are flattened (same meaning) */
    ag__dtab *d = parse_ok(dtab);
    ag__ntree *t;
    CHECK_OK(ag__dtab_delegate(d, "/svc/x", &t, NULL, NULL));
    CHECK_EQ(t->kind, AG__NT_ALT);
    CHECK_EQ(t->n, 3);
    ag__ntree_free(t);
    ag__dtab_free(d);
    /* names through several dentries, some of which come out negative */
    check_deleg("/a => /b | /c; /b => /d; /c => /#/c; /d => /#/d", "/a/x", "/#/d/x | /#/c/x");
    check_deleg("/a => /b | /c; /b => /d; /c => /#/c; /d => ~", "/a/x", "/#/c/x");
}

TEST(dtab_delegate_union)
{
    const char *dtab = "/a => /#/fs/a;\n"
                       "/b => /#/fs/b;\n"
                       "/svc => 0.9 * /a & 0.1 * /b;\n";
    check_deleg(dtab, "/svc/users", "0.9 * /#/fs/a/users & 0.1 * /#/fs/b/users");
    ag__dtab *d = parse_ok(dtab);
    ag__ntree *t;
    CHECK_OK(ag__dtab_delegate(d, "/svc/users", &t, NULL, NULL));
    CHECK_EQ(t->kind, AG__NT_UNION);
    CHECK_EQ(t->n, 2);
    CHECK(t->weights[0] == 0.9 && t->weights[1] == 0.1);
    CHECK_STR_EQ(t->kids[1]->path, "/#/fs/b/users");
    ag__ntree_free(t);
    ag__dtab_free(d);
    /* negative branches of a union are kept */
    check_deleg("/svc => 3 * /nowhere & /#/b", "/svc/x", "3 * ~ & /#/b/x");
    /* unions inside alternations inside unions */
    check_deleg("/a => /#/a | /#/a2; /svc => 2 * (/a & /#/c) & /#/d", "/svc/x",
                "2 * ((/#/a/x | /#/a2/x) & /#/c/x) & /#/d/x");
}

TEST(dtab_delegate_loops)
{
    check_deleg_err("/svc => /x; /x => /svc", "/svc/a", AG_E_MESH_DTAB,
                    "delegation of /svc/a loops: /svc/a -> /x/a -> /svc/a ...");
    check_deleg_err("/a => /a", "/a", AG_E_MESH_DTAB, "delegation of /a loops: /a -> /a ...");
    /* a loop on one branch fails the whole delegation */
    check_deleg_err("/svc => /#/ok | /svc", "/svc", AG_E_MESH_DTAB,
                    "delegation of /svc loops: /svc -> /svc ...");
    /* a path that grows never repeats: the depth limit catches it */
    ag__dtab *d = parse_ok("/a => /a/a");
    ag__ntree *t;
    ag_errbuf err = {0};
    CHECK_EQ(ag__dtab_delegate(d, "/a", &t, NULL, &err), AG_E_MESH_DTAB);
    CHECK(t == NULL);
    CHECK_CONTAINS(err.msg, "delegation of /a loops: /a -> /a/a -> /a/a/a -> ");
    ag__dtab_free(d);
}

/* AG__DELEGATE_MAX_DEPTH rewrites along a branch are fine, one more is a
 * loop. */
TEST(dtab_delegate_depth)
{
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    for (int i = 0; i < AG__DELEGATE_MAX_DEPTH; i++)
        CHECK_OK(ag_buf_printf(&b, "/p%d => /p%d;\n", i, i + 1));
    CHECK_OK(ag_buf_printf(&b, "/p%d => /#/end;\n", AG__DELEGATE_MAX_DEPTH));
    /* from /p1: 64 rewrites; from /p0: 65 */
    check_deleg((const char *)b.data, "/p1/x", "/#/end/x");
    ag__dtab *d = parse_ok((const char *)b.data);
    ag__ntree *t;
    ag_errbuf err = {0};
    CHECK_EQ(ag__dtab_delegate(d, "/p0/x", &t, NULL, &err), AG_E_MESH_DTAB);
    CHECK_CONTAINS(err.msg, "delegation of /p0/x loops: /p0/x -> /p1/x -> /p2/x");
    ag__dtab_free(d);
    /* at the limit, a name no dentry matches is just negative */
    ag_buf_reset(&b);
    ag_buf want;
    ag_buf_init(&want, 1 << 20);
    for (int i = 0; i < AG__DELEGATE_MAX_DEPTH; i++) {
        CHECK_OK(ag_buf_printf(&b, "/p%d => /p%d | /#/p%d;\n", i, i + 1, i));
        CHECK_OK(ag_buf_printf(&want, "%s/#/p%d", i ? " | " : "", AG__DELEGATE_MAX_DEPTH - 1 - i));
    }
    check_deleg((const char *)b.data, "/p0", (const char *)want.data);
    ag_buf_cleanup(&want);
    ag_buf_cleanup(&b);
}

TEST(dtab_delegate_limits)
{
    /* a rewritten path past AG__PATH_MAX */
    char big[AG__PATH_MAX];
    memset(big, 'b', sizeof(big));
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    CHECK_OK(ag_buf_printf(&b, "/svc => /#/%.*s", AG__PATH_MAX - 10, big));
    check_deleg_err((const char *)b.data, "/svc/abcdefgh", AG_E_TOO_LARGE,
                    "delegation of /svc/abcdefgh: rewriting makes a path longer than 1024 bytes");
    char *s = deleg((const char *)b.data, "/svc/abcdef");
    CHECK_EQ(strlen(s), AG__PATH_MAX);
    ag_free(s);
    /* a fan-out: 2^12 leaves plus the names between */
    ag_buf_reset(&b);
    for (int i = 0; i < 12; i++)
        CHECK_OK(ag_buf_printf(&b, "/l%d => /l%d & /l%d;\n", i, i + 1, i + 1));
    CHECK_OK(ag_buf_append_str(&b, "/l12 => /#/x"));
    check_deleg_err((const char *)b.data, "/l0", AG_E_TOO_LARGE,
                    "delegation of /l0 makes more than 4096 names");
    s = deleg((const char *)b.data, "/l5");
    CHECK_EQ(strlen(s), 128 * strlen("/#/x") + 127 * strlen(" & ") + 2 * 126);
    ag_free(s);
    /* a malformed path */
    check_deleg_err("/a => /b", "svc", AG_E_MESH_DTAB, "'svc' does not start with '/'");
    check_deleg_err("/a => /b", "/a//b", AG_E_MESH_DTAB, "segment 2 of '/a//b' is empty");
    check_deleg_err("/a => /b", "/a/*", AG_E_MESH_DTAB,
                    "'/a/*' has '*' at byte 4: '*' is allowed only in a prefix");
    ag_buf_cleanup(&b);
}

/* Past AG__TREE_MAX_BRANCHES matching dentries, the alternation is nested
 * so that it still parses; order is kept. */
TEST(dtab_delegate_many_branches)
{
    size_t n = 600;
    char *text = repeat("/svc => /#/b", "", n, ";");
    ag__dtab *d = parse_ok(text);
    ag__ntree *t;
    CHECK_OK(ag__dtab_delegate(d, "/svc", &t, NULL, NULL));
    CHECK_EQ(t->kind, AG__NT_ALT);
    CHECK(t->n <= AG__TREE_MAX_BRANCHES);
    CHECK_STR_EQ(t->kids[0]->path, "/#/b599");
    /* walk the nested alternations: every name once, last dentry first */
    size_t seen = 0;
    const ag__ntree *cur = t;
    while (cur) {
        const ag__ntree *next = NULL;
        for (size_t i = 0; i < cur->n; i++) {
            if (cur->kids[i]->kind == AG__NT_ALT) {
                CHECK(i == cur->n - 1);
                next = cur->kids[i];
                continue;
            }
            char want[32];
            snprintf(want, sizeof(want), "/#/b%zu", n - 1 - seen++);
            CHECK_STR_EQ(cur->kids[i]->path, want);
        }
        cur = next;
    }
    CHECK_EQ(seen, n);
    /* shown, it parses again */
    char *s = show_tree(t);
    ag_buf b;
    ag_buf_init(&b, 1 << 24);
    CHECK_OK(ag_buf_printf(&b, "/x => %s", s));
    ag__dtab *d2 = parse_ok((const char *)b.data);
    ag__ntree *t2;
    CHECK_OK(ag__dtab_delegate(d2, "/x", &t2, NULL, NULL));
    char *s2 = show_tree(t2);
    CHECK_STR_EQ(s2, s);
    ag_free(s);
    ag_free(s2);
    ag_free(text);
    ag_buf_cleanup(&b);
    ag__ntree_free(t);
    ag__ntree_free(t2);
    ag__dtab_free(d);
    ag__dtab_free(d2);
}

TEST(dtab_delegate_trace)
{
    const char *dtab = "/env => /#/fs/default;\n"
                       "/svc => /env | /missing;\n"
                       "/svc/users => /#/fs/users;\n";
    ag__dtab *d = parse_ok(dtab);
    ag_buf tr;
    ag_buf_init(&tr, 1 << 16);
    ag__ntree *t;
    CHECK_OK(ag__dtab_delegate(d, "/svc/users", &t, &tr, NULL));
    CHECK_STR_EQ((const char *)tr.data,
                 "/svc/users\n"
                 "  /svc/users => /#/fs/users  ->  /#/fs/users\n"
                 "  /svc => /env | /missing  ->  /env/users | /missing/users\n"
                 "    /env/users\n"
                 "      /env => /#/fs/default  ->  /#/fs/default/users\n"
                 "    /missing/users  ->  ~\n");
    char *s = show_tree(t);
    CHECK_STR_EQ(s, "/#/fs/users | /#/fs/default/users");
    ag_free(s);
    ag__ntree_free(t);
    /* a bound start, a path no dentry matches */
    ag_buf_reset(&tr);
    CHECK_OK(ag__dtab_delegate(d, "/#/fs/x", &t, &tr, NULL));
    CHECK_STR_EQ((const char *)tr.data, "/#/fs/x\n");
    ag__ntree_free(t);
    ag_buf_reset(&tr);
    CHECK_OK(ag__dtab_delegate(d, "/other", &t, &tr, NULL));
    CHECK_STR_EQ((const char *)tr.data, "/other  ->  ~\n");
    ag__ntree_free(t);
    /* the example of dtab.h */
    ag__dtab_free(d);
    d = parse_ok("/svc => /#/fs");
    ag_buf_reset(&tr);
    CHECK_OK(ag__dtab_delegate(d, "/svc/users", &t, &tr, NULL));
    CHECK_STR_EQ((const char *)tr.data, "/svc/users\n  /svc => /#/fs  ->  /#/fs/users\n");
    ag__ntree_free(t);
    /* a trace past its buffer's maximum fails the delegation cleanly */
    ag_buf_reset(&tr);
    tr.max = 16;
    ag_errbuf err = {0};
    CHECK_EQ(ag__dtab_delegate(d, "/svc/users", &t, &tr, &err), AG_E_TOO_LARGE);
    CHECK(t == NULL);
    CHECK_STR_EQ(err.msg, "delegation of /svc/users: trace longer than 16 bytes");
    ag_buf_cleanup(&tr);
    ag__dtab_free(d);
}

/* Every allocation of parsing, showing, concatenation and delegation may
 * fail: each failure is a clean AG_E_NOMEM with nothing leaked. */
TEST_FM(dtab_failmalloc)
{
    static const char text[] = "# fm\n"
                               "/env => /#/fs/default | /#/fs/b;\n"
                               "/svc/*/x => 0.5 * /env & 2 * (/missing | /#/z) | !;\n"
                               "/svc => /env | ~ | $;\n";
    ag__dtab *d = NULL, *d2 = NULL, *cat = NULL;
    ag__ntree *t = NULL;
    ag_buf b, tr;
    ag_buf_init(&b, 1 << 16);
    ag_buf_init(&tr, 1 << 16);
    FM_TRY(ag__dtab_parse(text, sizeof(text) - 1, &d, NULL, NULL, NULL), 0);
    FM_TRY(ag__dtab_parse("/a => (/b | /c &", 16, &d2, NULL, NULL, NULL), AG_E_MESH_DTAB);
    FM_TRY(ag__dtab_parse("/a => /b | /c//d", 16, &d2, NULL, NULL, NULL), AG_E_MESH_DTAB);
    FM_TRY(ag__dtab_show(d, &b), 0);
    cat = ag__dtab_concat(d, d);
    FM_NEW(cat);
    FM_TRY(ag__dtab_delegate(cat, "/svc/a/x/y", &t, &tr, NULL), 0);
    ag__ntree_free(t);
    t = NULL;
    FM_TRY(ag__dtab_delegate(cat, "/svc/b", &t, NULL, NULL), 0);
    FM_TRY(ag__ntree_show(t, &b), 0);
out:
    ag__ntree_free(t);
    ag__dtab_free(d);
    ag__dtab_free(d2);
    ag__dtab_free(cat);
    ag_buf_cleanup(&b);
    ag_buf_cleanup(&tr);
}

/* Alternations are flattened all the way down and only then split, so the
 * result does not depend on how the branches were grouped: delegating it,
 * shown, gives it back (found by the fuzzer). */
TEST(dtab_delegate_split_idempotent)
{
    char *big = repeat("/big => /#/b", "", 300, ";");
    ag_buf b;
    ag_buf_init(&b, 1 << 24);
    CHECK_OK(ag_buf_printf(&b, "%s; /mid => /#/m1 | /big | /#/m2; /svc => /#/x | /mid | /#/y",
                           big));
    ag__dtab *d = parse_ok((const char *)b.data);
    ag__ntree *t;
    CHECK_OK(ag__dtab_delegate(d, "/svc", &t, NULL, NULL));
    CHECK_EQ(t->kind, AG__NT_ALT);
    CHECK_EQ(t->n, 304 - AG__TREE_MAX_BRANCHES + 1);
    CHECK_STR_EQ(t->kids[0]->path, "/#/x");
    CHECK_STR_EQ(t->kids[1]->path, "/#/m1");
    CHECK_STR_EQ(t->kids[2]->path, "/#/b299");
    char *s = show_tree(t);
    ag_buf_reset(&b);
    CHECK_OK(ag_buf_printf(&b, "/x => %s", s));
    ag__dtab *d2 = parse_ok((const char *)b.data);
    ag__ntree *t2;
    CHECK_OK(ag__dtab_delegate(d2, "/x", &t2, NULL, NULL));
    char *s2 = show_tree(t2);
    CHECK_STR_EQ(s2, s);
    ag_free(big);
    ag_free(s);
    ag_free(s2);
    ag_buf_cleanup(&b);
    ag__ntree_free(t);
    ag__ntree_free(t2);
    ag__dtab_free(d);
    ag__dtab_free(d2);
}
