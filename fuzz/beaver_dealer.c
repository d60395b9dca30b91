/*
 * Fuzz target: the trusted-third-party dealer's handling of what clients
 * send it (src/mpc/dealer.c without rpc): a sequence of calls, each one
 * byte for the method (0 RegisterSeed, 1 Deal, 2 CloseSession, 3 the same
 * Deal as rank 0 of a mutual-TLS session would, from another identity), two
 * bytes of length and that many bytes of the protobuf request, decoded as
 * the server does and handed to the dealer. Every run starts with a fresh
 * dealer (at most 4096 elements per request, 4 sessions) that already
 * holds a complete two-party FM64 session whose id is 16 bytes of 0x01,
 * so that inputs reach the dealing itself. Whatever is refused must be
 * refused with a message; whatever is dealt must be exactly the bytes the
 * request asks for; no crash, leak or undefined behaviour.
 */
#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>

#include "argot/beaver/v1/beaver.pb-c.h"
#include "argot/rpc.h"
#include "mpc/internal.h"

static int count_send(void *ctx, uint8_t *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return 0;
}

static void reply_init(struct ag__dealer_reply *r, const char *identity)
{
    memset(r, 0, sizeof(*r));
    r->method = "fuzz";
    r->identity = identity;
    r->send = count_send;
}

static void must(bool ok)
{
    if (!ok)
        abort();
}

static void register_fixed(ag_beaver_server *b, unsigned rank)
{
    uint8_t sid[16], seed[16];
    memset(sid, 1, sizeof(sid));
    memset(seed, (int)(0x40 + rank), sizeof(seed));
    Argot__Beaver__V1__RegisterRequest req = ARGOT__BEAVER__V1__REGISTER_REQUEST__INIT;
    req.session.data = sid;
    req.session.len = 16;
    req.rank = rank;
    req.parties = 2;
    req.field = ARGOT__BEAVER__V1__FIELD__FM64;
    req.seed.data = seed;
    req.seed.len = 16;
    struct ag__dealer_reply r;
    reply_init(&r, NULL);
    must(ag__dealer_register(b, &req, &r) == AG_RPC_OK);
}

/* The bytes a Deal that succeeded must have sent, or UINT64_MAX when the
 * request does not say (a kind the dealer would refuse). */
static uint64_t expected_bytes(const Argot__Beaver__V1__DealRequest *q, size_t eb)
{
    switch (q->kind) {
    case ARGOT__BEAVER__V1__KIND__MUL:
    case ARGOT__BEAVER__V1__KIND__SQUARE:
    case ARGOT__BEAVER__V1__KIND__TRUNC:
    case ARGOT__BEAVER__V1__KIND__AND:
    case ARGOT__BEAVER__V1__KIND__RANDBIT:
    case ARGOT__BEAVER__V1__KIND__RAND_AB:
        return q->elements * eb;
    case ARGOT__BEAVER__V1__KIND__MASK:
        return 0;
    case ARGOT__BEAVER__V1__KIND__MATMUL:
    case ARGOT__BEAVER__V1__KIND__MATMUL_FIXED:
        return q->m * q->n * eb;
    default:
        return UINT64_MAX;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_log_set_level(AG_LOG_OFF);
    ag_beaver_server_opts o = {.max_sessions = 4, .max_elements = 4096};
    ag_beaver_server *b = ag_beaver_server_new(&o);
    must(b != NULL);
    register_fixed(b, 0);
    register_fixed(b, 1);
    size_t at = 0;
    while (at + 3 <= size) {
        unsigned op = data[at] % 4;
        size_t len = (size_t)data[at + 1] << 8 | data[at + 2];
        at += 3;
        if (len > size - at)
            len = size - at;
        const uint8_t *msg = data + at;
        at += len;
        struct ag__dealer_reply r;
        reply_init(&r, op == 3 ? "mallory" : NULL);
        int st;
        if (op == 0) {
            Argot__Beaver__V1__RegisterRequest *q =
                argot__beaver__v1__register_request__unpack(NULL, len, msg);
            if (!q)
                continue;
            st = ag__dealer_register(b, q, &r);
            argot__beaver__v1__register_request__free_unpacked(q, NULL);
        } else if (op == 1 || op == 3) {
            Argot__Beaver__V1__DealRequest *q =
                argot__beaver__v1__deal_request__unpack(NULL, len, msg);
            if (!q)
                continue;
            st = ag__dealer_deal(b, q, &r);
            /* FM64 is the fixed session's field; others refuse or deal */
            uint64_t want = expected_bytes(q, 8);
            if (st == AG_RPC_OK && q->session.len == 16 && q->session.data[0] == 1 &&
                memcmp(q->session.data, "\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1", 16) == 0)
                must(r.sent == want);
            argot__beaver__v1__deal_request__free_unpacked(q, NULL);
        } else {
            Argot__Beaver__V1__CloseRequest *q =
                argot__beaver__v1__close_request__unpack(NULL, len, msg);
            if (!q)
                continue;
            st = ag__dealer_close(b, q, &r);
            argot__beaver__v1__close_request__free_unpacked(q, NULL);
        }
        must(st == AG_RPC_OK || r.msg[0] != '\0');
    }
    ag_beaver_server_free(b);
    return 0;
}
