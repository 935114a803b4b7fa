/* conv.c - conv1d, conv2d, conv3d and depthwise_conv2d.
 *
 * Kernels are channels-last: [k..., in_channels, filters] for conv,
 * [kh, kw, in_channels, multiplier] for depthwise, whose output channel
 * c*multiplier + j comes from input channel c.
 */
#include "layers.h"

#include <string.h>

/* The kinds of this file (LayerKind.variant). */
enum { CONV_PLAIN, CONV_DEPTHWISE };

static const char *const conv_positional[] = {"filters", "kernel", NULL};
static const char *const conv_named[] = {"stride",  "padding",   "dilation", "activation", "bias",
                                         "weights", "trainable", "init",     NULL};
static const char *const depthwise_positional[] = {"kernel", NULL};
static const char *const depthwise_named[] = {"stride",     "padding", "dilation",  "activation",
                                              "bias",       "weights", "trainable", "init",
                                              "multiplier", NULL};

/* Read in the order the reference does, so the first bad argument is the
 * one reported. */
static bool conv_configure(Layer *l, ArgReader *r)
{
    bool depthwise = l->kind->variant == CONV_DEPTHWISE;
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
           args_padding(r, l->nd, l->kind->variant == CONV_PLAIN && l->nd == 1, &l->padding,
                        l->pad_explicit) &&
           layer_configure_linear_map(l, r);
}

static bool conv_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    bool depthwise = l->kind->variant == CONV_DEPTHWISE;
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
    if (l->kind->variant == CONV_PLAIN)
        taps *= l->cin;
    return 2 * (__int128)shape_size(&l->out) * taps;
}

/* ---- forward lowering -------------------------------------------------------
 * Channels-last activations, [k..., cin, cout] kernels.  For every output
 * position: accumulators for all output channels start at the bias, each
 * valid tap adds x * w with the output channel innermost (contiguous in
 * the kernel and the output, a constant trip count: what a vectoriser
 * wants), then the activation is applied on the way out.  Padding is
 * never tested: layer_for_each_region splits the output into regions
 * whose valid taps are constant. */

/* One region's loops over its output positions, with the strides (in
 * floats) of each axis of x, w and y and the indices of tap 0. */
typedef struct {
    bool depthwise;
    int64_t cin, cout, mult;
    int64_t xs[3], ws[3], ys[3];
    IrIndex x_ix, w_ix, y_ix;
    IrBlock *body; /* inside the position loops */
} ConvRegion;

static ConvRegion conv_region_loops(LowerCtx *c, const WindowSegment *region)
{
    const Layer *l = c->l;
    int nd = l->nd;
    ConvRegion r = {.depthwise = l->kind->variant == CONV_DEPTHWISE,
                    .cin = l->cin,
                    .cout = l->out.dim[nd],
                    .mult = l->multiplier};
    Shape in = layer_spatial_shape(l, c->in_shape[0]);
    layer_axis_strides(in.dim, nd, r.cin, r.xs);
    layer_axis_strides(l->kernel, nd, r.cin * (r.depthwise ? r.mult : r.cout), r.ws);
    layer_axis_strides(l->out.dim, nd, r.cout, r.ys);
    r.x_ix = r.w_ix = r.y_ix = ix_const(0);
    r.body = layer_position_loops(c, region, nd, r.xs, r.ys, &r.x_ix, &r.y_ix);
    return r;
}

static bool region_has_taps(const Layer *l, const WindowSegment *region)
{
    for (int a = 0; a < l->nd; a++)
        if (region[a].klo >= region[a].khi)
            return false;
    return true;
}

/* The window's tap loops over its first naxes axes, inside parent (the
 * last marked for unrolling if asked): returns their body, with *x_ix and
 * *w_ix moved to the tap. */
static IrBlock *conv_window_loops(LowerCtx *c, const WindowSegment *region, int naxes,
                                  IrBlock *parent, const int64_t *xs, const int64_t *ws,
                                  IrIndex *x_ix, IrIndex *w_ix, bool unroll_last)
{
    const Layer *l = c->l;
    IrBlock *taps = parent;
    for (int a = 0; a < naxes; a++) {
        int k = ir_var(c->p, c->f, layer_tap_name(l->nd, a));
        IrStmt *loop = ir_for(c->p, taps, k, region[a].klo, region[a].khi);
        loop->unroll = unroll_last && a == naxes - 1;
        taps = &loop->body;
        *x_ix = ix_add_var(*x_ix, k, l->dilation[a] * xs[a]);
        *w_ix = ix_add_var(*w_ix, k, ws[a]);
    }
    return taps;
}

/* The region's tap loops, then the input channel's: returns the body,
 * with r->x_ix and r->w_ix moved to the tap and *ci the channel. */
static IrBlock *conv_tap_loops(LowerCtx *c, const WindowSegment *region, ConvRegion *r,
                               bool unroll_last, int *ci)
{
    IrBlock *taps = conv_window_loops(c, region, c->l->nd, r->body, r->xs, r->ws, &r->x_ix,
                                      &r->w_ix, unroll_last);
    *ci = ir_var(c->p, c->f, "ci");
    return &ir_for(c->p, taps, *ci, 0, r->cin)->body;
}

/* The input at ix: in an int8 function less its zero point (a padded
 * tap, real 0, is never read: it would add 0). */
static IrExpr *conv_input(LowerCtx *c, IrIndex ix)
{
    return c->q ? lower_q_centred(c, 0, ix) : ir_load(c->p, c->in[0], ix);
}

/* Position by position, the output channels' sums in acc: the plain
 * loops, and an int8 function's. */
static void conv_region_scalar(LowerCtx *c, const WindowSegment *region)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int acc = c->acc; /* one output position's accumulators */
    ConvRegion r = conv_region_loops(c, region);
    bool depthwise = r.depthwise;
    int64_t cin = r.cin, cout = r.cout, mult = r.mult;
    IrBlock *b = r.body;
    int co = ir_var(p, f, "co");
    IrStmt *init = ir_for(p, b, co, 0, cout);
    ir_store(p, &init->body, acc, ix_var(co, 1),
             l->use_bias || c->q ? ir_load(p, c->params[1], ix_var(co, 1)) : ir_num(p, 0.0f),
             false);

    if (region_has_taps(l, region)) {
        int ci;
        IrBlock *body = conv_tap_loops(c, region, &r, cin <= 4, &ci);
        IrIndex x_ix = r.x_ix, w_ix = r.w_ix;
        IrIndex xi = ix_add_var(x_ix, ci, 1);
        if (depthwise) { /* output channel ci*mult + j reads input channel ci */
            int j = ir_var(p, f, "j");
            IrBlock *inner = &ir_for(p, body, j, 0, mult)->body;
            IrIndex oc = ix_add_var(ix_var(ci, mult), j, 1);
            ir_store(
                p, inner, acc, oc,
                ir_op(p, IRE_MUL, conv_input(c, xi), ir_load(p, c->params[0], ix_add(w_ix, oc))),
                true);
        } else {
            int co2 = ir_var(p, f, "co");
            IrBlock *inner = &ir_for(p, body, co2, 0, cout)->body;
            ir_store(
                p, inner, acc, ix_var(co2, 1),
                ir_op(p, IRE_MUL, conv_input(c, xi),
                      ir_load(p, c->params[0], ix_add_var(ix_add_var(w_ix, ci, cout), co2, 1))),
                true);
        }
    }
    int co3 = ir_var(p, f, "co");
    IrStmt *out = ir_for(p, b, co3, 0, cout);
    ir_store(p, &out->body, c->out, ix_add_var(r.y_ix, co3, 1),
             lower_epilogue(c, ir_load(p, acc, ix_var(co3, 1)), ix_var(co3, 1)), false);
}

/* The most output positions in one register block (8 channels in half a
 * 512-bit vector: 13 of a row of 26, in 14 of the 32 registers), with one
 * vector of output channels (conv_block_size); the most pairs of them in
 * a block of pairs (conv_pairs_most). */
enum { CONV_MAX_BLOCK = 16 };

/* A register block's vector on its way out: to the output at y_ix
 * through the epilogue's vector form, or else to the accumulator array
 * at acc_ix for conv_block_out. */
static void conv_vector_out(LowerCtx *c, IrBlock *b, int vreg, int width, IrIndex y_ix,
                            IrIndex acc_ix)
{
    if (!lower_epilogue_in_vectors(c)) {
        ir_vstore(c->p, b, c->acc, acc_ix, vreg);
        return;
    }
    IrExpr *v = lower_epilogue_vector(c, vreg, width);
    if (v->kind != IRE_VREG)
        ir_vset(c->p, b, vreg, SCALAR_SET, v);
    ir_vstore(c->p, b, c->out, y_ix, vreg);
}

/* CHUNK vectors of output channels from BASE for BLOCK positions:
 * accumulated in registers over the taps and input channels, then out
 * (conv_vector_out; position r at y_ix + r * ystep). */
static void conv_channel_group(LowerCtx *c, const WindowSegment *region, IrBlock *b, IrIndex x_ix,
                               IrIndex y_ix, int64_t ystep, int block, int along, int width,
                               IrIndex base, int chunk)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int nd = l->nd, last = nd - 1;
    Shape in = layer_spatial_shape(l, c->in_shape[0]);
    int64_t cin = l->cin, cout = l->out.dim[nd];
    int64_t xs[3], ws[3];
    layer_axis_strides(in.dim, nd, cin, xs);
    int64_t step = l->stride[along] * xs[along]; /* from one position of the block to the next */
    layer_axis_strides(l->kernel, nd, cin * cout, ws);
    int acc[CONV_MAX_BLOCK][4], wv[4];
    for (int r = 0; r < block; r++)
        for (int v = 0; v < chunk; v++) {
            acc[r][v] = ir_vreg(p, f, "a", width);
            if (l->use_bias)
                ir_vset(p, b, acc[r][v], SCALAR_DECLARE,
                        ir_vload(p, c->params[1], ix_add(base, ix_const(v * width)), width));
            else
                ir_vset(p, b, acc[r][v], SCALAR_DECLARE, ir_vzero(p, width));
        }
    IrIndex xk = x_ix, wk = base;
    if (region_has_taps(l, region)) {
        /* With no dilation on the last axis, its taps and the input
         * channels are one contiguous run in x and in w: one loop. */
        bool merge = l->dilation[last] == 1;
        int64_t run_lo = merge ? region[last].klo * cin : 0;
        int64_t run_hi = merge ? region[last].khi * cin : cin;
        IrBlock *taps = conv_window_loops(c, region, merge ? last : nd, b, xs, ws, &xk, &wk, false);
        int ci = ir_var(p, f, merge ? "j" : "ci");
        IrStmt *run = ir_for(p, taps, ci, run_lo, run_hi);
        run->unroll_hint = true; /* gcc -O2 does not; lenet: 4.6 -> 3.9 us */
        /* A run of 4 or fewer (one input channel: lenet's first layer has
         * 3 taps a run) is unrolled here: gcc kept the 3-trip loop and
         * moved the block's inputs from register to register each time
         * round, at 17% of the peak.  (Up to 8, or the tap loop around it
         * too, gained little and made the examples' C 12-40% longer.) */
        run->unroll = run_hi - run_lo <= 4;
        IrBlock *body = &run->body;
        xk = ix_add_var(xk, ci, 1);
        wk = ix_add_var(wk, ci, cout);
        for (int v = 0; v < chunk; v++) {
            wv[v] = ir_vreg(p, f, "w", width);
            ir_vset(p, body, wv[v], SCALAR_DECLARE,
                    ir_vload(p, c->params[0], ix_add(wk, ix_const(v * width)), width));
        }
        for (int r = 0; r < block; r++) {
            IrExpr *x = ir_load(p, c->in[0], ix_add(xk, ix_const(r * step)));
            for (int v = 0; v < chunk; v++)
                ir_vset(p, body, acc[r][v], SCALAR_ADD, ir_op(p, IRE_MUL, x, ir_vref(p, wv[v])));
        }
    }
    for (int r = 0; r < block; r++)
        for (int v = 0; v < chunk; v++)
            conv_vector_out(c, b, acc[r][v], width,
                            ix_add(ix_add(y_ix, base), ix_const(r * ystep + v * width)),
                            ix_add(base, ix_const(r * cout + v * width)));
}

/* The loops over a region's positions down to its blocks of `block`
 * along axis `along`: returns their body, with *x_ix and *y_ix at the
 * block's first position (position r of block ob is lo + ob*block + r on
 * that axis). */
static IrBlock *conv_block_loops(LowerCtx *c, const WindowSegment *region, int block, int along,
                                 IrIndex *x_ix, IrIndex *y_ix)
{
    IrProgram *p = c->p;
    const Layer *l = c->l;
    int nd = l->nd;
    Shape in = layer_spatial_shape(l, c->in_shape[0]);
    int64_t xs[3], ys[3];
    layer_axis_strides(in.dim, nd, l->cin, xs);
    layer_axis_strides(l->out.dim, nd, l->out.dim[nd], ys);
    int64_t nblocks = (region[along].hi - region[along].lo) / block;
    *x_ix = *y_ix = ix_const(0);
    IrBlock *b = layer_position_loops_but(c, region, along, xs, ys, x_ix, y_ix);
    int ob = ir_var(p, c->f, "blk");
    b = &ir_for(p, b, ob, 0, nblocks)->body;
    int64_t lo = region[along].lo, s = l->stride[along];
    *x_ix =
        ix_add(*x_ix, ix_scale(ix_add_var(ix_const(lo * s - l->pad_before[along]), ob, block * s),
                               xs[along]));
    *y_ix = ix_add(*y_ix, ix_scale(ix_add_var(ix_const(lo), ob, block), ys[along]));
    return b;
}

/* The activation on the way out, position by position: the block's
 * `block` positions, `step` apart in y, from the accumulator array. */
static void conv_block_out(LowerCtx *c, IrBlock *b, IrIndex y_ix, int block, int64_t step)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int64_t cout = c->l->out.dim[c->l->nd];
    int r = ir_var(p, f, "r");
    IrStmt *rows = ir_for(p, b, r, 0, block);
    int co = ir_var(p, f, "co");
    IrStmt *out = ir_for(p, &rows->body, co, 0, cout);
    ir_store(
        p, &out->body, c->out, ix_add_var(ix_add_var(y_ix, r, step), co, 1),
        lower_epilogue(c, ir_load(p, c->acc, ix_add_var(ix_var(r, cout), co, 1)), ix_var(co, 1)),
        false);
}

/* Register blocks: `block` output positions along spatial axis `along`
 * times up to four vectors of output channels are accumulated in vector
 * registers over all taps and input channels; each kernel vector is loaded
 * once and used for every position of the block.  Needs the output
 * channels in whole vectors. */
static void conv_region_vector(LowerCtx *c, const WindowSegment *region, int block, int along)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int64_t cout = l->out.dim[l->nd];
    int width = lower_lanes_dividing(p, cout);
    IrIndex x_ix, y_ix;
    IrBlock *b = conv_block_loops(c, region, block, along, &x_ix, &y_ix);
    int64_t ys[3];
    layer_axis_strides(l->out.dim, l->nd, cout, ys);

    /* Four vectors of output channels at a time; a loop over such groups
     * when there are more than four, so the code stays small however many
     * channels. */
    int64_t nvec = cout / width, groups = nvec / 4, first = 0;
    if (groups > 4) {
        int g = ir_var(p, f, "group");
        IrStmt *loop = ir_for(p, b, g, 0, groups);
        conv_channel_group(c, region, &loop->body, x_ix, y_ix, ys[along], block, along, width,
                           ix_var(g, 4 * width), 4);
        first = groups * 4;
    }
    for (; first < nvec; first += 4) {
        int chunk = (int)(nvec - first < 4 ? nvec - first : 4);
        conv_channel_group(c, region, b, x_ix, y_ix, ys[along], block, along, width,
                           ix_const(first * width), chunk);
    }
    if (!lower_epilogue_in_vectors(c))
        conv_block_out(c, b, y_ix, block, ys[along]);
}

/* A region's positions along axis `along` in blocks of `block` (each),
 * the few left over in one smaller block. */
static void conv_in_blocks(LowerCtx *c, const WindowSegment *region, int block, int along,
                           void (*each)(LowerCtx *c, const WindowSegment *region, int block,
                                        int along))
{
    int64_t n = region[along].hi - region[along].lo;
    if (n >= block)
        each(c, region, block, along);
    if (n % block) {
        WindowSegment tail[3];
        memcpy(tail, region, sizeof tail);
        tail[along].lo = region[along].hi - n % block;
        each(c, tail, (int)(n % block), along);
    }
}

/* ---- pairs of positions -----------------------------------------------------
 * A layer with one input channel and half a vector of output channels
 * (lenet's first: 8 filters, 16-float vectors) would leave half of each
 * FMA idle.  Instead an accumulator holds two neighbouring positions,
 * interleaved: lane 2c+j is channel c of position 2m+j.  Their inputs
 * at a tap, x[q] and x[q+1], are adjacent (one channel, stride 1): one
 * 64-bit broadcast (IRE_VPAIRS) makes the vector.  The kernel and bias are
 * copied once a call with each value twice ("wpair", "bpair"), and one
 * shuffle a register puts the lanes back in position order (IRE_VUNPAIR;
 * read through strided indices, gcc -O2 left that scalar: lenet 50%
 * slower).  Each lane adds the same products in the same order as the
 * plain blocks: the same sums. */

static bool conv_pairs(const LowerCtx *c)
{
    const Layer *l = c->l;
    int last = l->nd - 1;
    int64_t cout = l->out.dim[l->nd];
    return l->kind->variant == CONV_PLAIN && l->cin == 1 && l->stride[last] == 1 &&
           l->dilation[last] == 1 && c->p->vector_width == 2 * cout;
}

/* The most positions in one block of pairs: even, two a register, with
 * one register for the kernel and one for the inputs. */
static int conv_pairs_most(const LowerCtx *c)
{
    int regs = c->p->vector_registers - 2;
    return 2 * (regs < CONV_MAX_BLOCK ? regs : CONV_MAX_BLOCK);
}

/* wpair and bpair, at the top of the function. */
static void conv_pairs_setup(LowerCtx *c, int *wpair, int *bpair)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int64_t cout = l->out.dim[l->nd], taps = 1;
    for (int a = 0; a < l->nd; a++)
        taps *= l->kernel[a];
    *wpair = lower_local(c, "wpair", taps * 2 * cout);
    *bpair = l->use_bias ? lower_local(c, "bpair", 2 * cout) : -1;
    int t = ir_var(p, f, "t"), co = ir_var(p, f, "co");
    IrBlock *b = &ir_for(p, &ir_for(p, &f->body, t, 0, taps)->body, co, 0, cout)->body;
    for (int j = 0; j < 2; j++)
        ir_store(p, b, *wpair, ix_add(ix_add_var(ix_var(t, 2 * cout), co, 2), ix_const(j)),
                 ir_load(p, c->params[0], ix_add_var(ix_var(t, cout), co, 1)), false);
    if (*bpair < 0)
        return;
    int co2 = ir_var(p, f, "co");
    IrBlock *bb = &ir_for(p, &f->body, co2, 0, cout)->body;
    for (int j = 0; j < 2; j++)
        ir_store(p, bb, *bpair, ix_add(ix_var(co2, 2), ix_const(j)),
                 ir_load(p, c->params[1], ix_var(co2, 1)), false);
}

/* `block` (even) positions of a region as block/2 interleaved pairs
 * (along the last axis: a pair is two adjacent inputs). */
static void conv_region_pairs(LowerCtx *c, const WindowSegment *region, int block, int along)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int nd = l->nd, last = nd - 1, width = p->vector_width, npairs = block / 2;
    Shape in = layer_spatial_shape(l, c->in_shape[0]);
    int64_t cout = l->out.dim[nd];
    int64_t xs[3], ws[3];
    layer_axis_strides(in.dim, nd, 1, xs);
    layer_axis_strides(l->kernel, nd, 2 * cout, ws);
    IrIndex x_ix, y_ix;
    IrBlock *b = conv_block_loops(c, region, block, along, &x_ix, &y_ix);

    int acc[CONV_MAX_BLOCK];
    for (int m = 0; m < npairs; m++) {
        acc[m] = ir_vreg(p, f, "a", width);
        ir_vset(p, b, acc[m], SCALAR_DECLARE,
                l->use_bias ? ir_vload(p, c->aux[1], ix_const(0), width) : ir_vzero(p, width));
    }
    if (region_has_taps(l, region)) {
        IrIndex xk = x_ix, wk = ix_const(0);
        IrBlock *taps = conv_window_loops(c, region, last, b, xs, ws, &xk, &wk, false);
        int j = ir_var(p, f, "j");
        IrStmt *run = ir_for(p, taps, j, region[last].klo, region[last].khi);
        run->unroll_hint = true;
        run->unroll = region[last].khi - region[last].klo <= 4;
        xk = ix_add_var(xk, j, 1);
        wk = ix_add_var(wk, j, 2 * cout);
        int wv = ir_vreg(p, f, "w", width);
        ir_vset(p, &run->body, wv, SCALAR_DECLARE, ir_vload(p, c->aux[0], wk, width));
        for (int m = 0; m < npairs; m++) {
            IrExpr *x = ir_vpairs(p, c->in[0], ix_add(xk, ix_const(2 * m)), width);
            ir_vset(p, &run->body, acc[m], SCALAR_ADD, ir_op(p, IRE_MUL, x, ir_vref(p, wv)));
        }
    }
    /* Back in position order (two positions' channels, adjacent in the
     * output), then the activation on the way out. */
    for (int m = 0; m < npairs; m++) {
        ir_vset(p, b, acc[m], SCALAR_SET, ir_vunpair(p, acc[m], width));
        conv_vector_out(c, b, acc[m], width, ix_add(y_ix, ix_const(m * width)),
                        ix_const(m * width));
    }
    if (!lower_epilogue_in_vectors(c))
        conv_block_out(c, b, y_ix, block, cout);
}

/* The region's even part in blocks of pairs, an odd last position alone. */
static void conv_region_in_pairs(LowerCtx *c, const WindowSegment *region)
{
    int last = c->l->nd - 1;
    int64_t n = region[last].hi - region[last].lo, even = n - n % 2;
    if (even) {
        int most = conv_pairs_most(c);
        int64_t blocks = (even + most - 1) / most, block = (even + blocks - 1) / blocks;
        block += block % 2;
        WindowSegment part[3];
        memcpy(part, region, sizeof part);
        part[last].hi = region[last].lo + even;
        conv_in_blocks(c, part, (int)block, last, conv_region_pairs);
    }
    if (n % 2) {
        WindowSegment one[3];
        memcpy(one, region, sizeof one);
        one[last].lo = region[last].hi - 1;
        conv_region_scalar(c, one);
    }
}

/* How many output positions a register block holds at most: the
 * accumulators and one chunk of kernel vectors must fit the vector
 * registers. */
static int conv_block_size(const LowerCtx *c)
{
    const IrProgram *p = c->p;
    int64_t cout = c->l->out.dim[c->l->nd];
    int width = lower_lanes_dividing(p, cout);
    if (!width || c->l->kind->variant != CONV_PLAIN)
        return 0;
    int64_t chunk = cout / width < 4 ? cout / width : 4;
    int64_t block = (p->vector_registers - 1 - chunk) / chunk;
    /* past 8 positions only with one vector of channels: there the block
     * is all the work a tap has (with more vectors, 8 positions already
     * keep the FMA units busy, and a longer block only made the C longer
     * to compile) */
    int most = chunk == 1 ? CONV_MAX_BLOCK : 8;
    return block < 2 ? 0 : block > most ? most : (int)block;
}

/* The axis a region's register blocks run along: the last, unless another
 * holds more of the region's positions.  A padded 2-D conv's left and
 * right edges are regions one column wide; along the last axis their
 * blocks held one position, whose few accumulators left the FMA units
 * waiting on each other (fashion's conv2d_2: a fifth of its work at half
 * the speed of the rest).  Down the column they fill whole blocks. */
static int conv_block_axis(const Layer *l, const WindowSegment *region)
{
    int along = l->nd - 1;
    for (int a = l->nd - 2; a >= 0; a--)
        if (region[a].hi - region[a].lo > region[along].hi - region[along].lo)
            along = a;
    return along;
}

/* A region's positions along one axis go to register blocks of nearly
 * equal size (26 positions at most 16: 13 and 13, not 16 and 10): each
 * accumulator's sum is a chain of dependent adds, so a block takes at
 * least the chain's time however few positions it holds, and a small
 * last block cost as much as a full one.  A layer whose output channels
 * do not fill whole vectors is done position by position. */
static void conv_region(LowerCtx *c, const WindowSegment *region)
{
    if (conv_pairs(c)) {
        conv_region_in_pairs(c, region);
        return;
    }
    int most = conv_block_size(c);
    int along = conv_block_axis(c->l, region);
    int64_t n = region[along].hi - region[along].lo;
    if (most == 0) {
        conv_region_scalar(c, region);
        return;
    }
    if (n == 0)
        return;
    int64_t blocks = (n + most - 1) / most;
    conv_in_blocks(c, region, (int)((n + blocks - 1) / blocks), along, conv_region_vector);
}

static void conv_lower(LowerCtx *c)
{
    Shape in = layer_spatial_shape(c->l, c->in_shape[0]);
    bool pairs = conv_pairs(c);
    int block = pairs ? conv_pairs_most(c) : conv_block_size(c);
    c->acc = lower_local(c, "acc", c->l->out.dim[c->l->nd] * (block ? block : 1));
    lower_epilogue_setup(c);
    if (pairs)
        conv_pairs_setup(c, &c->aux[0], &c->aux[1]);
    layer_for_each_region(c, c->l, &in, conv_region);
    lower_output_softmax(c);
}

/* ---- int8 vector kernels (docs/int8.md) --------------------------------
 * A row of the window, the last axis's taps times the input channels, is
 * contiguous in the input when the last axis has no dilation: four of its
 * bytes are one 32-bit broadcast, dotted with four weights in each int32
 * lane (IRE_VDOT4).  The kernel is packed [outer taps][row in groups of
 * four][cout][4], a row padded to whole groups with zero weights.  The
 * input is first copied into a local array padded with its zero point, so
 * that every window is whole: each channel's sum then has the same zero
 * point correction, folded into its vector bias (quant.c). */
static bool conv_has_vectors_q(const Layer *l)
{
    return l->kind->variant == CONV_PLAIN && l->dilation[l->nd - 1] == 1 &&
           l->out.dim[l->nd] % 4 == 0;
}

static int64_t conv_row_q(const Layer *l)
{
    return l->kernel[l->nd - 1] * l->cin;
}

static int64_t conv_groups_q(const Layer *l)
{
    return (conv_row_q(l) + 3) / 4;
}

static int64_t conv_outer_taps_q(const Layer *l)
{
    int64_t taps = 1;
    for (int a = 0; a < l->nd - 1; a++)
        taps *= l->kernel[a];
    return taps;
}

static int64_t conv_packed_size_q(const Layer *l)
{
    if (!conv_has_vectors_q(l))
        return 0;
    return conv_outer_taps_q(l) * conv_groups_q(l) * l->out.dim[l->nd] * 4;
}

static void conv_pack_q(const Layer *l, const int8_t *kernel, int8_t *packed)
{
    int64_t row = conv_row_q(l), groups = conv_groups_q(l), cout = l->out.dim[l->nd];
    for (int64_t t = 0; t < conv_outer_taps_q(l); t++)
        for (int64_t g = 0; g < groups; g++)
            for (int64_t co = 0; co < cout; co++)
                for (int64_t j = 0; j < 4; j++) {
                    int64_t r = 4 * g + j;
                    *packed++ = r < row ? kernel[(t * row + r) * cout + co] : 0;
                }
}

/* The input as the kernels read it, and its strides: a local copy
 * padded with the zero point (and 4 bytes past its end, which a row's last
 * group may read) where the layer pads or a row is not whole groups, and
 * always in a VNNI program, whose copy holds x + 128 as unsigned bytes,
 * or where asked (a pool taken in: its output may be where the input
 * was, in the memory plan); else the input itself. */
typedef struct {
    int view;
    int64_t dims[3], strides[3];
} ConvPadded;

/* The copy's bytes at most (it is on the stack): a larger input takes
 * the plain loops. */
enum { CONV_Q_MAX_COPY = 1 << 20 };

/* The padded input's dims and strides, and its bytes (with `slack` past
 * its end); whether the layer pads (or reads past its input). */
static int64_t conv_padded_dims_q(const LowerCtx *c, ConvPadded *x, bool *pads, int slack)
{
    const Layer *l = c->l;
    Shape in = layer_spatial_shape(l, c->in_shape[0]);
    *pads = conv_row_q(l) % 4 != 0;
    for (int a = 0; a < l->nd; a++) {
        int64_t reach =
            (l->out.dim[a] - 1) * l->stride[a] + (l->kernel[a] - 1) * l->dilation[a] + 1;
        int64_t held = in.dim[a] + l->pad_before[a];
        x->dims[a] = reach > held ? reach : held;
        *pads |= l->pad_before[a] > 0 || x->dims[a] > in.dim[a];
    }
    layer_axis_strides(x->dims, l->nd, l->cin, x->strides);
    return x->strides[0] * x->dims[0] + slack;
}

/* slack: the bytes past the end that the kernels may read (4 for a row's
 * last group, 8 for a pair's load). */
static ConvPadded conv_padded_input_q(LowerCtx *c, bool copy, int slack)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int nd = l->nd;
    Shape in = layer_spatial_shape(l, c->in_shape[0]);
    ConvPadded x = {.view = c->in[0]};
    int offset = p->dot_offset;
    bool pads;
    int64_t size = conv_padded_dims_q(c, &x, &pads, slack);
    if (!pads && !offset && !copy) {
        layer_axis_strides(in.dim, nd, l->cin, x.strides);
        return x;
    }
    x.view = ir_typed_view(p, f, "xp", VIEW_LOCAL, 0, size, true, offset ? IR_U8 : IR_I8);
    int64_t xs[3];
    layer_axis_strides(in.dim, nd, l->cin, xs);
    /* Where the copy keeps the input's layout (nothing before it, the
     * same rows), it is one run, which the compiler vectorizes, and only
     * its tail is the zero point; else rows of the last axis (lenet's
     * first conv: 784 bytes a run rather than 28 rows of 28). */
    bool same_layout = true;
    for (int a = 0; a < nd; a++)
        same_layout &= l->pad_before[a] == 0 && (a == 0 || x.dims[a] == in.dim[a]);
    int64_t whole = xs[0] * in.dim[0];
    int i = ir_var(p, f, "i");
    ir_store(p, &ir_for(p, &f->body, i, same_layout ? whole : 0, size)->body, x.view, ix_var(i, 1),
             ir_int(p, lower_q_zero(c, l->srcs[0]) + offset), false);
    IrIndex from = ix_const(0), to = ix_const(0);
    IrBlock *b = &f->body;
    if (same_layout) {
        /* whole 64-byte vectors, then the rest: gcc -O2 vectorizes a loop
         * only in vectors that divide its count (lenet's second conv: 1352
         * bytes, 8 at a time) */
        int64_t split = whole / 64 * 64, ends[3] = {0, split, whole};
        for (int run = 0; run < 2; run++) {
            if (ends[run] == ends[run + 1])
                continue;
            IrExpr *v = ir_load(p, c->in[0], ix_var(i, 1));
            ir_store(p, &ir_for(p, b, i, ends[run], ends[run + 1])->body, x.view, ix_var(i, 1),
                     offset ? ir_op(p, IRE_ADD, v, ir_int(p, offset)) : v, false);
        }
        return x;
    }
    for (int a = 0; a < nd - 1; a++) {
        int o = ir_var(p, f, arena_printf(&p->arena, "i%d", a));
        b = &ir_for(p, b, o, 0, in.dim[a])->body;
        from = ix_add_var(from, o, xs[a]);
        to = ix_add_var(to, o, x.strides[a]);
    }
    for (int a = 0; a < nd; a++)
        to = ix_add(to, ix_const(l->pad_before[a] * x.strides[a]));
    int j = ir_var(p, f, "j");
    b = &ir_for(p, b, j, 0, in.dim[nd - 1] * l->cin)->body;
    IrExpr *v = ir_load(p, c->in[0], ix_add_var(from, j, 1));
    ir_store(p, b, x.view, ix_add_var(to, j, 1),
             offset ? ir_op(p, IRE_ADD, v, ir_int(p, offset)) : v, false);
    return x;
}

typedef struct {
    LowerCtx *c;
    ConvPadded x;
    int packed, bias;
    int lanes, chunk;  /* int32 lanes a vector; vectors of channels a pass */
    bool pairs;        /* two positions a vector (conv_pairs_q): its lanes, 2 * lanes */
    const Layer *pool; /* the max pooling taken in (LowerQuant.pool), or NULL */
    int least;         /* then: the view of the least int32s, where each max starts */
} ConvQ;

/* `block` positions from the block's first (x at x_ix, y at y_ix): for
 * each pass over `chunk` vectors of channels, their sums over the window
 * in registers, then out (requantized, or through acc for the followers'
 * epilogues).  With a max pool taken in, a position is the pool's: the
 * sums of each conv position of its window, their max requantized once
 * (the requantization and clamps never decrease: the max of the int8
 * outputs).  With pairs, a vector holds two neighbouring positions (a
 * last odd one has a vector of its own): their channels are the whole
 * vector, so the pair's outputs are one run. */
static void conv_block_q(const ConvQ *k, IrBlock *b, IrIndex x_ix, IrIndex y_ix, int block)
{
    LowerCtx *c = k->c;
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int nd = l->nd, last = nd - 1, lanes = k->lanes, chunk = k->chunk;
    int64_t cout = l->out.dim[nd], groups = conv_groups_q(l);
    /* from one position to the next in x */
    int64_t step = (k->pool ? k->pool->stride[last] : 1) * l->stride[last] * l->cin;
    /* slot s: positions first[s] .. first[s] + count[s] - 1, in one vector each pass */
    int per = k->pairs ? 2 : 1, slots = (block + per - 1) / per, first[CONV_MAX_BLOCK],
        count[CONV_MAX_BLOCK];
    for (int s = 0; s < slots; s++) {
        first[s] = s * per;
        count[s] = block - first[s] < per ? block - first[s] : per;
    }
    int cv = ir_var(p, f, "cv");
    IrBlock *pass = &ir_for(p, b, cv, 0, cout / (lanes * chunk))->body;
    IrIndex co = ix_var(cv, (int64_t)lanes * chunk);
    int acc[CONV_MAX_BLOCK][4], best[CONV_MAX_BLOCK][4], wv[2][4];
    IrBlock *sums = pass;
    IrIndex xk = x_ix;
    if (k->pool) { /* the pool window's conv positions */
        for (int s = 0; s < slots; s++)
            for (int v = 0; v < chunk; v++) {
                best[s][v] = ir_typed_vreg(p, f, "m", count[s] * lanes, IR_I32);
                ir_vset(p, pass, best[s][v], SCALAR_DECLARE,
                        ir_vload(p, k->least, ix_const(0), count[s] * lanes));
            }
        for (int a = 0; a < nd; a++) {
            int wp = ir_var(p, f, arena_printf(&p->arena, "p%d", a));
            IrStmt *window = ir_for(p, sums, wp, 0, k->pool->kernel[a]);
            window->unroll = true;
            sums = &window->body;
            xk = ix_add_var(xk, wp, l->stride[a] * k->x.strides[a]);
        }
    }
    for (int s = 0; s < slots; s++)
        for (int v = 0; v < chunk; v++) {
            acc[s][v] = ir_typed_vreg(p, f, "a", count[s] * lanes, IR_I32);
            IrIndex at = ix_add(co, ix_const(v * lanes));
            ir_vset(p, sums, acc[s][v], SCALAR_DECLARE,
                    count[s] == 2 ? ir_vload_halves(p, k->bias, at, 2 * lanes)
                                  : ir_vload(p, k->bias, at, lanes));
        }
    /* the outer taps, then the row's groups */
    IrBlock *taps = sums;
    IrIndex wk = ix_scale(co, 4);
    int64_t tap_strides[3]; /* the packed kernel's, of each outer tap */
    tap_strides[nd > 1 ? nd - 2 : 0] = groups * cout * 4;
    for (int a = nd - 3; a >= 0; a--)
        tap_strides[a] = tap_strides[a + 1] * l->kernel[a + 1];
    for (int a = 0; a < nd - 1; a++) {
        int t = ir_var(p, f, layer_tap_name(nd, a));
        taps = &ir_for(p, taps, t, 0, l->kernel[a])->body;
        xk = ix_add_var(xk, t, l->dilation[a] * k->x.strides[a]);
        wk = ix_add_var(wk, t, tap_strides[a]);
    }
    int g = ir_var(p, f, "g");
    IrStmt *run = ir_for(p, taps, g, 0, groups);
    run->unroll = groups <= 4;
    IrBlock *body = &run->body;
    xk = ix_add_var(xk, g, 4);
    wk = ix_add_var(wk, g, cout * 4);
    /* the weights of a pass's vectors: [0] for one position, [1] twice for a pair */
    for (int n = 1; n <= per; n++) {
        bool used = false;
        for (int s = 0; s < slots; s++)
            used |= count[s] == n;
        for (int v = 0; v < chunk && used; v++) {
            IrIndex at = ix_add(wk, ix_const(v * lanes * 4));
            wv[n - 1][v] = ir_typed_vreg(p, f, "w", 4 * n * lanes, IR_I8);
            ir_vset(p, body, wv[n - 1][v], SCALAR_DECLARE,
                    n == 2 ? ir_vload_halves(p, k->packed, at, 8 * lanes)
                           : ir_vload(p, k->packed, at, 4 * lanes));
        }
    }
    for (int s = 0; s < slots; s++)
        for (int v = 0; v < chunk; v++) {
            IrIndex at = ix_add(xk, ix_const(first[s] * step));
            IrExpr *sum = ir_vref(p, acc[s][v]);
            ir_vset(p, body, acc[s][v], SCALAR_SET,
                    count[s] == 2
                        ? ir_vdot4_pair(p, sum, k->x.view, at, wv[1][v], 2 * lanes, (int)step)
                        : ir_vdot4(p, sum, k->x.view, at, wv[0][v], lanes));
        }
    if (k->pool)
        for (int s = 0; s < slots; s++)
            for (int v = 0; v < chunk; v++)
                ir_vset(p, sums, best[s][v], SCALAR_SET,
                        ir_op(p, IRE_MAX, ir_vref(p, best[s][v]), ir_vref(p, acc[s][v])));
    bool vector_out = lower_q_vectors_out(c);
    for (int s = 0; s < slots; s++)
        for (int v = 0; v < chunk; v++) {
            IrIndex ch = ix_add(co, ix_const(v * lanes));
            int sums_vreg = k->pool ? best[s][v] : acc[s][v];
            if (vector_out)
                lower_q_vector_out(c, pass, sums_vreg, count[s] * lanes,
                                   ix_add(ix_add(y_ix, ix_const(first[s] * cout)), ch), ch,
                                   count[s] == 2);
            else
                ir_vstore(p, pass, c->acc, ix_add(ch, ix_const(first[s] * cout)), acc[s][v]);
        }
    if (!vector_out)
        conv_block_out(c, b, y_ix, block, cout);
}

/* How many output positions a block holds: its accumulators, a kernel
 * vector a pass's vector and the broadcast input in the registers. */
static int conv_block_size_q(const LowerCtx *c, int chunk)
{
    int most = (c->p->vector_registers - chunk - 2) / chunk;
    int cap = chunk == 1 ? 12 : 8;
    return most < 1 ? 1 : most > cap ? cap : most;
}

/* Whether two positions share a vector (ConvQ.pairs): where the channels
 * fill half of the widest one (lenet's first conv: 8 of 16 lanes), so
 * that the dot products and requantizations of a pair are one; and the
 * two windows' first four bytes are in one 8-byte load (`stride` is the
 * positions' in x). */
static bool conv_pairs_q(const LowerCtx *c, int lanes, int64_t stride, int64_t positions)
{
    const Layer *l = c->l;
    return l->out.dim[l->nd] == lanes && 2 * lanes <= c->p->vector_width && stride * l->cin <= 4 &&
           positions >= 2;
}

/* The positions are the conv's, or with a max pool taken in the pool's:
 * the function then writes the pool's output. */
enum { CONV_POOL_MAX_STEPS = 64 };
static void conv_lower_q_vectors(LowerCtx *c)
{
    IrProgram *p = c->p;
    const Layer *l = c->l;
    int nd = l->nd, last = nd - 1;
    int64_t cout = l->out.dim[nd];
    ConvQ k = {.c = c, .lanes = lower_lanes_dividing(p, cout)};
    /* Only where a requantization costs as much as the sums: with more
     * than CONV_POOL_MAX_STEPS dot products a vector, the sums of a pool
     * window's positions and their max took more registers than the
     * requantizations saved (fashion's 32 to 64 channels: 60 -> 80 us). */
    if (c->q->pool >= 0 && lower_q_vectors_out(c) &&
        conv_outer_taps_q(l) * conv_groups_q(l) <= CONV_POOL_MAX_STEPS) {
        k.pool = c->m->layers[c->q->pool];
        c->q->pooled = true;
    }
    const Shape *out = k.pool ? &k.pool->out : &l->out;
    int64_t vectors = cout / k.lanes;
    k.chunk = vectors % 4 == 0 ? 4 : vectors % 3 == 0 ? 3 : vectors % 2 == 0 ? 2 : 1;
    int64_t n = out->dim[last];
    k.pairs = conv_pairs_q(c, k.lanes, (k.pool ? k.pool->stride[last] : 1) * l->stride[last], n);
    int most = conv_block_size_q(c, k.chunk * (k.pool ? 2 : 1)) * (k.pairs ? 2 : 1);
    int64_t blocks = (n + most - 1) / most;
    int block = (int)((n + blocks - 1) / blocks);
    c->acc = lower_acc_local(c, "acc", cout * block);
    lower_epilogue_setup(c);
    lower_q_vector_views(c, &k.packed, &k.bias);
    if (k.pool) {
        k.least = lower_q_floor_view(c);
        c->out = lower_node_view(c, lower_output_node(k.pool, c->q->pool), "y", true);
    }
    k.x = conv_padded_input_q(c, k.pool != NULL || k.pairs, k.pairs ? 8 : 4);
    int64_t ys[3], per[3]; /* y's strides; a position's conv positions along each axis */
    layer_axis_strides(out->dim, nd, cout, ys);
    for (int a = 0; a < nd; a++)
        per[a] = k.pool ? k.pool->stride[a] : 1;
    IrIndex x_ix = ix_const(0), y_ix = ix_const(0);
    IrBlock *b = &c->f->body;
    for (int a = 0; a < last; a++) {
        int o = ir_var(p, c->f, arena_printf(&p->arena, "o%d", a));
        b = &ir_for(p, b, o, 0, out->dim[a])->body;
        x_ix = ix_add_var(x_ix, o, per[a] * l->stride[a] * k.x.strides[a]);
        y_ix = ix_add_var(y_ix, o, ys[a]);
    }
    int64_t whole = n / block, step = per[last] * l->stride[last] * l->cin;
    int ob = ir_var(p, c->f, "blk");
    IrBlock *each = &ir_for(p, b, ob, 0, whole)->body;
    conv_block_q(&k, each, ix_add_var(x_ix, ob, block * step), ix_add_var(y_ix, ob, block * cout),
                 block);
    if (n % block)
        conv_block_q(&k, b, ix_add(x_ix, ix_const(whole * block * step)),
                     ix_add(y_ix, ix_const(whole * block * cout)), (int)(n % block));
}

/* int8: the sums of each position in int32 (docs/int8.md). */
static void conv_lower_q(LowerCtx *c)
{
    ConvPadded copy;
    bool pads;
    if (lower_q_has_vectors(c) && lower_lanes_dividing(c->p, c->l->out.dim[c->l->nd]) &&
        conv_padded_dims_q(c, &copy, &pads, 8) <= CONV_Q_MAX_COPY) {
        conv_lower_q_vectors(c);
        return;
    }
    Shape in = layer_spatial_shape(c->l, c->in_shape[0]);
    c->acc = lower_acc_local(c, "acc", c->l->out.dim[c->l->nd]);
    lower_epilogue_setup(c);
    layer_for_each_region(c, c->l, &in, conv_region_scalar);
}

/* ---- backward lowering ------------------------------------------------------
 * The forward loops again (the same regions, so padding is never
 * touched), with g the gradient of the pre-activation at each output
 * position: every tap adds x * g to the kernel's gradient (output channel
 * innermost, contiguous) and W . g to the input's gradient; the bias
 * gradient is the sum of g over the positions. */
static void conv_backward_region(LowerCtx *c, const WindowSegment *region)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    ConvRegion r = conv_region_loops(c, region);
    bool depthwise = r.depthwise;
    int64_t cout = r.cout, mult = r.mult;
    int dw = c->dparams[0], db = l->use_bias ? c->dparams[1] : -1, dx = c->din[0];
    if (db >= 0) {
        int co = ir_var(p, f, "co");
        IrStmt *loop = ir_for(p, r.body, co, 0, cout);
        ir_store(p, &loop->body, db, ix_var(co, 1), ir_load(p, c->dout, ix_add_var(r.y_ix, co, 1)),
                 true);
    }
    if (!region_has_taps(l, region) || (dw < 0 && dx < 0))
        return;
    int ci;
    IrBlock *body = conv_tap_loops(c, region, &r, false, &ci);
    IrIndex x_ix = r.x_ix, w_ix = r.w_ix, y_ix = r.y_ix;
    IrIndex xi = ix_add_var(x_ix, ci, 1);
    /* Output channels of this input channel: all (conv), or its multiplier's. */
    int64_t nout = depthwise ? mult : cout;
    IrIndex w_row = ix_add_var(w_ix, ci, nout),
            g_row = depthwise ? ix_add_var(y_ix, ci, mult) : y_ix;
    int width = lower_lanes_within(p, nout);
    int64_t vec = width && !depthwise ? nout / width * width : 0;
    int dot = -1;
    if (dx >= 0) {
        dot = ir_scalar(p, f, "dot");
        ir_set(p, body, dot, SCALAR_DECLARE, ir_num(p, 0.0f));
    }
    if (vec) { /* whole vectors of output channels */
        int acc = ir_vreg(p, f, "acc", width);
        if (dx >= 0)
            ir_vset(p, body, acc, SCALAR_DECLARE, ir_vzero(p, width));
        int cv = ir_var(p, f, "cv");
        IrBlock *vb = &ir_for(p, body, cv, 0, vec / width)->body;
        IrIndex at_w = ix_add_var(w_row, cv, width), at_g = ix_add_var(g_row, cv, width);
        int gv = ir_vreg(p, f, "g", width);
        ir_vset(p, vb, gv, SCALAR_DECLARE, ir_vload(p, c->dout, at_g, width));
        if (dw >= 0) {
            int dwv = ir_vreg(p, f, "dw", width);
            ir_vset(p, vb, dwv, SCALAR_DECLARE, ir_vload(p, dw, at_w, width));
            ir_vset(p, vb, dwv, SCALAR_ADD,
                    ir_op(p, IRE_MUL, ir_load(p, c->in[0], xi), ir_vref(p, gv)));
            ir_vstore(p, vb, dw, at_w, dwv);
        }
        if (dx >= 0) {
            int wv = ir_vreg(p, f, "w", width);
            ir_vset(p, vb, wv, SCALAR_DECLARE, ir_vload(p, c->params[0], at_w, width));
            ir_vset(p, vb, acc, SCALAR_ADD, ir_op(p, IRE_MUL, ir_vref(p, wv), ir_vref(p, gv)));
            for (int lane = 0; lane < width; lane++)
                ir_set(p, body, dot, SCALAR_ADD, ir_vlane(p, acc, lane));
        }
    }
    if (vec < nout) {
        int co = ir_var(p, f, "co");
        IrBlock *tail = &ir_for(p, body, co, vec, nout)->body;
        IrExpr *g = ir_load(p, c->dout, ix_add_var(g_row, co, 1));
        if (dw >= 0)
            ir_store(p, tail, dw, ix_add_var(w_row, co, 1),
                     ir_op(p, IRE_MUL, ir_load(p, c->in[0], xi), g), true);
        if (dx >= 0)
            ir_set(p, tail, dot, SCALAR_ADD,
                   ir_op(p, IRE_MUL, ir_load(p, c->params[0], ix_add_var(w_row, co, 1)), g));
    }
    if (dx >= 0)
        ir_store(p, body, dx, xi, ir_ref(p, dot), true);
}

/* The input's gradient with the kernel transposed: for each output
 * position and tap, dx[position + tap][ci] += sum over co of
 * g[position][co] * WT[tap][co][ci], with vectors of input channels
 * accumulated in registers over the output channels (like the forward
 * pass; no sums across the lanes of a vector), `block` positions along
 * axis `along` at a time: each vector of WT, loaded once, serves them
 * all (one position at a time read the whole transposed kernel from the
 * second-level cache for every position: fashion's conv2d_2 spent a
 * quarter of the step there at 37% of the peak).  For a tap the block's
 * positions write distinct inputs.  Needs the input channels in whole
 * vectors. */
static void conv_input_grad_block(LowerCtx *c, const WindowSegment *region, int block, int along)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int nd = l->nd;
    Shape in = layer_spatial_shape(l, c->in_shape[0]);
    int64_t cin = l->cin, cout = l->out.dim[nd];
    int width = lower_lanes_dividing(p, cin);
    int64_t xs[3], ws[3], ys[3];
    layer_axis_strides(in.dim, nd, cin, xs);
    layer_axis_strides(l->kernel, nd, cin * cout, ws);
    layer_axis_strides(l->out.dim, nd, cout, ys);
    int64_t xstep = l->stride[along] * xs[along]; /* from one position of the block to the next */
    IrIndex x_ix = ix_const(0), y_ix = ix_const(0), w_ix = ix_const(0);
    IrBlock *b = conv_block_loops(c, region, block, along, &x_ix, &y_ix);
    IrBlock *taps = conv_window_loops(c, region, nd, b, xs, ws, &x_ix, &w_ix, false);
    int64_t nvec = cin / width;
    int most = (int)(nvec < 4 ? nvec : 4);
    for (int64_t first = 0; first < nvec; first += most) {
        int chunk = (int)(nvec - first < most ? nvec - first : most);
        int acc[8][4];
        for (int r = 0; r < block; r++)
            for (int v = 0; v < chunk; v++) {
                acc[r][v] = ir_vreg(p, f, "acc", width);
                IrIndex at = ix_add(x_ix, ix_const(r * xstep + (first + v) * width));
                ir_vset(p, taps, acc[r][v], SCALAR_DECLARE, ir_vload(p, c->din[0], at, width));
            }
        int co = ir_var(p, f, "co");
        IrBlock *body = &ir_for(p, taps, co, 0, cout)->body;
        int wv[4];
        for (int v = 0; v < chunk; v++) {
            wv[v] = ir_vreg(p, f, "w", width);
            IrIndex at = ix_add(ix_add_var(w_ix, co, cin), ix_const((first + v) * width));
            ir_vset(p, body, wv[v], SCALAR_DECLARE, ir_vload(p, c->wt, at, width));
        }
        for (int r = 0; r < block; r++) {
            int gs = ir_scalar(p, f, "g");
            ir_set(p, body, gs, SCALAR_DECLARE,
                   ir_load(p, c->dout, ix_add_var(ix_add(y_ix, ix_const(r * ys[along])), co, 1)));
            for (int v = 0; v < chunk; v++)
                ir_vset(p, body, acc[r][v], SCALAR_ADD,
                        ir_op(p, IRE_MUL, ir_ref(p, gs), ir_vref(p, wv[v])));
        }
        for (int r = 0; r < block; r++)
            for (int v = 0; v < chunk; v++)
                ir_vstore(p, taps, c->din[0],
                          ix_add(x_ix, ix_const(r * xstep + (first + v) * width)), acc[r][v]);
    }
}

/* A region's input gradient in blocks of positions (what fits the
 * registers beside a chunk of WT vectors). */
static void conv_input_grad_region(LowerCtx *c, const WindowSegment *region)
{
    const Layer *l = c->l;
    if (!region_has_taps(l, region))
        return;
    int64_t nvec = l->cin / lower_lanes_dividing(c->p, l->cin);
    int64_t chunk = nvec < 4 ? nvec : 4;
    int64_t most = (c->p->vector_registers - 1 - chunk) / chunk;
    int block = most < 1 ? 1 : most > 4 ? 4 : (int)most;
    conv_in_blocks(c, region, block, conv_block_axis(l, region), conv_input_grad_block);
}

/* A region's g over the training batch, in bytes. */
static int64_t conv_grad_region_bytes(const LowerCtx *c, const WindowSegment *region)
{
    const Layer *l = c->l;
    int64_t bytes = 4 * l->out.dim[l->nd] * c->m->tp.batch;
    for (int a = 0; a < l->nd; a++)
        bytes *= region[a].hi - region[a].lo;
    return bytes;
}

/* Up to this much of g (a padded edge's or corner's regions), the general
 * kernel gradient sums the samples inside its rows, the rows' accumulators
 * in registers throughout: the whole batch's g stays in the second-level
 * cache.  With the samples outside, a corner's one position moved each
 * row through memory a sample at a time; fashion's second conv spent
 * 1.1 ms of 6.9 in its 16 corner regions, on two threads as on one. */
enum { CONV_GRAD_INSIDE_BYTES = 256 << 10 };

/* Samples in a group: a group's g at most CONV_GRAD_GROUP_BYTES, when the
 * whole batch's (a region's positions, at the training batch) is more
 * than twice that; else 0, no groups.  Each thread's rows read all of g
 * once per row; video3d's first conv (g: 33 MB a batch) read it from
 * memory nine times, at 40% of the peak.  A group's stays in the cache
 * while the rows pass, and the parallel loops run once a group. */
enum { CONV_GRAD_GROUP_BYTES = 2 << 20 };

static int64_t conv_grad_sample_group(const LowerCtx *c, const WindowSegment *region)
{
    int64_t bytes = conv_grad_region_bytes(c, region);
    if (bytes <= 2 * CONV_GRAD_GROUP_BYTES)
        return 0;
    int64_t group = CONV_GRAD_GROUP_BYTES / (bytes / c->m->tp.batch);
    return group < 1 ? 1 : group;
}

/* Rows of a kernel gradient in registers at once: `channels` input
 * channels (consecutive) times `taps` taps of the last axis, each row
 * `vectors` vectors of output channels; every g vector loaded serves them
 * all. */
typedef struct {
    int64_t channels, taps, vectors;
    bool last_taps; /* the rows hold the last axis's taps (else its loop is outside) */
    int samples;    /* the sample loop's variable; -1: the loop is outside the rows */
    int64_t group;  /* with samples: 0, the batch; else `group` samples, or with
                     * tail the samples past the last whole group of them */
    bool tail;
} ConvGradRows;

/* The rows of g from channel x_ix's (and w_first's), `chunk` output
 * vectors from y_ix's: loaded, summed over the region's positions (and
 * with g->samples, over those samples first), stored.  Each row's sum
 * keeps its order. */
static void conv_grad_rows_sum(LowerCtx *c, const WindowSegment *region, const ConvGradRows *g,
                               IrBlock *row, IrIndex x_ix, IrIndex y_ix, IrIndex w_first, int chunk,
                               const int64_t *xs, const int64_t *ws, const int64_t *ys, int width)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int nd = l->nd, last = nd - 1;
    int64_t cout = l->out.dim[nd], klo = g->last_taps ? region[last].klo : 0;
    int64_t rows = g->channels * g->taps;
    int acc[32]; /* row r's vector v: acc[r * chunk + v]; they fit the registers */
    IrIndex at[32];
    for (int64_t r = 0; r < rows; r++) { /* row r: tap klo + r / channels, channel r % channels */
        int64_t t = klo + r / g->channels, ci = r % g->channels;
        at[r] = ix_add(w_first, ix_const((g->last_taps ? t * ws[last] : 0) + ci * cout));
        for (int v = 0; v < chunk; v++) {
            acc[r * chunk + v] = ir_vreg(p, f, "dw", width);
            ir_vset(p, row, acc[r * chunk + v], SCALAR_DECLARE,
                    ir_vload(p, c->dparams[0], ix_add(at[r], ix_const((int64_t)v * width)), width));
        }
    }
    IrBlock *samples = row;
    if (g->samples >= 0)
        samples = g->group == 0 ? &ir_for_batch(p, row, g->samples)->body
                  : g->tail     ? &ir_for_batch_tail(p, row, g->samples, g->group)->body
                                : &ir_for(p, row, g->samples, 0, g->group)->body;
    IrBlock *pos = layer_position_loops_in(c, samples, region, nd, xs, ys, &x_ix, &y_ix);
    int gv[32];
    for (int v = 0; v < chunk; v++) {
        gv[v] = ir_vreg(p, f, "g", width);
        ir_vset(p, pos, gv[v], SCALAR_DECLARE,
                ir_vload(p, c->dout, ix_add(y_ix, ix_const((int64_t)v * width)), width));
    }
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = klo + r / g->channels, ci = r % g->channels;
        int64_t tap = (g->last_taps ? t * l->dilation[last] * xs[last] : 0) + ci;
        int xv = ir_scalar(p, f, "x");
        ir_set(p, pos, xv, SCALAR_DECLARE, ir_load(p, c->in[0], ix_add(x_ix, ix_const(tap))));
        for (int v = 0; v < chunk; v++)
            ir_vset(p, pos, acc[r * chunk + v], SCALAR_ADD,
                    ir_op(p, IRE_MUL, ir_ref(p, xv), ir_vref(p, gv[v])));
    }
    for (int64_t r = 0; r < rows; r++)
        for (int v = 0; v < chunk; v++)
            ir_vstore(p, row, c->dparams[0], ix_add(at[r], ix_const((int64_t)v * width)),
                      acc[r * chunk + v]);
}

/* conv_params_grad_rows_at_once's rows: each a tap of the last axis, an
 * input channel and row_vecs output vectors (all, or with 2-D's vectors
 * shared by the threads one); returns how many. */
static int64_t conv_grad_rows(const LowerCtx *c, const WindowSegment *region, int width,
                              bool *vectors_shared, int64_t *row_vecs)
{
    const Layer *l = c->l;
    int nd = l->nd, last = nd - 1;
    int64_t nvec = l->out.dim[nd] / width;
    *vectors_shared = nd == 2 && nvec >= 2; /* the threads' second axis */
    *row_vecs = *vectors_shared ? 1 : nvec;
    return (region[last].khi - region[last].klo) * l->cin * *row_vecs;
}

/* The rows of conv_params_grad_rows_at_once in `parent`, for the
 * samples of group g (`group` of them; with g < 0 the samples past the
 * last whole group, or with group 0 all of them). */
static void conv_params_grad_rows(LowerCtx *c, const WindowSegment *region, const int64_t *xs,
                                  const int64_t *ws, const int64_t *ys, int width, IrBlock *parent,
                                  int g, int64_t group)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int nd = l->nd, last = nd - 1;
    int64_t cin = l->cin, cout = l->out.dim[nd], row_vecs;
    bool vectors_shared;
    conv_grad_rows(c, region, width, &vectors_shared, &row_vecs);
    IrIndex x_tap = ix_const(0), w_ix = ix_const(0), co = ix_const(0);
    IrBlock *b = parent;
    IrStmt *outer = NULL, *second = NULL;
    for (int a = 0; a < last; a++) {
        int k = ir_var(p, f, layer_tap_name(nd, a));
        IrStmt *loop = ir_for(p, b, k, region[a].klo, region[a].khi);
        *(outer ? &second : &outer) = loop;
        b = &loop->body;
        x_tap = ix_add_var(x_tap, k, l->dilation[a] * xs[a]);
        w_ix = ix_add_var(w_ix, k, ws[a]);
    }
    if (vectors_shared) {
        int cv = ir_var(p, f, "cv");
        second = ir_for(p, b, cv, 0, cout / width);
        b = &second->body;
        co = ix_var(cv, width);
    }
    outer->parallel = true;
    /* (a loop of one iteration is unrolled away, and would leave none to collapse) */
    outer->collapse = second && second->hi - second->lo > 1;
    int s = ir_var(p, f, "s");
    IrIndex x_ix = lower_sample_index(c, c->in[0], s, x_tap);
    IrIndex y_ix = lower_sample_index(c, c->dout, s, co);
    if (group && g >= 0) { /* sample g * group + s */
        x_ix = ix_add_var(x_ix, g, group * f->views[c->in[0]].sample_stride);
        y_ix = ix_add_var(y_ix, g, group * f->views[c->dout].sample_stride);
    }
    /* the accumulators in registers across the samples */
    ConvGradRows blk = {cin, region[last].khi - region[last].klo, row_vecs, true, s, group, g < 0};
    conv_grad_rows_sum(c, region, &blk, b, x_ix, y_ix, ix_add(w_ix, co), (int)row_vecs, xs, ws, ys,
                       width);
}

/* The kernel's gradient of a layer with few input channels (a network's
 * first), when the rows of its last tap axis, every input channel, fit
 * the registers at once: each g vector loaded then serves them all, where
 * the general form below loads it again for every row.  The threads share
 * the other tap axes, with 2-D's output vectors as a second axis; the two
 * are collapsed into one space, so that three or five taps still split
 * evenly over the threads.  Each row stays one thread's and sums the
 * samples, then the positions, in order.  False: they do not fit. */
static bool conv_params_grad_rows_at_once(LowerCtx *c, const WindowSegment *region,
                                          const int64_t *xs, const int64_t *ws, const int64_t *ys,
                                          int width)
{
    IrProgram *p = c->p;
    bool vectors_shared;
    int64_t row_vecs, rows = conv_grad_rows(c, region, width, &vectors_shared, &row_vecs);
    if (c->l->nd < 2 || rows > 24 || rows + row_vecs + 2 > p->vector_registers)
        return false;
    int64_t group = conv_grad_sample_group(c, region);
    if (group == 0) {
        conv_params_grad_rows(c, region, xs, ws, ys, width, &c->f->body, -1, 0);
        return true;
    }
    int g = ir_var(p, c->f, "sg");
    IrStmt *groups = ir_for_batch_groups(p, &c->f->body, g, group);
    conv_params_grad_rows(c, region, xs, ws, ys, width, &groups->body, g, group);
    conv_params_grad_rows(c, region, xs, ws, ys, width, &c->f->body, -1, group);
    return true;
}

/* The bias's gradient: g summed over the samples, then the region's
 * positions, a vector of output channels in a register, each vector one
 * thread's.  Added to memory position by position, a region's sum was a
 * chain of stores and loads: 2.5 ms a step for video3d's first conv (33 MB
 * of g), most of its kernel gradient on two threads. */
static void conv_bias_grad_region(LowerCtx *c, const WindowSegment *region, int db,
                                  const int64_t *xs, const int64_t *ys, int width)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int nd = c->l->nd;
    int cv = ir_var(p, f, "cv");
    IrStmt *vectors = ir_for(p, &f->body, cv, 0, c->l->out.dim[nd] / width);
    vectors->parallel = vectors->hi > 1;
    IrIndex co = ix_var(cv, width);
    int acc = ir_vreg(p, f, "db", width);
    ir_vset(p, &vectors->body, acc, SCALAR_DECLARE, ir_vload(p, db, co, width));
    int s = ir_var(p, f, "s");
    IrBlock *samples = &ir_for_batch(p, &vectors->body, s)->body;
    IrIndex x_ix = ix_const(0), y_ix = lower_sample_index(c, c->dout, s, co);
    IrBlock *b = layer_position_loops_in(c, samples, region, nd, xs, ys, &x_ix, &y_ix);
    int gv = ir_vreg(p, f, "g", width);
    ir_vset(p, b, gv, SCALAR_DECLARE, ir_vload(p, c->dout, y_ix, width));
    ir_vset(p, b, acc, SCALAR_ADD, ir_vref(p, gv));
    ir_vstore(p, &vectors->body, db, co, acc);
}

/* The general kernel gradient's rows at once: input channels of one
 * thread's share times the last axis's taps (all of the region's, or 1),
 * up to the registers.  One row at a time, fashion's second conv had 4
 * accumulators (and video3d's 2) whose multiply-adds waited on each
 * other: 50% and 29% of the peak. */
static ConvGradRows conv_grad_rows_blocked(const LowerCtx *c, const WindowSegment *region,
                                           int64_t share, int64_t nvec, int first_axis)
{
    int last = c->l->nd - 1;
    ConvGradRows g = {1, 1, nvec < 8 ? nvec : 8, false, -1, 0, false};
    int64_t budget = c->p->vector_registers - 2 - g.vectors; /* accumulators */
    int64_t taps = region[last].khi - region[last].klo;
    if (last >= first_axis && taps * g.vectors <= budget) {
        g.taps = taps;
        g.last_taps = taps > 1;
    }
    for (int64_t r = share < 8 ? share : 8; r > 1; r--)
        if (share % r == 0 && r * g.taps * g.vectors <= budget) {
            g.channels = r;
            break;
        }
    return g;
}

/* The kernel's gradient with its rows in registers, over the whole
 * batch: for each sample, tap and input channel, the row dW[tap][ci][:]
 * (vectors of output channels) accumulates x[s][position + tap][ci] *
 * g[s][position] over the region's positions, then goes back to memory
 * once; several rows at once (conv_grad_rows_blocked) share each g
 * vector.  Each row is one thread's, so the rows run on OpenMP's threads
 * and every sum keeps its order (samples, then positions) on any number
 * of them.  The bias gradient sums g over the samples and positions.
 * Needs the output channels in whole vectors. */
static void conv_params_grad_region(LowerCtx *c, const WindowSegment *region)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int nd = l->nd;
    Shape in = layer_spatial_shape(l, c->in_shape[0]);
    int64_t cin = l->cin, cout = l->out.dim[nd], xs[3], ws[3], ys[3];
    int width = lower_lanes_dividing(p, cout);
    layer_axis_strides(in.dim, nd, cin, xs);
    layer_axis_strides(l->kernel, nd, cin * cout, ws);
    layer_axis_strides(l->out.dim, nd, cout, ys);
    int db = l->use_bias ? c->dparams[1] : -1, dw = c->dparams[0];
    if (db >= 0)
        conv_bias_grad_region(c, region, db, xs, ys, width);
    if (dw < 0 || !region_has_taps(l, region))
        return;
    if (cin < 8 && conv_params_grad_rows_at_once(c, region, xs, ws, ys, width))
        return;
    /* The threads share the rows (in quarters of the input channels, or
     * with few of those by the first tap axis); inside, the samples in
     * order, and for each every row of the share, so one sample's g
     * stays in cache while the rows pass. */
    IrIndex x_tap = ix_const(0), w_ix = ix_const(0);
    int64_t share = cin >= 8 && cin % 4 == 0 ? cin / 4 : cin;
    int first_axis = 0;
    IrStmt *outer;
    if (share < cin) {
        int cq = ir_var(p, f, "cq");
        outer = ir_for(p, &f->body, cq, 0, cin / share);
    } else {
        int k = ir_var(p, f, layer_tap_name(nd, 0));
        outer = ir_for(p, &f->body, k, region[0].klo, region[0].khi);
        x_tap = ix_add_var(x_tap, k, l->dilation[0] * xs[0]);
        w_ix = ix_add_var(w_ix, k, ws[0]);
        first_axis = 1;
    }
    outer->parallel = true;
    int s = ir_var(p, f, "s");
    bool samples_inside = conv_grad_region_bytes(c, region) <= CONV_GRAD_INSIDE_BYTES;
    IrBlock *row = samples_inside ? &outer->body : &ir_for_batch(p, &outer->body, s)->body;
    int64_t nvec = cout / width;
    ConvGradRows g = conv_grad_rows_blocked(c, region, share, nvec, first_axis);
    g.samples = samples_inside ? s : -1;
    for (int a = first_axis; a < nd - g.last_taps; a++) {
        int k = ir_var(p, f, layer_tap_name(nd, a));
        row = &ir_for(p, row, k, region[a].klo, region[a].khi)->body;
        x_tap = ix_add_var(x_tap, k, l->dilation[a] * xs[a]);
        w_ix = ix_add_var(w_ix, k, ws[a]);
    }
    int cb = ir_var(p, f, "ci");
    row = &ir_for(p, row, cb, 0, share / g.channels)->body;
    IrIndex channel = ix_var(cb, g.channels);
    if (share < cin)
        channel = ix_add_var(channel, outer->var, share);
    for (int64_t first = 0; first < nvec; first += g.vectors) {
        int chunk = (int)(nvec - first < g.vectors ? nvec - first : g.vectors);
        IrIndex x_ix = lower_sample_index(c, c->in[0], s, ix_add(x_tap, channel));
        IrIndex y_ix = lower_sample_index(c, c->dout, s, ix_const((int64_t)first * width));
        IrIndex w_first = ix_add(ix_add(w_ix, ix_scale(channel, cout)), ix_const(first * width));
        conv_grad_rows_sum(c, region, &g, row, x_ix, y_ix, w_first, chunk, xs, ws, ys, width);
    }
}

/* WT[tap][co][ci] = W[tap][ci][co], once per step. */
static void conv_transpose_kernel(const LowerCtx *base)
{
    LowerCtx c = lower_train_func(base, PHASE_BACKWARD, false, "transpose_kernel");
    IrProgram *p = c.p;
    int64_t cin = c.l->cin, cout = c.l->out.dim[c.l->nd];
    int64_t taps = shape_size(&c.l->params[0].shape) / (cin * cout);
    int k = ir_var(p, c.f, "k"), ci = ir_var(p, c.f, "ci"), co = ir_var(p, c.f, "co");
    IrBlock *b = &ir_for(p, &c.f->body, k, 0, taps)->body;
    b = &ir_for(p, b, ci, 0, cin)->body;
    b = &ir_for(p, b, co, 0, cout)->body;
    IrIndex tap = ix_var(k, cin * cout);
    ir_store(p, b, c.wt, ix_add_var(ix_add_var(tap, co, cin), ci, 1),
             ir_load(p, c.params[0], ix_add_var(ix_add_var(tap, ci, cout), co, 1)), false);
}

/* Two functions: the input's gradient (each sample writes its own, so
 * samples may run in parallel) and the parameters' (summed over the
 * samples in order, each row of the kernel's by one thread). */
static void conv_backward(const LowerCtx *base)
{
    const IrProgram *p = base->p;
    if (train_needs_grad(base->m, base->l->srcs[0])) {
        bool transposed =
            base->l->kind->variant == CONV_PLAIN && lower_lanes_dividing(p, base->l->cin);
        if (transposed)
            conv_transpose_kernel(base);
        LowerCtx c = lower_train_func(base, PHASE_BACKWARD, true, "backward_input");
        for (int k = 0; k < c.l->nparams; k++)
            c.dparams[k] = -1;
        Shape in = layer_spatial_shape(c.l, c.in_shape[0]);
        layer_for_each_region(&c, c.l, &in,
                              transposed ? conv_input_grad_region : conv_backward_region);
    }
    if (layer_param_count(base->l, true) > 0) {
        bool rows = base->l->kind->variant == CONV_PLAIN &&
                    lower_lanes_dividing(p, base->l->out.dim[base->l->nd]);
        LowerCtx c = lower_train_func(base, PHASE_BACKWARD, !rows, "backward_params");
        c.din[0] = -1;
        Shape in = layer_spatial_shape(c.l, c.in_shape[0]);
        layer_for_each_region(&c, c.l, &in, rows ? conv_params_grad_region : conv_backward_region);
    }
}

/* The input's gradient of a convolution reads its kernel by input
 * channel: a transposed copy per step (train_transposed_kernel). */
#define CONV_KIND(kind_name, kind_variant, kind_nd, kind_positional, kind_named, transposed) \
    { \
        .name = kind_name, .variant = kind_variant, .nd = kind_nd, .positional = kind_positional, \
        .named = kind_named, .linear_map = true, .channel_scratch = true, \
        .param_names = layer_linear_map_params, .train_transposed_kernel = transposed, \
        .quant = QUANT_LINEAR_MAP, .configure = conv_configure, .infer = conv_infer, \
        .flops = conv_flops, .lower = conv_lower, .lower_q = conv_lower_q, \
        .packed_size_q = conv_packed_size_q, .pack_q = conv_pack_q, \
        .lower_backward = conv_backward \
    }

const LayerKind conv_kinds[] = {
    CONV_KIND("conv1d", CONV_PLAIN, 1, conv_positional, conv_named, true),
    CONV_KIND("conv2d", CONV_PLAIN, 2, conv_positional, conv_named, true),
    CONV_KIND("conv3d", CONV_PLAIN, 3, conv_positional, conv_named, true),
    CONV_KIND("depthwise_conv2d", CONV_DEPTHWISE, 2, depthwise_positional, depthwise_named, false),
    {0},
};
