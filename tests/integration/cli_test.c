/*
 * The argot command as users and scripts meet it: help, version, exit codes
 * (0 ok, 1 runtime error, 2 usage error) and the one-line error form
 * "argot: <what>: <why>", driven by running the real binary.
 */
#include "test.h"

/* Runs argot with up to 8 arguments; returns the exit status. */
static int argot(ag_test_proc *p, const char *a1, const char *a2, const char *a3,
                 const char *a4, const char *a5, const char *a6)
{
    const char *argv[] = {ag_test_bin("argot"), a1, a2, a3, a4, a5, a6, NULL};
    return ag_test_run(p, argv, NULL, 60);
}

/* stderr must be exactly one line, equal to want plus '\n'. */
static void check_one_line(const ag_test_proc *p, const char *want)
{
    char line[1024];
    snprintf(line, sizeof(line), "%s\n", want);
    CHECK_STR_EQ(p->err, line);
}

TEST(cli_help_and_version)
{
    ag_test_proc p;
    CHECK_EQ(argot(&p, "--help", NULL, NULL, NULL, NULL, NULL), 0);
    CHECK_CONTAINS(p.out, "usage: argot <subcommand>");
    CHECK_CONTAINS(p.out, "csv check ");
    ag_test_proc_cleanup(&p);

    CHECK_EQ(argot(&p, "--version", NULL, NULL, NULL, NULL, NULL), 0);
    CHECK_STR_EQ(p.out, "argot " AG_VERSION "\n");
    ag_test_proc_cleanup(&p);

    CHECK_EQ(argot(&p, "csv", "check", "--help", NULL, NULL, NULL), 0);
    CHECK_CONTAINS(p.out, "usage: argot csv check --in FILE [--key COL[,COL]]");
    CHECK_CONTAINS(p.out, "(required)");
    CHECK_STR_EQ(p.err, "");
    ag_test_proc_cleanup(&p);

    CHECK_EQ(argot(&p, "help", "csv", "check", NULL, NULL, NULL), 0);
    CHECK_CONTAINS(p.out, "usage: argot csv check");
    ag_test_proc_cleanup(&p);

    /* no subcommand: the list, and a usage error */
    CHECK_EQ(argot(&p, NULL, NULL, NULL, NULL, NULL, NULL), 2);
    CHECK_CONTAINS(p.out, "subcommands:");
    ag_test_proc_cleanup(&p);
}

TEST(cli_usage_errors_exit_2)
{
    ag_test_proc p;
    CHECK_EQ(argot(&p, "frobnicate", NULL, NULL, NULL, NULL, NULL), 2);
    check_one_line(&p, "argot: frobnicate: unknown subcommand (see 'argot --help')");
    CHECK_STR_EQ(p.out, "");
    ag_test_proc_cleanup(&p);

    CHECK_EQ(argot(&p, "csv", "chek", NULL, NULL, NULL, NULL), 2);
    check_one_line(&p, "argot: csv chek: unknown subcommand (did you mean 'csv check'?)");
    ag_test_proc_cleanup(&p);

    CHECK_EQ(argot(&p, "csv", NULL, NULL, NULL, NULL, NULL), 2);
    check_one_line(&p, "argot: csv: missing subcommand (one of: check)");
    ag_test_proc_cleanup(&p);

    CHECK_EQ(argot(&p, "csv", "check", NULL, NULL, NULL, NULL), 2);
    check_one_line(&p, "argot: csv check: missing required flag --in "
                       "(see 'argot csv check --help')");
    ag_test_proc_cleanup(&p);

    CHECK_EQ(argot(&p, "csv", "check", "--inn", "x.csv", NULL, NULL), 2);
    check_one_line(&p, "argot: csv check: unknown flag --inn (did you mean --in?) "
                       "(see 'argot csv check --help')");
    ag_test_proc_cleanup(&p);

    CHECK_EQ(argot(&p, "csv", "check", "--in", NULL, NULL, NULL), 2);
    check_one_line(&p, "argot: csv check: flag --in needs a value (FILE) "
                       "(see 'argot csv check --help')");
    ag_test_proc_cleanup(&p);

    CHECK_EQ(argot(&p, "csv", "check", "--in", "a", "--in=b", NULL), 2);
    check_one_line(&p, "argot: csv check: flag --in given twice (see 'argot csv check --help')");
    ag_test_proc_cleanup(&p);

    CHECK_EQ(argot(&p, "csv", "check", "--in", "a", "extra", NULL), 2);
    check_one_line(&p, "argot: csv check: unexpected argument 'extra' "
                       "(see 'argot csv check --help')");
    ag_test_proc_cleanup(&p);

    CHECK_EQ(argot(&p, "--frob", NULL, NULL, NULL, NULL, NULL), 2);
    check_one_line(&p, "argot: --frob: unknown flag (see 'argot --help')");
    ag_test_proc_cleanup(&p);
}

TEST(cli_csv_check_good_file)
{
    static const char content[] = "\xEF\xBB\xBFid,name,age\r\n"
                                  "1,\"Smith, \"\"J\"\"\",40\r\n"
                                  "2,\"multi\nline\",41\r\n"
                                  "\r\n"
                                  "3,Zo\xC3\xAB,42";
    const char *path = ag_test_write_file("good.csv", content, sizeof(content) - 1);
    ag_test_proc p;
    CHECK_EQ(argot(&p, "csv", "check", "--in", path, "--key", "id,name"), 0);
    char want[128];
    snprintf(want, sizeof(want), ": ok: 3 rows, 3 columns, %zu bytes", sizeof(content) - 1);
    CHECK_CONTAINS(p.out, want);
    CHECK_STR_EQ(p.err, "");
    ag_test_proc_cleanup(&p);

    /* standard input */
    /* standard input, another delimiter */
    const char *argv[] = {ag_test_bin("argot"), "csv", "check", "--in", "-", "--delimiter", ";",
                          NULL};
    CHECK_EQ(ag_test_run(&p, argv, "k;v\na;1\nb;2\n", 60), 0);
    CHECK_STR_EQ(p.out, "-: ok: 2 rows, 2 columns, 12 bytes, 0.00 s\n");
    ag_test_proc_cleanup(&p);
    const char *argv2[] = {ag_test_bin("argot"), "csv", "check", "--in", "-", "--delimiter", "ab",
                           NULL};
    CHECK_EQ(ag_test_run(&p, argv2, "", 60), 2);
    check_one_line(&p, "argot: csv check: --delimiter must be one character other than '\"', CR "
                       "or LF, got 'ab' (see 'argot csv check --help')");
    ag_test_proc_cleanup(&p);
}

struct bad_case {
    const char *name;
    const char *content;
    const char *key;
    const char *error; /* after "argot: <path>" */
};

TEST(cli_csv_check_bad_files)
{
    static const struct bad_case cases[] = {
        {"short.csv", "a,b,c,d,e\n1,2,3,4,5\n1,2,3\n", NULL, ":3: 3 fields, header has 5"},
        {"quote.csv", "a,b\n1,2\n3,\"abc\n4,5\n", NULL, ":3: unterminated quote in field 2"},
        {"utf8.csv", "id,v\nok,1\n\xC3\x28,2\n", "id", ":3: column 'id': invalid UTF-8 at byte 1"},
        {"nokey.csv", "id,name\n1,x\n", "nme", ": no column 'nme' in header (did you mean 'name'?)"},
        {"nokey2.csv", "k,v\n1,x\n", "id", ": no column 'id' in header (columns: k, v)"},
        {"empty.csv", "", NULL, ": no header row (the file is empty)"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        const struct bad_case *c = &cases[i];
        const char *path = ag_test_write_file(c->name, c->content, strlen(c->content));
        char want[512];
        snprintf(want, sizeof(want), "argot: %s%s", path, c->error);
        ag_test_proc p;
        int st = c->key ? argot(&p, "csv", "check", "--in", path, "--key", c->key)
                        : argot(&p, "csv", "check", "--in", path, NULL, NULL);
        CHECK_EQ(st, 1);
        check_one_line(&p, want);
        CHECK_STR_EQ(p.out, "");
        ag_test_proc_cleanup(&p);
    }
    ag_test_proc p;
    CHECK_EQ(argot(&p, "csv", "check", "--in", "/nonexistent/x.csv", NULL, NULL), 1);
    check_one_line(&p, "argot: /nonexistent/x.csv: No such file or directory");
    ag_test_proc_cleanup(&p);
}
