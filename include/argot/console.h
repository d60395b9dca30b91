/*
 * argot console: the web page where a party's analysts propose, approve,
 * run and watch joint computations (`argot console`).
 *
 * One console runs per party, next to the party's data. It serves
 *   - a page and a JSON API over HTTP/1.1 (the rpc module's admin server),
 *     bound to loopback by default; every API call carries the login token
 *     the console printed at start (header "Authorization: Bearer T", or
 *     the cookie that "GET /?token=T" sets);
 *   - a gRPC service for the other parties' consoles (proposals, decisions,
 *     starts, pings), at the party's `console: host:port` of the cluster
 *     config, with mutual TLS and the party certificates when the cluster
 *     has a tls section: a peer console is the party its certificate names.
 * A job runs only when every party involved approved it in its own
 * console, and each console starts only its own party's process (a child:
 * `/proc/self/exe psi ... --config --party`), so no console can make
 * another party compute. Jobs and their outcomes are kept in SQLite.
 *
 * Threads: the admin thread (HTTP), the peer server's pool threads, one
 * thread that sends to the peer consoles and pings them, and one waiter
 * per running job; they share the console's state under one mutex.
 */
#ifndef ARGOT_CONSOLE_H
#define ARGOT_CONSOLE_H

#include "argot/base.h"

typedef struct ag_console ag_console;

typedef struct ag_console_opts {
    const char *config;   /* the cluster config (required) */
    const char *party;    /* this party (required) */
    const char *listen;   /* the page's "host:port" (default 127.0.0.1:8080; port 0: any) */
    const char *db;       /* the history's SQLite file (default console-PARTY.db beside the
                           * config) */
    const char *workdir;  /* where jobs' logs and reports go (default: the db's directory) */
    const char *exe;      /* the argot binary jobs run (default /proc/self/exe) */
    const char *token;    /* the login token (NULL: 32 random bytes, in hex) */
    uint64_t ping_ms;     /* between pings of the peer consoles (default 2000) */
    const char *mesh_admin; /* the party's gateway's admin "host:port" (NULL: no gateway
                             * view); its /admin/state.json is read every ping_ms */
    const char *rm;         /* the resource manager's "host:port", or the RMs of an ha
                             * set "a:8030,b:8030" (argot rm; NULL: no cluster view):
                             * nodes, applications, queues every ping_ms */
    const char *rm_tls_cert; /* TLS to the RM (PEM files, as argot app's --tls-*; NULL */
    const char *rm_tls_key;  /* each: plaintext): a client certificate and its key for */
    const char *rm_tls_ca;   /* mutual TLS, the CAs trusted for the RM's certificate */
} ag_console_opts;

void ag_console_opts_init(ag_console_opts *o);
/* Loads the cluster config, opens the history, checks the options. NULL
 * with err (errcap bytes) saying why, naming the file or the option. */
ag_console *ag_console_new(const ag_console_opts *o, char *err, size_t errcap);
/* Starts the page server and the peer service. 0, or an error with
 * ag_console_errmsg naming the address. */
int ag_console_start(ag_console *c);
/* The page's port (after start). */
int ag_console_port(const ag_console *c);
/* The peer service's port (after start). */
int ag_console_peer_port(const ag_console *c);
/* The login token (printed once at start; never logged). */
const char *ag_console_token(const ag_console *c);
/* Stops serving, kills the jobs still running (recorded as interrupted)
 * and frees. NULL does nothing. */
void ag_console_free(ag_console *c);
const char *ag_console_errmsg(const ag_console *c);

#endif /* ARGOT_CONSOLE_H */
