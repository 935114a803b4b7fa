/* llvm_plugin.c - loads the LLVM backend's module (llvm_plugin.h). */
#include "llvm_plugin.h"

#include <dlfcn.h>

#include "util.h"

const LlvmBackend *llvm_plugin_load(const char *dir, char **error)
{
    StrBuf path = {0};
    strbuf_printf(&path, "%s/%s", dir, LLVM_PLUGIN_FILE);
    /* RTLD_LOCAL: the module's copy of the compiler's code stays its own */
    void *module = dlopen(path.data, RTLD_NOW | RTLD_LOCAL);
    const LlvmBackend *backend = module ? dlsym(module, LLVM_BACKEND_SYMBOL) : NULL;
    if (!backend) {
        StrBuf why = {0};
        strbuf_printf(&why, "cannot load the LLVM backend %s: %s", path.data, dlerror());
        *error = why.data;
    }
    strbuf_free(&path);
    return backend;
}
