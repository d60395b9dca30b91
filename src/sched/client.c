/*
 * Becoming one's own ApplicationMaster (sched.h, ag_am_new_unmanaged): a
 * program that wants containers (fed's workers) submits an application
 * whose AM runs outside the cluster, in the program itself. Over
 * ApplicationClient: GetNewApplication, SubmitApplication with
 * unmanaged_am, then GetApplicationReport until the attempt is live and the
 * report carries its AMRM token (the RM starts an unmanaged attempt at
 * once, so the first or second report has it). The token's text goes
 * straight into an ag_am and is wiped here; it is never logged. If anything
 * fails after the submission, the application is killed so that nothing
 * is left waiting in the RM. One thread; blocking calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "argot/sched.h"
#include "argot/sched/v1/sched.argot.h"
#include "argot/sched/v1/sched.pb-c.h"
#include "chans.h"
#include "token.h"

#define CLIENT_CALL_MS       10000u
#define CLIENT_TOKEN_WAIT_MS 30000u

/* Kills the application id on ch, best effort (the caller is failing). */
static void kill_app(ag_rm_client *ch, Argot__Sched__V1__ApplicationId *id, const char *why)
{
    Argot__Sched__V1__KillApplicationRequest req = ARGOT__SCHED__V1__KILL_APPLICATION_REQUEST__INIT;
    req.application_id = id;
    req.diagnostics = (char *)why;
    Argot__Sched__V1__KillApplicationResponse *r = NULL;
    char *message = NULL;
    ag_rm_client_call(ch, &argot__sched__v1__application_client__force_kill_application__method,
                      &req.base, CLIENT_CALL_MS, (ProtobufCMessage **)&r, &message);
    ag_rpc_msg_free(r ? &r->base : NULL);
    ag_free(message);
}

/* Polls the report of id until it carries the AMRM token; its text into
 * token (cap bytes). 0, or -1 with err set. */
static int wait_token(ag_rm_client *ch, Argot__Sched__V1__ApplicationId *id, const char *rm,
                      char *token, size_t tcap, char *err, size_t cap)
{
    ag_deadline d = ag_deadline_in_ms(CLIENT_TOKEN_WAIT_MS);
    for (;;) {
        Argot__Sched__V1__GetApplicationReportRequest req =
            ARGOT__SCHED__V1__GET_APPLICATION_REPORT_REQUEST__INIT;
        req.application_id = id;
        Argot__Sched__V1__GetApplicationReportResponse *r = NULL;
        char *message = NULL;
        int st = ag_rm_client_call(
            ch, &argot__sched__v1__application_client__get_application_report__method, &req.base,
            CLIENT_CALL_MS, (ProtobufCMessage **)&r, &message);
        const Argot__Sched__V1__ApplicationReport *ar =
            st == AG_RPC_OK && r ? r->application_report : NULL;
        int rc = 1;
        if (st != AG_RPC_OK && st != AG_RPC_UNAVAILABLE) {
            snprintf(err, cap, "RM %s: report: %s: %s", rm, ag_rpc_status_name(st),
                     message ? message : "");
            rc = -1;
        } else if (ar && ar->am_rm_token) {
            const Argot__Sched__V1__Token *t = ar->am_rm_token;
            rc = ag__sched_token_text(t->identifier.data, t->identifier.len, t->password.data,
                                      t->password.len, token, tcap);
            if (rc < 0)
                snprintf(err, cap, "RM %s: the AMRM token: %s", rm, ag_strerror(rc));
        } else if (ar && (ar->yarn_application_state ==
                              ARGOT__SCHED__V1__YARN_APPLICATION_STATE__FAILED ||
                          ar->yarn_application_state ==
                              ARGOT__SCHED__V1__YARN_APPLICATION_STATE__KILLED)) {
            snprintf(err, cap, "RM %s ended the application: %s", rm,
                     ar->diagnostics ? ar->diagnostics : "");
            rc = -1;
        }
        ag_rpc_msg_free(r ? &r->base : NULL);
        ag_free(message);
        if (rc <= 0)
            return rc;
        if (ag_deadline_expired(d)) {
            snprintf(err, cap, "RM %s: no AMRM token for the application within %u ms", rm,
                     CLIENT_TOKEN_WAIT_MS);
            return -1;
        }
        ag_sleep_ms(50);
    }
}

/* GetNewApplication and SubmitApplication with an unmanaged AM; the id in
 * *out (ag_rpc_msg_free). 0, or -1 with err set. */
static int submit(ag_rm_client *ch, const ag_am_opts *o, const char *name, const char *queue,
                  Argot__Sched__V1__GetNewApplicationResponse **out, char *err, size_t cap)
{
    Argot__Sched__V1__GetNewApplicationRequest nreq =
        ARGOT__SCHED__V1__GET_NEW_APPLICATION_REQUEST__INIT;
    Argot__Sched__V1__GetNewApplicationResponse *nresp = NULL;
    char *message = NULL;
    int st = ag_rm_client_call(ch, &argot__sched__v1__application_client__get_new_application__method,
                               &nreq.base, CLIENT_CALL_MS, (ProtobufCMessage **)&nresp, &message);
    if (st != AG_RPC_OK) {
        snprintf(err, cap, "RM %s: new application: %s: %s", o->rm, ag_rpc_status_name(st),
                 message ? message : "");
        ag_free(message);
        return -1;
    }
    ag_free(message);
    message = NULL;
    Argot__Sched__V1__ApplicationSubmissionContext ctx =
        ARGOT__SCHED__V1__APPLICATION_SUBMISSION_CONTEXT__INIT;
    ctx.application_id = nresp->application_id;
    ctx.application_name = (char *)name;
    ctx.queue = (char *)(queue ? queue : "");
    ctx.unmanaged_am = true;
    ctx.application_type = "argot-fed";
    const char *user = getenv("USER");
    ctx.user = (char *)(user ? user : "argot");
    Argot__Sched__V1__SubmitApplicationRequest sreq =
        ARGOT__SCHED__V1__SUBMIT_APPLICATION_REQUEST__INIT;
    sreq.application_submission_context = &ctx;
    Argot__Sched__V1__SubmitApplicationResponse *sresp = NULL;
    st = ag_rm_client_call(ch, &argot__sched__v1__application_client__submit_application__method,
                           &sreq.base, CLIENT_CALL_MS, (ProtobufCMessage **)&sresp, &message);
    ag_rpc_msg_free(sresp ? &sresp->base : NULL);
    if (st != AG_RPC_OK) {
        snprintf(err, cap, "RM %s refused the application: %s: %s", o->rm, ag_rpc_status_name(st),
                 message ? message : "");
        ag_free(message);
        ag_rpc_msg_free(&nresp->base);
        return -1;
    }
    ag_free(message);
    *out = nresp;
    return 0;
}

ag_am *ag_am_new_unmanaged(const ag_am_opts *o, const char *name, const char *queue, char *app_id,
                           size_t id_cap, char *err, size_t cap)
{
    if (!o->rm || !*o->rm || !name || !*name) {
        snprintf(err, cap, "an unmanaged application needs the RM's address and a name");
        return NULL;
    }
    if ((o->tls_key && o->tls_key[0]) != (o->tls_cert && o->tls_cert[0])) {
        snprintf(err, cap, "TLS: a client certificate needs its key and a key its certificate");
        return NULL;
    }
    ag_rm_client *ch = ag_rm_client_new(o->rm, o->tls_cert, o->tls_key, o->tls_ca, err, cap);
    if (!ch)
        return NULL;
    ag_am *am = NULL;
    Argot__Sched__V1__GetNewApplicationResponse *nresp = NULL;
    char token[2048];
    token[0] = '\0';
    if (submit(ch, o, name, queue, &nresp, err, cap) < 0)
        goto out;
    Argot__Sched__V1__ApplicationId *id = nresp->application_id;
    if (app_id)
        ag_sched_format_app_id(id->cluster_timestamp, id->id, app_id, id_cap);
    if (wait_token(ch, id, o->rm, token, sizeof(token), err, cap) < 0) {
        kill_app(ch, id, "its master could not start");
        goto out;
    }
    ag_am_opts ao = *o;
    ao.token = token;
    am = ag_am_new(&ao, err, cap);
    if (!am)
        kill_app(ch, id, "its master could not start");
out:
    ag_wipe(token, sizeof(token));
    ag_rpc_msg_free(nresp ? &nresp->base : NULL);
    ag_rm_client_free(ch);
    return am;
}
