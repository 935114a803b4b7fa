/* fuzz_onnx.c - libFuzzer target: any bytes as an ONNX model for
 * `cnngen import`, through protobuf-c's parsing and every check of the
 * importer (graph order, constants, shapes, attributes, external data
 * kept inside the model's folder).  A model it takes is also compiled
 * again inside the importer, so a .cnn that does not check is found too
 * (it says so on stderr and returns 1, which this target turns into a
 * crash). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_scratch.h"
#include "onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/m.onnx", fuzz_scratch_dir());
    fuzz_write(path, data, size);
    /* external data may name a file beside the model: one is there */
    static const char weights[64] = {0};
    char beside[512];
    snprintf(beside, sizeof beside, "%s/w.bin", fuzz_scratch_dir());
    fuzz_write_once(beside, weights, sizeof weights);
    /* both input layouts, by the last byte */
    OnnxImportOptions o = {path, "fuzz", "m.onnx", size && data[size - 1] % 2};
    OnnxImport imp;
    int status = onnx_import(&o, &imp);
    if (status == ONNX_IMPORT_BUG)
        abort();
    if (status == 0)
        onnx_import_free(&imp);
    return 0;
}
