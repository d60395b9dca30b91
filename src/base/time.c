/*
 * Monotonic time and deadlines. A deadline is an absolute point on
 * CLOCK_MONOTONIC, so it survives wall-clock changes and can be passed down
 * a call chain unchanged (gRPC's model); UINT64_MAX means never.
 */
#include <errno.h>
#include <time.h>

#include "argot/base.h"

uint64_t ag_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ag_now_ms(void)
{
    return ag_now_ns() / 1000000u;
}

int64_t ag_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ag_sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

ag_deadline ag_deadline_never(void)
{
    ag_deadline d = {UINT64_MAX};
    return d;
}

ag_deadline ag_deadline_in_ns(uint64_t ns)
{
    uint64_t now = ag_now_ns();
    ag_deadline d = {ns >= UINT64_MAX - now ? UINT64_MAX : now + ns};
    return d;
}

ag_deadline ag_deadline_in_ms(uint64_t ms)
{
    return ag_deadline_in_ns(ms >= UINT64_MAX / 1000000u ? UINT64_MAX : ms * 1000000u);
}

bool ag_deadline_is_never(ag_deadline d)
{
    return d.at_ns == UINT64_MAX;
}

bool ag_deadline_expired(ag_deadline d)
{
    return d.at_ns != UINT64_MAX && ag_now_ns() >= d.at_ns;
}

uint64_t ag_deadline_remaining_ms(ag_deadline d)
{
    if (d.at_ns == UINT64_MAX)
        return UINT64_MAX;
    uint64_t now = ag_now_ns();
    if (now >= d.at_ns)
        return 0;
    return (d.at_ns - now + 999999u) / 1000000u;
}

ag_deadline ag_deadline_min(ag_deadline a, ag_deadline b)
{
    return a.at_ns <= b.at_ns ? a : b;
}
