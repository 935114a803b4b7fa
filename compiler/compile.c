/* compile.c - the pipeline as a list (compile.h). */
#include "compile.h"

#include <stdint.h>

#include "ast.h"
#include "lower.h"
#include "parser.h"
#include "quant.h"
#include "sema.h"

Model *compile_check(const char *filename, const char *text, size_t len, Diag *diag)
{
    Ast ast = {0};
    parse_source(text, len, &ast, diag);
    Model *m = sema_check(&ast, diag, filename);
    ast_free(&ast);
    if (m && m->train.quantize && !quant_plan_training(diag, m)) {
        model_free(m);
        return NULL;
    }
    return m;
}

Model *compile_source(const char *filename, const char *text, size_t len, Diag *diag)
{
    Model *m = compile_check(filename, text, len, diag);
    if (m) {
        graph_plan_params(m);
        graph_plan_memory(m);
        graph_plan_blocks(m);
        graph_plan_training(m);
    }
    return m;
}

bool compile_lower(const Model *m, const CompileOptions *o, IrProgram *p)
{
    p->vector_width = o->vector_width;
    p->vector_registers = o->vector_registers;
    p->blocks = o->blocks && m->block_samples > 0;
    p->small_model = o->small_model;
    lower_model(m, p);
    /* Training memory is one static array, indexed with int, and all the
     * static memory must link. */
    bool train = o->train && m->tp.floats <= INT32_MAX &&
                 model_static_bytes(m, true) <= MODEL_MAX_STATIC_BYTES;
    if (train)
        lower_training(m, p);
    ir_unroll(p, 8);
    return train;
}

void compile_lower_q(const Model *m, const QuantPlan *plan, const QuantWeights *qw,
                     const CompileOptions *o, int dot_offset, IrProgram *p)
{
    p->vector_width = o->vector_width;
    p->vector_registers = o->vector_registers;
    p->dot_offset = dot_offset;
    p->blocks = o->blocks && m->block_samples > 0;
    lower_model_q(m, plan, qw, p);
    ir_unroll(p, 8);
}
