/* Tests for src/base/metrics.c: the exposition text of each kind, escaping,
 * name rules, cumulative buckets, concurrent updates. */
#include <math.h>
#include <pthread.h>

#include "test.h"

/* Renders r into a NUL-terminated string (the buffer is the caller's). */
static const char *render(ag_metrics *r, ag_buf *b)
{
    ag_buf_reset(b);
    CHECK_OK(ag_metrics_render(r, b));
    return b->data ? (const char *)b->data : "";
}

TEST(metrics_counter_and_gauge_text)
{
    ag_metrics *r = ag_metrics_new();
    CHECK(r);
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    ag_metric *c = ag_metrics_counter(r, "requests_total", "Requests served.", NULL);
    ag_metric *g = ag_metrics_gauge(r, "temperature", "Degrees.", "room");
    CHECK(c && g);
    ag_metric_add(c, 1);
    ag_metric_add(c, 2.5);
    ag_metric_add(c, -1);  /* counters never go down */
    ag_metric_add(c, NAN); /* nor NaN */
    ag_metric_set(g, 21.5, "kitchen");
    ag_metric_add(g, -30, "cellar");
    ag_metric_add(g, 2, "cellar");
    CHECK_STR_EQ(render(r, &b), "# HELP requests_total Requests served.\n"
                                "# TYPE requests_total counter\n"
                                "requests_total 3.5\n"
                                "# HELP temperature Degrees.\n"
                                "# TYPE temperature gauge\n"
                                "temperature{room=\"kitchen\"} 21.5\n"
                                "temperature{room=\"cellar\"} -28\n");
    ag_metric_set(g, INFINITY, "kitchen");
    ag_metric_set(g, NAN, "cellar");
    ag_metric_add(NULL, 1); /* no registry: nothing */
    CHECK_CONTAINS(render(r, &b), "temperature{room=\"kitchen\"} +Inf\n"
                                  "temperature{room=\"cellar\"} NaN\n");
    ag_metric_set(g, 0.1, "kitchen");
    ag_metric_set(g, 1e21, "cellar");
    CHECK_CONTAINS(render(r, &b), "temperature{room=\"kitchen\"} 0.1\n"
                                  "temperature{room=\"cellar\"} 1e+21\n");
    ag_buf_cleanup(&b);
    ag_metrics_free(r);
    ag_metrics_free(NULL);
}

TEST(metrics_label_values_and_help_escaped)
{
    ag_metrics *r = ag_metrics_new();
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    ag_metric *c = ag_metrics_counter(r, "x_total", "a \\ back\nslash \"quoted\"", "a,b");
    CHECK(c);
    ag_metric_add(c, 1, "q\"uote", "back\\slash\nnl");
    const char *const v[] = {"q\"uote", "back\\slash\nnl"};
    ag_metric_addv(c, 1, v); /* the same series */
    CHECK_STR_EQ(render(r, &b), "# HELP x_total a \\\\ back\\nslash \"quoted\"\n"
                                "# TYPE x_total counter\n"
                                "x_total{a=\"q\\\"uote\",b=\"back\\\\slash\\nnl\"} 2\n");
    ag_buf_cleanup(&b);
    ag_metrics_free(r);
}

TEST(metrics_histogram_buckets_are_cumulative)
{
    ag_metrics *r = ag_metrics_new();
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    const double bounds[] = {0.1, 1, 10};
    ag_metric *h = ag_metrics_histogram(r, "lat_seconds", "Latency.", "op", bounds, 3);
    CHECK(h);
    ag_metric_observe(h, 0.05, "get");
    ag_metric_observe(h, 0.1, "get"); /* on the bound: that bucket */
    ag_metric_observe(h, 5, "get");
    ag_metric_observe(h, 100, "get");
    const char *const put[] = {"put"};
    ag_metric_observev(h, 2, put);
    CHECK_STR_EQ(render(r, &b), "# HELP lat_seconds Latency.\n"
                                "# TYPE lat_seconds histogram\n"
                                "lat_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
                                "lat_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
                                "lat_seconds_bucket{op=\"get\",le=\"10\"} 3\n"
                                "lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
                                "lat_seconds_sum{op=\"get\"} 105.15\n"
                                "lat_seconds_count{op=\"get\"} 4\n"
                                "lat_seconds_bucket{op=\"put\",le=\"0.1\"} 0\n"
                                "lat_seconds_bucket{op=\"put\",le=\"1\"} 0\n"
                                "lat_seconds_bucket{op=\"put\",le=\"10\"} 1\n"
                                "lat_seconds_bucket{op=\"put\",le=\"+Inf\"} 1\n"
                                "lat_seconds_sum{op=\"put\"} 2\n"
                                "lat_seconds_count{op=\"put\"} 1\n");
    /* the default bounds, without labels */
    ag_metric *d = ag_metrics_histogram(r, "rpc_seconds", "RPC latency.", NULL, NULL, 0);
    CHECK(d);
    ag_metric_observe(d, 0.003);
    const char *t = render(r, &b);
    CHECK_CONTAINS(t, "rpc_seconds_bucket{le=\"5e-05\"} 0\n");
    CHECK_CONTAINS(t, "rpc_seconds_bucket{le=\"0.0025\"} 0\n"
                      "rpc_seconds_bucket{le=\"0.005\"} 1\n");
    CHECK_CONTAINS(t, "rpc_seconds_bucket{le=\"10\"} 1\n"
                      "rpc_seconds_bucket{le=\"+Inf\"} 1\n"
                      "rpc_seconds_sum 0.003\n"
                      "rpc_seconds_count 1\n");
    ag_buf_cleanup(&b);
    ag_metrics_free(r);
}

static double forty_two(void *ud)
{
    return *(double *)ud;
}

TEST(metrics_gauge_fn_read_at_render)
{
    ag_metrics *r = ag_metrics_new();
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    double v = 42;
    CHECK(ag_metrics_gauge_fn(r, "open_sessions", "Sessions open now.", forty_two, &v));
    CHECK_STR_EQ(render(r, &b), "# HELP open_sessions Sessions open now.\n"
                                "# TYPE open_sessions gauge\n"
                                "open_sessions 42\n");
    v = 7;
    CHECK_CONTAINS(render(r, &b), "open_sessions 7\n");
    CHECK(!ag_metrics_gauge_fn(r, "nofn", "", NULL, NULL));
    ag_buf_cleanup(&b);
    ag_metrics_free(r);
}

TEST(metrics_bad_names_refused)
{
    ag_metrics *r = ag_metrics_new();
    CHECK(!ag_metrics_counter(r, "2x", "", NULL));
    CHECK_STR_EQ(ag_metrics_errmsg(r), "bad metric name '2x'");
    CHECK(!ag_metrics_counter(r, "", "", NULL));
    CHECK(!ag_metrics_counter(r, NULL, "", NULL));
    CHECK(!ag_metrics_counter(r, "a-b", "", NULL));
    CHECK(!ag_metrics_gauge(r, "a b", "", NULL));
    CHECK(ag_metrics_gauge(r, "ns:sub_system:x", "colons are fine", NULL));
    CHECK(!ag_metrics_gauge(r, "ns:sub_system:x", "", NULL));
    CHECK_STR_EQ(ag_metrics_errmsg(r), "ns:sub_system:x: registered already");
    CHECK(!ag_metrics_gauge(r, "g1", "", "a:b"));
    CHECK_STR_EQ(ag_metrics_errmsg(r), "g1: bad label name 'a:b'");
    CHECK(!ag_metrics_gauge(r, "g2", "", "__reserved"));
    CHECK(!ag_metrics_gauge(r, "g3", "", "a,,b"));
    CHECK(!ag_metrics_gauge(r, "g4", "", "a,a"));
    CHECK_STR_EQ(ag_metrics_errmsg(r), "g4: label 'a' given twice");
    CHECK(!ag_metrics_gauge(r, "g5", "", "9a"));
    CHECK(!ag_metrics_histogram(r, "h1", "", "le", NULL, 0));
    CHECK(ag_metrics_gauge(r, "g6", "", "le")); /* only histograms reserve le */
    const double down[] = {1, 0.5};
    CHECK(!ag_metrics_histogram(r, "h2", "", NULL, down, 2));
    const double inf[] = {1, INFINITY};
    CHECK(!ag_metrics_histogram(r, "h3", "", NULL, inf, 2));
    CHECK(!ag_metrics_histogram(r, "h4", "", NULL, down, 0));
    CHECK(ag_metrics_histogram(r, "h5", "", "a_1,_b", down, 1));
    ag_metrics_free(r);
}

TEST_FM(metrics_out_of_memory)
{
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    ag_metrics *r = ag_metrics_new();
    FM_NEW(r);
    ag_metric *c = ag_metrics_counter(r, "c_total", "help", "k");
    FM_NEW(c);
    ag_metric *h = ag_metrics_histogram(r, "h", "help", NULL, NULL, 0);
    FM_NEW(h);
    ag_metric_add(c, 1, "v"); /* dropped when its series cannot be made */
    ag_metric_observe(h, 1);
    FM_TRY(ag_metrics_render(r, &b), 0);
out:
    ag_buf_cleanup(&b);
    ag_metrics_free(r);
}

TEST(metrics_render_respects_buffer_max)
{
    ag_metrics *r = ag_metrics_new();
    ag_metric *c = ag_metrics_counter(r, "c_total", "help", NULL);
    ag_metric_add(c, 1);
    ag_buf b;
    ag_buf_init(&b, 10);
    CHECK_EQ(ag_metrics_render(r, &b), AG_E_TOO_LARGE);
    ag_buf_cleanup(&b);
    ag_metrics_free(r);
}

struct hammer {
    ag_metric *plain;
    ag_metric *labelled;
    ag_metric *hist;
    int id;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    static const char *const ids[] = {"a", "b"};
    for (int i = 0; i < 100000; i++) {
        ag_metric_add(h->plain, 1);
        ag_metric_add(h->labelled, 1, ids[(i + h->id) & 1]);
        ag_metric_observe(h->hist, (i & 1) ? 0.5 : 2);
    }
    return NULL;
}

TEST(metrics_concurrent_updates_sum_exactly)
{
    ag_metrics *r = ag_metrics_new();
    ag_buf b;
    ag_buf_init(&b, 1 << 20);
    const double bounds[] = {1};
    struct hammer hs[4];
    pthread_t th[4];
    hs[0].plain = ag_metrics_counter(r, "plain_total", "", NULL);
    hs[0].labelled = ag_metrics_counter(r, "labelled_total", "", "id");
    hs[0].hist = ag_metrics_histogram(r, "hist", "", NULL, bounds, 1);
    for (int i = 0; i < 4; i++) {
        hs[i] = hs[0];
        hs[i].id = i;
        CHECK(pthread_create(&th[i], NULL, hammer_main, &hs[i]) == 0);
    }
    /* rendering while they run is fine too */
    for (int i = 0; i < 20; i++)
        render(r, &b);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    const char *t = render(r, &b);
    CHECK_CONTAINS(t, "plain_total 400000\n");
    CHECK_CONTAINS(t, "labelled_total{id=\"a\"} 200000\n");
    CHECK_CONTAINS(t, "labelled_total{id=\"b\"} 200000\n");
    CHECK_CONTAINS(t, "hist_bucket{le=\"1\"} 200000\n"
                      "hist_bucket{le=\"+Inf\"} 400000\n"
                      "hist_sum 500000\n"
                      "hist_count 400000\n");
    ag_buf_cleanup(&b);
    ag_metrics_free(r);
}
