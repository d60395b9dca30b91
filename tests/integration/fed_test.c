/*
 * The federated runtime end to end, with real processes: example-hello and
 * a richer job (tests/progs/fedjob.c) in the three modes (threads, `argot
 * launch`, one process per party from a cluster config) giving the same
 * results; a party killed mid-job; an error at one party reaching all; the
 * usage errors of ag_fed_main.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"

/* A two-party cluster config on free loopback ports; returns its path. */
static const char *write_cluster(const char *name, const char *extra)
{
    int pa = ag_test_free_port(), pb;
    do
        pb = ag_test_free_port();
    while (pb == pa);
    char text[1024];
    snprintf(text, sizeof(text),
             "parties:\n  alice: {address: \"127.0.0.1:%d\"}\n  bob: {address: "
             "\"127.0.0.1:%d\"}\n%s",
             pa, pb, extra ? extra : "");
    return ag_test_write_file(name, text, strlen(text));
}

/* Starts one party in production mode; its stderr goes to errfile. */
static pid_t start_party(const char *prog, const char *job, const char *config,
                         const char *party, const char *errfile, const char *timeout, int *out)
{
    const char *argv[] = {"/bin/sh", "-c", "f=$1; shift; exec \"$@\" 2>\"$f\"", "sh", errfile,
                          prog, "--config", config, "--party", party, "--timeout", timeout,
                          job, NULL};
    if (!job)
        argv[12] = NULL;
    return ag_test_spawn(argv, out);
}

/* Runs prog as alice and bob from one config; returns both outputs
 * (stdout lines joined) in out_a/out_b; both must succeed. */
static void run_production(const char *prog, const char *job, char *out_a, char *out_b,
                           size_t cap)
{
    const char *cfg = write_cluster("cluster.yaml", NULL);
    char config[600], ea[600], eb[600];
    snprintf(config, sizeof(config), "%s", cfg);
    snprintf(ea, sizeof(ea), "%s", ag_test_path("alice.err"));
    snprintf(eb, sizeof(eb), "%s", ag_test_path("bob.err"));
    int fa, fb;
    pid_t a = start_party(prog, job, config, "alice", ea, "30", &fa);
    pid_t b = start_party(prog, job, config, "bob", eb, "30", &fb);
    char *outs[2] = {out_a, out_b};
    int fds[2] = {fa, fb};
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        char line[1024];
        outs[k][0] = '\0';
        while (ag_test_read_line(fds[k], line, sizeof(line), 60) >= 0)
            n += (size_t)snprintf(outs[k] + n, cap - n, "%s\n", line);
        close(fds[k]);
    }
    int sa = ag_test_wait(a, 30), sb = ag_test_wait(b, 30);
    if (sa != 0 || sb != 0)
        FAIL("production run failed: alice %d (%s), bob %d (%s)", sa, ag_test_read_file(ea), sb, ag_test_read_file(eb));
}

TEST(fed_example_hello_prints_nine_in_three_modes)
{
    ag_test_proc p;
    const char *sim[] = {ag_test_bin("example-hello"), "--sim", "alice,bob", NULL};
    CHECK_EQ(ag_test_run(&p, sim, NULL, 60), 0);
    CHECK_STR_EQ(p.out, "9\n9\n");
    CHECK_STR_EQ(p.err, "");
    ag_test_proc_cleanup(&p);

    const char *launch[] = {ag_test_bin("argot"), "launch", "--sim", "alice,bob", "--",
                            ag_test_bin("example-hello"), NULL};
    CHECK_EQ(ag_test_run(&p, launch, NULL, 60), 0);
    CHECK_CONTAINS(p.out, "[alice] 9\n");
    CHECK_CONTAINS(p.out, "[bob] 9\n");
    CHECK_EQ(p.out_len, strlen("[alice] 9\n[bob] 9\n"));
    ag_test_proc_cleanup(&p);

    char a[4096], b[4096];
    run_production(ag_test_bin("example-hello"), NULL, a, b, sizeof(a));
    CHECK_STR_EQ(a, "9\n");
    CHECK_STR_EQ(b, "9\n");
}

TEST(fed_the_same_job_gives_the_same_results_in_every_mode)
{
    const char *prog = ag_test_prog("fedjob");
    ag_test_proc p;
    const char *sim[] = {prog, "--sim", "alice,bob", "pipeline", NULL};
    CHECK_EQ(ag_test_run(&p, sim, NULL, 60), 0);
    /* alice's series 1.75 .. 10.5, bob's 2.5 .. -1: the dot product, the
     * max of 2 * sum(alice) and 100, how often alice's is greater */
    const char *want = "result: dot 10.500 max 100.000 greater 7\n";
    CHECK_CONTAINS(p.out, want);
    CHECK_CONTAINS(p.out, "bob alone learned the mean of alice's series: 6.1250\n");
    ag_test_proc_cleanup(&p);

    const char *launch[] = {ag_test_bin("argot"), "launch", "--sim", "alice,bob", "--", prog,
                            "pipeline", NULL};
    CHECK_EQ(ag_test_run(&p, launch, NULL, 60), 0);
    CHECK_CONTAINS(p.out, "[alice] result: dot 10.500 max 100.000 greater 7\n");
    CHECK_CONTAINS(p.out, "[bob] result: dot 10.500 max 100.000 greater 7\n");
    CHECK_CONTAINS(p.out, "[bob] bob alone learned the mean of alice's series: 6.1250\n");
    CHECK(!strstr(p.out, "[alice] bob alone"));
    ag_test_proc_cleanup(&p);

    char a[4096], b[4096];
    run_production(prog, "pipeline", a, b, sizeof(a));
    CHECK_STR_EQ(a, want);
    CHECK_CONTAINS(b, want);
    CHECK_CONTAINS(b, "bob alone learned the mean of alice's series: 6.1250\n");
}

TEST_TIMEOUT(fed_a_party_killed_mid_job_is_named_within_the_timeout, 60)
{
    const char *cfg = write_cluster("cluster.yaml", NULL);
    char config[600], ea[600], eb[600], line[256];
    snprintf(config, sizeof(config), "%s", cfg);
    snprintf(ea, sizeof(ea), "%s", ag_test_path("alice.err"));
    snprintf(eb, sizeof(eb), "%s", ag_test_path("bob.err"));
    int fa, fb;
    pid_t a = start_party(ag_test_prog("fedjob"), "stall", config, "alice", ea, "3", &fa);
    pid_t b = start_party(ag_test_prog("fedjob"), "stall", config, "bob", eb, "3", &fb);
    CHECK(ag_test_read_line(fa, line, sizeof(line), 30) >= 0);
    CHECK_STR_EQ(line, "ready");
    CHECK(ag_test_read_line(fb, line, sizeof(line), 30) >= 0);
    CHECK_STR_EQ(line, "ready");
    kill(b, SIGKILL);
    CHECK_EQ(ag_test_wait(b, 10), 128 + SIGKILL);
    uint64_t t0 = ag_now_ms();
    CHECK_EQ(ag_test_wait(a, 20), 1);
    uint64_t waited = ag_now_ms() - t0;
    CHECK(waited < 10000); /* the 3 s timeout, and the link's shutdown */
    const char *err = ag_test_read_file(ea);
    CHECK_CONTAINS(err, "fedjob: ");
    CHECK_CONTAINS(err, "party bob");
    CHECK_CONTAINS(err, "3000 ms");
    close(fa);
    close(fb);
}

TEST(fed_an_error_at_one_party_reaches_every_party)
{
    ag_test_proc p;
    const char *sim[] = {ag_test_prog("fedjob"), "--sim", "alice,bob,carol", "fail", NULL};
    CHECK_EQ(ag_test_run(&p, sim, NULL, 60), 1);
    CHECK_STR_EQ(p.err, "fedjob: party bob: missing_file: bob.csv: no such file\n");
    ag_test_proc_cleanup(&p);
    /* under launch, every party's process says it and exits 1 */
    const char *launch[] = {ag_test_bin("argot"), "launch", "--sim", "alice,bob", "--",
                            ag_test_prog("fedjob"), "fail", NULL};
    CHECK_EQ(ag_test_run(&p, launch, NULL, 60), 1);
    CHECK_CONTAINS(p.err, "[alice] fedjob: party bob: missing_file: bob.csv: no such file\n");
    CHECK_CONTAINS(p.err, "[bob] fedjob: party bob: missing_file: bob.csv: no such file\n");
    CHECK_CONTAINS(p.err, "argot: launch: party alice exited with status 1\n");
    CHECK_CONTAINS(p.err, "argot: launch: party bob exited with status 1\n");
    ag_test_proc_cleanup(&p);
}

TEST(fed_main_usage_errors)
{
    ag_test_proc p;
    const char *none[] = {ag_test_bin("example-hello"), NULL};
    CHECK_EQ(ag_test_run(&p, none, NULL, 10), 2);
    CHECK_STR_EQ(p.err, "example-hello: choose a mode: --sim alice,bob (one process) or "
                        "--config cluster.yaml --party NAME (this process is one party) (see "
                        "'example-hello --help')\n");
    ag_test_proc_cleanup(&p);
    const char *one[] = {ag_test_bin("example-hello"), "--sim", "alice", NULL};
    CHECK_EQ(ag_test_run(&p, one, NULL, 10), 2);
    CHECK_CONTAINS(p.err, "--sim alice: a job needs at least 2 parties");
    ag_test_proc_cleanup(&p);
    const char *dup[] = {ag_test_bin("example-hello"), "--sim", "alice,alice", NULL};
    CHECK_EQ(ag_test_run(&p, dup, NULL, 10), 2);
    CHECK_CONTAINS(p.err, "party 'alice' appears twice");
    ag_test_proc_cleanup(&p);
    const char *cfg = write_cluster("c.yaml", NULL);
    const char *noparty[] = {ag_test_bin("example-hello"), "--config", cfg, NULL};
    CHECK_EQ(ag_test_run(&p, noparty, NULL, 10), 2);
    CHECK_CONTAINS(p.err, "--config needs --party NAME");
    ag_test_proc_cleanup(&p);
    const char *who[] = {ag_test_bin("example-hello"), "--config", cfg, "--party", "eve", NULL};
    CHECK_EQ(ag_test_run(&p, who, NULL, 10), 2);
    CHECK_CONTAINS(p.err, "--party eve: no such party in ");
    ag_test_proc_cleanup(&p);
    static const char bad_yaml[] = "parties:\n  alice: {adress: x}\n  bob: {address: x}\n";
    const char *bad = ag_test_write_file("bad.yaml", bad_yaml, strlen(bad_yaml));
    const char *badcfg[] = {ag_test_bin("example-hello"), "--config", bad, "--party", "alice",
                            NULL};
    CHECK_EQ(ag_test_run(&p, badcfg, NULL, 10), 1);
    CHECK_CONTAINS(p.err, "bad.yaml:2:11: unknown key 'adress' (did you mean 'address'?)");
    ag_test_proc_cleanup(&p);
    const char *help[] = {ag_test_bin("example-hello"), "--help", NULL};
    CHECK_EQ(ag_test_run(&p, help, NULL, 10), 0);
    CHECK_CONTAINS(p.out, "usage: example-hello --sim PARTIES");
    ag_test_proc_cleanup(&p);
    const char *nolaunch[] = {ag_test_bin("argot"), "launch", "--sim", "alice,bob", NULL};
    CHECK_EQ(ag_test_run(&p, nolaunch, NULL, 10), 2);
    CHECK_CONTAINS(p.err, "argot: launch: give the program after --");
    ag_test_proc_cleanup(&p);
    const char *missing[] = {ag_test_bin("argot"), "launch", "--sim", "alice,bob", "--",
                             "/nonexistent/prog", NULL};
    CHECK_EQ(ag_test_run(&p, missing, NULL, 10), 1);
    CHECK_CONTAINS(p.err, "[alice] argot: launch: cannot run /nonexistent/prog: No such file");
    ag_test_proc_cleanup(&p);
}

TEST(fed_a_taken_address_names_the_party_and_the_address)
{
    /* alice's port is held by someone else */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    CHECK(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(s, 1) == 0);
    CHECK(getsockname(s, (struct sockaddr *)&sa, &len) == 0);
    char text[256];
    snprintf(text, sizeof(text), "parties:\n  alice: {address: \"127.0.0.1:%d\"}\n  bob: "
             "{address: \"127.0.0.1:%d\"}\n", ntohs(sa.sin_port), ag_test_free_port());
    const char *cfg = ag_test_write_file("c.yaml", text, strlen(text));
    ag_test_proc p;
    const char *argv[] = {ag_test_bin("example-hello"), "--config", cfg, "--party", "alice",
                          NULL};
    CHECK_EQ(ag_test_run(&p, argv, NULL, 10), 1);
    char want[128];
    snprintf(want, sizeof(want), "example-hello: party alice cannot serve on 127.0.0.1:%d: "
             "address already in use\n", ntohs(sa.sin_port));
    CHECK_STR_EQ(p.err, want);
    ag_test_proc_cleanup(&p);
    close(s);
}

TEST(fed_two_jobs_on_the_same_addresses_do_not_mix)
{
    /* alice runs job s1, bob job s2, on the same addresses: each refuses
     * the other's frames, and both say so within their timeout */
    const char *cfg = write_cluster("cluster.yaml", NULL);
    char config[600], ea[600], eb[600];
    snprintf(config, sizeof(config), "%s", cfg);
    snprintf(ea, sizeof(ea), "%s", ag_test_path("alice.err"));
    snprintf(eb, sizeof(eb), "%s", ag_test_path("bob.err"));
    const char *prog = ag_test_bin("example-hello");
    const char *argv_a[] = {"/bin/sh", "-c", "f=$1; shift; exec \"$@\" 2>\"$f\"", "sh", ea, prog,
                            "--config", config, "--party", "alice", "--timeout", "2",
                            "--session", "s1", NULL};
    const char *argv_b[] = {"/bin/sh", "-c", "f=$1; shift; exec \"$@\" 2>\"$f\"", "sh", eb, prog,
                            "--config", config, "--party", "bob", "--timeout", "2",
                            "--session", "s2", NULL};
    int fa, fb;
    pid_t a = ag_test_spawn(argv_a, &fa), b = ag_test_spawn(argv_b, &fb);
    CHECK_EQ(ag_test_wait(a, 30), 1);
    CHECK_EQ(ag_test_wait(b, 30), 1);
    char line[64];
    CHECK(ag_test_read_line(fa, line, sizeof(line), 1) < 0); /* no result printed */
    CHECK(ag_test_read_line(fb, line, sizeof(line), 1) < 0);
    CHECK_CONTAINS(ag_test_read_file(ea), "no message from party bob within 2000 ms");
    CHECK_CONTAINS(ag_test_read_file(ea), "failed: PERMISSION_DENIED: frame for job 's1', party bob runs "
                              "job 's2'");
    CHECK_CONTAINS(ag_test_read_file(eb), "frame for job 's2', party alice runs job 's1'");
    close(fa);
    close(fb);
}

TEST(fed_an_unreachable_peer_is_named_with_its_address)
{
    const char *cfg = write_cluster("cluster.yaml", NULL);
    ag_test_proc p;
    const char *argv[] = {ag_test_bin("example-hello"), "--config", cfg, "--party", "alice",
                          "--timeout", "1", NULL};
    CHECK_EQ(ag_test_run(&p, argv, NULL, 30), 1);
    CHECK_CONTAINS(p.err, "example-hello: party alice: ");
    CHECK_CONTAINS(p.err, "no message from party bob within 1000 ms");
    CHECK_CONTAINS(p.err, "sending to bob at 127.0.0.1:");
    CHECK_CONTAINS(p.err, "UNAVAILABLE: cannot connect to 127.0.0.1:");
    ag_test_proc_cleanup(&p);
}

/* ---- production mode with party certificates -------------------------------------- */

static void ca(const char *dir, const char *party)
{
    ag_test_proc p;
    const char *init[] = {ag_test_bin("argot"), "ca", "init", "--dir", dir, NULL};
    const char *issue[] = {ag_test_bin("argot"), "ca", "issue", party, "--dir", dir,
                           NULL};
    if (!party && ag_test_run(&p, init, NULL, 30) != 0)
        FAIL("argot ca init: %s", p.err);
    if (party && ag_test_run(&p, issue, NULL, 30) != 0)
        FAIL("argot ca issue: %s", p.err);
    ag_test_proc_cleanup(&p);
}

/* A party's config: the parties' addresses, its own certificate. */
static const char *party_config(const char *name, const char *addr_a, const char *addr_b,
                                const char *certdir, const char *cert, const char *cadir)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "parties:\n  alice: {address: \"%s\"}\n  bob: {address: \"%s\"}\n"
             "tls: {cert: %s/%s.crt, key: %s/%s.key, ca: %s/ca.crt}\n",
             addr_a, addr_b, certdir, cert, certdir, cert, cadir);
    return ag_test_write_file(name, text, strlen(text));
}

/* Runs example-hello as alice and bob with their configs; returns both
 * exit statuses and stderr texts. */
static void run_pair(const char *cfg_a, const char *cfg_b, const char *const pre[], int *sa,
                     int *sb, char *err_a, char *err_b, size_t cap)
{
    char ea[600], eb[600], ca_[600], cb[600];
    snprintf(ea, sizeof(ea), "%s", ag_test_path("alice.err"));
    snprintf(eb, sizeof(eb), "%s", ag_test_path("bob.err"));
    snprintf(ca_, sizeof(ca_), "%s", cfg_a);
    snprintf(cb, sizeof(cb), "%s", cfg_b);
    const char *prog = ag_test_bin("example-hello");
    const char *argv[2][24];
    const char *cfgs[2] = {ca_, cb}, *errs[2] = {ea, eb}, *names[2] = {"alice", "bob"};
    pid_t pid[2];
    int fd[2];
    for (int k = 0; k < 2; k++) {
        int n = 0;
        argv[k][n++] = "/bin/sh";
        argv[k][n++] = "-c";
        argv[k][n++] = "f=$1; shift; exec \"$@\" 2>\"$f\"";
        argv[k][n++] = "sh";
        argv[k][n++] = errs[k];
        for (int i = 0; pre && i < 4 && pre[k * 4 + i]; i++)
            argv[k][n++] = pre[k * 4 + i];
        argv[k][n++] = prog;
        argv[k][n++] = "--config";
        argv[k][n++] = cfgs[k];
        argv[k][n++] = "--party";
        argv[k][n++] = names[k];
        argv[k][n++] = "--timeout";
        argv[k][n++] = "3";
        argv[k][n] = NULL;
        pid[k] = ag_test_spawn(argv[k], &fd[k]);
    }
    char line[64];
    for (int k = 0; k < 2; k++) {
        if (ag_test_read_line(fd[k], line, sizeof(line), 30) >= 0 && strcmp(line, "9") != 0)
            FAIL("%s printed '%s'", names[k], line);
        close(fd[k]);
    }
    *sa = ag_test_wait(pid[0], 30);
    *sb = ag_test_wait(pid[1], 30);
    snprintf(err_a, cap, "%s", ag_test_read_file(ea));
    snprintf(err_b, cap, "%s", ag_test_read_file(eb));
}

TEST_TIMEOUT(fed_parties_prove_their_names_with_certificates, 120)
{
    char dir[600], other[600], addr_a[64], addr_b[64];
    snprintf(dir, sizeof(dir), "%s", ag_test_path("pki"));
    snprintf(other, sizeof(other), "%s", ag_test_path("pki-other"));
    ca(dir, NULL);
    ca(dir, "alice");
    ca(dir, "bob");
    ca(dir, "mallory");
    ca(other, NULL);
    ca(other, "bob");
    snprintf(addr_a, sizeof(addr_a), "127.0.0.1:%d", ag_test_free_port());
    snprintf(addr_b, sizeof(addr_b), "127.0.0.1:%d", ag_test_free_port());
    char ca_[600], cb[600], ea[4096], eb[4096];
    int sa, sb;
    snprintf(ca_, sizeof(ca_), "%s", party_config("a.yaml", addr_a, addr_b, dir, "alice", dir));
    snprintf(cb, sizeof(cb), "%s", party_config("b.yaml", addr_a, addr_b, dir, "bob", dir));
    run_pair(ca_, cb, NULL, &sa, &sb, ea, eb, sizeof(ea));
    if (sa != 0 || sb != 0)
        FAIL("with the right certificates: alice %d (%s), bob %d (%s)", sa, ea, sb, eb);

    /* bob's certificate from a CA alice does not trust: refused both ways */
    snprintf(cb, sizeof(cb), "%s", party_config("b2.yaml", addr_a, addr_b, other, "bob", other));
    run_pair(ca_, cb, NULL, &sa, &sb, ea, eb, sizeof(ea));
    CHECK_EQ(sa, 1);
    CHECK_EQ(sb, 1);
    CHECK_CONTAINS(ea, "no message from party bob");
    CHECK_CONTAINS(ea, "sending to bob at ");
    CHECK_CONTAINS(ea, "TLS handshake: certificate verify failed");

    /* mallory (a real party certificate) posing as bob: alice's server and
     * client both refuse it */
    snprintf(cb, sizeof(cb), "%s", party_config("b3.yaml", addr_a, addr_b, dir, "mallory", dir));
    run_pair(ca_, cb, NULL, &sa, &sb, ea, eb, sizeof(ea));
    CHECK_EQ(sa, 1);
    CHECK_EQ(sb, 1);
    CHECK_CONTAINS(ea, "sending to bob at ");
    CHECK_CONTAINS(ea, "certificate verify failed");
    CHECK_CONTAINS(eb, "a certificate for 'mallory' may not send as party bob");
}

/* Two hosts made with network namespaces and a veth pair, a party in each,
 * talking over 10.231.7.0/24 with TLS (required off loopback). */
TEST_TIMEOUT(fed_production_across_two_network_namespaces, 120)
{
    char ns[2][32];
    snprintf(ns[0], sizeof(ns[0]), "argot-a-%d", (int)getpid());
    snprintf(ns[1], sizeof(ns[1]), "argot-b-%d", (int)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "ip netns add %s 2>/dev/null", ns[0]);
    if (system(cmd) != 0) {
        printf("skipped: cannot create network namespaces here (needs root and ip netns)\n");
        return;
    }
    snprintf(cmd, sizeof(cmd),
             "set -e; ip netns add %s; "
             "ip link add va%d type veth peer name vb%d; "
             "ip link set va%d netns %s; ip link set vb%d netns %s; "
             "ip -n %s addr add 10.231.7.1/24 dev va%d; ip -n %s addr add 10.231.7.2/24 dev vb%d; "
             "ip -n %s link set va%d up; ip -n %s link set vb%d up; "
             "ip -n %s link set lo up; ip -n %s link set lo up",
             ns[1], (int)getpid() % 100000, (int)getpid() % 100000, (int)getpid() % 100000, ns[0],
             (int)getpid() % 100000, ns[1], ns[0], (int)getpid() % 100000, ns[1],
             (int)getpid() % 100000, ns[0], (int)getpid() % 100000, ns[1],
             (int)getpid() % 100000, ns[0], ns[1]);
    int setup = system(cmd);
    char dir[600], ca_[600], cb[600], ea[4096], eb[4096];
    int sa = -1, sb = -1;
    if (setup == 0) {
        snprintf(dir, sizeof(dir), "%s", ag_test_path("pki"));
        ca(dir, NULL);
        ca(dir, "alice");
        ca(dir, "bob");
        snprintf(ca_, sizeof(ca_), "%s",
                 party_config("a.yaml", "10.231.7.1:9100", "10.231.7.2:9100", dir, "alice", dir));
        snprintf(cb, sizeof(cb), "%s",
                 party_config("b.yaml", "10.231.7.1:9100", "10.231.7.2:9100", dir, "bob", dir));
        const char *pre[8] = {"ip", "netns", "exec", ns[0], "ip", "netns", "exec", ns[1]};
        run_pair(ca_, cb, pre, &sa, &sb, ea, eb, sizeof(ea));
    }
    snprintf(cmd, sizeof(cmd), "ip netns del %s; ip netns del %s", ns[0], ns[1]);
    if (system(cmd) != 0)
        printf("warning: could not delete namespaces %s and %s\n", ns[0], ns[1]);
    CHECK_EQ(setup, 0);
    if (sa != 0 || sb != 0)
        FAIL("across namespaces: alice %d (%s), bob %d (%s)", sa, ea, sb, eb);
}
