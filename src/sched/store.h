/*
 * The RM's state store (rm.c writes, nothing else does): what a restarted
 * or newly active RM needs to carry on (see docs/ARCHITECTURE.md, sched,
 * "State and work-preserving restart"). Two kinds behind one table of
 * functions: SQLite on a local file (store_sqlite.c, `state: {sqlite}`)
 * and etcd (store_etcd.c, `ha:`), where every write is a transaction that
 * holds only while this RM is still the elected one (fencing).
 *
 * Writes return 0, or -1 (logged; the RM carries on: a SQLite error, or
 * an etcd that could not be reached for a while) or AG__STORE_FENCED: the
 * store refused because another RM holds the lead, and s->fenced stays
 * set: the RM must stop acting at once. Between begin and commit, writes
 * are collected and applied together (etcd: one transaction per 100
 * operations). Reads see what was committed.
 */
#ifndef ARGOT_SCHED_STORE_H
#define ARGOT_SCHED_STORE_H

#include "argot/base.h"
#include "scheduler.h"

#define AG__STORE_FENCED (-2)

typedef struct ag__store ag__store;

typedef struct ag__store_identity {
    int64_t cluster_timestamp;
    int64_t epoch;       /* starts of an RM on this store, from 0 */
    int64_t last_app_id;
} ag__store_identity;

typedef int (*ag__store_context_fn)(void *ud, int32_t app, const uint8_t *ctx, size_t len,
                                    int64_t start_ms);
typedef int (*ag__store_grant_fn)(void *ud, const ag_sched_grant *g);

typedef struct ag__store_ops {
    void (*free)(ag__store *s);
    /* *found false on an empty store; k gets every stored key */
    int (*identity_get)(ag__store *s, ag__store_identity *id, ag_sched_keys *k, bool *found,
                        char *err, size_t cap);
    int (*identity_put)(ag__store *s, const ag__store_identity *id, const ag_sched_keys *k,
                        char *err, size_t cap);
    int (*keys_put)(ag__store *s, const ag_sched_keys *k);
    int (*last_app_put)(ag__store *s, int64_t last_app_id);
    int (*begin)(ag__store *s);
    int (*commit)(ag__store *s);
    int (*report_put)(ag__store *s, const char *id, int state, const uint8_t *r, size_t len);
    /* 1 with *r (ag_free) and *state, 0 when absent */
    int (*report_get)(ag__store *s, const char *id, int *state, uint8_t **r, size_t *len);
    /* every report whose state is not final gets state -1 (lost) */
    int (*reports_mark_lost)(ag__store *s);
    int (*context_put)(ag__store *s, int32_t app, const uint8_t *ctx, size_t len,
                       int64_t start_ms);
    int (*contexts)(ag__store *s, ag__store_context_fn fn, void *ud);
    /* the latest attempt's row, marking earlier ones finished */
    int (*attempt_put)(ag__store *s, int32_t app, int32_t attempt, int64_t am_container,
                       bool finished);
    /* 1 with the latest attempt, 0 when none */
    int (*attempt_get)(ag__store *s, int32_t app, int32_t *attempt, int64_t *am_container,
                       bool *finished);
    /* its context, attempts and grants go (an application that ended, or
     * one that cannot be recovered) */
    int (*app_drop)(ag__store *s, int32_t app);
    int (*grant_put)(ag__store *s, const ag_sched_grant *g);
    int (*grant_del)(ag__store *s, int32_t app, int64_t container);
    int (*grants_clear)(ag__store *s);
    int (*grants)(ag__store *s, ag__store_grant_fn fn, void *ud);
} ag__store_ops;

struct ag__store {
    const ag__store_ops *ops;
    char name[1100]; /* "state rm.db", "etcd 127.0.0.1:2379/argot/rm": for messages */
    bool fenced;
};

/* The master keys by slot, as stored: the signing, previous and next
 * keys, in ag_sched_keys order. */
#define AG__SCHED_KEY_SLOTS 8

static inline const char *ag__sched_key_slot_name(size_t i)
{
    static const char *const names[AG__SCHED_KEY_SLOTS] = {
        "container",      "nm",      "amrm",           "prev_container",
        "prev_nm",        "prev_amrm", "next_container", "next_nm"};
    return names[i];
}

static inline ag_sched_key *ag__sched_key_slot(ag_sched_keys *k, size_t i)
{
    ag_sched_key *v[AG__SCHED_KEY_SLOTS] = {&k->container,      &k->nm,        &k->amrm,
                                            &k->prev_container, &k->prev_nm,   &k->prev_amrm,
                                            &k->next_container, &k->next_nm};
    return v[i];
}

/* NULL with err set. */
ag__store *ag__store_sqlite_open(const char *path, char *err, size_t cap);

/* The state under prefix (no trailing '/') in etcd, through etcd (which
 * must outlive the store); where names the endpoints in messages. Writes
 * are refused (FENCED) until ag__store_etcd_guard gives the revision at
 * which this RM's election created prefix/leader. */
struct ag__etcd;
ag__store *ag__store_etcd_open(struct ag__etcd *etcd, const char *prefix, const char *where,
                               char *err, size_t cap);
void ag__store_etcd_guard(ag__store *s, int64_t leader_create_revision);

#endif
