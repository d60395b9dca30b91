/*
 * What bench/mpc and bench/fed share: the semi2k kernels of bench/mpc run
 * by one thread per party over link endpoints the caller made (in-memory
 * or gRPC), timed between barriers, their traffic read from the link's
 * counters, and their opened results checked against plaintext ones.
 *
 * A benchmark fills a struct run (parties, field, runs, the plaintext
 * inputs, the rules for matmul 1024^3), calls run_parties() with one
 * endpoint per party, and prints r->rows[] as it likes; model() and
 * best_median() help with that.
 *
 * The kernels, per run (the inputs are shared from their owners, x from
 * rank 0 and y from the last rank, before anything is timed):
 *   share   2^20 elements from rank 0 (the input sharing itself)
 *   mul     2^20 (shared x shared, Beaver)
 *   square  2^20
 *   matmul  256x256 by 256x256 and 1024x1024 by 1024x1024 (2 parties FM64
 *           always runs 1024^3; otherwise its time is estimated as 64
 *           times the best 256^3 time: skipped above r->mm1024_skip_s, run
 *           once above r->mm1024_once_s)
 *   trunc   2^20 by the session's fraction bits
 *   reveal  2^20 to every party
 * Each kernel's wall time is read on rank 0 between two pthread barriers
 * (the whole simulated run at every party, Beaver dealer work included).
 * Before a kernel's secure runs, rank 0 times r->plain_runs runs of its
 * plaintext counterpart on one core (for mul, square and trunc a loop over
 * uint64_t or unsigned __int128 here; for matmul ag_mpc_matmul on two
 * public tensors; for share and reveal a memcpy) while the others wait;
 * after the last secure run the result is opened and compared with the
 * plaintext result (trunc within one unit).
 *
 * Threads: the caller's thread generates the inputs and prints; the party
 * threads run the kernels. Every party passes the same sequence of
 * barriers whatever happens, so a failure never hangs the run: a failing
 * party aborts the link, which fails every later collective at every party
 * at once.
 *
 * Every function here is static and used by both benchmarks: each is one
 * translation unit (the Makefile builds bench/NAME.c alone).
 */
#ifndef ARGOT_BENCH_MPC_KERNELS_H
#define ARGOT_BENCH_MPC_KERNELS_H

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argot/mpc.h"

#define MAX_PARTIES 3
#define MAX_RUNS    9
#define N_ELEMS     ((size_t)1 << 20)

enum kernel {
    K_SHARE, K_MUL, K_SQUARE, K_MM256, K_MM1024, K_TRUNC, K_REVEAL, K_LESS, K_SIGMOID, K_COUNT
};

static const char *const kernel_names[K_COUNT] = {"share",  "mul",   "square", "matmul",
                                                  "matmul", "trunc", "reveal", "less",
                                                  "sigmoid"};
static const char *const kernel_sizes[K_COUNT] = {"2^20",   "2^20", "2^20", "256^3",
                                                  "1024^3", "2^20", "2^20", "2^20", "2^20"};

/* One table row: a kernel's figures in one configuration. */
struct row {
    int runs;                               /* runs made (0 if skipped) */
    double secs[MAX_RUNS];                  /* secure wall time, seconds */
    double plain[MAX_RUNS];                 /* plaintext time, seconds */
    uint64_t bytes[MAX_PARTIES][MAX_RUNS];  /* bytes sent by each party */
    uint64_t rounds[MAX_PARTIES][MAX_RUNS]; /* rounds of each party */
    bool skipped;
    bool failed;             /* a kernel returned an error */
    bool wrong;              /* the opened result differs */
    char err[AG_ERRMSG_MAX]; /* the first error */
};

/* The plaintext inputs, shared read-only by every party thread. */
struct inputs {
    ag_field f;
    void *x; /* N_ELEMS random ring elements, rank 0's */
    void *y; /* N_ELEMS random ring elements, the last rank's */
    void *t; /* N_ELEMS small signed values (|t| < 2^30), rank 0's */
};

/* One configuration's run: what the party threads share. */
struct run {
    unsigned n; /* parties */
    ag_field f;
    int runs;             /* runs asked for */
    int plain_runs;       /* plaintext runs per kernel (at least 1: the reference) */
    double mm1024_once_s; /* 1024^3 estimate above which it runs once, seconds */
    double mm1024_skip_s; /* 1024^3 estimate above which it is skipped, seconds */
    const struct inputs *in;
    struct ag_rpc_channel *beaver; /* a TTP dealer's channel; NULL: TFP */
    pthread_barrier_t bar;
    pthread_mutex_t mu; /* guards the rows' err and flags */
    atomic_bool failed; /* some party failed: skip kernels */
    struct row rows[K_COUNT];
};

/* One party's state, used only by its own thread. */
struct party {
    struct run *run;
    unsigned rank;
    ag_link *link;
    ag_mpc *m;
    ag_tensor px;           /* rank 0: x as a public tensor (to share) */
    ag_tensor pt;           /* rank 0: t as a public tensor */
    ag_tensor pa[2];        /* rank 0: public matmul left operands, 256 and 1024 */
    ag_tensor pb[2];        /* rank 0: public matmul right operands */
    ag_tensor sx;           /* share of x (2^20, 1-D) */
    ag_tensor sy;           /* share of y */
    ag_tensor st;           /* share of t */
    ag_tensor sa[2];        /* shares of the matmul left operands */
    ag_tensor sb[2];        /* shares of the matmul right operands */
    ag_tensor ref[K_COUNT]; /* rank 0: the plaintext results */
};

/* ---- inputs ------------------------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/* Fills the inputs for field f; returns false on allocation failure. */
static bool inputs_init(struct inputs *in, ag_field f)
{
    size_t eb = ag_field_bytes(f);
    uint64_t s = UINT64_C(0x9E3779B97F4A7C15) + (uint64_t)f;
    in->f = f;
    in->x = ag_malloc(N_ELEMS * eb);
    in->y = ag_malloc(N_ELEMS * eb);
    in->t = ag_malloc(N_ELEMS * eb);
    if (!in->x || !in->y || !in->t)
        return false;
    for (size_t i = 0; i < N_ELEMS; i++) {
        int64_t small = (int64_t)(rnd(&s) >> 33) - (INT64_C(1) << 30);
        if (f == AG_FM64) {
            ((uint64_t *)in->x)[i] = rnd(&s);
            ((uint64_t *)in->y)[i] = rnd(&s);
            ((uint64_t *)in->t)[i] = (uint64_t)small;
        } else {
            __extension__ typedef __int128 i128;
            ((ag_u128 *)in->x)[i] = (ag_u128)rnd(&s) << 64 | rnd(&s);
            ((ag_u128 *)in->y)[i] = (ag_u128)rnd(&s) << 64 | rnd(&s);
            ((ag_u128 *)in->t)[i] = (ag_u128)(i128)small;
        }
    }
    return true;
}

static void inputs_cleanup(struct inputs *in)
{
    ag_free(in->x);
    ag_free(in->y);
    ag_free(in->t);
}

/* A public tensor of the given shape holding the first numel elements of
 * data. */
static int make_public(ag_field f, int ndim, const int64_t *shape, const void *data, ag_tensor *t)
{
    int rc = ag_tensor_init(t, f, AG_VIS_PUBLIC, ndim, shape);
    if (rc == 0)
        memcpy(t->data, data, t->numel * ag_field_bytes(f));
    return rc;
}

/* ---- the plaintext operations (one core) -------------------------------- */

static void plain_mul(ag_field f, size_t n, void *dst, const void *a, const void *b)
{
    if (f == AG_FM64) {
        uint64_t *d = dst;
        const uint64_t *x = a, *y = b;
        for (size_t i = 0; i < n; i++)
            d[i] = x[i] * y[i];
    } else {
        ag_u128 *d = dst;
        const ag_u128 *x = a, *y = b;
        for (size_t i = 0; i < n; i++)
            d[i] = x[i] * y[i];
    }
}

static void plain_arshift(ag_field f, size_t n, void *dst, const void *a, unsigned bits)
{
    if (f == AG_FM64) {
        uint64_t *d = dst;
        const uint64_t *x = a;
        for (size_t i = 0; i < n; i++)
            d[i] = (uint64_t)((int64_t)x[i] >> bits);
    } else {
        __extension__ typedef __int128 i128;
        ag_u128 *d = dst;
        const ag_u128 *x = a;
        for (size_t i = 0; i < n; i++)
            d[i] = (ag_u128)((i128)x[i] >> bits);
    }
}

static void plain_less0(ag_field f, size_t n, void *dst, const void *a)
{
    __extension__ typedef __int128 i128;
    for (size_t i = 0; i < n; i++) {
        if (f == AG_FM64)
            ((uint64_t *)dst)[i] = (int64_t)((const uint64_t *)a)[i] < 0;
        else
            ((ag_u128 *)dst)[i] = (i128)((const ag_u128 *)a)[i] < 0;
    }
}

static void plain_seg3(ag_field f, size_t n, void *dst, const void *a, unsigned bits)
{
    __extension__ typedef __int128 i128;
    i128 one = (i128)1 << bits;
    for (size_t i = 0; i < n; i++) {
        i128 x = f == AG_FM64 ? (i128)(int64_t)((const uint64_t *)a)[i]
                              : (i128)((const ag_u128 *)a)[i];
        i128 y = one / 2 + (x >> 3);
        y = y < 0 ? 0 : y > one ? one : y;
        if (f == AG_FM64)
            ((uint64_t *)dst)[i] = (uint64_t)y;
        else
            ((ag_u128 *)dst)[i] = (ag_u128)y;
    }
}

/* Runs kernel k's plaintext counterpart once at rank 0 into p->ref[k]
 * (for matmul, an empty tensor the call initializes). */
static int plain_once(struct party *p, enum kernel k)
{
    const struct inputs *in = p->run->in;
    ag_field f = in->f;
    ag_tensor *ref = &p->ref[k];
    size_t bytes = N_ELEMS * ag_field_bytes(f);
    switch (k) {
    case K_SHARE:
    case K_REVEAL:
        memcpy(ref->data, in->x, bytes);
        return 0;
    case K_MUL:
        plain_mul(f, N_ELEMS, ref->data, in->x, in->y);
        return 0;
    case K_SQUARE:
        plain_mul(f, N_ELEMS, ref->data, in->x, in->x);
        return 0;
    case K_TRUNC:
        plain_arshift(f, N_ELEMS, ref->data, in->t, ag_mpc_fxp_bits(p->m));
        return 0;
    case K_MM256:
    case K_MM1024: {
        int i = k == K_MM1024;
        return ag_mpc_matmul(p->m, &p->pa[i], &p->pb[i], ref);
    }
    case K_LESS: /* t < 0, as 0/1 ring integers */
        plain_less0(f, N_ELEMS, ref->data, in->t);
        return 0;
    case K_SIGMOID: /* SEG3: clamp(1/2 + t/8, 0, 1) in fixed point */
        plain_seg3(f, N_ELEMS, ref->data, in->t, ag_mpc_fxp_bits(p->m));
        return 0;
    default:
        return AG_E_INVAL;
    }
}

/* ---- the secure kernels ------------------------------------------------- */

static int secure_once(struct party *p, enum kernel k, ag_tensor *out)
{
    int64_t shape[1] = {(int64_t)N_ELEMS};
    switch (k) {
    case K_SHARE:
        return ag_mpc_share(p->m, 0, p->rank == 0 ? &p->px : NULL, 1, shape, out);
    case K_MUL:
        return ag_mpc_mul(p->m, &p->sx, &p->sy, out);
    case K_SQUARE:
        return ag_mpc_square(p->m, &p->sx, out);
    case K_MM256:
        return ag_mpc_matmul(p->m, &p->sa[0], &p->sb[0], out);
    case K_MM1024:
        return ag_mpc_matmul(p->m, &p->sa[1], &p->sb[1], out);
    case K_TRUNC:
        return ag_mpc_trunc(p->m, &p->st, ag_mpc_fxp_bits(p->m), out);
    case K_REVEAL:
        return ag_mpc_reveal(p->m, &p->sx, out);
    case K_LESS: {
        ag_tensor zero;
        int rc = ag_tensor_init(&zero, p->st.field, AG_VIS_PUBLIC, 1, shape);
        if (rc == 0)
            rc = ag_mpc_less(p->m, &p->st, &zero, out);
        ag_tensor_cleanup(&zero);
        return rc;
    }
    case K_SIGMOID:
        return ag_mpc_sigmoid(p->m, &p->st, AG_SIGMOID_SEG3, out);
    default:
        return AG_E_INVAL;
    }
}

/* ---- the party thread --------------------------------------------------- */

static void barrier(struct party *p)
{
    pthread_barrier_wait(&p->run->bar);
}

/* Records a failure of this party in row and aborts the link, so that
 * every other party's next collective fails too instead of waiting. */
static void party_fail(struct party *p, struct row *row, const char *what)
{
    char msg[AG_ERRMSG_MAX];
    snprintf(msg, sizeof(msg), "party %u: %s", p->rank, what);
    pthread_mutex_lock(&p->run->mu);
    row->failed = true;
    if (!row->err[0])
        snprintf(row->err, sizeof(row->err), "%s", msg);
    pthread_mutex_unlock(&p->run->mu);
    atomic_store(&p->run->failed, true);
    ag_link_abort(p->link, msg);
}

/* Whether the opened result z matches rank 0's plaintext result ref:
 * exactly, or within one unit for trunc. */
static bool result_ok(const ag_tensor *z, const ag_tensor *ref, enum kernel k)
{
    if (!z->data || !ref->data || z->numel != ref->numel)
        return false;
    size_t n = z->numel, eb = ag_field_bytes(z->field);
    if (k != K_TRUNC && k != K_SIGMOID)
        return memcmp(z->data, ref->data, n * eb) == 0;
    for (size_t i = 0; i < n; i++) {
        ag_u128 d = z->field == AG_FM64
                        ? (ag_u128)(uint64_t)(ag_tensor_u64(z)[i] - ag_tensor_u64(ref)[i] + 1)
                        : ag_tensor_u128(z)[i] - ag_tensor_u128(ref)[i] + 1;
        if (d > 2)
            return false;
    }
    return true;
}

/* Opens out (collective) and checks it at rank 0 against the plaintext. */
static void verify(struct party *p, struct row *row, enum kernel k, const ag_tensor *out)
{
    ag_tensor z;
    int rc = 0;
    if (out->vis == AG_VIS_PUBLIC)
        rc = ag_tensor_copy(&z, out);
    else
        rc = ag_mpc_reveal(p->m, out, &z);
    if (rc < 0) {
        party_fail(p, row, ag_mpc_errmsg(p->m));
        return;
    }
    if (p->rank == 0 && !result_ok(&z, &p->ref[k], k)) {
        pthread_mutex_lock(&p->run->mu);
        row->wrong = true;
        pthread_mutex_unlock(&p->run->mu);
    }
    ag_tensor_cleanup(&z);
}

/* Times r->plain_runs plaintext runs of kernel k at rank 0 while the
 * others wait; the last leaves the reference result in p->ref[k]. */
static void plain_step(struct party *p, enum kernel k)
{
    struct run *r = p->run;
    struct row *row = &r->rows[k];
    barrier(p);
    if (p->rank == 0 && !atomic_load(&r->failed)) {
        for (int i = 0; i < r->plain_runs; i++) {
            if (k == K_MM256 || k == K_MM1024)
                ag_tensor_cleanup(&p->ref[k]);
            uint64_t t0 = ag_now_ns();
            int rc = plain_once(p, k);
            row->plain[i] = (double)(ag_now_ns() - t0) / 1e9;
            if (rc < 0) {
                party_fail(p, row, ag_mpc_errmsg(p->m));
                break;
            }
        }
    }
    barrier(p);
}

/* One timed run of kernel k at every party: barrier, kernel, barrier, with
 * rank 0's clock read after each barrier. The last run is verified. */
static void secure_step(struct party *p, enum kernel k, int i, bool last)
{
    struct run *r = p->run;
    struct row *row = &r->rows[k];
    ag_link_stats before, after;
    ag_tensor out = {0};
    barrier(p);
    bool skip = atomic_load(&r->failed);
    uint64_t t0 = ag_now_ns();
    ag_link_stats_get(p->link, &before);
    int rc = skip ? 0 : secure_once(p, k, &out);
    ag_link_stats_get(p->link, &after);
    if (rc < 0)
        party_fail(p, row, ag_mpc_errmsg(p->m));
    if (skip) {
        pthread_mutex_lock(&r->mu);
        row->failed = true;
        if (!row->err[0])
            snprintf(row->err, sizeof(row->err), "not run: an earlier step failed");
        pthread_mutex_unlock(&r->mu);
    }
    barrier(p);
    if (p->rank == 0)
        row->secs[i] = (double)(ag_now_ns() - t0) / 1e9;
    row->bytes[p->rank][i] = after.bytes_sent - before.bytes_sent;
    row->rounds[p->rank][i] = after.rounds - before.rounds;
    if (last && !atomic_load(&r->failed))
        verify(p, row, k, &out);
    ag_tensor_cleanup(&out);
    barrier(p);
}

/* Rank 0, before 1024^3: how many runs to make (0: skip), from the 256^3
 * time scaled by 64. Only FM128 and more than 2 parties may skip. */
static int mm1024_runs(const struct run *r)
{
    const struct row *small = &r->rows[K_MM256];
    double best = small->secs[0];
    for (int i = 1; i < small->runs; i++)
        best = AG_MIN(best, small->secs[i]);
    double est = 64 * best;
    if (r->f == AG_FM64 && r->n == 2)
        return r->runs;
    if (est > r->mm1024_skip_s)
        return 0;
    return est > r->mm1024_once_s ? 1 : r->runs;
}

/* Shares the inputs from their owners (untimed): x, t and the matmul left
 * operands from rank 0, y and the right operands from the last rank. */
static int share_inputs(struct party *p)
{
    struct run *r = p->run;
    unsigned last = r->n - 1;
    int64_t vec[1] = {(int64_t)N_ELEMS};
    int64_t sq[2][2] = {{256, 256}, {1024, 1024}};
    ag_tensor py[2] = {{0}}, pyv = {0};
    int rc = 0;
    if (p->rank == last) {
        rc = make_public(r->f, 1, vec, r->in->y, &pyv);
        for (int i = 0; i < 2 && rc == 0; i++)
            rc = make_public(r->f, 2, sq[i], r->in->y, &py[i]);
    }
    if (rc == 0)
        rc = ag_mpc_share(p->m, 0, p->rank == 0 ? &p->px : NULL, 1, vec, &p->sx);
    if (rc == 0)
        rc = ag_mpc_share(p->m, last, p->rank == last ? &pyv : NULL, 1, vec, &p->sy);
    if (rc == 0)
        rc = ag_mpc_share(p->m, 0, p->rank == 0 ? &p->pt : NULL, 1, vec, &p->st);
    for (int i = 0; i < 2 && rc == 0; i++) {
        rc = ag_mpc_share(p->m, 0, p->rank == 0 ? &p->pa[i] : NULL, 2, sq[i], &p->sa[i]);
        if (rc == 0)
            rc = ag_mpc_share(p->m, last, p->rank == last ? &py[i] : NULL, 2, sq[i], &p->sb[i]);
    }
    ag_tensor_cleanup(&pyv);
    ag_tensor_cleanup(&py[0]);
    ag_tensor_cleanup(&py[1]);
    return rc;
}

/* Rank 0's public tensors: its inputs and the plaintext results. */
static int rank0_tensors(struct party *p)
{
    struct run *r = p->run;
    int64_t vec[1] = {(int64_t)N_ELEMS};
    int64_t sq[2][2] = {{256, 256}, {1024, 1024}};
    int rc = make_public(r->f, 1, vec, r->in->x, &p->px);
    if (rc == 0)
        rc = make_public(r->f, 1, vec, r->in->t, &p->pt);
    for (int i = 0; i < 2 && rc == 0; i++) {
        rc = make_public(r->f, 2, sq[i], r->in->x, &p->pa[i]);
        if (rc == 0)
            rc = make_public(r->f, 2, sq[i], r->in->y, &p->pb[i]);
    }
    for (int k = 0; k < K_COUNT && rc == 0; k++) {
        if (k == K_MM256 || k == K_MM1024)
            continue;
        rc = ag_tensor_init(&p->ref[k], r->f, AG_VIS_PUBLIC, 1, vec);
        /* touch every page now, so the plaintext loops time no page faults */
        if (rc == 0)
            memset(p->ref[k].data, 0xa5, N_ELEMS * ag_field_bytes(r->f));
    }
    return rc;
}

static void party_cleanup(struct party *p)
{
    ag_tensor *ts[] = {&p->px, &p->pt, &p->pa[0], &p->pa[1], &p->pb[0], &p->pb[1], &p->sx,
                       &p->sy, &p->st, &p->sa[0], &p->sa[1], &p->sb[0], &p->sb[1]};
    for (size_t i = 0; i < AG_ARRAY_LEN(ts); i++)
        ag_tensor_cleanup(ts[i]);
    for (int k = 0; k < K_COUNT; k++)
        ag_tensor_cleanup(&p->ref[k]);
}

static void *party_main(void *arg)
{
    struct party *p = arg;
    struct run *r = p->run;
    int rc = ag_mpc_setup(p->m);
    if (rc == 0 && p->rank == 0 && rank0_tensors(p) < 0) {
        party_fail(p, &r->rows[K_SHARE], "no memory for the inputs");
        rc = AG_E_NOMEM;
    } else if (rc < 0) {
        party_fail(p, &r->rows[K_SHARE], ag_mpc_errmsg(p->m));
    }
    barrier(p);
    if (rc == 0 && !atomic_load(&r->failed) && (rc = share_inputs(p)) < 0) {
        char msg[AG_ERRMSG_MAX];
        snprintf(msg, sizeof(msg), "sharing the inputs: %s",
                 ag_mpc_errmsg(p->m)[0] ? ag_mpc_errmsg(p->m) : ag_strerror(rc));
        party_fail(p, &r->rows[K_SHARE], msg);
    }
    for (int k = 0; k < K_COUNT; k++) {
        struct row *row = &r->rows[k];
        plain_step(p, (enum kernel)k);
        /* rank 0 decides the runs; the others read them after the barrier */
        if (p->rank == 0) {
            row->runs = k == K_MM1024 ? mm1024_runs(r) : r->runs;
            row->skipped = row->runs == 0;
        }
        barrier(p);
        for (int i = 0; i < row->runs; i++)
            secure_step(p, (enum kernel)k, i, i == row->runs - 1);
    }
    party_cleanup(p);
    return NULL;
}

/* Runs the kernels of configuration r with one thread and one session per
 * party over links[0..r->n) (borrowed: the caller frees them after this
 * returns). Returns false if the sessions could not be made; exits the
 * program (after a message naming prog) if a party thread cannot start,
 * since the others would wait at a barrier for ever. */
static bool run_parties(struct run *r, ag_link *const *links, const char *prog)
{
    struct party ps[MAX_PARTIES];
    pthread_t th[MAX_PARTIES];
    pthread_barrier_init(&r->bar, NULL, r->n);
    pthread_mutex_init(&r->mu, NULL);
    atomic_init(&r->failed, false);
    ag_mpc_config cfg = {.field = r->f, .beaver_server = r->beaver, .label = "bench"};
    bool ok = true;
    memset(ps, 0, sizeof(ps));
    for (unsigned i = 0; i < r->n; i++) {
        ps[i].run = r;
        ps[i].rank = i;
        ps[i].link = links[i];
        ps[i].m = ag_mpc_new(links[i], &cfg);
        ok = ok && ps[i].m;
    }
    unsigned started = 0;
    for (unsigned i = 0; ok && i < r->n; i++, started++)
        ok = pthread_create(&th[i], NULL, party_main, &ps[i]) == 0;
    /* a thread that did not start would leave the others at a barrier */
    if (!ok && started > 0) {
        fprintf(stderr, "%s: cannot start party threads\n", prog);
        exit(1);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < r->n; i++)
        ag_mpc_free(ps[i].m);
    pthread_barrier_destroy(&r->bar);
    pthread_mutex_destroy(&r->mu);
    return ok;
}

/* ---- printing --------------------------------------------------------------- */

/* The model's bytes sent per party and rounds (argot/mpc.h). */
static void model(const struct run *r, enum kernel k, uint64_t *bytes, uint64_t *rounds)
{
    uint64_t eb = ag_field_bytes(r->f), peers = r->n - 1, n = N_ELEMS;
    uint64_t mm = k == K_MM256 ? 256 : 1024;
    switch (k) {
    case K_MUL:
        *bytes = eb * 2 * peers * n;
        break;
    case K_SQUARE:
        *bytes = eb * peers * n;
        break;
    case K_MM256:
    case K_MM1024:
        *bytes = eb * peers * (mm * mm + mm * mm);
        break;
    case K_TRUNC:
        *bytes = r->n == 2 ? 0 : eb * peers * n;
        break;
    case K_REVEAL:
        *bytes = eb * peers * n;
        break;
    case K_LESS: {
        /* a2b (a prefix adder, 2 lgK ANDs per level) and the packed bit */
        uint64_t lgk = r->f == AG_FM64 ? 6 : 7, levels = r->n <= 2 ? 1 : r->n <= 4 ? 2 : 3;
        *bytes = eb * 2 * peers * 2 * lgk * peers * n + peers * n / 8;
        *rounds = levels * (lgk + 1) + 1;
        return;
    }
    case K_SIGMOID: { /* SEG3: mpc.h's measured table, per element x 8 */
        static const uint64_t per8[2][2] = {{3330, 12932}, {7682, 29956}}; /* FM64, FM128 */
        static const uint64_t rounds_of[2][2] = {{9, 17}, {10, 19}};
        int fi = r->f == AG_FM128, ni = r->n > 2;
        *bytes = per8[fi][ni] * n / 8;
        *rounds = rounds_of[fi][ni];
        return;
    }
    default:
        *bytes = 0;
        break;
    }
    *rounds = k == K_SHARE || (k == K_TRUNC && r->n == 2) ? 0 : 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Best and median of n times. */
static void best_median(const double *v, int n, double *best, double *median)
{
    double s[MAX_RUNS];
    memcpy(s, v, (size_t)n * sizeof(*s));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    *best = s[0];
    *median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

#if defined(__clang__)
#define COMPILER "clang"
#elif defined(__GNUC__)
#define COMPILER "gcc"
#else
#define COMPILER "cc"
#endif

/* The CPU's model name from /proc/cpuinfo into cpu ("unknown" if none). */
static void machine_cpu(char *cpu, size_t cap)
{
    snprintf(cpu, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(cpu, cap, "%s", colon + 2);
            cpu[strcspn(cpu, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
}

#endif /* ARGOT_BENCH_MPC_KERNELS_H */
