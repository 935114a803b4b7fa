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

const LayerKind norm_kinds[] = {
    {"batchnorm", FAMILY_BATCHNORM, 0, false, no_names, batchnorm_named, batchnorm_configure,
     batchnorm_infer, NULL},
    {"dropout", FAMILY_DROPOUT, 0, false, dropout_positional, no_names, dropout_configure,
     same_shape_infer, NULL},
    {0},
};
