/*
 * A deployment's certificates (rpc.h, ag_rpc_pki_*): a CA the parties
 * agree on, and per party a key and a certificate naming the party, good
 * for serving and for connecting (mutual TLS between parties). ECDSA P-256
 * and SHA-256, through OpenSSL 3. Keys are written with mode 0600.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argot/rpc.h"

static int ossl_err(char *err, size_t cap, const char *what)
{
    char buf[200];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    snprintf(err, cap, "%s: %s", what, e ? buf : "failed");
    return AG_E_RPC_TLS;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    int ok = e && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

/* A new certificate for key, subject CN cn, issued by (icert, ikey) or
 * self-signed when icert is NULL. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *icert,
                       EVP_PKEY *ikey, unsigned days)
{
    X509 *x = X509_new();
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    if (!x || ag_random_bytes(serial, sizeof(serial)) < 0)
        goto fail;
    serial[0] &= 0x7f; /* positive */
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto fail;
    X509_set_version(x, X509_VERSION_3);
    X509_gmtime_adj(X509_getm_notBefore(x), -300);
    X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"argot", -1,
                                    -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0))
        goto fail;
    X509 *issuer = icert ? icert : x;
    X509_set_issuer_name(x, X509_get_subject_name(issuer));
    int rc = add_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (rc == 0)
        rc = add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    if (icert) {
        if (rc == 0)
            rc = add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
        if (rc == 0)
            rc = add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
        if (rc == 0)
            rc = add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth");
        if (rc == 0)
            rc = add_ext(x, issuer, NID_subject_alt_name, san);
    } else {
        if (rc == 0)
            rc = add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
        if (rc == 0)
            rc = add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    if (rc < 0 || X509_sign(x, icert ? ikey : key, EVP_sha256()) <= 0)
        goto fail;
    BN_free(bn);
    return x;
fail:
    BN_free(bn);
    X509_free(x);
    return NULL;
}

/* Writes a PEM file (a key: mode 0600, never over an existing file). */
static int write_pem(const char *path, X509 *cert, EVP_PKEY *key, char *err, size_t cap)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, key ? 0600 : 0644);
    if (fd < 0) {
        snprintf(err, cap, "%s: %s", path, errno == EEXIST ? "already exists (not overwritten)"
                                                           : strerror(errno));
        return errno == EEXIST ? AG_E_EXISTS : AG_E_IO;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return AG_E_IO;
    }
    int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_X509(f, cert);
    if (fclose(f) != 0 || ok != 1) {
        unlink(path);
        snprintf(err, cap, "%s: cannot write", path);
        return AG_E_IO;
    }
    return 0;
}

static void join(char *out, size_t cap, const char *dir, const char *name, const char *ext)
{
    snprintf(out, cap, "%s/%s%s", dir, name, ext);
}

int ag_rpc_pki_init(const char *dir, const char *name, unsigned days, char *err, size_t cap)
{
    char crt[1024], key[1024];
    join(crt, sizeof(crt), dir, "ca", ".crt");
    join(key, sizeof(key), dir, "ca", ".key");
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, cap, "%s: %s", dir, strerror(errno));
        return AG_E_IO;
    }
    if (access(crt, F_OK) == 0 || access(key, F_OK) == 0) {
        snprintf(err, cap, "%s: a CA is already there (ca.crt or ca.key exists)", dir);
        return AG_E_EXISTS;
    }
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (!k)
        return ossl_err(err, cap, "CA key");
    X509 *x = make_cert(k, name && *name ? name : "argot CA", NULL, NULL, NULL,
                        days ? days : 3650);
    int rc = x ? write_pem(key, NULL, k, err, cap) : ossl_err(err, cap, "CA certificate");
    if (rc == 0 && (rc = write_pem(crt, x, NULL, err, cap)) < 0)
        unlink(key);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

static bool party_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n < 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n &&
           s[0] != '-';
}

int ag_rpc_pki_issue(const char *dir, const char *party, const char *extra_san, unsigned days,
                     char *err, size_t cap)
{
    if (!party_name_ok(party)) {
        snprintf(err, cap, "'%s': a party name for a certificate is lowercase letters, digits "
                 "and -", party);
        return AG_E_INVAL;
    }
    char cacrt[1024], cakey[1024], crt[1024], key[1024], san[1024];
    join(cacrt, sizeof(cacrt), dir, "ca", ".crt");
    join(cakey, sizeof(cakey), dir, "ca", ".key");
    join(crt, sizeof(crt), dir, party, ".crt");
    join(key, sizeof(key), dir, party, ".key");
    snprintf(san, sizeof(san), "DNS:%s%s%s", party, extra_san && *extra_san ? "," : "",
             extra_san ? extra_san : "");
    FILE *f = fopen(cacrt, "r");
    X509 *ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    f = fopen(cakey, "r");
    EVP_PKEY *cak = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    int rc = 0;
    if (!ca || !cak) {
        snprintf(err, cap, "%s: no readable CA (ca.crt and ca.key; make one with 'argot ca "
                 "init')", dir);
        rc = AG_E_NOENT;
    }
    EVP_PKEY *k = rc == 0 ? EVP_EC_gen("P-256") : NULL;
    if (rc == 0 && !k)
        rc = ossl_err(err, cap, "party key");
    X509 *x = rc == 0 ? make_cert(k, party, san, ca, cak, days ? days : 825) : NULL;
    if (rc == 0 && !x)
        rc = ossl_err(err, cap, extra_san && *extra_san ? "certificate (check --san: "
                                                          "DNS:name or IP:address, comma-separated)"
                                                        : "certificate");
    if (rc == 0)
        rc = write_pem(key, NULL, k, err, cap);
    if (rc == 0 && (rc = write_pem(crt, x, NULL, err, cap)) < 0)
        unlink(key);
    X509_free(x);
    EVP_PKEY_free(k);
    X509_free(ca);
    EVP_PKEY_free(cak);
    return rc;
}
