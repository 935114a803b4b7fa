/* bench_train_driver.c - times training steps of a generated model
 * (prefix bench_model) the way bench/peers/torch_peers.py --mode train
 * times PyTorch's: forward, loss, backward and the optimizer step on one
 * fixed random batch, each step timed on its own after a warm-up; prints
 * the median and the minimum per step as one JSON line.  Built with
 * -DBENCH_PROFILE against code from cnngen --profile, it then prints the
 * profile of the timed steps (on stderr).
 *   bench_train_driver CLASSES [MIN_TIME] [MIN_CALLS]   (CLASSES 0: real targets) */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>

#include "bench_model.h"
#include "timing.h"

int main(int argc, char **argv)
{
    int classes = argc > 1 ? atoi(argv[1]) : 0;
    double min_time = argc > 2 ? atof(argv[2]) : 1.0;
    int min_calls = argc > 3 ? atoi(argv[3]) : 11;
    int batch = BENCH_MODEL_TRAIN_BATCH;
    bench_model_init_params(1);
    bench_model_start_training(1);
    float *x = malloc(sizeof(float) * (size_t)batch * BENCH_MODEL_INPUT_SIZE);
    float *t = malloc(sizeof(float) * (size_t)batch * BENCH_MODEL_TARGET_SIZE);
    float *y = malloc(sizeof(float) * (size_t)batch * BENCH_MODEL_OUTPUT_SIZE);
    unsigned state = 12345;
    for (long i = 0; i < (long)batch * BENCH_MODEL_INPUT_SIZE; i++) {
        state = state * 1103515245u + 12345u;
        x[i] = (float)(state >> 8) / 16777216.0f * 2 - 1;
    }
    for (long i = 0; i < (long)batch * BENCH_MODEL_TARGET_SIZE; i++)
        t[i] = classes ? (float)(i % classes) : 0.5f;
    double warm_end = bench_now() + 0.3, loss = 0;
    while (bench_now() < warm_end)
        loss = bench_model_train_batch(x, t, batch, y);
#ifdef BENCH_PROFILE
    bench_model_profile_reset();
#endif
    size_t cap = 1024, n = 0;
    double *times = malloc(cap * sizeof *times);
    double stop = bench_now() + min_time;
    while ((int)n < min_calls || bench_now() < stop) {
        double t0 = bench_now();
        loss = bench_model_train_batch(x, t, batch, y);
        double dt = bench_now() - t0;
        if (n == cap)
            times = realloc(times, (cap *= 2) * sizeof *times);
        times[n++] = dt;
    }
#ifdef BENCH_PROFILE
    bench_model_profile_report(stderr, 1);
#endif
    bench_sort(times, n);
    printf("{\"batch\": %d, \"ms_median\": %.6f, \"ms_min\": %.6f, \"calls\": %zu, "
           "\"loss\": %g, \"isa\": \"%s\"}\n",
           batch, 1e3 * times[n / 2], 1e3 * times[0], n, loss, bench_model_isa());
    free(times);
    free(x);
    free(t);
    free(y);
    return 0;
}
