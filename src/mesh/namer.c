/*
 * Namers, the part every kind shares (namer.h is the contract, namer_int.h
 * lists the invariants): bindings with their references and watchers,
 * endpoint helpers, the admin page's JSON, the dispatch of a config item to
 * its kind (fs, dns, dnssrv, etcd in their files), the static namer and the
 * built-in names under /$.
 *
 * Bindings. A namer keeps its live bindings in a list keyed by residual;
 * binding a name already bound returns the same object with one more
 * reference. The last ag__bound_unref unlinks it and asks the kind to stop
 * keeping it current (bind_release) before freeing it. ag__namer_free
 * detaches every binding the same way but leaves them allocated: their
 * holders still own references, and the bindings keep their last state.
 *
 * Watchers are called in the order they were added, after each change. A
 * watcher may unwatch itself or others, add watchers (heard from the next
 * change on: the pass stops at the watcher that was last when it began), or
 * unref the binding: during the pass the binding holds a reference of its
 * own, and unwatched watchers are only marked (fn = NULL) until the
 * outermost pass ends, so the list under iteration never loses a node.
 *
 * Loop thread only.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "namer_int.h"

/* Longest residual a namer takes (dtab.h's AG__PATH_MAX). */
#define NAME_MAX_LEN 1024

/* ------------------------------------------------------------------------ */
/* Endpoints                                                                 */
/* ------------------------------------------------------------------------ */

int ag__addrs_dup(const ag__addr *a, size_t n, ag__addr **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    ag__addr *c = ag_calloc(n, sizeof(*c));
    if (!c)
        return AG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        c[i] = a[i];
        c[i].host = ag_strdup(a[i].host);
        if (!c[i].host) {
            ag__addrs_free(c, i);
            return AG_E_NOMEM;
        }
    }
    *out = c;
    return 0;
}

void ag__addrs_free(ag__addr *a, size_t n)
{
    if (!a)
        return;
    for (size_t i = 0; i < n; i++)
        ag_free(a[i].host);
    ag_free(a);
}

static bool seg_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("_:.#$%-", c) != NULL;
}

int ag__path_segments(const char *path, ag_slice *segs, int max)
{
    if (!path || path[0] == '\0' || strcmp(path, "/") == 0)
        return path ? 0 : -1;
    if (path[0] != '/')
        return -1;
    int n = 0;
    const char *p = path;
    while (*p == '/') {
        const char *s = ++p;
        while (seg_char((unsigned char)*p))
            p++;
        if (p == s)
            return -1;
        if (n < max)
            segs[n] = ag_slice_make(s, (size_t)(p - s));
        n++;
    }
    return *p == '\0' ? n : -1;
}

bool ag__host_valid(const char *s, size_t len)
{
    char tmp[AG__NAMER_HOST_MAX + 1];
    if (len == 0 || len > AG__NAMER_HOST_MAX)
        return false;
    if (memchr(s, ':', len)) {
        struct in6_addr a6;
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        return inet_pton(AF_INET6, tmp, &a6) == 1;
    }
    /* A DNS name (an IPv4 literal is one too): labels of 1..63 characters
     * separated by single dots, an optional final dot (fully qualified). */
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            label++;
            if (label > 63)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

uint16_t ag__port_parse(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return 0;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v > 0 && v <= 65535 ? (uint16_t)v : 0;
}

double ag__weight_parse(const char *s, size_t len)
{
    char tmp[64];
    size_t digits = 0, dots = 0;
    if (len == 0 || len >= sizeof(tmp))
        return -1;
    /* Only [0-9]+(.[0-9]*)? or .[0-9]+: strtod alone would take "inf",
     * "nan", hex and exponents. */
    for (size_t i = 0; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else if (s[i] == '.')
            dots++;
        else
            return -1;
    }
    if (digits == 0 || dots > 1)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    double w = strtod(tmp, NULL);
    return w > 0 && isfinite(w) ? w : -1;
}

static int addr_cmp(const ag__addr *a, const ag__addr *b)
{
    int c = strcmp(a->host, b->host);
    if (c != 0)
        return c;
    return (a->port > b->port) - (a->port < b->port);
}

static int addr_cmp_q(const void *x, const void *y)
{
    return addr_cmp(x, y);
}

void ag__addrs_normalize(ag__addr *a, size_t *n)
{
    if (*n < 2)
        return;
    qsort(a, *n, sizeof(*a), addr_cmp_q);
    size_t k = 0;
    for (size_t i = 1; i < *n; i++) {
        if (addr_cmp(&a[k], &a[i]) == 0) {
            a[k].weight += a[i].weight;
            ag_free(a[i].host);
        } else {
            a[++k] = a[i];
        }
    }
    *n = k + 1;
}

static int addr_at_cmp_q(const void *x, const void *y)
{
    const ag__addr_at *a = x, *b = y;
    int c = addr_cmp(&a->a, &b->a);
    if (c != 0)
        return c;
    return (a->at > b->at) - (a->at < b->at);
}

size_t ag__addrs_sort_at(ag__addr_at *v, size_t n)
{
    if (n < 2)
        return 0;
    qsort(v, n, sizeof(*v), addr_at_cmp_q);
    size_t dup = 0;
    for (size_t i = 1; i < n; i++) {
        /* The duplicate seen first in the input (smallest at) is reported. */
        if (addr_cmp(&v[i - 1].a, &v[i].a) == 0 && (dup == 0 || v[i].at < v[dup].at))
            dup = i;
    }
    return dup;
}

int ag__addr_show(const ag__addr *a, ag_buf *out)
{
    bool v6 = strchr(a->host, ':') != NULL;
    return ag_buf_printf(out, "%s%s%s:%u*%g", v6 ? "[" : "", a->host, v6 ? "]" : "",
                         (unsigned)a->port, a->weight);
}

/* ------------------------------------------------------------------------ */
/* Bindings                                                                  */
/* ------------------------------------------------------------------------ */

static const char *state_name(ag__bind_state s)
{
    switch (s) {
    case AG__BIND_PENDING:
        return "pending";
    case AG__BIND_BOUND:
        return "bound";
    case AG__BIND_NEG:
        return "neg";
    case AG__BIND_FAILED:
        return "failed";
    }
    return "?";
}

/* A binding with one reference, state PENDING, no namer. */
static ag__bnd *bnd_new(const char *id_prefix, const char *residual)
{
    ag__bnd *b = ag_calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    size_t lp = strlen(id_prefix), lr = strlen(residual);
    b->pub.id = ag_malloc(lp + lr + 1);
    b->residual = ag_strdup(residual);
    if (!b->pub.id || !b->residual) {
        ag_free(b->pub.id);
        ag_free(b->residual);
        ag_free(b);
        return NULL;
    }
    memcpy(b->pub.id, id_prefix, lp);
    memcpy(b->pub.id + lp, residual, lr + 1);
    b->pub.state = AG__BIND_PENDING;
    b->pub.changed_ms = ag_now_ms();
    b->refs = 1;
    return b;
}

static void bnd_destroy(ag__bnd *b)
{
    ag__watch *w = b->watch_head;
    while (w) {
        ag__watch *next = w->next;
        ag_free(w);
        w = next;
    }
    ag__addrs_free(b->pub.addrs, b->pub.naddrs);
    ag_free(b->pub.why);
    ag_free(b->pub.id);
    ag_free(b->residual);
    ag_free(b->error);
    ag_free(b);
}

static void bnd_unlink(ag__namer *n, ag__bnd *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        n->bindings = b->next;
    if (b->next)
        b->next->prev = b->prev;
    b->next = b->prev = NULL;
}

void ag__bound_ref(ag__bound *pub)
{
    ag__bnd *b = ag__bnd_of(pub);
    assert(b->refs > 0);
    b->refs++;
}

void ag__bound_unref(ag__bound *pub)
{
    if (!pub)
        return;
    ag__bnd *b = ag__bnd_of(pub);
    assert(b->refs > 0);
    if (--b->refs > 0)
        return;
    ag__namer *n = b->namer;
    if (n) {
        bnd_unlink(n, b);
        b->namer = NULL;
        n->ops->bind_release(n, b);
    }
    bnd_destroy(b);
}

ag__watch *ag__bound_watch(ag__bound *pub, ag__bound_fn fn, void *ud)
{
    ag__bnd *b = ag__bnd_of(pub);
    ag__watch *w = ag_calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->fn = fn;
    w->ud = ud;
    w->prev = b->watch_tail;
    if (b->watch_tail)
        b->watch_tail->next = w;
    else
        b->watch_head = w;
    b->watch_tail = w;
    return w;
}

static void watch_unlink_free(ag__bnd *b, ag__watch *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        b->watch_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        b->watch_tail = w->prev;
    ag_free(w);
}

void ag__bound_unwatch(ag__bound *pub, ag__watch *w)
{
    ag__bnd *b = ag__bnd_of(pub);
    if (!w)
        return;
    if (b->notifying > 0) {
        w->fn = NULL;
        b->dead_watches = true;
        return;
    }
    watch_unlink_free(b, w);
}

/* Calls the watchers of b (see the file comment for what they may do). */
static void notify(ag__bnd *b)
{
    if (!b->watch_head)
        return;
    ag__watch *last = b->watch_tail;
    b->refs++;
    b->notifying++;
    for (ag__watch *w = b->watch_head; w; w = w->next) {
        if (w->fn)
            w->fn(w->ud, &b->pub);
        if (w == last)
            break;
    }
    b->notifying--;
    if (b->notifying == 0 && b->dead_watches) {
        ag__watch *w = b->watch_head;
        while (w) {
            ag__watch *next = w->next;
            if (!w->fn)
                watch_unlink_free(b, w);
            w = next;
        }
        b->dead_watches = false;
    }
    ag__bound_unref(&b->pub);
}

static bool same_state(const ag__bnd *b, ag__bind_state st, const ag__addr *a, size_t n,
                       const char *why)
{
    const ag__bound *p = &b->pub;
    if (p->state != st || p->naddrs != n)
        return false;
    if ((p->why == NULL) != (why == NULL) || (why && strcmp(p->why, why) != 0))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (addr_cmp(&p->addrs[i], &a[i]) != 0 || p->addrs[i].weight != a[i].weight)
            return false;
    }
    return true;
}

int ag__bnd_set(ag__bnd *b, ag__bind_state st, ag__addr *addrs, size_t n, const char *why)
{
    if (st != AG__BIND_BOUND) {
        ag__addrs_free(addrs, n);
        addrs = NULL;
        n = 0;
    } else {
        why = NULL;
    }
    ag__addrs_normalize(addrs, &n);
    if (same_state(b, st, addrs, n, why)) {
        ag__addrs_free(addrs, n);
        return 0;
    }
    char *w = NULL;
    if (why) {
        w = ag_strdup(why);
        if (!w) {
            ag__addrs_free(addrs, n);
            return AG_E_NOMEM;
        }
    }
    ag__bound *p = &b->pub;
    ag__addrs_free(p->addrs, p->naddrs);
    ag_free(p->why);
    p->state = st;
    p->addrs = n ? addrs : NULL;
    if (!n)
        ag_free(addrs);
    p->naddrs = n;
    p->why = w;
    p->version++;
    p->changed_ms = ag_now_ms();
    AG_LOG(AG_LOG_INFO, "mesh", "namer_update id=%s state=%s addrs=%zu version=%" PRIu64 "%s%s%s",
           p->id, state_name(st), n, p->version, w ? " why=\"" : "", w ? w : "", w ? "\"" : "");
    notify(b);
    return 0;
}

void ag__bnd_set_error(ag__bnd *b, const char *error)
{
    if (!error) {
        ag_free(b->error);
        b->error = NULL;
        return;
    }
    if (b->error && strcmp(b->error, error) == 0)
        return;
    char *e = ag_strdup(error);
    if (!e)
        return; /* only the admin page would have shown it */
    ag_free(b->error);
    b->error = e;
}

/* ------------------------------------------------------------------------ */
/* System names: /$/inet/HOST/PORT, /$/nil                                   */
/* ------------------------------------------------------------------------ */

/* Sets the state of a new system binding; 0 or AG_E_NOMEM. */
static int system_resolve(ag__bnd *b, const char *residual)
{
    ag_slice seg[3];
    int ns = strlen(residual) > NAME_MAX_LEN ? -1 : ag__path_segments(residual, seg, 3);
    if (ns >= 1 && ag_slice_eq_str(seg[0], "nil"))
        return ag__bnd_set(b, AG__BIND_NEG, NULL, 0, "/$/nil");
    if (ns >= 1 && ag_slice_eq_str(seg[0], "inet")) {
        if (ns < 3)
            return ag__bnd_set(b, AG__BIND_NEG, NULL, 0, "want /$/inet/HOST/PORT");
        if (!ag__host_valid((const char *)seg[1].ptr, seg[1].len))
            return ag__bnd_set(b, AG__BIND_NEG, NULL, 0, "/$/inet: bad host");
        uint16_t port = ag__port_parse((const char *)seg[2].ptr, seg[2].len);
        if (!port)
            return ag__bnd_set(b, AG__BIND_NEG, NULL, 0, "/$/inet: bad port (want 1..65535)");
        ag__addr *a = ag_calloc(1, sizeof(*a));
        if (!a)
            return AG_E_NOMEM;
        a->host = ag_strndup((const char *)seg[1].ptr, seg[1].len);
        if (!a->host) {
            ag_free(a);
            return AG_E_NOMEM;
        }
        a->port = port;
        a->weight = 1;
        return ag__bnd_set(b, AG__BIND_BOUND, a, 1, NULL);
    }
    return ag__bnd_set(b, AG__BIND_NEG, NULL, 0,
                       ns < 0 ? "not a path"
                              : "unknown system name (known: /$/inet/HOST/PORT, /$/nil)");
}

ag__bound *ag__bound_system(const char *residual)
{
    if (!residual)
        residual = "";
    ag__bnd *b = bnd_new("/$", residual);
    if (!b)
        return NULL;
    if (system_resolve(b, residual) < 0) {
        bnd_destroy(b);
        return NULL;
    }
    return &b->pub;
}

/* ------------------------------------------------------------------------ */
/* The static namer                                                          */
/* ------------------------------------------------------------------------ */

typedef struct static_svc {
    char *name;
    ag__addr *addrs;
    size_t n;
} static_svc;

typedef struct static_impl {
    static_svc *svcs;
    size_t n;
} static_impl;

/* Parses "host:port" or "host:port weight" ("[v6]:port" for IPv6) into a
 * (host allocated). 0, AG_E_INVAL with *why set, or AG_E_NOMEM. */
static int static_endpoint(const char *s, ag__addr *a, const char **why)
{
    const char *ws = " \t";
    size_t l1 = strcspn(s, ws);
    const char *w = s + l1 + strspn(s + l1, ws);
    size_t l2 = strcspn(w, ws);
    if (w[l2 + strspn(w + l2, ws)] != '\0') {
        *why = "want 'host:port' or 'host:port weight'";
        return AG_E_INVAL;
    }
    const char *h = s, *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', l1);
        if (!close || close + 1 >= s + l1 || close[1] != ':') {
            *why = "want '[v6]:port'";
            return AG_E_INVAL;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
        if (!memchr(h, ':', hl)) {
            *why = "brackets are for IPv6 addresses";
            return AG_E_INVAL;
        }
    } else {
        colon = memchr(s, ':', l1);
        if (!colon) {
            *why = "no port";
            return AG_E_INVAL;
        }
        hl = (size_t)(colon - s);
        if (memchr(colon + 1, ':', l1 - hl - 1)) {
            *why = "an IPv6 address needs brackets: '[v6]:port'";
            return AG_E_INVAL;
        }
    }
    if (!ag__host_valid(h, hl)) {
        *why = "bad host";
        return AG_E_INVAL;
    }
    a->port = ag__port_parse(colon + 1, (size_t)(s + l1 - colon - 1));
    if (!a->port) {
        *why = "bad port (want 1..65535)";
        return AG_E_INVAL;
    }
    a->weight = l2 ? ag__weight_parse(w, l2) : 1;
    if (a->weight <= 0) {
        *why = "bad weight (want a decimal number > 0)";
        return AG_E_INVAL;
    }
    a->host = ag_strndup(h, hl);
    return a->host ? 0 : AG_E_NOMEM;
}

/* Reads one service's list into svc; errors through c. */
static int static_service(ag_config *c, const ag_cnode *list, static_svc *svc)
{
    if (ag_cnode_type_of(list) != AG_CNODE_SEQ)
        return ag_config_errorf(c, list, AG_E_CONFIG_TYPE,
                                "service '%s' must be a list of \"host:port [weight]\"", svc->name);
    size_t n = ag_cnode_len(list);
    if (n > AG__NAMER_ADDRS_MAX)
        return ag_config_errorf(c, list, AG_E_CONFIG_VALUE, "service '%s': more than %d endpoints",
                                svc->name, AG__NAMER_ADDRS_MAX);
    if (n == 0)
        return 0;
    ag__addr_at *v = ag_calloc(n, sizeof(*v));
    if (!v)
        return AG_E_NOMEM;
    int rc = 0;
    size_t got = 0;
    for (; got < n && rc == 0; got++) {
        const ag_cnode *it = ag_cnode_item(list, got);
        const char *s = ag_cnode_scalar(it), *why = NULL;
        if (ag_cnode_type_of(it) != AG_CNODE_SCALAR || strlen(s) != ag_cnode_scalar_len(it)) {
            rc = ag_config_errorf(
                c, it, AG_E_CONFIG_TYPE,
                "endpoint of service '%s' must be a string \"host:port [weight]\"", svc->name);
            break;
        }
        v[got].at = got;
        rc = static_endpoint(s, &v[got].a, &why);
        if (rc == AG_E_INVAL)
            rc = ag_config_errorf(c, it, AG_E_CONFIG_VALUE, "bad endpoint '%s' of service '%s': %s",
                                  s, svc->name, why);
        if (rc < 0)
            break;
    }
    size_t dup = rc == 0 ? ag__addrs_sort_at(v, n) : 0;
    if (dup)
        rc = ag_config_errorf(c, ag_cnode_item(list, v[dup].at), AG_E_CONFIG_VALUE,
                              "duplicate endpoint '%s' of service '%s'",
                              ag_cnode_scalar(ag_cnode_item(list, v[dup].at)), svc->name);
    if (rc == 0) {
        svc->addrs = ag_calloc(n, sizeof(*svc->addrs));
        if (!svc->addrs)
            rc = AG_E_NOMEM;
    }
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            svc->addrs[i] = v[i].a;
        svc->n = n;
    } else {
        for (size_t i = 0; i < got; i++)
            ag_free(v[i].a.host);
    }
    ag_free(v);
    return rc;
}

static void static_impl_free(static_impl *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        ag_free(s->svcs[i].name);
        ag__addrs_free(s->svcs[i].addrs, s->svcs[i].n);
    }
    ag_free(s->svcs);
    ag_free(s);
}

static int static_init(ag__namer *n, ag_config *c, const ag_cnode *node)
{
    const ag_cnode *svcs = NULL;
    int rc = ag_config_get_map(c, node, "services", AG_REQUIRED, &svcs);
    if (rc < 0)
        return rc;
    static_impl *s = ag_calloc(1, sizeof(*s));
    if (!s)
        return AG_E_NOMEM;
    n->impl = s;
    size_t len = ag_cnode_len(svcs);
    s->svcs = len ? ag_calloc(len, sizeof(*s->svcs)) : NULL;
    if (len && !s->svcs)
        return AG_E_NOMEM;
    for (size_t i = 0; i < len; i++) {
        const ag_cnode *key = ag_cnode_key(svcs, i);
        const char *name = ag_cnode_scalar(key);
        size_t nl = ag_cnode_scalar_len(key);
        ag_slice seg;
        char path[NAME_MAX_LEN + 2];
        int ns = -1;
        if (nl == strlen(name) && nl < NAME_MAX_LEN) {
            path[0] = '/';
            memcpy(path + 1, name, nl + 1);
            ns = ag__path_segments(path, &seg, 1);
        }
        if (ns != 1)
            return ag_config_errorf(c, key, AG_E_CONFIG_VALUE,
                                    "service name '%s' must be one path segment "
                                    "([A-Za-z0-9] and \"_:.#$%%-\")",
                                    name);
        s->svcs[i].name = ag_strdup(name);
        if (!s->svcs[i].name)
            return AG_E_NOMEM;
        s->n = i + 1;
        rc = static_service(c, ag_cnode_item(svcs, i), &s->svcs[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int static_bind_init(ag__namer *n, ag__bnd *b)
{
    static_impl *s = n->impl;
    ag_slice seg;
    int ns = ag__path_segments(b->residual, &seg, 1);
    if (ns < 1)
        return ag__bnd_set(b, AG__BIND_NEG, NULL, 0, "not a service name (want /NAME)");
    for (size_t i = 0; i < s->n; i++) {
        if (!ag_slice_eq_str(seg, s->svcs[i].name))
            continue;
        ag__addr *a = NULL;
        int rc = ag__addrs_dup(s->svcs[i].addrs, s->svcs[i].n, &a);
        if (rc < 0)
            return rc;
        return ag__bnd_set(b, AG__BIND_BOUND, a, s->svcs[i].n, NULL);
    }
    char why[128];
    snprintf(why, sizeof(why), "no service '%.*s'", (int)AG_MIN(seg.len, 64),
             (const char *)seg.ptr);
    return ag__bnd_set(b, AG__BIND_NEG, NULL, 0, why);
}

static void static_bind_release(ag__namer *n, ag__bnd *b)
{
    (void)n;
    (void)b;
}

static void static_stop(ag__namer *n)
{
    (void)n;
}

static void static_destroy(ag__namer *n)
{
    static_impl_free(n->impl);
    n->impl = NULL;
}

static const ag__namer_ops static_ops = {
    .kind = "static",
    .bind_init = static_bind_init,
    .bind_release = static_bind_release,
    .stop = static_stop,
    .destroy = static_destroy,
};

/* ------------------------------------------------------------------------ */
/* Namers                                                                    */
/* ------------------------------------------------------------------------ */

/* Every spelling of a kind, and the keys each takes besides kind, prefix. */
static const char *const kind_names[] = {
    "fs",         "dns",           "dnssrv",        "static",      "etcd", "io.l5d.fs",
    "io.l5d.dns", "io.l5d.dnssrv", "io.l5d.static", "io.l5d.etcd", NULL};
static const char *const fs_keys[] = {"kind", "prefix", "rootDir", NULL};
static const char *const dns_keys[] = {"kind", "prefix", "servers", "minTtlMs", "maxTtlMs", NULL};
static const char *const static_keys[] = {"kind", "prefix", "services", NULL};
static const char *const etcd_keys[] = {"kind",      "prefix",        "endpoints",
                                        "keyPrefix", "dialTimeoutMs", NULL};

static void namer_destroy(ag__namer *n)
{
    if (n->ops && n->ops->destroy)
        n->ops->destroy(n);
    ag_free(n->prefix);
    ag_free(n);
}

void ag__namer_closed(ag__namer *n)
{
    assert(n->closing > 0);
    n->closing--;
    if (n->freed && n->closing == 0)
        namer_destroy(n);
}

void ag__namer_close_cb(uv_handle_t *h)
{
    ag__namer_closed(h->data);
}

/* Reads and checks prefix (default "/" + kind) into n->prefix. */
static int read_prefix(ag_config *c, const ag_cnode *node, const char *kind, ag__namer *n)
{
    char def[32];
    const char *prefix = def;
    snprintf(def, sizeof(def), "/%s", kind);
    int rc = ag_config_get_str(c, node, "prefix", AG_OPTIONAL, &prefix);
    if (rc < 0)
        return rc;
    ag_slice seg;
    if (strlen(prefix) > NAME_MAX_LEN || ag__path_segments(prefix, &seg, 1) < 1)
        return ag_config_errorf(c, ag_cnode_get(node, "prefix"), AG_E_CONFIG_VALUE,
                                "prefix '%s' must be a path such as '/fs' (segments of "
                                "[A-Za-z0-9] and \"_:.#$%%-\")",
                                prefix);
    n->prefix = ag_strdup(prefix);
    return n->prefix ? 0 : AG_E_NOMEM;
}

int ag__namer_new(ag_config *c, const ag_cnode *node, uv_loop_t *loop, ag__namer **out)
{
    *out = NULL;
    if (ag_cnode_type_of(node) != AG_CNODE_MAP)
        return ag_config_errorf(c, node, AG_E_CONFIG_TYPE,
                                "a namer must be a mapping such as {kind: fs, rootDir: disco}");
    const char *kind = NULL;
    int rc = ag_config_get_str(c, node, "kind", AG_REQUIRED, &kind);
    if (rc < 0)
        return rc;
    const char *canon = strncmp(kind, "io.l5d.", 7) == 0 ? kind + 7 : kind;
    const ag__namer_ops *ops = NULL;
    const char *const *keys = NULL;
    if (strcmp(canon, "fs") == 0) {
        ops = &ag__namer_fs_ops;
        keys = fs_keys;
    } else if (strcmp(canon, "dns") == 0) {
        ops = &ag__namer_dns_ops;
        keys = dns_keys;
    } else if (strcmp(canon, "dnssrv") == 0) {
        ops = &ag__namer_dnssrv_ops;
        keys = dns_keys;
    } else if (strcmp(canon, "static") == 0) {
        ops = &static_ops;
        keys = static_keys;
    } else if (strcmp(canon, "etcd") == 0) {
        ops = &ag__namer_etcd_ops;
        keys = etcd_keys;
    } else {
        const char *near = ag_nearest(kind, kind_names);
        return ag_config_errorf(
            c, ag_cnode_get(node, "kind"), AG_E_CONFIG_VALUE,
            "unknown namer kind '%s'%s%s%s (known: fs, dns, dnssrv, static, etcd)", kind,
            near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    }
    rc = ag_config_check_keys(c, node, keys);
    if (rc < 0)
        return rc;
    ag__namer *n = ag_calloc(1, sizeof(*n));
    if (!n)
        return AG_E_NOMEM;
    n->ops = ops;
    n->loop = loop;
    rc = read_prefix(c, node, kind, n);
    if (rc == 0 && ops == &ag__namer_fs_ops)
        rc = ag__namer_fs_init(n, c, node);
    else if (rc == 0 && ops == &static_ops)
        rc = static_init(n, c, node);
    else if (rc == 0 && ops == &ag__namer_etcd_ops)
        rc = ag__namer_etcd_init(n, c, node);
    else if (rc == 0)
        rc = ag__namer_dns_init(n, c, node, ops == &ag__namer_dnssrv_ops);
    if (rc < 0) {
        ag__namer_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

const char *ag__namer_prefix(const ag__namer *n)
{
    return n->prefix;
}

const char *ag__namer_kind(const ag__namer *n)
{
    return n->ops->kind;
}

ag__bound *ag__namer_bind(ag__namer *n, const char *residual)
{
    assert(!n->freed);
    if (!residual)
        residual = "";
    for (ag__bnd *b = n->bindings; b; b = b->next) {
        if (strcmp(b->residual, residual) == 0) {
            b->refs++;
            return &b->pub;
        }
    }
    char idp[NAME_MAX_LEN + 8];
    snprintf(idp, sizeof(idp), "/#%s", n->prefix);
    bool too_long = strlen(residual) > NAME_MAX_LEN;
    ag__bnd *b = bnd_new(idp, too_long ? "/..." : residual);
    if (!b)
        return NULL;
    if (too_long) {
        /* Not kept in the list: a name this long is never bound again. */
        if (ag__bnd_set(b, AG__BIND_NEG, NULL, 0, "name too long") < 0) {
            bnd_destroy(b);
            return NULL;
        }
        return &b->pub;
    }
    b->namer = n;
    b->next = n->bindings;
    if (n->bindings)
        n->bindings->prev = b;
    n->bindings = b;
    if (n->ops->bind_init(n, b) < 0) {
        ag__bound_unref(&b->pub);
        return NULL;
    }
    return &b->pub;
}

void ag__namer_free(ag__namer *n)
{
    if (!n || n->freed)
        return;
    n->freed = true;
    while (n->bindings) {
        ag__bnd *b = n->bindings;
        bnd_unlink(n, b);
        b->namer = NULL;
        n->ops->bind_release(n, b);
    }
    n->ops->stop(n);
    if (n->closing == 0)
        namer_destroy(n);
}

void ag__namer_get_stats(const ag__namer *n, ag__namer_stats *out)
{
    *out = n->stats;
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                      */
/* ------------------------------------------------------------------------ */

int ag__json_str(ag_buf *out, const char *s)
{
    if (!s)
        return ag_buf_append_str(out, "null");
    bool utf8 = ag_utf8_valid(ag_slice_str(s), NULL);
    int rc = ag_buf_append_byte(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
        if (*p == '"' || *p == '\\')
            rc = ag_buf_printf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8))
            rc = ag_buf_printf(out, "\\u%04x", *p);
        else
            rc = ag_buf_append_byte(out, *p);
    }
    return rc == 0 ? ag_buf_append_byte(out, '"') : rc;
}

static int binding_json(const ag__bnd *b, ag_buf *out)
{
    const ag__bound *p = &b->pub;
    int rc = ag_buf_append_str(out, "{\"id\":");
    if (rc == 0)
        rc = ag__json_str(out, p->id);
    if (rc == 0)
        rc = ag_buf_printf(out, ",\"state\":\"%s\",\"addrs\":[", state_name(p->state));
    for (size_t i = 0; rc == 0 && i < p->naddrs; i++) {
        rc = i ? ag_buf_append_byte(out, ',') : 0;
        if (rc == 0)
            rc = ag_buf_append_byte(out, '"');
        if (rc == 0)
            rc = ag__addr_show(&p->addrs[i], out);
        if (rc == 0)
            rc = ag_buf_append_byte(out, '"');
    }
    if (rc == 0)
        rc = ag_buf_append_str(out, "],\"why\":");
    if (rc == 0)
        rc = ag__json_str(out, p->why);
    if (rc == 0 && b->error) {
        rc = ag_buf_append_str(out, ",\"error\":");
        if (rc == 0)
            rc = ag__json_str(out, b->error);
    }
    if (rc == 0)
        rc = ag_buf_printf(out, ",\"version\":%" PRIu64 "}", p->version);
    return rc;
}

int ag__namer_json(const ag__namer *n, ag_buf *out)
{
    int rc = ag_buf_printf(out, "{\"kind\":\"%s\",\"prefix\":", n->ops->kind);
    if (rc == 0)
        rc = ag__json_str(out, n->prefix);
    if (rc == 0)
        rc = ag_buf_printf(
            out, ",\"stats\":{\"reloads\":%" PRIu64 ",\"errors\":%" PRIu64 "},\"bindings\":[",
            n->stats.reloads, n->stats.errors);
    for (const ag__bnd *b = n->bindings; rc == 0 && b; b = b->next) {
        rc = b != n->bindings ? ag_buf_append_byte(out, ',') : 0;
        if (rc == 0)
            rc = binding_json(b, out);
    }
    return rc == 0 ? ag_buf_append_str(out, "]}") : rc;
}
