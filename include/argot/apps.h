/*
 * argot apps: the jobs SecretFlow users run on their CSV files: private set
 * intersection (PSI), joint statistics, and secure logistic regression.
 *
 * ---- PSI ---------------------------------------------------------------
 *
 * Two parties, ranks 0 and 1 of an ag_link (alice and bob in the examples;
 * the names come from ag_link_party()), each hold a CSV file with a header.
 * They find the rows whose key (one or more columns, --key COL[,COL]) both
 * files hold, and the receivers among them write their own rows of the
 * join, every input column in the input's column order. Nothing else about
 * the other party's rows is learned (see "What a party learns" below).
 *
 * Protocol "ecdh" (semi-honest; Meadows 1986, as secretflow/psi's ECDH-PSI),
 * over ristretto255 with libsodium, with fresh secret scalars a and b per
 * run: a key tuple x is encoded unambiguously (each field as a 4-byte
 * little-endian length and its bytes), hashed with a domain separator bound
 * to the session, H(x) = from_hash(BLAKE2b-512("argot-psi-v1" || len ||
 * session || enc(x))), and each party sends its points raised to its
 * scalar, H(x)^a, in an order that depends only on those random-looking
 * values. Each party raises the other's points to its own scalar; a party
 * that is a receiver gets its own points back raised by the peer's scalar,
 * H(x)^ab, and compares them with H(y)^ba. The protocol sits behind a name
 * (ag_psi_opts.protocol) so that an OT-based one can be added beside it.
 *
 * Buckets: both inputs are streamed twice (a pass that counts and checks
 * rows, a pass that spills each row to the temporary file of its bucket,
 * chosen by a session-keyed hash of the key), and the protocol runs bucket
 * by bucket, B = ceil(max(rows of either party) / bucket_rows) buckets. A
 * party's memory is bounded by one bucket's rows, not by the input, so
 * 10^8 rows run in the memory of 2^20 (the default bucket). The receivers'
 * rows are merged across buckets into the output at the end.
 *
 * ---- Join semantics (secretflow/psi's advanced joins) -----------------------
 *
 * alice (rank 0) is the left side, bob (rank 1) the right. Keys are compared
 * byte for byte (nothing is trimmed or case-folded). Let I be the set of
 * keys both inputs hold. Each receiver's output is its own columns of the
 * join below; when both parties receive, row i of alice's output and row i
 * of bob's are the two halves of row i of the joined table (the outputs are
 * aligned). A row of the other side's half that has no partner is a "null
 * row" on this side: every field is ag_psi_opts.null_value.
 *
 *   inner       rows whose key is in I
 *   left        inner, then alice's rows whose key is not in I (bob's
 *               output: null rows for them)
 *   right       inner, then bob's rows whose key is not in I (alice's
 *               output: null rows for them)
 *   full        inner, then alice's rows not in I, then bob's rows not in I
 *               (each side writes null rows for the other's)
 *   difference  full without the inner part: the rows whose key is not in I
 *
 * So alice's file is [inner rows][her rows not in I][null rows for bob's not
 * in I] and bob's is [inner rows][null rows for alice's][his rows not in I],
 * each block present or not as the join type says. Within a block rows are
 * sorted by key (column by column, bytewise, a shorter prefix first), rows
 * of the same key in input order.
 *
 * Duplicate keys: refused by default (AG_E_PSI_DUPLICATE; the message names
 * the first repeated row and where the key was first seen: "alice.csv:17:
 * duplicate key \"x\" (first at line 3)"). With allow_duplicates, a key
 * held by alice in p rows and by bob in q rows gives p*q inner rows, as a
 * SQL join does: alice writes each of her p rows q times in a row, bob
 * writes his q rows, in order, p times over. Unmatched duplicated rows each
 * appear once.
 *
 * What a party learns: the other party's row count, and per bucket the
 * number of distinct keys it holds. A receiver learns which of its own rows
 * are in the join, and the number of the other party's rows not in I (its
 * null rows). With allow_duplicates, a receiver also learns how many rows
 * the other party holds for each of its keys (and so the multiset of the
 * other party's key multiplicities); without it nothing of the kind is
 * sent. A party that is not a receiver learns no more than the sizes and
 * writes no output: its output path is ignored and left untouched.
 *
 * Failure: every failure, here or at the peer, ends the run at both
 * parties with an error naming the party and the cause, never a hang. A
 * party that fails tells the peer a reason that holds no data ("duplicate
 * keys in its input"), while its own message may name a key. The output is
 * written to a temporary name beside it and renamed once both parties have
 * finished, so a failed run leaves no partial output (nor the temporary).
 *
 * Threads: ag_psi_run() uses the link from the calling thread only, and a
 * thread pool of its own (opts.threads) for the curve work.
 *
 * Timeouts: a party waits for the peer's points of a bucket while the peer
 * computes them, so the link's receive timeout must exceed one bucket's
 * curve work at the slower party: bucket_rows x ~60 us / cores with
 * libsodium, x ~6 us with AVX-512 IFMA (2^20 rows on 2 cores: ~30 s and
 * ~3 s). A caller running big buckets on small machines raises it with
 * ag_link_set_timeout_ms() (10 minutes is safe for the default bucket).
 */
#ifndef ARGOT_APPS_H
#define ARGOT_APPS_H

#include <stdio.h>

#include "argot/base.h"
#include "argot/fed.h"
#include "argot/link.h"

typedef enum ag_psi_join {
    AG_PSI_INNER = 0,
    AG_PSI_LEFT,
    AG_PSI_RIGHT,
    AG_PSI_FULL,
    AG_PSI_DIFFERENCE,
} ag_psi_join;

/* Receivers as a mask of ranks. */
#define AG_PSI_RECV_RANK0 0x1u
#define AG_PSI_RECV_RANK1 0x2u
#define AG_PSI_RECV_BOTH 0x3u

#define AG_PSI_DEFAULT_BUCKET_ROWS ((uint64_t)1 << 20)
#define AG_PSI_MAX_KEYS 64

/* Progress of a run, for a progress line. */
typedef struct ag_psi_progress {
    uint64_t rows_done;  /* of this party's input, through the protocol */
    uint64_t rows_total; /* this party's input rows */
    uint64_t bucket;     /* buckets finished */
    uint64_t buckets;
    double seconds;      /* since the protocol started (after the spill) */
} ag_psi_progress;

/* Called from any of the run's threads (at most one call at a time), at
 * most every 200 ms and once at the end (rows_done == rows_total). */
typedef void (*ag_psi_progress_fn)(void *ud, const ag_psi_progress *p);

typedef struct ag_psi_opts {
    const char *input;           /* this party's CSV (header row; RFC 4180) */
    const char *const *keys;     /* key column names in this party's header; the
                                    peer's may be named otherwise, but key i of
                                    each is compared with key i of the other */
    size_t nkeys;                /* 1..AG_PSI_MAX_KEYS, the same at both */
    const char *output;          /* output CSV ("-": standard output, written
                                    directly), or NULL for none */
    const char *receiver;        /* a party's name, or "both" (NULL: "both") */
    ag_psi_join join;
    bool allow_duplicates;
    uint64_t bucket_rows;        /* rows per bucket (0: 2^20); both must agree */
    unsigned threads;            /* curve threads (0: one per online CPU) */
    const char *session;         /* the job's id, bound into every hash; both
                                    must agree (NULL: "") */
    const char *protocol;        /* "ecdh" (NULL: "ecdh") */
    const char *tmpdir;          /* spill files (NULL: $TMPDIR, else /tmp) */
    const char *null_value;      /* fields of null rows (NULL: "NULL") */
    bool progress;               /* a progress line on stderr when both stdout
                                    and stderr are terminals */
    ag_psi_progress_fn progress_fn; /* or a callback (takes precedence) */
    void *progress_ud;
    const struct ag_psi_workers *workers; /* spread the buckets over worker
                                             processes (NULL: this one does all) */
} ag_psi_opts;

/* PSI over workers (a coordinator): the run counts its input, exchanges
 * the hello with the peer's coordinator (both must have the same count),
 * makes a job directory under tmpdir and calls start, which must run
 * count workers, worker i being ag_psi_worker_run(..., i, dir, ...) with
 * this run's options and session. Worker i takes buckets b with b mod
 * count == i and talks to the peer's worker i on its own link; the
 * coordinators exchange their workers' addresses; each coordinator merges
 * its workers' sorted runs into the output, which is byte for byte the
 * one process's, and reports the same counts. check is called about every
 * 100 ms while the workers run (the scheduler's heartbeat); stop once at
 * the end, ok or not (it must leave nothing running). */
typedef struct ag_psi_workers {
    unsigned count;
    int (*start)(void *ud, const char *dir, ag_errbuf *err);
    /* 0, or a negative code with err naming the failed worker (*failed its
     * index, or count when it is not one worker's failure) */
    int (*check)(void *ud, unsigned *failed, ag_errbuf *err);
    void (*stop)(void *ud, bool ok, const char *diag);
    /* worker i's name for messages (its container id), or NULL */
    const char *(*name)(void *ud, unsigned i);
    void *ud;
} ag_psi_workers;

/* Worker i of a coordinated PSI: link is its own two-party link to the
 * peer's worker i (its peer's address is set here, from what the
 * coordinators exchanged), address where link serves ("host:port", for
 * the peer). Reads the plan from dir, spills only its buckets, runs them
 * and leaves its sorted runs and counts in dir for the coordinator. On
 * failure writes the reason to dir/w<i>.err and aborts the link as
 * ag_psi_run does. o is the coordinator's options (the same input, keys,
 * join, receiver, rules, session; output and workers are ignored). */
int ag_psi_worker_run(ag_link *link, const ag_psi_opts *o, unsigned index, const char *dir,
                      const char *address, ag_errbuf *err);

/* Fills o with the defaults (everything zero or NULL). */
void ag_psi_opts_init(ag_psi_opts *o);

typedef struct ag_psi_report {
    uint64_t rows;           /* data rows in this party's input */
    uint64_t peer_rows;      /* data rows in the other party's input */
    uint64_t buckets;
    bool receiver;           /* this party learned the intersection */
    uint64_t intersection;   /* distinct keys in both (receivers only) */
    uint64_t matched_rows;   /* this party's rows whose key is in both */
    uint64_t rows_written;   /* data rows in the output (null rows included) */
    uint64_t bytes_sent;     /* payload bytes this run sent */
    uint64_t bytes_recv;
    double seconds;          /* wall time of the whole run */
} ag_psi_report;

/* Runs this party's side of a two-party PSI over link (2 parties; the
 * peer runs it with matching options: the same keys count, join, receiver,
 * duplicates rule, bucket_rows, session and protocol, else both fail with
 * AG_E_PSI_MISMATCH naming the difference). Blocks until the run ends.
 * report (may be NULL) is filled on success. Returns 0 or a negative
 * AG_E_* code with the message in err (may be NULL): the file and line for
 * input errors, "party bob failed: ..." or a timeout naming the peer when
 * the peer failed or vanished. Uses tags 0x3 << 60 | ... on the link. */
int ag_psi_run(ag_link *link, const ag_psi_opts *o, ag_psi_report *report, ag_errbuf *err);

/* "inner", "left", "right", "full", "difference" -> the join; -1 if none. */
int ag_psi_join_parse(const char *s);
const char *ag_psi_join_name(ag_psi_join j);

/* The receiver mask for s: a party's name (of the link's two) or "both".
 * AG_E_INVAL with a message ("--receiver carol: no such party (alice, bob
 * or both)") otherwise. */
int ag_psi_receiver_parse(const ag_link *link, const char *s, unsigned *mask, ag_errbuf *err);

/* The progress line for p ("rows 524288/1048576 (50.0%), 9.5k rows/s, ETA
 * 55 s, bucket 1/2") into buf (NUL-terminated); returns its length. */
size_t ag_psi_progress_line(const ag_psi_progress *p, char *buf, size_t cap);

/* ---- aligning vertically partitioned rows (align.c) ---------------------------------- *
 *
 * Before the SPU computes on columns of two parties, row i must be the same
 * entity at both. Inside a fed job of two parties, each calls this with its
 * own input and key columns: a PSI (inner join, both receive, key columns
 * compared in order) keeps the rows whose key both have, sorted by key, and
 * *out is this party's table of those rows (every column, the input's line
 * numbers). Neither party learns the other's other keys. Duplicate keys
 * are refused (with their lines). Errors: as ag_psi_run; the peer learns
 * only the kind. The spill and output files go to $TMPDIR and are removed. */
int ag_apps_align(ag_fed *f, const char *input, const char *const *keys, size_t nkeys,
                  ag_table **out, ag_errbuf *err);

/* ---- joint statistics (stats.c) --------------------------------------------------------- *
 *
 * Parties hold columns of one table, vertically partitioned (each party
 * some columns of the same rows: aligned by key columns through
 * ag_apps_align, or taken in file order when no key is given) or
 * horizontally partitioned (each party some rows of the same columns,
 * stacked in rank order). Every party runs ag_stats_run inside one fed job
 * with its own input; the columns are secret-shared into the SPU, which
 * computes, for each column: count, sum, mean, sample variance (n - 1
 * denominator, as pandas), standard deviation, min, max, the 25/50/75 %
 * quantiles (numpy's default linear interpolation), and the Pearson
 * correlation matrix across every party's columns, plus histograms with
 * given bin edges. Only the requested statistics are opened, and only to
 * the parties in reveal_mask; the others learn the schema (column names,
 * row count), which the job treats as public.
 *
 * Algorithms and costs (n rows, k columns, N parties; docs/ARCHITECTURE.md
 * "apps: joint statistics" has the details and measured bounds):
 *   sum, mean       a local reduction of the shares; mean = div(sum, n)
 *   var, std, corr  centred: D = X - mean, C = D D^T (one matmul), var =
 *                   diag(C) / (n - 1), std = sqrt(var), corr = (C_ij /
 *                   (n - 1)) / (std_i std_j) (one division), in the SPU
 *   min, max        a tree of ag_spu_max over [X; -X]: ceil(lg n) levels
 *   quantiles       bisection over [min - 1, max] with secret counts of the
 *                   rows below the midpoint: 32 steps, each one comparison
 *                   per row, column and target order statistic (6 targets:
 *                   the two ranks each quantile interpolates between)
 *   hist            one comparison per row and edge, summed
 * A constant column (min == max, an exact test) has zero variance: its
 * correlations are undefined (NAN here, null in JSON) and its std is 0.
 *
 * Fixed point: C's entries carry 2f fraction bits before truncation, so
 * they must stay below 2^(K-2-2f): FM64 (f = 18) about 6.7e7 for
 * sum((x - mean)^2) of any column, FM128 (f = 26) about 1.9e22; and the
 * divisions (mean, var, corr) and sqrt take divisors below 2^D (D = 18 in
 * FM64, 61 in FM128), so in FM64 n and every variance must be below 262144.
 * Use FM128 (the command's default) unless the data are small. */

#define AG_STATS_COUNT 0x001u
#define AG_STATS_SUM 0x002u
#define AG_STATS_MEAN 0x004u
#define AG_STATS_VAR 0x008u
#define AG_STATS_STD 0x010u
#define AG_STATS_MIN 0x020u
#define AG_STATS_MAX 0x040u
#define AG_STATS_QUANTILES 0x080u
#define AG_STATS_CORR 0x100u
#define AG_STATS_HIST 0x200u
#define AG_STATS_DEFAULT 0x1ffu /* all but hist */

/* The per-column values, in this order (JSON keys "count" ... "q75"). */
enum {
    AG_STATS_V_COUNT = 0,
    AG_STATS_V_SUM,
    AG_STATS_V_MEAN,
    AG_STATS_V_VAR,
    AG_STATS_V_STD,
    AG_STATS_V_MIN,
    AG_STATS_V_MAX,
    AG_STATS_V_Q25,
    AG_STATS_V_Q50,
    AG_STATS_V_Q75,
    AG_STATS_NVALUES
};

typedef enum ag_stats_partition {
    AG_STATS_VERTICAL = 0,   /* each party some columns of the same rows */
    AG_STATS_HORIZONTAL = 1, /* each party some rows of the same columns */
} ag_stats_partition;

/* Bin edges of one column's histogram: nedges >= 2, strictly increasing;
 * bins [e0, e1), [e1, e2), ..., [e(m-1), em] (numpy's: the last is closed,
 * values outside are not counted). */
typedef struct ag_stats_hist {
    const char *column;  /* its name in the output (party.NAME when shared) */
    const double *edges;
    size_t nedges;
} ag_stats_hist;

typedef struct ag_stats_opts {
    const char *input;               /* this party's CSV */
    ag_stats_partition partition;
    const char *const *keys;         /* vertical: key columns to align rows by
                                        (two parties); nkeys 0: rows in file
                                        order, and every party needs as many */
    size_t nkeys;
    const char *const *columns;      /* this party's columns; ncolumns 0: every
                                        non-key column whose first cell is a
                                        number */
    size_t ncolumns;
    unsigned stats;                  /* AG_STATS_* (0: AG_STATS_DEFAULT) */
    unsigned reveal_mask;            /* ranks that learn the results (bit r; 0:
                                        every party) */
    const ag_stats_hist *hists;      /* with AG_STATS_HIST; the same at every party */
    size_t nhists;
    unsigned iterations;             /* quantile bisection steps (0: 32) */
} ag_stats_opts;

typedef struct ag_stats_column {
    char name[160];                  /* as in the output */
    char party[32];                  /* its owner (vertical), or "" */
    double v[AG_STATS_NVALUES];      /* NAN where not requested or undefined */
    bool zero_variance;
    size_t nbins;                    /* histogram: nbins + 1 edges, nbins counts */
    double *edges;
    double *counts;
} ag_stats_column;

typedef struct ag_stats_result {
    bool learned;                    /* this party was told the results */
    unsigned stats;                  /* what was requested */
    uint64_t rows;
    size_t ncols;
    ag_stats_column *cols;
    double *corr;                    /* ncols x ncols, NAN where undefined */
} ag_stats_result;

void ag_stats_opts_init(ag_stats_opts *o);
/* Collective, inside a fed job of 2 or more parties (vertical with keys:
 * exactly 2). Returns 0 with *res filled (free with
 * ag_stats_result_cleanup), or a negative code after failing the job
 * (ag_fed_errmsg says why, naming the party; err holds the same). A bad
 * cell fails with "FILE:LINE: column 'x': 'abc' is not a number" at its
 * owner, while the others learn only "a cell of its input is not a
 * number". */
int ag_stats_run(ag_fed *f, const ag_stats_opts *o, ag_stats_result *res, ag_errbuf *err);
void ag_stats_result_cleanup(ag_stats_result *r);
/* "count,sum,...,corr,hist" (or "all") into a mask; -1 naming nothing. */
int ag_stats_parse_list(const char *list, unsigned *mask, ag_errbuf *err);
/* The pinned JSON ({"rows", "columns": {NAME: {"count", ...}}, "corr":
 * {"columns", "matrix"}}; undefined values are null, statistics not asked
 * are absent, histograms as "hist": {"edges", "counts"}) written to path
 * through a temporary name and a rename. */
int ag_stats_write_json(const ag_stats_result *r, const char *path, ag_errbuf *err);
/* The terminal table: a row per column, then the correlation matrix. */
void ag_stats_print(FILE *fp, const ag_stats_result *r);
/* ---- logistic regression on vertically partitioned data (lr.c) ------------------------ *
 *
 * Two parties hold different columns (features) of the same rows, aligned
 * (ag_apps_align, or files already in the same row order); one of them
 * also holds the 0/1 label. Training is mini-batch SGD on the logistic
 * loss inside the SPU (semi2k), batches taken in row order:
 *
 *   z = X_b w,  p = sigmoid(z),  w -= lr/|b| * X_b^T (p - y_b) + lr * l2 * w
 *
 * Each party standardises its own features in the clear (x - mean) / std
 * with its own columns' statistics (which only it knows: nothing is sent)
 * and secret-shares them; the label party adds the intercept column (all
 * ones, not penalised by l2). X, y and w stay secret-shared throughout.
 * What is revealed: both parties' row and feature counts, and per epoch
 * the loss: the mean squared residual (p - y)^2 over the rows (the Brier
 * score; the log loss would need a secure logarithm per row). The
 * weights are revealed only to the parties named in reveal_mask; every
 * party keeps its share, so that predictions need no reveal of w.
 *
 * The model (ag_lr_model) is one party's: the layout of the whole weight
 * vector (each party's feature count, the label party, which holds the
 * intercept as its block's last weight), its own features' names, means
 * and standard deviations, its share of the weights, and the weights in
 * the clear if they were revealed to it. A model file is text, one
 * `key value...` per line (ag_lr_model_save documents it).
 */

#define AG_LR_MAX_FEATURES 100000

typedef struct ag_lr_data {
    size_t rows;
    size_t cols;               /* this party's features */
    const double *x;           /* rows x cols, row-major, raw (unstandardised) */
    const char *const *names;  /* cols feature names */
    const double *y;           /* rows labels (0 or 1) at the label party, else NULL */
    const char *source;        /* for messages ("alice.csv"); may be NULL */
} ag_lr_data;

typedef struct ag_lr_epoch {
    unsigned epoch;            /* 1-based */
    unsigned epochs;
    size_t batch;              /* batches done in this epoch */
    size_t batches;
    double loss;               /* mean (p - y)^2, at the end of an epoch (NaN during one) */
    double seconds;            /* of this epoch so far */
    uint64_t bytes_sent;       /* this party's, this epoch so far */
} ag_lr_epoch;

/* Called by every party at the end of each epoch (done true) and, during
 * one, at most every 200 ms (done false). */
typedef void (*ag_lr_epoch_fn)(void *ud, const ag_lr_epoch *e, bool done);

typedef struct ag_lr_opts {
    unsigned epochs;           /* default 10 */
    size_t batch_size;         /* default 1024 */
    double learning_rate;      /* default 0.1 */
    double l2;                 /* default 0 */
    ag_sigmoid_mode sigmoid;   /* default AG_SIGMOID_SEG3 */
    unsigned label_rank;       /* the party holding the label */
    unsigned reveal_mask;      /* bit r: party r learns the weights */
    bool beaver_cache;         /* default true: mask each batch of X once
                                  (ag_mpc_xcache): per epoch, the products open
                                  only w and r, not X_b; memory 2-3x X's */
    ag_lr_epoch_fn epoch_fn;   /* may be NULL */
    void *epoch_ud;
} ag_lr_opts;

typedef struct ag_lr_model {
    char party[32];            /* this party's name */
    char parties[2][32];
    unsigned me;               /* this party's rank */
    unsigned label_rank;
    size_t cols[2];            /* features per party (the label party's block
                                  has one more weight: the intercept) */
    char **names;              /* cols[me] feature names */
    double *mean;              /* cols[me] */
    double *std;               /* cols[me] */
    ag_field field;
    unsigned fxp_bits;
    ag_sigmoid_mode sigmoid;   /* the one it was trained with */
    char id[33];               /* the same in both parties' files of a model */
    size_t nweights;           /* cols[0] + cols[1] + 1 */
    uint64_t *share;           /* nweights ring elements (2 words each in FM128) */
    double *weights;           /* nweights in the clear, or NULL if not revealed */
} ag_lr_model;

/* Fills o with the defaults above. */
void ag_lr_opts_init(ag_lr_opts *o);
/* Collective, inside a fed job of two parties: trains on this party's d
 * (the same row count at both; the label where o->label_rank says). On
 * success *out is this party's model (free with ag_lr_model_cleanup).
 * Errors (AG_E_LR_DATA with the column and line: a feature of zero
 * variance, a label that is not 0 or 1, row counts that differ) reach both
 * parties, each naming the party at fault. */
int ag_lr_train(ag_fed *f, const ag_lr_data *d, const ag_lr_opts *o, ag_lr_model *out,
                ag_errbuf *err);
/* Collective: scores this party's rows d (its model's features, in the
 * model's order; y ignored) with both parties' halves of a model. The
 * label party gets the probabilities of class 1 in scores (d->rows,
 * allocated with ag_malloc; NULL elsewhere): the linear score is opened to
 * it alone and the exact sigmoid applied in the clear. AG_E_LR_MODEL when
 * the two files are not halves of one model. */
int ag_lr_predict(ag_fed *f, const ag_lr_model *m, const ag_lr_data *d, double **scores,
                  ag_errbuf *err);
/* The features of table t as a rows x cols matrix (ag_malloc'd), every
 * cell a finite number ("alice.csv:17: column 'age': 'abc' is not a
 * number" otherwise, with the input's line). cols names the columns. */
int ag_lr_table_matrix(const ag_table *t, const char *source, const char *const *cols,
                       size_t ncols, double **out, ag_errbuf *err);
/* Writes m to path atomically (a temporary beside it, then rename). */
int ag_lr_model_save(const ag_lr_model *m, const char *path, ag_errbuf *err);
int ag_lr_model_load(const char *path, ag_lr_model *m, ag_errbuf *err);
void ag_lr_model_cleanup(ag_lr_model *m);
/* "real", "seg3", "mm1" -> the mode; -1 if none. */
int ag_lr_sigmoid_parse(const char *s);
const char *ag_lr_sigmoid_name(ag_sigmoid_mode m);

#endif /* ARGOT_APPS_H */
