/*
 * The in-memory link: the endpoints of one group are threads of one process
 * (simulation mode, tests, benchmarks). Each party has a mailbox (a list of
 * messages under a mutex and a condition variable); a send appends to the
 * peer's mailbox, a receive takes the first message from the right sender
 * with the right tag, waiting until the deadline. Messages move by pointer:
 * no copy beyond the one ag_link_send makes.
 *
 * The group is shared by its endpoints and freed with the last of them. An
 * abort records the first reason under the group's lock and wakes every
 * mailbox; from then on every receive fails with that reason.
 *
 * Waits use CLOCK_MONOTONIC, so a wall-clock change cannot stretch them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

struct msg {
    struct msg *next;
    unsigned src;
    uint64_t tag;
    void *data;
    size_t len;
};

struct mailbox {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct msg *head;
    struct msg **tail;
};

struct group {
    unsigned n;
    atomic_uint refs;
    struct mailbox *boxes;     /* n */
    pthread_mutex_t abort_mu;
    atomic_bool aborted;
    char abort_msg[AG_ERRMSG_MAX];
};

struct mem_link {
    ag_link base;              /* first: a mem_link is an ag_link */
    struct group *g;
};

static void msg_free(struct msg *m)
{
    ag_wipe(m->data, m->len); /* may be a share in transit */
    ag_free(m->data);
    ag_free(m);
}

static int mem_send(ag_link *l, unsigned peer, uint64_t tag, void *data, size_t len)
{
    struct group *g = ((struct mem_link *)l)->g;
    struct msg *m = ag_malloc(sizeof(*m));
    if (!m) {
        ag_free(data);
        return ag_errbuf_set(&l->err, AG_E_NOMEM, "party %s: no memory to send", l->names[l->rank]);
    }
    *m = (struct msg){NULL, l->rank, tag, data, len};
    struct mailbox *b = &g->boxes[peer];
    pthread_mutex_lock(&b->mu);
    *b->tail = m;
    b->tail = &m->next;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

/* Unlinks and returns the first message from src under tag, or NULL. */
static struct msg *take(struct mailbox *b, unsigned src, uint64_t tag)
{
    for (struct msg **pp = &b->head; *pp; pp = &(*pp)->next) {
        struct msg *m = *pp;
        if (m->src == src && m->tag == tag) {
            *pp = m->next;
            if (b->tail == &m->next)
                b->tail = pp;
            return m;
        }
    }
    return NULL;
}

static int mem_recv(ag_link *l, unsigned peer, uint64_t tag, void **data, size_t *len,
                    ag_deadline deadline)
{
    struct group *g = ((struct mem_link *)l)->g;
    struct mailbox *b = &g->boxes[l->rank];
    struct timespec ts = {0, 0};
    if (!ag_deadline_is_never(deadline)) {
        ts.tv_sec = (time_t)(deadline.at_ns / 1000000000u);
        ts.tv_nsec = (long)(deadline.at_ns % 1000000000u);
    }
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    struct msg *m;
    for (;;) {
        m = take(b, peer, tag);
        if (m || atomic_load(&g->aborted))
            break;
        int w = ag_deadline_is_never(deadline) ? pthread_cond_wait(&b->cv, &b->mu)
                                               : pthread_cond_timedwait(&b->cv, &b->mu, &ts);
        if (w == ETIMEDOUT) {
            m = take(b, peer, tag);
            break;
        }
    }
    pthread_mutex_unlock(&b->mu);
    if (m) {
        *data = m->data;
        *len = m->len;
        ag_free(m);
        return 0;
    }
    if (atomic_load(&g->aborted)) {
        pthread_mutex_lock(&g->abort_mu);
        rc = ag_errbuf_set(&l->err, AG_E_LINK_ABORTED, "%s", g->abort_msg);
        pthread_mutex_unlock(&g->abort_mu);
        return rc;
    }
    return ag_errbuf_set(&l->err, AG_E_LINK_TIMEOUT,
                         "party %s: no message from party %s within %llu ms (tag %#llx)",
                         l->names[l->rank], l->names[peer], (unsigned long long)l->timeout_ms,
                         (unsigned long long)tag);
}

static void mem_abort(ag_link *l, const char *msg)
{
    struct group *g = ((struct mem_link *)l)->g;
    pthread_mutex_lock(&g->abort_mu);
    if (!atomic_load(&g->aborted)) {
        snprintf(g->abort_msg, sizeof(g->abort_msg), "%s", msg);
        atomic_store(&g->aborted, true);
    }
    pthread_mutex_unlock(&g->abort_mu);
    for (unsigned i = 0; i < g->n; i++) {
        pthread_mutex_lock(&g->boxes[i].mu);
        pthread_cond_broadcast(&g->boxes[i].cv);
        pthread_mutex_unlock(&g->boxes[i].mu);
    }
}

static void group_release(struct group *g)
{
    if (atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    for (unsigned i = 0; i < g->n; i++) {
        struct mailbox *b = &g->boxes[i];
        for (struct msg *m = b->head, *next; m; m = next) {
            next = m->next;
            msg_free(m);
        }
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
    }
    pthread_mutex_destroy(&g->abort_mu);
    ag_free(g->boxes);
    ag_free(g);
}

static void mem_destroy(ag_link *l)
{
    struct mem_link *ml = (struct mem_link *)l;
    group_release(ml->g);
    ag__link_cleanup(l);
    ag_free(ml);
}

static const struct ag_link_ops mem_ops = {mem_send, mem_recv, mem_abort, mem_destroy};

static struct group *group_new(unsigned n)
{
    struct group *g = ag_calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->boxes = ag_calloc(n, sizeof(*g->boxes));
    if (!g->boxes) {
        ag_free(g);
        return NULL;
    }
    g->n = n;
    atomic_init(&g->refs, 0);
    pthread_mutex_init(&g->abort_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (unsigned i = 0; i < n; i++) {
        pthread_mutex_init(&g->boxes[i].mu, NULL);
        pthread_cond_init(&g->boxes[i].cv, &ca);
        g->boxes[i].tail = &g->boxes[i].head;
    }
    pthread_condattr_destroy(&ca);
    return g;
}

int ag_link_mem_group(unsigned n, const char *const *names, ag_link **links)
{
    if (n < 1)
        return AG_E_INVAL;
    struct group *g = group_new(n);
    if (!g)
        return AG_E_NOMEM;
    /* the group holds one reference of its own until every endpoint exists */
    atomic_store(&g->refs, 1);
    unsigned made = 0;
    int rc = 0;
    for (; made < n; made++) {
        struct mem_link *ml = ag_calloc(1, sizeof(*ml));
        if (!ml) {
            rc = AG_E_NOMEM;
            break;
        }
        rc = ag__link_init(&ml->base, &mem_ops, made, n, names);
        if (rc < 0) {
            ag_free(ml);
            break;
        }
        ml->g = g;
        atomic_fetch_add(&g->refs, 1);
        links[made] = &ml->base;
    }
    if (rc < 0)
        for (unsigned i = 0; i < made; i++) {
            ag_link_free(links[i]);
            links[i] = NULL;
        }
    group_release(g);
    return rc;
}
