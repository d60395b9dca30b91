/*
 * Fuzz target for the console's reading of a gateway's state
 * (src/console/infra.c, ag__console_mesh_parse): the bytes are a whole
 * HTTP/1.x response to GET /admin/state.json. A response either parses
 * into {"routers": [...]} holding only objects, or fails with a message.
 * No crash, leak or undefined behaviour.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/internal.h"

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
    json_t *st = NULL;
    ag_errbuf err = {0};
    int rc = ag__console_mesh_parse(data, size, &st, &err);
    if (rc < 0) {
        ENSURE(st == NULL && err.msg[0]);
        return 0;
    }
    json_t *routers = json_object_get(st, "routers");
    ENSURE(json_is_array(routers));
    for (size_t i = 0; i < json_array_size(routers); i++) {
        json_t *r = json_array_get(routers, i);
        ENSURE(json_is_object(r));
        json_t *label = json_object_get(r, "label");
        ENSURE(!label || json_is_string(label));
        ENSURE(json_is_array(json_object_get(r, "clusters")));
    }
    json_decref(st);
    return 0;
}
