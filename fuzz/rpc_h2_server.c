/*
 * Fuzz target: a server connection core receiving arbitrary bytes from a
 * client (split into two reads at a point the first byte chooses), with an
 * application that takes every call, echoes messages and finishes on
 * half-close. Whatever arrives, the core must not crash, leak or write out
 * of bounds, and everything it wants to send must be drainable.
 */
#include <stdlib.h>
#include <string.h>

#include "rpc/h2.h"

static int begin(void *ud, ag__h2call *c)
{
    (void)ud;
    return strcmp(ag__h2call_method(c), "/x.Y/Missing") == 0 ? AG_RPC_UNIMPLEMENTED : 0;
}

static void message(void *ud, ag__h2call *c, uint8_t *m, size_t len)
{
    (void)ud;
    (void)ag__h2call_send(c, m, len, true);
    ag_free(m);
}

static void half_close(void *ud, ag__h2call *c)
{
    (void)ud;
    (void)ag__h2call_finish(c, AG_RPC_OK, "done", NULL);
}

static void done(void *ud, ag__h2call *c, int status, const char *msg)
{
    (void)ud;
    (void)c;
    (void)status;
    if (!msg)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const ag__h2_events ev = {begin, message, half_close, NULL, done};
    ag__h2_opts o;
    ag__h2_opts_init(&o);
    o.max_recv_msg = 64 * 1024;
    o.max_header_list = 4096;
    ag__h2conn *c = ag__h2conn_new(true, &o, &ev, NULL);
    if (!c)
        return 0;
    size_t split = size > 1 ? 1 + data[0] % (size - 1) : 1;
    ag_buf out;
    ag_buf_init(&out, 8u << 20);
    if (ag__h2conn_recv(c, data + 1, split - 1) == 0) {
        (void)ag__h2conn_send(c, &out, 0);
        ag_buf_reset(&out);
        if (ag__h2conn_recv(c, data + split, size - split) == 0)
            (void)ag__h2conn_send(c, &out, 0);
    }
    ag_buf_cleanup(&out);
    ag__h2conn_free(c);
    return 0;
}
