/* threads_predict.c - reentrant inference: THREADS threads predict at once,
 * each through its own workspace (m_predict_ws), ROUNDS passes over the
 * same samples each; every output must equal, bit for bit, what m_predict
 * gives for that sample alone.  Then m_predict_batch (on OpenMP's threads
 * when built with -fopenmp) must give the same bits again, over all the
 * samples (two blocks) and over a few runs of them.  Built by
 * tests/e2e/test_predict_threads.sh, under ThreadSanitizer among others.
 *   threads_predict [THREADS] */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m.h"

/* more samples than a block of predict_batch holds (64): blocks, their
 * groups of 4 and the samples left over all run; -DSAMPLES=N for more
 * (a small model's batch goes to OpenMP's threads from 34189 samples) */
#ifndef SAMPLES
#define SAMPLES 70
#endif
enum { ROUNDS = 4, MAX_THREADS = 64 };

static float inputs[SAMPLES][M_INPUT_SIZE];
static float expected[SAMPLES][M_OUTPUT_SIZE];

typedef struct {
    int id, failures;
    void *workspace;
} Worker;

static void *predict_all(void *arg)
{
    Worker *w = arg;
    float out[M_OUTPUT_SIZE];
    for (int r = 0; r < ROUNDS; r++)
        for (int k = 0; k < SAMPLES; k++) {
            int s = (k + w->id * 7) % SAMPLES; /* each thread in its own order */
            m_predict_ws(w->workspace, inputs[s], out);
            if (memcmp(out, expected[s], sizeof out) != 0)
                w->failures++;
        }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 8;
    if (threads < 1 || threads > MAX_THREADS)
        return 2;
    unsigned state = 2024;
    for (int s = 0; s < SAMPLES; s++)
        for (int i = 0; i < M_INPUT_SIZE; i++) {
            state = state * 1103515245u + 12345u;
            inputs[s][i] = (float)(state >> 8) / 16777216.0f - 0.5f;
        }
    m_init_params(7);
    for (int s = 0; s < SAMPLES; s++)
        m_predict(inputs[s], expected[s]);

    Worker workers[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        workers[t] = (Worker){t, 0, malloc(M_WORKSPACE_BYTES)};
        if (!workers[t].workspace || pthread_create(&ids[t], NULL, predict_all, &workers[t]))
            return 2;
    }
    int failures = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        failures += workers[t].failures;
        free(workers[t].workspace);
    }

    static float batch[SAMPLES][M_OUTPUT_SIZE];
    int batch_failures = 0;
    static const int runs[][2] = {{0, SAMPLES}, {3, 5}, {11, 1}, {20, 9}}; /* first, count */
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        memset(batch, 0, sizeof batch);
        int first = runs[r][0], count = runs[r][1];
        m_predict_batch(inputs[first], batch[first], count);
        batch_failures += memcmp(batch[first], expected[first], sizeof batch[0] * count) != 0;
    }
    printf("%s: %d threads x %d predictions through their own workspaces: %d differ; "
           "predict_batch: %s\n",
           m_isa(), threads, ROUNDS * SAMPLES, failures, batch_failures ? "differs" : "the same");
    return failures || batch_failures;
}
