/*
 * A thread pool with a bounded FIFO work queue, and a parallel for.
 *
 * Workers take tasks from a ring buffer under one mutex; submitters wait on
 * `not_full` when the ring is full (backpressure), workers on `not_empty`
 * when it is empty, and ag_pool_wait_idle() on `idle` until nothing is queued
 * or running. ag_pool_free() sets `closing`: no new task is accepted, the
 * workers drain what is queued, then exit and are joined.
 *
 * ag_pool_parallel_for() hands out chunks through an atomic cursor shared by
 * the helper tasks it queues and the calling thread, which works too; it
 * returns when every helper has finished, so the caller's stack context
 * stays valid throughout. Helpers that start after the work is gone exit at
 * once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "argot/base.h"

struct task {
    ag_task_fn fn;
    void *arg;
};

struct ag_pool {
    pthread_mutex_t mu;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    pthread_cond_t idle;
    struct task *ring;
    size_t cap;     /* ring slots */
    size_t head;    /* next slot to take */
    size_t count;   /* queued tasks */
    unsigned busy;  /* tasks running */
    bool closing;
    unsigned nthreads;
    pthread_t *threads;
    char name[16];
};

static void *worker_main(void *arg)
{
    ag_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->count == 0 && !p->closing)
            pthread_cond_wait(&p->not_empty, &p->mu);
        if (p->count == 0)
            break; /* closing and drained */
        struct task t = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->busy++;
        pthread_cond_signal(&p->not_full);
        pthread_mutex_unlock(&p->mu);
        t.fn(t.arg);
        pthread_mutex_lock(&p->mu);
        p->busy--;
        if (p->count == 0 && p->busy == 0)
            pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int ag_pool_new(ag_pool **out, unsigned nthreads, size_t max_queue, const char *name)
{
    ag_pool *p = ag_calloc(1, sizeof(*p));
    if (!p)
        return AG_E_NOMEM;
    p->nthreads = nthreads ? nthreads : online_cpus();
    p->cap = max_queue ? max_queue : 1024;
    snprintf(p->name, sizeof(p->name), "%.10s", name ? name : "pool");
    p->ring = ag_calloc(p->cap, sizeof(*p->ring));
    if (!p->ring)
        goto free_pool;
    p->threads = ag_calloc(p->nthreads, sizeof(*p->threads));
    if (!p->threads)
        goto free_ring;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->not_empty, NULL);
    pthread_cond_init(&p->not_full, NULL);
    pthread_cond_init(&p->idle, NULL);
    unsigned started = 0;
    for (; started < p->nthreads; started++) {
        if (pthread_create(&p->threads[started], NULL, worker_main, p) != 0)
            break;
        char tname[32];
        snprintf(tname, sizeof(tname), "%s-%u", p->name, started);
        tname[15] = '\0'; /* the kernel's limit */
        pthread_setname_np(p->threads[started], tname);
    }
    if (started < p->nthreads) {
        p->nthreads = started;
        ag_pool_free(p);
        return AG_E_SYS;
    }
    *out = p;
    return 0;
free_ring:
    ag_free(p->ring);
free_pool:
    ag_free(p);
    return AG_E_NOMEM;
}

void ag_pool_free(ag_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->closing = true;
    pthread_cond_broadcast(&p->not_empty);
    pthread_cond_broadcast(&p->not_full);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->idle);
    pthread_cond_destroy(&p->not_full);
    pthread_cond_destroy(&p->not_empty);
    pthread_mutex_destroy(&p->mu);
    ag_free(p->threads);
    ag_free(p->ring);
    ag_free(p);
}

unsigned ag_pool_nthreads(const ag_pool *p)
{
    return p->nthreads;
}

static int submit(ag_pool *p, ag_task_fn fn, void *arg, bool wait)
{
    pthread_mutex_lock(&p->mu);
    while (p->count == p->cap && !p->closing && wait)
        pthread_cond_wait(&p->not_full, &p->mu);
    int rc = 0;
    if (p->closing) {
        rc = AG_E_CLOSED;
    } else if (p->count == p->cap) {
        rc = AG_E_AGAIN;
    } else {
        struct task *t = &p->ring[(p->head + p->count) % p->cap];
        t->fn = fn;
        t->arg = arg;
        p->count++;
        pthread_cond_signal(&p->not_empty);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int ag_pool_submit(ag_pool *p, ag_task_fn fn, void *arg)
{
    return submit(p, fn, arg, true);
}

int ag_pool_try_submit(ag_pool *p, ag_task_fn fn, void *arg)
{
    return submit(p, fn, arg, false);
}

void ag_pool_wait_idle(ag_pool *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->count > 0 || p->busy > 0)
        pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* ---- parallel for ------------------------------------------------------- */

struct pfor {
    ag_range_fn fn;
    void *ctx;
    size_t n;
    size_t grain;
    atomic_size_t cursor;  /* next item to hand out */
    pthread_mutex_t mu;
    pthread_cond_t done;
    unsigned helpers_left; /* queued helpers not yet finished */
};

static void pfor_work(struct pfor *f)
{
    for (;;) {
        size_t b = atomic_fetch_add(&f->cursor, f->grain);
        if (b >= f->n)
            return;
        size_t e = f->n - b < f->grain ? f->n : b + f->grain;
        f->fn(f->ctx, b, e);
    }
}

static void pfor_helper(void *arg)
{
    struct pfor *f = arg;
    pfor_work(f);
    pthread_mutex_lock(&f->mu);
    if (--f->helpers_left == 0)
        pthread_cond_signal(&f->done);
    pthread_mutex_unlock(&f->mu);
}

int ag_pool_parallel_for(ag_pool *p, size_t n, size_t grain, ag_range_fn fn, void *ctx)
{
    if (grain == 0)
        grain = 1;
    if (n == 0)
        return 0;
    size_t chunks = (n + grain - 1) / grain;
    if (!p || chunks == 1) {
        for (size_t b = 0; b < n; b += grain)
            fn(ctx, b, n - b < grain ? n : b + grain);
        return 0;
    }
    struct pfor f = {.fn = fn, .ctx = ctx, .n = n, .grain = grain};
    atomic_init(&f.cursor, 0);
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.done, NULL);
    unsigned want = p->nthreads < chunks - 1 ? p->nthreads : (unsigned)(chunks - 1);
    unsigned queued = 0;
    pthread_mutex_lock(&f.mu);
    f.helpers_left = want;
    pthread_mutex_unlock(&f.mu);
    for (; queued < want; queued++)
        if (ag_pool_try_submit(p, pfor_helper, &f) < 0)
            break;
    if (queued < want) {
        /* queue full or closing: the caller does the rest itself */
        pthread_mutex_lock(&f.mu);
        f.helpers_left -= want - queued;
        pthread_mutex_unlock(&f.mu);
    }
    pfor_work(&f);
    pthread_mutex_lock(&f.mu);
    while (f.helpers_left > 0)
        pthread_cond_wait(&f.done, &f.mu);
    pthread_mutex_unlock(&f.mu);
    pthread_cond_destroy(&f.done);
    pthread_mutex_destroy(&f.mu);
    return 0;
}
