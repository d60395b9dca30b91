/*
 * The RM's high availability end to end: a real etcd (Debian's
 * etcd-server) on loopback, two `argot rm` with the same `ha:` (one
 * elected active, the other standing by), two `argot nm` and the
 * distributed shell given both RMs' addresses.
 *   - failover: the active RM is SIGKILLed while 20 containers run; the
 *     standby takes over (its "rm listening on" line), the application
 *     finishes SUCCEEDED, every container ran exactly once;
 *   - fencing: the active RM is paused (SIGSTOP) past its lease; the
 *     standby takes over; the old one, resumed, answers nothing and exits
 *     with "lost the lead";
 *   - config: ha with state, a bad lease, an endpoint that is no address.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd.h"
#include "daemons.h"
#include "test.h"

static ag_test_etcd E;

/* "rm listening on HOST:PORT" (or, with want_standby, first "rm standby
 * ...") from the RM's stdout. */
static void expect_line(int fd, const char *prefix, unsigned timeout_s, char *rest, size_t cap)
{
    char line[512];
    for (;;) {
        if (ag_test_read_line(fd, line, sizeof(line), timeout_s) < 0)
            FAIL("no line starting '%s' within %u s", prefix, timeout_s);
        if (strncmp(line, prefix, strlen(prefix)) == 0)
            break;
    }
    if (rest)
        snprintf(rest, cap, "%s", line + strlen(prefix));
}

static const char *rm_config(const char *name, const char *addr, const char *lease)
{
    char yaml[1024], file[64];
    snprintf(yaml, sizeof(yaml),
             "address: \"%s\"\n"
             "ha: {etcd: [\"%s\"], prefix: /argot/test/rm, id: %s, lease: %s}\n"
             "liveness: {nm_expiry_ms: 600000, am_expiry_ms: 600000}\n"
             "log: {level: warn}\n",
             addr, E.target, name, lease);
    snprintf(file, sizeof(file), "%s.yaml", name);
    return ag_test_write_file(file, yaml, strlen(yaml));
}

static pid_t rm_spawn(const char *config, int *fd)
{
    const char *argv[] = {ag_test_bin("argot"), "rm", "--config", config, NULL};
    return ag_test_spawn(argv, fd);
}

/* Two RMs on fixed ports: the first elected, the second standing by. */
struct pair {
    char addr[2][64];
    char list[160];
    pid_t pid[2];
    int fd[2];
};

static void pair_start(struct pair *p, const char *lease)
{
    for (int i = 0; i < 2; i++)
        snprintf(p->addr[i], sizeof(p->addr[i]), "127.0.0.1:%d", ag_test_free_port());
    snprintf(p->list, sizeof(p->list), "%s,%s", p->addr[0], p->addr[1]);
    char got[128];
    p->pid[0] = rm_spawn(rm_config("rm1", p->addr[0], lease), &p->fd[0]);
    expect_line(p->fd[0], "rm listening on ", 30, got, sizeof(got));
    CHECK_STR_EQ(got, p->addr[0]);
    p->pid[1] = rm_spawn(rm_config("rm2", p->addr[1], lease), &p->fd[1]);
    expect_line(p->fd[1], "rm standby id=rm2", 30, NULL, 0);
}

/* A distributed shell of 20 containers over both RMs; the active one is
 * SIGKILLed while they run. */
TEST_TIMEOUT(sched_ha_failover_keeps_distributed_shell, 240)
{
    ag_test_etcd_init(&E, "etcd");
    ag_test_etcd_start(&E);
    struct pair p;
    pair_start(&p, "2s");
    pid_t nm[2] = {ag_test_nm_start(0, p.list, 4096, 6, NULL), ag_test_nm_start(1, p.list, 4096, 6, NULL)};

    char cmd[1024];
    const char *dir = ag_test_tmpdir();
    snprintf(cmd, sizeof(cmd),
             "touch %s/started.$ARGOT_CONTAINER_ID; sleep 1.5; "
             "touch %s/marker.$ARGOT_CONTAINER_ID; echo $ARGOT_CONTAINER_ID >> %s/runs",
             dir, dir, dir);
    const char *argv[] = {ag_test_bin("argot"), "app", "submit", "--rm", p.list, "--name", "ha",
                          "--containers", "20", "--memory", "256", "--vcores", "1",
                          "--max-attempts", "1", "--wait", "--", "/bin/sh", "-c", cmd, NULL};
    int out;
    pid_t submit = ag_test_spawn(argv, &out);
    char app[128];
    if (ag_test_read_line(out, app, sizeof(app), 60) < 0)
        FAIL("submit did not print the application id");
    CHECK_CONTAINS(app, "application_");

    for (int tries = 0; ag_test_count_files("started.") < 4; tries++) {
        if (tries > 1200)
            FAIL("the containers did not start (%d did)", ag_test_count_files("started."));
        ag_sleep_ms(25);
    }
    CHECK(ag_test_count_files("marker.") < 20);
    uint64_t t0 = ag_now_ms();
    CHECK_EQ(kill(p.pid[0], SIGKILL), 0);
    CHECK_EQ(ag_test_wait(p.pid[0], 10), 128 + SIGKILL);
    close(p.fd[0]);
    char got[128];
    expect_line(p.fd[1], "rm listening on ", 30, got, sizeof(got));
    CHECK_STR_EQ(got, p.addr[1]);
    fprintf(stderr, "standby serving %llu ms after the active's death\n",
            (unsigned long long)(ag_now_ms() - t0));

    char line[512];
    if (ag_test_read_line(out, line, sizeof(line), 180) < 0)
        FAIL("submit did not report the end");
    close(out);
    CHECK_EQ(ag_test_wait(submit, 60), 0);
    CHECK_CONTAINS(line, app);
    CHECK_CONTAINS(line, "FINISHED: SUCCEEDED");
    CHECK_EQ(ag_test_count_files("marker.container_"), 20);
    CHECK_EQ(ag_test_count_files("started.container_"), 20);
    CHECK_EQ(ag_test_count_lines("runs"), 20); /* none ran twice */

    /* the new active answers for it, through the list */
    ag_test_proc st;
    const char *argv_st[] = {ag_test_bin("argot"), "app", "status", "--rm", p.list, app, NULL};
    CHECK_EQ(ag_test_run(&st, argv_st, NULL, 30), 0);
    CHECK_CONTAINS(st.out, "FINISHED");
    ag_test_proc_cleanup(&st);

    for (int i = 0; i < 2; i++)
        CHECK_EQ(ag_test_stop(nm[i]), 0);
    CHECK_EQ(ag_test_stop(p.pid[1]), 0);
    close(p.fd[1]);
    ag_test_etcd_stop(&E);
}

/* The active RM paused past its lease: the standby is elected; resumed,
 * the old one refuses everything and exits. */
TEST_TIMEOUT(sched_ha_paused_active_is_fenced, 120)
{
    ag_test_etcd_init(&E, "etcd");
    ag_test_etcd_start(&E);
    struct pair p;
    pair_start(&p, "1s");
    CHECK_EQ(kill(p.pid[0], SIGSTOP), 0);
    char got[128];
    expect_line(p.fd[1], "rm listening on ", 30, got, sizeof(got));
    CHECK_STR_EQ(got, p.addr[1]);

    /* a client connected to the paused RM: it must not be answered by it */
    const char *argv_n[] = {ag_test_bin("argot"), "nodes", "--rm", p.addr[0], NULL};
    pid_t old_client = ag_test_spawn(argv_n, &(int){0});
    ag_sleep_ms(200);
    CHECK_EQ(kill(p.pid[0], SIGCONT), 0);
    CHECK_EQ(ag_test_wait(p.pid[0], 20), 1); /* fenced: it stops by itself */
    CHECK(ag_test_wait(old_client, 30) != 0);

    /* the list finds the new active */
    ag_test_proc r;
    const char *argv_l[] = {ag_test_bin("argot"), "nodes", "--rm", p.list, NULL};
    CHECK_EQ(ag_test_run(&r, argv_l, NULL, 60), 0);
    CHECK_CONTAINS(r.out, "node");
    ag_test_proc_cleanup(&r);
    close(p.fd[0]);
    CHECK_EQ(ag_test_stop(p.pid[1]), 0);
    close(p.fd[1]);
    ag_test_etcd_stop(&E);
}

/* A graceful stop hands over at once (the lease is revoked). */
TEST_TIMEOUT(sched_ha_sigterm_hands_over, 60)
{
    ag_test_etcd_init(&E, "etcd");
    ag_test_etcd_start(&E);
    struct pair p;
    pair_start(&p, "10s");
    uint64_t t0 = ag_now_ms();
    CHECK_EQ(ag_test_stop(p.pid[0]), 0);
    close(p.fd[0]);
    char got[128];
    expect_line(p.fd[1], "rm listening on ", 30, got, sizeof(got));
    CHECK_STR_EQ(got, p.addr[1]);
    CHECK(ag_now_ms() - t0 < 5000); /* not the 10 s lease */
    CHECK_EQ(ag_test_stop(p.pid[1]), 0);
    close(p.fd[1]);
    ag_test_etcd_stop(&E);
}

TEST(sched_ha_config_errors_name_the_place)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"ha: {etcd: [\"127.0.0.1:2379\"]}\nstate: {sqlite: x.db}\n",
         "state and ha exclude each other"},
        {"ha: {etcd: [\"127.0.0.1:2379\"], lease: 1500ms}\n", "ha.lease: whole seconds"},
        {"ha: {etcd: [\"nowhere\"]}\n", "ha.etcd: an endpoint is host:port"},
        {"ha: {etcd: []}\n", "ha.etcd: 1 to 8 endpoints"},
        {"ha: {etcd: [\"127.0.0.1:2379\"], prefix: argot}\n", "ha.prefix: a key path"},
        {"ha: {etcd: [\"127.0.0.1:2379\"], leese: 2s}\n", "unknown key 'leese'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *cfg = ag_test_write_file("rm.yaml", cases[i].yaml, strlen(cases[i].yaml));
        const char *argv[] = {ag_test_bin("argot"), "rm", "--config", cfg, NULL};
        ag_test_proc p;
        CHECK(ag_test_run(&p, argv, NULL, 30) != 0);
        CHECK_CONTAINS(p.err, cases[i].want);
        CHECK_CONTAINS(p.err, "rm.yaml:");
        ag_test_proc_cleanup(&p);
    }
}
