/*
 * Tests for the federated runtime (src/fed/): jobs run at every party as
 * threads over an in-memory link, as simulation mode does. PYU calls,
 * transfers, the SPU device, reveal and wait, errors that reach every party
 * naming the one that failed, and the wire form of values.
 */
#include <math.h>
#include <pthread.h>

#include "argot/fed.h"
#include "fed/internal.h"
#include "test.h"

#define NP_MAX 3

struct run {
    unsigned n;
    ag_fed_job *job;
    void *ud;
    ag_field field;
    uint64_t timeout_ms;
    ag_link *links[NP_MAX];
    struct {
        ag_fed_job *job;
        void *ud;
        ag_fed_opts o;
        int rc;
        char err[AG_ERRMSG_MAX];
        double out[8];   /* what the job recorded */
        int nout;
    } p[NP_MAX];
};

struct party_arg {
    struct run *r;
    unsigned i;
};

static __thread struct run *tls_run;

static struct run *current_of(ag_fed *f)
{
    (void)f;
    return tls_run;
}

static void record(ag_fed *f, double v)
{
    struct run *r = current_of(f);
    unsigned i = ag_fed_rank(f);
    if (r->p[i].nout < 8)
        r->p[i].out[r->p[i].nout++] = v;
}

static void *party_main(void *arg)
{
    struct party_arg *pa = arg;
    struct run *r = pa->r;
    tls_run = r;
    ag_fed *f = ag_fed_new(&r->p[pa->i].o);
    if (!f) { /* under failmalloc */
        r->p[pa->i].rc = AG_E_NOMEM;
        ag_link_abort(r->links[pa->i], "out of memory");
        return NULL;
    }
    int rc = r->job(f, r->ud);
    r->p[pa->i].rc = rc;
    if (rc < 0) {
        snprintf(r->p[pa->i].err, sizeof(r->p[pa->i].err), "%s", ag_fed_errmsg(f));
        ag_link_abort(r->links[pa->i], r->p[pa->i].err);
    }
    ag_fed_free(f);
    return NULL;
}

/* Runs job at n parties (alice, bob, carol). */
static void run_job(struct run *r, unsigned n, ag_fed_job *job, void *ud)
{
    static const char *const names[] = {"alice", "bob", "carol"};
    memset(r, 0, sizeof(*r));
    r->n = n;
    r->job = job;
    r->ud = ud;
    int rc = ag_link_mem_group(n, names, r->links);
    if (rc == AG_E_NOMEM && ag_alloc_failed()) {
        for (unsigned i = 0; i < n; i++)
            r->p[i].rc = rc;
        return;
    }
    CHECK_OK(rc);
    pthread_t th[NP_MAX];
    struct party_arg pa[NP_MAX];
    for (unsigned i = 0; i < n; i++) {
        ag_fed_opts_init(&r->p[i].o);
        r->p[i].o.rank = i;
        r->p[i].o.n = n;
        r->p[i].o.names = names;
        r->p[i].o.link = r->links[i];
        ag_link_set_timeout_ms(r->links[i], 20000);
        pa[i] = (struct party_arg){r, i};
    }
    for (unsigned i = 0; i < n; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, party_main, &pa[i]), 0);
    for (unsigned i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < n; i++)
        ag_link_free(r->links[i]);
}

static int fail_job(ag_fed *f, const char *what)
{
    return ag_fed_fail(f, AG_E_INVAL, "%s", what);
}

/* ---- PYU functions ---------------------------------------------------------- */

static int add_one(ag_pyu_ctx *c, const ag_value *args, size_t n, ag_value *out)
{
    if (n != 1 || args[0].type != AG_V_F64)
        return ag_pyu_error(c, AG_E_INVAL, "takes one f64 tensor");
    int rc = ag_value_f64_init(out, args[0].ndim, args[0].shape);
    for (size_t i = 0; rc == 0 && i < out->numel; i++)
        ag_value_f64(out)[i] = ag_value_f64(&args[0])[i] + 1;
    return rc;
}

static int vec(ag_pyu_ctx *c, const ag_value *args, size_t n, ag_value *out)
{
    (void)args;
    (void)n;
    int64_t shape[1] = {4};
    int rc = ag_value_f64_init(out, 1, shape);
    for (int i = 0; rc == 0 && i < 4; i++)
        ag_value_f64(out)[i] = strcmp(ag_pyu_party(c), "alice") == 0 ? i + 1 : 10 * (i + 1);
    return rc;
}

static int sum_all(ag_pyu_ctx *c, const ag_value *args, size_t n, ag_value *out)
{
    double s = 0;
    for (size_t k = 0; k < n; k++) {
        if (args[k].type != AG_V_F64)
            return ag_pyu_error(c, AG_E_INVAL, "argument %zu is %s", k + 1,
                                ag_vtype_name(args[k].type));
        for (size_t i = 0; i < args[k].numel; i++)
            s += ag_value_f64(&args[k])[i];
    }
    return ag_value_scalar_f64(out, s);
}

static int boom(ag_pyu_ctx *c, const ag_value *args, size_t n, ag_value *out)
{
    (void)args;
    (void)n;
    (void)out;
    return ag_pyu_error(c, AG_E_NOENT, "input.csv: no such file");
}

static int ints(ag_pyu_ctx *c, const ag_value *args, size_t n, ag_value *out)
{
    (void)c;
    (void)args;
    (void)n;
    int64_t shape[1] = {3};
    int rc = ag_value_i64_init(out, 1, shape);
    for (int i = 0; rc == 0 && i < 3; i++)
        ag_value_i64(out)[i] = -5 + 5 * i; /* -5, 0, 5 */
    return rc;
}

static int bytes_fn(ag_pyu_ctx *c, const ag_value *args, size_t n, ag_value *out)
{
    (void)c;
    (void)args;
    (void)n;
    return ag_value_bytes(out, "secret", 6);
}

/* ---- jobs ----------------------------------------------------------------------- */

static int hello_job(ag_fed *f, void *ud)
{
    (void)ud;
    ag_obj *a = ag_pyu_call(f, "alice", add_one, ag_const_f64(f, 2));
    ag_obj *b = ag_pyu_call(f, "bob", add_one, ag_const_f64(f, 2));
    CHECK_STR_EQ(ag_obj_owner(f, a), "alice");
    /* only the owner holds a PYU value */
    CHECK_EQ(ag_obj_value(a) != NULL, ag_fed_rank(f) == 0);
    ag_obj *s = ag_spu_mul(f, ag_to_spu(f, a), ag_to_spu(f, b));
    CHECK(ag_obj_is_spu(s));
    CHECK(ag_obj_value(s) == NULL);
    double v;
    int rc = ag_reveal_f64(f, s, &v);
    if (rc < 0)
        return rc;
    record(f, v);
    return 0;
}

TEST(fed_hello_every_party_learns_nine)
{
    static struct run r;
    for (unsigned n = 2; n <= 3; n++) {
        run_job(&r, n, hello_job, NULL);
        for (unsigned i = 0; i < n; i++) {
            CHECK_EQ(r.p[i].rc, 0);
            CHECK_EQ(r.p[i].nout, 1);
            CHECK(fabs(r.p[i].out[0] - 9) < 1e-4);
        }
    }
}

static int transfer_job(ag_fed *f, void *ud)
{
    (void)ud;
    ag_obj *xa = ag_pyu_call(f, "alice", vec);
    ag_obj *xb = ag_pyu_call(f, "bob", vec);
    /* PYU to PYU: alice's vector goes to bob as an argument, and explicitly */
    ag_obj *s = ag_pyu_call(f, "bob", sum_all, xa, xb);
    ag_obj *moved = ag_to_pyu(f, xa, "bob");
    CHECK_STR_EQ(ag_obj_owner(f, moved), "bob");
    if (ag_fed_rank(f) == 1) {
        const ag_value *v = ag_obj_value(moved);
        CHECK(v != NULL);
        CHECK_EQ(v->numel, 4);
        CHECK(ag_value_f64(v)[3] == 4);
    } else {
        CHECK(ag_obj_value(moved) == NULL);
    }
    double v;
    int rc = ag_reveal_f64(f, s, &v); /* bob's object, pushed to all */
    if (rc < 0)
        return rc;
    record(f, v);
    /* SPU to PYU: revealed to alice only */
    ag_obj *sp = ag_spu_sum(f, ag_spu_add(f, ag_to_spu(f, xa), ag_to_spu(f, xb)), AG_AXIS_ALL);
    ag_obj *at_alice = ag_to_pyu(f, sp, "alice");
    CHECK_OK(ag_wait(f, at_alice));
    const ag_value *av = ag_obj_value(at_alice);
    CHECK_EQ(av != NULL, ag_fed_rank(f) == 0);
    if (av)
        record(f, ag_value_f64(av)[0]);
    /* a public constant may go anywhere */
    ag_obj *c = ag_to_pyu(f, ag_const_f64(f, 1.5), "bob");
    rc = ag_reveal_f64(f, c, &v);
    if (rc == 0)
        record(f, v);
    return rc;
}

static int put_job(ag_fed *f, void *ud)
{
    (void)ud;
    ag_value mine = {0};
    if (ag_fed_rank(f) == 1)
        CHECK_OK(ag_value_scalar_f64(&mine, 41));
    ag_obj *o = ag_pyu_put(f, "bob", ag_fed_rank(f) == 1 ? &mine : NULL);
    CHECK_EQ(mine.type, AG_V_NONE); /* moved */
    CHECK_STR_EQ(ag_obj_owner(f, o), "bob");
    double v;
    int rc = ag_reveal_f64(f, ag_pyu_call(f, "alice", add_one, o), &v);
    if (rc == 0)
        record(f, v);
    /* bob's value is nowhere but at bob: put at alice without one fails there */
    ag_obj *none = ag_pyu_put(f, "alice", NULL);
    CHECK_EQ(ag_wait(f, none), AG_E_INVAL);
    CHECK_STR_EQ(ag_fed_errmsg(f), "party alice: put: no value");
    return rc;
}

TEST(fed_put_makes_a_local_value_a_pyu_object)
{
    static struct run r;
    run_job(&r, 2, put_job, NULL);
    CHECK_EQ(r.p[0].rc, 0);
    CHECK_EQ(r.p[1].rc, 0);
    CHECK(r.p[0].out[0] == 42 && r.p[1].out[0] == 42);
}

TEST(fed_transfers_pyu_to_pyu_spu_to_pyu_and_reveal)
{
    static struct run r;
    run_job(&r, 2, transfer_job, NULL);
    CHECK_EQ(r.p[0].rc, 0);
    CHECK_EQ(r.p[1].rc, 0);
    CHECK(r.p[0].out[0] == 110 && r.p[1].out[0] == 110); /* 10 + 100 */
    CHECK(fabs(r.p[0].out[1] - 110) < 1e-3);
    CHECK_EQ(r.p[0].nout, 3);
    CHECK_EQ(r.p[1].nout, 2);
    CHECK(r.p[1].out[1] == 1.5);
}

static int error_job(ag_fed *f, void *ud)
{
    (void)ud;
    ag_obj *x = ag_pyu_call(f, "bob", boom);
    /* an error carried through a PYU call at another party, into the SPU, to
     * a reveal: every party sees bob's cause */
    ag_obj *y = ag_pyu_call(f, "alice", add_one, x);
    ag_obj *z = ag_spu_add(f, ag_to_spu(f, y), ag_const_f64(f, 1));
    double v;
    int rc = ag_reveal_f64(f, z, &v);
    CHECK_EQ(rc, AG_E_NOENT);
    CHECK_STR_EQ(ag_fed_errmsg(f), "party bob: boom: input.csv: no such file");
    /* the runtime is not broken by an object's error: more work goes on */
    ag_obj *ok = ag_pyu_call(f, "alice", add_one, ag_const_f64(f, 1));
    CHECK_OK(ag_reveal_f64(f, ok, &v));
    CHECK(v == 2);
    /* wait is collective: every party learns of bob's failure */
    ag_obj *w = ag_pyu_call(f, "bob", boom);
    rc = ag_wait(f, ok, w);
    CHECK_EQ(rc, AG_E_NOENT);
    CHECK_STR_EQ(ag_fed_errmsg(f), "party bob: boom: input.csv: no such file");
    const char *msg;
    CHECK_EQ(ag_obj_status(w, &msg), AG_E_NOENT);
    CHECK_OK(ag_wait(f, ok, ag_const_i64(f, 3)));
    return 0;
}

TEST(fed_errors_travel_with_objects_to_every_party)
{
    static struct run r;
    run_job(&r, 3, error_job, NULL);
    for (unsigned i = 0; i < 3; i++)
        CHECK_EQ(r.p[i].rc, 0);
}

static int misuse_job(ag_fed *f, void *ud)
{
    (void)ud;
    double v;
    /* bytes cannot be shared: the owner says so, every party fails alike */
    ag_obj *b = ag_pyu_call(f, "alice", bytes_fn);
    CHECK_EQ(ag_reveal_f64(f, ag_to_spu(f, b), &v), AG_E_MPC_VIS);
    CHECK_STR_EQ(ag_fed_errmsg(f), "party alice: to_spu: a bytes cannot enter the SPU "
                                   "(tensors of f64 or i64 can)");
    /* but they can be revealed */
    ag_value out;
    CHECK_OK(ag_reveal(f, b, &out));
    CHECK_EQ(out.type, AG_V_BYTES);
    CHECK_MEM_EQ(out.data, "secret", 6);
    ag_value_cleanup(&out);
    /* a PYU object straight into an SPU op */
    ag_obj *a = ag_pyu_call(f, "alice", vec);
    CHECK_EQ(ag_reveal_f64(f, ag_spu_neg(f, a), &v), AG_E_MPC_VIS);
    CHECK_STR_EQ(ag_fed_errmsg(f), "neg: argument 1 belongs to party alice: move it into the "
                                   "SPU first (ag_to_spu)");
    /* an SPU object as a PYU argument */
    ag_obj *s = ag_to_spu(f, a);
    CHECK_EQ(ag_reveal_f64(f, ag_pyu_call(f, "bob", sum_all, s), &v), AG_E_MPC_VIS);
    /* an unknown party */
    CHECK_EQ(ag_reveal_f64(f, ag_pyu_call(f, "mallory", vec), &v), AG_E_INVAL);
    CHECK_STR_EQ(ag_fed_errmsg(f), "vec: no party 'mallory'");
    /* shapes that do not match: the same error everywhere */
    int64_t two[1] = {2};
    ag_obj *m = ag_spu_matmul(f, s, ag_spu_reshape(f, s, 1, two));
    CHECK_EQ(ag_wait(f, m), AG_E_MPC_SHAPE);
    /* a scalar reveal of a vector */
    CHECK_EQ(ag_reveal_f64(f, s, &v), AG_E_MPC_SHAPE);
    CHECK_STR_EQ(ag_fed_errmsg(f), "reveal_f64: the object is f64(4), not one number");
    return 0;
}

TEST(fed_misuse_fails_alike_at_every_party)
{
    static struct run r;
    run_job(&r, 2, misuse_job, NULL);
    CHECK_EQ(r.p[0].rc, 0);
    CHECK_EQ(r.p[1].rc, 0);
}

static int spu_ops_job(ag_fed *f, void *ud)
{
    (void)ud;
    ag_obj *x = ag_to_spu(f, ag_pyu_call(f, "alice", vec));  /* 1 2 3 4 */
    ag_obj *y = ag_to_spu(f, ag_pyu_call(f, "bob", vec));    /* 10 20 30 40 */
    ag_obj *k = ag_to_spu(f, ag_pyu_call(f, "bob", ints));   /* -5 0 5 (integers) */
    ag_value v;
    double d;
    /* mixed integer and fixed point: integers are scaled */
    int64_t three[1] = {3};
    int64_t start[1] = {0}, stop[1] = {3};
    ag_obj *x3 = ag_spu_slice(f, x, start, stop, NULL);
    CHECK_OK(ag_reveal(f, ag_spu_add(f, x3, k), &v));
    CHECK_EQ(v.type, AG_V_F64);
    CHECK(fabs(ag_value_f64(&v)[0] + 4) < 1e-4 && fabs(ag_value_f64(&v)[2] - 8) < 1e-4);
    ag_value_cleanup(&v);
    CHECK_OK(ag_reveal(f, ag_spu_mul(f, k, k), &v)); /* integer products stay integers */
    CHECK_EQ(v.type, AG_V_I64);
    CHECK_EQ(ag_value_i64(&v)[0], 25);
    ag_value_cleanup(&v);
    CHECK_OK(ag_reveal(f, ag_spu_mul(f, x3, k), &v));
    CHECK_EQ(v.type, AG_V_F64);
    CHECK(fabs(ag_value_f64(&v)[2] - 15) < 1e-4);
    ag_value_cleanup(&v);
    /* comparisons give 0/1 integers, select picks */
    ag_obj *lt = ag_spu_less(f, ag_spu_mul(f, x, ag_const_f64(f, 10)),
                             ag_spu_sub(f, y, ag_const_f64(f, 0.5)));
    CHECK_OK(ag_reveal(f, lt, &v));
    CHECK_EQ(v.type, AG_V_I64);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(ag_value_i64(&v)[i], 0);
    ag_value_cleanup(&v);
    ag_obj *gt = ag_spu_greater(f, y, ag_spu_mul(f, x, ag_const_f64(f, 9)));
    CHECK_OK(ag_reveal(f, ag_spu_select(f, gt, x, y), &v));
    CHECK(fabs(ag_value_f64(&v)[1] - 2) < 1e-4);
    ag_value_cleanup(&v);
    /* matmul of (1x4) by (4x1), mean, exp, sigmoid, division */
    int64_t row[2] = {1, 4}, col[2] = {4, 1};
    CHECK_OK(ag_reveal_f64(f, ag_spu_matmul(f, ag_spu_reshape(f, x, 2, row),
                                            ag_spu_reshape(f, y, 2, col)), &d));
    CHECK(fabs(d - 300) < 1e-3);
    CHECK_OK(ag_reveal_f64(f, ag_spu_mean(f, y, AG_AXIS_ALL), &d));
    CHECK(fabs(d - 25) < 1e-3);
    ag_obj *one = ag_spu_reshape(f, ag_spu_slice(f, x, start, (int64_t[]){1}, NULL), 0, NULL);
    CHECK_OK(ag_reveal_f64(f, ag_spu_exp(f, one), &d));
    CHECK(fabs(d - M_E) < 1e-2);
    CHECK_OK(ag_reveal_f64(f, ag_spu_sigmoid(f, ag_spu_neg(f, one), AG_SIGMOID_REAL), &d));
    CHECK(fabs(d - 1 / (1 + M_E)) < 1e-2);
    CHECK_OK(ag_reveal_f64(f, ag_spu_div(f, one, ag_const_f64(f, 4)), &d));
    CHECK(fabs(d - 0.25) < 1e-3);
    CHECK_OK(ag_reveal_f64(f, ag_spu_argmax(f, y, 0), &d));
    CHECK(d == 3);
    /* concat of shares and a constant; transpose */
    ag_obj *parts[3] = {x3, k, ag_const_f64(f, 7)};
    ag_obj *cat = ag_spu_concat(f, parts, 2, 0);
    int64_t shape[8];
    CHECK_EQ(ag_obj_shape(cat, shape), 1);
    CHECK_EQ(shape[0], 6);
    CHECK_OK(ag_reveal(f, cat, &v));
    CHECK(fabs(ag_value_f64(&v)[3] + 5) < 1e-4);
    ag_value_cleanup(&v);
    (void)three;
    CHECK_OK(ag_reveal(f, ag_spu_transpose(f, ag_spu_reshape(f, x, 2, row)), &v));
    CHECK_EQ(v.ndim, 2);
    CHECK_EQ(v.shape[0], 4);
    ag_value_cleanup(&v);
    ag_obj_free(f, cat);
    ag_obj_free(f, NULL);
    return 0;
}

TEST(fed_spu_operations_mix_integers_and_fixed_point)
{
    static struct run r;
    run_job(&r, 2, spu_ops_job, NULL);
    CHECK_EQ(r.p[0].rc, 0);
    CHECK_EQ(r.p[1].rc, 0);
}

static int fail_bob_job(ag_fed *f, void *ud)
{
    (void)ud;
    if (ag_fed_rank(f) == 1)
        return fail_job(f, "bob.csv:3: not a number");
    double v;
    ag_obj *a = ag_pyu_call(f, "bob", add_one, ag_const_f64(f, 1));
    return ag_reveal_f64(f, a, &v);
}

TEST(fed_a_failing_party_stops_the_others_with_its_cause)
{
    static struct run r;
    run_job(&r, 3, fail_bob_job, NULL);
    CHECK_EQ(r.p[1].rc, AG_E_INVAL);
    CHECK_STR_EQ(r.p[1].err, "party bob: bob.csv:3: not a number");
    CHECK(r.p[0].rc < 0);
    CHECK_CONTAINS(r.p[0].err, "party bob: bob.csv:3: not a number");
    CHECK(r.p[2].rc < 0);
    CHECK_CONTAINS(r.p[2].err, "party bob");
}

static int table_job(ag_fed *f, void *ud)
{
    if (ag_fed_rank(f) != 0)
        return 0;
    ag_table *tab;
    char err[AG_ERRMSG_MAX];
    CHECK_OK(ag_table_read_csv(ud, &tab, err, sizeof(err)));
    CHECK_EQ(ag_table_nrows(tab), 3);
    CHECK_EQ(ag_table_ncols(tab), 2);
    CHECK_STR_EQ(ag_table_colname(tab, 1), "income");
    CHECK_EQ(ag_table_col(tab, "income"), 1);
    CHECK_STR_EQ(ag_table_cell(tab, 2, 0, NULL), "c, \"q\"");
    CHECK_EQ(ag_table_line(tab, 2), 4);
    ag_value col;
    CHECK_EQ(ag_table_column_f64(tab, "incom", &col, err, sizeof(err)), AG_E_CSV_COLUMN);
    CHECK_CONTAINS(err, "no column 'incom' (did you mean 'income'?)");
    CHECK_OK(ag_table_column_f64(tab, "income", &col, err, sizeof(err)));
    CHECK(ag_value_f64(&col)[0] == 1.5);
    ag_value_cleanup(&col);
    ag_table_free(tab);
    CHECK_EQ(ag_table_read_csv("/nonexistent/x.csv", &tab, err, sizeof(err)), AG_E_NOENT);
    CHECK_CONTAINS(err, "/nonexistent/x.csv");
    return 0;
}

static int load_table(ag_pyu_ctx *c, const ag_value *args, size_t n, ag_value *out)
{
    (void)n;
    ag_table *t;
    char err[AG_ERRMSG_MAX];
    int rc = ag_table_read_csv((const char *)args[0].data, &t, err, sizeof(err));
    if (rc < 0)
        return ag_pyu_error(c, rc, "%s", err);
    ag_value_table(out, t);
    return 0;
}

static int income(ag_pyu_ctx *c, const ag_value *args, size_t n, ag_value *out)
{
    (void)n;
    char err[AG_ERRMSG_MAX];
    if (args[0].type != AG_V_TABLE)
        return ag_pyu_error(c, AG_E_INVAL, "not a table");
    int rc = ag_table_column_f64(args[0].table, "income", out, err, sizeof(err));
    return rc < 0 ? ag_pyu_error(c, rc, "%s", err) : 0;
}

static int table_move_job(ag_fed *f, void *ud)
{
    ag_obj *t = ag_pyu_call(f, "alice", load_table, ag_const_str(f, ud));
    ag_obj *at_bob = ag_to_pyu(f, t, "bob"); /* the whole table, cells and lines */
    ag_obj *col = ag_pyu_call(f, "bob", income, at_bob);
    double v;
    int rc = ag_reveal_f64(f, ag_spu_sum(f, ag_to_spu(f, col), AG_AXIS_ALL), &v);
    if (rc == 0)
        record(f, v);
    if (ag_fed_rank(f) == 1 && rc == 0) {
        const ag_value *tv = ag_obj_value(at_bob);
        const char *msg;
        if (!tv)
            FAIL("status %d: %s", ag_obj_status(at_bob, &msg), msg);
        CHECK(tv && tv->type == AG_V_TABLE);
        CHECK_STR_EQ(ag_table_cell(tv->table, 2, 0, NULL), "c, \"q\"");
        CHECK_EQ(ag_table_line(tv->table, 2), 4);
    }
    return rc;
}

TEST(fed_tables_read_at_a_party_and_moved)
{
    static const char csv[] = "id,income\na,1.5\nb,2\n\"c, \"\"q\"\"\",3\n";
    const char *path = ag_test_write_file("t.csv", csv, strlen(csv));
    static struct run r;
    run_job(&r, 2, table_job, (void *)path);
    CHECK_EQ(r.p[0].rc, 0);
    run_job(&r, 2, table_move_job, (void *)path);
    CHECK_EQ(r.p[0].rc, 0);
    CHECK_EQ(r.p[1].rc, 0);
    CHECK(fabs(r.p[1].out[0] - 6.5) < 1e-4);
    /* a bad cell names the file and line, at every party */
    path = ag_test_write_file("bad.csv", "id,income\na,1\nb,x\n", 18);
    run_job(&r, 2, table_move_job, (void *)path);
    CHECK_EQ(r.p[0].rc, AG_E_CSV_VALUE);
    CHECK_EQ(r.p[1].rc, AG_E_CSV_VALUE);
    char want[600];
    snprintf(want, sizeof(want), "party bob: income: (received):3: column 'income': 'x' is not "
             "a number");
    CHECK_STR_EQ(r.p[0].err, want);
}

/* ---- the wire form ------------------------------------------------------------------ */

static void roundtrip(const ag_value *v)
{
    ag_buf b;
    ag_buf_init(&b, SIZE_MAX);
    CHECK_OK(ag__fed_encode_value(&b, v, true));
    ag_value out;
    int status;
    char err[AG_ERRMSG_MAX];
    CHECK_OK(ag__fed_decode(b.data, b.len, true, &out, &status, err, sizeof(err)));
    CHECK_EQ(status, 0);
    CHECK_EQ(out.type, v->type);
    CHECK_EQ(out.numel, v->numel);
    CHECK_EQ(out.ndim, v->ndim);
    if (v->type != AG_V_TABLE && v->numel)
        CHECK_MEM_EQ(out.data, v->data, v->type == AG_V_BYTES ? v->numel : v->numel * 8);
    /* every strict prefix is refused, never read past */
    for (size_t cut = 0; cut < b.len; cut++) {
        ag_value o2;
        int st;
        uint8_t *copy = ag_malloc(cut + 1);
        memcpy(copy, b.data, cut);
        int rc = ag__fed_decode(copy, cut, true, &o2, &st, err, sizeof(err));
        CHECK_EQ(rc, AG_E_MPC_PROTOCOL);
        ag_free(copy);
    }
    ag_value_cleanup(&out);
    ag_buf_cleanup(&b);
}

TEST(fed_values_cross_the_wire_intact)
{
    ag_value v;
    int64_t shape[2] = {2, 3};
    CHECK_OK(ag_value_f64_init(&v, 2, shape));
    for (int i = 0; i < 6; i++)
        ag_value_f64(&v)[i] = i * 0.5 - 1;
    roundtrip(&v);
    char d[64];
    CHECK_STR_EQ(ag_value_describe(&v, d, sizeof(d)), "f64(2,3)");
    ag_value_cleanup(&v);
    CHECK_OK(ag_value_scalar_i64(&v, -7));
    roundtrip(&v);
    ag_value_cleanup(&v);
    CHECK_OK(ag_value_bytes(&v, "a\0b", 3));
    roundtrip(&v);
    ag_value_cleanup(&v);
    static const char csv[] = "k,v\nx,1\n\"y\nz\",2\n";
    const char *path = ag_test_write_file("w.csv", csv, strlen(csv));
    ag_table *t;
    char err[AG_ERRMSG_MAX];
    CHECK_OK(ag_table_read_csv(path, &t, err, sizeof(err)));
    ag_value_table(&v, t);
    roundtrip(&v);
    ag_value c;
    CHECK_OK(ag_value_copy(&c, &v));
    CHECK_STR_EQ(ag_table_cell(c.table, 1, 0, NULL), "y\nz");
    CHECK_STR_EQ(ag_value_describe(&c, d, sizeof(d)), "table(2x2)");
    ag_value_cleanup(&c);
    ag_value_cleanup(&v);
    /* an error */
    ag_buf b;
    ag_buf_init(&b, SIZE_MAX);
    CHECK_OK(ag__fed_encode_error(&b, AG_E_NOENT, "party bob: f: gone"));
    int status;
    CHECK_OK(ag__fed_decode(b.data, b.len, true, &v, &status, err, sizeof(err)));
    CHECK_EQ(status, AG_E_NOENT);
    CHECK_STR_EQ(err, "party bob: f: gone");
    ag_buf_cleanup(&b);
    /* lies about sizes */
    uint8_t lie[] = {0, AG_V_F64, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f};
    CHECK_EQ(ag__fed_decode(lie, sizeof(lie), true, &v, &status, err, sizeof(err)),
             AG_E_MPC_PROTOCOL);
    uint8_t tab[] = {0, AG_V_TABLE, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ(ag__fed_decode(tab, sizeof(tab), true, &v, &status, err, sizeof(err)),
             AG_E_MPC_PROTOCOL);
}

static int fm_job(ag_fed *f, void *ud)
{
    (void)ud;
    ag_obj *a = ag_pyu_call(f, "alice", add_one, ag_const_f64(f, 2));
    ag_obj *b = ag_pyu_call(f, "bob", add_one, ag_const_f64(f, 2));
    ag_obj *t = ag_to_pyu(f, a, "bob");
    ag_obj *s = ag_spu_mul(f, ag_to_spu(f, a), ag_to_spu(f, b));
    double v;
    int rc = ag_wait(f, t);
    if (rc == 0)
        rc = ag_reveal_f64(f, s, &v);
    if (rc == 0)
        record(f, v);
    return rc;
}

TEST_FM(fed_hello_under_allocation_failures)
{
    /* every party's allocations may fail: a failure is an error at every
     * party, never a hang or a leak */
    static struct run r;
    run_job(&r, 2, fm_job, NULL);
    for (unsigned i = 0; i < 2; i++)
        CHECK(r.p[i].rc == 0 || ag_alloc_failed());
    if (r.p[0].rc == 0 && r.p[1].rc == 0)
        CHECK(fabs(r.p[0].out[0] - 9) < 1e-4);
}
