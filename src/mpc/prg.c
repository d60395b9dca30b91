/*
 * The PRG: AES-128 in counter mode (OpenSSL's EVP, AES-NI where the CPU has
 * it), keyed by a 16-byte seed. The counter is the block index, carried in
 * the IV, so a stream's position is explicit and two parties with the same
 * seed produce the same bytes as long as they make the same fills. Each
 * fill starts at a block boundary (a partial last block is discarded).
 */
#include <string.h>

#include "internal.h"

int ag__prg_init(ag__prg *p, const uint8_t key[16])
{
    memset(p, 0, sizeof(*p));
    p->ctx = EVP_CIPHER_CTX_new();
    if (!p->ctx)
        return AG_E_NOMEM;
    memcpy(p->key, key, 16);
    if (EVP_EncryptInit_ex(p->ctx, EVP_aes_128_ctr(), NULL, p->key, NULL) != 1) {
        ag__prg_cleanup(p);
        return AG_E_SYS;
    }
    return 0;
}

void ag__prg_cleanup(ag__prg *p)
{
    EVP_CIPHER_CTX_free(p->ctx);
    ag_wipe(p->key, sizeof(p->key));
    p->ctx = NULL;
}

int ag__prg_fill(ag__prg *p, void *out, size_t n)
{
    uint8_t iv[16] = {0};
    for (int i = 0; i < 8; i++)
        iv[15 - i] = (uint8_t)(p->ctr >> (8 * i));
    if (EVP_EncryptInit_ex(p->ctx, NULL, NULL, NULL, iv) != 1)
        return AG_E_SYS;
    memset(out, 0, n);
    uint8_t *o = out;
    /* EVP lengths are int: feed at most 1 GiB at a time */
    for (size_t off = 0; off < n;) {
        size_t chunk = n - off < (1u << 30) ? n - off : (1u << 30);
        int outl = 0;
        if (EVP_EncryptUpdate(p->ctx, o + off, &outl, o + off, (int)chunk) != 1)
            return AG_E_SYS;
        off += chunk;
    }
    p->ctr += (n + 15) / 16;
    return 0;
}
