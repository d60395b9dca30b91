/*
 * The console object, shared by console.c (state, peers, jobs) and api.c
 * (the page and the JSON API). Every member below `mu` is guarded by it.
 */
#ifndef ARGOT_CONSOLE_CONSOLE_INT_H
#define ARGOT_CONSOLE_CONSOLE_INT_H

#include <openssl/crypto.h>
#include <pthread.h>

#include "argot/console.h"
#include "argot/rpc.h"
#include "internal.h"

/* A message waiting for the sender thread. */
struct outmsg {
    struct outmsg *next;
    int to;                      /* the party's rank */
    char *text;                  /* JSON (ag_free) */
    char id[AG__CONSOLE_ID_MAX]; /* its job ("" for none): failed when it cannot leave */
    uint64_t next_try_ms;        /* monotonic: not sent before */
    uint64_t give_up_ms;         /* monotonic: an unreachable peer fails the job from then */
};

/* What the last ping of a peer console said. */
struct peer_state {
    bool checked;   /* pinged at least once */
    bool up;
    double rtt_ms;  /* round trip of the last ping, ms */
    char why[300];  /* why it is down */
};

struct ag_console {
    ag_cluster cl;
    int me;                                 /* this party's rank */
    char config[AG__CONSOLE_PATH_MAX];
    char db[AG__CONSOLE_PATH_MAX];
    char workdir[AG__CONSOLE_PATH_MAX];
    char exe[AG__CONSOLE_PATH_MAX];
    char listen[256];
    char token[80];                         /* secret: never logged */
    char mesh_admin[256];                   /* "" without a gateway view */
    char rm[256];                           /* "" without a resource manager view */
    ag_rm_client *rm_chan; /* --rm (ag_rm_client: the RMs, TLS) */
    uint64_t ping_ms;
    ag_errbuf err;
    ag_admin *admin;
    ag_rpc_server *srv;
    ag_rpc_channel *chans[AG_CLUSTER_MAX_PARTIES]; /* NULL for this party */
    pthread_t sender;
    bool sender_started;
    ag__history *hist;
    pthread_mutex_t mu;
    pthread_cond_t cv;                      /* the queue grew; stopping; a waiter ended */
    bool stopping;
    struct outmsg *queue, **qtail;
    struct peer_state peers[AG_CLUSTER_MAX_PARTIES];
    ag__job *jobs;                          /* oldest first */
    json_t *mesh_state;                     /* the gateway's, as ag__console_mesh_parse
                                             * gives it; NULL before the first read */
    char mesh_why[AG_ERRMSG_MAX];           /* why the last read failed ("" if it did not) */
    int64_t mesh_at_ms;                     /* wall clock of the last good read */
    json_t *rm_state;                       /* the RM's (ag__console_rm_read), or NULL */
    char rm_why[AG_ERRMSG_MAX];             /* why the last RM read failed */
    int running;                            /* waiter threads alive */
};

/* Under mu, all of them. */
ag__job *ag__console_find(ag_console *c, const char *id);
int ag__console_rank_in(const ag__job *j, const char *party);
void ag__console_add(ag_console *c, ag__job *j);
void ag__console_end(ag_console *c, ag__job *j, ag__job_state s, const char *why);
void ag__console_send(ag_console *c, int to, const ag__console_msg *m);
void ag__console_decided(ag_console *c, ag__job *j, int p, bool approve);
void ag__console_run(ag_console *c, ag__job *j);

/* A job's progress lines, from its --progress-json file: an LR training's
 * epochs so far ({epoch, epochs, loss, seconds, bytes_sent}), a PSI's
 * {rows, rows_total, bucket, buckets, seconds}; an array, of the last line
 * alone with last_only, or NULL. */
json_t *ag__console_progress(const ag_console *c, const ag__job *j, bool last_only);

/* api.c: adds the routes and starts the page's server at c->listen. */
int ag__console_api_start(ag_console *c);

#endif /* ARGOT_CONSOLE_CONSOLE_INT_H */
