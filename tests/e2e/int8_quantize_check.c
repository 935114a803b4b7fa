/* int8_quantize_check.c - an int8 predictor's q_quantize (prefix q)
 * against the reference's rounding, sign(v) * floor(|v| + 0.5) of
 * v = (double)x / scale, plus the zero point, clamped (NaN: -128), on
 * inputs at, next to and between halves of the scale, past the range and
 * NaN; the clone CNNGEN_ISA names (tests/e2e/test_quantize.py).  Prints
 * the clone that ran and the count that differ; exit 1 if any.
 *   int8_quantize_check ROUNDS */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "q.h"

static int8_t reference(float x)
{
    double v = (double)x / Q_INPUT_SCALE;
    double r = v < 0 ? -floor(-v + 0.5) : floor(v + 0.5);
    r += Q_INPUT_ZERO_POINT;
    return (int8_t)(!(r > -128) ? -128 : r > 127 ? 127 : r);
}

/* An input near a half of the scale, its float neighbours, an arbitrary
 * value, a multiple of the scale, one far past the range, or NaN. */
static float sample(unsigned *state, int i)
{
    *state = *state * 1103515245u + 12345u;
    unsigned r = *state >> 8;
    double k = (double)(int)(r % 2400) - 1200.0;
    float f = (float)((k / 4.0 + 0.5) * Q_INPUT_SCALE);
    switch (r % 7) {
    case 1: return nextafterf(f, INFINITY);
    case 2: return nextafterf(f, -INFINITY);
    case 3: return (float)((double)(r % 100000) / 25000.0 - 2.0);
    case 4: return (float)(k * Q_INPUT_SCALE);
    case 5: return i % 5 == 0 ? (float)(k * 1e6) : f;
    case 6: return i % 29 == 0 ? NAN : f;
    default: return f;
    }
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 1000;
    static float x[Q_INPUT_SIZE];
    static int8_t q[Q_INPUT_SIZE];
    unsigned state = 2024;
    long differ = 0, total = 0;
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < Q_INPUT_SIZE; i++)
            x[i] = sample(&state, i);
        q_quantize(x, q);
        for (int i = 0; i < Q_INPUT_SIZE; i++, total++)
            if (q[i] != reference(x[i]) && differ++ < 5)
                fprintf(stderr, "x = %.9g: %d, the reference %d\n", (double)x[i], q[i],
                        reference(x[i]));
    }
    printf("%s: %ld of %ld inputs differ\n", q_isa(), differ, total);
    return differ != 0;
}
