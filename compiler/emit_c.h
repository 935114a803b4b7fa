/* emit_c.h - the C backend: prints the loop IR as C99, with the header. */
#ifndef CNNGEN_EMIT_C_H
#define CNNGEN_EMIT_C_H

#include <stdbool.h>
#include <stdio.h>

#include "graph.h"
#include "ir.h"

typedef struct {
    const char *prefix;         /* of every public symbol */
    const char *header_name;    /* what OUT.c includes ("model.h"), or NULL for -o - */
    const char *command_line;   /* for the banner */
    const float *weights;       /* baked weights (PARAM_COUNT floats), or NULL */
    bool main;                  /* add main() */
    bool no_train;
} EmitOptions;

/* Whether the output has training code (not with baked weights or --no-train). */
bool emit_includes_training(const Model *m, const EmitOptions *o);
/* Element j of a parameter tensor's starting value in the output. */
float emit_param_value(const Param *p, const EmitOptions *o, int64_t j);
/* The runtime's enum values (cnnrt.h) for what the model names, and their names in C. */
int emit_runtime_init(const Param *p, const char **name);
int emit_runtime_loss(Loss loss, const char **name);
int emit_runtime_metric(Metric metric, const char **name);

void emit_c_header(FILE *out, const Model *m, const EmitOptions *o);
void emit_c_source(FILE *out, const Model *m, const IrProgram *p, const EmitOptions *o);

#endif
