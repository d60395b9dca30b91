/* Tests for src/apps/align.c: two parties' rows aligned by key inside a fed
 * job, and its errors. */
#include "argot/apps.h"
#include "test.h"

struct align_case {
    const char *in[2];
    const char *key[2];
    int rc[2];
    char first_key[2][32];
    size_t rows[2];
    char err[2][AG_ERRMSG_MAX];
};

static int align_job(ag_fed *f, void *ud)
{
    struct align_case *c = ud;
    unsigned me = ag_fed_rank(f);
    const char *keys[1] = {c->key[me]};
    ag_table *t = NULL;
    ag_errbuf err = {0, ""};
    int rc = ag_apps_align(f, c->in[me], keys, 1, &t, &err);
    c->rc[me] = rc;
    if (rc < 0) {
        snprintf(c->err[me], sizeof(c->err[me]), "%s", err.msg);
        return ag_fed_fail_local(f, rc, "%s", err.msg);
    }
    c->rows[me] = ag_table_nrows(t);
    if (c->rows[me])
        snprintf(c->first_key[me], sizeof(c->first_key[me]), "%s",
                 ag_table_cell(t, 0, (size_t)ag_table_col(t, c->key[me]), NULL));
    /* row i is the same key at both: check through a reveal of alice's keys */
    ag_table_free(t);
    return 0;
}

TEST(apps_align_keeps_common_rows_in_key_order)
{
    static const char a[] = "id,x\nz,1\nb,2\nq,3\na,4\n";
    static const char b[] = "y,uid\n10,q\n20,a\n30,c\n40,z\n";
    static struct align_case c;
    memset(&c, 0, sizeof(c));
    char pa[600], pb[600];
    snprintf(pa, sizeof(pa), "%s", ag_test_write_file("a.csv", a, strlen(a)));
    snprintf(pb, sizeof(pb), "%s", ag_test_write_file("b.csv", b, strlen(b)));
    c.in[0] = pa;
    c.in[1] = pb;
    c.key[0] = "id";
    c.key[1] = "uid";
    ag_fed_run r;
    ag_fed_run_init(&r, align_job, &c);
    const char *names[2] = {"alice", "bob"};
    CHECK_OK(ag_fed_run_sim(&r, 2, names));
    CHECK_EQ(c.rows[0], 3);
    CHECK_EQ(c.rows[1], 3);
    CHECK_STR_EQ(c.first_key[0], "a");
    CHECK_STR_EQ(c.first_key[1], "a");

    /* a duplicate key is refused with its lines, at the party that has it */
    static const char dup[] = "id,x\nz,1\nz,2\n";
    snprintf(pa, sizeof(pa), "%s", ag_test_write_file("d.csv", dup, strlen(dup)));
    c.in[0] = pa;
    CHECK_EQ(ag_fed_run_sim(&r, 2, names), AG_E_PSI_DUPLICATE);
    CHECK_CONTAINS(r.err, "party alice: ");
    CHECK_CONTAINS(r.err, "d.csv:3: duplicate key");
    CHECK_CONTAINS(c.err[1], "duplicate keys in its input");
    CHECK(!strstr(c.err[1], "\"z\"")); /* bob learns no key */
}
