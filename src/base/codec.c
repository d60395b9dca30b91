/*
 * Hex and base64 (RFC 4648: the standard and the URL-safe alphabets, with or
 * without padding).
 *
 * Decoding is strict, so that every byte string has exactly one accepted
 * encoding per flag set: characters outside the alphabet (whitespace too)
 * are rejected, padding must be canonical when present, and the unused low
 * bits of the last character must be zero. With AG_B64_PAD_OPTIONAL both the
 * padded and the unpadded form are accepted (gRPC requires this of -bin
 * metadata).
 */
#include <string.h>

#include "argot/base.h"

static const char hexdig[] = "0123456789abcdef";
static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t ag_hex_encode(char *out, const void *in, size_t n)
{
    const uint8_t *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[p[i] >> 4];
        out[2 * i + 1] = hexdig[p[i] & 15];
    }
    out[2 * n] = '\0';
    return 2 * n;
}

int ag_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t ag_hex_decode(void *out, size_t outcap, const char *in, size_t n)
{
    if (n % 2)
        return AG_E_ENCODING;
    if (n / 2 > outcap)
        return AG_E_TOO_LARGE;
    uint8_t *o = out;
    for (size_t i = 0; i < n; i += 2) {
        int hi = ag_hex_digit(in[i]), lo = ag_hex_digit(in[i + 1]);
        if (hi < 0 || lo < 0)
            return AG_E_ENCODING;
        o[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (ssize_t)(n / 2);
}

size_t ag_base64_encoded_len(size_t n, unsigned flags)
{
    if (flags & AG_B64_NOPAD)
        return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
    return (n + 2) / 3 * 4;
}

size_t ag_base64_encode(char *out, const void *in, size_t n, unsigned flags)
{
    const char *alpha = (flags & AG_B64_URL) ? b64_url : b64_std;
    const uint8_t *p = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        out[o++] = alpha[v & 63];
    }
    size_t rest = n - i;
    if (rest) {
        uint32_t v = (uint32_t)p[i] << 16 | (rest == 2 ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        if (rest == 2)
            out[o++] = alpha[(v >> 6) & 63];
        if (!(flags & AG_B64_NOPAD)) {
            if (rest == 1)
                out[o++] = '=';
            out[o++] = '=';
        }
    }
    out[o] = '\0';
    return o;
}

size_t ag_base64_decoded_max(size_t n)
{
    return n / 4 * 3 + (n % 4) * 3 / 4 + 3;
}

static int b64val(unsigned char c, unsigned flags)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (flags & AG_B64_URL)
        return c == '-' ? 62 : c == '_' ? 63 : -1;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

ssize_t ag_base64_decode(void *out, size_t outcap, const char *in, size_t n, unsigned flags)
{
    /* strip and validate the padding */
    size_t pad = 0;
    while (pad < 2 && n > pad && in[n - 1 - pad] == '=')
        pad++;
    size_t body = n - pad;
    if (pad) {
        if ((flags & AG_B64_NOPAD) && !(flags & AG_B64_PAD_OPTIONAL))
            return AG_E_ENCODING;
        if (n % 4 != 0)
            return AG_E_ENCODING;
    } else if (body % 4 != 0 && !(flags & (AG_B64_NOPAD | AG_B64_PAD_OPTIONAL))) {
        return AG_E_ENCODING;
    }
    if (body % 4 == 1)
        return AG_E_ENCODING;
    size_t outlen = body / 4 * 3 + (body % 4 ? body % 4 - 1 : 0);
    if (outlen > outcap)
        return AG_E_TOO_LARGE;
    uint8_t *o = out;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < body; i++) {
        int v = b64val((unsigned char)in[i], flags);
        if (v < 0)
            return AG_E_ENCODING;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* non-zero leftover bits: not the canonical encoding */
        return AG_E_ENCODING;
    return (ssize_t)k;
}
