/*
 * Fuzz target for the mesh's config reader (src/mesh/config.c): the input
 * is written to a file and loaded as `argot mesh --config` would. A config
 * either loads, with every router's settings within their documented
 * ranges, or fails with a message that names the file ("<file>:line:col:
 * ..."). No crash, leak or undefined behaviour. Namers are not made (that
 * needs a loop), only their nodes are kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mesh/internal.h"

#define ENSURE(cond)                                                                   \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: ENSURE(%s) failed\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                   \
        }                                                                              \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof(path), "/tmp/argot-fuzz-mesh-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    mesh_conf *c = NULL;
    char err[AG_ERRMSG_MAX] = "";
    int rc = mesh_conf_load(path, &c, err, sizeof(err));
    if (rc < 0) {
        ENSURE(c == NULL);
        ENSURE(strncmp(err, path, strlen(path)) == 0);
        return 0;
    }
    ENSURE(c && c->nrouters > 0);
    for (size_t i = 0; i < c->nrouters; i++) {
        const mesh_router_conf *r = &c->routers[i];
        ENSURE(r->label[0] && r->nservers > 0 && r->nclients >= 1 && r->nservices >= 1);
        ENSURE(r->max_header_bytes >= 1024 && r->stream_window >= 16384);
        for (size_t s = 0; s < r->nservers; s++)
            ENSURE(r->servers[s].port >= 0 && r->servers[s].port <= 65535);
        for (size_t k = 0; k < r->nclients; k++) {
            const mesh_client_conf *cc = &r->clients[k];
            ENSURE(cc->lb.low_load > 0 && cc->lb.low_load < cc->lb.high_load);
            ENSURE(cc->lb.backoff_min_ms <= cc->lb.backoff_max_ms);
        }
        for (size_t k = 0; k < r->nservices; k++)
            ENSURE(r->services[k].max_attempts >= 1);
        /* the lookups by prefix are total */
        ENSURE(mesh_client_for(r, "/#/fs/x") != NULL);
        ENSURE(mesh_service_for(r, "/svc/x") != NULL);
        ag_buf b;
        ag_buf_init(&b, 1 << 20);
        ENSURE(ag__dtab_show(r->dtab, &b) == 0 || b.len > 0);
        ag_buf_cleanup(&b);
    }
    c->refs = 1;
    mesh_conf_free(c);
    return 0;
}
