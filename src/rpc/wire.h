/*
 * gRPC's wire protocol over HTTP/2, the parts that are pure functions of
 * bytes (grpc/grpc doc/PROTOCOL-HTTP2.md, doc/compression.md,
 * doc/http-grpc-status-mapping.md): no sockets, no nghttp2, no clocks.
 * The transport feeds them what arrives and sends what they produce; unit
 * tests and fuzz targets drive them directly.
 *
 *   deframer   DATA payloads (any boundaries) -> length-prefixed messages
 *   framer     the 5-byte prefix of an outgoing message
 *   timeout    grpc-timeout <-> nanoseconds
 *   status     grpc-status parsing, grpc-message percent-encoding
 *   mappings   HTTP status and RST_STREAM codes -> gRPC status
 *   metadata   key and value rules, -bin values
 *   headers    content-type, grpc-encoding / grpc-accept-encoding
 *   compress   gzip and deflate per message, bounded (compress.c)
 */
#ifndef ARGOT_RPC_WIRE_H
#define ARGOT_RPC_WIRE_H

#include "argot/rpc.h"

/* ---- message framing ---------------------------------------------------- */

#define AG__GRPC_PREFIX 5                      /* compressed flag + length */
#define AG__GRPC_DEFAULT_MAX_RECV (4u << 20)   /* gRPC's default: 4 MiB */

/* Writes the prefix of a message of len bytes. */
void ag__grpc_prefix(uint8_t out[AG__GRPC_PREFIX], bool compressed, uint32_t len);

/* Reassembles length-prefixed messages from a stream's DATA payloads.
 *
 * States: reading the 5-byte prefix (hdr_len < 5), then the body (body.len
 * < msg_len), then a complete message waiting to be taken. A message larger
 * than max is refused as soon as its prefix is read, before any of it is
 * buffered, so a 4 GB length costs nothing. */
typedef struct ag__deframer {
    uint8_t hdr[AG__GRPC_PREFIX];
    size_t hdr_len;
    bool compressed;     /* of the message being read */
    uint32_t msg_len;    /* of the message being read */
    bool complete;       /* a message is waiting in body */
    bool may_compress;   /* the stream declared a grpc-encoding other than identity */
    uint32_t max;        /* largest message accepted, bytes */
    ag_buf body;
    int status;          /* after an error: the gRPC status to end the call with */
    ag_errbuf err;
} ag__deframer;

void ag__deframer_init(ag__deframer *d, uint32_t max, bool may_compress);
void ag__deframer_cleanup(ag__deframer *d);
/* Consumes bytes of p (at most up to the end of one message) and returns how
 * many, or a negative code: AG_E_TOO_LARGE (status RESOURCE_EXHAUSTED) for a
 * message over max, AG_E_RPC_PROTOCOL (INTERNAL) for a bad compressed flag,
 * AG_E_NOMEM. When a message is complete, ag__deframer_ready() is true and
 * no more is consumed until it is taken. */
ssize_t ag__deframer_feed(ag__deframer *d, const uint8_t *p, size_t n);
bool ag__deframer_ready(const ag__deframer *d);
/* Hands the complete message to the caller (free with ag_free; NULL with
 * *len 0 for an empty message) and resets for the next. */
uint8_t *ag__deframer_take(ag__deframer *d, size_t *len, bool *compressed);
/* At the end of the stream: 0 if no message was cut off, else
 * AG_E_RPC_PROTOCOL (status INTERNAL). */
int ag__deframer_finish(ag__deframer *d);

/* ---- grpc-timeout --------------------------------------------------------- */

/* Parses TimeoutValue TimeoutUnit (1 to 8 digits, then H M S m u n) into
 * nanoseconds, saturating at UINT64_MAX. AG_E_INVAL if malformed. */
int ag__grpc_timeout_parse(const char *s, size_t len, uint64_t *ns);
/* Formats a timeout of ns nanoseconds (rounded up, never shortened) in the
 * finest unit whose value fits 8 digits. out has room for 10 bytes. */
void ag__grpc_timeout_format(uint64_t ns, char out[10]);

/* ---- status ----------------------------------------------------------------- */

/* Parses grpc-status (decimal, no sign, no leading zeros). A value that is
 * not a valid code gives AG_RPC_UNKNOWN, as the spec asks. */
int ag__grpc_status_parse(const char *s, size_t len);
/* Percent-encodes a UTF-8 message for grpc-message: bytes outside
 * %x20-%x7E, and '%', become %XX (uppercase). Returns 0 or AG_E_TOO_LARGE /
 * AG_E_NOMEM from out. */
int ag__grpc_message_encode(ag_buf *out, const char *msg, size_t len);
/* Decodes grpc-message leniently: valid %XX sequences are decoded, broken
 * ones are kept as they are (the spec forbids failing). */
int ag__grpc_message_decode(ag_buf *out, const char *s, size_t len);

/* gRPC status for an HTTP :status that is not 200 (http-grpc-status-mapping). */
int ag__grpc_status_from_http(int http_status);
/* gRPC status for an RST_STREAM error code received on a call. */
int ag__grpc_status_from_rst(uint32_t h2_error);

/* ---- metadata ----------------------------------------------------------------- */

/* A valid custom metadata key: 1+ of [0-9a-z_.-], not a pseudo-header. */
bool ag__grpc_key_valid(const char *key, size_t len);
bool ag__grpc_key_is_bin(const char *key, size_t len);
/* Keys the runtime owns (grpc-*, content-type, te, :pseudo, ...), which an
 * application may neither send nor be shown as custom metadata. */
bool ag__grpc_key_reserved(const char *key, size_t len);
/* A valid ASCII value: printable %x20-%x7E. */
bool ag__grpc_value_valid(const char *v, size_t len);
/* Decodes a -bin value: comma-separated base64 parts (padded or not), each
 * decoded and concatenated, as the spec requires. */
int ag__grpc_bin_decode(ag_buf *out, const char *v, size_t len);

/* ---- headers ------------------------------------------------------------------- */

/* content-type is application/grpc, optionally followed by '+' or ';'. */
bool ag__grpc_content_type_ok(const char *v, size_t len);

typedef enum ag__grpc_encoding {
    AG__ENC_IDENTITY = 0,
    AG__ENC_GZIP = 1,
    AG__ENC_DEFLATE = 2,
    AG__ENC_UNKNOWN = -1,
} ag__grpc_encoding;

/* The encoding named by a grpc-encoding value (case-sensitive, as tokens). */
ag__grpc_encoding ag__grpc_encoding_parse(const char *v, size_t len);
const char *ag__grpc_encoding_name(ag__grpc_encoding e);
/* The set of encodings in a grpc-accept-encoding list, as a bit mask of
 * 1 << encoding (identity is always accepted). */
unsigned ag__grpc_accept_encoding_parse(const char *v, size_t len);

/* ---- compression (compress.c) ----------------------------------------------- */

/* Compresses in into out (appended) with gzip or deflate (zlib format, as
 * HTTP's "deflate"). */
int ag__grpc_compress(ag__grpc_encoding e, const uint8_t *in, size_t len, ag_buf *out);
/* Decompresses into out (appended), never producing more than max bytes:
 * beyond it, AG_E_TOO_LARGE (a small bomb cannot exhaust memory). A corrupt
 * body is AG_E_RPC_COMPRESSION. */
int ag__grpc_decompress(ag__grpc_encoding e, const uint8_t *in, size_t len, size_t max,
                        ag_buf *out);

#endif /* ARGOT_RPC_WIRE_H */
