/* llvm_plugin.h - the LLVM backend (emit_llvm.h), loaded when a run
 * needs it.
 *
 * The backend is a module of its own, cnngen-llvm.so, not a part of
 * cnngen: loading libLLVM (366,000 relocations, 3,000 page faults) took
 * 65 ms of every cnngen run, and most runs never emit LLVM (a build with
 * many models; the test suite's thousands of runs).  cnngen --emit=llvm
 * or obj, and --version, load it with dlopen.
 */
#ifndef CNNGEN_LLVM_PLUGIN_H
#define CNNGEN_LLVM_PLUGIN_H

#include "emit_llvm.h"

/* The module's file name. */
#define LLVM_PLUGIN_FILE "cnngen-llvm.so"

/* The backend in DIR/cnngen-llvm.so, or NULL with why in *error
 * (malloc'd).  The module stays loaded for the rest of the run. */
const LlvmBackend *llvm_plugin_load(const char *dir, char **error);

#endif
