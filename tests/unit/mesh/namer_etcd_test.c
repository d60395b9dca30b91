/* Tests for src/mesh/namer_etcd.c: the etcd namer against a real etcd
 * (Debian's etcd-server, /usr/bin/etcd) that each test starts on 127.0.0.1
 * with free ports and a data directory in its tmpdir, and stops at its
 * end (the runner kills the test's process group if the test dies). Keys
 * are written with etcd's own KV.Put and KV.DeleteRange (through argot's
 * rpc client, from the test's thread, which blocks while the namer's
 * worker goes on; the loop is run afterwards). The tests that need etcd
 * pass with a message when /usr/bin/etcd is missing. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "argot/rpc.h"
#include "etcd/v3/rpc.argot.h"
#include "etcd/v3/rpc.pb-c.h"
#include "etcd.h"
#include "namer_util.h"

#define ETCD_BIN AG_TEST_ETCD_BIN
#define KEYS     "/argot/services/"

/* ---- the etcd server ----------------------------------------------------- */

static bool have_etcd(void)
{
    if (access(ETCD_BIN, X_OK) == 0)
        return true;
    fprintf(stderr, "skipped: %s is missing (apt-get install etcd-server)\n", ETCD_BIN);
    return false;
}

static void kv_put(const ag_test_etcd *e, const char *key, const char *value)
{
    char full[256];
    snprintf(full, sizeof(full), KEYS "%s", key);
    ag_test_etcd_put(e, full, value);
}

/* Deletes KEYS + key, or with prefix every key starting with it. */
static void kv_del(const ag_test_etcd *e, const char *key, bool prefix)
{
    ag_rpc_channel *ch = ag_rpc_channel_new(e->target, NULL);
    CHECK(ch != NULL);
    Etcdserverpb__DeleteRangeRequest req = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    char full[256], end[256];
    snprintf(full, sizeof(full), KEYS "%s", key);
    req.key.data = (uint8_t *)full;
    req.key.len = strlen(full);
    if (prefix) {
        memcpy(end, full, req.key.len);
        end[req.key.len - 1]++;
        req.range_end.data = (uint8_t *)end;
        req.range_end.len = req.key.len;
    }
    Etcdserverpb__DeleteRangeResponse *resp = NULL;
    char *msg = NULL;
    int st = etcdserverpb__kv__delete_range__invoke(ch, &req, ag_deadline_in_ms(5000), &resp, &msg);
    if (st != AG_RPC_OK)
        FAIL("DeleteRange %s: %s %s", full, ag_rpc_status_name(st), msg ? msg : "");
    CHECK(resp->deleted > 0);
    ag_rpc_msg_free(&resp->base);
    ag_free(msg);
    ag_rpc_channel_free(ch);
}

/* ---- helpers ------------------------------------------------------------- */

static ag__namer *etcd_namer(uv_loop_t *loop, const char *target, const char *extra)
{
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "namers:\n  - {kind: etcd, endpoints: [\"%s\"], keyPrefix: /argot/services%s}\n",
             target, extra ? extra : "");
    return nt_namer(loop, "mesh.yaml", yaml);
}

typedef struct want_state {
    ag__bound *b;
    ag__bind_state st;
} want_state;

static bool in_state(void *ud)
{
    want_state *w = ud;
    return w->b->state == w->st;
}

static void wait_state(uv_loop_t *loop, ag__bound *b, ag__bind_state st, uint64_t ms)
{
    want_state w = {b, st};
    if (!nt_run_until(loop, in_state, &w, ms))
        FAIL("%s: state %d, want %d after %llu ms (why: %s)", b->id, (int)b->state, (int)st,
             (unsigned long long)ms, b->why ? b->why : "-");
}

typedef struct want_addrs {
    ag__bound *b;
    const char *addrs;
    char buf[512];
} want_addrs;

static bool has_addrs(void *ud)
{
    want_addrs *w = ud;
    return w->b->state == AG__BIND_BOUND &&
           strcmp(nt_addrs(w->b, w->buf, sizeof(w->buf)), w->addrs) == 0;
}

/* Runs the loop until b is BOUND to addrs, within ms. */
static void wait_addrs(uv_loop_t *loop, ag__bound *b, const char *addrs, uint64_t ms)
{
    want_addrs w = {.b = b, .addrs = addrs};
    if (!nt_run_until(loop, has_addrs, &w, ms))
        FAIL("%s: '%s' (state %d), want '%s' within %llu ms", b->id,
             nt_addrs(b, w.buf, sizeof(w.buf)), (int)b->state, addrs, (unsigned long long)ms);
}

static ag__namer_stats stats(const ag__namer *n)
{
    ag__namer_stats st;
    ag__namer_get_stats(n, &st);
    return st;
}

static bool is_disconnected(void *ud)
{
    return stats(ud).disconnected_since_ms != 0;
}

static bool is_connected(void *ud)
{
    return stats(ud).disconnected_since_ms == 0;
}

/* The namer's JSON (static storage). */
static const char *json_of(const ag__namer *n)
{
    static char out[8192];
    ag_buf j;
    ag_buf_init(&j, sizeof(out) - 1);
    CHECK_OK(ag__namer_json(n, &j));
    memcpy(out, j.data, j.len);
    out[j.len] = '\0';
    ag_buf_cleanup(&j);
    return out;
}

/* ag__namer_free, then the loop until everything closed: within 2 s (the
 * worker stops at once, whatever call it was in). */
static void free_and_close(uv_loop_t *loop, ag__namer *n)
{
    uint64_t t0 = ag_now_ms();
    ag__namer_free(n);
    nt_loop_close(loop);
    uint64_t took = ag_now_ms() - t0;
    if (took > 2000)
        FAIL("stopping the namer took %llu ms", (unsigned long long)took);
}

/* ---- values and config (no etcd) ----------------------------------------- */

static void check_value(const char *v, const char *want)
{
    ag__addr a;
    const char *why = NULL;
    int rc = ag__etcd_parse_value(v, strlen(v), &a, &why);
    if (!want) {
        if (rc != AG_E_INVAL)
            FAIL("'%s': parsed (rc %d), want an error", v, rc);
        CHECK(why != NULL);
        return;
    }
    if (rc != 0)
        FAIL("'%s': %s", v, why ? why : ag_err_name(rc));
    char got[128];
    bool v6 = strchr(a.host, ':') != NULL;
    snprintf(got, sizeof(got), "%s%s%s:%u*%g", v6 ? "[" : "", a.host, v6 ? "]" : "",
             (unsigned)a.port, a.weight);
    ag_free(a.host);
    CHECK_STR_EQ(got, want);
}

TEST(namer_etcd_values)
{
    check_value("127.0.0.1:8080", "127.0.0.1:8080*1");
    check_value("127.0.0.1:8080 2.5", "127.0.0.1:8080*2.5");
    check_value("  users.svc:80\t3\r\n", "users.svc:80*3");
    check_value("10.0.0.1 9000", "10.0.0.1:9000*1");
    check_value("10.0.0.1 9000 0.5\n", "10.0.0.1:9000*0.5");
    check_value("[::1]:443", "[::1]:443*1");
    check_value("[fd00::2]:443 4", "[fd00::2]:443*4");
    check_value("fd00::2 443", "[fd00::2]:443*1");
    check_value("fd00::2 443 2", "[fd00::2]:443*2");
    check_value("", NULL);
    check_value(" \n", NULL);
    check_value("127.0.0.1", NULL);
    check_value("127.0.0.1:0", NULL);
    check_value("127.0.0.1:65536", NULL);
    check_value("127.0.0.1:80 0", NULL);
    check_value("127.0.0.1:80 -1", NULL);
    check_value("127.0.0.1:80 2 3", NULL);
    check_value("127.0.0.1 80 2 3", NULL);
    check_value("127.0.0.1 80x", NULL);
    check_value("bad_host!:80", NULL);
    check_value("[127.0.0.1]:80", NULL);
    check_value("[::1]80", NULL);
    check_value("fd00::2", NULL);
    char nul[] = "127.0.0.1:80\0x";
    ag__addr a;
    const char *why = NULL;
    CHECK_EQ(ag__etcd_parse_value(nul, sizeof(nul) - 1, &a, &why), AG_E_INVAL);
    char big[600];
    memset(big, ' ', sizeof(big));
    memcpy(big, "127.0.0.1:80", 12);
    CHECK_EQ(ag__etcd_parse_value(big, sizeof(big), &a, &why), AG_E_INVAL);
}

TEST(namer_etcd_config)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    char msg[AG_ERRMSG_MAX];

    CHECK_EQ(nt_namer_error(&loop, "namers:\n  - {kind: etcd, keyPrefix: /s}\n", msg, sizeof(msg)),
             AG_E_CONFIG_MISSING);
    CHECK_CONTAINS(msg, "endpoints");
    CHECK_EQ(nt_namer_error(&loop, "namers:\n  - {kind: etcd, endpoints: [\"127.0.0.1:2379\"]}\n",
                            msg, sizeof(msg)),
             AG_E_CONFIG_MISSING);
    CHECK_CONTAINS(msg, "keyPrefix");
    nt_namer_error(&loop, "namers:\n  - {kind: etcd, endpoints: [], keyPrefix: /s}\n", msg,
                   sizeof(msg));
    CHECK_CONTAINS(msg, "endpoints: give 1 to 64");
    nt_namer_error(&loop, "namers:\n  - {kind: etcd, endpoints: [\"etcd\"], keyPrefix: /s}\n", msg,
                   sizeof(msg));
    CHECK_STR_EQ(msg, "mesh.yaml:2:30: bad etcd endpoint 'etcd': want 'host:port' ('[v6]:port' "
                      "for IPv6)");
    nt_namer_error(&loop,
                   "namers:\n  - {kind: etcd, endpoints: [\"https://e:2379\"], keyPrefix: /s}\n",
                   msg, sizeof(msg));
    CHECK_CONTAINS(msg, "TLS to etcd is not supported yet");
    nt_namer_error(&loop, "namers:\n  - {kind: etcd, endpoint: [\"e:1\"], keyPrefix: /s}\n", msg,
                   sizeof(msg));
    CHECK_CONTAINS(msg, "did you mean 'endpoints'");
    CHECK_EQ(nt_namer_error(&loop,
                            "namers:\n  - {kind: etcd, endpoints: [\"e:1\"], keyPrefix: /s, "
                            "dialTimeoutMs: 0}\n",
                            msg, sizeof(msg)),
             AG_E_CONFIG_VALUE);
    nt_namer_error(&loop, "namers:\n  - {kind: etcd, endpoints: [\"e:1\"], keyPrefix: \"\"}\n", msg,
                   sizeof(msg));
    CHECK_CONTAINS(msg, "keyPrefix must be");

    /* io.l5d.etcd, http:// endpoints; a name that is no name is NEG at once. */
    ag__namer *n = nt_namer(&loop, "mesh.yaml",
                            "namers:\n  - {kind: io.l5d.etcd, endpoints: [\"http://127.0.0.1:1/\", "
                            "\"[::1]:1\"], keyPrefix: /s/}\n");
    CHECK_STR_EQ(ag__namer_prefix(n), "/io.l5d.etcd");
    CHECK_STR_EQ(ag__namer_kind(n), "etcd");
    ag__bound *b = ag__namer_bind(n, "");
    CHECK_EQ(b->state, AG__BIND_NEG);
    CHECK_STR_EQ(b->why, "not a service name (want /NAME)");
    ag__bound_unref(b);
    free_and_close(&loop, n);
}

/* Nothing answers (port 1 refuses): FAILED with why, disconnected, and
 * the namer stops at once, in its backoff or not. */
TEST(namer_etcd_unreachable_fails)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    ag__namer *n = etcd_namer(&loop, "127.0.0.1:1", NULL);
    ag__bound *b = ag__namer_bind(n, "/users");
    CHECK_STR_EQ(b->id, "/#/etcd/users");
    wait_state(&loop, b, AG__BIND_FAILED, 5000);
    CHECK_CONTAINS(b->why, "etcd unreachable: Range on 127.0.0.1:1: UNAVAILABLE");
    CHECK(stats(n).disconnected_since_ms != 0);
    CHECK(stats(n).errors >= 1);
    nt_run_for(&loop, 300);
    CHECK(stats(n).errors >= 2); /* it retried */
    free_and_close(&loop, n);
    ag__bound_unref(b); /* still valid after the namer went, in its last state */
}

typedef struct free_ctx {
    ag__namer *n;
    int calls;
} free_ctx;

static void free_in_watcher(void *ud, ag__bound *b)
{
    free_ctx *f = ud;
    (void)b;
    f->calls++;
    ag__namer_free(f->n);
    f->n = NULL;
}

static bool freed(void *ud)
{
    return ((free_ctx *)ud)->calls > 0;
}

/* A watcher frees the namer from inside the loop thread's pass over the
 * bindings (a second binding still to do): the pass stops, the worker
 * stops, every handle closes. */
TEST(namer_etcd_free_inside_watcher)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    free_ctx f = {etcd_namer(&loop, "127.0.0.1:1", NULL), 0};
    ag__bound *a = ag__namer_bind(f.n, "/a");
    ag__bound *b = ag__namer_bind(f.n, "/b");
    ag__watch *w = ag__bound_watch(a, free_in_watcher, &f);
    ag__watch *w2 = ag__bound_watch(b, free_in_watcher, &f);
    CHECK(nt_run_until(&loop, freed, &f, 5000));
    CHECK_EQ(f.calls, 1);
    nt_loop_close(&loop);
    ag__bound_unwatch(a, w);
    ag__bound_unwatch(b, w2);
    ag__bound_unref(a);
    ag__bound_unref(b);
}

/* Stopped while a connection attempt hangs (an address that does not
 * answer, a long dial timeout): the call is cancelled, the stop is prompt. */
TEST(namer_etcd_stop_while_dialing)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    ag__namer *n = etcd_namer(&loop, "192.0.2.1:2379", ", dialTimeoutMs: 60000");
    ag__bound *b = ag__namer_bind(n, "/users");
    nt_run_for(&loop, 200);
    ag__bound_unref(b);
    free_and_close(&loop, n);
}

/* ---- with etcd --------------------------------------------------------- */

TEST_TIMEOUT(namer_etcd_watch, 60)
{
    if (!have_etcd())
        return;
    ag_test_etcd e;
    ag_test_etcd_init(&e, "etcd");
    ag_test_etcd_start(&e);
    kv_put(&e, "users/a", "127.0.0.1:8080");
    kv_put(&e, "users/b", "127.0.0.1 8081 2");
    kv_put(&e, "users-old/x", "10.0.0.9:1"); /* not under users/ */
    kv_put(&e, "usersx", "10.0.0.9:2");

    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    ag__namer *n = etcd_namer(&loop, e.target, NULL);
    CHECK_STR_EQ(ag__namer_prefix(n), "/etcd");
    ag__bound *b = ag__namer_bind(n, "/users");
    ag__bound *none = ag__namer_bind(n, "/nobody/rest");
    wait_addrs(&loop, b, "127.0.0.1:8080*1,127.0.0.1:8081*2", 5000);
    wait_state(&loop, none, AG__BIND_NEG, 1000);
    CHECK_STR_EQ(none->why, "no keys under /argot/services/nobody/");
    CHECK_U64_EQ(stats(n).disconnected_since_ms, 0);
    CHECK_U64_EQ(stats(n).errors, 0);

    /* A third endpoint: the watcher hears it within a second. */
    nt_watch w = {0};
    ag__watch *wh = ag__bound_watch(b, nt_on_change, &w);
    kv_put(&e, "users/c", "[::1]:9000 0.5");
    uint64_t t0 = ag_now_ms();
    nt_wait x = {&w, 1};
    CHECK(nt_run_until(&loop, nt_called, &x, 1000));
    CHECK(w.at_ms - t0 < 1000);
    wait_addrs(&loop, b, "127.0.0.1:8080*1,127.0.0.1:8081*2,[::1]:9000*0.5", 0);

    /* A weight changed; a bad value is skipped and shown. */
    kv_put(&e, "users/bad", "not an endpoint at all");
    kv_put(&e, "users/a", "127.0.0.1:8080 3\n");
    wait_addrs(&loop, b, "127.0.0.1:8080*3,127.0.0.1:8081*2,[::1]:9000*0.5", 1000);
    CHECK_CONTAINS(json_of(n), "\"error\":\"/argot/services/users/bad: too many fields");
    CHECK(stats(n).errors >= 1);
    kv_del(&e, "users/bad", false);

    /* A delete removes its endpoint. */
    kv_del(&e, "users/a", false);
    wait_addrs(&loop, b, "127.0.0.1:8081*2,[::1]:9000*0.5", 1000);
    CHECK(strstr(json_of(n), "users/bad") == NULL);

    /* All gone (one DeleteRange, one watch response): negative. */
    kv_del(&e, "users/", true);
    wait_state(&loop, b, AG__BIND_NEG, 1000);
    CHECK_STR_EQ(b->why, "no keys under /argot/services/users/");
    /* Back again. */
    kv_put(&e, "users/z", "10.1.1.1:70");
    wait_addrs(&loop, b, "10.1.1.1:70*1", 1000);
    CHECK(stats(n).reloads >= 8);

    /* More services changed between two passes of the loop than the
     * namer remembers (64): every binding is recomputed. */
    ag__bound *s3 = ag__namer_bind(n, "/s3");
    ag__bound *s69 = ag__namer_bind(n, "/s69");
    CHECK_EQ(s3->state, AG__BIND_NEG);
    for (int i = 0; i < 70; i++) {
        char key[32], val[32];
        snprintf(key, sizeof(key), "s%d/a", i);
        snprintf(val, sizeof(val), "10.2.0.%d:80", i + 1);
        kv_put(&e, key, val);
    }
    wait_addrs(&loop, s3, "10.2.0.4:80*1", 1000);
    wait_addrs(&loop, s69, "10.2.0.70:80*1", 1000);
    ag__bound_unref(s3);
    ag__bound_unref(s69);

    ag__bound_unwatch(b, wh);
    ag__bound_unref(none);
    /* Freed with a binding still held, its watch up: prompt, b keeps its state. */
    free_and_close(&loop, n);
    CHECK_EQ(b->state, AG__BIND_BOUND);
    ag__bound_unref(b);
    ag_test_etcd_stop(&e);
}

TEST_TIMEOUT(namer_etcd_lost_and_back, 90)
{
    if (!have_etcd())
        return;
    ag_test_etcd e;
    ag_test_etcd_init(&e, "etcd");
    ag_test_etcd_start(&e);
    kv_put(&e, "users/a", "127.0.0.1:8080");
    kv_put(&e, "users/b", "127.0.0.1:8081");

    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    ag__namer *n = etcd_namer(&loop, e.target, NULL);
    ag__bound *b = ag__namer_bind(n, "/users");
    wait_addrs(&loop, b, "127.0.0.1:8080*1,127.0.0.1:8081*1", 5000);
    uint64_t version = b->version;

    /* etcd dies: the stats say so within a second; the binding keeps its
     * endpoints and state, its error says why. */
    uint64_t t0 = ag_now_ms();
    ag_test_etcd_kill(&e);
    CHECK(nt_run_until(&loop, is_disconnected, n, 1000));
    CHECK(stats(n).disconnected_since_ms >= t0);
    nt_run_for(&loop, 500);
    CHECK_EQ(b->state, AG__BIND_BOUND);
    CHECK_U64_EQ(b->version, version);
    char s[256];
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "127.0.0.1:8080*1,127.0.0.1:8081*1");
    CHECK_CONTAINS(json_of(n), "\"error\":\"etcd unreachable: ");
    /* A name bound now is resolved from the last copy. */
    ag__bound *none = ag__namer_bind(n, "/nobody");
    CHECK_EQ(none->state, AG__BIND_NEG);

    /* etcd back (same ports, same data): the namer reads again and
     * watches again; a change made after the restart is seen. */
    ag_test_etcd_start(&e);
    kv_put(&e, "users/c", "127.0.0.1:8082");
    wait_addrs(&loop, b, "127.0.0.1:8080*1,127.0.0.1:8081*1,127.0.0.1:8082*1", 10000);
    CHECK(nt_run_until(&loop, is_connected, n, 1000));
    CHECK(strstr(json_of(n), "etcd unreachable") == NULL);
    kv_del(&e, "users/a", false);
    wait_addrs(&loop, b, "127.0.0.1:8081*1,127.0.0.1:8082*1", 1000);

    ag__bound_unref(none);
    ag__bound_unref(b);
    free_and_close(&loop, n);
    ag_test_etcd_stop(&e);
}

TEST_TIMEOUT(namer_etcd_down_then_up, 60)
{
    if (!have_etcd())
        return;
    ag_test_etcd e;
    ag_test_etcd_init(&e, "etcd");

    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    ag__namer *n = etcd_namer(&loop, e.target, ", dialTimeoutMs: 500");
    ag__bound *b = ag__namer_bind(n, "/users");
    ag__bound *none = ag__namer_bind(n, "/nobody");
    wait_state(&loop, b, AG__BIND_FAILED, 5000);
    CHECK_CONTAINS(b->why, "etcd unreachable: ");
    wait_state(&loop, none, AG__BIND_FAILED, 1000);
    CHECK(stats(n).disconnected_since_ms != 0);

    ag_test_etcd_start(&e);
    kv_put(&e, "users/a", "127.0.0.1:8080");
    wait_addrs(&loop, b, "127.0.0.1:8080*1", 10000);
    wait_state(&loop, none, AG__BIND_NEG, 1000);
    CHECK_U64_EQ(stats(n).disconnected_since_ms, 0);
    kv_put(&e, "users/b", "127.0.0.1:8081");
    wait_addrs(&loop, b, "127.0.0.1:8080*1,127.0.0.1:8081*1", 1000);

    ag__bound_unref(none);
    ag__bound_unref(b);
    free_and_close(&loop, n);
    ag_test_etcd_stop(&e);
}
