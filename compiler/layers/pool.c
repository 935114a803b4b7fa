/* pool.c - maxpool1d/2d/3d, avgpool1d/2d/3d, global_maxpool and
 * global_avgpool.
 *
 * Padding never counts: max pooling ignores it, average pooling divides
 * by the number of real inputs in the window.
 */
#include "layers.h"

static const char *const pool_positional[] = {"size", NULL};
static const char *const pool_named[] = {"stride", "padding", NULL};
static const char *const no_names[] = {NULL};

static bool pool_configure(Layer *l, ArgReader *r)
{
    l->nd = l->kind->nd;
    for (int i = 0; i < 3; i++)
        l->dilation[i] = 1;
    if (!args_ints(r, "size", l->nd, true, 1, l->kernel))
        return false;
    for (int i = 0; i < l->nd; i++)
        l->stride[i] = l->kernel[i];
    if (!args_ints(r, "stride", l->nd, false, 1, l->stride) ||
        !args_padding(r, l->nd, false, &l->padding, l->pad_explicit))
        return false;
    if (l->padding == PAD_EXPLICIT)
        for (int i = 0; i < l->nd; i++)
            if (l->pad_explicit[i] >= l->kernel[i]) {
                diag_error(r->diag, args_node(r, "padding")->loc,
                           "padding %lld must be smaller than the pool size %lld",
                           (long long)l->pad_explicit[i], (long long)l->kernel[i]);
                return false;
            }
    return true;
}

static bool pool_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    Shape in;
    int64_t sizes[3];
    if (!layer_spatial_input(l, &ins[0], ctx->diag, &in) ||
        !layer_window_output(l, &in, l->kernel, l->dilation, ctx->diag, sizes))
        return false;
    l->cin = in.dim[in.rank - 1];
    l->out.rank = l->nd + 1;
    for (int i = 0; i < l->nd; i++)
        l->out.dim[i] = sizes[i];
    l->out.dim[l->nd] = l->cin;
    return true;
}

static bool global_pool_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    if (ins[0].rank < 2) {
        StrBuf got = {0};
        shape_format(&ins[0], &got);
        diag_error(ctx->diag, l->loc,
                   "%s needs an input with spatial axes (rank 2 to 4), got %s", l->kind->name,
                   got.data);
        strbuf_free(&got);
        return false;
    }
    l->out = (Shape){.rank = 1, .dim = {ins[0].dim[ins[0].rank - 1]}};
    return true;
}

const LayerKind pool_kinds[] = {
    {"maxpool1d", FAMILY_MAXPOOL, 1, false, pool_positional, pool_named, pool_configure, pool_infer,
     NULL},
    {"maxpool2d", FAMILY_MAXPOOL, 2, false, pool_positional, pool_named, pool_configure, pool_infer,
     NULL},
    {"maxpool3d", FAMILY_MAXPOOL, 3, false, pool_positional, pool_named, pool_configure, pool_infer,
     NULL},
    {"avgpool1d", FAMILY_AVGPOOL, 1, false, pool_positional, pool_named, pool_configure, pool_infer,
     NULL},
    {"avgpool2d", FAMILY_AVGPOOL, 2, false, pool_positional, pool_named, pool_configure, pool_infer,
     NULL},
    {"avgpool3d", FAMILY_AVGPOOL, 3, false, pool_positional, pool_named, pool_configure, pool_infer,
     NULL},
    {"global_maxpool", FAMILY_GLOBAL_MAXPOOL, 0, false, no_names, no_names, NULL,
     global_pool_infer, NULL},
    {"global_avgpool", FAMILY_GLOBAL_AVGPOOL, 0, false, no_names, no_names, NULL,
     global_pool_infer, NULL},
    {0},
};
