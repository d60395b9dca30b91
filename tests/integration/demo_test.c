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
    snprintf(want, sizeof(want), "argot: demo: party bob: value_column: %s:3: column 'y': 'lots' is not a "
             "number\n", ag_test_path("bob.csv"));
    CHECK_STR_EQ(p.err, want);
    CHECK(!strstr(p.out, "learned"));
    ag_test_proc_cleanup(&p);

    /* two parties align their rows by key (PSI); three join them in order */
    write_pair("id,x\na,1\nb,2\nc,5\n", "id,y\nc,2\nz,9\na,4\n");
    CHECK_EQ(demo(&p, "--in", in_a, "--in", in_b, NULL, NULL), 0);
    CHECK_CONTAINS(p.out, "PSI on id: 2 rows in common");
    CHECK_CONTAINS(p.out, "alice  learned: rows 2, mean x 3.000, mean y 3.000");
    ag_test_proc_cleanup(&p);
    CHECK_EQ(demo(&p, "--in", in_a, "--in", in_b, "--sim", "alice,bob,carol"), 0);
    CHECK(!strstr(p.out, "PSI on"));
    ag_test_proc_cleanup(&p);
    write_pair("id,x\na,1\nb,2\n", "id,y\na,2\n");
    CHECK_EQ(demo(&p, "--in", in_a, "--in", in_b, "--sim", "alice,bob,carol"), 1);
    CHECK_CONTAINS(p.err, "argot: demo: party ");
    CHECK_CONTAINS(p.err, "party alice has 2 rows and party bob has 1: with three parties the "
                          "demo joins rows in order, so both need the same count\n");
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

/* ---- production mode: one process per party --------------------------------- */

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* The "learned" line of party in out, from "learned:" on. */
static const char *learned(const char *out, const char *party, char *buf, size_t cap)
{
    char key[64];
    snprintf(key, sizeof(key), "%-6s learned:", party);
    const char *p = strstr(out, key);
    if (!p)
        FAIL("no line for %s in:\n%s", party, out);
    p += strlen(party);
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "\n");
    snprintf(buf, cap, "%.*s", (int)n, p);
    return buf;
}

static void production_run(const char *const *parties, int n)
{
    char yaml[1024];
    size_t off = (size_t)snprintf(yaml, sizeof(yaml), "parties:\n");
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(yaml + off, sizeof(yaml) - off,
                                "  %s: {address: \"127.0.0.1:%d\"}\n", parties[i], ag_test_free_port());
    snprintf(yaml + off, sizeof(yaml) - off, "spu: {protocol: semi2k, field: FM128}\n"
                                             "session: itest\n");
    const char *cfg = ag_test_write_file("cluster.yaml", yaml, strlen(yaml));
    char cfgpath[512];
    snprintf(cfgpath, sizeof(cfgpath), "%s", cfg);
    /* the others in the background, the first in the foreground */
    pid_t pids[3];
    int fds[3];
    for (int i = 1; i < n; i++) {
        const char *argv[] = {ag_test_bin("argot"), "demo", "--config", cfgpath, "--party",
                              parties[i], NULL};
        pids[i] = ag_test_spawn(argv, &fds[i]);
    }
    ag_test_proc p;
    const char *argv[] = {ag_test_bin("argot"), "demo", "--config", cfgpath, "--party",
                          parties[0], NULL};
    CHECK_EQ(ag_test_run(&p, argv, NULL, 120), 0);
    /* the simulation of the same job, for comparison */
    ag_test_proc sim;
    char list[128];
    snprintf(list, sizeof(list), "%s,%s%s%s", parties[0], parties[1], n == 3 ? "," : "",
             n == 3 ? parties[2] : "");
    char in0[64], in1[64];
    snprintf(in0, sizeof(in0), "%s=examples/alice.csv", parties[0]);
    snprintf(in1, sizeof(in1), "%s=examples/bob.csv", parties[1]);
    CHECK_EQ(demo(&sim, "--sim", list, "--in", in0, "--in", in1), 0);
    char a[512], b[512];
    CHECK_STR_EQ(learned(p.out, parties[0], a, sizeof(a)),
                 learned(sim.out, parties[0], b, sizeof(b)));
    for (int i = 1; i < n; i++) {
        char out[4096] = "";
        size_t len = 0;
        ssize_t r;
        while (len + 1 < sizeof(out) && (r = read(fds[i], out + len, sizeof(out) - 1 - len)) > 0)
            len += (size_t)r;
        out[len] = '\0';
        close(fds[i]);
        CHECK_EQ(ag_test_stop(pids[i]), 0);
        CHECK_STR_EQ(learned(out, parties[i], a, sizeof(a)),
                     learned(sim.out, parties[i], b, sizeof(b)));
    }
    ag_test_proc_cleanup(&p);
    ag_test_proc_cleanup(&sim);
}

TEST_TIMEOUT(demo_production_processes_match_simulation, 120)
{
    /* data files follow the party names by default: name them alice and bob */
    static const char *const two[] = {"alice", "bob"};
    production_run(two, 2);
    static const char *const three[] = {"alice", "bob", "carol"};
    production_run(three, 3);
}

TEST(demo_production_config_errors)
{
    static const struct {
        const char *yaml;
        const char *err; /* after "argot: <path>" */
    } cases[] = {
        {"parties:\n  alice: {adress: \"127.0.0.1:1\"}\n  bob: {address: \"127.0.0.1:2\"}\n",
         ":2:11: unknown key 'adress' (did you mean 'address'?)"},
        {"parties:\n  alice: {address: \"10.0.0.1:9100\"}\n  bob: {address: \"127.0.0.1:2\"}\n",
         ":2:20: address '10.0.0.1:9100' is not on loopback: argot requires tls off loopback "
         "(a tls section with this party's cert and key and the CA: see 'argot ca init')"},
        {"parties:\n  alice: {address: \"127.0.0.1:1\"}\n  bob: {address: \"127.0.0.1:2\"}\n"
         "tls: {cert: /etc/hostname}\n",
         ":4:6: missing required key 'key' in 'tls'"},
        {"parties:\n  alice: {address: \"127.0.0.1:1\"}\n  bob: {address: \"127.0.0.1:2\"}\n"
         "tls: {cert: /nonexistent/a.crt, key: a.key, ca: ca.crt}\n",
         ":4:13: tls.cert: cannot read /nonexistent/a.crt"},
        {"parties:\n  alice: {address: \"127.0.0.1:1\"}\n  bob: {address: \"127.0.0.1:2\"}\n"
         "spu: {field: FM32}\n",
         ":4:14: field 'FM32' must be FM64 or FM128"},
        {"parties:\n  alice: {address: \"127.0.0.1:1\"}\n",
         ":2:3: 'parties' must name 2 to 8 parties, got 1"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        const char *path = ag_test_write_file("c.yaml", cases[i].yaml, strlen(cases[i].yaml));
        char want[1024], pathbuf[512];
        snprintf(pathbuf, sizeof(pathbuf), "%s", path);
        snprintf(want, sizeof(want), "argot: %s%s\n", pathbuf, cases[i].err);
        ag_test_proc p;
        CHECK_EQ(demo(&p, "--config", pathbuf, "--party", "alice", NULL, NULL), 1);
        CHECK_STR_EQ(p.err, want);
        ag_test_proc_cleanup(&p);
    }
    ag_test_proc p;
    const char *ok = "parties:\n  alice: {address: \"127.0.0.1:1\"}\n"
                     "  bob: {address: \"127.0.0.1:2\"}\nspu: {field: FM128}\n";
    const char *path = ag_test_write_file("ok.yaml", ok, strlen(ok));
    char pathbuf[512];
    snprintf(pathbuf, sizeof(pathbuf), "%s", path);
    CHECK_EQ(demo(&p, "--config", pathbuf, NULL, NULL, NULL, NULL), 2);
    CHECK_STR_EQ(p.err, "argot: demo: --config needs --party NAME (which party this process is) "
                        "(see 'argot demo --help')\n");
    ag_test_proc_cleanup(&p);
    CHECK_EQ(demo(&p, "--config", pathbuf, "--party", "dave", NULL, NULL), 2);
    CHECK_CONTAINS(p.err, "--party dave: no such party in ");
    ag_test_proc_cleanup(&p);
    CHECK_EQ(demo(&p, "--party", "alice", NULL, NULL, NULL, NULL), 2);
    CHECK_STR_EQ(p.err, "argot: demo: --party goes with --config (production mode) "
                        "(see 'argot demo --help')\n");
    ag_test_proc_cleanup(&p);
}
