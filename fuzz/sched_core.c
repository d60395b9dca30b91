/*
 * Fuzz target: the resource manager's core (src/sched/scheduler.c) on what
 * clients, AMs and NMs send it. The input is a sequence of calls: one byte
 * for the call, one for an argument, two bytes of length and that many
 * bytes of the protobuf request, decoded as the server does. AM calls act
 * for attempt 1 of application <argument % 8 + 1> (the cluster timestamp
 * is fixed at 1000), as if its token had checked out; ticks advance the
 * clock by <argument> x 100 ms. Every run starts with a fresh core (two
 * queues, small limits, short expiries) and applications 1 and 2 already
 * submitted. After every call the core's invariants must hold
 * (ag__sched_check) and a refusal must say why. No crash, leak or
 * undefined behaviour.
 */
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/base.h"
#include "argot/rpc.h"
#include "sched/scheduler.h"

static void must(bool ok)
{
    if (!ok)
        abort();
}

static const ag_sched_queue_conf queues[] = {
    {.path = "root.a", .capacity = 70, .max_capacity = 100},
    {.path = "root.b", .capacity = 30, .max_capacity = 50, .labels = "gpu"},
};

static ag_sched *make(void)
{
    ag_sched_conf c = {.cluster_timestamp = 1000,
                       .queues = queues,
                       .nqueues = 2,
                       .max_alloc_mb = 4096,
                       .max_alloc_vcores = 4,
                       .node_locality_delay = 2,
                       .rack_locality_delay = 4,
                       .nm_expiry_ms = 3000,
                       .am_expiry_ms = 3000,
                       .preemption = true,
                       .preemption_wait_ms = 500,
                       .container_alloc_expiry_ms = 2000,
                       .heartbeat_interval_ms = 500,
                       .key_roll_interval_ms = 20000,
                       .track_grants = true};
    char err[AG_ERRMSG_MAX];
    ag_sched *s = ag_sched_new(&c, err, sizeof(err));
    must(s != NULL);
    return s;
}

/* A store that keeps nothing: drains the grant log. */
static void grant_sink(void *ud, bool added, const ag_sched_grant *g)
{
    (void)ud;
    must(!g || !added || (g->host && g->memory_mb > 0));
}

/* Applications 1 and 2, managed AMs of 1 GB in root.a. */
static void seed_apps(ag_sched *s)
{
    char err[AG_ERRMSG_MAX];
    for (int i = 0; i < 2; i++) {
        Argot__Sched__V1__GetNewApplicationResponse nr =
            ARGOT__SCHED__V1__GET_NEW_APPLICATION_RESPONSE__INIT;
        must(ag_sched_new_application(s, 0, &nr, err, sizeof(err)) == AG_SCHED_OK);
        Argot__Sched__V1__Resource res = ARGOT__SCHED__V1__RESOURCE__INIT;
        res.memory_mb = 1024;
        res.vcores = 1;
        char *cmd[] = {"/bin/true"};
        Argot__Sched__V1__ContainerLaunchContext clc =
            ARGOT__SCHED__V1__CONTAINER_LAUNCH_CONTEXT__INIT;
        clc.n_command = 1;
        clc.command = cmd;
        Argot__Sched__V1__ApplicationSubmissionContext ctx =
            ARGOT__SCHED__V1__APPLICATION_SUBMISSION_CONTEXT__INIT;
        ctx.application_id = nr.application_id;
        ctx.queue = "a";
        ctx.application_name = "fuzz";
        ctx.resource = &res;
        ctx.am_container_spec = &clc;
        must(ag_sched_submit(s, &ctx, 0, err, sizeof(err)) == AG_SCHED_OK);
        ag_sched_resp_clear(&nr.base);
    }
}

/* The core's view of a decoded request, the response on the stack. */
#define CALL(T, t, fn, ...)                                                                   \
    do {                                                                                     \
        Argot__Sched__V1__##T *q = argot__sched__v1__##t##__unpack(NULL, len, msg);           \
        if (!q)                                                                              \
            break;                                                                           \
        st = fn(s, q, __VA_ARGS__);                                                          \
        argot__sched__v1__##t##__free_unpacked(q, NULL);                                     \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_log_set_level(AG_LOG_OFF);
    ag_sched *s = make();
    seed_apps(s);
    uint64_t now = 0;
    size_t at = 0;
    while (at + 4 <= size) {
        unsigned op = data[at] % 9, arg = data[at + 1];
        size_t len = (size_t)data[at + 2] << 8 | data[at + 3];
        at += 4;
        if (len > size - at)
            len = size - at;
        const uint8_t *msg = data + at;
        at += len;
        char err[AG_ERRMSG_MAX] = "";
        int st = AG_SCHED_OK;
        Argot__Sched__V1__ApplicationId aid = ARGOT__SCHED__V1__APPLICATION_ID__INIT;
        aid.cluster_timestamp = 1000;
        aid.id = (int32_t)(arg % 8 + 1);
        Argot__Sched__V1__ApplicationAttemptId att = ARGOT__SCHED__V1__APPLICATION_ATTEMPT_ID__INIT;
        att.application_id = &aid;
        att.attempt_id = 1;
        switch (op) {
        case 0: {
            Argot__Sched__V1__RegisterNodeManagerResponse r =
                ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_RESPONSE__INIT;
            CALL(RegisterNodeManagerRequest, register_node_manager_request, ag_sched_register_node,
                 now, &r, err, sizeof(err));
            ag_sched_resp_clear(&r.base);
            break;
        }
        case 1: {
            Argot__Sched__V1__NodeHeartbeatResponse r = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
            CALL(NodeHeartbeatRequest, node_heartbeat_request, ag_sched_node_heartbeat, now, &r,
                 err, sizeof(err));
            ag_sched_resp_clear(&r.base);
            break;
        }
        case 2: {
            Argot__Sched__V1__SubmitApplicationRequest *q =
                argot__sched__v1__submit_application_request__unpack(NULL, len, msg);
            if (!q)
                break;
            if (q->application_submission_context) {
                Argot__Sched__V1__GetNewApplicationResponse nr =
                    ARGOT__SCHED__V1__GET_NEW_APPLICATION_RESPONSE__INIT;
                ag_sched_new_application(s, now, &nr, err, sizeof(err));
                ag_sched_resp_clear(&nr.base);
                st = ag_sched_submit(s, q->application_submission_context, now, err,
                                     sizeof(err));
            }
            argot__sched__v1__submit_application_request__free_unpacked(q, NULL);
            break;
        }
        case 3: {
            Argot__Sched__V1__RegisterApplicationMasterResponse r =
                ARGOT__SCHED__V1__REGISTER_APPLICATION_MASTER_RESPONSE__INIT;
            Argot__Sched__V1__RegisterApplicationMasterRequest *q =
                argot__sched__v1__register_application_master_request__unpack(NULL, len, msg);
            if (!q)
                break;
            st = ag_sched_register_am(s, &att, q, now, &r, err, sizeof(err));
            argot__sched__v1__register_application_master_request__free_unpacked(q, NULL);
            ag_sched_resp_clear(&r.base);
            break;
        }
        case 4: {
            Argot__Sched__V1__AllocateResponse r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
            Argot__Sched__V1__AllocateRequest *q =
                argot__sched__v1__allocate_request__unpack(NULL, len, msg);
            if (!q)
                break;
            st = ag_sched_allocate(s, &att, q, now, &r, err, sizeof(err));
            argot__sched__v1__allocate_request__free_unpacked(q, NULL);
            ag_sched_resp_clear(&r.base);
            break;
        }
        case 5: {
            Argot__Sched__V1__FinishApplicationMasterResponse r =
                ARGOT__SCHED__V1__FINISH_APPLICATION_MASTER_RESPONSE__INIT;
            Argot__Sched__V1__FinishApplicationMasterRequest *q =
                argot__sched__v1__finish_application_master_request__unpack(NULL, len, msg);
            if (!q)
                break;
            st = ag_sched_finish_am(s, &att, q, now, &r, err, sizeof(err));
            argot__sched__v1__finish_application_master_request__free_unpacked(q, NULL);
            ag_sched_resp_clear(&r.base);
            break;
        }
        case 6:
            st = ag_sched_kill(s, &aid, "fuzz", now, err, sizeof(err));
            break;
        case 7: {
            now += (uint64_t)arg * 100;
            ag_sched_tick(s, now);
            ag_sched_am_launch *ls = NULL;
            size_t n = 0;
            if (ag_sched_take_am_launches(s, &ls, &n) == AG_SCHED_OK) {
                for (size_t i = 0; i < n; i++) {
                    char tok[2048];
                    ag_sched_nm_token_text(s, ls[i].container, now, tok, sizeof(tok));
                    if (arg & 1)
                        ag_sched_am_launch_failed(s, ls[i].container, "fuzz", now);
                    ag_rpc_msg_free(&ls[i].node->base);
                    ag_rpc_msg_free(&ls[i].request->base);
                    ag_rpc_msg_free(&ls[i].container->base);
                }
                ag_free(ls);
            }
            ag_sched_grant_changes(s, grant_sink, NULL);
            break;
        }
        default: {
            Argot__Sched__V1__GetClusterNodesResponse r =
                ARGOT__SCHED__V1__GET_CLUSTER_NODES_RESPONSE__INIT;
            Argot__Sched__V1__GetClusterNodesRequest nq =
                ARGOT__SCHED__V1__GET_CLUSTER_NODES_REQUEST__INIT;
            ag_sched_nodes(s, &nq, &r);
            ag_sched_resp_clear(&r.base);
            Argot__Sched__V1__GetClusterMetricsResponse m =
                ARGOT__SCHED__V1__GET_CLUSTER_METRICS_RESPONSE__INIT;
            ag_sched_metrics(s, &m);
            ag_sched_resp_clear(&m.base);
            Argot__Sched__V1__ApplicationReport *rep = NULL;
            if (ag_sched_app_report(s, &aid, &rep, err, sizeof(err)) == AG_SCHED_OK)
                ag_rpc_msg_free(&rep->base);
            st = AG_SCHED_OK;
            break;
        }
        }
        must(st == AG_SCHED_OK || err[0] != '\0');
        char why[AG_ERRMSG_MAX];
        if (ag__sched_check(s, why, sizeof(why)) != 0) {
            fprintf(stderr, "invariant: %s\n", why);
            abort();
        }
    }
    ag_sched_free(s);
    return 0;
}
