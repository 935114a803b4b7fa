/* lower_train.c - the training step as loop IR: the forward pass in
 * training mode, the loss and its gradient, the backward pass and the
 * optimizer step.
 *
 * Every training function sees the batch (n samples, at most the train
 * block's batch).  Most run once per sample (IrFunc.per_sample) over
 * per-sample views of the training arena (graph.h, TrainPlan); sums over
 * the batch (parameter gradients, batchnorm's statistics) are added to
 * shared views in sample order, so the result does not depend on how the
 * work is split.  Layers lower their own backward pass (compiler/layers/,
 * beside the forward one); this file holds what is not a layer's.
 */
#include "lower.h"

#include <math.h>
#include <string.h>

#include "layers/layers.h"

static int64_t node_size(const Model *m, int node)
{
    return shape_size(model_node_shape(m, node));
}

/* A node's values, per sample: the caller's input for node 0 (and what
 * shares it), else its block of the training arena. */
static int act_view(LowerCtx *c, int node, const char *name, bool written)
{
    const TrainPlan *tp = &c->m->tp;
    int64_t size = node_size(c->m, node);
    if (tp->owner[node] == 0)
        return ir_sample_view(c->p, c->f, name, VIEW_INPUT, 0, size, false, size);
    return ir_sample_view(c->p, c->f, name, VIEW_TRAIN, tp->act[node], size, written, size);
}

static int grad_view(LowerCtx *c, int node, const char *name)
{
    const TrainPlan *tp = &c->m->tp;
    if (!train_needs_grad(c->m, node))
        return -1;
    int64_t size = node_size(c->m, node);
    return ir_sample_view(c->p, c->f, name, VIEW_TRAIN, tp->grad[node], size, true, size);
}

LowerCtx lower_train_func(const LowerCtx *base, IrPhase phase, bool per_sample, const char *what)
{
    LowerCtx c = *base;
    IrProgram *p = c.p;
    const Model *m = c.m;
    const Layer *l = c.l;
    const TrainPlan *tp = &m->tp;
    int node = c.index + 1;
    /* Quantization-aware training: evaluation reads the float values; in
     * training, the forward and backward passes read the fake-quantized
     * ones, so the shared forward pass is training's only. */
    bool fake = m->qat.observer && phase != PHASE_FORWARD_EVAL;
    if (fake && phase == PHASE_FORWARD)
        phase = PHASE_FORWARD_TRAIN;
    c.f = ir_train_func(p, arena_printf(&p->arena, "train_%s_%s", l->name, what),
                        lower_layer_comment(&p->arena, m, l, what), phase, per_sample);
    c.nin = l->nsrcs;
    c.in = arena_alloc(&p->arena, (size_t)l->nsrcs * sizeof *c.in);
    c.din = arena_alloc(&p->arena, (size_t)l->nsrcs * sizeof *c.din);
    c.in_shape = arena_alloc(&p->arena, (size_t)l->nsrcs * sizeof *c.in_shape);
    for (int i = 0; i < l->nsrcs; i++) {
        int src = tp->owner[l->srcs[i]];
        int64_t size = node_size(m, l->srcs[i]);
        c.in[i] = fake && tp->fq[src] >= 0
                      ? ir_sample_view(p, c.f, lower_source_name(&p->arena, "x", i), VIEW_TRAIN,
                                       tp->fq[src], size, false, size)
                      : act_view(&c, l->srcs[i], lower_source_name(&p->arena, "x", i), false);
        /* A source met twice (add(a, a)) gets one view of its gradient:
         * two restrict pointers must not write the same floats. */
        int same = -1;
        for (int j = 0; j < i; j++)
            if (tp->owner[l->srcs[j]] == tp->owner[l->srcs[i]])
                same = j;
        c.din[i] = same >= 0 ? c.din[same]
                             : grad_view(&c, l->srcs[i], lower_source_name(&p->arena, "dx", i));
        c.in_shape[i] = model_node_shape(m, l->srcs[i]);
    }
    int64_t size = shape_size(&l->out);
    c.out = act_view(&c, node, "y", true);
    c.dout = grad_view(&c, node, "dy");
    c.pre = tp->pre[node] < 0
                ? -1
                : ir_sample_view(p, c.f, "z", VIEW_TRAIN, tp->pre[node], size, true, size);
    c.mask = tp->mask[node] < 0
                 ? -1
                 : ir_sample_view(p, c.f, "mask", VIEW_TRAIN, tp->mask[node], size, false, size);
    c.stats = tp->stats[node] < 0
                  ? -1
                  : ir_view(p, c.f, "stats", VIEW_TRAIN, tp->stats[node],
                            l->kind->train_channel_stats * l->out.dim[l->out.rank - 1], true);
    c.wt = tp->wt[node] < 0 ? -1
                            : ir_view(p, c.f, "wt", VIEW_TRAIN, tp->wt[node],
                                      shape_size(&l->params[0].shape), true);
    for (int k = 0; k < l->nparams; k++) {
        const Param *par = &l->params[k];
        int64_t count = shape_size(&par->shape);
        const char *name = lower_param_name(l, k);
        c.params[k] = k == 0 && fake && tp->wq[node] >= 0
                          ? ir_view(p, c.f, name, VIEW_TRAIN, tp->wq[node], count, false)
                          : ir_view(p, c.f, name, VIEW_PARAMS, par->offset, count, false);
        c.dparams[k] = par->trainable
                           ? ir_view(p, c.f, arena_printf(&p->arena, "d%s", name), VIEW_TRAIN,
                                     tp->param_grad + par->offset, count, true)
                           : -1;
    }
    c.act = c.pre >= 0 ? ACT_LINEAR : l->activation;
    c.nepi = 0;
    return c;
}

/* ---- activations -------------------------------------------------------- */

IrExpr *lower_activation_grad(LowerCtx *c, Activation act, float alpha, IrExpr *dy, IrExpr *x,
                              IrExpr *y)
{
    IrProgram *p = c->p;
    switch (act) {
    case ACT_RELU: /* PyTorch's: the gradient where x > 0 */
        return ir_select_pos(p, x, dy, ir_num(p, 0.0f));
    case ACT_LEAKY_RELU: return ir_select_pos(p, x, dy, ir_op(p, IRE_MUL, dy, ir_num(p, alpha)));
    case ACT_SIGMOID: /* dy * (1 - y) * y */
        return ir_op(p, IRE_MUL, ir_op(p, IRE_MUL, dy, ir_op(p, IRE_SUB, ir_num(p, 1.0f), y)), y);
    case ACT_TANH: /* dy * (1 - y^2) */
        return ir_op(p, IRE_MUL, dy, ir_op(p, IRE_SUB, ir_num(p, 1.0f), ir_op(p, IRE_MUL, y, y)));
    default: return dy;
    }
}

void lower_softmax_grad(LowerCtx *c, IrBlock *b, int grad, int y, int64_t positions,
                        int64_t channels)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int pos = ir_var(p, f, "sp");
    IrStmt *rows = ir_for(p, b, pos, 0, positions);
    IrIndex row = ix_var(pos, channels);
    int dot = ir_scalar(p, f, "dot");
    ir_set(p, &rows->body, dot, SCALAR_DECLARE, ir_num(p, 0.0f));
    int ch = ir_var(p, f, "sc");
    IrStmt *l1 = ir_for(p, &rows->body, ch, 0, channels);
    IrIndex at = ix_add_var(row, ch, 1);
    ir_set(p, &l1->body, dot, SCALAR_ADD,
           ir_op(p, IRE_MUL, ir_load(p, grad, at), ir_load(p, y, at)));
    IrStmt *l2 = ir_for(p, &rows->body, ch, 0, channels);
    ir_store(p, &l2->body, grad, at,
             ir_op(p, IRE_MUL, ir_load(p, y, at),
                   ir_op(p, IRE_SUB, ir_load(p, grad, at), ir_ref(p, dot))),
             false);
}

/* y = act(z), element by element or (softmax) row by row. */
static void lower_apply_activation(LowerCtx *c, int z, int y)
{
    IrProgram *p = c->p;
    const Shape *s = &c->l->out;
    int64_t size = shape_size(s), channels = s->dim[s->rank - 1];
    int i = ir_var(p, c->f, "i");
    IrStmt *loop = ir_for(p, &c->f->body, i, 0, size);
    ir_store(p, &loop->body, y, ix_var(i, 1),
             lower_activation(c, c->l->activation, 0.01f, ir_load(p, z, ix_var(i, 1))), false);
    if (c->l->activation == ACT_SOFTMAX)
        lower_softmax(c, &c->f->body, y, size / channels, channels);
}

void lower_train_activation(const LowerCtx *base, IrPhase phase)
{
    LowerCtx c = lower_train_func(base, phase, true, "activation");
    lower_apply_activation(&c, c.pre, c.out);
}

void lower_train_forward(const LowerCtx *base, IrPhase phase)
{
    LowerCtx c = lower_train_func(base, phase, true,
                                  phase == PHASE_FORWARD_EVAL ? "forward_eval" : "forward");
    int y = c.out;
    if (c.pre >= 0)
        c.out = c.pre;
    c.l->kind->lower(&c);
    if (c.pre >= 0)
        lower_apply_activation(&c, c.pre, y);
}

/* A conv or dense layer's activation, backwards: the gradient of its
 * output becomes that of its pre-activation, in place (every reader of
 * the output has added its part by now). */
static void lower_pre_grad(const LowerCtx *base)
{
    LowerCtx c = lower_train_func(base, PHASE_BACKWARD, true, "activation_backward");
    IrProgram *p = c.p;
    const Shape *s = &c.l->out;
    int64_t size = shape_size(s), channels = s->dim[s->rank - 1];
    if (c.l->activation == ACT_SOFTMAX) {
        lower_softmax_grad(&c, &c.f->body, c.dout, c.out, size / channels, channels);
        return;
    }
    int i = ir_var(p, c.f, "i");
    IrStmt *loop = ir_for(p, &c.f->body, i, 0, size);
    IrIndex at = ix_var(i, 1);
    ir_store(p, &loop->body, c.dout, at,
             lower_activation_grad(&c, c.l->activation, 0.01f, ir_load(p, c.dout, at),
                                   ir_load(p, c.pre, at), ir_load(p, c.out, at)),
             false);
}

/* ---- the loss --------------------------------------------------------------
 * Per sample: its loss (a mean over its output elements, or positions for
 * crossentropy) into the loss block, and the gradient of the batch's mean
 * loss with respect to the output, or to the logits when the loss is
 * computed from them (Keras' from_logits, as the reference does). */

#define KERAS_EPSILON 1e-7f /* clipping of probabilities */

static IrExpr *abs_of(IrProgram *p, IrExpr *x)
{
    return ir_op(p, IRE_MAX, x, ir_op(p, IRE_NEG, x, NULL));
}

/* 1 where lo <= x <= hi, else 0: where clamp passes its gradient. */
static IrExpr *inside(IrProgram *p, IrExpr *x, float lo, float hi)
{
    return ir_select_pos(
        p, ir_op(p, IRE_SUB, ir_num(p, lo), x), ir_num(p, 0.0f),
        ir_select_pos(p, ir_op(p, IRE_SUB, x, ir_num(p, hi)), ir_num(p, 0.0f), ir_num(p, 1.0f)));
}

static IrExpr *clip(IrProgram *p, IrExpr *x)
{
    return ir_op(p, IRE_MIN, ir_op(p, IRE_MAX, x, ir_num(p, KERAS_EPSILON)),
                 ir_num(p, 1.0f - KERAS_EPSILON));
}

/* value / (count * n): a share of the batch's mean. */
static IrExpr *per_batch(IrProgram *p, IrExpr *value, int64_t count)
{
    return ir_op(p, IRE_DIV, value,
                 ir_op(p, IRE_MUL, ir_num(p, (float)count), ir_op(p, IRE_BATCH, NULL, NULL)));
}

typedef struct {
    LowerCtx c;
    int y, t, logits, g, loss, sum;
    int64_t size, classes, positions;
} LossCtx;

static void loss_elementwise(LossCtx *lc, Loss loss)
{
    IrProgram *p = lc->c.p;
    IrFunc *f = lc->c.f;
    int i = ir_var(p, f, "i");
    IrBlock *b = &ir_for(p, &f->body, i, 0, lc->size)->body;
    IrIndex at = ix_var(i, 1);
    IrExpr *y = ir_load(p, lc->y, at), *t = ir_load(p, lc->t, at), *term, *grad;
    int d = ir_scalar(p, f, "d");
    switch (loss) {
    case LOSS_MSE:
        ir_set(p, b, d, SCALAR_DECLARE, ir_op(p, IRE_SUB, y, t));
        term = ir_op(p, IRE_MUL, ir_ref(p, d), ir_ref(p, d));
        grad = ir_op(p, IRE_MUL, ir_num(p, 2.0f), ir_ref(p, d));
        break;
    case LOSS_MAE:
        ir_set(p, b, d, SCALAR_DECLARE, ir_op(p, IRE_SUB, y, t));
        term = abs_of(p, ir_ref(p, d));
        grad = ir_select_pos(p, ir_ref(p, d), ir_num(p, 1.0f),
                             ir_select_pos(p, ir_op(p, IRE_NEG, ir_ref(p, d), NULL),
                                           ir_num(p, -1.0f), ir_num(p, 0.0f)));
        break;
    default:
        if (lc->logits >= 0) {
            /* max(z, 0) - z*t + log(1 + exp(-|z|)); the gradient sigmoid(z) - t */
            IrExpr *z = ir_load(p, lc->logits, at);
            term = ir_op(
                p, IRE_ADD,
                ir_op(p, IRE_SUB, ir_op(p, IRE_MAX, z, ir_num(p, 0.0f)), ir_op(p, IRE_MUL, z, t)),
                ir_op(p, IRE_LOG,
                      ir_op(p, IRE_ADD, ir_num(p, 1.0f),
                            ir_op(p, IRE_EXP, ir_op(p, IRE_NEG, abs_of(p, z), NULL), NULL)),
                      NULL));
            grad = ir_op(p, IRE_SUB, y, t);
        } else {
            /* -(t log(p + eps) + (1 - t) log(1 - p + eps)), p = clip(y) */
            ir_set(p, b, d, SCALAR_DECLARE, clip(p, y));
            IrExpr *pe = ir_op(p, IRE_ADD, ir_ref(p, d), ir_num(p, KERAS_EPSILON));
            IrExpr *qe = ir_op(p, IRE_ADD, ir_op(p, IRE_SUB, ir_num(p, 1.0f), ir_ref(p, d)),
                               ir_num(p, KERAS_EPSILON));
            IrExpr *u = ir_op(p, IRE_SUB, ir_num(p, 1.0f), t);
            term = ir_op(p, IRE_NEG,
                         ir_op(p, IRE_ADD, ir_op(p, IRE_MUL, t, ir_op(p, IRE_LOG, pe, NULL)),
                               ir_op(p, IRE_MUL, u, ir_op(p, IRE_LOG, qe, NULL))),
                         NULL);
            grad = ir_op(p, IRE_MUL, inside(p, y, KERAS_EPSILON, 1.0f - KERAS_EPSILON),
                         ir_op(p, IRE_SUB, ir_op(p, IRE_DIV, u, qe), ir_op(p, IRE_DIV, t, pe)));
        }
        break;
    }
    ir_set(p, b, lc->sum, SCALAR_ADD, term);
    if (lc->g >= 0)
        ir_store(p, b, lc->g, at, per_batch(p, grad, lc->size), false);
    ir_store(p, &f->body, lc->loss, ix_const(0),
             ir_op(p, IRE_DIV, ir_ref(p, lc->sum), ir_num(p, (float)lc->size)), false);
}

/* Class indices: t[r] for each position r; one-hot by comparing with a
 * float counter (|t - k| < 0.5). */
static void loss_crossentropy(LossCtx *lc)
{
    IrProgram *p = lc->c.p;
    IrFunc *f = lc->c.f;
    int64_t classes = lc->classes;
    int r = ir_var(p, f, "r");
    IrBlock *rows = &ir_for(p, &f->body, r, 0, lc->positions)->body;
    IrIndex row = ix_var(r, classes);
    int lse = -1;
    if (lc->logits >= 0) { /* log-sum-exp of the row's logits */
        int max = ir_scalar(p, f, "max"), sum = ir_scalar(p, f, "sum");
        ir_set(p, rows, max, SCALAR_DECLARE, ir_num(p, -INFINITY));
        int k = ir_var(p, f, "k");
        IrStmt *l1 = ir_for(p, rows, k, 0, classes);
        ir_set(p, &l1->body, max, SCALAR_SET,
               ir_op(p, IRE_MAX, ir_ref(p, max), ir_load(p, lc->logits, ix_add_var(row, k, 1))));
        ir_set(p, rows, sum, SCALAR_DECLARE, ir_num(p, 0.0f));
        IrStmt *l2 = ir_for(p, rows, k, 0, classes);
        ir_set(
            p, &l2->body, sum, SCALAR_ADD,
            ir_op(p, IRE_EXP,
                  ir_op(p, IRE_SUB, ir_load(p, lc->logits, ix_add_var(row, k, 1)), ir_ref(p, max)),
                  NULL));
        lse = ir_scalar(p, f, "lse");
        ir_set(p, rows, lse, SCALAR_DECLARE,
               ir_op(p, IRE_ADD, ir_ref(p, max), ir_op(p, IRE_LOG, ir_ref(p, sum), NULL)));
    }
    int kf = ir_scalar(p, f, "class");
    ir_set(p, rows, kf, SCALAR_DECLARE, ir_num(p, 0.0f));
    int k = ir_var(p, f, "k");
    IrBlock *b = &ir_for(p, rows, k, 0, classes)->body;
    IrIndex at = ix_add_var(row, k, 1);
    int hot = ir_scalar(p, f, "hot");
    ir_set(p, b, hot, SCALAR_DECLARE,
           ir_select_pos(
               p,
               ir_op(p, IRE_SUB, ir_num(p, 0.5f),
                     abs_of(p, ir_op(p, IRE_SUB, ir_load(p, lc->t, ix_var(r, 1)), ir_ref(p, kf)))),
               ir_num(p, 1.0f), ir_num(p, 0.0f)));
    IrExpr *y = ir_load(p, lc->y, at), *term, *grad;
    if (lc->logits >= 0) { /* -log softmax = lse - z; gradient softmax - onehot */
        term = ir_op(p, IRE_MUL, ir_ref(p, hot),
                     ir_op(p, IRE_SUB, ir_ref(p, lse), ir_load(p, lc->logits, at)));
        grad = ir_op(p, IRE_SUB, y, ir_ref(p, hot));
    } else { /* -log clip(y) */
        term = ir_op(p, IRE_MUL, ir_ref(p, hot),
                     ir_op(p, IRE_NEG, ir_op(p, IRE_LOG, clip(p, y), NULL), NULL));
        grad = ir_op(
            p, IRE_MUL,
            ir_op(p, IRE_MUL, ir_ref(p, hot), inside(p, y, KERAS_EPSILON, 1.0f - KERAS_EPSILON)),
            ir_op(p, IRE_DIV, ir_num(p, -1.0f), clip(p, y)));
    }
    ir_set(p, b, lc->sum, SCALAR_ADD, term);
    if (lc->g >= 0)
        ir_store(p, b, lc->g, at, per_batch(p, grad, lc->positions), false);
    ir_set(p, b, kf, SCALAR_ADD, ir_num(p, 1.0f));
    ir_store(p, &f->body, lc->loss, ix_const(0),
             ir_op(p, IRE_DIV, ir_ref(p, lc->sum), ir_num(p, (float)lc->positions)), false);
}

static void lower_loss(const Model *m, IrProgram *p)
{
    const TrainPlan *tp = &m->tp;
    int last = m->nlayers;
    LossCtx lc = {0};
    lc.c = (LowerCtx){.p = p, .m = m, .index = last - 1};
    lc.c.f = ir_train_func(p, "train_loss",
                           arena_printf(&p->arena, "the loss: %s", loss_names[m->train.loss]),
                           PHASE_LOSS, true);
    const Shape *out = model_output_shape(m);
    lc.size = shape_size(out);
    lc.classes = out->rank ? out->dim[out->rank - 1] : 1;
    lc.positions = lc.size / lc.classes;
    lc.y = act_view(&lc.c, last, "y", false);
    lc.g = grad_view(&lc.c, last, "dy");
    bool pre;
    int logits = train_logits_node(m, &pre);
    lc.logits =
        logits < 0 ? -1
        : pre ? ir_sample_view(p, lc.c.f, "z", VIEW_TRAIN, tp->pre[logits], lc.size, false, lc.size)
              : act_view(&lc.c, logits, "z", false);
    bool ce = m->train.loss == LOSS_CROSSENTROPY;
    int64_t targets = ce ? lc.positions : lc.size;
    lc.t = ir_sample_view(p, lc.c.f, "t", VIEW_TARGET, 0, targets, false, targets);
    lc.loss = ir_sample_view(p, lc.c.f, "loss", VIEW_TRAIN, tp->loss, 1, true, 1);
    lc.sum = ir_scalar(p, lc.c.f, "total");
    ir_set(p, &lc.c.f->body, lc.sum, SCALAR_DECLARE, ir_num(p, 0.0f));
    if (ce)
        loss_crossentropy(&lc);
    else
        loss_elementwise(&lc, m->train.loss);
}

/* ---- the optimizer ---------------------------------------------------------
 * One loop per trainable tensor, the contract's formulas in the
 * reference's order of operations (each constant rounded to float once,
 * as PyTorch does with a Python number). */

static IrExpr *mul(IrProgram *p, double k, IrExpr *x)
{
    return ir_op(p, IRE_MUL, ir_num(p, (float)k), x);
}

static void lower_update_tensor(const Model *m, IrProgram *p, IrFunc *f, const Param *par)
{
    const TrainConfig *tc = &m->train;
    const TrainPlan *tp = &m->tp;
    int64_t count = shape_size(&par->shape);
    int w = ir_view(p, f, "w", VIEW_PARAMS, par->offset, count, true);
    int g = ir_view(p, f, "g", VIEW_TRAIN, tp->param_grad + par->offset, count, false);
    int s0 = tp->state[0] < 0 ? -1
                              : ir_view(p, f, tc->optimizer != OPT_SGD ? "m" : "v", VIEW_TRAIN,
                                        tp->state[0] + par->offset, count, true);
    int s1 = tp->state[1] < 0
                 ? -1
                 : ir_view(p, f, "v", VIEW_TRAIN, tp->state[1] + par->offset, count, true);
    ir_comment(p, &f->body, par->name);
    int i = ir_var(p, f, "i");
    IrStmt *loop = ir_for(p, &f->body, i, 0, count);
    loop->parallel = count >= 4096; /* element by element */
    IrBlock *b = &loop->body;
    IrIndex at = ix_var(i, 1);
    int gs = ir_scalar(p, f, "g");
    ir_set(p, b, gs, SCALAR_DECLARE, ir_load(p, g, at));
    IrExpr *wv = ir_load(p, w, at);
    /* The learning rate changes over a run (the train block's schedule):
     * the step's factors come from hyper, which train_batch sets first. */
    int hyper = ir_view(p, f, "hyper", VIEW_TRAIN, tp->hyper, 4, false);
    if (tc->optimizer == OPT_SGD) {
        if (tc->weight_decay != 0)
            ir_set(p, b, gs, SCALAR_SET,
                   ir_op(p, IRE_ADD, ir_ref(p, gs), mul(p, tc->weight_decay, wv)));
        if (tc->momentum != 0) {
            ir_store(p, b, s0, at,
                     ir_op(p, IRE_ADD, mul(p, tc->momentum, ir_load(p, s0, at)), ir_ref(p, gs)),
                     false);
            ir_set(p, b, gs, SCALAR_SET,
                   tc->nesterov
                       ? ir_op(p, IRE_ADD, ir_ref(p, gs), mul(p, tc->momentum, ir_load(p, s0, at)))
                       : ir_load(p, s0, at));
        }
        ir_store(
            p, b, w, at,
            ir_op(p, IRE_SUB, wv, ir_op(p, IRE_MUL, ir_load(p, hyper, ix_const(0)), ir_ref(p, gs))),
            false);
        return;
    }
    /* Adam (Keras' form) and AdamW (PyTorch's): decay, the moments, the step */
    bool adamw = tc->optimizer == OPT_ADAMW;
    if (adamw && tc->weight_decay != 0)
        ir_store(p, b, w, at, ir_op(p, IRE_MUL, wv, ir_load(p, hyper, ix_const(1))), false);
    else if (tc->weight_decay != 0)
        ir_store(p, b, w, at,
                 ir_op(p, IRE_SUB, wv, ir_op(p, IRE_MUL, ir_load(p, hyper, ix_const(1)), wv)),
                 false);
    ir_store(p, b, s0, at,
             ir_op(p, IRE_ADD, mul(p, tc->beta1, ir_load(p, s0, at)),
                   mul(p, 1 - tc->beta1, ir_ref(p, gs))),
             false);
    ir_store(p, b, s1, at,
             ir_op(p, IRE_ADD, mul(p, tc->beta2, ir_load(p, s1, at)),
                   ir_op(p, IRE_MUL, mul(p, 1 - tc->beta2, ir_ref(p, gs)), ir_ref(p, gs))),
             false);
    IrExpr *root = ir_op(p, IRE_SQRT, ir_load(p, s1, at), NULL);
    if (adamw)
        root = ir_op(p, IRE_DIV, root, ir_load(p, hyper, ix_const(2)));
    IrExpr *step =
        ir_op(p, IRE_DIV, ir_op(p, IRE_MUL, ir_load(p, hyper, ix_const(0)), ir_load(p, s0, at)),
              ir_op(p, IRE_ADD, root, ir_num(p, (float)tc->epsilon)));
    ir_store(p, b, w, at, ir_op(p, IRE_SUB, ir_load(p, w, at), step), false);
}

static const char *const optimizer_titles[] = {"SGD", "Adam", "AdamW"};

static void lower_update(const Model *m, IrProgram *p)
{
    for (int k = 0; k < m->nparams; k++) {
        const Param *par = m->params[k];
        const Layer *l = m->layers[par->layer];
        if (!par->trainable)
            continue;
        /* its index among its layer's tensors names the function */
        const char *name =
            arena_printf(&p->arena, "train_%s_update%d", l->name, (int)(par - l->params));
        IrFunc *f = ir_train_func(p, name,
                                  arena_printf(&p->arena, "%s step: %s (line %d)",
                                               optimizer_titles[m->train.optimizer], par->name,
                                               l->loc.line),
                                  PHASE_UPDATE, false);
        f->layer = par->layer;
        lower_update_tensor(m, p, f, par);
    }
}

/* ---- the step ---------------------------------------------------------------
 * What eval_batch and train_batch do around the functions, as lists that
 * every backend prints (ir.h).  Dropout's masks come from a counter-based
 * generator keyed by (seed, node, step), so any backend draws the same. */

static void lower_step_lists(const Model *m, IrProgram *p)
{
    const TrainPlan *tp = &m->tp;
    int owner = tp->owner[m->nlayers];
    IrStep outputs = {.kind = STEP_OUTPUTS, .offset = owner == 0 ? -1 : tp->act[owner]};
    IrSteps *eval = &p->eval_step, *train = &p->train_step;
    ir_step(p, eval, (IrStep){.kind = STEP_CALL, .a = PHASE_FORWARD, .b = PHASE_FORWARD_EVAL});
    ir_step(p, eval, (IrStep){.kind = STEP_CALL, .a = PHASE_LOSS, .b = PHASE_LOSS});
    ir_step(p, eval, outputs);

    ir_step(p, train, (IrStep){.kind = STEP_COUNT_STEP});
    for (int node = 1; node <= m->nlayers; node++)
        if (tp->mask[node] >= 0) {
            const Layer *l = m->layers[node - 1];
            ir_step(p, train,
                    (IrStep){.kind = STEP_DROPOUT_MASK,
                             .offset = tp->mask[node],
                             .count = shape_size(&l->out),
                             .rate = l->rate,
                             .node = node,
                             .text = l->name});
        }
    ir_step(p, train, (IrStep){.kind = STEP_CALL, .a = PHASE_FORWARD, .b = PHASE_FORWARD_TRAIN});
    ir_step(p, train,
            (IrStep){.kind = STEP_COMMENT,
                     .text = "Gradients start at zero; each layer adds its part."});
    for (int node = 1; node <= m->nlayers; node++)
        if (tp->owner[node] == node && tp->grad[node] >= 0)
            ir_step(
                p, train,
                (IrStep){.kind = STEP_ZERO, .offset = tp->grad[node], .count = node_size(m, node)});
    ir_step(p, train,
            (IrStep){
                .kind = STEP_ZERO_PARAM_GRADS, .offset = tp->param_grad, .count = m->param_floats});
    ir_step(p, train, (IrStep){.kind = STEP_CALL, .a = PHASE_LOSS, .b = PHASE_LOSS});
    ir_step(p, train, outputs);
    ir_step(p, train, (IrStep){.kind = STEP_CALL, .a = PHASE_BACKWARD, .b = PHASE_BACKWARD});
    const TrainConfig *tc = &m->train;
    ir_step(p, train,
            (IrStep){.kind = STEP_HYPER,
                     .offset = tp->hyper,
                     .optimizer = tc->optimizer,
                     .beta1 = tc->beta1,
                     .beta2 = tc->beta2,
                     .weight_decay = tc->weight_decay});
    ir_step(p, train, (IrStep){.kind = STEP_CALL, .a = PHASE_UPDATE, .b = PHASE_UPDATE});
}

/* ---- the driver ----------------------------------------------------------- */

/* flatten, linear, dropout(0): they share their input's storage. */
static bool is_identity(const Model *m, int index)
{
    return m->tp.owner[index + 1] != index + 1;
}

/* Whether functions from `from` on include an evaluation forward pass. */
static bool has_eval_forward(const IrProgram *p, int from)
{
    for (int k = from; k < p->nfuncs; k++)
        if (p->funcs[k]->phase == PHASE_FORWARD_EVAL)
            return true;
    return false;
}

void lower_training(const Model *m, IrProgram *p)
{
    int input_from = p->nfuncs;
    lower_qat_forward(p, m, 0);
    ir_tag_layer(p, input_from, 0); /* the input's fake quantization: the first layer's time */
    for (int i = 0; i < m->nlayers; i++) {
        if (is_identity(m, i))
            continue;
        const Layer *l = m->layers[i];
        LowerCtx base = {.p = p, .m = m, .l = l, .index = i};
        int from = p->nfuncs;
        lower_qat_kernel(p, m, i);
        if (l->kind->lower_train)
            l->kind->lower_train(&base);
        else
            lower_train_forward(&base, PHASE_FORWARD);
        /* quantize = int8 made the shared forward pass training's */
        if (m->qat.observer && !has_eval_forward(p, from))
            lower_train_forward(&base, PHASE_FORWARD_EVAL);
        lower_qat_forward(p, m, i + 1);
        ir_tag_layer(p, from, i);
    }
    if (m->nlayers == 0)
        return;
    lower_loss(m, p);
    bool pre;
    int logits = train_logits_node(m, &pre);
    for (int i = m->nlayers - 1; i >= 0; i--) {
        const Layer *l = m->layers[i];
        int node = i + 1;
        if (is_identity(m, i) || !train_needs_grad(m, node))
            continue;
        bool any_input = false;
        for (int k = 0; k < l->nsrcs; k++)
            any_input |= train_needs_grad(m, l->srcs[k]);
        if (!any_input && layer_param_count(l, true) == 0)
            continue;
        bool final = node == m->nlayers;
        LowerCtx base = {.p = p, .m = m, .l = l, .index = i, .logits_grad = final && logits >= 0};
        int from = p->nfuncs;
        lower_qat_backward(p, m, node);
        if (m->tp.pre[node] >= 0 && !(final && pre))
            lower_pre_grad(&base);
        l->kind->lower_backward(&base);
        ir_tag_layer(p, from, i);
    }
    lower_update(m, p);
    lower_step_lists(m, p);
}
