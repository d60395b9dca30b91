/*
 * Fuzz target for the fs namer's file parser (ag__fs_parse in
 * src/mesh/namer_fs.c): the bytes of a file in rootDir, which anyone who
 * can write there controls.
 *
 * Checks what the parser promises: on success the endpoints are sorted by
 * (host, port) with no duplicates, every host passes ag__host_valid, every
 * port is > 0, every weight is finite and > 0, at most AG__NAMER_ADDRS_MAX
 * of them, and the count is 0 exactly when the array is NULL; on failure
 * nothing is returned or left allocated and the message starts with the
 * file's name. A second parse of the same bytes gives the same result.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/namer_int.h"

#define NAME "disco/users"

#define ENSURE(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: ENSURE(%s) failed\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ok(const ag__addr *a, size_t n)
{
    ENSURE((n == 0) == (a == NULL));
    ENSURE(n <= AG__NAMER_ADDRS_MAX);
    for (size_t i = 0; i < n; i++) {
        ENSURE(a[i].host != NULL);
        ENSURE(ag__host_valid(a[i].host, strlen(a[i].host)));
        ENSURE(a[i].port > 0);
        ENSURE(isfinite(a[i].weight) && a[i].weight > 0);
        if (i > 0) {
            int c = strcmp(a[i - 1].host, a[i].host);
            ENSURE(c < 0 || (c == 0 && a[i - 1].port < a[i].port));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag__addr *a = NULL, *b = NULL;
    size_t n = 0, m = 0;
    ag_errbuf err, err2;
    ag_errbuf_clear(&err);
    ag_errbuf_clear(&err2);
    ag_alloc_tracking(true);
    int64_t live = ag_alloc_live();
    int rc = ag__fs_parse((const char *)data, size, NAME, &a, &n, &err);
    if (rc < 0) {
        ENSURE(rc == AG_E_INVAL || rc == AG_E_TOO_LARGE || rc == AG_E_NOMEM);
        ENSURE(a == NULL && n == 0);
        ENSURE(strncmp(err.msg, NAME ":", strlen(NAME ":")) == 0);
        ENSURE(ag_alloc_live() == live);
    } else {
        check_ok(a, n);
    }
    int rc2 = ag__fs_parse((const char *)data, size, NAME, &b, &m, &err2);
    ENSURE(rc2 == rc && m == n);
    if (rc < 0)
        ENSURE(strcmp(err.msg, err2.msg) == 0);
    for (size_t i = 0; i < n; i++) {
        ENSURE(strcmp(a[i].host, b[i].host) == 0 && a[i].port == b[i].port &&
               a[i].weight == b[i].weight);
    }
    ag__addrs_free(a, n);
    ag__addrs_free(b, m);
    ENSURE(ag_alloc_live() == live);
    return 0;
}
