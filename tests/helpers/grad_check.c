/* grad_check.c - the generated gradients against central finite
 * differences.  Linked with one model generated with --prefix m and
 * `optimizer = sgd(lr=1)`, so one training step moves every trainable
 * parameter by exactly minus its gradient.
 *
 *   grad_check real | binary | classes K
 *
 * The loss as a function of the parameters is train_batch's return value
 * (the loss before its update), on fixed random data; the dropout masks
 * of a step depend only on the step's number, which start_training
 * resets, so every evaluation sees the same masks.  Each trainable
 * tensor is probed at up to 12 elements: the analytic gradient must be
 * within 1% of the model's largest gradient (plus 1e-4) of
 * (L(w + h) - L(w - h)) / 2h, h = 1e-3 (or, where a kink of relu or max
 * pooling lies within h, 2.5e-4): float rounding allows that, a gradient
 * at a wrong index does not.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m.h"

static unsigned long long rng_state = 12345;

static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static float x[M_TRAIN_BATCH * M_INPUT_SIZE], t[M_TRAIN_BATCH * M_TARGET_SIZE];
static float y[M_TRAIN_BATCH * M_OUTPUT_SIZE + 1];
static float w0[M_PARAM_COUNT + 1], step[M_PARAM_COUNT + 1];

static double loss_at(const float *w)
{
    memcpy(m_params_data(), w, sizeof(float) * M_PARAM_COUNT);
    m_start_training(7);
    return m_train_batch(x, t, M_TRAIN_BATCH, y);
}

/* (L(w + h) - L(w - h)) / 2h at element at, h relative to its size. */
static double central_difference(float *w, long at, double relative)
{
    double h = relative * fmax(1.0, fabs(w0[at]));
    memcpy(w, w0, sizeof(float) * M_PARAM_COUNT);
    w[at] = (float)(w0[at] + h);
    double hi = (double)w[at], up = loss_at(w);
    w[at] = (float)(w0[at] - h);
    double lo = (double)w[at], down = loss_at(w);
    return (up - down) / (hi - lo);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: grad_check real | binary | classes K\n");
        return 2;
    }
    int classes = strcmp(argv[1], "classes") == 0 && argc > 2 ? atoi(argv[2]) : 0;
    for (int i = 0; i < M_TRAIN_BATCH * M_INPUT_SIZE; i++)
        x[i] = (float)(2 * uniform() - 1);
    for (int i = 0; i < M_TRAIN_BATCH * M_TARGET_SIZE; i++)
        t[i] = classes                          ? (float)(int)(uniform() * classes)
               : strcmp(argv[1], "binary") == 0 ? (float)(uniform() < 0.5)
                                                : (float)(2 * uniform() - 1);
    m_init_params(3);
    /* Biases start at zero; move them so their gradients are not special. */
    float *p = m_params_data();
    for (int i = 0; i < M_TENSOR_COUNT; i++)
        if (m_tensors[i].trainable && strstr(m_tensors[i].name, ".bias"))
            for (int k = 0; k < m_tensors[i].shape[0]; k++)
                p[m_tensors[i].offset + k] = (float)(0.2 * uniform() - 0.1);
    memcpy(w0, p, sizeof w0);
    loss_at(w0);
    for (int i = 0; i < M_PARAM_COUNT; i++)
        step[i] = w0[i] - m_params_data()[i]; /* lr = 1: the gradient */
    double largest = 0;
    for (int i = 0; i < M_PARAM_COUNT; i++)
        largest = fmax(largest, fabs(step[i]));
    if (largest == 0) {
        printf("FAIL: every gradient is zero\n");
        return 1;
    }
    int failures = 0, probes = 0;
    double worst = 0;
    static float w[M_PARAM_COUNT + 1];
    for (int i = 0; i < M_TENSOR_COUNT; i++) {
        long size = 1;
        for (int d = 0; d < m_tensors[i].rank; d++)
            size *= m_tensors[i].shape[d];
        if (!m_tensors[i].trainable) {
            for (long k = 0; k < size; k++)
                if (step[m_tensors[i].offset + k] != 0 && !strstr(m_tensors[i].name, ".moving_")) {
                    printf("FAIL: fixed %s[%ld] changed\n", m_tensors[i].name, k);
                    failures++;
                    break;
                }
            continue;
        }
        long every = size > 12 ? size / 12 : 1;
        for (long k = 0; k < size; k += every) {
            long at = m_tensors[i].offset + k;
            double fd = central_difference(w, at, 1e-3), err = fabs(fd - step[at]);
            if (err > 2e-3 * largest) { /* a kink within h? a quarter of it */
                double fd2 = central_difference(w, at, 2.5e-4), err2 = fabs(fd2 - step[at]);
                if (err2 < err) {
                    fd = fd2;
                    err = err2;
                }
            }
            worst = fmax(worst, err / largest);
            probes++;
            if (err > 1e-2 * largest + 1e-4) {
                printf("FAIL: d loss / d %s[%ld]: generated %.6g, finite difference %.6g\n",
                       m_tensors[i].name, k, step[at], fd);
                failures++;
            }
        }
    }
    printf("%d gradients probed, worst difference %.2e of the largest gradient (%.3g)\n", probes,
           worst, largest);
    return failures ? 1 : 0;
}
