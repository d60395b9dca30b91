/*
 * Typed methods (ag_rpc_server_register_method): protobuf requests and
 * responses through protobuf-c descriptors, the single-request checks, and
 * handlers on a pool thread or on the loop (AG_RPC_ON_LOOP). The messages
 * are the link's (argot.link.v1.Frame and Ack), with methods made up here.
 */
#include <pthread.h>

#include "argot/link/v1/link.pb-c.h"
#include "argot/rpc.h"
#include "test.h"

static const ag_rpc_method m_unary = {"/t.T/Unary", &argot__link__v1__frame__descriptor,
                                      &argot__link__v1__ack__descriptor, AG_RPC_UNARY};
static const ag_rpc_method m_loop = {"/t.T/Loop", &argot__link__v1__frame__descriptor,
                                     &argot__link__v1__ack__descriptor, AG_RPC_UNARY};
static const ag_rpc_method m_many = {"/t.T/Many", &argot__link__v1__frame__descriptor,
                                     &argot__link__v1__ack__descriptor, AG_RPC_SERVER_STREAMING};
static const ag_rpc_method m_sum = {"/t.T/Sum", &argot__link__v1__frame__descriptor,
                                    &argot__link__v1__ack__descriptor, AG_RPC_CLIENT_STREAMING};
static const ag_rpc_method m_none = {"/t.T/None", &argot__link__v1__frame__descriptor,
                                     &argot__link__v1__ack__descriptor, AG_RPC_UNARY};

/* Unary: the ack's seq is the frame's seq + len(data); the calling thread
 * is recorded, to tell the loop from the pool. */
static int h_unary(ag_rpc_call *c, const ProtobufCMessage *req, void *ud)
{
    const Argot__Link__V1__Frame *f = (const Argot__Link__V1__Frame *)req;
    if (ud)
        *(pthread_t *)ud = pthread_self();
    Argot__Link__V1__Ack a = ARGOT__LINK__V1__ACK__INIT;
    a.seq = f->seq + f->data.len;
    return ag_rpc_call_send_msg(c, &a.base, 0) < 0 ? AG_RPC_CANCELLED : AG_RPC_OK;
}

/* Server streaming: seq acks 1..n. */
static int h_many(ag_rpc_call *c, const ProtobufCMessage *req, void *ud)
{
    (void)ud;
    const Argot__Link__V1__Frame *f = (const Argot__Link__V1__Frame *)req;
    for (uint64_t i = 1; i <= f->seq; i++) {
        Argot__Link__V1__Ack a = ARGOT__LINK__V1__ACK__INIT;
        a.seq = i;
        if (ag_rpc_call_send_msg(c, &a.base, 0) < 0)
            return AG_RPC_CANCELLED;
    }
    return AG_RPC_OK;
}

/* Client streaming: the sum of the seqs. */
static int h_sum(ag_rpc_call *c, const ProtobufCMessage *req, void *ud)
{
    (void)ud;
    CHECK(req == NULL);
    uint64_t sum = 0;
    ProtobufCMessage *m;
    int rc;
    while ((rc = ag_rpc_call_recv_msg(c, &argot__link__v1__frame__descriptor, &m)) == 1) {
        sum += ((Argot__Link__V1__Frame *)m)->seq;
        ag_rpc_msg_free(m);
    }
    if (rc < 0)
        return rc == AG_E_RPC_PARSE ? AG_RPC_INTERNAL : AG_RPC_CANCELLED;
    Argot__Link__V1__Ack a = ARGOT__LINK__V1__ACK__INIT;
    a.seq = sum;
    return ag_rpc_call_send_msg(c, &a.base, 0) < 0 ? AG_RPC_CANCELLED : AG_RPC_OK;
}

/* A unary handler that forgets to answer. */
static int h_none(ag_rpc_call *c, const ProtobufCMessage *req, void *ud)
{
    (void)c;
    (void)req;
    (void)ud;
    return AG_RPC_OK;
}

static pthread_t pool_thread, loop_thread;

static ag_rpc_server *typed_server(char *target, size_t cap)
{
    ag_rpc_server_opts o;
    ag_rpc_server_opts_init(&o);
    o.loops = 1;
    ag_rpc_server *s = ag_rpc_server_new(&o);
    CHECK(s);
    CHECK_OK(ag_rpc_server_register_method(s, &m_unary, h_unary, &pool_thread, 0));
    CHECK_OK(ag_rpc_server_register_method(s, &m_loop, h_unary, &loop_thread, AG_RPC_ON_LOOP));
    CHECK_OK(ag_rpc_server_register_method(s, &m_many, h_many, NULL, AG_RPC_ON_LOOP));
    CHECK_OK(ag_rpc_server_register_method(s, &m_sum, h_sum, NULL, 0));
    CHECK_OK(ag_rpc_server_register_method(s, &m_none, h_none, NULL, 0));
    /* streaming requests cannot run on the loop: they would block it */
    CHECK_EQ(ag_rpc_server_register_method(s, &m_sum, h_sum, NULL, AG_RPC_ON_LOOP), AG_E_INVAL);
    CHECK(strstr(ag_rpc_server_errmsg(s), "only unary and server-streaming"));
    CHECK_OK(ag_rpc_server_start(s, "127.0.0.1:0"));
    snprintf(target, cap, "127.0.0.1:%d", ag_rpc_server_port(s));
    return s;
}

static uint64_t unary_seq(ag_rpc_channel *ch, const ag_rpc_method *m, uint64_t seq, const char *data)
{
    Argot__Link__V1__Frame f = ARGOT__LINK__V1__FRAME__INIT;
    f.seq = seq;
    f.data.data = (uint8_t *)data;
    f.data.len = strlen(data);
    ProtobufCMessage *resp;
    char *msg;
    int st = ag_rpc_unary_msg(ch, m, &f.base, ag_deadline_in_ms(10000), &resp, &msg);
    if (st != AG_RPC_OK)
        FAIL("%s: %s: %s", m->path, ag_rpc_status_name(st), msg);
    ag_free(msg);
    uint64_t got = ((Argot__Link__V1__Ack *)resp)->seq;
    ag_rpc_msg_free(resp);
    return got;
}

TEST_TIMEOUT(rpc_typed_methods_pool_and_loop, 60)
{
    char target[64];
    ag_rpc_server *s = typed_server(target, sizeof(target));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    CHECK_EQ(unary_seq(ch, &m_unary, 40, "ab"), 42);
    CHECK_EQ(unary_seq(ch, &m_loop, 7, "abc"), 10);
    /* the loop handler ran on the server's loop thread, the other on a
     * pool thread: two different threads, neither this one */
    CHECK(!pthread_equal(pool_thread, loop_thread));
    CHECK(!pthread_equal(loop_thread, pthread_self()));
    /* many in a row: the pool reuses its thread */
    for (int i = 0; i < 50; i++)
        CHECK_EQ(unary_seq(ch, (i & 1) ? &m_loop : &m_unary, (uint64_t)i, "x"), (uint64_t)i + 1);

    /* server streaming on the loop */
    Argot__Link__V1__Frame f = ARGOT__LINK__V1__FRAME__INIT;
    f.seq = 5;
    ag_rpc_call *c = ag_rpc_call_start(ch, &m_many, ag_deadline_in_ms(10000));
    CHECK_OK(ag_rpc_call_send_msg(c, &f.base, 0));
    CHECK_OK(ag_rpc_call_close_send(c));
    ProtobufCMessage *m;
    uint64_t want = 1;
    while (ag_rpc_call_recv_msg(c, &argot__link__v1__ack__descriptor, &m) == 1) {
        CHECK_EQ(((Argot__Link__V1__Ack *)m)->seq, want);
        want++;
        ag_rpc_msg_free(m);
    }
    CHECK_EQ(want, 6);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);

    /* client streaming on the pool */
    c = ag_rpc_call_start(ch, &m_sum, ag_deadline_in_ms(10000));
    for (uint64_t i = 1; i <= 10; i++) {
        f.seq = i;
        CHECK_OK(ag_rpc_call_send_msg(c, &f.base, 0));
    }
    CHECK_OK(ag_rpc_call_close_send(c));
    CHECK_EQ(ag_rpc_call_recv_msg(c, &argot__link__v1__ack__descriptor, &m), 1);
    CHECK_EQ(((Argot__Link__V1__Ack *)m)->seq, 55);
    ag_rpc_msg_free(m);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

TEST_TIMEOUT(rpc_typed_bad_requests_get_internal, 60)
{
    char target[64];
    ag_rpc_server *s = typed_server(target, sizeof(target));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    uint8_t *resp;
    size_t len;
    char *msg;
    /* bytes that are not a Frame (a truncated field), on the pool and on the loop */
    const char *paths[] = {"/t.T/Unary", "/t.T/Loop"};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(ag_rpc_unary(ch, paths[i], "\x3a\x05zz", 4, ag_deadline_in_ms(5000), &resp, &len,
                              &msg),
                 AG_RPC_INTERNAL);
        CHECK_STR_EQ(msg, "cannot parse the request as argot.link.v1.Frame");
        ag_free(msg);
    }
    /* two requests to a unary method */
    ag_rpc_call *c = ag_rpc_call_new(ch, "/t.T/Unary", ag_deadline_in_ms(5000));
    CHECK_OK(ag_rpc_call_send(c, "", 0));
    CHECK_OK(ag_rpc_call_send(c, "", 0));
    CHECK_OK(ag_rpc_call_close_send(c));
    const char *m;
    CHECK_EQ(ag_rpc_call_status(c, &m), AG_RPC_INTERNAL);
    CHECK_STR_EQ(m, "more than one request message for /t.T/Unary");
    ag_rpc_call_free(c);
    /* none */
    c = ag_rpc_call_new(ch, "/t.T/Loop", ag_deadline_in_ms(5000));
    CHECK_OK(ag_rpc_call_close_send(c));
    CHECK_EQ(ag_rpc_call_status(c, &m), AG_RPC_INTERNAL);
    CHECK_STR_EQ(m, "no request message for /t.T/Loop");
    ag_rpc_call_free(c);
    /* a handler that sent no response */
    CHECK_EQ(ag_rpc_unary(ch, "/t.T/None", "", 0, ag_deadline_in_ms(5000), &resp, &len, &msg),
             AG_RPC_INTERNAL);
    CHECK_STR_EQ(msg, "the handler of /t.T/None sent 0 responses (one expected)");
    ag_free(msg);
    /* a response that is not an Ack, to a typed client: INTERNAL there */
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}

/* A cancelled on-loop call whose request never completed: the handler never
 * runs, nothing leaks, the server frees cleanly. */
TEST_TIMEOUT(rpc_typed_loop_call_cancelled_before_its_request, 60)
{
    char target[64];
    ag_rpc_server *s = typed_server(target, sizeof(target));
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    ag_rpc_call *c = ag_rpc_call_new(ch, "/t.T/Loop", ag_deadline_in_ms(5000));
    CHECK_OK(ag_rpc_call_send(c, "", 0)); /* no half-close */
    ag_sleep_ms(50);
    ag_rpc_call_cancel(c);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_CANCELLED);
    ag_rpc_call_free(c);
    CHECK_EQ(unary_seq(ch, &m_loop, 1, ""), 1); /* the server goes on */
    ag_rpc_channel_free(ch);
    ag_rpc_server_free(s);
}
