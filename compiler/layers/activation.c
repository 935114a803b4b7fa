/* activation.c - relu, sigmoid, tanh, softmax, linear and leaky_relu as
 * layers of their own (the same functions serve as activation= of conv
 * and dense layers).  softmax runs over the channel (last) axis. */
#include "layers.h"

static const char *const alpha_positional[] = {"alpha", NULL};

static bool leaky_relu_configure(Layer *l, ArgReader *r)
{
    l->alpha = 0.01;
    return args_number(r, "alpha", false, &l->alpha, NULL, NULL, false, false);
}

/* linear is the identity in training: it shares its input's values and
 * gradient. */
static bool activation_trains_as_identity(const Layer *l)
{
    return l->activation == ACT_LINEAR;
}

/* In a conv or dense layer's epilogue: the function, element by element. */
static IrExpr *activation_epilogue(LowerCtx *c, int e, const Layer *l, IrExpr *v, IrIndex channel)
{
    (void)e;
    (void)channel;
    return lower_activation(c, l->activation, (float)l->alpha, v);
}

/* int8 (docs/int8.md): relu a clamp at the zero point (real 0); linear
 * the identity; leaky_relu TFLite's, the value less its zero point
 * scaled by scale_in / scale_out where it is not negative, by alpha
 * times that where it is.  The float ones are the float head's. */
static IrExpr *activation_epilogue_q(LowerCtx *c, int e, const Layer *l, IrExpr *v, IrIndex channel)
{
    (void)channel;
    IrProgram *p = c->p;
    const QuantNode *in = &c->q->plan->nodes[l->srcs[0]];
    if (l->activation == ACT_RELU)
        return ir_op(p, IRE_MAX, v, ir_int(p, in->zero));
    if (l->activation != ACT_LEAKY_RELU)
        return v;
    const QuantNode *out = &c->q->plan->nodes[lower_q_node(c, e, l)];
    IrExpr *centred = ir_op(p, IRE_SUB, v, ir_int(p, in->zero));
    QuantMultiplier pos = quant_multiplier(in->scale / out->scale);
    QuantMultiplier neg = quant_multiplier(l->alpha * in->scale / out->scale);
    IrExpr *y = ir_select_pos(
        p, centred, ir_requant(p, centred, ir_int(p, pos.multiplier), ir_int(p, pos.shift)),
        ir_requant(p, centred, ir_int(p, neg.multiplier), ir_int(p, neg.shift)));
    return lower_q_clamp(c, ir_op(p, IRE_ADD, y, ir_int(p, out->zero)), -128);
}

/* Element by element; softmax row by row over the last axis. */
static void activation_lower(LowerCtx *c)
{
    const Layer *l = c->l;
    int64_t n = shape_size(&l->out);
    int i = ir_var(c->p, c->f, "i");
    IrStmt *loop = ir_for(c->p, &c->f->body, i, 0, n);
    ir_store(
        c->p, &loop->body, c->out, ix_var(i, 1),
        lower_activation(c, l->activation, (float)l->alpha, ir_load(c->p, c->in[0], ix_var(i, 1))),
        false);
    lower_output_softmax(c);
}

/* dx += dy * f'(x); softmax row by row (in place in dy, then added);
 * when the loss gave the gradient of the logits already (this is the
 * model's softmax or sigmoid output), dx += dy. */
static void activation_backward(const LowerCtx *base)
{
    LowerCtx c = lower_train_func(base, PHASE_BACKWARD, true, "backward");
    IrProgram *p = c.p;
    const Layer *l = c.l;
    int64_t n = shape_size(&l->out), channels = l->out.dim[l->out.rank - 1];
    if (l->activation == ACT_SOFTMAX && !c.logits_grad)
        lower_softmax_grad(&c, &c.f->body, c.dout, c.out, n / channels, channels);
    int i = ir_var(p, c.f, "i");
    IrStmt *loop = ir_for(p, &c.f->body, i, 0, n);
    IrIndex at = ix_var(i, 1);
    IrExpr *g = ir_load(p, c.dout, at);
    if (!c.logits_grad)
        g = lower_activation_grad(&c, l->activation, (float)l->alpha, g, ir_load(p, c.in[0], at),
                                  ir_load(p, c.out, at));
    ir_store(p, &loop->body, c.din[0], at, g, true);
}

/* softmax works on a whole row, so it fuses into no epilogue. */
#define ACTIVATION_KIND(kind_name, kind_activation, kind_epilogue, kind_positional, \
                        kind_configure, kind_quant) \
    { \
        .name = kind_name, .positional = kind_positional, .named = layer_no_names, \
        .activation = kind_activation, .trains_as_identity = activation_trains_as_identity, \
        .epilogue = kind_epilogue, .quant = kind_quant, .lower_q = lower_q_elementwise, \
        .epilogue_q = activation_epilogue_q, .configure = kind_configure, \
        .infer = layer_same_shape_infer, .lower = activation_lower, \
        .lower_backward = activation_backward \
    }

const LayerKind activation_kinds[] = {
    ACTIVATION_KIND("relu", ACT_RELU, activation_epilogue, layer_no_names, NULL, QUANT_CLAMP),
    ACTIVATION_KIND("sigmoid", ACT_SIGMOID, activation_epilogue, layer_no_names, NULL,
                    QUANT_FLOAT_HEAD),
    ACTIVATION_KIND("tanh", ACT_TANH, activation_epilogue, layer_no_names, NULL, QUANT_FLOAT_HEAD),
    ACTIVATION_KIND("softmax", ACT_SOFTMAX, NULL, layer_no_names, NULL, QUANT_FLOAT_HEAD),
    ACTIVATION_KIND("linear", ACT_LINEAR, activation_epilogue, layer_no_names, NULL, QUANT_CLAMP),
    ACTIVATION_KIND("leaky_relu", ACT_LEAKY_RELU, activation_epilogue, alpha_positional,
                    leaky_relu_configure, QUANT_RESCALE),
    {0},
};
