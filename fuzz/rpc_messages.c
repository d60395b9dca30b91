/*
 * Fuzz target: the protobuf decode of every message argot's services take
 * from the network (what ag_rpc_call_recv_msg does with a peer's bytes):
 * unpacked as each type with protobuf-c; whatever parses must pack again,
 * and a packed form that reads back must pack to the same bytes. No crash,
 * leak or undefined behaviour.
 */
#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>

#include "argot/link/v1/link.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

static const ProtobufCMessageDescriptor *const types[] = {
    &argot__link__v1__frame__descriptor,        /* the fed link: from peers */
    &argot__link__v1__ack__descriptor,
    &grpc__health__v1__health_check_request__descriptor, /* from any client */
    &grpc__health__v1__health_check_response__descriptor, /* to argot's clients */
    &grpc__reflection__v1alpha__server_reflection_request__descriptor,
    &grpc__reflection__v1alpha__server_reflection_response__descriptor,
    &grpc__reflection__v1__server_reflection_request__descriptor,
    &grpc__reflection__v1__server_reflection_response__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        ProtobufCMessage *m = protobuf_c_message_unpack(types[t], NULL, size, data);
        if (!m)
            continue;
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *a = malloc(n ? n : 1);
        if (!a)
            abort();
        if (protobuf_c_message_pack(m, a) != n)
            abort();
        /* what it packs it should read back; protobuf-c keeps an unknown
         * field whose tag is an overlong varint of field 0 (80 00) and packs
         * it back as 00, which it then refuses: its quirk, not a message
         * argot makes, so a failed re-read is allowed; a re-read that works
         * must give the same bytes again */
        ProtobufCMessage *m2 = protobuf_c_message_unpack(types[t], NULL, n, a);
        if (!m2) {
            free(a);
            protobuf_c_message_free_unpacked(m, NULL);
            continue;
        }
        size_t n2 = protobuf_c_message_get_packed_size(m2);
        uint8_t *b = malloc(n2 ? n2 : 1);
        if (!b || n2 != n || protobuf_c_message_pack(m2, b) != n2 || memcmp(a, b, n) != 0)
            abort();
        free(a);
        free(b);
        protobuf_c_message_free_unpacked(m2, NULL);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    return 0;
}
