/* emit_c.h - the C backend: prints the loop IR as C99, with the header. */
#ifndef CNNGEN_EMIT_C_H
#define CNNGEN_EMIT_C_H

#include <stdbool.h>
#include <stdio.h>

#include "emit.h"
#include "graph.h"
#include "ir.h"

void emit_c_header(FILE *out, const Model *m, const EmitOptions *o);
/* programs: one (a fixed --vector-width), or EMIT_CLONE_COUNT in the
 * order of emit_clones (auto), each printed as a clone. */
void emit_c_source(FILE *out, const Model *m, const IrProgram *programs, int nprograms,
                   const EmitOptions *o);

#endif
