/*
 * Protobuf messages on calls: protobuf-c's packing and unpacking around the
 * byte-string call API, for the code protoc-gen-argot generates (and for
 * anyone holding a ProtobufCMessage). The server's typed dispatch is in
 * server.c (ag_rpc_server_register_method).
 */
#include <protobuf-c/protobuf-c.h>

#include "rt.h"

int ag_rpc_call_send_msg(ag_rpc_call *c, const ProtobufCMessage *m, unsigned flags)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = ag_malloc(len ? len : 1);
    if (!buf)
        return AG_E_NOMEM;
    protobuf_c_message_pack(m, buf);
    return ag__call_send_take_flags(c, buf, len, flags);
}

/* protobuf-c's allocator, on argot's (so the tests' leak checks see it). */
static void *pb_alloc(void *ud, size_t size)
{
    (void)ud;
    return ag_malloc(size ? size : 1);
}

static void pb_free(void *ud, void *p)
{
    (void)ud;
    ag_free(p);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

int ag_rpc_call_recv_msg(ag_rpc_call *c, const ProtobufCMessageDescriptor *d, ProtobufCMessage **m)
{
    *m = NULL;
    uint8_t *buf;
    size_t len;
    int rc = ag_rpc_call_recv(c, &buf, &len);
    if (rc != 1)
        return rc;
    *m = protobuf_c_message_unpack(d, &pb_allocator, len, buf);
    ag_free(buf);
    if (!*m) {
        if (!c->server)
            ag__call_cancel_status(c, AG_RPC_INTERNAL, "cannot parse the response as %s", d->name);
        return AG_E_RPC_PARSE;
    }
    return 1;
}

int ag_rpc_msg_unpack(const ProtobufCMessageDescriptor *d, const void *buf, size_t len,
                      ProtobufCMessage **m)
{
    *m = protobuf_c_message_unpack(d, &pb_allocator, len, buf);
    return *m ? 0 : AG_E_RPC_PARSE;
}

void ag_rpc_msg_free(ProtobufCMessage *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, &pb_allocator);
}

ag_rpc_call *ag_rpc_call_start(ag_rpc_channel *ch, const ag_rpc_method *m, ag_deadline deadline)
{
    return ag_rpc_call_new(ch, m->path, deadline);
}

int ag_rpc_unary_msg(ag_rpc_channel *ch, const ag_rpc_method *m, const ProtobufCMessage *req,
                     ag_deadline deadline, ProtobufCMessage **resp, char **message)
{
    *resp = NULL;
    if (message)
        *message = NULL;
    ag_rpc_call *c = ag_rpc_call_start(ch, m, deadline);
    if (!c)
        return AG_RPC_RESOURCE_EXHAUSTED;
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = ag_malloc(len ? len : 1);
    int rc = buf ? 0 : AG_E_NOMEM;
    if (buf) {
        protobuf_c_message_pack(req, buf);
        ag__channel_unary(c, buf, len); /* a failure shows in the status */
    } else {
        ag_rpc_call_cancel(c);
    }
    ProtobufCMessage *got = NULL;
    if (rc == 0)
        ag_rpc_call_recv_msg(c, m->output, &got);
    const char *msg;
    int st = ag_rpc_call_status(c, &msg);
    if (st == AG_RPC_OK && !got) {
        st = AG_RPC_INTERNAL;
        msg = "the server sent no response";
    }
    if (message)
        *message = ag_strdup(msg ? msg : "");
    if (st == AG_RPC_OK)
        *resp = got;
    else
        ag_rpc_msg_free(got);
    ag_rpc_call_free(c);
    return st;
}
