/*
 * argot base library: what every other module stands on.
 *
 *   - errors:  codes (argot/error.h) and per-object messages (ag_errbuf)
 *   - memory:  allocation wrappers (with failure injection for tests), wiping
 *   - buffers: growable byte buffers with a maximum size, slices
 *   - arena:   bump allocation released in one step
 *   - log:     levels, one key=value line per event, a sink callback
 *   - time:    monotonic clock, deadlines
 *   - random:  secure random bytes (getrandom)
 *   - codec:   hex and base64 (standard and URL alphabets, padded or not)
 *   - strings: edit distance and "did you mean" suggestions
 *   - pool:    a thread pool with a bounded work queue and a parallel for
 *   - config:  a YAML reader (libfyaml) with typed getters and positioned errors
 *   - csv:     a streaming RFC 4180 reader and writer
 *   - metrics: counters, gauges and histograms in Prometheus's text format
 *
 * Thread safety: unless a comment says otherwise, an object is used by one
 * thread at a time; distinct objects may be used from distinct threads. The
 * log functions, the allocator, ag_random_bytes() and the metrics registry
 * are safe from any thread.
 */
#ifndef ARGOT_BASE_H
#define ARGOT_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "argot/error.h"

#define AG_VERSION "0.1.0"

#if defined(__GNUC__)
#define AG_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define AG_NODISCARD __attribute__((warn_unused_result))
#else
#define AG_PRINTF(fmt, args)
#define AG_NODISCARD
#endif

#define AG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define AG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define AG_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ------------------------------------------------------------------------ */
/* Errors with a message                                                     */
/* ------------------------------------------------------------------------ */

#define AG_ERRMSG_MAX 512

/* The last error of an object: its code and the sentence that explains it.
 * Embedded in every object that can fail (curl keeps it in the handle). */
typedef struct ag_errbuf {
    int code;                  /* last AG_E_* code, 0 if none */
    char msg[AG_ERRMSG_MAX];   /* NUL-terminated; "" if none */
} ag_errbuf;

/* Records code and a formatted message in e; returns code, so that a
 * failing path reads `return ag_errbuf_set(&r->err, AG_E_X, "...", ...)`.
 * A message longer than AG_ERRMSG_MAX - 1 is cut and ends in "...". */
int ag_errbuf_set(ag_errbuf *e, int code, const char *fmt, ...) AG_PRINTF(3, 4);
int ag_errbuf_vset(ag_errbuf *e, int code, const char *fmt, va_list ap) AG_PRINTF(3, 0);
void ag_errbuf_clear(ag_errbuf *e);

/* ------------------------------------------------------------------------ */
/* Memory                                                                    */
/* ------------------------------------------------------------------------ */

/* All argot code allocates through these, so tests can make any single
 * allocation fail (see tests/unit/runner.c) and count what is still live.
 * ag_free(NULL) does nothing. ag_realloc(p, 0) is not allowed. */
void *ag_malloc(size_t n);
void *ag_calloc(size_t count, size_t size);
void *ag_realloc(void *p, size_t n);
void *ag_reallocarray(void *p, size_t count, size_t size);
void ag_free(void *p);
char *ag_strdup(const char *s);
char *ag_strndup(const char *s, size_t n);
/* A copy of n bytes (n may be 0: a valid one-byte block then), for ag_free. */
void *ag_memdup(const void *p, size_t n);

/* Overwrites n bytes with zeros in a way the compiler may not elide. */
void ag_wipe(void *p, size_t n);

/* Failure injection, for the test runner. With tracking on, the allocator
 * counts calls and live blocks; with fail_at = k > 0, the k-th allocation
 * from now fails (returns NULL). Not meant for production use. */
void ag_alloc_tracking(bool on);
void ag_alloc_fail_at(uint64_t k);
uint64_t ag_alloc_count(void); /* allocations since tracking started */
int64_t ag_alloc_live(void);   /* allocations minus frees since then */
bool ag_alloc_failed(void);    /* an injected failure has happened */

/* ------------------------------------------------------------------------ */
/* Slices and buffers                                                        */
/* ------------------------------------------------------------------------ */

/* A borrowed byte range; passed by value. */
typedef struct ag_slice {
    const uint8_t *ptr;
    size_t len;
} ag_slice;

static inline ag_slice ag_slice_make(const void *p, size_t n)
{
    ag_slice s = {(const uint8_t *)p, n};
    return s;
}
ag_slice ag_slice_str(const char *s);
bool ag_slice_eq(ag_slice a, ag_slice b);
bool ag_slice_eq_str(ag_slice a, const char *s);

/* A growable byte buffer that never grows past max bytes (AG_E_TOO_LARGE).
 * data is NUL-terminated after every append (the NUL is not counted in len)
 * so text can be used directly. A buffer marked secret is wiped whenever its
 * memory is released or moved. Embed it and use _init/_cleanup. */
typedef struct ag_buf {
    uint8_t *data; /* NULL until the first append */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated (including the terminator) */
    size_t max;    /* bytes len may reach */
    bool secret;   /* wipe memory on release */
} ag_buf;

void ag_buf_init(ag_buf *b, size_t max);
void ag_buf_cleanup(ag_buf *b);
void ag_buf_reset(ag_buf *b); /* len = 0, keeps the memory (wiped if secret) */
int ag_buf_reserve(ag_buf *b, size_t extra) AG_NODISCARD;
int ag_buf_append(ag_buf *b, const void *p, size_t n) AG_NODISCARD;
int ag_buf_append_byte(ag_buf *b, uint8_t c) AG_NODISCARD;
int ag_buf_append_str(ag_buf *b, const char *s) AG_NODISCARD;
int ag_buf_printf(ag_buf *b, const char *fmt, ...) AG_PRINTF(2, 3) AG_NODISCARD;
int ag_buf_vprintf(ag_buf *b, const char *fmt, va_list ap) AG_PRINTF(2, 0) AG_NODISCARD;
/* Removes the first n bytes (n <= len). */
void ag_buf_consume(ag_buf *b, size_t n);
/* Hands the memory to the caller (who frees it with ag_free) and leaves b
 * empty. Returns NULL (and *len = 0) for a buffer never appended to. */
uint8_t *ag_buf_take(ag_buf *b, size_t *len);
static inline ag_slice ag_buf_slice(const ag_buf *b)
{
    return ag_slice_make(b->data, b->len);
}

/* ------------------------------------------------------------------------ */
/* Arena                                                                     */
/* ------------------------------------------------------------------------ */

/* Bump allocation for one unit of work (a call, a round, a batch): many
 * small allocations, released together by ag_arena_reset() or _free(). */
typedef struct ag_arena ag_arena;

#define AG_ARENA_SECRET 0x1u /* wipe memory on reset and free */

/* chunk: bytes per chunk (0 = 64 KiB); max: bytes the arena may hold in all
 * (0 = no limit). Returns NULL on allocation failure. */
ag_arena *ag_arena_new(size_t chunk, size_t max, unsigned flags);
void ag_arena_free(ag_arena *a);
/* Releases everything allocated; keeps one chunk for reuse. */
void ag_arena_reset(ag_arena *a);
/* n bytes aligned to 16; NULL on allocation failure or past max. Never
 * returns NULL for n == 0 (returns a unique, unusable pointer). */
void *ag_arena_alloc(ag_arena *a, size_t n);
void *ag_arena_calloc(ag_arena *a, size_t count, size_t size);
char *ag_arena_strndup(ag_arena *a, const char *s, size_t n);
size_t ag_arena_used(const ag_arena *a); /* bytes handed out since reset */

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum ag_log_level {
    AG_LOG_DEBUG = 0,
    AG_LOG_INFO = 1,
    AG_LOG_WARN = 2,
    AG_LOG_ERROR = 3,
    AG_LOG_OFF = 4,
} ag_log_level;

/* Receives one finished line: "<message>" without time, level or module,
 * which are passed apart so a sink can format or filter on them. Called on
 * the logging thread; must be thread-safe. */
typedef void (*ag_log_sink)(void *ud, ag_log_level level, const char *module,
                            const char *msg);

/* Installs the sink (NULL restores the default: stderr, one line per event,
 * "2026-11-23T10:00:00.123Z INFO rpc conn_open peer=10.0.0.2:9100"). */
void ag_log_set_sink(ag_log_sink sink, void *ud);
void ag_log_set_level(ag_log_level level);
ag_log_level ag_log_get_level(void);
/* "debug", "info", "warn", "error", "off" -> level; -1 if unknown. */
int ag_log_level_parse(const char *s);
const char *ag_log_level_name(ag_log_level level);

void ag__log(ag_log_level level, const char *module, const char *fmt, ...)
    AG_PRINTF(3, 4);

/* AG_LOG(AG_LOG_INFO, "rpc", "conn_open peer=%s fd=%d", peer, fd);
 * One event per line, key=value fields. The level is checked before the
 * arguments are evaluated; debug lines compile out when NDEBUG is set. Never
 * log a share, a key, a private input or a token. */
#define AG_LOG(level, module, ...)                                           \
    do {                                                                     \
        if (AG__LOG_ENABLED(level) && (int)(level) >= (int)ag_log_get_level()) \
            ag__log((level), (module), __VA_ARGS__);                         \
    } while (0)
#ifdef NDEBUG
#define AG__LOG_ENABLED(level) ((level) != AG_LOG_DEBUG)
#else
#define AG__LOG_ENABLED(level) 1
#endif

/* ------------------------------------------------------------------------ */
/* Time                                                                      */
/* ------------------------------------------------------------------------ */

uint64_t ag_now_ns(void); /* CLOCK_MONOTONIC, nanoseconds */
uint64_t ag_now_ms(void);
int64_t ag_wall_ms(void); /* CLOCK_REALTIME, milliseconds since the epoch */
void ag_sleep_ms(uint64_t ms);

/* A point in monotonic time by which something must be done. */
typedef struct ag_deadline {
    uint64_t at_ns; /* UINT64_MAX: never */
} ag_deadline;

ag_deadline ag_deadline_never(void);
ag_deadline ag_deadline_in_ms(uint64_t ms);
ag_deadline ag_deadline_in_ns(uint64_t ns);
bool ag_deadline_is_never(ag_deadline d);
bool ag_deadline_expired(ag_deadline d);
/* Milliseconds left, rounded up; 0 if expired; UINT64_MAX if never. */
uint64_t ag_deadline_remaining_ms(ag_deadline d);
/* The earlier of two deadlines. */
ag_deadline ag_deadline_min(ag_deadline a, ag_deadline b);

/* ------------------------------------------------------------------------ */
/* Random                                                                    */
/* ------------------------------------------------------------------------ */

/* n bytes from the kernel's CSPRNG (getrandom). Returns 0 or AG_E_SYS. */
int ag_random_bytes(void *buf, size_t n) AG_NODISCARD;
/* A uniform value in [0, bound) (bound > 0), without modulo bias; aborts
 * only if the kernel's generator is unavailable, which getrandom rules out
 * after boot. Not for secrets that must not depend on control flow. */
uint64_t ag_random_uniform(uint64_t bound);

/* ------------------------------------------------------------------------ */
/* Hex and base64                                                            */
/* ------------------------------------------------------------------------ */

/* The value of a hex digit (0-9, a-f, A-F), or -1. */
int ag_hex_digit(char c);
/* Lowercase hex of n bytes into out, which has room for 2n + 1 bytes
 * (NUL-terminated). Returns 2n. */
size_t ag_hex_encode(char *out, const void *in, size_t n);
/* Decodes 2k hex digits (either case) into out (room for k bytes). Returns
 * k, AG_E_ENCODING on an odd length or a non-hex character, AG_E_TOO_LARGE
 * if out is too small. */
ssize_t ag_hex_decode(void *out, size_t outcap, const char *in, size_t n);

/* base64 flags: alphabet and padding. Encoding pads unless AG_B64_NOPAD.
 * Decoding requires canonical padding, forbids it with AG_B64_NOPAD, and
 * accepts either with AG_B64_PAD_OPTIONAL (gRPC's rule for -bin headers).
 * Decoding rejects characters outside the alphabet, whitespace, and
 * non-zero trailing bits (so every byte string has one encoding). */
#define AG_B64_STD 0x0u
#define AG_B64_URL 0x1u          /* '-' and '_' instead of '+' and '/' */
#define AG_B64_NOPAD 0x2u
#define AG_B64_PAD_OPTIONAL 0x4u /* decoding only */

/* Bytes ag_base64_encode writes for n input bytes, terminator not counted. */
size_t ag_base64_encoded_len(size_t n, unsigned flags);
/* Encodes into out (room for ag_base64_encoded_len + 1, NUL-terminated).
 * Returns the length written. */
size_t ag_base64_encode(char *out, const void *in, size_t n, unsigned flags);
/* Upper bound of the decoded size of n characters. */
size_t ag_base64_decoded_max(size_t n);
/* Returns the decoded length, AG_E_ENCODING, or AG_E_TOO_LARGE. */
ssize_t ag_base64_decode(void *out, size_t outcap, const char *in, size_t n,
                         unsigned flags);

/* ------------------------------------------------------------------------ */
/* Strings                                                                   */
/* ------------------------------------------------------------------------ */

/* Levenshtein distance between a and b (each at most 255 bytes compared;
 * longer strings are compared on their first 255 bytes). */
size_t ag_edit_distance(const char *a, const char *b);
/* The candidate closest to word, if close enough to be a plausible typo
 * (distance <= max(1, strlen(word) / 3)); NULL otherwise. candidates is
 * NULL-terminated. Used for "did you mean" in every error about a name. */
const char *ag_nearest(const char *word, const char *const *candidates);

/* ------------------------------------------------------------------------ */
/* Thread pool                                                               */
/* ------------------------------------------------------------------------ */

typedef struct ag_pool ag_pool;
typedef void (*ag_task_fn)(void *arg);

/* nthreads: worker threads (0 = one per online CPU); max_queue: tasks that
 * may wait (0 = 1024). name: thread name prefix (at most 10 chars shown).
 * Returns 0 or AG_E_NOMEM / AG_E_SYS; *out is set on success only. */
int ag_pool_new(ag_pool **out, unsigned nthreads, size_t max_queue, const char *name);
/* Runs every queued task, then joins the workers. NULL does nothing. */
void ag_pool_free(ag_pool *p);
unsigned ag_pool_nthreads(const ag_pool *p);
/* Queues fn(arg), waiting while the queue is full. AG_E_CLOSED after
 * ag_pool_free began. */
int ag_pool_submit(ag_pool *p, ag_task_fn fn, void *arg);
/* As submit, but AG_E_AGAIN at once when the queue is full. */
int ag_pool_try_submit(ag_pool *p, ag_task_fn fn, void *arg);
/* Waits until the queue is empty and no task is running. */
void ag_pool_wait_idle(ag_pool *p);

/* Calls fn(ctx, begin, end) over [0, n) in chunks of at most grain items,
 * on the pool's workers and the calling thread, and returns when every
 * chunk is done. The calling thread must not be one of p's workers. With
 * p == NULL, runs everything on the calling thread. */
typedef void (*ag_range_fn)(void *ctx, size_t begin, size_t end);
int ag_pool_parallel_for(ag_pool *p, size_t n, size_t grain, ag_range_fn fn, void *ctx);

/* ------------------------------------------------------------------------ */
/* Config (YAML)                                                             */
/* ------------------------------------------------------------------------ */

/* A parsed YAML document: a tree of nodes, each with the line and column
 * where it starts, and the file name, so that every error can say where.
 * Nodes are borrowed from their ag_config and live until ag_config_free().
 *
 * Typed getters report the first problem in the config's errbuf and return
 * its code; ag_config_errmsg() then reads e.g.
 *   cluster.yaml:7:5: unknown key 'adress' (did you mean 'address'?)
 *   cluster.yaml:9:24: 'fxp_fraction_bits' must be an integer, got 'x'
 *   cluster.yaml:3:3: missing required key 'address' in 'parties.alice'
 *   cluster.yaml:4:1: syntax error: <what the YAML parser said>
 * Line and column are 1-based. */
typedef struct ag_config ag_config;
typedef struct ag_cnode ag_cnode;

typedef enum ag_cnode_type {
    AG_CNODE_NULL = 0, /* empty, ~ or null (plain) */
    AG_CNODE_SCALAR,
    AG_CNODE_SEQ,
    AG_CNODE_MAP,
} ag_cnode_type;

ag_config *ag_config_new(void);
void ag_config_free(ag_config *c);
/* Parses a file (or, for _string, len bytes named name in messages).
 * Duplicate keys, aliases to unknown anchors, more than one document and
 * nesting deeper than 64 levels are errors. May be called once per config. */
int ag_config_load_file(ag_config *c, const char *path);
int ag_config_load_string(ag_config *c, const char *name, const char *text, size_t len);
const char *ag_config_errmsg(const ag_config *c);
int ag_config_errcode(const ag_config *c);
const char *ag_config_name(const ag_config *c); /* file name given to load */
/* Reports a semantic error found by the caller at node n:
 * "<file>:<line>:<col>: <message>". Returns code. */
int ag_config_errorf(ag_config *c, const ag_cnode *n, int code, const char *fmt, ...)
    AG_PRINTF(4, 5);

/* The same for an error at line:col (1-based) within scalar n's text (a
 * dtab in a block scalar, say): the file position is computed from the
 * node's (exact for block scalars and one-line scalars). */
int ag_config_errorf_within(ag_config *c, const ag_cnode *n, int line, int col, int code,
                            const char *fmt, ...) AG_PRINTF(6, 7);

const ag_cnode *ag_config_root(const ag_config *c); /* NULL before load */

ag_cnode_type ag_cnode_type_of(const ag_cnode *n);
int ag_cnode_line(const ag_cnode *n);   /* 1-based */
int ag_cnode_column(const ag_cnode *n); /* 1-based */
/* The dotted path from the root ("parties.alice.address", "hosts[2]"). */
const char *ag_cnode_path(const ag_cnode *n);
/* Scalar text (NUL-terminated; may contain NULs, see _scalar_len); NULL
 * for a non-scalar. For AG_CNODE_NULL returns "". */
const char *ag_cnode_scalar(const ag_cnode *n);
size_t ag_cnode_scalar_len(const ag_cnode *n);
bool ag_cnode_is_quoted(const ag_cnode *n); /* written '...' or "..." or block */
/* Items of a sequence, or pairs of a mapping (in document order). */
size_t ag_cnode_len(const ag_cnode *n);
const ag_cnode *ag_cnode_item(const ag_cnode *n, size_t i); /* seq or map value */
const ag_cnode *ag_cnode_key(const ag_cnode *n, size_t i);  /* map key node */
/* The value of key in mapping map; NULL if map is NULL, not a mapping, or
 * has no such key. */
const ag_cnode *ag_cnode_get(const ag_cnode *map, const char *key);

/* Every key of map must be one of known (NULL-terminated); the first that
 * is not gives AG_E_CONFIG_UNKNOWN_KEY with a "did you mean". A non-mapping
 * map gives AG_E_CONFIG_TYPE. map == NULL is fine (nothing to check). */
int ag_config_check_keys(ag_config *c, const ag_cnode *map, const char *const *known);

/* Typed getters: look key up in map. When the key is absent (or map is
 * NULL): with AG_REQUIRED, AG_E_CONFIG_MISSING; otherwise 0 and *out is left
 * as it was, so callers preset defaults. A value of the wrong type gives
 * AG_E_CONFIG_TYPE, one out of range AG_E_CONFIG_VALUE. */
#define AG_OPTIONAL false
#define AG_REQUIRED true
int ag_config_get_str(ag_config *c, const ag_cnode *map, const char *key, bool required,
                      const char **out);
/* A file path: as written when absolute, else relative to the directory
 * of the config file (ag_config_name), into out (cap bytes; a longer path
 * is AG_E_CONFIG_VALUE). Absent: out is left as it was (or MISSING). */
int ag_config_get_path(ag_config *c, const ag_cnode *map, const char *key, bool required,
                       char *out, size_t cap);
/* The same for a scalar node itself (an item of a list of files); what
 * names it in errors ("trustCerts: the path is longer than ..."). */
int ag_config_path_of(ag_config *c, const ag_cnode *n, const char *what, char *out, size_t cap);
/* A network address "host:port" (a non-empty host and port; unix:/path
 * also) into out (cap bytes). Absent: out is left as it was (or MISSING). */
int ag_config_get_hostport(ag_config *c, const ag_cnode *map, const char *key, bool required,
                           char *out, size_t cap);

/* The keys every argot daemon takes, read from its config's root (the
 * caller lists "admin", "log" and "shutdown_grace" among its known keys):
 *   admin: {address: "127.0.0.1:9401"}   HTTP /metrics and /healthz
 *   log: {level: info}                   debug, info, warn, error, off
 *   shutdown_grace: 10s                  calls in flight when stopping
 * Fields not given are left as preset (log_level: preset -1 to tell). */
typedef struct ag_daemon_conf {
    char admin[256];            /* "" : no admin endpoint */
    int log_level;              /* an ag_log_level, or -1 */
    uint64_t shutdown_grace_ms;
} ag_daemon_conf;
int ag_config_get_daemon(ag_config *c, const ag_cnode *root, ag_daemon_conf *d);
/* Integers: decimal, 0x hex, 0o octal, optional sign, '_' separators not
 * allowed; within [min, max]. */
int ag_config_get_i64(ag_config *c, const ag_cnode *map, const char *key, bool required,
                      int64_t min, int64_t max, int64_t *out);
int ag_config_get_double(ag_config *c, const ag_cnode *map, const char *key, bool required,
                         double *out);
/* true/false (also True/TRUE/False/FALSE), as YAML 1.2's core schema. */
int ag_config_get_bool(ag_config *c, const ag_cnode *map, const char *key, bool required,
                       bool *out);
/* A duration: an integer with a unit, "250ms", "10s", "5m", "2h" (also
 * "us"); a bare 0 is allowed. Stored in milliseconds (us rounded up). */
int ag_config_get_duration_ms(ag_config *c, const ag_cnode *map, const char *key,
                              bool required, uint64_t *out);
/* A size: an integer with an optional unit B, KiB, MiB, GiB, TiB (or K, M,
 * G, T as binary units); in bytes. */
int ag_config_get_size(ag_config *c, const ag_cnode *map, const char *key, bool required,
                       uint64_t *out);
/* A nested mapping or sequence; absent -> *out untouched (or MISSING). */
int ag_config_get_map(ag_config *c, const ag_cnode *map, const char *key, bool required,
                      const ag_cnode **out);
int ag_config_get_seq(ag_config *c, const ag_cnode *map, const char *key, bool required,
                      const ag_cnode **out);

/* ------------------------------------------------------------------------ */
/* CSV                                                                       */
/* ------------------------------------------------------------------------ */

/* RFC 4180 with the usual relaxations: fields separated by a delimiter,
 * optionally quoted with '"' (a quote inside is doubled), records ended by
 * LF or CRLF (a quoted field may hold either), a UTF-8 byte order mark at
 * the start is skipped, the last record may lack its line ending. A line
 * that is entirely empty is skipped. The first record is the header.
 *
 * The reader streams: it holds one read buffer and one record, never the
 * file, so memory stays constant whatever the file size (up to max_record
 * bytes in one record). Errors name the file and the line where the record
 * started: "bob.csv:1042: 3 fields, header has 5". */
typedef struct ag_csv_opts {
    char delimiter;       /* default ',' */
    bool header;          /* first record is a header (default true) */
    size_t max_record;    /* bytes in one record, unquoted (default 16 MiB) */
    size_t max_fields;    /* fields in one record (default 65536) */
    bool crlf;            /* writer: end records with CRLF (default LF) */
} ag_csv_opts;

/* Fills opts with the defaults. */
void ag_csv_opts_init(ag_csv_opts *opts);

typedef struct ag_csv_reader ag_csv_reader;

/* opts may be NULL for the defaults. NULL on allocation failure. */
ag_csv_reader *ag_csv_reader_new(const ag_csv_opts *opts);
void ag_csv_reader_free(ag_csv_reader *r); /* closes what it opened */
/* Opens path ("-" is standard input) and, with opts.header, reads the
 * header: an empty file (no header) is AG_E_CSV_SYNTAX "no header row";
 * duplicate column names are AG_E_CSV_SYNTAX. */
int ag_csv_reader_open(ag_csv_reader *r, const char *path);
/* As _open on an already open descriptor (not closed by the reader). */
int ag_csv_reader_open_fd(ag_csv_reader *r, int fd, const char *name);
/* As _open on bytes in memory (borrowed until the reader is freed). */
int ag_csv_reader_open_mem(ag_csv_reader *r, const void *data, size_t len, const char *name);
const char *ag_csv_reader_errmsg(const ag_csv_reader *r);

/* Reads the next record: 1 when one was read, 0 at the end, or a negative
 * code (AG_E_CSV_SYNTAX, AG_E_CSV_FIELDS, AG_E_TOO_LARGE, AG_E_IO). With a
 * header, every record must have as many fields as the header. After an
 * error the reader is done: further calls return the same error. */
int ag_csv_next(ag_csv_reader *r);

/* The header (valid after open with opts.header). */
size_t ag_csv_ncols(const ag_csv_reader *r);
const char *ag_csv_colname(const ag_csv_reader *r, size_t i);
/* Index of the column named name, or AG_E_CSV_COLUMN with the message
 * "a.csv: no column 'id' in header (columns: k, v)" (and a "did you mean"
 * when one is close). */
int ag_csv_col(ag_csv_reader *r, const char *name);

/* The current record (valid until the next ag_csv_next). */
size_t ag_csv_nfields(const ag_csv_reader *r);
ag_slice ag_csv_field(const ag_csv_reader *r, size_t i);
uint64_t ag_csv_line(const ag_csv_reader *r);   /* line where the record starts (1-based) */
uint64_t ag_csv_record(const ag_csv_reader *r); /* data records read so far */
uint64_t ag_csv_bytes(const ag_csv_reader *r);  /* input bytes consumed so far */

/* Typed access to field i of the current record, with errors like
 * "a.csv:12: column 'age': 'abc' is not an integer" (AG_E_CSV_VALUE) and
 * "b.csv:17: column 'id': invalid UTF-8 at byte 4" (AG_E_CSV_UTF8). */
int ag_csv_get_i64(ag_csv_reader *r, size_t i, int64_t *out);
int ag_csv_get_double(ag_csv_reader *r, size_t i, double *out);
/* The field as text, checked to be valid UTF-8 (for key columns). */
int ag_csv_get_utf8(ag_csv_reader *r, size_t i, ag_slice *out);

/* True if s is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF);
 * *bad (if not NULL) gets the offset of the first bad byte. */
bool ag_utf8_valid(ag_slice s, size_t *bad);

typedef struct ag_csv_writer ag_csv_writer;

ag_csv_writer *ag_csv_writer_new(const ag_csv_opts *opts);
/* Flushes and closes; returns the first error of the writer's life, so that
 * a full disk is never silent. NULL returns 0. */
int ag_csv_writer_close(ag_csv_writer *w);
/* Creates or truncates path ("-" is standard output). */
int ag_csv_writer_open(ag_csv_writer *w, const char *path);
int ag_csv_writer_open_fd(ag_csv_writer *w, int fd, const char *name);
/* Writes to a caller's buffer instead of a file (for tests and in-memory
 * results); the buffer's max applies. */
int ag_csv_writer_open_buf(ag_csv_writer *w, ag_buf *out);
const char *ag_csv_writer_errmsg(const ag_csv_writer *w);
/* Appends one field to the current record, quoting it only if it holds the
 * delimiter, a quote, CR or LF (or, as the first field of the output, starts
 * with the bytes of a UTF-8 BOM, which a reader would strip). */
int ag_csv_write_field(ag_csv_writer *w, ag_slice field);
int ag_csv_end_record(ag_csv_writer *w);
/* A whole record. */
int ag_csv_write_record(ag_csv_writer *w, const ag_slice *fields, size_t n);
int ag_csv_writer_flush(ag_csv_writer *w);

/* ------------------------------------------------------------------------ */
/* Metrics                                                                   */
/* ------------------------------------------------------------------------ */

/* A registry of metric families, rendered in Prometheus's text exposition
 * format 0.0.4 (what a daemon's admin endpoint serves at /metrics).
 *
 * A family has a name, a help text and fixed label names; it holds one
 * series per tuple of label values, made on first use and kept until the
 * registry is freed. Names follow Prometheus's rules: metric names
 * [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* not starting
 * with "__" (and "le" is refused on histograms). A counter's name is used as
 * given: call it "x_total" if that is what it should be.
 *
 * Threads: everything here is safe from any thread. An update of a family
 * without labels is a few atomic operations (no lock, no lookup); one with
 * labels takes the family's mutex to find its series. Families are rendered
 * in the order they were registered, series in the order they appeared. */
typedef struct ag_metrics ag_metrics;
typedef struct ag_metric ag_metric;

/* NULL on allocation failure. */
ag_metrics *ag_metrics_new(void);
/* Frees the registry and every family in it. NULL does nothing. */
void ag_metrics_free(ag_metrics *r);
/* Why the last registration failed ("bad metric name '2x'"); "" if none. */
const char *ag_metrics_errmsg(const ag_metrics *r);

/* Registers a family. labels: label names separated by commas ("method,code"),
 * or NULL / "" for none (at most 16). Returns the family (owned by r, valid
 * until ag_metrics_free), or NULL with ag_metrics_errmsg set: a bad name or
 * label (AG_E_INVAL), a name already registered (AG_E_EXISTS), no memory. */
ag_metric *ag_metrics_counter(ag_metrics *r, const char *name, const char *help,
                              const char *labels);
ag_metric *ag_metrics_gauge(ag_metrics *r, const char *name, const char *help,
                            const char *labels);
/* bounds: the buckets' upper bounds, finite and strictly increasing (at most
 * 64; "+Inf" is implicit); NULL for latencies in seconds from 50 us to 10 s
 * (AG_METRICS_LATENCY_BOUNDS). */
ag_metric *ag_metrics_histogram(ag_metrics *r, const char *name, const char *help,
                                const char *labels, const double *bounds, size_t nbounds);
/* A gauge without labels whose value fn(ud) returns when the registry is
 * rendered (resident memory, open sessions). fn runs on the rendering
 * thread, under no lock of the registry, and must be safe there. */
ag_metric *ag_metrics_gauge_fn(ag_metrics *r, const char *name, const char *help,
                               double (*fn)(void *ud), void *ud);

/* The default histogram bounds: 50us, 100us, 250us, 500us, 1ms, ... 5s, 10s. */
#define AG_METRICS_LATENCY_BOUNDS                                             \
    {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,     \
     0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

/* Updates. After v come the label values, as const char *, exactly as many as
 * the family has label names (none for a family without labels). A NULL m
 * does nothing, so a daemon may run without a registry. An update that
 * cannot get memory for a new series is dropped.
 *   ag_metric_add:     counters (v >= 0; a negative or NaN v is ignored) and
 *                      gauges (any v)
 *   ag_metric_set:     gauges
 *   ag_metric_observe: histograms (v lands in the first bucket whose bound
 *                      is >= v, and in _sum and _count)
 * Calling one on a family of another kind is a programming error: it fails an
 * assert (or, built with NDEBUG, does nothing). */
void ag_metric_add(ag_metric *m, double v, ...);
void ag_metric_set(ag_metric *m, double v, ...);
void ag_metric_observe(ag_metric *m, double v, ...);
/* The same with the label values in an array. */
void ag_metric_addv(ag_metric *m, double v, const char *const *values);
void ag_metric_setv(ag_metric *m, double v, const char *const *values);
void ag_metric_observev(ag_metric *m, double v, const char *const *values);

/* Appends every family to out in the text exposition format 0.0.4: "# HELP"
 * and "# TYPE" lines, then one line per series; histograms as cumulative
 * _bucket{le="..."} lines ending with le="+Inf", then _sum and _count. Help
 * texts escape '\' and newline, label values '\', '"' and newline. Returns 0,
 * AG_E_TOO_LARGE past out's maximum, or AG_E_NOMEM. */
int ag_metrics_render(ag_metrics *r, ag_buf *out);

#endif /* ARGOT_BASE_H */
