/*
 * Connections of sched (chans.h): TLS options and config, unary calls with
 * a token in their metadata, and a short list of channels to node
 * managers, searched by target.
 */
#include <stdatomic.h>
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

/* ---- the RMs ------------------------------------------------------------------------- */

/* The next address of list at *at (advanced past it and its comma) into
 * out: false at the end or for an empty or too long one. */
static bool next_addr(const char **at, char *out, size_t cap, bool *bad)
{
    const char *p = *at;
    if (!*p) {
        out[0] = 0; /* named as the bad one after a trailing comma */
        return false;
    }
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    *at = e ? e + 1 : p + n;
    if (e && !e[1])
        *bad = true; /* a trailing comma: an empty last address */
    while (n > 0 && p[0] == ' ')
        p++, n--;
    while (n > 0 && p[n - 1] == ' ')
        n--;
    if (n == 0 || n >= cap || !memchr(p, ':', n)) {
        *bad = true;
        snprintf(out, cap, "%.*s", (int)AG_MIN(n, cap - 1), p);
        return false;
    }
    memcpy(out, p, n);
    out[n] = 0;
    return true;
}

bool ag__rms_valid(const char *list)
{
    char a[256];
    bool bad = false;
    size_t n = 0;
    const char *at = list ? list : "";
    while (next_addr(&at, a, sizeof(a), &bad))
        n++;
    return !bad && n > 0 && n <= AG__RMS_MAX;
}

int ag__rms_init(ag__rms *r, const char *list, const ag_rpc_channel_opts *co, char *err,
                 size_t cap)
{
    memset(r, 0, sizeof(*r));
    list = list ? list : "";
    const char *at = list;
    bool bad = false;
    char a[256] = "";
    while (r->n < AG__RMS_MAX && next_addr(&at, a, sizeof(a), &bad)) {
        snprintf(r->target[r->n], sizeof(r->target[0]), "%s", a);
        r->ch[r->n] = ag_rpc_channel_new(a, co);
        if (!r->ch[r->n] || ag_rpc_channel_errmsg(r->ch[r->n])[0]) {
            snprintf(err, cap, "RM %s: %s", a,
                     r->ch[r->n] ? ag_rpc_channel_errmsg(r->ch[r->n]) : "not host:port");
            r->n++;
            ag__rms_cleanup(r);
            return AG_E_INVAL;
        }
        r->n++;
    }
    if (bad) {
        snprintf(err, cap, "RM address '%s' is not host:port%s%s%s", a,
                 strchr(list, ',') ? " (in the list '" : "", strchr(list, ',') ? list : "",
                 strchr(list, ',') ? "')" : "");
        ag__rms_cleanup(r);
        return AG_E_INVAL;
    }
    if (r->n == 0 || *at) {
        snprintf(err, cap, "RM address list '%s': %s", list ? list : "",
                 *at ? "more than 8 addresses" : "no address");
        ag__rms_cleanup(r);
        return AG_E_INVAL;
    }
    atomic_init(&r->cur, 0);
    return 0;
}

void ag__rms_cleanup(ag__rms *r)
{
    for (size_t i = 0; i < r->n; i++)
        ag_rpc_channel_free(r->ch[i]);
    r->n = 0;
}

ag_rpc_channel *ag__rms_channel(ag__rms *r, const char **target)
{
    size_t i = atomic_load(&r->cur) % r->n;
    if (target)
        *target = r->target[i];
    return r->ch[i];
}

bool ag__rms_failed(ag__rms *r, ag_rpc_channel *ch, int st)
{
    if (r->n < 2 || (st != AG_RPC_UNAVAILABLE && st != AG_RPC_DEADLINE_EXCEEDED))
        return false;
    size_t i = atomic_load(&r->cur);
    if (r->ch[i % r->n] != ch)
        return true; /* another thread moved on already */
    if (atomic_compare_exchange_strong(&r->cur, &i, (i + 1) % r->n))
        AG_LOG(AG_LOG_DEBUG, "sched", "rm_failover from=%s to=%s", r->target[i % r->n],
               r->target[(i + 1) % r->n]);
    return true;
}
