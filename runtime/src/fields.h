/* fields.h - the helpers the sample reader (predict_lines.c), the data
 * loaders (data.c) and the weights reader (safetensors.c) share;
 * internal to libcnnrt. */
#ifndef CNNRT_FIELDS_H
#define CNNRT_FIELDS_H

#include <stddef.h>
#include <stdio.h>

int cnnrt_is_blank(int c);
/* A decimal number as a whole field: sign, digits, fraction, exponent. */
int cnnrt_is_number(const char *s, size_t n);
/* The 1-based character column of a byte offset in a line. */
long cnnrt_column(const char *line, size_t byte);
int cnnrt_valid_utf8(const unsigned char *p, size_t n);
/* The end of the field at pos (fields are separated by a comma with
 * blanks around it, or by blanks), and where the next one starts. */
size_t cnnrt_field_end(const char *line, size_t pos, size_t end, size_t *next);
/* One line of any length with its newline; its length, -1 at the end of
 * the input, -2 out of memory. */
long cnnrt_read_line(FILE *in, char **buf, size_t *cap);

/* A whole file, NUL-terminated (the NUL not counted in *len); NULL with
 * errno set when it cannot be read or memory runs out. */
char *cnnrt_read_file(const char *path, size_t *len);

#endif
