/*
 * Connections of sched (chans.h): TLS options and config, unary calls with
 * a token in their metadata, and a short list of channels to node
 * managers, searched by target.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "chans.h"

static bool set(const char *s)
{
    return s && s[0];
}

bool ag__sched_tls_on(const ag__sched_tls *t)
{
    return t && (set(t->cert) || set(t->ca));
}

void ag__sched_tls_channel(const ag__sched_tls *t, ag_rpc_channel_opts *co)
{
    if (!ag__sched_tls_on(t))
        return;
    co->tls = true;
    co->tls_cert_file = set(t->cert) ? t->cert : NULL;
    co->tls_key_file = set(t->key) ? t->key : NULL;
    co->tls_ca_file = set(t->ca) ? t->ca : NULL;
}

void ag__sched_tls_server(const ag__sched_tls *t, ag_rpc_server_opts *so)
{
    if (!ag__sched_tls_on(t))
        return;
    so->tls_cert_file = set(t->cert) ? t->cert : NULL;
    so->tls_key_file = set(t->key) ? t->key : NULL;
    so->tls_ca_file = set(t->ca) ? t->ca : NULL;
}

int ag__sched_tls_load(ag_config *cfg, const ag_cnode *root, const char *extra, char *cert,
                       char *key, char *ca, size_t cap, const ag_cnode **tlsp)
{
    const char *const keys[] = {"cert", "key", "ca", extra, NULL};
    char *outs[3] = {cert, key, ca};
    const ag_cnode *tls = NULL;
    cert[0] = key[0] = ca[0] = '\0';
    int rc = ag_config_get_map(cfg, root, "tls", AG_OPTIONAL, &tls);
    if (tlsp)
        *tlsp = tls;
    if (rc < 0 || !tls)
        return rc;
    rc = ag_config_check_keys(cfg, tls, keys);
    for (int i = 0; rc == 0 && i < 3; i++) {
        rc = ag_config_get_path(cfg, tls, keys[i], i < 2 ? AG_REQUIRED : AG_OPTIONAL, outs[i], cap);
        if (rc == 0 && outs[i][0] && access(outs[i], R_OK) != 0)
            rc = ag_config_errorf(cfg, ag_cnode_get(tls, keys[i]), AG_E_CONFIG_VALUE,
                                  "tls.%s: cannot read %s", keys[i], outs[i]);
    }
    return rc;
}

int ag__sched_unary(ag_rpc_channel *ch, const ag_rpc_method *m, const ProtobufCMessage *req,
                    const char *mkey, const char *mval, uint64_t timeout_ms,
                    ProtobufCMessage **resp, char *msg, size_t cap)
{
    *resp = NULL;
    msg[0] = '\0';
    ag_rpc_call *c = ag_rpc_call_start(ch, m, ag_deadline_in_ms(timeout_ms));
    if (!c || (mkey && ag_rpc_call_add_metadata(c, mkey, mval, strlen(mval)) < 0)) {
        ag_rpc_call_free(c);
        snprintf(msg, cap, "%s", ag_strerror(AG_E_NOMEM));
        return AG_RPC_RESOURCE_EXHAUSTED;
    }
    int rc = ag_rpc_call_send_msg(c, req, 0);
    if (rc == 0)
        rc = ag_rpc_call_close_send(c);
    if (rc == 0 && ag_rpc_call_recv_msg(c, m->output, resp) != 1)
        *resp = NULL;
    const char *message = NULL;
    int st = ag_rpc_call_status(c, &message);
    if (st != AG_RPC_OK) {
        ag_rpc_msg_free(*resp);
        *resp = NULL;
    } else if (!*resp) {
        st = AG_RPC_INTERNAL;
        message = "no response";
    }
    if (st != AG_RPC_OK)
        snprintf(msg, cap, "%s", message ? message : "");
    ag_rpc_call_free(c);
    return st;
}

struct ag__chans {
    char target[300];
    ag_rpc_channel *ch;
    struct ag__chans *next;
};

ag_rpc_channel *ag__chans_get(ag__chans **list, const char *target, uint64_t connect_timeout_ms,
                              const ag__sched_tls *tls)
{
    for (ag__chans *n = *list; n; n = n->next)
        if (strcmp(n->target, target) == 0)
            return n->ch;
    ag__chans *n = ag_calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    snprintf(n->target, sizeof(n->target), "%s", target);
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    co.backoff_initial_ms = 100;
    if (connect_timeout_ms)
        co.connect_timeout_ms = connect_timeout_ms;
    ag__sched_tls_channel(tls, &co);
    n->ch = ag_rpc_channel_new(target, &co);
    if (!n->ch) {
        ag_free(n);
        return NULL;
    }
    n->next = *list;
    *list = n;
    return n->ch;
}

void ag__chans_free(ag__chans **list)
{
    while (*list) {
        ag__chans *n = *list;
        *list = n->next;
        ag_rpc_channel_free(n->ch);
        ag_free(n);
    }
}
