/* dense.c - dense and flatten.
 *
 * dense's kernel is [in, units]; a rank > 1 input is flattened first,
 * row-major over the channels-last shape (Keras' Flatten on NHWC data).
 */
#include "layers.h"

static const char *const dense_positional[] = {"units", NULL};
static const char *const dense_named[] = {"activation", "bias", "weights", "trainable", "init",
                                          NULL};
static const char *const no_names[] = {NULL};

static bool dense_configure(Layer *l, ArgReader *r)
{
    return args_integer(r, "units", true, 1, &l->units) && layer_configure_linear_map(l, r);
}

static bool dense_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    Shape kshape = {.rank = 2, .dim = {shape_size(&ins[0]), l->units}};
    l->out = (Shape){.rank = 1, .dim = {l->units}};
    return layer_add_kernel_and_bias(l, &kshape, l->units, ctx);
}

static __int128 dense_flops(const Layer *l, const Shape *in)
{
    return 2 * (__int128)shape_size(in) * l->units;
}

/* flatten only renames its input; it gets code (a copy, lower_copy) only
 * as the model's output when its input is the model's input. */
static bool flatten_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    (void)ctx;
    l->out = (Shape){.rank = 1, .dim = {shape_size(&ins[0])}};
    return true;
}

/* ---- forward lowering -------------------------------------------------------
 * y = act(b + x W) with W [in, units] row-major: for each input, a whole
 * row of W is added into the accumulators, units innermost (contiguous,
 * a constant trip count), so W streams through once. */
static void dense_lower(LowerCtx *c)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int64_t in = shape_size(c->in_shape[0]), units = l->units;
    int acc = lower_local(c, "acc", units);
    lower_epilogue_setup(c);
    int u = ir_var(p, f, "u");
    IrStmt *init = ir_for(p, &f->body, u, 0, units);
    ir_store(p, &init->body, acc, ix_var(u, 1),
             l->use_bias ? ir_load(p, c->params[1], ix_var(u, 1)) : ir_num(p, 0.0f), false);
    int i = ir_var(p, f, "i");
    IrStmt *rows = ir_for(p, &f->body, i, 0, in);
    int u2 = ir_var(p, f, "u");
    IrStmt *cols = ir_for(p, &rows->body, u2, 0, units);
    ir_store(p, &cols->body, acc, ix_var(u2, 1),
             ir_op(p, IRE_MUL, ir_load(p, c->in[0], ix_var(i, 1)),
                   ir_load(p, c->params[0], ix_add_var(ix_var(i, units), u2, 1))), true);
    int u3 = ir_var(p, f, "u");
    IrStmt *out = ir_for(p, &f->body, u3, 0, units);
    ir_store(p, &out->body, c->out, ix_var(u3, 1),
             lower_epilogue(c, ir_load(p, acc, ix_var(u3, 1)), ix_var(u3, 1)), false);
    lower_output_softmax(c);
}

/* ---- backward lowering ------------------------------------------------------
 * With g the gradient of the pre-activation: dW += x^T g (a row of W per
 * input, units innermost), db += g, dx += W g (a dot product per input). */
static void dense_backward(const LowerCtx *base)
{
    LowerCtx c = lower_train_func(base, PHASE_BACKWARD, true, "backward");
    IrProgram *p = c.p;
    IrFunc *f = c.f;
    int64_t in = shape_size(c.in_shape[0]), units = c.l->units;
    int dw = c.dparams[0], db = c.l->use_bias ? c.dparams[1] : -1, dx = c.din[0];
    if (db >= 0) {
        int u = ir_var(p, f, "u");
        IrStmt *loop = ir_for(p, &f->body, u, 0, units);
        ir_store(p, &loop->body, db, ix_var(u, 1), ir_load(p, c.dout, ix_var(u, 1)), true);
    }
    if (dw < 0 && dx < 0)
        return;
    int i = ir_var(p, f, "i");
    IrBlock *rows = &ir_for(p, &f->body, i, 0, in)->body;
    if (dw >= 0) {
        int u = ir_var(p, f, "u");
        IrStmt *cols = ir_for(p, rows, u, 0, units);
        ir_store(p, &cols->body, dw, ix_add_var(ix_var(i, units), u, 1),
                 ir_op(p, IRE_MUL, ir_load(p, c.in[0], ix_var(i, 1)),
                       ir_load(p, c.dout, ix_var(u, 1))), true);
    }
    if (dx >= 0) {
        int dot = ir_scalar(p, f, "dot");
        ir_set(p, rows, dot, SCALAR_DECLARE, ir_num(p, 0.0f));
        int u = ir_var(p, f, "u");
        IrStmt *cols = ir_for(p, rows, u, 0, units);
        ir_set(p, &cols->body, dot, SCALAR_ADD,
               ir_op(p, IRE_MUL, ir_load(p, c.params[0], ix_add_var(ix_var(i, units), u, 1)),
                     ir_load(p, c.dout, ix_var(u, 1))));
        ir_store(p, rows, dx, ix_var(i, 1), ir_ref(p, dot), true);
    }
}

const LayerKind dense_kinds[] = {
    {"dense", FAMILY_DENSE, 0, true, dense_positional, dense_named, dense_configure, dense_infer,
     dense_flops, dense_lower, NULL, dense_backward},
    {"flatten", FAMILY_FLATTEN, 0, false, no_names, no_names, NULL, flatten_infer, NULL, lower_copy,
     NULL, NULL},
    {0},
};
