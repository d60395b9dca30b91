/*
 * The link's common part: argument checks, statistics (bytes, messages,
 * rounds) and deadlines around an implementation's send and receive.
 *
 * Rounds: a party's round count grows by one when it sends after having
 * received since its previous send (or sends for the first time). A reveal
 * (everyone sends, then everyone receives) is one round; Beaver's mul is
 * one; semi2k's input sharing sends nothing, so it costs no round.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

int ag__link_init(ag_link *l, const struct ag_link_ops *ops, unsigned rank, unsigned size,
                  const char *const *names)
{
    memset(l, 0, sizeof(*l));
    l->ops = ops;
    l->rank = rank;
    l->size = size;
    l->timeout_ms = AG_LINK_DEFAULT_TIMEOUT_MS;
    l->recv_since_send = true;
    l->names = ag_calloc(size, sizeof(*l->names));
    if (!l->names)
        return AG_E_NOMEM;
    for (unsigned i = 0; i < size; i++) {
        char def[32];
        snprintf(def, sizeof(def), "party%u", i);
        l->names[i] = ag_strdup(names && names[i] ? names[i] : def);
        if (!l->names[i]) {
            ag__link_cleanup(l);
            return AG_E_NOMEM;
        }
    }
    return 0;
}

void ag__link_cleanup(ag_link *l)
{
    if (l->names)
        for (unsigned i = 0; i < l->size; i++)
            ag_free(l->names[i]);
    ag_free(l->names);
    l->names = NULL;
}

unsigned ag_link_rank(const ag_link *l)
{
    return l->rank;
}

unsigned ag_link_size(const ag_link *l)
{
    return l->size;
}

const char *ag_link_party(const ag_link *l, unsigned r)
{
    return r < l->size ? l->names[r] : "(no such party)";
}

static int check_peer(ag_link *l, unsigned peer)
{
    if (peer >= l->size || peer == l->rank)
        return ag_errbuf_set(&l->err, AG_E_LINK_PEER, "party %s: no peer of rank %u in a job "
                             "of %u parties", l->names[l->rank], peer, l->size);
    return 0;
}

int ag_link_send_take(ag_link *l, unsigned peer, uint64_t tag, void *data, size_t len)
{
    int rc = check_peer(l, peer);
    if (rc < 0) {
        ag_free(data);
        return rc;
    }
    if (l->recv_since_send) {
        l->stats.rounds++;
        l->recv_since_send = false;
    }
    rc = l->ops->send(l, peer, tag, data, len);
    if (rc < 0)
        return rc;
    l->stats.bytes_sent += len;
    l->stats.msgs_sent++;
    return 0;
}

int ag_link_send(ag_link *l, unsigned peer, uint64_t tag, const void *data, size_t len)
{
    void *copy = ag_malloc(len);
    if (!copy)
        return ag_errbuf_set(&l->err, AG_E_NOMEM, "party %s: no memory for a %zu-byte message",
                             l->names[l->rank], len);
    if (len)
        memcpy(copy, data, len);
    return ag_link_send_take(l, peer, tag, copy, len);
}

int ag_link_recv(ag_link *l, unsigned peer, uint64_t tag, void **data, size_t *len)
{
    int rc = check_peer(l, peer);
    if (rc < 0)
        return rc;
    rc = l->ops->recv(l, peer, tag, data, len, ag_deadline_in_ms(l->timeout_ms));
    if (rc < 0)
        return rc;
    l->recv_since_send = true;
    l->stats.bytes_recv += *len;
    l->stats.msgs_recv++;
    return 0;
}

int ag_link_recv_exact(ag_link *l, unsigned peer, uint64_t tag, size_t len, void **data)
{
    void *got_data;
    size_t got;
    int rc = ag_link_recv(l, peer, tag, &got_data, &got);
    if (rc < 0)
        return rc;
    if (got != len) {
        ag_free(got_data);
        return ag_errbuf_set(&l->err, AG_E_LINK_SIZE, "party %s sent %zu bytes where %zu were "
                             "expected (tag %llu): the parties disagree on a shape",
                             l->names[peer], got, len, (unsigned long long)tag);
    }
    *data = got_data;
    return 0;
}

int ag_link_recv_into(ag_link *l, unsigned peer, uint64_t tag, void *buf, size_t len)
{
    void *data;
    int rc = ag_link_recv_exact(l, peer, tag, len, &data);
    if (rc < 0)
        return rc;
    if (len)
        memcpy(buf, data, len);
    ag_free(data);
    return 0;
}

void ag_link_set_timeout_ms(ag_link *l, uint64_t ms)
{
    l->timeout_ms = ms;
}

uint64_t ag_link_timeout_ms(const ag_link *l)
{
    return l->timeout_ms;
}

void ag_link_abort(ag_link *l, const char *reason)
{
    char msg[AG_ERRMSG_MAX];
    snprintf(msg, sizeof(msg), "party %s failed: %s", l->names[l->rank], reason);
    l->ops->abort(l, msg);
}

const char *ag_link_errmsg(const ag_link *l)
{
    return l->err.msg;
}

void ag_link_stats_get(const ag_link *l, ag_link_stats *out)
{
    *out = l->stats;
}

void ag_link_free(ag_link *l)
{
    if (l)
        l->ops->destroy(l);
}
