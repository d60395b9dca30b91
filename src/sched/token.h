/*
 * The tokens of sched (sched.proto): a Token's identifier is a packed
 * ContainerTokenIdentifier or AMRMTokenIdentifier, its password the
 * HMAC-SHA256 of those bytes under a master key the RM draws (and rolls).
 * The RM signs; NMs verify container tokens with the keys the RM gives
 * them at registration and in heartbeats; the RM verifies AMRM tokens.
 */
#ifndef ARGOT_SCHED_TOKEN_H
#define ARGOT_SCHED_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AG_SCHED_KEY_BYTES 32
#define AG_SCHED_MAC_BYTES 32

/* A master key: its id (from 1) and its bytes. */
typedef struct ag_sched_key {
    int32_t id;
    uint8_t bytes[AG_SCHED_KEY_BYTES];
} ag_sched_key;

/* A fresh random key of the given id. 0 or AG_E_SYS. */
int ag__sched_key_new(ag_sched_key *k, int32_t id);
/* mac = HMAC-SHA256(key, data). */
void ag__sched_mac(const ag_sched_key *k, const uint8_t *data, size_t len,
                   uint8_t mac[AG_SCHED_MAC_BYTES]);
/* True if password (len bytes) is the MAC of data under key, compared in
 * constant time. */
bool ag__sched_mac_ok(const ag_sched_key *k, const uint8_t *data, size_t len,
                      const uint8_t *password, size_t password_len);

/* The AMRM token in the metadata key "argot-amrm-token": base64url (no
 * padding) of the identifier, '.', base64url of the password. encode
 * writes into out (cap bytes, NUL-terminated); decode allocates *id and
 * *pw (ag_free). 0, AG_E_TOO_LARGE or AG_E_ENCODING. */
int ag__sched_token_text(const uint8_t *id, size_t idlen, const uint8_t *pw, size_t pwlen,
                         char *out, size_t cap);
int ag__sched_token_parse(const char *text, uint8_t **id, size_t *idlen, uint8_t **pw,
                          size_t *pwlen);

#endif
