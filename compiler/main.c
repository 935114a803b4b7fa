/* main.c - the cnngen command line.
 *
 *   cnngen MODEL.cnn -o OUT.c [options]     writes OUT.c and OUT.h
 *   cnngen MODEL.cnn --summary [--json]     layer table, no code
 *   cnngen MODEL.cnn --check                diagnostics only
 *
 * Exit status: 0 success; 1 errors in the model or weights; 2 wrong use,
 * unreadable or unwritable file.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "diag.h"
#include "source.h"
#include "summary.h"

#ifndef CNNGEN_VERSION
#define CNNGEN_VERSION "0.1.0"
#endif

typedef enum { EMIT_C, EMIT_LLVM, EMIT_OBJ } EmitKind;

typedef struct {
    const char *model;
    const char *output;
    const char *weights;
    const char *prefix;
    const char *depfile;
    EmitKind emit;
    bool summary, json, check, no_train, main, md, cflags, libs;
} Options;

static const char usage_text[] =
    "usage: cnngen MODEL.cnn -o OUT.c [options]\n"
    "       cnngen MODEL.cnn --summary [--json]\n"
    "       cnngen MODEL.cnn --check\n"
    "\n"
    "options:\n"
    "  -o FILE            write FILE.c and FILE.h (-o - writes the C to stdout)\n"
    "  --emit=c|llvm|obj  C source (default), LLVM IR text, or a native object\n"
    "  --summary          print the layer table, FLOPs and memory; no code\n"
    "  --json             with --summary: the same as a JSON object\n"
    "  --check            print the model's errors and warnings only\n"
    "  --weights W        bake the weights of W.safetensors into the output\n"
    "  --no-train         emit inference only\n"
    "  --main             add a main() (predict, train, eval)\n"
    "  --prefix NAME      prefix of every public symbol (default: the model's name)\n"
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

/* Returns -1 when the options are fine, else the exit status. */
static int parse_options(int argc, char **argv, Options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("cnngen %s (LLVM backend: not built in)\n", CNNGEN_VERSION);
            return 0;
        } else if (strcmp(a, "-o") == 0) {
            if (i + 1 >= argc)
                return usage_error("%s needs a file name", a);
            o->output = argv[++i];
        } else if (strncmp(a, "-o", 2) == 0 && a[2] != '\0' && strcmp(a, "-o") != 0) {
            o->output = a + 2;
        } else if (is_option(a, "--emit")) {
            if (!(v = option_value(argc, argv, &i, "--emit")))
                return usage_error("%s needs c, llvm or obj", a);
            if (strcmp(v, "c") == 0)
                o->emit = EMIT_C;
            else if (strcmp(v, "llvm") == 0)
                o->emit = EMIT_LLVM;
            else if (strcmp(v, "obj") == 0)
                o->emit = EMIT_OBJ;
            else
                return usage_error("--emit takes c, llvm or obj, not '%s'", v);
        } else if (is_option(a, "--weights")) {
            if (!(v = option_value(argc, argv, &i, "--weights")))
                return usage_error("%s needs a file name", a);
            o->weights = v;
        } else if (is_option(a, "--prefix")) {
            if (!(v = option_value(argc, argv, &i, "--prefix")))
                return usage_error("%s needs a name", a);
            if (!is_c_identifier(v))
                return usage_error("--prefix takes a C identifier, not '%s'", v);
            o->prefix = v;
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
    Model *m = compile_source(o->model, src->text, src->text_len, *diag);
    diag_report(*diag, stderr, true);
    *status = m ? 0 : 1;
    return m;
}

static int not_yet(const char *what)
{
    fprintf(stderr, "cnngen: error: %s is not implemented in this version of cnngen yet\n", what);
    return 2;
}

int main(int argc, char **argv)
{
    Options o = {0};
    int status = parse_options(argc, argv, &o);
    if (status >= 0)
        return status;
    if (o.cflags || o.libs)
        return not_yet("--cflags/--libs (the runtime library)");
    if (!o.model)
        return usage_error("%s", "no model file given");
    if (o.json && !o.summary)
        return usage_error("%s", "--json goes with --summary");
    if (!o.summary && !o.check && !o.output)
        return usage_error("%s", "nothing to do: give -o OUT.c, --summary or --check");
    if (o.emit != EMIT_C && !o.summary && !o.check) {
        fprintf(stderr, "cnngen: error: --emit=%s needs the LLVM backend, and this cnngen was "
                        "built without LLVM\n", o.emit == EMIT_LLVM ? "llvm" : "obj");
        return 2;
    }

    Source src;
    Diag *diag = NULL;
    Model *m = load_model(&o, &src, &diag, &status);
    if (m && o.summary) {
        if (o.json)
            summary_print_json(m, stdout);
        else
            summary_print(m, stdout);
    } else if (m && !o.check) {
        status = not_yet("C code generation (-o)");
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
