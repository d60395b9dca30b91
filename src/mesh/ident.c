/*
 * Request identifiers: the name a request is routed by (dtab.h gives the
 * three kinds). The proxy calls ag__ident_name once per request, on its loop
 * thread, before delegation; nothing here allocates except out's growth.
 *
 * Choices dtab.h leaves open:
 *   1. Surrounding spaces and tabs of a header value (and of the authority)
 *      are trimmed, as HTTP/1.1 allows senders to put them there.
 *   2. AUTHORITY: "[v6]" or "[v6]:port" for IPv6; otherwise a single ':'
 *      separates the port (digits, possibly none: "host:" is allowed by RFC
 *      3986), and an authority with several ':' and no brackets is taken
 *      whole, as an unbracketed IPv6 literal. A port that is not digits
 *      makes the authority invalid. The host is lowercased (ASCII).
 *   3. PATH: the request target may also be in absolute form
 *      ("http://host/a/b", what HTTP/1.1 clients send to a proxy): its path
 *      is used. A trailing '/' starts no segment ("/a/" has one); an empty
 *      segment among those used ("/a//b" with 2) is an error.
 *   4. HEADER: the first header of that name is used. Its value keeps its
 *      case (only host names are case-insensitive).
 * Messages quote what the client sent, with bytes outside printable ASCII
 * as \xNN and long values cut, since they go back to the client.
 */
#include <string.h>

#include "dtab.h"

/* Longest text of the request quoted in a message (longer is cut, "..."). */
#define QUOTE_MAX 96
#define QBUF      (QUOTE_MAX + 8)

/* [A-Za-z0-9] and "_:.#$%-": the bytes of a name segment (as in dtab.c). */
static bool is_seg_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
    case '_':
    case ':':
    case '.':
    case '#':
    case '$':
    case '%':
    case '-':
        return true;
    default:
        return false;
    }
}

static bool is_seg(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_seg_char((unsigned char)s[i]))
            return false;
    return true;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* len bytes of s for a message, in dst (QBUF bytes): printable ASCII as is,
 * other bytes as \xNN, cut with "..." past QUOTE_MAX. Returns dst. */
static const char *quote(char *dst, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o >= QUOTE_MAX) {
            memcpy(dst + o, "...", 4);
            return dst;
        }
        if (c >= 0x20 && c < 0x7f) {
            dst[o++] = (char)c;
        } else {
            static const char hex[] = "0123456789abcdef";
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    dst[o] = '\0';
    return dst;
}

/* Trims spaces and tabs at both ends of *s (*n bytes). */
static void trim_ows(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* out = dst_prefix followed by tail (n bytes: "" or a path "/..."),
 * lowercased if lower; what names the part of the request for a message. */
static int make_name(const ag__ident *id, const char *tail, size_t n, bool lower, const char *what,
                     ag_buf *out, ag_errbuf *err)
{
    size_t plen = strlen(id->dst_prefix);
    if (plen == 1 && n > 0)
        plen = 0; /* "/" followed by "/x" is "/x" */
    if (plen + n > AG__PATH_MAX)
        return ag_errbuf_set(err, AG_E_MESH_ROUTE, "%s makes a name longer than %d bytes", what,
                             AG__PATH_MAX);
    ag_buf_reset(out);
    int rc = ag_buf_append(out, id->dst_prefix, plen);
    if (rc == 0)
        rc = ag_buf_append(out, tail, n);
    if (rc == AG_E_TOO_LARGE)
        return ag_errbuf_set(err, rc, "name of %zu bytes is longer than the buffer's %zu", plen + n,
                             out->max);
    if (rc < 0)
        return ag_errbuf_set(err, rc, "out of memory");
    if (lower)
        for (size_t i = plen; i < out->len; i++)
            out->data[i] = (uint8_t)ascii_lower((char)out->data[i]);
    return 0;
}

/* The authority's host, port stripped (choice 2), as a name segment. */
static int name_authority(const ag__ident *id, const ag__req_view *r, ag_buf *out, ag_errbuf *err)
{
    char q[QBUF], tail[AG__PATH_MAX + 2];
    const char *a = r->authority;
    size_t n = a ? strlen(a) : 0;
    trim_ows(&a, &n);
    if (n == 0)
        return ag_errbuf_set(err, AG_E_MESH_ROUTE, "no authority (:authority or Host header)");
    const char *host = a, *port = NULL;
    size_t hlen = n;
    bool ok = true;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', n);
        ok = close != NULL;
        if (ok) {
            host = a + 1;
            hlen = (size_t)(close - host);
            port = close + 1;
            ok = port == a + n || *port == ':';
        }
    } else {
        const char *colon = memchr(a, ':', n);
        if (colon && !memchr(colon + 1, ':', (size_t)(a + n - colon - 1))) {
            hlen = (size_t)(colon - a);
            port = colon;
        }
    }
    if (ok && port && port < a + n)
        for (const char *p = port + 1; p < a + n; p++)
            if (*p < '0' || *p > '9')
                return ag_errbuf_set(err, AG_E_MESH_ROUTE, "authority '%s' has an invalid port",
                                     quote(q, a, n));
    if (!ok || !is_seg(host, hlen))
        return ag_errbuf_set(err, AG_E_MESH_ROUTE, "authority '%s' is not a valid name segment",
                             quote(q, a, n));
    if (hlen > AG__PATH_MAX)
        return ag_errbuf_set(err, AG_E_MESH_ROUTE,
                             "authority '%s' makes a name longer than %d bytes", quote(q, a, n),
                             AG__PATH_MAX);
    tail[0] = '/';
    memcpy(tail + 1, host, hlen);
    return make_name(id, tail, hlen + 1, true, "the authority", out, err);
}

/* The first id->segments segments of the request path (choice 3). */
static int name_path(const ag__ident *id, const ag__req_view *r, ag_buf *out, ag_errbuf *err)
{
    char q[QBUF];
    const char *p = r->path;
    if (!p || !*p)
        return ag_errbuf_set(err, AG_E_MESH_ROUTE, "no request path");
    size_t n = strcspn(p, "?#"); /* query and fragment dropped */
    if (p[0] != '/') {
        /* absolute form: scheme "://" authority path */
        const char *sep = strstr(p, "://");
        if (!sep || (size_t)(sep - p) >= n)
            return ag_errbuf_set(err, AG_E_MESH_ROUTE, "path '%s' does not start with '/'",
                                 quote(q, p, strlen(p)));
        const char *auth = sep + 3;
        const char *slash = memchr(auth, '/', n - (size_t)(auth - p));
        n = slash ? n - (size_t)(slash - p) : 1;
        p = slash ? slash : "/";
    }
    size_t end = 0; /* end of the segments taken so far */
    for (unsigned k = 1; k <= id->segments; k++) {
        size_t start = end + 1, e = start;
        while (e < n && p[e] != '/')
            e++;
        if (start >= n)
            return ag_errbuf_set(err, AG_E_MESH_ROUTE, "path '%s' has fewer than %u segment%s",
                                 quote(q, p, n), id->segments, id->segments == 1 ? "" : "s");
        if (e == start)
            return ag_errbuf_set(err, AG_E_MESH_ROUTE, "segment %u of path '%s' is empty", k,
                                 quote(q, p, n));
        if (!is_seg(p + start, e - start))
            return ag_errbuf_set(err, AG_E_MESH_ROUTE,
                                 "segment %u of path '%s' is not a valid name segment", k,
                                 quote(q, p, n));
        end = e;
    }
    return make_name(id, p, end, false, "the path", out, err);
}

static bool name_eq_nocase(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (; i < alen && b[i]; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return i == alen && b[i] == '\0';
}

/* The value of header id->header: one segment, or a path (choice 4). */
static int name_header(const ag__ident *id, const ag__req_view *r, ag_buf *out, ag_errbuf *err)
{
    char q[QBUF];
    const ag__hdr *h = NULL;
    for (size_t i = 0; i < r->nhdrs && !h; i++)
        if (name_eq_nocase(r->hdrs[i].name, r->hdrs[i].name_len, id->header))
            h = &r->hdrs[i];
    if (!h)
        return ag_errbuf_set(err, AG_E_MESH_ROUTE, "no header '%s'", id->header);
    const char *v = h->value;
    size_t n = h->value_len;
    trim_ows(&v, &n);
    if (n > 0 && v[0] == '/') {
        if (ag__path_check(v, n, false, NULL) < 0)
            return ag_errbuf_set(err, AG_E_MESH_ROUTE, "header '%s' value '%s' is not a valid path",
                                 id->header, quote(q, v, n));
        return make_name(id, v, n == 1 ? 0 : n, false, "the header", out, err);
    }
    if (!is_seg(v, n))
        return ag_errbuf_set(err, AG_E_MESH_ROUTE,
                             "header '%s' value '%s' is not a valid name segment", id->header,
                             quote(q, v, n));
    if (n > AG__PATH_MAX)
        return ag_errbuf_set(err, AG_E_MESH_ROUTE, "header '%s' makes a name longer than %d bytes",
                             id->header, AG__PATH_MAX);
    char tail[AG__PATH_MAX + 2];
    tail[0] = '/';
    memcpy(tail + 1, v, n);
    return make_name(id, tail, n + 1, false, "the header", out, err);
}

void ag__ident_init(ag__ident *id)
{
    memset(id, 0, sizeof(*id));
    id->kind = AG__IDENT_AUTHORITY;
    memcpy(id->dst_prefix, "/svc", sizeof("/svc"));
    id->segments = 1;
}

int ag__ident_name(const ag__ident *id, const ag__req_view *r, ag_buf *out, ag_errbuf *err)
{
    ag_errbuf scratch;
    if (!err)
        err = &scratch;
    /* the identifier itself comes from the config: a bad one is the
     * caller's error, not the request's */
    size_t plen = strnlen(id->dst_prefix, sizeof(id->dst_prefix));
    if (plen == sizeof(id->dst_prefix) || ag__path_check(id->dst_prefix, plen, false, NULL) < 0)
        return ag_errbuf_set(err, AG_E_INVAL, "identifier's dst_prefix is not a valid path");
    switch (id->kind) {
    case AG__IDENT_AUTHORITY:
        return name_authority(id, r, out, err);
    case AG__IDENT_PATH:
        if (id->segments == 0)
            return ag_errbuf_set(err, AG_E_INVAL, "identifier's segments must be >= 1");
        return name_path(id, r, out, err);
    case AG__IDENT_HEADER:
        if (strnlen(id->header, sizeof(id->header)) == sizeof(id->header) || !id->header[0])
            return ag_errbuf_set(err, AG_E_INVAL, "identifier's header is not set");
        return name_header(id, r, out, err);
    }
    return ag_errbuf_set(err, AG_E_INVAL, "unknown identifier kind %d", (int)id->kind);
}
