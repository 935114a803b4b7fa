/* isa_driver.c - which clone a generated predictor (prefix m) runs, and
 * what it predicts: prints m_isa() on the first line, then the outputs of
 * 8 fixed samples (after m_init_params(1)), one sample a line.  Built by
 * tests/e2e/test_isa.py. */
#include <stdio.h>
#include <stdlib.h>

#include "m.h"

int main(void)
{
    enum { SAMPLES = 8 };
    float *x = malloc(sizeof(float) * SAMPLES * M_INPUT_SIZE);
    float *y = malloc(sizeof(float) * SAMPLES * M_OUTPUT_SIZE);
    if (!x || !y)
        return 2;
    unsigned state = 12345;
    for (long i = 0; i < (long)SAMPLES * M_INPUT_SIZE; i++) {
        state = state * 1103515245u + 12345u;
        x[i] = (float)(state >> 8) / 16777216.0f - 0.5f;
    }
    m_init_params(1);
    m_predict_batch(x, y, SAMPLES);
    printf("%s\n", m_isa());
    for (int s = 0; s < SAMPLES; s++)
        for (long j = 0; j < M_OUTPUT_SIZE; j++)
            printf("%.9g%c", y[(long)s * M_OUTPUT_SIZE + j], j + 1 < M_OUTPUT_SIZE ? ',' : '\n');
    free(x);
    free(y);
    return 0;
}
