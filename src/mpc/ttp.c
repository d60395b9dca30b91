/*
 * The client side of the trusted-third-party dealer (argot.beaver.v1.Dealer,
 * served by dealer.c): every party registers its dealer seed at setup;
 * rank 0 makes one Deal call per correlation and reads its computed
 * components from the response stream as beaver.c consumes them.
 *
 * A failed call leaves "beaver server: <status>: <message>" in m->ttp_err,
 * which ag__dealer_why gives the kernel for its error line; the dealer's
 * messages name what it refused ("ranks 1, 2 have not registered").
 * Nothing secret is logged or put in an error.
 */
#include <stdio.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "argot/beaver/v1/beaver.argot.h"
#include "argot/beaver/v1/beaver.pb-c.h"
#include "argot/rpc.h"
#include "internal.h"

const char *ag__dealer_why(ag_mpc *m, int rc)
{
    if (m->ttp && m->ttp_err[0])
        return m->ttp_err;
    return ag_strerror(rc);
}

static Argot__Beaver__V1__Field field_of(ag_field f)
{
    return f == AG_FM64 ? ARGOT__BEAVER__V1__FIELD__FM64 : ARGOT__BEAVER__V1__FIELD__FM128;
}

/* Records a failed call (status st with the server's message) and returns
 * the error code for it. */
static int call_failed(ag_mpc *m, const char *what, int st, const char *message)
{
    snprintf(m->ttp_err, sizeof(m->ttp_err), "beaver server: %s: %s: %s", what,
             ag_rpc_status_name(st), message && message[0] ? message : "(no message)");
    return st == AG_RPC_DEADLINE_EXCEEDED ? AG_E_TIMEDOUT : AG_E_MPC_DEALER;
}

int ag__ttp_register(ag_mpc *m, const uint8_t seed[16])
{
    Argot__Beaver__V1__RegisterRequest req = ARGOT__BEAVER__V1__REGISTER_REQUEST__INIT;
    req.session.data = m->ttp_session;
    req.session.len = sizeof(m->ttp_session);
    req.rank = m->rank;
    req.parties = m->n;
    req.field = field_of(m->field);
    req.seed.data = (uint8_t *)seed;
    req.seed.len = 16;
    req.label = m->ttp_label;
    Argot__Beaver__V1__RegisterResponse *resp = NULL;
    char *message = NULL;
    int st = argot__beaver__v1__dealer__register_seed__invoke(
        m->ttp, &req, ag_deadline_in_ms(m->ttp_timeout_ms), &resp, &message);
    int rc = 0;
    if (st != AG_RPC_OK)
        rc = call_failed(m, "register", st, message);
    ag_rpc_msg_free(resp ? &resp->base : NULL);
    ag_free(message);
    return rc;
}

int ag__ttp_deal(ag_mpc *m, struct ag__ttp_call *c, unsigned kind, uint64_t elements,
                 unsigned bits, uint64_t mm, uint64_t k, uint64_t nn, bool tr,
                 const uint64_t *mask)
{
    memset(c, 0, sizeof(*c));
    c->m = m;
    m->ttp_err[0] = 0;
    uint64_t *pos = ag__scratch_get(m, m->n * sizeof(*pos));
    if (!pos)
        return AG_E_NOMEM;
    pos[0] = m->dealer_self.ctr;
    for (unsigned j = 1; j < m->n; j++)
        pos[j] = m->dealer_pos[j];
    Argot__Beaver__V1__DealRequest req = ARGOT__BEAVER__V1__DEAL_REQUEST__INIT;
    req.session.data = m->ttp_session;
    req.session.len = sizeof(m->ttp_session);
    req.kind = (Argot__Beaver__V1__Kind)kind;
    req.n_positions = m->n;
    req.positions = pos;
    req.elements = elements;
    req.bits = bits;
    req.m = mm;
    req.k = k;
    req.n = nn;
    req.transposed = tr;
    if (mask) {
        req.n_mask_positions = m->n;
        req.mask_positions = (uint64_t *)mask;
    }
    c->call = argot__beaver__v1__dealer__deal__start(m->ttp,
                                                     ag_deadline_in_ms(m->ttp_timeout_ms));
    int rc = c->call ? 0 : AG_E_NOMEM;
    if (rc == 0)
        rc = argot__beaver__v1__dealer__deal__send_request(c->call, &req, 0);
    if (rc == 0)
        rc = ag_rpc_call_close_send(c->call);
    ag__scratch_put(m, pos);
    if (rc < 0) {
        if (c->call) {
            const char *message = NULL;
            int st = ag_rpc_call_status(c->call, &message);
            call_failed(m, "deal", st, message);
        }
        ag__ttp_end(c, false);
    }
    return rc;
}

/* Wipes and frees the message being read (it holds rank 0's shares). */
static void drop_message(struct ag__ttp_call *c)
{
    if (c->msg) {
        Argot__Beaver__V1__DealChunk *chunk = (Argot__Beaver__V1__DealChunk *)c->msg;
        ag_wipe(chunk->data.data, chunk->data.len);
    }
    ag_rpc_msg_free(c->msg);
    c->msg = NULL;
    c->left = 0;
}

/* Takes the next message of the stream; AG_E_MPC_DEALER (with ttp_err)
 * when the stream ends or fails. */
static int next_message(struct ag__ttp_call *c)
{
    drop_message(c);
    Argot__Beaver__V1__DealChunk *chunk = NULL;
    int rc = argot__beaver__v1__dealer__deal__recv_response(c->call, &chunk);
    if (rc == 1) {
        c->msg = &chunk->base;
        c->p = chunk->data.data;
        c->left = chunk->data.len;
        return 0;
    }
    const char *message = NULL;
    int st = ag_rpc_call_status(c->call, &message);
    if (st == AG_RPC_OK) {
        snprintf(c->m->ttp_err, sizeof(c->m->ttp_err),
                 "beaver server: deal: the stream ended before the dealer's shares did");
        return AG_E_MPC_DEALER;
    }
    return call_failed(c->m, "deal", st, message);
}

int ag__ttp_read(struct ag__ttp_call *c, void *dst, size_t len)
{
    uint8_t *d = dst;
    while (len > 0) {
        if (c->left == 0) {
            int rc = next_message(c);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t take = AG_MIN(len, c->left);
        memcpy(d, c->p, take);
        d += take;
        c->p += take;
        c->left -= take;
        len -= take;
    }
    return 0;
}

int ag__ttp_end(struct ag__ttp_call *c, bool ok)
{
    int rc = 0;
    if (ok) {
        if (c->left > 0) {
            rc = AG_E_MPC_DEALER;
        } else {
            drop_message(c);
            Argot__Beaver__V1__DealChunk *extra = NULL;
            int got = argot__beaver__v1__dealer__deal__recv_response(c->call, &extra);
            if (got == 1) {
                ag_wipe(extra->data.data, extra->data.len);
                ag_rpc_msg_free(&extra->base);
                rc = AG_E_MPC_DEALER;
            } else {
                const char *message = NULL;
                int st = ag_rpc_call_status(c->call, &message);
                if (st != AG_RPC_OK)
                    rc = call_failed(c->m, "deal", st, message);
            }
        }
        if (rc == AG_E_MPC_DEALER && !c->m->ttp_err[0])
            snprintf(c->m->ttp_err, sizeof(c->m->ttp_err),
                     "beaver server: deal: the dealer sent more than was asked for");
    } else if (c->call) {
        ag_rpc_call_cancel(c->call);
    }
    drop_message(c);
    ag_rpc_call_free(c->call);
    memset(c, 0, sizeof(*c));
    return rc;
}

void ag__ttp_close(ag_mpc *m)
{
    Argot__Beaver__V1__CloseRequest req = ARGOT__BEAVER__V1__CLOSE_REQUEST__INIT;
    req.session.data = m->ttp_session;
    req.session.len = sizeof(m->ttp_session);
    req.rank = m->rank;
    Argot__Beaver__V1__CloseResponse *resp = NULL;
    char *message = NULL;
    (void)argot__beaver__v1__dealer__close_session__invoke(m->ttp, &req, ag_deadline_in_ms(2000),
                                                           &resp, &message);
    ag_rpc_msg_free(resp ? &resp->base : NULL);
    ag_free(message);
    m->ttp_registered = false;
}
