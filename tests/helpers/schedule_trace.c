/* schedule_trace.c - the runtime's learning rate at every position of a
 * run, for test_schedules.py to hold against PyTorch's schedulers:
 *   schedule_trace KIND PER_STEP EVERY LENGTH WARMUP GAMMA MIN_LR MAX_LR
 *                  PCT_START DIV_FACTOR FINAL_DIV_FACTOR WARMUP_START BASE_LR TOTAL
 * prints TOTAL lines, each the rate as %.17g. */
#include <stdio.h>
#include <stdlib.h>

#include "cnnrt.h"

int main(int argc, char **argv)
{
    if (argc != 15) {
        fprintf(stderr, "usage: schedule_trace (14 numbers; see the source)\n");
        return 2;
    }
    cnnrt_schedule s = {.kind = atoi(argv[1]),
                        .per_step = atoi(argv[2]),
                        .every = atol(argv[3]),
                        .length = atol(argv[4]),
                        .warmup = atol(argv[5]),
                        .gamma = atof(argv[6]),
                        .min_lr = atof(argv[7]),
                        .max_lr = atof(argv[8]),
                        .pct_start = atof(argv[9]),
                        .div_factor = atof(argv[10]),
                        .final_div_factor = atof(argv[11]),
                        .warmup_start = atof(argv[12])};
    double base = atof(argv[13]);
    long total = atol(argv[14]);
    for (long t = 0; t < total; t++)
        printf("%.17g\n", cnnrt_schedule_lr(&s, base, t, total));
    return 0;
}
