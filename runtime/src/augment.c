/* augment.c - the train block's augmentation, applied to each training
 * sample as it goes into a batch.
 *
 * Each sample has its own random stream, keyed by (seed, epoch, its
 * position in the epoch's order): splitmix64 over a key made by mixing
 * the three.  So the draws do not depend on threads, on the batch size's
 * last short batch, or on what came before a resumed run, and
 * tests/reference computes the same ones.  The transforms draw from the
 * stream in the order the train block lists them:
 *   shift(p), crop(p): dy then dx, each uniform in -p..p (crop(p) is
 *     torchvision's RandomCrop(padding=p): the same thing);
 *   flip: one draw, mirrored when its top bit is set;
 *   noise(s): per value, two draws (Box-Muller, the cosine half);
 *   scale(r): one draw, a factor uniform in [1 - r, 1 + r). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "rng.h"

static const double PI = 3.14159265358979323846;

static uint64_t sample_stream(unsigned long long seed, long epoch, long position)
{
    uint64_t key = cnnrt_mix64(seed ^ 0x4155474D454E54u); /* "AUGMENT" */
    key = cnnrt_mix64(key + (uint64_t)epoch);
    return cnnrt_mix64(key + (uint64_t)position);
}

static long uniform_int(uint64_t *state, long amount)
{
    return (long)(cnnrt_next64(state) % (uint64_t)(2 * amount + 1)) - amount;
}

static double normal(uint64_t *state)
{
    double u1 = (double)((cnnrt_next64(state) >> 11) + 1) * 0x1.0p-53; /* (0, 1] */
    double u2 = cnnrt_uniform(state);
    return sqrt(-2 * log(u1)) * cos(2 * PI * u2);
}

/* frames, height, width and channels of an image (rank 3) or clip (4) */
static void image_dims(int rank, const int *shape, long dims[4])
{
    dims[0] = rank == 4 ? shape[0] : 1;
    for (int i = 0; i < 3; i++)
        dims[1 + i] = shape[rank - 3 + i];
}

void cnnrt_shift_image(const float *in, float *out, int rank, const int *shape, int dy, int dx)
{
    long d[4];
    image_dims(rank, shape, d);
    long frames = d[0], h = d[1], w = d[2], c = d[3];
    for (long f = 0; f < frames; f++)
        for (long y = 0; y < h; y++)
            for (long x = 0; x < w; x++) {
                float *to = out + ((f * h + y) * w + x) * c;
                long sy = y - dy, sx = x - dx;
                if (sy < 0 || sy >= h || sx < 0 || sx >= w)
                    memset(to, 0, sizeof(float) * (size_t)c);
                else
                    memcpy(to, in + ((f * h + sy) * w + sx) * c, sizeof(float) * (size_t)c);
            }
}

void cnnrt_flip_image(const float *in, float *out, int rank, const int *shape)
{
    long d[4];
    image_dims(rank, shape, d);
    long rows = d[0] * d[1], w = d[2], c = d[3];
    for (long r = 0; r < rows; r++)
        for (long x = 0; x < w; x++)
            memcpy(out + (r * w + x) * c, in + (r * w + (w - 1 - x)) * c,
                   sizeof(float) * (size_t)c);
}

/* One sample, through each transform in order; tmp holds input_size floats. */
static void augment_sample(const cnnrt_train_settings *s, uint64_t *state, int value_targets,
                           float *x, float *t, float *tmp, int input_size, int target_size)
{
    for (int k = 0; k < s->naugment; k++) {
        const cnnrt_augment *a = &s->augment[k];
        switch (a->kind) {
        case CNNRT_AUGMENT_SHIFT:
        case CNNRT_AUGMENT_CROP: {
            long dy = uniform_int(state, (long)a->amount);
            long dx = uniform_int(state, (long)a->amount);
            cnnrt_shift_image(x, tmp, s->input_rank, s->input_shape, (int)dy, (int)dx);
            memcpy(x, tmp, sizeof(float) * (size_t)input_size);
            break;
        }
        case CNNRT_AUGMENT_FLIP:
            if (cnnrt_next64(state) >> 63) {
                cnnrt_flip_image(x, tmp, s->input_rank, s->input_shape);
                memcpy(x, tmp, sizeof(float) * (size_t)input_size);
            }
            break;
        case CNNRT_AUGMENT_NOISE:
            for (int i = 0; i < input_size; i++)
                x[i] = x[i] + (float)(a->amount * normal(state));
            break;
        case CNNRT_AUGMENT_SCALE: {
            double factor = 1 - a->amount + 2 * a->amount * cnnrt_uniform(state);
            for (int i = 0; i < input_size; i++)
                x[i] = (float)((double)x[i] * factor);
            if (value_targets)
                for (int i = 0; i < target_size; i++)
                    t[i] = (float)((double)t[i] * factor);
            break;
        }
        }
    }
}

void cnnrt_augment_batch(const cnnrt_train_settings *s, unsigned long long seed, int value_targets,
                         float *x, float *t, int n, int input_size, int target_size, long epoch,
                         long first, float *tmp)
{
    for (int i = 0; i < n; i++) {
        uint64_t state = sample_stream(seed, epoch, first + i);
        augment_sample(s, &state, value_targets, x + (size_t)i * input_size,
                       t + (size_t)i * target_size, tmp, input_size, target_size);
    }
}
