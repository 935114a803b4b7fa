/* layers.c - the registry of layer kinds and the helpers the families
 * share: parameters, the implicit channel axis, literal weights and the
 * sliding-window shape rule. */
#include "layers.h"

#include <stdlib.h>
#include <string.h>

/* Every family's table: a new family is one line here. */
static const LayerKind *const families[] = {
    conv_kinds,       pool_kinds,  dense_kinds,    norm_kinds,
    activation_kinds, merge_kinds, upsample_kinds, permute_kinds,
};

const char *const layer_no_names[] = {NULL};
const char *const layer_linear_map_params[] = {"w", "b", NULL};

const LayerKind *layer_kind_find(const char *name)
{
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const LayerKind *k = families[f]; k->name; k++)
            if (strcmp(k->name, name) == 0)
                return k;
    return NULL;
}

bool layer_same_shape_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    (void)ctx;
    l->out = ins[0];
    return true;
}

bool layer_always_identity(const Layer *l)
{
    (void)l;
    return true;
}

/* Keras' fan_in and fan_out of a channels-last kernel [k..., in, out]. */
static void keras_fans(const Shape *s, int64_t *fan_in, int64_t *fan_out)
{
    if (s->rank < 2) {
        *fan_in = *fan_out = 1;
        return;
    }
    int64_t receptive = 1;
    for (int i = 0; i < s->rank - 2; i++)
        receptive = mul_sat(receptive, s->dim[i]);
    *fan_in = mul_sat(s->dim[s->rank - 2], receptive);
    *fan_out = mul_sat(s->dim[s->rank - 1], receptive);
}

Param *layer_add_param(Layer *l, Arena *arena, const char *suffix, const Shape *shape,
                       bool trainable, InitKind init, const double *literal)
{
    if (l->nparams == LAYER_MAX_PARAMS)
        unreachable();
    Param *p = &l->params[l->nparams++];
    p->name = arena_printf(arena, "%s.%s", l->name, suffix);
    p->shape = *shape;
    p->trainable = trainable;
    p->init = init;
    p->literal = literal;
    keras_fans(shape, &p->fan_in, &p->fan_out);
    return p;
}

static const char *const layouts[] = {"", "[T, C]", "[H, W, C]", "[D, H, W, C]"};

/* The [*spatial, C] input of an nd-dimensional layer; a tensor of rank nd
 * is read as having one channel (`input [10]` is [10, 1] for conv1d). */
bool layer_spatial_input(Layer *l, const Shape *in, Diag *diag, Shape *out)
{
    *out = *in;
    if (in->rank == l->nd) {
        l->expand = true;
        out->dim[out->rank++] = 1;
        return true;
    }
    if (in->rank != l->nd + 1) {
        StrBuf got = {0};
        shape_format(in, &got);
        diag_error(diag, l->loc, "%s needs a rank-%d input %s, got %s", l->kind->name, l->nd + 1,
                   layouts[l->nd], got.data);
        strbuf_free(&got);
        return false;
    }
    return true;
}

Shape layer_spatial_shape(const Layer *l, const Shape *in)
{
    Shape s = *in;
    if (s.rank == l->nd)
        s.dim[s.rank++] = 1;
    return s;
}

/* weights= gives the kernel literally: a nested list of exactly its shape,
 * where trailing axes of size 1 may be left out, or a flat list of exactly
 * as many values. */
bool layer_fit_weights(const Literal *lit, const Shape *kernel, const char *what, Diag *diag,
                       const double **values)
{
    *values = NULL;
    if (!lit->given)
        return true;
    const Shape *given = &lit->shape;
    int64_t size = shape_size(kernel);
    bool fits = shape_equal(given, kernel) || (given->rank == 1 && given->dim[0] == size);
    if (!fits && given->rank < kernel->rank) {
        fits = true;
        for (int i = 0; i < kernel->rank; i++)
            if (i < given->rank ? given->dim[i] != kernel->dim[i] : kernel->dim[i] != 1)
                fits = false;
    }
    if (fits) {
        *values = lit->values;
        return true;
    }
    StrBuf a = {0}, b = {0};
    shape_format(given, &a);
    shape_format(kernel, &b);
    diag_error(diag, lit->loc,
               "weights have shape %s; the kernel of %s is %s (trailing axes of size 1 may be "
               "left out), or give a flat list of %lld values",
               a.data, what, b.data, (long long)size);
    strbuf_free(&a);
    strbuf_free(&b);
    return false;
}

bool layer_fit_bias(const Literal *lit, int64_t n, const char *what, Diag *diag,
                    const double **values)
{
    *values = NULL;
    if (!lit->given)
        return true;
    if (lit->shape.rank == 1 && lit->shape.dim[0] == n) {
        *values = lit->values;
        return true;
    }
    StrBuf a = {0};
    shape_format(&lit->shape, &a);
    diag_error(diag, lit->loc, "bias has shape %s; %s needs a flat list of %lld values", a.data,
               what, (long long)n);
    strbuf_free(&a);
    return false;
}

static const char *const initializers[] = {
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_normal",   "zeros",         "ones",       NULL};

bool layer_configure_linear_map(Layer *l, ArgReader *r)
{
    int init = INIT_GLOROT_UNIFORM;
    l->trainable = true;
    if (!args_activation(r, &l->activation, &l->linear_explicit) ||
        !args_boolean(r, "trainable", &l->trainable) ||
        !args_word(r, "init", initializers, &init) || !args_literal(r, "weights", &l->weights) ||
        !args_bias(r, &l->use_bias, &l->bias_values))
        return false;
    l->init = (InitKind)init;
    return true;
}

bool layer_add_kernel_and_bias(Layer *l, const Shape *kshape, int64_t n, InferCtx *ctx)
{
    const double *kernel_values, *bias_values;
    if (!layer_fit_weights(&l->weights, kshape, l->name, ctx->diag, &kernel_values))
        return false;
    layer_add_param(l, ctx->arena, "kernel", kshape, l->trainable, l->init, kernel_values);
    if (!l->use_bias)
        return true;
    if (!layer_fit_bias(&l->bias_values, n, l->name, ctx->diag, &bias_values))
        return false;
    Shape bshape = {.rank = 1, .dim = {n}};
    layer_add_param(l, ctx->arena, "bias", &bshape, l->trainable, INIT_ZEROS, bias_values);
    return true;
}

/* Python's floor division, which the contract's formulas use. */
static __int128 floor_div(__int128 a, __int128 b)
{
    __int128 q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int64_t clamp64(__int128 v)
{
    return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (int64_t)v;
}

static const char *const pad_names[] = {"valid", "same", "causal", ""};

bool layer_window_output(Layer *l, const Shape *in, const int64_t *kernel, const int64_t *dilation,
                         Diag *diag, int64_t *sizes)
{
    for (int axis = 0; axis < l->nd; axis++) {
        __int128 n = in->dim[axis], k = kernel[axis], s = l->stride[axis], d = dilation[axis];
        __int128 span = d * (k - 1) + 1, before = 0, after = 0;
        switch (l->padding) {
        case PAD_VALID: break;
        case PAD_SAME: { /* out = ceil(in/stride); TensorFlow's split */
            __int128 out = -floor_div(-n, s);
            __int128 total = (out - 1) * s + span - n;
            if (total < 0)
                total = 0;
            before = total / 2;
            after = total - before;
            break;
        }
        case PAD_CAUSAL: before = d * (k - 1); break;
        case PAD_EXPLICIT: before = after = l->pad_explicit[axis]; break;
        }
        __int128 size = floor_div(n + before + after - span, s) + 1;
        if (size <= 0) {
            char sz[48], how[64];
            format_int128(size, sz);
            if (l->padding == PAD_EXPLICIT)
                snprintf(how, sizeof how, "%lld on each side", (long long)l->pad_explicit[axis]);
            else
                snprintf(how, sizeof how, "%s", pad_names[l->padding]);
            diag_error(diag, l->loc,
                       "%s: output size %s on spatial axis %d (input %lld, kernel %lld, dilation "
                       "%lld, stride %lld, padding %s); the shape comes out empty",
                       l->name, sz, axis + 1, (long long)in->dim[axis], (long long)kernel[axis],
                       (long long)dilation[axis], (long long)l->stride[axis], how);
            return false;
        }
        sizes[axis] = clamp64(size);
        l->pad_before[axis] = clamp64(before);
        l->pad_after[axis] = clamp64(after);
    }
    return true;
}

/* ---- sliding-window regions ------------------------------------------------ */

static const char *const out_names[3][3] = {{"ot"}, {"oh", "ow"}, {"od", "oh", "ow"}};
static const char *const tap_names[3][3] = {{"kt"}, {"kh", "kw"}, {"kd", "kh", "kw"}};

const char *layer_tap_name(int nd, int a)
{
    return tap_names[nd - 1][a];
}

void layer_axis_strides(const int64_t *dims, int nd, int64_t channels, int64_t *strides)
{
    int64_t run = channels;
    for (int a = nd - 1; a >= 0; a--) {
        strides[a] = run;
        run *= dims[a];
    }
}

/* The loops of layer_position_loops_in, on axes [0, axes) but skip. */
static IrBlock *position_loops(LowerCtx *c, IrBlock *b, const WindowSegment *region, int axes,
                               int skip, const int64_t *xs, const int64_t *ys, IrIndex *x_ix,
                               IrIndex *y_ix)
{
    const Layer *l = c->l;
    for (int a = 0; a < axes; a++) {
        if (a == skip)
            continue;
        int o = ir_var(c->p, c->f, out_names[l->nd - 1][a]);
        b = &ir_for(c->p, b, o, region[a].lo, region[a].hi)->body;
        *x_ix = ix_add(*x_ix,
                       ix_scale(ix_add_var(ix_const(-l->pad_before[a]), o, l->stride[a]), xs[a]));
        *y_ix = ix_add_var(*y_ix, o, ys[a]);
    }
    return b;
}

IrBlock *layer_position_loops(LowerCtx *c, const WindowSegment *region, int axes, const int64_t *xs,
                              const int64_t *ys, IrIndex *x_ix, IrIndex *y_ix)
{
    return layer_position_loops_in(c, &c->f->body, region, axes, xs, ys, x_ix, y_ix);
}

IrBlock *layer_position_loops_in(LowerCtx *c, IrBlock *b, const WindowSegment *region, int axes,
                                 const int64_t *xs, const int64_t *ys, IrIndex *x_ix, IrIndex *y_ix)
{
    return position_loops(c, b, region, axes, -1, xs, ys, x_ix, y_ix);
}

IrBlock *layer_position_loops_but(LowerCtx *c, const WindowSegment *region, int skip,
                                  const int64_t *xs, const int64_t *ys, IrIndex *x_ix,
                                  IrIndex *y_ix)
{
    return position_loops(c, &c->f->body, region, c->l->nd, skip, xs, ys, x_ix, y_ix);
}

/* The taps of output position o that read real input, [*klo, *khi). */
static void valid_taps(const Layer *l, int axis, int64_t n, int64_t o, int64_t *klo, int64_t *khi)
{
    int64_t s = l->stride[axis], d = l->dilation[axis], k = l->kernel[axis];
    int64_t first = o * s - l->pad_before[axis]; /* input index of tap 0 */
    int64_t lo = 0, hi = k;
    if (first < 0)
        lo = (-first + d - 1) / d;
    if (first + (k - 1) * d > n - 1)
        hi = first > n - 1 ? 0 : (n - 1 - first) / d + 1;
    if (lo > hi)
        lo = hi;
    *klo = lo;
    *khi = hi;
}

typedef struct {
    WindowSegment *items;
    int count, cap;
} Segments;

static void push_segment(Segments *v, int64_t o, int64_t klo, int64_t khi)
{
    if (v->count && v->items[v->count - 1].hi == o && v->items[v->count - 1].klo == klo &&
        v->items[v->count - 1].khi == khi) {
        v->items[v->count - 1].hi = o + 1;
        return;
    }
    if (v->count == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 8;
        v->items = xrealloc(v->items, (size_t)v->cap * sizeof *v->items);
    }
    v->items[v->count++] = (WindowSegment){o, o + 1, klo, khi};
}

/* Runs of output positions with the same valid taps; the interior, where
 * every tap is valid, is found directly rather than position by position. */
static Segments axis_segments(const Layer *l, int axis, int64_t n, int64_t out)
{
    Segments v = {0};
    int64_t s = l->stride[axis], d = l->dilation[axis], k = l->kernel[axis];
    int64_t pb = l->pad_before[axis];
    int64_t inner_lo = (pb + s - 1) / s;     /* o*s - pb >= 0 */
    int64_t last = n - 1 - (k - 1) * d + pb; /* o*s <= last */
    int64_t inner_hi = last < 0 ? 0 : last / s + 1;
    if (inner_lo > out)
        inner_lo = out;
    if (inner_hi > out)
        inner_hi = out;
    for (int64_t o = 0; o < out; o++) {
        if (o == inner_lo && inner_lo < inner_hi) {
            push_segment(&v, o, 0, k);
            v.items[v.count - 1].hi = inner_hi;
            o = inner_hi - 1;
            continue;
        }
        int64_t klo, khi;
        valid_taps(l, axis, n, o, &klo, &khi);
        push_segment(&v, o, klo, khi);
    }
    return v;
}

static void visit_regions(LowerCtx *c, const Layer *l, Segments *axes, int axis,
                          WindowSegment *region,
                          void (*visit)(LowerCtx *c, const WindowSegment *region))
{
    if (axis == l->nd) {
        visit(c, region);
        return;
    }
    for (int i = 0; i < axes[axis].count; i++) {
        region[axis] = axes[axis].items[i];
        visit_regions(c, l, axes, axis + 1, region, visit);
    }
}

void layer_for_each_region(LowerCtx *c, const Layer *l, const Shape *in,
                           void (*visit)(LowerCtx *c, const WindowSegment *region))
{
    Segments axes[3] = {{0}};
    WindowSegment region[3];
    for (int a = 0; a < l->nd; a++)
        axes[a] = axis_segments(l, a, in->dim[a], l->out.dim[a]);
    visit_regions(c, l, axes, 0, region, visit);
    for (int a = 0; a < l->nd; a++)
        free(axes[a].items);
}
