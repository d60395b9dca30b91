/*
 * The gateway's lifecycle: config in, listeners, namers and routers made,
 * one loop thread running them all; the admin endpoint beside it; reloads
 * (ag_mesh_reload, SIGHUP in the daemon, a change of the config file) and
 * graceful shutdown.
 *
 * Reload, on the loop thread: the new config is read and checked in full
 * first (a bad one changes nothing). Then new namers and routers are made;
 * a server address the old config also had keeps its listening socket
 * (moved to the new router, so no connection attempt is refused in
 * between); the others are opened, and old ones no longer wanted close.
 * Old routers are retired: their connections get GOAWAY (HTTP/2) or
 * "Connection: close" after the response in flight (HTTP/1.1), finish
 * what they carry, and the router is freed once its last connection is
 * gone. A router keeps its config (mesh_conf is reference-counted).
 *
 * The admin thread reads the loop's state by posting a task and waiting
 * for it (mesh_run_on_loop); the page's JSON is built on the loop.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"

struct mesh_task {
    void (*fn)(void *);
    void *arg;
    bool done;
    struct mesh_task *next;
};

static pthread_cond_t task_cv = PTHREAD_COND_INITIALIZER;

int mesh_h2_upstream_init(void);

/* ---- tasks ------------------------------------------------------------------------ */

static void on_wake(uv_async_t *a)
{
    struct ag_mesh *m = a->data;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        struct mesh_task *t = m->tasks;
        if (t)
            m->tasks = t->next;
        pthread_mutex_unlock(&m->mu);
        if (!t)
            break;
        t->fn(t->arg);
        pthread_mutex_lock(&m->mu);
        t->done = true;
        pthread_cond_broadcast(&task_cv);
        pthread_mutex_unlock(&m->mu);
    }
}

int mesh_run_on_loop(struct ag_mesh *m, void (*fn)(void *), void *arg)
{
    if (!m->running) {
        fn(arg);
        return 0;
    }
    struct mesh_task t = {fn, arg, false, NULL};
    pthread_mutex_lock(&m->mu);
    if (m->stopping) {
        pthread_mutex_unlock(&m->mu);
        return AG_E_CLOSED;
    }
    struct mesh_task **pp = &m->tasks;
    while (*pp)
        pp = &(*pp)->next;
    *pp = &t;
    pthread_mutex_unlock(&m->mu);
    uv_async_send(&m->wake);
    pthread_mutex_lock(&m->mu);
    while (!t.done)
        pthread_cond_wait(&task_cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

/* ---- recording ------------------------------------------------------------------ */

void mesh_record(mesh_router *rt, const char *name, mesh_cluster *cl, const char *endpoint,
                 double ms, bool success, const char *method, const char *path, int status)
{
    struct ag_mesh *m = rt->m;
    const char *svc = name && name[0] ? name : "-";
    const char *ep = endpoint && endpoint[0] ? endpoint : "-";
    ag_metric_add(m->mt.requests, 1, rt->rc->label, svc, ep);
    ag_metric_add(m->mt.responses, 1, rt->rc->label, svc, ep, success ? "success" : "failure");
    ag_metric_observe(m->mt.latency, ms / 1000.0, rt->rc->label, svc, ep);
    (void)cl;
    if (rt->access_log) {
        /* one line per request: time, router, method, path, name, endpoint, status, ms */
        char ts[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(rt->access_log, "%s %s %s %s %s %s %d %.3f\n", ts, rt->rc->label, method,
                path, svc, ep, status, ms);
        fflush(rt->access_log);
    }
}

/* ---- listeners ------------------------------------------------------------------ */

static void on_conn(uv_stream_t *s, int status)
{
    mesh_listener *l = s->data;
    if (status < 0 || l->closing || l->rt->retired)
        return;
    if (l->rt->rc->proto == MESH_H2)
        mesh_h2_accept(l);
    else
        mesh_h1_accept(l);
}

static void listener_closed(uv_handle_t *h)
{
    mesh_listener *l = h->data;
    ag__tls_ctx_free(l->tls);
    ag_free(l);
}

static void listener_close(mesh_listener *l)
{
    l->closing = true;
    uv_close((uv_handle_t *)&l->tcp, listener_closed);
}

static int listener_tls(const mesh_router_conf *rc, const mesh_server_conf *sc,
                        ag__tls_ctx **out, char *err, size_t cap)
{
    *out = NULL;
    if (!sc->tls.on)
        return 0;
    ag_errbuf e = {0};
    ag__tls_ctx_opts o = {
        .server = true,
        .cert_file = sc->tls.cert,
        .key_file = sc->tls.key,
        .ca_file = sc->tls.ca[0] ? sc->tls.ca : NULL,
        .alpn = rc->proto == MESH_HTTP ? "http/1.1" : NULL,
    };
    int rc2 = ag__tls_ctx_new(out, &o, &e);
    if (rc2 < 0)
        snprintf(err, cap, "router '%s': %s:%d: %s", rc->label, sc->ip, sc->port, e.msg);
    return rc2;
}

static int listener_open(struct ag_mesh *m, mesh_router *rt, const mesh_server_conf *sc,
                         mesh_listener **out, char *err, size_t cap)
{
    *out = NULL;
    mesh_listener *l = ag_calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, cap, "out of memory");
        return AG_E_NOMEM;
    }
    int rc = listener_tls(rt->rc, sc, &l->tls, err, cap);
    if (rc < 0) {
        ag_free(l);
        return rc;
    }
    l->rt = rt;
    uv_tcp_init(&m->loop, &l->tcp);
    l->tcp.data = l;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(sc->ip, sc->port, (struct sockaddr_in *)&ss) != 0)
        uv_ip6_addr(sc->ip, sc->port, (struct sockaddr_in6 *)&ss);
    rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_conn);
    if (rc < 0) {
        snprintf(err, cap, "router '%s': %s:%d: %s", rt->rc->label, sc->ip, sc->port,
                 uv_strerror(rc));
        listener_close(l);
        return AG_E_IO;
    }
    struct sockaddr_storage b;
    int blen = sizeof(b);
    uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&b, &blen);
    l->port = ntohs(b.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&b)->sin6_port
                                            : ((struct sockaddr_in *)&b)->sin_port);
    *out = l;
    return 0;
}

/* ---- routers and namers ------------------------------------------------------------- */

static void conf_unref(mesh_conf *c)
{
    if (c && --c->refs == 0)
        mesh_conf_free(c);
}

static mesh_router *router_new(struct ag_mesh *m, mesh_conf *conf, mesh_router_conf *rc,
                               char *err, size_t cap)
{
    mesh_router *rt = ag_calloc(1, sizeof(*rt));
    if (!rt) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    rt->m = m;
    rt->rc = rc;
    rt->conf = conf;
    conf->refs++;
    const mesh_service_conf *sc = &rc->services[0];
    ag__budget_init(&rt->budget, sc->budget_percent, sc->budget_min_per_sec, sc->budget_ttl_ms);
    if (rc->access_log[0]) {
        if (strcmp(rc->access_log, "-") == 0) {
            rt->access_log = stderr;
        } else {
            rt->access_log = fopen(rc->access_log, "a");
            if (!rt->access_log) {
                snprintf(err, cap, "router '%s': access log %s: %s", rc->label, rc->access_log,
                         strerror(errno));
                conf_unref(conf);
                ag_free(rt);
                return NULL;
            }
        }
    }
    return rt;
}

static void router_destroy(mesh_router *rt)
{
    while (rt->listeners) {
        mesh_listener *l = rt->listeners;
        rt->listeners = l->next;
        listener_close(l);
    }
    mesh_conf *c = rt->conf;
    mesh_router_free(rt);
    conf_unref(c);
}

static void namers_free(ag__namer **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ag__namer_free(v[i]);
    ag_free(v);
}

/* Makes the namers of conf (on the loop's thread, or before it runs). */
static int namers_make(struct ag_mesh *m, mesh_conf *conf, ag__namer ***out, char *err,
                       size_t cap)
{
    *out = NULL;
    if (conf->nnamers == 0)
        return 0;
    ag__namer **v = ag_calloc(conf->nnamers, sizeof(*v));
    if (!v) {
        snprintf(err, cap, "out of memory");
        return AG_E_NOMEM;
    }
    for (size_t i = 0; i < conf->nnamers; i++) {
        int rc = ag__namer_new(conf->cfg, conf->namer_nodes[i], &m->loop, &v[i]);
        if (rc < 0) {
            snprintf(err, cap, "%s", ag_config_errmsg(conf->cfg));
            namers_free(v, i);
            return rc;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(ag__namer_prefix(v[j]), ag__namer_prefix(v[i])) == 0) {
                ag_config_errorf(conf->cfg, conf->namer_nodes[i], AG_E_CONFIG_VALUE,
                                 "two namers with the prefix %s", ag__namer_prefix(v[i]));
                snprintf(err, cap, "%s", ag_config_errmsg(conf->cfg));
                namers_free(v, i + 1);
                return AG_E_CONFIG_VALUE;
            }
    }
    *out = v;
    return 0;
}

/* Takes an old listener on the same address, if there is one: the same
 * ip and port, or, for a server configured with port 0, an old one also
 * configured with port 0 on that ip (a reload keeps the port the kernel
 * picked). */
static mesh_listener *steal_listener(struct ag_mesh *m, const mesh_server_conf *sc)
{
    for (size_t r = 0; r < m->nrouters; r++) {
        mesh_router *rt = m->routers[r];
        for (mesh_listener **pp = &rt->listeners; *pp; pp = &(*pp)->next) {
            mesh_listener *l = *pp;
            if (strcmp(l->ip, sc->ip) != 0)
                continue;
            if ((sc->port != 0 && l->port == sc->port) || (sc->port == 0 && l->cport == 0)) {
                *pp = l->next;
                l->next = NULL;
                return l;
            }
        }
    }
    return NULL;
}

/* Builds routers for conf; on failure nothing of the running state changed
 * (listeners taken from old routers are given back). */
static int routers_make(struct ag_mesh *m, mesh_conf *conf, mesh_router ***out, char *err,
                        size_t cap)
{
    mesh_router **v = ag_calloc(conf->nrouters, sizeof(*v));
    if (!v) {
        snprintf(err, cap, "out of memory");
        return AG_E_NOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < conf->nrouters && rc == 0; i++) {
        mesh_router_conf *c = &conf->routers[i];
        v[i] = router_new(m, conf, c, err, cap);
        if (!v[i]) {
            rc = AG_E_NOMEM;
            break;
        }
        mesh_listener **tail = &v[i]->listeners;
        for (size_t s = 0; s < c->nservers && rc == 0; s++) {
            mesh_listener *l = steal_listener(m, &c->servers[s]);
            if (l) {
                /* the same address: the socket stays, the TLS settings are the new ones */
                ag__tls_ctx *tls = NULL;
                rc = listener_tls(c, &c->servers[s], &tls, err, cap);
                if (rc == 0) {
                    ag__tls_ctx_free(l->tls);
                    l->tls = tls;
                }
                l->rt = v[i];
            } else {
                rc = listener_open(m, v[i], &c->servers[s], &l, err, cap);
            }
            if (l) {
                snprintf(l->ip, sizeof(l->ip), "%s", c->servers[s].ip);
                l->cport = c->servers[s].port;
                *tail = l;
                tail = &l->next;
            }
        }
    }
    if (rc < 0) {
        for (size_t i = 0; i < conf->nrouters; i++)
            if (v[i]) {
                /* listeners that came from the old routers go back to them */
                mesh_listener *l = v[i]->listeners;
                v[i]->listeners = NULL;
                while (l) {
                    mesh_listener *next = l->next;
                    bool returned = false;
                    for (size_t r = 0; r < m->nrouters && !returned; r++) {
                        mesh_router *old = m->routers[r];
                        for (size_t s = 0; s < old->rc->nservers; s++)
                            if ((old->rc->servers[s].port == l->port ||
                                 (old->rc->servers[s].port == 0 && l->cport == 0)) &&
                                strcmp(old->rc->servers[s].ip, l->ip) == 0) {
                                l->rt = old;
                                l->next = old->listeners;
                                old->listeners = l;
                                returned = true;
                                break;
                            }
                    }
                    if (!returned)
                        listener_close(l);
                    l = next;
                }
                router_destroy(v[i]);
            }
        ag_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

static void retire(struct ag_mesh *m, mesh_router *rt)
{
    rt->retired = true;
    while (rt->listeners) {
        mesh_listener *l = rt->listeners;
        rt->listeners = l->next;
        listener_close(l);
    }
    if (rt->rc->proto == MESH_H2)
        mesh_h2_drain(rt);
    else
        mesh_h1_drain(rt);
    rt->next_retired = m->retired;
    m->retired = rt;
}

static void reap_retired(struct ag_mesh *m)
{
    mesh_router **pp = &m->retired;
    while (*pp) {
        mesh_router *rt = *pp;
        if (rt->nconns == 0) {
            *pp = rt->next_retired;
            AG_LOG(AG_LOG_INFO, "mesh", "router_retired label=%s", rt->rc->label);
            router_destroy(rt);
            continue;
        }
        pp = &rt->next_retired;
    }
}

/* ---- reload --------------------------------------------------------------------- */

struct reload_req {
    struct ag_mesh *m;
    char *err;
    size_t cap;
    int rc;
};

static void apply_log_level(const mesh_conf *c)
{
    if (c->log_level >= 0)
        ag_log_set_level((ag_log_level)c->log_level);
}

static void do_reload(void *arg)
{
    struct reload_req *q = arg;
    struct ag_mesh *m = q->m;
    mesh_conf *conf = NULL;
    ag__namer **namers = NULL;
    mesh_router **routers = NULL;
    q->rc = mesh_conf_load(m->conf->path, &conf, q->err, q->cap);
    if (q->rc == 0) {
        conf->refs = 1;
        q->rc = namers_make(m, conf, &namers, q->err, q->cap);
    }
    /* the routers bind through m->namers: swap them in first */
    ag__namer **old_namers = m->namers;
    size_t nold = m->nnamers;
    if (q->rc == 0) {
        m->namers = namers;
        m->nnamers = conf->nnamers;
        q->rc = routers_make(m, conf, &routers, q->err, q->cap);
        if (q->rc < 0) {
            m->namers = old_namers;
            m->nnamers = nold;
            namers_free(namers, conf->nnamers);
        }
    }
    if (q->rc < 0) {
        conf_unref(conf);
        m->reload_failures++;
        snprintf(m->last_reload_error, sizeof(m->last_reload_error), "%s", q->err);
        AG_LOG(AG_LOG_WARN, "mesh", "reload_failed why=\"%s\"", q->err);
        return;
    }
    for (size_t i = 0; i < m->nrouters; i++)
        retire(m, m->routers[i]);
    ag_free(m->routers);
    m->routers = routers;
    m->nrouters = conf->nrouters;
    namers_free(old_namers, nold);
    conf_unref(m->conf);
    m->conf = conf;
    apply_log_level(conf);
    m->reloads++;
    m->last_reload_error[0] = '\0';
    ag_metric_add(m->mt.reloads, 1);
    reap_retired(m);
    AG_LOG(AG_LOG_INFO, "mesh", "reloaded config=%s routers=%zu namers=%zu", conf->path,
           conf->nrouters, conf->nnamers);
}

int ag_mesh_reload(ag_mesh *m, char *err, size_t cap)
{
    struct reload_req q = {m, err, cap, 0};
    int rc = mesh_run_on_loop(m, do_reload, &q);
    return rc < 0 ? rc : q.rc;
}

/* The config file changed: reload once it has been quiet for 200 ms. */
static void on_conf_quiet(uv_timer_t *t)
{
    struct ag_mesh *m = t->data;
    char err[AG_ERRMSG_MAX];
    struct reload_req q = {m, err, sizeof(err), 0};
    do_reload(&q);
}

static void on_conf_event(uv_fs_event_t *h, const char *file, int events, int status)
{
    (void)events;
    struct ag_mesh *m = h->data;
    if (status < 0 || !file)
        return;
    const char *base = strrchr(m->conf_path_abs, '/');
    base = base ? base + 1 : m->conf_path_abs;
    if (strcmp(file, base) != 0)
        return;
    uv_timer_start(&m->conf_timer, on_conf_quiet, 200, 0);
}

/* ---- the loop thread ----------------------------------------------------------- */

static void on_check(uv_check_t *c)
{
    (void)c;
    xport_flush_marked();
}

static void on_tick(uv_timer_t *t)
{
    struct ag_mesh *m = t->data;
    uint64_t now = ag_now_ms();
    for (size_t i = 0; i < m->nnamers; i++) {
        ag__namer_stats st;
        ag__namer_get_stats(m->namers[i], &st);
        const char *name = ag__namer_prefix(m->namers[i]);
        ag_metric_set(m->mt.namer_up, st.disconnected_since_ms ? 0 : 1, name);
        ag_metric_set(m->mt.namer_down,
                      st.disconnected_since_ms && now > st.disconnected_since_ms
                          ? (double)(now - st.disconnected_since_ms) / 1000.0
                          : 0,
                      name);
        ag_metric_set(m->mt.namer_errors, (double)st.errors, name);
    }
    for (size_t i = 0; i < m->nrouters; i++)
        mesh_router_sweep(m->routers[i], now);
    reap_retired(m);
}

static void *loop_main(void *arg)
{
    struct ag_mesh *m = arg;
    uv_run(&m->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- admin ---------------------------------------------------------------------- */

struct json_req {
    struct ag_mesh *m;
    ag_buf *out;
    const char *router;
    const char *path;
    const char *dtab;
    int rc;
};

static void build_state(void *arg)
{
    struct json_req *q = arg;
    struct ag_mesh *m = q->m;
    ag_buf *o = q->out;
    int rc = ag_buf_append_str(o, "{\"config\":");
    if (rc == 0)
        rc = ag__json_str(o, m->conf->path);
    if (rc == 0)
        rc = ag_buf_printf(o, ",\"reloads\":%llu,\"reload_failures\":%llu,\"last_reload_error\":",
                           (unsigned long long)m->reloads, (unsigned long long)m->reload_failures);
    if (rc == 0)
        rc = ag__json_str(o, m->last_reload_error);
    if (rc == 0)
        rc = ag_buf_append_str(o, ",\"routers\":[");
    for (size_t i = 0; rc == 0 && i < m->nrouters; i++) {
        if (i)
            rc = ag_buf_append_byte(o, ',');
        if (rc == 0)
            rc = mesh_router_json(m->routers[i], o);
    }
    if (rc == 0)
        rc = ag_buf_append_str(o, "],\"namers\":[");
    for (size_t i = 0; rc == 0 && i < m->nnamers; i++) {
        if (i)
            rc = ag_buf_append_byte(o, ',');
        if (rc == 0)
            rc = ag__namer_json(m->namers[i], o);
    }
    if (rc == 0)
        rc = ag_buf_append_str(o, "]}");
    q->rc = rc;
}

static int admin_state(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    (void)req;
    struct json_req q = {ud, &resp->body, NULL, NULL, NULL, 0};
    int rc = mesh_run_on_loop(ud, build_state, &q);
    if (rc < 0 || q.rc < 0)
        return rc < 0 ? rc : q.rc;
    resp->content_type = "application/json";
    return 0;
}

/* The value of key in a query string, percent-decoded, into out. */
static bool query_get(const char *q, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > kl && strncmp(q, key, kl) == 0 && q[kl] == '=') {
            size_t o = 0;
            for (size_t i = kl + 1; i < len && o + 1 < cap; i++) {
                char c = q[i];
                if (c == '+') {
                    c = ' ';
                } else if (c == '%' && i + 2 < len && ag_hex_digit(q[i + 1]) >= 0 &&
                           ag_hex_digit(q[i + 2]) >= 0) {
                    c = (char)(ag_hex_digit(q[i + 1]) << 4 | ag_hex_digit(q[i + 2]));
                    i += 2;
                }
                out[o++] = c;
            }
            out[o] = '\0';
            return true;
        }
        q = amp ? amp + 1 : NULL;
    }
    return false;
}

static void do_resolve(void *arg)
{
    struct json_req *q = arg;
    struct ag_mesh *m = q->m;
    mesh_router *rt = NULL;
    for (size_t i = 0; i < m->nrouters; i++)
        if (!q->router[0] || strcmp(m->routers[i]->rc->label, q->router) == 0) {
            rt = m->routers[i];
            break;
        }
    if (!rt) {
        q->rc = ag_buf_printf(q->out, "{\"error\":\"no router '%s'\"}", q->router);
        return;
    }
    q->rc = mesh_router_resolve(rt, q->path, q->dtab, q->out);
}

static int admin_resolve(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    char router[128] = "", path[AG__PATH_MAX] = "", dtab[4096] = "";
    query_get(req->query, "router", router, sizeof(router));
    if (!query_get(req->query, "path", path, sizeof(path)) || !path[0]) {
        resp->status = 400;
        return ag_buf_append_str(&resp->body, "give ?path=/svc/NAME[&router=LABEL][&dtab=...]\n");
    }
    query_get(req->query, "dtab", dtab, sizeof(dtab));
    struct json_req q = {ud, &resp->body, router, path, dtab, 0};
    int rc = mesh_run_on_loop(ud, do_resolve, &q);
    if (rc < 0 || q.rc < 0)
        return rc < 0 ? rc : q.rc;
    resp->content_type = "application/json";
    return 0;
}

static int admin_logging(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    (void)ud;
    char level[32] = "";
    if (!query_get(req->query, "level", level, sizeof(level)) && req->body.len > 0 &&
        req->body.len < sizeof(level)) {
        memcpy(level, req->body.ptr, req->body.len);
        level[req->body.len] = '\0';
        char *eq = strchr(level, '=');
        if (eq)
            memmove(level, eq + 1, strlen(eq));
        level[strcspn(level, "\r\n ")] = '\0';
    }
    int l = ag_log_level_parse(level);
    if (l < 0) {
        resp->status = 400;
        return ag_buf_printf(&resp->body, "level must be debug, info, warn, error or off, got "
                                          "'%s'\n", level);
    }
    ag_log_set_level((ag_log_level)l);
    AG_LOG(AG_LOG_INFO, "mesh", "log_level level=%s by=admin", level);
    return ag_buf_printf(&resp->body, "log level %s\n", level);
}

static int admin_reload(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    (void)req;
    char err[AG_ERRMSG_MAX];
    int rc = ag_mesh_reload(ud, err, sizeof(err));
    if (rc < 0) {
        resp->status = 400;
        return ag_buf_printf(&resp->body, "%s\n", err);
    }
    return ag_buf_append_str(&resp->body, "reloaded\n");
}

extern const char ag__mesh_page[];

static int admin_page(const ag_admin_request *req, ag_admin_response *resp, void *ud)
{
    (void)req;
    (void)ud;
    resp->content_type = "text/html; charset=utf-8";
    return ag_buf_append_str(&resp->body, ag__mesh_page);
}

/* Resident bytes of the process (/proc/self/statm counts pages). */
static double rss_bytes(void *ud)
{
    (void)ud;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long size = 0, res = 0;
    int n = fscanf(f, "%lu %lu", &size, &res);
    fclose(f);
    return n == 2 ? (double)res * (double)sysconf(_SC_PAGESIZE) : 0;
}

static bool admin_serving(void *ud)
{
    struct ag_mesh *m = ud;
    return !m->stopping;
}

/* ---- life ---------------------------------------------------------------------- */

ag_mesh *ag_mesh_load(const char *path, char *err, size_t cap)
{
    mesh_conf *conf = NULL;
    if (mesh_conf_load(path, &conf, err, cap) < 0)
        return NULL;
    conf->refs = 1;
    struct ag_mesh *m = ag_calloc(1, sizeof(*m));
    if (!m) {
        conf_unref(conf);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    m->conf = conf;
    /* the namers' own settings are checked by making them, on a loop of
     * their own that runs nothing (so --check and a first load report
     * "unknown namer kind" as a reload does) */
    uv_loop_t tmp;
    if (uv_loop_init(&tmp) == 0) {
        tmp.data = m;
        int rc = 0;
        for (size_t i = 0; rc == 0 && i < conf->nnamers; i++) {
            ag__namer *n = NULL;
            rc = ag__namer_new(conf->cfg, conf->namer_nodes[i], &tmp, &n);
            ag__namer_free(n);
        }
        uv_run(&tmp, UV_RUN_DEFAULT);
        uv_loop_close(&tmp);
        if (rc < 0) {
            snprintf(err, cap, "%s", ag_config_errmsg(conf->cfg));
            m->conf = NULL;
            conf_unref(conf);
            ag_free(m);
            return NULL;
        }
    }
    if (!realpath(path, m->conf_path_abs))
        snprintf(m->conf_path_abs, sizeof(m->conf_path_abs), "%s", path);
    pthread_mutex_init(&m->mu, NULL);
    m->metrics = ag_metrics_new();
    if (!m->metrics) {
        ag_mesh_free(m);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    ag_metrics *r = m->metrics;
    m->mt.requests = ag_metrics_counter(r, "argot_mesh_requests_total",
                                        "Requests routed, by router, service name and endpoint",
                                        "router,service,endpoint");
    m->mt.responses = ag_metrics_counter(r, "argot_mesh_responses_total",
                                         "Requests finished, by outcome (success, failure)",
                                         "router,service,endpoint,outcome");
    m->mt.latency = ag_metrics_histogram(r, "argot_mesh_request_duration_seconds",
                                         "Request latency through the mesh, first header to "
                                         "last byte",
                                         "router,service,endpoint", NULL, 0);
    m->mt.retries = ag_metrics_counter(r, "argot_mesh_retries_total",
                                       "Attempts retried on another endpoint", "router,service");
    m->mt.budget_exhausted = ag_metrics_counter(r, "argot_mesh_retry_budget_exhausted_total",
                                                "Retries refused by the retry budget", "router");
    m->mt.conns = ag_metrics_gauge(r, "argot_mesh_connections",
                                   "Open connections, server side (from clients) and client "
                                   "side (to endpoints)",
                                   "router,side");
    m->mt.denied = ag_metrics_counter(r, "argot_mesh_denied_total",
                                      "Requests refused by the authorization rules, by the "
                                      "caller's party (- without a certificate)",
                                      "router,party");
    m->mt.ep_conns = ag_metrics_gauge(r, "argot_mesh_endpoint_connections",
                                      "Open connections to each endpoint", "router,endpoint");
    m->mt.namer_up = ag_metrics_gauge(r, "argot_mesh_namer_connected",
                                      "1 while a namer reaches its source (etcd), 0 while it "
                                      "keeps the last known endpoints without it",
                                      "namer");
    m->mt.namer_down = ag_metrics_gauge(r, "argot_mesh_namer_disconnected_seconds",
                                        "How long a namer has been without its source",
                                        "namer");
    m->mt.namer_errors = ag_metrics_gauge(r, "argot_mesh_namer_errors",
                                          "Errors a namer met so far (unparsable files and "
                                          "values, failed lookups, broken streams)",
                                          "namer");
    m->mt.reloads = ag_metrics_counter(r, "argot_mesh_config_reloads_total",
                                       "Config reloads applied", NULL);
    ag_metrics_gauge_fn(r, "argot_mesh_resident_bytes", "Resident memory of the process", rss_bytes,
                        NULL);
    return m;
}

int ag_mesh_start(ag_mesh *m, char *err, size_t cap)
{
    if (uv_loop_init(&m->loop) != 0) {
        snprintf(err, cap, "cannot make an event loop");
        return AG_E_SYS;
    }
    m->loop_init = true;
    m->loop.data = m;
    uv_async_init(&m->loop, &m->wake, on_wake);
    m->wake.data = m;
    uv_check_init(&m->loop, &m->check);
    uv_check_start(&m->check, on_check);
    uv_timer_init(&m->loop, &m->tick);
    m->tick.data = m;
    uv_timer_start(&m->tick, on_tick, 1000, 1000);
    uv_timer_init(&m->loop, &m->conf_timer);
    m->conf_timer.data = m;
    uv_fs_event_init(&m->loop, &m->conf_watch);
    m->conf_watch.data = m;
    if (mesh_h2_upstream_init() < 0) {
        snprintf(err, cap, "out of memory");
        return AG_E_NOMEM;
    }
    apply_log_level(m->conf);
    int rc = namers_make(m, m->conf, &m->namers, err, cap);
    if (rc < 0)
        return rc;
    m->nnamers = m->conf->nnamers;
    rc = routers_make(m, m->conf, &m->routers, err, cap);
    if (rc < 0)
        return rc;
    m->nrouters = m->conf->nrouters;
    /* the config file's directory: a change of the file reloads */
    char dir[sizeof(m->conf_path_abs)];
    memcpy(dir, m->conf_path_abs, sizeof(dir));
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (uv_fs_event_start(&m->conf_watch, on_conf_event, slash ? dir : ".", 0) < 0)
        AG_LOG(AG_LOG_WARN, "mesh", "config_watch_failed dir=%s", dir);
    if (m->conf->admin_port >= 0) {
        ag_admin_opts ao;
        ag_admin_opts_init(&ao);
        ao.metrics = m->metrics;
        ao.serving = admin_serving;
        ao.serving_ud = m;
        m->admin = ag_admin_new(&ao);
        if (!m->admin) {
            snprintf(err, cap, "out of memory");
            return AG_E_NOMEM;
        }
        ag_admin_route(m->admin, "GET", "/", admin_page, m);
        ag_admin_route(m->admin, "GET", "/admin/state.json", admin_state, m);
        ag_admin_route(m->admin, "GET", "/delegator.json", admin_resolve, m);
        ag_admin_route(m->admin, "GET", "/admin/resolve", admin_resolve, m);
        ag_admin_route(m->admin, "POST", "/logging", admin_logging, m);
        ag_admin_route(m->admin, "POST", "/admin/reload", admin_reload, m);
        char addr[128];
        snprintf(addr, sizeof(addr), strchr(m->conf->admin_ip, ':') ? "[%s]:%d" : "%s:%d",
                 m->conf->admin_ip, m->conf->admin_port);
        if (ag_admin_start(m->admin, addr) < 0) {
            snprintf(err, cap, "admin: %s", ag_admin_errmsg(m->admin));
            return AG_E_IO;
        }
    }
    if (pthread_create(&m->thread, NULL, loop_main, m) != 0) {
        snprintf(err, cap, "cannot start the loop thread");
        return AG_E_SYS;
    }
    m->running = true;
    return 0;
}

struct port_req {
    struct ag_mesh *m;
    size_t router, server;
    int port;
};

static void get_port(void *arg)
{
    struct port_req *q = arg;
    q->port = -1;
    if (q->router >= q->m->nrouters)
        return;
    size_t i = 0;
    for (mesh_listener *l = q->m->routers[q->router]->listeners; l; l = l->next, i++)
        if (i == q->server)
            q->port = l->port;
}

int ag_mesh_port(ag_mesh *m, size_t router, size_t server)
{
    struct port_req q = {m, router, server, -1};
    mesh_run_on_loop(m, get_port, &q);
    return q.port;
}

const char *ag_mesh_router_label(const ag_mesh *m, size_t router)
{
    return router < m->conf->nrouters ? m->conf->routers[router].label : NULL;
}

const char *ag_mesh_server_ip(const ag_mesh *m, size_t router, size_t server)
{
    if (router >= m->conf->nrouters || server >= m->conf->routers[router].nservers)
        return NULL;
    return m->conf->routers[router].servers[server].ip;
}

int ag_mesh_admin_port(const ag_mesh *m)
{
    return m->admin ? ag_admin_port(m->admin) : -1;
}

const char *ag_mesh_admin_ip(const ag_mesh *m)
{
    return m->conf->admin_ip;
}

const char *ag_mesh_config_path(const ag_mesh *m)
{
    return m->conf->path;
}

uint64_t ag_mesh_grace_ms(const ag_mesh *m)
{
    return m->conf->shutdown_grace_ms;
}

static void do_drain(void *arg)
{
    struct ag_mesh *m = arg;
    for (size_t i = 0; i < m->nrouters; i++) {
        mesh_router *rt = m->routers[i];
        while (rt->listeners) {
            mesh_listener *l = rt->listeners;
            rt->listeners = l->next;
            listener_close(l);
        }
        if (rt->rc->proto == MESH_H2)
            mesh_h2_drain(rt);
        else
            mesh_h1_drain(rt);
    }
}

struct count_req {
    struct ag_mesh *m;
    size_t n;
};

static void count_conns(void *arg)
{
    struct count_req *q = arg;
    q->n = 0;
    for (size_t i = 0; i < q->m->nrouters; i++)
        q->n += q->m->routers[i]->nconns;
    for (mesh_router *rt = q->m->retired; rt; rt = rt->next_retired)
        q->n += rt->nconns;
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void do_stop(void *arg)
{
    struct ag_mesh *m = arg;
    for (size_t i = 0; i < m->nrouters; i++) {
        if (m->routers[i]->rc->proto == MESH_H2)
            mesh_h2_close_all(m->routers[i]);
        else
            mesh_h1_close_all(m->routers[i]);
    }
    for (mesh_router *rt = m->retired; rt; rt = rt->next_retired) {
        if (rt->rc->proto == MESH_H2)
            mesh_h2_close_all(rt);
        else
            mesh_h1_close_all(rt);
    }
    uv_timer_stop(&m->tick);
    uv_timer_stop(&m->conf_timer);
    uv_fs_event_stop(&m->conf_watch);
    uv_close((uv_handle_t *)&m->tick, NULL);
    uv_close((uv_handle_t *)&m->conf_timer, NULL);
    uv_close((uv_handle_t *)&m->conf_watch, NULL);
    uv_check_stop(&m->check);
    uv_close((uv_handle_t *)&m->check, NULL);
    m->stop_loop = true;
}

/* The last task: the loop ends once the handles still closing are closed. */
static void close_wake(void *arg)
{
    struct ag_mesh *m = arg;
    uv_close((uv_handle_t *)&m->wake, NULL);
}

static void final_free(void *arg)
{
    struct ag_mesh *m = arg;
    for (size_t i = 0; i < m->nrouters; i++)
        router_destroy(m->routers[i]);
    ag_free(m->routers);
    m->routers = NULL;
    m->nrouters = 0;
    while (m->retired) {
        mesh_router *rt = m->retired;
        m->retired = rt->next_retired;
        router_destroy(rt);
    }
    namers_free(m->namers, m->nnamers);
    m->namers = NULL;
    m->nnamers = 0;
}

void ag_mesh_shutdown(ag_mesh *m, uint64_t grace_ms)
{
    if (!m->running) {
        if (m->loop_init && !m->loop_closed) {
            final_free(m);
            uv_walk(&m->loop, walk_close, NULL);
            uv_run(&m->loop, UV_RUN_DEFAULT);
            uv_loop_close(&m->loop);
            m->loop_closed = true;
        }
        if (m->admin)
            ag_admin_shutdown(m->admin);
        return;
    }
    pthread_mutex_lock(&m->mu);
    bool was = m->stopping;
    pthread_mutex_unlock(&m->mu);
    if (was)
        return;
    mesh_run_on_loop(m, do_drain, m);
    uint64_t until = ag_now_ms() + grace_ms;
    for (;;) {
        struct count_req q = {m, 0};
        mesh_run_on_loop(m, count_conns, &q);
        if (q.n == 0 || ag_now_ms() >= until)
            break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    mesh_run_on_loop(m, do_stop, m);
    /* the connections close over the next loop turns; then the rest */
    for (int i = 0; i < 100; i++) {
        struct count_req q = {m, 0};
        mesh_run_on_loop(m, count_conns, &q);
        if (q.n == 0)
            break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    mesh_run_on_loop(m, final_free, m);
    mesh_run_on_loop(m, close_wake, m);
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_mutex_unlock(&m->mu);
    /* the loop ends once every handle has closed */
    pthread_join(m->thread, NULL);
    m->running = false;
    uv_walk(&m->loop, walk_close, NULL);
    uv_run(&m->loop, UV_RUN_DEFAULT);
    uv_loop_close(&m->loop);
    m->loop_closed = true;
    if (m->admin)
        ag_admin_shutdown(m->admin);
}

void ag_mesh_free(ag_mesh *m)
{
    if (!m)
        return;
    ag_mesh_shutdown(m, 0);
    ag_admin_free(m->admin);
    conf_unref(m->conf);
    ag_metrics_free(m->metrics);
    pthread_mutex_destroy(&m->mu);
    ag_free(m);
}
