/*
 * argot demo end to end: the README's main job in simulation mode, its
 * result against the statistics computed in the clear, three parties, and
 * what a user sees when a party's input is broken (the error names the
 * party, the file and the line, and every party stops).
 */
#include <math.h>

#include "test.h"

static int demo(ag_test_proc *p, const char *a1, const char *a2, const char *a3, const char *a4,
                const char *a5, const char *a6)
{
    const char *argv[] = {ag_test_bin("argot"), "demo", a1, a2, a3, a4, a5, a6, NULL};
    return ag_test_run(p, argv, NULL, 120);
}

/* The value after "label " in s, parsed as a double. */
static double field_after(const char *s, const char *label)
{
    const char *p = strstr(s, label);
    if (!p)
        FAIL("no '%s' in output:\n%s", label, s);
    return strtod(p + strlen(label), NULL);
}

static void write_pair(const char *a, const char *b)
{
    ag_test_write_file("alice.csv", a, strlen(a));
    ag_test_write_file("bob.csv", b, strlen(b));
}

TEST(demo_two_parties_learn_the_joint_statistics)
{
    /* x = 1..5, y = (2, 5, 6, 7, 10): means 3 and 6, E[xy] = 21.6, so the
     * covariance is 3.6; variances 2 and 6.8, correlation 3.6 / sqrt(13.6) */
    write_pair("id,x\na,1\nb,2\nc,3\nd,4\ne,5\n", "id,y\na,2\nb,5\nc,6\nd,7\ne,10\n");
    char in_a[600], in_b[600];
    snprintf(in_a, sizeof(in_a), "alice=%s", ag_test_path("alice.csv"));
    snprintf(in_b, sizeof(in_b), "bob=%s", ag_test_path("bob.csv"));
    ag_test_proc p;
    CHECK_EQ(demo(&p, "--in", in_a, "--in", in_b, NULL, NULL), 0);
    CHECK_STR_EQ(p.err, "");
    CHECK_CONTAINS(p.out, "alice  learned: rows 5, mean x 3.000, mean y 6.000, std 1.414 and "
                          "2.608, covariance 3.600, correlation 0.9762");
    CHECK_CONTAINS(p.out, "bob    learned: rows 5, mean x 3.000, mean y 6.000");
    double corr = field_after(p.out, "correlation ");
    CHECK(fabs(corr - 3.6 / sqrt(13.6)) < 1e-4);
    CHECK_CONTAINS(p.out, "cost: alice sent ");
    ag_test_proc_cleanup(&p);
}

TEST(demo_default_data_and_three_parties)
{
    /* the shipped examples, from the repository root (where make runs) */
    ag_test_proc p;
    CHECK_EQ(demo(&p, "--sim", "alice,bob,carol", NULL, NULL, NULL, NULL), 0);
    CHECK_CONTAINS(p.out, "carol  learned: rows 500, mean income_k 61.974, "
                          "mean monthly_spend 875.553");
    CHECK_CONTAINS(p.out, "correlation 0.7073");
    CHECK_CONTAINS(p.out, "carol only computes");
    ag_test_proc_cleanup(&p);
}

TEST(demo_broken_row_names_party_file_and_line)
{
    write_pair("id,x\na,1\nb,2\n", "id,y\na,2\nb,lots\n");
    char in_a[600], in_b[600], want[1024];
    snprintf(in_a, sizeof(in_a), "alice=%s", ag_test_path("alice.csv"));
    snprintf(in_b, sizeof(in_b), "bob=%s", ag_test_path("bob.csv"));
    ag_test_proc p;
    CHECK_EQ(demo(&p, "--in", in_a, "--in", in_b, NULL, NULL), 1);
    snprintf(want, sizeof(want), "argot: demo: party bob: %s:3: column 'y': 'lots' is not a "
             "number\n", ag_test_path("bob.csv"));
    CHECK_STR_EQ(p.err, want);
    CHECK(!strstr(p.out, "learned"));
    ag_test_proc_cleanup(&p);

    write_pair("id,x\na,1\nb,2\n", "id,y\na,2\n");
    CHECK_EQ(demo(&p, "--in", in_a, "--in", in_b, NULL, NULL), 1);
    CHECK_CONTAINS(p.err, "argot: demo: party ");
    CHECK_CONTAINS(p.err, "party alice has 2 rows and party bob has 1: the demo joins rows in "
                          "order, so both need the same count\n");
    ag_test_proc_cleanup(&p);

    CHECK_EQ(demo(&p, "--in", "alice=/nonexistent.csv", NULL, NULL, NULL, NULL), 1);
    CHECK_STR_EQ(p.err, "argot: demo: party alice: /nonexistent.csv: No such file or "
                        "directory\n");
    ag_test_proc_cleanup(&p);
}

TEST(demo_usage_errors)
{
    ag_test_proc p;
    CHECK_EQ(demo(&p, "--sim", "alice", NULL, NULL, NULL, NULL), 2);
    CHECK_STR_EQ(p.err, "argot: demo: --sim: at least 2 parties, got 1 "
                        "(see 'argot demo --help')\n");
    ag_test_proc_cleanup(&p);
    CHECK_EQ(demo(&p, "--sim", "alice,Bob", NULL, NULL, NULL, NULL), 2);
    CHECK_STR_EQ(p.err, "argot: demo: --sim: party name 'Bob' may hold only a-z, 0-9, '_' and "
                        "'-' (see 'argot demo --help')\n");
    ag_test_proc_cleanup(&p);
    CHECK_EQ(demo(&p, "--sim", "alice,bob,alice", NULL, NULL, NULL, NULL), 2);
    CHECK_STR_EQ(p.err, "argot: demo: --sim: party 'alice' named twice "
                        "(see 'argot demo --help')\n");
    ag_test_proc_cleanup(&p);
    CHECK_EQ(demo(&p, "--in", "alcie=x.csv", NULL, NULL, NULL, NULL), 2);
    CHECK_STR_EQ(p.err, "argot: demo: --in alcie=x.csv: no party 'alcie' (did you mean "
                        "'alice'?) (see 'argot demo --help')\n");
    ag_test_proc_cleanup(&p);
    CHECK_EQ(demo(&p, "--in", "x.csv", NULL, NULL, NULL, NULL), 2);
    CHECK_STR_EQ(p.err, "argot: demo: --in x.csv: in simulation mode write PARTY=VALUE "
                        "(see 'argot demo --help')\n");
    ag_test_proc_cleanup(&p);
}
