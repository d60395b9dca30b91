/*
 * argot ca init | argot ca issue PARTY: the certificates of a deployment
 * (a CA the parties agree on, a certificate per party) for the TLS and
 * party authentication of production mode. The library does the work
 * (rpc.h, ag_rpc_pki_*).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/rpc.h"
#include "cmd.h"

static const struct flag_def init_flags[] = {
    {"dir", "DIR", "where to write ca.crt and ca.key (created, mode 0700)", FLAG_REQUIRED},
    {"name", "NAME", "the CA's name (default \"argot CA\")", 0},
    {"days", "N", "validity in days (default 3650)", 0},
    {NULL, NULL, NULL, 0},
};

static const struct flag_def issue_flags[] = {
    {"dir", "DIR", "the CA's directory; PARTY.crt and PARTY.key go there", FLAG_REQUIRED},
    {"party", "PARTY", "the party the certificate names (as in the cluster config); or give it "
                       "as the argument", 0},
    {"san", "NAMES", "more names: DNS:host,IP:address (comma-separated)", 0},
    {"days", "N", "validity in days (default 825)", 0},
    {NULL, NULL, NULL, 0},
};

static int days_of(struct cmd_args *a, unsigned *days)
{
    const char *s = args_get(a, "days");
    *days = 0;
    if (!s)
        return EXIT_OK;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 1 || v > 36500)
        return usage_error(a->sc, "--days %s: a number of days from 1 to 36500", s);
    *days = (unsigned)v;
    return EXIT_OK;
}

static int run_init(struct cmd_args *a)
{
    unsigned days;
    if (days_of(a, &days) != EXIT_OK)
        return EXIT_USAGE;
    char err[AG_ERRMSG_MAX];
    const char *dir = args_get(a, "dir");
    if (ag_rpc_pki_init(dir, args_get(a, "name"), days, err, sizeof(err)) < 0)
        return runtime_error("ca init: %s", err);
    printf("wrote %s/ca.crt (give it to every party) and %s/ca.key (keep it secret)\n", dir,
           dir);
    return EXIT_OK;
}

static int run_issue(struct cmd_args *a)
{
    unsigned days;
    if (days_of(a, &days) != EXIT_OK)
        return EXIT_USAGE;
    char err[AG_ERRMSG_MAX];
    const char *dir = args_get(a, "dir"), *party = args_get(a, "party");
    if (party && a->pos && strcmp(party, a->pos) != 0)
        return usage_error(a->sc, "two parties: '%s' and --party %s", a->pos, party);
    if (!party)
        party = a->pos;
    if (!party)
        return usage_error(a->sc, "which party? argot ca issue PARTY --dir DIR");
    if (ag_rpc_pki_issue(dir, party, args_get(a, "san"), days, err, sizeof(err)) < 0)
        return runtime_error("ca issue: %s", err);
    printf("wrote %s/%s.crt and %s/%s.key for party %s\n", dir, party, dir, party, party);
    return EXIT_OK;
}

const struct subcmd cmd_ca_init = {
    .name = "ca init",
    .summary = "create the certificate authority of a deployment",
    .details = "Writes DIR/ca.crt and DIR/ca.key (ECDSA P-256). Every party's cluster config\n"
               "names ca.crt under tls.ca; ca.key signs the parties' certificates (argot ca\n"
               "issue) and stays with whoever runs the CA. Nothing is overwritten.",
    .flags = init_flags,
    .run = run_init,
};

const struct subcmd cmd_ca_issue = {
    .name = "ca issue",
    .summary = "issue a party's key and certificate",
    .details = "Writes DIR/PARTY.crt and DIR/PARTY.key (mode 0600), signed by DIR's CA: the\n"
               "certificate names the party (CN and DNS name), for serving and connecting.\n"
               "In production mode a party presents it to the others, and may only send\n"
               "as the party it names. Give the two files to that party only.",
    .flags = issue_flags,
    .run = run_issue,
    .positional = "PARTY",
};
