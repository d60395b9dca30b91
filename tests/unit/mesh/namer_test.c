/* Tests for src/mesh/namer.c: namers from config (kinds, prefixes, errors
 * with file:line:col), bindings (sharing, references, watchers and what
 * they may do inside a call), the static namer, /$/inet and /$/nil, the
 * endpoint helpers and the JSON. */
#include <sys/stat.h>

#include "namer_util.h"

/* ---- config -------------------------------------------------------------- */

TEST(namer_config_kinds_and_prefixes)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    char yaml[1024];
    CHECK_EQ(mkdir(ag_test_path("disco"), 0755), 0);
    static const struct {
        const char *item;
        const char *kind;
        const char *prefix;
    } cases[] = {
        {"{kind: fs, rootDir: disco}", "fs", "/fs"},
        {"{kind: io.l5d.fs, rootDir: disco}", "fs", "/io.l5d.fs"},
        {"{kind: fs, prefix: /files/v1, rootDir: disco}", "fs", "/files/v1"},
        {"{kind: dns}", "dns", "/dns"},
        {"{kind: io.l5d.dns, servers: [\"127.0.0.1:5353\", \"[::1]\"], minTtlMs: 5}", "dns",
         "/io.l5d.dns"},
        {"{kind: dnssrv, prefix: /srv, maxTtlMs: 2000}", "dnssrv", "/srv"},
        {"{kind: io.l5d.dnssrv}", "dnssrv", "/io.l5d.dnssrv"},
        {"{kind: static, services: {users: [\"127.0.0.1:8080\"]}}", "static", "/static"},
        {"{kind: io.l5d.static, services: {}}", "static", "/io.l5d.static"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        snprintf(yaml, sizeof(yaml), "namers:\n  - %s\n", cases[i].item);
        /* Named inside the tmpdir, so that rootDir "disco" is found there. */
        ag__namer *n = nt_namer(&loop, ag_test_path("mesh.yaml"), yaml);
        CHECK_STR_EQ(ag__namer_kind(n), cases[i].kind);
        CHECK_STR_EQ(ag__namer_prefix(n), cases[i].prefix);
        ag__namer_free(n);
    }
    nt_loop_close(&loop);
}

TEST(namer_config_errors)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    char msg[AG_ERRMSG_MAX];

    CHECK_EQ(nt_namer_error(&loop, "namers:\n  - {kind: zk, hosts: x}\n", msg, sizeof(msg)),
             AG_E_CONFIG_VALUE);
    CHECK_STR_EQ(msg,
                 "mesh.yaml:2:12: unknown namer kind 'zk' (known: fs, dns, dnssrv, static, etcd)");

    nt_namer_error(&loop, "namers:\n  - kind: statik\n    services: {}\n", msg, sizeof(msg));
    CHECK_STR_EQ(msg, "mesh.yaml:2:11: unknown namer kind 'statik' (did you mean 'static'?) "
                      "(known: fs, dns, dnssrv, static, etcd)");

    CHECK_EQ(nt_namer_error(&loop, "namers:\n  - {kind: fs}\n", msg, sizeof(msg)),
             AG_E_CONFIG_MISSING);
    CHECK_CONTAINS(msg, "mesh.yaml:2:");
    CHECK_CONTAINS(msg, "rootDir");

    nt_namer_error(&loop, "namers:\n  - {kind: fs,\n     rootDir: /nonexistent/disco}\n", msg,
                   sizeof(msg));
    CHECK_STR_EQ(msg, "mesh.yaml:3:15: rootDir '/nonexistent/disco': no such directory");

    nt_namer_error(&loop, "namers:\n  - {kind: fs, rootDir: /etc/passwd}\n", msg, sizeof(msg));
    CHECK_STR_EQ(msg, "mesh.yaml:2:25: rootDir '/etc/passwd': not a directory");

    CHECK_EQ(nt_namer_error(&loop, "namers:\n  - {kind: fs, rootdir: x}\n", msg, sizeof(msg)),
             AG_E_CONFIG_UNKNOWN_KEY);
    CHECK_CONTAINS(msg, "mesh.yaml:2:");
    CHECK_CONTAINS(msg, "did you mean 'rootDir'");

    /* A bad static entry: the message points at the entry. */
    CHECK_EQ(nt_namer_error(&loop,
                            "namers:\n"
                            "  - kind: static\n"
                            "    services:\n"
                            "      users: [\"127.0.0.1:8080\", \"127.0.0.1\"]\n",
                            msg, sizeof(msg)),
             AG_E_CONFIG_VALUE);
    CHECK_STR_EQ(msg, "mesh.yaml:4:33: bad endpoint '127.0.0.1' of service 'users': no port");
    nt_namer_error(&loop, "namers:\n  - {kind: static, services: {a: [\"h:1 0\"]}}\n", msg,
                   sizeof(msg));
    CHECK_CONTAINS(msg, "bad weight");
    nt_namer_error(&loop, "namers:\n  - {kind: static, services: {a: [\"::1:80\"]}}\n", msg,
                   sizeof(msg));
    CHECK_CONTAINS(msg, "needs brackets");
    nt_namer_error(&loop, "namers:\n  - {kind: static, services: {a: [\"h:99999\"]}}\n", msg,
                   sizeof(msg));
    CHECK_CONTAINS(msg, "bad port");
    nt_namer_error(&loop, "namers:\n  - {kind: static, services: {a: [\"h:1\", \"h:1 2\"]}}\n", msg,
                   sizeof(msg));
    CHECK_STR_EQ(msg, "mesh.yaml:2:42: duplicate endpoint 'h:1 2' of service 'a'");
    nt_namer_error(&loop, "namers:\n  - {kind: static, services: {a/b: []}}\n", msg, sizeof(msg));
    CHECK_CONTAINS(msg, "service name 'a/b'");
    nt_namer_error(&loop, "namers:\n  - {kind: static, services: {a: \"h:1\"}}\n", msg,
                   sizeof(msg));
    CHECK_CONTAINS(msg, "must be a list");
    CHECK_EQ(nt_namer_error(&loop, "namers:\n  - {kind: static}\n", msg, sizeof(msg)),
             AG_E_CONFIG_MISSING);

    /* Duplicate keys are the YAML reader's error, with the position. */
    CHECK_EQ(nt_namer_error(&loop, "namers:\n  - {kind: fs, kind: dns}\n", msg, sizeof(msg)),
             AG_E_CONFIG_SYNTAX);
    CHECK_CONTAINS(msg, "mesh.yaml:2:");
    CHECK_CONTAINS(msg, "kind");

    nt_namer_error(&loop, "namers:\n  - {kind: dns, prefix: dns}\n", msg, sizeof(msg));
    CHECK_STR_EQ(msg, "mesh.yaml:2:25: prefix 'dns' must be a path such as '/fs' (segments of "
                      "[A-Za-z0-9] and \"_:.#$%-\")");
    nt_namer_error(&loop, "namers:\n  - {kind: dns, prefix: \"/a//b\"}\n", msg, sizeof(msg));
    CHECK_CONTAINS(msg, "prefix '/a//b'");
    nt_namer_error(&loop, "namers:\n  - {kind: dns, servers: [\"dns.example:53\"]}\n", msg,
                   sizeof(msg));
    CHECK_CONTAINS(msg, "mesh.yaml:2:27: bad DNS server 'dns.example:53'");
    nt_namer_error(&loop, "namers:\n  - {kind: dns, servers: []}\n", msg, sizeof(msg));
    CHECK_CONTAINS(msg, "servers: give at least one");
    nt_namer_error(&loop, "namers:\n  - {kind: dns, minTtlMs: 5000, maxTtlMs: 10}\n", msg,
                   sizeof(msg));
    CHECK_CONTAINS(msg, "maxTtlMs 10 is below minTtlMs 5000");
    nt_namer_error(&loop, "namers:\n  - {kind: dnssrv, minTtlMs: 0}\n", msg, sizeof(msg));
    CHECK_CONTAINS(msg, "minTtlMs");
    nt_namer_error(&loop, "namers:\n  - [kind, fs]\n", msg, sizeof(msg));
    CHECK_CONTAINS(msg, "mesh.yaml:2:5: a namer must be a mapping");
    nt_loop_close(&loop);
}

/* ---- static, bindings and watchers -------------------------------------- */

static const char STATIC_YAML[] =
    "namers:\n"
    "  - kind: static\n"
    "    services:\n"
    "      users: [\"10.0.0.2:8080\", \"10.0.0.1:8080 2.5\", \"[::1]:9000 0.5\", "
    "\"db.internal:5432\"]\n"
    "      empty: []\n";

TEST(namer_static_binds)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    ag__namer *n = nt_namer(&loop, "mesh.yaml", STATIC_YAML);
    char s[512];

    ag__bound *b = ag__namer_bind(n, "/users");
    CHECK(b != NULL);
    CHECK_STR_EQ(b->id, "/#/static/users");
    CHECK_EQ(b->state, AG__BIND_BOUND);
    CHECK(b->why == NULL);
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)),
                 "10.0.0.1:8080*2.5,10.0.0.2:8080*1,[::1]:9000*0.5,db.internal:5432*1");
    CHECK_EQ(b->version, 1);

    /* Extra segments are the rest of the path: the same service. */
    ag__bound *b2 = ag__namer_bind(n, "/users/v1");
    CHECK(b2 != NULL && b2 != b);
    CHECK_EQ(b2->state, AG__BIND_BOUND);
    CHECK_EQ(b2->naddrs, 4);

    ag__bound *e = ag__namer_bind(n, "/empty");
    CHECK_EQ(e->state, AG__BIND_BOUND);
    CHECK_EQ(e->naddrs, 0);
    CHECK(e->addrs == NULL);

    ag__bound *neg = ag__namer_bind(n, "/orders");
    CHECK_EQ(neg->state, AG__BIND_NEG);
    CHECK_STR_EQ(neg->why, "no service 'orders'");
    ag__bound *bad = ag__namer_bind(n, "/a//b");
    CHECK_EQ(bad->state, AG__BIND_NEG);
    CHECK_CONTAINS(bad->why, "not a service name");
    ag__bound *root = ag__namer_bind(n, "/");
    CHECK_EQ(root->state, AG__BIND_NEG);

    ag__bound_unref(b);
    ag__bound_unref(b2);
    ag__bound_unref(e);
    ag__bound_unref(neg);
    ag__bound_unref(bad);
    ag__bound_unref(root);
    ag__namer_free(n);
    nt_loop_close(&loop);
}

/* The JSON lists the live bindings only. */
static int count_substr(const char *s, const char *sub)
{
    int k = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        k++;
    return k;
}

TEST(namer_same_name_same_object)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    ag__namer *n = nt_namer(&loop, "mesh.yaml", STATIC_YAML);
    ag__bound *a = ag__namer_bind(n, "/users");
    ag__bound *b = ag__namer_bind(n, "/users");
    CHECK(a == b);
    CHECK_EQ(ag__bnd_of(a)->refs, 2);
    ag__bound_ref(a);
    CHECK_EQ(ag__bnd_of(a)->refs, 3);

    ag_buf j;
    ag_buf_init(&j, 1 << 16);
    CHECK_OK(ag__namer_json(n, &j));
    CHECK_EQ(count_substr((const char *)j.data, "\"id\":\"/#/static/users\""), 1);
    ag__bound_unref(a);
    ag__bound_unref(a);
    ag_buf_reset(&j);
    CHECK_OK(ag__namer_json(n, &j));
    CHECK_EQ(count_substr((const char *)j.data, "/#/static/users"), 1);
    /* The last reference: the binding is gone from the namer (and freed:
     * the leak check and ASan would say otherwise). */
    ag__bound_unref(b);
    ag_buf_reset(&j);
    CHECK_OK(ag__namer_json(n, &j));
    CHECK_STR_EQ((const char *)j.data, "{\"kind\":\"static\",\"prefix\":\"/static\",\"stats\":"
                                       "{\"reloads\":0,\"errors\":0},\"bindings\":[]}");
    /* Bound again: a new object, a fresh version. */
    ag__bound *c = ag__namer_bind(n, "/users");
    CHECK_EQ(ag__bnd_of(c)->refs, 1);
    CHECK_EQ(c->version, 1);
    ag__bound_unref(c);
    ag_buf_cleanup(&j);
    ag__namer_free(n);
    nt_loop_close(&loop);
}

TEST(namer_json)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    ag__namer *n = nt_namer(&loop, "mesh.yaml", STATIC_YAML);
    ag__bound *b = ag__namer_bind(n, "/users");
    ag__bound *x = ag__namer_bind(n, "/nope");
    ag_buf j;
    ag_buf_init(&j, 1 << 16);
    CHECK_OK(ag__namer_json(n, &j));
    CHECK_STR_EQ((const char *)j.data,
                 "{\"kind\":\"static\",\"prefix\":\"/static\",\"stats\":{\"reloads\":0,"
                 "\"errors\":0},\"bindings\":["
                 "{\"id\":\"/#/static/nope\",\"state\":\"neg\",\"addrs\":[],"
                 "\"why\":\"no service 'nope'\",\"version\":1},"
                 "{\"id\":\"/#/static/users\",\"state\":\"bound\",\"addrs\":["
                 "\"10.0.0.1:8080*2.5\",\"10.0.0.2:8080*1\",\"[::1]:9000*0.5\","
                 "\"db.internal:5432*1\"],\"why\":null,\"version\":1}]}");
    /* Escaping: quotes, backslashes, control characters, invalid UTF-8. */
    ag__bnd_set_error(ag__bnd_of(b), "a\"b\\c\n\x01\xff");
    ag_buf_reset(&j);
    CHECK_OK(ag__namer_json(n, &j));
    CHECK_CONTAINS((const char *)j.data, "\"error\":\"a\\\"b\\\\c\\u000a\\u0001\\u00ff\"");
    /* A buffer too small: an error, not a crash. */
    ag_buf small;
    ag_buf_init(&small, 40);
    CHECK_EQ(ag__namer_json(n, &small), AG_E_TOO_LARGE);
    ag_buf_cleanup(&small);
    ag_buf_cleanup(&j);
    ag__bound_unref(b);
    ag__bound_unref(x);
    ag__namer_free(n);
    nt_loop_close(&loop);
}

/* Watchers, driven through ag__bnd_set on a static binding. */
typedef struct wctx {
    ag__bound *b;
    ag__watch *self;
    ag__watch *other;
    int calls;
    bool unwatch_self;
    bool unwatch_other;
    bool unref;
    bool add;
    nt_watch added;
    ag__watch *added_w;
} wctx;

static void w_cb(void *ud, ag__bound *b)
{
    wctx *w = ud;
    CHECK(b == w->b);
    w->calls++;
    if (w->unwatch_self) {
        ag__bound_unwatch(b, w->self);
        w->unwatch_self = false;
    }
    if (w->unwatch_other) {
        ag__bound_unwatch(b, w->other);
        w->unwatch_other = false;
    }
    if (w->add) {
        w->added_w = ag__bound_watch(b, nt_on_change, &w->added);
        CHECK(w->added_w != NULL);
        w->add = false;
    }
    if (w->unref) {
        ag__bound_unref(b);
        w->unref = false;
        /* Still valid until this call returns. */
        CHECK(b->state == AG__BIND_BOUND || b->state == AG__BIND_NEG);
    }
}

static ag__addr *one_addr(const char *host, uint16_t port)
{
    ag__addr *a = ag_calloc(1, sizeof(*a));
    CHECK(a != NULL);
    a->host = ag_strdup(host);
    a->port = port;
    a->weight = 1;
    return a;
}

TEST(namer_watchers)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    ag__namer *n = nt_namer(&loop, "mesh.yaml", STATIC_YAML);
    ag__bound *b = ag__namer_bind(n, "/users");
    ag__bnd *bi = ag__bnd_of(b);
    wctx w1 = {.b = b}, w2 = {.b = b};
    w1.self = ag__bound_watch(b, w_cb, &w1);
    w2.self = ag__bound_watch(b, w_cb, &w2);
    w1.other = w2.self;
    w2.other = w1.self;

    /* A change calls both, once; the same state again calls nobody. */
    uint64_t v = b->version;
    CHECK_OK(ag__bnd_set(bi, AG__BIND_BOUND, one_addr("10.9.9.9", 1), 1, NULL));
    CHECK_EQ(w1.calls, 1);
    CHECK_EQ(w2.calls, 1);
    CHECK_U64_EQ(b->version, v + 1);
    CHECK_OK(ag__bnd_set(bi, AG__BIND_BOUND, one_addr("10.9.9.9", 1), 1, NULL));
    CHECK_EQ(w1.calls, 1);
    CHECK_U64_EQ(b->version, v + 1);
    /* A weight change is a change. */
    ag__addr *a = one_addr("10.9.9.9", 1);
    a->weight = 3;
    CHECK_OK(ag__bnd_set(bi, AG__BIND_BOUND, a, 1, NULL));
    CHECK_EQ(w1.calls, 2);

    /* w1 unwatches w2 (not yet called in this pass): w2 is not called. */
    w1.unwatch_other = true;
    CHECK_OK(ag__bnd_set(bi, AG__BIND_NEG, NULL, 0, "gone"));
    CHECK_EQ(w1.calls, 3);
    CHECK_EQ(w2.calls, 2);
    CHECK_STR_EQ(b->why, "gone");
    CHECK_EQ(b->naddrs, 0);

    /* w1 adds a watcher (called from the next change on), then unwatches
     * itself. */
    w1.add = true;
    w1.unwatch_self = true;
    CHECK_OK(ag__bnd_set(bi, AG__BIND_NEG, NULL, 0, "gone again"));
    CHECK_EQ(w1.calls, 4);
    CHECK_EQ(w1.added.calls, 0);
    CHECK_OK(ag__bnd_set(bi, AG__BIND_BOUND, NULL, 0, NULL));
    CHECK_EQ(w1.calls, 4);
    CHECK_EQ(w1.added.calls, 1);
    CHECK_EQ(w1.added.state, AG__BIND_BOUND);

    /* A watcher drops the last reference inside its call: the binding
     * lives until the pass ends, then is freed (ASan checks). */
    wctx w3 = {.b = b, .unref = true};
    w3.self = ag__bound_watch(b, w_cb, &w3);
    ag__bound_unwatch(b, w1.added_w);
    CHECK_OK(ag__bnd_set(bi, AG__BIND_NEG, NULL, 0, "last"));
    CHECK_EQ(w3.calls, 1);
    ag__namer_free(n);
    nt_loop_close(&loop);
}

/* ---- /$ ------------------------------------------------------------------ */

TEST(namer_system_names)
{
    char s[256];
    ag__bound *b = ag__bound_system("/inet/127.0.0.1/8080");
    CHECK(b != NULL);
    CHECK_STR_EQ(b->id, "/$/inet/127.0.0.1/8080");
    CHECK_EQ(b->state, AG__BIND_BOUND);
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "127.0.0.1:8080*1");
    ag__bound_unref(b);

    b = ag__bound_system("/inet/::1/443/rest/of/path");
    CHECK_EQ(b->state, AG__BIND_BOUND);
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "[::1]:443*1");
    ag__bound_unref(b);

    b = ag__bound_system("/inet/users.svc/80");
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "users.svc:80*1");
    ag__bound_unref(b);

    b = ag__bound_system("/nil");
    CHECK_EQ(b->state, AG__BIND_NEG);
    CHECK_STR_EQ(b->why, "/$/nil");
    ag__bound_unref(b);

    static const char *const bad[] = {"/inet/127.0.0.1",
                                      "/inet/127.0.0.1/0",
                                      "/inet/127.0.0.1/65536",
                                      "/inet/h/80x",
                                      "/inet/a..b/80",
                                      "/unknown",
                                      "/",
                                      "",
                                      "inet/h/80",
                                      "/inet//80"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        b = ag__bound_system(bad[i]);
        CHECK(b != NULL);
        if (b->state != AG__BIND_NEG || !b->why)
            FAIL("'%s' should be NEG with a why", bad[i]);
        ag__bound_unref(b);
    }
    b = ag__bound_system(NULL);
    CHECK_EQ(b->state, AG__BIND_NEG);
    ag__bound_unref(b);
}

/* ---- helpers ------------------------------------------------------------- */

TEST(namer_addr_helpers)
{
    CHECK(ag__host_valid("10.0.0.1", 8));
    CHECK(ag__host_valid("::1", 3));
    CHECK(ag__host_valid("fe80::1:2", 9));
    CHECK(ag__host_valid("a-b.c_d.example.", 16));
    CHECK(!ag__host_valid("", 0));
    CHECK(!ag__host_valid("a..b", 4));
    CHECK(!ag__host_valid(".a", 2));
    CHECK(!ag__host_valid("a b", 3));
    CHECK(!ag__host_valid(":::", 3));
    CHECK(!ag__host_valid("[::1]", 5));
    char lbl[70];
    memset(lbl, 'a', 64);
    CHECK(!ag__host_valid(lbl, 64));
    CHECK(ag__host_valid(lbl, 63));

    CHECK_EQ(ag__port_parse("1", 1), 1);
    CHECK_EQ(ag__port_parse("65535", 5), 65535);
    CHECK_EQ(ag__port_parse("0", 1), 0);
    CHECK_EQ(ag__port_parse("65536", 5), 0);
    CHECK_EQ(ag__port_parse("+80", 3), 0);
    CHECK_EQ(ag__port_parse("008080", 6), 0);

    CHECK(ag__weight_parse("2", 1) == 2);
    CHECK(ag__weight_parse("0.25", 4) == 0.25);
    CHECK(ag__weight_parse(".5", 2) == 0.5);
    CHECK(ag__weight_parse("3.", 2) == 3);
    CHECK(ag__weight_parse("0", 1) < 0);
    CHECK(ag__weight_parse("0.0", 3) < 0);
    CHECK(ag__weight_parse("-1", 2) < 0);
    CHECK(ag__weight_parse("inf", 3) < 0);
    CHECK(ag__weight_parse("1e3", 3) < 0);
    CHECK(ag__weight_parse("0x10", 4) < 0);
    CHECK(ag__weight_parse("1.2.3", 5) < 0);
    CHECK(ag__weight_parse(".", 1) < 0);

    ag_slice seg[3];
    CHECK_EQ(ag__path_segments("/a/b.c/d", seg, 3), 3);
    CHECK(ag_slice_eq_str(seg[1], "b.c"));
    CHECK_EQ(ag__path_segments("/a/b/c/d", seg, 2), 4);
    CHECK_EQ(ag__path_segments("/", seg, 3), 0);
    CHECK_EQ(ag__path_segments("", seg, 3), 0);
    CHECK_EQ(ag__path_segments("/a/", seg, 3), -1);
    CHECK_EQ(ag__path_segments("a", seg, 3), -1);
    CHECK_EQ(ag__path_segments("/a b", seg, 3), -1);

    /* dup / normalize / free. */
    ag__addr src[3] = {{"b", 2, 1}, {"a", 9, 2}, {"b", 2, 0.5}};
    ag__addr *d = NULL;
    CHECK_OK(ag__addrs_dup(src, 3, &d));
    CHECK(d[0].host != src[0].host);
    size_t n = 3;
    ag__addrs_normalize(d, &n);
    CHECK_EQ(n, 2);
    CHECK_STR_EQ(d[0].host, "a");
    CHECK_STR_EQ(d[1].host, "b");
    CHECK(d[1].weight == 1.5);
    ag__addrs_free(d, n);
    CHECK_OK(ag__addrs_dup(src, 0, &d));
    CHECK(d == NULL);
    ag__addrs_free(NULL, 0);
}

/* Every allocation of a static namer's life failing in turn: a clean error
 * each time, nothing leaked. */
TEST_FM(namer_static_failmalloc)
{
    uv_loop_t loop;
    ag_config *c = NULL;
    ag__namer *n = NULL;
    ag__bound *b = NULL, *s = NULL;
    ag_buf j;
    ag_buf_init(&j, 1 << 16);
    CHECK_EQ(uv_loop_init(&loop), 0);
    c = ag_config_new();
    FM_NEW(c);
    FM_TRY(ag_config_load_string(c, "mesh.yaml", STATIC_YAML, strlen(STATIC_YAML)), 0);
    FM_TRY(ag__namer_new(c, ag_cnode_item(ag_cnode_get(ag_config_root(c), "namers"), 0), &loop, &n),
           0);
    b = ag__namer_bind(n, "/users");
    FM_NEW(b);
    CHECK_EQ(b->naddrs, 4);
    s = ag__bound_system("/inet/10.1.1.1/80");
    FM_NEW(s);
    FM_TRY(ag__namer_json(n, &j), 0);
out:
    ag_buf_cleanup(&j);
    ag__bound_unref(s);
    ag__bound_unref(b);
    ag__namer_free(n);
    ag_config_free(c);
    nt_loop_close(&loop);
}
