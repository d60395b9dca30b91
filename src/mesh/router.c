/*
 * A router's naming and binding: request -> name (the identifier) -> tree
 * of bound names (the dtab's delegation, cached per name) -> one bound
 * name (alternation: the first branch that is not negative; union: a
 * smooth weighted round robin over the branches that are not, so a 9:1
 * split is exactly 9:1 over every ten requests) -> its cluster: the
 * namer's binding, kept current, and a balancer over its endpoints.
 *
 * Clusters are made on first use and swept after a minute without a
 * request. A binding still pending (a first DNS lookup) makes the request
 * wait: mesh_route_request says AG_E_AGAIN and the proxy asks again 20 ms
 * later, for up to 2 s.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define NAME_CACHE_MAX 4096
#define CLUSTER_IDLE_MS 60000
/* Clusters per router: past this, a new one first evicts an unused one
 * that binds to nothing (a flood of made-up names must not grow memory
 * or keep namers busy without bound), else the request is refused. */
#define CLUSTER_MAX 4096

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* ---- the name cache ---------------------------------------------------------------- */

static void entry_free(name_entry *e)
{
    ag_free(e->name);
    ag__ntree_free(e->tree);
    ag_free(e->err);
    ag_free(e->cur);
    ag_free(e);
}

static size_t count_union_kids(const ag__ntree *t)
{
    if (!t)
        return 0;
    size_t n = 0;
    if (t->kind == AG__NT_UNION)
        n += t->n;
    if (t->kind == AG__NT_UNION || t->kind == AG__NT_ALT)
        for (size_t i = 0; i < t->n; i++)
            n += count_union_kids(t->kids[i]);
    return n;
}

static name_entry *name_lookup(mesh_router *rt, const char *name)
{
    uint32_t h = hash_str(name) & 255;
    for (name_entry *e = rt->names[h]; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    if (rt->nnames >= NAME_CACHE_MAX) {
        /* a flood of distinct names: start over rather than grow */
        for (size_t i = 0; i < 256; i++)
            while (rt->names[i]) {
                name_entry *x = rt->names[i];
                rt->names[i] = x->next;
                entry_free(x);
            }
        rt->nnames = 0;
    }
    name_entry *e = ag_calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->name = ag_strdup(name);
    if (!e->name) {
        ag_free(e);
        return NULL;
    }
    ag_errbuf err = {0};
    if (ag__dtab_delegate(rt->rc->dtab, name, &e->tree, NULL, &err) < 0) {
        e->tree = NULL;
        e->err = ag_strdup(err.msg);
    } else {
        size_t k = count_union_kids(e->tree);
        if (k > 0)
            e->cur = ag_calloc(k, sizeof(double));
    }
    e->next = rt->names[h];
    rt->names[h] = e;
    rt->nnames++;
    return e;
}

/* ---- clusters ---------------------------------------------------------------------------- */

static void on_bound_change(void *ud, ag__bound *b);

static void ep_gone(void *ud, ag__ep *ep)
{
    mesh_cluster *cl = ud;
    mesh_epc_gone(cl, ep);
}

static ag__namer *namer_for(struct ag_mesh *m, const char *rest, size_t *plen)
{
    ag__namer *best = NULL;
    size_t bl = 0;
    for (size_t i = 0; i < m->nnamers; i++) {
        const char *p = ag__namer_prefix(m->namers[i]);
        size_t l = strlen(p);
        if (mesh_path_has_prefix(rest, p) && l > bl) {
            best = m->namers[i];
            bl = l;
        }
    }
    *plen = bl;
    return best;
}

static void cluster_free(mesh_cluster *cl)
{
    if (cl->watch)
        ag__bound_unwatch(cl->bound, cl->watch);
    if (cl->bound)
        ag__bound_unref(cl->bound);
    if (cl->lb) {
        /* every endpoint leaves: their connections close as they go */
        ag__lb_update(cl->lb, NULL, 0, ep_gone, cl);
        ag__lb_free(cl->lb);
    }
    ag__tls_ctx_free(cl->tls);
    ag_free(cl->id);
    ag_free(cl);
}

static bool cluster_idle(const mesh_cluster *cl)
{
    if (cl->refs > 0)
        return false;
    for (size_t i = 0; i < ag__lb_size(cl->lb); i++)
        if (ag__lb_get(cl->lb, i)->outstanding > 0)
            return false;
    return true;
}

static mesh_cluster *cluster_get(mesh_router *rt, const char *id, char *why, size_t cap)
{
    size_t count = 0;
    mesh_cluster **victim = NULL;
    for (mesh_cluster **pp = &rt->clusters; *pp; pp = &(*pp)->next, count++) {
        mesh_cluster *cl = *pp;
        if (strcmp(cl->id, id) == 0)
            return cl;
        if (!victim && cl->bound->state != AG__BIND_BOUND && cluster_idle(cl))
            victim = pp;
    }
    if (count >= CLUSTER_MAX) {
        if (!victim) {
            snprintf(why, cap, "too many services bound at once (%d)", CLUSTER_MAX);
            return NULL;
        }
        mesh_cluster *v = *victim;
        *victim = v->next;
        cluster_free(v);
    }
    ag__bound *b = NULL;
    if (strncmp(id, "/$/", 3) == 0 || strcmp(id, "/$") == 0) {
        b = ag__bound_system(id + 2);
    } else {
        size_t pl = 0;
        ag__namer *n = namer_for(rt->m, id + 2, &pl);
        if (!n) {
            snprintf(why, cap, "no namer for %s", id);
            return NULL;
        }
        const char *residual = id + 2 + pl;
        b = ag__namer_bind(n, residual[0] ? residual : "/");
    }
    if (!b) {
        snprintf(why, cap, "out of memory binding %s", id);
        return NULL;
    }
    mesh_cluster *cl = ag_calloc(1, sizeof(*cl));
    if (!cl) {
        ag__bound_unref(b);
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    cl->rt = rt;
    cl->bound = b;
    cl->id = ag_strdup(id);
    cl->cc = mesh_client_for(rt->rc, id);
    cl->lb = ag__lb_new(&cl->cc->lb);
    if (!cl->id || !cl->lb) {
        cluster_free(cl);
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    if (cl->cc->tls.on) {
        ag_errbuf e = {0};
        ag__tls_ctx_opts o = {
            .server = false,
            .cert_file = cl->cc->tls.cert[0] ? cl->cc->tls.cert : NULL,
            .key_file = cl->cc->tls.key[0] ? cl->cc->tls.key : NULL,
            .ca_file = cl->cc->tls.ca[0] ? cl->cc->tls.ca : NULL,
            .server_name = cl->cc->tls.server_name,
            .alpn = rt->rc->proto == MESH_HTTP ? "http/1.1" : NULL,
        };
        if (ag__tls_ctx_new(&cl->tls, &o, &e) < 0) {
            snprintf(why, cap, "%s: client TLS: %s", id, e.msg);
            cluster_free(cl);
            return NULL;
        }
    }
    cl->watch = ag__bound_watch(b, on_bound_change, cl);
    if (!cl->watch) {
        cluster_free(cl);
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    if (b->state == AG__BIND_BOUND)
        ag__lb_update(cl->lb, b->addrs, b->naddrs, ep_gone, cl);
    cl->next = rt->clusters;
    rt->clusters = cl;
    AG_LOG(AG_LOG_INFO, "mesh", "cluster_new router=%s id=%s endpoints=%zu", rt->rc->label, id,
           b->naddrs);
    return cl;
}

static void on_bound_change(void *ud, ag__bound *b)
{
    mesh_cluster *cl = ud;
    if (b->state == AG__BIND_BOUND) {
        if (ag__lb_update(cl->lb, b->addrs, b->naddrs, ep_gone, cl) < 0)
            AG_LOG(AG_LOG_WARN, "mesh", "endpoints_update_failed id=%s why=\"out of memory\"",
                   cl->id);
        else
            AG_LOG(AG_LOG_INFO, "mesh", "endpoints router=%s id=%s n=%zu", cl->rt->rc->label,
                   cl->id, b->naddrs);
    } else if (b->state == AG__BIND_NEG) {
        ag__lb_update(cl->lb, NULL, 0, ep_gone, cl);
        AG_LOG(AG_LOG_INFO, "mesh", "endpoints router=%s id=%s n=0 why=\"%s\"",
               cl->rt->rc->label, cl->id, b->why ? b->why : "negative");
    }
}

/* ---- binding a tree ------------------------------------------------------------------ */

enum { B_OK, B_NEG, B_FAIL, B_EMPTY, B_PENDING };

struct bind_ctx {
    mesh_router *rt;
    name_entry *e;       /* for union state; NULL: random choice */
    size_t ui;           /* next union slot */
    char *why;
    size_t cap;
};

/* Whether t would bind to something (not negative), without choosing. */
static int probe(struct bind_ctx *b, const ag__ntree *t)
{
    switch (t->kind) {
    case AG__NT_NEG: return B_NEG;
    case AG__NT_FAIL: return B_FAIL;
    case AG__NT_EMPTY: return B_EMPTY;
    case AG__NT_LEAF: {
        char why[256];
        mesh_cluster *cl = cluster_get(b->rt, t->path, why, sizeof(why));
        if (!cl)
            return B_NEG;
        if (cl->bound->state == AG__BIND_PENDING)
            return B_PENDING;
        if (cl->bound->state == AG__BIND_NEG)
            return B_NEG;
        if (cl->bound->state == AG__BIND_FAILED)
            return B_FAIL;
        return B_OK;
    }
    case AG__NT_ALT:
        for (size_t i = 0; i < t->n; i++) {
            int r = probe(b, t->kids[i]);
            if (r != B_NEG)
                return r;
        }
        return B_NEG;
    case AG__NT_UNION: {
        int best = B_NEG;
        for (size_t i = 0; i < t->n; i++) {
            int r = probe(b, t->kids[i]);
            if (r == B_OK || r == B_PENDING)
                return r;
            if (r != B_NEG)
                best = r;
        }
        return best;
    }
    }
    return B_NEG;
}

static int bind_tree(struct bind_ctx *b, const ag__ntree *t, mesh_cluster **out)
{
    switch (t->kind) {
    case AG__NT_NEG: return B_NEG;
    case AG__NT_FAIL: return B_FAIL;
    case AG__NT_EMPTY: return B_EMPTY;
    case AG__NT_LEAF: {
        mesh_cluster *cl = cluster_get(b->rt, t->path, b->why, b->cap);
        if (!cl)
            return B_NEG;
        switch (cl->bound->state) {
        case AG__BIND_PENDING: return B_PENDING;
        case AG__BIND_NEG:
            snprintf(b->why, b->cap, "%s: %s", t->path, cl->bound->why ? cl->bound->why : "negative");
            return B_NEG;
        case AG__BIND_FAILED:
            snprintf(b->why, b->cap, "%s: %s", t->path, cl->bound->why ? cl->bound->why : "failed");
            return B_FAIL;
        case AG__BIND_BOUND:
            *out = cl;
            return B_OK;
        }
        return B_NEG;
    }
    case AG__NT_ALT:
        for (size_t i = 0; i < t->n; i++) {
            int r = bind_tree(b, t->kids[i], out);
            if (r != B_NEG)
                return r;
        }
        return B_NEG;
    case AG__NT_UNION: {
        size_t base = b->ui;
        b->ui += t->n;
        /* the branches that bind; their weights share the traffic */
        double total = 0;
        int ok[AG__TREE_MAX_BRANCHES];
        int last = B_NEG;
        for (size_t i = 0; i < t->n; i++) {
            ok[i] = probe(b, t->kids[i]);
            if (ok[i] == B_OK)
                total += t->weights[i];
            else if (ok[i] == B_PENDING)
                return B_PENDING;
            else if (ok[i] != B_NEG)
                last = ok[i];
        }
        if (total <= 0)
            return last;
        size_t pick = 0;
        if (b->e && b->e->cur) {
            /* smooth weighted round robin (nginx's): each branch gains its
             * weight, the largest is chosen and pays the total */
            double *cur = b->e->cur + base;
            double best = -1e300;
            for (size_t i = 0; i < t->n; i++) {
                if (ok[i] != B_OK)
                    continue;
                cur[i] += t->weights[i];
                if (cur[i] > best) {
                    best = cur[i];
                    pick = i;
                }
            }
            cur[pick] -= total;
        } else {
            double r = (double)ag_random_uniform(1u << 30) / (double)(1u << 30) * total;
            for (size_t i = 0; i < t->n; i++) {
                if (ok[i] != B_OK)
                    continue;
                pick = i;
                if (r < t->weights[i])
                    break;
                r -= t->weights[i];
            }
        }
        return bind_tree(b, t->kids[pick], out);
    }
    }
    return B_NEG;
}

int mesh_name_request(mesh_router *rt, const ag__req_view *req, mesh_route *r, char *why,
                      size_t cap)
{
    ag_buf name;
    ag_buf_init(&name, AG__PATH_MAX);
    ag_errbuf err = {0};
    r->name[0] = '\0';
    r->cl = NULL;
    int rc = ag__ident_name(&rt->rc->ident, req, &name, &err);
    if (rc < 0) {
        ag_buf_cleanup(&name);
        snprintf(why, cap, "%s: cannot name the request: %s", rt->rc->label, err.msg);
        return AG_E_MESH_ROUTE;
    }
    snprintf(r->name, sizeof(r->name), "%s", (const char *)name.data);
    ag_buf_cleanup(&name);
    r->sc = mesh_service_for(rt->rc, r->name);
    return 0;
}

int mesh_route_request(mesh_router *rt, const char *override, mesh_route *r, char *why,
                       size_t cap)
{
    ag_errbuf err = {0};
    int rc;
    why[0] = '\0';
    r->cl = NULL;
    ag__ntree *own = NULL;
    name_entry *e = NULL;
    const ag__ntree *tree;
    if (override && override[0]) {
        ag__dtab *ov = NULL, *all = NULL;
        if (ag__dtab_parse(override, strlen(override), &ov, NULL, NULL, &err) < 0) {
            snprintf(why, cap, "bad l5d-dtab header: %s", err.msg);
            return AG_E_MESH_ROUTE;
        }
        all = ag__dtab_concat(rt->rc->dtab, ov);
        ag__dtab_free(ov);
        if (!all) {
            snprintf(why, cap, "out of memory");
            return AG_E_MESH_UNAVAILABLE;
        }
        rc = ag__dtab_delegate(all, r->name, &own, NULL, &err);
        ag__dtab_free(all);
        if (rc < 0) {
            snprintf(why, cap, "%s: %s", r->name, err.msg);
            return AG_E_MESH_ROUTE;
        }
        tree = own;
    } else {
        e = name_lookup(rt, r->name);
        if (!e) {
            snprintf(why, cap, "out of memory");
            return AG_E_MESH_UNAVAILABLE;
        }
        if (!e->tree) {
            snprintf(why, cap, "%s: %s", r->name, e->err ? e->err : "delegation failed");
            return AG_E_MESH_ROUTE;
        }
        tree = e->tree;
    }
    struct bind_ctx b = {rt, e, 0, why, cap};
    int res = bind_tree(&b, tree, &r->cl);
    ag__ntree_free(own);
    switch (res) {
    case B_OK:
        r->cl->last_used_ms = ag_now_ms();
        return 0;
    case B_PENDING:
        snprintf(why, cap, "%s: binding in progress", r->name);
        return AG_E_AGAIN;
    case B_NEG:
        if (!why[0])
            snprintf(why, cap, "no route for %s", r->name);
        else {
            char tmp[1200];
            snprintf(tmp, sizeof(tmp), "no route for %.500s (%.500s)", r->name, why);
            snprintf(why, cap, "%s", tmp);
        }
        return AG_E_MESH_ROUTE;
    case B_EMPTY:
        snprintf(why, cap, "%s is bound to no endpoint", r->name);
        return AG_E_MESH_UNAVAILABLE;
    default:
        if (!why[0])
            snprintf(why, cap, "%s: binding failed", r->name);
        return AG_E_MESH_UNAVAILABLE;
    }
}

void mesh_router_sweep(mesh_router *rt, uint64_t now_ms)
{
    mesh_cluster **pp = &rt->clusters;
    while (*pp) {
        mesh_cluster *cl = *pp;
        if (cluster_idle(cl) && now_ms - cl->last_used_ms > CLUSTER_IDLE_MS) {
            *pp = cl->next;
            AG_LOG(AG_LOG_DEBUG, "mesh", "cluster_idle router=%s id=%s", rt->rc->label, cl->id);
            cluster_free(cl);
            continue;
        }
        pp = &cl->next;
    }
}

void mesh_router_free(mesh_router *rt)
{
    while (rt->clusters) {
        mesh_cluster *cl = rt->clusters;
        rt->clusters = cl->next;
        cluster_free(cl);
    }
    for (size_t i = 0; i < 256; i++)
        while (rt->names[i]) {
            name_entry *x = rt->names[i];
            rt->names[i] = x->next;
            entry_free(x);
        }
    if (rt->access_log && rt->access_log != stderr)
        fclose(rt->access_log);
    ag_free(rt);
}

/* ---- what both proxies do per request ------------------------------------------------- */

bool mesh_authorize(mesh_router *rt, const char *party, const char *path, const char *dst,
                    char *why, size_t cap)
{
    if (!rt->rc->authz.on)
        return true;
    const mesh_rule *rule = NULL;
    if (mesh_authz_allows(&rt->rc->authz, party, path, dst, &rule))
        return true;
    AG_LOG(AG_LOG_WARN, "mesh", "denied router=%s party=%s path=%s name=%s rule=%s%d",
           rt->rc->label, party ? party : "-", path, dst ? dst : "-",
           rule ? "line " : "default deny ", rule ? rule->line : 0);
    ag_metric_add(rt->m->mt.denied, 1, rt->rc->label, party ? party : "-");
    snprintf(why, cap, "%s may not call %.300s%s%.300s (%s)",
             party ? party : "a caller without a certificate", path, dst ? " for " : "",
             dst ? dst : "", rule ? "denied by a rule" : "no rule allows it");
    return false;
}

bool mesh_idempotent(const char *method)
{
    static const char *const ok[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", NULL};
    for (size_t i = 0; ok[i]; i++)
        if (strcmp(method, ok[i]) == 0)
            return true;
    return false;
}

bool mesh_retryable(const mesh_service_conf *sc, const char *method, int grpc_status, int status)
{
    if (grpc_status >= 0)
        return sc->classifier == CLASS_GRPC && grpc_status == 14; /* UNAVAILABLE */
    if (status < 500)
        return false;
    switch (sc->classifier) {
    case CLASS_GRPC:
    case CLASS_IDEMPOTENT_5XX: return mesh_idempotent(method);
    case CLASS_READ_5XX:
        return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
               strcmp(method, "OPTIONS") == 0 || strcmp(method, "TRACE") == 0;
    default: return false;
    }
}

bool mesh_timer_arm(struct ag_mesh *m, uv_timer_t **t, void *ud, uv_timer_cb fn, uint64_t ms)
{
    if (!*t) {
        *t = ag_malloc(sizeof(**t));
        if (!*t)
            return false;
        uv_timer_init(&m->loop, *t);
        (*t)->data = ud;
    }
    uv_timer_start(*t, fn, ms, 0);
    return true;
}

/* ---- JSON for the admin page ------------------------------------------------------------ */

int mesh_router_json(mesh_router *rt, ag_buf *o)
{
    const mesh_router_conf *rc = rt->rc;
    int r = ag_buf_append_str(o, "{\"label\":");
    if (r == 0)
        r = ag__json_str(o, rc->label);
    if (r == 0)
        r = ag_buf_printf(o, ",\"protocol\":\"%s\",\"dtab\":", rc->proto == MESH_H2 ? "h2" : "http");
    if (r == 0)
        r = ag__json_str(o, rc->dtab_text);
    if (r == 0)
        r = ag_buf_printf(o, ",\"servers\":[");
    size_t i = 0;
    for (mesh_listener *l = rt->listeners; r == 0 && l; l = l->next, i++)
        r = ag_buf_printf(o, "%s{\"ip\":\"%s\",\"port\":%d,\"tls\":%s}", i ? "," : "",
                          rc->servers[i].ip, l->port, l->tls ? "true" : "false");
    if (r == 0)
        r = ag_buf_printf(o,
                          "],\"connections\":%zu,\"requests\":%llu,\"retries\":%llu,"
                          "\"budget_exhausted\":%llu,\"retry_budget\":%.1f,\"clusters\":[",
                          rt->nconns, (unsigned long long)rt->requests,
                          (unsigned long long)rt->retries,
                          (unsigned long long)rt->budget_exhausted,
                          ag__budget_balance(&rt->budget, ag_now_ms()));
    i = 0;
    for (mesh_cluster *cl = rt->clusters; r == 0 && cl; cl = cl->next, i++) {
        static const char *const states[] = {"pending", "bound", "neg", "failed"};
        double sr = cl->requests ? (double)cl->successes / (double)(cl->successes + cl->failures
                                                                   ? cl->successes + cl->failures
                                                                   : 1)
                                 : 1.0;
        r = ag_buf_printf(o, "%s{\"id\":", i ? "," : "");
        if (r == 0)
            r = ag__json_str(o, cl->id);
        if (r == 0)
            r = ag_buf_printf(o,
                              ",\"state\":\"%s\",\"balancer\":\"%s\",\"requests\":%llu,"
                              "\"successes\":%llu,\"failures\":%llu,\"success_rate\":%.4f,"
                              "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"why\":",
                              states[cl->bound->state], ag__lb_kind_name(cl->cc->lb.kind),
                              (unsigned long long)cl->requests,
                              (unsigned long long)cl->successes,
                              (unsigned long long)cl->failures, sr, lat_quantile(&cl->lat, 0.5),
                              lat_quantile(&cl->lat, 0.99));
        if (r == 0)
            r = cl->bound->why ? ag__json_str(o, cl->bound->why) : ag_buf_append_str(o, "null");
        if (r == 0)
            r = ag_buf_append_str(o, ",\"endpoints\":");
        if (r == 0)
            r = ag__lb_json(cl->lb, o);
        if (r == 0)
            r = ag_buf_append_byte(o, '}');
    }
    if (r == 0)
        r = ag_buf_append_str(o, "]}");
    return r;
}

int mesh_router_resolve(mesh_router *rt, const char *path, const char *dtab_extra, ag_buf *o)
{
    ag_errbuf err = {0};
    ag__dtab *extra = NULL, *all = NULL;
    ag_buf trace;
    ag_buf_init(&trace, 1 << 20);
    ag__ntree *tree = NULL;
    int r = 0;
    if (dtab_extra && dtab_extra[0] &&
        ag__dtab_parse(dtab_extra, strlen(dtab_extra), &extra, NULL, NULL, &err) < 0) {
        r = ag_buf_append_str(o, "{\"error\":");
        if (r == 0)
            r = ag__json_str(o, err.msg);
        ag_buf_cleanup(&trace);
        return r == 0 ? ag_buf_append_byte(o, '}') : r;
    }
    all = ag__dtab_concat(rt->rc->dtab, extra);
    ag__dtab_free(extra);
    if (!all) {
        ag_buf_cleanup(&trace);
        return AG_E_NOMEM;
    }
    int dr = ag__dtab_delegate(all, path, &tree, &trace, &err);
    ag__dtab_free(all);
    r = ag_buf_append_str(o, "{\"path\":");
    if (r == 0)
        r = ag__json_str(o, path);
    if (r == 0)
        r = ag_buf_append_str(o, ",\"trace\":");
    if (r == 0)
        r = ag__json_str(o, trace.data ? (const char *)trace.data : "");
    if (r == 0 && dr < 0) {
        r = ag_buf_append_str(o, ",\"error\":");
        if (r == 0)
            r = ag__json_str(o, err.msg);
    } else if (r == 0) {
        ag_buf t;
        ag_buf_init(&t, 1 << 20);
        r = ag__ntree_show(tree, &t);
        if (r == 0)
            r = ag_buf_append_str(o, ",\"tree\":");
        if (r == 0)
            r = ag__json_str(o, t.data ? (const char *)t.data : "");
        ag_buf_cleanup(&t);
        /* and what it binds to now (without counting a request) */
        char why[512] = "";
        mesh_cluster *cl = NULL;
        struct bind_ctx b = {rt, NULL, 0, why, sizeof(why)};
        int res = r == 0 ? bind_tree(&b, tree, &cl) : B_FAIL;
        static const char *const names[] = {"bound", "neg", "fail", "empty", "pending"};
        if (r == 0)
            r = ag_buf_printf(o, ",\"result\":\"%s\",\"bound\":", names[res]);
        if (r == 0)
            r = cl ? ag__json_str(o, cl->id) : ag_buf_append_str(o, "null");
        if (r == 0 && cl) {
            r = ag_buf_append_str(o, ",\"endpoints\":");
            if (r == 0)
                r = ag__lb_json(cl->lb, o);
        }
        if (r == 0 && why[0]) {
            r = ag_buf_append_str(o, ",\"why\":");
            if (r == 0)
                r = ag__json_str(o, why);
        }
    }
    ag__ntree_free(tree);
    ag_buf_cleanup(&trace);
    return r == 0 ? ag_buf_append_byte(o, '}') : r;
}

/* ---- latency histogram ------------------------------------------------------------ */

/* bucket i holds latencies up to 10 us * 2^(i/2) */
static double bucket_top_ms(int i)
{
    double v = 0.01;
    for (int k = 0; k < i / 2; k++)
        v *= 2;
    return (i & 1) ? v * 1.41421356 : v;
}

void lat_add(lat_hist *h, double ms)
{
    int i = 0;
    while (i < LAT_BUCKETS - 1 && ms > bucket_top_ms(i))
        i++;
    h->b[i]++;
    h->n++;
}

double lat_quantile(const lat_hist *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)((double)h->n * q);
    if (want >= h->n)
        want = h->n - 1;
    uint64_t seen = 0;
    for (int i = 0; i < LAT_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > want)
            return bucket_top_ms(i);
    }
    return bucket_top_ms(LAT_BUCKETS - 1);
}
