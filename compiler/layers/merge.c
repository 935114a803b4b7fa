/* merge.c - add and concat: the current tensor combined with earlier,
 * labelled outputs.  add sums left to right (current + first label + ...);
 * concat joins the current tensor, then the labels in the order written,
 * along the channel (last) axis. */
#include "layers.h"

#include <math.h>

/* The kinds of this file (LayerKind.variant). */
enum { MERGE_ADD, MERGE_CONCAT };

static bool merge_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    const Shape *first = &ins[0];
    bool concat = l->kind->variant == MERGE_CONCAT;
    int64_t channels = first->dim[first->rank - 1];
    for (int i = 1; i < l->nsrcs; i++) {
        const Shape *s = &ins[i];
        bool fits = concat ? s->rank == first->rank : shape_equal(s, first);
        for (int k = 0; concat && fits && k < first->rank - 1; k++)
            fits = s->dim[k] == first->dim[k];
        if (!fits) {
            StrBuf a = {0}, b = {0};
            shape_format(s, &a);
            shape_format(first, &b);
            const Arg *arg = &l->label_args[i - 1];
            diag_error(ctx->diag, arg->loc, "%s: '%s' has shape %s, the current tensor %s%s",
                       l->kind->name, arg->value->name, a.data, b.data,
                       concat ? "; all but the last axis must be equal" : "");
            strbuf_free(&a);
            strbuf_free(&b);
            return false;
        }
        channels += s->dim[s->rank - 1];
    }
    l->out = *first;
    if (concat)
        l->out.dim[l->out.rank - 1] = channels;
    return true;
}

/* add: y = x + x1 + ... left to right, as the reference adds. */
static void add_lower(LowerCtx *c)
{
    int64_t n = shape_size(&c->l->out);
    int i = ir_var(c->p, c->f, "i");
    IrStmt *loop = ir_for(c->p, &c->f->body, i, 0, n);
    IrExpr *sum = ir_load(c->p, c->in[0], ix_var(i, 1));
    for (int k = 1; k < c->nin; k++)
        sum = ir_op(c->p, IRE_ADD, sum, ir_load(c->p, c->in[k], ix_var(i, 1)));
    ir_store(c->p, &loop->body, c->out, ix_var(i, 1), sum, false);
}

/* concat: each position's channels, source after source. */
static void concat_lower(LowerCtx *c)
{
    const Shape *out = &c->l->out;
    int64_t total = out->dim[out->rank - 1], positions = shape_size(out) / total, at = 0;
    int pos = ir_var(c->p, c->f, "pos");
    IrStmt *outer = ir_for(c->p, &c->f->body, pos, 0, positions);
    for (int k = 0; k < c->nin; k++) {
        int64_t ch = c->in_shape[k]->dim[c->in_shape[k]->rank - 1];
        int ci = ir_var(c->p, c->f, "c");
        IrStmt *inner = ir_for(c->p, &outer->body, ci, 0, ch);
        ir_store(c->p, &inner->body, c->out,
                 ix_add(ix_add_var(ix_var(pos, total), ci, 1), ix_const(at)),
                 ir_load(c->p, c->in[k], ix_add_var(ix_var(pos, ch), ci, 1)), false);
        at += ch;
    }
}

/* int8 add, TFLite's for any number of terms: each term, its value less
 * its zero point shifted left by 20 bits, to twice the largest input
 * scale, summed, then to the output's scale (docs/int8.md). */
enum { ADD_LEFT_SHIFT = 20 };

static void add_lower_q(LowerCtx *c)
{
    IrProgram *p = c->p;
    const QuantNode *nodes = c->q->plan->nodes, *out = &nodes[c->index + 1];
    double twice_max = 0;
    for (int k = 0; k < c->nin; k++)
        twice_max = fmax(twice_max, 2 * nodes[c->l->srcs[k]].scale);
    int i = ir_var(p, c->f, "i");
    IrStmt *loop = ir_for(p, &c->f->body, i, 0, shape_size(&c->l->out));
    IrExpr *sum = NULL;
    for (int k = 0; k < c->nin; k++) {
        QuantMultiplier qm = quant_multiplier(nodes[c->l->srcs[k]].scale / twice_max);
        IrExpr *term = ir_requant(
            p,
            ir_op(p, IRE_MUL, lower_q_centred(c, k, ix_var(i, 1)), ir_int(p, 1 << ADD_LEFT_SHIFT)),
            ir_int(p, qm.multiplier), ir_int(p, qm.shift));
        sum = sum ? ir_op(p, IRE_ADD, sum, term) : term;
    }
    ir_store(
        p, &loop->body, c->out, ix_var(i, 1),
        lower_q_rescale(c, sum, twice_max, (double)(1 << ADD_LEFT_SHIFT) * out->scale, out->zero),
        false);
}

/* int8 concat: each source requantized to the output's scale, where its
 * own differs. */
static void concat_lower_q(LowerCtx *c)
{
    const QuantNode *nodes = c->q->plan->nodes, *out = &nodes[c->index + 1];
    const Shape *shape = &c->l->out;
    int64_t total = shape->dim[shape->rank - 1], positions = shape_size(shape) / total, at = 0;
    int pos = ir_var(c->p, c->f, "pos");
    IrStmt *outer = ir_for(c->p, &c->f->body, pos, 0, positions);
    for (int k = 0; k < c->nin; k++) {
        const QuantNode *in = &nodes[c->l->srcs[k]];
        int64_t ch = c->in_shape[k]->dim[c->in_shape[k]->rank - 1];
        int ci = ir_var(c->p, c->f, "c");
        IrStmt *inner = ir_for(c->p, &outer->body, ci, 0, ch);
        IrIndex x_ix = ix_add_var(ix_var(pos, ch), ci, 1);
        IrExpr *v =
            in->scale == out->scale && in->zero == out->zero
                ? ir_load(c->p, c->in[k], x_ix)
                : lower_q_rescale(c, lower_q_centred(c, k, x_ix), in->scale, out->scale, out->zero);
        ir_store(c->p, &inner->body, c->out,
                 ix_add(ix_add_var(ix_var(pos, total), ci, 1), ix_const(at)), v, false);
        at += ch;
    }
}

/* add: every source gets the whole gradient; concat: each its slice of
 * the channels.  A source that appears twice gets it twice. */
static void merge_backward(const LowerCtx *base)
{
    LowerCtx c = lower_train_func(base, PHASE_BACKWARD, true, "backward");
    IrProgram *p = c.p;
    const Shape *out = &c.l->out;
    bool concat = c.l->kind->variant == MERGE_CONCAT;
    int64_t total = out->dim[out->rank - 1], positions = shape_size(out) / total, at = 0;
    for (int k = 0; k < c.nin; k++) {
        int64_t ch = concat ? c.in_shape[k]->dim[c.in_shape[k]->rank - 1] : total;
        if (c.din[k] >= 0) {
            int pos = ir_var(p, c.f, "pos");
            IrStmt *outer = ir_for(p, &c.f->body, pos, 0, positions);
            int ci = ir_var(p, c.f, "c");
            IrStmt *inner = ir_for(p, &outer->body, ci, 0, ch);
            ir_store(
                p, &inner->body, c.din[k], ix_add_var(ix_var(pos, ch), ci, 1),
                ir_load(p, c.dout, ix_add(ix_add_var(ix_var(pos, total), ci, 1), ix_const(at))),
                true);
        }
        if (concat)
            at += ch;
    }
}

const LayerKind merge_kinds[] = {
    {.name = "add",
     .variant = MERGE_ADD,
     .positional = layer_no_names,
     .named = layer_no_names,
     .merges_labels = true,
     .quant = QUANT_RESCALE,
     .infer = merge_infer,
     .lower = add_lower,
     .lower_q = add_lower_q,
     .lower_backward = merge_backward},
    {.name = "concat",
     .variant = MERGE_CONCAT,
     .positional = layer_no_names,
     .named = layer_no_names,
     .merges_labels = true,
     .quant = QUANT_RESCALE,
     .infer = merge_infer,
     .lower = concat_lower,
     .lower_q = concat_lower_q,
     .lower_backward = merge_backward},
    {0},
};
