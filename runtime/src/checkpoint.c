/* checkpoint.c - a training run's state as a safetensors file: the
 * model's tensors under their names, the optimizer's state per tensor
 * (optimizer.velocity.NAME for SGD's momentum, optimizer.m.NAME and
 * optimizer.v.NAME for Adam's moments), the best epoch's weights
 * (best.NAME), and the counters in __metadata__ as decimal strings.
 * Any safetensors reader opens it. */
#include "checkpoint.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"

static const char FORMAT[] = "cnngen checkpoint 1";
enum { META_COUNT = 11 };

/* The tensors of a checkpoint, over one buffer: the weights, each state
 * block, then the best weights. */
typedef struct {
    cnnrt_tensor_spec *specs;
    char **names;
    int count;
    long floats;
} Layout;

static void layout_free(Layout *l)
{
    for (int i = 0; l->names && i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    free(l->specs);
}

static int make_layout(const cnnrt_model *m, int with_best, Layout *l)
{
    static const char *const one[] = {"velocity"}, *const two[] = {"m", "v"};
    int blocks = m->optimizer_blocks;
    const char *const *block_names = blocks == 1 ? one : two;
    int groups = 1 + blocks + (with_best ? 1 : 0);
    memset(l, 0, sizeof *l);
    l->specs = calloc((size_t)groups * (size_t)m->ntensors + 1, sizeof *l->specs);
    l->names = calloc((size_t)groups * (size_t)m->ntensors + 1, sizeof *l->names);
    if (!l->specs || !l->names)
        return -1;
    for (int g = 0; g < groups; g++)
        for (int i = 0; i < m->ntensors; i++) {
            const cnnrt_tensor_spec *t = &m->tensors[i];
            const char *prefix = g == 0 ? "" : g <= blocks ? block_names[g - 1] : "best";
            size_t n = strlen(t->name) + 32;
            char *name = malloc(n);
            if (!name)
                return -1;
            if (g == 0)
                snprintf(name, n, "%s", t->name);
            else if (g <= blocks)
                snprintf(name, n, "optimizer.%s.%s", prefix, t->name);
            else
                snprintf(name, n, "best.%s", t->name);
            cnnrt_tensor_spec *s = &l->specs[l->count];
            *s = *t;
            s->name = name;
            s->offset = t->offset + (long)g * m->param_count;
            l->names[l->count++] = name;
        }
    l->floats = (long)groups * m->param_count;
    return 0;
}

/* The layout and a buffer for it, or CNNRT_EBAD (out of memory). */
static int prepare(const cnnrt_model *m, int with_best, Layout *l, float **buf, char *error,
                   size_t size)
{
    *buf = NULL;
    if (make_layout(m, with_best, l) != 0 ||
        !(*buf = malloc(sizeof(float) * (size_t)(l->floats + 1))))
        return cnnrt_fail(error, size, CNNRT_EBAD, "error: out of memory");
    return 0;
}

#ifdef __GNUC__
__attribute__((format(printf, 4, 5)))
#endif
static void
put(cnnrt_meta *meta, int *n, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    meta[*n].key = key;
    vsnprintf(meta[*n].value, sizeof meta[*n].value, fmt, ap);
    va_end(ap);
    (*n)++;
}

int cnnrt_save_checkpoint(const char *path, const cnnrt_model *m, const float *best,
                          const cnnrt_checkpoint_info *info, char *error, size_t size)
{
    Layout l;
    float *buf;
    int status = prepare(m, best != NULL, &l, &buf, error, size);
    if (status)
        goto done;
    long p = m->param_count;
    memcpy(buf, m->params, sizeof(float) * (size_t)p);
    for (int k = 0; k < m->optimizer_blocks; k++)
        memcpy(buf + (k + 1) * p, m->optimizer_state[k], sizeof(float) * (size_t)p);
    if (best)
        memcpy(buf + (m->optimizer_blocks + 1) * p, best, sizeof(float) * (size_t)p);
    cnnrt_meta meta[META_COUNT];
    int n = 0;
    put(meta, &n, "format", "%s", FORMAT);
    put(meta, &n, "model", "%.63s", m->name);
    put(meta, &n, "epoch", "%ld", info->epoch);
    put(meta, &n, "step", "%llu", info->step);
    put(meta, &n, "shuffle_state", "%" PRIu64, info->shuffle_state);
    put(meta, &n, "seed", "%llu", info->seed);
    put(meta, &n, "samples", "%ld", info->samples);
    put(meta, &n, "best_epoch", "%ld", info->best_epoch);
    put(meta, &n, "best_value", "%.17g", info->best_value);
    put(meta, &n, "wait", "%ld", info->wait);
    put(meta, &n, "stopped", "%d", info->stopped);
    status = cnnrt_save_safetensors_meta(path, l.specs, l.count, buf, meta, n, error, size);
done:
    free(buf);
    layout_free(&l);
    return status;
}

/* A whole decimal number, or -1 with a message. */
static int number(const char *path, const cnnrt_meta *meta, unsigned long long *out, char *error,
                  size_t size)
{
    char *end;
    const char *v = meta->value;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || *v == '-')
        return cnnrt_fail(error, size, CNNRT_EBAD,
                          "%s: error: the metadata's '%s' is not a whole number: '%s'", path,
                          meta->key, v);
    *out = x;
    return 0;
}

int cnnrt_read_checkpoint(const char *path, const cnnrt_model *m, int with_best,
                          cnnrt_checkpoint *ck, char *error, size_t size)
{
    static const char *const keys[META_COUNT] = {"format",        "model", "epoch",   "step",
                                                 "shuffle_state", "seed",  "samples", "best_epoch",
                                                 "best_value",    "wait",  "stopped"};
    cnnrt_meta meta[META_COUNT];
    for (int k = 0; k < META_COUNT; k++)
        meta[k].key = keys[k];
    Layout l;
    float *buf;
    int status = prepare(m, with_best, &l, &buf, error, size);
    if (status)
        goto done;
    status = cnnrt_load_safetensors_meta(path, l.specs, l.count, buf, l.floats, meta, META_COUNT,
                                         error, size);
    if (status)
        goto done;
    status = CNNRT_EBAD;
    if (strcmp(meta[0].value, FORMAT) != 0) {
        cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: the format is '%s', not '%s'", path,
                   meta[0].value, FORMAT);
        goto done;
    }
    if (strcmp(meta[1].value, m->name) != 0) {
        cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: a checkpoint of model '%s', not '%s'", path,
                   meta[1].value, m->name);
        goto done;
    }
    unsigned long long v[META_COUNT] = {0};
    for (int k = 2; k < META_COUNT; k++) {
        if (k == 8)
            continue; /* best_value is a real number */
        if (number(path, &meta[k], &v[k], error, size) != 0)
            goto done;
    }
    char *end;
    double best_value = strtod(meta[8].value, &end);
    if (!meta[8].value[0] || *end) {
        cnnrt_fail(error, size, CNNRT_EBAD,
                   "%s: error: the metadata's 'best_value' is not a number", path);
        goto done;
    }
    ck->info = (cnnrt_checkpoint_info){.epoch = (long)v[2],
                                       .step = v[3],
                                       .shuffle_state = v[4],
                                       .seed = v[5],
                                       .samples = (long)v[6],
                                       .best_epoch = (long)v[7],
                                       .best_value = best_value,
                                       .wait = (long)v[9],
                                       .stopped = v[10] != 0};
    ck->values = buf;
    buf = NULL;
    status = 0;
done:
    free(buf);
    layout_free(&l);
    return status;
}

void cnnrt_restore_checkpoint(const cnnrt_model *m, const cnnrt_checkpoint *ck, float *best)
{
    long p = m->param_count;
    memcpy(m->params, ck->values, sizeof(float) * (size_t)p);
    for (int k = 0; k < m->optimizer_blocks; k++)
        memcpy(m->optimizer_state[k], ck->values + (k + 1) * p, sizeof(float) * (size_t)p);
    if (best)
        memcpy(best, ck->values + (m->optimizer_blocks + 1) * p, sizeof(float) * (size_t)p);
    if (m->train_step)
        *m->train_step = ck->info.step;
}
