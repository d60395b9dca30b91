/* Tests for src/sched/scheduler.c: the resource manager's core, driven with
 * a clock the test controls. */
#include <math.h>

#include "argot/sched.h"
#include "test.h"

#include "argot/rpc.h"
#include "sched/scheduler.h"

#define TS 1700000000000LL

typedef Argot__Sched__V1__ApplicationId AppId;
typedef Argot__Sched__V1__ApplicationAttemptId AttemptId;
typedef Argot__Sched__V1__ResourceRequest Ask;
typedef Argot__Sched__V1__AllocateResponse AllocResp;

static char err[512];

static ag_sched_conf conf0(void)
{
    ag_sched_conf c = {0};
    c.cluster_timestamp = TS;
    c.node_locality_delay = -1;
    c.rack_locality_delay = -1;
    return c;
}

/* The core's invariants hold. */
static void inv(ag_sched *s)
{
    char e[512];
    if (ag__sched_check(s, e, sizeof(e)) != 0)
        FAIL("invariant broken: %s", e);
}

/* Checks the invariants, then frees. */
static void done(ag_sched *s)
{
    inv(s);
    ag_sched_free(s);
}

static ag_sched *mk(const ag_sched_conf *c)
{
    ag_sched *s = ag_sched_new(c, err, sizeof(err));
    if (!s)
        FAIL("ag_sched_new: %s", err);
    return s;
}

/* Registers host:port on rack with mb/vc (label may be NULL). Returns the
 * container master key through key (may be NULL). */
static void reg_node_l(ag_sched *s, const char *host, const char *rack, int64_t mb, int vc,
                       const char *label, uint64_t now, ag_sched_key *key)
{
    Argot__Sched__V1__RegisterNodeManagerRequest req =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_REQUEST__INIT;
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    Argot__Sched__V1__Resource r = ARGOT__SCHED__V1__RESOURCE__INIT;
    nid.host = (char *)host;
    nid.port = 45454;
    r.memory_mb = mb;
    r.vcores = vc;
    req.node_id = &nid;
    req.resource = &r;
    req.rack = (char *)(rack ? rack : "");
    char *labels[1] = {(char *)label};
    if (label) {
        req.n_node_labels = 1;
        req.node_labels = labels;
    }
    Argot__Sched__V1__RegisterNodeManagerResponse resp =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_RESPONSE__INIT;
    int rc = ag_sched_register_node(s, &req, now, &resp, err, sizeof(err));
    if (rc != AG_SCHED_OK)
        FAIL("register node %s: %d %s", host, rc, err);
    CHECK(resp.container_token_master_key != NULL);
    CHECK_EQ(resp.container_token_master_key->bytes.len, AG_SCHED_KEY_BYTES);
    if (key) {
        key->id = resp.container_token_master_key->key_id;
        memcpy(key->bytes, resp.container_token_master_key->bytes.data, AG_SCHED_KEY_BYTES);
    }
    ag_sched_resp_clear(&resp.base);
}

static void reg_node(ag_sched *s, const char *host, const char *rack, int64_t mb, int vc,
                     uint64_t now)
{
    reg_node_l(s, host, rack, mb, vc, NULL, now, NULL);
}

/* A heartbeat from host with optional container statuses. */
static int hb(ag_sched *s, const char *host, Argot__Sched__V1__ContainerStatus **st, size_t n,
              uint64_t now, Argot__Sched__V1__NodeHeartbeatResponse *resp)
{
    Argot__Sched__V1__NodeHeartbeatRequest req = ARGOT__SCHED__V1__NODE_HEARTBEAT_REQUEST__INIT;
    Argot__Sched__V1__NodeStatus ns = ARGOT__SCHED__V1__NODE_STATUS__INIT;
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    nid.host = (char *)host;
    nid.port = 45454;
    ns.node_id = &nid;
    ns.container_statuses = st;
    ns.n_container_statuses = n;
    req.node_status = &ns;
    return ag_sched_node_heartbeat(s, &req, now, resp, err, sizeof(err));
}

static void hb_ok(ag_sched *s, const char *host, uint64_t now)
{
    Argot__Sched__V1__NodeHeartbeatResponse r = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, host, NULL, 0, now, &r), AG_SCHED_OK);
    ag_sched_resp_clear(&r.base);
}

static int32_t new_app(ag_sched *s)
{
    Argot__Sched__V1__GetNewApplicationResponse r =
        ARGOT__SCHED__V1__GET_NEW_APPLICATION_RESPONSE__INIT;
    CHECK_EQ(ag_sched_new_application(s, 0, &r, err, sizeof(err)), AG_SCHED_OK);
    CHECK(r.application_id && r.application_id->cluster_timestamp == TS);
    int32_t id = r.application_id->id;
    ag_sched_resp_clear(&r.base);
    return id;
}

typedef struct subm {
    const char *queue;
    const char *user;
    bool unmanaged;
    int64_t am_mb;
    int max_attempts;
    bool keep;
    const char *label;
    int32_t prio;
} subm;

static int submit_rc(ag_sched *s, int32_t id, subm o, uint64_t now)
{
    Argot__Sched__V1__ApplicationSubmissionContext ctx =
        ARGOT__SCHED__V1__APPLICATION_SUBMISSION_CONTEXT__INIT;
    AppId aid = ARGOT__SCHED__V1__APPLICATION_ID__INIT;
    Argot__Sched__V1__Resource r = ARGOT__SCHED__V1__RESOURCE__INIT;
    Argot__Sched__V1__ContainerLaunchContext clc = ARGOT__SCHED__V1__CONTAINER_LAUNCH_CONTEXT__INIT;
    char *cmd[1] = {"my-am"};
    clc.command = cmd;
    clc.n_command = 1;
    aid.cluster_timestamp = TS;
    aid.id = id;
    r.memory_mb = o.am_mb ? o.am_mb : 1024;
    r.vcores = 1;
    ctx.application_id = &aid;
    ctx.application_name = "test";
    ctx.queue = (char *)(o.queue ? o.queue : "");
    ctx.user = (char *)(o.user ? o.user : "alice");
    ctx.unmanaged_am = o.unmanaged;
    ctx.resource = &r;
    ctx.am_container_spec = &clc;
    ctx.max_app_attempts = o.max_attempts;
    ctx.keep_containers_across_application_attempts = o.keep;
    ctx.node_label_expression = (char *)(o.label ? o.label : "");
    ctx.priority = o.prio;
    return ag_sched_submit(s, &ctx, now, err, sizeof(err));
}

static int32_t submit(ag_sched *s, subm o, uint64_t now)
{
    int32_t id = new_app(s);
    int rc = submit_rc(s, id, o, now);
    if (rc != AG_SCHED_OK)
        FAIL("submit: %d %s", rc, err);
    return id;
}

/* Stack ids. */
typedef struct ids {
    AppId app;
    AttemptId at;
} ids;

static void ids_set(ids *x, int32_t app, int32_t attempt)
{
    *x = (ids){ARGOT__SCHED__V1__APPLICATION_ID__INIT,
               ARGOT__SCHED__V1__APPLICATION_ATTEMPT_ID__INIT};
    x->app.cluster_timestamp = TS;
    x->app.id = app;
    x->at.application_id = &x->app;
    x->at.attempt_id = attempt;
}

static int register_am(ag_sched *s, int32_t app, int32_t attempt, uint64_t now,
                       Argot__Sched__V1__RegisterApplicationMasterResponse *resp)
{
    ids x;
    ids_set(&x, app, attempt);
    Argot__Sched__V1__RegisterApplicationMasterRequest req =
        ARGOT__SCHED__V1__REGISTER_APPLICATION_MASTER_REQUEST__INIT;
    req.host = "am-host";
    req.rpc_port = 1234;
    return ag_sched_register_am(s, &x.at, &req, now, resp, err, sizeof(err));
}

static void register_ok(ag_sched *s, int32_t app, int32_t attempt, uint64_t now)
{
    Argot__Sched__V1__RegisterApplicationMasterResponse r =
        ARGOT__SCHED__V1__REGISTER_APPLICATION_MASTER_RESPONSE__INIT;
    int rc = register_am(s, app, attempt, now, &r);
    if (rc != AG_SCHED_OK)
        FAIL("register am: %d %s", rc, err);
    ag_sched_resp_clear(&r.base);
}

static Ask ask(int32_t prio, const char *name, int64_t mb, int32_t n, bool relax)
{
    static Argot__Sched__V1__Resource caps[64];
    static int next;
    Ask a = ARGOT__SCHED__V1__RESOURCE_REQUEST__INIT;
    Argot__Sched__V1__Resource *r = &caps[next++ % 64];
    *r = (Argot__Sched__V1__Resource)ARGOT__SCHED__V1__RESOURCE__INIT;
    r->memory_mb = mb;
    r->vcores = 1;
    a.priority = prio;
    a.resource_name = (char *)name;
    a.capability = r;
    a.num_containers = n;
    a.relax_locality = relax;
    return a;
}

/* An allocate with asks (n of them) and releases; response id rid. */
static int alloc_rc(ag_sched *s, int32_t app, int32_t attempt, Ask *asks, size_t n,
                    Argot__Sched__V1__ContainerId **rel, size_t nrel, int32_t rid, uint64_t now,
                    AllocResp *resp)
{
    ids x;
    ids_set(&x, app, attempt);
    Argot__Sched__V1__AllocateRequest req = ARGOT__SCHED__V1__ALLOCATE_REQUEST__INIT;
    Ask *ptrs[16];
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &asks[i];
    req.ask = ptrs;
    req.n_ask = n;
    req.release = rel;
    req.n_release = nrel;
    req.response_id = rid;
    return ag_sched_allocate(s, &x.at, &req, now, resp, err, sizeof(err));
}

/* The AM's side: keeps the response id. */
typedef struct am {
    ag_sched *s;
    int32_t app;
    int32_t attempt;
    int32_t rid;
} am;

static size_t am_alloc(am *m, Ask *asks, size_t n, uint64_t now, AllocResp *resp)
{
    int rc = alloc_rc(m->s, m->app, m->attempt, asks, n, NULL, 0, m->rid, now, resp);
    if (rc != AG_SCHED_OK)
        FAIL("allocate: %d %s", rc, err);
    CHECK_EQ(resp->response_id, m->rid + 1);
    m->rid = resp->response_id;
    return resp->n_allocated_containers;
}

/* Grants of one allocate (freed). */
static size_t am_grants(am *m, Ask *asks, size_t n, uint64_t now)
{
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    size_t k = am_alloc(m, asks, n, now, &r);
    ag_sched_resp_clear(&r.base);
    return k;
}

static am unmanaged(ag_sched *s, subm o, uint64_t now)
{
    o.unmanaged = true;
    am m = {s, submit(s, o, now), 1, 0};
    register_ok(s, m.app, 1, now);
    return m;
}

static Argot__Sched__V1__ApplicationReport *report(ag_sched *s, int32_t app)
{
    AppId aid = ARGOT__SCHED__V1__APPLICATION_ID__INIT;
    aid.cluster_timestamp = TS;
    aid.id = app;
    Argot__Sched__V1__ApplicationReport *r = NULL;
    CHECK_EQ(ag_sched_app_report(s, &aid, &r, err, sizeof(err)), AG_SCHED_OK);
    return r;
}

static int app_state(ag_sched *s, int32_t app)
{
    Argot__Sched__V1__ApplicationReport *r = report(s, app);
    int st = r->yarn_application_state;
    ag_rpc_msg_free(&r->base);
    return st;
}

static const char *env_get(const Argot__Sched__V1__ContainerLaunchContext *c, const char *k)
{
    for (size_t i = 0; i < c->n_environment; i++)
        if (strcmp(c->environment[i]->key, k) == 0)
            return c->environment[i]->value;
    return NULL;
}

static void free_launches(ag_sched_am_launch *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ag_rpc_msg_free(&l[i].node->base);
        ag_rpc_msg_free(&l[i].request->base);
        ag_rpc_msg_free(&l[i].container->base);
    }
    ag_free(l);
}

static size_t count_launches(ag_sched *s)
{
    ag_sched_am_launch *l;
    size_t n;
    CHECK_OK(ag_sched_take_am_launches(s, &l, &n));
    free_launches(l, n);
    return n;
}

/* ------------------------------------------------------------------------ */

TEST(sched_ids)
{
    char buf[128];
    AppId a = ARGOT__SCHED__V1__APPLICATION_ID__INIT;
    a.cluster_timestamp = TS;
    a.id = 7;
    CHECK_STR_EQ(ag_sched_app_id_str(&a, buf, sizeof(buf)), "application_1700000000000_0007");
    AttemptId at = ARGOT__SCHED__V1__APPLICATION_ATTEMPT_ID__INIT;
    at.application_id = &a;
    at.attempt_id = 2;
    Argot__Sched__V1__ContainerId c = ARGOT__SCHED__V1__CONTAINER_ID__INIT;
    c.app_attempt_id = &at;
    c.id = 13;
    CHECK_STR_EQ(ag_sched_container_id_str(&c, buf, sizeof(buf)),
                 "container_1700000000000_0007_02_000013");
    int64_t ts;
    int32_t n;
    CHECK_EQ(ag_sched_parse_app_id("application_1700000000000_0007", &ts, &n), 0);
    CHECK_EQ(ts, TS);
    CHECK_EQ(n, 7);
    CHECK_EQ(ag_sched_parse_app_id("application_17_x", &ts, &n), AG_E_INVAL);
    CHECK_EQ(ag_sched_parse_app_id("container_1_1", &ts, &n), AG_E_INVAL);
    CHECK_EQ(ag_sched_parse_app_id("application_1_0", &ts, &n), AG_E_INVAL);
}

TEST(sched_queue_config_errors)
{
    ag_sched_conf c = conf0();
    ag_sched_queue_conf q1[] = {{"a", 60, 0, 0, 0, ""}, {"b", 30, 0, 0, 0, ""}};
    c.queues = q1;
    c.nqueues = 2;
    CHECK(ag_sched_new(&c, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "queue root: capacities of its children sum to 90, not 100");
    ag_sched_queue_conf q2[] = {
        {"a", 100, 0, 0, 0, ""}, {"a.x", 50, 0, 0, 0, ""}, {"a.y", 40, 0, 0, 0, ""}};
    c.queues = q2;
    c.nqueues = 3;
    CHECK(ag_sched_new(&c, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "queue root.a: capacities of its children sum to 90");
    ag_sched_queue_conf q3[] = {{"a.x", 100, 0, 0, 0, ""}};
    c.queues = q3;
    c.nqueues = 1;
    CHECK(ag_sched_new(&c, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "root.a is not configured");
    ag_sched_queue_conf q4[] = {{"a", 100, 50, 0, 0, ""}};
    c.queues = q4;
    CHECK(ag_sched_new(&c, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "queue root.a: maximum capacity 50");
    ag_sched_queue_conf q5[] = {{"a", 100, 0, 0, 0, ""}};
    c.queues = q5;
    ag_sched *s = mk(&c);
    /* unknown queue and a parent queue */
    int32_t id = new_app(s);
    CHECK_EQ(submit_rc(s, id, (subm){.queue = "nope"}, 0), AG_SCHED_NOT_FOUND);
    CHECK_CONTAINS(err, "queue 'nope' does not exist");
    CHECK_EQ(submit_rc(s, id, (subm){.queue = "root"}, 0), AG_SCHED_INVALID);
    CHECK_CONTAINS(err, "root is not a leaf");
    CHECK_EQ(submit_rc(s, id, (subm){.queue = "a"}, 0), AG_SCHED_OK);
    done(s);
}

TEST(sched_submit_launch_register_finish)
{
    ag_sched_conf c = conf0();
    ag_sched *s = mk(&c);
    ag_sched_key ck;
    reg_node_l(s, "h1", "/r1", 8192, 8, NULL, 0, &ck);
    int32_t id = new_app(s);
    /* errors first */
    CHECK_EQ(submit_rc(s, id + 1, (subm){0}, 0), AG_SCHED_INVALID);
    CHECK_CONTAINS(err, "was not handed out");
    CHECK_EQ(submit_rc(s, id, (subm){.am_mb = 9000}, 0), AG_SCHED_INVALID);
    CHECK_CONTAINS(err, "exceeds the maximum allocation");
    CHECK_EQ(submit_rc(s, id, (subm){0}, 10), AG_SCHED_OK);
    CHECK_EQ(submit_rc(s, id, (subm){0}, 10), AG_SCHED_EXISTS);
    CHECK_EQ(app_state(s, id), ARGOT__SCHED__V1__YARN_APPLICATION_STATE__ACCEPTED);

    ag_sched_am_launch *l;
    size_t n;
    CHECK_OK(ag_sched_take_am_launches(s, &l, &n));
    CHECK_EQ(n, 1);
    CHECK_STR_EQ(l[0].node->host, "h1");
    CHECK_EQ(l[0].container->id, 1);
    CHECK_EQ(l[0].request->n_start_container_request, 1);
    Argot__Sched__V1__StartContainerRequest *sr = l[0].request->start_container_request[0];
    const Argot__Sched__V1__ContainerLaunchContext *clc = sr->container_launch_context;
    CHECK_EQ(clc->n_command, 1);
    CHECK_STR_EQ(clc->command[0], "my-am");
    CHECK_STR_EQ(env_get(clc, "ARGOT_APP_ID"), "application_1700000000000_0001");
    CHECK_STR_EQ(env_get(clc, "ARGOT_CONTAINER_ID"), "container_1700000000000_0001_01_000001");
    CHECK_STR_EQ(env_get(clc, "ARGOT_NM_HOST"), "h1:45454");
    /* the container token verifies under the key the NM received */
    CHECK(ag__sched_mac_ok(&ck, sr->container_token->identifier.data,
                           sr->container_token->identifier.len, sr->container_token->password.data,
                           sr->container_token->password.len));
    /* the AMRM token authenticates attempt 1 */
    uint8_t *tid, *tpw;
    size_t tidl, tpwl;
    CHECK_OK(ag__sched_token_parse(env_get(clc, "ARGOT_AMRM_TOKEN"), &tid, &tidl, &tpw, &tpwl));
    AttemptId *at = NULL;
    CHECK_EQ(ag_sched_amrm_check(s, tid, tidl, tpw, tpwl, &at, err, sizeof(err)), AG_SCHED_OK);
    CHECK_EQ(at->attempt_id, 1);
    CHECK_EQ(at->application_id->id, id);
    ag_rpc_msg_free(&at->base);
    tpw[0] ^= 1;
    CHECK_EQ(ag_sched_amrm_check(s, tid, tidl, tpw, tpwl, &at, err, sizeof(err)), AG_SCHED_DENIED);
    CHECK(at == NULL);
    ag_free(tid);
    ag_free(tpw);
    free_launches(l, n);
    CHECK_EQ(count_launches(s), 0);

    register_ok(s, id, 1, 20);
    Argot__Sched__V1__ApplicationReport *r = report(s, id);
    CHECK_EQ(r->yarn_application_state, ARGOT__SCHED__V1__YARN_APPLICATION_STATE__RUNNING);
    CHECK_STR_EQ(r->host, "am-host");
    CHECK_EQ(r->num_containers, 1);
    CHECK_EQ(r->used->memory_mb, 1024);
    CHECK(r->am_rm_token == NULL); /* managed AM: not in the report */
    ag_rpc_msg_free(&r->base);
    /* registering twice is refused */
    Argot__Sched__V1__RegisterApplicationMasterResponse rr =
        ARGOT__SCHED__V1__REGISTER_APPLICATION_MASTER_RESPONSE__INIT;
    CHECK_EQ(register_am(s, id, 1, 21, &rr), AG_SCHED_INVALID);
    ag_sched_resp_clear(&rr.base);

    ids x;
    ids_set(&x, id, 1);
    Argot__Sched__V1__FinishApplicationMasterRequest fr =
        ARGOT__SCHED__V1__FINISH_APPLICATION_MASTER_REQUEST__INIT;
    fr.final_application_status = ARGOT__SCHED__V1__FINAL_APPLICATION_STATUS__APP_SUCCEEDED;
    fr.diagnostics = "all good";
    Argot__Sched__V1__FinishApplicationMasterResponse fresp =
        ARGOT__SCHED__V1__FINISH_APPLICATION_MASTER_RESPONSE__INIT;
    CHECK_EQ(ag_sched_finish_am(s, &x.at, &fr, 30, &fresp, err, sizeof(err)), AG_SCHED_OK);
    CHECK(fresp.is_unregistered);
    r = report(s, id);
    CHECK_EQ(r->yarn_application_state, ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FINISHED);
    CHECK_EQ(r->final_application_status,
             ARGOT__SCHED__V1__FINAL_APPLICATION_STATUS__APP_SUCCEEDED);
    CHECK_STR_EQ(r->diagnostics, "all good");
    CHECK_EQ(r->num_containers, 1); /* the AM exits by itself: its NM tells */
    ag_rpc_msg_free(&r->base);
    AppId aid1 = ARGOT__SCHED__V1__APPLICATION_ID__INIT;
    aid1.cluster_timestamp = TS;
    aid1.id = id;
    AttemptId at1 = ARGOT__SCHED__V1__APPLICATION_ATTEMPT_ID__INIT;
    at1.application_id = &aid1;
    at1.attempt_id = 1;
    Argot__Sched__V1__ContainerId amc = ARGOT__SCHED__V1__CONTAINER_ID__INIT;
    amc.app_attempt_id = &at1;
    amc.id = 1;
    Argot__Sched__V1__ContainerStatus st = ARGOT__SCHED__V1__CONTAINER_STATUS__INIT;
    st.container_id = &amc;
    st.state = ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE;
    Argot__Sched__V1__ContainerStatus *sts[1] = {&st};
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, "h1", sts, 1, 31, &h), AG_SCHED_OK);
    CHECK_EQ(h.n_applications_to_cleanup, 1);
    CHECK_EQ(h.n_containers_to_cleanup, 0);
    CHECK_EQ(h.n_containers_to_be_removed_from_nm, 1);
    ag_sched_resp_clear(&h.base);
    r = report(s, id);
    CHECK_EQ(r->num_containers, 0);
    CHECK_EQ(r->yarn_application_state, ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FINISHED);
    ag_rpc_msg_free(&r->base);
    /* the ended attempt's token no longer works, nor does allocate */
    AllocResp ar = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(alloc_rc(s, id, 1, NULL, 0, NULL, 0, 0, 31, &ar), AG_SCHED_NOT_REGISTERED);
    CHECK_CONTAINS(err, "ApplicationMasterNotRegistered");

    /* metrics and listings */
    Argot__Sched__V1__GetClusterMetricsResponse mr =
        ARGOT__SCHED__V1__GET_CLUSTER_METRICS_RESPONSE__INIT;
    CHECK_EQ(ag_sched_metrics(s, &mr), AG_SCHED_OK);
    CHECK_EQ(mr.cluster_metrics->num_active_nms, 1);
    CHECK_EQ(mr.cluster_metrics->num_apps_submitted, 1);
    CHECK_EQ(mr.cluster_metrics->num_apps_completed, 1);
    CHECK_EQ(mr.cluster_metrics->total->memory_mb, 8192);
    CHECK_EQ(mr.cluster_metrics->allocated->memory_mb, 0);
    ag_sched_resp_clear(&mr.base);
    Argot__Sched__V1__GetApplicationsResponse ap =
        ARGOT__SCHED__V1__GET_APPLICATIONS_RESPONSE__INIT;
    CHECK_EQ(ag_sched_apps(s, NULL, &ap), AG_SCHED_OK);
    CHECK_EQ(ap.n_applications, 1);
    ag_sched_resp_clear(&ap.base);
    Argot__Sched__V1__GetClusterNodesResponse nr =
        ARGOT__SCHED__V1__GET_CLUSTER_NODES_RESPONSE__INIT;
    CHECK_EQ(ag_sched_nodes(s, NULL, &nr), AG_SCHED_OK);
    CHECK_EQ(nr.n_node_reports, 1);
    CHECK_STR_EQ(nr.node_reports[0]->rack_name, "/r1");
    ag_sched_resp_clear(&nr.base);
    done(s);
}

TEST(sched_unmanaged_am_token_in_report)
{
    ag_sched_conf c = conf0();
    ag_sched *s = mk(&c);
    int32_t id = submit(s, (subm){.unmanaged = true}, 0);
    CHECK_EQ(count_launches(s), 0);
    Argot__Sched__V1__ApplicationReport *r = report(s, id);
    CHECK(r->am_rm_token != NULL);
    AttemptId *at = NULL;
    CHECK_EQ(ag_sched_amrm_check(s, r->am_rm_token->identifier.data, r->am_rm_token->identifier.len,
                                 r->am_rm_token->password.data, r->am_rm_token->password.len, &at,
                                 err, sizeof(err)),
             AG_SCHED_OK);
    ag_rpc_msg_free(&at->base);
    /* another RM's key refuses it */
    ag_sched *s2 = mk(&c);
    CHECK_EQ(ag_sched_amrm_check(s2, r->am_rm_token->identifier.data,
                                 r->am_rm_token->identifier.len, r->am_rm_token->password.data,
                                 r->am_rm_token->password.len, &at, err, sizeof(err)),
             AG_SCHED_DENIED);
    CHECK_CONTAINS(err, "invalid password");
    uint8_t junk[5] = {0xff, 0xff, 0xff, 0xff, 0xff};
    CHECK_EQ(ag_sched_amrm_check(s, junk, sizeof(junk), junk, sizeof(junk), &at, err, sizeof(err)),
             AG_SCHED_DENIED);
    ag_sched_free(s2);
    ag_rpc_msg_free(&r->base);
    /* allocate before registering */
    AllocResp ar = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(alloc_rc(s, id, 1, NULL, 0, NULL, 0, 0, 1, &ar), AG_SCHED_NOT_REGISTERED);
    register_ok(s, id, 1, 2);
    CHECK_EQ(app_state(s, id), ARGOT__SCHED__V1__YARN_APPLICATION_STATE__RUNNING);
    done(s);
}

TEST(sched_allocate_grants_resend_and_wrong_id)
{
    ag_sched_conf c = conf0();
    ag_sched *s = mk(&c);
    ag_sched_key ck;
    reg_node_l(s, "h1", "/r1", 4096, 4, NULL, 0, &ck);
    am m = unmanaged(s, (subm){0}, 0);
    Ask a[1] = {ask(1, "*", 1000, 3, true)};
    a[0].allocation_request_id = 42;
    AllocResp r1 = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&m, a, 1, 1, &r1), 3); /* granted on this very allocate */
    CHECK_EQ(r1.response_id, 1);
    CHECK_EQ(r1.n_nm_tokens, 1);
    CHECK_EQ(r1.num_cluster_nodes, 1);
    CHECK_EQ(r1.limit->memory_mb, 1024); /* 4096 - 3 x 1024 (normalized) */
    for (size_t i = 0; i < 3; i++) {
        Argot__Sched__V1__Container *ct = r1.allocated_containers[i];
        CHECK_EQ(ct->resource->memory_mb, 1024);
        CHECK_EQ(ct->allocation_request_id, 42);
        CHECK_STR_EQ(ct->node_id->host, "h1");
        CHECK(ag__sched_mac_ok(
            &ck, ct->container_token->identifier.data, ct->container_token->identifier.len,
            ct->container_token->password.data, ct->container_token->password.len));
        Argot__Sched__V1__ContainerTokenIdentifier *ti =
            argot__sched__v1__container_token_identifier__unpack(
                NULL, ct->container_token->identifier.len, ct->container_token->identifier.data);
        CHECK(ti != NULL);
        CHECK_EQ(ti->container_id->id, ct->id->id);
        CHECK_STR_EQ(ti->app_submitter, "alice");
        argot__sched__v1__container_token_identifier__free_unpacked(ti, NULL);
    }
    /* a resend (response_id 0 again) gets the same bytes */
    AllocResp r2 = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(alloc_rc(s, m.app, 1, a, 1, NULL, 0, 0, 2, &r2), AG_SCHED_OK);
    size_t l1 = protobuf_c_message_get_packed_size(&r1.base);
    size_t l2 = protobuf_c_message_get_packed_size(&r2.base);
    CHECK_EQ(l1, l2);
    uint8_t *b1 = ag_malloc(l1), *b2 = ag_malloc(l2);
    protobuf_c_message_pack(&r1.base, b1);
    protobuf_c_message_pack(&r2.base, b2);
    CHECK_MEM_EQ(b1, b2, l1);
    ag_free(b1);
    ag_free(b2);
    ag_sched_resp_clear(&r2.base);
    ag_sched_resp_clear(&r1.base);
    /* anything else is refused */
    CHECK_EQ(alloc_rc(s, m.app, 1, NULL, 0, NULL, 0, 5, 3, &r2), AG_SCHED_INVALID);
    CHECK_CONTAINS(err, "response_id 5");
    /* the next one is new: nothing more granted, no second NM token */
    CHECK_EQ(am_alloc(&m, NULL, 0, 4, &r2), 0);
    CHECK_EQ(r2.n_nm_tokens, 0);
    CHECK_EQ(r2.response_id, 2);
    ag_sched_resp_clear(&r2.base);
    /* asks above the maximum are refused, naming the ask */
    Ask big[1] = {ask(1, "*", 9000, 1, true)};
    CHECK_EQ(alloc_rc(s, m.app, 1, big, 1, NULL, 0, m.rid, 5, &r2), AG_SCHED_INVALID);
    CHECK_CONTAINS(err, "9000 MB, 1 vcores exceeds the maximum allocation (8192 MB, 4 vcores)");
    done(s);
}

TEST(sched_totals_replace)
{
    ag_sched_conf c = conf0();
    ag_sched *s = mk(&c);
    am m = unmanaged(s, (subm){0}, 0);
    Ask a5[1] = {ask(1, "*", 1024, 5, true)};
    CHECK_EQ(am_grants(&m, a5, 1, 1), 0); /* no nodes yet */
    Ask a3[1] = {ask(1, "*", 1024, 3, true)};
    CHECK_EQ(am_grants(&m, a3, 1, 2), 0);
    reg_node(s, "h1", NULL, 10240, 10, 3); /* schedules on registration */
    CHECK_EQ(am_grants(&m, NULL, 0, 4), 3);
    hb_ok(s, "h1", 5);
    CHECK_EQ(am_grants(&m, NULL, 0, 6), 0);
    /* a new total of 2 at the same key: 2 more */
    Ask a2[1] = {ask(1, "*", 1024, 2, true)};
    CHECK_EQ(am_grants(&m, a2, 1, 7), 2);
    CHECK_EQ(am_grants(&m, NULL, 0, 8), 0);
    done(s);
}

TEST(sched_grant_decrements_node_rack_any)
{
    ag_sched_conf c = conf0();
    ag_sched *s = mk(&c);
    reg_node(s, "h1", "/r1", 2048, 2, 0);
    reg_node(s, "h2", "/r1", 8192, 8, 0);
    am m = unmanaged(s, (subm){0}, 0);
    /* h1: 2, /r1: 2, *: 2: both fit on h1, each grant lowers all three */
    Ask a[3] = {ask(1, "h1", 1024, 2, true), ask(1, "/r1", 1024, 2, true),
                ask(1, "*", 1024, 2, true)};
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&m, a, 3, 1, &r), 2);
    CHECK_STR_EQ(r.allocated_containers[0]->node_id->host, "h1");
    CHECK_STR_EQ(r.allocated_containers[1]->node_id->host, "h1");
    ag_sched_resp_clear(&r.base);
    /* * alone back to 1: the host and rack asks are at 0 now, so it is
     * placed freely (h2 has room) */
    Ask b[1] = {ask(1, "*", 1024, 1, true)};
    CHECK_EQ(am_alloc(&m, b, 1, 2, &r), 1);
    CHECK_STR_EQ(r.allocated_containers[0]->node_id->host, "h2");
    ag_sched_resp_clear(&r.base);
    done(s);
}

TEST(sched_locality_delay)
{
    ag_sched_conf c = conf0();
    c.node_locality_delay = 2;
    c.rack_locality_delay = 4;
    ag_sched *s = mk(&c);
    reg_node(s, "h1", "/r1", 512, 1, 0); /* too small for any container */
    reg_node(s, "h3", "/r2", 8192, 8, 0);
    reg_node(s, "h2", "/r1", 8192, 8, 0);
    am m = unmanaged(s, (subm){0}, 0);
    Ask a[3] = {ask(1, "h1", 1024, 1, true), ask(1, "/r1", 1024, 1, true),
                ask(1, "*", 1024, 1, true)};
    CHECK_EQ(am_grants(&m, a, 3, 1), 0);    /* miss 1 */
    CHECK_EQ(am_grants(&m, NULL, 0, 2), 0); /* miss 2 */
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&m, NULL, 0, 3, &r), 1); /* rack-local now */
    CHECK_STR_EQ(r.allocated_containers[0]->node_id->host, "h2");
    ag_sched_resp_clear(&r.base);

    /* off-switch after the rack delay: a rack with no room */
    Ask b[3] = {ask(2, "h1", 1024, 1, true), ask(2, "/r9", 1024, 1, true),
                ask(2, "*", 1024, 1, true)};
    size_t got = am_grants(&m, b, 3, 4);
    for (int i = 0; got == 0 && i < 10; i++)
        got = am_grants(&m, NULL, 0, 5);
    CHECK_EQ(got, 1);
    CHECK_EQ(m.rid, 3 + 5); /* granted on the 5th pass (response 8): after 4 misses */
    /* relax_locality false on * pins to the node */
    Ask p[2] = {ask(3, "h1", 1024, 1, true), ask(3, "*", 1024, 1, false)};
    CHECK_EQ(am_grants(&m, p, 2, 6), 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(am_grants(&m, NULL, 0, 7), 0);
    done(s);
}

static ag_sched *two_queues(double ca, double ma, double cb, double mb, double ulf, double ams)
{
    static ag_sched_queue_conf q[2];
    q[0] = (ag_sched_queue_conf){"a", ca, ma, ulf, ams, ""};
    q[1] = (ag_sched_queue_conf){"b", cb, mb, ulf, ams, ""};
    ag_sched_conf c = conf0();
    c.queues = q;
    c.nqueues = 2;
    return mk(&c);
}

TEST(sched_queues_share_under_contention)
{
    ag_sched *s = two_queues(70, 100, 30, 100, 0, 0);
    am ma = unmanaged(s, (subm){.queue = "a"}, 0);
    am mb = unmanaged(s, (subm){.queue = "b", .user = "bob"}, 0);
    Ask a[1] = {ask(1, "*", 1024, 10, true)};
    CHECK_EQ(am_grants(&ma, a, 1, 1), 0);
    CHECK_EQ(am_grants(&mb, a, 1, 1), 0);
    char host[16];
    for (int i = 0; i < 10; i++) {
        snprintf(host, sizeof(host), "h%d", i);
        reg_node(s, host, NULL, 1024, 1, 2);
    }
    CHECK_EQ(am_grants(&ma, NULL, 0, 3), 7);
    CHECK_EQ(am_grants(&mb, NULL, 0, 3), 3);
    Argot__Sched__V1__GetQueueInfoRequest qr = ARGOT__SCHED__V1__GET_QUEUE_INFO_REQUEST__INIT;
    qr.include_child_queues = true;
    Argot__Sched__V1__GetQueueInfoResponse qi = ARGOT__SCHED__V1__GET_QUEUE_INFO_RESPONSE__INIT;
    CHECK_EQ(ag_sched_queue_info(s, &qr, &qi, err, sizeof(err)), AG_SCHED_OK);
    CHECK_STR_EQ(qi.queue_info->queue_name, "root");
    CHECK_EQ(qi.queue_info->n_child_queues, 2);
    CHECK_EQ(qi.queue_info->num_applications, 2);
    CHECK_STR_EQ(qi.queue_info->child_queues[0]->queue_name, "root.a");
    CHECK(fabsf(qi.queue_info->child_queues[0]->capacity - 0.7f) < 1e-6f);
    CHECK(fabsf(qi.queue_info->child_queues[0]->current_capacity - 1.0f) < 1e-4f);
    ag_sched_resp_clear(&qi.base);
    qr.queue_name = "zz";
    CHECK_EQ(ag_sched_queue_info(s, &qr, &qi, err, sizeof(err)), AG_SCHED_NOT_FOUND);
    done(s);
}

TEST(sched_queue_elastic_max_capacity_and_user_limit)
{
    /* a alone may grow past 50% up to its maximum, 60% */
    ag_sched *s = two_queues(50, 60, 50, 100, 2, 0);
    char host[16];
    for (int i = 0; i < 10; i++) {
        snprintf(host, sizeof(host), "h%d", i);
        reg_node(s, host, NULL, 1024, 1, 0);
    }
    am ma = unmanaged(s, (subm){.queue = "a"}, 0);
    Ask a[1] = {ask(1, "*", 1024, 10, true)};
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&ma, a, 1, 1, &r), 6);
    CHECK_EQ(r.limit->memory_mb, 0);
    ag_sched_resp_clear(&r.base);
    done(s);

    /* user limit factor 1 in a 50% leaf with max 100%: one user gets 50%,
     * a second user the rest */
    s = two_queues(50, 100, 50, 100, 1, 0);
    for (int i = 0; i < 10; i++) {
        snprintf(host, sizeof(host), "h%d", i);
        reg_node(s, host, NULL, 1024, 1, 0);
    }
    am u1 = unmanaged(s, (subm){.queue = "a", .user = "u1"}, 0);
    am u2 = unmanaged(s, (subm){.queue = "a", .user = "u2"}, 0);
    CHECK_EQ(am_grants(&u1, a, 1, 1), 5);
    CHECK_EQ(am_grants(&u2, a, 1, 1), 5);
    done(s);
}

TEST(sched_am_share)
{
    ag_sched *s = two_queues(50, 100, 50, 100, 0, 0.2);
    char host[16];
    for (int i = 0; i < 10; i++) {
        snprintf(host, sizeof(host), "h%d", i);
        reg_node(s, host, NULL, 1024, 1, 0);
    }
    /* a's AM limit: 20% of 5 GB = 1 GB: one AM runs, then the second
     * (at least one always may) waits */
    int32_t a1 = submit(s, (subm){.queue = "a"}, 0);
    submit(s, (subm){.queue = "a"}, 0);
    submit(s, (subm){.queue = "a"}, 0);
    ag_sched_am_launch *l;
    size_t n;
    CHECK_OK(ag_sched_take_am_launches(s, &l, &n));
    CHECK_EQ(n, 1);
    char amhost[16];
    snprintf(amhost, sizeof(amhost), "%s", l[0].node->host);
    free_launches(l, n);
    /* the first finishing lets the next one start */
    register_ok(s, a1, 1, 1);
    ids x;
    ids_set(&x, a1, 1);
    Argot__Sched__V1__FinishApplicationMasterRequest fr =
        ARGOT__SCHED__V1__FINISH_APPLICATION_MASTER_REQUEST__INIT;
    Argot__Sched__V1__FinishApplicationMasterResponse fresp =
        ARGOT__SCHED__V1__FINISH_APPLICATION_MASTER_RESPONSE__INIT;
    CHECK_EQ(ag_sched_finish_am(s, &x.at, &fr, 2, &fresp, err, sizeof(err)), AG_SCHED_OK);
    CHECK_EQ(count_launches(s), 0); /* its AM container still runs */
    Argot__Sched__V1__ContainerId amc = ARGOT__SCHED__V1__CONTAINER_ID__INIT;
    amc.app_attempt_id = &x.at;
    amc.id = 1;
    Argot__Sched__V1__ContainerStatus st = ARGOT__SCHED__V1__CONTAINER_STATUS__INIT;
    st.container_id = &amc;
    st.state = ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE;
    Argot__Sched__V1__ContainerStatus *sts[1] = {&st};
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, amhost, sts, 1, 3, &h), AG_SCHED_OK);
    ag_sched_resp_clear(&h.base);
    CHECK_EQ(count_launches(s), 1);
    CHECK_EQ(count_launches(s), 0);
    done(s);
}

TEST(sched_nm_expiry_reports_lost_containers)
{
    ag_sched_conf c = conf0();
    c.nm_expiry_ms = 1000;
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 2048, 2, 0);
    am m = unmanaged(s, (subm){0}, 0);
    Ask a[1] = {ask(1, "*", 1024, 2, true)};
    CHECK_EQ(am_grants(&m, a, 1, 1), 2);
    reg_node(s, "h2", NULL, 2048, 2, 0);
    hb_ok(s, "h2", 900);
    ag_sched_tick(s, 999);
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    am_alloc(&m, NULL, 0, 999, &r);
    CHECK_EQ(r.n_completed_container_statuses, 0);
    ag_sched_resp_clear(&r.base);
    ag_sched_tick(s, 1000); /* h1 silent since 0 */
    inv(s);
    am_alloc(&m, NULL, 0, 1001, &r);
    CHECK_EQ(r.n_completed_container_statuses, 2);
    CHECK_EQ(r.completed_container_statuses[0]->exit_status, -100);
    CHECK_CONTAINS(r.completed_container_statuses[0]->diagnostics,
                   "container lost on node h1:45454");
    CHECK(r.n_updated_nodes >= 1);
    bool lost = false;
    for (size_t i = 0; i < r.n_updated_nodes; i++)
        lost |= strcmp(r.updated_nodes[i]->node_id->host, "h1") == 0 &&
                r.updated_nodes[i]->node_state == ARGOT__SCHED__V1__NODE_STATE__NS_LOST;
    CHECK(lost);
    ag_sched_resp_clear(&r.base);
    /* delivered once */
    am_alloc(&m, NULL, 0, 1002, &r);
    CHECK_EQ(r.n_completed_container_statuses, 0);
    CHECK_EQ(r.n_updated_nodes, 0);
    ag_sched_resp_clear(&r.base);
    /* a lost node's heartbeat is told to resync */
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, "h1", NULL, 0, 1003, &h), AG_SCHED_OK);
    CHECK_EQ(h.node_action, ARGOT__SCHED__V1__NODE_ACTION__RESYNC);
    ag_sched_resp_clear(&h.base);
    done(s);
}

TEST(sched_resync_unknown_node)
{
    ag_sched_conf c = conf0();
    ag_sched *s = mk(&c);
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, "ghost", NULL, 0, 1, &h), AG_SCHED_OK);
    CHECK_EQ(h.node_action, ARGOT__SCHED__V1__NODE_ACTION__RESYNC);
    CHECK_CONTAINS(h.diagnostics_message, "ghost:45454");
    ag_sched_resp_clear(&h.base);
    reg_node(s, "ghost", NULL, 1024, 1, 2);
    CHECK_EQ(hb(s, "ghost", NULL, 0, 3, &h), AG_SCHED_OK);
    CHECK_EQ(h.node_action, ARGOT__SCHED__V1__NODE_ACTION__NORMAL);
    ag_sched_resp_clear(&h.base);
    done(s);
}

TEST(sched_am_expiry_new_attempt_then_fail)
{
    ag_sched_conf c = conf0();
    c.am_expiry_ms = 500;
    c.nm_expiry_ms = 1000000;
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 8192, 8, 0);
    int32_t id = submit(s, (subm){0}, 0);
    CHECK_EQ(count_launches(s), 1);
    register_ok(s, id, 1, 10);
    am m = {s, id, 1, 0};
    Ask a[1] = {ask(1, "*", 1024, 2, true)};
    CHECK_EQ(am_grants(&m, a, 1, 100), 2);
    ag_sched_tick(s, 599);
    CHECK_EQ(app_state(s, id), ARGOT__SCHED__V1__YARN_APPLICATION_STATE__RUNNING);
    ag_sched_tick(s, 600);
    inv(s);
    Argot__Sched__V1__ApplicationReport *r = report(s, id);
    CHECK_EQ(r->yarn_application_state, ARGOT__SCHED__V1__YARN_APPLICATION_STATE__ACCEPTED);
    CHECK_EQ(r->current_application_attempt_id->attempt_id, 2);
    CHECK_EQ(r->num_containers, 1); /* the new AM container only: not kept */
    CHECK_CONTAINS(r->diagnostics, "attempt 1 of application_1700000000000_0001 failed");
    ag_rpc_msg_free(&r->base);
    ag_sched_am_launch *l;
    size_t n;
    CHECK_OK(ag_sched_take_am_launches(s, &l, &n));
    CHECK_EQ(n, 1);
    CHECK_STR_EQ(env_get(l[0].request->start_container_request[0]->container_launch_context,
                         "ARGOT_CONTAINER_ID"),
                 "container_1700000000000_0001_02_000004");
    free_launches(l, n);
    /* attempt 1 is gone for good */
    AllocResp ar = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(alloc_rc(s, id, 1, NULL, 0, NULL, 0, m.rid, 601, &ar), AG_SCHED_NOT_REGISTERED);
    /* the node is told to stop attempt 1's containers */
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, "h1", NULL, 0, 602, &h), AG_SCHED_OK);
    CHECK_EQ(h.n_containers_to_cleanup, 3);
    ag_sched_resp_clear(&h.base);
    /* attempt 2 never registers: with 2 attempts at most, the app fails */
    ag_sched_tick(s, 602 + 500);
    CHECK_EQ(app_state(s, id), ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FAILED);
    CHECK_EQ(count_launches(s), 0);
    done(s);
}

TEST(sched_keep_containers_across_attempts)
{
    ag_sched_conf c = conf0();
    c.am_expiry_ms = 500;
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 8192, 8, 0);
    am m = unmanaged(s, (subm){.keep = true}, 0);
    Ask a[1] = {ask(1, "*", 1024, 2, true)};
    CHECK_EQ(am_grants(&m, a, 1, 1), 2);
    ag_sched_tick(s, 501);
    CHECK_EQ(app_state(s, m.app), ARGOT__SCHED__V1__YARN_APPLICATION_STATE__ACCEPTED);
    Argot__Sched__V1__RegisterApplicationMasterResponse rr =
        ARGOT__SCHED__V1__REGISTER_APPLICATION_MASTER_RESPONSE__INIT;
    CHECK_EQ(register_am(s, m.app, 2, 502, &rr), AG_SCHED_OK);
    CHECK_EQ(rr.n_containers_from_previous_attempts, 2);
    CHECK_EQ(rr.n_nm_tokens_from_previous_attempts, 1);
    CHECK_EQ(rr.containers_from_previous_attempts[0]->id->app_attempt_id->attempt_id, 1);
    ag_sched_resp_clear(&rr.base);
    done(s);
}

TEST(sched_kill)
{
    ag_sched_conf c = conf0();
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 8192, 8, 0);
    am m = unmanaged(s, (subm){0}, 0);
    Ask a[1] = {ask(1, "*", 1024, 2, true)};
    CHECK_EQ(am_grants(&m, a, 1, 1), 2);
    AppId aid = ARGOT__SCHED__V1__APPLICATION_ID__INIT;
    aid.cluster_timestamp = TS;
    aid.id = m.app;
    CHECK_EQ(ag_sched_kill(s, &aid, "enough", 2, err, sizeof(err)), AG_SCHED_OK);
    Argot__Sched__V1__ApplicationReport *r = report(s, m.app);
    CHECK_EQ(r->yarn_application_state, ARGOT__SCHED__V1__YARN_APPLICATION_STATE__KILLED);
    CHECK_EQ(r->final_application_status, ARGOT__SCHED__V1__FINAL_APPLICATION_STATUS__APP_KILLED);
    CHECK_CONTAINS(r->diagnostics, "enough");
    ag_rpc_msg_free(&r->base);
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, "h1", NULL, 0, 3, &h), AG_SCHED_OK);
    CHECK_EQ(h.n_containers_to_cleanup, 2);
    CHECK_EQ(h.n_applications_to_cleanup, 1);
    CHECK_EQ(h.applications_to_cleanup[0]->id, m.app);
    ag_sched_resp_clear(&h.base);
    AllocResp ar = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(alloc_rc(s, m.app, 1, NULL, 0, NULL, 0, m.rid, 4, &ar), AG_SCHED_OK);
    CHECK_EQ(ar.am_command, ARGOT__SCHED__V1__AMCOMMAND__AM_SHUTDOWN);
    ag_sched_resp_clear(&ar.base);
    aid.id = 99;
    CHECK_EQ(ag_sched_kill(s, &aid, "x", 5, err, sizeof(err)), AG_SCHED_NOT_FOUND);
    CHECK_CONTAINS(err, "application_1700000000000_0099 does not exist");
    done(s);
}

TEST(sched_release_and_completion_via_heartbeat)
{
    ag_sched_conf c = conf0();
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 8192, 8, 0);
    am m = unmanaged(s, (subm){0}, 0);
    Ask a[1] = {ask(1, "*", 1024, 2, true)};
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&m, a, 1, 1, &r), 2);
    Argot__Sched__V1__ContainerId *c1 = r.allocated_containers[0]->id;
    Argot__Sched__V1__ContainerId *c2 = r.allocated_containers[1]->id;
    /* the NM says c1 finished with 3 */
    Argot__Sched__V1__ContainerStatus st = ARGOT__SCHED__V1__CONTAINER_STATUS__INIT;
    st.container_id = c1;
    st.state = ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE;
    st.exit_status = 3;
    st.diagnostics = "exit 3";
    Argot__Sched__V1__ContainerStatus *sts[1] = {&st};
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, "h1", sts, 1, 2, &h), AG_SCHED_OK);
    CHECK_EQ(h.n_containers_to_be_removed_from_nm, 1);
    ag_sched_resp_clear(&h.base);
    /* the AM releases c2 */
    AllocResp r2 = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    Argot__Sched__V1__ContainerId *rel[1] = {c2};
    CHECK_EQ(alloc_rc(s, m.app, 1, NULL, 0, rel, 1, m.rid, 3, &r2), AG_SCHED_OK);
    m.rid = r2.response_id;
    CHECK_EQ(r2.n_completed_container_statuses, 2);
    CHECK_EQ(r2.completed_container_statuses[0]->exit_status, 3);
    CHECK_STR_EQ(r2.completed_container_statuses[0]->diagnostics, "exit 3");
    CHECK_EQ(r2.completed_container_statuses[1]->exit_status, -100);
    CHECK_EQ(r2.completed_container_statuses[1]->container_id->id, c2->id);
    ag_sched_resp_clear(&r2.base);
    ag_sched_resp_clear(&r.base);
    CHECK_EQ(hb(s, "h1", NULL, 0, 4, &h), AG_SCHED_OK);
    CHECK_EQ(h.n_containers_to_cleanup, 1); /* the released one */
    ag_sched_resp_clear(&h.base);
    CHECK_EQ(am_alloc(&m, NULL, 0, 5, &r2), 0);
    CHECK_EQ(r2.n_completed_container_statuses, 0);
    ag_sched_resp_clear(&r2.base);
    done(s);
}

TEST(sched_node_labels_exclusive)
{
    ag_sched_queue_conf q[2] = {{"a", 50, 0, 2, 0, "gpu"}, {"b", 50, 0, 0, 0, ""}};
    ag_sched_conf c = conf0();
    c.queues = q;
    c.nqueues = 2;
    ag_sched *s = mk(&c);
    reg_node_l(s, "g1", NULL, 4096, 4, "gpu", 0, NULL);
    reg_node(s, "h1", NULL, 2048, 2, 0);
    am ma = unmanaged(s, (subm){.queue = "a"}, 0);
    /* unlabelled asks never land on the gpu node */
    Ask a[1] = {ask(1, "*", 1024, 4, true)};
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&ma, a, 1, 1, &r), 2);
    CHECK_STR_EQ(r.allocated_containers[0]->node_id->host, "h1");
    CHECK_STR_EQ(r.allocated_containers[1]->node_id->host, "h1");
    ag_sched_resp_clear(&r.base);
    Ask g[1] = {ask(2, "*", 1024, 3, true)};
    g[0].node_label_expression = "gpu";
    CHECK_EQ(am_alloc(&ma, g, 1, 2, &r), 3);
    CHECK_STR_EQ(r.allocated_containers[0]->node_id->host, "g1");
    ag_sched_resp_clear(&r.base);
    /* b may not use gpu */
    am mb = unmanaged(s, (subm){.queue = "b"}, 0);
    CHECK_EQ(alloc_rc(s, mb.app, 1, g, 1, NULL, 0, 0, 3, &r), AG_SCHED_INVALID);
    CHECK_CONTAINS(err, "queue root.b may not use label 'gpu'");
    CHECK_EQ(submit_rc(s, new_app(s), (subm){.queue = "b", .label = "gpu"}, 4), AG_SCHED_INVALID);
    done(s);
}

TEST(sched_preemption)
{
    ag_sched_queue_conf q[2] = {{"a", 50, 100, 2, 0, ""}, {"b", 50, 100, 2, 0, ""}};
    ag_sched_conf c = conf0();
    c.queues = q;
    c.nqueues = 2;
    c.preemption = true;
    c.preemption_wait_ms = 100;
    ag_sched *s = mk(&c);
    char host[16];
    for (int i = 0; i < 10; i++) {
        snprintf(host, sizeof(host), "h%d", i);
        reg_node(s, host, NULL, 1024, 1, 0);
    }
    am ma = unmanaged(s, (subm){.queue = "a"}, 0);
    am mb = unmanaged(s, (subm){.queue = "b", .user = "bob"}, 0);
    Ask a[1] = {ask(1, "*", 1024, 10, true)};
    CHECK_EQ(am_grants(&ma, a, 1, 1), 10); /* b idle: a takes all */
    Ask b[1] = {ask(1, "*", 1024, 3, true)};
    CHECK_EQ(am_grants(&mb, b, 1, 2), 0);
    ag_sched_tick(s, 10);
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    am_alloc(&ma, NULL, 0, 11, &r);
    CHECK(r.preempt != NULL);
    CHECK_EQ(r.preempt->strict_contract->n_container, 3);
    CHECK_EQ(r.preempt->contract->n_container, 3);
    ag_sched_resp_clear(&r.base);
    /* told once */
    am_alloc(&ma, NULL, 0, 12, &r);
    CHECK(r.preempt == NULL);
    ag_sched_resp_clear(&r.base);
    ag_sched_tick(s, 50);
    CHECK_EQ(am_grants(&mb, NULL, 0, 51), 0);
    ag_sched_tick(s, 110); /* the wait is over: killed */
    inv(s);
    am_alloc(&ma, NULL, 0, 111, &r);
    CHECK_EQ(r.n_completed_container_statuses, 3);
    CHECK_EQ(r.completed_container_statuses[0]->exit_status, -102);
    ag_sched_resp_clear(&r.base);
    CHECK_EQ(am_grants(&mb, NULL, 0, 112), 3);
    /* nothing more is marked: b has what it asked */
    ag_sched_tick(s, 200);
    am_alloc(&ma, NULL, 0, 201, &r);
    CHECK(r.preempt == NULL);
    ag_sched_resp_clear(&r.base);
    done(s);
}

TEST(sched_node_reregister_adopts_and_cleans)
{
    ag_sched_conf c = conf0();
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 8192, 8, 0);
    am m = unmanaged(s, (subm){0}, 0);
    Ask a[1] = {ask(1, "*", 1024, 1, true)};
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&m, a, 1, 1, &r), 1);
    int64_t known = r.allocated_containers[0]->id->id;
    ag_sched_resp_clear(&r.base);
    /* the NM restarts and reports the known container, one of the app the
     * RM does not know about (adopted), and one of an unknown app */
    AppId aid = ARGOT__SCHED__V1__APPLICATION_ID__INIT,
          bad = ARGOT__SCHED__V1__APPLICATION_ID__INIT;
    aid.cluster_timestamp = bad.cluster_timestamp = TS;
    aid.id = m.app;
    bad.id = 77;
    AttemptId at = ARGOT__SCHED__V1__APPLICATION_ATTEMPT_ID__INIT, bat = at;
    at.application_id = &aid;
    at.attempt_id = 1;
    bat.application_id = &bad;
    bat.attempt_id = 1;
    Argot__Sched__V1__ContainerId ids3[3] = {ARGOT__SCHED__V1__CONTAINER_ID__INIT,
                                             ARGOT__SCHED__V1__CONTAINER_ID__INIT,
                                             ARGOT__SCHED__V1__CONTAINER_ID__INIT};
    Argot__Sched__V1__NMContainerStatus st[3];
    Argot__Sched__V1__NMContainerStatus *sp[3];
    Argot__Sched__V1__Resource res = ARGOT__SCHED__V1__RESOURCE__INIT;
    res.memory_mb = 2048;
    res.vcores = 1;
    for (int i = 0; i < 3; i++) {
        st[i] = (Argot__Sched__V1__NMContainerStatus)ARGOT__SCHED__V1__NMCONTAINER_STATUS__INIT;
        st[i].container_id = &ids3[i];
        st[i].container_state = ARGOT__SCHED__V1__CONTAINER_STATE__C_RUNNING;
        st[i].resource = &res;
        ids3[i].app_attempt_id = i == 2 ? &bat : &at;
        sp[i] = &st[i];
    }
    ids3[0].id = known;
    ids3[1].id = 50;
    ids3[2].id = 5;
    Argot__Sched__V1__RegisterNodeManagerRequest req =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_REQUEST__INIT;
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    Argot__Sched__V1__Resource nr = ARGOT__SCHED__V1__RESOURCE__INIT;
    nid.host = "h1";
    nid.port = 45454;
    nr.memory_mb = 8192;
    nr.vcores = 8;
    req.node_id = &nid;
    req.resource = &nr;
    req.container_statuses = sp;
    req.n_container_statuses = 3;
    Argot__Sched__V1__RegisterNodeManagerResponse resp =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_RESPONSE__INIT;
    CHECK_EQ(ag_sched_register_node(s, &req, 5, &resp, err, sizeof(err)), AG_SCHED_OK);
    ag_sched_resp_clear(&resp.base);
    Argot__Sched__V1__ApplicationReport *rep = report(s, m.app);
    CHECK_EQ(rep->num_containers, 2);
    CHECK_EQ(rep->used->memory_mb, 1024 + 2048);
    ag_rpc_msg_free(&rep->base);
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, "h1", NULL, 0, 6, &h), AG_SCHED_OK);
    CHECK_EQ(h.n_containers_to_cleanup, 1);
    CHECK_EQ(h.containers_to_cleanup[0]->app_attempt_id->application_id->id, 77);
    ag_sched_resp_clear(&h.base);
    /* new container ids continue past the adopted one */
    Ask b[1] = {ask(1, "*", 1024, 1, true)};
    CHECK_EQ(am_alloc(&m, b, 1, 7, &r), 1);
    CHECK_EQ(r.allocated_containers[0]->id->id, 51);
    ag_sched_resp_clear(&r.base);
    done(s);
}

/* A whole scenario with each allocation failing in turn: every call fails
 * cleanly (EXHAUSTED / NULL) and nothing leaks. */
#define FM_SCHED(expr, want)                                                                       \
    do {                                                                                           \
        int fm_rc_ = (expr);                                                                       \
        if (fm_rc_ != (want) && ag_alloc_failed())                                                 \
            goto out;                                                                              \
        if (fm_rc_ != (want))                                                                      \
            FAIL("%s = %d, want %d: %s", #expr, fm_rc_, (int)(want), err);                         \
    } while (0)

TEST_FM(sched_failmalloc_scenario)
{
    ag_sched_conf c = conf0();
    c.preemption = true;
    c.am_expiry_ms = 1000;
    Argot__Sched__V1__RegisterNodeManagerResponse nresp =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_RESPONSE__INIT;
    Argot__Sched__V1__GetNewApplicationResponse gr =
        ARGOT__SCHED__V1__GET_NEW_APPLICATION_RESPONSE__INIT;
    Argot__Sched__V1__RegisterApplicationMasterResponse rr =
        ARGOT__SCHED__V1__REGISTER_APPLICATION_MASTER_RESPONSE__INIT;
    AllocResp ar = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    Argot__Sched__V1__ApplicationReport *rep = NULL;
    ag_sched_am_launch *l = NULL;
    size_t nl = 0;
    ag_sched *s = ag_sched_new(&c, err, sizeof(err));
    FM_NEW(s);
    Argot__Sched__V1__RegisterNodeManagerRequest req =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_REQUEST__INIT;
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    Argot__Sched__V1__Resource nr = ARGOT__SCHED__V1__RESOURCE__INIT;
    nid.host = "h1";
    nid.port = 45454;
    nr.memory_mb = 8192;
    nr.vcores = 8;
    req.node_id = &nid;
    req.resource = &nr;
    req.rack = "/r1";
    FM_SCHED(ag_sched_register_node(s, &req, 0, &nresp, err, sizeof(err)), AG_SCHED_OK);
    FM_SCHED(ag_sched_new_application(s, 0, &gr, err, sizeof(err)), AG_SCHED_OK);
    FM_SCHED(submit_rc(s, 1, (subm){0}, 0), AG_SCHED_OK);
    FM_SCHED(ag_sched_take_am_launches(s, &l, &nl), 0);
    FM_SCHED(register_am(s, 1, 1, 1, &rr), AG_SCHED_OK);
    Ask a[3] = {ask(1, "h1", 1024, 2, true), ask(1, "/r1", 1024, 2, true),
                ask(1, "*", 1024, 2, true)};
    FM_SCHED(alloc_rc(s, 1, 1, a, 3, NULL, 0, 0, 2, &ar), AG_SCHED_OK);
    FM_SCHED(hb(s, "h1", NULL, 0, 3, &h), AG_SCHED_OK);
    {
        AppId aid = ARGOT__SCHED__V1__APPLICATION_ID__INIT;
        aid.cluster_timestamp = TS;
        aid.id = 1;
        FM_SCHED(ag_sched_app_report(s, &aid, &rep, err, sizeof(err)), AG_SCHED_OK);
        ag_sched_tick(s, 5000);
        FM_SCHED(ag_sched_kill(s, &aid, "bye", 5001, err, sizeof(err)), AG_SCHED_OK);
    }
out:
    ag_rpc_msg_free(rep ? &rep->base : NULL);
    for (size_t i = 0; i < nl; i++) {
        ag_rpc_msg_free(&l[i].node->base);
        ag_rpc_msg_free(&l[i].request->base);
        ag_rpc_msg_free(&l[i].container->base);
    }
    ag_free(l);
    ag_sched_resp_clear(&h.base);
    ag_sched_resp_clear(&ar.base);
    ag_sched_resp_clear(&rr.base);
    ag_sched_resp_clear(&gr.base);
    ag_sched_resp_clear(&nresp.base);
    if (s)
        inv(s);
    ag_sched_free(s);
}

TEST(sched_queues_never_leave_room_idle)
{
    /* one 1 GB node: neither leaf can take a container within its own
     * guarantee, so neither defers to the other */
    ag_sched *s = two_queues(70, 100, 30, 100, 2, 0);
    am ma = unmanaged(s, (subm){.queue = "a"}, 0);
    am mb = unmanaged(s, (subm){.queue = "b", .user = "bob"}, 0);
    Ask a[1] = {ask(1, "*", 1024, 1, true)};
    CHECK_EQ(am_grants(&ma, a, 1, 1), 0);
    CHECK_EQ(am_grants(&mb, a, 1, 1), 0);
    reg_node(s, "h1", NULL, 1024, 1, 2);
    CHECK_EQ(am_grants(&ma, NULL, 0, 3) + am_grants(&mb, NULL, 0, 3), 1);
    done(s);
}

/* The allocate path under failmalloc: a failed allocate changes nothing the
 * AM could miss: retried with the same response id, it delivers every
 * container granted so far, exactly once. */
TEST_FM(sched_failmalloc_allocate_delivers_once)
{
    ag_sched_queue_conf q[2] = {{"a", 50, 100, 2, 0, ""}, {"b", 50, 100, 2, 0, ""}};
    ag_sched_conf c = conf0();
    c.queues = q;
    c.nqueues = 2;
    c.preemption = true;
    c.preemption_wait_ms = 10;
    c.nm_expiry_ms = 1000;
    AllocResp ar = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    Argot__Sched__V1__RegisterNodeManagerResponse nresp =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_RESPONSE__INIT;
    Argot__Sched__V1__GetNewApplicationResponse gr =
        ARGOT__SCHED__V1__GET_NEW_APPLICATION_RESPONSE__INIT;
    Argot__Sched__V1__RegisterApplicationMasterResponse rr =
        ARGOT__SCHED__V1__REGISTER_APPLICATION_MASTER_RESPONSE__INIT;
    ag_sched *s = ag_sched_new(&c, err, sizeof(err));
    FM_NEW(s);
    char host[16];
    for (int i = 0; i < 4; i++) {
        Argot__Sched__V1__RegisterNodeManagerRequest req =
            ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_REQUEST__INIT;
        Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
        Argot__Sched__V1__Resource nr = ARGOT__SCHED__V1__RESOURCE__INIT;
        snprintf(host, sizeof(host), "h%d", i);
        nid.host = host;
        nid.port = 45454;
        nr.memory_mb = 2048;
        nr.vcores = 2;
        req.node_id = &nid;
        req.resource = &nr;
        FM_SCHED(ag_sched_register_node(s, &req, 0, &nresp, err, sizeof(err)), AG_SCHED_OK);
        ag_sched_resp_clear(&nresp.base);
    }
    for (int i = 1; i <= 2; i++) {
        FM_SCHED(ag_sched_new_application(s, 0, &gr, err, sizeof(err)), AG_SCHED_OK);
        ag_sched_resp_clear(&gr.base);
        FM_SCHED(submit_rc(s, i, (subm){.unmanaged = true, .queue = i == 1 ? "a" : "b"}, 0),
                 AG_SCHED_OK);
        FM_SCHED(register_am(s, i, 1, 0, &rr), AG_SCHED_OK);
        ag_sched_resp_clear(&rr.base);
    }
    /* app 1 asks 8 with locality; a failed allocate is retried as is */
    Ask a[3] = {ask(1, "h1", 1024, 2, true), ask(1, "/default-rack", 1024, 8, true),
                ask(1, "*", 1024, 8, true)};
    size_t got = 0;
    int32_t rid = 0;
    for (int tries = 0; tries < 3; tries++) {
        int rc = alloc_rc(s, 1, 1, a, 3, NULL, 0, rid, 1, &ar);
        if (rc == AG_SCHED_OK) {
            got += ar.n_allocated_containers;
            rid = ar.response_id;
            ag_sched_resp_clear(&ar.base);
            break;
        }
        CHECK_EQ(rc, AG_SCHED_EXHAUSTED);
        CHECK(ag_alloc_failed());
    }
    FM_SCHED(alloc_rc(s, 1, 1, NULL, 0, NULL, 0, rid, 2, &ar), AG_SCHED_OK);
    got += ar.n_allocated_containers;
    rid = ar.response_id;
    ag_sched_resp_clear(&ar.base);
    CHECK_EQ(got, 8);
    /* b asks: preemption marks, then kills */
    Ask b[1] = {ask(1, "*", 1024, 2, true)};
    FM_SCHED(alloc_rc(s, 2, 1, b, 1, NULL, 0, 0, 3, &ar), AG_SCHED_OK);
    ag_sched_resp_clear(&ar.base);
    ag_sched_tick(s, 4);
    FM_SCHED(alloc_rc(s, 1, 1, NULL, 0, NULL, 0, rid, 5, &ar), AG_SCHED_OK);
    rid = ar.response_id;
    ag_sched_resp_clear(&ar.base);
    ag_sched_tick(s, 20);
    FM_SCHED(hb(s, "h0", NULL, 0, 21, &h), AG_SCHED_OK);
    ag_sched_resp_clear(&h.base);
    /* h1..h3 go silent */
    ag_sched_tick(s, 1000);
    FM_SCHED(alloc_rc(s, 1, 1, NULL, 0, NULL, 0, rid, 1001, &ar), AG_SCHED_OK);
    ag_sched_resp_clear(&ar.base);
out:
    ag_sched_resp_clear(&h.base);
    ag_sched_resp_clear(&ar.base);
    ag_sched_resp_clear(&rr.base);
    ag_sched_resp_clear(&gr.base);
    ag_sched_resp_clear(&nresp.base);
    if (s)
        inv(s);
    ag_sched_free(s);
}

TEST(sched_preemption_marks_lifted_when_no_longer_needed)
{
    ag_sched_queue_conf q[2] = {{"a", 50, 100, 2, 0, ""}, {"b", 50, 100, 2, 0, ""}};
    ag_sched_conf c = conf0();
    c.queues = q;
    c.nqueues = 2;
    c.preemption = true;
    c.preemption_wait_ms = 100;
    ag_sched *s = mk(&c);
    char host[16];
    for (int i = 0; i < 4; i++) {
        snprintf(host, sizeof(host), "h%d", i);
        reg_node(s, host, NULL, 1024, 1, 0);
    }
    am ma = unmanaged(s, (subm){.queue = "a"}, 0);
    am mb = unmanaged(s, (subm){.queue = "b", .user = "bob"}, 0);
    Ask a[1] = {ask(1, "*", 1024, 4, true)};
    CHECK_EQ(am_grants(&ma, a, 1, 1), 4);
    Ask b[1] = {ask(1, "*", 1024, 1, true)};
    CHECK_EQ(am_grants(&mb, b, 1, 2), 0);
    ag_sched_tick(s, 10);
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    am_alloc(&ma, NULL, 0, 11, &r);
    CHECK(r.preempt != NULL);
    CHECK_EQ(r.preempt->strict_contract->n_container, 1);
    ag_sched_resp_clear(&r.base);
    /* b no longer wants it */
    Ask b0[1] = {ask(1, "*", 1024, 0, true)};
    CHECK_EQ(am_grants(&mb, b0, 1, 12), 0);
    ag_sched_tick(s, 200);
    am_alloc(&ma, NULL, 0, 201, &r);
    CHECK_EQ(r.n_completed_container_statuses, 0);
    CHECK(r.preempt == NULL);
    ag_sched_resp_clear(&r.base);
    done(s);
}

TEST(sched_freed_room_goes_fifo_within_a_leaf)
{
    ag_sched_conf c = conf0();
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 2048, 2, 0);
    am holder = unmanaged(s, (subm){0}, 0);
    Ask two[1] = {ask(1, "*", 1024, 2, true)};
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&holder, two, 1, 1, &r), 2);
    Argot__Sched__V1__ContainerId *rel0 = r.allocated_containers[0]->id;
    Argot__Sched__V1__ContainerId *rel1 = r.allocated_containers[1]->id;
    am first = unmanaged(s, (subm){0}, 2);
    am second = unmanaged(s, (subm){0}, 3);
    Ask one[1] = {ask(1, "*", 1024, 1, true)};
    CHECK_EQ(am_grants(&first, one, 1, 4), 0);
    CHECK_EQ(am_grants(&second, one, 1, 5), 0);
    am urgent = unmanaged(s, (subm){.prio = 5}, 6);
    CHECK_EQ(am_grants(&urgent, one, 1, 7), 0);
    /* a release: the room goes to the highest priority application, then
     * to the earliest, whoever calls next */
    AllocResp r2 = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    Argot__Sched__V1__ContainerId *rel[1] = {rel0};
    CHECK_EQ(alloc_rc(s, holder.app, 1, NULL, 0, rel, 1, holder.rid, 8, &r2), AG_SCHED_OK);
    holder.rid = r2.response_id;
    ag_sched_resp_clear(&r2.base);
    CHECK_EQ(am_grants(&second, NULL, 0, 9), 0);
    CHECK_EQ(am_grants(&first, NULL, 0, 9), 0);
    CHECK_EQ(am_grants(&urgent, NULL, 0, 9), 1);
    rel[0] = rel1;
    CHECK_EQ(alloc_rc(s, holder.app, 1, NULL, 0, rel, 1, holder.rid, 10, &r2), AG_SCHED_OK);
    ag_sched_resp_clear(&r2.base);
    ag_sched_resp_clear(&r.base);
    CHECK_EQ(am_grants(&second, NULL, 0, 11), 0);
    CHECK_EQ(am_grants(&first, NULL, 0, 11), 1);
    done(s);
}

TEST(sched_blacklist_and_unhealthy_nodes)
{
    ag_sched_conf c = conf0();
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 2048, 2, 0);
    reg_node(s, "h2", NULL, 2048, 2, 0);
    am m = unmanaged(s, (subm){0}, 0);
    ids x;
    ids_set(&x, m.app, 1);
    Argot__Sched__V1__AllocateRequest req = ARGOT__SCHED__V1__ALLOCATE_REQUEST__INIT;
    Argot__Sched__V1__ResourceBlacklistRequest bl =
        ARGOT__SCHED__V1__RESOURCE_BLACKLIST_REQUEST__INIT;
    char *add[1] = {"h1"};
    bl.blacklist_additions = add;
    bl.n_blacklist_additions = 1;
    Ask a[1] = {ask(1, "*", 1024, 3, true)};
    Ask *ap[1] = {&a[0]};
    req.ask = ap;
    req.n_ask = 1;
    req.blacklist_request = &bl;
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(ag_sched_allocate(s, &x.at, &req, 1, &r, err, sizeof(err)), AG_SCHED_OK);
    m.rid = r.response_id;
    CHECK_EQ(r.n_allocated_containers, 2);
    for (size_t i = 0; i < r.n_allocated_containers; i++)
        CHECK_STR_EQ(r.allocated_containers[i]->node_id->host, "h2");
    ag_sched_resp_clear(&r.base);
    /* h1 reports itself unhealthy: lifting the blacklist does not help */
    Argot__Sched__V1__NodeHeartbeatRequest hr = ARGOT__SCHED__V1__NODE_HEARTBEAT_REQUEST__INIT;
    Argot__Sched__V1__NodeStatus ns = ARGOT__SCHED__V1__NODE_STATUS__INIT;
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    Argot__Sched__V1__NodeHealthStatus health = ARGOT__SCHED__V1__NODE_HEALTH_STATUS__INIT;
    nid.host = "h1";
    nid.port = 45454;
    ns.node_id = &nid;
    health.is_node_healthy = false;
    health.health_report = "disk full";
    ns.node_health_status = &health;
    hr.node_status = &ns;
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(ag_sched_node_heartbeat(s, &hr, 2, &h, err, sizeof(err)), AG_SCHED_OK);
    ag_sched_resp_clear(&h.base);
    char *rm[1] = {"h1"};
    bl.blacklist_additions = NULL;
    bl.n_blacklist_additions = 0;
    bl.blacklist_removals = rm;
    bl.n_blacklist_removals = 1;
    req.ask = NULL;
    req.n_ask = 0;
    req.response_id = m.rid;
    CHECK_EQ(ag_sched_allocate(s, &x.at, &req, 3, &r, err, sizeof(err)), AG_SCHED_OK);
    m.rid = r.response_id;
    CHECK_EQ(r.n_allocated_containers, 0);
    CHECK_EQ(r.n_updated_nodes, 1);
    CHECK_EQ(r.updated_nodes[0]->node_state, ARGOT__SCHED__V1__NODE_STATE__NS_UNHEALTHY);
    CHECK_STR_EQ(r.updated_nodes[0]->health_report, "disk full");
    ag_sched_resp_clear(&r.base);
    /* healthy again: the third container lands on h1 */
    health.is_node_healthy = true;
    CHECK_EQ(ag_sched_node_heartbeat(s, &hr, 4, &h, err, sizeof(err)), AG_SCHED_OK);
    ag_sched_resp_clear(&h.base);
    CHECK_EQ(am_alloc(&m, NULL, 0, 5, &r), 1);
    CHECK_STR_EQ(r.allocated_containers[0]->node_id->host, "h1");
    ag_sched_resp_clear(&r.base);
    done(s);
}

TEST(sched_am_container_exit_and_launch_failure)
{
    ag_sched_conf c = conf0();
    c.max_app_attempts = 3;
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 4096, 4, 0);
    int32_t id = submit(s, (subm){0}, 0);
    ag_sched_am_launch *l;
    size_t n;
    CHECK_OK(ag_sched_take_am_launches(s, &l, &n));
    CHECK_EQ(n, 1);
    /* the NM says the AM exited with 1 */
    Argot__Sched__V1__ContainerStatus st = ARGOT__SCHED__V1__CONTAINER_STATUS__INIT;
    st.container_id = l[0].container;
    st.state = ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE;
    st.exit_status = 1;
    st.diagnostics = "boom";
    Argot__Sched__V1__ContainerStatus *sts[1] = {&st};
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, "h1", sts, 1, 1, &h), AG_SCHED_OK);
    ag_sched_resp_clear(&h.base);
    free_launches(l, n);
    Argot__Sched__V1__ApplicationReport *r = report(s, id);
    CHECK_EQ(r->current_application_attempt_id->attempt_id, 2);
    CHECK_CONTAINS(r->diagnostics, "AM container exited with status 1: boom");
    ag_rpc_msg_free(&r->base);
    /* attempt 2's AM cannot be started: attempt 3 */
    CHECK_OK(ag_sched_take_am_launches(s, &l, &n));
    CHECK_EQ(n, 1);
    CHECK_EQ(l[0].container->app_attempt_id->attempt_id, 2);
    ag_sched_am_launch_failed(s, l[0].container, "connection refused", 2);
    free_launches(l, n);
    r = report(s, id);
    CHECK_EQ(r->current_application_attempt_id->attempt_id, 3);
    CHECK_CONTAINS(r->diagnostics, "AM container could not start: connection refused");
    CHECK_EQ(r->yarn_application_state, ARGOT__SCHED__V1__YARN_APPLICATION_STATE__ACCEPTED);
    ag_rpc_msg_free(&r->base);
    CHECK_EQ(count_launches(s), 1);
    done(s);
}

TEST(sched_locality_delay_counts_heartbeat_offers)
{
    ag_sched_conf c = conf0();
    c.node_locality_delay = 3;
    c.rack_locality_delay = 10;
    ag_sched *s = mk(&c);
    reg_node(s, "h1", "/r1", 512, 1, 0); /* never has room */
    reg_node(s, "h2", "/r1", 4096, 4, 0);
    am m = unmanaged(s, (subm){0}, 0);
    Ask a[3] = {ask(1, "h1", 1024, 1, true), ask(1, "/r1", 1024, 1, true),
                ask(1, "*", 1024, 1, true)};
    CHECK_EQ(am_grants(&m, a, 3, 1), 0); /* miss 1 */
    hb_ok(s, "h2", 2);                   /* miss 2: h2 offered, not local */
    hb_ok(s, "h2", 3);                   /* miss 3 */
    CHECK_EQ(am_grants(&m, NULL, 0, 4), 1);
    done(s);
}

TEST(sched_lost_am_node_starts_next_attempt)
{
    ag_sched_conf c = conf0();
    c.nm_expiry_ms = 100;
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 1024, 1, 0);
    int32_t id = submit(s, (subm){0}, 0);
    CHECK_EQ(count_launches(s), 1);
    register_ok(s, id, 1, 1);
    reg_node(s, "h2", NULL, 1024, 1, 50);
    ag_sched_tick(s, 100); /* h1 lost: its AM with it */
    Argot__Sched__V1__ApplicationReport *r = report(s, id);
    CHECK_EQ(r->current_application_attempt_id->attempt_id, 2);
    CHECK_CONTAINS(r->diagnostics, "container lost on node h1:45454");
    ag_rpc_msg_free(&r->base);
    ag_sched_am_launch *l;
    size_t n;
    CHECK_OK(ag_sched_take_am_launches(s, &l, &n));
    CHECK_EQ(n, 1);
    CHECK_STR_EQ(l[0].node->host, "h2");
    free_launches(l, n);
    done(s);
}

/* ---- recovery (work-preserving RM restart) ---- */

/* A submission context as submit_rc builds it, in *ctx (borrowing the
 * storage in *st). */
typedef struct ctx_store {
    Argot__Sched__V1__ApplicationSubmissionContext ctx;
    AppId aid;
    Argot__Sched__V1__Resource r;
    Argot__Sched__V1__ContainerLaunchContext clc;
    char *cmd[1];
} ctx_store;

static Argot__Sched__V1__ApplicationSubmissionContext *ctx_of(ctx_store *x, int64_t ts, int32_t id,
                                                              const char *queue, int max_attempts)
{
    x->ctx = (Argot__Sched__V1__ApplicationSubmissionContext)
        ARGOT__SCHED__V1__APPLICATION_SUBMISSION_CONTEXT__INIT;
    x->aid = (AppId)ARGOT__SCHED__V1__APPLICATION_ID__INIT;
    x->r = (Argot__Sched__V1__Resource)ARGOT__SCHED__V1__RESOURCE__INIT;
    x->clc = (Argot__Sched__V1__ContainerLaunchContext)
        ARGOT__SCHED__V1__CONTAINER_LAUNCH_CONTEXT__INIT;
    x->cmd[0] = "my-am";
    x->clc.command = x->cmd;
    x->clc.n_command = 1;
    x->aid.cluster_timestamp = ts;
    x->aid.id = id;
    x->r.memory_mb = 1024;
    x->r.vcores = 1;
    x->ctx.application_id = &x->aid;
    x->ctx.application_name = "test";
    x->ctx.queue = (char *)queue;
    x->ctx.user = "alice";
    x->ctx.resource = &x->r;
    x->ctx.am_container_spec = &x->clc;
    x->ctx.max_app_attempts = max_attempts;
    return &x->ctx;
}

/* Registers host with the given container statuses (ids of app's attempt,
 * running or completed with status 0): the core's status. */
static int reg_node_with_rc(ag_sched *s, const char *host, int32_t app, int32_t attempt,
                            const int64_t *cids, const bool *complete, size_t n, uint64_t now)
{
    AppId aid = ARGOT__SCHED__V1__APPLICATION_ID__INIT;
    AttemptId at = ARGOT__SCHED__V1__APPLICATION_ATTEMPT_ID__INIT;
    aid.cluster_timestamp = TS;
    aid.id = app;
    at.application_id = &aid;
    at.attempt_id = attempt;
    Argot__Sched__V1__ContainerId cids_pb[8];
    Argot__Sched__V1__NMContainerStatus st[8], *sp[8];
    Argot__Sched__V1__Resource res = ARGOT__SCHED__V1__RESOURCE__INIT;
    res.memory_mb = 1024;
    res.vcores = 1;
    for (size_t i = 0; i < n; i++) {
        cids_pb[i] = (Argot__Sched__V1__ContainerId)ARGOT__SCHED__V1__CONTAINER_ID__INIT;
        cids_pb[i].app_attempt_id = &at;
        cids_pb[i].id = cids[i];
        st[i] = (Argot__Sched__V1__NMContainerStatus)ARGOT__SCHED__V1__NMCONTAINER_STATUS__INIT;
        st[i].container_id = &cids_pb[i];
        st[i].container_state = complete[i] ? ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE
                                            : ARGOT__SCHED__V1__CONTAINER_STATE__C_RUNNING;
        st[i].resource = &res;
        st[i].container_exit_status = 0;
        sp[i] = &st[i];
    }
    Argot__Sched__V1__RegisterNodeManagerRequest req =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_REQUEST__INIT;
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    Argot__Sched__V1__Resource nr = ARGOT__SCHED__V1__RESOURCE__INIT;
    nid.host = (char *)host;
    nid.port = 45454;
    nr.memory_mb = 8192;
    nr.vcores = 8;
    req.node_id = &nid;
    req.resource = &nr;
    req.container_statuses = sp;
    req.n_container_statuses = n;
    Argot__Sched__V1__RegisterNodeManagerResponse resp =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_RESPONSE__INIT;
    int rc = ag_sched_register_node(s, &req, now, &resp, err, sizeof(err));
    ag_sched_resp_clear(&resp.base);
    return rc;
}

static void reg_node_with(ag_sched *s, const char *host, int32_t app, int32_t attempt,
                          const int64_t *cids, const bool *complete, size_t n, uint64_t now)
{
    int rc = reg_node_with_rc(s, host, app, attempt, cids, complete, n, now);
    if (rc != AG_SCHED_OK)
        FAIL("register node %s: %d %s", host, rc, err);
}

TEST(sched_recover_app_resyncs_adopts_and_continues)
{
    ag_sched_conf c = conf0();
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 8192, 8, 0);
    reg_node(s, "h2", NULL, 8192, 8, 0);
    int32_t id = submit(s, (subm){0}, 0);
    ag_sched_am_launch *l;
    size_t n;
    CHECK_OK(ag_sched_take_am_launches(s, &l, &n));
    CHECK_EQ(n, 1);
    CHECK_EQ(l[0].container->id, 1);
    const char *am_host = l[0].node->host;
    char other[8];
    snprintf(other, sizeof(other), "%s", strcmp(am_host, "h1") == 0 ? "h2" : "h1");
    char am_node[8];
    snprintf(am_node, sizeof(am_node), "%s", am_host);
    uint8_t *tid, *tpw;
    size_t tidl, tpwl;
    CHECK_OK(ag__sched_token_parse(
        env_get(l[0].request->start_container_request[0]->container_launch_context,
                "ARGOT_AMRM_TOKEN"),
        &tid, &tidl, &tpw, &tpwl));
    free_launches(l, n);
    register_ok(s, id, 1, 1);
    am m = {s, id, 1, 0};
    Ask a[1] = {ask(1, "*", 1024, 2, true)};
    CHECK_EQ(am_grants(&m, a, 1, 2), 2);
    /* what rm.c would have stored */
    ag_sched_app_state as;
    CHECK_EQ(ag_sched_get_app_state(s, id, &as), AG_SCHED_OK);
    CHECK_EQ(as.attempt, 1);
    CHECK_EQ(as.am_container, 1);
    CHECK(!as.attempt_ended);
    CHECK_EQ(as.state, ARGOT__SCHED__V1__YARN_APPLICATION_STATE__RUNNING);
    CHECK_EQ(ag_sched_get_app_state(s, id + 1, &as), AG_SCHED_NOT_FOUND);
    CHECK_EQ(ag_sched_last_app_id(s), id);
    ag_sched_keys keys;
    ag_sched_export_keys(s, &keys);
    inv(s);
    ag_sched_free(s);

    /* the restarted RM */
    s = mk(&c);
    AttemptId *at = NULL;
    CHECK_EQ(ag_sched_amrm_check(s, tid, tidl, tpw, tpwl, &at, err, sizeof(err)),
             AG_SCHED_DENIED); /* other keys until imported */
    ag_sched_import_keys(s, &keys);
    ctx_store cs;
    ag_sched_recovery r = {.attempt = 1, .am_container = 1, .registered = true,
                           .start_ms = TS + 5, .next_container = 100};
    CHECK_EQ(ag_sched_recover_app(s, ctx_of(&cs, TS + 1, id, "", 0), &r, 10, err, sizeof(err)),
             AG_SCHED_INVALID);
    CHECK_EQ(ag_sched_recover_app(s, ctx_of(&cs, TS, id, "", 0), &r, 10, err, sizeof(err)),
             AG_SCHED_OK);
    CHECK_EQ(ag_sched_recover_app(s, ctx_of(&cs, TS, id, "", 0), &r, 10, err, sizeof(err)),
             AG_SCHED_EXISTS);
    CHECK_EQ(ag_sched_last_app_id(s), id);
    CHECK_EQ(new_app(s), id + 1); /* ids continue */
    CHECK_EQ(app_state(s, id), ARGOT__SCHED__V1__YARN_APPLICATION_STATE__RUNNING);
    Argot__Sched__V1__ApplicationReport *rep = report(s, id);
    CHECK_EQ(rep->start_time, TS + 5);
    ag_rpc_msg_free(&rep->base);
    /* the old AMRM token is valid; allocate says register again */
    CHECK_EQ(ag_sched_amrm_check(s, tid, tidl, tpw, tpwl, &at, err, sizeof(err)), AG_SCHED_OK);
    CHECK_EQ(at->attempt_id, 1);
    ag_rpc_msg_free(&at->base);
    ag_free(tid);
    ag_free(tpw);
    AllocResp ar = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(alloc_rc(s, id, 1, NULL, 0, NULL, 0, 1, 11, &ar), AG_SCHED_NOT_REGISTERED);
    CHECK_CONTAINS(err, "ApplicationMasterNotRegistered");
    /* the nodes come back: the AM and container 2 run on one node,
     * container 3 ended on the other while the RM was away; no AM is
     * launched for the recovered attempt */
    int64_t c1[2] = {1, 2}, c2[1] = {3};
    bool run2[2] = {false, false}, done1[1] = {true};
    reg_node_with(s, am_node, id, 1, c1, run2, 2, 12);
    reg_node_with(s, other, id, 1, c2, done1, 1, 12);
    ag_sched_tick(s, 13);
    CHECK_EQ(count_launches(s), 0);
    rep = report(s, id);
    CHECK_EQ(rep->num_containers, 2);
    ag_rpc_msg_free(&rep->base);
    inv(s);
    /* the AM registers again: accepted (a change for the store), and hears
     * of container 3's end */
    uint64_t changes = ag_sched_changes(s);
    register_ok(s, id, 1, 14);
    CHECK(ag_sched_changes(s) > changes);
    changes = ag_sched_changes(s);
    m = (am){s, id, 1, 0};
    Ask b[1] = {ask(1, "*", 1024, 1, true)};
    CHECK_EQ(am_alloc(&m, b, 1, 15, &ar), 1);
    CHECK(ag_sched_changes(s) == changes); /* grants are not stored */
    CHECK_EQ(ar.n_completed_container_statuses, 1);
    CHECK_EQ(ar.completed_container_statuses[0]->container_id->id, 3);
    CHECK_EQ(ar.allocated_containers[0]->id->id, 100); /* past every earlier id */
    ag_sched_resp_clear(&ar.base);
    /* the adopted AM container is the attempt's: its end starts attempt 2 */
    Argot__Sched__V1__ContainerStatus cst = ARGOT__SCHED__V1__CONTAINER_STATUS__INIT;
    Argot__Sched__V1__ContainerId cid = ARGOT__SCHED__V1__CONTAINER_ID__INIT;
    ids x;
    ids_set(&x, id, 1);
    cid.app_attempt_id = &x.at;
    cid.id = 1;
    cst.container_id = &cid;
    cst.state = ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE;
    cst.exit_status = 1;
    Argot__Sched__V1__ContainerStatus *csp[1] = {&cst};
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, am_node, csp, 1, 16, &h), AG_SCHED_OK);
    ag_sched_resp_clear(&h.base);
    CHECK_EQ(ag_sched_get_app_state(s, id, &as), AG_SCHED_OK);
    CHECK_EQ(as.attempt, 2);
    CHECK(ag_sched_changes(s) > changes);
    ag_sched_tick(s, 17);
    CHECK_EQ(count_launches(s), 1);
    CHECK_EQ(ag_sched_get_app_state(s, id, &as), AG_SCHED_OK);
    CHECK(as.am_container >= 101);
    done(s);
}

TEST(sched_recover_app_am_expiry_waiting_and_errors)
{
    ag_sched_conf c = conf0();
    c.am_expiry_ms = 1000;
    ag_sched *s = mk(&c);
    ctx_store cs;
    /* an attempt whose AM never comes back: am_expiry starts the next one,
     * which waits for an AM container until a node registers */
    ag_sched_recovery r = {.attempt = 1, .am_container = 1};
    CHECK_EQ(ag_sched_recover_app(s, ctx_of(&cs, TS, 3, "", 0), &r, 0, err, sizeof(err)),
             AG_SCHED_OK);
    CHECK_EQ(ag_sched_last_app_id(s), 3);
    CHECK_EQ(app_state(s, 3), ARGOT__SCHED__V1__YARN_APPLICATION_STATE__ACCEPTED);
    ag_sched_tick(s, 500);
    ag_sched_app_state as;
    CHECK_EQ(ag_sched_get_app_state(s, 3, &as), AG_SCHED_OK);
    CHECK_EQ(as.attempt, 1);
    ag_sched_tick(s, 1001);
    CHECK_EQ(ag_sched_get_app_state(s, 3, &as), AG_SCHED_OK);
    CHECK_EQ(as.attempt, 2);
    CHECK_EQ(as.am_container, 0);
    CHECK_EQ(count_launches(s), 0);
    reg_node(s, "h1", NULL, 8192, 8, 1002);
    CHECK_EQ(count_launches(s), 1);
    CHECK_EQ(ag_sched_get_app_state(s, 3, &as), AG_SCHED_OK);
    CHECK_EQ(as.am_container, 2); /* past the recovered AM's id */
    /* no AM container was placed before the restart: it gets one now
     * (room for a second AM within max_am_share) */
    reg_node(s, "h2", NULL, 65536, 64, 1003);
    r = (ag_sched_recovery){.attempt = 1};
    CHECK_EQ(ag_sched_recover_app(s, ctx_of(&cs, TS, 1, "", 0), &r, 1003, err, sizeof(err)),
             AG_SCHED_OK);
    CHECK_EQ(count_launches(s), 1);
    /* its last attempt had ended: the application fails */
    r = (ag_sched_recovery){.attempt = 2, .attempt_ended = true, .am_container = 4};
    CHECK_EQ(ag_sched_recover_app(s, ctx_of(&cs, TS, 2, "", 2), &r, 1004, err, sizeof(err)),
             AG_SCHED_OK);
    CHECK_EQ(app_state(s, 2), ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FAILED);
    CHECK_EQ(ag_sched_get_app_state(s, 2, &as), AG_SCHED_OK);
    CHECK(as.attempt_ended);
    /* errors */
    CHECK_EQ(ag_sched_recover_app(s, ctx_of(&cs, TS, 4, "nope", 0), &r, 1005, err, sizeof(err)),
             AG_SCHED_NOT_FOUND);
    r.attempt = 0;
    CHECK_EQ(ag_sched_recover_app(s, ctx_of(&cs, TS, 5, "", 0), &r, 1005, err, sizeof(err)),
             AG_SCHED_INVALID);
    done(s);
}

/* Recovery under failmalloc: recover, adoption at the node's registration
 * (the AM container and a completion), the AM's registration. */
TEST_FM(sched_failmalloc_recover)
{
    ag_sched_conf c = conf0();
    Argot__Sched__V1__RegisterApplicationMasterResponse rr =
        ARGOT__SCHED__V1__REGISTER_APPLICATION_MASTER_RESPONSE__INIT;
    AllocResp ar = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    ag_sched *s = ag_sched_new(&c, err, sizeof(err));
    FM_NEW(s);
    ctx_store cs;
    ag_sched_recovery r = {.attempt = 1, .am_container = 1, .registered = true};
    FM_SCHED(ag_sched_recover_app(s, ctx_of(&cs, TS, 1, "", 0), &r, 0, err, sizeof(err)),
             AG_SCHED_OK);
    int64_t cids[3] = {1, 2, 3};
    bool complete[3] = {false, false, true};
    FM_SCHED(reg_node_with_rc(s, "h1", 1, 1, cids, complete, 3, 1), AG_SCHED_OK);
    FM_SCHED(register_am(s, 1, 1, 2, &rr), AG_SCHED_OK);
    FM_SCHED(alloc_rc(s, 1, 1, NULL, 0, NULL, 0, 0, 3, &ar), AG_SCHED_OK);
out:
    ag_sched_resp_clear(&ar.base);
    ag_sched_resp_clear(&rr.base);
    if (s)
        inv(s);
    ag_sched_free(s);
}

/* Gap: a container its NM never reports running is taken back after
 * container_alloc_expiry_ms (YARN's ContainerAllocationExpirer): room
 * freed, the AM told once through completed containers, its node told to
 * stop it should it start late; one reported RUNNING in time stays; an
 * AM container that never runs fails its attempt. */
TEST(sched_unlaunched_containers_expire)
{
    ag_sched_conf c = conf0();
    c.container_alloc_expiry_ms = 1000;
    c.max_app_attempts = 2;
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 8192, 8, 0);
    am m = unmanaged(s, (subm){0}, 0);
    Ask a[1] = {ask(1, "*", 1024, 2, true)};
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&m, a, 1, 100, &r), 2);
    Argot__Sched__V1__ContainerId *c1 = r.allocated_containers[0]->id;
    Argot__Sched__V1__ContainerId *c2 = r.allocated_containers[1]->id;
    inv(s);
    /* c1 runs at 600 ms; c2 is never reported */
    Argot__Sched__V1__ContainerStatus st = ARGOT__SCHED__V1__CONTAINER_STATUS__INIT;
    st.container_id = c1;
    st.state = ARGOT__SCHED__V1__CONTAINER_STATE__C_RUNNING;
    Argot__Sched__V1__ContainerStatus *sts[1] = {&st};
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, "h1", sts, 1, 600, &h), AG_SCHED_OK);
    ag_sched_resp_clear(&h.base);
    inv(s);
    /* one ms short of the expiry: nothing happens */
    ag_sched_tick(s, 1099);
    inv(s);
    Argot__Sched__V1__GetClusterMetricsResponse mr =
        ARGOT__SCHED__V1__GET_CLUSTER_METRICS_RESPONSE__INIT;
    CHECK_EQ(ag_sched_metrics(s, &mr), AG_SCHED_OK);
    CHECK_EQ(mr.cluster_metrics->allocated->memory_mb, 2048);
    ag_sched_resp_clear(&mr.base);
    /* at the expiry c2 is reclaimed */
    ag_sched_tick(s, 1100);
    inv(s);
    CHECK_EQ(ag_sched_metrics(s, &mr), AG_SCHED_OK);
    CHECK_EQ(mr.cluster_metrics->allocated->memory_mb, 1024);
    ag_sched_resp_clear(&mr.base);
    AllocResp r2 = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&m, NULL, 0, 1200, &r2), 0);
    CHECK_EQ(r2.n_completed_container_statuses, 1);
    CHECK_EQ(r2.completed_container_statuses[0]->container_id->id, c2->id);
    CHECK_EQ(r2.completed_container_statuses[0]->exit_status, -100);
    CHECK_CONTAINS(r2.completed_container_statuses[0]->diagnostics, "container expired");
    CHECK_CONTAINS(r2.completed_container_statuses[0]->diagnostics, "container_alloc_expiry_ms");
    ag_sched_resp_clear(&r2.base);
    /* its node is told to stop it, should it have started after all */
    CHECK_EQ(hb(s, "h1", sts, 1, 1300, &h), AG_SCHED_OK);
    CHECK_EQ(h.n_containers_to_cleanup, 1);
    CHECK_EQ(h.containers_to_cleanup[0]->id, c2->id);
    ag_sched_resp_clear(&h.base);
    /* the running one stays, long after */
    ag_sched_tick(s, 100000);
    inv(s);
    CHECK_EQ(am_alloc(&m, NULL, 0, 100001, &r2), 0);
    CHECK_EQ(r2.n_completed_container_statuses, 0);
    ag_sched_resp_clear(&r2.base);
    ag_sched_resp_clear(&r.base);

    /* a managed AM whose container never runs: the attempt fails, the next
     * one gets a new AM container */
    int32_t id = submit(s, (subm){0}, 200000);
    CHECK_EQ(count_launches(s), 1);
    ag_sched_tick(s, 200999);
    Argot__Sched__V1__ApplicationReport *rep = report(s, id);
    CHECK_EQ(rep->current_application_attempt_id->attempt_id, 1);
    ag_rpc_msg_free(&rep->base);
    ag_sched_tick(s, 201000);
    inv(s);
    rep = report(s, id);
    CHECK_EQ(rep->current_application_attempt_id->attempt_id, 2);
    CHECK_CONTAINS(rep->diagnostics, "container expired");
    ag_rpc_msg_free(&rep->base);
    CHECK_EQ(count_launches(s), 1);
    done(s);
}

/* The NM token's identifier (a ContainerTokenIdentifier), unpacked; checks
 * its password under the NM-token key k. */
static Argot__Sched__V1__ContainerTokenIdentifier *
nm_token_ident(const Argot__Sched__V1__NMToken *t, const ag_sched_key *k)
{
    CHECK(t->token != NULL);
    CHECK_STR_EQ(t->token->kind, "NMToken");
    CHECK(ag__sched_mac_ok(k, t->token->identifier.data, t->token->identifier.len,
                           t->token->password.data, t->token->password.len));
    Argot__Sched__V1__ContainerTokenIdentifier *ti = NULL;
    CHECK_OK(ag_rpc_msg_unpack(&argot__sched__v1__container_token_identifier__descriptor,
                               t->token->identifier.data, t->token->identifier.len,
                               (ProtobufCMessage **)&ti));
    return ti;
}

/* NM tokens: one per node with the attempt's first container there, naming
 * the attempt and the node, expiring half key_roll_interval_ms after issue,
 * signed with the NM-token key the NMs get at registration; renewed for
 * every node the attempt has containers on once half their life passed;
 * ag_sched_nm_token_text gives the RM's launcher the AM container's. */
TEST(sched_nm_tokens_bind_attempt_node_expiry_and_renew)
{
    ag_sched_conf c = conf0();
    c.key_roll_interval_ms = 10000;
    ag_sched *s = mk(&c);
    Argot__Sched__V1__RegisterNodeManagerRequest req =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_REQUEST__INIT;
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    Argot__Sched__V1__Resource res = ARGOT__SCHED__V1__RESOURCE__INIT;
    nid.host = "h1";
    nid.port = 45454;
    res.memory_mb = 2048;
    res.vcores = 2;
    req.node_id = &nid;
    req.resource = &res;
    Argot__Sched__V1__RegisterNodeManagerResponse rr =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_RESPONSE__INIT;
    CHECK_EQ(ag_sched_register_node(s, &req, 0, &rr, err, sizeof(err)), AG_SCHED_OK);
    CHECK(rr.nm_token_master_key != NULL);
    ag_sched_key nk = {.id = rr.nm_token_master_key->key_id};
    CHECK_EQ(rr.nm_token_master_key->bytes.len, AG_SCHED_KEY_BYTES);
    memcpy(nk.bytes, rr.nm_token_master_key->bytes.data, AG_SCHED_KEY_BYTES);
    ag_sched_resp_clear(&rr.base);
    reg_node(s, "h2", NULL, 2048, 2, 0);

    am m = unmanaged(s, (subm){0}, 0);
    Ask a[1] = {ask(1, "*", 1024, 3, true)};
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&m, a, 1, 1000, &r), 3);
    CHECK_EQ(r.n_nm_tokens, 2); /* one per node, not per container */
    for (size_t i = 0; i < r.n_nm_tokens; i++) {
        Argot__Sched__V1__ContainerTokenIdentifier *ti = nm_token_ident(r.nm_tokens[i], &nk);
        CHECK_EQ(ti->container_id->id, 0);
        CHECK_EQ(ti->container_id->app_attempt_id->application_id->id, m.app);
        CHECK_EQ(ti->container_id->app_attempt_id->attempt_id, 1);
        CHECK_STR_EQ(ti->node_id->host, r.nm_tokens[i]->node_id->host);
        CHECK_EQ(ti->expiry_time, TS + 1000 + 5000);
        CHECK_EQ(ti->master_key_id, nk.id);
        ag_rpc_msg_free(&ti->base);
    }
    ag_sched_resp_clear(&r.base);
    /* nothing new: no tokens; before half the life, none either */
    AllocResp r2 = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&m, NULL, 0, 3499, &r2), 0);
    CHECK_EQ(r2.n_nm_tokens, 0);
    ag_sched_resp_clear(&r2.base);
    /* half the life: fresh tokens for both nodes, then none until the next half */
    CHECK_EQ(am_alloc(&m, NULL, 0, 3500, &r2), 0);
    CHECK_EQ(r2.n_nm_tokens, 2);
    for (size_t i = 0; i < r2.n_nm_tokens; i++) {
        Argot__Sched__V1__ContainerTokenIdentifier *ti = nm_token_ident(r2.nm_tokens[i], &nk);
        CHECK_EQ(ti->expiry_time, TS + 3500 + 5000);
        ag_rpc_msg_free(&ti->base);
    }
    ag_sched_resp_clear(&r2.base);
    CHECK_EQ(am_alloc(&m, NULL, 0, 4000, &r2), 0);
    CHECK_EQ(r2.n_nm_tokens, 0);
    ag_sched_resp_clear(&r2.base);
    inv(s);

    /* the RM's launcher gets the AM container's token for its node */
    int32_t id = submit(s, (subm){.am_mb = 1024}, 8000);
    ag_sched_am_launch *l;
    size_t n;
    CHECK_OK(ag_sched_take_am_launches(s, &l, &n));
    CHECK_EQ(n, 1);
    char text[2048];
    CHECK_EQ(ag_sched_nm_token_text(s, l[0].container, 8000, text, sizeof(text)), AG_SCHED_OK);
    uint8_t *tid = NULL, *pw = NULL;
    size_t tidlen = 0, pwlen = 0;
    CHECK_OK(ag__sched_token_parse(text, &tid, &tidlen, &pw, &pwlen));
    CHECK(ag__sched_mac_ok(&nk, tid, tidlen, pw, pwlen));
    Argot__Sched__V1__ContainerTokenIdentifier *ti = NULL;
    CHECK_OK(ag_rpc_msg_unpack(&argot__sched__v1__container_token_identifier__descriptor, tid,
                               tidlen, (ProtobufCMessage **)&ti));
    CHECK_EQ(ti->container_id->app_attempt_id->application_id->id, id);
    CHECK_STR_EQ(ti->node_id->host, l[0].node->host);
    ag_rpc_msg_free(&ti->base);
    ag_free(tid);
    ag_free(pw);
    /* an unknown container has none */
    Argot__Sched__V1__ContainerId *other = l[0].container;
    other->id = 999;
    CHECK_EQ(ag_sched_nm_token_text(s, other, 8000, text, sizeof(text)), AG_SCHED_NOT_FOUND);
    free_launches(l, n);
    done(s);
}

/* The key id of a token's identifier (a ContainerTokenIdentifier). */
static int32_t ctoken_key_id(const Argot__Sched__V1__Token *t)
{
    Argot__Sched__V1__ContainerTokenIdentifier *ti = NULL;
    CHECK_OK(ag_rpc_msg_unpack(&argot__sched__v1__container_token_identifier__descriptor,
                               t->identifier.data, t->identifier.len, (ProtobufCMessage **)&ti));
    int32_t id = ti->master_key_id;
    ag_rpc_msg_free(&ti->base);
    return id;
}

/* Whether the AMRM token t is accepted. */
static bool amrm_ok(ag_sched *s, const Argot__Sched__V1__Token *t)
{
    Argot__Sched__V1__ApplicationAttemptId *at = NULL;
    int rc = ag_sched_amrm_check(s, t->identifier.data, t->identifier.len, t->password.data,
                                 t->password.len, &at, err, sizeof(err));
    ag_rpc_msg_free(at ? &at->base : NULL);
    return rc == AG_SCHED_OK;
}

/* Master keys roll every key_roll_interval_ms: the next container and
 * NM-token keys go to the NMs in heartbeats first and sign only a few
 * heartbeats later; then the AMRM key rolls, the AM's next allocate
 * carries its new token and fresh NM tokens; tokens of the previous keys
 * stay valid until the roll after; the export holds all of them. */
TEST(sched_master_keys_roll)
{
    ag_sched_conf c = conf0();
    c.key_roll_interval_ms = 10000;
    c.heartbeat_interval_ms = 1000; /* keys sign 2.5 s (a quarter) after they are drawn */
    ag_sched *s = mk(&c);
    ag_sched_key k1;
    reg_node_l(s, "h1", NULL, 8192, 8, NULL, 0, &k1);
    CHECK_EQ(k1.id, 1);
    am m = unmanaged(s, (subm){0}, 0);
    Argot__Sched__V1__ApplicationReport *rep = report(s, m.app);
    Argot__Sched__V1__Token *amrm1 = rep->am_rm_token;
    rep->am_rm_token = NULL;
    ag_rpc_msg_free(&rep->base);
    ag_sched_tick(s, 0);
    Ask a[1] = {ask(1, "*", 1024, 1, true)};
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&m, a, 1, 100, &r), 1);
    CHECK_EQ(ctoken_key_id(r.allocated_containers[0]->container_token), 1);
    CHECK(r.am_rm_token == NULL);
    ag_sched_resp_clear(&r.base);

    /* before the interval: nothing new for the NM */
    uint64_t kc = ag_sched_key_changes(s);
    ag_sched_tick(s, 9999);
    CHECK_EQ(ag_sched_key_changes(s), kc);
    Argot__Sched__V1__MasterKey known = ARGOT__SCHED__V1__MASTER_KEY__INIT;
    known.key_id = 1;
    Argot__Sched__V1__NodeHeartbeatRequest hreq = ARGOT__SCHED__V1__NODE_HEARTBEAT_REQUEST__INIT;
    Argot__Sched__V1__NodeStatus ns = ARGOT__SCHED__V1__NODE_STATUS__INIT;
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    nid.host = "h1";
    nid.port = 45454;
    ns.node_id = &nid;
    hreq.node_status = &ns;
    hreq.last_known_container_token_master_key = &known;
    hreq.last_known_nm_token_master_key = &known;
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(ag_sched_node_heartbeat(s, &hreq, 9999, &h, err, sizeof(err)), AG_SCHED_OK);
    CHECK(h.container_token_master_key == NULL && h.nm_token_master_key == NULL);
    ag_sched_resp_clear(&h.base);

    /* the interval: key 2 is drawn and goes to the NM, key 1 still signs */
    ag_sched_tick(s, 10000);
    CHECK(ag_sched_key_changes(s) != kc);
    CHECK_EQ(ag_sched_node_heartbeat(s, &hreq, 10000, &h, err, sizeof(err)), AG_SCHED_OK);
    CHECK(h.container_token_master_key && h.container_token_master_key->key_id == 2);
    CHECK(h.nm_token_master_key && h.nm_token_master_key->key_id == 2);
    ag_sched_resp_clear(&h.base);
    a[0] = ask(1, "*", 1024, 1, true);
    CHECK_EQ(am_alloc(&m, a, 1, 10001, &r), 1);
    CHECK_EQ(ctoken_key_id(r.allocated_containers[0]->container_token), 1);
    CHECK(r.am_rm_token == NULL);
    ag_sched_resp_clear(&r.base);
    ag_sched_keys k;
    ag_sched_export_keys(s, &k);
    CHECK_EQ(k.container.id, 1);
    CHECK_EQ(k.next_container.id, 2);
    CHECK_EQ(k.next_nm.id, 2);
    CHECK_EQ(k.prev_container.id, 0);

    /* a quarter interval later key 2 signs; the AMRM key rolls too */
    ag_sched_tick(s, 12499);
    ag_sched_export_keys(s, &k);
    CHECK_EQ(k.container.id, 1);
    ag_sched_tick(s, 12500);
    ag_sched_export_keys(s, &k);
    CHECK_EQ(k.container.id, 2);
    CHECK_EQ(k.prev_container.id, 1);
    CHECK_EQ(k.nm.id, 2);
    CHECK_EQ(k.amrm.id, 2);
    CHECK_EQ(k.prev_amrm.id, 1);
    CHECK_EQ(k.next_container.id, 0);
    a[0] = ask(1, "*", 1024, 1, true);
    CHECK_EQ(am_alloc(&m, a, 1, 12501, &r), 1);
    CHECK_EQ(ctoken_key_id(r.allocated_containers[0]->container_token), 2);
    CHECK(r.am_rm_token != NULL);
    Argot__Sched__V1__Token *amrm2 = r.am_rm_token;
    r.am_rm_token = NULL;
    CHECK(r.n_nm_tokens >= 1); /* renewed under the new NM-token key */
    CHECK_EQ(ctoken_key_id(r.nm_tokens[0]->token), 2);
    ag_sched_resp_clear(&r.base);
    /* both AMRM tokens work now; the new one is handed out once */
    CHECK(amrm_ok(s, amrm1));
    CHECK(amrm_ok(s, amrm2));
    CHECK_EQ(am_alloc(&m, NULL, 0, 12600, &r), 0);
    CHECK(r.am_rm_token == NULL);
    CHECK_EQ(r.n_nm_tokens, 0);
    ag_sched_resp_clear(&r.base);

    /* the next roll: key 1 is gone everywhere, key 2 is the previous one */
    ag_sched_tick(s, 20000);
    ag_sched_tick(s, 22500);
    ag_sched_export_keys(s, &k);
    CHECK_EQ(k.container.id, 3);
    CHECK_EQ(k.prev_container.id, 2);
    CHECK_EQ(k.amrm.id, 3);
    CHECK(!amrm_ok(s, amrm1));
    CHECK_CONTAINS(err, "AMRM token: invalid password");
    CHECK(amrm_ok(s, amrm2));
    /* a restarted core takes every key back */
    ag_sched *s2 = mk(&c);
    ag_sched_import_keys(s2, &k);
    CHECK(amrm_ok(s2, amrm2) == false); /* no such application in s2 */
    CHECK_CONTAINS(err, "unknown application");
    ag_sched_keys k2;
    ag_sched_export_keys(s2, &k2);
    CHECK(memcmp(&k, &k2, sizeof(k)) == 0);
    ag_wipe(&k, sizeof(k));
    ag_wipe(&k2, sizeof(k2));
    ag_sched_free(s2);
    ag_rpc_msg_free(&amrm1->base);
    ag_rpc_msg_free(&amrm2->base);
    done(s);
}

/* What a store keeps of the grant log: rows by (app, container). */
typedef struct grants_seen {
    ag_sched_grant rows[16];
    char hosts[16][32];
    size_t n;
    int adds, dels, forgets;
} grants_seen;

static void grants_cb(void *ud, bool added, const ag_sched_grant *g)
{
    grants_seen *gs = ud;
    if (!g) {
        gs->n = 0;
        gs->forgets++;
        return;
    }
    gs->adds += added;
    gs->dels += !added;
    size_t i = 0;
    while (i < gs->n && !(gs->rows[i].app_id == g->app_id && gs->rows[i].container == g->container))
        i++;
    if (!added) {
        if (i < gs->n) {
            gs->rows[i] = gs->rows[gs->n - 1];
            memcpy(gs->hosts[i], gs->hosts[gs->n - 1], sizeof(gs->hosts[i]));
            gs->rows[i].host = gs->hosts[i];
            gs->n--;
        }
        return;
    }
    CHECK(i < 16);
    if (i == gs->n)
        gs->n++;
    gs->rows[i] = *g;
    snprintf(gs->hosts[i], sizeof(gs->hosts[i]), "%s", g->host);
    gs->rows[i].host = gs->hosts[i];
}

/* Gap: grants not yet started survive an RM restart through the store:
 * the core logs them (added at the grant, removed once running, ended or
 * released), a restarted core takes them back, and when their node
 * registers without them they are granted containers again (accounted, a
 * later RUNNING report accepted, not cleaned up); one whose node never
 * comes back expires and its AM hears it. */
TEST(sched_grants_survive_restart)
{
    ag_sched_conf c = conf0();
    c.track_grants = true;
    c.container_alloc_expiry_ms = 5000;
    ag_sched *s = mk(&c);
    reg_node(s, "h1", NULL, 2048, 4, 0);
    reg_node(s, "h2", NULL, 2048, 4, 0);
    am m = unmanaged(s, (subm){0}, 0);
    grants_seen gs = {0};
    Ask a[1] = {ask(1, "*", 1024, 4, true)};
    AllocResp r = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&m, a, 1, 1, &r), 4);
    ag_sched_grant_changes(s, grants_cb, &gs);
    CHECK_EQ(gs.n, 4);
    CHECK_EQ(gs.rows[0].app_id, m.app);
    CHECK_EQ(gs.rows[0].attempt, 1);
    CHECK_EQ(gs.rows[0].memory_mb, 1024);
    CHECK_EQ(gs.rows[0].port, 45454);
    /* one on h1 runs, one on h2 is released: one grant left on each */
    Argot__Sched__V1__ContainerId *run = NULL, *rel[1] = {NULL};
    for (size_t i = 0; i < r.n_allocated_containers; i++) {
        const Argot__Sched__V1__Container *x = r.allocated_containers[i];
        if (!run && strcmp(x->node_id->host, "h1") == 0)
            run = x->id;
        else if (!rel[0] && strcmp(x->node_id->host, "h2") == 0)
            rel[0] = x->id;
    }
    CHECK(run && rel[0]);
    Argot__Sched__V1__ContainerStatus st = ARGOT__SCHED__V1__CONTAINER_STATUS__INIT;
    st.container_id = run;
    st.state = ARGOT__SCHED__V1__CONTAINER_STATE__C_RUNNING;
    Argot__Sched__V1__ContainerStatus *sts[1] = {&st};
    Argot__Sched__V1__NodeHeartbeatResponse h = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    CHECK_EQ(hb(s, "h1", sts, 1, 2, &h), AG_SCHED_OK);
    ag_sched_resp_clear(&h.base);
    AllocResp r2 = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(alloc_rc(s, m.app, 1, NULL, 0, rel, 1, m.rid, 3, &r2), AG_SCHED_OK);
    m.rid = r2.response_id;
    ag_sched_resp_clear(&r2.base);
    ag_sched_grant_changes(s, grants_cb, &gs);
    CHECK_EQ(gs.n, 2);
    CHECK(strcmp(gs.hosts[0], gs.hosts[1]) != 0);
    int64_t g1 = 0, g2 = 0;
    for (size_t i = 0; i < 2; i++)
        *(strcmp(gs.hosts[i], "h1") == 0 ? &g1 : &g2) = gs.rows[i].container;
    int64_t running = run->id;
    ag_sched_keys keys;
    ag_sched_export_keys(s, &keys);
    ag_sched_resp_clear(&r.base);
    ag_sched_free(s);

    /* the restarted core: the application and its two grants come back */
    s = mk(&c);
    m.s = s;
    ag_sched_import_keys(s, &keys);
    ctx_store cs;
    ag_sched_recovery rec = {.attempt = 1, .registered = true, .next_container = 100};
    Argot__Sched__V1__ApplicationSubmissionContext *ctx = ctx_of(&cs, TS, m.app, "", 0);
    ctx->unmanaged_am = true;
    CHECK_EQ(ag_sched_recover_app(s, ctx, &rec, 10, err, sizeof(err)), AG_SCHED_OK);
    for (size_t i = 0; i < gs.n; i++)
        CHECK_EQ(ag_sched_recover_grant(s, &gs.rows[i], 10, err, sizeof(err)), AG_SCHED_OK);
    ag_sched_grant bad = gs.rows[0];
    bad.attempt = 2;
    CHECK_EQ(ag_sched_recover_grant(s, &bad, 10, err, sizeof(err)), AG_SCHED_INVALID);
    CHECK_CONTAINS(err, "is not one attempt 1");
    bad.app_id = 99;
    CHECK_EQ(ag_sched_recover_grant(s, &bad, 10, err, sizeof(err)), AG_SCHED_INVALID);
    CHECK_CONTAINS(err, "application 99 is not running");
    /* h1 registers with the container that runs: g1 is granted again (its
     * room taken), and its later RUNNING report is accepted */
    bool no[1] = {false};
    reg_node_with(s, "h1", m.app, 1, &running, no, 1, 20);
    inv(s);
    Argot__Sched__V1__GetClusterMetricsResponse mr =
        ARGOT__SCHED__V1__GET_CLUSTER_METRICS_RESPONSE__INIT;
    CHECK_EQ(ag_sched_metrics(s, &mr), AG_SCHED_OK);
    CHECK_EQ(mr.cluster_metrics->allocated->memory_mb, 2048);
    ag_sched_resp_clear(&mr.base);
    ids x;
    ids_set(&x, m.app, 1);
    Argot__Sched__V1__ContainerId cid = ARGOT__SCHED__V1__CONTAINER_ID__INIT;
    cid.app_attempt_id = &x.at;
    cid.id = g1;
    st.container_id = &cid;
    CHECK_EQ(hb(s, "h1", sts, 1, 21, &h), AG_SCHED_OK);
    CHECK_EQ(h.n_containers_to_cleanup, 0);
    ag_sched_resp_clear(&h.base);
    inv(s);
    /* h2 never comes back: g2 expires, and the AM, registered again,
     * hears it */
    register_ok(s, m.app, 1, 22);
    m.rid = 0;
    ag_sched_tick(s, 5009);
    AllocResp r3 = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    CHECK_EQ(am_alloc(&m, NULL, 0, 5009, &r3), 0);
    CHECK_EQ(r3.n_completed_container_statuses, 0);
    ag_sched_resp_clear(&r3.base);
    ag_sched_tick(s, 5010);
    CHECK_EQ(am_alloc(&m, NULL, 0, 5011, &r3), 0);
    CHECK_EQ(r3.n_completed_container_statuses, 1);
    CHECK_EQ(r3.completed_container_statuses[0]->container_id->id, g2);
    CHECK_EQ(r3.completed_container_statuses[0]->exit_status, -100);
    CHECK_CONTAINS(r3.completed_container_statuses[0]->diagnostics,
                   "did not come back within 5000 ms");
    ag_sched_resp_clear(&r3.base);
    /* the restarted core's log: both rows go (g1 runs, g2 expired), none added */
    grants_seen after = {0};
    ag_sched_grant_changes(s, grants_cb, &after);
    CHECK_EQ(after.adds, 0);
    CHECK_EQ(after.dels, 2);
    CHECK_EQ(after.forgets, 0);
    done(s);
}

/* The grant log under failing allocations: whatever fails, the drain gives
 * the store exactly the containers granted and not running (resending the
 * whole set when the log itself could not grow). */
TEST_FM(sched_failmalloc_grant_log)
{
    ag_sched_conf c = conf0();
    c.track_grants = true;
    AllocResp ar = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    AllocResp ar2 = ARGOT__SCHED__V1__ALLOCATE_RESPONSE__INIT;
    Argot__Sched__V1__RegisterNodeManagerResponse nresp =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_RESPONSE__INIT;
    Argot__Sched__V1__GetNewApplicationResponse gr =
        ARGOT__SCHED__V1__GET_NEW_APPLICATION_RESPONSE__INIT;
    Argot__Sched__V1__RegisterApplicationMasterResponse rr =
        ARGOT__SCHED__V1__REGISTER_APPLICATION_MASTER_RESPONSE__INIT;
    grants_seen gs = {0};
    ag_sched *s = ag_sched_new(&c, err, sizeof(err));
    FM_NEW(s);
    Argot__Sched__V1__RegisterNodeManagerRequest req =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_REQUEST__INIT;
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    Argot__Sched__V1__Resource nr = ARGOT__SCHED__V1__RESOURCE__INIT;
    nid.host = "h1";
    nid.port = 45454;
    nr.memory_mb = 8192;
    nr.vcores = 8;
    req.node_id = &nid;
    req.resource = &nr;
    FM_SCHED(ag_sched_register_node(s, &req, 0, &nresp, err, sizeof(err)), AG_SCHED_OK);
    FM_SCHED(ag_sched_new_application(s, 0, &gr, err, sizeof(err)), AG_SCHED_OK);
    FM_SCHED(submit_rc(s, 1, (subm){.unmanaged = true}, 0), AG_SCHED_OK);
    FM_SCHED(register_am(s, 1, 1, 1, &rr), AG_SCHED_OK);
    Ask a[1] = {ask(1, "*", 1024, 3, true)};
    FM_SCHED(alloc_rc(s, 1, 1, a, 1, NULL, 0, 0, 2, &ar), AG_SCHED_OK);
    if (ar.n_allocated_containers == 0)
        goto out; /* a grant's own allocation failed: granted later, as designed */
    Argot__Sched__V1__ContainerId *rel[1] = {ar.allocated_containers[0]->id};
    FM_SCHED(alloc_rc(s, 1, 1, NULL, 0, rel, 1, 1, 3, &ar2), AG_SCHED_OK);
out:
    if (s) {
        ag_sched_grant_changes(s, grants_cb, &gs);
        Argot__Sched__V1__GetClusterMetricsResponse mr =
            ARGOT__SCHED__V1__GET_CLUSTER_METRICS_RESPONSE__INIT;
        if (ag_sched_metrics(s, &mr) == AG_SCHED_OK)
            CHECK_EQ((int64_t)gs.n * 1024, mr.cluster_metrics->allocated->memory_mb);
        ag_sched_resp_clear(&mr.base);
        inv(s);
    }
    ag_sched_resp_clear(&ar2.base);
    ag_sched_resp_clear(&ar.base);
    ag_sched_resp_clear(&rr.base);
    ag_sched_resp_clear(&gr.base);
    ag_sched_resp_clear(&nresp.base);
    ag_sched_free(s);
}
