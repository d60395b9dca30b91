/*
 * ristretto255 batches eight at a time with AVX-512 IFMA (52-bit multiply-
 * accumulate), for CPUs that have it (psi_curve.c dispatches at run time
 * and falls back to libsodium elsewhere). The results are the same bytes as
 * libsodium's (tests/unit/apps/psi_test.c compares them on random and
 * invalid inputs): ristretto encodings are canonical, so two parties may
 * use different backends.
 *
 * Field elements mod p = 2^255 - 19 are five limbs in radix 2^51, one lane
 * per element, eight lanes per vector (struct fe8: limb k of eight
 * elements in l[k]). Invariants:
 *   1. every fe8 handed to fe8_mul has limbs < 2^52 (IFMA reads only the
 *      low 52 bits of each operand): every operation ends with one parallel
 *      carry round that brings limbs of values below 2^62 under 2^52;
 *   2. a product's 25 partial products are accumulated as low halves (bits
 *      0-51) at weight i + j and high halves (bits 52-103) at weight
 *      i + j + 1, doubled, because radix 2^51 is one bit short of 52;
 *      limbs at weight >= 5 fold back times 19 (2^255 = 19 mod p). Sums
 *      stay below 2^61 (five terms below 2^52 each, doubled, times 20);
 *   3. comparisons and signs use the canonical form (fe8_freeze, as
 *      libsodium's fe25519_reduce).
 * The formulas are libsodium's (ed25519_ref10.c: ge25519_p2_dbl,
 * ge25519_add, ge25519_scalarmult's signed 4-bit window, the ristretto255
 * encoding, decoding, Elligator map and sqrt_ratio_m1), lane by lane. The
 * scalar is the same in every lane and secret: the window's table entry is
 * picked by masks over all eight entries, never by an index.
 */
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

#define IFMA __attribute__((target("avx512f,avx512ifma")))
/* Field operations are inlined into the group operations, which are not
 * inlined further (code size); under a sanitizer nothing is, or the
 * compiler takes minutes over this file. */
#if defined(__SANITIZE_ADDRESS__)
#define FE_INLINE __attribute__((noinline))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FE_INLINE __attribute__((noinline))
#endif
#endif
#ifndef FE_INLINE
#define FE_INLINE inline
#endif
#define NOINLINE __attribute__((noinline))
#define MASK51 ((uint64_t)0x7ffffffffffff)

typedef __m512i v8;

typedef struct fe8 {
    v8 l[5];
} fe8;

typedef struct ge8 { /* extended coordinates: x = X/Z, y = Y/Z, xy = T/Z */
    fe8 X, Y, Z, T;
} ge8;

typedef struct ge8c { /* cached: Y+X, Y-X, Z, 2dT */
    fe8 YpX, YmX, Z, T2d;
} ge8c;

static const uint64_t K_D[5] = {0x34dca135978a3u, 0x1a8283b156ebdu, 0x5e7a26001c029u,
                                0x739c663a03cbbu, 0x52036cee2b6ffu};
static const uint64_t K_D2[5] = {0x69b9426b2f159u, 0x35050762add7au, 0x3cf44c0038052u,
                                 0x6738cc7407977u, 0x2406d9dc56dffu};
static const uint64_t K_SQRTM1[5] = {0x61b274a0ea0b0u, 0x0d5a5fc8f189du, 0x7ef5e9cbd0c60u,
                                     0x78595a6804c9eu, 0x2b8324804fc1du};
static const uint64_t K_SQRTADM1[5] = {0x7f6a0497b2e1bu, 0x1836f0a97afd2u, 0x7d747f6be7638u,
                                       0x456079e7e6498u, 0x376931bf2b834u};
static const uint64_t K_INVSQRTAMD[5] = {0x0fdaa805d40eau, 0x2eb482e57d339u, 0x007610274bc58u,
                                         0x6510b613dc8ffu, 0x786c8905cfaffu};
static const uint64_t K_ONEMSQD[5] = {0x409c1945fc176u, 0x719abc6a1fc4fu, 0x1c37f90b20684u,
                                      0x06bccca55eedfu, 0x029072a8b2b3eu};
static const uint64_t K_SQDMONE[5] = {0x55aaa44ed4d20u, 0x59603c3332635u, 0x26d3baf4a7928u,
                                      0x120a66e6997a9u, 0x5968b37af66c2u};

/* ---- field ---------------------------------------------------------------------- */

static inline IFMA v8 bc(uint64_t x)
{
    return _mm512_set1_epi64((long long)x);
}

static inline IFMA v8 add64(v8 a, v8 b)
{
    return _mm512_add_epi64(a, b);
}

static inline IFMA v8 mul19(v8 x)
{
    return add64(add64(x, _mm512_slli_epi64(x, 1)), _mm512_slli_epi64(x, 4));
}

static inline IFMA void fe8_const(fe8 *r, const uint64_t k[5])
{
    for (int i = 0; i < 5; i++)
        r->l[i] = bc(k[i]);
}

static inline IFMA void fe8_small(fe8 *r, uint64_t v)
{
    r->l[0] = bc(v);
    for (int i = 1; i < 5; i++)
        r->l[i] = _mm512_setzero_si512();
}

/* One parallel carry round over values below 2^62 (invariant 1). */
static FE_INLINE IFMA void fe8_carry(fe8 *r, const v8 z[5])
{
    const v8 m = bc(MASK51);
    v8 c0 = _mm512_srli_epi64(z[0], 51), c1 = _mm512_srli_epi64(z[1], 51),
       c2 = _mm512_srli_epi64(z[2], 51), c3 = _mm512_srli_epi64(z[3], 51),
       c4 = _mm512_srli_epi64(z[4], 51);
    r->l[0] = add64(_mm512_and_si512(z[0], m), mul19(c4));
    r->l[1] = add64(_mm512_and_si512(z[1], m), c0);
    r->l[2] = add64(_mm512_and_si512(z[2], m), c1);
    r->l[3] = add64(_mm512_and_si512(z[3], m), c2);
    r->l[4] = add64(_mm512_and_si512(z[4], m), c3);
}

static FE_INLINE IFMA void fe8_mul(fe8 *r, const fe8 *a, const fe8 *b)
{
    v8 lo[9], hi[9];
    for (int k = 0; k < 9; k++)
        lo[k] = hi[k] = _mm512_setzero_si512();
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            lo[i + j] = _mm512_madd52lo_epu64(lo[i + j], a->l[i], b->l[j]);
            hi[i + j] = _mm512_madd52hi_epu64(hi[i + j], a->l[i], b->l[j]);
        }
    v8 z[10];
    z[0] = lo[0];
    for (int k = 1; k < 9; k++)
        z[k] = add64(lo[k], _mm512_slli_epi64(hi[k - 1], 1));
    z[9] = _mm512_slli_epi64(hi[8], 1);
    v8 t[5];
    for (int k = 0; k < 5; k++)
        t[k] = add64(z[k], mul19(z[k + 5]));
    fe8_carry(r, t);
}

/* a^2: the cross products once, doubled. */
static FE_INLINE IFMA void fe8_sq(fe8 *r, const fe8 *a)
{
    v8 lo[9], hi[9], slo[9], shi[9];
    for (int k = 0; k < 9; k++)
        lo[k] = hi[k] = slo[k] = shi[k] = _mm512_setzero_si512();
    for (int i = 0; i < 5; i++) {
        slo[2 * i] = _mm512_madd52lo_epu64(slo[2 * i], a->l[i], a->l[i]);
        shi[2 * i] = _mm512_madd52hi_epu64(shi[2 * i], a->l[i], a->l[i]);
        for (int j = i + 1; j < 5; j++) {
            lo[i + j] = _mm512_madd52lo_epu64(lo[i + j], a->l[i], a->l[j]);
            hi[i + j] = _mm512_madd52hi_epu64(hi[i + j], a->l[i], a->l[j]);
        }
    }
    v8 z[10];
    for (int k = 0; k < 9; k++) {
        lo[k] = add64(_mm512_slli_epi64(lo[k], 1), slo[k]);
        hi[k] = add64(_mm512_slli_epi64(hi[k], 1), shi[k]);
    }
    z[0] = lo[0];
    for (int k = 1; k < 9; k++)
        z[k] = add64(lo[k], _mm512_slli_epi64(hi[k - 1], 1));
    z[9] = _mm512_slli_epi64(hi[8], 1);
    v8 t[5];
    for (int k = 0; k < 5; k++)
        t[k] = add64(z[k], mul19(z[k + 5]));
    fe8_carry(r, t);
}

static FE_INLINE IFMA void fe8_add(fe8 *r, const fe8 *a, const fe8 *b)
{
    v8 z[5];
    for (int k = 0; k < 5; k++)
        z[k] = add64(a->l[k], b->l[k]);
    fe8_carry(r, z);
}

/* a - b + 4p, so that every limb stays positive. */
static FE_INLINE IFMA void fe8_sub(fe8 *r, const fe8 *a, const fe8 *b)
{
    static const uint64_t four_p[5] = {0x1fffffffffffb4u, 0x1ffffffffffffcu, 0x1ffffffffffffcu,
                                       0x1ffffffffffffcu, 0x1ffffffffffffcu};
    v8 z[5];
    for (int k = 0; k < 5; k++)
        z[k] = _mm512_sub_epi64(add64(a->l[k], bc(four_p[k])), b->l[k]);
    fe8_carry(r, z);
}

static FE_INLINE IFMA void fe8_neg(fe8 *r, const fe8 *a)
{
    fe8 zero;
    fe8_small(&zero, 0);
    fe8_sub(r, &zero, a);
}

/* The canonical representative (libsodium's fe25519_reduce). */
static NOINLINE IFMA void fe8_freeze(fe8 *r, const fe8 *a)
{
    const v8 m = bc(MASK51);
    v8 t0 = a->l[0], t1 = a->l[1], t2 = a->l[2], t3 = a->l[3], t4 = a->l[4];
#define CHAIN()                                                   \
    t1 = add64(t1, _mm512_srli_epi64(t0, 51));                    \
    t0 = _mm512_and_si512(t0, m);                                 \
    t2 = add64(t2, _mm512_srli_epi64(t1, 51));                    \
    t1 = _mm512_and_si512(t1, m);                                 \
    t3 = add64(t3, _mm512_srli_epi64(t2, 51));                    \
    t2 = _mm512_and_si512(t2, m);                                 \
    t4 = add64(t4, _mm512_srli_epi64(t3, 51));                    \
    t3 = _mm512_and_si512(t3, m);                                 \
    t0 = add64(t0, mul19(_mm512_srli_epi64(t4, 51)));             \
    t4 = _mm512_and_si512(t4, m)
    CHAIN();
    CHAIN();
    t0 = add64(t0, bc(19));
    CHAIN();
#undef CHAIN
    t0 = add64(t0, bc(0x8000000000000u - 19));
    t1 = add64(t1, bc(0x8000000000000u - 1));
    t2 = add64(t2, bc(0x8000000000000u - 1));
    t3 = add64(t3, bc(0x8000000000000u - 1));
    t4 = add64(t4, bc(0x8000000000000u - 1));
    t1 = add64(t1, _mm512_srli_epi64(t0, 51));
    t0 = _mm512_and_si512(t0, m);
    t2 = add64(t2, _mm512_srli_epi64(t1, 51));
    t1 = _mm512_and_si512(t1, m);
    t3 = add64(t3, _mm512_srli_epi64(t2, 51));
    t2 = _mm512_and_si512(t2, m);
    t4 = add64(t4, _mm512_srli_epi64(t3, 51));
    t3 = _mm512_and_si512(t3, m);
    t4 = _mm512_and_si512(t4, m);
    r->l[0] = t0;
    r->l[1] = t1;
    r->l[2] = t2;
    r->l[3] = t3;
    r->l[4] = t4;
}

static NOINLINE IFMA __mmask8 fe8_is_negative(const fe8 *a)
{
    fe8 f;
    fe8_freeze(&f, a);
    return _mm512_test_epi64_mask(f.l[0], bc(1));
}

static NOINLINE IFMA __mmask8 fe8_is_zero(const fe8 *a)
{
    fe8 f;
    fe8_freeze(&f, a);
    v8 o = _mm512_or_si512(_mm512_or_si512(f.l[0], f.l[1]),
                           _mm512_or_si512(_mm512_or_si512(f.l[2], f.l[3]), f.l[4]));
    return _mm512_cmpeq_epi64_mask(o, _mm512_setzero_si512());
}

/* r = b where m is set, else a. */
static FE_INLINE IFMA void fe8_select(fe8 *r, __mmask8 m, const fe8 *a, const fe8 *b)
{
    for (int k = 0; k < 5; k++)
        r->l[k] = _mm512_mask_blend_epi64(m, a->l[k], b->l[k]);
}

static FE_INLINE IFMA void fe8_cneg(fe8 *r, const fe8 *a, __mmask8 m)
{
    fe8 n;
    fe8_neg(&n, a);
    fe8_select(r, m, a, &n);
}

static FE_INLINE IFMA void fe8_abs(fe8 *r, const fe8 *a)
{
    fe8_cneg(r, a, fe8_is_negative(a));
}

static FE_INLINE IFMA void fe8_sqn(fe8 *r, const fe8 *a, int n)
{
    fe8_sq(r, a);
    for (int i = 1; i < n; i++)
        fe8_sq(r, r);
}

/* z^((p-5)/8) = z^(2^252-3) (ref10's chain). */
static IFMA void fe8_pow22523(fe8 *out, const fe8 *z)
{
    fe8 t0, t1, t2;
    fe8_sq(&t0, z);
    fe8_sqn(&t1, &t0, 2);
    fe8_mul(&t1, z, &t1);
    fe8_mul(&t0, &t0, &t1);
    fe8_sq(&t0, &t0);
    fe8_mul(&t0, &t1, &t0);
    fe8_sqn(&t1, &t0, 5);
    fe8_mul(&t0, &t1, &t0);
    fe8_sqn(&t1, &t0, 10);
    fe8_mul(&t1, &t1, &t0);
    fe8_sqn(&t2, &t1, 20);
    fe8_mul(&t1, &t2, &t1);
    fe8_sqn(&t1, &t1, 10);
    fe8_mul(&t0, &t1, &t0);
    fe8_sqn(&t1, &t0, 50);
    fe8_mul(&t1, &t1, &t0);
    fe8_sqn(&t2, &t1, 100);
    fe8_mul(&t1, &t2, &t1);
    fe8_sqn(&t1, &t1, 50);
    fe8_mul(&t0, &t1, &t0);
    fe8_sqn(&t0, &t0, 2);
    fe8_mul(out, &t0, z);
}

/* x = sqrt(u/v) if it exists (nonnegative); returns the lanes where u/v
 * was a square. */
static IFMA __mmask8 fe8_sqrt_ratio_m1(fe8 *x, const fe8 *u, const fe8 *v)
{
    fe8 v3, vxx, chk, sqrtm1, x_sqrtm1, t;
    fe8_const(&sqrtm1, K_SQRTM1);
    fe8_sq(&v3, v);
    fe8_mul(&v3, &v3, v);
    fe8_sq(x, &v3);
    fe8_mul(x, x, u);
    fe8_mul(x, x, v);
    fe8_pow22523(x, x);
    fe8_mul(x, x, &v3);
    fe8_mul(x, x, u);
    fe8_sq(&vxx, x);
    fe8_mul(&vxx, &vxx, v);
    fe8_sub(&chk, &vxx, u);
    __mmask8 m_root = fe8_is_zero(&chk);
    fe8_add(&chk, &vxx, u);
    __mmask8 p_root = fe8_is_zero(&chk);
    fe8_mul(&t, u, &sqrtm1);
    fe8_add(&chk, &vxx, &t);
    __mmask8 f_root = fe8_is_zero(&chk);
    fe8_mul(&x_sqrtm1, x, &sqrtm1);
    fe8_select(x, p_root | f_root, x, &x_sqrtm1);
    fe8_abs(x, x);
    return m_root | p_root;
}

/* ---- group --------------------------------------------------------------------------- */

static NOINLINE IFMA void ge8_to_cached(ge8c *c, const ge8 *p)
{
    fe8 d2;
    fe8_const(&d2, K_D2);
    fe8_add(&c->YpX, &p->Y, &p->X);
    fe8_sub(&c->YmX, &p->Y, &p->X);
    c->Z = p->Z;
    fe8_mul(&c->T2d, &p->T, &d2);
}

/* r = 2p; T only when with_t (the next operation is an addition). */
static NOINLINE IFMA void ge8_dbl(ge8 *r, const ge8 *p, bool with_t)
{
    fe8 xx, yy, zz2, s, h, g, e, f;
    fe8_sq(&xx, &p->X);
    fe8_sq(&yy, &p->Y);
    fe8_sq(&zz2, &p->Z);
    fe8_add(&zz2, &zz2, &zz2);
    fe8_add(&s, &p->X, &p->Y);
    fe8_sq(&s, &s);
    fe8_add(&h, &yy, &xx);
    fe8_sub(&g, &yy, &xx);
    fe8_sub(&e, &s, &h);
    fe8_sub(&f, &zz2, &g);
    fe8_mul(&r->X, &e, &f);
    fe8_mul(&r->Y, &h, &g);
    fe8_mul(&r->Z, &g, &f);
    if (with_t)
        fe8_mul(&r->T, &e, &h);
}

/* r = p + q. */
static NOINLINE IFMA void ge8_add(ge8 *r, const ge8 *p, const ge8c *q)
{
    fe8 a, b, c, zz, d, e, f, g, h;
    fe8_add(&a, &p->Y, &p->X);
    fe8_sub(&b, &p->Y, &p->X);
    fe8_mul(&a, &a, &q->YpX);
    fe8_mul(&b, &b, &q->YmX);
    fe8_mul(&c, &q->T2d, &p->T);
    fe8_mul(&zz, &p->Z, &q->Z);
    fe8_add(&d, &zz, &zz);
    fe8_sub(&e, &a, &b);
    fe8_add(&h, &a, &b);
    fe8_add(&g, &d, &c);
    fe8_sub(&f, &d, &c);
    fe8_mul(&r->X, &e, &f);
    fe8_mul(&r->Y, &h, &g);
    fe8_mul(&r->Z, &g, &f);
    fe8_mul(&r->T, &e, &h);
}

/* The scalar's signed 4-bit digits, e[i] in [-8, 8] (libsodium's
 * recoding; the scalar is reduced, so its top byte is below 128). */
static void recode(signed char e[64], const uint8_t s[32])
{
    for (int i = 0; i < 32; i++) {
        e[2 * i] = (signed char)(s[i] & 15);
        e[2 * i + 1] = (signed char)((s[i] >> 4) & 15);
    }
    signed char carry = 0;
    for (int i = 0; i < 63; i++) {
        e[i] = (signed char)(e[i] + carry);
        carry = (signed char)((e[i] + 8) >> 4);
        e[i] = (signed char)(e[i] - carry * 16);
    }
    e[63] = (signed char)(e[63] + carry);
}

/* The table entry for digit b (|b| <= 8), by masks over every entry. */
static NOINLINE IFMA void select_cached(ge8c *t, const ge8c pi[8], signed char b)
{
    unsigned neg = (unsigned)((unsigned char)b >> 7);
    unsigned babs = (unsigned)(b - (signed char)(((-(int)neg) & b) * 2));
    fe8_small(&t->YpX, 1);
    fe8_small(&t->YmX, 1);
    fe8_small(&t->Z, 1);
    fe8_small(&t->T2d, 0);
    for (unsigned j = 1; j <= 8; j++) {
        unsigned eq = ((babs ^ j) - 1u) >> 31; /* 1 if babs == j */
        __mmask8 m = (__mmask8)(0u - eq);
        fe8_select(&t->YpX, m, &t->YpX, &pi[j - 1].YpX);
        fe8_select(&t->YmX, m, &t->YmX, &pi[j - 1].YmX);
        fe8_select(&t->Z, m, &t->Z, &pi[j - 1].Z);
        fe8_select(&t->T2d, m, &t->T2d, &pi[j - 1].T2d);
    }
    __mmask8 nm = (__mmask8)(0u - neg);
    fe8 ypx = t->YpX, ntd;
    fe8_select(&t->YpX, nm, &t->YpX, &t->YmX);
    fe8_select(&t->YmX, nm, &t->YmX, &ypx);
    fe8_neg(&ntd, &t->T2d);
    fe8_select(&t->T2d, nm, &t->T2d, &ntd);
}

static IFMA void ge8_scalarmult(ge8 *r, const ge8 *p, const signed char e[64])
{
    ge8c pi[8];
    ge8 q, t2;
    ge8_to_cached(&pi[0], p);
    ge8_dbl(&q, p, true);
    ge8_to_cached(&pi[1], &q);
    for (int i = 2; i < 8; i++) {
        ge8_add(&t2, p, &pi[i - 1]);
        ge8_to_cached(&pi[i], &t2);
    }
    ge8c t;
    /* r = identity + e[63] P */
    fe8_small(&q.X, 0);
    fe8_small(&q.Y, 1);
    fe8_small(&q.Z, 1);
    fe8_small(&q.T, 0);
    select_cached(&t, pi, e[63]);
    ge8_add(r, &q, &t);
    for (int i = 62; i >= 0; i--) {
        ge8_dbl(&q, r, false);
        ge8_dbl(&q, &q, false);
        ge8_dbl(&q, &q, false);
        ge8_dbl(&q, &q, true);
        select_cached(&t, pi, e[i]);
        ge8_add(r, &q, &t);
    }
}

/* ---- ristretto255 ------------------------------------------------------------------ */

static IFMA void ristretto8_encode(fe8 *s, const ge8 *h)
{
    fe8 u1, zmy, u2, u1u2u2, one, inv_sqrt, den1, den2, z_inv, ix, iy, eden, tz, x_, y_,
        den_inv, xz, k;
    fe8_add(&u1, &h->Z, &h->Y);
    fe8_sub(&zmy, &h->Z, &h->Y);
    fe8_mul(&u1, &u1, &zmy);
    fe8_mul(&u2, &h->X, &h->Y);
    fe8_sq(&u1u2u2, &u2);
    fe8_mul(&u1u2u2, &u1, &u1u2u2);
    fe8_small(&one, 1);
    (void)fe8_sqrt_ratio_m1(&inv_sqrt, &one, &u1u2u2);
    fe8_mul(&den1, &inv_sqrt, &u1);
    fe8_mul(&den2, &inv_sqrt, &u2);
    fe8_mul(&z_inv, &den1, &den2);
    fe8_mul(&z_inv, &z_inv, &h->T);
    fe8_const(&k, K_SQRTM1);
    fe8_mul(&ix, &h->X, &k);
    fe8_mul(&iy, &h->Y, &k);
    fe8_const(&k, K_INVSQRTAMD);
    fe8_mul(&eden, &den1, &k);
    fe8_mul(&tz, &h->T, &z_inv);
    __mmask8 rotate = fe8_is_negative(&tz);
    fe8_select(&x_, rotate, &h->X, &iy);
    fe8_select(&y_, rotate, &h->Y, &ix);
    fe8_select(&den_inv, rotate, &den2, &eden);
    fe8_mul(&xz, &x_, &z_inv);
    fe8_cneg(&y_, &y_, fe8_is_negative(&xz));
    fe8_sub(s, &h->Z, &y_);
    fe8_mul(s, &den_inv, s);
    fe8_abs(s, s);
}

/* Decodes s (canonical bytes already checked); returns the lanes that
 * decoded to a point. */
static IFMA __mmask8 ristretto8_decode(ge8 *h, const fe8 *s)
{
    fe8 ss, u1, u1u1, u2, u2u2, v, vu2u2, one, inv_sqrt, k;
    fe8_sq(&ss, s);
    fe8_small(&one, 1);
    fe8_sub(&u1, &one, &ss);
    fe8_sq(&u1u1, &u1);
    fe8_add(&u2, &one, &ss);
    fe8_sq(&u2u2, &u2);
    fe8_const(&k, K_D);
    fe8_mul(&v, &k, &u1u1);
    fe8_neg(&v, &v);
    fe8_sub(&v, &v, &u2u2);
    fe8_mul(&vu2u2, &v, &u2u2);
    __mmask8 was_square = fe8_sqrt_ratio_m1(&inv_sqrt, &one, &vu2u2);
    fe8_mul(&h->X, &inv_sqrt, &u2);
    fe8_mul(&h->Y, &inv_sqrt, &h->X);
    fe8_mul(&h->Y, &h->Y, &v);
    fe8_mul(&h->X, &h->X, s);
    fe8_add(&h->X, &h->X, &h->X);
    fe8_abs(&h->X, &h->X);
    fe8_mul(&h->Y, &u1, &h->Y);
    h->Z = one;
    fe8_mul(&h->T, &h->X, &h->Y);
    return (__mmask8)(was_square & ~fe8_is_negative(&h->T) & ~fe8_is_zero(&h->Y));
}

static IFMA void elligator8(ge8 *p, const fe8 *t)
{
    fe8 one, r, u, c, rpd, v, s, s_prime, n, w0, w1, w2, w3, ss, k;
    fe8_small(&one, 1);
    fe8_sq(&r, t);
    fe8_const(&k, K_SQRTM1);
    fe8_mul(&r, &k, &r);
    fe8_add(&u, &r, &one);
    fe8_const(&k, K_ONEMSQD);
    fe8_mul(&u, &u, &k);
    fe8_neg(&c, &one);
    fe8_const(&k, K_D);
    fe8_add(&rpd, &r, &k);
    fe8_mul(&v, &r, &k);
    fe8_sub(&v, &c, &v);
    fe8_mul(&v, &v, &rpd);
    __mmask8 wasnt_square = (__mmask8)~fe8_sqrt_ratio_m1(&s, &u, &v);
    fe8_mul(&s_prime, &s, t);
    fe8_abs(&s_prime, &s_prime);
    fe8_neg(&s_prime, &s_prime);
    fe8_select(&s, wasnt_square, &s, &s_prime);
    fe8_select(&c, wasnt_square, &c, &r);
    fe8_sub(&n, &r, &one);
    fe8_mul(&n, &n, &c);
    fe8_const(&k, K_SQDMONE);
    fe8_mul(&n, &n, &k);
    fe8_sub(&n, &n, &v);
    fe8_add(&w0, &s, &s);
    fe8_mul(&w0, &w0, &v);
    fe8_const(&k, K_SQRTADM1);
    fe8_mul(&w1, &n, &k);
    fe8_sq(&ss, &s);
    fe8_sub(&w2, &one, &ss);
    fe8_add(&w3, &one, &ss);
    fe8_mul(&p->X, &w0, &w3);
    fe8_mul(&p->Y, &w2, &w1);
    fe8_mul(&p->Z, &w1, &w3);
    fe8_mul(&p->T, &w0, &w2);
}

/* ---- bytes and lanes ------------------------------------------------------------- */

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v; /* x86-64: little-endian */
}

/* Lane i of r from 32 bytes (the top bit ignored, as fe25519_frombytes). */
static void lanes_from_bytes(uint64_t l[5][8], int lane, const uint8_t *b)
{
    uint64_t w0 = load64(b), w1 = load64(b + 8), w2 = load64(b + 16), w3 = load64(b + 24);
    l[0][lane] = w0 & MASK51;
    l[1][lane] = (w0 >> 51 | w1 << 13) & MASK51;
    l[2][lane] = (w1 >> 38 | w2 << 26) & MASK51;
    l[3][lane] = (w2 >> 25 | w3 << 39) & MASK51;
    l[4][lane] = (w3 >> 12) & MASK51;
}

static inline IFMA void fe8_load(fe8 *r, uint64_t l[5][8])
{
    for (int k = 0; k < 5; k++)
        r->l[k] = _mm512_loadu_si512(l[k]);
}

/* Freezes r and writes lane i's 32 bytes to out + 32 i, for n lanes. */
static IFMA void fe8_store_bytes(const fe8 *r, uint8_t *out, int n)
{
    fe8 f;
    fe8_freeze(&f, r);
    uint64_t l[5][8];
    for (int k = 0; k < 5; k++)
        _mm512_storeu_si512(l[k], f.l[k]);
    for (int i = 0; i < n; i++) {
        uint64_t w[4] = {l[0][i] | l[1][i] << 51, l[1][i] >> 13 | l[2][i] << 38,
                         l[2][i] >> 26 | l[3][i] << 25, l[3][i] >> 39 | l[4][i] << 12};
        memcpy(out + 32 * i, w, 32);
    }
}

/* libsodium's ristretto255_is_canonical: s < p, top bit clear, even. */
static bool canonical(const uint8_t *s)
{
    unsigned c = (s[31] & 0x7fu) ^ 0x7fu;
    for (int i = 30; i > 0; i--)
        c |= s[i] ^ 0xffu;
    c = (c - 1u) >> 8;
    unsigned d = (0xedu - 1u - (unsigned)s[0]) >> 8;
    unsigned e = (unsigned)s[31] >> 7;
    return (((c & d) | e | s[0]) & 1u) == 0;
}

static bool all_zero(const uint8_t *p)
{
    uint8_t acc = 0;
    for (int i = 0; i < 32; i++)
        acc |= p[i];
    return acc == 0;
}

/* ---- the batches ---------------------------------------------------------------------- */

static IFMA void hash_mul8(const psi_prefix *pre, const ag_slice *keys, int n,
                           const signed char e[64], uint8_t *out)
{
    uint64_t l0[5][8], l1[5][8];
    for (int i = 0; i < 8; i++) {
        uint8_t h[64];
        crypto_generichash_state st;
        ag__psi_prefix_state(pre, &st);
        crypto_generichash_update(&st, keys[i < n ? i : 0].ptr, keys[i < n ? i : 0].len);
        crypto_generichash_final(&st, h, sizeof(h));
        lanes_from_bytes(l0, i, h);
        lanes_from_bytes(l1, i, h + 32);
    }
    fe8 t0, t1;
    fe8_load(&t0, l0);
    fe8_load(&t1, l1);
    ge8 p0, p1, p, r;
    ge8c c1;
    elligator8(&p0, &t0);
    elligator8(&p1, &t1);
    ge8_to_cached(&c1, &p1);
    ge8_add(&p, &p0, &c1);
    ge8_scalarmult(&r, &p, e);
    fe8 s;
    ristretto8_encode(&s, &r);
    fe8_store_bytes(&s, out, n); /* the identity (probability 2^-252) encodes as zeros */
}

/* Returns the index (< n) of the first input that is not a point or gives
 * the identity, or -1. */
static IFMA int mul8(const uint8_t *in, int n, const signed char e[64], uint8_t *out)
{
    uint64_t l[5][8];
    int bad = -1;
    for (int i = 0; i < 8; i++) {
        const uint8_t *s = in + 32 * (i < n ? i : 0);
        if (i < n && bad < 0 && !canonical(s))
            bad = i;
        lanes_from_bytes(l, i, s);
    }
    fe8 s;
    fe8_load(&s, l);
    ge8 p, r;
    __mmask8 ok = ristretto8_decode(&p, &s);
    ge8_scalarmult(&r, &p, e);
    fe8 enc;
    ristretto8_encode(&enc, &r);
    fe8_store_bytes(&enc, out, n);
    for (int i = 0; i < n; i++)
        if ((bad < 0 || i < bad) && (!((ok >> i) & 1) || all_zero(out + 32 * i)))
            bad = i;
    return bad;
}

bool ag__psi_ifma_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma");
}

void ag__psi_ifma_hash_mul(const psi_prefix *p, const ag_slice *keys, size_t n,
                           const uint8_t s[PSI_SCALAR_SIZE], uint8_t *out)
{
    signed char e[64];
    recode(e, s);
    for (size_t i = 0; i < n; i += 8)
        hash_mul8(p, keys + i, (int)AG_MIN(n - i, 8), e, out + 32 * i);
    sodium_memzero(e, sizeof(e));
}

ssize_t ag__psi_ifma_mul(const uint8_t *in, size_t n, const uint8_t s[PSI_SCALAR_SIZE],
                         uint8_t *out)
{
    signed char e[64];
    recode(e, s);
    ssize_t bad = -1;
    for (size_t i = 0; i < n && bad < 0; i += 8) {
        int b = mul8(in + 32 * i, (int)AG_MIN(n - i, 8), e, out + 32 * i);
        if (b >= 0)
            bad = (ssize_t)(i + (size_t)b);
    }
    sodium_memzero(e, sizeof(e));
    return bad;
}

#else /* not x86-64 with GCC or clang */

bool ag__psi_ifma_available(void)
{
    return false;
}

void ag__psi_ifma_hash_mul(const psi_prefix *p, const ag_slice *keys, size_t n,
                           const uint8_t s[PSI_SCALAR_SIZE], uint8_t *out)
{
    (void)p, (void)keys, (void)n, (void)s, (void)out;
}

ssize_t ag__psi_ifma_mul(const uint8_t *in, size_t n, const uint8_t s[PSI_SCALAR_SIZE],
                         uint8_t *out)
{
    (void)in, (void)n, (void)s, (void)out;
    return 0;
}

#endif
