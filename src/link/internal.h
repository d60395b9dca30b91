/*
 * What the link implementations share: the endpoint's common part (rank,
 * names, timeout, statistics, error) and the operations an implementation
 * provides. link.c does the bookkeeping around them (counting bytes and
 * rounds, deadlines, messages), so implementations only move bytes.
 */
#ifndef ARGOT_LINK_INTERNAL_H
#define ARGOT_LINK_INTERNAL_H

#include "argot/link.h"

struct ag_link_ops {
    /* Delivers data (taking ownership, also on failure) to peer. */
    int (*send)(ag_link *l, unsigned peer, uint64_t tag, void *data, size_t len);
    /* Waits until deadline for peer's message under tag. On failure, writes
     * the reason into l->err and returns its code. */
    int (*recv)(ag_link *l, unsigned peer, uint64_t tag, void **data, size_t *len,
                ag_deadline deadline);
    /* Makes every party's receives fail with msg. */
    void (*abort)(ag_link *l, const char *msg);
    void (*destroy)(ag_link *l);
};

struct ag_link {
    const struct ag_link_ops *ops;
    unsigned rank;
    unsigned size;
    char **names;          /* size entries, owned */
    uint64_t timeout_ms;
    ag_link_stats stats;
    bool recv_since_send;  /* a receive happened since the last send */
    ag_errbuf err;
};

/* Fills the common part; names may be NULL. Returns 0 or AG_E_NOMEM. */
int ag__link_init(ag_link *l, const struct ag_link_ops *ops, unsigned rank, unsigned size,
                  const char *const *names);
void ag__link_cleanup(ag_link *l);

#endif /* ARGOT_LINK_INTERNAL_H */
