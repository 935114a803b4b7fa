/* onnx_export.c - a checked model and its weights as an ONNX model
 * (--emit=onnx, opset 13), built as protobuf-c messages and packed.
 *
 * Every message lives in one arena, freed once the bytes are packed.
 * Each layer becomes the ONNX nodes that compute it on channels-first
 * values (onnx.h says how the layouts meet); a conv or dense layer's
 * activation becomes a node of its own after it, which the importer
 * folds back.  Values are named after the cnngen layer whose output they
 * are, so Netron shows the .cnn's names.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.h"
#include "onnx.pb-c.h"
#include "layers/layers.h"
#include "util.h"

typedef struct {
    const Model *m;
    const float *params;
    Arena arena;
    PtrVec nodes, inits;
    const char **values;      /* per cnngen node: its ONNX value (channels-first) */
    bool input_expanded;      /* ONNX's input has the channel its readers add */
    const Layer *unsupported; /* the first layer of a kind with no ONNX form */
} Exporter;

static void *ex_alloc(Exporter *x, size_t size)
{
    return arena_alloc(&x->arena, size);
}

static const char *ex_name(Exporter *x, const char *base, const char *suffix)
{
    return arena_printf(&x->arena, "%s%s", base, suffix);
}

static Onnx__AttributeProto *attr_new(Exporter *x, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = ex_alloc(x, sizeof *a);
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    return a;
}

/* A node with its inputs (NULL-terminated) and one output; attributes
 * are added with the node_* functions below. */
static Onnx__NodeProto *node_add(Exporter *x, const char *op, const char *name, const char *output,
                                 const char *const *inputs)
{
    Onnx__NodeProto *n = ex_alloc(x, sizeof *n);
    *n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    n->op_type = (char *)op;
    n->name = (char *)name;
    while (inputs[n->n_input])
        n->n_input++;
    n->input = ex_alloc(x, (n->n_input + 1) * sizeof *n->input);
    memcpy(n->input, inputs, n->n_input * sizeof *n->input);
    n->n_output = 1;
    n->output = ex_alloc(x, sizeof *n->output);
    n->output[0] = (char *)output;
    n->attribute = ex_alloc(x, 8 * sizeof *n->attribute);
    ptrvec_push(&x->nodes, n);
    return n;
}

static void node_attr(Onnx__NodeProto *n, Onnx__AttributeProto *a)
{
    n->attribute[n->n_attribute++] = a; /* at most 8: node_add's room */
}

static void node_int(Exporter *x, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr_new(x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
    node_attr(n, a);
}

static void node_float(Exporter *x, Onnx__NodeProto *n, const char *name, double v)
{
    Onnx__AttributeProto *a = attr_new(x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = (float)v;
    node_attr(n, a);
}

static void node_ints(Exporter *x, Onnx__NodeProto *n, const char *name, const int64_t *v,
                      int count)
{
    Onnx__AttributeProto *a = attr_new(x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)count;
    a->ints = ex_alloc(x, (size_t)(count + 1) * sizeof *a->ints);
    memcpy(a->ints, v, (size_t)count * sizeof *v);
    node_attr(n, a);
}

static void node_string(Exporter *x, Onnx__NodeProto *n, const char *name, const char *s)
{
    Onnx__AttributeProto *a = attr_new(x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.data = (uint8_t *)s;
    a->s.len = strlen(s);
    node_attr(n, a);
}

/* An initializer of the given dims; its data, to fill in, is returned. */
static void *init_add(Exporter *x, const char *name, int32_t type, const int64_t *dims, int rank,
                      size_t element_size)
{
    Onnx__TensorProto *t = ex_alloc(x, sizeof *t);
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = type;
    t->n_dims = (size_t)rank;
    t->dims = ex_alloc(x, (size_t)(rank + 1) * sizeof *t->dims);
    size_t count = 1;
    for (int d = 0; d < rank; d++) {
        t->dims[d] = dims[d];
        count *= (size_t)dims[d];
    }
    t->has_raw_data = 1;
    t->raw_data.len = count * element_size;
    t->raw_data.data = ex_alloc(x, t->raw_data.len + 1);
    ptrvec_push(&x->inits, t);
    return t->raw_data.data;
}

/* Raw data is little-endian; so are the machines cnngen runs on, but the
 * bytes are written one by one all the same. */
static void put_float(uint8_t *at, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    for (int b = 0; b < 4; b++)
        at[b] = (uint8_t)(u >> (8 * b));
}

static void put_int64(uint8_t *at, int64_t v)
{
    for (int b = 0; b < 8; b++)
        at[b] = (uint8_t)((uint64_t)v >> (8 * b));
}

static const char *init_int64s(Exporter *x, const char *name, const int64_t *v, int count)
{
    int64_t dims[1] = {count};
    uint8_t *data =
        init_add(x, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, dims, 1, sizeof(int64_t));
    for (int k = 0; k < count; k++)
        put_int64(data + 8 * k, v[k]);
    return name;
}

static const char *init_floats(Exporter *x, const char *name, const int64_t *dims, int rank,
                               const float *v)
{
    uint8_t *data = init_add(x, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, rank, 4);
    size_t count = 1;
    for (int d = 0; d < rank; d++)
        count *= (size_t)dims[d];
    for (size_t k = 0; k < count; k++)
        put_float(data + 4 * k, v[k]);
    return name;
}

static const float *param_values(Exporter *x, const Layer *l, int k)
{
    return x->params + l->params[k].offset;
}

/* A parameter as it is (bias, batchnorm's vectors). */
static const char *init_param(Exporter *x, const Layer *l, int k)
{
    const Param *p = &l->params[k];
    return init_floats(x, p->name, p->shape.dim, p->shape.rank, param_values(x, l, k));
}

/* ---- layouts ----------------------------------------------------------- */

/* A tensor's rank in ONNX: the batch, then its own axes. */
static int onnx_rank(const Shape *s)
{
    return s->rank + 1;
}

/* The permutation that takes a channels-first value of rank r (batch
 * included) to channels-last: [0, 2, ..., r-1, 1]. */
static void channels_last_perm(int rank, int64_t *perm)
{
    perm[0] = 0;
    for (int a = 1; a < rank - 1; a++)
        perm[a] = a + 1;
    perm[rank - 1] = 1;
}

/* Value in (a tensor of shape s) in cnngen's order, for layer l: a
 * Transpose to channels-last where it has channels (rank > 1). */
static const char *to_channels_last(Exporter *x, const Layer *l, const char *in, const Shape *s)
{
    if (s->rank < 2)
        return in;
    int64_t perm[SHAPE_MAX_RANK + 1];
    channels_last_perm(onnx_rank(s), perm);
    Onnx__NodeProto *t = node_add(x, "Transpose", ex_name(x, l->name, "/to_nhwc"),
                                  ex_name(x, l->name, "/nhwc"), (const char *[]){in, NULL});
    node_ints(x, t, "perm", perm, onnx_rank(s));
    return t->output[0];
}

/* A layer reads a tensor of rank d as [*spatial, 1] (Layer.expand): in
 * ONNX, its values in cnngen's order with a channel axis of 1 in front. */
static const char *expanded_input(Exporter *x, const Layer *l, const char *in, const Shape *s)
{
    in = to_channels_last(x, l, in, s);
    int64_t axis = 1;
    const char *axes = init_int64s(x, ex_name(x, l->name, "/expand_axes"), &axis, 1);
    return node_add(x, "Unsqueeze", ex_name(x, l->name, "/expand"),
                    ex_name(x, l->name, "/expanded"), (const char *[]){in, axes, NULL})
        ->output[0];
}

static const char *layer_input(Exporter *x, const Layer *l, int k)
{
    const char *in = x->values[l->srcs[k]];
    if (k == 0 && l->expand && !(l->srcs[0] == 0 && x->input_expanded))
        in = expanded_input(x, l, in, model_node_shape(x->m, l->srcs[0]));
    return in;
}

/* ---- the layers -------------------------------------------------------- */

static const char *const activation_ops[] = {
    [ACT_LINEAR] = "Identity", [ACT_RELU] = "Relu",       [ACT_SIGMOID] = "Sigmoid",
    [ACT_TANH] = "Tanh",       [ACT_SOFTMAX] = "Softmax", [ACT_LEAKY_RELU] = "LeakyRelu",
};

/* An activation of value in, as node name with output out. */
static void activation_node(Exporter *x, Activation act, double alpha, const char *name,
                            const char *in, const char *out)
{
    Onnx__NodeProto *n = node_add(x, activation_ops[act], name, out, (const char *[]){in, NULL});
    if (act == ACT_SOFTMAX)
        node_int(x, n, "axis", 1); /* the channels, as cnngen's last axis */
    else if (act == ACT_LEAKY_RELU)
        node_float(x, n, "alpha", alpha);
}

/* A conv or dense layer's output: the map's own value, then its
 * activation as the layer's value (conv and dense use 0.01 for
 * leaky_relu, lower_activation's). */
static const char *linear_map_output(Exporter *x, const Layer *l)
{
    if (l->activation == ACT_LINEAR || l->activation == ACT_NONE)
        return l->name;
    return ex_name(x, l->name, "/linear");
}

static void linear_map_activation(Exporter *x, const Layer *l)
{
    if (l->activation != ACT_LINEAR && l->activation != ACT_NONE)
        activation_node(x, l->activation, 0.01, ex_name(x, l->name, "/activation"),
                        linear_map_output(x, l), l->name);
}

/* pads as ONNX writes them: all the begins, then all the ends; a 'same'
 * window as SAME_UPPER, which is the same rule (the extra one after). */
static void window_attrs(Exporter *x, Onnx__NodeProto *n, const Layer *l)
{
    node_ints(x, n, "kernel_shape", l->kernel, l->nd);
    node_ints(x, n, "strides", l->stride, l->nd);
    if (l->padding == PAD_SAME) {
        node_string(x, n, "auto_pad", "SAME_UPPER");
    } else if (l->padding != PAD_VALID) {
        int64_t pads[6];
        for (int a = 0; a < l->nd; a++) {
            pads[a] = l->pad_before[a];
            pads[l->nd + a] = l->pad_after[a];
        }
        node_ints(x, n, "pads", pads, 2 * l->nd);
    }
}

/* conv: kernel [k..., cin, cout] -> [cout, cin, k...]; depthwise
 * [kh, kw, cin, m] -> [cin*m, 1, kh, kw] (output channel c*m + j in both). */
static void export_conv(Exporter *x, const Layer *l, bool depthwise)
{
    const Param *p = &l->params[0];
    const float *k = param_values(x, l, 0);
    int nd = l->nd;
    int64_t taps = 1;
    for (int a = 0; a < nd; a++)
        taps *= p->shape.dim[a];
    int64_t cin = p->shape.dim[nd],
            cout = depthwise ? cin * p->shape.dim[nd + 1] : p->shape.dim[nd + 1];
    int64_t dims[SHAPE_MAX_RANK] = {cout, depthwise ? 1 : cin};
    for (int a = 0; a < nd; a++)
        dims[2 + a] = p->shape.dim[a];
    float *w = xmalloc((size_t)(taps * cin * (depthwise ? cout / cin : cout)) * sizeof *w + 1);
    for (int64_t t = 0; t < taps; t++)
        for (int64_t i = 0; i < cin; i++)
            for (int64_t o = 0; o < (depthwise ? cout / cin : cout); o++) {
                float v = k[(t * cin + i) * (depthwise ? cout / cin : cout) + o];
                if (depthwise)
                    w[(i * (cout / cin) + o) * taps + t] = v;
                else
                    w[(o * cin + i) * taps + t] = v;
            }
    const char *inputs[4] = {layer_input(x, l, 0), init_floats(x, p->name, dims, nd + 2, w), NULL,
                             NULL};
    free(w);
    if (l->use_bias)
        inputs[2] = init_param(x, l, 1);
    Onnx__NodeProto *n = node_add(x, "Conv", l->name, linear_map_output(x, l), inputs);
    window_attrs(x, n, l);
    node_ints(x, n, "dilations", l->dilation, nd);
    if (depthwise)
        node_int(x, n, "group", cin);
    linear_map_activation(x, l);
}

/* dense: Gemm on [N, in] with the kernel [in, units] as it is.  A rank > 1
 * input is flattened in ONNX's order (channels first), so the kernel's
 * rows are permuted to it: row (c*S + s) of ONNX's is cnngen's s*C + c. */
static void export_dense(Exporter *x, const Layer *l)
{
    const Param *p = &l->params[0];
    const Shape *in = model_node_shape(x->m, l->srcs[0]);
    const char *v = x->values[l->srcs[0]];
    int64_t rows = p->shape.dim[0], units = p->shape.dim[1];
    const float *k = param_values(x, l, 0);
    float *w = xmalloc((size_t)(rows * units) * sizeof *w + 1);
    int64_t channels = in->rank > 1 ? in->dim[in->rank - 1] : 1, spatial = rows / channels;
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = r / spatial, s = r % spatial;
        memcpy(w + r * units, k + (s * channels + c) * units, (size_t)units * sizeof *w);
    }
    if (in->rank > 1) {
        Onnx__NodeProto *f = node_add(x, "Flatten", ex_name(x, l->name, "/flatten"),
                                      ex_name(x, l->name, "/flat"), (const char *[]){v, NULL});
        node_int(x, f, "axis", 1);
        v = f->output[0];
    }
    const char *inputs[4] = {v, init_floats(x, p->name, p->shape.dim, 2, w), NULL, NULL};
    free(w);
    if (l->use_bias)
        inputs[2] = init_param(x, l, 1);
    node_add(x, "Gemm", l->name, linear_map_output(x, l), inputs);
    linear_map_activation(x, l);
}

/* flatten: cnngen's order is channels-last, so the value goes back to it
 * first (the importer reads Transpose then Flatten as this layer). */
static void export_flatten(Exporter *x, const Layer *l)
{
    const char *v =
        to_channels_last(x, l, x->values[l->srcs[0]], model_node_shape(x->m, l->srcs[0]));
    node_int(x, node_add(x, "Flatten", l->name, l->name, (const char *[]){v, NULL}), "axis", 1);
}

/* Pooling never counts padding: max pooling's pads are -inf in ONNX, and
 * average pooling divides by the real inputs (count_include_pad 0). */
static void export_pool(Exporter *x, const Layer *l)
{
    bool is_max = strncmp(l->kind->name, "max", 3) == 0;
    Onnx__NodeProto *n = node_add(x, is_max ? "MaxPool" : "AveragePool", l->name, l->name,
                                  (const char *[]){layer_input(x, l, 0), NULL});
    window_attrs(x, n, l);
    if (!is_max)
        node_int(x, n, "count_include_pad", 0);
}

/* global pooling: ONNX keeps the spatial axes (as 1s); cnngen's [C]. */
static void export_global_pool(Exporter *x, const Layer *l)
{
    bool is_max = strcmp(l->kind->name, "global_maxpool") == 0;
    Onnx__NodeProto *n =
        node_add(x, is_max ? "GlobalMaxPool" : "GlobalAveragePool", l->name,
                 ex_name(x, l->name, "/pooled"), (const char *[]){layer_input(x, l, 0), NULL});
    node_int(x,
             node_add(x, "Flatten", ex_name(x, l->name, "/flatten"), l->name,
                      (const char *[]){n->output[0], NULL}),
             "axis", 1);
}

/* nearest-neighbour upsampling: Resize with scales, taking the input
 * position floor(out / size), as cnngen repeats each one. */
static void export_upsample(Exporter *x, const Layer *l)
{
    float scales[2 + 3] = {1, 1, 1, 1, 1};
    for (int a = 0; a < l->nd; a++)
        scales[2 + a] = (float)l->kernel[a];
    int64_t count = 2 + l->nd;
    const char *inputs[] = {layer_input(x, l, 0), "",
                            init_floats(x, ex_name(x, l->name, ".scales"), &count, 1, scales),
                            NULL};
    Onnx__NodeProto *n = node_add(x, "Resize", l->name, l->name, inputs);
    node_string(x, n, "mode", "nearest");
    node_string(x, n, "coordinate_transformation_mode", "asymmetric");
    node_string(x, n, "nearest_mode", "floor");
}

/* batchnorm: ONNX's momentum is Keras' (running = m*running + (1-m)*batch). */
static void export_batchnorm(Exporter *x, const Layer *l)
{
    const char *inputs[] = {layer_input(x, l, 0), init_param(x, l, 0), init_param(x, l, 1),
                            init_param(x, l, 2),  init_param(x, l, 3), NULL};
    Onnx__NodeProto *n = node_add(x, "BatchNormalization", l->name, l->name, inputs);
    node_float(x, n, "epsilon", l->epsilon);
    node_float(x, n, "momentum", l->momentum);
}

static void export_dropout(Exporter *x, const Layer *l)
{
    float rate = (float)l->rate;
    const char *ratio = init_floats(x, ex_name(x, l->name, ".ratio"), NULL, 0, &rate);
    node_add(x, "Dropout", l->name, l->name, (const char *[]){x->values[l->srcs[0]], ratio, NULL});
}

/* The ONNX axis (batch 0) of axis a of a rank-k cnngen tensor, as
 * channels_first lays it out: the last (channels) at 1, the others after. */
static int64_t onnx_axis(int a, int k)
{
    return a == k - 1 ? 1 : a + 2;
}

/* permute: a Transpose of the channels-first values, the permutation
 * carried through both layouts. */
static void export_permute(Exporter *x, const Layer *l)
{
    int k = l->nperm;
    int64_t perm[SHAPE_MAX_RANK] = {0};
    for (int a = 0; a < k; a++)
        perm[onnx_axis(a, k)] = onnx_axis(l->perm[a], k);
    Onnx__NodeProto *n =
        node_add(x, "Transpose", l->name, l->name, (const char *[]){x->values[l->srcs[0]], NULL});
    node_ints(x, n, "perm", perm, k + 1);
}

/* add: Add for two tensors, Sum for more; concat along the channels. */
static void export_merge(Exporter *x, const Layer *l, bool concat)
{
    const char **inputs = ex_alloc(x, (size_t)(l->nsrcs + 1) * sizeof *inputs);
    for (int k = 0; k < l->nsrcs; k++)
        inputs[k] = x->values[l->srcs[k]];
    inputs[l->nsrcs] = NULL;
    const char *op = concat ? "Concat" : l->nsrcs == 2 ? "Add" : "Sum";
    Onnx__NodeProto *n = node_add(x, op, l->name, l->name, inputs);
    if (concat)
        node_int(x, n, "axis", 1);
}

static void export_layer(Exporter *x, const Layer *l)
{
    const char *kind = l->kind->name;
    if (strncmp(kind, "conv", 4) == 0 || strcmp(kind, "depthwise_conv2d") == 0)
        export_conv(x, l, kind[0] == 'd');
    else if (strcmp(kind, "dense") == 0)
        export_dense(x, l);
    else if (strcmp(kind, "flatten") == 0)
        export_flatten(x, l);
    else if (strncmp(kind, "global_", 7) == 0)
        export_global_pool(x, l);
    else if (strstr(kind, "pool"))
        export_pool(x, l);
    else if (strncmp(kind, "upsample", 8) == 0)
        export_upsample(x, l);
    else if (strcmp(kind, "batchnorm") == 0)
        export_batchnorm(x, l);
    else if (strcmp(kind, "dropout") == 0)
        export_dropout(x, l);
    else if (strcmp(kind, "add") == 0 || strcmp(kind, "concat") == 0)
        export_merge(x, l, kind[0] == 'c');
    else if (strcmp(kind, "permute") == 0)
        export_permute(x, l);
    else if (l->kind->activation != ACT_NONE)
        activation_node(x, l->activation, l->alpha, l->name, layer_input(x, l, 0), l->name);
    else if (!x->unsupported)
        x->unsupported = l; /* a family without ONNX nodes yet */
}

/* ---- the model --------------------------------------------------------- */

/* A float tensor of [N, dims...] (N symbolic: any batch). */
static Onnx__ValueInfoProto *value_info(Exporter *x, const char *name, const int64_t *dims,
                                        int rank)
{
    Onnx__TensorShapeProto *shape = ex_alloc(x, sizeof *shape);
    *shape = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    shape->n_dim = (size_t)rank + 1;
    shape->dim = ex_alloc(x, shape->n_dim * sizeof *shape->dim);
    for (int d = 0; d <= rank; d++) {
        Onnx__TensorShapeProto__Dimension *dim = ex_alloc(x, sizeof *dim);
        *dim = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        if (d == 0) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = "N";
        } else {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = dims[d - 1];
        }
        shape->dim[d] = dim;
    }
    Onnx__TypeProto__Tensor *tensor = ex_alloc(x, sizeof *tensor);
    *tensor = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    tensor->has_elem_type = 1;
    tensor->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tensor->shape = shape;
    Onnx__TypeProto *type = ex_alloc(x, sizeof *type);
    *type = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tensor;
    Onnx__ValueInfoProto *v = ex_alloc(x, sizeof *v);
    *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    v->name = (char *)name;
    v->type = type;
    return v;
}

/* A tensor's dims in ONNX's order (without the batch): channels first. */
static void channels_first(const Shape *s, int64_t *dims)
{
    if (s->rank == 1) {
        dims[0] = s->dim[0];
        return;
    }
    dims[0] = s->dim[s->rank - 1];
    for (int a = 0; a + 1 < s->rank; a++)
        dims[1 + a] = s->dim[a];
}

/* The model's input as a value: when every layer reading it expands it to
 * one channel, ONNX's input has that channel ([N, 1, spatial...]) and
 * the layers read it as it is. */
static Onnx__ValueInfoProto *model_input(Exporter *x)
{
    const Model *m = x->m;
    bool expanded = false, direct = false;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nsrcs; k++)
            if (m->layers[i]->srcs[k] == 0) {
                if (k == 0 && m->layers[i]->expand)
                    expanded = true;
                else
                    direct = true;
            }
    int64_t dims[SHAPE_MAX_RANK + 1];
    if (expanded && !direct) {
        dims[0] = 1;
        memcpy(dims + 1, m->input.dim, (size_t)m->input.rank * sizeof *dims);
        x->input_expanded = true;
        return value_info(x, "input", dims, m->input.rank + 1);
    }
    channels_first(&m->input, dims);
    return value_info(x, "input", dims, m->input.rank);
}

static Onnx__OperatorSetIdProto *opset(Exporter *x)
{
    Onnx__OperatorSetIdProto *o = ex_alloc(x, sizeof *o);
    *o = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
    o->domain = "";
    o->has_version = 1;
    o->version = ONNX_EXPORT_OPSET;
    return o;
}

static void pack(Exporter *x, Onnx__GraphProto *g, const char *producer_version,
                 unsigned char **bytes, size_t *len)
{
    g->n_node = (size_t)x->nodes.count;
    g->node = (Onnx__NodeProto **)x->nodes.items;
    g->n_initializer = (size_t)x->inits.count;
    g->initializer = (Onnx__TensorProto **)x->inits.items;
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = 7; /* ONNX 1.8's, the first with opset 13 */
    Onnx__OperatorSetIdProto *ops[1] = {opset(x)};
    model.n_opset_import = 1;
    model.opset_import = ops;
    model.producer_name = "cnngen";
    model.producer_version = (char *)producer_version;
    model.graph = g;
    *len = onnx__model_proto__get_packed_size(&model);
    *bytes = xmalloc(*len + 1);
    onnx__model_proto__pack(&model, *bytes);
}

int onnx_export(const Model *m, const float *params, const char *producer_version,
                unsigned char **bytes, size_t *len)
{
    Exporter x = {.m = m, .params = params};
    x.values = ex_alloc(&x, (size_t)(m->nlayers + 1) * sizeof *x.values);
    x.values[0] = "input";
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    g.name = (char *)m->name;
    Onnx__ValueInfoProto *inputs[1] = {model_input(&x)};
    for (int i = 0; i < m->nlayers; i++) {
        export_layer(&x, m->layers[i]);
        x.values[i + 1] = m->layers[i]->name;
    }
    int64_t dims[SHAPE_MAX_RANK];
    channels_first(model_output_shape(m), dims);
    Onnx__ValueInfoProto *outputs[1] = {
        value_info(&x, x.values[m->nlayers], dims, model_output_shape(m)->rank)};
    g.n_input = g.n_output = 1;
    g.input = inputs;
    g.output = outputs;
    int status = 0;
    if (x.unsupported) {
        fprintf(stderr, "%s:%d:%d: error: layer '%s' (%s) has no ONNX form in this cnngen\n",
                m->filename, x.unsupported->loc.line, x.unsupported->loc.col, x.unsupported->name,
                x.unsupported->kind->name);
        status = 1;
    } else {
        pack(&x, &g, producer_version, bytes, len);
    }
    ptrvec_free(&x.nodes);
    ptrvec_free(&x.inits);
    arena_free(&x.arena);
    return status;
}
