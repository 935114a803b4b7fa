/* mock_train.c - a hand-written stand-in for generated training code, to
 * test the runtime's train and eval commands on their own: the model
 *     input [2]; dense(1)   (y = x.w + b), mse, sgd(lr=0.1), batch 3
 * computed in float32 the way PyTorch does (tests/e2e/compare_train_loop.py
 * runs the same model in the reference). */
#include <string.h>

#include "cnnrt.h"

static float params[3]; /* dense_1.kernel [2, 1], dense_1.bias [1] */
static const cnnrt_tensor_spec tensors[] = {{"dense_1.kernel", 2, {2, 1}, 0},
                                            {"dense_1.bias", 1, {1}, 2}};

static void init(unsigned long long seed)
{
    cnnrt_init_spec specs[] = {{0, 2, CNNRT_INIT_GLOROT_UNIFORM, 2, 1},
                               {2, 1, CNNRT_INIT_ZEROS, 1, 1}};
    cnnrt_init_params(specs, 2, params, seed);
}

static void start_training(unsigned long long seed)
{
    (void)seed; /* plain SGD: no state */
}

static void predict(const float *x, float *y, int n)
{
    for (int s = 0; s < n; s++)
        y[s] = x[2 * s] * params[0] + x[2 * s + 1] * params[1] + params[2];
}

static double loss_of(const float *y, const float *t, int n)
{
    float sum = 0;
    for (int s = 0; s < n; s++)
        sum += (y[s] - t[s]) * (y[s] - t[s]);
    return sum / (float)n;
}

static double eval_batch(const float *x, const float *t, int n, float *y)
{
    predict(x, y, n);
    return loss_of(y, t, n);
}

static double train_batch(const float *x, const float *t, int n, float *y)
{
    predict(x, y, n);
    double loss = loss_of(y, t, n);
    float g[3] = {0, 0, 0};
    for (int s = 0; s < n; s++) {
        float dy = 2.0f * (y[s] - t[s]) / (float)n;
        g[0] += x[2 * s] * dy;
        g[1] += x[2 * s + 1] * dy;
        g[2] += dy;
    }
    for (int k = 0; k < 3; k++)
        params[k] -= 0.1f * g[k];
    return loss;
}

int main(int argc, char **argv)
{
    cnnrt_model m;
    memset(&m, 0, sizeof m);
    m.name = "lin";
    m.input_size = 2;
    m.output_size = 1;
    m.last_axis = 1;
    m.batch = 3;
    m.epochs = 4;
    m.layout.input_size = 2;
    m.layout.output_size = 1;
    m.loss = CNNRT_LOSS_MSE;
    m.metrics[0] = CNNRT_METRIC_MAE;
    m.metrics[1] = CNNRT_METRIC_RMSE;
    m.metrics[2] = CNNRT_METRIC_ACCURACY;
    m.nmetrics = 3;
    m.ntensors = 2;
    m.tensors = tensors;
    m.params = params;
    m.param_count = 3;
    m.init = init;
    m.start_training = start_training;
    m.train_batch = train_batch;
    m.eval_batch = eval_batch;
    m.predict = predict;
    return cnnrt_main(argc, argv, &m);
}
