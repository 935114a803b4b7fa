/* diag.c - collect diagnostics, print them sorted with the source line
 * and a caret. */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct {
    Loc loc;
    DiagKind kind;
    bool early; /* the scanner's: first at its location */
    int order;  /* insertion order: ties keep it (a stable sort) */
    char *message;
} DiagItem;

struct Diag {
    const char *filename;
    const char *source;
    size_t len;
    size_t *line_starts; /* byte offset of each line; one extra for the end */
    int nlines;
    DiagItem *items;
    int count, cap;
    int errors, warnings;
    bool quiet_at_eof;
};

Diag *diag_new(const char *filename, const char *source, size_t len)
{
    Diag *d = xcalloc(1, sizeof *d);
    d->filename = filename;
    d->source = source;
    d->len = len;
    int nlines = 1;
    for (size_t i = 0; i < len; i++)
        nlines += source[i] == '\n';
    d->line_starts = xmalloc(((size_t)nlines + 1) * sizeof *d->line_starts);
    d->line_starts[0] = 0;
    int line = 1;
    for (size_t i = 0; i < len; i++)
        if (source[i] == '\n')
            d->line_starts[line++] = i + 1;
    d->line_starts[nlines] = len + 1;
    d->nlines = nlines;
    return d;
}

void diag_free(Diag *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->count; i++)
        free(d->items[i].message);
    free(d->items);
    free(d->line_starts);
    free(d);
}

static void diag_add(Diag *d, Loc loc, DiagKind kind, bool early, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap);
    char *text = xmalloc((size_t)len + 1);
    vsnprintf(text, (size_t)len + 1, fmt, ap2);
    va_end(ap2);
    if (d->count == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->items = xrealloc(d->items, (size_t)d->cap * sizeof *d->items);
    }
    d->items[d->count] = (DiagItem){loc, kind, early, d->count, text};
    d->count++;
    if (kind == DIAG_ERROR)
        d->errors++;
    else
        d->warnings++;
}

void diag_error(Diag *d, Loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(d, loc, DIAG_ERROR, false, fmt, ap);
    va_end(ap);
}

void diag_error_early(Diag *d, Loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(d, loc, DIAG_ERROR, true, fmt, ap);
    va_end(ap);
}

void diag_warning(Diag *d, Loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(d, loc, DIAG_WARNING, false, fmt, ap);
    va_end(ap);
}

int diag_error_count(const Diag *d)
{
    return d->errors;
}
int diag_warning_count(const Diag *d)
{
    return d->warnings;
}
void diag_set_quiet_at_eof(Diag *d)
{
    d->quiet_at_eof = true;
}
bool diag_quiet_at_eof(const Diag *d)
{
    return d->quiet_at_eof;
}
const char *diag_filename(const Diag *d)
{
    return d->filename;
}

static int compare_items(const void *pa, const void *pb)
{
    const DiagItem *a = pa, *b = pb;
    if (a->loc.line != b->loc.line)
        return a->loc.line < b->loc.line ? -1 : 1;
    if (a->loc.col != b->loc.col)
        return a->loc.col < b->loc.col ? -1 : 1;
    if (a->early != b->early)
        return a->early ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* The source line without its newline and trailing carriage returns. */
static void source_line(const Diag *d, int line, const char **text, size_t *len)
{
    *text = "";
    *len = 0;
    if (line < 1 || line > d->nlines)
        return;
    size_t start = d->line_starts[line - 1], end = d->line_starts[line] - 1;
    while (end > start && d->source[end - 1] == '\r')
        end--;
    *text = d->source + start;
    *len = end - start;
}

/* Spaces under every character before the column; tabs stay tabs so the
 * caret lines up in a terminal. */
static void print_caret(FILE *out, const char *text, size_t len, int col)
{
    int chars = 0;
    for (size_t i = 0; i < len && chars < col - 1; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c & 0xC0) == 0x80)
            continue; /* a continuation byte: same character */
        fputc(c == '\t' ? '\t' : ' ', out);
        chars++;
    }
    fputs("^\n", out);
}

void diag_report(Diag *d, FILE *out, bool warnings)
{
    if (d->count > 1)
        qsort(d->items, (size_t)d->count, sizeof *d->items, compare_items);
    int errors = 0;
    for (int i = 0; i < d->count; i++) {
        DiagItem *it = &d->items[i];
        if (it->kind == DIAG_WARNING && !warnings)
            continue;
        if (it->kind == DIAG_ERROR && ++errors > DIAG_MAX_ERRORS)
            continue;
        const char *text;
        size_t len;
        source_line(d, it->loc.line, &text, &len);
        fprintf(out, "%s:%d:%d: %s: %s\n", d->filename, it->loc.line, it->loc.col,
                it->kind == DIAG_ERROR ? "error" : "warning", it->message);
        fwrite(text, 1, len, out);
        fputc('\n', out);
        print_caret(out, text, len, it->loc.col);
    }
    if (errors > DIAG_MAX_ERRORS)
        fprintf(out, "%s: note: %d more errors not shown\n", d->filename, errors - DIAG_MAX_ERRORS);
}
