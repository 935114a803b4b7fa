/* init.c - starting weights by the init rules, from a seed.
 *
 * Keras' VarianceScaling: glorot (fan_avg, scale 1), he (fan_in, scale
 * 2), lecun (fan_in, scale 1); uniform in +-sqrt(3*scale/n), or a normal
 * truncated at two standard deviations and rescaled to variance scale/n.
 * Only the distributions are the contract's; the numbers come from this
 * runtime's own generator: splitmix64, one stream per tensor, so a
 * tensor's values do not depend on the tensors before it.
 */
#include <math.h>
#include <stdint.h>

#include "cnnrt.h"
#include "rng.h"

typedef struct {
    uint64_t state;
} Rng;

/* Uniform in [0, 1), 53 bits. */
static double rng_uniform(Rng *r)
{
    return cnnrt_uniform(&r->state);
}

static double rng_normal(Rng *r)
{
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* The standard deviation of a unit normal truncated at +-2. */
#define TRUNCATED_STDDEV 0.87962566103423978

void cnnrt_init_params(const cnnrt_init_spec *specs, int n, float *params, unsigned long long seed)
{
    for (int i = 0; i < n; i++) {
        const cnnrt_init_spec *s = &specs[i];
        float *p = params + s->offset;
        Rng rng = {seed * 0x2545F4914F6CDD1Du + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15u};
        double scale = 1.0, fans = (double)s->fan_in;
        switch (s->init) {
        case CNNRT_INIT_KEEP: continue;
        case CNNRT_INIT_ZEROS:
        case CNNRT_INIT_ONES:
            for (long k = 0; k < s->count; k++)
                p[k] = s->init == CNNRT_INIT_ONES ? 1.0f : 0.0f;
            continue;
        case CNNRT_INIT_GLOROT_UNIFORM:
        case CNNRT_INIT_GLOROT_NORMAL: fans = ((double)s->fan_in + (double)s->fan_out) / 2; break;
        case CNNRT_INIT_HE_UNIFORM:
        case CNNRT_INIT_HE_NORMAL: scale = 2.0; break;
        case CNNRT_INIT_LECUN_NORMAL: break;
        }
        double variance = scale / (fans > 1.0 ? fans : 1.0);
        int uniform = s->init == CNNRT_INIT_GLOROT_UNIFORM || s->init == CNNRT_INIT_HE_UNIFORM;
        for (long k = 0; k < s->count; k++) {
            double v;
            if (uniform) {
                double limit = sqrt(3.0 * variance);
                v = (2.0 * rng_uniform(&rng) - 1.0) * limit;
            } else {
                do
                    v = rng_normal(&rng);
                while (fabs(v) > 2.0);
                v *= sqrt(variance) / TRUNCATED_STDDEV;
            }
            p[k] = (float)v;
        }
    }
}

/* Dropout masks: element i of step `step` of layer `layer` keeps its value
 * when a uniform number hashed from (seed, layer, step, i) is at least
 * rate.  A hash of the counter, not a stream: any element can be drawn on
 * its own, so masks do not depend on how the batch is split. */
void cnnrt_dropout_mask(float *mask, long count, double rate, unsigned long long seed, int layer,
                        unsigned long long step)
{
    Rng key = {seed ^ ((uint64_t)(unsigned)layer << 48)};
    uint64_t base = cnnrt_next64(&key.state) ^ (step * 0xD1B54A32D192ED03u);
    float keep = (float)(1.0 / (1.0 - rate));
    /* rng_uniform(r) >= rate in integers, without a branch: a draw's 53
     * bits k give k * 2^-53 (exact), at least rate exactly when k is at
     * least rate * 2^53 (exact too) rounded up.  Taken 40% of the time at
     * random, the branch cost 7 ns an element. */
    double bound = rate * 0x1.0p53;
    uint64_t least = (uint64_t)bound; /* rounded up, without libm on a board */
    least += (double)least < bound;
    const float kept[2] = {0.0f, keep};
    for (long i = 0; i < count; i++) {
        uint64_t k = cnnrt_mix64(base + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15u) >> 11;
        mask[i] = kept[k >= least];
    }
}
