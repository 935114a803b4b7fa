/* norm.c - batchnorm and dropout: layers whose training behaviour differs
 * from their inference behaviour.
 *
 * batchnorm works per channel (the last axis).  In training it normalises
 * with the batch's mean and biased variance and updates
 * moving = momentum*moving + (1-momentum)*batch_stat; at inference, and
 * when frozen (trainable=false, as in Keras 2), it uses the moving
 * statistics.  dropout is inverted dropout: identity at inference.
 */
#include "layers.h"

static const char *const batchnorm_named[] = {"momentum", "epsilon", "trainable", NULL};
static const char *const dropout_positional[] = {"rate", NULL};
static const char *const batchnorm_params[] = {"gamma", "beta", "mean", "var", NULL};

static bool batchnorm_configure(Layer *l, ArgReader *r)
{
    static const double zero = 0, one = 1;
    l->momentum = 0.99;
    l->epsilon = 0.001;
    l->trainable = true;
    return args_number(r, "momentum", false, &l->momentum, &zero, &one, false, false) &&
           args_number(r, "epsilon", false, &l->epsilon, &zero, NULL, true, false) &&
           args_boolean(r, "trainable", &l->trainable);
}

static bool batchnorm_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    l->out = ins[0];
    Shape c = {.rank = 1, .dim = {ins[0].dim[ins[0].rank - 1]}};
    layer_add_param(l, ctx->arena, "gamma", &c, l->trainable, INIT_ONES, NULL);
    layer_add_param(l, ctx->arena, "beta", &c, l->trainable, INIT_ZEROS, NULL);
    layer_add_param(l, ctx->arena, "moving_mean", &c, false, INIT_ZEROS, NULL);
    layer_add_param(l, ctx->arena, "moving_variance", &c, false, INIT_ONES, NULL);
    return true;
}

static bool dropout_configure(Layer *l, ArgReader *r)
{
    static const double zero = 0, one = 1;
    return args_number(r, "rate", true, &l->rate, &zero, &one, false, true);
}

/* dropout(0) is the identity in training too. */
static bool dropout_trains_as_identity(const Layer *l)
{
    return l->rate == 0;
}

/* ---- forward lowering (inference) -------------------------------------------
 * batchnorm with the moving statistics: per channel a scale
 * gamma / sqrt(var + epsilon), computed once per call, then
 * y = (x - mean) * scale + beta with the channel innermost. */
static void batchnorm_lower(LowerCtx *c)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Shape *in = c->in_shape[0];
    int64_t ch = in->dim[in->rank - 1], positions = shape_size(in) / ch;
    int gamma = c->params[0], beta = c->params[1], mean = c->params[2], var = c->params[3];
    int scale = lower_local(c, "scale", ch);
    int c1 = ir_var(p, f, "c");
    IrStmt *s1 = ir_for(p, &f->body, c1, 0, ch);
    ir_store(p, &s1->body, scale, ix_var(c1, 1),
             ir_op(p, IRE_DIV, ir_load(p, gamma, ix_var(c1, 1)),
                   ir_op(p, IRE_SQRT,
                         ir_op(p, IRE_ADD, ir_load(p, var, ix_var(c1, 1)),
                               ir_num(p, (float)c->l->epsilon)),
                         NULL)),
             false);
    int pos = ir_var(p, f, "pos");
    IrStmt *outer = ir_for(p, &f->body, pos, 0, positions);
    int c2 = ir_var(p, f, "c");
    IrStmt *inner = ir_for(p, &outer->body, c2, 0, ch);
    IrIndex at = ix_add_var(ix_var(pos, ch), c2, 1);
    IrExpr *centred = ir_op(p, IRE_SUB, ir_load(p, c->in[0], at), ir_load(p, mean, ix_var(c2, 1)));
    ir_store(p, &inner->body, c->out, at,
             ir_op(p, IRE_ADD, ir_op(p, IRE_MUL, centred, ir_load(p, scale, ix_var(c2, 1))),
                   ir_load(p, beta, ix_var(c2, 1))),
             false);
}

/* In a conv or dense layer's epilogue (inference): the scale per channel
 * once at the top of the producer's function, then the same formula. */
enum { EPI_BETA, EPI_MEAN, EPI_SCALE };

static void batchnorm_epilogue_setup(LowerCtx *c, int e, const Layer *bn)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int64_t ch = bn->out.dim[bn->out.rank - 1];
    int views[4];
    for (int k = 0; k < 4; k++)
        views[k] = ir_view(p, f, arena_printf(&p->arena, "%s%d", batchnorm_params[k], e),
                           VIEW_PARAMS, bn->params[k].offset, ch, false);
    c->epi_views[e][EPI_BETA] = views[1];
    c->epi_views[e][EPI_MEAN] = views[2];
    c->epi_views[e][EPI_SCALE] = lower_local(c, arena_printf(&p->arena, "scale%d", e), ch);
    int i = ir_var(p, f, "c");
    IrStmt *loop = ir_for(p, &f->body, i, 0, ch);
    ir_store(p, &loop->body, c->epi_views[e][EPI_SCALE], ix_var(i, 1),
             ir_op(p, IRE_DIV, ir_load(p, views[0], ix_var(i, 1)),
                   ir_op(p, IRE_SQRT,
                         ir_op(p, IRE_ADD, ir_load(p, views[3], ix_var(i, 1)),
                               ir_num(p, (float)bn->epsilon)),
                         NULL)),
             false);
}

static IrExpr *batchnorm_epilogue(LowerCtx *c, int e, const Layer *bn, IrExpr *v, IrIndex channel)
{
    (void)bn;
    IrProgram *p = c->p;
    const int *views = c->epi_views[e];
    return ir_op(p, IRE_ADD,
                 ir_op(p, IRE_MUL, ir_op(p, IRE_SUB, v, ir_load(p, views[EPI_MEAN], channel)),
                       ir_load(p, views[EPI_SCALE], channel)),
                 ir_load(p, views[EPI_BETA], channel));
}

/* int8 (docs/int8.md): folded into the map before it, the identity; else
 * its own per-channel map, (x - zero) * k + b requantized. */
static IrExpr *batchnorm_epilogue_q(LowerCtx *c, int e, const Layer *bn, IrExpr *v, IrIndex channel)
{
    IrProgram *p = c->p;
    int node = lower_q_node(c, e, bn);
    const QuantNode *out = &c->q->plan->nodes[node];
    if (out->kind == QNODE_FOLDED)
        return v;
    const int *views = c->epi_views[e];
    IrExpr *centred = ir_op(p, IRE_SUB, v, ir_int(p, c->q->plan->nodes[bn->srcs[0]].zero));
    IrExpr *sum = ir_op(p, IRE_ADD, ir_op(p, IRE_MUL, centred, ir_load(p, views[0], channel)),
                        ir_load(p, views[1], channel));
    IrExpr *r = ir_requant(p, sum, ir_load(p, views[2], channel), ir_load(p, views[3], channel));
    return lower_q_clamp(c, ir_op(p, IRE_ADD, r, ir_int(p, out->zero)), -128);
}

/* ---- training ---------------------------------------------------------------
 * batchnorm in training mode needs the whole batch: per-sample passes add
 * to per-channel sums (stats: mean, std, sum1, sum2), and small passes
 * between them turn the sums into the statistics.  The moving statistics
 * are updated as the reference does, in the forward pass. */

enum { STAT_MEAN, STAT_STD, STAT_SUM1, STAT_SUM2, STAT_COUNT };

typedef struct {
    LowerCtx c;
    int64_t ch, positions;
} BnPass;

static BnPass bn_pass(const LowerCtx *base, IrPhase phase, bool per_sample, const char *what)
{
    BnPass b = {.c = lower_train_func(base, phase, per_sample, what)};
    const Shape *in = b.c.in_shape[0];
    b.ch = in->dim[in->rank - 1];
    b.positions = shape_size(in) / b.ch;
    return b;
}

static IrIndex stat(int which, int64_t ch, int var)
{
    return ix_add_var(ix_const(which * ch), var, 1);
}

/* for c: stats[which][c] = value(c) */
static void bn_channel_loop(BnPass *b, IrBlock **body, int *c)
{
    *c = ir_var(b->c.p, b->c.f, "c");
    *body = &ir_for(b->c.p, &b->c.f->body, *c, 0, b->ch)->body;
}

/* for pos, c: the loop body and the element's index */
static IrBlock *bn_element_loop(BnPass *b, int *c, IrIndex *at)
{
    int pos = ir_var(b->c.p, b->c.f, "pos");
    IrStmt *outer = ir_for(b->c.p, &b->c.f->body, pos, 0, b->positions);
    *c = ir_var(b->c.p, b->c.f, "c");
    IrStmt *inner = ir_for(b->c.p, &outer->body, *c, 0, b->ch);
    *at = ix_add_var(ix_var(pos, b->ch), *c, 1);
    return &inner->body;
}

static IrExpr *batch_count(IrProgram *p, int64_t positions)
{
    return ir_op(p, IRE_MUL, ir_op(p, IRE_BATCH, NULL, NULL), ir_num(p, (float)positions));
}

static void bn_zero_sums(const LowerCtx *base, IrPhase phase, const char *what)
{
    BnPass b = bn_pass(base, phase, false, what);
    IrBlock *body;
    int c;
    bn_channel_loop(&b, &body, &c);
    ir_store(b.c.p, body, b.c.stats, stat(STAT_SUM1, b.ch, c), ir_num(b.c.p, 0.0f), false);
    ir_store(b.c.p, body, b.c.stats, stat(STAT_SUM2, b.ch, c), ir_num(b.c.p, 0.0f), false);
}

static void batchnorm_train(const LowerCtx *base)
{
    if (!base->l->trainable) { /* frozen: the moving statistics, as at inference */
        lower_train_forward(base, PHASE_FORWARD);
        return;
    }
    const Layer *l = base->l;
    int c;
    IrIndex at;
    IrBlock *body;
    bn_zero_sums(base, PHASE_FORWARD_TRAIN, "zero");

    BnPass sum = bn_pass(base, PHASE_FORWARD_TRAIN, true, "sum");
    IrProgram *p = sum.c.p;
    body = bn_element_loop(&sum, &c, &at);
    ir_store(p, body, sum.c.stats, stat(STAT_SUM1, sum.ch, c), ir_load(p, sum.c.in[0], at), true);

    BnPass mean = bn_pass(base, PHASE_FORWARD_TRAIN, false, "mean");
    bn_channel_loop(&mean, &body, &c);
    ir_store(p, body, mean.c.stats, stat(STAT_MEAN, mean.ch, c),
             ir_op(p, IRE_DIV, ir_load(p, mean.c.stats, stat(STAT_SUM1, mean.ch, c)),
                   batch_count(p, mean.positions)),
             false);
    ir_store(p, body, mean.c.stats, stat(STAT_SUM1, mean.ch, c), ir_num(p, 0.0f), false);

    BnPass sq = bn_pass(base, PHASE_FORWARD_TRAIN, true, "squares");
    body = bn_element_loop(&sq, &c, &at);
    int d = ir_scalar(p, sq.c.f, "d");
    ir_set(p, body, d, SCALAR_DECLARE,
           ir_op(p, IRE_SUB, ir_load(p, sq.c.in[0], at),
                 ir_load(p, sq.c.stats, stat(STAT_MEAN, sq.ch, c))));
    ir_store(p, body, sq.c.stats, stat(STAT_SUM1, sq.ch, c), ir_ref(p, d), true);
    ir_store(p, body, sq.c.stats, stat(STAT_SUM2, sq.ch, c),
             ir_op(p, IRE_MUL, ir_ref(p, d), ir_ref(p, d)), true);

    /* The corrected two-pass statistics: the mean plus the mean of the
     * deviations (exact for a constant channel, as PyTorch's is), the
     * biased variance; std, and the moving statistics (params 2, 3). */
    BnPass var = bn_pass(base, PHASE_FORWARD_TRAIN, false, "statistics");
    int mm = ir_view(p, var.c.f, "moving_mean", VIEW_PARAMS, l->params[2].offset, var.ch, true);
    int mv = ir_view(p, var.c.f, "moving_var", VIEW_PARAMS, l->params[3].offset, var.ch, true);
    bn_channel_loop(&var, &body, &c);
    int corr = ir_scalar(p, var.c.f, "corr");
    ir_set(p, body, corr, SCALAR_DECLARE,
           ir_op(p, IRE_DIV, ir_load(p, var.c.stats, stat(STAT_SUM1, var.ch, c)),
                 batch_count(p, var.positions)));
    ir_store(
        p, body, var.c.stats, stat(STAT_MEAN, var.ch, c),
        ir_op(p, IRE_ADD, ir_load(p, var.c.stats, stat(STAT_MEAN, var.ch, c)), ir_ref(p, corr)),
        false);
    int v = ir_scalar(p, var.c.f, "var");
    ir_set(p, body, v, SCALAR_DECLARE,
           ir_op(p, IRE_MAX,
                 ir_op(p, IRE_SUB,
                       ir_op(p, IRE_DIV, ir_load(p, var.c.stats, stat(STAT_SUM2, var.ch, c)),
                             batch_count(p, var.positions)),
                       ir_op(p, IRE_MUL, ir_ref(p, corr), ir_ref(p, corr))),
                 ir_num(p, 0.0f)));
    ir_store(
        p, body, var.c.stats, stat(STAT_STD, var.ch, c),
        ir_op(p, IRE_SQRT, ir_op(p, IRE_ADD, ir_ref(p, v), ir_num(p, (float)l->epsilon)), NULL),
        false);
    float m = (float)l->momentum, rest = (float)(1 - l->momentum);
    ir_store(p, body, mm, ix_var(c, 1),
             ir_op(p, IRE_ADD, ir_op(p, IRE_MUL, ir_num(p, m), ir_load(p, mm, ix_var(c, 1))),
                   ir_op(p, IRE_MUL, ir_num(p, rest),
                         ir_load(p, var.c.stats, stat(STAT_MEAN, var.ch, c)))),
             false);
    ir_store(p, body, mv, ix_var(c, 1),
             ir_op(p, IRE_ADD, ir_op(p, IRE_MUL, ir_num(p, m), ir_load(p, mv, ix_var(c, 1))),
                   ir_op(p, IRE_MUL, ir_num(p, rest), ir_ref(p, v))),
             false);

    /* y = gamma * (x - mean) / std + beta */
    BnPass out = bn_pass(base, PHASE_FORWARD_TRAIN, true, "normalise");
    body = bn_element_loop(&out, &c, &at);
    IrExpr *centred = ir_op(p, IRE_SUB, ir_load(p, out.c.in[0], at),
                            ir_load(p, out.c.stats, stat(STAT_MEAN, out.ch, c)));
    ir_store(p, body, out.c.out, at,
             ir_op(p, IRE_ADD,
                   ir_op(p, IRE_DIV,
                         ir_op(p, IRE_MUL, ir_load(p, out.c.params[0], ix_var(c, 1)), centred),
                         ir_load(p, out.c.stats, stat(STAT_STD, out.ch, c))),
                   ir_load(p, out.c.params[1], ix_var(c, 1))),
             false);

    lower_train_forward(base, PHASE_FORWARD_EVAL);
}

/* float xhat = (x - mean) / std, declared in body. */
static int bn_xhat(BnPass *b, IrBlock *body, int c, IrIndex at)
{
    IrProgram *p = b->c.p;
    int xhat = ir_scalar(p, b->c.f, "xhat");
    ir_set(p, body, xhat, SCALAR_DECLARE,
           ir_op(p, IRE_DIV,
                 ir_op(p, IRE_SUB, ir_load(p, b->c.in[0], at),
                       ir_load(p, b->c.stats, stat(STAT_MEAN, b->ch, c))),
                 ir_load(p, b->c.stats, stat(STAT_STD, b->ch, c))));
    return xhat;
}

/* With xhat = (x - mean) / std and means over the batch and positions:
 * dbeta = sum g, dgamma = sum g*xhat,
 * dx = gamma/std * (g - mean(g) - xhat * mean(g*xhat)).
 * Frozen: dx = g * gamma / sqrt(moving_var + epsilon). */
static void batchnorm_backward(const LowerCtx *base)
{
    const Layer *l = base->l;
    int c;
    IrIndex at;
    IrBlock *body;
    if (!l->trainable) {
        BnPass b = bn_pass(base, PHASE_BACKWARD, true, "backward");
        IrProgram *p = b.c.p;
        body = bn_element_loop(&b, &c, &at);
        IrExpr *scale = ir_op(p, IRE_DIV, ir_load(p, b.c.params[0], ix_var(c, 1)),
                              ir_op(p, IRE_SQRT,
                                    ir_op(p, IRE_ADD, ir_load(p, b.c.params[3], ix_var(c, 1)),
                                          ir_num(p, (float)l->epsilon)),
                                    NULL));
        ir_store(p, body, b.c.din[0], at, ir_op(p, IRE_MUL, ir_load(p, b.c.dout, at), scale), true);
        return;
    }
    bn_zero_sums(base, PHASE_BACKWARD, "backward_zero");

    BnPass sums = bn_pass(base, PHASE_BACKWARD, true, "backward_sums");
    IrProgram *p = sums.c.p;
    body = bn_element_loop(&sums, &c, &at);
    int xhat = bn_xhat(&sums, body, c, at);
    ir_store(p, body, sums.c.stats, stat(STAT_SUM1, sums.ch, c), ir_load(p, sums.c.dout, at), true);
    ir_store(p, body, sums.c.stats, stat(STAT_SUM2, sums.ch, c),
             ir_op(p, IRE_MUL, ir_load(p, sums.c.dout, at), ir_ref(p, xhat)), true);

    BnPass grads = bn_pass(base, PHASE_BACKWARD, false, "backward_params");
    bn_channel_loop(&grads, &body, &c);
    ir_store(p, body, grads.c.dparams[0], ix_var(c, 1),
             ir_load(p, grads.c.stats, stat(STAT_SUM2, grads.ch, c)), true);
    ir_store(p, body, grads.c.dparams[1], ix_var(c, 1),
             ir_load(p, grads.c.stats, stat(STAT_SUM1, grads.ch, c)), true);

    if (!train_needs_grad(base->m, l->srcs[0]))
        return;
    BnPass dx = bn_pass(base, PHASE_BACKWARD, true, "backward_input");
    body = bn_element_loop(&dx, &c, &at);
    int xh = bn_xhat(&dx, body, c, at);
    IrExpr *count = batch_count(p, dx.positions);
    IrExpr *inner =
        ir_op(p, IRE_SUB,
              ir_op(p, IRE_SUB, ir_load(p, dx.c.dout, at),
                    ir_op(p, IRE_DIV, ir_load(p, dx.c.stats, stat(STAT_SUM1, dx.ch, c)), count)),
              ir_op(p, IRE_MUL, ir_ref(p, xh),
                    ir_op(p, IRE_DIV, ir_load(p, dx.c.stats, stat(STAT_SUM2, dx.ch, c)), count)));
    IrExpr *scale = ir_op(p, IRE_DIV, ir_load(p, dx.c.params[0], ix_var(c, 1)),
                          ir_load(p, dx.c.stats, stat(STAT_STD, dx.ch, c)));
    ir_store(p, body, dx.c.din[0], at, ir_op(p, IRE_MUL, scale, inner), true);
}

/* Inverted dropout: the runtime fills the mask (0 or 1/(1-rate)) from a
 * counter-based generator before each step; y = x * mask, dx = g * mask. */
static void dropout_train(const LowerCtx *base)
{
    LowerCtx c = lower_train_func(base, PHASE_FORWARD_TRAIN, true, "forward");
    int64_t n = shape_size(&c.l->out);
    int i = ir_var(c.p, c.f, "i");
    IrStmt *loop = ir_for(c.p, &c.f->body, i, 0, n);
    ir_store(c.p, &loop->body, c.out, ix_var(i, 1),
             ir_op(c.p, IRE_MUL, ir_load(c.p, c.in[0], ix_var(i, 1)),
                   ir_load(c.p, c.mask, ix_var(i, 1))),
             false);
    lower_train_forward(base, PHASE_FORWARD_EVAL);
}

static void dropout_backward(const LowerCtx *base)
{
    LowerCtx c = lower_train_func(base, PHASE_BACKWARD, true, "backward");
    int64_t n = shape_size(&c.l->out);
    int i = ir_var(c.p, c.f, "i");
    IrStmt *loop = ir_for(c.p, &c.f->body, i, 0, n);
    ir_store(
        c.p, &loop->body, c.din[0], ix_var(i, 1),
        ir_op(c.p, IRE_MUL, ir_load(c.p, c.dout, ix_var(i, 1)), ir_load(c.p, c.mask, ix_var(i, 1))),
        true);
}

const LayerKind norm_kinds[] = {
    {.name = "batchnorm",
     .positional = layer_no_names,
     .named = batchnorm_named,
     .param_names = batchnorm_params,
     .channel_scratch = true,
     .train_channel_stats = STAT_COUNT,
     .epilogue_setup = batchnorm_epilogue_setup,
     .epilogue = batchnorm_epilogue,
     .quant = QUANT_FOLDS,
     .configure = batchnorm_configure,
     .infer = batchnorm_infer,
     .lower = batchnorm_lower,
     .lower_q = lower_q_elementwise,
     .epilogue_q = batchnorm_epilogue_q,
     .lower_train = batchnorm_train,
     .lower_backward = batchnorm_backward},
    {.name = "dropout",
     .positional = dropout_positional,
     .named = layer_no_names,
     .aliases_input = true,
     .trains_as_identity = dropout_trains_as_identity,
     .train_mask = true,
     .quant = QUANT_SAME_SCALE,
     .configure = dropout_configure,
     .infer = layer_same_shape_infer,
     .lower = lower_copy,
     .lower_train = dropout_train,
     .lower_backward = dropout_backward},
    {0},
};
