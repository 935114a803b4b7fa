/* upsample.c - upsample1d/2d/3d: nearest neighbour, each spatial axis
 * repeated `size` times (Keras' UpSampling with interpolation='nearest',
 * PyTorch's repeat_interleave on each axis); the channels unchanged, no
 * parameters.  A tensor of rank nd is read as having one channel, as
 * conv and pool layers read it.
 */
#include "layers.h"

static const char *const upsample_positional[] = {"size", NULL};

/* The size lives in l->kernel, as a pool's does. */
static bool upsample_configure(Layer *l, ArgReader *r)
{
    l->nd = l->kind->nd;
    return args_ints(r, "size", l->nd, true, 1, l->kernel);
}

static bool upsample_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    Shape in;
    if (!layer_spatial_input(l, &ins[0], ctx->diag, &in))
        return false;
    l->cin = in.dim[l->nd];
    l->out = in;
    for (int a = 0; a < l->nd; a++)
        l->out.dim[a] = mul_sat(in.dim[a], l->kernel[a]);
    return true;
}

/* The loops of both passes: on each axis, every input position i and
 * each of its copies r (outer to inner: i0, r0, i1, r1, ...), so the
 * output is written in order; the channel innermost.  Adds to *x_ix the
 * input element's index and to *y_ix the output element's, at channel 0;
 * returns the channel loop's body and sets its variable. */
static IrBlock *upsample_loops(LowerCtx *c, IrIndex *x_ix, IrIndex *y_ix, int *channel)
{
    static const char *const inputs[] = {"i0", "i1", "i2"}, *const copies[] = {"r0", "r1", "r2"};
    const Layer *l = c->l;
    Shape in = layer_spatial_shape(l, c->in_shape[0]);
    int64_t xs[3], ys[3];
    layer_axis_strides(in.dim, l->nd, l->cin, xs);
    layer_axis_strides(l->out.dim, l->nd, l->cin, ys);
    IrBlock *b = &c->f->body;
    *x_ix = *y_ix = ix_const(0);
    for (int a = 0; a < l->nd; a++) {
        int i = ir_var(c->p, c->f, inputs[a]);
        b = &ir_for(c->p, b, i, 0, in.dim[a])->body;
        int r = ir_var(c->p, c->f, copies[a]);
        b = &ir_for(c->p, b, r, 0, l->kernel[a])->body;
        *x_ix = ix_add_var(*x_ix, i, xs[a]);
        *y_ix = ix_add_var(ix_add_var(*y_ix, i, l->kernel[a] * ys[a]), r, ys[a]);
    }
    *channel = ir_var(c->p, c->f, "c");
    return &ir_for(c->p, b, *channel, 0, l->cin)->body;
}

/* y[i*size + r][c] = x[i][c] */
static void upsample_lower(LowerCtx *c)
{
    IrIndex x_ix, y_ix;
    int ch;
    IrBlock *b = upsample_loops(c, &x_ix, &y_ix, &ch);
    ir_store(c->p, b, c->out, ix_add_var(y_ix, ch, 1),
             ir_load(c->p, c->in[0], ix_add_var(x_ix, ch, 1)), false);
}

/* dx[i][c] += sum over the copies r of dy[i*size + r][c] */
static void upsample_backward(const LowerCtx *base)
{
    LowerCtx c = lower_train_func(base, PHASE_BACKWARD, true, "backward");
    IrIndex x_ix, y_ix;
    int ch;
    IrBlock *b = upsample_loops(&c, &x_ix, &y_ix, &ch);
    ir_store(c.p, b, c.din[0], ix_add_var(x_ix, ch, 1),
             ir_load(c.p, c.dout, ix_add_var(y_ix, ch, 1)), true);
}

#define UPSAMPLE_KIND(kind_name, kind_nd) \
    { \
        .name = kind_name, .nd = kind_nd, .positional = upsample_positional, \
        .named = layer_no_names, .quant = QUANT_SAME_SCALE, .configure = upsample_configure, \
        .infer = upsample_infer, .lower = upsample_lower, .lower_backward = upsample_backward \
    }

const LayerKind upsample_kinds[] = {
    UPSAMPLE_KIND("upsample1d", 1),
    UPSAMPLE_KIND("upsample2d", 2),
    UPSAMPLE_KIND("upsample3d", 3),
    {0},
};
