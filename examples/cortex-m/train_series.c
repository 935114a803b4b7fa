/* Training on the board: a model that predicts a series' next value
 * from the last MODEL_INPUT_SIZE values (examples/seed42.cnn: tomorrow
 * from the last 10 days) learns from a series held in flash, by the
 * generated training code, with static memory only.
 *
 * It does what the generated program's `train --data series:FILE:COL:N
 * --seed S --epochs E` does on a host (the same initial weights, sample
 * order, batches and steps), so the weights it ends with equal the
 * host's to float rounding.  It prints each epoch's mean loss, then the
 * weights, one tensor a line (name, then its values, %.9g).
 *
 *   model.c  from `cnngen MODEL.cnn --prefix model -o model.c` (training
 *            code included: no --weights, no --no-train)
 *   series.h `static const float series[] = {...};` the values, oldest first
 * and from the runtime, init.c (the init rules) and order.c (the sample
 * order): neither uses stdio nor malloc.  A train block with a learning
 * rate schedule or augmentation needs the rest of the runtime's loop;
 * this one keeps the rate the train block gives. */
#include <stdio.h>
#include <stdlib.h>

#include "cnnrt.h"
#include "model.h"
#include "series.h"

#define WINDOW MODEL_INPUT_SIZE
#define SAMPLES ((long)(sizeof series / sizeof series[0]) - WINDOW)

/* Everything training needs beyond the model's own static memory. */
static long order[SAMPLES];
static float inputs[MODEL_TRAIN_BATCH * WINDOW], targets[MODEL_TRAIN_BATCH];
static float outputs[MODEL_TRAIN_BATCH * MODEL_OUTPUT_SIZE];

/* One epoch over the windows in ORDER; the mean loss over the samples. */
static double train_epoch(void)
{
    double total = 0;
    for (long first = 0; first < SAMPLES; first += MODEL_TRAIN_BATCH) {
        int n = SAMPLES - first < MODEL_TRAIN_BATCH ? (int)(SAMPLES - first) : MODEL_TRAIN_BATCH;
        for (int s = 0; s < n; s++) {
            long k = order[first + s];
            for (int i = 0; i < WINDOW; i++)
                inputs[s * WINDOW + i] = series[k + i];
            targets[s] = series[k + WINDOW];
        }
        total += model_train_batch(inputs, targets, n, outputs) * n;
    }
    return total / SAMPLES;
}

static void print_weights(void)
{
    const float *params = model_params_data();
    for (int t = 0; t < MODEL_TENSOR_COUNT; t++) {
        const model_tensor *tensor = &model_tensors[t];
        long count = 1;
        for (int d = 0; d < tensor->rank; d++)
            count *= tensor->shape[d];
        printf("%s", tensor->name);
        for (long i = 0; i < count; i++)
            printf(" %.9g", (double)params[tensor->offset + i]);
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    unsigned long long seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 0;
    long epochs = argc > 2 ? atol(argv[2]) : 10;
    if (MODEL_TARGET_SIZE != 1 || SAMPLES < 1) {
        printf("train_series: the model must predict one value from fewer values than the "
               "series has\n");
        return 1;
    }
    model_init_params(seed);
    model_start_training(seed);
    unsigned long long state = cnnrt_order_start(seed);
    for (long i = 0; i < SAMPLES; i++)
        order[i] = i;
    for (long epoch = 1; epoch <= epochs; epoch++) {
        cnnrt_shuffle(order, SAMPLES, &state);
        printf("epoch %ld/%ld - loss: %.9g\n", epoch, epochs, train_epoch());
    }
    printf("training memory: %ld bytes (model_train), %ld bytes (this loop)\n",
           (long)MODEL_TRAIN_BYTES, (long)(sizeof order + sizeof inputs + sizeof targets +
                                           sizeof outputs));
    print_weights();
    return 0;
}
