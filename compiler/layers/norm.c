/* norm.c - batchnorm and dropout: layers whose training behaviour differs
 * from their inference behaviour.
 *
 * batchnorm works per channel (the last axis).  In training it normalises
 * with the batch's mean and biased variance and updates
 * moving = momentum*moving + (1-momentum)*batch_stat; at inference, and
 * when frozen (trainable=false, as in Keras 2), it uses the moving
 * statistics.  dropout is inverted dropout: identity at inference.
 */
#include "layers.h"

static const char *const batchnorm_named[] = {"momentum", "epsilon", "trainable", NULL};
static const char *const dropout_positional[] = {"rate", NULL};
static const char *const no_names[] = {NULL};

static bool batchnorm_configure(Layer *l, ArgReader *r)
{
    static const double zero = 0, one = 1;
    l->momentum = 0.99;
    l->epsilon = 0.001;
    l->trainable = true;
    return args_number(r, "momentum", false, &l->momentum, &zero, &one, false, false) &&
           args_number(r, "epsilon", false, &l->epsilon, &zero, NULL, true, false) &&
           args_boolean(r, "trainable", &l->trainable);
}

static bool batchnorm_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    l->out = ins[0];
    Shape c = {.rank = 1, .dim = {ins[0].dim[ins[0].rank - 1]}};
    layer_add_param(l, ctx->arena, "gamma", &c, l->trainable, INIT_ONES, NULL);
    layer_add_param(l, ctx->arena, "beta", &c, l->trainable, INIT_ZEROS, NULL);
    layer_add_param(l, ctx->arena, "moving_mean", &c, false, INIT_ZEROS, NULL);
    layer_add_param(l, ctx->arena, "moving_variance", &c, false, INIT_ONES, NULL);
    return true;
}

static bool dropout_configure(Layer *l, ArgReader *r)
{
    static const double zero = 0, one = 1;
    return args_number(r, "rate", true, &l->rate, &zero, &one, false, true);
}

static bool same_shape_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    (void)ctx;
    l->out = ins[0];
    return true;
}

/* ---- forward lowering (inference) -------------------------------------------
 * batchnorm with the moving statistics: per channel a scale
 * gamma / sqrt(var + epsilon), computed once per call, then
 * y = (x - mean) * scale + beta with the channel innermost. */
static void batchnorm_lower(LowerCtx *c)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Shape *in = c->in_shape[0];
    int64_t ch = in->dim[in->rank - 1], positions = shape_size(in) / ch;
    int gamma = c->params[0], beta = c->params[1], mean = c->params[2], var = c->params[3];
    int scale = lower_local(c, "scale", ch);
    int c1 = ir_var(p, f, "c");
    IrStmt *s1 = ir_for(p, &f->body, c1, 0, ch);
    ir_store(p, &s1->body, scale, ix_var(c1, 1),
             ir_op(p, IRE_DIV, ir_load(p, gamma, ix_var(c1, 1)),
                   ir_op(p, IRE_SQRT, ir_op(p, IRE_ADD, ir_load(p, var, ix_var(c1, 1)),
                                            ir_num(p, (float)c->l->epsilon)), NULL)), false);
    int pos = ir_var(p, f, "pos");
    IrStmt *outer = ir_for(p, &f->body, pos, 0, positions);
    int c2 = ir_var(p, f, "c");
    IrStmt *inner = ir_for(p, &outer->body, c2, 0, ch);
    IrIndex at = ix_add_var(ix_var(pos, ch), c2, 1);
    IrExpr *centred = ir_op(p, IRE_SUB, ir_load(p, c->in[0], at), ir_load(p, mean, ix_var(c2, 1)));
    ir_store(p, &inner->body, c->out, at,
             ir_op(p, IRE_ADD, ir_op(p, IRE_MUL, centred, ir_load(p, scale, ix_var(c2, 1))),
                   ir_load(p, beta, ix_var(c2, 1))), false);
}

const LayerKind norm_kinds[] = {
    {"batchnorm", FAMILY_BATCHNORM, 0, false, no_names, batchnorm_named, batchnorm_configure,
     batchnorm_infer, NULL, batchnorm_lower},
    {"dropout", FAMILY_DROPOUT, 0, false, dropout_positional, no_names, dropout_configure,
     same_shape_infer, NULL, lower_copy},
    {0},
};
