/* summary.h - the --summary report of a checked model. */
#ifndef CNNGEN_SUMMARY_H
#define CNNGEN_SUMMARY_H

#include <stdio.h>

#include "graph.h"

void summary_print(const Model *m, FILE *out);
void summary_print_json(const Model *m, FILE *out);

#endif
