/*
 * One HTTP/1.1 server connection, as a core that does no I/O: bytes in
 * (ag__http_feed), responses out (ag__http_out), over http-parser. Each
 * complete request is handed to a serve function, which fills a response
 * at once; responses therefore leave in the order the requests came, and
 * pipelining needs nothing more. The admin endpoint (admin.c) runs it over
 * libuv streams; tests and the fuzzer drive it directly.
 *
 * The owner's loop, per connection:
 *   - feed what was read; the core consumes all of it unless it is closing
 *     (the rest is of no use) or its output passed AG__HTTP_OUT_HIGH (then
 *     stop reading, write, and feed the rest once the output is written);
 *   - write what ag__http_out holds (take it with ag__http_take_out);
 *   - once ag__http_closing and everything is written, close;
 *   - ag__http_busy says whether a request has begun (request timer) or the
 *     connection is idle between requests (idle timer); on the request
 *     timer, ag__http_timeout queues a 408.
 * Not thread-safe: one thread at a time (the admin loop's).
 */
#ifndef ARGOT_RPC_HTTP1_H
#define ARGOT_RPC_HTTP1_H

#include "argot/rpc.h"

/* Past this many bytes of output not yet taken, the core stops taking
 * pipelined requests until they are written. */
#define AG__HTTP_OUT_HIGH (1u << 20)
/* The largest response body a handler may produce. */
#define AG__HTTP_MAX_RESPONSE (64u << 20)
/* Headers in one request (more: 431). */
#define AG__HTTP_MAX_HEADERS 100

typedef struct ag__http ag__http;

/* Fills resp for req (resp is preset as rpc.h says). The core adds the
 * status line, Content-Type, Content-Length and Connection, and drops the
 * body for HEAD. */
typedef void (*ag__http_serve_fn)(void *ud, const ag_admin_request *req, ag_admin_response *resp);

/* max_header, max_body: as ag_admin_opts (0: the defaults). NULL on
 * allocation failure. */
ag__http *ag__http_new(size_t max_header, size_t max_body, ag__http_serve_fn serve, void *ud);
void ag__http_free(ag__http *h);
/* Consumes bytes of the request stream; returns how many it took (fewer
 * than len only when closing or past AG__HTTP_OUT_HIGH, see the top). */
size_t ag__http_feed(ag__http *h, const uint8_t *data, size_t len);
/* The peer closed its side: nothing more to read; a request half received
 * is dropped (nobody is left to answer). */
void ag__http_eof(ag__http *h);
/* The request timer fired: a begun request gets 408; closing either way. */
void ag__http_timeout(ag__http *h);
/* Output waiting to be written. */
const ag_buf *ag__http_out(const ag__http *h);
/* Moves the waiting output into *dst (which must be empty, of the same
 * maximum: its memory is swapped, not copied) for the caller to write. */
void ag__http_take_out(ag__http *h, ag_buf *dst);
/* No request will be read any more: close once the output is written. */
bool ag__http_closing(const ag__http *h);
/* Some bytes of a request (not yet answered) have arrived. */
bool ag__http_busy(const ag__http *h);
/* Requests answered so far (for tests). */
uint64_t ag__http_served(const ag__http *h);

#endif /* ARGOT_RPC_HTTP1_H */
