/*
 * argot fed: the federated programming model. Parties by name, PYU devices
 * (plaintext compute at one party), the SPU device (joint secure compute
 * over the mpc module), objects, transfers and reveal: what a SecretFlow
 * user does with sf.init, sf.PYU, sf.SPU, .to(spu) and sf.reveal.
 *
 * SPMD, as RayFed does it: every party runs the same job function. Each
 * call names the party or device that executes it; at the other parties
 * the call only records the object (ids agree everywhere, without a
 * coordinator, because every party makes the same calls in the same
 * order). When an object of alice's is an argument of a call at bob, or is
 * secret-shared into the SPU, alice pushes it and bob waits for it. Calls
 * run eagerly: a PYU call at this party runs before it returns; sends never
 * block, so a job cannot deadlock.
 *
 *     static int add_one(ag_pyu_ctx *c, const ag_value *args, size_t n, ag_value *out)
 *     {
 *         return ag_value_scalar_f64(out, ag_value_f64(&args[0])[0] + 1);
 *     }
 *     static int job(ag_fed *f, void *ud)
 *     {
 *         ag_obj *a = ag_pyu_call(f, "alice", add_one, ag_const_f64(f, 2));
 *         ag_obj *b = ag_pyu_call(f, "bob", add_one, ag_const_f64(f, 2));
 *         ag_obj *s = ag_spu_mul(f, ag_to_spu(f, a), ag_to_spu(f, b));
 *         double v;
 *         if (ag_reveal_f64(f, s, &v) < 0)
 *             return -1;                       // ag_fed_errmsg(f) says why
 *         printf("%g\n", v);                   // every party prints 9
 *         return 0;
 *     }
 *     int main(int argc, char **argv) { return ag_fed_main(argc, argv, job, NULL); }
 *
 * Modes (ag_fed_main), with the same job and the same results:
 *   --sim alice,bob             one process, a thread per party, in-memory links;
 *   argot launch --sim alice,bob -- PROG ARGS
 *                               one process per party on loopback, gRPC links
 *                               (launch passes ARGOT_CLUSTER and ARGOT_PARTY);
 *   --config cluster.yaml --party alice
 *                               production: this process is one party; one
 *                               address (one port) per party for everything.
 *
 * Errors are carried in objects: a PYU function that fails makes its
 * object an error; the error travels wherever the object would have gone
 * (to another party, into the SPU, to a reveal), so every party that needs
 * the object learns "party alice: add_one: <why>" instead of hanging.
 * Objects built from an error object are errors too. A broken link (a
 * party died, a timeout) breaks the runtime: every later call fails at
 * once with the first cause, which names the party.
 *
 * Objects belong to the runtime and are freed with it (or earlier with
 * ag_obj_free). One runtime is used by one thread. Secret values are
 * wiped when freed; nothing here logs a value.
 */
#ifndef ARGOT_FED_H
#define ARGOT_FED_H

#include "argot/base.h"
#include "argot/link.h"
#include "argot/mpc.h"

typedef struct ag_fed ag_fed;
typedef struct ag_obj ag_obj;

/* ---- values: what PYU functions compute on --------------------------------- */

typedef enum ag_vtype {
    AG_V_NONE = 0,
    AG_V_F64,    /* a tensor of doubles */
    AG_V_I64,    /* a tensor of int64_t */
    AG_V_BYTES,  /* a byte string */
    AG_V_TABLE,  /* a table of text cells read from CSV */
} ag_vtype;

typedef struct ag_table ag_table;

/* A plaintext value. Tensors are row-major; ndim 0 is a scalar. The value
 * owns data (and table). */
typedef struct ag_value {
    ag_vtype type;
    int ndim;
    int64_t shape[AG_TENSOR_MAX_DIMS];
    size_t numel;    /* tensor elements, or byte-string length */
    void *data;
    ag_table *table;
} ag_value;

/* A zero tensor of doubles (int64s) of the given shape. AG_E_MPC_SHAPE for
 * a bad shape, AG_E_NOMEM. */
int ag_value_f64_init(ag_value *v, int ndim, const int64_t *shape);
int ag_value_i64_init(ag_value *v, int ndim, const int64_t *shape);
int ag_value_scalar_f64(ag_value *v, double x);
int ag_value_scalar_i64(ag_value *v, int64_t x);
int ag_value_bytes(ag_value *v, const void *data, size_t len);
/* Takes ownership of t. */
void ag_value_table(ag_value *v, ag_table *t);
int ag_value_copy(ag_value *dst, const ag_value *src);
/* Frees (and wipes) the contents; v becomes AG_V_NONE. */
void ag_value_cleanup(ag_value *v);
static inline double *ag_value_f64(const ag_value *v)
{
    return (double *)v->data;
}
static inline int64_t *ag_value_i64(const ag_value *v)
{
    return (int64_t *)v->data;
}
const char *ag_vtype_name(ag_vtype t);
/* "f64(3,2)", "bytes(17)", "table(500x2)" into buf. */
const char *ag_value_describe(const ag_value *v, char *buf, size_t cap);

/* Tables: the rows of a CSV file (ag_csv_reader's rules: RFC 4180, header
 * row, UTF-8), every cell kept as text. */
int ag_table_read_csv(const char *path, ag_table **out, char *err, size_t errcap);
void ag_table_free(ag_table *t);
size_t ag_table_nrows(const ag_table *t);
size_t ag_table_ncols(const ag_table *t);
const char *ag_table_colname(const ag_table *t, size_t col);
/* The column's index, or -1. */
int ag_table_col(const ag_table *t, const char *name);
/* Cell text (NUL-terminated; *len may be NULL). */
const char *ag_table_cell(const ag_table *t, size_t row, size_t col, size_t *len);
/* The file line a row came from (1-based; the header is line 1). */
uint64_t ag_table_line(const ag_table *t, size_t row);
/* Where rows came from, for messages: the file's name, and a row's line
 * (for a table derived from another file, e.g. rows aligned by key). */
int ag_table_set_source(ag_table *t, const char *path);
void ag_table_set_line(ag_table *t, size_t row, uint64_t line);
/* The named column as an (nrows) tensor of doubles; a cell that is not a
 * finite number fails with "FILE:LINE: column 'x': 'abc' is not a number". */
int ag_table_column_f64(const ag_table *t, const char *col, ag_value *out, char *err,
                        size_t errcap);

/* ---- the runtime -------------------------------------------------------------- */

typedef enum ag_beaver_dealer {
    AG_BEAVER_TFP = 0, /* trusted first party: rank 0 deals (see mpc.h's warning) */
    AG_BEAVER_TTP = 1, /* trusted third party: `argot beaver-server` deals */
} ag_beaver_dealer;

typedef struct ag_spu_config {
    char protocol[16];    /* "semi2k" */
    ag_field field;       /* AG_FM64 or AG_FM128 */
    unsigned fxp_bits;    /* 0: the field's default (18, 26) */
    ag_beaver_dealer dealer;
    char beaver_server[256];      /* TTP: the dealer's "host:port" */
    char beaver_server_name[256]; /* TTP over TLS: the name its certificate must carry
                                   * ("": the address's host) */
} ag_spu_config;

typedef struct ag_fed_opts {
    unsigned rank;                   /* this party */
    unsigned n;                      /* parties */
    const char *const *names;        /* n party names */
    ag_link *link;                   /* borrowed: this party's endpoint */
    ag_spu_config spu;
    int argc;                        /* the job's own arguments */
    char **argv;
    void *udata;                     /* the job's (ag_fed_udata) */
    const char *session;             /* the job's id, for the dealer's logs (may be NULL) */
    /* TLS to a TTP dealer (mutual: this party's certificate, and the CA
     * that issued the dealer's); NULL: plaintext */
    const char *tls_cert, *tls_key, *tls_ca;
} ag_fed_opts;

/* The cluster config of production mode (design.md), YAML:
 *
 *   parties:                        # 2 to 8, in rank order
 *     alice: {address: "127.0.0.1:9100"}
 *     bob:   {address: "127.0.0.1:9101"}
 *   spu: {protocol: semi2k, field: FM64, fxp_fraction_bits: 18, beaver: tfp}
 *   session: job-2026-11-23         # optional job id (default "argot")
 *
 * beaver: tfp (the trusted first party, rank 0) or ttp, a trusted third
 * party: then `beaver_server: "host:port"` names the `argot beaver-server`
 * every party registers with (over TLS with the party's certificate when
 * the config has a tls section; `beaver_server_name` is the name the
 * dealer's certificate must carry, by default the address's host).
 *   timeout: 60s                    # optional link receive timeout
 *   tls: {cert: alice.crt, key: alice.key, ca: ca.crt}
 *
 * tls (paths relative to the config file) turns on mutual TLS between the
 * parties with party certificates (`argot ca init`, `argot ca issue`): each
 * party proves its name, and may only send as itself. It is required when
 * any address is off loopback.
 *
 * Gateways (`argot mesh`, one per party; every party has one or none has):
 *
 *   parties:
 *     alice: {address: "127.0.0.1:9100", gateway: "10.0.1.1:4143"}
 *     bob:   {address: "127.0.0.1:9100", gateway: "10.0.2.1:4143"}
 *
 * then address is where the party's link serves, reached by its own gateway
 * only (typically loopback), and gateway is the gateway's public address,
 * the one port the other parties reach: every link message goes from the
 * sender's gateway to the receiver's (`argot mesh init` writes each
 * gateway's config from this file). tls is then required.
 *
 * Workers (optional; apps that split their work, `argot psi` today):
 *
 *   workers: {count: 2, provider: argot, rm: "10.0.1.5:8030",
 *             queue: root.default, memory_mb: 1024, vcores: 1}
 *
 * this party's process becomes a coordinator: it obtains count containers
 * from its own scheduler (provider argot: the `argot rm` at rm, as an
 * unmanaged application master; slurm: not built yet), runs a worker of
 * the same binary in each, and worker i talks to the peer's worker i
 * directly. Every party's file must give the same count (the app checks it
 * with the peer and names both counts otherwise); rm, queue and the
 * resources are this party's own. Workers read the input, the config and
 * the TLS files by the paths the coordinator was given and share a job
 * directory with it (under $TMPDIR or the app's tmpdir): those paths must
 * be visible on the scheduler's nodes (a shared file system). */
#define AG_CLUSTER_MAX_PARTIES 8
#define AG_CLUSTER_MAX_WORKERS 64
typedef struct ag_cluster_workers {
    unsigned count;        /* workers per party; 0: no workers section */
    char provider[16];     /* "argot" or "slurm" */
    char rm[256];          /* argot: this party's RM, "host:port" */
    char queue[128];       /* "": the RM's default queue */
    int64_t memory_mb;     /* per worker container (default 1024) */
    int32_t vcores;        /* per worker container (default 1) */
} ag_cluster_workers;

typedef struct ag_cluster {
    int n;
    char names[AG_CLUSTER_MAX_PARTIES][32];
    char addresses[AG_CLUSTER_MAX_PARTIES][256];
    char gateways[AG_CLUSTER_MAX_PARTIES][256]; /* "" without gateways */
    bool has_gateways;     /* every party has a gateway */
    /* Where the party's `argot console` takes its peer consoles' calls
     * (proposals, decisions, starts): "" when not given. */
    char consoles[AG_CLUSTER_MAX_PARTIES][256];
    ag_spu_config spu;
    bool has_spu;          /* the file has an spu section */
    char session[128];
    uint64_t timeout_ms;   /* 0: not given */
    bool has_tls;
    char tls_cert[1024], tls_key[1024], tls_ca[1024];
    ag_cluster_workers workers;
} ag_cluster;

/* Reads and checks path; on failure err holds "<file>:<line>:<col>: why". */
int ag_cluster_load(const char *path, ag_cluster *c, char *err, size_t errcap);
/* The rank of a party name, or -1. */
int ag_cluster_rank(const ag_cluster *c, const char *name);

/* ---- workers (workers.c) ------------------------------------------------------ *
 *
 * The containers of a party's `workers:` section, for an app that spreads
 * its share of a job over processes (argot psi). The caller becomes an
 * unmanaged application master of the party's scheduler. One thread. */
typedef struct ag_fed_workers ag_fed_workers;

/* Obtains c->workers.count containers (application name, within 60 s)
 * and starts argv in container i followed by `--worker i --worker-host
 * HOST` (HOST: the container's node, where the worker should listen).
 * NULL with err set ("RM 127.0.0.1:8030 granted 1 of 2 worker containers
 * ..."); then nothing is left running and the application is finished
 * FAILED. Blocks. */
ag_fed_workers *ag_fed_workers_start(const ag_cluster *c, const char *name,
                                     const char *const *argv, char *err, size_t cap);
/* One heartbeat with the scheduler (call every second or more often):
 * 0 while no worker failed; AG_E_IO with err naming the worker, its
 * container and exit status when one exited non-zero or was lost (*failed:
 * its index, or the count when the scheduler itself failed). */
int ag_fed_workers_check(ag_fed_workers *ws, unsigned *failed, char *err, size_t cap);
/* Worker i's container id; the application's id. */
const char *ag_fed_workers_container(const ag_fed_workers *ws, unsigned i);
const char *ag_fed_workers_app(const ag_fed_workers *ws);
/* Stops the containers still running, finishes the application (SUCCEEDED
 * if ok, else FAILED with diag) and frees ws. NULL does nothing. */
void ag_fed_workers_stop(ag_fed_workers *ws, bool ok, const char *diag);

/* The job: runs once at every party. Returns 0, or a negative value after
 * a failure (the runtime's error, or its own through ag_fed_fail). */
typedef int ag_fed_job(ag_fed *f, void *udata);

/* Initializes o with the defaults (semi2k over FM64, TFP dealer). */
void ag_fed_opts_init(ag_fed_opts *o);
/* A runtime over a link (the modes below build it for you). NULL on
 * allocation failure. */
ag_fed *ag_fed_new(const ag_fed_opts *o);
void ag_fed_free(ag_fed *f);

/* Runs job in the mode the command line selects (above), and returns the
 * process's exit status: 0 when the job succeeded at every party of this
 * process, 1 on a runtime error (printed as "argot: party alice: why"), 2
 * on a usage error. Flags it takes from argv (the rest is the job's, in
 * ag_fed_argc/argv): --sim PARTIES, --config FILE, --party NAME, --timeout
 * SECONDS (link receive timeout, default 60), --field FM64|FM128 (when the
 * config does not say), --help. defaults may be NULL (semi2k over FM64). */
int ag_fed_main(int argc, char **argv, ag_fed_job *job, const ag_spu_config *defaults);
/* As ag_fed_main, with the job's udata. */
int ag_fed_main_ud(int argc, char **argv, ag_fed_job *job, void *udata,
                   const ag_spu_config *defaults);

/* The modes as library calls, for programs with their own command line
 * (the argot subcommands). */
typedef struct ag_fed_run {
    ag_fed_job *job;
    void *udata;
    ag_spu_config spu;          /* unless the cluster config has an spu section */
    uint64_t timeout_ms;        /* receive timeout; 0: the config's, else 60 s */
    const char *session;        /* production: overrides the config's */
    int argc;                   /* the job's arguments (may be 0) */
    char **argv;
    char err[AG_ERRMSG_MAX];    /* out: why it failed ("party bob: ...") */
} ag_fed_run;

/* Initializes r for job (semi2k over FM64). */
void ag_fed_run_init(ag_fed_run *r, ag_fed_job *job, void *udata);
/* Simulation mode: the job at n parties, a thread each, in-memory links.
 * Returns 0 when it succeeded at every party, else the root cause's code
 * (the first failure that is not another party's echoed back). */
int ag_fed_run_sim(ag_fed_run *r, unsigned n, const char *const *names);
/* Production mode: this process is party of the cluster c, serving on its
 * address. AG_E_USAGE when c has no such party. */
int ag_fed_run_party(ag_fed_run *r, const ag_cluster *c, const char *party);

unsigned ag_fed_rank(const ag_fed *f);
unsigned ag_fed_size(const ag_fed *f);
/* This party's name; ag_fed_party_name(f, r) another's. */
const char *ag_fed_party(const ag_fed *f);
const char *ag_fed_party_name(const ag_fed *f, unsigned r);
/* The rank of a party name, or -1. */
int ag_fed_party_rank(const ag_fed *f, const char *name);
/* The udata given with the job (to its PYU functions through
 * ag_pyu_fed): per process, so in simulation mode shared by the parties. */
void *ag_fed_udata(const ag_fed *f);
int ag_fed_argc(const ag_fed *f);
char **ag_fed_argv(const ag_fed *f);
/* The link (for apps that run their own protocol between calls: they must
 * use tags below 2^62, apart from fed's and mpc's). */
ag_link *ag_fed_link(ag_fed *f);
/* The SPU session (created, collectively, at the first SPU call). */
ag_mpc *ag_fed_mpc(ag_fed *f);
/* The first error of the runtime ("" if none). */
const char *ag_fed_errmsg(const ag_fed *f);
/* Records a failure of the job itself (e.g. bad input at this party) and
 * tells every party, which then fail with "party alice: <message>".
 * Returns code. */
int ag_fed_fail(ag_fed *f, int code, const char *fmt, ...) AG_PRINTF(3, 4);
/* Records a failure at this party only, sending nothing: for a protocol
 * that already told the others in its own words (an app's ag_link_abort
 * with a reason that quotes no data), when the local message may quote
 * data (a key, a line of input). Returns code. */
int ag_fed_fail_local(ag_fed *f, int code, const char *fmt, ...) AG_PRINTF(3, 4);
/* The cost so far: this party's link counters. */
void ag_fed_stats(const ag_fed *f, ag_link_stats *out);

/* ---- objects --------------------------------------------------------------------- */

/* Public constants: the same value at every party, usable anywhere. */
ag_obj *ag_const_f64(ag_fed *f, double v);
ag_obj *ag_const_i64(ag_fed *f, int64_t v);
ag_obj *ag_const_str(ag_fed *f, const char *s);
/* A copy of v, which must be the same at every party. */
ag_obj *ag_const_value(ag_fed *f, const ag_value *v);

/* A PYU object of party from a value this process already holds (data it
 * read outside a PYU call, e.g. rows aligned by ag_apps_align): at that
 * party *v is moved into the object (v becomes AG_V_NONE); elsewhere v is
 * ignored and may be NULL. Every party makes the call. */
ag_obj *ag_pyu_put(ag_fed *f, const char *party, ag_value *v);

/* The party that owns o (NULL for a public or SPU object). */
const char *ag_obj_owner(const ag_fed *f, const ag_obj *o);
/* True for an SPU object. */
bool ag_obj_is_spu(const ag_obj *o);
/* o's value, if this party holds it in the clear (a public object, or a
 * PYU object of this party's that did not fail); NULL otherwise. */
const ag_value *ag_obj_value(const ag_obj *o);
/* o's error as known here: 0 or a negative code (with the message in
 * *msg if msg is not NULL). An object of another party's reads 0 until
 * something (a transfer, ag_wait) brings its status here. */
int ag_obj_status(const ag_obj *o, const char **msg);
/* Frees o early (its value wiped). Every party must free the same objects,
 * as every party makes the same calls. NULL is ignored. */
void ag_obj_free(ag_fed *f, ag_obj *o);

/* Collective: waits until the objects are computed wherever they live and
 * returns 0, or the first error, its message in ag_fed_errmsg ("party
 * alice: load: alice.csv: no such file"): every party returns the same. */
int ag_waitn(ag_fed *f, ag_obj *const *objs, size_t n);
#define ag_wait(f, ...)                                                                \
    ag_waitn((f), (ag_obj *const[]){__VA_ARGS__},                                      \
             sizeof((ag_obj *const[]){__VA_ARGS__}) / sizeof(ag_obj *))

/* ---- PYU: plaintext calls at one party -------------------------------------------- */

typedef struct ag_pyu_ctx ag_pyu_ctx;
/* A PYU function: computes *out (initially AG_V_NONE) from args; returns 0,
 * or a negative code after ag_pyu_error. args belong to the runtime. */
typedef int ag_pyu_fn(ag_pyu_ctx *c, const ag_value *args, size_t nargs, ag_value *out);

/* Records why the function failed; returns code (negative). */
int ag_pyu_error(ag_pyu_ctx *c, int code, const char *fmt, ...) AG_PRINTF(3, 4);
const char *ag_pyu_party(const ag_pyu_ctx *c);
ag_fed *ag_pyu_fed(const ag_pyu_ctx *c);

/* Calls fn at party with args (objects: public ones as they are, another
 * party's pushed here by their owner). name names fn in errors. Returns
 * the result object (at every party), or NULL only when out of memory. */
ag_obj *ag_pyu_calln(ag_fed *f, const char *party, ag_pyu_fn *fn, const char *name,
                     ag_obj *const *args, size_t nargs);
#define ag_pyu_call(f, party, fn, ...)                                                 \
    ag_pyu_calln((f), (party), (fn), #fn, (ag_obj *const[]){NULL, __VA_ARGS__} + 1,    \
                 sizeof((ag_obj *const[]){NULL, __VA_ARGS__}) / sizeof(ag_obj *) - 1)

/* ---- transfers -------------------------------------------------------------------- */

/* To a party: a PYU object is pushed by its owner (PYU to PYU); an SPU
 * object is revealed to that party only (SPU to PYU); a public one is
 * copied. */
ag_obj *ag_to_pyu(ag_fed *f, ag_obj *o, const char *party);
/* Into the SPU: a PYU object's owner secret-shares it (f64 tensors as fixed
 * point, i64 tensors as ring integers); a public object becomes a public
 * SPU value. Byte strings and tables cannot be shared. */
ag_obj *ag_to_spu(ag_fed *f, ag_obj *o);
/* Collective: every party gets o's value (SPU: opened; PYU: pushed by the
 * owner). Returns 0 or the error (ag_fed_errmsg). out is AG_V_NONE on
 * failure. */
int ag_reveal(ag_fed *f, ag_obj *o, ag_value *out);
/* ag_reveal of a scalar (or one-element tensor) as a double. */
int ag_reveal_f64(ag_fed *f, ag_obj *o, double *out);

/* ---- the SPU device ----------------------------------------------------------------- *
 *
 * SPU objects are secret-shared (or public) ring tensors, each either fixed
 * point (from f64) or integer (from i64, and comparison results 0/1). The
 * operations follow numpy: element-wise ones need equal shapes (use
 * ag_spu_broadcast); integer and fixed-point operands mix (the integer is
 * scaled); PYU objects must come in through ag_to_spu first, public
 * constants may be passed directly. Costs are mpc.h's. */

ag_obj *ag_spu_add(ag_fed *f, ag_obj *x, ag_obj *y);
ag_obj *ag_spu_sub(ag_fed *f, ag_obj *x, ag_obj *y);
ag_obj *ag_spu_mul(ag_fed *f, ag_obj *x, ag_obj *y);
ag_obj *ag_spu_div(ag_fed *f, ag_obj *x, ag_obj *y);
ag_obj *ag_spu_matmul(ag_fed *f, ag_obj *x, ag_obj *y);
ag_obj *ag_spu_less(ag_fed *f, ag_obj *x, ag_obj *y);
ag_obj *ag_spu_greater(ag_fed *f, ag_obj *x, ag_obj *y);
ag_obj *ag_spu_equal(ag_fed *f, ag_obj *x, ag_obj *y);
ag_obj *ag_spu_min(ag_fed *f, ag_obj *x, ag_obj *y);
ag_obj *ag_spu_max(ag_fed *f, ag_obj *x, ag_obj *y);
/* cond (0/1, from a comparison) ? a : b */
ag_obj *ag_spu_select(ag_fed *f, ag_obj *cond, ag_obj *a, ag_obj *b);

ag_obj *ag_spu_neg(ag_fed *f, ag_obj *x);
ag_obj *ag_spu_square(ag_fed *f, ag_obj *x);
ag_obj *ag_spu_abs(ag_fed *f, ag_obj *x);
ag_obj *ag_spu_relu(ag_fed *f, ag_obj *x);
ag_obj *ag_spu_exp(ag_fed *f, ag_obj *x);
ag_obj *ag_spu_log(ag_fed *f, ag_obj *x);
ag_obj *ag_spu_sqrt(ag_fed *f, ag_obj *x);
ag_obj *ag_spu_rsqrt(ag_fed *f, ag_obj *x);
ag_obj *ag_spu_reciprocal(ag_fed *f, ag_obj *x);
ag_obj *ag_spu_sigmoid(ag_fed *f, ag_obj *x, ag_sigmoid_mode mode);
ag_obj *ag_spu_transpose(ag_fed *f, ag_obj *x);
/* axis: an axis (negative from the end) or AG_AXIS_ALL. */
ag_obj *ag_spu_sum(ag_fed *f, ag_obj *x, int axis);
ag_obj *ag_spu_mean(ag_fed *f, ag_obj *x, int axis);
ag_obj *ag_spu_argmax(ag_fed *f, ag_obj *x, int axis);
ag_obj *ag_spu_reshape(ag_fed *f, ag_obj *x, int ndim, const int64_t *shape);
ag_obj *ag_spu_broadcast(ag_fed *f, ag_obj *x, int ndim, const int64_t *shape);
/* x[start:stop:step] per axis (ag_tensor_slice's rules). */
ag_obj *ag_spu_slice(ag_fed *f, ag_obj *x, const int64_t *start, const int64_t *stop,
                     const int64_t *step);
ag_obj *ag_spu_concat(ag_fed *f, ag_obj *const *xs, size_t n, int axis);
/* The shape of an SPU or local object (public to every party for SPU
 * objects); -1 when unknown here. */
int ag_obj_shape(const ag_obj *o, int64_t *shape);

#endif /* ARGOT_FED_H */
