/* activation.c - relu, sigmoid, tanh, softmax, linear and leaky_relu as
 * layers of their own (the same functions serve as activation= of conv
 * and dense layers).  softmax runs over the channel (last) axis. */
#include "layers.h"

static const char *const alpha_positional[] = {"alpha", NULL};
static const char *const no_names[] = {NULL};

static bool leaky_relu_configure(Layer *l, ArgReader *r)
{
    l->alpha = 0.01;
    return args_number(r, "alpha", false, &l->alpha, NULL, NULL, false, false);
}

static bool activation_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    (void)ctx;
    l->out = ins[0];
    return true;
}

/* Element by element; softmax row by row over the last axis. */
static void activation_lower(LowerCtx *c)
{
    const Layer *l = c->l;
    int64_t n = shape_size(&l->out);
    int i = ir_var(c->p, c->f, "i");
    IrStmt *loop = ir_for(c->p, &c->f->body, i, 0, n);
    ir_store(c->p, &loop->body, c->out, ix_var(i, 1),
             lower_activation(c, l->activation, (float)l->alpha,
                              ir_load(c->p, c->in[0], ix_var(i, 1))), false);
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

#define ACTIVATION_KIND(name) \
    {name, FAMILY_ACTIVATION, 0, false, no_names, no_names, NULL, activation_infer, NULL, \
     activation_lower, NULL, activation_backward}

const LayerKind activation_kinds[] = {
    ACTIVATION_KIND("relu"),
    ACTIVATION_KIND("sigmoid"),
    ACTIVATION_KIND("tanh"),
    ACTIVATION_KIND("softmax"),
    ACTIVATION_KIND("linear"),
    {"leaky_relu", FAMILY_ACTIVATION, 0, false, alpha_positional, no_names, leaky_relu_configure,
     activation_infer, NULL, activation_lower, NULL, activation_backward},
    {0},
};
