/* emit.c - what the backends share (emit.h). */
#include "emit.h"

#include "cnnrt.h"

/* AVX-512 has 32 vector registers (ymm16-31 with AVX512VL too), AVX2 and
 * SSE 16; "generic" is GNU C's 4-float vectors on any target (SSE2 on
 * x86-64, NEON on AArch64), "scalar" plain loops for other compilers. */
const EmitClone emit_clones[EMIT_CLONE_COUNT] = {
    {"avx512", 16, 32, 0},
    {"avx2", 8, 16, 0},
    {"generic", 4, 16, 0},
    {"scalar", 0, 16, 0},
};

/* vpdpbusd takes the input as unsigned bytes (x + 128, folded into the
 * biases); AVX2's vpmaddubsw takes it signed (its sign moved onto the
 * weight, so that no pair of products saturates 16 bits).  The Cortex-M
 * DSP clone's "vectors" are one int32 sum each (a core register; four
 * channels a pass), its dot products two SMLADs of sign-extended pairs. */
const EmitClone emit_clones_q[EMIT_QCLONE_COUNT] = {
    {"vnni", 16, 32, 128},
    {"avx2", 8, 16, 0},
    {"dsp", 1, 12, 0},
    {"scalar", 0, 16, 0},
};

/* Up to 2,000 FLOPs and 256 floats of activations: a sample takes tens
 * of nanoseconds, and seed42 (116 FLOPs) spent half of its 22 through
 * the clone table and three out-of-line layer functions. */
bool emit_small_model(const Model *m)
{
    return model_flops(m) <= MODEL_SMALL_FLOPS && m->arena_floats <= MODEL_SMALL_ACTIVATIONS;
}

bool emit_includes_training(const Model *m, const EmitOptions *o)
{
    return !o->weights && !o->no_train && m->nlayers > 0;
}

bool emit_describes_layers(const Model *m, const EmitOptions *o)
{
    return emit_includes_training(m, o) || o->profile;
}

int64_t emit_layer_values(const Model *m, int i, bool training)
{
    int owner = training ? m->tp.owner[i + 1] : 0;
    return owner == 0 ? -1 : m->tp.act[owner];
}

int emit_layer_function(const Model *m, int i)
{
    const Layer *l = m->layers[i];
    /* a fused chain's storage is its producer's */
    if (l->fused)
        return model_storage_owner(m, i + 1) - 1;
    return l->alias_of >= 0 ? -1 : i;
}

/* Element j of a parameter tensor as the output starts with it: the baked
 * weights, else the model's literal values, ones for ones(), else zero
 * until loaded or initialised. */
float emit_param_value(const Param *p, const EmitOptions *o, int64_t j)
{
    return o->weights             ? o->weights[p->offset + j]
           : p->literal           ? (float)p->literal[j]
           : p->init == INIT_ONES ? 1.0f
                                  : 0.0f;
}

/* The runtime's enums for what the model names: the value, and its name in C. */
int emit_runtime_init(const Param *p, const char **name)
{
    static const struct {
        int value;
        const char *name;
    } kinds[] = {[INIT_GLOROT_UNIFORM] = {CNNRT_INIT_GLOROT_UNIFORM, "CNNRT_INIT_GLOROT_UNIFORM"},
                 [INIT_GLOROT_NORMAL] = {CNNRT_INIT_GLOROT_NORMAL, "CNNRT_INIT_GLOROT_NORMAL"},
                 [INIT_HE_UNIFORM] = {CNNRT_INIT_HE_UNIFORM, "CNNRT_INIT_HE_UNIFORM"},
                 [INIT_HE_NORMAL] = {CNNRT_INIT_HE_NORMAL, "CNNRT_INIT_HE_NORMAL"},
                 [INIT_LECUN_NORMAL] = {CNNRT_INIT_LECUN_NORMAL, "CNNRT_INIT_LECUN_NORMAL"},
                 [INIT_ZEROS] = {CNNRT_INIT_ZEROS, "CNNRT_INIT_ZEROS"},
                 [INIT_ONES] = {CNNRT_INIT_ONES, "CNNRT_INIT_ONES"}};
    if (p->literal) {
        *name = "CNNRT_INIT_KEEP";
        return CNNRT_INIT_KEEP;
    }
    *name = kinds[p->init].name;
    return kinds[p->init].value;
}

int emit_runtime_loss(Loss loss, const char **name)
{
    static const struct {
        int value;
        const char *name;
    } losses[] = {[LOSS_DEFAULT] = {CNNRT_LOSS_MSE, "CNNRT_LOSS_MSE"},
                  [LOSS_MSE] = {CNNRT_LOSS_MSE, "CNNRT_LOSS_MSE"},
                  [LOSS_MAE] = {CNNRT_LOSS_MAE, "CNNRT_LOSS_MAE"},
                  [LOSS_BCE] = {CNNRT_LOSS_BCE, "CNNRT_LOSS_BCE"},
                  [LOSS_CROSSENTROPY] = {CNNRT_LOSS_CROSSENTROPY, "CNNRT_LOSS_CROSSENTROPY"}};
    *name = losses[loss].name;
    return losses[loss].value;
}

int emit_runtime_metric(Metric metric, const char **name)
{
    static const struct {
        int value;
        const char *name;
    } metrics[] = {[METRIC_ACCURACY] = {CNNRT_METRIC_ACCURACY, "CNNRT_METRIC_ACCURACY"},
                   [METRIC_MAE] = {CNNRT_METRIC_MAE, "CNNRT_METRIC_MAE"},
                   [METRIC_RMSE] = {CNNRT_METRIC_RMSE, "CNNRT_METRIC_RMSE"}};
    *name = metrics[metric].name;
    return metrics[metric].value;
}
