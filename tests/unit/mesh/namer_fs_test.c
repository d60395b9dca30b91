/* Tests for src/mesh/namer_fs.c: the file format (ag__fs_parse), and the fs
 * namer on real files in the test's directory, seen through inotify: files
 * created, edited, renamed into place, deleted, written in bursts (one
 * reload), unparsable (last good endpoints kept), and an idle namer costing
 * no CPU. */
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "namer_util.h"

/* ---- the file format ----------------------------------------------------- */

static char *parse_ok(const char *text, size_t *n)
{
    ag__addr *a = NULL;
    ag_errbuf err;
    ag_errbuf_clear(&err);
    int rc = ag__fs_parse(text, strlen(text), "disco/users", &a, n, &err);
    if (rc < 0)
        FAIL("parse failed: %s", err.msg);
    ag_buf out;
    ag_buf_init(&out, 1 << 20);
    for (size_t i = 0; i < *n; i++) {
        CHECK_OK(i ? ag_buf_append_byte(&out, ',') : 0);
        CHECK_OK(ag__addr_show(&a[i], &out));
    }
    ag__addrs_free(a, *n);
    size_t len;
    char *s = (char *)ag_buf_take(&out, &len);
    return s ? s : ag_strdup("");
}

static void parse_err(const char *text, size_t len, int code, const char *msg)
{
    ag__addr *a = (ag__addr *)1;
    size_t n = 99;
    ag_errbuf err;
    ag_errbuf_clear(&err);
    int rc = ag__fs_parse(text, len, "disco/users", &a, &n, &err);
    if (rc != code)
        FAIL("parse of '%s': %s, want %s (%s)", text, ag_err_name(rc), ag_err_name(code), err.msg);
    CHECK(a == NULL);
    CHECK_EQ(n, 0);
    CHECK_STR_EQ(err.msg, msg);
}

TEST(namer_fs_parse)
{
    size_t n;
    char *s = parse_ok("# users, by hand\n"
                       "10.0.0.2 8080\n"
                       "\n"
                       "   # indented comment\n"
                       "10.0.0.1\t8080   2.5   # trailing comment\n"
                       "::1 9000 0.5\r\n"
                       "db.internal 5432 1\n"
                       "\t \n"
                       "last.example 1",
                       &n);
    CHECK_EQ(n, 5);
    CHECK_STR_EQ(s, "10.0.0.1:8080*2.5,10.0.0.2:8080*1,[::1]:9000*0.5,db.internal:5432*1,"
                    "last.example:1*1");
    ag_free(s);
    s = parse_ok("", &n);
    CHECK_EQ(n, 0);
    ag_free(s);
    s = parse_ok("# nothing but comments\n\n", &n);
    CHECK_EQ(n, 0);
    ag_free(s);

    parse_err("10.0.0.1 8080\n10.0.0.2 80x\n", 26, AG_E_INVAL,
              "disco/users:2: bad port '80x' (want 1..65535)");
    parse_err("10.0.0.1\n", 9, AG_E_INVAL, "disco/users:1: no port (want 'host port [weight]')");
    parse_err("\n\nh 1 2 3\n", 10, AG_E_INVAL,
              "disco/users:3: too many fields (want 'host port [weight]')");
    parse_err("h 1 0\n", 6, AG_E_INVAL,
              "disco/users:1: bad weight '0' (want a decimal number > 0)");
    parse_err("h 1 inf\n", 8, AG_E_INVAL,
              "disco/users:1: bad weight 'inf' (want a decimal number > 0)");
    parse_err("h 0\n", 4, AG_E_INVAL, "disco/users:1: bad port '0' (want 1..65535)");
    parse_err("a..b 1\n", 7, AG_E_INVAL, "disco/users:1: bad host 'a..b'");
    parse_err("h\x01x 1\n", 6, AG_E_INVAL, "disco/users:1: bad host 'h?x'");
    parse_err("h 1\nh\0 1\n", 9, AG_E_INVAL, "disco/users:2: bad character (NUL or CR) in line");
    parse_err("a 1\nb 2\n# c\na 1 3\n", 18, AG_E_INVAL,
              "disco/users:4: duplicate endpoint 'a 1' (first on line 1)");
    /* A long bad token is cut in the message. */
    char big[200];
    memset(big, 'x', sizeof(big));
    memcpy(big, "h ", 2);
    big[sizeof(big) - 1] = '\n';
    parse_err(big, sizeof(big), AG_E_INVAL,
              "disco/users:1: bad port 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' (want 1..65535)");
}

TEST(namer_fs_parse_limits)
{
    /* AG__NAMER_ADDRS_MAX endpoints parse; one more does not. */
    ag_buf t;
    ag_buf_init(&t, 1 << 22);
    for (int i = 0; i < AG__NAMER_ADDRS_MAX; i++)
        CHECK_OK(ag_buf_printf(&t, "10.%d.%d.%d 80\n", i >> 16, (i >> 8) & 255, i & 255));
    ag__addr *a;
    size_t n;
    ag_errbuf err;
    CHECK_OK(ag__fs_parse((const char *)t.data, t.len, "f", &a, &n, &err));
    CHECK_EQ(n, AG__NAMER_ADDRS_MAX);
    ag__addrs_free(a, n);
    CHECK_OK(ag_buf_append_str(&t, "10.200.0.0 80\n"));
    CHECK_EQ(ag__fs_parse((const char *)t.data, t.len, "f", &a, &n, &err), AG_E_TOO_LARGE);
    CHECK_CONTAINS(err.msg, "f:10001: more than 10000 endpoints");
    ag_buf_cleanup(&t);
}

/* ---- the namer on real files --------------------------------------------- */

typedef struct fs_fix {
    uv_loop_t loop;
    ag__namer *n;
    char dir[512]; /* rootDir */
} fs_fix;

static void fix_init(fs_fix *f)
{
    CHECK_EQ(uv_loop_init(&f->loop), 0);
    snprintf(f->dir, sizeof(f->dir), "%s", ag_test_path("disco"));
    CHECK_EQ(mkdir(f->dir, 0755), 0);
    /* rootDir relative to the config file, which is in the tmpdir. */
    f->n =
        nt_namer(&f->loop, ag_test_path("mesh.yaml"), "namers:\n  - {kind: fs, rootDir: disco}\n");
}

static void fix_done(fs_fix *f)
{
    ag__namer_free(f->n);
    nt_loop_close(&f->loop);
}

static void put(fs_fix *f, const char *name, const char *text)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0)
        FAIL("writing %s: %s", path, strerror(errno));
}

static uint64_t reloads(fs_fix *f)
{
    ag__namer_stats st;
    ag__namer_get_stats(f->n, &st);
    return st.reloads;
}

static uint64_t errors(fs_fix *f)
{
    ag__namer_stats st;
    ag__namer_get_stats(f->n, &st);
    return st.errors;
}

/* Runs the loop until w has seen calls calls; fails after 2 s. Returns the
 * time it took in ms. */
static uint64_t wait_calls(fs_fix *f, nt_watch *w, int calls)
{
    uint64_t t0 = ag_now_ms();
    nt_wait x = {w, calls};
    if (!nt_run_until(&f->loop, nt_called, &x, 2000))
        FAIL("watcher not called %d times within 2 s (called %d)", calls, w->calls);
    return ag_now_ms() - t0;
}

TEST(namer_fs_file_endpoints)
{
    fs_fix f;
    fix_init(&f);
    put(&f, "users", "# the users service\n10.0.0.2 8080\n10.0.0.1 8080 3\n::1 8081 0.5\n");
    ag__bound *b = ag__namer_bind(f.n, "/users");
    CHECK(b != NULL);
    CHECK_STR_EQ(b->id, "/#/fs/users");
    CHECK_EQ(b->state, AG__BIND_BOUND);
    char s[256];
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.1:8080*3,10.0.0.2:8080*1,[::1]:8081*0.5");
    CHECK_EQ(reloads(&f), 1);
    CHECK_EQ(errors(&f), 0);
    /* A name that is no file name. */
    ag__bound *dots = ag__namer_bind(f.n, "/..");
    CHECK_EQ(dots->state, AG__BIND_NEG);
    CHECK_CONTAINS(dots->why, "not a file name");
    ag__bound *root = ag__namer_bind(f.n, "/");
    CHECK_EQ(root->state, AG__BIND_NEG);
    /* A directory in rootDir: unreadable as a list, FAILED. */
    CHECK_EQ(mkdir(ag_test_path("disco/sub"), 0755), 0);
    ag__bound *sub = ag__namer_bind(f.n, "/sub");
    CHECK_EQ(sub->state, AG__BIND_FAILED);
    CHECK_STR_EQ(sub->why, "disco/sub: not a regular file");
    ag__bound_unref(sub);
    ag__bound_unref(root);
    ag__bound_unref(dots);
    ag__bound_unref(b);
    fix_done(&f);
}

TEST(namer_fs_lifecycle)
{
    fs_fix f;
    fix_init(&f);
    char s[256];
    ag__bound *b = ag__namer_bind(f.n, "/users");
    CHECK_EQ(b->state, AG__BIND_NEG);
    CHECK_STR_EQ(b->why, "no file disco/users");
    nt_watch w = {0};
    ag__watch *wh = ag__bound_watch(b, nt_on_change, &w);

    /* Created: BOUND within 1 s (typically the 50 ms debounce). */
    uint64_t t0 = ag_now_ms();
    put(&f, "users", "10.0.0.1 8080\n");
    wait_calls(&f, &w, 1);
    uint64_t took = w.at_ms - t0;
    if (took >= 1000)
        FAIL("created file seen after %" PRIu64 " ms", took);
    CHECK(took >= 40); /* not before the debounce */
    CHECK_EQ(b->state, AG__BIND_BOUND);
    CHECK(b->why == NULL);
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.1:8080*1");
    uint64_t v = b->version;

    /* Edited. */
    put(&f, "users", "10.0.0.1 8080\n10.0.0.3 8080 2\n");
    wait_calls(&f, &w, 2);
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.1:8080*1,10.0.0.3:8080*2");
    CHECK_U64_EQ(b->version, v + 1);

    /* Atomic replace: written elsewhere, renamed into rootDir. */
    const char *tmp = ag_test_write_file("users.tmp", "10.0.0.4 9090\n", 14);
    char dst[700];
    snprintf(dst, sizeof(dst), "%s/users", f.dir);
    CHECK_EQ(rename(tmp, dst), 0);
    wait_calls(&f, &w, 3);
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.4:9090*1");

    /* Touched without a change: re-read, but no new version, no call. */
    uint64_t r = reloads(&f);
    v = b->version;
    put(&f, "users", "10.0.0.4 9090\n");
    nt_run_for(&f.loop, 200);
    CHECK_EQ(reloads(&f), r + 1);
    CHECK_EQ(w.calls, 3);
    CHECK_U64_EQ(b->version, v);

    /* Other files in rootDir: nothing re-read. */
    put(&f, "orders", "10.1.1.1 1\n");
    nt_run_for(&f.loop, 150);
    CHECK_EQ(reloads(&f), r + 1);

    /* Deleted: NEG. */
    snprintf(dst, sizeof(dst), "%s/users", f.dir);
    CHECK_EQ(unlink(dst), 0);
    wait_calls(&f, &w, 4);
    CHECK_EQ(b->state, AG__BIND_NEG);
    CHECK_EQ(b->naddrs, 0);
    CHECK_STR_EQ(b->why, "no file disco/users");
    CHECK_EQ(w.state, AG__BIND_NEG);

    ag__bound_unwatch(b, wh);
    ag__bound_unref(b);
    fix_done(&f);
}

TEST(namer_fs_debounce)
{
    fs_fix f;
    fix_init(&f);
    put(&f, "users", "10.0.0.1 1\n");
    ag__bound *b = ag__namer_bind(f.n, "/users");
    nt_watch w = {0};
    ag__watch *wh = ag__bound_watch(b, nt_on_change, &w);
    uint64_t r0 = reloads(&f);
    /* 100 writes, each seen by the loop (a few ms apart), as an editor or
     * a deploy script would make them. A machine too busy to run this
     * process for most of the 50 ms between two writes may rightly see a
     * reload there: such gaps are counted and allowed one reload each. */
    char text[64];
    unsigned long_gaps = 0;
    uint64_t last = ag_now_ms();
    for (int i = 1; i <= 100; i++) {
        snprintf(text, sizeof(text), "10.0.0.%d %d\n", i, 1000 + i);
        put(&f, "users", text);
        uv_run(&f.loop, UV_RUN_NOWAIT);
        ag_sleep_ms(1);
        uint64_t now = ag_now_ms();
        long_gaps += now - last >= 40;
        last = now;
    }
    wait_calls(&f, &w, 1);
    nt_run_for(&f.loop, 150);
    uint64_t n = reloads(&f) - r0;
    if (n > 3 + long_gaps)
        FAIL("100 quick writes gave %" PRIu64 " reloads (want at most 3, %u long gaps)", n,
             long_gaps);
    CHECK(n >= 1);
    char s[64];
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.100:1100*1");
    CHECK(w.calls <= 3 + (int)long_gaps);
    ag__bound_unwatch(b, wh);
    ag__bound_unref(b);
    fix_done(&f);
}

TEST(namer_fs_bad_file_keeps_last_good)
{
    nt_log lg = {0};
    ag_log_set_sink(nt_log_sink, &lg);
    fs_fix f;
    fix_init(&f);
    put(&f, "users", "10.0.0.1 8080\n");
    ag__bound *b = ag__namer_bind(f.n, "/users");
    nt_watch w = {0};
    ag__watch *wh = ag__bound_watch(b, nt_on_change, &w);
    uint64_t v = b->version;

    put(&f, "users", "10.0.0.2 8080\n10.0.0.3 http\n");
    uint64_t r = reloads(&f);
    nt_run_for(&f.loop, 250);
    CHECK_EQ(reloads(&f), r + 1);
    CHECK_EQ(errors(&f), 1);
    CHECK_EQ(w.calls, 0);
    CHECK_EQ(b->state, AG__BIND_BOUND);
    CHECK_U64_EQ(b->version, v);
    char s[64];
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.1:8080*1");
    /* Logged once, naming file:line. */
    CHECK_EQ(lg.lines, 1);
    CHECK_CONTAINS(lg.text, "disco/users:2: bad port 'http'");
    CHECK_CONTAINS(lg.text, "kept=last_good");
    ag_buf j;
    ag_buf_init(&j, 1 << 16);
    CHECK_OK(ag__namer_json(f.n, &j));
    CHECK_CONTAINS((const char *)j.data, "\"error\":\"disco/users:2: bad port 'http'");
    CHECK_CONTAINS((const char *)j.data, "\"reloads\":2,\"errors\":1");

    /* Fixed: the new endpoints, the error cleared. */
    put(&f, "users", "10.0.0.2 8080\n");
    wait_calls(&f, &w, 1);
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.2:8080*1");
    ag_buf_reset(&j);
    CHECK_OK(ag__namer_json(f.n, &j));
    CHECK(strstr((const char *)j.data, "\"error\"") == NULL);
    CHECK_EQ(lg.lines, 1);
    ag_buf_cleanup(&j);

    /* A file bad from the start: FAILED, why names file:line. */
    put(&f, "orders", "# orders\n10.0.0.9 1 2 3\n");
    ag__bound *o = ag__namer_bind(f.n, "/orders");
    CHECK_EQ(o->state, AG__BIND_FAILED);
    CHECK_STR_EQ(o->why, "disco/orders:2: too many fields (want 'host port [weight]')");
    CHECK_EQ(errors(&f), 2);
    ag__bound_unref(o);

    ag__bound_unwatch(b, wh);
    ag__bound_unref(b);
    fix_done(&f);
    ag_log_set_sink(NULL, NULL);
}

static uint64_t cpu_us(void)
{
    struct rusage ru;
    CHECK_EQ(getrusage(RUSAGE_SELF, &ru), 0);
    return (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
           (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
}

typedef struct reload_wait {
    fs_fix *f;
    uint64_t want;
} reload_wait;

static bool reloaded(void *ud)
{
    reload_wait *rw = ud;
    return reloads(rw->f) >= rw->want;
}

TEST(namer_fs_idle_costs_nothing)
{
    fs_fix f;
    fix_init(&f);
    put(&f, "users", "10.0.0.1 8080\n");
    ag__bound *b = ag__namer_bind(f.n, "/users");
    ag__bound *m = ag__namer_bind(f.n, "/missing");
    /* The write's own events come first, and their reload. */
    reload_wait rw = {&f, reloads(&f) + 1};
    CHECK(nt_run_until(&f.loop, reloaded, &rw, 2000));
    uint64_t r = reloads(&f);
    uint64_t c0 = cpu_us(), t0 = ag_now_ms();
    nt_run_for(&f.loop, 300);
    uint64_t used = cpu_us() - c0, wall = ag_now_ms() - t0;
    CHECK(wall >= 300);
    if (used >= 20000)
        FAIL("an idle fs namer used %" PRIu64 " us of CPU in %" PRIu64 " ms", used, wall);
    CHECK_EQ(reloads(&f), r);
    ag__bound_unref(m);
    ag__bound_unref(b);
    fix_done(&f);
}

/* A watcher that drops its binding, and one that frees the whole namer,
 * from inside the reload. */
typedef struct drop_ctx {
    ag__namer **n;
    ag__bound *other;
    int calls;
} drop_ctx;

static void drop_other_and_self(void *ud, ag__bound *b)
{
    drop_ctx *d = ud;
    d->calls++;
    if (d->other) {
        ag__bound_unref(d->other);
        d->other = NULL;
    }
    ag__bound_unref(b);
}

static void free_namer(void *ud, ag__bound *b)
{
    drop_ctx *d = ud;
    (void)b;
    d->calls++;
    ag__namer_free(*d->n);
    *d->n = NULL;
}

TEST(namer_fs_watchers_reentrant)
{
    fs_fix f;
    fix_init(&f);
    put(&f, "a", "10.0.0.1 1\n");
    put(&f, "b", "10.0.0.2 1\n");
    /* Bound b then a: a is re-read first. */
    ag__bound *b = ag__namer_bind(f.n, "/b");
    ag__bound *a = ag__namer_bind(f.n, "/a");
    /* a's watcher drops b (also dirty, not yet re-read) and a itself. */
    drop_ctx d = {.other = b};
    ag__bound_watch(a, drop_other_and_self, &d);
    put(&f, "b", "10.0.0.2 2\n");
    put(&f, "a", "10.0.0.1 2\n");
    nt_run_for(&f.loop, 200);
    CHECK_EQ(d.calls, 1);
    ag_buf j;
    ag_buf_init(&j, 1 << 16);
    CHECK_OK(ag__namer_json(f.n, &j));
    CHECK(strstr((const char *)j.data, "/#/fs/") == NULL);
    ag_buf_cleanup(&j);

    /* A watcher frees the namer: its bindings keep their last state. */
    b = ag__namer_bind(f.n, "/b");
    a = ag__namer_bind(f.n, "/a");
    drop_ctx d2 = {.n = &f.n};
    ag__bound_watch(a, free_namer, &d2);
    put(&f, "a", "10.0.0.1 3\n");
    put(&f, "b", "10.0.0.2 3\n");
    nt_run_for(&f.loop, 200);
    CHECK_EQ(d2.calls, 1);
    CHECK(f.n == NULL);
    char s[64];
    CHECK_STR_EQ(nt_addrs(a, s, sizeof(s)), "10.0.0.1:3*1");
    /* Detached: later edits change nothing. */
    uint64_t va = a->version, vb = b->version;
    put(&f, "a", "10.0.0.1 4\n");
    put(&f, "b", "10.0.0.2 4\n");
    nt_run_for(&f.loop, 150);
    CHECK_U64_EQ(a->version, va);
    CHECK_U64_EQ(b->version, vb);
    ag__bound_unref(a);
    ag__bound_unref(b);
    fix_done(&f);
}

/* The namer freed while bindings are still held: they stay valid. */
TEST(namer_fs_free_with_live_bindings)
{
    fs_fix f;
    fix_init(&f);
    put(&f, "users", "10.0.0.1 8080\n");
    ag__bound *b = ag__namer_bind(f.n, "/users");
    ag__namer_free(f.n);
    f.n = NULL;
    put(&f, "users", "10.0.0.2 8080\n");
    nt_run_for(&f.loop, 120);
    CHECK_EQ(b->state, AG__BIND_BOUND);
    char s[64];
    CHECK_STR_EQ(nt_addrs(b, s, sizeof(s)), "10.0.0.1:8080*1");
    ag__bound_unref(b);
    fix_done(&f);
}

/* Every allocation of an fs namer's life failing in turn: bound names end
 * in a clean error (NULL), nothing leaks, every handle closes. */
TEST_FM(namer_fs_failmalloc)
{
    uv_loop_t loop;
    ag_config *c = NULL;
    ag__namer *n = NULL;
    ag__bound *b = NULL, *m = NULL;
    ag_buf j;
    ag_buf_init(&j, 1 << 16);
    CHECK_EQ(uv_loop_init(&loop), 0);
    mkdir(ag_test_path("disco"), 0755);
    ag_test_write_file("disco/users", "10.0.0.2 1\n10.0.0.1 2 3\n", 24);
    const char *yaml = "namers:\n  - {kind: fs, rootDir: disco}\n";
    c = ag_config_new();
    FM_NEW(c);
    FM_TRY(ag_config_load_string(c, ag_test_path("mesh.yaml"), yaml, strlen(yaml)), 0);
    FM_TRY(ag__namer_new(c, ag_cnode_item(ag_cnode_get(ag_config_root(c), "namers"), 0), &loop, &n),
           0);
    b = ag__namer_bind(n, "/users");
    FM_NEW(b);
    CHECK_EQ(b->naddrs, 2);
    m = ag__namer_bind(n, "/missing");
    FM_NEW(m);
    CHECK_EQ(m->state, AG__BIND_NEG);
    ag_test_write_file("disco/users", "10.0.0.3 1\n", 11);
    nt_run_for(&loop, 120);
    FM_TRY(ag__namer_json(n, &j), 0);
out:
    ag_buf_cleanup(&j);
    ag__bound_unref(m);
    ag__bound_unref(b);
    ag__namer_free(n);
    ag_config_free(c);
    nt_loop_close(&loop);
}
