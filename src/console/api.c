/*
 * The console's page and JSON API, on the rpc module's admin server
 * (HTTP/1.1, one thread; handlers never wait on the network or a process:
 * they read and change the console's state under its mutex, and leave the
 * sending to the sender thread).
 *
 * Routes:
 *   GET  /                   the page; with ?token=T (the right one) it sets
 *                            the login cookie and redirects to / (Jupyter's way)
 *   GET  /app.js, /style.css the page's script and style (no secret in them)
 *   GET  /api/state          this party, the parties, the jobs (newest first)
 *   POST /api/jobs           a proposal: 201 {"id"} or 400 {"errors": {field: why}}
 *   POST /api/decide         an approval or a decline of another party's proposal
 *   GET  /api/output?job=ID  a finished PSI's output file
 * Every /api route needs the token: "Authorization: Bearer T" or the cookie
 * (HttpOnly, SameSite=Strict); else 401. POSTs must be application/json (a
 * cross-site form cannot send that without the browser asking first).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console_int.h"

#define COOKIE "argot_console"
#define MAX_OUTPUT (48u << 20) /* the largest output file served (the admin body's limit) */

/* Compares without leaking where the first difference is. */
static bool token_eq(const char *a, size_t alen, const char *token)
{
    size_t tlen = strlen(token);
    if (alen != tlen)
        return false;
    return CRYPTO_memcmp(a, token, tlen) == 0;
}

/* The value of cookie `name` in a Cookie header, as a (ptr, len). */
static bool cookie_value(const char *hdr, const char *name, const char **v, size_t *vlen)
{
    size_t n = strlen(name);
    for (const char *p = hdr; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            *v = p + n + 1;
            *vlen = len - n - 1;
            return true;
        }
        p = end;
    }
    return false;
}

static bool authorized(ag_console *c, const ag_admin_request *req)
{
    const char *auth = ag_admin_request_header(req, "Authorization");
    if (auth && strncmp(auth, "Bearer ", 7) == 0)
        return token_eq(auth + 7, strlen(auth + 7), c->token);
    const char *ck = ag_admin_request_header(req, "Cookie"), *v;
    size_t vlen;
    return ck && cookie_value(ck, COOKIE, &v, &vlen) && token_eq(v, vlen, c->token);
}

/* resp gets JSON o (stolen) with status. */
static int reply_json(ag_admin_response *resp, int status, json_t *o)
{
    if (!o)
        return AG_E_NOMEM;
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return AG_E_NOMEM;
    resp->status = status;
    resp->content_type = "application/json";
    int rc = ag_buf_append_str(&resp->body, text);
    free(text);
    return rc;
}

static int reply_error(ag_admin_response *resp, int status, const char *msg)
{
    return reply_json(resp, status, json_pack("{s:s}", "error", msg));
}

/* The checks every API route makes: the token, and for a POST the type. */
static bool api_gate(ag_console *c, const ag_admin_request *req, ag_admin_response *resp,
                     int *rc)
{
    if (!authorized(c, req)) {
        *rc = reply_error(resp, 401, "missing or wrong token: open the address that argot "
                                     "console printed (it holds the token)");
        return false;
    }
    if (strcmp(req->method, "POST") == 0) {
        const char *ct = ag_admin_request_header(req, "Content-Type");
        if (!ct || strncmp(ct, "application/json", 16) != 0) {
            *rc = reply_error(resp, 415, "the body must be application/json");
            return false;
        }
    }
    return true;
}

/* ---- the page ---- */

static const ag__console_asset *asset(const char *path)
{
    for (size_t i = 0; i < ag__console_nassets; i++)
        if (strcmp(ag__console_assets[i].path, path) == 0)
            return &ag__console_assets[i];
    return NULL;
}

static int serve_asset(const ag__console_asset *a, ag_admin_response *resp)
{
    resp->content_type = a->content_type;
    int rc = ag_admin_response_header(resp, "Cache-Control", "no-store");
    if (rc == 0)
        rc = ag_admin_response_header(resp, "X-Content-Type-Options", "nosniff");
    return rc == 0 ? ag_buf_append(&resp->body, a->data, a->len) : rc;
}

static int h_page(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    ag_console *c = ud;
    const char *q = req->query;
    if (strncmp(q, "token=", 6) == 0) {
        size_t n = strcspn(q + 6, "&");
        if (!token_eq(q + 6, n, c->token)) {
            resp->status = 401;
            return ag_buf_append_str(&resp->body, "wrong token\n");
        }
        char cookie[200];
        snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; HttpOnly; SameSite=Strict", COOKIE,
                 c->token);
        resp->status = 302;
        int rc = ag_admin_response_header(resp, "Set-Cookie", cookie);
        return rc == 0 ? ag_admin_response_header(resp, "Location", "/") : rc;
    }
    const ag__console_asset *a = asset("/index.html");
    int rc = ag_admin_response_header(resp, "Content-Security-Policy",
                                      "default-src 'self'; img-src 'self' data:");
    return rc == 0 ? serve_asset(a, resp) : rc;
}

static int h_asset(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    (void)ud;
    const ag__console_asset *a = asset(req->path);
    if (!a) {
        resp->status = 404;
        return 0;
    }
    return serve_asset(a, resp);
}

/* ---- state ---- */

static json_t *job_json(const ag_console *c, const ag__job *j)
{
    json_t *parties = json_array();
    for (int i = 0; parties && i < j->nparties; i++)
        json_array_append_new(parties, json_pack("{s:s, s:s}", "name", j->parties[i],
                                                 "decision", j->decision[i] > 0 ? "approved"
                                                             : j->decision[i] < 0 ? "declined"
                                                                                   : "waiting"));
    int me = ag__console_rank_in(j, c->cl.names[c->me]);
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:b}",
                          "id", j->id, "kind", j->kind, "proposer", j->proposer,
                          "parties", parties, "keys", j->keys, "receiver", j->receiver,
                          "join", j->join, "state", ag__job_state_name(j->state),
                          "created_ms", (json_int_t)j->created_ms,
                          "started_ms", (json_int_t)j->started_ms,
                          "finished_ms", (json_int_t)j->finished_ms, "error", j->error,
                          "awaiting_me", j->state == AG__JOB_PROPOSED && me >= 0 &&
                                             j->decision[me] == 0);
    if (!o)
        return NULL;
    if (j->mine_set) {
        json_object_set_new(o, "input", json_string(j->input));
        json_object_set_new(o, "my_keys", json_string(j->my_keys));
        json_object_set_new(o, "output", json_string(j->output));
        if (j->model[0])
            json_object_set_new(o, "model", json_string(j->model));
    }
    if (strcmp(j->kind, "lr-predict") == 0)
        json_object_set_new(o, "label", json_string(j->lr.label));
    if (strcmp(j->kind, "lr-train") == 0) {
        json_object_set_new(o, "label", json_string(j->lr.label));
        json_object_set_new(o, "epochs", json_integer(j->lr.epochs));
        json_object_set_new(o, "batch_size", json_integer(j->lr.batch_size));
        json_object_set_new(o, "learning_rate", json_real(j->lr.learning_rate));
    }
    if (strcmp(j->kind, "stats") == 0) {
        json_object_set_new(o, "stats", json_string(j->st.stats));
        json_object_set_new(o, "reveal_to", json_string(j->st.reveal_to));
    }
    if (j->state == AG__JOB_RUNNING && strcmp(j->kind, "lr-train") == 0) {
        json_t *p = ag__console_progress(c, j, false);
        if (p)
            json_object_set_new(o, "progress", p);
    }
    if (strcmp(j->kind, "psi") == 0) { /* rows and rate: the last line, running or done */
        json_t *p = ag__console_progress(c, j, true);
        if (p)
            json_object_set_new(o, "progress", p);
    }
    if (j->result)
        json_object_set(o, "result", j->result);
    return o;
}

static json_t *parties_json(const ag_console *c)
{
    json_t *a = json_array();
    for (int i = 0; a && i < c->cl.n; i++) {
        const struct peer_state *p = &c->peers[i];
        const char *status = i == c->me ? "this console"
                             : !p->checked ? "checking"
                             : p->up ? "reachable" : "unreachable";
        char ident[100];
        if (c->cl.has_tls)
            snprintf(ident, sizeof(ident), "certificate for '%s' (verified with the cluster's "
                     "CA)", c->cl.names[i]);
        else
            snprintf(ident, sizeof(ident), "none: plaintext on loopback (no tls section)");
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", c->cl.names[i],
                              "address", c->cl.addresses[i], "console", c->cl.consoles[i],
                              "status", status, "identity", ident, "why", p->why);
        if (o && i != c->me && p->up)
            json_object_set_new(o, "rtt_ms", json_real(p->rtt_ms));
        json_array_append_new(a, o);
    }
    return a;
}

static int h_state(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    ag_console *c = ud;
    int rc = 0;
    if (!api_gate(c, req, resp, &rc))
        return rc;
    pthread_mutex_lock(&c->mu);
    json_t *jobs = json_array();
    /* newest first: the list is oldest first */
    for (ag__job *j = c->jobs; jobs && j; j = j->next)
        json_array_insert_new(jobs, 0, job_json(c, j));
    json_t *o = json_pack("{s:s, s:b, s:o, s:o}", "party", c->cl.names[c->me], "tls",
                          c->cl.has_tls, "parties", parties_json(c), "jobs", jobs);
    if (o && c->mesh_admin[0]) {
        json_t *g = json_pack("{s:s, s:s, s:I}", "admin", c->mesh_admin, "why", c->mesh_why,
                              "read_ms", (json_int_t)c->mesh_at_ms);
        if (g && c->mesh_state)
            json_object_set(g, "routers", json_object_get(c->mesh_state, "routers"));
        json_object_set_new(o, "gateway", g);
    }
    if (o && c->rm[0]) {
        json_t *r = json_pack("{s:s, s:s}", "address", c->rm, "why", c->rm_why);
        if (r && c->rm_state)
            json_object_update(r, c->rm_state);
        json_object_set_new(o, "rm", r);
    }
    pthread_mutex_unlock(&c->mu);
    return reply_json(resp, 200, o);
}

/* ---- proposing and deciding ---- */

static int reply_form_errors(ag_admin_response *resp, int rc, json_t *errors)
{
    if (rc == AG_E_NOMEM) {
        json_decref(errors);
        return rc;
    }
    return reply_json(resp, 400, json_pack("{s:o}", "errors", errors));
}

static void new_id(const ag_console *c, char *out, size_t cap)
{
    uint8_t rnd[4];
    char hex[9] = "00000000";
    if (ag_random_bytes(rnd, sizeof(rnd)) == 0)
        ag_hex_encode(hex, rnd, sizeof(rnd));
    snprintf(out, cap, "%s-%lld-%s", c->cl.names[c->me], (long long)ag_wall_ms(), hex);
}

static int h_propose(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    ag_console *c = ud;
    int rc = 0;
    if (!api_gate(c, req, resp, &rc))
        return rc;
    json_t *errors = json_object();
    if (!errors)
        return AG_E_NOMEM;
    ag__console_form f;
    rc = ag__console_form_parse(req->body.ptr, req->body.len, false, &c->cl, &f, errors);
    if (rc == 0)
        rc = ag__console_form_check_role(&f, f.kind, f.lr.label, c->cl.names[c->me], errors);
    if (rc == 0)
        rc = ag__console_form_check_files(
            &f, ag__console_label_col(f.lr.label, c->cl.names[c->me]), errors);
    if (rc < 0)
        return reply_form_errors(resp, rc, errors);
    json_decref(errors);
    ag__job *j = ag_calloc(1, sizeof(*j));
    if (!j)
        return AG_E_NOMEM;
    new_id(c, j->id, sizeof(j->id));
    snprintf(j->kind, sizeof(j->kind), "%s", f.kind);
    snprintf(j->proposer, sizeof(j->proposer), "%s", c->cl.names[c->me]);
    snprintf(j->keys, sizeof(j->keys), "%s", f.keys);
    snprintf(j->my_keys, sizeof(j->my_keys), "%s", f.keys);
    snprintf(j->receiver, sizeof(j->receiver), "%s", f.receiver);
    snprintf(j->join, sizeof(j->join), "%s", f.join);
    j->lr = f.lr;
    j->st = f.st;
    snprintf(j->input, sizeof(j->input), "%s", f.input);
    snprintf(j->output, sizeof(j->output), "%s", f.output);
    snprintf(j->model, sizeof(j->model), "%s", f.model);
    j->mine_set = true;
    j->nparties = c->cl.n;
    for (int i = 0; i < c->cl.n; i++) {
        snprintf(j->parties[i], sizeof(j->parties[i]), "%s", c->cl.names[i]);
        j->decision[i] = i == c->me ? 1 : 0;
    }
    j->state = AG__JOB_PROPOSED;
    j->created_ms = ag_wall_ms();
    ag__console_msg m = {.type = AG__MSG_PROPOSE};
    snprintf(m.from, sizeof(m.from), "%s", c->cl.names[c->me]);
    snprintf(m.id, sizeof(m.id), "%s", j->id);
    snprintf(m.kind, sizeof(m.kind), "%s", j->kind);
    snprintf(m.keys, sizeof(m.keys), "%s", j->keys);
    snprintf(m.receiver, sizeof(m.receiver), "%s", j->receiver);
    snprintf(m.join, sizeof(m.join), "%s", j->join);
    m.lr = j->lr;
    m.st = j->st;
    pthread_mutex_lock(&c->mu);
    ag__console_add(c, j);
    AG_LOG(AG_LOG_INFO, "console", "job_proposed id=%s kind=%s by=%s", j->id, j->kind,
           j->proposer);
    for (int i = 0; i < c->cl.n; i++)
        if (i != c->me)
            ag__console_send(c, i, &m);
    char id[AG__CONSOLE_ID_MAX];
    snprintf(id, sizeof(id), "%s", j->id);
    pthread_mutex_unlock(&c->mu);
    return reply_json(resp, 201, json_pack("{s:s}", "id", id));
}

/* Checks that j awaits this party's decision (under mu): NULL, or why not. */
static const char *decidable(const ag_console *c, const ag__job *j)
{
    if (!j)
        return "no such job";
    int me = ag__console_rank_in(j, c->cl.names[c->me]);
    if (me < 0)
        return "this party takes no part in the job";
    if (j->state != AG__JOB_PROPOSED || j->decision[me] != 0)
        return "the job does not wait for this party's decision";
    return NULL;
}

static int h_decide(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    ag_console *c = ud;
    int rc = 0;
    if (!api_gate(c, req, resp, &rc))
        return rc;
    json_t *errors = json_object();
    if (!errors)
        return AG_E_NOMEM;
    ag__console_form f;
    rc = ag__console_form_parse(req->body.ptr, req->body.len, true, &c->cl, &f, errors);
    if (rc < 0)
        return reply_form_errors(resp, rc, errors);
    pthread_mutex_lock(&c->mu);
    ag__job *j = ag__console_find(c, f.id);
    const char *why = decidable(c, j);
    char label[sizeof(j->lr.label)] = "", kind[sizeof(j->kind)] = "";
    if (!why && f.approve && !f.keys[0])
        snprintf(f.keys, sizeof(f.keys), "%s", j->keys); /* the proposer's columns */
    if (!why) {
        snprintf(label, sizeof(label), "%s", j->lr.label);
        snprintf(kind, sizeof(kind), "%s", j->kind);
    }
    pthread_mutex_unlock(&c->mu);
    if (why) {
        json_object_set_new(errors, "id", json_string(why));
        return reply_form_errors(resp, AG_E_INVAL, errors);
    }
    if (f.approve &&
        (rc = ag__console_form_check_role(&f, kind, label, c->cl.names[c->me], errors)) < 0)
        return reply_form_errors(resp, rc, errors);
    /* the files are checked without the lock (they may be slow to read) */
    if (f.approve && (rc = ag__console_form_check_files(
                          &f, ag__console_label_col(label, c->cl.names[c->me]), errors)) < 0)
        return reply_form_errors(resp, rc, errors);
    json_decref(errors);
    pthread_mutex_lock(&c->mu);
    j = ag__console_find(c, f.id);
    why = decidable(c, j);
    if (!why) {
        int me = ag__console_rank_in(j, c->cl.names[c->me]);
        if (f.approve) {
            snprintf(j->input, sizeof(j->input), "%s", f.input);
            snprintf(j->my_keys, sizeof(j->my_keys), "%s", f.keys);
            snprintf(j->output, sizeof(j->output), "%s", f.output);
            snprintf(j->model, sizeof(j->model), "%s", f.model);
            j->mine_set = true;
        }
        AG_LOG(AG_LOG_INFO, "console", "job_decided id=%s by=%s approve=%d", j->id,
               c->cl.names[c->me], (int)f.approve);
        ag__console_msg m = {.type = AG__MSG_DECIDE, .approve = f.approve};
        snprintf(m.from, sizeof(m.from), "%s", c->cl.names[c->me]);
        snprintf(m.id, sizeof(m.id), "%s", j->id);
        ag__console_send(c, ag_cluster_rank(&c->cl, j->proposer), &m);
        ag__console_decided(c, j, me, f.approve);
    }
    pthread_mutex_unlock(&c->mu);
    if (why)
        return reply_error(resp, 409, why);
    return reply_json(resp, 200, json_pack("{s:b}", "ok", 1));
}

/* ---- a PSI's output ---- */

static int h_output(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    ag_console *c = ud;
    int rc = 0;
    if (!api_gate(c, req, resp, &rc))
        return rc;
    char id[AG__CONSOLE_ID_MAX] = "", path[AG__CONSOLE_PATH_MAX] = "";
    if (strncmp(req->query, "job=", 4) == 0 && strlen(req->query + 4) < sizeof(id))
        snprintf(id, sizeof(id), "%s", req->query + 4);
    pthread_mutex_lock(&c->mu);
    ag__job *j = ag__console_id_valid(id) ? ag__console_find(c, id) : NULL;
    if (j && j->state == AG__JOB_DONE && j->mine_set &&
        (strcmp(j->kind, "psi") == 0 || strcmp(j->kind, "lr-predict") == 0))
        snprintf(path, sizeof(path), "%s", j->output);
    pthread_mutex_unlock(&c->mu);
    if (!path[0])
        return reply_error(resp, 404, "no finished job with an output file by that id");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_OUTPUT) {
        if (fd >= 0)
            close(fd);
        return reply_error(resp, 404, "the output file is gone, or too large to serve here");
    }
    rc = ag_buf_reserve(&resp->body, (size_t)st.st_size);
    while (rc == 0) {
        uint8_t chunk[65536];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n <= 0) {
            rc = n < 0 ? AG_E_IO : 0;
            break;
        }
        rc = ag_buf_append(&resp->body, chunk, (size_t)n);
    }
    close(fd);
    char disp[AG__CONSOLE_ID_MAX + 64];
    snprintf(disp, sizeof(disp), "attachment; filename=\"%s.csv\"", id);
    resp->content_type = "text/csv; charset=utf-8";
    return rc == 0 ? ag_admin_response_header(resp, "Content-Disposition", disp) : rc;
}

int ag__console_api_start(ag_console *c)
{
    ag_admin_opts ao;
    ag_admin_opts_init(&ao);
    ao.max_body = AG__CONSOLE_MAX_BODY;
    c->admin = ag_admin_new(&ao);
    if (!c->admin)
        return ag_errbuf_set(&c->err, AG_E_NOMEM, "out of memory");
    int rc = ag_admin_route(c->admin, "GET", "/", h_page, c);
    for (size_t i = 0; rc == 0 && i < ag__console_nassets; i++)
        if (strcmp(ag__console_assets[i].path, "/index.html") != 0)
            rc = ag_admin_route(c->admin, "GET", ag__console_assets[i].path, h_asset, c);
    if (rc == 0)
        rc = ag_admin_route(c->admin, "GET", "/api/state", h_state, c);
    if (rc == 0)
        rc = ag_admin_route(c->admin, "POST", "/api/jobs", h_propose, c);
    if (rc == 0)
        rc = ag_admin_route(c->admin, "POST", "/api/decide", h_decide, c);
    if (rc == 0)
        rc = ag_admin_route(c->admin, "GET", "/api/output", h_output, c);
    if (rc == 0)
        rc = ag_admin_start(c->admin, c->listen);
    if (rc < 0)
        return ag_errbuf_set(&c->err, rc, "page: %s", ag_admin_errmsg(c->admin));
    return 0;
}
