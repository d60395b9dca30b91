/*
 * What the sched daemons and clients share about their connections
 * (chans.c): the TLS files each side is configured with, the `tls:` config
 * section that names them, unary calls that carry a token in their
 * metadata, and channels to node managers, one per "host:port", kept for
 * the owner's life (the RM's AM launcher and the AM client each hold a
 * list; not thread-safe: the owner serializes its calls).
 */
#ifndef ARGOT_SCHED_CHANS_H
#define ARGOT_SCHED_CHANS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "argot/base.h"
#include "argot/rpc.h"

/* The metadata key of an NM token (token.h's text form): StartContainers,
 * StopContainers and GetContainerStatuses need one. */
#define AG_SCHED_NM_TOKEN_KEY "argot-nm-token"

/* TLS files (PEM), each NULL or "" when not given. cert and key: this
 * side's certificate (a server's, or a client's for mutual TLS); ca: the
 * CAs it trusts (a server with ca requires client certificates it
 * issued; a channel checks the server's certificate against it, else
 * against the system's store). On when cert or ca is set. Borrowed. */
typedef struct ag__sched_tls {
    const char *cert;
    const char *key;
    const char *ca;
} ag__sched_tls;

bool ag__sched_tls_on(const ag__sched_tls *t);
/* Sets a channel's or a server's TLS options from t (nothing when off). */
void ag__sched_tls_channel(const ag__sched_tls *t, ag_rpc_channel_opts *co);
void ag__sched_tls_server(const ag__sched_tls *t, ag_rpc_server_opts *so);

/* Reads the optional `tls: {cert: F, key: F, ca: F}` of map root (paths
 * relative to the config file; cert and key required, ca optional; each
 * must be readable) into cert, key and ca (cap bytes each; "" when
 * absent); extra: more keys the caller reads from *tls (NULL: none). 0 or
 * a config code (the place and the reason in cfg). */
int ag__sched_tls_load(ag_config *cfg, const ag_cnode *root, const char *extra, char *cert,
                       char *key, char *ca, size_t cap, const ag_cnode **tls);

/* One unary call on ch with, when mkey is set, one metadata entry. The
 * status; *resp (ag_rpc_msg_free) on AG_RPC_OK; the status message (or a
 * reason) into msg otherwise. */
int ag__sched_unary(ag_rpc_channel *ch, const ag_rpc_method *m, const ProtobufCMessage *req,
                    const char *mkey, const char *mval, uint64_t timeout_ms,
                    ProtobufCMessage **resp, char *msg, size_t cap);

typedef struct ag__chans ag__chans;

/* The channel to target in *list, made on first use (reconnect backoff from
 * 100 ms; connect_timeout_ms 0: rpc's default; tls may be NULL). NULL when
 * out of memory or target is malformed. */
ag_rpc_channel *ag__chans_get(ag__chans **list, const char *target, uint64_t connect_timeout_ms,
                              const ag__sched_tls *tls);
/* Frees every channel of *list; *list becomes empty. */
void ag__chans_free(ag__chans **list);

/* ---- the RMs: one active among several (rm.yaml ha) ------------------------- *
 *
 * Clients of the RM (NMs, AMs, the CLI) take a list of RM addresses,
 * "host:port[,host:port...]": the standby RMs serve nothing, so calls go
 * to the current address until one fails to reach it (UNAVAILABLE or
 * DEADLINE_EXCEEDED: ag__rms_failed), and then to the next one, round the
 * list. One address is the plain case. Thread-safe. */

#define AG__RMS_MAX 8

typedef struct ag__rms {
    char target[AG__RMS_MAX][256];
    ag_rpc_channel *ch[AG__RMS_MAX];
    size_t n;
    _Atomic size_t cur;
} ag__rms;

/* Parses list and makes a channel per address with co. 0, or AG_E_INVAL
 * with err naming the bad address (AG_E_NOMEM). */
int ag__rms_init(ag__rms *r, const char *list, const ag_rpc_channel_opts *co, char *err,
                 size_t cap);
void ag__rms_cleanup(ag__rms *r);
/* The channel calls go to now, and its address. */
ag_rpc_channel *ag__rms_channel(ag__rms *r, const char **target);
/* A call on ch failed with status st: moves on to the next address if it
 * could not reach ch's RM (or that RM said it is not the active one).
 * Returns whether it moved. */
bool ag__rms_failed(ag__rms *r, ag_rpc_channel *ch, int st);
/* Whether list is a valid address list (for configs and flags). */
bool ag__rms_valid(const char *list);

#endif
