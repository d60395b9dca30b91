/*
 * TLS for rpc connections (OpenSSL 3), as a core with no I/O like h2.h:
 * ciphertext from the socket goes in (ag__tls_feed), plaintext comes out
 * (ag__tls_read); plaintext from the HTTP/2 core goes in (ag__tls_write)
 * and ciphertext for the socket comes out (ag__tls_take_output). Between
 * them sit two OpenSSL memory BIOs, so the loop thread never blocks and
 * tests can wire a client to a server in memory.
 *
 * A context (ag__tls_ctx) holds what every connection of a server or a
 * channel shares: certificates, key, trust, the expected server name. It is
 * built once, from PEM files, and is read-only afterwards; connections
 * (ag__tls) are used by one thread at a time.
 *
 * Policy, for every connection: TLS 1.2 or 1.3 (1.3 preferred), TLS 1.2
 * only with ECDHE and AEAD ciphers (RFC 9113 9.2.2), no renegotiation, no
 * compression, ALPN "h2" offered by clients and required by servers (and
 * checked by clients), peer certificates verified against the context's
 * trust: a client always verifies the server, including its name; a server
 * given a CA requires and verifies a client certificate (mutual TLS).
 */
#ifndef ARGOT_RPC_TLS_H
#define ARGOT_RPC_TLS_H

#include "argot/base.h"

typedef struct ag__tls_ctx ag__tls_ctx;
typedef struct ag__tls ag__tls;

typedef struct ag__tls_ctx_opts {
    bool server;
    const char *cert_file;   /* PEM chain, leaf first (server: required; client: for mTLS) */
    const char *key_file;    /* PEM private key of the leaf (unencrypted) */
    const char *ca_file;     /* PEM CAs. Server: clients must present a certificate they
                              * issued (mTLS); NULL: no client certificates. Client: the
                              * server's issuers; NULL: the system's trust store */
    const char *server_name; /* client: the name the server's certificate must carry: a DNS
                              * name (also sent as SNI) or an IP address */
    const char *alpn;        /* NULL: "h2", offered by clients, required by servers (gRPC);
                              * "http/1.1": offered by clients; servers select it, or take a
                              * client that offers no protocol (the mesh's HTTP/1.1 routers) */
} ag__tls_ctx_opts;

/* Builds a context from PEM files. Returns 0 with *out set, or an error
 * with a message in err naming the file and the reason ("alice.key: no
 * such file or directory", "bob.crt: key does not match certificate (key
 * from bob.key)"): AG_E_NOENT / AG_E_PERM / ... for files that cannot be
 * read, AG_E_RPC_TLS for contents OpenSSL refuses, AG_E_INVAL for options
 * that do not fit together, AG_E_NOMEM. The options' strings are not kept. */
int ag__tls_ctx_new(ag__tls_ctx **out, const ag__tls_ctx_opts *o, ag_errbuf *err);
void ag__tls_ctx_free(ag__tls_ctx *ctx);

/* A connection's TLS state on ctx (which must outlive it); NULL on
 * allocation failure. */
ag__tls *ag__tls_new(const ag__tls_ctx *ctx);
void ag__tls_free(ag__tls *t);

/* Ciphertext from the peer (copied). 0 or AG_E_NOMEM. */
int ag__tls_feed(ag__tls *t, const uint8_t *data, size_t len);
/* Advances the handshake with what was fed: 1 once it is complete (ALPN
 * h2 agreed, the peer's certificate verified as the context asks), 0 while
 * it needs more bytes from the peer, or a negative code (message in
 * ag__tls_errmsg; an alert for the peer may wait in the output). A client
 * calls it once before any byte arrived, to produce its ClientHello. */
int ag__tls_handshake(ag__tls *t);
bool ag__tls_handshake_done(const ag__tls *t);
/* After the handshake: decrypts into buf. Returns the bytes written (> 0),
 * 0 when no whole record is waiting, AG_E_CLOSED when the peer sent
 * close_notify, or another negative code (message in ag__tls_errmsg). */
ssize_t ag__tls_read(ag__tls *t, uint8_t *buf, size_t cap);
/* After the handshake: encrypts len bytes into the output. 0 or a negative
 * code (message in ag__tls_errmsg). */
int ag__tls_write(ag__tls *t, const void *data, size_t len);
/* Appends every byte waiting for the peer (handshake messages, records,
 * alerts) to out. 0, or AG_E_TOO_LARGE / AG_E_NOMEM from out. */
int ag__tls_take_output(ag__tls *t, ag_buf *out);
/* Queues close_notify (after the handshake; otherwise nothing). */
void ag__tls_shutdown(ag__tls *t);

/* Server, after the handshake: the verified client certificate's identity
 * (its subject's CN, the last one if several, or else its first DNS
 * subjectAltName); NULL when the client sent none (no CA configured) or
 * the certificate names nobody. Client: NULL. Owned by t. */
const char *ag__tls_peer_identity(const ag__tls *t);
/* "TLSv1.3" etc., for logs. */
const char *ag__tls_version(const ag__tls *t);
/* Why the last call failed, without a prefix: "certificate verify failed:
 * hostname mismatch", "tlsv1 alert unknown ca". */
const char *ag__tls_errmsg(const ag__tls *t);

#endif /* ARGOT_RPC_TLS_H */
