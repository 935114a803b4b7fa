/* predict_lines.c - the predict command of a generated program.
 *
 * This file serves twice: compiled into libcnnrt, and embedded by cnngen
 * into a standalone predictor (--weights --no-train --main), where
 * CNNRT_API is `static` and the program needs nothing but libc and libm.
 * So everything below the marker is plain C99 with no other dependency.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "fields.h"

#define CNNRT_API

/* cnngen:embed-begin */
/* Sample lines: `input_size` numbers separated by commas and/or blanks. */
#include <errno.h>

#ifndef CNNRT_H     /* embedded in a standalone program: no cnnrt.h */
typedef void (*cnnrt_predict_fn)(const float *input, float *output, int n);
typedef int (*cnnrt_load_fn)(const char *path, char *error, size_t error_size);
typedef void (*cnnrt_init_fn)(unsigned long long seed);
typedef void (*cnnrt_predict_raw_fn)(const float *input, long *output);
#endif

CNNRT_API int cnnrt_is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' || c == '\n';
}

/* A decimal number, as the whole field: sign, digits, fraction, exponent. */
CNNRT_API int cnnrt_is_number(const char *s, size_t n)
{
    size_t i = 0, digits = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1, exp_digits = 0;
        if (j < n && (s[j] == '+' || s[j] == '-'))
            j++;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++, exp_digits++;
        if (exp_digits == 0)
            return 0;
        i = j;
    }
    return i == n;
}

/* Columns count characters: UTF-8 continuation bytes do not. */
CNNRT_API long cnnrt_column(const char *line, size_t byte)
{
    long col = 1;
    for (size_t i = 0; i < byte; i++)
        col += ((unsigned char)line[i] & 0xC0) != 0x80;
    return col;
}

CNNRT_API int cnnrt_valid_utf8(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                                  : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (len == 0 || i + len > n)
            return 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        if (len > 1 && (p[i + 1] < lo || p[i + 1] > hi))
            return 0;
        for (size_t k = 2; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

/* The end of the field at pos, and where the next one starts. */
CNNRT_API size_t cnnrt_field_end(const char *line, size_t pos, size_t end, size_t *next)
{
    while (pos < end && line[pos] != ',' && !cnnrt_is_blank(line[pos]))
        pos++;
    size_t g = pos;
    while (g < end && cnnrt_is_blank(line[g]))
        g++;
    if (g < end && line[g] == ',') {        /* a comma, blanks around it */
        g++;
        while (g < end && cnnrt_is_blank(line[g]))
            g++;
    }
    *next = g;
    return pos;
}

/* Parse one line into values; 1 if it holds a sample, 0 if skipped, -1
 * on an error (printed to err).  A wrong count is reported before a bad
 * field. */
static int cnnrt_parse_sample(const char *line, size_t len, const char *where, long lineno,
                              int size, float *values, FILE *err)
{
    size_t start = 0, end = len, pos, next;
    while (start < end && cnnrt_is_blank(line[start]))
        start++;
    while (end > start && cnnrt_is_blank(line[end - 1]))
        end--;
    if (start == end || line[start] == '#')
        return 0;
    long count = 0;
    for (pos = start;; pos = next) {
        size_t f = cnnrt_field_end(line, pos, end, &next);
        count++;
        if (f >= end)
            break;
    }
    if (count != size) {
        fprintf(err, "%s:%ld:1: error: expected %d numbers, found %ld\n", where, lineno, size,
                count);
        return -1;
    }
    pos = start;
    for (int k = 0; k < size; k++, pos = next) {
        size_t f = cnnrt_field_end(line, pos, end, &next);
        if (!cnnrt_is_number(line + pos, f - pos)) {
            if (f == pos)
                fprintf(err, "%s:%ld:%ld: error: an empty field\n", where, lineno,
                        cnnrt_column(line, pos));
            else
                fprintf(err, "%s:%ld:%ld: error: '%.*s' is not a number\n", where, lineno,
                        cnnrt_column(line, pos), (int)(f - pos), line + pos);
            return -1;
        }
        /* strtod stops at the field's end: the next byte is not a digit. */
        values[k] = (float)strtod(line + pos, NULL);
    }
    return 1;
}

static void cnnrt_print_outputs(FILE *out, const float *y, int rows, int size)
{
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < size; k++) {
            float v = y[(size_t)r * size + k];
            if (k)
                fputc(',', out);
            if (isnan(v))
                fputs("nan", out);
            else
                fprintf(out, "%.9g", (double)v);
        }
        fputc('\n', out);
    }
}

/* Read one line of any length; returns its length, or -1 at the end (or
 * on a read error: ferror tells). */
CNNRT_API long cnnrt_read_line(FILE *in, size_t max, char **buf, size_t *cap)
{
    size_t len = 0;
    int c;
    while ((c = getc(in)) != EOF) {
        if (len + 2 > *cap) {
            size_t bigger = *cap ? 2 * *cap : 256;
            char *p = (char *)realloc(*buf, bigger);
            if (!p)
                return -2;
            *buf = p;
            *cap = bigger;
        }
        (*buf)[len++] = (char)c;
        /* A NUL ends the line too, for the caller to report: /dev/zero
         * is one endless line of them. */
        if (c == '\n' || c == '\0')
            break;
        if (len > max)
            return -3;
    }
    if (len == 0 && c == EOF)
        return -1;
    (*buf)[len] = '\0';
    return (long)len;
}

static void cnnrt_print_raw(FILE *out, const long *y, int size)
{
    for (int k = 0; k < size; k++)
        fprintf(out, k ? ",%ld" : "%ld", y[k]);
    fputc('\n', out);
}

/* Each sample through predict, or through raw (an int8 program's integer
 * outputs) where it is not NULL. */
static int cnnrt_predict_lines_with(FILE *in, const char *where, int input_size, int output_size,
                                    cnnrt_predict_fn predict, cnnrt_predict_raw_fn raw, FILE *out,
                                    FILE *err)
{
    float *x = (float *)malloc(sizeof(float) * (size_t)input_size + 1);
    float *y = (float *)malloc(sizeof(float) * (size_t)output_size + 1);
    long *integers = raw ? (long *)malloc(sizeof(long) * (size_t)output_size + 1) : NULL;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, len = 0;
    int status = 0;
    if (!x || !y || (raw && !integers)) {
        fprintf(err, "%s: error: out of memory\n", where);
        status = 1;
    }
    /* One sample at a time: a person typing gets each answer at once, and
     * the lines before a bad one are printed. */
    /* Room for every number written out in full, and then some. */
    size_t max = 256 * (size_t)input_size + 65536;
    while (status == 0 && (len = cnnrt_read_line(in, max, &line, &cap)) >= 0) {
        lineno++;
        const char *nul = (const char *)memchr(line, 0, (size_t)len);
        if (nul) {
            fprintf(err, "%s:%ld:%ld: error: a NUL byte: the input is not text\n", where, lineno,
                    cnnrt_column(line, (size_t)(nul - line)));
            status = 1;
            break;
        }
        if (!cnnrt_valid_utf8((const unsigned char *)line, (size_t)len)) {
            fprintf(err, "%s: error: the input is not valid UTF-8\n", where);
            status = 1;
            break;
        }
        int got = cnnrt_parse_sample(line, (size_t)len, where, lineno, input_size, x, err);
        if (got < 0) {
            status = 1;
        } else if (got > 0 && raw) {
            raw(x, integers);
            cnnrt_print_raw(out, integers, output_size);
        } else if (got > 0) {
            predict(x, y, 1);
            cnnrt_print_outputs(out, y, 1, output_size);
        }
    }
    if (len == -2) {
        fprintf(err, "%s: error: out of memory\n", where);
        status = 1;
    }
    if (len == -3) {
        fprintf(err, "%s:%ld: error: the line is longer than %zu bytes, the limit for %d inputs\n",
                where, lineno + 1, max, input_size);
        status = 1;
    }
    if (status == 0 && ferror(in)) { /* a directory, say: not the end of an empty input */
        fprintf(err, "%s: error: cannot read it: %s\n", where, strerror(errno));
        status = 2;
    }
    fflush(out);
    free(line);
    free(x);
    free(y);
    free(integers);
    return status;
}

/* Embedded, a program has the one command it calls: a float program
 * cnnrt_predict_command, an int8 one (CNNRT_INT8) cnnrt_predict_command_int8. */
#ifdef CNNRT_H
CNNRT_API int cnnrt_predict_lines(FILE *in, const char *where, int input_size, int output_size,
                                  cnnrt_predict_fn predict, FILE *out, FILE *err)
{
    return cnnrt_predict_lines_with(in, where, input_size, output_size, predict, NULL, out, err);
}
#endif

/* The predict command; raw, where not NULL, an int8 program's outputs for
 * --raw (its weights baked in: load and init NULL). */
static int cnnrt_predict_program(int argc, char **argv, const char *model_name, int input_size,
                                 int output_size, cnnrt_predict_fn predict,
                                 cnnrt_predict_raw_fn raw, cnnrt_load_fn load, cnnrt_init_fn init,
                                 unsigned long long seed)
{
    const char *prog = argc > 0 ? argv[0] : model_name;
    const char *weights = NULL, *file = NULL;
    int want_raw = 0;
    if (argc < 2 || strcmp(argv[1], "predict") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "train") == 0 || strcmp(argv[1], "eval") == 0 ||
                          strcmp(argv[1], "calibrate") == 0))
            fprintf(stderr, "%s: error: '%s' is not built into this program (it predicts "
                            "only)\n", prog, argv[1]);
        else
            fprintf(stderr, raw ? "usage: %s predict [--raw] [FILE|-]\n"
                                : "usage: %s predict [--weights W.safetensors] [FILE|-]\n",
                    prog);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (raw && strcmp(argv[i], "--raw") == 0) {
            want_raw = 1;
        } else if (strcmp(argv[i], "--weights") == 0 && i + 1 < argc) {
            weights = argv[++i];
        } else if (strncmp(argv[i], "--weights=", 10) == 0) {
            weights = argv[i] + 10;
        } else if (strcmp(argv[i], "--profile") == 0) {
            fprintf(stderr, "%s: error: this program is built without the profile: compile the "
                            "model with cnngen --profile\n", prog);
            return 2;
        } else if (strcmp(argv[i], "--dump") == 0 || strncmp(argv[i], "--dump=", 7) == 0) {
            fprintf(stderr, "%s predict: error: --dump needs the training code (the evaluation "
                            "pass keeps every layer's output), and this program is built "
                            "without it (cnngen --no-train or --weights)\n", prog);
            return 2;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "%s predict: error: unknown option '%s'\n", prog, argv[i]);
            return 2;
        } else if (file) {
            fprintf(stderr, "%s predict: error: one input file at a time\n", prog);
            return 2;
        } else {
            file = argv[i];
        }
    }
    if (weights) {
        char message[512];
        if (!load) {
            fprintf(stderr, raw ? "%s predict: error: an int8 program's weights are baked in "
                                  "(cnngen --quantize)\n"
                                : "%s predict: error: the weights are baked into this program; "
                                  "--weights needs a build with the runtime\n",
                    prog);
            return 2;
        }
        int status = load(weights, message, sizeof message);
        if (status != 0) {
            fprintf(stderr, "%s\n", message);
            return status == -2 ? 2 : 1;      /* unreadable: 2; bad content: 1 */
        }
    }
    if (!weights && init)
        init(seed);         /* the literal weights and the init rules */
    cnnrt_predict_raw_fn use_raw = want_raw ? raw : NULL;
    if (!file || strcmp(file, "-") == 0)
        return cnnrt_predict_lines_with(stdin, "<stdin>", input_size, output_size, predict,
                                        use_raw, stdout, stderr);
    FILE *in = fopen(file, "rb");
    if (!in) {
        fprintf(stderr, "%s: error: cannot read '%s'\n", prog, file);
        return 2;
    }
    int status = cnnrt_predict_lines_with(in, file, input_size, output_size, predict, use_raw,
                                          stdout, stderr);
    fclose(in);
    return status;
}

#if defined(CNNRT_H) || !defined(CNNRT_INT8)
CNNRT_API int cnnrt_predict_command(int argc, char **argv, const char *model_name, int input_size,
                                    int output_size, cnnrt_predict_fn predict, cnnrt_load_fn load,
                                    cnnrt_init_fn init, unsigned long long seed)
{
    return cnnrt_predict_program(argc, argv, model_name, input_size, output_size, predict, NULL,
                                 load, init, seed);
}
#endif

#if defined(CNNRT_H) || defined(CNNRT_INT8)
CNNRT_API int cnnrt_predict_command_int8(int argc, char **argv, const char *model_name,
                                         int input_size, int output_size,
                                         cnnrt_predict_fn predict, cnnrt_predict_raw_fn raw)
{
    return cnnrt_predict_program(argc, argv, model_name, input_size, output_size, predict, raw,
                                 NULL, NULL, 0);
}
#endif
