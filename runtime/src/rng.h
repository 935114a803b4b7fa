/* rng.h - the runtime's one random generator, splitmix64 (internal to
 * libcnnrt): init's streams, the sample order and augmentation's
 * per-sample streams all draw from it. */
#ifndef CNNRT_RNG_H
#define CNNRT_RNG_H

#include <stdint.h>

/* splitmix64's output function: a well-mixed 64 bits of z. */
static inline uint64_t cnnrt_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* The next draw of the stream at *state. */
static inline uint64_t cnnrt_next64(uint64_t *state)
{
    return cnnrt_mix64(*state += 0x9E3779B97F4A7C15u);
}

/* Uniform in [0, 1), 53 bits. */
static inline double cnnrt_uniform(uint64_t *state)
{
    return (double)(cnnrt_next64(state) >> 11) * 0x1.0p-53;
}

#endif
