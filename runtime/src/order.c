/* order.c - the training loop's sample order: a new random order every
 * epoch (Fisher-Yates over splitmix64, seeded from the seed's own
 * stream).  Its own file, free of stdio and malloc, so that a training
 * loop on a board (examples/cortex-m/train_series.c) visits the samples
 * in the order the generated program's train does. */
#include <stdint.h>

#include "cnnrt.h"
#include "rng.h"

unsigned long long cnnrt_order_start(unsigned long long seed)
{
    return (uint64_t)seed * 0x2545F4914F6CDD1Du + 0x5348554646u;
}

void cnnrt_shuffle(long *order, long n, unsigned long long *state)
{
    uint64_t s = *state;
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(cnnrt_next64(&s) % (uint64_t)(i + 1));
        long tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    *state = s;
}
