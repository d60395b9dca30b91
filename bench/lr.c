/*
 * lr: secure logistic regression (ag_lr_train, src/apps/lr.c) on this
 * machine, both parties in one process (simulation mode: a thread each,
 * the in-memory link), against the same SGD in the clear on one core.
 *
 *   synthetic  10^5 rows x 100 features per party, and 400k rows x 450
 *              features per party (the SecretFlow user's SS-LR epoch,
 *              reported at 1646 s; the target is under 60 s here): one
 *              epoch of mini-batch SGD (batch 1024, SEG3 sigmoid), with the
 *              Beaver cache (the default) and without; seconds and bytes
 *              (sent by one party) per epoch, from the training's own epoch
 *              report; the sharing and the cache's one opening before it
 *              are not counted.
 *   breast     sklearn's breast-cancer data (Debian python3-sklearn's CSV),
 *              features 0-14 at alice, 15-29 and the label at bob, every
 *              third row held out: test accuracy per sigmoid mode against
 *              plaintext SGD of the same schedule, the whole training's
 *              time and bytes.
 *
 * Usage: lr [--small] (--small: only the 10^5 x 100 and breast-cancer runs)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/apps.h"

#define BREAST "/usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv"

struct bench {
    size_t rows, cols[2];
    double *x[2], *y;
    const char **names[2];
    ag_lr_opts o;
    double epoch_s[2];
    uint64_t epoch_bytes[2];
    double total_s;
    uint64_t total_bytes;
    ag_lr_model model[2];
    int rc;
    char err[AG_ERRMSG_MAX];
};

static _Thread_local struct bench *tl_bench;
static _Thread_local unsigned tl_rank;

static void on_epoch(void *ud, const ag_lr_epoch *e, bool done)
{
    struct bench *b = ud;
    if (done && e->epoch == 1) {
        b->epoch_s[tl_rank] = e->seconds;
        b->epoch_bytes[tl_rank] = e->bytes_sent;
    }
}

static int job(ag_fed *f, void *ud)
{
    struct bench *b = ud;
    unsigned me = ag_fed_rank(f);
    tl_bench = b;
    tl_rank = me;
    ag_lr_data d = {b->rows, b->cols[me], b->x[me], b->names[me], me == 1 ? b->y : NULL, NULL};
    ag_lr_opts o = b->o;
    o.epoch_fn = on_epoch;
    o.epoch_ud = b;
    ag_errbuf err = {0, ""};
    uint64_t t0 = ag_now_ns();
    int rc = ag_lr_train(f, &d, &o, &b->model[me], &err);
    if (rc < 0) {
        if (me == 0)
            snprintf(b->err, sizeof(b->err), "%s", err.msg);
        return ag_fed_errmsg(f)[0] ? rc : ag_fed_fail(f, rc, "%s", err.msg);
    }
    if (me == 0) {
        ag_link_stats st;
        ag_fed_stats(f, &st);
        b->total_s = (double)(ag_now_ns() - t0) / 1e9;
        b->total_bytes = st.bytes_sent;
    }
    return 0;
}

static int run(struct bench *b)
{
    ag_fed_run r;
    ag_fed_run_init(&r, job, b);
    r.timeout_ms = 3600 * 1000;
    const char *names[2] = {"alice", "bob"};
    b->rc = ag_fed_run_sim(&r, 2, names);
    if (b->rc < 0)
        fprintf(stderr, "lr: %s\n", r.err);
    return b->rc;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double uni(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* Plaintext SGD (the same schedule, the exact sigmoid) on standardised
 * columns of both parties; w has cols[0] + cols[1] + 1 entries, the
 * intercept last. Returns the seconds of the first epoch. */
static double plain_sgd(const struct bench *b, const size_t *train, size_t ntrain, double *w,
                        double *mean, double *sd)
{
    size_t D = b->cols[0] + b->cols[1] + 1;
    for (size_t j = 0; j + 1 < D; j++) {
        int k = j < b->cols[0] ? 0 : 1;
        size_t c = k ? j - b->cols[0] : j, nc = b->cols[k];
        double s = 0, ss = 0;
        for (size_t t = 0; t < ntrain; t++)
            s += b->x[k][train[t] * nc + c];
        mean[j] = s / (double)ntrain;
        for (size_t t = 0; t < ntrain; t++) {
            double v = b->x[k][train[t] * nc + c] - mean[j];
            ss += v * v;
        }
        sd[j] = sqrt(ss / (double)ntrain);
    }
    memset(w, 0, D * sizeof(double));
    double *g = calloc(D, sizeof(double)), *row = malloc(D * sizeof(double)), first = 0;
    size_t bs = b->o.batch_size;
    for (unsigned ep = 0; ep < b->o.epochs; ep++) {
        uint64_t t0 = ag_now_ns();
        for (size_t s = 0; s < ntrain; s += bs) {
            size_t e = s + bs < ntrain ? s + bs : ntrain;
            memset(g, 0, D * sizeof(double));
            for (size_t t = s; t < e; t++) {
                size_t i = train[t];
                for (size_t j = 0; j + 1 < D; j++) {
                    int k = j < b->cols[0] ? 0 : 1;
                    size_t c = k ? j - b->cols[0] : j;
                    row[j] = (b->x[k][i * b->cols[k] + c] - mean[j]) / sd[j];
                }
                row[D - 1] = 1;
                double z = 0;
                for (size_t j = 0; j < D; j++)
                    z += row[j] * w[j];
                double r = 1 / (1 + exp(-z)) - b->y[i];
                for (size_t j = 0; j < D; j++)
                    g[j] += row[j] * r;
            }
            for (size_t j = 0; j < D; j++)
                w[j] -= b->o.learning_rate / (double)(e - s) * g[j];
        }
        if (ep == 0)
            first = (double)(ag_now_ns() - t0) / 1e9;
    }
    free(g);
    free(row);
    return first;
}

static void synthetic(size_t rows, size_t cols, bool cache)
{
    static struct bench b;
    memset(&b, 0, sizeof(b));
    b.rows = rows;
    b.cols[0] = b.cols[1] = cols;
    for (int k = 0; k < 2; k++) {
        b.x[k] = malloc(rows * cols * sizeof(double));
        if (!b.x[k]) {
            printf("%zu x %zu: no memory\n", rows, cols);
            return;
        }
    }
    b.y = malloc(rows * sizeof(double));
    for (size_t i = 0; i < rows; i++) {
        double z = 0;
        for (int k = 0; k < 2; k++)
            for (size_t j = 0; j < cols; j++) {
                double v = uni() * 2 - 1;
                b.x[k][i * cols + j] = v;
                z += (j % 7 == 0 ? 1.0 : 0.1) * v * (k ? -1 : 1);
            }
        b.y[i] = z + (uni() - 0.5) > 0;
    }
    ag_lr_opts_init(&b.o);
    b.o.epochs = 1;
    b.o.label_rank = 1;
    b.o.beaver_cache = cache;
    int rc = run(&b);
    /* the plaintext epoch on one core */
    size_t *all = malloc(rows * sizeof(size_t));
    for (size_t i = 0; i < rows; i++)
        all[i] = i;
    size_t D = 2 * cols + 1;
    double *w = malloc(D * sizeof(double)), *mean = malloc(D * sizeof(double)),
           *sd = malloc(D * sizeof(double));
    double plain = plain_sgd(&b, all, rows, w, mean, sd);
    if (rc == 0)
        printf("%8zu x %3zu per party  %-5s  %8.2f  %12.1f  %11.3f  %5.0fx  %8.2f  %10.1f\n",
               rows, cols, cache ? "yes" : "no", b.epoch_s[0],
               (double)b.epoch_bytes[0] / 1048576.0, plain, b.epoch_s[0] / plain, b.total_s,
               (double)b.total_bytes / 1048576.0);
    else
        printf("%8zu x %3zu per party  %-5s  failed: %s\n", rows, cols, cache ? "yes" : "no",
               b.err);
    fflush(stdout);
    for (int k = 0; k < 2; k++) {
        free(b.x[k]);
        ag_lr_model_cleanup(&b.model[k]);
    }
    free(b.y);
    free(all);
    free(w);
    free(mean);
    free(sd);
}

/* The breast-cancer CSV: a header line, then 30 features and the label. */
static int breast(void)
{
    FILE *fp = fopen(BREAST, "r");
    if (!fp) {
        printf("breast cancer: %s not found (install python3-sklearn)\n", BREAST);
        return 0;
    }
    static double X[600][30], Y[600];
    char line[4096];
    size_t n = 0;
    if (!fgets(line, sizeof(line), fp))
        n = 0;
    while (n < 600 && fgets(line, sizeof(line), fp)) {
        char *p = line;
        for (int j = 0; j < 30; j++)
            X[n][j] = strtod(p, &p), p += *p == ',';
        Y[n++] = strtod(p, NULL);
    }
    fclose(fp);
    size_t ntr = 0, nte = 0;
    static size_t train[600], test[600];
    for (size_t i = 0; i < n; i++) {
        if (i % 3 == 2)
            test[nte++] = i;
        else
            train[ntr++] = i;
    }
    printf("\nbreast cancer (%zu training rows, %zu test rows; 30 epochs, batch 1024, rate 0.5)\n"
           "sigmoid  accuracy  plaintext  seconds  MiB sent (one party)\n", ntr, nte);
    static const ag_sigmoid_mode modes[3] = {AG_SIGMOID_REAL, AG_SIGMOID_SEG3, AG_SIGMOID_MM1};
    for (int m = 0; m < 3; m++) {
        static struct bench b;
        memset(&b, 0, sizeof(b));
        b.rows = ntr;
        b.cols[0] = b.cols[1] = 15;
        static double xa[600 * 15], xb[600 * 15], yy[600], full_x[2][600 * 15];
        for (size_t t = 0; t < ntr; t++) {
            for (int j = 0; j < 15; j++) {
                xa[t * 15 + j] = X[train[t]][j];
                xb[t * 15 + j] = X[train[t]][15 + j];
            }
            yy[t] = Y[train[t]];
        }
        b.x[0] = xa;
        b.x[1] = xb;
        b.y = yy;
        ag_lr_opts_init(&b.o);
        b.o.epochs = 30;
        b.o.batch_size = 1024;
        b.o.learning_rate = 0.5;
        b.o.sigmoid = modes[m];
        b.o.label_rank = 1;
        b.o.reveal_mask = 0x3;
        if (run(&b) < 0)
            return 1;
        /* the plaintext model, on the full data's layout */
        struct bench pb = b;
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < 15; j++) {
                full_x[0][i * 15 + j] = X[i][j];
                full_x[1][i * 15 + j] = X[i][15 + j];
            }
        pb.x[0] = full_x[0];
        pb.x[1] = full_x[1];
        pb.y = Y;
        double w[31], mean[31], sd[31];
        plain_sgd(&pb, train, ntr, w, mean, sd);
        /* test accuracy of both (the secure model's weights were revealed) */
        const double *ws = b.model[0].weights;
        int right = 0, right_plain = 0;
        for (size_t t = 0; t < nte; t++) {
            size_t i = test[t];
            double z = ws[30], zp = w[30];
            for (int j = 0; j < 30; j++) {
                double v = (X[i][j] - mean[j]) / sd[j];
                z += v * ws[j];
                zp += v * w[j];
            }
            right += (z > 0) == (Y[i] > 0.5);
            right_plain += (zp > 0) == (Y[i] > 0.5);
        }
        printf("%-7s  %8.4f  %9.4f  %7.3f  %8.2f\n", ag_lr_sigmoid_name(modes[m]),
               (double)right / (double)nte, (double)right_plain / (double)nte, b.total_s,
               (double)b.total_bytes / 1048576.0);
        for (int k = 0; k < 2; k++)
            ag_lr_model_cleanup(&b.model[k]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    bool small = argc > 1 && strcmp(argv[1], "--small") == 0;
    printf("lr: one epoch of secure SGD (batch 1024, sigmoid seg3), two parties in one process "
           "(in-memory link)\n"
           "rows x features          cache   s/epoch  MiB/epoch (1 party)  plaintext s  ratio"
           "   total s   total MiB\n"
           "(total: the whole ag_lr_train of one epoch, sharing and the cache's opening "
           "included)\n");
    for (int c = 1; c >= 0; c--)
        synthetic(100000, 100, c);
    for (int c = 1; !small && c >= 0; c--)
        synthetic(400000, 450, c);
    printf("  (SecretFlow SS-LR, reported: 1646 s for one epoch of 400k x 450 per party; "
           "target < 60 s)\n");
    return breast();
}
