/* args.h - constant expressions and argument values (part of sema).
 *
 * A layer's arguments are bound to names first (positional in the
 * layer's table order, then name=value); each layer then reads the
 * values it needs through an ArgReader, which reports a bad value at the
 * value's own location and returns false.
 */
#ifndef CNNGEN_ARGS_H
#define CNNGEN_ARGS_H

#include "ast.h"
#include "diag.h"
#include "graph.h"
#include "util.h"

typedef struct {
    StrMap map; /* name -> double * (in the model's arena) */
} Consts;

bool consts_get(const Consts *c, const char *name, double *value);

/* Evaluate a constant expression in double precision. */
bool args_evaluate(Diag *diag, Ast *ast, const Consts *consts, const Expr *e, double *value);

enum { ARGS_MAX = 16 };

typedef struct {
    const char *name;
    const Arg *arg;
} BoundArg;

typedef struct {
    Diag *diag;
    Ast *ast;
    Arena *arena; /* where literals are stored */
    const Consts *consts;
    const char *what; /* the layer's name in "... needs the argument" */
    Loc loc;          /* where a missing argument is reported */
    BoundArg bound[ARGS_MAX];
    int nbound;
} ArgReader;

/* Bind arguments to names: positional (in table order) first, then
 * name=value; each at most once.  `what` names the layer in messages. */
bool args_bind(ArgReader *r, const char *what, const ArgList *args, const char *const *positional,
               const char *const *named);

bool args_given(const ArgReader *r, const char *name);
const Expr *args_node(const ArgReader *r, const char *name);

/* Each reader leaves *out alone when the argument is absent and has a
 * default; a missing required one (required=true) is an error. */
bool args_number(ArgReader *r, const char *name, bool required, double *out, const double *lo,
                 const double *hi, bool lo_open, bool hi_open);
bool args_integer(ArgReader *r, const char *name, bool required, int64_t minimum, int64_t *out);
bool args_integer_value(ArgReader *r, const char *name, const Expr *node, int64_t minimum,
                        int64_t *out);
/* One integer for every axis, or a tuple of n. */
bool args_ints(ArgReader *r, const char *name, int n, bool required, int64_t minimum,
               int64_t out[3]);
bool args_padding(ArgReader *r, int n, bool causal_ok, PadMode *mode, int64_t pads[3]);
/* One of choices (NULL-terminated); *index is left alone when absent. */
bool args_word(ArgReader *r, const char *name, const char *const *choices, int *index);
bool args_boolean(ArgReader *r, const char *name, bool *out);
bool args_activation(ArgReader *r, Activation *act, bool *explicit_);
bool args_literal(ArgReader *r, const char *name, Literal *out);
bool args_bias(ArgReader *r, bool *use_bias, Literal *values);

#endif
