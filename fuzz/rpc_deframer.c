/*
 * Fuzz target: the gRPC message deframer. The first byte chooses the
 * maximum message size, whether compression is allowed and the chunk size;
 * the rest is fed in chunks as DATA payloads would arrive. Checks: every
 * message taken has the length its prefix announced and at most the
 * maximum; the deframer never consumes more than it was given; feeding the
 * same bytes in one piece yields the same messages.
 */
#include <stdlib.h>
#include <string.h>

#include "rpc/wire.h"

static uint64_t run(const uint8_t *p, size_t n, size_t step, uint32_t max, bool comp,
                    int *final_rc)
{
    ag__deframer d;
    ag__deframer_init(&d, max, comp);
    uint64_t digest = 1469598103934665603ull;
    size_t off = 0;
    int rc = 0;
    while (off < n) {
        size_t chunk = step < n - off ? step : n - off;
        ssize_t used = ag__deframer_feed(&d, p + off, chunk);
        if (used < 0) {
            rc = (int)used;
            break;
        }
        if ((size_t)used > chunk)
            abort();
        off += (size_t)used;
        if (ag__deframer_ready(&d)) {
            size_t len;
            bool c;
            uint8_t *m = ag__deframer_take(&d, &len, &c);
            if (len > max || (len && !m))
                abort();
            for (size_t i = 0; i < len; i++)
                digest = (digest ^ m[i]) * 1099511628211ull;
            digest = (digest ^ len ^ (c ? 0x100 : 0)) * 1099511628211ull;
            ag_free(m);
        } else if (used == 0) {
            abort(); /* no progress and nothing ready */
        }
    }
    if (rc == 0)
        rc = ag__deframer_finish(&d);
    *final_rc = rc;
    ag__deframer_cleanup(&d);
    return digest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t max = 1u << (data[0] & 15);
    bool comp = data[0] & 16;
    size_t step = 1 + (data[0] >> 5) * 7;
    int rc1, rc2;
    uint64_t a = run(data + 1, size - 1, step, max, comp, &rc1);
    uint64_t b = run(data + 1, size - 1, size, max, comp, &rc2);
    if (rc1 != rc2 || a != b)
        abort();
    return 0;
}
