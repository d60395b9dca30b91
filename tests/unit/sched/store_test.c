/*
 * Tests for the RM's state stores (src/sched/store_sqlite.c,
 * src/sched/store_etcd.c behind store.h) and the etcd client
 * (src/sched/etcd.c): the same round trips on both (identity and keys,
 * reports, contexts, attempts, grants, an application dropped, reports
 * marked lost, a batch), and the etcd store's fencing: nothing is written
 * before the guard is given, and once the leader key is gone or another
 * RM's, every write is refused FENCED. etcd is Debian's, started by the
 * test on loopback (tests/harness/etcd.c).
 */
#include <string.h>
#include <unistd.h>

#include "argot/rpc.h"
#include "etcd.h"
#include "sched/etcd.h"
#include "sched/store.h"
#include "test.h"

static ag_sched_keys keys_of(int seed)
{
    ag_sched_keys k;
    memset(&k, 0, sizeof(k));
    for (size_t i = 0; i < AG__SCHED_KEY_SLOTS; i++) {
        ag_sched_key *x = ag__sched_key_slot(&k, i);
        if (i == 5)
            continue; /* an empty slot: no previous AMRM key */
        x->id = seed + (int32_t)i;
        memset(x->bytes, seed + (int)i, sizeof(x->bytes));
    }
    return k;
}

static int count_ctx(void *ud, int32_t app, const uint8_t *ctx, size_t len, int64_t start)
{
    int *n = ud;
    CHECK(app == 7 || app == 12);
    if (app == 7) {
        CHECK_EQ(len, 3);
        CHECK(memcmp(ctx, "ctx", 3) == 0);
        CHECK_EQ(start, 1234);
    }
    (*n)++;
    return 0;
}

static int check_grant(void *ud, const ag_sched_grant *g)
{
    int *n = ud;
    CHECK_EQ(g->app_id, 12);
    CHECK(g->container == 3 || g->container == (5LL << 40) + 1);
    CHECK_STR_EQ(g->host, "node-a.example");
    CHECK_EQ(g->port, 8041);
    CHECK_EQ(g->memory_mb, 2048);
    CHECK_EQ(g->vcores, 2);
    CHECK_EQ(g->priority, 3);
    CHECK_EQ(g->allocation_request_id, 99);
    CHECK_EQ(g->attempt, 2);
    (*n)++;
    return 0;
}

/* The same story on any store. */
static void round_trips(ag__store *s)
{
    const ag__store_ops *o = s->ops;
    char err[AG_ERRMSG_MAX];
    ag__store_identity id = {0};
    ag_sched_keys k;
    memset(&k, 0, sizeof(k));
    bool found = true;
    CHECK_EQ(o->identity_get(s, &id, &k, &found, err, sizeof(err)), 0);
    CHECK(!found);

    ag__store_identity want = {1700000000123LL, 4, 11};
    ag_sched_keys wk = keys_of(40);
    CHECK_EQ(o->identity_put(s, &want, &wk, err, sizeof(err)), 0);
    CHECK_EQ(o->last_app_put(s, 12), 0);
    memset(&k, 0, sizeof(k));
    CHECK_EQ(o->identity_get(s, &id, &k, &found, err, sizeof(err)), 0);
    CHECK(found);
    CHECK_EQ(id.cluster_timestamp, 1700000000123LL);
    CHECK_EQ(id.epoch, 4);
    CHECK_EQ(id.last_app_id, 12);
    CHECK(memcmp(&k, &wk, sizeof(k)) == 0);

    /* a report, a context, an attempt, grants: in one batch */
    CHECK_EQ(o->begin(s), 0);
    CHECK_EQ(o->report_put(s, "application_1700000000123_0007", 4, (const uint8_t *)"rep7", 4),
             0);
    CHECK_EQ(o->report_put(s, "application_1700000000123_0012", 5, (const uint8_t *)"r12", 3), 0);
    CHECK_EQ(o->context_put(s, 7, (const uint8_t *)"ctx", 3, 1234), 0);
    CHECK_EQ(o->context_put(s, 12, (const uint8_t *)"c12", 3, 99), 0);
    CHECK_EQ(o->attempt_put(s, 7, 1, 0, false), 0);
    CHECK_EQ(o->attempt_put(s, 7, 2, 1001, false), 0);
    ag_sched_grant g = {.app_id = 12, .attempt = 2, .container = 3, .host = "node-a.example",
                        .port = 8041, .memory_mb = 2048, .vcores = 2, .priority = 3,
                        .allocation_request_id = 99};
    CHECK_EQ(o->grant_put(s, &g), 0);
    g.container = (5LL << 40) + 1;
    CHECK_EQ(o->grant_put(s, &g), 0);
    g.app_id = 7;
    CHECK_EQ(o->grant_put(s, &g), 0);
    CHECK_EQ(o->commit(s), 0);

    int state = 0;
    uint8_t *r = NULL;
    size_t len = 0;
    CHECK_EQ(o->report_get(s, "application_1700000000123_0007", &state, &r, &len), 1);
    CHECK_EQ(state, 4);
    CHECK_EQ(len, 4);
    CHECK(memcmp(r, "rep7", 4) == 0);
    ag_free(r);
    CHECK_EQ(o->report_get(s, "application_1700000000123_0099", &state, &r, &len), 0);
    int32_t att = 0;
    int64_t amc = 0;
    bool fin = true;
    CHECK_EQ(o->attempt_get(s, 7, &att, &amc, &fin), 1);
    CHECK_EQ(att, 2);
    CHECK_EQ(amc, 1001);
    CHECK(!fin);
    CHECK_EQ(o->attempt_get(s, 12, &att, &amc, &fin), 0);

    /* application 7 ends: its context, attempt and grants go */
    CHECK_EQ(o->app_drop(s, 7), 0);
    CHECK_EQ(o->attempt_get(s, 7, &att, &amc, &fin), 0);
    int n = 0;
    CHECK_EQ(o->contexts(s, count_ctx, &n), 0);
    CHECK_EQ(n, 1);
    n = 0;
    CHECK_EQ(o->grants(s, check_grant, &n), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(o->grant_del(s, 12, 3), 0);
    n = 0;
    CHECK_EQ(o->grants(s, check_grant, &n), 0);
    CHECK_EQ(n, 1);
    CHECK_EQ(o->grants_clear(s), 0);
    n = 0;
    CHECK_EQ(o->grants(s, check_grant, &n), 0);
    CHECK_EQ(n, 0);

    /* unfinished reports are marked lost, finished ones kept */
    CHECK_EQ(o->reports_mark_lost(s), 0);
    CHECK_EQ(o->report_get(s, "application_1700000000123_0007", &state, &r, &len), 1);
    CHECK_EQ(state, -1);
    CHECK(len == 4 && memcmp(r, "rep7", 4) == 0);
    ag_free(r);
    CHECK_EQ(o->report_get(s, "application_1700000000123_0012", &state, &r, &len), 1);
    CHECK_EQ(state, 5);
    ag_free(r);

    /* keys rolled: a slot emptied */
    memset(&wk.next_nm, 0, sizeof(wk.next_nm));
    CHECK_EQ(o->keys_put(s, &wk), 0);
    memset(&k, 0, sizeof(k));
    CHECK_EQ(o->identity_get(s, &id, &k, &found, err, sizeof(err)), 0);
    CHECK(memcmp(&k, &wk, sizeof(k)) == 0);
    CHECK(!s->fenced);
}

TEST(sched_store_sqlite_round_trips)
{
    char err[AG_ERRMSG_MAX];
    ag__store *s = ag__store_sqlite_open(ag_test_path("rm.db"), err, sizeof(err));
    if (!s)
        FAIL("%s", err);
    round_trips(s);
    s->ops->free(s);
}


TEST_TIMEOUT(sched_store_etcd_round_trips_and_fencing, 60)
{
    if (access(AG_TEST_ETCD_BIN, X_OK) != 0)
        FAIL("%s is missing (scripts/deps.sh installs etcd-server)", AG_TEST_ETCD_BIN);
    ag_test_etcd E;
    ag_test_etcd_init(&E, "etcd");
    ag_test_etcd_start(&E);
    const char *eps[] = {"127.0.0.1:1", E.target}; /* the first refuses: the next is used */
    ag__etcd *e = ag__etcd_new(eps, 2, 1000);
    CHECK(e != NULL);
    char err[AG_ERRMSG_MAX];
    ag__store *s = ag__store_etcd_open(e, "/t/rm", E.target, err, sizeof(err));
    CHECK(s != NULL);

    /* not elected: nothing is written */
    CHECK_EQ(s->ops->last_app_put(s, 3), 0); /* no identity yet: nothing to change */
    CHECK_EQ(s->ops->context_put(s, 1, (const uint8_t *)"x", 1, 1), AG__STORE_FENCED);

    int64_t rev = ag_test_etcd_put(&E, "/t/rm/leader", "rm1 127.0.0.1:1");
    ag__store_etcd_guard(s, rev);
    CHECK(!s->fenced);
    round_trips(s);

    /* in one batch: a grant that came and went (etcd refuses a Txn naming a
     * key twice), the grants cleared and then one written again */
    ag_sched_grant g = {.app_id = 12, .attempt = 2, .container = 77, .host = "node-a.example",
                        .port = 8041, .memory_mb = 2048, .vcores = 2, .priority = 3,
                        .allocation_request_id = 99};
    CHECK_EQ(s->ops->begin(s), 0);
    CHECK_EQ(s->ops->grant_put(s, &g), 0);
    CHECK_EQ(s->ops->grant_del(s, 12, 77), 0);
    g.container = 78;
    CHECK_EQ(s->ops->grant_put(s, &g), 0);
    CHECK_EQ(s->ops->grants_clear(s), 0);
    g.container = 3;
    CHECK_EQ(s->ops->grant_put(s, &g), 0);
    CHECK_EQ(s->ops->commit(s), 0);
    int ng = 0;
    CHECK_EQ(s->ops->grants(s, check_grant, &ng), 0);
    CHECK_EQ(ng, 1);
    /* rows someone else wrote badly are skipped (logged), not misread: a
     * container number past int64_t, a non-number, a short value */
    static const char v40[41] = "0123456789012345678901234567890123456789";
    ag_test_etcd_put(&E, "/t/rm/state/grants/0000000012/99999999999999999999999", v40);
    ag_test_etcd_put(&E, "/t/rm/state/grants/0000000012/12x", v40);
    ag_test_etcd_put(&E, "/t/rm/state/grants/0000000012/00000000000000000005", "short");
    ag_test_etcd_put(&E, "/t/rm/state/ctx/notanumber", v40);
    ng = 0;
    CHECK_EQ(s->ops->grants(s, check_grant, &ng), 0);
    CHECK_EQ(ng, 1);

    /* another RM's election (the leader key gone and put again by someone
     * else): every write of this one is refused */
    Etcdserverpb__RequestOp del = ETCDSERVERPB__REQUEST_OP__INIT;
    Etcdserverpb__DeleteRangeRequest dr = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    dr.key = (ProtobufCBinaryData){strlen("/t/rm/leader"), (uint8_t *)"/t/rm/leader"};
    del.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
    del.request_delete_range = &dr;
    Etcdserverpb__RequestOp *ops[] = {&del};
    Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
    t.n_success = 1;
    t.success = ops;
    Etcdserverpb__TxnResponse *tr = NULL;
    CHECK_EQ(ag__etcd_txn(e, &t, &tr, err, sizeof(err)), 0);
    ag_rpc_msg_free(&tr->base);
    ag_test_etcd_put(&E, "/t/rm/leader", "rm2 127.0.0.1:2");
    CHECK_EQ(s->ops->context_put(s, 2, (const uint8_t *)"y", 1, 1), AG__STORE_FENCED);
    CHECK(s->fenced);
    CHECK_EQ(s->ops->begin(s), 0);
    CHECK_EQ(s->ops->grants_clear(s), AG__STORE_FENCED);
    CHECK_EQ(s->ops->commit(s), AG__STORE_FENCED);
    /* and nothing of it landed */
    int n = 0;
    CHECK_EQ(s->ops->contexts(s, count_ctx, &n), 0);
    CHECK_EQ(n, 1); /* application 12's, from the round trips */

    /* the lease: granted, renewed, revoked */
    int64_t lease = 0, ttl = 0, left = 0;
    CHECK_EQ(ag__etcd_grant(e, 5, &lease, &ttl, err, sizeof(err)), 0);
    CHECK(lease != 0);
    CHECK(ttl >= 5);
    CHECK_EQ(ag__etcd_keepalive(e, lease, &left, err, sizeof(err)), 0);
    CHECK(left > 0);
    CHECK_EQ(ag__etcd_revoke(e, lease, err, sizeof(err)), 0);
    CHECK_EQ(ag__etcd_keepalive(e, lease, &left, err, sizeof(err)), 0);
    CHECK(left <= 0);

    s->ops->free(s);
    ag__etcd_free(e);
    ag_test_etcd_stop(&E);
}

TEST(sched_etcd_unreachable_names_every_endpoint)
{
    const char *eps[] = {"127.0.0.1:1", "127.0.0.1:2"};
    ag__etcd *e = ag__etcd_new(eps, 2, 500);
    Etcdserverpb__RangeResponse *r = NULL;
    char err[AG_ERRMSG_MAX];
    CHECK_EQ(ag__etcd_range(e, "k", 1, NULL, 0, 1, &r, err, sizeof(err)), -1);
    CHECK_CONTAINS(err, "Range on 127.0.0.1:1: UNAVAILABLE");
    CHECK_CONTAINS(err, "Range on 127.0.0.1:2: UNAVAILABLE");
    ag__etcd_free(e);
}
