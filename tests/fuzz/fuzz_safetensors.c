/* fuzz_safetensors.c - libFuzzer target: any bytes as a weights file for a
 * three-tensor model, through every check of the safetensors loader (the
 * header's JSON, names, shapes, offsets, finite values) and the copy.
 * Odd first bytes go through the file instead of memory, and a first byte
 * of 2 mod 4 through the checkpoint reader, which also wants two
 * __metadata__ values; a file the loader accepts is saved again and must
 * load back to the same numbers (and metadata). */
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
    cnnrt_meta meta[2] = {{"format", ""}, {"epoch", ""}},
               meta_again[2] = {{"format", ""}, {"epoch", ""}};
    if (size && data[0] % 4 == 2) {
        fuzz_write(path, data, size);
        status =
            cnnrt_load_safetensors_meta(path, specs, 3, params, 10, meta, 2, error, sizeof error);
        if (status == 0 &&
            (cnnrt_save_safetensors_meta(path, specs, 3, params, meta, 2, error, sizeof error) ||
             cnnrt_load_safetensors_meta(path, specs, 3, again, 10, meta_again, 2, error,
                                         sizeof error) ||
             memcmp(params, again, sizeof params) != 0 ||
             strcmp(meta[0].value, meta_again[0].value) != 0 ||
             strcmp(meta[1].value, meta_again[1].value) != 0)) {
            fprintf(stderr, "fuzz: an accepted checkpoint does not survive a save and a load: %s\n",
                    error);
            abort(); /* a finding */
        }
        return 0;
    }
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
