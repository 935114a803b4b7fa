/* diagram.c - the network as Graphviz draws it (diagram.h). */
#include "diagram.h"

#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "layers/layers.h"
#include "util.h"

/* One node: what --summary's row says, in the picture's words. */
static void print_node(FILE *out, const Model *m, int node)
{
    if (node == 0) {
        StrBuf shape = {0};
        shape_format(&m->input, &shape);
        fprintf(out,
                "  n0 [label=\"input\\n%s\\nline %d\", shape=box, style=\"rounded,filled\", "
                "fillcolor=\"#e8e8e8\"];\n",
                shape.data, m->input_line);
        free(shape.data);
        return;
    }
    const Layer *l = m->layers[node - 1];
    StrBuf shape = {0};
    shape_format(&l->out, &shape);
    int64_t trainable = layer_param_count(l, true), fixed = layer_param_count(l, false);
    char flops[48];
    format_int128(layer_flops(l, m), flops);
    fprintf(out, "  n%d [label=\"%s  %s", node, l->name, l->kind->name);
    /* a conv or dense layer's own activation (an activation layer is its name) */
    if (l->kind->linear_map && l->activation > ACT_LINEAR)
        fprintf(out, ", %s", activation_names[l->activation]);
    fprintf(out, "\\n%s", shape.data);
    if (trainable + fixed > 0 && trainable == 0)
        fprintf(out, "\\n%lld params, fixed", (long long)fixed);
    else if (trainable + fixed > 0)
        fprintf(out, "\\n%lld params%s", (long long)(trainable + fixed), fixed ? " (" : "");
    if (trainable > 0 && fixed > 0)
        fprintf(out, "%lld fixed)", (long long)fixed);
    if (strcmp(flops, "0") != 0)
        fprintf(out, "\\n%s FLOPs  line %d\"", flops, l->loc.line);
    else
        fprintf(out, "\\nline %d\"", l->loc.line);
    /* a layer with nothing to train (hand-made filters): dashed, as frozen */
    if (trainable == 0 && fixed > 0)
        fprintf(out, ", style=\"dashed,filled\", fillcolor=\"#fff3c4\"");
    fprintf(out, "];\n");
    free(shape.data);
}

void diagram_print_dot(const Model *m, FILE *out)
{
    char flops[48];
    format_int128(model_flops(m), flops);
    int64_t trainable = model_param_count(m, true), fixed = model_param_count(m, false);
    fprintf(out, "digraph \"%s\" {\n", m->name);
    fprintf(out, "  label=\"%s: %lld params (%lld trainable, %lld fixed), %s FLOPs per sample\";\n",
            m->name, (long long)(trainable + fixed), (long long)trainable, (long long)fixed, flops);
    fprintf(out, "  labelloc=t;\n  fontname=\"Helvetica\";\n");
    fprintf(out, "  node [shape=box, style=filled, fillcolor=\"#dbe9f6\", fontname=\"Helvetica\", "
                 "fontsize=11];\n");
    fprintf(out, "  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for (int node = 0; node <= m->nlayers; node++)
        print_node(out, m, node);
    /* the edges: the current tensor first, then the labels a merge reads */
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        for (int k = 0; k < l->nsrcs; k++)
            fprintf(out, "  n%d -> n%d;\n", l->srcs[k], i + 1);
    }
    fprintf(out, "}\n");
}

int diagram_render(const char *dot, size_t len, const char *format, char **out, size_t *out_len,
                   char *error, size_t error_size)
{
    char type[16];
    snprintf(type, sizeof type, "-T%s", format);
    char *argv[] = {"dot", type, NULL};
    int code = cnnrt_run_program(argv, dot, len, out, out_len);
    if (code == 127) {
        snprintf(error, error_size,
                 "--emit=%s needs Graphviz's dot program (Debian: apt-get install graphviz); "
                 "--emit=dot writes the diagram without it",
                 format);
    } else if (code != 0 || *out_len == 0) {
        snprintf(error, error_size, "Graphviz's dot failed to draw the diagram (-T%s)", format);
    } else {
        return 0;
    }
    free(*out);
    *out = NULL;
    return 2;
}
