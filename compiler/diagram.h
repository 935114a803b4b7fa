/* diagram.h - the network as a picture: Graphviz's dot language
 * (--emit=dot), rendered to SVG or PNG by Graphviz's dot program
 * (--emit=svg, --emit=png). */
#ifndef CNNGEN_DIAGRAM_H
#define CNNGEN_DIAGRAM_H

#include <stddef.h>
#include <stdio.h>

#include "graph.h"

/* A node per layer (kind, name, output shape, parameters, source line;
 * fixed layers dashed), an edge from each input: the label graph as it
 * is, residual adds and concats included. */
void diagram_print_dot(const Model *m, FILE *out);

/* DOT rendered by Graphviz's `dot -TFORMAT` (svg, png): its bytes in
 * *out (malloc'd, *out_len of them) and 0, or 2 with the reason in error. */
int diagram_render(const char *dot, size_t len, const char *format, char **out, size_t *out_len,
                   char *error, size_t error_size);

#endif
