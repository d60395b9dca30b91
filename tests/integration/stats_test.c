/*
 * argot stats end to end: simulation mode with the JSON read back (jansson)
 * and checked against the statistics in the clear, who learns what,
 * production mode as two processes giving the same JSON, and the errors a
 * user sees (a cell that is not a number, misaligned rows, usage).
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"

static int stats(ag_test_proc *p, const char *const *args)
{
    const char *argv[48] = {ag_test_bin("argot"), "stats"};
    int n = 2;
    for (int i = 0; args[i] && n < 47; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return ag_test_run(p, argv, NULL, 120);
}

/* alice: id, age, score, flag (constant); bob: uid, score, spend, in
 * another order and with a key alice lacks. Common keys 1..6. */
static void inputs(void)
{
    static const char a[] = "id,age,score,flag\n1,20,1.5,7\n2,30,2.5,7\n3,40,-1,7\n"
                            "4,50,4,7\n5,60,0.25,7\n6,70,3,7\n9,99,9,7\n";
    static const char b[] = "uid,score,spend\n6,10,600\n5,20,500\n4,30,410\n3,40,290\n"
                            "2,50,220\n1,60,100\n8,1,1\n";
    ag_test_write_file("a.csv", a, strlen(a));
    ag_test_write_file("b.csv", b, strlen(b));
}

static json_t *load_json(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        FAIL("%s:%d: %s", path, e.line, e.text);
    return j;
}

static double jnum(json_t *root, const char *col, const char *key)
{
    json_t *v = json_object_get(json_object_get(json_object_get(root, "columns"), col), key);
    if (!v)
        FAIL("no %s.%s in the JSON", col, key);
    return json_is_null(v) ? NAN : json_number_value(v);
}

static void check_json(json_t *j)
{
    CHECK_EQ(json_integer_value(json_object_get(j, "rows")), 6);
    /* plaintext (the SPU's divisions are good to a relative 2^-26 or so),
     * ages 20..70: mean 45, var 350, quantiles 32.5 45 57.5 */
    CHECK(fabs(jnum(j, "age", "mean") - 45) < 1e-5);
    CHECK(fabs(jnum(j, "age", "var") - 350) < 1e-4);
    CHECK(fabs(jnum(j, "age", "std") - sqrt(350)) < 1e-5);
    CHECK(fabs(jnum(j, "age", "q25") - 32.5) < 1e-5);
    CHECK(fabs(jnum(j, "age", "q50") - 45) < 1e-5);
    CHECK(fabs(jnum(j, "age", "q75") - 57.5) < 1e-5);
    CHECK_EQ(jnum(j, "age", "count"), 6);
    CHECK(fabs(jnum(j, "age", "sum") - 270) < 1e-5);
    CHECK(fabs(jnum(j, "alice.score", "min") + 1) < 1e-5);
    CHECK(fabs(jnum(j, "bob.score", "max") - 60) < 1e-5);
    CHECK(fabs(jnum(j, "spend", "mean") - 2120.0 / 6) < 1e-5);
    CHECK_EQ(jnum(j, "flag", "std"), 0);
    /* the correlation matrix: names in order, age and bob.score exactly -1,
     * the constant column null */
    json_t *corr = json_object_get(j, "corr");
    json_t *names = json_object_get(corr, "columns"), *m = json_object_get(corr, "matrix");
    CHECK_EQ(json_array_size(names), 5);
    static const char *want[6] = {"age", "alice.score", "flag", "bob.score", "spend", NULL};
    for (int i = 0; i < 5; i++)
        CHECK_STR_EQ(json_string_value(json_array_get(names, (size_t)i)), want[i]);
    CHECK(fabs(json_number_value(json_array_get(json_array_get(m, 0), 3)) + 1) < 1e-5);
    CHECK(json_is_null(json_array_get(json_array_get(m, 0), 2)));
    CHECK(json_is_null(json_array_get(json_array_get(m, 2), 2)));
    CHECK(fabs(json_number_value(json_array_get(json_array_get(m, 4), 4)) - 1) < 1e-12);
}

TEST(stats_cli_simulation_writes_the_pinned_json)
{
    inputs();
    char in_a[600], in_b[600], out_a[600];
    snprintf(in_a, sizeof(in_a), "alice=%s", ag_test_path("a.csv"));
    snprintf(in_b, sizeof(in_b), "bob=%s", ag_test_path("b.csv"));
    snprintf(out_a, sizeof(out_a), "alice=%s", ag_test_path("a.json"));
    ag_test_proc p;
    const char *args[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_b, "--key", "alice=id",
                          "--key", "bob=uid", "--reveal-to", "alice", "--out", out_a,
                          "--hist-edges", "spend=0,250,700", NULL};
    CHECK_EQ(stats(&p, args), 0);
    CHECK_CONTAINS(p.out, "argot stats: 6 rows, 5 columns; revealed to alice");
    CHECK_CONTAINS(p.out, "correlation (Pearson");
    CHECK_CONTAINS(p.out, "histogram of spend: [0, 250) 2 [250, 700] 4");
    CHECK_CONTAINS(p.out, "alice wrote ");
    ag_test_proc_cleanup(&p);
    json_t *j = load_json(ag_test_path("a.json"));
    check_json(j);
    json_t *h = json_object_get(json_object_get(json_object_get(j, "columns"), "spend"), "hist");
    CHECK_EQ(json_integer_value(json_array_get(json_object_get(h, "counts"), 1)), 4);
    json_decref(j);

    /* only what was asked: mean alone */
    const char *few[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_b, "--key", "alice=id",
                         "--key", "bob=uid", "--stats", "mean", "--out", out_a, NULL};
    CHECK_EQ(stats(&p, few), 0);
    ag_test_proc_cleanup(&p);
    j = load_json(ag_test_path("a.json"));
    json_t *age = json_object_get(json_object_get(j, "columns"), "age");
    CHECK_EQ(json_object_size(age), 1);
    CHECK(json_object_get(age, "mean"));
    CHECK(!json_object_get(j, "corr"));
    json_decref(j);
}

TEST(stats_cli_errors_name_what_and_where)
{
    inputs();
    static const char bad[] = "id,v\n1,2\n2,x7\n";
    static const char short_b[] = "w\n1\n2\n3\n";
    ag_test_write_file("bad.csv", bad, strlen(bad));
    ag_test_write_file("short.csv", short_b, strlen(short_b));
    char in_a[600], in_b[600], in_bad[600], in_short[600];
    snprintf(in_a, sizeof(in_a), "alice=%s", ag_test_path("a.csv"));
    snprintf(in_b, sizeof(in_b), "bob=%s", ag_test_path("b.csv"));
    snprintf(in_bad, sizeof(in_bad), "alice=%s", ag_test_path("bad.csv"));
    snprintf(in_short, sizeof(in_short), "bob=%s", ag_test_path("short.csv"));
    ag_test_proc p;
    const char *nonnum[] = {"--sim", "alice,bob", "--in", in_bad, "--in", in_short,
                            "--columns", "alice=v", NULL};
    CHECK_EQ(stats(&p, nonnum), 1);
    CHECK_CONTAINS(p.err, "argot: stats: party alice: ");
    CHECK_CONTAINS(p.err, "bad.csv:3: column 'v': 'x7' is not a number");
    ag_test_proc_cleanup(&p);
    const char *misaligned[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_short, NULL};
    CHECK_EQ(stats(&p, misaligned), 1);
    CHECK_CONTAINS(p.err, "misaligned rows: party alice has 7 rows and party bob has 3");
    ag_test_proc_cleanup(&p);

    const char *nomode[] = {"--in", "a.csv", NULL};
    CHECK_EQ(stats(&p, nomode), 2);
    CHECK_CONTAINS(p.err, "argot: stats: choose a mode: --sim alice,bob");
    ag_test_proc_cleanup(&p);
    const char *badstat[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_b, "--stats",
                             "mean,median", NULL};
    CHECK_EQ(stats(&p, badstat), 2);
    CHECK_CONTAINS(p.err, "--stats: 'median': not a statistic");
    ag_test_proc_cleanup(&p);
    const char *edges[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_b, "--hist-edges",
                           "age=1,5,3", NULL};
    CHECK_EQ(stats(&p, edges), 2);
    CHECK_CONTAINS(p.err, "strictly increasing");
    ag_test_proc_cleanup(&p);
    const char *who[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_b, "--reveal-to",
                         "carol", NULL};
    CHECK_EQ(stats(&p, who), 2);
    CHECK_CONTAINS(p.err, "--reveal-to carol: no party 'carol'");
    ag_test_proc_cleanup(&p);
    const char *out[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_b, "--reveal-to",
                         "alice", "--out", "bob=b.json", NULL};
    CHECK_EQ(stats(&p, out), 2);
    CHECK_CONTAINS(p.err, "party bob is not in --reveal-to");
    ag_test_proc_cleanup(&p);
    const char *hkey[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_b, "--partition",
                          "horizontal", "--key", "id", NULL};
    CHECK_EQ(stats(&p, hkey), 2);
    ag_test_proc_cleanup(&p);
}

TEST(stats_cli_three_parties_horizontal)
{
    static const char a[] = "v,w\n1,10\n2,20\n";
    static const char b[] = "v,w\n3,30\n";
    static const char c[] = "v,w\n4,41\n5,50\n6,60\n";
    char in[3][600], out[600];
    const char *files[3][2] = {{"a3.csv", a}, {"b3.csv", b}, {"c3.csv", c}};
    const char *party[3] = {"alice", "bob", "carol"};
    for (int i = 0; i < 3; i++) {
        ag_test_write_file(files[i][0], files[i][1], strlen(files[i][1]));
        snprintf(in[i], sizeof(in[i]), "%s=%s", party[i], ag_test_path(files[i][0]));
    }
    snprintf(out, sizeof(out), "carol=%s", ag_test_path("c.json"));
    ag_test_proc p;
    const char *args[] = {"--sim", "alice,bob,carol", "--in", in[0], "--in", in[1], "--in",
                          in[2], "--partition", "horizontal", "--stats", "sum,mean,max,quantiles",
                          "--reveal-to", "carol", "--out", out, NULL};
    CHECK_EQ(stats(&p, args), 0);
    CHECK_CONTAINS(p.out, "argot stats: 6 rows, 2 columns; revealed to carol");
    ag_test_proc_cleanup(&p);
    json_t *j = load_json(ag_test_path("c.json"));
    CHECK_EQ(json_integer_value(json_object_get(j, "rows")), 6);
    CHECK(fabs(jnum(j, "v", "sum") - 21) < 1e-6);
    CHECK(fabs(jnum(j, "v", "mean") - 3.5) < 1e-5);
    CHECK(fabs(jnum(j, "w", "max") - 60) < 1e-6);
    CHECK(fabs(jnum(j, "v", "q50") - 3.5) < 1e-6);
    CHECK(fabs(jnum(j, "v", "q25") - 2.25) < 1e-6);
    json_decref(j);
}

static pid_t start(const char *cfg, const char *party, const char *in, const char *key,
                   const char *out, const char *errfile, int *fd)
{
    const char *argv[] = {"/bin/sh", "-c", "f=$1; shift; exec \"$@\" 2>\"$f\"", "sh", errfile,
                          ag_test_bin("argot"), "stats", "--config", cfg, "--party", party,
                          "--in", in, "--key", key, "--out", out, "--timeout", "20", NULL};
    return ag_test_spawn(argv, fd);
}

TEST(stats_cli_production_matches_simulation)
{
    inputs();
    char text[512];
    snprintf(text, sizeof(text), "parties:\n  alice: {address: \"127.0.0.1:%d\"}\n  bob: "
             "{address: \"127.0.0.1:%d\"}\nspu: {protocol: semi2k, field: FM128}\n",
             ag_test_free_port(), ag_test_free_port());
    char cfg[600], ia[600], ib[600], oa[600], ob[600], ea[600], eb[600], line[512];
    snprintf(cfg, sizeof(cfg), "%s", ag_test_write_file("cluster.yaml", text, strlen(text)));
    snprintf(ia, sizeof(ia), "%s", ag_test_path("a.csv"));
    snprintf(ib, sizeof(ib), "%s", ag_test_path("b.csv"));
    snprintf(oa, sizeof(oa), "%s", ag_test_path("pa.json"));
    snprintf(ob, sizeof(ob), "%s", ag_test_path("pb.json"));
    snprintf(ea, sizeof(ea), "%s", ag_test_path("a.err"));
    snprintf(eb, sizeof(eb), "%s", ag_test_path("b.err"));
    int fa, fb;
    pid_t a = start(cfg, "alice", ia, "id", oa, ea, &fa);
    pid_t b = start(cfg, "bob", ib, "uid", ob, eb, &fb);
    CHECK(ag_test_read_line(fa, line, sizeof(line), 60) > 0);
    CHECK_CONTAINS(line, "argot stats: 6 rows, 5 columns; revealed to alice, bob");
    CHECK(ag_test_read_line(fb, line, sizeof(line), 60) > 0);
    CHECK_CONTAINS(line, "argot stats: 6 rows, 5 columns; revealed to alice, bob");
    CHECK_EQ(ag_test_wait(a, 30), 0);
    CHECK_EQ(ag_test_wait(b, 30), 0);
    close(fa);
    close(fb);
    json_t *ja = load_json(oa), *jb = load_json(ob);
    check_json(ja);
    check_json(jb);
    json_decref(ja);
    json_decref(jb);
}
