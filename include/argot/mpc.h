/*
 * argot mpc: the SPU engine. Secret-shared ring tensors and the semi2k
 * protocol: n >= 2 parties hold additive shares over Z_2^64 (FM64) or
 * Z_2^128 (FM128); fixed-point numbers; Beaver triples from a trusted
 * first party (rank 0), as SecretFlow's SPU does.
 *
 * SECURITY OF THE DEALER. Two dealers deal the Beaver material:
 *   - the trusted first party (TFP, the default, as SPU's TFP): rank 0
 *     expands every party's Beaver masks, so from any opened e = x - a it
 *     can recover x on its own: rank 0 can learn every value that passes
 *     through a mul, square, matmul, AND, comparison or truncation pair.
 *     Use it only where rank 0 is trusted with the data (SPU marks TFP
 *     unfit for production);
 *   - the trusted third party (TTP, ag_mpc_config.beaver_server: a channel
 *     to `argot beaver-server`, SPU's beaver_server): each party's dealer
 *     seed goes to the dealer process only; rank 0 draws what it can alone
 *     and gets the rest of its shares from the dealer, masked by the other
 *     parties' shares. No party learns another's masks; the dealer sees
 *     seeds and positions but no opened value (it must not collude with a
 *     party). The parties' costs (bytes and rounds on the link) are the
 *     same under both; under TTP, rank 0 also makes one dealer call per
 *     correlation (see ag_beaver_server below).
 *
 * Every party runs the same sequence of calls on its own ag_mpc session
 * (SPMD); each call is a collective over the session's link. A tensor is
 * one party's view: a public value (the same at every party), or this
 * party's share of a secret.
 *
 * Cost model (per party, per element, K = ring bits, N = parties), checked
 * by the tests against the link's counters:
 *
 *   kernel            rounds   bytes sent
 *   share (from owner)  0      0            (pseudorandom zero sharing)
 *   reveal (to all)     1      K/8 * (N-1)
 *   reveal_to (one)     1      K/8 at each non-receiver
 *   add/sub/neg, *pub   0      0
 *   mul (shared x2)     1      K/8 * 2 * (N-1)
 *   square              1      K/8 * (N-1)
 *   matmul m*k by k*n   1      K/8 * (N-1) * (m*k + k*n)   in all
 *   trunc, N = 2        0      0            (local, asymmetric)
 *   trunc, N > 2        1      K/8 * (N-1)  (truncation pairs)
 *   xor; and by public  0      0
 *   and (shared x2)     1      K/8 * 2 * (N-1)
 *   a2b                 A      K/8 * 2 * (N-1) * 2lgK * (N-1)
 *   b2a                 1      K/8 * (N-1)
 *   msb, less, greater  A + 1  a2b's + (N-1)/8   (the bit packed)
 *   msb of a bshare     1      (N-1)/8
 *   equal               lgK+2  (3K-1)/8 * (N-1)  (zero test, bits packed)
 *   select (shared c)   1      K/8 * 2 * (N-1)   (one mul)
 *   relu/abs/min/max    A + 2  msb's + mul's
 *   reciprocal          S + 6F  S's + 9 mul's + 8 trunc's
 *   div                 S + 6F  S's + 10 mul's + 9 trunc's
 *   exp                 A + 8 + 4F + t  (FM128: A + 9 + 4F + t)
 *   log                 S + 4F  (FM128: S + 5F)
 *   sqrt, rsqrt         S + 9F  (FM128: S + 11F)
 *   sigmoid MM1         t      trunc's
 *   sigmoid SEG3        A + 2 + t  less' of 2 + 2 mul's + trunc's
 *   sigmoid REAL        exp's + reciprocal's
 *   argmax, n long      ceil(lg n) (A + 2)  (n-1) less' + (2n-2-n/2) mul's per output
 *   (S, F, t and the nonlinear functions' measured bytes: "nonlinear functions" below)
 *
 * lgK = log2 K, and A = ceil(log2 N) * (lgK + 1) is the depth of a2b's tree
 * of adders (N - 1 adders of 2lgK ANDs: one AND fewer than SPU's row,
 * which counts an AND whose result is unused). Packed bits cost ceil(n/8)
 * bytes for n elements. FM64, N = 2: a2b 7 rounds and 192 bytes, less 8
 * and 192.125, equal 8 and 23.875; N = 3: a2b 14 and 768, less 15 and 768.25.
 *
 * Fixed point: a real v is encoded as round(v * 2^f) in the ring, f the
 * fraction bits (defaults 18 for FM64, 26 for FM128). Encoding accepts
 * |v| < 2^(K-2-f) (FM64, f = 18: about 1.76e13) and refuses NaN, infinity
 * and anything larger with AG_E_MPC_RANGE. A product of two encodings has
 * 2f fraction bits until truncated, so fmul is exact only while
 * |x * y| < 2^(K-2-2f) (FM64: about 6.7e7); beyond that the result wraps.
 * Probabilistic truncation of a ring value x is off by at most one unit in
 * the last place (2^-f) and fails with probability about |x| / 2^(K-1),
 * and then it is off by 2^(K-f) in the ring. For fmul, x = x*y * 2^(2f):
 * FM64 with f = 18 fails about |x*y| * 2^-27 of the time (|x*y| = 100:
 * 2^-20); FM128 with f = 26 about |x*y| * 2^-75. Use FM128 when products
 * are large.
 *
 * Errors: kernels return AG_E_MPC_SHAPE, AG_E_MPC_FIELD, AG_E_MPC_VIS,
 * AG_E_NOMEM or a link error; ag_mpc_errmsg() names the operation and the
 * cause ("mul: shapes (2,3) and (3,2) differ"; "reveal: party bob: no
 * message ... within 60000 ms").
 */
#ifndef ARGOT_MPC_H
#define ARGOT_MPC_H

#include "argot/base.h"
#include "argot/link.h"

__extension__ typedef unsigned __int128 ag_u128;

typedef enum ag_field {
    AG_FM64 = 0,
    AG_FM128 = 1,
} ag_field;

/* 8 or 16. */
size_t ag_field_bytes(ag_field f);
/* "FM64" or "FM128". */
const char *ag_field_name(ag_field f);

typedef enum ag_vis {
    AG_VIS_PUBLIC = 0, /* the same value at every party */
    AG_VIS_ASHARE = 1, /* additive share: the secret is the sum mod 2^K */
    AG_VIS_BSHARE = 2, /* boolean share: the secret is the XOR */
} ag_vis;

#define AG_TENSOR_MAX_DIMS 8

/* An n-dimensional, row-major, contiguous ring tensor. data holds numel
 * elements of uint64_t (FM64) or ag_u128 (FM128) and is owned by the
 * tensor; shares are wiped when freed. ndim 0 is a scalar (numel 1). */
typedef struct ag_tensor {
    ag_field field;
    ag_vis vis;
    int ndim;
    int64_t shape[AG_TENSOR_MAX_DIMS];
    size_t numel;
    void *data;
} ag_tensor;

/* A zero tensor. Returns AG_E_MPC_SHAPE for a negative dimension or more
 * than AG_TENSOR_MAX_DIMS, AG_E_NOMEM. On failure t is left empty (safe to
 * clean up). */
int ag_tensor_init(ag_tensor *t, ag_field f, ag_vis v, int ndim, const int64_t *shape);
/* Frees (and wipes, for shares) the data; t becomes empty. */
void ag_tensor_cleanup(ag_tensor *t);
int ag_tensor_copy(ag_tensor *dst, const ag_tensor *src);
bool ag_tensor_same_shape(const ag_tensor *a, const ag_tensor *b);
/* "(2,3)" into buf. Returns buf. */
const char *ag_tensor_shape_str(const ag_tensor *t, char *buf, size_t cap);
static inline uint64_t *ag_tensor_u64(const ag_tensor *t)
{
    return (uint64_t *)t->data;
}
static inline ag_u128 *ag_tensor_u128(const ag_tensor *t)
{
    return (ag_u128 *)t->data;
}
/* Same elements, another shape of the same numel (in place). */
int ag_tensor_reshape(ag_tensor *t, int ndim, const int64_t *shape);
/* The 2-D transpose of src into dst. */
int ag_tensor_transpose(ag_tensor *dst, const ag_tensor *src);
/* Axis permutation: dst's axis i is src's axis perm[i] (perm NULL reverses
 * the axes). */
int ag_tensor_permute(ag_tensor *dst, const ag_tensor *src, const int *perm);
/* src[start:stop:step] along every axis (numpy semantics: negative start
 * and stop count from the end, bounds are clamped, step >= 1). NULL start,
 * stop or step mean 0, the axis length, 1. */
int ag_tensor_slice(ag_tensor *dst, const ag_tensor *src, const int64_t *start,
                    const int64_t *stop, const int64_t *step);
/* srcs[0..n) joined along axis (negative counts from the end); every other
 * axis, the field and the visibility must agree. */
int ag_tensor_concat(ag_tensor *dst, const ag_tensor *const *srcs, size_t n, int axis);
/* src broadcast to shape by numpy's rules (trailing axes aligned; an axis of
 * length 1 repeats). */
int ag_tensor_broadcast(ag_tensor *dst, const ag_tensor *src, int ndim, const int64_t *shape);

/* ---- sessions ----------------------------------------------------------- */

struct ag_rpc_channel;

typedef struct ag_mpc_config {
    ag_field field;
    unsigned fxp_bits; /* 0: 18 for FM64, 26 for FM128 */
    /* The Beaver dealer: NULL for the trusted first party (rank 0), or a
     * channel to a trusted-third-party dealer (`argot beaver-server`,
     * ag_beaver_server), borrowed: it must outlive the session. Every
     * party must choose the same kind of dealer (setup names one that
     * does not), and all must reach the same dealer. */
    struct ag_rpc_channel *beaver_server;
    uint64_t beaver_timeout_ms; /* each dealer call (0: 60 s) */
    const char *label;          /* the job's name in the dealer's logs (may be NULL) */
} ag_mpc_config;

typedef struct ag_mpc ag_mpc;

/* A session over link (borrowed: it must outlive the session). NULL on
 * allocation failure. Nothing is sent until ag_mpc_setup. A session keeps
 * its kernels' temporaries (Beaver material, messages) for the next
 * kernels, so that kernels repeated on the same shapes allocate only their
 * outputs: up to 256 MiB between kernels (more while a large one runs).
 * ag_mpc_free wipes and frees them. */
ag_mpc *ag_mpc_new(ag_link *link, const ag_mpc_config *cfg);
void ag_mpc_free(ag_mpc *m);
/* Collective: checks that every party uses the same field, fraction bits,
 * party count and kind of dealer (AG_E_MPC_CONFIG naming the party that
 * differs), then sets up the pairwise PRG seeds and the Beaver dealer's
 * seeds (TTP: every party registers its seed with the dealer; a dealer
 * that cannot be reached fails the setup at that party, which aborts the
 * link, naming the dealer's address). */
int ag_mpc_setup(ag_mpc *m);
const char *ag_mpc_errmsg(const ag_mpc *m);
ag_link *ag_mpc_link(const ag_mpc *m);
ag_field ag_mpc_field(const ag_mpc *m);
unsigned ag_mpc_fxp_bits(const ag_mpc *m);
unsigned ag_mpc_rank(const ag_mpc *m);
unsigned ag_mpc_nparties(const ag_mpc *m);

/* Fixed point: encodes n doubles as a public tensor of the given shape
 * (numel must be n); AG_E_MPC_RANGE names the first value out of range. */
int ag_mpc_encode(ag_mpc *m, const double *v, int ndim, const int64_t *shape, ag_tensor *out);
/* Decodes a public tensor into out[0..numel). */
int ag_mpc_decode(ag_mpc *m, const ag_tensor *t, double *out);
/* The largest magnitude ag_mpc_encode accepts. */
double ag_mpc_fxp_max(const ag_mpc *m);

/* ---- kernels (collective; out is initialized by the call and must not be
 * one of the inputs; on failure out is left empty) ------------------------ */

/* Secret-shares owner's public tensor in (NULL at the other parties); every
 * party passes the shape. */
int ag_mpc_share(ag_mpc *m, unsigned owner, const ag_tensor *in, int ndim, const int64_t *shape,
                 ag_tensor *out);
/* Opens a shared tensor to every party (a public tensor). */
int ag_mpc_reveal(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
/* Opens a shared tensor to party `to` only: out is the value there and an
 * empty tensor (data NULL) elsewhere. */
int ag_mpc_reveal_to(ag_mpc *m, const ag_tensor *x, unsigned to, ag_tensor *out);

/* Element-wise ring arithmetic on tensors of the same shape, any mix of
 * public and shared operands (a public operand is added once, by rank 0). */
int ag_mpc_add(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);
int ag_mpc_sub(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);
int ag_mpc_neg(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
/* Ring product (no truncation): Beaver for shared * shared, local
 * otherwise. */
int ag_mpc_mul(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);
int ag_mpc_square(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
/* Matrix product of 2-D tensors (m x k) (k x n). */
int ag_mpc_matmul(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);
/* Arithmetic shift right by bits: exact for public tensors, probabilistic
 * for shares (see the header comment). */
int ag_mpc_trunc(ag_mpc *m, const ag_tensor *x, unsigned bits, ag_tensor *out);
/* Fixed-point product and matrix product: mul (matmul) then trunc by the
 * session's fraction bits (no truncation when an operand is public and
 * holds integers: use ag_mpc_mul for that). */
int ag_mpc_fmul(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);
int ag_mpc_fmatmul(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);

/* ---- the Beaver cache (xcache.c) ----------------------------------------- */
/*
 * A shared matrix x (rows x cols) multiplied many times (logistic
 * regression's features, every epoch) is masked once: making the cache
 * opens x - a (rows * cols elements, as one matmul would); each product
 * x.y or x^T.y with a shared y (k x n) then opens only y - b (k * n
 * elements: K/8 (N-1) k n bytes, one round), fresh b and c every time.
 * Memory: twice x's size at every party, three times at rank 0 (the
 * dealer keeps the full mask). The cache belongs to the session it was
 * made in.
 */
typedef struct ag_mpc_xcache ag_mpc_xcache;
int ag_mpc_xcache_new(ag_mpc *m, const ag_tensor *x, ag_mpc_xcache **out);
void ag_mpc_xcache_free(ag_mpc_xcache *c);
/* x.y (tr false) or x^T.y (tr true), ring products; the f variant
 * truncates by the fraction bits (ag_mpc_fmatmul's). */
int ag_mpc_xcache_matmul(ag_mpc *m, ag_mpc_xcache *c, bool tr, const ag_tensor *y,
                         ag_tensor *out);
int ag_mpc_xcache_fmatmul(ag_mpc *m, ag_mpc_xcache *c, bool tr, const ag_tensor *y,
                          ag_tensor *out);

/* ---- reductions (local on shares: no message) --------------------------- */

/* Sum along axis (negative counts from the end), which is removed from the
 * shape; axis AG_AXIS_ALL sums everything into a scalar. Ring arithmetic:
 * the fraction bits are unchanged. */
#define AG_AXIS_ALL INT32_MIN
int ag_mpc_sum(ag_mpc *m, const ag_tensor *x, int axis, ag_tensor *out);
/* Fixed-point mean: the sum times the public constant 1/count, truncated. */
int ag_mpc_mean(ag_mpc *m, const ag_tensor *x, int axis, ag_tensor *out);

/* ---- boolean shares and comparison --------------------------------------- */
/*
 * A boolean share (AG_VIS_BSHARE) holds the K bits of a ring value XOR-shared
 * among the parties. Comparison results are arithmetic shares of 0 or 1 as
 * ring integers (not fixed point), ready for ag_mpc_mul / ag_mpc_select.
 * Comparisons read fixed-point or integer operands as signed ring values.
 */
int ag_mpc_xor(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);
/* Bitwise AND: Beaver AND triples for shared x shared, local otherwise. */
int ag_mpc_and(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);
/* Arithmetic to boolean sharing (a parallel-prefix adder over the parties'
 * shares) and back. */
int ag_mpc_a2b(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
int ag_mpc_b2a(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
/* The most significant bit of x (1 when x is negative), as 0/1. */
int ag_mpc_msb(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
int ag_mpc_less(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);
int ag_mpc_greater(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);
int ag_mpc_equal(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);
/* cond ? a : b, element-wise, for cond a 0/1 share (a comparison's result). */
int ag_mpc_select(ag_mpc *m, const ag_tensor *cond, const ag_tensor *a, const ag_tensor *b,
                  ag_tensor *out);
int ag_mpc_relu(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
int ag_mpc_abs(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
int ag_mpc_min(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);
int ag_mpc_max(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);

/* ---- nonlinear functions ------------------------------------------------- */
/*
 * Element-wise fixed-point approximations (src/mpc/nonlinear.c) on public or
 * arithmetic-shared tensors of any shape: the result has x's shape and is
 * shared when an operand is. An all-public call is computed in the clear with
 * the C library, rounded to the nearest encoding, without a message; a result
 * that is not finite or not encodable is then AG_E_MPC_RANGE naming the
 * element. A shared call cannot see its values: outside a function's domain
 * its result is unspecified, not an error. A public operand of a mixed call
 * (div's) goes through the shared algorithm in the clear.
 *
 * u = 2^-f, one unit in the last place. Bounds are on |result - the exact
 * function of the encoded operands|, for any number of parties, and checked
 * by tests/unit/mpc/nonlinear_test.c on each domain and its edges.
 *
 * The domain. reciprocal, div, log, sqrt and rsqrt look for the highest set
 * bit m of x (a2b, a prefix OR of the window's L = D + f bits in
 * ceil(log2 L) rounds of ANDs, its one-hot converted to shares in one more:
 * "the search" S below) and scale x by 2^-m into a fixed interval; every
 * public function of m is then a local table. Their domain is x in
 * [2^-f, 2^D) (in magnitude for reciprocal and div), with
 *   D = ag_mpc_nl_domain_bits(m) = max(f, K - 41 - f), at most K - 2 - 2f:
 * 18 for FM64 with f = 18 (x below 262144), 61 for FM128 with f = 26 (x
 * below 2.3e18). Scaling by 2^-s, s <= D, is a product by 2^(D-s) and a
 * truncation by D of a value below 2^(D+f), which fails (garbles the
 * element) with probability about 2^(D+f+1-K): 2^-27 in FM64, as an fmul of
 * operands near 1 does, and 2^-40 in FM128; scaling up is exact.
 *
 * Costs (the rows of the table at the top): S = A + ceil(log2 L) + 1 rounds
 * (L = 36 in FM64, 87 in FM128) and a2b's + (N-1)(2 P + L + 1)/8 bytes, P =
 * sum of L - d over d = 1, 2, 4, .. < L (153 and 482); t = 0 for two
 * parties, 1 for more (a truncation's rounds: it sends K/8 (N-1) bytes),
 * and F = 1 + t (an fmul's). Measured rounds and bytes sent per party per
 * element (n a multiple of 8, so that the packed bits fill whole bytes):
 *
 *                   FM64, N = 2   FM64, N = 3   FM128, N = 2   FM128, N = 3
 *   reciprocal      20   378.875  33  1269.75   22   867.5     36  2887
 *   div             20   394.875  33  1317.75   22   899.5     36  2983
 *   exp             19   334.875  31  1197.75   21   769.75    34  2787.5
 *   log             18   330.75   29  1205.5    21   867.375   34  3110.75
 *   sqrt, rsqrt     23   410.75   39  1397.5    27  1027.375   46  3430.75
 *   sigmoid MM1      0     0       1    16       0     0        1    32
 *   sigmoid SEG3     9   416.25   17  1616.5    10   960.25    19  3744.5
 *   sigmoid REAL    39   713.75   64  2467.5    43  1637.25    70  5674.5
 *
 * A div by a public y costs only the truncations of x's products (none for
 * two parties); a public x, one product fewer.
 */
typedef enum ag_sigmoid_mode {
    AG_SIGMOID_MM1 = 0,  /* SPU's SIGMOID_MM1: 1/2 + x/8 */
    AG_SIGMOID_SEG3 = 1, /* SPU's SIGMOID_SEG3: MM1 clamped to 0 and 1 */
    AG_SIGMOID_REAL = 2, /* SPU's SIGMOID_REAL: 1 / (1 + exp(-x)) */
} ag_sigmoid_mode;

/* D, the domain's exponent (see above). */
unsigned ag_mpc_nl_domain_bits(const ag_mpc *m);

/* 1/x for |x| in [2^-f, 2^D). Goldschmidt: c = x 2^(f-1-m) is in +-[1/2, 1]
 * (the sign folded in: the highest bit is |x| - s's for the sign s, and the
 * initial guess is linear in s); w = (1 - 2s) a - 2c with a = 4 sqrt(3) - 4
 * (relative error at most 7 - 4 sqrt(3) = 0.072); r = w, e = 1 - c w; then
 * r *= 1 + e, e *= e, 3 times (for f <= 29); 1/x = r 2^(f-1-m), exact for
 * |x| < 1. |1/x - result| <= 8u |1/x| + 2u. */
int ag_mpc_reciprocal(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
/* x / y for |y| in [2^-f, 2^D): the reciprocal's iteration from r = x w.
 * |x/y - result| <= 8u |x/y| + u (2 + 8/|y|): as if x were off by 8 units.
 * Its products scale with x: those of the iteration fail as an fmul of x
 * by a value below 2, the last scaling about |x| times as often as the
 * normalization (FM64: |x| 2^-27; FM128: |x| 2^-40). */
int ag_mpc_div(ag_mpc *m, const ag_tensor *x, const ag_tensor *y, ag_tensor *out);
/* e^x = 2^y, y = x log2(e) (the constant with 16 more fraction bits where
 * K - 2f >= 60: FM128). a2b(y); the t bits of k = floor(y) (k in [-2^(t-1),
 * 2^(t-1)) covering [-(f+1), D-1]) decoded into a one-hot by a tree of
 * ANDs, ANDed with "every bit above k's equals the sign" (another tree in
 * the same rounds); 2^(y-k) by a polynomial of degree 5 (f <= 20) or 7 in
 * y - k - 1/2, Estrin's scheme; times 2^k, a local table. For any |x| <
 * 2^(K-2-2f-g) (g the constant's extra bits: FM64 2^26, FM128 2^58): e^x
 * for x < (D-1) ln 2 (FM64 11.78, FM128 41.6), saturating at 2^(D-1) above
 * it, and 0 below -(f+1) ln 2. |e^x - result| <= 8u e^x + 2u. Scaling x
 * fails as an fmul of x by 0.44 does. */
int ag_mpc_exp(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
/* ln x for x in [2^-f, 2^D): ln c + (m + 1 - f) ln 2, c = x 2^(f-1-m) in
 * [1/2, 1); ln c a polynomial of degree 7 (f <= 18) or 11 in c - 3/4
 * (Estrin), the rest a local table of m. |ln x - result| <= 10u. */
int ag_mpc_log(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
/* sqrt x and 1/sqrt x for x in [2^-f, 2^D) (sqrt also 0, giving 0 within
 * 2u): x = c 4^j with c in [1/2, 2); y0 ~ 1/sqrt(c) a cubic (relative error
 * 0.9%); Goldschmidt's coupled iteration g = c y0, H = y0, r = 3/2 - gH/2,
 * g *= r, H *= r, 2 times (f <= 20) or 3, takes g to sqrt(c) and H to
 * 1/sqrt(c); then g 2^j, H 2^-j. |sqrt x - result| <= 8u sqrt x + 2u and
 * |1/sqrt x - result| <= 8u / sqrt x + 2u. */
int ag_mpc_sqrt(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
int ag_mpc_rsqrt(ag_mpc *m, const ag_tensor *x, ag_tensor *out);
/* The sigmoid in SPU's three modes. MM1: 1/2 + x/8 (a truncation by 3
 * bits), for any x, within 2u of the formula. SEG3: 1 for x > 4, 0 for
 * x < -4, MM1 between (one comparison of [4 | x] with [x | -4], then one
 * round of products), within 2u of that formula. REAL: 1 / (1 + exp(-x))
 * with ag_mpc_exp and ag_mpc_reciprocal (exp's saturation keeps 1 + e^-x in
 * the reciprocal's domain), for exp's x, within 8u of the sigmoid. An
 * unknown mode is AG_E_INVAL. */
int ag_mpc_sigmoid(ag_mpc *m, const ag_tensor *x, ag_sigmoid_mode mode, ag_tensor *out);
/* The index of the maximum along axis (ag_mpc_sum's axis: negative counts
 * from the end; AG_AXIS_ALL gives the flat row-major index, a scalar),
 * which is removed from the shape. The index is a ring integer (not fixed
 * point), shared when x is. The first maximum wins a tie, as numpy's
 * argmax: a tournament of ceil(log2 n) rounds, each comparing adjacent
 * pairs (ag_mpc_less, exact for fixed-point encodings) and keeping the
 * right one only where it is strictly greater, with one select for values
 * and indices together (the indices are public in the first round, and
 * their select is local). An empty axis is AG_E_MPC_SHAPE. */
int ag_mpc_argmax(ag_mpc *m, const ag_tensor *x, int axis, ag_tensor *out);

/* ---- the trusted-third-party dealer (dealer.c): `argot beaver-server` -------
 *
 * The service argot.beaver.v1.Dealer (proto/argot/beaver/v1/beaver.proto)
 * on an rpc server. Parties register their dealer seeds for a session;
 * rank 0 asks for its computed shares of each correlation (Deal) and gets
 * them as a stream. The dealer keeps, per session, every party's seed and
 * where each party's stream stands, and refuses:
 *   - a registration that disagrees with the session's party count or
 *     field, or a second seed for a rank (INVALID_ARGUMENT,
 *     ALREADY_EXISTS; the same seed again is accepted, for retries);
 *   - a Deal before every rank has registered (FAILED_PRECONDITION naming
 *     the missing ranks), for an unknown or closed session (NOT_FOUND), at
 *     a position behind a party's previous request, which would deal a
 *     stream range twice (INVALID_ARGUMENT), or larger than max_elements;
 *   - with mutual TLS, a Deal or CloseSession from a client whose certificate is
 *     not the one rank 0 registered with (PERMISSION_DENIED);
 *   - a new session beyond max_sessions (RESOURCE_EXHAUSTED).
 * Rank 0 closes its session (CloseSession) when it frees it; a session with no call for
 * idle_timeout_ms is dropped. Seeds and dealt material are wiped when
 * dropped. Deals of different sessions run in parallel (one pool thread
 * each); a session's run one at a time. */

struct ag_rpc_server;

typedef struct ag_beaver_server ag_beaver_server;

typedef struct ag_beaver_server_opts {
    unsigned max_sessions;    /* open sessions (0: 1024) */
    uint64_t idle_timeout_ms; /* a session with no call this long is dropped (0: 1 hour) */
    uint64_t max_elements;    /* of one Deal, per component (0: 2^26) */
    /* Where the dealer keeps its metrics (borrowed; NULL: none):
     * argot_beaver_sessions (open), argot_beaver_sessions_total,
     * argot_beaver_registrations_total, argot_beaver_deals_total{kind},
     * argot_beaver_deal_bytes_total, argot_beaver_deal_seconds{kind} (a
     * histogram), argot_beaver_refused_total{method,code},
     * argot_beaver_sessions_expired_total. The registry must not be
     * rendered once the dealer is freed (a gauge reads it). */
    ag_metrics *metrics;
} ag_beaver_server_opts;

typedef struct ag_beaver_server_stats {
    uint64_t sessions;      /* open now */
    uint64_t sessions_total;
    uint64_t registrations;
    uint64_t deals[10];     /* per argot.beaver.v1.Kind */
    uint64_t deal_bytes;    /* sent in DealChunk data */
    uint64_t refused;       /* calls answered with an error */
    uint64_t expired;       /* sessions dropped for idleness */
} ag_beaver_server_stats;

/* NULL when out of memory, or when the metrics cannot be registered (a
 * registry that has them already). */
ag_beaver_server *ag_beaver_server_new(const ag_beaver_server_opts *o);
/* Registers the Dealer service's methods on s (before it starts). */
int ag_beaver_server_register(struct ag_rpc_server *s, ag_beaver_server *b);
/* Drops sessions idle past the timeout (also done on every RegisterSeed). */
void ag_beaver_server_sweep(ag_beaver_server *b);
void ag_beaver_server_stats_get(ag_beaver_server *b, ag_beaver_server_stats *out);
/* "MUL", ... for a Kind number; NULL if out of range. */
const char *ag_beaver_kind_name(unsigned kind);
/* Frees every session (wiped); the rpc server must be stopped first. */
void ag_beaver_server_free(ag_beaver_server *b);

#endif /* ARGOT_MPC_H */
