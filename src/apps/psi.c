/*
 * Two-party PSI: the driver (argot/apps.h says what it computes).
 *
 * One run, at each party, in this order (the peer does the same):
 *
 *   1. count: read the input once, resolving the key columns and checking
 *      every row (field counts, UTF-8 keys); nothing is sent yet;
 *   2. hello: exchange the parameters and row counts (slot 0); a mismatch
 *      fails both parties, each naming the difference;
 *   3. spill: B = ceil(max(rows) / bucket_rows) buckets; read the input
 *      again and append each row to its bucket's temporary file, the
 *      bucket chosen by SipHash of the encoded key under a key derived from
 *      the session, so equal keys meet in the same bucket at both parties;
 *   4. duplicates: unless allowed, load each bucket, sort it by key and
 *      report the earliest repeated row of the whole input;
 *   5. buckets: load, sort by (key, line), group equal keys, hand the
 *      distinct keys to the protocol; a receiver appends its matched groups
 *      (and, if its join keeps them, its unmatched ones) to sorted runs;
 *   6. output (receivers with a path): merge the runs into a temporary
 *      file beside the output, then the null rows the join asks for;
 *   7. fin: each party tells the other it is done (slot 0); only then is
 *      the temporary file renamed to the output.
 *
 * Any failure aborts the link with a reason that holds no data, so the
 * peer's next receive fails at once and names this party; the temporary
 * output is removed. Memory: one bucket's rows and points at a time, the
 * spill buffers (32 MiB at most) and a window per run during the merge.
 *
 * With workers (opts.workers, a coordinator; docs/ARCHITECTURE.md "apps:
 * PSI", "Workers"): steps 1 and 2 as above (the hello carries the workers'
 * count), then the coordinator writes the plan to a job directory, starts
 * its workers, sends their addresses to the peer's coordinator and gives
 * each worker its counterpart's; worker i (ag_psi_worker_run) does steps 3
 * to 5 for the buckets b with b mod count == i over its own link and
 * leaves its sorted runs in the directory; the coordinator adopts every
 * worker's runs and does steps 6 and 7 itself, so the output and the
 * counts are the one process's. While it waits, it heartbeats the workers
 * (a dead one fails the job, named) and watches the link for the peer's
 * abort.
 *
 * Threads: the calling thread does the I/O and all link traffic; the
 * curve work runs on a pool of opts.threads - 1 workers and the caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static const struct psi_protocol *const protocols[] = {&ag__psi_ecdh};

static const char *const join_names[] = {"inner", "left", "right", "full", "difference"};

void ag_psi_opts_init(ag_psi_opts *o)
{
    memset(o, 0, sizeof(*o));
}

int ag_psi_join_parse(const char *s)
{
    for (size_t i = 0; s && i < AG_ARRAY_LEN(join_names); i++)
        if (strcmp(s, join_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *ag_psi_join_name(ag_psi_join j)
{
    return (unsigned)j < AG_ARRAY_LEN(join_names) ? join_names[j] : "(unknown join)";
}

int ag_psi_receiver_parse(const ag_link *link, const char *s, unsigned *mask, ag_errbuf *err)
{
    const char *a = ag_link_party(link, 0), *b = ag_link_party(link, 1);
    if (!s || strcmp(s, "both") == 0)
        *mask = AG_PSI_RECV_BOTH;
    else if (strcmp(s, a) == 0)
        *mask = AG_PSI_RECV_RANK0;
    else if (strcmp(s, b) == 0)
        *mask = AG_PSI_RECV_RANK1;
    else
        return ag_errbuf_set(err, AG_E_INVAL, "--receiver %s: no such party (%s, %s or both)",
                             s, a, b);
    return 0;
}

/* ---- progress --------------------------------------------------------------- */

struct psi_progress_state {
    ag_psi_progress_fn fn;
    void *ud;
    pthread_mutex_t mu;
    _Atomic uint64_t units;     /* curve units done in the current bucket */
    _Atomic uint64_t last_ns;   /* last report */
    uint64_t bucket_units;      /* units expected in the current bucket */
    uint64_t rows_before;       /* rows of the finished buckets */
    uint64_t bucket_rows;       /* rows of the current bucket */
    ag_psi_progress p;
    uint64_t start_ns;
    bool line_open;             /* the default printer left a line unterminated */
};

size_t ag_psi_progress_line(const ag_psi_progress *p, char *buf, size_t cap)
{
    double rate = p->seconds > 0 ? (double)p->rows_done / p->seconds : 0;
    double pct = p->rows_total ? 100.0 * (double)p->rows_done / (double)p->rows_total : 100.0;
    char r[32], eta[32];
    if (rate >= 1e6)
        snprintf(r, sizeof(r), "%.1fM", rate / 1e6);
    else if (rate >= 1e3)
        snprintf(r, sizeof(r), "%.1fk", rate / 1e3);
    else
        snprintf(r, sizeof(r), "%.0f", rate);
    if (p->rows_done >= p->rows_total)
        snprintf(eta, sizeof(eta), "done in %.1f s", p->seconds);
    else if (rate <= 0)
        snprintf(eta, sizeof(eta), "ETA -");
    else {
        double s = (double)(p->rows_total - p->rows_done) / rate;
        if (s >= 3600)
            snprintf(eta, sizeof(eta), "ETA %.0fh%02.0fm", floor(s / 3600),
                     floor(fmod(s, 3600) / 60));
        else if (s >= 60)
            snprintf(eta, sizeof(eta), "ETA %.0fm%02.0fs", floor(s / 60), floor(fmod(s, 60)));
        else
            snprintf(eta, sizeof(eta), "ETA %.0f s", s);
    }
    int n = snprintf(buf, cap, "psi: rows %llu/%llu (%.1f%%), %s rows/s, %s, bucket %llu/%llu",
                     (unsigned long long)p->rows_done, (unsigned long long)p->rows_total, pct, r,
                     eta, (unsigned long long)p->bucket, (unsigned long long)p->buckets);
    return n < 0 ? 0 : AG_MIN((size_t)n, cap ? cap - 1 : 0);
}

static void print_progress(void *ud, const ag_psi_progress *p)
{
    struct psi_progress_state *s = ud;
    char line[256];
    ag_psi_progress_line(p, line, sizeof(line));
    bool last = p->rows_done >= p->rows_total;
    fprintf(stderr, "\r%s\x1b[K%s", line, last ? "\n" : "");
    fflush(stderr);
    s->line_open = !last;
}

/* Reports under the lock; skips if another thread is reporting. */
static void progress_emit(struct psi_progress_state *s, bool force)
{
    if (force)
        pthread_mutex_lock(&s->mu);
    else if (pthread_mutex_trylock(&s->mu) != 0)
        return;
    uint64_t u = atomic_load(&s->units);
    uint64_t in_bucket = s->bucket_units
                             ? (uint64_t)((double)s->bucket_rows *
                                          AG_MIN(1.0, (double)u / (double)s->bucket_units))
                             : 0;
    s->p.rows_done = AG_MIN(s->rows_before + in_bucket, s->p.rows_total);
    s->p.seconds = (double)(ag_now_ns() - s->start_ns) / 1e9;
    s->fn(s->fn == print_progress ? (void *)s : s->ud, &s->p);
    pthread_mutex_unlock(&s->mu);
}

void ag__psi_progress_add(struct psi_progress_state *s, uint64_t n)
{
    if (!s)
        return;
    atomic_fetch_add(&s->units, n);
    uint64_t now = ag_now_ns(), last = atomic_load(&s->last_ns);
    if (now - last >= 200000000u && atomic_compare_exchange_strong(&s->last_ns, &last, now))
        progress_emit(s, false);
}

static void progress_bucket(struct psi_progress_state *s, uint64_t rows, uint64_t units)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->rows_before += s->bucket_rows;
    s->bucket_rows = rows;
    s->bucket_units = units;
    atomic_store(&s->units, 0);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the run ---------------------------------------------------------------- */

struct run {
    ag_link *link;
    const ag_psi_opts *o;
    ag_errbuf *err;
    unsigned me;
    unsigned peer;
    unsigned receivers;
    const struct psi_protocol *proto;
    const char *tmpdir;
    const char *null_value;
    uint64_t bucket_rows;
    /* the input */
    size_t ncols;
    char **colnames;            /* ncols, owned */
    size_t keycol[AG_PSI_MAX_KEYS];
    uint64_t rows;
    /* after the hello */
    uint64_t peer_rows;
    uint64_t nbuckets;
    uint8_t bucket_key[crypto_shorthash_KEYBYTES];
    struct psi_spill *spill;
    struct psi_runs *inter;     /* receivers with an output */
    struct psi_runs *except;    /* ... whose join keeps their unmatched rows */
    bool na_block;              /* the join gives this side null rows */
    uint64_t na_rows;
    /* the kept bucket when there is only one */
    uint8_t *kept_data;
    struct psi_row *kept_rows;
    size_t kept_n;
    ag_pool *pool;
    struct psi_progress_state *progress;
    char *tmp_path;             /* the output's temporary name, while it exists */
    ag_psi_report rep;
    /* workers: this process runs buckets b with b % wcount == windex */
    unsigned wcount;            /* 1 without workers */
    unsigned windex;
    bool worker;                /* this run is one worker's share */
    bool keep_rows;             /* worker: keep the receiver's rows (the plan says) */
    const char *wdir;           /* the job directory */
    char wdir_buf[4096];        /* coordinator: the one it made */
    bool workers_started;
    char peer_why[AG_ERRMSG_MAX]; /* what abort_peer tells the peer, when set */
};

/* Opens the input and finds the key columns. */
static int open_input(struct run *r, ag_csv_reader **out)
{
    ag_csv_reader *rd = ag_csv_reader_new(NULL);
    if (!rd)
        return ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
    int rc = ag_csv_reader_open(rd, r->o->input);
    for (size_t k = 0; rc == 0 && k < r->o->nkeys; k++) {
        int c = ag_csv_col(rd, r->o->keys[k]);
        if (c < 0)
            rc = c;
        else
            r->keycol[k] = (size_t)c;
    }
    if (rc < 0) {
        ag_errbuf_set(r->err, rc, "%s", ag_csv_reader_errmsg(rd));
        ag_csv_reader_free(rd);
        return rc;
    }
    *out = rd;
    return 0;
}

/* Encodes the current record's key tuple into key. */
static int encode_key(struct run *r, ag_csv_reader *rd, ag_buf *key)
{
    ag_buf_reset(key);
    for (size_t k = 0; k < r->o->nkeys; k++) {
        ag_slice f;
        int rc = ag_csv_get_utf8(rd, r->keycol[k], &f);
        if (rc < 0)
            return ag_errbuf_set(r->err, rc, "%s", ag_csv_reader_errmsg(rd));
        uint8_t l[4];
        psi_put_u32(l, (uint32_t)f.len);
        if (ag_buf_append(key, l, 4) < 0 || ag_buf_append(key, f.ptr, f.len) < 0)
            return ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
    }
    return 0;
}

/* Pass 1: counts and checks the rows; keeps the header. */
static int pass_count(struct run *r)
{
    ag_csv_reader *rd;
    int rc = open_input(r, &rd);
    if (rc < 0)
        return rc;
    r->ncols = ag_csv_ncols(rd);
    r->colnames = ag_calloc(r->ncols, sizeof(*r->colnames));
    if (!r->colnames) {
        rc = ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r->ncols; i++) {
        r->colnames[i] = ag_strdup(ag_csv_colname(rd, i));
        if (!r->colnames[i]) {
            rc = ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
            goto out;
        }
    }
    for (;;) {
        rc = ag_csv_next(rd);
        if (rc <= 0)
            break;
        for (size_t k = 0; k < r->o->nkeys; k++) {
            ag_slice f;
            rc = ag_csv_get_utf8(rd, r->keycol[k], &f);
            if (rc < 0)
                goto bad;
        }
    }
    if (rc < 0)
        goto bad;
    r->rows = ag_csv_record(rd);
    goto out;
bad:
    ag_errbuf_set(r->err, rc, "%s", ag_csv_reader_errmsg(rd));
out:
    ag_csv_reader_free(rd);
    return rc;
}

static void session_digest(const ag_psi_opts *o, uint8_t out[PSI_DIGEST_SIZE])
{
    const char *s = o->session ? o->session : "";
    crypto_generichash(out, PSI_DIGEST_SIZE, (const uint8_t *)s, strlen(s),
                       (const uint8_t *)"argot-psi-session", 17);
}

/* The bucket hash's key: public to both, bound to the session. */
static void bucket_key_init(struct run *r)
{
    const char *s = r->o->session ? r->o->session : "";
    crypto_generichash(r->bucket_key, sizeof(r->bucket_key), (const uint8_t *)s, strlen(s),
                       (const uint8_t *)"argot-psi-bucket", 16);
}

/* Step 2: the hello, both ways. */
static int hello(struct run *r)
{
    struct psi_hello mine = {0}, peer;
    mine.version = PSI_VERSION;
    snprintf(mine.protocol, sizeof(mine.protocol), "%s", r->proto->name);
    mine.join = (uint8_t)r->o->join;
    mine.receivers = (uint8_t)r->receivers;
    mine.allow_dups = r->o->allow_duplicates;
    mine.nkeys = (uint32_t)r->o->nkeys;
    mine.bucket_rows = r->bucket_rows;
    mine.rows = r->rows;
    mine.workers = r->o->workers ? r->o->workers->count : 0;
    session_digest(r->o, mine.session);
    uint8_t msg[PSI_HELLO_SIZE];
    ag__psi_hello_encode(&mine, msg);
    int rc = ag_link_send(r->link, r->peer, psi_tag(0, PSI_STEP_HELLO), msg, sizeof(msg));
    void *got = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = ag_link_recv(r->link, r->peer, psi_tag(0, PSI_STEP_HELLO), &got, &len);
    if (rc < 0)
        return ag_errbuf_set(r->err, rc, "%s", ag_link_errmsg(r->link));
    char why[AG_ERRMSG_MAX - 64];
    const char *me = ag_link_party(r->link, r->me), *pn = ag_link_party(r->link, r->peer);
    rc = ag__psi_hello_decode(got, len, &peer, why, sizeof(why));
    ag_free(got);
    if (rc < 0)
        return ag_errbuf_set(r->err, rc, "party %s broke the PSI protocol: %s", pn, why);
    rc = ag__psi_hello_compare(&mine, &peer, me, pn, r->me == 0, why, sizeof(why));
    if (rc < 0)
        return ag_errbuf_set(r->err, rc, "%s", why);
    r->peer_rows = peer.rows;
    uint64_t most = AG_MAX(r->rows, r->peer_rows);
    r->nbuckets = most ? (most - 1) / r->bucket_rows + 1 : 1;
    if (r->nbuckets >= PSI_MAX_SLOT)
        return ag_errbuf_set(r->err, AG_E_TOO_LARGE, "%llu buckets", (unsigned long long)r->nbuckets);
    bucket_key_init(r);
    return 0;
}

static uint64_t bucket_of(const struct run *r, ag_slice key)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key.ptr, key.len, r->bucket_key);
    uint64_t v;
    memcpy(&v, h, 8);
    return (uint64_t)(((unsigned __int128)v * r->nbuckets) >> 64);
}

/* Step 3: the spill. */
static int pass_spill(struct run *r)
{
    int rc = ag__psi_spill_new(&r->spill, r->tmpdir, r->nbuckets, r->err);
    if (rc < 0)
        return rc;
    ag_csv_reader *rd;
    rc = open_input(r, &rd);
    if (rc < 0)
        return rc;
    ag_slice *f = ag_calloc(r->ncols, sizeof(*f));
    ag_buf key;
    ag_buf_init(&key, SIZE_MAX / 2);
    if (!f) {
        rc = ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
        goto out;
    }
    uint64_t n = 0;
    for (;;) {
        rc = ag_csv_next(rd);
        if (rc < 0) {
            ag_errbuf_set(r->err, rc, "%s", ag_csv_reader_errmsg(rd));
            goto out;
        }
        if (rc == 0)
            break;
        rc = encode_key(r, rd, &key);
        if (rc < 0)
            goto out;
        n++;
        uint64_t b = bucket_of(r, ag_buf_slice(&key));
        if (b % r->wcount != r->windex)
            continue; /* another worker's bucket */
        for (size_t i = 0; i < r->ncols; i++)
            f[i] = ag_csv_field(rd, i);
        rc = ag__psi_spill_add(r->spill, b, ag_csv_line(rd), ag_buf_slice(&key), f, r->ncols);
        if (rc < 0)
            goto out;
    }
    if (n != r->rows) {
        rc = ag_errbuf_set(r->err, AG_E_IO, "%s: changed while being read (%llu rows, then "
                           "%llu)", r->o->input, (unsigned long long)r->rows,
                           (unsigned long long)n);
        goto out;
    }
    rc = ag__psi_spill_finish(r->spill);
out:
    ag_buf_cleanup(&key);
    ag_free(f);
    ag_csv_reader_free(rd);
    return rc;
}

static int row_cmp(const void *a, const void *b)
{
    const struct psi_row *x = a, *y = b;
    int c = ag__psi_key_cmp(x->key, y->key);
    if (c)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

/* Loads bucket b sorted by (key, line); the one bucket of a single-bucket
 * run is loaded once and kept. */
static int load_sorted(struct run *r, uint64_t b, uint8_t **data, struct psi_row **rows,
                       size_t *n, bool keep)
{
    if (r->kept_rows) {
        *data = r->kept_data;
        *rows = r->kept_rows;
        *n = r->kept_n;
        r->kept_data = NULL;
        r->kept_rows = NULL;
        return 0;
    }
    int rc = ag__psi_spill_load(r->spill, b, data, rows, n);
    if (rc < 0)
        return rc;
    qsort(*rows, *n, sizeof(**rows), row_cmp);
    if (keep) {
        r->kept_data = *data;
        r->kept_rows = *rows;
        r->kept_n = *n;
    }
    return 0;
}

/* Step 4: the earliest repeated row of the input, over every bucket. */
static int check_duplicates(struct run *r)
{
    uint64_t best_line = UINT64_MAX, first_line = 0, dups = 0;
    char key[200] = "";
    for (uint64_t b = r->windex; b < r->nbuckets; b += r->wcount) {
        uint8_t *data;
        struct psi_row *rows;
        size_t n;
        int rc = load_sorted(r, b, &data, &rows, &n, r->nbuckets == 1);
        if (rc < 0)
            return rc;
        size_t start = 0;
        for (size_t i = 1; i < n; i++) {
            if (ag__psi_key_cmp(rows[start].key, rows[i].key) != 0) {
                start = i;
                continue;
            }
            dups++;
            if (rows[i].line < best_line) {
                best_line = rows[i].line;
                first_line = rows[start].line;
                ag__psi_key_format(rows[i].key, key, sizeof(key));
            }
        }
        if (r->nbuckets != 1) {
            ag_free(rows);
            ag_free(data);
        }
    }
    if (dups == 0)
        return 0;
    char more[64] = "";
    if (dups > 1)
        snprintf(more, sizeof(more), "; %llu rows repeat a key", (unsigned long long)dups);
    return ag_errbuf_set(r->err, AG_E_PSI_DUPLICATE, "%s:%llu: duplicate key %s (first at line "
                         "%llu)%s (--allow-duplicates keeps them)", r->o->input,
                         (unsigned long long)best_line, key, (unsigned long long)first_line,
                         more);
}

/* One bucket's groups: keys, counts and where each group starts. */
struct groups {
    size_t n;
    ag_slice *keys;
    uint32_t *counts;
    size_t *start;
    uint8_t *matched;
    uint32_t *peer_counts;
};

static void groups_free(struct groups *g)
{
    ag_free(g->keys);
    ag_free(g->counts);
    ag_free(g->start);
    ag_free(g->matched);
    ag_free(g->peer_counts);
}

static int groups_make(struct run *r, const struct psi_row *rows, size_t n, struct groups *g)
{
    size_t cap = n ? n : 1;
    memset(g, 0, sizeof(*g));
    g->keys = ag_malloc(cap * sizeof(*g->keys));
    g->counts = ag_malloc(cap * sizeof(*g->counts));
    g->start = ag_malloc(cap * sizeof(*g->start));
    g->matched = ag_calloc(cap, 1);
    g->peer_counts = ag_calloc(cap, sizeof(*g->peer_counts));
    if (!g->keys || !g->counts || !g->start || !g->matched || !g->peer_counts)
        return ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory for a bucket of %zu rows", n);
    for (size_t i = 0; i < n; i++) {
        if (g->n > 0 && ag__psi_key_cmp(g->keys[g->n - 1], rows[i].key) == 0) {
            if (g->counts[g->n - 1] == UINT32_MAX)
                return ag_errbuf_set(r->err, AG_E_TOO_LARGE, "a key repeated in more than "
                                     "%u rows", UINT32_MAX);
            g->counts[g->n - 1]++;
            continue;
        }
        g->keys[g->n] = rows[i].key;
        g->counts[g->n] = 1;
        g->start[g->n] = i;
        g->n++;
    }
    if (g->n > UINT32_MAX)
        return ag_errbuf_set(r->err, AG_E_TOO_LARGE, "%zu keys in one bucket", g->n);
    return 0;
}

/* Step 5 for one bucket. */
static int run_bucket(struct run *r, void *state, uint64_t b, struct psi_ctx *ctx)
{
    uint8_t *data = NULL;
    struct psi_row *rows = NULL;
    size_t n = 0;
    struct groups g = {0};
    int rc = load_sorted(r, b, &data, &rows, &n, false);
    if (rc == 0)
        rc = groups_make(r, rows, n, &g);
    if (rc < 0)
        goto out;
    progress_bucket(r->progress, n, 2 * (uint64_t)g.n);
    struct psi_keyset ks = {.n = g.n, .keys = g.keys, .counts = g.counts,
                            .matched = g.matched, .peer_counts = g.peer_counts};
    rc = r->proto->bucket(ctx, state, b, &ks);
    if (rc < 0 || !(r->receivers & (1u << r->me)))
        goto out;
    r->na_rows += ks.peer_unmatched_rows;
    for (size_t k = 0; k < g.n; k++) {
        if (g.matched[k]) {
            r->rep.intersection++;
            r->rep.matched_rows += g.counts[k];
            if (r->inter)
                rc = ag__psi_runs_add(r->inter, g.keys[k], g.peer_counts[k], rows + g.start[k],
                                      g.counts[k]);
        } else if (r->except) {
            rc = ag__psi_runs_add(r->except, g.keys[k], 1, rows + g.start[k], g.counts[k]);
        }
        if (rc < 0)
            goto out;
    }
    if (r->inter)
        rc = ag__psi_runs_end(r->inter);
    if (rc == 0 && r->except)
        rc = ag__psi_runs_end(r->except);
out:
    groups_free(&g);
    ag_free(rows);
    ag_free(data);
    return rc;
}

static int write_nulls(struct run *r, ag_csv_writer *w)
{
    ag_slice *f = ag_malloc(r->ncols * sizeof(*f));
    if (!f)
        return ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
    for (size_t i = 0; i < r->ncols; i++)
        f[i] = ag_slice_str(r->null_value);
    int rc = 0;
    for (uint64_t i = 0; i < r->na_rows && rc == 0; i++) {
        rc = ag_csv_write_record(w, f, r->ncols);
        if (rc < 0)
            ag_errbuf_set(r->err, rc, "%s", ag_csv_writer_errmsg(w));
        else
            r->rep.rows_written++;
    }
    ag_free(f);
    return rc;
}

/* The output's blocks in the order of this side. */
static int write_blocks(struct run *r, ag_csv_writer *w)
{
    ag_slice *h = ag_malloc(r->ncols * sizeof(*h));
    if (!h)
        return ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
    for (size_t i = 0; i < r->ncols; i++)
        h[i] = ag_slice_str(r->colnames[i]);
    int rc = ag_csv_write_record(w, h, r->ncols);
    ag_free(h);
    if (rc < 0)
        return ag_errbuf_set(r->err, rc, "%s", ag_csv_writer_errmsg(w));
    bool left = r->me == 0;
    if (r->inter)
        rc = ag__psi_runs_merge(r->inter, w, r->ncols, left, &r->rep.rows_written);
    if (rc == 0 && left && r->except)
        rc = ag__psi_runs_merge(r->except, w, r->ncols, true, &r->rep.rows_written);
    if (rc == 0 && r->na_block)
        rc = write_nulls(r, w);
    if (rc == 0 && !left && r->except)
        rc = ag__psi_runs_merge(r->except, w, r->ncols, true, &r->rep.rows_written);
    return rc;
}

/* Step 6: the output under its temporary name (or to standard output). */
static int write_output(struct run *r, bool to_stdout)
{
    int fd = 1;
    if (!to_stdout) {
        size_t cap = strlen(r->o->output) + 32;
        r->tmp_path = ag_malloc(cap);
        if (!r->tmp_path)
            return ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
        for (int tries = 0;; tries++) {
            uint8_t rnd[6];
            char hex[13];
            if (ag_random_bytes(rnd, sizeof(rnd)) < 0) {
                ag_free(r->tmp_path);
                r->tmp_path = NULL;
                return ag_errbuf_set(r->err, AG_E_SYS, "no random bytes");
            }
            ag_hex_encode(hex, rnd, sizeof(rnd));
            snprintf(r->tmp_path, cap, "%s.tmp-%s", r->o->output, hex);
            fd = open(r->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd >= 0)
                break;
            if (errno != EEXIST || tries == 8) {
                int e = errno;
                ag_free(r->tmp_path);
                r->tmp_path = NULL;
                return ag_errbuf_set(r->err, ag_err_from_errno(e), "%s: %s", r->o->output,
                                     strerror(e));
            }
        }
    }
    ag_csv_writer *w = ag_csv_writer_new(NULL);
    int rc = w ? ag_csv_writer_open_fd(w, fd, r->o->output) : AG_E_NOMEM;
    if (rc < 0)
        ag_errbuf_set(r->err, rc, "%s", w ? ag_csv_writer_errmsg(w) : "out of memory");
    if (rc == 0)
        rc = write_blocks(r, w);
    if (w) {
        int crc = ag_csv_writer_close(w);
        if (rc == 0 && crc < 0)
            rc = ag_errbuf_set(r->err, crc, "%s: %s", r->o->output, ag_strerror(crc));
    }
    if (!to_stdout) {
        if (rc == 0 && fsync(fd) != 0)
            rc = ag_errbuf_set(r->err, ag_err_from_errno(errno), "%s: %s", r->o->output,
                               strerror(errno));
        if (close(fd) != 0 && rc == 0)
            rc = ag_errbuf_set(r->err, ag_err_from_errno(errno), "%s: %s", r->o->output,
                               strerror(errno));
    }
    return rc;
}

/* Step 7: "done" both ways. */
static int fin(struct run *r)
{
    uint8_t ok = 1, got;
    int rc = ag_link_send(r->link, r->peer, psi_tag(0, PSI_STEP_FIN), &ok, 1);
    if (rc == 0)
        rc = ag_link_recv_into(r->link, r->peer, psi_tag(0, PSI_STEP_FIN), &got, 1);
    if (rc < 0)
        return ag_errbuf_set(r->err, rc, "%s", ag_link_errmsg(r->link));
    if (got != 1)
        return ag_errbuf_set(r->err, AG_E_PSI_PROTOCOL, "party %s broke the PSI protocol: a "
                             "final status %u", ag_link_party(r->link, r->peer), got);
    return 0;
}

/* What the join asks of this side's output. */
static void plan_blocks(struct run *r, bool *inter, bool *except, bool *na)
{
    bool left = r->me == 0;
    ag_psi_join j = r->o->join;
    *inter = j != AG_PSI_DIFFERENCE;
    bool left_rest = j == AG_PSI_LEFT || j == AG_PSI_FULL || j == AG_PSI_DIFFERENCE;
    bool right_rest = j == AG_PSI_RIGHT || j == AG_PSI_FULL || j == AG_PSI_DIFFERENCE;
    *except = left ? left_rest : right_rest;
    *na = left ? right_rest : left_rest;
}

static int check_opts(struct run *r)
{
    const ag_psi_opts *o = r->o;
    if (ag_link_size(r->link) != 2)
        return ag_errbuf_set(r->err, AG_E_INVAL, "PSI runs between 2 parties, the link has %u",
                             ag_link_size(r->link));
    if (!o->input)
        return ag_errbuf_set(r->err, AG_E_INVAL, "no input file");
    if (o->nkeys == 0 || o->nkeys > AG_PSI_MAX_KEYS || !o->keys)
        return ag_errbuf_set(r->err, AG_E_INVAL, "%zu key columns (1 to %d)", o->nkeys,
                             AG_PSI_MAX_KEYS);
    if ((unsigned)o->join > AG_PSI_DIFFERENCE)
        return ag_errbuf_set(r->err, AG_E_INVAL, "unknown join type %d", (int)o->join);
    const char *name = o->protocol ? o->protocol : "ecdh";
    for (size_t i = 0; i < AG_ARRAY_LEN(protocols); i++)
        if (strcmp(name, protocols[i]->name) == 0)
            r->proto = protocols[i];
    if (!r->proto) {
        const char *names[AG_ARRAY_LEN(protocols) + 1];
        for (size_t i = 0; i < AG_ARRAY_LEN(protocols); i++)
            names[i] = protocols[i]->name;
        names[AG_ARRAY_LEN(protocols)] = NULL;
        const char *near = ag_nearest(name, names);
        return ag_errbuf_set(r->err, AG_E_INVAL, "unknown PSI protocol '%s'%s%s%s", name,
                             near ? " (did you mean '" : " (known: ecdh)", near ? near : "",
                             near ? "'?)" : "");
    }
    r->bucket_rows = o->bucket_rows ? o->bucket_rows : AG_PSI_DEFAULT_BUCKET_ROWS;
    if (r->bucket_rows > UINT32_MAX)
        return ag_errbuf_set(r->err, AG_E_INVAL, "buckets of %llu rows (at most %u)",
                             (unsigned long long)r->bucket_rows, UINT32_MAX);
    r->tmpdir = o->tmpdir ? o->tmpdir : getenv("TMPDIR");
    if (!r->tmpdir || !*r->tmpdir)
        r->tmpdir = "/tmp";
    r->null_value = o->null_value ? o->null_value : "NULL";
    return ag_psi_receiver_parse(r->link, o->receiver, &r->receivers, r->err);
}

/* A reason for the peer that holds no data: the local message may quote a
 * key or a line of the input, so only the kind of failure crosses. */
static void abort_peer(struct run *r, int rc)
{
    char why[AG_ERRMSG_MAX];
    if (r->peer_why[0]) {
        ag_link_abort(r->link, r->peer_why);
        return;
    }
    switch (rc) {
    case AG_E_PSI_DUPLICATE:
        snprintf(why, sizeof(why), "duplicate keys in its input (--allow-duplicates keeps "
                 "them)");
        break;
    case AG_E_PSI_MISMATCH:
    case AG_E_PSI_PROTOCOL:
    case AG_E_LINK_TIMEOUT:
        snprintf(why, sizeof(why), "%s", r->err->msg);
        break;
    case AG_E_CSV_SYNTAX:
    case AG_E_CSV_FIELDS:
    case AG_E_CSV_UTF8:
    case AG_E_CSV_COLUMN:
    case AG_E_CSV_VALUE:
        snprintf(why, sizeof(why), "cannot use its input: %s", ag_strerror(rc));
        break;
    default:
        snprintf(why, sizeof(why), "%s", ag_strerror(rc));
    }
    ag_link_abort(r->link, why);
}

static int setup_pool_and_progress(struct run *r)
{
    unsigned threads = r->o->threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    if (threads > 1) {
        int rc = ag_pool_new(&r->pool, threads - 1, 0, "psi");
        if (rc < 0)
            return ag_errbuf_set(r->err, rc, "cannot start %u curve threads", threads - 1);
    }
    bool print = r->o->progress && isatty(1) && isatty(2);
    if (!r->o->progress_fn && !print)
        return 0;
    r->progress = ag_calloc(1, sizeof(*r->progress));
    if (!r->progress)
        return ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
    r->progress->fn = r->o->progress_fn ? r->o->progress_fn : print_progress;
    r->progress->ud = r->o->progress_ud;
    pthread_mutex_init(&r->progress->mu, NULL);
    r->progress->p.rows_total = r->rows;
    r->progress->p.buckets = r->nbuckets;
    r->progress->start_ns = ag_now_ns();
    atomic_init(&r->progress->units, 0);
    atomic_init(&r->progress->last_ns, ag_now_ns());
    return 0;
}

static void run_cleanup(struct run *r)
{
    if (r->tmp_path) {
        unlink(r->tmp_path);
        ag_free(r->tmp_path);
    }
    if (r->progress) {
        if (r->progress->line_open) /* a failed run: end the line before the error */
            fputc('\n', stderr);
        pthread_mutex_destroy(&r->progress->mu);
        ag_free(r->progress);
    }
    ag_pool_free(r->pool);
    ag__psi_runs_free(r->inter);
    ag__psi_runs_free(r->except);
    ag_free(r->kept_rows);
    ag_free(r->kept_data);
    ag__psi_spill_free(r->spill);
    if (r->colnames)
        for (size_t i = 0; i < r->ncols; i++)
            ag_free(r->colnames[i]);
    ag_free(r->colnames);
}

/* The receiver's runs: anonymous files in tmpdir, or a worker's named
 * files in the job directory (which its coordinator adopts). */
static int make_runs(struct run *r)
{
    bool i_receive = r->receivers & (1u << r->me);
    bool write = i_receive && (r->worker ? r->keep_rows : r->o->output != NULL);
    bool inter, except;
    plan_blocks(r, &inter, &except, &r->na_block);
    const char *what[2] = {"inter", "except"};
    struct psi_runs **runs[2] = {&r->inter, &r->except};
    bool want[2] = {write && inter, write && except};
    for (int k = 0; k < 2; k++) {
        if (!want[k])
            continue;
        int rc;
        if (r->worker) {
            char path[4096];
            ag__psi_wpath(path, sizeof(path), r->wdir, r->windex, what[k]);
            rc = ag__psi_runs_new_file(runs[k], path, r->err);
        } else {
            rc = ag__psi_runs_new(runs[k], r->tmpdir, r->err);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Steps 4 to 6, after the spill. */
static int run_protocol(struct run *r)
{
    int rc = setup_pool_and_progress(r);
    if (rc < 0)
        return rc;
    bool i_receive = r->receivers & (1u << r->me);
    rc = make_runs(r);
    if (rc < 0)
        return rc;
    const char *s = r->o->session ? r->o->session : "";
    struct psi_ctx ctx = {
        .link = r->link, .me = r->me, .peer = r->peer, .i_receive = i_receive,
        .peer_receives = (r->receivers & (1u << r->peer)) != 0,
        .dups = r->o->allow_duplicates, .pool = r->pool, .session = (const uint8_t *)s,
        .session_len = strlen(s), .peer_rows = r->peer_rows, .err = r->err,
        .progress = r->progress,
    };
    void *state = NULL;
    rc = r->proto->start(&ctx, &state);
    for (uint64_t b = r->windex; rc == 0 && b < r->nbuckets; b += r->wcount) {
        rc = run_bucket(r, state, b, &ctx);
        if (r->progress)
            r->progress->p.bucket = b + 1;
    }
    r->proto->stop(state);
    if (rc == 0 && r->progress) {
        progress_bucket(r->progress, 0, 0);
        progress_emit(r->progress, true);
    }
    if (rc == 0 && i_receive)
        r->rep.receiver = true;
    return rc;
}


/* ---- workers: the coordinator ------------------------------------------------- */

#define WATCH_MS 100 /* a wait's tick: the heartbeat's and the peer watch's */

/* "worker i (container ...)" as the caller's hooks name it. */
static const char *worker_name(const struct run *r, unsigned i, char *buf, size_t cap)
{
    const ag_psi_workers *w = r->o->workers;
    const char *n = w->name ? w->name(w->ud, i) : NULL;
    snprintf(buf, cap, "worker %u%s%s%s", i, n ? " (" : "", n ? n : "", n ? ")" : "");
    return buf;
}

/* A worker's w<i>.err: 1 with the failure recorded (locally the worker's
 * message; for the peer the kind only), 0 if it has none. */
static int worker_error(struct run *r, unsigned i)
{
    char path[4096], *text, name[200];
    ag__psi_wpath(path, sizeof(path), r->wdir, i, "err");
    ag_errbuf e;
    ag_errbuf_clear(&e);
    int rc = ag__psi_file_get(path, &text, &e);
    if (rc <= 0)
        return 0;
    char *end;
    long code = strtol(text, &end, 10);
    if (code >= 0 || code < INT32_MIN || *end != ' ')
        code = AG_E_IO;
    else
        end++;
    worker_name(r, i, name, sizeof(name));
    ag_errbuf_set(r->err, (int)code, "%s failed: %.700s", name, *end ? end : text);
    snprintf(r->peer_why, sizeof(r->peer_why), "%s failed: %s", name,
             code == AG_E_LINK_ABORTED || code == AG_E_LINK_TIMEOUT ? *end ? end : text
                                                                    : ag_strerror((int)code));
    ag_free(text);
    return 1;
}

/* One tick of a wait: the workers' heartbeat and their error files, then
 * WATCH_MS on the link for the peer's abort (recv_tag: a message that may
 * come, received into *got; 0: only watch). 0, or the failure. */
static int tick(struct run *r, uint64_t recv_tag, void **got, size_t *len)
{
    const ag_psi_workers *w = r->o->workers;
    for (unsigned i = 0; i < w->count; i++)
        if (worker_error(r, i))
            return r->err->code ? r->err->code : AG_E_IO;
    unsigned failed = w->count;
    ag_errbuf e;
    ag_errbuf_clear(&e);
    int rc = w->check(w->ud, &failed, &e);
    if (rc < 0) {
        if (failed < w->count && worker_error(r, failed))
            return r->err->code ? r->err->code : rc;
        ag_errbuf_set(r->err, rc, "%s", e.msg);
        snprintf(r->peer_why, sizeof(r->peer_why), "%s", e.msg);
        return rc;
    }
    uint64_t saved = ag_link_timeout_ms(r->link);
    ag_link_set_timeout_ms(r->link, WATCH_MS);
    void *d = NULL;
    size_t n = 0;
    rc = ag_link_recv(r->link, r->peer, recv_tag ? recv_tag : psi_tag(0, PSI_STEP_WATCH), &d,
                      &n);
    ag_link_set_timeout_ms(r->link, saved);
    if (rc == AG_E_LINK_TIMEOUT)
        return 0;
    if (rc < 0)
        return ag_errbuf_set(r->err, rc, "%s", ag_link_errmsg(r->link));
    if (!recv_tag) {
        ag_free(d);
        return ag_errbuf_set(r->err, AG_E_PSI_PROTOCOL, "party %s broke the PSI protocol: a "
                             "message under a tag never used", ag_link_party(r->link, r->peer));
    }
    *got = d;
    *len = n;
    return 0;
}

/* Waits for every worker's address file; into addrs. */
static int wait_addrs(struct run *r, char (*addrs)[PSI_ADDR_SIZE])
{
    unsigned have = 0, count = r->o->workers->count;
    while (have < count) {
        have = 0;
        for (unsigned i = 0; i < count; i++) {
            char path[4096], *text;
            if (addrs[i][0]) {
                have++;
                continue;
            }
            ag__psi_wpath(path, sizeof(path), r->wdir, i, "addr");
            int rc = ag__psi_file_get(path, &text, r->err);
            if (rc < 0)
                return rc;
            if (rc == 0)
                continue;
            size_t len = strcspn(text, "\n");
            if (len == 0 || len >= PSI_ADDR_SIZE || !memchr(text, ':', len)) {
                ag_free(text);
                return ag_errbuf_set(r->err, AG_E_IO, "%s: not host:port", path);
            }
            memset(addrs[i], 0, PSI_ADDR_SIZE);
            memcpy(addrs[i], text, len);
            ag_free(text);
            have++;
        }
        if (have < count) {
            int rc = tick(r, 0, NULL, NULL);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Sends this party's workers' addresses, receives the peer's (waiting as
 * long as the link's timeout, heartbeating meanwhile) and tells each
 * worker its counterpart's. */
static int exchange_addrs(struct run *r, char (*mine)[PSI_ADDR_SIZE])
{
    unsigned count = r->o->workers->count;
    int rc = ag_link_send(r->link, r->peer, psi_tag(0, PSI_STEP_WORKERS), mine,
                          (size_t)count * PSI_ADDR_SIZE);
    if (rc < 0)
        return ag_errbuf_set(r->err, rc, "%s", ag_link_errmsg(r->link));
    void *got = NULL;
    size_t len = 0;
    uint64_t t0 = ag_now_ns(), limit = ag_link_timeout_ms(r->link);
    while (!got) {
        rc = tick(r, psi_tag(0, PSI_STEP_WORKERS), &got, &len);
        if (rc < 0)
            return rc;
        if (!got && (ag_now_ns() - t0) / 1000000u > limit)
            return ag_errbuf_set(r->err, AG_E_LINK_TIMEOUT, "party %s: no workers' addresses "
                                 "from party %s within %llu ms", ag_link_party(r->link, r->me),
                                 ag_link_party(r->link, r->peer), (unsigned long long)limit);
    }
    char (*theirs)[PSI_ADDR_SIZE] = ag_calloc(count, PSI_ADDR_SIZE);
    char why[AG_ERRMSG_MAX - 64];
    rc = theirs ? ag__psi_addrs_decode(got, len, count, theirs, why, sizeof(why)) : AG_E_NOMEM;
    ag_free(got);
    if (rc == AG_E_NOMEM)
        return ag_errbuf_set(r->err, rc, "out of memory");
    if (rc < 0) {
        ag_free(theirs);
        return ag_errbuf_set(r->err, rc, "party %s broke the PSI protocol: %s",
                             ag_link_party(r->link, r->peer), why);
    }
    for (unsigned i = 0; rc == 0 && i < count; i++) {
        char path[4096];
        ag__psi_wpath(path, sizeof(path), r->wdir, i, "peer");
        rc = ag__psi_file_put(path, theirs[i], r->err);
    }
    ag_free(theirs);
    return rc;
}

/* Waits for every worker's result and adopts its runs. */
static int collect(struct run *r)
{
    unsigned count = r->o->workers->count, have = 0;
    bool *done = ag_calloc(count, sizeof(*done));
    if (!done)
        return ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
    int rc = make_runs(r);
    while (rc == 0 && have < count) {
        for (unsigned i = 0; rc == 0 && i < count; i++) {
            struct psi_wresult res;
            if (done[i])
                continue;
            rc = ag__psi_result_read(r->wdir, i, &res, r->err);
            if (rc <= 0)
                continue;
            rc = 0;
            done[i] = true;
            have++;
            r->rep.intersection += res.intersection;
            r->rep.matched_rows += res.matched_rows;
            r->na_rows += res.na_rows;
            r->rep.bytes_sent += res.bytes_sent;
            r->rep.bytes_recv += res.bytes_recv;
            char path[4096];
            if (r->inter && res.ninter) {
                ag__psi_wpath(path, sizeof(path), r->wdir, i, "inter");
                rc = ag__psi_runs_adopt(r->inter, path, res.inter, res.ninter);
            }
            if (rc == 0 && r->except && res.nexcept) {
                ag__psi_wpath(path, sizeof(path), r->wdir, i, "except");
                rc = ag__psi_runs_adopt(r->except, path, res.except, res.nexcept);
            }
            ag__psi_result_cleanup(&res);
        }
        if (rc == 0 && have < count)
            rc = tick(r, 0, NULL, NULL);
    }
    ag_free(done);
    if (rc == 0 && (r->receivers & (1u << r->me)))
        r->rep.receiver = true;
    return rc;
}

/* Steps 3 to 5 at the workers: the plan, the start, the addresses, the
 * results. */
static int coordinate(struct run *r)
{
    const ag_psi_workers *w = r->o->workers;
    if (w->count == 0 || w->count > PSI_MAX_WORKERS || !w->start || !w->check || !w->stop)
        return ag_errbuf_set(r->err, AG_E_INVAL, "workers: %u (1 to %d, with start, check and "
                             "stop)", w->count, PSI_MAX_WORKERS);
    snprintf(r->wdir_buf, sizeof(r->wdir_buf), "%s/argot-psi-XXXXXX", r->tmpdir);
    if (!mkdtemp(r->wdir_buf))
        return ag_errbuf_set(r->err, ag_err_from_errno(errno), "%s: cannot make the workers' "
                             "directory: %s", r->tmpdir, strerror(errno));
    r->wdir = r->wdir_buf;
    bool i_receive = r->receivers & (1u << r->me);
    struct psi_plan plan = {.rows = r->rows, .peer_rows = r->peer_rows, .buckets = r->nbuckets,
                            .workers = w->count, .keep_rows = i_receive && r->o->output};
    int rc = ag__psi_plan_write(r->wdir, &plan, r->err);
    if (rc < 0)
        return rc;
    rc = w->start(w->ud, r->wdir, r->err);
    if (rc < 0) {
        snprintf(r->peer_why, sizeof(r->peer_why), "%s", r->err->msg);
        return rc;
    }
    r->workers_started = true;
    char (*addrs)[PSI_ADDR_SIZE] = ag_calloc(w->count, PSI_ADDR_SIZE);
    if (!addrs)
        return ag_errbuf_set(r->err, AG_E_NOMEM, "out of memory");
    rc = wait_addrs(r, addrs);
    if (rc == 0)
        rc = exchange_addrs(r, addrs);
    ag_free(addrs);
    if (rc == 0)
        rc = collect(r);
    return rc;
}

/* Stops the workers (ok or not) and removes the job directory. */
static void coordinate_end(struct run *r, bool ok)
{
    if (r->workers_started)
        r->o->workers->stop(r->o->workers->ud, ok, ok ? "" : r->err->msg);
    r->workers_started = false;
    if (r->wdir)
        ag__psi_dir_remove(r->wdir);
}

/* ---- workers: one worker -------------------------------------------------------- */

/* Publishes this worker's address and waits for its counterpart's. */
static int worker_meet(struct run *r, const char *address)
{
    char path[4096], line[PSI_ADDR_SIZE + 2];
    snprintf(line, sizeof(line), "%s\n", address);
    ag__psi_wpath(path, sizeof(path), r->wdir, r->windex, "addr");
    int rc = ag__psi_file_put(path, line, r->err);
    if (rc < 0)
        return rc;
    ag__psi_wpath(path, sizeof(path), r->wdir, r->windex, "peer");
    uint64_t t0 = ag_now_ns(), limit = ag_link_timeout_ms(r->link);
    for (;;) {
        char *text;
        rc = ag__psi_file_get(path, &text, r->err);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            rc = ag_link_rpc_set_peer(r->link, r->peer, text);
            ag_free(text);
            return rc < 0 ? ag_errbuf_set(r->err, rc, "%s: %s", path, ag_strerror(rc)) : 0;
        }
        if ((ag_now_ns() - t0) / 1000000u > limit)
            return ag_errbuf_set(r->err, AG_E_LINK_TIMEOUT, "worker %u: no address of party "
                                 "%s's worker within %llu ms", r->windex,
                                 ag_link_party(r->link, r->peer), (unsigned long long)limit);
        ag_sleep_ms(20);
    }
}

/* The plan into r (after the worker's count pass). */
static int worker_plan(struct run *r)
{
    struct psi_plan p;
    int rc = ag__psi_plan_read(r->wdir, &p, r->err);
    if (rc < 0)
        return rc;
    if (r->windex >= p.workers)
        return ag_errbuf_set(r->err, AG_E_INVAL, "worker %u of %u", r->windex, p.workers);
    if (p.rows != r->rows)
        return ag_errbuf_set(r->err, AG_E_IO, "%s: changed while being read (%llu rows, then "
                             "%llu)", r->o->input, (unsigned long long)p.rows,
                             (unsigned long long)r->rows);
    r->wcount = p.workers;
    r->peer_rows = p.peer_rows;
    r->nbuckets = p.buckets;
    r->keep_rows = p.keep_rows;
    bucket_key_init(r);
    return 0;
}

int ag_psi_worker_run(ag_link *link, const ag_psi_opts *o, unsigned index, const char *dir,
                      const char *address, ag_errbuf *err)
{
    ag_errbuf local;
    if (!err)
        err = &local;
    ag_errbuf_clear(err);
    ag_psi_opts wo = *o;
    wo.output = NULL;
    wo.workers = NULL;
    wo.progress = false;
    wo.progress_fn = NULL;
    ag_link_stats s0, s1;
    ag_link_stats_get(link, &s0);
    struct run r = {.link = link, .o = &wo, .err = err, .worker = true, .windex = index,
                    .wcount = 1, .wdir = dir};
    r.me = ag_link_rank(link);
    r.peer = 1 - r.me;
    int rc = check_opts(&r);
    if (rc == 0 && (!dir || !address))
        rc = ag_errbuf_set(err, AG_E_INVAL, "a worker needs the job directory and its address");
    if (rc == 0)
        rc = ag__psi_curve_init() < 0 ? ag_errbuf_set(err, AG_E_SYS, "libsodium failed to "
                                                      "initialize") : 0;
    if (rc == 0)
        rc = pass_count(&r);
    if (rc == 0)
        rc = worker_plan(&r);
    if (rc == 0)
        rc = worker_meet(&r, address);
    if (rc == 0)
        rc = pass_spill(&r);
    if (rc == 0 && !wo.allow_duplicates)
        rc = check_duplicates(&r);
    if (rc == 0)
        rc = run_protocol(&r);
    if (rc == 0 && r.inter)
        rc = ag__psi_runs_flush(r.inter);
    if (rc == 0 && r.except)
        rc = ag__psi_runs_flush(r.except);
    ag_link_stats_get(link, &s1);
    struct psi_wresult res = {
        .intersection = r.rep.intersection, .matched_rows = r.rep.matched_rows,
        .na_rows = r.na_rows, .bytes_sent = s1.bytes_sent - s0.bytes_sent,
        .bytes_recv = s1.bytes_recv - s0.bytes_recv};
    if (rc == 0)
        rc = ag__psi_result_write(dir, index, &res, r.inter, r.except, err);
    if (rc < 0) {
        abort_peer(&r, rc);
        char path[4096], text[AG_ERRMSG_MAX + 32];
        snprintf(text, sizeof(text), "%d %s\n", rc, err->msg);
        if (dir) {
            ag_errbuf e;
            ag_errbuf_clear(&e);
            ag__psi_wpath(path, sizeof(path), dir, index, "err");
            ag__psi_file_put(path, text, &e);
        }
    }
    run_cleanup(&r);
    return rc;
}

int ag_psi_run(ag_link *link, const ag_psi_opts *o, ag_psi_report *report, ag_errbuf *err)
{
    ag_errbuf local;
    if (!err)
        err = &local;
    ag_errbuf_clear(err);
    uint64_t t0 = ag_now_ns();
    ag_link_stats s0, s1;
    ag_link_stats_get(link, &s0);
    struct run r = {.link = link, .o = o, .err = err, .wcount = 1};
    r.me = ag_link_rank(link);
    r.peer = 1 - r.me;
    int rc = check_opts(&r);
    if (rc == 0)
        rc = ag__psi_curve_init() < 0 ? ag_errbuf_set(err, AG_E_SYS, "libsodium failed to "
                                                      "initialize") : 0;
    if (rc == 0)
        rc = pass_count(&r);
    if (rc == 0)
        rc = hello(&r);
    if (rc == 0 && o->workers)
        rc = coordinate(&r);
    if (rc == 0 && !o->workers)
        rc = pass_spill(&r);
    if (rc == 0 && !o->workers && !o->allow_duplicates)
        rc = check_duplicates(&r);
    if (rc == 0 && !o->workers)
        rc = run_protocol(&r);
    ag__psi_spill_free(r.spill);
    r.spill = NULL;
    bool write = rc == 0 && r.rep.receiver && o->output;
    bool to_stdout = write && strcmp(o->output, "-") == 0;
    if (write && !to_stdout)
        rc = write_output(&r, false);
    if (rc == 0)
        rc = fin(&r);
    if (rc == 0 && to_stdout)
        rc = write_output(&r, true);
    if (rc == 0 && r.tmp_path) {
        if (rename(r.tmp_path, o->output) != 0)
            rc = ag_errbuf_set(err, ag_err_from_errno(errno), "%s: %s", o->output,
                               strerror(errno));
        else {
            ag_free(r.tmp_path);
            r.tmp_path = NULL;
        }
    }
    if (rc < 0)
        abort_peer(&r, rc);
    coordinate_end(&r, rc == 0);
    ag_link_stats_get(link, &s1);
    r.rep.rows = r.rows;
    r.rep.peer_rows = r.peer_rows;
    r.rep.buckets = r.nbuckets;
    r.rep.bytes_sent += s1.bytes_sent - s0.bytes_sent; /* the workers' are in already */
    r.rep.bytes_recv += s1.bytes_recv - s0.bytes_recv;
    r.rep.seconds = (double)(ag_now_ns() - t0) / 1e9;
    run_cleanup(&r);
    if (rc == 0 && report)
        *report = r.rep;
    return rc;
}
