/*
 * The resource manager's core (scheduler.c): every piece of RM state and
 * every decision, with no I/O and no clock of its own (callers pass now_ms:
 * milliseconds since the RM started, i.e. since conf.cluster_timestamp, on
 * a clock that never goes back; times in messages since the epoch are
 * cluster_timestamp + now_ms),
 * so that tests, the simulator of bench/sched and fuzzers drive it directly.
 * rm.c puts it behind the gRPC services of sched.proto; the core takes
 * those services' request messages and fills their response messages.
 *
 * Semantics are YARN's (capacity scheduler, AMS protocol, resource tracker):
 *   - Queues: a tree under "root"; each queue has a capacity (percent of its
 *     parent's), a maximum capacity (percent of its parent's, >= capacity),
 *     and leaves a user limit factor (a user may use up to factor x the
 *     leaf's capacity) and a maximum AM share (fraction of the leaf's
 *     resources that AM containers may take). Children's capacities sum to
 *     100 per parent. Applications go to leaves; FIFO within a leaf (by
 *     application priority, higher first as in YARN, then submission
 *     order); across leaves, the least used relative to its capacity
 *     first, never past a queue's maximum. Room freed by ending containers
 *     is offered in that order before the next allocate schedules its own
 *     caller, so a later application does not overtake a waiting earlier
 *     one by calling allocate first. A config entry "root" may only set
 *     root's labels.
 *   - Asks: totals per (priority, resource_name, capability,
 *     allocation_request_id) replace the previous total for that key; a
 *     grant lowers the totals of the key's node, its rack and "*" (as YARN
 *     decrements all three levels). "*" carries the outstanding total;
 *     host and rack asks only say where. Locality: a node-local ask waits
 *     node_locality_delay missed opportunities before it may go rack-local,
 *     rack_locality_delay before off-switch (one counter per key: a
 *     scheduling pass that could not place it node-locally, i.e. an
 *     allocate call or a heartbeat of another node with room, is a miss;
 *     a node-local grant resets it). relax_locality is YARN's per level: a
 *     rack ask with it false is never used for rack-local grants, a "*"
 *     ask with it false forbids off-switch grants (so node asks + "*"
 *     relax false pins to those nodes). A key with no host or rack asks is
 *     placed anywhere at once. (proto3's default is false: AMs that want
 *     relaxation must set it.)
 *     Capabilities are normalized up to multiples of the minimum allocation;
 *     asks beyond the maximum are refused (INVALID_ARGUMENT).
 *   - Allocation does not wait for heartbeats: every allocate call schedules
 *     the caller's outstanding asks on the nodes' free resources before it
 *     answers, so an ask is granted in that very response when room exists
 *     (else by a later one). Node heartbeats (and registrations) also
 *     schedule, any application, on the beating node: waiting AMs first,
 *     then leaves least used relative to their capacity.
 *   - Limits: a leaf never exceeds its maximum capacity (nor do its
 *     ancestors); it grows past its capacity only while no other leaf with
 *     waiting asks could still take a container within its own capacity. A
 *     user of a leaf may hold up to user_limit_factor x the leaf's capacity
 *     (its first container always). AM containers of a leaf up to
 *     max_am_share x its capacity (its first AM always); further
 *     applications wait in ACCEPTED.
 *   - responseId: an allocate whose response_id equals the last response's
 *     id minus one (a resend) gets the cached last response unchanged; one
 *     equal to the last response's id is new and gets id + 1; anything
 *     else is refused. An allocate from an attempt the RM does not know as
 *     registered is AG_SCHED_NOT_REGISTERED (the AM registers again and
 *     resends its asks).
 *   - Exclusive node labels: a node with a label only runs containers whose
 *     ask names that label; "" asks use unlabelled nodes. A queue may ask for
 *     the labels in its own (or nearest configured ancestor's) labels list
 *     ("*": any); other asks are INVALID. Capacities apply to the unlabelled
 *     partition only: labelled partitions are shared first come, first
 *     served by the queues that may use them.
 *   - Preemption (when enabled): when a queue below its capacity has pending
 *     asks that do not fit, containers of queues above their capacity are
 *     chosen (youngest first, never AM containers), named to their AM in a
 *     PreemptionMessage (strict and negotiable contracts), and killed
 *     preemption_wait_ms later if not released (exit status -102).
 *   - Expiry (ag_sched_tick): a node silent for nm_expiry_ms is LOST, its
 *     containers completed with -100 and reported to their AMs; an attempt
 *     silent for am_expiry_ms fails; a failed attempt gets a new one (up to
 *     max attempts), keeping its containers when the submission asked.
 *   - Containers: ids from 1 per application (the first AM's is 1; after an
 *     RM restart, a recovered application's new ones from the floor in its
 *     ag_sched_recovery, past every earlier id); each grant
 *     carries a container token signed with the current container master
 *     key (token.h); an AM's launch context gets the environment
 *     ARGOT_APP_ID, ARGOT_CONTAINER_ID, ARGOT_NM_HOST and ARGOT_AMRM_TOKEN.
 *
 * Ids as text (for logs, CLI and environment): application_<ts>_<id, 4 digits>,
 * appattempt_<ts>_<id, 4 digits>_<attempt, 6 digits>,
 * container_<ts>_<id, 4 digits>_<attempt, 2 digits>_<container, 6 digits>.
 *
 * Messages: requests are borrowed; responses are filled by the core, every
 * sub-object and string allocated with ag_malloc, so the caller frees a
 * heap response with ag_rpc_msg_free (protobuf-c's free_unpacked with
 * argot's allocator) and one it holds by value with ag_sched_resp_clear.
 * Functions return an AG_SCHED_* status (a gRPC code) and, on refusal, a
 * sentence in err that names the thing refused. Out of memory is
 * AG_SCHED_EXHAUSTED ("out of memory") with the response left empty; the
 * call may be retried as is (an allocate's grants and completions stay
 * pending until a response carrying them has been built).
 *
 * Tokens: container tokens and AMRM tokens as in sched.proto. An NM token's
 * identifier is a ContainerTokenIdentifier with container id 0 (naming the
 * attempt), the node, the submitter and an expiry (key_roll_interval_ms
 * after issue), signed with the NM-token master key. An attempt gets one
 * per node with its first container there (allocate's nm_tokens, or
 * register's nm_tokens_from_previous_attempts), and fresh ones for every
 * node it has containers on once half that life has passed. Keys are
 * drawn at ag_sched_new (key id 1); a restarted RM puts back its earlier
 * keys with ag_sched_import_keys.
 *
 * Recovery (YARN's work-preserving RM restart): the core keeps no state of
 * its own on disk; rm.c persists what ag_sched_export_keys,
 * ag_sched_last_app_id and ag_sched_get_app_state (read when
 * ag_sched_changes moves) tell it, and a new
 * core built with the same cluster_timestamp takes it back with
 * ag_sched_import_keys, ag_sched_set_last_app_id and ag_sched_recover_app.
 * A recovered attempt waits for its AM to register again (its allocate is
 * NOT_REGISTERED until then; no new AM container is started while it may
 * be alive, am_expiry_ms gives up on it as for any silent AM); nodes that
 * re-register report their containers, which are adopted (the recovered
 * attempt's AM container as its AM container), and completions reported
 * at registration reach the AM.
 * Grants not yet running are logged for the store (track_grants,
 * ag_sched_grant_changes) and put back with ag_sched_recover_grant: they
 * become granted containers again when their nodes register.
 *
 * Heartbeats: the response's response_id is the request's + 1; the core
 * does not refuse out-of-order heartbeats (statuses are idempotent).
 *
 * Thread safety: none; rm.c serializes calls with one mutex.
 */
#ifndef ARGOT_SCHED_SCHEDULER_H
#define ARGOT_SCHED_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "argot/sched/v1/sched.pb-c.h"
#include "token.h"

typedef struct ag_sched ag_sched;

/* Status codes: gRPC's. */
enum {
    AG_SCHED_OK = 0,
    AG_SCHED_INVALID = 3,           /* INVALID_ARGUMENT */
    AG_SCHED_NOT_FOUND = 5,
    AG_SCHED_EXISTS = 6,            /* ALREADY_EXISTS */
    AG_SCHED_DENIED = 7,            /* PERMISSION_DENIED */
    AG_SCHED_EXHAUSTED = 8,         /* RESOURCE_EXHAUSTED */
    AG_SCHED_NOT_REGISTERED = 9,    /* FAILED_PRECONDITION: "ApplicationMasterNotRegistered" */
};

typedef struct ag_sched_queue_conf {
    const char *path;            /* "root.a.b" (root itself may be omitted) */
    double capacity;             /* percent of the parent's */
    double max_capacity;         /* percent of the parent's (0: 100) */
    double user_limit_factor;    /* leaves (0: 1) */
    double max_am_share;         /* leaves: fraction 0..1 (0: 0.1) */
    const char *labels;          /* node labels it may use, comma-separated ("" none) */
} ag_sched_queue_conf;

typedef struct ag_sched_conf {
    int64_t cluster_timestamp;   /* ms since the epoch: the RM's start */
    const ag_sched_queue_conf *queues;
    size_t nqueues;              /* 0: one leaf, root.default, 100% */
    int64_t min_alloc_mb;        /* 0: 1024 */
    int32_t min_alloc_vcores;    /* 0: 1 */
    int64_t max_alloc_mb;        /* 0: 8192 */
    int32_t max_alloc_vcores;    /* 0: 4 */
    int node_locality_delay;     /* missed opportunities (0: 40; -1: none) */
    int rack_locality_delay;     /* (0: 80; -1: none) */
    int max_app_attempts;        /* 0: 2 */
    uint64_t nm_expiry_ms;       /* 0: 600000 */
    uint64_t am_expiry_ms;       /* 0: 600000 */
    uint64_t heartbeat_interval_ms; /* told to NMs (0: 1000) */
    bool preemption;
    uint64_t preemption_wait_ms; /* 0: 15000 */
    uint64_t container_token_expiry_ms; /* 0: 600000 */
    /* An allocated container its NM has not reported running (nor
     * complete) this long after the grant is taken back: its resources
     * freed, its AM told through completed containers (exit -100,
     * "container expired...", YARN's ContainerAllocationExpirer).
     * 0: 600000. */
    uint64_t container_alloc_expiry_ms;
    /* The master keys' life: a new key every interval (YARN's
     * key-update interval, 0: 86400000 = 24 h). NM tokens expire this long
     * after they are issued, and the NMs keep the previous key, so that a
     * token stays verifiable until it expires. */
    uint64_t key_roll_interval_ms;
    /* Log grants for ag_sched_grant_changes (rm.c's state store); off: no
     * log is kept (nothing drains it). */
    bool track_grants;
} ag_sched_conf;

/* NULL with err set for a bad queue tree ("queue root.a: capacities of its
 * children sum to 90, not 100") or no memory. */
ag_sched *ag_sched_new(const ag_sched_conf *c, char *err, size_t cap);
void ag_sched_free(ag_sched *s);

/* ---- ApplicationClient ---- */
int ag_sched_new_application(ag_sched *s, uint64_t now_ms,
                             Argot__Sched__V1__GetNewApplicationResponse *resp, char *err,
                             size_t cap);
/* Accepts the application into its leaf queue (NOT_FOUND for an unknown
 * queue, INVALID for a bad AM resource or an id not handed out, EXISTS for
 * a second submission); unmanaged AMs get their attempt at once (its AMRM
 * token in the report). */
int ag_sched_submit(ag_sched *s, const Argot__Sched__V1__ApplicationSubmissionContext *ctx,
                    uint64_t now_ms, char *err, size_t cap);
int ag_sched_app_report(ag_sched *s, const Argot__Sched__V1__ApplicationId *id,
                        Argot__Sched__V1__ApplicationReport **out, char *err, size_t cap);
int ag_sched_apps(ag_sched *s, const Argot__Sched__V1__GetApplicationsRequest *req,
                  Argot__Sched__V1__GetApplicationsResponse *resp);
/* Kills the application: its containers are cleaned up at their nodes'
 * next heartbeats, its AM told AM_SHUTDOWN (ag_sched_amrm_check still
 * accepts the killed attempt's token so that its allocate hears it).
 * Killing an application that has ended is OK and does nothing. */
int ag_sched_kill(ag_sched *s, const Argot__Sched__V1__ApplicationId *id, const char *why,
                  uint64_t now_ms, char *err, size_t cap);
int ag_sched_nodes(ag_sched *s, const Argot__Sched__V1__GetClusterNodesRequest *req,
                   Argot__Sched__V1__GetClusterNodesResponse *resp);
int ag_sched_metrics(ag_sched *s, Argot__Sched__V1__GetClusterMetricsResponse *resp);
int ag_sched_queue_info(ag_sched *s, const Argot__Sched__V1__GetQueueInfoRequest *req,
                        Argot__Sched__V1__GetQueueInfoResponse *resp, char *err, size_t cap);

/* ---- ApplicationMaster (attempt: from the caller's verified AMRM token) ---- */
/* The attempt of a valid AMRM token (identifier and password as sent);
 * DENIED otherwise (forged, another RM's key, an attempt that has ended). */
int ag_sched_amrm_check(ag_sched *s, const uint8_t *id, size_t idlen, const uint8_t *pw,
                        size_t pwlen, Argot__Sched__V1__ApplicationAttemptId **attempt,
                        char *err, size_t cap);
int ag_sched_register_am(ag_sched *s, const Argot__Sched__V1__ApplicationAttemptId *attempt,
                         const Argot__Sched__V1__RegisterApplicationMasterRequest *req,
                         uint64_t now_ms,
                         Argot__Sched__V1__RegisterApplicationMasterResponse *resp, char *err,
                         size_t cap);
int ag_sched_allocate(ag_sched *s, const Argot__Sched__V1__ApplicationAttemptId *attempt,
                      const Argot__Sched__V1__AllocateRequest *req, uint64_t now_ms,
                      Argot__Sched__V1__AllocateResponse *resp, char *err, size_t cap);
int ag_sched_finish_am(ag_sched *s, const Argot__Sched__V1__ApplicationAttemptId *attempt,
                       const Argot__Sched__V1__FinishApplicationMasterRequest *req,
                       uint64_t now_ms, Argot__Sched__V1__FinishApplicationMasterResponse *resp,
                       char *err, size_t cap);
/* (finish: the application is FINISHED with the AM's final status; its
 * other containers are cleaned up, its AM container is left to exit and
 * ends when its NM reports it, or its node is lost.) */

/* ---- ResourceTracker ---- */
/* A node (re)registers: its running containers are taken back (work-
 * preserving restart: containers the RM does not know are adopted for
 * applications it knows, else cleaned up). */
int ag_sched_register_node(ag_sched *s, const Argot__Sched__V1__RegisterNodeManagerRequest *req,
                           uint64_t now_ms,
                           Argot__Sched__V1__RegisterNodeManagerResponse *resp, char *err,
                           size_t cap);
/* A heartbeat: container statuses (completions go to their AMs), keys,
 * then scheduling on this node. An unknown node gets RESYNC. */
int ag_sched_node_heartbeat(ag_sched *s, const Argot__Sched__V1__NodeHeartbeatRequest *req,
                            uint64_t now_ms, Argot__Sched__V1__NodeHeartbeatResponse *resp,
                            char *err, size_t cap);

/* ---- time and the AM launcher ---- */
/* Master-key rolls, expiry of nodes, unlaunched containers and attempts,
 * preemption (marks and kills), retries of attempts, AM containers for
 * waiting applications. rm.c calls it about every 100 ms.
 *
 * Key rolls (YARN's): every key_roll_interval_ms the next container and
 * NM-token keys are drawn and go to the NMs in heartbeat responses (a
 * registration gets the signing ones); a quarter of the roll interval
 * later they sign, the keys they replace
 * stay accepted as the previous ones (by the NMs too, which keep two), the
 * AMRM key rolls at the same time (each attempt's next allocate carries
 * its new token in am_rm_token; the previous key is accepted until the
 * roll after) and each attempt's NM tokens are renewed at its next
 * allocate. */
void ag_sched_tick(ag_sched *s, uint64_t now_ms);

/* An AM container to start: rm.c calls the node's StartContainers with it
 * (the launch context already holds the AM's environment). */
typedef struct ag_sched_am_launch {
    Argot__Sched__V1__NodeId *node;
    Argot__Sched__V1__StartContainersRequest *request;
    Argot__Sched__V1__ContainerId *container;
} ag_sched_am_launch;

/* Moves the pending AM launches into *out (n of them; free each part with
 * ag_rpc_msg_free and the array with ag_free; *out is NULL when n is 0).
 * 0, or AG_E_NOMEM with every launch still pending. */
int ag_sched_take_am_launches(ag_sched *s, ag_sched_am_launch **out, size_t *n);
/* The NM token (token.h's text form, for the metadata key "argot-nm-token")
 * that lets the RM start the AM container c on its node: the token of c's
 * attempt for that node, as an AM would hold it. 0, AG_SCHED_NOT_FOUND (no
 * such live container) or AG_SCHED_EXHAUSTED. text is a secret: wipe it. */
int ag_sched_nm_token_text(ag_sched *s, const Argot__Sched__V1__ContainerId *c, uint64_t now_ms,
                           char *text, size_t cap);
/* The start failed (node unreachable, refused): the attempt fails with why. */
void ag_sched_am_launch_failed(ag_sched *s, const Argot__Sched__V1__ContainerId *container,
                               const char *why, uint64_t now_ms);

/* ---- recovery (rm.c's state store) ---- */
/* The master keys: what the RM persists so that tokens it signed before a
 * restart stay valid (secret: wipe copies after use). */
typedef struct ag_sched_keys {
    ag_sched_key container; /* container-token master key (signing) */
    ag_sched_key nm;        /* NM-token master key */
    ag_sched_key amrm;      /* AMRM-token master key */
    ag_sched_key prev_container; /* the keys they replaced, still accepted (id 0: none) */
    ag_sched_key prev_nm;
    ag_sched_key prev_amrm;
    ag_sched_key next_container; /* drawn and sent to the NMs, not yet signing */
    ag_sched_key next_nm;        /* (id 0: none) */
} ag_sched_keys;

void ag_sched_export_keys(const ag_sched *s, ag_sched_keys *out);
/* Replaces the keys drawn at ag_sched_new (before any node registers); the
 * roll interval counts from the next tick. */
void ag_sched_import_keys(ag_sched *s, const ag_sched_keys *k);
/* A counter that moves whenever the keys change (drawn, or made the
 * signing ones by ag_sched_tick's roll): rm.c persists them then. */
uint64_t ag_sched_key_changes(const ag_sched *s);
/* The last application id handed out (0: none). */
int32_t ag_sched_last_app_id(const ag_sched *s);
/* Ids up to id count as handed out (never lowers the counter). */
void ag_sched_set_last_app_id(ag_sched *s, int32_t id);

/* What the store knows of an unfinished application's current attempt. */
typedef struct ag_sched_recovery {
    int32_t attempt;        /* the current attempt's id (>= 1) */
    bool attempt_ended;     /* it had ended: the next one starts */
    int64_t am_container;   /* its AM container's id (0: none placed yet) */
    bool registered;        /* its AM had registered (the report said RUNNING) */
    int64_t start_ms;       /* submission, ms since the epoch (0: now) */
    int64_t next_container; /* ids of new containers start at least here (0: 1) */
} ag_sched_recovery;

/* Puts back an application submitted to an earlier run of this RM (same
 * cluster_timestamp): into its queue as at submission, its attempt
 * r->attempt waiting for its AM to register again (managed: only when
 * r->am_container is set; without one, the attempt waits for an AM
 * container as a new one does). The application id counts as handed out.
 * INVALID (another RM's id, bad attempt), EXISTS, NOT_FOUND (queue gone),
 * EXHAUSTED; err says which. */
int ag_sched_recover_app(ag_sched *s, const Argot__Sched__V1__ApplicationSubmissionContext *ctx,
                         const ag_sched_recovery *r, uint64_t now_ms, char *err, size_t cap);

/* An application's state as the store keeps it; rm.c polls it (under its
 * lock) to write what changed: new attempt, attempt end, AM container
 * placed, application end. */
typedef struct ag_sched_app_state {
    int state;            /* YarnApplicationState */
    int32_t attempt;      /* current attempt */
    bool attempt_ended;   /* current attempt has ended (so has the application) */
    int64_t am_container; /* current attempt's AM container id (0: none yet) */
} ag_sched_app_state;

/* 0, or AG_SCHED_NOT_FOUND for an id this core does not hold. */
int ag_sched_get_app_state(const ag_sched *s, int32_t app_id, ag_sched_app_state *out);
/* The change notification: a counter that goes up whenever some
 * application's ag_sched_app_state changes (submission, recovery, new
 * attempt, AM container placed, registration, attempt end, application
 * end). rm.c compares it after each call to sync its store. */
uint64_t ag_sched_changes(const ag_sched *s);

/* A grant not yet reported running (nor complete) by its node: what the
 * store keeps so that a restarted RM still knows it (YARN forgets them). */
typedef struct ag_sched_grant {
    int32_t app_id;
    int32_t attempt;
    int64_t container; /* its id within the application */
    const char *host;  /* its node */
    int32_t port;
    int64_t memory_mb;
    int32_t vcores;
    int32_t priority;
    int64_t allocation_request_id;
} ag_sched_grant;

/* With conf.track_grants, calls fn for every change of the set of grants
 * not yet running since the last call, in order: added (g complete), or
 * removed (only app_id and container set: it runs, ended, or was dropped).
 * After an allocation failure in the log, fn is called first with g NULL
 * (forget every grant) and then once per grant of the set. Non-AM
 * containers only (AM containers are the attempts'). */
void ag_sched_grant_changes(ag_sched *s, void (*fn)(void *ud, bool added, const ag_sched_grant *g),
                            void *ud);
/* Puts back a grant of a recovered application (after ag_sched_recover_app)
 * that the store had: when its node registers and does not report it, it is
 * a granted container again (its resources taken, the AM hears of its end,
 * a later report of it running is accepted); if the node reports it, the
 * node's report wins. A node that does not register within
 * container_alloc_expiry_ms of now drops it, and the AM hears it as
 * expired (-100). INVALID for an application or attempt that cannot have
 * it (the caller deletes it), EXHAUSTED. */
int ag_sched_recover_grant(ag_sched *s, const ag_sched_grant *g, uint64_t now_ms, char *err,
                           size_t cap);

/* ---- responses ---- */
/* Frees every field of a response message the caller holds by value (on its
 * stack, initialized with its INIT macro, filled by a function above) and
 * re-initializes it: sub-messages, strings, bytes and repeated arrays are
 * freed with argot's allocator, protobuf-c's shared empty string and
 * default values are left alone. For a heap message use ag_rpc_msg_free.
 * ag_sched_resp_clear(NULL) does nothing. */
void ag_sched_resp_clear(ProtobufCMessage *m);

/* Checks the core's invariants (container, node, application, queue and
 * partition accounting; the free-node index; outstanding asks): 0, or -1
 * with err saying which broke. For tests: it walks everything. */
int ag__sched_check(const ag_sched *s, char *err, size_t cap);

/* ---- ids ---- */
/* "application_1700000000000_0001" etc. into buf; returns buf. */
const char *ag_sched_app_id_str(const Argot__Sched__V1__ApplicationId *id, char *buf,
                                size_t cap);
const char *ag_sched_container_id_str(const Argot__Sched__V1__ContainerId *id, char *buf,
                                      size_t cap);

#endif
