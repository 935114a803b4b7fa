/* fuzz_program_args.c - libFuzzer target: the generated program's command
 * line (predict, train, eval and their options) on a small model
 * (tests/helpers/mock_train.c), run in a scratch folder that holds a data
 * file d.csv and a weights file w.safetensors.  The input is the
 * arguments, separated by NUL bytes.  Arguments with a '/' are skipped
 * (the program stays in its folder), and so are numbers over 50 (--epochs
 * 99999 only takes time); files it writes are removed after each run. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cnnrt.h"
#include "fuzz_scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int mock_main(int argc, char **argv);

static int harmless(const char *arg)
{
    if (strchr(arg, '/'))
        return 0;
    char *end;
    long v = strtol(arg, &end, 10);
    return end == arg || v <= 50;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char csv[] = "1,2,3\n2,1,4\n0,0,1\n3,3,9\n";
    static const char *const keep[] = {"d.csv", "w.safetensors", NULL};
    const char *dir = fuzz_scratch_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/d.csv", dir);
    fuzz_write_once(path, csv, sizeof csv - 1);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    struct stat st;
    if (stat(path, &st) != 0) {
        static const cnnrt_tensor_spec specs[] = {{"dense_1.kernel", 2, {2, 1}, 0},
                                                  {"dense_1.bias", 1, {1}, 2}};
        static const float weights[] = {0.5f, -0.25f, 1.0f};
        char error[512];
        cnnrt_save_safetensors(path, specs, 2, weights, error, sizeof error);
    }
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1), *argv[17] = {"mock"};
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int argc = 1;
    for (char *p = text; argc < 16 && p <= text + size; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;
    int ok = 1;
    for (int i = 1; i < argc; i++)
        ok &= harmless(argv[i]);
    if (ok && fuzz_enter(dir) == 0) {
        mock_main(argc, argv);
        fuzz_leave();
        fuzz_clean(dir, keep);
    }
    free(text);
    return 0;
}
