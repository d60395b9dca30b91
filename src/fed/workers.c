/*
 * A party's workers (fed.h, the cluster config's `workers:`): containers
 * from the party's own scheduler, each running a worker process of the
 * calling program, for apps that spread their share of a job (argot psi).
 *
 * The calling process is the application's master: an unmanaged AM of its
 * RM (ag_am_new_unmanaged), so it needs no container of its own. Start:
 * register, ask for count containers of the configured size, start worker
 * i in the i-th granted one (argv, then --worker i --worker-host HOST, the
 * host of the container's node, where the worker should listen). Check:
 * one allocate round (the AM's heartbeat), which reports containers that
 * ended; an exit status other than 0, or a container the RM lost, is the
 * worker's failure, named with its index and container id. Stop: stops
 * what still runs and finishes the application, SUCCEEDED or FAILED with
 * the reason, so that nothing is left behind.
 *
 * The provider (argot's RM, or Slurm) is chosen in one place, am_open.
 * One thread drives an ag_fed_workers (the job's).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "argot/fed.h"
#include "argot/sched.h"

#define WORKERS_GRANT_MS 60000u /* how long the RM may take to grant them all */

struct worker {
    char container[128];
    char host[256];
    bool granted;
    bool started;
    bool ended;
    int exit_status;
    char diag[512];
};

struct ag_fed_workers {
    ag_am *am;
    unsigned count;
    unsigned granted;
    struct worker w[AG_CLUSTER_MAX_WORKERS];
    const char *const *argv; /* during start only */
    char app_id[64];
    char where[320]; /* "RM host:port", "Slurm (...)": for messages */
    char start_err[AG_ERRMSG_MAX];
};

static struct worker *worker_of(ag_fed_workers *ws, const char *container, unsigned *index)
{
    for (unsigned i = 0; i < ws->granted; i++)
        if (strcmp(ws->w[i].container, container) == 0) {
            *index = i;
            return &ws->w[i];
        }
    return NULL;
}

/* The host part of a node's "host:port". */
static void host_of(const char *node, char *out, size_t cap)
{
    const char *colon = strrchr(node, ':');
    size_t n = colon ? (size_t)(colon - node) : strlen(node);
    snprintf(out, cap, "%.*s", (int)n, node);
}

/* Starts worker i in container c: argv, --worker i, --worker-host HOST. */
static int start_one(ag_fed_workers *ws, unsigned i)
{
    struct worker *w = &ws->w[i];
    size_t n = 0;
    while (ws->argv[n])
        n++;
    const char **argv = ag_calloc(n + 5, sizeof(*argv));
    if (!argv)
        return AG_E_NOMEM;
    char idx[16];
    snprintf(idx, sizeof(idx), "%u", i);
    memcpy(argv, ws->argv, n * sizeof(*argv));
    argv[n] = "--worker";
    argv[n + 1] = idx;
    argv[n + 2] = "--worker-host";
    argv[n + 3] = w->host;
    int rc = ag_am_start(ws->am, w->container, argv, NULL);
    ag_free(argv);
    if (rc < 0)
        return rc;
    w->started = true;
    return 0;
}

static void on_allocated(void *ud, ag_am *am, const ag_container *c)
{
    ag_fed_workers *ws = ud;
    if (ws->granted == ws->count) {
        ag_am_release(am, c->id); /* more than asked */
        return;
    }
    unsigned i = ws->granted++;
    struct worker *w = &ws->w[i];
    snprintf(w->container, sizeof(w->container), "%s", c->id);
    host_of(c->node, w->host, sizeof(w->host));
    w->granted = true;
    if (start_one(ws, i) < 0 && !ws->start_err[0])
        snprintf(ws->start_err, sizeof(ws->start_err), "worker %u (%s on %s) did not start: %s", i,
                 w->container, c->node, ag_am_errmsg(am));
}

static void on_completed(void *ud, ag_am *am, const ag_container_status *s)
{
    (void)am;
    ag_fed_workers *ws = ud;
    unsigned i;
    struct worker *w = worker_of(ws, s->id, &i);
    if (!w || w->ended)
        return;
    w->ended = true;
    w->exit_status = s->exit_status;
    snprintf(w->diag, sizeof(w->diag), "%s", s->diagnostics ? s->diagnostics : "");
}

static void on_shutdown(void *ud, ag_am *am)
{
    (void)am;
    ag_fed_workers *ws = ud;
    if (!ws->start_err[0])
        snprintf(ws->start_err, sizeof(ws->start_err), "the RM ended application %s", ws->app_id);
}

/* The master for the configured provider: the one place that chooses. */
static ag_am *am_open(const ag_cluster *c, ag_fed_workers *ws, const char *name, char *err,
                      size_t cap)
{
    const ag_cluster_workers *cw = &c->workers;
    ag_am_opts o = {
        .rm = cw->rm,
        .cb = {.allocated = on_allocated, .completed = on_completed, .shutdown = on_shutdown},
        .ud = ws};
    if (strcmp(cw->provider, "argot") == 0) {
        snprintf(ws->where, sizeof(ws->where), "RM %s", cw->rm);
        return ag_am_new_unmanaged(&o, name, cw->queue, ws->app_id, sizeof(ws->app_id), err, cap);
    }
    /* Slurm: each worker a batch job of the cluster libslurm's configuration
     * names (SLURM_CONF); no application to submit first */
    char host[200] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(ws->app_id, sizeof(ws->app_id), "slurm-%.40s-%d", host, (int)getpid());
    snprintf(ws->where, sizeof(ws->where), "Slurm (%s)", ws->app_id);
    o.provider = cw->provider;
    return ag_am_new(&o, err, cap);
}

ag_fed_workers *ag_fed_workers_start(const ag_cluster *c, const char *name, const char *const *argv,
                                     char *err, size_t cap)
{
    const ag_cluster_workers *cw = &c->workers;
    if (cw->count == 0 || cw->count > AG_CLUSTER_MAX_WORKERS) {
        snprintf(err, cap, "no workers section in the cluster config");
        return NULL;
    }
    ag_fed_workers *ws = ag_calloc(1, sizeof(*ws));
    if (!ws) {
        snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
        return NULL;
    }
    ws->count = cw->count;
    ws->argv = argv;
    ws->am = am_open(c, ws, name, err, cap);
    if (!ws->am) {
        ag_free(ws);
        return NULL;
    }
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    int rc = ag_am_register(ws->am, host, 0, "");
    if (rc == 0)
        rc =
            ag_am_ask(ws->am, 0, "*", cw->memory_mb, cw->vcores, (int32_t)cw->count, true, NULL, 0);
    ag_deadline d = ag_deadline_in_ms(WORKERS_GRANT_MS);
    while (rc == 0 && ws->granted < ws->count && !ws->start_err[0]) {
        rc = ag_am_allocate(ws->am, 0);
        if (rc == 0 && ws->granted < ws->count && ag_deadline_expired(d)) {
            snprintf(ws->start_err, sizeof(ws->start_err),
                     "%s granted %u of %u worker "
                     "containers (%lld MB, %d vcores each) within %u s",
                     ws->where, ws->granted, ws->count, (long long)cw->memory_mb, cw->vcores,
                     WORKERS_GRANT_MS / 1000);
        }
        if (rc == 0 && ws->granted < ws->count && !ws->start_err[0])
            ag_sleep_ms(50);
    }
    ws->argv = NULL;
    if (rc < 0 || ws->start_err[0]) {
        snprintf(err, cap, "%s", rc < 0 ? ag_am_errmsg(ws->am) : ws->start_err);
        ag_fed_workers_stop(ws, false, err);
        return NULL;
    }
    return ws;
}

int ag_fed_workers_check(ag_fed_workers *ws, unsigned *failed, char *err, size_t cap)
{
    if (ag_am_allocate(ws->am, 0.5f) < 0) {
        snprintf(err, cap, "the workers' %s (application %s): %s", ws->where, ws->app_id,
                 ag_am_errmsg(ws->am));
        *failed = ws->count;
        return AG_E_IO;
    }
    if (ws->start_err[0]) {
        snprintf(err, cap, "%s", ws->start_err);
        *failed = ws->count;
        return AG_E_IO;
    }
    for (unsigned i = 0; i < ws->count; i++) {
        const struct worker *w = &ws->w[i];
        if (!w->ended || w->exit_status == 0)
            continue;
        snprintf(err, cap, "worker %u (%s on %s) exited with status %d%s%.300s", i, w->container,
                 w->host, w->exit_status, w->diag[0] ? ": " : "", w->diag);
        *failed = i;
        return AG_E_IO;
    }
    return 0;
}

const char *ag_fed_workers_container(const ag_fed_workers *ws, unsigned i)
{
    return i < ws->count ? ws->w[i].container : "(no such worker)";
}

const char *ag_fed_workers_app(const ag_fed_workers *ws)
{
    return ws->app_id;
}

void ag_fed_workers_stop(ag_fed_workers *ws, bool ok, const char *diag)
{
    if (!ws)
        return;
    for (unsigned i = 0; i < ws->granted; i++) {
        struct worker *w = &ws->w[i];
        if (w->started && !w->ended && ag_am_stop(ws->am, w->container) < 0)
            AG_LOG(AG_LOG_WARN, "fed", "worker_stop_failed container=%s why=\"%s\"", w->container,
                   ag_am_errmsg(ws->am));
    }
    char d[1024];
    snprintf(d, sizeof(d), "%s", diag && *diag ? diag : ok ? "workers finished" : "failed");
    if (ag_am_finish(ws->am, ok ? AG_AM_SUCCEEDED : AG_AM_FAILED, d) < 0)
        AG_LOG(AG_LOG_WARN, "fed", "workers_finish_failed app=%s why=\"%s\"", ws->app_id,
               ag_am_errmsg(ws->am));
    ag_am_free(ws->am);
    ag_free(ws);
}
