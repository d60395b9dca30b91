/* An AM's table of asks (asks.h). */
#include <stdio.h>
#include <string.h>

#include "asks.h"

ag__ask *ag__ask_find(ag__ask *list, int32_t priority, const char *name, int64_t memory_mb,
                      int32_t vcores, int64_t alloc_id)
{
    for (ag__ask *a = list; a; a = a->next)
        if (a->priority == priority && strcmp(a->name, name) == 0 &&
            a->memory_mb == memory_mb && a->vcores == vcores && a->alloc_id == alloc_id)
            return a;
    return NULL;
}

int ag__ask_set(ag__ask **list, ag_errbuf *err, int32_t priority, const char *name,
                int64_t memory_mb, int32_t vcores, int32_t total, bool relax, const char *label,
                int64_t alloc_id)
{
    if (total < 0 || memory_mb <= 0 || vcores <= 0 || !name || !*name)
        return ag_errbuf_set(err, AG_E_INVAL, "ask: a total >= 0 of containers of positive "
                             "memory and vcores at a named resource");
    if (strlen(name) >= sizeof((*list)->name) || (label && strlen(label) >= sizeof((*list)->label)))
        return ag_errbuf_set(err, AG_E_INVAL, "ask: resource name or label too long");
    ag__ask *a = ag__ask_find(*list, priority, name, memory_mb, vcores, alloc_id);
    if (!a) {
        if (!(a = ag_calloc(1, sizeof(*a))))
            return ag_errbuf_set(err, AG_E_NOMEM, "ask: no memory");
        a->priority = priority;
        snprintf(a->name, sizeof(a->name), "%s", name);
        a->memory_mb = memory_mb;
        a->vcores = vcores;
        a->alloc_id = alloc_id;
        a->next = *list;
        *list = a;
    }
    a->total = total;
    a->relax = relax;
    snprintf(a->label, sizeof(a->label), "%s", label ? label : "");
    a->changed = true;
    return 0;
}

void ag__asks_free(ag__ask **list)
{
    while (*list) {
        ag__ask *n = (*list)->next;
        ag_free(*list);
        *list = n;
    }
}
