/* args.c - constant expressions and the reading of argument values. */
#include "args.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Integers beyond 2^53 are no longer exact in double, where constant
 * expressions are evaluated; the contract makes such literals errors. */
#define ARGS_MAX_INTEGER 9007199254740992.0
/* Constant expressions are evaluated recursively: a bound on their depth
 * bounds the stack (1+1+...+1 with 300,000 terms overflowed it). */
#define ARGS_MAX_DEPTH 10000

bool consts_get(const Consts *c, const char *name, double *value)
{
    intptr_t slot;
    if (!strmap_get(&c->map, name, &slot))
        return false;
    *value = *(const double *)slot;
    return true;
}

/* expr = NUM | NAME | -expr | expr op expr; anything else is not a number. */
bool args_evaluate(Diag *diag, Ast *ast, const Consts *consts, const Expr *e, double *value)
{
    double a, b;
    if (e->depth > ARGS_MAX_DEPTH) { /* the root is the deepest: checked before any recursion */
        diag_error(diag, e->loc, "the expression is %d operations deep; the limit is %d", e->depth,
                   ARGS_MAX_DEPTH);
        return false;
    }
    switch (e->kind) {
    case EXPR_NUM:
        if (!isfinite(e->num)) {
            diag_error(diag, e->loc, "the number is out of range");
            return false;
        }
        *value = e->num;
        return true;
    case EXPR_NAME:
        if (consts_get(consts, e->name, value))
            return true;
        diag_error(diag, e->loc, "unknown constant '%s'", e->name);
        return false;
    case EXPR_NEG:
        if (!args_evaluate(diag, ast, consts, e->lhs, &a))
            return false;
        *value = -a;
        return true;
    case EXPR_BINOP:
        if (!args_evaluate(diag, ast, consts, e->lhs, &a) ||
            !args_evaluate(diag, ast, consts, e->rhs, &b))
            return false;
        if (e->op == '/' && b == 0) {
            diag_error(diag, e->op_loc, "division by zero");
            return false;
        }
        switch (e->op) {
        case '+': *value = a + b; break;
        case '-': *value = a - b; break;
        case '*': *value = a * b; break;
        default: *value = a / b; break;
        }
        if (!isfinite(*value)) {
            diag_error(diag, e->loc, "the value is out of range");
            return false;
        }
        return true;
    default:
        diag_error(diag, e->loc, "expected a number, found %s", ast_describe(ast, e));
        return false;
    }
}

static bool in_list(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

static int list_length(const char *const *list)
{
    int n = 0;
    while (list && list[n])
        n++;
    return n;
}

bool args_bind(ArgReader *r, const char *what, const ArgList *args, const char *const *positional,
               const char *const *named)
{
    int index = 0, npositional = list_length(positional);
    bool named_seen = false;
    r->nbound = 0;
    for (int i = 0; i < args->count; i++) {
        const Arg *arg = &args->items[i];
        const char *name;
        if (!arg->name) {
            if (named_seen) {
                diag_error(r->diag, arg->loc, "a positional argument cannot follow a named one");
                return false;
            }
            if (index >= npositional) {
                if (npositional == 0)
                    diag_error(r->diag, arg->loc, "%s takes no positional arguments", what);
                else
                    diag_error(r->diag, arg->loc, "%s takes at most %d positional argument%s", what,
                               npositional, npositional == 1 ? "" : "s");
                return false;
            }
            name = positional[index++];
        } else {
            named_seen = true;
            name = arg->name;
            if (!in_list(positional, name) && !in_list(named, name)) {
                diag_error(r->diag, arg->loc, "%s has no argument '%s'", what, name);
                return false;
            }
        }
        if (args_given(r, name)) {
            diag_error(r->diag, arg->loc, "argument '%s' is given twice", name);
            return false;
        }
        if (r->nbound == ARGS_MAX)
            unreachable(); /* every table has fewer names than this */
        r->bound[r->nbound++] = (BoundArg){name, arg};
    }
    return true;
}

bool args_given(const ArgReader *r, const char *name)
{
    return args_node(r, name) != NULL;
}

const Expr *args_node(const ArgReader *r, const char *name)
{
    for (int i = 0; i < r->nbound; i++)
        if (strcmp(r->bound[i].name, name) == 0)
            return r->bound[i].arg->value;
    return NULL;
}

/* The node of an argument; a missing required one is reported. */
static bool node_of(ArgReader *r, const char *name, bool required, const Expr **node)
{
    *node = args_node(r, name);
    if (!*node && required) {
        diag_error(r->diag, r->loc, "%s needs the argument '%s'", r->what, name);
        return false;
    }
    return true;
}

static void format_g(char buf[32], double v)
{
    snprintf(buf, 32, "%.9g", v);
}

/* A value that becomes a float in the generated code must stay finite
 * there: beyond FLT_MAX it would silently be infinity. */
static bool in_float_range(ArgReader *r, const Expr *node, double value)
{
    if (fabs(value) <= FLT_MAX)
        return true;
    diag_error(r->diag, node->loc, "%g is out of float range (the largest float is %g)", value,
               (double)FLT_MAX);
    return false;
}

bool args_number(ArgReader *r, const char *name, bool required, double *out, const double *lo,
                 const double *hi, bool lo_open, bool hi_open)
{
    const Expr *node;
    double value;
    if (!node_of(r, name, required, &node))
        return false;
    if (!node)
        return true;
    if (!args_evaluate(r->diag, r->ast, r->consts, node, &value) || !in_float_range(r, node, value))
        return false;
    if ((lo && (value < *lo || (lo_open && value == *lo))) ||
        (hi && (value > *hi || (hi_open && value == *hi)))) {
        char low[32] = "-inf", high[32] = "inf", got[32];
        if (lo)
            format_g(low, *lo);
        if (hi)
            format_g(high, *hi);
        format_g(got, value);
        diag_error(r->diag, node->loc, "%s must be in %c%s, %s%c, got %s", name,
                   lo_open || !lo ? '(' : '[', low, high, hi_open || !hi ? ')' : ']', got);
        return false;
    }
    *out = value;
    return true;
}

bool args_integer_value(ArgReader *r, const char *name, const Expr *node, int64_t minimum,
                        int64_t *out)
{
    double value;
    if (!args_evaluate(r->diag, r->ast, r->consts, node, &value))
        return false;
    if (value != floor(value)) {
        char got[32];
        format_g(got, value);
        diag_error(r->diag, node->loc, "%s must be an integer, got %s", name, got);
        return false;
    }
    if (value < (double)minimum) {
        diag_error(r->diag, node->loc, "%s must be at least %lld, got %.0f", name,
                   (long long)minimum, value + 0.0); /* + 0.0: no "-0" */
        return false;
    }
    if (value > ARGS_MAX_INTEGER) {
        diag_error(r->diag, node->loc, "%s is out of range: %.0f (the limit is 2^53)", name, value);
        return false;
    }
    *out = (int64_t)value;
    return true;
}

bool args_integer(ArgReader *r, const char *name, bool required, int64_t minimum, int64_t *out)
{
    const Expr *node;
    if (!node_of(r, name, required, &node))
        return false;
    return !node || args_integer_value(r, name, node, minimum, out);
}

bool args_ints(ArgReader *r, const char *name, int n, bool required, int64_t minimum,
               int64_t out[3])
{
    const Expr *node;
    if (!node_of(r, name, required, &node))
        return false;
    if (!node)
        return true;
    if (node->kind == EXPR_TUPLE || node->kind == EXPR_LIST) {
        if (node->kind != EXPR_TUPLE || node->items.count != n) {
            diag_error(r->diag, node->loc, "%s must be an integer or a tuple of %d integers", name,
                       n);
            return false;
        }
        for (int i = 0; i < n; i++)
            if (!args_integer_value(r, name, node->items.items[i], minimum, &out[i]))
                return false;
        return true;
    }
    int64_t v;
    if (!args_integer_value(r, name, node, minimum, &v))
        return false;
    for (int i = 0; i < n; i++)
        out[i] = v;
    return true;
}

bool args_padding(ArgReader *r, int n, bool causal_ok, PadMode *mode, int64_t pads[3])
{
    const Expr *node = args_node(r, "padding");
    double ignored;
    if (!node) {
        *mode = PAD_VALID;
        return true;
    }
    if (node->kind == EXPR_NAME) {
        if (strcmp(node->name, "valid") == 0 || strcmp(node->name, "same") == 0) {
            *mode = node->name[0] == 'v' ? PAD_VALID : PAD_SAME;
            return true;
        }
        if (strcmp(node->name, "causal") == 0) {
            if (!causal_ok) {
                diag_error(r->diag, node->loc, "padding=causal is only for conv1d");
                return false;
            }
            *mode = PAD_CAUSAL;
            return true;
        }
        if (!consts_get(r->consts, node->name, &ignored)) {
            diag_error(r->diag, node->loc, "padding must be valid, same, %san integer or a tuple",
                       causal_ok ? "causal, " : "");
            return false;
        }
    }
    *mode = PAD_EXPLICIT;
    return args_ints(r, "padding", n, true, 0, pads);
}

bool args_word(ArgReader *r, const char *name, const char *const *choices, int *index)
{
    const Expr *node = args_node(r, name);
    if (!node)
        return true;
    if (node->kind == EXPR_NAME)
        for (int i = 0; choices[i]; i++)
            if (strcmp(node->name, choices[i]) == 0) {
                *index = i;
                return true;
            }
    StrBuf list = {0};
    for (int i = 0; choices[i]; i++)
        strbuf_printf(&list, "%s%s", i ? ", " : "", choices[i]);
    diag_error(r->diag, node->loc, "%s must be one of %s", name, list.data);
    strbuf_free(&list);
    return false;
}

bool args_boolean(ArgReader *r, const char *name, bool *out)
{
    static const char *const booleans[] = {"true", "false", NULL};
    int index = *out ? 0 : 1;
    if (!args_word(r, name, booleans, &index))
        return false;
    *out = index == 0;
    return true;
}

bool args_activation(ArgReader *r, Activation *act, bool *explicit_)
{
    static const char *const names[] = {"linear",  "relu",       "sigmoid", "tanh",
                                        "softmax", "leaky_relu", NULL};
    int index = 0;
    if (!args_word(r, "activation", names, &index))
        return false;
    *act = (Activation)(ACT_LINEAR + index);
    *explicit_ = args_given(r, "activation");
    return true;
}

/* A (nested) list literal: its shape and values in row-major order.  All
 * items are read before their shapes are compared, so the first bad value
 * is reported before a ragged shape. */
typedef struct {
    Shape shape;
    double *values;
    int64_t count, cap;
} Nested;

static void nested_push(Nested *n, double v)
{
    if (n->count == n->cap) {
        n->cap = n->cap ? 2 * n->cap : 16;
        n->values = xrealloc(n->values, (size_t)n->cap * sizeof *n->values);
    }
    n->values[n->count++] = v;
}

static bool nested_values(ArgReader *r, const Expr *node, Nested *out, Shape *shape)
{
    if (node->kind == EXPR_TUPLE) {
        diag_error(r->diag, node->loc, "weights are written as lists [...], not tuples");
        return false;
    }
    if (node->kind != EXPR_LIST) {
        double v;
        if (!args_evaluate(r->diag, r->ast, r->consts, node, &v) || !in_float_range(r, node, v))
            return false;
        nested_push(out, v);
        shape->rank = 0;
        return true;
    }
    int n = node->items.count;
    Shape *shapes = xmalloc(((size_t)n + 1) * sizeof *shapes);
    bool ok = true;
    for (int i = 0; i < n && ok; i++)
        ok = nested_values(r, node->items.items[i], out, &shapes[i]);
    for (int i = 1; i < n && ok; i++) {
        if (!shape_equal(&shapes[i], &shapes[0])) {
            StrBuf a = {0}, b = {0};
            shape_format(&shapes[i], &a);
            shape_format(&shapes[0], &b);
            diag_error(r->diag, node->items.items[i]->loc,
                       "ragged list: an item of shape %s among items of shape %s", a.data, b.data);
            strbuf_free(&a);
            strbuf_free(&b);
            ok = false;
        }
    }
    if (ok) {
        if (n == 0) {
            shape->rank = 1;
            shape->dim[0] = 0;
        } else if (shapes[0].rank >= SHAPE_MAX_RANK) {
            diag_error(r->diag, node->loc, "the list is nested more than %d deep", SHAPE_MAX_RANK);
            ok = false;
        } else {
            shape->rank = shapes[0].rank + 1;
            shape->dim[0] = n;
            memcpy(&shape->dim[1], shapes[0].dim, (size_t)shapes[0].rank * sizeof shape->dim[0]);
        }
    }
    free(shapes);
    return ok;
}

bool args_literal(ArgReader *r, const char *name, Literal *out)
{
    const Expr *node = args_node(r, name);
    if (!node)
        return true;
    if (node->kind != EXPR_LIST) {
        diag_error(r->diag, node->loc, "%s must be a list [...]", name);
        return false;
    }
    Nested values = {0};
    Shape shape = {0};
    bool ok = nested_values(r, node, &values, &shape);
    if (ok) {
        out->loc = node->loc;
        out->shape = shape;
        out->count = values.count;
        out->values = arena_alloc(r->arena, ((size_t)values.count + 1) * sizeof(double));
        if (values.count)
            memcpy(out->values, values.values, (size_t)values.count * sizeof(double));
        out->given = true;
    }
    free(values.values);
    return ok;
}

bool args_bias(ArgReader *r, bool *use_bias, Literal *values)
{
    const Expr *node = args_node(r, "bias");
    if (node && node->kind == EXPR_LIST) {
        *use_bias = true;
        return args_literal(r, "bias", values);
    }
    *use_bias = true;
    return args_boolean(r, "bias", use_bias);
}
