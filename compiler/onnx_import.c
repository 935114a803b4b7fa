/* onnx_import.c - an ONNX model as .cnn text and channels-last weights
 * (cnngen import).
 *
 * The graph is read through protobuf-c, then walked in its (topological)
 * order.  Each ONNX value is known as a tensor of the .cnn being written
 * (a statement's output, or the model input) seen in some layout:
 *
 *   CHANNELS_FIRST  ONNX's usual [N, C, spatial...] of a [spatial..., C]
 *                   tensor, or [N, F] of a rank-1 one;
 *   CHANNELS_LAST   the tensor in cnngen's own order (after a Transpose to
 *                   it): a Flatten of it is cnngen's flatten;
 *   EXPANDED        [N, 1, d...] of a tensor [d...] that the window layers
 *                   read with one channel (Layer.expand);
 *   FLAT_NCHW       [N, F], the channels-first flatten of a tensor: a dense
 *                   layer reading it takes the tensor with its rows
 *                   permuted; anything else needs the order to be cnngen's;
 *   POOLED          [N, C, 1, ...] from a global pool, cnngen's [C].
 *
 * So Flatten, Transpose, Unsqueeze, Identity and the like write no layer:
 * they change how a value is seen.  Every node that cannot be written is
 * reported (all of them), and its outputs are marked bad so that what
 * follows is not reported for its sake.  The text written is compiled
 * again before it is returned: a model that does not check is this
 * file's bug, said as such.
 */
#define _DEFAULT_SOURCE /* realpath */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compile.h"
#include "onnx.h"
#include "onnx.pb-c.h"
#include "util.h"

/* protobuf-c reads the whole file; ONNX files past 2 GB keep their
 * weights outside (external data), which is read tensor by tensor. */
#define ONNX_MAX_FILE_BYTES (INT64_C(2) << 30)

typedef enum { CHANNELS_FIRST, CHANNELS_LAST, EXPANDED, FLAT_NCHW, POOLED } Layout;

typedef struct {
    int tensor;    /* the .cnn tensor: 0 the input, k the k-th statement's output */
    Layout layout; /* how the ONNX value shows it */
    bool bad;      /* made by a node that was reported */
} Value;

/* One statement of the .cnn being written. */
typedef struct {
    const char *kind; /* "conv2d" */
    char *name;       /* its label, from the ONNX node's name */
    StrBuf args;      /* "8, 3, padding=same" (without the activation) */
    const char *activation;
    bool linear_map; /* conv or dense: takes activation= */
    int src;         /* the tensor it reads */
    int merge[16];   /* add, concat: the other tensors */
    int nmerge;
    Shape out;    /* its output, channels-last */
    int ntensors; /* its weights: Importer.tensors[first .. first + n) */
    int first_tensor;
    bool referenced; /* named by a later from, add or concat */
    int uses;        /* how many nodes read its ONNX output */
} Statement;

typedef struct {
    const OnnxImportOptions *o;
    char *dir; /* the model's folder, for external data */
    Onnx__ModelProto *model;
    int64_t opset;
    StrMap values; /* ONNX value name -> index in vals */
    Value *vals;
    int nvals, capvals;
    StrMap constants; /* name -> its TensorProto (an initializer's or a Constant node's) */
    StrMap uses;      /* value name -> nodes reading it */
    Statement *stmts; /* stmts[0]: the model input */
    int nstmts, capstmts;
    OnnxTensor *tensors;
    int ntensors, captensors;
    StrMap names;       /* labels taken */
    StrMap next_suffix; /* a label's base -> the next _N to try */
    StrMap kind_counts; /* while printing: layers of each kind so far */
    /* How the .cnn's input and output read ONNX's: in the same order, or
     * with the channels moved last (said in the .cnn's first comment). */
    const char *input_name, *output_name;
    bool input_in_order, output_in_order;
    Value args[17]; /* node_value's copies: vals moves as it grows */
    /* Written by cnngen's export: a node named as a layer (no '/') is one,
     * so the model comes back statement for statement. */
    bool from_cnngen;
    int errors;
    Arena arena;
} Importer;

/* ---- errors ------------------------------------------------------------ */

static void import_error(Importer *im, const Onnx__NodeProto *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* At most this many are printed (a hostile file may hold millions of bad
 * nodes); the rest are counted, as the model's diagnostics are. */
enum { IMPORT_MAX_ERRORS = 50 };

static void import_error(Importer *im, const Onnx__NodeProto *node, const char *fmt, ...)
{
    if (im->errors++ >= IMPORT_MAX_ERRORS)
        return;
    fprintf(stderr, "%s: error: ", im->o->path);
    if (node)
        fprintf(stderr, "node '%s' (%s): ", node->name && *node->name ? node->name : "(unnamed)",
                node->op_type ? node->op_type : "?");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- reading the file -------------------------------------------------- */

static unsigned char *read_file(const char *path, size_t *len, int *status)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "cnngen: error: cannot read '%s': %s\n", path,
                f ? "not a regular file" : strerror(errno));
        if (f)
            fclose(f);
        *status = 2;
        return NULL;
    }
    if (st.st_size > ONNX_MAX_FILE_BYTES) {
        fprintf(stderr,
                "%s: error: the file is %lld bytes; an ONNX model holds at most 2 GB "
                "(larger weights go in external data)\n",
                path, (long long)st.st_size);
        fclose(f);
        *status = 1;
        return NULL;
    }
    unsigned char *bytes = xmalloc((size_t)st.st_size + 1);
    *len = fread(bytes, 1, (size_t)st.st_size, f);
    bool failed = ferror(f) || *len != (size_t)st.st_size;
    fclose(f);
    if (failed) {
        fprintf(stderr, "cnngen: error: cannot read '%s'\n", path);
        free(bytes);
        *status = 2;
        return NULL;
    }
    return bytes;
}

/* ---- constants (initializers and Constant nodes) ----------------------- */

typedef struct {
    int rank;
    int64_t dim[8];
    int64_t count;
    double *values; /* in the arena */
} Const;

static bool const_find(Importer *im, const char *name, const Onnx__TensorProto **t)
{
    intptr_t k;
    if (!name || !strmap_get(&im->constants, name, &k))
        return false;
    *t = (const Onnx__TensorProto *)k;
    return true;
}

/* External data: a file in the model's folder (no absolute path, no way
 * out of it through .. or a link), at an offset and length inside it. */
static unsigned char *external_bytes(Importer *im, const Onnx__NodeProto *node,
                                     const Onnx__TensorProto *t, size_t want)
{
    const char *location = NULL;
    int64_t offset = 0, length = -1;
    for (size_t k = 0; k < t->n_external_data; k++) {
        const Onnx__StringStringEntryProto *e = t->external_data[k];
        if (!e->key || !e->value)
            continue;
        if (strcmp(e->key, "location") == 0)
            location = e->value;
        else if (strcmp(e->key, "offset") == 0)
            offset = strtoll(e->value, NULL, 10);
        else if (strcmp(e->key, "length") == 0)
            length = strtoll(e->value, NULL, 10);
    }
    if (!location || !*location || location[0] == '/' || strstr(location, "..")) {
        import_error(im, node, "tensor '%s': external data at '%s' is outside the model's folder",
                     t->name, location ? location : "");
        return NULL;
    }
    char *path = arena_printf(&im->arena, "%s/%s", im->dir, location);
    char resolved[PATH_MAX];
    size_t dirlen = strlen(im->dir);
    if (!realpath(path, resolved) || strncmp(resolved, im->dir, dirlen) != 0 ||
        resolved[dirlen] != '/') {
        import_error(im, node, "tensor '%s': external data '%s' %s", t->name, location,
                     errno == ENOENT ? "does not exist" : "is outside the model's folder");
        return NULL;
    }
    FILE *f = fopen(resolved, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || offset < 0 || (length >= 0 && (size_t)length != want) ||
        (int64_t)want > st.st_size - offset || fseeko(f, offset, SEEK_SET) != 0) {
        import_error(im, node,
                     "tensor '%s': external data '%s' does not hold its %zu bytes at "
                     "offset %lld",
                     t->name, location, want, (long long)offset);
        if (f)
            fclose(f);
        return NULL;
    }
    unsigned char *bytes = arena_alloc(&im->arena, want + 1);
    bool ok = fread(bytes, 1, want, f) == want;
    fclose(f);
    if (!ok)
        import_error(im, node, "tensor '%s': cannot read external data '%s'", t->name, location);
    return ok ? bytes : NULL;
}

static double le_float(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static double le_int(const unsigned char *p, int size)
{
    uint64_t u = 0;
    for (int b = 0; b < size; b++)
        u |= (uint64_t)p[b] << (8 * b);
    if (size == 4)
        return (double)(int32_t)(uint32_t)u;
    return (double)(int64_t)u;
}

/* A constant's values as doubles: FLOAT, INT32 and INT64 tensors (shapes,
 * axes, scales and weights are these). */
static bool const_read(Importer *im, const Onnx__NodeProto *node, const Onnx__TensorProto *t,
                       Const *c)
{
    if (t->n_dims > 8) {
        import_error(im, node, "tensor '%s' has %zu dimensions", t->name, t->n_dims);
        return false;
    }
    c->rank = (int)t->n_dims;
    c->count = 1;
    for (int d = 0; d < c->rank; d++) {
        c->dim[d] = t->dims[d];
        if (t->dims[d] < 0 || (c->count = mul_sat(c->count, t->dims[d])) > SHAPE_MAX_ELEMENTS) {
            import_error(im, node, "tensor '%s' has a bad size", t->name);
            return false;
        }
    }
    int size = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? 8 : 4;
    if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
        t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 &&
        t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT32) {
        import_error(im, node,
                     "tensor '%s' has data type %d: cnngen reads float32 weights "
                     "(and int32/int64 shapes)",
                     t->name, (int)t->data_type);
        return false;
    }
    const unsigned char *raw = NULL;
    size_t want = (size_t)c->count * (size_t)size;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        if (!(raw = external_bytes(im, node, t, want)))
            return false;
    } else if (t->has_raw_data) {
        if (t->raw_data.len != want) {
            import_error(im, node, "tensor '%s' holds %zu bytes, not the %zu of its shape", t->name,
                         t->raw_data.len, want);
            return false;
        }
        raw = t->raw_data.data;
    } else {
        size_t n = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT   ? t->n_float_data
                   : t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? t->n_int64_data
                                                                          : t->n_int32_data;
        if (n != (size_t)c->count) {
            import_error(im, node, "tensor '%s' holds %zu values, not the %lld of its shape",
                         t->name, n, (long long)c->count);
            return false;
        }
    }
    c->values = arena_alloc(&im->arena, (size_t)c->count * sizeof *c->values + 1);
    for (int64_t k = 0; k < c->count; k++) {
        if (raw)
            c->values[k] = size == 4 && t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
                               ? le_float(raw + 4 * k)
                               : le_int(raw + (size_t)size * (size_t)k, size);
        else
            c->values[k] = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? t->float_data[k]
                           : t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64
                               ? (double)t->int64_data[k]
                               : t->int32_data[k];
        if (!isfinite(c->values[k])) {
            /* cnngen's weights files hold finite numbers only */
            import_error(im, node, "tensor '%s' holds a value that is not a finite number",
                         t->name);
            return false;
        }
    }
    return true;
}

/* Input k of node as a constant; false (reported) when it is not one. */
static bool node_const(Importer *im, const Onnx__NodeProto *node, size_t k, const char *what,
                       Const *c)
{
    const Onnx__TensorProto *t;
    if (k >= node->n_input || !const_find(im, node->input[k], &t)) {
        import_error(im, node, "its %s is not a constant (an initializer or a Constant node)",
                     what);
        return false;
    }
    return const_read(im, node, t, c);
}

/* ---- attributes -------------------------------------------------------- */

/* A node's operator; protobuf leaves a missing one NULL. */
static const char *op_name(const Onnx__NodeProto *node)
{
    return node->op_type ? node->op_type : "";
}

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *node, const char *name)
{
    for (size_t k = 0; k < node->n_attribute; k++)
        if (node->attribute[k]->name && strcmp(node->attribute[k]->name, name) == 0)
            return node->attribute[k];
    return NULL;
}

static int64_t attr_int(const Onnx__NodeProto *node, const char *name, int64_t fallback)
{
    const Onnx__AttributeProto *a = attr(node, name);
    return a && a->has_i ? a->i : fallback;
}

static double attr_float(const Onnx__NodeProto *node, const char *name, double fallback)
{
    const Onnx__AttributeProto *a = attr(node, name);
    return a && a->has_f ? a->f : fallback;
}

static const char *attr_string(Importer *im, const Onnx__NodeProto *node, const char *name,
                               const char *fallback)
{
    const Onnx__AttributeProto *a = attr(node, name);
    if (!a || !a->has_s)
        return fallback;
    return arena_strndup(&im->arena, (const char *)a->s.data, a->s.len);
}

/* An INTS attribute of exactly n values (or absent: fallback for each). */
static bool attr_ints(Importer *im, const Onnx__NodeProto *node, const char *name, int n,
                      int64_t fallback, int64_t *out)
{
    const Onnx__AttributeProto *a = attr(node, name);
    if (!a) {
        for (int k = 0; k < n; k++)
            out[k] = fallback;
        return true;
    }
    if ((int)a->n_ints != n) {
        import_error(im, node, "attribute %s has %zu values, not %d", name, a->n_ints, n);
        return false;
    }
    memcpy(out, a->ints, (size_t)n * sizeof *out);
    return true;
}

/* Attributes this file does not read, but whose default it relies on. */
static bool attr_is_default(Importer *im, const Onnx__NodeProto *node, const char *name,
                            int64_t expected)
{
    int64_t v = attr_int(node, name, expected);
    if (v != expected) {
        import_error(im, node, "attribute %s=%lld is not supported (only %lld)", name, (long long)v,
                     (long long)expected);
        return false;
    }
    return true;
}

/* ---- values ------------------------------------------------------------ */

static void value_set(Importer *im, const char *name, Value v)
{
    if (!name || !*name)
        return;
    if (im->nvals == im->capvals) {
        im->capvals = im->capvals ? 2 * im->capvals : 64;
        im->vals = xrealloc(im->vals, (size_t)im->capvals * sizeof *im->vals);
    }
    im->vals[im->nvals] = v;
    strmap_put(&im->values, arena_strndup(&im->arena, name, strlen(name)), im->nvals++);
}

/* Input k of node as a value; NULL (reported unless a bad one) if it is
 * not made by an earlier node: the graph must be sorted, so a cycle shows
 * here too. */
static const Value *node_value(Importer *im, const Onnx__NodeProto *node, size_t k)
{
    intptr_t i;
    if (k >= node->n_input || !node->input[k] || !*node->input[k]) {
        import_error(im, node, "input %zu is missing", k + 1);
        return NULL;
    }
    if (!strmap_get(&im->values, node->input[k], &i)) {
        const Onnx__TensorProto *t;
        if (const_find(im, node->input[k], &t))
            import_error(im, node,
                         "input '%s' is a constant: cnngen's layers take only "
                         "computed values there",
                         node->input[k]);
        else
            import_error(im, node,
                         "input '%s' is not made by an earlier node (the graph is "
                         "not sorted, or has a cycle)",
                         node->input[k]);
        return NULL;
    }
    if (im->vals[i].bad || k >= sizeof im->args / sizeof *im->args)
        return NULL;
    im->args[k] = im->vals[i];
    return &im->args[k];
}

static void mark_outputs_bad(Importer *im, const Onnx__NodeProto *node)
{
    for (size_t k = 0; k < node->n_output; k++)
        value_set(im, node->output[k], (Value){.bad = true});
}

static int uses_of(Importer *im, const char *name)
{
    intptr_t n = 0;
    strmap_get(&im->uses, name, &n);
    return (int)n;
}

/* ---- statements -------------------------------------------------------- */

static const Shape *tensor_shape(Importer *im, int tensor)
{
    return &im->stmts[tensor].out;
}

/* The module path of a PyTorch node name, "/0/features/features.0/Conv":
 * the components before the operator, without the ones that only repeat
 * the next one's start (PyTorch scopes "features.0" inside "features") or
 * are a bare index of an outer Sequential.  "features.0" here;
 * "layer1/conv" for "/layer1/conv/Conv"; other names as they are. */
static void module_path(const Onnx__NodeProto *node, const char *src, StrBuf *path)
{
    size_t len = strlen(src), op = node->op_type ? strlen(node->op_type) : 0;
    if (!(src[0] == '/' && op && len > op + 1 && src[len - op - 1] == '/' &&
          strcmp(src + len - op, node->op_type) == 0)) {
        strbuf_append(path, src, len);
        return;
    }
    len -= op + 1;
    const char *part = src + 1, *end = src + len;
    while (part < end) {
        const char *slash = memchr(part, '/', (size_t)(end - part));
        size_t n = (size_t)((slash ? slash : end) - part);
        const char *next = slash ? slash + 1 : end;
        bool repeats = next < end && strncmp(next, part, n) == 0;
        bool index = strspn(part, "0123456789") >= n && next < end;
        if (!repeats && !index) {
            if (path->len)
                strbuf_append(path, "/", 1);
            strbuf_append(path, part, n);
        }
        part = next;
    }
}

/* cnngen's layer names are labels: letters, digits and _, not starting
 * with a digit, not a reserved word, unique. */
static char *label_for(Importer *im, const Onnx__NodeProto *node, const char *kind)
{
    static const char *const reserved[] = {"model", "input", "const", "from",
                                           "train", "true",  "false", NULL};
    StrBuf path = {0}, b = {0};
    module_path(node, node->name && *node->name ? node->name : node->output[0], &path);
    for (size_t k = 0; k < path.len; k++) {
        char ch = path.data[k];
        bool word = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_';
        if (word)
            strbuf_append(&b, &ch, 1);
        else if (b.len && b.data[b.len - 1] != '_')
            strbuf_append(&b, "_", 1);
    }
    strbuf_free(&path);
    while (b.len && b.data[b.len - 1] == '_')
        b.data[--b.len] = '\0';
    const char *start = b.data ? b.data : "";
    while (*start == '_')
        start++;
    char *base;
    if (!*start)
        base = arena_printf(&im->arena, "%s", kind);
    else if (*start >= '0' && *start <= '9')
        base = arena_printf(&im->arena, "%s_%s", kind, start);
    else
        base = arena_printf(&im->arena, "%s", start);
    strbuf_free(&b);
    for (int k = 0; reserved[k]; k++)
        if (strcmp(base, reserved[k]) == 0)
            base = arena_printf(&im->arena, "%s_", base);
    char *name = base;
    intptr_t taken, n = 2;
    strmap_get(&im->next_suffix, base, &n);
    while (strmap_get(&im->names, name, &taken))
        name = arena_printf(&im->arena, "%s_%ld", base, (long)n++);
    strmap_put(&im->next_suffix, base, n);
    strmap_put(&im->names, name, 1);
    return name;
}

static int stmt_add(Importer *im, const Onnx__NodeProto *node, const char *kind, int src,
                    const Shape *out)
{
    Shape shape = *out; /* out may point into stmts, which may move */
    if (im->nstmts == im->capstmts) {
        im->capstmts = im->capstmts ? 2 * im->capstmts : 32;
        im->stmts = xrealloc(im->stmts, (size_t)im->capstmts * sizeof *im->stmts);
    }
    bool empty = false;
    for (int d = 0; d < shape.rank; d++)
        empty |= shape.dim[d] < 1;
    if (empty || shape_size(&shape) > SHAPE_MAX_ELEMENTS) {
        StrBuf text = {0};
        shape_format(&shape, &text);
        import_error(im, node, "its output would be %s: %s", text.data,
                     empty ? "empty" : "past 2^31-1 elements, cnngen's limit for a tensor");
        strbuf_free(&text);
    }
    Statement *s = &im->stmts[im->nstmts];
    *s = (Statement){.kind = kind, .src = src, .out = shape, .first_tensor = im->ntensors};
    s->name = label_for(im, node, kind);
    value_set(im, node->output[0], (Value){.tensor = im->nstmts, .layout = CHANNELS_FIRST});
    s->uses = uses_of(im, node->output[0]);
    return im->nstmts++;
}

/* A weights tensor of statement st: NAME.suffix, values copied. */
static float *tensor_add(Importer *im, int st, const char *suffix, const int64_t *dims, int rank)
{
    if (im->ntensors == im->captensors) {
        im->captensors = im->captensors ? 2 * im->captensors : 32;
        im->tensors = xrealloc(im->tensors, (size_t)im->captensors * sizeof *im->tensors);
    }
    OnnxTensor *t = &im->tensors[im->ntensors++];
    im->stmts[st].ntensors++;
    const char *layer = im->stmts[st].name;
    t->name = xmalloc(strlen(layer) + strlen(suffix) + 2);
    sprintf(t->name, "%s.%s", layer, suffix);
    t->rank = rank;
    int64_t count = 1;
    for (int d = 0; d < rank; d++)
        count *= (t->dim[d] = dims[d]);
    t->values = xcalloc((size_t)count + 1, sizeof *t->values);
    return t->values;
}

/* ---- layouts ----------------------------------------------------------- */

/* The ONNX rank (batch included) of a value. */
static int value_rank(Importer *im, const Value *v)
{
    const Shape *s = tensor_shape(im, v->tensor);
    switch (v->layout) {
    case CHANNELS_FIRST:
    case CHANNELS_LAST: return s->rank + 1;
    case EXPANDED: return s->rank + 2;
    case FLAT_NCHW: return 2;
    case POOLED: return 2; /* a global pool's [N, C, 1...] seen after its Flatten */
    }
    return 0;
}

/* The spatial axes a window layer of value v sees, and its channels. */
static bool window_input(Importer *im, const Onnx__NodeProto *node, const Value *v, int nd,
                         Shape *in)
{
    const Shape *s = tensor_shape(im, v->tensor);
    if (v->layout == EXPANDED && s->rank == nd) {
        *in = *s;
        in->dim[in->rank++] = 1;
        return true;
    }
    if (v->layout == CHANNELS_FIRST && s->rank == nd + 1) {
        *in = *s;
        return true;
    }
    import_error(im, node,
                 "its input has %d dimensions (batch and channels included), not the "
                 "%d of a %d-D window, or is not in channels-first order",
                 value_rank(im, v), nd + 2, nd);
    return false;
}

/* ---- windows: padding -------------------------------------------------- */

/* pads (begins then ends) or auto_pad, as cnngen's padding argument:
 * valid, same (TensorFlow's rule = ONNX's SAME_UPPER), causal (1-D: all
 * before), or a symmetric count per axis.  Also the output sizes. */
static const char *window_padding(Importer *im, const Onnx__NodeProto *node, const Shape *in,
                                  int nd, const int64_t *kernel, const int64_t *stride,
                                  const int64_t *dilation, bool conv, int64_t *out)
{
    int64_t pads[6] = {0};
    for (int a = 0; a < nd; a++)
        if (kernel[a] < 1 || stride[a] < 1 || dilation[a] < 1 || kernel[a] > SHAPE_MAX_ELEMENTS ||
            stride[a] > SHAPE_MAX_ELEMENTS || dilation[a] > SHAPE_MAX_ELEMENTS) {
            import_error(im, node,
                         "attributes kernel_shape, strides and dilations must be from 1 to "
                         "2^31-1");
            return NULL;
        }
    const char *auto_pad = attr_string(im, node, "auto_pad", "NOTSET");
    if (strcmp(auto_pad, "SAME_UPPER") == 0 || strcmp(auto_pad, "VALID") == 0) {
        for (int a = 0; a < nd; a++)
            if (auto_pad[0] == 'V' && in->dim[a] < dilation[a] * (kernel[a] - 1) + 1) {
                import_error(im, node, "its window (%lld) is larger than its input (%lld)",
                             (long long)(dilation[a] * (kernel[a] - 1) + 1), (long long)in->dim[a]);
                return NULL;
            }
        for (int a = 0; a < nd; a++)
            out[a] = auto_pad[0] == 'S'
                         ? (in->dim[a] + stride[a] - 1) / stride[a]
                         : (in->dim[a] - dilation[a] * (kernel[a] - 1) - 1) / stride[a] + 1;
        return auto_pad[0] == 'S' ? "same" : "valid";
    }
    if (strcmp(auto_pad, "NOTSET") != 0) {
        if (strcmp(auto_pad, "SAME_LOWER") == 0) {
            /* the same as SAME_UPPER where the total padding is even */
            bool even = true;
            for (int a = 0; a < nd; a++) {
                int64_t o = (in->dim[a] + stride[a] - 1) / stride[a];
                int64_t total =
                    (o - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1 - in->dim[a];
                even &= total <= 0 || total % 2 == 0;
                out[a] = o;
            }
            if (even)
                return "same";
        }
        import_error(im, node,
                     "attribute auto_pad=%s is not supported (cnngen's 'same' is "
                     "SAME_UPPER)",
                     auto_pad);
        return NULL;
    }
    if (!attr_ints(im, node, "pads", 2 * nd, 0, pads))
        return NULL;
    bool zero = true, symmetric = true, same = true, causal = conv && nd == 1;
    for (int a = 0; a < nd; a++) {
        int64_t b = pads[a], e = pads[nd + a];
        if (b < 0 || e < 0 || b > SHAPE_MAX_ELEMENTS || e > SHAPE_MAX_ELEMENTS) {
            import_error(im, node, "attribute pads must be from 0 to 2^31-1");
            return NULL;
        }
        if (in->dim[a] + b + e < dilation[a] * (kernel[a] - 1) + 1) {
            import_error(im, node, "its window (%lld) is larger than its padded input (%lld)",
                         (long long)(dilation[a] * (kernel[a] - 1) + 1),
                         (long long)(in->dim[a] + b + e));
            return NULL;
        }
        out[a] = (in->dim[a] + b + e - dilation[a] * (kernel[a] - 1) - 1) / stride[a] + 1;
        int64_t o = (in->dim[a] + stride[a] - 1) / stride[a];
        int64_t total = (o - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1 - in->dim[a];
        if (total < 0)
            total = 0;
        zero &= b == 0 && e == 0;
        symmetric &= b == e;
        same &= b == total / 2 && e == total - total / 2;
        causal &= b == dilation[a] * (kernel[a] - 1) && e == 0;
        if (!conv && b >= kernel[a]) {
            import_error(im, node, "attribute pads: %lld is not smaller than the window (%lld)",
                         (long long)b, (long long)kernel[a]);
            return NULL;
        }
    }
    if (zero)
        return "valid";
    if (symmetric) {
        bool one = true;
        for (int a = 1; a < nd; a++)
            one &= pads[a] == pads[0];
        StrBuf b = {0};
        if (one || nd == 1) {
            strbuf_printf(&b, "%lld", (long long)pads[0]);
        } else {
            strbuf_printf(&b, "(");
            for (int a = 0; a < nd; a++)
                strbuf_printf(&b, "%s%lld", a ? ", " : "", (long long)pads[a]);
            strbuf_printf(&b, ")");
        }
        char *s = arena_strndup(&im->arena, b.data, b.len);
        strbuf_free(&b);
        return s;
    }
    if (same)
        return "same";
    if (causal)
        return "causal";
    StrBuf b = {0};
    for (int k = 0; k < 2 * nd; k++)
        strbuf_printf(&b, "%s%lld", k ? ", " : "", (long long)pads[k]);
    import_error(im, node,
                 "attribute pads=[%s] is not expressible: cnngen pads the same on "
                 "both sides, or as 'same' (the extra one after), or 1-D causal (all before)",
                 b.data);
    strbuf_free(&b);
    return NULL;
}

/* The shortest decimal that reads back as the same float32 (cnngen
 * rounds constants to float32 once): 0.99, not 0.99000001. */
static const char *float_text(Importer *im, double v)
{
    char buf[64];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if ((float)strtod(buf, NULL) == (float)v)
            break;
    }
    return arena_printf(&im->arena, "%s", buf);
}

/* A tuple argument: "3" when every axis has it, else "(3, 5)". */
static void tuple_arg(StrBuf *b, const char *name, const int64_t *v, int nd, int64_t fallback)
{
    bool one = true, is_default = true;
    for (int a = 0; a < nd; a++) {
        one &= v[a] == v[0];
        is_default &= v[a] == fallback;
    }
    if (name && is_default)
        return;
    strbuf_printf(b, "%s%s%s", b->len ? ", " : "", name ? name : "", name ? "=" : "");
    if (one) {
        strbuf_printf(b, "%lld", (long long)v[0]);
        return;
    }
    strbuf_printf(b, "(");
    for (int a = 0; a < nd; a++)
        strbuf_printf(b, "%s%lld", a ? ", " : "", (long long)v[a]);
    strbuf_printf(b, ")");
}

static void window_out_shape(int nd, const int64_t *sizes, int64_t channels, Shape *out)
{
    out->rank = nd + 1;
    for (int a = 0; a < nd; a++)
        out->dim[a] = sizes[a];
    out->dim[nd] = channels;
}

/* ---- the operators ----------------------------------------------------- */

/* A node cnngen's export made as part of a layer ("conv2d_1/activation"),
 * not a layer of its own ("relu_1"). */
static bool is_layer_part(const Onnx__NodeProto *node)
{
    return node->name && strchr(node->name, '/');
}

static const char *const conv_kinds[] = {NULL, "conv1d", "conv2d", "conv3d"};

/* Conv: group 1 (convNd) or group = channels with one input each
 * (depthwise_conv2d).  W [cout, cin/group, k...] -> [k..., cin, cout]
 * or [kh, kw, cin, multiplier]. */
static void import_conv(Importer *im, const Onnx__NodeProto *node)
{
    const Value *x = node_value(im, node, 0);
    Const w, b = {0};
    if (!x || !node_const(im, node, 1, "weight", &w))
        return mark_outputs_bad(im, node);
    int nd = w.rank - 2;
    Shape in;
    if (nd < 1 || nd > 3) {
        import_error(im, node, "a %d-D convolution: cnngen has 1-, 2- and 3-D", nd);
        return mark_outputs_bad(im, node);
    }
    bool has_bias = node->n_input > 2 && node->input[2] && *node->input[2];
    if ((has_bias && !node_const(im, node, 2, "bias", &b)) || !window_input(im, node, x, nd, &in))
        return mark_outputs_bad(im, node);
    int64_t kernel[3], stride[3], dilation[3], sizes[3];
    int64_t group = attr_int(node, "group", 1), cout = w.dim[0], cin = in.dim[nd];
    bool ok = attr_ints(im, node, "kernel_shape", nd, 0, kernel) &&
              attr_ints(im, node, "strides", nd, 1, stride) &&
              attr_ints(im, node, "dilations", nd, 1, dilation);
    for (int a = 0; ok && a < nd; a++) {
        if (kernel[a] == 0)
            kernel[a] = w.dim[2 + a];
        if (kernel[a] != w.dim[2 + a] || stride[a] < 1 || dilation[a] < 1) {
            import_error(im, node,
                         "attributes kernel_shape, strides or dilations do not fit "
                         "its weight");
            ok = false;
        }
    }
    bool depthwise = group > 1 && group == cin && w.dim[1] == 1 && nd == 2 && cout % cin == 0;
    if (ok && group != 1 && !depthwise) {
        import_error(im, node,
                     "attribute group=%lld is not supported: cnngen has group 1 and "
                     "2-D depthwise (group = input channels)",
                     (long long)group);
        ok = false;
    }
    if (ok && !depthwise && w.dim[1] != cin) {
        import_error(im, node, "its weight has %lld input channels, its input %lld",
                     (long long)w.dim[1], (long long)cin);
        ok = false;
    }
    if (ok && has_bias && b.count != cout) {
        import_error(im, node, "its bias has %lld values, not %lld", (long long)b.count,
                     (long long)cout);
        ok = false;
    }
    const char *padding =
        ok ? window_padding(im, node, &in, nd, kernel, stride, dilation, true, sizes) : NULL;
    if (!padding)
        return mark_outputs_bad(im, node);
    Shape out;
    window_out_shape(nd, sizes, cout, &out);
    int st = stmt_add(im, node, depthwise ? "depthwise_conv2d" : conv_kinds[nd], x->tensor, &out);
    Statement *s = &im->stmts[st];
    s->linear_map = true;
    if (depthwise)
        tuple_arg(&s->args, NULL, kernel, nd, 0);
    else
        strbuf_printf(&s->args, "%lld", (long long)cout), tuple_arg(&s->args, NULL, kernel, nd, 0);
    tuple_arg(&s->args, "stride", stride, nd, 1);
    if (strcmp(padding, "valid") != 0)
        strbuf_printf(&s->args, ", padding=%s", padding);
    tuple_arg(&s->args, "dilation", dilation, nd, 1);
    if (depthwise && cout / cin != 1)
        strbuf_printf(&s->args, ", multiplier=%lld", (long long)(cout / cin));
    int64_t taps = 1, per = depthwise ? cout / cin : cout;
    int64_t dims[5] = {0};
    for (int a = 0; a < nd; a++)
        taps *= (dims[a] = kernel[a]);
    dims[nd] = cin;
    dims[nd + 1] = per;
    float *k = tensor_add(im, st, "kernel", dims, nd + 2);
    for (int64_t t = 0; t < taps; t++)
        for (int64_t i = 0; i < cin; i++)
            for (int64_t o = 0; o < per; o++)
                k[(t * cin + i) * per + o] =
                    (float)(depthwise ? w.values[(i * per + o) * taps + t]
                                      : w.values[(o * cin + i) * taps + t]);
    if (has_bias) {
        float *bias = tensor_add(im, st, "bias", &cout, 1);
        for (int64_t o = 0; o < cout; o++)
            bias[o] = (float)b.values[o];
    }
}

/* The rows of a dense layer over value x: its tensor flattened, and the
 * ONNX row of each cnngen row (the permutation of a channels-first
 * flatten). */
static bool dense_rows(Importer *im, const Onnx__NodeProto *node, const Value *x, int64_t *rows,
                       int64_t *channels)
{
    const Shape *s = tensor_shape(im, x->tensor);
    *rows = shape_size(s);
    *channels = 1;
    if (x->layout == FLAT_NCHW && s->rank > 1)
        *channels = s->dim[s->rank - 1];
    else if (x->layout == CHANNELS_FIRST && s->rank > 1) {
        import_error(im, node,
                     "its input has rank %d: a matrix product takes [N, features] "
                     "(a Flatten first)",
                     s->rank + 1);
        return false;
    }
    return true;
}

/* A dense layer from a [F, U] matrix (alpha folded in) and a bias. */
static int dense_stmt(Importer *im, const Onnx__NodeProto *node, const Value *x, const double *w,
                      bool transposed, int64_t in, int64_t units, double alpha)
{
    int64_t rows, channels;
    if (!dense_rows(im, node, x, &rows, &channels))
        return -1;
    if (rows != in) {
        import_error(im, node, "its weight has %lld rows, its input %lld features", (long long)in,
                     (long long)rows);
        return -1;
    }
    Shape out = {1, {units}};
    int st = stmt_add(im, node, "dense", x->tensor, &out);
    Statement *s = &im->stmts[st];
    s->linear_map = true;
    strbuf_printf(&s->args, "%lld", (long long)units);
    int64_t dims[2] = {in, units}, spatial = in / channels;
    float *k = tensor_add(im, st, "kernel", dims, 2);
    for (int64_t r = 0; r < in; r++) {
        /* cnngen's row r = position p, channel c; ONNX's is c*spatial + p */
        int64_t p = r / channels, c = r % channels, row = c * spatial + p;
        for (int64_t u = 0; u < units; u++)
            k[r * units + u] = (float)(alpha * (transposed ? w[u * in + row] : w[row * units + u]));
    }
    return st;
}

static void dense_bias(Importer *im, int st, const Const *c, double beta)
{
    int64_t units = im->stmts[st].out.dim[0];
    float *b = tensor_add(im, st, "bias", &units, 1);
    for (int64_t u = 0; u < units; u++)
        b[u] = (float)(beta * c->values[c->count == 1 ? 0 : u]);
}

static void import_gemm(Importer *im, const Onnx__NodeProto *node)
{
    const Value *x = node_value(im, node, 0);
    Const w, c = {0};
    if (!x || !node_const(im, node, 1, "B", &w))
        return mark_outputs_bad(im, node);
    bool has_c = node->n_input > 2 && node->input[2] && *node->input[2];
    bool transposed = attr_int(node, "transB", 0) != 0;
    if ((has_c && !node_const(im, node, 2, "C", &c)) || w.rank != 2)
        return mark_outputs_bad(im, node);
    int64_t in = transposed ? w.dim[1] : w.dim[0], units = transposed ? w.dim[0] : w.dim[1];
    if (has_c && c.count != units && c.count != 1) {
        import_error(im, node,
                     "its C has %lld values: cnngen adds a bias of one per output "
                     "(%lld)",
                     (long long)c.count, (long long)units);
        return mark_outputs_bad(im, node);
    }
    int st =
        dense_stmt(im, node, x, w.values, transposed, in, units, attr_float(node, "alpha", 1.0));
    if (st < 0)
        return mark_outputs_bad(im, node);
    if (has_c)
        dense_bias(im, st, &c, attr_float(node, "beta", 1.0));
}

/* MatMul with a constant [F, U]: a dense layer without bias, until an Add
 * of a constant (PyTorch's Linear, exported as MatMul then Add) gives it
 * one. */
static void import_matmul(Importer *im, const Onnx__NodeProto *node)
{
    const Value *x = node_value(im, node, 0);
    Const w;
    if (!x || !node_const(im, node, 1, "second input", &w))
        return mark_outputs_bad(im, node);
    if (w.rank != 2) {
        import_error(im, node,
                     "its second input has rank %d: cnngen's dense layer is a [F, U] "
                     "matrix",
                     w.rank);
        return mark_outputs_bad(im, node);
    }
    if (dense_stmt(im, node, x, w.values, false, w.dim[0], w.dim[1], 1.0) < 0)
        mark_outputs_bad(im, node);
}

/* Whether statement st is a dense layer from MatMul that still has no
 * bias, and value v (its output) is read by this node alone. */
static bool takes_bias(Importer *im, const Value *v)
{
    const Statement *s = &im->stmts[v->tensor];
    return v->layout == CHANNELS_FIRST && v->tensor > 0 && strcmp(s->kind, "dense") == 0 &&
           s->ntensors == 1 && !s->activation && s->uses == 1;
}

static void import_add(Importer *im, const Onnx__NodeProto *node)
{
    const Onnx__TensorProto *t;
    for (size_t k = 0; k < 2 && node->n_input == 2 && strcmp(op_name(node), "Add") == 0; k++) {
        if (!const_find(im, node->input[1 - k], &t))
            continue;
        /* x + constant: a MatMul's bias */
        const Value *v = node_value(im, node, k);
        Const c;
        if (!v || !node_const(im, node, 1 - k, "bias", &c))
            return mark_outputs_bad(im, node);
        if (!takes_bias(im, v) || (c.count != im->stmts[v->tensor].out.dim[0])) {
            import_error(im, node,
                         "adding a constant is supported only as the bias of the "
                         "MatMul right before it");
            return mark_outputs_bad(im, node);
        }
        dense_bias(im, v->tensor, &c, 1.0);
        value_set(im, node->output[0], *v);
        return;
    }
    if (node->n_input < 2 || node->n_input > 17) {
        import_error(im, node, "%zu inputs: cnngen adds 2 to 17 tensors", node->n_input);
        return mark_outputs_bad(im, node);
    }
    const Value *first = node_value(im, node, 0);
    if (!first)
        return mark_outputs_bad(im, node);
    int merge[16];
    for (size_t k = 1; k < node->n_input; k++) {
        const Value *v = node_value(im, node, k);
        if (!v)
            return mark_outputs_bad(im, node);
        if (v->layout != first->layout ||
            !shape_equal(tensor_shape(im, v->tensor), tensor_shape(im, first->tensor))) {
            import_error(im, node,
                         "its inputs differ in shape (cnngen's add does not "
                         "broadcast)");
            return mark_outputs_bad(im, node);
        }
        merge[k - 1] = v->tensor;
    }
    int st = stmt_add(im, node, "add", first->tensor, tensor_shape(im, first->tensor));
    memcpy(im->stmts[st].merge, merge, (node->n_input - 1) * sizeof *merge);
    im->stmts[st].nmerge = (int)node->n_input - 1;
    im->vals[im->nvals - 1].layout = first->layout;
}

static void import_concat(Importer *im, const Onnx__NodeProto *node)
{
    const Value *first = node_value(im, node, 0);
    if (!first)
        return mark_outputs_bad(im, node);
    int rank = value_rank(im, first);
    int64_t axis = attr_int(node, "axis", 1);
    if (axis < 0)
        axis += rank;
    if (first->layout != CHANNELS_FIRST || axis != 1 || node->n_input > 17) {
        import_error(im, node,
                     "attribute axis=%lld: cnngen joins channels (axis 1 of "
                     "channels-first values), at most 17 tensors",
                     (long long)attr_int(node, "axis", 1));
        return mark_outputs_bad(im, node);
    }
    Shape out = *tensor_shape(im, first->tensor);
    int merge[16];
    for (size_t k = 1; k < node->n_input; k++) {
        const Value *v = node_value(im, node, k);
        if (!v)
            return mark_outputs_bad(im, node);
        const Shape *s = tensor_shape(im, v->tensor);
        bool fits = v->layout == CHANNELS_FIRST && s->rank == out.rank;
        for (int a = 0; fits && a + 1 < out.rank; a++)
            fits = s->dim[a] == out.dim[a];
        if (!fits) {
            import_error(im, node, "its inputs differ in more than their channels");
            return mark_outputs_bad(im, node);
        }
        out.dim[out.rank - 1] += s->dim[s->rank - 1];
        merge[k - 1] = v->tensor;
    }
    int st = stmt_add(im, node, "concat", first->tensor, &out);
    memcpy(im->stmts[st].merge, merge, (node->n_input - 1) * sizeof *merge);
    im->stmts[st].nmerge = (int)node->n_input - 1;
}

static const char *activation_kind(const char *op)
{
    static const char *const map[][2] = {{"Relu", "relu"},
                                         {"Sigmoid", "sigmoid"},
                                         {"Tanh", "tanh"},
                                         {"Softmax", "softmax"},
                                         {"LeakyRelu", "leaky_relu"}};
    for (size_t k = 0; k < sizeof map / sizeof *map; k++)
        if (strcmp(op, map[k][0]) == 0)
            return map[k][1];
    return NULL;
}

/* Softmax over the channels only: ONNX's axis 1 of a channels-first
 * value (opset 13; before it, axis 1 of [N, F] is the same). */
static bool softmax_fits(Importer *im, const Onnx__NodeProto *node, const Value *x)
{
    int rank = value_rank(im, x);
    int64_t axis = attr_int(node, "axis", im->opset >= 13 ? -1 : 1);
    if (axis < 0)
        axis += rank;
    if ((rank == 2 && axis == 1 && x->layout != FLAT_NCHW) ||
        (rank > 2 && axis == 1 && x->layout == CHANNELS_FIRST && im->opset >= 13))
        return true;
    import_error(im, node,
                 "attribute axis=%lld: cnngen's softmax is over the channels (axis 1 "
                 "of a channels-first value)",
                 (long long)attr_int(node, "axis", -1));
    return false;
}

static void import_activation(Importer *im, const Onnx__NodeProto *node, const char *kind)
{
    const Value *x = node_value(im, node, 0);
    if (!x || (strcmp(kind, "softmax") == 0 && !softmax_fits(im, node, x)))
        return mark_outputs_bad(im, node);
    double alpha = attr_float(node, "alpha", 0.01);
    if (!isfinite(alpha)) {
        import_error(im, node, "attribute alpha is not a finite number");
        return mark_outputs_bad(im, node);
    }
    Statement *prev = x->tensor > 0 ? &im->stmts[x->tensor] : NULL;
    /* folded into the conv or dense layer before it: activation= (which
     * uses leaky_relu's default alpha) */
    if (prev && prev->linear_map && !prev->activation && prev->uses == 1 &&
        x->layout == CHANNELS_FIRST && (!im->from_cnngen || is_layer_part(node)) &&
        (strcmp(kind, "leaky_relu") != 0 || (float)alpha == 0.01f)) {
        prev->activation = kind;
        value_set(im, node->output[0], *x);
        return;
    }
    /* element-wise: the value keeps its layout (a channels-first flatten
     * stays one) */
    int st = stmt_add(im, node, kind, x->tensor, tensor_shape(im, x->tensor));
    im->vals[im->nvals - 1].layout = x->layout;
    if (strcmp(kind, "leaky_relu") == 0 && (float)alpha != 0.01f)
        strbuf_printf(&im->stmts[st].args, "alpha=%s", float_text(im, alpha));
}

static const char *const pool_kinds[2][4] = {{NULL, "avgpool1d", "avgpool2d", "avgpool3d"},
                                             {NULL, "maxpool1d", "maxpool2d", "maxpool3d"}};

static void import_pool(Importer *im, const Onnx__NodeProto *node, bool is_max)
{
    const Value *x = node_value(im, node, 0);
    const Onnx__AttributeProto *ks = attr(node, "kernel_shape");
    if (!x)
        return mark_outputs_bad(im, node);
    int nd = ks ? (int)ks->n_ints : 0;
    Shape in;
    if (nd < 1 || nd > 3) {
        import_error(im, node,
                     "attribute kernel_shape has %d values: cnngen pools over 1 to 3 "
                     "axes",
                     nd);
        return mark_outputs_bad(im, node);
    }
    int64_t kernel[3], stride[3], dilation[3], sizes[3];
    if (!window_input(im, node, x, nd, &in) ||
        !attr_ints(im, node, "kernel_shape", nd, 1, kernel) ||
        !attr_ints(im, node, "strides", nd, 1, stride) ||
        !attr_ints(im, node, "dilations", nd, 1, dilation))
        return mark_outputs_bad(im, node);
    const char *padding = window_padding(im, node, &in, nd, kernel, stride, dilation, false, sizes);
    if (!padding)
        return mark_outputs_bad(im, node);
    if (!is_max && strcmp(padding, "valid") != 0 && attr_int(node, "count_include_pad", 0)) {
        import_error(im, node,
                     "attribute count_include_pad=1 with padding: cnngen's average "
                     "counts the real inputs only");
        return mark_outputs_bad(im, node);
    }
    Shape out;
    window_out_shape(nd, sizes, in.dim[nd], &out);
    int st = stmt_add(im, node, pool_kinds[is_max][nd], x->tensor, &out);
    Statement *s = &im->stmts[st];
    tuple_arg(&s->args, NULL, kernel, nd, 0);
    bool stride_is_size = true;
    for (int a = 0; a < nd; a++)
        stride_is_size &= stride[a] == kernel[a];
    if (!stride_is_size)
        tuple_arg(&s->args, "stride", stride, nd, 0);
    if (strcmp(padding, "valid") != 0)
        strbuf_printf(&s->args, ", padding=%s", padding);
}

static void import_global_pool(Importer *im, const Onnx__NodeProto *node, bool is_max)
{
    const Value *x = node_value(im, node, 0);
    if (!x)
        return mark_outputs_bad(im, node);
    const Shape *s = tensor_shape(im, x->tensor);
    if (x->layout != CHANNELS_FIRST || s->rank < 2) {
        import_error(im, node, "its input is not a channels-first [N, C, spatial...] value");
        return mark_outputs_bad(im, node);
    }
    Shape out = {1, {s->dim[s->rank - 1]}};
    stmt_add(im, node, is_max ? "global_maxpool" : "global_avgpool", x->tensor, &out);
    im->vals[im->nvals - 1].layout = POOLED;
}

static void import_batchnorm(Importer *im, const Onnx__NodeProto *node)
{
    const Value *x = node_value(im, node, 0);
    Const p[4];
    static const char *const what[] = {"scale", "B", "mean", "var"};
    static const char *const names[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    if (!x)
        return mark_outputs_bad(im, node);
    for (int k = 0; k < 4; k++)
        if (!node_const(im, node, (size_t)k + 1, what[k], &p[k]))
            return mark_outputs_bad(im, node);
    const Shape *s = tensor_shape(im, x->tensor);
    int64_t channels = s->dim[s->rank - 1];
    if (x->layout != CHANNELS_FIRST && x->layout != POOLED) {
        import_error(im, node, "its input is not a channels-first value");
        return mark_outputs_bad(im, node);
    }
    for (size_t k = 1; k < node->n_output; k++)
        if (node->output[k] && *node->output[k] && uses_of(im, node->output[k])) {
            import_error(im, node,
                         "its running statistics are read: cnngen imports inference "
                         "graphs");
            return mark_outputs_bad(im, node);
        }
    double momentum = attr_float(node, "momentum", 0.9),
           epsilon = attr_float(node, "epsilon", 1e-5);
    if (!(momentum >= 0 && momentum <= 1) || !(epsilon > 0 && isfinite(epsilon))) {
        import_error(im, node,
                     "attributes momentum=%g and epsilon=%g: cnngen's batchnorm takes a "
                     "momentum in [0, 1] and an epsilon above 0",
                     momentum, epsilon);
        return mark_outputs_bad(im, node);
    }
    int st = stmt_add(im, node, "batchnorm", x->tensor, s);
    im->vals[im->nvals - 1].layout = x->layout;
    Statement *b = &im->stmts[st];
    /* cnngen's defaults (Keras') are left out */
    if ((float)momentum != 0.99f)
        strbuf_printf(&b->args, "momentum=%s", float_text(im, momentum));
    if ((float)epsilon != 0.001f)
        strbuf_printf(&b->args, "%sepsilon=%s", b->args.len ? ", " : "", float_text(im, epsilon));
    for (int k = 0; k < 4; k++) {
        if (p[k].count != channels) {
            import_error(im, node, "its %s has %lld values, not %lld", what[k],
                         (long long)p[k].count, (long long)channels);
            return;
        }
        float *v = tensor_add(im, st, names[k], &channels, 1);
        for (int64_t c = 0; c < channels; c++)
            v[c] = (float)p[k].values[c];
    }
}

static void import_dropout(Importer *im, const Onnx__NodeProto *node)
{
    const Value *x = node_value(im, node, 0);
    if (!x)
        return mark_outputs_bad(im, node);
    double rate = attr_float(node, "ratio", 0.5);
    Const c;
    if (node->n_input > 1 && node->input[1] && *node->input[1]) {
        if (!node_const(im, node, 1, "ratio", &c))
            return mark_outputs_bad(im, node);
        if (c.count != 1) {
            import_error(im, node, "its ratio has %lld values, not 1", (long long)c.count);
            return mark_outputs_bad(im, node);
        }
        rate = c.values[0];
    }
    if (node->n_input > 2 && node->input[2] && *node->input[2]) {
        import_error(im, node, "input training_mode: cnngen imports inference graphs");
        return mark_outputs_bad(im, node);
    }
    if (!(rate >= 0 && rate < 1)) {
        import_error(im, node, "its ratio is %g: cnngen's dropout takes a rate in [0, 1)", rate);
        return mark_outputs_bad(im, node);
    }
    int st = stmt_add(im, node, "dropout", x->tensor, tensor_shape(im, x->tensor));
    im->vals[im->nvals - 1].layout = x->layout;
    strbuf_printf(&im->stmts[st].args, "%s", float_text(im, rate));
}

/* Flatten, or a Reshape to [N, -1] or [N, F]: how the value is seen. */
static void flatten_value(Importer *im, const Onnx__NodeProto *node, const Value *x)
{
    const Shape *s = tensor_shape(im, x->tensor);
    Value v = *x;
    if (x->layout == CHANNELS_FIRST && s->rank == 1 && im->from_cnngen && !is_layer_part(node)) {
        stmt_add(im, node, "flatten", v.tensor, s); /* a flatten layer of a flat tensor */
        return;
    }
    switch (x->layout) {
    case CHANNELS_FIRST: v.layout = s->rank > 1 ? FLAT_NCHW : CHANNELS_FIRST; break;
    case POOLED: v.layout = CHANNELS_FIRST; break;
    case FLAT_NCHW: break;
    case CHANNELS_LAST:
    case EXPANDED:
        /* in cnngen's order already: its flatten */
        if (s->rank > 1) {
            Shape out = {1, {shape_size(s)}};
            stmt_add(im, node, "flatten", x->tensor, &out);
            return;
        }
        v.layout = CHANNELS_FIRST;
        break;
    }
    value_set(im, node->output[0], v);
}

static void import_flatten(Importer *im, const Onnx__NodeProto *node)
{
    const Value *x = node_value(im, node, 0);
    if (!x)
        return mark_outputs_bad(im, node);
    flatten_value(im, node, x);
}

static void import_reshape(Importer *im, const Onnx__NodeProto *node)
{
    const Value *x = node_value(im, node, 0);
    Const shape;
    if (!x || !node_const(im, node, 1, "shape", &shape))
        return mark_outputs_bad(im, node);
    int64_t features = shape_size(tensor_shape(im, x->tensor));
    bool flattens = shape.count == 2 && (shape.values[0] == 0 || shape.values[0] == -1) &&
                    (shape.values[1] == -1 || shape.values[1] == (double)features);
    if (shape.count == 2 && shape.values[0] > 0 && shape.values[1] == (double)features)
        flattens = true; /* a fixed batch, as some exporters write */
    if (!flattens) {
        import_error(im, node,
                     "a reshape other than a flatten to [N, features]: cnngen "
                     "reshapes only by flattening");
        return mark_outputs_bad(im, node);
    }
    flatten_value(im, node, x);
}

/* Which of the two transposes between the layouts a Transpose is, for a
 * value of this rank (batch included): to channels-last
 * [0, 2, ..., r-1, 1], back to channels-first [0, r-1, 1, ..., r-2]
 * (for rank 3 the same [0, 2, 1], so both bits), or neither (0). */
enum { PERM_TO_LAST = 1, PERM_TO_FIRST = 2 };

static int perm_kind(const Onnx__NodeProto *node, int rank)
{
    const Onnx__AttributeProto *a = attr(node, "perm");
    if (!a || (int)a->n_ints != rank || rank < 3)
        return 0;
    bool to_last = true, to_first = true;
    for (int k = 0; k < rank; k++) {
        to_last &= a->ints[k] == (k == 0 ? 0 : k == rank - 1 ? 1 : k + 1);
        to_first &= a->ints[k] == (k == 0 ? 0 : k == 1 ? rank - 1 : k - 1);
    }
    return (to_last ? PERM_TO_LAST : 0) | (to_first ? PERM_TO_FIRST : 0);
}

/* A Transpose as cnngen's permute: perm (batch included) of a
 * channels-first value of a rank-k tensor, turned into dims over the
 * tensor's own axes (0-based in dims); false unless the batch stays. */
static bool permute_dims(const Onnx__AttributeProto *perm, int k, int *dims)
{
    if (!perm || (int)perm->n_ints != k + 1 || perm->ints[0] != 0)
        return false;
    bool seen[SHAPE_MAX_RANK + 1] = {false};
    for (int t = 0; t <= k; t++) {
        if (perm->ints[t] < 0 || perm->ints[t] > k || seen[perm->ints[t]])
            return false;
        seen[perm->ints[t]] = true;
    }
    /* ONNX axis 1 holds cnngen's last axis, axis t > 1 its axis t - 2 */
    for (int a = 0; a < k; a++) {
        int64_t from = perm->ints[k == 1 ? 1 : a == k - 1 ? 1 : a + 2];
        dims[a] = k == 1 ? 0 : from == 1 ? k - 1 : (int)from - 2;
    }
    return true;
}

/* To channels-last (before a flatten, as cnngen's flatten) and back to
 * channels-first (after a channels-last input, as Keras' exports begin):
 * how the value is seen.  Any other permutation of a channels-first
 * value, and every Transpose that cnngen's export wrote as a layer, is
 * cnngen's permute. */
static void import_transpose(Importer *im, const Onnx__NodeProto *node)
{
    const Value *x = node_value(im, node, 0);
    if (!x)
        return mark_outputs_bad(im, node);
    int perm = perm_kind(node, value_rank(im, x));
    Layout layout = x->layout;
    bool a_layer = im->from_cnngen && !is_layer_part(node);
    if (!a_layer && layout == CHANNELS_FIRST && (perm & PERM_TO_LAST))
        layout = CHANNELS_LAST;
    else if (!a_layer && layout == CHANNELS_LAST && (perm & PERM_TO_FIRST))
        layout = CHANNELS_FIRST;
    if (layout != x->layout) {
        value_set(im, node->output[0], (Value){.tensor = x->tensor, .layout = layout});
        return;
    }
    const Shape *in = tensor_shape(im, x->tensor);
    int dims[SHAPE_MAX_RANK];
    if (x->layout != CHANNELS_FIRST || !permute_dims(attr(node, "perm"), in->rank, dims)) {
        import_error(im, node,
                     "attribute perm: a permutation that keeps the batch first, of a "
                     "channels-first value, is cnngen's permute; this one is not");
        return mark_outputs_bad(im, node);
    }
    Shape out = {in->rank, {0}};
    for (int a = 0; a < in->rank; a++)
        out.dim[a] = in->dim[dims[a]];
    int st = stmt_add(im, node, "permute", x->tensor, &out);
    StrBuf *args = &im->stmts[st].args;
    strbuf_printf(args, "(");
    for (int a = 0; a < out.rank; a++)
        strbuf_printf(args, "%s%d", a ? ", " : "", dims[a] + 1);
    strbuf_printf(args, "%s)", out.rank == 1 ? "," : "");
}

/* Unsqueeze at axis 1 of a value in cnngen's order: the channel that a
 * window layer adds itself. */
static void import_unsqueeze(Importer *im, const Onnx__NodeProto *node)
{
    const Value *x = node_value(im, node, 0);
    if (!x)
        return mark_outputs_bad(im, node);
    Const axes = {0};
    const Onnx__AttributeProto *a = attr(node, "axes");
    double axis = -99;
    if (a && a->n_ints == 1)
        axis = (double)a->ints[0];
    else if (!a && node->n_input > 1 && node_const(im, node, 1, "axes", &axes) && axes.count == 1)
        axis = axes.values[0];
    else if (!a && node->n_input > 1 && !axes.values)
        return mark_outputs_bad(im, node); /* node_const said why */
    int rank = value_rank(im, x);
    if (axis < 0)
        axis += rank + 1;
    bool ordered = x->layout == CHANNELS_LAST ||
                   (x->layout == CHANNELS_FIRST && tensor_shape(im, x->tensor)->rank == 1);
    if (axis != 1 || !ordered) {
        import_error(im, node,
                     "an unsqueeze other than a channel axis of 1 in front of a value "
                     "in cnngen's order");
        return mark_outputs_bad(im, node);
    }
    value_set(im, node->output[0], (Value){.tensor = x->tensor, .layout = EXPANDED});
}

/* Resize (or Upsample) by integer factors, nearest neighbour: cnngen's
 * upsample repeats each value. */
static void import_resize(Importer *im, const Onnx__NodeProto *node)
{
    const Value *x = node_value(im, node, 0);
    if (!x)
        return mark_outputs_bad(im, node);
    Const scales;
    size_t at = strcmp(op_name(node), "Upsample") == 0 ? 1 : 2;
    const char *mode = attr_string(im, node, "mode", "nearest");
    const char *ctm = attr_string(im, node, "coordinate_transformation_mode", "half_pixel");
    const char *nearest = attr_string(im, node, "nearest_mode", "round_prefer_floor");
    if (!node_const(im, node, at, "scales", &scales))
        return mark_outputs_bad(im, node);
    int nd = (int)scales.count - 2;
    Shape in;
    if (nd < 1 || nd > 3) {
        import_error(im, node,
                     "its scales have %lld values: cnngen upsamples by a factor per "
                     "spatial axis, 1 to 3 of them (a Resize by sizes is not supported)",
                     (long long)scales.count);
        return mark_outputs_bad(im, node);
    }
    if (!window_input(im, node, x, nd, &in))
        return mark_outputs_bad(im, node);
    bool integers = scales.values[0] == 1 && scales.values[1] == 1;
    int64_t size[3];
    for (int a = 0; a < nd; a++) {
        double v = scales.values[2 + a];
        /* converted only where it fits: a float past int64 has no value */
        size[a] = v >= 1 && v <= (double)SHAPE_MAX_ELEMENTS ? (int64_t)v : 0;
        integers &= v == (double)size[a];
    }
    /* with integer factors, half_pixel and round_prefer_floor pick the
     * same inputs as asymmetric and floor */
    bool nearest_ok =
        strcmp(mode, "nearest") == 0 &&
        (at == 1 || strcmp(ctm, "asymmetric") == 0 || strcmp(ctm, "half_pixel") == 0) &&
        (strcmp(nearest, "floor") == 0 || strcmp(nearest, "round_prefer_floor") == 0);
    if (!integers || !nearest_ok) {
        import_error(im, node,
                     "cnngen's upsample is nearest neighbour by whole factors on the "
                     "spatial axes (mode=%s, coordinate_transformation_mode=%s, nearest_mode=%s)",
                     mode, ctm, nearest);
        return mark_outputs_bad(im, node);
    }
    Shape out = in;
    for (int a = 0; a < nd; a++)
        out.dim[a] *= size[a];
    static const char *const kinds[] = {NULL, "upsample1d", "upsample2d", "upsample3d"};
    int st = stmt_add(im, node, kinds[nd], x->tensor, &out);
    tuple_arg(&im->stmts[st].args, NULL, size, nd, 0);
}

static void import_identity(Importer *im, const Onnx__NodeProto *node)
{
    const Value *x = node_value(im, node, 0);
    if (!x)
        return mark_outputs_bad(im, node);
    if (im->from_cnngen && !is_layer_part(node)) {
        Value v = *x;
        stmt_add(im, node, "linear", v.tensor, tensor_shape(im, v.tensor));
        im->vals[im->nvals - 1].layout = v.layout;
        return;
    }
    value_set(im, node->output[0], *x);
}

/* What a node's attributes alone rule out, whatever its inputs: checked
 * first, so a node after a refused one is still reported for its own. */
static bool attrs_expressible(Importer *im, const Onnx__NodeProto *node, const char *op)
{
    bool ok = true;
    if (strcmp(op, "MaxPool") == 0 || strcmp(op, "AveragePool") == 0) {
        const Onnx__AttributeProto *d = attr(node, "dilations");
        ok &= attr_is_default(im, node, "ceil_mode", 0);
        if (op[0] == 'M')
            ok &= attr_is_default(im, node, "storage_order", 0);
        for (size_t a = 0; d && a < d->n_ints; a++)
            if (d->ints[a] != 1) {
                import_error(im, node, "attribute dilations: cnngen's pools have none");
                ok = false;
                break;
            }
        if (node->n_output > 1 && node->output[1] && *node->output[1]) {
            import_error(im, node, "its second output (the indices) is not expressible");
            ok = false;
        }
    } else if (strcmp(op, "Gemm") == 0) {
        ok &= attr_is_default(im, node, "transA", 0);
    } else if (strcmp(op, "BatchNormalization") == 0) {
        ok &= attr_is_default(im, node, "training_mode", 0);
    } else if (strcmp(op, "Flatten") == 0 && attr_int(node, "axis", 1) != 1) {
        import_error(im, node, "attribute axis=%lld: cnngen flattens all but the batch (axis 1)",
                     (long long)attr_int(node, "axis", 1));
        ok = false;
    }
    return ok;
}

/* Whether a node reads a value made by a refused node (which was reported). */
static bool reads_bad_value(Importer *im, const Onnx__NodeProto *node)
{
    for (size_t k = 0; k < node->n_input; k++) {
        intptr_t i;
        if (node->input[k] && strmap_get(&im->values, node->input[k], &i) && im->vals[i].bad)
            return true;
    }
    return false;
}

/* The operators with a form in cnngen (docs/onnx.md), each with the
 * function that writes it. */
static void import_activation_node(Importer *im, const Onnx__NodeProto *node)
{
    import_activation(im, node, activation_kind(op_name(node)));
}

static void import_max_pool(Importer *im, const Onnx__NodeProto *node)
{
    import_pool(im, node, true);
}

static void import_average_pool(Importer *im, const Onnx__NodeProto *node)
{
    import_pool(im, node, false);
}

static void import_global_max_pool(Importer *im, const Onnx__NodeProto *node)
{
    import_global_pool(im, node, true);
}

static void import_global_average_pool(Importer *im, const Onnx__NodeProto *node)
{
    import_global_pool(im, node, false);
}

static const struct {
    const char *op;
    void (*import)(Importer *im, const Onnx__NodeProto *node);
} operators[] = {
    {"Conv", import_conv},
    {"Gemm", import_gemm},
    {"MatMul", import_matmul},
    {"Add", import_add},
    {"Sum", import_add},
    {"Concat", import_concat},
    {"Relu", import_activation_node},
    {"Sigmoid", import_activation_node},
    {"Tanh", import_activation_node},
    {"Softmax", import_activation_node},
    {"LeakyRelu", import_activation_node},
    {"MaxPool", import_max_pool},
    {"AveragePool", import_average_pool},
    {"GlobalMaxPool", import_global_max_pool},
    {"GlobalAveragePool", import_global_average_pool},
    {"BatchNormalization", import_batchnorm},
    {"Dropout", import_dropout},
    {"Flatten", import_flatten},
    {"Reshape", import_reshape},
    {"Transpose", import_transpose},
    {"Unsqueeze", import_unsqueeze},
    {"Resize", import_resize},
    {"Upsample", import_resize},
    {"Identity", import_identity},
};

static void import_node(Importer *im, const Onnx__NodeProto *node)
{
    const char *op = op_name(node);
    if (node->domain && *node->domain && strcmp(node->domain, "ai.onnx") != 0) {
        import_error(im, node, "operator domain '%s': cnngen reads the default domain",
                     node->domain);
        return mark_outputs_bad(im, node);
    }
    size_t k = 0, n = sizeof operators / sizeof *operators;
    while (k < n && strcmp(op, operators[k].op) != 0)
        k++;
    if (k == n) {
        import_error(im, node, "operator %s is not supported (docs/onnx.md lists what is)", op);
        return mark_outputs_bad(im, node);
    }
    if (node->n_output < 1 || !node->output[0] || !*node->output[0]) {
        import_error(im, node, "it has no output");
        return;
    }
    if (!attrs_expressible(im, node, op) || reads_bad_value(im, node))
        return mark_outputs_bad(im, node);
    operators[k].import(im, node);
}

/* ---- the graph --------------------------------------------------------- */

static bool is_constant_name(Importer *im, const char *name)
{
    const Onnx__TensorProto *t;
    return const_find(im, name, &t);
}

/* A statement that no node of the file makes: written as if by a node of
 * this name and operator (for its label), whose output is `output`. */
static int stmt_add_synthetic(Importer *im, const char *name, const char *op, const char *output,
                              const char *kind, int src, const Shape *out)
{
    char *outputs[1] = {(char *)output};
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    node.name = (char *)name;
    node.op_type = (char *)op;
    node.n_output = 1;
    node.output = outputs;
    return stmt_add(im, &node, kind, src, out);
}

/* --input-layout nchw: the model takes ONNX's channels-first input as it
 * is, input [C, d...], and its first layer makes it cnngen's order. */
static void permute_input(Importer *im, const char *name, const int64_t *dims, int rank)
{
    Shape onnx = {rank, {0}};
    memcpy(onnx.dim, dims, (size_t)rank * sizeof *dims);
    Shape last = im->stmts[0].out;
    im->stmts[0].out = onnx;
    int st = stmt_add_synthetic(im, "channels_last", "Transpose", name, "permute", 0, &last);
    strbuf_printf(&im->stmts[st].args, "(");
    for (int a = 1; a < rank; a++)
        strbuf_printf(&im->stmts[st].args, "%d, ", a + 1);
    strbuf_printf(&im->stmts[st].args, "1)");
    im->input_in_order = true;
}

/* Whether every node reading value `name` (of ONNX rank `rank` without
 * the batch) reads it as `fits` says, at input index i. */
static bool every_reader(const Onnx__GraphProto *g, const char *name, int rank,
                         bool (*fits)(const Onnx__NodeProto *n, size_t i, int rank))
{
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        for (size_t i = 0; i < n->n_input; i++)
            if (n->input[i] && strcmp(n->input[i], name) == 0 && !fits(n, i, rank))
                return false;
    }
    return true;
}

static bool reads_as_window(const Onnx__NodeProto *n, size_t i, int rank)
{
    (void)rank;
    return i == 0 && (strcmp(op_name(n), "Conv") == 0 || strcmp(op_name(n), "MaxPool") == 0 ||
                      strcmp(op_name(n), "AveragePool") == 0);
}

static bool transposes_to_first(const Onnx__NodeProto *n, size_t i, int rank)
{
    (void)i;
    return strcmp(op_name(n), "Transpose") == 0 && (perm_kind(n, rank + 1) & PERM_TO_FIRST);
}

/* The one graph input that is not an initializer: float32 [N, dims...]
 * with every dim but the batch fixed; channels-first unless every node
 * reading it is a window of its rank with one channel (then cnngen's
 * input [d...], read with one channel, as the course's models write it). */
static bool import_input(Importer *im, const Onnx__GraphProto *g)
{
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t k = 0; k < g->n_input; k++)
        if (g->input[k]->name && !is_constant_name(im, g->input[k]->name)) {
            if (in) {
                import_error(im, NULL,
                             "the graph has more than one input ('%s', '%s'): a "
                             "cnngen model has one",
                             in->name, g->input[k]->name);
                return false;
            }
            in = g->input[k];
        }
    const Onnx__TypeProto *t = in ? in->type : NULL;
    if (!in || !t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !t->tensor_type->shape ||
        t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        import_error(im, NULL, "the graph has no float32 input of a known shape");
        return false;
    }
    const Onnx__TensorShapeProto *shape = t->tensor_type->shape;
    int rank = (int)shape->n_dim - 1;
    if (rank < 1 || rank > 4) {
        import_error(im, NULL,
                     "input '%s' has %zu dimensions: cnngen's inputs have 2 to 5 "
                     "(batch included)",
                     in->name, shape->n_dim);
        return false;
    }
    int64_t dims[5] = {0};
    for (int d = 1; d <= rank; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = shape->dim[d];
        if (dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
            dim->dim_value < 1 || dim->dim_value > SHAPE_MAX_ELEMENTS) {
            import_error(im, NULL,
                         "input '%s': dimension %d is not a fixed size: cnngen "
                         "compiles every shape but the batch",
                         in->name, d);
            return false;
        }
        dims[d - 1] = dim->dim_value;
    }
    Shape s = {rank, {0}};
    if (rank == 1) {
        s.dim[0] = dims[0];
    } else {
        for (int a = 1; a < rank; a++)
            s.dim[a - 1] = dims[a];
        s.dim[rank - 1] = dims[0];
    }
    /* read with one channel: [N, 1, d...] -> input [d...] */
    bool windows_only =
        rank >= 2 && dims[0] == 1 && every_reader(g, in->name, rank, reads_as_window);
    /* channels-last, when every reader transposes it to channels-first
     * (Keras' models, exported by tf2onnx, begin so) */
    bool channels_last = rank >= 2 && every_reader(g, in->name, rank, transposes_to_first);
    Layout layout = CHANNELS_FIRST;
    im->input_name = in->name;
    im->input_in_order = rank == 1 || channels_last || windows_only || dims[0] == 1;
    if (channels_last) {
        memcpy(s.dim, dims, (size_t)rank * sizeof *dims);
        layout = CHANNELS_LAST;
    } else if (windows_only) {
        s.rank = rank - 1;
        for (int a = 0; a < s.rank; a++)
            s.dim[a] = dims[a + 1];
        layout = EXPANDED;
    }
    im->stmts = xcalloc(32, sizeof *im->stmts);
    im->capstmts = 32;
    im->stmts[0] = (Statement){.kind = "input", .name = "input", .out = s, .src = -1};
    im->nstmts = 1;
    value_set(im, in->name, (Value){.tensor = 0, .layout = layout});
    if (im->o->input_onnx_order && !im->input_in_order)
        permute_input(im, in->name, dims, rank);
    return true;
}

static void count_uses(Importer *im, const Onnx__GraphProto *g)
{
    for (size_t k = 0; k < g->n_node; k++)
        for (size_t i = 0; i < g->node[k]->n_input; i++) {
            const char *name = g->node[k]->input[i];
            intptr_t n = 0;
            if (!name || !*name)
                continue;
            strmap_get(&im->uses, name, &n);
            strmap_put(&im->uses, name, n + 1);
        }
    for (size_t k = 0; k < g->n_output; k++) {
        const char *name = g->output[k]->name;
        intptr_t n = 0;
        if (name) {
            strmap_get(&im->uses, name, &n);
            strmap_put(&im->uses, name, n + 1);
        }
    }
}

static void collect_constants(Importer *im, const Onnx__GraphProto *g)
{
    for (size_t k = 0; k < g->n_initializer; k++)
        if (g->initializer[k]->name)
            strmap_put(&im->constants, g->initializer[k]->name, (intptr_t)g->initializer[k]);
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        const Onnx__AttributeProto *v = attr(n, "value");
        if (n->op_type && strcmp(n->op_type, "Constant") == 0 && n->n_output == 1 && v && v->t)
            strmap_put(&im->constants, n->output[0], (intptr_t)v->t);
    }
}

/* The nodes the output depends on: the rest is not written. */
static bool *live_nodes(Importer *im, const Onnx__GraphProto *g)
{
    bool *live = xcalloc(g->n_node + 1, sizeof *live);
    StrMap needed = {0};
    for (size_t k = 0; k < g->n_output; k++)
        if (g->output[k]->name)
            strmap_put(&needed, g->output[k]->name, 1);
    for (size_t k = g->n_node; k-- > 0;) {
        const Onnx__NodeProto *n = g->node[k];
        intptr_t v;
        for (size_t o = 0; o < n->n_output; o++)
            live[k] |= n->output[o] && strmap_get(&needed, n->output[o], &v);
        for (size_t i = 0; live[k] && i < n->n_input; i++)
            if (n->input[i] && *n->input[i])
                strmap_put(&needed, n->input[i], 1);
    }
    strmap_free(&needed);
    (void)im;
    return live;
}

/* ---- writing the .cnn -------------------------------------------------- */

/* cnngen's automatic name of statement st: its kind and its count among
 * the layers of that kind. */
/* A string of the file as it may stand in a comment of the .cnn: printable
 * ASCII only (a newline would end the comment, and the .cnn is UTF-8),
 * other bytes as '?', at most 200 of them. */
static const char *comment_text(Importer *im, const char *s)
{
    char *out = arena_strndup(&im->arena, s ? s : "", s ? strnlen(s, 200) : 0);
    for (char *p = out; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
    return out;
}

/* Called once per statement, in order: counts the kinds as it goes. */
static bool is_auto_name(Importer *im, int st)
{
    intptr_t count = 0;
    strmap_get(&im->kind_counts, im->stmts[st].kind, &count);
    strmap_put(&im->kind_counts, im->stmts[st].kind, ++count);
    char buf[64];
    snprintf(buf, sizeof buf, "%s_%ld", im->stmts[st].kind, (long)count);
    return strcmp(buf, im->stmts[st].name) == 0;
}

static void print_stmt(Importer *im, StrBuf *b, int st, const char *input_alias)
{
    Statement *s = &im->stmts[st];
    if (s->src != st - 1)
        strbuf_printf(b, "from %s\n", s->src == 0 ? input_alias : im->stmts[s->src].name);
    if (!is_auto_name(im, st) || s->referenced)
        strbuf_printf(b, "%s: ", s->name);
    strbuf_printf(b, "%s", s->kind);
    StrBuf args = {0};
    if (s->args.len)
        strbuf_append(&args, s->args.data, s->args.len);
    for (int k = 0; k < s->nmerge; k++)
        strbuf_printf(&args, "%s%s", args.len ? ", " : "",
                      s->merge[k] == 0 ? input_alias : im->stmts[s->merge[k]].name);
    if (s->linear_map && s->ntensors == 1)
        strbuf_printf(&args, ", bias=false");
    if (s->activation)
        strbuf_printf(&args, "%sactivation=%s", args.len ? ", " : "", s->activation);
    if (args.len || s->linear_map || s->nmerge)
        strbuf_printf(b, "(%s)", args.data ? args.data : "");
    strbuf_printf(b, "\n");
    strbuf_free(&args);
}

/* A linear conv or dense layer read by another one right after it: said
 * to be meant (cnngen warns about two linear maps in a row). */
static void mark_linear_chains(Importer *im)
{
    for (int st = 2; st < im->nstmts; st++) {
        Statement *prev = &im->stmts[im->stmts[st].src], *s = &im->stmts[st];
        if (im->stmts[st].src > 0 && prev->linear_map && !prev->activation && s->linear_map)
            prev->activation = "linear";
    }
}

static char *print_model(Importer *im)
{
    StrBuf b = {0};
    const char *input_alias = "input";
    for (int st = 1; st < im->nstmts; st++) {
        Statement *s = &im->stmts[st];
        if (s->src != st - 1)
            im->stmts[s->src].referenced = true;
        for (int k = 0; k < s->nmerge; k++)
            im->stmts[s->merge[k]].referenced = true;
    }
    mark_linear_chains(im);
    strbuf_printf(&b, "# Imported by cnngen from %s", comment_text(im, im->o->source_name));
    const Onnx__ModelProto *m = im->model;
    if (m->producer_name && *m->producer_name)
        strbuf_printf(&b, " (written by %s%s%s)", comment_text(im, m->producer_name),
                      m->producer_version && *m->producer_version ? " " : "",
                      comment_text(im, m->producer_version));
    strbuf_printf(&b, ", opset %lld.\n", (long long)im->opset);
    strbuf_printf(&b, "# Layers are named after the ONNX nodes; the weights are in the "
                      ".safetensors beside this file.\n");
    strbuf_printf(&b, "# Input: ONNX's '%s', %s.\n# Output: ONNX's '%s', %s.\n",
                  comment_text(im, im->input_name),
                  im->input_in_order ? "in this order" : "with its channels moved last",
                  comment_text(im, im->output_name),
                  im->output_in_order ? "in this order" : "with its channels moved last");
    strbuf_printf(&b, "model %s\n\ninput [", im->o->model_name);
    const Shape *input = &im->stmts[0].out;
    for (int a = 0; a < input->rank; a++)
        strbuf_printf(&b, "%s%lld", a ? ", " : "", (long long)input->dim[a]);
    strbuf_printf(&b, "]\n");
    if (im->stmts[0].referenced) {
        /* the input cannot be named: a linear layer right after it can */
        intptr_t taken;
        input_alias = "x";
        for (int n = 2; strmap_get(&im->names, input_alias, &taken); n++)
            input_alias = arena_printf(&im->arena, "x_%d", n);
        strbuf_printf(&b, "%s: linear\n", input_alias);
        strmap_put(&im->kind_counts, "linear", 1); /* cnngen counts it among the linears */
    }
    /* tensor 0 is now the alias: the current tensor, and named */
    for (int st = 1; st < im->nstmts; st++)
        print_stmt(im, &b, st, input_alias);
    return b.data;
}

/* The text compiles, and its tensors are the model's, name for name and
 * shape for shape: else this file wrote something wrong, said so. */
static bool check_written(Importer *im, const char *cnn)
{
    Diag *diag = diag_new("(imported)", cnn, strlen(cnn));
    Model *m = compile_source("(imported)", cnn, strlen(cnn), diag);
    bool ok = m && diag_error_count(diag) == 0 && m->nparams == im->ntensors;
    for (int k = 0; ok && k < m->nparams; k++) {
        const Param *p = m->params[k];
        const OnnxTensor *t = &im->tensors[k];
        ok = strcmp(p->name, t->name) == 0 && p->shape.rank == t->rank &&
             memcmp(p->shape.dim, t->dim, (size_t)t->rank * sizeof *t->dim) == 0;
    }
    if (!ok) {
        fprintf(stderr,
                "%s: error: cnngen's importer wrote a model that does not check (a bug; "
                "please report it with the file):\n%s",
                im->o->path, cnn);
        diag_report(diag, stderr, false);
    }
    model_free(m);
    diag_free(diag);
    return ok;
}

static char *folder_of(const char *path)
{
    char *copy = xstrdup(path), *slash = strrchr(copy, '/');
    if (slash)
        *slash = '\0';
    char resolved[PATH_MAX];
    char *dir =
        realpath(slash ? (*copy ? copy : "/") : ".", resolved) ? xstrdup(resolved) : xstrdup(".");
    free(copy);
    return dir;
}

static int64_t model_opset(const Onnx__ModelProto *m)
{
    for (size_t k = 0; k < m->n_opset_import; k++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[k];
        if (!o->domain || !*o->domain || strcmp(o->domain, "ai.onnx") == 0)
            return o->has_version ? o->version : 1;
    }
    return 1;
}

static void import_graph(Importer *im)
{
    const Onnx__GraphProto *g = im->model->graph;
    if (!g) {
        import_error(im, NULL, "the model has no graph");
        return;
    }
    if (g->n_output != 1) {
        import_error(im, NULL, "the graph has %zu outputs: a cnngen model has one", g->n_output);
        return;
    }
    collect_constants(im, g);
    count_uses(im, g);
    if (!import_input(im, g))
        return;
    bool *live = live_nodes(im, g);
    for (size_t k = 0; k < g->n_node; k++)
        if (live[k] && !(g->node[k]->op_type && strcmp(g->node[k]->op_type, "Constant") == 0))
            import_node(im, g->node[k]);
    free(live);
    intptr_t i;
    const char *out = g->output[0]->name;
    if (im->errors)
        return;
    if (!out || !strmap_get(&im->values, out, &i)) {
        import_error(im, NULL, "the graph's output '%s' is not made by any node", out ? out : "");
        return;
    }
    Value v = im->vals[i];
    if (v.bad) {
        import_error(im, NULL,
                     "the graph's output '%s' comes from a node that was refused "
                     "without a message (a bug of cnngen's importer)",
                     out);
        return;
    }
    const Shape *s = tensor_shape(im, v.tensor);
    im->output_name = out;
    /* cnngen's order, or ONNX's channels-first one with the channels moved
     * last; a channels-first flatten has neither, unless its order is
     * trivially both */
    bool trivial = s->rank == 1 || s->dim[s->rank - 1] == 1 || shape_size(s) == s->dim[s->rank - 1];
    if (v.layout == FLAT_NCHW && !trivial) {
        import_error(im, NULL,
                     "the graph's output '%s' is a channels-first tensor flattened: not "
                     "expressible, as cnngen flattens channels-last (a flatten before a dense "
                     "layer is, by permuting the dense layer's rows)",
                     out);
        return;
    }
    im->output_in_order = v.layout != CHANNELS_FIRST || trivial;
    if (v.tensor == 0) {
        /* the input itself (through identities): a model of one linear layer */
        stmt_add_synthetic(im, out, "Identity", out, "linear", 0, s);
    } else if (v.tensor != im->nstmts - 1) {
        import_error(im, NULL, "the graph's output '%s' is not its last layer's", out);
    }
}

int onnx_import(const OnnxImportOptions *o, OnnxImport *out)
{
    memset(out, 0, sizeof *out);
    int status = 0;
    size_t len = 0;
    unsigned char *bytes = read_file(o->path, &len, &status);
    if (!bytes)
        return status;
    Importer im = {.o = o};
    im.model = onnx__model_proto__unpack(NULL, len, bytes);
    free(bytes);
    if (!im.model) {
        fprintf(stderr,
                "%s: error: not an ONNX model (the protobuf does not parse: truncated, "
                "or another kind of file)\n",
                o->path);
        return 1;
    }
    im.dir = folder_of(o->path);
    im.from_cnngen = im.model->producer_name && strcmp(im.model->producer_name, "cnngen") == 0;
    im.opset = model_opset(im.model);
    import_graph(&im);
    if (im.errors > IMPORT_MAX_ERRORS)
        fprintf(stderr, "%s: %d more errors not shown\n", o->path, im.errors - IMPORT_MAX_ERRORS);
    if (im.errors == 0) {
        out->cnn = print_model(&im);
        if (!check_written(&im, out->cnn))
            status = ONNX_IMPORT_BUG;
    }
    if (im.errors || status) {
        status = status ? status : 1;
        free(out->cnn);
        out->cnn = NULL;
        for (int k = 0; k < im.ntensors; k++) {
            free(im.tensors[k].name);
            free(im.tensors[k].values);
        }
        free(im.tensors);
    } else {
        out->tensors = im.tensors;
        out->ntensors = im.ntensors;
    }
    for (int st = 0; st < im.nstmts; st++)
        strbuf_free(&im.stmts[st].args);
    free(im.stmts);
    free(im.vals);
    free(im.dir);
    strmap_free(&im.values);
    strmap_free(&im.constants);
    strmap_free(&im.uses);
    strmap_free(&im.names);
    strmap_free(&im.next_suffix);
    strmap_free(&im.kind_counts);
    onnx__model_proto__free_unpacked(im.model, NULL);
    arena_free(&im.arena);
    return status;
}

void onnx_import_free(OnnxImport *imp)
{
    for (int k = 0; k < imp->ntensors; k++) {
        free(imp->tensors[k].name);
        free(imp->tensors[k].values);
    }
    free(imp->tensors);
    free(imp->cnn);
    memset(imp, 0, sizeof *imp);
}
