/* timing.h - the clock and the median of the benchmark drivers. */
#ifndef CNNGEN_BENCH_TIMING_H
#define CNNGEN_BENCH_TIMING_H

#include <stdlib.h>
#include <time.h>

static double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int bench_compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sort the n call times; the median is times[n / 2], the minimum times[0]. */
static void bench_sort(double *times, size_t n)
{
    qsort(times, n, sizeof *times, bench_compare);
}

#endif
