/* sema.h - from statements to a checked model.
 *
 * Walks the statements in order: resolves names (constants, labels,
 * layer names), binds and checks arguments, derives every shape and
 * parameter tensor, applies the train block's defaults, and gives the
 * contract's warnings.  Errors go to the diagnostics sink and do not stop
 * the walk, so every independent error in a file is reported.
 */
#ifndef CNNGEN_SEMA_H
#define CNNGEN_SEMA_H

#include "ast.h"
#include "diag.h"
#include "graph.h"

/* The model, or NULL when there were errors (all reported to diag). */
Model *sema_check(Ast *ast, Diag *diag, const char *filename);
/* Whether a model name cannot be used: a C keyword or a reserved word. */
bool sema_name_is_taken(const char *name);

#endif
