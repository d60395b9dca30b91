/*
 * argot psi end to end: simulation mode against a plaintext intersection,
 * production mode as two processes giving the same files, the errors a
 * user sees (a duplicate key with its line, usage), and a peer killed
 * mid-run (a clean error naming it, no output file left behind).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static int psi(ag_test_proc *p, const char *const *args)
{
    const char *argv[40] = {ag_test_bin("argot"), "psi"};
    int n = 2;
    for (int i = 0; args[i] && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return ag_test_run(p, argv, NULL, 120);
}

static void inputs(void)
{
    static const char a[] = "id,name,amount\n1,a,10\n2,b,20\n\"3\",\"c,x\",30\n5,é,50\n";
    static const char b[] = "uid,city\n3,paris\n1,rome\n4,oslo\n";
    ag_test_write_file("a.csv", a, strlen(a));
    ag_test_write_file("b.csv", b, strlen(b));
}

TEST(psi_cli_simulation_inner_and_full_join)
{
    inputs();
    char in_a[600], in_b[600], out_a[600], out_b[600];
    snprintf(in_a, sizeof(in_a), "alice=%s", ag_test_path("a.csv"));
    snprintf(in_b, sizeof(in_b), "bob=%s", ag_test_path("b.csv"));
    snprintf(out_a, sizeof(out_a), "alice=%s", ag_test_path("oa.csv"));
    snprintf(out_b, sizeof(out_b), "bob=%s", ag_test_path("ob.csv"));
    ag_test_proc p;
    const char *args[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_b, "--key", "alice=id",
                          "--key", "bob=uid", "--out", out_a, "--out", out_b, NULL};
    CHECK_EQ(psi(&p, args), 0);
    CHECK_CONTAINS(p.out, "alice: 4 rows, 3 at the peer; intersection 2 keys (2 of its rows); "
                          "wrote 2 rows to ");
    CHECK_CONTAINS(p.out, "bob: 3 rows, 4 at the peer; intersection 2 keys");
    ag_test_proc_cleanup(&p);
    CHECK_STR_EQ(ag_test_read_file(ag_test_path("oa.csv")), "id,name,amount\n1,a,10\n3,\"c,x\",30\n");
    CHECK_STR_EQ(ag_test_read_file(ag_test_path("ob.csv")), "uid,city\n1,rome\n3,paris\n");

    /* a full join to alice only: bob writes nothing and learns no keys */
    unlink(ag_test_path("ob.csv"));
    const char *full[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_b, "--key", "alice=id",
                          "--key", "bob=uid", "--out", out_a, "--out", out_b, "--join", "full",
                          "--receiver", "alice", NULL};
    CHECK_EQ(psi(&p, full), 0);
    CHECK_CONTAINS(p.out, "bob: 3 rows, 4 at the peer; not a receiver;");
    ag_test_proc_cleanup(&p);
    CHECK_STR_EQ(ag_test_read_file(ag_test_path("oa.csv")),
                 "id,name,amount\n1,a,10\n3,\"c,x\",30\n2,b,20\n5,é,50\nNULL,NULL,NULL\n");
    CHECK(access(ag_test_path("ob.csv"), F_OK) != 0);
}

TEST(psi_cli_errors_name_what_and_where)
{
    static const char dup[] = "id,v\n1,a\n2,b\n1,c\n";
    const char *path = ag_test_write_file("dup.csv", dup, strlen(dup));
    char in_a[600], in_b[600];
    snprintf(in_a, sizeof(in_a), "alice=%s", path);
    inputs();
    snprintf(in_b, sizeof(in_b), "bob=%s", ag_test_path("b.csv"));
    ag_test_proc p;
    const char *args[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_b, "--key", "alice=id",
                          "--key", "bob=uid", NULL};
    CHECK_EQ(psi(&p, args), 1);
    CHECK_CONTAINS(p.err, "argot: psi: party alice: ");
    CHECK_CONTAINS(p.err, "dup.csv:4: duplicate key");
    CHECK_CONTAINS(p.err, "(first at line 2)");
    ag_test_proc_cleanup(&p);

    const char *nosim[] = {"--in", "a.csv", "--key", "id", NULL};
    CHECK_EQ(psi(&p, nosim), 2);
    CHECK_CONTAINS(p.err, "argot: psi: choose a mode: --sim alice,bob");
    ag_test_proc_cleanup(&p);
    const char *badjoin[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_b, "--key", "id",
                             "--join", "outer", NULL};
    CHECK_EQ(psi(&p, badjoin), 2);
    CHECK_CONTAINS(p.err, "--join outer: inner, left, right, full or difference");
    ag_test_proc_cleanup(&p);
    const char *badrecv[] = {"--sim", "alice,bob", "--in", in_a, "--in", in_b, "--key", "id",
                             "--receiver", "carol", NULL};
    CHECK_EQ(psi(&p, badrecv), 2);
    CHECK_CONTAINS(p.err, "--receiver carol: no such party (alice, bob or both)");
    ag_test_proc_cleanup(&p);
    const char *three[] = {"--sim", "alice,bob,carol", "--in", in_a, "--key", "id", NULL};
    CHECK_EQ(psi(&p, three), 2);
    ag_test_proc_cleanup(&p);
    const char *noin[] = {"--sim", "alice,bob", "--in", in_a, "--key", "id", NULL};
    CHECK_EQ(psi(&p, noin), 2);
    CHECK_CONTAINS(p.err, "--in bob=FILE: every party needs its input");
    ag_test_proc_cleanup(&p);
}

/* Starts one party of a production run (stderr to errfile). */
static pid_t start(const char *cfg, const char *party, const char *in, const char *key,
                   const char *out, const char *errfile, int *fd)
{
    const char *argv[] = {"/bin/sh", "-c", "f=$1; shift; exec \"$@\" 2>\"$f\"", "sh", errfile,
                          ag_test_bin("argot"), "psi", "--config", cfg, "--party", party,
                          "--in", in, "--key", key, "--out", out, "--timeout", "3",
                          "--threads", "1", NULL};
    return ag_test_spawn(argv, fd);
}

static const char *write_cluster(void)
{
    char text[512];
    snprintf(text, sizeof(text), "parties:\n  alice: {address: \"127.0.0.1:%d\"}\n  bob: "
             "{address: \"127.0.0.1:%d\"}\n", ag_test_free_port(), ag_test_free_port());
    return ag_test_write_file("cluster.yaml", text, strlen(text));
}

TEST(psi_cli_production_matches_simulation)
{
    inputs();
    char cfg[600], ia[600], ib[600], oa[600], ob[600], ea[600], eb[600], line[512];
    snprintf(cfg, sizeof(cfg), "%s", write_cluster());
    snprintf(ia, sizeof(ia), "%s", ag_test_path("a.csv"));
    snprintf(ib, sizeof(ib), "%s", ag_test_path("b.csv"));
    snprintf(oa, sizeof(oa), "%s", ag_test_path("pa.csv"));
    snprintf(ob, sizeof(ob), "%s", ag_test_path("pb.csv"));
    snprintf(ea, sizeof(ea), "%s", ag_test_path("a.err"));
    snprintf(eb, sizeof(eb), "%s", ag_test_path("b.err"));
    int fa, fb;
    pid_t a = start(cfg, "alice", ia, "id", oa, ea, &fa);
    pid_t b = start(cfg, "bob", ib, "uid", ob, eb, &fb);
    CHECK(ag_test_read_line(fa, line, sizeof(line), 60) > 0);
    CHECK_CONTAINS(line, "alice: 4 rows, 3 at the peer; intersection 2 keys");
    CHECK(ag_test_read_line(fb, line, sizeof(line), 60) > 0);
    CHECK_CONTAINS(line, "bob: 3 rows, 4 at the peer; intersection 2 keys");
    CHECK_EQ(ag_test_wait(a, 30), 0);
    CHECK_EQ(ag_test_wait(b, 30), 0);
    close(fa);
    close(fb);
    CHECK_STR_EQ(ag_test_read_file(oa), "id,name,amount\n1,a,10\n3,\"c,x\",30\n");
    CHECK_STR_EQ(ag_test_read_file(ob), "uid,city\n1,rome\n3,paris\n");
}

/* --progress-json: one JSON line per progress call, the last the whole
 * input; production mode only. */
TEST(psi_cli_progress_json)
{
    inputs();
    char cfg[600], ia[600], ib[600], oa[600], ob[600], eb[600], pj[600], line[512];
    snprintf(cfg, sizeof(cfg), "%s", write_cluster());
    snprintf(ia, sizeof(ia), "%s", ag_test_path("a.csv"));
    snprintf(ib, sizeof(ib), "%s", ag_test_path("b.csv"));
    snprintf(oa, sizeof(oa), "%s", ag_test_path("pa.csv"));
    snprintf(ob, sizeof(ob), "%s", ag_test_path("pb.csv"));
    snprintf(eb, sizeof(eb), "%s", ag_test_path("b.err"));
    snprintf(pj, sizeof(pj), "%s", ag_test_path("a.progress"));
    const char *argv[] = {ag_test_bin("argot"), "psi", "--config", cfg, "--party", "alice",
                          "--in", ia, "--key", "id", "--out", oa, "--timeout", "10",
                          "--progress-json", pj, NULL};
    int fa, fb;
    pid_t a = ag_test_spawn(argv, &fa);
    pid_t b = start(cfg, "bob", ib, "uid", ob, eb, &fb);
    CHECK(ag_test_read_line(fa, line, sizeof(line), 60) > 0);
    CHECK_CONTAINS(line, "intersection 2 keys");
    CHECK_EQ(ag_test_wait(a, 30), 0);
    CHECK_EQ(ag_test_wait(b, 30), 0);
    close(fa);
    close(fb);
    const char *text = ag_test_read_file(pj);
    const char *last = text, *nl;
    while ((nl = strchr(last, '\n')) && nl[1])
        last = nl + 1;
    CHECK(strncmp(text, "{\"rows\": ", 9) == 0);
    CHECK_CONTAINS(last, "{\"rows\": 4, \"rows_total\": 4, \"bucket\": 1, \"buckets\": 1, "
                         "\"seconds\": ");
    /* simulation mode has no one party to report */
    ag_test_proc p;
    const char *sim[] = {ag_test_bin("argot"), "psi", "--sim", "alice,bob", "--in",
                         ia, "--in", ib, "--key", "id", "--key", "uid",
                         "--progress-json", pj, NULL};
    CHECK_EQ(ag_test_run(&p, sim, NULL, 30), 2);
    CHECK_CONTAINS(p.err, "--progress-json: production mode only");
    ag_test_proc_cleanup(&p);
}

TEST_TIMEOUT(psi_cli_peer_killed_mid_run_leaves_no_output, 120)
{
    /* big enough that the run takes a while */
    FILE *fa_in = fopen(ag_test_path("big_a.csv"), "w");
    FILE *fb_in = fopen(ag_test_path("big_b.csv"), "w");
    CHECK(fa_in && fb_in);
    fprintf(fa_in, "k,v\n");
    fprintf(fb_in, "k,w\n");
    for (int i = 0; i < 60000; i++) {
        fprintf(fa_in, "key%d,%d\n", i, i);
        fprintf(fb_in, "key%d,%d\n", i * 3, i);
    }
    fclose(fa_in);
    fclose(fb_in);
    char cfg[600], ia[600], ib[600], oa[600], ob[600], ea[600], eb[600];
    snprintf(cfg, sizeof(cfg), "%s", write_cluster());
    snprintf(ia, sizeof(ia), "%s", ag_test_path("big_a.csv"));
    snprintf(ib, sizeof(ib), "%s", ag_test_path("big_b.csv"));
    snprintf(oa, sizeof(oa), "%s", ag_test_path("out/a.csv"));
    snprintf(ob, sizeof(ob), "%s", ag_test_path("out/b.csv"));
    snprintf(ea, sizeof(ea), "%s", ag_test_path("a.err"));
    snprintf(eb, sizeof(eb), "%s", ag_test_path("b.err"));
    char outdir[600];
    snprintf(outdir, sizeof(outdir), "%s", ag_test_path("out"));
    CHECK(mkdir(outdir, 0700) == 0);
    int fa, fb;
    pid_t a = start(cfg, "alice", ia, "k", oa, ea, &fa);
    pid_t b = start(cfg, "bob", ib, "k", ob, eb, &fb);
    ag_sleep_ms(200); /* a single thread spends most of a second on the curve work */
    kill(b, SIGKILL);
    CHECK_EQ(ag_test_wait(b, 10), 128 + SIGKILL);
    CHECK_EQ(ag_test_wait(a, 60), 1);
    close(fa);
    close(fb);
    const char *err = ag_test_read_file(ea);
    CHECK_CONTAINS(err, "argot: psi: party alice: ");
    CHECK_CONTAINS(err, "party bob");
    /* no output, not even a temporary one */
    DIR *d = opendir(outdir);
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            FAIL("left behind: %s", e->d_name);
    closedir(d);
}
