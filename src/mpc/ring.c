/*
 * Ring arithmetic over Z_2^64 and Z_2^128: the element-wise and matrix
 * kernels every semi2k operation is made of. Unsigned wrap-around is the
 * ring's own arithmetic, so plain C unsigned operations are exact.
 *
 * These are the hot loops: this file is built with -O3, and the loops are
 * written so the compiler vectorizes them (the 64-bit products use
 * AVX-512DQ's vpmullq where the CPU has it, chosen at run time through
 * target_clones; every x86-64 runs the default clone).
 */
#include <string.h>

#include "internal.h"

/* not under the sanitizers: their runtimes are not ready when the ifunc
 * resolvers run at load time (TSan crashes there) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define HOT __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define HOT
#endif

#define ELEMENTWISE(name, expr)                                                    \
    HOT static void name##64(size_t n, uint64_t *d, const uint64_t *a,           \
                             const uint64_t *b)                                   \
    {                                                                              \
        for (size_t i = 0; i < n; i++)                                             \
            d[i] = expr;                                                           \
    }                                                                              \
    static void name##128(size_t n, ag_u128 *d, const ag_u128 *a, const ag_u128 *b) \
    {                                                                              \
        for (size_t i = 0; i < n; i++)                                             \
            d[i] = expr;                                                           \
    }                                                                              \
    void ag__ring_##name(ag_field f, size_t n, void *dst, const void *a, const void *b) \
    {                                                                              \
        if (f == AG_FM64)                                                          \
            name##64(n, dst, a, b);                                                \
        else                                                                       \
            name##128(n, dst, a, b);                                               \
    }

ELEMENTWISE(add, a[i] + b[i])
ELEMENTWISE(sub, a[i] - b[i])
ELEMENTWISE(mul, a[i] * b[i])

/* With e = x - a + pe and g = y - b + pg: z += e*b + g*a, or at rank 0
 * z += e*(b + g) + g*a (= e*b + g*a + e*g, one product fewer). */
#define BEAVER_LOOP(T)                                                             \
    do {                                                                           \
        if (with_eg)                                                               \
            for (size_t i = 0; i < n; i++) {                                       \
                T e = x[i] - a[i] + pe[i], g = y[i] - b[i] + pg[i];                \
                z[i] += e * (b[i] + g) + g * a[i];                                 \
            }                                                                      \
        else                                                                       \
            for (size_t i = 0; i < n; i++) {                                       \
                T e = x[i] - a[i] + pe[i], g = y[i] - b[i] + pg[i];                \
                z[i] += e * b[i] + g * a[i];                                       \
            }                                                                      \
    } while (0)

HOT static void beaver64(size_t n, uint64_t *z, const uint64_t *x, const uint64_t *y,
                         const uint64_t *a, const uint64_t *b, const uint64_t *pe,
                         const uint64_t *pg, bool with_eg)
{
    BEAVER_LOOP(uint64_t);
}

static void beaver128(size_t n, ag_u128 *z, const ag_u128 *x, const ag_u128 *y, const ag_u128 *a,
                      const ag_u128 *b, const ag_u128 *pe, const ag_u128 *pg, bool with_eg)
{
    BEAVER_LOOP(ag_u128);
}

void ag__ring_beaver(ag_field f, size_t n, void *z, const void *x, const void *y, const void *a,
                     const void *b, const void *pe, const void *pg, bool with_eg)
{
    if (f == AG_FM64)
        beaver64(n, z, x, y, a, b, pe, pg, with_eg);
    else
        beaver128(n, z, x, y, a, b, pe, pg, with_eg);
}

void ag__ring_add_inplace(ag_field f, size_t n, void *dst, const void *a)
{
    ag__ring_add(f, n, dst, dst, a);
}

void ag__ring_neg(ag_field f, size_t n, void *dst, const void *a)
{
    if (f == AG_FM64) {
        uint64_t *d = dst;
        const uint64_t *s = a;
        for (size_t i = 0; i < n; i++)
            d[i] = 0 - s[i];
    } else {
        ag_u128 *d = dst;
        const ag_u128 *s = a;
        for (size_t i = 0; i < n; i++)
            d[i] = 0 - s[i];
    }
}

void ag__ring_arshift(ag_field f, size_t n, void *dst, const void *a, unsigned bits)
{
    /* shifting a negative signed value right is implementation-defined in
     * C11; GCC and clang define it as arithmetic, which we rely on */
    if (f == AG_FM64) {
        uint64_t *d = dst;
        const uint64_t *s = a;
        for (size_t i = 0; i < n; i++)
            d[i] = (uint64_t)((int64_t)s[i] >> bits);
    } else {
        __extension__ typedef __int128 i128;
        ag_u128 *d = dst;
        const ag_u128 *s = a;
        for (size_t i = 0; i < n; i++)
            d[i] = (ag_u128)((i128)s[i] >> bits);
    }
}

/* Blocked i-k-j matrix product, accumulated into c: a block of b's rows
 * (KB x JB) stays in the L2 cache while every row of a sweeps it; the inner
 * loop is a scaled vector add the compiler vectorizes. */
enum { KB = 128, JB = 512 };

HOT static void matmul64(size_t m, size_t k, size_t n, uint64_t *c, const uint64_t *a,
                         const uint64_t *b)
{
    for (size_t j0 = 0; j0 < n; j0 += JB) {
        size_t j1 = j0 + JB < n ? j0 + JB : n;
        for (size_t k0 = 0; k0 < k; k0 += KB) {
            size_t k1 = k0 + KB < k ? k0 + KB : k;
            for (size_t i = 0; i < m; i++) {
                uint64_t *ci = c + i * n;
                const uint64_t *ai = a + i * k;
                for (size_t kk = k0; kk < k1; kk++) {
                    uint64_t s = ai[kk];
                    const uint64_t *bk = b + kk * n;
                    for (size_t j = j0; j < j1; j++)
                        ci[j] += s * bk[j];
                }
            }
        }
    }
}

static void matmul128(size_t m, size_t k, size_t n, ag_u128 *c, const ag_u128 *a,
                      const ag_u128 *b)
{
    for (size_t j0 = 0; j0 < n; j0 += JB / 2) {
        size_t j1 = j0 + JB / 2 < n ? j0 + JB / 2 : n;
        for (size_t k0 = 0; k0 < k; k0 += KB) {
            size_t k1 = k0 + KB < k ? k0 + KB : k;
            for (size_t i = 0; i < m; i++) {
                ag_u128 *ci = c + i * n;
                const ag_u128 *ai = a + i * k;
                for (size_t kk = k0; kk < k1; kk++) {
                    ag_u128 s = ai[kk];
                    const ag_u128 *bk = b + kk * n;
                    for (size_t j = j0; j < j1; j++)
                        ci[j] += s * bk[j];
                }
            }
        }
    }
}

void ag__ring_matmul_acc(ag_field f, size_t m, size_t k, size_t n, void *dst, const void *a,
                         const void *b)
{
    if (f == AG_FM64)
        matmul64(m, k, n, dst, a, b);
    else
        matmul128(m, k, n, dst, a, b);
}

/* c += a^T b for a (k x m) stored row-major: row kk of a scales row kk of b
 * into every row of c it touches (c is m x n). */
void ag__ring_matmul_tn_acc(ag_field f, size_t m, size_t k, size_t n, void *dst, const void *a,
                            const void *b)
{
    for (size_t kk = 0; kk < k; kk++)
        for (size_t i = 0; i < m; i++) {
            if (f == AG_FM64) {
                uint64_t s = ((const uint64_t *)a)[kk * m + i];
                uint64_t *ci = (uint64_t *)dst + i * n;
                const uint64_t *bk = (const uint64_t *)b + kk * n;
                for (size_t j = 0; j < n; j++)
                    ci[j] += s * bk[j];
            } else {
                ag_u128 s = ((const ag_u128 *)a)[kk * m + i];
                ag_u128 *ci = (ag_u128 *)dst + i * n;
                const ag_u128 *bk = (const ag_u128 *)b + kk * n;
                for (size_t j = 0; j < n; j++)
                    ci[j] += s * bk[j];
            }
        }
}

void ag__ring_matmul(ag_field f, size_t m, size_t k, size_t n, void *dst, const void *a,
                     const void *b)
{
    memset(dst, 0, m * n * ag_field_bytes(f));
    ag__ring_matmul_acc(f, m, k, n, dst, a, b);
}
