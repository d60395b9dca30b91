/*
 * Tests for becoming one's own master (src/sched/client.c): against an
 * in-process RM on a loopback port, ag_am_new_unmanaged submits an
 * application whose AM is the caller and returns an ag_am that registers,
 * allocates and finishes; the report then says FINISHED with the
 * diagnostics given. An RM that refuses (an unknown queue) or cannot be
 * reached fails with a message naming it, and leaves no application
 * waiting.
 */
#include "argot/sched.h"
#include "argot/sched/v1/sched.argot.h"
#include "argot/sched/v1/sched.pb-c.h"
#include "test.h"

static ag_rm *rm_up(void)
{
    char err[AG_ERRMSG_MAX];
    ag_log_set_level(AG_LOG_WARN);
    ag_rm *rm = ag_rm_load(NULL, "127.0.0.1:0", err, sizeof(err));
    if (!rm)
        FAIL("rm: %s", err);
    if (ag_rm_start(rm, err, sizeof(err)) < 0)
        FAIL("rm start: %s", err);
    return rm;
}

/* The report of the application named by its text id. */
static Argot__Sched__V1__GetApplicationReportResponse *report(const char *rm, const char *id)
{
    int64_t ts;
    int32_t n;
    CHECK_OK(ag_sched_parse_app_id(id, &ts, &n));
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    ag_rpc_channel *ch = ag_rpc_channel_new(rm, &co);
    CHECK(ch != NULL);
    Argot__Sched__V1__ApplicationId aid = ARGOT__SCHED__V1__APPLICATION_ID__INIT;
    aid.cluster_timestamp = ts;
    aid.id = n;
    Argot__Sched__V1__GetApplicationReportRequest req =
        ARGOT__SCHED__V1__GET_APPLICATION_REPORT_REQUEST__INIT;
    req.application_id = &aid;
    Argot__Sched__V1__GetApplicationReportResponse *r = NULL;
    char *message = NULL;
    CHECK_EQ(argot__sched__v1__application_client__get_application_report__invoke(
                 ch, &req, ag_deadline_in_ms(5000), &r, &message),
             AG_RPC_OK);
    ag_free(message);
    ag_rpc_channel_free(ch);
    return r;
}

TEST(client_unmanaged_am_registers_and_finishes)
{
    ag_rm *rm = rm_up();
    ag_am_opts o = {.rm = ag_rm_address(rm)};
    char id[64] = "", err[AG_ERRMSG_MAX];
    ag_am *am = ag_am_new_unmanaged(&o, "client-test", NULL, id, sizeof(id), err, sizeof(err));
    if (!am)
        FAIL("unmanaged: %s", err);
    CHECK(strncmp(id, "application_", 12) == 0);
    CHECK_OK(ag_am_register(am, "localhost", 0, ""));
    CHECK_OK(ag_am_allocate(am, 0));
    Argot__Sched__V1__GetApplicationReportResponse *r = report(ag_rm_address(rm), id);
    CHECK_EQ(r->application_report->yarn_application_state,
             ARGOT__SCHED__V1__YARN_APPLICATION_STATE__RUNNING);
    CHECK_STR_EQ(r->application_report->application_type, "argot-fed");
    CHECK_STR_EQ(r->application_report->name, "client-test");
    ag_rpc_msg_free(&r->base);
    CHECK_OK(ag_am_finish(am, AG_AM_FAILED, "worker 1 died"));
    ag_am_free(am);
    r = report(ag_rm_address(rm), id);
    CHECK_EQ(r->application_report->final_application_status,
             ARGOT__SCHED__V1__FINAL_APPLICATION_STATUS__APP_FAILED);
    CHECK_CONTAINS(r->application_report->diagnostics, "worker 1 died");
    ag_rpc_msg_free(&r->base);
    ag_rm_free(rm);
}

TEST(client_unmanaged_am_errors_name_the_rm)
{
    ag_rm *rm = rm_up();
    ag_am_opts o = {.rm = ag_rm_address(rm)};
    char err[AG_ERRMSG_MAX];
    CHECK(ag_am_new_unmanaged(&o, "client-test", "root.nosuch", NULL, 0, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "refused the application");
    CHECK_CONTAINS(err, ag_rm_address(rm));
    ag_rm_free(rm);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ag_test_free_port());
    o.rm = addr;
    o.call_timeout_ms = 500;
    CHECK(ag_am_new_unmanaged(&o, "client-test", NULL, NULL, 0, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, addr);
    o.rm = "nocolon";
    CHECK(ag_am_new_unmanaged(&o, "client-test", NULL, NULL, 0, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "'nocolon' is not host:port");
}
