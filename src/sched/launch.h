/*
 * The node manager's container launcher (launch.c), internal to sched: it
 * starts a container's process from a launch spec and watches it until it
 * ends. It knows processes, directories and limits, not protobuf, so unit
 * tests drive it directly (tests/unit/sched/launch_test.c).
 *
 * A container is:
 *   1. a directory (created, with its parents) holding the spec's files and
 *      the process's output, `stdout` and `stderr`;
 *   2. one process, started with that directory as its working directory, in
 *      a session and process group of its own (setsid), its argv[0] looked
 *      up in the container's PATH, its environment PATH and HOME (defaults)
 *      then the spec's entries (a later entry wins over an earlier one of the
 *      same name), every signal unblocked and at its default disposition,
 *      stdin /dev/null and no other descriptor of the NM;
 *   3. limits: with cgroup v2 (the launcher's parent cgroup, when the machine
 *      allows it), a child cgroup named after the container with memory.max
 *      and cpu.max, the process placed in it before exec; otherwise
 *      RLIMIT_AS from the memory. Which one a container got is in its
 *      `limits` text (and in its diagnostics).
 *
 * Ending: the reaper thread polls the processes every 20 ms. When a
 * container's process has exited (seen with WNOWAIT, before reaping, so its
 * pid cannot be reused yet) whatever is left of its process group (and of
 * its cgroup) is killed, then it is reaped. A stop sends SIGTERM to the
 * group and, kill_grace_ms later, SIGKILL. Exit status: the process's exit
 * code; 128 + N for a process killed by signal N; the stop's status (YARN's
 * -105, -106, -107) for a stopped one; -104 when the cgroup's memory.events
 * counted an OOM kill.
 *
 * Recovery: with record_exit, each command runs under a shell that writes
 * its exit status to .exit_status in its directory; ag__launch_detach_all
 * leaves the containers running when the launcher is freed, and another
 * launcher (the next NM) takes them over with ag__launch_adopt. An adopted
 * process is not our child: the reaper polls /proc/<pid>/stat, and takes it
 * as ended when it is gone, a zombie, or a different process (start time),
 * its status then read from .exit_status.
 *
 * Threads: every function may be called from any thread; one mutex guards
 * the table, the reaper thread takes it too. Nothing calls back.
 */
#ifndef ARGOT_SCHED_LAUNCH_H
#define ARGOT_SCHED_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* YARN's ContainerExitStatus values the launcher produces. */
#define AG__EXIT_MEMORY   (-104) /* killed for exceeding its memory */
#define AG__EXIT_STOPPED  (-105) /* killed by the AM or the RM */
#define AG__EXIT_APP_DONE (-106) /* killed for its application's attempt ending */
#define AG__EXIT_SHUTDOWN (-107) /* killed on its node's shutdown */

typedef struct ag__launcher ag__launcher;

typedef struct ag__launcher_opts {
    const char *cgroup_parent; /* e.g. "/sys/fs/cgroup/argot-nm"; NULL: rlimits only */
    uint64_t kill_grace_ms;    /* SIGTERM to SIGKILL (0: 2000) */
    bool no_rlimit;            /* without cgroups, set no RLIMIT_AS either */
    /* Run each command as sh -c '"$@"; echo $? > .exit_status' (for
     * recovery: the exit status of a container that outlived its NM is then
     * read from that file, since it is no longer the NM's child). */
    bool record_exit;
    /* Called on the reaper thread (no launcher lock held) after it saw
     * containers end: the NM's out-of-band heartbeat (may be NULL). */
    void (*ended)(void *ud);
    void *ended_ud;
} ag__launcher_opts;

/* NULL on allocation failure or when the reaper thread cannot start. Never
 * fails because of cgroups: without them, rlimits are used, and
 * ag__launcher_limits says why. */
ag__launcher *ag__launcher_new(const ag__launcher_opts *o);
/* Stops every running container (SIGTERM, SIGKILL after the grace), waits
 * for them, joins the reaper, frees. NULL does nothing. */
void ag__launcher_free(ag__launcher *l);
/* True if containers get cgroup v2 limits. */
bool ag__launcher_uses_cgroup(const ag__launcher *l);
/* "cgroup2 /sys/fs/cgroup/argot-nm", or "rlimits (why cgroups are not
 * used)". Valid while l lives. */
const char *ag__launcher_limits(const ag__launcher *l);

typedef struct ag__launch_file {
    const char *path; /* relative to the container's directory; no "..", not absolute */
    const uint8_t *data;
    size_t len;    /* bytes */
    uint32_t mode; /* 0: 0644 */
} ag__launch_file;

typedef struct ag__launch_spec {
    const char *id;          /* unique per launcher; names the cgroup ([A-Za-z0-9_.-]) */
    const char *dir;         /* the container's directory */
    const char *const *argv; /* argc > 0 entries */
    size_t argc;
    const char *const *env; /* "NAME=value" entries */
    size_t nenv;
    const ag__launch_file *files;
    size_t nfiles;
    int64_t memory_mb; /* 0: no memory limit */
    int32_t vcores;    /* 0: no CPU limit (cgroups only) */
} ag__launch_spec;

/* Starts a container and returns once its program has been executed (or has
 * failed to be). 0; AG_E_EXISTS for an id already in the table;
 * AG_E_INVAL for a bad spec; AG_E_NOENT when argv[0] is not found;
 * AG_E_SYS, AG_E_IO, AG_E_PERM otherwise; err then names the cause
 * ("program 'nosuch' not found in PATH=/usr/bin:/bin"). */
int ag__launch_start(ag__launcher *l, const ag__launch_spec *s, char *err, size_t cap);

typedef struct ag__launch_status {
    pid_t pid;
    bool running;
    int exit_status;              /* once !running */
    char diagnostics[512];        /* once !running: "exited with code 3; limits: ..." */
    char limits[256];             /* what limited it */
    unsigned long long starttime; /* the process's, from /proc (pid reuse check) */
    char cgroup[512];             /* its cgroup's path, "" without */
    char dir[512];                /* its directory */
} ag__launch_status;

/* Status of id: 0 or AG_E_NOENT. */
int ag__launch_status_get(ag__launcher *l, const char *id, ag__launch_status *st);
/* Stops id: SIGTERM to its process group now, SIGKILL after the grace;
 * exit_status (AG__EXIT_*) is what it will end with. Returns at once: 0
 * (also for a container that has already ended, which keeps its status),
 * or AG_E_NOENT. */
int ag__launch_stop(ag__launcher *l, const char *id, int exit_status);
/* Waits up to timeout_ms for id to end: 0 (then *st, may be NULL),
 * AG_E_TIMEDOUT or AG_E_NOENT. */
int ag__launch_wait(ag__launcher *l, const char *id, uint64_t timeout_ms, ag__launch_status *st);
/* Stops every running container with exit_status and waits (up to the
 * grace and a second more) for them to end. */
void ag__launch_stop_all(ag__launcher *l, int exit_status);
/* Removes an ended container from the table (a running one is left):
 * 0, AG_E_STATE (running) or AG_E_NOENT. */
int ag__launch_forget(ag__launcher *l, const char *id);
/* A container an earlier node manager started (recovery): running, then
 * watched by polling /proc (it is not our child) and ended when its pid is
 * gone or holds another process (start time differs), its exit status read
 * from dir/.exit_status; or already ended, with the status recorded. */
typedef struct ag__launch_adopted {
    const char *id;
    const char *dir;
    pid_t pid;
    unsigned long long starttime;
    const char *cgroup; /* "" or NULL: none */
    const char *limits;
    bool running;
    int exit_status;         /* when !running */
    const char *diagnostics; /* when !running */
} ag__launch_adopted;

/* 0, AG_E_EXISTS, AG_E_INVAL or AG_E_NOMEM. */
int ag__launch_adopt(ag__launcher *l, const ag__launch_adopted *a);
/* Leaves every running container running when the launcher is freed
 * (recovery: the next node manager adopts them). */
void ag__launch_detach_all(ag__launcher *l);

/* Containers still running. */
size_t ag__launch_running(ag__launcher *l);

#endif
