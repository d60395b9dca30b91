/*
 * Logistic regression on vertically partitioned data (apps.h, "logistic
 * regression"): mini-batch SGD in the SPU over the mpc kernels, prediction,
 * and the model files.
 *
 * Runs inside a fed job of two parties, on the calling party's thread. The
 * parties first exchange their shapes through a PYU call each (its result,
 * [rows, features, has label, the options], revealed to both); a party whose data is
 * unusable fails that call, so both parties stop with its message. Then
 * every step is an mpc kernel on the job's SPU session (ag_fed_mpc), in
 * the same order at both parties:
 *
 *   1. each party encodes its standardised features (the label party adds
 *      the intercept column) and secret-shares them (no message: the
 *      other party's share is pseudorandom); the label party shares y;
 *      with the Beaver cache (the default), batch by batch: X_b = [X0_b |
 *      X1_b] is shared, masked and opened once (ag_mpc_xcache_new), then
 *      dropped;
 *   2. per batch b of rows [s, e): z = X_b w (with the cache it opens D
 *      elements; without, X_b is sliced from the shared blocks and a Beaver
 *      matrix product opens (e-s) x D + D), p = sigmoid(z), r = p - y_b,
 *      g = X_b^T r (opens e-s, or (e-s) x D + e-s), and w -= (lr / (e-s)) g
 *      + lr l2 w (local products by public constants, local truncation for
 *      two parties); the squared residuals r^2 accumulate in a shared sum;
 *   3. at the end of an epoch that sum is opened: the printed loss is its
 *      mean, the Brier score (the log loss would need a secure log per row);
 *   4. at the end the weights are opened to the parties in reveal_mask,
 *      and every party keeps its share.
 *
 * Invariants: 1. D = cols[0] + cols[1] + 1, the intercept the last column
 * of the label party's block. 2. Nothing here sends a data value in the
 * clear; errors sent to the other party name columns and lines, never
 * cells.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argot/apps.h"

#define LR_MAGIC "argot-lr-model 1"

void ag_lr_opts_init(ag_lr_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->epochs = 10;
    o->batch_size = 1024;
    o->learning_rate = 0.1;
    o->l2 = 0;
    o->sigmoid = AG_SIGMOID_SEG3;
    o->beaver_cache = true;
}

int ag_lr_sigmoid_parse(const char *s)
{
    if (strcmp(s, "real") == 0)
        return AG_SIGMOID_REAL;
    if (strcmp(s, "seg3") == 0)
        return AG_SIGMOID_SEG3;
    if (strcmp(s, "mm1") == 0)
        return AG_SIGMOID_MM1;
    return -1;
}

const char *ag_lr_sigmoid_name(ag_sigmoid_mode m)
{
    return m == AG_SIGMOID_REAL ? "real" : m == AG_SIGMOID_SEG3 ? "seg3" : "mm1";
}

/* ---- this party's data, checked and standardised ------------------------------- */

struct lr_local {
    const ag_lr_data *d;
    const ag_lr_opts *o; /* train: the options both must agree on */
    bool need_label;     /* this party is the label party */
    double *mean, *std;  /* cols: computed by check_data (train) or given (predict) */
    bool standardise;    /* compute mean/std (train) */
};

/* What the parties exchange before training: [rows, features, has label,
 * then the options both must give alike]. */
enum { META_LEN = 11 };
static const char *const meta_opt[META_LEN] = {
    NULL, NULL, NULL, "epochs", "batch size", "learning rate", "l2", "sigmoid",
    "label party", "parties the weights are revealed to", "Beaver cache",
};

/* The PYU functions below run at their owner, on its thread: the data is
 * this thread's (in simulation mode every party is a thread). */
static _Thread_local struct lr_local *tl_local;

static const char *src_of(const ag_lr_data *d)
{
    return d->source ? d->source : "input";
}

/* PYU at each party: checks its data (and computes the standardisation);
 * its result, [rows, cols, has label], is the shape both parties learn. */
static int check_data(ag_pyu_ctx *c, const ag_value *args, size_t nargs, ag_value *out)
{
    (void)args;
    (void)nargs;
    struct lr_local *L = tl_local;
    const ag_lr_data *d = L->d;
    if (d->rows == 0)
        return ag_pyu_error(c, AG_E_LR_DATA, "%s: no rows", src_of(d));
    if (d->cols == 0 && !L->need_label)
        return ag_pyu_error(c, AG_E_LR_DATA, "%s: no feature columns", src_of(d));
    if (d->cols > AG_LR_MAX_FEATURES)
        return ag_pyu_error(c, AG_E_LR_DATA, "%s: %zu features, at most %d", src_of(d), d->cols,
                            AG_LR_MAX_FEATURES);
    if (L->need_label && !d->y)
        return ag_pyu_error(c, AG_E_LR_DATA, "%s: no label", src_of(d));
    if (L->need_label && L->standardise)
        for (size_t i = 0; i < d->rows; i++)
            if (d->y[i] != 0 && d->y[i] != 1)
                return ag_pyu_error(c, AG_E_LR_DATA, "%s: row %zu: the label must be 0 or 1",
                                    src_of(d), i + 1);
    if (L->standardise) {
        /* row by row (the matrix is row-major): sums, then squared deviations */
        size_t nc = d->cols;
        memset(L->mean, 0, nc * sizeof(double));
        memset(L->std, 0, nc * sizeof(double));
        for (size_t i = 0; i < d->rows; i++)
            for (size_t j = 0; j < nc; j++)
                L->mean[j] += d->x[i * nc + j];
        for (size_t j = 0; j < nc; j++)
            L->mean[j] /= (double)d->rows;
        for (size_t i = 0; i < d->rows; i++)
            for (size_t j = 0; j < nc; j++) {
                double t = d->x[i * nc + j] - L->mean[j];
                L->std[j] += t * t;
            }
        for (size_t j = 0; j < nc; j++) {
            double mu = L->mean[j], sd = sqrt(L->std[j] / (double)d->rows);
            if (!(sd > 1e-12 * (fabs(mu) > 1 ? fabs(mu) : 1)))
                return ag_pyu_error(c, AG_E_LR_DATA, "%s: feature column '%s' has zero variance "
                                    "(the same value in every row): drop it", src_of(d),
                                    d->names ? d->names[j] : "?");
            L->std[j] = sd;
        }
    }
    int64_t shape[1] = {META_LEN};
    int rc = ag_value_i64_init(out, 1, shape);
    if (rc < 0)
        return ag_pyu_error(c, rc, "no memory");
    int64_t *v = ag_value_i64(out);
    v[0] = (int64_t)d->rows;
    v[1] = (int64_t)d->cols;
    v[2] = d->y != NULL;
    const ag_lr_opts *o = L->o;
    v[3] = o->epochs;
    v[4] = (int64_t)o->batch_size;
    memcpy(&v[5], &o->learning_rate, sizeof(double));
    memcpy(&v[6], &o->l2, sizeof(double));
    v[7] = o->sigmoid;
    v[8] = o->label_rank;
    v[9] = o->reveal_mask;
    v[10] = o->beaver_cache;
    return 0;
}

/* The parties' inputs have different row counts: fail the job, saying so. */
static int rows_differ(ag_fed *f, int64_t rows0, int64_t rows1, ag_errbuf *err)
{
    return ag_errbuf_set(err, ag_fed_fail(f, AG_E_LR_DATA, "row counts differ: %s has %lld rows, "
                                          "%s has %lld (align them by --key)",
                                          ag_fed_party_name(f, 0), (long long)rows0,
                                          ag_fed_party_name(f, 1), (long long)rows1),
                         "%s", ag_fed_errmsg(f));
}

/* Runs fn at each party (with L as its local state) and reveals its
 * result: per int64 values of party r into out[r * per]. The first
 * party's error otherwise. */
static int reveal_each(ag_fed *f, struct lr_local *L, ag_pyu_fn *fn, int64_t *out, size_t per,
                       ag_errbuf *err)
{
    tl_local = L;
    for (unsigned r = 0; r < 2; r++) {
        ag_obj *o = ag_pyu_calln(f, ag_fed_party_name(f, r), fn, "lr", NULL, 0);
        ag_value v;
        int rc = o ? ag_reveal(f, o, &v) : AG_E_NOMEM;
        ag_obj_free(f, o);
        if (rc < 0) {
            tl_local = NULL;
            return ag_errbuf_set(err, rc, "%s", ag_fed_errmsg(f));
        }
        memcpy(out + r * per, ag_value_i64(&v), per * sizeof(int64_t));
        ag_value_cleanup(&v);
    }
    tl_local = NULL;
    return 0;
}

/* Both parties' [rows, cols, has label] (or the first party's error). */
static int exchange_shapes(ag_fed *f, struct lr_local *L, int64_t meta[2][META_LEN],
                           ag_errbuf *err)
{
    int rc = reveal_each(f, L, check_data, &meta[0][0], META_LEN, err);
    if (rc < 0)
        return rc;
    for (int k = 3; k < META_LEN; k++)
        if (meta[0][k] != meta[1][k])
            return ag_errbuf_set(err, ag_fed_fail(f, AG_E_INVAL, "the parties disagree on the "
                                                  "%s: every party must give the same options",
                                                  meta_opt[k]),
                                 "%s", ag_fed_errmsg(f));
    if (meta[0][0] != meta[1][0])
        return rows_differ(f, meta[0][0], meta[1][0], err);
    return 0;
}

/* ---- SPU helpers ------------------------------------------------------------------ */

static int mpc_fail(ag_fed *f, ag_mpc *m, int rc, ag_errbuf *err)
{
    if (m)
        return ag_errbuf_set(err, rc, "spu: %s", ag_mpc_errmsg(m));
    return ag_errbuf_set(err, rc, "%s", ag_fed_errmsg(f));
}

/* A public ring element as a real with `bits` fraction bits. */
static double ring_get(const ag_tensor *t, size_t i, unsigned bits)
{
    double v;
    if (t->field == AG_FM64)
        v = (double)(int64_t)ag_tensor_u64(t)[i];
    else
        v = (double)(__int128)ag_tensor_u128(t)[i];
    return ldexp(v, -(int)bits);
}

/* Rows [r0, r1) of party owner's standardised block (plus the intercept
 * column at the label party), secret-shared: (r1 - r0) x cols. */
static int share_block(ag_mpc *m, unsigned owner, const ag_lr_data *d, const double *mean,
                       const double *std, bool intercept, size_t r0, size_t r1, size_t cols,
                       ag_tensor *out)
{
    size_t rows = r1 - r0;
    int64_t shape[2] = {(int64_t)rows, (int64_t)cols};
    ag_tensor pub = {0};
    int rc = 0;
    if (ag_mpc_rank(m) == owner) {
        double *x = ag_malloc(rows * cols * sizeof(*x) + 1);
        if (!x)
            return AG_E_NOMEM;
        size_t dc = d->cols;
        for (size_t i = 0; i < rows; i++) {
            for (size_t j = 0; j < dc; j++)
                x[i * cols + j] = (d->x[(r0 + i) * dc + j] - mean[j]) / std[j];
            if (intercept)
                x[i * cols + dc] = 1;
        }
        rc = ag_mpc_encode(m, x, 2, shape, &pub);
        ag_free(x);
    }
    if (rc == 0)
        rc = ag_mpc_share(m, owner, ag_mpc_rank(m) == owner ? &pub : NULL, 2, shape, out);
    ag_tensor_cleanup(&pub);
    return rc;
}

static int encode_const(ag_mpc *m, size_t n, double v, size_t zero_at, ag_tensor *out)
{
    double *c = ag_malloc(n * sizeof(*c) + 1);
    if (!c)
        return AG_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        c[i] = i == zero_at ? 0 : v;
    int64_t shape[2] = {(int64_t)n, 1};
    int rc = ag_mpc_encode(m, c, 2, shape, out);
    ag_free(c);
    return rc;
}

/* X rows [s, e) of both blocks, side by side. */
static int batch_rows(ag_mpc *m, const ag_tensor X[2], size_t s, size_t e, ag_tensor *out)
{
    (void)m;
    ag_tensor part[2] = {{0}, {0}};
    int64_t start[2] = {(int64_t)s, 0}, stop[2] = {(int64_t)e, INT64_MAX};
    int rc = 0;
    for (int k = 0; rc == 0 && k < 2; k++)
        rc = ag_tensor_slice(&part[k], &X[k], start, stop, NULL);
    const ag_tensor *pp[2] = {&part[0], &part[1]};
    if (rc == 0)
        rc = ag_tensor_concat(out, pp, 2, 1);
    ag_tensor_cleanup(&part[0]);
    ag_tensor_cleanup(&part[1]);
    return rc;
}

/* acc += sum(x) (acc a shared scalar). */
static int acc_sum(ag_mpc *m, ag_tensor *acc, const ag_tensor *x)
{
    ag_tensor s = {0}, t = {0};
    int rc = ag_mpc_sum(m, x, AG_AXIS_ALL, &s);
    if (rc == 0)
        rc = ag_mpc_add(m, acc, &s, &t);
    if (rc == 0) {
        ag_tensor_cleanup(acc);
        *acc = t;
        memset(&t, 0, sizeof(t));
    }
    ag_tensor_cleanup(&s);
    ag_tensor_cleanup(&t);
    return rc;
}

struct sgd {
    ag_mpc *m;
    const ag_lr_opts *o;
    size_t rows, D, intercept;
    ag_tensor X[2];     /* without the cache: both blocks, all rows */
    ag_mpc_xcache **cache; /* with it: per batch, X_b masked once */
    size_t batches;
    ag_tensor y;
    ag_tensor w;
    ag_tensor acc;      /* sum of (p - y)^2 this epoch (2f fraction bits) */
};

/* One batch: rows [s, e), batch number bi. */
static int sgd_batch(struct sgd *g, size_t bi, size_t s, size_t e)
{
    ag_mpc *m = g->m;
    ag_tensor xb = {0}, xt = {0}, z = {0}, p = {0}, yb = {0}, r = {0}, gr = {0}, c = {0},
              step = {0}, w1 = {0}, t = {0};
    int64_t start[2] = {(int64_t)s, 0}, stop[2] = {(int64_t)e, 1};
    int rc = 0;
    if (g->cache)
        rc = ag_mpc_xcache_fmatmul(m, g->cache[bi], false, &g->w, &z);
    else
        rc = batch_rows(m, g->X, s, e, &xb);
    if (rc == 0 && !g->cache)
        rc = ag_mpc_fmatmul(m, &xb, &g->w, &z);
    if (rc == 0)
        rc = ag_mpc_sigmoid(m, &z, g->o->sigmoid, &p);
    if (rc == 0)
        rc = ag_tensor_slice(&yb, &g->y, start, stop, NULL);
    if (rc == 0)
        rc = ag_mpc_sub(m, &p, &yb, &r);
    if (rc == 0 && g->cache)
        rc = ag_mpc_xcache_fmatmul(m, g->cache[bi], true, &r, &gr);
    if (rc == 0 && !g->cache)
        rc = ag_tensor_transpose(&xt, &xb);
    if (rc == 0 && !g->cache)
        rc = ag_mpc_fmatmul(m, &xt, &r, &gr);
    /* the loss: the sum of squared residuals */
    if (rc == 0)
        rc = ag_mpc_square(m, &r, &t);
    if (rc == 0)
        rc = acc_sum(m, &g->acc, &t);
    ag_tensor_cleanup(&t);
    /* w -= lr / n_b * g + lr * l2 * w */
    if (rc == 0)
        rc = encode_const(m, g->D, g->o->learning_rate / (double)(e - s), (size_t)-1, &c);
    if (rc == 0)
        rc = ag_mpc_fmul(m, &gr, &c, &step);
    if (rc == 0)
        rc = ag_mpc_sub(m, &g->w, &step, &w1);
    if (rc == 0 && g->o->l2 > 0) {
        ag_tensor_cleanup(&c);
        ag_tensor_cleanup(&step);
        rc = encode_const(m, g->D, g->o->learning_rate * g->o->l2, g->intercept, &c);
        if (rc == 0)
            rc = ag_mpc_fmul(m, &g->w, &c, &step);
        if (rc == 0)
            rc = ag_mpc_sub(m, &w1, &step, &t);
        if (rc == 0) {
            ag_tensor_cleanup(&w1);
            w1 = t;
            memset(&t, 0, sizeof(t));
        }
    }
    if (rc == 0) {
        ag_tensor_cleanup(&g->w);
        g->w = w1;
        memset(&w1, 0, sizeof(w1));
    }
    ag_tensor *all[] = {&xb, &xt, &z, &p, &yb, &r, &gr, &c, &step, &w1, &t};
    for (size_t i = 0; i < AG_ARRAY_LEN(all); i++)
        ag_tensor_cleanup(all[i]);
    return rc;
}

/* Opens the epoch's sum of squared residuals: the loss is its mean. */
static int epoch_loss(struct sgd *g, double *loss)
{
    ag_mpc *m = g->m;
    ag_tensor pub = {0};
    int rc = ag_mpc_reveal(m, &g->acc, &pub);
    if (rc < 0)
        return rc;
    *loss = ring_get(&pub, 0, 2 * ag_mpc_fxp_bits(m)) / (double)g->rows;
    ag_tensor_cleanup(&pub);
    memset(g->acc.data, 0, g->acc.numel * ag_field_bytes(g->acc.field));
    return 0;
}

/* X shared: whole blocks, or per batch into the Beaver cache (each batch's
 * rows shared, masked and opened once, then dropped: X is never whole). */
static int build_x(struct sgd *g, const ag_lr_data *d, const struct lr_local *L,
                   const size_t cols[2])
{
    ag_mpc *m = g->m;
    unsigned label = g->o->label_rank;
    if (!g->o->beaver_cache) {
        int rc = 0;
        for (unsigned r = 0; rc == 0 && r < 2; r++)
            rc = share_block(m, r, d, L->mean, L->std, r == label, 0, g->rows, cols[r],
                             &g->X[r]);
        return rc;
    }
    size_t bs = g->o->batch_size ? g->o->batch_size : 1024;
    g->batches = (g->rows + bs - 1) / bs;
    g->cache = ag_calloc(g->batches + 1, sizeof(*g->cache));
    if (!g->cache)
        return AG_E_NOMEM;
    int rc = 0;
    for (size_t b = 0; rc == 0 && b < g->batches; b++) {
        size_t s = b * bs, e = AG_MIN(g->rows, s + bs);
        ag_tensor part[2] = {{0}, {0}}, xb = {0};
        for (unsigned r = 0; rc == 0 && r < 2; r++)
            rc = share_block(m, r, d, L->mean, L->std, r == label, s, e, cols[r], &part[r]);
        const ag_tensor *pp[2] = {&part[0], &part[1]};
        if (rc == 0)
            rc = ag_tensor_concat(&xb, pp, 2, 1);
        ag_tensor_cleanup(&part[0]);
        ag_tensor_cleanup(&part[1]);
        if (rc == 0)
            rc = ag_mpc_xcache_new(m, &xb, &g->cache[b]);
        ag_tensor_cleanup(&xb);
    }
    return rc;
}

static int sgd_run(ag_fed *f, struct sgd *g, ag_errbuf *err)
{
    const ag_lr_opts *o = g->o;
    size_t bs = o->batch_size ? o->batch_size : 1024;
    size_t batches = (g->rows + bs - 1) / bs;
    for (unsigned ep = 1; ep <= o->epochs; ep++) {
        ag_link_stats st0, st;
        ag_fed_stats(f, &st0);
        uint64_t t0 = ag_now_ns(), last = t0;
        for (size_t b = 0; b < batches; b++) {
            size_t s = b * bs, e = AG_MIN(g->rows, s + bs);
            int rc = sgd_batch(g, b, s, e);
            if (rc < 0)
                return mpc_fail(f, g->m, rc, err);
            uint64_t now = ag_now_ns();
            if (o->epoch_fn && now - last > 200000000u && b + 1 < batches) {
                last = now;
                ag_fed_stats(f, &st);
                ag_lr_epoch e1 = {ep, o->epochs, b + 1, batches, NAN, (double)(now - t0) / 1e9,
                                  st.bytes_sent - st0.bytes_sent};
                o->epoch_fn(o->epoch_ud, &e1, false);
            }
        }
        double loss;
        int rc = epoch_loss(g, &loss);
        if (rc < 0)
            return mpc_fail(f, g->m, rc, err);
        ag_fed_stats(f, &st);
        ag_lr_epoch e1 = {ep, o->epochs, batches, batches, loss,
                          (double)(ag_now_ns() - t0) / 1e9, st.bytes_sent - st0.bytes_sent};
        if (o->epoch_fn)
            o->epoch_fn(o->epoch_ud, &e1, true);
    }
    return 0;
}

/* A model id both parties agree on: rank 0's random bytes, shared and
 * opened (one message). */
static int agree_id(ag_mpc *m, char id[33])
{
    ag_field fl = ag_mpc_field(m);
    size_t n = 16 / ag_field_bytes(fl);
    int64_t shape[1] = {(int64_t)n};
    ag_tensor pub = {0}, sh = {0}, open = {0};
    int rc = 0;
    if (ag_mpc_rank(m) == 0) {
        rc = ag_tensor_init(&pub, fl, AG_VIS_PUBLIC, 1, shape);
        if (rc == 0 && ag_random_bytes(pub.data, 16) < 0)
            rc = AG_E_SYS;
    }
    if (rc == 0)
        rc = ag_mpc_share(m, 0, ag_mpc_rank(m) == 0 ? &pub : NULL, 1, shape, &sh);
    if (rc == 0)
        rc = ag_mpc_reveal(m, &sh, &open);
    if (rc == 0)
        ag_hex_encode(id, open.data, 16);
    ag_tensor_cleanup(&pub);
    ag_tensor_cleanup(&sh);
    ag_tensor_cleanup(&open);
    return rc;
}

/* ---- models ----------------------------------------------------------------------- */

void ag_lr_model_cleanup(ag_lr_model *m)
{
    if (!m)
        return;
    for (size_t j = 0; m->names && j < m->cols[m->me]; j++)
        ag_free(m->names[j]);
    ag_free(m->names);
    ag_free(m->mean);
    ag_free(m->std);
    if (m->share) {
        memset(m->share, 0, m->nweights * ag_field_bytes(m->field));
        ag_free(m->share);
    }
    ag_free(m->weights);
    memset(m, 0, sizeof(*m));
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = ag_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* The model's common part, and this party's features (names, mean, std
 * copied from d and L). */
static int model_init(ag_lr_model *md, ag_fed *f, const ag_lr_data *d, const struct lr_local *L,
                      const int64_t meta[2][META_LEN], unsigned label_rank, ag_mpc *m)
{
    memset(md, 0, sizeof(*md));
    unsigned me = ag_fed_rank(f);
    md->me = me;
    snprintf(md->party, sizeof(md->party), "%s", ag_fed_party(f));
    for (unsigned r = 0; r < 2; r++) {
        snprintf(md->parties[r], sizeof(md->parties[r]), "%s", ag_fed_party_name(f, r));
        md->cols[r] = (size_t)meta[r][1];
    }
    md->label_rank = label_rank;
    md->field = ag_mpc_field(m);
    md->fxp_bits = ag_mpc_fxp_bits(m);
    md->nweights = md->cols[0] + md->cols[1] + 1;
    size_t c = d->cols;
    md->names = ag_calloc(c + 1, sizeof(*md->names));
    md->mean = ag_malloc((c + 1) * sizeof(double));
    md->std = ag_malloc((c + 1) * sizeof(double));
    if (!md->names || !md->mean || !md->std)
        return AG_E_NOMEM;
    for (size_t j = 0; j < c; j++) {
        char buf[32];
        snprintf(buf, sizeof(buf), "x%zu", j);
        md->names[j] = xstrdup(d->names ? d->names[j] : buf);
        if (!md->names[j])
            return AG_E_NOMEM;
        md->mean[j] = L->mean[j];
        md->std[j] = L->std[j];
    }
    return 0;
}

int ag_lr_train(ag_fed *f, const ag_lr_data *d, const ag_lr_opts *o, ag_lr_model *out,
                ag_errbuf *err)
{
    memset(out, 0, sizeof(*out));
    if (ag_fed_size(f) != 2)
        return ag_errbuf_set(err, AG_E_INVAL, "lr: two parties, not %u", ag_fed_size(f));
    if (o->label_rank > 1 || o->epochs == 0 || !(o->learning_rate > 0) || !(o->l2 >= 0))
        return ag_errbuf_set(err, AG_E_INVAL, "lr: bad options");
    unsigned me = ag_fed_rank(f);
    struct lr_local L = {d, o, me == o->label_rank, NULL, NULL, true};
    L.mean = ag_malloc((d->cols + 1) * sizeof(double));
    L.std = ag_malloc((d->cols + 1) * sizeof(double));
    struct sgd g;
    memset(&g, 0, sizeof(g));
    int rc;
    if (!L.mean || !L.std) {
        rc = ag_errbuf_set(err, ag_fed_fail(f, AG_E_NOMEM, "lr: no memory"), "%s",
                           ag_fed_errmsg(f));
        goto out;
    }
    int64_t meta[2][META_LEN];
    rc = exchange_shapes(f, &L, meta, err);
    if (rc < 0)
        goto out;
    if (!meta[o->label_rank][2] || meta[1 - o->label_rank][2]) {
        rc = ag_errbuf_set(err, AG_E_LR_DATA, "lr: the parties disagree on who holds the label");
        goto out;
    }
    ag_mpc *m = ag_fed_mpc(f);
    if (!m) {
        rc = ag_errbuf_set(err, AG_E_STATE, "%s", ag_fed_errmsg(f));
        goto out;
    }
    size_t bs = o->batch_size ? o->batch_size : 1024;
    if (o->learning_rate / (double)bs * ldexp(1, (int)ag_mpc_fxp_bits(m)) < 4) {
        rc = ag_errbuf_set(err, AG_E_INVAL, "lr: learning rate / batch size %g is below the "
                           "fixed-point resolution (2^-%u): raise the rate or use FM128",
                           o->learning_rate / (double)bs, ag_mpc_fxp_bits(m));
        goto out;
    }
    g.m = m;
    g.o = o;
    g.rows = (size_t)meta[0][0];
    size_t cols[2] = {(size_t)meta[0][1], (size_t)meta[1][1]};
    cols[o->label_rank] += 1;
    g.D = cols[0] + cols[1];
    g.intercept = o->label_rank == 0 ? cols[0] - 1 : g.D - 1;
    rc = build_x(&g, d, &L, cols);
    int64_t yshape[2] = {(int64_t)g.rows, 1}, wshape[2] = {(int64_t)g.D, 1};
    ag_tensor ypub = {0};
    if (rc == 0 && me == o->label_rank)
        rc = ag_mpc_encode(m, d->y, 2, yshape, &ypub);
    if (rc == 0)
        rc = ag_mpc_share(m, o->label_rank, me == o->label_rank ? &ypub : NULL, 2, yshape, &g.y);
    ag_tensor_cleanup(&ypub);
    if (rc == 0)
        rc = ag_tensor_init(&g.w, ag_mpc_field(m), AG_VIS_ASHARE, 2, wshape);
    if (rc == 0)
        rc = ag_tensor_init(&g.acc, ag_mpc_field(m), AG_VIS_ASHARE, 0, NULL);
    if (rc < 0) {
        rc = mpc_fail(f, m, rc, err);
        goto out;
    }
    rc = sgd_run(f, &g, err);
    if (rc < 0)
        goto out;
    /* the model: shares for all, the weights for the parties that learn them */
    rc = model_init(out, f, d, &L, meta, o->label_rank, m);
    if (rc == 0)
        rc = agree_id(m, out->id);
    out->sigmoid = o->sigmoid;
    size_t eb = ag_field_bytes(out->field);
    if (rc == 0) {
        out->share = ag_malloc(g.D * eb);
        if (!out->share)
            rc = AG_E_NOMEM;
        else
            memcpy(out->share, g.w.data, g.D * eb);
    }
    for (unsigned r = 0; rc == 0 && r < 2; r++) {
        if (!(o->reveal_mask >> r & 1))
            continue;
        ag_tensor pub = {0};
        rc = ag_mpc_reveal_to(m, &g.w, r, &pub);
        if (rc == 0 && r == me) {
            out->weights = ag_malloc(g.D * sizeof(double));
            if (!out->weights)
                rc = AG_E_NOMEM;
            else
                rc = ag_mpc_decode(m, &pub, out->weights);
        }
        ag_tensor_cleanup(&pub);
    }
    if (rc < 0) {
        rc = mpc_fail(f, m, rc, err);
        ag_lr_model_cleanup(out);
    }
out:
    for (int k = 0; k < 2; k++)
        ag_tensor_cleanup(&g.X[k]);
    for (size_t b = 0; g.cache && b < g.batches; b++)
        ag_mpc_xcache_free(g.cache[b]);
    ag_free(g.cache);
    ag_tensor_cleanup(&g.y);
    ag_tensor_cleanup(&g.w);
    ag_tensor_cleanup(&g.acc);
    ag_free(L.mean);
    ag_free(L.std);
    return rc;
}

/* ---- prediction --------------------------------------------------------------------- */

/* PYU at each party: its model's id, layout and this data's shape. */
struct pred_local {
    struct lr_local base;
    const ag_lr_model *md;
};

static int check_pred(ag_pyu_ctx *c, const ag_value *args, size_t nargs, ag_value *out)
{
    (void)args;
    (void)nargs;
    struct pred_local *P = (struct pred_local *)tl_local;
    const ag_lr_data *d = P->base.d;
    const ag_lr_model *md = P->md;
    if (d->cols != md->cols[md->me])
        return ag_pyu_error(c, AG_E_LR_MODEL, "%s: %zu feature columns, the model has %zu",
                            src_of(d), d->cols, md->cols[md->me]);
    int64_t shape[1] = {8};
    int rc = ag_value_i64_init(out, 1, shape);
    if (rc < 0)
        return ag_pyu_error(c, rc, "no memory");
    int64_t *v = ag_value_i64(out);
    v[0] = (int64_t)d->rows;
    v[1] = (int64_t)md->cols[0];
    v[2] = (int64_t)md->cols[1];
    v[3] = md->label_rank;
    v[4] = md->field;
    v[5] = md->fxp_bits;
    uint64_t h[2] = {0, 0};
    for (int i = 0; i < 32 && md->id[i]; i++)
        h[i / 16] = h[i / 16] * 16 + (uint64_t)(strchr("0123456789abcdef", md->id[i]) -
                                                "0123456789abcdef");
    memcpy(&v[6], h, sizeof(h));
    return 0;
}

int ag_lr_predict(ag_fed *f, const ag_lr_model *md, const ag_lr_data *d, double **scores,
                  ag_errbuf *err)
{
    *scores = NULL;
    if (ag_fed_size(f) != 2)
        return ag_errbuf_set(err, AG_E_INVAL, "lr: two parties, not %u", ag_fed_size(f));
    struct pred_local P = {{d, NULL, false, md->mean, md->std, false}, md};
    int64_t meta[2][8];
    int rc = reveal_each(f, &P.base, check_pred, &meta[0][0], 8, err);
    if (rc < 0)
        return rc;
    if (memcmp(&meta[0][1], &meta[1][1], 7 * sizeof(int64_t)) != 0 ||
        strcmp(md->parties[md->me], ag_fed_party(f)) != 0 ||
        strcmp(md->parties[1 - md->me], ag_fed_party_name(f, 1 - md->me)) != 0 ||
        md->me != ag_fed_rank(f))
        return ag_errbuf_set(err, ag_fed_fail(f, AG_E_LR_MODEL, "the model files are not the "
                                              "two halves of one model (trained together, for "
                                              "parties %s and %s in this order)",
                                              md->parties[0], md->parties[1]),
                             "%s", ag_fed_errmsg(f));
    if (meta[0][0] != meta[1][0])
        return rows_differ(f, meta[0][0], meta[1][0], err);
    ag_mpc *m = ag_fed_mpc(f);
    if (!m)
        return ag_errbuf_set(err, AG_E_STATE, "%s", ag_fed_errmsg(f));
    if (ag_mpc_field(m) != md->field || ag_mpc_fxp_bits(m) != md->fxp_bits)
        return ag_errbuf_set(err, ag_fed_fail(f, AG_E_LR_MODEL, "the model was trained over %s "
                                              "with %u fraction bits; this job runs %s with %u",
                                              ag_field_name(md->field), md->fxp_bits,
                                              ag_field_name(ag_mpc_field(m)),
                                              ag_mpc_fxp_bits(m)),
                             "%s", ag_fed_errmsg(f));
    size_t rows = (size_t)meta[0][0], me = ag_fed_rank(f);
    size_t cols[2] = {md->cols[0], md->cols[1]};
    cols[md->label_rank] += 1;
    size_t D = cols[0] + cols[1];
    ag_tensor X[2] = {{0}, {0}}, w = {0};
    int64_t wshape[2] = {(int64_t)D, 1};
    rc = ag_tensor_init(&w, md->field, AG_VIS_ASHARE, 2, wshape);
    if (rc == 0)
        memcpy(w.data, md->share, D * ag_field_bytes(md->field));
    for (unsigned r = 0; rc == 0 && r < 2; r++)
        rc = share_block(m, r, d, md->mean, md->std, r == md->label_rank, 0, rows, cols[r],
                         &X[r]);
    double *sc = NULL;
    if (rc == 0 && me == md->label_rank) {
        sc = ag_malloc(rows * sizeof(*sc) + 1);
        if (!sc)
            rc = AG_E_NOMEM;
    }
    const size_t step = 8192;
    for (size_t s = 0; rc == 0 && s < rows; s += step) {
        size_t e = AG_MIN(rows, s + step);
        ag_tensor xb = {0}, z = {0}, zo = {0};
        rc = batch_rows(m, X, s, e, &xb);
        if (rc == 0)
            rc = ag_mpc_fmatmul(m, &xb, &w, &z);
        if (rc == 0)
            rc = ag_mpc_reveal_to(m, &z, md->label_rank, &zo);
        if (rc == 0 && sc)
            for (size_t i = s; i < e; i++)
                sc[i] = 1.0 / (1.0 + exp(-ring_get(&zo, i - s, md->fxp_bits)));
        ag_tensor_cleanup(&xb);
        ag_tensor_cleanup(&z);
        ag_tensor_cleanup(&zo);
    }
    ag_tensor_cleanup(&X[0]);
    ag_tensor_cleanup(&X[1]);
    ag_tensor_cleanup(&w);
    if (rc < 0) {
        ag_free(sc);
        return mpc_fail(f, m, rc, err);
    }
    *scores = sc;
    return 0;
}

/* ---- tables to matrices ----------------------------------------------------------- */

int ag_lr_table_matrix(const ag_table *t, const char *source, const char *const *cols,
                       size_t ncols, double **out, ag_errbuf *err)
{
    *out = NULL;
    size_t rows = ag_table_nrows(t);
    int *idx = ag_malloc((ncols + 1) * sizeof(*idx));
    double *x = ag_malloc(rows * ncols * sizeof(*x) + 1);
    int rc = 0;
    if (!idx || !x) {
        rc = ag_errbuf_set(err, AG_E_NOMEM, "no memory for %zu x %zu features", rows, ncols);
        goto fail;
    }
    for (size_t j = 0; j < ncols; j++) {
        idx[j] = ag_table_col(t, cols[j]);
        if (idx[j] < 0) {
            rc = ag_errbuf_set(err, AG_E_CSV_COLUMN, "%s: no column '%s'", source, cols[j]);
            goto fail;
        }
    }
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < ncols; j++) {
            const char *cell = ag_table_cell(t, i, (size_t)idx[j], NULL);
            char *end;
            errno = 0;
            double v = strtod(cell, &end);
            if (!*cell || *end || !isfinite(v)) {
                rc = ag_errbuf_set(err, AG_E_CSV_VALUE, "%s:%llu: column '%s' is not a number",
                                   source, (unsigned long long)ag_table_line(t, i), cols[j]);
                goto fail;
            }
            x[i * ncols + j] = v;
        }
    ag_free(idx);
    *out = x;
    return 0;
fail:
    ag_free(idx);
    ag_free(x);
    return rc;
}

/* ---- model files ---------------------------------------------------------------------- *
 *
 * Text, one record per line, fields separated by one space; names are
 * percent-encoded (%XX for bytes below 0x21, '%' and 0x7f):
 *
 *   argot-lr-model 1
 *   party alice
 *   parties alice bob
 *   label-party bob
 *   field FM64 18                 ring and fraction bits of the shares
 *   sigmoid seg3                  the mode it was trained with
 *   id 3f0c...                    the same in both halves of one model
 *   features 2 16                 per party, in rank order (the label party's
 *                                 block has one more weight, the intercept)
 *   feature NAME MEAN STD         this party's features, in order (%.17g)
 *   share HEX                     nweights lines: this party's additive share
 *                                 of each weight (little-endian ring element)
 *   weight VALUE                  nweights lines, only if revealed to it
 *
 * Weights are in the order: party 0's features, party 1's, the intercept
 * the last of the label party's block.
 */

static void put_name(FILE *fp, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x21 || ch == '%' || ch == 0x7f)
            fprintf(fp, "%%%02X", ch);
        else
            fputc(ch, fp);
    }
}

int ag_lr_model_save(const ag_lr_model *m, const char *path, ag_errbuf *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        return ag_errbuf_set(err, AG_E_IO, "%s: %s", tmp, strerror(errno));
    size_t eb = ag_field_bytes(m->field);
    fprintf(fp, "%s\nparty %s\nparties %s %s\nlabel-party %s\nfield %s %u\nsigmoid %s\nid %s\n"
            "features %zu %zu\n", LR_MAGIC, m->party, m->parties[0], m->parties[1],
            m->parties[m->label_rank], ag_field_name(m->field), m->fxp_bits,
            ag_lr_sigmoid_name(m->sigmoid), m->id, m->cols[0], m->cols[1]);
    for (size_t j = 0; j < m->cols[m->me]; j++) {
        fputs("feature ", fp);
        put_name(fp, m->names[j]);
        fprintf(fp, " %.17g %.17g\n", m->mean[j], m->std[j]);
    }
    char hex[65];
    for (size_t i = 0; i < m->nweights; i++) {
        ag_hex_encode(hex, (const uint8_t *)m->share + i * eb, eb);
        fprintf(fp, "share %s\n", hex);
    }
    for (size_t i = 0; m->weights && i < m->nweights; i++)
        fprintf(fp, "weight %.17g\n", m->weights[i]);
    memset(hex, 0, sizeof(hex));
    int bad = ferror(fp);
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        bad = 1;
    if (fclose(fp) != 0)
        bad = 1;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ag_errbuf_set(err, AG_E_IO, "%s: %s", path, strerror(e));
    }
    return 0;
}

static int get_name(const char *s, char **out)
{
    size_t n = strlen(s);
    char *p = ag_malloc(n + 1), *q = p;
    if (!p)
        return AG_E_NOMEM;
    for (; *s; s++) {
        unsigned v;
        if (*s == '%' && sscanf(s + 1, "%2X", &v) == 1 && isxdigit((unsigned char)s[1]) &&
            isxdigit((unsigned char)s[2])) {
            *q++ = (char)v;
            s += 2;
        } else {
            *q++ = *s;
        }
    }
    *q = '\0';
    *out = p;
    return 0;
}

/* Parses one line of a model file into md (load's state in *nf, *ns, *nw).
 * A line is a key, one space, then the key's values: the key must match
 * exactly ("partyX alice" is no party line). */
static int model_line(ag_lr_model *md, char *line, size_t *nf, size_t *ns, size_t *nw)
{
    char a[64], b[72];
    unsigned u;
    size_t c0, c1;
    char *sp = strchr(line, ' ');
    if (!sp)
        return AG_E_LR_MODEL;
    *sp = '\0';
    const char *key = line, *rest = sp + 1;
    /* the header sizes the arrays: once the features line came, it is fixed */
    static const char *const header[] = {"party", "parties", "label-party", "field", NULL};
    for (int k = 0; md->names && header[k]; k++)
        if (strcmp(key, header[k]) == 0)
            return AG_E_LR_MODEL;
    if (strcmp(key, "party") == 0)
        return sscanf(rest, "%31s", md->party) == 1 ? 0 : AG_E_LR_MODEL;
    if (strcmp(key, "parties") == 0)
        return sscanf(rest, "%31s %31s", md->parties[0], md->parties[1]) == 2 ? 0
                                                                              : AG_E_LR_MODEL;
    if (strcmp(key, "label-party") == 0) {
        if (sscanf(rest, "%63s", a) != 1)
            return AG_E_LR_MODEL;
        md->label_rank = strcmp(a, md->parties[1]) == 0;
        return strcmp(a, md->parties[md->label_rank]) == 0 ? 0 : AG_E_LR_MODEL;
    }
    if (strcmp(key, "field") == 0) {
        if (sscanf(rest, "%63s %u", a, &u) != 2)
            return AG_E_LR_MODEL;
        md->field = strcmp(a, "FM128") == 0 ? AG_FM128 : AG_FM64;
        md->fxp_bits = u;
        return strcmp(a, "FM64") == 0 || strcmp(a, "FM128") == 0 ? 0 : AG_E_LR_MODEL;
    }
    if (strcmp(key, "sigmoid") == 0) {
        if (sscanf(rest, "%63s", a) != 1)
            return AG_E_LR_MODEL;
        int sm = ag_lr_sigmoid_parse(a);
        md->sigmoid = sm < 0 ? AG_SIGMOID_SEG3 : (ag_sigmoid_mode)sm;
        return sm < 0 ? AG_E_LR_MODEL : 0;
    }
    if (strcmp(key, "id") == 0)
        return sscanf(rest, "%32s", md->id) == 1 ? 0 : AG_E_LR_MODEL;
    if (strcmp(key, "features") == 0) {
        if (sscanf(rest, "%zu %zu", &c0, &c1) != 2 || md->names || c0 > AG_LR_MAX_FEATURES ||
            c1 > AG_LR_MAX_FEATURES)
            return AG_E_LR_MODEL;
        md->cols[0] = c0;
        md->cols[1] = c1;
        md->me = strcmp(md->party, md->parties[1]) == 0;
        if (strcmp(md->party, md->parties[md->me]) != 0)
            return AG_E_LR_MODEL;
        md->nweights = c0 + c1 + 1;
        size_t c = md->cols[md->me];
        md->names = ag_calloc(c + 1, sizeof(*md->names));
        md->mean = ag_malloc((c + 1) * sizeof(double));
        md->std = ag_malloc((c + 1) * sizeof(double));
        md->share = ag_calloc(md->nweights, ag_field_bytes(md->field));
        return md->names && md->mean && md->std && md->share ? 0 : AG_E_NOMEM;
    }
    if (strcmp(key, "feature") == 0) {
        char name[4096];
        double mu, sd;
        if (!md->names || *nf >= md->cols[md->me] ||
            sscanf(rest, "%4095s %lf %lf", name, &mu, &sd) != 3 || !(sd > 0))
            return AG_E_LR_MODEL;
        md->mean[*nf] = mu;
        md->std[*nf] = sd;
        return get_name(name, &md->names[(*nf)++]);
    }
    if (strcmp(key, "share") == 0) {
        size_t eb = ag_field_bytes(md->field);
        if (sscanf(rest, "%64s", b) != 1 || !md->share || *ns >= md->nweights ||
            strlen(b) != 2 * eb)
            return AG_E_LR_MODEL;
        uint8_t *p = (uint8_t *)md->share + *ns * eb;
        for (size_t i = 0; i < eb; i++) {
            int hi = ag_hex_digit(b[2 * i]), lo = ag_hex_digit(b[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return AG_E_LR_MODEL;
            p[i] = (uint8_t)(hi << 4 | lo);
        }
        (*ns)++;
        return 0;
    }
    if (strcmp(key, "weight") == 0) {
        if (!md->share || *nw >= md->nweights)
            return AG_E_LR_MODEL;
        if (!md->weights) {
            md->weights = ag_calloc(md->nweights, sizeof(double));
            if (!md->weights)
                return AG_E_NOMEM;
        }
        char *end;
        md->weights[*nw] = strtod(rest, &end);
        (*nw)++;
        return *end == '\0' && end != rest ? 0 : AG_E_LR_MODEL;
    }
    return AG_E_LR_MODEL;
}

int ag_lr_model_load(const char *path, ag_lr_model *md, ag_errbuf *err)
{
    memset(md, 0, sizeof(*md));
    FILE *fp = fopen(path, "r");
    if (!fp)
        return ag_errbuf_set(err, AG_E_IO, "%s: %s", path, strerror(errno));
    char line[8192];
    size_t nf = 0, ns = 0, nw = 0, lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (lineno == 1) {
            if (strcmp(line, LR_MAGIC) != 0) {
                rc = ag_errbuf_set(err, AG_E_LR_MODEL, "%s: not an argot lr model (the first "
                                   "line is not '%s')", path, LR_MAGIC);
                break;
            }
            continue;
        }
        int r = model_line(md, line, &nf, &ns, &nw);
        if (r < 0) {
            rc = ag_errbuf_set(err, r == AG_E_NOMEM ? r : AG_E_LR_MODEL, "%s:%zu: %s", path,
                               lineno, r == AG_E_NOMEM ? "no memory" : "bad line");
            break;
        }
    }
    if (rc == 0 && ferror(fp))
        rc = ag_errbuf_set(err, AG_E_IO, "%s: %s", path, strerror(errno));
    fclose(fp);
    if (rc == 0 && (!md->party[0] || !md->parties[0][0] || !md->parties[1][0] ||
                    strcmp(md->parties[0], md->parties[1]) == 0))
        rc = ag_errbuf_set(err, AG_E_LR_MODEL, "%s: no party, or not two distinct parties",
                           path);
    if (rc == 0 && (!md->names || nf != md->cols[md->me] || ns != md->nweights ||
                    (nw && nw != md->nweights) || !md->id[0]))
        rc = ag_errbuf_set(err, AG_E_LR_MODEL, "%s: incomplete model (%zu of %zu features, %zu "
                           "of %zu shares)", path, nf, md->cols[md->me], ns, md->nweights);
    if (rc < 0)
        ag_lr_model_cleanup(md);
    return rc;
}
