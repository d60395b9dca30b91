/*
 * The tests' throwaway PKI (see pki.h): keys and certificates made with
 * OpenSSL's API, so the tests need no openssl binary. Everything here
 * allocates through OpenSSL, never ag_malloc, so it does not count in a
 * test's allocations (and failmalloc runs do not touch it).
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "test.h"

struct ent {
    EVP_PKEY *key;
    X509 *cert;
};

static void ossl_fail(int line, const char *what)
{
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    ag_test_fail(__FILE__, line, "pki: %s: %s", what, buf);
}

#define OSSL_CHECK(cond, what)                                                  \
    do {                                                                        \
        if (!(cond))                                                            \
            ossl_fail(__LINE__, (what));                                        \
    } while (0)

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    OSSL_CHECK(e, value);
    OSSL_CHECK(X509_add_ext(x, e, -1) == 1, value);
    X509_EXTENSION_free(e);
}

/* A key and a certificate for cn (NULL: no CN) with subjectAltName san
 * (NULL: none) and extendedKeyUsage eku (NULL: a CA), issued by issuer
 * (NULL: self-signed). */
static struct ent make(const char *cn, const char *san, const char *eku, const struct ent *issuer)
{
    static long serial = 1;
    struct ent e;
    e.key = EVP_EC_gen("P-256");
    OSSL_CHECK(e.key, "EC key");
    X509 *x = e.cert = X509_new();
    OSSL_CHECK(x, "X509_new");
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, e.key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"argot tests",
                               -1, -1, 0);
    if (cn)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0);
    X509 *icert = issuer ? issuer->cert : x;
    X509_set_issuer_name(x, X509_get_subject_name(icert));
    add_ext(x, icert, NID_subject_key_identifier, "hash");
    add_ext(x, icert, NID_authority_key_identifier, "keyid:always");
    if (eku) {
        add_ext(x, icert, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, icert, NID_key_usage, "critical,digitalSignature");
        add_ext(x, icert, NID_ext_key_usage, eku);
    } else {
        add_ext(x, icert, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, icert, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    if (san)
        add_ext(x, icert, NID_subject_alt_name, san);
    OSSL_CHECK(X509_sign(x, issuer ? issuer->key : e.key, EVP_sha256()) > 0, "X509_sign");
    return e;
}

static void write_pem(const char *name, const struct ent *e, bool cert, const char *pass)
{
    const char *path = ag_test_path(name);
    FILE *f = fopen(path, "w");
    if (!f)
        FAIL("pki: %s: cannot create", path);
    int ok = cert ? PEM_write_X509(f, e->cert)
                  : PEM_write_PrivateKey(f, e->key, pass ? EVP_aes_128_cbc() : NULL,
                                         (const unsigned char *)pass, pass ? (int)strlen(pass) : 0,
                                         NULL, NULL);
    OSSL_CHECK(ok == 1, name);
    fclose(f);
}

static void save(const char *base, const struct ent *e, bool with_key)
{
    char name[64];
    snprintf(name, sizeof(name), "%s.crt", base);
    write_pem(name, e, true, NULL);
    if (with_key) {
        snprintf(name, sizeof(name), "%s.key", base);
        write_pem(name, e, false, NULL);
    }
}

static void drop(struct ent *e)
{
    EVP_PKEY_free(e->key);
    X509_free(e->cert);
}

const char *ag_test_pki(void)
{
    static bool made;
    if (made)
        return ag_test_tmpdir();
    struct ent ca = make("argot test CA", NULL, NULL, NULL);
    struct ent ca2 = make("argot other CA", NULL, NULL, NULL);
    struct ent server =
        make("localhost", "DNS:localhost,IP:127.0.0.1,IP:::1", "serverAuth", &ca);
    struct ent wrong = make("other.example", "DNS:other.example", "serverAuth", &ca);
    struct ent alice = make("alice", NULL, "clientAuth", &ca);
    struct ent carol = make(NULL, "DNS:carol.example", "clientAuth", &ca);
    struct ent mallory = make("mallory", NULL, "clientAuth", &ca2);
    save("ca", &ca, false);
    save("ca2", &ca2, false);
    save("server", &server, true);
    save("wrong", &wrong, true);
    save("alice", &alice, true);
    save("carol", &carol, true);
    save("mallory", &mallory, true);
    write_pem("secret.key", &alice, false, "pw");
    drop(&ca);
    drop(&ca2);
    drop(&server);
    drop(&wrong);
    drop(&alice);
    drop(&carol);
    drop(&mallory);
    made = true;
    return ag_test_tmpdir();
}
