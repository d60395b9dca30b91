/*
 * The mesh's config: YAML in linkerd 1.x's shape, read into mesh_conf and
 * checked as a whole before anything starts (every error names
 * file:line:col). The namers' nodes are kept, with the parsed document,
 * for namer.c to read when the loop makes them.
 *
 *   admin: {ip: 127.0.0.1, port: 9990}
 *   log: {level: info}
 *   shutdown_grace: 10s
 *   namers: [{kind: fs, rootDir: disco}, ...]                 (namer.h)
 *   routers:
 *     - protocol: h2                       # or http
 *       label: grpc                        # default: the protocol; unique
 *       dtab: |
 *         /svc => /#/fs;
 *       dstPrefix: /svc
 *       identifier: {kind: authority}      # or {kind: path, segments: 1},
 *                                          # {kind: header, header: x-svc};
 *                                          # linkerd's io.l5d.* names too
 *       allowDtabOverride: false           # honour the l5d-dtab header
 *       servers: [{ip: 127.0.0.1, port: 4140,
 *                  tls: {certPath, keyPath, caCertPath}}]
 *       client:                            # per bound name: io.l5d.static
 *         loadBalancer: {kind: ewma, decayTimeMs: 10000}
 *         connectTimeoutMs: 1000
 *         failureAccrual: {kind: io.l5d.consecutiveFailures, failures: 5,
 *                          backoff: {kind: jittered, minMs: 5000, maxMs: 300000}}
 *         tls: {commonName: NAME, trustCerts: [ca.pem],
 *               clientAuth: {certPath, keyPath}}
 *         configs: [{prefix: "/#/fs/users", loadBalancer: {kind: p2c}}]
 *       service:                           # per request name
 *         totalTimeoutMs: 0
 *         retries: {budget: {percentCanRetry: 0.2, minRetriesPerSec: 10, ttlSecs: 10},
 *                   maxAttempts: 10}
 *         responseClassifier: {kind: io.l5d.h2.grpc.default}
 *         configs: [{prefix: /svc/slow, totalTimeoutMs: 5000}]
 *       maxHeaderListBytes: 16384
 *       maxConcurrentStreamsPerConnection: 1000
 *       streamWindowBytes: 262144
 *       accessLog: access.log              # or "-" for stderr
 *       identityHeader: l5d-client-id      # the caller's party, from its certificate
 *       requestHeaderTimeoutMs: 10000      # http: a request's headers must arrive in it (408)
 *       idleTimeoutMs: 120000              # idle client connections close (0: never)
 *       authorization:                     # authz.c
 *         default: deny
 *         rules: [{party: "*", service: argot.link.v1.Link, dst: /svc/alice},
 *                 {party: alice, service: grpc.health.v1.Health, method: Check},
 *                 {party: "-", path: /public, action: allow}]
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

bool mesh_path_has_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (n == 0 || (n == 1 && prefix[0] == '/'))
        return true;
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

const mesh_client_conf *mesh_client_for(const mesh_router_conf *r, const char *bound)
{
    const mesh_client_conf *best = &r->clients[0];
    for (size_t i = 1; i < r->nclients; i++)
        if (mesh_path_has_prefix(bound, r->clients[i].prefix))
            best = &r->clients[i];
    return best;
}

const mesh_service_conf *mesh_service_for(const mesh_router_conf *r, const char *name)
{
    const mesh_service_conf *best = &r->services[0];
    for (size_t i = 1; i < r->nservices; i++)
        if (mesh_path_has_prefix(name, r->services[i].prefix))
            best = &r->services[i];
    return best;
}

static int get_ms(ag_config *c, const ag_cnode *map, const char *key, uint64_t *out)
{
    int64_t v = (int64_t)*out;
    int rc = ag_config_get_i64(c, map, key, AG_OPTIONAL, 0, INT64_C(1) << 40, &v);
    if (rc == 0)
        *out = (uint64_t)v;
    return rc;
}

static int get_prefix(ag_config *c, const ag_cnode *map, char *out, size_t cap)
{
    const char *s = NULL;
    int rc = ag_config_get_str(c, map, "prefix", AG_REQUIRED, &s);
    if (rc < 0)
        return rc;
    ag_errbuf e = {0};
    if (strlen(s) >= cap || ag__path_check(s, strlen(s), true, &e) < 0)
        return ag_config_errorf(c, ag_cnode_get(map, "prefix"), AG_E_CONFIG_VALUE,
                                "'prefix' must be a path: %s",
                                e.msg[0] ? e.msg : "too long");
    snprintf(out, cap, "%s", s);
    return 0;
}

/* ---- client ---------------------------------------------------------------------- */

static int read_client_tls(ag_config *c, const ag_cnode *n, mesh_tls_client *t)
{
    static const char *const keys[] = {"commonName", "trustCerts", "trustCertsBundle",
                                       "clientAuth", "disableValidation", NULL};
    static const char *const auth_keys[] = {"certPath", "keyPath", NULL};
    int rc = ag_config_check_keys(c, n, keys);
    const char *cn = NULL;
    const ag_cnode *trust = NULL, *auth = NULL;
    bool disable = false;
    if (rc == 0)
        rc = ag_config_get_str(c, n, "commonName", AG_OPTIONAL, &cn);
    if (rc == 0)
        rc = ag_config_get_bool(c, n, "disableValidation", AG_OPTIONAL, &disable);
    if (rc == 0 && disable)
        return ag_config_errorf(c, ag_cnode_get(n, "disableValidation"), AG_E_CONFIG_VALUE,
                                "disableValidation is not supported: the mesh always "
                                "verifies its endpoints' certificates");
    if (rc == 0)
        rc = ag_config_get_seq(c, n, "trustCerts", AG_OPTIONAL, &trust);
    if (rc == 0 && trust) {
        if (ag_cnode_len(trust) != 1)
            return ag_config_errorf(c, trust, AG_E_CONFIG_VALUE,
                                    "trustCerts: give one PEM file (it may hold several CAs)");
        /* relative to the config file, as every path */
        rc = ag_config_path_of(c, ag_cnode_item(trust, 0), "trustCerts", t->ca, sizeof(t->ca));
    }
    if (rc == 0)
        rc = ag_config_get_path(c, n, "trustCertsBundle", AG_OPTIONAL, t->ca, sizeof(t->ca));
    if (rc == 0)
        rc = ag_config_get_map(c, n, "clientAuth", AG_OPTIONAL, &auth);
    if (rc == 0 && auth) {
        rc = ag_config_check_keys(c, auth, auth_keys);
        if (rc == 0)
            rc = ag_config_get_path(c, auth, "certPath", AG_REQUIRED, t->cert, sizeof(t->cert));
        if (rc == 0)
            rc = ag_config_get_path(c, auth, "keyPath", AG_REQUIRED, t->key, sizeof(t->key));
    }
    if (rc == 0) {
        if (!cn)
            return ag_config_errorf(c, n, AG_E_CONFIG_MISSING,
                                    "missing required key 'commonName' in client tls: the "
                                    "name every endpoint's certificate must carry");
        snprintf(t->server_name, sizeof(t->server_name), "%s", cn);
        t->on = true;
    }
    return rc;
}

static int read_client(ag_config *c, const ag_cnode *n, mesh_client_conf *cc, bool item)
{
    static const char *const keys[] = {"kind",    "loadBalancer", "connectTimeoutMs",
                                       "failureAccrual", "tls", "configs", "prefix", NULL};
    static const char *const lb_keys[] = {"kind", "decayTimeMs", "lowLoad", "highLoad",
                                          "minAperture", "maxEffort", NULL};
    static const char *const fa_keys[] = {"kind", "failures", "backoff", NULL};
    static const char *const bo_keys[] = {"kind", "minMs", "maxMs", NULL};
    int rc = ag_config_check_keys(c, n, keys);
    if (rc < 0)
        return rc;
    if (item) {
        rc = get_prefix(c, n, cc->prefix, sizeof(cc->prefix));
        if (rc < 0)
            return rc;
        if (ag_cnode_get(n, "configs") || ag_cnode_get(n, "kind"))
            return ag_config_errorf(c, n, AG_E_CONFIG_VALUE,
                                    "a client config item takes no 'kind' or 'configs'");
    } else {
        const char *kind = "io.l5d.global";
        rc = ag_config_get_str(c, n, "kind", AG_OPTIONAL, &kind);
        if (rc < 0)
            return rc;
        if (strcmp(kind, "io.l5d.global") != 0 && strcmp(kind, "io.l5d.static") != 0)
            return ag_config_errorf(c, ag_cnode_get(n, "kind"), AG_E_CONFIG_VALUE,
                                    "client kind must be io.l5d.global or io.l5d.static, "
                                    "got '%s'", kind);
        if (ag_cnode_get(n, "prefix"))
            return ag_config_errorf(c, ag_cnode_get(n, "prefix"), AG_E_CONFIG_VALUE,
                                    "'prefix' belongs in an item of 'configs'");
    }
    const ag_cnode *lb = NULL, *fa = NULL, *tls = NULL;
    rc = ag_config_get_map(c, n, "loadBalancer", AG_OPTIONAL, &lb);
    if (rc == 0 && lb) {
        const char *kind = NULL;
        rc = ag_config_check_keys(c, lb, lb_keys);
        if (rc == 0)
            rc = ag_config_get_str(c, lb, "kind", AG_REQUIRED, &kind);
        if (rc == 0 && ag__lb_kind_parse(kind, &cc->lb.kind) < 0)
            rc = ag_config_errorf(c, ag_cnode_get(lb, "kind"), AG_E_CONFIG_VALUE,
                                  "unknown load balancer '%s' (roundRobin, p2c, ewma, "
                                  "aperture)", kind);
        if (rc == 0)
            rc = get_ms(c, lb, "decayTimeMs", &cc->lb.decay_ms);
        if (rc == 0)
            rc = ag_config_get_double(c, lb, "lowLoad", AG_OPTIONAL, &cc->lb.low_load);
        if (rc == 0)
            rc = ag_config_get_double(c, lb, "highLoad", AG_OPTIONAL, &cc->lb.high_load);
        if (rc == 0) {
            int64_t v = cc->lb.min_aperture;
            rc = ag_config_get_i64(c, lb, "minAperture", AG_OPTIONAL, 1, 1 << 20, &v);
            cc->lb.min_aperture = (unsigned)v;
        }
        if (rc == 0 && !(cc->lb.low_load > 0 && cc->lb.low_load < cc->lb.high_load))
            rc = ag_config_errorf(c, lb, AG_E_CONFIG_VALUE,
                                  "need 0 < lowLoad < highLoad (got %g, %g)", cc->lb.low_load,
                                  cc->lb.high_load);
    }
    if (rc == 0)
        rc = get_ms(c, n, "connectTimeoutMs", &cc->connect_timeout_ms);
    if (rc == 0)
        rc = ag_config_get_map(c, n, "failureAccrual", AG_OPTIONAL, &fa);
    if (rc == 0 && fa) {
        const char *kind = "io.l5d.consecutiveFailures";
        const ag_cnode *bo = NULL;
        rc = ag_config_check_keys(c, fa, fa_keys);
        if (rc == 0)
            rc = ag_config_get_str(c, fa, "kind", AG_OPTIONAL, &kind);
        if (rc == 0 && strcmp(kind, "none") == 0) {
            cc->lb.failures = 0;
        } else if (rc == 0 && strcmp(kind, "io.l5d.consecutiveFailures") != 0) {
            rc = ag_config_errorf(c, ag_cnode_get(fa, "kind"), AG_E_CONFIG_VALUE,
                                  "failureAccrual kind must be io.l5d.consecutiveFailures or "
                                  "none, got '%s'", kind);
        } else if (rc == 0) {
            int64_t v = cc->lb.failures;
            rc = ag_config_get_i64(c, fa, "failures", AG_OPTIONAL, 1, 1000000, &v);
            cc->lb.failures = (unsigned)v;
        }
        if (rc == 0)
            rc = ag_config_get_map(c, fa, "backoff", AG_OPTIONAL, &bo);
        if (rc == 0 && bo) {
            const char *bk = "jittered";
            rc = ag_config_check_keys(c, bo, bo_keys);
            if (rc == 0)
                rc = ag_config_get_str(c, bo, "kind", AG_OPTIONAL, &bk);
            if (rc == 0 && strcmp(bk, "jittered") != 0 && strcmp(bk, "constant") != 0)
                rc = ag_config_errorf(c, ag_cnode_get(bo, "kind"), AG_E_CONFIG_VALUE,
                                      "backoff kind must be jittered or constant, got '%s'",
                                      bk);
            if (rc == 0)
                rc = get_ms(c, bo, "minMs", &cc->lb.backoff_min_ms);
            if (rc == 0)
                rc = get_ms(c, bo, "maxMs", &cc->lb.backoff_max_ms);
            if (rc == 0 && strcmp(bk, "constant") == 0)
                cc->lb.backoff_max_ms = cc->lb.backoff_min_ms;
            if (rc == 0 && (cc->lb.backoff_min_ms == 0 ||
                            cc->lb.backoff_max_ms < cc->lb.backoff_min_ms))
                rc = ag_config_errorf(c, bo, AG_E_CONFIG_VALUE,
                                      "need 0 < minMs <= maxMs (got %llu, %llu)",
                                      (unsigned long long)cc->lb.backoff_min_ms,
                                      (unsigned long long)cc->lb.backoff_max_ms);
        }
    }
    if (rc == 0)
        rc = ag_config_get_map(c, n, "tls", AG_OPTIONAL, &tls);
    if (rc == 0 && tls)
        rc = read_client_tls(c, tls, &cc->tls);
    return rc;
}

/* ---- service ------------------------------------------------------------------------- */

static int read_service(ag_config *c, const ag_cnode *n, mesh_service_conf *sc, bool item)
{
    static const char *const keys[] = {"kind", "totalTimeoutMs", "retries",
                                       "responseClassifier", "configs", "prefix", NULL};
    static const char *const retry_keys[] = {"budget", "maxAttempts", "backoff", NULL};
    static const char *const budget_keys[] = {"percentCanRetry", "minRetriesPerSec",
                                              "ttlSecs", NULL};
    int rc = ag_config_check_keys(c, n, keys);
    if (rc < 0)
        return rc;
    if (item) {
        rc = get_prefix(c, n, sc->prefix, sizeof(sc->prefix));
        if (rc < 0)
            return rc;
    } else {
        const char *kind = "io.l5d.global";
        rc = ag_config_get_str(c, n, "kind", AG_OPTIONAL, &kind);
        if (rc == 0 && strcmp(kind, "io.l5d.global") != 0 && strcmp(kind, "io.l5d.static") != 0)
            rc = ag_config_errorf(c, ag_cnode_get(n, "kind"), AG_E_CONFIG_VALUE,
                                  "service kind must be io.l5d.global or io.l5d.static, "
                                  "got '%s'", kind);
        if (rc < 0)
            return rc;
    }
    const ag_cnode *retries = NULL, *cls = NULL;
    rc = get_ms(c, n, "totalTimeoutMs", &sc->total_timeout_ms);
    if (rc == 0)
        rc = ag_config_get_map(c, n, "retries", AG_OPTIONAL, &retries);
    if (rc == 0 && retries) {
        const ag_cnode *b = NULL;
        rc = ag_config_check_keys(c, retries, retry_keys);
        if (rc == 0 && ag_cnode_get(retries, "backoff"))
            rc = ag_config_errorf(c, ag_cnode_get(retries, "backoff"), AG_E_CONFIG_VALUE,
                                  "retries go at once to another endpoint: 'backoff' is not "
                                  "supported");
        if (rc == 0) {
            int64_t v = sc->max_attempts;
            rc = ag_config_get_i64(c, retries, "maxAttempts", AG_OPTIONAL, 1, 100, &v);
            sc->max_attempts = (unsigned)v;
        }
        if (rc == 0)
            rc = ag_config_get_map(c, retries, "budget", AG_OPTIONAL, &b);
        if (rc == 0 && b) {
            int64_t ttl = (int64_t)(sc->budget_ttl_ms / 1000);
            rc = ag_config_check_keys(c, b, budget_keys);
            if (rc == 0)
                rc = ag_config_get_double(c, b, "percentCanRetry", AG_OPTIONAL,
                                          &sc->budget_percent);
            if (rc == 0)
                rc = ag_config_get_double(c, b, "minRetriesPerSec", AG_OPTIONAL,
                                          &sc->budget_min_per_sec);
            if (rc == 0)
                rc = ag_config_get_i64(c, b, "ttlSecs", AG_OPTIONAL, 1, 60, &ttl);
            sc->budget_ttl_ms = (uint64_t)ttl * 1000;
            if (rc == 0 && (sc->budget_percent < 0 || sc->budget_percent > 1000 ||
                            sc->budget_min_per_sec < 0))
                rc = ag_config_errorf(c, b, AG_E_CONFIG_VALUE,
                                      "percentCanRetry and minRetriesPerSec must be >= 0");
        }
    }
    if (rc == 0)
        rc = ag_config_get_map(c, n, "responseClassifier", AG_OPTIONAL, &cls);
    if (rc == 0 && cls) {
        static const char *const cls_keys[] = {"kind", NULL};
        static const struct {
            const char *name;
            mesh_classifier c;
        } kinds[] = {
            {"io.l5d.h2.grpc.default", CLASS_GRPC},
            {"io.l5d.h2.grpc.neverRetryable", CLASS_NON_RETRYABLE},
            {"io.l5d.http.retryableIdempotent5XX", CLASS_IDEMPOTENT_5XX},
            {"io.l5d.h2.retryableIdempotent5XX", CLASS_IDEMPOTENT_5XX},
            {"io.l5d.http.retryableRead5XX", CLASS_READ_5XX},
            {"io.l5d.h2.retryableRead5XX", CLASS_READ_5XX},
            {"io.l5d.http.nonRetryable5XX", CLASS_NON_RETRYABLE},
            {"io.l5d.h2.nonRetryable5XX", CLASS_NON_RETRYABLE},
        };
        const char *kind = NULL;
        rc = ag_config_check_keys(c, cls, cls_keys);
        if (rc == 0)
            rc = ag_config_get_str(c, cls, "kind", AG_REQUIRED, &kind);
        if (rc == 0) {
            size_t i = 0;
            while (i < AG_ARRAY_LEN(kinds) && strcmp(kinds[i].name, kind) != 0)
                i++;
            if (i == AG_ARRAY_LEN(kinds))
                rc = ag_config_errorf(c, ag_cnode_get(cls, "kind"), AG_E_CONFIG_VALUE,
                                      "unknown response classifier '%s'", kind);
            else
                sc->classifier = kinds[i].c;
        }
    }
    return rc;
}

/* ---- authorization ------------------------------------------------------------------ */

static int read_rule(ag_config *c, const ag_cnode *n, mesh_rule *r)
{
    static const char *const keys[] = {"party", "service", "method", "path", "action", "dst",
                                       NULL};
    const char *party = NULL, *service = NULL, *method = "*", *path = NULL, *action = "allow",
               *dst = NULL;
    int rc = ag_config_check_keys(c, n, keys);
    if (rc == 0)
        rc = ag_config_get_str(c, n, "party", AG_REQUIRED, &party);
    if (rc == 0)
        rc = ag_config_get_str(c, n, "service", AG_OPTIONAL, &service);
    if (rc == 0)
        rc = ag_config_get_str(c, n, "method", AG_OPTIONAL, &method);
    if (rc == 0)
        rc = ag_config_get_str(c, n, "path", AG_OPTIONAL, &path);
    if (rc == 0)
        rc = ag_config_get_str(c, n, "action", AG_OPTIONAL, &action);
    if (rc == 0)
        rc = ag_config_get_str(c, n, "dst", AG_OPTIONAL, &dst);
    if (rc < 0)
        return rc;
    if (dst) {
        ag_errbuf e = {0};
        if (strlen(dst) >= sizeof(r->dst) || ag__path_check(dst, strlen(dst), false, &e) < 0)
            return ag_config_errorf(c, ag_cnode_get(n, "dst"), AG_E_CONFIG_VALUE,
                                    "'dst' must be a name such as /svc/bob: %s",
                                    e.msg[0] ? e.msg : "too long");
        snprintf(r->dst, sizeof(r->dst), "%s", dst);
    }
    if (!service == !path)
        return ag_config_errorf(c, n, AG_E_CONFIG_VALUE,
                                "a rule names a gRPC 'service' (and 'method') or an HTTP "
                                "'path' prefix, one of the two");
    if (path && (path[0] != '/' || strlen(path) >= sizeof(r->path)))
        return ag_config_errorf(c, ag_cnode_get(n, "path"), AG_E_CONFIG_VALUE,
                                "'path' must start with '/'");
    if (strcmp(action, "allow") != 0 && strcmp(action, "deny") != 0)
        return ag_config_errorf(c, ag_cnode_get(n, "action"), AG_E_CONFIG_VALUE,
                                "action must be allow or deny, got '%s'", action);
    if (!party[0] || strlen(party) >= sizeof(r->party) ||
        (service && (!service[0] || strchr(service, '/') || strlen(service) >= sizeof(r->service))) ||
        !method[0] || strchr(method, '/') || strlen(method) >= sizeof(r->method))
        return ag_config_errorf(c, n, AG_E_CONFIG_VALUE,
                                "party, service and method must be non-empty names without '/'");
    snprintf(r->party, sizeof(r->party), "%s", party);
    snprintf(r->service, sizeof(r->service), "%s", service ? service : "");
    snprintf(r->method, sizeof(r->method), "%s", method);
    snprintf(r->path, sizeof(r->path), "%s", path ? path : "");
    r->allow = strcmp(action, "allow") == 0;
    r->line = ag_cnode_line(n);
    return 0;
}

static int read_authz(ag_config *c, const ag_cnode *n, mesh_authz *a)
{
    static const char *const keys[] = {"default", "rules", NULL};
    const char *def = "deny";
    const ag_cnode *rules = NULL;
    int rc = ag_config_check_keys(c, n, keys);
    if (rc == 0)
        rc = ag_config_get_str(c, n, "default", AG_OPTIONAL, &def);
    if (rc == 0 && strcmp(def, "allow") != 0 && strcmp(def, "deny") != 0)
        rc = ag_config_errorf(c, ag_cnode_get(n, "default"), AG_E_CONFIG_VALUE,
                              "default must be allow or deny, got '%s'", def);
    if (rc == 0)
        rc = ag_config_get_seq(c, n, "rules", AG_OPTIONAL, &rules);
    if (rc < 0)
        return rc;
    a->on = true;
    a->default_allow = strcmp(def, "allow") == 0;
    a->nrules = rules ? ag_cnode_len(rules) : 0;
    if (a->nrules == 0)
        return 0;
    a->rules = ag_calloc(a->nrules, sizeof(*a->rules));
    if (!a->rules)
        return ag_config_errorf(c, n, AG_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < a->nrules; i++)
        rc = read_rule(c, ag_cnode_item(rules, i), &a->rules[i]);
    return rc;
}

/* ---- routers ------------------------------------------------------------------------ */

static int read_ident(ag_config *c, const ag_cnode *n, ag__ident *id)
{
    static const char *const keys[] = {"kind", "header", "segments", NULL};
    const char *kind = NULL;
    int rc = ag_config_check_keys(c, n, keys);
    if (rc == 0)
        rc = ag_config_get_str(c, n, "kind", AG_REQUIRED, &kind);
    if (rc < 0)
        return rc;
    const char *header = NULL;
    rc = ag_config_get_str(c, n, "header", AG_OPTIONAL, &header);
    if (rc < 0)
        return rc;
    if (strcmp(kind, "authority") == 0 || strcmp(kind, "io.l5d.header.token") == 0) {
        if (header && strcmp(header, ":authority") != 0 && strcasecmp(header, "host") != 0) {
            id->kind = AG__IDENT_HEADER;
        } else {
            id->kind = AG__IDENT_AUTHORITY;
            header = NULL;
        }
    } else if (strcmp(kind, "header") == 0 || strcmp(kind, "io.l5d.header") == 0) {
        id->kind = AG__IDENT_HEADER;
        if (!header)
            return ag_config_errorf(c, n, AG_E_CONFIG_MISSING,
                                    "missing required key 'header' in identifier");
    } else if (strcmp(kind, "path") == 0 || strcmp(kind, "io.l5d.header.path") == 0 ||
               strcmp(kind, "io.l5d.path") == 0) {
        id->kind = AG__IDENT_PATH;
        int64_t v = 1;
        rc = ag_config_get_i64(c, n, "segments", AG_OPTIONAL, 1, 64, &v);
        if (rc < 0)
            return rc;
        id->segments = (unsigned)v;
    } else {
        return ag_config_errorf(c, ag_cnode_get(n, "kind"), AG_E_CONFIG_VALUE,
                                "unknown identifier '%s' (authority, path, header)", kind);
    }
    if (header) {
        if (strlen(header) >= sizeof(id->header) || !header[0])
            return ag_config_errorf(c, ag_cnode_get(n, "header"), AG_E_CONFIG_VALUE,
                                    "bad header name");
        size_t i = 0;
        for (; header[i]; i++)
            id->header[i] = (char)((header[i] >= 'A' && header[i] <= 'Z') ? header[i] + 32
                                                                         : header[i]);
        id->header[i] = '\0';
    }
    return 0;
}

static int read_server(ag_config *c, const ag_cnode *n, mesh_server_conf *s)
{
    static const char *const keys[] = {"ip", "port", "tls", NULL};
    static const char *const tls_keys[] = {"certPath", "keyPath", "caCertPath",
                                           "requireClientAuth", NULL};
    const char *ip = "127.0.0.1";
    int64_t port = 0;
    const ag_cnode *tls = NULL;
    int rc = ag_config_check_keys(c, n, keys);
    if (rc == 0)
        rc = ag_config_get_str(c, n, "ip", AG_OPTIONAL, &ip);
    if (rc == 0)
        rc = ag_config_get_i64(c, n, "port", AG_REQUIRED, 0, 65535, &port);
    if (rc == 0 && strlen(ip) >= sizeof(s->ip))
        rc = ag_config_errorf(c, ag_cnode_get(n, "ip"), AG_E_CONFIG_VALUE, "ip too long");
    if (rc == 0) {
        struct sockaddr_in6 a6;
        struct sockaddr_in a4;
        if (uv_ip4_addr(ip, 0, &a4) != 0 && uv_ip6_addr(ip, 0, &a6) != 0)
            rc = ag_config_errorf(c, ag_cnode_get(n, "ip"), AG_E_CONFIG_VALUE,
                                  "'%s' is not an IP address", ip);
    }
    if (rc == 0)
        rc = ag_config_get_map(c, n, "tls", AG_OPTIONAL, &tls);
    if (rc == 0 && tls) {
        bool require = false;
        rc = ag_config_check_keys(c, tls, tls_keys);
        if (rc == 0)
            rc = ag_config_get_path(c, tls, "certPath", AG_REQUIRED, s->tls.cert,
                                    sizeof(s->tls.cert));
        if (rc == 0)
            rc = ag_config_get_path(c, tls, "keyPath", AG_REQUIRED, s->tls.key,
                                    sizeof(s->tls.key));
        if (rc == 0)
            rc = ag_config_get_path(c, tls, "caCertPath", AG_OPTIONAL, s->tls.ca,
                                    sizeof(s->tls.ca));
        if (rc == 0)
            rc = ag_config_get_bool(c, tls, "requireClientAuth", AG_OPTIONAL, &require);
        if (rc == 0 && require && !s->tls.ca[0])
            rc = ag_config_errorf(c, tls, AG_E_CONFIG_MISSING,
                                  "requireClientAuth needs caCertPath (the CA that issues "
                                  "client certificates)");
        if (rc == 0 && !require)
            s->tls.ca[0] = '\0'; /* the TLS core asks for client certificates when given a CA */
        s->tls.on = rc == 0;
    }
    if (rc == 0) {
        snprintf(s->ip, sizeof(s->ip), "%s", ip);
        s->port = (int)port;
    }
    return rc;
}

static void client_defaults(mesh_client_conf *cc)
{
    memset(cc, 0, sizeof(*cc));
    ag__lb_conf_init(&cc->lb);
    cc->connect_timeout_ms = 1000;
}

static void service_defaults(mesh_service_conf *sc, mesh_proto p)
{
    memset(sc, 0, sizeof(*sc));
    sc->budget_percent = 0.2;
    sc->budget_min_per_sec = 10;
    sc->budget_ttl_ms = 10000;
    sc->max_attempts = 10;
    sc->classifier = p == MESH_H2 ? CLASS_GRPC : CLASS_IDEMPOTENT_5XX;
}

/* Maps a position inside the dtab text to the file. */
static int dtab_error(ag_config *c, const ag_cnode *n, int line, int col, const char *msg)
{
    return ag_config_errorf_within(c, n, line, col, AG_E_CONFIG_VALUE, "dtab: %s", msg);
}

static int read_router(ag_config *c, const ag_cnode *n, mesh_router_conf *r)
{
    static const char *const keys[] = {
        "protocol",           "label",   "dtab",    "dstPrefix",
        "identifier",         "servers", "client",  "service",
        "allowDtabOverride",  "maxHeaderListBytes", "maxConcurrentStreamsPerConnection",
        "streamWindowBytes",  "accessLog", "httpAccessLog", "identityHeader",
        "authorization", "requestHeaderTimeoutMs", "idleTimeoutMs", NULL};
    const char *proto = NULL, *label = NULL, *dtab = "", *prefix = NULL;
    int rc = ag_config_check_keys(c, n, keys);
    if (rc == 0)
        rc = ag_config_get_str(c, n, "protocol", AG_REQUIRED, &proto);
    if (rc < 0)
        return rc;
    if (strcmp(proto, "h2") == 0)
        r->proto = MESH_H2;
    else if (strcmp(proto, "http") == 0)
        r->proto = MESH_HTTP;
    else
        return ag_config_errorf(c, ag_cnode_get(n, "protocol"), AG_E_CONFIG_VALUE,
                                "protocol must be h2 or http, got '%s'", proto);
    label = proto;
    rc = ag_config_get_str(c, n, "label", AG_OPTIONAL, &label);
    if (rc == 0 && (!label[0] || strlen(label) >= sizeof(r->label)))
        rc = ag_config_errorf(c, ag_cnode_get(n, "label"), AG_E_CONFIG_VALUE,
                              "label must be 1 to %zu characters", sizeof(r->label) - 1);
    if (rc < 0)
        return rc;
    snprintf(r->label, sizeof(r->label), "%s", label);
    rc = ag_config_get_str(c, n, "dtab", AG_OPTIONAL, &dtab);
    if (rc < 0)
        return rc;
    int line = 0, col = 0;
    ag_errbuf e = {0};
    rc = ag__dtab_parse(dtab, strlen(dtab), &r->dtab, &line, &col, &e);
    if (rc < 0)
        return dtab_error(c, ag_cnode_get(n, "dtab"), line, col, e.msg);
    r->dtab_text = ag_strdup(dtab);
    if (!r->dtab_text)
        return ag_config_errorf(c, n, AG_E_NOMEM, "out of memory");
    ag__ident_init(&r->ident);
    const ag_cnode *ident = NULL, *servers = NULL, *client = NULL, *service = NULL;
    rc = ag_config_get_map(c, n, "identifier", AG_OPTIONAL, &ident);
    if (rc == 0 && ident)
        rc = read_ident(c, ident, &r->ident);
    if (rc == 0)
        rc = ag_config_get_str(c, n, "dstPrefix", AG_OPTIONAL, &prefix);
    if (rc == 0 && prefix) {
        if (strlen(prefix) >= sizeof(r->ident.dst_prefix) ||
            ag__path_check(prefix, strlen(prefix), false, &e) < 0)
            return ag_config_errorf(c, ag_cnode_get(n, "dstPrefix"), AG_E_CONFIG_VALUE,
                                    "dstPrefix must be a path: %s", e.msg);
        snprintf(r->ident.dst_prefix, sizeof(r->ident.dst_prefix), "%s", prefix);
    }
    if (rc == 0)
        rc = ag_config_get_bool(c, n, "allowDtabOverride", AG_OPTIONAL, &r->allow_dtab_override);
    r->max_header_bytes = 16384;
    r->max_streams = 1000;
    r->header_timeout_ms = 10000;
    r->idle_timeout_ms = 120000;
    if (rc == 0)
        rc = get_ms(c, n, "requestHeaderTimeoutMs", &r->header_timeout_ms);
    if (rc == 0)
        rc = get_ms(c, n, "idleTimeoutMs", &r->idle_timeout_ms);
    if (rc == 0 && r->header_timeout_ms == 0)
        rc = ag_config_errorf(c, ag_cnode_get(n, "requestHeaderTimeoutMs"), AG_E_CONFIG_VALUE,
                              "requestHeaderTimeoutMs must be > 0");
    r->stream_window = 256u << 10;
    if (rc == 0) {
        int64_t v = (int64_t)r->max_header_bytes;
        rc = ag_config_get_i64(c, n, "maxHeaderListBytes", AG_OPTIONAL, 1024, 1 << 24, &v);
        r->max_header_bytes = (size_t)v;
    }
    if (rc == 0) {
        int64_t v = r->max_streams;
        rc = ag_config_get_i64(c, n, "maxConcurrentStreamsPerConnection", AG_OPTIONAL, 1,
                               1 << 20, &v);
        r->max_streams = (unsigned)v;
    }
    if (rc == 0) {
        int64_t v = r->stream_window;
        rc = ag_config_get_i64(c, n, "streamWindowBytes", AG_OPTIONAL, 16384, 1 << 30, &v);
        r->stream_window = (uint32_t)v;
    }
    if (rc == 0)
        rc = ag_config_get_path(c, n, "accessLog", AG_OPTIONAL, r->access_log,
                                sizeof(r->access_log));
    if (rc == 0)
        rc = ag_config_get_path(c, n, "httpAccessLog", AG_OPTIONAL, r->access_log,
                                sizeof(r->access_log));
    if (rc == 0) {
        const char *al = NULL;
        if (ag_config_get_str(c, n, "accessLog", AG_OPTIONAL, &al) == 0 && al &&
            strcmp(al, "-") == 0)
            snprintf(r->access_log, sizeof(r->access_log), "-");
    }
    snprintf(r->identity_header, sizeof(r->identity_header), "l5d-client-id");
    if (rc == 0) {
        const char *ih = NULL;
        rc = ag_config_get_str(c, n, "identityHeader", AG_OPTIONAL, &ih);
        if (rc == 0 && ih) {
            size_t len = strlen(ih);
            bool ok = len > 0 && len < sizeof(r->identity_header);
            for (size_t i = 0; ok && i < len; i++)
                ok = (ih[i] >= 'a' && ih[i] <= 'z') || (ih[i] >= '0' && ih[i] <= '9') ||
                     ih[i] == '-' || ih[i] == '_';
            if (!ok)
                rc = ag_config_errorf(c, ag_cnode_get(n, "identityHeader"), AG_E_CONFIG_VALUE,
                                      "identityHeader must be a lowercase header name");
            else
                snprintf(r->identity_header, sizeof(r->identity_header), "%s", ih);
        }
    }
    const ag_cnode *authz = NULL;
    if (rc == 0)
        rc = ag_config_get_map(c, n, "authorization", AG_OPTIONAL, &authz);
    if (rc == 0 && authz)
        rc = read_authz(c, authz, &r->authz);
    if (rc == 0)
        rc = ag_config_get_seq(c, n, "servers", AG_REQUIRED, &servers);
    if (rc == 0 && ag_cnode_len(servers) == 0)
        rc = ag_config_errorf(c, servers, AG_E_CONFIG_VALUE, "a router needs a server");
    if (rc < 0)
        return rc;
    r->nservers = ag_cnode_len(servers);
    r->servers = ag_calloc(r->nservers, sizeof(*r->servers));
    if (!r->servers)
        return ag_config_errorf(c, n, AG_E_NOMEM, "out of memory");
    for (size_t i = 0; i < r->nservers && rc == 0; i++)
        rc = read_server(c, ag_cnode_item(servers, i), &r->servers[i]);
    if (rc < 0)
        return rc;

    /* client: the global values, then each item over a copy of them */
    rc = ag_config_get_map(c, n, "client", AG_OPTIONAL, &client);
    const ag_cnode *cconfigs = NULL;
    if (rc == 0 && client)
        rc = ag_config_get_seq(c, client, "configs", AG_OPTIONAL, &cconfigs);
    if (rc < 0)
        return rc;
    r->nclients = 1 + (cconfigs ? ag_cnode_len(cconfigs) : 0);
    r->clients = ag_calloc(r->nclients, sizeof(*r->clients));
    if (!r->clients)
        return ag_config_errorf(c, n, AG_E_NOMEM, "out of memory");
    client_defaults(&r->clients[0]);
    if (client)
        rc = read_client(c, client, &r->clients[0], false);
    for (size_t i = 1; i < r->nclients && rc == 0; i++) {
        r->clients[i] = r->clients[0];
        rc = read_client(c, ag_cnode_item(cconfigs, i - 1), &r->clients[i], true);
    }
    if (rc < 0)
        return rc;

    rc = ag_config_get_map(c, n, "service", AG_OPTIONAL, &service);
    const ag_cnode *sconfigs = NULL;
    if (rc == 0 && service)
        rc = ag_config_get_seq(c, service, "configs", AG_OPTIONAL, &sconfigs);
    if (rc < 0)
        return rc;
    r->nservices = 1 + (sconfigs ? ag_cnode_len(sconfigs) : 0);
    r->services = ag_calloc(r->nservices, sizeof(*r->services));
    if (!r->services)
        return ag_config_errorf(c, n, AG_E_NOMEM, "out of memory");
    service_defaults(&r->services[0], r->proto);
    if (service)
        rc = read_service(c, service, &r->services[0], false);
    for (size_t i = 1; i < r->nservices && rc == 0; i++) {
        r->services[i] = r->services[0];
        rc = read_service(c, ag_cnode_item(sconfigs, i - 1), &r->services[i], true);
    }
    return rc;
}

void mesh_conf_free(mesh_conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nrouters; i++) {
        mesh_router_conf *r = &c->routers[i];
        ag__dtab_free(r->dtab);
        ag_free(r->dtab_text);
        ag_free(r->servers);
        ag_free(r->clients);
        ag_free(r->services);
        ag_free(r->authz.rules);
    }
    ag_free(c->routers);
    ag_free(c->namer_nodes);
    ag_config_free(c->cfg);
    ag_free(c);
}

int mesh_conf_load(const char *path, mesh_conf **out, char *err, size_t cap)
{
    static const char *const top[] = {"admin", "namers", "routers", "log", "shutdown_grace",
                                      NULL};
    static const char *const admin_keys[] = {"ip", "port", NULL};
    static const char *const log_keys[] = {"level", NULL};
    *out = NULL;
    mesh_conf *mc = ag_calloc(1, sizeof(*mc));
    if (!mc) {
        snprintf(err, cap, "%s: out of memory", path);
        return AG_E_NOMEM;
    }
    snprintf(mc->path, sizeof(mc->path), "%s", path);
    snprintf(mc->admin_ip, sizeof(mc->admin_ip), "127.0.0.1");
    mc->admin_port = 9990;
    mc->log_level = -1;
    mc->shutdown_grace_ms = 10000;
    mc->cfg = ag_config_new();
    ag_config *c = mc->cfg;
    if (!c) {
        ag_free(mc);
        snprintf(err, cap, "%s: out of memory", path);
        return AG_E_NOMEM;
    }
    const ag_cnode *root = NULL, *admin = NULL, *namers = NULL, *routers = NULL, *log = NULL;
    int rc = ag_config_load_file(c, path);
    if (rc == 0) {
        root = ag_config_root(c);
        rc = ag_config_check_keys(c, root, top);
    }
    if (rc == 0)
        rc = ag_config_get_map(c, root, "admin", AG_OPTIONAL, &admin);
    if (rc == 0 && admin) {
        const char *ip = mc->admin_ip;
        int64_t port = mc->admin_port;
        rc = ag_config_check_keys(c, admin, admin_keys);
        if (rc == 0)
            rc = ag_config_get_str(c, admin, "ip", AG_OPTIONAL, &ip);
        if (rc == 0)
            rc = ag_config_get_i64(c, admin, "port", AG_OPTIONAL, -1, 65535, &port);
        if (rc == 0 && strlen(ip) >= sizeof(mc->admin_ip))
            rc = ag_config_errorf(c, ag_cnode_get(admin, "ip"), AG_E_CONFIG_VALUE,
                                  "ip too long");
        if (rc == 0) {
            snprintf(mc->admin_ip, sizeof(mc->admin_ip), "%s", ip);
            mc->admin_port = (int)port;
        }
    }
    if (rc == 0)
        rc = ag_config_get_map(c, root, "log", AG_OPTIONAL, &log);
    if (rc == 0 && log) {
        const char *lv = NULL;
        rc = ag_config_check_keys(c, log, log_keys);
        if (rc == 0)
            rc = ag_config_get_str(c, log, "level", AG_OPTIONAL, &lv);
        if (rc == 0 && lv) {
            int l = ag_log_level_parse(lv);
            if (l < 0)
                rc = ag_config_errorf(c, ag_cnode_get(log, "level"), AG_E_CONFIG_VALUE,
                                      "log level must be debug, info, warn, error or off, "
                                      "got '%s'", lv);
            mc->log_level = l;
        }
    }
    if (rc == 0)
        rc = ag_config_get_duration_ms(c, root, "shutdown_grace", AG_OPTIONAL,
                                       &mc->shutdown_grace_ms);
    if (rc == 0)
        rc = ag_config_get_seq(c, root, "namers", AG_OPTIONAL, &namers);
    if (rc == 0 && namers && ag_cnode_len(namers) > 0) {
        mc->nnamers = ag_cnode_len(namers);
        mc->namer_nodes = ag_calloc(mc->nnamers, sizeof(*mc->namer_nodes));
        if (!mc->namer_nodes)
            rc = ag_config_errorf(c, namers, AG_E_NOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < mc->nnamers; i++) {
            const ag_cnode *nn = ag_cnode_item(namers, i);
            if (ag_cnode_type_of(nn) != AG_CNODE_MAP)
                rc = ag_config_errorf(c, nn, AG_E_CONFIG_TYPE, "a namer is a mapping");
            mc->namer_nodes[i] = nn;
        }
    }
    if (rc == 0)
        rc = ag_config_get_seq(c, root, "routers", AG_REQUIRED, &routers);
    if (rc == 0 && ag_cnode_len(routers) == 0)
        rc = ag_config_errorf(c, routers, AG_E_CONFIG_VALUE, "no router");
    if (rc == 0) {
        mc->nrouters = ag_cnode_len(routers);
        mc->routers = ag_calloc(mc->nrouters, sizeof(*mc->routers));
        if (!mc->routers)
            rc = ag_config_errorf(c, routers, AG_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; rc == 0 && i < mc->nrouters; i++) {
        const ag_cnode *rn = ag_cnode_item(routers, i);
        if (ag_cnode_type_of(rn) != AG_CNODE_MAP) {
            rc = ag_config_errorf(c, rn, AG_E_CONFIG_TYPE, "a router is a mapping");
            break;
        }
        rc = read_router(c, rn, &mc->routers[i]);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(mc->routers[j].label, mc->routers[i].label) == 0)
                rc = ag_config_errorf(c, rn, AG_E_CONFIG_VALUE,
                                      "two routers are labelled '%s': give each a label",
                                      mc->routers[i].label);
        /* two servers on one address */
        for (size_t j = 0; rc == 0 && j <= i; j++)
            for (size_t a = 0; rc == 0 && a < mc->routers[j].nservers; a++)
                for (size_t b = 0; rc == 0 && b < mc->routers[i].nservers; b++) {
                    const mesh_server_conf *x = &mc->routers[j].servers[a];
                    const mesh_server_conf *y = &mc->routers[i].servers[b];
                    if ((j != i || a < b) && x->port != 0 && x->port == y->port &&
                        strcmp(x->ip, y->ip) == 0)
                        rc = ag_config_errorf(c, rn, AG_E_CONFIG_VALUE,
                                              "two servers on %s:%d", x->ip, x->port);
                }
    }
    if (rc < 0) {
        snprintf(err, cap, "%s", ag_config_errmsg(c));
        mesh_conf_free(mc);
        return rc;
    }
    *out = mc;
    return 0;
}
