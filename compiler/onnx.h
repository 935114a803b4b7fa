/* onnx.h - ONNX export (--emit=onnx) and import (cnngen import), through
 * protobuf-c on ONNX's own onnx.proto.  Built only with CNNGEN_HAVE_ONNX
 * (CMake's CNNGEN_ONNX); docs/onnx.md has the operator table.
 *
 * Layouts: cnngen's tensors are channels-last, ONNX's channels-first.
 * An exported model takes and gives ONNX's order ([N, C, spatial...]),
 * its kernels are transposed to ONNX's, and a dense layer after an
 * implied flatten has its rows permuted to the NCHW flatten's order.  The
 * importer undoes each of these, so export then import gives back the
 * same model and weights.
 */
#ifndef CNNGEN_ONNX_H
#define CNNGEN_ONNX_H

#include <stddef.h>

#include "graph.h"

enum { ONNX_EXPORT_OPSET = 13 };

/* The model with its parameters (m->param_floats floats, at each Param's
 * offset) as a serialized ONNX ModelProto in *bytes (malloc'd).  Returns
 * 0, or 1 (said on stderr) for a layer family without an ONNX form;
 * every family cnngen has today has one. */
int onnx_export(const Model *m, const float *params, const char *producer_version,
                unsigned char **bytes, size_t *len);

typedef struct {
    const char *path;        /* the .onnx file */
    const char *model_name;  /* the .cnn's model name (a C identifier) */
    const char *source_name; /* named in the .cnn's first comment */
    bool input_onnx_order;   /* --input-layout nchw: input as ONNX has it, then
                              * permute((2, ..., 1)) */
} OnnxImportOptions;

/* One weights tensor of an imported model, channels-last. */
typedef struct {
    char *name; /* "conv1.kernel" */
    int rank;
    int64_t dim[SHAPE_MAX_RANK];
    float *values;
} OnnxTensor;

typedef struct {
    char *cnn; /* the model source */
    OnnxTensor *tensors;
    int ntensors;
} OnnxImport;

/* Reads an ONNX model and writes it as .cnn text and weights.  Every
 * node the language cannot express is reported on stderr (all of them,
 * each with its name, operator and attribute).  Returns 0; 1 for a model
 * that cannot be imported; 2 for an unreadable file; ONNX_IMPORT_BUG when
 * the text written does not check (the importer's bug, said on stderr). */
enum { ONNX_IMPORT_BUG = 70 };
int onnx_import(const OnnxImportOptions *o, OnnxImport *out);
void onnx_import_free(OnnxImport *imp);

#endif
