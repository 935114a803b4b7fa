/* graph.h - the checked model: layers with fixed shapes, their parameter
 * tensors, the train settings, and the static memory plan.
 *
 * Node 0 is the model input; node i (1-based) is the output of layers[i-1].
 * Every tensor is channels-last with the batch axis left out.
 */
#ifndef CNNGEN_GRAPH_H
#define CNNGEN_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "ast.h"
#include "diag.h"
#include "util.h"

enum { SHAPE_MAX_RANK = 5 }; /* conv3d kernels: [kd, kh, kw, cin, cout] */
#define SHAPE_MAX_ELEMENTS INT64_C(2147483647)
/* Generated code keeps parameters, activations and training memory in
 * static arrays; past 2 GB they do not link (x86-64's and AArch64's
 * default code models address static data with 32-bit offsets). */
#define MODEL_MAX_STATIC_BYTES INT64_C(2000000000)
#define MODEL_MAX_PARAMS (MODEL_MAX_STATIC_BYTES / 4)
/* Channels of the layers that keep per-channel arrays on the stack
 * (LayerKind.channel_scratch): at most 512 KB with a conv's block of 8
 * positions, within any thread's stack. */
#define MODEL_MAX_CHANNELS INT64_C(16384)

typedef struct {
    int rank;
    int64_t dim[SHAPE_MAX_RANK];
} Shape;

/* The number of elements, saturated at INT64_MAX. */
int64_t shape_size(const Shape *s);
/* "[94, 94, 10]" */
void shape_format(const Shape *s, StrBuf *out);
bool shape_equal(const Shape *a, const Shape *b);

typedef enum {
    ACT_NONE, /* the layer has no activation (pooling, flatten, ...) */
    ACT_LINEAR,
    ACT_RELU,
    ACT_SIGMOID,
    ACT_TANH,
    ACT_SOFTMAX,
    ACT_LEAKY_RELU,
} Activation;

extern const char *const activation_names[]; /* indexed by Activation */

typedef enum {
    INIT_GLOROT_UNIFORM,
    INIT_GLOROT_NORMAL,
    INIT_HE_UNIFORM,
    INIT_HE_NORMAL,
    INIT_LECUN_NORMAL,
    INIT_ZEROS,
    INIT_ONES,
} InitKind;

extern const char *const init_names[]; /* indexed by InitKind */

/* One weights tensor: NAME.kernel, NAME.bias, NAME.gamma, ... */
typedef struct {
    const char *name; /* "conv2d_1.kernel" */
    Shape shape;
    bool trainable;
    InitKind init;
    int64_t fan_in, fan_out; /* Keras' fans of the channels-last kernel */
    const double *literal;   /* values written in the model, or NULL */
    int64_t offset;          /* in the parameter block: model order, in floats */
    int layer;               /* the index of its layer in Model.layers */
} Param;

/* A list literal (weights=, bias=[...]): its nested shape and values. */
typedef struct {
    Loc loc;
    Shape shape;
    double *values;
    int64_t count;
    bool given;
} Literal;

typedef enum { PAD_VALID, PAD_SAME, PAD_CAUSAL, PAD_EXPLICIT } PadMode;

typedef struct LayerKind LayerKind;

enum { LAYER_MAX_PARAMS = 4, LAYER_MAX_EPILOGUE = 4 };

typedef struct Layer {
    const LayerKind *kind;
    const char *name;  /* the label, or kind_N */
    const char *label; /* NULL without one */
    Loc loc;           /* of the layer's kind in the source */
    int *srcs;         /* input nodes: the current tensor, then merge labels */
    int nsrcs;
    Shape out;
    Param params[LAYER_MAX_PARAMS];
    int nparams;
    Activation activation; /* final activation of conv*, dense and activation layers */
    bool linear_explicit;  /* activation= was written */
    bool expand;           /* reads [n] / [H, W] / [D, H, W] as one channel */

    /* Sliding windows (conv*, depthwise, pools): one entry per spatial axis. */
    int nd;
    int64_t kernel[3], stride[3], dilation[3];
    PadMode padding;
    int64_t pad_explicit[3];
    int64_t pad_before[3], pad_after[3];
    int64_t cin;

    int64_t filters, multiplier, units;
    int perm[SHAPE_MAX_RANK - 1]; /* permute: output axis a is input axis perm[a] */
    int nperm;
    bool use_bias, trainable;
    InitKind init;
    Literal weights, bias_values;
    double momentum, epsilon; /* batchnorm */
    double rate;              /* dropout */
    double alpha;             /* leaky_relu */
    Arg *label_args;          /* add, concat: the label arguments */

    /* The memory plan (graph_plan_memory): where the output lives. */
    int64_t arena_offset; /* in floats; -1: the caller's output, -2: its input */
    int alias_of;         /* node whose storage this output shares, or -1 */
    /* Inference fusion: element-wise layers run in their producer's
     * epilogue (the producer writes their output; they have no code). */
    int epilogue[LAYER_MAX_EPILOGUE]; /* nodes of the fused followers, in order */
    int nepilogue;
    bool fused; /* this layer runs in its producer's epilogue */
} Layer;

typedef enum { LOSS_DEFAULT, LOSS_MSE, LOSS_MAE, LOSS_BCE, LOSS_CROSSENTROPY } Loss;
typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } OptimizerKind;
typedef enum { METRIC_ACCURACY, METRIC_MAE, METRIC_RMSE } Metric;

extern const char *const loss_names[];   /* indexed by Loss */
extern const char *const metric_names[]; /* indexed by Metric */
/* as the train block spells them; NULL-terminated */
extern const char *const optimizer_names[]; /* indexed by OptimizerKind */
extern const char *const schedule_names[];  /* indexed by ScheduleKind */
extern const char *const augment_names[];   /* indexed by AugmentKind */

/* The learning rate over a run (the runtime computes it: cnnrt.h's
 * cnnrt_schedule, PyTorch's schedulers). */
typedef enum {
    SCHEDULE_NONE,
    SCHEDULE_STEP_DECAY,  /* StepLR */
    SCHEDULE_EXPONENTIAL, /* ExponentialLR */
    SCHEDULE_COSINE,      /* CosineAnnealingLR */
    SCHEDULE_ONE_CYCLE    /* OneCycleLR, without momentum cycling */
} ScheduleKind;

typedef struct {
    ScheduleKind kind;
    bool per_step;                                   /* counts batches, else epochs */
    int64_t every;                                   /* step_decay */
    int64_t length;                                  /* cosine's T_max; 0: to the end */
    double gamma, min_lr;                            /* step_decay, exponential; cosine */
    double max_lr, pct_start, div_factor, final_div; /* one_cycle (max_lr 0: the lr) */
    int64_t warmup;                                  /* LinearLR before it; 0: none */
    double warmup_start;                             /* LinearLR's start_factor */
} Schedule;

typedef enum {
    AUGMENT_SHIFT,
    AUGMENT_CROP,
    AUGMENT_FLIP,
    AUGMENT_NOISE,
    AUGMENT_SCALE
} AugmentKind;
enum { AUGMENT_MAX = 8 };

typedef struct {
    AugmentKind kind;
    double amount; /* shift/crop: pixels; noise: stddev; scale: the range */
} Augment;

typedef struct {
    Loss loss;
    OptimizerKind optimizer;
    double lr, momentum, weight_decay, beta1, beta2, epsilon;
    bool nesterov;
    int64_t batch, epochs, seed;
    Metric metrics[3];
    int nmetrics;
    Schedule schedule;
    double validation_split; /* 0: none */
    int64_t patience;        /* early stopping; 0: none */
    int monitor;             /* 0: loss, 1 + k: metrics[k]; + MONITOR_VAL for val_ */
    bool monitor_given;
    Augment augment[AUGMENT_MAX];
    int naugment;
    bool quantize; /* quantize = int8: quantization-aware training (docs/int8.md) */
    Loc quantize_loc;
} TrainConfig;

enum { MONITOR_VAL = 8 };

/* The static memory of training (graph_plan_training), in floats from the
 * start of the training arena.  Per-node buffers hold a whole batch,
 * [batch][node size]; nothing is shared between nodes, since the backward
 * pass reads what the forward pass saved.  -1: the node has none. */
typedef struct {
    int64_t batch;
    int *owner;     /* per node: the node whose storage it shares (flatten, identities) */
    int64_t *act;   /* per node: its values (node 0, the input, is the caller's) */
    int64_t *grad;  /* per node: the loss's gradient with respect to it */
    int64_t *pre;   /* per node: a conv or dense layer's values before its activation */
    int64_t *mask;  /* per node: a mask (dropout's scaled keep mask) */
    int64_t *stats; /* per node: per-channel statistics (batchnorm's) */
    int64_t *wt;    /* per node: its kernel transposed to [k..., cout, cin] (conv) */
    /* Quantization-aware training (Model.qat): per node, its fake-quantized
     * values, which the layers after it read, and its observer's batch
     * minimum and maximum, scale, 1 / scale and zero point (5 floats),
     * then each sample's minimum and maximum (2 floats a sample); per
     * node of a linear map, its fake-quantized kernel (which the layers
     * read in place of the kernel), then per output channel its scale and
     * 1 / scale. */
    int64_t *fq, *observe, *wq;
    int64_t loss;       /* batch floats: each sample's loss */
    int64_t param_grad; /* PARAM_COUNT floats, at the parameters' offsets */
    int64_t state[2];   /* optimizer state: SGD's velocity; Adam's m and v */
    int64_t hyper;      /* scalars set before each step (Adam's step size) */
    int64_t floats;     /* the whole arena */
    int64_t activation_floats, gradient_floats, state_floats; /* for --summary */
} TrainPlan;

typedef struct {
    const char *name;
    const char *filename;
    Shape input; /* as declared */
    int input_line;
    Layer **layers;
    int nlayers;
    TrainConfig train;
    bool has_train;
    Loc train_loc;
    Param **params; /* every parameter tensor, in model order (graph_plan_params) */
    int nparams;
    int64_t param_floats; /* the parameter block: all of them, end to end */
    int64_t arena_floats; /* static activation memory for one sample */
    /* predict_batch's blocks (graph_plan_blocks): how many samples a
     * block holds (0: no layer computes blocks, predict_batch runs sample
     * by sample) and the floats from one sample's arena to the next's. */
    int block_samples;
    int64_t block_stride;
    TrainPlan tp; /* static training memory */
    /* quantize = int8 in the train block (quant_plan_training): per node,
     * the parameter [min, max, seen] of its observer, or NULL where the
     * int8 plan has no range of its own; per layer, whether its kernel is
     * fake-quantized (a linear map without a batchnorm folded in); and
     * per node, whether the layers after it read it fake-quantized (all
     * observed nodes but the model's output). */
    struct {
        Param **observer;
        bool *kernel, *fake;
    } qat;
    Arena arena; /* owns everything above */
} Model;

const Shape *model_node_shape(const Model *m, int node);
/* The node that owns node's storage (through aliases and fusion). */
int model_storage_owner(const Model *m, int node);
const Shape *model_output_shape(const Model *m);
Activation model_final_activation(const Model *m);

int64_t layer_param_count(const Layer *l, bool trainable);
int64_t model_param_count(const Model *m, bool trainable);
/* The static memory of the generated code: parameters and activations, and
 * with training its memory (graph_plan_memory and _training first). */
int64_t model_static_bytes(const Model *m, bool training);
/* Forward FLOPs of one sample: 2 per multiply-add of conv and dense layers. */
__int128 layer_flops(const Layer *l, const Model *m);
__int128 model_flops(const Model *m);
/* A small model: so few FLOPs (and floats of activations) a sample that
 * the C backend writes it as one version, every layer inlined
 * (emit_small_model); what lowers a layer of one may not depend on it. */
enum { MODEL_SMALL_FLOPS = 2000, MODEL_SMALL_ACTIVATIONS = 256 };

/* Plan the static activation arena for inference: element-wise layers
 * that directly follow a conv or dense layer (whose output nothing else
 * reads) are fused into its epilogue; every remaining intermediate output
 * gets an offset, and buffers whose lifetimes do not overlap share space.
 * The node whose storage is the model output is written to the caller's
 * buffer. */
void graph_plan_memory(Model *m);

/* Whether a layer's parameters pass the first-level cache (8,192 floats):
 * read once per sample they come from further out, unless samples share
 * them (dense's block lowering, in predict_batch and training). */
bool layer_params_outgrow_cache(const Layer *l);
/* Whether layer i computes a block of samples at once in predict_batch
 * (its kind has a block lowering, and its parameters do not stay in the
 * first-level cache from one sample to the next). */
bool layer_runs_in_blocks(const Model *m, int i);
/* predict_batch's blocks (Model.block_samples, block_stride), after
 * graph_plan_memory: each sample of a block has an arena of its own, so
 * the layers that compute whole blocks read their parameters once per
 * block. */
void graph_plan_blocks(Model *m);

/* Plan the training arena for the train block's batch (TrainPlan). */
void graph_plan_training(Model *m);
/* Whether a training step needs the gradient of node (its storage is
 * not the model input). */
bool train_needs_grad(const Model *m, int node);
/* The node holding the final layer's logits when the loss is computed
 * from them (crossentropy after softmax, binary crossentropy after
 * sigmoid), with *pre set when they are that layer's pre-activation;
 * -1 otherwise. */
int train_logits_node(const Model *m, bool *pre);

/* The flat parameter table (Model.params) and each tensor's offset in
 * the parameter block. */
void graph_plan_params(Model *m);

void model_free(Model *m);

#endif
