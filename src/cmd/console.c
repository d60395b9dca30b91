/*
 * argot console: serves a party's web console (argot/console.h) until
 * SIGTERM or SIGINT. Prints, once serving, the address to open with the
 * login token in it (as Jupyter does); the token goes to stdout only, never
 * to the log.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "argot/console.h"
#include "cmd.h"

static const struct flag_def flags[] = {
    {"config", "FILE", "the cluster config; each party has `console: host:port` (required)",
     FLAG_REQUIRED},
    {"party", "NAME", "the party this console is (required)", FLAG_REQUIRED},
    {"listen", "HOST:PORT", "where the page is served (default 127.0.0.1:8080; port 0 picks "
                            "one)", 0},
    {"db", "FILE", "the history's SQLite file (default console-PARTY.db beside the config)", 0},
    {"workdir", "DIR", "where jobs' logs and reports go (default: the db's directory)", 0},
    {"mesh-admin", "HOST:PORT", "the party's gateway (argot mesh) admin endpoint: the page "
                                "shows its routes, endpoints, success rates and latency", 0},
    {"rm", "HOST:PORT[,...]", "the party's resource manager (argot rm; several: the RMs of an "
                              "ha set): the page shows its nodes, queues and applications", 0},
    {"rm-tls-cert", "FILE", "client certificate (PEM) for mutual TLS with the RM", 0},
    {"rm-tls-key", "FILE", "its private key (PEM, unencrypted)", 0},
    {"rm-tls-ca", "FILE", "CAs (PEM) trusted for the RM's certificate; turns TLS on", 0},
    {NULL, NULL, NULL, 0},
};

static int run(struct cmd_args *a)
{
    ag_console_opts o;
    ag_console_opts_init(&o);
    o.config = args_get(a, "config");
    o.party = args_get(a, "party");
    if (args_get(a, "listen"))
        o.listen = args_get(a, "listen");
    o.db = args_get(a, "db");
    o.workdir = args_get(a, "workdir");
    o.mesh_admin = args_get(a, "mesh-admin");
    o.rm = args_get(a, "rm");
    o.rm_tls_cert = args_get(a, "rm-tls-cert");
    o.rm_tls_key = args_get(a, "rm-tls-key");
    o.rm_tls_ca = args_get(a, "rm-tls-ca");
    char err[700];
    sigset_t old;
    daemon_signals_block(&old);
    ag_console *c = ag_console_new(&o, err, sizeof(err));
    if (!c) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return runtime_error("console: %s", err);
    }
    int status = EXIT_RUNTIME;
    if (ag_console_start(c) < 0) {
        runtime_error("console: %s", ag_console_errmsg(c));
        goto out;
    }
    char shown[300];
    daemon_shown_address(o.listen, ag_console_port(c), shown, sizeof(shown));
    printf("console of party %s on http://%s/ (peer consoles on port %d)\n"
           "open http://%s/?token=%s\n", o.party, shown, ag_console_peer_port(c), shown,
           ag_console_token(c));
    fflush(stdout);
    int sig = daemon_wait_stop("console", 1000, NULL, NULL);
    AG_LOG(AG_LOG_INFO, "console", "stopping reason=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    status = EXIT_OK;
out:
    ag_console_free(c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return status;
}

const struct subcmd cmd_console = {
    .name = "console",
    .summary = "serve a party's web console: propose, approve and watch jobs",
    .details =
        "Serves the page where this party's analysts see the parties, propose a job\n"
        "(a PSI, a logistic regression's training, joint statistics), approve or\n"
        "decline the other parties' proposals, and see the jobs' progress, results\n"
        "and history. A job starts only when every party approved it in its own\n"
        "console; each console runs its own party's part as a child process (argot\n"
        "psi|lr train|stats --config --party ...). The page is bound to loopback by\n"
        "default and every API call needs the login token printed at start. The\n"
        "consoles talk to each other at the parties' `console:` addresses of the\n"
        "cluster config, with mutual TLS when it has a tls section:\n\n"
        "  parties:\n"
        "    alice: {address: \"127.0.0.1:9100\", console: \"127.0.0.1:9180\"}\n"
        "    bob:   {address: \"127.0.0.1:9200\", console: \"127.0.0.1:9280\"}\n\n"
        "  argot console --config cluster.yaml --party alice --listen 127.0.0.1:8080",
    .flags = flags,
    .run = run,
};
