/* main.c - the cnngen command line.
 *
 *   cnngen MODEL.cnn -o OUT.c [options]     writes OUT.c and OUT.h
 *   cnngen MODEL.cnn --summary [--json]     layer table, no code
 *   cnngen MODEL.cnn --check                diagnostics only
 *
 * Exit status: 0 success; 1 errors in the model or weights; 2 wrong use,
 * unreadable or unwritable file.
 */
#define _DEFAULT_SOURCE /* readlink, realpath */
#include <errno.h>
#include <sys/stat.h>
#include <limits.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "compile.h"
#include "diagram.h"
#include "filters.h"
#include "util.h"
#include "diag.h"
#include "emit_c.h"
#include "llvm_plugin.h"
#ifdef CNNGEN_HAVE_ONNX
#include "onnx.h"
static const bool onnx_built_in = true;
#else
static const bool onnx_built_in = false;
#endif
#include "source.h"
#include "quant.h"
#include "sema.h"
#include "summary.h"

#ifndef CNNGEN_VERSION
#define CNNGEN_VERSION "0.1.0"
#endif
#ifndef CNNGEN_BUILD_DIR
#define CNNGEN_BUILD_DIR "."
#define CNNGEN_SOURCE_DIR "."
#define CNNGEN_INSTALL_LIBDIR "lib"
#define CNNGEN_INSTALL_INCLUDEDIR "include"
#endif

typedef enum {
    EMIT_C,
    EMIT_LLVM,
    EMIT_OBJ,
    EMIT_DOT,
    EMIT_SVG,
    EMIT_PNG,
    EMIT_FILTERS,
    EMIT_ONNX
} EmitKind;

/* the file name extension of each; the diagrams are EMIT_DOT to EMIT_PNG,
 * and EMIT_FILTERS writes a directory of pictures */
static const char *const emit_names[] = {"c",   "llvm", "obj",     "dot",
                                         "svg", "png",  "filters", "onnx"};
static const char *const emit_extensions[] = {"c", "ll", "o", "dot", "svg", "png", "", "onnx"};

typedef struct {
    const char *model;
    const char *output;
    const char *weights;
    const char *quantize; /* --quantize: the calibrated ranges */
    const char *prefix;
    const char *depfile;
    const char *target; /* --target: an LLVM triple */
    const char *cpu;    /* --cpu: the target's CPU */
    bool no_contract;   /* --fp-contract=off: no fused multiply-adds (LLVM) */
    bool fp_contract_given;
    EmitKind emit;
    int vector_width;     /* floats per vector in register blocks; 0: none; -1: auto */
    int vector_registers; /* the target's vector registers; 0: from the width */
    bool summary, json, check, no_train, main, md, cflags, libs, profile;
    const LlvmBackend *llvm; /* loaded for --emit=llvm|obj (llvm_plugin.h) */
} Options;

static const char usage_text[] =
    "usage: cnngen MODEL.cnn -o OUT.c [options]\n"
    "       cnngen import MODEL.onnx [-o OUT.cnn] [--input-layout nchw|nhwc]\n"
    "       cnngen MODEL.cnn --summary [--json]\n"
    "       cnngen MODEL.cnn --check\n"
    "\n"
    "options:\n"
    "  -o FILE            write FILE.c and FILE.h (-o - writes the C to stdout);\n"
    "                     FILE.ll or FILE.o with --emit=llvm or obj\n"
    "  --emit=c|llvm|obj  C source (default), LLVM IR text, or a native object\n"
    "  --emit=dot|svg|png the network as a diagram (Graphviz; FILE.dot, .svg, .png)\n"
    "  --emit=filters     each convolution's kernels as a PNG, in the directory -o DIR\n"
    "  --emit=onnx        the model and its weights as ONNX (opset 13; FILE.onnx)\n"
    "  --target TRIPLE    with --emit=llvm|obj: for this target (default: this machine)\n"
    "  --cpu NAME         with --target: its CPU (cortex-m7; default: the triple's)\n"
    "  --fp-contract=on|off  with --emit=llvm|obj: fuse multiply-adds where the\n"
    "                     target can (on, default, as clang) or never (off)\n"
    "  --summary          print the layer table, FLOPs and memory; no code\n"
    "  --json             with --summary: the same as a JSON object\n"
    "  --check            print the model's errors and warnings only\n"
    "  --weights W        bake the weights of W.safetensors into the output\n"
    "  --quantize RANGES  an int8 predictor (with --weights), or with --summary\n"
    "                     its plan, from the ranges PROG calibrate saved (docs/int8.md)\n"
    "  --no-train         emit inference only\n"
    "  --main             add a main() (predict, train, eval)\n"
    "  --profile          count each layer's time: predict/train --profile print it\n"
    "  --prefix NAME      prefix of every public symbol (default: the model's name)\n"
    "  --vector-width N   floats per vector in register blocks: auto (default: C\n"
    "                     for every x86-64 instruction set, picked at run time;\n"
    "                     LLVM for the host), 16 (AVX-512), 8 (AVX2), 4 (SSE,\n"
    "                     NEON) or 0 (plain loops only)\n"
    "  --vector-registers N  the target's vector registers (16; 32 with width 16)\n"
    "  -MD, -MF FILE      also write a make-style dependency file\n"
    "  --cflags, --libs   flags to build generated code against the runtime\n"
    "  --version, --help\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "cnngen: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(cnngen --help lists the options)\n");
    return 2;
}

/* An option's value: "--opt=VALUE" or "--opt VALUE". */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (strcmp(argv[*i], name) == 0 && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static bool is_option(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static bool is_c_identifier(const char *s)
{
    if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
        return false;
    for (s++; *s; s++)
        if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

/* Where this cnngen's runtime header, libraries and LLVM module are: the
 * build tree it sits in, or the prefix it is installed in (found from the
 * executable's own path, so an install can be moved).  False after
 * saying why. */
typedef struct {
    char include[4200], libdir[4200], modules[4200];
} InstallDirs;

static bool find_install_dirs(InstallDirs *d)
{
    char exe[4096], build[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "cnngen: error: cannot find where cnngen is installed\n");
        return false;
    }
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0'; /* the directory cnngen is in */
    if (realpath(CNNGEN_BUILD_DIR, build) && strcmp(build, exe) == 0) {
        snprintf(d->include, sizeof d->include, "%s/runtime/include", CNNGEN_SOURCE_DIR);
        snprintf(d->libdir, sizeof d->libdir, "%s", CNNGEN_BUILD_DIR);
        snprintf(d->modules, sizeof d->modules, "%s", CNNGEN_BUILD_DIR);
        return true;
    }
    char *slash = strrchr(exe, '/'); /* PREFIX/bin -> PREFIX */
    if (slash)
        *slash = '\0';
    snprintf(d->include, sizeof d->include, "%s/%s", exe, CNNGEN_INSTALL_INCLUDEDIR);
    snprintf(d->libdir, sizeof d->libdir, "%s/%s", exe, CNNGEN_INSTALL_LIBDIR);
    snprintf(d->modules, sizeof d->modules, "%s/%s/cnngen", exe, CNNGEN_INSTALL_LIBDIR);
    return true;
}

/* --cflags and --libs, as llvm-config gives them. */
static int print_build_flags(bool cflags, bool libs)
{
    InstallDirs d;
    if (!find_install_dirs(&d))
        return 2;
    if (cflags)
        printf("-I%s%s", d.include, libs ? " " : "\n");
    /* The static library by name: the program then runs without a search
     * path for a shared one. */
    if (libs)
        printf("%s/libcnnrt.a -lz -lm\n", d.libdir);
    return 0;
}

/* The LLVM backend, or NULL after saying why it cannot be loaded. */
static const LlvmBackend *load_llvm(const Options *o)
{
#ifdef CNNGEN_HAVE_LLVM
    (void)o;
    InstallDirs d;
    if (!find_install_dirs(&d))
        return NULL;
    char *error = NULL;
    const LlvmBackend *llvm = llvm_plugin_load(d.modules, &error);
    if (!llvm) {
        fprintf(stderr, "cnngen: error: %s\n", error);
        free(error);
    }
    return llvm;
#else
    if (o)
        fprintf(stderr,
                "cnngen: error: --emit=%s needs the LLVM backend, and this cnngen was "
                "built without LLVM\n",
                o->emit == EMIT_LLVM ? "llvm" : "obj");
    return NULL;
#endif
}

/* --version: with the LLVM the backend was built with (loading it). */
static void print_version(void)
{
    printf("cnngen %s (LLVM backend: ", CNNGEN_VERSION);
#ifdef CNNGEN_HAVE_LLVM
    const LlvmBackend *llvm = load_llvm(NULL);
    if (llvm)
        printf("LLVM %s; ", llvm->version());
    else
        printf("built in, but its module cannot be loaded; ");
#else
    printf("not built in; ");
#endif
    printf("ONNX: %s)\n", onnx_built_in ? "import and export" : "not built in");
}

/* Returns -1 when the options are fine, else the exit status. */
static int parse_options(int argc, char **argv, Options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            print_version();
            return 0;
        } else if (strcmp(a, "-o") == 0) {
            if (i + 1 >= argc)
                return usage_error("%s needs a file name", a);
            o->output = argv[++i];
        } else if (strncmp(a, "-o", 2) == 0 && a[2] != '\0' && strcmp(a, "-o") != 0) {
            o->output = a + 2;
        } else if (is_option(a, "--emit")) {
            if (!(v = option_value(argc, argv, &i, "--emit")))
                return usage_error("%s needs c, llvm, obj, dot, svg, png, filters or onnx", a);
            int k = 0;
            while (k <= EMIT_ONNX && strcmp(v, emit_names[k]) != 0)
                k++;
            if (k > EMIT_ONNX)
                return usage_error(
                    "--emit takes c, llvm, obj, dot, svg, png, filters or onnx, not '%s'", v);
            o->emit = (EmitKind)k;
        } else if (is_option(a, "--target")) {
            if (!(v = option_value(argc, argv, &i, "--target")))
                return usage_error("%s needs a target triple", a);
            o->target = v;
        } else if (is_option(a, "--cpu")) {
            if (!(v = option_value(argc, argv, &i, "--cpu")))
                return usage_error("%s needs a CPU name", a);
            o->cpu = v;
        } else if (is_option(a, "--fp-contract")) {
            if (!(v = option_value(argc, argv, &i, "--fp-contract")))
                return usage_error("%s needs on or off", a);
            if (strcmp(v, "on") && strcmp(v, "off"))
                return usage_error("--fp-contract takes on or off, not '%s'", v);
            o->no_contract = strcmp(v, "off") == 0;
            o->fp_contract_given = true;
        } else if (is_option(a, "--weights")) {
            if (!(v = option_value(argc, argv, &i, "--weights")))
                return usage_error("%s needs a file name", a);
            o->weights = v;
        } else if (is_option(a, "--quantize")) {
            if (!(v = option_value(argc, argv, &i, "--quantize")))
                return usage_error("%s needs a file name", a);
            o->quantize = v;
        } else if (is_option(a, "--prefix")) {
            if (!(v = option_value(argc, argv, &i, "--prefix")))
                return usage_error("%s needs a name", a);
            if (!is_c_identifier(v))
                return usage_error("--prefix takes a C identifier, not '%s'", v);
            o->prefix = v;
        } else if (is_option(a, "--vector-width")) {
            if (!(v = option_value(argc, argv, &i, "--vector-width")))
                return usage_error("%s needs auto, 0, 4, 8 or 16", a);
            if (strcmp(v, "auto") && strcmp(v, "0") && strcmp(v, "4") && strcmp(v, "8") &&
                strcmp(v, "16"))
                return usage_error("--vector-width takes auto, 0, 4, 8 or 16, not '%s'", v);
            o->vector_width = strcmp(v, "auto") ? atoi(v) : -1;
        } else if (is_option(a, "--vector-registers")) {
            if (!(v = option_value(argc, argv, &i, "--vector-registers")))
                return usage_error("%s needs a number", a);
            o->vector_registers = atoi(v);
            if (o->vector_registers < 4 || o->vector_registers > 64)
                return usage_error("--vector-registers takes 4 to 64, not '%s'", v);
        } else if (strcmp(a, "-MF") == 0) {
            if (i + 1 >= argc)
                return usage_error("%s needs a file name", a);
            o->depfile = argv[++i];
        } else if (strcmp(a, "-MD") == 0) {
            o->md = true;
        } else if (strcmp(a, "--summary") == 0) {
            o->summary = true;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--check") == 0) {
            o->check = true;
        } else if (strcmp(a, "--no-train") == 0) {
            o->no_train = true;
        } else if (strcmp(a, "--main") == 0) {
            o->main = true;
        } else if (strcmp(a, "--profile") == 0) {
            o->profile = true;
        } else if (strcmp(a, "--cflags") == 0) {
            o->cflags = true;
        } else if (strcmp(a, "--libs") == 0) {
            o->libs = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option '%s'", a);
        } else if (o->model) {
            return usage_error("one model file at a time ('%s' is a second one)", a);
        } else {
            o->model = a;
        }
    }
    return -1;
}

/* Read, check and compile the model; prints its diagnostics.  Returns
 * the model, or NULL with *status set. */
static Model *load_model(const Options *o, Source *src, Diag **diag, int *status)
{
    if (!source_read(o->model, src)) {
        fprintf(stderr, "cnngen: error: cannot read '%s': %s\n", o->model, strerror(errno));
        *status = 2;
        return NULL;
    }
    int line, col;
    if (source_find_bad_utf8(src, &line, &col)) {
        fprintf(stderr, "%s:%d:%d: error: the file is not valid UTF-8\n", o->model, line, col);
        *status = 1;
        return NULL;
    }
    *diag = diag_new(o->model, src->text, src->text_len);
    /* --check stops after the check; the rest needs the plans too */
    Model *m = o->check && !o->summary ? compile_check(o->model, src->text, src->text_len, *diag)
                                       : compile_source(o->model, src->text, src->text_len, *diag);
    diag_report(*diag, stderr, true);
    *status = m ? 0 : 1;
    return m;
}

/* OUT.c and OUT.h from -o OUT.c (or -o OUT); OUT.ll or OUT.o for LLVM. */
static void output_names(const char *output, const char *ext, char **code_path, char **h_path,
                         char **h_name)
{
    size_t len = strlen(output), n = strlen(ext);
    if (len > n + 1 && output[len - n - 1] == '.' && strcmp(output + len - n, ext) == 0)
        len -= n + 1;
    *code_path = xmalloc(len + n + 2);
    *h_path = xmalloc(len + 3);
    snprintf(*code_path, len + n + 2, "%.*s.%s", (int)len, output, ext);
    snprintf(*h_path, len + 3, "%.*s.h", (int)len, output);
    const char *slash = strrchr(*h_path, '/');
    *h_name = xstrdup(slash ? slash + 1 : *h_path);
}

/* The spec'd tensors of a safetensors file, count floats; NULL after
 * saying why (and the exit status in *status).  Takes specs. */
static float *load_tensors(const char *path, cnnrt_tensor_spec *specs, int n, int64_t count,
                           int *status)
{
    float *values = xcalloc((size_t)count + 1, sizeof *values);
    char error[1024];
    int rc = cnnrt_load_safetensors(path, specs, n, values, (long)count, error, sizeof error);
    free(specs);
    if (rc != 0) {
        fprintf(stderr, "%s\n", error);
        *status = cnnrt_exit_status(rc);
        free(values);
        return NULL;
    }
    return values;
}

static cnnrt_tensor_spec *param_specs(const Model *m);

/* A model that trains with quantize = int8 keeps its ranges in its
 * observers (NAME.quantize: min, max, seen): from weights it saved, the
 * ranges of the nodes the int8 plan reads (the others 0, 0); NULL, and
 * nothing said, when path holds no such weights. */
static float *observed_ranges(const Model *m, const char *path, int *status)
{
    float *params = xcalloc((size_t)m->param_floats + 1, sizeof *params);
    cnnrt_tensor_spec *specs = param_specs(m);
    char error[1024];
    int rc = cnnrt_load_safetensors(path, specs, m->nparams, params, (long)m->param_floats, error,
                                    sizeof error);
    free(specs);
    if (rc != 0) {
        free(params);
        return NULL;
    }
    float *ranges = xcalloc(2 * (size_t)m->nlayers + 2, sizeof *ranges);
    for (int k = 0; k <= m->nlayers; k++) {
        const Param *obs = m->qat.observer[k];
        if (!obs)
            continue;
        const float *v = params + obs->offset;
        if (v[2] != 1 || !(v[0] <= v[1])) {
            fprintf(stderr, "%s: error: '%s' holds no range: train with quantize = int8 first\n",
                    path, obs->name);
            *status = cnnrt_exit_status(CNNRT_EBAD);
            free(ranges);
            ranges = NULL;
            break;
        }
        ranges[2 * k] = v[0];
        ranges[2 * k + 1] = v[1];
    }
    free(params);
    return ranges;
}

/* The calibrated ranges of --quantize: min and max of the input, then of
 * each layer's output (ranges[2 * node]), as PROG calibrate saves them;
 * or a model's observers, from the weights quantization-aware training
 * saved. */
static float *load_ranges(const Model *m, const char *path, int *status)
{
    if (m->qat.observer) {
        float *ranges = observed_ranges(m, path, status);
        if (ranges || *status)
            return ranges;
    }
    cnnrt_tensor_spec *specs = xcalloc((size_t)m->nlayers + 1, sizeof *specs);
    for (int k = 0; k <= m->nlayers; k++)
        specs[k] = (cnnrt_tensor_spec){k ? m->layers[k - 1]->name : "input", 1, {2}, 2L * k};
    float *ranges = load_tensors(path, specs, m->nlayers + 1, 2L * m->nlayers + 2, status);
    for (int k = 0; ranges && k <= m->nlayers; k++)
        if (!(ranges[2 * k] <= ranges[2 * k + 1])) {
            fprintf(stderr, "%s: error: the range of '%s' ends below its start\n", path,
                    k ? m->layers[k - 1]->name : "input");
            *status = cnnrt_exit_status(CNNRT_EBAD);
            free(ranges);
            return NULL;
        }
    return ranges;
}

/* --summary, and with --quantize the int8 plan. */
static int print_summary(const Options *o, const Model *m, Diag *diag)
{
    int status = 0;
    float *ranges = o->quantize ? load_ranges(m, o->quantize, &status) : NULL;
    if (status)
        return status;
    Arena arena = {0};
    QuantPlan plan;
    bool quantized = ranges && quant_plan(diag, m, ranges, &arena, &plan);
    if (ranges && !quantized) {
        diag_report(diag, stderr, false);
        status = 1;
    }
    if (status == 0) {
        SummaryBoard board = summary_board(m);
        if (o->json)
            summary_print_json(m, &board, quantized ? &plan : NULL, stdout);
        else
            summary_print(m, &board, quantized ? &plan : NULL, stdout);
    }
    arena_free(&arena);
    free(ranges);
    return status;
}

/* The model's tensors, as its weights files hold them. */
static cnnrt_tensor_spec *param_specs(const Model *m)
{
    cnnrt_tensor_spec *specs = xcalloc((size_t)m->nparams + 1, sizeof *specs);
    for (int k = 0; k < m->nparams; k++) {
        const Param *p = m->params[k];
        specs[k].name = p->name;
        specs[k].rank = p->shape.rank;
        for (int d = 0; d < p->shape.rank; d++)
            specs[k].shape[d] = (int)p->shape.dim[d];
        specs[k].offset = (long)p->offset;
    }
    return specs;
}

/* The weights to bake, in the parameter block's order. */
static float *load_baked_weights(const Model *m, const char *path, int *status)
{
    return load_tensors(path, param_specs(m), m->nparams, m->param_floats, status);
}

/* Whether the file at path holds exactly text already: a regular file
 * (reading a pipe there would wait for a writer) of the same size and
 * bytes, compared whole (an object file holds NUL bytes, which end
 * source_read's text). */
static bool holds_text(const char *path, const char *text, size_t len)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != len)
        return false;
    FILE *f = fopen(path, "rb");
    char *old = f ? xmalloc(len + 1) : NULL;
    bool same = f && fread(old, 1, len, f) == len && memcmp(old, text, len) == 0;
    free(old);
    if (f)
        fclose(f);
    return same;
}

typedef struct {
    const char *path, *text;
    size_t len;
} OutputFile;

/* The outputs as one (cnnrt_stage_file): every file whose text changed is
 * written whole beside its target, and only when all are written are
 * they renamed into place, so a failure (a full disk) leaves the old .c
 * and .h as a matching pair.  A file that holds its text already is not
 * touched: a build system then rebuilds nothing for a model that compiles
 * to the same code (the header survives most edits unchanged). */
static int write_outputs(const OutputFile *files, int n)
{
    char *staged[4] = {NULL, NULL, NULL, NULL};
    char error[4200];
    int status = 0;
    for (int i = 0; i < n && status == 0; i++)
        if (!holds_text(files[i].path, files[i].text, files[i].len) &&
            cnnrt_stage_file(files[i].path, files[i].text, files[i].len, &staged[i], error,
                             sizeof error) != 0)
            status = 2;
    for (int i = 0; i < n; i++) {
        if (status != 0)
            cnnrt_discard_file(staged[i]);
        else if (staged[i] && cnnrt_commit_file(files[i].path, staged[i], error, sizeof error))
            status = 2;
    }
    if (status != 0)
        fprintf(stderr, "cnngen: %s\n", error);
    return status;
}

static const char *output_extension(const Options *o)
{
    return emit_extensions[o->emit];
}

static bool emits_llvm(const Options *o)
{
    return o->emit == EMIT_LLVM || o->emit == EMIT_OBJ;
}

/* --emit=filters: the convolutions' kernels as pictures, from --weights
 * or, for hand-made filters, the model's own literal weights. */
static int write_filters(const Options *o, const Model *m)
{
    int status = 0;
    float *params = NULL;
    if (o->weights && !(params = load_baked_weights(m, o->weights, &status)))
        return status;
    bool *learned = xcalloc((size_t)m->nlayers + 1, sizeof *learned);
    if (!params) {
        /* without --weights: only the hand-made filters are known */
        EmitOptions eo = {0};
        params = xcalloc((size_t)m->param_floats + 1, sizeof *params);
        for (int k = 0; k < m->nparams; k++) {
            const Param *p = m->params[k];
            learned[p->layer] |=
                p == &m->layers[p->layer]->params[0] && !p->literal && p->init != INIT_ONES;
            for (int64_t j = 0; j < shape_size(&p->shape); j++)
                params[p->offset + j] = emit_param_value(p, &eo, j);
        }
    }
    char error[1024];
    if ((status = filters_write(m, params, learned, o->output, error, sizeof error)) != 0)
        fprintf(stderr, "cnngen: error: %s\n", error);
    free(learned);
    free(params);
    return status;
}

/* --emit=onnx: the model with the weights of --weights or, without, the
 * ones its program starts from (the literals, the init rules with the
 * train block's seed), as predict without --weights uses. */
static int write_onnx(const Options *o, const Model *m)
{
#ifdef CNNGEN_HAVE_ONNX
    int status = 0;
    float *params = NULL;
    if (o->weights && !(params = load_baked_weights(m, o->weights, &status)))
        return status;
    if (!params) {
        EmitOptions eo = {0};
        params = xcalloc((size_t)m->param_floats + 1, sizeof *params);
        cnnrt_init_spec *specs = xcalloc((size_t)m->nparams + 1, sizeof *specs);
        for (int k = 0; k < m->nparams; k++) {
            const Param *p = m->params[k];
            for (int64_t j = 0; j < shape_size(&p->shape); j++)
                params[p->offset + j] = emit_param_value(p, &eo, j);
            specs[k] = (cnnrt_init_spec){(long)p->offset, (long)shape_size(&p->shape),
                                         emit_runtime_init(p, &(const char *){NULL}),
                                         (long)p->fan_in, (long)p->fan_out};
        }
        cnnrt_init_params(specs, m->nparams, params, (unsigned long long)m->train.seed);
        free(specs);
    }
    unsigned char *bytes = NULL;
    size_t len = 0;
    status = onnx_export(m, params, CNNGEN_VERSION, &bytes, &len);
    free(params);
    if (status == 0 && strcmp(o->output, "-") == 0) {
        status = fwrite(bytes, 1, len, stdout) == len ? 0 : 2;
    } else if (status == 0) {
        char *path, *h_path, *h_name;
        output_names(o->output, output_extension(o), &path, &h_path, &h_name);
        status = write_outputs(&(OutputFile){path, (char *)bytes, len}, 1);
        free(path);
        free(h_path);
        free(h_name);
    }
    free(bytes);
    return status;
#else
    (void)o;
    (void)m;
    return 2; /* main said why before reading the model */
#endif
}

/* --emit=dot|svg|png: the network as a picture, written whole as the code
 * is (or to stdout with -o -). */
static int write_diagram(const Options *o, const Model *m)
{
    char *dot = NULL, *bytes = NULL;
    size_t len = 0, n = 0;
    FILE *f = open_memstream(&dot, &len);
    if (!f) {
        fprintf(stderr, "cnngen: error: out of memory\n");
        return 2;
    }
    diagram_print_dot(m, f);
    fclose(f);
    int status = 0;
    char error[512];
    if (o->emit == EMIT_DOT) {
        bytes = dot, n = len, dot = NULL;
    } else if ((status = diagram_render(dot, len, output_extension(o), &bytes, &n, error,
                                        sizeof error)) != 0) {
        fprintf(stderr, "cnngen: error: %s\n", error);
    }
    if (status == 0 && strcmp(o->output, "-") == 0) {
        status = fwrite(bytes, 1, n, stdout) == n ? 0 : 2;
    } else if (status == 0) {
        char *path, *h_path, *h_name;
        output_names(o->output, output_extension(o), &path, &h_path, &h_name);
        status = write_outputs(&(OutputFile){path, bytes, n}, 1);
        free(path);
        free(h_path);
        free(h_name);
    }
    free(bytes);
    free(dot);
    return status;
}

/* Whether two paths name one existing file. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* An output that would be written over an input ("m.c -o m.c", -MF
 * naming the model) is refused before anything is written. */
static int check_outputs(const Options *o)
{
    if (!o->output || strcmp(o->output, "-") == 0)
        return 0;
    char *paths[3] = {NULL, NULL, (char *)o->depfile}, *h_name = NULL;
    output_names(o->output, output_extension(o), &paths[0], &paths[1], &h_name);
    int status = 0;
    for (int i = 0; i < 3 && !status; i++) {
        const char *input = same_file(paths[i], o->model)     ? o->model
                            : same_file(paths[i], o->weights) ? o->weights
                                                              : NULL;
        if (input) {
            fprintf(stderr, "cnngen: error: '%s' would be written over the input '%s'\n", paths[i],
                    input);
            status = 2;
        }
    }
    free(paths[0]);
    free(paths[1]);
    free(h_name);
    return status;
}

static char *command_line(int argc, char **argv)
{
    StrBuf b = {0};
    strbuf_printf(&b, "cnngen");
    for (int i = 1; i < argc; i++)
        strbuf_printf(&b, " %s", argv[i]);
    /* The banner is a C comment: keep the command from closing it. */
    for (char *p = strstr(b.data, "*/"); p; p = strstr(p, "*/"))
        p[1] = '|';
    return b.data;
}

/* The dependency file's name (-MF, or OUT.d beside OUT.c, OUT.ll, OUT.o)
 * and its text: one target (ninja reads no more; the header is made with
 * it), then the inputs as targets of their own. */
static char *dependencies(const Options *o, const char *c_path, char **path)
{
    if (o->depfile) {
        *path = xstrdup(o->depfile);
    } else {
        const char *dot = strrchr(c_path, '.');
        size_t len = (size_t)(dot - c_path);
        *path = xmalloc(len + 3);
        snprintf(*path, len + 3, "%.*s.d", (int)len, c_path);
    }
    StrBuf b = {0};
    strbuf_printf(&b, "%s: %s%s%s\n", c_path, o->model, o->weights ? " " : "",
                  o->weights ? o->weights : "");
    strbuf_printf(&b, "%s:\n", o->model);
    if (o->weights)
        strbuf_printf(&b, "%s:\n", o->weights);
    return b.data;
}

/* The output file's bytes: C, LLVM IR text or an object. */
static char *generate_code(const Options *o, const Model *m, const IrProgram *programs,
                           int nprograms, const EmitOptions *eo, size_t *len, int *status)
{
    if (o->emit == EMIT_C) {
        char *text = NULL;
        FILE *c = open_memstream(&text, len);
        if (!c) {
            fprintf(stderr, "cnngen: error: out of memory\n");
            exit(2);
        }
        emit_c_source(c, m, programs, nprograms, eo);
        fclose(c);
        return text;
    }
    char *error = NULL;
    LlvmOptions lo = {o->emit == EMIT_LLVM ? LLVM_EMIT_IR : LLVM_EMIT_OBJECT, o->target, o->cpu,
                      !o->no_contract};
    char *code = o->llvm->emit(m, programs, nprograms, eo, &lo, len, &error);
    if (!code) {
        fprintf(stderr, "cnngen: error: %s\n", error);
        free(error);
        *status = 2;
    }
    return code;
}

/* --vector-width auto through LLVM for an x86-64 target without a CPU
 * named: one object for machines unknown, with the AVX-512, AVX2 and SSE
 * clones of the C output, one picked at run time. */
static bool llvm_multiversioned(const Options *o)
{
    return o->emit != EMIT_C && o->vector_width < 0 && o->target && !o->cpu &&
           o->llvm->target_multiversioned(o->target);
}

/* --vector-width auto through LLVM: what the host's CPU has, or the
 * target's: 4 floats (SSE, NEON), none on a 32-bit ARM (a Cortex-M). */
static int llvm_vector_width(const Options *o)
{
    return o->target ? o->llvm->target_vector_width(o->target) : o->llvm->host_vector_width();
}

/* Whether an int8 object is for this machine (the LLVM backend, no
 * --target, the vector width auto) and the machine has AVX-512 VNNI. */
static bool llvm_host_vnni(const Options *o)
{
    return o->emit != EMIT_C && !o->target && o->vector_width < 0 && o->llvm->host_has_vnni();
}

/* --quantize: the int8 plan of the model from the ranges, its constants
 * from the baked weights, and its one lowering; false after saying why. */
static bool lower_quantized(const Options *o, const Model *m, const float *weights, Diag *diag,
                            Arena *arena, QuantPlan *plan, QuantWeights *qw, IrProgram *programs,
                            int *nprograms, int *status)
{
    float *ranges = load_ranges(m, o->quantize, status);
    if (!ranges)
        return false;
    bool planned = quant_plan(diag, m, ranges, arena, plan);
    free(ranges);
    if (!planned) {
        diag_report(diag, stderr, false);
        *status = 1;
        return false;
    }
    quant_weights(m, plan, weights, arena, qw);
    /* C: a lowering per clone, chosen at run time; an LLVM object for
     * this machine: the VNNI kernels where it has them, else (and for
     * other targets) the plain loops */
    *nprograms = o->emit == EMIT_C && o->vector_width < 0 ? EMIT_QCLONE_COUNT : 1;
    for (int k = 0; k < *nprograms; k++) {
        const EmitClone *clone = &emit_clones_q[*nprograms > 1 ? k : EMIT_QCLONE_COUNT - 1];
        if (llvm_host_vnni(o))
            clone = &emit_clones_q[0];
        CompileOptions co = {clone->lanes, clone->registers, false, *nprograms > 1, false};
        compile_lower_q(m, plan, qw, &co, clone->dot_offset, &programs[k]);
    }
    return true;
}

static int generate(const Options *o, const Model *m, Diag *diag, int argc, char **argv)
{
    int status = 0;
    if (model_static_bytes(m, false) > MODEL_MAX_STATIC_BYTES) {
        fprintf(stderr,
                "%s: error: the model needs %lld bytes of static memory (its activations "
                "%lld), more than the limit of %lld: a program's static data past 2 GB does "
                "not link\n",
                o->model, (long long)model_static_bytes(m, false),
                (long long)mul_sat(4, m->arena_floats), (long long)MODEL_MAX_STATIC_BYTES);
        return 1;
    }
    float *weights = NULL;
    if (o->weights && !(weights = load_baked_weights(m, o->weights, &status)))
        return status;
    IrProgram programs[EMIT_CLONE_COUNT];
    memset(programs, 0, sizeof programs);
    int nprograms = 1;
    bool train = false, want_train = !o->weights && !o->no_train;
    bool inline_all =
        !o->quantize && o->vector_width < 0 && o->emit == EMIT_C && emit_small_model(m);
    Arena qarena = {0};
    QuantPlan plan;
    QuantWeights qw;
    if (o->quantize) {
        if (!lower_quantized(o, m, weights, diag, &qarena, &plan, &qw, programs, &nprograms,
                             &status)) {
            arena_free(&qarena);
            free(weights);
            ir_program_free(&programs[0]);
            return status;
        }
    } else if (inline_all) {
        /* one version in plain loops, every layer inlined (emit_small_model) */
        CompileOptions co = {0, 16, want_train, !o->profile, true};
        train = compile_lower(m, &co, &programs[0]);
    } else if (o->vector_width < 0 && (o->emit == EMIT_C || llvm_multiversioned(o))) {
        /* auto: one lowering per instruction-set clone (an object: but
         * plain loops, which no x86-64 needs) */
        nprograms = o->emit == EMIT_C ? EMIT_CLONE_COUNT : EMIT_CLONE_COUNT - 1;
        for (int k = 0; k < nprograms; k++) {
            CompileOptions co = {emit_clones[k].lanes, emit_clones[k].registers, want_train,
                                 !o->profile, false};
            train = compile_lower(m, &co, &programs[k]);
        }
    } else {
        int width = o->vector_width >= 0 ? o->vector_width : llvm_vector_width(o);
        CompileOptions co = {width,
                             o->vector_registers ? o->vector_registers
                             : width >= 16       ? 32
                                                 : 16,
                             want_train, !o->profile, false};
        train = compile_lower(m, &co, &programs[0]);
    }
    if (want_train && !train) /* past 2 GB of static memory, or int indexing */
        fprintf(stderr,
                "cnngen: warning: training batch %lld needs %lld bytes of static memory, "
                "%lld in all with the model's; no training code (use a smaller batch)\n",
                (long long)m->tp.batch, (long long)mul_sat(4, m->tp.floats),
                (long long)model_static_bytes(m, true));
    char *cmd = command_line(argc, argv);
    EmitOptions eo = {o->prefix ? o->prefix : m->name,
                      NULL,
                      cmd,
                      weights,
                      o->main,
                      !train,
                      inline_all,
                      o->profile,
                      o->quantize ? &plan : NULL,
                      o->quantize ? &qw : NULL};
    char *h_path = NULL, *code_path = NULL, *h_name = NULL;
    if (strcmp(o->output, "-") != 0) {
        output_names(o->output, output_extension(o), &code_path, &h_path, &h_name);
        eo.header_name = h_name;
    }
    /* Built in memory, then written as a pair where the text changed. */
    size_t code_len = 0;
    char *code = generate_code(o, m, programs, nprograms, &eo, &code_len, &status);
    if (code && !code_path) {
        if (fwrite(code, 1, code_len, stdout) != code_len)
            status = 2;
    } else if (code) {
        char *h_text = NULL;
        size_t h_len = 0;
        FILE *h = open_memstream(&h_text, &h_len);
        if (!h) {
            fprintf(stderr, "cnngen: error: out of memory\n");
            exit(2);
        }
        emit_c_header(h, m, &eo);
        fclose(h);
        /* The .h, the code and the dependency file, written as one. */
        OutputFile files[3] = {{h_path, h_text, h_len}, {code_path, code, code_len}};
        char *dep_path = NULL, *dep_text = NULL;
        if (o->md || o->depfile) {
            dep_text = dependencies(o, code_path, &dep_path);
            files[2] = (OutputFile){dep_path, dep_text, strlen(dep_text)};
        }
        status = write_outputs(files, dep_text ? 3 : 2);
        free(h_text);
        free(dep_path);
        free(dep_text);
    }
    free(code);
    free(code_path);
    free(h_path);
    free(h_name);
    free(cmd);
    free(weights);
    for (int k = 0; k < nprograms; k++)
        ir_program_free(&programs[k]);
    arena_free(&qarena);
    return status;
}

/* The model name of an imported model: its file's name, made a C
 * identifier that is not a C keyword or reserved word. */
static char *imported_model_name(const char *cnn_path)
{
    const char *base = strrchr(cnn_path, '/') ? strrchr(cnn_path, '/') + 1 : cnn_path;
    size_t len = strcspn(base, ".");
    char *name = xmalloc(len + 8);
    size_t n = 0;
    for (size_t k = 0; k < len; k++) {
        char ch = base[k];
        bool word = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_';
        if (word && !(n == 0 && ch >= '0' && ch <= '9'))
            name[n++] = ch;
        else if (n && name[n - 1] != '_')
            name[n++] = '_';
    }
    name[n] = '\0';
    if (n == 0)
        strcpy(name, "model");
    else if (sema_name_is_taken(name))
        strcat(name, "_net");
    return name;
}

/* cnngen import MODEL.onnx [-o OUT.cnn]: OUT.cnn and OUT.safetensors,
 * both written or neither. */
static int import_command(int argc, char **argv)
{
    const char *path = NULL, *output = NULL, *v;
    bool onnx_order = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            output = argv[++i];
        else if (is_option(argv[i], "--input-layout")) {
            if (!(v = option_value(argc, argv, &i, "--input-layout")) ||
                (strcmp(v, "nchw") != 0 && strcmp(v, "nhwc") != 0))
                return usage_error("%s takes nchw (ONNX's order, as the model has it) or nhwc "
                                   "(cnngen's, the default)",
                                   "--input-layout");
            onnx_order = strcmp(v, "nchw") == 0;
        } else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2])
            output = argv[i] + 2;
        else if (argv[i][0] == '-' && argv[i][1])
            return usage_error("import takes MODEL.onnx, -o OUT.cnn and --input-layout, not '%s'",
                               argv[i]);
        else if (path)
            return usage_error("import takes one model, and '%s' is a second", argv[i]);
        else
            path = argv[i];
    }
    if (!path)
        return usage_error("%s", "import needs an ONNX model: cnngen import MODEL.onnx -o OUT.cnn");
    if (!onnx_built_in) {
        fprintf(stderr, "cnngen: error: import needs ONNX support, and this cnngen was built "
                        "without it (protobuf-c and libonnx-dev; CNNGEN_ONNX)\n");
        return 2;
    }
#ifdef CNNGEN_HAVE_ONNX
    /* OUT.cnn and OUT.safetensors: from -o, else beside the model */
    const char *base = output ? output : path;
    size_t len = strlen(base);
    const char *dot = strrchr(base, '.'), *slash = strrchr(base, '/');
    if (dot && (!slash || dot > slash) &&
        (strcmp(dot, ".cnn") == 0 || (!output && strcmp(dot, ".onnx") == 0)))
        len = (size_t)(dot - base);
    char *cnn_path = xmalloc(len + 16), *weights_path = xmalloc(len + 16);
    snprintf(cnn_path, len + 16, "%.*s.cnn", (int)len, base);
    snprintf(weights_path, len + 16, "%.*s.safetensors", (int)len, base);
    const char *source = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char *name = imported_model_name(cnn_path);
    OnnxImportOptions io = {path, name, source, onnx_order};
    OnnxImport imp;
    int status = onnx_import(&io, &imp);
    if (status == ONNX_IMPORT_BUG)
        status = 1;
    if (status == 0) {
        cnnrt_tensor_spec *specs = xcalloc((size_t)imp.ntensors + 1, sizeof *specs);
        long floats = 0;
        for (int k = 0; k < imp.ntensors; k++) {
            specs[k].name = imp.tensors[k].name;
            specs[k].rank = imp.tensors[k].rank;
            specs[k].offset = floats;
            long count = 1;
            for (int d = 0; d < imp.tensors[k].rank; d++)
                count *= (long)(specs[k].shape[d] = (int)imp.tensors[k].dim[d]);
            floats += count;
        }
        float *params = xcalloc((size_t)floats + 1, sizeof *params);
        for (int k = 0; k < imp.ntensors; k++)
            memcpy(params + specs[k].offset, imp.tensors[k].values,
                   (size_t)(k + 1 < imp.ntensors ? specs[k + 1].offset - specs[k].offset
                                                 : floats - specs[k].offset) *
                       sizeof *params);
        char error[1024];
        if (cnnrt_save_safetensors(weights_path, specs, imp.ntensors, params, error,
                                   sizeof error) != 0) {
            fprintf(stderr, "cnngen: %s\n", error);
            status = 2;
        } else {
            status = write_outputs(&(OutputFile){cnn_path, imp.cnn, strlen(imp.cnn)}, 1);
            if (status != 0)
                unlink(weights_path); /* both or neither */
        }
        free(params);
        free(specs);
        onnx_import_free(&imp);
    }
    free(name);
    free(cnn_path);
    free(weights_path);
    return status;
#else
    return 2;
#endif
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "import") == 0)
        return import_command(argc, argv);
    Options o = {.vector_width = -1};
    int status = parse_options(argc, argv, &o);
    if (status >= 0)
        return status;
    if (o.cflags || o.libs)
        return print_build_flags(o.cflags, o.libs);
    if (!o.model)
        return usage_error("%s", "no model file given");
    if (o.json && !o.summary)
        return usage_error("%s", "--json goes with --summary");
    if (o.quantize && !o.summary && !o.check && !o.weights)
        return usage_error("%s", "--quantize needs --weights: the int8 kernels are made from "
                                 "them and baked in");
    if (o.quantize && !o.summary && !o.check && o.emit != EMIT_C && !emits_llvm(&o))
        return usage_error("%s", "--quantize writes C, LLVM IR or an object (--emit=c, llvm, obj)");
    if (o.quantize && o.profile)
        return usage_error("%s", "--profile goes with float code, not --quantize");
    if (o.output && (!*o.output || o.output[strlen(o.output) - 1] == '/'))
        return usage_error("-o takes a file name, not '%s'", o.output);
    if (!o.summary && !o.check && !o.output)
        return usage_error("%s", "nothing to do: give -o OUT.c, --summary or --check");
    if (o.target && !emits_llvm(&o))
        return usage_error("%s", "--target goes with --emit=llvm or --emit=obj");
    if (o.cpu && !o.target)
        return usage_error("%s", "--cpu goes with --target");
    if (o.profile && o.weights)
        return usage_error("%s", "--profile goes with code that loads its weights (the timing "
                                 "needs the runtime; without --weights, the layers' code is the "
                                 "same)");
    if (o.fp_contract_given && !emits_llvm(&o))
        return usage_error("%s", "--fp-contract goes with --emit=llvm or --emit=obj (for C, the C "
                                 "compiler's -ffp-contract decides)");
    if (emits_llvm(&o) && !o.summary && !o.check && !(o.llvm = load_llvm(&o)))
        return 2;

    if (o.emit == EMIT_ONNX && !o.summary && !o.check && !onnx_built_in) {
        fprintf(stderr, "cnngen: error: --emit=onnx needs ONNX support, and this cnngen was built "
                        "without it (protobuf-c and libonnx-dev; CNNGEN_ONNX)\n");
        return 2;
    }
    if (!o.summary && !o.check && (status = check_outputs(&o)) != 0)
        return status;
    Source src;
    Diag *diag = NULL;
    Model *m = load_model(&o, &src, &diag, &status);
    if (m && o.summary) {
        status = print_summary(&o, m, diag);
    } else if (m && !o.check && o.emit == EMIT_FILTERS) {
        status = write_filters(&o, m);
    } else if (m && !o.check && o.emit == EMIT_ONNX) {
        status = write_onnx(&o, m);
    } else if (m && !o.check && o.emit >= EMIT_DOT) {
        status = write_diagram(&o, m);
    } else if (m && !o.check) {
        status = generate(&o, m, diag, argc, argv);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "cnngen: error: cannot write the output: %s\n", strerror(errno));
        status = 2;
    }
    model_free(m);
    diag_free(diag);
    source_free(&src);
    return status;
}
