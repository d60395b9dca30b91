/*
 * Authorization rules (a router's `authorization:`), as a function of the
 * caller's party and the request path, with no I/O: the first rule that
 * matches decides; none matching, the default does (deny, unless the
 * config says allow).
 *
 * A rule's party is a name from a verified client certificate, "*" for
 * any caller, or "-" for a caller without a certificate. A service rule
 * matches a gRPC path "/<service>/<method>" exactly (method "*": any
 * method of the service); a path rule matches a request path that starts
 * with its prefix at a segment boundary ("/admin" matches "/admin" and
 * "/admin/x", not "/administrator"), the query ignored. A rule with a dst
 * matches only requests whose name (by the router's identifier) starts
 * with it at a segment boundary: a gateway between parties lets anyone
 * with a certificate call the link service towards its own party only,
 * and only its own party towards the others (else a holder of any
 * certificate could relay through P's gateway and arrive as P).
 */
#include <string.h>

#include "internal.h"

static bool party_matches(const mesh_rule *r, const char *party)
{
    if (strcmp(r->party, "*") == 0)
        return true;
    if (!party)
        return strcmp(r->party, "-") == 0;
    return strcmp(r->party, party) == 0;
}

static bool path_matches(const mesh_rule *r, const char *path)
{
    if (r->path[0]) {
        size_t n = strlen(r->path);
        if (n > 1 && r->path[n - 1] == '/')
            n--;
        if (strncmp(path, r->path, n) != 0)
            return false;
        char next = path[n];
        return n == 1 || next == '\0' || next == '/' || next == '?';
    }
    /* "/service/method" */
    if (path[0] != '/')
        return false;
    const char *svc = path + 1;
    const char *slash = strchr(svc, '/');
    if (!slash)
        return false;
    size_t sl = (size_t)(slash - svc);
    if (sl != strlen(r->service) || strncmp(svc, r->service, sl) != 0)
        return false;
    const char *method = slash + 1;
    if (strchr(method, '/'))
        return false;
    return strcmp(r->method, "*") == 0 || strcmp(method, r->method) == 0;
}

static bool dst_matches(const mesh_rule *r, const char *dst)
{
    if (!r->dst[0])
        return true;
    return dst && mesh_path_has_prefix(dst, r->dst);
}

const mesh_rule *mesh_authz_match(const mesh_authz *a, const char *party, const char *path,
                                  const char *dst)
{
    for (size_t i = 0; i < a->nrules; i++)
        if (party_matches(&a->rules[i], party) && path_matches(&a->rules[i], path) &&
            dst_matches(&a->rules[i], dst))
            return &a->rules[i];
    return NULL;
}

bool mesh_authz_allows(const mesh_authz *a, const char *party, const char *path,
                       const char *dst, const mesh_rule **rule)
{
    *rule = NULL;
    if (!a->on)
        return true;
    const mesh_rule *r = mesh_authz_match(a, party, path, dst);
    *rule = r;
    return r ? r->allow : a->default_allow;
}
