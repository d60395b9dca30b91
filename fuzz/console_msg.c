/*
 * Fuzz target for the messages between consoles (src/console/form.c,
 * ag__console_msg_parse): the bytes are a peer console's message. A
 * message either parses, names a party of the cluster and survives a round
 * trip through ag__console_msg_encode unchanged, or fails with a message
 * saying why. No crash, leak or undefined behaviour.
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
    static ag_cluster cl;
    if (!cl.n) {
        cl.n = 2;
        snprintf(cl.names[0], sizeof(cl.names[0]), "alice");
        snprintf(cl.names[1], sizeof(cl.names[1]), "bob");
    }
    ag__console_msg m, again;
    ag_errbuf err = {0};
    int rc = ag__console_msg_parse(data, size, &cl, &m, &err);
    if (rc < 0) {
        ENSURE(err.msg[0] != '\0');
        return 0;
    }
    ENSURE(ag_cluster_rank(&cl, m.from) >= 0);
    ENSURE(m.type == AG__MSG_PING || ag__console_id_valid(m.id));
    char *text = ag__console_msg_encode(&m);
    if (!text)
        return 0;
    ENSURE(ag__console_msg_parse(text, strlen(text), &cl, &again, &err) == 0);
    ENSURE(memcmp(&m, &again, sizeof(m)) == 0);
    ag_free(text);
    return 0;
}
