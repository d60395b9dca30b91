/* Tests for the PSI app (src/apps/psi*.c): two parties on threads over an
 * in-memory link, their outputs compared byte for byte with a plaintext
 * join computed here from the same rows; the messages' decoders; what
 * crosses the link; failures at the peer. */
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/internal.h"
#include "argot/apps.h"
#include "link/internal.h"
#include "test.h"

static const char *const party_names[] = {"alice", "bob"};

/* ---- tables and the plaintext join --------------------------------------------- */

#define MAX_COLS 6

struct tbl {
    size_t ncols;
    const char *names[MAX_COLS];
    size_t nrows;
    size_t cap;
    char **cells; /* nrows * ncols, malloc'd strings */
};

static void tbl_init(struct tbl *t, size_t ncols, const char *const *names)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    for (size_t i = 0; i < ncols; i++)
        t->names[i] = names[i];
}

static void tbl_add(struct tbl *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->cells = realloc(t->cells, t->cap * t->ncols * sizeof(*t->cells));
        CHECK(t->cells != NULL);
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = strdup(cells[i]);
    t->nrows++;
}

static const char *cell(const struct tbl *t, size_t r, size_t c)
{
    return t->cells[r * t->ncols + c];
}

static void tbl_free(struct tbl *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* The CSV text of t (malloc'd). */
static char *tbl_csv(const struct tbl *t)
{
    ag_buf b;
    ag_buf_init(&b, (size_t)1 << 30);
    ag_csv_writer *w = ag_csv_writer_new(NULL);
    CHECK(w != NULL);
    CHECK_OK(ag_csv_writer_open_buf(w, &b));
    ag_slice f[MAX_COLS];
    for (size_t i = 0; i < t->ncols; i++)
        f[i] = ag_slice_str(t->names[i]);
    CHECK_OK(ag_csv_write_record(w, f, t->ncols));
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t i = 0; i < t->ncols; i++)
            f[i] = ag_slice_str(cell(t, r, i));
        CHECK_OK(ag_csv_write_record(w, f, t->ncols));
    }
    CHECK_OK(ag_csv_writer_close(w));
    char *s = strndup(b.data ? (const char *)b.data : "", b.len);
    ag_buf_cleanup(&b);
    return s;
}

/* The key of a row: the cells of the key columns. */
struct keyed {
    const struct tbl *t;
    const size_t *kc;
    size_t nk;
};

static int key_cmp(const struct keyed *a, size_t ra, const struct keyed *b, size_t rb)
{
    for (size_t k = 0; k < a->nk; k++) {
        const char *x = cell(a->t, ra, a->kc[k]), *y = cell(b->t, rb, b->kc[k]);
        size_t lx = strlen(x), ly = strlen(y);
        int c = memcmp(x, y, lx < ly ? lx : ly);
        if (c)
            return c;
        if (lx != ly)
            return lx < ly ? -1 : 1;
    }
    return 0;
}

static const struct keyed *sort_ctx;

static int idx_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = key_cmp(sort_ctx, x, sort_ctx, y);
    return c ? c : (x > y) - (x < y);
}

static size_t *sorted_rows(const struct keyed *k)
{
    size_t *ix = malloc((k->t->nrows + 1) * sizeof(*ix));
    for (size_t i = 0; i < k->t->nrows; i++)
        ix[i] = i;
    sort_ctx = k;
    qsort(ix, k->t->nrows, sizeof(*ix), idx_cmp);
    return ix;
}

static void write_row(ag_csv_writer *w, const struct tbl *t, size_t r)
{
    ag_slice f[MAX_COLS];
    for (size_t i = 0; i < t->ncols; i++)
        f[i] = ag_slice_str(cell(t, r, i));
    CHECK_OK(ag_csv_write_record(w, f, t->ncols));
}

static void write_nulls(ag_csv_writer *w, size_t ncols, size_t n)
{
    ag_slice f[MAX_COLS];
    for (size_t i = 0; i < ncols; i++)
        f[i] = ag_slice_str("NULL");
    for (size_t i = 0; i < n; i++)
        CHECK_OK(ag_csv_write_record(w, f, ncols));
}

/* What party `side` (0 alice, the left; 1 bob) must write for the join of
 * a and b (malloc'd CSV text), computed the plain way. */
static char *expected_output(const struct keyed *a, const struct keyed *b, ag_psi_join j,
                             int side)
{
    size_t *ia = sorted_rows(a), *ib = sorted_rows(b);
    size_t na = a->t->nrows, nb = b->t->nrows;
    const struct tbl *mine = side == 0 ? a->t : b->t;
    /* ranges of matched groups and the unmatched rows of each side */
    size_t (*inter)[4] = malloc((na + 1) * sizeof(*inter));
    size_t *ua = malloc((na + 1) * sizeof(*ua)), *ub = malloc((nb + 1) * sizeof(*ub));
    size_t ni = 0, nua = 0, nub = 0, x = 0, y = 0;
    while (x < na || y < nb) {
        size_t xe = x, ye = y;
        while (xe < na && key_cmp(a, ia[xe], a, ia[x]) == 0)
            xe++;
        while (ye < nb && key_cmp(b, ib[ye], b, ib[y]) == 0)
            ye++;
        int c = x == na ? 1 : y == nb ? -1 : key_cmp(a, ia[x], b, ib[y]);
        if (c == 0) {
            inter[ni][0] = x, inter[ni][1] = xe, inter[ni][2] = y, inter[ni][3] = ye;
            ni++;
            x = xe;
            y = ye;
        } else if (c < 0) {
            for (; x < xe; x++)
                ua[nua++] = ia[x];
        } else {
            for (; y < ye; y++)
                ub[nub++] = ib[y];
        }
    }
    ag_buf out;
    ag_buf_init(&out, (size_t)1 << 30);
    ag_csv_writer *w = ag_csv_writer_new(NULL);
    CHECK_OK(ag_csv_writer_open_buf(w, &out));
    ag_slice h[MAX_COLS];
    for (size_t i = 0; i < mine->ncols; i++)
        h[i] = ag_slice_str(mine->names[i]);
    CHECK_OK(ag_csv_write_record(w, h, mine->ncols));
    bool left_rest = j == AG_PSI_LEFT || j == AG_PSI_FULL || j == AG_PSI_DIFFERENCE;
    bool right_rest = j == AG_PSI_RIGHT || j == AG_PSI_FULL || j == AG_PSI_DIFFERENCE;
    if (j != AG_PSI_DIFFERENCE)
        for (size_t g = 0; g < ni; g++) {
            size_t p = inter[g][1] - inter[g][0], q = inter[g][3] - inter[g][2];
            if (side == 0) {
                for (size_t r = inter[g][0]; r < inter[g][1]; r++)
                    for (size_t k = 0; k < q; k++)
                        write_row(w, a->t, ia[r]);
            } else {
                for (size_t k = 0; k < p; k++)
                    for (size_t r = inter[g][2]; r < inter[g][3]; r++)
                        write_row(w, b->t, ib[r]);
            }
        }
    if (side == 0) {
        if (left_rest)
            for (size_t i = 0; i < nua; i++)
                write_row(w, a->t, ua[i]);
        if (right_rest)
            write_nulls(w, mine->ncols, nub);
    } else {
        if (left_rest)
            write_nulls(w, mine->ncols, nua);
        if (right_rest)
            for (size_t i = 0; i < nub; i++)
                write_row(w, b->t, ub[i]);
    }
    CHECK_OK(ag_csv_writer_close(w));
    char *s = strndup(out.data ? (const char *)out.data : "", out.len);
    ag_buf_cleanup(&out);
    free(inter);
    free(ua);
    free(ub);
    free(ia);
    free(ib);
    return s;
}

/* ---- running two parties -------------------------------------------------------- */

struct party_run {
    ag_link *link;
    ag_psi_opts o;
    ag_psi_report rep;
    ag_errbuf err;
    int rc;
};

static void *party_main(void *arg)
{
    struct party_run *p = arg;
    p->rc = ag_psi_run(p->link, &p->o, &p->rep, &p->err);
    return NULL;
}

/* Runs both parties over links l[2] (freed here). */
static void run_links(ag_link **l, struct party_run *p)
{
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        p[i].link = l[i];
        CHECK_EQ(pthread_create(&th[i], NULL, party_main, &p[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        ag_link_free(l[i]);
}

static void run_pair(struct party_run *p)
{
    ag_link *l[2];
    CHECK_OK(ag_link_mem_group(2, party_names, l));
    run_links(l, p);
}

static char in_path[2][512], out_path[2][512];

/* Options for both parties: inputs from csv[], outputs to out_path[]. */
static void setup(struct party_run *p, const char *csv_a, const char *csv_b, const char *key)
{
    static const char *keys[1];
    keys[0] = key;
    const char *csv[2] = {csv_a, csv_b};
    for (int i = 0; i < 2; i++) {
        snprintf(in_path[i], sizeof(in_path[i]), "%s",
                 ag_test_write_file(i == 0 ? "alice.csv" : "bob.csv", csv[i], strlen(csv[i])));
        snprintf(out_path[i], sizeof(out_path[i]), "%s",
                 ag_test_path(i == 0 ? "alice-out.csv" : "bob-out.csv"));
        unlink(out_path[i]);
        memset(&p[i], 0, sizeof(p[i]));
        ag_psi_opts_init(&p[i].o);
        p[i].o.input = in_path[i];
        p[i].o.keys = keys;
        p[i].o.nkeys = 1;
        p[i].o.output = out_path[i];
        p[i].o.session = "test-session";
        p[i].o.tmpdir = ag_test_tmpdir();
        p[i].o.threads = 2;
    }
}

/* The file's contents (malloc'd), or NULL if it does not exist. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    ag_buf b;
    ag_buf_init(&b, (size_t)1 << 30);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        CHECK_OK(ag_buf_append(&b, tmp, n));
    fclose(f);
    char *s = strndup(b.data ? (const char *)b.data : "", b.len);
    ag_buf_cleanup(&b);
    return s;
}

static void check_ok(const struct party_run *p)
{
    for (int i = 0; i < 2; i++)
        if (p[i].rc != 0)
            FAIL("party %s: %s: %s", party_names[i], ag_err_name(p[i].rc), p[i].err.msg);
}

/* Nothing but the inputs and outputs in the test's directory: no
 * temporary output was left behind. */
static void check_no_temporaries(void)
{
    DIR *d = opendir(ag_test_tmpdir());
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp-"))
            FAIL("temporary file left: %s", e->d_name);
    closedir(d);
}

/* Runs the join on a and b with the given options and checks both
 * outputs against the plaintext join. */
static void check_join(const struct keyed *a, const struct keyed *b, ag_psi_join j,
                       const char *receiver, bool dups, uint64_t bucket_rows)
{
    char *csv_a = tbl_csv(a->t), *csv_b = tbl_csv(b->t);
    struct party_run p[2];
    setup(p, csv_a, csv_b, NULL);
    const char *ka[AG_PSI_MAX_KEYS], *kb[AG_PSI_MAX_KEYS];
    for (size_t k = 0; k < a->nk; k++) {
        ka[k] = a->t->names[a->kc[k]];
        kb[k] = b->t->names[b->kc[k]];
    }
    for (int i = 0; i < 2; i++) {
        p[i].o.keys = i == 0 ? ka : kb;
        p[i].o.nkeys = a->nk;
        p[i].o.join = j;
        p[i].o.receiver = receiver;
        p[i].o.allow_duplicates = dups;
        p[i].o.bucket_rows = bucket_rows;
    }
    run_pair(p);
    check_ok(p);
    for (int side = 0; side < 2; side++) {
        char *got = slurp(out_path[side]);
        bool recv = strcmp(receiver, "both") == 0 || strcmp(receiver, party_names[side]) == 0;
        CHECK_EQ(p[side].rep.receiver, recv);
        if (!recv) {
            if (got)
                FAIL("party %s is not a receiver but wrote %s", party_names[side],
                     out_path[side]);
            continue;
        }
        char *want = expected_output(a, b, j, side);
        if (!got || strcmp(got, want) != 0)
            FAIL("join %s, receiver %s, party %s: output differs from the plaintext join\n"
                 "--- got (%zu bytes):\n%.2000s\n--- want (%zu bytes):\n%.2000s",
                 ag_psi_join_name(j), receiver, party_names[side], got ? strlen(got) : 0,
                 got ? got : "(no file)", strlen(want), want);
        free(want);
        free(got);
    }
    CHECK_U64_EQ(p[0].rep.rows, a->t->nrows);
    CHECK_U64_EQ(p[0].rep.peer_rows, b->t->nrows);
    CHECK_U64_EQ(p[1].rep.rows, b->t->nrows);
    check_no_temporaries();
    free(csv_a);
    free(csv_b);
}

/* ---- random data with planted overlaps ------------------------------------------ */

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A random key of whole UTF-8 code points, some of which a CSV must quote. */
static void random_key(char *buf, size_t cap, bool fancy)
{
    static const char *const atoms[] = {"a", "b", "c", "x", "7", "0", "Z", "é", "日本", "ß",
                                        "€", "🙂", ",", "\"", " ", "\n", "\r\n", "'", "ü"};
    size_t n = 10 + rnd() % 8, at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = atoms[rnd() % (fancy ? AG_ARRAY_LEN(atoms) : 7)];
        size_t l = strlen(s);
        if (at + l + 1 >= cap)
            break;
        memcpy(buf + at, s, l);
        at += l;
    }
    buf[at] = '\0';
}

/* Two tables of n rows each (id, value, note) sharing about `shared` of
 * their keys; with dup_every > 0 every dup_every-th row repeats a key. */
static void make_tables(struct tbl *a, struct tbl *b, size_t n, double shared, bool fancy,
                        size_t dup_every)
{
    static const char *const na[] = {"id", "income", "note"};
    static const char *const nb[] = {"phone", "id", "spend"};
    tbl_init(a, 3, na);
    tbl_init(b, 3, nb);
    char key[128], v[32], w[32];
    char **pool = malloc((n + 1) * sizeof(*pool));
    for (size_t i = 0; i < n; i++) {
        random_key(key, sizeof(key), fancy);
        snprintf(key + strlen(key), sizeof(key) - strlen(key), "#%zu", i); /* distinct */
        pool[i] = strdup(key);
        snprintf(v, sizeof(v), "%llu", (unsigned long long)(rnd() % 100000));
        const char *ra[] = {pool[i], v, i % 3 ? "plain" : "with, comma"};
        if (dup_every && i && i % dup_every == 0)
            ra[0] = pool[rnd() % i];
        tbl_add(a, ra);
    }
    /* bob's shared keys: alice's, each at most once, in a shuffled order */
    size_t *perm = malloc((n + 1) * sizeof(*perm)), used = 0;
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = rnd() % i, t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k;
        if ((double)(rnd() % 10000) < shared * 10000) {
            k = pool[perm[used++]];
        } else {
            random_key(key, sizeof(key), fancy);
            snprintf(key + strlen(key), sizeof(key) - strlen(key), "@%zu", i);
            k = key;
        }
        snprintf(v, sizeof(v), "555-%04zu", i);
        snprintf(w, sizeof(w), "%zu.%02zu", i % 977, i % 100);
        const char *rb[] = {v, k, w};
        tbl_add(b, rb);
        if (dup_every && i % dup_every == 1)
            tbl_add(b, rb); /* the same key again, another row */
    }
    for (size_t i = 0; i < n; i++)
        free(pool[i]);
    free(pool);
    free(perm);
}

static const size_t key_a[] = {0}, key_b[] = {1};

static void check_sizes(size_t n, double shared)
{
    struct tbl a, b;
    make_tables(&a, &b, n, shared, true, 0);
    struct keyed ka = {&a, key_a, 1}, kb = {&b, key_b, 1};
    check_join(&ka, &kb, AG_PSI_INNER, "both", false, 0);
    tbl_free(&a);
    tbl_free(&b);
}

/* ---- the joins against plaintext ------------------------------------------------ */

TEST(psi_inner_sizes_0_1_1000_match_plaintext)
{
    check_sizes(0, 0.5);
    check_sizes(1, 1.0);
    check_sizes(1, 0.0);
    check_sizes(1000, 0.3);
}

TEST_TIMEOUT(psi_inner_100000_matches_plaintext, 170)
{
    struct tbl a, b;
    /* under ASan a quarter of the rows: the same paths (one bucket, many
     * thread-pool chunks) at a quarter of its 45 s */
#if defined(__SANITIZE_ADDRESS__)
    make_tables(&a, &b, 25000, 0.25, false, 0);
#else
    make_tables(&a, &b, 100000, 0.25, false, 0);
#endif
    struct keyed ka = {&a, key_a, 1}, kb = {&b, key_b, 1};
    check_join(&ka, &kb, AG_PSI_INNER, "bob", false, 0);
    tbl_free(&a);
    tbl_free(&b);
}

TEST(psi_empty_disjoint_and_equal_inputs)
{
    struct tbl a, b;
    make_tables(&a, &b, 200, 0.0, true, 0);
    struct keyed ka = {&a, key_a, 1}, kb = {&b, key_b, 1};
    check_join(&ka, &kb, AG_PSI_FULL, "both", false, 0); /* all disjoint */
    tbl_free(&b);
    /* all equal: bob holds alice's keys, in another order */
    static const char *const nb[] = {"phone", "id", "spend"};
    tbl_init(&b, 3, nb);
    for (size_t i = a.nrows; i-- > 0;) {
        const char *r[] = {"p", cell(&a, i, 0), "1"};
        tbl_add(&b, r);
    }
    check_join(&ka, &kb, AG_PSI_INNER, "both", false, 0);
    check_join(&ka, &kb, AG_PSI_DIFFERENCE, "both", false, 0);
    /* one side empty */
    struct tbl e;
    tbl_init(&e, 3, nb);
    struct keyed ke = {&e, key_b, 1};
    check_join(&ka, &ke, AG_PSI_LEFT, "both", false, 0);
    check_join(&ke, &kb, AG_PSI_FULL, "both", false, 0);
    tbl_free(&a);
    tbl_free(&b);
    tbl_free(&e);
}

TEST(psi_every_join_and_receiver)
{
    static const char *const receivers[] = {"alice", "bob", "both"};
    struct tbl a, b;
    make_tables(&a, &b, 300, 0.4, true, 0);
    struct keyed ka = {&a, key_a, 1}, kb = {&b, key_b, 1};
    for (int j = AG_PSI_INNER; j <= AG_PSI_DIFFERENCE; j++)
        for (size_t r = 0; r < AG_ARRAY_LEN(receivers); r++)
            check_join(&ka, &kb, (ag_psi_join)j, receivers[r], false, 0);
    tbl_free(&a);
    tbl_free(&b);
}

TEST(psi_duplicates_allowed_join_like_sql)
{
    static const char *const receivers[] = {"alice", "bob", "both"};
    struct tbl a, b;
    make_tables(&a, &b, 300, 0.5, true, 7);
    struct keyed ka = {&a, key_a, 1}, kb = {&b, key_b, 1};
    for (int j = AG_PSI_INNER; j <= AG_PSI_DIFFERENCE; j++)
        check_join(&ka, &kb, (ag_psi_join)j, receivers[j % 3], true, 0);
    tbl_free(&a);
    tbl_free(&b);
}

TEST(psi_small_buckets_give_the_same_output)
{
    struct tbl a, b;
    make_tables(&a, &b, 1000, 0.3, true, 9);
    struct keyed ka = {&a, key_a, 1}, kb = {&b, key_b, 1};
    /* 64 rows a bucket: 17 buckets; the outputs are the plaintext join's
     * (sorted by key), as with one bucket */
    check_join(&ka, &kb, AG_PSI_FULL, "both", true, 64);
    check_join(&ka, &kb, AG_PSI_FULL, "both", true, 0);
    check_join(&ka, &kb, AG_PSI_INNER, "alice", true, 1);
    tbl_free(&a);
    tbl_free(&b);
}

TEST(psi_unicode_and_quoted_keys)
{
    static const char *const names[] = {"clé", "v"};
    static const char *const keys[][2] = {
        {"日本語", "1"}, {"a,b", "2"}, {"say \"hi\"", "3"}, {"two\nlines", "4"},
        {"crlf\r\nin", "5"}, {"", "6"}, {" padded ", "7"}, {"é", "8"}, {"e\xcc\x81", "9"},
        {"🙂", "10"}};
    struct tbl a, b;
    tbl_init(&a, 2, names);
    tbl_init(&b, 2, names);
    for (size_t i = 0; i < AG_ARRAY_LEN(keys); i++) {
        tbl_add(&a, keys[i]);
        if ((i % 2 == 0 && i != 8) || i == 7) /* "é" matches; "e"+U+0301 does not */
            tbl_add(&b, keys[i]);
    }
    const char *extra[] = {"padded", "x"}; /* keys are not trimmed */
    tbl_add(&b, extra);
    size_t k0[] = {0};
    struct keyed ka = {&a, k0, 1}, kb = {&b, k0, 1};
    check_join(&ka, &kb, AG_PSI_FULL, "both", false, 0);
    /* the matched keys, exactly */
    char *got = slurp(out_path[0]);
    CHECK_CONTAINS(got, "日本語,1\n");
    CHECK_CONTAINS(got, "\"say \"\"hi\"\"\",3\n");
    CHECK_CONTAINS(got, "\"crlf\r\nin\",5\n");
    free(got);
    tbl_free(&a);
    tbl_free(&b);
}

TEST(psi_multi_column_keys_are_unambiguous)
{
    static const char *const na[] = {"first", "last", "v"};
    static const char *const nb[] = {"w", "surname", "given"};
    static const char *const rows_a[][3] = {
        {"a,b", "c", "1"}, {"a", "b,c", "2"}, {"ab", "", "3"}, {"a", "b", "4"},
        {"x", "y", "5"},   {"", "xy", "6"},  {"x y", "", "7"}};
    static const char *const rows_b[][3] = {
        {"m1", "b,c", "a"}, {"m2", "b", "a"}, {"m3", "", "xy"}, {"m4", "y", "x"},
        {"m5", "c", "a,b"}, {"m6", "x", "y"}};
    struct tbl a, b;
    tbl_init(&a, 3, na);
    tbl_init(&b, 3, nb);
    for (size_t i = 0; i < AG_ARRAY_LEN(rows_a); i++)
        tbl_add(&a, rows_a[i]);
    for (size_t i = 0; i < AG_ARRAY_LEN(rows_b); i++)
        tbl_add(&b, rows_b[i]);
    size_t kca[] = {0, 1}, kcb[] = {2, 1}; /* (first, last) = (given, surname) */
    struct keyed ka = {&a, kca, 2}, kb = {&b, kcb, 2};
    check_join(&ka, &kb, AG_PSI_INNER, "both", false, 0);
    char *got = slurp(out_path[0]);
    CHECK_STR_EQ(got, "first,last,v\n"
                      "a,b,4\n"
                      "a,\"b,c\",2\n"
                      "\"a,b\",c,1\n"
                      "x,y,5\n");
    free(got);
    check_join(&ka, &kb, AG_PSI_FULL, "both", false, 3);
    tbl_free(&a);
    tbl_free(&b);
}

/* ---- duplicates ------------------------------------------------------------------ */

TEST(psi_duplicates_refused_with_line_numbers)
{
    struct party_run p[2];
    setup(p,
          "id,v\n"
          "x,1\n"
          "y,2\n"
          "\"multi\nline\",3\n"
          "z,4\n"
          "x,5\n"
          "y,6\n",
          "id,w\nx,1\nq,2\n", "id");
    run_pair(p);
    CHECK_EQ(p[0].rc, AG_E_PSI_DUPLICATE);
    /* the earliest repeated row: line 7 (the quoted newline counts) */
    char want[1024];
    snprintf(want, sizeof(want), "%s:7: duplicate key \"x\" (first at line 2); 2 rows repeat "
             "a key (--allow-duplicates keeps them)", in_path[0]);
    CHECK_STR_EQ(p[0].err.msg, want);
    CHECK_EQ(p[1].rc, AG_E_LINK_ABORTED);
    CHECK_STR_EQ(p[1].err.msg, "party alice failed: duplicate keys in its input "
                               "(--allow-duplicates keeps them)");
    CHECK(access(out_path[0], F_OK) != 0);
    CHECK(access(out_path[1], F_OK) != 0);
    check_no_temporaries();

    /* with several buckets, still the earliest line of the whole file */
    setup(p, "id,v\na,1\nb,2\nc,3\nd,4\ne,5\nf,6\nd,7\nb,8\n", "id,w\nx,1\n", "id");
    p[0].o.bucket_rows = 2;
    p[1].o.bucket_rows = 2;
    run_pair(p);
    CHECK_EQ(p[0].rc, AG_E_PSI_DUPLICATE);
    CHECK_CONTAINS(p[0].err.msg, ":8: duplicate key \"d\" (first at line 5); 2 rows");
}

/* ---- what crosses the link ---------------------------------------------------- */

/* A link endpoint wrapping another: records what it sends, and can abort
 * the job at its k-th send, or swallow every send from the k-th on. */
struct tap {
    ag_link base;
    ag_link *inner;
    ag_buf sent;
    int sends;
    int abort_at;   /* > 0: abort instead of this send */
    int silent_at;  /* > 0: drop this send and every later one */
};

static int tap_send(ag_link *l, unsigned peer, uint64_t tag, void *data, size_t len)
{
    struct tap *t = (struct tap *)l;
    t->sends++;
    if (t->abort_at && t->sends == t->abort_at) {
        ag_free(data);
        ag_link_abort(l, "killed by the test");
        return ag_errbuf_set(&l->err, AG_E_LINK_ABORTED, "aborted by the test");
    }
    if (t->silent_at && t->sends >= t->silent_at) {
        ag_free(data);
        return 0;
    }
    if (ag_buf_append(&t->sent, data, len) < 0) {
        ag_free(data);
        return AG_E_NOMEM;
    }
    return ag_link_send_take(t->inner, peer, tag, data, len);
}

static int tap_recv(ag_link *l, unsigned peer, uint64_t tag, void **data, size_t *len,
                    ag_deadline deadline)
{
    (void)deadline;
    struct tap *t = (struct tap *)l;
    ag_link_set_timeout_ms(t->inner, l->timeout_ms);
    int rc = ag_link_recv(t->inner, peer, tag, data, len);
    if (rc < 0)
        return ag_errbuf_set(&l->err, rc, "%s", ag_link_errmsg(t->inner));
    return 0;
}

static void tap_abort(ag_link *l, const char *msg)
{
    struct tap *t = (struct tap *)l;
    t->inner->ops->abort(t->inner, msg);
}

static void tap_destroy(ag_link *l)
{
    struct tap *t = (struct tap *)l;
    ag_link_free(t->inner);
    ag_buf_cleanup(&t->sent);
    ag__link_cleanup(l);
    ag_free(t);
}

static const struct ag_link_ops tap_ops = {tap_send, tap_recv, tap_abort, tap_destroy};

static struct tap *tap_new(ag_link *inner)
{
    struct tap *t = ag_calloc(1, sizeof(*t));
    CHECK(t != NULL);
    CHECK_OK(ag__link_init(&t->base, &tap_ops, ag_link_rank(inner), 2, party_names));
    t->inner = inner;
    ag_buf_init(&t->sent, (size_t)1 << 30);
    return t;
}

static bool contains(const ag_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || b->len < n)
        return false;
    return memmem(b->data, b->len, s, n) != NULL;
}

TEST(psi_traffic_holds_no_raw_keys)
{
    struct tbl a, b;
    make_tables(&a, &b, 500, 0.5, false, 0);
    char *csv_a = tbl_csv(&a), *csv_b = tbl_csv(&b);
    struct party_run p[2];
    setup(p, csv_a, csv_b, "id");
    for (int i = 0; i < 2; i++)
        p[i].o.allow_duplicates = true; /* counts travel too */
    ag_link *l[2];
    CHECK_OK(ag_link_mem_group(2, party_names, l));
    struct tap *t[2] = {tap_new(l[0]), tap_new(l[1])};
    /* keep the taps' records past run_links, which frees the endpoints */
    ag_buf sent[2];
    ag_link *tl[2] = {&t[0]->base, &t[1]->base};
    for (int i = 0; i < 2; i++)
        p[i].link = tl[i];
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, party_main, &p[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    check_ok(p);
    for (int i = 0; i < 2; i++) {
        sent[i] = t[i]->sent;
        CHECK(sent[i].len > 500 * 32);
        CHECK_U64_EQ(sent[i].len, p[i].rep.bytes_sent);
    }
    /* neither party's bytes hold any of its keys or other fields, nor the
     * peer's (which it never sees) */
    for (size_t r = 0; r < a.nrows; r++)
        for (int i = 0; i < 2; i++) {
            if (contains(&sent[i], cell(&a, r, 0)))
                FAIL("party %s sent alice's key %s", party_names[i], cell(&a, r, 0));
            if (contains(&sent[i], cell(&b, r, 1)))
                FAIL("party %s sent bob's key %s", party_names[i], cell(&b, r, 1));
            if (contains(&sent[i], cell(&b, r, 0)))
                FAIL("party %s sent bob's phone %s", party_names[i], cell(&b, r, 0));
        }
    CHECK(!contains(&sent[0], "test-session"));
    for (int i = 0; i < 2; i++)
        ag_link_free(tl[i]);
    free(csv_a);
    free(csv_b);
    tbl_free(&a);
    tbl_free(&b);
}

/* ---- failures at the peer ------------------------------------------------------ */

/* Runs a 3-bucket job in which bob's tap aborts at send k (or goes silent
 * from send k, when silent). */
static void run_with_faulty_bob(struct party_run *p, int k, bool silent)
{
    struct tbl a, b;
    make_tables(&a, &b, 90, 0.5, false, 0);
    char *csv_a = tbl_csv(&a), *csv_b = tbl_csv(&b);
    setup(p, csv_a, csv_b, "id");
    for (int i = 0; i < 2; i++) {
        p[i].o.bucket_rows = 32;
        p[i].o.join = AG_PSI_FULL;
    }
    ag_link *l[2];
    CHECK_OK(ag_link_mem_group(2, party_names, l));
    struct tap *t = tap_new(l[1]);
    if (silent)
        t->silent_at = k;
    else
        t->abort_at = k;
    ag_link *tl[2] = {l[0], &t->base};
    if (silent) { /* alice gives up first; bob then learns of it from her */
        ag_link_set_timeout_ms(tl[0], 300);
        ag_link_set_timeout_ms(tl[1], 10000);
    }
    run_links(tl, p);
    free(csv_a);
    free(csv_b);
    tbl_free(&a);
    tbl_free(&b);
}

TEST(psi_peer_abort_mid_run_leaves_no_output)
{
    struct party_run p[2];
    /* bob's sends: hello, then per bucket points and echo, then fin;
     * abort at bucket 1's points, and at the fin, after alice has written
     * her output under its temporary name */
    const int at[] = {4, 8};
    for (size_t i = 0; i < AG_ARRAY_LEN(at); i++) {
        run_with_faulty_bob(p, at[i], false);
        CHECK_EQ(p[0].rc, AG_E_LINK_ABORTED);
        CHECK_STR_EQ(p[0].err.msg, "party bob failed: killed by the test");
        CHECK_EQ(p[1].rc, AG_E_LINK_ABORTED);
        CHECK(access(out_path[0], F_OK) != 0);
        CHECK(access(out_path[1], F_OK) != 0);
        check_no_temporaries();
    }
    /* sanity: without the fault the same job succeeds (send 9 never comes) */
    run_with_faulty_bob(p, 9, false);
    check_ok(p);
    CHECK(access(out_path[0], F_OK) == 0);
}

TEST(psi_silent_peer_times_out_naming_it)
{
    struct party_run p[2];
    run_with_faulty_bob(p, 3, true);
    CHECK_EQ(p[0].rc, AG_E_LINK_TIMEOUT);
    CHECK_CONTAINS(p[0].err.msg, "party alice: no message from party bob within 300 ms");
    CHECK_EQ(p[1].rc, AG_E_LINK_ABORTED);
    CHECK_CONTAINS(p[1].err.msg, "party alice failed: party alice: no message from party bob");
    CHECK(access(out_path[0], F_OK) != 0);
    check_no_temporaries();
}

TEST(psi_parameter_mismatch_named_at_both)
{
    struct party_run p[2];
    setup(p, "id\na\n", "id\na\n", "id");
    p[1].o.join = AG_PSI_LEFT;
    run_pair(p);
    CHECK_EQ(p[0].rc, AG_E_PSI_MISMATCH);
    CHECK_STR_EQ(p[0].err.msg, "party alice asks for join inner, party bob for left");
    CHECK_EQ(p[1].rc, AG_E_PSI_MISMATCH);
    CHECK_STR_EQ(p[1].err.msg, "party bob asks for join left, party alice for inner");

    setup(p, "id\na\n", "id\na\n", "id");
    p[0].o.receiver = "alice";
    p[1].o.receiver = "both";
    run_pair(p);
    CHECK_STR_EQ(p[0].err.msg, "party alice has receiver alice, party bob has receiver both");

    setup(p, "id\na\n", "id\na\n", "id");
    p[1].o.session = "another";
    run_pair(p);
    CHECK_STR_EQ(p[0].err.msg, "party alice and party bob were given different session ids");
    CHECK(access(out_path[0], F_OK) != 0);
}

TEST(psi_input_errors_name_file_and_line)
{
    struct party_run p[2];
    setup(p, "id,v\na,1\nb\n", "id\na\n", "id");
    run_pair(p);
    CHECK_EQ(p[0].rc, AG_E_CSV_FIELDS);
    CHECK_CONTAINS(p[0].err.msg, "alice.csv:3:");
    CHECK_EQ(p[1].rc, AG_E_LINK_ABORTED);
    CHECK_STR_EQ(p[1].err.msg, "party alice failed: cannot use its input: CSV row has the "
                               "wrong number of fields");

    setup(p, "id\na\n", "key\na\n", "id");
    run_pair(p);
    CHECK_EQ(p[1].rc, AG_E_CSV_COLUMN);
    CHECK_CONTAINS(p[1].err.msg, "no column 'id'");

    setup(p, "id\na\n", "id\n\xff\n", "id");
    run_pair(p);
    CHECK_EQ(p[1].rc, AG_E_CSV_UTF8);

    setup(p, "id\na\n", "id\na\n", "id");
    p[0].o.protocol = "ecdhh";
    p[1].o.receiver = "carol";
    run_pair(p);
    CHECK_EQ(p[0].rc, AG_E_INVAL);
    CHECK_STR_EQ(p[0].err.msg, "unknown PSI protocol 'ecdhh' (did you mean 'ecdh'?)");
    CHECK_EQ(p[1].rc, AG_E_INVAL);
    CHECK_STR_EQ(p[1].err.msg, "--receiver carol: no such party (alice, bob or both)");
}

TEST(psi_report_counts_and_progress)
{
    struct party_run p[2];
    setup(p, "id,v\na,1\nb,2\nc,3\nd,4\n", "id\nb\nd\ne\n", "id");
    for (int i = 0; i < 2; i++) {
        p[i].o.join = AG_PSI_FULL;
        p[i].o.bucket_rows = 2;
    }
    run_pair(p);
    check_ok(p);
    CHECK_U64_EQ(p[0].rep.rows, 4);
    CHECK_U64_EQ(p[0].rep.peer_rows, 3);
    CHECK_U64_EQ(p[0].rep.buckets, 2);
    CHECK_U64_EQ(p[0].rep.intersection, 2);
    CHECK_U64_EQ(p[0].rep.matched_rows, 2);
    CHECK_U64_EQ(p[0].rep.rows_written, 5); /* b, d; a, c; null for e */
    CHECK_U64_EQ(p[1].rep.rows_written, 5);
    CHECK(p[0].rep.bytes_sent > 0 && p[0].rep.bytes_sent == p[1].rep.bytes_recv);
    char *got = slurp(out_path[1]);
    CHECK_STR_EQ(got, "id\nb\nd\nNULL\nNULL\ne\n");
    free(got);
}

static uint64_t progress_done, progress_total, progress_calls;

static void on_progress(void *ud, const ag_psi_progress *pr)
{
    (void)ud;
    progress_calls++;
    CHECK(pr->rows_done <= pr->rows_total);
    progress_done = pr->rows_done;
    progress_total = pr->rows_total;
}

TEST(psi_progress_reaches_the_total)
{
    struct party_run p[2];
    setup(p, "id\na\nb\nc\n", "id\nb\n", "id");
    p[0].o.progress_fn = on_progress;
    run_pair(p);
    check_ok(p);
    CHECK(progress_calls >= 1);
    CHECK_U64_EQ(progress_done, 3);
    CHECK_U64_EQ(progress_total, 3);

    char line[256];
    ag_psi_progress pr = {524288, 1048576, 1, 2, 55.0};
    ag_psi_progress_line(&pr, line, sizeof(line));
    CHECK_STR_EQ(line, "psi: rows 524288/1048576 (50.0%), 9.5k rows/s, ETA 55 s, bucket 1/2");
    pr = (ag_psi_progress){1048576, 1048576, 2, 2, 90.25};
    ag_psi_progress_line(&pr, line, sizeof(line));
    CHECK_STR_EQ(line, "psi: rows 1048576/1048576 (100.0%), 11.6k rows/s, done in 90.2 s, "
                       "bucket 2/2");
    pr = (ag_psi_progress){10, 100000000, 0, 96, 1.0};
    ag_psi_progress_line(&pr, line, sizeof(line));
    CHECK_STR_EQ(line, "psi: rows 10/100000000 (0.0%), 10 rows/s, ETA 2777h46m, bucket 0/96");
}

TEST_FM(psi_failmalloc)
{
    ag_link *l[2] = {NULL, NULL};
    struct party_run p[2];
    setup(p, "id,v\na,1\nb,2\nb,3\nc,4\n", "k,id\n1,b\n2,c\n3,c\n4,z\n", "id");
    for (int i = 0; i < 2; i++) {
        p[i].o.allow_duplicates = true;
        p[i].o.join = AG_PSI_FULL;
        p[i].o.bucket_rows = 3;
    }
    FM_TRY(ag_link_mem_group(2, party_names, l), 0);
    run_links(l, p);
    l[0] = l[1] = NULL;
    for (int i = 0; i < 2; i++) {
        if (p[i].rc == 0)
            continue;
        if (!ag_alloc_failed())
            FAIL("party %s failed: %s", party_names[i], p[i].err.msg);
        /* a failed party leaves no output */
        CHECK(access(out_path[i], F_OK) != 0);
    }
    check_no_temporaries();
out:
    ag_link_free(l[0]);
    ag_link_free(l[1]);
}

/* ---- the pieces ------------------------------------------------------------------ */

TEST(psi_join_and_receiver_names)
{
    CHECK_EQ(ag_psi_join_parse("inner"), AG_PSI_INNER);
    CHECK_EQ(ag_psi_join_parse("difference"), AG_PSI_DIFFERENCE);
    CHECK_EQ(ag_psi_join_parse("outer"), -1);
    CHECK_EQ(ag_psi_join_parse(NULL), -1);
    CHECK_STR_EQ(ag_psi_join_name(AG_PSI_RIGHT), "right");
    ag_link *l[2];
    CHECK_OK(ag_link_mem_group(2, party_names, l));
    unsigned m;
    ag_errbuf e;
    CHECK_OK(ag_psi_receiver_parse(l[1], "alice", &m, &e));
    CHECK_EQ(m, AG_PSI_RECV_RANK0);
    CHECK_OK(ag_psi_receiver_parse(l[1], "bob", &m, &e));
    CHECK_EQ(m, AG_PSI_RECV_RANK1);
    CHECK_OK(ag_psi_receiver_parse(l[0], NULL, &m, &e));
    CHECK_EQ(m, AG_PSI_RECV_BOTH);
    CHECK_EQ(ag_psi_receiver_parse(l[0], "Bob", &m, &e), AG_E_INVAL);
    ag_link_free(l[0]);
    ag_link_free(l[1]);
}

TEST(psi_hello_round_trip_and_rejects)
{
    struct psi_hello h = {PSI_VERSION, "ecdh", AG_PSI_LEFT, AG_PSI_RECV_RANK1, 1, 2, 1024, 77,
                          {0}, 2};
    memset(h.session, 0xab, sizeof(h.session));
    uint8_t m[PSI_HELLO_SIZE];
    ag__psi_hello_encode(&h, m);
    struct psi_hello g;
    char why[200];
    CHECK_OK(ag__psi_hello_decode(m, sizeof(m), &g, why, sizeof(why)));
    CHECK_STR_EQ(g.protocol, "ecdh");
    CHECK_EQ(g.join, AG_PSI_LEFT);
    CHECK_EQ(g.receivers, AG_PSI_RECV_RANK1);
    CHECK_EQ(g.nkeys, 2);
    CHECK_U64_EQ(g.bucket_rows, 1024);
    CHECK_U64_EQ(g.rows, 77);
    CHECK_EQ(g.workers, 2);
    CHECK_OK(ag__psi_hello_compare(&h, &g, "alice", "bob", true, why, sizeof(why)));
    CHECK_EQ(ag__psi_hello_decode(m, sizeof(m) - 1, &g, why, sizeof(why)), AG_E_PSI_PROTOCOL);
    CHECK_STR_EQ(why, "a hello of 102 bytes (expected 103)");
    uint8_t bad[PSI_HELLO_SIZE];
    memcpy(bad, m, sizeof(m));
    bad[0] = 'X';
    CHECK_EQ(ag__psi_hello_decode(bad, sizeof(bad), &g, why, sizeof(why)), AG_E_PSI_PROTOCOL);
    memcpy(bad, m, sizeof(m));
    bad[12] = 40; /* name length */
    CHECK_EQ(ag__psi_hello_decode(bad, sizeof(bad), &g, why, sizeof(why)), AG_E_PSI_PROTOCOL);
    memcpy(bad, m, sizeof(m));
    bad[13 + 6] = 'x'; /* a byte after the name */
    CHECK_EQ(ag__psi_hello_decode(bad, sizeof(bad), &g, why, sizeof(why)), AG_E_PSI_PROTOCOL);
    memcpy(bad, m, sizeof(m));
    bad[13 + PSI_PROTO_NAME_MAX] = 9; /* join */
    CHECK_EQ(ag__psi_hello_decode(bad, sizeof(bad), &g, why, sizeof(why)), AG_E_PSI_PROTOCOL);
    CHECK_STR_EQ(why, "an unknown join type 9");
    g = h;
    g.bucket_rows = 64;
    CHECK_EQ(ag__psi_hello_compare(&h, &g, "bob", "alice", false, why, sizeof(why)),
             AG_E_PSI_MISMATCH);
    CHECK_STR_EQ(why, "party bob uses buckets of 1024 rows, party alice of 64");
    g = h;
    g.workers = 0;
    CHECK_EQ(ag__psi_hello_compare(&h, &g, "alice", "bob", true, why, sizeof(why)),
             AG_E_PSI_MISMATCH);
    CHECK_CONTAINS(why, "party alice runs 2 workers, party bob 0");
    memcpy(bad, m, sizeof(m));
    psi_put_u32(bad + PSI_HELLO_SIZE - 4, PSI_MAX_WORKERS + 1);
    CHECK_EQ(ag__psi_hello_decode(bad, sizeof(bad), &g, why, sizeof(why)), AG_E_PSI_PROTOCOL);
    CHECK_STR_EQ(why, "65 workers (at most 64)");
}

TEST(psi_workers_addresses_decode_rejects)
{
    uint8_t m[2 * PSI_ADDR_SIZE] = {0};
    memcpy(m, "127.0.0.1:9100", 14);
    memcpy(m + PSI_ADDR_SIZE, "10.0.0.2:1", 10);
    char addrs[2][PSI_ADDR_SIZE], why[200];
    CHECK_OK(ag__psi_addrs_decode(m, sizeof(m), 2, addrs, why, sizeof(why)));
    CHECK_STR_EQ(addrs[0], "127.0.0.1:9100");
    CHECK_STR_EQ(addrs[1], "10.0.0.2:1");
    CHECK_EQ(ag__psi_addrs_decode(m, sizeof(m) - 1, 2, addrs, why, sizeof(why)),
             AG_E_PSI_PROTOCOL);
    CHECK_STR_EQ(why, "a workers message of 511 bytes for 2 workers");
    static const char *const bad[] = {"nocolon", ":9100", "host:", "a b:1"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        uint8_t b[PSI_ADDR_SIZE] = {0};
        memcpy(b, bad[i], strlen(bad[i]));
        CHECK_EQ(ag__psi_addrs_decode(b, sizeof(b), 1, addrs, why, sizeof(why)),
                 AG_E_PSI_PROTOCOL);
        CHECK_STR_EQ(why, "worker 0's address is not host:port");
    }
    uint8_t junk[PSI_ADDR_SIZE] = {0};
    memcpy(junk, "h:1", 3);
    junk[10] = 'x'; /* a byte after the terminating NUL */
    CHECK_EQ(ag__psi_addrs_decode(junk, sizeof(junk), 1, addrs, why, sizeof(why)),
             AG_E_PSI_PROTOCOL);
}

TEST(psi_points_decode_rejects)
{
    uint8_t m[8 + 2 * 36];
    memset(m, 7, sizeof(m));
    psi_put_u64(m, 2);
    uint64_t k;
    const uint8_t *pts, *cnt;
    char why[200];
    CHECK_OK(ag__psi_points_decode(m, sizeof(m), true, 2, &k, &pts, &cnt, why, sizeof(why)));
    CHECK_U64_EQ(k, 2);
    CHECK(pts == m + 8 && cnt == m + 8 + 64);
    CHECK_EQ(ag__psi_points_decode(m, sizeof(m), true, 1, &k, &pts, &cnt, why, sizeof(why)),
             AG_E_PSI_PROTOCOL);
    CHECK_STR_EQ(why, "2 points in a bucket, more than its 1 rows");
    CHECK_EQ(ag__psi_points_decode(m, sizeof(m), false, 9, &k, &pts, &cnt, why, sizeof(why)),
             AG_E_PSI_PROTOCOL);
    CHECK_EQ(ag__psi_points_decode(m, 5, false, 9, &k, &pts, &cnt, why, sizeof(why)),
             AG_E_PSI_PROTOCOL);
    psi_put_u32(m + 8 + 64 + 4, 0);
    CHECK_EQ(ag__psi_points_decode(m, sizeof(m), true, 2, &k, &pts, &cnt, why, sizeof(why)),
             AG_E_PSI_PROTOCOL);
    CHECK_STR_EQ(why, "a row count of 0 for point 1");
    psi_put_u64(m, UINT64_MAX / 8);
    CHECK_EQ(ag__psi_points_decode(m, sizeof(m), false, UINT64_MAX, &k, &pts, &cnt, why,
                                   sizeof(why)),
             AG_E_PSI_PROTOCOL);
}

TEST(psi_key_order_and_format)
{
    uint8_t a[64], b[64];
    /* ("ab") < ("abc"); ("a", "z") < ("ab", "") */
    psi_put_u32(a, 2);
    memcpy(a + 4, "ab", 2);
    psi_put_u32(b, 3);
    memcpy(b + 4, "abc", 3);
    CHECK(ag__psi_key_cmp(ag_slice_make(a, 6), ag_slice_make(b, 7)) < 0);
    CHECK(ag__psi_key_cmp(ag_slice_make(b, 7), ag_slice_make(a, 6)) > 0);
    CHECK_EQ(ag__psi_key_cmp(ag_slice_make(a, 6), ag_slice_make(a, 6)), 0);
    psi_put_u32(a, 1);
    memcpy(a + 4, "a", 1);
    psi_put_u32(a + 5, 1);
    memcpy(a + 9, "z", 1);
    psi_put_u32(b, 2);
    memcpy(b + 4, "ab", 2);
    psi_put_u32(b + 6, 0);
    CHECK(ag__psi_key_cmp(ag_slice_make(a, 10), ag_slice_make(b, 10)) < 0);
    char buf[200];
    ag__psi_key_format(ag_slice_make(a, 10), buf, sizeof(buf));
    CHECK_STR_EQ(buf, "(\"a\", \"z\")");
    uint8_t c[80];
    psi_put_u32(c, 6);
    memcpy(c + 4, "q\"\n\x01\\x", 6);
    ag__psi_key_format(ag_slice_make(c, 10), buf, sizeof(buf));
    CHECK_STR_EQ(buf, "\"q\\\"\\n\\x01\\\\x\"");
    psi_put_u32(c, 70);
    memset(c + 4, 'k', 70);
    ag__psi_key_format(ag_slice_make(c, 74), buf, sizeof(buf));
    CHECK_EQ(strlen(buf), 48 + 2 + 3);
}

TEST(psi_curve_matches_libsodium)
{
    CHECK_OK(ag__psi_curve_init());
    uint8_t s[32], t[32];
    ag__psi_scalar_random(s);
    ag__psi_scalar_random(t);
    psi_prefix pre;
    ag__psi_prefix_init(&pre, (const uint8_t *)"sess", 4);
    ag_slice keys[3] = {ag_slice_str("a"), ag_slice_str("b"), ag_slice_str("")};
    uint8_t hs[3 * 32], ht[3 * 32], hst[3 * 32], hts[3 * 32];
    ag__psi_hash_mul(&pre, keys, 3, s, hs);
    ag__psi_hash_mul(&pre, keys, 3, t, ht);
    CHECK_EQ(ag__psi_mul(hs, 3, t, hst), -1);
    CHECK_EQ(ag__psi_mul(ht, 3, s, hts), -1);
    CHECK_MEM_EQ(hst, hts, sizeof(hst)); /* (H^s)^t == (H^t)^s */
    CHECK(memcmp(hst, hst + 32, 32) != 0);
    /* the reference: BLAKE2b-512("argot-psi-v1" || u32 4 || "sess" || key) */
    uint8_t h[64], pt[32], want[32];
    uint8_t in[12 + 4 + 4 + 1];
    memcpy(in, "argot-psi-v1", 12);
    psi_put_u32(in + 12, 4);
    memcpy(in + 16, "sess", 4);
    in[20] = 'b';
    crypto_generichash(h, 64, in, sizeof(in), NULL, 0);
    crypto_core_ristretto255_from_hash(pt, h);
    CHECK_EQ(crypto_scalarmult_ristretto255(want, s, pt), 0);
    CHECK_MEM_EQ(hs + 32, want, 32);
    /* invalid encodings are refused, with their index */
    uint8_t bad[2 * 32];
    memcpy(bad, hs, 32);
    memset(bad + 32, 0xff, 32);
    CHECK_EQ(ag__psi_mul(bad, 2, s, hst), 1);
    memset(bad, 0, 32); /* the identity */
    CHECK_EQ(ag__psi_mul(bad, 1, s, hst), 0);
}

/* The AVX-512 IFMA backend gives libsodium's bytes, valid or not. */
TEST(psi_ifma_matches_libsodium)
{
    CHECK_OK(ag__psi_curve_init());
    if (!ag__psi_ifma_available()) {
        printf("no AVX-512 IFMA on this CPU: nothing to compare\n");
        return;
    }
    uint8_t s[32];
    psi_prefix pre;
    ag__psi_prefix_init(&pre, (const uint8_t *)"ifma", 4);
    enum { N = 45 };
    char text[N][24];
    ag_slice keys[N];
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof(text[i]), "key-%d-%llu", i, (unsigned long long)rnd());
        keys[i] = ag_slice_make(text[i], strlen(text[i]) - (size_t)(i % 3));
    }
    static uint8_t a[N * 32], b[N * 32], c[N * 32], d[N * 32];
    for (int round = 0; round < 4; round++) {
        ag__psi_scalar_random(s);
        ag__psi_sodium_hash_mul(&pre, keys, N, s, a);
        ag__psi_ifma_hash_mul(&pre, keys, N, s, b);
        CHECK_MEM_EQ(a, b, sizeof(a));
        CHECK_EQ(ag__psi_sodium_mul(a, N, s, c), -1);
        CHECK_EQ(ag__psi_ifma_mul(a, N, s, d), -1);
        CHECK_MEM_EQ(c, d, sizeof(c));
        /* a bad point in the middle of a batch is named by both */
        memset(a + 32 * 13, 0xff, 32);
        memcpy(a + 32 * 17, a + 32 * 2, 32);
        a[32 * 17] |= 1; /* negative */
        CHECK_EQ(ag__psi_sodium_mul(a, N, s, c), 13);
        CHECK_EQ(ag__psi_ifma_mul(a, N, s, d), 13);
        CHECK_MEM_EQ(c, d, 13 * 32);
    }
    /* random encodings, one at a time: the same verdict and bytes */
    int valid = 0;
    for (int i = 0; i < 3000; i++) {
        uint8_t p[32];
        for (int k = 0; k < 4; k++) {
            uint64_t r = rnd();
            memcpy(p + 8 * k, &r, 8);
        }
        if (i % 4 != 3)
            p[31] &= 0x7f, p[0] &= 0xfe; /* mostly past the canonical check */
        if (i == 0)
            memset(p, 0, 32); /* the identity */
        if (i == 1) {
            memset(p, 0xff, 32); /* p + 17 - 2^255 ... not canonical */
            p[31] = 0x7f;
            p[0] = 0xee;
        }
        ssize_t x = ag__psi_sodium_mul(p, 1, s, c), y = ag__psi_ifma_mul(p, 1, s, d);
        if (x != y) {
            char hex[65], sh[65];
            ag_hex_encode(hex, p, 32);
            ag_hex_encode(sh, s, 32);
            FAIL("encoding %d (%s, scalar %s): libsodium says %zd, ifma %zd", i, hex, sh, x, y);
        }
        if (x == -1) {
            valid++;
            CHECK_MEM_EQ(c, d, 32);
        }
    }
    CHECK(valid > 500);
}
