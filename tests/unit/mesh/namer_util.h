/* Helpers the namer tests share: a namer from YAML text, running a loop
 * until something happened (or a deadline), a watcher that counts, a log
 * capture, and closing a loop with the check that nothing is left open. */
#ifndef ARGOT_TEST_NAMER_UTIL_H
#define ARGOT_TEST_NAMER_UTIL_H

#include <uv.h>

#include "mesh/namer_int.h"
#include "test.h"

/* The namer of the first item of `namers:` in yaml, loaded as file name.
 * Fails the test with the config's message if it does not load. */
static inline ag__namer *nt_namer(uv_loop_t *loop, const char *name, const char *yaml)
{
    ag_config *c = ag_config_new();
    CHECK(c != NULL);
    if (ag_config_load_string(c, name, yaml, strlen(yaml)) < 0)
        FAIL("load: %s", ag_config_errmsg(c));
    const ag_cnode *list = ag_cnode_get(ag_config_root(c), "namers");
    ag__namer *n = NULL;
    if (ag__namer_new(c, ag_cnode_item(list, 0), loop, &n) < 0)
        FAIL("ag__namer_new: %s", ag_config_errmsg(c));
    ag_config_free(c);
    return n;
}

/* The error ag__namer_new gives for yaml (loaded as "mesh.yaml"), into msg
 * (cap bytes); returns the code (the test fails if it succeeds). */
static inline int nt_namer_error(uv_loop_t *loop, const char *yaml, char *msg, size_t cap)
{
    ag_config *c = ag_config_new();
    CHECK(c != NULL);
    int rc = ag_config_load_string(c, "mesh.yaml", yaml, strlen(yaml));
    ag__namer *n = NULL;
    if (rc == 0) {
        const ag_cnode *list = ag_cnode_get(ag_config_root(c), "namers");
        rc = ag__namer_new(c, ag_cnode_item(list, 0), loop, &n);
    }
    if (rc == 0)
        FAIL("expected an error for:\n%s", yaml);
    CHECK(n == NULL);
    snprintf(msg, cap, "%s", ag_config_errmsg(c));
    ag_config_free(c);
    return rc;
}

static inline void nt_noop_timer(uv_timer_t *t)
{
    (void)t;
}

/* Runs loop until done(ud) or timeout_ms passed; returns done(ud). */
static inline bool nt_run_until(uv_loop_t *loop, bool (*done)(void *ud), void *ud,
                                uint64_t timeout_ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uint64_t end = ag_now_ms() + timeout_ms;
    bool ok = done(ud);
    while (!ok && ag_now_ms() < end) {
        uv_timer_start(&t, nt_noop_timer, end - ag_now_ms(), 0);
        uv_run(loop, UV_RUN_ONCE);
        ok = done(ud);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static inline bool nt_never(void *ud)
{
    (void)ud;
    return false;
}

/* Runs loop for ms milliseconds. */
static inline void nt_run_for(uv_loop_t *loop, uint64_t ms)
{
    nt_run_until(loop, nt_never, NULL, ms);
}

/* Runs the loop until every handle closed, then closes it. */
static inline void nt_loop_close(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(loop);
    if (rc != 0)
        FAIL("uv_loop_close: %s (a handle is still open)", uv_strerror(rc));
}

/* A watcher that counts calls and remembers what it saw last. */
typedef struct nt_watch {
    int calls;
    uint64_t version;
    ag__bind_state state;
    uint64_t at_ms; /* ag_now_ms() of the last call */
} nt_watch;

static inline void nt_on_change(void *ud, ag__bound *b)
{
    nt_watch *w = ud;
    w->calls++;
    w->version = b->version;
    w->state = b->state;
    w->at_ms = ag_now_ms();
}

/* For nt_run_until: the watcher was called (ud: an int target pair). */
typedef struct nt_wait {
    nt_watch *w;
    int calls; /* wait until w->calls >= calls */
} nt_wait;

static inline bool nt_called(void *ud)
{
    nt_wait *x = ud;
    return x->w->calls >= x->calls;
}

/* The endpoints of b as "host:port*weight,..." into out (allocates
 * nothing, so that failmalloc runs can call it). */
static inline const char *nt_addrs(const ag__bound *b, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < b->naddrs && len < cap; i++) {
        const ag__addr *a = &b->addrs[i];
        bool v6 = strchr(a->host, ':') != NULL;
        len += (size_t)snprintf(out + len, cap - len, "%s%s%s%s:%u*%g", i ? "," : "", v6 ? "[" : "",
                                a->host, v6 ? "]" : "", (unsigned)a->port, a->weight);
    }
    return out;
}

/* Log capture: every line at or above WARN, concatenated. */
typedef struct nt_log {
    int lines;
    char text[8192];
} nt_log;

static inline void nt_log_sink(void *ud, ag_log_level level, const char *module, const char *msg)
{
    nt_log *l = ud;
    (void)module;
    if (level < AG_LOG_WARN)
        return;
    l->lines++;
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof(l->text) - len, "%s\n", msg);
}

#endif /* ARGOT_TEST_NAMER_UTIL_H */
