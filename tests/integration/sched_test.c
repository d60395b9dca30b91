/*
 * sched end to end: `argot rm`, two `argot nm` processes on loopback, and
 * the distributed shell (`argot app submit --wait -- COMMAND`) through them:
 * every container runs the command with its environment, a failing
 * command fails the application with a diagnostic, a retried container
 * runs again, `argot nodes` and `argot app status|kill` tell the truth.
 */
#include <signal.h>
#include <unistd.h>

#include "daemons.h"
#include "test.h"

struct cluster {
    pid_t rm, nm[2];
    char rm_addr[64];
};

static void cluster_start(struct cluster *c, const char *rm_extra)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "address: \"127.0.0.1:0\"\n"
             "state: {sqlite: rm.db}\n"
             "liveness: {nm_expiry_ms: 600000, am_expiry_ms: 600000}\n"
             "log: {level: warn}\n%s",
             rm_extra ? rm_extra : "");
    char path[512];
    snprintf(path, sizeof(path), "%s", ag_test_write_file("rm.yaml", yaml, strlen(yaml)));
    const char *argv[] = {ag_test_bin("argot"), "rm", "--config", path, NULL};
    int fd;
    c->rm = ag_test_spawn(argv, &fd);
    ag_test_read_listening(fd, "rm", c->rm_addr, sizeof(c->rm_addr));
    close(fd);
    for (int i = 0; i < 2; i++)
        c->nm[i] = ag_test_nm_start(i, c->rm_addr, 4096, 4, NULL);
    ag_test_nodes_wait(c->rm_addr, 2, NULL); /* both nodes registered */
}

static void cluster_stop(struct cluster *c)
{
    for (int i = 0; i < 2; i++)
        CHECK_EQ(ag_test_stop(c->nm[i]), 0);
    CHECK_EQ(ag_test_stop(c->rm), 0);
}

static int submit(struct cluster *c, ag_test_proc *p, const char *n, const char *attempts,
                  const char *cmd)
{
    const char *argv[] = {ag_test_bin("argot"), "app", "submit", "--rm", c->rm_addr,
                          "--name", "itest", "--containers", n, "--memory", "512",
                          "--vcores", "1", "--max-attempts", attempts, "--wait", "--",
                          "/bin/sh", "-c", cmd, NULL};
    return ag_test_run(p, argv, NULL, 120);
}

TEST_TIMEOUT(sched_distributed_shell_runs_everywhere_and_reports, 240)
{
    struct cluster c;
    cluster_start(&c, NULL);
    /* every container: its own environment, a marker file per container */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "test -n \"$ARGOT_CONTAINER_ID\" && test -n \"$ARGOT_APP_ID\" && "
             "test -n \"$ARGOT_NM_HOST\" && echo \"$ARGOT_APP_ID $ARGOT_NM_HOST\" > "
             "%s/ran.$ARGOT_CONTAINER_ID",
             ag_test_tmpdir());
    ag_test_proc p;
    if (submit(&c, &p, "5", "1", cmd) != 0)
        FAIL("submit: exit %d\nout: %s\nerr: %s", p.status, p.out, p.err);
    CHECK_CONTAINS(p.out, "application_");
    CHECK_CONTAINS(p.out, "FINISHED: SUCCEEDED");
    ag_test_proc_cleanup(&p);
    char ls[600];
    snprintf(ls, sizeof(ls), "ls %s | grep -c '^ran\\.container_'", ag_test_tmpdir());
    const char *argv_ls[] = {"/bin/sh", "-c", ls, NULL};
    CHECK_EQ(ag_test_run(&p, argv_ls, NULL, 30), 0);
    CHECK_STR_EQ(p.out, "5\n");
    ag_test_proc_cleanup(&p);

    /* a command that fails: the application fails, saying which container */
    CHECK_EQ(submit(&c, &p, "2", "1", "exit 3"), 1);
    CHECK_CONTAINS(p.err, "FAILED");
    CHECK_CONTAINS(p.err, "exited 3");
    ag_test_proc_cleanup(&p);

    /* a container that fails once succeeds on its retry, on the other node
     * (the nodes are 127.0.0.1 and 127.0.0.2) */
    snprintf(cmd, sizeof(cmd),
             "f=%s/once; if [ -e $f ]; then echo $ARGOT_NM_HOST >> $f.where; exit 0; "
             "else echo $ARGOT_NM_HOST > $f; exit 7; fi",
             ag_test_tmpdir());
    CHECK_EQ(submit(&c, &p, "1", "2", cmd), 0);
    CHECK_CONTAINS(p.out, "FINISHED: SUCCEEDED");
    ag_test_proc_cleanup(&p);
    char first_host[300], second_host[300];
    snprintf(first_host, sizeof(first_host), "%s/once", ag_test_tmpdir());
    snprintf(second_host, sizeof(second_host), "%s/once.where", ag_test_tmpdir());
    char a1[128], a2[128];
    snprintf(a1, sizeof(a1), "%s", ag_test_read_file(first_host));
    snprintf(a2, sizeof(a2), "%s", ag_test_read_file(second_host));
    CHECK(strncmp(a1, a2, strcspn(a1, ":")) != 0); /* another host */

    /* status and kill of a running application */
    const char *argv_bg[] = {ag_test_bin("argot"), "app", "submit", "--rm", c.rm_addr,
                             "--name", "sleeper", "--containers", "2", "--", "/bin/sleep",
                             "300", NULL};
    CHECK_EQ(ag_test_run(&p, argv_bg, NULL, 60), 0);
    char app[128];
    snprintf(app, sizeof(app), "%.*s", (int)strcspn(p.out, "\n"), p.out);
    ag_test_proc_cleanup(&p);
    const char *argv_st[] = {ag_test_bin("argot"), "app", "status", "--rm", c.rm_addr, app,
                             NULL};
    CHECK_EQ(ag_test_run(&p, argv_st, NULL, 30), 0);
    CHECK_CONTAINS(p.out, "name sleeper");
    ag_test_proc_cleanup(&p);
    const char *argv_kill[] = {ag_test_bin("argot"), "app", "kill", "--rm", c.rm_addr, app,
                               NULL};
    CHECK_EQ(ag_test_run(&p, argv_kill, NULL, 30), 0);
    ag_test_proc_cleanup(&p);
    for (int tries = 0;; tries++) {
        CHECK_EQ(ag_test_run(&p, argv_st, NULL, 30), 0);
        bool killed = strstr(p.out, "state KILLED") != NULL;
        ag_test_proc_cleanup(&p);
        if (killed)
            break;
        if (tries > 100)
            FAIL("the application was not killed");
        ag_sleep_ms(100);
    }
    /* unknown application, malformed id */
    const char *argv_unknown[] = {ag_test_bin("argot"), "app", "status", "--rm", c.rm_addr,
                                  "application_1_9999", NULL};
    CHECK_EQ(ag_test_run(&p, argv_unknown, NULL, 30), 1);
    CHECK_CONTAINS(p.err, "NOT_FOUND");
    ag_test_proc_cleanup(&p);
    const char *argv_bad[] = {ag_test_bin("argot"), "app", "status", "--rm", c.rm_addr,
                              "app_1", NULL};
    CHECK_EQ(ag_test_run(&p, argv_bad, NULL, 30), 2);
    ag_test_proc_cleanup(&p);
    cluster_stop(&c);
}

/* The master keys roll every 3 s while a distributed shell runs for about
 * 7 s (6 containers of 2 GB, 3 at a time beside the AM, 3 s each): the NMs
 * learn each new key before it signs, the AM follows its AMRM token and NM
 * tokens through the rolls, and every container starts and succeeds. */
TEST_TIMEOUT(sched_distributed_shell_across_key_rolls, 240)
{
    struct cluster c;
    cluster_start(&c, "heartbeat_interval: 100ms\ntokens: {roll_interval_ms: 3000}\n");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "sleep 3; touch %s/rolled.$ARGOT_CONTAINER_ID", ag_test_tmpdir());
    const char *argv[] = {ag_test_bin("argot"),
                          "app",
                          "submit",
                          "--rm",
                          c.rm_addr,
                          "--name",
                          "rolls",
                          "--containers",
                          "6",
                          "--memory",
                          "2048",
                          "--wait",
                          "--",
                          "/bin/sh",
                          "-c",
                          cmd,
                          NULL};
    ag_test_proc p;
    if (ag_test_run(&p, argv, NULL, 120) != 0)
        FAIL("submit: exit %d\nout: %s\nerr: %s", p.status, p.out, p.err);
    CHECK_CONTAINS(p.out, "FINISHED: SUCCEEDED");
    ag_test_proc_cleanup(&p);
    char ls[600];
    snprintf(ls, sizeof(ls), "ls %s | grep -c '^rolled\\.container_'", ag_test_tmpdir());
    const char *argv_ls[] = {"/bin/sh", "-c", ls, NULL};
    CHECK_EQ(ag_test_run(&p, argv_ls, NULL, 30), 0);
    CHECK_STR_EQ(p.out, "6\n");
    ag_test_proc_cleanup(&p);
    cluster_stop(&c);
}
