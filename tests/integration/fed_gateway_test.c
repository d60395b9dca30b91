/*
 * The federated link through the party gateways (issue 11): two parties,
 * each with its gateway (`argot mesh`, configured by `argot mesh init`
 * from the cluster config), each party in a network namespace of its own
 * joined by a veth pair (the fed test's hosts): the link server on the
 * namespace's loopback, only the gateway's port on the veth address. PSI
 * and LR over the gateways give the results of direct links; a
 * certificate from another CA is refused at the gateway (TLS); a party
 * certificate calling anything but the link service is refused
 * (PERMISSION_DENIED), as is a frame whose sender is not the caller the
 * gateway names; a job survives the rotation of both parties' certificates
 * (new certificates issued, the gateways sent SIGHUP) with its streams
 * intact; and one survives bob's gateway moving to another port, alice's
 * gateway finding it through etcd (its key updated mid-job). Without
 * network namespaces (not root, no `ip netns`; or with
 * ARGOT_TEST_NO_NETNS set), the same runs on loopback with distinct ports,
 * and each test says which ran.
 */
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "argot/link.h"
#include "argot/link/v1/link.pb-c.h"
#include "argot/rpc.h"
#include "etcd/v3/rpc.argot.h"
#include "etcd/v3/rpc.pb-c.h"
#include "etcd.h"
#include "test.h"

static const char *const names[2] = {"alice", "bob"};

/* The two hosts: in namespaces (netns) or on loopback. */
struct env {
    bool netns;
    char ns[2][40];
    char veth[2][16];
    char host[2][32];   /* the gateway's address's host */
    char gw[2][64];     /* each party's gateway, host:port */
    char link[2][64];   /* each party's link server */
    char pki[600];
    char cfg[2][600];   /* each party's cluster config (its own certificate) */
    char direct[2][600];/* the same job over direct links (loopback, TLS) */
    char mesh[2][600];  /* each gateway's config, from argot mesh init */
    char mesh_err[2][600];
    pid_t mesh_pid[2];
    int mesh_fd[2];
    int admin[2];       /* each gateway's admin port (on its host's 127.0.0.1) */
    pid_t job_pid[2];   /* a job's parties, while the test waits on them */
    pid_t pub_pid[2];   /* bob's gateways found through etcd (their test) */
    int pub_fd[2];
    char pub_err[2][600];
    ag_test_etcd etcd_proc; /* etcd, in alice's host (its test) */
    char etcd[32];      /* its client address, 127.0.0.1:port */
};

static struct env E;

static void env_cleanup(void)
{
    for (int k = 0; k < 2; k++) {
        if (E.job_pid[k] > 0)
            ag_test_stop(E.job_pid[k]);
        E.job_pid[k] = 0;
        if (E.pub_pid[k] > 0) {
            ag_test_stop(E.pub_pid[k]);
            close(E.pub_fd[k]);
        }
        E.pub_pid[k] = 0;
    }
    if (E.etcd_proc.pid > 0)
        ag_test_etcd_stop(&E.etcd_proc);
    for (int k = 0; k < 2; k++)
        if (E.mesh_pid[k] > 0) {
            ag_test_stop(E.mesh_pid[k]);
            close(E.mesh_fd[k]);
            E.mesh_pid[k] = 0;
        }
    if (E.netns) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "ip netns del %s; ip netns del %s", E.ns[0], E.ns[1]);
        if (system(cmd) != 0)
            printf("warning: could not delete namespaces %s and %s\n", E.ns[0], E.ns[1]);
        E.netns = false;
    }
}

/* Stops both gateways (they must exit 0 on SIGTERM, with nothing from the
 * sanitizers in their logs), then cleans up. */
static void env_down(void)
{
    for (int k = 0; k < 2; k++) {
        if (E.mesh_pid[k] <= 0)
            continue;
        int st = ag_test_stop(E.mesh_pid[k]);
        close(E.mesh_fd[k]);
        E.mesh_pid[k] = 0;
        const char *log = ag_test_read_file(E.mesh_err[k]);
        if (st != 0 || strstr(log, "Sanitizer") || strstr(log, "runtime error:"))
            FAIL("gateway of %s exited with %d: %s", names[k], st, log);
    }
    env_cleanup();
}

static void ca(const char *dir, const char *party)
{
    ag_test_proc p;
    const char *init[] = {ag_test_bin("argot"), "ca", "init", "--dir", dir, NULL};
    const char *issue[] = {ag_test_bin("argot"), "ca", "issue", party, "--dir", dir, NULL};
    if (ag_test_run(&p, party ? issue : init, NULL, 30) != 0)
        FAIL("argot ca %s: %s", party ? "issue" : "init", p.err);
    ag_test_proc_cleanup(&p);
}

/* Two namespaces joined by a veth pair, 10.231.9.1 and .2; false (nothing
 * left behind) if this machine cannot make them. */
static bool netns_up(void)
{
    int id = (int)getpid() % 100000;
    snprintf(E.ns[0], sizeof(E.ns[0]), "argot-gwa-%d", (int)getpid());
    snprintf(E.ns[1], sizeof(E.ns[1]), "argot-gwb-%d", (int)getpid());
    snprintf(E.veth[0], sizeof(E.veth[0]), "ga%d", id);
    snprintf(E.veth[1], sizeof(E.veth[1]), "gb%d", id);
    char cmd[1024];
    if (getenv("ARGOT_TEST_NO_NETNS")) /* to run the loopback variant here */
        return false;
    snprintf(cmd, sizeof(cmd), "ip netns add %s 2>/dev/null", E.ns[0]);
    if (system(cmd) != 0)
        return false;
    E.netns = true; /* from here on, env_cleanup deletes them */
    snprintf(cmd, sizeof(cmd),
             "set -e; ip netns add %s; ip link add %s type veth peer name %s; "
             "ip link set %s netns %s; ip link set %s netns %s; "
             "ip -n %s addr add 10.231.9.1/24 dev %s; ip -n %s addr add 10.231.9.2/24 dev %s; "
             "ip -n %s link set %s up; ip -n %s link set %s up; "
             "ip -n %s link set lo up; ip -n %s link set lo up",
             E.ns[1], E.veth[0], E.veth[1], E.veth[0], E.ns[0], E.veth[1], E.ns[1], E.ns[0],
             E.veth[0], E.ns[1], E.veth[1], E.ns[0], E.veth[0], E.ns[1], E.veth[1], E.ns[0],
             E.ns[1]);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null",
                 E.ns[0], E.ns[1]);
        if (system(cmd) != 0) {
            /* one of them may not exist */
        }
        E.netns = false;
        return false;
    }
    return true;
}

/* Writes a party's cluster config: with gateways (gw true) or direct. */
static const char *cluster_config(const char *file, int me, bool gw, const char *a0,
                                  const char *a1, const char *timeout)
{
    char text[4096];
    if (gw)
        snprintf(text, sizeof(text),
                 "parties:\n  alice: {address: \"%s\", gateway: \"%s\"}\n"
                 "  bob: {address: \"%s\", gateway: \"%s\"}\n"
                 "tls: {cert: %s/%s.crt, key: %s/%s.key, ca: %s/ca.crt}\ntimeout: %s\n",
                 E.link[0], E.gw[0], E.link[1], E.gw[1], E.pki, names[me], E.pki, names[me],
                 E.pki, timeout);
    else
        snprintf(text, sizeof(text),
                 "parties:\n  alice: {address: \"%s\"}\n  bob: {address: \"%s\"}\n"
                 "tls: {cert: %s/%s.crt, key: %s/%s.key, ca: %s/ca.crt}\ntimeout: %s\n",
                 a0, a1, E.pki, names[me], E.pki, names[me], E.pki, timeout);
    return ag_test_write_file(file, text, strlen(text));
}

/* Runs argv (NULL-terminated) in namespace k (or here, on loopback),
 * stderr to errfile; returns the pid and its stdout in *fd. */
static pid_t spawn_in(int k, const char *errfile, const char *const *argv, int *fd)
{
    const char *full[64] = {"/bin/sh", "-c", "f=$1; shift; exec \"$@\" 2>\"$f\"", "sh",
                            errfile};
    int n = 5;
    if (E.netns && k >= 0) {
        full[n++] = "ip";
        full[n++] = "netns";
        full[n++] = "exec";
        full[n++] = E.ns[k];
    }
    for (int i = 0; argv[i] && n < 63; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    return ag_test_spawn(full, fd);
}

/* Starts a gateway of party k in its host from config (stderr to
 * errfile) and waits until it listens on addr: its pid in *pid (set at
 * once, for env_cleanup), its stdout in *fd, its admin port in *admin. */
static void gw_start(int k, const char *config, const char *errfile, const char *addr,
                     pid_t *pid, int *fd, int *admin)
{
    const char *argv[] = {ag_test_bin("argot"), "mesh", "--config", config, NULL};
    *pid = spawn_in(k, errfile, argv, fd);
    char line[256], want[128];
    snprintf(want, sizeof(want), "mesh router parties listening on %s", addr);
    if (ag_test_read_line(*fd, line, sizeof(line), 20) < 0)
        FAIL("gateway of %s (%s) did not start: %s", names[k], config,
             ag_test_read_file(errfile));
    CHECK_STR_EQ(line, want);
    CHECK(ag_test_read_line(*fd, line, sizeof(line), 20) >= 0);
    CHECK_CONTAINS(line, "mesh admin listening on 127.0.0.1:");
    *admin = atoi(strrchr(line, ':') + 1);
}

/* Starts gateway k and waits until it listens. */
static void mesh_start(int k)
{
    gw_start(k, E.mesh[k], E.mesh_err[k], E.gw[k], &E.mesh_pid[k], &E.mesh_fd[k], &E.admin[k]);
}

/* The CA, the parties' certificates and configs, the gateways' configs
 * (with access logs in the test's directory if access_log); nothing
 * started. */
static void env_configs(bool access_log)
{
    memset(&E, 0, sizeof(E));
    atexit(env_cleanup);
    snprintf(E.pki, sizeof(E.pki), "%s", ag_test_path("pki"));
    ca(E.pki, NULL);
    ca(E.pki, "alice");
    ca(E.pki, "bob");
    if (netns_up()) {
        printf("running in network namespaces %s and %s\n", E.ns[0], E.ns[1]);
        for (int k = 0; k < 2; k++) {
            snprintf(E.host[k], sizeof(E.host[k]), "10.231.9.%d", k + 1);
            snprintf(E.gw[k], sizeof(E.gw[k]), "10.231.9.%d:4143", k + 1);
            snprintf(E.link[k], sizeof(E.link[k]), "127.0.0.1:9100");
        }
    } else {
        printf("network namespaces unavailable (needs root and ip netns): running on "
               "loopback with distinct ports\n");
        for (int k = 0; k < 2; k++) {
            snprintf(E.host[k], sizeof(E.host[k]), "127.0.0.1");
            snprintf(E.gw[k], sizeof(E.gw[k]), "127.0.0.1:%d", ag_test_free_port());
            snprintf(E.link[k], sizeof(E.link[k]), "127.0.0.1:%d", ag_test_free_port());
        }
    }
    char a0[64], a1[64];
    snprintf(a0, sizeof(a0), "127.0.0.1:%d", ag_test_free_port());
    snprintf(a1, sizeof(a1), "127.0.0.1:%d", ag_test_free_port());
    for (int k = 0; k < 2; k++) {
        char f[32];
        snprintf(f, sizeof(f), "%s.yaml", names[k]);
        snprintf(E.cfg[k], sizeof(E.cfg[k]), "%s", cluster_config(f, k, true, NULL, NULL, "30s"));
        snprintf(f, sizeof(f), "%s-direct.yaml", names[k]);
        snprintf(E.direct[k], sizeof(E.direct[k]), "%s",
                 cluster_config(f, k, false, a0, a1, "30s"));
        snprintf(f, sizeof(f), "gw-%s.yaml", names[k]);
        snprintf(E.mesh[k], sizeof(E.mesh[k]), "%s", ag_test_path(f));
        snprintf(f, sizeof(f), "gw-%s.err", names[k]);
        snprintf(E.mesh_err[k], sizeof(E.mesh_err[k]), "%s", ag_test_path(f));
        ag_test_proc p;
        const char *init[] = {ag_test_bin("argot"), "mesh", "init", "--cluster", E.cfg[k],
                              "--party", names[k], "--out", E.mesh[k], NULL};
        if (ag_test_run(&p, init, NULL, 30) != 0)
            FAIL("argot mesh init: %s", p.err);
        ag_test_proc_cleanup(&p);
        if (access_log) {
            /* one line per request that ended, under the router */
            FILE *fp = fopen(E.mesh[k], "a");
            CHECK(fp != NULL);
            fprintf(fp, "    accessLog: %s/access-%s.log\n", ag_test_tmpdir(), names[k]);
            fclose(fp);
        }
    }
}

/* env_configs, and both gateways running. */
static void env_up(bool access_log)
{
    env_configs(access_log);
    for (int k = 0; k < 2; k++)
        mesh_start(k);
}

/* ---- argot mesh init ---------------------------------------------------------------- */

TEST(fed_gateway_mesh_init_writes_the_gateway_config)
{
    char pki[600], text[2048], cfg[600];
    snprintf(pki, sizeof(pki), "%s", ag_test_path("pki"));
    ca(pki, NULL);
    ca(pki, "alice");
    snprintf(text, sizeof(text),
             "parties:\n  alice: {address: \"127.0.0.1:9100\", gateway: \"10.0.1.1:4143\"}\n"
             "  bob: {address: \"127.0.0.1:9100\", gateway: \"gw.bob.example:4143\"}\n"
             "  carol: {address: \"127.0.0.1:9100\", gateway: \"10.0.3.1:4143\"}\n"
             "tls: {cert: pki/alice.crt, key: pki/alice.key, ca: pki/ca.crt}\n");
    snprintf(cfg, sizeof(cfg), "%s", ag_test_write_file("cluster.yaml", text, strlen(text)));
    ag_test_proc p;
    const char *to_stdout[] = {ag_test_bin("argot"), "mesh", "init", "--cluster", cfg, "--party",
                               "alice", NULL};
    CHECK_EQ(ag_test_run(&p, to_stdout, NULL, 30), 0);
    CHECK_CONTAINS(p.out, "  - protocol: h2\n    label: parties\n"
                          "    identifier: {kind: header, header: argot-party}\n");
    CHECK_CONTAINS(p.out, "    dtab: |\n      /svc/alice => /$/inet/127.0.0.1/9100;\n"
                          "      /svc/bob => /$/inet/gw.bob.example/4143;\n"
                          "      /svc/carol => /$/inet/10.0.3.1/4143;\n");
    CHECK_CONTAINS(p.out, "    servers:\n      - ip: 10.0.1.1\n        port: 4143\n");
    CHECK_CONTAINS(p.out, "/pki/alice.crt\"\n");
    CHECK_CONTAINS(p.out, "          requireClientAuth: true\n");
    CHECK_CONTAINS(p.out, "        - prefix: /$/inet/127.0.0.1/9100\n          tls:\n"
                          "            commonName: alice\n");
    CHECK_CONTAINS(p.out, "        - prefix: /$/inet/gw.bob.example/4143\n          tls:\n"
                          "            commonName: bob\n");
    CHECK_CONTAINS(p.out, "        - prefix: /$/inet/10.0.3.1/4143\n          tls:\n"
                          "            commonName: carol\n");
    CHECK_CONTAINS(p.out, "    authorization:\n      default: deny\n      rules:\n"
                          "        - {party: alice, service: argot.link.v1.Link}\n"
                          "        - {party: \"*\", service: argot.link.v1.Link, dst: /svc/alice}\n");
    CHECK_CONTAINS(p.out, "admin: {ip: 127.0.0.1, port: 0}\n");
    ag_test_proc_cleanup(&p);

    /* to a file: checked, and argot mesh --check agrees */
    char out[600];
    snprintf(out, sizeof(out), "%s", ag_test_path("sub/gw.yaml"));
    CHECK_EQ(mkdir(ag_test_path("sub"), 0700), 0);
    const char *to_file[] = {ag_test_bin("argot"), "mesh", "init", "--cluster", cfg, "--party",
                             "alice", "--out", out, "--admin-port", "9991", NULL};
    CHECK_EQ(ag_test_run(&p, to_file, NULL, 30), 0);
    CHECK_CONTAINS(p.out, "wrote ");
    CHECK_CONTAINS(p.out, "gw.yaml: the gateway of party alice on 10.0.1.1:4143\n");
    ag_test_proc_cleanup(&p);
    const char *check[] = {ag_test_bin("argot"), "mesh", "--config", out, "--check", NULL};
    CHECK_EQ(ag_test_run(&p, check, NULL, 30), 0);
    CHECK_CONTAINS(p.out, ": ok\n");
    ag_test_proc_cleanup(&p);
    CHECK_CONTAINS(ag_test_read_file(out), "admin: {ip: 127.0.0.1, port: 9991}\n");

    /* the errors */
    const char *who[] = {ag_test_bin("argot"), "mesh", "init", "--cluster", cfg, "--party",
                         "eve", NULL};
    CHECK_EQ(ag_test_run(&p, who, NULL, 30), 2);
    CHECK_CONTAINS(p.err, "--party eve: no such party in ");
    ag_test_proc_cleanup(&p);
    static const char none[] = "parties:\n  alice: {address: \"127.0.0.1:9100\"}\n"
                               "  bob: {address: \"127.0.0.1:9101\"}\n";
    const char *nonecfg = ag_test_write_file("none.yaml", none, strlen(none));
    const char *nogw[] = {ag_test_bin("argot"), "mesh", "init", "--cluster", nonecfg, "--party",
                          "alice", NULL};
    CHECK_EQ(ag_test_run(&p, nogw, NULL, 30), 1);
    CHECK_CONTAINS(p.err, "none.yaml: the parties have no gateways");
    ag_test_proc_cleanup(&p);
    static const char mixed[] = "parties:\n  alice: {address: \"127.0.0.1:9100\", gateway: "
                                "\"10.0.1.1:4143\"}\n  bob: {address: \"127.0.0.1:9101\"}\n"
                                "tls: {cert: pki/alice.crt, key: pki/alice.key, ca: "
                                "pki/ca.crt}\n";
    const char *mixedcfg = ag_test_write_file("mixed.yaml", mixed, strlen(mixed));
    const char *mix[] = {ag_test_bin("argot"), "mesh", "init", "--cluster", mixedcfg, "--party",
                         "alice", NULL};
    CHECK_EQ(ag_test_run(&p, mix, NULL, 30), 1);
    CHECK_CONTAINS(p.err, "mixed.yaml:3:");
    CHECK_CONTAINS(p.err, "party bob has no gateway, party alice has one: every party has one "
                          "or none has");
    ag_test_proc_cleanup(&p);
    static const char notls[] = "parties:\n  alice: {address: \"127.0.0.1:9100\", gateway: "
                                "\"10.0.1.1:4143\"}\n  bob: {address: \"127.0.0.1:9101\", "
                                "gateway: \"10.0.2.1:4143\"}\n";
    const char *notlscfg = ag_test_write_file("notls.yaml", notls, strlen(notls));
    const char *nt[] = {ag_test_bin("argot"), "mesh", "init", "--cluster", notlscfg, "--party",
                        "alice", NULL};
    CHECK_EQ(ag_test_run(&p, nt, NULL, 30), 1);
    CHECK_CONTAINS(p.err, "notls.yaml:2:");
    CHECK_CONTAINS(p.err, "gateways need a tls section");
    ag_test_proc_cleanup(&p);
}

/* ---- PSI and LR: through the gateways as over direct links ---------------------------- */

/* Runs one job as alice and bob (args[k] after the command's words);
 * through the gateways (in the namespaces) or over direct links (here).
 * Returns both stdouts; both must succeed. */
static void run_job(bool gw, const char *const *cmd, const char *const *args[2], char *out[2],
                    size_t cap)
{
    pid_t pid[2];
    int fd[2];
    char err[2][600];
    for (int k = 0; k < 2; k++) {
        const char *argv[48];
        int n = 0;
        for (int i = 0; cmd[i]; i++)
            argv[n++] = cmd[i];
        argv[n++] = "--config";
        argv[n++] = gw ? E.cfg[k] : E.direct[k];
        argv[n++] = "--party";
        argv[n++] = names[k];
        for (int i = 0; args[k][i] && n < 47; i++)
            argv[n++] = args[k][i];
        argv[n] = NULL;
        char f[32];
        snprintf(f, sizeof(f), "%s-%s.err", names[k], gw ? "gw" : "direct");
        snprintf(err[k], sizeof(err[k]), "%s", ag_test_path(f));
        pid[k] = spawn_in(gw ? k : -1, err[k], argv, &fd[k]);
    }
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        char line[1024];
        out[k][0] = '\0';
        while (ag_test_read_line(fd[k], line, sizeof(line), 120) >= 0 && n + 2 < cap)
            n += (size_t)snprintf(out[k] + n, cap - n, "%s\n", line);
        close(fd[k]);
    }
    int s0 = ag_test_wait(pid[0], 60), s1 = ag_test_wait(pid[1], 60);
    if (s0 != 0 || s1 != 0)
        FAIL("%s: alice %d (%s), bob %d (%s)", gw ? "through the gateways" : "direct", s0,
             ag_test_read_file(err[0]), s1, ag_test_read_file(err[1]));
}

/* bob's revealed LR weights, in order, from his model file. */
static size_t weights(const char *model, double *w, size_t max)
{
    size_t n = 0;
    for (const char *p = strstr(model, "\nweight "); p && n < max; p = strstr(p + 1, "\nweight "))
        w[n++] = strtod(p + 8, NULL);
    return n;
}

TEST_TIMEOUT(fed_gateway_psi_and_lr_match_direct_links, 400)
{
    env_up(false);
    /* PSI: the same files, byte for byte */
    static const char a[] = "id,name,amount\n1,a,10\n2,b,20\n\"3\",\"c,x\",30\n5,é,50\n";
    static const char b[] = "uid,city\n3,paris\n1,rome\n4,oslo\n";
    char in[2][600], out[2][2][600];
    snprintf(in[0], sizeof(in[0]), "%s", ag_test_write_file("a.csv", a, strlen(a)));
    snprintf(in[1], sizeof(in[1]), "%s", ag_test_write_file("b.csv", b, strlen(b)));
    static char o0[8192], o1[8192];
    char *outs[2] = {o0, o1};
    const char *psi[] = {ag_test_bin("argot"), "psi", NULL};
    for (int gw = 0; gw < 2; gw++) {
        for (int k = 0; k < 2; k++) {
            char f[32];
            snprintf(f, sizeof(f), "psi-%s-%d.csv", names[k], gw);
            snprintf(out[gw][k], sizeof(out[gw][k]), "%s", ag_test_path(f));
        }
        const char *pa[] = {"--in", in[0], "--key", "id", "--out", out[gw][0], NULL};
        const char *pb[] = {"--in", in[1], "--key", "uid", "--out", out[gw][1], NULL};
        const char *const *args[2] = {pa, pb};
        run_job(gw, psi, args, outs, sizeof(o0));
        CHECK_CONTAINS(o0, "alice: 4 rows, 3 at the peer; intersection 2 keys");
        CHECK_CONTAINS(o1, "bob: 3 rows, 4 at the peer; intersection 2 keys");
    }
    for (int k = 0; k < 2; k++) {
        char direct[1024];
        snprintf(direct, sizeof(direct), "%s", ag_test_read_file(out[0][k]));
        CHECK_STR_EQ(ag_test_read_file(out[1][k]), direct);
    }
    CHECK_STR_EQ(ag_test_read_file(out[1][0]), "id,name,amount\n1,a,10\n3,\"c,x\",30\n");

    /* LR: the weights revealed to bob agree (the fixed-point truncation is
     * probabilistic, so two runs of the same job differ in the last bits
     * whatever the transport) */
    ag_test_proc p;
    const char *split[] = {"/usr/bin/python3", "tests/integration/peers/lr_ref.py", "split",
                           ag_test_tmpdir(), NULL};
    if (ag_test_run(&p, split, NULL, 60) != 0)
        FAIL("lr_ref.py split: %s", p.err);
    ag_test_proc_cleanup(&p);
    char ta[600], tb[600], model[2][2][600];
    snprintf(ta, sizeof(ta), "%s", ag_test_path("a_train.csv"));
    snprintf(tb, sizeof(tb), "%s", ag_test_path("b_train.csv"));
    const char *lr[] = {ag_test_bin("argot"), "lr", "train", NULL};
    for (int gw = 0; gw < 2; gw++) {
        for (int k = 0; k < 2; k++) {
            char f[32];
            snprintf(f, sizeof(f), "%s-%d.model", names[k], gw);
            snprintf(model[gw][k], sizeof(model[gw][k]), "%s", ag_test_path(f));
        }
        const char *la[] = {"--in", ta, "--key", "id", "--label", "bob:y", "--model-out",
                            model[gw][0], "--epochs", "5", "--batch-size", "100",
                            "--reveal-to", "bob", NULL};
        const char *lb[] = {"--in", tb, "--key", "id", "--label", "bob:y", "--model-out",
                            model[gw][1], "--epochs", "5", "--batch-size", "100",
                            "--reveal-to", "bob", NULL};
        const char *const *args[2] = {la, lb};
        run_job(gw, lr, args, outs, sizeof(o0));
        CHECK_CONTAINS(o0, "epoch 5/5: loss ");
        CHECK_CONTAINS(o1, "bob: 400 rows, 15 features; model written to ");
    }
    double w[2][64];
    size_t nw = weights(ag_test_read_file(model[0][1]), w[0], 64);
    CHECK_EQ(nw, weights(ag_test_read_file(model[1][1]), w[1], 64));
    CHECK(nw == 31); /* 30 features and the bias */
    for (size_t i = 0; i < nw; i++)
        if (fabs(w[0][i] - w[1][i]) > 1e-3)
            FAIL("weight %zu: %.6f direct, %.6f through the gateways", i, w[0][i], w[1][i]);
    env_down();
}

/* ---- who may pass ------------------------------------------------------------------- */

/* Moves this thread (and the threads it starts) into namespace k; a no-op
 * on loopback. */
static void enter_ns(int k)
{
    if (!E.netns)
        return;
    char path[128];
    snprintf(path, sizeof(path), "/var/run/netns/%s", E.ns[k]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(setns(fd, CLONE_NEWNET), 0);
    close(fd);
}

/* One call through a channel to target with the certificate of `who`
 * from pki: metadata argot-party: alice, the message msg (may be NULL);
 * returns the status and its message in why. */
static int call(const char *target, const char *pki, const char *who, const char *server_name,
                const char *method, const void *msg, size_t len, char *why, size_t cap)
{
    char cert[700], key[700], cafile[700];
    snprintf(cert, sizeof(cert), "%s/%s.crt", pki, who);
    snprintf(key, sizeof(key), "%s/%s.key", pki, who);
    snprintf(cafile, sizeof(cafile), "%s/ca.crt", E.pki);
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    co.tls = true;
    co.tls_ca_file = cafile;
    co.tls_cert_file = cert;
    co.tls_key_file = key;
    co.tls_server_name = server_name;
    ag_rpc_channel *ch = ag_rpc_channel_new(target, &co);
    CHECK(ch != NULL);
    ag_rpc_call *c = ag_rpc_call_new(ch, method, ag_deadline_in_ms(10000));
    CHECK(c != NULL);
    CHECK_OK(ag_rpc_call_add_metadata(c, AG_LINK_PARTY_HEADER, "alice", 5));
    if (msg)
        ag_rpc_call_send(c, msg, len);
    ag_rpc_call_close_send(c);
    uint8_t *m;
    size_t n;
    while (ag_rpc_call_recv(c, &m, &n) == 1)
        ag_free(m);
    const char *w;
    int st = ag_rpc_call_status(c, &w);
    snprintf(why, cap, "%s: %s", ag_rpc_status_name(st), w ? w : "");
    ag_rpc_call_free(c);
    ag_rpc_channel_free(ch);
    return st;
}

/* A link frame claiming to come from rank `from` of the job "argot". */
static size_t frame(unsigned from, uint8_t *buf, size_t cap)
{
    Argot__Link__V1__Frame f = ARGOT__LINK__V1__FRAME__INIT;
    f.session = "argot";
    f.from_rank = from;
    f.tag = 7;
    f.seq = 1;
    f.total = 3;
    f.offset = 0;
    f.abort = "";
    f.data.data = (uint8_t *)"hey";
    f.data.len = 3;
    CHECK(argot__link__v1__frame__get_packed_size(&f) <= cap);
    return argot__link__v1__frame__pack(&f, buf);
}

TEST_TIMEOUT(fed_gateway_admits_only_parties_to_the_link, 120)
{
    env_up(false);
    char other[600], why[512];
    snprintf(other, sizeof(other), "%s", ag_test_path("pki-other"));
    ca(other, NULL);
    ca(other, "carol");
    ca(E.pki, "mallory");
    /* alice's link server, as `argot psi` would run it, in alice's host */
    enter_ns(0);
    char cert[700], key[700], cafile[700];
    snprintf(cert, sizeof(cert), "%s/alice.crt", E.pki);
    snprintf(key, sizeof(key), "%s/alice.key", E.pki);
    snprintf(cafile, sizeof(cafile), "%s/ca.crt", E.pki);
    const char *addrs[2] = {E.link[0], E.link[1]};
    ag_link_rpc_opts o = {.rank = 0, .n = 2, .names = names, .addresses = addrs,
                          .session = "argot", .timeout_ms = 3000, .tls_cert = cert,
                          .tls_key = key, .tls_ca = cafile, .gateway = E.gw[0],
                          .via_gateway = true};
    char err[256];
    ag_link *alice = ag_link_rpc_new(&o, err, sizeof(err));
    if (!alice)
        FAIL("alice's link: %s", err);
    /* the others call from bob's host */
    enter_ns(1);
    uint8_t buf[256];
    size_t n;

    /* carol, from another CA: the TLS handshake fails */
    int st = call(E.gw[0], other, "carol", "alice", "/argot.link.v1.Link/Push", NULL, 0, why,
                  sizeof(why));
    printf("carol (another CA): %s\n", why);
    CHECK_EQ(st, AG_RPC_UNAVAILABLE);
    CHECK_CONTAINS(why, "TLS");

    /* mallory, a party of the right CA: only the link service passes */
    st = call(E.gw[0], E.pki, "mallory", "alice", "/grpc.health.v1.Health/Check", "", 0, why,
              sizeof(why));
    printf("mallory, health: %s\n", why);
    CHECK_EQ(st, AG_RPC_PERMISSION_DENIED);
    CHECK_CONTAINS(why, "mallory may not call /grpc.health.v1.Health/Check");
    st = call(E.gw[0], E.pki, "bob", "alice", "/argot.sched.v1.ResourceManager/GetNodes", "", 0,
              why, sizeof(why));
    CHECK_EQ(st, AG_RPC_PERMISSION_DENIED);
    CHECK_CONTAINS(why, "bob may not call /argot.sched.v1.ResourceManager/GetNodes");
    st = call(E.gw[0], E.pki, "bob", "alice", "/admin/reload", "", 0, why, sizeof(why));
    CHECK_EQ(st, AG_RPC_PERMISSION_DENIED);

    /* mallory reaches alice's link, but may not send as bob: the gateway
     * names the caller */
    n = frame(1, buf, sizeof(buf));
    st = call(E.gw[0], E.pki, "mallory", "alice", "/argot.link.v1.Link/Push", buf, n, why,
              sizeof(why));
    printf("mallory as bob: %s\n", why);
    CHECK_EQ(st, AG_RPC_PERMISSION_DENIED);
    CHECK_CONTAINS(why, "the gateway says the caller is 'mallory', who may not send as party "
                        "bob");
    /* nor relay through bob's gateway towards alice, to arrive there as
     * bob: bob's gateway passes a peer's stream only towards bob */
    st = call(E.gw[1], E.pki, "mallory", "bob", "/argot.link.v1.Link/Push", buf, n, why,
              sizeof(why));
    printf("mallory relaying through bob's gateway: %s\n", why);
    CHECK_EQ(st, AG_RPC_PERMISSION_DENIED);
    CHECK_CONTAINS(why, "mallory may not call /argot.link.v1.Link/Push for /svc/alice");
    /* bob, through alice's gateway, is taken */
    st = call(E.gw[0], E.pki, "bob", "alice", "/argot.link.v1.Link/Push", buf, n, why,
              sizeof(why));
    CHECK_EQ(st, AG_RPC_OK);
    void *d;
    size_t len;
    CHECK_OK(ag_link_recv(alice, 1, 7, &d, &len));
    CHECK_EQ(len, 3u);
    CHECK_MEM_EQ(d, "hey", 3);
    ag_free(d);

    /* alice's link server itself takes frames only from her gateway */
    enter_ns(0);
    st = call(E.link[0], E.pki, "bob", "alice", "/argot.link.v1.Link/Push", buf, n, why,
              sizeof(why));
    CHECK_EQ(st, AG_RPC_PERMISSION_DENIED);
    CHECK_CONTAINS(why, "party alice takes frames only through its gateway");
    if (E.netns) {
        /* and from bob's host only the gateway's port is there */
        enter_ns(1);
        char there[64];
        snprintf(there, sizeof(there), "%s:%d", E.host[0], ag_link_rpc_port(alice));
        st = call(there, E.pki, "bob", "alice", "/argot.link.v1.Link/Push", buf, n, why,
                  sizeof(why));
        CHECK_EQ(st, AG_RPC_UNAVAILABLE);
        CHECK_CONTAINS(why, "connection refused");
    }
    ag_link_abort(alice, "test over");
    ag_link_free(alice);
    env_down();
}

/* ---- certificate rotation ------------------------------------------------------------ */

/* Link streams (Push requests) the access log at path has seen end: in
 * total; *ok: those that ended well (status 200); *broken: those that
 * failed after more than a second (a stream that was up, not a failed
 * attempt to open one). */
static int pushes_logged(const char *path, int *ok, int *broken)
{
    *ok = *broken = 0;
    if (access(path, F_OK) != 0)
        return 0;
    const char *log = ag_test_read_file(path);
    int n = 0;
    for (const char *p = strstr(log, "/argot.link.v1.Link/Push"); p;
         p = strstr(p + 1, "/argot.link.v1.Link/Push")) {
        /* "... PATH NAME ENDPOINT STATUS MS\n" */
        const char *eol = strchr(p, '\n');
        const char *q = eol ? eol : p + strlen(p);
        int spaces = 0;
        while (q > p && spaces < 2)
            if (*--q == ' ')
                spaces++;
        int status = 0;
        double ms = 0;
        CHECK_EQ(sscanf(q, " %d %lf", &status, &ms), 2);
        *ok += status == 200;
        *broken += status != 200 && ms > 1000;
        n++;
    }
    return n;
}

/* The same for gateway k's access log. */
static int pushes_done(int k, int *ok, int *broken)
{
    char f[32];
    snprintf(f, sizeof(f), "access-%s.log", names[k]);
    return pushes_logged(ag_test_path(f), ok, broken);
}

/* The SHA-256 fingerprint of the certificate gateway k serves now. */
static void served_fingerprint(int k, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "%s%s openssl s_client -connect %s -servername %s -CAfile %s/ca.crt "
             "-cert %s/%s.crt -key %s/%s.key </dev/null 2>/dev/null | "
             "openssl x509 -noout -fingerprint -sha256",
             E.netns ? "ip netns exec " : "", E.netns ? E.ns[1 - k] : "", E.gw[k], names[k],
             E.pki, E.pki, names[1 - k], E.pki, names[1 - k]);
    ag_test_proc p;
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    CHECK_EQ(ag_test_run(&p, argv, NULL, 30), 0);
    snprintf(out, cap, "%s", p.out);
    ag_test_proc_cleanup(&p);
}

static void file_fingerprint(const char *party, char *out, size_t cap)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s.crt", E.pki, party);
    ag_test_proc p;
    const char *argv[] = {"openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", path,
                          NULL};
    CHECK_EQ(ag_test_run(&p, argv, NULL, 30), 0);
    snprintf(out, cap, "%s", p.out);
    ag_test_proc_cleanup(&p);
}

TEST_TIMEOUT(fed_gateway_job_survives_certificate_rotation, 400)
{
    env_up(true);
    ag_test_proc p;
    const char *split[] = {"/usr/bin/python3", "tests/integration/peers/lr_ref.py", "split",
                           ag_test_tmpdir(), NULL};
    if (ag_test_run(&p, split, NULL, 60) != 0)
        FAIL("lr_ref.py split: %s", p.err);
    ag_test_proc_cleanup(&p);
    char before[2][128];
    for (int k = 0; k < 2; k++)
        file_fingerprint(names[k], before[k], sizeof(before[k]));

    /* a job long enough to rotate under */
    pid_t pid[2];
    int fd[2];
    char err[2][600], data[2][600], mo[2][600];
    for (int k = 0; k < 2; k++) {
        char f[32];
        snprintf(f, sizeof(f), "%s.err", names[k]);
        snprintf(err[k], sizeof(err[k]), "%s", ag_test_path(f));
        snprintf(f, sizeof(f), "%c_train.csv", names[k][0]);
        snprintf(data[k], sizeof(data[k]), "%s", ag_test_path(f));
        snprintf(f, sizeof(f), "%s.model", names[k]);
        snprintf(mo[k], sizeof(mo[k]), "%s", ag_test_path(f));
        const char *argv[] = {ag_test_bin("argot"), "lr", "train", "--config", E.cfg[k],
                              "--party", names[k], "--in", data[k], "--key", "id", "--label",
                              "bob:y", "--model-out", mo[k], "--epochs", "40",
                              "--batch-size", "20", "--reveal-to", "bob", NULL};
        pid[k] = spawn_in(k, err[k], argv, &fd[k]);
    }
    char line[1024];
    bool started = false;
    while (!started && ag_test_read_line(fd[0], line, sizeof(line), 120) >= 0)
        started = strstr(line, "epoch 2/40") != NULL;
    if (!started)
        FAIL("the job did not start: %s %s", ag_test_read_file(err[0]),
             ag_test_read_file(err[1]));
    /* every stream is open now; none may end before the job does */
    int ok0[2], broken0[2], ok, broken;
    for (int k = 0; k < 2; k++)
        pushes_done(k, &ok0[k], &broken0[k]);
    for (int k = 0; k < 2; k++) {
        /* argot ca issue writes no file over another: the old ones go aside */
        char crt[700], key[700], old[710];
        snprintf(crt, sizeof(crt), "%s/%s.crt", E.pki, names[k]);
        snprintf(key, sizeof(key), "%s/%s.key", E.pki, names[k]);
        snprintf(old, sizeof(old), "%s.old", crt);
        CHECK_EQ(rename(crt, old), 0);
        snprintf(old, sizeof(old), "%s.old", key);
        CHECK_EQ(rename(key, old), 0);
        ca(E.pki, names[k]);
        CHECK_EQ(kill(E.mesh_pid[k], SIGHUP), 0);
    }
    bool over = false;
    while (ag_test_read_line(fd[0], line, sizeof(line), 120) >= 0)
        if (strstr(line, "epoch 40/40"))
            over = true;
    while (ag_test_read_line(fd[1], line, sizeof(line), 120) >= 0) {
    }
    close(fd[0]);
    close(fd[1]);
    int s0 = ag_test_wait(pid[0], 60), s1 = ag_test_wait(pid[1], 60);
    if (s0 != 0 || s1 != 0 || !over)
        FAIL("the job failed across the rotation: alice %d (%s), bob %d (%s)", s0,
             ag_test_read_file(err[0]), s1, ag_test_read_file(err[1]));
    for (int k = 0; k < 2; k++) {
        CHECK_CONTAINS(ag_test_read_file(E.mesh_err[k]), "reloaded config=");
        /* at each gateway, one stream out and one in, both up from before
         * the rotation to the job's end: none broke, none was reopened */
        pushes_done(k, &ok, &broken);
        if (ok - ok0[k] != 2 || broken != broken0[k])
            FAIL("gateway of %s: %d link streams ended well since the rotation (want 2, the "
                 "job's own), %d broke: %s", names[k], ok - ok0[k], broken - broken0[k],
                 ag_test_read_file(ag_test_path(k ? "access-bob.log" : "access-alice.log")));
    }
    /* new connections get the new certificates */
    for (int k = 0; k < 2; k++) {
        char now[128], file[128];
        served_fingerprint(k, now, sizeof(now));
        file_fingerprint(names[k], file, sizeof(file));
        CHECK_CONTAINS(now, "Fingerprint=");
        CHECK_STR_EQ(now, file);
        CHECK(strcmp(file, before[k]) != 0);
    }
    env_down();
}

/* ---- bob's gateway found through etcd, and moved mid-job ------------------------------ */

#define ETCD_KEYS "/argot/services/"
#define MOVE_EPOCHS "150" /* the job: long enough (several seconds) to move under */

/* Starts etcd on this thread's network's 127.0.0.1 (free ports, a data
 * directory in the test's) and waits until it answers. */
static void etcd_start(void)
{
    ag_test_etcd_init(&E.etcd_proc, "etcd");
    ag_test_etcd_start(&E.etcd_proc);
    snprintf(E.etcd, sizeof(E.etcd), "%s", E.etcd_proc.target);
}

/* etcd's KV.Put of ETCD_KEYS + key. */
static void kv_put(const char *key, const char *value)
{
    char full[256];
    snprintf(full, sizeof(full), ETCD_KEYS "%s", key);
    ag_test_etcd_put(&E.etcd_proc, full, value);
}

/* Replaces the one occurrence of from in text (a NUL-terminated string in
 * cap bytes) by to; fails if from is not there exactly once. */
static void replace_once(char *text, size_t cap, const char *from, const char *to)
{
    char *p = strstr(text, from);
    if (!p || strstr(p + 1, from))
        FAIL("'%s' is not in the gateway config exactly once:\n%s", from, text);
    size_t fl = strlen(from), tl = strlen(to), rest = strlen(p + fl);
    CHECK(strlen(text) - fl + tl < cap);
    memmove(p + tl, p + fl, rest + 1);
    memcpy(p, to, tl);
}

/* Writes the config of bob's gateway i (0, 1) found through etcd: his
 * gateway's (on host:port), on another port of his host, with a grace of
 * 2 s and an access log of its own. Its address in pub (80 bytes), the
 * file in cfg (600 bytes); its stderr will be E.pub_err[i]. */
static void pub_config(int i, const char *host, int port, char *pub, char *cfg)
{
    /* in bob's namespace, the next ports are free */
    int pport = E.netns ? port + 1 + i : ag_test_free_port();
    snprintf(pub, 80, "%s:%d", host, pport);
    char text[8400], from[64], to[64], file[64];
    snprintf(text, sizeof(text), "shutdown_grace: 2s\n%s", ag_test_read_file(E.mesh[1]));
    snprintf(from, sizeof(from), "        port: %d\n", port);
    snprintf(to, sizeof(to), "        port: %d\n", pport);
    replace_once(text, sizeof(text), from, to);
    snprintf(to, sizeof(to), "access-bob-%d.log", i + 1);
    replace_once(text, sizeof(text), "access-bob.log", to);
    snprintf(file, sizeof(file), "gw-bob-%d.yaml", i + 1);
    snprintf(cfg, 600, "%s", ag_test_write_file(file, text, strlen(text)));
    snprintf(file, sizeof(file), "gw-bob-%d.err", i + 1);
    snprintf(E.pub_err[i], sizeof(E.pub_err[i]), "%s", ag_test_path(file));
}

/* Rewrites alice's gateway config (argot mesh init's, bob's gateway on
 * host:port) to find bob's gateway through etcd: the etcd namer, the
 * dentry /svc/bob => /#/etcd/bob-gw, and the client TLS item for that
 * bound name (bob's certificate checked there). */
static void alice_via_etcd(const char *host, int port)
{
    char text[8192], from[128], to[160];
    snprintf(text, sizeof(text), "%s", ag_test_read_file(E.mesh[0]));
    snprintf(from, sizeof(from), "/svc/bob => /$/inet/%s/%d;", host, port);
    replace_once(text, sizeof(text), from, "/svc/bob => /#/etcd/bob-gw;");
    snprintf(from, sizeof(from), "- prefix: /$/inet/%s/%d\n", host, port);
    replace_once(text, sizeof(text), from, "- prefix: /#/etcd/bob-gw\n");
    snprintf(to, sizeof(to),
             "namers:\n  - {kind: etcd, endpoints: [\"%s\"], keyPrefix: /argot/services}\n"
             "routers:\n",
             E.etcd);
    replace_once(text, sizeof(text), "routers:\n", to);
    FILE *fp = fopen(E.mesh[0], "w");
    CHECK(fp != NULL);
    CHECK(fputs(text, fp) >= 0);
    CHECK_EQ(fclose(fp), 0);
}

/* The addresses of the endpoints of cluster id in the parties router of
 * the gateway whose admin port is admin (admin/state.json, from this
 * thread's network), comma-separated in out ("" if there is no such
 * cluster). */
static void cluster_endpoints(int admin, const char *id, char *out, size_t cap)
{
    char *resp = ag_test_http(admin, "GET", "/admin/state.json", NULL);
    CHECK(resp != NULL);
    const char *body = strstr(resp, "\r\n\r\n");
    CHECK(body != NULL);
    json_error_t e;
    json_t *st = json_loads(body + 4, 0, &e);
    if (!st)
        FAIL("state.json: not JSON (%s at %d): %.300s", e.text, e.position, body + 4);
    free(resp);
    out[0] = '\0';
    size_t n = 0, i, j, k;
    json_t *r, *c, *ep;
    json_array_foreach(json_object_get(st, "routers"), i, r)
    {
        const char *label = json_string_value(json_object_get(r, "label"));
        if (!label || strcmp(label, "parties") != 0)
            continue;
        json_array_foreach(json_object_get(r, "clusters"), j, c)
        {
            const char *cid = json_string_value(json_object_get(c, "id"));
            if (!cid || strcmp(cid, id) != 0)
                continue;
            json_array_foreach(json_object_get(c, "endpoints"), k, ep)
            {
                const char *a = json_string_value(json_object_get(ep, "addr"));
                if (a && n + strlen(a) + 2 < cap)
                    n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", a);
            }
        }
    }
    json_decref(st);
}

/* Polls alice's gateway until cluster /#/etcd/bob-gw has exactly the
 * endpoint addr, within ms. */
static void wait_bob_endpoint(const char *addr, uint64_t ms)
{
    char eps[512];
    uint64_t end = ag_now_ms() + ms;
    for (;;) {
        cluster_endpoints(E.admin[0], "/#/etcd/bob-gw", eps, sizeof(eps));
        if (strcmp(eps, addr) == 0)
            return;
        if (ag_now_ms() > end)
            FAIL("alice's gateway: /#/etcd/bob-gw has endpoints '%s', want '%s' within %llu ms",
                 eps, addr, (unsigned long long)ms);
        ag_sleep_ms(20);
    }
}

/* SIGTERM to bob's gateway i found through etcd; it must drain (its
 * shutdown_grace), exit 0 within 30 s, the sanitizers silent. */
static void pub_stop(int i)
{
    CHECK_EQ(kill(E.pub_pid[i], SIGTERM), 0);
    int st = ag_test_wait(E.pub_pid[i], 30);
    close(E.pub_fd[i]);
    E.pub_pid[i] = 0;
    const char *log = ag_test_read_file(E.pub_err[i]);
    if (st != 0 || strstr(log, "Sanitizer") || strstr(log, "runtime error:"))
        FAIL("bob's gateway %d exited with %d: %s", i + 1, st, log);
}

/* The LR job of fed_gateway_psi_and_lr_match_direct_links, longer: the
 * arguments after `--party P` for party k, model file out (17 with the
 * NULL). A peer's message awaited for 20 s (not LR's 600) fails the job,
 * so a link that does not come back fails the test, not its timeout. */
static void move_lr_args(int k, const char *out, const char **argv)
{
    static char data[2][600];
    char f[32];
    snprintf(f, sizeof(f), "%c_train.csv", names[k][0]);
    snprintf(data[k], sizeof(data[k]), "%s", ag_test_path(f));
    const char *a[] = {"--in", data[k], "--key", "id", "--label", "bob:y", "--model-out", out,
                       "--epochs", MOVE_EPOCHS, "--batch-size", "20", "--reveal-to", "bob",
                       "--timeout", "20", NULL};
    for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
        argv[i] = a[i];
}

/*
 * alice's gateway finds bob's through etcd (`/svc/bob => /#/etcd/bob-gw`,
 * the key /argot/services/bob-gw/1), and bob's gateway moves to another
 * port mid-job: a second one is started on the new port, the key is
 * updated, the first one gets SIGTERM. The stream alice -> bob breaks when
 * the first one's grace is over; alice's link opens it again (resending
 * what was not acknowledged), alice's gateway takes it to the new port (the
 * binding followed the key), and the job ends with the weights of the same
 * job over direct links.
 *
 * Which gateway moves: bob's own link sends through the gateway at the
 * address of its cluster config (E.gw[1]), which a running job cannot
 * change, so that one (started by env_up's way) stays; the gateway peers
 * reach bob through, found through etcd, is another process of the same
 * config on another port: the first on port +1, the second on +2. With
 * nothing left on the first's port after it exits, the job can end only if
 * alice's gateway followed etcd. etcd runs in alice's host on its
 * 127.0.0.1 (her gateway is the only one that looks bob up; this thread
 * enters her namespace to write the keys and read her admin page).
 */
TEST_TIMEOUT(fed_gateway_etcd_follows_a_moving_gateway, 180)
{
    if (access(AG_TEST_ETCD_BIN, X_OK) != 0) {
        printf("skipped: %s is missing (apt-get install etcd-server)\n", AG_TEST_ETCD_BIN);
        return;
    }
    env_configs(true);
    ag_test_proc p;
    const char *split[] = {"/usr/bin/python3", "tests/integration/peers/lr_ref.py", "split",
                           ag_test_tmpdir(), NULL};
    if (ag_test_run(&p, split, NULL, 60) != 0)
        FAIL("lr_ref.py split: %s", p.err);
    ag_test_proc_cleanup(&p);

    /* the job over direct links, for its result */
    char model[2][2][600];
    for (int gw = 0; gw < 2; gw++)
        for (int k = 0; k < 2; k++) {
            char f[32];
            snprintf(f, sizeof(f), "%s-%s.model", names[k], gw ? "moved" : "direct");
            snprintf(model[gw][k], sizeof(model[gw][k]), "%s", ag_test_path(f));
        }
    static char o0[16384], o1[16384];
    char *outs[2] = {o0, o1};
    const char *lr[] = {ag_test_bin("argot"), "lr", "train", NULL};
    const char *la[20], *lb[20];
    move_lr_args(0, model[0][0], la);
    move_lr_args(1, model[0][1], lb);
    const char *const *args[2] = {la, lb};
    run_job(false, lr, args, outs, sizeof(o0));
    CHECK_CONTAINS(o0, "epoch " MOVE_EPOCHS "/" MOVE_EPOCHS ": loss ");

    /* etcd, and bob's first gateway registered there */
    enter_ns(0);
    etcd_start();
    char host[64], pub[2][80], pubcfg[2][600];
    snprintf(host, sizeof(host), "%s", E.gw[1]);
    *strrchr(host, ':') = '\0';
    int port = atoi(strrchr(E.gw[1], ':') + 1), admin;
    for (int i = 0; i < 2; i++)
        pub_config(i, host, port, pub[i], pubcfg[i]);
    gw_start(1, pubcfg[0], E.pub_err[0], pub[0], &E.pub_pid[0], &E.pub_fd[0], &admin);
    kv_put("bob-gw/1", pub[0]);
    alice_via_etcd(host, port);
    mesh_start(0);
    mesh_start(1);

    /* the job, through the gateways */
    int fd[2];
    char err[2][600];
    for (int k = 0; k < 2; k++) {
        char f[32];
        snprintf(f, sizeof(f), "%s-moved.err", names[k]);
        snprintf(err[k], sizeof(err[k]), "%s", ag_test_path(f));
        const char *argv[32] = {ag_test_bin("argot"), "lr", "train", "--config", E.cfg[k],
                                "--party", names[k]};
        move_lr_args(k, model[1][k], argv + 7);
        E.job_pid[k] = spawn_in(k, err[k], argv, &fd[k]);
    }
    char line[1024];
    bool started = false;
    while (!started && ag_test_read_line(fd[0], line, sizeof(line), 120) >= 0)
        started = strstr(line, "epoch 2/") != NULL;
    if (!started)
        FAIL("the job did not start: %s %s", ag_test_read_file(err[0]),
             ag_test_read_file(err[1]));
    wait_bob_endpoint(pub[0], 0);

    /* the move: the second gateway up, the key updated (alice's gateway
     * follows within a second), the first one stopped */
    gw_start(1, pubcfg[1], E.pub_err[1], pub[1], &E.pub_pid[1], &E.pub_fd[1], &admin);
    kv_put("bob-gw/1", pub[1]);
    wait_bob_endpoint(pub[1], 1000);
    pub_stop(0);
    int status;
    if (waitpid(E.job_pid[0], &status, WNOHANG) != 0)
        FAIL("the job ended before the first gateway was gone: too short to test the move");
    printf("bob's gateway moved from %s to %s mid-job\n", pub[0], pub[1]);

    bool over = false;
    while (ag_test_read_line(fd[0], line, sizeof(line), 120) >= 0)
        if (strstr(line, "epoch " MOVE_EPOCHS "/" MOVE_EPOCHS ": loss "))
            over = true;
    while (ag_test_read_line(fd[1], line, sizeof(line), 120) >= 0) {
    }
    close(fd[0]);
    close(fd[1]);
    int s0 = ag_test_wait(E.job_pid[0], 60), s1 = ag_test_wait(E.job_pid[1], 60);
    E.job_pid[0] = E.job_pid[1] = 0;
    if (s0 != 0 || s1 != 0 || !over)
        FAIL("the job failed across the move: alice %d (%s), bob %d (%s)", s0,
             ag_test_read_file(err[0]), s1, ag_test_read_file(err[1]));

    /* alice's gateway names the new endpoint only; alice's stream to bob
     * went to the first gateway, then (reopened) through the second to the
     * job's end */
    wait_bob_endpoint(pub[1], 0);
    char want[160];
    snprintf(want, sizeof(want), "/argot.link.v1.Link/Push /svc/bob %s 200 ", pub[1]);
    CHECK_CONTAINS(ag_test_read_file(ag_test_path("access-alice.log")), want);
    for (int i = 0; i < 2; i++) {
        char f[32];
        int ok, broken;
        snprintf(f, sizeof(f), "access-bob-%d.log", i + 1);
        if (pushes_logged(ag_test_path(f), &ok, &broken) < 1)
            FAIL("no link stream went through bob's gateway %d", i + 1);
    }

    /* the same weights as over direct links */
    double w[2][64];
    size_t nw = weights(ag_test_read_file(model[0][1]), w[0], 64);
    CHECK_EQ(nw, weights(ag_test_read_file(model[1][1]), w[1], 64));
    CHECK(nw == 31);
    for (size_t i = 0; i < nw; i++)
        if (fabs(w[0][i] - w[1][i]) > 1e-3)
            FAIL("weight %zu: %.6f direct, %.6f across the move", i, w[0][i], w[1][i]);
    pub_stop(1);
    env_down();
}
