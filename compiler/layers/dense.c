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
static const char *const initializers[] = {"glorot_uniform", "glorot_normal", "he_uniform",
                                           "he_normal", "lecun_normal", "zeros", "ones", NULL};

static bool dense_configure(Layer *l, ArgReader *r)
{
    int init = INIT_GLOROT_UNIFORM;
    l->trainable = true;
    if (!args_integer(r, "units", true, 1, &l->units) ||
        !args_activation(r, &l->activation, &l->linear_explicit) ||
        !args_boolean(r, "trainable", &l->trainable) ||
        !args_word(r, "init", initializers, &init) ||
        !args_literal(r, "weights", &l->weights) ||
        !args_bias(r, &l->use_bias, &l->bias_values))
        return false;
    l->init = (InitKind)init;
    return true;
}

static bool dense_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    Shape kshape = {.rank = 2, .dim = {shape_size(&ins[0]), l->units}};
    const double *kernel_values, *bias_values;
    l->out = (Shape){.rank = 1, .dim = {l->units}};
    if (!layer_fit_weights(&l->weights, &kshape, l->name, ctx->diag, &kernel_values))
        return false;
    layer_add_param(l, ctx->arena, "kernel", &kshape, l->trainable, l->init, kernel_values);
    if (l->use_bias) {
        if (!layer_fit_bias(&l->bias_values, l->units, l->name, ctx->diag, &bias_values))
            return false;
        Shape bshape = {.rank = 1, .dim = {l->units}};
        layer_add_param(l, ctx->arena, "bias", &bshape, l->trainable, INIT_ZEROS, bias_values);
    }
    return true;
}

static __int128 dense_flops(const Layer *l, const Shape *in)
{
    return 2 * (__int128)shape_size(in) * l->units;
}

static bool flatten_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    (void)ctx;
    l->out = (Shape){.rank = 1, .dim = {shape_size(&ins[0])}};
    return true;
}

const LayerKind dense_kinds[] = {
    {"dense", FAMILY_DENSE, 0, true, dense_positional, dense_named, dense_configure, dense_infer,
     dense_flops},
    {"flatten", FAMILY_FLATTEN, 0, false, no_names, no_names, NULL, flatten_infer, NULL},
    {0},
};
