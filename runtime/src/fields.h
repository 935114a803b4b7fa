/* fields.h - the helpers the sample reader (predict_lines.c), the data
 * loaders (data.c) and the weights reader (safetensors.c) share;
 * internal to libcnnrt. */
#ifndef CNNRT_FIELDS_H
#define CNNRT_FIELDS_H

#include <stddef.h>
#include <stdio.h>

#include "cnnrt.h"

/* The message into ERROR (SIZE bytes), and STATUS back: the readers'
 * one way to fail. */
#ifdef __GNUC__
__attribute__((format(printf, 4, 5)))
#endif
int cnnrt_fail(char *error, size_t size, int status, const char *fmt, ...);

int cnnrt_is_blank(int c);
/* A decimal number as a whole field: sign, digits, fraction, exponent. */
int cnnrt_is_number(const char *s, size_t n);
/* The 1-based character column of a byte offset in a line. */
long cnnrt_column(const char *line, size_t byte);
int cnnrt_valid_utf8(const unsigned char *p, size_t n);
/* The end of the field at pos (fields are separated by a comma with
 * blanks around it, or by blanks), and where the next one starts. */
size_t cnnrt_field_end(const char *line, size_t pos, size_t end, size_t *next);
/* One line with its newline, ended early by a NUL byte; its length, -1 at
 * the end of the input, -2 out of memory, -3 longer than MAX bytes. */
long cnnrt_read_line(FILE *in, size_t max, char **buf, size_t *cap);

/* At most MAX bytes of a file or stream, NUL-terminated (the NUL not
 * counted in *len); NULL with errno set when it cannot be read, memory
 * runs out, or it holds more than MAX bytes (EFBIG).  With STOP_AT_NUL
 * reading ends after a chunk that holds a NUL byte: a text reader reports
 * it, and a device like /dev/zero is not read to the limit. */
char *cnnrt_read_stream(FILE *f, size_t max, int stop_at_nul, size_t *len);
char *cnnrt_read_file(const char *path, size_t max, int stop_at_nul, size_t *len);

/* The safetensors loader's checks and copy, on a file already in memory
 * (the fuzzer's entry); PATH names it in messages. */
int cnnrt_parse_safetensors(const char *path, const unsigned char *raw, size_t len,
                            const cnnrt_tensor_spec *specs, int nspecs, float *params, long count,
                            char *error, size_t error_size);

#endif
