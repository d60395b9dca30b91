/*
 * argot rpc: gRPC in C, protobuf (protobuf-c) over HTTP/2 (nghttp2),
 * interoperable with every other gRPC.
 *
 * This header grows with the module (issue 4). Today it holds what every
 * layer above needs to speak about calls: gRPC's status codes. The wire
 * protocol's cores (message framing, grpc-timeout, grpc-message, metadata
 * rules, compression) are built and tested beneath it in src/rpc/ and do
 * no I/O, so tests and fuzzers drive them directly.
 */
#ifndef ARGOT_RPC_H
#define ARGOT_RPC_H

#include "argot/base.h"

/* gRPC status codes (grpc/grpc doc/statuscodes.md), by their numbers. */
typedef enum ag_rpc_status {
    AG_RPC_OK = 0,
    AG_RPC_CANCELLED = 1,
    AG_RPC_UNKNOWN = 2,
    AG_RPC_INVALID_ARGUMENT = 3,
    AG_RPC_DEADLINE_EXCEEDED = 4,
    AG_RPC_NOT_FOUND = 5,
    AG_RPC_ALREADY_EXISTS = 6,
    AG_RPC_PERMISSION_DENIED = 7,
    AG_RPC_RESOURCE_EXHAUSTED = 8,
    AG_RPC_FAILED_PRECONDITION = 9,
    AG_RPC_ABORTED = 10,
    AG_RPC_OUT_OF_RANGE = 11,
    AG_RPC_UNIMPLEMENTED = 12,
    AG_RPC_INTERNAL = 13,
    AG_RPC_UNAVAILABLE = 14,
    AG_RPC_DATA_LOSS = 15,
    AG_RPC_UNAUTHENTICATED = 16,
} ag_rpc_status;

/* "OK", "CANCELLED", ... "UNAUTHENTICATED"; "UNKNOWN" for other values. */
const char *ag_rpc_status_name(int status);

#endif /* ARGOT_RPC_H */
