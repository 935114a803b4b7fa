/* test_llvm_layout.c - the LLVM backend builds cnnrt_model and the layer
 * table (cnnrt_layer_info) field by field (emit_llvm.c, model_type,
 * layer_info_type); the runtime reads them through the header.  The two
 * must agree on every field's offset and on the size, or an object hands
 * the runtime a garbled model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cnnrt.h"
#include "emit_llvm.h"

enum { MAX_FIELDS = 64 };

/* The glue's offsets (layout_of) against the header's, field by field,
 * and the sizes. */
static void check_layout(const size_t *header, size_t fields, size_t header_size,
                         int (*layout_of)(unsigned long long *, int, unsigned long long *))
{
    unsigned long long offsets[MAX_FIELDS], size = 0;
    assert_true(fields < MAX_FIELDS);
    int n = layout_of(offsets, MAX_FIELDS, &size);
    if (n < 0)
        skip();
    assert_int_equal(n, fields);
    for (size_t i = 0; i < fields; i++) {
        if (offsets[i] != header[i])
            print_error("field %zu: the glue puts it at %llu, the header at %zu\n", i, offsets[i],
                        header[i]);
        assert_int_equal(offsets[i], header[i]);
    }
    assert_int_equal(size, header_size);
}

static void test_model_layout_matches_header(void **state)
{
    (void)state;
    static const size_t header[] = {
        offsetof(cnnrt_model, name),
        offsetof(cnnrt_model, input_size),
        offsetof(cnnrt_model, output_size),
        offsetof(cnnrt_model, last_axis),
        offsetof(cnnrt_model, batch),
        offsetof(cnnrt_model, epochs),
        offsetof(cnnrt_model, seed),
        offsetof(cnnrt_model, layout),
        offsetof(cnnrt_model, loss),
        offsetof(cnnrt_model, metrics),
        offsetof(cnnrt_model, nmetrics),
        offsetof(cnnrt_model, ntensors),
        offsetof(cnnrt_model, tensors),
        offsetof(cnnrt_model, params),
        offsetof(cnnrt_model, param_count),
        offsetof(cnnrt_model, init),
        offsetof(cnnrt_model, start_training),
        offsetof(cnnrt_model, train_batch),
        offsetof(cnnrt_model, eval_batch),
        offsetof(cnnrt_model, predict),
        offsetof(cnnrt_model, set_learning_rate),
        offsetof(cnnrt_model, optimizer_state),
        offsetof(cnnrt_model, optimizer_blocks),
        offsetof(cnnrt_model, train_step),
        offsetof(cnnrt_model, settings),
        offsetof(cnnrt_model, nlayers),
        offsetof(cnnrt_model, layers),
        offsetof(cnnrt_model, train_arena),
        offsetof(cnnrt_model, profile),
        offsetof(cnnrt_model, isa),
    };
    check_layout(header, sizeof header / sizeof header[0], sizeof(cnnrt_model),
                 emit_llvm_model_layout);
}

static void test_layer_info_layout_matches_header(void **state)
{
    (void)state;
    static const size_t header[] = {
        offsetof(cnnrt_layer_info, name),  offsetof(cnnrt_layer_info, kind),
        offsetof(cnnrt_layer_info, line),  offsetof(cnnrt_layer_info, rank),
        offsetof(cnnrt_layer_info, shape), offsetof(cnnrt_layer_info, values),
        offsetof(cnnrt_layer_info, flops), offsetof(cnnrt_layer_info, fused_into),
    };
    check_layout(header, sizeof header / sizeof header[0], sizeof(cnnrt_layer_info),
                 emit_llvm_layer_info_layout);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_layout_matches_header),
        cmocka_unit_test(test_layer_info_layout_matches_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
