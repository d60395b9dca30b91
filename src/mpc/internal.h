/*
 * What the mpc sources share: ring kernels over both fields, the AES-CTR
 * PRG, the session's state (with its scratch memory and the halves of an
 * opening), the Beaver dealer and the boolean helpers.
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
/* dst += a * b, matrices as above */
void ag__ring_matmul_acc(ag_field f, size_t m, size_t k, size_t n, void *dst, const void *a,
                         const void *b);
/* dst (m x n) += a^T b, a stored k x m. */
void ag__ring_matmul_tn_acc(ag_field f, size_t m, size_t k, size_t n, void *dst, const void *a,
                            const void *b);
/* Beaver's recombination in one pass, from the parts of the opening: with
 * e = x - a + pe and g = y - b + pg (this party's part recomputed, plus the
 * peers' parts summed), z += e*b + g*a, plus e*g when with_eg (rank 0's
 * term). Square passes y = x, b = a, pg = pe: z += 2ea (+ e^2). */
void ag__ring_beaver(ag_field f, size_t n, void *z, const void *x, const void *y, const void *a,
                     const void *b, const void *pe, const void *pg, bool with_eg);

/* ---- PRG (prg.c): AES-128 in counter mode ---------------------------- */

/* A keyed stream; every fill consumes whole 16-byte blocks, so two parties
 * holding the same key and making the same calls stay in step. */
typedef struct ag__prg {
    EVP_CIPHER_CTX *ctx;
    uint64_t ctr; /* next block */
} ag__prg;

int ag__prg_init(ag__prg *p, const uint8_t key[16]);
void ag__prg_cleanup(ag__prg *p);
/* n pseudorandom bytes into out, from the stream's position, which moves
 * on by ceil(n / 16) blocks. */
int ag__prg_fill(ag__prg *p, void *out, size_t n);
/* The n bytes a fill would write if the stream stood at block `block`;
 * the position does not move. */
int ag__prg_fill_at(const ag__prg *p, uint64_t block, void *out, size_t n);
/* Moves the position as a fill of n bytes would. */
void ag__prg_skip(ag__prg *p, size_t n);

/* ---- session ----------------------------------------------------------- */

/* Bytes a kernel works on at a time where it goes chunk by chunk (the
 * dealer, the PRSS): a multiple of 16 (a PRG block) and of both element
 * sizes, small enough that a few chunks stay in the L1 and L2 caches. */
#define AG__CHUNK_BYTES 16384

/* Scratch buffers a session keeps between kernels (session.c). */
#define AG__SCRATCH_SLOTS 32
#define AG__SCRATCH_KEEP ((size_t)256 << 20) /* bytes kept once no kernel runs */

struct ag__scratch_slot {
    void *p;       /* NULL: the slot is empty */
    size_t cap;    /* bytes */
    bool lent;     /* in use by the running kernel */
    uint64_t used; /* the session's tick when last returned (eviction order) */
};

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
    ag__prg *dealer_all;   /* TFP rank 0 (and the TTP dealer's sessions): every
                            * party's dealer stream */
    ag__prg *dealer_secret; /* the TTP dealer's sessions: its own stream, for the
                             * secrets of random bits; NULL at the parties */
    /* The trusted-third-party dealer (ttp.c); ttp NULL: trusted first party. */
    struct ag_rpc_channel *ttp;
    uint64_t ttp_timeout_ms;
    char ttp_label[64];
    uint8_t ttp_session[16];
    bool ttp_registered;   /* rank 0: close the session when freed */
    uint64_t *dealer_pos;  /* TTP rank 0: every party's stream position ([0]:
                            * dealer_self's) */
    char ttp_err[AG_ERRMSG_MAX]; /* the last failed dealer call, "" if none */
    struct ag__scratch_slot scratch[AG__SCRATCH_SLOTS];
    size_t scratch_bytes;  /* bytes in all slots, lent or not */
    uint64_t scratch_tick; /* returns so far */
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
/* As ag__mpc_send_all, but the last peer gets *mine itself, a lent scratch
 * buffer of len bytes, which leaves the session (*mine becomes NULL as it
 * goes, also when that send fails): one copy fewer. */
int ag__mpc_send_all_take(ag_mpc *m, const char *op, uint64_t tag, void **mine, size_t len);
/* Receives every peer's message of n_elems ring elements under tag and
 * sums them into the first one received, which *sum holds on success: the
 * caller owns it (adopt it into the scratch, or give it away); the others
 * join the scratch. */
int ag__mpc_recv_sum(ag_mpc *m, const char *op, uint64_t tag, size_t n_elems, void **sum);
/* The halves of an opening. send_all sends every peer its own copy of mine
 * (len bytes) in a scratch buffer, handed to the link without another copy.
 * recv receives peer's message under tag, which must be len bytes
 * (AG_E_LINK_SIZE otherwise), into *data: the caller owns it (and adopts
 * it into the scratch, or gives it away, e.g. as a tensor's data). Both
 * record a failure under op. */
int ag__mpc_send_all(ag_mpc *m, const char *op, uint64_t tag, const void *mine, size_t len);
/* The same to one peer. */
int ag__mpc_send(ag_mpc *m, const char *op, unsigned peer, uint64_t tag, const void *mine,
                 size_t len);
int ag__mpc_recv(ag_mpc *m, const char *op, unsigned peer, uint64_t tag, size_t len,
                 void **data);

/* Scratch: the session's buffers for kernels' temporaries (Beaver
 * material, openings, workspaces), reused from one kernel to the next so
 * that a kernel touches no fresh page. Not zeroed: a kernel writes what it
 * reads. Secret contents stay in the session's memory and are wiped when a
 * buffer is freed (evicted, or with the session), not when returned.
 *
 * get lends the smallest free buffer of at least bytes, or a new one; NULL
 * when out of memory (or, a bug, with every slot lent). put returns it
 * (NULL does nothing); the session then keeps at most AG__SCRATCH_KEEP
 * bytes, freeing the least recently returned buffers beyond. get_n and
 * put_n do several (all or none). give forgets a lent buffer that leaves
 * the session (sent with ag_link_send_take, or a tensor's data), wiping its
 * bytes past `used` so no earlier secret leaves with it. adopt takes a
 * buffer allocated elsewhere with ag_malloc (a received message of len
 * bytes) as a free scratch buffer, or frees it if it cannot be kept. */
void *ag__scratch_get(ag_mpc *m, size_t bytes);
void ag__scratch_put(ag_mpc *m, void *p);
int ag__scratch_get_n(ag_mpc *m, void **bufs, int n_bufs, const size_t *bytes);
void ag__scratch_put_n(ag_mpc *m, void **bufs, int n_bufs);
void ag__scratch_give(ag_mpc *m, void *p, size_t used);
void ag__scratch_adopt(ag_mpc *m, void *p, size_t len);

/* ---- tensors (tensor.c) -------------------------------------------------- */

/* As ag_tensor_init, without zeroing the data: for a kernel's output that it
 * writes in full. */
int ag__tensor_init_raw(ag_tensor *t, ag_field f, ag_vis v, int ndim, const int64_t *shape);
/* As ag_tensor_init around data (ag_malloc'd, numel elements of a valid
 * shape), which the tensor takes over. */
void ag__tensor_init_with(ag_tensor *t, ag_field f, ag_vis v, int ndim, const int64_t *shape,
                          void *data);

/* ---- Beaver dealer (beaver.c) ---------------------------------------- */

/* This party's shares of n triples c = a * b (a, b, c of n elements). */
int ag__beaver_mul(ag_mpc *m, size_t n, void *a, void *b, void *c);
/* Shares of a square pair b = a * a. */
int ag__beaver_square(ag_mpc *m, size_t n, void *a, void *b);
/* The element-wise requests are dealt in chunks; the _each variants call
 * each(ctx, i, len) as soon as elements [i, i + len) of every output are
 * dealt, while they are still in the cache (mul computes x - a there). */
typedef void (*ag__deal_fn)(void *ctx, size_t i, size_t len);
int ag__beaver_mul_each(ag_mpc *m, size_t n, void *a, void *b, void *c, ag__deal_fn each,
                        void *ctx);
int ag__beaver_square_each(ag_mpc *m, size_t n, void *a, void *b, ag__deal_fn each, void *ctx);
int ag__beaver_trunc_each(ag_mpc *m, size_t n, unsigned bits, void *r, void *rt,
                          ag__deal_fn each, void *ctx);
/* Matrix triple: a (mm x k), b (k x nn), c = a * b (mm x nn). */
int ag__beaver_matmul(ag_mpc *m, size_t mm, size_t k, size_t nn, void *a, void *b, void *c);
/* The Beaver cache's dealing: a fixed mask a (bytes) drawn once; then per
 * product, fresh b (q x nn) and c = A b (p x nn), A the full mask (p x q),
 * or A^T b when tr (A stored q x p). The dealer needs A for every c: under
 * TFP, rank 0 keeps it in full (full: bytes; NULL elsewhere); under TTP,
 * rank 0 keeps where every party's stream stood when the mask was drawn
 * (pos: n positions; NULL elsewhere), and the dealer expands A again from
 * there. */
int ag__beaver_mask(ag_mpc *m, size_t bytes, void *a, void *full, uint64_t *pos);
int ag__beaver_matmul_fixed(ag_mpc *m, const void *full, const uint64_t *pos, bool tr, size_t p,
                            size_t q, size_t nn, void *b, void *c);
/* An element-wise request by kind (MUL, SQUARE, TRUNC with bits, AND,
 * RANDBIT, RAND_AB), out[] its components (n elements each); AG_E_INVAL
 * for another kind. */
int ag__beaver_deal(ag_mpc *m, unsigned kind, size_t n, unsigned bits, void **out,
                    ag__deal_fn each, void *ctx);
/* The TTP dealer's side (a session of ag__mpc_new_dealer): components
 * [i, i + len) of every output of a request of n elements starting where
 * the streams stand, into out[k] (len elements each), moving no stream (i
 * * element size a multiple of AG__CHUNK_BYTES); then deal_skip moves the
 * streams past the whole request. */
int ag__beaver_deal_range(ag_mpc *m, unsigned kind, size_t n, unsigned bits, size_t i,
                          size_t len, void **out);
void ag__beaver_deal_skip(ag_mpc *m, unsigned kind, size_t n);
/* The components of an element-wise kind (0: not one), and in
 * *first_sent the first that the TTP dealer sends rank 0. */
unsigned ag__beaver_comps(unsigned kind, unsigned *first_sent);
/* Truncation pairs: r and rt = r >> bits (arithmetic), n elements each. */
int ag__beaver_trunc(ag_mpc *m, size_t n, unsigned bits, void *r, void *rt);
/* AND triples: XOR shares of n K-bit elements a, b and c = a & b. */
int ag__beaver_and(ag_mpc *m, size_t n, void *a, void *b, void *c);
/* Random bits: additive shares of n values r in {0, 1}; the low bits of
 * the shares are XOR shares of the same r. */
int ag__beaver_randbit(ag_mpc *m, size_t n, void *r);
/* n random ring values r: additive shares ra and XOR shares rb. */
int ag__beaver_rand_ab(ag_mpc *m, size_t n, void *ra, void *rb);

/* The kinds of correlation, numbered as argot.beaver.v1.Kind. */
enum ag__deal_kind {
    AG__DEAL_MUL = 1,
    AG__DEAL_SQUARE = 2,
    AG__DEAL_TRUNC = 3,
    AG__DEAL_AND = 4,
    AG__DEAL_RANDBIT = 5,
    AG__DEAL_RAND_AB = 6,
    AG__DEAL_MATMUL = 7,
    AG__DEAL_MASK = 8,
    AG__DEAL_MATMUL_FIXED = 9,
};

/* What a failed dealer request returned rc for: the dealer's own message
 * under TTP, else ag_strerror(rc). For "<op>: dealer: <why>". */
const char *ag__dealer_why(ag_mpc *m, int rc);

/* ---- the TTP dealer's client (ttp.c) ------------------------------------ */

/* One Deal call of rank 0. */
struct ag__ttp_call {
    ag_mpc *m;
    struct ag_rpc_call *call;
    struct ProtobufCMessage *msg; /* the DealChunk being read */
    const uint8_t *p;             /* its unread bytes */
    size_t left;
};

/* Setup: registers this party's seed for the session (rank 0 chose
 * m->ttp_session). */
int ag__ttp_register(ag_mpc *m, const uint8_t seed[16]);
/* Rank 0: starts a Deal of kind at the streams' current positions
 * (dealer_self and dealer_pos). elements: element-wise kinds; bits:
 * TRUNC; mm, k, nn, tr: the matrix kinds; mask: MATMUL_FIXED's mask
 * positions (n of them). */
int ag__ttp_deal(ag_mpc *m, struct ag__ttp_call *c, unsigned kind, uint64_t elements,
                 unsigned bits, uint64_t mm, uint64_t k, uint64_t nn, bool tr,
                 const uint64_t *mask);
/* The next len bytes of the deal's stream into dst. */
int ag__ttp_read(struct ag__ttp_call *c, void *dst, size_t len);
/* Ends the call: the stream must be over (no byte left) and its status OK
 * (when ok is false, the call is only cancelled and freed). */
int ag__ttp_end(struct ag__ttp_call *c, bool ok);
/* Rank 0, when the session is freed: tells the dealer to drop it. */
void ag__ttp_close(ag_mpc *m);

/* The TTP dealer's computation (dealer.c): a session of no link at rank
 * 0 holding every party's stream (seeds[n]) and the dealer's own
 * (secret), on which the ag__beaver_* functions compute rank 0's shares as
 * the trusted first party would. NULL when out of memory. */
ag_mpc *ag__mpc_new_dealer(ag_field f, unsigned n, const uint8_t (*seeds)[16],
                           const uint8_t secret[16]);

/* The Dealer service's calls without rpc (dealer.c), for the handlers and
 * the fuzz target: each returns the gRPC status (AG_RPC_OK, or a refusal
 * with r->msg). */
struct ag__dealer_reply {
    const char *method;   /* for log lines */
    const char *identity; /* the caller's certificate identity; NULL without mutual TLS */
    /* Deal: sends one DealChunk holding data (len bytes); 0 or an error */
    int (*send)(void *ctx, uint8_t *data, size_t len);
    void *ctx;
    uint64_t sent;        /* bytes sent */
    char msg[AG_ERRMSG_MAX];
};
struct Argot__Beaver__V1__RegisterRequest;
struct Argot__Beaver__V1__DealRequest;
struct Argot__Beaver__V1__CloseRequest;
int ag__dealer_register(ag_beaver_server *b, const struct Argot__Beaver__V1__RegisterRequest *req,
                        struct ag__dealer_reply *r);
int ag__dealer_deal(ag_beaver_server *b, const struct Argot__Beaver__V1__DealRequest *req,
                    struct ag__dealer_reply *r);
int ag__dealer_close(ag_beaver_server *b, const struct Argot__Beaver__V1__CloseRequest *req,
                     struct ag__dealer_reply *r);

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
 * (and wipes) them. Fresh memory every call: a kernel's temporaries come
 * from the session's scratch instead (ag__scratch_get_n). */
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
