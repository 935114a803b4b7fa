/* data_driver.c - loads a DATA spec with libcnnrt for tests:
 *   data_driver SPEC INPUT_SIZE OUTPUT_SIZE CLASSES POSITIONS
 * prints "COUNT samples, input sum S, target sum T" (sums in double), or
 * the error on stderr as a generated program would ("PROG: error: ..."
 * for status 2), and exits with the loader's status. */
#include <stdio.h>
#include <stdlib.h>

#include "cnnrt.h"

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: data_driver SPEC INPUT_SIZE OUTPUT_SIZE CLASSES POSITIONS\n");
        return 2;
    }
    cnnrt_data_layout layout = {atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5])};
    cnnrt_data data;
    char error[1024];
    int status = cnnrt_load_data(argv[1], &layout, &data, error, sizeof error);
    if (status) {
        fprintf(stderr, status == CNNRT_EIO ? "data_driver: %s\n" : "%s\n", error);
        return cnnrt_exit_status(status);
    }
    double si = 0, st = 0;
    for (long k = 0; k < data.count; k++) /* sample by sample: series windows overlap */
        for (long i = 0; i < data.input_size; i++)
            si += data.inputs[k * data.input_stride + i];
    for (long i = 0; i < data.count * data.target_size; i++)
        st += data.targets[i];
    printf("%ld samples, input sum %.9g, target sum %.9g\n", data.count, si, st);
    cnnrt_free_data(&data);
    return 0;
}
