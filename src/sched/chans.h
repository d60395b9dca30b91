/*
 * Channels to node managers, one per "host:port", kept for the owner's
 * life: the RM's AM launcher and the AM client each hold a list (chans.c).
 * Not thread-safe: the owner serializes its calls.
 */
#ifndef ARGOT_SCHED_CHANS_H
#define ARGOT_SCHED_CHANS_H

#include <stdint.h>

#include "argot/rpc.h"

typedef struct ag__chans ag__chans;

/* The channel to target in *list, made on first use (reconnect backoff from
 * 100 ms; connect_timeout_ms 0: rpc's default). NULL when out of memory or
 * target is malformed. */
ag_rpc_channel *ag__chans_get(ag__chans **list, const char *target, uint64_t connect_timeout_ms);
/* Frees every channel of *list; *list becomes empty. */
void ag__chans_free(ag__chans **list);

#endif
