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

#define ACTIVATION_KIND(name) \
    {name, FAMILY_ACTIVATION, 0, false, no_names, no_names, NULL, activation_infer, NULL}

const LayerKind activation_kinds[] = {
    ACTIVATION_KIND("relu"),
    ACTIVATION_KIND("sigmoid"),
    ACTIVATION_KIND("tanh"),
    ACTIVATION_KIND("softmax"),
    ACTIVATION_KIND("linear"),
    {"leaky_relu", FAMILY_ACTIVATION, 0, false, alpha_positional, no_names, leaky_relu_configure,
     activation_infer, NULL},
    {0},
};
