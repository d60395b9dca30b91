/*
 * The Slurm provider of the ApplicationMaster client (sched.h with
 * ag_am_opts.provider "slurm"): the same calls, backed by libslurm.
 *
 * Slurm 22.05's public API has no way to launch a job step: slurm.h
 * declares slurm_step_launch() but the call that makes its context
 * (slurm_step_ctx_create) left the public library in 20.11 and lives only in
 * srun's private libslurmfull. So a container is a batch job of its own:
 *
 *   ask/allocate  each wanted container becomes one batch job submitted
 *                 with slurm_submit_batch_job (1 node, 1 task, vcores CPUs,
 *                 memory_mb MB; a strict host ask becomes req_nodes, the
 *                 blacklist exc_nodes, a label a feature constraint). Its
 *                 script, the holder, waits for a launch file in the spool
 *                 directory. The job RUNNING is the grant: the allocated
 *                 callback gets "slurm_<jobid>" on its node, with the
 *                 resources really held.
 *   start         writes the launch file (0600, renamed into place; it holds
 *                 the env values, removed with the spool directory): the
 *                 holder execs it, so the job's exit is the command's.
 *   stop/release  slurm_kill_job (SIGKILL) of that job.
 *   completed     a finished job (slurm_load_job_user, each allocate round),
 *                 mapped by ag__slurm_status_of, with the tail of its stderr.
 *   finish/free   kill every job still pending or running; free also removes
 *                 the spool directory (a holder still waiting then exits 0).
 *
 * The spool directory ($ARGOT_SLURM_SPOOL, else the current directory, then
 * a fresh "argot-slurm-XXXXXX" under it) must be at the same path on the
 * compute nodes, as sbatch assumes of its working directory.
 *
 * Invariants:
 *   1. A job is in `jobs` from its submission until its end is reported
 *      (or, never granted, until it ends or is cancelled as surplus).
 *   2. key->pending counts the key's jobs not yet seen running; a grant
 *      lowers key->total and key->pending by one each (as am.c lowers its
 *      totals), so an allocate submits total - pending more.
 *   3. Callbacks run inside ag__slurm_am_allocate only, after the job they
 *      name is updated; jobs are removed only after the round's callbacks.
 *
 * Not thread-safe, as ag_am: one thread drives it. libslurm's process state
 * (slurm_init/slurm_fini) is counted across instances under a mutex.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

#include "asks.h"
#include "slurm_am.h"

#define LAUNCH_MAX        (256 * 1024) /* bytes of one launch script */
#define HEADROOM_EVERY_MS 1000
#define LOST_MAX          3 /* jobs in a row ended before running: allocate fails */

enum job_state { J_PENDING, J_GRANTED, J_DONE };

struct job {
    uint32_t id;
    char cid[48]; /* "slurm_<jobid>" */
    ag__ask *key;
    enum job_state st;
    char node[256];
    bool started;
    bool stopped;  /* ag_am_stop */
    bool released; /* ag_am_release */
    struct job *next;
};

struct bl {
    char name[256];
    struct bl *next;
};

struct ag__slurm_am {
    ag_am *outer;
    ag_am_callbacks cb;
    void *ud;
    ag_errbuf err;
    char spool[PATH_MAX];
    char cwd[PATH_MAX];
    char *script; /* the holder, owned */
    char **env;   /* the jobs' environment, owned */
    uint32_t nenv;
    bool lib; /* holds a reference on libslurm's process state */
    bool registered;
    int lost;           /* jobs in a row that ended before they ran */
    char lost_why[300]; /* the last of them */
    ag__ask *asks;
    struct job *jobs;
    struct bl *blacklist;
    uint64_t head_at_ms;
    int64_t head_mb;
    int32_t head_vcores, nodes;
};

/* libslurm 22.05 leaks the reply to a refused batch submission (its error
 * path returns without freeing the return-code message: 20 bytes, twice, per
 * refusal); nothing of ours is reachable from it, so sanitizer builds tell
 * LeakSanitizer to ignore allocations under that call. */
#if defined(__SANITIZE_ADDRESS__)
#define AG__LSAN_HOOK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AG__LSAN_HOOK 1
#endif
#endif
#ifdef AG__LSAN_HOOK
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:slurm_submit_batch_job\n";
}
#endif

static pthread_mutex_t lib_mu = PTHREAD_MUTEX_INITIALIZER;
static int lib_refs;

static void lib_ref(void)
{
    pthread_mutex_lock(&lib_mu);
    if (lib_refs++ == 0)
        slurm_init(NULL);
    pthread_mutex_unlock(&lib_mu);
}

static void lib_unref(void)
{
    pthread_mutex_lock(&lib_mu);
    if (--lib_refs == 0)
        slurm_fini();
    pthread_mutex_unlock(&lib_mu);
}

static const char *slurm_err(void)
{
    return slurm_strerror(slurm_get_errno());
}

/* ---- text: quoting, the launch script, statuses -------------------------------------- */

struct out {
    char *p;
    size_t len, cap;
    bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->full || o->len + n >= o->cap) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = 0;
}

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* s single-quoted for sh: ' becomes '\'' */
static void put_quoted(struct out *o, const char *s, size_t n)
{
    put(o, "'", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\'')
            put(o, "'\\''", 4);
        else
            put(o, &s[i], 1);
    }
    put(o, "'", 1);
}

static bool is_shell_name(const char *s, size_t n)
{
    if (n == 0 || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static void put_export(struct out *o, const char *name, size_t n, const char *value)
{
    put_str(o, "export ");
    put(o, name, n);
    put(o, "=", 1);
    put_quoted(o, value, strlen(value));
    put(o, "\n", 1);
}

ssize_t ag__slurm_launch_script(char *buf, size_t cap, const char *container_id, const char *node,
                                const char *const *argv, const char *const *env, char *err,
                                size_t errcap)
{
    if (!argv || !argv[0] || !argv[0][0]) {
        snprintf(err, errcap, "an empty command");
        return AG_E_INVAL;
    }
    struct out o = {buf, 0, cap, cap == 0};
    if (cap)
        buf[0] = 0;
    put_str(&o, "#!/bin/sh\n# argot container: written by ag_am_start, run by its job's holder\n");
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (!eq || !is_shell_name(env[i], (size_t)(eq - env[i]))) {
            snprintf(err, errcap,
                     "env entry %zu ('%.40s'): not NAME=VALUE with NAME a shell "
                     "variable name",
                     i, env[i]);
            return AG_E_INVAL;
        }
        put_export(&o, env[i], (size_t)(eq - env[i]), eq + 1);
    }
    put_export(&o, "ARGOT_CONTAINER_ID", 18, container_id);
    put_export(&o, "ARGOT_NM_HOST", 13, node);
    put_str(&o, "exec");
    for (size_t i = 0; argv[i]; i++) {
        put(&o, " ", 1);
        put_quoted(&o, argv[i], strlen(argv[i]));
    }
    put(&o, "\n", 1);
    if (o.full) {
        snprintf(err, errcap, "the launch script is longer than %zu bytes", cap ? cap - 1 : 0);
        return AG_E_TOO_LARGE;
    }
    return (ssize_t)o.len;
}

void ag__slurm_status_of(enum ag__slurm_end end, uint32_t exit_code, bool stopped, bool released,
                         int *exit_status, char *diag, size_t cap)
{
    int ws = (int)exit_code;
    bool signaled = WIFSIGNALED(ws) && WTERMSIG(ws) != 0;
    if ((released || stopped) && (end == AG__SLURM_END_CANCELLED || signaled)) {
        *exit_status = released ? -100 : -105;
        snprintf(diag, cap, "%s by the application master", released ? "released" : "stopped");
        return;
    }
    switch (end) {
    case AG__SLURM_END_COMPLETE:
        if (signaled) {
            *exit_status = 128 + WTERMSIG(ws);
            snprintf(diag, cap, "killed by signal %d", WTERMSIG(ws));
        } else {
            *exit_status = WEXITSTATUS(ws);
            if (*exit_status)
                snprintf(diag, cap, "exited %d", *exit_status);
            else if (cap)
                diag[0] = 0;
        }
        return;
    case AG__SLURM_END_CANCELLED:
        *exit_status = -105;
        snprintf(diag, cap, "cancelled in Slurm (scancel or an administrator)");
        return;
    case AG__SLURM_END_TIMEOUT:
        *exit_status = -105;
        snprintf(diag, cap, "killed at its Slurm time limit");
        return;
    case AG__SLURM_END_NODE_FAIL:
        *exit_status = -100;
        snprintf(diag, cap, "its node failed (Slurm NODE_FAIL or BOOT_FAIL)");
        return;
    case AG__SLURM_END_PREEMPTED:
        *exit_status = -102;
        snprintf(diag, cap, "preempted by Slurm");
        return;
    case AG__SLURM_END_OOM:
        *exit_status = -104;
        snprintf(diag, cap, "killed for exceeding its memory (Slurm OUT_OF_MEMORY)");
        return;
    case AG__SLURM_END_DEADLINE:
        *exit_status = -105;
        snprintf(diag, cap, "killed at its Slurm deadline");
        return;
    }
    *exit_status = -1000;
    snprintf(diag, cap, "ended in an unknown Slurm state");
}

/* ---- lifecycle --------------------------------------------------------------------- */

static const char *conf_path(void)
{
    const char *c = getenv("SLURM_CONF");
    return c && *c ? c : "/etc/slurm/slurm.conf";
}

/* The jobs' environment: the few variables a login shell would have. */
static int make_env(ag__slurm_am *s)
{
    static const char *const keep[] = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TMPDIR"};
    s->env = ag_calloc(AG_ARRAY_LEN(keep) + 2, sizeof(*s->env));
    if (!s->env)
        return AG_E_NOMEM;
    for (size_t i = 0; i < AG_ARRAY_LEN(keep); i++) {
        const char *v = getenv(keep[i]);
        if (!v && strcmp(keep[i], "PATH") == 0)
            v = "/usr/local/bin:/usr/bin:/bin";
        if (!v)
            continue;
        size_t n = strlen(keep[i]) + strlen(v) + 2;
        char *e = ag_malloc(n);
        if (!e)
            return AG_E_NOMEM;
        snprintf(e, n, "%s=%s", keep[i], v);
        s->env[s->nenv++] = e;
    }
    return 0;
}

ag__slurm_am *ag__slurm_am_new(ag_am *outer, const ag_am_opts *o, char *err, size_t cap)
{
    /* libslurm exits the process (fatal) on a configuration it cannot read:
     * look first, and say where it looked */
    if (access(conf_path(), R_OK) != 0) {
        snprintf(err, cap, "slurm: no Slurm configuration at %s: %s (set SLURM_CONF)", conf_path(),
                 strerror(errno));
        return NULL;
    }
    ag__slurm_am *s = ag_calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
        return NULL;
    }
    s->outer = outer;
    s->cb = o->cb;
    s->ud = o->ud;
    if (make_env(s) < 0) {
        snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
        ag__slurm_am_free(s);
        return NULL;
    }
    if (!getcwd(s->cwd, sizeof(s->cwd))) {
        snprintf(err, cap, "slurm: the current directory: %s", strerror(errno));
        ag__slurm_am_free(s);
        return NULL;
    }
    lib_ref();
    s->lib = true;
    return s;
}

/* Removes the spool directory and what is in it (launch files, outputs). */
static void spool_remove(ag__slurm_am *s)
{
    if (!s->spool[0])
        return;
    DIR *d = opendir(s->spool);
    if (d) {
        struct dirent *e;
        char p[PATH_MAX + 300];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", s->spool, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(s->spool);
    s->spool[0] = 0;
}

static void kill_job(uint32_t id)
{
    if (slurm_kill_job(id, SIGKILL, 0) != SLURM_SUCCESS &&
        slurm_get_errno() != ESLURM_ALREADY_DONE && slurm_get_errno() != ESLURM_INVALID_JOB_ID)
        AG_LOG(AG_LOG_WARN, "slurm", "kill_failed job=%u why=\"%s\"", id, slurm_err());
}

void ag__slurm_am_free(ag__slurm_am *s)
{
    if (!s)
        return;
    /* an AM gone without finishing: its containers go with it (as YARN's
     * end of an attempt kills them) */
    for (struct job *j = s->jobs; j; j = j->next)
        if (j->st != J_DONE)
            kill_job(j->id);
    while (s->jobs) {
        struct job *n = s->jobs->next;
        ag_free(s->jobs);
        s->jobs = n;
    }
    ag__asks_free(&s->asks);
    while (s->blacklist) {
        struct bl *n = s->blacklist->next;
        ag_free(s->blacklist);
        s->blacklist = n;
    }
    spool_remove(s);
    for (uint32_t i = 0; i < s->nenv; i++)
        ag_free(s->env[i]);
    ag_free(s->env);
    ag_free(s->script);
    if (s->lib)
        lib_unref();
    ag_free(s);
}

const char *ag__slurm_am_errmsg(const ag__slurm_am *s)
{
    return s->err.msg;
}

/* The holder: the job's script until ag_am_start writes the launch file. */
static int make_holder(ag__slurm_am *s)
{
    size_t cap = 2 * strlen(s->spool) + 512;
    s->script = ag_malloc(cap);
    if (!s->script)
        return AG_E_NOMEM;
    struct out o = {s->script, 0, cap, false};
    put_str(&o, "#!/bin/sh\n# argot: holds this allocation until the application master starts "
                "a container in it\nd=");
    put_quoted(&o, s->spool, strlen(s->spool));
    put_str(&o, "\nf=\"$d/slurm_${SLURM_JOB_ID}.run\"\n"
                "while [ ! -e \"$f\" ]; do\n"
                "    [ -d \"$d\" ] || exit 0\n"
                "    sleep 0.02\n"
                "done\n"
                "exec /bin/sh \"$f\"\n");
    return o.full ? AG_E_TOO_LARGE : 0;
}

static void refresh_headroom(ag__slurm_am *s);

int ag__slurm_am_register(ag__slurm_am *s, const char *host, int port, const char *tracking_url)
{
    (void)host;
    (void)port;
    (void)tracking_url;
    if (s->registered)
        return ag_errbuf_set(&s->err, AG_E_STATE, "register: already registered");
    if (slurm_ping(0) != SLURM_SUCCESS)
        return ag_errbuf_set(&s->err, AG_E_IO, "register: slurmctld (per %s) does not answer: %s",
                             conf_path(), slurm_err());
    const char *root = getenv("ARGOT_SLURM_SPOOL");
    const char *dir = root && *root ? root : s->cwd;
    if (strlen(dir) + 20 >= sizeof(s->spool))
        return ag_errbuf_set(&s->err, AG_E_TOO_LARGE,
                             "register: the spool directory's path "
                             "(under %.80s...) is too long",
                             dir);
    memcpy(s->spool, dir, strlen(dir));
    memcpy(s->spool + strlen(dir), "/argot-slurm-XXXXXX", 20);
    if (!mkdtemp(s->spool)) {
        int e = errno;
        char tried[PATH_MAX];
        snprintf(tried, sizeof(tried), "%s", s->spool);
        s->spool[0] = 0;
        return ag_errbuf_set(&s->err, ag_err_from_errno(e),
                             "register: the spool directory %s: %s (set ARGOT_SLURM_SPOOL to a "
                             "directory the compute nodes share)",
                             tried, strerror(e));
    }
    if (make_holder(s) < 0)
        return ag_errbuf_set(&s->err, AG_E_NOMEM, "register: no memory");
    s->registered = true;
    refresh_headroom(s);
    return 0;
}

/* ---- asks, blacklist, releases ------------------------------------------------------ */

int ag__slurm_am_ask(ag__slurm_am *s, int32_t priority, const char *resource_name,
                     int64_t memory_mb, int32_t vcores, int32_t total, bool relax_locality,
                     const char *label, int64_t allocation_request_id)
{
    /* pending (invariant 2) is this file's: ag__ask_set leaves it */
    return ag__ask_set(&s->asks, &s->err, priority, resource_name, memory_mb, vcores, total,
                       relax_locality, label, allocation_request_id);
}

int ag__slurm_am_blacklist(ag__slurm_am *s, const char *resource_name, bool add)
{
    struct bl **pp = &s->blacklist;
    while (*pp && strcmp((*pp)->name, resource_name) != 0)
        pp = &(*pp)->next;
    if (!add) {
        if (*pp) {
            struct bl *d = *pp;
            *pp = d->next;
            ag_free(d);
        }
        return 0;
    }
    if (*pp)
        return 0;
    if (strlen(resource_name) >= sizeof((*pp)->name) || strchr(resource_name, ','))
        return ag_errbuf_set(&s->err, AG_E_INVAL, "blacklist: '%.60s' is not a node name",
                             resource_name);
    struct bl *b = ag_calloc(1, sizeof(*b));
    if (!b)
        return ag_errbuf_set(&s->err, AG_E_NOMEM, "blacklist: no memory");
    snprintf(b->name, sizeof(b->name), "%s", resource_name);
    b->next = s->blacklist;
    s->blacklist = b;
    return 0;
}

static struct job *job_of(ag__slurm_am *s, const char *cid)
{
    for (struct job *j = s->jobs; j; j = j->next)
        if (j->st == J_GRANTED && strcmp(j->cid, cid) == 0)
            return j;
    return NULL;
}

int ag__slurm_am_release(ag__slurm_am *s, const char *container_id)
{
    struct job *j = job_of(s, container_id);
    if (!j)
        return ag_errbuf_set(&s->err, AG_E_NOENT, "release: no granted container '%.60s'",
                             container_id);
    j->released = true;
    kill_job(j->id);
    return 0;
}

int ag__slurm_am_stop(ag__slurm_am *s, const char *container_id)
{
    struct job *j = job_of(s, container_id);
    if (!j)
        return ag_errbuf_set(&s->err, AG_E_NOENT, "stop: no running container '%.60s'",
                             container_id);
    j->stopped = true;
    if (slurm_kill_job(j->id, SIGKILL, 0) != SLURM_SUCCESS &&
        slurm_get_errno() != ESLURM_ALREADY_DONE)
        return ag_errbuf_set(&s->err, AG_E_IO, "stop: cancelling job %u (%s): %s", j->id,
                             container_id, slurm_err());
    return 0;
}

/* ---- allocate ------------------------------------------------------------------------- */

/* Slurm's ask for one container of key a: nothing for keys Slurm cannot
 * place by themselves (racks; a host that only prefers; "*" not relaxed,
 * which means "only at the named hosts"). */
static bool key_submits(const ag__ask *a)
{
    if (a->name[0] == '/')
        return false;
    if (strcmp(a->name, "*") == 0)
        return a->relax;
    return !a->relax;
}

static int submit_one(ag__slurm_am *s, ag__ask *a)
{
    char exc[4096] = "";
    size_t el = 0;
    for (struct bl *b = s->blacklist; b; b = b->next) {
        int n = snprintf(exc + el, sizeof(exc) - el, "%s%s", el ? "," : "", b->name);
        if (n < 0 || (size_t)n >= sizeof(exc) - el)
            return ag_errbuf_set(&s->err, AG_E_TOO_LARGE, "allocate: the blacklist is too long");
        el += (size_t)n;
    }
    char out[PATH_MAX + 32], errp[PATH_MAX + 32];
    snprintf(out, sizeof(out), "%s/slurm_%%j.out", s->spool);
    snprintf(errp, sizeof(errp), "%s/slurm_%%j.err", s->spool);
    job_desc_msg_t d;
    slurm_init_job_desc_msg(&d);
    d.name = "argot-container";
    d.script = s->script;
    d.environment = s->env;
    d.env_size = s->nenv;
    d.work_dir = s->cwd;
    d.std_out = out;
    d.std_err = errp;
    d.user_id = getuid();
    d.group_id = getgid();
    d.min_nodes = 1;
    d.max_nodes = 1;
    d.num_tasks = 1;
    d.min_cpus = (uint32_t)a->vcores;
    d.cpus_per_task = (uint16_t)a->vcores;
    d.pn_min_memory = (uint64_t)a->memory_mb;
    d.req_nodes = strcmp(a->name, "*") != 0 ? a->name : NULL;
    d.exc_nodes = el ? exc : NULL;
    d.features = a->label[0] ? a->label : NULL;
    submit_response_msg_t *r = NULL;
    if (slurm_submit_batch_job(&d, &r) != SLURM_SUCCESS)
        return ag_errbuf_set(&s->err, AG_E_IO,
                             "allocate: Slurm refused a job of %" PRId64 " MB, %d vcores at %s: %s",
                             a->memory_mb, a->vcores, a->name, slurm_err());
    uint32_t id = r->job_id;
    slurm_free_submit_response_response_msg(r);
    struct job *j = ag_calloc(1, sizeof(*j));
    if (!j) {
        kill_job(id);
        return ag_errbuf_set(&s->err, AG_E_NOMEM, "allocate: no memory");
    }
    j->id = id;
    snprintf(j->cid, sizeof(j->cid), "slurm_%u", id);
    j->key = a;
    j->st = J_PENDING;
    j->next = s->jobs;
    s->jobs = j;
    a->pending++;
    return 0;
}

/* Submits or cancels pending jobs so each key has total of them (inv. 2). */
static int match_asks(ag__slurm_am *s)
{
    for (ag__ask *a = s->asks; a; a = a->next) {
        int32_t want = key_submits(a) ? a->total : 0;
        while (a->pending < want) {
            int rc = submit_one(s, a);
            if (rc < 0)
                return rc;
        }
        /* surplus: the newest pending jobs of the key go (they are first) */
        for (struct job *j = s->jobs; j && a->pending > want; j = j->next)
            if (j->key == a && j->st == J_PENDING) {
                kill_job(j->id);
                j->st = J_DONE;
                a->pending--;
            }
    }
    return 0;
}

static enum ag__slurm_end end_of(uint32_t base)
{
    switch (base) {
    case JOB_CANCELLED:
        return AG__SLURM_END_CANCELLED;
    case JOB_TIMEOUT:
        return AG__SLURM_END_TIMEOUT;
    case JOB_NODE_FAIL:
    case JOB_BOOT_FAIL:
        return AG__SLURM_END_NODE_FAIL;
    case JOB_PREEMPTED:
        return AG__SLURM_END_PREEMPTED;
    case JOB_OOM:
        return AG__SLURM_END_OOM;
    case JOB_DEADLINE:
        return AG__SLURM_END_DEADLINE;
    default:
        return AG__SLURM_END_COMPLETE; /* COMPLETE, FAILED: the script's own exit */
    }
}

/* Appends "; stderr: <its last line>" from the job's error file, if any. */
static void append_stderr(const ag__slurm_am *s, uint32_t id, char *diag, size_t cap)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "%s/slurm_%u.err", s->spool, id);
    FILE *f = fopen(p, "r");
    if (!f)
        return;
    char tail[201] = "";
    size_t n = 0;
    if (fseek(f, -200, SEEK_END) != 0)
        rewind(f);
    n = fread(tail, 1, sizeof(tail) - 1, f);
    fclose(f);
    while (n && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
        n--;
    tail[n] = 0;
    char *line = strrchr(tail, '\n');
    line = line ? line + 1 : tail;
    if (!*line)
        return;
    for (char *c = line; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
            *c = '?';
    size_t len = strlen(diag);
    snprintf(diag + len, cap - len, "%sstderr: %s", len ? "; " : "", line);
}

static void report_end(ag__slurm_am *s, struct job *j, const slurm_job_info_t *ji)
{
    int status;
    char diag[700];
    enum ag__slurm_end end = ji ? end_of(ji->job_state & JOB_STATE_BASE) : AG__SLURM_END_NODE_FAIL;
    ag__slurm_status_of(end, ji ? ji->exit_code : 0, j->stopped, j->released, &status, diag,
                        sizeof(diag));
    if (!ji)
        snprintf(diag, sizeof(diag), "job %u is no longer known to Slurm", j->id);
    else if (status != 0 && ji->state_desc && ji->state_desc[0]) {
        size_t len = strlen(diag);
        snprintf(diag + len, sizeof(diag) - len, " (%s)", ji->state_desc);
    }
    if (status > 0)
        append_stderr(s, j->id, diag, sizeof(diag));
    j->st = J_DONE;
    AG_LOG(AG_LOG_DEBUG, "slurm", "container_done id=%s exit=%d", j->cid, status);
    if (s->cb.completed) {
        ag_container_status cs = {j->cid, status, diag};
        s->cb.completed(s->ud, s->outer, &cs);
    }
}

static void grant(ag__slurm_am *s, struct job *j, const slurm_job_info_t *ji)
{
    j->st = J_GRANTED;
    s->lost = 0;
    const char *node = ji->batch_host && ji->batch_host[0] ? ji->batch_host : ji->nodes;
    snprintf(j->node, sizeof(j->node), "%s", node ? node : "");
    ag__ask *a = j->key;
    a->pending--;
    if (a->total > 0)
        a->total--;
    /* the same grant at "*" (a strict host ask carries "*" too, as YARN's) */
    for (ag__ask *b = s->asks; b; b = b->next)
        if (b != a && b->priority == a->priority && b->memory_mb == a->memory_mb &&
            b->vcores == a->vcores && b->alloc_id == a->alloc_id &&
            (strcmp(b->name, "*") == 0 || strcmp(b->name, j->node) == 0) && b->total > 0)
            b->total--;
    if (s->cb.allocated) {
        ag_container c = {j->cid, j->node, a->memory_mb, a->vcores, a->priority, a->alloc_id};
        s->cb.allocated(s->ud, s->outer, &c);
    }
}

static const slurm_job_info_t *find_info(const job_info_msg_t *m, uint32_t id)
{
    for (uint32_t i = 0; m && i < m->record_count; i++)
        if (m->job_array[i].job_id == id)
            return &m->job_array[i];
    return NULL;
}

/* A job that ended before it was ever seen running: dropped (its key asks
 * again); counted, so that a cluster ending every job fails the allocate. */
static void lost_job(ag__slurm_am *s, struct job *j, const slurm_job_info_t *ji)
{
    int status;
    char diag[200];
    if (ji)
        ag__slurm_status_of(end_of(ji->job_state & JOB_STATE_BASE), ji->exit_code, false, false,
                            &status, diag, sizeof(diag));
    else
        snprintf(diag, sizeof(diag), "no longer known to Slurm");
    snprintf(s->lost_why, sizeof(s->lost_why), "job %u: %s%s%s%s", j->id, diag[0] ? diag : "ended",
             ji && ji->state_desc ? " (" : "", ji && ji->state_desc ? ji->state_desc : "",
             ji && ji->state_desc ? ")" : "");
    AG_LOG(AG_LOG_WARN, "slurm", "job_lost job=%u why=\"%s\"", j->id, s->lost_why);
    s->lost++;
    j->st = J_DONE;
    j->key->pending--;
}

/* One look at the jobs: grants and ends, callbacks (invariant 3). */
static int poll_jobs(ag__slurm_am *s)
{
    if (!s->jobs)
        return 0;
    job_info_msg_t *m = NULL;
    if (slurm_load_job_user(&m, getuid(), SHOW_ALL) != SLURM_SUCCESS)
        return ag_errbuf_set(&s->err, AG_E_IO, "allocate: loading the jobs from slurmctld: %s",
                             slurm_err());
    for (struct job *j = s->jobs; j; j = j->next) {
        if (j->st == J_DONE)
            continue;
        const slurm_job_info_t *ji = find_info(m, j->id);
        uint32_t base = ji ? ji->job_state & JOB_STATE_BASE : JOB_END;
        if (j->st == J_PENDING) {
            if (base == JOB_RUNNING || base == JOB_SUSPENDED) {
                grant(s, j, ji);
            } else if (base != JOB_PENDING) {
                /* ended before it ever ran: no container to report; asked
                 * again, unless Slurm keeps doing that (LOST_MAX) */
                lost_job(s, j, ji);
            }
        }
        if (j->st == J_GRANTED && base >= JOB_COMPLETE)
            report_end(s, j, ji);
    }
    slurm_free_job_info_msg(m);
    int rc = s->lost >= LOST_MAX ? ag_errbuf_set(&s->err, AG_E_STATE,
                                                 "allocate: Slurm ended %d jobs in a row before "
                                                 "they ran; the last: %s",
                                                 s->lost, s->lost_why)
                                 : 0;
    for (struct job **pp = &s->jobs; *pp;) {
        if ((*pp)->st == J_DONE) {
            struct job *d = *pp;
            *pp = d->next;
            ag_free(d);
        } else {
            pp = &(*pp)->next;
        }
    }
    return rc;
}

/* The cluster's free room on nodes that take work (approximate, as any
 * other AM's headroom: it changes as soon as it is read). */
static void refresh_headroom(ag__slurm_am *s)
{
    node_info_msg_t *m = NULL;
    if (slurm_load_node(0, &m, SHOW_ALL) != SLURM_SUCCESS) {
        AG_LOG(AG_LOG_WARN, "slurm", "nodes_unavailable why=\"%s\"", slurm_err());
        return;
    }
    int64_t mb = 0;
    int32_t vc = 0, nodes = 0;
    for (uint32_t i = 0; i < m->record_count; i++) {
        node_info_t *n = &m->node_array[i];
        uint32_t base = n->node_state & NODE_STATE_BASE;
        if (!n->name || base == NODE_STATE_DOWN || base == NODE_STATE_FUTURE ||
            (n->node_state & NODE_STATE_DRAIN))
            continue;
        uint16_t alloc_cpus = 0;
        uint64_t alloc_mem = 0;
        slurm_get_select_nodeinfo(n->select_nodeinfo, SELECT_NODEDATA_SUBCNT, NODE_STATE_ALLOCATED,
                                  &alloc_cpus);
        slurm_get_select_nodeinfo(n->select_nodeinfo, SELECT_NODEDATA_MEM_ALLOC,
                                  NODE_STATE_ALLOCATED, &alloc_mem);
        nodes++;
        vc += n->cpus > alloc_cpus ? n->cpus - alloc_cpus : 0;
        mb += n->real_memory > alloc_mem ? (int64_t)(n->real_memory - alloc_mem) : 0;
    }
    slurm_free_node_info_msg(m);
    s->head_mb = mb;
    s->head_vcores = vc;
    s->nodes = nodes;
    s->head_at_ms = ag_now_ms();
}

int ag__slurm_am_allocate(ag__slurm_am *s, float progress)
{
    (void)progress;
    if (!s->registered)
        return ag_errbuf_set(&s->err, AG_E_STATE, "allocate: not registered");
    int rc = poll_jobs(s);
    if (rc == 0)
        rc = match_asks(s);
    if (rc == 0 && ag_now_ms() - s->head_at_ms >= HEADROOM_EVERY_MS)
        refresh_headroom(s);
    return rc;
}

/* ---- start, finish ------------------------------------------------------------------------ */

int ag__slurm_am_start(ag__slurm_am *s, const char *container_id, const char *const *argv,
                       const char *const *env)
{
    struct job *j = job_of(s, container_id);
    if (!j)
        return ag_errbuf_set(&s->err, AG_E_NOENT, "start: no granted container '%.60s'",
                             container_id);
    if (j->started)
        return ag_errbuf_set(&s->err, AG_E_STATE, "start: container %s was started already",
                             container_id);
    char *buf = ag_malloc(LAUNCH_MAX);
    if (!buf)
        return ag_errbuf_set(&s->err, AG_E_NOMEM, "start: no memory");
    char why[200];
    ssize_t n =
        ag__slurm_launch_script(buf, LAUNCH_MAX, j->cid, j->node, argv, env, why, sizeof(why));
    if (n < 0) {
        ag_free(buf);
        return ag_errbuf_set(&s->err, (int)n, "start %s: %s", container_id, why);
    }
    char tmp[PATH_MAX + 64], path[PATH_MAX + 64];
    snprintf(tmp, sizeof(tmp), "%s/%s.run.tmp", s->spool, j->cid);
    snprintf(path, sizeof(path), "%s/%s.run", s->spool, j->cid);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = ag_errbuf_set(&s->err, ag_err_from_errno(errno), "start %s: %s: %s", container_id, tmp,
                           strerror(errno));
        goto out;
    }
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = ag_errbuf_set(&s->err, AG_E_IO, "start %s: writing %s: %s", container_id, tmp,
                               strerror(errno));
            close(fd);
            unlink(tmp);
            goto out;
        }
        off += w;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        rc = ag_errbuf_set(&s->err, AG_E_IO, "start %s: %s: %s", container_id, path,
                           strerror(errno));
        unlink(tmp);
        goto out;
    }
    j->started = true;
out:
    ag_free(buf);
    return rc;
}

int ag__slurm_am_finish(ag__slurm_am *s, ag_am_final final, const char *diagnostics)
{
    (void) final;
    (void)diagnostics;
    if (!s->registered)
        return ag_errbuf_set(&s->err, AG_E_STATE, "finish: not registered");
    int failed = 0;
    uint32_t first = 0;
    for (struct job *j = s->jobs; j; j = j->next) {
        if (j->st == J_DONE)
            continue;
        if (slurm_kill_job(j->id, SIGKILL, 0) != SLURM_SUCCESS &&
            slurm_get_errno() != ESLURM_ALREADY_DONE &&
            slurm_get_errno() != ESLURM_INVALID_JOB_ID && !failed++)
            first = j->id;
        j->st = J_DONE;
    }
    while (s->jobs) {
        struct job *n = s->jobs->next;
        ag_free(s->jobs);
        s->jobs = n;
    }
    for (ag__ask *a = s->asks; a; a = a->next)
        a->total = a->pending = 0;
    s->registered = false;
    if (failed)
        return ag_errbuf_set(&s->err, AG_E_IO,
                             "finish: %d job(s) could not be cancelled "
                             "(first: %u): %s",
                             failed, first, slurm_err());
    return 0;
}

size_t ag__slurm_am_running(const ag__slurm_am *s)
{
    size_t n = 0;
    for (const struct job *j = s->jobs; j; j = j->next)
        n += j->st == J_GRANTED;
    return n;
}

void ag__slurm_am_headroom(const ag__slurm_am *s, int64_t *memory_mb, int32_t *vcores,
                           int32_t *nodes)
{
    if (memory_mb)
        *memory_mb = s->head_mb;
    if (vcores)
        *vcores = s->head_vcores;
    if (nodes)
        *nodes = s->nodes;
}
