/* fuzz_safetensors.c - libFuzzer target: any bytes as a weights file for a
 * three-tensor model, through every check of the safetensors loader (the
 * header's JSON, names, shapes, offsets, finite values) and the copy. */
#include <stddef.h>
#include <stdint.h>

#include "fields.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const cnnrt_tensor_spec specs[] = {{"conv1d_1.kernel", 3, {3, 1, 2}, 0},
                                              {"conv1d_1.bias", 1, {2}, 6},
                                              {"dense_1.kernel", 2, {2, 1}, 8}};
    float params[10];
    char error[512];
    cnnrt_parse_safetensors("fuzz.safetensors", data, size, specs, 3, params, 10, error,
                            sizeof error);
    return 0;
}
