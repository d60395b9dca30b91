/*
 * The RM's state in a SQLite file (store.h; `state: {sqlite: FILE}`): WAL,
 * synchronous=NORMAL (a killed RM loses nothing it committed; a crash of
 * the machine may lose the last commits), mode 0600 (it holds the master
 * keys). Tables:
 *   rm_state  one row: cluster_timestamp, epoch, last_app_id and the three
 *             signing keys (files older than the keys table have only
 *             these);
 *   keys      every master key in use by slot (signing, previous, next);
 *   apps      every application's last report (id text, state, packed
 *             ApplicationReport);
 *   app_state each unfinished application's packed submission context
 *             and start time;
 *   attempts  (app, attempt, AM container id, finished);
 *   grants    containers granted and not yet running.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "store.h"

typedef struct sq_store {
    ag__store base;
    sqlite3 *db;
} sq_store;

#define DB(s) (((sq_store *)(s))->db)

static void warn(ag__store *s, const char *what)
{
    AG_LOG(AG_LOG_WARN, "rm", "state_write_failed what=\"%s\" why=\"%s\"", what,
           sqlite3_errmsg(DB(s)));
}

/* Runs one statement with up to three integer parameters: 0 or -1 (logged). */
static int exec3(ag__store *s, const char *sql, int n, int64_t a, int64_t b, int64_t c)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(DB(s), sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        int64_t v[3] = {a, b, c};
        for (int i = 0; i < n; i++)
            sqlite3_bind_int64(st, i + 1, v[i]);
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_DONE)
        warn(s, sql);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Steps a prepared statement to its end and finalizes it: 0 or -1 (logged). */
static int step_done(ag__store *s, sqlite3_stmt *st, const char *what)
{
    int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (rc != SQLITE_DONE)
        warn(s, what);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static sqlite3_stmt *prep(ag__store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(DB(s), sql, -1, &st, NULL) != SQLITE_OK) {
        warn(s, sql);
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

static void sq_free(ag__store *s)
{
    sqlite3_close(DB(s));
    ag_free(s);
}

static void key_bind(sqlite3_stmt *st, int at, const ag_sched_key *k)
{
    sqlite3_bind_int(st, at, k->id);
    sqlite3_bind_blob(st, at + 1, k->bytes, sizeof(k->bytes), SQLITE_TRANSIENT);
}

static bool key_column(sqlite3_stmt *st, int at, ag_sched_key *k)
{
    const void *b = sqlite3_column_blob(st, at + 1);
    if (!b || sqlite3_column_bytes(st, at + 1) != (int)sizeof(k->bytes))
        return false;
    k->id = sqlite3_column_int(st, at);
    memcpy(k->bytes, b, sizeof(k->bytes));
    return true;
}

static int sq_keys_put(ag__store *s, const ag_sched_keys *k)
{
    int rc = exec3(s, "BEGIN", 0, 0, 0, 0);
    bool began = rc == 0;
    for (size_t i = 0; i < AG__SCHED_KEY_SLOTS; i++) {
        const ag_sched_key *x = ag__sched_key_slot((ag_sched_keys *)k, i);
        sqlite3_stmt *st =
            prep(s, x->id ? "INSERT OR REPLACE INTO keys(slot, key_id, key) VALUES(?, ?, ?)"
                          : "DELETE FROM keys WHERE slot = ?");
        if (st) {
            sqlite3_bind_text(st, 1, ag__sched_key_slot_name(i), -1, SQLITE_STATIC);
            if (x->id)
                key_bind(st, 2, x);
        }
        if (step_done(s, st, "keys") < 0)
            rc = -1;
    }
    if (began && exec3(s, "COMMIT", 0, 0, 0, 0) < 0)
        rc = -1;
    return rc;
}

static int sq_identity_get(ag__store *s, ag__store_identity *id, ag_sched_keys *k, bool *found,
                           char *err, size_t cap)
{
    sqlite3_stmt *st = NULL;
    *found = false;
    if (sqlite3_prepare_v2(DB(s), "SELECT cluster_timestamp, epoch, last_app_id, "
                           "container_key_id, container_key, nm_key_id, nm_key, amrm_key_id, "
                           "amrm_key FROM rm_state WHERE one = 1", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        id->cluster_timestamp = sqlite3_column_int64(st, 0);
        id->epoch = sqlite3_column_int64(st, 1);
        id->last_app_id = sqlite3_column_int64(st, 2);
        *found = true;
        if (!key_column(st, 3, &k->container) || !key_column(st, 5, &k->nm) ||
            !key_column(st, 7, &k->amrm)) {
            snprintf(err, cap, "%s: rm_state: a master key is not %d bytes", s->name,
                     AG_SCHED_KEY_BYTES);
            sqlite3_finalize(st);
            return AG_E_IO;
        }
    }
    sqlite3_finalize(st);
    if (!*found)
        return 0;
    st = prep(s, "SELECT slot, key_id, key FROM keys");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *slot = (const char *)sqlite3_column_text(st, 0);
        for (size_t i = 0; slot && i < AG__SCHED_KEY_SLOTS; i++)
            if (strcmp(slot, ag__sched_key_slot_name(i)) == 0 &&
                !key_column(st, 1, ag__sched_key_slot(k, i)))
                AG_LOG(AG_LOG_WARN, "rm", "state_key_ignored slot=%s why=\"not %d bytes\"", slot,
                       AG_SCHED_KEY_BYTES);
    }
    sqlite3_finalize(st);
    return 0;
}

static int sq_identity_put(ag__store *s, const ag__store_identity *id, const ag_sched_keys *k,
                           char *err, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(DB(s), "INSERT OR REPLACE INTO rm_state VALUES(1, ?, ?, ?, ?, ?, "
                                "?, ?, ?, ?)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id->cluster_timestamp);
        sqlite3_bind_int64(st, 2, id->epoch);
        sqlite3_bind_int64(st, 3, id->last_app_id);
        key_bind(st, 4, &k->container);
        key_bind(st, 6, &k->nm);
        key_bind(st, 8, &k->amrm);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, cap, "%s: cannot write the RM's identity: %s", s->name,
                 sqlite3_errmsg(DB(s)));
        return AG_E_IO;
    }
    return sq_keys_put(s, k);
}

static int sq_last_app_put(ag__store *s, int64_t last)
{
    return exec3(s, "UPDATE rm_state SET last_app_id = ? WHERE one = 1", 1, last, 0, 0);
}

static int sq_begin(ag__store *s)
{
    return exec3(s, "BEGIN", 0, 0, 0, 0);
}

static int sq_commit(ag__store *s)
{
    return exec3(s, "COMMIT", 0, 0, 0, 0);
}

static int sq_report_put(ag__store *s, const char *id, int state, const uint8_t *r, size_t len)
{
    sqlite3_stmt *st = prep(s, "INSERT OR REPLACE INTO apps(id, state, report) VALUES(?, ?, ?)");
    if (st) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, state);
        sqlite3_bind_blob(st, 3, r, (int)len, SQLITE_STATIC);
    }
    return step_done(s, st, "apps");
}

static int sq_report_get(ag__store *s, const char *id, int *state, uint8_t **r, size_t *len)
{
    sqlite3_stmt *st = prep(s, "SELECT state, report FROM apps WHERE id = ?");
    int found = 0;
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(st, 1);
        int n = sqlite3_column_bytes(st, 1);
        *state = sqlite3_column_int(st, 0);
        *r = ag_malloc((size_t)n + 1);
        if (*r) {
            if (n > 0)
                memcpy(*r, b, (size_t)n);
            *len = (size_t)n;
            found = 1;
        } else {
            found = -1;
        }
    }
    sqlite3_finalize(st);
    return found;
}

static int sq_reports_mark_lost(ag__store *s)
{
    return exec3(s, "UPDATE apps SET state = -1 WHERE state NOT IN (5, 6, 7)", 0, 0, 0, 0);
}

static int sq_context_put(ag__store *s, int32_t app, const uint8_t *ctx, size_t len,
                          int64_t start_ms)
{
    sqlite3_stmt *st =
        prep(s, "INSERT OR REPLACE INTO app_state(app, context, start_ms) VALUES(?, ?, ?)");
    if (st) {
        sqlite3_bind_int64(st, 1, app);
        sqlite3_bind_blob(st, 2, ctx, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, start_ms);
    }
    return step_done(s, st, "app_state");
}

static int sq_contexts(ag__store *s, ag__store_context_fn fn, void *ud)
{
    sqlite3_stmt *st = prep(s, "SELECT app, context, start_ms FROM app_state ORDER BY app");
    if (!st)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW)
        fn(ud, (int32_t)sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
           (size_t)sqlite3_column_bytes(st, 1), sqlite3_column_int64(st, 2));
    sqlite3_finalize(st);
    return 0;
}

static int sq_attempt_put(ag__store *s, int32_t app, int32_t attempt, int64_t amc, bool finished)
{
    int rc = exec3(s, "UPDATE attempts SET finished = 1 WHERE app = ? AND attempt < ?", 2, app,
                   attempt, 0);
    sqlite3_stmt *st = prep(s, "INSERT OR REPLACE INTO attempts(app, attempt, am_container, "
                               "finished) VALUES(?, ?, ?, ?)");
    if (st) {
        sqlite3_bind_int64(st, 1, app);
        sqlite3_bind_int64(st, 2, attempt);
        sqlite3_bind_int64(st, 3, amc);
        sqlite3_bind_int(st, 4, finished);
    }
    return step_done(s, st, "attempts") < 0 ? -1 : rc;
}

static int sq_attempt_get(ag__store *s, int32_t app, int32_t *attempt, int64_t *amc,
                          bool *finished)
{
    sqlite3_stmt *st = prep(s, "SELECT attempt, am_container, finished FROM attempts "
                               "WHERE app = ? ORDER BY attempt DESC LIMIT 1");
    int found = 0;
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, app);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *attempt = (int32_t)sqlite3_column_int64(st, 0);
        *amc = sqlite3_column_int64(st, 1);
        *finished = sqlite3_column_int(st, 2) != 0;
        found = 1;
    }
    sqlite3_finalize(st);
    return found;
}

static int sq_app_drop(ag__store *s, int32_t app)
{
    int rc = exec3(s, "DELETE FROM grants WHERE app = ?", 1, app, 0, 0);
    rc |= exec3(s, "DELETE FROM attempts WHERE app = ?", 1, app, 0, 0);
    rc |= exec3(s, "DELETE FROM app_state WHERE app = ?", 1, app, 0, 0);
    return rc ? -1 : 0;
}

static int sq_grant_put(ag__store *s, const ag_sched_grant *g)
{
    sqlite3_stmt *st = prep(s, "INSERT OR REPLACE INTO grants(app, container, attempt, host,"
                               " port, memory_mb, vcores, priority, arid) VALUES(?, ?, ?, ?, ?, ?,"
                               " ?, ?, ?)");
    if (st) {
        sqlite3_bind_int64(st, 1, g->app_id);
        sqlite3_bind_int64(st, 2, g->container);
        sqlite3_bind_int64(st, 3, g->attempt);
        sqlite3_bind_text(st, 4, g->host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, g->port);
        sqlite3_bind_int64(st, 6, g->memory_mb);
        sqlite3_bind_int64(st, 7, g->vcores);
        sqlite3_bind_int64(st, 8, g->priority);
        sqlite3_bind_int64(st, 9, g->allocation_request_id);
    }
    return step_done(s, st, "grants");
}

static int sq_grant_del(ag__store *s, int32_t app, int64_t container)
{
    return exec3(s, "DELETE FROM grants WHERE app = ? AND container = ?", 2, app, container, 0);
}

static int sq_grants_clear(ag__store *s)
{
    return exec3(s, "DELETE FROM grants", 0, 0, 0, 0);
}

static int sq_grants(ag__store *s, ag__store_grant_fn fn, void *ud)
{
    sqlite3_stmt *st = prep(s, "SELECT app, container, attempt, host, port, memory_mb, "
                               "vcores, priority, arid FROM grants ORDER BY app, container");
    if (!st)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *host = (const char *)sqlite3_column_text(st, 3);
        ag_sched_grant g = {.app_id = (int32_t)sqlite3_column_int64(st, 0),
                            .container = sqlite3_column_int64(st, 1),
                            .attempt = (int32_t)sqlite3_column_int64(st, 2),
                            .host = host ? host : "",
                            .port = (int32_t)sqlite3_column_int64(st, 4),
                            .memory_mb = sqlite3_column_int64(st, 5),
                            .vcores = (int32_t)sqlite3_column_int64(st, 6),
                            .priority = (int32_t)sqlite3_column_int64(st, 7),
                            .allocation_request_id = sqlite3_column_int64(st, 8)};
        fn(ud, &g);
    }
    sqlite3_finalize(st);
    return 0;
}

static const ag__store_ops sq_ops = {
    .free = sq_free,
    .identity_get = sq_identity_get,
    .identity_put = sq_identity_put,
    .keys_put = sq_keys_put,
    .last_app_put = sq_last_app_put,
    .begin = sq_begin,
    .commit = sq_commit,
    .report_put = sq_report_put,
    .report_get = sq_report_get,
    .reports_mark_lost = sq_reports_mark_lost,
    .context_put = sq_context_put,
    .contexts = sq_contexts,
    .attempt_put = sq_attempt_put,
    .attempt_get = sq_attempt_get,
    .app_drop = sq_app_drop,
    .grant_put = sq_grant_put,
    .grant_del = sq_grant_del,
    .grants_clear = sq_grants_clear,
    .grants = sq_grants,
};

ag__store *ag__store_sqlite_open(const char *path, char *err, size_t cap)
{
    sq_store *q = ag_calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, cap, "state %s: %s", path, ag_strerror(AG_E_NOMEM));
        return NULL;
    }
    q->base.ops = &sq_ops;
    snprintf(q->base.name, sizeof(q->base.name), "state %s", path);
    if (sqlite3_open_v2(path, &q->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, cap, "state %s: %s", path, q->db ? sqlite3_errmsg(q->db) : "cannot open");
        sq_free(&q->base);
        return NULL;
    }
    /* it holds the master keys; SQLite gives its -wal and -shm files the
     * same mode */
    if (chmod(path, 0600) < 0)
        AG_LOG(AG_LOG_WARN, "rm", "state_chmod_failed file=%s", path);
    static const char *const setup =
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "CREATE TABLE IF NOT EXISTS apps(id TEXT PRIMARY KEY, state INTEGER NOT NULL,"
        " report BLOB NOT NULL);"
        "CREATE TABLE IF NOT EXISTS rm_state(one INTEGER PRIMARY KEY CHECK (one = 1),"
        " cluster_timestamp INTEGER NOT NULL, epoch INTEGER NOT NULL,"
        " last_app_id INTEGER NOT NULL,"
        " container_key_id INTEGER NOT NULL, container_key BLOB NOT NULL,"
        " nm_key_id INTEGER NOT NULL, nm_key BLOB NOT NULL,"
        " amrm_key_id INTEGER NOT NULL, amrm_key BLOB NOT NULL);"
        "CREATE TABLE IF NOT EXISTS app_state(app INTEGER PRIMARY KEY,"
        " context BLOB NOT NULL, start_ms INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS attempts(app INTEGER NOT NULL, attempt INTEGER NOT NULL,"
        " am_container INTEGER NOT NULL, finished INTEGER NOT NULL,"
        " PRIMARY KEY(app, attempt));"
        "CREATE TABLE IF NOT EXISTS keys(slot TEXT PRIMARY KEY, key_id INTEGER NOT NULL,"
        " key BLOB NOT NULL);"
        "CREATE TABLE IF NOT EXISTS grants(app INTEGER NOT NULL, container INTEGER NOT NULL,"
        " attempt INTEGER NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL,"
        " memory_mb INTEGER NOT NULL, vcores INTEGER NOT NULL, priority INTEGER NOT NULL,"
        " arid INTEGER NOT NULL, PRIMARY KEY(app, container));";
    char *msg = NULL;
    if (sqlite3_exec(q->db, setup, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, cap, "state %s: %s", path, msg ? msg : sqlite3_errmsg(q->db));
        sqlite3_free(msg);
        sq_free(&q->base);
        return NULL;
    }
    return &q->base;
}
