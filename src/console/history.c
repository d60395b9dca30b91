/*
 * The console's history: one SQLite table of jobs, one row per job,
 * replaced whenever the job changes (proposed, decided, started, ended),
 * so a console that restarts shows every job it knew. The parties'
 * decisions and the app's report are kept as JSON text. A job recorded as
 * running when the console starts again was cut by the stop: it becomes
 * interrupted (its child died with the console's process group, or was
 * killed by ag_console_free).
 * Callers serialize access (the console's mutex).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct ag__history {
    sqlite3 *db;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS jobs ("
    " id TEXT PRIMARY KEY, kind TEXT NOT NULL, proposer TEXT NOT NULL,"
    " parties TEXT NOT NULL, decisions TEXT NOT NULL, keys TEXT NOT NULL,"
    " receiver TEXT NOT NULL, join_kind TEXT NOT NULL, input TEXT NOT NULL,"
    " my_keys TEXT NOT NULL, output TEXT NOT NULL, state TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL,"
    " finished_ms INTEGER NOT NULL, result TEXT, error TEXT NOT NULL,"
    " label TEXT NOT NULL, epochs INTEGER NOT NULL, batch_size INTEGER NOT NULL,"
    " learning_rate REAL NOT NULL, stats TEXT NOT NULL, reveal_to TEXT NOT NULL,"
    " model TEXT NOT NULL);";

ag__history *ag__history_open(const char *path, ag_errbuf *err)
{
    ag__history *h = ag_calloc(1, sizeof(*h));
    if (!h) {
        ag_errbuf_set(err, AG_E_NOMEM, "out of memory");
        return NULL;
    }
    char *msg = NULL;
    if (sqlite3_open(path, &h->db) != SQLITE_OK ||
        sqlite3_exec(h->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        ag_errbuf_set(err, AG_E_IO, "%s: %s", path, msg ? msg : sqlite3_errmsg(h->db));
        sqlite3_free(msg);
        sqlite3_close(h->db);
        ag_free(h);
        return NULL;
    }
    sqlite3_busy_timeout(h->db, 2000);
    return h;
}

void ag__history_close(ag__history *h)
{
    if (!h)
        return;
    sqlite3_close(h->db);
    ag_free(h);
}

/* parties and decisions as JSON arrays. */
static char *parties_json(const ag__job *j, bool decisions)
{
    json_t *a = json_array();
    for (int i = 0; a && i < j->nparties; i++)
        if (json_array_append_new(a, decisions ? json_integer(j->decision[i])
                                               : json_string(j->parties[i])) < 0) {
            json_decref(a);
            a = NULL;
        }
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

int ag__history_save(ag__history *h, const ag__job *j)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    char *parties = parties_json(j, false), *decisions = parties_json(j, true);
    char *result = j->result ? json_dumps(j->result, JSON_COMPACT) : NULL;
    sqlite3_stmt *st = NULL;
    int rc = AG_E_NOMEM;
    if (!parties || !decisions || (j->result && !result))
        goto out;
    rc = AG_E_IO;
    if (sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    const char *texts[] = {j->id, j->kind, j->proposer, parties, decisions, j->keys,
                           j->receiver, j->join, j->input, j->my_keys, j->output,
                           ag__job_state_name(j->state)};
    int col = 1;
    for (size_t i = 0; i < AG_ARRAY_LEN(texts); i++)
        sqlite3_bind_text(st, col++, texts[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, col++, j->created_ms);
    sqlite3_bind_int64(st, col++, j->started_ms);
    sqlite3_bind_int64(st, col++, j->finished_ms);
    if (result)
        sqlite3_bind_text(st, col++, result, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, col++);
    sqlite3_bind_text(st, col++, j->error, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, col++, j->lr.label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, col++, j->lr.epochs);
    sqlite3_bind_int64(st, col++, j->lr.batch_size);
    sqlite3_bind_double(st, col++, j->lr.learning_rate);
    sqlite3_bind_text(st, col++, j->st.stats, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, col++, j->st.reveal_to, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, col, j->model, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_DONE)
        rc = 0;
    else
        AG_LOG(AG_LOG_WARN, "console", "history_save_failed job=%s err=\"%s\"", j->id,
               sqlite3_errmsg(h->db));
out:
    sqlite3_finalize(st);
    free(parties);
    free(decisions);
    free(result);
    return rc;
}

static void copy_col(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    snprintf(out, cap, "%s", s ? (const char *)s : "");
}

/* One row into a new job; NULL when a column is unusable (skipped). */
static ag__job *row_job(sqlite3_stmt *st)
{
    ag__job *j = ag_calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    copy_col(st, 0, j->id, sizeof(j->id));
    copy_col(st, 1, j->kind, sizeof(j->kind));
    copy_col(st, 2, j->proposer, sizeof(j->proposer));
    const char *p = (const char *)sqlite3_column_text(st, 3);
    const char *d = (const char *)sqlite3_column_text(st, 4);
    json_t *pa = p ? json_loads(p, 0, NULL) : NULL, *da = d ? json_loads(d, 0, NULL) : NULL;
    size_t n = json_array_size(pa);
    for (size_t i = 0; i < n && i < AG_CLUSTER_MAX_PARTIES; i++) {
        snprintf(j->parties[i], sizeof(j->parties[i]), "%s",
                 json_string_value(json_array_get(pa, i)) ?: "");
        j->decision[i] = (int)json_integer_value(json_array_get(da, i));
    }
    j->nparties = (int)AG_MIN(n, AG_CLUSTER_MAX_PARTIES);
    json_decref(pa);
    json_decref(da);
    copy_col(st, 5, j->keys, sizeof(j->keys));
    copy_col(st, 6, j->receiver, sizeof(j->receiver));
    copy_col(st, 7, j->join, sizeof(j->join));
    copy_col(st, 8, j->input, sizeof(j->input));
    copy_col(st, 9, j->my_keys, sizeof(j->my_keys));
    copy_col(st, 10, j->output, sizeof(j->output));
    j->mine_set = j->input[0] != '\0';
    char state[32];
    copy_col(st, 11, state, sizeof(state));
    int s = ag__job_state_parse(state);
    j->state = s < 0 ? AG__JOB_FAILED : (ag__job_state)s;
    j->created_ms = sqlite3_column_int64(st, 12);
    j->started_ms = sqlite3_column_int64(st, 13);
    j->finished_ms = sqlite3_column_int64(st, 14);
    const char *r = (const char *)sqlite3_column_text(st, 15);
    j->result = r ? json_loads(r, 0, NULL) : NULL;
    copy_col(st, 16, j->error, sizeof(j->error));
    copy_col(st, 17, j->lr.label, sizeof(j->lr.label));
    j->lr.epochs = sqlite3_column_int64(st, 18);
    j->lr.batch_size = sqlite3_column_int64(st, 19);
    j->lr.learning_rate = sqlite3_column_double(st, 20);
    copy_col(st, 21, j->st.stats, sizeof(j->st.stats));
    copy_col(st, 22, j->st.reveal_to, sizeof(j->st.reveal_to));
    copy_col(st, 23, j->model, sizeof(j->model));
    if (j->state == AG__JOB_RUNNING) {
        j->state = AG__JOB_INTERRUPTED;
        snprintf(j->error, sizeof(j->error), "the console stopped while the job ran");
    }
    return j;
}

int ag__history_load(ag__history *h, ag__job **out, ag_errbuf *err)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h->db, "SELECT * FROM jobs ORDER BY created_ms, id", -1, &st,
                           NULL) != SQLITE_OK)
        return ag_errbuf_set(err, AG_E_IO, "history: %s", sqlite3_errmsg(h->db));
    ag__job **tail = out;
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ag__job *j = row_job(st);
        if (!j) {
            sqlite3_finalize(st);
            ag__job_free_list(*out);
            *out = NULL;
            return ag_errbuf_set(err, AG_E_NOMEM, "out of memory");
        }
        *tail = j;
        tail = &j->next;
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ag__job_free_list(*out);
        *out = NULL;
        return ag_errbuf_set(err, AG_E_IO, "history: %s", sqlite3_errmsg(h->db));
    }
    for (ag__job *j = *out; j; j = j->next)
        if (j->state == AG__JOB_INTERRUPTED && j->finished_ms == 0) {
            j->finished_ms = ag_wall_ms();
            ag__history_save(h, j);
        }
    return n;
}

void ag__job_free_list(ag__job *j)
{
    while (j) {
        ag__job *next = j->next;
        json_decref(j->result);
        ag_free(j);
        j = next;
    }
}

static const char *const state_names[] = {"proposed", "declined", "running",
                                          "done", "failed", "interrupted"};

const char *ag__job_state_name(ag__job_state s)
{
    return (unsigned)s < AG_ARRAY_LEN(state_names) ? state_names[s] : "unknown";
}

int ag__job_state_parse(const char *s)
{
    for (size_t i = 0; i < AG_ARRAY_LEN(state_names); i++)
        if (strcmp(s, state_names[i]) == 0)
            return (int)i;
    return -1;
}
