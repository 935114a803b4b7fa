/* inspect.c - the predict command of a program with a model description:
 * cnnrt_predict_command's, plus
 *
 *   --profile   the per-layer profile table (a build by cnngen --profile)
 *   --dump DIR  each layer's outputs for the samples, DIR/LAYER.safetensors
 *
 * A dump holds one tensor named by its layer, [samples, its shape...],
 * channels last as cnngen's tensors are.  The values are the evaluation
 * forward pass's (eval_batch, in batches of the train block's size), which
 * keeps every layer's output where inference fuses element-wise layers
 * into their producer: so it needs the training code. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cnnrt.h"
#include "inspect.h"

int cnnrt_can_profile(const cnnrt_model *m, const char *prog)
{
    if (m->profile)
        return 0;
    fprintf(stderr,
            "%s: error: this program is built without the profile: compile the model with "
            "cnngen --profile\n",
            prog);
    return 2;
}

/* The samples predict has seen, for the dump (the command calls predict
 * one sample at a time, through a plain function pointer). */
static struct {
    const cnnrt_model *m;
    float *x;
    long count, cap;
    int failed;
} recorded;

static void predict_and_record(const float *input, float *output, int n)
{
    const cnnrt_model *m = recorded.m;
    m->predict(input, output, n);
    if (recorded.failed)
        return;
    if (recorded.count + n > recorded.cap) {
        long cap = recorded.cap ? 2 * recorded.cap : 64;
        while (cap < recorded.count + n)
            cap *= 2;
        float *x = realloc(recorded.x, sizeof(float) * (size_t)cap * (size_t)m->input_size);
        if (!x) {
            recorded.failed = 1;
            return;
        }
        recorded.x = x;
        recorded.cap = cap;
    }
    memcpy(recorded.x + (size_t)recorded.count * (size_t)m->input_size, input,
           sizeof(float) * (size_t)n * (size_t)m->input_size);
    recorded.count += n;
}

long cnnrt_layer_size(const cnnrt_layer_info *l)
{
    long size = 1;
    for (int d = 0; d < l->rank; d++)
        size *= l->shape[d];
    return size;
}

/* Layer l's outputs for the samples: out[k] gets layer k's, count of them. */
static int evaluate_layers(const cnnrt_model *m, const float *x, long count, float **out)
{
    int batch = m->batch,
        wide = m->output_size > m->layout.positions ? m->output_size : m->layout.positions;
    /* the loss is computed and ignored: any valid target will do */
    float *t = calloc((size_t)batch * (size_t)wide + 1, sizeof(float));
    float *y = malloc(sizeof(float) * ((size_t)batch * (size_t)m->output_size + 1));
    if (!t || !y) {
        free(t);
        free(y);
        return 1;
    }
    for (long first = 0; first < count; first += batch) {
        int n = count - first < batch ? (int)(count - first) : batch;
        const float *xb = x + (size_t)first * (size_t)m->input_size;
        m->eval_batch(xb, t, n, y);
        for (int k = 0; k < m->nlayers; k++) {
            const cnnrt_layer_info *l = &m->layers[k];
            size_t size = (size_t)cnnrt_layer_size(l);
            const float *from = l->values < 0 ? xb : m->train_arena + l->values;
            memcpy(out[k] + (size_t)first * size, from, sizeof(float) * size * (size_t)n);
        }
    }
    free(t);
    free(y);
    return 0;
}

static int write_layer(const char *prog, const char *dir, const cnnrt_layer_info *l, long count,
                       const float *values)
{
    cnnrt_tensor_spec spec = {l->name, l->rank + 1, {0}, 0};
    spec.shape[0] = (int)count;
    for (int d = 0; d < l->rank && d < 4; d++)
        spec.shape[d + 1] = l->shape[d];
    size_t n = strlen(dir) + strlen(l->name) + 16;
    char *path = malloc(n), error[1024];
    if (!path) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        return 1;
    }
    snprintf(path, n, "%s/%s.safetensors", dir, l->name);
    int status = cnnrt_save_safetensors(path, &spec, 1, values, error, sizeof error);
    free(path);
    if (status) {
        fprintf(stderr, "%s: %s\n", prog, error);
        return cnnrt_exit_status(status);
    }
    return 0;
}

static int dump_layers(const cnnrt_model *m, const char *prog, const char *dir)
{
    if (recorded.failed) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        return 1;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: error: cannot make the directory '%s': %s\n", prog, dir,
                strerror(errno));
        return 2;
    }
    float **out = calloc((size_t)m->nlayers + 1, sizeof *out);
    int status = out ? 0 : 1;
    for (int k = 0; status == 0 && k < m->nlayers; k++) {
        out[k] = malloc(sizeof(float) *
                        ((size_t)recorded.count * (size_t)cnnrt_layer_size(&m->layers[k]) + 1));
        if (!out[k])
            status = 1;
    }
    if (status == 0)
        status = evaluate_layers(m, recorded.x, recorded.count, out);
    if (status)
        fprintf(stderr, "%s: error: out of memory\n", prog);
    for (int k = 0; status == 0 && k < m->nlayers; k++)
        status = write_layer(prog, dir, &m->layers[k], recorded.count, out[k]);
    for (int k = 0; out && k < m->nlayers; k++)
        free(out[k]);
    free(out);
    return status;
}

int cnnrt_predict_main(int argc, char **argv, const cnnrt_model *m, cnnrt_load_fn load)
{
    const char *prog = argc > 0 ? argv[0] : m->name, *dump = NULL;
    int profile = 0, n = 0;
    char **rest = malloc(sizeof(char *) * ((size_t)argc + 1));
    if (!rest) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        return 1;
    }
    int predicting = argc > 1 && strcmp(argv[1], "predict") == 0;
    for (int i = 0; i < argc; i++) {
        if (predicting && i >= 2 && strcmp(argv[i], "--profile") == 0)
            profile = 1;
        else if (predicting && i >= 2 && strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
            dump = argv[++i];
        else if (predicting && i >= 2 && strncmp(argv[i], "--dump=", 7) == 0)
            dump = argv[i] + 7;
        else
            rest[n++] = argv[i];
    }
    rest[n] = NULL;
    int status = profile ? cnnrt_can_profile(m, prog) : 0;
    if (status == 0 && predicting && strcmp(argv[argc - 1], "--dump") == 0) {
        fprintf(stderr, "%s predict: error: --dump needs a directory (--dump DIR)\n", prog);
        status = 2;
    }
    if (status == 0 && dump && !(m->eval_batch && m->layers)) {
        fprintf(stderr,
                "%s predict: error: --dump needs the training code (the evaluation pass keeps "
                "every layer's output), and this program is built without it (cnngen "
                "--no-train or --weights)\n",
                prog);
        status = 2;
    }
    if (status == 0) {
        cnnrt_profile_reset(m);
        recorded.m = m;
        status =
            cnnrt_predict_command(n, rest, m->name, m->input_size, m->output_size,
                                  dump ? predict_and_record : m->predict, load, m->init, m->seed);
    }
    if (status == 0 && profile)
        cnnrt_profile_report(stderr, m, 0);
    if (status == 0 && dump)
        status = dump_layers(m, prog, dump);
    free(recorded.x);
    memset(&recorded, 0, sizeof recorded);
    free(rest);
    return status;
}
