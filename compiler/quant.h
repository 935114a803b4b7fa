/* quant.h - the int8 plan of a checked model (docs/int8.md): from the
 * calibrated ranges, each node's scale and zero point, which layers keep
 * their input's scale, which batchnorm folds into the map before it, and
 * which map's int32 sums are a float output.  An error names the layer
 * that has no int8 form and why. */
#ifndef CNNGEN_QUANT_H
#define CNNGEN_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "graph.h"

/* How a layer kind computes on int8 values (LayerKind.quant). */
typedef enum {
    QUANT_NONE,       /* no int8 form: a model with it is not quantized */
    QUANT_LINEAR_MAP, /* conv, dense: int32 sums requantized per output channel */
    QUANT_SAME_SCALE, /* max pooling, upsampling, flatten, dropout: the int8 values
                       * themselves, in the input's scale */
    QUANT_AVERAGE,    /* average pooling: rounded int32 means, in the input's scale */
    QUANT_CLAMP,      /* relu and linear layers: a clamp at the zero point */
    QUANT_RESCALE,    /* add, concat, leaky_relu: the input(s) rescaled to the output's
                       * range */
    QUANT_FOLDS,      /* batchnorm: folds into the linear map before it, or where it
                       * cannot, a per-channel map of its own */
    QUANT_FLOAT_HEAD, /* softmax, sigmoid, tanh: in float, at the model's end only */
} QuantForm;

/* Where a node's scale and zero point come from. */
typedef enum {
    QNODE_RANGE,  /* its own calibrated range */
    QNODE_INPUT,  /* its input's (QUANT_SAME_SCALE, _AVERAGE, _CLAMP) */
    QNODE_FOLDED, /* a batchnorm folded into the map right before it: that map's */
    QNODE_FLOAT,  /* the float output: int32 sums (the head) or their activation */
} QuantNodeKind;

typedef struct {
    QuantNodeKind kind;
    double scale;
    int zero;
} QuantNode;

typedef struct {
    QuantNode *nodes; /* node 0 the input, node i + 1 layer i's output */
    int head;         /* the layer whose int32 sums are the float output, or -1 */
    int *fold;        /* per layer i: the batchnorm folded into it (i + 1), or -1 */
    long long param_bytes, activation_bytes;
} QuantPlan;

/* A real multiplier m as q / 2^31 * 2^shift, |q| in [2^30, 2^31)
 * (TFLite's QuantizeMultiplier); 0 gives (0, 0). */
typedef struct {
    int32_t multiplier;
    int shift;
} QuantMultiplier;

QuantMultiplier quant_multiplier(double m);

/* The int8 program's constants, from the float weights: each linear map's
 * (and each batchnorm of its own's) int8 kernel, per output channel
 * symmetric, with the batchnorm after it folded in; and per output
 * channel its int32 bias, requantization multiplier and shift, one run of
 * each.  The float head's per-channel scales (input scale times weight
 * scale) turn its int32 sums into floats. */
typedef struct {
    int8_t *weights;
    int64_t nweights;
    int32_t *consts;
    int64_t nconsts;
    int64_t *weights_at; /* per layer: where its kernel starts in weights, or -1 */
    int64_t *consts_at;  /* per layer: bias[C], multiplier[C], shift[C] in consts, or -1 */
    double *head_scales; /* per channel of the float head's output */
    /* The vector kernels' (docs/int8.md, LayerKind.pack_q): each linear
     * map with a vector form gets its kernel packed four inputs to a lane
     * and, per output channel (padded to a multiple of QUANT_LANES, the
     * padding zero), two int32 biases with the input's zero point folded
     * in: bias - (128 + zero) * sum(w) for sums of (x + 128) * w (VNNI's
     * unsigned bytes), then bias - zero * sum(w) for sums of x * w. */
    int8_t *packed;
    int64_t npacked;
    int64_t *packed_at; /* per layer: where its packed kernel starts, or -1 */
    int32_t *vbias;     /* first QUANT_LANES of INT32_MIN: where a max of sums starts */
    int64_t nvbias;
    int64_t *vbias_at; /* per layer: its two runs of padded channels, or -1 */
} QuantWeights;

/* The widest int32 vector of the kernels: a layer's channels are padded
 * to a multiple of it in the packed kernel and the vector biases. */
enum { QUANT_LANES = 16 };
int64_t quant_padded_channels(int64_t channels);

/* The int8 kernel's elements of layer i: a linear map's kernel, a
 * batchnorm of its own's one weight a channel; 0: it has no constants. */
int64_t quant_kernel_size(const Model *m, const QuantPlan *plan, int i);

/* The constants of the plan's model from its float parameters (the
 * parameter block, model order); they live in arena. */
void quant_weights(const Model *m, const QuantPlan *plan, const float *params, Arena *arena,
                   QuantWeights *qw);

/* The scale and zero point of a tensor whose values span [lo, hi]
 * (widened to hold 0). */
void quant_activation_params(double lo, double hi, double *scale, int *zero);

/* The plan from ranges[2 * node], ranges[2 * node + 1] (min, max of each
 * node, as PROG calibrate saves them); false after reporting why a layer
 * cannot be quantized.  The plan's arrays live in arena. */
bool quant_plan(Diag *diag, const Model *m, const float *ranges, Arena *arena, QuantPlan *plan);

/* quantize = int8 in the train block: which nodes quantization-aware
 * training observes and fake-quantizes, and which kernels, as the int8
 * plan quantizes them (Model.qat; each observer a parameter
 * "NAME.quantize" [min, max, seen], which graph_plan_params places after
 * the layers' own).  False after reporting why the model cannot be
 * quantized. */
bool quant_plan_training(Diag *diag, Model *m);

#endif
