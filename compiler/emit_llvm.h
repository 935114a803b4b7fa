/* emit_llvm.h - the LLVM backend: prints the same loop IR as emit_c, as
 * LLVM IR built through the LLVM-C API, optimised by LLVM's own pipeline,
 * then written as text (.ll) or as a native object.  The object defines
 * the C backend's public symbols with the same ABI, so the same OUT.h
 * (emit_c_header) and the same runtime work with it.
 *
 * Built only with CNNGEN_HAVE_LLVM (CMake option CNNGEN_LLVM), as a module
 * of its own that cnngen loads when it needs it (llvm_plugin.h).
 */
#ifndef CNNGEN_EMIT_LLVM_H
#define CNNGEN_EMIT_LLVM_H

#include <stdbool.h>
#include <stddef.h>

#include "emit.h"
#include "graph.h"
#include "ir.h"

typedef enum { LLVM_EMIT_IR, LLVM_EMIT_OBJECT } LlvmEmitKind;

typedef struct {
    LlvmEmitKind kind;
    const char *target; /* a triple; NULL: this machine, with its CPU's features */
    const char *cpu;    /* with a target: its CPU (cortex-m7); NULL: the triple's default */
    bool contract;      /* a * b + c as llvm.fmuladd (fused where the target has FMA) */
} LlvmOptions;

/* Floats per vector for this machine's CPU: 16 with AVX-512 (F and VL),
 * 8 with AVX2 and FMA, else 4. */
/* Whether the host CPU has AVX-512 VNNI (with BW, DQ, VL): an int8
 * object for it gets the VNNI clone's vector kernels (docs/int8.md). */
bool emit_llvm_host_has_vnni(void);
int emit_llvm_host_vector_width(void);

/* Floats per vector for TRIPLE: 0 on a 32-bit ARM (a Cortex-M has no
 * vector unit), else 4 (SSE, NEON). */
int emit_llvm_target_vector_width(const char *triple);

/* "14.0.6": the LLVM this cnngen was built with. */
const char *emit_llvm_version(void);

/* Whether objects for TRIPLE, without a CPU named, are multiversioned:
 * x86-64, where one object meant for other machines holds the AVX-512,
 * AVX2 and SSE clones and picks one at run time, as the C output does. */
bool emit_llvm_target_multiversioned(const char *triple);

/* The module for the program (and the glue around it), optimised, as IR
 * text or an object.  nprograms is 1, or the first nprograms of
 * emit_clones lowered each with its own width: a multiversioned object.
 * Returns the bytes (malloc'd, *len of them), or NULL with a message in
 * *error (malloc'd). */
char *emit_llvm(const Model *m, const IrProgram *programs, int nprograms, const EmitOptions *o,
                const LlvmOptions *lo, size_t *len, char **error);

/* The backend's entry points as cnngen calls them: one table, the one
 * symbol (LLVM_BACKEND_SYMBOL) the module cnngen-llvm.so exports
 * (llvm_plugin.h loads it). */
typedef struct {
    const char *(*version)(void);
    bool (*host_has_vnni)(void);
    int (*host_vector_width)(void);
    int (*target_vector_width)(const char *triple);
    bool (*target_multiversioned)(const char *triple);
    char *(*emit)(const Model *m, const IrProgram *programs, int nprograms, const EmitOptions *o,
                  const LlvmOptions *lo, size_t *len, char **error);
} LlvmBackend;
#define LLVM_BACKEND_SYMBOL "cnngen_llvm_backend"

/* The fields of cnnrt_model as the glue lays it out for this machine:
 * each field's offset in offsets (at most max), the size in *size.
 * Returns the number of fields, or -1 where LLVM has no target here. */
int emit_llvm_model_layout(unsigned long long *offsets, int max, unsigned long long *size);
/* The same for cnnrt_layer_info (PREFIX_layers, what predict --dump reads). */
int emit_llvm_layer_info_layout(unsigned long long *offsets, int max, unsigned long long *size);

#endif
