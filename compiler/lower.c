/* lower.c - the model to the loop IR: one function per layer. */
#include "lower.h"

#include <math.h>
#include <string.h>

#include "layers/layers.h"

int lower_local(LowerCtx *c, const char *name, int64_t size)
{
    return ir_view(c->p, c->f, name, VIEW_LOCAL, 0, size, true);
}

int lower_lanes_dividing(const IrProgram *p, int64_t n)
{
    if (p->vector_width == 1) /* an int8 DSP clone's one sum a "vector" */
        return 1;
    for (int lanes = p->vector_width; lanes >= 4; lanes /= 2)
        if (n % lanes == 0)
            return lanes;
    return 0;
}

int lower_lanes_within(const IrProgram *p, int64_t n)
{
    for (int lanes = p->vector_width; lanes >= 4; lanes /= 2)
        if (n >= lanes)
            return lanes;
    return 0;
}

void lower_copy(LowerCtx *c)
{
    int i = ir_var(c->p, c->f, "i");
    IrStmt *loop = ir_for(c->p, &c->f->body, i, 0, shape_size(&c->l->out));
    ir_store(c->p, &loop->body, c->out, ix_var(i, 1), ir_load(c->p, c->in[0], ix_var(i, 1)), false);
}

IrExpr *lower_activation(LowerCtx *c, Activation act, float alpha, IrExpr *x)
{
    IrProgram *p = c->p;
    switch (act) {
    case ACT_RELU: return ir_op(p, IRE_MAX, x, ir_num(p, 0.0f));
    case ACT_SIGMOID: /* 1 / (1 + exp(-x)) */
        return ir_op(p, IRE_DIV, ir_num(p, 1.0f),
                     ir_op(p, IRE_ADD, ir_num(p, 1.0f),
                           ir_op(p, IRE_EXP, ir_op(p, IRE_NEG, x, NULL), NULL)));
    case ACT_TANH: return ir_op(p, IRE_TANH, x, NULL);
    case ACT_LEAKY_RELU: return ir_select_pos(p, x, x, ir_op(p, IRE_MUL, ir_num(p, alpha), x));
    default: /* linear; softmax is applied over a whole row */ return x;
    }
}

void lower_softmax(LowerCtx *c, IrBlock *b, int view, int64_t positions, int64_t channels)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int pos = ir_var(p, f, "sp");
    IrStmt *rows = ir_for(p, b, pos, 0, positions);
    IrIndex row = ix_var(pos, channels);
    int max = ir_scalar(p, f, "max"), sum = ir_scalar(p, f, "sum");
    ir_set(p, &rows->body, max, SCALAR_DECLARE, ir_num(p, -INFINITY));
    int ch = ir_var(p, f, "sc");
    IrStmt *l1 = ir_for(p, &rows->body, ch, 0, channels);
    ir_set(p, &l1->body, max, SCALAR_SET,
           ir_op(p, IRE_MAX, ir_ref(p, max), ir_load(p, view, ix_add_var(row, ch, 1))));
    ir_set(p, &rows->body, sum, SCALAR_DECLARE, ir_num(p, 0.0f));
    IrStmt *l2 = ir_for(p, &rows->body, ch, 0, channels);
    IrExpr *e =
        ir_op(p, IRE_EXP,
              ir_op(p, IRE_SUB, ir_load(p, view, ix_add_var(row, ch, 1)), ir_ref(p, max)), NULL);
    ir_store(p, &l2->body, view, ix_add_var(row, ch, 1), e, false);
    ir_set(p, &l2->body, sum, SCALAR_ADD, ir_load(p, view, ix_add_var(row, ch, 1)));
    IrStmt *l3 = ir_for(p, &rows->body, ch, 0, channels);
    ir_store(p, &l3->body, view, ix_add_var(row, ch, 1),
             ir_op(p, IRE_DIV, ir_load(p, view, ix_add_var(row, ch, 1)), ir_ref(p, sum)), false);
}

void lower_output_softmax(LowerCtx *c)
{
    if (c->act != ACT_SOFTMAX)
        return;
    const Shape *s = &c->l->out;
    int64_t channels = s->dim[s->rank - 1];
    lower_softmax(c, &c->f->body, c->out, shape_size(s) / channels, channels);
}

/* Where a node's values live: the model input, the caller's output (for
 * the node that owns the model output's storage), or the arena at the
 * planned offset. */
int lower_node_view(LowerCtx *c, int node, const char *name, bool written)
{
    const Model *m = c->m;
    int64_t size = shape_size(model_node_shape(m, node));
    int owner = model_storage_owner(m, node);
    IrType type = c->p->quantized ? IR_I8 : IR_F32;
    if (owner == 0)
        return ir_typed_view(c->p, c->f, name, VIEW_INPUT, 0, size, written, type);
    if (owner == model_storage_owner(m, m->nlayers))
        return ir_typed_view(c->p, c->f, name, VIEW_OUTPUT, 0, size, written, type);
    return ir_typed_view(c->p, c->f, name, VIEW_ARENA, m->layers[owner - 1]->arena_offset, size,
                         written, type);
}

/* ---- epilogues ------------------------------------------------------------
 * A conv or dense layer applies its own activation, then each fused
 * follower's element-wise function (its kind's epilogue). */

void lower_epilogue_setup(LowerCtx *c)
{
    if (c->q) {
        lower_q_epilogue_setup(c);
        return;
    }
    for (int e = 0; e < c->nepi; e++) {
        const Layer *f = c->m->layers[c->l->epilogue[e] - 1];
        if (f->kind->epilogue_setup)
            f->kind->epilogue_setup(c, e, f);
    }
}

IrExpr *lower_epilogue(LowerCtx *c, IrExpr *v, IrIndex channel)
{
    if (c->q)
        return lower_q_epilogue(c, v, channel);
    v = lower_activation(c, c->act, 0.01f, v);
    for (int e = 0; e < c->nepi; e++) {
        const Layer *f = c->m->layers[c->l->epilogue[e] - 1];
        v = f->kind->epilogue(c, e, f, v, channel);
    }
    return v;
}

bool lower_epilogue_in_vectors(const LowerCtx *c)
{
    if (c->q || (c->act != ACT_NONE && c->act != ACT_LINEAR && c->act != ACT_RELU))
        return false;
    for (int e = 0; e < c->nepi; e++) {
        const LayerKind *k = c->m->layers[c->l->epilogue[e] - 1]->kind;
        if (k->activation != ACT_RELU && k->activation != ACT_LINEAR)
            return false;
    }
    return true;
}

/* relu once however many there are (relu of relu is relu). */
IrExpr *lower_epilogue_vector(LowerCtx *c, int vreg, int lanes)
{
    bool relu = c->act == ACT_RELU;
    for (int e = 0; e < c->nepi; e++)
        relu |= c->m->layers[c->l->epilogue[e] - 1]->kind->activation == ACT_RELU;
    IrExpr *v = ir_vref(c->p, vreg);
    return relu ? ir_op(c->p, IRE_MAX, v, ir_vzero(c->p, lanes)) : v;
}

LowerCtx lower_layer_ctx(IrProgram *p, IrFunc *f, const Model *m, int index)
{
    const Layer *l = m->layers[index];
    LowerCtx c = {.p = p,
                  .f = f,
                  .m = m,
                  .l = l,
                  .nin = l->nsrcs,
                  .act = l->activation,
                  .nepi = l->nepilogue,
                  .index = index};
    return c;
}

void lower_source_views(LowerCtx *c)
{
    const Layer *l = c->l;
    Arena *a = &c->p->arena;
    c->in = arena_alloc(a, (size_t)l->nsrcs * sizeof *c->in);
    c->in_shape = arena_alloc(a, (size_t)l->nsrcs * sizeof *c->in_shape);
    for (int i = 0; i < l->nsrcs; i++) {
        c->in[i] = lower_node_view(c, l->srcs[i], lower_source_name(a, "x", i), false);
        c->in_shape[i] = model_node_shape(c->m, l->srcs[i]);
    }
}

int lower_output_node(const Layer *l, int index)
{
    return l->nepilogue ? l->epilogue[l->nepilogue - 1] : index + 1;
}

const char *lower_source_name(Arena *a, const char *stem, int i)
{
    return i == 0 ? stem : arena_printf(a, "%s%d", stem, i);
}

const char *lower_param_name(const Layer *l, int k)
{
    return l->kind->param_names[k];
}

char *lower_layer_comment(Arena *a, const Model *m, const Layer *l, const char *what)
{
    StrBuf b = {0};
    strbuf_printf(&b, "%s %s (line %d)%s%s: ", l->kind->name, l->name, l->loc.line,
                  what ? ", " : "", what ? what : "");
    for (int i = 0; i < l->nsrcs; i++) {
        if (i)
            strbuf_printf(&b, " + ");
        shape_format(model_node_shape(m, l->srcs[i]), &b);
    }
    strbuf_printf(&b, " -> ");
    shape_format(&l->out, &b);
    for (int e = 0; !what && e < l->nepilogue; e++) {
        const Layer *f = m->layers[l->epilogue[e] - 1];
        strbuf_printf(&b, ", then %s %s (line %d)", f->kind->name, f->name, f->loc.line);
    }
    char *text = arena_strndup(a, b.data, b.len);
    strbuf_free(&b);
    return text;
}

IrIndex lower_sample_index(const LowerCtx *c, int v, int s, IrIndex ix)
{
    return ix_add_var(ix, s, c->f->views[v].sample_stride);
}

/* In a block function, each view of a sample's values moves by a whole
 * sample's from one sample to the next: the caller's input and output, or
 * one sample's arena in predict_batch's block of them. */
void lower_block_strides(LowerCtx *c)
{
    const Model *m = c->m;
    for (int v = 0; v < c->f->nviews; v++) {
        IrView *view = &c->f->views[v];
        view->sample_stride = view->base == VIEW_INPUT    ? shape_size(&m->input)
                              : view->base == VIEW_OUTPUT ? shape_size(model_output_shape(m))
                              : view->base == VIEW_ARENA  ? m->block_stride
                                                          : 0;
    }
}

/* The function computing layer `index`: for one sample, or (block) for a
 * block of samples. */
static void lower_layer_function(const Model *m, IrProgram *p, int index, bool block)
{
    const Layer *l = m->layers[index];
    char *fname = arena_printf(&p->arena, "layer_%s%s", l->name, block ? "_block" : "");
    char *comment = lower_layer_comment(&p->arena, m, l, NULL);
    IrFunc *f = block ? ir_train_func(p, fname, comment, PHASE_PREDICT_BLOCK, false)
                      : ir_func(p, fname, comment);
    LowerCtx c = lower_layer_ctx(p, f, m, index);
    lower_source_views(&c);
    c.out = lower_node_view(&c, lower_output_node(l, index), "y", true);
    for (int k = 0; k < l->nparams; k++)
        c.params[k] = ir_view(p, f, lower_param_name(l, k), VIEW_PARAMS, l->params[k].offset,
                              shape_size(&l->params[k].shape), false);
    if (block) {
        lower_block_strides(&c);
        l->kind->lower_block(&c);
    } else {
        l->kind->lower(&c);
    }
}

/* A layer's function, and its block function right after it when it has
 * one (emit's predict_batch calls it in the place of the other).  Plain
 * loops keep to one sample: without vectors a block's accumulators would
 * go through memory. */
static void lower_layer(const Model *m, IrProgram *p, int index)
{
    if (m->layers[index]->alias_of >= 0)
        return;
    lower_layer_function(m, p, index, false);
    if (p->blocks && p->vector_width > 0 && layer_runs_in_blocks(m, index))
        lower_layer_function(m, p, index, true);
}

void lower_model(const Model *m, IrProgram *p)
{
    for (int i = 0; i < m->nlayers; i++) {
        int from = p->nfuncs;
        lower_layer(m, p, i);
        ir_tag_layer(p, from, i);
    }
}
