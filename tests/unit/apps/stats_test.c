/* Tests for src/apps/stats.c: joint statistics in the SPU against the same
 * statistics in the clear, vertically (aligned by key, or in file order)
 * and horizontally partitioned, over FM64 and FM128; who learns what; and
 * the errors (a constant column, a cell that is not a number, misaligned
 * rows, columns that differ). */
#include <math.h>

#include "argot/apps.h"
#include "test.h"

#define NMAX 400

struct job {
    ag_stats_opts o[2];
    const char *keys[2][1];
    ag_stats_result res[2];
    int rc[2];
    char err[2][AG_ERRMSG_MAX];
};

static int stats_job(ag_fed *f, void *ud)
{
    struct job *j = ud;
    unsigned me = ag_fed_rank(f);
    ag_errbuf err = {0, ""};
    j->rc[me] = ag_stats_run(f, &j->o[me], &j->res[me], &err);
    snprintf(j->err[me], sizeof(j->err[me]), "%s", err.msg);
    return j->rc[me];
}

static int run(struct job *j, ag_field field, char *err, size_t cap)
{
    ag_fed_run r;
    ag_fed_run_init(&r, stats_job, j);
    r.spu.field = field;
    const char *names[2] = {"alice", "bob"};
    int rc = ag_fed_run_sim(&r, 2, names);
    if (err)
        snprintf(err, cap, "%s", r.err);
    return rc;
}

static void job_init(struct job *j)
{
    memset(j, 0, sizeof(*j));
    for (int i = 0; i < 2; i++)
        ag_stats_opts_init(&j->o[i]);
}

static void job_cleanup(struct job *j)
{
    for (int i = 0; i < 2; i++)
        ag_stats_result_cleanup(&j->res[i]);
}

/* ---- plaintext reference -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct ref {
    double v[AG_STATS_NVALUES];
};

static void reference(const double *x, size_t n, struct ref *r)
{
    double s = 0, ss = 0, *sorted = malloc(n * sizeof(*sorted));
    for (size_t i = 0; i < n; i++)
        s += x[i];
    double mean = s / (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - mean) * (x[i] - mean);
    memcpy(sorted, x, n * sizeof(*x));
    qsort(sorted, n, sizeof(*sorted), cmp_double);
    r->v[AG_STATS_V_COUNT] = (double)n;
    r->v[AG_STATS_V_SUM] = s;
    r->v[AG_STATS_V_MEAN] = mean;
    r->v[AG_STATS_V_VAR] = ss / (double)(n - 1);
    r->v[AG_STATS_V_STD] = sqrt(ss / (double)(n - 1));
    r->v[AG_STATS_V_MIN] = sorted[0];
    r->v[AG_STATS_V_MAX] = sorted[n - 1];
    static const double q[3] = {0.25, 0.5, 0.75};
    for (int k = 0; k < 3; k++) {
        double pos = q[k] * (double)(n - 1), fl = floor(pos);
        size_t lo = (size_t)fl, hi = lo + 1 < n ? lo + 1 : lo;
        r->v[AG_STATS_V_Q25 + k] = sorted[lo] + (pos - fl) * (sorted[hi] - sorted[lo]);
    }
    free(sorted);
}

static double pearson(const double *x, const double *y, size_t n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    for (size_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxy / sqrt(sxx * syy);
}

/* A deterministic generator (the test must not depend on the seed). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Relative-to-scale error: |got - want| / max(1, |scale|). */
static double rel(double got, double want, double scale)
{
    return fabs(got - want) / fmax(1.0, fabs(scale));
}

/* Column c of 3 per row: alice holds columns 0 and 1 (named "income",
 * "x"), bob columns 2 ("spend", correlated with income) and 3 ("x" too);
 * alice has extra keys bob lacks; bob's rows are in another order. */
static void vertical_case(size_t n, double scale, double cols[4][NMAX], char *pa, char *pb,
                          size_t cap)
{
    char *a = malloc(64 * (n + 20) + 64), *b = malloc(64 * (n + 20) + 64);
    size_t la = (size_t)snprintf(a, 64, "id,income,x\n"), lb = (size_t)snprintf(b, 64,
                                                                               "spend,uid,x\n");
    for (size_t i = 0; i < n; i++) {
        cols[0][i] = round((uniform() * 2 - 1) * scale * 1e3) / 1e3;
        cols[1][i] = round(uniform() * 100 * 1e3) / 1e3;
        cols[2][i] = round((0.5 * cols[0][i] + (uniform() - 0.5) * scale * 0.3) * 1e3) / 1e3;
        cols[3][i] = (double)(int)(uniform() * 10);
    }
    /* keys k%05zu: sorted order is i's order, which the reference uses */
    for (size_t i = 0; i < n; i++)
        la += (size_t)snprintf(a + la, 64, "k%05zu,%.3f,%.3f\n", i, cols[0][i], cols[1][i]);
    for (size_t i = 0; i < 10; i++)
        la += (size_t)snprintf(a + la, 64, "only%zu,1,2\n", i);
    for (size_t i = n; i-- > 0;)
        lb += (size_t)snprintf(b + lb, 64, "%.3f,k%05zu,%.0f\n", cols[2][i], i, cols[3][i]);
    snprintf(pa, cap, "%s", ag_test_write_file("a.csv", a, la));
    snprintf(pb, cap, "%s", ag_test_write_file("b.csv", b, lb));
    free(a);
    free(b);
}

/* Checks every statistic of res against the plaintext; returns the worst
 * errors (per kind) through worst[]. */
static void check_vertical(const ag_stats_result *res, double cols[4][NMAX], size_t n,
                           double tol_rel, double tol_q, double tol_corr, double worst[3])
{
    static const char *names[4] = {"income", "alice.x", "spend", "bob.x"};
    CHECK(res->learned);
    CHECK_EQ(res->rows, n);
    CHECK_EQ(res->ncols, 4);
    for (int c = 0; c < 4; c++) {
        CHECK_STR_EQ(res->cols[c].name, names[c]);
        CHECK_STR_EQ(res->cols[c].party, c < 2 ? "alice" : "bob");
        struct ref r;
        reference(cols[c], n, &r);
        double scale = fmax(fabs(r.v[AG_STATS_V_MAX]), fabs(r.v[AG_STATS_V_MIN]));
        for (int k = 0; k < AG_STATS_NVALUES; k++) {
            double got = res->cols[c].v[k], want = r.v[k];
            double s = k == AG_STATS_V_SUM ? want : k == AG_STATS_V_VAR ? scale * scale : scale;
            double e = rel(got, want, s);
            bool q = k >= AG_STATS_V_Q25;
            if (e > (q ? tol_q : tol_rel))
                FAIL("column %s, %s: got %.9g, want %.9g (error %.3g of scale %.3g)",
                     names[c], k == AG_STATS_V_SUM ? "sum" : q ? "quantile" : "stat", got, want,
                     e, s);
            worst[q ? 1 : 0] = fmax(worst[q ? 1 : 0], e);
        }
    }
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            double want = a == b ? 1.0 : pearson(cols[a], cols[b], n);
            double got = res->corr[a * 4 + b];
            if (fabs(got - want) > tol_corr)
                FAIL("corr(%s, %s): got %.9g, want %.9g", names[a], names[b], got, want);
            worst[2] = fmax(worst[2], fabs(got - want));
        }
}

static void vertical(ag_field field, size_t n, double scale, double tol_rel, double tol_q,
                     double tol_corr)
{
    static double cols[4][NMAX];
    static struct job j;
    job_init(&j);
    char pa[600], pb[600], err[AG_ERRMSG_MAX];
    vertical_case(n, scale, cols, pa, pb, sizeof(pa));
    j.o[0].input = pa;
    j.o[1].input = pb;
    j.keys[0][0] = "id";
    j.keys[1][0] = "uid";
    for (int i = 0; i < 2; i++) {
        j.o[i].keys = j.keys[i];
        j.o[i].nkeys = 1;
    }
    int rc = run(&j, field, err, sizeof(err));
    if (rc < 0)
        FAIL("run: %s", err);
    double worst[2][3] = {{0}};
    check_vertical(&j.res[0], cols, n, tol_rel, tol_q, tol_corr, worst[0]);
    check_vertical(&j.res[1], cols, n, tol_rel, tol_q, tol_corr, worst[1]);
    fprintf(stderr, "%s n=%zu scale=%g: worst error stats %.3g, quantiles %.3g (of scale), "
            "corr %.3g\n", ag_field_name(field), n, scale, worst[0][0], worst[0][1],
            worst[0][2]);
    job_cleanup(&j);
}

TEST(apps_stats_vertical_fm128_matches_plaintext)
{
    /* incomes of +-1e5: squares 1e10, far beyond FM64's products */
    vertical(AG_FM128, 300, 1e5, 1e-6, 1e-8, 1e-6);
}

TEST(apps_stats_vertical_fm64_matches_plaintext)
{
    /* small values: sum((x - mean)^2) about 6e3, so that C's entries (2f =
     * 36 fraction bits before truncation) stay near 2^49 and probabilistic
     * truncation fails with probability about 2^-14 per entry (with +-100
     * they were near 2^55: 2.3% of runs failed) */
    vertical(AG_FM64, 200, 10, 1e-4, 1e-6, 1e-4);
}

TEST(apps_stats_horizontal_stacks_rows_and_hist)
{
    static const char a[] = "id,v,w\n1,1.5,10\n2,2.5,20\n3,-1,30\n";
    static const char b[] = "id,v,w\n7,4,40\n8,0.25,50\n";
    static struct job j;
    job_init(&j);
    char pa[600], pb[600], err[AG_ERRMSG_MAX];
    snprintf(pa, sizeof(pa), "%s", ag_test_write_file("a.csv", a, strlen(a)));
    snprintf(pb, sizeof(pb), "%s", ag_test_write_file("b.csv", b, strlen(b)));
    static const double edges[] = {-1, 0, 2, 4};
    ag_stats_hist h = {"v", edges, 4};
    static const char *cols[] = {"v", "w"};
    for (int i = 0; i < 2; i++) {
        j.o[i].partition = AG_STATS_HORIZONTAL;
        j.o[i].columns = cols;
        j.o[i].ncolumns = 2;
        j.o[i].stats = AG_STATS_DEFAULT | AG_STATS_HIST;
        j.o[i].hists = &h;
        j.o[i].nhists = 1;
        j.o[i].reveal_mask = 0x1; /* alice only */
    }
    j.o[0].input = pa;
    j.o[1].input = pb;
    int rc = run(&j, AG_FM64, err, sizeof(err));
    if (rc < 0)
        FAIL("run: %s", err);
    const ag_stats_result *r = &j.res[0];
    CHECK(r->learned);
    CHECK_EQ(r->rows, 5);
    CHECK_EQ(r->ncols, 2);
    CHECK_STR_EQ(r->cols[0].name, "v");
    double v[5] = {1.5, 2.5, -1, 4, 0.25};
    struct ref ref;
    reference(v, 5, &ref);
    for (int k = 0; k < AG_STATS_NVALUES; k++)
        CHECK(fabs(r->cols[0].v[k] - ref.v[k]) < 1e-4);
    CHECK(fabs(r->corr[1] - pearson(v, (double[]){10, 20, 30, 40, 50}, 5)) < 1e-3);
    /* bins [-1,0) [0,2) [2,4]: -1 | 1.5 0.25 | 2.5 4 */
    CHECK_EQ(r->cols[0].nbins, 3);
    CHECK_EQ(r->cols[0].counts[0], 1);
    CHECK_EQ(r->cols[0].counts[1], 2);
    CHECK_EQ(r->cols[0].counts[2], 2);
    /* bob learned the schema only */
    CHECK(!j.res[1].learned);
    CHECK_EQ(j.res[1].rows, 5);
    CHECK(isnan(j.res[1].cols[0].v[AG_STATS_V_MEAN]));
    CHECK_EQ(j.res[1].cols[0].nbins, 0);
    job_cleanup(&j);

    /* columns that differ between the parties */
    static const char c[] = "id,v,z\n7,4,40\n8,0.25,50\n";
    snprintf(pb, sizeof(pb), "%s", ag_test_write_file("c.csv", c, strlen(c)));
    job_init(&j);
    for (int i = 0; i < 2; i++)
        j.o[i].partition = AG_STATS_HORIZONTAL;
    j.o[0].input = pa;
    j.o[1].input = pb;
    CHECK_EQ(run(&j, AG_FM64, err, sizeof(err)), AG_E_MPC_SHAPE);
    CHECK_CONTAINS(err, "the same columns at every party: alice and bob differ");
    job_cleanup(&j);
}

TEST(apps_stats_constant_column_has_no_correlation)
{
    static const char a[] = "v,c\n1,5\n2,5\n4,5\n";
    static const char b[] = "w\n3\n1\n2\n";
    static struct job j;
    job_init(&j);
    char pa[600], pb[600], err[AG_ERRMSG_MAX];
    snprintf(pa, sizeof(pa), "%s", ag_test_write_file("a.csv", a, strlen(a)));
    snprintf(pb, sizeof(pb), "%s", ag_test_write_file("b.csv", b, strlen(b)));
    j.o[0].input = pa;
    j.o[1].input = pb;
    CHECK_OK(run(&j, AG_FM64, err, sizeof(err)));
    const ag_stats_result *r = &j.res[1];
    CHECK_EQ(r->ncols, 3);
    CHECK(r->cols[1].zero_variance);
    CHECK(!r->cols[0].zero_variance);
    CHECK_EQ(r->cols[1].v[AG_STATS_V_STD], 0);
    CHECK_EQ(r->cols[1].v[AG_STATS_V_VAR], 0);
    CHECK(isnan(r->corr[0 * 3 + 1]));
    CHECK(isnan(r->corr[1 * 3 + 1]));
    CHECK(isnan(r->corr[1 * 3 + 2]));
    CHECK(fabs(r->corr[0 * 3 + 2] - pearson((double[]){1, 2, 4}, (double[]){3, 1, 2}, 3)) <
          1e-3);
    job_cleanup(&j);
}

TEST(apps_stats_errors_name_the_cause)
{
    static const char a[] = "v,w\n1,2\n3,abc\n";
    static const char b[] = "u\n1\n2\n3\n";
    static struct job j;
    job_init(&j);
    char pa[600], pb[600], err[AG_ERRMSG_MAX];
    snprintf(pa, sizeof(pa), "%s", ag_test_write_file("a.csv", a, strlen(a)));
    snprintf(pb, sizeof(pb), "%s", ag_test_write_file("b.csv", b, strlen(b)));
    j.o[0].input = pa;
    j.o[1].input = pb;
    /* a cell that is not a number: alice's message quotes it, bob's does not */
    CHECK_EQ(run(&j, AG_FM64, err, sizeof(err)), AG_E_CSV_VALUE);
    CHECK_CONTAINS(err, "party alice: ");
    CHECK_CONTAINS(err, "a.csv:3: column 'w': 'abc' is not a number");
    CHECK_CONTAINS(j.err[1], "a cell of its input is not a number");
    CHECK(!strstr(j.err[1], "abc"));
    job_cleanup(&j);

    /* misaligned rows: no key, 2 rows against 3 */
    static const char a2[] = "v,w\n1,2\n3,4\n";
    snprintf(pa, sizeof(pa), "%s", ag_test_write_file("a2.csv", a2, strlen(a2)));
    job_init(&j);
    j.o[0].input = pa;
    j.o[1].input = pb;
    CHECK_EQ(run(&j, AG_FM64, err, sizeof(err)), AG_E_MPC_SHAPE);
    CHECK_CONTAINS(err, "misaligned rows: party alice has 2 rows and party bob has 3");
    job_cleanup(&j);

    /* a column that is not there */
    static const char *missing[] = {"nope"};
    job_init(&j);
    j.o[0].input = pa;
    j.o[1].input = pb;
    j.o[1].columns = missing;
    j.o[1].ncolumns = 1;
    CHECK_EQ(run(&j, AG_FM64, err, sizeof(err)), AG_E_CSV_COLUMN);
    CHECK_CONTAINS(err, "party bob: ");
    CHECK_CONTAINS(err, "no column 'nope'");
    job_cleanup(&j);
}

TEST(apps_stats_parse_list)
{
    unsigned m;
    ag_errbuf err = {0, ""};
    CHECK_OK(ag_stats_parse_list("mean,corr", &m, &err));
    CHECK_EQ(m, AG_STATS_MEAN | AG_STATS_CORR);
    CHECK_OK(ag_stats_parse_list("all", &m, &err));
    CHECK_EQ(m, AG_STATS_DEFAULT | AG_STATS_HIST);
    CHECK_EQ(ag_stats_parse_list("mean,median", &m, &err), AG_E_INVAL);
    CHECK_CONTAINS(err.msg, "'median': not a statistic");
}
