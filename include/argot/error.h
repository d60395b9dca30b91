/*
 * argot error codes.
 *
 * Every fallible argot function returns 0 (or a length) on success and a
 * negative AG_E_* code on failure. The codes are generated from the one
 * X-macro list below, which also generates ag_strerror() and ag_err_name(),
 * so a code, its name and its text can never drift apart.
 *
 * Each module owns a range, so a code alone says where it came from:
 *
 *     -1 ..  -99   base (system, memory, encoding, threads)
 *   -100 .. -119   config (YAML)
 *   -120 .. -139   csv
 *   -200 .. -299   rpc
 *   -300 .. -399   mpc
 *   -400 .. -499   fed / link
 *   -500 .. -599   apps
 *   -600 .. -699   mesh
 *   -700 .. -799   sched
 *
 * A code says what kind of failure happened; the sentence that names the
 * thing and the place ("cluster.yaml:7:12: unknown key 'adress' (did you mean
 * 'address'?)") lives in the object that failed: see ag_config_errmsg(),
 * ag_csv_reader_errmsg() and the other *_errmsg() accessors.
 */
#ifndef ARGOT_ERROR_H
#define ARGOT_ERROR_H

#define AG_ERRNO_MAP(X)                                                      \
    /* base */                                                               \
    X(NOMEM, -1, "out of memory")                                            \
    X(INVAL, -2, "invalid argument")                                         \
    X(TOO_LARGE, -3, "too large")                                            \
    X(IO, -4, "input/output error")                                          \
    X(NOENT, -5, "no such file or entry")                                    \
    X(EXISTS, -6, "already exists")                                          \
    X(PERM, -7, "permission denied")                                         \
    X(RANGE, -8, "value out of range")                                       \
    X(ENCODING, -9, "invalid encoding")                                      \
    X(TIMEDOUT, -10, "timed out")                                            \
    X(AGAIN, -11, "resource temporarily unavailable")                        \
    X(CLOSED, -12, "closed")                                                 \
    X(CANCELED, -13, "canceled")                                             \
    X(UNSUPPORTED, -14, "not supported")                                     \
    X(SYS, -15, "system call failed")                                        \
    X(USAGE, -16, "usage error")                                             \
    X(STATE, -17, "invalid state for this operation")                        \
    /* config */                                                             \
    X(CONFIG_SYNTAX, -100, "config syntax error")                            \
    X(CONFIG_UNKNOWN_KEY, -101, "unknown config key")                        \
    X(CONFIG_TYPE, -102, "config value has the wrong type")                  \
    X(CONFIG_MISSING, -103, "required config key missing")                   \
    X(CONFIG_VALUE, -104, "invalid config value")                            \
    /* csv */                                                                \
    X(CSV_SYNTAX, -120, "malformed CSV")                                     \
    X(CSV_FIELDS, -121, "CSV row has the wrong number of fields")            \
    X(CSV_UTF8, -122, "invalid UTF-8 in CSV field")                          \
    X(CSV_COLUMN, -123, "no such CSV column")                                \
    X(CSV_VALUE, -124, "CSV field has the wrong type")                       \
    /* rpc */                                                                \
    X(RPC_PROTOCOL, -200, "gRPC protocol violation")                         \
    X(RPC_COMPRESSION, -201, "gRPC message compression failed")              \
    X(RPC_TLS, -202, "TLS failure")                                          \
    X(RPC_PARSE, -203, "gRPC message is not the expected protobuf")          \
    /* mpc */                                                                \
    X(MPC_SHAPE, -300, "tensor shapes do not match")                         \
    X(MPC_FIELD, -301, "ring fields do not match")                           \
    X(MPC_VIS, -302, "operation not defined for this visibility")            \
    X(MPC_CONFIG, -303, "parties disagree on the SPU configuration")         \
    X(MPC_RANGE, -304, "value outside the fixed-point range")                \
    X(MPC_PROTOCOL, -305, "peer broke the protocol")                         \
    X(MPC_DEALER, -306, "the Beaver dealer failed or refused")               \
    /* link */                                                               \
    X(LINK_TIMEOUT, -400, "peer did not answer in time")                     \
    X(LINK_ABORTED, -401, "a party aborted the job")                         \
    X(LINK_SIZE, -402, "message of unexpected size")                         \
    X(LINK_PEER, -403, "no such peer")                                      \
    /* apps */                                                               \
    X(PSI_DUPLICATE, -500, "duplicate key in a PSI input")                   \
    X(PSI_MISMATCH, -501, "the parties disagree on the PSI parameters")      \
    X(PSI_PROTOCOL, -502, "peer broke the PSI protocol")                     \
    X(LR_DATA, -510, "unusable data for logistic regression")                \
    X(LR_MODEL, -511, "bad or mismatched logistic regression model")         \
    /* mesh */                                                               \
    X(MESH_DTAB, -600, "malformed dtab or path")                             \
    X(MESH_ROUTE, -601, "no route for the request")                          \
    X(MESH_UNAVAILABLE, -602, "no endpoint available")

enum ag_err {
    AG_OK = 0,
#define AG__ERR_ENUM(name, code, text) AG_E_##name = (code),
    AG_ERRNO_MAP(AG__ERR_ENUM)
#undef AG__ERR_ENUM
};

/* The text of an error code ("out of memory"); "unknown error" for a code
 * not in the list. Never NULL; static storage. */
const char *ag_strerror(int err);

/* The name of an error code ("AG_E_NOMEM"); "AG_E_UNKNOWN" if not in the
 * list, "AG_OK" for 0. Never NULL; static storage. */
const char *ag_err_name(int err);

/* Maps an errno value to the closest AG_E_* code (ENOENT -> AG_E_NOENT,
 * ENOMEM -> AG_E_NOMEM, ...; anything unlisted -> AG_E_SYS). */
int ag_err_from_errno(int errnum);

#endif /* ARGOT_ERROR_H */
