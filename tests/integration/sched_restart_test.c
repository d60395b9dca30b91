/*
 * sched's work-preserving RM restart end to end: `argot rm` with a state
 * file on a fixed port, two `argot nm`, and the distributed shell
 * (`argot app submit --wait`) running 6 containers; the RM is killed with
 * SIGKILL while they run and started again on the same address with the
 * same config and state file. The application must finish SUCCEEDED under
 * the same id, every container must have run exactly once (none lost, none
 * run twice), and the AM must not have been started again (a second AM
 * would run its 6 containers again: --max-attempts 1 is per container, the
 * application has the RM's default of 2 attempts).
 */
#include <signal.h>
#include <unistd.h>

#include "daemons.h"
#include "test.h"

static pid_t rm_start(const char *config, const char *want_addr)
{
    const char *argv[] = {ag_test_bin("argot"), "rm", "--config", config, NULL};
    int fd;
    char addr[128];
    pid_t pid = ag_test_spawn(argv, &fd);
    ag_test_read_listening(fd, "rm", addr, sizeof(addr));
    close(fd);
    CHECK_STR_EQ(addr, want_addr);
    return pid;
}

/* The scenario: the RM is killed once the 6 containers run and started
 * again down_ms later. */
static void restart_scenario(unsigned down_ms)
{
    char rm_addr[64], yaml[1024], config[512];
    /* a fixed port, not 0: the NMs and the AM find the restarted RM there */
    snprintf(rm_addr, sizeof(rm_addr), "127.0.0.1:%d", ag_test_free_port());
    snprintf(yaml, sizeof(yaml),
             "address: \"%s\"\n"
             "state: {sqlite: %s/rm.db}\n"
             "liveness: {nm_expiry_ms: 600000, am_expiry_ms: 600000}\n"
             "log: {level: warn}\n",
             rm_addr, ag_test_tmpdir());
    snprintf(config, sizeof(config), "%s", ag_test_write_file("rm.yaml", yaml, strlen(yaml)));
    pid_t rm = rm_start(config, rm_addr);
    pid_t nm[2] = {ag_test_nm_start(0, rm_addr, 4096, 4, NULL), ag_test_nm_start(1, rm_addr, 4096, 4, NULL)};

    /* each container: says it started, runs 2 s, leaves its marker; runs
     * lists every run, so a container run twice shows */
    char cmd[1024];
    const char *dir = ag_test_tmpdir();
    snprintf(cmd, sizeof(cmd),
             "touch %s/started.$ARGOT_CONTAINER_ID; sleep 2; "
             "touch %s/marker.$ARGOT_CONTAINER_ID; echo $ARGOT_CONTAINER_ID >> %s/runs",
             dir, dir, dir);
    const char *argv[] = {ag_test_bin("argot"), "app", "submit", "--rm", rm_addr, "--name",
                          "restart", "--containers", "6", "--memory", "512", "--vcores", "1",
                          "--max-attempts", "1", "--wait", "--", "/bin/sh", "-c", cmd, NULL};
    int out;
    pid_t submit = ag_test_spawn(argv, &out);
    char app[128];
    if (ag_test_read_line(out, app, sizeof(app), 60) < 0)
        FAIL("submit did not print the application id");
    CHECK_CONTAINS(app, "application_");

    /* every container running: kill the RM */
    for (int tries = 0; ag_test_count_files("started.") < 6; tries++) {
        if (tries > 600)
            FAIL("the 6 containers did not start (%d did)", ag_test_count_files("started."));
        ag_sleep_ms(50);
    }
    CHECK(ag_test_count_files("marker.") < 6); /* some still run (2 s each) */
    CHECK_EQ(kill(rm, SIGKILL), 0);
    CHECK_EQ(ag_test_wait(rm, 10), 128 + SIGKILL);
    ag_sleep_ms(down_ms);

    /* the same address, config and state */
    rm = rm_start(config, rm_addr);

    char line[512];
    if (ag_test_read_line(out, line, sizeof(line), 120) < 0)
        FAIL("submit did not report the end");
    close(out);
    CHECK_EQ(ag_test_wait(submit, 60), 0);
    CHECK_CONTAINS(line, app);
    CHECK_CONTAINS(line, "FINISHED: SUCCEEDED");
    CHECK_EQ(ag_test_count_files("marker.container_"), 6);
    CHECK_EQ(ag_test_count_files("started.container_"), 6);
    CHECK_EQ(ag_test_count_lines("runs"), 6);

    /* the restarted RM still answers for it */
    ag_test_proc p;
    const char *argv_st[] = {ag_test_bin("argot"), "app", "status", "--rm", rm_addr, app, NULL};
    CHECK_EQ(ag_test_run(&p, argv_st, NULL, 30), 0);
    CHECK_CONTAINS(p.out, "FINISHED");
    ag_test_proc_cleanup(&p);

    for (int i = 0; i < 2; i++)
        CHECK_EQ(ag_test_stop(nm[i]), 0);
    CHECK_EQ(ag_test_stop(rm), 0);
}

/* The RM is back at once: the AM resyncs, the NMs re-register with their
 * running containers, whose completions then come with heartbeats. */
TEST_TIMEOUT(sched_rm_restart_preserves_running_application, 240)
{
    restart_scenario(0);
}

/* The RM stays away longer than the containers run: they end meanwhile and
 * their completions come with the NMs' re-registrations. */
TEST_TIMEOUT(sched_rm_restart_after_containers_ended, 240)
{
    restart_scenario(3000);
    CHECK_EQ(ag_test_count_files("marker.container_"), 6);
}
