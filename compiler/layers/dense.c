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
