/* Tests for src/sched/slurm.c without a cluster: the launch script a
 * container's job runs (run by /bin/sh here: quoting survives quotes,
 * spaces, $ and newlines; env entries that are not NAME=VALUE are refused;
 * a script over the cap is refused), the mapping of a job's end to a
 * container status, and ag_am_new's errors for the provider (unknown
 * provider, no Slurm configuration). The cluster itself is
 * tests/integration/sched_slurm_test.c. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "sched/slurm_am.h"
#include "test.h"

/* Runs the script with /bin/sh; returns its stdout (static storage). */
static const char *run_script(const char *script)
{
    const char *path = ag_test_write_file("launch.sh", script, strlen(script));
    ag_test_proc p;
    const char *argv[] = {"/bin/sh", path, NULL};
    if (ag_test_run(&p, argv, NULL, 10) != 0)
        FAIL("sh %s: exit %d: %s", path, p.status, p.err);
    static char out[4096];
    snprintf(out, sizeof(out), "%s", p.out);
    ag_test_proc_cleanup(&p);
    return out;
}

TEST(slurm_launch_script_quotes_and_exports)
{
    char buf[8192], err[200];
    const char *argv[] = {"/bin/sh",
                          "-c",
                          "printf '[%s][%s][%s][%s][%s]' \"$ARGOT_CONTAINER_ID\" "
                          "\"$ARGOT_NM_HOST\" \"$GREETING\" \"$1\" \"$2\"",
                          "sh",
                          "it's $HOME `x`",
                          "two\nlines",
                          NULL};
    const char *env[] = {"GREETING=hello 'world' $PATH", "EMPTY=", NULL};
    ssize_t n =
        ag__slurm_launch_script(buf, sizeof(buf), "slurm_42", "node1", argv, env, err, sizeof(err));
    CHECK(n > 0);
    CHECK_EQ((size_t)n, strlen(buf));
    CHECK_STR_EQ(run_script(buf),
                 "[slurm_42][node1][hello 'world' $PATH][it's $HOME `x`][two\nlines]");
}

TEST(slurm_launch_script_refuses_bad_input)
{
    char buf[4096], err[200];
    const char *argv[] = {"true", NULL};
    const char *bad_env[] = {"NOEQUALS", NULL};
    CHECK_EQ(
        ag__slurm_launch_script(buf, sizeof(buf), "slurm_1", "n", argv, bad_env, err, sizeof(err)),
        AG_E_INVAL);
    CHECK_CONTAINS(err, "env entry 0 ('NOEQUALS')");
    const char *bad_name[] = {"OK=1", "1X=2", NULL};
    CHECK_EQ(
        ag__slurm_launch_script(buf, sizeof(buf), "slurm_1", "n", argv, bad_name, err, sizeof(err)),
        AG_E_INVAL);
    CHECK_CONTAINS(err, "env entry 1 ('1X=2')");
    const char *inject[] = {"A;rm -rf /=1", NULL};
    CHECK_EQ(
        ag__slurm_launch_script(buf, sizeof(buf), "slurm_1", "n", argv, inject, err, sizeof(err)),
        AG_E_INVAL);
    const char *empty[] = {NULL};
    CHECK_EQ(
        ag__slurm_launch_script(buf, sizeof(buf), "slurm_1", "n", empty, NULL, err, sizeof(err)),
        AG_E_INVAL);
    CHECK_CONTAINS(err, "empty command");
    char small[64];
    CHECK_EQ(
        ag__slurm_launch_script(small, sizeof(small), "slurm_1", "n", argv, NULL, err, sizeof(err)),
        AG_E_TOO_LARGE);
    CHECK_CONTAINS(err, "longer than 63 bytes");
}

TEST(slurm_status_mapping)
{
    int st;
    char diag[200];
    ag__slurm_status_of(AG__SLURM_END_COMPLETE, 0, false, false, &st, diag, sizeof(diag));
    CHECK_EQ(st, 0);
    CHECK_STR_EQ(diag, "");
    ag__slurm_status_of(AG__SLURM_END_COMPLETE, 3 << 8, false, false, &st, diag, sizeof(diag));
    CHECK_EQ(st, 3);
    CHECK_STR_EQ(diag, "exited 3");
    ag__slurm_status_of(AG__SLURM_END_COMPLETE, SIGSEGV, false, false, &st, diag, sizeof(diag));
    CHECK_EQ(st, 128 + SIGSEGV);
    CHECK_CONTAINS(diag, "killed by signal");
    /* cancelled: by this AM's stop or release, or by someone else */
    ag__slurm_status_of(AG__SLURM_END_CANCELLED, SIGKILL, true, false, &st, diag, sizeof(diag));
    CHECK_EQ(st, -105);
    CHECK_STR_EQ(diag, "stopped by the application master");
    ag__slurm_status_of(AG__SLURM_END_CANCELLED, 0, false, true, &st, diag, sizeof(diag));
    CHECK_EQ(st, -100);
    CHECK_STR_EQ(diag, "released by the application master");
    ag__slurm_status_of(AG__SLURM_END_CANCELLED, 0, false, false, &st, diag, sizeof(diag));
    CHECK_EQ(st, -105);
    CHECK_CONTAINS(diag, "cancelled in Slurm");
    /* a stop that came after the command had exited keeps the exit */
    ag__slurm_status_of(AG__SLURM_END_COMPLETE, 2 << 8, true, false, &st, diag, sizeof(diag));
    CHECK_EQ(st, 2);
    ag__slurm_status_of(AG__SLURM_END_NODE_FAIL, 0, false, false, &st, diag, sizeof(diag));
    CHECK_EQ(st, -100);
    CHECK_CONTAINS(diag, "node failed");
    ag__slurm_status_of(AG__SLURM_END_PREEMPTED, 0, false, false, &st, diag, sizeof(diag));
    CHECK_EQ(st, -102);
    ag__slurm_status_of(AG__SLURM_END_OOM, 0, false, false, &st, diag, sizeof(diag));
    CHECK_EQ(st, -104);
    ag__slurm_status_of(AG__SLURM_END_TIMEOUT, 0, false, false, &st, diag, sizeof(diag));
    CHECK_EQ(st, -105);
    CHECK_CONTAINS(diag, "time limit");
    ag__slurm_status_of(AG__SLURM_END_DEADLINE, 0, false, false, &st, diag, sizeof(diag));
    CHECK_EQ(st, -105);
    CHECK_CONTAINS(diag, "deadline");
}

TEST(slurm_am_new_errors)
{
    char err[AG_ERRMSG_MAX];
    ag_am_opts o = {.provider = "pbs"};
    CHECK(ag_am_new(&o, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "unknown provider 'pbs' (argot or slurm)");
    /* libslurm would exit the process on a configuration it cannot read:
     * the provider looks first and names the path */
    const char *missing = ag_test_path("no-such-slurm.conf");
    setenv("SLURM_CONF", missing, 1);
    o.provider = "slurm";
    CHECK(ag_am_new(&o, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "no Slurm configuration at ");
    CHECK_CONTAINS(err, missing);
}
