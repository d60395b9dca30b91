/*
 * The RM's state in etcd (store.h; rm.yaml `ha:`), so that whichever RM is
 * elected active finds it. Keys under the configured prefix P:
 *
 *   P/leader                  the election (rm.c): this RM's name and
 *                             address, put with its lease
 *   P/state/rm                cluster_timestamp, epoch, last_app_id
 *   P/state/keys/<slot>       a master key: id (4 bytes) and its 32 bytes
 *   P/state/apps/<app id>     state (4 bytes) and the packed report
 *   P/state/ctx/<app>         start time (8 bytes) and the packed
 *                             submission context
 *   P/state/att/<app>         the latest attempt: attempt (4), AM container
 *                             (8), finished (1)
 *   P/state/grants/<app>/<c>  attempt (4), port (4), memory (8), vcores
 *                             (4), priority (4), request id (8), host
 *
 * (<app> is the application's number in 10 digits, <c> the container's in
 * 20, so that keys sort by number; integers are little-endian.)
 *
 * Fencing: every write is a Txn whose compare is "P/leader was created at
 * the revision this RM's election put it" (ag__store_etcd_guard): the key
 * goes with the lease, so once this RM's lease has expired, or another RM
 * was elected, no write of this one lands, and the store says FENCED. A
 * write etcd could not take at all (no endpoint answered) is FENCED as
 * well: an RM that cannot keep its state must not go on acting on it.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "argot/rpc.h"
#include "etcd.h"
#include "store.h"

#define TXN_OPS   100  /* etcd refuses more than --max-txn-ops (128) per Txn */
#define PAGE_KEYS 1000 /* keys per Range when reading a prefix */

typedef struct op {
    bool put;      /* else delete [key, end) */
    uint8_t *key;  /* ag_malloc'd, key_len + 1 bytes */
    size_t key_len;
    uint8_t *val;  /* put: ag_malloc'd; delete: the range end (or NULL) */
    size_t val_len;
} op;

typedef struct et_store {
    ag__store base;
    ag__etcd *etcd; /* borrowed: rm.c's */
    char prefix[512];
    char leader[600]; /* P/leader */
    int64_t guard_rev;
    ag__store_identity id; /* P/state/rm as last read or written */
    bool have_id;
    bool batch;       /* between begin and commit */
    op *ops;
    size_t nops, cap;
} et_store;

#define ET(s) ((et_store *)(s))

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void ops_clear(et_store *e)
{
    for (size_t i = 0; i < e->nops; i++) {
        ag_free(e->ops[i].key);
        ag_free(e->ops[i].val);
    }
    e->nops = 0;
}

/* Sends ops [0, n) in Txns of at most TXN_OPS under the guard. */
static int send_ops(et_store *e, const op *ops, size_t n)
{
    if (e->guard_rev <= 0)
        return AG__STORE_FENCED; /* not elected yet: nothing is written */
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
    cmp.key.data = (uint8_t *)e->leader;
    cmp.key.len = strlen(e->leader);
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
    cmp.create_revision = e->guard_rev;
    Etcdserverpb__Compare *cmps[1] = {&cmp};
    Etcdserverpb__RequestOp ro[TXN_OPS];
    Etcdserverpb__PutRequest pr[TXN_OPS];
    Etcdserverpb__DeleteRangeRequest dr[TXN_OPS];
    Etcdserverpb__RequestOp *rop[TXN_OPS];
    for (size_t at = 0; at < n; at += TXN_OPS) {
        size_t k = AG_MIN(n - at, (size_t)TXN_OPS);
        for (size_t i = 0; i < k; i++) {
            const op *o = &ops[at + i];
            etcdserverpb__request_op__init(&ro[i]);
            if (o->put) {
                etcdserverpb__put_request__init(&pr[i]);
                pr[i].key = (ProtobufCBinaryData){o->key_len, o->key};
                pr[i].value = (ProtobufCBinaryData){o->val_len, o->val};
                ro[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
                ro[i].request_put = &pr[i];
            } else {
                etcdserverpb__delete_range_request__init(&dr[i]);
                dr[i].key = (ProtobufCBinaryData){o->key_len, o->key};
                dr[i].range_end = (ProtobufCBinaryData){o->val_len, o->val};
                ro[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
                ro[i].request_delete_range = &dr[i];
            }
            rop[i] = &ro[i];
        }
        Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
        req.n_compare = 1;
        req.compare = cmps;
        req.n_success = k;
        req.success = rop;
        Etcdserverpb__TxnResponse *resp = NULL;
        char err[AG_ERRMSG_MAX];
        if (ag__etcd_txn(e->etcd, &req, &resp, err, sizeof(err)) < 0) {
            AG_LOG(AG_LOG_ERROR, "rm", "state_write_failed store=\"%s\" why=\"%s\"", e->base.name,
                   err);
            e->base.fenced = true;
            return AG__STORE_FENCED;
        }
        bool ok = resp->succeeded;
        ag_rpc_msg_free(&resp->base);
        if (!ok) {
            AG_LOG(AG_LOG_ERROR, "rm", "state_write_refused store=\"%s\" why=\"%s is no longer "
                   "this RM's (created at revision %" PRId64 ")\"", e->base.name, e->leader,
                   e->guard_rev);
            e->base.fenced = true;
            return AG__STORE_FENCED;
        }
    }
    return 0;
}

/* Whether key is in [start, end) (end_len 0: key == start). */
static bool in_range(const uint8_t *key, size_t klen, const uint8_t *start, size_t slen,
                     const uint8_t *end, size_t elen)
{
    int c = memcmp(key, start, AG_MIN(klen, slen));
    if (c < 0 || (c == 0 && klen < slen))
        return false;
    if (elen == 0)
        return klen == slen && c == 0;
    if (elen == 1 && end[0] == 0)
        return true; /* "\0": every key from start */
    c = memcmp(key, end, AG_MIN(klen, elen));
    return c < 0 || (c == 0 && klen < elen);
}

/* Queues (in a batch) or sends one operation; takes key and val. */
static int add_op(et_store *e, bool put, uint8_t *key, size_t key_len, uint8_t *val,
                  size_t val_len)
{
    if (e->base.fenced) {
        ag_free(key);
        ag_free(val);
        return AG__STORE_FENCED;
    }
    if (!key || (put && !val)) {
        ag_free(key);
        ag_free(val);
        return -1;
    }
    op o = {put, key, key_len, val, val_len};
    if (!e->batch) {
        int rc = send_ops(e, &o, 1);
        ag_free(key);
        ag_free(val);
        return rc;
    }
    /* etcd refuses a Txn that names a key twice (or a key inside a range it
     * deletes): a later write of a key replaces the earlier one, a range
     * delete drops the writes inside it, and a write inside an earlier
     * range delete goes in the next Txn */
    bool range = !put && val;
    size_t w = 0;
    bool flush = false;
    for (size_t i = 0; i < e->nops; i++) {
        op *x = &e->ops[i];
        bool x_range = !x->put && x->val;
        bool drop = false;
        if (!range && !x_range)
            drop = x->key_len == key_len && memcmp(x->key, key, key_len) == 0;
        else if (range && !x_range)
            drop = in_range(x->key, x->key_len, key, key_len, val, val_len);
        else if (!range && x_range)
            flush = flush || in_range(key, key_len, x->key, x->key_len, x->val, x->val_len);
        else
            flush = true;
        if (drop) {
            ag_free(x->key);
            ag_free(x->val);
        } else {
            e->ops[w++] = *x;
        }
    }
    e->nops = w;
    if (flush) {
        int rc = send_ops(e, e->ops, e->nops);
        ops_clear(e);
        if (rc < 0) {
            ag_free(key);
            ag_free(val);
            return rc;
        }
    }
    if (e->nops == e->cap) {
        size_t nc = e->cap ? 2 * e->cap : 64;
        op *n = ag_realloc(e->ops, nc * sizeof(*n));
        if (!n) {
            ag_free(key);
            ag_free(val);
            return -1;
        }
        e->ops = n;
        e->cap = nc;
    }
    e->ops[e->nops++] = o;
    return 0;
}

/* P/state/<fmt...> as a heap key; *len its length. */
static uint8_t *keyf(et_store *e, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static uint8_t *keyf(et_store *e, size_t *len, const char *fmt, ...)
{
    char tail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tail, sizeof(tail), fmt, ap);
    va_end(ap);
    size_t n = strlen(e->prefix) + 7 + strlen(tail);
    char *k = ag_malloc(n + 1);
    if (k)
        snprintf(k, n + 1, "%s/state/%s", e->prefix, tail);
    *len = k ? strlen(k) : 0;
    return (uint8_t *)k;
}

static int put_kv(et_store *e, uint8_t *key, size_t klen, const void *a, size_t alen,
                  const void *b, size_t blen)
{
    uint8_t *v = ag_malloc(alen + blen + 1);
    if (v) {
        memcpy(v, a, alen);
        if (blen)
            memcpy(v + alen, b, blen);
    }
    return add_op(e, true, key, klen, v, alen + blen);
}

/* Deletes every key under key (a prefix). */
static int del_prefix(et_store *e, uint8_t *key, size_t klen)
{
    uint8_t *end = key ? ag_malloc(klen + 1) : NULL;
    size_t elen = end ? ag__etcd_prefix_end((const char *)key, klen, end) : 0;
    if (key && !end) {
        ag_free(key);
        return -1;
    }
    return add_op(e, false, key, klen, end, elen);
}

/* Reads one key: 1 with *v (ag_free), 0 when absent, -1 on failure. */
static int get_one(et_store *e, const uint8_t *key, size_t klen, uint8_t **v, size_t *vlen)
{
    Etcdserverpb__RangeResponse *r = NULL;
    char err[AG_ERRMSG_MAX];
    if (ag__etcd_range(e->etcd, key, klen, NULL, 0, 1, &r, err, sizeof(err)) < 0) {
        AG_LOG(AG_LOG_WARN, "rm", "state_read_failed store=\"%s\" why=\"%s\"", e->base.name, err);
        return -1;
    }
    int found = 0;
    if (r->n_kvs > 0) {
        *vlen = r->kvs[0]->value.len;
        *v = ag_malloc(*vlen + 1);
        found = *v ? 1 : -1;
        if (*v && *vlen)
            memcpy(*v, r->kvs[0]->value.data, *vlen);
    }
    ag_rpc_msg_free(&r->base);
    return found;
}

/* Calls fn for every key under P/state/<tail>, in key order, a page at a
 * time. */
static int each(et_store *e, const char *tail,
                int (*fn)(et_store *e, const uint8_t *key, size_t klen, const uint8_t *v,
                          size_t vlen, void *ud),
                void *ud)
{
    size_t klen = 0;
    uint8_t *start = keyf(e, &klen, "%s", tail);
    uint8_t *end = start ? ag_malloc(klen + 1) : NULL;
    if (!end) {
        ag_free(start);
        return -1;
    }
    size_t elen = ag__etcd_prefix_end((const char *)start, klen, end);
    int rc = 0;
    for (;;) {
        Etcdserverpb__RangeResponse *r = NULL;
        char err[AG_ERRMSG_MAX];
        if (ag__etcd_range(e->etcd, start, klen, end, elen, PAGE_KEYS, &r, err, sizeof(err)) <
            0) {
            AG_LOG(AG_LOG_WARN, "rm", "state_read_failed store=\"%s\" why=\"%s\"", e->base.name,
                   err);
            rc = -1;
            break;
        }
        for (size_t i = 0; i < r->n_kvs; i++)
            fn(e, r->kvs[i]->key.data, r->kvs[i]->key.len, r->kvs[i]->value.data,
               r->kvs[i]->value.len, ud);
        bool more = r->more && r->n_kvs > 0;
        if (more) { /* the next page starts just after the last key */
            const ProtobufCBinaryData *last = &r->kvs[r->n_kvs - 1]->key;
            uint8_t *ns = ag_malloc(last->len + 2);
            if (!ns) {
                ag_rpc_msg_free(&r->base);
                rc = -1;
                break;
            }
            memcpy(ns, last->data, last->len);
            ns[last->len] = 0;
            ag_free(start);
            start = ns;
            klen = last->len + 1;
        }
        ag_rpc_msg_free(&r->base);
        if (!more)
            break;
    }
    ag_free(start);
    ag_free(end);
    return rc;
}

static void et_free(ag__store *s)
{
    ops_clear(ET(s));
    ag_free(ET(s)->ops);
    ag_free(s);
}

static int et_keys_put(ag__store *s, const ag_sched_keys *k)
{
    et_store *e = ET(s);
    bool own = !e->batch;
    e->batch = true;
    int rc = 0;
    for (size_t i = 0; i < AG__SCHED_KEY_SLOTS && rc == 0; i++) {
        const ag_sched_key *x = ag__sched_key_slot((ag_sched_keys *)k, i);
        size_t kl = 0;
        uint8_t *key = keyf(e, &kl, "keys/%s", ag__sched_key_slot_name(i));
        if (!x->id) {
            rc = add_op(e, false, key, kl, NULL, 0);
            continue;
        }
        uint8_t id[4];
        put32(id, (uint32_t)x->id);
        rc = put_kv(e, key, kl, id, 4, x->bytes, sizeof(x->bytes));
    }
    if (own) {
        e->batch = false;
        int c = rc == 0 ? send_ops(e, e->ops, e->nops) : rc;
        for (size_t i = 0; i < e->nops; i++)
            if (e->ops[i].put)
                ag_wipe(e->ops[i].val, e->ops[i].val_len);
        ops_clear(e);
        rc = c;
    }
    return rc;
}

static int key_row(et_store *e, const uint8_t *key, size_t klen, const uint8_t *v, size_t vlen,
                   void *ud)
{
    ag_sched_keys *k = ud;
    size_t pl = strlen(e->prefix) + strlen("/state/keys/");
    for (size_t i = 0; i < AG__SCHED_KEY_SLOTS; i++) {
        const char *name = ag__sched_key_slot_name(i);
        if (klen == pl + strlen(name) && memcmp(key + pl, name, strlen(name)) == 0) {
            ag_sched_key *x = ag__sched_key_slot(k, i);
            if (vlen != 4 + sizeof(x->bytes)) {
                AG_LOG(AG_LOG_WARN, "rm", "state_key_ignored slot=%s why=\"not %d bytes\"", name,
                       AG_SCHED_KEY_BYTES);
                return 0;
            }
            x->id = (int32_t)get32(v);
            memcpy(x->bytes, v + 4, sizeof(x->bytes));
        }
    }
    return 0;
}

static int et_identity_get(ag__store *s, ag__store_identity *id, ag_sched_keys *k, bool *found,
                           char *err, size_t cap)
{
    et_store *e = ET(s);
    size_t kl = 0, vl = 0;
    uint8_t *key = keyf(e, &kl, "rm"), *v = NULL;
    int rc = key ? get_one(e, key, kl, &v, &vl) : -1;
    ag_free(key);
    *found = false;
    if (rc < 0) {
        snprintf(err, cap, "%s: cannot read the RM's identity (see the log)", s->name);
        return AG_E_IO;
    }
    if (rc == 0)
        return 0;
    if (vl != 24) {
        ag_free(v);
        snprintf(err, cap, "%s: %s/state/rm is %zu bytes, not 24", s->name, e->prefix, vl);
        return AG_E_IO;
    }
    id->cluster_timestamp = (int64_t)get64(v);
    id->epoch = (int64_t)get64(v + 8);
    id->last_app_id = (int64_t)get64(v + 16);
    ag_free(v);
    *found = true;
    e->id = *id;
    e->have_id = true;
    if (each(e, "keys/", key_row, k) < 0) {
        snprintf(err, cap, "%s: cannot read the master keys (see the log)", s->name);
        return AG_E_IO;
    }
    if (!k->container.id || !k->nm.id || !k->amrm.id) {
        snprintf(err, cap, "%s: a signing master key is missing under %s/state/keys/", s->name,
                 e->prefix);
        return AG_E_IO;
    }
    return 0;
}

static int identity_row(et_store *e, const ag__store_identity *id)
{
    e->id = *id;
    e->have_id = true;
    uint8_t v[24];
    put64(v, (uint64_t)id->cluster_timestamp);
    put64(v + 8, (uint64_t)id->epoch);
    put64(v + 16, (uint64_t)id->last_app_id);
    size_t kl = 0;
    uint8_t *key = keyf(e, &kl, "rm");
    return put_kv(e, key, kl, v, sizeof(v), NULL, 0);
}

static int et_identity_put(ag__store *s, const ag__store_identity *id, const ag_sched_keys *k,
                           char *err, size_t cap)
{
    int rc = identity_row(ET(s), id);
    if (rc == 0)
        rc = et_keys_put(s, k);
    if (rc < 0)
        snprintf(err, cap, "%s: cannot write the RM's identity (see the log)", s->name);
    return rc;
}

/* last_app_id lives in the identity row, which this store wrote or read
 * at the RM's start: the row again with the new id. */
static int et_last_app_put(ag__store *s, int64_t last)
{
    et_store *e = ET(s);
    if (!e->have_id)
        return 0; /* no identity yet: nothing to change (as an UPDATE of no row) */
    ag__store_identity id = e->id;
    id.last_app_id = last;
    return identity_row(e, &id);
}

static int et_begin(ag__store *s)
{
    ET(s)->batch = true;
    return 0;
}

static int et_commit(ag__store *s)
{
    et_store *e = ET(s);
    e->batch = false;
    int rc = e->base.fenced ? AG__STORE_FENCED : send_ops(e, e->ops, e->nops);
    ops_clear(e);
    return rc;
}

static int et_report_put(ag__store *s, const char *id, int state, const uint8_t *r, size_t len)
{
    et_store *e = ET(s);
    size_t kl = 0;
    uint8_t *key = keyf(e, &kl, "apps/%s", id), st[4];
    put32(st, (uint32_t)state);
    return put_kv(e, key, kl, st, 4, r, len);
}

static int et_report_get(ag__store *s, const char *id, int *state, uint8_t **r, size_t *len)
{
    et_store *e = ET(s);
    size_t kl = 0, vl = 0;
    uint8_t *key = keyf(e, &kl, "apps/%s", id), *v = NULL;
    int rc = key ? get_one(e, key, kl, &v, &vl) : -1;
    ag_free(key);
    if (rc != 1)
        return rc;
    if (vl < 4) {
        ag_free(v);
        return 0;
    }
    *state = (int)(int32_t)get32(v);
    memmove(v, v + 4, vl - 4);
    *r = v;
    *len = vl - 4;
    return 1;
}

static int lost_row(et_store *e, const uint8_t *key, size_t klen, const uint8_t *v, size_t vlen,
                    void *ud)
{
    (void)ud;
    if (vlen < 4)
        return 0;
    int state = (int)(int32_t)get32(v);
    if (state == 5 || state == 6 || state == 7 || state == -1) /* final, or lost already */
        return 0;
    uint8_t *k = ag_malloc(klen + 1), st[4];
    if (k)
        memcpy(k, key, klen);
    put32(st, (uint32_t)-1);
    return put_kv(e, k, klen, st, 4, v + 4, vlen - 4);
}

static int et_reports_mark_lost(ag__store *s)
{
    et_store *e = ET(s);
    bool own = !e->batch;
    e->batch = true;
    int rc = each(e, "apps/", lost_row, NULL);
    if (own)
        rc = rc < 0 ? (ops_clear(e), e->batch = false, rc) : et_commit(s);
    return rc;
}

static int et_context_put(ag__store *s, int32_t app, const uint8_t *ctx, size_t len,
                          int64_t start_ms)
{
    et_store *e = ET(s);
    size_t kl = 0;
    uint8_t *key = keyf(e, &kl, "ctx/%010d", (int)app), t[8];
    put64(t, (uint64_t)start_ms);
    return put_kv(e, key, kl, t, 8, ctx, len);
}

struct ctx_walk {
    ag__store_context_fn fn;
    void *ud;
};

/* The number after the last '/' of a key (-1 when it is not one: no
 * digits, other bytes, or beyond int64_t). */
static long long key_number(const uint8_t *key, size_t klen)
{
    size_t i = klen;
    while (i > 0 && key[i - 1] != '/')
        i--;
    if (i == klen)
        return -1;
    long long v = 0;
    for (; i < klen; i++) {
        if (key[i] < '0' || key[i] > '9' || v > (INT64_MAX - (key[i] - '0')) / 10)
            return -1;
        v = v * 10 + (key[i] - '0');
    }
    return v;
}

static int ctx_row(et_store *e, const uint8_t *key, size_t klen, const uint8_t *v, size_t vlen,
                   void *ud)
{
    (void)e;
    struct ctx_walk *w = ud;
    long long app = key_number(key, klen);
    if (vlen < 8 || app <= 0 || app > INT32_MAX) {
        AG_LOG(AG_LOG_WARN, "rm", "state_row_ignored store=\"%s\" key=\"%.*s\"", e->base.name,
               (int)AG_MIN(klen, 200), (const char *)key);
        return 0;
    }
    return w->fn(w->ud, (int32_t)app, v + 8, vlen - 8, (int64_t)get64(v));
}

static int et_contexts(ag__store *s, ag__store_context_fn fn, void *ud)
{
    struct ctx_walk w = {fn, ud};
    return each(ET(s), "ctx/", ctx_row, &w);
}

static int et_attempt_put(ag__store *s, int32_t app, int32_t attempt, int64_t amc, bool finished)
{
    et_store *e = ET(s);
    size_t kl = 0;
    uint8_t *key = keyf(e, &kl, "att/%010d", (int)app), v[13];
    put32(v, (uint32_t)attempt);
    put64(v + 4, (uint64_t)amc);
    v[12] = finished;
    return put_kv(e, key, kl, v, sizeof(v), NULL, 0);
}

static int et_attempt_get(ag__store *s, int32_t app, int32_t *attempt, int64_t *amc,
                          bool *finished)
{
    et_store *e = ET(s);
    size_t kl = 0, vl = 0;
    uint8_t *key = keyf(e, &kl, "att/%010d", (int)app), *v = NULL;
    int rc = key ? get_one(e, key, kl, &v, &vl) : -1;
    ag_free(key);
    if (rc == 1 && vl == 13) {
        *attempt = (int32_t)get32(v);
        *amc = (int64_t)get64(v + 4);
        *finished = v[12] != 0;
    } else if (rc == 1) {
        rc = 0;
    }
    ag_free(v);
    return rc;
}

static int et_app_drop(ag__store *s, int32_t app)
{
    et_store *e = ET(s);
    size_t kl = 0;
    uint8_t *k1 = keyf(e, &kl, "ctx/%010d", (int)app);
    int rc = add_op(e, false, k1, kl, NULL, 0);
    uint8_t *k2 = keyf(e, &kl, "att/%010d", (int)app);
    if (rc == 0)
        rc = add_op(e, false, k2, kl, NULL, 0);
    else
        ag_free(k2);
    uint8_t *k3 = keyf(e, &kl, "grants/%010d/", (int)app);
    if (rc == 0)
        rc = del_prefix(e, k3, kl);
    else
        ag_free(k3);
    return rc;
}

static int et_grant_put(ag__store *s, const ag_sched_grant *g)
{
    et_store *e = ET(s);
    size_t kl = 0;
    uint8_t *key = keyf(e, &kl, "grants/%010d/%020lld", (int)g->app_id, (long long)g->container);
    uint8_t v[32];
    put32(v, (uint32_t)g->attempt);
    put32(v + 4, (uint32_t)g->port);
    put64(v + 8, (uint64_t)g->memory_mb);
    put32(v + 16, (uint32_t)g->vcores);
    put32(v + 20, (uint32_t)g->priority);
    put64(v + 24, (uint64_t)g->allocation_request_id);
    return put_kv(e, key, kl, v, sizeof(v), g->host, strlen(g->host));
}

static int et_grant_del(ag__store *s, int32_t app, int64_t container)
{
    et_store *e = ET(s);
    size_t kl = 0;
    uint8_t *key = keyf(e, &kl, "grants/%010d/%020lld", (int)app, (long long)container);
    return add_op(e, false, key, kl, NULL, 0);
}

static int et_grants_clear(ag__store *s)
{
    et_store *e = ET(s);
    size_t kl = 0;
    uint8_t *key = keyf(e, &kl, "grants/");
    return del_prefix(e, key, kl);
}

struct grant_walk {
    ag__store_grant_fn fn;
    void *ud;
};

static int grant_row(et_store *e, const uint8_t *key, size_t klen, const uint8_t *v, size_t vlen,
                     void *ud)
{
    struct grant_walk *w = ud;
    size_t pl = strlen(e->prefix) + strlen("/state/grants/");
    long long app = klen > pl + 10 ? key_number(key, pl + 10) : -1;
    long long container = key_number(key, klen);
    if (vlen < 32 || vlen - 32 > 255 || app <= 0 || app > INT32_MAX || container <= 0 ||
        memchr(v + 32, 0, vlen - 32)) {
        AG_LOG(AG_LOG_WARN, "rm", "state_row_ignored store=\"%s\" key=\"%.*s\"", e->base.name,
               (int)AG_MIN(klen, 200), (const char *)key);
        return 0;
    }
    char host[256];
    memcpy(host, v + 32, vlen - 32);
    host[vlen - 32] = 0;
    ag_sched_grant g = {.app_id = (int32_t)app,
                        .container = container,
                        .attempt = (int32_t)get32(v),
                        .host = host,
                        .port = (int32_t)get32(v + 4),
                        .memory_mb = (int64_t)get64(v + 8),
                        .vcores = (int32_t)get32(v + 16),
                        .priority = (int32_t)get32(v + 20),
                        .allocation_request_id = (int64_t)get64(v + 24)};
    return w->fn(w->ud, &g);
}

static int et_grants(ag__store *s, ag__store_grant_fn fn, void *ud)
{
    struct grant_walk w = {fn, ud};
    return each(ET(s), "grants/", grant_row, &w);
}

static const ag__store_ops et_ops = {
    .free = et_free,
    .identity_get = et_identity_get,
    .identity_put = et_identity_put,
    .keys_put = et_keys_put,
    .last_app_put = et_last_app_put,
    .begin = et_begin,
    .commit = et_commit,
    .report_put = et_report_put,
    .report_get = et_report_get,
    .reports_mark_lost = et_reports_mark_lost,
    .context_put = et_context_put,
    .contexts = et_contexts,
    .attempt_put = et_attempt_put,
    .attempt_get = et_attempt_get,
    .app_drop = et_app_drop,
    .grant_put = et_grant_put,
    .grant_del = et_grant_del,
    .grants_clear = et_grants_clear,
    .grants = et_grants,
};

ag__store *ag__store_etcd_open(ag__etcd *etcd, const char *prefix, const char *where, char *err,
                               size_t cap)
{
    et_store *e = ag_calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, cap, "etcd: %s", ag_strerror(AG_E_NOMEM));
        return NULL;
    }
    e->base.ops = &et_ops;
    e->etcd = etcd;
    snprintf(e->prefix, sizeof(e->prefix), "%s", prefix);
    snprintf(e->leader, sizeof(e->leader), "%s/leader", prefix);
    snprintf(e->base.name, sizeof(e->base.name), "etcd %s%s", where, prefix);
    return &e->base;
}

void ag__store_etcd_guard(ag__store *s, int64_t leader_create_revision)
{
    ET(s)->guard_rev = leader_create_revision;
    s->fenced = false;
}
