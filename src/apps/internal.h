/*
 * What the PSI files share:
 *
 *   psi.c        the driver: options, the two passes over the input, the
 *                hello, the bucket loop, the final handshake, the report
 *   psi_wire.c   the messages' encodings and their decoders (fuzzed:
 *                fuzz/psi_wire.c)
 *   psi_store.c  bucket spill files, loading a bucket, the sorted runs of
 *                the receiver's rows and their merge into the output
 *   psi_ecdh.c   the "ecdh" protocol over one bucket
 *   psi_curve.c  batches of ristretto255 work (hash to group, multiply)
 *   psi_workers.c  the files a coordinator shares with its workers (plan,
 *                addresses, results) in the job directory
 *
 * A protocol sees one bucket at a time as a key set (struct psi_keyset):
 * this party's distinct keys with their row counts; at a receiver it fills
 * in which keys the peer holds too. Everything about rows, files and join
 * types stays in the driver, so another protocol only has to implement
 * struct psi_protocol.
 */
#ifndef ARGOT_APPS_INTERNAL_H
#define ARGOT_APPS_INTERNAL_H

#include <sodium.h>
#include <stdatomic.h>
#include <string.h>

#include "argot/apps.h"

/* ---- link tags ----------------------------------------------------------- */

/* Every PSI message has tag 0x3 << 60 | slot << 4 | step; slot 0 is the
 * run's control messages, slot b + 1 bucket b. */
#define PSI_TAG_BASE ((uint64_t)0x3 << 60)
#define PSI_MAX_SLOT (((uint64_t)1 << 56) - 1)

enum psi_step {
    PSI_STEP_HELLO = 1,  /* slot 0: parameters and row count */
    PSI_STEP_FIN = 2,    /* slot 0: "my output is ready" */
    PSI_STEP_POINTS = 3, /* bucket: my masked points [+ counts] */
    PSI_STEP_ECHO = 4,   /* bucket: your points raised by my scalar */
    PSI_STEP_WORKERS = 5, /* slot 0, with workers: the workers' addresses */
    PSI_STEP_WATCH = 6,  /* slot 0: never sent; a coordinator waits on it to
                            learn of the peer's abort while its workers run */
};

static inline uint64_t psi_tag(uint64_t slot, enum psi_step step)
{
    return PSI_TAG_BASE | (slot & PSI_MAX_SLOT) << 4 | (uint64_t)step;
}

/* ---- messages (psi_wire.c) -------------------------------------------------- */

#define PSI_VERSION 2u
#define PSI_PROTO_NAME_MAX 31
#define PSI_DIGEST_SIZE 32
#define PSI_POINT_SIZE 32

/* The hello: what both parties must agree on, and this party's rows. */
struct psi_hello {
    uint32_t version;
    char protocol[PSI_PROTO_NAME_MAX + 1];
    uint8_t join;        /* ag_psi_join */
    uint8_t receivers;   /* AG_PSI_RECV_* mask */
    uint8_t allow_dups;
    uint32_t nkeys;
    uint64_t bucket_rows;
    uint64_t rows;       /* this party's data rows */
    uint8_t session[PSI_DIGEST_SIZE]; /* BLAKE2b-256 of the session id */
    uint32_t workers;    /* 0: one process; else workers per party */
};

#define PSI_HELLO_SIZE (8 + 4 + 1 + PSI_PROTO_NAME_MAX + 3 + 4 + 8 + 8 + PSI_DIGEST_SIZE + 4)
#define PSI_MAX_WORKERS 64
#define PSI_ADDR_SIZE 256

/* The peer coordinator's workers message: count addresses ("host:port",
 * printable, NUL-padded) into addrs; AG_E_PSI_PROTOCOL with why otherwise. */
int ag__psi_addrs_decode(const uint8_t *p, size_t n, unsigned count,
                         char (*addrs)[PSI_ADDR_SIZE], char *why, size_t cap);

/* Writes h into out (PSI_HELLO_SIZE bytes). */
void ag__psi_hello_encode(const struct psi_hello *h, uint8_t *out);
/* Decodes a peer's hello; on a malformed one returns AG_E_PSI_PROTOCOL
 * with why (cap bytes) saying what is wrong. */
int ag__psi_hello_decode(const uint8_t *p, size_t n, struct psi_hello *h, char *why, size_t cap);
/* Compares the parameters of two hellos (not the row counts). Returns 0,
 * or AG_E_PSI_MISMATCH with why naming the first difference, written from
 * the point of view of `me` ("party alice has join inner, party bob left"). */
int ag__psi_hello_compare(const struct psi_hello *mine, const struct psi_hello *peer,
                          const char *me, const char *peer_name, bool me_rank0, char *why,
                          size_t cap);

/* A points message: u64 count m, m points of PSI_POINT_SIZE bytes, then,
 * when with_counts, m u32 row counts (each >= 1). All little-endian. */
size_t ag__psi_points_size(uint64_t m, bool with_counts);
/* Checks a points message of n bytes holding at most max_m points and
 * points into it; AG_E_PSI_PROTOCOL with why otherwise. */
int ag__psi_points_decode(const uint8_t *p, size_t n, bool with_counts, uint64_t max_m,
                          uint64_t *m, const uint8_t **points, const uint8_t **counts,
                          char *why, size_t cap);

static inline void psi_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void psi_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t psi_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static inline uint64_t psi_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ---- keys ------------------------------------------------------------------- */

/* An encoded key tuple is, per key column, a u32 LE length and the bytes.
 * Compares two encodings column by column (bytewise, a prefix first). */
int ag__psi_key_cmp(ag_slice a, ag_slice b);
/* Writes the key tuple for humans into buf: "x" for one column,
 * ("x", "y") for more; quotes and control bytes escaped, long fields cut. */
void ag__psi_key_format(ag_slice key, char *buf, size_t cap);

/* ---- the protocol interface ------------------------------------------------- */

/* One bucket at one party. */
struct psi_keyset {
    size_t n;                    /* distinct keys */
    const ag_slice *keys;        /* encoded key tuples (any order) */
    const uint32_t *counts;      /* this party's rows per key (>= 1) */
    /* filled by the protocol at a receiver: */
    uint8_t *matched;            /* n flags: the peer holds keys[i] too */
    uint32_t *peer_counts;       /* n: the peer's rows of a matched key */
    uint64_t peer_keys;          /* the peer's distinct keys in the bucket */
    uint64_t peer_unmatched_rows;/* the peer's rows whose key is not matched */
};

struct psi_progress_state;

/* What a protocol sees of the run. */
struct psi_ctx {
    ag_link *link;
    unsigned me;
    unsigned peer;
    bool i_receive;
    bool peer_receives;
    bool dups;                   /* counts travel (allow_duplicates) */
    ag_pool *pool;               /* may be NULL: run on the calling thread */
    const uint8_t *session;      /* the session id, as given */
    size_t session_len;
    uint64_t peer_rows;          /* bound on the peer's keys in a bucket */
    ag_errbuf *err;
    struct psi_progress_state *progress; /* may be NULL */
};

struct psi_protocol {
    const char *name;
    /* Run start: fresh secrets into *state. */
    int (*start)(struct psi_ctx *c, void **state);
    /* Bucket index (0-based), the same sequence at both parties. */
    int (*bucket)(struct psi_ctx *c, void *state, uint64_t index, struct psi_keyset *ks);
    /* Wipes and frees state (NULL does nothing). */
    void (*stop)(void *state);
};

extern const struct psi_protocol ag__psi_ecdh;

/* Counts n units of curve work done (any thread). */
void ag__psi_progress_add(struct psi_progress_state *p, uint64_t n);

/* ---- curve batches (psi_curve.c) -------------------------------------------- */

#define PSI_SCALAR_SIZE 32

/* Initializes libsodium once (thread-safe). AG_E_SYS if it cannot. */
int ag__psi_curve_init(void);
/* A fresh secret scalar. */
void ag__psi_scalar_random(uint8_t s[PSI_SCALAR_SIZE]);

/* The hash-to-group prefix of a session: "argot-psi-v1" || u32 len ||
 * session, absorbed into a BLAKE2b-512 state, kept as bytes: the state
 * type asks for 64-byte alignment, which ag_malloc does not give, so users
 * copy it into a local state (ag__psi_prefix_state). */
typedef struct psi_prefix {
    uint8_t bytes[sizeof(crypto_generichash_state)];
} psi_prefix;

static inline void ag__psi_prefix_state(const psi_prefix *p, crypto_generichash_state *st)
{
    memcpy((void *)st, p->bytes, sizeof(*st));
}
void ag__psi_prefix_init(psi_prefix *p, const uint8_t *session, size_t len);

/* out[i] = H(keys[i])^s for i in [0, n) (32 bytes each). */
void ag__psi_hash_mul(const psi_prefix *p, const ag_slice *keys, size_t n,
                      const uint8_t s[PSI_SCALAR_SIZE], uint8_t *out);
/* out[i] = in[i]^s. Returns -1, or the index of the first input that is
 * not a valid encoding (or gives the identity). */
ssize_t ag__psi_mul(const uint8_t *in, size_t n, const uint8_t s[PSI_SCALAR_SIZE],
                    uint8_t *out);
/* The backend the batches use: "avx512ifma" (psi_ifma.c) where the CPU
 * has it, else "libsodium"; ARGOT_PSI_CURVE=libsodium forces the latter. */
const char *ag__psi_curve_backend(void);

/* The AVX-512 IFMA backend (psi_ifma.c), eight points at a time; the same
 * contract and the same bytes as the libsodium one. Only where available. */
bool ag__psi_ifma_available(void);
void ag__psi_ifma_hash_mul(const psi_prefix *p, const ag_slice *keys, size_t n,
                           const uint8_t s[PSI_SCALAR_SIZE], uint8_t *out);
ssize_t ag__psi_ifma_mul(const uint8_t *in, size_t n, const uint8_t s[PSI_SCALAR_SIZE],
                         uint8_t *out);
/* The libsodium backend, whatever the dispatch chose (tests compare). */
void ag__psi_sodium_hash_mul(const psi_prefix *p, const ag_slice *keys, size_t n,
                             const uint8_t s[PSI_SCALAR_SIZE], uint8_t *out);
ssize_t ag__psi_sodium_mul(const uint8_t *in, size_t n, const uint8_t s[PSI_SCALAR_SIZE],
                           uint8_t *out);

/* ---- storage (psi_store.c) -------------------------------------------------- */

/* One row of a loaded bucket: fields encoded as in the spill (per column a
 * u32 LE length and the bytes). */
struct psi_row {
    uint64_t line;
    ag_slice key;
    ag_slice fields;
};

struct psi_spill;

int ag__psi_spill_new(struct psi_spill **out, const char *tmpdir, uint64_t nbuckets,
                      ag_errbuf *err);
void ag__psi_spill_free(struct psi_spill *s);
/* Appends a row to its bucket's file. */
int ag__psi_spill_add(struct psi_spill *s, uint64_t bucket, uint64_t line, ag_slice key,
                      const ag_slice *fields, size_t nfields);
/* Flushes every bucket's buffer and releases the buffers. */
int ag__psi_spill_finish(struct psi_spill *s);
uint64_t ag__psi_spill_rows(const struct psi_spill *s, uint64_t bucket);
/* Loads bucket b: *data (ag_malloc'd, the bucket's bytes) and *rows
 * (ag_malloc'd, *nrows entries pointing into *data), in spill order. */
int ag__psi_spill_load(struct psi_spill *s, uint64_t b, uint8_t **data, struct psi_row **rows,
                       size_t *nrows);

/* Sorted runs of key groups (one run per bucket), merged at the end. */
struct psi_runs;

int ag__psi_runs_new(struct psi_runs **out, const char *tmpdir, ag_errbuf *err);
void ag__psi_runs_free(struct psi_runs *r);
/* Appends a group to the current run: the rows (consecutive in rows[])
 * of one key, to be written `repeat` times. Groups of one run must come
 * in key order. */
int ag__psi_runs_add(struct psi_runs *r, ag_slice key, uint32_t repeat,
                     const struct psi_row *rows, size_t nrows);
/* The same in a new file path (a worker's runs, which its coordinator
 * merges); flush writes what is buffered, count and get say where each
 * run lies in it. */
int ag__psi_runs_new_file(struct psi_runs **out, const char *path, ag_errbuf *err);
int ag__psi_runs_flush(struct psi_runs *r);
size_t ag__psi_runs_count(const struct psi_runs *r);
void ag__psi_runs_get(const struct psi_runs *r, size_t i, uint64_t *off, uint64_t *end);
/* Adds n runs of another file (bounds: n pairs of offset and end, each
 * within the file) to r's merge; r keeps the file open until freed. */
int ag__psi_runs_adopt(struct psi_runs *r, const char *path, const uint64_t *bounds, size_t n);
/* Ends the current run (an empty run is dropped). */
int ag__psi_runs_end(struct psi_runs *r);
/* Merges every run by key into w (ncols columns): with rows_first, each
 * row of a group is written `repeat` times in a row (the left side's
 * pattern); otherwise the group's rows are written `repeat` times over.
 * Adds the rows written to *written. */
int ag__psi_runs_merge(struct psi_runs *r, ag_csv_writer *w, size_t ncols, bool rows_first,
                       uint64_t *written);

/* ---- workers' files (psi_workers.c) ------------------------------------------ */

#define PSI_NO_WORKER UINT32_MAX

/* What the coordinators agreed at the hello, for the workers. */
struct psi_plan {
    uint64_t rows;
    uint64_t peer_rows;
    uint64_t buckets;
    unsigned workers;
    bool keep_rows;      /* the coordinator writes an output: keep the rows */
};

/* A worker's counts and where its runs lie in its .inter and .except. */
struct psi_wresult {
    uint64_t intersection;
    uint64_t matched_rows;
    uint64_t na_rows;
    uint64_t bytes_sent;
    uint64_t bytes_recv;
    uint64_t *inter;     /* ninter pairs (offset, end) */
    size_t ninter;
    uint64_t *except;
    size_t nexcept;
};

/* dir/w<i>.what (or dir/what with i PSI_NO_WORKER) into out. */
void ag__psi_wpath(char *out, size_t cap, const char *dir, unsigned i, const char *what);
/* Writes text to path through a temporary name and a rename. */
int ag__psi_file_put(const char *path, const char *text, ag_errbuf *err);
/* 1 with *text (ag_free) when path exists, 0 when it does not, or an error. */
int ag__psi_file_get(const char *path, char **text, ag_errbuf *err);
int ag__psi_plan_write(const char *dir, const struct psi_plan *p, ag_errbuf *err);
int ag__psi_plan_read(const char *dir, struct psi_plan *p, ag_errbuf *err);
/* Writes w<i>.done from res and the runs' tables (inter, except may be NULL). */
int ag__psi_result_write(const char *dir, unsigned i, const struct psi_wresult *res,
                         struct psi_runs *inter, struct psi_runs *except, ag_errbuf *err);
/* 1 with *res filled (ag__psi_result_cleanup) once w<i>.done exists, 0
 * before, or an error. */
int ag__psi_result_read(const char *dir, unsigned i, struct psi_wresult *res, ag_errbuf *err);
void ag__psi_result_cleanup(struct psi_wresult *res);
/* Removes dir's files and dir. */
void ag__psi_dir_remove(const char *dir);

/* Decodes a spilled row's fields into f[0..ncols); false if malformed. */
bool ag__psi_row_fields(ag_slice enc, ag_slice *f, size_t ncols);

#endif /* ARGOT_APPS_INTERNAL_H */
