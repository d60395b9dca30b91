/*
 * An endpoint's connections (mesh_epc, hung on the balancer's ag__ep): what
 * both proxies share about them. The connections themselves are the
 * proxy's (HTTP/2: a few multiplexed ones; HTTP/1.1: a pool of persistent
 * ones); the proxy says how to walk, test and close them through
 * mesh_conn_ops, chosen by the router's protocol.
 *
 *   - fail-fast: a connection that could not be made marks the endpoint
 *     down (ag__lb_conn_failed) and starts a background reconnect, 100 ms
 *     doubling to 5 s, whose success (the proxy's up callback calls
 *     mesh_epc_up) brings it back;
 *   - an endpoint that left the service (gone) closes its connections once
 *     no request holds it (refs) and none of them carries one, and then
 *     the balancer lets go of it. The timer's close callback frees the
 *     memory, so a caller that just dropped a reference may still look at
 *     the epc (freeing is set) until the loop turns.
 */
#include "internal.h"

static void on_retry(uv_timer_t *t)
{
    mesh_epc *e = t->data;
    e->retry_on = false;
    if (!e->gone && !e->conns)
        e->ops->open(e);   /* its up brings the endpoint back */
}

void mesh_epc_down(mesh_epc *e)
{
    if (e->gone)
        return;
    ag__lb_conn_failed(e->cl->lb, e->ep);
    if (e->retry_on)
        return;
    e->backoff_ms = e->backoff_ms ? AG_MIN(e->backoff_ms * 2, 5000) : 100;
    e->retry_on = true;
    uv_timer_start(&e->retry, on_retry, e->backoff_ms, 0);
}

void mesh_epc_up(mesh_epc *e)
{
    if (!e || e->gone)
        return;
    ag__lb_conn_ok(e->cl->lb, e->ep);
    e->backoff_ms = 0;
}

static void epc_closed(uv_handle_t *h)
{
    ag_free(h->data);
}

void mesh_epc_check(mesh_epc *e)
{
    if (!e || !e->gone || e->freeing || e->refs > 0)
        return;
    for (void *c = e->conns; c; c = e->ops->next(c))
        if (e->ops->busy(c))
            return;
    e->freeing = true;
    while (e->conns) {
        void *c = e->conns;
        e->conns = e->ops->next(c);
        e->ops->drop(c);
    }
    if (e->retry_on)
        uv_timer_stop(&e->retry);
    e->ep->user = NULL;
    ag__lb_release(e->cl->lb, e->ep);
    uv_close((uv_handle_t *)&e->retry, epc_closed);
}

void mesh_epc_release(mesh_epc *e)
{
    if (e && e->refs > 0) {
        e->refs--;
        mesh_epc_check(e);
    }
}

mesh_epc *mesh_epc_get(mesh_cluster *cl, ag__ep *ep)
{
    if (ep->user)
        return ep->user;
    mesh_epc *e = ag_calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->cl = cl;
    e->ep = ep;
    e->ops = cl->rt->rc->proto == MESH_HTTP ? &mesh_h1_conn_ops : &mesh_h2_conn_ops;
    uv_timer_init(&cl->rt->m->loop, &e->retry);
    e->retry.data = e;
    ep->user = e;
    return e;
}

void mesh_epc_gone(mesh_cluster *cl, ag__ep *ep)
{
    mesh_epc *e = ep->user;
    if (!e) {
        ag__lb_release(cl->lb, ep);
        return;
    }
    e->gone = true;
    mesh_epc_check(e);
}
