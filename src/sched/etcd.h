/*
 * A small blocking etcd v3 client for the resource manager's high
 * availability (rm.c's elector, store_etcd.c): KV Range and Txn, and
 * Lease grant, keep-alive and revoke, over rpc (proto/etcd/v3/rpc.proto).
 * One channel per endpoint, made on first use; a call that fails to reach
 * an endpoint (UNAVAILABLE, DEADLINE_EXCEEDED) is tried on the next one,
 * each endpoint at most once per call. Thread-safe: calls from several
 * threads may run at once (rpc channels are).
 */
#ifndef ARGOT_SCHED_ETCD_H
#define ARGOT_SCHED_ETCD_H

#include "argot/base.h"
#include "etcd/v3/rpc.pb-c.h"

#define AG__ETCD_MAX_ENDPOINTS 8

typedef struct ag__etcd ag__etcd;

/* endpoints: "host:port" each (an "http://" in front is allowed and
 * ignored). timeout_ms bounds each call on one endpoint. NULL on
 * allocation failure. */
ag__etcd *ag__etcd_new(const char *const *endpoints, size_t n, uint64_t timeout_ms);
void ag__etcd_free(ag__etcd *e);

/* Each returns 0, or -1 with err saying which endpoints failed how. */
int ag__etcd_txn(ag__etcd *e, const Etcdserverpb__TxnRequest *req,
                 Etcdserverpb__TxnResponse **resp, char *err, size_t cap);
/* [key, end) (end_len 0: key alone), at most limit keys (0: all). */
int ag__etcd_range(ag__etcd *e, const void *key, size_t key_len, const void *end, size_t end_len,
                   int64_t limit, Etcdserverpb__RangeResponse **resp, char *err, size_t cap);
/* A lease of ttl_s seconds: *id, and *granted (the server's TTL, which may
 * be more). */
int ag__etcd_grant(ag__etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted, char *err,
                   size_t cap);
/* Renews lease id: *ttl_left is what etcd says remains (<= 0: expired). */
int ag__etcd_keepalive(ag__etcd *e, int64_t id, int64_t *ttl_left, char *err, size_t cap);
int ag__etcd_revoke(ag__etcd *e, int64_t id, char *err, size_t cap);

/* The end of the range of every key that starts with prefix (prefix with
 * its last byte below 0xff incremented) into end (len + 1 bytes); its
 * length. */
size_t ag__etcd_prefix_end(const char *prefix, size_t len, uint8_t *end);

#endif
