/*
 * argot link: party-to-party messages for the MPC engine and the federated
 * runtime (design.md: "mpc never knows about sockets").
 *
 * A link is one party's endpoint in a job of n parties, ranked 0..n-1. It
 * sends byte messages to a peer under a 64-bit tag and receives the message
 * a given peer sent under a given tag; messages between one pair under one
 * tag are delivered in order. Tags are chosen by the caller so that both
 * sides agree (every party runs the same program: the MPC session numbers
 * its operations). Implementations: in-memory (threads of one process, for
 * simulation, tests and benchmarks) here; over gRPC with the fed module.
 *
 * Every link counts what it sends and receives, and its rounds: a round is
 * a send phase, counted when a party sends after having received (or for
 * its first send). A kernel's latency in rounds is the largest count over
 * the parties, as in SPU's cost model.
 *
 * Failure is never a hang: a receive waits at most the link's timeout
 * (default 60 s) and then fails with AG_E_LINK_TIMEOUT naming the peer; a
 * party that fails calls ag_link_abort(), and every pending and later
 * receive at every party fails with AG_E_LINK_ABORTED naming that party.
 *
 * Threads: one thread uses an endpoint at a time; distinct endpoints of a
 * group may be used from distinct threads (that is the point).
 */
#ifndef ARGOT_LINK_H
#define ARGOT_LINK_H

#include "argot/base.h"

typedef struct ag_link ag_link;

typedef struct ag_link_stats {
    uint64_t bytes_sent; /* payload bytes, all peers */
    uint64_t bytes_recv;
    uint64_t msgs_sent;
    uint64_t msgs_recv;
    uint64_t rounds;     /* send phases */
} ag_link_stats;

#define AG_LINK_DEFAULT_TIMEOUT_MS 60000u

unsigned ag_link_rank(const ag_link *l);
unsigned ag_link_size(const ag_link *l);
/* The name of the party of rank r ("alice"); "party<r>" if unnamed. */
const char *ag_link_party(const ag_link *l, unsigned r);

/* Sends a copy of len bytes to peer under tag. */
int ag_link_send(ag_link *l, unsigned peer, uint64_t tag, const void *data, size_t len);
/* Sends data (allocated with ag_malloc) without copying: on success or
 * failure, takes ownership of data. */
int ag_link_send_take(ag_link *l, unsigned peer, uint64_t tag, void *data, size_t len);
/* Receives the message peer sent under tag: *data (free with ag_free) and
 * *len. Waits up to the link's timeout. */
int ag_link_recv(ag_link *l, unsigned peer, uint64_t tag, void **data, size_t *len);
/* As ag_link_recv, into buf, which the message must fill exactly
 * (AG_E_LINK_SIZE otherwise: a peer disagreeing on a shape). */
int ag_link_recv_into(ag_link *l, unsigned peer, uint64_t tag, void *buf, size_t len);
/* As ag_link_recv for a message that must be len bytes (AG_E_LINK_SIZE
 * otherwise, as ag_link_recv_into), without copying it: on success *data
 * (free with ag_free) holds it. */
int ag_link_recv_exact(ag_link *l, unsigned peer, uint64_t tag, size_t len, void **data);

void ag_link_set_timeout_ms(ag_link *l, uint64_t ms);
uint64_t ag_link_timeout_ms(const ag_link *l);
/* Fails the job at every party: pending and later receives everywhere
 * return AG_E_LINK_ABORTED with "party <me> failed: <reason>". */
void ag_link_abort(ag_link *l, const char *reason);
const char *ag_link_errmsg(const ag_link *l);
void ag_link_stats_get(const ag_link *l, ag_link_stats *out);
void ag_link_free(ag_link *l);

/* Creates n connected in-memory endpoints (links[0..n-1], rank i in
 * links[i]); names may be NULL. Each endpoint is freed on its own. On
 * failure nothing is left to free and links[] holds no endpoint. */
int ag_link_mem_group(unsigned n, const char *const *names, ag_link **links);

/* ---- the link over gRPC (src/link/rpc.c) ------------------------------------- *
 *
 * Every party serves argot.link.v1.Link on its own address; for each peer
 * it keeps one long-lived Push stream of frames (a message larger than
 * 1 MiB travels as several) and a thread reading that stream's acks. A
 * message stays queued until acknowledged; when a stream breaks (the peer
 * restarted, the network dropped), it is reopened with backoff and every
 * unacknowledged message is sent again, and the receiver drops what it
 * already had (messages are numbered per sender and receiver): no message
 * is lost or delivered twice. Frames of another job (session) or from a
 * rank that is not a peer are refused. */

typedef struct ag_link_rpc_opts {
    unsigned rank;                 /* this party */
    unsigned n;                    /* parties in the job */
    const char *const *names;      /* n party names (may be NULL) */
    const char *const *addresses;  /* n addresses "host:port"; a peer's may be set later */
    const char *listen;            /* where this party serves (default addresses[rank]) */
    const char *session;           /* the job's id: every party must give the same */
    uint64_t timeout_ms;           /* receive timeout (default 60 s) */
    /* Mutual TLS between parties (all three, or none for plaintext): this
     * party's certificate and key, and the CA that issued every party's. A
     * peer's server must present a certificate naming that peer (a DNS name
     * equal to its party name), and a frame is accepted only from a client
     * whose certificate names the party the frame claims to come from. */
    const char *tls_cert;
    const char *tls_key;
    const char *tls_ca;
    /* Gateways (`argot mesh`, one per party; both need TLS). gateway: this
     * party's gateway ("host:port"); every peer is then reached through it
     * (not at its address): the channel goes to the gateway, whose server
     * certificate must name this party, and every Push call carries the
     * metadata `argot-party: <peer name>`, by which the gateway routes it
     * to the peer's gateway. via_gateway: frames arrive only through this
     * party's own gateway: a frame claiming to come from party P is
     * accepted only from a client whose certificate names this party (its
     * gateway) and with the metadata `l5d-client-id: P` (the name in the
     * certificate that P's gateway presented to this party's gateway, which
     * drops any such header a caller sent). Without via_gateway, a frame
     * must come from P's own certificate, as above. */
    const char *gateway;
    bool via_gateway;
} ag_link_rpc_opts;

/* The metadata key naming a Push call's destination party, by which the
 * gateways route it; and the one naming the caller, set by the gateway. */
#define AG_LINK_PARTY_HEADER "argot-party"
#define AG_LINK_CLIENT_ID_HEADER "l5d-client-id"

/* Starts this party's endpoint: serves on listen (port 0 picks one). On
 * failure returns NULL with the reason in err ("127.0.0.1:9100: address
 * already in use"). */
ag_link *ag_link_rpc_new(const ag_link_rpc_opts *o, char *err, size_t errcap);
/* The port this party serves on. */
int ag_link_rpc_port(const ag_link *l);
/* ag_link_free on a gRPC link first waits (up to 10 s, not after an abort)
 * until every peer acknowledged what was sent to it, so a party that
 * finishes first does not take its last messages with it. */
/* Sets (before the first message to it) where peer rank is served. With a
 * gateway, the address is kept but messages still go through the gateway. */
int ag_link_rpc_set_peer(ag_link *l, unsigned rank, const char *address);

#endif /* ARGOT_LINK_H */
