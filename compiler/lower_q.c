/* lower_q.c - the int8 model to the loop IR (docs/int8.md): one function
 * per layer, as lower.c's, on int8 views with int32 sums.  The layer
 * families write their int8 forms in their own files (LayerKind.lower_q
 * and epilogue_q); what they share is here: the views of the constants,
 * the requantization, clamps and rounded means. */
#include "lower.h"

#include <math.h>

#include "layers/layers.h"

enum { Q_MIN = -128, Q_MAX = 127 };

int lower_acc_local(LowerCtx *c, const char *name, int64_t size)
{
    return ir_typed_view(c->p, c->f, name, VIEW_LOCAL, 0, size, true, c->q ? IR_I32 : IR_F32);
}

IrExpr *lower_zero(LowerCtx *c)
{
    return c->q ? ir_int(c->p, 0) : ir_num(c->p, 0.0f);
}

IrExpr *lower_lowest(LowerCtx *c)
{
    return c->q ? ir_int(c->p, Q_MIN) : ir_num(c->p, -INFINITY);
}

int32_t lower_q_zero(const LowerCtx *c, int node)
{
    return c->q->plan->nodes[node].zero;
}

IrExpr *lower_q_centred(LowerCtx *c, int k, IrIndex ix)
{
    return ir_op(c->p, IRE_SUB, ir_load(c->p, c->in[k], ix),
                 ir_int(c->p, lower_q_zero(c, c->l->srcs[k])));
}

IrExpr *lower_q_clamp(LowerCtx *c, IrExpr *v, int32_t lo)
{
    return ir_op(c->p, IRE_MIN, ir_op(c->p, IRE_MAX, v, ir_int(c->p, lo)), ir_int(c->p, Q_MAX));
}

IrExpr *lower_q_rescale(LowerCtx *c, IrExpr *v, double in_scale, double out_scale, int32_t out_zero)
{
    QuantMultiplier qm = quant_multiplier(in_scale / out_scale);
    IrExpr *r = ir_requant(c->p, v, ir_int(c->p, qm.multiplier), ir_int(c->p, qm.shift));
    return lower_q_clamp(c, ir_op(c->p, IRE_ADD, r, ir_int(c->p, out_zero)), Q_MIN);
}

IrExpr *lower_q_mean(LowerCtx *c, IrExpr *sum, int64_t count)
{
    IrProgram *p = c->p;
    int32_t half = (int32_t)(count / 2);
    IrExpr *nudged =
        ir_op(p, IRE_ADD, sum, ir_select_pos(p, sum, ir_int(p, half), ir_int(p, -half)));
    return ir_op(p, IRE_DIV, nudged, ir_int(p, (int32_t)(count > 0 ? count : 1)));
}

/* Layer `layer`'s constants as views: views[0] its int8 kernel, [1..3]
 * its bias, multiplier and shift per channel; names end in `tag`. */
static void constant_views(LowerCtx *c, int layer, const char *tag, int views[4])
{
    IrProgram *p = c->p;
    const QuantWeights *qw = c->q->qw;
    const Layer *l = c->m->layers[layer];
    int64_t channels = l->out.dim[l->out.rank - 1];
    int64_t kernel = quant_kernel_size(c->m, c->q->plan, layer);
    static const char *const names[4] = {"w", "b", "qm", "qs"};
    for (int k = 0; k < 4; k++)
        views[k] = ir_typed_view(
            p, c->f, arena_printf(&p->arena, "%s%s", names[k], tag), VIEW_PARAMS,
            k == 0 ? qw->weights_at[layer] : qw->consts_at[layer] + (k - 1) * channels,
            k == 0 ? kernel : channels, false, k == 0 ? IR_I8 : IR_I32);
}

void lower_q_epilogue_setup(LowerCtx *c)
{
    for (int e = 0; e < c->nepi; e++) {
        int follower = c->l->epilogue[e] - 1;
        if (c->q->qw->consts_at[follower] >= 0)
            constant_views(c, follower, arena_printf(&c->p->arena, "%d", e), c->epi_views[e]);
    }
}

IrExpr *lower_q_epilogue(LowerCtx *c, IrExpr *sum, IrIndex channel)
{
    IrProgram *p = c->p;
    const QuantPlan *plan = c->q->plan;
    if (c->index == plan->head)
        return sum;
    int32_t zero = plan->nodes[c->index + 1].zero;
    IrExpr *v = ir_op(
        p, IRE_ADD,
        ir_requant(p, sum, ir_load(p, c->q->multiplier, channel), ir_load(p, c->q->shift, channel)),
        ir_int(p, zero));
    v = lower_q_clamp(c, v, c->l->activation == ACT_RELU && zero > Q_MIN ? zero : Q_MIN);
    for (int e = 0; e < c->nepi; e++) {
        const Layer *f = c->m->layers[c->l->epilogue[e] - 1];
        v = f->kind->epilogue_q(c, e, f, v, channel);
    }
    return v;
}

int lower_q_node(const LowerCtx *c, int e, const Layer *l)
{
    return l == c->l ? c->index + 1 : c->l->epilogue[e];
}

void lower_q_elementwise(LowerCtx *c)
{
    IrProgram *p = c->p;
    const Layer *l = c->l;
    int64_t ch = l->out.dim[l->out.rank - 1], positions = shape_size(&l->out) / ch;
    if (c->q->qw->consts_at[c->index] >= 0)
        constant_views(c, c->index, "", c->epi_views[0]);
    int pos = ir_var(p, c->f, "pos");
    IrStmt *outer = ir_for(p, &c->f->body, pos, 0, positions);
    int k = ir_var(p, c->f, "c");
    IrStmt *inner = ir_for(p, &outer->body, k, 0, ch);
    IrIndex at = ix_add_var(ix_var(pos, ch), k, 1);
    ir_store(p, &inner->body, c->out, at,
             l->kind->epilogue_q(c, 0, l, ir_load(p, c->in[0], at), ix_var(k, 1)), false);
}

bool lower_q_has_vectors(const LowerCtx *c)
{
    return c->p->vector_width > 0 && c->q->qw->packed_at[c->index] >= 0;
}

void lower_q_vector_views(LowerCtx *c, int *packed, int *bias)
{
    const QuantWeights *qw = c->q->qw;
    const Layer *l = c->l;
    int64_t padded = quant_padded_channels(l->out.dim[l->out.rank - 1]);
    *packed = ir_typed_view(c->p, c->f, "wp", VIEW_PACKED, qw->packed_at[c->index],
                            l->kind->packed_size_q(l), false, IR_I8);
    *bias = ir_typed_view(c->p, c->f, "bp", VIEW_PACKED,
                          qw->vbias_at[c->index] + (c->p->dot_offset ? 0 : padded), padded, false,
                          IR_I32);
}

int lower_q_floor_view(LowerCtx *c)
{
    return ir_typed_view(c->p, c->f, "least", VIEW_PACKED, 0, QUANT_LANES, false, IR_I32);
}

/* Whether every channel's shift of layer c is at most 0: the vector
 * requantization then has no left shift to saturate. */
static bool shifts_right_only(const LowerCtx *c)
{
    const Layer *l = c->l;
    int64_t channels = l->out.dim[l->out.rank - 1];
    const int32_t *shift = c->q->qw->consts + c->q->qw->consts_at[c->index] + 2 * channels;
    for (int64_t k = 0; k < channels; k++)
        if (shift[k] > 0)
            return false;
    return true;
}

bool lower_q_vectors_out(const LowerCtx *c)
{
    return c->index == c->q->plan->head || c->nepi == 0;
}

void lower_q_vector_out(LowerCtx *c, IrBlock *b, int sums, int lanes, IrIndex ix, IrIndex channel,
                        bool pair)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const QuantPlan *plan = c->q->plan;
    if (c->index == plan->head) {
        ir_vstore(p, b, c->out, ix, sums);
        return;
    }
    int m = ir_typed_vreg(p, f, "qm", lanes, IR_I32), s = ir_typed_vreg(p, f, "qs", lanes, IR_I32);
    IrExpr *(*load)(IrProgram *, int, IrIndex, int) = pair ? ir_vload_halves : ir_vload;
    ir_vset(p, b, m, SCALAR_DECLARE, load(p, c->q->multiplier, channel, lanes));
    ir_vset(p, b, s, SCALAR_DECLARE, load(p, c->q->shift, channel, lanes));
    IrExpr *r = ir_requant(p, ir_vref(p, sums), ir_vref(p, m), ir_vref(p, s));
    r->ivalue = shifts_right_only(c);
    int32_t zero = plan->nodes[c->index + 1].zero;
    IrExpr *v = lower_q_clamp(c, ir_op(p, IRE_ADD, r, ir_int(p, zero)),
                              c->l->activation == ACT_RELU && zero > Q_MIN ? zero : Q_MIN);
    int y = ir_typed_vreg(p, f, "y", lanes, IR_I32);
    ir_vset(p, b, y, SCALAR_DECLARE, v);
    ir_vstore(p, b, c->out, ix, y);
}

/* The function of layer `index`, as lower.c's lower_layer_function: the
 * float head writes its int32 sums to the caller's output, with no
 * epilogue (its activation is the float predict's). */
static void lower_layer_q(const Model *m, LowerQuant *q, IrProgram *p, int index, bool block)
{
    const Layer *l = m->layers[index];
    char *fname = arena_printf(&p->arena, "layer_%s%s", l->name, block ? "_block" : "");
    char *comment = lower_layer_comment(&p->arena, m, l, NULL);
    IrFunc *f = block ? ir_train_func(p, fname, comment, PHASE_PREDICT_BLOCK, false)
                      : ir_func(p, fname, comment);
    bool head = index == q->plan->head;
    LowerCtx c = lower_layer_ctx(p, f, m, index);
    c.q = q;
    if (head)
        c.nepi = 0;
    lower_source_views(&c);
    if (head)
        c.out = ir_typed_view(p, f, "y", VIEW_OUTPUT, 0, shape_size(&l->out), true, IR_I32);
    else
        c.out = lower_node_view(&c, lower_output_node(l, index), "y", true);
    q->multiplier = q->shift = -1;
    if (l->kind->quant == QUANT_LINEAR_MAP) {
        int views[4];
        constant_views(&c, index, "", views);
        c.params[0] = views[0];
        c.params[1] = views[1];
        q->multiplier = views[2];
        q->shift = views[3];
    }
    if (block)
        lower_block_strides(&c);
    if (l->kind->lower_q)
        l->kind->lower_q(&c);
    else
        l->kind->lower(&c);
}

/* Whether layer i also gets a block function (its lower_q over a block of
 * samples): a program with vector kernels and blocks, a layer whose
 * parameters outgrow the caches (as the float program's) with a vector
 * form, and a kind whose lower_q computes blocks (it has lower_block). */
static bool runs_in_blocks_q(const Model *m, const QuantWeights *qw, const IrProgram *p, int i)
{
    return p->blocks && p->vector_width > 0 && qw->packed_at[i] >= 0 && layer_runs_in_blocks(m, i);
}

/* The max pooling layer right after layer i that its vector kernels may
 * take in: a max pool without padding, the only reader of layer i's
 * output, which has no batchnorm folded in; -1: none. */
static int pool_after(const Model *m, const QuantPlan *plan, int i)
{
    if (i + 1 >= m->nlayers || plan->fold[i] >= 0 || i == plan->head)
        return -1;
    const Layer *pool = m->layers[i + 1];
    if (!pool->kind->max_pool || pool->nsrcs != 1 || pool->srcs[0] != i + 1)
        return -1;
    for (int a = 0; a < pool->nd; a++)
        if (pool->pad_before[a] || pool->pad_after[a] || pool->dilation[a] != 1)
            return -1;
    for (int j = 0; j < m->nlayers; j++)
        for (int s = 0; s < m->layers[j]->nsrcs; s++)
            if (j != i + 1 && m->layers[j]->srcs[s] == i + 1)
                return -1;
    return i + 1;
}

void lower_model_q(const Model *m, const QuantPlan *plan, const QuantWeights *qw, IrProgram *p)
{
    p->quantized = true;
    p->output_type = plan->head >= 0 ? IR_I32 : IR_I8;
    int pooled = -1; /* a pool the layer before took in */
    for (int i = 0; i < m->nlayers; i++) {
        if (m->layers[i]->alias_of >= 0 || (plan->head >= 0 && i > plan->head) || i == pooled)
            continue;
        LowerQuant *q = arena_alloc(&p->arena, sizeof *q);
        q->plan = plan;
        q->qw = qw;
        q->pool = p->vector_width > 0 ? pool_after(m, plan, i) : -1;
        q->pooled = false;
        int from = p->nfuncs;
        lower_layer_q(m, q, p, i, false);
        if (runs_in_blocks_q(m, qw, p, i))
            lower_layer_q(m, q, p, i, true);
        ir_tag_layer(p, from, i);
        if (q->pooled)
            pooled = q->pool;
    }
}
