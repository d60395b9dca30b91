/*
 * Fuzz target: the decoders of what a PSI peer sends (src/apps/psi_wire.c)
 * and the curve decoding of its points (src/apps/psi_curve.c).
 *
 * The first byte picks the message: bit 0 clear, a hello; set, a points
 * message, bit 1 saying whether row counts follow the points and bits 2-7
 * the bucket's row bound; 0x02 (bit 0 clear, bit 1 set) a coordinator's
 * workers message for the count in the next byte: every address that
 * decodes is printable, NUL-terminated and has a colon. Checks: a hello that decodes encodes back to the
 * same bytes and agrees with itself; a points message that decodes has
 * exactly the size its count announces, at most the bound of points and
 * no zero count; its first points, raised by a fixed scalar, are either
 * all valid or the first invalid one is named, and the result of a valid
 * point is again a valid point. The key formatter runs on the rest as if
 * it were a key tuple and must stay inside its buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/internal.h"

#define ASSERT(cond)                                                            \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "psi_wire: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                            \
        }                                                                       \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void hello(const uint8_t *p, size_t n)
{
    struct psi_hello h;
    char why[256];
    int rc = ag__psi_hello_decode(p, n, &h, why, sizeof(why));
    if (rc < 0) {
        ASSERT(rc == AG_E_PSI_PROTOCOL && why[0] != '\0');
        return;
    }
    uint8_t again[PSI_HELLO_SIZE];
    ag__psi_hello_encode(&h, again);
    ASSERT(n == PSI_HELLO_SIZE && memcmp(again, p, n) == 0);
    ASSERT(ag__psi_hello_compare(&h, &h, "a", "b", true, why, sizeof(why)) == 0);
}

static void points(const uint8_t *p, size_t n, bool with_counts, uint64_t max_m)
{
    uint64_t m;
    const uint8_t *pts, *cnt;
    char why[256];
    int rc = ag__psi_points_decode(p, n, with_counts, max_m, &m, &pts, &cnt, why, sizeof(why));
    if (rc < 0) {
        ASSERT(rc == AG_E_PSI_PROTOCOL && why[0] != '\0');
        return;
    }
    ASSERT(m <= max_m && ag__psi_points_size(m, with_counts) == n);
    ASSERT(pts == p + 8 && (with_counts ? cnt == pts + m * PSI_POINT_SIZE : cnt == NULL));
    for (uint64_t i = 0; with_counts && i < m; i++)
        ASSERT(psi_get_u32(cnt + 4 * i) != 0);
    static const uint8_t s[PSI_SCALAR_SIZE] = {7, 1, 2, 3};
    uint8_t out[4 * PSI_POINT_SIZE], twice[PSI_POINT_SIZE];
    size_t k = m < 4 ? (size_t)m : 4;
    ssize_t bad = ag__psi_mul(pts, k, s, out);
    ASSERT(bad >= -1 && bad < (ssize_t)k);
    size_t good = bad < 0 ? k : (size_t)bad;
    for (size_t i = 0; i < good; i++)
        ASSERT(ag__psi_mul(out + i * PSI_POINT_SIZE, 1, s, twice) == -1);
}

static void addrs(const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    unsigned count = p[0];
    static char out[PSI_MAX_WORKERS][PSI_ADDR_SIZE];
    char why[256];
    int rc = ag__psi_addrs_decode(p + 1, n - 1, count, out, why, sizeof(why));
    if (rc < 0) {
        ASSERT(rc == AG_E_PSI_PROTOCOL && why[0] != '\0');
        return;
    }
    for (unsigned i = 0; i < count; i++) {
        size_t len = strnlen(out[i], PSI_ADDR_SIZE);
        ASSERT(len > 0 && len < PSI_ADDR_SIZE && strchr(out[i], ':') != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (ag__psi_curve_init() < 0)
        abort();
    uint8_t sel = data[0];
    data++;
    size--;
    if (sel & 1)
        points(data, size, (sel & 2) != 0, sel >> 2);
    else if (sel == 2)
        addrs(data, size);
    else
        hello(data, size);
    char buf[300];
    ag__psi_key_format(ag_slice_make(data, size), buf, sizeof(buf));
    ASSERT(strlen(buf) < sizeof(buf));
    return 0;
}
