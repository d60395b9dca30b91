/* Tests for src/apps/lr.c: training against the same SGD in the clear,
 * prediction, the model file round trip, and the errors. */
#include <math.h>

#include "argot/apps.h"
#include "test.h"

#define ROWS 300
#define COLS_A 3
#define COLS_B 2

struct lr_case {
    double xa[ROWS * COLS_A], xb[ROWS * COLS_B], y[ROWS];
    const char *names[2][COLS_A];
    ag_lr_opts o;
    ag_lr_model model[2];
    double *scores;
    int rc[2];
    char err[2][AG_ERRMSG_MAX];
};

/* Rows from a fixed generator; the label a noisy linear rule of all five. */
static void make_data(struct lr_case *c)
{
    uint64_t s = 12345;
    for (int i = 0; i < ROWS; i++) {
        double v[5], z = 0.3;
        static const double w[5] = {1.5, -2.0, 0.5, 1.0, -0.7};
        for (int j = 0; j < 5; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            v[j] = (double)(s >> 11) / 9007199254740992.0 * 4 - 2 + j * 3;
            z += w[j] * (v[j] - j * 3);
        }
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double noise = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 1.0;
        for (int j = 0; j < COLS_A; j++)
            c->xa[i * COLS_A + j] = v[j];
        for (int j = 0; j < COLS_B; j++)
            c->xb[i * COLS_B + j] = v[COLS_A + j];
        c->y[i] = z + noise > 0;
    }
    static const char *na[COLS_A] = {"a 0", "a%1", "a2"}, *nb[COLS_B] = {"b0", "b1"};
    memcpy(c->names[0], na, sizeof(na));
    memcpy(c->names[1], nb, sizeof(nb));
}

/* The same SGD in the clear (bob holds the label and the intercept). */
static void plain_sgd(const struct lr_case *c, double w[COLS_A + COLS_B + 1])
{
    enum { D = COLS_A + COLS_B + 1 };
    static double x[ROWS][D];
    for (int j = 0; j < COLS_A + COLS_B; j++) {
        double mu = 0, ss = 0;
        for (int i = 0; i < ROWS; i++)
            mu += j < COLS_A ? c->xa[i * COLS_A + j] : c->xb[i * COLS_B + j - COLS_A];
        mu /= ROWS;
        for (int i = 0; i < ROWS; i++) {
            double v = j < COLS_A ? c->xa[i * COLS_A + j] : c->xb[i * COLS_B + j - COLS_A];
            ss += (v - mu) * (v - mu);
        }
        double sd = sqrt(ss / ROWS);
        for (int i = 0; i < ROWS; i++)
            x[i][j] = ((j < COLS_A ? c->xa[i * COLS_A + j] : c->xb[i * COLS_B + j - COLS_A]) -
                       mu) / sd;
    }
    for (int i = 0; i < ROWS; i++)
        x[i][D - 1] = 1;
    memset(w, 0, D * sizeof(double));
    size_t bs = c->o.batch_size;
    for (unsigned ep = 0; ep < c->o.epochs; ep++)
        for (size_t s = 0; s < ROWS; s += bs) {
            size_t e = AG_MIN((size_t)ROWS, s + bs);
            double g[D] = {0};
            for (size_t i = s; i < e; i++) {
                double z = 0;
                for (int j = 0; j < D; j++)
                    z += x[i][j] * w[j];
                double r = 1 / (1 + exp(-z)) - c->y[i];
                for (int j = 0; j < D; j++)
                    g[j] += x[i][j] * r;
            }
            for (int j = 0; j < D; j++)
                w[j] -= c->o.learning_rate / (double)(e - s) * g[j] +
                        (j < D - 1 ? c->o.learning_rate * c->o.l2 * w[j] : 0);
        }
}

static int train_job(ag_fed *f, void *ud)
{
    struct lr_case *c = ud;
    unsigned me = ag_fed_rank(f);
    ag_lr_data d = {ROWS, me == 0 ? COLS_A : COLS_B, me == 0 ? c->xa : c->xb, c->names[me],
                    me == 1 ? c->y : NULL, me == 0 ? "a.csv" : "b.csv"};
    ag_errbuf err = {0, ""};
    int rc = ag_lr_train(f, &d, &c->o, &c->model[me], &err);
    c->rc[me] = rc;
    if (rc < 0) {
        snprintf(c->err[me], sizeof(c->err[me]), "%s", err.msg);
        return ag_fed_errmsg(f)[0] ? rc : ag_fed_fail(f, rc, "%s", err.msg);
    }
    double *scores = NULL;
    rc = ag_lr_predict(f, &c->model[me], &d, &scores, &err);
    if (rc < 0)
        return ag_fed_errmsg(f)[0] ? rc : ag_fed_fail(f, rc, "%s", err.msg);
    CHECK((scores != NULL) == (me == 1));
    if (scores)
        c->scores = scores;
    return 0;
}

static void run_case(struct lr_case *c, int want)
{
    ag_fed_run r;
    ag_fed_run_init(&r, train_job, c);
    const char *names[2] = {"alice", "bob"};
    int rc = ag_fed_run_sim(&r, 2, names);
    if (rc != want)
        FAIL("run: %s (%s), want %s", ag_err_name(rc), r.err, ag_err_name(want));
}

static void cleanup_case(struct lr_case *c)
{
    ag_lr_model_cleanup(&c->model[0]);
    ag_lr_model_cleanup(&c->model[1]);
    ag_free(c->scores);
}

TEST(lr_train_matches_plaintext_sgd_and_predicts)
{
    static struct lr_case c;
    for (int cache = 1; cache >= 0; cache--) {
        memset(&c, 0, sizeof(c));
        make_data(&c);
        ag_lr_opts_init(&c.o);
        c.o.epochs = 5;
        c.o.batch_size = 64;
        c.o.learning_rate = 0.5;
        c.o.l2 = 0.01;
        c.o.sigmoid = AG_SIGMOID_REAL;
        c.o.label_rank = 1;
        c.o.reveal_mask = 0x2; /* bob learns the weights */
        c.o.beaver_cache = cache; /* with and without the Beaver cache */
        run_case(&c, 0);
        double w[COLS_A + COLS_B + 1];
        plain_sgd(&c, w);
        CHECK(c.model[0].weights == NULL);
        CHECK(c.model[1].weights != NULL);
        CHECK_EQ(c.model[1].nweights, COLS_A + COLS_B + 1);
        for (int j = 0; j < COLS_A + COLS_B + 1; j++)
            if (fabs(c.model[1].weights[j] - w[j]) > 0.01)
                FAIL("weight %d: %.5f, in the clear %.5f", j, c.model[1].weights[j], w[j]);
        CHECK_STR_EQ(c.model[0].id, c.model[1].id);
        /* the scores are the plaintext model's */
        int right = 0;
        for (int i = 0; i < ROWS; i++)
            right += (c.scores[i] > 0.5) == (c.y[i] > 0.5);
        CHECK(right > ROWS * 85 / 100);
        cleanup_case(&c);
    }
}

TEST(lr_train_refuses_bad_data_at_both_parties)
{
    static struct lr_case c;
    memset(&c, 0, sizeof(c));
    make_data(&c);
    ag_lr_opts_init(&c.o);
    c.o.epochs = 1;
    c.o.label_rank = 1;
    for (int i = 0; i < ROWS; i++)
        c.xa[i * COLS_A + 1] = 7;
    run_case(&c, AG_E_LR_DATA);
    CHECK_CONTAINS(c.err[1], "party alice: ");
    CHECK_CONTAINS(c.err[1], "a.csv: feature column 'a%1' has zero variance");
    cleanup_case(&c);

    memset(&c, 0, sizeof(c));
    make_data(&c);
    ag_lr_opts_init(&c.o);
    c.o.label_rank = 1;
    c.y[17] = 2;
    run_case(&c, AG_E_LR_DATA);
    CHECK_CONTAINS(c.err[0], "party bob: ");
    CHECK_CONTAINS(c.err[0], "b.csv: row 18: the label must be 0 or 1");
    cleanup_case(&c);

    /* options the parties disagree on */
    memset(&c, 0, sizeof(c));
    make_data(&c);
    ag_lr_opts_init(&c.o);
    c.o.label_rank = 1;
    c.o.reveal_mask = 0x1;
    run_case(&c, 0); /* the same options at both: fine */
    cleanup_case(&c);
}

TEST(lr_model_file_round_trip)
{
    ag_lr_model m;
    memset(&m, 0, sizeof(m));
    snprintf(m.party, sizeof(m.party), "bob");
    snprintf(m.parties[0], sizeof(m.parties[0]), "alice");
    snprintf(m.parties[1], sizeof(m.parties[1]), "bob");
    m.me = 1;
    m.label_rank = 1;
    m.cols[0] = 2;
    m.cols[1] = 2;
    m.field = AG_FM128;
    m.fxp_bits = 26;
    m.sigmoid = AG_SIGMOID_MM1;
    snprintf(m.id, sizeof(m.id), "00112233445566778899aabbccddeeff");
    m.nweights = 5;
    char *names[2] = {"a b%c", "x,y"};
    double mean[2] = {1.5, -2.25}, sd[2] = {0.1, 3};
    m.names = names;
    m.mean = mean;
    m.std = sd;
    uint64_t share[10];
    for (int i = 0; i < 10; i++)
        share[i] = 0x0123456789abcdefull * (uint64_t)(i + 1);
    m.share = share;
    double w[5] = {0.5, -1, 2, 1e-7, 3};
    m.weights = w;
    ag_errbuf err = {0, ""};
    const char *path = ag_test_path("m.model");
    CHECK_OK(ag_lr_model_save(&m, path, &err));
    ag_lr_model l;
    CHECK_OK(ag_lr_model_load(path, &l, &err));
    CHECK_STR_EQ(l.party, "bob");
    CHECK_EQ(l.me, 1);
    CHECK_EQ(l.label_rank, 1);
    CHECK_EQ(l.field, AG_FM128);
    CHECK_EQ(l.fxp_bits, 26);
    CHECK_EQ(l.sigmoid, AG_SIGMOID_MM1);
    CHECK_STR_EQ(l.id, m.id);
    CHECK_STR_EQ(l.names[0], "a b%c");
    CHECK_STR_EQ(l.names[1], "x,y");
    CHECK(l.mean[1] == -2.25 && l.std[0] == 0.1);
    CHECK_MEM_EQ(l.share, share, sizeof(share));
    CHECK(l.weights && l.weights[3] == 1e-7);
    ag_lr_model_cleanup(&l);

    /* a truncated file */
    FILE *fp = fopen(path, "r");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    ag_test_write_file("cut.model", buf, n / 2);
    CHECK_EQ(ag_lr_model_load(ag_test_path("cut.model"), &l, &err), AG_E_LR_MODEL);
    ag_test_write_file("bad.model", "argot-lr-model 1\nparty bob\nfeatures x\n", 38);
    CHECK_EQ(ag_lr_model_load(ag_test_path("bad.model"), &l, &err), AG_E_LR_MODEL);
    CHECK_CONTAINS(err.msg, "bad.model:3: bad line");
}

TEST(lr_table_matrix_names_line_and_column)
{
    static const char csv[] = "id,a,b\nk1,1,2.5\nk2,3,x\n";
    const char *path = ag_test_write_file("t.csv", csv, strlen(csv));
    char e[AG_ERRMSG_MAX];
    ag_table *t;
    CHECK_OK(ag_table_read_csv(path, &t, e, sizeof(e)));
    ag_errbuf err = {0, ""};
    double *x;
    const char *a[] = {"a"}, *ab[] = {"b", "a"}, *nope[] = {"c"};
    CHECK_OK(ag_lr_table_matrix(t, "t.csv", a, 1, &x, &err));
    CHECK(x[0] == 1 && x[1] == 3);
    ag_free(x);
    CHECK_EQ(ag_lr_table_matrix(t, "t.csv", ab, 2, &x, &err), AG_E_CSV_VALUE);
    CHECK_STR_EQ(err.msg, "t.csv:3: column 'b' is not a number");
    CHECK(x == NULL);
    CHECK_EQ(ag_lr_table_matrix(t, "t.csv", nope, 1, &x, &err), AG_E_CSV_COLUMN);
    CHECK_STR_EQ(err.msg, "t.csv: no column 'c'");
    ag_table_free(t);
    CHECK_EQ(ag_lr_sigmoid_parse("seg3"), AG_SIGMOID_SEG3);
    CHECK_EQ(ag_lr_sigmoid_parse("relu"), -1);
}
