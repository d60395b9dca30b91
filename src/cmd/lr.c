/*
 * argot lr train / argot lr predict: logistic regression on vertically
 * partitioned CSV files (apps.h, "logistic regression"), on the fed
 * runtime in simulation or production mode. Each party names its own
 * input; rows are aligned by --key through a PSI (or, without --key, taken
 * to be in the same order already). Training writes a model file per
 * party; prediction writes the scores at the party holding the label.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argot/apps.h"
#include "argot/fed.h"
#include "cmd.h"

#define LR_DEFAULT_TIMEOUT_S 600

#define COMMON_FLAGS                                                                        \
    {"sim", "PARTIES", "simulation mode: the two parties, comma-separated (alice,bob)", 0},     \
    {"config", "FILE", "production mode: the cluster config; this process is one party", 0}, \
    {"party", "NAME", "production mode: the party this process is", 0},                       \
    {"in", "[PARTY=]FILE", "a party's CSV (header row); PARTY= in simulation mode",            \
     FLAG_REPEAT | FLAG_REQUIRED},                                                             \
    {"key", "[PARTY=]COL[,COL]", "align rows by these key columns (a PSI); without it, row i " \
                                 "of every file is the same entity", FLAG_REPEAT},             \
    {"field", "FM64|FM128", "the SPU's ring when the config does not say (default FM64)", 0}, \
    {"timeout", "SECONDS", "how long to wait for the peer (default 600)", 0},                 \
    {"session", "ID", "production mode: the job id (default: the config's)", 0}

static const struct flag_def train_flags[] = {
    COMMON_FLAGS,
    {"label", "PARTY:COLUMN", "the party holding the 0/1 label, and its column", FLAG_REQUIRED},
    {"model-out", "[PARTY=]FILE", "where a party writes its model file", FLAG_REPEAT |
                                                                         FLAG_REQUIRED},
    {"epochs", "N", "passes over the data (default 10)", 0},
    {"batch-size", "N", "rows per SGD step (default 1024)", 0},
    {"learning-rate", "X", "SGD step size (default 0.1)", 0},
    {"l2", "X", "L2 penalty on the weights, not the intercept (default 0)", 0},
    {"sigmoid", "MODE", "seg3 (default), real or mm1: the SPU's approximation", 0},
    {"reveal-to", "PARTY[,PARTY]", "parties that learn the weights (default: none; they stay "
                                   "secret-shared)", 0},
    {"no-beaver-cache", NULL, "open each batch's masked features every epoch instead of once "
                              "(less memory: the cache holds 2-3 times the features)", 0},
    {"progress-json", "FILE", "production mode: append one JSON line per finished epoch "
                              "(epoch, epochs, loss, seconds, bytes_sent) to FILE (for argot "
                              "console)", 0},
    {"report-json", "FILE", "production mode: also write this party's report as one JSON "
                            "object to FILE (for argot console)", 0},
    {NULL, NULL, NULL, 0},
};

static const struct flag_def predict_flags[] = {
    COMMON_FLAGS,
    {"model", "[PARTY=]FILE", "a party's model file (from lr train)", FLAG_REPEAT |
                                                                       FLAG_REQUIRED},
    {"out", "[PARTY=]FILE", "the scores (CSV: the key columns and score), at the party holding "
                            "the label", FLAG_REPEAT},
    {NULL, NULL, NULL, 0},
};

struct lr_cmd {
    bool train;
    int n;                      /* parties run by this process: 2 (sim) or 1 */
    char names[2][32];
    const char *in[2];
    char keybuf[2][1024];
    const char *keys[2][AG_PSI_MAX_KEYS];
    size_t nkeys[2];
    char label_party[32];
    const char *label_col;
    const char *model_path[2];  /* train: out; predict: in */
    const char *out[2];
    ag_lr_opts opts;
    ag_lr_model model[2];       /* predict: loaded */
    bool progress;
    int print_rank;             /* the rank whose epochs are printed */
    size_t rows[2];
    size_t features[2];
    ag_link_stats cost[2];
    double seconds[2];
    FILE *progress_fp;          /* --progress-json, or NULL */
};

/* ---- the jobs -------------------------------------------------------------------------- */

/* A failure of the library inside the job: the runtime may know it already
 * (an error that travelled from the other party), else this party tells. */
static int job_fail(ag_fed *f, int rc, const char *msg)
{
    if (ag_fed_errmsg(f)[0])
        return rc;
    return ag_fed_fail(f, rc, "%s", msg);
}

/* This party's rows: aligned by key (a PSI) or the file as it is. */
static int load_rows(ag_fed *f, struct lr_cmd *c, ag_table **t)
{
    unsigned me = ag_fed_rank(f);
    if (c->nkeys[me]) {
        ag_errbuf err = {0, ""};
        int rc = ag_apps_align(f, c->in[me], c->keys[me], c->nkeys[me], t, &err);
        /* the PSI told the peer in words that quote no data */
        return rc < 0 ? ag_fed_fail_local(f, rc, "%s", err.msg) : 0;
    }
    char err[AG_ERRMSG_MAX];
    int rc = ag_table_read_csv(c->in[me], t, err, sizeof(err));
    return rc < 0 ? ag_fed_fail(f, rc, "%s", err) : 0;
}

static bool is_key(const struct lr_cmd *c, unsigned me, const char *col)
{
    for (size_t k = 0; k < c->nkeys[me]; k++)
        if (strcmp(c->keys[me][k], col) == 0)
            return true;
    return false;
}

/* The label column as 0/1 doubles, with the line of a bad one. */
static int read_label(ag_fed *f, const struct lr_cmd *c, const ag_table *t, double **y)
{
    unsigned me = ag_fed_rank(f);
    int col = ag_table_col(t, c->label_col);
    if (col < 0)
        return ag_fed_fail(f, AG_E_CSV_COLUMN, "%s: no label column '%s'", c->in[me],
                           c->label_col);
    size_t rows = ag_table_nrows(t);
    *y = ag_malloc(rows * sizeof(double) + 1);
    if (!*y)
        return ag_fed_fail(f, AG_E_NOMEM, "no memory");
    for (size_t i = 0; i < rows; i++) {
        const char *v = ag_table_cell(t, i, (size_t)col, NULL);
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0 && strcmp(v, "0.0") != 0 &&
            strcmp(v, "1.0") != 0)
            return ag_fed_fail(f, AG_E_LR_DATA, "%s:%llu: the label '%s' must be 0 or 1",
                               c->in[me], (unsigned long long)ag_table_line(t, i),
                               c->label_col);
        (*y)[i] = v[0] == '1';
    }
    return 0;
}

static void on_epoch(void *ud, const ag_lr_epoch *e, bool done)
{
    struct lr_cmd *c = ud;
    if (c->progress && !done) {
        fprintf(stderr, "\repoch %u/%u: batch %zu/%zu (%.0f%%), %.1f s, sent %.1f MiB   ",
                e->epoch, e->epochs, e->batch, e->batches, 100.0 * (double)e->batch /
                (double)e->batches, e->seconds, (double)e->bytes_sent / 1048576.0);
        fflush(stderr);
        return;
    }
    if (c->progress)
        fprintf(stderr, "\r%70s\r", "");
    if (c->progress_fp) {
        fprintf(c->progress_fp, "{\"epoch\": %u, \"epochs\": %u, \"loss\": %.9g, "
                "\"seconds\": %.3f, \"bytes_sent\": %llu}\n", e->epoch, e->epochs, e->loss,
                e->seconds, (unsigned long long)e->bytes_sent);
        fflush(c->progress_fp);
    }
    printf("epoch %u/%u: loss %.6f (mean squared residual), %.2f s, sent %.2f MiB\n", e->epoch, e->epochs, e->loss,
           e->seconds, (double)e->bytes_sent / 1048576.0);
    fflush(stdout);
}

/* Per-party options: only the printing party's epochs are reported. */
static _Thread_local bool tl_print;
static void on_epoch_party(void *ud, const ag_lr_epoch *e, bool done)
{
    if (tl_print)
        on_epoch(ud, e, done);
}

static int train_job(ag_fed *f, void *ud)
{
    struct lr_cmd *c = ud;
    unsigned me = ag_fed_rank(f);
    uint64_t t0 = ag_now_ns();
    ag_table *t = NULL;
    int rc = load_rows(f, c, &t);
    if (rc < 0)
        return rc;
    bool has_label = strcmp(c->label_party, ag_fed_party(f)) == 0;
    size_t nc = ag_table_ncols(t), nf = 0;
    const char **cols = ag_calloc(nc + 1, sizeof(*cols));
    double *x = NULL, *y = NULL;
    ag_lr_model model;
    memset(&model, 0, sizeof(model));
    if (!cols) {
        rc = ag_fed_fail(f, AG_E_NOMEM, "no memory");
        goto out;
    }
    for (size_t j = 0; j < nc; j++) {
        const char *name = ag_table_colname(t, j);
        if (!is_key(c, me, name) && !(has_label && strcmp(name, c->label_col) == 0))
            cols[nf++] = name;
    }
    if (has_label && (rc = read_label(f, c, t, &y)) < 0)
        goto out;
    ag_errbuf err = {0, ""};
    rc = ag_lr_table_matrix(t, c->in[me], cols, nf, &x, &err);
    if (rc < 0) {
        rc = ag_fed_fail(f, rc, "%s", err.msg);
        goto out;
    }
    ag_lr_data d = {ag_table_nrows(t), nf, x, cols, y, c->in[me]};
    ag_lr_opts o = c->opts;
    o.label_rank = (unsigned)ag_fed_party_rank(f, c->label_party);
    o.epoch_fn = on_epoch_party;
    o.epoch_ud = c;
    tl_print = (int)me == c->print_rank || c->n == 1;
    rc = ag_lr_train(f, &d, &o, &model, &err);
    if (rc < 0) {
        rc = job_fail(f, rc, err.msg);
        goto out;
    }
    rc = ag_lr_model_save(&model, c->model_path[me], &err);
    if (rc < 0) {
        rc = ag_fed_fail_local(f, rc, "%s", err.msg);
        goto out;
    }
    c->rows[me] = d.rows;
    c->features[me] = nf;
    ag_fed_stats(f, &c->cost[me]);
    c->seconds[me] = (double)(ag_now_ns() - t0) / 1e9;
out:
    ag_lr_model_cleanup(&model);
    ag_free(x);
    ag_free(y);
    ag_free(cols);
    ag_table_free(t);
    return rc;
}

/* A CSV field, quoted when it must be (RFC 4180). */
static void put_field(FILE *fp, const char *s)
{
    if (!s[strcspn(s, ",\"\r\n")]) {
        fputs(s, fp);
        return;
    }
    fputc('"', fp);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', fp);
        fputc(*s, fp);
    }
    fputc('"', fp);
}

/* The scores CSV, atomically: the key columns (or "row") and score. */
static int write_scores(const struct lr_cmd *c, unsigned me, const ag_table *t,
                        const double *s, char *err, size_t errcap)
{
    const char *path = c->out[me];
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "w");
    if (!fp) {
        snprintf(err, errcap, "%.400s: %s", tmp, strerror(errno));
        return AG_E_IO;
    }
    int kc[AG_PSI_MAX_KEYS];
    for (size_t k = 0; k < c->nkeys[me]; k++) {
        kc[k] = ag_table_col(t, c->keys[me][k]);
        put_field(fp, c->keys[me][k]);
        fputc(',', fp);
    }
    if (!c->nkeys[me])
        fputs("row,", fp);
    fputs("score\n", fp);
    for (size_t i = 0; i < ag_table_nrows(t); i++) {
        for (size_t k = 0; k < c->nkeys[me]; k++) {
            put_field(fp, ag_table_cell(t, i, (size_t)kc[k], NULL));
            fputc(',', fp);
        }
        if (!c->nkeys[me])
            fprintf(fp, "%zu,", i + 1);
        fprintf(fp, "%.9g\n", s[i]);
    }
    int bad = ferror(fp) || fflush(fp) != 0 || fsync(fileno(fp)) != 0;
    if (fclose(fp) != 0)
        bad = 1;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errcap, "%.400s: %s", path, strerror(errno));
        unlink(tmp);
        return AG_E_IO;
    }
    return 0;
}

static int predict_job(ag_fed *f, void *ud)
{
    struct lr_cmd *c = ud;
    unsigned me = ag_fed_rank(f);
    uint64_t t0 = ag_now_ns();
    const ag_lr_model *md = &c->model[me];
    ag_table *t = NULL;
    int rc = load_rows(f, c, &t);
    if (rc < 0)
        return rc;
    double *x = NULL, *scores = NULL;
    ag_errbuf err = {0, ""};
    size_t nf = md->cols[md->me];
    rc = ag_lr_table_matrix(t, c->in[me], (const char *const *)md->names, nf, &x, &err);
    if (rc < 0) {
        rc = ag_fed_fail(f, rc, "%s", err.msg);
        goto out;
    }
    ag_lr_data d = {ag_table_nrows(t), nf, x, (const char *const *)md->names, NULL, c->in[me]};
    rc = ag_lr_predict(f, md, &d, &scores, &err);
    if (rc < 0) {
        rc = job_fail(f, rc, err.msg);
        goto out;
    }
    if (scores) {
        char e[AG_ERRMSG_MAX];
        rc = write_scores(c, me, t, scores, e, sizeof(e));
        if (rc < 0) {
            rc = ag_fed_fail_local(f, rc, "%s", e);
            goto out;
        }
    }
    c->rows[me] = d.rows;
    ag_fed_stats(f, &c->cost[me]);
    c->seconds[me] = (double)(ag_now_ns() - t0) / 1e9;
out:
    ag_free(x);
    ag_free(scores);
    ag_table_free(t);
    return rc;
}

/* ---- flags ------------------------------------------------------------------------------ */

/* Party i's key columns (none: rows in file order). */
static int parse_keys(struct cmd_args *a, struct lr_cmd *c, int i, const char *party)
{
    if (!args_count(a, "key"))
        return EXIT_OK;
    const char *v = args_key_value(a, party);
    if (!v)
        return EXIT_USAGE;
    return args_key_columns(a, v, c->keybuf[i], sizeof(c->keybuf[i]), c->keys[i], &c->nkeys[i],
                            AG_PSI_MAX_KEYS);
}

static int parse_num(struct cmd_args *a, const char *flag, double lo, double hi, bool integer,
                     double *out)
{
    const char *s = args_get(a, flag);
    if (!s)
        return EXIT_OK;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || !*s || errno || !(v >= lo && v <= hi) || (integer && v != floor(v)))
        return usage_error(a->sc, "--%s %s: %s from %g to %g", flag, s,
                           integer ? "a whole number" : "a number", lo, hi);
    *out = v;
    return EXIT_OK;
}

static int train_opts(struct cmd_args *a, struct lr_cmd *c)
{
    ag_lr_opts_init(&c->opts);
    double ep = c->opts.epochs, bs = (double)c->opts.batch_size;
    if (parse_num(a, "epochs", 1, 100000, true, &ep) != EXIT_OK ||
        parse_num(a, "batch-size", 1, 1 << 24, true, &bs) != EXIT_OK ||
        parse_num(a, "learning-rate", 1e-9, 1e6, false, &c->opts.learning_rate) != EXIT_OK ||
        parse_num(a, "l2", 0, 1e6, false, &c->opts.l2) != EXIT_OK)
        return EXIT_USAGE;
    c->opts.epochs = (unsigned)ep;
    c->opts.beaver_cache = !args_bool(a, "no-beaver-cache");
    c->opts.batch_size = (size_t)bs;
    const char *sg = args_get(a, "sigmoid");
    if (sg) {
        int s = ag_lr_sigmoid_parse(sg);
        if (s < 0)
            return usage_error(a->sc, "--sigmoid %s: real, seg3 or mm1", sg);
        c->opts.sigmoid = (ag_sigmoid_mode)s;
    }
    const char *label = args_get(a, "label");
    const char *colon = strchr(label, ':');
    if (!colon || colon == label || !colon[1] || (size_t)(colon - label) >= sizeof(c->label_party))
        return usage_error(a->sc, "--label %s: PARTY:COLUMN (bob:default)", label);
    snprintf(c->label_party, sizeof(c->label_party), "%.*s", (int)(colon - label), label);
    c->label_col = colon + 1;
    return EXIT_OK;
}

/* Checks the names in --label and --reveal-to against the parties. */
static int check_parties(struct cmd_args *a, struct lr_cmd *c)
{
    if (!c->train)
        return EXIT_OK;
    if (strcmp(c->label_party, c->names[0]) != 0 && strcmp(c->label_party, c->names[1]) != 0)
        return usage_error(a->sc, "--label %s:...: no such party (%s or %s)", c->label_party,
                           c->names[0], c->names[1]);
    const char *rv = args_get(a, "reveal-to");
    if (!rv)
        return EXIT_OK;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", rv);
    char *save = NULL;
    for (char *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        int r = strcmp(p, c->names[0]) == 0 ? 0 : strcmp(p, c->names[1]) == 0 ? 1 : -1;
        if (r < 0)
            return usage_error(a->sc, "--reveal-to %s: no such party (%s, %s)", p, c->names[0],
                               c->names[1]);
        c->opts.reveal_mask |= 1u << r;
    }
    return EXIT_OK;
}

static int field_opt(struct cmd_args *a, ag_spu_config *spu)
{
    const char *fl = args_get(a, "field");
    if (!fl)
        return EXIT_OK;
    if (strcmp(fl, "FM64") == 0)
        spu->field = AG_FM64;
    else if (strcmp(fl, "FM128") == 0)
        spu->field = AG_FM128;
    else
        return usage_error(a->sc, "--field %s: FM64 or FM128", fl);
    return EXIT_OK;
}

static void report(const struct lr_cmd *c, int i)
{
    char s1[32], s2[32];
    const char *name = c->names[i];
    if (c->train)
        printf("%s: %zu rows, %zu features; model written to %s (weights %s); sent %s, "
               "received %s in %.2f s\n", name, c->rows[i], c->features[i], c->model_path[i],
               c->opts.reveal_mask >> i & 1 ? "revealed to it" : "secret-shared",
               size_str(c->cost[i].bytes_sent, s1, sizeof(s1)),
               size_str(c->cost[i].bytes_recv, s2, sizeof(s2)), c->seconds[i]);
    else if (c->out[i])
        printf("%s: scored %zu rows into %s; sent %s, received %s in %.2f s\n", name, c->rows[i],
               c->out[i], size_str(c->cost[i].bytes_sent, s1, sizeof(s1)),
               size_str(c->cost[i].bytes_recv, s2, sizeof(s2)), c->seconds[i]);
    else
        printf("%s: %zu rows scored for the label party; sent %s, received %s in %.2f s\n", name,
               c->rows[i], size_str(c->cost[i].bytes_sent, s1, sizeof(s1)),
               size_str(c->cost[i].bytes_recv, s2, sizeof(s2)), c->seconds[i]);
}

/* --report-json (train, production): party i's report as one JSON object,
 * written whole or not at all. */
static int write_report_json(const struct lr_cmd *c, int i, const char *path)
{
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return runtime_error("--report-json %s: cannot write", path);
    fprintf(f, "{\"rows\": %zu, \"features\": %zu, \"bytes_sent\": %llu, "
               "\"bytes_recv\": %llu, \"seconds\": %.3f, \"weights_revealed\": %s}\n",
            c->rows[i], c->features[i], (unsigned long long)c->cost[i].bytes_sent,
            (unsigned long long)c->cost[i].bytes_recv, c->seconds[i],
            c->opts.reveal_mask >> i & 1 ? "true" : "false");
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return runtime_error("--report-json %s: cannot write", path);
    }
    return EXIT_OK;
}

/* Predict: loads party i's model and checks who receives the scores. */
static int load_model(struct cmd_args *a, struct lr_cmd *c, int i)
{
    ag_errbuf err = {0, ""};
    if (ag_lr_model_load(c->model_path[i], &c->model[i], &err) < 0)
        return runtime_error("lr predict: %s", err.msg);
    const ag_lr_model *m = &c->model[i];
    if (strcmp(m->party, c->names[i]) != 0)
        return runtime_error("lr predict: %s is party %s's model, not %s's", c->model_path[i],
                             m->party, c->names[i]);
    bool label = m->label_rank == m->me;
    if (label && !c->out[i])
        return usage_error(a->sc, "--out %s%sFILE: party %s holds the label and receives the "
                           "scores", c->n == 2 ? c->names[i] : "", c->n == 2 ? "=" : "",
                           c->names[i]);
    if (!label && c->out[i])
        return usage_error(a->sc, "--out: party %s does not hold the label (%s does): the "
                           "scores go there", c->names[i], m->parties[m->label_rank]);
    return EXIT_OK;
}

static int run_job(struct cmd_args *a, struct lr_cmd *c, const ag_cluster *cl, const char *party)
{
    static ag_fed_run r;
    ag_fed_run_init(&r, c->train ? train_job : predict_job, c);
    if (args_seconds_ms(a, "timeout", LR_DEFAULT_TIMEOUT_S, &r.timeout_ms) != EXIT_OK ||
        field_opt(a, &r.spu) != EXIT_OK)
        return EXIT_USAGE;
    int rc;
    const char *what = c->train ? "lr train" : "lr predict";
    static char session[200];
    if (cl) {
        const char *s = args_get(a, "session");
        snprintf(session, sizeof(session), "%s/lr", s ? s : cl->session);
        r.session = session;
        rc = ag_fed_run_party(&r, cl, party);
    } else {
        const char *np[2] = {c->names[0], c->names[1]};
        rc = ag_fed_run_sim(&r, 2, np);
    }
    if (rc < 0)
        return runtime_error("%s: %s", what, r.err);
    for (int i = 0; i < 2; i++)
        if (!cl || strcmp(c->names[i], party) == 0)
            report(c, i);
    const char *rj = c->train && cl ? args_get(a, "report-json") : NULL;
    return rj ? write_report_json(c, ag_cluster_rank(cl, party), rj) : EXIT_OK;
}

static int run_production(struct cmd_args *a, struct lr_cmd *c)
{
    const char *party = args_production_party(a), *path = args_get(a, "config");
    if (!party)
        return EXIT_USAGE;
    const char *mflag = c->train ? "model-out" : "model";
    if (args_count(a, "in") > 1 || (!c->train && args_count(a, "out") > 1) ||
        args_count(a, mflag) > 1 ||
        args_count(a, "key") > 1)
        return usage_error(a->sc, "--in, --key, --%s and --out: one each in production mode "
                                  "(this party's)", mflag);
    ag_cluster cl;
    int me = args_cluster_rank(a, party, &cl);
    if (me < 0)
        return -me;
    if (cl.n != 2)
        return runtime_error("%s: logistic regression is between two parties, the config "
                             "names %d", path, cl.n);
    c->n = 1;
    for (int i = 0; i < 2; i++)
        snprintf(c->names[i], sizeof(c->names[i]), "%s", cl.names[i]);
    if (check_parties(a, c) != EXIT_OK)
        return EXIT_USAGE;
    c->in[me] = args_get(a, "in");
    c->out[me] = c->train ? NULL : args_get(a, "out");
    c->model_path[me] = args_get(a, mflag);
    c->print_rank = me;
    if (parse_keys(a, c, me, NULL) != EXIT_OK)
        return EXIT_USAGE;
    if (!c->train) {
        int rc = load_model(a, c, me);
        if (rc != EXIT_OK)
            return rc;
    }
    const char *pj = c->train ? args_get(a, "progress-json") : NULL;
    if (pj && !(c->progress_fp = fopen(pj, "w")))
        return runtime_error("--progress-json %s: %s", pj, strerror(errno));
    int rc = run_job(a, c, &cl, party);
    if (c->progress_fp)
        fclose(c->progress_fp);
    c->progress_fp = NULL;
    return rc;
}

static int run_common(struct cmd_args *a, bool train)
{
    static struct lr_cmd c;
    for (int i = 0; i < 2; i++)
        ag_lr_model_cleanup(&c.model[i]);
    memset(&c, 0, sizeof(c));
    c.train = train;
    if (train && train_opts(a, &c) != EXIT_OK)
        return EXIT_USAGE;
    c.progress = isatty(STDERR_FILENO) && isatty(STDOUT_FILENO);
    int rc;
    if (args_get(a, "config")) {
        rc = run_production(a, &c);
        goto done;
    }
    char names[MAX_SIM_PARTIES][32];
    c.n = args_sim_mode(a, names, 2, 2);
    if (c.n < 0)
        return -c.n;
    memcpy(c.names, names, sizeof(c.names));
    if (train && (args_get(a, "progress-json") || args_get(a, "report-json")))
        return usage_error(a->sc, "--progress-json and --report-json: production mode only "
                                  "(one party's)");
    const char *mflag = train ? "model-out" : "model";
    if (check_parties(a, &c) != EXIT_OK || args_party_values_check(a, "in", names, 2) != EXIT_OK ||
        args_party_values_check(a, mflag, names, 2) != EXIT_OK ||
        (!train && args_party_values_check(a, "out", names, 2) != EXIT_OK))
        return EXIT_USAGE;
    for (int i = 0; i < 2; i++) {
        c.in[i] = args_party_value(a, "in", names[i]);
        c.model_path[i] = args_party_value(a, mflag, names[i]);
        c.out[i] = train ? NULL : args_party_value(a, "out", names[i]);
        if (!c.in[i])
            return usage_error(a->sc, "--in %s=FILE: every party needs its input", names[i]);
        if (!c.model_path[i])
            return usage_error(a->sc, "--%s %s=FILE: every party needs its model file", mflag,
                               names[i]);
        if (parse_keys(a, &c, i, names[i]) != EXIT_OK)
            return EXIT_USAGE;
    }
    if ((c.nkeys[0] == 0) != (c.nkeys[1] == 0))
        return usage_error(a->sc, "--key: give key columns for both parties, or none");
    if (train)
        c.print_rank = strcmp(c.label_party, c.names[0]) == 0 ? 0 : 1;
    for (int i = 0; !train && i < 2; i++) {
        rc = load_model(a, &c, i);
        if (rc != EXIT_OK)
            goto done;
    }
    rc = run_job(a, &c, NULL, NULL);
done:
    for (int i = 0; i < 2; i++)
        ag_lr_model_cleanup(&c.model[i]);
    return rc;
}

static int run_train(struct cmd_args *a)
{
    return run_common(a, true);
}

static int run_predict(struct cmd_args *a)
{
    return run_common(a, false);
}

const struct subcmd cmd_lr_train = {
    .name = "lr train",
    .summary = "logistic regression on two parties' columns, trained in the SPU",
    .details = "Two parties hold different feature columns of the same rows (aligned by --key\n"
               "through a PSI); one also holds the 0/1 label. Each standardises its own\n"
               "features and secret-shares them; mini-batch SGD runs in the SPU (semi2k),\n"
               "the sigmoid approximated as --sigmoid says. The loss is printed per epoch.\n"
               "The weights stay secret-shared (each model file holds its party's share)\n"
               "unless --reveal-to names parties that learn them.\n\n"
               "  argot lr train --sim alice,bob --in alice=a.csv --in bob=b.csv --key id \\\n"
               "      --label bob:y --model-out alice=a.model --model-out bob=b.model\n"
               "  argot lr train --config cluster.yaml --party bob --in b.csv --key id \\\n"
               "      --label bob:y --model-out b.model",
    .flags = train_flags,
    .run = run_train,
};

const struct subcmd cmd_lr_predict = {
    .name = "lr predict",
    .summary = "score rows with a model from lr train, to the party holding the label",
    .details = "Each party gives its half of the model and its rows (aligned by --key); the\n"
               "SPU computes the linear score and opens it to the label party alone, which\n"
               "writes the key columns and score, the probability of class 1, per row.\n\n"
               "  argot lr predict --sim alice,bob --in alice=a.csv --in bob=b.csv --key id \\\n"
               "      --model alice=a.model --model bob=b.model --out bob=scores.csv",
    .flags = predict_flags,
    .run = run_predict,
};
