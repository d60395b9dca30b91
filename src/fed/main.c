/*
 * ag_fed_main (fed.h): the modes. The same job runs as threads of one
 * process over in-memory links (--sim), or as this process being one party
 * over gRPC links (--config/--party, or ARGOT_CLUSTER/ARGOT_PARTY as set by
 * `argot launch`).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

typedef struct main_args {
    const char *prog;
    const char *sim, *config, *party, *session, *field;
    uint64_t timeout_ms;
    int argc;       /* the job's */
    char **argv;
    ag_spu_config spu;
    ag_fed_job *job;
    void *udata;
} main_args;

static void usage(const char *prog)
{
    printf("usage: %s --sim PARTIES [ARGS...]\n"
           "       %s --config FILE --party NAME [ARGS...]\n"
           "\n"
           "A federated job: every party runs it; calls execute where they say.\n"
           "\n"
           "  --sim PARTIES      simulation mode: one process, a thread per party, in-memory\n"
           "                     links; PARTIES comma-separated (2 to 8, e.g. alice,bob)\n"
           "  --config FILE      production mode: the cluster config (parties, addresses,\n"
           "                     spu); this process is one party\n"
           "  --party NAME       production mode: which party this process is\n"
           "  --session ID       production mode: the job id (default: the config's), so\n"
           "                     that jobs on the same addresses do not mix\n"
           "  --timeout SECONDS  how long to wait for a peer's message (default 60)\n"
           "  --field FM64|FM128 the SPU's ring, unless the config sets it\n"
           "  --help             this text\n"
           "\n"
           "Under `argot launch --sim alice,bob -- %s ARGS`, one process per party on\n"
           "loopback (launch sets ARGOT_CLUSTER and ARGOT_PARTY).\n",
           prog, prog, prog);
}

static int usage_err(const main_args *a, const char *fmt, ...) AG_PRINTF(2, 3);
static int usage_err(const main_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", a->prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see '%s --help')\n", a->prog);
    va_end(ap);
    return EXIT_USAGE;
}

static int parse(main_args *a, int argc, char **argv)
{
    a->argv = ag_calloc((size_t)argc + 1, sizeof(char *));
    if (!a->argv) {
        fprintf(stderr, "%s: out of memory\n", a->prog);
        return EXIT_RUNTIME;
    }
    a->argv[a->argc++] = argv[0];
    static const char *const names[] = {"sim", "config", "party", "session", "timeout",
                                        "field", NULL};
    bool rest = false;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (rest || strncmp(s, "--", 2) != 0) {
            a->argv[a->argc++] = argv[i];
            continue;
        }
        if (strcmp(s, "--") == 0) {
            rest = true;
            a->argv[a->argc++] = argv[i];
            continue;
        }
        if (strcmp(s, "--help") == 0) {
            usage(a->prog);
            return -1;
        }
        const char *name = s + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        int k = -1;
        for (int j = 0; names[j]; j++)
            if (strlen(names[j]) == nl && strncmp(names[j], name, nl) == 0)
                k = j;
        if (k < 0) { /* the job's own flag */
            a->argv[a->argc++] = argv[i];
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val)
            return usage_err(a, "%s needs a value", s);
        const char **slot[] = {&a->sim, &a->config, &a->party, &a->session, NULL, &a->field};
        if (k == 4) {
            char *end;
            double secs = strtod(val, &end);
            if (*end || !(secs > 0) || secs > 86400)
                return usage_err(a, "--timeout %s: give seconds, more than 0", val);
            a->timeout_ms = (uint64_t)(secs * 1000 + 0.5);
        } else {
            *slot[k] = val;
        }
    }
    a->argv[a->argc] = NULL;
    if (a->field) {
        if (strcmp(a->field, "FM64") == 0)
            a->spu.field = AG_FM64;
        else if (strcmp(a->field, "FM128") == 0)
            a->spu.field = AG_FM128;
        else
            return usage_err(a, "--field %s: FM64 or FM128", a->field);
    }
    if (!a->sim && !a->config) {
        a->config = getenv("ARGOT_CLUSTER");
        if (!a->party)
            a->party = getenv("ARGOT_PARTY");
    }
    if (a->sim && a->config)
        return usage_err(a, "%s", "--sim and --config are two modes: give one");
    if (!a->sim && !a->config)
        return usage_err(a, "%s", "choose a mode: --sim alice,bob (one process) or --config "
                                  "cluster.yaml --party NAME (this process is one party)");
    if (a->config && !a->party)
        return usage_err(a, "%s", "--config needs --party NAME (which party this process is)");
    if (a->sim && a->party)
        return usage_err(a, "%s", "--party goes with --config (production mode)");
    return EXIT_OK;
}

/* ---- running the job ---------------------------------------------------------- */

void ag_fed_run_init(ag_fed_run *r, ag_fed_job *job, void *udata)
{
    memset(r, 0, sizeof(*r));
    ag_fed_opts o;
    ag_fed_opts_init(&o);
    r->spu = o.spu;
    r->job = job;
    r->udata = udata;
}

typedef struct party_run {
    const ag_fed_run *r;
    ag_fed_opts o;
    int rc;
    char err[AG_ERRMSG_MAX];
} party_run;

static void *party_main(void *arg)
{
    party_run *p = arg;
    ag_fed *f = ag_fed_new(&p->o);
    if (!f) {
        p->rc = AG_E_NOMEM;
        snprintf(p->err, sizeof(p->err), "party %s: %s", p->o.names[p->o.rank],
                 ag_strerror(p->rc));
        ag_link_abort(p->o.link, p->err);
        return NULL;
    }
    int rc = p->r->job(f, p->r->udata);
    if (rc < 0) {
        p->rc = rc;
        const char *why = f->broken || f->err[0] ? f->err : NULL;
        if (why && strncmp(why, "party ", 6) == 0)
            snprintf(p->err, sizeof(p->err), "%s", why);
        else if (why)
            snprintf(p->err, sizeof(p->err), "party %s: %.480s", f->names[f->rank], why);
        else
            snprintf(p->err, sizeof(p->err), "party %s: the job failed (%d)",
                     f->names[f->rank], rc);
        if (!f->broken) /* the others must not wait for this party */
            ag_link_abort(p->o.link, p->err);
    }
    ag_fed_free(f);
    return NULL;
}

/* The root cause among failed parties: the first error that is not another
 * party's failure echoed back through the link. */
static const party_run *root_cause(const party_run *runs, unsigned n)
{
    const party_run *first = NULL;
    for (unsigned i = 0; i < n; i++) {
        if (runs[i].rc >= 0)
            continue;
        if (!first)
            first = &runs[i];
        if (runs[i].rc != AG_E_LINK_ABORTED && !strstr(runs[i].err, " failed: "))
            return &runs[i];
    }
    return first;
}

int ag_fed_run_sim(ag_fed_run *r, unsigned n, const char *const *names)
{
    r->err[0] = '\0';
    if (n < 2 || n > AG_CLUSTER_MAX_PARTIES) {
        snprintf(r->err, sizeof(r->err), "a job runs 2 to %d parties, not %u",
                 AG_CLUSTER_MAX_PARTIES, n);
        return AG_E_USAGE;
    }
    ag_link *links[AG_CLUSTER_MAX_PARTIES];
    int rc = ag_link_mem_group(n, names, links);
    if (rc < 0) {
        snprintf(r->err, sizeof(r->err), "%s", ag_strerror(rc));
        return rc;
    }
    party_run runs[AG_CLUSTER_MAX_PARTIES];
    pthread_t th[AG_CLUSTER_MAX_PARTIES];
    unsigned started = 0;
    for (unsigned i = 0; i < n; i++) {
        if (r->timeout_ms)
            ag_link_set_timeout_ms(links[i], r->timeout_ms);
        runs[i] = (party_run){.r = r};
        runs[i].o = (ag_fed_opts){.rank = i, .n = n, .names = names, .link = links[i],
                                  .spu = r->spu, .argc = r->argc, .argv = r->argv,
                                  .udata = r->udata};
    }
    for (; started < n; started++)
        if (pthread_create(&th[started], NULL, party_main, &runs[started]) != 0) {
            ag_link_abort(links[0], "cannot start a thread per party");
            break;
        }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < n; i++)
        ag_link_free(links[i]);
    if (started < n) {
        snprintf(r->err, sizeof(r->err), "cannot start a thread per party");
        return AG_E_SYS;
    }
    const party_run *bad = root_cause(runs, n);
    if (!bad)
        return 0;
    snprintf(r->err, sizeof(r->err), "%s", bad->err);
    return bad->rc;
}

/* While a production party runs, SIGINT and SIGTERM stop the job at every
 * party at once (an abort through the link, naming the signal) instead of
 * killing this process and leaving the others to time out. */
typedef struct stopper {
    pthread_t thread;
    ag_link *link;
    atomic_bool done;
} stopper;

static void *stopper_main(void *arg)
{
    stopper *s = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!atomic_load(&s->done)) {
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            ag_link_abort(s->link, sig == SIGINT ? "interrupted (SIGINT)"
                                                 : "stopped (SIGTERM)");
            break;
        }
    }
    return NULL;
}

int ag_fed_run_party(ag_fed_run *r, const ag_cluster *c, const char *party)
{
    r->err[0] = '\0';
    int me = ag_cluster_rank(c, party);
    if (me < 0) {
        snprintf(r->err, sizeof(r->err), "no party '%s' in the cluster config", party);
        return AG_E_USAGE;
    }
    const char *addrs[AG_CLUSTER_MAX_PARTIES], *names[AG_CLUSTER_MAX_PARTIES];
    for (int i = 0; i < c->n; i++) {
        addrs[i] = c->addresses[i];
        names[i] = c->names[i];
    }
    ag_link_rpc_opts lo = {.rank = (unsigned)me, .n = (unsigned)c->n, .names = names,
                           .addresses = addrs, .session = r->session ? r->session : c->session,
                           .timeout_ms = r->timeout_ms ? r->timeout_ms : c->timeout_ms};
    if (c->has_tls) {
        lo.tls_cert = c->tls_cert;
        lo.tls_key = c->tls_key;
        lo.tls_ca = c->tls_ca;
    }
    if (c->has_gateways) {
        /* every message leaves through this party's gateway and arrives
         * through it */
        lo.gateway = c->gateways[me];
        lo.via_gateway = true;
    }
    char err[AG_ERRMSG_MAX];
    /* the signals stay blocked in every thread (the link's inherit it) and
     * are taken by the stopper */
    sigset_t stop_set, old_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, &old_set);
    ag_link *link = ag_link_rpc_new(&lo, err, sizeof(err));
    if (!link) {
        pthread_sigmask(SIG_SETMASK, &old_set, NULL);
        size_t al = strlen(c->addresses[me]);
        bool named = strncmp(err, c->addresses[me], al) == 0 && strncmp(err + al, ": ", 2) == 0;
        snprintf(r->err, sizeof(r->err), "party %s cannot serve on %s: %.400s", party,
                 c->addresses[me], named ? err + al + 2 : err);
        return AG_E_IO;
    }
    party_run run = {.r = r};
    run.o = (ag_fed_opts){.rank = (unsigned)me, .n = (unsigned)c->n, .names = names,
                          .link = link, .spu = c->has_spu ? c->spu : r->spu, .argc = r->argc,
                          .argv = r->argv, .udata = r->udata, .session = lo.session};
    if (c->has_tls) {
        run.o.tls_cert = c->tls_cert;
        run.o.tls_key = c->tls_key;
        run.o.tls_ca = c->tls_ca;
    }
    stopper st = {.link = link};
    atomic_init(&st.done, false);
    bool watching = pthread_create(&st.thread, NULL, stopper_main, &st) == 0;
    party_main(&run);
    atomic_store(&st.done, true);
    if (watching)
        pthread_join(st.thread, NULL);
    ag_link_free(link);
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    if (run.rc < 0)
        snprintf(r->err, sizeof(r->err), "%s", run.err);
    return run.rc < 0 ? run.rc : 0;
}

/* ---- ag_fed_main ------------------------------------------------------------------ */

static int parse_parties(const main_args *a, char names[][32])
{
    int n = 0;
    const char *s = a->sim;
    for (;;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (n == AG_CLUSTER_MAX_PARTIES)
            return usage_err(a, "--sim %s: at most 8 parties", a->sim), -1;
        if (len == 0 || len >= 32 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") < len)
            return usage_err(a, "--sim %s: party names are lowercase letters, digits, _ and -",
                             a->sim), -1;
        memcpy(names[n], s, len);
        names[n][len] = '\0';
        for (int i = 0; i < n; i++)
            if (strcmp(names[i], names[n]) == 0)
                return usage_err(a, "--sim: party '%s' appears twice", names[n]), -1;
        n++;
        if (!e)
            break;
        s = e + 1;
    }
    if (n < 2)
        return usage_err(a, "--sim %s: a job needs at least 2 parties", a->sim), -1;
    return n;
}

static void run_from_args(ag_fed_run *r, const main_args *a)
{
    ag_fed_run_init(r, a->job, a->udata);
    r->spu = a->spu;
    r->timeout_ms = a->timeout_ms;
    r->session = a->session;
    r->argc = a->argc;
    r->argv = a->argv;
}

static int run_sim(main_args *a)
{
    char names[AG_CLUSTER_MAX_PARTIES][32];
    int n = parse_parties(a, names);
    if (n < 0)
        return EXIT_USAGE;
    const char *np[AG_CLUSTER_MAX_PARTIES];
    for (int i = 0; i < n; i++)
        np[i] = names[i];
    static ag_fed_run r;
    run_from_args(&r, a);
    if (ag_fed_run_sim(&r, (unsigned)n, np) == 0)
        return EXIT_OK;
    fprintf(stderr, "%s: %s\n", a->prog, r.err);
    return EXIT_RUNTIME;
}

static int run_party(main_args *a)
{
    ag_cluster c;
    char err[AG_ERRMSG_MAX];
    if (ag_cluster_load(a->config, &c, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", a->prog, err);
        return EXIT_RUNTIME;
    }
    if (ag_cluster_rank(&c, a->party) < 0) {
        fprintf(stderr, "%s: --party %s: no such party in %s\n", a->prog, a->party, a->config);
        return EXIT_USAGE;
    }
    static ag_fed_run r;
    run_from_args(&r, a);
    if (ag_fed_run_party(&r, &c, a->party) == 0)
        return EXIT_OK;
    fprintf(stderr, "%s: %s\n", a->prog, r.err);
    return EXIT_RUNTIME;
}

int ag_fed_main_ud(int argc, char **argv, ag_fed_job *job, void *udata,
                   const ag_spu_config *defaults)
{
    main_args a = {.job = job, .udata = udata};
    const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
    a.prog = argc > 0 ? (slash ? slash + 1 : argv[0]) : "argot";
    ag_fed_opts o;
    ag_fed_opts_init(&o);
    a.spu = defaults ? *defaults : o.spu;
    int rc = argc > 0 ? parse(&a, argc, argv) : EXIT_USAGE;
    if (rc == 0)
        rc = a.sim ? run_sim(&a) : run_party(&a);
    fflush(stdout);
    ag_free(a.argv);
    return rc < 0 ? EXIT_OK : rc;
}

int ag_fed_main(int argc, char **argv, ag_fed_job *job, const ag_spu_config *defaults)
{
    return ag_fed_main_ud(argc, argv, job, NULL, defaults);
}
