/* conv.c - conv1d, conv2d, conv3d and depthwise_conv2d.
 *
 * Kernels are channels-last: [k..., in_channels, filters] for conv,
 * [kh, kw, in_channels, multiplier] for depthwise, whose output channel
 * c*multiplier + j comes from input channel c.
 */
#include "layers.h"

static const char *const conv_positional[] = {"filters", "kernel", NULL};
static const char *const conv_named[] = {"stride", "padding", "dilation", "activation", "bias",
                                         "weights", "trainable", "init", NULL};
static const char *const depthwise_positional[] = {"kernel", NULL};
static const char *const depthwise_named[] = {"stride", "padding", "dilation", "activation",
                                              "bias", "weights", "trainable", "init",
                                              "multiplier", NULL};

/* Read in the order the reference does, so the first bad argument is the
 * one reported. */
static bool conv_configure(Layer *l, ArgReader *r)
{
    bool depthwise = l->kind->family == FAMILY_DEPTHWISE;
    l->nd = l->kind->nd;
    l->multiplier = 1;
    for (int i = 0; i < 3; i++)
        l->stride[i] = l->dilation[i] = 1;
    if (depthwise ? !args_integer(r, "multiplier", false, 1, &l->multiplier)
                  : !args_integer(r, "filters", true, 1, &l->filters))
        return false;
    return args_ints(r, "kernel", l->nd, true, 1, l->kernel) &&
           args_ints(r, "stride", l->nd, false, 1, l->stride) &&
           args_ints(r, "dilation", l->nd, false, 1, l->dilation) &&
           args_padding(r, l->nd, l->kind->family == FAMILY_CONV && l->nd == 1, &l->padding,
                        l->pad_explicit) &&
           layer_configure_linear_map(l, r);
}

static bool conv_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    bool depthwise = l->kind->family == FAMILY_DEPTHWISE;
    Shape in;
    if (!layer_spatial_input(l, &ins[0], ctx->diag, &in))
        return false;
    l->cin = in.dim[in.rank - 1];
    int64_t out_channels = depthwise ? mul_sat(l->cin, l->multiplier) : l->filters;
    int64_t sizes[3];
    if (!layer_window_output(l, &in, l->kernel, l->dilation, ctx->diag, sizes))
        return false;
    l->out.rank = l->nd + 1;
    for (int i = 0; i < l->nd; i++)
        l->out.dim[i] = sizes[i];
    l->out.dim[l->nd] = out_channels;

    Shape kshape = {.rank = l->nd + 2};
    for (int i = 0; i < l->nd; i++)
        kshape.dim[i] = l->kernel[i];
    kshape.dim[l->nd] = l->cin;
    kshape.dim[l->nd + 1] = depthwise ? l->multiplier : l->filters;
    return layer_add_kernel_and_bias(l, &kshape, out_channels, ctx);
}

/* Every output element is a dot product over the kernel's taps (times the
 * input channels, for a full convolution). */
static __int128 conv_flops(const Layer *l, const Shape *in)
{
    (void)in;
    __int128 taps = 1;
    for (int i = 0; i < l->nd; i++)
        taps *= l->kernel[i];
    if (l->kind->family == FAMILY_CONV)
        taps *= l->cin;
    return 2 * (__int128)shape_size(&l->out) * taps;
}

const LayerKind conv_kinds[] = {
    {"conv1d", FAMILY_CONV, 1, true, conv_positional, conv_named, conv_configure, conv_infer,
     conv_flops},
    {"conv2d", FAMILY_CONV, 2, true, conv_positional, conv_named, conv_configure, conv_infer,
     conv_flops},
    {"conv3d", FAMILY_CONV, 3, true, conv_positional, conv_named, conv_configure, conv_infer,
     conv_flops},
    {"depthwise_conv2d", FAMILY_DEPTHWISE, 2, true, depthwise_positional, depthwise_named,
     conv_configure, conv_infer, conv_flops},
    {0},
};
