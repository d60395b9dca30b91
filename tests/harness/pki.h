/*
 * A throwaway PKI for TLS tests, made with OpenSSL's API (ECDSA P-256
 * keys, SHA-256 signatures, valid from an hour ago for a day) and written
 * as PEM files into the test's temporary directory:
 *
 *   ca.crt                  "argot test CA" (self-signed)
 *   server.crt server.key   CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1,
 *                           serverAuth, issued by ca
 *   wrong.crt wrong.key     CN=other.example, SAN DNS:other.example, serverAuth, by ca
 *   alice.crt alice.key     CN=alice, clientAuth, by ca
 *   carol.crt carol.key     no CN, SAN DNS:carol.example, clientAuth, by ca
 *   ca2.crt                 "argot other CA" (self-signed)
 *   mallory.crt mallory.key CN=mallory, clientAuth, issued by ca2
 *   secret.key              alice's key, encrypted (passphrase "pw")
 */
#ifndef ARGOT_TEST_PKI_H
#define ARGOT_TEST_PKI_H

/* Writes the files above (once per test process); returns the directory. */
const char *ag_test_pki(void);

#endif /* ARGOT_TEST_PKI_H */
