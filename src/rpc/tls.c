/*
 * TLS for rpc connections over OpenSSL memory BIOs (see tls.h for the
 * policy). No I/O but reading the PEM files when a context is built.
 *
 * A connection's life: ag__tls_new, then the handshake (a client calls
 * ag__tls_handshake once to produce its ClientHello; after that, every
 * batch of bytes fed is followed by ag__tls_handshake until it returns 1),
 * then records both ways with ag__tls_read / ag__tls_write, every step
 * followed by ag__tls_take_output, since any of them may have produced
 * bytes for the peer (handshake messages, alerts, key updates).
 *
 * Errors: OpenSSL keeps its error queue per thread; every operation here
 * clears it first, takes the first entry (the root cause) for the message
 * and clears it again, so nothing stale reaches another connection on the
 * same loop thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include "tls.h"

/* A PEM file larger than this is not a certificate chain or a key. */
#define PEM_MAX (1u << 20)
/* TLS 1.2 suites HTTP/2 allows (RFC 9113 9.2.2: ephemeral key exchange,
 * AEAD); TLS 1.3's suites all qualify and keep OpenSSL's default order. */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

struct ag__tls_ctx {
    SSL_CTX *ssl;
    bool server;
    bool http11;            /* ALPN http/1.1 instead of h2 */
    char sni[256];          /* client: the SNI name; "" when the name is an IP address */
};

struct ag__tls {
    SSL *ssl;               /* owns both BIOs */
    BIO *in;                /* ciphertext from the peer: the SSL's read BIO */
    BIO *out;               /* ciphertext for the peer: the SSL's write BIO */
    bool server;
    bool done;              /* the handshake is complete */
    bool alpn_refused;      /* server: the client offered protocols, h2 not among them */
    bool http11;            /* the context's ALPN is http/1.1 */
    char *identity;         /* server: the verified client certificate's name */
    ag_errbuf err;
};

/* The first error in OpenSSL's queue (its root cause), as text. */
static const char *ossl_reason(void)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown OpenSSL error";
}

static int file_error(ag_errbuf *err, const char *path, int errnum)
{
    return ag_errbuf_set(err, ag_err_from_errno(errnum), "%s: %s", path,
                         uv_strerror(uv_translate_sys_error(errnum)));
}

/* ---- PEM files ------------------------------------------------------------------ */

/* Reads a whole file (at most PEM_MAX bytes) into out. */
static int read_file(const char *path, ag_buf *out, ag_errbuf *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return file_error(err, path, errno);
    int rc = 0;
    for (;;) {
        size_t room = AG_MIN(out->max - out->len, (size_t)16384);
        if (room == 0) {
            char probe;
            ssize_t n = read(fd, &probe, 1);
            if (n != 0) {
                rc = n < 0 ? file_error(err, path, errno)
                           : ag_errbuf_set(err, AG_E_TOO_LARGE,
                                           "%s: larger than %u KiB: not a PEM file", path,
                                           PEM_MAX >> 10);
            }
            break;
        }
        rc = ag_buf_reserve(out, room);
        if (rc < 0) {
            rc = ag_errbuf_set(err, rc, "%s: %s", path, ag_strerror(rc));
            break;
        }
        ssize_t n = read(fd, out->data + out->len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = file_error(err, path, errno);
            break;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
        out->data[out->len] = '\0';
    }
    close(fd);
    return rc;
}

/* A read-only BIO over a file's bytes, which must outlive it. */
static BIO *pem_bio(const ag_buf *b)
{
    static const char empty[1];
    return BIO_new_mem_buf(b->data ? (const void *)b->data : empty, (int)b->len);
}

/* Every certificate in a PEM file, in order (at least one). */
static int load_certs(const char *path, STACK_OF(X509) **out, ag_errbuf *err)
{
    *out = NULL;
    ag_buf b;
    ag_buf_init(&b, PEM_MAX);
    int rc = read_file(path, &b, err);
    if (rc < 0)
        goto free_buf;
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *bio = pem_bio(&b);
    if (!sk || !bio) {
        rc = ag_errbuf_set(err, AG_E_NOMEM, "%s: out of memory", path);
        goto free_stack;
    }
    ERR_clear_error();
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(sk, x) <= 0) {
            X509_free(x);
            rc = ag_errbuf_set(err, AG_E_NOMEM, "%s: out of memory", path);
            goto free_stack;
        }
    }
    /* the loop ends at the end of the file ("no start line") or at a
     * block that does not decode */
    unsigned long e = ERR_peek_last_error();
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        rc = ag_errbuf_set(err, AG_E_RPC_TLS, "%s: bad certificate: %s", path, ossl_reason());
        goto free_stack;
    }
    if (sk_X509_num(sk) == 0) {
        rc = ag_errbuf_set(err, AG_E_RPC_TLS,
                           "%s: no certificate in the file (expected PEM 'BEGIN CERTIFICATE')",
                           path);
        goto free_stack;
    }
    *out = sk;
    sk = NULL;
free_stack:
    BIO_free(bio);
    sk_X509_pop_free(sk, X509_free);
    ERR_clear_error();
free_buf:
    ag_buf_cleanup(&b);
    return rc;
}

/* Encrypted keys are refused rather than prompted for: a daemon has no
 * terminal to ask on. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int load_key(const char *path, EVP_PKEY **out, ag_errbuf *err)
{
    *out = NULL;
    ag_buf b;
    ag_buf_init(&b, PEM_MAX);
    b.secret = true; /* the key's bytes are wiped with the buffer */
    int rc = read_file(path, &b, err);
    if (rc < 0)
        goto free_buf;
    BIO *bio = pem_bio(&b);
    if (!bio) {
        rc = ag_errbuf_set(err, AG_E_NOMEM, "%s: out of memory", path);
        goto free_buf;
    }
    ERR_clear_error();
    *out = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (!*out) {
        const char *text = b.data ? (const char *)b.data : "";
        if (strstr(text, "ENCRYPTED"))
            rc = ag_errbuf_set(err, AG_E_RPC_TLS,
                               "%s: the key is encrypted (give an unencrypted key file)", path);
        else if (!strstr(text, "PRIVATE KEY-----"))
            rc = ag_errbuf_set(err, AG_E_RPC_TLS,
                               "%s: no private key in the file (expected PEM 'BEGIN PRIVATE "
                               "KEY')", path);
        else
            rc = ag_errbuf_set(err, AG_E_RPC_TLS, "%s: bad private key: %s", path,
                               ossl_reason());
    }
    BIO_free(bio);
    ERR_clear_error();
free_buf:
    ag_buf_cleanup(&b);
    return rc;
}

/* The certificate chain and its key, checked against each other. */
static int use_cert_and_key(SSL_CTX *s, const char *cert_file, const char *key_file,
                            ag_errbuf *err)
{
    STACK_OF(X509) *chain;
    EVP_PKEY *key = NULL;
    int rc = load_certs(cert_file, &chain, err);
    if (rc < 0)
        return rc;
    rc = load_key(key_file, &key, err);
    if (rc < 0)
        goto free_chain;
    X509 *leaf = sk_X509_value(chain, 0);
    if (X509_check_private_key(leaf, key) != 1) {
        rc = ag_errbuf_set(err, AG_E_RPC_TLS,
                           "%s: key does not match certificate (key from %s)", cert_file,
                           key_file);
        goto free_key;
    }
    if (SSL_CTX_use_certificate(s, leaf) != 1 || SSL_CTX_use_PrivateKey(s, key) != 1) {
        rc = ag_errbuf_set(err, AG_E_RPC_TLS, "%s: %s", cert_file, ossl_reason());
        goto free_key;
    }
    for (int i = 1; i < sk_X509_num(chain); i++) {
        if (SSL_CTX_add1_chain_cert(s, sk_X509_value(chain, i)) != 1) {
            rc = ag_errbuf_set(err, AG_E_RPC_TLS, "%s: certificate %d: %s", cert_file, i + 1,
                               ossl_reason());
            goto free_key;
        }
    }
free_key:
    EVP_PKEY_free(key);
free_chain:
    sk_X509_pop_free(chain, X509_free);
    ERR_clear_error();
    return rc;
}

/* The CAs to verify the peer against; a server also names them to its
 * clients (CertificateRequest's certificate_authorities). */
static int use_ca(SSL_CTX *s, bool server, const char *ca_file, ag_errbuf *err)
{
    STACK_OF(X509) *cas;
    int rc = load_certs(ca_file, &cas, err);
    if (rc < 0)
        return rc;
    X509_STORE *store = SSL_CTX_get_cert_store(s);
    for (int i = 0; i < sk_X509_num(cas) && rc == 0; i++) {
        X509 *x = sk_X509_value(cas, i);
        if (X509_STORE_add_cert(store, x) != 1 || (server && SSL_CTX_add_client_CA(s, x) != 1))
            rc = ag_errbuf_set(err, AG_E_RPC_TLS, "%s: certificate %d: %s", ca_file, i + 1,
                               ossl_reason());
    }
    sk_X509_pop_free(cas, X509_free);
    ERR_clear_error();
    return rc;
}

/* ---- contexts -------------------------------------------------------------------- */

/* Server: picks h2 from the client's ALPN list, or refuses the handshake
 * (no_application_protocol alert). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    const ag__tls_ctx *ctx = arg;
    const char *want = ctx->http11 ? "http/1.1" : "h2";
    size_t wl = strlen(want);
    for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
        unsigned len = in[i];
        if (i + 1 + len > inlen)
            break;
        if (len == wl && memcmp(in + i + 1, want, wl) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)wl;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    if (ctx->http11)
        return SSL_TLSEXT_ERR_NOACK;   /* HTTP/1.1 needs no ALPN */
    ag__tls *t = SSL_get_app_data(ssl);
    if (t)
        t->alpn_refused = true;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int set_policy(ag__tls_ctx *ctx, ag_errbuf *err)
{
    SSL_CTX *s = ctx->ssl;
    if (SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(s, TLS12_CIPHERS) != 1)
        return ag_errbuf_set(err, AG_E_RPC_TLS, "TLS: cannot set the protocol policy: %s",
                             ossl_reason());
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
    /* every connection is a full handshake: no session state to keep,
     * and a peer's identity always comes from a certificate verified now */
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    /* the chain sent is the certificate file's, not one OpenSSL would
     * build from the CAs trusted for the peer */
    SSL_CTX_set_mode(s, SSL_MODE_NO_AUTO_CHAIN);
    if (ctx->server) {
        SSL_CTX_set_num_tickets(s, 0);
        SSL_CTX_set_alpn_select_cb(s, alpn_select, ctx);
    } else if (ctx->http11 ? SSL_CTX_set_alpn_protos(s, (const unsigned char *)"\x08http/1.1", 9)
                           : SSL_CTX_set_alpn_protos(s, (const unsigned char *)"\x02h2", 3)) {
        return ag_errbuf_set(err, AG_E_NOMEM, "TLS: out of memory");
    }
    return 0;
}

/* Client: the name the server's certificate must carry. */
static int set_server_name(ag__tls_ctx *ctx, const char *name, ag_errbuf *err)
{
    if (!name || !name[0] || strlen(name) >= sizeof(ctx->sni))
        return ag_errbuf_set(err, AG_E_INVAL, "TLS: bad server name '%s'", name ? name : "");
    X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx->ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name)
                   : X509_VERIFY_PARAM_set1_host(vp, name, 0);
    if (ok != 1)
        return ag_errbuf_set(err, AG_E_RPC_TLS, "TLS: server name '%s': %s", name,
                             ossl_reason());
    if (!is_ip) /* SNI carries DNS names only (RFC 6066 3) */
        snprintf(ctx->sni, sizeof(ctx->sni), "%s", name);
    return 0;
}

static int configure(ag__tls_ctx *ctx, const ag__tls_ctx_opts *o, ag_errbuf *err)
{
    int rc = set_policy(ctx, err);
    if (rc == 0 && o->cert_file)
        rc = use_cert_and_key(ctx->ssl, o->cert_file, o->key_file, err);
    if (rc == 0 && o->ca_file)
        rc = use_ca(ctx->ssl, o->server, o->ca_file, err);
    if (rc == 0 && !o->server && !o->ca_file &&
        SSL_CTX_set_default_verify_paths(ctx->ssl) != 1)
        rc = ag_errbuf_set(err, AG_E_RPC_TLS, "TLS: the system trust store: %s",
                           ossl_reason());
    if (rc == 0 && !o->server)
        rc = set_server_name(ctx, o->server_name, err);
    if (rc == 0 && (o->ca_file || !o->server))
        SSL_CTX_set_verify(ctx->ssl,
                           o->server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                     : SSL_VERIFY_PEER,
                           NULL);
    return rc;
}

int ag__tls_ctx_new(ag__tls_ctx **out, const ag__tls_ctx_opts *o, ag_errbuf *err)
{
    *out = NULL;
    if (o->server && (!o->cert_file || !o->key_file))
        return ag_errbuf_set(err, AG_E_INVAL,
                             "TLS: a server needs a certificate file and a key file");
    if (!o->cert_file != !o->key_file)
        return ag_errbuf_set(err, AG_E_INVAL,
                             "TLS: a client certificate file and a key file go together");
    ag__tls_ctx *ctx = ag_calloc(1, sizeof(*ctx));
    if (!ctx)
        return ag_errbuf_set(err, AG_E_NOMEM, "TLS: out of memory");
    ctx->server = o->server;
    if (o->alpn && strcmp(o->alpn, "http/1.1") == 0) {
        ctx->http11 = true;
    } else if (o->alpn && strcmp(o->alpn, "h2") != 0) {
        ag_free(ctx);
        return ag_errbuf_set(err, AG_E_INVAL, "TLS: ALPN must be h2 or http/1.1, not '%s'",
                             o->alpn);
    }
    ERR_clear_error();
    ctx->ssl = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
    if (!ctx->ssl) {
        int rc = ag_errbuf_set(err, AG_E_NOMEM, "TLS: cannot create a context: %s",
                               ossl_reason());
        ERR_clear_error();
        ag_free(ctx);
        return rc;
    }
    int rc = configure(ctx, o, err);
    ERR_clear_error();
    if (rc < 0) {
        ag__tls_ctx_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

void ag__tls_ctx_free(ag__tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl);
    ag_free(ctx);
}

/* ---- connections ------------------------------------------------------------------- */

ag__tls *ag__tls_new(const ag__tls_ctx *ctx)
{
    ag__tls *t = ag_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->server = ctx->server;
    t->http11 = ctx->http11;
    BIO *in = BIO_new(BIO_s_mem());
    BIO *out = BIO_new(BIO_s_mem());
    t->ssl = SSL_new(ctx->ssl);
    if (!in || !out || !t->ssl) {
        BIO_free(in);
        BIO_free(out);
        SSL_free(t->ssl);
        ag_free(t);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_mem_eof_return(in, -1); /* empty means "wait for more", not EOF */
    SSL_set_bio(t->ssl, in, out);
    t->in = in;
    t->out = out;
    SSL_set_app_data(t->ssl, t);
    if (t->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (ctx->sni[0] && SSL_set_tlsext_host_name(t->ssl, ctx->sni) != 1) {
            ag__tls_free(t);
            ERR_clear_error();
            return NULL;
        }
    }
    return t;
}

void ag__tls_free(ag__tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    ag_free(t->identity);
    ag_free(t);
}

/* Reasons that mean the bytes were not TLS at all. */
static bool not_tls(unsigned long e)
{
    if (ERR_GET_LIB(e) != ERR_LIB_SSL)
        return false;
    switch (ERR_GET_REASON(e)) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        return true;
    default:
        return false;
    }
}

/* Records why an SSL operation failed (sslerr: SSL_get_error's answer)
 * and clears OpenSSL's queue. */
static int ssl_failed(ag__tls *t, int sslerr)
{
    unsigned long e = ERR_peek_error();
    int rc;
    if (t->alpn_refused) {
        rc = ag_errbuf_set(&t->err, AG_E_RPC_TLS, "the client does not offer HTTP/2 (ALPN h2)");
    } else if (e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
               ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        rc = ag_errbuf_set(&t->err, AG_E_RPC_TLS, "%s: %s", ossl_reason(),
                           X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
    } else if (e && !t->done && not_tls(e)) {
        rc = ag_errbuf_set(&t->err, AG_E_RPC_TLS, "%s (the peer does not speak TLS?)",
                           ossl_reason());
    } else if (e) {
        rc = ag_errbuf_set(&t->err, AG_E_RPC_TLS, "%s", ossl_reason());
    } else if (sslerr == SSL_ERROR_ZERO_RETURN) {
        rc = ag_errbuf_set(&t->err, AG_E_CLOSED, "the peer closed the connection");
    } else {
        rc = ag_errbuf_set(&t->err, AG_E_RPC_TLS, "TLS failure (SSL error %d)", sslerr);
    }
    ERR_clear_error();
    return rc;
}

int ag__tls_feed(ag__tls *t, const uint8_t *data, size_t len)
{
    while (len > 0) {
        int n = BIO_write(t->in, data, (int)AG_MIN(len, (size_t)INT_MAX));
        if (n <= 0) {
            ERR_clear_error();
            return ag_errbuf_set(&t->err, AG_E_NOMEM, "out of memory");
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A name from a certificate: a copy in *out (ag_free), or nothing when it
 * is empty or holds a NUL byte (a name that could read as another). */
static int copy_name(const unsigned char *p, int len, char **out)
{
    if (len <= 0 || memchr(p, 0, (size_t)len))
        return 0;
    *out = ag_strndup((const char *)p, (size_t)len);
    return *out ? 0 : AG_E_NOMEM;
}

/* Server: the verified client certificate's name: the last subject CN, or
 * else the first DNS subjectAltName. */
static int set_identity(ag__tls *t)
{
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (!x || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return 0;
    X509_NAME *subj = X509_get_subject_name(x);
    int last = -1, rc = 0;
    for (int i = -1; (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0;)
        last = i;
    if (last >= 0) {
        unsigned char *u = NULL;
        ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, last));
        int len = ASN1_STRING_to_UTF8(&u, cn);
        rc = copy_name(u, len, &t->identity);
        OPENSSL_free(u);
    }
    if (rc == 0 && !t->identity) {
        GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        for (int i = 0; i < sk_GENERAL_NAME_num(sans) && rc == 0 && !t->identity; i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
            if (g->type == GEN_DNS)
                rc = copy_name(ASN1_STRING_get0_data(g->d.dNSName),
                               ASN1_STRING_length(g->d.dNSName), &t->identity);
        }
        GENERAL_NAMES_free(sans);
    }
    ERR_clear_error();
    return rc < 0 ? ag_errbuf_set(&t->err, rc, "out of memory") : 0;
}

int ag__tls_handshake(ag__tls *t)
{
    if (t->done)
        return 1;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 0;
        return ssl_failed(t, e);
    }
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    if (t->http11) {
        if (n != 0 && (n != 8 || memcmp(p, "http/1.1", 8) != 0))
            return ag_errbuf_set(&t->err, AG_E_RPC_TLS,
                                 "the peer selected a protocol other than http/1.1");
    } else if (n != 2 || memcmp(p, "h2", 2) != 0)
        return ag_errbuf_set(&t->err, AG_E_RPC_TLS,
                             t->server ? "the client does not offer HTTP/2 (ALPN h2)"
                                       : "the server did not select HTTP/2 (ALPN h2)");
    if (t->server) {
        int rc = set_identity(t);
        if (rc < 0)
            return rc;
    }
    t->done = true;
    return 1;
}

bool ag__tls_handshake_done(const ag__tls *t)
{
    return t->done;
}

ssize_t ag__tls_read(ag__tls *t, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    ERR_clear_error();
    int r = SSL_read_ex(t->ssl, buf, cap, &n);
    if (r == 1)
        return (ssize_t)n;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return ag_errbuf_set(&t->err, AG_E_CLOSED, "the peer closed the connection");
    }
    return ssl_failed(t, e);
}

int ag__tls_write(ag__tls *t, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    size_t n = 0;
    ERR_clear_error();
    int r = SSL_write_ex(t->ssl, data, len, &n);
    if (r == 1 && n == len)
        return 0;
    return ssl_failed(t, SSL_get_error(t->ssl, r));
}

int ag__tls_take_output(ag__tls *t, ag_buf *out)
{
    size_t n = BIO_ctrl_pending(t->out);
    if (n == 0)
        return 0;
    int rc = ag_buf_reserve(out, n);
    if (rc < 0)
        return rc; /* the bytes stay in the BIO */
    size_t got = 0;
    if (BIO_read_ex(t->out, out->data + out->len, n, &got) != 1)
        got = 0;
    out->len += got;
    out->data[out->len] = '\0';
    ERR_clear_error();
    return 0;
}

void ag__tls_shutdown(ag__tls *t)
{
    if (!t->done)
        return;
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
}

const char *ag__tls_peer_identity(const ag__tls *t)
{
    return t->identity;
}

const char *ag__tls_version(const ag__tls *t)
{
    return SSL_get_version(t->ssl);
}

const char *ag__tls_errmsg(const ag__tls *t)
{
    return t->err.msg;
}
