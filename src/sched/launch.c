/*
 * The container launcher (launch.h): directories and files, fork and exec
 * into a process group of its own, cgroup v2 or rlimit limits, and a reaper
 * thread that turns ended processes into YARN exit statuses.
 *
 * Invariants:
 *   1. A process in the table is reaped only by the reaper thread, and only
 *      after the rest of its process group (and cgroup) has been sent
 *      SIGKILL, which is done while the leader is still a zombie (waitid
 *      with WNOWAIT) so that its pid, which is the group's id, is not reused.
 *   2. Between fork and exec the child only makes async-signal-safe calls:
 *      everything it needs (argv, envp, the resolved path, open descriptors)
 *      is prepared by the parent before the fork.
 *   3. The launcher's mutex guards the table; the reaper and the callers
 *      take it, and no other lock is taken under it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "argot/base.h"
#include "launch.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define REAP_POLL_MS 20
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

struct proc {
    char *id;
    pid_t pid;
    bool running;
    int exit_status;
    char diagnostics[512];
    char limits[256];
    char cgroup[PATH_MAX]; /* "" without one */
    bool stopping;
    int stop_status;              /* AG__EXIT_* when stopping */
    uint64_t kill_at_ms;          /* monotonic: SIGKILL then */
    bool killed;                  /* SIGKILL sent */
    char dir[PATH_MAX];           /* the container's directory */
    unsigned long long starttime; /* /proc/<pid>/stat's, against pid reuse */
    bool adopted;                 /* started by an earlier NM: not our child, polled */
    bool wrapped;                 /* run under the exit-status-recording shell */
    bool detached;                /* left running on free (recovery) */
    struct proc *next;
};

struct ag__launcher {
    pthread_mutex_t mu;
    pthread_cond_t changed; /* a process ended, or the reaper should look now */
    pthread_t reaper;
    bool quit;
    void (*ended)(void *ud); /* opts' */
    void *ended_ud;
    uint64_t grace_ms;
    bool cgroup;      /* containers get child cgroups of parent */
    bool record_exit; /* wrap commands to record their exit status */
    bool no_rlimit;   /* no RLIMIT_AS without cgroups */
    char parent[PATH_MAX];
    char limits[PATH_MAX + 64];
    struct proc *procs;
};

/* ---- cgroups ---------------------------------------------------------------- */

/* Writes s to path (a cgroup control file). 0 or -errno. */
static int write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = strlen(s);
    ssize_t w = write(fd, s, n);
    int e = w == (ssize_t)n ? 0 : (w < 0 ? -errno : -EIO);
    close(fd);
    return e;
}

/* Reads up to cap-1 bytes of path into buf. 0 or -errno. */
static int read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t r = read(fd, buf, cap - 1);
    int e = r < 0 ? -errno : 0;
    buf[r < 0 ? 0 : r] = '\0';
    close(fd);
    return e;
}

/* Does the space-separated list hold word? */
static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
        bool start = p == list || p[-1] == ' ' || p[-1] == '\n';
        bool end = p[n] == '\0' || p[n] == ' ' || p[n] == '\n';
        if (start && end)
            return true;
    }
    return false;
}

/* Decides whether containers can get cgroup v2 limits under parent: its
 * own parent must be a writable cgroup2 directory with memory and cpu in
 * its subtree_control, and parent (created if missing) must accept them in
 * its own subtree_control. Sets l->cgroup and l->limits. */
static void cgroup_detect(ag__launcher *l, const char *parent)
{
    char up[PATH_MAX], path[PATH_MAX + 32], ctl[512];
    struct statfs fs;
    snprintf(l->limits, sizeof(l->limits), "rlimits (cgroup: off)");
    if (!parent || !parent[0])
        return;
    if (strlen(parent) >= sizeof(l->parent) - 128) {
        snprintf(l->limits, sizeof(l->limits), "rlimits (cgroup parent path too long)");
        return;
    }
    snprintf(up, sizeof(up), "%s", parent);
    char *slash = strrchr(up, '/');
    if (!slash || slash == up) {
        snprintf(l->limits, sizeof(l->limits), "rlimits (%s: not a cgroup below the root)", parent);
        return;
    }
    *slash = '\0';
    if (statfs(up, &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
        snprintf(l->limits, sizeof(l->limits), "rlimits (%s is not on a cgroup2 file system)", up);
        return;
    }
    snprintf(path, sizeof(path), "%s/cgroup.subtree_control", up);
    if (read_file(path, ctl, sizeof(ctl)) != 0 || !has_word(ctl, "memory") ||
        !has_word(ctl, "cpu")) {
        snprintf(l->limits, sizeof(l->limits),
                 "rlimits (%s does not delegate the memory and cpu controllers)", up);
        return;
    }
    if (mkdir(parent, 0755) != 0 && errno != EEXIST) {
        snprintf(l->limits, sizeof(l->limits), "rlimits (cannot create %s: %s)", parent,
                 strerror(errno));
        return;
    }
    snprintf(path, sizeof(path), "%s/cgroup.subtree_control", parent);
    int e = write_file(path, "+memory +cpu");
    if (e != 0) {
        snprintf(l->limits, sizeof(l->limits), "rlimits (cannot enable controllers in %.3000s: %s)",
                 path, strerror(-e));
        return;
    }
    l->cgroup = true;
    snprintf(l->parent, sizeof(l->parent), "%s", parent);
    snprintf(l->limits, sizeof(l->limits), "cgroup2 %s", parent);
}

/* Sends SIGKILL to every process listed in the cgroup (cgroup.kill where
 * the kernel has it, else one by one). */
static void cgroup_kill(const char *cg)
{
    char path[PATH_MAX + 32], buf[4096];
    snprintf(path, sizeof(path), "%s/cgroup.kill", cg);
    if (write_file(path, "1") == 0)
        return;
    snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
    if (read_file(path, buf, sizeof(buf)) != 0)
        return;
    for (char *p = buf; *p;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 0)
            kill((pid_t)pid, SIGKILL);
        p = end;
    }
}

/* The oom_kill count of the cgroup's memory.events (0 if unknown). */
static long cgroup_oom_kills(const char *cg)
{
    char path[PATH_MAX + 32], buf[1024];
    snprintf(path, sizeof(path), "%s/memory.events", cg);
    if (read_file(path, buf, sizeof(buf)) != 0)
        return 0;
    const char *p = strstr(buf, "oom_kill ");
    return p ? strtol(p + 9, NULL, 10) : 0;
}

/* ---- the reaper ------------------------------------------------------------------ */

/* The start time of pid (field 22 of /proc/<pid>/stat, clock ticks since
 * boot), 0 if it is gone or a zombie. */
static unsigned long long proc_starttime(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (read_file(path, buf, sizeof(buf)) != 0)
        return 0;
    const char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
        return 0;
    p += 2; /* field 3, the state */
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p ? strtoull(p, NULL, 10) : 0;
}

/* The exit status the wrapping shell recorded in dir/.exit_status: true
 * with *code if there is one. */
static bool read_exit_file(const char *dir, int *code)
{
    char path[PATH_MAX + 16], buf[32], *end;
    snprintf(path, sizeof(path), "%s/.exit_status", dir);
    if (read_file(path, buf, sizeof(buf)) != 0)
        return false;
    long v = strtol(buf, &end, 10);
    if (end == buf || v < 0 || v > 255)
        return false;
    *code = (int)v;
    return true;
}

/* The ended process p: its status into p, from the wait status ws
 * (have_ws false for an adopted process, which is not our child). */
static void finish(struct proc *p, bool have_ws, int ws)
{
    char why[160];
    int code;
    if ((p->wrapped || p->adopted) && read_exit_file(p->dir, &code)) {
        p->exit_status = code;
        if (code > 128)
            snprintf(why, sizeof(why), "exited with code %d (killed by signal %d)", code,
                     code - 128);
        else
            snprintf(why, sizeof(why), "exited with code %d", code);
    } else if (!have_ws) {
        p->exit_status = -1000;
        snprintf(why, sizeof(why),
                 "ended while no node manager watched it: exit status "
                 "unknown");
    } else if (WIFEXITED(ws)) {
        p->exit_status = WEXITSTATUS(ws);
        snprintf(why, sizeof(why), "exited with code %d", p->exit_status);
    } else if (WIFSIGNALED(ws)) {
        p->exit_status = 128 + WTERMSIG(ws);
        snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(ws));
    } else {
        p->exit_status = -1000;
        snprintf(why, sizeof(why), "ended with wait status 0x%x", (unsigned)ws);
    }
    if (p->cgroup[0] && cgroup_oom_kills(p->cgroup) > 0) {
        p->exit_status = AG__EXIT_MEMORY;
        snprintf(p->diagnostics, sizeof(p->diagnostics),
                 "killed for exceeding its memory limit (%s); limits: %s", why, p->limits);
    } else if (p->stopping) {
        p->exit_status = p->stop_status;
        snprintf(p->diagnostics, sizeof(p->diagnostics), "stopped by request (%s%s); limits: %s",
                 why, p->killed ? " after SIGKILL" : " after SIGTERM", p->limits);
    } else {
        snprintf(p->diagnostics, sizeof(p->diagnostics), "%s; limits: %s", why, p->limits);
    }
    if (p->cgroup[0] && rmdir(p->cgroup) != 0)
        AG_LOG(AG_LOG_WARN, "nm", "cgroup_remove_failed id=%s path=%s err=\"%s\"", p->id, p->cgroup,
               strerror(errno));
    p->running = false;
    AG_LOG(AG_LOG_INFO, "nm", "container_exit id=%s pid=%d exit_status=%d diagnostics=\"%s\"",
           p->id, (int)p->pid, p->exit_status, p->diagnostics);
}

/* One look at every running process; l->mu held. Whether any ended. */
static bool reap_once(ag__launcher *l)
{
    uint64_t now = ag_now_ms();
    bool any = false;
    for (struct proc *p = l->procs; p; p = p->next) {
        if (!p->running)
            continue;
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            si.si_pid == p->pid) {
            /* the leader is a zombie: its group id cannot be reused yet */
            kill(-p->pid, SIGKILL);
            if (p->cgroup[0])
                cgroup_kill(p->cgroup);
            int ws = 0;
            if (waitpid(p->pid, &ws, 0) == p->pid)
                finish(p, true, ws);
            any = true;
            continue;
        }
        if (p->adopted && proc_starttime(p->pid) != p->starttime) {
            /* gone (reaped by whoever inherited it) or its pid reused */
            if (p->cgroup[0])
                cgroup_kill(p->cgroup);
            finish(p, false, 0);
            any = true;
            continue;
        }
        if (p->stopping && !p->killed && now >= p->kill_at_ms) {
            if (!p->adopted || proc_starttime(p->pid) == p->starttime)
                kill(-p->pid, SIGKILL);
            if (p->cgroup[0])
                cgroup_kill(p->cgroup);
            p->killed = true;
        }
    }
    if (any)
        pthread_cond_broadcast(&l->changed);
    return any;
}

static void *reaper_main(void *arg)
{
    ag__launcher *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->quit) {
        if (reap_once(l) && l->ended) {
            pthread_mutex_unlock(&l->mu);
            l->ended(l->ended_ud);
            pthread_mutex_lock(&l->mu);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += REAP_POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&l->changed, &l->mu, &ts);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

ag__launcher *ag__launcher_new(const ag__launcher_opts *o)
{
    ag__launcher *l = ag_calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->grace_ms = o && o->kill_grace_ms ? o->kill_grace_ms : 2000;
    l->record_exit = o && o->record_exit;
    l->no_rlimit = o && o->no_rlimit;
    l->ended = o ? o->ended : NULL;
    l->ended_ud = o ? o->ended_ud : NULL;
    cgroup_detect(l, o ? o->cgroup_parent : NULL);
    if (pthread_mutex_init(&l->mu, NULL) != 0)
        goto err_free;
    if (pthread_cond_init(&l->changed, NULL) != 0)
        goto err_mutex;
    if (pthread_create(&l->reaper, NULL, reaper_main, l) != 0)
        goto err_cond;
    AG_LOG(AG_LOG_INFO, "nm", "launcher limits=\"%s\" kill_grace_ms=%llu", l->limits,
           (unsigned long long)l->grace_ms);
    return l;
err_cond:
    pthread_cond_destroy(&l->changed);
err_mutex:
    pthread_mutex_destroy(&l->mu);
err_free:
    ag_free(l);
    return NULL;
}

void ag__launcher_free(ag__launcher *l)
{
    if (!l)
        return;
    ag__launch_stop_all(l, AG__EXIT_SHUTDOWN);
    pthread_mutex_lock(&l->mu);
    l->quit = true;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->reaper, NULL);
    /* a process that outlived SIGKILL's grace (stuck in the kernel) is
     * killed again and reaped here, so none is left a zombie */
    for (struct proc *p = l->procs, *next; p; p = next) {
        next = p->next;
        if (p->running && !p->detached && !p->adopted) {
            kill(-p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            if (p->cgroup[0])
                rmdir(p->cgroup);
        }
        ag_free(p->id);
        ag_free(p);
    }
    pthread_cond_destroy(&l->changed);
    pthread_mutex_destroy(&l->mu);
    ag_free(l);
}

bool ag__launcher_uses_cgroup(const ag__launcher *l)
{
    return l->cgroup;
}

const char *ag__launcher_limits(const ag__launcher *l)
{
    return l->limits;
}

/* ---- starting ---------------------------------------------------------------------- */

/* mkdir -p path (mode 0750). 0 or -errno. */
static int mkdirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0750) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* A relative path without "." or ".." components or empty ones. */
static bool safe_relative(const char *p)
{
    if (!p[0] || p[0] == '/')
        return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s += n + (e ? 1 : 0);
        if (e && !*s)
            return false;
    }
    return true;
}

/* Writes the spec's files into dir. 0 or a code with err set. */
static int write_files(const ag__launch_spec *s, char *err, size_t cap)
{
    char path[PATH_MAX];
    for (size_t i = 0; i < s->nfiles; i++) {
        const ag__launch_file *f = &s->files[i];
        if (!safe_relative(f->path)) {
            snprintf(err, cap, "file '%s': not a relative path inside the container", f->path);
            return AG_E_INVAL;
        }
        if (snprintf(path, sizeof(path), "%s/%s", s->dir, f->path) >= (int)sizeof(path)) {
            snprintf(err, cap, "file '%s': path too long", f->path);
            return AG_E_INVAL;
        }
        char *slash = strrchr(path, '/');
        *slash = '\0';
        int e = mkdirs(path);
        *slash = '/';
        mode_t mode = f->mode ? (mode_t)(f->mode & 07777) : 0644;
        int fd =
            e == 0 ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode) : -1;
        if (fd < 0) {
            snprintf(err, cap, "%s: %s", path, strerror(e ? -e : errno));
            return AG_E_IO;
        }
        size_t off = 0;
        while (off < f->len) {
            ssize_t w = write(fd, f->data + off, f->len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                snprintf(err, cap, "%s: %s", path, strerror(errno));
                close(fd);
                return AG_E_IO;
            }
            off += (size_t)w;
        }
        /* the mode asked for, whatever the umask */
        fchmod(fd, mode);
        close(fd);
    }
    return 0;
}

/* The environment: PATH and HOME defaults, then the spec's entries, a
 * later one replacing an earlier one of the same name. An ag_malloc'd,
 * NULL-terminated array of pointers into the spec and into home (which
 * must outlive it). NULL on allocation failure. */
static char **build_env(const ag__launch_spec *s, char *home)
{
    size_t n = 0, cap = s->nenv + 3;
    char **env = ag_calloc(cap, sizeof(*env));
    if (!env)
        return NULL;
    env[n++] = (char *)"PATH=" DEFAULT_PATH;
    env[n++] = home;
    for (size_t i = 0; i < s->nenv; i++) {
        const char *eq = strchr(s->env[i], '=');
        size_t klen = eq ? (size_t)(eq - s->env[i]) + 1 : strlen(s->env[i]);
        size_t j = 0;
        while (j < n && strncmp(env[j], s->env[i], klen) != 0)
            j++;
        env[j] = (char *)s->env[i];
        if (j == n)
            n++;
    }
    env[n] = NULL;
    return env;
}

/* argv[0] resolved: as given when it holds a '/' (relative to the
 * container's directory), else the first executable of that name in the
 * environment's PATH. 0 or AG_E_NOENT with err set. */
static int resolve(const ag__launch_spec *s, char *const *env, char *out, size_t cap, char *err,
                   size_t errcap)
{
    const char *prog = s->argv[0];
    if (strchr(prog, '/')) {
        if (prog[0] == '/')
            snprintf(out, cap, "%s", prog);
        else
            snprintf(out, cap, "%s/%s", s->dir, prog);
        if (access(out, X_OK) == 0)
            return 0;
        snprintf(err, errcap, "program '%s': %s", prog, strerror(errno));
        return AG_E_NOENT;
    }
    const char *path = DEFAULT_PATH;
    for (size_t i = 0; env[i]; i++)
        if (strncmp(env[i], "PATH=", 5) == 0)
            path = env[i] + 5;
    for (const char *d = path; *d;) {
        const char *colon = strchr(d, ':');
        size_t n = colon ? (size_t)(colon - d) : strlen(d);
        if (n > 0 && snprintf(out, cap, "%.*s/%s", (int)n, d, prog) < (int)cap) {
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
                return 0;
        }
        d += n + (colon ? 1 : 0);
    }
    snprintf(err, errcap, "program '%s' not found in PATH=%s", prog, path);
    return AG_E_NOENT;
}

/* What the child needs, all prepared before fork (invariant 2). */
struct child_ctx {
    const char *exe;
    char *const *argv;
    char *const *env;
    const char *dir;
    int in_fd, out_fd, err_fd;
    int procs_fd;     /* the cgroup's cgroup.procs, or -1 */
    int report_fd;    /* the error pipe's writing end (close-on-exec) */
    struct rlimit as; /* RLIMIT_AS to set when as_set */
    bool as_set;
};

/* In the child after fork: only async-signal-safe calls. Never returns. */
static void child_run(const struct child_ctx *c)
{
    int stage = 0;
    sigset_t none;
    sigemptyset(&none);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < 65; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0)
        goto fail;
    stage = 1;
    if (c->procs_fd >= 0 && write(c->procs_fd, "0", 1) != 1)
        goto fail;
    stage = 2;
    if (c->as_set && setrlimit(RLIMIT_AS, &c->as) != 0)
        goto fail;
    stage = 3;
    if (chdir(c->dir) != 0)
        goto fail;
    stage = 4;
    if (dup2(c->in_fd, 0) < 0 || dup2(c->out_fd, 1) < 0 || dup2(c->err_fd, 2) < 0)
        goto fail;
    /* nothing of the NM's leaks into the container but the error pipe,
     * which closes on exec */
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = 3; fd < 4096; fd++)
            if (fd != c->report_fd)
                fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    stage = 5;
    execve(c->exe, c->argv, c->env);
fail:;
    int report[2] = {stage, errno};
    if (write(c->report_fd, report, sizeof(report)) < 0)
        _exit(127);
    _exit(127);
}

/* Sets up the cgroup of s in p->cgroup and opens its cgroup.procs into
 * *fd. 0 or a code with err set. */
static int cgroup_prepare(ag__launcher *l, const ag__launch_spec *s, struct proc *p, int *fd,
                          char *err, size_t cap)
{
    char path[PATH_MAX + 32], val[64];
    if (snprintf(p->cgroup, sizeof(p->cgroup), "%s/%s", l->parent, s->id) >=
        (int)sizeof(p->cgroup)) {
        snprintf(err, cap, "cgroup of %s: path too long", s->id);
        p->cgroup[0] = '\0';
        return AG_E_INVAL;
    }
    if (mkdir(p->cgroup, 0755) != 0 && errno != EEXIST) {
        snprintf(err, cap, "cgroup %s: %s", p->cgroup, strerror(errno));
        p->cgroup[0] = '\0';
        return AG_E_SYS;
    }
    int e = 0;
    if (s->memory_mb > 0) {
        snprintf(path, sizeof(path), "%s/memory.max", p->cgroup);
        snprintf(val, sizeof(val), "%lld", (long long)s->memory_mb * 1024 * 1024);
        e = write_file(path, val);
        /* no swapping past the limit where the kernel has swap accounting */
        snprintf(path, sizeof(path), "%s/memory.swap.max", p->cgroup);
        if (e == 0)
            write_file(path, "0");
    }
    if (e == 0 && s->vcores > 0) {
        snprintf(path, sizeof(path), "%s/cpu.max", p->cgroup);
        snprintf(val, sizeof(val), "%lld 100000", (long long)s->vcores * 100000);
        e = write_file(path, val);
    }
    snprintf(path, sizeof(path), "%s/cgroup.procs", p->cgroup);
    *fd = e == 0 ? open(path, O_WRONLY | O_CLOEXEC) : -1;
    if (e == 0 && *fd < 0)
        e = -errno;
    if (e != 0) {
        snprintf(err, cap, "cgroup: %s: %s", path, strerror(-e));
        rmdir(p->cgroup);
        p->cgroup[0] = '\0';
        return AG_E_SYS;
    }
    snprintf(p->limits, sizeof(p->limits), "cgroup2 %.150s memory.max=%lldMB cpu.max=%lld/100000",
             p->cgroup, (long long)s->memory_mb, (long long)s->vcores * 100000);
    return 0;
}

/* Forks and execs the prepared child; waits on the error pipe. 0 or a code
 * with err set. */
static int spawn(struct child_ctx *c, const char *prog, pid_t *pid, char *err, size_t cap)
{
    static const char *const stages[] = {"setsid", "joining its cgroup", "setrlimit",
                                         "chdir",  "redirecting stdio",  "exec"};
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(err, cap, "pipe: %s", strerror(errno));
        return AG_E_SYS;
    }
    c->report_fd = pfd[1];
    pid_t child = fork();
    if (child < 0) {
        snprintf(err, cap, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return AG_E_SYS;
    }
    if (child == 0)
        child_run(c);
    close(pfd[1]);
    int report[2];
    ssize_t r;
    do {
        r = read(pfd[0], report, sizeof(report));
    } while (r < 0 && errno == EINTR);
    close(pfd[0]);
    if (r == (ssize_t)sizeof(report)) {
        int stage = report[0] >= 0 && report[0] <= 5 ? report[0] : 5;
        snprintf(err, cap, "%s: %s: %s", prog, stages[stage], strerror(report[1]));
        waitpid(child, NULL, 0);
        return report[1] == EACCES || report[1] == EPERM ? AG_E_PERM : AG_E_SYS;
    }
    *pid = child;
    return 0;
}

/* Opens the container's stdin (/dev/null), stdout and stderr files. */
static int open_stdio(const char *dir, int fds[3], char *err, size_t cap)
{
    char path[PATH_MAX];
    static const char *const names[] = {NULL, "stdout", "stderr"};
    fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    fds[1] = fds[2] = -1;
    for (int i = 1; i < 3 && fds[0] >= 0; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        fds[i] = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
        if (fds[i] < 0)
            break;
    }
    if (fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0)
        return 0;
    snprintf(err, cap, "%s: %s", fds[0] < 0 ? "/dev/null" : path, strerror(errno));
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return AG_E_IO;
}

static struct proc *find(ag__launcher *l, const char *id)
{
    for (struct proc *p = l->procs; p; p = p->next)
        if (strcmp(p->id, id) == 0)
            return p;
    return NULL;
}

static bool valid_id(const char *id)
{
    if (!id[0] || strlen(id) > 128 || id[0] == '.')
        return false;
    for (const char *s = id; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

/* Everything after the table checks: directory, files, limits, spawn. The
 * caller holds l->mu (so that one id starts once). */
static int start_locked(ag__launcher *l, const ag__launch_spec *s, struct proc *p, char *err,
                        size_t cap)
{
    char exe[PATH_MAX], home[PATH_MAX + 8];
    int stdio[3] = {-1, -1, -1}, procs_fd = -1, rc;
    int e = mkdirs(s->dir);
    if (e != 0) {
        snprintf(err, cap, "%s: %s", s->dir, strerror(-e));
        return AG_E_IO;
    }
    if ((rc = write_files(s, err, cap)) < 0)
        return rc;
    snprintf(home, sizeof(home), "HOME=%s", s->dir);
    char **env = build_env(s, home);
    /* with record_exit: sh -c '"$@"; echo $? > .exit_status' argot-container EXE ARGS... */
    char **argv = ag_calloc(s->argc + 5, sizeof(*argv));
    if (!env || !argv) {
        snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
        rc = AG_E_NOMEM;
        goto out_free;
    }
    for (size_t i = 0; i < s->argc; i++)
        argv[i] = (char *)s->argv[i];
    if ((rc = resolve(s, env, exe, sizeof(exe), err, cap)) < 0)
        goto out_free;
    const char *run = exe;
    if (l->record_exit) {
        static const char wrap[] = "\"$@\"; echo $? > .exit_status";
        memmove(argv + 5, argv + 1, (s->argc - 1) * sizeof(*argv));
        argv[0] = (char *)"sh";
        argv[1] = (char *)"-c";
        argv[2] = (char *)wrap;
        argv[3] = (char *)"argot-container";
        argv[4] = exe;
        run = "/bin/sh";
        char stale[PATH_MAX + 16];
        snprintf(stale, sizeof(stale), "%s/.exit_status", s->dir);
        unlink(stale);
        p->wrapped = true;
    }
    if ((rc = open_stdio(s->dir, stdio, err, cap)) < 0)
        goto out_free;
    struct child_ctx c = {.exe = run,
                          .argv = argv,
                          .env = env,
                          .dir = s->dir,
                          .in_fd = stdio[0],
                          .out_fd = stdio[1],
                          .err_fd = stdio[2],
                          .procs_fd = -1,
                          .report_fd = -1};
    if (l->cgroup) {
        if ((rc = cgroup_prepare(l, s, p, &procs_fd, err, cap)) < 0)
            goto out_close;
        c.procs_fd = procs_fd;
    } else if (s->memory_mb > 0 && l->no_rlimit) {
        snprintf(p->limits, sizeof(p->limits), "none (memory_check off; %.200s)", l->limits);
    } else if (s->memory_mb > 0) {
        c.as.rlim_cur = c.as.rlim_max = (rlim_t)s->memory_mb * 1024 * 1024;
        c.as_set = true;
        snprintf(p->limits, sizeof(p->limits), "rlimit RLIMIT_AS=%lldMB (%.200s)",
                 (long long)s->memory_mb, l->limits);
    } else {
        snprintf(p->limits, sizeof(p->limits), "none (no memory asked; %.200s)", l->limits);
    }
    rc = spawn(&c, s->argv[0], &p->pid, err, cap);
    if (rc == 0) {
        p->starttime = proc_starttime(p->pid);
        snprintf(p->dir, sizeof(p->dir), "%s", s->dir);
    }
    if (rc < 0 && p->cgroup[0]) {
        rmdir(p->cgroup);
        p->cgroup[0] = '\0';
    }
    if (procs_fd >= 0)
        close(procs_fd);
out_close:
    for (int i = 0; i < 3; i++)
        close(stdio[i]);
out_free:
    ag_free(argv);
    ag_free(env);
    return rc;
}

int ag__launch_start(ag__launcher *l, const ag__launch_spec *s, char *err, size_t cap)
{
    if (!s->id || !valid_id(s->id) || !s->dir || !s->dir[0] || s->argc == 0 || !s->argv[0] ||
        !s->argv[0][0] || s->memory_mb < 0 || s->vcores < 0) {
        snprintf(err, cap, "container '%s': bad launch spec (id, directory or command)",
                 s->id ? s->id : "");
        return AG_E_INVAL;
    }
    struct proc *p = ag_calloc(1, sizeof(*p));
    char *id = ag_strdup(s->id);
    if (!p || !id) {
        ag_free(p);
        ag_free(id);
        snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
        return AG_E_NOMEM;
    }
    p->id = id;
    pthread_mutex_lock(&l->mu);
    int rc = AG_E_EXISTS;
    if (find(l, s->id))
        snprintf(err, cap, "container %s: already started", s->id);
    else
        rc = start_locked(l, s, p, err, cap);
    if (rc == 0) {
        p->running = true;
        p->next = l->procs;
        l->procs = p;
        AG_LOG(AG_LOG_INFO, "nm", "container_start id=%s pid=%d dir=%s limits=\"%s\"", s->id,
               (int)p->pid, s->dir, p->limits);
    }
    pthread_mutex_unlock(&l->mu);
    if (rc < 0) {
        ag_free(p->id);
        ag_free(p);
    }
    return rc;
}

/* ---- watching and stopping ------------------------------------------------------------- */

static void fill(const struct proc *p, ag__launch_status *st)
{
    st->pid = p->pid;
    st->running = p->running;
    st->exit_status = p->exit_status;
    snprintf(st->diagnostics, sizeof(st->diagnostics), "%s", p->diagnostics);
    snprintf(st->limits, sizeof(st->limits), "%s", p->limits);
    st->starttime = p->starttime;
    snprintf(st->cgroup, sizeof(st->cgroup), "%.500s", p->cgroup);
    snprintf(st->dir, sizeof(st->dir), "%.500s", p->dir);
}

int ag__launch_status_get(ag__launcher *l, const char *id, ag__launch_status *st)
{
    pthread_mutex_lock(&l->mu);
    struct proc *p = find(l, id);
    if (p)
        fill(p, st);
    pthread_mutex_unlock(&l->mu);
    return p ? 0 : AG_E_NOENT;
}

/* l->mu held. */
static void stop_locked(ag__launcher *l, struct proc *p, int exit_status)
{
    if (!p->running || p->stopping)
        return;
    p->stopping = true;
    p->stop_status = exit_status;
    p->kill_at_ms = ag_now_ms() + l->grace_ms;
    if (!p->adopted || proc_starttime(p->pid) == p->starttime)
        kill(-p->pid, SIGTERM);
    AG_LOG(AG_LOG_INFO, "nm", "container_stop id=%s pid=%d exit_status=%d grace_ms=%llu", p->id,
           (int)p->pid, exit_status, (unsigned long long)l->grace_ms);
}

int ag__launch_stop(ag__launcher *l, const char *id, int exit_status)
{
    pthread_mutex_lock(&l->mu);
    struct proc *p = find(l, id);
    if (p)
        stop_locked(l, p, exit_status);
    pthread_mutex_unlock(&l->mu);
    return p ? 0 : AG_E_NOENT;
}

/* Waits on l->changed until deadline (l->mu held). False once it passed. */
static bool wait_changed(ag__launcher *l, ag_deadline d)
{
    if (ag_deadline_expired(d))
        return false;
    uint64_t ms = ag_deadline_remaining_ms(d);
    if (ms > REAP_POLL_MS * 5)
        ms = REAP_POLL_MS * 5;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&l->changed, &l->mu, &ts);
    return true;
}

int ag__launch_wait(ag__launcher *l, const char *id, uint64_t timeout_ms, ag__launch_status *st)
{
    ag_deadline d = ag_deadline_in_ms(timeout_ms);
    int rc = AG_E_TIMEDOUT;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        struct proc *p = find(l, id);
        if (!p) {
            rc = AG_E_NOENT;
            break;
        }
        if (!p->running) {
            if (st)
                fill(p, st);
            rc = 0;
            break;
        }
        if (!wait_changed(l, d))
            break;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void ag__launch_stop_all(ag__launcher *l, int exit_status)
{
    ag_deadline d = ag_deadline_in_ms(l->grace_ms + 1000);
    pthread_mutex_lock(&l->mu);
    for (struct proc *p = l->procs; p; p = p->next)
        if (!p->detached)
            stop_locked(l, p, exit_status);
    for (;;) {
        bool running = false;
        for (struct proc *p = l->procs; p; p = p->next)
            running |= p->running && !p->detached;
        if (!running || !wait_changed(l, d))
            break;
    }
    pthread_mutex_unlock(&l->mu);
}

int ag__launch_forget(ag__launcher *l, const char *id)
{
    int rc = AG_E_NOENT;
    pthread_mutex_lock(&l->mu);
    for (struct proc **pp = &l->procs; *pp; pp = &(*pp)->next) {
        struct proc *p = *pp;
        if (strcmp(p->id, id) != 0)
            continue;
        rc = AG_E_STATE;
        if (!p->running) {
            *pp = p->next;
            ag_free(p->id);
            ag_free(p);
            rc = 0;
        }
        break;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

size_t ag__launch_running(ag__launcher *l)
{
    size_t n = 0;
    pthread_mutex_lock(&l->mu);
    for (struct proc *p = l->procs; p; p = p->next)
        n += p->running;
    pthread_mutex_unlock(&l->mu);
    return n;
}

int ag__launch_adopt(ag__launcher *l, const ag__launch_adopted *a)
{
    if (!a->id || !valid_id(a->id) || !a->dir || a->pid <= 0)
        return AG_E_INVAL;
    struct proc *p = ag_calloc(1, sizeof(*p));
    char *id = ag_strdup(a->id);
    if (!p || !id) {
        ag_free(p);
        ag_free(id);
        return AG_E_NOMEM;
    }
    p->id = id;
    p->pid = a->pid;
    p->starttime = a->starttime;
    p->adopted = true;
    p->running = a->running;
    p->exit_status = a->exit_status;
    snprintf(p->dir, sizeof(p->dir), "%s", a->dir);
    snprintf(p->cgroup, sizeof(p->cgroup), "%s", a->cgroup ? a->cgroup : "");
    snprintf(p->limits, sizeof(p->limits), "%s", a->limits ? a->limits : "");
    snprintf(p->diagnostics, sizeof(p->diagnostics), "%s", a->diagnostics ? a->diagnostics : "");
    pthread_mutex_lock(&l->mu);
    int rc = find(l, a->id) ? AG_E_EXISTS : 0;
    if (rc == 0) {
        p->next = l->procs;
        l->procs = p;
        AG_LOG(AG_LOG_INFO, "nm", "container_adopt id=%s pid=%d running=%d", p->id, (int)p->pid,
               (int)p->running);
    }
    pthread_mutex_unlock(&l->mu);
    if (rc < 0) {
        ag_free(p->id);
        ag_free(p);
    }
    return rc;
}

void ag__launch_detach_all(ag__launcher *l)
{
    pthread_mutex_lock(&l->mu);
    for (struct proc *p = l->procs; p; p = p->next)
        if (p->running)
            p->detached = true;
    pthread_mutex_unlock(&l->mu);
}
