/* fuzz_predict_lines.c - libFuzzer target: any bytes as the sample lines
 * of `predict` (byte 0: the model's input size, 1 to 8). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>

#include "cnnrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void predict_constant(const float *x, float *y, int n)
{
    (void)x;
    for (int i = 0; i < n; i++)
        y[i] = 0.5f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    if (size < 2 || !sink)
        return 0;
    FILE *in = fmemopen((void *)(data + 1), size - 1, "r");
    if (!in)
        return 0;
    cnnrt_predict_lines(in, "fuzz", 1 + data[0] % 8, 1, predict_constant, sink, sink);
    fclose(in);
    return 0;
}
