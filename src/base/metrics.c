/*
 * The metrics registry: counters, gauges and histograms, rendered in
 * Prometheus's text exposition format 0.0.4.
 *
 * Structure: the registry holds a list of families (registration order);
 * a family holds a list of series, one per tuple of label values (creation
 * order). A family without labels has exactly one series, embedded in it
 * and made at registration.
 *
 * Invariants:
 *   1. Families and series are never removed before ag_metrics_free, so a
 *      pointer to either stays valid and the lists only grow.
 *   2. A series' values are atomics holding the bits of doubles (value, sum)
 *      or counts (buckets, a counter's whole increments); updates are
 *      lock-free: a counter's whole-number increment is one fetch-add, other
 *      values a compare-and-swap loop on the double's bits. A family's mutex guards
 *      only its list of series (lookup and insertion); the registry's mutex
 *      guards its list of families and its errbuf.
 *   3. A histogram series stores per-bucket (not cumulative) counts; the
 *      last slot is the +Inf bucket. _count is rendered as the sum of the
 *      buckets read, so the +Inf bucket and _count always agree.
 *
 * Threads: any. ag_metrics_render holds the registry's mutex (so no family
 * is added meanwhile) and each family's mutex while it walks its series,
 * except around callback gauges, which run under no lock of ours.
 */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/base.h"

#define MAX_LABELS 16
#define MAX_BOUNDS 64

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM, K_GAUGE_FN };

struct series {
    struct series *next;       /* in the family, creation order */
    uint64_t hash;             /* of the label values */
    char **values;             /* nlabels values (NULL for the unlabelled series) */
    _Atomic uint64_t bits;     /* counter, gauge: the double's bits (a counter's fractions) */
    _Atomic uint64_t whole;    /* counter: whole-number increments, added with one fetch-add */
    _Atomic uint64_t sum;      /* histogram: the double's bits */
    _Atomic uint64_t *buckets; /* histogram: nbounds + 1 counts, not cumulative */
};

struct ag_metric {
    struct ag_metric *next; /* in the registry, registration order */
    enum kind kind;
    char *name;
    char *help;
    size_t nlabels;
    char **labels;
    double *bounds; /* histogram: nbounds upper bounds */
    size_t nbounds;
    double (*fn)(void *); /* callback gauge */
    void *ud;
    pthread_mutex_t mu; /* guards the series list (not the values) */
    struct series *head, *tail;
    struct series single; /* the series of a family without labels */
};

struct ag_metrics {
    pthread_mutex_t mu;
    ag_metric *head, *tail;
    ag_errbuf err;
};

/* ---- values as atomic bits ------------------------------------------------------ */

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static double bitsd(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, dbits(bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* ---- registry ------------------------------------------------------------------ */

ag_metrics *ag_metrics_new(void)
{
    ag_metrics *r = ag_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        ag_free(v[i]);
    ag_free(v);
}

static void series_cleanup(struct series *s, size_t nlabels)
{
    free_strv(s->values, nlabels);
    ag_free(s->buckets);
}

static void family_free(ag_metric *m)
{
    for (struct series *s = m->head, *n; s; s = n) {
        n = s->next;
        series_cleanup(s, m->nlabels);
        if (s != &m->single)
            ag_free(s);
    }
    free_strv(m->labels, m->nlabels);
    ag_free(m->bounds);
    ag_free(m->name);
    ag_free(m->help);
    pthread_mutex_destroy(&m->mu);
    ag_free(m);
}

void ag_metrics_free(ag_metrics *r)
{
    if (!r)
        return;
    for (ag_metric *m = r->head, *n; m; m = n) {
        n = m->next;
        family_free(m);
    }
    pthread_mutex_destroy(&r->mu);
    ag_free(r);
}

const char *ag_metrics_errmsg(const ag_metrics *r)
{
    return r->err.msg;
}

static bool name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (c == ':')
        return colon;
    return !first && c >= '0' && c <= '9';
}

/* Prometheus's metric name (colon true) or label name (colon false) rule. */
static bool name_ok(const char *s, size_t n, bool colon)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i], i == 0, colon))
            return false;
    return true;
}

/* Splits "a,b" into m->labels; AG_E_INVAL (message set) for a bad one. */
static int parse_labels(ag_metrics *r, ag_metric *m, const char *labels)
{
    if (!labels || !*labels)
        return 0;
    m->labels = ag_calloc(MAX_LABELS, sizeof(*m->labels));
    if (!m->labels)
        return ag_errbuf_set(&r->err, AG_E_NOMEM, "out of memory");
    for (const char *p = labels;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (!name_ok(p, n, false) || (n >= 2 && p[0] == '_' && p[1] == '_') ||
            (m->kind == K_HISTOGRAM && n == 2 && memcmp(p, "le", 2) == 0))
            return ag_errbuf_set(&r->err, AG_E_INVAL, "%s: bad label name '%.*s'", m->name,
                                 (int)AG_MIN(n, 64), p);
        for (size_t i = 0; i < m->nlabels; i++)
            if (strlen(m->labels[i]) == n && memcmp(m->labels[i], p, n) == 0)
                return ag_errbuf_set(&r->err, AG_E_INVAL, "%s: label '%.*s' given twice", m->name,
                                     (int)n, p);
        if (m->nlabels == MAX_LABELS)
            return ag_errbuf_set(&r->err, AG_E_INVAL, "%s: more than %d labels", m->name,
                                 MAX_LABELS);
        m->labels[m->nlabels] = ag_strndup(p, n);
        if (!m->labels[m->nlabels])
            return ag_errbuf_set(&r->err, AG_E_NOMEM, "out of memory");
        m->nlabels++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int set_bounds(ag_metrics *r, ag_metric *m, const double *bounds, size_t n)
{
    static const double latency[] = AG_METRICS_LATENCY_BOUNDS;
    if (!bounds) {
        bounds = latency;
        n = AG_ARRAY_LEN(latency);
    }
    if (n == 0 || n > MAX_BOUNDS)
        return ag_errbuf_set(&r->err, AG_E_INVAL, "%s: %zu bucket bounds (1 to %d)", m->name, n,
                             MAX_BOUNDS);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return ag_errbuf_set(&r->err, AG_E_INVAL,
                                 "%s: bucket bounds must be finite and increasing", m->name);
    m->bounds = ag_memdup(bounds, n * sizeof(*bounds));
    if (!m->bounds)
        return ag_errbuf_set(&r->err, AG_E_NOMEM, "out of memory");
    m->nbounds = n;
    return 0;
}

/* Fills a fresh series' value storage for family m. */
static int series_init(const ag_metric *m, struct series *s)
{
    if (m->kind != K_HISTOGRAM)
        return 0;
    s->buckets = ag_calloc(m->nbounds + 1, sizeof(*s->buckets));
    return s->buckets ? 0 : AG_E_NOMEM;
}

/* What a family is made of, beyond its name and help. */
struct family_spec {
    const char *labels;
    const double *bounds;
    size_t nbounds;
    double (*fn)(void *);
    void *ud;
};

/* Registers a family (help copied), complete before it is linked (so a
 * concurrent render never sees it half made); NULL with r->err set on
 * failure. */
static ag_metric *family_add(ag_metrics *r, enum kind kind, const char *name, const char *help,
                             const struct family_spec *spec)
{
    ag_metric *m = NULL;
    pthread_mutex_lock(&r->mu);
    ag_errbuf_clear(&r->err);
    if (!name || !name_ok(name, strlen(name), true)) {
        ag_errbuf_set(&r->err, AG_E_INVAL, "bad metric name '%.64s'", name ? name : "(null)");
        goto fail;
    }
    for (ag_metric *o = r->head; o; o = o->next)
        if (strcmp(o->name, name) == 0) {
            ag_errbuf_set(&r->err, AG_E_EXISTS, "%s: registered already", name);
            goto fail;
        }
    m = ag_calloc(1, sizeof(*m));
    if (!m) {
        ag_errbuf_set(&r->err, AG_E_NOMEM, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&m->mu, NULL);
    m->kind = kind;
    m->fn = spec->fn;
    m->ud = spec->ud;
    m->name = ag_strdup(name);
    m->help = ag_strdup(help ? help : "");
    if (!m->name || !m->help) {
        ag_errbuf_set(&r->err, AG_E_NOMEM, "out of memory");
        goto fail_family;
    }
    if (parse_labels(r, m, spec->labels) < 0 ||
        (kind == K_HISTOGRAM && set_bounds(r, m, spec->bounds, spec->nbounds) < 0))
        goto fail_family;
    if (m->nlabels == 0) {
        if (series_init(m, &m->single) < 0) {
            ag_errbuf_set(&r->err, AG_E_NOMEM, "out of memory");
            goto fail_family;
        }
        m->head = m->tail = &m->single;
    }
    if (r->tail)
        r->tail->next = m;
    else
        r->head = m;
    r->tail = m;
    pthread_mutex_unlock(&r->mu);
    return m;

fail_family:
    family_free(m);
fail:
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

ag_metric *ag_metrics_counter(ag_metrics *r, const char *name, const char *help, const char *labels)
{
    struct family_spec spec = {.labels = labels};
    return family_add(r, K_COUNTER, name, help, &spec);
}

ag_metric *ag_metrics_gauge(ag_metrics *r, const char *name, const char *help, const char *labels)
{
    struct family_spec spec = {.labels = labels};
    return family_add(r, K_GAUGE, name, help, &spec);
}

ag_metric *ag_metrics_histogram(ag_metrics *r, const char *name, const char *help,
                                const char *labels, const double *bounds, size_t nbounds)
{
    struct family_spec spec = {.labels = labels, .bounds = bounds, .nbounds = nbounds};
    return family_add(r, K_HISTOGRAM, name, help, &spec);
}

ag_metric *ag_metrics_gauge_fn(ag_metrics *r, const char *name, const char *help,
                               double (*fn)(void *ud), void *ud)
{
    if (!fn) {
        pthread_mutex_lock(&r->mu);
        ag_errbuf_set(&r->err, AG_E_INVAL, "%.64s: no callback", name ? name : "(null)");
        pthread_mutex_unlock(&r->mu);
        return NULL;
    }
    struct family_spec spec = {.fn = fn, .ud = ud};
    return family_add(r, K_GAUGE_FN, name, help, &spec);
}

/* ---- series lookup ------------------------------------------------------------------- */

/* FNV-1a over the values, each followed by a 0xff separator (which UTF-8 text
 * never holds). */
static uint64_t values_hash(const char *const *values, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
            h = (h ^ *p) * UINT64_C(1099511628211);
        h = (h ^ 0xffu) * UINT64_C(1099511628211);
    }
    return h;
}

static bool values_eq(char *const *a, const char *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

static struct series *series_new(const ag_metric *m, const char *const *values, uint64_t h)
{
    struct series *s = ag_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->hash = h;
    s->values = ag_calloc(m->nlabels, sizeof(*s->values));
    if (!s->values || series_init(m, s) < 0)
        goto fail;
    for (size_t i = 0; i < m->nlabels; i++) {
        s->values[i] = ag_strdup(values[i]);
        if (!s->values[i])
            goto fail;
    }
    return s;
fail:
    series_cleanup(s, m->nlabels);
    ag_free(s);
    return NULL;
}

/* The series for values (made if new); NULL when out of memory or a value
 * is NULL. Lock-free for a family without labels. */
static struct series *series_get(ag_metric *m, const char *const *values)
{
    if (m->nlabels == 0)
        return &m->single;
    for (size_t i = 0; i < m->nlabels; i++)
        if (!values[i])
            return NULL;
    uint64_t h = values_hash(values, m->nlabels);
    pthread_mutex_lock(&m->mu);
    struct series *s = m->head;
    while (s && !(s->hash == h && values_eq(s->values, values, m->nlabels)))
        s = s->next;
    if (!s) {
        s = series_new(m, values, h);
        if (s) {
            if (m->tail)
                m->tail->next = s;
            else
                m->head = s;
            m->tail = s;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return s;
}

/* ---- updates ------------------------------------------------------------------------- */

static void do_add(ag_metric *m, double v, const char *const *values)
{
    if (!m)
        return;
    assert(m->kind == K_COUNTER || m->kind == K_GAUGE);
    if ((m->kind == K_COUNTER && !(v >= 0)) || (m->kind != K_COUNTER && m->kind != K_GAUGE))
        return;
    struct series *s = series_get(m, values);
    if (!s)
        return;
    if (m->kind == K_COUNTER && v == floor(v) && v < 4294967296.0)
        atomic_fetch_add_explicit(&s->whole, (uint64_t)v, memory_order_relaxed);
    else
        atomic_add_double(&s->bits, v);
}

static void do_set(ag_metric *m, double v, const char *const *values)
{
    if (!m)
        return;
    assert(m->kind == K_GAUGE);
    if (m->kind != K_GAUGE)
        return;
    struct series *s = series_get(m, values);
    if (s)
        atomic_store_explicit(&s->bits, dbits(v), memory_order_relaxed);
}

/* The bucket of v: the first bound >= v (binary search); nbounds for +Inf
 * and NaN. */
static size_t bucket_of(const ag_metric *m, double v)
{
    size_t lo = 0, hi = m->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= m->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static void do_observe(ag_metric *m, double v, const char *const *values)
{
    if (!m)
        return;
    assert(m->kind == K_HISTOGRAM);
    if (m->kind != K_HISTOGRAM)
        return;
    struct series *s = series_get(m, values);
    if (!s)
        return;
    atomic_fetch_add_explicit(&s->buckets[bucket_of(m, v)], 1, memory_order_relaxed);
    atomic_add_double(&s->sum, v);
}

/* Collects the label values that follow v (as many as m has labels). */
#define COLLECT_VALUES(m, v, values)                                                               \
    const char *values[MAX_LABELS];                                                                \
    do {                                                                                           \
        va_list ap_;                                                                               \
        va_start(ap_, v);                                                                          \
        for (size_t i_ = 0; (m) && i_ < (m)->nlabels; i_++)                                        \
            values[i_] = va_arg(ap_, const char *);                                                \
        va_end(ap_);                                                                               \
    } while (0)

void ag_metric_add(ag_metric *m, double v, ...)
{
    if (m && m->nlabels == 0) { /* the hot path: no va_list, no lookup */
        do_add(m, v, NULL);
        return;
    }
    COLLECT_VALUES(m, v, values);
    do_add(m, v, values);
}

void ag_metric_set(ag_metric *m, double v, ...)
{
    COLLECT_VALUES(m, v, values);
    do_set(m, v, values);
}

void ag_metric_observe(ag_metric *m, double v, ...)
{
    COLLECT_VALUES(m, v, values);
    do_observe(m, v, values);
}

void ag_metric_addv(ag_metric *m, double v, const char *const *values)
{
    do_add(m, v, values);
}

void ag_metric_setv(ag_metric *m, double v, const char *const *values)
{
    do_set(m, v, values);
}

void ag_metric_observev(ag_metric *m, double v, const char *const *values)
{
    do_observe(m, v, values);
}

/* ---- rendering ------------------------------------------------------------------------ */

/* A sample value as the format allows it: NaN, +Inf, -Inf; an integer below
 * 2^53 in plain digits (counts read better as 400000 than 4e+05); otherwise
 * the shortest decimal that reads back as the same double. */
static void format_value(char *out, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(out, cap, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* Appends s with '\\' and '\n' escaped, and '"' too when quote. */
static int append_escaped(ag_buf *out, const char *s, bool quote)
{
    int rc = 0;
    for (const char *p = s; *p && rc == 0; p++) {
        if (*p == '\\')
            rc = ag_buf_append(out, "\\\\", 2);
        else if (*p == '\n')
            rc = ag_buf_append(out, "\\n", 2);
        else if (*p == '"' && quote)
            rc = ag_buf_append(out, "\\\"", 2);
        else
            rc = ag_buf_append_byte(out, (uint8_t)*p);
    }
    return rc;
}

/* name[suffix]{l1="v1",...[,le="bound"]} value\n; le may be NULL. */
static int render_line(ag_buf *out, const ag_metric *m, const char *suffix, const struct series *s,
                       const char *le, double v)
{
    char num[32];
    int rc = ag_buf_printf(out, "%s%s", m->name, suffix);
    if (rc == 0 && (m->nlabels > 0 || le))
        rc = ag_buf_append_byte(out, '{');
    for (size_t i = 0; i < m->nlabels && rc == 0; i++) {
        rc = ag_buf_printf(out, "%s%s=\"", i ? "," : "", m->labels[i]);
        if (rc == 0)
            rc = append_escaped(out, s->values[i], true);
        if (rc == 0)
            rc = ag_buf_append_byte(out, '"');
    }
    if (rc == 0 && le)
        rc = ag_buf_printf(out, "%sle=\"%s\"", m->nlabels ? "," : "", le);
    if (rc == 0 && (m->nlabels > 0 || le))
        rc = ag_buf_append_byte(out, '}');
    format_value(num, sizeof(num), v);
    if (rc == 0)
        rc = ag_buf_printf(out, " %s\n", num);
    return rc;
}

static int render_histogram(ag_buf *out, const ag_metric *m, const struct series *s)
{
    char le[32];
    uint64_t cum = 0;
    int rc = 0;
    for (size_t i = 0; i <= m->nbounds && rc == 0; i++) {
        cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        if (i < m->nbounds)
            format_value(le, sizeof(le), m->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        rc = render_line(out, m, "_bucket", s, le, (double)cum);
    }
    if (rc == 0)
        rc = render_line(out, m, "_sum", s, NULL,
                         bitsd(atomic_load_explicit(&s->sum, memory_order_relaxed)));
    if (rc == 0)
        rc = render_line(out, m, "_count", s, NULL, (double)cum);
    return rc;
}

static int render_family(ag_buf *out, ag_metric *m)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "gauge"};
    int rc = ag_buf_printf(out, "# HELP %s ", m->name);
    if (rc == 0)
        rc = append_escaped(out, m->help, false);
    if (rc == 0)
        rc = ag_buf_printf(out, "\n# TYPE %s %s\n", m->name, types[m->kind]);
    if (rc < 0)
        return rc;
    if (m->kind == K_GAUGE_FN)
        return render_line(out, m, "", &m->single, NULL, m->fn(m->ud));
    pthread_mutex_lock(&m->mu);
    for (const struct series *s = m->head; s && rc == 0; s = s->next) {
        if (m->kind == K_HISTOGRAM)
            rc = render_histogram(out, m, s);
        else
            rc = render_line(out, m, "", s, NULL,
                             (double)atomic_load_explicit(&s->whole, memory_order_relaxed) +
                                 bitsd(atomic_load_explicit(&s->bits, memory_order_relaxed)));
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int ag_metrics_render(ag_metrics *r, ag_buf *out)
{
    /* The family list only grows and a family's fields are fixed once it is
     * linked (invariant 1): walk a snapshot of the list's end, so that
     * callback gauges run without the registry's lock held. */
    pthread_mutex_lock(&r->mu);
    ag_metric *last = r->tail;
    ag_metric *first = r->head;
    pthread_mutex_unlock(&r->mu);
    int rc = 0;
    for (ag_metric *m = first; m && rc == 0; m = m == last ? NULL : m->next)
        rc = render_family(out, m);
    return rc;
}
