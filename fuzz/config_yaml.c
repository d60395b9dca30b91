/*
 * Fuzz target for the YAML config reader (src/base/config.c).
 *
 * Loads the input as a config, then walks the whole tree checking the
 * invariants the API promises (positions 1-based, paths set, keys scalars
 * whose path is their mapping's, scalar text NUL-terminated after len,
 * nesting at most 64), calls every typed getter on every key of every
 * mapping, required and optional, and ag_config_check_keys with a fixed
 * list; every error must carry a message naming the file. Aliases share
 * nodes, so a walk could revisit a node exponentially often: it stops
 * after WALK_BUDGET visits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/base.h"

#define NAME        "fuzz.yaml"
#define WALK_BUDGET 20000
#define MAX_DEPTH   64

#define ENSURE(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: ENSURE(%s) failed\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const known_keys[] = {"parties", "address", "ports", "spu", "protocol",
                                         "field",   "tls",     "cert",  "key", "ca",
                                         "hosts",   "timeout", "size",  NULL};

/* After a call that returned rc: an error has the config's code and a
 * message about this file; success leaves the out value alone here. */
static void check_rc(ag_config *c, int rc)
{
    if (rc == 0)
        return;
    ENSURE(rc < 0);
    ENSURE(ag_config_errcode(c) == rc);
    ENSURE(strncmp(ag_config_errmsg(c), NAME ":", strlen(NAME ":")) == 0);
}

/* Every getter on key in map, optional and required. */
static void call_getters(ag_config *c, const ag_cnode *map, const char *key)
{
    for (int req = 0; req < 2; req++) {
        const char *s = NULL;
        int64_t i = 0;
        double d = 0;
        bool b = false;
        uint64_t u = 0;
        const ag_cnode *n = NULL;
        int rc = ag_config_get_str(c, map, key, req, &s);
        check_rc(c, rc);
        if (rc == 0 && s)
            ENSURE(s == ag_cnode_scalar(ag_cnode_get(map, key)));
        check_rc(c, ag_config_get_i64(c, map, key, req, INT64_MIN, INT64_MAX, &i));
        i = 0;
        rc = ag_config_get_i64(c, map, key, req, -100, 100, &i);
        check_rc(c, rc);
        ENSURE(i >= -100 && i <= 100);
        check_rc(c, ag_config_get_double(c, map, key, req, &d));
        check_rc(c, ag_config_get_bool(c, map, key, req, &b));
        check_rc(c, ag_config_get_duration_ms(c, map, key, req, &u));
        check_rc(c, ag_config_get_size(c, map, key, req, &u));
        rc = ag_config_get_map(c, map, key, req, &n);
        check_rc(c, rc);
        ENSURE(n == NULL || ag_cnode_type_of(n) == AG_CNODE_MAP);
        n = NULL;
        rc = ag_config_get_seq(c, map, key, req, &n);
        check_rc(c, rc);
        ENSURE(n == NULL || ag_cnode_type_of(n) == AG_CNODE_SEQ);
    }
}

static void walk(ag_config *c, const ag_cnode *n, int depth, unsigned *budget)
{
    if (*budget == 0)
        return;
    (*budget)--;
    ENSURE(n != NULL);
    ENSURE(ag_cnode_line(n) >= 1 && ag_cnode_column(n) >= 1);
    ENSURE(ag_cnode_path(n) != NULL);
    ag_cnode_type t = ag_cnode_type_of(n);
    if (t == AG_CNODE_SCALAR || t == AG_CNODE_NULL) {
        const char *s = ag_cnode_scalar(n);
        ENSURE(s != NULL && s[ag_cnode_scalar_len(n)] == '\0');
        ENSURE(ag_cnode_len(n) == 0);
        return;
    }
    ENSURE(ag_cnode_scalar(n) == NULL);
    ENSURE(depth < MAX_DEPTH);
    if (t == AG_CNODE_MAP) {
        check_rc(c, ag_config_check_keys(c, n, known_keys));
        for (size_t i = 0; i < ag_cnode_len(n); i++) {
            const ag_cnode *k = ag_cnode_key(n, i);
            const char *ks = ag_cnode_scalar(k);
            ENSURE(ks != NULL);
            ENSURE(ag_cnode_type_of(k) != AG_CNODE_MAP && ag_cnode_type_of(k) != AG_CNODE_SEQ);
            if (strlen(ks) == ag_cnode_scalar_len(k)) {
                ENSURE(ag_cnode_get(n, ks) == ag_cnode_item(n, i));
                call_getters(c, n, ks);
            }
        }
    } else {
        ENSURE(ag_cnode_key(n, 0) == NULL);
    }
    check_rc(c, ag_config_get_str(c, n, "missing", AG_REQUIRED, &(const char *){NULL}));
    for (size_t i = 0; i < ag_cnode_len(n); i++)
        walk(c, ag_cnode_item(n, i), depth + 1, budget);
    ENSURE(ag_cnode_item(n, ag_cnode_len(n)) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_config *c = ag_config_new();
    unsigned budget = WALK_BUDGET;
    if (!c)
        return 0;
    int rc = ag_config_load_string(c, NAME, (const char *)data, size);
    if (rc < 0) {
        check_rc(c, rc);
        ENSURE(ag_config_root(c) == NULL);
    } else {
        const ag_cnode *root = ag_config_root(c);
        ENSURE(root != NULL);
        ENSURE(strcmp(ag_cnode_path(root), "") == 0);
        walk(c, root, 0, &budget);
        check_rc(c, ag_config_errorf(c, root, AG_E_CONFIG_VALUE, "checked %u", budget));
    }
    ENSURE(ag_config_load_string(c, NAME, "a: 1", 4) == AG_E_STATE);
    ag_config_free(c);
    return 0;
}
