/*
 * argot psi: private set intersection of two parties' CSV files, on the
 * federated runtime (simulation or production mode) and the PSI of the
 * apps module (argot/apps.h). Every party runs the same command; each
 * names its own input and output.
 *
 * With a `workers:` section in the cluster config, a production party is a
 * coordinator: its PSI starts the workers through ag_fed_workers (this
 * binary, `argot psi` with the same flags and --worker-dir, --worker,
 * --worker-host) and the run is spread over them (apps.h, ag_psi_workers).
 * A worker serves its own link on its container's host, to the peer's
 * worker of the same index, under the session "<job>/psi/w<i>".
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argot/apps.h"
#include "argot/fed.h"
#include "cmd.h"

#define PSI_DEFAULT_TIMEOUT_S 600 /* a peer may spend minutes on a bucket's curve work */

static const struct flag_def flags[] = {
    {"sim", "PARTIES", "simulation mode: the two parties, comma-separated (alice,bob)", 0},
    {"config", "FILE", "production mode: the cluster config; this process is one party", 0},
    {"party", "NAME", "production mode: the party this process is", 0},
    {"in", "[PARTY=]FILE", "a party's input CSV (header row); PARTY= in simulation mode",
     FLAG_REPEAT | FLAG_REQUIRED},
    {"key", "[PARTY=]COL[,COL]", "the key columns, compared byte for byte in this order "
                                 "(PARTY= when a party names them otherwise)",
     FLAG_REQUIRED | FLAG_REPEAT},
    {"out", "[PARTY=]FILE", "where a receiving party writes its rows (every input column, "
                            "in the input's order)", FLAG_REPEAT},
    {"receiver", "PARTY|both", "who learns the intersection (default both)", 0},
    {"join", "KIND", "inner (default), left, right, full or difference", 0},
    {"allow-duplicates", NULL, "keep rows with repeated keys (each match pairs them, as a SQL "
                               "join; the other side learns how often each common key repeats)",
     0},
    {"protocol", "NAME", "ecdh (default): ECDH over ristretto255", 0},
    {"bucket-rows", "N", "rows per bucket (default 1048576): bounds memory", 0},
    {"threads", "N", "threads for the curve work (default: one per CPU)", 0},
    {"timeout", "SECONDS", "how long to wait for the peer (default 600)", 0},
    {"session", "ID", "production mode: the job id (default: the config's)", 0},
    {"worker-dir", "DIR", "internal: run as a worker of the coordinator whose job directory "
                          "is DIR (set by the coordinator)", 0},
    {"worker", "I", "internal: the worker's index (with --worker-dir)", 0},
    {"worker-host", "HOST", "internal: where the worker serves (with --worker-dir)", 0},
    {"report-json", "FILE", "production mode: also write this party's report as one JSON "
                            "object to FILE (for argot console)", 0},
    {"progress-json", "FILE", "production mode: append a JSON line of this party's progress "
                              "(rows, buckets, seconds) to FILE as the run goes (at most 5 a "
                              "second; none with workers)", 0},
    {NULL, NULL, NULL, 0},
};

struct psi_cmd {
    int n;
    char names[2][32];
    const char *in[2], *out[2];
    char keybuf[2][1024];
    const char *keys[2][AG_PSI_MAX_KEYS];
    size_t nkeys[2];
    ag_psi_opts base;
    char session[200];
    char raw_session[160];      /* production: the job id as given (workers get it) */
    int rc[2];
    ag_psi_report report[2];
    FILE *progress_fp; /* --progress-json, or NULL */
};

/* --progress-json: one line per call (the PSI calls at most every 200 ms,
 * one call at a time, and once at the end). */
static void progress_json(void *ud, const ag_psi_progress *p)
{
    struct psi_cmd *c = ud;
    fprintf(c->progress_fp,
            "{\"rows\": %llu, \"rows_total\": %llu, \"bucket\": %llu, \"buckets\": %llu, "
            "\"seconds\": %.3f}\n",
            (unsigned long long)p->rows_done, (unsigned long long)p->rows_total,
            (unsigned long long)p->bucket, (unsigned long long)p->buckets, p->seconds);
    fflush(c->progress_fp);
}

static int psi_job(ag_fed *f, void *ud)
{
    struct psi_cmd *c = ud;
    unsigned me = ag_fed_rank(f);
    ag_psi_opts o = c->base;
    o.input = c->in[me];
    o.output = c->out[me];
    o.keys = c->keys[me];
    o.nkeys = c->nkeys[me];
    o.session = c->session;
    o.progress = c->base.progress && (c->n == 1 || me == 0); /* one line on a terminal */
    if (c->progress_fp) {
        o.progress_fn = progress_json;
        o.progress_ud = c;
    }
    ag_errbuf err;
    memset(&err, 0, sizeof(err));
    int rc = ag_psi_run(ag_fed_link(f), &o, &c->report[me], &err);
    c->rc[me] = rc;
    if (rc < 0) /* the PSI told the peer already, in words that quote no data */
        return ag_fed_fail_local(f, rc, "%s", err.msg);
    return 0;
}

static void print_report(const struct psi_cmd *c, int i, const char *name)
{
    const ag_psi_report *r = &c->report[i];
    printf("%s: %llu rows, %llu at the peer; ", name, (unsigned long long)r->rows,
           (unsigned long long)r->peer_rows);
    if (r->receiver)
        printf("intersection %llu keys (%llu of its rows); ", (unsigned long long)r->intersection,
               (unsigned long long)r->matched_rows);
    else
        printf("not a receiver; ");
    if (c->out[i] && r->receiver)
        printf("wrote %llu rows to %s; ", (unsigned long long)r->rows_written, c->out[i]);
    char s1[32], s2[32];
    printf("sent %s, received %s in %.2f s\n", size_str(r->bytes_sent, s1, sizeof(s1)),
           size_str(r->bytes_recv, s2, sizeof(s2)), r->seconds);
}

/* --report-json: party i's report as one JSON object (the fields of
 * ag_psi_report a console shows), written whole or not at all. */
static int write_report_json(const struct psi_cmd *c, int i, const char *path)
{
    const ag_psi_report *r = &c->report[i];
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return runtime_error("--report-json %s: cannot write", path);
    fprintf(f, "{\"rows\": %llu, \"peer_rows\": %llu, \"receiver\": %s, "
               "\"intersection\": %llu, \"matched_rows\": %llu, \"rows_written\": %llu, "
               "\"bytes_sent\": %llu, \"bytes_recv\": %llu, \"seconds\": %.3f}\n",
            (unsigned long long)r->rows, (unsigned long long)r->peer_rows,
            r->receiver ? "true" : "false", (unsigned long long)r->intersection,
            (unsigned long long)r->matched_rows, (unsigned long long)r->rows_written,
            (unsigned long long)r->bytes_sent, (unsigned long long)r->bytes_recv, r->seconds);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return runtime_error("--report-json %s: cannot write", path);
    }
    return EXIT_OK;
}

/* Party i's key columns: its PARTY=COLS value, else the value without a
 * party (party NULL: production mode, one plain value). */
static int parse_keys(struct cmd_args *a, struct psi_cmd *c, int i, const char *party)
{
    const char *v = args_key_value(a, party);
    if (!v)
        return EXIT_USAGE;
    if (!party && args_count(a, "key") > 1)
        return usage_error(a->sc, "--key: one list of columns in production mode");
    return args_key_columns(a, v, c->keybuf[i], sizeof(c->keybuf[i]), c->keys[i], &c->nkeys[i],
                            AG_PSI_MAX_KEYS);
}

/* Flags that both modes share. */
static int common_opts(struct cmd_args *a, struct psi_cmd *c)
{
    ag_psi_opts_init(&c->base);
    const char *join = args_get(a, "join");
    if (join) {
        int j = ag_psi_join_parse(join);
        if (j < 0)
            return usage_error(a->sc, "--join %s: inner, left, right, full or difference", join);
        c->base.join = (ag_psi_join)j;
    }
    c->base.receiver = args_get(a, "receiver");
    c->base.allow_duplicates = args_bool(a, "allow-duplicates");
    c->base.protocol = args_get(a, "protocol");
    if (c->base.protocol && strcmp(c->base.protocol, "ecdh") != 0)
        return usage_error(a->sc, "--protocol %s: ecdh is the one built", c->base.protocol);
    const char *num[2] = {args_get(a, "bucket-rows"), args_get(a, "threads")};
    for (int i = 0; i < 2; i++) {
        if (!num[i])
            continue;
        char *end;
        unsigned long long v = strtoull(num[i], &end, 10);
        if (*end || v == 0 || (i == 1 && v > 1024) || num[i][0] == '-')
            return usage_error(a->sc, "--%s %s: a positive number%s", i ? "threads"
                                                                         : "bucket-rows",
                               num[i], i ? " (at most 1024)" : "");
        if (i == 0)
            c->base.bucket_rows = v;
        else
            c->base.threads = (unsigned)v;
    }
    c->base.progress = isatty(STDERR_FILENO) && isatty(STDOUT_FILENO);
    return EXIT_OK;
}

static int check_receiver(struct cmd_args *a, const struct psi_cmd *c)
{
    const char *r = c->base.receiver;
    if (r && strcmp(r, "both") != 0 && strcmp(r, c->names[0]) != 0 &&
        strcmp(r, c->names[1]) != 0)
        return usage_error(a->sc, "--receiver %s: no such party (%s, %s or both)", r,
                           c->names[0], c->names[1]);
    return EXIT_OK;
}

/* ---- workers -------------------------------------------------------------------- */

/* The coordinator's side of ag_psi_workers, over ag_fed_workers. */
struct coord {
    struct cmd_args *a;
    const struct psi_cmd *c;
    const ag_cluster *cl;
    const char *party;
    char config[PATH_MAX];
    char input[PATH_MAX];
    ag_fed_workers *ws;
};

static int coord_start(void *ud, const char *dir, ag_errbuf *err)
{
    struct coord *k = ud;
    const struct cmd_args *a = k->a;
    char self[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0)
        return ag_errbuf_set(err, AG_E_SYS, "cannot find the argot binary (/proc/self/exe)");
    self[sl] = '\0';
    const char *argv[40];
    size_t n = 0;
    const char *fixed[] = {self, "psi", "--config", k->config, "--party", k->party, "--in",
                           k->input, "--key", args_get(a, "key"), "--session", k->c->raw_session,
                           "--worker-dir", dir};
    for (size_t i = 0; i < AG_ARRAY_LEN(fixed); i++)
        argv[n++] = fixed[i];
    /* the flags the worker must see as given, so it agrees with the peer */
    static const char *const pass[][2] = {{"receiver", "--receiver"}, {"join", "--join"},
                                          {"protocol", "--protocol"},
                                          {"bucket-rows", "--bucket-rows"},
                                          {"threads", "--threads"}, {"timeout", "--timeout"}};
    for (size_t i = 0; i < AG_ARRAY_LEN(pass); i++) {
        const char *v = args_get(a, pass[i][0]);
        if (!v)
            continue;
        argv[n++] = pass[i][1];
        argv[n++] = v;
    }
    if (args_bool(a, "allow-duplicates"))
        argv[n++] = "--allow-duplicates";
    argv[n] = NULL;
    char name[256], e[AG_ERRMSG_MAX];
    snprintf(name, sizeof(name), "argot psi %s (%s)", k->c->session, k->party);
    k->ws = ag_fed_workers_start(k->cl, name, argv, e, sizeof(e));
    if (!k->ws)
        return ag_errbuf_set(err, AG_E_IO, "workers: %s", e);
    return 0;
}

static int coord_check(void *ud, unsigned *failed, ag_errbuf *err)
{
    struct coord *k = ud;
    char e[AG_ERRMSG_MAX];
    int rc = ag_fed_workers_check(k->ws, failed, e, sizeof(e));
    return rc < 0 ? ag_errbuf_set(err, rc, "%s", e) : 0;
}

static void coord_stop(void *ud, bool ok, const char *diag)
{
    struct coord *k = ud;
    ag_fed_workers_stop(k->ws, ok, diag);
    k->ws = NULL;
}

static const char *coord_name(void *ud, unsigned i)
{
    struct coord *k = ud;
    return k->ws ? ag_fed_workers_container(k->ws, i) : NULL;
}

/* A worker (--worker-dir): its own link to the peer's worker, then its
 * share of the run. */
static int run_worker(struct cmd_args *a, struct psi_cmd *c, const ag_cluster *cl, int me)
{
    const char *dir = args_get(a, "worker-dir"), *idx = args_get(a, "worker"),
               *host = args_get(a, "worker-host");
    char *end;
    unsigned long i = idx ? strtoul(idx, &end, 10) : 0;
    if (!idx || !host || *end || i >= AG_CLUSTER_MAX_WORKERS)
        return usage_error(a->sc, "--worker-dir goes with --worker I and --worker-host HOST");
    char listen[300], session[260], err[AG_ERRMSG_MAX];
    snprintf(listen, sizeof(listen), "%s:0", host);
    snprintf(session, sizeof(session), "%s/w%lu", c->session, i);
    const char *names[2] = {cl->names[0], cl->names[1]};
    ag_link_rpc_opts lo = {.rank = (unsigned)me, .n = 2, .names = names, .listen = listen,
                           .session = session};
    if (args_seconds_ms(a, "timeout", PSI_DEFAULT_TIMEOUT_S, &lo.timeout_ms) != EXIT_OK)
        return EXIT_USAGE;
    if (cl->has_tls) {
        lo.tls_cert = cl->tls_cert;
        lo.tls_key = cl->tls_key;
        lo.tls_ca = cl->tls_ca;
    }
    ag_link *link = ag_link_rpc_new(&lo, err, sizeof(err));
    if (!link)
        return runtime_error("psi: worker %lu cannot serve on %s: %s", i, listen, err);
    char address[300];
    snprintf(address, sizeof(address), "%s:%d", host, ag_link_rpc_port(link));
    ag_psi_opts o = c->base;
    o.input = c->in[me];
    o.keys = c->keys[me];
    o.nkeys = c->nkeys[me];
    o.session = c->session;
    o.progress = false;
    ag_errbuf e;
    memset(&e, 0, sizeof(e));
    int rc = ag_psi_worker_run(link, &o, (unsigned)i, dir, address, &e);
    ag_link_free(link);
    if (rc < 0)
        return runtime_error("psi: worker %lu: %s", i, e.msg);
    return EXIT_OK;
}

static int run_production(struct cmd_args *a, struct psi_cmd *c)
{
    const char *party = args_production_party(a), *path = args_get(a, "config");
    if (!party)
        return EXIT_USAGE;
    if (args_count(a, "in") > 1 || args_count(a, "out") > 1)
        return usage_error(a->sc, "--in and --out: one file each in production mode (this "
                                  "party's)");
    ag_cluster cl;
    int me = args_cluster_rank(a, party, &cl);
    if (me < 0)
        return -me;
    if (cl.n != 2)
        return runtime_error("%s: a PSI is between two parties, the config names %d", path,
                             cl.n);
    c->n = 1;
    for (int i = 0; i < 2; i++)
        snprintf(c->names[i], sizeof(c->names[i]), "%s", cl.names[i]);
    if (check_receiver(a, c) != EXIT_OK)
        return EXIT_USAGE;
    c->in[me] = args_get(a, "in");
    c->out[me] = args_get(a, "out");
    if (parse_keys(a, c, me, NULL) != EXIT_OK)
        return EXIT_USAGE;
    const char *session = args_get(a, "session");
    snprintf(c->raw_session, sizeof(c->raw_session), "%s", session ? session : cl.session);
    snprintf(c->session, sizeof(c->session), "%s/psi", c->raw_session);
    if (args_get(a, "worker-dir"))
        return run_worker(a, c, &cl, me);
    static struct coord k;
    static ag_psi_workers hooks;
    if (cl.workers.count > 0) {
        /* the workers run in their containers' directories: absolute paths */
        k = (struct coord){.a = a, .c = c, .cl = &cl, .party = party};
        if (!realpath(path, k.config) || !realpath(c->in[me], k.input))
            return runtime_error("psi: %s: %s", realpath(path, k.config) ? c->in[me] : path,
                                 strerror(errno));
        hooks = (ag_psi_workers){.count = cl.workers.count, .start = coord_start,
                                 .check = coord_check, .stop = coord_stop, .name = coord_name,
                                 .ud = &k};
        c->base.workers = &hooks;
    }
    static ag_fed_run r;
    ag_fed_run_init(&r, psi_job, c);
    if (args_seconds_ms(a, "timeout", PSI_DEFAULT_TIMEOUT_S, &r.timeout_ms) != EXIT_OK)
        return EXIT_USAGE;
    r.session = c->session;
    const char *pj = args_get(a, "progress-json");
    if (pj && !(c->progress_fp = fopen(pj, "w")))
        return runtime_error("--progress-json %s: %s", pj, strerror(errno));
    int frc = ag_fed_run_party(&r, &cl, party);
    if (c->progress_fp)
        fclose(c->progress_fp);
    c->progress_fp = NULL;
    if (frc < 0)
        return runtime_error("psi: %s", r.err);
    print_report(c, me, party);
    const char *rj = args_get(a, "report-json");
    return rj ? write_report_json(c, me, rj) : EXIT_OK;
}

static int run(struct cmd_args *a)
{
    static struct psi_cmd c;
    memset(&c, 0, sizeof(c));
    if (common_opts(a, &c) != EXIT_OK)
        return EXIT_USAGE;
    if (args_get(a, "config"))
        return run_production(a, &c);
    char names[MAX_SIM_PARTIES][32];
    c.n = args_sim_mode(a, names, 2, 2);
    if (c.n < 0)
        return -c.n;
    memcpy(c.names, names, sizeof(c.names));
    if (args_get(a, "report-json") || args_get(a, "progress-json"))
        return usage_error(a->sc, "--report-json and --progress-json: production mode only "
                                  "(one party's)");
    if (check_receiver(a, &c) != EXIT_OK ||
        args_party_values_check(a, "in", names, 2) != EXIT_OK ||
        args_party_values_check(a, "out", names, 2) != EXIT_OK)
        return EXIT_USAGE;
    for (int i = 0; i < 2; i++) {
        c.in[i] = args_party_value(a, "in", names[i]);
        c.out[i] = args_party_value(a, "out", names[i]);
        if (!c.in[i])
            return usage_error(a->sc, "--in %s=FILE: every party needs its input", names[i]);
        if (parse_keys(a, &c, i, names[i]) != EXIT_OK)
            return EXIT_USAGE;
    }
    uint8_t rnd[8];
    char hex[17];
    if (ag_random_bytes(rnd, sizeof(rnd)) < 0)
        return runtime_error("psi: no randomness for the session id");
    ag_hex_encode(hex, rnd, sizeof(rnd));
    snprintf(c.session, sizeof(c.session), "sim-%s/psi", hex);
    static ag_fed_run r;
    ag_fed_run_init(&r, psi_job, &c);
    if (args_seconds_ms(a, "timeout", PSI_DEFAULT_TIMEOUT_S, &r.timeout_ms) != EXIT_OK)
        return EXIT_USAGE;
    const char *np[2] = {c.names[0], c.names[1]};
    if (ag_fed_run_sim(&r, 2, np) < 0)
        return runtime_error("psi: %s", r.err);
    for (int i = 0; i < 2; i++)
        print_report(&c, i, c.names[i]);
    return EXIT_OK;
}

const struct subcmd cmd_psi = {
    .name = "psi",
    .summary = "private set intersection of two parties' CSV files",
    .details = "Two parties find the rows whose keys they have in common, without revealing\n"
               "the others: ECDH over ristretto255 with fresh secret scalars (semi-honest).\n"
               "Each receiving party writes its rows that match (or, with --join, the rows\n"
               "of a left, right or full outer join, or those that do not match), every\n"
               "input column in its order, sorted by key; a party that receives nothing\n"
               "learns only the other's row count. Output is written to a temporary name\n"
               "and renamed when both parties finished. Inputs are streamed in buckets,\n"
               "so memory stays bounded whatever their size. With workers: in the cluster\n"
               "config, each party runs its buckets in worker containers from its RM (same\n"
               "output; paths must be visible to the workers).\n\n"
               "  argot psi --sim alice,bob --in alice=a.csv --in bob=b.csv --key id \\\n"
               "      --out alice=a_out.csv --out bob=b_out.csv\n"
               "  argot psi --config cluster.yaml --party alice --in a.csv --key id --out o.csv",
    .flags = flags,
    .run = run,
};
