/* fuzz_frontend.c - libFuzzer target: any bytes through the whole front
 * end (UTF-8 check, scanner, parser, sema, diagnostics, summary, the int8
 * plan).  Built
 * by `make fuzz` with clang -fsanitize=fuzzer,address,undefined. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "diag.h"
#include "emit_c.h"
#include "quant.h"
#include "source.h"
#include "summary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The int8 predictor of a small model's plan, from made-up weights. */
static void emit_int8(const Model *m, const QuantPlan *plan, FILE *sink)
{
    float *weights = malloc(sizeof(float) * ((size_t)m->param_floats + 1));
    if (!weights)
        return;
    for (int64_t k = 0; k < m->param_floats; k++)
        weights[k] = (float)(k % 7 - 3) * 0.25f;
    Arena arena = {0};
    QuantWeights qw;
    IrProgram p[EMIT_QCLONE_COUNT];
    memset(p, 0, sizeof p);
    quant_weights(m, plan, weights, &arena, &qw);
    for (int k = 0; k < EMIT_QCLONE_COUNT; k++) {
        const EmitClone *clone = &emit_clones_q[k];
        CompileOptions co = {clone->lanes, clone->registers, false, false, false};
        compile_lower_q(m, plan, &qw, &co, clone->dot_offset, &p[k]);
    }
    EmitOptions eo = {.prefix = "fuzz",
                      .command_line = "cnngen",
                      .weights = weights,
                      .main = true,
                      .no_train = true,
                      .qplan = plan,
                      .qweights = &qw};
    emit_c_source(sink, m, p, EMIT_QCLONE_COUNT, &eo);
    for (int k = 0; k < EMIT_QCLONE_COUNT; k++)
        ir_program_free(&p[k]);
    arena_free(&arena);
    free(weights);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    char *text = malloc(size + 1);
    if (!text || !sink)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    Source src = {.data = text, .len = size, .text = text, .text_len = size};
    int line, col;
    if (!source_find_bad_utf8(&src, &line, &col)) {
        Diag *diag = diag_new("fuzz.cnn", text, size);
        Model *m = compile_source("fuzz.cnn", text, size, diag);
        diag_report(diag, sink, true);
        if (m) {
            SummaryBoard board = summary_board(m);
            /* and the int8 plan, every range [-1, 1] */
            float *ranges = malloc(sizeof(float) * (2 * (size_t)m->nlayers + 2));
            Arena arena = {0};
            QuantPlan plan;
            for (int k = 0; ranges && k <= m->nlayers; k++) {
                ranges[2 * k] = -1;
                ranges[2 * k + 1] = 1;
            }
            bool quantized = ranges && quant_plan(diag, m, ranges, &arena, &plan);
            diag_report(diag, sink, false);
            if (quantized && m->param_floats <= 100000 && m->arena_floats <= 1000000)
                emit_int8(m, &plan, sink);
            summary_print(m, &board, quantized ? &plan : NULL, sink);
            summary_print_json(m, &board, quantized ? &plan : NULL, sink);
            arena_free(&arena);
            free(ranges);
        }
        model_free(m);
        diag_free(diag);
    }
    free(text);
    return 0;
}
