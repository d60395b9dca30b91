/*
 * Batches of ristretto255 work for the ECDH protocol, over libsodium, or
 * over psi_ifma.c's eight-lane AVX-512 IFMA code where the CPU has it
 * (chosen once, at ag__psi_curve_init; ARGOT_PSI_CURVE=libsodium forces
 * libsodium). Both give the same bytes.
 *
 *   hash_mul   H(x)^s: BLAKE2b-512 of the session prefix and the key
 *              tuple, crypto_core_ristretto255_from_hash, then
 *              crypto_scalarmult_ristretto255
 *   mul        P^s for points from the peer (decoding rejects anything
 *              that is not a canonical ristretto255 encoding, the top bit
 *              included, and a result that is the identity)
 *
 * Both are pure functions of their inputs with no allocation: the caller
 * splits a bucket into chunks across its thread pool. The scalar is secret
 * and libsodium's multiplication is constant-time in it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_rc;

static bool use_ifma;

static void sodium_start(void)
{
    sodium_rc = sodium_init() < 0 ? AG_E_SYS : 0;
    const char *force = getenv("ARGOT_PSI_CURVE");
    use_ifma = ag__psi_ifma_available() && !(force && strcmp(force, "libsodium") == 0);
}

int ag__psi_curve_init(void)
{
    pthread_once(&sodium_once, sodium_start);
    return sodium_rc;
}

void ag__psi_scalar_random(uint8_t s[PSI_SCALAR_SIZE])
{
    crypto_core_ristretto255_scalar_random(s);
}

static const char domain[] = "argot-psi-v1";

void ag__psi_prefix_init(psi_prefix *p, const uint8_t *session, size_t len)
{
    uint8_t l[4];
    crypto_generichash_state st;
    psi_put_u32(l, (uint32_t)len);
    crypto_generichash_init(&st, NULL, 0, crypto_core_ristretto255_HASHBYTES);
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof(domain) - 1);
    crypto_generichash_update(&st, l, 4);
    crypto_generichash_update(&st, session, len);
    memcpy(p->bytes, (const void *)&st, sizeof(st));
    sodium_memzero(&st, sizeof(st));
}

void ag__psi_sodium_hash_mul(const psi_prefix *p, const ag_slice *keys, size_t n,
                             const uint8_t s[PSI_SCALAR_SIZE], uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        crypto_generichash_state st;
        uint8_t h[crypto_core_ristretto255_HASHBYTES];
        ag__psi_prefix_state(p, &st);
        uint8_t pt[crypto_core_ristretto255_BYTES];
        crypto_generichash_update(&st, keys[i].ptr, keys[i].len);
        crypto_generichash_final(&st, h, sizeof(h));
        crypto_core_ristretto255_from_hash(pt, h);
        /* fails only for the identity, which a hash reaches with
         * probability 2^-252: an all-zero output then matches nothing */
        if (crypto_scalarmult_ristretto255(out + i * PSI_POINT_SIZE, s, pt) != 0)
            memset(out + i * PSI_POINT_SIZE, 0, PSI_POINT_SIZE);
    }
}

ssize_t ag__psi_sodium_mul(const uint8_t *in, size_t n, const uint8_t s[PSI_SCALAR_SIZE],
                           uint8_t *out)
{
    /* libsodium 1.0.18 ignores the top bit of an encoding, which RFC 9496
     * (and later libsodium) rejects as non-canonical: rejected here too */
    for (size_t i = 0; i < n; i++)
        if ((in[i * PSI_POINT_SIZE + 31] & 0x80) != 0 ||
            crypto_scalarmult_ristretto255(out + i * PSI_POINT_SIZE, s,
                                           in + i * PSI_POINT_SIZE) != 0)
            return (ssize_t)i;
    return -1;
}

void ag__psi_hash_mul(const psi_prefix *p, const ag_slice *keys, size_t n,
                      const uint8_t s[PSI_SCALAR_SIZE], uint8_t *out)
{
    if (use_ifma)
        ag__psi_ifma_hash_mul(p, keys, n, s, out);
    else
        ag__psi_sodium_hash_mul(p, keys, n, s, out);
}

ssize_t ag__psi_mul(const uint8_t *in, size_t n, const uint8_t s[PSI_SCALAR_SIZE], uint8_t *out)
{
    return use_ifma ? ag__psi_ifma_mul(in, n, s, out) : ag__psi_sodium_mul(in, n, s, out);
}

const char *ag__psi_curve_backend(void)
{
    return use_ifma ? "avx512ifma" : "libsodium";
}
