/*
 * Tokens (token.h): HMAC-SHA256 under the RM's master keys, and the text
 * form an AM sends its AMRM token in.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "argot/base.h"
#include "token.h"

int ag__sched_key_new(ag_sched_key *k, int32_t id)
{
    k->id = id;
    return ag_random_bytes(k->bytes, sizeof(k->bytes)) < 0 ? AG_E_SYS : 0;
}

void ag__sched_mac(const ag_sched_key *k, const uint8_t *data, size_t len,
                   uint8_t mac[AG_SCHED_MAC_BYTES])
{
    unsigned int n = AG_SCHED_MAC_BYTES;
    if (!HMAC(EVP_sha256(), k->bytes, (int)sizeof(k->bytes), data, len, mac, &n))
        memset(mac, 0, AG_SCHED_MAC_BYTES); /* matches nothing a key makes */
}

bool ag__sched_mac_ok(const ag_sched_key *k, const uint8_t *data, size_t len,
                      const uint8_t *password, size_t password_len)
{
    uint8_t mac[AG_SCHED_MAC_BYTES];
    if (password_len != sizeof(mac))
        return false;
    ag__sched_mac(k, data, len, mac);
    bool ok = CRYPTO_memcmp(mac, password, sizeof(mac)) == 0;
    ag_wipe(mac, sizeof(mac));
    return ok;
}

#define B64 (AG_B64_URL | AG_B64_NOPAD)

int ag__sched_token_text(const uint8_t *id, size_t idlen, const uint8_t *pw, size_t pwlen,
                         char *out, size_t cap)
{
    size_t a = ag_base64_encoded_len(idlen, B64), b = ag_base64_encoded_len(pwlen, B64);
    if (a + 1 + b + 1 > cap)
        return AG_E_TOO_LARGE;
    ag_base64_encode(out, id, idlen, B64);
    out[a] = '.';
    ag_base64_encode(out + a + 1, pw, pwlen, B64);
    return 0;
}

int ag__sched_token_parse(const char *text, uint8_t **id, size_t *idlen, uint8_t **pw,
                          size_t *pwlen)
{
    *id = *pw = NULL;
    const char *dot = strchr(text, '.');
    if (!dot || strchr(dot + 1, '.'))
        return AG_E_ENCODING;
    size_t a = (size_t)(dot - text), b = strlen(dot + 1);
    *id = ag_malloc(ag_base64_decoded_max(a) + 1);
    *pw = ag_malloc(ag_base64_decoded_max(b) + 1);
    if (!*id || !*pw) {
        ag_free(*id);
        ag_free(*pw);
        *id = *pw = NULL;
        return AG_E_NOMEM;
    }
    ssize_t x = ag_base64_decode(*id, ag_base64_decoded_max(a) + 1, text, a, B64);
    ssize_t y = ag_base64_decode(*pw, ag_base64_decoded_max(b) + 1, dot + 1, b, B64);
    if (x < 0 || y < 0) {
        ag_free(*id);
        ag_free(*pw);
        *id = *pw = NULL;
        return AG_E_ENCODING;
    }
    *idlen = (size_t)x;
    *pwlen = (size_t)y;
    return 0;
}
