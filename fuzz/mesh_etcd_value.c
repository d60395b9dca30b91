/*
 * Fuzz target for the etcd namer's value parser (ag__etcd_parse_value in
 * src/mesh/namer_etcd.c): the bytes of a key's value under keyPrefix, which
 * anyone who can write to that part of etcd controls.
 *
 * Checks what the parser promises: it returns 0, AG_E_INVAL with a reason,
 * or AG_E_NOMEM; on success the host passes ag__host_valid, the port is
 * > 0 and the weight finite and > 0; on failure nothing is left allocated.
 * A second parse of the same bytes gives the same result.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/namer_int.h"

#define ENSURE(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: ENSURE(%s) failed\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag__addr a, b;
    const char *why = NULL, *why2 = NULL;
    ag_alloc_tracking(true);
    int64_t live = ag_alloc_live();
    int rc = ag__etcd_parse_value((const char *)data, size, &a, &why);
    if (rc < 0) {
        ENSURE(rc == AG_E_INVAL || rc == AG_E_NOMEM);
        ENSURE(rc != AG_E_INVAL || why != NULL);
        ENSURE(ag_alloc_live() == live);
    } else {
        ENSURE(rc == 0 && a.host != NULL);
        ENSURE(ag__host_valid(a.host, strlen(a.host)));
        ENSURE(a.port > 0);
        ENSURE(isfinite(a.weight) && a.weight > 0);
    }
    int rc2 = ag__etcd_parse_value((const char *)data, size, &b, &why2);
    ENSURE(rc2 == rc);
    if (rc == AG_E_INVAL)
        ENSURE(strcmp(why, why2) == 0);
    if (rc == 0) {
        ENSURE(strcmp(a.host, b.host) == 0 && a.port == b.port && a.weight == b.weight);
        ag_free(a.host);
        ag_free(b.host);
    }
    ENSURE(ag_alloc_live() == live);
    return 0;
}
