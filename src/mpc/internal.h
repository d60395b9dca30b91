/*
 * What the mpc sources share: ring kernels over both fields, the AES-CTR
 * PRG, the session's state and the Beaver dealer.
 */
#ifndef ARGOT_MPC_INTERNAL_H
#define ARGOT_MPC_INTERNAL_H

#include <openssl/evp.h>

#include "argot/mpc.h"

/* ---- ring kernels (ring.c): n elements of field f, untyped pointers ---- */

void ag__ring_add(ag_field f, size_t n, void *dst, const void *a, const void *b);
void ag__ring_sub(ag_field f, size_t n, void *dst, const void *a, const void *b);
void ag__ring_neg(ag_field f, size_t n, void *dst, const void *a);
void ag__ring_mul(ag_field f, size_t n, void *dst, const void *a, const void *b);
/* dst += a */
void ag__ring_add_inplace(ag_field f, size_t n, void *dst, const void *a);
/* arithmetic (sign-preserving) shift right */
void ag__ring_arshift(ag_field f, size_t n, void *dst, const void *a, unsigned bits);
/* dst (m x n) = a (m x k) * b (k x n); dst must not alias a or b */
void ag__ring_matmul(ag_field f, size_t m, size_t k, size_t n, void *dst, const void *a,
                     const void *b);

/* ---- PRG (prg.c): AES-128 in counter mode ---------------------------- */

/* A keyed stream; every fill consumes whole 16-byte blocks, so two parties
 * holding the same key and making the same calls stay in step. */
typedef struct ag__prg {
    EVP_CIPHER_CTX *ctx;
    uint8_t key[16];
    uint64_t ctr; /* next block */
} ag__prg;

int ag__prg_init(ag__prg *p, const uint8_t key[16]);
void ag__prg_cleanup(ag__prg *p);
/* n pseudorandom bytes into out. */
int ag__prg_fill(ag__prg *p, void *out, size_t n);

/* ---- session ----------------------------------------------------------- */

struct ag_mpc {
    ag_link *link;
    ag_field field;
    unsigned fxp_bits;
    unsigned rank;
    unsigned n;
    bool ready;            /* ag_mpc_setup succeeded */
    uint64_t op;           /* operations issued: the link tag of the next */
    ag__prg prss_next;     /* seed shared with rank + 1 */
    ag__prg prss_prev;     /* seed shared with rank - 1 */
    ag__prg dealer_self;   /* this party's dealer stream */
    ag__prg *dealer_all;   /* rank 0 only: every party's dealer stream */
    ag_errbuf err;
};

/* Records an error "<op>: <message>" in the session; returns code. */
int ag__mpc_fail(ag_mpc *m, int code, const char *op, const char *fmt, ...) AG_PRINTF(4, 5);
/* Adopts the link's last error message for op; returns code. */
int ag__mpc_link_fail(ag_mpc *m, int code, const char *op);
/* A fresh tag for the next collective operation. */
uint64_t ag__mpc_tag(ag_mpc *m);
/* Fills dst (n elements) with this party's share of zero. */
int ag__mpc_zero_share(ag_mpc *m, size_t n, void *dst);
/* Sends mine (bytes) to every peer and adds every peer's to sum (which may
 * be mine): the sum over all parties. One round. */
int ag__mpc_open(ag_mpc *m, const char *op, uint64_t tag, const void *mine, void *sum,
                 size_t n_elems);

/* ---- Beaver dealer (beaver.c) ---------------------------------------- */

/* This party's shares of n triples c = a * b (a, b, c of n elements). */
int ag__beaver_mul(ag_mpc *m, size_t n, void *a, void *b, void *c);
/* Shares of a square pair b = a * a. */
int ag__beaver_square(ag_mpc *m, size_t n, void *a, void *b);
/* Matrix triple: a (mm x k), b (k x nn), c = a * b (mm x nn). */
int ag__beaver_matmul(ag_mpc *m, size_t mm, size_t k, size_t nn, void *a, void *b, void *c);
/* Truncation pairs: r and rt = r >> bits (arithmetic), n elements each. */
int ag__beaver_trunc(ag_mpc *m, size_t n, unsigned bits, void *r, void *rt);

#endif /* ARGOT_MPC_INTERNAL_H */
