#define _POSIX_C_SOURCE 200809L
/* test_frontend.c - unit tests of the front end (cmocka): shapes and
 * parameter counts from the course notes, padding rules, diagnostics,
 * the memory plan and the helpers underneath. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compile.h"
#include "diag.h"
#include "graph.h"
#include "quant.h"
#include "source.h"
#include "util.h"

typedef struct {
    Model *model;
    Diag *diag;
    char *messages; /* what diag_report printed */
} Compiled;

static Compiled compile_text(const char *text)
{
    Compiled c = {0};
    c.diag = diag_new("t.cnn", text, strlen(text));
    c.model = compile_source("t.cnn", text, strlen(text), c.diag);
    size_t size;
    FILE *f = open_memstream(&c.messages, &size);
    assert_non_null(f);
    diag_report(c.diag, f, true);
    fclose(f);
    return c;
}

static void release(Compiled *c)
{
    model_free(c->model);
    diag_free(c->diag);
    free(c->messages);
}

static void assert_shape(const Shape *s, int rank, const int64_t *dims)
{
    assert_int_equal(s->rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(s->dim[i], dims[i]);
}

/* The course's counts: weight sharing gives 42 against 130. */
static void test_seed42_has_42_params(void **state)
{
    (void)state;
    Compiled c = compile_text("model seed42\ninput [10, 1]\n"
                              "conv1d(1, kernel=2, bias=false)\n"
                              "dense(4, bias=false)\ndense(1, bias=false)\n");
    assert_non_null(c.model);
    assert_int_equal(model_param_count(c.model, true), 42);
    assert_int_equal(model_param_count(c.model, false), 0);
    assert_shape(&c.model->layers[0]->out, 2, (int64_t[]){9, 1});
    assert_shape(&c.model->layers[1]->params[0].shape, 2, (int64_t[]){9, 4});
    release(&c);
}

static void test_all_dense_has_130_params(void **state)
{
    (void)state;
    Compiled c = compile_text("model d\ninput [10]\ndense(9, bias=false)\n"
                              "dense(4, bias=false)\ndense(1, bias=false)\n");
    assert_non_null(c.model);
    assert_int_equal(model_param_count(c.model, true), 130);
    release(&c);
}

static void test_ten_7x7_filters(void **state)
{
    (void)state;
    Compiled c = compile_text("model f\ninput [100, 100, 1]\nconv2d(10, 7, bias=false)\n");
    assert_non_null(c.model);
    assert_int_equal(model_param_count(c.model, true), 490);
    assert_shape(model_output_shape(c.model), 3, (int64_t[]){94, 94, 10});
    /* 2 FLOPs per multiply-add: 94*94*10 outputs of 49 taps. */
    assert_true(model_flops(c.model) == (__int128)2 * 94 * 94 * 10 * 49);
    release(&c);
}

/* same: out = ceil(in/stride), the extra padding after (TensorFlow). */
static void test_same_padding_split(void **state)
{
    (void)state;
    Compiled c = compile_text("model p\ninput [10, 1]\nconv1d(1, 4, stride=3, padding=same)\n");
    assert_non_null(c.model);
    const Layer *l = c.model->layers[0];
    assert_int_equal(l->out.dim[0], 4); /* ceil(10/3) */
    /* total = (4-1)*3 + 4 - 10 = 3: one before, two after */
    assert_int_equal(l->pad_before[0], 1);
    assert_int_equal(l->pad_after[0], 2);
    release(&c);
}

static void test_causal_padding_keeps_length(void **state)
{
    (void)state;
    Compiled c = compile_text("model p\ninput [7]\n"
                              "conv1d(1, 2, weights=[-1, 1], bias=false, trainable=false, "
                              "padding=causal, dilation=3)\n");
    assert_non_null(c.model);
    const Layer *l = c.model->layers[0];
    assert_int_equal(l->out.dim[0], 7);
    assert_int_equal(l->pad_before[0], 3);
    assert_int_equal(l->pad_after[0], 0);
    assert_true(l->expand); /* [7] read as [7, 1] */
    assert_int_equal(model_param_count(c.model, false), 2);
    assert_true(l->params[0].literal[0] == -1 && l->params[0].literal[1] == 1);
    release(&c);
}

/* Trailing axes of size 1 may be left out of a nested weights list. */
static void test_nested_weights_trailing_axes(void **state)
{
    (void)state;
    Compiled c = compile_text("model e\ninput [4, 4]\n"
                              "edge: conv2d(1, 2, weights=[[-1, 1], [-1, 1]], bias=false)\n");
    assert_non_null(c.model);
    const Param *k = &c.model->layers[0]->params[0];
    assert_string_equal(k->name, "edge.kernel");
    assert_shape(&k->shape, 4, (int64_t[]){2, 2, 1, 1});
    assert_true(k->literal[2] == -1 && k->literal[3] == 1);
    release(&c);
}

static void test_constants_and_expressions(void **state)
{
    (void)state;
    Compiled c = compile_text("model k\nconst w = 2*(1+2)\ninput [w, w, 1]\n"
                              "conv2d(w/3, (w-3, 1), padding=(1, 0))\n");
    assert_non_null(c.model);
    assert_shape(model_output_shape(c.model), 3, (int64_t[]){6, 6, 2});
    release(&c);
}

static void test_merge_shapes_and_names(void **state)
{
    (void)state;
    Compiled c = compile_text("model r\ninput [8, 2]\na: conv1d(4, 3, padding=same)\n"
                              "conv1d(4, 3, padding=same)\nadd(a)\nconcat(a)\ndense(1)\n"
                              "dense(1)\n");
    assert_non_null(c.model);
    assert_shape(&c.model->layers[3]->out, 2, (int64_t[]){8, 8});
    assert_string_equal(c.model->layers[1]->name, "conv1d_2"); /* labelled ones count */
    assert_string_equal(c.model->layers[5]->name, "dense_2");
    release(&c);
}

static void test_batchnorm_params_fixed_and_trainable(void **state)
{
    (void)state;
    Compiled c = compile_text("model b\ninput [5, 5, 3]\nbatchnorm\nbatchnorm(trainable=false)\n");
    assert_non_null(c.model);
    assert_int_equal(layer_param_count(c.model->layers[0], true), 6);
    assert_int_equal(layer_param_count(c.model->layers[0], false), 6);
    assert_int_equal(layer_param_count(c.model->layers[1], false), 12);
    release(&c);
}

static void test_train_defaults(void **state)
{
    (void)state;
    Compiled c = compile_text("model t\ninput [4]\ndense(3, activation=softmax)\n"
                              "train { optimizer = sgd(0.1, 0.9, true); batch = 8 }\n");
    assert_non_null(c.model);
    const TrainConfig *t = &c.model->train;
    assert_int_equal(t->loss, LOSS_CROSSENTROPY); /* after a softmax output */
    assert_int_equal(t->optimizer, OPT_SGD);
    assert_true(t->lr == 0.1 && t->momentum == 0.9 && t->nesterov);
    assert_int_equal(t->batch, 8);
    assert_int_equal(t->epochs, 10);
    release(&c);
}

static void test_error_has_location_line_and_caret(void **state)
{
    (void)state;
    Compiled c = compile_text("model m\ninput [5, 5, 1]\nconv2d(1, 7)\n");
    assert_null(c.model);
    assert_string_equal(c.messages,
                        "t.cnn:3:1: error: conv2d_1: output size -1 on spatial axis 1 (input 5, "
                        "kernel 7, dilation 1, stride 1, padding valid); the shape comes out "
                        "empty\nconv2d(1, 7)\n^\n");
    release(&c);
}

static void test_every_independent_error_reported(void **state)
{
    (void)state;
    Compiled c = compile_text("model m\ninput [4]\ndense(0)\nrelu(1)\ndense(4 2)\nfoo\n");
    assert_null(c.model);
    assert_int_equal(diag_error_count(c.diag), 4);
    assert_non_null(strstr(c.messages, "t.cnn:3:7: error: units must be at least 1, got 0"));
    assert_non_null(strstr(c.messages, "t.cnn:4:6: error: relu takes no positional arguments"));
    assert_non_null(strstr(c.messages, "t.cnn:5:9: error: expected ',' or ')', found '2'"));
    assert_non_null(strstr(c.messages, "t.cnn:6:1: error: unknown layer 'foo'"));
    release(&c);
}

static void test_caret_counts_characters_and_keeps_tabs(void **state)
{
    (void)state;
    Compiled c = compile_text("model m\ninput [4]\n\t# é\n\trelu(é)\n");
    assert_null(c.model);
    assert_string_equal(c.messages, "t.cnn:4:7: error: unexpected character 'é'\n"
                                    "\trelu(é)\n\t     ^\n");
    release(&c);
}

static void test_linear_warning(void **state)
{
    (void)state;
    Compiled c = compile_text("model m\ninput [4]\ndense(4)\ndense(1)\n");
    assert_non_null(c.model);
    assert_int_equal(diag_warning_count(c.diag), 1);
    assert_non_null(strstr(c.messages, "t.cnn:3:1: warning: 'dense_1' has a linear activation "
                                       "and feeds 'dense_2' directly"));
    release(&c);
}

static void test_size_limit_exact_count(void **state)
{
    (void)state;
    Compiled c = compile_text("model m\ninput [9007199254740992, 9007199254740992]\n");
    assert_null(c.model);
    assert_non_null(strstr(c.messages, "81129638414606681695789005144064 elements"));
    release(&c);
}

/* Outputs whose lifetimes do not overlap share arena space. */
static void test_memory_plan_reuses_buffers(void **state)
{
    (void)state;
    Compiled c = compile_text("model m\ninput [64]\ndense(64, activation=relu)\n"
                              "dense(64, activation=relu)\ndense(64, activation=relu)\n"
                              "dense(64, activation=relu)\ndense(1)\n");
    assert_non_null(c.model);
    assert_int_equal(c.model->arena_floats, 128); /* two 64-float blocks in turn */
    assert_int_equal(c.model->layers[0]->arena_offset, c.model->layers[2]->arena_offset);
    assert_int_equal(c.model->layers[4]->arena_offset, -1); /* the caller's output */
    release(&c);
}

static void test_memory_plan_keeps_branches_alive(void **state)
{
    (void)state;
    Compiled c = compile_text("model m\ninput [16]\na: dense(16, activation=relu)\n"
                              "dense(16, activation=relu)\ndense(16, activation=relu)\n"
                              "add(a)\ndense(1)\n");
    assert_non_null(c.model);
    Layer **l = c.model->layers;
    assert_true(l[0]->arena_offset != l[1]->arena_offset);
    assert_true(l[0]->arena_offset != l[2]->arena_offset); /* a lives until add */
    assert_int_equal(c.model->arena_floats, 48);
    release(&c);
}

static void test_utf8_check(void **state)
{
    (void)state;
    Source src = {.data = "ab\ncd\xe9x", .len = 7};
    int line, col;
    assert_true(source_find_bad_utf8(&src, &line, &col));
    assert_int_equal(line, 2);
    assert_int_equal(col, 3);
    Source overlong = {.data = "\xc0\x80", .len = 2};
    assert_true(source_find_bad_utf8(&overlong, &line, &col));
    Source fine = {.data = "\xe2\x82\xac ok", .len = 6};
    assert_false(source_find_bad_utf8(&fine, &line, &col));
}

static void test_strmap(void **state)
{
    (void)state;
    StrMap map = {0};
    char keys[1000][8];
    for (int i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        strmap_put(&map, keys[i], i);
    }
    intptr_t v;
    assert_true(strmap_get(&map, "k737", &v));
    assert_int_equal(v, 737);
    assert_false(strmap_get(&map, "k1000", &v));
    assert_int_equal(map.count, 1000);
    strmap_free(&map);
}

static void test_format_int128(void **state)
{
    (void)state;
    char buf[48];
    format_int128(-((__int128)1 << 100), buf);
    assert_string_equal(buf, "-1267650600228229401496703205376");
    format_int128(0, buf);
    assert_string_equal(buf, "0");
}

/* TFLite's QuantizeMultiplier, as tests/reference/test_cnnref_quant.py pins
 * the reference's: m = q / 2^31 * 2^shift, q in [2^30, 2^31). */
static void test_quant_multiplier(void **state)
{
    (void)state;
    static const struct {
        double m;
        int32_t q;
        int shift;
    } cases[] = {
        {0.5, 1 << 30, 0},  {1.0, 1 << 30, 1},         {0.25, 1 << 30, -1},
        {0.75, 3 << 29, 0}, {1 - 0x1p-40, 1 << 30, 1}, /* rounds up to 2^31: 2^30 and one more shift */
        {0x1p-40, 0, 0},                               /* below 2^-31: zero */
        {0.0, 0, 0},        {-0.75, -(3 << 29), 0},    /* a negative alpha's */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        QuantMultiplier qm = quant_multiplier(cases[k].m);
        assert_int_equal(qm.multiplier, cases[k].q);
        assert_int_equal(qm.shift, cases[k].shift);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed42_has_42_params),
        cmocka_unit_test(test_all_dense_has_130_params),
        cmocka_unit_test(test_ten_7x7_filters),
        cmocka_unit_test(test_same_padding_split),
        cmocka_unit_test(test_causal_padding_keeps_length),
        cmocka_unit_test(test_nested_weights_trailing_axes),
        cmocka_unit_test(test_constants_and_expressions),
        cmocka_unit_test(test_merge_shapes_and_names),
        cmocka_unit_test(test_batchnorm_params_fixed_and_trainable),
        cmocka_unit_test(test_train_defaults),
        cmocka_unit_test(test_error_has_location_line_and_caret),
        cmocka_unit_test(test_every_independent_error_reported),
        cmocka_unit_test(test_caret_counts_characters_and_keeps_tabs),
        cmocka_unit_test(test_linear_warning),
        cmocka_unit_test(test_size_limit_exact_count),
        cmocka_unit_test(test_memory_plan_reuses_buffers),
        cmocka_unit_test(test_memory_plan_keeps_branches_alive),
        cmocka_unit_test(test_utf8_check),
        cmocka_unit_test(test_strmap),
        cmocka_unit_test(test_format_int128),
        cmocka_unit_test(test_quant_multiplier),
    };
    return cmocka_run_group_tests_name("frontend", tests, NULL, NULL);
}
