/*
 * The PSI messages' encodings, and the decoders of what a peer sends (the
 * peer is not trusted to be well-formed: fuzz/psi_wire.c drives these).
 * Also the key tuple's comparison and its printable form.
 *
 * Hello (PSI_HELLO_SIZE bytes, little-endian):
 *   magic "AGPSI\0\0\0" (8) | version u32 | protocol name length u8 |
 *   name, zero-padded (31) | join u8 | receivers u8 | allow_dups u8 |
 *   nkeys u32 | bucket_rows u64 | rows u64 | session digest (32) |
 *   workers u32 (0: one process; else its workers' count)
 *
 * Workers (with workers, slot 0, after the hello): as many entries as the
 * workers' count, each a worker's "host:port", NUL-padded to
 * PSI_ADDR_SIZE bytes.
 *
 * Points (per bucket): count u64 | count points of 32 bytes | with counts,
 * count row counts u32 (each >= 1).
 *
 * Echo (per bucket): exactly as many 32-byte points as the receiver sent
 * (checked by the link's exact-size receive). Fin: one status byte.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const uint8_t hello_magic[8] = {'A', 'G', 'P', 'S', 'I', 0, 0, 0};

void ag__psi_hello_encode(const struct psi_hello *h, uint8_t *out)
{
    uint8_t *p = out;
    memset(out, 0, PSI_HELLO_SIZE);
    memcpy(p, hello_magic, 8);
    p += 8;
    psi_put_u32(p, h->version);
    p += 4;
    size_t nl = strnlen(h->protocol, PSI_PROTO_NAME_MAX);
    *p++ = (uint8_t)nl;
    memcpy(p, h->protocol, nl);
    p += PSI_PROTO_NAME_MAX;
    *p++ = h->join;
    *p++ = h->receivers;
    *p++ = h->allow_dups;
    psi_put_u32(p, h->nkeys);
    p += 4;
    psi_put_u64(p, h->bucket_rows);
    p += 8;
    psi_put_u64(p, h->rows);
    p += 8;
    memcpy(p, h->session, PSI_DIGEST_SIZE);
    p += PSI_DIGEST_SIZE;
    psi_put_u32(p, h->workers);
}

int ag__psi_hello_decode(const uint8_t *p, size_t n, struct psi_hello *h, char *why, size_t cap)
{
    memset(h, 0, sizeof(*h));
    if (n != PSI_HELLO_SIZE) {
        snprintf(why, cap, "a hello of %zu bytes (expected %d)", n, PSI_HELLO_SIZE);
        return AG_E_PSI_PROTOCOL;
    }
    if (memcmp(p, hello_magic, 8) != 0) {
        snprintf(why, cap, "a hello without the PSI magic");
        return AG_E_PSI_PROTOCOL;
    }
    p += 8;
    h->version = psi_get_u32(p);
    p += 4;
    size_t nl = *p++;
    if (nl == 0 || nl > PSI_PROTO_NAME_MAX) {
        snprintf(why, cap, "a protocol name of %zu bytes", nl);
        return AG_E_PSI_PROTOCOL;
    }
    for (size_t i = 0; i < PSI_PROTO_NAME_MAX; i++) {
        uint8_t c = p[i];
        bool ok = i < nl ? c > 0x20 && c < 0x7f : c == 0;
        if (!ok) {
            snprintf(why, cap, "a protocol name with a bad byte 0x%02x", c);
            return AG_E_PSI_PROTOCOL;
        }
    }
    memcpy(h->protocol, p, nl);
    h->protocol[nl] = '\0';
    p += PSI_PROTO_NAME_MAX;
    h->join = *p++;
    h->receivers = *p++;
    h->allow_dups = *p++;
    h->nkeys = psi_get_u32(p);
    p += 4;
    h->bucket_rows = psi_get_u64(p);
    p += 8;
    h->rows = psi_get_u64(p);
    p += 8;
    memcpy(h->session, p, PSI_DIGEST_SIZE);
    p += PSI_DIGEST_SIZE;
    h->workers = psi_get_u32(p);
    if (h->workers > PSI_MAX_WORKERS) {
        snprintf(why, cap, "%u workers (at most %d)", h->workers, PSI_MAX_WORKERS);
        return AG_E_PSI_PROTOCOL;
    }
    if (h->join > AG_PSI_DIFFERENCE) {
        snprintf(why, cap, "an unknown join type %u", h->join);
        return AG_E_PSI_PROTOCOL;
    }
    if (h->receivers == 0 || h->receivers > AG_PSI_RECV_BOTH) {
        snprintf(why, cap, "a receiver mask 0x%x", h->receivers);
        return AG_E_PSI_PROTOCOL;
    }
    if (h->allow_dups > 1) {
        snprintf(why, cap, "a duplicates flag %u", h->allow_dups);
        return AG_E_PSI_PROTOCOL;
    }
    if (h->nkeys == 0 || h->nkeys > AG_PSI_MAX_KEYS || h->bucket_rows == 0) {
        snprintf(why, cap, "%u key columns and buckets of %llu rows", h->nkeys,
                 (unsigned long long)h->bucket_rows);
        return AG_E_PSI_PROTOCOL;
    }
    if (h->rows > PSI_MAX_SLOT) {
        snprintf(why, cap, "a row count of %llu", (unsigned long long)h->rows);
        return AG_E_PSI_PROTOCOL;
    }
    return 0;
}

static const char *receivers_name(unsigned mask, const char *me, const char *peer, bool me_rank0)
{
    if (mask == AG_PSI_RECV_BOTH)
        return "both";
    bool rank0 = mask == AG_PSI_RECV_RANK0;
    return rank0 == me_rank0 ? me : peer;
}

int ag__psi_hello_compare(const struct psi_hello *mine, const struct psi_hello *peer,
                          const char *me, const char *peer_name, bool me_rank0, char *why,
                          size_t cap)
{
#define DIFF(...)                             \
    do {                                      \
        snprintf(why, cap, __VA_ARGS__);      \
        return AG_E_PSI_MISMATCH;             \
    } while (0)
    if (mine->version != peer->version)
        DIFF("party %s speaks PSI version %u, party %s version %u", me, mine->version,
             peer_name, peer->version);
    if (strcmp(mine->protocol, peer->protocol) != 0)
        DIFF("party %s runs protocol %s, party %s %s", me, mine->protocol, peer_name,
             peer->protocol);
    if (mine->join != peer->join)
        DIFF("party %s asks for join %s, party %s for %s", me,
             ag_psi_join_name((ag_psi_join)mine->join), peer_name,
             ag_psi_join_name((ag_psi_join)peer->join));
    if (mine->receivers != peer->receivers)
        DIFF("party %s has receiver %s, party %s has receiver %s", me,
             receivers_name(mine->receivers, me, peer_name, me_rank0), peer_name,
             receivers_name(peer->receivers, me, peer_name, me_rank0));
    if (mine->allow_dups != peer->allow_dups)
        DIFF("party %s %s duplicate keys, party %s %s them", me,
             mine->allow_dups ? "allows" : "refuses", peer_name,
             peer->allow_dups ? "allows" : "refuses");
    if (mine->nkeys != peer->nkeys)
        DIFF("party %s joins on %u key column%s, party %s on %u", me, mine->nkeys,
             mine->nkeys == 1 ? "" : "s", peer_name, peer->nkeys);
    if (mine->bucket_rows != peer->bucket_rows)
        DIFF("party %s uses buckets of %llu rows, party %s of %llu", me,
             (unsigned long long)mine->bucket_rows, peer_name,
             (unsigned long long)peer->bucket_rows);
    if (memcmp(mine->session, peer->session, PSI_DIGEST_SIZE) != 0)
        DIFF("party %s and party %s were given different session ids", me, peer_name);
    if (mine->workers != peer->workers)
        DIFF("party %s runs %u workers, party %s %u (workers.count must be the same in "
             "every party's cluster config; 0: none)", me, mine->workers, peer_name,
             peer->workers);
    return 0;
#undef DIFF
}

int ag__psi_addrs_decode(const uint8_t *p, size_t n, unsigned count,
                         char (*addrs)[PSI_ADDR_SIZE], char *why, size_t cap)
{
    if (count == 0 || count > PSI_MAX_WORKERS || n != (size_t)count * PSI_ADDR_SIZE) {
        snprintf(why, cap, "a workers message of %zu bytes for %u workers", n, count);
        return AG_E_PSI_PROTOCOL;
    }
    for (unsigned i = 0; i < count; i++) {
        const uint8_t *e = p + (size_t)i * PSI_ADDR_SIZE;
        size_t len = strnlen((const char *)e, PSI_ADDR_SIZE);
        bool ok = len > 0 && len < PSI_ADDR_SIZE;
        for (size_t k = 0; ok && k < len; k++)
            ok = e[k] > 0x20 && e[k] < 0x7f;
        for (size_t k = len; ok && k < PSI_ADDR_SIZE; k++)
            ok = e[k] == 0;
        const char *colon = ok ? memchr(e, ':', len) : NULL;
        if (!ok || !colon || colon == (const char *)e || (size_t)(colon - (const char *)e) ==
                                                             len - 1) {
            snprintf(why, cap, "worker %u's address is not host:port", i);
            return AG_E_PSI_PROTOCOL;
        }
        memcpy(addrs[i], e, PSI_ADDR_SIZE);
    }
    return 0;
}

size_t ag__psi_points_size(uint64_t m, bool with_counts)
{
    return 8 + (size_t)m * (PSI_POINT_SIZE + (with_counts ? 4 : 0));
}

int ag__psi_points_decode(const uint8_t *p, size_t n, bool with_counts, uint64_t max_m,
                          uint64_t *m, const uint8_t **points, const uint8_t **counts,
                          char *why, size_t cap)
{
    *m = 0;
    *points = *counts = NULL;
    if (n < 8) {
        snprintf(why, cap, "a points message of %zu bytes", n);
        return AG_E_PSI_PROTOCOL;
    }
    uint64_t k = psi_get_u64(p);
    size_t per = PSI_POINT_SIZE + (with_counts ? 4 : 0);
    if (k > max_m) {
        snprintf(why, cap, "%llu points in a bucket, more than its %llu rows",
                 (unsigned long long)k, (unsigned long long)max_m);
        return AG_E_PSI_PROTOCOL;
    }
    if ((n - 8) / per != k || (n - 8) % per != 0) {
        snprintf(why, cap, "a points message of %zu bytes for %llu points", n,
                 (unsigned long long)k);
        return AG_E_PSI_PROTOCOL;
    }
    const uint8_t *c = p + 8 + k * PSI_POINT_SIZE;
    if (with_counts)
        for (uint64_t i = 0; i < k; i++)
            if (psi_get_u32(c + 4 * i) == 0) {
                snprintf(why, cap, "a row count of 0 for point %llu", (unsigned long long)i);
                return AG_E_PSI_PROTOCOL;
            }
    *m = k;
    *points = p + 8;
    *counts = with_counts ? c : NULL;
    return 0;
}

/* ---- keys ---------------------------------------------------------------- */

int ag__psi_key_cmp(ag_slice a, ag_slice b)
{
    size_t i = 0, j = 0;
    while (i + 4 <= a.len && j + 4 <= b.len) {
        size_t la = psi_get_u32(a.ptr + i), lb = psi_get_u32(b.ptr + j);
        i += 4;
        j += 4;
        la = AG_MIN(la, a.len - i); /* a malformed encoding ends at its end */
        lb = AG_MIN(lb, b.len - j);
        int c = memcmp(a.ptr + i, b.ptr + j, AG_MIN(la, lb));
        if (c != 0)
            return c;
        if (la != lb)
            return la < lb ? -1 : 1;
        i += la;
        j += lb;
    }
    /* same number of columns in practice; otherwise fewer first */
    return (i < a.len) - (j < b.len);
}

/* Appends s (escaped, at most ~48 bytes of it) in quotes. */
static size_t format_field(char *buf, size_t cap, size_t at, const uint8_t *s, size_t n)
{
    static const size_t show = 48;
    char tmp[256];
    size_t k = 0;
    tmp[k++] = '"';
    for (size_t i = 0; i < n && i < show; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            tmp[k++] = '\\';
            tmp[k++] = (char)c;
        } else if (c == '\n') {
            tmp[k++] = '\\';
            tmp[k++] = 'n';
        } else if (c == '\r') {
            tmp[k++] = '\\';
            tmp[k++] = 'r';
        } else if (c == '\t') {
            tmp[k++] = '\\';
            tmp[k++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            k += (size_t)snprintf(tmp + k, sizeof(tmp) - k, "\\x%02x", c);
        } else {
            tmp[k++] = (char)c;
        }
    }
    tmp[k++] = '"';
    if (n > show) {
        memcpy(tmp + k, "...", 3);
        k += 3;
    }
    tmp[k] = '\0';
    if (at < cap)
        at += (size_t)snprintf(buf + at, cap - at, "%s", tmp);
    return at;
}

void ag__psi_key_format(ag_slice key, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    buf[0] = '\0';
    size_t cols = 0;
    for (size_t i = 0; i + 4 <= key.len; cols++)
        i += 4 + (size_t)psi_get_u32(key.ptr + i);
    size_t at = 0;
    if (cols > 1)
        at += (size_t)snprintf(buf, cap, "(");
    size_t i = 0;
    for (size_t c = 0; c < cols && i + 4 <= key.len; c++) {
        uint32_t l = psi_get_u32(key.ptr + i);
        i += 4;
        if (c > 0 && at < cap)
            at += (size_t)snprintf(buf + at, cap - at, ", ");
        at = format_field(buf, cap, at, key.ptr + i, AG_MIN((size_t)l, key.len - i));
        i += l;
    }
    if (cols > 1 && at < cap)
        snprintf(buf + at, cap - at, ")");
}
