/*
 * Nonlinear functions on fixed-point tensors: reciprocal and division, exp,
 * log, sqrt and rsqrt, the three sigmoids SPU offers (MM1, SEG3, REAL) and
 * argmax. Each function's method, domain and error bound is in
 * argot/mpc.h; its rounds and bytes are in the cost table there and are
 * checked by tests/unit/mpc/nonlinear_test.c.
 *
 * Normalization. Reciprocal, division, log, sqrt and rsqrt bring their
 * (positive, or sign-folded) input to a fixed interval by a power of two
 * that depends on its highest set bit. hibit() finds that bit: a2b, then
 * the bits of the window [0, L) as XOR-shared bit planes (plane i holds bit
 * i of every element, packed), a prefix OR from the top in ceil(log2 L)
 * rounds of ANDs (y_i = OR of bits i and above), the one-hot h_i = y_i ^
 * y_(i+1), and one conversion of all L planes to arithmetic 0/1 shares.
 * With h arithmetic, any public function g of the bit position is a local
 * dot product sum_i h_i g(i): the power of two that normalizes, the
 * exponent's contribution to log, the power of two that scales a result
 * back. L = D + f, where D (dom_bits) bounds the domain to [2^-f, 2^D):
 * D = max(f, K - 41 - f), at most K - 2 - 2f: 18 for FM64 with f = 18 and
 * 61 for FM128 with f = 26. Multiplying by 2^-e for e up to D is a product
 * by 2^(T - e) and a truncation by T = D, and the product of a normalized
 * value is always close to 2^(D + f), so every such truncation fails with
 * probability about 2^(D + f + 1 - K) (argot/mpc.h's model; measured, it
 * is half that): 2^-27 in FM64, as an fmul of operands near 1, and 2^-40
 * in FM128. Scaling a result back up (by 2^e, e >= 0) is an exact integer
 * product, and the two cases are two products of the same round
 * (scale_pow2).
 *
 * Signed inputs (reciprocal, division): the top bit s of the a2b output is
 * the sign; XOR-ing it into every bit (local on XOR shares) gives |x| - s,
 * whose highest bit is |x|'s, or one lower when |x| is a power of two, and
 * then the normalized value is exactly 1 in magnitude: still in range. The
 * Goldschmidt iteration runs on the signed normalized value, with the sign
 * folded into the initial guess, which is linear in s.
 *
 * exp: y = x log2(e); a2b(y); the integer part k of y is the t bits above
 * the fraction bits, decoded to a one-hot of every k in [-(f+1), D-2] by a
 * tree of ANDs (minterms), ANDed with a validity bit (the bits above k's
 * all equal y's sign, an AND tree of its own in the same rounds); an
 * overflow bit collects k >= D - 1 and every too-large y. Then the
 * fraction y - k is y minus a local dot product, 2^frac a polynomial, and
 * 2^k a power-of-two scaling as above; the overflow saturates at 2^(D-1).
 *
 * Polynomials are evaluated by Estrin's scheme: ceil(log2 (degree + 1))
 * rounds of products, each truncating every product of its round together
 * with the next power of the variable, so truncation errors are damped by
 * powers of |u| < 1 instead of accumulating as in the power-basis sum.
 *
 * Invariants:
 *   1. Every party makes the same calls in the same order: only the
 *      operands' shapes and visibilities and the session's field and
 *      fraction bits choose a path, never a rank or a value.
 *   2. Intermediate vectors are flat 1-D tensors of the input's numel n;
 *      a public one is the same at every party, and a public vector joins a
 *      shared one at rank 0 only (vacc, vconst), as ag_mpc_add does.
 *   3. The public operands of a mixed call (a public divisor, say) flow
 *      through the same algorithm in the clear, without messages; a call
 *      whose operands are all public is computed with the C library.
 *   4. Every kernel leaves out empty on failure, and a failure aborts the
 *      link (ag__mpc_fail), as in semi2k.c.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ARITH (AG__VIS_OK(AG_VIS_PUBLIC) | AG__VIS_OK(AG_VIS_ASHARE))

__extension__ typedef __int128 i128;

/* One kernel call: its session, name, field parameters and size. */
struct nl {
    ag_mpc *m;
    const char *op;
    ag_field f;
    unsigned k;   /* ring bits */
    unsigned fb;  /* fraction bits */
    unsigned dom; /* D: the normalized functions' domain is [2^-f, 2^D) */
    unsigned win; /* L = D + f: the bit positions hibit() searches */
    size_t n;     /* elements */
};

/* ---- approximations (Chebyshev interpolants, ascending powers) ------------ */

/* 2^(1/2 + v) for v in [-1/2, 1/2]: relative error 1.02e-7 (degree 5) and
 * 5.5e-11 (degree 7). */
static const double EXP2_5[] = {1.4142136690824341,   0.98025815402746652,  0.33972390202507297,
                                0.078493903069426135, 0.013683975568846004, 0.0018937540582203076};
static const double EXP2_7[] = {1.4142135623159067,    0.98025814346414486,
                                0.33973159150287491,   0.07849466380469583,
                                0.01360194226560617,   0.0018856386091095629,
                                0.00021877500860845376, 2.1642701100512146e-05};

/* ln(3/4 + u) for u in [-1/4, 1/4]: absolute error 2.6e-7 (degree 7) and
 * 1.5e-10 (degree 11). */
static const double LN_7[] = {-0.28768189335413336, 1.3333331201774847,  -0.88898033019974076,
                              0.79023228052568339,  -0.78291865733936095, 0.83422679283195744,
                              -1.1139214978869985,  1.2811890710827085};
static const double LN_11[] = {-0.28768207234866572, 1.333333333206004,   -0.88888900751951994,
                               0.79012360327625442,  -0.79010146477907772, 0.84277119993388949,
                               -0.93792263964478872, 1.0720472752168169,  -1.2041487714776549,
                               1.4249617043801097,   -2.372014101782483,  2.8878690085762138};

/* 1/sqrt(5/4 + u) for u in [-3/4, 3/4]: relative error 8.86e-3. */
static const double RSQRT_3[] = {0.88884122351216022, -0.35370492608129545, 0.29110128608657898,
                                 -0.19868787050106337};
#define RSQRT_INIT_ERR 8.86e-3

/* The Goldschmidt reciprocal's initial guess 1/c ~ a - 2c on [1/2, 1]: a =
 * 4 sqrt(3) - 4 makes the relative error e = 1 - c (a - 2c) equioscillate,
 * |e| <= 7 - 4 sqrt(3) = 0.0718; 2 is a power of two, so 2c is exact. */
#define GS_A 2.9282032302755092
#define GS_E0 0.071796769724490839

/* ---- ring elements and errors ----------------------------------------------- */

static ag_u128 rget(ag_field f, const void *d, size_t i)
{
    return f == AG_FM64 ? ((const uint64_t *)d)[i] : ((const ag_u128 *)d)[i];
}

static void rset(ag_field f, void *d, size_t i, ag_u128 v)
{
    if (f == AG_FM64)
        ((uint64_t *)d)[i] = (uint64_t)v;
    else
        ((ag_u128 *)d)[i] = v;
}

/* The ring encoding of v with fb + extra fraction bits (two's complement). */
static ag_u128 fxp(const struct nl *c, double v, unsigned extra)
{
    return (ag_u128)(i128)nearbyint(ldexp(v, (int)(c->fb + extra)));
}

static ag_u128 pow2(unsigned e)
{
    return (ag_u128)1 << e;
}

/* Prefixes the session's error message with the kernel's name when rc is
 * an error from a kernel this one called. Returns rc. */
static int nested(struct nl *c, int rc)
{
    if (rc < 0) {
        char inner[AG_ERRMSG_MAX];
        snprintf(inner, sizeof(inner), "%s", c->m->err.msg);
        ag_errbuf_set(&c->m->err, rc, "%s: %s", c->op, inner);
    }
    return rc;
}

/* The domain exponent D (see the file comment): max(f, K - 41 - f), at
 * most K - 2 - 2f, at least 1. */
static unsigned dom_bits(ag_field f, unsigned fb)
{
    int k = (int)ag_field_bytes(f) * 8, cap = k - 2 - 2 * (int)fb, d = k - 41 - (int)fb;
    if (d < (int)fb)
        d = (int)fb;
    if (d > cap)
        d = cap;
    return d < 1 ? 1 : (unsigned)d;
}

unsigned ag_mpc_nl_domain_bits(const ag_mpc *m)
{
    return dom_bits(m->field, m->fxp_bits);
}

/* ---- vectors: flat tensors of n (or more) elements ------------------------ */

static int vnew_len(struct nl *c, ag_vis v, size_t len, ag_tensor *t)
{
    int64_t shape[1] = {(int64_t)len};
    int rc = ag_tensor_init(t, c->f, v, 1, shape);
    if (rc < 0)
        return ag__mpc_fail(c->m, rc, c->op, "%s", ag_strerror(rc));
    return 0;
}

/* A zero vector of n elements; public, so that it can hold constants until
 * a share joins it. */
static int vnew(struct nl *c, ag_tensor *t)
{
    return vnew_len(c, AG_VIS_PUBLIC, c->n, t);
}

/* A public vector of n copies of the ring value v. */
static int vfill(struct nl *c, ag_u128 v, ag_tensor *t)
{
    int rc = vnew(c, t);
    for (size_t i = 0; rc == 0 && i < c->n; i++)
        rset(c->f, t->data, i, v);
    return rc;
}

/* A public vector becomes a sharing of the same value: rank 0 keeps it. */
static void promote(struct nl *c, ag_tensor *t)
{
    if (t->vis != AG_VIS_PUBLIC)
        return;
    t->vis = AG_VIS_ASHARE;
    if (c->m->rank != 0)
        memset(t->data, 0, t->numel * ag_field_bytes(c->f));
}

/* dst += k * src, elementwise (n elements from src's offset off). */
static void vacc_at(struct nl *c, ag_tensor *dst, const ag_tensor *src, size_t off, ag_u128 k)
{
    if (dst->vis == AG_VIS_PUBLIC && src->vis == AG_VIS_ASHARE)
        promote(c, dst);
    if (dst->vis == AG_VIS_ASHARE && src->vis == AG_VIS_PUBLIC && c->m->rank != 0)
        return;
    for (size_t i = 0; i < c->n; i++)
        rset(c->f, dst->data, i, rget(c->f, dst->data, i) + k * rget(c->f, src->data, off + i));
}

static void vacc(struct nl *c, ag_tensor *dst, const ag_tensor *src, ag_u128 k)
{
    vacc_at(c, dst, src, 0, k);
}

/* dst += the constant v (rank 0 only, for a share). */
static void vconst(struct nl *c, ag_tensor *dst, ag_u128 v)
{
    if (dst->vis == AG_VIS_ASHARE && c->m->rank != 0)
        return;
    for (size_t i = 0; i < c->n; i++)
        rset(c->f, dst->data, i, rget(c->f, dst->data, i) + v);
}

/* out = sum_i h_i * tab[i] over the cnt one-hot vectors in h (vector i at
 * offset i * n): a public function of the position, local. */
static int vtable(struct nl *c, const ag_tensor *h, unsigned cnt, const ag_u128 *tab,
                  ag_tensor *out)
{
    int rc = vnew(c, out);
    if (rc < 0)
        return rc;
    if (h->vis == AG_VIS_ASHARE)
        out->vis = AG_VIS_ASHARE; /* all zero so far: no promotion needed */
    for (unsigned i = 0; i < cnt; i++) {
        if (tab[i] == 0)
            continue;
        for (size_t j = 0; j < c->n; j++) {
            ag_u128 v = rget(c->f, out->data, j) + tab[i] * rget(c->f, h->data, i * c->n + j);
            rset(c->f, out->data, j, v);
        }
    }
    return 0;
}

/* Cleans up cnt tensors. */
static void drop(ag_tensor *const *t, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++)
        ag_tensor_cleanup(t[i]);
}

/* Moves *t out, leaving it empty. */
static ag_tensor take(ag_tensor *t)
{
    ag_tensor r = *t;
    memset(t, 0, sizeof(*t));
    return r;
}

/* ---- batched products ------------------------------------------------------- */

/* A product of the round: z = x * y, truncated by the round's bits when
 * trunc is set. */
struct prod {
    const ag_tensor *x;
    const ag_tensor *y;
    bool trunc;
    ag_tensor z;
};

static void prods_cleanup(struct prod *p, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++)
        ag_tensor_cleanup(&p[i].z);
}

/* Copies n elements of each listed vector into one flat vector (or back). */
static void gather(struct nl *c, ag_tensor *flat, const ag_tensor *const *v, size_t cnt)
{
    size_t bytes = c->n * ag_field_bytes(c->f);
    for (size_t i = 0; i < cnt; i++)
        memcpy((uint8_t *)flat->data + i * bytes, v[i]->data, bytes);
}

/* Every product of p[0..cnt) (each x, y of n elements): one Beaver round
 * for all the shared-by-shared pairs together (one ag_mpc_mul), the others
 * locally; then one truncation by bits of every shared product marked
 * trunc (one ag_mpc_trunc), public ones exactly. So a round of products
 * costs one mul and, for more than two parties, one truncation round. On
 * failure every z is left empty. */
static int products(struct nl *c, struct prod *p, size_t cnt, unsigned bits)
{
    const ag_tensor *xs[16], *ys[16];
    size_t nsh = 0, ntr = 0, bytes = c->n * ag_field_bytes(c->f);
    ag_tensor X = {0}, Y = {0}, Z = {0}, T = {0}, TT = {0};
    int rc = 0;
    assert(cnt <= AG_ARRAY_LEN(xs));
    for (size_t i = 0; i < cnt; i++) {
        memset(&p[i].z, 0, sizeof(p[i].z));
        if (p[i].x->vis == AG_VIS_ASHARE && p[i].y->vis == AG_VIS_ASHARE) {
            xs[nsh] = p[i].x;
            ys[nsh++] = p[i].y;
        }
    }
    if (nsh) {
        rc = vnew_len(c, AG_VIS_ASHARE, nsh * c->n, &X);
        if (rc == 0)
            rc = vnew_len(c, AG_VIS_ASHARE, nsh * c->n, &Y);
        if (rc < 0)
            goto out;
        gather(c, &X, xs, nsh);
        gather(c, &Y, ys, nsh);
        rc = nested(c, ag_mpc_mul(c->m, &X, &Y, &Z));
        if (rc < 0)
            goto out;
    }
    for (size_t i = 0, s = 0; i < cnt && rc == 0; i++) {
        bool sh = p[i].x->vis == AG_VIS_ASHARE || p[i].y->vis == AG_VIS_ASHARE;
        rc = vnew_len(c, sh ? AG_VIS_ASHARE : AG_VIS_PUBLIC, c->n, &p[i].z);
        if (rc < 0)
            break;
        if (p[i].x->vis == AG_VIS_ASHARE && p[i].y->vis == AG_VIS_ASHARE)
            memcpy(p[i].z.data, (uint8_t *)Z.data + s++ * bytes, bytes);
        else
            ag__ring_mul(c->f, c->n, p[i].z.data, p[i].x->data, p[i].y->data);
        if (p[i].trunc && !sh)
            ag__ring_arshift(c->f, c->n, p[i].z.data, p[i].z.data, bits);
        ntr += p[i].trunc && sh;
    }
    if (rc < 0 || ntr == 0)
        goto out;
    rc = vnew_len(c, AG_VIS_ASHARE, ntr * c->n, &T);
    for (size_t i = 0, s = 0; i < cnt && rc == 0; i++)
        if (p[i].trunc && p[i].z.vis == AG_VIS_ASHARE)
            memcpy((uint8_t *)T.data + s++ * bytes, p[i].z.data, bytes);
    if (rc == 0)
        rc = nested(c, ag_mpc_trunc(c->m, &T, bits, &TT));
    for (size_t i = 0, s = 0; i < cnt && rc == 0; i++)
        if (p[i].trunc && p[i].z.vis == AG_VIS_ASHARE)
            memcpy(p[i].z.data, (uint8_t *)TT.data + s++ * bytes, bytes);
out:
    ag_tensor_cleanup(&X);
    ag_tensor_cleanup(&Y);
    ag_tensor_cleanup(&Z);
    ag_tensor_cleanup(&T);
    ag_tensor_cleanup(&TT);
    if (rc < 0)
        prods_cleanup(p, cnt);
    return rc;
}

/* out = v * 2^e[i] where h (cnt one-hot vectors) says which i: an exact
 * integer product for e[i] >= 0 and a product by 2^(T + e[i]) truncated by
 * T = max(-e[i]) for the rest. When split is false both go through the
 * truncated product (one product instead of two: right when v * 2^e[i]
 * stays small for every i, as when normalizing). One round. */
static int scale_pow2(struct nl *c, const ag_tensor *v, const ag_tensor *h, unsigned cnt,
                      const int *e, bool split, ag_tensor *out)
{
    unsigned t = 0;
    bool any_lo = false, any_hi = false;
    for (unsigned i = 0; i < cnt; i++) {
        if (e[i] < 0 && (unsigned)-e[i] > t)
            t = (unsigned)-e[i];
        any_lo = any_lo || (split && e[i] >= 0);
        any_hi = any_hi || !split || e[i] < 0;
    }
    ag_u128 tlo[256], thi[256];
    assert(cnt <= AG_ARRAY_LEN(tlo));
    for (unsigned i = 0; i < cnt; i++) {
        bool lo = split && e[i] >= 0;
        tlo[i] = lo ? pow2((unsigned)e[i]) : 0;
        thi[i] = lo ? 0 : pow2((unsigned)((int)t + e[i]));
    }
    ag_tensor plo = {0}, phi = {0};
    struct prod p[2];
    size_t np = 0;
    int rc = 0;
    if (any_lo) {
        rc = vtable(c, h, cnt, tlo, &plo);
        p[np++] = (struct prod){v, &plo, false, {0}};
    }
    if (rc == 0 && any_hi) {
        rc = vtable(c, h, cnt, thi, &phi);
        p[np++] = (struct prod){v, &phi, true, {0}};
    }
    if (rc == 0)
        rc = products(c, p, np, t);
    if (rc == 0) {
        *out = take(&p[0].z);
        if (np == 2)
            vacc(c, out, &p[1].z, 1);
        prods_cleanup(p, np);
    }
    ag_tensor_cleanup(&plo);
    ag_tensor_cleanup(&phi);
    return rc;
}

/* ---- polynomials ------------------------------------------------------------ */

/* out = sum_k coef[k] u^k (ncoef <= 16) by Estrin's scheme: pairs
 * coef[2i] + coef[2i+1] u, then pairs of those joined by u^2, u^4, ..;
 * ceil(log2 ncoef) rounds of products (see the file comment). */
static int poly(struct nl *c, const ag_tensor *u, const double *coef, unsigned ncoef,
                ag_tensor *out)
{
    ag_tensor term[16], cst[8], pw = {0};
    struct prod p[9];
    unsigned nt = (ncoef + 1) / 2, ncst = 0;
    int rc = 0;
    assert(ncoef >= 2 && ncoef <= 16);
    memset(term, 0, sizeof(term));
    memset(cst, 0, sizeof(cst));
    /* level 0: coef[2i+1] * u (public constant: local), and u^2 */
    size_t np = 0;
    for (unsigned i = 0; i < ncoef / 2 && rc == 0; i++) {
        rc = vfill(c, fxp(c, coef[2 * i + 1], 0), &cst[ncst]);
        p[np++] = (struct prod){&cst[ncst++], u, true, {0}};
    }
    if (rc == 0 && nt > 1)
        p[np++] = (struct prod){u, u, true, {0}};
    if (rc == 0)
        rc = products(c, p, np, c->fb);
    for (unsigned i = 0; i < nt && rc == 0; i++) {
        if (2 * i + 1 < ncoef) {
            term[i] = take(&p[i].z);
        } else {
            rc = vnew(c, &term[i]);
        }
        if (rc == 0)
            vconst(c, &term[i], fxp(c, coef[2 * i], 0));
    }
    if (rc == 0 && nt > 1)
        pw = take(&p[np - 1].z);
    if (rc == 0)
        prods_cleanup(p, np);
    /* level j: term[2i] + term[2i+1] * u^(2^j), and the next power */
    while (rc == 0 && nt > 1) {
        np = 0;
        for (unsigned i = 0; i + 1 < nt; i += 2)
            p[np++] = (struct prod){&term[i + 1], &pw, true, {0}};
        bool more = (nt + 1) / 2 > 1;
        if (more)
            p[np++] = (struct prod){&pw, &pw, true, {0}};
        rc = products(c, p, np, c->fb);
        if (rc < 0)
            break;
        unsigned next = 0;
        for (unsigned i = 0; i < nt; i += 2, next++) {
            ag_tensor t = take(&term[i]);
            if (i + 1 < nt) {
                vacc(c, &t, &p[i / 2].z, 1);
                ag_tensor_cleanup(&term[i + 1]);
            }
            term[next] = t;
        }
        nt = next;
        if (more) {
            ag_tensor_cleanup(&pw);
            pw = take(&p[np - 1].z);
        }
        prods_cleanup(p, np);
    }
    if (rc == 0)
        *out = take(&term[0]);
    for (unsigned i = 0; i < AG_ARRAY_LEN(term); i++)
        ag_tensor_cleanup(&term[i]);
    for (unsigned i = 0; i < ncst; i++)
        ag_tensor_cleanup(&cst[i]);
    ag_tensor_cleanup(&pw);
    return rc;
}

/* ---- XOR-shared bit planes ----------------------------------------------------- */

/* A bump allocator of bit planes: plane i holds one bit of each of n
 * elements (bit j at byte j / 8, position j % 8). */
struct planes {
    uint8_t *base;
    size_t nb;   /* bytes per plane */
    size_t cap;  /* planes */
    size_t used; /* planes handed out */
};

static int planes_init(struct nl *c, struct planes *pl, size_t cap)
{
    pl->nb = (c->n + 7) / 8;
    pl->cap = cap;
    pl->used = 0;
    pl->base = ag_calloc(cap ? cap : 1, pl->nb ? pl->nb : 1);
    if (!pl->base)
        return ag__mpc_fail(c->m, AG_E_NOMEM, c->op, "no memory for %zu bit planes", cap);
    return 0;
}

static void planes_cleanup(struct planes *pl)
{
    if (pl->base)
        ag_wipe(pl->base, pl->cap * pl->nb);
    ag_free(pl->base);
    memset(pl, 0, sizeof(*pl));
}

static uint8_t *plane_new(struct planes *pl)
{
    assert(pl->used < pl->cap);
    return pl->base + pl->used++ * pl->nb;
}

/* A new plane holding bit pos of each of the n words (this party's XOR
 * shares of the bits). */
static uint8_t *plane_bit(struct nl *c, struct planes *pl, const void *words, unsigned pos)
{
    uint8_t *d = plane_new(pl);
    for (size_t j = 0; j < c->n; j++)
        d[j / 8] |= (uint8_t)((unsigned)(rget(c->f, words, j) >> pos & 1) << (j % 8));
    return d;
}

/* dst = a ^ b, then negated when neg (rank 0 flips its share). */
static void plane_xor(struct nl *c, size_t nb, uint8_t *dst, const uint8_t *a, const uint8_t *b,
                      bool neg)
{
    ag__bits_xor(nb, dst, a, b);
    if (neg && c->m->rank == 0)
        for (size_t i = 0; i < nb; i++)
            dst[i] ^= 0xFF;
}

static void plane_not(struct nl *c, size_t nb, uint8_t *dst, const uint8_t *a)
{
    memcpy(dst, a, nb);
    if (c->m->rank == 0)
        for (size_t i = 0; i < nb; i++)
            dst[i] ^= 0xFF;
}

/* z[i] = x[i] & y[i] for cnt planes in one round of ANDs (one message per
 * peer: 2 nb bytes per plane). z[i] may be x[i] or y[i]. */
static int and_planes(struct nl *c, size_t nb, size_t cnt, uint8_t *const *x, uint8_t *const *y,
                      uint8_t *const *z)
{
    if (cnt == 0)
        return 0;
    size_t tot = cnt * nb;
    uint8_t *buf = ag_malloc(2 * tot);
    if (!buf)
        return ag__mpc_fail(c->m, AG_E_NOMEM, c->op, "no memory for %zu bit planes", cnt);
    for (size_t i = 0; i < cnt; i++) {
        memcpy(buf + i * nb, x[i], nb);
        memcpy(buf + tot + i * nb, y[i], nb);
    }
    int rc = ag__bool_and(c->m, c->op, tot, buf, buf + tot, buf);
    for (size_t i = 0; rc == 0 && i < cnt; i++)
        memcpy(z[i], buf + i * nb, nb);
    ag_wipe(buf, 2 * tot);
    ag_free(buf);
    return rc;
}

/* Arithmetic 0/1 shares of cnt planes into out, a new shared vector of
 * cnt * n elements (plane i at offset i * n). One round of
 * ceil(cnt * n / 8) bytes per peer. */
static int planes_to_a(struct nl *c, size_t cnt, uint8_t *const *p, ag_tensor *out)
{
    size_t bits = cnt * c->n, nbytes = (bits + 7) / 8;
    int rc = vnew_len(c, AG_VIS_ASHARE, bits, out);
    if (rc < 0)
        return rc;
    uint8_t *packed = ag_calloc(1, nbytes ? nbytes : 1);
    if (!packed) {
        ag_tensor_cleanup(out);
        return ag__mpc_fail(c->m, AG_E_NOMEM, c->op, "no memory for %zu bits", bits);
    }
    for (size_t i = 0; i < cnt; i++)
        for (size_t j = 0; j < c->n; j++) {
            size_t at = i * c->n + j;
            packed[at / 8] |= (uint8_t)((p[i][j / 8] >> (j % 8) & 1) << (at % 8));
        }
    rc = ag__bool_bits_to_a(c->m, c->op, bits, packed, out->data);
    ag_wipe(packed, nbytes);
    ag_free(packed);
    if (rc < 0)
        ag_tensor_cleanup(out);
    return rc;
}

/* ---- the highest set bit ------------------------------------------------------ */

/* For a public x: h (win one-hot vectors) and s in the clear, as hibit()
 * computes them for a share. */
static int hibit_clear(struct nl *c, const ag_tensor *x, bool sign, ag_tensor *h, ag_tensor *s)
{
    int rc = vnew_len(c, AG_VIS_PUBLIC, (size_t)c->win * c->n, h);
    if (rc == 0)
        rc = vnew(c, s);
    if (rc < 0) {
        ag_tensor_cleanup(h);
        return rc;
    }
    ag_u128 window = pow2(c->win) - 1;
    for (size_t j = 0; j < c->n; j++) {
        ag_u128 v = rget(c->f, x->data, j);
        bool neg = sign && (v >> (c->k - 1) & 1);
        ag_u128 z = (neg ? ~v : v) & window;
        unsigned top = 0;
        while (top + 1 < c->win && z >> (top + 1))
            top++;
        rset(c->f, h->data, (size_t)top * c->n + j, 1);
        rset(c->f, s->data, j, neg);
    }
    return 0;
}

/* The position of the highest set bit of z = (x < 0 ? ~x : x) when sign is
 * set, z = x otherwise, within [0, win): h gets win vectors of n elements,
 * h_i = 1 where the bit is i (i = 0 also when z has no bit set), and s the
 * sign as 0/1 (NULL when sign is not set). Shared x: a2b, ceil(log2 win)
 * rounds of ANDs (the prefix OR), one conversion of win (+ 1) bits. */
static int hibit(struct nl *c, const ag_tensor *x, bool sign, ag_tensor *h, ag_tensor *s)
{
    if (x->vis == AG_VIS_PUBLIC) {
        ag_tensor dummy;
        int rc = hibit_clear(c, x, sign, h, s ? s : &dummy);
        if (rc == 0 && !s)
            ag_tensor_cleanup(&dummy);
        return rc;
    }
    unsigned L = c->win;
    ag_tensor xb = {0}, all = {0};
    assert(L >= 2);
    memset(h, 0, sizeof(*h));
    if (s)
        memset(s, 0, sizeof(*s));
    struct planes pl = {0};
    uint8_t **ptr = NULL;
    int rc = nested(c, ag_mpc_a2b(c->m, x, &xb));
    if (rc == 0)
        rc = planes_init(c, &pl, 2 * (size_t)L + 1);
    if (rc < 0)
        goto out;
    ptr = ag_malloc(3 * (L + 1) * sizeof(*ptr));
    if (!ptr) {
        rc = ag__mpc_fail(c->m, AG_E_NOMEM, c->op, "no memory");
        goto out;
    }
    uint8_t **y = ptr, **a = y + L + 1, **tmp = a + L + 1;
    size_t nb = pl.nb;
    uint8_t *sg = plane_bit(c, &pl, xb.data, c->k - 1);
    for (unsigned i = 0; i < L; i++) {
        y[i] = plane_bit(c, &pl, xb.data, i);
        if (sign)
            ag__bits_xor(nb, y[i], y[i], sg);
    }
    for (unsigned i = 0; i < L; i++)
        tmp[i] = plane_new(&pl);
    /* prefix OR from the top: y_i |= y_(i+d) for d = 1, 2, 4, .. (a | b is
     * a ^ b ^ (a & b)); y_(i+d) is read before it changes */
    for (unsigned d = 1; d < L && rc == 0; d <<= 1) {
        for (unsigned i = 0; i + d < L; i++)
            a[i] = y[i];
        rc = and_planes(c, nb, L - d, a, y + d, tmp);
        for (unsigned i = 0; rc == 0 && i + d < L; i++) {
            ag__bits_xor(nb, y[i], y[i], y[i + d]);
            ag__bits_xor(nb, y[i], y[i], tmp[i]);
        }
    }
    if (rc < 0)
        goto out;
    /* one-hot, in place from the bottom: h_0 = ~y_1 (the top bit is bit 0,
     * or there is none), h_i = y_i ^ y_(i+1), h_(L-1) = y_(L-1) */
    plane_not(c, nb, y[0], y[1]);
    for (unsigned i = 1; i + 1 < L; i++)
        ag__bits_xor(nb, y[i], y[i], y[i + 1]);
    y[L] = sg;
    rc = planes_to_a(c, L + (sign ? 1 : 0), y, &all);
    if (rc == 0)
        rc = vnew_len(c, AG_VIS_ASHARE, (size_t)L * c->n, h);
    if (rc == 0 && sign)
        rc = vnew_len(c, AG_VIS_ASHARE, c->n, s);
    if (rc < 0) {
        ag_tensor_cleanup(h);
        goto out;
    }
    size_t bytes = c->n * ag_field_bytes(c->f);
    memcpy(h->data, all.data, L * bytes);
    if (sign)
        memcpy(s->data, (uint8_t *)all.data + L * bytes, bytes);
out:
    ag_free(ptr);
    planes_cleanup(&pl);
    ag_tensor_cleanup(&xb);
    ag_tensor_cleanup(&all);
    return rc;
}

/* ---- reciprocal and division --------------------------------------------------- */

/* Goldschmidt iterations: the initial error |e| <= GS_E0 squares at each,
 * until below 2^-(f+2). 3 for f from 9 to 29. */
static unsigned gs_iters(const struct nl *c)
{
    unsigned it = 1;
    while (pow(GS_E0, ldexp(1.0, (int)it)) > ldexp(1.0, -(int)c->fb - 2))
        it++;
    return it;
}

/* r = 1 + e or 1.5 - e and the like: a fresh vector k * e + v. */
static int affine(struct nl *c, const ag_tensor *e, ag_u128 k, ag_u128 v, ag_tensor *out)
{
    int rc = vnew(c, out);
    if (rc == 0) {
        vconst(c, out, v);
        vacc(c, out, e, k);
    }
    return rc;
}

/* out = x / y (x NULL: 1 / y). y is normalized to c = y 2^(f-1-m) with
 * 1/2 <= |c| <= 1 (m its highest bit); w = (1 - 2s) a - 2c ~ 1/c; then
 * r = x w, e = 1 - c w, and r *= 1 + e, e *= e, until 1/c's relative error
 * e^(2^I) is negligible; r 2^(f-1-m) is x / y. Every step after hibit is
 * one round of products. */
static int gs_divide(struct nl *c, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    unsigned L = c->win, f = c->fb, iters = gs_iters(c);
    ag_u128 one = fxp(c, 1.0, 0), a = fxp(c, GS_A, 0);
    int e[256];
    ag_tensor h = {0}, s = {0}, cv = {0}, w = {0}, r = {0}, ev = {0}, t = {0};
    struct prod p[2];
    assert(L <= AG_ARRAY_LEN(e));
    for (unsigned i = 0; i < L; i++)
        e[i] = (int)f - 1 - (int)i;
    int rc = hibit(c, y, true, &h, &s);
    if (rc == 0)
        rc = scale_pow2(c, y, &h, L, e, false, &cv);
    if (rc == 0)
        rc = affine(c, &s, 0 - 2 * a, a, &w);
    if (rc < 0)
        goto out;
    vacc(c, &w, &cv, 0 - (ag_u128)2);
    p[0] = (struct prod){&cv, &w, true, {0}};
    p[1] = (struct prod){x, &w, true, {0}};
    rc = products(c, p, x ? 2 : 1, f);
    if (rc < 0)
        goto out;
    rc = affine(c, &p[0].z, 0 - (ag_u128)1, one, &ev);
    r = x ? take(&p[1].z) : take(&w);
    prods_cleanup(p, x ? 2 : 1);
    for (unsigned it = 0; it < iters && rc == 0; it++) {
        bool last = it + 1 == iters;
        rc = affine(c, &ev, 1, one, &t);
        if (rc < 0)
            break;
        p[0] = (struct prod){&r, &t, true, {0}};
        p[1] = (struct prod){&ev, &ev, true, {0}};
        rc = products(c, p, last ? 1 : 2, f);
        ag_tensor_cleanup(&t);
        if (rc < 0)
            break;
        ag_tensor_cleanup(&r);
        r = take(&p[0].z);
        if (!last) {
            ag_tensor_cleanup(&ev);
            ev = take(&p[1].z);
        }
        prods_cleanup(p, last ? 1 : 2);
    }
    if (rc == 0)
        rc = scale_pow2(c, &r, &h, L, e, true, out);
out:
    drop((ag_tensor *[]){&h, &s, &cv, &w, &r, &ev, &t}, 7);
    return rc;
}

/* ---- log ----------------------------------------------------------------------- */

/* ln x = ln c + (m + 1 - f) ln 2 with c = x 2^(f-1-m) in [1/2, 1): the
 * polynomial in c - 3/4, plus a local table of m. */
static int log_shared(struct nl *c, const ag_tensor *x, ag_tensor *out)
{
    unsigned L = c->win, f = c->fb;
    int e[256];
    ag_u128 tab[256];
    ag_tensor h = {0}, cv = {0}, lt = {0};
    bool small = ldexp(2.6e-7, (int)f + 3) <= 1.0;
    assert(L <= AG_ARRAY_LEN(e));
    for (unsigned i = 0; i < L; i++) {
        e[i] = (int)f - 1 - (int)i;
        tab[i] = fxp(c, ((double)i + 1 - f) * 0.69314718055994531, 0);
    }
    int rc = hibit(c, x, false, &h, NULL);
    if (rc == 0)
        rc = scale_pow2(c, x, &h, L, e, false, &cv);
    if (rc == 0) {
        vconst(c, &cv, 0 - fxp(c, 0.75, 0));
        rc = small ? poly(c, &cv, LN_7, AG_ARRAY_LEN(LN_7), out)
                   : poly(c, &cv, LN_11, AG_ARRAY_LEN(LN_11), out);
    }
    if (rc == 0)
        rc = vtable(c, &h, L, tab, &lt);
    if (rc == 0)
        vacc(c, out, &lt, 1);
    ag_tensor_cleanup(&h);
    ag_tensor_cleanup(&cv);
    ag_tensor_cleanup(&lt);
    return rc;
}

/* ---- sqrt and rsqrt --------------------------------------------------------------- */

/* Goldschmidt iterations from the initial guess: the relative error d
 * becomes about 1.5 d^2 at each, until below 2^-(f+2). */
static unsigned sqrt_iters(const struct nl *c)
{
    unsigned it = 1;
    for (double d = 1.5 * RSQRT_INIT_ERR * RSQRT_INIT_ERR; d > ldexp(1.0, -(int)c->fb - 2);
         d = 1.5 * d * d)
        it++;
    return it;
}

/* ceil(v / 2) */
static int half_up(int v)
{
    return v >= 0 ? (v + 1) / 2 : -(-v / 2);
}

/* x = c 4^j with c in [1/2, 2) (x in [2^e, 2^(e+1)), e = m - f, j =
 * ceil(e / 2)); y0 ~ 1/sqrt(c) by a cubic; then Goldschmidt's coupled
 * iteration g = c y0, H = y0, r = 3/2 - g H / 2, g *= r, H *= r, which
 * takes g to sqrt(c) and H to 1/sqrt(c) (H is twice the usual h = y0 / 2,
 * for one more bit of precision: the halving is the product's truncation
 * by f + 1, alone in its round); sqrt x = g 2^j and 1/sqrt x = H 2^-j. */
static int sqrt_shared(struct nl *c, const ag_tensor *x, bool inverse, ag_tensor *out)
{
    unsigned L = c->win, f = c->fb, iters = sqrt_iters(c);
    int e[256], back[256];
    ag_tensor h = {0}, cv = {0}, g = {0}, hh = {0}, r = {0};
    struct prod p[2];
    assert(L <= AG_ARRAY_LEN(e));
    for (unsigned i = 0; i < L; i++) {
        int j = half_up((int)i - (int)f);
        e[i] = -2 * j;
        back[i] = inverse ? -j : j;
    }
    int rc = hibit(c, x, false, &h, NULL);
    if (rc == 0)
        rc = scale_pow2(c, x, &h, L, e, false, &cv);
    if (rc < 0)
        goto out;
    vconst(c, &cv, 0 - fxp(c, 1.25, 0));
    rc = poly(c, &cv, RSQRT_3, AG_ARRAY_LEN(RSQRT_3), &hh);
    vconst(c, &cv, fxp(c, 1.25, 0));
    if (rc < 0)
        goto out;
    p[0] = (struct prod){&cv, &hh, true, {0}};
    rc = products(c, p, 1, f);
    if (rc < 0)
        goto out;
    g = take(&p[0].z);
    for (unsigned it = 0; it < iters && rc == 0; it++) {
        bool last = it + 1 == iters;
        p[0] = (struct prod){&g, &hh, true, {0}};
        rc = products(c, p, 1, f + 1);
        if (rc < 0)
            break;
        rc = affine(c, &p[0].z, 0 - (ag_u128)1, fxp(c, 1.5, 0), &r);
        prods_cleanup(p, 1);
        if (rc < 0)
            break;
        size_t np = 0;
        if (!last || !inverse)
            p[np++] = (struct prod){&g, &r, true, {0}};
        if (!last || inverse)
            p[np++] = (struct prod){&hh, &r, true, {0}};
        rc = products(c, p, np, f);
        ag_tensor_cleanup(&r);
        if (rc < 0)
            break;
        np = 0;
        if (!last || !inverse) {
            ag_tensor_cleanup(&g);
            g = take(&p[np++].z);
        }
        if (!last || inverse) {
            ag_tensor_cleanup(&hh);
            hh = take(&p[np++].z);
        }
    }
    if (rc == 0)
        rc = scale_pow2(c, inverse ? &hh : &g, &h, L, back, true, out);
out:
    drop((ag_tensor *[]){&h, &cv, &g, &hh, &r}, 5);
    return rc;
}

/* ---- exp --------------------------------------------------------------------------- */

/* Bits t of k = floor(x log2 e): k in [-2^(t-1), 2^(t-1)) must cover
 * [-(f+1), D-1]. */
static unsigned exp_kbits(const struct nl *c)
{
    unsigned need = c->fb + 1 > c->dom ? c->fb + 1 : c->dom, t = 1;
    while ((1u << (t - 1)) < need)
        t++;
    return t;
}

/* Minterm groups: group g covers bits of k and holds 2^nbits planes, the
 * plane at index u being 1 where those bits read u. */
struct grp {
    unsigned nbits;
    uint8_t **pl;
};

/* From y's boolean shares yb: oh gets L + 1 vectors: for k = -(f+1) ..
 * D-2 (index k + f + 1), 1 where floor(y) = k; then 1 where y >= D - 1.
 * The minterms of k's t bits and the AND of the H = K - f - t planes
 * "bit j equals the sign" (j from f + t - 1 to K - 2) run in the same
 * rounds; a last round ANDs each minterm with that validity bit. */
static int exp_onehot(struct nl *c, const ag_tensor *yb, ag_tensor *oh)
{
    unsigned f = c->fb, L = c->win, t = exp_kbits(c), hb = c->k - f - t;
    size_t mt = (size_t)1 << t, cap = 2 * t + 2 * mt + 2 * (size_t)hb + L + 16;
    struct planes pl = {0};
    struct grp grp[16];
    uint8_t **pool = NULL, **val = NULL, **xs, **ys, **zs;
    size_t used = 0, nval = 0;
    unsigned ngrp = t;
    assert(t <= AG_ARRAY_LEN(grp));
    int rc = planes_init(c, &pl, cap);
    if (rc < 0)
        return rc;
    pool = ag_malloc((cap + hb + 1 + 3 * (mt + hb + L + 3)) * sizeof(*pool));
    if (!pool) {
        rc = ag__mpc_fail(c->m, AG_E_NOMEM, c->op, "no memory");
        goto out;
    }
    val = pool + cap;
    xs = val + hb + 1;
    ys = xs + mt + hb + L + 3;
    zs = ys + mt + hb + L + 3;
    size_t nb = pl.nb;
    uint8_t *sg = plane_bit(c, &pl, yb->data, c->k - 1);
    for (unsigned b = 0; b < t; b++) {
        uint8_t *bit = plane_bit(c, &pl, yb->data, f + b);
        grp[b].nbits = 1;
        grp[b].pl = pool + used;
        used += 2;
        grp[b].pl[0] = plane_new(&pl);
        plane_not(c, nb, grp[b].pl[0], bit);
        grp[b].pl[1] = bit;
    }
    for (unsigned j = f + t - 1; j + 1 < c->k; j++) {
        val[nval] = plane_bit(c, &pl, yb->data, j);
        plane_xor(c, nb, val[nval], val[nval], sg, true);
        nval++;
    }
    if (nval == 0) { /* no bit above k: always valid */
        val[nval] = plane_new(&pl);
        plane_not(c, nb, val[nval], val[nval]);
        nval++;
    }
    while (rc == 0 && (ngrp > 1 || nval > 1)) {
        size_t cnt = 0;
        unsigned ng = 0;
        for (unsigned i = 0; i < ngrp; i += 2, ng++) {
            if (i + 1 == ngrp) {
                grp[ng] = grp[i];
                continue;
            }
            struct grp A = grp[i], B = grp[i + 1], C = {A.nbits + B.nbits, pool + used};
            used += (size_t)1 << C.nbits;
            for (size_t ub = 0; ub < (size_t)1 << B.nbits; ub++)
                for (size_t ua = 0; ua < (size_t)1 << A.nbits; ua++) {
                    C.pl[ua | ub << A.nbits] = plane_new(&pl);
                    xs[cnt] = A.pl[ua];
                    ys[cnt] = B.pl[ub];
                    zs[cnt++] = C.pl[ua | ub << A.nbits];
                }
            grp[ng] = C;
        }
        ngrp = ng;
        size_t nv = 0;
        for (size_t i = 0; i < nval; i += 2, nv++) {
            if (i + 1 == nval) {
                val[nv] = val[i];
                continue;
            }
            xs[cnt] = val[i];
            ys[cnt] = val[i + 1];
            zs[cnt++] = val[nv] = plane_new(&pl);
        }
        nval = nv;
        assert(used <= cap);
        rc = and_planes(c, nb, cnt, xs, ys, zs);
    }
    if (rc < 0)
        goto out;
    /* the last round: each needed minterm and the saturating ones' OR (they
     * exclude each other, so XOR) with the validity bit; ~valid & ~sign */
    uint8_t *sat = plane_new(&pl), *nval_pl = plane_new(&pl), *nsg = plane_new(&pl);
    for (int k = (int)c->dom - 1; k < 1 << (t - 1); k++)
        ag__bits_xor(nb, sat, sat, grp[0].pl[k]);
    plane_not(c, nb, nval_pl, val[0]);
    plane_not(c, nb, nsg, sg);
    size_t cnt = 0;
    for (unsigned i = 0; i < L; i++) {
        int k = (int)i - (int)f - 1;
        xs[cnt] = grp[0].pl[(size_t)k & (mt - 1)];
        ys[cnt] = val[0];
        zs[cnt++] = plane_new(&pl);
    }
    xs[cnt] = sat;
    ys[cnt] = val[0];
    zs[cnt++] = plane_new(&pl);
    xs[cnt] = nval_pl;
    ys[cnt] = nsg;
    zs[cnt++] = plane_new(&pl);
    rc = and_planes(c, nb, cnt, xs, ys, zs);
    if (rc < 0)
        goto out;
    ag__bits_xor(nb, zs[L], zs[L], zs[L + 1]);
    rc = planes_to_a(c, L + 1, zs, oh);
out:
    ag_free(pool);
    planes_cleanup(&pl);
    return rc;
}

/* Extra fraction bits of the constant log2(e) - 1: 16 where the ring has
 * room (FM128), none in FM64 (see argot/mpc.h). */
static unsigned exp_extra_bits(const struct nl *c)
{
    int g = (int)c->k - 2 * (int)c->fb - 44;
    return g < 0 ? 0 : g > 16 ? 16 : (unsigned)g;
}

/* exp x = 2^y, y = x log2 e = k + frac: see the file comment. */
static int exp_shared(struct nl *c, const ag_tensor *x, ag_tensor *out)
{
    unsigned f = c->fb, L = c->win, g = exp_extra_bits(c);
    int e[256];
    ag_u128 tab[256];
    ag_tensor cst = {0}, y = {0}, yb = {0}, oh = {0}, kk = {0}, pv = {0};
    struct prod p[1];
    bool small = ldexp(1.1e-7, (int)f + 3) <= 1.0;
    assert(L <= AG_ARRAY_LEN(e));
    for (unsigned i = 0; i < L; i++) {
        e[i] = (int)i - (int)f - 1; /* k */
        tab[i] = (ag_u128)(i128)e[i] << f;
    }
    int rc = vfill(c, fxp(c, 0.44269504088896341, g), &cst);
    if (rc < 0)
        return rc;
    /* y = x + x (log2 e - 1): the smaller constant keeps the product small */
    p[0] = (struct prod){x, &cst, true, {0}};
    rc = products(c, p, 1, f + g);
    if (rc < 0)
        goto out;
    y = take(&p[0].z);
    vacc(c, &y, x, 1);
    rc = nested(c, ag_mpc_a2b(c->m, &y, &yb));
    if (rc == 0)
        rc = exp_onehot(c, &yb, &oh);
    if (rc == 0)
        rc = vtable(c, &oh, L, tab, &kk);
    if (rc < 0)
        goto out;
    /* the fraction, centered: y - k - 1/2 */
    vacc(c, &y, &kk, 0 - (ag_u128)1);
    vconst(c, &y, 0 - fxp(c, 0.5, 0));
    rc = small ? poly(c, &y, EXP2_5, AG_ARRAY_LEN(EXP2_5), &pv)
               : poly(c, &y, EXP2_7, AG_ARRAY_LEN(EXP2_7), &pv);
    if (rc == 0)
        rc = scale_pow2(c, &pv, &oh, L, e, true, out);
    if (rc == 0)
        vacc_at(c, out, &oh, (size_t)L * c->n, pow2(c->dom - 1 + f));
out:
    drop((ag_tensor *[]){&cst, &y, &yb, &oh, &kk, &pv}, 6);
    return rc;
}

/* ---- sigmoid ----------------------------------------------------------------------- */

/* MM1: 1/2 + x/8, the truncation by 3 bits exact for a public x. */
static int sigmoid_mm1(struct nl *c, const ag_tensor *x, ag_tensor *out)
{
    int rc = nested(c, ag_mpc_trunc(c->m, x, 3, out));
    if (rc == 0)
        vconst(c, out, fxp(c, 0.5, 0));
    return rc;
}

/* SEG3: MM1 clamped to [0, 1] outside [-4, 4]: one comparison of 2n
 * elements (4 < x, x < -4, exclusive), then mid + gt (1 - mid) - lt mid in
 * one round of products (no truncation: gt and lt are integers). */
static int sigmoid_seg3(struct nl *c, const ag_tensor *x, ag_tensor *out)
{
    size_t bytes = c->n * ag_field_bytes(c->f);
    ag_tensor mid = {0}, a = {0}, b = {0}, cmp = {0}, gt = {0}, lt = {0}, om = {0};
    struct prod p[2];
    int rc = sigmoid_mm1(c, x, &mid);
    if (rc == 0)
        rc = vnew_len(c, AG_VIS_ASHARE, 2 * c->n, &a);
    if (rc == 0)
        rc = vnew_len(c, AG_VIS_ASHARE, 2 * c->n, &b);
    if (rc < 0)
        goto out;
    /* a = [4 | x], b = [x | -4]: the constants at rank 0 */
    for (size_t i = 0; i < c->n && c->m->rank == 0; i++) {
        rset(c->f, a.data, i, fxp(c, 4.0, 0));
        rset(c->f, b.data, c->n + i, fxp(c, -4.0, 0));
    }
    memcpy((uint8_t *)a.data + bytes, x->data, bytes);
    memcpy(b.data, x->data, bytes);
    rc = nested(c, ag_mpc_less(c->m, &a, &b, &cmp));
    if (rc == 0)
        rc = vnew_len(c, AG_VIS_ASHARE, c->n, &gt);
    if (rc == 0)
        rc = vnew_len(c, AG_VIS_ASHARE, c->n, &lt);
    if (rc == 0)
        rc = affine(c, &mid, 0 - (ag_u128)1, fxp(c, 1.0, 0), &om);
    if (rc < 0)
        goto out;
    memcpy(gt.data, cmp.data, bytes);
    memcpy(lt.data, (uint8_t *)cmp.data + bytes, bytes);
    p[0] = (struct prod){&gt, &om, false, {0}};
    p[1] = (struct prod){&lt, &mid, false, {0}};
    rc = products(c, p, 2, 0);
    if (rc == 0) {
        *out = take(&mid);
        vacc(c, out, &p[0].z, 1);
        vacc(c, out, &p[1].z, 0 - (ag_u128)1);
        prods_cleanup(p, 2);
    }
out:
    drop((ag_tensor *[]){&mid, &a, &b, &cmp, &gt, &lt, &om}, 7);
    return rc;
}

/* REAL: 1 / (1 + exp(-x)). exp saturates at 2^(D-1), so the divisor stays
 * in the reciprocal's domain. */
static int sigmoid_real(struct nl *c, const ag_tensor *x, ag_tensor *out)
{
    ag_tensor nx = {0}, ex = {0};
    int rc = nested(c, ag_mpc_neg(c->m, x, &nx));
    if (rc == 0)
        rc = exp_shared(c, &nx, &ex);
    if (rc == 0) {
        vconst(c, &ex, fxp(c, 1.0, 0));
        rc = gs_divide(c, NULL, &ex, out);
    }
    ag_tensor_cleanup(&nx);
    ag_tensor_cleanup(&ex);
    return rc;
}

/* ---- public operands: in the clear -------------------------------------------------- */

enum fn { F_RECIPROCAL, F_DIV, F_EXP, F_LOG, F_SQRT, F_RSQRT, F_SIGMOID };

static double decode1(const struct nl *c, const ag_tensor *t, size_t i)
{
    ag_u128 v = rget(c->f, t->data, i);
    double d = c->f == AG_FM64 ? (double)(int64_t)(uint64_t)v : (double)(i128)v;
    return ldexp(d, -(int)c->fb);
}

static double clear_fn(enum fn k, int mode, double x, double y)
{
    switch (k) {
    case F_RECIPROCAL: return 1.0 / x;
    case F_DIV: return x / y;
    case F_EXP: return exp(x);
    case F_LOG: return log(x);
    case F_SQRT: return sqrt(x);
    case F_RSQRT: return 1.0 / sqrt(x);
    case F_SIGMOID:
        if (mode == AG_SIGMOID_MM1)
            return 0.5 + 0.125 * x;
        if (mode == AG_SIGMOID_SEG3)
            return x > 4 ? 1.0 : x < -4 ? 0.0 : 0.5 + 0.125 * x;
        return 1.0 / (1.0 + exp(-x));
    }
    return NAN;
}

/* Every element with the C library, rounded to the nearest encoding. A
 * result that is not finite or not encodable is AG_E_MPC_RANGE. */
static int clear_eval(struct nl *c, enum fn k, int mode, const ag_tensor *x, const ag_tensor *y,
                      ag_tensor *out)
{
    int rc = vnew(c, out);
    double max = ag_mpc_fxp_max(c->m);
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        double xv = decode1(c, x, i), v = clear_fn(k, mode, xv, y ? decode1(c, y, i) : 0);
        if (!(fabs(v) < max)) {
            ag_tensor_cleanup(out);
            return ag__mpc_fail(c->m, AG_E_MPC_RANGE, c->op, "element %zu: the result %g (of "
                                "%g) is outside the %s fixed-point range", i, v, xv,
                                ag_field_name(c->f));
        }
        rset(c->f, out->data, i, fxp(c, v, 0));
    }
    return rc;
}

/* ---- entry points ------------------------------------------------------------------- */

/* Checks the operands (as every kernel does), fills c, and empties out. */
static int nl_start(ag_mpc *m, const char *op, struct nl *c, ag_tensor *out,
                    const ag_tensor *const *in, size_t n_in)
{
    int rc = ag__mpc_begin(m, op, ARITH, out, in, n_in);
    if (rc < 0)
        return rc;
    c->m = m;
    c->op = op;
    c->f = m->field;
    c->k = (unsigned)ag_field_bytes(m->field) * 8;
    c->fb = m->fxp_bits;
    c->dom = dom_bits(m->field, m->fxp_bits);
    c->win = c->dom + c->fb;
    c->n = in[0]->numel;
    return 0;
}

/* The element-wise functions: a flat view of each operand, then the clear
 * or the shared algorithm, and out takes x's shape. */
static int elementwise(ag_mpc *m, const char *op, enum fn k, int mode, const ag_tensor *x,
                       const ag_tensor *y, ag_tensor *out)
{
    const ag_tensor *in[2] = {x, y};
    struct nl c;
    int rc = nl_start(m, op, &c, out, in, y ? 2 : 1);
    if (rc < 0)
        return rc;
    bool shared = x->vis == AG_VIS_ASHARE || (y && y->vis == AG_VIS_ASHARE);
    if (c.n == 0) {
        rc = ag_tensor_init(out, c.f, shared ? AG_VIS_ASHARE : AG_VIS_PUBLIC, x->ndim, x->shape);
        return rc < 0 ? ag__mpc_fail(m, rc, op, "%s", ag_strerror(rc)) : 0;
    }
    ag_tensor xv = *x, yv = y ? *y : *x, res = {0};
    xv.ndim = yv.ndim = 1;
    xv.shape[0] = yv.shape[0] = (int64_t)c.n;
    if (!shared) {
        rc = clear_eval(&c, k, mode, &xv, y ? &yv : NULL, &res);
    } else {
        switch (k) {
        case F_RECIPROCAL: rc = gs_divide(&c, NULL, &xv, &res); break;
        case F_DIV: rc = gs_divide(&c, &xv, &yv, &res); break;
        case F_EXP: rc = exp_shared(&c, &xv, &res); break;
        case F_LOG: rc = log_shared(&c, &xv, &res); break;
        case F_SQRT: rc = sqrt_shared(&c, &xv, false, &res); break;
        case F_RSQRT: rc = sqrt_shared(&c, &xv, true, &res); break;
        case F_SIGMOID:
            rc = mode == AG_SIGMOID_MM1    ? sigmoid_mm1(&c, &xv, &res)
                 : mode == AG_SIGMOID_SEG3 ? sigmoid_seg3(&c, &xv, &res)
                                           : sigmoid_real(&c, &xv, &res);
            break;
        }
    }
    if (rc == 0) {
        assert(res.vis == (shared ? AG_VIS_ASHARE : AG_VIS_PUBLIC));
        *out = take(&res);
        ag_tensor_reshape(out, x->ndim, x->shape);
    }
    ag_tensor_cleanup(&res);
    return rc;
}

int ag_mpc_reciprocal(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    return elementwise(m, "reciprocal", F_RECIPROCAL, 0, x, NULL, out);
}

int ag_mpc_div(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out)
{
    return elementwise(m, "div", F_DIV, 0, x, y, out);
}

int ag_mpc_exp(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    return elementwise(m, "exp", F_EXP, 0, x, NULL, out);
}

int ag_mpc_log(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    return elementwise(m, "log", F_LOG, 0, x, NULL, out);
}

int ag_mpc_sqrt(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    return elementwise(m, "sqrt", F_SQRT, 0, x, NULL, out);
}

int ag_mpc_rsqrt(ag_mpc *m, const ag_tensor *x, ag_tensor *out)
{
    return elementwise(m, "rsqrt", F_RSQRT, 0, x, NULL, out);
}

int ag_mpc_sigmoid(ag_mpc *m, const ag_tensor *x, ag_sigmoid_mode mode, ag_tensor *out)
{
    if ((unsigned)mode > AG_SIGMOID_REAL) {
        if (out != x)
            memset(out, 0, sizeof(*out));
        return ag__mpc_fail(m, AG_E_INVAL, "sigmoid", "unknown mode %d", (int)mode);
    }
    return elementwise(m, "sigmoid", F_SIGMOID, (int)mode, x, NULL, out);
}

/* ---- argmax ------------------------------------------------------------------------- */

/* dst (cnt rows of c->n elements) = rows first, first + step, .. of src. */
static int pick_rows(struct nl *c, const ag_tensor *src, size_t first, size_t step, size_t cnt,
                     ag_tensor *dst)
{
    size_t bytes = c->n * ag_field_bytes(c->f);
    int rc = vnew_len(c, src->vis, cnt * c->n, dst);
    for (size_t i = 0; rc == 0 && i < cnt; i++)
        memcpy((uint8_t *)dst->data + i * bytes, (uint8_t *)src->data + (first + i * step) * bytes,
               bytes);
    return rc;
}

/* dst = [a | b] (a and b of the same visibility and length). */
static int concat2(struct nl *c, const ag_tensor *a, const ag_tensor *b, ag_tensor *dst)
{
    size_t ab = a->numel * ag_field_bytes(c->f);
    int rc = vnew_len(c, a->vis, a->numel + b->numel, dst);
    if (rc == 0) {
        memcpy(dst->data, a->data, ab);
        memcpy((uint8_t *)dst->data + ab, b->data, b->numel * ag_field_bytes(c->f));
    }
    return rc;
}

/* One round of the tournament on cnt rows of values and indices (c->n =
 * rows' length * pairs): each pair (2i, 2i+1) keeps row 2i + 1 where its
 * value is strictly greater, row 2i otherwise (ties keep the lower index);
 * an odd last row goes through. vals and idx are replaced. */
static int duel(struct nl *c, size_t row, size_t cnt, ag_tensor *vals, ag_tensor *idx)
{
    size_t pairs = cnt / 2, bytes = row * ag_field_bytes(c->f);
    ag_tensor a = {0}, b = {0}, ai = {0}, bi = {0}, lt = {0}, nv = {0}, ni = {0};
    ag_tensor c2 = {0}, p = {0}, q = {0}, pq = {0};
    size_t n_save = c->n;
    c->n = row;
    int rc = pick_rows(c, vals, 0, 2, pairs, &a);
    if (rc == 0)
        rc = pick_rows(c, vals, 1, 2, pairs, &b);
    if (rc == 0)
        rc = pick_rows(c, idx, 0, 2, pairs, &ai);
    if (rc == 0)
        rc = pick_rows(c, idx, 1, 2, pairs, &bi);
    if (rc == 0)
        rc = nested(c, ag_mpc_less(c->m, &a, &b, &lt));
    if (rc < 0)
        goto out;
    if (ai.vis == vals->vis) {
        /* one select for values and indices together */
        rc = concat2(c, &lt, &lt, &c2);
        if (rc == 0)
            rc = concat2(c, &b, &bi, &p);
        if (rc == 0)
            rc = concat2(c, &a, &ai, &q);
        if (rc == 0)
            rc = nested(c, ag_mpc_select(c->m, &c2, &p, &q, &pq));
        if (rc == 0)
            rc = pick_rows(c, &pq, 0, 1, pairs, &nv);
        if (rc == 0)
            rc = pick_rows(c, &pq, pairs, 1, pairs, &ni);
    } else {
        /* public indices (the first round): their select is local */
        rc = nested(c, ag_mpc_select(c->m, &lt, &b, &a, &nv));
        if (rc == 0)
            rc = nested(c, ag_mpc_select(c->m, &lt, &bi, &ai, &ni));
    }
    if (rc < 0)
        goto out;
    ag_tensor nv2 = {0}, ni2 = {0};
    rc = vnew_len(c, nv.vis, (pairs + cnt % 2) * row, &nv2);
    if (rc == 0)
        rc = vnew_len(c, ni.vis, (pairs + cnt % 2) * row, &ni2);
    if (rc < 0) {
        ag_tensor_cleanup(&nv2);
        goto out;
    }
    memcpy(nv2.data, nv.data, pairs * bytes);
    memcpy(ni2.data, ni.data, pairs * bytes);
    if (cnt % 2) {
        /* the odd row joins as it is (a public index row becomes a share
         * held by rank 0 when the others are shared) */
        memcpy((uint8_t *)nv2.data + pairs * bytes, (uint8_t *)vals->data + (cnt - 1) * bytes,
               bytes);
        memcpy((uint8_t *)ni2.data + pairs * bytes, (uint8_t *)idx->data + (cnt - 1) * bytes,
               bytes);
        if (idx->vis == AG_VIS_PUBLIC && ni2.vis == AG_VIS_ASHARE && c->m->rank != 0)
            memset((uint8_t *)ni2.data + pairs * bytes, 0, bytes);
    }
    ag_tensor_cleanup(vals);
    ag_tensor_cleanup(idx);
    *vals = nv2;
    *idx = ni2;
out:
    c->n = n_save;
    drop((ag_tensor *[]){&a, &b, &ai, &bi, &lt, &nv, &ni, &c2, &p, &q, &pq}, 11);
    return rc;
}

int ag_mpc_argmax(ag_mpc *m, const ag_tensor *x, int axis, ag_tensor *out)
{
    struct nl c;
    int rc = nl_start(m, "argmax", &c, out, &x, 1);
    if (rc < 0)
        return rc;
    int64_t shape[AG_TENSOR_MAX_DIMS];
    int ndim = 0, ax = -1;
    size_t outer = 1, len = x->numel, inner = 1;
    char s[64];
    if (axis != AG_AXIS_ALL) {
        ax = axis < 0 ? axis + x->ndim : axis;
        if (ax < 0 || ax >= x->ndim)
            return ag__mpc_fail(m, AG_E_MPC_SHAPE, "argmax", "axis %d out of range for shape %s",
                                axis, ag_tensor_shape_str(x, s, sizeof(s)));
        for (int k = 0; k < x->ndim; k++) {
            if (k != ax)
                shape[ndim++] = x->shape[k];
            if (k < ax)
                outer *= (size_t)x->shape[k];
            if (k > ax)
                inner *= (size_t)x->shape[k];
        }
        len = (size_t)x->shape[ax];
    }
    if (len == 0 && ax < 0)
        return ag__mpc_fail(m, AG_E_MPC_SHAPE, "argmax", "empty axis: shape %s has no element",
                            ag_tensor_shape_str(x, s, sizeof(s)));
    if (len == 0)
        return ag__mpc_fail(m, AG_E_MPC_SHAPE, "argmax", "empty axis: axis %d of shape %s has "
                            "no element", axis, ag_tensor_shape_str(x, s, sizeof(s)));
    /* rows: candidate k of every output element, as [outer][inner] */
    c.n = outer * inner;
    size_t eb = ag_field_bytes(c.f);
    ag_tensor vals = {0}, idx = {0};
    rc = vnew_len(&c, x->vis, len * c.n, &vals);
    if (rc == 0)
        rc = vnew_len(&c, AG_VIS_PUBLIC, len * c.n, &idx);
    if (rc < 0)
        goto out;
    for (size_t o = 0; o < outer; o++)
        for (size_t k = 0; k < len; k++) {
            memcpy((uint8_t *)vals.data + (k * c.n + o * inner) * eb,
                   (uint8_t *)x->data + (o * len + k) * inner * eb, inner * eb);
            for (size_t j = 0; j < inner; j++)
                rset(c.f, idx.data, k * c.n + o * inner + j, k);
        }
    for (size_t cnt = len; cnt > 1 && rc == 0 && c.n > 0; cnt = cnt / 2 + cnt % 2)
        rc = duel(&c, c.n, cnt, &vals, &idx);
    if (rc < 0)
        goto out;
    if (x->vis == AG_VIS_ASHARE)
        promote(&c, &idx); /* an axis of length 1 has had no round */
    rc = ag_tensor_init(out, c.f, idx.vis, ndim, shape);
    if (rc < 0) {
        rc = ag__mpc_fail(m, rc, "argmax", "%s", ag_strerror(rc));
        goto out;
    }
    memcpy(out->data, idx.data, c.n * eb);
out:
    ag_tensor_cleanup(&vals);
    ag_tensor_cleanup(&idx);
    return rc;
}
