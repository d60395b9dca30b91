/*
 * The PRG: AES-128 in counter mode (OpenSSL's EVP, AES-NI where the CPU has
 * it), keyed by a 16-byte seed. The stream is the CTR keystream with the
 * 128-bit big-endian counter starting at 0: block i of the stream is
 * AES_k(i). Invariants:
 *   1. a fill of n bytes starting at block b writes the first n bytes of
 *      blocks b, b + 1, ...; a partial last block is discarded, so every
 *      fill starts at a block boundary;
 *   2. ag__prg_fill draws from the stream's position (p->ctr) and moves it
 *      by ceil(n / 16) blocks; ag__prg_fill_at draws from any position and
 *      moves nothing, so rank 0's dealer can expand a chunk of another
 *      party's request in any order and still produce exactly the bytes
 *      that party's sequential fills produce;
 *   3. the bytes are a function of the key and the positions only: two
 *      parties with the same seed making the same fills stay in step.
 * The keystream is made by encrypting a static block of zeros into the
 * output piece by piece, so the output is written once (no memset first).
 */
#include <string.h>

#include "internal.h"

/* Bytes per EVP call: the zeros read stay in L1, and EVP lengths are int. */
enum { PIECE = 16384 };

static const uint8_t zeros[PIECE];

int ag__prg_init(ag__prg *p, const uint8_t key[16])
{
    memset(p, 0, sizeof(*p));
    p->ctx = EVP_CIPHER_CTX_new();
    if (!p->ctx)
        return AG_E_NOMEM;
    if (EVP_EncryptInit_ex(p->ctx, EVP_aes_128_ctr(), NULL, key, NULL) != 1) {
        ag__prg_cleanup(p);
        return AG_E_SYS;
    }
    return 0;
}

void ag__prg_cleanup(ag__prg *p)
{
    /* frees (and OpenSSL wipes) the key schedule */
    EVP_CIPHER_CTX_free(p->ctx);
    p->ctx = NULL;
}

int ag__prg_fill_at(const ag__prg *p, uint64_t block, void *out, size_t n)
{
    uint8_t iv[16] = {0};
    for (int i = 0; i < 8; i++)
        iv[15 - i] = (uint8_t)(block >> (8 * i));
    if (EVP_EncryptInit_ex(p->ctx, NULL, NULL, NULL, iv) != 1)
        return AG_E_SYS;
    uint8_t *o = out;
    for (size_t off = 0; off < n; off += PIECE) {
        int outl = 0;
        int len = (int)AG_MIN((size_t)PIECE, n - off);
        if (EVP_EncryptUpdate(p->ctx, o + off, &outl, zeros, len) != 1)
            return AG_E_SYS;
    }
    return 0;
}

void ag__prg_skip(ag__prg *p, size_t n)
{
    p->ctr += (n + 15) / 16;
}

int ag__prg_fill(ag__prg *p, void *out, size_t n)
{
    int rc = ag__prg_fill_at(p, p->ctr, out, n);
    if (rc == 0)
        ag__prg_skip(p, n);
    return rc;
}
