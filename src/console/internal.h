/*
 * What the console's files share: the forms of the JSON API and the peer
 * consoles' messages (form.c), the gateway's state (infra.c) -- the three
 * parsers of untrusted bytes, each with a fuzz target -- the job record,
 * the history store (history.c), a prediction's evaluation (eval.c) and the
 * embedded page (assets, generated at build time from src/console/assets
 * by tools/embed_assets.c).
 */
#ifndef ARGOT_CONSOLE_INTERNAL_H
#define ARGOT_CONSOLE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "argot/base.h"
#include "argot/fed.h"
#include "argot/sched.h"

/* A request body or a peer message larger than this is refused. */
#define AG__CONSOLE_MAX_BODY (64u << 10)
#define AG__CONSOLE_ID_MAX 64
#define AG__CONSOLE_PATH_MAX 1024
#define AG__CONSOLE_KEYS_MAX 512

/* ---- forms of the JSON API (form.c) ---- */

/* A job proposal from this party's analyst (POST /api/jobs), or the
 * approval of another party's proposal (POST /api/decide: id, approve,
 * and this party's input, keys, output). Strings are copied in. */
/* A logistic regression's training parameters (kind "lr-train"), common
 * to every party of the job. */
typedef struct ag__lr_params {
    char label[96];                     /* "party:column" */
    int64_t epochs;                     /* 1..1000 */
    int64_t batch_size;                 /* 1..1000000 */
    double learning_rate;               /* (0, 10] */
} ag__lr_params;

/* Joint statistics' parameters (kind "stats"), common to every party. */
typedef struct ag__stats_params {
    char stats[128];                    /* argot stats --stats: count,sum,... or all */
    char reveal_to[128];                /* "all" or comma-separated parties */
} ag__stats_params;

typedef struct ag__console_form {
    char kind[16];                      /* "psi", "lr-train", "lr-predict" or "stats" */
    char id[AG__CONSOLE_ID_MAX];        /* decide: the job */
    bool approve;                       /* decide */
    char input[AG__CONSOLE_PATH_MAX];   /* this party's CSV */
    char keys[AG__CONSOLE_KEYS_MAX];    /* comma-separated columns */
    char output[AG__CONSOLE_PATH_MAX];  /* "" for none */
    char model[AG__CONSOLE_PATH_MAX];   /* lr-predict: this party's model file */
    char receiver[32];                  /* psi: a party or "both" */
    char join[16];                      /* psi: inner, left, right, full, difference */
    ag__lr_params lr;                   /* lr-train; lr-predict: its label only */
    ag__stats_params st;                /* stats */
} ag__console_form;

/* Parses a form body. Field errors go into errors (a JSON object, field
 * name to message: {"keys": "..."}); an unreadable body gives the field
 * "form". decide: the approval form. Returns 0 when errors stayed empty,
 * AG_E_INVAL otherwise (AG_E_NOMEM on allocation failure). Checks syntax
 * only: names of parties, joins, lengths, characters. */
int ag__console_form_parse(const void *body, size_t len, bool decide, const ag_cluster *cl,
                           ag__console_form *f, json_t *errors);
/* Checks a form against this party's files: the input exists and is a CSV
 * whose header has every key column ("column 'idd' is not in alice.csv")
 * and, when label_col is not NULL (this party holds the label), that
 * column; the output's directory exists and the output is not the input;
 * a model file (lr-predict) exists. Adds to errors; returns as
 * ag__console_form_parse. */
int ag__console_form_check_files(const ag__console_form *f, const char *label_col,
                                 json_t *errors);
/* The checks that depend on the job's kind and this party's role (me):
 * lr-train needs an output (the model file); lr-predict a model, and an
 * output (the scores) at the label party and none elsewhere. Adds to
 * errors; returns as ag__console_form_parse. */
int ag__console_form_check_role(const ag__console_form *f, const char *kind, const char *label,
                                const char *me, json_t *errors);
/* The column of an lr-train label "party:column" if party is me, else NULL
 * (pointing into label). */
const char *ag__console_label_col(const char *label, const char *me);

/* ---- messages between consoles (form.c) ---- */

typedef enum ag__console_msg_type {
    AG__MSG_PING,
    AG__MSG_PROPOSE, /* the proposer to every other party: kind, parties, params */
    AG__MSG_DECIDE,  /* a party to the proposer: approve or decline */
    AG__MSG_START,   /* the proposer to every party, once all approved */
} ag__console_msg_type;

typedef struct ag__console_msg {
    ag__console_msg_type type;
    char from[32];                 /* the sending party, as it says */
    char id[AG__CONSOLE_ID_MAX];
    char kind[16];
    bool approve;
    char keys[AG__CONSOLE_KEYS_MAX]; /* propose: the proposer's key columns */
    char receiver[32];               /* propose, psi */
    char join[16];                   /* propose, psi */
    ag__lr_params lr;                /* propose, lr-train */
    ag__stats_params st;             /* propose, stats */
} ag__console_msg;

/* Parses a peer console's message: 0, or AG_E_INVAL with err saying what is
 * wrong. Party names are checked against cl. */
int ag__console_msg_parse(const void *data, size_t len, const ag_cluster *cl,
                          ag__console_msg *m, ag_errbuf *err);
/* The message as JSON text (ag_free), or NULL on allocation failure. */
char *ag__console_msg_encode(const ag__console_msg *m);

/* A job id: 1..63 of [A-Za-z0-9_-]. */
bool ag__console_id_valid(const char *id);

/* ---- jobs ---- */

typedef enum ag__job_state {
    AG__JOB_PROPOSED,    /* waiting for approvals */
    AG__JOB_DECLINED,    /* a party declined */
    AG__JOB_RUNNING,     /* this party's process runs */
    AG__JOB_DONE,
    AG__JOB_FAILED,
    AG__JOB_INTERRUPTED, /* the console stopped while it ran */
} ag__job_state;

const char *ag__job_state_name(ag__job_state s);
/* The state named s, or -1. */
int ag__job_state_parse(const char *s);

typedef struct ag__job {
    struct ag__job *next;
    char id[AG__CONSOLE_ID_MAX];
    char kind[16];
    char proposer[32];
    int nparties;
    char parties[AG_CLUSTER_MAX_PARTIES][32];
    int decision[AG_CLUSTER_MAX_PARTIES]; /* 0 undecided, 1 approved, -1 declined */
    char keys[AG__CONSOLE_KEYS_MAX];      /* the proposer's key columns */
    char receiver[32];
    char join[16];
    ag__lr_params lr;
    ag__stats_params st;
    /* this party's own, never sent to a peer: */
    bool mine_set;                        /* this party's analyst approved with these */
    char input[AG__CONSOLE_PATH_MAX];
    char my_keys[AG__CONSOLE_KEYS_MAX];
    char output[AG__CONSOLE_PATH_MAX];
    char model[AG__CONSOLE_PATH_MAX];     /* lr-predict */
    ag__job_state state;
    int64_t created_ms;                   /* wall clock, ms since the epoch */
    int64_t started_ms;
    int64_t finished_ms;
    pid_t pid;                            /* while running */
    json_t *result;                       /* the app's report (done), or NULL */
    char error[512];                      /* failed, declined: why */
} ag__job;

/* ---- history (history.c) ---- */

typedef struct ag__history ag__history;

/* Opens (creating) the SQLite file. NULL with err saying why. */
ag__history *ag__history_open(const char *path, ag_errbuf *err);
void ag__history_close(ag__history *h);
/* Writes the job's record (insert or replace). 0 or AG_E_IO. */
int ag__history_save(ag__history *h, const ag__job *j);
/* Reads every record, oldest first, into a list (*out, freed with
 * ag__job_free_list); jobs recorded as running become interrupted. */
int ag__history_load(ag__history *h, ag__job **out, ag_errbuf *err);
void ag__job_free_list(ag__job *j);

/* ---- evaluating a prediction (eval.c) ---- */

/* At the label party, after `lr predict`: joins the scores CSV (the key
 * columns, then score) to the input's label column (0/1) by the key
 * columns and gives {"rows", "positives", "accuracy" (score >= 0.5 read as
 * 1), "auc" (the ROC curve's area, ties counted half)} in *out. 0, or an
 * error with err naming the file and line (a score without a label, a
 * label that is not 0 or 1). */
int ag__console_evaluate(const char *input, const char *keys, const char *label_col,
                         const char *scores, json_t **out, ag_errbuf *err);

/* ---- the gateway's state (infra.c) ---- */

/* The largest gateway state response taken (ag_buf's maximum for it). */
#define AG__CONSOLE_MESH_MAX (4u << 20)

/* Parses a whole HTTP/1.x response of a gateway's /admin/state.json into
 * *out (json_decref): {"routers": [{label, protocol, requests, connections,
 * clusters: [{id, state, requests, successes, failures, success_rate,
 * p50_ms, p99_ms, endpoints: [{addr, state, requests, successes, failures,
 * ewma_ms}]}]}]}, only the members of the expected types. 0, or
 * AG_E_INVAL with err saying why. */
int ag__console_mesh_parse(const void *resp, size_t len, json_t **out, ag_errbuf *err);
/* GET path from hostport over HTTP/1.0 (2 s timeouts), the whole response
 * into out (its maximum bounds it). 0 or an error with err naming why. */
int ag__console_http_get(const char *hostport, const char *path, ag_buf *out, ag_errbuf *err);

/* The RM's nodes, applications and queues (ApplicationClient: GetClusterNodes,
 * GetApplications, GetQueueInfo; 3 s each) as {"nodes": [{node, state,
 * rack, used_mb, total_mb, used_vcores, total_vcores, containers}],
 * "applications": [{id, name, queue, user, state, progress, used_mb,
 * used_vcores}], "queues": [{name, capacity, maximum_capacity,
 * current_capacity, applications}]} into *out. 0, or an error with err
 * naming target and the status. Blocks: the sender thread calls it. */
struct ag_rpc_channel;
int ag__console_rm_read(ag_rm_client *ch, const char *target, json_t **out,
                        ag_errbuf *err);

/* ---- the embedded page ---- */

typedef struct ag__console_asset {
    const char *path;          /* "/app.js" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} ag__console_asset;

extern const ag__console_asset ag__console_assets[];
extern const size_t ag__console_nassets;

#endif /* ARGOT_CONSOLE_INTERNAL_H */
