/* Tests for src/sched/launch.c: real /bin/sh containers in the test's
 * temporary directory: environment, files, logs, exit statuses, stopping a
 * process group (SIGTERM, then SIGKILL), rlimits, cgroup v2 when this
 * machine allows it, and no zombies left behind. */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sched/launch.h"
#include "test.h"

/* A container id's directory under the test's tmpdir. */
static const char *cdir(const char *id)
{
    return ag_test_path(id);
}

/* Starts `sh -c script` as container id (memory_mb limit, env entries). */
static int start_sh(ag__launcher *l, const char *id, const char *script, int64_t memory_mb,
                    const char *const *env, size_t nenv, char *err, size_t cap)
{
    const char *argv[] = {"sh", "-c", script};
    ag__launch_spec s = {.id = id,
                         .dir = cdir(id),
                         .argv = argv,
                         .argc = 3,
                         .env = env,
                         .nenv = nenv,
                         .memory_mb = memory_mb};
    return ag__launch_start(l, &s, err, cap);
}

/* The file <container dir>/name, whole. */
static const char *cfile(const char *id, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", cdir(id), name);
    return ag_test_read_file(path);
}

/* Waits up to 5 s for <container dir>/name to hold a line; returns its
 * number. */
static long wait_number(const char *id, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", cdir(id), name);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(path, "r");
        long v = 0;
        if (f) {
            int got = fscanf(f, "%ld", &v);
            fclose(f);
            if (got == 1 && v > 0)
                return v;
        }
        usleep(10000);
    }
    FAIL("%s never held a number", path);
}

/* True while pid is a live process (not gone, not a zombie). */
static bool alive(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

/* The test process has no child left, reaped or not. */
static void check_no_children(void)
{
    errno = 0;
    CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
    CHECK_EQ(errno, ECHILD);
}

TEST(launch_env_files_logs)
{
    ag__launcher *l = ag__launcher_new(NULL);
    CHECK(l != NULL);
    static const char script[] =
        "echo \"id=$ARGOT_CONTAINER_ID foo=$FOO home=$HOME\"; echo \"path=$PATH\"; "
        "echo oops >&2; cat conf/a.txt; ./run.sh; exit 3";
    const char *argv[] = {"sh", "-c", script};
    const char *env[] = {"FOO=first", "ARGOT_CONTAINER_ID=c1", "FOO=second"};
    static const char run[] = "#!/bin/sh\necho ran-script\n";
    ag__launch_file files[] = {
        {"conf/a.txt", (const uint8_t *)"hello file\n", 11, 0600},
        {"run.sh", (const uint8_t *)run, sizeof(run) - 1, 0755},
    };
    ag__launch_spec s = {.id = "c1",
                         .dir = cdir("c1"),
                         .argv = argv,
                         .argc = 3,
                         .env = env,
                         .nenv = 3,
                         .files = files,
                         .nfiles = 2,
                         .memory_mb = 512};
    char err[512] = "";
    int rc = ag__launch_start(l, &s, err, sizeof(err));
    if (rc < 0)
        FAIL("start: %s", err);
    ag__launch_status st;
    CHECK_OK(ag__launch_wait(l, "c1", 10000, &st));
    CHECK(!st.running);
    CHECK_EQ(st.exit_status, 3);
    CHECK_CONTAINS(st.diagnostics, "exited with code 3");
    CHECK_CONTAINS(st.diagnostics, "limits: ");
    char want[1200];
    snprintf(want, sizeof(want), "id=c1 foo=second home=%s\n", cdir("c1"));
    const char *out = cfile("c1", "stdout");
    CHECK_CONTAINS(out, want);
    CHECK_CONTAINS(out, "path=/usr/local/bin:/usr/bin:/bin\n");
    CHECK_CONTAINS(out, "hello file\nran-script\n");
    CHECK_STR_EQ(cfile("c1", "stderr"), "oops\n");
    struct stat sb;
    char path[1200];
    snprintf(path, sizeof(path), "%s/conf/a.txt", cdir("c1"));
    CHECK_EQ(stat(path, &sb), 0);
    CHECK_EQ(sb.st_mode & 0777, 0600);
    /* a second start of the same id is refused, even after it ended */
    rc = ag__launch_start(l, &s, err, sizeof(err));
    CHECK_EQ(rc, AG_E_EXISTS);
    CHECK_OK(ag__launch_forget(l, "c1"));
    CHECK_EQ(ag__launch_status_get(l, "c1", &st), AG_E_NOENT);
    ag__launcher_free(l);
    check_no_children();
}

TEST(launch_refuses_bad_specs)
{
    ag__launcher *l = ag__launcher_new(NULL);
    CHECK(l != NULL);
    char err[512] = "";
    const char *argv[] = {"no-such-program-argot"};
    ag__launch_spec s = {.id = "c2", .dir = cdir("c2"), .argv = argv, .argc = 1};
    CHECK_EQ(ag__launch_start(l, &s, err, sizeof(err)), AG_E_NOENT);
    CHECK_CONTAINS(err, "program 'no-such-program-argot' not found in PATH=");
    /* a file escaping the container's directory */
    const char *sh[] = {"sh", "-c", "true"};
    ag__launch_file up = {"../escape", (const uint8_t *)"x", 1, 0};
    ag__launch_spec s2 = {
        .id = "c3", .dir = cdir("c3"), .argv = sh, .argc = 3, .files = &up, .nfiles = 1};
    CHECK_EQ(ag__launch_start(l, &s2, err, sizeof(err)), AG_E_INVAL);
    CHECK_CONTAINS(err, "not a relative path inside the container");
    /* an id that cannot name a cgroup */
    ag__launch_spec s3 = {.id = "../x", .dir = cdir("c4"), .argv = sh, .argc = 3};
    CHECK_EQ(ag__launch_start(l, &s3, err, sizeof(err)), AG_E_INVAL);
    CHECK_EQ(ag__launch_running(l), 0);
    ag__launcher_free(l);
    check_no_children();
}

TEST(launch_exit_by_signal)
{
    ag__launcher *l = ag__launcher_new(NULL);
    CHECK(l != NULL);
    char err[512];
    CHECK_OK(start_sh(l, "c5", "kill -9 $$", 0, NULL, 0, err, sizeof(err)));
    ag__launch_status st;
    CHECK_OK(ag__launch_wait(l, "c5", 10000, &st));
    CHECK_EQ(st.exit_status, 128 + 9);
    CHECK_CONTAINS(st.diagnostics, "killed by signal 9");
    ag__launcher_free(l);
    check_no_children();
}

TEST(launch_stop_kills_process_group)
{
    ag__launcher *l = ag__launcher_new(NULL);
    CHECK(l != NULL);
    char err[512];
    /* the container's shell starts a grandchild and waits on it */
    CHECK_OK(start_sh(l, "c6", "sleep 100 & echo $! > grandchild; echo $$ > pid; wait", 0, NULL, 0,
                      err, sizeof(err)));
    long gc = wait_number("c6", "grandchild"), pid = wait_number("c6", "pid");
    CHECK(alive(gc));
    CHECK(alive(pid));
    ag__launch_status st;
    CHECK_EQ(ag__launch_wait(l, "c6", 100, &st), AG_E_TIMEDOUT);
    CHECK_OK(ag__launch_stop(l, "c6", AG__EXIT_STOPPED));
    CHECK_OK(ag__launch_wait(l, "c6", 10000, &st));
    CHECK_EQ(st.exit_status, AG__EXIT_STOPPED);
    CHECK_CONTAINS(st.diagnostics, "stopped by request");
    CHECK_CONTAINS(st.diagnostics, "after SIGTERM");
    for (int i = 0; i < 200 && alive(gc); i++)
        usleep(10000);
    CHECK(!alive(gc));
    CHECK(!alive(pid));
    /* stopping an ended container keeps its status */
    CHECK_OK(ag__launch_stop(l, "c6", AG__EXIT_SHUTDOWN));
    CHECK_OK(ag__launch_status_get(l, "c6", &st));
    CHECK_EQ(st.exit_status, AG__EXIT_STOPPED);
    CHECK_EQ(ag__launch_stop(l, "nope", AG__EXIT_STOPPED), AG_E_NOENT);
    ag__launcher_free(l);
    check_no_children();
}

TEST(launch_stop_escalates_to_sigkill)
{
    ag__launcher_opts o = {.kill_grace_ms = 300};
    ag__launcher *l = ag__launcher_new(&o);
    CHECK(l != NULL);
    char err[512];
    /* SIGTERM is ignored by the shell and by its grandchild */
    CHECK_OK(start_sh(l, "c7",
                      "trap '' TERM; sleep 100 & echo $! > grandchild; "
                      "while :; do wait; done",
                      0, NULL, 0, err, sizeof(err)));
    long gc = wait_number("c7", "grandchild");
    uint64_t t0 = ag_now_ms();
    CHECK_OK(ag__launch_stop(l, "c7", AG__EXIT_STOPPED));
    ag__launch_status st;
    CHECK_OK(ag__launch_wait(l, "c7", 10000, &st));
    CHECK(ag_now_ms() - t0 >= 300);
    CHECK_EQ(st.exit_status, AG__EXIT_STOPPED);
    CHECK_CONTAINS(st.diagnostics, "after SIGKILL");
    for (int i = 0; i < 200 && alive(gc); i++)
        usleep(10000);
    CHECK(!alive(gc));
    ag__launcher_free(l);
    check_no_children();
}

/* The leader exits on its own: what it left running in its group dies. */
TEST(launch_leftovers_killed_when_leader_exits)
{
    ag__launcher *l = ag__launcher_new(NULL);
    CHECK(l != NULL);
    char err[512];
    CHECK_OK(start_sh(l, "c8", "sleep 100 & echo $! > grandchild; exit 0", 0, NULL, 0, err,
                      sizeof(err)));
    ag__launch_status st;
    CHECK_OK(ag__launch_wait(l, "c8", 10000, &st));
    CHECK_EQ(st.exit_status, 0);
    long gc = wait_number("c8", "grandchild");
    for (int i = 0; i < 200 && alive(gc); i++)
        usleep(10000);
    CHECK(!alive(gc));
    ag__launcher_free(l);
    check_no_children();
}

/* Without cgroups, memory becomes RLIMIT_AS: the shell sees it, and an
 * allocation past it fails, while the same script without a limit runs. */
TEST(launch_rlimit_memory)
{
    ag__launcher *l = ag__launcher_new(NULL);
    CHECK(l != NULL);
    CHECK(!ag__launcher_uses_cgroup(l));
    CHECK_CONTAINS(ag__launcher_limits(l), "rlimits");
    static const char script[] =
        "ulimit -v; x=$(head -c 150000000 /dev/zero | tr '\\0' a); echo survived ${#x}";
    char err[512];
    CHECK_OK(start_sh(l, "c9", script, 48, NULL, 0, err, sizeof(err)));
    CHECK_OK(start_sh(l, "c10", script, 0, NULL, 0, err, sizeof(err)));
    ag__launch_status st, st2;
    CHECK_OK(ag__launch_wait(l, "c9", 20000, &st));
    CHECK_OK(ag__launch_wait(l, "c10", 20000, &st2));
    CHECK_CONTAINS(st.limits, "rlimit RLIMIT_AS=48MB");
    CHECK_CONTAINS(st.diagnostics, "RLIMIT_AS=48MB");
    const char *out = cfile("c9", "stdout");
    CHECK_CONTAINS(out, "49152\n");
    CHECK(strstr(out, "survived") == NULL);
    CHECK(st.exit_status != 0);
    CHECK_EQ(st2.exit_status, 0);
    CHECK_CONTAINS(cfile("c10", "stdout"), "survived 150000000");
    ag__launcher_free(l);
    check_no_children();
}

/* cgroup v2 limits, when this machine lets us make a child cgroup with the
 * memory and cpu controllers; otherwise the launcher must say why it fell
 * back to rlimits (and the test says it skipped). */
TEST(launch_cgroup_when_available)
{
    char parent[128];
    snprintf(parent, sizeof(parent), "/sys/fs/cgroup/argot-nm-test-%d", (int)getpid());
    ag__launcher_opts o = {.cgroup_parent = parent};
    ag__launcher *l = ag__launcher_new(&o);
    CHECK(l != NULL);
    if (!ag__launcher_uses_cgroup(l)) {
        CHECK_CONTAINS(ag__launcher_limits(l), "rlimits (");
        fprintf(stderr, "launch_cgroup_when_available: skipped: %s\n", ag__launcher_limits(l));
        ag__launcher_free(l);
        return;
    }
    char err[512];
    const char *argv[] = {"sh", "-c", "cat /proc/self/cgroup; cat memory.max.txt 2>/dev/null"};
    ag__launch_spec s = {
        .id = "cg1", .dir = cdir("cg1"), .argv = argv, .argc = 3, .memory_mb = 64, .vcores = 2};
    CHECK_OK(ag__launch_start(l, &s, err, sizeof(err)));
    ag__launch_status st;
    CHECK_OK(ag__launch_wait(l, "cg1", 10000, &st));
    CHECK_EQ(st.exit_status, 0);
    CHECK_CONTAINS(st.limits, "cgroup2 ");
    CHECK_CONTAINS(st.limits, "memory.max=64MB cpu.max=200000/100000");
    CHECK_CONTAINS(cfile("cg1", "stdout"), "/argot-nm-test-");
    /* past memory.max: the kernel's OOM killer, reported as -104 */
    const char *argv2[] = {"sh", "-c", "x=$(head -c 300000000 /dev/zero | tr '\\0' a)"};
    ag__launch_spec s2 = {
        .id = "cg2", .dir = cdir("cg2"), .argv = argv2, .argc = 3, .memory_mb = 32, .vcores = 1};
    CHECK_OK(ag__launch_start(l, &s2, err, sizeof(err)));
    CHECK_OK(ag__launch_wait(l, "cg2", 20000, &st));
    CHECK_EQ(st.exit_status, AG__EXIT_MEMORY);
    ag__launcher_free(l);
    rmdir(parent);
    check_no_children();
}

/* Recovery: a launcher recording exit statuses leaves its container running
 * when detached; another launcher adopts it (not its child: polled through
 * /proc), sees it end and reads its exit status from the wrapper's file;
 * an adopted container can be stopped. */
TEST(launch_detach_and_adopt)
{
    ag__launcher_opts o = {.record_exit = true, .kill_grace_ms = 300};
    ag__launcher *l = ag__launcher_new(&o);
    CHECK(l != NULL);
    char err[512];
    CHECK_OK(start_sh(l, "r1", "sleep 0.5; exit 4", 0, NULL, 0, err, sizeof(err)));
    CHECK_OK(
        start_sh(l, "r2", "sleep 100 & echo $! > grandchild; wait", 0, NULL, 0, err, sizeof(err)));
    long gc = wait_number("r2", "grandchild");
    ag__launch_status s1, s2;
    CHECK_OK(ag__launch_status_get(l, "r1", &s1));
    CHECK_OK(ag__launch_status_get(l, "r2", &s2));
    CHECK(s1.running && s1.starttime > 0);
    ag__launch_detach_all(l);
    ag__launcher_free(l);
    CHECK(alive(s2.pid));

    ag__launcher *l2 = ag__launcher_new(&o);
    CHECK(l2 != NULL);
    ag__launch_adopted a1 = {.id = "r1",
                             .dir = cdir("r1"),
                             .pid = s1.pid,
                             .starttime = s1.starttime,
                             .limits = s1.limits,
                             .running = true};
    ag__launch_adopted a2 = {.id = "r2",
                             .dir = cdir("r2"),
                             .pid = s2.pid,
                             .starttime = s2.starttime,
                             .limits = s2.limits,
                             .running = true};
    CHECK_OK(ag__launch_adopt(l2, &a1));
    CHECK_OK(ag__launch_adopt(l2, &a2));
    CHECK_EQ(ag__launch_adopt(l2, &a2), AG_E_EXISTS);
    ag__launch_status st;
    CHECK_OK(ag__launch_wait(l2, "r1", 10000, &st));
    CHECK_EQ(st.exit_status, 4);
    CHECK_CONTAINS(st.diagnostics, "exited with code 4");
    CHECK_OK(ag__launch_status_get(l2, "r2", &st));
    CHECK(st.running);
    CHECK_OK(ag__launch_stop(l2, "r2", AG__EXIT_STOPPED));
    CHECK_OK(ag__launch_wait(l2, "r2", 10000, &st));
    CHECK_EQ(st.exit_status, AG__EXIT_STOPPED);
    for (int i = 0; i < 200 && alive(gc); i++)
        usleep(10000);
    CHECK(!alive(gc));
    ag__launcher_free(l2);
    /* they were this process's children after all: reap them */
    while (waitpid(-1, NULL, 0) > 0)
        ;
    check_no_children();
}
