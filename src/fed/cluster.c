/*
 * Reading the cluster config (fed.h): typed getters over the YAML
 * reader, every error with its file, line and column. Security rule of
 * design.md: TLS is required off loopback, so a party address that is not
 * on loopback is refused without a tls section. Gateways: every party has
 * one or none has, and with gateways tls is required (the gateways verify
 * each other with the party certificates).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "argot/fed.h"

static bool on_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strncmp(addr, "localhost:", 10) == 0 ||
           strncmp(addr, "[::1]:", 6) == 0;
}

static int load_parties(ag_config *cfg, const ag_cnode *parties, ag_cluster *c)
{
    static const char *const party_keys[] = {"address", "gateway", "console", NULL};
    size_t n = ag_cnode_len(parties);
    if (n < 2 || n > AG_CLUSTER_MAX_PARTIES)
        return ag_config_errorf(cfg, parties, AG_E_CONFIG_VALUE,
                                "'parties' must name 2 to %d parties, got %zu",
                                AG_CLUSTER_MAX_PARTIES, n);
    for (size_t i = 0; i < n; i++) {
        const ag_cnode *key = ag_cnode_key(parties, i), *p = ag_cnode_item(parties, i);
        const char *name = ag_cnode_scalar(key), *addr = NULL;
        if (!name || !*name || strlen(name) >= sizeof(c->names[0]))
            return ag_config_errorf(cfg, key, AG_E_CONFIG_VALUE, "bad party name");
        int rc = ag_config_check_keys(cfg, p, party_keys);
        if (rc == 0)
            rc = ag_config_get_str(cfg, p, "address", AG_REQUIRED, &addr);
        if (rc < 0)
            return rc;
        const ag_cnode *an = ag_cnode_get(p, "address");
        if (!strchr(addr, ':') || strlen(addr) >= sizeof(c->addresses[0]))
            return ag_config_errorf(cfg, an, AG_E_CONFIG_VALUE,
                                    "address '%s' must be host:port", addr);
        if (!on_loopback(addr) && !c->has_tls)
            return ag_config_errorf(cfg, an, AG_E_CONFIG_VALUE,
                                    "address '%s' is not on loopback: argot requires tls off "
                                    "loopback (a tls section with this party's cert and key "
                                    "and the CA: see 'argot ca init')", addr);
        const char *gw = NULL;
        rc = ag_config_get_str(cfg, p, "gateway", AG_OPTIONAL, &gw);
        if (rc < 0)
            return rc;
        const ag_cnode *gn = ag_cnode_get(p, "gateway");
        if (i > 0 && !gw != !c->has_gateways)
            return ag_config_errorf(cfg, gw ? gn : p, AG_E_CONFIG_VALUE,
                                    "party %s has %s gateway, party %s %s: every party has "
                                    "one or none has", name, gw ? "a" : "no", c->names[0],
                                    c->has_gateways ? "has one" : "none");
        if (gw && (!strchr(gw, ':') || strlen(gw) >= sizeof(c->gateways[0])))
            return ag_config_errorf(cfg, gn, AG_E_CONFIG_VALUE,
                                    "gateway '%s' must be host:port", gw);
        if (gw && !c->has_tls)
            return ag_config_errorf(cfg, gn, AG_E_CONFIG_VALUE,
                                    "gateways need a tls section (this party's cert and key "
                                    "and the CA: the gateways prove the parties' names with "
                                    "them; see 'argot ca init')");
        const char *con = NULL;
        rc = ag_config_get_str(cfg, p, "console", AG_OPTIONAL, &con);
        if (rc < 0)
            return rc;
        if (con && (!strchr(con, ':') || strlen(con) >= sizeof(c->consoles[0])))
            return ag_config_errorf(cfg, ag_cnode_get(p, "console"), AG_E_CONFIG_VALUE,
                                    "console '%s' must be host:port", con);
        if (con && !on_loopback(con) && !c->has_tls)
            return ag_config_errorf(cfg, ag_cnode_get(p, "console"), AG_E_CONFIG_VALUE,
                                    "console '%s' is not on loopback: argot requires tls off "
                                    "loopback", con);
        snprintf(c->consoles[i], sizeof(c->consoles[i]), "%s", con ? con : "");
        c->has_gateways = gw != NULL;
        snprintf(c->gateways[i], sizeof(c->gateways[i]), "%s", gw ? gw : "");
        snprintf(c->names[i], sizeof(c->names[i]), "%s", name);
        snprintf(c->addresses[i], sizeof(c->addresses[i]), "%s", addr);
    }
    c->n = (int)n;
    return 0;
}

static int load_spu(ag_config *cfg, const ag_cnode *spu, ag_cluster *c)
{
    static const char *const spu_keys[] = {"protocol", "field", "fxp_fraction_bits", "beaver",
                                           "beaver_server", "beaver_server_name", NULL};
    const char *protocol = "semi2k", *field = "FM64", *beaver = "tfp";
    const char *server = NULL, *server_name = "";
    int64_t bits = 0;
    int rc = ag_config_check_keys(cfg, spu, spu_keys);
    if (rc == 0)
        rc = ag_config_get_str(cfg, spu, "protocol", AG_OPTIONAL, &protocol);
    if (rc == 0)
        rc = ag_config_get_str(cfg, spu, "field", AG_OPTIONAL, &field);
    if (rc == 0)
        rc = ag_config_get_i64(cfg, spu, "fxp_fraction_bits", AG_OPTIONAL, 1, 62, &bits);
    if (rc == 0)
        rc = ag_config_get_str(cfg, spu, "beaver", AG_OPTIONAL, &beaver);
    if (rc == 0)
        rc = ag_config_get_str(cfg, spu, "beaver_server", AG_OPTIONAL, &server);
    if (rc == 0)
        rc = ag_config_get_str(cfg, spu, "beaver_server_name", AG_OPTIONAL, &server_name);
    if (rc < 0)
        return rc;
    if (strcmp(protocol, "semi2k") != 0)
        return ag_config_errorf(cfg, ag_cnode_get(spu, "protocol"), AG_E_CONFIG_VALUE,
                                "protocol '%s' is not supported (semi2k is)", protocol);
    if (strcmp(field, "FM64") == 0)
        c->spu.field = AG_FM64;
    else if (strcmp(field, "FM128") == 0)
        c->spu.field = AG_FM128;
    else
        return ag_config_errorf(cfg, ag_cnode_get(spu, "field"), AG_E_CONFIG_VALUE,
                                "field '%s' must be FM64 or FM128", field);
    if (strcmp(beaver, "tfp") == 0) {
        c->spu.dealer = AG_BEAVER_TFP;
        if (server)
            return ag_config_errorf(cfg, ag_cnode_get(spu, "beaver_server"),
                                    AG_E_CONFIG_VALUE, "beaver_server goes with beaver: ttp "
                                    "(the trusted first party needs none)");
    } else if (strcmp(beaver, "ttp") == 0) {
        c->spu.dealer = AG_BEAVER_TTP;
        if (!server)
            return ag_config_errorf(cfg, spu, AG_E_CONFIG_MISSING,
                                    "beaver: ttp needs beaver_server: \"host:port\" (the "
                                    "argot beaver-server every party registers with)");
        int hrc = ag_config_get_hostport(cfg, spu, "beaver_server", AG_REQUIRED,
                                         c->spu.beaver_server, sizeof(c->spu.beaver_server));
        if (hrc < 0)
            return hrc;
        snprintf(c->spu.beaver_server_name, sizeof(c->spu.beaver_server_name), "%s",
                 server_name);
    } else {
        return ag_config_errorf(cfg, ag_cnode_get(spu, "beaver"), AG_E_CONFIG_VALUE,
                                "beaver dealer '%s' is unknown (tfp: the trusted first party; "
                                "ttp: a trusted third party, argot beaver-server)", beaver);
    }
    if (bits && (c->spu.field == AG_FM64 ? bits > 40 : bits > 100))
        return ag_config_errorf(cfg, ag_cnode_get(spu, "fxp_fraction_bits"), AG_E_CONFIG_VALUE,
                                "fxp_fraction_bits %lld leaves too few integer bits in %s",
                                (long long)bits, field);
    snprintf(c->spu.protocol, sizeof(c->spu.protocol), "semi2k");
    c->spu.fxp_bits = (unsigned)bits;
    c->has_spu = true;
    return 0;
}

/* workers: {count, provider, rm, queue, memory_mb, vcores}: this party's
 * share of a job spread over count worker processes in containers of its
 * scheduler (fed.h). The choice of provider is read here and acted on in
 * one place, workers.c's am_open. */
static int load_workers(ag_config *cfg, const ag_cnode *w, ag_cluster *c)
{
    static const char *const keys[] = {"count", "provider", "rm", "queue", "memory_mb",
                                       "vcores", NULL};
    ag_cluster_workers *cw = &c->workers;
    const char *provider = "argot", *queue = "";
    int64_t count = 0, mem = 1024, vcores = 1;
    int rc = ag_config_check_keys(cfg, w, keys);
    if (rc == 0)
        rc = ag_config_get_i64(cfg, w, "count", AG_REQUIRED, 1, AG_CLUSTER_MAX_WORKERS, &count);
    if (rc == 0)
        rc = ag_config_get_str(cfg, w, "provider", AG_OPTIONAL, &provider);
    if (rc == 0)
        rc = ag_config_get_str(cfg, w, "queue", AG_OPTIONAL, &queue);
    if (rc == 0)
        rc = ag_config_get_i64(cfg, w, "memory_mb", AG_OPTIONAL, 1, (int64_t)1 << 30, &mem);
    if (rc == 0)
        rc = ag_config_get_i64(cfg, w, "vcores", AG_OPTIONAL, 1, 1024, &vcores);
    if (rc < 0)
        return rc;
    if (strcmp(provider, "argot") != 0 && strcmp(provider, "slurm") != 0)
        return ag_config_errorf(cfg, ag_cnode_get(w, "provider"), AG_E_CONFIG_VALUE,
                                "workers.provider '%s' is unknown (argot: an argot rm; slurm: "
                                "a Slurm cluster)", provider);
    if (strlen(queue) >= sizeof(cw->queue))
        return ag_config_errorf(cfg, ag_cnode_get(w, "queue"), AG_E_CONFIG_VALUE,
                                "workers.queue is longer than %zu bytes", sizeof(cw->queue) - 1);
    bool argot = strcmp(provider, "argot") == 0;
    rc = ag_config_get_hostport(cfg, w, "rm", argot ? AG_REQUIRED : AG_OPTIONAL, cw->rm,
                                sizeof(cw->rm));
    if (rc == AG_E_CONFIG_MISSING)
        return ag_config_errorf(cfg, w, AG_E_CONFIG_MISSING, "workers with provider argot "
                                "need rm: \"host:port\" (this party's argot rm)");
    if (rc < 0)
        return rc;
    snprintf(cw->provider, sizeof(cw->provider), "%s", provider);
    snprintf(cw->queue, sizeof(cw->queue), "%s", queue);
    cw->count = (unsigned)count;
    cw->memory_mb = mem;
    cw->vcores = (int32_t)vcores;
    return 0;
}

/* tls: {cert, key, ca}: paths relative to the config file's directory,
 * each readable now. */
static int load_tls(ag_config *cfg, const ag_cnode *tls, ag_cluster *c)
{
    static const char *const keys[] = {"cert", "key", "ca", NULL};
    char *outs[3] = {c->tls_cert, c->tls_key, c->tls_ca};
    int rc = ag_config_check_keys(cfg, tls, keys);
    for (int i = 0; rc == 0 && i < 3; i++) {
        rc = ag_config_get_path(cfg, tls, keys[i], AG_REQUIRED, outs[i], sizeof(c->tls_cert));
        if (rc < 0)
            break;
        if (access(outs[i], R_OK) != 0)
            rc = ag_config_errorf(cfg, ag_cnode_get(tls, keys[i]), AG_E_CONFIG_VALUE,
                                  "tls.%s: cannot read %s", keys[i], outs[i]);
    }
    c->has_tls = rc == 0;
    return rc;
}

int ag_cluster_load(const char *path, ag_cluster *c, char *err, size_t cap)
{
    static const char *const top[] = {"parties", "spu", "tls", "session", "timeout",
                                      "workers", NULL};
    memset(c, 0, sizeof(*c));
    snprintf(c->spu.protocol, sizeof(c->spu.protocol), "semi2k");
    c->spu.field = AG_FM64;
    snprintf(c->session, sizeof(c->session), "argot");
    ag_config *cfg = ag_config_new();
    if (!cfg) {
        snprintf(err, cap, "%s", ag_strerror(AG_E_NOMEM));
        return AG_E_NOMEM;
    }
    const ag_cnode *parties = NULL, *spu = NULL;
    const char *session = NULL;
    int rc = ag_config_load_file(cfg, path);
    if (rc == 0)
        rc = ag_config_check_keys(cfg, ag_config_root(cfg), top);
    const ag_cnode *tls = NULL;
    if (rc == 0)
        rc = ag_config_get_map(cfg, ag_config_root(cfg), "tls", AG_OPTIONAL, &tls);
    if (rc == 0 && tls)
        rc = load_tls(cfg, tls, c);
    if (rc == 0)
        rc = ag_config_get_map(cfg, ag_config_root(cfg), "parties", AG_REQUIRED, &parties);
    if (rc == 0)
        rc = load_parties(cfg, parties, c);
    if (rc == 0)
        rc = ag_config_get_map(cfg, ag_config_root(cfg), "spu", AG_OPTIONAL, &spu);
    if (rc == 0 && spu)
        rc = load_spu(cfg, spu, c);
    const ag_cnode *workers = NULL;
    if (rc == 0)
        rc = ag_config_get_map(cfg, ag_config_root(cfg), "workers", AG_OPTIONAL, &workers);
    if (rc == 0 && workers)
        rc = load_workers(cfg, workers, c);
    if (rc == 0)
        rc = ag_config_get_duration_ms(cfg, ag_config_root(cfg), "timeout", AG_OPTIONAL,
                                       &c->timeout_ms);
    if (rc == 0)
        rc = ag_config_get_str(cfg, ag_config_root(cfg), "session", AG_OPTIONAL, &session);
    if (rc == 0 && session)
        snprintf(c->session, sizeof(c->session), "%s", session);
    if (rc < 0)
        snprintf(err, cap, "%s", ag_config_errmsg(cfg));
    ag_config_free(cfg);
    return rc;
}

int ag_cluster_rank(const ag_cluster *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->names[i], name) == 0)
            return i;
    return -1;
}
