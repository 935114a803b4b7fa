/* data.c - the DATA forms of the generated program's train and eval:
 *
 *   FILE.csv                 one sample per row: inputs, then targets
 *   series:FILE.csv:COL:N    a sliding window of N values over one column
 *   idx:PREFIX               MNIST-style IDX images and labels, gzipped or not
 *
 * Messages are the reference implementation's, word for word: a bad row
 * is FILE:LINE:COL: error: ..., a bad file FILE: error: ...
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strndup */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef CNNRT_NO_ZLIB
/* Built without zlib (a cross build, a board): an IDX file is read as it
 * is, and a gzipped one fails the IDX header's check. */
typedef FILE *gzFile;
enum { Z_OK = 0, Z_ERRNO = -1, Z_BUF_ERROR = -5 };
static gzFile gzopen(const char *path, const char *mode)
{
    return fopen(path, mode);
}
static int gzread(gzFile f, void *p, unsigned n)
{
    size_t got = fread(p, 1, n, f);
    return ferror(f) ? -1 : (int)got;
}
static const char *gzerror(gzFile f, int *code)
{
    *code = ferror(f) ? Z_ERRNO : Z_OK;
    return "read error";
}
static int gzclose(gzFile f)
{
    return fclose(f);
}
#else
#include <zlib.h>
#endif

#include "cnnrt.h"
#include "fields.h"

/* A growing array of floats. */
typedef struct {
    float *v;
    long n, cap;
} Floats;

static int push(Floats *f, float value)
{
    if (f->n == f->cap) {
        long cap = f->cap ? 2 * f->cap : 1024;
        float *bigger = realloc(f->v, (size_t)cap * sizeof *bigger);
        if (!bigger)
            return 0;
        f->v = bigger;
        f->cap = cap;
    }
    f->v[f->n++] = value;
    return 1;
}

/* A number read as a float stays finite: beyond FLT_MAX it would become
 * infinity, and training on it nothing but NaN. */
static int in_float_range(double v)
{
    return fabs(v) <= FLT_MAX;
}

void cnnrt_free_data(cnnrt_data *data)
{
    free(data->inputs);
    free(data->targets);
    memset(data, 0, sizeof *data);
}

/* Whole file, checked to be UTF-8; 0, or CNNRT_EBAD/CNNRT_EIO with a message. */
static int read_text(const char *path, char **text, size_t *len, char *error, size_t size)
{
    char *buf = cnnrt_read_file(path, SIZE_MAX, 1, len);
    if (!buf)
        return cnnrt_fail(error, size, CNNRT_EIO, "error: cannot read '%s': %s", path,
                          strerror(errno));
    const char *nul = memchr(buf, 0, *len);
    if (nul) {
        long line = 1;
        const char *start = buf;
        for (const char *p = buf; p < nul; p++)
            if (*p == '\n') {
                line++;
                start = p + 1;
            }
        int status = cnnrt_fail(error, size, CNNRT_EBAD,
                                "%s:%ld:%ld: error: a NUL byte: this is not a text file", path,
                                line, cnnrt_column(start, (size_t)(nul - start)));
        free(buf);
        return status;
    }
    if (!cnnrt_valid_utf8((const unsigned char *)buf, *len)) {
        free(buf);
        return cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: the file is not valid UTF-8", path);
    }
    *text = buf;
    return 0;
}

/* The next line of text (without its newline); 0 at the end. */
static int next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *n)
{
    if (*pos >= len)
        return 0;
    const char *start = text + *pos, *nl = memchr(start, '\n', len - *pos);
    *line = start;
    *n = nl ? (size_t)(nl - start) : len - *pos;
    *pos += *n + (nl ? 1 : 0);
    return 1;
}

static int skipped(const char *line, size_t n)
{
    size_t i = 0;
    while (i < n && cnnrt_is_blank(line[i]))
        i++;
    return i == n || line[i] == '#';
}

/* The fields of a line: byte ranges, blanks and a comma between them.
 * The arrays grow with the longest line (a 100x100 image is 10,000). */
typedef struct {
    size_t *start, *end;
    int count, cap;
    int overflow; /* out of memory */
} Fields;

static void fields_free(Fields *f)
{
    if (f) {
        free(f->start);
        free(f->end);
    }
    free(f);
}

static int fields_room(Fields *f)
{
    if (f->count < f->cap)
        return 1;
    int cap = f->cap ? 2 * f->cap : 256;
    size_t *start = realloc(f->start, sizeof *start * (size_t)cap);
    if (start)
        f->start = start;
    size_t *end = start ? realloc(f->end, sizeof *end * (size_t)cap) : NULL;
    if (end)
        f->end = end;
    if (!start || !end)
        return 0;
    f->cap = cap;
    return 1;
}

static void split(const char *line, size_t n, Fields *f)
{
    size_t start = 0, end = n, pos, next;
    while (start < end && cnnrt_is_blank(line[start]))
        start++;
    while (end > start && cnnrt_is_blank(line[end - 1]))
        end--;
    f->count = 0;
    f->overflow = 0;
    for (pos = start;; pos = next) {
        size_t e = cnnrt_field_end(line, pos, end, &next);
        if (fields_room(f)) {
            f->start[f->count] = pos;
            f->end[f->count] = e;
        } else {
            f->overflow = 1;
            return;
        }
        f->count++;
        if (e >= end)
            break;
    }
}

static int field_number(const char *line, const Fields *f, int k)
{
    return cnnrt_is_number(line + f->start[k], f->end[k] - f->start[k]);
}

/* ---- FILE.csv ------------------------------------------------------------ */

static int load_csv(const char *path, const cnnrt_data_layout *layout, cnnrt_data *data,
                    char *error, size_t size)
{
    char *text;
    size_t len, pos = 0, n;
    int status = read_text(path, &text, &len, error, size);
    if (status)
        return status;
    int n_in = layout->input_size;
    int n_targets = layout->classes ? layout->positions : layout->output_size;
    Floats x = {0}, t = {0};
    Fields *f = calloc(1, sizeof *f);
    const char *line;
    long lineno = 0;
    int first = 1;
    while (status == 0 && f && next_line(text, len, &pos, &line, &n)) {
        lineno++;
        if (skipped(line, n))
            continue;
        split(line, n, f);
        if (first) {
            first = 0;
            int any = 0;
            for (int k = 0; k < f->count && !f->overflow; k++)
                any |= field_number(line, f, k);
            if (!any)
                continue; /* a header row */
        }
        if (f->overflow) {
            status = cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: out of memory", path);
            break;
        }
        if (f->count != n_in + n_targets) {
            status = cnnrt_fail(error, size, CNNRT_EBAD,
                                "%s:%ld:1: error: expected %d numbers (%d inputs, %d "
                                "target%s), found %d",
                                path, lineno, n_in + n_targets, n_in, n_targets,
                                n_targets != 1 ? "s" : "", f->count);
            break;
        }
        for (int k = 0; k < f->count && status == 0; k++) {
            const char *s = line + f->start[k];
            size_t flen = f->end[k] - f->start[k];
            /* (the column only for a message: counting it is linear in the line) */
            if (!cnnrt_is_number(s, flen)) {
                long col = cnnrt_column(line, f->start[k]);
                if (flen == 0)
                    status = cnnrt_fail(error, size, CNNRT_EBAD,
                                        "%s:%ld:%ld: error: an empty field", path, lineno, col);
                else
                    status = cnnrt_fail(error, size, CNNRT_EBAD,
                                        "%s:%ld:%ld: error: '%.*s' is not a number", path, lineno,
                                        col, (int)flen, s);
            }
        }
        for (int k = 0; k < f->count && status == 0; k++) {
            double v = strtod(line + f->start[k], NULL); /* each number parsed once */
            if (!in_float_range(v)) {
                status = cnnrt_fail(error, size, CNNRT_EBAD,
                                    "%s:%ld:%ld: error: '%.*s' is out of float range (3.4e38)",
                                    path, lineno, cnnrt_column(line, f->start[k]),
                                    (int)(f->end[k] - f->start[k]), line + f->start[k]);
            } else if (k < n_in) {
                status = push(&x, (float)v) ? 0
                                            : cnnrt_fail(error, size, CNNRT_EBAD,
                                                         "%s: error: out of memory", path);
            } else if (layout->classes && (v != floor(v) || v < 0 || v >= layout->classes)) {
                status = cnnrt_fail(error, size, CNNRT_EBAD,
                                    "%s:%ld:%ld: error: %.9g is not a class index in "
                                    "0..%d",
                                    path, lineno, cnnrt_column(line, f->start[k]), v,
                                    layout->classes - 1);
            } else {
                status = push(&t, (float)v) ? 0
                                            : cnnrt_fail(error, size, CNNRT_EBAD,
                                                         "%s: error: out of memory", path);
            }
        }
    }
    if (!f)
        status = cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: out of memory", path);
    if (status == 0 && x.n == 0)
        status = cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: no samples", path);
    fields_free(f);
    free(text);
    if (status) {
        free(x.v);
        free(t.v);
        return status;
    }
    data->count = x.n / n_in;
    data->input_size = n_in;
    data->input_stride = n_in;
    data->target_size = n_targets;
    data->inputs = x.v;
    data->targets = t.v;
    return 0;
}

/* ---- series:FILE.csv:COLUMN:N -------------------------------------------- */

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Where the cell that starts at i ends: the comma after it, or n. */
static size_t cell_end(const char *line, size_t n, size_t i)
{
    if (i < n && line[i] == '"') {
        for (i++; i < n; i++) {
            if (line[i] == '"' && i + 1 < n && line[i + 1] == '"')
                i++;
            else if (line[i] == '"')
                break;
        }
    }
    while (i < n && line[i] != ',')
        i++;
    return i;
}

static void free_row(char **cells, int count)
{
    for (int i = 0; i < count; i++)
        free(cells[i]);
    free(cells);
}

/* One CSV row (comma-separated, "quoted" cells with "" for a quote), each
 * cell stripped of blanks; as Python's csv module reads it.  Each cell
 * takes the room of its own bytes (not the line's: a long line of commas
 * took gigabytes), and the row's array doubles as it grows. */
static int csv_row(const char *line, size_t n, char ***cells, int *count)
{
    *cells = NULL;
    *count = 0;
    int cap = 0;
    size_t i = 0;
    for (;;) {
        char *cell = malloc(cell_end(line, n, i) - i + 1);
        size_t k = 0;
        if (!cell) {
            free_row(*cells, *count);
            return 0;
        }
        if (i < n && line[i] == '"') {
            for (i++; i < n; i++) {
                if (line[i] == '"' && i + 1 < n && line[i + 1] == '"')
                    cell[k++] = line[i++];
                else if (line[i] == '"')
                    break;
                else
                    cell[k++] = line[i];
            }
            i++; /* the closing quote */
            while (i < n && line[i] != ',')
                cell[k++] = line[i++];
        } else {
            while (i < n && line[i] != ',')
                cell[k++] = line[i++];
        }
        cell[k] = '\0';
        size_t a = 0, b = k; /* strip */
        while (a < b && cnnrt_is_blank(cell[a]))
            a++;
        while (b > a && cnnrt_is_blank(cell[b - 1]))
            b--;
        memmove(cell, cell + a, b - a);
        cell[b - a] = '\0';
        if (*count == cap) {
            cap = cap ? 2 * cap : 16;
            char **bigger = realloc(*cells, (size_t)cap * sizeof **cells);
            if (!bigger) {
                free(cell);
                free_row(*cells, *count);
                return 0;
            }
            *cells = bigger;
        }
        (*cells)[(*count)++] = cell;
        if (i >= n)
            return 1;
        i++; /* the comma */
    }
}

static int load_series(const char *spec, const cnnrt_data_layout *layout, cnnrt_data *data,
                       char *error, size_t size)
{
    /* series:PATH:COLUMN:N, split at the last two colons (PATH may hold one). */
    const char *body = spec + strlen("series:");
    const char *c2 = strrchr(body, ':');
    const char *c1 = NULL;
    for (const char *p = body; c2 && p < c2; p++)
        if (*p == ':')
            c1 = p;
    if (!c1 || !c2)
        return cnnrt_fail(error, size, CNNRT_EIO,
                          "error: bad DATA '%s': expected series:FILE.csv:COLUMN:N", spec);
    char *path = strndup(body, (size_t)(c1 - body));
    char *column = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
    const char *window = c2 + 1;
    int status = 0;
    if (!path || !column) {
        status = cnnrt_fail(error, size, CNNRT_EIO, "error: out of memory");
        goto done;
    }
    if (!all_digits(window) || atol(window) < 1 || !*column ||
        (all_digits(column) && atol(column) < 1)) {
        status = cnnrt_fail(error, size, CNNRT_EIO,
                            "error: bad DATA '%s': COLUMN is a name or a number from 1, "
                            "N a number from 1",
                            spec);
        goto done;
    }
    long n = atol(window);
    if (n != layout->input_size) {
        status = cnnrt_fail(error, size, CNNRT_EBAD,
                            "%s: error: a window of %ld values does not fit the model's "
                            "input size %d",
                            spec, n, layout->input_size);
        goto done;
    }
    if (layout->output_size != 1 || layout->classes) {
        status = cnnrt_fail(error, size, CNNRT_EBAD,
                            "%s: error: a series target is one value: the model needs a "
                            "single output and a loss other than crossentropy",
                            spec);
        goto done;
    }
    char *text;
    size_t len, pos = 0, ln;
    if ((status = read_text(path, &text, &len, error, size)) != 0)
        goto done;
    Floats values = {0};
    const char *line;
    long lineno = 0, index = -1;
    int by_number = all_digits(column);
    while (status == 0 && next_line(text, len, &pos, &line, &ln)) {
        lineno++;
        if (skipped(line, ln))
            continue;
        char **row;
        int count;
        if (!csv_row(line, ln, &row, &count)) {
            status = cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: out of memory", path);
            break;
        }
        if (index < 0) {
            if (by_number) {
                index = atol(column) - 1;
                if (index >= count) {
                    status = cnnrt_fail(error, size, CNNRT_EBAD,
                                        "%s:%ld:1: error: no column %s: the row has %d", path,
                                        lineno, column, count);
                } else if (!cnnrt_is_number(row[index], strlen(row[index]))) {
                    free_row(row, count);
                    continue; /* a header row */
                }
            } else {
                for (int k = 0; k < count && index < 0; k++)
                    if (strcmp(row[k], column) == 0)
                        index = k;
                if (index < 0)
                    status = cnnrt_fail(error, size, CNNRT_EBAD,
                                        "%s:%ld:1: error: no column named '%s' in the "
                                        "header",
                                        path, lineno, column);
                free_row(row, count);
                continue;
            }
        }
        if (status == 0) {
            if (index >= count || !cnnrt_is_number(row[index], strlen(row[index]))) {
                if (index < count)
                    status = cnnrt_fail(error, size, CNNRT_EBAD,
                                        "%s:%ld:1: error: column %s: '%s' is not a number", path,
                                        lineno, column, row[index]);
                else
                    status = cnnrt_fail(error, size, CNNRT_EBAD,
                                        "%s:%ld:1: error: column %s: nothing is not a "
                                        "number",
                                        path, lineno, column);
            } else {
                double v = strtod(row[index], NULL);
                if (!in_float_range(v))
                    status = cnnrt_fail(
                        error, size, CNNRT_EBAD,
                        "%s:%ld:1: error: column %s: '%s' is out of float range (3.4e38)", path,
                        lineno, column, row[index]);
                else if (!push(&values, (float)v))
                    status = cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: out of memory", path);
            }
        }
        free_row(row, count);
    }
    free(text);
    long count = values.n - n;
    if (status == 0 && count < 1)
        status = cnnrt_fail(error, size, CNNRT_EBAD,
                            "%s: error: %ld values give no sample with a window of %ld", path,
                            values.n, n);
    if (status == 0) {
        /* The windows overlap: the series itself is the inputs, window i
         * starting at value i (input_stride 1); the targets are its tail. */
        data->targets = malloc(sizeof(float) * (size_t)count);
        if (!data->targets) {
            status = cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: out of memory", path);
        } else {
            memcpy(data->targets, values.v + n, sizeof(float) * (size_t)count);
            data->inputs = values.v;
            values.v = NULL;
            data->count = count;
            data->input_size = (int)n;
            data->input_stride = 1;
            data->target_size = 1;
        }
    }
    free(values.v);
done:
    free(path);
    free(column);
    return status;
}

/* ---- idx:PREFIX ------------------------------------------------------------ */

/* Which of PATH and PATH.gz to read: PATH when it exists. */
static char *idx_file_name(const char *path, char *error, size_t size, int *status)
{
    size_t plen = strlen(path);
    char *gz = malloc(plen + 4);
    *status = CNNRT_EIO;
    if (!gz) {
        cnnrt_fail(error, size, CNNRT_EIO, "error: out of memory");
        return NULL;
    }
    snprintf(gz, plen + 4, "%s.gz", path);
    FILE *probe = fopen(path, "rb");
    if (probe) {
        fclose(probe);
        memcpy(gz, path, plen + 1);
        return gz;
    }
    if ((probe = fopen(gz, "rb"))) {
        fclose(probe);
        return gz;
    }
    cnnrt_fail(error, size, CNNRT_EIO, "error: cannot read '%s' (nor '%s.gz')", path, path);
    free(gz);
    return NULL;
}

/* Up to N bytes from F into P; how many came, or -1 on a read error. */
static long long read_up_to(gzFile f, unsigned char *p, unsigned long long n)
{
    unsigned long long done = 0;
    while (done < n) {
        unsigned chunk = n - done > (1u << 30) ? 1u << 30 : (unsigned)(n - done);
        int got = gzread(f, p + done, chunk);
        if (got < 0)
            return -1;
        done += (unsigned)got;
        if ((unsigned)got < chunk)
            break;
    }
    return (long long)done;
}

/* The reason zlib gives for a failed read (a bad CRC, a stream cut off), or
 * the system's. */
static const char *gz_reason(gzFile f, const char *path)
{
    int code;
    const char *why = gzerror(f, &code);
    size_t n = strlen(path);
    if (code == Z_ERRNO)
        return strerror(errno);
    return strncmp(why, path, n) == 0 && strncmp(why + n, ": ", 2) == 0 ? why + n + 2 : why;
}

/* An IDX file of RANK dimensions (zlib reads a plain file as it is and a
 * gzipped one inflated): two zero bytes, type 0x08, the rank, big-endian
 * uint32 sizes, data.  Memory is bounded by what the header declares, and
 * by the data there is: a gzip bomb is inflated no further than the
 * header's size (and a little beyond, to say by how much it is off). */
static int read_idx(const char *path, int rank, uint32_t *dims, char **name, unsigned char **raw,
                    size_t *len, char *error, size_t size)
{
    int status;
    char *chosen = idx_file_name(path, error, size, &status);
    if (!chosen)
        return status;
    gzFile f = gzopen(chosen, "rb");
    size_t head = 4 + 4 * (size_t)rank;
    unsigned char *buf = malloc(head + 1);
    unsigned long long total = 1, have = 0;
    long long got = f && buf ? read_up_to(f, buf, head) : -1;
    status = 0;
    if (got < 0) {
        status = CNNRT_EIO;
    } else if ((size_t)got < head || buf[0] || buf[1] || buf[2] != 8 || buf[3] != rank) {
        status = cnnrt_fail(error, size, CNNRT_EBAD,
                            "%s: error: not an IDX file of unsigned bytes with %d dimension%s",
                            chosen, rank, rank > 1 ? "s" : "");
    } else {
        int overflow = 0; /* a product that wraps could match the data's length */
        for (int i = 0; i < rank; i++) {
            const unsigned char *p = buf + 4 + 4 * i;
            dims[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            overflow |= dims[i] && total > ULLONG_MAX / dims[i];
            total *= dims[i];
        }
        if (overflow || total > SIZE_MAX / 2)
            status = cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: the header's sizes overflow",
                                chosen);
    }
    /* The data in doubling steps, never past TOTAL + 1 bytes: a header
     * that declares terabytes costs only what the file holds. */
    for (size_t cap = 1 << 16; status == 0;) {
        unsigned long long want = total + 1 - have;
        if (want > cap)
            want = cap;
        unsigned char *bigger = realloc(buf, head + have + want + 1);
        if (!bigger) {
            status = cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: out of memory", chosen);
            break;
        }
        buf = bigger;
        got = read_up_to(f, buf + head + have, want);
        if (got < 0) {
            status = CNNRT_EIO;
            break;
        }
        have += (unsigned long long)got;
        if ((unsigned long long)got < want || have > total)
            break;
        cap *= 2;
    }
    /* How far past the header's size the data goes, counted (not kept) up
     * to 64 MiB beyond it. */
    unsigned long long extra = 0;
    if (status == 0 && have > total) {
        unsigned char scrap[1 << 16];
        while (extra < (64ull << 20) && (got = read_up_to(f, scrap, sizeof scrap)) > 0)
            extra += (unsigned long long)got;
        if (got < 0)
            status = CNNRT_EIO;
    }
    int code = Z_OK;
    if (f && status == 0)
        gzerror(f, &code);
    if (status == CNNRT_EIO || (status == 0 && code != Z_OK))
        status = cnnrt_fail(error, size, CNNRT_EIO, "error: cannot read '%s': %s", chosen,
                            f ? gz_reason(f, chosen) : strerror(errno ? errno : ENOMEM));
    else if (status == 0 && extra >= (64ull << 20))
        status = cnnrt_fail(error, size, CNNRT_EBAD,
                            "%s: error: more than %llu bytes of data; the header says %llu", chosen,
                            total + (64ull << 20), total);
    else if (status == 0 && have != total)
        status = cnnrt_fail(error, size, CNNRT_EBAD,
                            "%s: error: %llu bytes of data; the header says %llu", chosen,
                            have + extra, total);
    if (f && gzclose(f) == Z_BUF_ERROR && status == 0) /* the stream cut off in its trailer */
        status = cnnrt_fail(error, size, CNNRT_EIO,
                            "error: cannot read '%s': unexpected end of file", chosen);
    if (status) {
        free(buf);
        free(chosen);
        return status;
    }
    *name = chosen;
    *raw = buf;
    *len = head + (size_t)have;
    return 0;
}

static int load_idx(const char *prefix, const cnnrt_data_layout *layout, cnnrt_data *data,
                    char *error, size_t size)
{
    size_t plen = strlen(prefix) + 32;
    char *images = malloc(plen), *labels = malloc(plen);
    char *image_name = NULL, *label_name = NULL;
    unsigned char *image_raw = NULL, *label_raw = NULL;
    size_t image_len, label_len;
    uint32_t idims[3], ldims[1];
    int status;
    if (!images || !labels) {
        status = cnnrt_fail(error, size, CNNRT_EIO, "error: out of memory");
        goto done;
    }
    snprintf(images, plen, "%s-images-idx3-ubyte", prefix);
    snprintf(labels, plen, "%s-labels-idx1-ubyte", prefix);
    if ((status = read_idx(images, 3, idims, &image_name, &image_raw, &image_len, error, size)) ||
        (status = read_idx(labels, 1, ldims, &label_name, &label_raw, &label_len, error, size)))
        goto done;
    /* uint32 x uint32 fits in 64 unsigned bits, not always in long */
    uint64_t pixels64 = (uint64_t)idims[1] * idims[2];
    long count = idims[0];
    if (count == 0) {
        status =
            cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: no samples (0 images)", image_name);
        goto done;
    }
    if (ldims[0] != idims[0]) {
        status = cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: %u labels for %u images",
                            label_name, ldims[0], idims[0]);
        goto done;
    }
    if (pixels64 != (uint64_t)layout->input_size) {
        status = cnnrt_fail(error, size, CNNRT_EBAD,
                            "%s: error: %ux%u images do not fit the model's input size "
                            "%d",
                            image_name, idims[1], idims[2], layout->input_size);
        goto done;
    }
    const unsigned char *lab = label_raw + 8;
    int max = 0;
    for (long i = 0; i < count; i++)
        if (lab[i] > max)
            max = lab[i];
    if (layout->classes) {
        if (layout->positions != 1) {
            status = cnnrt_fail(error, size, CNNRT_EBAD,
                                "%s: error: one label per image, the model has %d class "
                                "positions",
                                label_name, layout->positions);
            goto done;
        }
        if (count && max >= layout->classes) {
            status = cnnrt_fail(error, size, CNNRT_EBAD,
                                "%s: error: label %d is not a class index in 0..%d", label_name,
                                max, layout->classes - 1);
            goto done;
        }
    } else if (layout->output_size != 1) {
        status = cnnrt_fail(error, size, CNNRT_EBAD,
                            "%s: error: labels are class indices: the model needs "
                            "crossentropy or a single output",
                            label_name);
        goto done;
    }
    long pixels = (long)pixels64;
    data->inputs = malloc(sizeof(float) * (size_t)(count * pixels) + 1);
    data->targets = malloc(sizeof(float) * (size_t)count + 1);
    if (!data->inputs || !data->targets) {
        cnnrt_free_data(data);
        status = cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: out of memory", image_name);
        goto done;
    }
    const unsigned char *pix = image_raw + 16;
    for (long i = 0; i < count * pixels; i++)
        data->inputs[i] = (float)pix[i] / 255.0f;
    for (long i = 0; i < count; i++)
        data->targets[i] = (float)lab[i];
    data->count = count;
    data->input_size = (int)pixels;
    data->input_stride = pixels;
    data->target_size = 1;
done:
    free(images);
    free(labels);
    free(image_name);
    free(label_name);
    free(image_raw);
    free(label_raw);
    return status;
}

int cnnrt_load_data(const char *spec, const cnnrt_data_layout *layout, cnnrt_data *data,
                    char *error, size_t error_size)
{
    memset(data, 0, sizeof *data);
    if (strncmp(spec, "series:", 7) == 0)
        return load_series(spec, layout, data, error, error_size);
    if (strncmp(spec, "idx:", 4) == 0)
        return load_idx(spec + 4, layout, data, error, error_size);
    return load_csv(spec, layout, data, error, error_size);
}
