/* emit.h - what the backends share: the options of an output, the
 * parameters' starting values, and the runtime's enum values for what
 * the model names.  emit_c and emit_llvm print the same loop IR and the
 * same training step (ir.h); what they print around it comes from here. */
#ifndef CNNGEN_EMIT_H
#define CNNGEN_EMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "graph.h"
#include "quant.h"

typedef struct {
    const char *prefix;       /* of every public symbol */
    const char *header_name;  /* what OUT.c includes ("model.h"), or NULL for -o - */
    const char *command_line; /* for the banner */
    const float *weights;     /* baked weights (PARAM_COUNT floats), or NULL */
    bool main;                /* add main() */
    bool no_train;
    bool inline_all; /* a small model's one version: every layer inlined into
                               * predict_ws, the activations in a local arena */
    bool profile;    /* --profile: count each layer's calls and time (cnnrt_profile_count) */
    /* --quantize: an int8 predictor (docs/int8.md) of this plan and its
     * constants; NULL for a float one. */
    const QuantPlan *qplan;
    const QuantWeights *qweights;
} EmitOptions;

/* Whether --vector-width auto writes a model as one inlined version
 * (EmitOptions.inline_all): so few FLOPs that vectors, clones and calls
 * cost more than they save. */
bool emit_small_model(const Model *m);

/* --vector-width auto: the C backend's instruction-set clones, best
 * first.  Each is the model lowered with its own vector width and
 * register count; the generated C compiles those its compiler and target
 * can build and picks one at run time (emit_c.c). */
typedef struct {
    const char *name;     /* PREFIX_isa() and CNNGEN_ISA call it so */
    int lanes, registers; /* the lowering's vector width and register count */
    int dot_offset;       /* an int8 clone's IRE_VDOT4 offset */
} EmitClone;

enum { EMIT_CLONE_COUNT = 4 };
extern const EmitClone emit_clones[EMIT_CLONE_COUNT];
/* An int8 predictor's clones (docs/int8.md), best first: AVX-512 VNNI,
 * AVX2, the Cortex-M DSP extension's SMLAD, plain loops; lanes count
 * int32 sums. */
enum { EMIT_QCLONE_COUNT = 4, EMIT_QCLONE_DSP = 2 };
extern const EmitClone emit_clones_q[EMIT_QCLONE_COUNT];

/* Whether the output has training code (not with baked weights or --no-train). */
bool emit_includes_training(const Model *m, const EmitOptions *o);
/* Whether the output describes its layers to the runtime (cnnrt_layer_info:
 * for predict --dump with training, and for the profile). */
bool emit_describes_layers(const Model *m, const EmitOptions *o);
/* cnnrt_layer_info's fields that take working out: where eval_batch
 * leaves layer i's output (-1: the input's storage, or no training), and
 * the layer whose inference function computes it (-1: none, it shares
 * its input's storage). */
int64_t emit_layer_values(const Model *m, int i, bool training);
int emit_layer_function(const Model *m, int i);
/* Element j of a parameter tensor's starting value in the output. */
float emit_param_value(const Param *p, const EmitOptions *o, int64_t j);
/* The runtime's enum values (cnnrt.h) for what the model names, and their names in C. */
int emit_runtime_init(const Param *p, const char **name);
int emit_runtime_loss(Loss loss, const char **name);
int emit_runtime_metric(Metric metric, const char **name);

#endif
