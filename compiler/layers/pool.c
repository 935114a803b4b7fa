/* pool.c - maxpool1d/2d/3d, avgpool1d/2d/3d, global_maxpool and
 * global_avgpool.
 *
 * Padding never counts: max pooling ignores it, average pooling divides
 * by the number of real inputs in the window.
 */
#include "layers.h"

#include <math.h>

/* The kinds of this file (LayerKind.variant). */
enum { POOL_MAX, POOL_AVG, POOL_GLOBAL_MAX, POOL_GLOBAL_AVG };

static const char *const pool_positional[] = {"size", NULL};
static const char *const pool_named[] = {"stride", "padding", NULL};

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
        diag_error(ctx->diag, l->loc, "%s needs an input with spatial axes (rank 2 to 4), got %s",
                   l->kind->name, got.data);
        strbuf_free(&got);
        return false;
    }
    l->out = (Shape){.rank = 1, .dim = {ins[0].dim[ins[0].rank - 1]}};
    return true;
}

/* ---- forward lowering -------------------------------------------------------
 * Per output position: the channel innermost; padding never read (the
 * regions of layer_for_each_region), so max ignores it and the average
 * divides by the count of real inputs, a constant in each region. */

/* One region's position loops: the strides of x and y, the indices of
 * tap 0, and the count of real inputs in each window. */
typedef struct {
    int64_t ch, count, xs[3], ys[3];
    IrIndex x_ix, y_ix;
    IrBlock *body;
} PoolRegion;

static PoolRegion pool_region_loops(LowerCtx *c, const WindowSegment *region)
{
    const Layer *l = c->l;
    PoolRegion r = {.ch = l->cin, .count = 1};
    layer_axis_strides(c->in_shape[0]->dim, l->nd, r.ch, r.xs);
    layer_axis_strides(l->out.dim, l->nd, r.ch, r.ys);
    for (int a = 0; a < l->nd; a++)
        r.count *= region[a].khi - region[a].klo;
    r.x_ix = r.y_ix = ix_const(0);
    r.body = layer_position_loops(c, region, l->nd, r.xs, r.ys, &r.x_ix, &r.y_ix);
    return r;
}

/* The window's tap loops (the last unrolled, or all of them): returns
 * their body, with r->x_ix moved to the tap. */
static IrBlock *pool_tap_loops(LowerCtx *c, const WindowSegment *region, PoolRegion *r,
                               bool unroll_all)
{
    int nd = c->l->nd;
    IrBlock *taps = r->body;
    for (int a = 0; a < nd; a++) {
        int k = ir_var(c->p, c->f, layer_tap_name(nd, a));
        IrStmt *loop = ir_for(c->p, taps, k, region[a].klo, region[a].khi);
        loop->unroll = unroll_all || a == nd - 1;
        taps = &loop->body;
        r->x_ix = ix_add_var(r->x_ix, k, r->xs[a]);
    }
    return taps;
}

enum { POOL_UNROLLED_TAPS = 9 };

static void pool_region(LowerCtx *c, const WindowSegment *region)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    bool is_max = c->l->kind->variant == POOL_MAX;
    PoolRegion r = pool_region_loops(c, region);
    int64_t ch = r.ch, count = r.count;
    IrBlock *b = r.body;
    int c1 = ir_var(p, f, "c");
    IrStmt *init = ir_for(p, b, c1, 0, ch);
    ir_store(p, &init->body, c->acc, ix_var(c1, 1), is_max ? lower_lowest(c) : lower_zero(c),
             false);
    if (count > 0) {
        /* A small window whole: gcc -O2 kept lenet's 2-tap row loop, a
         * branch between every pair of maxima. */
        IrBlock *taps = pool_tap_loops(c, region, &r, count <= POOL_UNROLLED_TAPS);
        int c2 = ir_var(p, f, "c");
        IrBlock *inner = &ir_for(p, taps, c2, 0, ch)->body;
        IrExpr *x = ir_load(p, c->in[0], ix_add_var(r.x_ix, c2, 1));
        if (is_max)
            ir_store(p, inner, c->acc, ix_var(c2, 1),
                     ir_op(p, IRE_MAX, ir_load(p, c->acc, ix_var(c2, 1)), x), false);
        else
            ir_store(p, inner, c->acc, ix_var(c2, 1), x, true);
    }
    int c3 = ir_var(p, f, "c");
    IrStmt *out = ir_for(p, b, c3, 0, ch);
    IrExpr *v = ir_load(p, c->acc, ix_var(c3, 1));
    if (!is_max && c->q)
        v = lower_q_mean(c, v, count);
    else if (!is_max)
        v = ir_op(p, IRE_DIV, v, ir_num(p, (float)(count > 0 ? count : 1)));
    ir_store(p, &out->body, c->out, ix_add_var(r.y_ix, c3, 1), v, false);
}

/* int8 max pooling in an int8 program with vectors: the channels in
 * vectors of int8 lanes (the widest that divides them, from the
 * program's vector bytes, four a lane of its int32 vectors, down to 4;
 * 0: no such width, or not this kind). */
static int pool_q_lanes(const LowerCtx *c)
{
    if (!c->q || c->p->vector_width == 0 || c->l->kind->variant != POOL_MAX)
        return 0;
    for (int lanes = 4 * c->p->vector_width; lanes >= 4; lanes /= 2)
        if (c->l->cin % lanes == 0)
            return lanes;
    return 0;
}

/* The window's first tap's vector, then the max with every tap's (max is
 * exact, and the first again changes nothing): no array, no -128. */
static void pool_region_q_vectors(LowerCtx *c, const WindowSegment *region)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int lanes = pool_q_lanes(c);
    PoolRegion r = pool_region_loops(c, region);
    IrIndex first = r.x_ix;
    for (int a = 0; a < c->l->nd; a++)
        first = ix_add(first, ix_const(region[a].klo * r.xs[a]));
    int cv = ir_var(p, f, "cv");
    IrStmt *chunks = ir_for(p, r.body, cv, 0, r.ch / lanes);
    chunks->unroll = true;
    r.body = &chunks->body;
    IrIndex at = ix_var(cv, lanes);
    int m = ir_typed_vreg(p, f, "m", lanes, IR_I8);
    ir_vset(p, r.body, m, SCALAR_DECLARE, ir_vload(p, c->in[0], ix_add(first, at), lanes));
    IrBlock *taps = pool_tap_loops(c, region, &r, r.count <= POOL_UNROLLED_TAPS);
    int t = ir_typed_vreg(p, f, "t", lanes, IR_I8);
    ir_vset(p, taps, t, SCALAR_DECLARE, ir_vload(p, c->in[0], ix_add(r.x_ix, at), lanes));
    ir_vset(p, taps, m, SCALAR_SET, ir_op(p, IRE_MAX, ir_vref(p, m), ir_vref(p, t)));
    ir_vstore(p, &chunks->body, c->out, ix_add(r.y_ix, at), m);
}

static void pool_region_any(LowerCtx *c, const WindowSegment *region)
{
    int64_t count = 1;
    for (int a = 0; a < c->l->nd; a++)
        count *= region[a].khi - region[a].klo;
    if (count > 0 && pool_q_lanes(c))
        pool_region_q_vectors(c, region);
    else
        pool_region(c, region);
}

/* Floats; int8 values with int32 sums and rounded means (docs/int8.md). */
static void pool_lower(LowerCtx *c)
{
    Shape in = layer_spatial_shape(c->l, c->in_shape[0]);
    c->in_shape[0] = &in;
    c->acc = lower_acc_local(c, "acc", c->l->cin);
    layer_for_each_region(c, c->l, &in, pool_region_any);
}

/* Over every position, the channel innermost; the mean divides the sum by
 * the count, as the reference's mean does. */
static void global_pool_lower(LowerCtx *c)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    bool is_max = c->l->kind->variant == POOL_GLOBAL_MAX;
    const Shape *in = c->in_shape[0];
    int64_t ch = in->dim[in->rank - 1], positions = shape_size(in) / ch;
    /* an int8 function sums in int32, then rounds the mean */
    int acc = c->q ? lower_acc_local(c, "acc", ch) : c->out;
    int c1 = ir_var(p, f, "c");
    IrStmt *init = ir_for(p, &f->body, c1, 0, ch);
    ir_store(p, &init->body, acc, ix_var(c1, 1), is_max ? lower_lowest(c) : lower_zero(c), false);
    int pos = ir_var(p, f, "pos");
    IrStmt *outer = ir_for(p, &f->body, pos, 0, positions);
    int c2 = ir_var(p, f, "c");
    IrStmt *inner = ir_for(p, &outer->body, c2, 0, ch);
    IrExpr *x = ir_load(p, c->in[0], ix_add_var(ix_var(pos, ch), c2, 1));
    if (is_max)
        ir_store(p, &inner->body, acc, ix_var(c2, 1),
                 ir_op(p, IRE_MAX, ir_load(p, acc, ix_var(c2, 1)), x), false);
    else
        ir_store(p, &inner->body, acc, ix_var(c2, 1), x, true);
    if (!is_max || c->q) {
        int c3 = ir_var(p, f, "c");
        IrStmt *mean = ir_for(p, &f->body, c3, 0, ch);
        IrExpr *v = ir_load(p, acc, ix_var(c3, 1));
        if (!is_max)
            v = c->q ? lower_q_mean(c, v, positions)
                     : ir_op(p, IRE_DIV, v, ir_num(p, (float)positions));
        ir_store(p, &mean->body, c->out, ix_var(c3, 1), v, false);
    }
}

/* ---- backward lowering ------------------------------------------------------
 * Average pooling spreads each output's gradient evenly over its real
 * inputs.  Max pooling gives it to the first input equal to the maximum
 * (PyTorch's choice on ties): `left` is 1 until that input is met. */

/* Max pooling channel by channel, the window's taps unrolled inside with
 * `left` a scalar: the channel loop is then a straight body that
 * compilers vectorise (gcc 12 left the taps-outside form, `left` an
 * array, scalar: 39% of lenet's training step). */
static void max_pool_backward_region(LowerCtx *c, PoolRegion *r, const WindowSegment *region)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int ch = ir_var(p, f, "c");
    IrStmt *channels = ir_for(p, r->body, ch, 0, r->ch);
    int left = ir_scalar(p, f, "left");
    ir_set(p, &channels->body, left, SCALAR_DECLARE, ir_num(p, 1.0f));
    r->body = &channels->body;
    IrBlock *taps = pool_tap_loops(c, region, r, true);
    IrIndex xi = ix_add_var(r->x_ix, ch, 1), yi = ix_add_var(r->y_ix, ch, 1);
    int hit = ir_scalar(p, f, "hit");
    ir_set(p, taps, hit, SCALAR_DECLARE,
           ir_select_pos(p, ir_op(p, IRE_SUB, ir_load(p, c->out, yi), ir_load(p, c->in[0], xi)),
                         ir_num(p, 0.0f), ir_ref(p, left)));
    ir_store(p, taps, c->din[0], xi, ir_op(p, IRE_MUL, ir_ref(p, hit), ir_load(p, c->dout, yi)),
             true);
    ir_set(p, taps, left, SCALAR_SET, ir_op(p, IRE_SUB, ir_ref(p, left), ir_ref(p, hit)));
}

static void pool_backward_region(LowerCtx *c, const WindowSegment *region)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    PoolRegion r = pool_region_loops(c, region);
    if (r.count == 0)
        return;
    if (c->l->kind->variant == POOL_MAX) {
        max_pool_backward_region(c, &r, region);
        return;
    }
    IrBlock *taps = pool_tap_loops(c, region, &r, false);
    int ch = ir_var(p, f, "c");
    IrBlock *inner = &ir_for(p, taps, ch, 0, r.ch)->body;
    IrExpr *g = ir_load(p, c->dout, ix_add_var(r.y_ix, ch, 1));
    ir_store(p, inner, c->din[0], ix_add_var(r.x_ix, ch, 1),
             ir_op(p, IRE_DIV, g, ir_num(p, (float)r.count)), true);
}

static void pool_backward(const LowerCtx *base)
{
    LowerCtx c = lower_train_func(base, PHASE_BACKWARD, true, "backward");
    Shape in = layer_spatial_shape(c.l, c.in_shape[0]);
    c.in_shape[0] = &in;
    layer_for_each_region(&c, c.l, &in, pool_backward_region);
}

static void global_pool_backward(const LowerCtx *base)
{
    LowerCtx c = lower_train_func(base, PHASE_BACKWARD, true, "backward");
    IrProgram *p = c.p;
    IrFunc *f = c.f;
    bool is_max = c.l->kind->variant == POOL_GLOBAL_MAX;
    const Shape *in = c.in_shape[0];
    int64_t ch = in->dim[in->rank - 1], positions = shape_size(in) / ch;
    int left = lower_local(&c, "left", ch);
    if (is_max) {
        int c1 = ir_var(p, f, "c");
        IrStmt *init = ir_for(p, &f->body, c1, 0, ch);
        ir_store(p, &init->body, left, ix_var(c1, 1), ir_num(p, 1.0f), false);
    }
    int pos = ir_var(p, f, "pos");
    IrStmt *outer = ir_for(p, &f->body, pos, 0, positions);
    int c2 = ir_var(p, f, "c");
    IrBlock *inner = &ir_for(p, &outer->body, c2, 0, ch)->body;
    IrIndex xi = ix_add_var(ix_var(pos, ch), c2, 1);
    IrExpr *g = ir_load(p, c.dout, ix_var(c2, 1));
    if (!is_max) {
        ir_store(p, inner, c.din[0], xi, ir_op(p, IRE_DIV, g, ir_num(p, (float)positions)), true);
        return;
    }
    int hit = ir_scalar(p, f, "hit");
    ir_set(p, inner, hit, SCALAR_DECLARE,
           ir_select_pos(
               p, ir_op(p, IRE_SUB, ir_load(p, c.out, ix_var(c2, 1)), ir_load(p, c.in[0], xi)),
               ir_num(p, 0.0f), ir_load(p, left, ix_var(c2, 1))));
    ir_store(p, inner, c.din[0], xi, ir_op(p, IRE_MUL, ir_ref(p, hit), g), true);
    ir_store(p, inner, left, ix_var(c2, 1),
             ir_op(p, IRE_SUB, ir_load(p, left, ix_var(c2, 1)), ir_ref(p, hit)), false);
}

#define POOL_KIND(kind_name, kind_variant, kind_nd, kind_quant) \
    { \
        .name = kind_name, .variant = kind_variant, .nd = kind_nd, .positional = pool_positional, \
        .named = pool_named, .channel_scratch = true, .quant = kind_quant, \
        .max_pool = kind_variant == POOL_MAX, .configure = pool_configure, .infer = pool_infer, \
        .lower = pool_lower, .lower_backward = pool_backward \
    }
#define GLOBAL_POOL_KIND(kind_name, kind_variant, kind_quant) \
    { \
        .name = kind_name, .variant = kind_variant, .quant = kind_quant, \
        .positional = layer_no_names, .named = layer_no_names, .channel_scratch = true, \
        .infer = global_pool_infer, .lower = global_pool_lower, \
        .lower_backward = global_pool_backward \
    }

const LayerKind pool_kinds[] = {
    POOL_KIND("maxpool1d", POOL_MAX, 1, QUANT_SAME_SCALE),
    POOL_KIND("maxpool2d", POOL_MAX, 2, QUANT_SAME_SCALE),
    POOL_KIND("maxpool3d", POOL_MAX, 3, QUANT_SAME_SCALE),
    POOL_KIND("avgpool1d", POOL_AVG, 1, QUANT_AVERAGE),
    POOL_KIND("avgpool2d", POOL_AVG, 2, QUANT_AVERAGE),
    POOL_KIND("avgpool3d", POOL_AVG, 3, QUANT_AVERAGE),
    GLOBAL_POOL_KIND("global_maxpool", POOL_GLOBAL_MAX, QUANT_SAME_SCALE),
    GLOBAL_POOL_KIND("global_avgpool", POOL_GLOBAL_AVG, QUANT_AVERAGE),
    {0},
};
