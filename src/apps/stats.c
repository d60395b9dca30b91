/*
 * Joint statistics in the SPU (apps.h, ag_stats_run): every party loads its
 * columns at home, secret-shares them, and the SPU computes the requested
 * statistics, which are opened only to the parties that may learn them.
 *
 * The job, at every party (SPMD: the same calls in the same order):
 *   1. load: this party's table (aligned by key through a PSI, or as read),
 *      its chosen columns as a (k x n) matrix of doubles, one row per
 *      column; an error here is told to the others in words that quote no
 *      data, and kept whole locally;
 *   2. schema: each party's column names are revealed to all (public by
 *      design: they name the output);
 *   3. share: each party's matrix enters the SPU through a PYU object of its
 *      own; the matrices are stacked into X, (K x n): vertical along the
 *      columns (every party must have n rows), horizontal along the rows
 *      (every party must have the same column names);
 *   4. compute what was asked (the header comment of apps.h lists the
 *      algorithms), then open each result to each party of reveal_mask with
 *      ag_to_pyu: a party outside it receives nothing.
 *
 * Invariants: (1) the statistics computed depend only on public things (the
 * request, the shapes), never on data, so every party makes the same calls;
 * (2) nothing leaves the SPU but the requested results and, with corr, std
 * or var, the per-column "constant column" bits, which the undefined
 * correlations would show anyway.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "argot/apps.h"

#define QUANTILE_STEPS 32
#define NTARGETS 6 /* per column: the two ranks each of q25, q50, q75 sits between */
#define COMPARE_CHUNK ((int64_t)1 << 17) /* elements per comparison in the bisection */

static const double quantile_q[3] = {0.25, 0.50, 0.75};
static const char *const value_names[AG_STATS_NVALUES] = {
    "count", "sum", "mean", "var", "std", "min", "max", "q25", "q50", "q75",
};
static const struct {
    const char *name;
    unsigned bit;
} stat_names[] = {
    {"count", AG_STATS_COUNT}, {"sum", AG_STATS_SUM}, {"mean", AG_STATS_MEAN},
    {"var", AG_STATS_VAR},     {"std", AG_STATS_STD}, {"min", AG_STATS_MIN},
    {"max", AG_STATS_MAX},     {"quantiles", AG_STATS_QUANTILES},
    {"corr", AG_STATS_CORR},   {"hist", AG_STATS_HIST},
};

void ag_stats_opts_init(ag_stats_opts *o)
{
    memset(o, 0, sizeof(*o));
}

int ag_stats_parse_list(const char *list, unsigned *mask, ag_errbuf *err)
{
    *mask = 0;
    const char *p = list;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        bool found = false;
        if (len == 3 && strncmp(p, "all", 3) == 0) {
            *mask |= AG_STATS_DEFAULT | AG_STATS_HIST;
            found = true;
        }
        for (size_t i = 0; !found && i < AG_ARRAY_LEN(stat_names); i++)
            if (strlen(stat_names[i].name) == len && strncmp(p, stat_names[i].name, len) == 0) {
                *mask |= stat_names[i].bit;
                found = true;
            }
        if (!found)
            return ag_errbuf_set(err, AG_E_INVAL, "'%.*s': not a statistic (count, sum, mean, "
                                 "var, std, min, max, quantiles, corr, hist or all)",
                                 (int)AG_MIN(len, 64), p);
        p += len + (p[len] == ',');
    }
    if (!*mask)
        return ag_errbuf_set(err, AG_E_INVAL, "name at least one statistic");
    return 0;
}

void ag_stats_result_cleanup(ag_stats_result *r)
{
    for (size_t i = 0; r->cols && i < r->ncols; i++) {
        ag_free(r->cols[i].edges);
        ag_free(r->cols[i].counts);
    }
    ag_free(r->cols);
    ag_free(r->corr);
    memset(r, 0, sizeof(*r));
}

/* ---- 1. loading ------------------------------------------------------------------------ */

struct local {
    ag_table *t;
    size_t k, n;
    ag_value mat;       /* (k x n) doubles */
    ag_value names;     /* bytes: the column names, each followed by '\n' */
};

static bool is_key(const ag_stats_opts *o, const char *col)
{
    for (size_t i = 0; i < o->nkeys; i++)
        if (strcmp(o->keys[i], col) == 0)
            return true;
    return false;
}

static bool is_number(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    return *s && !*end && isfinite(v) && !(s[0] == ' ' || s[0] == '\t');
}

/* Chooses this party's columns and converts them; on failure err holds the
 * full message (which may quote a cell) and *why a data-free one. */
static int load_columns(const ag_stats_opts *o, struct local *L, ag_errbuf *err,
                        const char **why)
{
    ag_table *t = L->t;
    size_t ncols = ag_table_ncols(t), n = ag_table_nrows(t);
    const char **cols = ag_calloc(ncols + o->ncolumns + 1, sizeof(*cols));
    if (!cols)
        return ag_errbuf_set(err, AG_E_NOMEM, "%s", ag_strerror(AG_E_NOMEM));
    size_t k = 0;
    int rc = 0;
    *why = "a column it names is not in its input";
    for (size_t i = 0; i < o->ncolumns; i++) {
        if (ag_table_col(t, o->columns[i]) < 0) {
            rc = ag_errbuf_set(err, AG_E_CSV_COLUMN, "%s: no column '%s'", o->input,
                               o->columns[i]);
            goto out;
        }
        cols[k++] = o->columns[i];
    }
    for (size_t c = 0; o->ncolumns == 0 && c < ncols; c++) {
        const char *name = ag_table_colname(t, c);
        if (!is_key(o, name) && n > 0 && is_number(ag_table_cell(t, 0, c, NULL)))
            cols[k++] = name;
    }
    *why = "its input has no numeric column";
    if (k == 0) {
        rc = ag_errbuf_set(err, AG_E_CSV_COLUMN, "%s: no numeric column to describe%s",
                           o->input, n == 0 ? " (no rows)" : "");
        goto out;
    }
    int64_t shape[2] = {(int64_t)k, (int64_t)n};
    rc = ag_value_f64_init(&L->mat, 2, shape);
    if (rc < 0) {
        ag_errbuf_set(err, rc, "%s", ag_strerror(rc));
        goto out;
    }
    ag_buf b;
    ag_buf_init(&b, SIZE_MAX);
    *why = "a cell of its input is not a number";
    for (size_t i = 0; i < k && rc == 0; i++) {
        ag_value v;
        rc = ag_table_column_f64(t, cols[i], &v, err->msg, sizeof(err->msg));
        if (rc < 0) {
            err->code = rc;
            break;
        }
        memcpy(ag_value_f64(&L->mat) + i * n, ag_value_f64(&v), n * sizeof(double));
        ag_value_cleanup(&v);
        if (ag_buf_append(&b, cols[i], strlen(cols[i])) < 0 || ag_buf_append(&b, "\n", 1) < 0)
            rc = ag_errbuf_set(err, AG_E_NOMEM, "%s", ag_strerror(AG_E_NOMEM));
    }
    if (rc == 0)
        rc = ag_value_bytes(&L->names, b.data, b.len);
    if (rc < 0 && !err->msg[0])
        ag_errbuf_set(err, rc, "%s", ag_strerror(rc));
    ag_buf_cleanup(&b);
    L->k = k;
    L->n = n;
out:
    ag_free(cols);
    return rc;
}

static int load(ag_fed *f, const ag_stats_opts *o, struct local *L, ag_errbuf *err)
{
    const char *why = "cannot read its input";
    int rc;
    if (o->partition == AG_STATS_VERTICAL && o->nkeys > 0) {
        rc = ag_apps_align(f, o->input, o->keys, o->nkeys, &L->t, err);
        if (rc < 0) /* the PSI told the peer already */
            return ag_fed_fail_local(f, rc, "%s", err->msg);
    } else {
        rc = ag_table_read_csv(o->input, &L->t, err->msg, sizeof(err->msg));
        err->code = rc;
    }
    if (rc == 0)
        rc = load_columns(o, L, err, &why);
    if (rc < 0) {
        char reason[AG_ERRMSG_MAX];
        snprintf(reason, sizeof(reason), "party %s: %s", ag_fed_party(f), why);
        ag_link_abort(ag_fed_link(f), reason);
        return ag_fed_fail_local(f, rc, "%s", err->msg);
    }
    return 0;
}

/* ---- 2, 3. schema and shares ------------------------------------------------------------- */

/* A PYU object of party p holding a copy of v (v matters only at p). */
static ag_obj *own(ag_fed *f, unsigned p, const ag_value *v)
{
    ag_value copy = {0};
    if (ag_fed_rank(f) == p) {
        int rc = ag_value_copy(&copy, v);
        if (rc < 0) /* every party's next call fails */
            ag_fed_fail(f, rc, "%s", ag_strerror(rc));
    }
    return ag_pyu_put(f, ag_fed_party_name(f, p), &copy);
}

struct schema {
    unsigned np;
    size_t k[AG_CLUSTER_MAX_PARTIES];
    size_t K;           /* columns of X */
    size_t total;       /* names received (K, or np * K horizontally) */
    char **names;       /* output names; the first K are X's */
    unsigned *owner;    /* their owners */
};

static void schema_cleanup(struct schema *s)
{
    for (size_t i = 0; s->names && i < s->total; i++)
        ag_free(s->names[i]);
    ag_free(s->names);
    ag_free(s->owner);
}

static int fail_nomem(ag_fed *f)
{
    return ag_fed_fail(f, AG_E_NOMEM, "%s", ag_strerror(AG_E_NOMEM));
}

/* Reveals every party's column names and builds the output names. */
static int exchange_schema(ag_fed *f, const ag_stats_opts *o, const struct local *L,
                           struct schema *s)
{
    s->np = ag_fed_size(f);
    ag_value v[AG_CLUSTER_MAX_PARTIES];
    memset(v, 0, sizeof(v));
    int rc = 0;
    for (unsigned p = 0; p < s->np && rc == 0; p++)
        rc = ag_reveal(f, own(f, p, &L->names), &v[p]);
    for (unsigned p = 0; p < s->np && rc == 0; p++) {
        for (size_t i = 0; i < v[p].numel; i++)
            s->k[p] += ((const char *)v[p].data)[i] == '\n';
        s->K += s->k[p];
    }
    if (rc == 0) {
        s->names = ag_calloc(s->K + 1, sizeof(*s->names));
        s->owner = ag_calloc(s->K + 1, sizeof(*s->owner));
        if (!s->names || !s->owner)
            rc = fail_nomem(f);
    }
    size_t j = 0;
    for (unsigned p = 0; p < s->np && rc == 0; p++) {
        const char *d = v[p].data;
        for (size_t i = 0; i < v[p].numel && rc == 0;) {
            size_t len = (size_t)((const char *)memchr(d + i, '\n', v[p].numel - i) - (d + i));
            s->names[j] = ag_malloc(len + 1);
            if (!s->names[j]) {
                rc = fail_nomem(f);
                break;
            }
            memcpy(s->names[j], d + i, len);
            s->names[j][len] = '\0';
            s->owner[j++] = p;
            s->total = j;
            i += len + 1;
        }
    }
    if (rc == 0 && o->partition == AG_STATS_HORIZONTAL) {
        for (unsigned p = 1; p < s->np && rc == 0; p++)
            if (v[p].numel != v[0].numel || memcmp(v[p].data, v[0].data, v[0].numel) != 0)
                rc = ag_fed_fail_local(f, AG_E_MPC_SHAPE, "horizontal partitioning needs the "
                                       "same columns at every party: %s and %s differ",
                                       ag_fed_party_name(f, 0), ag_fed_party_name(f, p));
    }
    for (unsigned p = 0; p < s->np; p++)
        ag_value_cleanup(&v[p]);
    if (rc < 0)
        return rc;
    if (o->partition == AG_STATS_HORIZONTAL) {
        s->K = s->k[0]; /* the same columns everywhere; the owners do not matter */
        return 0;
    }
    /* vertical: a name two parties hold becomes party.NAME at both */
    bool *dup = ag_calloc(s->K + 1, sizeof(*dup));
    if (!dup)
        return fail_nomem(f);
    for (size_t a = 0; a < s->K; a++)
        for (size_t b = a + 1; b < s->K; b++)
            if (s->owner[a] != s->owner[b] && strcmp(s->names[a], s->names[b]) == 0)
                dup[a] = dup[b] = true;
    for (size_t a = 0; a < s->K && rc == 0; a++) {
        if (!dup[a])
            continue;
        const char *party = ag_fed_party_name(f, s->owner[a]);
        size_t len = strlen(party) + 1 + strlen(s->names[a]) + 1;
        char *nm = ag_malloc(len);
        if (!nm) {
            rc = fail_nomem(f);
            break;
        }
        snprintf(nm, len, "%s.%s", party, s->names[a]);
        ag_free(s->names[a]);
        s->names[a] = nm;
    }
    ag_free(dup);
    return rc;
}

/* ---- 4. the SPU computation -------------------------------------------------------------- */

static ag_obj *const_tensor(ag_fed *f, int ndim, const int64_t *shape, const double *fv,
                            const int64_t *iv)
{
    ag_value v;
    int rc = fv ? ag_value_f64_init(&v, ndim, shape) : ag_value_i64_init(&v, ndim, shape);
    if (rc < 0)
        return NULL;
    if (fv)
        memcpy(v.data, fv, v.numel * sizeof(double));
    else
        memcpy(v.data, iv, v.numel * sizeof(int64_t));
    ag_obj *o = ag_const_value(f, &v);
    ag_value_cleanup(&v);
    return o;
}

/* A public (ndim, shape) tensor of one double repeated. */
static ag_obj *const_fill(ag_fed *f, int ndim, const int64_t *shape, double x)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    double *d = ag_malloc(n * sizeof(*d) + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = x;
    ag_obj *o = const_tensor(f, ndim, shape, d, NULL);
    ag_free(d);
    return o;
}

static ag_obj *reshape2(ag_fed *f, ag_obj *x, int64_t a, int64_t b)
{
    int64_t s[2] = {a, b};
    return ag_spu_reshape(f, x, 2, s);
}

static ag_obj *bcast2(ag_fed *f, ag_obj *x, int64_t a, int64_t b)
{
    int64_t s[2] = {a, b};
    return ag_spu_broadcast(f, x, 2, s);
}

/* x[:, start::step] of a 2-D x with c columns. */
static ag_obj *cols_slice(ag_fed *f, ag_obj *x, int64_t rows, int64_t start, int64_t stop,
                          int64_t step)
{
    int64_t b[2] = {0, start}, e[2] = {rows, stop}, st[2] = {1, step};
    return ag_spu_slice(f, x, b, e, st);
}

static ag_obj *rows_slice(ag_fed *f, ag_obj *x, int64_t cols, int64_t start, int64_t stop)
{
    int64_t b[2] = {start, 0}, e[2] = {stop, cols};
    return ag_spu_slice(f, x, b, e, NULL);
}

/* The maximum of each row of the (r x n) x: a tree of ceil(lg n) levels. */
static ag_obj *row_max(ag_fed *f, ag_obj *x, int64_t r, int64_t n)
{
    ag_obj *cur = x;
    while (n > 1) {
        int64_t h = n / 2;
        ag_obj *m = ag_spu_max(f, cols_slice(f, cur, r, 0, h, 1),
                               cols_slice(f, cur, r, h, 2 * h, 1));
        if (n % 2) {
            ag_obj *parts[2] = {m, cols_slice(f, cur, r, 2 * h, n, 1)};
            m = ag_spu_concat(f, parts, 2, 1);
        }
        cur = m;
        n = h + n % 2;
    }
    return reshape2(f, cur, 1, r);
}

/* Quantiles of every row of X (K x n), given its min and max (1 x K): for
 * each quantile q, the ranks r = floor(q (n-1)) + 1 and r + 1 are found by
 * bisection (invariant: count(x <= lo) < r <= count(x <= hi)), and the
 * result interpolates linearly between them. Returns (K x 3). */
static ag_obj *quantiles(ag_fed *f, ag_obj *X, ag_obj *mn, ag_obj *mx, int64_t K, int64_t n,
                         unsigned steps)
{
    const int64_t Q = NTARGETS;
    int64_t *thr = ag_malloc((size_t)(K * Q) * sizeof(*thr));
    double *frac = ag_malloc((size_t)(K * 3) * sizeof(*frac));
    if (!thr || !frac) {
        ag_free(thr);
        ag_free(frac);
        return NULL;
    }
    for (int64_t c = 0; c < K; c++)
        for (int j = 0; j < 3; j++) {
            double pos = quantile_q[j] * (double)(n - 1);
            int64_t r = (int64_t)floor(pos) + 1;
            int64_t r2 = r + 1 <= n ? r + 1 : n;
            /* x_(r) > mid  <=>  count(x > mid) > n - r */
            thr[c * Q + 2 * j] = n - r;
            thr[c * Q + 2 * j + 1] = n - r2;
            frac[c * 3 + j] = pos - floor(pos);
        }
    /* rows in chunks, so that a step's comparison holds at most
     * COMPARE_CHUNK elements (memory), at the price of more rounds */
    int64_t m = AG_MAX((int64_t)1, COMPARE_CHUNK / (K * Q)), sq[2] = {K, Q};
    ag_obj *T = const_tensor(f, 2, sq, NULL, thr);
    ag_obj *half = const_fill(f, 2, sq, 0.5);
    ag_obj *lo = ag_spu_sub(f, bcast2(f, reshape2(f, mn, K, 1), K, Q), const_fill(f, 2, sq, 1));
    ag_obj *hi = bcast2(f, reshape2(f, mx, K, 1), K, Q);
    for (unsigned it = 0; it < steps; it++) {
        ag_obj *mid = ag_spu_mul(f, ag_spu_add(f, lo, hi), half), *count = NULL;
        for (int64_t r0 = 0; r0 < n; r0 += m) {
            int64_t w = AG_MIN(m, n - r0);
            int64_t s3[3] = {K, Q, w}, s3x[3] = {K, 1, w}, s3m[3] = {K, Q, 1};
            ag_obj *xc = ag_spu_reshape(f, cols_slice(f, X, K, r0, r0 + w, 1), 3, s3x);
            ag_obj *xb = ag_spu_broadcast(f, xc, 3, s3);
            ag_obj *midb = ag_spu_broadcast(f, ag_spu_reshape(f, mid, 3, s3m), 3, s3);
            ag_obj *gt = ag_spu_greater(f, xb, midb);
            ag_obj *c = ag_spu_sum(f, gt, 2);
            count = count ? ag_spu_add(f, count, c) : c;
            ag_obj_free(f, gt);
            ag_obj_free(f, midb);
            ag_obj_free(f, xb);
            ag_obj_free(f, xc);
        }
        ag_obj *above = ag_spu_greater(f, count, T); /* x_(r) > mid */
        lo = ag_spu_select(f, above, mid, lo);
        hi = ag_spu_select(f, above, hi, mid);
    }
    ag_obj *a = cols_slice(f, hi, K, 0, Q, 2), *b = cols_slice(f, hi, K, 1, Q, 2);
    int64_t s2[2] = {K, 3};
    ag_obj *fr = const_tensor(f, 2, s2, frac, NULL);
    ag_free(thr);
    ag_free(frac);
    return ag_spu_add(f, a, ag_spu_mul(f, ag_spu_sub(f, b, a), fr));
}

/* Bin counts of row c of X against edges (1 x nbins), numpy's bins. */
static ag_obj *histogram(ag_fed *f, ag_obj *X, int64_t c, int64_t n, const double *edges,
                         size_t nedges)
{
    int64_t m1 = (int64_t)nedges, m = m1 - 1;
    double *e = ag_malloc((size_t)(m1 * n) * sizeof(*e));
    if (!e)
        return NULL;
    for (int64_t i = 0; i < m1; i++)
        for (int64_t j = 0; j < n; j++)
            e[i * n + j] = edges[i];
    int64_t se[2] = {m1, n};
    ag_obj *E = const_tensor(f, 2, se, e, NULL);
    ag_free(e);
    ag_obj *row = rows_slice(f, X, n, c, c + 1);
    ag_obj *lt = ag_spu_sum(f, ag_spu_less(f, bcast2(f, row, m1, n), E), 1); /* (m1) */
    ag_obj *last = ag_spu_sum(f, ag_spu_greater(f, row, rows_slice(f, E, n, m, m1)), 1);
    int64_t one[1] = {1}, nn[1] = {n};
    /* cumulative: count(x < e_i), but count(x <= e_m) for the last edge */
    ag_obj *le_last = ag_spu_sub(f, const_tensor(f, 1, one, NULL, nn), last);
    int64_t b0[1] = {0}, bm[1] = {m}, b1[1] = {1}, bm1[1] = {m1};
    ag_obj *parts[2] = {ag_spu_slice(f, lt, b0, bm, NULL), le_last};
    ag_obj *cum = ag_spu_concat(f, parts, 2, 0);
    return ag_spu_sub(f, ag_spu_slice(f, cum, b1, bm1, NULL), ag_spu_slice(f, cum, b0, bm, NULL));
}

/* What the SPU computes; each object is (1 x K) unless said. */
enum { R_SUM, R_MEAN, R_VAR, R_STD, R_MIN, R_MAX, R_Q, R_ZERO, R_CORR, R_NRES };

struct results {
    ag_obj *o[R_NRES];
    ag_obj **hist; /* per hist spec */
};

static int compute(ag_fed *f, const ag_stats_opts *o, const struct schema *s, ag_obj *X,
                   int64_t K, int64_t n, unsigned want, struct results *R)
{
    bool need_var = want & (AG_STATS_VAR | AG_STATS_STD | AG_STATS_CORR);
    bool need_mm = want & (AG_STATS_MIN | AG_STATS_MAX | AG_STATS_QUANTILES) || need_var;
    ag_obj *mean = NULL, *mn = NULL, *mx = NULL;
    if (want & AG_STATS_SUM)
        R->o[R_SUM] = reshape2(f, ag_spu_sum(f, X, 1), 1, K);
    /* divisions by n, not products with the constant 1/n: its fixed-point
     * encoding is off by up to 2^-(f+1), a relative error of n 2^-(f+1) */
    int64_t s1[2] = {1, K}, sK[1] = {K}, sk[2] = {K, K};
    if (want & AG_STATS_MEAN || need_var)
        mean = ag_spu_div(f, ag_spu_sum(f, X, 1), const_fill(f, 1, sK, (double)n));
    if (want & AG_STATS_MEAN)
        R->o[R_MEAN] = reshape2(f, mean, 1, K);
    if (need_mm) {
        ag_obj *both[2] = {X, ag_spu_neg(f, X)};
        ag_obj *m = row_max(f, ag_spu_concat(f, both, 2, 0), 2 * K, n); /* (1 x 2K) */
        mx = cols_slice(f, m, 1, 0, K, 1);
        mn = ag_spu_neg(f, cols_slice(f, m, 1, K, 2 * K, 1));
        R->o[R_MIN] = mn;
        R->o[R_MAX] = mx;
    }
    if (need_var) {
        ag_obj *D = ag_spu_sub(f, X, bcast2(f, reshape2(f, mean, K, 1), K, n));
        ag_obj *C = ag_spu_matmul(f, D, ag_spu_transpose(f, D));
        ag_obj_free(f, D);
        double *eye = ag_calloc((size_t)(K * K), sizeof(*eye));
        if (!eye)
            return fail_nomem(f);
        for (int64_t i = 0; i < K; i++)
            eye[i * K + i] = 1.0;
        ag_obj *I = const_tensor(f, 2, sk, eye, NULL);
        ag_free(eye);
        ag_obj *zero = ag_spu_equal(f, mn, mx); /* exact: a constant column */
        ag_obj *ss = reshape2(f, ag_spu_sum(f, ag_spu_mul(f, C, I), 1), 1, K);
        ag_obj *one = const_fill(f, 2, s1, 1.0), *z0 = const_fill(f, 2, s1, 0.0);
        ag_obj *var = ag_spu_div(f, ss, const_fill(f, 2, s1, (double)(n - 1)));
        ag_obj *safe = ag_spu_select(f, zero, one, var); /* no 0 into sqrt or div */
        ag_obj *sd = ag_spu_sqrt(f, safe);
        R->o[R_ZERO] = zero;
        R->o[R_VAR] = ag_spu_select(f, zero, z0, var);
        if (want & AG_STATS_STD)
            R->o[R_STD] = ag_spu_select(f, zero, z0, sd);
        if (want & AG_STATS_CORR) {
            /* cov_ij / (std_i std_j): a division, which normalizes its
             * divisor (products of rsqrt's would lose 1/std's low bits);
             * var, not C_ii = (n-1) var, keeps it in div's domain */
            ag_obj *cov = ag_spu_div(f, C, const_fill(f, 2, sk, (double)(n - 1)));
            ag_obj *den = ag_spu_mul(f, bcast2(f, reshape2(f, sd, K, 1), K, K),
                                     bcast2(f, sd, K, K));
            R->o[R_CORR] = ag_spu_div(f, cov, den);
        }
    }
    if (want & AG_STATS_QUANTILES) {
        R->o[R_Q] = quantiles(f, X, mn, mx, K, n, o->iterations ? o->iterations
                                                                : QUANTILE_STEPS);
        if (!R->o[R_Q])
            return fail_nomem(f);
    }
    if (want & AG_STATS_HIST && o->nhists) {
        R->hist = ag_calloc(o->nhists, sizeof(*R->hist));
        if (!R->hist)
            return fail_nomem(f);
        for (size_t h = 0; h < o->nhists; h++) {
            int64_t c = -1;
            for (int64_t j = 0; j < K; j++)
                if (strcmp(s->names[j], o->hists[h].column) == 0)
                    c = j;
            if (c < 0)
                return ag_fed_fail_local(f, AG_E_CSV_COLUMN, "histogram of '%s': no such "
                                         "column among the parties'", o->hists[h].column);
            R->hist[h] = histogram(f, X, c, n, o->hists[h].edges, o->hists[h].nedges);
            if (!R->hist[h])
                return fail_nomem(f);
        }
    }
    return 0;
}

/* ---- opening the results ---------------------------------------------------------------- */

static double value_at(const ag_value *v, size_t i)
{
    if (!v || i >= v->numel)
        return NAN;
    return v->type == AG_V_F64 ? ag_value_f64(v)[i] : (double)ag_value_i64(v)[i];
}

/* Opens obj to every party of mask; returns the value here (NULL if this
 * party is not told, or obj is NULL). */
static int open_to(ag_fed *f, ag_obj *obj, unsigned mask, const ag_value **here)
{
    *here = NULL;
    if (!obj)
        return 0;
    for (unsigned p = 0; p < ag_fed_size(f); p++) {
        if (!(mask & (1u << p)))
            continue;
        ag_obj *r = ag_to_pyu(f, obj, ag_fed_party_name(f, p));
        int rc = ag_wait(f, r);
        if (rc < 0)
            return rc;
        if (p == ag_fed_rank(f))
            *here = ag_obj_value(r);
    }
    return 0;
}

static int fill_results(ag_fed *f, const ag_stats_opts *o, const struct schema *s,
                        struct results *R, unsigned want, unsigned mask, ag_stats_result *res)
{
    static const int map[R_Q] = {AG_STATS_V_SUM, AG_STATS_V_MEAN, AG_STATS_V_VAR,
                                 AG_STATS_V_STD, AG_STATS_V_MIN, AG_STATS_V_MAX};
    static const unsigned bit[R_Q] = {AG_STATS_SUM, AG_STATS_MEAN, AG_STATS_VAR,
                                      AG_STATS_STD, AG_STATS_MIN, AG_STATS_MAX};
    const ag_value *v;
    int rc;
    size_t K = res->ncols;
    for (int r = 0; r < R_Q; r++) {
        if (!(want & bit[r]))
            continue;
        if ((rc = open_to(f, R->o[r], mask, &v)) < 0)
            return rc;
        for (size_t c = 0; v && c < K; c++)
            res->cols[c].v[map[r]] = value_at(v, c);
    }
    if (want & AG_STATS_QUANTILES) {
        if ((rc = open_to(f, R->o[R_Q], mask, &v)) < 0)
            return rc;
        for (size_t c = 0; v && c < K; c++)
            for (int j = 0; j < 3; j++)
                res->cols[c].v[AG_STATS_V_Q25 + j] = value_at(v, c * 3 + (size_t)j);
    }
    bool zero_known = false;
    if (R->o[R_ZERO] && (want & (AG_STATS_CORR | AG_STATS_STD | AG_STATS_VAR))) {
        if ((rc = open_to(f, R->o[R_ZERO], mask, &v)) < 0)
            return rc;
        for (size_t c = 0; v && c < K; c++)
            res->cols[c].zero_variance = value_at(v, c) != 0;
        zero_known = v != NULL;
    }
    if (want & AG_STATS_CORR) {
        if ((rc = open_to(f, R->o[R_CORR], mask, &v)) < 0)
            return rc;
        for (size_t i = 0; v && zero_known && i < K; i++)
            for (size_t j = 0; j < K; j++) {
                double x = value_at(v, i * K + j);
                if (res->cols[i].zero_variance || res->cols[j].zero_variance)
                    x = NAN;
                else if (i == j)
                    x = 1.0;
                res->corr[i * K + j] = x;
            }
    }
    for (size_t h = 0; R->hist && h < o->nhists; h++) {
        if ((rc = open_to(f, R->hist[h], mask, &v)) < 0)
            return rc;
        if (!v)
            continue;
        size_t c = 0;
        while (c < K && strcmp(s->names[c], o->hists[h].column) != 0)
            c++;
        ag_stats_column *col = &res->cols[c];
        ag_free(col->edges);
        ag_free(col->counts);
        col->nbins = o->hists[h].nedges - 1;
        col->edges = ag_calloc(col->nbins + 1, sizeof(double));
        col->counts = ag_calloc(col->nbins, sizeof(double));
        if (!col->edges || !col->counts)
            return fail_nomem(f);
        memcpy(col->edges, o->hists[h].edges, (col->nbins + 1) * sizeof(double));
        for (size_t b = 0; b < col->nbins; b++)
            col->counts[b] = value_at(v, b);
    }
    return 0;
}

static int init_result(ag_stats_result *res, const struct schema *s, unsigned want,
                       bool learned, uint64_t n)
{
    memset(res, 0, sizeof(*res));
    res->stats = want;
    res->learned = learned;
    res->rows = n;
    res->ncols = s->K;
    res->cols = ag_calloc(s->K + 1, sizeof(*res->cols));
    res->corr = ag_calloc(s->K * s->K + 1, sizeof(*res->corr));
    if (!res->cols || !res->corr)
        return AG_E_NOMEM;
    for (size_t c = 0; c < s->K; c++) {
        ag_stats_column *col = &res->cols[c];
        snprintf(col->name, sizeof(col->name), "%s", s->names[c]);
        for (int j = 0; j < AG_STATS_NVALUES; j++)
            col->v[j] = NAN;
        if (learned && (want & AG_STATS_COUNT))
            col->v[AG_STATS_V_COUNT] = (double)n;
    }
    for (size_t i = 0; i < s->K * s->K; i++)
        res->corr[i] = NAN;
    return 0;
}

int ag_stats_run(ag_fed *f, const ag_stats_opts *o, ag_stats_result *res, ag_errbuf *err)
{
    memset(res, 0, sizeof(*res));
    ag_errbuf local = {0, ""};
    if (!err)
        err = &local;
    unsigned want = o->stats ? o->stats : AG_STATS_DEFAULT;
    unsigned np = ag_fed_size(f), all = (np >= 32 ? ~0u : (1u << np) - 1);
    unsigned mask = o->reveal_mask ? o->reveal_mask & all : all;
    struct local L;
    memset(&L, 0, sizeof(L));
    struct schema s;
    memset(&s, 0, sizeof(s));
    struct results R;
    memset(&R, 0, sizeof(R));
    int rc = load(f, o, &L, err);
    if (rc == 0)
        rc = exchange_schema(f, o, &L, &s);
    ag_obj *xs[AG_CLUSTER_MAX_PARTIES];
    int64_t shp[AG_CLUSTER_MAX_PARTIES][2];
    for (unsigned p = 0; rc == 0 && p < np; p++) {
        xs[p] = ag_to_spu(f, own(f, p, &L.mat));
        rc = ag_wait(f, xs[p]);
        if (rc == 0 && ag_obj_shape(xs[p], shp[p]) != 2)
            rc = ag_fed_fail_local(f, AG_E_MPC_SHAPE, "party %s: its data has no shape",
                                   ag_fed_party_name(f, p));
    }
    ag_value_cleanup(&L.mat);
    int64_t n = 0;
    if (rc == 0) {
        for (unsigned p = 0; p < np; p++)
            n = o->partition == AG_STATS_HORIZONTAL ? n + shp[p][1] : shp[0][1];
        for (unsigned p = 1; rc == 0 && p < np && o->partition == AG_STATS_VERTICAL; p++)
            if (shp[p][1] != shp[0][1])
                rc = ag_fed_fail_local(f, AG_E_MPC_SHAPE, "misaligned rows: party %s has %lld "
                                       "rows and party %s has %lld (vertical partitioning "
                                       "without --key pairs rows in file order)",
                                       ag_fed_party_name(f, 0), (long long)shp[0][1],
                                       ag_fed_party_name(f, p), (long long)shp[p][1]);
        if (rc == 0 && n < 2)
            rc = ag_fed_fail_local(f, AG_E_INVAL, "%lld row%s in common: statistics need at "
                                   "least 2", (long long)n, n == 1 ? "" : "s");
    }
    if (rc == 0) {
        ag_obj *X = ag_spu_concat(f, xs, np, o->partition == AG_STATS_HORIZONTAL ? 1 : 0);
        rc = compute(f, o, &s, X, (int64_t)s.K, n, want, &R);
    }
    if (rc == 0) {
        rc = init_result(res, &s, want, (mask >> ag_fed_rank(f)) & 1u, (uint64_t)n);
        if (rc < 0)
            rc = fail_nomem(f);
        for (size_t c = 0; rc == 0 && o->partition == AG_STATS_VERTICAL && c < s.K; c++)
            snprintf(res->cols[c].party, sizeof(res->cols[c].party), "%s",
                     ag_fed_party_name(f, s.owner[c]));
    }
    if (rc == 0)
        rc = fill_results(f, o, &s, &R, want, mask, res);
    if (rc < 0) {
        if (!err->msg[0] || err->code == 0)
            ag_errbuf_set(err, rc, "%s", ag_fed_errmsg(f));
        ag_stats_result_cleanup(res);
    }
    ag_free(R.hist);
    schema_cleanup(&s);
    ag_value_cleanup(&L.names);
    ag_table_free(L.t);
    return rc;
}

/* ---- output ---------------------------------------------------------------------------------- */

static json_t *num(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *to_json(const ag_stats_result *r)
{
    json_t *root = json_object(), *cols = json_object();
    json_object_set_new(root, "rows", json_integer((json_int_t)r->rows));
    static const unsigned bit[AG_STATS_NVALUES] = {
        AG_STATS_COUNT, AG_STATS_SUM, AG_STATS_MEAN, AG_STATS_VAR, AG_STATS_STD,
        AG_STATS_MIN, AG_STATS_MAX, AG_STATS_QUANTILES, AG_STATS_QUANTILES, AG_STATS_QUANTILES,
    };
    for (size_t c = 0; c < r->ncols; c++) {
        const ag_stats_column *col = &r->cols[c];
        json_t *o = json_object();
        for (int j = 0; j < AG_STATS_NVALUES; j++) {
            if (!(r->stats & bit[j]))
                continue;
            json_object_set_new(o, value_names[j], j == AG_STATS_V_COUNT
                                                       ? json_integer((json_int_t)r->rows)
                                                       : num(col->v[j]));
        }
        if (col->nbins) {
            json_t *h = json_object(), *e = json_array(), *k = json_array();
            for (size_t b = 0; b <= col->nbins; b++)
                json_array_append_new(e, num(col->edges[b]));
            for (size_t b = 0; b < col->nbins; b++)
                json_array_append_new(k, json_integer((json_int_t)col->counts[b]));
            json_object_set_new(h, "edges", e);
            json_object_set_new(h, "counts", k);
            json_object_set_new(o, "hist", h);
        }
        json_object_set_new(cols, col->name, o);
    }
    json_object_set_new(root, "columns", cols);
    if (r->stats & AG_STATS_CORR) {
        json_t *corr = json_object(), *names = json_array(), *m = json_array();
        for (size_t i = 0; i < r->ncols; i++) {
            json_array_append_new(names, json_string(r->cols[i].name));
            json_t *row = json_array();
            for (size_t j = 0; j < r->ncols; j++)
                json_array_append_new(row, num(r->corr[i * r->ncols + j]));
            json_array_append_new(m, row);
        }
        json_object_set_new(corr, "columns", names);
        json_object_set_new(corr, "matrix", m);
        json_object_set_new(root, "corr", corr);
    }
    return root;
}

int ag_stats_write_json(const ag_stats_result *r, const char *path, ag_errbuf *err)
{
    json_t *root = to_json(r);
    if (!root)
        return ag_errbuf_set(err, AG_E_NOMEM, "%s", ag_strerror(AG_E_NOMEM));
    size_t len = strlen(path) + 32;
    char *tmp = ag_malloc(len);
    if (!tmp) {
        json_decref(root);
        return ag_errbuf_set(err, AG_E_NOMEM, "%s", ag_strerror(AG_E_NOMEM));
    }
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    int rc = 0;
    if (json_dump_file(root, tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) != 0) {
        rc = ag_errbuf_set(err, AG_E_IO, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        rc = ag_errbuf_set(err, AG_E_IO, "%s: cannot rename into place: %s", path,
                           strerror(errno));
        unlink(tmp);
    }
    ag_free(tmp);
    json_decref(root);
    return rc;
}

static void cell(FILE *fp, double x)
{
    if (isnan(x))
        fprintf(fp, " %12s", "-");
    else
        fprintf(fp, " %12.6g", x);
}

void ag_stats_print(FILE *fp, const ag_stats_result *r)
{
    static const unsigned bit[AG_STATS_NVALUES] = {
        AG_STATS_COUNT, AG_STATS_SUM, AG_STATS_MEAN, AG_STATS_VAR, AG_STATS_STD,
        AG_STATS_MIN, AG_STATS_MAX, AG_STATS_QUANTILES, AG_STATS_QUANTILES, AG_STATS_QUANTILES,
    };
    int w = 6;
    for (size_t c = 0; c < r->ncols; c++)
        w = AG_MAX(w, (int)AG_MIN(strlen(r->cols[c].name), 40));
    fprintf(fp, "%-*s", w, "column");
    for (int j = 0; j < AG_STATS_NVALUES; j++)
        if (r->stats & bit[j])
            fprintf(fp, " %12s", value_names[j]);
    fputc('\n', fp);
    for (size_t c = 0; c < r->ncols; c++) {
        fprintf(fp, "%-*.40s", w, r->cols[c].name);
        for (int j = 0; j < AG_STATS_NVALUES; j++)
            if (r->stats & bit[j])
                cell(fp, r->cols[c].v[j]);
        fputc('\n', fp);
    }
    for (size_t c = 0; c < r->ncols; c++) {
        if (!r->cols[c].nbins)
            continue;
        fprintf(fp, "histogram of %s:", r->cols[c].name);
        for (size_t b = 0; b < r->cols[c].nbins; b++)
            fprintf(fp, " [%g, %g%c %.0f", r->cols[c].edges[b], r->cols[c].edges[b + 1],
                    b + 1 == r->cols[c].nbins ? ']' : ')', r->cols[c].counts[b]);
        fputc('\n', fp);
    }
    if (!(r->stats & AG_STATS_CORR))
        return;
    fprintf(fp, "\ncorrelation (Pearson; '-' where a column is constant):\n%-*s", w, "");
    for (size_t c = 0; c < r->ncols; c++)
        fprintf(fp, " %12.12s", r->cols[c].name);
    fputc('\n', fp);
    for (size_t i = 0; i < r->ncols; i++) {
        fprintf(fp, "%-*.40s", w, r->cols[i].name);
        for (size_t j = 0; j < r->ncols; j++)
            cell(fp, r->corr[i * r->ncols + j]);
        fputc('\n', fp);
    }
}
