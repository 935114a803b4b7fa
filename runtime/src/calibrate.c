/* calibrate.c - PROG calibrate: the range of every tensor of the float
 * model over data, which cnngen --quantize turns into int8 scales.
 *
 *   PROG calibrate --data DATA --weights W.safetensors
 *                  [--save RANGES.safetensors] [--percentile P]
 *
 * The tensors are the input and each layer's output, as the evaluation
 * forward pass leaves them (eval_batch, the values predict --dump reads).
 * Each range is its tensor's min and max over the data; with --percentile
 * P (50 < P <= 100) it runs from the (100 - P)-th to the P-th percentile
 * of the tensor's values instead, which keeps a few outliers from taking
 * the int8 steps of all the rest.  The percentiles come from a histogram
 * of CALIBRATE_BINS bins between the min and the max (a second pass over
 * the data, as TensorRT's and PyTorch's histogram observers do): each end
 * is the edge of the bin that holds the percentile, so the range holds at
 * least P% of the values and is within one bin of the exact percentile.
 *
 * RANGES is a safetensors file: one F32 tensor [2] (min, max) for each
 * tensor, named "input" and by its layer, in the model's order; its
 * metadata says the method and the number of samples. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "inspect.h"

enum { CALIBRATE_BINS = 2048 };

static const char CALIBRATE_USAGE[] =
    "calibrate --data DATA --weights W.safetensors [--save RANGES.safetensors] "
    "[--percentile P]";

typedef struct {
    const char *data, *weights, *save;
    double percentile; /* 0: min and max */
} CalibrateArgs;

/* One tensor's range so far, and with --percentile its histogram. */
typedef struct {
    const char *name;
    long size;   /* floats of one sample */
    long values; /* where eval_batch leaves it in the training arena; -1: the input */
    double lo, hi;
    uint64_t *bins;
} Tensor;

typedef struct {
    const cnnrt_model *m;
    const char *prog;
    cnnrt_data data;
    Tensor *tensors;
    int ntensors;
    float *x, *t, *y; /* one batch */
    int not_finite;   /* the tensor whose values are not all finite, + 1 */
} Calibration;

static int usage(const char *prog, const char *message)
{
    fprintf(stderr, "usage: %s %s\n%s calibrate: error: %s\n", prog, CALIBRATE_USAGE, prog,
            message);
    return 2;
}

static int parse_percentile(const char *text, double *p)
{
    char *end;
    double v = strtod(text, &end);
    if (!*text || *end || !(v > 50 && v <= 100))
        return 0;
    *p = v;
    return 1;
}

static int parse_calibrate_args(int argc, char **argv, CalibrateArgs *a)
{
    const char *prog = argv[0];
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        const char **path = strcmp(o, "--data") == 0      ? &a->data
                            : strcmp(o, "--weights") == 0 ? &a->weights
                            : strcmp(o, "--save") == 0    ? &a->save
                                                          : NULL;
        char message[256];
        if (!path && strcmp(o, "--percentile") != 0) {
            snprintf(message, sizeof message, "unrecognized arguments: %s", o);
            return usage(prog, message);
        }
        if (i + 1 >= argc) {
            snprintf(message, sizeof message, "argument %s: expected one argument", o);
            return usage(prog, message);
        }
        const char *v = argv[++i];
        if (path) {
            *path = v;
        } else if (!parse_percentile(v, &a->percentile)) {
            snprintf(message, sizeof message,
                     "argument --percentile: '%s' is not a number above 50 and at most 100", v);
            return usage(prog, message);
        }
    }
    if (!a->data)
        return usage(prog, "the following arguments are required: --data");
    if (!a->weights)
        return usage(prog, "the following arguments are required: --weights");
    return 0;
}

/* The input, then each layer. */
static int list_tensors(Calibration *c)
{
    const cnnrt_model *m = c->m;
    c->ntensors = m->nlayers + 1;
    c->tensors = calloc((size_t)c->ntensors, sizeof *c->tensors);
    if (!c->tensors)
        return 1;
    c->tensors[0] = (Tensor){"input", m->input_size, -1, INFINITY, -INFINITY, NULL};
    for (int k = 0; k < m->nlayers; k++) {
        const cnnrt_layer_info *l = &m->layers[k];
        c->tensors[k + 1] =
            (Tensor){l->name, cnnrt_layer_size(l), l->values, INFINITY, -INFINITY, NULL};
    }
    return 0;
}

/* The tensor's values for the batch just evaluated, sample after sample. */
static const float *batch_values(const Calibration *c, const Tensor *k)
{
    return k->values < 0 ? c->x : c->m->train_arena + k->values;
}

static void widen_range(Calibration *c, int k, int n)
{
    Tensor *tensor = &c->tensors[k];
    const float *v = batch_values(c, tensor);
    long count = (long)n * tensor->size;
    for (long i = 0; i < count; i++) {
        if (!isfinite(v[i])) {
            if (!c->not_finite)
                c->not_finite = k + 1;
            return;
        }
        tensor->lo = v[i] < tensor->lo ? v[i] : tensor->lo;
        tensor->hi = v[i] > tensor->hi ? v[i] : tensor->hi;
    }
}

static double bin_width(const Tensor *tensor)
{
    return (tensor->hi - tensor->lo) / CALIBRATE_BINS;
}

static void count_bins(Calibration *c, int k, int n)
{
    Tensor *tensor = &c->tensors[k];
    const float *v = batch_values(c, tensor);
    long count = (long)n * tensor->size;
    double width = bin_width(tensor);
    for (long i = 0; i < count; i++) {
        long bin = width > 0 ? (long)((v[i] - tensor->lo) / width) : 0;
        tensor->bins[bin < 0 ? 0 : bin >= CALIBRATE_BINS ? CALIBRATE_BINS - 1 : bin]++;
    }
}

/* One pass over the data: each batch through eval_batch, then each
 * tensor's values through visit. */
static void each_batch(Calibration *c, void (*visit)(Calibration *, int, int))
{
    const cnnrt_model *m = c->m;
    const cnnrt_data *d = &c->data;
    for (long first = 0; first < d->count; first += m->batch) {
        int n = (int)(d->count - first < m->batch ? d->count - first : m->batch);
        cnnrt_gather_batch(d, NULL, first, n, c->x, c->t);
        m->eval_batch(c->x, c->t, n, c->y);
        for (int k = 0; k < c->ntensors; k++)
            visit(c, k, n);
    }
}

/* The edge of the bin where the count of values up to it reaches share
 * of them: its lower edge for the low end, its upper edge for the high. */
static double percentile_edge(const Tensor *tensor, uint64_t total, double share, int high)
{
    double want = share * (double)total, seen = 0;
    int bin = 0;
    for (; bin < CALIBRATE_BINS - 1; bin++) {
        seen += (double)tensor->bins[bin];
        if (high ? seen >= want : seen > want)
            break;
    }
    double edge = tensor->lo + bin_width(tensor) * (bin + high);
    return edge > tensor->hi ? tensor->hi : edge;
}

static int narrow_to_percentiles(Calibration *c, double percentile)
{
    for (int k = 0; k < c->ntensors; k++) {
        c->tensors[k].bins = calloc(CALIBRATE_BINS, sizeof(uint64_t));
        if (!c->tensors[k].bins)
            return 1;
    }
    each_batch(c, count_bins);
    for (int k = 0; k < c->ntensors; k++) {
        Tensor *tensor = &c->tensors[k];
        uint64_t total = (uint64_t)c->data.count * (uint64_t)tensor->size;
        double lo = percentile_edge(tensor, total, 1 - percentile / 100, 0),
               hi = percentile_edge(tensor, total, percentile / 100, 1);
        tensor->lo = lo;
        tensor->hi = hi;
    }
    return 0;
}

static int save_ranges(const Calibration *c, const CalibrateArgs *a, const char *path)
{
    cnnrt_tensor_spec *specs = calloc((size_t)c->ntensors, sizeof *specs);
    float *ranges = malloc(sizeof(float) * 2 * (size_t)c->ntensors);
    if (!specs || !ranges) {
        free(specs);
        free(ranges);
        fprintf(stderr, "%s: error: out of memory\n", c->prog);
        return 1;
    }
    for (int k = 0; k < c->ntensors; k++) {
        specs[k] = (cnnrt_tensor_spec){c->tensors[k].name, 1, {2}, 2L * k};
        ranges[2 * k] = (float)c->tensors[k].lo;
        ranges[2 * k + 1] = (float)c->tensors[k].hi;
    }
    cnnrt_meta meta[3] = {{"method", ""}, {"percentile", ""}, {"samples", ""}};
    snprintf(meta[0].value, sizeof meta[0].value, "%s", a->percentile ? "percentile" : "minmax");
    snprintf(meta[1].value, sizeof meta[1].value, "%.17g", a->percentile ? a->percentile : 100.0);
    snprintf(meta[2].value, sizeof meta[2].value, "%ld", c->data.count);
    char error[1024];
    int status =
        cnnrt_save_safetensors_meta(path, specs, c->ntensors, ranges, meta, 3, error, sizeof error);
    if (status)
        fprintf(stderr, "%s: %s\n", c->prog, error);
    free(specs);
    free(ranges);
    return cnnrt_exit_status(status);
}

static void print_ranges(const Calibration *c, const CalibrateArgs *a, const char *path)
{
    if (a->percentile)
        printf("%ld samples, percentile %.6g: %s\n", c->data.count, a->percentile, path);
    else
        printf("%ld samples, min and max: %s\n", c->data.count, path);
    for (int k = 0; k < c->ntensors; k++)
        printf("  %-24s %.6g .. %.6g\n", c->tensors[k].name, c->tensors[k].lo, c->tensors[k].hi);
}

static int calibrate(Calibration *c, const CalibrateArgs *a)
{
    const cnnrt_model *m = c->m;
    int status = cnnrt_command_load_weights(m, a->weights);
    if (status || (status = cnnrt_command_load_data(c->prog, m, a->data, &c->data)) != 0)
        return status;
    c->x = malloc(sizeof(float) * (size_t)m->batch * (size_t)c->data.input_size + 1);
    c->t = malloc(sizeof(float) * (size_t)m->batch * (size_t)c->data.target_size + 1);
    c->y = malloc(sizeof(float) * (size_t)m->batch * (size_t)m->output_size + 1);
    if (!c->x || !c->t || !c->y || list_tensors(c)) {
        fprintf(stderr, "%s: error: out of memory\n", c->prog);
        return 1;
    }
    each_batch(c, widen_range);
    if (c->not_finite) {
        fprintf(stderr,
                "%s calibrate: error: '%s' has values that are not finite on this data: the "
                "weights or the data are spoiled\n",
                c->prog, c->tensors[c->not_finite - 1].name);
        return 1;
    }
    if (a->percentile && narrow_to_percentiles(c, a->percentile)) {
        fprintf(stderr, "%s: error: out of memory\n", c->prog);
        return 1;
    }
    char fallback[1024];
    const char *path = a->save;
    if (!path) {
        snprintf(fallback, sizeof fallback, "%s.ranges.safetensors", m->name);
        path = fallback;
    }
    if ((status = save_ranges(c, a, path)) == 0)
        print_ranges(c, a, path);
    return status;
}

int cnnrt_calibrate_main(int argc, char **argv, const cnnrt_model *m)
{
    CalibrateArgs a = {0};
    int status = parse_calibrate_args(argc, argv, &a);
    if (status)
        return status;
    Calibration c = {.m = m, .prog = argv[0]};
    status = calibrate(&c, &a);
    for (int k = 0; c.tensors && k < c.ntensors; k++)
        free(c.tensors[k].bins);
    free(c.tensors);
    free(c.x);
    free(c.t);
    free(c.y);
    if (c.data.inputs || c.data.targets)
        cnnrt_free_data(&c.data);
    return status;
}
