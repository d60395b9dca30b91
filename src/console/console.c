/*
 * The console (console.h): state, the peer consoles' service, the sender
 * thread, the gateway's and the RM's state, and the jobs' processes. The
 * page and its JSON API are in api.c.
 *
 * A job's life, for a proposal of party P to the others (every party of
 * the cluster takes part; the apps run here are between two parties):
 *   1. P's analyst submits the form: P records the job as proposed with
 *      P's own approval and sends "propose" to every other party.
 *   2. Each other party Q records it as proposed; Q's analyst approves
 *      (naming Q's input, key columns and output) or declines; Q sends
 *      "decide" to P. A decline ends the job at Q and, once P hears it, at P.
 *   3. When P holds every approval it sends "start" to the others and starts
 *      its own process; Q starts its process on "start" only if Q's analyst
 *      approved, so a console never computes for a job its party did not
 *      approve, whatever the peers say.
 *   4. Each process is a child (`EXE psi|lr train|lr predict|stats --config
 *      C --party Q --session ID ...`); its waiter thread records the outcome
 *      (from --report-json, stats' --out, lr train's --progress-json, or for
 *      a prediction at the label party, the evaluation of its scores).
 * Invariants:
 *   1. decision[i] of a party other than this one changes only on a
 *      "decide" message from that party (its certificate's name, with tls),
 *      and this party's only through this console's API.
 *   2. At most one job of this console is running (the jobs of a cluster
 *      share its parties' link addresses); a start while one runs fails the
 *      job with "busy".
 *   3. Every change of a job is written to the history before the lock is
 *      released.
 * Locking: one mutex (mu) over jobs, peers, the send queue and the views'
 * state; nothing blocks on the network or a process while holding it (the
 * small local files of a job's outcome and the history's SQLite writes are
 * done under it).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "console_int.h"

extern char **environ;

#define PEER_METHOD "/argot.console.v1.Console/Send"
#define PEER_DEADLINE_MS 3000
/* How long a message is retried while its peer console is unreachable
 * (a console that restarts, or starts a moment after this one). */
#define PEER_RETRY_MS 15000
#define PEER_RETRY_EVERY_MS 250

/* ---- the send queue and the sender thread ---- */

/* Queues msg for party `to` (under mu). On allocation failure the job (if
 * any) fails: a proposal that cannot leave must not wait forever. */
void ag__console_send(ag_console *c, int to, const ag__console_msg *m)
{
    struct outmsg *o = ag_calloc(1, sizeof(*o));
    char *text = o ? ag__console_msg_encode(m) : NULL;
    if (!text) {
        ag_free(o);
        ag__job *j = ag__console_find(c, m->id);
        if (j)
            ag__console_end(c, j, AG__JOB_FAILED, "out of memory sending to a peer console");
        return;
    }
    o->to = to;
    o->text = text;
    o->next_try_ms = ag_now_ms();
    o->give_up_ms = o->next_try_ms + PEER_RETRY_MS;
    snprintf(o->id, sizeof(o->id), "%s", m->id);
    *c->qtail = o;
    c->qtail = &o->next;
    pthread_cond_signal(&c->cv);
}

/* One unary call to a peer console; 0 or the status, with *why. */
static int call_peer(ag_console *c, int to, const char *text, char *why, size_t cap)
{
    uint8_t *resp = NULL;
    size_t rlen = 0;
    char *msg = NULL;
    int st = ag_rpc_unary(c->chans[to], PEER_METHOD, text, strlen(text),
                          ag_deadline_in_ms(PEER_DEADLINE_MS), &resp, &rlen, &msg);
    if (st != AG_RPC_OK)
        snprintf(why, cap, "%s: %s", ag_rpc_status_name(st), msg ? msg : "");
    ag_free(resp);
    ag_free(msg);
    return st;
}

static void ping_peers(ag_console *c)
{
    ag__console_msg m = {.type = AG__MSG_PING};
    snprintf(m.from, sizeof(m.from), "%s", c->cl.names[c->me]);
    char *text = ag__console_msg_encode(&m);
    if (!text)
        return;
    for (int i = 0; i < c->cl.n; i++) {
        if (i == c->me)
            continue;
        char why[300] = "";
        uint64_t t0 = ag_now_ns();
        int st = call_peer(c, i, text, why, sizeof(why));
        double rtt = (double)(ag_now_ns() - t0) / 1e6;
        pthread_mutex_lock(&c->mu);
        c->peers[i].checked = true;
        c->peers[i].up = st == AG_RPC_OK;
        c->peers[i].rtt_ms = st == AG_RPC_OK ? rtt : 0;
        snprintf(c->peers[i].why, sizeof(c->peers[i].why), "%s", why);
        pthread_mutex_unlock(&c->mu);
    }
    ag_free(text);
}

/* Reads the gateway's state (sender thread, without mu) and keeps it. */
static void read_mesh(ag_console *c)
{
    ag_buf resp;
    ag_buf_init(&resp, AG__CONSOLE_MESH_MAX);
    ag_errbuf err = {0};
    json_t *st = NULL;
    int rc = ag__console_http_get(c->mesh_admin, "/admin/state.json", &resp, &err);
    if (rc == 0)
        rc = ag__console_mesh_parse(resp.data, resp.len, &st, &err);
    ag_buf_cleanup(&resp);
    pthread_mutex_lock(&c->mu);
    if (rc == 0) {
        json_decref(c->mesh_state);
        c->mesh_state = st;
        c->mesh_at_ms = ag_wall_ms();
        c->mesh_why[0] = '\0';
    } else {
        snprintf(c->mesh_why, sizeof(c->mesh_why), "%s", err.msg);
    }
    pthread_mutex_unlock(&c->mu);
}

/* Reads the RM's nodes, applications and queues (sender thread, without
 * mu) and keeps them. */
static void read_rm(ag_console *c)
{
    ag_errbuf err = {0};
    json_t *st = NULL;
    int rc = ag__console_rm_read(c->rm_chan, c->rm, &st, &err);
    pthread_mutex_lock(&c->mu);
    if (rc == 0) {
        json_decref(c->rm_state);
        c->rm_state = st;
        c->rm_why[0] = '\0';
    } else {
        snprintf(c->rm_why, sizeof(c->rm_why), "%s", err.msg);
    }
    pthread_mutex_unlock(&c->mu);
}

/* Takes the first message that is due off the queue (under mu); NULL if
 * none is, with *earliest the time the first one will be (or unchanged). */
static struct outmsg *take_due(ag_console *c, uint64_t now, uint64_t *earliest)
{
    for (struct outmsg **p = &c->queue; *p; p = &(*p)->next) {
        struct outmsg *o = *p;
        if (o->next_try_ms <= now) {
            *p = o->next;
            if (!*p)
                c->qtail = p;
            o->next = NULL;
            return o;
        }
        if (o->next_try_ms < *earliest)
            *earliest = o->next_try_ms;
    }
    return NULL;
}

/* A message could not be delivered (under mu): again later if its peer
 * was unreachable and there is time left, else its job fails. */
static void undelivered(ag_console *c, struct outmsg *o, int status, const char *why)
{
    uint64_t now = ag_now_ms();
    if ((status == AG_RPC_UNAVAILABLE || status == AG_RPC_DEADLINE_EXCEEDED) &&
        now < o->give_up_ms && !c->stopping) {
        o->next_try_ms = now + PEER_RETRY_EVERY_MS;
        *c->qtail = o;
        c->qtail = &o->next;
        return;
    }
    ag__job *j = ag__console_find(c, o->id);
    if (j && (j->state == AG__JOB_PROPOSED || j->state == AG__JOB_RUNNING)) {
        char msg[512];
        snprintf(msg, sizeof(msg), "party %s's console: %s", c->cl.names[o->to], why);
        if (j->state == AG__JOB_RUNNING && j->pid > 0) {
            kill(j->pid, SIGTERM); /* the peer will not join: do not wait for it */
            snprintf(j->error, sizeof(j->error), "%s", msg);
        } else {
            ag__console_end(c, j, AG__JOB_FAILED, msg);
        }
    }
    ag_free(o->text);
    ag_free(o);
}

/* Sends the queue's messages, and pings every ping_ms, until stopping. */
static void *sender_main(void *ud)
{
    ag_console *c = ud;
    uint64_t next_ping = 0;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        uint64_t now = ag_now_ms(), wake = next_ping;
        struct outmsg *o = take_due(c, now, &wake);
        if (o) {
            pthread_mutex_unlock(&c->mu);
            char why[300] = "";
            int st = call_peer(c, o->to, o->text, why, sizeof(why));
            pthread_mutex_lock(&c->mu);
            if (st == AG_RPC_OK) {
                ag_free(o->text);
                ag_free(o);
            } else {
                undelivered(c, o, st, why);
            }
            continue;
        }
        if (now >= next_ping) {
            pthread_mutex_unlock(&c->mu);
            ping_peers(c);
            if (c->mesh_admin[0])
                read_mesh(c);
            if (c->rm_chan)
                read_rm(c);
            pthread_mutex_lock(&c->mu);
            next_ping = ag_now_ms() + c->ping_ms;
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t wait = wake > now ? wake - now : 1;
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- jobs ---- */

ag__job *ag__console_find(ag_console *c, const char *id)
{
    for (ag__job *j = c->jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

int ag__console_rank_in(const ag__job *j, const char *party)
{
    for (int i = 0; i < j->nparties; i++)
        if (strcmp(j->parties[i], party) == 0)
            return i;
    return -1;
}

void ag__console_add(ag_console *c, ag__job *j)
{
    ag__job **tail = &c->jobs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = j;
    ag__history_save(c->hist, j);
}

void ag__console_end(ag_console *c, ag__job *j, ag__job_state s, const char *why)
{
    j->state = s;
    j->finished_ms = ag_wall_ms();
    snprintf(j->error, sizeof(j->error), "%s", why ? why : "");
    AG_LOG(AG_LOG_INFO, "console", "job_end id=%s state=%s", j->id, ag__job_state_name(s));
    ag__history_save(c->hist, j);
}

/* WORKDIR/ID.PARTY.EXT: a job's log, report or progress file (the party in
 * the name, so two consoles may share a directory). */
static void report_path(const ag_console *c, const ag__job *j, const char *ext, char *out,
                        size_t cap)
{
    snprintf(out, cap, "%s/%s.%s.%s", c->workdir, j->id, c->cl.names[c->me], ext);
}

json_t *ag__console_progress(const ag_console *c, const ag__job *j, bool last_only)
{
    char path[AG__CONSOLE_PATH_MAX + 80];
    report_path(c, j, "progress", path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    json_t *a = json_array();
    char line[512];
    while (a && fgets(line, sizeof(line), f)) {
        json_t *e = json_loads(line, 0, NULL);
        if (!json_is_object(e)) {
            json_decref(e); /* a line being written */
            continue;
        }
        if (last_only)
            json_array_clear(a);
        json_array_append_new(a, e);
    }
    fclose(f);
    return a;
}

/* The last non-empty line of the job's log, for its error. */
static void last_line(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0])
            snprintf(out, cap, "%.500s", line);
    }
    fclose(f);
}

/* A finished lr-predict's result (waiter thread, reading files without
 * mu): {"receiver": false} at a party without the label; at the label
 * party {"receiver": true, "evaluation": {rows, positives, accuracy, auc}}
 * or, when the files do not join, {"receiver": true, "evaluation_error"}.
 * NULL for other jobs, a failed process, or no memory. */
static json_t *evaluate(ag_console *c, const char *id, bool ok)
{
    char input[AG__CONSOLE_PATH_MAX], keys[AG__CONSOLE_KEYS_MAX], scores[AG__CONSOLE_PATH_MAX];
    char label[sizeof(((ag__job *)0)->lr.label)];
    pthread_mutex_lock(&c->mu);
    ag__job *j = ag__console_find(c, id);
    bool predict = ok && j && strcmp(j->kind, "lr-predict") == 0;
    const char *col = predict ? ag__console_label_col(j->lr.label, c->cl.names[c->me]) : NULL;
    if (predict) {
        snprintf(input, sizeof(input), "%s", j->input);
        snprintf(keys, sizeof(keys), "%s", j->my_keys);
        snprintf(scores, sizeof(scores), "%s", j->output);
        snprintf(label, sizeof(label), "%s", col ? col : "");
    }
    pthread_mutex_unlock(&c->mu);
    if (!predict)
        return NULL;
    json_t *r = json_pack("{s:b}", "receiver", col != NULL);
    if (!r || !col)
        return r;
    json_t *e = NULL;
    ag_errbuf err = {0};
    if (ag__console_evaluate(input, keys, label, scores, &e, &err) == 0)
        json_object_set_new(r, "evaluation", e);
    else
        json_object_set_new(r, "evaluation_error", json_string(err.msg));
    return r;
}

struct waiter {
    ag_console *c;
    pid_t pid;
    char id[AG__CONSOLE_ID_MAX];
};

/* Waits for a job's process, then records its outcome. */
static void *waiter_main(void *ud)
{
    struct waiter *w = ud;
    ag_console *c = w->c;
    int status = 0;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
        ;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    json_t *eval = evaluate(c, w->id, ok);
    pthread_mutex_lock(&c->mu);
    ag__job *j = ag__console_find(c, w->id);
    if (j && j->state == AG__JOB_RUNNING) {
        char rpath[AG__CONSOLE_PATH_MAX + 80], lpath[AG__CONSOLE_PATH_MAX + 80], why[600];
        report_path(c, j, "json", rpath, sizeof(rpath));
        report_path(c, j, "log", lpath, sizeof(lpath));
        j->pid = 0;
        bool own_report = strcmp(j->kind, "psi") == 0 || strcmp(j->kind, "lr-train") == 0;
        json_t *r = ok && own_report ? json_load_file(rpath, 0, NULL) : NULL;
        if (ok && strcmp(j->kind, "lr-predict") == 0) {
            r = eval;
            eval = NULL;
        }
        if (ok && strcmp(j->kind, "stats") == 0) {
            /* argot stats writes its results only at the parties that learn them */
            char spath[AG__CONSOLE_PATH_MAX + 80];
            report_path(c, j, "stats.json", spath, sizeof(spath));
            json_t *st = json_load_file(spath, 0, NULL);
            r = json_pack("{s:b}", "learned", st != NULL);
            if (r && st)
                json_object_set_new(r, "stats", st);
            else
                json_decref(st);
        }
        if (r) {
            if (strcmp(j->kind, "lr-train") == 0) {
                json_t *p = ag__console_progress(c, j, false);
                json_t *losses = json_array();
                for (size_t i = 0; losses && i < json_array_size(p); i++)
                    json_array_append(losses, json_object_get(json_array_get(p, i), "loss"));
                json_object_set_new(r, "losses", losses ? losses : json_array());
                json_decref(p);
            }
            j->result = r;
            ag__console_end(c, j, AG__JOB_DONE, NULL);
        } else {
            last_line(lpath, why, sizeof(why));
            if (j->error[0]) /* a reason recorded while it ran (a peer went away) */
                snprintf(why, sizeof(why), "%s", j->error);
            else if (!why[0] && WIFSIGNALED(status))
                snprintf(why, sizeof(why), "the job's process died of signal %d",
                         WTERMSIG(status));
            else if (!why[0])
                snprintf(why, sizeof(why), "the job's process wrote no report");
            ag__console_end(c, j, AG__JOB_FAILED, why);
        }
    }
    c->running--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    json_decref(eval);
    ag_free(w);
    return NULL;
}

/* Whether party `me` is in a stats job's --reveal-to ("all" or a list). */
static bool learns(const ag__job *j, const char *me)
{
    if (strcmp(j->st.reveal_to, "all") == 0)
        return true;
    size_t n = strlen(me);
    for (const char *p = j->st.reveal_to; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, me, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

/* Starts this party's process for j (under mu). */
void ag__console_run(ag_console *c, ag__job *j)
{
    if (c->stopping) {
        ag__console_end(c, j, AG__JOB_FAILED, "the console stopped before the job started");
        return;
    }
    if (c->running > 0) {
        ag__console_end(c, j, AG__JOB_FAILED, "busy: another job runs at this party");
        return;
    }
    char rpath[AG__CONSOLE_PATH_MAX + 80], lpath[AG__CONSOLE_PATH_MAX + 80];
    report_path(c, j, "json", rpath, sizeof(rpath));
    report_path(c, j, "log", lpath, sizeof(lpath));
    unlink(rpath);
    char ppath[AG__CONSOLE_PATH_MAX + 80], spath[AG__CONSOLE_PATH_MAX + 80];
    char epochs[24], batch[24], rate[40];
    report_path(c, j, "progress", ppath, sizeof(ppath));
    report_path(c, j, "stats.json", spath, sizeof(spath));
    unlink(ppath);
    unlink(spath);
    bool lr = strcmp(j->kind, "lr-train") == 0, st = strcmp(j->kind, "stats") == 0;
    bool pr = strcmp(j->kind, "lr-predict") == 0;
    const char *argv[40];
    int n = 0;
    argv[n++] = c->exe;
    argv[n++] = lr || pr ? "lr" : st ? "stats" : "psi";
    if (lr || pr)
        argv[n++] = lr ? "train" : "predict";
    argv[n++] = "--config";
    argv[n++] = c->config;
    argv[n++] = "--party";
    argv[n++] = c->cl.names[c->me];
    argv[n++] = "--session";
    argv[n++] = j->id;
    argv[n++] = "--in";
    argv[n++] = j->input;
    argv[n++] = "--key";
    argv[n++] = j->my_keys;
    if (j->output[0] && !st) {
        argv[n++] = lr ? "--model-out" : "--out";
        argv[n++] = j->output;
    }
    if (pr) {
        argv[n++] = "--model";
        argv[n++] = j->model;
    }
    if (st) {
        const char *more[] = {"--stats", j->st.stats, "--reveal-to", j->st.reveal_to, "--out",
                              spath};
        /* --out only where the results are revealed (argot stats refuses it elsewhere) */
        size_t nmore = learns(j, c->cl.names[c->me]) ? AG_ARRAY_LEN(more) : 4;
        for (size_t i = 0; i < nmore; i++)
            argv[n++] = more[i];
    }
    if (lr) {
        snprintf(epochs, sizeof(epochs), "%lld", (long long)j->lr.epochs);
        snprintf(batch, sizeof(batch), "%lld", (long long)j->lr.batch_size);
        snprintf(rate, sizeof(rate), "%.17g", j->lr.learning_rate);
        const char *more[] = {"--label", j->lr.label, "--epochs", epochs, "--batch-size", batch,
                              "--learning-rate", rate, "--progress-json", ppath};
        for (size_t i = 0; i < AG_ARRAY_LEN(more); i++)
            argv[n++] = more[i];
    }
    if (strcmp(j->kind, "psi") == 0) {
        argv[n++] = "--progress-json";
        argv[n++] = ppath;
    }
    if (j->receiver[0]) {
        argv[n++] = "--receiver";
        argv[n++] = j->receiver;
    }
    if (j->join[0]) {
        argv[n++] = "--join";
        argv[n++] = j->join;
    }
    argv[n++] = "--timeout";
    argv[n++] = "60";
    if (!st && !pr) { /* stats has its results file; a prediction its scores */
        argv[n++] = "--report-json";
        argv[n++] = rpath;
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, lpath, O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    pid_t pid;
    struct waiter *w = ag_calloc(1, sizeof(*w));
    int rc = w ? posix_spawn(&pid, c->exe, &fa, NULL, (char *const *)argv, environ) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        ag_free(w);
        char why[300];
        snprintf(why, sizeof(why), "cannot start %.200s: %s", c->exe, strerror(rc));
        ag__console_end(c, j, AG__JOB_FAILED, why);
        return;
    }
    j->pid = pid;
    j->state = AG__JOB_RUNNING;
    j->started_ms = ag_wall_ms();
    ag__history_save(c->hist, j);
    AG_LOG(AG_LOG_INFO, "console", "job_start id=%s kind=%s pid=%d", j->id, j->kind, (int)pid);
    w->c = c;
    w->pid = pid;
    snprintf(w->id, sizeof(w->id), "%s", j->id);
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    c->running++;
    if (pthread_create(&t, &at, waiter_main, w) != 0) {
        c->running--;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        ag_free(w);
        j->pid = 0;
        ag__console_end(c, j, AG__JOB_FAILED, "cannot start the job's waiter thread");
    }
    pthread_attr_destroy(&at);
}

/* Every party approved: tell the others to start, and start (under mu). */
static void all_approved(ag_console *c, ag__job *j)
{
    ag__console_msg m = {.type = AG__MSG_START};
    snprintf(m.from, sizeof(m.from), "%s", c->cl.names[c->me]);
    snprintf(m.id, sizeof(m.id), "%s", j->id);
    for (int i = 0; i < j->nparties; i++) {
        int r = ag_cluster_rank(&c->cl, j->parties[i]);
        if (r != c->me)
            ag__console_send(c, r, &m);
    }
    ag__console_run(c, j);
}

/* Records party p's decision on j (under mu); p is another party, or this
 * one through the API. The proposer moves on once every party decided. */
void ag__console_decided(ag_console *c, ag__job *j, int p, bool approve)
{
    j->decision[p] = approve ? 1 : -1;
    if (!approve) {
        char why[100];
        snprintf(why, sizeof(why), "%s declined", j->parties[p]);
        ag__console_end(c, j, AG__JOB_DECLINED, why);
        return;
    }
    ag__history_save(c->hist, j);
    if (strcmp(j->proposer, c->cl.names[c->me]) != 0)
        return;
    for (int i = 0; i < j->nparties; i++)
        if (j->decision[i] != 1)
            return;
    all_approved(c, j);
}

/* ---- the peer service ---- */

/* Applies a peer's message (under mu): a gRPC status, *why for a refusal. */
static int apply_msg(ag_console *c, const ag__console_msg *m, char *why, size_t cap)
{
    const char *me = c->cl.names[c->me];
    if (m->type == AG__MSG_PING)
        return AG_RPC_OK;
    ag__job *j = ag__console_find(c, m->id);
    if (m->type == AG__MSG_PROPOSE) {
        if (j) {
            snprintf(why, cap, "job %s exists already", m->id);
            return AG_RPC_ALREADY_EXISTS;
        }
        if (strcmp(m->from, me) == 0) {
            snprintf(why, cap, "a console does not propose to itself");
            return AG_RPC_INVALID_ARGUMENT;
        }
        j = ag_calloc(1, sizeof(*j));
        if (!j) {
            snprintf(why, cap, "out of memory");
            return AG_RPC_RESOURCE_EXHAUSTED;
        }
        snprintf(j->id, sizeof(j->id), "%s", m->id);
        snprintf(j->kind, sizeof(j->kind), "%s", m->kind);
        snprintf(j->proposer, sizeof(j->proposer), "%s", m->from);
        snprintf(j->keys, sizeof(j->keys), "%s", m->keys);
        snprintf(j->receiver, sizeof(j->receiver), "%s", m->receiver);
        snprintf(j->join, sizeof(j->join), "%s", m->join);
        j->lr = m->lr;
        j->st = m->st;
        j->nparties = c->cl.n;
        for (int i = 0; i < c->cl.n; i++) {
            snprintf(j->parties[i], sizeof(j->parties[i]), "%s", c->cl.names[i]);
            j->decision[i] = strcmp(c->cl.names[i], m->from) == 0 ? 1 : 0;
        }
        j->state = AG__JOB_PROPOSED;
        j->created_ms = ag_wall_ms();
        AG_LOG(AG_LOG_INFO, "console", "job_proposed id=%s kind=%s by=%s", j->id, j->kind,
               m->from);
        ag__console_add(c, j);
        return AG_RPC_OK;
    }
    if (!j) {
        snprintf(why, cap, "no job %s here", m->id);
        return AG_RPC_NOT_FOUND;
    }
    int p = ag__console_rank_in(j, m->from);
    if (p < 0) {
        snprintf(why, cap, "%s takes no part in job %s", m->from, m->id);
        return AG_RPC_PERMISSION_DENIED;
    }
    if (m->type == AG__MSG_DECIDE) {
        if (strcmp(j->proposer, me) != 0 || strcmp(m->from, me) == 0) {
            snprintf(why, cap, "decisions on job %s go to its proposer %s", j->id, j->proposer);
            return AG_RPC_FAILED_PRECONDITION;
        }
        if (j->state != AG__JOB_PROPOSED || j->decision[p] != 0) {
            snprintf(why, cap, "job %s is %s, %s decided already", j->id,
                     ag__job_state_name(j->state), m->from);
            return AG_RPC_FAILED_PRECONDITION;
        }
        AG_LOG(AG_LOG_INFO, "console", "job_decided id=%s by=%s approve=%d", j->id, m->from,
               (int)m->approve);
        ag__console_decided(c, j, p, m->approve);
        return AG_RPC_OK;
    }
    /* start: only the proposer says so, and only for a job this party approved */
    if (strcmp(m->from, j->proposer) != 0) {
        snprintf(why, cap, "only job %s's proposer %s starts it", j->id, j->proposer);
        return AG_RPC_PERMISSION_DENIED;
    }
    int mine = ag__console_rank_in(j, me);
    if (j->state != AG__JOB_PROPOSED || mine < 0 || j->decision[mine] != 1 || !j->mine_set) {
        snprintf(why, cap, "party %s has not approved job %s", me, j->id);
        return AG_RPC_FAILED_PRECONDITION;
    }
    ag__console_run(c, j);
    return AG_RPC_OK;
}

static int peer_handler(ag_rpc_call *call, void *ud)
{
    ag_console *c = ud;
    uint8_t *body = NULL;
    size_t len = 0;
    if (ag_rpc_call_recv(call, &body, &len) != 1) {
        ag_rpc_call_set_status_message(call, "no request message");
        return AG_RPC_INVALID_ARGUMENT;
    }
    ag__console_msg m;
    ag_errbuf err = {0};
    int rc = ag__console_msg_parse(body, len, &c->cl, &m, &err);
    ag_free(body);
    if (rc < 0) {
        ag_rpc_call_set_status_message(call, err.msg);
        return AG_RPC_INVALID_ARGUMENT;
    }
    const char *who = ag_rpc_call_peer_identity(call);
    if (c->cl.has_tls && (!who || strcmp(who, m.from) != 0)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "a certificate for '%.60s' may not speak for party %s",
                 who ? who : "(none)", m.from);
        AG_LOG(AG_LOG_WARN, "console", "refused_message claimed=%s certificate=%s", m.from,
               who ? who : "(none)");
        ag_rpc_call_set_status_message(call, msg);
        return AG_RPC_PERMISSION_DENIED;
    }
    char why[300] = "";
    pthread_mutex_lock(&c->mu);
    int st = apply_msg(c, &m, why, sizeof(why));
    pthread_mutex_unlock(&c->mu);
    if (st != AG_RPC_OK) {
        ag_rpc_call_set_status_message(call, why);
        return st;
    }
    return ag_rpc_call_send(call, "{}", 2) < 0 ? AG_RPC_CANCELLED : AG_RPC_OK;
}

/* ---- lifecycle ---- */

void ag_console_opts_init(ag_console_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1:8080";
    o->ping_ms = 2000;
}

static int setup_paths(ag_console *c, const ag_console_opts *o, ag_errbuf *err)
{
    char cfgdir[AG__CONSOLE_PATH_MAX];
    snprintf(cfgdir, sizeof(cfgdir), "%s", o->config);
    const char *d = dirname(cfgdir);
    if (o->db)
        snprintf(c->db, sizeof(c->db), "%s", o->db);
    else
        snprintf(c->db, sizeof(c->db), "%s/console-%s.db", d, c->cl.names[c->me]);
    char dbdir[AG__CONSOLE_PATH_MAX];
    snprintf(dbdir, sizeof(dbdir), "%s", c->db);
    snprintf(c->workdir, sizeof(c->workdir), "%s", o->workdir ? o->workdir : dirname(dbdir));
    struct stat st;
    if (stat(c->workdir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ag_errbuf_set(err, AG_E_NOENT, "--workdir %s: no such directory", c->workdir);
    snprintf(c->exe, sizeof(c->exe), "%s", o->exe ? o->exe : "/proc/self/exe");
    snprintf(c->config, sizeof(c->config), "%s", o->config);
    return 0;
}

static int make_token(ag_console *c, const char *given, ag_errbuf *err)
{
    if (given) {
        if (strlen(given) < 16 || strlen(given) >= sizeof(c->token))
            return ag_errbuf_set(err, AG_E_INVAL, "the token must have 16 to %zu characters",
                                 sizeof(c->token) - 1);
        snprintf(c->token, sizeof(c->token), "%s", given);
        return 0;
    }
    uint8_t rnd[32];
    if (ag_random_bytes(rnd, sizeof(rnd)) < 0)
        return ag_errbuf_set(err, AG_E_SYS, "no randomness for the token");
    ag_hex_encode(c->token, rnd, sizeof(rnd));
    return 0;
}

static int open_channels(ag_console *c, ag_errbuf *err)
{
    for (int i = 0; i < c->cl.n; i++) {
        if (i == c->me)
            continue;
        if (!c->cl.consoles[i][0])
            return ag_errbuf_set(err, AG_E_CONFIG_MISSING, "%s: party %s has no 'console: "
                                 "host:port' (where its console takes the others' calls)",
                                 c->config, c->cl.names[i]);
        ag_rpc_channel_opts co;
        ag_rpc_channel_opts_init(&co);
        co.connect_timeout_ms = PEER_DEADLINE_MS;
        co.backoff_initial_ms = 200;
        co.backoff_max_ms = 2000;
        if (c->cl.has_tls) {
            co.tls_ca_file = c->cl.tls_ca;
            co.tls_cert_file = c->cl.tls_cert;
            co.tls_key_file = c->cl.tls_key;
            co.tls_server_name = c->cl.names[i];
        }
        c->chans[i] = ag_rpc_channel_new(c->cl.consoles[i], &co);
        if (!c->chans[i])
            return ag_errbuf_set(err, AG_E_CONFIG_VALUE, "party %s's console '%s': not a target",
                                 c->cl.names[i], c->cl.consoles[i]);
        if (ag_rpc_channel_errmsg(c->chans[i])[0])
            return ag_errbuf_set(err, AG_E_RPC_TLS, "%s", ag_rpc_channel_errmsg(c->chans[i]));
    }
    return 0;
}

ag_console *ag_console_new(const ag_console_opts *o, char *errout, size_t errcap)
{
    ag_errbuf err = {0};
    ag_console *c = ag_calloc(1, sizeof(*c));
    if (!c) {
        snprintf(errout, errcap, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->qtail = &c->queue;
    c->ping_ms = o->ping_ms ? o->ping_ms : 2000;
    if (o->mesh_admin && (strlen(o->mesh_admin) >= sizeof(c->mesh_admin) ||
                          !strchr(o->mesh_admin, ':'))) {
        ag_errbuf_set(&err, AG_E_USAGE, "--mesh-admin %.200s: host:port of the gateway's "
                      "admin endpoint", o->mesh_admin);
        goto fail;
    }
    snprintf(c->mesh_admin, sizeof(c->mesh_admin), "%s", o->mesh_admin ? o->mesh_admin : "");
    if (o->rm) {
        char rerr[600];
        if (strlen(o->rm) >= sizeof(c->rm) ||
            !(c->rm_chan = ag_rm_client_new(o->rm, o->rm_tls_cert, o->rm_tls_key, o->rm_tls_ca,
                                            rerr, sizeof(rerr)))) {
            ag_errbuf_set(&err, AG_E_USAGE, "--rm %.200s: %s", o->rm,
                          strlen(o->rm) >= sizeof(c->rm) ? "too long" : rerr);
            goto fail;
        }
        snprintf(c->rm, sizeof(c->rm), "%s", o->rm);
    } else if (o->rm_tls_cert || o->rm_tls_key || o->rm_tls_ca) {
        ag_errbuf_set(&err, AG_E_USAGE, "--rm-tls-*: without --rm there is no RM to talk to");
        goto fail;
    }
    snprintf(c->listen, sizeof(c->listen), "%s", o->listen ? o->listen : "127.0.0.1:8080");
    char cerr[600];
    if (!o->config || !o->party) {
        ag_errbuf_set(&err, AG_E_USAGE, "the console needs a cluster config and a party");
        goto fail;
    }
    if (ag_cluster_load(o->config, &c->cl, cerr, sizeof(cerr)) < 0) {
        ag_errbuf_set(&err, AG_E_CONFIG_VALUE, "%s", cerr);
        goto fail;
    }
    c->me = ag_cluster_rank(&c->cl, o->party);
    if (c->me < 0) {
        ag_errbuf_set(&err, AG_E_CONFIG_VALUE, "%s: no party '%s'", o->config, o->party);
        goto fail;
    }
    if (!c->cl.consoles[c->me][0]) {
        ag_errbuf_set(&err, AG_E_CONFIG_MISSING, "%s: party %s has no 'console: host:port' "
                      "(where this console takes the other consoles' calls)", o->config,
                      o->party);
        goto fail;
    }
    if (setup_paths(c, o, &err) < 0 || make_token(c, o->token, &err) < 0 ||
        open_channels(c, &err) < 0)
        goto fail;
    c->hist = ag__history_open(c->db, &err);
    if (!c->hist || ag__history_load(c->hist, &c->jobs, &err) < 0)
        goto fail;
    return c;
fail:
    snprintf(errout, errcap, "%s", err.msg);
    ag_console_free(c);
    return NULL;
}

int ag_console_start(ag_console *c)
{
    ag_rpc_server_opts so;
    ag_rpc_server_opts_init(&so);
    so.loops = 1;
    so.max_recv_msg = AG__CONSOLE_MAX_BODY;
    if (c->cl.has_tls) {
        so.tls_cert_file = c->cl.tls_cert;
        so.tls_key_file = c->cl.tls_key;
        so.tls_ca_file = c->cl.tls_ca; /* peers present their party certificates */
    }
    c->srv = ag_rpc_server_new(&so);
    if (!c->srv)
        return ag_errbuf_set(&c->err, AG_E_NOMEM, "out of memory");
    if (ag_rpc_server_register(c->srv, PEER_METHOD, peer_handler, c) < 0 ||
        ag_rpc_server_start(c->srv, c->cl.consoles[c->me]) < 0)
        return ag_errbuf_set(&c->err, AG_E_IO, "peer service: %s",
                             ag_rpc_server_errmsg(c->srv));
    int rc = ag__console_api_start(c);
    if (rc < 0)
        return rc;
    if (pthread_create(&c->sender, NULL, sender_main, c) != 0)
        return ag_errbuf_set(&c->err, AG_E_SYS, "cannot start the sender thread");
    c->sender_started = true;
    AG_LOG(AG_LOG_INFO, "console", "started party=%s page_port=%d peer_port=%d",
           c->cl.names[c->me], ag_admin_port(c->admin), ag_rpc_server_port(c->srv));
    return 0;
}

int ag_console_port(const ag_console *c)
{
    return c->admin ? ag_admin_port(c->admin) : -1;
}

int ag_console_peer_port(const ag_console *c)
{
    return c->srv ? ag_rpc_server_port(c->srv) : -1;
}

const char *ag_console_token(const ag_console *c)
{
    return c->token;
}

const char *ag_console_errmsg(const ag_console *c)
{
    return c->err.msg;
}

void ag_console_free(ag_console *c)
{
    if (!c)
        return;
    ag_admin_free(c->admin); /* no API call runs from here on */
    c->admin = NULL;
    ag_rpc_server_free(c->srv); /* nor a peer's: its handler threads are joined */
    c->srv = NULL;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_broadcast(&c->cv);
    for (ag__job *j = c->jobs; j; j = j->next)
        if (j->state == AG__JOB_RUNNING && j->pid > 0) {
            kill(j->pid, SIGTERM);
            snprintf(j->error, sizeof(j->error), "the console stopped while the job ran");
        }
    while (c->running > 0) /* the waiters record the outcome */
        pthread_cond_wait(&c->cv, &c->mu);
    for (ag__job *j = c->jobs; j; j = j->next)
        if (j->state == AG__JOB_FAILED && strcmp(j->error, "the console stopped while the "
                                                           "job ran") == 0) {
            j->state = AG__JOB_INTERRUPTED;
            if (c->hist)
                ag__history_save(c->hist, j);
        }
    pthread_mutex_unlock(&c->mu);
    if (c->sender_started)
        pthread_join(c->sender, NULL);
    for (int i = 0; i < AG_CLUSTER_MAX_PARTIES; i++)
        ag_rpc_channel_free(c->chans[i]);
    while (c->queue) {
        struct outmsg *o = c->queue;
        c->queue = o->next;
        ag_free(o->text);
        ag_free(o);
    }
    ag__job_free_list(c->jobs);
    json_decref(c->mesh_state);
    json_decref(c->rm_state);
    ag_rm_client_free(c->rm_chan);
    ag__history_close(c->hist);
    OPENSSL_cleanse(c->token, sizeof(c->token));
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    ag_free(c);
}
