/* ir.h - the loop IR: what every layer lowers to, and what the C (and
 * LLVM) backends print.
 *
 * A program is a list of functions, one per layer.  A function's body is
 * a tree of statements: counted loops with constant bounds, stores to a
 * buffer at an affine index, and scalar temporaries.  Expressions are
 * trees of loads, constants, arithmetic and a few intrinsics.  Buffers
 * are *views*: a base (the model input, its output, the activation
 * arena, the parameters, or an array local to the function) plus a
 * constant offset, so a backend can give each a restrict pointer.
 */
#ifndef CNNGEN_IR_H
#define CNNGEN_IR_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

enum { IR_MAX_TERMS = 12 };

/* c + sum(coef * var): an index into a view, in floats. */
typedef struct {
    int64_t c;
    int n;
    struct {
        int var;
        int64_t coef;
    } t[IR_MAX_TERMS];
} IrIndex;

typedef enum {
    IRE_CONST,  /* value */
    IRE_LOAD,   /* view[index] */
    IRE_SCALAR, /* a float temporary */
    IRE_ADD,
    IRE_SUB,
    IRE_MUL,
    IRE_DIV,
    IRE_MAX,
    IRE_MIN,
    IRE_NEG,
    IRE_EXP,
    IRE_TANH,
    IRE_SQRT,
    IRE_LOG,
    IRE_BATCH,      /* training: the number of samples in the batch, as a float */
    IRE_SELECT_POS, /* a > 0 ? b : c */
    /* Vectors (a register block), each of its own width (lanes): a layer
     * whose channels do not fill the program's widest vector uses a
     * narrower one.  IRE_VREG and IRE_VZERO are vectors; a scalar times a
     * vector is a vector; IRE_VLOAD, `lanes` floats from view[index],
     * appears only as the value of an IRS_VSET of a vector as wide.
     * IRE_MAX of a float vector takes only IRE_VZERO as b (relu). */
    IRE_VREG,
    IRE_VZERO,
    IRE_VLOAD,
    IRE_VLANE, /* lane index.c of the vector `scalar`: a float */
    /* `lanes` floats: view[index] and view[index + 1], again and again (a
     * conv's pair of output positions from a one-channel input: lanes 2c
     * and 2c+1 are channel c of the two; one 64-bit broadcast). */
    IRE_VPAIRS,
    /* The vector a's even lanes, then its odd ones: a pair's two positions
     * back in order, each with its channels together. */
    IRE_VUNPAIR,
    /* int8 programs (docs/int8.md): int32 values.  A load of an int8 or
     * int32 view, an IRE_ICONST, an int32 scalar and the arithmetic of
     * them are int32; IRE_DIV of them divides toward zero. */
    IRE_ICONST,  /* ivalue */
    IRE_REQUANT, /* TFLite's MultiplyByQuantizedMultiplier(a, multiplier b, shift c);
                  * ivalue 1: every shift is at most 0 (no left shift) */
    /* int8 vector kernels: `lanes` int32 sums, a (an int32 vector), each
     * plus the dot product of the four bytes view[index..index+3] (int8,
     * or unsigned: what AVX-512 VNNI's vpdpbusd takes) with its own four
     * int8 weights of b (an int8 vector of 4 * lanes: lane l's at
     * 4l..4l+3).  ivalue above 0: a pair of positions, the low half's
     * lanes with view[index..index+3], the high half's with the four bytes
     * ivalue on (at most 4: one 8-byte load). */
    IRE_VDOT4,
} IrExprKind;

/* What a view's elements, and a scalar, are.  IR_U8: unsigned bytes, the
 * VNNI kernels' copy of their input (x + 128). */
typedef enum { IR_F32, IR_I8, IR_I32, IR_U8 } IrType;

typedef struct IrExpr IrExpr;
struct IrExpr {
    IrExprKind kind;
    float value;       /* CONST */
    int32_t ivalue;    /* ICONST; VDOT4: a pair's step; VLOAD 1: lanes / 2 elements,
                        * the same in both halves; VZERO 1: of int32s */
    int view;          /* LOAD, VLOAD, VPAIRS, VDOT4 */
    IrIndex index;     /* LOAD, VLOAD, VPAIRS, VDOT4 */
    int scalar;        /* SCALAR; VREG: the vector */
    int lanes;         /* VZERO, VLOAD, VPAIRS, VUNPAIR, VDOT4: elements in the vector */
    IrExpr *a, *b, *c; /* operands */
};

typedef struct IrStmt IrStmt;

typedef struct {
    IrStmt **items;
    int count, cap;
} IrBlock;

typedef enum {
    IRS_FOR,    /* for (var = lo; var < hi; var++) body */
    IRS_STORE,  /* view[index] = value, or += value */
    IRS_SCALAR, /* float s = value; s = value; s += value */
    IRS_COMMENT,
    IRS_VSET,   /* vec v = value; v = value; v += value */
    IRS_VSTORE, /* view[index .. index+width) = vector */
} IrStmtKind;

typedef enum { SCALAR_DECLARE, SCALAR_SET, SCALAR_ADD } ScalarMode;

struct IrStmt {
    IrStmtKind kind;
    int var;        /* FOR */
    int64_t lo, hi; /* FOR */
    bool unroll;    /* FOR: the unroll pass may replicate the body */
    bool to_batch;  /* FOR: runs to the batch's n (a training or block function), not hi */
    int64_t group;  /* FOR to_batch, above 1: runs over the whole groups of `group`
                       * samples, 0 to n / group; batch_tail: then the samples past
                       * the last whole group, n / group * group to n */
    bool batch_tail;
    bool parallel;    /* FOR: iterations write disjoint floats (threads may share them) */
    bool collapse;    /* FOR, parallel: its body is one loop, and the threads share the
                       * iterations of both (OpenMP's collapse(2)) */
    bool unroll_hint; /* FOR: worth unrolling by 4 (the C backend asks gcc to) */
    IrBlock body;     /* FOR */
    int view;         /* STORE */
    IrIndex index;    /* STORE */
    bool accumulate;  /* STORE: += */
    int scalar;       /* SCALAR; VSET, VSTORE: the vector */
    ScalarMode mode;  /* SCALAR, VSET */
    IrExpr *value;    /* STORE, SCALAR */
    const char *text; /* COMMENT */
};

typedef enum {
    VIEW_INPUT,  /* the model's input (const) */
    VIEW_OUTPUT, /* the model's output */
    VIEW_ARENA,  /* the static activation arena */
    VIEW_PARAMS, /* the parameters (const) */
    VIEW_LOCAL,  /* an array local to the function */
    VIEW_TRAIN,  /* training: the static training arena (graph.h, TrainPlan) */
    VIEW_TARGET, /* training: the batch's targets (const) */
    VIEW_PACKED, /* int8 vector kernels: the packed kernels (int8), vector biases (int32) */
} ViewBase;

typedef struct {
    const char *name; /* the pointer's name in the function */
    ViewBase base;
    int64_t offset; /* floats from the base */
    int64_t size;   /* floats in the view (one sample's, in a per-sample view) */
    bool written;
    int64_t sample_stride; /* per-sample functions: floats from one sample to the next */
    IrType type;           /* its elements (indices and sizes count elements) */
} IrView;

/* Inference functions compute one sample: (input, output); a block
 * function computes n samples of a block (input, output, arena, n), each
 * view's sample s at s * sample_stride floats further (the indices say
 * so: its loops over the samples are the function's own).  Training
 * functions see a batch of n samples: (input, target, n); a per-sample
 * one runs its body for each sample in order, its views with a sample
 * stride moved to that sample, the others (parameters, their gradients,
 * per-channel sums) shared, so sums over the batch come in sample order. */
typedef enum {
    PHASE_PREDICT,       /* inference, one sample */
    PHASE_PREDICT_BLOCK, /* inference, a block of samples (predict_batch) */
    PHASE_FORWARD,       /* training and evaluation: the forward pass */
    PHASE_FORWARD_TRAIN, /* the forward pass in training mode only */
    PHASE_FORWARD_EVAL,  /* the forward pass in evaluation only */
    PHASE_LOSS,          /* the loss and its gradient */
    PHASE_BACKWARD,
    PHASE_UPDATE, /* the optimizer step */
} IrPhase;

typedef struct {
    const char *name;    /* the function's name, without the model prefix */
    const char *comment; /* what the layer is: kind, name, line, shapes */
    IrPhase phase;
    bool per_sample; /* training: the body runs once per sample */
    int layer;       /* the index in Model.layers of the layer it computes; -1: the loss */
    IrView *views;
    int nviews, views_cap;
    const char **var_names; /* loop variables */
    int nvars, vars_cap;
    const char **scalar_names; /* float temporaries */
    int nscalars, scalars_cap;
    IrType *scalar_types; /* each one's: IR_F32, or IR_I32 in an int8 program */
    int scalar_types_cap;
    const char **vreg_names; /* vector temporaries */
    int nvregs, vregs_cap;
    int *vreg_lanes; /* elements in each vector temporary */
    int vreg_lanes_cap;
    IrType *vreg_types; /* each one's elements: IR_F32, or IR_I32 and IR_I8 in an int8 program */
    int vreg_types_cap;
    IrBlock body;
} IrFunc;

/* The training step around the functions: what train_batch and
 * eval_batch do, in order, between checking n (1 to the train block's
 * batch) and returning the batch's mean loss.  The lowering writes it
 * once; every backend prints it. */
typedef enum {
    STEP_CALL,             /* every function of phase a or b, in program order */
    STEP_COUNT_STEP,       /* the step counter t += 1 (Adam's t, dropout's stream) */
    STEP_DROPOUT_MASK,     /* cnnrt_dropout_mask at train[offset], count per sample,
                             * rate, stream node, for layer name */
    STEP_COMMENT,          /* text */
    STEP_ZERO,             /* train[offset ...] = 0, count per sample */
    STEP_ZERO_PARAM_GRADS, /* train[offset ...] = 0, the parameter block's size */
    STEP_OUTPUTS,          /* the outputs before the update to the caller: from
                             * train[offset], or the input where offset < 0 */
    STEP_HYPER,            /* train[offset ...] = the optimizer's factors for this step,
                             * from the learning rate in use (lr) and t:
                             *   sgd:   [0] lr
                             *   adam:  [0] lr * sqrt(1 - beta2^t) / (1 - beta1^t),
                             *          [1] lr * weight_decay
                             *   adamw: [0] lr / (1 - beta1^t), [1] 1 - lr * weight_decay,
                             *          [2] sqrt(1 - beta2^t) */
} IrStepKind;

typedef struct {
    IrStepKind kind;
    IrPhase a, b;                      /* CALL */
    int64_t offset, count;             /* in the training arena, in floats */
    double rate;                       /* DROPOUT_MASK */
    int node;                          /* DROPOUT_MASK */
    const char *text;                  /* COMMENT; DROPOUT_MASK: the layer's name */
    int optimizer;                     /* HYPER: an OptimizerKind */
    double beta1, beta2, weight_decay; /* HYPER */
} IrStep;

typedef struct {
    IrStep *items;
    int count, cap;
} IrSteps;

typedef struct {
    Arena arena;
    IrFunc **funcs;
    int nfuncs, cap;
    int vector_width;              /* floats in the widest vector; 0: no vectors */
    int vector_registers;          /* how many the target has, for register blocks */
    IrSteps train_step, eval_step; /* empty without training */
    bool blocks;                   /* lower predict_batch's block functions too */
    bool small_model;              /* a small model's one inlined version (emit_small_model) */
    /* An int8 program (docs/int8.md): its layer functions take int8
     * input and arena, and an int8 output or, with a float head, the
     * head's int32 sums (output_type). */
    bool quantized;
    IrType output_type;
    int dot_offset;      /* an int8 program's kernels read their inputs plus this:
                          * 128 (VNNI: unsigned bytes) or 0 */
    unsigned pair_lanes; /* the lanes (as bits: 8, 16) of its IRE_VDOT4 pairs */
} IrProgram;

IrFunc *ir_func(IrProgram *p, const char *name, const char *comment);
/* A function of another phase than PHASE_PREDICT (see IrPhase). */
IrFunc *ir_train_func(IrProgram *p, const char *name, const char *comment, IrPhase phase,
                      bool per_sample);
/* A view that moves by sample_stride floats from one sample to the next. */
int ir_sample_view(IrProgram *p, IrFunc *f, const char *name, ViewBase base, int64_t offset,
                   int64_t size, bool written, int64_t sample_stride);
void ir_program_free(IrProgram *p);

/* Floats in the arrays local to F (its stack frame's arrays). */
int64_t ir_local_floats(const IrFunc *f);
/* Functions from..nfuncs-1 compute layer `layer` (IrFunc.layer). */
void ir_tag_layer(IrProgram *p, int from, int layer);
/* Append a step to a training step's list. */
void ir_step(IrProgram *p, IrSteps *steps, IrStep step);

int ir_view(IrProgram *p, IrFunc *f, const char *name, ViewBase base, int64_t offset, int64_t size,
            bool written);
int ir_var(IrProgram *p, IrFunc *f, const char *name);
int ir_scalar(IrProgram *p, IrFunc *f, const char *name);
/* A scalar of the type (ir_scalar's are floats). */
int ir_typed_scalar(IrProgram *p, IrFunc *f, const char *name, IrType type);
/* A view of elements of the type (ir_view's are floats). */
int ir_typed_view(IrProgram *p, IrFunc *f, const char *name, ViewBase base, int64_t offset,
                  int64_t size, bool written, IrType type);
/* A vector temporary of `lanes` floats. */
int ir_vreg(IrProgram *p, IrFunc *f, const char *name, int lanes);
/* A vector temporary of `lanes` elements of the type. */
int ir_typed_vreg(IrProgram *p, IrFunc *f, const char *name, int lanes, IrType type);

/* Affine indices. */
IrIndex ix_const(int64_t c);
IrIndex ix_var(int var, int64_t coef);
IrIndex ix_add(IrIndex a, IrIndex b);
IrIndex ix_add_var(IrIndex a, int var, int64_t coef);
IrIndex ix_scale(IrIndex a, int64_t k);

/* Expressions. */
IrExpr *ir_num(IrProgram *p, float value);
IrExpr *ir_int(IrProgram *p, int32_t value);
IrExpr *ir_requant(IrProgram *p, IrExpr *sum, IrExpr *multiplier, IrExpr *shift);
/* Whether an expression is an int32 value (IrExprKind). */
bool ir_expr_is_int(const IrFunc *f, const IrExpr *e);
IrExpr *ir_load(IrProgram *p, int view, IrIndex index);
IrExpr *ir_ref(IrProgram *p, int scalar);
IrExpr *ir_op(IrProgram *p, IrExprKind kind, IrExpr *a, IrExpr *b);
IrExpr *ir_select_pos(IrProgram *p, IrExpr *cond, IrExpr *then, IrExpr *otherwise);

/* Statements, appended to a block. */
IrStmt *ir_for(IrProgram *p, IrBlock *b, int var, int64_t lo, int64_t hi);
/* for (var = 0; var < n; var++): over the samples of a training batch. */
IrStmt *ir_for_batch(IrProgram *p, IrBlock *b, int var);
/* for (var = 0; var < n / group; var++): over whole groups of samples;
 * and for (var = n / group * group; var < n; var++): the samples left. */
IrStmt *ir_for_batch_groups(IrProgram *p, IrBlock *b, int var, int64_t group);
IrStmt *ir_for_batch_tail(IrProgram *p, IrBlock *b, int var, int64_t group);
void ir_store(IrProgram *p, IrBlock *b, int view, IrIndex index, IrExpr *value, bool accumulate);
void ir_set(IrProgram *p, IrBlock *b, int scalar, ScalarMode mode, IrExpr *value);
void ir_comment(IrProgram *p, IrBlock *b, const char *text);
IrExpr *ir_vref(IrProgram *p, int vreg);
IrExpr *ir_vzero(IrProgram *p, int lanes);
IrExpr *ir_vzero_int(IrProgram *p, int lanes);
IrExpr *ir_vlane(IrProgram *p, int vreg, int lane);
IrExpr *ir_vload(IrProgram *p, int view, IrIndex index, int lanes);
/* lanes / 2 elements at view[index], in both halves of the vector. */
IrExpr *ir_vload_halves(IrProgram *p, int view, IrIndex index, int lanes);
IrExpr *ir_vpairs(IrProgram *p, int view, IrIndex index, int lanes);
IrExpr *ir_vunpair(IrProgram *p, int vreg, int lanes);
/* acc + the dot products of x[index..index+3] with vector w's four bytes
 * a lane (IRE_VDOT4). */
IrExpr *ir_vdot4(IrProgram *p, IrExpr *acc, int x, IrIndex index, int w, int lanes);
/* The same for two positions, `step` bytes apart (at most 4), one in each
 * half of the lanes: w holds the channels' weights twice. */
IrExpr *ir_vdot4_pair(IrProgram *p, IrExpr *acc, int x, IrIndex index, int w, int lanes, int step);
void ir_vset(IrProgram *p, IrBlock *b, int vreg, ScalarMode mode, IrExpr *value);
void ir_vstore(IrProgram *p, IrBlock *b, int view, IrIndex index, int vreg);

/* Which views a function really reads or writes (a region with no valid
 * taps, say, never reads the kernel): used[view], nviews entries. */
void ir_views_used(const IrFunc *f, bool *used);
/* Which views it stores to (a view may be writable and only read). */
void ir_views_written(const IrFunc *f, bool *written);
/* Whether some function of the program is of the phase. */
bool ir_has_phase(const IrProgram *p, IrPhase phase);
/* Whether a function of the program has an IRE_VPAIRS of `lanes`. */
bool ir_uses_pairs(const IrProgram *p, int lanes);
/* Whether a function of the program has a vector relu of `lanes`
 * (IRE_MAX of a vector and IRE_VZERO). */
bool ir_uses_vector_relu(const IrProgram *p, int lanes);
/* Whether a block reads the batch's n (a loop to it, or IRE_BATCH). */
bool ir_uses_batch_size(const IrBlock *b);

/* Passes. */
/* Replace loops marked unroll whose trip count is at most max_trip, and
 * every loop of one iteration, by copies of their body, the loop
 * variable a constant in each. */
void ir_unroll(IrProgram *p, int max_trip);

#endif
