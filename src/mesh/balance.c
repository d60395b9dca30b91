/*
 * Load balancers, failure accrual and the retry budget of the mesh (the
 * contract is balance.h). No I/O, no timers: time and randomness come from
 * ag__lb_conf, and every time-driven change (a DEAD endpoint's backoff
 * passing) is applied lazily by the next ag__lb_pick. One thread (the mesh
 * loop's); nothing here locks.
 *
 * Layout. The endpoints of the service sit in lb->eps (position i); removed
 * ones leave the array at once and wait on lb->removed until
 * ag__lb_release. Three Fenwick trees (binary indexed trees) over the
 * positions keep, for the available endpoints:
 *   bit_w     their weights in fixed point (WSCALE), so a draw by weight is
 *             one O(log n) descent;
 *   bit_n     1 each, so "the k-th available endpoint" (the aperture's
 *             edge) is one descent;
 *   bit_load  outstanding requests of every endpoint in the array
 *             (APERTURE only: the load inside the window).
 * Integer weights keep the trees exact: subtracting an endpoint for a
 * moment (the second draw of P2C, `avoid`) and adding it back restores the
 * same sums.
 *
 * Invariants (asserted where cheap):
 *   1. e->avail is true iff e is in lb->eps (pos != NO_POS), not DOWN, and
 *      OPEN or PROBING without a probe in flight; exactly the available
 *      endpoints contribute to bit_w and bit_n; lb->navail counts them.
 *   2. e->pub.state is DOWN if e->down, else e->accrual (OPEN, DEAD or
 *      PROBING): fail-fast and accrual are tracked apart, so conn_ok on an
 *      endpoint that accrual killed leaves it DEAD.
 *   3. lb->next_wake_ms <= dead_until_ms of every DEAD endpoint in lb->eps.
 *   4. RR: lb->heap holds exactly the available endpoints (heap_pos set),
 *      ordered by their next virtual time.
 *
 * Accrual states (per endpoint, e->accrual):
 *   OPEN --`failures` consecutive failures--> DEAD (until now + jittered d)
 *   DEAD --d passed (seen by a pick)--------> PROBING
 *   PROBING --probe success--> OPEN (d back to backoff_min)
 *   PROBING --probe failure--> DEAD (d doubled, at most backoff_max)
 * A request that ends while PROBING with a probe in flight is taken as the
 * probe (requests carry no identity through ag__lb_done); one sent before
 * the endpoint died and ending after its backoff would be mistaken for it,
 * which needs a response slower than the backoff (5 s at least by default).
 *
 * RR is smooth weighted round robin as stride scheduling: the i-th pick
 * of an endpoint of weight w falls at virtual time (2i + 1) / 2w (the
 * middle of its i-th share), and each pick takes the endpoint whose next
 * time is earliest (ties to the lower position), from a binary min-heap of
 * the available endpoints (lb->heap). Weights 3:1 give a a b a, as nginx's
 * smooth WRR does, in O(log n) instead of nginx's O(n) pass. Times are
 * exact fractions (compared by cross-multiplying in 128 bits), so ties and
 * counts are exact. An endpoint that joins the heap (new, back from DOWN or
 * DEAD, weight changed) is moved up to the first of its times after the
 * last pick, so it neither floods the service to catch up nor waits.
 *
 * Cost of a pick: O(log n) for every kind (tree descents or heap sifts),
 * never an allocation.
 *
 * EWMA without exp() per pick: the EWMA itself is updated on completion
 * (exact exp()), and a pick decays it towards 0 by the time since the last
 * completion (as Finagle's read does, so an endpoint that was slow and is
 * no longer picked is tried again after a few decay constants) with a
 * polynomial approximation of e^-x (exp_neg below).
 */
#include "balance.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NO_POS          SIZE_MAX
#define WSCALE          1000.0 /* fixed-point weight: 1.0 -> 1000 */
#define EWMA_PENALTY_MS 1000.0 /* cost per outstanding request with no latency yet */

typedef struct lb_ep lb_ep;
struct lb_ep {
    ag__ep pub;             /* first: an ag__ep * is an lb_ep * */
    ag__ep_state accrual;   /* OPEN, DEAD or PROBING */
    bool down;              /* fail-fast: the connection failed */
    bool probe_busy;        /* PROBING: the probe is in flight */
    bool avail;             /* counted in the trees (invariant 1) */
    bool has_latency;       /* ewma_ms holds a measurement */
    size_t pos;             /* index in lb->eps, NO_POS once removed */
    int64_t wint;           /* weight in fixed point, >= 1 */
    uint64_t rr_count;      /* RR: picks credited; next time (2 rr_count + 1) / 2 wint */
    size_t heap_pos;        /* RR: index in lb->heap, NO_POS when not in it */
    uint64_t ewma_stamp_ms; /* time of the last latency folded in */
    uint64_t backoff_ms;    /* the next DEAD delay's upper bound d */
    uint64_t order_key;     /* APERTURE: random rank, drawn at creation */
    lb_ep *prev_removed;    /* on lb->removed */
    lb_ep *next_removed;
};

struct ag__lb {
    ag__lb_conf conf;
    lb_ep **eps; /* the service's endpoints; n of them */
    size_t n;
    int64_t *bit_w; /* n + 1 each, 1-based; one allocation for the three */
    int64_t *bit_n;
    int64_t *bit_load;
    size_t bit_top; /* highest power of two <= n (0 if n == 0) */
    size_t navail;
    lb_ep **heap; /* RR: the available endpoints, earliest next time first */
    size_t nheap;
    uint64_t rr_vnum; /* RR: the last pick's time, rr_vnum / (2 rr_vden) */
    uint64_t rr_vden;
    uint64_t next_wake_ms; /* earliest DEAD deadline (invariant 3); UINT64_MAX: none */
    unsigned aperture;     /* APERTURE: window size wanted, in endpoints */
    double inv_decay;      /* 1 / decay_ms */
    lb_ep *removed;        /* removed, not yet released */
    uint64_t rng;          /* splitmix64 state when conf.rand is NULL */
};

static inline lb_ep *to_ep(const ag__ep *ep)
{
    return (lb_ep *)(uintptr_t)ep;
}

/* ---- configuration ---------------------------------------------------------- */

void ag__lb_conf_init(ag__lb_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->kind = AG__LB_EWMA;
    c->decay_ms = 10000;
    c->low_load = 0.5;
    c->high_load = 2.0;
    c->min_aperture = 1;
    c->failures = 5;
    c->backoff_min_ms = 5000;
    c->backoff_max_ms = 300000;
}

int ag__lb_kind_parse(const char *s, ag__lb_kind *out)
{
    static const struct {
        const char *name;
        ag__lb_kind kind;
    } names[] = {
        {"roundRobin", AG__LB_RR},     {"rr", AG__LB_RR},
        {"p2c", AG__LB_P2C},           {"ewma", AG__LB_EWMA},
        {"aperture", AG__LB_APERTURE},
    };
    for (size_t i = 0; s && i < AG_ARRAY_LEN(names); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].kind;
            return 0;
        }
    }
    return AG_E_INVAL;
}

const char *ag__lb_kind_name(ag__lb_kind k)
{
    switch (k) {
    case AG__LB_RR:
        return "roundRobin";
    case AG__LB_P2C:
        return "p2c";
    case AG__LB_EWMA:
        return "ewma";
    case AG__LB_APERTURE:
        return "aperture";
    }
    return "unknown";
}

const char *ag__ep_state_name(ag__ep_state s)
{
    switch (s) {
    case AG__EP_OPEN:
        return "open";
    case AG__EP_DOWN:
        return "down";
    case AG__EP_DEAD:
        return "dead";
    case AG__EP_PROBING:
        return "probing";
    }
    return "unknown";
}

/* ---- time and randomness ---------------------------------------------------- */

static uint64_t lb_now(const ag__lb *lb)
{
    return lb->conf.now_ms ? lb->conf.now_ms(lb->conf.ud) : ag_now_ms();
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t lb_rand(ag__lb *lb)
{
    return lb->conf.rand ? lb->conf.rand(lb->conf.ud) : splitmix64(&lb->rng);
}

/* A value in [0, bound), bound > 0. The modulo bias is below bound / 2^64:
 * bounds are sums of fixed-point weights or delays, far below 2^40. */
static uint64_t lb_below(ag__lb *lb, uint64_t bound)
{
    return lb_rand(lb) % bound;
}

/* e^-x for x >= 0 without libm's exp(): e^-x = 2^-y with y = x log2(e),
 * split as 2^-k * 2^-f (k the nearest integer, |f| <= 1/2), 2^-f by a
 * degree-6 Taylor polynomial of e^(-f ln 2) (relative error < 2e-7). Used on
 * the pick path, where the result only ranks two costs. */
static double exp_neg(double x)
{
    if (!(x > 0))
        return 1.0;
    if (x > 700)
        return 0.0;
    double y = x * 1.4426950408889634; /* log2(e) */
    double k = floor(y + 0.5);
    double g = -(y - k) * 0.6931471805599453; /* ln 2 */
    double p = 1 + g * (1 + g / 2 * (1 + g / 3 * (1 + g / 4 * (1 + g / 5 * (1 + g / 6)))));
    return ldexp(p, -(int)k);
}

/* ---- Fenwick trees ---------------------------------------------------------- */

static void bit_add(int64_t *bit, size_t n, size_t pos, int64_t delta)
{
    for (size_t i = pos + 1; i <= n; i += i & (~i + 1))
        bit[i] += delta;
}

/* Sum of the first cnt positions. */
static int64_t bit_prefix(const int64_t *bit, size_t cnt)
{
    int64_t s = 0;
    for (size_t i = cnt; i > 0; i -= i & (~i + 1))
        s += bit[i];
    return s;
}

/* The position whose cumulative range holds t (0 <= t < total): the first
 * pos with prefix(pos + 1) > t. */
static size_t bit_find(const int64_t *bit, size_t n, size_t top, int64_t t)
{
    size_t pos = 0;
    for (size_t step = top; step > 0; step >>= 1) {
        if (pos + step <= n && bit[pos + step] <= t) {
            pos += step;
            t -= bit[pos];
        }
    }
    assert(pos < n);
    return pos;
}

/* Adds or removes e from the availability trees (not from bit_load). */
static void tree_set(ag__lb *lb, lb_ep *e, bool in)
{
    int64_t sign = in ? 1 : -1;
    bit_add(lb->bit_w, lb->n, e->pos, sign * e->wint);
    bit_add(lb->bit_n, lb->n, e->pos, sign);
}

/* ---- RR's heap -------------------------------------------------------------- */

/* Is a's next time earlier than b's? (2ca + 1) / 2wa < (2cb + 1) / 2wb,
 * cross-multiplied: below 2^64 x 2^41, no overflow in 128 bits. */
static bool rr_before(const lb_ep *a, const lb_ep *b)
{
    unsigned __int128 x = (unsigned __int128)(2 * a->rr_count + 1) * (uint64_t)b->wint;
    unsigned __int128 y = (unsigned __int128)(2 * b->rr_count + 1) * (uint64_t)a->wint;
    return x != y ? x < y : a->pos < b->pos;
}

static void heap_set(ag__lb *lb, size_t i, lb_ep *e)
{
    lb->heap[i] = e;
    e->heap_pos = i;
}

static void heap_up(ag__lb *lb, size_t i)
{
    lb_ep *e = lb->heap[i];
    while (i > 0 && rr_before(e, lb->heap[(i - 1) / 2])) {
        heap_set(lb, i, lb->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(lb, i, e);
}

static void heap_down(ag__lb *lb, size_t i)
{
    lb_ep *e = lb->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= lb->nheap)
            break;
        if (c + 1 < lb->nheap && rr_before(lb->heap[c + 1], lb->heap[c]))
            c++;
        if (!rr_before(lb->heap[c], e))
            break;
        heap_set(lb, i, lb->heap[c]);
        i = c;
    }
    heap_set(lb, i, e);
}

/* Adds e, first moving its next time past the last pick: the smallest
 * count c with (2c + 1) / 2w > vnum / 2vden, i.e. 2c + 1 > vnum w / vden,
 * is ceil(floor(vnum w / vden) / 2). */
static void heap_insert(ag__lb *lb, lb_ep *e)
{
    unsigned __int128 f = (unsigned __int128)lb->rr_vnum * (uint64_t)e->wint / lb->rr_vden;
    uint64_t c = (uint64_t)((f + 1) / 2);
    if (e->rr_count < c)
        e->rr_count = c;
    heap_set(lb, lb->nheap++, e);
    heap_up(lb, e->heap_pos);
}

static void heap_remove(ag__lb *lb, lb_ep *e)
{
    size_t i = e->heap_pos;
    lb_ep *last = lb->heap[--lb->nheap];
    e->heap_pos = NO_POS;
    if (last == e)
        return;
    heap_set(lb, i, last);
    heap_up(lb, i);
    heap_down(lb, last->heap_pos);
}

/* ---- endpoint state --------------------------------------------------------- */

/* Whether e may take a request (invariant 1). */
static bool ep_avail_now(const lb_ep *e)
{
    return e->pos != NO_POS && !e->down &&
           (e->accrual == AG__EP_OPEN || (e->accrual == AG__EP_PROBING && !e->probe_busy));
}

/* Recomputes e's public state and availability after any change of down,
 * accrual, probe_busy or pos, keeping invariant 1. */
static void ep_refresh(ag__lb *lb, lb_ep *e)
{
    e->pub.state = e->down ? AG__EP_DOWN : e->accrual;
    bool avail = ep_avail_now(e);
    if (avail == e->avail)
        return;
    e->avail = avail;
    if (e->pos == NO_POS)
        return; /* removed: the trees were rebuilt without it */
    tree_set(lb, e, avail);
    if (avail)
        lb->navail++;
    else
        lb->navail--;
    if (lb->conf.kind == AG__LB_RR) {
        if (avail)
            heap_insert(lb, e);
        else
            heap_remove(lb, e);
    }
}

/* Failure accrual trips: DEAD for a delay drawn from [d/2, d], and d
 * doubles for the next time (jitter spreads the probes of many proxies). */
static void ep_kill(ag__lb *lb, lb_ep *e, uint64_t now)
{
    uint64_t d = e->backoff_ms;
    uint64_t lo = d / 2;
    uint64_t delay = lo + lb_below(lb, d - lo + 1);
    e->accrual = AG__EP_DEAD;
    e->probe_busy = false;
    e->pub.dead_until_ms = now + delay;
    e->backoff_ms = d > lb->conf.backoff_max_ms / 2 ? lb->conf.backoff_max_ms : 2 * d;
    if (e->pub.dead_until_ms < lb->next_wake_ms)
        lb->next_wake_ms = e->pub.dead_until_ms;
    AG_LOG(AG_LOG_INFO, "mesh", "endpoint_dead host=%s port=%u failures=%u for_ms=%llu",
           e->pub.addr.host, (unsigned)e->pub.addr.port, e->pub.consecutive_failures,
           (unsigned long long)delay);
}

/* DEAD endpoints whose backoff passed become PROBING. O(n), but it runs
 * only when a backoff passes (now >= next_wake_ms), not on every pick. */
static void wake_dead(ag__lb *lb, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < lb->n; i++) {
        lb_ep *e = lb->eps[i];
        if (e->accrual != AG__EP_DEAD)
            continue;
        if (e->pub.dead_until_ms <= now) {
            e->accrual = AG__EP_PROBING;
            e->probe_busy = false;
            ep_refresh(lb, e);
        } else if (e->pub.dead_until_ms < next) {
            next = e->pub.dead_until_ms;
        }
    }
    lb->next_wake_ms = next;
}

/* Folds a latency into the peak EWMA: a latency above it replaces it at
 * once; a lower one pulls it down with weight 1 - e^(-dt / decay). */
static void ep_observe(ag__lb *lb, lb_ep *e, double latency_ms, uint64_t now)
{
    if (!(latency_ms >= 0))
        latency_ms = 0; /* NaN or negative from a confused caller */
    if (!e->has_latency || latency_ms > e->pub.ewma_ms) {
        e->pub.ewma_ms = latency_ms;
    } else {
        double dt = now > e->ewma_stamp_ms ? (double)(now - e->ewma_stamp_ms) : 0.0;
        double w = exp(-dt * lb->inv_decay);
        e->pub.ewma_ms = e->pub.ewma_ms * w + latency_ms * (1 - w);
    }
    e->has_latency = true;
    e->ewma_stamp_ms = now;
}

/* ---- lifecycle -------------------------------------------------------------- */

ag__lb *ag__lb_new(const ag__lb_conf *c)
{
    ag__lb *lb = ag_calloc(1, sizeof(*lb));
    if (!lb)
        return NULL;
    lb->conf = *c;
    /* Degenerate values would divide by zero or never open a window. */
    if (lb->conf.decay_ms == 0)
        lb->conf.decay_ms = 1;
    if (lb->conf.min_aperture == 0)
        lb->conf.min_aperture = 1;
    if (lb->conf.backoff_max_ms < lb->conf.backoff_min_ms)
        lb->conf.backoff_max_ms = lb->conf.backoff_min_ms;
    lb->inv_decay = 1.0 / (double)lb->conf.decay_ms;
    lb->aperture = lb->conf.min_aperture;
    lb->next_wake_ms = UINT64_MAX;
    lb->rr_vden = 1; /* the last pick at time 0 */
    if (!lb->conf.rand && ag_random_bytes(&lb->rng, sizeof(lb->rng)) != 0)
        lb->rng = ag_now_ns(); /* balancing needs spread, not secrecy */
    return lb;
}

static void ep_free(lb_ep *e)
{
    ag_free(e->pub.addr.host);
    ag_free(e);
}

void ag__lb_free(ag__lb *lb)
{
    if (!lb)
        return;
    for (size_t i = 0; i < lb->n; i++)
        ep_free(lb->eps[i]);
    while (lb->removed) {
        lb_ep *e = lb->removed;
        lb->removed = e->next_removed;
        ep_free(e);
    }
    ag_free(lb->eps);
    ag_free(lb->bit_w);
    ag_free(lb->heap);
    ag_free(lb);
}

/* ---- update ----------------------------------------------------------------- */

static int addr_cmp(const ag__addr *a, const ag__addr *b)
{
    int c = strcmp(a->host, b->host);
    if (c)
        return c;
    return (a->port > b->port) - (a->port < b->port);
}

static int ep_ptr_cmp(const void *a, const void *b)
{
    return addr_cmp(&(*(lb_ep *const *)a)->pub.addr, &(*(lb_ep *const *)b)->pub.addr);
}

static int ep_order_cmp(const void *a, const void *b)
{
    uint64_t x = (*(lb_ep *const *)a)->order_key, y = (*(lb_ep *const *)b)->order_key;
    return (x > y) - (x < y);
}

static int64_t weight_fixed(double w)
{
    double f = w * WSCALE;
    if (!(f >= 1))
        return 1; /* > 0 by contract; a tiny or NaN weight still gets a share */
    if (f > 1e12)
        return (int64_t)1e12; /* keeps tree sums far from overflow */
    return (int64_t)llround(f);
}

/* The current endpoint at addr, by binary search in sorted (a copy of
 * lb->eps sorted by address); NULL if none. */
static lb_ep *find_sorted(lb_ep **sorted, size_t n, const ag__addr *addr)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = addr_cmp(&sorted[mid]->pub.addr, addr);
        if (c == 0)
            return sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Builds the trees (fresh, zeroed) from lb->eps and each endpoint's
 * avail and outstanding, in O(n): each node pushes its sum to its parent. */
static void trees_rebuild(ag__lb *lb)
{
    size_t n = lb->n;
    lb->navail = 0;
    for (size_t i = 1; i <= n; i++) {
        lb_ep *e = lb->eps[i - 1];
        e->pos = i - 1;
        lb->bit_w[i] += e->avail ? e->wint : 0;
        lb->bit_n[i] += e->avail ? 1 : 0;
        lb->bit_load[i] += e->pub.outstanding;
        lb->navail += e->avail;
        size_t parent = i + (i & (~i + 1));
        if (parent <= n) {
            lb->bit_w[parent] += lb->bit_w[i];
            lb->bit_n[parent] += lb->bit_n[i];
            lb->bit_load[parent] += lb->bit_load[i];
        }
    }
    lb->bit_top = 0;
    while (n && lb->bit_top * 2 <= n)
        lb->bit_top = lb->bit_top ? lb->bit_top * 2 : 1;
}

/* Orders addresses by (host, port), then by place in their array, so that
 * of duplicates the first comes first. */
static int addr_ptr_cmp(const void *a, const void *b)
{
    const ag__addr *x = *(const ag__addr *const *)a, *y = *(const ag__addr *const *)b;
    int c = addr_cmp(x, y);
    return c ? c : (x > y) - (x < y);
}

/* Marks in dup[] every address of addrs[0..n) that repeats an earlier one,
 * in O(n log n) with by (n pointers) as scratch. */
static void mark_dups(const ag__addr *addrs, size_t n, const ag__addr **by, bool *dup)
{
    for (size_t i = 0; i < n; i++)
        by[i] = &addrs[i];
    qsort(by, n, sizeof(*by), addr_ptr_cmp);
    for (size_t i = 1; i < n; i++)
        if (addr_cmp(by[i - 1], by[i]) == 0)
            dup[by[i] - addrs] = true;
}

/* A fresh endpoint for addr (OPEN, no history); NULL without memory. */
static lb_ep *ep_new(const ag__lb *lb, const ag__addr *addr)
{
    lb_ep *e = ag_calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->pub.addr.host = ag_strdup(addr->host);
    if (!e->pub.addr.host) {
        ag_free(e);
        return NULL;
    }
    e->pub.addr.port = addr->port;
    e->pub.addr.weight = addr->weight;
    e->pub.state = AG__EP_OPEN;
    e->accrual = AG__EP_OPEN;
    e->backoff_ms = lb->conf.backoff_min_ms;
    e->pos = NO_POS;
    e->heap_pos = NO_POS;
    return e;
}

/* The allocations of one update, made before anything changes. */
struct update_mem {
    lb_ep **eps;         /* the new array (cap) */
    lb_ep **heap;        /* RR's new heap (cap) */
    int64_t *bits;       /* the new trees (3 x (cap + 1)) */
    double *weights;     /* new weight per new position (cap) */
    const ag__addr **by; /* scratch: addrs sorted (cap) */
    bool *dup;           /* addrs[i] repeats an earlier one (cap) */
    lb_ep **sorted;      /* current endpoints by address (old n) */
    bool *kept;          /* current endpoint i stays (old n) */
    lb_ep **leaving;     /* removed by this update (old n) */
};

static void update_mem_free(struct update_mem *u)
{
    ag_free(u->eps);
    ag_free(u->heap);
    ag_free(u->bits);
    ag_free(u->weights);
    ag_free(u->by);
    ag_free(u->dup);
    ag_free(u->sorted);
    ag_free(u->kept);
    ag_free(u->leaving);
}

/* Removes the endpoints not kept from the service: flagged, moved to
 * lb->removed, listed in leaving; returns how many. */
static size_t retire_unkept(ag__lb *lb, const bool *kept, lb_ep **leaving)
{
    size_t k = 0;
    for (size_t i = 0; i < lb->n; i++) {
        if (kept[i])
            continue;
        lb_ep *e = lb->eps[i];
        e->pub.removed = true;
        e->pos = NO_POS;
        e->avail = false;
        e->prev_removed = NULL;
        e->next_removed = lb->removed;
        if (lb->removed)
            lb->removed->prev_removed = e;
        lb->removed = e;
        leaving[k++] = e;
    }
    return k;
}

/*
 * Two phases, so that AG_E_NOMEM changes nothing: first every allocation
 * (the new array and trees, a sorted index of the current endpoints, the
 * new endpoints), then the commit, which cannot fail. gone runs last, on a
 * consistent balancer, and may release the endpoint at once. O((n + m)
 * log(n + m)).
 */
int ag__lb_update(ag__lb *lb, const ag__addr *addrs, size_t n, ag__ep_gone_fn gone, void *ud)
{
    size_t cap = n ? n : 1, old = lb->n ? lb->n : 1, m = 0;
    struct update_mem u = {
        .eps = ag_calloc(cap, sizeof(*u.eps)),
        .heap = ag_calloc(cap, sizeof(*u.heap)),
        .bits = ag_calloc(3 * (cap + 1), sizeof(*u.bits)),
        .weights = ag_calloc(cap, sizeof(*u.weights)),
        .by = ag_calloc(cap, sizeof(*u.by)),
        .dup = ag_calloc(cap, sizeof(*u.dup)),
        .sorted = ag_calloc(old, sizeof(*u.sorted)),
        .kept = ag_calloc(old, sizeof(*u.kept)),
        .leaving = ag_calloc(old, sizeof(*u.leaving)),
    };
    if (!u.eps || !u.heap || !u.bits || !u.weights || !u.by || !u.dup || !u.sorted || !u.kept ||
        !u.leaving)
        goto fail;
    if (lb->n)
        memcpy(u.sorted, lb->eps, lb->n * sizeof(*u.sorted));
    qsort(u.sorted, lb->n, sizeof(*u.sorted), ep_ptr_cmp);
    mark_dups(addrs, n, u.by, u.dup);

    /* u.eps[0..m): the new list in its order, staying endpoints reused. */
    for (size_t i = 0; i < n; i++) {
        if (u.dup[i])
            continue;
        lb_ep *e = find_sorted(u.sorted, lb->n, &addrs[i]);
        if (!e && !(e = ep_new(lb, &addrs[i])))
            goto fail;
        u.weights[m] = addrs[i].weight;
        u.eps[m++] = e;
    }

    /* Commit: nothing below fails. */
    for (size_t i = 0; i < m; i++) {
        lb_ep *e = u.eps[i];
        int64_t wint = weight_fixed(u.weights[i]);
        if (wint != e->wint)
            e->rr_count = 0; /* RR: its times change; heap_insert re-places it */
        e->pub.addr.weight = u.weights[i];
        e->wint = wint;
        if (e->pos == NO_POS)
            e->order_key = lb_rand(lb); /* new: its place in the aperture order */
        else
            u.kept[e->pos] = true;
    }
    size_t nleaving = retire_unkept(lb, u.kept, u.leaving);
    if (lb->conf.kind == AG__LB_APERTURE)
        qsort(u.eps, m, sizeof(*u.eps), ep_order_cmp);
    ag_free(lb->eps);
    ag_free(lb->bit_w);
    ag_free(lb->heap);
    lb->eps = u.eps;
    lb->heap = u.heap;
    lb->nheap = 0;
    lb->n = m;
    lb->bit_w = u.bits;
    lb->bit_n = u.bits + (cap + 1);
    lb->bit_load = u.bits + 2 * (cap + 1);
    u.eps = NULL;
    u.heap = NULL;
    u.bits = NULL;
    for (size_t i = 0; i < m; i++) {
        lb_ep *e = lb->eps[i];
        e->pos = i;
        e->avail = ep_avail_now(e);
        e->heap_pos = NO_POS;
    }
    trees_rebuild(lb);
    for (size_t i = 0; i < m && lb->conf.kind == AG__LB_RR; i++)
        if (lb->eps[i]->avail)
            heap_insert(lb, lb->eps[i]); /* O(n log n), on the update path only */
    if (lb->aperture > m)
        lb->aperture = AG_MAX(lb->conf.min_aperture, (unsigned)m);
    for (size_t i = 0; i < nleaving; i++) {
        lb_ep *e = u.leaving[i];
        AG_LOG(AG_LOG_DEBUG, "mesh", "endpoint_removed host=%s port=%u outstanding=%u",
               e->pub.addr.host, (unsigned)e->pub.addr.port, e->pub.outstanding);
        if (gone)
            gone(ud, &e->pub); /* may release e: not touched afterwards */
    }
    update_mem_free(&u);
    return 0;

fail:
    /* The endpoints made here are those not yet in the service. */
    for (size_t i = 0; i < m; i++)
        if (u.eps[i]->pos == NO_POS)
            ep_free(u.eps[i]);
    update_mem_free(&u);
    return AG_E_NOMEM;
}

void ag__lb_release(ag__lb *lb, ag__ep *ep)
{
    lb_ep *e = to_ep(ep);
    assert(e->pub.removed && e->pos == NO_POS);
    if (e->prev_removed)
        e->prev_removed->next_removed = e->next_removed;
    else
        lb->removed = e->next_removed;
    if (e->next_removed)
        e->next_removed->prev_removed = e->prev_removed;
    ep_free(e);
}

size_t ag__lb_size(const ag__lb *lb)
{
    return lb->n;
}

ag__ep *ag__lb_get(const ag__lb *lb, size_t i)
{
    return i < lb->n ? &lb->eps[i]->pub : NULL;
}

/* navail, plus DEAD endpoints whose backoff passed (a pick would probe
 * them; the scan happens only when one did). */
size_t ag__lb_available(const ag__lb *lb)
{
    size_t k = lb->navail;
    uint64_t now = lb_now(lb);
    if (now < lb->next_wake_ms)
        return k;
    for (size_t i = 0; i < lb->n; i++) {
        const lb_ep *e = lb->eps[i];
        if (e->accrual == AG__EP_DEAD && !e->down && e->pub.dead_until_ms <= now)
            k++;
    }
    return k;
}

/* ---- picking ---------------------------------------------------------------- */

/* One available endpoint drawn by weight: a uniform point of [0, total) in
 * the weight tree's cumulative range (total > 0: the whole tree's sum, or
 * the sum of a prefix of positions for the aperture). */
static lb_ep *draw(ag__lb *lb, int64_t total)
{
    size_t pos = bit_find(lb->bit_w, lb->n, lb->bit_top, (int64_t)lb_below(lb, (uint64_t)total));
    assert(lb->eps[pos]->avail);
    return lb->eps[pos];
}

/* Peak-EWMA cost at now: the EWMA decayed towards 0 since its last
 * measurement, times (outstanding + 1); with no measurement yet, a penalty
 * per outstanding request (0 when idle: a new endpoint is tried at once,
 * but gets a second request only after its first answer, unless every
 * other endpoint is badly loaded). */
static double ewma_cost(const ag__lb *lb, const lb_ep *e, uint64_t now)
{
    if (!e->has_latency)
        return EWMA_PENALTY_MS * e->pub.outstanding;
    double dt = now > e->ewma_stamp_ms ? (double)(now - e->ewma_stamp_ms) : 0.0;
    return e->pub.ewma_ms * exp_neg(dt * lb->inv_decay) * (e->pub.outstanding + 1);
}

/* Power of two choices among the available endpoints in the first
 * positions whose weights sum to total (count of them: cnt >= 1): two
 * distinct ones drawn by weight, the cheaper wins, ties to the first. */
static lb_ep *pick_p2c(ag__lb *lb, int64_t total, size_t cnt, uint64_t now)
{
    lb_ep *a = draw(lb, total);
    if (cnt == 1)
        return a;
    tree_set(lb, a, false); /* the second draw excludes a */
    lb_ep *b = draw(lb, total - a->wint);
    tree_set(lb, a, true);
    if (lb->conf.kind == AG__LB_EWMA)
        return ewma_cost(lb, b, now) < ewma_cost(lb, a, now) ? b : a;
    /* outstanding / weight, compared without dividing */
    return (double)b->pub.outstanding * a->pub.addr.weight <
                   (double)a->pub.outstanding * b->pub.addr.weight
               ? b
               : a;
}

/* Smooth WRR: the endpoint with the earliest next time (the heap's root),
 * or, when that is the one to avoid, the earlier of the root's children
 * (the second earliest of a binary heap is one of them). */
static lb_ep *pick_rr(ag__lb *lb, const lb_ep *skip)
{
    size_t i = 0;
    if (lb->heap[0] == skip) {
        assert(lb->nheap >= 2);
        i = lb->nheap > 2 && rr_before(lb->heap[2], lb->heap[1]) ? 2 : 1;
    }
    lb_ep *e = lb->heap[i];
    lb->rr_vnum = 2 * e->rr_count + 1;
    lb->rr_vden = (uint64_t)e->wint;
    e->rr_count++;
    heap_down(lb, i);
    return e;
}

/* The aperture: the first k available endpoints in the random order of
 * lb->eps. Before drawing, k moves by one towards the load band: wider if
 * the requests outstanding in the window per endpoint exceed high_load,
 * narrower below low_load. navail is the available count as the caller
 * sees it (avoid excluded). */
static lb_ep *pick_aperture(ag__lb *lb, size_t navail, uint64_t now)
{
    size_t k = AG_MIN((size_t)lb->aperture, navail);
    size_t edge = bit_find(lb->bit_n, lb->n, lb->bit_top, (int64_t)k - 1);
    double load = (double)bit_prefix(lb->bit_load, edge + 1) / (double)k;
    if (load > lb->conf.high_load && lb->aperture < navail)
        lb->aperture++;
    else if (load < lb->conf.low_load && lb->aperture > lb->conf.min_aperture)
        lb->aperture--;
    k = AG_MIN((size_t)lb->aperture, navail);
    edge = bit_find(lb->bit_n, lb->n, lb->bit_top, (int64_t)k - 1);
    return pick_p2c(lb, bit_prefix(lb->bit_w, edge + 1), k, now);
}

/* The hot path of every proxied request: O(log n), no allocation. First
 * turns DEAD endpoints whose backoff passed into PROBING (a scan, only when
 * one did). The endpoint returned counts one more request outstanding and,
 * if PROBING, holds the probe slot until ag__lb_done. */
ag__ep *ag__lb_pick(ag__lb *lb, const ag__ep *avoid)
{
    uint64_t now = lb_now(lb);
    if (now >= lb->next_wake_ms)
        wake_dead(lb, now);
    if (lb->navail == 0)
        return NULL;
    /* A retry avoids the endpoint that failed it: hidden from the trees for
     * the length of this pick, unless it is the only one. */
    lb_ep *hide = avoid ? to_ep(avoid) : NULL;
    if (hide && (!hide->avail || lb->navail == 1))
        hide = NULL;
    size_t navail = lb->navail;
    if (hide) {
        tree_set(lb, hide, false);
        navail--;
    }
    lb_ep *e;
    switch (lb->conf.kind) {
    case AG__LB_RR:
        e = pick_rr(lb, hide);
        break;
    case AG__LB_APERTURE:
        e = pick_aperture(lb, navail, now);
        break;
    default:
        e = pick_p2c(lb, bit_prefix(lb->bit_w, lb->n), navail, now);
        break;
    }
    if (hide)
        tree_set(lb, hide, true);
    assert(e->avail && e != hide);

    e->pub.outstanding++;
    e->pub.requests++;
    if (lb->conf.kind == AG__LB_APERTURE)
        bit_add(lb->bit_load, lb->n, e->pos, 1);
    if (e->accrual == AG__EP_PROBING) {
        e->probe_busy = true; /* one probe at a time */
        ep_refresh(lb, e);
    }
    return &e->pub;
}

/* ---- outcomes --------------------------------------------------------------- */

/* Ends a request picked on ep: its latency goes into the EWMA, its outcome
 * into failure accrual (the state machine in the file comment). ep may have
 * been removed meanwhile: then only its counters move. */
void ag__lb_done(ag__lb *lb, ag__ep *ep, double latency_ms, ag__outcome o)
{
    lb_ep *e = to_ep(ep);
    uint64_t now = lb_now(lb);
    assert(ep->outstanding > 0);
    ep->outstanding--;
    if (lb->conf.kind == AG__LB_APERTURE && e->pos != NO_POS)
        bit_add(lb->bit_load, lb->n, e->pos, -1);
    bool probe = e->accrual == AG__EP_PROBING && e->probe_busy;
    switch (o) {
    case AG__OUT_SUCCESS:
        ep_observe(lb, e, latency_ms, now);
        ep->successes++;
        ep->consecutive_failures = 0;
        if (probe) {
            e->accrual = AG__EP_OPEN;
            e->backoff_ms = lb->conf.backoff_min_ms;
            AG_LOG(AG_LOG_INFO, "mesh", "endpoint_revived host=%s port=%u", ep->addr.host,
                   (unsigned)ep->addr.port);
        }
        /* A late success of a request sent before the endpoint died leaves
         * it DEAD: only a probe revives. */
        break;
    case AG__OUT_FAILURE:
        /* A failure only ever raises the cost: a fast one (connection
         * refused, an immediate error) must not make the endpoint look
         * fast and draw traffic. */
        if (latency_ms > (e->has_latency ? ep->ewma_ms : EWMA_PENALTY_MS))
            ep_observe(lb, e, latency_ms, now);
        ep->failures++;
        ep->consecutive_failures++;
        if (lb->conf.failures == 0 || e->pos == NO_POS)
            break; /* accrual off, or the endpoint is leaving anyway */
        if (probe || (e->accrual == AG__EP_OPEN && ep->consecutive_failures >= lb->conf.failures))
            ep_kill(lb, e, now);
        break;
    case AG__OUT_IGNORED:
        if (probe)
            e->probe_busy = false; /* the probe never ran: the next request is one */
        break;
    }
    ep_refresh(lb, e);
}

void ag__lb_conn_failed(ag__lb *lb, ag__ep *ep)
{
    lb_ep *e = to_ep(ep);
    e->down = true;
    ep_refresh(lb, e);
}

void ag__lb_conn_ok(ag__lb *lb, ag__ep *ep)
{
    lb_ep *e = to_ep(ep);
    e->down = false;
    ep_refresh(lb, e);
}

/* ---- admin page ------------------------------------------------------------- */

/* One endpoint's object; "[v6]:port" for an IPv6 host. */
static int json_ep(ag_buf *out, const ag__ep *ep, uint64_t now)
{
    char addr[300];
    snprintf(addr, sizeof(addr), strchr(ep->addr.host, ':') ? "[%s]:%u" : "%s:%u",
             ep->addr.host, (unsigned)ep->addr.port);
    uint64_t dead_for =
        ep->state == AG__EP_DEAD && ep->dead_until_ms > now ? ep->dead_until_ms - now : 0;
    int rc = ag_buf_append_str(out, "{\"addr\":");
    if (rc == 0)
        rc = ag__json_str(out, addr);
    if (rc == 0)
        rc = ag_buf_printf(out,
                           ",\"weight\":%.15g,\"state\":\"%s\",\"outstanding\":%u,"
                           "\"ewma_ms\":%.3f,\"requests\":%llu,\"successes\":%llu,"
                           "\"failures\":%llu,\"dead_for_ms\":%llu}",
                           ep->addr.weight,
                           ag__ep_state_name(ep->state), ep->outstanding, ep->ewma_ms,
                           (unsigned long long)ep->requests, (unsigned long long)ep->successes,
                           (unsigned long long)ep->failures, (unsigned long long)dead_for);
    return rc;
}

/* The endpoints of the service (removed ones still draining are left out,
 * as ag__lb_size leaves them out). */
int ag__lb_json(const ag__lb *lb, ag_buf *out)
{
    uint64_t now = lb_now(lb);
    int rc = ag_buf_append_byte(out, '[');
    for (size_t i = 0; rc == 0 && i < lb->n; i++) {
        if (i)
            rc = ag_buf_append_byte(out, ',');
        if (rc == 0)
            rc = json_ep(out, &lb->eps[i]->pub, now);
    }
    return rc ? rc : ag_buf_append_byte(out, ']');
}

/* ---- retry budget ----------------------------------------------------------- */

#define BUDGET_SLICES AG_ARRAY_LEN(((ag__budget *)0)->deposits)

static uint64_t slice_ms(const ag__budget *b)
{
    return b->ttl_ms / BUDGET_SLICES ? b->ttl_ms / BUDGET_SLICES : 1;
}

void ag__budget_init(ag__budget *b, double percent, double min_per_sec, uint64_t ttl_ms)
{
    memset(b, 0, sizeof(*b));
    b->percent = percent;
    b->min_per_sec = min_per_sec;
    b->ttl_ms = ttl_ms ? ttl_ms : 10000;
    for (size_t i = 0; i < BUDGET_SLICES; i++)
        b->slice_start_ms[i] = UINT64_MAX; /* never used */
}

/* The slice for now, emptied if it last held an older period. */
static size_t budget_slice(ag__budget *b, uint64_t now_ms)
{
    uint64_t len = slice_ms(b);
    uint64_t start = now_ms - now_ms % len;
    size_t i = (size_t)((now_ms / len) % BUDGET_SLICES);
    if (b->slice_start_ms[i] != start) {
        b->slice_start_ms[i] = start;
        b->deposits[i] = 0;
        b->withdrawals[i] = 0;
    }
    return i;
}

void ag__budget_deposit(ag__budget *b, uint64_t now_ms)
{
    b->deposits[budget_slice(b, now_ms)]++;
}

/* percent x deposits + min_per_sec x ttl - withdrawals, over the slices
 * of the last ttl (the current one included). */
double ag__budget_balance(const ag__budget *b, uint64_t now_ms)
{
    uint64_t len = slice_ms(b);
    uint64_t cur = now_ms - now_ms % len;
    uint64_t oldest = cur >= len * (BUDGET_SLICES - 1) ? cur - len * (BUDGET_SLICES - 1) : 0;
    uint64_t dep = 0, wd = 0;
    for (size_t i = 0; i < BUDGET_SLICES; i++) {
        uint64_t s = b->slice_start_ms[i];
        if (s == UINT64_MAX || s < oldest || s > cur)
            continue;
        dep += b->deposits[i];
        wd += b->withdrawals[i];
    }
    return b->percent * (double)dep + b->min_per_sec * ((double)b->ttl_ms / 1000.0) - (double)wd;
}

bool ag__budget_withdraw(ag__budget *b, uint64_t now_ms)
{
    /* The epsilon absorbs rounding in percent x deposits (0.2 x 5 is not
     * exactly 1 in binary). */
    if (ag__budget_balance(b, now_ms) + 1e-9 < 1.0)
        return false;
    b->withdrawals[budget_slice(b, now_ms)]++;
    return true;
}
