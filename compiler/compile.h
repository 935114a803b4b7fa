/* compile.h - the front end as one call: parse, then sema. */
#ifndef CNNGEN_COMPILE_H
#define CNNGEN_COMPILE_H

#include <stddef.h>

#include "diag.h"
#include "graph.h"

/* Source text (valid UTF-8, no byte-order mark) -> checked model, or NULL
 * with the errors in diag. */
Model *compile_source(const char *filename, const char *text, size_t len, Diag *diag);

#endif
