/* layers.h - the table of layer kinds.
 *
 * Each layer family lives in one file (conv.c, pool.c, dense.c, norm.c,
 * activation.c, merge.c, upsample.c) with its argument reading
 * (configure), its shape rule (infer), its cost (flops), its forward and
 * its backward lowering side by side, and a table of its kinds.  A kind
 * also says what the rest of the compiler needs to know of it (whether
 * it fuses into a producer, aliases its input, which training buffers it
 * needs...), so sema, graph and lower never ask which family a layer is:
 * adding a family is one file and one line in layers.c (docs/design.md).
 */
#ifndef CNNGEN_LAYERS_H
#define CNNGEN_LAYERS_H

#include "../args.h"
#include "../graph.h"
#include "../lower.h"
#include "../quant.h"

/* What infer() may report through. */
typedef struct {
    Diag *diag;
    Arena *arena;
} InferCtx;

/* Written with designated initializers: what a kind leaves out is 0,
 * false or NULL, which says "no" or "none". */
struct LayerKind {
    const char *name;
    int variant;                   /* which of its file's kinds: an enum of that
                                             * file's own, which only that file reads */
    int nd;                        /* spatial axes of windows, else 0 */
    const char *const *positional; /* NULL-terminated */
    const char *const *named;

    /* What the core asks of the kind. */
    bool linear_map;       /* a conv or dense: applies an epilogue to its
                                             * output, keeps a pre-activation in training */
    Activation activation; /* an activation layer's function */
    bool merges_labels;    /* its arguments are labels (add, concat) */
    bool channel_scratch;  /* its lowering keeps arrays of its channels on the
                                             * stack: they are limited (MODEL_MAX_CHANNELS) */
    bool aliases_input;    /* the identity at inference: shares its input's
                                             * storage (flatten, dropout) */
    /* The identity in training too: shares its input's values and
     * gradient (flatten, linear, dropout(0)); NULL: never. */
    bool (*trains_as_identity)(const Layer *l);
    const char *const *param_names; /* its parameters' views in generated code */
    /* Training buffers besides the values and gradient of its output. */
    bool train_mask;              /* a mask of the output's size per sample */
    int train_channel_stats;      /* floats per channel, over the batch */
    bool train_transposed_kernel; /* params[0] transposed to [k..., cout, cin]
                                             * each step, when the input needs a gradient */
    /* An element-wise kind runs in a producer's epilogue (graph.c fuses
     * it): setup once at the top of the producer's function (views of
     * its own in c->epi_views[e]), then the value of each output element
     * at the given channel.  NULL: it does not fuse. */
    void (*epilogue_setup)(LowerCtx *c, int e, const Layer *l);
    IrExpr *(*epilogue)(LowerCtx *c, int e, const Layer *l, IrExpr *v, IrIndex channel);

    QuantForm quant; /* how it computes on int8 values (docs/int8.md) */
    /* Its int8 forward pass (lower_q.c, docs/int8.md); NULL: lower, whose
     * loads and stores are of any type (copies). */
    void (*lower_q)(LowerCtx *c);
    /* An element-wise kind's int8 function of v, an int8 value of its
     * input's node at the channel: in a producer's epilogue (follower e)
     * or in a function of its own (lower_q_elementwise, e 0).  A kind with
     * int8 constants finds their views in c->epi_views[e] (kernel, bias,
     * multiplier, shift). */
    IrExpr *(*epilogue_q)(LowerCtx *c, int e, const Layer *l, IrExpr *v, IrIndex channel);
    /* A linear map's int8 vector kernels (docs/int8.md): the bytes of its
     * kernel packed four inputs to an int32 lane (0: no vector form for
     * this layer), and the packing of its int8 kernel into them (the
     * padding zero).  Its lower_q uses them in a program with vectors. */
    int64_t (*packed_size_q)(const Layer *l);
    /* It takes the max of each window (max pooling): a linear map right
     * before it may take the max of its int32 sums and requantize once
     * (docs/int8.md). */
    bool max_pool;
    void (*pack_q)(const Layer *l, const int8_t *kernel, int8_t *packed);

    bool (*configure)(Layer *l, ArgReader *r);
    /* ins[i] is the shape of srcs[i]; sets l->out and l->params. */
    bool (*infer)(Layer *l, const Shape *ins, InferCtx *ctx);
    __int128 (*flops)(const Layer *l, const Shape *in);
    /* The forward pass at inference, as loops (lower.h). */
    void (*lower)(LowerCtx *c);
    /* predict_batch: the forward pass over a block of samples, into a
     * PHASE_PREDICT_BLOCK function, each sample's values exactly lower's
     * (graph.h layer_runs_in_blocks says when it is used); NULL: the
     * kind computes one sample at a time. */
    void (*lower_block)(LowerCtx *c);
    /* Training (lower_train.c): the forward pass, when it is not lower's
     * (batchnorm, dropout); NULL: lower_train_forward. */
    void (*lower_train)(const LowerCtx *base);
    /* The backward pass: from the output's gradient, add to the gradient
     * of each source and of each trainable parameter.  Makes its own
     * functions with lower_train_func. */
    void (*lower_backward)(const LowerCtx *base);
};

const LayerKind *layer_kind_find(const char *name);

/* Helpers shared by the families. */
/* The output has the input's shape (element-wise kinds). */
bool layer_same_shape_infer(Layer *l, const Shape *ins, InferCtx *ctx);
/* trains_as_identity for kinds that always are. */
bool layer_always_identity(const Layer *l);
extern const char *const layer_no_names[];          /* {NULL} */
extern const char *const layer_linear_map_params[]; /* kernel and bias: "w", "b" */
Param *layer_add_param(Layer *l, Arena *arena, const char *suffix, const Shape *shape,
                       bool trainable, InitKind init, const double *literal);
bool layer_spatial_input(Layer *l, const Shape *in, Diag *diag, Shape *out);
/* The same once checked: the input as [*spatial, C] (for lowering). */
Shape layer_spatial_shape(const Layer *l, const Shape *in);
bool layer_fit_weights(const Literal *lit, const Shape *kernel, const char *what, Diag *diag,
                       const double **values);
bool layer_fit_bias(const Literal *lit, int64_t n, const char *what, Diag *diag,
                    const double **values);
/* The arguments every linear map (conv*, dense) ends with: activation,
 * trainable, init, weights, bias; read in that order. */
bool layer_configure_linear_map(Layer *l, ArgReader *r);
/* NAME.kernel of kshape (from weights= if given) and, with a bias,
 * NAME.bias of n values. */
bool layer_add_kernel_and_bias(Layer *l, const Shape *kshape, int64_t n, InferCtx *ctx);
/* Output size and zero padding of a sliding window on every spatial axis. */
bool layer_window_output(Layer *l, const Shape *in, const int64_t *kernel, const int64_t *dilation,
                         Diag *diag, int64_t *sizes);

/* Sliding windows, for lowering: per spatial axis, the output positions
 * split into segments over which the valid taps are the same (the
 * interior, and each border position apart), so no loop tests bounds. */
typedef struct {
    int64_t lo, hi;   /* output positions [lo, hi) */
    int64_t klo, khi; /* taps [klo, khi) fall inside the input */
} WindowSegment;

/* Strides in floats of the spatial axes of a [*spatial, C] tensor. */
void layer_axis_strides(const int64_t *dims, int nd, int64_t channels, int64_t *strides);

/* Loops over a region's output positions on its first `axes` spatial
 * axes (named oh, ow, ...); adds to *x_ix the input index of tap 0 of
 * each (o*stride - pad_before, times xs) and to *y_ix the output index
 * (o times ys).  Returns the innermost loop's body. */
IrBlock *layer_position_loops(LowerCtx *c, const WindowSegment *region, int axes, const int64_t *xs,
                              const int64_t *ys, IrIndex *x_ix, IrIndex *y_ix);
/* The same inside block b (the function's body for the above). */
IrBlock *layer_position_loops_in(LowerCtx *c, IrBlock *b, const WindowSegment *region, int axes,
                                 const int64_t *xs, const int64_t *ys, IrIndex *x_ix,
                                 IrIndex *y_ix);
/* The loops of layer_position_loops over every spatial axis but skip. */
IrBlock *layer_position_loops_but(LowerCtx *c, const WindowSegment *region, int skip,
                                  const int64_t *xs, const int64_t *ys, IrIndex *x_ix,
                                  IrIndex *y_ix);
/* The loop variable name of tap axis a of an nd-dimensional window. */
const char *layer_tap_name(int nd, int a);

/* For every combination of one segment per spatial axis (a region of the
 * output), calls visit with region[axis]. */
void layer_for_each_region(LowerCtx *c, const Layer *l, const Shape *in,
                           void (*visit)(LowerCtx *c, const WindowSegment *region));

/* The family tables, one per file. */
extern const LayerKind conv_kinds[], pool_kinds[], dense_kinds[], norm_kinds[], activation_kinds[],
    merge_kinds[], upsample_kinds[], permute_kinds[];

#endif
