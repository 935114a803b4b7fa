/* train.c - the generated program's commands around a model:
 *
 *   PROG predict [--weights W.safetensors] [FILE|-]
 *   PROG train   --data DATA [--val DATA] [--init W0.safetensors]
 *                [--save W.safetensors] [--epochs N] [--seed S] [--no-shuffle]
 *                [--quiet] [--checkpoint FILE] [--resume FILE] [--log FILE.csv]
 *   PROG eval    --data DATA --weights W.safetensors [--int8 PROG]
 *
 * The model (generated code) does one batch at a time: forward, loss,
 * backward and the optimizer step in train_batch, the forward and loss in
 * eval_batch.  Here: the data, the epochs and their order, the metrics and
 * the lines printed, a progress bar on a terminal, and the weights files.
 */
#define _POSIX_C_SOURCE 200809L /* isatty, fileno, clock_gettime */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "inspect.h"
#include "cnnrt.h"
#include "rng.h"

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

/* The loss (0) or metric k (1 + k) of a meter, as printed. */
static double meter_value(const cnnrt_model *m, const Meter *meter, int index)
{
    if (index == 0)
        return meter->loss_sum / meter->samples;
    switch (m->metrics[index - 1]) {
    case CNNRT_METRIC_ACCURACY: return meter->hits / meter->predictions;
    case CNNRT_METRIC_MAE: return meter->abs_sum / meter->elements;
    default: return sqrt(meter->square_sum / meter->elements);
    }
}

static const char *value_name(const cnnrt_model *m, int index)
{
    static const char *const metric_names[] = {"accuracy", "mae", "rmse"};
    return index == 0 ? "loss" : metric_names[m->metrics[index - 1]];
}

/* "loss: X - accuracy: Y", values as %.9g, metrics in the train block's
 * order, each name after prefix ("val_" for the validation data). */
static void print_results(FILE *out, const cnnrt_model *m, const Meter *meter, const char *prefix)
{
    for (int i = 0; i <= m->nmetrics; i++)
        fprintf(out, "%s%s%s: %.9g", i ? " - " : "", prefix, value_name(m, i),
                meter_value(m, meter, i));
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
    const char *data, *init, *save, *weights, *val, *checkpoint, *resume, *log, *int8;
    long epochs, seed;
    int no_shuffle, quiet, profile;
} Args;

static const char TRAIN_USAGE[] =
    "train --data DATA [--val DATA] [--init W0.safetensors] [--save W.safetensors] "
    "[--epochs N] [--seed S] [--no-shuffle] [--quiet] [--checkpoint FILE] [--resume FILE] "
    "[--log FILE.csv] [--profile]";

static int usage(const char *prog, const char *command, const char *message)
{
    fprintf(stderr, "usage: %s %s\n%s %s: error: %s\n", prog,
            strcmp(command, "train") == 0
                ? TRAIN_USAGE
                : "eval --data DATA --weights W.safetensors [--int8 PROG]",
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

/* The option's string field in a, or NULL when o is not one for command. */
static const char **path_option(Args *a, const char *o, int train)
{
    static const struct {
        const char *name;
        size_t field;
        int train; /* 1: train only; 0: eval only; 2: both */
    } options[] = {
        {"--data", offsetof(Args, data), 2},     {"--init", offsetof(Args, init), 1},
        {"--save", offsetof(Args, save), 1},     {"--weights", offsetof(Args, weights), 0},
        {"--val", offsetof(Args, val), 1},       {"--checkpoint", offsetof(Args, checkpoint), 1},
        {"--resume", offsetof(Args, resume), 1}, {"--log", offsetof(Args, log), 1},
        {"--int8", offsetof(Args, int8), 0},
    };
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        if (strcmp(o, options[i].name) == 0 && (options[i].train == 2 || options[i].train == train))
            return (const char **)((char *)a + options[i].field);
    return NULL;
}

static int parse_args(int argc, char **argv, const char *command, Args *a)
{
    const char *prog = argv[0];
    int train = strcmp(command, "train") == 0;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        const char **value = path_option(a, o, train);
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
        } else if (strcmp(o, "--profile") == 0 && train) {
            a->profile = 1;
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
    if (a->resume && a->init)
        return usage(prog, command, "argument --resume: not allowed with argument --init");
    return 0;
}

/* A model filled in by hand may leave out what checkpoints need. */
static int can_checkpoint(const cnnrt_model *m, const Args *a)
{
    if ((a->checkpoint || a->resume) && !m->train_step) {
        fprintf(stderr,
                "%s: error: this program's model keeps no step counter: it cannot "
                "write or resume checkpoints\n",
                m->name);
        return 2;
    }
    return 0;
}

int cnnrt_command_load_weights(const cnnrt_model *m, const char *path)
{
    char error[1024];
    int status = cnnrt_load_safetensors(path, m->tensors, m->ntensors, m->params, m->param_count,
                                        error, sizeof error);
    if (status != 0)
        fprintf(stderr, "%s\n", error);
    return cnnrt_exit_status(status);
}

int cnnrt_command_load_data(const char *prog, const cnnrt_model *m, const char *spec,
                            cnnrt_data *data)
{
    char error[1024];
    int status = cnnrt_load_data(spec, &m->layout, data, error, sizeof error);
    if (status == CNNRT_EIO)
        fprintf(stderr, "%s: %s\n", prog, error);
    else if (status)
        fprintf(stderr, "%s\n", error);
    return cnnrt_exit_status(status);
}

void cnnrt_gather_batch(const cnnrt_data *d, const long *order, long first, int n, float *x,
                        float *t)
{
    for (int s = 0; s < n; s++) {
        long k = order ? order[first + s] : first + s;
        memcpy(x + (size_t)s * d->input_size, d->inputs + (size_t)k * d->input_stride,
               sizeof(float) * (size_t)d->input_size);
        memcpy(t + (size_t)s * d->target_size, d->targets + (size_t)k * d->target_size,
               sizeof(float) * (size_t)d->target_size);
    }
}

/* What a pass over the data ends with. */
enum { PASS_DONE, PASS_NO_MEMORY, PASS_NOT_FINITE };

/* How a training pass sets its steps: the learning rate (a schedule
 * counted in steps changes it before each) and augmentation. */
typedef struct {
    const cnnrt_model *m;
    unsigned long long seed;
    long epoch, epochs;
    long first_step, total_steps; /* the run's step index of this pass's first */
    int per_step;                 /* a schedule counted in steps */
    double lr;                    /* in use at the last step */
} Pass;

/* Run the batches of one pass (p NULL: evaluation).  Training stops at
 * the first batch whose loss is not finite (*bad_batch, from 1, and its
 * loss in *bad_loss): the weights are spoiled from there on. */
static int run_batches(const cnnrt_model *m, const cnnrt_data *d, const long *order, Pass *p,
                       Meter *meter, int bar, long *bad_batch, double *bad_loss)
{
    int batch = m->batch;
    int augment = p && m->settings.naugment > 0;
    float *x = malloc(sizeof(float) * (size_t)batch * d->input_size + 1);
    float *t = malloc(sizeof(float) * (size_t)batch * d->target_size + 1);
    float *y = malloc(sizeof(float) * (size_t)batch * m->output_size + 1);
    float *tmp = augment ? malloc(sizeof(float) * (size_t)d->input_size + 1) : NULL;
    int result = !x || !t || !y || (augment && !tmp) ? PASS_NO_MEMORY : PASS_DONE;
    double start = now(), last_draw = 0;
    int value_targets = m->loss == CNNRT_LOSS_MSE || m->loss == CNNRT_LOSS_MAE;
    for (long first = 0; result == PASS_DONE && first < d->count; first += batch) {
        int n = (int)(d->count - first < batch ? d->count - first : batch);
        cnnrt_gather_batch(d, order, first, n, x, t);
        if (augment)
            cnnrt_augment_batch(&m->settings, p->seed, value_targets, x, t, n, d->input_size,
                                d->target_size, p->epoch, first, tmp);
        if (p && p->per_step) {
            p->lr = cnnrt_schedule_lr(&m->settings.schedule, m->settings.lr,
                                      p->first_step + first / batch, p->total_steps);
            m->set_learning_rate(p->lr);
        }
        double loss = p ? m->train_batch(x, t, n, y) : m->eval_batch(x, t, n, y);
        if (p && !isfinite(loss)) {
            *bad_batch = first / batch + 1;
            *bad_loss = loss;
            result = PASS_NOT_FINITE;
            break;
        }
        meter_update(m, meter, loss, y, t, n);
        if (bar && (now() - last_draw > 0.1 || first + n == d->count)) {
            progress(p ? p->epoch : 1, p ? p->epochs : 1, first + n, d->count, start);
            last_draw = now();
        }
    }
    if (bar)
        fputc('\n', stderr);
    free(x);
    free(t);
    free(y);
    free(tmp);
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

/* ---- a training run ---------------------------------------------------------
 * The epochs, with validation after each, the best epoch and early
 * stopping by the monitored value, a row of the log and a checkpoint. */

/* Accuracy improves upward; the loss and the errors downward. */
static int improves(const cnnrt_model *m, int monitor, double value, double best, int have_best)
{
    int index = monitor % CNNRT_MONITOR_VAL;
    int higher = index > 0 && m->metrics[index - 1] == CNNRT_METRIC_ACCURACY;
    if (!have_best)
        return !isnan(value);
    return higher ? value > best : value < best;
}

typedef struct {
    const cnnrt_model *m;
    const char *prog;
    Args a;
    long epochs;
    unsigned long long seed;
    cnnrt_data data, train, val; /* train and val: views of data, or val loaded */
    int has_val, val_loaded;
    long *order;
    unsigned long long shuffle_state;
    float *best; /* the best epoch's weights, with validation */
    cnnrt_checkpoint_info info;
    FILE *log;
    int scheduled; /* a schedule or warmup */
} Run;

static int fail(Run *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", r->prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return status;
}

/* The training samples and the validation samples: --val's data, or the
 * last validation_split of the data (Keras: before shuffling). */
static int split_data(Run *r)
{
    const cnnrt_model *m = r->m;
    r->train = r->data;
    if (r->a.val) {
        int status = cnnrt_command_load_data(r->prog, m, r->a.val, &r->val);
        if (status)
            return status;
        r->has_val = r->val_loaded = 1;
        return 0;
    }
    double split = m->settings.validation_split;
    if (split <= 0)
        return 0;
    long count = r->data.count, keep = (long)floor((double)count * (1 - split));
    if (keep < 1 || keep >= count)
        return fail(r, 1,
                    "validation_split = %g of %ld samples leaves %s: the data needs more samples",
                    split, count, keep < 1 ? "no training sample" : "no validation sample");
    r->train.count = keep;
    r->val = r->data;
    r->val.count = count - keep;
    r->val.inputs = r->data.inputs + (size_t)keep * r->data.input_stride;
    r->val.targets = r->data.targets + (size_t)keep * r->data.target_size;
    r->has_val = 1;
    return 0;
}

static void write_log_header(Run *r)
{
    const cnnrt_model *m = r->m;
    fprintf(r->log, "epoch,lr,seconds");
    for (int v = 0; v <= (r->has_val ? 1 : 0); v++)
        for (int i = 0; i <= m->nmetrics; i++)
            fprintf(r->log, ",%s%s", v ? "val_" : "", value_name(m, i));
    fputc('\n', r->log);
    fflush(r->log);
}

static int open_log(Run *r)
{
    if (!r->a.log)
        return 0;
    int append = r->a.resume != NULL;
    r->log = fopen(r->a.log, append ? "a" : "w");
    if (!r->log)
        return fail(r, 2, "cannot write '%s': %s", r->a.log, strerror(errno));
    if (!append || ftell(r->log) == 0)
        write_log_header(r);
    return 0;
}

/* The run from its start, or from a checkpoint: the weights, the
 * optimizer and the counters. */
static int start_run(Run *r)
{
    const cnnrt_model *m = r->m;
    char error[1024];
    if (r->has_val && !(r->best = malloc(sizeof(float) * (size_t)m->param_count + 1)))
        return fail(r, 1, "out of memory");
    r->info = (cnnrt_checkpoint_info){.seed = r->seed, .samples = r->train.count};
    if (!r->a.resume) {
        if (r->a.init) {
            int status = cnnrt_command_load_weights(m, r->a.init);
            if (status)
                return status;
        } else {
            m->init(r->seed);
        }
        m->start_training(r->seed);
        return 0;
    }
    cnnrt_checkpoint ck;
    int status = cnnrt_read_checkpoint(r->a.resume, m, r->best != NULL, &ck, error, sizeof error);
    if (status) {
        fprintf(stderr, "%s\n", error);
        return cnnrt_exit_status(status);
    }
    const cnnrt_checkpoint_info *info = &ck.info;
    if (info->samples != r->train.count)
        status = fail(r, 1, "'%s' was made training on %ld samples; this data gives %ld",
                      r->a.resume, info->samples, r->train.count);
    else if (r->a.seed >= 0 && (unsigned long long)r->a.seed != info->seed)
        status =
            fail(r, 2, "'%s' was made with seed %llu, not %ld", r->a.resume, info->seed, r->a.seed);
    if (status == 0) {
        r->seed = info->seed;
        m->start_training(r->seed);
        cnnrt_restore_checkpoint(m, &ck, r->best);
        r->info = *info;
    }
    free(ck.values);
    return status;
}

/* The sample order of the epochs done, replayed: the generator must end
 * where the checkpoint says it did. */
static int replay_order(Run *r)
{
    for (long e = 1; e <= r->info.epoch; e++)
        if (!r->a.no_shuffle)
            cnnrt_shuffle(r->order, r->train.count, &r->shuffle_state);
    if (r->a.resume && r->shuffle_state != r->info.shuffle_state)
        return fail(r, 1,
                    "'%s' was made with a different sample order (--no-shuffle, or other data)",
                    r->a.resume);
    return 0;
}

static void print_epoch(Run *r, long epoch, const Meter *train, const Meter *val, double lr)
{
    const cnnrt_model *m = r->m;
    printf("epoch %ld/%ld - ", epoch, r->epochs);
    print_results(stdout, m, train, "");
    if (val) {
        printf(" - ");
        print_results(stdout, m, val, "val_");
    }
    if (r->scheduled)
        printf(" - lr: %.9g", lr);
    printf("\n");
    fflush(stdout);
}

static void log_epoch(Run *r, long epoch, const Meter *train, const Meter *val, double lr,
                      double seconds)
{
    if (!r->log)
        return;
    fprintf(r->log, "%ld,%.9g,%.3f", epoch, lr, seconds);
    for (int i = 0; i <= r->m->nmetrics; i++)
        fprintf(r->log, ",%.9g", meter_value(r->m, train, i));
    for (int i = 0; val && i <= r->m->nmetrics; i++)
        fprintf(r->log, ",%.9g", meter_value(r->m, val, i));
    fputc('\n', r->log);
    fflush(r->log);
}

/* After an epoch: the best epoch so far and its weights, and whether
 * early stopping ends the run (Keras' EarlyStopping, min_delta 0). */
static int track_best(Run *r, long epoch, const Meter *train, const Meter *val)
{
    const cnnrt_model *m = r->m;
    int monitor = m->settings.monitor;
    const Meter *source = monitor >= CNNRT_MONITOR_VAL ? val : train;
    if (!source)
        return 0;
    double value = meter_value(m, source, monitor % CNNRT_MONITOR_VAL);
    if (improves(m, monitor, value, r->info.best_value, r->info.best_epoch > 0)) {
        r->info.best_value = value;
        r->info.best_epoch = epoch;
        r->info.wait = 0;
        if (r->best)
            memcpy(r->best, m->params, sizeof(float) * (size_t)m->param_count);
        return 0;
    }
    r->info.wait++;
    return m->settings.patience > 0 && r->info.wait >= m->settings.patience;
}

static const char *monitor_name(const cnnrt_model *m, char *buf, size_t size)
{
    int monitor = m->settings.monitor;
    snprintf(buf, size, "%s%s", monitor >= CNNRT_MONITOR_VAL ? "val_" : "",
             value_name(m, monitor % CNNRT_MONITOR_VAL));
    return buf;
}

static int run_epochs(Run *r)
{
    const cnnrt_model *m = r->m;
    long steps_per_epoch = (r->train.count + m->batch - 1) / m->batch;
    const cnnrt_schedule *schedule = &m->settings.schedule;
    int per_step = r->scheduled && schedule->per_step;
    long total = per_step ? r->epochs * steps_per_epoch : r->epochs;
    int bar = !r->a.quiet && isatty(fileno(stderr));
    char name[32];
    for (long epoch = r->info.epoch + 1; epoch <= r->epochs && !r->info.stopped; epoch++) {
        double started = now();
        if (!r->a.no_shuffle)
            cnnrt_shuffle(r->order, r->train.count, &r->shuffle_state);
        Pass pass = {.m = m,
                     .seed = r->seed,
                     .epoch = epoch,
                     .epochs = r->epochs,
                     .first_step = (epoch - 1) * steps_per_epoch,
                     .total_steps = total,
                     .per_step = per_step,
                     .lr = m->settings.lr};
        if (r->scheduled && !per_step) {
            pass.lr = cnnrt_schedule_lr(schedule, m->settings.lr, epoch - 1, total);
            m->set_learning_rate(pass.lr);
        }
        Meter meter = {0}, val = {0};
        long bad_batch = 0;
        double bad_loss = 0;
        int result = run_batches(m, &r->train, r->order, &pass, &meter, bar, &bad_batch, &bad_loss);
        if (result == PASS_NOT_FINITE)
            return fail(r, 1,
                        "loss is %s at epoch %ld, batch %ld: the training diverged (try a smaller "
                        "learning rate) or the data or starting weights hold a value out of "
                        "range; nothing saved",
                        isnan(bad_loss) ? "nan"
                        : bad_loss > 0  ? "inf"
                                        : "-inf",
                        epoch, bad_batch);
        if (result == PASS_DONE && r->has_val)
            result = run_batches(m, &r->val, NULL, NULL, &val, 0, &bad_batch, &bad_loss);
        if (result == PASS_NO_MEMORY)
            return fail(r, 1, "out of memory");
        /* A relu or a max can hide a NaN weight from the loss. */
        const char *spoiled = non_finite_tensor(m);
        if (spoiled)
            return fail(r, 1,
                        "'%s' holds a value that is not finite after epoch %ld: the training "
                        "diverged (try a smaller learning rate) or the data hold a value out of "
                        "range; nothing saved",
                        spoiled, epoch);
        const Meter *v = r->has_val ? &val : NULL;
        if (!r->a.quiet)
            print_epoch(r, epoch, &meter, v, pass.lr);
        log_epoch(r, epoch, &meter, v, pass.lr, now() - started);
        r->info.epoch = epoch;
        r->info.step = m->train_step ? *m->train_step : 0;
        r->info.shuffle_state = r->shuffle_state;
        if (track_best(r, epoch, &meter, v)) {
            r->info.stopped = 1;
            if (!r->a.quiet)
                printf("early stopping: %s has not improved for %ld epochs\n",
                       monitor_name(m, name, sizeof name), r->info.wait);
        }
        if (r->a.checkpoint) {
            char error[1024];
            int status =
                cnnrt_save_checkpoint(r->a.checkpoint, m, r->best, &r->info, error, sizeof error);
            if (status) {
                fprintf(stderr, "%s: %s\n", r->prog, error);
                return 2;
            }
        }
    }
    return 0;
}

static int save_result(Run *r)
{
    const cnnrt_model *m = r->m;
    if (r->best && r->info.best_epoch > 0) {
        char name[32];
        memcpy(m->params, r->best, sizeof(float) * (size_t)m->param_count);
        if (!r->a.quiet)
            printf("best epoch: %ld - %s: %.9g (its weights are saved)\n", r->info.best_epoch,
                   monitor_name(m, name, sizeof name), r->info.best_value);
    }
    char path[4096], error[1024];
    if (r->a.save)
        snprintf(path, sizeof path, "%s", r->a.save);
    else
        snprintf(path, sizeof path, "%s.safetensors", m->name);
    if (cnnrt_save_safetensors(path, m->tensors, m->ntensors, m->params, error, sizeof error)) {
        fprintf(stderr, "%s: %s\n", r->prog, error);
        return 2;
    }
    return 0;
}

static int train_run(Run *r)
{
    const cnnrt_model *m = r->m;
    int status;
    if ((status = cnnrt_command_load_data(r->prog, m, r->a.data, &r->data)) != 0)
        return status;
    if ((status = split_data(r)) != 0)
        return status;
    int monitor_val = m->settings.monitor >= CNNRT_MONITOR_VAL;
    if (m->settings.patience > 0 && monitor_val && !r->has_val) {
        char name[32];
        return fail(r, 2,
                    "early_stopping watches %s: give --val DATA or validation_split in the train "
                    "block",
                    monitor_name(m, name, sizeof name));
    }
    if ((status = start_run(r)) != 0)
        return status;
    if (!(r->order = malloc(sizeof(long) * (size_t)r->train.count + 1)))
        return fail(r, 1, "out of memory");
    for (long i = 0; i < r->train.count; i++)
        r->order[i] = i;
    r->shuffle_state = cnnrt_order_start(r->seed);
    if ((status = replay_order(r)) != 0 || (status = open_log(r)) != 0 ||
        (status = run_epochs(r)) != 0)
        return status; /* nothing is saved from a run that failed */
    return save_result(r);
}

static int train_command(int argc, char **argv, const cnnrt_model *m)
{
    Run r = {.m = m, .prog = argv[0], .a = {.epochs = -1, .seed = -1}};
    int status = parse_args(argc, argv, "train", &r.a);
    if (!status)
        status = can_checkpoint(m, &r.a);
    if (!status && r.a.profile)
        status = cnnrt_can_profile(m, argv[0]);
    if (status)
        return status;
    cnnrt_profile_reset(m);
    r.epochs = r.a.epochs >= 0 ? r.a.epochs : m->epochs;
    r.seed = r.a.seed >= 0 ? (unsigned long long)r.a.seed : m->seed;
    r.scheduled = m->set_learning_rate &&
                  (m->settings.schedule.kind != CNNRT_SCHEDULE_NONE || m->settings.schedule.warmup);
    status = train_run(&r);
    if (status == 0 && r.a.profile)
        cnnrt_profile_report(stderr, m, 1);
    if (r.log && fclose(r.log) != 0 && status == 0)
        status = fail(&r, 2, "cannot write '%s': %s", r.a.log, strerror(errno));
    free(r.order);
    free(r.best);
    if (r.val_loaded)
        cnnrt_free_data(&r.val);
    if (r.data.inputs || r.data.targets)
        cnnrt_free_data(&r.data);
    return status;
}

#define KERAS_EPSILON 1e-7 /* clipping of probabilities */

static double clip_probability(double p)
{
    return p < KERAS_EPSILON ? KERAS_EPSILON : p > 1 - KERAS_EPSILON ? 1 - KERAS_EPSILON : p;
}

/* The loss of n samples' outputs y (a mean), from the outputs alone: for
 * crossentropy and binary crossentropy from the probabilities, clipped as
 * Keras does (the float model's own pass takes them from its logits). */
static double output_loss(const cnnrt_model *m, const float *y, const float *t, long n)
{
    double sum = 0;
    long terms = 0, out = m->output_size;
    if (m->loss == CNNRT_LOSS_CROSSENTROPY) {
        long positions = m->layout.positions, last = m->last_axis;
        for (long s = 0; s < n; s++)
            for (long p = 0; p < positions; p++, terms++)
                sum -= log(clip_probability(y[s * out + p * last + (long)t[s * positions + p]]));
        return sum / (double)terms;
    }
    for (long i = 0; i < n * out; i++, terms++) {
        double d = (double)y[i] - (double)t[i], p = clip_probability(y[i]);
        sum += m->loss == CNNRT_LOSS_MSE ? d * d
               : m->loss == CNNRT_LOSS_MAE
                   ? fabs(d)
                   : -(t[i] * log(p + KERAS_EPSILON) + (1 - t[i]) * log(1 - p + KERAS_EPSILON));
    }
    return sum / (double)terms;
}

/* eval --int8 PROG: the int8 predictor's outputs over the same data, and
 * its loss and metrics from them, on a line of their own. */
static int eval_int8(const char *self, const cnnrt_model *m, const cnnrt_data *data,
                     const char *prog)
{
    float *y, *t = malloc(sizeof(float) * (size_t)data->count * data->target_size + 1);
    float *x = malloc(sizeof(float) * (size_t)data->input_size + 1);
    if (!t || !x || cnnrt_run_predictor(self, prog, data, m->output_size, &y) != 0) {
        if (!t || !x)
            fprintf(stderr, "%s: error: out of memory\n", self);
        free(t);
        free(x);
        return 1;
    }
    for (long s = 0; s < data->count; s++)
        cnnrt_gather_batch(data, NULL, s, 1, x, t + s * data->target_size);
    Meter meter = {0};
    for (long first = 0; first < data->count; first += m->batch) {
        int n = (int)(data->count - first < m->batch ? data->count - first : m->batch);
        const float *ys = y + first * m->output_size, *ts = t + first * data->target_size;
        meter_update(m, &meter, output_loss(m, ys, ts, n), ys, ts, n);
    }
    print_results(stdout, m, &meter, "int8_");
    printf("\n");
    free(y);
    free(t);
    free(x);
    return 0;
}

static int eval_command(int argc, char **argv, const cnnrt_model *m)
{
    Args a = {.epochs = -1, .seed = -1};
    int status = parse_args(argc, argv, "eval", &a);
    if (status)
        return status;
    if ((status = cnnrt_command_load_weights(m, a.weights)) != 0)
        return status;
    cnnrt_data data;
    if ((status = cnnrt_command_load_data(argv[0], m, a.data, &data)) != 0)
        return status;
    Meter meter = {0};
    long bad_batch;
    double bad_loss;
    status = run_batches(m, &data, NULL, NULL, &meter, 0, &bad_batch, &bad_loss);
    if (status) {
        cnnrt_free_data(&data);
        fprintf(stderr, "%s: error: out of memory\n", argv[0]);
        return 1;
    }
    print_results(stdout, m, &meter, "");
    printf("\n");
    if (a.int8) {
        fflush(stdout);
        status = eval_int8(argv[0], m, &data, a.int8);
    }
    cnnrt_free_data(&data);
    return status;
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
    if (strcmp(command, "calibrate") == 0 && m->eval_batch && m->layers)
        return cnnrt_calibrate_main(argc, argv, m);
    if (strcmp(command, "plot") == 0)
        return cnnrt_plot_command(argc, argv);
    predict_model = m;
    return cnnrt_predict_main(argc, argv, m, m->tensors ? load_for_predict : NULL);
}
