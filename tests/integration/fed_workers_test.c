/*
 * fed workers end to end: `argot rm` and two `argot nm` on loopback, and
 * `argot psi` in production mode with a `workers:` section, so that each
 * party is a coordinator running its buckets in worker containers: the
 * output is byte for byte the single process's and the counts the same
 * (10^6 rows per party; smaller under ASan), also with TLS between the
 * workers; bad workers sections fail with their place and parties with
 * different counts both fail naming them; a worker killed mid-run, or one
 * that finds a duplicate key, fails the job at both parties naming the
 * worker and its container, and leaves no worker running.
 */
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slurm.h"
#include "daemons.h"
#include "test.h"

struct sched {
    pid_t rm, nm[2];
    char rm_addr[64];
};

/* An RM and two NMs (127.0.0.1 and 127.0.0.2), both registered. */
static void sched_start(struct sched *s)
{
    static const char yaml[] = "address: \"127.0.0.1:0\"\n"
                               "liveness: {nm_expiry_ms: 600000, am_expiry_ms: 600000}\n"
                               "scheduler: {min_allocation: {memory_mb: 128, vcores: 1}}\n"
                               "log: {level: warn}\n";
    char path[512];
    snprintf(path, sizeof(path), "%s", ag_test_write_file("rm.yaml", yaml, strlen(yaml)));
    const char *argv[] = {ag_test_bin("argot"), "rm", "--config", path, NULL};
    int fd;
    s->rm = ag_test_spawn(argv, &fd);
    ag_test_read_listening(fd, "rm", s->rm_addr, sizeof(s->rm_addr));
    close(fd);
    for (int i = 0; i < 2; i++)
        s->nm[i] = ag_test_nm_start(i, s->rm_addr, 4096, 4, NULL);
    ag_test_nodes_wait(s->rm_addr, 2, NULL);
}

static void sched_stop(struct sched *s)
{
    for (int i = 0; i < 2; i++)
        CHECK_EQ(ag_test_stop(s->nm[i]), 0);
    CHECK_EQ(ag_test_stop(s->rm), 0);
}

/* A cluster config named name: two parties on free ports, and workers
 * (the text after "workers: ", or none when NULL). */
static const char *cluster(const char *name, int pa, int pb, const char *workers)
{
    char text[1024];
    int n = snprintf(text, sizeof(text),
                     "parties:\n  alice: {address: \"127.0.0.1:%d\"}\n"
                     "  bob: {address: \"127.0.0.1:%d\"}\n",
                     pa, pb);
    if (workers)
        snprintf(text + n, sizeof(text) - (size_t)n, "workers: %s\n", workers);
    return ag_test_write_file(name, text, strlen(text));
}

/* Inputs of n rows each: alice has keys 0..n-1, bob n/2..3n/2-1 (in a
 * shuffled order), so the intersection is n/2 keys. */
static void inputs(int n)
{
    FILE *a = fopen(ag_test_path("a.csv"), "w"), *b = fopen(ag_test_path("b.csv"), "w");
    CHECK(a && b);
    fprintf(a, "id,amount\n");
    fprintf(b, "uid,city,score\n");
    for (int i = 0; i < n; i++) {
        fprintf(a, "k%07d,%d\n", i, i % 977);
        int j = n / 2 + (int)(((long long)i * 7919) % n); /* a permutation when gcd(7919, n) = 1 */
        fprintf(b, "k%07d,c%d,%d\n", j, j % 13, j % 101);
    }
    CHECK(fclose(a) == 0 && fclose(b) == 0);
}

/* Starts one party: stdout readable on *fd, stderr into errfile. */
static pid_t party(const char *cfg, const char *name, const char *in, const char *key,
                   const char *out, const char *errfile, const char *bucket_rows, int *fd)
{
    const char *argv[] = {"/bin/sh",
                          "-c",
                          "f=$1; shift; exec \"$@\" 2>\"$f\"",
                          "sh",
                          errfile,
                          ag_test_bin("argot"),
                          "psi",
                          "--config",
                          cfg,
                          "--party",
                          name,
                          "--in",
                          in,
                          "--key",
                          key,
                          "--out",
                          out,
                          "--timeout",
                          "60",
                          "--bucket-rows",
                          bucket_rows,
                          "--session",
                          "itest",
                          NULL};
    return ag_test_spawn(argv, fd);
}

struct run {
    int status[2];
    char line[2][512]; /* each party's summary line, up to "sent" */
    char err[2][2048];
};

/* Both parties of one job; outputs to <tag>_a.csv and <tag>_b.csv. */
static void psi_job(const char *cfg_a, const char *cfg_b, const char *tag, const char *bucket_rows,
                    struct run *r)
{
    const char *names[2] = {"alice", "bob"}, *keys[2] = {"id", "uid"};
    char in[2][600], out[2][600], errf[2][600];
    pid_t pid[2];
    int fd[2];
    for (int i = 0; i < 2; i++) {
        char n[64];
        snprintf(in[i], sizeof(in[i]), "%s", ag_test_path(i ? "b.csv" : "a.csv"));
        snprintf(n, sizeof(n), "%s_%c.csv", tag, i ? 'b' : 'a');
        snprintf(out[i], sizeof(out[i]), "%s", ag_test_path(n));
        snprintf(n, sizeof(n), "%s_%c.err", tag, i ? 'b' : 'a');
        snprintf(errf[i], sizeof(errf[i]), "%s", ag_test_path(n));
    }
    for (int i = 0; i < 2; i++)
        pid[i] = party(i ? cfg_b : cfg_a, names[i], in[i], keys[i], out[i], errf[i], bucket_rows,
                       &fd[i]);
    for (int i = 0; i < 2; i++) {
        r->line[i][0] = '\0';
        if (ag_test_read_line(fd[i], r->line[i], sizeof(r->line[i]), 170) > 0) {
            char *sent = strstr(r->line[i], "sent ");
            if (sent)
                *sent = '\0';
        }
        r->status[i] = ag_test_wait(pid[i], 60);
        close(fd[i]);
        snprintf(r->err[i], sizeof(r->err[i]), "%s", ag_test_read_file(errf[i]));
    }
}

/* Byte for byte equality of two files of any size. */
static void check_same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    CHECK(fa && fb);
    static char x[1 << 16], y[1 << 16];
    long long at = 0;
    for (;;) {
        size_t n = fread(x, 1, sizeof(x), fa), m = fread(y, 1, sizeof(y), fb);
        if (n != m || memcmp(x, y, n) != 0)
            FAIL("%s and %s differ near byte %lld", a, b, at);
        if (n == 0)
            break;
        at += (long long)n;
    }
    fclose(fa);
    fclose(fb);
}

/* Processes whose command line holds every needle (n3 may be NULL;
 * NUL-separated args are searched as one string with spaces); their pids
 * into pids. */
static int find_procs(const char *n1, const char *n2, const char *n3, pid_t *pids, int cap)
{
    DIR *d = opendir("/proc");
    CHECK(d != NULL);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char path[64], buf[8192];
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[n] = '\0';
        if (strstr(buf, n1) && strstr(buf, n2) && (!n3 || strstr(buf, n3)) && found < cap)
            pids[found++] = (pid_t)pid;
    }
    closedir(d);
    return found;
}

/* The workers' job: a PSI whose parties run 2 workers each (workers
 * section wk) gives the same output files and counts as the one-process
 * run of the same job. */
static void workers_equal_single(int rows, const char *bucket_rows, const char *wk)
{
    inputs(rows);
    char cw[600], c1[600];
    int pa = ag_test_free_port(), pb = ag_test_free_port();
    snprintf(cw, sizeof(cw), "%s", cluster("workers.yaml", pa, pb, wk));
    snprintf(c1, sizeof(c1), "%s", cluster("single.yaml", pa, pb, NULL));
    struct run w, one;
    psi_job(cw, cw, "w", bucket_rows, &w);
    for (int i = 0; i < 2; i++)
        if (w.status[i] != 0)
            FAIL("with workers, party %d exited %d: %s", i, w.status[i], w.err[i]);
    psi_job(c1, c1, "one", bucket_rows, &one);
    for (int i = 0; i < 2; i++) {
        if (one.status[i] != 0)
            FAIL("one process, party %d exited %d: %s", i, one.status[i], one.err[i]);
        char *wrote = strstr(one.line[i], "wrote "), *wrote_w = strstr(w.line[i], "wrote ");
        CHECK(wrote && wrote_w);
        *strstr(wrote, " rows to ") = '\0';
        *strstr(wrote_w, " rows to ") = '\0';
        CHECK_STR_EQ(w.line[i], one.line[i]);
    }
    char n[40];
    snprintf(n, sizeof(n), "intersection %d keys", rows / 2);
    CHECK_CONTAINS(w.line[0], n);
    const char *tags[2][2] = {{"w_a.csv", "one_a.csv"}, {"w_b.csv", "one_b.csv"}};
    for (int i = 0; i < 2; i++) {
        char a[600];
        snprintf(a, sizeof(a), "%s", ag_test_path(tags[i][0]));
        check_same_file(a, ag_test_path(tags[i][1]));
    }
    /* the applications finished and left no worker */
    pid_t left[4];
    CHECK_EQ(find_procs("--worker-dir", ag_test_tmpdir(), NULL, left, 4), 0);
}

TEST_TIMEOUT(fed_workers_psi_equals_single_process, 240)
{
    struct sched s;
    sched_start(&s);
    char wk[256];
    snprintf(wk, sizeof(wk), "{count: 2, provider: argot, rm: \"%s\", memory_mb: 256, vcores: 1}",
             s.rm_addr);
    /* 10^6 rows per party: 4 buckets, two per worker (smaller under ASan,
     * where the curve work is several times slower) */
#if defined(__SANITIZE_ADDRESS__)
    workers_equal_single(8000, "2500", wk);
#else
    workers_equal_single(1000000, "262144", wk);
#endif
    sched_stop(&s);
}

/* The same with the workers from Slurm: a one-node cluster (8 CPUs
 * configured, so that both parties' workers run at once on this machine),
 * each worker a batch job. */
TEST_TIMEOUT(fed_workers_psi_on_slurm_equals_single_process, 240)
{
    ag_test_slurm c;
    ag_test_slurm_start(&c, 8);
    setenv("ARGOT_SLURM_SPOOL", ag_test_tmpdir(), 1);
    /* the workers' paths are the argot test's; under ASan, fewer rows */
#if defined(__SANITIZE_ADDRESS__)
    workers_equal_single(4000, "1200", "{count: 2, provider: slurm, memory_mb: 256, vcores: 1}");
#else
    workers_equal_single(20000, "6000", "{count: 2, provider: slurm, memory_mb: 256, vcores: 1}");
#endif
    unsetenv("ARGOT_SLURM_SPOOL");
    ag_test_slurm_stop(&c);
    unsetenv("SLURM_CONF");
}

TEST_TIMEOUT(fed_workers_config_errors_name_the_place, 120)
{
    static const struct {
        const char *workers, *want;
    } cases[] = {
        {"{count: 0, rm: \"127.0.0.1:1\"}", "bad.yaml:4:18: 'count' must be between 1 and 64"},
        {"{count: 2, provider: yarn, rm: \"127.0.0.1:1\"}", "workers.provider 'yarn' is unknown"},
        {"{count: 2}", "need rm: \"host:port\""},
        {"{count: 2, rm: \"nohost\"}", "'rm' must be \"host:port\""},
        {"{count: 2, rm: \"127.0.0.1:1\", vcore: 1}", "unknown key 'vcore'"},
    };
    inputs(10);
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        const char *cfg = cluster("bad.yaml", 1, 2, cases[i].workers);
        const char *argv[] = {
            ag_test_bin("argot"),  "psi",   "--config", cfg, "--party", "alice", "--in",
            ag_test_path("a.csv"), "--key", "id",       NULL};
        ag_test_proc p;
        CHECK_EQ(ag_test_run(&p, argv, NULL, 30), 1);
        CHECK_CONTAINS(p.err, "bad.yaml:");
        CHECK_CONTAINS(p.err, cases[i].want);
        ag_test_proc_cleanup(&p);
    }
    /* the parties disagree on the count: both fail at the hello, naming both */
    int pa = ag_test_free_port(), pb = ag_test_free_port();
    char ca[600], cb[600];
    snprintf(ca, sizeof(ca), "%s", cluster("two.yaml", pa, pb, "{count: 2, rm: \"127.0.0.1:1\"}"));
    snprintf(cb, sizeof(cb), "%s",
             cluster("three.yaml", pa, pb, "{count: 3, rm: \"127.0.0.1:1\"}"));
    struct run r;
    psi_job(ca, cb, "mismatch", "1000", &r);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(r.status[i], 1);
        CHECK_CONTAINS(r.err[i], i ? "party bob runs 3 workers, party alice 2"
                                   : "party alice runs 2 workers, party bob 3");
        CHECK_CONTAINS(r.err[i], "workers.count must be the same");
    }
    /* workers from Slurm, where no Slurm is configured: a clear error at both */
    snprintf(ca, sizeof(ca), "%s", cluster("slurm.yaml", pa, pb, "{count: 2, provider: slurm}"));
    setenv("SLURM_CONF", ag_test_path("no-slurm.conf"), 1);
    psi_job(ca, ca, "slurm", "1000", &r);
    unsetenv("SLURM_CONF");
    CHECK_EQ(r.status[0], 1);
    CHECK_CONTAINS(r.err[0], "slurm: no Slurm configuration at");
    CHECK_EQ(r.status[1], 1);
}

TEST_TIMEOUT(fed_workers_killed_worker_fails_both_parties, 180)
{
    struct sched s;
    sched_start(&s);
    inputs(200000);
    char wk[256], cfg[600];
    snprintf(wk, sizeof(wk), "{count: 2, rm: \"%s\", memory_mb: 256}", s.rm_addr);
    snprintf(cfg, sizeof(cfg), "%s",
             cluster("workers.yaml", ag_test_free_port(), ag_test_free_port(), wk));
    char ia[600], ib[600], oa[600], ob[600], ea[600], eb[600];
    snprintf(ia, sizeof(ia), "%s", ag_test_path("a.csv"));
    snprintf(ib, sizeof(ib), "%s", ag_test_path("b.csv"));
    snprintf(oa, sizeof(oa), "%s", ag_test_path("ka.csv"));
    snprintf(ob, sizeof(ob), "%s", ag_test_path("kb.csv"));
    snprintf(ea, sizeof(ea), "%s", ag_test_path("ka.err"));
    snprintf(eb, sizeof(eb), "%s", ag_test_path("kb.err"));
    int fa, fb;
    pid_t a = party(cfg, "alice", ia, "id", oa, ea, "50000", &fa);
    pid_t b = party(cfg, "bob", ib, "uid", ob, eb, "50000", &fb);
    /* alice's worker 1, once it runs */
    pid_t w[4];
    int n = 0;
    for (int tries = 0; tries < 300 && n == 0; tries++) {
        n = find_procs("--party alice", "--worker 1 ", ia, w, 4);
        if (n == 0)
            ag_sleep_ms(50);
    }
    CHECK(n == 1);
    ag_sleep_ms(300);
    CHECK(kill(w[0], SIGKILL) == 0);
    CHECK_EQ(ag_test_wait(a, 60), 1);
    CHECK_EQ(ag_test_wait(b, 60), 1);
    close(fa);
    close(fb);
    const char *err_a = ag_test_read_file(ea);
    CHECK_CONTAINS(err_a, "worker 1 (container_");
    const char *err_b = ag_test_read_file(eb);
    CHECK_CONTAINS(err_b, "party alice");
    CHECK_CONTAINS(err_b, "worker 1 (container_");
    /* both parties' applications finished FAILED, with the reason */
    ag_test_proc p;
    const char *st_argv[] = {ag_test_bin("argot"), "app", "status", "--rm", s.rm_addr, NULL,
                             NULL};
    /* alice's application: the one of the worker that died */
    const char *c = strstr(err_a, "container_");
    CHECK(c != NULL);
    long long ts;
    int id;
    CHECK(sscanf(c, "container_%lld_%d_", &ts, &id) == 2);
    char app[64];
    snprintf(app, sizeof(app), "application_%lld_%04d", ts, id);
    st_argv[5] = app;
    CHECK_EQ(ag_test_run(&p, st_argv, NULL, 30), 0);
    CHECK_CONTAINS(p.out, "final FAILED");
    CHECK_CONTAINS(p.out, "worker 1 (container_");
    ag_test_proc_cleanup(&p);
    /* bob's: the other one this test submitted (ids are dense from 1) */
    snprintf(app, sizeof(app), "application_%lld_%04d", ts, id == 1 ? 2 : 1);
    CHECK_EQ(ag_test_run(&p, st_argv, NULL, 30), 0);
    CHECK_CONTAINS(p.out, "final FAILED");
    CHECK_CONTAINS(p.out, "party alice failed");
    ag_test_proc_cleanup(&p);
    /* no output, and no worker left running at either party */
    struct stat st;
    CHECK(stat(oa, &st) != 0 && stat(ob, &st) != 0);
    int left = 1;
    for (int tries = 0; tries < 100 && left; tries++) {
        left =
            find_procs("--worker-dir", ia, NULL, w, 4) + find_procs("--worker-dir", ib, NULL, w, 4);
        if (left)
            ag_sleep_ms(100);
    }
    CHECK_EQ(left, 0);
    sched_stop(&s);
}

static void argot_ok(const char *a1, const char *a2, const char *a3, const char *a4,
                     const char *a5)
{
    const char *argv[] = {ag_test_bin("argot"), a1, a2, a3, a4, a5, NULL};
    ag_test_proc p;
    int st = ag_test_run(&p, argv, NULL, 60);
    if (st != 0)
        FAIL("argot %s %s: exit %d: %s", a1, a2, st, p.err);
    ag_test_proc_cleanup(&p);
}

/* Party me's config with its own certificate (ca/), workers as given. */
static const char *tls_cluster(const char *me, int pa, int pb, const char *workers)
{
    char text[1024], name[64];
    int n = snprintf(text, sizeof(text),
                     "parties:\n  alice: {address: \"127.0.0.1:%d\"}\n"
                     "  bob: {address: \"127.0.0.1:%d\"}\n"
                     "tls: {cert: ca/%s.crt, key: ca/%s.key, ca: ca/ca.crt}\n",
                     pa, pb, me, me);
    if (workers)
        snprintf(text + n, sizeof(text) - (size_t)n, "workers: %s\n", workers);
    snprintf(name, sizeof(name), "%s%s.yaml", me, workers ? "-w" : "");
    return ag_test_write_file(name, text, strlen(text));
}

TEST_TIMEOUT(fed_workers_tls_and_a_failing_worker, 180)
{
    struct sched s;
    sched_start(&s);
    char ca[600];
    snprintf(ca, sizeof(ca), "%s", ag_test_path("ca"));
    argot_ok("ca", "init", "--dir", ca, NULL);
    argot_ok("ca", "issue", "alice", "--dir", ca);
    argot_ok("ca", "issue", "bob", "--dir", ca);
#if defined(__SANITIZE_ADDRESS__)
    const int rows = 5000; /* the curve work is several times slower */
    const char *bucket_rows = "1500";
#else
    const int rows = 20000;
    const char *bucket_rows = "6000";
#endif
    inputs(rows);
    char wk[256], cwa[600], cwb[600], c1a[600], c1b[600];
    snprintf(wk, sizeof(wk), "{count: 2, rm: \"%s\", memory_mb: 256}", s.rm_addr);
    int pa = ag_test_free_port(), pb = ag_test_free_port();
    snprintf(cwa, sizeof(cwa), "%s", tls_cluster("alice", pa, pb, wk));
    snprintf(cwb, sizeof(cwb), "%s", tls_cluster("bob", pa, pb, wk));
    snprintf(c1a, sizeof(c1a), "%s", tls_cluster("alice", pa, pb, NULL));
    snprintf(c1b, sizeof(c1b), "%s", tls_cluster("bob", pa, pb, NULL));
    /* the workers' links with the parties' certificates: the same output */
    struct run w, one;
    psi_job(cwa, cwb, "tw", bucket_rows, &w);
    for (int i = 0; i < 2; i++)
        if (w.status[i] != 0)
            FAIL("TLS with workers, party %d exited %d: %s", i, w.status[i], w.err[i]);
    psi_job(c1a, c1b, "tone", bucket_rows, &one);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(one.status[i], 0);
    check_same_file(ag_test_path("tw_a.csv"), ag_test_path("tone_a.csv"));
    check_same_file(ag_test_path("tw_b.csv"), ag_test_path("tone_b.csv"));

    /* a duplicate key in alice's input: the worker holding its bucket
     * fails, and so does the job at both parties, naming it */
    FILE *f = fopen(ag_test_path("a.csv"), "a");
    CHECK(f != NULL);
    fprintf(f, "k0000007,1\n");
    CHECK(fclose(f) == 0);
    struct run d;
    psi_job(cwa, cwb, "dup", bucket_rows, &d);
    CHECK_EQ(d.status[0], 1);
    CHECK_EQ(d.status[1], 1);
    CHECK_CONTAINS(d.err[0], "(container_");
    char where[64];
    snprintf(where, sizeof(where), "a.csv:%d: duplicate key", rows + 2);
    CHECK_CONTAINS(d.err[0], where);
    CHECK_CONTAINS(d.err[1], "party alice");
    CHECK_CONTAINS(d.err[1], "duplicate key");
    pid_t left[4];
    int n = 1;
    for (int tries = 0; tries < 100 && n; tries++) {
        n = find_procs("--worker-dir", ag_test_tmpdir(), NULL, left, 4);
        if (n)
            ag_sleep_ms(100);
    }
    CHECK_EQ(n, 0);
    sched_stop(&s);
}
