/*
 * Secure randomness from the kernel (getrandom(2), blocking only until the
 * pool is initialised at boot). Callers that need bulk pseudorandomness
 * (the MPC PRG) seed an AES-CTR stream from here instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "argot/base.h"

int ag_random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return AG_E_SYS;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

uint64_t ag_random_uniform(uint64_t bound)
{
    /* rejection sampling below the largest multiple of bound */
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    for (;;) {
        uint64_t v;
        if (ag_random_bytes(&v, sizeof(v)) < 0) {
            fputs("argot: getrandom failed\n", stderr);
            abort();
        }
        if (v < limit)
            return v % bound;
    }
}
