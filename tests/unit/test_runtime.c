/* test_runtime.c - unit tests of libcnnrt (cmocka): the init rules'
 * distributions, the strict safetensors reader, the sample reader. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <unistd.h>

#include "cnnrt.h"

/* ---- init rules ---------------------------------------------------------- */

static void moments(const float *v, long n, double *mean, double *var, double *maxabs)
{
    double s = 0, s2 = 0, m = 0;
    for (long i = 0; i < n; i++) {
        s += v[i];
        s2 += (double)v[i] * v[i];
        if (fabs(v[i]) > m)
            m = fabs(v[i]);
    }
    *mean = s / n;
    *var = s2 / n - *mean * *mean;
    *maxabs = m;
}

static void test_glorot_uniform(void **state)
{
    (void)state;
    enum { N = 200000 };
    float *p = malloc(N * sizeof *p);
    cnnrt_init_spec spec = {0, N, CNNRT_INIT_GLOROT_UNIFORM, 100, 300};
    cnnrt_init_params(&spec, 1, p, 7);
    double mean, var, maxabs, limit = sqrt(3.0 / 200.0);
    moments(p, N, &mean, &var, &maxabs);
    assert_true(maxabs <= limit);
    assert_true(maxabs > 0.99 * limit);
    assert_true(fabs(mean) < 0.01 * limit);
    assert_true(fabs(var - limit * limit / 3) < 0.02 * limit * limit / 3);
    free(p);
}

static void test_he_normal_truncated(void **state)
{
    (void)state;
    enum { N = 200000 };
    float *p = malloc(N * sizeof *p);
    cnnrt_init_spec spec = {0, N, CNNRT_INIT_HE_NORMAL, 50, 7};
    cnnrt_init_params(&spec, 1, p, 1);
    double mean, var, maxabs, sd = sqrt(2.0 / 50.0);
    moments(p, N, &mean, &var, &maxabs);
    /* rescaled so the variance is scale/fan_in; cut at 2 of the unit sd */
    assert_true(fabs(sqrt(var) - sd) < 0.02 * sd);
    assert_true(maxabs <= 2 * sd / 0.87962566103423978 + 1e-6);
    free(p);
}

static void test_init_keeps_and_fills(void **state)
{
    (void)state;
    float p[6] = {5, 5, 5, 5, 5, 5};
    cnnrt_init_spec specs[] = {{0, 2, CNNRT_INIT_KEEP, 1, 1},
                               {2, 2, CNNRT_INIT_ONES, 1, 1},
                               {4, 2, CNNRT_INIT_ZEROS, 1, 1}};
    cnnrt_init_params(specs, 3, p, 0);
    float want[6] = {5, 5, 1, 1, 0, 0};
    assert_memory_equal(p, want, sizeof want);
    /* the same seed gives the same numbers */
    float a[64], b[64];
    cnnrt_init_spec g = {0, 64, CNNRT_INIT_LECUN_NORMAL, 10, 10};
    cnnrt_init_params(&g, 1, a, 3);
    cnnrt_init_params(&g, 1, b, 3);
    assert_memory_equal(a, b, sizeof a);
}

/* ---- safetensors ---------------------------------------------------------- */

static char path[64];

static void write_file(const char *header, const void *data, size_t n)
{
    snprintf(path, sizeof path, "/tmp/cnnrt_test_%d.safetensors", (int)getpid());
    FILE *f = fopen(path, "wb");
    uint64_t len = strlen(header);
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(len >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(header, 1, len, f);
    fwrite(data, 1, n, f);
    fclose(f);
}

static const cnnrt_tensor_spec specs2[] = {{"a.kernel", 2, {2, 2}, 0}, {"a.bias", 1, {2}, 4}};

static int load(char *error)
{
    float params[6] = {9, 9, 9, 9, 9, 9};
    int rc = cnnrt_load_safetensors(path, specs2, 2, params, 6, error, 256);
    if (rc == 0)
        assert_true(params[0] == 1 && params[4] == 5 && params[5] == 6);
    else
        assert_true(params[0] == 9); /* nothing half-loaded */
    return rc;
}

/* Six floats of tensor data, and room for the cases that write more. */
static const float data6[16] = {1, 2, 3, 4, 5, 6};

static void test_safetensors_good(void **state)
{
    (void)state;
    char error[256];
    write_file("{\"a.kernel\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
               "\"a.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}",
               data6, 24);
    assert_int_equal(load(error), 0);
}

static void expect_error(const char *header, size_t bytes, const char *message)
{
    char error[256], want[256];
    write_file(header, data6, bytes);
    assert_int_equal(load(error), -1);
    snprintf(want, sizeof want, "%s: error: %s", path, message);
    assert_string_equal(error, want);
}

static void test_safetensors_errors(void **state)
{
    (void)state;
    expect_error("{\"a.kernel\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16,
                 "tensor 'a.bias' [2] is missing");
    expect_error("{\"a.kernel\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"a.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}",
                 24, "tensor 'a.kernel' has shape [4]; the model needs [2, 2]");
    expect_error("{\"a.kernel\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                 "\"a.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},"
                 "\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[24,24]}}",
                 24, "tensor 'x' is not in the model");
    expect_error("{\"a.kernel\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                 "\"a.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}",
                 20, "tensor 'a.bias': data_offsets [16, 24] are outside the 20 bytes of data");
    expect_error("{\"a.kernel\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                 "\"a.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}",
                 28, "4 bytes of data after the last tensor");
    expect_error("{\"a\":1,\"a\":2}", 0, "the header names a tensor twice");
    expect_error("[1]", 0, "the header is not a JSON object");
    expect_error("{\"a.kernel\":", 0, "the header is not valid JSON");
    expect_error("{\"a.kernel\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
                 "\"a.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                 16, "tensor 'a.kernel' has dtype F16; the model needs F32");
}

/* Hostile files (issue: hardening): a value that is not finite, a name
 * cut short by \u0000, nested duplicates. */
static void test_safetensors_hostile(void **state)
{
    (void)state;
    const char *two = "{\"a.kernel\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                      "\"a.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}";
    float bad[6] = {1, 2, 3, 4, 5, NAN};
    char error[256], want[256];
    write_file(two, bad, 24);
    assert_int_equal(load(error), CNNRT_EBAD);
    snprintf(want, sizeof want,
             "%s: error: tensor 'a.bias' holds nan at element 1: weights must "
             "be finite",
             path);
    assert_string_equal(error, want);
    bad[5] = 6;
    bad[0] = -INFINITY;
    write_file(two, bad, 24);
    assert_int_equal(load(error), CNNRT_EBAD);
    assert_non_null(strstr(error, "tensor 'a.kernel' holds -inf at element 0"));
    expect_error("{\"a.kernel\\u0000x\":{\"dtype\":\"F32\",\"shape\":[2,2],"
                 "\"data_offsets\":[0,16]},"
                 "\"a.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}",
                 24, "the header has a string with \\u0000 in it");
    expect_error("{\"a.kernel\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2,2],"
                 "\"data_offsets\":[0,16]}}",
                 16, "the header names a tensor twice");
}

/* A header of 100,000 tensors: the checks are n log n (they were n^2,
 * 50 s); the answer names the first one the model lacks. */
static void test_safetensors_many_tensors(void **state)
{
    (void)state;
    enum { N = 100000 };
    size_t cap = (size_t)N * 80 + 64, len = 0;
    char *header = malloc(cap);
    len += (size_t)snprintf(header + len, cap - len, "{");
    for (int i = 0; i < N; i++)
        len +=
            (size_t)snprintf(header + len, cap - len,
                             "%s\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                             i ? "," : "", N - i);
    snprintf(header + len, cap - len, "}");
    char error[256], want[256];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    write_file(header, data6, 0);
    assert_int_equal(load(error), CNNRT_EBAD);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    snprintf(want, sizeof want, "%s: error: tensor 'a.kernel' [2, 2] is missing", path);
    assert_string_equal(error, want);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    print_message("100,000 tensors checked in %.2f s\n", seconds);
    assert_true(seconds < 20); /* n^2 took 50 s (over 60 s under ASan) */
    free(header);
}

static void test_safetensors_write(void **state)
{
    (void)state;
    char error[256];
    snprintf(path, sizeof path, "/tmp/cnnrt_test_%d.safetensors", (int)getpid());
    assert_int_equal(cnnrt_save_safetensors(path, specs2, 2, data6, error, sizeof error), 0);
    /* The reference's bytes: compact JSON, padded with spaces to 8. */
    const char *want = "{\"a.kernel\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                       "\"a.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}";
    size_t len = strlen(want), padded = (len + 7) / 8 * 8;
    unsigned char buf[512];
    FILE *f = fopen(path, "rb");
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(got, 8 + padded + 24);
    assert_int_equal(buf[0] | buf[1] << 8, padded);
    assert_memory_equal(buf + 8, want, len);
    for (size_t i = len; i < padded; i++)
        assert_int_equal(buf[8 + i], ' ');
    assert_memory_equal(buf + 8 + padded, data6, 24);
    assert_int_equal(load(error), 0); /* and it reads back */
    /* An unwritable place: an error, and nothing left behind. */
    assert_int_equal(cnnrt_save_safetensors("/nonexistent/dir/w.safetensors", specs2, 2, data6,
                                            error, sizeof error),
                     -2);
    assert_non_null(strstr(error, "error: cannot write '/nonexistent/dir/w.safetensors'"));
}

/* ---- the sample reader ---------------------------------------------------- */

static void echo_predict(const float *in, float *out, int n)
{
    for (int i = 0; i < n; i++) {
        out[2 * i] = in[3 * i] + in[3 * i + 1] + in[3 * i + 2];
        out[2 * i + 1] = -in[3 * i];
    }
}

static void run_lines(const char *text, int want_status, const char *want_out, const char *want_err)
{
    FILE *in = fmemopen((void *)text, strlen(text), "r");
    char *out_text = NULL, *err_text = NULL;
    size_t out_len, err_len;
    FILE *out = open_memstream(&out_text, &out_len), *err = open_memstream(&err_text, &err_len);
    int status = cnnrt_predict_lines(in, "s.txt", 3, 2, echo_predict, out, err);
    fclose(in);
    fclose(out);
    fclose(err);
    assert_int_equal(status, want_status);
    assert_string_equal(out_text, want_out);
    assert_string_equal(err_text, want_err);
    free(out_text);
    free(err_text);
}

/* Dropout masks: the kept fraction is 1 - rate, kept values are
 * 1/(1 - rate); the same (seed, layer, step) gives the same mask, another
 * step an independent one. */
static void test_dropout_mask(void **state)
{
    (void)state;
    enum { N = 100000 };
    static float whole[N], half[N];
    cnnrt_dropout_mask(whole, N, 0.25, 42, 3, 7);
    long kept = 0;
    for (long i = 0; i < N; i++) {
        assert_true(whole[i] == 0.0f || whole[i] == (float)(1 / 0.75));
        kept += whole[i] != 0.0f;
    }
    assert_true(kept > 74000 && kept < 76000);
    cnnrt_dropout_mask(half, N, 0.25, 42, 3, 7);
    assert_memory_equal(whole, half, sizeof whole);
    cnnrt_dropout_mask(half, N, 0.25, 42, 3, 8); /* another step */
    long same = 0;
    for (long i = 0; i < N; i++)
        same += half[i] == whole[i];
    assert_true(same < 66000);                  /* independent masks agree on 0.75^2 + 0.25^2 */
    cnnrt_dropout_mask(half, N, 0.0, 42, 3, 7); /* rate 0 keeps all */
    for (long i = 0; i < N; i++)
        assert_true(half[i] == 1.0f);
}

static void test_sample_lines(void **state)
{
    (void)state;
    run_lines("# a comment\n1, 2 3\n\n  0.5e1,-1,.5  \n", 0, "6,-1\n4.5,-5\n", "");
    run_lines("1 2 3\n1,,3\n4 5 6\n", 1, "6,-1\n", "s.txt:2:3: error: an empty field\n");
    run_lines("1 2\n", 1, "", "s.txt:1:1: error: expected 3 numbers, found 2\n");
    run_lines("1 2 x3\n", 1, "", "s.txt:1:5: error: 'x3' is not a number\n");
    run_lines("1 2 nan\n", 1, "", "s.txt:1:5: error: 'nan' is not a number\n");
}

/* ---- augmentation: the transforms, value by value ---------------------- */

static void assert_floats(const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++) {
        if (got[i] != want[i])
            print_error("element %d: %g, expected %g\n", i, got[i], want[i]);
        assert_true(got[i] == want[i]);
    }
}

/* A 3 x 4 image with 2 channels: pixel (y, x) holds 10y + x and -(10y + x). */
static void image_3x4x2(float *image)
{
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++) {
            image[(y * 4 + x) * 2] = (float)(10 * y + x);
            image[(y * 4 + x) * 2 + 1] = (float)-(10 * y + x);
        }
}

static void test_shift_image(void **state)
{
    (void)state;
    float in[24], out[24];
    int shape[3] = {3, 4, 2};
    image_3x4x2(in);
    /* down 1, left 2: out[y][x] = in[y - 1][x + 2], zero outside */
    cnnrt_shift_image(in, out, 3, shape, 1, -2);
    const float want[24] = {0,  0,   0,  0,   0, 0, 0, 0, /* row 0: from row -1 */
                            2,  -2,  3,  -3,  0, 0, 0, 0, /* row 1: row 0's x = 2, 3 */
                            12, -12, 13, -13, 0, 0, 0, 0};
    assert_floats(out, want, 24);
    cnnrt_shift_image(in, out, 3, shape, 0, 0);
    assert_floats(out, in, 24);
    cnnrt_shift_image(in, out, 3, shape, -3, 0); /* all of it out of view */
    const float zeros[24] = {0};
    assert_floats(out, zeros, 24);
}

static void test_flip_image(void **state)
{
    (void)state;
    float in[24], out[24], back[24];
    int shape[3] = {3, 4, 2};
    image_3x4x2(in);
    cnnrt_flip_image(in, out, 3, shape);
    const float want[24] = {3,  -3,  2,  -2,  1,  -1,  0,  0,   13, -13, 12, -12,
                            11, -11, 10, -10, 23, -23, 22, -22, 21, -21, 20, -20};
    assert_floats(out, want, 24);
    cnnrt_flip_image(out, back, 3, shape);
    assert_floats(back, in, 24);
}

/* A clip moves every frame alike. */
static void test_shift_clip(void **state)
{
    (void)state;
    float in[2 * 2 * 3], out[2 * 2 * 3];
    int shape[4] = {2, 2, 3, 1};
    for (int i = 0; i < 12; i++)
        in[i] = (float)(i + 1);
    cnnrt_shift_image(in, out, 4, shape, 0, 1);
    const float want[12] = {0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11};
    assert_floats(out, want, 12);
    cnnrt_flip_image(in, out, 4, shape);
    const float flipped[12] = {3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10};
    assert_floats(out, flipped, 12);
}

/* The draws depend on (seed, epoch, position) only: a sample augments the
 * same wherever its batch starts, and differently in another epoch. */
static void test_augment_streams(void **state)
{
    (void)state;
    cnnrt_train_settings s = {.naugment = 2, .input_rank = 3, .input_shape = {3, 4, 2}};
    s.augment[0] = (cnnrt_augment){CNNRT_AUGMENT_SHIFT, 1};
    s.augment[1] = (cnnrt_augment){CNNRT_AUGMENT_NOISE, 0.5};
    float batch[3 * 24], single[24], other[24], t[3] = {0}, tmp[24];
    for (int k = 0; k < 3; k++)
        image_3x4x2(batch + 24 * k);
    image_3x4x2(single);
    image_3x4x2(other);
    cnnrt_augment_batch(&s, 7, 0, batch, t, 3, 24, 1, 2, 10, tmp);
    cnnrt_augment_batch(&s, 7, 0, single, t, 1, 24, 1, 2, 12, tmp);
    assert_floats(single, batch + 48, 24);
    cnnrt_augment_batch(&s, 7, 0, other, t, 1, 24, 1, 3, 12, tmp);
    int same = 1;
    for (int i = 0; i < 24; i++)
        same &= other[i] == single[i];
    assert_false(same);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shift_image),
        cmocka_unit_test(test_flip_image),
        cmocka_unit_test(test_shift_clip),
        cmocka_unit_test(test_augment_streams),
        cmocka_unit_test(test_glorot_uniform),
        cmocka_unit_test(test_he_normal_truncated),
        cmocka_unit_test(test_init_keeps_and_fills),
        cmocka_unit_test(test_safetensors_good),
        cmocka_unit_test(test_safetensors_errors),
        cmocka_unit_test(test_safetensors_write),
        cmocka_unit_test(test_sample_lines),
        cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_safetensors_hostile),
        cmocka_unit_test(test_safetensors_many_tensors),
    };
    int failed = cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
    remove(path);
    return failed;
}
