/*
 * argot demo: the README's main job. Two parties (or three: the third only
 * computes) in simulation mode: one process, one thread per party, an
 * in-memory link between them. alice (a bank) holds customers' incomes,
 * bob (a telco) their monthly spending, one row per customer in the same
 * order. Each secret-shares its column into the SPU (semi2k, FM128); the SPU
 * computes the five sufficient statistics (two sums, two sums of squares,
 * the cross product) and reveals only those, from which every party derives
 * means, standard deviations, covariance and correlation. No party sees
 * the other's rows.
 *
 * The products stay at 2f fraction bits and are revealed without
 * truncation, so the result is exact up to the inputs' encoding. The
 * federated runtime (fed, issue 6) will take over the thread and link
 * plumbing here; the job itself stays this shape.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "argot/fed.h"
#include "argot/link.h"
#include "argot/mpc.h"
#include "cmd.h"

#define TAG_ROWS ((uint64_t)1 << 62) /* demo metadata, apart from mpc's tags */

static const struct flag_def flags[] = {
    {"sim", "PARTIES", "simulation mode: parties, comma-separated: 2 or 3 (default alice,bob); "
                       "the first two hold data", 0},
    {"config", "FILE", "production mode: the cluster config; this process is one party", 0},
    {"party", "NAME", "production mode: the party this process is", 0},
    {"in", "[PARTY=]FILE", "a data party's CSV: a key column, then the value column (default "
                           "examples/PARTY.csv); PARTY= in simulation mode only", FLAG_REPEAT},
    {NULL, NULL, NULL, 0},
};

struct stats {
    double n;
    double mean[2];
    double std[2];
    double cov;
    double corr;
};

struct demo;

struct party_run {
    struct demo *d;
    unsigned rank;
    ag_link *link;
    int rc;
    char err[AG_ERRMSG_MAX];
    struct stats learned;
    ag_link_stats cost;
};

struct demo {
    ag_field field;
    int n;
    char names[MAX_SIM_PARTIES][32];
    const char *in[2];        /* data files of ranks 0 and 1 */
    char colname[2][64];      /* their value columns, filled by the readers */
    struct party_run runs[3];
};

/* Reads the second column of path as doubles into *out (ag_malloc'd); on
 * failure, err holds the reader's message (file and line). */
static int read_column(const char *path, double **out, size_t *n, char *colname, size_t cap,
                       char *err, size_t errcap)
{
    *out = NULL;
    *n = 0;
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    if (!r) {
        snprintf(err, errcap, "%s", ag_strerror(AG_E_NOMEM));
        return AG_E_NOMEM;
    }
    int rc = ag_csv_reader_open(r, path);
    if (rc < 0) {
        snprintf(err, errcap, "%s", ag_csv_reader_errmsg(r));
        goto done;
    }
    if (ag_csv_ncols(r) < 2) {
        snprintf(err, errcap, "%s: needs a key column and a value column, has 1 column", path);
        rc = AG_E_CSV_COLUMN;
        goto done;
    }
    snprintf(colname, cap, "%s", ag_csv_colname(r, 1));
    size_t cap_rows = 0;
    for (;;) {
        rc = ag_csv_next(r);
        if (rc != 1)
            break;
        if (*n == cap_rows) {
            cap_rows = cap_rows ? cap_rows * 2 : 1024;
            double *nv = ag_reallocarray(*out, cap_rows, sizeof(**out));
            if (!nv) {
                rc = AG_E_NOMEM;
                snprintf(err, errcap, "%s: %s", path, ag_strerror(rc));
                goto done;
            }
            *out = nv;
        }
        rc = ag_csv_get_double(r, 1, &(*out)[*n]);
        if (rc < 0)
            break;
        (*n)++;
    }
    if (rc < 0)
        snprintf(err, errcap, "%s", ag_csv_reader_errmsg(r));
done:
    ag_csv_reader_free(r);
    if (rc < 0) {
        ag_free(*out);
        *out = NULL;
        return rc;
    }
    return 0;
}

/* Statistics from n and the five sums. */
static void derive(struct stats *s, double n, const double sum[2], const double sq[2],
                   double cross)
{
    s->n = n;
    for (int i = 0; i < 2; i++) {
        s->mean[i] = sum[i] / n;
        double var = sq[i] / n - s->mean[i] * s->mean[i];
        s->std[i] = sqrt(var > 0 ? var : 0);
    }
    s->cov = cross / n - s->mean[0] * s->mean[1];
    s->corr = s->std[0] > 0 && s->std[1] > 0 ? s->cov / (s->std[0] * s->std[1]) : NAN;
}

/* A public ring tensor of ones (integers, not fixed point). */
static int ones(ag_mpc *m, int64_t rows, int64_t cols, ag_tensor *t)
{
    int64_t shape[2] = {rows, cols};
    int rc = ag_tensor_init(t, ag_mpc_field(m), AG_VIS_PUBLIC, 2, shape);
    for (size_t i = 0; rc == 0 && i < t->numel; i++)
        ag_tensor_u128(t)[i] = 1;
    return rc;
}

/* Reveals a 1x1 shared tensor holding a value with `bits` fraction bits. */
static int reveal_scalar(ag_mpc *m, const ag_tensor *x, unsigned bits, double *out)
{
    ag_tensor r;
    int rc = ag_mpc_reveal(m, x, &r);
    if (rc < 0)
        return rc;
    __extension__ typedef __int128 i128;
    *out = ldexp((double)(i128)ag_tensor_u128(&r)[0], -(int)bits);
    ag_tensor_cleanup(&r);
    return 0;
}

/* Each data owner tells every party its row count and its column's name
 * (schema, not data); all counts must agree. */
static int agree_rows(struct party_run *p, size_t mine, size_t *n)
{
    struct demo *d = p->d;
    uint64_t counts[2] = {mine, mine};
    for (unsigned owner = 0; owner < 2; owner++) {
        if (p->rank == owner) {
            uint8_t msg[8 + sizeof(d->colname[0])];
            size_t nl = strlen(d->colname[owner]);
            uint64_t v = mine;
            memcpy(msg, &v, 8);
            memcpy(msg + 8, d->colname[owner], nl);
            for (unsigned q = 0; q < (unsigned)d->n; q++)
                if (q != owner && ag_link_send(p->link, q, TAG_ROWS | owner, msg, 8 + nl) < 0)
                    return AG_E_LINK_ABORTED;
            continue;
        }
        void *msg;
        size_t len;
        if (ag_link_recv(p->link, owner, TAG_ROWS | owner, &msg, &len) < 0) {
            snprintf(p->err, sizeof(p->err), "%s", ag_link_errmsg(p->link));
            return AG_E_LINK_ABORTED;
        }
        if (len < 8 || len - 8 >= sizeof(d->colname[0])) {
            ag_free(msg);
            snprintf(p->err, sizeof(p->err), "party %s sent a malformed row count",
                     d->names[owner]);
            return AG_E_MPC_PROTOCOL;
        }
        memcpy(&counts[owner], msg, 8);
        if (!d->colname[owner][0]) /* in simulation mode the reader filled it already */
            snprintf(d->colname[owner], sizeof(d->colname[0]), "%.*s", (int)(len - 8),
                     (char *)msg + 8);
        ag_free(msg);
    }
    if (counts[0] != counts[1]) {
        snprintf(p->err, sizeof(p->err), "party %s has %llu rows and party %s has %llu: the "
                 "demo joins rows in order, so both need the same count", d->names[0],
                 (unsigned long long)counts[0], d->names[1], (unsigned long long)counts[1]);
        return AG_E_MPC_SHAPE;
    }
    *n = counts[0];
    return 0;
}

/* The SPU part: share both columns, five matrix products, five reveals. */
static int compute(struct party_run *p, ag_mpc *m, const double *col, size_t n)
{
    int64_t row[2] = {1, (int64_t)n}, colshape[2] = {(int64_t)n, 1};
    unsigned f = ag_mpc_fxp_bits(m);
    ag_tensor plain = {0}, x = {0}, y = {0}, xt = {0}, yt = {0}, one_c = {0}, one_r = {0};
    ag_tensor s[5] = {{0}};
    int rc = 0;
    if (p->rank < 2)
        rc = ag_mpc_encode(m, col, 2, p->rank == 0 ? row : colshape, &plain);
    if (rc == 0)
        rc = ag_mpc_share(m, 0, p->rank == 0 ? &plain : NULL, 2, row, &x);
    if (rc == 0)
        rc = ag_mpc_share(m, 1, p->rank == 1 ? &plain : NULL, 2, colshape, &y);
    if (rc == 0)
        rc = ag_tensor_transpose(&xt, &x);
    if (rc == 0)
        rc = ag_tensor_transpose(&yt, &y);
    if (rc == 0)
        rc = ones(m, (int64_t)n, 1, &one_c);
    if (rc == 0)
        rc = ones(m, 1, (int64_t)n, &one_r);
    /* sum x, sum y (local); x.x^T, y^T.y, x.y (Beaver) */
    if (rc == 0)
        rc = ag_mpc_matmul(m, &x, &one_c, &s[0]);
    if (rc == 0)
        rc = ag_mpc_matmul(m, &one_r, &y, &s[1]);
    if (rc == 0)
        rc = ag_mpc_matmul(m, &x, &xt, &s[2]);
    if (rc == 0)
        rc = ag_mpc_matmul(m, &yt, &y, &s[3]);
    if (rc == 0)
        rc = ag_mpc_matmul(m, &x, &y, &s[4]);
    double sum[2], sq[2], cross;
    if (rc == 0)
        rc = reveal_scalar(m, &s[0], f, &sum[0]);
    if (rc == 0)
        rc = reveal_scalar(m, &s[1], f, &sum[1]);
    if (rc == 0)
        rc = reveal_scalar(m, &s[2], 2 * f, &sq[0]);
    if (rc == 0)
        rc = reveal_scalar(m, &s[3], 2 * f, &sq[1]);
    if (rc == 0)
        rc = reveal_scalar(m, &s[4], 2 * f, &cross);
    if (rc == 0)
        derive(&p->learned, (double)n, sum, sq, cross);
    else
        snprintf(p->err, sizeof(p->err), "%s", ag_mpc_errmsg(m));
    ag_tensor *all[] = {&plain, &x, &y, &xt, &yt, &one_c, &one_r, &s[0], &s[1], &s[2], &s[3],
                        &s[4]};
    for (size_t i = 0; i < AG_ARRAY_LEN(all); i++)
        ag_tensor_cleanup(all[i]);
    return rc;
}

static void *party_main(void *arg)
{
    struct party_run *p = arg;
    struct demo *d = p->d;
    ag_mpc_config cfg = {d->field, 0};
    ag_mpc *m = ag_mpc_new(p->link, &cfg);
    double *col = NULL;
    size_t rows = 0, n = 0;
    if (!m) {
        p->rc = AG_E_NOMEM;
        snprintf(p->err, sizeof(p->err), "%s", ag_strerror(AG_E_NOMEM));
        ag_link_abort(p->link, p->err);
        return NULL;
    }
    p->rc = ag_mpc_setup(m);
    if (p->rc < 0)
        snprintf(p->err, sizeof(p->err), "%s", ag_mpc_errmsg(m));
    if (p->rc == 0 && p->rank < 2)
        p->rc = read_column(d->in[p->rank], &col, &rows, d->colname[p->rank],
                            sizeof(d->colname[0]), p->err, sizeof(p->err));
    if (p->rc == 0)
        p->rc = agree_rows(p, rows, &n);
    if (p->rc == 0)
        p->rc = compute(p, m, col, n);
    if (p->rc < 0)
        ag_link_abort(p->link, p->err); /* the others learn of it at once */
    ag_link_stats_get(p->link, &p->cost);
    if (col)
        ag_wipe(col, rows * sizeof(*col));
    ag_free(col);
    ag_mpc_free(m);
    return NULL;
}

static void print_stats(const char *who, const struct demo *d, const struct stats *s)
{
    printf("%-6s learned: rows %.0f, mean %s %.3f, mean %s %.3f, std %.3f and %.3f, "
           "covariance %.3f, correlation %.4f\n",
           who, s->n, d->colname[0], s->mean[0], d->colname[1], s->mean[1], s->std[0], s->std[1],
           s->cov, s->corr);
}

/* What the parties could not compute: the same statistics in the clear,
 * available here only because every party lives in this process. */
static void plaintext_check(const struct demo *d, const struct stats *secure)
{
    double *c[2] = {NULL, NULL};
    size_t n[2];
    char name[64], err[AG_ERRMSG_MAX];
    if (read_column(d->in[0], &c[0], &n[0], name, sizeof(name), err, sizeof(err)) == 0 &&
        read_column(d->in[1], &c[1], &n[1], name, sizeof(name), err, sizeof(err)) == 0 &&
        n[0] == n[1]) {
        double sum[2] = {0, 0}, sq[2] = {0, 0}, cross = 0;
        for (size_t i = 0; i < n[0]; i++) {
            for (int k = 0; k < 2; k++) {
                sum[k] += c[k][i];
                sq[k] += c[k][i] * c[k][i];
            }
            cross += c[0][i] * c[1][i];
        }
        struct stats s;
        derive(&s, (double)n[0], sum, sq, cross);
        printf("simulation check: the same statistics in the clear give correlation %.4f "
               "(secure result differs by %.2g)\n", s.corr, fabs(s.corr - secure->corr));
    }
    ag_free(c[0]);
    ag_free(c[1]);
}

/* The root cause of a failed run: the first error that is not another
 * party's abort echoed back. */
static const struct party_run *root_cause(const struct demo *d)
{
    const struct party_run *first = NULL;
    for (int i = 0; i < d->n; i++) {
        const struct party_run *p = &d->runs[i];
        if (p->rc >= 0)
            continue;
        if (!first)
            first = p;
        if (p->rc != AG_E_LINK_ABORTED && !strstr(p->err, " failed: "))
            return p;
    }
    return first;
}

static void print_cost(const struct demo *d, int from, int to)
{
    printf("\ncost:");
    for (int i = from; i < to; i++)
        printf("%s %s sent %.1f KiB in %llu rounds", i > from ? ";" : "", d->names[i],
               (double)d->runs[i].cost.bytes_sent / 1024.0,
               (unsigned long long)d->runs[i].cost.rounds);
    printf("\n");
}

/* Production mode: this process is one party of the cluster config; the
 * others run the same command on their machines. */
static int run_party(struct cmd_args *a)
{
    static struct demo d;
    memset(&d, 0, sizeof(d));
    const char *party = args_get(a, "party"), *path = args_get(a, "config");
    if (!party)
        return usage_error(a->sc, "--config needs --party NAME (which party this process is)");
    if (args_get(a, "sim"))
        return usage_error(a->sc, "--sim and --config are two modes: give one");
    ag_cluster c;
    char err[AG_ERRMSG_MAX];
    if (ag_cluster_load(path, &c, err, sizeof(err)) < 0)
        return runtime_error("%s", err);
    int me = ag_cluster_rank(&c, party);
    if (me < 0)
        return usage_error(a->sc, "--party %s: no such party in %s", party, path);
    if (c.n > 3)
        return runtime_error("%s: the demo runs 2 or 3 parties, the config names %d", path, c.n);
    if (c.spu.field != AG_FM128)
        return runtime_error("%s: the demo's sums of squares need spu.field FM128", path);
    d.field = c.spu.field;
    d.n = c.n;
    for (int i = 0; i < c.n; i++)
        snprintf(d.names[i], sizeof(d.names[i]), "%s", c.names[i]);
    static char def[64];
    const char *in = args_get(a, "in");
    if (in && args_count(a, "in") > 1)
        return usage_error(a->sc, "--in: one file in production mode (this party's)");
    if (me < 2) {
        if (!in) {
            snprintf(def, sizeof(def), "examples/%s.csv", party);
            in = def;
        }
        d.in[me] = in;
    } else if (in) {
        return usage_error(a->sc, "--in: party %s holds no data in this job", party);
    }
    const char *addrs[AG_CLUSTER_MAX_PARTIES], *names[AG_CLUSTER_MAX_PARTIES];
    for (int i = 0; i < c.n; i++) {
        addrs[i] = c.addresses[i];
        names[i] = c.names[i];
    }
    char session[160];
    snprintf(session, sizeof(session), "%s/demo", c.session);
    ag_link_rpc_opts lo = {.rank = (unsigned)me, .n = (unsigned)c.n, .names = names,
                           .addresses = addrs, .session = session};
    ag_link *link = ag_link_rpc_new(&lo, err, sizeof(err));
    if (!link)
        return runtime_error("demo: party %s: %s", party, err);
    printf("argot demo: party %s of %d in production mode, serving %s; semi2k over %s\n", party,
           c.n, c.addresses[me], ag_field_name(c.spu.field));
    fflush(stdout);
    d.runs[me] = (struct party_run){.d = &d, .rank = (unsigned)me, .link = link};
    party_main(&d.runs[me]);
    int rc = EXIT_OK;
    if (d.runs[me].rc < 0)
        rc = runtime_error("demo: party %s: %s", party, d.runs[me].err);
    else {
        printf("\n");
        print_stats(party, &d, &d.runs[me].learned);
        print_cost(&d, me, me + 1);
    }
    ag_link_free(link);
    return rc;
}

static int run(struct cmd_args *a)
{
    if (args_get(a, "config"))
        return run_party(a);
    if (args_get(a, "party"))
        return usage_error(a->sc, "--party goes with --config (production mode)");
    static struct demo d;
    memset(&d, 0, sizeof(d));
    d.field = AG_FM128;
    if (!args_get(a, "sim")) {
        snprintf(d.names[0], 32, "alice");
        snprintf(d.names[1], 32, "bob");
        d.n = 2;
    } else {
        d.n = args_sim_parties(a, "sim", d.names, 2, 3);
        if (d.n < 0)
            return -d.n;
    }
    if (args_party_values_check(a, "in", d.names, d.n) != EXIT_OK)
        return EXIT_USAGE;
    static char defaults[2][64];
    for (int i = 0; i < 2; i++) {
        d.in[i] = args_party_value(a, "in", d.names[i]);
        if (!d.in[i]) {
            snprintf(defaults[i], sizeof(defaults[i]), "examples/%s.csv", d.names[i]);
            d.in[i] = defaults[i];
        }
    }
    if (d.n == 3 && args_party_value(a, "in", d.names[2]))
        return usage_error(a->sc, "--in %s=...: party %s holds no data in this job (the first "
                           "two parties do)", d.names[2], d.names[2]);

    ag_link *links[3];
    const char *names[3] = {d.names[0], d.names[1], d.names[2]};
    int rc = ag_link_mem_group((unsigned)d.n, names, links);
    if (rc < 0)
        return runtime_error("demo: %s", ag_strerror(rc));
    printf("argot demo: %d parties (%s, %s%s%s) in simulation mode: one process, a thread per "
           "party, in-memory links; semi2k over FM128\n",
           d.n, d.names[0], d.names[1], d.n == 3 ? ", " : "", d.n == 3 ? d.names[2] : "");
    printf("%s holds %s, %s holds %s%s%s%s; each secret-shares its value column, and the SPU "
           "reveals only five aggregates\n\n",
           d.names[0], d.in[0], d.names[1], d.in[1], d.n == 3 ? ", " : "",
           d.n == 3 ? d.names[2] : "", d.n == 3 ? " only computes" : "");
    fflush(stdout);
    pthread_t th[3];
    for (int i = 0; i < d.n; i++) {
        d.runs[i] = (struct party_run){.d = &d, .rank = (unsigned)i, .link = links[i]};
        if (pthread_create(&th[i], NULL, party_main, &d.runs[i]) != 0) {
            ag_link_abort(links[0], "cannot start a party thread");
            d.n = i;
            break;
        }
    }
    for (int i = 0; i < d.n; i++)
        pthread_join(th[i], NULL);
    const struct party_run *bad = root_cause(&d);
    if (!bad)
        for (int i = 0; i < d.n; i++)
            print_stats(d.names[i], &d, &d.runs[i].learned);
    for (int i = 0; i < (int)AG_ARRAY_LEN(links) && i < d.n; i++)
        ag_link_free(links[i]);
    if (bad)
        return runtime_error("demo: party %s: %s", d.names[bad->rank], bad->err);
    print_cost(&d, 0, d.n);
    plaintext_check(&d, &d.runs[0].learned);
    return EXIT_OK;
}

const struct subcmd cmd_demo = {
    .name = "demo",
    .summary = "run the main job: joint statistics of two parties' private columns",
    .details = "alice holds incomes and bob monthly spending for the same customers, row by\n"
               "row. Each secret-shares its column into the SPU (semi2k, FM128); the SPU\n"
               "computes two sums, two sums of squares and the cross product and reveals\n"
               "only those, from which every party derives means, standard deviations,\n"
               "covariance and correlation. A third party only computes.\n\n"
               "Simulation mode (--sim, the default): one process, a thread per party,\n"
               "in-memory links. Production mode (--config cluster.yaml --party NAME): this\n"
               "process is one party; every party runs the same command with its own\n"
               "--party, and they talk gRPC to the addresses in the config.",
    .flags = flags,
    .run = run,
};
