/*
 * argot stats: joint statistics of the parties' CSV columns, computed in
 * the SPU (argot/apps.h, ag_stats_run) on the federated runtime, in
 * simulation or production mode. Every party runs the same command with its
 * own input; the parties named by --reveal-to learn the requested results,
 * print them as a table and write them as JSON (--out).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/apps.h"
#include "argot/fed.h"
#include "cmd.h"

#define STATS_DEFAULT_TIMEOUT_S 600 /* a PSI bucket or a long bisection at the peer */
#define MAX_HISTS 32
#define MAX_COLUMNS 256
#define MAX_EDGES 1024

static const struct flag_def flags[] = {
    {"sim", "PARTIES", "simulation mode: the parties, comma-separated (alice,bob)", 0},
    {"config", "FILE", "production mode: the cluster config; this process is one party", 0},
    {"party", "NAME", "production mode: the party this process is", 0},
    {"in", "[PARTY=]FILE", "a party's input CSV (header row); PARTY= in simulation mode",
     FLAG_REPEAT | FLAG_REQUIRED},
    {"key", "[PARTY=]COL[,COL]", "vertical: align the parties' rows by these key columns (a "
                                 "PSI); without it rows pair up in file order", FLAG_REPEAT},
    {"partition", "KIND", "vertical (default: each party some columns of the same rows) or "
                          "horizontal (each party some rows of the same columns)", 0},
    {"columns", "[PARTY=]COL,...", "the columns to describe (default: every non-key column "
                                   "whose first cell is a number)", FLAG_REPEAT},
    {"stats", "LIST", "count,sum,mean,var,std,min,max,quantiles,corr,hist or all (default: "
                      "all but hist)", 0},
    {"hist-edges", "COL=E1,E2,...", "a histogram of COL (its output name) with these bin "
                                    "edges", FLAG_REPEAT},
    {"reveal-to", "PARTY[,PARTY]|all", "who learns the results (default all)", 0},
    {"out", "[PARTY=]FILE.json", "where a party that learns the results writes them as JSON",
     FLAG_REPEAT},
    {"field", "FM64|FM128", "the SPU's ring when the config does not say (default FM128: "
                            "sums of squares need its range)", 0},
    {"timeout", "SECONDS", "how long to wait for another party (default 600)", 0},
    {"session", "ID", "production mode: the job id (default: the config's)", 0},
    {NULL, NULL, NULL, 0},
};

struct stats_cmd {
    int n;
    char names[MAX_SIM_PARTIES][32];
    bool here[MAX_SIM_PARTIES];           /* parties this process runs */
    ag_stats_opts o[MAX_SIM_PARTIES];
    char keybuf[MAX_SIM_PARTIES][1024];
    const char *keys[MAX_SIM_PARTIES][AG_PSI_MAX_KEYS];
    char colbuf[MAX_SIM_PARTIES][4096];
    const char *cols[MAX_SIM_PARTIES][MAX_COLUMNS];
    const char *out[MAX_SIM_PARTIES];
    ag_stats_hist hists[MAX_HISTS];
    char histcol[MAX_HISTS][160];
    double edges[MAX_HISTS][MAX_EDGES];
    size_t nhists;
    unsigned stats;
    unsigned reveal;                      /* mask of ranks; 0: all */
    ag_stats_partition partition;
    ag_stats_result res[MAX_SIM_PARTIES];
    char err[MAX_SIM_PARTIES][AG_ERRMSG_MAX];
};

static int stats_job(ag_fed *f, void *ud)
{
    struct stats_cmd *c = ud;
    unsigned me = ag_fed_rank(f);
    ag_errbuf err = {0, ""};
    int rc = ag_stats_run(f, &c->o[me], &c->res[me], &err);
    if (rc < 0)
        return rc;
    if (c->out[me] && c->res[me].learned) {
        rc = ag_stats_write_json(&c->res[me], c->out[me], &err);
        if (rc < 0)
            snprintf(c->err[me], sizeof(c->err[me]), "%s", err.msg);
    }
    return 0; /* a write error is this party's alone: reported after the run */
}

/* Splits a comma-separated list in buf (modified) into v[0..max). */
static int split(char *buf, const char **v, size_t max, size_t *n)
{
    *n = 0;
    char *save = NULL;
    for (char *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        if (*n == max)
            return -1;
        v[(*n)++] = k;
    }
    return 0;
}

/* True when v is written PARTY=... for a party of this job. */
static bool names_party(const struct stats_cmd *c, const char *v)
{
    const char *eq = strchr(v, '=');
    for (int j = 0; eq && j < c->n; j++)
        if (strlen(c->names[j]) == (size_t)(eq - v) && strncmp(v, c->names[j], (size_t)(eq - v)) == 0)
            return true;
    return false;
}

/* Party i's value of a per-party flag: its PARTY=VALUE, else the last value
 * that names no party (for every party; production: the one value). */
static const char *party_value(struct cmd_args *a, const struct stats_cmd *c,
                               const char *flag, int i, bool sim)
{
    const char *v = sim ? args_party_value(a, flag, c->names[i]) : NULL;
    for (size_t k = 0; !v && k < args_count(a, flag); k++)
        if (!sim || !names_party(c, args_at(a, flag, k)))
            v = args_at(a, flag, k);
    return v;
}

static int party_opts(struct cmd_args *a, struct stats_cmd *c, int i, bool sim)
{
    ag_stats_opts *o = &c->o[i];
    ag_stats_opts_init(o);
    o->partition = c->partition;
    o->stats = c->stats;
    o->reveal_mask = c->reveal;
    o->hists = c->hists;
    o->nhists = c->nhists;
    const char *k = party_value(a, c, "key", i, sim);
    if (k) {
        snprintf(c->keybuf[i], sizeof(c->keybuf[i]), "%s", k);
        if (split(c->keybuf[i], c->keys[i], AG_PSI_MAX_KEYS, &o->nkeys) < 0)
            return usage_error(a->sc, "--key: at most %d columns", AG_PSI_MAX_KEYS);
        o->keys = c->keys[i];
    }
    const char *cols = party_value(a, c, "columns", i, sim);
    if (cols) {
        snprintf(c->colbuf[i], sizeof(c->colbuf[i]), "%s", cols);
        if (split(c->colbuf[i], c->cols[i], MAX_COLUMNS, &o->ncolumns) < 0)
            return usage_error(a->sc, "--columns: at most %d", MAX_COLUMNS);
        o->columns = c->cols[i];
    }
    return EXIT_OK;
}

/* Flags every party shares: --partition, --stats, --hist-edges. */
static int common_opts(struct cmd_args *a, struct stats_cmd *c)
{
    const char *p = args_get(a, "partition");
    if (p && strcmp(p, "vertical") != 0 && strcmp(p, "horizontal") != 0)
        return usage_error(a->sc, "--partition %s: vertical or horizontal", p);
    c->partition = p && strcmp(p, "horizontal") == 0 ? AG_STATS_HORIZONTAL : AG_STATS_VERTICAL;
    if (c->partition == AG_STATS_HORIZONTAL && args_count(a, "key"))
        return usage_error(a->sc, "--key aligns vertically partitioned rows; horizontal "
                                  "partitioning stacks rows and takes no key");
    c->stats = AG_STATS_DEFAULT;
    ag_errbuf err = {0, ""};
    if (args_get(a, "stats") && ag_stats_parse_list(args_get(a, "stats"), &c->stats, &err) < 0)
        return usage_error(a->sc, "--stats: %s", err.msg);
    if (args_count(a, "hist-edges"))
        c->stats |= AG_STATS_HIST;
    if ((c->stats & AG_STATS_HIST) && !args_count(a, "hist-edges"))
        return usage_error(a->sc, "--stats hist needs --hist-edges COL=E1,E2,...");
    for (size_t h = 0; h < args_count(a, "hist-edges"); h++) {
        const char *v = args_at(a, "hist-edges", h), *eq = strrchr(v, '=');
        if (c->nhists == MAX_HISTS)
            return usage_error(a->sc, "--hist-edges: at most %d histograms", MAX_HISTS);
        if (!eq || eq == v || (size_t)(eq - v) >= sizeof(c->histcol[0]))
            return usage_error(a->sc, "--hist-edges %s: write COL=E1,E2,...", v);
        ag_stats_hist *hs = &c->hists[c->nhists];
        snprintf(c->histcol[c->nhists], sizeof(c->histcol[0]), "%.*s", (int)(eq - v), v);
        hs->column = c->histcol[c->nhists];
        hs->edges = c->edges[c->nhists];
        size_t ne = 0;
        for (const char *s = eq + 1; *s;) {
            char *end;
            double e = strtod(s, &end);
            if (end == s || (*end && *end != ',') || !isfinite(e) || ne == MAX_EDGES ||
                (ne && !(e > c->edges[c->nhists][ne - 1])))
                return usage_error(a->sc, "--hist-edges %s: numbers, strictly increasing, "
                                          "separated by commas", v);
            c->edges[c->nhists][ne++] = e;
            s = *end ? end + 1 : end;
        }
        if (ne < 2)
            return usage_error(a->sc, "--hist-edges %s: at least 2 edges", v);
        hs->nedges = ne;
        c->nhists++;
    }
    return EXIT_OK;
}

/* --reveal-to against the parties' names. */
static int reveal_opts(struct cmd_args *a, struct stats_cmd *c)
{
    const char *r = args_get(a, "reveal-to");
    c->reveal = 0;
    if (!r || strcmp(r, "all") == 0)
        return EXIT_OK;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", r);
    const char *v[MAX_SIM_PARTIES + 1];
    size_t n;
    if (split(buf, v, MAX_SIM_PARTIES, &n) < 0 || n == 0)
        return usage_error(a->sc, "--reveal-to %s: party names, comma-separated, or all", r);
    for (size_t i = 0; i < n; i++) {
        int found = -1;
        for (int j = 0; j < c->n; j++)
            if (strcmp(v[i], c->names[j]) == 0)
                found = j;
        if (found < 0)
            return usage_error(a->sc, "--reveal-to %s: no party '%s' in this job", r, v[i]);
        c->reveal |= 1u << found;
    }
    return EXIT_OK;
}

static bool learns(const struct stats_cmd *c, int i)
{
    return c->reveal == 0 || (c->reveal >> i) & 1u;
}

static int field_of(struct cmd_args *a, ag_field *f)
{
    const char *v = args_get(a, "field");
    *f = AG_FM128;
    if (!v || strcmp(v, "FM128") == 0)
        return EXIT_OK;
    if (strcmp(v, "FM64") == 0) {
        *f = AG_FM64;
        return EXIT_OK;
    }
    return usage_error(a->sc, "--field %s: FM64 or FM128", v);
}

/* The results: a table from the first party here that learned them, and
 * where each party's JSON went; then any write errors. */
static int report(struct stats_cmd *c)
{
    int shown = -1;
    for (int i = 0; i < c->n; i++)
        if (c->here[i] && c->res[i].learned && shown < 0)
            shown = i;
    char who[512] = "";
    size_t len = 0;
    for (int i = 0; i < c->n; i++)
        if (learns(c, i))
            len += (size_t)snprintf(who + len, sizeof(who) - AG_MIN(len, sizeof(who)), "%s%s",
                                    len ? ", " : "", c->names[i]);
    for (int i = 0; i < c->n && shown < 0; i++)
        if (c->here[i])
            printf("%s: %llu rows, %zu columns; the results went to %s only\n", c->names[i],
                   (unsigned long long)c->res[i].rows, c->res[i].ncols, who);
    if (shown >= 0) {
        printf("argot stats: %llu rows, %zu columns; revealed to %s\n\n",
               (unsigned long long)c->res[shown].rows, c->res[shown].ncols, who);
        ag_stats_print(stdout, &c->res[shown]);
    }
    int rc = EXIT_OK;
    for (int i = 0; i < c->n; i++) {
        if (!c->here[i])
            continue;
        if (c->err[i][0])
            rc = runtime_error("stats: party %s: %s", c->names[i], c->err[i]);
        else if (c->out[i] && c->res[i].learned)
            printf("%s wrote %s\n", c->names[i], c->out[i]);
        ag_stats_result_cleanup(&c->res[i]);
    }
    return rc;
}

static int run_production(struct cmd_args *a, struct stats_cmd *c, ag_fed_run *r)
{
    const char *party = args_production_party(a);
    if (!party)
        return EXIT_USAGE;
    if (args_count(a, "in") > 1 || args_count(a, "out") > 1 || args_count(a, "key") > 1 ||
        args_count(a, "columns") > 1)
        return usage_error(a->sc, "--in, --out, --key and --columns: one each in production "
                                  "mode (this party's)");
    ag_cluster cl;
    int me = args_cluster_rank(a, party, &cl);
    if (me < 0)
        return -me;
    c->n = cl.n;
    for (int i = 0; i < cl.n; i++)
        snprintf(c->names[i], sizeof(c->names[i]), "%s", cl.names[i]);
    c->here[me] = true;
    if (reveal_opts(a, c) != EXIT_OK || party_opts(a, c, me, false) != EXIT_OK)
        return EXIT_USAGE;
    c->o[me].input = args_get(a, "in");
    c->out[me] = args_get(a, "out");
    if (c->out[me] && !learns(c, me))
        return usage_error(a->sc, "--out: party %s is not in --reveal-to and learns nothing "
                                  "to write", party);
    static char session[200];
    const char *s = args_get(a, "session");
    snprintf(session, sizeof(session), "%s/stats", s ? s : cl.session);
    r->session = session;
    if (ag_fed_run_party(r, &cl, party) < 0)
        return runtime_error("stats: %s", r->err);
    return report(c);
}

static int run(struct cmd_args *a)
{
    static struct stats_cmd c;
    memset(&c, 0, sizeof(c));
    if (common_opts(a, &c) != EXIT_OK)
        return EXIT_USAGE;
    static ag_fed_run r;
    ag_fed_run_init(&r, stats_job, &c);
    if (args_seconds_ms(a, "timeout", STATS_DEFAULT_TIMEOUT_S, &r.timeout_ms) != EXIT_OK ||
        field_of(a, &r.spu.field) != EXIT_OK)
        return EXIT_USAGE;
    if (args_get(a, "config"))
        return run_production(a, &c, &r);
    c.n = args_sim_mode(a, c.names, 2, MAX_SIM_PARTIES);
    if (c.n < 0)
        return -c.n;
    if (args_party_values_check(a, "in", c.names, c.n) != EXIT_OK ||
        args_party_values_check(a, "out", c.names, c.n) != EXIT_OK ||
        reveal_opts(a, &c) != EXIT_OK)
        return EXIT_USAGE;
    const char *np[MAX_SIM_PARTIES];
    for (int i = 0; i < c.n; i++) {
        np[i] = c.names[i];
        c.here[i] = true;
        if (party_opts(a, &c, i, true) != EXIT_OK)
            return EXIT_USAGE;
        c.o[i].input = args_party_value(a, "in", c.names[i]);
        c.out[i] = args_party_value(a, "out", c.names[i]);
        if (!c.o[i].input)
            return usage_error(a->sc, "--in %s=FILE: every party needs its input", c.names[i]);
        if (c.out[i] && !learns(&c, i))
            return usage_error(a->sc, "--out %s=...: party %s is not in --reveal-to and learns "
                               "nothing to write", c.names[i], c.names[i]);
    }
    if (ag_fed_run_sim(&r, (unsigned)c.n, np) < 0)
        return runtime_error("stats: %s", r.err);
    return report(&c);
}

const struct subcmd cmd_stats = {
    .name = "stats",
    .summary = "joint statistics of the parties' columns, computed in the SPU",
    .details = "Each party secret-shares its columns into the SPU, which computes count, sum,\n"
               "mean, variance (n - 1), standard deviation, min, max, quantiles (25/50/75 %,\n"
               "linear interpolation), the Pearson correlation matrix across every party's\n"
               "columns, and histograms; only what --stats asks is opened, and only to the\n"
               "parties of --reveal-to, which print a table and write JSON (--out):\n"
               "  {\"rows\": N, \"columns\": {\"COL\": {\"count\", \"sum\", \"mean\", \"var\", "
               "\"std\",\n"
               "   \"min\", \"max\", \"q25\", \"q50\", \"q75\"}}, \"corr\": {\"columns\": [...], "
               "\"matrix\": [[...]]}}\n"
               "A name two parties hold is written party.NAME. A constant column has no\n"
               "correlation: null in JSON, '-' in the table.\n\n"
               "Vertical partitioning (the default): each party holds some columns of the\n"
               "same rows, aligned by --key through a PSI (two parties), or paired in file\n"
               "order without it. Horizontal (--partition horizontal): each party holds some\n"
               "rows of the same columns.\n\n"
               "  argot stats --sim alice,bob --in alice=a.csv --in bob=b.csv --key alice=id \\\n"
               "      --key bob=uid --reveal-to alice --out alice=stats.json\n"
               "  argot stats --config cluster.yaml --party alice --in a.csv --key id \\\n"
               "      --out stats.json",
    .flags = flags,
    .run = run,
};
