/* fuzz_data.c - libFuzzer target: the DATA readers (csv, series, idx plain
 * and gzipped) on files made from the input, in a scratch folder.
 *   byte 0: the form (csv, series by name or number, idx, idx with the
 *           images gzipped) and the model's layout (regression or classes)
 *   idx:    bytes 1-2 the images file's length, then images, then labels */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cnnrt.h"
#include "fuzz_scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *dir = fuzz_scratch_dir();
    char a[512], b[512], spec[600];
    int form = data[0] % 5, classes = data[0] / 5 % 2;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    cnnrt_data_layout layout = {3, classes ? 4 : 2, classes ? 4 : 0, classes ? 1 : 0};
    if (form == 0) {
        snprintf(a, sizeof a, "%s/d.csv", dir);
        fuzz_write(a, rest, n);
        snprintf(spec, sizeof spec, "%s", a);
    } else if (form <= 2) {
        snprintf(a, sizeof a, "%s/s.csv", dir);
        fuzz_write(a, rest, n);
        snprintf(spec, sizeof spec, "series:%s:%s:3", a, form == 1 ? "t" : "1");
        layout = (cnnrt_data_layout){3, 1, 0, 0};
    } else {
        size_t images = n >= 2 ? (size_t)(rest[0] << 8 | rest[1]) : 0;
        rest += n >= 2 ? 2 : n;
        n -= n >= 2 ? 2 : n;
        if (images > n)
            images = n;
        int gz = form == 4;
        snprintf(a, sizeof a, "%s/p-images-idx3-ubyte%s", dir, gz ? ".gz" : "");
        snprintf(b, sizeof b, "%s/p-images-idx3-ubyte%s", dir, gz ? "" : ".gz");
        unlink(b);
        fuzz_write(a, rest, images);
        snprintf(b, sizeof b, "%s/p-labels-idx1-ubyte", dir);
        fuzz_write(b, rest + images, n - images);
        snprintf(spec, sizeof spec, "idx:%s/p", dir);
        layout = (cnnrt_data_layout){6, classes ? 5 : 1, classes ? 5 : 0, classes ? 1 : 0};
    }
    cnnrt_data loaded;
    char error[1024];
    if (cnnrt_load_data(spec, &layout, &loaded, error, sizeof error) == 0)
        cnnrt_free_data(&loaded);
    return 0;
}
