/* summary.h - the --summary report of a checked model. */
#ifndef CNNGEN_SUMMARY_H
#define CNNGEN_SUMMARY_H

#include <stdio.h>

#include "graph.h"
#include "quant.h"

/* What a board needs for the baked predictor (--weights --no-train), as
 * its linked image holds it: the weights in flash and the arena in RAM
 * (each array one float longer than its contents, so that none is
 * empty), and an estimate of the deepest stack of a predict call on a
 * 32-bit Cortex-M, from the plain-loop program a Cortex-M builds (lowered
 * here). */
typedef struct {
    long long flash_weights, ram_arena, stack;
} SummaryBoard;

SummaryBoard summary_board(const Model *m);
/* With plan (--quantize; NULL without), the int8 plan and sizes too. */
void summary_print(const Model *m, const SummaryBoard *board, const QuantPlan *plan, FILE *out);
void summary_print_json(const Model *m, const SummaryBoard *board, const QuantPlan *plan,
                        FILE *out);

#endif
