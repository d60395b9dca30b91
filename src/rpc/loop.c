/*
 * Event-loop threads: a libuv loop on a thread of its own, with a task
 * queue that any thread can post to (an async handle wakes the loop, which
 * runs the tasks in order). This is the one way work crosses into a loop:
 * the application's calls post their operations here, so every nghttp2
 * session and libuv handle is touched only by its loop's thread, or by the
 * application thread a lendable loop (a channel's) is lent to while it
 * waits for its call (ag__loop_drive): one at a time, under `drive`.
 *
 * Stopping: the owner first posts tasks that close its handles; then
 * ag__loop_stop queues a final step that closes the async handle, uv_run
 * returns once nothing is open, and the thread is joined.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "rt.h"

/* A peer that closes its socket while we write must cost us an EPIPE, not
 * the process: ignore SIGPIPE (as gRPC's C core does at init), once, and
 * only if the program left it at its default. */
static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;

static void ignore_sigpipe(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
        struct sigaction ign;
        memset(&ign, 0, sizeof(ign));
        ign.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &ign, NULL);
    }
}

static void run_tasks(uv_async_t *a)
{
    ag__loop *l = a->data;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        ag__task *t = l->head;
        if (t) {
            l->head = t->next;
            if (!l->head)
                l->tail = NULL;
        }
        bool stop = !t && l->stop;
        pthread_mutex_unlock(&l->mu);
        if (!t) {
            if (stop && !uv_is_closing((uv_handle_t *)&l->wake))
                uv_close((uv_handle_t *)&l->wake, NULL);
            return;
        }
        t->fn(t->arg);
        ag_free(t);
    }
}

int ag__loop_init(ag__loop *l)
{
    pthread_once(&sigpipe_once, ignore_sigpipe);
    memset(l, 0, sizeof(*l));
    if (uv_loop_init(&l->uv) != 0)
        return AG_E_SYS;
    if (uv_async_init(&l->uv, &l->wake, run_tasks) != 0) {
        uv_loop_close(&l->uv);
        return AG_E_SYS;
    }
    l->wake.data = l;
    pthread_mutex_init(&l->mu, NULL);
    return 0;
}

void ag__loop_set_lendable(ag__loop *l)
{
    l->lendable = true;
    pthread_mutex_init(&l->drive, NULL);
    pthread_cond_init(&l->lent_cv, NULL);
}

/* A lendable loop's thread: runs what is ready while holding `drive`, then
 * waits for the next event without it (poll on libuv's backend fd, until
 * the next timer), so that an application thread can take the loop in
 * between; while one does, this thread sleeps until it is given back. */
static void lendable_main(ag__loop *l)
{
    for (;;) {
        pthread_mutex_lock(&l->mu);
        while (l->lent)
            pthread_cond_wait(&l->lent_cv, &l->mu);
        pthread_mutex_unlock(&l->mu);
        pthread_mutex_lock(&l->drive);
        int alive = uv_run(&l->uv, UV_RUN_NOWAIT);
        int timeout = uv_backend_timeout(&l->uv);
        uint64_t until = timeout < 0 ? UINT64_MAX : uv_now(&l->uv) + (uint64_t)timeout;
        pthread_mutex_unlock(&l->drive);
        if (!alive)
            return;
        pthread_mutex_lock(&l->mu);
        l->poll_until = until;
        pthread_mutex_unlock(&l->mu);
        struct pollfd p = {.fd = uv_backend_fd(&l->uv), .events = POLLIN};
        poll(&p, 1, timeout);
    }
}

bool ag__loop_drive(ag__loop *l, void (*prep)(void *), bool (*done)(void *), void *arg)
{
    if (!l->lendable)
        return false;
    pthread_mutex_lock(&l->mu);
    bool mine = !l->lent && !l->stop;
    if (mine)
        l->lent = true;
    pthread_mutex_unlock(&l->mu);
    if (!mine)
        return false;
    pthread_mutex_lock(&l->drive); /* the loop's thread holds it for a moment at most */
    run_tasks(&l->wake); /* what was posted before goes first, in order */
    if (prep)
        prep(arg);
    while (!done(arg))
        if (uv_run(&l->uv, UV_RUN_ONCE) == 0)
            break;
    int timeout = uv_backend_timeout(&l->uv);
    uint64_t next = timeout < 0 ? UINT64_MAX : uv_now(&l->uv) + (uint64_t)timeout;
    pthread_mutex_unlock(&l->drive);
    pthread_mutex_lock(&l->mu);
    l->lent = false;
    pthread_cond_signal(&l->lent_cv);
    bool sooner = next < l->poll_until;
    pthread_mutex_unlock(&l->mu);
    /* the loop's thread may be asleep until later than what this thread
     * left to do (a timer it armed): have it look again */
    if (sooner)
        uv_async_send(&l->wake);
    return true;
}

static void *loop_main(void *arg)
{
    ag__loop *l = arg;
    if (l->lendable)
        lendable_main(l);
    else
        uv_run(&l->uv, UV_RUN_DEFAULT);
    return NULL;
}

int ag__loop_start(ag__loop *l, const char *name)
{
    if (pthread_create(&l->thread, NULL, loop_main, l) != 0)
        return AG_E_SYS;
    char tn[16];
    snprintf(tn, sizeof(tn), "%.15s", name);
    pthread_setname_np(l->thread, tn);
    l->running = true;
    return 0;
}

int ag__loop_post(ag__loop *l, ag__task_fn fn, void *arg)
{
    ag__task *t = ag_malloc(sizeof(*t));
    if (!t)
        return AG_E_NOMEM;
    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->stop) {
        pthread_mutex_unlock(&l->mu);
        ag_free(t);
        return AG_E_CLOSED;
    }
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
    pthread_mutex_unlock(&l->mu);
    uv_async_send(&l->wake);
    return 0;
}

void ag__loop_stop(ag__loop *l)
{
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_mutex_unlock(&l->mu);
    uv_async_send(&l->wake);
    if (l->running)
        pthread_join(l->thread, NULL);
    else
        uv_run(&l->uv, UV_RUN_DEFAULT); /* never started: close what is open here */
    l->running = false;
    for (ag__task *t = l->head, *n; t; t = n) {
        n = t->next;
        ag_free(t);
    }
    uv_loop_close(&l->uv);
    pthread_mutex_destroy(&l->mu);
    if (l->lendable) {
        pthread_mutex_destroy(&l->drive);
        pthread_cond_destroy(&l->lent_cv);
    }
}
