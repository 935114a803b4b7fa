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

#define ACTIVATION_KIND(name) \
    {name, FAMILY_ACTIVATION, 0, false, no_names, no_names, NULL, activation_infer, NULL, \
     activation_lower}

const LayerKind activation_kinds[] = {
    ACTIVATION_KIND("relu"),
    ACTIVATION_KIND("sigmoid"),
    ACTIVATION_KIND("tanh"),
    ACTIVATION_KIND("softmax"),
    ACTIVATION_KIND("linear"),
    {"leaky_relu", FAMILY_ACTIVATION, 0, false, alpha_positional, no_names, leaky_relu_configure,
     activation_infer, NULL, activation_lower},
    {0},
};
