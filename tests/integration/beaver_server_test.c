/*
 * argot beaver-server end to end: the dealer as its own process over mutual
 * TLS, two production parties (argot demo --config, one process each)
 * whose SPU takes its Beaver triples from it; their results equal the
 * simulation's (trusted first party); SIGTERM stops the dealer cleanly.
 * Then what users see when the dealer is missing and when its config is
 * wrong.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"

/* Everything fd gives until its end (at most 1 MiB), malloc'd; closes fd. */
static char *read_all(int fd)
{
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    CHECK(out != NULL);
    ssize_t r;
    while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fd);
    return out;
}

/* GET path from 127.0.0.1:port: the whole response (the harness's). */
static char *http_get(int port, const char *path)
{
    char *r = ag_test_http(port, "GET", path, NULL);
    CHECK(r != NULL);
    return r;
}

static void argot_ok(const char *a1, const char *a2, const char *a3, const char *a4,
                     const char *a5, const char *a6)
{
    const char *argv[] = {ag_test_bin("argot"), a1, a2, a3, a4, a5, a6, NULL};
    ag_test_proc p;
    int st = ag_test_run(&p, argv, NULL, 60);
    if (st != 0)
        FAIL("argot %s %s: exit %d: %s", a1, a2, st, p.err);
    ag_test_proc_cleanup(&p);
}

/* A CA with certificates for alice, bob and the dealer (in ca/). */
static void make_pki(void)
{
    char ca[512];
    snprintf(ca, sizeof(ca), "%s", ag_test_path("ca"));
    argot_ok("ca", "init", "--dir", ca, NULL, NULL);
    argot_ok("ca", "issue", "alice", "--dir", ca, NULL);
    argot_ok("ca", "issue", "bob", "--dir", ca, NULL);
    argot_ok("ca", "issue", "dealer", "--dir", ca, NULL);
}

/* Starts the dealer with mutual TLS on a free port; returns its pid and
 * puts its port in *port and its admin port in *admin. */
static pid_t start_dealer(int *port, int *admin)
{
    static const char yaml[] = "address: \"127.0.0.1:0\"\n"
                               "tls: {cert: ca/dealer.crt, key: ca/dealer.key, ca: ca/ca.crt}\n"
                               "sessions: {max: 16, idle_timeout: 10m}\n"
                               "shutdown_grace: 2s\n"
                               "log: {level: warn}\n"
                               "admin: {address: \"127.0.0.1:0\"}\n";
    char path[512];
    snprintf(path, sizeof(path), "%s", ag_test_write_file("dealer.yaml", yaml, strlen(yaml)));
    const char *argv[] = {ag_test_bin("argot"), "beaver-server", "--config", path, NULL};
    int fd;
    pid_t pid = ag_test_spawn(argv, &fd);
    char line[256];
    if (ag_test_read_line(fd, line, sizeof(line), 20) < 0)
        FAIL("the dealer did not say where it listens");
    const char *want = "beaver-server listening on 127.0.0.1:";
    if (strncmp(line, want, strlen(want)) != 0 || !strstr(line, "(mutual TLS)"))
        FAIL("unexpected first line: %s", line);
    *port = atoi(line + strlen(want));
    CHECK(*port > 0);
    if (ag_test_read_line(fd, line, sizeof(line), 20) < 0)
        FAIL("the dealer did not say where its admin endpoint is");
    close(fd);
    want = "beaver-server admin on http://127.0.0.1:";
    if (strncmp(line, want, strlen(want)) != 0)
        FAIL("unexpected second line: %s", line);
    *admin = atoi(line + strlen(want));
    CHECK(*admin > 0);
    return pid;
}

/* The cluster config of party me (its own certificate), the dealer at
 * dealer_port. */
static void write_cluster(const char *me, const char *cert_dir, int pa, int pb, int dealer_port)
{
    char yaml[1024], name[64];
    snprintf(yaml, sizeof(yaml),
             "parties:\n"
             "  alice: {address: \"127.0.0.1:%d\"}\n"
             "  bob: {address: \"127.0.0.1:%d\"}\n"
             "spu: {field: FM128, beaver: ttp, beaver_server: \"127.0.0.1:%d\", "
             "beaver_server_name: dealer}\n"
             "session: ttp-itest\n"
             "timeout: 20s\n"
             "tls: {cert: %s/%s.crt, key: %s/%s.key, ca: %s/ca.crt}\n",
             pa, pb, dealer_port, cert_dir, me, cert_dir, me, cert_dir);
    snprintf(name, sizeof(name), "%s.yaml", me);
    ag_test_write_file(name, yaml, strlen(yaml));
}

/* The "learned" line of party in out, from "learned:" on. */
static const char *learned(const char *out, const char *party, char *buf, size_t cap)
{
    char key[64];
    snprintf(key, sizeof(key), "%-6s learned:", party);
    const char *p = strstr(out, key);
    if (!p)
        FAIL("no line for %s in:\n%s", party, out);
    p += strlen(key);
    size_t n = strcspn(p, "\n");
    snprintf(buf, cap, "%.*s", (int)n, p);
    return buf;
}

TEST_TIMEOUT(beaver_server_deals_for_production_parties_over_mutual_tls, 180)
{
    make_pki();
    int dport, aport;
    pid_t dealer = start_dealer(&dport, &aport);
    char *health = http_get(aport, "/healthz");
    CHECK_CONTAINS(health, "HTTP/1.1 200");
    free(health);
    int pa = ag_test_free_port(), pb = ag_test_free_port();
    write_cluster("alice", "ca", pa, pb, dport);
    write_cluster("bob", "ca", pa, pb, dport);
    char acfg[512], bcfg[512];
    snprintf(acfg, sizeof(acfg), "%s", ag_test_path("alice.yaml"));
    snprintf(bcfg, sizeof(bcfg), "%s", ag_test_path("bob.yaml"));
    const char *bargv[] = {ag_test_bin("argot"), "demo", "--config", bcfg, "--party", "bob",
                           NULL};
    int bfd;
    pid_t bob = ag_test_spawn(bargv, &bfd);
    ag_test_proc p;
    const char *aargv[] = {ag_test_bin("argot"), "demo", "--config", acfg, "--party", "alice",
                           NULL};
    int st = ag_test_run(&p, aargv, NULL, 120);
    char *bout = read_all(bfd);
    int bst = ag_test_wait(bob, 60);
    if (st != 0 || bst != 0)
        FAIL("alice exit %d: %s\nbob exit %d", st, p.err, bst);
    /* the same job simulated, with the trusted first party */
    ag_test_proc sim;
    const char *sargv[] = {ag_test_bin("argot"), "demo", "--sim", "alice,bob", "--in",
                           "alice=examples/alice.csv", "--in", "bob=examples/bob.csv", NULL};
    CHECK_EQ(ag_test_run(&sim, sargv, NULL, 120), 0);
    char x[512], y[512];
    CHECK_STR_EQ(learned(p.out, "alice", x, sizeof(x)), learned(sim.out, "alice", y, sizeof(y)));
    CHECK_STR_EQ(learned(bout, "bob", x, sizeof(x)), learned(sim.out, "bob", y, sizeof(y)));
    free(bout);
    ag_test_proc_cleanup(&p);
    ag_test_proc_cleanup(&sim);

    /* the dealer's metrics: one session, two seeds, matrix triples dealt (the demo's sums are products), the
     * session closed by rank 0 */
    char *metrics = http_get(aport, "/metrics");
    CHECK_CONTAINS(metrics, "HTTP/1.1 200");
    CHECK_CONTAINS(metrics, "\nargot_beaver_sessions_total 1\n");
    CHECK_CONTAINS(metrics, "\nargot_beaver_registrations_total 2\n");
    CHECK_CONTAINS(metrics, "\nargot_beaver_sessions 0\n");
    CHECK_CONTAINS(metrics, "argot_beaver_deals_total{kind=\"MATMUL\"} ");
    CHECK_CONTAINS(metrics, "argot_beaver_deal_seconds_bucket{kind=\"MATMUL\",le=\"+Inf\"} ");
    free(metrics);

    /* SIGTERM: the dealer drains and exits 0 */
    CHECK_EQ(ag_test_stop(dealer), 0);
}

TEST_TIMEOUT(beaver_server_missing_names_the_dealer, 90)
{
    int pa = ag_test_free_port(), pb = ag_test_free_port(), dport = ag_test_free_port();
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "parties:\n"
             "  alice: {address: \"127.0.0.1:%d\"}\n"
             "  bob: {address: \"127.0.0.1:%d\"}\n"
             "spu: {field: FM128, beaver: ttp, beaver_server: \"127.0.0.1:%d\"}\n"
             "timeout: 20s\n",
             pa, pb, dport);
    char cfg[512], want[128];
    snprintf(cfg, sizeof(cfg), "%s", ag_test_write_file("c.yaml", yaml, strlen(yaml)));
    const char *bargv[] = {ag_test_bin("argot"), "demo", "--config", cfg, "--party", "bob",
                           NULL};
    int bfd;
    pid_t bob = ag_test_spawn(bargv, &bfd);
    ag_test_proc p;
    const char *aargv[] = {ag_test_bin("argot"), "demo", "--config", cfg, "--party", "alice",
                           NULL};
    CHECK_EQ(ag_test_run(&p, aargv, NULL, 60), 1);
    snprintf(want, sizeof(want), "127.0.0.1:%d", dport);
    CHECK_CONTAINS(p.err, "beaver server");
    CHECK_CONTAINS(p.err, want);
    close(bfd);
    CHECK_EQ(ag_test_wait(bob, 60), 1);
    ag_test_proc_cleanup(&p);
}

TEST(beaver_server_config_errors)
{
    static const struct {
        const char *yaml;
        const char *err; /* after "argot: beaver-server: <path>" */
    } cases[] = {
        {"adress: \"127.0.0.1:0\"\n", ":1:1: unknown key 'adress' (did you mean 'address'?)"},
        {"address: \"127.0.0.1:0\"\nsessions: {max: 0}\n",
         ":2:17: 'max' must be between 1 and 1048576, got 0"},
        {"address: \"127.0.0.1:0\"\ntls: {cert: a.crt}\n",
         ":2:6: missing required key 'key' in 'tls'"},
        {"address: \"127.0.0.1:0\"\nlog: {level: loud}\n",
         ":2:14: log level 'loud' is not debug, info, warn, error or off"},
        {"sessions: {idle_timeout: 5 minutes}\n", ":1:26: "},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        char path[512], want[1024];
        snprintf(path, sizeof(path), "%s",
                 ag_test_write_file("d.yaml", cases[i].yaml, strlen(cases[i].yaml)));
        snprintf(want, sizeof(want), "argot: beaver-server: %s%s", path, cases[i].err);
        const char *argv[] = {ag_test_bin("argot"), "beaver-server", "--config", path, NULL};
        ag_test_proc p;
        CHECK_EQ(ag_test_run(&p, argv, NULL, 30), 1);
        CHECK_CONTAINS(p.err, want);
        ag_test_proc_cleanup(&p);
    }
    /* no address anywhere; a usage error without flags */
    const char *path = ag_test_write_file("e.yaml", "log: {level: info}\n", 19);
    char pathbuf[512];
    snprintf(pathbuf, sizeof(pathbuf), "%s", path);
    const char *argv[] = {ag_test_bin("argot"), "beaver-server", "--config", pathbuf, NULL};
    ag_test_proc p;
    CHECK_EQ(ag_test_run(&p, argv, NULL, 30), 1);
    CHECK_CONTAINS(p.err, "no address to serve on");
    ag_test_proc_cleanup(&p);
    const char *argv2[] = {ag_test_bin("argot"), "beaver-server", NULL};
    CHECK_EQ(ag_test_run(&p, argv2, NULL, 30), 2);
    ag_test_proc_cleanup(&p);
}
