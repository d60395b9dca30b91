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
/* AND triples: XOR shares of n K-bit elements a, b and c = a & b. */
int ag__beaver_and(ag_mpc *m, size_t n, void *a, void *b, void *c);
/* Random bits: additive shares of n values r in {0, 1}; the low bits of
 * the shares are XOR shares of the same r. */
int ag__beaver_randbit(ag_mpc *m, size_t n, void *r);
/* n random ring values r: additive shares ra and XOR shares rb. */
int ag__beaver_rand_ab(ag_mpc *m, size_t n, void *ra, void *rb);

/* ---- boolean shares (boolean.c), shared with compare.c ----------------- */

/* Bitwise dst = a ^ b and dst = a & b over nbytes bytes; dst may be a or
 * b. */
void ag__bits_xor(size_t nbytes, void *dst, const void *a, const void *b);
void ag__bits_and(size_t nbytes, void *dst, const void *a, const void *b);

/* The visibilities a kernel accepts, as a mask. */
#define AG__VIS_OK(v) (1u << (v))
/* Starts a kernel: checks that no operand in[0..n_in) is out (and then
 * empties out, so it can be cleaned up on any failure), that the session
 * is set up, and that every operand is of the session's field, of a
 * visibility in vis_ok and of the same shape as in[0]. On failure records
 * "<op>: ..." and returns the error. */
int ag__mpc_begin(ag_mpc *m, const char *op, unsigned vis_ok, ag_tensor *out,
                  const ag_tensor *const *in, size_t n_in);
/* Allocates n_bufs zeroed buffers of bytes[i] each (all or none); frees
 * (and wipes) them. */
int ag__bufs_new(void **bufs, int n_bufs, const size_t *bytes);
void ag__bufs_free(void **bufs, int n_bufs, const size_t *bytes);
/* One round of ANDs on XOR-shared bit strings: z = x & y over nbytes bytes
 * with AND triples (one message per peer). z may be x or y. */
int ag__bool_and(ag_mpc *m, const char *op, size_t nbytes, const void *x, const void *y,
                 void *z);
/* The same in a caller's workspace of ag__bool_and_work_bytes(m, nbytes)
 * bytes (or more), for kernels that AND round after round. */
size_t ag__bool_and_work_bytes(ag_mpc *m, size_t nbytes);
int ag__bool_and_in(ag_mpc *m, const char *op, void *work, size_t nbytes, const void *x,
                    const void *y, void *z);
/* n XOR-shared bits (bit i of bits[i / 8] at i % 8) to additive shares of
 * 0/1 in out (n ring elements). One round, ceil(n / 8) bytes per peer. */
int ag__bool_bits_to_a(ag_mpc *m, const char *op, size_t n, const uint8_t *bits, void *out);
/* The top bit of x (public, arithmetic or boolean share) as 0/1: public for
 * a public x, an arithmetic share otherwise. Initializes out; the operand
 * is not checked. */
int ag__bool_msb(ag_mpc *m, const char *op, const ag_tensor *x, ag_tensor *out);

#endif /* ARGOT_MPC_INTERNAL_H */
