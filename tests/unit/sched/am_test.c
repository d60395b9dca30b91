/*
 * Tests for the AM client (src/sched/am.c) and the RM daemon's glue
 * (src/sched/rm.c): an in-process RM on a loopback port, two fake node
 * managers speaking ResourceTracker through the generated stubs, and an
 * unmanaged AM (its AMRM token from the application report) driving
 * ag_am: grants come back on the allocate that asks, a container the node
 * reports complete reaches the completed callback with its exit status,
 * a release gives the room back, calls without a token or with a forged
 * one are refused, finish ends the application.
 */
#include "argot/sched.h"
#include "argot/sched/v1/sched.argot.h"
#include "argot/sched/v1/sched.pb-c.h"
#include "pki.h"
#include "sched/token.h"
#include "test.h"

struct rmfix {
    ag_rm *rm;
    ag_rpc_channel *ch;
};

static void rm_up(struct rmfix *f)
{
    char err[AG_ERRMSG_MAX];
    ag_log_set_level(AG_LOG_WARN);
    f->rm = ag_rm_load(NULL, "127.0.0.1:0", err, sizeof(err));
    if (!f->rm)
        FAIL("rm: %s", err);
    if (ag_rm_start(f->rm, err, sizeof(err)) < 0)
        FAIL("rm start: %s", err);
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    f->ch = ag_rpc_channel_new(ag_rm_address(f->rm), &co);
    CHECK(f->ch != NULL);
}

static void rm_down(struct rmfix *f)
{
    ag_rpc_channel_free(f->ch);
    ag_rm_free(f->rm);
}

static void node_register(struct rmfix *f, const char *host, int port)
{
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    nid.host = (char *)host;
    nid.port = port;
    Argot__Sched__V1__Resource res = ARGOT__SCHED__V1__RESOURCE__INIT;
    res.memory_mb = 4096;
    res.vcores = 4;
    Argot__Sched__V1__RegisterNodeManagerRequest req =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_REQUEST__INIT;
    req.node_id = &nid;
    req.resource = &res;
    req.rack = "/r1";
    Argot__Sched__V1__RegisterNodeManagerResponse *resp = NULL;
    char *message = NULL;
    int st = argot__sched__v1__resource_tracker__register_node_manager__invoke(
        f->ch, &req, ag_deadline_in_ms(5000), &resp, &message);
    if (st != AG_RPC_OK)
        FAIL("register node: %s", message ? message : "");
    CHECK(resp->container_token_master_key && resp->container_token_master_key->bytes.len > 0);
    ag_rpc_msg_free(&resp->base);
    ag_free(message);
}

/* A heartbeat from host:port reporting one container complete with exit. */
static void node_reports(struct rmfix *f, const char *host, int port, int32_t rid,
                         const Argot__Sched__V1__ContainerId *done, int exit_status)
{
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    nid.host = (char *)host;
    nid.port = port;
    Argot__Sched__V1__ContainerStatus cs = ARGOT__SCHED__V1__CONTAINER_STATUS__INIT;
    Argot__Sched__V1__ContainerStatus *csp = &cs;
    Argot__Sched__V1__NodeStatus ns = ARGOT__SCHED__V1__NODE_STATUS__INIT;
    ns.node_id = &nid;
    ns.response_id = rid;
    if (done) {
        cs.container_id = (Argot__Sched__V1__ContainerId *)done;
        cs.state = ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE;
        cs.exit_status = exit_status;
        cs.diagnostics = "exited";
        ns.n_container_statuses = 1;
        ns.container_statuses = &csp;
    }
    Argot__Sched__V1__NodeHeartbeatRequest req = ARGOT__SCHED__V1__NODE_HEARTBEAT_REQUEST__INIT;
    req.node_status = &ns;
    Argot__Sched__V1__NodeHeartbeatResponse *resp = NULL;
    char *message = NULL;
    int st = argot__sched__v1__resource_tracker__node_heartbeat__invoke(
        f->ch, &req, ag_deadline_in_ms(5000), &resp, &message);
    if (st != AG_RPC_OK)
        FAIL("heartbeat: %s", message ? message : "");
    ag_rpc_msg_free(&resp->base);
    ag_free(message);
}

/* Submits an unmanaged application; its AMRM token's text into token. */
static void submit_unmanaged(struct rmfix *f, char *token, size_t cap,
                             Argot__Sched__V1__ApplicationId *id)
{
    Argot__Sched__V1__GetNewApplicationRequest nreq = ARGOT__SCHED__V1__GET_NEW_APPLICATION_REQUEST__INIT;
    Argot__Sched__V1__GetNewApplicationResponse *nresp = NULL;
    char *message = NULL;
    CHECK_EQ(argot__sched__v1__application_client__get_new_application__invoke(
                 f->ch, &nreq, ag_deadline_in_ms(5000), &nresp, &message),
             AG_RPC_OK);
    ag_free(message);
    message = NULL;
    *id = *nresp->application_id;
    id->base = nresp->application_id->base;
    Argot__Sched__V1__ApplicationSubmissionContext ctx =
        ARGOT__SCHED__V1__APPLICATION_SUBMISSION_CONTEXT__INIT;
    ctx.application_id = nresp->application_id;
    ctx.application_name = "am-test";
    ctx.unmanaged_am = true;
    Argot__Sched__V1__SubmitApplicationRequest sreq = ARGOT__SCHED__V1__SUBMIT_APPLICATION_REQUEST__INIT;
    sreq.application_submission_context = &ctx;
    Argot__Sched__V1__SubmitApplicationResponse *sresp = NULL;
    int st = argot__sched__v1__application_client__submit_application__invoke(
        f->ch, &sreq, ag_deadline_in_ms(5000), &sresp, &message);
    if (st != AG_RPC_OK)
        FAIL("submit: %s", message ? message : "");
    ag_rpc_msg_free(&sresp->base);
    ag_free(message);
    message = NULL;
    Argot__Sched__V1__GetApplicationReportRequest rreq =
        ARGOT__SCHED__V1__GET_APPLICATION_REPORT_REQUEST__INIT;
    rreq.application_id = nresp->application_id;
    Argot__Sched__V1__GetApplicationReportResponse *rresp = NULL;
    CHECK_EQ(argot__sched__v1__application_client__get_application_report__invoke(
                 f->ch, &rreq, ag_deadline_in_ms(5000), &rresp, &message),
             AG_RPC_OK);
    Argot__Sched__V1__Token *t = rresp->application_report->am_rm_token;
    CHECK(t != NULL);
    CHECK_OK(ag__sched_token_text(t->identifier.data, t->identifier.len, t->password.data,
                                  t->password.len, token, cap));
    ag_rpc_msg_free(&rresp->base);
    ag_rpc_msg_free(&nresp->base);
    ag_free(message);
}

struct seen {
    int allocated, completed;
    char ids[8][96];
    char first[96];
    char node[300];
    int last_exit;
};

static void cb_allocated(void *ud, ag_am *am, const ag_container *c)
{
    (void)am;
    struct seen *s = ud;
    if (s->allocated < 8)
        snprintf(s->ids[s->allocated], sizeof(s->ids[0]), "%s", c->id);
    if (!s->allocated++) {
        snprintf(s->first, sizeof(s->first), "%s", c->id);
        snprintf(s->node, sizeof(s->node), "%s", c->node);
    }
    CHECK_EQ(c->memory_mb, 1024);
}

static void cb_completed(void *ud, ag_am *am, const ag_container_status *st)
{
    (void)am;
    struct seen *s = ud;
    s->completed++;
    s->last_exit = st->exit_status;
}

/* The ContainerId record of a container's text id (its parts). */
static void parse_cid(const char *text, Argot__Sched__V1__ContainerId *cid,
                      Argot__Sched__V1__ApplicationAttemptId *att,
                      Argot__Sched__V1__ApplicationId *app)
{
    long long ts;
    int a, at;
    long long n;
    CHECK_EQ(sscanf(text, "container_%lld_%d_%d_%lld", &ts, &a, &at, &n), 4);
    argot__sched__v1__application_id__init(app);
    app->cluster_timestamp = ts;
    app->id = a;
    argot__sched__v1__application_attempt_id__init(att);
    att->application_id = app;
    att->attempt_id = at;
    argot__sched__v1__container_id__init(cid);
    cid->app_attempt_id = att;
    cid->id = n;
}

TEST_TIMEOUT(sched_am_client_grants_completions_releases_finish, 60)
{
    struct rmfix f;
    rm_up(&f);
    node_register(&f, "10.0.0.1", 8040);
    node_register(&f, "10.0.0.2", 8040);
    char token[1024];
    Argot__Sched__V1__ApplicationId app;
    submit_unmanaged(&f, token, sizeof(token), &app);

    struct seen s = {0};
    char err[AG_ERRMSG_MAX];
    ag_am_opts o = {.rm = ag_rm_address(f.rm), .token = token,
                    .cb = {.allocated = cb_allocated, .completed = cb_completed}, .ud = &s};
    ag_am *am = ag_am_new(&o, err, sizeof(err));
    if (!am)
        FAIL("am: %s", err);
    CHECK_OK(ag_am_register(am, "am-host", 0, ""));
    /* 5 containers of 1 GB: granted by the allocate that asks */
    CHECK_OK(ag_am_ask(am, 1, "*", 1024, 1, 5, true, "", 0));
    CHECK_OK(ag_am_allocate(am, 0.1f));
    CHECK_EQ(s.allocated, 5);
    CHECK_EQ(ag_am_running(am), 5);
    /* nothing more is outstanding: a second allocate grants nothing */
    CHECK_OK(ag_am_allocate(am, 0.2f));
    CHECK_EQ(s.allocated, 5);
    int64_t mb;
    int32_t vc, nodes;
    ag_am_headroom(am, &mb, &vc, &nodes);
    CHECK_EQ(nodes, 2);
    CHECK_EQ(mb, 8192 - 5 * 1024);

    /* the node reports the first container done with exit 3 */
    Argot__Sched__V1__ContainerId cid;
    Argot__Sched__V1__ApplicationAttemptId att;
    Argot__Sched__V1__ApplicationId capp;
    parse_cid(s.first, &cid, &att, &capp);
    char host[300];
    snprintf(host, sizeof(host), "%s", s.node);
    *strrchr(host, ':') = 0;
    node_reports(&f, host, 8040, 0, &cid, 3);
    CHECK_OK(ag_am_allocate(am, 0.3f));
    CHECK_EQ(s.completed, 1);
    CHECK_EQ(s.last_exit, 3);
    CHECK_EQ(ag_am_running(am), 4);

    /* a release gives its room back, and its end comes as a completion */
    ag_am_headroom(am, &mb, &vc, &nodes);
    int64_t before = mb;
    CHECK_OK(ag_am_release(am, s.ids[1]));
    CHECK_OK(ag_am_allocate(am, 0.4f));
    CHECK_OK(ag_am_allocate(am, 0.5f));
    ag_am_headroom(am, &mb, &vc, &nodes);
    CHECK_EQ(mb, before + 1024);
    CHECK_EQ(s.completed, 2);
    CHECK_EQ(ag_am_running(am), 3);
    CHECK_OK(ag_am_finish(am, AG_AM_SUCCEEDED, "all done"));
    ag_am_free(am);

    /* a forged token is refused */
    char forged[1024];
    snprintf(forged, sizeof(forged), "%s", token);
    char *dot = strchr(forged, '.');
    dot[1] = dot[1] == 'A' ? 'B' : 'A';
    ag_am_opts o2 = {.rm = ag_rm_address(f.rm), .token = forged};
    ag_am *bad = ag_am_new(&o2, err, sizeof(err));
    CHECK(bad != NULL);
    CHECK(ag_am_register(bad, "x", 0, "") < 0);
    CHECK_CONTAINS(ag_am_errmsg(bad), "PERMISSION_DENIED");
    ag_am_free(bad);

    /* the application finished */
    Argot__Sched__V1__GetApplicationReportRequest rreq =
        ARGOT__SCHED__V1__GET_APPLICATION_REPORT_REQUEST__INIT;
    rreq.application_id = &app;
    Argot__Sched__V1__GetApplicationReportResponse *rresp = NULL;
    char *message = NULL;
    CHECK_EQ(argot__sched__v1__application_client__get_application_report__invoke(
                 f.ch, &rreq, ag_deadline_in_ms(5000), &rresp, &message),
             AG_RPC_OK);
    CHECK_EQ(rresp->application_report->yarn_application_state,
             ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FINISHED);
    CHECK_EQ(rresp->application_report->final_application_status,
             ARGOT__SCHED__V1__FINAL_APPLICATION_STATUS__APP_SUCCEEDED);
    ag_rpc_msg_free(&rresp->base);
    ag_free(message);
    rm_down(&f);
}

TEST(sched_am_without_token_is_refused_with_a_reason)
{
    char err[AG_ERRMSG_MAX];
    unsetenv("ARGOT_AMRM_TOKEN");
    ag_am_opts o = {.rm = "127.0.0.1:1"};
    CHECK(ag_am_new(&o, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "ARGOT_AMRM_TOKEN");
    int64_t ts;
    int32_t id;
    CHECK_OK(ag_sched_parse_app_id("application_1796589441755_0002", &ts, &id));
    CHECK_EQ(ts, 1796589441755);
    CHECK_EQ(id, 2);
    CHECK(ag_sched_parse_app_id("application_1796589441755", &ts, &id) < 0);
    CHECK(ag_sched_parse_app_id("app_1_2", &ts, &id) < 0);
    char buf[64];
    CHECK_STR_EQ(ag_sched_format_app_id(5, 7, buf, sizeof(buf)), "application_5_0007");
}

/* The RM restarted on its state file (same port, same config) while an
 * unmanaged AM runs: the AM's token stays valid, its allocate and its
 * finish each resync (register again) with the RM that recovered the
 * application, ids continue, and the application ends FINISHED. (The
 * integration test sched_restart_test.c does this with processes, SIGKILL
 * and NMs.) */
TEST_TIMEOUT(sched_am_resyncs_with_a_restarted_rm, 60)
{
    char yaml[1024], config[512], addr[64], err[AG_ERRMSG_MAX];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ag_test_free_port());
    snprintf(yaml, sizeof(yaml), "address: \"%s\"\nstate: {sqlite: %s/rm.db}\n", addr,
             ag_test_tmpdir());
    snprintf(config, sizeof(config), "%s", ag_test_write_file("rm.yaml", yaml, strlen(yaml)));
    struct rmfix f;
    char token[1024];
    Argot__Sched__V1__ApplicationId app;
    struct seen s = {0};
    ag_am *am = NULL;
    ag_log_set_level(AG_LOG_WARN);
    for (int run = 0; run < 3; run++) {
        f.rm = ag_rm_load(config, NULL, err, sizeof(err));
        if (!f.rm || ag_rm_start(f.rm, err, sizeof(err)) < 0)
            FAIL("rm run %d: %s", run, err);
        CHECK_STR_EQ(ag_rm_address(f.rm), addr);
        ag_rpc_channel_opts co;
        ag_rpc_channel_opts_init(&co);
        f.ch = ag_rpc_channel_new(addr, &co);
        CHECK(f.ch != NULL);
        if (run == 0) {
            node_register(&f, "10.0.0.1", 8040);
            submit_unmanaged(&f, token, sizeof(token), &app);
            ag_am_opts o = {.rm = addr, .token = token,
                            .cb = {.allocated = cb_allocated, .completed = cb_completed},
                            .ud = &s};
            am = ag_am_new(&o, err, sizeof(err));
            if (!am)
                FAIL("am: %s", err);
            CHECK_OK(ag_am_register(am, "am-host", 0, ""));
            CHECK_OK(ag_am_ask(am, 1, "*", 1024, 1, 2, true, "", 0));
            CHECK_OK(ag_am_allocate(am, 0.1f));
            CHECK_EQ(s.allocated, 2);
        } else if (run == 1) {
            /* the application is back, RUNNING, under its id; the next id follows */
            Argot__Sched__V1__GetApplicationReportRequest rreq =
                ARGOT__SCHED__V1__GET_APPLICATION_REPORT_REQUEST__INIT;
            rreq.application_id = &app;
            Argot__Sched__V1__GetApplicationReportResponse *rresp = NULL;
            char *message = NULL;
            CHECK_EQ(argot__sched__v1__application_client__get_application_report__invoke(
                         f.ch, &rreq, ag_deadline_in_ms(5000), &rresp, &message),
                     AG_RPC_OK);
            CHECK_EQ(rresp->application_report->yarn_application_state,
                     ARGOT__SCHED__V1__YARN_APPLICATION_STATE__RUNNING);
            ag_rpc_msg_free(&rresp->base);
            ag_free(message);
            message = NULL;
            Argot__Sched__V1__GetNewApplicationRequest nreq =
                ARGOT__SCHED__V1__GET_NEW_APPLICATION_REQUEST__INIT;
            Argot__Sched__V1__GetNewApplicationResponse *nresp = NULL;
            CHECK_EQ(argot__sched__v1__application_client__get_new_application__invoke(
                         f.ch, &nreq, ag_deadline_in_ms(5000), &nresp, &message),
                     AG_RPC_OK);
            CHECK_EQ(nresp->application_id->cluster_timestamp, app.cluster_timestamp);
            CHECK_EQ(nresp->application_id->id, app.id + 1);
            ag_rpc_msg_free(&nresp->base);
            ag_free(message);
            /* allocate: NOT_REGISTERED, so the AM registers again */
            CHECK_OK(ag_am_allocate(am, 0.5f));
            CHECK_EQ(ag_am_running(am), 2);
        } else {
            /* finish alone resyncs too */
            CHECK_OK(ag_am_finish(am, AG_AM_SUCCEEDED, "done"));
            ag_am_free(am);
            Argot__Sched__V1__GetApplicationReportRequest rreq =
                ARGOT__SCHED__V1__GET_APPLICATION_REPORT_REQUEST__INIT;
            rreq.application_id = &app;
            Argot__Sched__V1__GetApplicationReportResponse *rresp = NULL;
            char *message = NULL;
            CHECK_EQ(argot__sched__v1__application_client__get_application_report__invoke(
                         f.ch, &rreq, ag_deadline_in_ms(5000), &rresp, &message),
                     AG_RPC_OK);
            CHECK_EQ(rresp->application_report->yarn_application_state,
                     ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FINISHED);
            ag_rpc_msg_free(&rresp->base);
            ag_free(message);
        }
        rm_down(&f);
    }
}

/* An in-process RM with the YAML extra (address 127.0.0.1:0). */
static void rm_up_with(struct rmfix *f, const char *extra)
{
    char yaml[1024], config[512], err[AG_ERRMSG_MAX];
    snprintf(yaml, sizeof(yaml), "address: \"127.0.0.1:0\"\nlog: {level: warn}\n%s", extra);
    snprintf(config, sizeof(config), "%s", ag_test_write_file("rm.yaml", yaml, strlen(yaml)));
    f->rm = ag_rm_load(config, NULL, err, sizeof(err));
    if (!f->rm)
        FAIL("rm: %s", err);
    if (ag_rm_start(f->rm, err, sizeof(err)) < 0)
        FAIL("rm start: %s", err);
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    f->ch = ag_rpc_channel_new(ag_rm_address(f->rm), &co);
    CHECK(f->ch != NULL);
}

/* Through the RM: a granted container its node never reports running is
 * taken back after liveness.container_alloc_expiry_ms; the AM hears it as
 * completed (-100, "container expired"), the room comes back, and the node
 * is told to stop it. */
TEST_TIMEOUT(sched_rm_expires_unlaunched_containers, 60)
{
    struct rmfix f;
    rm_up_with(&f, "liveness: {container_alloc_expiry_ms: 400}\n");
    node_register(&f, "10.0.0.1", 8040);
    char token[1024];
    Argot__Sched__V1__ApplicationId app;
    submit_unmanaged(&f, token, sizeof(token), &app);
    struct seen s = {0};
    char err[AG_ERRMSG_MAX];
    ag_am_opts o = {.rm = ag_rm_address(f.rm),
                    .token = token,
                    .cb = {.allocated = cb_allocated, .completed = cb_completed},
                    .ud = &s};
    ag_am *am = ag_am_new(&o, err, sizeof(err));
    if (!am)
        FAIL("am: %s", err);
    CHECK_OK(ag_am_register(am, "am-host", 0, ""));
    CHECK_OK(ag_am_ask(am, 1, "*", 1024, 1, 1, true, "", 0));
    CHECK_OK(ag_am_allocate(am, 0.1f));
    CHECK_EQ(s.allocated, 1);
    int64_t mb;
    int32_t vc, nodes;
    ag_am_headroom(am, &mb, &vc, &nodes);
    CHECK_EQ(mb, 4096 - 1024);
    for (int i = 0; i < 100 && s.completed == 0; i++) {
        ag_sleep_ms(50);
        CHECK_OK(ag_am_allocate(am, 0.2f));
    }
    CHECK_EQ(s.completed, 1);
    CHECK_EQ(s.last_exit, -100);
    CHECK_EQ(ag_am_running(am), 0);
    CHECK_OK(ag_am_allocate(am, 0.3f));
    ag_am_headroom(am, &mb, &vc, &nodes);
    CHECK_EQ(mb, 4096);
    /* its node hears it in containers_to_cleanup */
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    nid.host = "10.0.0.1";
    nid.port = 8040;
    Argot__Sched__V1__NodeStatus ns = ARGOT__SCHED__V1__NODE_STATUS__INIT;
    ns.node_id = &nid;
    Argot__Sched__V1__NodeHeartbeatRequest req = ARGOT__SCHED__V1__NODE_HEARTBEAT_REQUEST__INIT;
    req.node_status = &ns;
    Argot__Sched__V1__NodeHeartbeatResponse *resp = NULL;
    char *message = NULL;
    CHECK_EQ(argot__sched__v1__resource_tracker__node_heartbeat__invoke(
                 f.ch, &req, ag_deadline_in_ms(5000), &resp, &message),
             AG_RPC_OK);
    CHECK_EQ(resp->n_containers_to_cleanup, 1);
    ag_rpc_msg_free(&resp->base);
    ag_free(message);
    CHECK_OK(ag_am_finish(am, AG_AM_SUCCEEDED, "done"));
    ag_am_free(am);
    rm_down(&f);
}

/* Through the RM: with tokens.roll_interval_ms of 1 s the AMRM key rolls
 * every second; the AM client takes the new token from allocate
 * (am_rm_token) and keeps working across several rolls, while its first
 * token, two rolls old, is refused. */
TEST_TIMEOUT(sched_am_follows_amrm_key_rolls, 60)
{
    struct rmfix f;
    rm_up_with(&f, "tokens: {roll_interval_ms: 1000}\nheartbeat_interval: 50ms\n");
    node_register(&f, "10.0.0.1", 8040);
    char token[1024];
    Argot__Sched__V1__ApplicationId app;
    submit_unmanaged(&f, token, sizeof(token), &app);
    struct seen s = {0};
    char err[AG_ERRMSG_MAX];
    ag_am_opts o = {.rm = ag_rm_address(f.rm),
                    .token = token,
                    .cb = {.allocated = cb_allocated, .completed = cb_completed},
                    .ud = &s};
    ag_am *am = ag_am_new(&o, err, sizeof(err));
    if (!am)
        FAIL("am: %s", err);
    CHECK_OK(ag_am_register(am, "am-host", 0, ""));
    for (int i = 0; i < 35; i++) {
        CHECK_OK(ag_am_allocate(am, 0.1f));
        ag_sleep_ms(100);
    }
    /* 3.5 s: at least two rolls; the first token is no good any more */
    ag_am_opts o2 = {.rm = ag_rm_address(f.rm), .token = token};
    ag_am *old = ag_am_new(&o2, err, sizeof(err));
    CHECK(old != NULL);
    CHECK(ag_am_register(old, "x", 0, "") < 0);
    CHECK_CONTAINS(ag_am_errmsg(old), "PERMISSION_DENIED");
    ag_am_free(old);
    CHECK_OK(ag_am_ask(am, 1, "*", 1024, 1, 1, true, "", 0));
    CHECK_OK(ag_am_allocate(am, 0.5f));
    CHECK_EQ(s.allocated, 1);
    CHECK_OK(ag_am_finish(am, AG_AM_SUCCEEDED, "done"));
    ag_am_free(am);
    rm_down(&f);
}

/* Keys rolled before an RM restart come back from its state file (the
 * keys table: signing, previous and next): the AM's current token, of a
 * rolled key, is still good with the restarted RM. */
TEST_TIMEOUT(sched_rolled_keys_survive_rm_restart, 60)
{
    char yaml[1024], config[512], addr[64], err[AG_ERRMSG_MAX];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ag_test_free_port());
    snprintf(yaml, sizeof(yaml),
             "address: \"%s\"\nstate: {sqlite: %s/rm.db}\nheartbeat_interval: 50ms\n"
             "tokens: {roll_interval_ms: 1000}\nlog: {level: warn}\n",
             addr, ag_test_tmpdir());
    snprintf(config, sizeof(config), "%s", ag_test_write_file("rm.yaml", yaml, strlen(yaml)));
    struct rmfix f;
    f.rm = ag_rm_load(config, NULL, err, sizeof(err));
    if (!f.rm || ag_rm_start(f.rm, err, sizeof(err)) < 0)
        FAIL("rm: %s", err);
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    f.ch = ag_rpc_channel_new(addr, &co);
    node_register(&f, "10.0.0.1", 8040);
    char token[1024];
    Argot__Sched__V1__ApplicationId app;
    submit_unmanaged(&f, token, sizeof(token), &app);
    struct seen s = {0};
    ag_am_opts o = {.rm = addr,
                    .token = token,
                    .cb = {.allocated = cb_allocated, .completed = cb_completed},
                    .ud = &s};
    ag_am *am = ag_am_new(&o, err, sizeof(err));
    if (!am)
        FAIL("am: %s", err);
    CHECK_OK(ag_am_register(am, "am-host", 0, ""));
    for (int i = 0; i < 25; i++) {
        CHECK_OK(ag_am_allocate(am, 0.1f));
        ag_sleep_ms(100);
    }
    rm_down(&f);
    f.rm = ag_rm_load(config, NULL, err, sizeof(err));
    if (!f.rm || ag_rm_start(f.rm, err, sizeof(err)) < 0)
        FAIL("rm again: %s", err);
    f.ch = ag_rpc_channel_new(addr, &co);
    /* the AM resyncs (registers again) with its rolled token */
    CHECK_OK(ag_am_ask(am, 1, "*", 1024, 1, 1, true, "", 0));
    CHECK_OK(ag_am_allocate(am, 0.5f));
    CHECK_OK(ag_am_finish(am, AG_AM_SUCCEEDED, "done"));
    ag_am_free(am);
    rm_down(&f);
}

/* A heartbeat from host:port reporting container id of app (attempt 1)
 * RUNNING; the count of containers_to_cleanup in the answer. */
static size_t node_reports_running(struct rmfix *f, const char *host, int port,
                                   const Argot__Sched__V1__ApplicationId *app, int64_t id)
{
    Argot__Sched__V1__ApplicationId aid = *app;
    Argot__Sched__V1__ApplicationAttemptId at = ARGOT__SCHED__V1__APPLICATION_ATTEMPT_ID__INIT;
    at.application_id = &aid;
    at.attempt_id = 1;
    Argot__Sched__V1__ContainerId cid = ARGOT__SCHED__V1__CONTAINER_ID__INIT;
    cid.app_attempt_id = &at;
    cid.id = id;
    Argot__Sched__V1__ContainerStatus cs = ARGOT__SCHED__V1__CONTAINER_STATUS__INIT;
    cs.container_id = &cid;
    cs.state = ARGOT__SCHED__V1__CONTAINER_STATE__C_RUNNING;
    Argot__Sched__V1__ContainerStatus *csp = &cs;
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    nid.host = (char *)host;
    nid.port = port;
    Argot__Sched__V1__NodeStatus ns = ARGOT__SCHED__V1__NODE_STATUS__INIT;
    ns.node_id = &nid;
    ns.n_container_statuses = 1;
    ns.container_statuses = &csp;
    Argot__Sched__V1__NodeHeartbeatRequest req = ARGOT__SCHED__V1__NODE_HEARTBEAT_REQUEST__INIT;
    req.node_status = &ns;
    Argot__Sched__V1__NodeHeartbeatResponse *resp = NULL;
    char *message = NULL;
    int st = argot__sched__v1__resource_tracker__node_heartbeat__invoke(
        f->ch, &req, ag_deadline_in_ms(5000), &resp, &message);
    if (st != AG_RPC_OK)
        FAIL("heartbeat: %s", message ? message : "");
    size_t n = resp->n_containers_to_cleanup;
    ag_rpc_msg_free(&resp->base);
    ag_free(message);
    return n;
}

/* Gap: a container granted but not yet started when the RM restarts is
 * still the application's with the restarted RM (the store's grants
 * table): its node comes back without it, the AM starts it afterwards, and
 * the node's RUNNING report is accepted, not answered with a cleanup, and
 * its room stays taken. */
TEST_TIMEOUT(sched_rm_restart_keeps_granted_containers, 60)
{
    char yaml[1024], config[512], addr[64], err[AG_ERRMSG_MAX];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ag_test_free_port());
    snprintf(yaml, sizeof(yaml), "address: \"%s\"\nstate: {sqlite: %s/rm.db}\nlog: {level: warn}\n",
             addr, ag_test_tmpdir());
    snprintf(config, sizeof(config), "%s", ag_test_write_file("rm.yaml", yaml, strlen(yaml)));
    struct rmfix f;
    f.rm = ag_rm_load(config, NULL, err, sizeof(err));
    if (!f.rm || ag_rm_start(f.rm, err, sizeof(err)) < 0)
        FAIL("rm: %s", err);
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    f.ch = ag_rpc_channel_new(addr, &co);
    node_register(&f, "10.0.0.1", 8040);
    char token[1024];
    Argot__Sched__V1__ApplicationId app;
    submit_unmanaged(&f, token, sizeof(token), &app);
    struct seen s = {0};
    ag_am_opts o = {.rm = addr,
                    .token = token,
                    .cb = {.allocated = cb_allocated, .completed = cb_completed},
                    .ud = &s};
    ag_am *am = ag_am_new(&o, err, sizeof(err));
    if (!am)
        FAIL("am: %s", err);
    CHECK_OK(ag_am_register(am, "am-host", 0, ""));
    CHECK_OK(ag_am_ask(am, 1, "*", 1024, 1, 2, true, "", 0));
    CHECK_OK(ag_am_allocate(am, 0.1f));
    CHECK_EQ(s.allocated, 2);
    Argot__Sched__V1__ContainerId cid;
    Argot__Sched__V1__ApplicationAttemptId att;
    Argot__Sched__V1__ApplicationId capp;
    parse_cid(s.ids[1], &cid, &att, &capp);
    rm_down(&f);

    f.rm = ag_rm_load(config, NULL, err, sizeof(err));
    if (!f.rm || ag_rm_start(f.rm, err, sizeof(err)) < 0)
        FAIL("rm again: %s", err);
    f.ch = ag_rpc_channel_new(addr, &co);
    node_register(&f, "10.0.0.1", 8040); /* running nothing yet */
    CHECK_OK(ag_am_allocate(am, 0.2f));  /* resyncs */
    int64_t mb;
    int32_t vc, nodes;
    ag_am_headroom(am, &mb, &vc, &nodes);
    CHECK_EQ(mb, 4096 - 2 * 1024);
    /* the AM starts the second container now: its node reports it */
    CHECK_EQ(node_reports_running(&f, "10.0.0.1", 8040, &app, cid.id), 0);
    CHECK_OK(ag_am_allocate(am, 0.3f));
    CHECK_EQ(s.completed, 0);
    CHECK_EQ(ag_am_running(am), 2);
    CHECK_OK(ag_am_finish(am, AG_AM_SUCCEEDED, "done"));
    ag_am_free(am);
    rm_down(&f);
}

/* A channel to the RM presenting who.crt of the test PKI. */
static ag_rpc_channel *tls_channel(const char *addr, const char *who)
{
    char cert[600], key[600], ca[600];
    snprintf(cert, sizeof(cert), "%s/%s.crt", ag_test_pki(), who);
    snprintf(key, sizeof(key), "%s/%s.key", ag_test_pki(), who);
    snprintf(ca, sizeof(ca), "%s/ca.crt", ag_test_pki());
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    co.tls_cert_file = cert;
    co.tls_key_file = key;
    co.tls_ca_file = ca;
    ag_rpc_channel *ch = ag_rpc_channel_new(addr, &co);
    CHECK(ch != NULL);
    CHECK_STR_EQ(ag_rpc_channel_errmsg(ch), "");
    return ch;
}

/* The RM over mutual TLS with tls.nodes: only the listed certificate may
 * call ResourceTracker (another the CA issued is PERMISSION_DENIED, naming
 * it); a user's certificate still submits, and the AM client given TLS
 * files registers and gets containers; without them it cannot talk. */
TEST_TIMEOUT(sched_rm_tls_nodes_and_am_client_tls, 60)
{
    char yaml[2048], err[AG_ERRMSG_MAX];
    const char *pki = ag_test_pki();
    snprintf(yaml, sizeof(yaml),
             "address: \"127.0.0.1:0\"\nlog: {level: warn}\n"
             "tls: {cert: %s/server.crt, key: %s/server.key, ca: %s/ca.crt,\n"
             "      nodes: [carol.example]}\n",
             pki, pki, pki);
    char config[512];
    snprintf(config, sizeof(config), "%s", ag_test_write_file("rm.yaml", yaml, strlen(yaml)));
    struct rmfix f;
    f.rm = ag_rm_load(config, NULL, err, sizeof(err));
    if (!f.rm || ag_rm_start(f.rm, err, sizeof(err)) < 0)
        FAIL("rm: %s", err);
    /* alice may not be a node */
    f.ch = tls_channel(ag_rm_address(f.rm), "alice");
    Argot__Sched__V1__NodeId nid = ARGOT__SCHED__V1__NODE_ID__INIT;
    nid.host = "10.0.0.1";
    nid.port = 8040;
    Argot__Sched__V1__Resource res = ARGOT__SCHED__V1__RESOURCE__INIT;
    res.memory_mb = 4096;
    res.vcores = 4;
    Argot__Sched__V1__RegisterNodeManagerRequest req =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_REQUEST__INIT;
    req.node_id = &nid;
    req.resource = &res;
    Argot__Sched__V1__RegisterNodeManagerResponse *resp = NULL;
    char *message = NULL;
    CHECK_EQ(argot__sched__v1__resource_tracker__register_node_manager__invoke(
                 f.ch, &req, ag_deadline_in_ms(5000), &resp, &message),
             AG_RPC_PERMISSION_DENIED);
    CHECK_CONTAINS(message, "certificate 'alice' is not one of the node managers in tls.nodes");
    ag_free(message);
    /* carol may */
    ag_rpc_channel *carol = tls_channel(ag_rm_address(f.rm), "carol");
    ag_rpc_channel *mine = f.ch;
    f.ch = carol;
    node_register(&f, "10.0.0.1", 8040);
    f.ch = mine;
    ag_rpc_channel_free(carol);
    /* alice submits; her AM client talks TLS with her files */
    char token[1024];
    Argot__Sched__V1__ApplicationId app;
    submit_unmanaged(&f, token, sizeof(token), &app);
    char cert[600], key[600], ca[600];
    snprintf(cert, sizeof(cert), "%s/alice.crt", pki);
    snprintf(key, sizeof(key), "%s/alice.key", pki);
    snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
    struct seen s = {0};
    ag_am_opts o = {.rm = ag_rm_address(f.rm),
                    .token = token,
                    .cb = {.allocated = cb_allocated, .completed = cb_completed},
                    .ud = &s,
                    .tls_cert = cert,
                    .tls_key = key,
                    .tls_ca = ca};
    ag_am *am = ag_am_new(&o, err, sizeof(err));
    if (!am)
        FAIL("am: %s", err);
    CHECK_OK(ag_am_register(am, "am-host", 0, ""));
    CHECK_OK(ag_am_ask(am, 1, "*", 1024, 1, 1, true, "", 0));
    CHECK_OK(ag_am_allocate(am, 0.1f));
    CHECK_EQ(s.allocated, 1);
    CHECK_OK(ag_am_finish(am, AG_AM_SUCCEEDED, "done"));
    ag_am_free(am);
    /* half the files: refused at once; no files: the RM does not answer */
    ag_am_opts half = {.rm = ag_rm_address(f.rm), .token = token, .tls_key = key};
    CHECK(ag_am_new(&half, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "a client certificate needs its key");
    ag_am_opts plain = {.rm = ag_rm_address(f.rm), .token = token, .call_timeout_ms = 2000};
    ag_am *p = ag_am_new(&plain, err, sizeof(err));
    CHECK(p != NULL);
    CHECK(ag_am_register(p, "x", 0, "") < 0);
    ag_am_free(p);
    rm_down(&f);
}
