/* train.c - the generated program's commands around a model:
 *
 *   PROG predict [--weights W.safetensors] [FILE|-]
 *   PROG train   --data DATA [--init W0.safetensors] [--save W.safetensors]
 *                [--epochs N] [--seed S] [--no-shuffle] [--quiet]
 *   PROG eval    --data DATA --weights W.safetensors
 *
 * The model (generated code) does one batch at a time: forward, loss,
 * backward and the optimizer step in train_batch, the forward and loss in
 * eval_batch.  Here: the data, the epochs and their order, the metrics and
 * the lines printed, a progress bar on a terminal, and the weights files.
 */
#define _POSIX_C_SOURCE 200809L /* isatty, fileno, clock_gettime */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cnnrt.h"

/* ---- metrics ---------------------------------------------------------------
 * Sample-weighted means over the batches (Keras' running averages); each
 * batch's values come from the forward pass before its update. */

typedef struct {
    double samples, loss_sum;
    double hits, predictions;
    double abs_sum, square_sum, elements;
} Meter;

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* Keras' accuracy for the loss: the class index against the argmax for
 * crossentropy; a 0.5 threshold for binary crossentropy or a last axis of
 * one; otherwise the argmax against the argmax. */
static void count_hits(const cnnrt_model *m, const float *y, const float *t, int n, Meter *meter)
{
    int out = m->output_size, last = m->last_axis;
    for (int s = 0; s < n; s++) {
        const float *ys = y + (size_t)s * out;
        if (m->loss == CNNRT_LOSS_CROSSENTROPY) {
            const float *ts = t + (size_t)s * m->layout.positions;
            for (int p = 0; p < m->layout.positions; p++) {
                meter->hits += argmax(ys + p * last, last) == (int)ts[p];
                meter->predictions++;
            }
        } else if (m->loss == CNNRT_LOSS_BCE || last == 1) {
            const float *ts = t + (size_t)s * out;
            for (int k = 0; k < out; k++) {
                meter->hits += ts[k] == (ys[k] > 0.5f ? 1.0f : 0.0f);
                meter->predictions++;
            }
        } else {
            const float *ts = t + (size_t)s * out;
            for (int p = 0; p < out / last; p++) {
                meter->hits += argmax(ys + p * last, last) == argmax(ts + p * last, last);
                meter->predictions++;
            }
        }
    }
}

static void meter_update(const cnnrt_model *m, Meter *meter, double loss, const float *y,
                         const float *t, int n)
{
    meter->samples += n;
    meter->loss_sum += loss * n;
    for (int k = 0; k < m->nmetrics; k++) {
        if (m->metrics[k] == CNNRT_METRIC_ACCURACY)
            count_hits(m, y, t, n, meter);
    }
    int errors = 0;
    for (int k = 0; k < m->nmetrics; k++)
        errors |= m->metrics[k] != CNNRT_METRIC_ACCURACY;
    if (errors)
        for (long i = 0; i < (long)n * m->output_size; i++) {
            double d = (double)y[i] - (double)t[i];
            meter->abs_sum += fabs(d);
            meter->square_sum += d * d;
            meter->elements++;
        }
}

/* "loss: X - accuracy: Y", values as %.9g, metrics in the train block's order. */
static void print_results(FILE *out, const cnnrt_model *m, const Meter *meter)
{
    fprintf(out, "loss: %.9g", meter->loss_sum / meter->samples);
    for (int k = 0; k < m->nmetrics; k++) {
        switch (m->metrics[k]) {
        case CNNRT_METRIC_ACCURACY:
            fprintf(out, " - accuracy: %.9g", meter->hits / meter->predictions);
            break;
        case CNNRT_METRIC_MAE:
            fprintf(out, " - mae: %.9g", meter->abs_sum / meter->elements);
            break;
        default: fprintf(out, " - rmse: %.9g", sqrt(meter->square_sum / meter->elements)); break;
        }
    }
}

/* ---- the sample order --------------------------------------------------------
 * A new random order every epoch (Fisher-Yates over splitmix64, seeded
 * from the seed's own stream), or the file's order. */

static uint64_t mix(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static void shuffle(long *order, long n, uint64_t *state)
{
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(mix(state) % (uint64_t)(i + 1));
        long tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

/* ---- a progress bar on a terminal ------------------------------------------ */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void progress(long epoch, long epochs, long done, long total, double start)
{
    double elapsed = now() - start, rate = elapsed > 0 ? done / elapsed : 0;
    double left = rate > 0 ? (double)(total - done) / rate : 0;
    int width = 30, filled = total ? (int)(width * done / total) : width;
    fprintf(stderr, "\r%ld/%ld [", epoch, epochs);
    for (int i = 0; i < width; i++)
        fputc(i < filled ? '=' : i == filled ? '>' : '.', stderr);
    fprintf(stderr, "] %ld/%ld  %.0f samples/s  %.0f s left ", done, total, rate, left);
    fflush(stderr);
}

/* ---- commands ------------------------------------------------------------- */

typedef struct {
    const char *data, *init, *save, *weights;
    long epochs, seed;
    int no_shuffle, quiet;
} Args;

static int usage(const char *prog, const char *command, const char *message)
{
    fprintf(stderr, "usage: %s %s\n%s %s: error: %s\n", prog,
            strcmp(command, "train") == 0
                ? "train --data DATA [--init W0.safetensors] [--save W.safetensors] "
                  "[--epochs N] [--seed S] [--no-shuffle] [--quiet]"
                : "eval --data DATA --weights W.safetensors",
            prog, command, message);
    return 2;
}

/* A whole number >= 0 that fits a long: 1; 0 otherwise, with *too_large
 * set when it is one that does not fit (strtol would give LONG_MAX). */
static int natural(const char *text, long *value, int *too_large)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    *too_large = *text && !*end && errno == ERANGE && v == LONG_MAX;
    if (!*text || *end || v < 0 || errno == ERANGE)
        return 0;
    *value = v;
    return 1;
}

static int parse_args(int argc, char **argv, const char *command, Args *a)
{
    const char *prog = argv[0];
    int train = strcmp(command, "train") == 0;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        const char **value = strcmp(o, "--data") == 0                ? &a->data
                             : strcmp(o, "--init") == 0 && train     ? &a->init
                             : strcmp(o, "--save") == 0 && train     ? &a->save
                             : strcmp(o, "--weights") == 0 && !train ? &a->weights
                                                                     : NULL;
        if (value || ((strcmp(o, "--epochs") == 0 || strcmp(o, "--seed") == 0) && train)) {
            if (i + 1 >= argc) {
                char message[256];
                snprintf(message, sizeof message, "argument %s: expected one argument", o);
                return usage(prog, command, message);
            }
            const char *v = argv[++i];
            int too_large = 0;
            if (value) {
                *value = v;
            } else if (!natural(v, o[2] == 'e' ? &a->epochs : &a->seed, &too_large)) {
                char message[256];
                snprintf(message, sizeof message,
                         too_large ? "argument %s: '%s' is too large"
                                   : "argument %s: '%s' is not a natural number",
                         o, v);
                return usage(prog, command, message);
            }
        } else if (strcmp(o, "--no-shuffle") == 0 && train) {
            a->no_shuffle = 1;
        } else if (strcmp(o, "--quiet") == 0 && train) {
            a->quiet = 1;
        } else {
            char message[256];
            snprintf(message, sizeof message, "unrecognized arguments: %s", o);
            return usage(prog, command, message);
        }
    }
    if (!a->data)
        return usage(prog, command, "the following arguments are required: --data");
    if (!train && !a->weights)
        return usage(prog, command, "the following arguments are required: --weights");
    return 0;
}

static int load_weights(const cnnrt_model *m, const char *path)
{
    char error[1024];
    int status = cnnrt_load_safetensors(path, m->tensors, m->ntensors, m->params, m->param_count,
                                        error, sizeof error);
    if (status != 0)
        fprintf(stderr, "%s\n", error);
    return cnnrt_exit_status(status);
}

static int load_data(const char *prog, const cnnrt_model *m, const char *spec, cnnrt_data *data)
{
    char error[1024];
    int status = cnnrt_load_data(spec, &m->layout, data, error, sizeof error);
    if (status == CNNRT_EIO)
        fprintf(stderr, "%s: %s\n", prog, error);
    else if (status)
        fprintf(stderr, "%s\n", error);
    return cnnrt_exit_status(status);
}

/* What a pass over the data ends with. */
enum { PASS_DONE, PASS_NO_MEMORY, PASS_NOT_FINITE };

/* Run the batches of one pass.  Training stops at the first batch whose
 * loss is not finite (*bad_batch, from 1, and its loss in *bad_loss): the
 * weights are spoiled from there on. */
static int run_batches(const cnnrt_model *m, const cnnrt_data *d, const long *order, int train,
                       Meter *meter, long epoch, long epochs, int bar, long *bad_batch,
                       double *bad_loss)
{
    int batch = m->batch;
    float *x = malloc(sizeof(float) * (size_t)batch * d->input_size + 1);
    float *t = malloc(sizeof(float) * (size_t)batch * d->target_size + 1);
    float *y = malloc(sizeof(float) * (size_t)batch * m->output_size + 1);
    if (!x || !t || !y) {
        free(x);
        free(t);
        free(y);
        return PASS_NO_MEMORY;
    }
    int result = PASS_DONE;
    double start = now(), last_draw = 0;
    for (long first = 0; first < d->count; first += batch) {
        int n = (int)(d->count - first < batch ? d->count - first : batch);
        for (int s = 0; s < n; s++) {
            long k = order ? order[first + s] : first + s;
            memcpy(x + (size_t)s * d->input_size, d->inputs + (size_t)k * d->input_stride,
                   sizeof(float) * (size_t)d->input_size);
            memcpy(t + (size_t)s * d->target_size, d->targets + (size_t)k * d->target_size,
                   sizeof(float) * (size_t)d->target_size);
        }
        double loss = train ? m->train_batch(x, t, n, y) : m->eval_batch(x, t, n, y);
        if (train && !isfinite(loss)) {
            *bad_batch = first / batch + 1;
            *bad_loss = loss;
            result = PASS_NOT_FINITE;
            break;
        }
        meter_update(m, meter, loss, y, t, n);
        if (bar && (now() - last_draw > 0.1 || first + n == d->count)) {
            progress(epoch, epochs, first + n, d->count, start);
            last_draw = now();
        }
    }
    if (bar)
        fputc('\n', stderr);
    free(x);
    free(t);
    free(y);
    return result;
}

/* The first tensor with a value that is not finite, or NULL. */
static const char *non_finite_tensor(const cnnrt_model *m)
{
    for (int k = 0; k < m->ntensors; k++) {
        const cnnrt_tensor_spec *s = &m->tensors[k];
        long count = 1;
        for (int d = 0; d < s->rank; d++)
            count *= s->shape[d];
        for (long i = 0; i < count; i++)
            if (!isfinite(m->params[s->offset + i]))
                return s->name;
    }
    return NULL;
}

static int train_command(int argc, char **argv, const cnnrt_model *m)
{
    Args a = {.epochs = -1, .seed = -1};
    int status = parse_args(argc, argv, "train", &a);
    if (status)
        return status;
    long epochs = a.epochs >= 0 ? a.epochs : m->epochs;
    unsigned long long seed = a.seed >= 0 ? (unsigned long long)a.seed : m->seed;
    cnnrt_data data;
    if ((status = load_data(argv[0], m, a.data, &data)) != 0)
        return status;
    if (a.init) {
        if ((status = load_weights(m, a.init)) != 0) {
            cnnrt_free_data(&data);
            return status;
        }
    } else {
        m->init(seed);
    }
    m->start_training(seed);
    long *order = malloc(sizeof(long) * (size_t)data.count + 1);
    if (!order) {
        cnnrt_free_data(&data);
        fprintf(stderr, "%s: error: out of memory\n", argv[0]);
        return 1;
    }
    for (long i = 0; i < data.count; i++)
        order[i] = i;
    uint64_t state = seed * 0x2545F4914F6CDD1Du + 0x5348554646u; /* the shuffle stream */
    int bar = !a.quiet && isatty(fileno(stderr));
    for (long epoch = 1; epoch <= epochs && status == 0; epoch++) {
        if (!a.no_shuffle)
            shuffle(order, data.count, &state);
        Meter meter = {0};
        long bad_batch = 0;
        double bad_loss = 0;
        int pass =
            run_batches(m, &data, order, 1, &meter, epoch, epochs, bar, &bad_batch, &bad_loss);
        if (pass == PASS_NO_MEMORY) {
            fprintf(stderr, "%s: error: out of memory\n", argv[0]);
            status = 1;
            break;
        }
        if (pass == PASS_NOT_FINITE) {
            fprintf(stderr,
                    "%s: error: loss is %s at epoch %ld, batch %ld: the training diverged "
                    "(try a smaller learning rate) or the data or starting weights hold a "
                    "value out of range; nothing saved\n",
                    argv[0],
                    isnan(bad_loss) ? "nan"
                    : bad_loss > 0  ? "inf"
                                    : "-inf",
                    epoch, bad_batch);
            status = 1;
            break;
        }
        if (!a.quiet) {
            printf("epoch %ld/%ld - ", epoch, epochs);
            print_results(stdout, m, &meter);
            printf("\n");
            fflush(stdout);
        }
    }
    free(order);
    cnnrt_free_data(&data);
    if (status)
        return status; /* nothing is saved from a run that failed */
    const char *spoiled = non_finite_tensor(m);
    if (spoiled) { /* the last step's update overflowed */
        fprintf(stderr,
                "%s: error: '%s' holds a value that is not finite after training: the "
                "training diverged (try a smaller learning rate); nothing saved\n",
                argv[0], spoiled);
        return 1;
    }
    char path[4096], error[1024];
    if (a.save)
        snprintf(path, sizeof path, "%s", a.save);
    else
        snprintf(path, sizeof path, "%s.safetensors", m->name);
    if (cnnrt_save_safetensors(path, m->tensors, m->ntensors, m->params, error, sizeof error)) {
        fprintf(stderr, "%s: %s\n", argv[0], error);
        return 2;
    }
    return 0;
}

static int eval_command(int argc, char **argv, const cnnrt_model *m)
{
    Args a = {.epochs = -1, .seed = -1};
    int status = parse_args(argc, argv, "eval", &a);
    if (status)
        return status;
    if ((status = load_weights(m, a.weights)) != 0)
        return status;
    cnnrt_data data;
    if ((status = load_data(argv[0], m, a.data, &data)) != 0)
        return status;
    Meter meter = {0};
    long bad_batch;
    double bad_loss;
    status = run_batches(m, &data, NULL, 0, &meter, 1, 1, 0, &bad_batch, &bad_loss);
    cnnrt_free_data(&data);
    if (status) {
        fprintf(stderr, "%s: error: out of memory\n", argv[0]);
        return 1;
    }
    print_results(stdout, m, &meter);
    printf("\n");
    return 0;
}

/* predict's --weights, for cnnrt_predict_command. */
static const cnnrt_model *predict_model;

static int load_for_predict(const char *path, char *error, size_t size)
{
    const cnnrt_model *m = predict_model;
    return cnnrt_load_safetensors(path, m->tensors, m->ntensors, m->params, m->param_count, error,
                                  size);
}

int cnnrt_main(int argc, char **argv, const cnnrt_model *m)
{
    const char *command = argc > 1 ? argv[1] : "";
    if (strcmp(command, "train") == 0 && m->train_batch)
        return train_command(argc, argv, m);
    if (strcmp(command, "eval") == 0 && m->eval_batch)
        return eval_command(argc, argv, m);
    predict_model = m;
    return cnnrt_predict_command(argc, argv, m->name, m->input_size, m->output_size, m->predict,
                                 load_for_predict, m->init, m->seed);
}
