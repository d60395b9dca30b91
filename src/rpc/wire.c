/*
 * gRPC's wire protocol, the pure parts (see wire.h for the list). Every
 * function here is a function of its arguments: no I/O, no clock, no
 * global state. Inputs are untrusted bytes from the network; every parser
 * is bounded and has a fuzz target (fuzz/rpc_*.c).
 */
#include <stdio.h>
#include <string.h>

#include "wire.h"

static const char *const status_names[] = {
    "OK",           "CANCELLED",        "UNKNOWN",           "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND",   "ALREADY_EXISTS",    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",  "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",        "UNAVAILABLE",       "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *ag_rpc_status_name(int status)
{
    if (status < 0 || (size_t)status >= AG_ARRAY_LEN(status_names))
        return "UNKNOWN";
    return status_names[status];
}

/* ---- framing ------------------------------------------------------------- */

void ag__grpc_prefix(uint8_t out[AG__GRPC_PREFIX], bool compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

void ag__deframer_init(ag__deframer *d, uint32_t max, bool may_compress)
{
    memset(d, 0, sizeof(*d));
    d->max = max;
    d->may_compress = may_compress;
    ag_buf_init(&d->body, max);
}

void ag__deframer_cleanup(ag__deframer *d)
{
    ag_buf_cleanup(&d->body);
}

static ssize_t deframer_fail(ag__deframer *d, int code, int status, const char *fmt, ...)
    AG_PRINTF(4, 5);
static ssize_t deframer_fail(ag__deframer *d, int code, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ag_errbuf_vset(&d->err, code, fmt, ap);
    va_end(ap);
    d->status = status;
    return code;
}

/* The prefix is complete: check it and get ready for the body. */
static ssize_t deframer_prefix(ag__deframer *d)
{
    uint8_t flag = d->hdr[0];
    uint32_t len = (uint32_t)d->hdr[1] << 24 | (uint32_t)d->hdr[2] << 16 |
                   (uint32_t)d->hdr[3] << 8 | d->hdr[4];
    if (flag > 1)
        return deframer_fail(d, AG_E_RPC_PROTOCOL, AG_RPC_INTERNAL,
                             "message prefix has compressed flag %u (must be 0 or 1)", flag);
    if (flag == 1 && !d->may_compress)
        return deframer_fail(d, AG_E_RPC_PROTOCOL, AG_RPC_INTERNAL,
                             "compressed message on a stream without grpc-encoding");
    if (len > d->max)
        return deframer_fail(d, AG_E_TOO_LARGE, AG_RPC_RESOURCE_EXHAUSTED,
                             "received message larger than max (%u vs. %u)", len, d->max);
    d->compressed = flag == 1;
    d->msg_len = len;
    ag_buf_reset(&d->body);
    if (len > 0 && ag_buf_reserve(&d->body, len) < 0)
        return deframer_fail(d, AG_E_NOMEM, AG_RPC_RESOURCE_EXHAUSTED,
                             "no memory for a %u-byte message", len);
    d->complete = len == 0;
    return 0;
}

ssize_t ag__deframer_feed(ag__deframer *d, const uint8_t *p, size_t n)
{
    if (d->err.code)
        return d->err.code;
    if (d->complete)
        return 0;
    size_t used = 0;
    if (d->hdr_len < AG__GRPC_PREFIX) {
        size_t take = AG_MIN(AG__GRPC_PREFIX - d->hdr_len, n);
        memcpy(d->hdr + d->hdr_len, p, take);
        d->hdr_len += take;
        used = take;
        if (d->hdr_len < AG__GRPC_PREFIX)
            return (ssize_t)used;
        ssize_t rc = deframer_prefix(d);
        if (rc < 0)
            return rc;
        if (d->complete)
            return (ssize_t)used;
    }
    size_t take = AG_MIN(d->msg_len - d->body.len, n - used);
    if (take) {
        /* cannot fail: the body's room was reserved when the prefix came */
        int rc = ag_buf_append(&d->body, p + used, take);
        if (rc < 0)
            return deframer_fail(d, rc, AG_RPC_INTERNAL, "%s", ag_strerror(rc));
    }
    used += take;
    if (d->body.len == d->msg_len)
        d->complete = true;
    return (ssize_t)used;
}

bool ag__deframer_ready(const ag__deframer *d)
{
    return d->complete && !d->err.code;
}

uint8_t *ag__deframer_take(ag__deframer *d, size_t *len, bool *compressed)
{
    uint8_t *msg = NULL;
    *len = 0;
    *compressed = d->compressed;
    if (d->msg_len > 0)
        msg = ag_buf_take(&d->body, len);
    d->hdr_len = 0;
    d->msg_len = 0;
    d->complete = false;
    d->compressed = false;
    return msg;
}

int ag__deframer_finish(ag__deframer *d)
{
    if (d->err.code)
        return d->err.code;
    if (d->hdr_len == 0 || d->complete)
        return 0;
    if (d->hdr_len < AG__GRPC_PREFIX)
        return (int)deframer_fail(d, AG_E_RPC_PROTOCOL, AG_RPC_INTERNAL,
                                  "stream ended inside a message prefix (%zu of 5 bytes)",
                                  d->hdr_len);
    return (int)deframer_fail(d, AG_E_RPC_PROTOCOL, AG_RPC_INTERNAL,
                              "stream ended inside a message (%zu of %u bytes)", d->body.len,
                              d->msg_len);
}

/* ---- grpc-timeout ---------------------------------------------------------- */

static uint64_t unit_ns(char u)
{
    switch (u) {
    case 'H': return 3600000000000ull;
    case 'M': return 60000000000ull;
    case 'S': return 1000000000ull;
    case 'm': return 1000000ull;
    case 'u': return 1000ull;
    case 'n': return 1ull;
    default: return 0;
    }
}

int ag__grpc_timeout_parse(const char *s, size_t len, uint64_t *ns)
{
    if (len < 2 || len > 9)
        return AG_E_INVAL;
    uint64_t unit = unit_ns(s[len - 1]), v = 0;
    if (!unit)
        return AG_E_INVAL;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return AG_E_INVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *ns = v > UINT64_MAX / unit ? UINT64_MAX : v * unit;
    return 0;
}

void ag__grpc_timeout_format(uint64_t ns, char out[10])
{
    static const char units[] = {'n', 'u', 'm', 'S', 'M', 'H'};
    for (size_t i = 0; i < sizeof(units); i++) {
        uint64_t u = unit_ns(units[i]);
        uint64_t v = ns / u + (ns % u != 0); /* round up: never shorten */
        if (v <= 99999999u || units[i] == 'H') {
            if (v > 99999999u)
                v = 99999999u;
            snprintf(out, 10, "%llu%c", (unsigned long long)v, units[i]);
            return;
        }
    }
}

/* ---- status ------------------------------------------------------------------ */

int ag__grpc_status_parse(const char *s, size_t len)
{
    if (len == 0 || len > 2 || (len > 1 && s[0] == '0'))
        return AG_RPC_UNKNOWN;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return AG_RPC_UNKNOWN;
        v = v * 10 + (s[i] - '0');
    }
    return v <= AG_RPC_UNAUTHENTICATED ? v : AG_RPC_UNKNOWN;
}

int ag__grpc_message_encode(ag_buf *out, const char *msg, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)msg[i];
        int rc;
        if (c >= 0x20 && c <= 0x7e && c != '%') {
            rc = ag_buf_append_byte(out, c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = ag_buf_append(out, e, 3);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ag__grpc_message_decode(ag_buf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c == '%' && i + 2 < len) {
            int hi = ag_hex_digit(s[i + 1]), lo = ag_hex_digit(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = (uint8_t)(hi << 4 | lo);
                i += 2;
            }
        }
        int rc = ag_buf_append_byte(out, c);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ag__grpc_status_from_http(int http_status)
{
    switch (http_status) {
    case 400: return AG_RPC_INTERNAL;
    case 401: return AG_RPC_UNAUTHENTICATED;
    case 403: return AG_RPC_PERMISSION_DENIED;
    case 404: return AG_RPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504: return AG_RPC_UNAVAILABLE;
    default: return AG_RPC_UNKNOWN;
    }
}

int ag__grpc_status_from_rst(uint32_t h2_error)
{
    switch (h2_error) {
    case 0x7: return AG_RPC_UNAVAILABLE;        /* REFUSED_STREAM: nothing was processed */
    case 0x8: return AG_RPC_CANCELLED;          /* CANCEL */
    case 0xb: return AG_RPC_RESOURCE_EXHAUSTED; /* ENHANCE_YOUR_CALM */
    case 0xc: return AG_RPC_PERMISSION_DENIED;  /* INADEQUATE_SECURITY */
    default: return AG_RPC_INTERNAL;
    }
}

/* ---- metadata ------------------------------------------------------------------ */

bool ag__grpc_key_valid(const char *key, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return false;
    }
    return true;
}

bool ag__grpc_key_is_bin(const char *key, size_t len)
{
    return len >= 4 && memcmp(key + len - 4, "-bin", 4) == 0;
}

bool ag__grpc_key_reserved(const char *key, size_t len)
{
    static const char *const exact[] = {"content-type", "te",       "user-agent",
                                        "host",         "connection", "keep-alive",
                                        "proxy-connection", "transfer-encoding", "upgrade"};
    if (len > 0 && key[0] == ':')
        return true;
    if (len >= 5 && memcmp(key, "grpc-", 5) == 0)
        return true;
    for (size_t i = 0; i < AG_ARRAY_LEN(exact); i++)
        if (strlen(exact[i]) == len && memcmp(exact[i], key, len) == 0)
            return true;
    return false;
}

bool ag__grpc_value_valid(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((uint8_t)v[i] < 0x20 || (uint8_t)v[i] > 0x7e)
            return false;
    return true;
}

int ag__grpc_bin_decode(ag_buf *out, const char *v, size_t len)
{
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        size_t b = i, e = j;
        while (b < e && v[b] == ' ')
            b++;
        while (e > b && v[e - 1] == ' ')
            e--;
        size_t need = ag_base64_decoded_max(e - b);
        int rc = ag_buf_reserve(out, need);
        if (rc < 0)
            return rc;
        ssize_t n = ag_base64_decode(out->data + out->len, need, v + b, e - b,
                                     AG_B64_STD | AG_B64_PAD_OPTIONAL);
        if (n < 0)
            return (int)n;
        out->len += (size_t)n;
        out->data[out->len] = '\0';
        i = j + 1;
    }
    return 0;
}

/* ---- headers ------------------------------------------------------------------ */

bool ag__grpc_content_type_ok(const char *v, size_t len)
{
    static const char base[] = "application/grpc";
    size_t bl = sizeof(base) - 1;
    if (len < bl || memcmp(v, base, bl) != 0)
        return false;
    return len == bl || v[bl] == '+' || v[bl] == ';';
}

ag__grpc_encoding ag__grpc_encoding_parse(const char *v, size_t len)
{
    static const char *const names[] = {"identity", "gzip", "deflate"};
    for (size_t i = 0; i < AG_ARRAY_LEN(names); i++)
        if (strlen(names[i]) == len && memcmp(names[i], v, len) == 0)
            return (ag__grpc_encoding)i;
    return AG__ENC_UNKNOWN;
}

const char *ag__grpc_encoding_name(ag__grpc_encoding e)
{
    switch (e) {
    case AG__ENC_IDENTITY: return "identity";
    case AG__ENC_GZIP: return "gzip";
    case AG__ENC_DEFLATE: return "deflate";
    default: return "unknown";
    }
}

unsigned ag__grpc_accept_encoding_parse(const char *v, size_t len)
{
    unsigned mask = 1u << AG__ENC_IDENTITY;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        size_t b = i, e = j;
        while (b < e && (v[b] == ' ' || v[b] == '\t'))
            b++;
        while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        ag__grpc_encoding enc = ag__grpc_encoding_parse(v + b, e - b);
        if (enc != AG__ENC_UNKNOWN)
            mask |= 1u << enc;
        i = j + 1;
    }
    return mask;
}
