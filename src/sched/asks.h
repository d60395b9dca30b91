/*
 * An application master's table of asks (YARN's AMRMClient keeps one):
 * totals of containers wanted per key (priority, resource name,
 * capability, allocation request id), shared by the AM client for argot's
 * RM (am.c) and for Slurm (slurm.c). One thread; a plain list (an AM has
 * a handful of keys).
 */
#ifndef ARGOT_SCHED_ASKS_H
#define ARGOT_SCHED_ASKS_H

#include <stdbool.h>
#include <stdint.h>

#include "argot/base.h"

typedef struct ag__ask {
    int32_t priority;
    char name[256];   /* a host, a rack or "*" */
    int64_t memory_mb;
    int32_t vcores;
    int64_t alloc_id;
    int32_t total;    /* containers wanted now */
    bool relax;
    char label[64];
    bool changed;     /* am.c: to send with the next allocate */
    int32_t pending;  /* slurm.c: jobs submitted for the key and not yet granted */
    struct ag__ask *next;
} ag__ask;

/* The key's entry in *list, or NULL. */
ag__ask *ag__ask_find(ag__ask *list, int32_t priority, const char *name, int64_t memory_mb,
                      int32_t vcores, int64_t alloc_id);
/* ag_am_ask's contract: sets the key's total (adding the key), relax and
 * label, and marks it changed; 0, or AG_E_INVAL / AG_E_NOMEM with err set
 * ("ask: ..."). */
int ag__ask_set(ag__ask **list, ag_errbuf *err, int32_t priority, const char *name,
                int64_t memory_mb, int32_t vcores, int32_t total, bool relax, const char *label,
                int64_t alloc_id);
/* Frees every entry; *list becomes empty. */
void ag__asks_free(ag__ask **list);

#endif
