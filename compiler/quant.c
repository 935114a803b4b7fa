/* quant.c - the int8 plan (quant.h), the compiler's half of
 * tests/reference/cnnref_quant.py's QuantizedModel: the same scales, zero
 * points and errors, which calibrate_vs_reference compares. */
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

enum { QUANT_MIN = -128, QUANT_MAX = 127, QUANT_WEIGHT_MAX = 127 };

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

/* The products in each of a linear map's sums: its kernel's size over its
 * output channels.  Each is at most 255 * 127 in magnitude; 2^16 of them
 * leave room in int32 for the bias. */
enum { QUANT_MAX_INPUTS = 65536 };

static int64_t linear_map_inputs(const Layer *l)
{
    return shape_size(&l->params[0].shape) / l->out.dim[l->out.rank - 1];
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
        if (linear_map_inputs(l) > QUANT_MAX_INPUTS) {
            diag_error(diag, l->loc,
                       "'%s' cannot be quantized: each of its int32 sums adds %lld products of up "
                       "to 255 * 127, which can pass 2^31 (at most %d)",
                       l->name, (long long)linear_map_inputs(l), QUANT_MAX_INPUTS);
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

int64_t quant_kernel_size(const Model *m, const QuantPlan *plan, int i)
{
    const Layer *l = m->layers[i];
    if (plan->head >= 0 && i > plan->head)
        return 0;
    if (l->kind->quant == QUANT_LINEAR_MAP)
        return shape_size(&l->params[0].shape);
    if (l->kind->quant == QUANT_FOLDS && plan->nodes[i + 1].kind == QNODE_RANGE)
        return l->out.dim[l->out.rank - 1];
    return 0;
}

/* The int8 kernels and, per output channel, an int32 bias, multiplier
 * and shift (a batchnorm of its own: one int8 weight a channel); the
 * activations one byte each in the float plan's arena. */
static void plan_sizes(const Model *m, QuantPlan *plan)
{
    plan->param_bytes = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        int64_t kernel = quant_kernel_size(m, plan, i);
        if (kernel > 0)
            plan->param_bytes += kernel + 12 * l->out.dim[l->out.rank - 1];
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

/* ---- quantization-aware training -------------------------------------------
 * The plan's structure does not depend on the ranges, so a plan from
 * stand-in ranges says which nodes have scales of their own: those are
 * observed (a folded batchnorm's output, where its map's is not). */

static Param *observer_param(Model *m, int node)
{
    Param *p = arena_alloc(&m->arena, sizeof *p);
    memset(p, 0, sizeof *p);
    const char *name = node ? m->layers[node - 1]->name : "input";
    p->name = arena_printf(&m->arena, "%s.quantize", name);
    p->shape.rank = 1;
    p->shape.dim[0] = 3;
    p->init = INIT_ZEROS;
    p->layer = node ? node - 1 : 0;
    return p;
}

bool quant_plan_training(Diag *diag, Model *m)
{
    size_t nodes = (size_t)m->nlayers + 1;
    float *ranges = xcalloc(2 * nodes, sizeof *ranges);
    for (size_t k = 0; k < nodes; k++)
        ranges[2 * k + 1] = 1;
    Arena arena = {0};
    QuantPlan plan;
    int errors = diag_error_count(diag);
    bool ok = quant_plan(diag, m, ranges, &arena, &plan);
    free(ranges);
    if (!ok) {
        if (diag_error_count(diag) > errors)
            diag_error(diag, m->train.quantize_loc,
                       "quantize = int8: quantization-aware training needs an int8 form of "
                       "every layer (see the error above)");
        arena_free(&arena);
        return false;
    }
    m->qat.observer = arena_alloc(&m->arena, nodes * sizeof *m->qat.observer);
    m->qat.fake = arena_alloc(&m->arena, nodes * sizeof *m->qat.fake);
    m->qat.kernel = arena_alloc(&m->arena, nodes * sizeof *m->qat.kernel);
    memset(m->qat.observer, 0, nodes * sizeof *m->qat.observer);
    memset(m->qat.fake, 0, nodes * sizeof *m->qat.fake);
    memset(m->qat.kernel, 0, nodes * sizeof *m->qat.kernel);
    m->qat.observer[0] = observer_param(m, 0);
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        if (plan.nodes[i + 1].kind == QNODE_RANGE) {
            int node = plan.fold[i] >= 0 ? plan.fold[i] + 1 : i + 1;
            m->qat.observer[node] = observer_param(m, node);
        }
        m->qat.kernel[i] = l->kind->quant == QUANT_LINEAR_MAP && plan.fold[i] < 0;
    }
    /* The output is observed, for its range, but the loss sees it as it
     * is; so does what shares its storage (a flatten at the end). */
    int out = m->nlayers;
    while (out > 0 && m->layers[out - 1]->kind->trains_as_identity &&
           m->layers[out - 1]->kind->trains_as_identity(m->layers[out - 1]))
        out = m->layers[out - 1]->srcs[0];
    for (int node = 0; node < m->nlayers; node++)
        m->qat.fake[node] = m->qat.observer[node] != NULL && node != out;
    arena_free(&arena);
    return true;
}

/* ---- the int8 constants ----------------------------------------------------
 * In float64, operation for operation as the reference computes them, so
 * that every int8 weight, bias and multiplier is the reference's. */

QuantMultiplier quant_multiplier(double m)
{
    QuantMultiplier q = {0, 0};
    if (m == 0 || m != m)
        return q;
    if (isinf(m)) /* scales that underflowed (ranges of denormals): the largest there is */
        return (QuantMultiplier){INT32_MAX, 127};
    int shift;
    double fraction = frexp(m, &shift);
    double r = round_half_away(fraction * 2147483648.0);
    if (r == 2147483648.0) {
        r /= 2;
        shift++;
    }
    if (shift < -31)
        return q;
    q.multiplier = (int32_t)r;
    q.shift = shift;
    return q;
}

static int32_t saturate_int32(double v)
{
    if (v != v) /* 0 / 0, where the scales underflowed */
        return 0;
    return v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

/* gamma / sqrt(variance + epsilon) of a batchnorm's channel. */
static double batchnorm_gain(const Layer *bn, const float *params, int64_t ch)
{
    return (double)params[bn->params[0].offset + ch] /
           sqrt((double)params[bn->params[3].offset + ch] + bn->epsilon);
}

/* A map's float64 kernel [n / channels][channels] and bias, and the
 * channels' weight scales; its int8 kernel and int32 bias, multiplier and
 * shift into qw at the layer's places. */
static void quantize_map(QuantWeights *qw, int i, const double *kernel, int64_t n,
                         const double *bias, int64_t channels, double in_scale, double out_scale,
                         bool head)
{
    int8_t *qk = qw->weights + qw->weights_at[i];
    int32_t *qb = qw->consts + qw->consts_at[i];
    for (int64_t c = 0; c < channels; c++) {
        double peak = 0;
        for (int64_t j = c; j < n; j += channels)
            peak = fmax(peak, fabs(kernel[j]));
        double scale = peak > 0 ? peak / QUANT_WEIGHT_MAX : 1.0;
        for (int64_t j = c; j < n; j += channels) {
            double q = round_half_away(kernel[j] / scale);
            qk[j] = (int8_t)(q < -QUANT_WEIGHT_MAX  ? -QUANT_WEIGHT_MAX
                             : q > QUANT_WEIGHT_MAX ? QUANT_WEIGHT_MAX
                                                    : q);
        }
        double bias_scale = in_scale * scale;
        QuantMultiplier qm = quant_multiplier(bias_scale / out_scale);
        qb[c] = saturate_int32(round_half_away(bias[c] / bias_scale));
        qb[channels + c] = qm.multiplier;
        qb[2 * channels + c] = qm.shift;
        if (head)
            qw->head_scales[c] = bias_scale;
    }
}

/* Layer i, a conv or dense: its kernel and bias with the batchnorm that
 * folds into it (plan->fold) folded in. */
static void quantize_linear_map(const Model *m, const QuantPlan *plan, const float *params,
                                QuantWeights *qw, int i)
{
    const Layer *l = m->layers[i];
    int64_t channels = l->out.dim[l->out.rank - 1], n = shape_size(&l->params[0].shape);
    double *kernel = xmalloc(sizeof *kernel * (size_t)n);
    double *bias = xmalloc(sizeof *bias * (size_t)channels);
    for (int64_t j = 0; j < n; j++)
        kernel[j] = params[l->params[0].offset + j];
    for (int64_t c = 0; c < channels; c++)
        bias[c] = l->use_bias ? params[l->params[1].offset + c] : 0.0;
    if (plan->fold[i] >= 0) {
        const Layer *bn = m->layers[plan->fold[i]];
        for (int64_t c = 0; c < channels; c++) {
            double g = batchnorm_gain(bn, params, c);
            for (int64_t j = c; j < n; j += channels)
                kernel[j] *= g;
            bias[c] = (bias[c] - (double)params[bn->params[2].offset + c]) * g +
                      (double)params[bn->params[1].offset + c];
        }
    }
    const QuantNode *in = &plan->nodes[l->srcs[0]], *out = &plan->nodes[i + 1];
    quantize_map(qw, i, kernel, n, bias, channels, in->scale, out->scale, i == plan->head);
    free(kernel);
    free(bias);
}

/* A batchnorm of its own: the per-channel map gain * x + (beta - mean * gain). */
static void quantize_batchnorm(const Model *m, const QuantPlan *plan, const float *params,
                               QuantWeights *qw, int i)
{
    const Layer *bn = m->layers[i];
    int64_t channels = bn->out.dim[bn->out.rank - 1];
    double *gain = xmalloc(sizeof *gain * (size_t)channels);
    double *shift = xmalloc(sizeof *shift * (size_t)channels);
    for (int64_t c = 0; c < channels; c++) {
        gain[c] = batchnorm_gain(bn, params, c);
        shift[c] = (double)params[bn->params[1].offset + c] -
                   (double)params[bn->params[2].offset + c] * gain[c];
    }
    quantize_map(qw, i, gain, channels, shift, channels, plan->nodes[bn->srcs[0]].scale,
                 plan->nodes[i + 1].scale, false);
    free(gain);
    free(shift);
}

int64_t quant_padded_channels(int64_t channels)
{
    return (channels + QUANT_LANES - 1) / QUANT_LANES * QUANT_LANES;
}

/* The two vector biases of layer i's channels: its int32 bias less the
 * input's zero point (plus 128 for the unsigned form) times the sum of
 * the channel's weights, in wrapping int32 arithmetic as the kernels sum
 * (the final sum is the scalar code's, which fits). */
static void vector_biases(const Model *m, const QuantPlan *plan, QuantWeights *qw, int i)
{
    const Layer *l = m->layers[i];
    int64_t channels = l->out.dim[l->out.rank - 1], padded = quant_padded_channels(channels);
    int64_t n = quant_kernel_size(m, plan, i);
    const int8_t *kernel = qw->weights + qw->weights_at[i];
    const int32_t *bias = qw->consts + qw->consts_at[i];
    int32_t *out = qw->vbias + qw->vbias_at[i];
    int64_t zero = plan->nodes[l->srcs[0]].zero;
    for (int64_t c = 0; c < channels; c++) {
        int64_t sum = 0;
        for (int64_t j = c; j < n; j += channels)
            sum += kernel[j];
        out[c] = (int32_t)(uint32_t)((uint64_t)(int64_t)bias[c] - (uint64_t)((128 + zero) * sum));
        out[padded + c] = (int32_t)(uint32_t)((uint64_t)(int64_t)bias[c] - (uint64_t)(zero * sum));
    }
}

/* Each linear map's packed kernel and vector biases, where its kind has a
 * vector form for it. */
static void pack_vectors(const Model *m, const QuantPlan *plan, Arena *arena, QuantWeights *qw)
{
    qw->packed_at = arena_alloc(arena, sizeof *qw->packed_at * (size_t)(m->nlayers + 1));
    qw->vbias_at = arena_alloc(arena, sizeof *qw->vbias_at * (size_t)(m->nlayers + 1));
    qw->nvbias = QUANT_LANES; /* the least int32s first */
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        int64_t size =
            l->kind->quant == QUANT_LINEAR_MAP && l->kind->packed_size_q && qw->weights_at[i] >= 0
                ? l->kind->packed_size_q(l)
                : 0;
        qw->packed_at[i] = qw->vbias_at[i] = -1;
        if (size == 0)
            continue;
        qw->packed_at[i] = qw->npacked;
        qw->vbias_at[i] = qw->nvbias;
        qw->npacked += size;
        qw->nvbias += 2 * quant_padded_channels(l->out.dim[l->out.rank - 1]);
    }
    qw->packed = arena_alloc(arena, (size_t)qw->npacked + 1);
    qw->vbias = arena_alloc(arena, sizeof *qw->vbias * (size_t)(qw->nvbias + 1));
    memset(qw->packed, 0, (size_t)qw->npacked + 1);
    memset(qw->vbias, 0, sizeof *qw->vbias * (size_t)(qw->nvbias + 1));
    for (int k = 0; k < QUANT_LANES; k++)
        qw->vbias[k] = INT32_MIN;
    for (int i = 0; i < m->nlayers; i++)
        if (qw->packed_at[i] >= 0) {
            const Layer *l = m->layers[i];
            l->kind->pack_q(l, qw->weights + qw->weights_at[i], qw->packed + qw->packed_at[i]);
            vector_biases(m, plan, qw, i);
        }
}

void quant_weights(const Model *m, const QuantPlan *plan, const float *params, Arena *arena,
                   QuantWeights *qw)
{
    memset(qw, 0, sizeof *qw);
    qw->weights_at = arena_alloc(arena, sizeof *qw->weights_at * (size_t)(m->nlayers + 1));
    qw->consts_at = arena_alloc(arena, sizeof *qw->consts_at * (size_t)(m->nlayers + 1));
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        qw->weights_at[i] = qw->consts_at[i] = -1;
        int64_t kernel = quant_kernel_size(m, plan, i);
        if (kernel == 0)
            continue;
        qw->weights_at[i] = qw->nweights;
        qw->consts_at[i] = qw->nconsts;
        qw->nweights += kernel;
        qw->nconsts += 3 * l->out.dim[l->out.rank - 1];
    }
    qw->weights = arena_alloc(arena, (size_t)qw->nweights + 1);
    qw->consts = arena_alloc(arena, sizeof *qw->consts * (size_t)(qw->nconsts + 1));
    if (plan->head >= 0) {
        const Layer *h = m->layers[plan->head];
        qw->head_scales =
            arena_alloc(arena, sizeof *qw->head_scales * (size_t)h->out.dim[h->out.rank - 1]);
    }
    for (int i = 0; i < m->nlayers; i++)
        if (qw->weights_at[i] >= 0) {
            if (m->layers[i]->kind->quant == QUANT_LINEAR_MAP)
                quantize_linear_map(m, plan, params, qw, i);
            else
                quantize_batchnorm(m, plan, params, qw, i);
        }
    pack_vectors(m, plan, arena, qw);
}
