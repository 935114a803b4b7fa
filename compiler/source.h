/* source.h - reading a model file: bytes, UTF-8 check, byte-order mark. */
#ifndef CNNGEN_SOURCE_H
#define CNNGEN_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data; /* NUL-terminated; may hold NUL bytes before len */
    size_t len;
    const char *text; /* data without a leading byte-order mark */
    size_t text_len;
} Source;

/* Read a whole file; on failure returns false with errno set. */
bool source_read(const char *path, Source *src);
void source_free(Source *src);

/* Where the first invalid UTF-8 sequence starts (line and byte column,
 * 1-based), or false when the text is valid. */
bool source_find_bad_utf8(const Source *src, int *line, int *col);

#endif
