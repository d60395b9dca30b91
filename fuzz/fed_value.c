/*
 * Fuzz target: the decoder of a federated object as a peer sends it
 * (src/fed/value.c, ag__fed_decode): any bytes must decode to a value, a
 * peer's error, or AG_E_MPC_PROTOCOL, and never read out of bounds or leak.
 * A decoded value is encoded again and must decode to the same thing.
 */
#include <string.h>

#include "fed/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int with_data = 0; with_data < 2; with_data++) {
        ag_value v;
        int status;
        char err[AG_ERRMSG_MAX];
        int rc = ag__fed_decode(data, size, with_data, &v, &status, err, sizeof(err));
        if (rc < 0 || status || !with_data) {
            ag_value_cleanup(&v);
            continue;
        }
        ag_buf b;
        ag_buf_init(&b, SIZE_MAX);
        if (ag__fed_encode_value(&b, &v, true) == 0) {
            ag_value w;
            if (ag__fed_decode(b.data, b.len, true, &w, &status, err, sizeof(err)) != 0 ||
                w.type != v.type || w.numel != v.numel)
                __builtin_trap();
            ag_value_cleanup(&w);
        }
        ag_buf_cleanup(&b);
        ag_value_cleanup(&v);
    }
    return 0;
}
