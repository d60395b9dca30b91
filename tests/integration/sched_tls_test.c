/*
 * sched over mutual TLS end to end: a CA made with `argot ca init`, a
 * certificate per daemon and one for the user (`argot ca issue`), `argot rm`
 * and two `argot nm` configured with `tls: {cert, key, ca}`, and the
 * distributed shell submitted with --tls-cert/--tls-key/--tls-ca: the RM
 * starts the AM on an NM over TLS, the AM (which gets the files as
 * arguments) talks to the RM and starts its containers on the NMs over
 * TLS, and the application succeeds. Without a client certificate, or
 * with one another CA issued, the RM answers nobody: `argot nodes` fails
 * and an NM holding such a certificate never registers, nor does one whose
 * certificate tls.nodes does not list. Config and flag mistakes are
 * named.
 */
#include <signal.h>
#include <unistd.h>

#include "daemons.h"
#include "test.h"

/* Runs argot with args; fails the test unless it exits with want. */
static void argot_ok(const char *const *args, int want)
{
    const char *argv[16] = {ag_test_bin("argot")};
    size_t n = 1;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    ag_test_proc p;
    int st = ag_test_run(&p, argv, NULL, 60);
    if (st != want)
        FAIL("argot %s %s: exit %d, want %d: %s", args[0], args[1] ? args[1] : "", st, want, p.err);
    ag_test_proc_cleanup(&p);
}

/* The CA in DIR/pki (ca.crt), and certificates rm, nm0 (127.0.0.1), nm1
 * (127.0.0.2), alice (the user), and mallory from another CA (DIR/pki2). */
static void make_pki(char *dir, size_t cap)
{
    char other[600];
    snprintf(dir, cap, "%s/pki", ag_test_tmpdir());
    snprintf(other, sizeof(other), "%s/pki2", ag_test_tmpdir());
    argot_ok((const char *[]){"ca", "init", "--dir", dir, NULL}, 0);
    argot_ok((const char *[]){"ca", "issue", "--dir", dir, "rm", "--san", "IP:127.0.0.1", NULL}, 0);
    argot_ok((const char *[]){"ca", "issue", "--dir", dir, "nm0", "--san", "IP:127.0.0.1", NULL},
             0);
    argot_ok((const char *[]){"ca", "issue", "--dir", dir, "nm1", "--san", "IP:127.0.0.2", NULL},
             0);
    argot_ok((const char *[]){"ca", "issue", "--dir", dir, "alice", NULL}, 0);
    argot_ok((const char *[]){"ca", "init", "--dir", other, "--name", "other CA", NULL}, 0);
    argot_ok((const char *[]){"ca", "issue", "--dir", other, "mallory", "--san",
                              "IP:127.0.0.1,IP:127.0.0.3", NULL},
             0);
}

/* Starts `argot nm` number i (127.0.0.<i+1>) with the certificate who.crt
 * of pki; returns its pid. */
static pid_t nm_start(int i, const char *rm_addr, const char *pki, const char *who)
{
    char tls[2048];
    snprintf(tls, sizeof(tls), "tls: {cert: %s/%s.crt, key: %s/%s.key, ca: %s/ca.crt}\n", pki,
             who, pki, who, pki);
    return ag_test_nm_start(i, rm_addr, 4096, 4, tls);
}

/* The count of RUNNING nodes `argot nodes` lists (with alice's files). */
static int running_nodes(const char *rm, const char *pki)
{
    char cert[600], key[600], ca[600];
    snprintf(cert, sizeof(cert), "%s/alice.crt", pki);
    snprintf(key, sizeof(key), "%s/alice.key", pki);
    snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
    const char *argv[] = {ag_test_bin("argot"), "nodes", "--rm",     rm, "--tls-cert", cert,
                          "--tls-key",          key,     "--tls-ca", ca, NULL};
    ag_test_proc p;
    if (ag_test_run(&p, argv, NULL, 30) != 0)
        FAIL("argot nodes over TLS: %s", p.err);
    int running = 0;
    for (const char *s = p.out; (s = strstr(s, " RUNNING ")); s++)
        running++;
    ag_test_proc_cleanup(&p);
    return running;
}

TEST_TIMEOUT(sched_over_mutual_tls, 240)
{
    char pki[512], other[600], yaml[2048], rm_addr[64];
    make_pki(pki, sizeof(pki));
    snprintf(other, sizeof(other), "%s/pki2", ag_test_tmpdir());
    snprintf(yaml, sizeof(yaml),
             "address: \"127.0.0.1:0\"\n"
             "log: {level: warn}\n"
             "tls: {cert: pki/rm.crt, key: pki/rm.key, ca: pki/ca.crt, nodes: [nm0, nm1]}\n");
    char path[512];
    snprintf(path, sizeof(path), "%s", ag_test_write_file("rm.yaml", yaml, strlen(yaml)));
    const char *argv[] = {ag_test_bin("argot"), "rm", "--config", path, NULL};
    int fd;
    pid_t rm = ag_test_spawn(argv, &fd);
    ag_test_read_listening(fd, "rm", rm_addr, sizeof(rm_addr));
    close(fd);
    pid_t nm[2] = {nm_start(0, rm_addr, pki, "nm0"), nm_start(1, rm_addr, pki, "nm1")};
    for (int tries = 0; running_nodes(rm_addr, pki) != 2; tries++) {
        if (tries > 100)
            FAIL("the node managers did not register over TLS");
        ag_sleep_ms(100);
    }

    /* the distributed shell, every hop over mutual TLS */
    char cert[600], key[600], ca[600], cmd[1024];
    snprintf(cert, sizeof(cert), "%s/alice.crt", pki);
    snprintf(key, sizeof(key), "%s/alice.key", pki);
    snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
    snprintf(cmd, sizeof(cmd), "touch %s/ran.$ARGOT_CONTAINER_ID", ag_test_tmpdir());
    const char *submit[] = {ag_test_bin("argot"),
                            "app",
                            "submit",
                            "--rm",
                            rm_addr,
                            "--name",
                            "tls",
                            "--containers",
                            "3",
                            "--memory",
                            "512",
                            "--tls-cert",
                            cert,
                            "--tls-key",
                            key,
                            "--tls-ca",
                            ca,
                            "--wait",
                            "--",
                            "/bin/sh",
                            "-c",
                            cmd,
                            NULL};
    ag_test_proc p;
    if (ag_test_run(&p, submit, NULL, 120) != 0)
        FAIL("submit over TLS: exit %d\nout: %s\nerr: %s", p.status, p.out, p.err);
    CHECK_CONTAINS(p.out, "FINISHED: SUCCEEDED");
    ag_test_proc_cleanup(&p);
    char ls[700];
    snprintf(ls, sizeof(ls), "ls %s | grep -c '^ran\\.container_'", ag_test_tmpdir());
    const char *argv_ls[] = {"/bin/sh", "-c", ls, NULL};
    CHECK_EQ(ag_test_run(&p, argv_ls, NULL, 30), 0);
    CHECK_STR_EQ(p.out, "3\n");
    ag_test_proc_cleanup(&p);

    /* no client certificate: the RM answers nobody */
    const char *plain[] = {ag_test_bin("argot"), "nodes", "--rm", rm_addr, "--tls-ca", ca, NULL};
    CHECK_EQ(ag_test_run(&p, plain, NULL, 30), 1);
    CHECK_CONTAINS(p.err, "UNAVAILABLE");
    ag_test_proc_cleanup(&p);
    /* no TLS at all */
    const char *none[] = {ag_test_bin("argot"), "nodes", "--rm", rm_addr, NULL};
    CHECK_EQ(ag_test_run(&p, none, NULL, 30), 1);
    ag_test_proc_cleanup(&p);
    /* a certificate another CA issued */
    char mcert[700], mkey[700];
    snprintf(mcert, sizeof(mcert), "%s/mallory.crt", other);
    snprintf(mkey, sizeof(mkey), "%s/mallory.key", other);
    const char *mallory[] = {ag_test_bin("argot"), "nodes", "--rm",      rm_addr,
                             "--tls-cert",         mcert,   "--tls-key", mkey,
                             "--tls-ca",           ca,      NULL};
    CHECK_EQ(ag_test_run(&p, mallory, NULL, 30), 1);
    ag_test_proc_cleanup(&p);
    /* ...nor does an NM holding one get to register, nor one holding a
     * certificate of the right CA that tls.nodes does not list */
    pid_t bad = nm_start(2, rm_addr, other, "mallory");
    pid_t user = nm_start(3, rm_addr, pki, "alice");
    ag_sleep_ms(1500);
    CHECK_EQ(running_nodes(rm_addr, pki), 2);
    CHECK_EQ(ag_test_stop(bad), 0);
    CHECK_EQ(ag_test_stop(user), 0);

    /* flags that do not go together, files that are not there */
    const char *half[] = {ag_test_bin("argot"), "nodes", "--rm", rm_addr, "--tls-key", key, NULL};
    CHECK_EQ(ag_test_run(&p, half, NULL, 30), 2);
    CHECK_CONTAINS(p.err, "--tls-cert and --tls-key go together");
    ag_test_proc_cleanup(&p);
    const char *missing[] = {
        ag_test_bin("argot"), "app", "status", "--rm", rm_addr, "--tls-ca", "/nonexistent/ca.crt",
        "application_1_0001", NULL};
    CHECK_EQ(ag_test_run(&p, missing, NULL, 30), 2);
    CHECK_CONTAINS(p.err, "--tls-ca /nonexistent/ca.crt: cannot read it");
    ag_test_proc_cleanup(&p);

    for (int i = 0; i < 2; i++)
        CHECK_EQ(ag_test_stop(nm[i]), 0);
    CHECK_EQ(ag_test_stop(rm), 0);
}

/* tls config mistakes are named with their place; the daemons exit 1. */
TEST_TIMEOUT(sched_tls_config_errors_name_the_place, 60)
{
    static const struct {
        const char *what; /* "rm" or "nm" */
        const char *yaml;
        const char *want;
    } cases[] = {
        {"rm", "address: \"127.0.0.1:0\"\ntls: {cert: a.crt}\n", "missing required key 'key'"},
        {"rm", "address: \"127.0.0.1:0\"\ntls: {cert: nothere.crt, key: nothere.key}\n",
         "rm.yaml:2:13: tls.cert: cannot read "},
        {"rm", "address: \"127.0.0.1:0\"\ntls: {cert: a.crt, key: a.key, cafile: x}\n",
         "unknown key 'cafile'"},
        {"rm", "liveness: {container_alloc_expiry_ms: 5}\n", "rm.yaml:1:"},
        {"rm", "tls: {cert: a.crt, key: a.key, nodes: [nm0]}\n",
         "rm.yaml:1:39: tls.nodes needs tls.ca"},
        {"rm", "tokens: {roll_interval: 5}\n", "unknown key 'roll_interval'"},
        {"rm", "tokens: {roll_interval_ms: 5000}\n",
         "rm.yaml:1:28: tokens.roll_interval_ms 5000 is under 12 heartbeat intervals (12000 ms)"},
        {"nm",
         "rm: \"127.0.0.1:8030\"\nresources: {memory_mb: 1024, vcores: 1}\nwork_dir: w\n"
         "tls: {cert: nothere.crt, key: nothere.key, ca: nothere.crt}\n",
         "nm.yaml:4:13: tls.cert: cannot read "},
    };
    ag_test_write_file("a.crt", "x", 1);
    ag_test_write_file("a.key", "x", 1);
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        char name[16], path[512];
        snprintf(name, sizeof(name), "%s.yaml", cases[i].what);
        snprintf(path, sizeof(path), "%s",
                 ag_test_write_file(name, cases[i].yaml, strlen(cases[i].yaml)));
        const char *argv[] = {ag_test_bin("argot"), cases[i].what, "--config", path, NULL};
        ag_test_proc p;
        int st = ag_test_run(&p, argv, NULL, 30);
        if (st != 1)
            FAIL("case %zu: exit %d, want 1: %s", i, st, p.err);
        CHECK_CONTAINS(p.err, cases[i].want);
        ag_test_proc_cleanup(&p);
    }
}
