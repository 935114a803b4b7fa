/* permute.c - permute(dims): the tensor's axes reordered, Keras' Permute:
 * dims gives, for each axis of the output, the input axis it takes
 * (1-based, the batch left out), so permute((2, 3, 1)) turns a
 * channels-first [C, H, W] into cnngen's [H, W, C].  No parameters; in
 * int8 a copy at its input's scale.
 */
#include "layers.h"

static const char *const permute_positional[] = {"dims", NULL};

/* dims as 0-based axes in l->perm; checked against the input's rank in
 * infer, where it is known. */
static bool permute_configure(Layer *l, ArgReader *r)
{
    const Expr *node = args_node(r, "dims");
    if (!node || node->kind != EXPR_TUPLE || node->items.count < 1 ||
        node->items.count > SHAPE_MAX_RANK - 1) {
        diag_error(r->diag, node ? node->loc : r->loc,
                   "permute's dims must be a tuple of the input's axes, 1 to 4 of them");
        return false;
    }
    l->nperm = node->items.count;
    for (int a = 0; a < l->nperm; a++) {
        int64_t axis;
        if (!args_integer_value(r, "an axis", node->items.items[a], 1, &axis))
            return false;
        if (axis > l->nperm) {
            diag_error(r->diag, node->items.items[a]->loc,
                       "permute's axis %lld is past the %d axes its dims name", (long long)axis,
                       l->nperm);
            return false;
        }
        l->perm[a] = (int)axis - 1;
    }
    return true;
}

static bool permute_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    bool seen[SHAPE_MAX_RANK] = {false};
    bool ok = ins[0].rank == l->nperm;
    for (int a = 0; ok && a < l->nperm; a++) {
        ok = l->perm[a] < l->nperm && !seen[l->perm[a]];
        if (ok)
            seen[l->perm[a]] = true;
    }
    if (!ok) {
        StrBuf s = {0};
        shape_format(&ins[0], &s);
        diag_error(ctx->diag, l->loc,
                   "'%s': dims must name each axis of its input %s once (1 to %d)", l->name, s.data,
                   ins[0].rank);
        strbuf_free(&s);
        return false;
    }
    l->out.rank = l->nperm;
    for (int a = 0; a < l->nperm; a++)
        l->out.dim[a] = ins[0].dim[l->perm[a]];
    return true;
}

/* Both passes: a loop per output axis, outer to inner, so the output is
 * written in order; *x_ix and *y_ix the input and output elements. */
static IrBlock *permute_loops(LowerCtx *c, IrIndex *x_ix, IrIndex *y_ix)
{
    static const char *const names[] = {"i0", "i1", "i2", "i3"};
    const Layer *l = c->l;
    const Shape *in = c->in_shape[0];
    int64_t xs[SHAPE_MAX_RANK], ys[SHAPE_MAX_RANK];
    layer_axis_strides(in->dim, in->rank, 1, xs);
    layer_axis_strides(l->out.dim, l->nperm, 1, ys);
    IrBlock *b = &c->f->body;
    *x_ix = *y_ix = ix_const(0);
    for (int a = 0; a < l->nperm; a++) {
        int i = ir_var(c->p, c->f, names[a]);
        b = &ir_for(c->p, b, i, 0, l->out.dim[a])->body;
        *x_ix = ix_add_var(*x_ix, i, xs[l->perm[a]]);
        *y_ix = ix_add_var(*y_ix, i, ys[a]);
    }
    return b;
}

/* y[i0, i1, ...] = x[the same positions on the permuted axes] */
static void permute_lower(LowerCtx *c)
{
    IrIndex x_ix, y_ix;
    IrBlock *b = permute_loops(c, &x_ix, &y_ix);
    ir_store(c->p, b, c->out, y_ix, ir_load(c->p, c->in[0], x_ix), false);
}

/* dx at the input position += dy at the output position */
static void permute_backward(const LowerCtx *base)
{
    LowerCtx c = lower_train_func(base, PHASE_BACKWARD, true, "backward");
    IrIndex x_ix, y_ix;
    IrBlock *b = permute_loops(&c, &x_ix, &y_ix);
    ir_store(c.p, b, c.din[0], x_ix, ir_load(c.p, c.dout, y_ix), true);
}

const LayerKind permute_kinds[] = {
    {.name = "permute",
     .positional = permute_positional,
     .named = layer_no_names,
     .quant = QUANT_SAME_SCALE,
     .configure = permute_configure,
     .infer = permute_infer,
     .lower = permute_lower,
     .lower_backward = permute_backward},
    {0},
};
