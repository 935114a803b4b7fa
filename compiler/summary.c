/* summary.c - `cnngen --summary`: the Keras-style layer table, the
 * forward FLOPs and static memory, then the three totals lines; and the
 * same facts as JSON (`--summary --json`), the form the reference's
 * `summary --json` gives, for tests. */
#include "summary.h"

#include <string.h>

#include "compile.h"
#include "emit.h"
#include "layers/layers.h"

typedef struct {
    const char *cells[7];
} Row;

enum { COLUMNS = 7 };

static char *row_cell(Arena *a, int64_t v)
{
    return arena_printf(a, "%lld", (long long)v);
}

static char *shape_cell(Arena *a, const Shape *s)
{
    StrBuf b = {0};
    shape_format(s, &b);
    char *cell = arena_strndup(a, b.data, b.len);
    strbuf_free(&b);
    return cell;
}

static void print_row(FILE *out, const Row *row, const size_t *widths)
{
    StrBuf line = {0};
    for (int c = 0; c < COLUMNS; c++) {
        size_t len = strlen(row->cells[c]);
        size_t pad = widths[c] - len;
        if (c)
            strbuf_append(&line, "  ", 2);
        if (c >= 3) /* numbers are right-aligned */
            for (size_t i = 0; i < pad; i++)
                strbuf_append(&line, " ", 1);
        strbuf_append(&line, row->cells[c], len);
        if (c < 3)
            for (size_t i = 0; i < pad; i++)
                strbuf_append(&line, " ", 1);
    }
    while (line.len && line.data[line.len - 1] == ' ')
        line.data[--line.len] = '\0';
    fprintf(out, "%s\n", line.data);
    strbuf_free(&line);
}

/* The train block as the program will run it, defaults included. */
static void print_train_settings(FILE *out, const Model *m)
{
    const TrainConfig *tc = &m->train;
    fprintf(out, "Training: loss %s, %s(lr=%.9g", loss_names[tc->loss],
            optimizer_names[tc->optimizer], tc->lr);
    if (tc->optimizer == OPT_SGD) {
        if (tc->momentum)
            fprintf(out, ", momentum=%.9g%s", tc->momentum, tc->nesterov ? ", nesterov=true" : "");
    } else {
        fprintf(out, ", beta1=%.9g, beta2=%.9g, epsilon=%.9g", tc->beta1, tc->beta2, tc->epsilon);
    }
    if (tc->weight_decay)
        fprintf(out, ", weight_decay=%.9g", tc->weight_decay);
    fprintf(out, "), batch %lld, %lld epochs, seed %lld", (long long)tc->batch,
            (long long)tc->epochs, (long long)tc->seed);
    for (int k = 0; k < tc->nmetrics; k++)
        fprintf(out, "%s%s", k ? ", " : ", metrics ", metric_names[tc->metrics[k]]);
    fputc('\n', out);
    const Schedule *s = &tc->schedule;
    const char *unit = s->per_step ? "step" : "epoch";
    if (s->warmup)
        fprintf(out, "  warmup: %lld %ss, linear from %.9g x lr\n", (long long)s->warmup, unit,
                s->warmup_start);
    switch (s->kind) {
    case SCHEDULE_NONE: break;
    case SCHEDULE_STEP_DECAY:
        fprintf(out, "  schedule: step_decay, x %.9g every %lld %ss\n", s->gamma,
                (long long)s->every, unit);
        break;
    case SCHEDULE_EXPONENTIAL:
        fprintf(out, "  schedule: exponential, x %.9g every %s\n", s->gamma, unit);
        break;
    case SCHEDULE_COSINE:
        fprintf(out, "  schedule: cosine to %.9g over ", s->min_lr);
        if (s->length)
            fprintf(out, "%lld %ss\n", (long long)s->length, unit);
        else
            fprintf(out, "the rest of the run, per %s\n", unit);
        break;
    case SCHEDULE_ONE_CYCLE:
        fprintf(out,
                "  schedule: one_cycle to max_lr %.9g, pct_start %.9g, div_factor %.9g, "
                "final_div_factor %.9g, per step\n",
                s->max_lr ? s->max_lr : tc->lr, s->pct_start, s->div_factor, s->final_div);
        break;
    }
    int word = tc->monitor % MONITOR_VAL;
    const char *name = word == 0 ? "loss" : metric_names[tc->metrics[word - 1]];
    const char *val = tc->monitor >= MONITOR_VAL ? "val_" : "";
    if (tc->validation_split)
        fprintf(out, "  validation: the last %.9g of the data\n", tc->validation_split);
    if (tc->patience)
        fprintf(out, "  early stopping: %lld epochs without a better %s%s\n",
                (long long)tc->patience, val, name);
    for (int i = 0; i < tc->naugment; i++) {
        const Augment *g = &tc->augment[i];
        fprintf(out, "%s%s", i ? ", " : "  augment: ", augment_names[g->kind]);
        if (g->kind != AUGMENT_FLIP)
            fprintf(out, "(%.9g)", g->amount);
    }
    if (tc->naugment)
        fputc('\n', out);
    if (tc->quantize) {
        int observed = 0, kernels = 0;
        for (int node = 0; node <= m->nlayers; node++)
            observed += m->qat.observer[node] != NULL;
        for (int i = 0; i < m->nlayers; i++)
            kernels += m->qat.kernel[i];
        fprintf(out,
                "  quantize: int8, %d tensors observed (%d floats of NAME.quantize, not "
                "counted below), %d kernels fake-quantized\n",
                observed, 3 * observed, kernels);
    }
}

/* The stack: a small model runs in predict_ws with its activations (and
 * every layer's local arrays) in its frame; otherwise predict calls
 * predict_ws, then the clone's forward, then each layer's function, the
 * deepest frame being the layer with the most local arrays.  Each frame
 * also holds saved registers and spills, and the deepest calls libm or a
 * soft-float routine: the allowances below, measured on QEMU's M3, M4F
 * and M7 boards (docs/targets.md), keep the estimate above the use. */
enum { BOARD_FRAME_BYTES = 48, BOARD_CALL_BYTES = 96 };

SummaryBoard summary_board(const Model *m)
{
    SummaryBoard b = {4 * (m->param_floats + 1),
                      m->arena_floats ? 4 * ((long long)m->arena_floats + 1) : 0, 0};
    IrProgram plain = {0};
    compile_lower(m, &(CompileOptions){0, 16, false, false, false}, &plain);
    int64_t deepest = 0, all = 0;
    for (int i = 0; i < plain.nfuncs; i++)
        if (plain.funcs[i]->phase == PHASE_PREDICT) {
            int64_t floats = ir_local_floats(plain.funcs[i]);
            deepest = floats > deepest ? floats : deepest;
            all += floats;
        }
    ir_program_free(&plain);
    if (emit_small_model(m))
        b.stack = 4 * ((long long)m->arena_floats + 1 + all) + 2 * BOARD_FRAME_BYTES;
    else
        b.stack = 4 * (long long)deepest + 4 * BOARD_FRAME_BYTES;
    b.stack += BOARD_CALL_BYTES;
    return b;
}

static const char *node_name(const Model *m, int node)
{
    return node ? m->layers[node - 1]->name : "input";
}

/* Each node's int8 scale and zero point, or where they come from. */
static void print_quant_plan(FILE *out, const Model *m, const QuantPlan *plan)
{
    size_t width = 5;
    for (int i = 0; i < m->nlayers; i++)
        width = strlen(m->layers[i]->name) > width ? strlen(m->layers[i]->name) : width;
    fprintf(out, "int8 (docs/int8.md):\n");
    for (int k = 0; k <= m->nlayers; k++) {
        const QuantNode *q = &plan->nodes[k];
        fprintf(out, "  %-*s  ", (int)width, node_name(m, k));
        if (q->kind == QNODE_RANGE)
            fprintf(out, "scale %.9g, zero point %d\n", q->scale, q->zero);
        else if (q->kind == QNODE_INPUT)
            fprintf(out, "its input's scale and zero point\n");
        else if (q->kind == QNODE_FOLDED) /* into the layer right before it */
            fprintf(out, "folded into %s\n", node_name(m, k - 1));
        else if (k - 1 == plan->head)
            fprintf(out, "float output, from its int32 sums\n");
        else
            fprintf(out, "float, from %s's int32 sums\n", m->layers[plan->head]->name);
    }
    fprintf(out, "int8 static memory: parameters %lld bytes, activations %lld bytes\n",
            plan->param_bytes, plan->activation_bytes);
}

void summary_print(const Model *m, const SummaryBoard *board, const QuantPlan *plan, FILE *out)
{
    Arena a = {0};
    int nrows = m->nlayers + 2;
    Row *rows = arena_alloc(&a, (size_t)nrows * sizeof *rows);
    rows[0] = (Row){{"Layer", "Name", "Output shape", "Params", "Trainable", "Fixed", "Line"}};
    rows[1] = (Row){
        {"input", "input", shape_cell(&a, &m->input), "0", "0", "0", row_cell(&a, m->input_line)}};
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        int64_t t = layer_param_count(l, true), f = layer_param_count(l, false);
        rows[i + 2] = (Row){{l->kind->name, l->name, shape_cell(&a, &l->out), row_cell(&a, t + f),
                             row_cell(&a, t), row_cell(&a, f), row_cell(&a, l->loc.line)}};
    }
    size_t widths[COLUMNS] = {0};
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < COLUMNS; c++)
            if (strlen(rows[r].cells[c]) > widths[c])
                widths[c] = strlen(rows[r].cells[c]);
    fprintf(out, "Model: %s\n", m->name);
    for (int r = 0; r < nrows; r++)
        print_row(out, &rows[r], widths);

    int64_t trainable = model_param_count(m, true), fixed = model_param_count(m, false);
    char flops[48];
    format_int128(model_flops(m), flops);
    fprintf(out, "Forward FLOPs per sample: %s\n", flops);
    fprintf(out, "Static memory: parameters %lld bytes, activations %lld bytes\n",
            (long long)(4 * m->param_floats), (long long)(4 * m->arena_floats));
    fprintf(out,
            "On a board (--weights --no-train): flash %lld bytes of weights, RAM %lld bytes of "
            "arena, stack about %lld bytes\n",
            board->flash_weights, board->ram_arena, board->stack);
    if (plan)
        print_quant_plan(out, m, plan);
    const TrainPlan *tp = &m->tp;
    fprintf(out,
            "Training memory (batch %lld): %lld bytes: activations %lld, gradients %lld, "
            "optimizer state %lld\n",
            (long long)tp->batch, (long long)mul_sat(4, tp->floats),
            (long long)mul_sat(4, tp->activation_floats),
            (long long)mul_sat(4, tp->gradient_floats), (long long)mul_sat(4, tp->state_floats));
    print_train_settings(out, m); /* before the totals, which end it as in Keras */
    fprintf(out, "Total params: %lld\nTrainable params: %lld\nFixed params: %lld\n",
            (long long)(trainable + fixed), (long long)trainable, (long long)fixed);
    arena_free(&a);
}

static void json_shape(FILE *out, const Shape *s, const char *indent)
{
    fputc('[', out);
    for (int i = 0; i < s->rank; i++)
        fprintf(out, "%s\n%s %lld", i ? "," : "", indent, (long long)s->dim[i]);
    fprintf(out, "\n%s]", indent);
}

static void json_quant_plan(FILE *out, const Model *m, const QuantPlan *plan)
{
    static const char *const forms[] = {"range", "input", "folded", "float"};
    fprintf(out,
            " \"int8\": {\n  \"param_bytes\": %lld,\n  \"activation_bytes\": %lld,\n"
            "  \"nodes\": [",
            plan->param_bytes, plan->activation_bytes);
    for (int k = 0; k <= m->nlayers; k++) {
        const QuantNode *q = &plan->nodes[k];
        fprintf(out,
                "%s\n   {\"name\": \"%s\", \"form\": \"%s\", \"scale\": %.17g, "
                "\"zero_point\": %d}",
                k ? "," : "", node_name(m, k), forms[q->kind], q->scale, q->zero);
    }
    fprintf(out, "\n  ]\n },\n");
}

void summary_print_json(const Model *m, const SummaryBoard *board, const QuantPlan *plan, FILE *out)
{
    int64_t trainable = model_param_count(m, true), fixed = model_param_count(m, false);
    fprintf(out, "{\n \"model\": \"%s\",\n \"input\": ", m->name);
    json_shape(out, &m->input, " ");
    fprintf(out, ",\n \"output\": ");
    json_shape(out, model_output_shape(m), " ");
    fprintf(out, ",\n \"layers\": [");
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        int64_t t = layer_param_count(l, true), f = layer_param_count(l, false);
        char flops[48];
        format_int128(layer_flops(l, m), flops);
        fprintf(out, "%s\n  {\n   \"layer\": \"%s\",\n   \"name\": \"%s\",\n   \"output_shape\": ",
                i ? "," : "", l->kind->name, l->name);
        json_shape(out, &l->out, "   ");
        fprintf(out,
                ",\n   \"params\": %lld,\n   \"trainable\": %lld,\n   \"fixed\": %lld,\n"
                "   \"line\": %d,\n   \"flops\": %s\n  }",
                (long long)(t + f), (long long)t, (long long)f, l->loc.line, flops);
    }
    char flops[48];
    format_int128(model_flops(m), flops);
    fprintf(out,
            "%s],\n \"params\": %lld,\n \"trainable\": %lld,\n \"fixed\": %lld,\n"
            " \"flops\": %s,\n \"param_bytes\": %lld,\n \"activation_bytes\": %lld,\n",
            m->nlayers ? "\n " : "", (long long)(trainable + fixed), (long long)trainable,
            (long long)fixed, flops, (long long)(4 * m->param_floats),
            (long long)(4 * m->arena_floats));
    fprintf(out,
            " \"board\": {\n  \"flash_weights_bytes\": %lld,\n  \"ram_arena_bytes\": %lld,\n"
            "  \"stack_bytes\": %lld\n },\n",
            board->flash_weights, board->ram_arena, board->stack);
    if (plan)
        json_quant_plan(out, m, plan);
    const TrainConfig *tc = &m->train;
    fprintf(out,
            " \"train\": {\n  \"loss\": \"%s\",\n  \"optimizer\": \"%s\",\n  \"batch\": %lld,\n"
            "  \"epochs\": %lld,\n%s  \"memory_bytes\": %lld\n }\n}\n",
            loss_names[tc->loss], optimizer_names[tc->optimizer], (long long)tc->batch,
            (long long)tc->epochs, tc->quantize ? "  \"quantize\": \"int8\",\n" : "",
            (long long)mul_sat(4, m->tp.floats));
}
