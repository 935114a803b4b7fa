/* bench_driver.c - times a generated predictor (prefix bench_model) the
 * way bench/peers/torch_peers.py times PyTorch: each call timed on its
 * own after a warm-up, at least MIN_CALLS calls and MIN_TIME seconds;
 * prints the median and the minimum per call as one JSON line.  Built
 * with -DBENCH_PROFILE against code from cnngen --profile, it then prints
 * the profile of the timed calls (on stderr).  With -DBENCH_BAKED the
 * weights are the predictor's own (cnngen --weights, or --quantize).
 *   bench_driver BATCH [MIN_TIME] [MIN_CALLS] */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>

#include "bench_model.h"
#include "timing.h"

int main(int argc, char **argv)
{
    int batch = argc > 1 ? atoi(argv[1]) : 1;
    double min_time = argc > 2 ? atof(argv[2]) : 1.0;
    int min_calls = argc > 3 ? atoi(argv[3]) : 21;
#ifndef BENCH_BAKED /* (-DBENCH_BAKED: weights baked in, or an int8 predictor's) */
    float *params = bench_model_params_data();
    unsigned state = 12345;
    for (long i = 0; i < BENCH_MODEL_PARAM_COUNT; i++) {
        state = state * 1103515245u + 12345u;
        params[i] = ((float)(state >> 8) / 16777216.0f - 0.5f) * 0.1f;
    }
#endif
    float *x = malloc(sizeof(float) * (size_t)batch * BENCH_MODEL_INPUT_SIZE);
    float *y = malloc(sizeof(float) * (size_t)batch * BENCH_MODEL_OUTPUT_SIZE);
    for (long i = 0; i < (long)batch * BENCH_MODEL_INPUT_SIZE; i++)
        x[i] = (float)(i % 17) / 17.0f;
    double warm_end = bench_now() + 0.3;
    while (bench_now() < warm_end)
        bench_model_predict_batch(x, y, batch);
#ifdef BENCH_PROFILE
    bench_model_profile_reset();
#endif
    size_t cap = 1024, n = 0;
    double *times = malloc(cap * sizeof *times);
    double stop = bench_now() + min_time;
    while ((int)n < min_calls || bench_now() < stop) {
        double t0 = bench_now();
        bench_model_predict_batch(x, y, batch);
        double t = bench_now() - t0;
        if (n == cap)
            times = realloc(times, (cap *= 2) * sizeof *times);
        times[n++] = t;
    }
#ifdef BENCH_PROFILE
    bench_model_profile_report(stderr, 0);
#endif
    bench_sort(times, n);
    printf("{\"batch\": %d, \"ms_median\": %.6f, \"ms_min\": %.6f, \"calls\": %zu, "
           "\"check\": %g, \"isa\": \"%s\"}\n",
           batch, 1e3 * times[n / 2], 1e3 * times[0], n, (double)y[0], bench_model_isa());
    free(times);
    free(x);
    free(y);
    return 0;
}
