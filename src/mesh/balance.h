/*
 * Load balancing, failure accrual and the retry budget (balance.c): the
 * per-service client state of the mesh, as cores with no I/O. Time and
 * randomness come from the caller (ag__lb_conf's now_ms and rand), so the
 * tests run them on a simulated clock. One thread (the mesh loop's).
 *
 * Endpoints. A balancer holds one ag__ep per address of the service
 * (ag__lb_update diffs a new address list against the current one: an
 * address that stays keeps its state; a new one starts fresh; a removed
 * one is handed back through `gone` and freed after its last request is
 * done). The proxy hangs its connection pool on ep->user.
 *
 * States of an endpoint (the admin page shows them):
 *   OPEN      takes requests
 *   DOWN      fail-fast: its connection failed (ag__lb_conn_failed); the
 *             proxy reconnects in the background and says ag__lb_conn_ok
 *             when it worked. Not picked meanwhile.
 *   DEAD      failure accrual: `failures` consecutive failed requests
 *             (default 5); not picked until a jittered backoff passes
 *             (5 s, doubling to 300 s, each delay drawn uniformly from
 *             [d/2, d]); then PROBING
 *   PROBING   takes one request at a time: a success makes it OPEN (the
 *             backoff resets), a failure makes it DEAD again with the next
 *             backoff
 * When every endpoint is DOWN or DEAD, ag__lb_pick returns NULL (the proxy
 * answers 503 / UNAVAILABLE) -- except that an endpoint whose backoff
 * passed is probed first.
 *
 * Balancers (kind):
 *   RR         round robin over the available endpoints, weighted (smooth
 *              weighted round robin, so that weights 3:1 give a a b a, not
 *              bursts; O(log n) per pick)
 *   P2C        power of two choices, least loaded: two distinct available
 *              endpoints drawn at random (by weight), the one with fewer
 *              requests outstanding (divided by weight) wins
 *   EWMA       P2C on peak EWMA cost: cost = latency EWMA x (outstanding + 1),
 *              the EWMA decaying with time constant decay_ms (default 10 s),
 *              jumping up at once to a latency above it (peak-sensitive); an
 *              endpoint with no latency yet costs a penalty (1 s) times
 *              outstanding, so new endpoints are tried but not flooded
 *   APERTURE   P2C least loaded within an aperture: a window over the
 *              endpoints (in a random order fixed at creation) that widens
 *              when the average outstanding per endpoint in it exceeds
 *              high_load (default 2) and narrows below low_load (default
 *              0.5), between min_aperture (default 1) and all
 * Picking is O(1) for RR/P2C/EWMA (O(log n) with weights is fine) and
 * never allocates.
 */
#ifndef ARGOT_MESH_BALANCE_H
#define ARGOT_MESH_BALANCE_H

#include "argot/base.h"
#include "namer.h"

typedef enum ag__lb_kind {
    AG__LB_RR,
    AG__LB_P2C,
    AG__LB_EWMA,
    AG__LB_APERTURE,
} ag__lb_kind;

typedef struct ag__lb_conf {
    ag__lb_kind kind;
    uint64_t decay_ms;          /* EWMA (default 10000) */
    double low_load, high_load; /* APERTURE (0.5, 2.0) */
    unsigned min_aperture;      /* APERTURE (1) */
    unsigned failures;          /* accrual: consecutive failures to DEAD (5; 0: off) */
    uint64_t backoff_min_ms;    /* accrual (5000) */
    uint64_t backoff_max_ms;    /* accrual (300000) */
    uint64_t (*now_ms)(void *ud);   /* the clock (NULL: ag_now_ms) */
    uint64_t (*rand)(void *ud);     /* 64 random bits (NULL: a fast PRNG seeded once) */
    void *ud;
} ag__lb_conf;

/* The defaults above (kind EWMA, as linkerd's). */
void ag__lb_conf_init(ag__lb_conf *c);
/* "roundRobin"/"rr", "p2c", "ewma", "aperture" (linkerd's names); 0 or
 * AG_E_INVAL. */
int ag__lb_kind_parse(const char *s, ag__lb_kind *out);
const char *ag__lb_kind_name(ag__lb_kind k);

typedef enum ag__ep_state {
    AG__EP_OPEN,
    AG__EP_DOWN,
    AG__EP_DEAD,
    AG__EP_PROBING,
} ag__ep_state;
const char *ag__ep_state_name(ag__ep_state s);   /* "open", "down", ... */

typedef struct ag__ep ag__ep;
/* Read-only outside balance.c, except `user`. */
struct ag__ep {
    ag__addr addr;              /* a copy (host owned by the ep) */
    void *user;                 /* the proxy's (its connections) */
    ag__ep_state state;
    bool removed;               /* no longer in the service: gone after its last request */
    unsigned outstanding;       /* requests picked and not yet done */
    double ewma_ms;             /* latency EWMA (EWMA kind; others keep it for the page) */
    unsigned consecutive_failures;
    uint64_t dead_until_ms;     /* DEAD: when it may be probed */
    uint64_t requests, successes, failures;  /* totals, for the admin page */
};

typedef struct ag__lb ag__lb;

/* NULL on allocation failure. c is copied. */
ag__lb *ag__lb_new(const ag__lb_conf *c);
/* Frees the balancer and every endpoint, without callbacks: only once no
 * request is outstanding (the proxy ensures it). */
void ag__lb_free(ag__lb *lb);

/* An endpoint leaves: the proxy closes its connections when the request
 * count reaches zero, then calls ag__lb_release. */
typedef void (*ag__ep_gone_fn)(void *ud, ag__ep *ep);
/* Makes the endpoints those of addrs (n may be 0). New endpoints are
 * OPEN. An address that stays but changed weight takes the new weight.
 * For each removed endpoint: ep->removed is set, it is never picked again,
 * and gone(ud, ep) runs; the ep stays valid until ag__lb_release(lb, ep).
 * 0 or AG_E_NOMEM (then nothing changed). */
int ag__lb_update(ag__lb *lb, const ag__addr *addrs, size_t n, ag__ep_gone_fn gone, void *ud);
/* Frees a removed endpoint (after gone, once the proxy is done with it). */
void ag__lb_release(ag__lb *lb, ag__ep *ep);

/* Endpoints currently in the service (removed ones not counted). */
size_t ag__lb_size(const ag__lb *lb);
ag__ep *ag__lb_get(const ag__lb *lb, size_t i);
/* Endpoints that may take a request now. */
size_t ag__lb_available(const ag__lb *lb);

/* Picks an endpoint for a request and counts it outstanding; NULL if none
 * may take one. avoid, if not NULL, is not picked unless it is the only one
 * available (a retry goes elsewhere when it can). */
ag__ep *ag__lb_pick(ag__lb *lb, const ag__ep *avoid);

typedef enum ag__outcome {
    AG__OUT_SUCCESS,   /* counts as success: resets accrual */
    AG__OUT_FAILURE,   /* counts toward accrual */
    AG__OUT_IGNORED,   /* neither (cancelled by the client, never sent) */
} ag__outcome;
/* The request picked on ep ended after latency_ms (fractional). */
void ag__lb_done(ag__lb *lb, ag__ep *ep, double latency_ms, ag__outcome o);
/* Fail-fast: ep's connection failed / came back. */
void ag__lb_conn_failed(ag__lb *lb, ag__ep *ep);
void ag__lb_conn_ok(ag__lb *lb, ag__ep *ep);

/* Appends a JSON array describing the endpoints ({"addr":"127.0.0.1:8080",
 * "weight":1,"state":"open","outstanding":0,"ewma_ms":1.2,"requests":10,
 * "successes":9,"failures":1,"dead_for_ms":0}) to out. */
int ag__lb_json(const ag__lb *lb, ag_buf *out);

/* ---- retry budget ----------------------------------------------------------- */
/*
 * linkerd's (Finagle's) budget: over a sliding window of ttl_ms (default
 * 10 s), retries may be at most percent (default 0.2) of the requests plus
 * min_per_sec (default 10) per second of the window. Every request is
 * deposited; a retry withdraws if the budget allows it. The window is kept
 * in 10 slices of ttl_ms / 10 (old slices expire as time passes).
 */
typedef struct ag__budget {
    double percent;
    double min_per_sec;
    uint64_t ttl_ms;
    uint64_t slice_start_ms[10];
    uint64_t deposits[10];
    uint64_t withdrawals[10];
} ag__budget;

void ag__budget_init(ag__budget *b, double percent, double min_per_sec, uint64_t ttl_ms);
void ag__budget_deposit(ag__budget *b, uint64_t now_ms);
/* true (and counted) if a retry is allowed now. */
bool ag__budget_withdraw(ag__budget *b, uint64_t now_ms);
/* Retries the budget would allow now, for the admin page. */
double ag__budget_balance(const ag__budget *b, uint64_t now_ms);

#endif /* ARGOT_MESH_BALANCE_H */
