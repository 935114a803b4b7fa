/* compile.h - the pipeline, stage by stage, each a call of its own file:
 *
 *   parse           source -> AST                       grammar/parser.y
 *   check           AST -> checked model                sema.c
 *   plan            parameters, memory, training memory graph.c
 *   lower           the model -> loop IR                lower.c, layers/
 *   lower training  the training step                   lower_train.c
 *   passes          unrolling                           ir.c
 *
 * then a backend prints the IR (emit_c.c, emit_llvm.c).
 */
#ifndef CNNGEN_COMPILE_H
#define CNNGEN_COMPILE_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "graph.h"
#include "ir.h"
#include "quant.h"

/* Source text (valid UTF-8, no byte-order mark) -> checked model, or NULL
 * with the errors in diag: parse, check. */
Model *compile_check(const char *filename, const char *text, size_t len, Diag *diag);
/* The same, planned (what --summary and code generation need): parse,
 * check, plan. */
Model *compile_source(const char *filename, const char *text, size_t len, Diag *diag);

typedef struct {
    int vector_width;     /* floats per vector in register blocks; 0: none */
    int vector_registers; /* the target's vector registers */
    bool train;           /* lower the training step too */
    bool blocks;          /* and predict_batch's block functions (graph_plan_blocks) */
    bool small_model;     /* the one inlined version of a small model (emit_small_model) */
} CompileOptions;

/* A planned model -> the loop IR in p: lower, lower training, passes.
 * Returns whether the training step was lowered: asked for, and its
 * static memory indexable with int. */
bool compile_lower(const Model *m, const CompileOptions *o, IrProgram *p);
/* The int8 plan's model -> its loop IR in p (docs/int8.md): lower, passes. */
void compile_lower_q(const Model *m, const QuantPlan *plan, const QuantWeights *qw,
                     const CompileOptions *o, int dot_offset, IrProgram *p);

#endif
