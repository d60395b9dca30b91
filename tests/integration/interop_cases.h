/* gRPC's interop test cases (doc/interop-test-descriptions.md) that
 * argot-interop-client implements and the interop tests run, in the
 * order the descriptions give them. */
#ifndef ARGOT_TESTS_INTEROP_CASES_H
#define ARGOT_TESTS_INTEROP_CASES_H

static const char *const all_cases[] = {
    "empty_unary",
    "large_unary",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_streaming",
    "client_compressed_streaming",
    "server_streaming",
    "server_compressed_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
};

#endif
