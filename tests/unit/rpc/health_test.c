/*
 * The health service (src/rpc/health.c) over a real server on loopback,
 * from argot's generated client stubs: Check (SERVING, NOT_SERVING,
 * NOT_FOUND), Watch (the current status, SERVICE_UNKNOWN, every change,
 * the shutdown), and a Watch still open when the server stops.
 */
#include "argot/rpc.h"
#include "grpc/health/v1/health.argot.h"
#include "test.h"

typedef Grpc__Health__V1__HealthCheckRequest hreq;
typedef Grpc__Health__V1__HealthCheckResponse hresp;

static ag_rpc_server *up(ag_rpc_health *h, ag_rpc_channel **ch)
{
    ag_rpc_server *s = ag_rpc_server_new(NULL);
    CHECK(s);
    CHECK_OK(ag_rpc_health_register(s, h));
    CHECK_OK(ag_rpc_server_start(s, "127.0.0.1:0"));
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", ag_rpc_server_port(s));
    *ch = ag_rpc_channel_new(target, NULL);
    CHECK(*ch);
    return s;
}

/* Check: the status, or -(grpc status) on failure. */
static int check(ag_rpc_channel *ch, const char *service)
{
    hreq req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    hresp *resp;
    char *msg;
    int st = grpc__health__v1__health__check__invoke(ch, &req, ag_deadline_in_ms(10000), &resp,
                                                     &msg);
    if (st != AG_RPC_OK) {
        if (st == AG_RPC_NOT_FOUND)
            CHECK_CONTAINS(msg, service);
        ag_free(msg);
        return -st;
    }
    ag_free(msg);
    int status = resp->status;
    ag_rpc_msg_free(&resp->base);
    return status;
}

static int next_status(ag_rpc_call *c)
{
    hresp *r;
    int rc = grpc__health__v1__health__watch__recv_response(c, &r);
    if (rc != 1)
        return -100 + rc;
    int st = r->status;
    ag_rpc_msg_free(&r->base);
    return st;
}

TEST_TIMEOUT(rpc_health_check_and_watch, 60)
{
    ag_rpc_health *h = ag_rpc_health_new();
    CHECK(h);
    ag_rpc_channel *ch;
    ag_rpc_server *s = up(h, &ch);

    CHECK_EQ(check(ch, ""), AG_RPC_HEALTH_SERVING);
    CHECK_EQ(check(ch, "argot.link.v1.Link"), -AG_RPC_NOT_FOUND);
    CHECK_OK(ag_rpc_health_set(h, "argot.link.v1.Link", AG_RPC_HEALTH_NOT_SERVING));
    CHECK_EQ(check(ch, "argot.link.v1.Link"), AG_RPC_HEALTH_NOT_SERVING);
    CHECK_EQ(ag_rpc_health_set(h, "x", 7), AG_E_INVAL);

    /* a watch of a service not yet known, and one of the server */
    hreq req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = "later";
    ag_rpc_call *w = grpc__health__v1__health__watch__start(ch, ag_deadline_in_ms(20000));
    CHECK_OK(grpc__health__v1__health__watch__send_request(w, &req, 0));
    CHECK_OK(ag_rpc_call_close_send(w));
    CHECK_EQ(next_status(w), AG_RPC_HEALTH_SERVICE_UNKNOWN);
    req.service = "";
    ag_rpc_call *w0 = grpc__health__v1__health__watch__start(ch, ag_deadline_in_ms(20000));
    CHECK_OK(grpc__health__v1__health__watch__send_request(w0, &req, 0));
    CHECK_OK(ag_rpc_call_close_send(w0));
    CHECK_EQ(next_status(w0), AG_RPC_HEALTH_SERVING);

    CHECK_OK(ag_rpc_health_set(h, "later", AG_RPC_HEALTH_SERVING));
    CHECK_EQ(next_status(w), AG_RPC_HEALTH_SERVING);
    CHECK_OK(ag_rpc_health_set(h, "later", AG_RPC_HEALTH_SERVING)); /* no change: nothing sent */
    CHECK_OK(ag_rpc_health_set(h, "later", AG_RPC_HEALTH_NOT_SERVING));
    CHECK_EQ(next_status(w), AG_RPC_HEALTH_NOT_SERVING);
    CHECK_OK(ag_rpc_health_set(h, "later", AG_RPC_HEALTH_SERVING));
    CHECK_EQ(next_status(w), AG_RPC_HEALTH_SERVING);

    /* the client ends one watch; the other hears the shutdown */
    ag_rpc_call_cancel(w);
    ag_rpc_call_free(w);
    ag_rpc_health_shutdown(h);
    CHECK_EQ(next_status(w0), AG_RPC_HEALTH_NOT_SERVING);
    CHECK_EQ(check(ch, ""), AG_RPC_HEALTH_NOT_SERVING);
    CHECK_OK(ag_rpc_health_set(h, "", AG_RPC_HEALTH_SERVING)); /* ignored from now on */
    CHECK_EQ(check(ch, ""), AG_RPC_HEALTH_NOT_SERVING);

    /* the server stops with w0 still open: its handler returns */
    ag_rpc_server_shutdown(s, 100);
    ag_rpc_call_status(w0, NULL);
    ag_rpc_call_free(w0);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
    ag_rpc_health_free(h);
}

TEST_TIMEOUT(rpc_health_many_watchers, 60)
{
    ag_rpc_health *h = ag_rpc_health_new();
    CHECK(h);
    ag_rpc_channel *ch;
    ag_rpc_server *s = up(h, &ch);
    enum { N = 8 };
    ag_rpc_call *w[N];
    hreq req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = "svc";
    for (int i = 0; i < N; i++) {
        w[i] = grpc__health__v1__health__watch__start(ch, ag_deadline_in_ms(20000));
        CHECK_OK(grpc__health__v1__health__watch__send_request(w[i], &req, 0));
        CHECK_OK(ag_rpc_call_close_send(w[i]));
        CHECK_EQ(next_status(w[i]), AG_RPC_HEALTH_SERVICE_UNKNOWN);
    }
    for (int k = 0; k < 20; k++) {
        int st = k % 2 ? AG_RPC_HEALTH_NOT_SERVING : AG_RPC_HEALTH_SERVING;
        CHECK_OK(ag_rpc_health_set(h, "svc", st));
        for (int i = 0; i < N; i++)
            CHECK_EQ(next_status(w[i]), st);
    }
    for (int i = 0; i < N; i++) {
        ag_rpc_call_cancel(w[i]);
        ag_rpc_call_free(w[i]);
    }
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
    ag_rpc_health_free(h);
}

TEST_FM(rpc_health_state_failmalloc)
{
    ag_rpc_health *h = ag_rpc_health_new();
    FM_NEW(h);
    FM_TRY(ag_rpc_health_set(h, "a", AG_RPC_HEALTH_SERVING), 0);
    FM_TRY(ag_rpc_health_set(h, "b", AG_RPC_HEALTH_NOT_SERVING), 0);
    FM_TRY(ag_rpc_health_set(h, "a", AG_RPC_HEALTH_NOT_SERVING), 0);
    ag_rpc_health_shutdown(h);
out:
    ag_rpc_health_free(h);
}
