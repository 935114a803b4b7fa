/* quant.c - the int8 plan (quant.h), the compiler's half of
 * tests/reference/cnnref_quant.py's QuantizedModel: the same scales, zero
 * points and errors, which calibrate_vs_reference compares. */
#include "quant.h"

#include <math.h>

#include "layers/layers.h"

enum { QUANT_MIN = -128, QUANT_MAX = 127 };

/* C's round(): halves away from zero, as TFLite rounds. */
static double round_half_away(double x)
{
    return x < 0 ? -floor(-x + 0.5) : floor(x + 0.5);
}

void quant_activation_params(double lo, double hi, double *scale, int *zero)
{
    lo = lo < 0 ? lo : 0;
    hi = hi > 0 ? hi : 0;
    if (hi == lo) {
        *scale = 1;
        *zero = 0;
        return;
    }
    *scale = (hi - lo) / (QUANT_MAX - QUANT_MIN);
    double z = round_half_away(QUANT_MIN - lo / *scale);
    *zero = z < QUANT_MIN ? QUANT_MIN : z > QUANT_MAX ? QUANT_MAX : (int)z;
}

static bool is_float_head_kind(const Layer *l)
{
    return l->kind->quant == QUANT_FLOAT_HEAD;
}

static bool float_activation(Activation a)
{
    return a == ACT_SOFTMAX || a == ACT_SIGMOID || a == ACT_TANH;
}

/* A softmax, sigmoid or tanh layer anywhere but after the last map. */
static void report_float_only(Diag *diag, const Layer *l)
{
    diag_error(diag, l->loc,
               "'%s' cannot be quantized: %s is computed in float, so only at the model's end, "
               "right after a conv or dense layer with a linear activation",
               l->name, l->kind->name);
}

/* The layer whose int32 sums are the output: the last, a linear map with
 * a float activation; or the one before a last float activation layer,
 * a linear map with a linear activation that only it reads. */
static bool find_head(Diag *diag, const Model *m, int *head)
{
    *head = -1;
    int last = m->nlayers - 1;
    if (last < 0)
        return true;
    const Layer *l = m->layers[last];
    if (l->kind->linear_map && float_activation(l->activation)) {
        *head = last;
        return true;
    }
    if (!is_float_head_kind(l))
        return true;
    const Layer *before = last > 0 ? m->layers[last - 1] : NULL;
    if (before && before->kind->linear_map && before->activation == ACT_LINEAR && l->nsrcs == 1 &&
        l->srcs[0] == last) {
        *head = last - 1;
        return true;
    }
    report_float_only(diag, l);
    return false;
}

/* Whether layer k is the only reader of node. */
static bool read_only_by(const Model *m, int node, int k)
{
    for (int j = 0; j < m->nlayers; j++)
        for (int s = 0; s < m->layers[j]->nsrcs; s++)
            if (j != k && m->layers[j]->srcs[s] == node)
                return false;
    return true;
}

/* A batchnorm folds into the linear map right before it when the map's
 * activation is linear and the batchnorm is the only reader of its output. */
static void find_folds(const Model *m, int *fold)
{
    for (int i = 0; i < m->nlayers; i++)
        fold[i] = -1;
    for (int k = 1; k < m->nlayers; k++) {
        const Layer *bn = m->layers[k], *map = m->layers[k - 1];
        if (bn->kind->quant == QUANT_FOLDS && map->kind->linear_map &&
            map->activation == ACT_LINEAR && bn->srcs[0] == k && read_only_by(m, k, k))
            fold[k - 1] = k;
    }
}

static QuantNode node_from_range(const float *ranges, int node)
{
    QuantNode q = {QNODE_RANGE, 1, 0};
    quant_activation_params(ranges[2 * node], ranges[2 * node + 1], &q.scale, &q.zero);
    return q;
}

/* Layer i's node, or false after the error. */
static bool plan_layer(Diag *diag, const Model *m, const float *ranges, QuantPlan *plan, int i)
{
    const Layer *l = m->layers[i];
    QuantNode in = plan->nodes[l->srcs[0]];
    QuantNode *out = &plan->nodes[i + 1];
    if (plan->head >= 0 && i > plan->head) {
        *out = (QuantNode){QNODE_FLOAT, 1, 0};
        return true;
    }
    switch (l->kind->quant) {
    case QUANT_LINEAR_MAP:
        if (i != plan->head && l->activation != ACT_LINEAR && l->activation != ACT_RELU) {
            diag_error(diag, l->loc,
                       "'%s' cannot be quantized: its activation %s is not a clamp (int8 has "
                       "relu and linear; sigmoid, tanh and softmax only at the model's end)",
                       l->name, activation_names[l->activation]);
            return false;
        }
        if (i == plan->head)
            *out = (QuantNode){QNODE_FLOAT, 1, 0};
        else
            *out = node_from_range(ranges, plan->fold[i] >= 0 ? plan->fold[i] + 1 : i + 1);
        return true;
    case QUANT_SAME_SCALE:
    case QUANT_AVERAGE:
    case QUANT_CLAMP: *out = (QuantNode){QNODE_INPUT, in.scale, in.zero}; return true;
    case QUANT_RESCALE: *out = node_from_range(ranges, i + 1); return true;
    case QUANT_FOLDS: /* or, where it cannot, a per-channel map of its own */
        *out = i > 0 && plan->fold[i - 1] == i ? (QuantNode){QNODE_FOLDED, in.scale, in.zero}
                                               : node_from_range(ranges, i + 1);
        return true;
    case QUANT_FLOAT_HEAD:
    case QUANT_NONE: break;
    }
    if (is_float_head_kind(l))
        report_float_only(diag, l);
    else
        diag_error(diag, l->loc, "'%s' cannot be quantized: %s has no int8 form yet (docs/int8.md)",
                   l->name, l->kind->name);
    return false;
}

/* The int8 kernels and, per output channel, an int32 bias, multiplier
 * and shift (a batchnorm of its own: one int8 weight a channel); the
 * activations one byte each in the float plan's arena. */
static void plan_sizes(const Model *m, QuantPlan *plan)
{
    plan->param_bytes = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        int64_t channels = l->out.dim[l->out.rank - 1];
        if (l->kind->quant == QUANT_LINEAR_MAP)
            plan->param_bytes += shape_size(&l->params[0].shape) + 12 * channels;
        else if (l->kind->quant == QUANT_FOLDS && plan->nodes[i + 1].kind == QNODE_RANGE)
            plan->param_bytes += 13 * channels;
    }
    plan->activation_bytes = m->arena_floats;
}

bool quant_plan(Diag *diag, const Model *m, const float *ranges, Arena *arena, QuantPlan *plan)
{
    plan->nodes = arena_alloc(arena, sizeof *plan->nodes * (size_t)(m->nlayers + 1));
    plan->fold = arena_alloc(arena, sizeof *plan->fold * (size_t)(m->nlayers + 1));
    if (!find_head(diag, m, &plan->head))
        return false;
    find_folds(m, plan->fold);
    plan->nodes[0] = node_from_range(ranges, 0);
    for (int i = 0; i < m->nlayers; i++)
        if (!plan_layer(diag, m, ranges, plan, i))
            return false;
    plan_sizes(m, plan);
    return true;
}
