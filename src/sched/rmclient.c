/*
 * A client of the RM's services over the RM address list (sched.h,
 * ag_rm_client): the channels and the failover are chans.h's ag__rms; a
 * call that cannot reach the active RM is tried on the next address, round
 * the list, for about as long as an election takes.
 */
#include <stdio.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "argot/sched.h"
#include "chans.h"

struct ag_rm_client {
    ag__rms rms;
    char cert[1024], key[1024], ca[1024];
};

#define FAILOVER_MS 8000 /* an election (lease 2 s by default) and a recovery */

ag_rm_client *ag_rm_client_new(const char *rms, const char *tls_cert, const char *tls_key,
                               const char *tls_ca, char *err, size_t cap)
{
    ag_rm_client *c = ag_calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
        return NULL;
    }
    snprintf(c->cert, sizeof(c->cert), "%s", tls_cert ? tls_cert : "");
    snprintf(c->key, sizeof(c->key), "%s", tls_key ? tls_key : "");
    snprintf(c->ca, sizeof(c->ca), "%s", tls_ca ? tls_ca : "");
    ag__sched_tls t = {c->cert, c->key, c->ca};
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    co.backoff_initial_ms = 100;
    co.backoff_max_ms = 1000;
    ag__sched_tls_channel(&t, &co);
    if (ag__rms_init(&c->rms, rms, &co, err, cap) < 0) {
        ag_free(c);
        return NULL;
    }
    return c;
}

void ag_rm_client_free(ag_rm_client *c)
{
    if (!c)
        return;
    ag__rms_cleanup(&c->rms);
    ag_free(c);
}

const char *ag_rm_client_target(ag_rm_client *c)
{
    const char *t = NULL;
    ag__rms_channel(&c->rms, &t);
    return t;
}

int ag_rm_client_call(ag_rm_client *c, const ag_rpc_method *m, const ProtobufCMessage *req,
                      uint64_t timeout_ms, ProtobufCMessage **resp, char **message)
{
    uint64_t t0 = ag_now_ms();
    for (size_t tries = 0;; tries++) {
        ag_rpc_channel *ch = ag__rms_channel(&c->rms, NULL);
        char *msg = NULL;
        *resp = NULL;
        int st = ag_rpc_unary_msg(ch, m, req, ag_deadline_in_ms(timeout_ms ? timeout_ms : 10000),
                                  resp, &msg);
        if (st == AG_RPC_OK || !ag__rms_failed(&c->rms, ch, st) ||
            ag_now_ms() - t0 > FAILOVER_MS) {
            if (message)
                *message = msg;
            else
                ag_free(msg);
            return st;
        }
        ag_free(msg);
        if ((tries + 1) % c->rms.n == 0) /* a round without the active RM: an election */
            ag_sleep_ms(200);
    }
}
