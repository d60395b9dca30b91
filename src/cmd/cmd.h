/*
 * The argot binary's subcommands: a table of names, flags and run functions,
 * and the flag parser they share. Subcommands are thin: parse flags, call the
 * library, print. Conventions every subcommand keeps (design.md):
 *   - exit 0 on success, 1 on a runtime error, 2 on a usage error;
 *   - errors are one line on stderr, "argot: <what>: <why>";
 *   - `argot <sub> --help` prints the usage to stdout and exits 0.
 */
#ifndef ARGOT_CMD_H
#define ARGOT_CMD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "argot/base.h"
#include "argot/fed.h"

enum {
    EXIT_OK = 0,
    EXIT_RUNTIME = 1,
    EXIT_USAGE = 2,
};

#define FLAG_REQUIRED 0x1u
#define FLAG_REPEAT 0x2u

struct flag_def {
    const char *name;    /* without the dashes: "in" */
    const char *metavar; /* "FILE"; NULL for a boolean flag */
    const char *help;
    unsigned flags;      /* FLAG_REQUIRED, FLAG_REPEAT */
};

#define MAX_FLAGS 32

struct cmd_args;

struct subcmd {
    const char *name;    /* "csv check": one or two words */
    const char *summary; /* one line for `argot --help` */
    const char *details; /* paragraphs for `argot <name> --help` */
    const struct flag_def *flags; /* terminated by {NULL} */
    int (*run)(struct cmd_args *a);
    const char *rest;    /* "-- PROG [ARGS...]": takes what follows "--" */
    const char *positional; /* "PARTY": takes one argument that is not a flag */
};

/* Parsed flags of one subcommand. Values point into argv. */
struct cmd_args {
    const struct subcmd *sc;
    size_t nvals[MAX_FLAGS];
    const char **vals[MAX_FLAGS]; /* per flag, its values in order */
    bool seen[MAX_FLAGS];
    int nrest;            /* after "--", for a subcommand with `rest` */
    char **rest;
    const char *pos;      /* the positional argument, for a subcommand with one */
};

/* Parses argv (after the subcommand's name) into a. Returns EXIT_OK, or
 * EXIT_USAGE after printing the one-line error; -1 when --help was asked
 * and printed. */
int args_parse(struct cmd_args *a, const struct subcmd *sc, int argc, char **argv);
void args_free(struct cmd_args *a);
/* The value of a flag (the last, if repeated), or NULL if not given. */
const char *args_get(const struct cmd_args *a, const char *name);
size_t args_count(const struct cmd_args *a, const char *name);
const char *args_at(const struct cmd_args *a, const char *name, size_t i);
bool args_bool(const struct cmd_args *a, const char *name);
/* Party selection, the same for every app subcommand (design.md):
 * `--sim alice,bob[,carol]`. Parses the list into names (at most max, each
 * a non-empty run of [a-z0-9_-], no repeats). Returns the count, or
 * EXIT_USAGE's negation after printing the error. */
#define MAX_SIM_PARTIES 8
int args_sim_parties(const struct cmd_args *a, const char *flag, char names[][32], int min,
                     int max);
/* An app subcommand without --config runs in simulation mode: refuses
 * --party and --session (they go with --config), asks for a mode when
 * --sim is missing, then parses --sim as args_sim_parties. Returns the
 * count, or EXIT_USAGE's negation after printing the error. */
int args_sim_mode(const struct cmd_args *a, char names[][32], int min, int max);
/* A byte count for people: "12.3 KiB" below 1 MiB, "4.56 MiB" from there. */
const char *size_str(uint64_t n, char *buf, size_t cap);
/* --key for one party: its PARTY=COLS value, else the value without a
 * party (party NULL: production mode, any value); NULL after printing
 * "--key: no key columns for party P". */
const char *args_key_value(const struct cmd_args *a, const char *party);
/* Splits a comma-separated column list v into buf (cap bytes) and keys
 * (at most max): EXIT_OK, or EXIT_USAGE after printing why (too many, none). */
int args_key_columns(const struct cmd_args *a, const char *v, char *buf, size_t cap,
                     const char **keys, size_t *n, size_t max);
/* Production mode (--config FILE --party NAME): the party this process is,
 * or NULL after printing why (no --party; --sim given as well). */
const char *args_production_party(const struct cmd_args *a);
/* Loads --config into cl and finds party there: its rank, or the negated
 * exit status after printing why (the file's error; no such party). */
int args_cluster_rank(const struct cmd_args *a, const char *party, ag_cluster *cl);
/* Per-party values in simulation mode, written `party=value` (repeatable):
 * the value for party, or NULL if none was given. Returns EXIT_USAGE after
 * printing the error if any value names no party in names[0..n). */
int args_party_values_check(const struct cmd_args *a, const char *flag, char names[][32], int n);
const char *args_party_value(const struct cmd_args *a, const char *flag, const char *party);

/* A flag of seconds (fractions allowed, more than 0, at most a day) in
 * milliseconds into *ms, or def_s seconds when the flag is not given.
 * Returns EXIT_OK, or EXIT_USAGE after printing the error. */
int args_seconds_ms(const struct cmd_args *a, const char *flag, unsigned def_s, uint64_t *ms);

/* ---- daemons (beaver-server, rm, nm) ---- */

/* Blocks SIGINT, SIGTERM and SIGHUP in this thread, and so in every thread
 * it starts from now on (they are taken by daemon_wait_stop); *old gets
 * the mask to restore. */
void daemon_signals_block(sigset_t *old);
/* Waits for SIGINT or SIGTERM and returns it. Every tick_ms calls tick(ud)
 * (may be NULL): when it returns true (the daemon's own reason to stop),
 * returns 0. A SIGHUP is logged under module: nothing to reload. */
int daemon_wait_stop(const char *module, uint64_t tick_ms, bool (*tick)(void *ud), void *ud);
/* What SIGHUP does in daemon_wait_stop (default: logs that nothing reloads). */
void daemon_on_hup(void (*fn)(void *ud), void *ud);
/* addr ("host:port") with the port that was bound in place of its own (a
 * "unix:" address as it is), into out. */
void daemon_shown_address(const char *addr, int port, char *out, size_t cap);

/* Prints "argot: <sub>: <message>" to stderr and returns EXIT_USAGE. */
int usage_error(const struct subcmd *sc, const char *fmt, ...) AG_PRINTF(2, 3);
/* Prints "argot: <message>" to stderr and returns EXIT_RUNTIME. */
int runtime_error(const char *fmt, ...) AG_PRINTF(1, 2);
void print_usage(const struct subcmd *sc);

/* The subcommands, one per file in src/cmd/. */
extern const struct subcmd cmd_csv_check;
extern const struct subcmd cmd_console;
extern const struct subcmd cmd_demo;
extern const struct subcmd cmd_launch;
extern const struct subcmd cmd_beaver_server;
extern const struct subcmd cmd_mesh;
extern const struct subcmd cmd_mesh_init;
extern const struct subcmd cmd_rm;
extern const struct subcmd cmd_app_submit;
extern const struct subcmd cmd_app_status;
extern const struct subcmd cmd_app_kill;
extern const struct subcmd cmd_app_master;
extern const struct subcmd cmd_nodes;
extern const struct subcmd cmd_nm;
extern const struct subcmd cmd_psi;
extern const struct subcmd cmd_stats;
extern const struct subcmd cmd_lr_train;
extern const struct subcmd cmd_lr_predict;
extern const struct subcmd cmd_ca_init;
extern const struct subcmd cmd_ca_issue;

#endif /* ARGOT_CMD_H */
