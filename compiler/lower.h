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

typedef struct {
    IrProgram *p;
    IrFunc *f;
    const Model *m;
    const Layer *l;
    int *in;                /* a view of each source */
    const Shape **in_shape;
    int nin;
    int out;                /* the view of the layer's output */
    int params[4];          /* a view of each parameter tensor */
    int acc;                /* a local array a family's lowering may make */
    int epi_beta[LAYER_MAX_EPILOGUE], epi_mean[LAYER_MAX_EPILOGUE], epi_scale[LAYER_MAX_EPILOGUE];
} LowerCtx;

/* Lower the whole model: one function per layer that computes something
 * (flatten in the middle of a model only renames its input). */
void lower_model(const Model *m, IrProgram *p);

/* Shared by the families. */
IrExpr *lower_activation(LowerCtx *c, Activation act, float alpha, IrExpr *x);
/* Softmax over the last axis of a view holding `positions` rows of `channels`. */
void lower_softmax(LowerCtx *c, IrBlock *b, int view, int64_t positions, int64_t channels);
/* A conv or dense layer's epilogue: its activation, then the fused
 * followers' (see graph_plan_memory); setup first, at the top of the
 * function, then the value of each output at the given channel. */
void lower_epilogue_setup(LowerCtx *c);
IrExpr *lower_epilogue(LowerCtx *c, IrExpr *v, IrIndex channel);
/* Apply the layer's activation in place to its output (softmax or none). */
void lower_output_softmax(LowerCtx *c);
int lower_local(LowerCtx *c, const char *name, int64_t size);
/* y = x, element by element (a layer that is the identity here). */
void lower_copy(LowerCtx *c);

#endif
