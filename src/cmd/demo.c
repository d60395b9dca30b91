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
 * The job is written once on the federated runtime (fed.h) and runs in
 * both modes: PYU calls read each data party's column at home, the
 * columns move into the SPU, and only five sums come out.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/apps.h"
#include "argot/fed.h"
#include "argot/link.h"
#include "argot/mpc.h"
#include "cmd.h"

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

struct demo {
    int n;
    char names[MAX_SIM_PARTIES][32];
    const char *in[2];        /* data files of ranks 0 and 1 (NULL where not known) */
    char colname[2][64];      /* their value columns, as the owners announce them */
    struct stats learned[MAX_SIM_PARTIES];
    bool psi;                 /* two parties: rows aligned by key through PSI */
    char keyname[2][64];
    ag_table *aligned[2];     /* each data party's rows in common, until its PYU call */
    ag_link_stats cost[MAX_SIM_PARTIES];
};

/* PYU, at a data party: its CSV (PYU preprocessing), then the value column
 * (the second) as numbers, and that column's name. */
static int load_table(ag_pyu_ctx *c, const ag_value *args, size_t nargs, ag_value *out)
{
    (void)args;
    (void)nargs;
    struct demo *d = ag_fed_udata(ag_pyu_fed(c));
    const char *path = d->in[ag_fed_rank(ag_pyu_fed(c))];
    char err[AG_ERRMSG_MAX];
    ag_table *t;
    int rc = ag_table_read_csv(path, &t, err, sizeof(err));
    if (rc < 0)
        return ag_pyu_error(c, rc, "%s", err);
    if (ag_table_ncols(t) < 2) {
        ag_table_free(t);
        return ag_pyu_error(c, AG_E_CSV_COLUMN, "%s: needs a key column and a value column, "
                            "has 1 column", path);
    }
    ag_value_table(out, t);
    return 0;
}

static int value_column(ag_pyu_ctx *c, const ag_value *args, size_t nargs, ag_value *out)
{
    (void)nargs;
    char err[AG_ERRMSG_MAX];
    const ag_table *t = args[0].table;
    int rc = ag_table_column_f64(t, ag_table_colname(t, 1), out, err, sizeof(err));
    return rc < 0 ? ag_pyu_error(c, rc, "%s", err) : 0;
}

static int value_name(ag_pyu_ctx *c, const ag_value *args, size_t nargs, ag_value *out)
{
    (void)c;
    (void)nargs;
    const char *name = ag_table_colname(args[0].table, 1);
    return ag_value_bytes(out, name, strlen(name));
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

/* The job, at every party. */
/* The name of the first column of path (the key), into key. */
static int key_column(const char *path, char *key, size_t cap, char *err, size_t errcap)
{
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    int rc = r ? ag_csv_reader_open(r, path) : AG_E_NOMEM;
    if (rc == 0 && ag_csv_ncols(r) < 2)
        rc = AG_E_CSV_COLUMN;
    if (rc == 0)
        snprintf(key, cap, "%s", ag_csv_colname(r, 0));
    else if (rc == AG_E_CSV_COLUMN)
        snprintf(err, errcap, "%s: needs a key column and a value column, has 1 column", path);
    else
        snprintf(err, errcap, "%s", r ? ag_csv_reader_errmsg(r) : ag_strerror(rc));
    ag_csv_reader_free(r);
    return rc;
}

/* Two parties: PSI on the key columns, so that row i is the same customer
 * at both (collective; each party passes its own file). */
static int align(ag_fed *f, struct demo *d)
{
    unsigned me = ag_fed_rank(f);
    char err[AG_ERRMSG_MAX];
    int rc = key_column(d->in[me], d->keyname[me], sizeof(d->keyname[me]), err, sizeof(err));
    if (rc < 0)
        return ag_fed_fail(f, rc, "%s", err);
    const char *keys[1] = {d->keyname[me]};
    ag_errbuf e = {0, ""};
    rc = ag_apps_align(f, d->in[me], keys, 1, &d->aligned[me], &e);
    if (rc < 0) /* the PSI told the other party, quoting no data */
        return ag_fed_fail_local(f, rc, "%s", e.msg);
    return 0;
}

static int demo_job(ag_fed *f, void *ud)
{
    struct demo *d = ud;
    unsigned me = ag_fed_rank(f);
    const char *owner[2] = {ag_fed_party_name(f, 0), ag_fed_party_name(f, 1)};
    ag_obj *tab[2], *x[2];
    if (d->psi && align(f, d) < 0)
        return -1;
    for (int k = 0; k < 2; k++) {
        if (d->psi) { /* the rows this party has in common with the other */
            ag_value v = {0};
            if ((unsigned)k == me) {
                ag_value_table(&v, d->aligned[me]);
                d->aligned[me] = NULL;
            }
            tab[k] = ag_pyu_put(f, owner[k], &v);
        } else {
            tab[k] = ag_pyu_call(f, owner[k], load_table);
        }
        x[k] = ag_to_spu(f, ag_pyu_call(f, owner[k], value_column, tab[k])); /* shared */
    }
    int rc = ag_wait(f, x[0], x[1]);
    for (int k = 0; rc == 0 && k < 2; k++) {
        ag_value name; /* schema, not data: every party may know it */
        rc = ag_reveal(f, ag_pyu_call(f, owner[k], value_name, tab[k]), &name);
        if (rc == 0)
            snprintf(d->colname[k], sizeof(d->colname[k]), "%.*s", (int)name.numel,
                     (const char *)name.data);
        ag_value_cleanup(&name);
    }
    if (rc < 0)
        return rc;
    int64_t na[1], nb[1];
    ag_obj_shape(x[0], na);
    ag_obj_shape(x[1], nb);
    if (na[0] != nb[0])
        return ag_fed_fail(f, AG_E_MPC_SHAPE, "party %s has %lld rows and party %s has %lld: "
                           "with three parties the demo joins rows in order, so both need "
                           "the same count", owner[0], (long long)na[0], owner[1],
                           (long long)nb[0]);
    int64_t row[2] = {1, na[0]}, colshape[2] = {na[0], 1};
    ag_obj *xr = ag_spu_reshape(f, x[0], 2, row), *yc = ag_spu_reshape(f, x[1], 2, colshape);
    ag_obj *s[5] = {
        ag_spu_sum(f, x[0], AG_AXIS_ALL),
        ag_spu_sum(f, x[1], AG_AXIS_ALL),
        ag_spu_matmul(f, xr, ag_spu_transpose(f, xr)),
        ag_spu_matmul(f, ag_spu_transpose(f, yc), yc),
        ag_spu_matmul(f, xr, yc),
    };
    double v[5];
    for (int i = 0; rc == 0 && i < 5; i++)
        rc = ag_reveal_f64(f, s[i], &v[i]);
    if (rc < 0)
        return rc;
    double sum[2] = {v[0], v[1]}, sq[2] = {v[2], v[3]};
    derive(&d->learned[me], (double)na[0], sum, sq, v[4]);
    ag_fed_stats(f, &d->cost[me]);
    return 0;
}

static void print_stats(const char *who, const struct demo *d, const struct stats *s)
{
    printf("%-6s learned: rows %.0f, mean %s %.3f, mean %s %.3f, std %.3f and %.3f, "
           "covariance %.3f, correlation %.4f\n",
           who, s->n, d->colname[0], s->mean[0], d->colname[1], s->mean[1], s->std[0], s->std[1],
           s->cov, s->corr);
}

/* What the parties could not compute: the same statistics in the clear,
 * rows joined by key (or in order, for three parties), available here
 * only because every party lives in this process. */
static int by_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void plaintext_check(const struct demo *d, const struct stats *secure)
{
    ag_table *t[2] = {NULL, NULL};
    ag_value v[2] = {{0}, {0}};
    const char **rows[2] = {NULL, NULL}; /* key, then a pointer to its value */
    char err[AG_ERRMSG_MAX];
    double sum[2] = {0, 0}, sq[2] = {0, 0}, cross = 0, n = 0;
    for (int k = 0; k < 2; k++)
        if (ag_table_read_csv(d->in[k], &t[k], err, sizeof(err)) < 0 || ag_table_ncols(t[k]) < 2 ||
            ag_table_column_f64(t[k], ag_table_colname(t[k], 1), &v[k], err, sizeof(err)) < 0)
            goto done;
    for (int k = 0; k < 2; k++) {
        size_t m = ag_table_nrows(t[k]);
        rows[k] = ag_calloc(m ? 2 * m : 1, sizeof(char *));
        if (!rows[k])
            goto done;
        for (size_t i = 0; i < m; i++) {
            rows[k][2 * i] = ag_table_cell(t[k], i, 0, NULL);
            rows[k][2 * i + 1] = (const char *)&ag_value_f64(&v[k])[i];
        }
        if (d->psi)
            qsort(rows[k], m, 2 * sizeof(char *), by_key);
    }
    for (size_t i = 0, j = 0; i < ag_table_nrows(t[0]) && j < ag_table_nrows(t[1]);) {
        int c = d->psi ? strcmp(rows[0][2 * i], rows[1][2 * j]) : 0;
        if (c < 0) {
            i++;
        } else if (c > 0) {
            j++;
        } else {
            double x = *(const double *)rows[0][2 * i + 1], y = *(const double *)rows[1][2 * j + 1];
            sum[0] += x;
            sum[1] += y;
            sq[0] += x * x;
            sq[1] += y * y;
            cross += x * y;
            n++;
            i++;
            j++;
        }
    }
    struct stats s;
    derive(&s, n, sum, sq, cross);
    printf("simulation check: the same statistics in the clear give correlation %.4f "
           "(secure result differs by %.2g)\n", s.corr, fabs(s.corr - secure->corr));
done:
    for (int k = 0; k < 2; k++) {
        ag_free(rows[k]);
        ag_value_cleanup(&v[k]);
        ag_table_free(t[k]);
    }
}

static void print_psi(const struct demo *d)
{
    if (!d->psi)
        return;
    const char *k0 = d->keyname[0][0] ? d->keyname[0] : NULL;
    const char *k1 = d->keyname[1][0] ? d->keyname[1] : NULL;
    char keys[160];
    if (k0 && k1 && strcmp(k0, k1) != 0)
        snprintf(keys, sizeof(keys), "%s and %s", k0, k1);
    else
        snprintf(keys, sizeof(keys), "%s", k0 ? k0 : k1 ? k1 : "the key");
    printf("PSI on %s: %.0f rows in common (each party learns which of its keys the other "
           "has, nothing else)\n", keys, d->learned[0].n ? d->learned[0].n : d->learned[1].n);
}

static void print_cost(const struct demo *d, int from, int to)
{
    printf("\ncost:");
    for (int i = from; i < to; i++)
        printf("%s %s sent %.1f KiB in %llu rounds", i > from ? ";" : "", d->names[i],
               (double)d->cost[i].bytes_sent / 1024.0, (unsigned long long)d->cost[i].rounds);
    printf("\n");
}

/* Production mode: this process is one party of the cluster config; the
 * others run the same command on their machines. */
static int run_party(struct cmd_args *a)
{
    static struct demo d;
    memset(&d, 0, sizeof(d));
    const char *party = args_production_party(a), *path = args_get(a, "config");
    if (!party)
        return EXIT_USAGE;
    ag_cluster c;
    int me = args_cluster_rank(a, party, &c);
    if (me < 0)
        return -me;
    if (c.n > 3)
        return runtime_error("%s: the demo runs 2 or 3 parties, the config names %d", path, c.n);
    if (c.has_spu && c.spu.field != AG_FM128)
        return runtime_error("%s: the demo's sums of squares need spu.field FM128", path);
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
    printf("argot demo: party %s of %d in production mode, serving %s; semi2k over FM128\n",
           party, c.n, c.addresses[me]);
    fflush(stdout);
    static ag_fed_run r;
    ag_fed_run_init(&r, demo_job, &d);
    r.spu.field = AG_FM128;
    char session[160];
    snprintf(session, sizeof(session), "%s/demo", c.session);
    r.session = session;
    d.psi = c.n == 2;
    int rc = ag_fed_run_party(&r, &c, party);
    if (me < 2)
        ag_table_free(d.aligned[me]);
    if (rc < 0)
        return runtime_error("demo: %s", r.err);
    printf("\n");
    print_psi(&d);
    print_stats(party, &d, &d.learned[me]);
    print_cost(&d, me, me + 1);
    return EXIT_OK;
}

static int run(struct cmd_args *a)
{
    if (args_get(a, "config"))
        return run_party(a);
    if (args_get(a, "party"))
        return usage_error(a->sc, "--party goes with --config (production mode)");
    static struct demo d;
    memset(&d, 0, sizeof(d));
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

    printf("argot demo: %d parties (%s, %s%s%s) in simulation mode: one process, a thread per "
           "party, in-memory links; semi2k over FM128\n",
           d.n, d.names[0], d.names[1], d.n == 3 ? ", " : "", d.n == 3 ? d.names[2] : "");
    printf("%s holds %s, %s holds %s%s%s%s; %s each secret-shares its value column, and "
           "the SPU reveals only five aggregates\n\n",
           d.names[0], d.in[0], d.names[1], d.in[1], d.n == 3 ? ", " : "",
           d.n == 3 ? d.names[2] : "", d.n == 3 ? " only computes" : "",
           d.n == 2 ? "they align their rows by key through PSI, then" : "rows are joined in "
                                                                       "order;");
    fflush(stdout);
    const char *names[3] = {d.names[0], d.names[1], d.names[2]};
    static ag_fed_run r;
    ag_fed_run_init(&r, demo_job, &d);
    r.spu.field = AG_FM128;
    d.psi = d.n == 2;
    int rc = ag_fed_run_sim(&r, (unsigned)d.n, names);
    ag_table_free(d.aligned[0]);
    ag_table_free(d.aligned[1]);
    if (rc < 0)
        return runtime_error("demo: %s", r.err);
    print_psi(&d);
    for (int i = 0; i < d.n; i++)
        print_stats(d.names[i], &d, &d.learned[i]);
    print_cost(&d, 0, d.n);
    plaintext_check(&d, &d.learned[0]);
    return EXIT_OK;
}

const struct subcmd cmd_demo = {
    .name = "demo",
    .summary = "run the main job: joint statistics of two parties' private columns",
    .details = "alice holds incomes and bob monthly spending of customers, keyed by customer\n"
               "id. With two parties they first align their rows by key through PSI (each\n"
               "learns only which of its keys the other has); with a third party, which only\n"
               "computes, rows are joined in order. Each secret-shares its column into the\n"
               "SPU (semi2k, FM128); the SPU\n"
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
