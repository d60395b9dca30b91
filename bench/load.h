/* The machine's load, printed by benchmarks beside their figures (a
 * timing means little without it). */
#ifndef ARGOT_BENCH_LOAD_H
#define ARGOT_BENCH_LOAD_H

#include <stdio.h>

/* The 1, 5 and 15 minute load averages as text ("?" if unreadable). */
static inline void load_avg(char *out, size_t cap)
{
    snprintf(out, cap, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    double a, b, c;
    if (f && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(out, cap, "%.2f %.2f %.2f", a, b, c);
    if (f)
        fclose(f);
}

#endif
