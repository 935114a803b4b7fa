/* diag.h - the diagnostics sink: the only state shared by the stages.
 *
 * Every error and warning is collected with its location, then printed
 * in source order in the GCC form
 *     FILE:LINE:COL: error: MESSAGE
 *     <the source line>
 *         ^
 * Columns are 1-based counts of characters (UTF-8 code points).
 */
#ifndef CNNGEN_DIAG_H
#define CNNGEN_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    int line, col;
} Loc;

typedef enum { DIAG_ERROR, DIAG_WARNING } DiagKind;

typedef struct Diag Diag;

enum { DIAG_MAX_ERRORS = 20 }; /* errors printed; the rest are counted */

Diag *diag_new(const char *filename, const char *source, size_t len);
void diag_free(Diag *d);

void diag_error(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An error of the scanner: at the same location it comes before the
 * parser's, as the scanner reads the whole file first. */
void diag_error_early(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int diag_error_count(const Diag *d);
int diag_warning_count(const Diag *d);

/* Set when an unclosed bracket was reported: a syntax error found at the
 * end of the file is then a consequence, not news, and is not reported. */
void diag_set_quiet_at_eof(Diag *d);
bool diag_quiet_at_eof(const Diag *d);

/* Print every diagnostic in source order; warnings only if asked. */
void diag_report(Diag *d, FILE *out, bool warnings);

const char *diag_filename(const Diag *d);

#endif
