/*
 * The cluster config of design.md (production mode: one process per party):
 *
 *   parties:
 *     alice: {address: "10.0.0.1:9100"}
 *     bob:   {address: "10.0.0.2:9100"}
 *   spu: {protocol: semi2k, field: FM64, fxp_fraction_bits: 18}
 *   tls: {cert: alice.crt, key: alice.key, ca: ca.crt}   # required off loopback
 *   session: demo-2026-11-23                              # optional job id
 *
 * Parties keep the order of the file (their ranks). The fed module (issue
 * 6) will own this; the demo reads it here until then.
 */
#ifndef ARGOT_CMD_CLUSTER_H
#define ARGOT_CMD_CLUSTER_H

#include "argot/mpc.h"

#define CLUSTER_MAX_PARTIES 8

struct cluster {
    int n;
    char names[CLUSTER_MAX_PARTIES][32];
    char addresses[CLUSTER_MAX_PARTIES][256];
    ag_field field;
    unsigned fxp_bits; /* 0: the field's default */
    char session[128];
};

/* Reads and checks path; on failure err holds "<file>:<line>:<col>: why". */
int cluster_load(const char *path, struct cluster *c, char *err, size_t cap);
/* The rank of name, or -1. */
int cluster_rank(const struct cluster *c, const char *name);

#endif
