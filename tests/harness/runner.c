/*
 * The test runner: every test in its own child process, with a timeout, a
 * private temporary directory and its output captured (shown on failure).
 *
 * Each job is (test, fail_at). Phase one runs every selected test once with
 * allocation tracking on; a test must end with no live allocation. A
 * TEST_FM test then runs again once per allocation it made in phase one,
 * with that allocation failing: each such run must end cleanly (exit 0) with
 * nothing leaked. Jobs run -j at a time; results print as they finish; the
 * last line is "N passed, N failed" (a failmalloc pass counts as one test),
 * and the exit status is 1 if anything failed.
 *
 * Usage: unit [-j N] [--timeout S] [--label WORD] [--list] [--no-fork] [FILTER...]
 * A FILTER selects tests whose name contains it.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define MAX_FM_RUNS 400

static struct ag_test *head, **tail = &head;
static char tmpdir_path[256];
static bool in_child;

void ag_test_register(struct ag_test *t)
{
    *tail = t;
    tail = &t->next;
}

void ag_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (ag_alloc_failed())
        fprintf(stderr, "  (an allocation failure was injected in this run)\n");
    fflush(NULL);
    exit(1);
}

const char *ag_test_tmpdir(void)
{
    if (!tmpdir_path[0]) {
        const char *e = getenv("AG_TEST_TMPDIR");
        if (e) {
            snprintf(tmpdir_path, sizeof(tmpdir_path), "%s", e);
        } else {
            snprintf(tmpdir_path, sizeof(tmpdir_path), "/tmp/argot-test-XXXXXX");
            if (!mkdtemp(tmpdir_path))
                FAIL("mkdtemp: %s", strerror(errno));
        }
    }
    return tmpdir_path;
}

const char *ag_test_path(const char *name)
{
    static char slots[8][512];
    static unsigned next;
    char *p = slots[next++ % 8];
    snprintf(p, sizeof(slots[0]), "%s/%s", ag_test_tmpdir(), name);
    return p;
}

const char *ag_test_write_file(const char *name, const void *data, size_t len)
{
    const char *path = ag_test_path(name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        FAIL("writing %s: %s", path, strerror(errno));
    return path;
}

/* ---- the parent's side -------------------------------------------------- */

struct shared {      /* written by the child, read by the parent */
    uint64_t allocs; /* allocations the test made */
    int64_t live;    /* allocations not freed at its end */
    int done;        /* the test function returned */
};

struct job {
    struct ag_test *t;
    uint64_t fail_at; /* 0: the plain run */
    pid_t pid;
    int out_fd;       /* captured stdout+stderr */
    uint64_t start_ns;
    struct shared *sh;
    char dir[64];
};

struct fm_state {     /* one failmalloc pass: a run per allocation */
    struct ag_test *t;
    uint64_t allocs;
    uint64_t step;
    uint64_t next;
    unsigned runs;
    bool failed;
};

static unsigned default_timeout = 60;
static unsigned passed, failed;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void print_output(int fd)
{
    char buf[4096];
    ssize_t n;
    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
}

static void child_main(struct job *j)
{
    dup2(j->out_fd, 1);
    dup2(j->out_fd, 2);
    setpgid(0, 0);
    setenv("AG_TEST_TMPDIR", j->dir, 1);
    in_child = true;
    ag_alloc_tracking(true);
    if (j->fail_at)
        ag_alloc_fail_at(j->fail_at);
    j->t->fn();
    j->sh->allocs = ag_alloc_count();
    j->sh->live = ag_alloc_live();
    j->sh->done = 1;
    fflush(NULL);
    exit(0);
}

static int job_start(struct job *j)
{
    snprintf(j->dir, sizeof(j->dir), "/tmp/argot-test-XXXXXX");
    if (!mkdtemp(j->dir))
        return -1;
    j->out_fd = memfd_create("test-output", 0);
    j->sh = mmap(NULL, sizeof(*j->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
    if (j->out_fd < 0 || j->sh == MAP_FAILED)
        return -1;
    memset(j->sh, 0, sizeof(*j->sh));
    fflush(NULL);
    j->start_ns = ag_now_ns();
    j->pid = fork();
    if (j->pid < 0)
        return -1;
    if (j->pid == 0)
        child_main(j);
    return 0;
}

/* Judges a finished job; returns true if it passed. */
static bool job_judge(struct job *j, int status, bool timed_out, char *why, size_t cap)
{
    if (timed_out) {
        unsigned tmo = j->t->timeout_s ? j->t->timeout_s : default_timeout;
        snprintf(why, cap, "timed out after %u s", tmo);
    } else if (WIFSIGNALED(status)) {
        snprintf(why, cap, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    } else if (WEXITSTATUS(status) != 0) {
        snprintf(why, cap, "exit status %d", WEXITSTATUS(status));
    } else if (!j->sh->done) {
        snprintf(why, cap, "exited before the test returned");
    } else if (j->sh->live != 0) {
        snprintf(why, cap, "%" PRId64 " allocation(s) not freed", j->sh->live);
    } else {
        return true;
    }
    return false;
}

static void job_release(struct job *j)
{
    close(j->out_fd);
    munmap(j->sh, sizeof(*j->sh));
    if (!getenv("AG_TEST_KEEP"))
        nftw(j->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void report(struct job *j, bool ok, const char *why, uint64_t ms)
{
    if (j->fail_at == 0 && ok) {
        printf("ok   %s (%" PRIu64 " ms)\n", j->t->name, ms);
    } else if (ok && ms >= 1000) {
        /* a failure handled by waiting for a timeout rather than reported
         * at once shows here */
        printf("slow %s [failmalloc: allocation %" PRIu64 " failed: %" PRIu64 " ms]\n",
               j->t->name, j->fail_at, ms);
    } else if (!ok) {
        if (j->fail_at)
            printf("FAIL %s [failmalloc: allocation %" PRIu64 " failed]: %s\n", j->t->name,
                   j->fail_at, why);
        else
            printf("FAIL %s: %s\n", j->t->name, why);
        print_output(j->out_fd);
    }
    fflush(stdout);
}

static bool selected(struct ag_test *t, int nfilters, char **filters)
{
    if (nfilters == 0)
        return true;
    for (int i = 0; i < nfilters; i++)
        if (strstr(t->name, filters[i]))
            return true;
    return false;
}

/* The next job to start: plain runs first, then failmalloc passes. */
static bool next_job(struct ag_test **plain, struct fm_state *fms, size_t nfm, struct job *j)
{
    if (*plain) {
        j->t = *plain;
        j->fail_at = 0;
        *plain = (*plain)->next;
        return true;
    }
    for (size_t i = 0; i < nfm; i++) {
        struct fm_state *f = &fms[i];
        if (f->failed || f->next > f->allocs)
            continue;
        j->t = f->t;
        j->fail_at = f->next;
        f->next += f->step;
        return true;
    }
    return false;
}

static struct fm_state *fm_of(struct fm_state *fms, size_t nfm, struct ag_test *t)
{
    for (size_t i = 0; i < nfm; i++)
        if (fms[i].t == t)
            return &fms[i];
    return NULL;
}

static int run_all(int jobs, int nfilters, char **filters)
{
    size_t ntests = 0;
    for (struct ag_test *t = head; t; t = t->next)
        ntests++;
    struct fm_state *fms = calloc(ntests + 1, sizeof(*fms));
    struct job *running = calloc((size_t)jobs, sizeof(*running));
    size_t nfm = 0;
    /* build the plain list of selected tests */
    struct ag_test *sel = NULL, **selt = &sel;
    for (struct ag_test *t = head; t; t = t->next) {
        if (!selected(t, nfilters, filters))
            continue;
        struct ag_test *c = malloc(sizeof(*c));
        *c = *t;
        c->next = NULL;
        *selt = c;
        selt = &c->next;
    }
    struct ag_test *plain = sel;
    int nrun = 0;
    bool more = true;
    while (more || nrun > 0) {
        while (more && nrun < jobs) {
            struct job *j = NULL;
            for (int i = 0; i < jobs; i++)
                if (running[i].pid == 0) {
                    j = &running[i];
                    break;
                }
            if (!next_job(&plain, fms, nfm, j)) {
                more = false;
                break;
            }
            if (job_start(j) < 0) {
                perror("runner: starting a test");
                exit(2);
            }
            nrun++;
        }
        /* wait for any child, enforcing timeouts */
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        bool timed_out = false;
        struct job *j = NULL;
        if (pid > 0) {
            for (int i = 0; i < jobs; i++)
                if (running[i].pid == pid)
                    j = &running[i];
        } else {
            uint64_t now = ag_now_ns();
            for (int i = 0; i < jobs && !j; i++) {
                struct job *r = &running[i];
                unsigned tmo = r->pid && r->t->timeout_s ? r->t->timeout_s : default_timeout;
                if (r->pid && now - r->start_ns > (uint64_t)tmo * 1000000000u) {
                    kill(-r->pid, SIGKILL);
                    kill(r->pid, SIGKILL);
                    waitpid(r->pid, &status, 0);
                    j = r;
                    timed_out = true;
                }
            }
            if (!j) {
                struct timespec ts = {0, 2000000};
                nanosleep(&ts, NULL);
                if (!more && nrun == 0)
                    break;
                continue;
            }
        }
        if (!j)
            continue;
        /* kill anything the test left running in its process group */
        kill(-j->pid, SIGKILL);
        char why[256] = "";
        bool ok = job_judge(j, status, timed_out, why, sizeof(why));
        uint64_t ms = (ag_now_ns() - j->start_ns) / 1000000;
        report(j, ok, why, ms);
        if (j->fail_at == 0) {
            if (ok)
                passed++;
            else
                failed++;
            if (ok && j->t->failmalloc && j->sh->allocs > 0) {
                struct fm_state *f = &fms[nfm++];
                f->t = j->t;
                f->allocs = j->sh->allocs;
                f->step = f->allocs / MAX_FM_RUNS + 1;
                f->next = 1;
                more = true;
            }
        } else {
            struct fm_state *f = fm_of(fms, nfm, j->t);
            f->runs++;
            if (!ok && !f->failed) {
                f->failed = true;
                failed++;
            }
            bool last = f->next > f->allocs;
            if (last && !f->failed) {
                /* count completion when the last run of the pass ends */
                bool others = false;
                for (int i = 0; i < jobs; i++)
                    if (&running[i] != j && running[i].pid && running[i].t == j->t)
                        others = true;
                if (!others) {
                    passed++;
                    printf("ok   %s [failmalloc: %u runs over %" PRIu64 " allocations]\n",
                           j->t->name, f->runs, f->allocs);
                }
            }
        }
        job_release(j);
        j->pid = 0;
        nrun--;
    }
    while (sel) {
        struct ag_test *n = sel->next;
        free(sel);
        sel = n;
    }
    free(fms);
    free(running);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    int jobs = 1;
    bool list = false, nofork = false;
    const char *label = NULL;
    int nfilters = 0;
    char **filters = calloc((size_t)argc, sizeof(*filters));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-j") == 0 && i + 1 < argc)
            jobs = atoi(argv[++i]);
        else if (strncmp(argv[i], "-j", 2) == 0 && argv[i][2])
            jobs = atoi(argv[i] + 2);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            default_timeout = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--label") == 0 && i + 1 < argc)
            label = argv[++i];
        else if (strcmp(argv[i], "--list") == 0)
            list = true;
        else if (strcmp(argv[i], "--no-fork") == 0)
            nofork = true;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: %s [-j N] [--timeout S] [--label WORD] [--list] "
                            "[--no-fork] [FILTER...]\n", argv[0]);
            return 2;
        } else
            filters[nfilters++] = argv[i];
    }
    if (jobs < 1)
        jobs = 1;
    if (list) {
        for (struct ag_test *t = head; t; t = t->next)
            if (selected(t, nfilters, filters))
                printf("%s%s\n", t->name, t->failmalloc ? " [failmalloc]" : "");
        free(filters);
        return 0;
    }
    if (nofork) {
        for (struct ag_test *t = head; t; t = t->next) {
            if (!selected(t, nfilters, filters))
                continue;
            t->fn();
            printf("ok   %s\n", t->name);
            passed++;
        }
    } else {
        run_all(jobs, nfilters, filters);
    }
    free(filters);
    if (label)
        printf("%s: %u passed, %u failed\n", label, passed, failed);
    else
        printf("%u passed, %u failed\n", passed, failed);
    (void)in_child;
    return failed ? 1 : 0;
}
