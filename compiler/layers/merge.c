/* merge.c - add and concat: the current tensor combined with earlier,
 * labelled outputs.  add sums left to right (current + first label + ...);
 * concat joins the current tensor, then the labels in the order written,
 * along the channel (last) axis. */
#include "layers.h"

static const char *const no_names[] = {NULL};

static bool merge_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    const Shape *first = &ins[0];
    bool concat = l->kind->family == FAMILY_CONCAT;
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

const LayerKind merge_kinds[] = {
    {"add", FAMILY_ADD, 0, false, no_names, no_names, NULL, merge_infer, NULL},
    {"concat", FAMILY_CONCAT, 0, false, no_names, no_names, NULL, merge_infer, NULL},
    {0},
};
