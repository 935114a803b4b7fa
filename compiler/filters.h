/* filters.h - each convolution's kernels as a picture (--emit=filters):
 * a PNG per conv1d, conv2d, depthwise_conv2d and conv3d layer, named by
 * the layer, written by libpng. */
#ifndef CNNGEN_FILTERS_H
#define CNNGEN_FILTERS_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"

/* The pictures of M's convolutions, their weights in PARAMS (the
 * parameter block's order), into DIR (made if missing), but for the
 * layers marked in SKIP (learned filters without their weights: a warning
 * each): 0, or the exit status with the reason in error. */
int filters_write(const Model *m, const float *params, const bool *skip, const char *dir,
                  char *error, size_t size);

#endif
