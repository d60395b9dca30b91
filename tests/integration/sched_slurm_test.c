/*
 * The Slurm provider end to end: a one-node Slurm cluster started by the
 * test (munged, slurmctld -D, slurmd -D; key, socket, state, spool and
 * logs under the test's temporary directory; SlurmctldHost the machine's
 * short hostname at 127.0.0.1, free ports), then the distributed shell on
 * it: `argot app submit --provider slurm --containers 20 --wait` runs each
 * container exactly once with its ARGOT_CONTAINER_ID, a failing command
 * fails the run with diagnostics naming the container and carrying its
 * stderr; ag_am driven directly: env entries reach the command, a stopped
 * container completes -105, a released one -100, finish cancels what is
 * left; afterwards nothing the test started is left running.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

#include "argot/sched.h"
#include "slurm.h"
#include "test.h"

/* true once pid is gone (or a zombie: its parent is not this test) */
static bool gone(pid_t pid)
{
    char p[64], st[256] = "";
    snprintf(p, sizeof(p), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return true;
    size_t n = fread(st, 1, sizeof(st) - 1, f);
    fclose(f);
    st[n] = 0;
    const char *paren = strrchr(st, ')');
    return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/* Jobs of this user not yet ended in Slurm. */
static int live_jobs(void)
{
    job_info_msg_t *m = NULL;
    int live = 0;
    if (slurm_load_job_user(&m, getuid(), SHOW_ALL) != SLURM_SUCCESS)
        FAIL("slurm_load_job_user: %s", slurm_strerror(slurm_get_errno()));
    for (uint32_t i = 0; i < m->record_count; i++) {
        uint32_t st = m->job_array[i].job_state;
        live += (st & JOB_STATE_BASE) < JOB_COMPLETE || (st & JOB_COMPLETING);
    }
    slurm_free_job_info_msg(m);
    return live;
}

/* Waits up to 10 s for no live job. */
static void wait_no_jobs(const char *after)
{
    slurm_init(NULL);
    for (int tries = 0;; tries++) {
        int live = live_jobs();
        if (!live)
            break;
        if (tries > 100)
            FAIL("%d jobs still live after %s", live, after);
        ag_sleep_ms(100);
    }
    slurm_fini();
}

/* ---- ag_am with provider "slurm", driven directly ---- */

struct direct {
    char ids[4][48];
    int granted;
    char done[4][48];
    int status[4];
    int ndone;
};

static void d_allocated(void *ud, ag_am *am, const ag_container *c)
{
    (void)am;
    struct direct *d = ud;
    if (d->granted < 4)
        snprintf(d->ids[d->granted++], sizeof(d->ids[0]), "%s", c->id);
    CHECK_EQ(c->memory_mb, 64);
    CHECK_EQ(c->vcores, 1);
}

static void d_completed(void *ud, ag_am *am, const ag_container_status *s)
{
    (void)am;
    struct direct *d = ud;
    if (d->ndone < 4) {
        snprintf(d->done[d->ndone], sizeof(d->done[0]), "%s", s->id);
        d->status[d->ndone++] = s->exit_status;
    }
}

/* Allocate rounds until cond holds (10 s at most). */
#define ROUNDS_UNTIL(am, cond)                                                                     \
    for (int r_ = 0; !(cond); r_++) {                                                              \
        if (r_ > 200)                                                                              \
            FAIL("not within 10 s: %s", #cond);                                                    \
        if (ag_am_allocate(am, 0) < 0)                                                             \
            FAIL("allocate: %s", ag_am_errmsg(am));                                                \
        ag_sleep_ms(50);                                                                           \
    }

static int status_of(const struct direct *d, const char *id)
{
    for (int i = 0; i < d->ndone; i++)
        if (strcmp(d->done[i], id) == 0)
            return d->status[i];
    FAIL("no completion for %s", id);
}

static void direct_checks(void)
{
    struct direct d = {0};
    char err[AG_ERRMSG_MAX];
    ag_am_opts o = {
        .provider = "slurm", .cb = {.allocated = d_allocated, .completed = d_completed}, .ud = &d};
    ag_am *am = ag_am_new(&o, err, sizeof(err));
    if (!am)
        FAIL("ag_am_new: %s", err);
    CHECK_OK(ag_am_register(am, "localhost", 0, ""));
    CHECK_OK(ag_am_ask(am, 0, "*", 64, 1, 2, true, "", 0));
    ROUNDS_UNTIL(am, d.granted == 2);
    CHECK_EQ(ag_am_running(am), 2);
    int64_t mb;
    int32_t vc, nodes;
    ag_am_headroom(am, &mb, &vc, &nodes);
    CHECK_EQ(nodes, 1);
    /* the first runs with an env entry and exits with it; the second sleeps
     * until stopped */
    char out[600];
    snprintf(out, sizeof(out), "%s/direct.txt", ag_test_tmpdir());
    const char *argv1[] = {"/bin/sh", "-c", "echo \"$GREETING\" > \"$OUT\"; exit 7", NULL};
    char outenv[700];
    snprintf(outenv, sizeof(outenv), "OUT=%s", out);
    const char *env1[] = {"GREETING=it's me", outenv, NULL};
    CHECK_OK(ag_am_start(am, d.ids[0], argv1, env1));
    CHECK(ag_am_start(am, d.ids[0], argv1, env1) < 0); /* once only */
    CHECK_CONTAINS(ag_am_errmsg(am), "started already");
    const char *bad_env[] = {"no equals sign", NULL};
    CHECK(ag_am_start(am, d.ids[1], argv1, bad_env) < 0);
    CHECK_CONTAINS(ag_am_errmsg(am), "env entry 0");
    const char *argv2[] = {"/bin/sleep", "60", NULL};
    CHECK_OK(ag_am_start(am, d.ids[1], argv2, NULL));
    ROUNDS_UNTIL(am, d.ndone == 1);
    CHECK_EQ(status_of(&d, d.ids[0]), 7);
    CHECK_STR_EQ(ag_test_read_file(out), "it's me\n");
    CHECK_OK(ag_am_stop(am, d.ids[1]));
    ROUNDS_UNTIL(am, d.ndone == 2);
    CHECK_EQ(status_of(&d, d.ids[1]), -105);
    CHECK(ag_am_stop(am, "slurm_999999") < 0);
    CHECK_CONTAINS(ag_am_errmsg(am), "no running container 'slurm_999999'");
    /* a grant given back unstarted: released */
    CHECK_OK(ag_am_ask(am, 0, "*", 64, 1, 1, true, "", 0));
    ROUNDS_UNTIL(am, d.granted == 3);
    CHECK_OK(ag_am_release(am, d.ids[2]));
    ROUNDS_UNTIL(am, d.ndone == 3);
    CHECK_EQ(status_of(&d, d.ids[2]), -100);
    /* one more, left for finish to cancel */
    CHECK_OK(ag_am_ask(am, 0, "*", 64, 1, 1, true, "", 0));
    ROUNDS_UNTIL(am, d.granted == 4);
    CHECK_OK(ag_am_start(am, d.ids[3], argv2, NULL));
    CHECK_OK(ag_am_finish(am, AG_AM_SUCCEEDED, "done"));
    CHECK_EQ(ag_am_running(am), 0);
    ag_am_free(am);
    wait_no_jobs("finish");

    /* what Slurm refuses comes back from allocate, with Slurm's reason */
    am = ag_am_new(&o, err, sizeof(err));
    if (!am)
        FAIL("ag_am_new: %s", err);
    CHECK_OK(ag_am_register(am, "localhost", 0, ""));
    CHECK_OK(ag_am_ask(am, 0, "*", 64, 1, 1, true, "nosuchfeature", 0));
    CHECK(ag_am_allocate(am, 0) < 0);
    CHECK_CONTAINS(ag_am_errmsg(am), "allocate: Slurm refused a job of 64 MB, 1 vcores at *: ");
    CHECK_OK(ag_am_ask(am, 0, "*", 64, 1, 0, true, "nosuchfeature", 0));
    CHECK_OK(ag_am_ask(am, 0, "*", 1 << 30, 1, 1, true, "", 0));
    CHECK(ag_am_allocate(am, 0) < 0);
    CHECK_CONTAINS(ag_am_errmsg(am), "Slurm refused a job of 1073741824 MB");
    CHECK_OK(ag_am_finish(am, AG_AM_FAILED, "refused"));
    ag_am_free(am);
}

/* Without --wait the master detaches; SIGTERM ends it and its jobs. */
static void detached_master(void)
{
    ag_test_proc p;
    const char *argv[] = {ag_test_bin("argot"),
                          "app",
                          "submit",
                          "--provider",
                          "slurm",
                          "--name",
                          "bg",
                          "--containers",
                          "2",
                          "--memory",
                          "64",
                          "--",
                          "/bin/sleep",
                          "60",
                          NULL};
    CHECK_EQ(ag_test_run(&p, argv, NULL, 30), 0);
    char host[256] = "";
    long pid = 0;
    if (sscanf(p.out, "slurm-%255[^\n]", host) != 1 || !strrchr(host, '-'))
        FAIL("unexpected id: %s", p.out);
    pid = strtol(strrchr(host, '-') + 1, NULL, 10);
    ag_test_proc_cleanup(&p);
    CHECK(pid > 1);
    /* both containers running */
    slurm_init(NULL);
    for (int tries = 0;; tries++) {
        job_info_msg_t *m = NULL;
        int running = 0;
        if (slurm_load_job_user(&m, getuid(), SHOW_ALL) == SLURM_SUCCESS) {
            for (uint32_t i = 0; i < m->record_count; i++)
                running += (m->job_array[i].job_state & JOB_STATE_BASE) == JOB_RUNNING;
            slurm_free_job_info_msg(m);
        }
        if (running == 2)
            break;
        if (tries > 200)
            FAIL("the detached master's 2 containers did not run within 20 s");
        ag_sleep_ms(100);
    }
    slurm_fini();
    CHECK_EQ(kill((pid_t)pid, SIGTERM), 0);
    for (int tries = 0; !gone((pid_t)pid); tries++) {
        if (tries > 100)
            FAIL("the detached master %ld did not end on SIGTERM", pid);
        ag_sleep_ms(100);
    }
    wait_no_jobs("the detached master's SIGTERM");
}

static int submit(ag_test_proc *p, const char *n, const char *cmd)
{
    const char *argv[] = {ag_test_bin("argot"),
                          "app",
                          "submit",
                          "--provider",
                          "slurm",
                          "--name",
                          "itest",
                          "--containers",
                          n,
                          "--memory",
                          "64",
                          "--vcores",
                          "1",
                          "--wait",
                          "--",
                          "/bin/sh",
                          "-c",
                          cmd,
                          NULL};
    return ag_test_run(p, argv, NULL, 90);
}

TEST_TIMEOUT(sched_slurm_distributed_shell, 120)
{
    ag_test_slurm c;
    ag_test_slurm_start(&c, 8); /* 8 CPUs configured: the 20 containers in three waves */
    setenv("ARGOT_SLURM_SPOOL", ag_test_tmpdir(), 1);
    char ids[600], cmd[1200];
    snprintf(ids, sizeof(ids), "%s/ids.txt", ag_test_tmpdir());
    snprintf(cmd, sizeof(cmd), "echo \"$ARGOT_CONTAINER_ID $ARGOT_NM_HOST\" >> '%s'", ids);
    ag_test_proc p;
    if (submit(&p, "20", cmd) != 0)
        FAIL("submit on Slurm: exit %d\nout: %s\nerr: %s", p.status, p.out, p.err);
    CHECK_CONTAINS(p.out, "FINISHED: SUCCEEDED: 20 containers exited 0");
    ag_test_proc_cleanup(&p);
    /* each of 20 distinct containers ran once, on the cluster's node */
    char *text = strdup(ag_test_read_file(ids));
    char *seen[20];
    int lines = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (lines == 20)
            FAIL("more than 20 containers ran: %s", l);
        if (strncmp(l, "slurm_", 6) != 0 || !strchr(l, ' ') || !strchr(l, ' ')[1])
            FAIL("a container without its id or node: '%s'", l);
        for (int i = 0; i < lines; i++)
            if (strcmp(seen[i], l) == 0)
                FAIL("container ran twice: %s", l);
        seen[lines++] = l;
    }
    CHECK_EQ(lines, 20);
    free(text);
    /* the spool directory went with the master */
    DIR *d = opendir(ag_test_tmpdir());
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "argot-slurm-", 12) == 0)
            FAIL("the spool directory %s is still there", e->d_name);
    closedir(d);

    /* a failing command: non-zero, the container named, its stderr kept */
    if (submit(&p, "2", "echo \"broken in $ARGOT_CONTAINER_ID\" >&2; exit 3") != 1)
        FAIL("a failing command: exit %d, want 1\nerr: %s", p.status, p.err);
    CHECK_CONTAINS(p.err, "FINISHED: FAILED: 2 of 2 containers failed; first: container slurm_");
    CHECK_CONTAINS(p.err, "exited 3");
    CHECK_CONTAINS(p.err, "stderr: broken in slurm_");
    ag_test_proc_cleanup(&p);

    /* bad input: an unknown provider, an argot-only flag */
    const char *bad[] = {ag_test_bin("argot"),
                         "app",
                         "submit",
                         "--provider",
                         "pbs",
                         "--name",
                         "x",
                         "--",
                         "true",
                         NULL};
    CHECK_EQ(ag_test_run(&p, bad, NULL, 30), 2);
    CHECK_CONTAINS(p.err, "--provider pbs: argot or slurm");
    ag_test_proc_cleanup(&p);
    const char *bad2[] = {ag_test_bin("argot"),
                          "app",
                          "submit",
                          "--provider",
                          "slurm",
                          "--queue",
                          "root.x",
                          "--name",
                          "x",
                          "--",
                          "true",
                          NULL};
    CHECK_EQ(ag_test_run(&p, bad2, NULL, 30), 2);
    CHECK_CONTAINS(p.err, "--queue applies to --provider argot only");
    ag_test_proc_cleanup(&p);

    direct_checks();
    detached_master();
    ag_test_slurm_stop(&c);
}
