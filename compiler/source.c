/* source.c - read a model file and check that it is UTF-8. */
#include "source.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

bool source_read(const char *path, Source *src)
{
    memset(src, 0, sizeof *src);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t cap = 4096, len = 0;
    char *data = xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > (size_t)1 << 30) { /* the scanner takes an int length */
                free(data);
                fclose(f);
                errno = EFBIG;
                return false;
            }
            cap *= 2;
            data = xrealloc(data, cap);
        }
        size_t got = fread(data + len, 1, cap - len - 1, f);
        /* A model is text: the scanner reports a NUL byte, and a device
         * like /dev/zero is not read up to the size limit. */
        const char *nul = memchr(data + len, 0, got);
        len = nul ? (size_t)(nul - data) + 1 : len + got;
        if (got == 0 || nul)
            break;
    }
    int failed = ferror(f), why = errno;
    fclose(f);
    if (failed) {
        free(data);
        errno = why ? why : EIO;
        return false;
    }
    data[len] = '\0';
    src->data = data;
    src->len = len;
    src->text = data;
    src->text_len = len;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        src->text += 3;
        src->text_len -= 3;
    }
    return true;
}

void source_free(Source *src)
{
    free(src->data);
    memset(src, 0, sizeof *src);
}

/* The length of the valid UTF-8 sequence at p, or 0 (strict: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_sequence(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (left < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

bool source_find_bad_utf8(const Source *src, int *line, int *col)
{
    const unsigned char *p = (const unsigned char *)src->data;
    size_t line_start = 0;
    *line = 1;
    for (size_t i = 0; i < src->len;) {
        size_t n = utf8_sequence(p + i, src->len - i);
        if (n == 0) {
            *col = (int)(i - line_start + 1);
            return true;
        }
        if (p[i] == '\n') {
            (*line)++;
            line_start = i + 1;
        }
        i += n;
    }
    return false;
}
