/* fuzz_safetensors.c - libFuzzer target: any bytes as a weights file for a
 * three-tensor model, through every check of the safetensors loader (the
 * header's JSON, names, shapes, offsets, finite values) and the copy.
 * Odd first bytes go through the file instead of memory; a file the loader
 * accepts is saved again and must load back to the same numbers. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "fuzz_scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const cnnrt_tensor_spec specs[] = {{"conv1d_1.kernel", 3, {3, 1, 2}, 0},
                                              {"conv1d_1.bias", 1, {2}, 6},
                                              {"dense_1.kernel", 2, {2, 1}, 8}};
    float params[10], again[10];
    char error[512], path[512];
    snprintf(path, sizeof path, "%s/w.safetensors", fuzz_scratch_dir());
    int status;
    if (size && data[0] % 2) {
        fuzz_write(path, data, size);
        status = cnnrt_load_safetensors(path, specs, 3, params, 10, error, sizeof error);
    } else {
        status = cnnrt_parse_safetensors("fuzz.safetensors", data, size, specs, 3, params, 10,
                                         error, sizeof error);
    }
    if (status == 0) {
        if (cnnrt_save_safetensors(path, specs, 3, params, error, sizeof error) != 0 ||
            cnnrt_load_safetensors(path, specs, 3, again, 10, error, sizeof error) != 0 ||
            memcmp(params, again, sizeof params) != 0) {
            fprintf(stderr, "fuzz: accepted weights do not survive a save and a load: %s\n", error);
            abort(); /* a finding */
        }
    }
    return 0;
}
