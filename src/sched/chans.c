/*
 * Channels to node managers (chans.h): a short list, searched by target.
 */
#include <stdio.h>
#include <string.h>

#include "chans.h"

struct ag__chans {
    char target[300];
    ag_rpc_channel *ch;
    struct ag__chans *next;
};

ag_rpc_channel *ag__chans_get(ag__chans **list, const char *target, uint64_t connect_timeout_ms)
{
    for (ag__chans *n = *list; n; n = n->next)
        if (strcmp(n->target, target) == 0)
            return n->ch;
    ag__chans *n = ag_calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    snprintf(n->target, sizeof(n->target), "%s", target);
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    co.backoff_initial_ms = 100;
    if (connect_timeout_ms)
        co.connect_timeout_ms = connect_timeout_ms;
    n->ch = ag_rpc_channel_new(target, &co);
    if (!n->ch) {
        ag_free(n);
        return NULL;
    }
    n->next = *list;
    *list = n;
    return n->ch;
}

void ag__chans_free(ag__chans **list)
{
    while (*list) {
        ag__chans *n = *list;
        *list = n->next;
        ag_rpc_channel_free(n->ch);
        ag_free(n);
    }
}
