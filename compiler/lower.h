/* lower.h - from the checked model to the loop IR (inference).
 *
 * Every layer becomes one IR function; its family's lowering (in
 * compiler/layers/) writes the loops.  The views each function gets
 * come from the memory plan: the model input, the arena at the planned
 * offset, the caller's output for the last layer, and the parameters at
 * their offsets in the parameter block (model order, channels-last).
 */
#ifndef CNNGEN_LOWER_H
#define CNNGEN_LOWER_H

#include "graph.h"
#include "ir.h"
#include "quant.h"

/* An int8 function's context (lower_q.c): the plan, the constants, and
 * the views of its layer's requantization multiplier and shift per
 * channel (-1: none). */
typedef struct {
    const QuantPlan *plan;
    const QuantWeights *qw;
    int multiplier, shift;
    /* A max pooling layer right after, which the layer's vector kernels
     * may take in (the max of the sums, requantized once), or -1; `pooled`
     * says they did (the pool then has no function of its own). */
    int pool;
    bool pooled;
} LowerQuant;

typedef struct {
    IrProgram *p;
    IrFunc *f;
    const Model *m;
    const Layer *l;
    int *in; /* a view of each source */
    const Shape **in_shape;
    int nin;
    int out;                              /* the view of the layer's output */
    int params[4];                        /* a view of each parameter tensor */
    int acc;                              /* a local array a family's lowering may make */
    int aux[2];                           /* and two more (conv's pairs: kernel and bias) */
    int epi_views[LAYER_MAX_EPILOGUE][4]; /* each fused follower's own views */
    Activation act;                       /* what the epilogue applies (training: none, see pre) */
    int nepi;                             /* fused followers (training: none) */

    /* Training functions (lower_train.c); -1 where there is none. */
    int index;        /* the layer's index; its node is index + 1 */
    int pre;          /* conv, dense: the values before the activation */
    int dout;         /* the gradient of the output (of pre, when there is one) */
    int *din;         /* the gradient of each source, added to */
    int dparams[4];   /* the gradient of each trainable parameter, added to */
    int mask;         /* dropout's scaled keep mask */
    int stats;        /* batchnorm: mean, std, and two sums, per channel */
    int wt;           /* conv: the kernel transposed to [k..., cout, cin] */
    bool logits_grad; /* dout already is the gradient of the logits (the loss made it) */

    LowerQuant *q; /* an int8 function (lower_q.c); NULL in a float one */
} LowerCtx;

/* Lower the whole model: one function per layer that computes something
 * (flatten in the middle of a model only renames its input). */
void lower_model(const Model *m, IrProgram *p);

/* Lower the int8 model (docs/int8.md): one function per layer up to the
 * float head, each computing on int8 values with int32 sums, from the
 * plan and its constants. */
void lower_model_q(const Model *m, const QuantPlan *plan, const QuantWeights *qw, IrProgram *p);

/* Lower the training step: the forward pass in training mode, the loss,
 * the backward pass and the optimizer step (the phases of ir.h), from the
 * training plan (graph.h). */
void lower_training(const Model *m, IrProgram *p);
/* A new training function for layer base->l with every view it may use:
 * its sources, output, pre-activation, their gradients, the parameters
 * and their gradients, mask and statistics.  what ends its name. */
LowerCtx lower_train_func(const LowerCtx *base, IrPhase phase, bool per_sample, const char *what);
/* Quantization-aware training (lower_qat.c; nothing without quantize =
 * int8): after node's producer, its observer and fake quantization; before
 * the producer's backward pass, the gradient where the fake quantization
 * passes it; before layer i's forward pass, its fake-quantized kernel. */
void lower_qat_forward(IrProgram *p, const Model *m, int node);
void lower_qat_backward(IrProgram *p, const Model *m, int node);
void lower_qat_kernel(IrProgram *p, const Model *m, int i);
/* The inference lowering of base's layer, as a training function of the
 * phase (the layers whose training forward pass is their inference one). */
void lower_train_forward(const LowerCtx *base, IrPhase phase);
/* y = act(pre) for a conv or dense layer's training forward pass written
 * in its own way (the layer's activation, per sample). */
void lower_train_activation(const LowerCtx *base, IrPhase phase);
/* dy * act'(x), from the activation's input x or output y. */
IrExpr *lower_activation_grad(LowerCtx *c, Activation act, float alpha, IrExpr *dy, IrExpr *x,
                              IrExpr *y);
/* Backward of softmax over rows of `channels`: g = y * (g - sum(g*y)), in place. */
void lower_softmax_grad(LowerCtx *c, IrBlock *b, int grad, int y, int64_t positions,
                        int64_t channels);

/* Block functions (PHASE_PREDICT_BLOCK) compute their samples in groups
 * of this many (a register block over the samples), then the rest one
 * at a time. */
enum { LOWER_BLOCK_GROUP = 4 };
/* A block function's views of each sample's values: their sample strides
 * (the caller's input and output, or a sample's arena in the block). */
void lower_block_strides(LowerCtx *c);
/* Index ix of sample s (a loop variable) in view v of a block function. */
IrIndex lower_sample_index(const LowerCtx *c, int v, int s, IrIndex ix);

/* Names in generated code: "x", "x1", "x2"... for source i (stem "x" or
 * "dx"); a parameter's (its kind's param_names: "w", "b"; batchnorm's
 * "gamma", "beta", "mean", "var"); a function's comment: kind, name, line, shapes (with `what`
 * for a training function, else the fused followers). */
const char *lower_source_name(Arena *a, const char *stem, int i);
const char *lower_param_name(const Layer *l, int k);
char *lower_layer_comment(Arena *a, const Model *m, const Layer *l, const char *what);

/* Shared by the families. */
IrExpr *lower_activation(LowerCtx *c, Activation act, float alpha, IrExpr *x);
/* Softmax over the last axis of a view holding `positions` rows of `channels`. */
void lower_softmax(LowerCtx *c, IrBlock *b, int view, int64_t positions, int64_t channels);
/* A conv or dense layer's epilogue: its activation, then the fused
 * followers' (see graph_plan_memory); setup first, at the top of the
 * function, then the value of each output at the given channel. */
void lower_epilogue_setup(LowerCtx *c);
IrExpr *lower_epilogue(LowerCtx *c, IrExpr *v, IrIndex channel);
/* Whether the epilogue has a vector form: a float function whose
 * activation and fused followers are relu or linear.  A register block
 * then stores its vectors straight to the output, through
 * lower_epilogue_vector (the vector register's value on the way out),
 * not through an accumulator array read back element by element: gcc -O2
 * left that array in memory, its 64-byte stores read back in 32-byte
 * halves (lenet's first conv at 50% of the peak, 78% at -O3). */
bool lower_epilogue_in_vectors(const LowerCtx *c);
IrExpr *lower_epilogue_vector(LowerCtx *c, int vreg, int lanes);
/* Apply the layer's activation in place to its output (softmax or none). */
void lower_output_softmax(LowerCtx *c);
int lower_local(LowerCtx *c, const char *name, int64_t size);
/* Vector widths for n channels: the program's widest vector, halved
 * (down to 4 floats) until it divides n, or until n fills it at least
 * once (the rest then goes through a scalar tail); 0 when none does.
 * A 16-wide program thus keeps 8 channels in 8-float vectors rather
 * than falling back to scalars. */
int lower_lanes_dividing(const IrProgram *p, int64_t n);
int lower_lanes_within(const IrProgram *p, int64_t n);
/* y = x, element by element (a layer that is the identity here). */
void lower_copy(LowerCtx *c);
/* The context of function f computing layer `index` (no views yet). */
LowerCtx lower_layer_ctx(IrProgram *p, IrFunc *f, const Model *m, int index);
/* c->in and c->in_shape: a view of each source of c's layer. */
void lower_source_views(LowerCtx *c);
/* The node a layer's function writes: its own, or its last fused follower's. */
int lower_output_node(const Layer *l, int index);
/* The view of a node's values in c's function: the model input, the
 * caller's output, or the arena; of the program's element type. */
int lower_node_view(LowerCtx *c, int node, const char *name, bool written);

/* Shared by the families' int8 lowerings (lower_q.c). */
/* Accumulators: floats, or int32 sums in an int8 function. */
int lower_acc_local(LowerCtx *c, const char *name, int64_t size);
/* 0, and the least value (-infinity; -128 in an int8 function). */
IrExpr *lower_zero(LowerCtx *c);
IrExpr *lower_lowest(LowerCtx *c);
/* The zero point of a node. */
int32_t lower_q_zero(const LowerCtx *c, int node);
/* Source k's value at ix less its zero point: its real value over its scale. */
IrExpr *lower_q_centred(LowerCtx *c, int k, IrIndex ix);
/* v, clamped to [lo, 127]. */
IrExpr *lower_q_clamp(LowerCtx *c, IrExpr *v, int32_t lo);
/* A centred value v (int32) in the scale in_scale, as an int8 value of
 * the scale and zero point out_scale, out_zero: requantized, clamped. */
IrExpr *lower_q_rescale(LowerCtx *c, IrExpr *v, double in_scale, double out_scale,
                        int32_t out_zero);
/* Rounded to the nearest integer, halves away from zero: sum / count. */
IrExpr *lower_q_mean(LowerCtx *c, IrExpr *sum, int64_t count);
/* A linear map's int8 epilogue: its sums requantized to its output's
 * scale, clamped (at the zero point after relu), then each fused
 * follower's epilogue_q; the float head keeps its sums. */
void lower_q_epilogue_setup(LowerCtx *c);
IrExpr *lower_q_epilogue(LowerCtx *c, IrExpr *sum, IrIndex channel);
/* The output node of l, follower e of c's layer or c's layer itself. */
int lower_q_node(const LowerCtx *c, int e, const Layer *l);
/* An element-wise kind's int8 function of its own: its epilogue_q over
 * every element. */
void lower_q_elementwise(LowerCtx *c);
/* The int8 vector kernels (docs/int8.md).  Whether c's layer has them in
 * this program (a program with vectors, and a packed kernel). */
bool lower_q_has_vectors(const LowerCtx *c);
/* Views of its packed kernel and of its vector biases for the program's
 * IRE_VDOT4 offset. */
void lower_q_vector_views(LowerCtx *c, int *packed, int *bias);
/* A vector of the least int32s, where a max of sums starts. */
int lower_q_floor_view(LowerCtx *c);
/* Whether its sums can go out as vectors: the float head's, or a layer's
 * with no fused followers (their epilogues are element by element: the
 * caller then stores the sums and runs lower_q_epilogue on each). */
bool lower_q_vectors_out(const LowerCtx *c);
/* A vector of `lanes` int32 sums of channels from `channel` to the
 * output at ix: requantized, clamped, narrowed (the head's as they are).
 * A pair's vector holds two positions of lanes / 2 channels each. */
void lower_q_vector_out(LowerCtx *c, IrBlock *b, int sums, int lanes, IrIndex ix, IrIndex channel,
                        bool pair);

#endif
