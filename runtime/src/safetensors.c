/* safetensors.c - strict reading of safetensors weights files.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON (an
 * object: tensor name -> {dtype, shape, data_offsets}, and optionally
 * __metadata__: string -> string), then the data.  Reading is strict:
 * the offsets must tile the data exactly, a name may appear once, and
 * every message names the first problem found.
 */
#define _POSIX_C_SOURCE 200809L /* open_memstream, mkstemp, fchmod, fsync, strndup */
#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cnnrt.h"
#include "fields.h"

/* ---- a small JSON reader: just what a safetensors header holds ---------- */

typedef enum { J_NULL, J_BOOL, J_INT, J_REAL, J_STRING, J_ARRAY, J_OBJECT } JsonKind;

typedef struct Json Json;
struct Json {
    JsonKind kind;
    long long integer; /* J_INT (non-negative whole numbers only) */
    char *string;      /* J_STRING; the key of an object member */
    Json *items;       /* J_ARRAY elements, J_OBJECT members */
    int count, cap;
    char *key; /* as a member of an object */
};

typedef struct {
    const char *p, *end;
    int depth;
    int nul; /* a string held \u0000, which no name can */
} JsonParser;

static void json_free(Json *j)
{
    if (!j)
        return;
    for (int i = 0; i < j->count; i++)
        json_free(&j->items[i]);
    free(j->items);
    free(j->string);
    free(j->key);
}

static void skip_space(JsonParser *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int parse_value(JsonParser *s, Json *out);

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        *v <<= 4;
        if (c >= '0' && c <= '9')
            *v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            *v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            *v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    return 1;
}

static void put_utf8(char *buf, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        buf[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        buf[(*n)++] = (char)(0xC0 | (cp >> 6));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        buf[(*n)++] = (char)(0xE0 | (cp >> 12));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        buf[(*n)++] = (char)(0xF0 | (cp >> 18));
        buf[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int parse_string(JsonParser *s, char **out)
{
    if (s->p >= s->end || *s->p != '"')
        return 0;
    s->p++;
    const char *start = s->p;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\')
            s->p++;
        s->p++;
    }
    if (s->p >= s->end)
        return 0;
    char *buf = malloc((size_t)(s->p - start) + 1);
    size_t n = 0;
    if (!buf)
        return 0;
    for (const char *q = start; q < s->p; q++) {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20) {
            free(buf);
            return 0;
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            continue;
        }
        q++;
        switch (*q) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (s->p - q < 5 || !hex4(q + 1, &cp)) {
                free(buf);
                return 0;
            }
            q += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && s->p - q >= 7 && q[1] == '\\' && q[2] == 'u' &&
                hex4(q + 3, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                q += 6;
            }
            if (cp == 0) { /* a C string would end there: another name than written */
                s->nul = 1;
                free(buf);
                return 0;
            }
            put_utf8(buf, &n, cp); /* \uXXXX takes 6 bytes, UTF-8 at most 4 */
            break;
        }
        default: free(buf); return 0;
        }
    }
    buf[n] = '\0';
    s->p++;
    *out = buf;
    return 1;
}

static int parse_number(JsonParser *s, Json *out)
{
    const char *start = s->p;
    int is_int = 1;
    if (s->p < s->end && *s->p == '-') {
        s->p++;
        is_int = 0; /* counts are never negative */
    }
    if (s->p >= s->end || *s->p < '0' || *s->p > '9')
        return 0;
    if (*s->p == '0' && s->p + 1 < s->end && s->p[1] >= '0' && s->p[1] <= '9')
        return 0; /* no leading zeros in JSON */
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    if (s->p < s->end && *s->p == '.') {
        is_int = 0;
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        is_int = 0;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    out->kind = is_int ? J_INT : J_REAL;
    if (is_int) {
        long long v = 0;
        for (const char *q = start; q < s->p; q++) {
            if (v > (LLONG_MAX - 9) / 10) {
                out->kind = J_REAL; /* too large to be a count here */
                break;
            }
            v = v * 10 + (*q - '0');
        }
        out->integer = v;
    }
    return 1;
}

static int add_item(Json *parent, Json *item)
{
    if (parent->count == parent->cap) {
        int cap = parent->cap ? 2 * parent->cap : 8;
        Json *bigger = realloc(parent->items, (size_t)cap * sizeof *bigger);
        if (!bigger)
            return 0;
        parent->items = bigger;
        parent->cap = cap;
    }
    parent->items[parent->count++] = *item;
    return 1;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether some object in j names a key twice: each object's keys sorted,
 * so a header of many tensors is checked in n log n, not n^2.  -1 when
 * out of memory. */
static int has_duplicate_keys(const Json *j)
{
    if (j->kind == J_OBJECT && j->count > 1) {
        const char **keys = malloc((size_t)j->count * sizeof *keys);
        if (!keys)
            return -1;
        for (int i = 0; i < j->count; i++)
            keys[i] = j->items[i].key;
        qsort(keys, (size_t)j->count, sizeof *keys, compare_names);
        int twice = 0;
        for (int i = 1; i < j->count && !twice; i++)
            twice = strcmp(keys[i - 1], keys[i]) == 0;
        free(keys);
        if (twice)
            return 1;
    }
    for (int i = 0; i < j->count; i++) {
        int inner = has_duplicate_keys(&j->items[i]);
        if (inner)
            return inner;
    }
    return 0;
}

static int parse_container(JsonParser *s, Json *out, char close)
{
    out->kind = close == '}' ? J_OBJECT : J_ARRAY;
    s->p++;
    skip_space(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 1;
    }
    for (;;) {
        Json item = {0};
        skip_space(s);
        if (close == '}') {
            if (!parse_string(s, &item.key))
                return 0;
            skip_space(s);
            if (s->p >= s->end || *s->p != ':') {
                free(item.key);
                return 0;
            }
            s->p++;
        }
        if (!parse_value(s, &item) || !add_item(out, &item)) {
            json_free(&item);
            return 0;
        }
        skip_space(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return 1;
        }
        return 0;
    }
}

static int parse_literal(JsonParser *s, const char *word, JsonKind kind, Json *out)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return 0;
    s->p += n;
    out->kind = kind;
    return 1;
}

static int parse_value(JsonParser *s, Json *out)
{
    skip_space(s);
    if (s->p >= s->end || ++s->depth > 64)
        return 0;
    int ok;
    switch (*s->p) {
    case '{': ok = parse_container(s, out, '}'); break;
    case '[': ok = parse_container(s, out, ']'); break;
    case '"':
        out->kind = J_STRING;
        ok = parse_string(s, &out->string);
        break;
    case 't': ok = parse_literal(s, "true", J_BOOL, out); break;
    case 'f': ok = parse_literal(s, "false", J_BOOL, out); break;
    case 'n': ok = parse_literal(s, "null", J_NULL, out); break;
    default: ok = parse_number(s, out); break;
    }
    s->depth--;
    return ok;
}

/* ---- safetensors -------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *dtype;
    int rank;
    long long shape[8];
    long long begin, end;
} Entry;

int cnnrt_fail(char *error, size_t size, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (error && size)
        vsnprintf(error, size, fmt, ap);
    va_end(ap);
    return status;
}

int cnnrt_exit_status(int result)
{
    return result == 0 ? 0 : result == CNNRT_EIO ? 2 : 1;
}

static int dtype_size(const char *dtype)
{
    static const struct {
        const char *name;
        int size;
    } sizes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                 {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U64", 8},  {"U32", 4},
                 {"U16", 2}, {"U8", 1},  {"BOOL", 1}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (strcmp(sizes[i].name, dtype) == 0)
            return sizes[i].size;
    return 0;
}

static void format_dims(char *buf, size_t size, const long long *dims, int rank)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "[");
    for (int i = 0; i < rank && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", dims[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

static int compare_begin(const void *a, const void *b)
{
    const Entry *x = *(const Entry *const *)a, *y = *(const Entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Check the header against the data; fills entries (pointing into j). */
static int read_entries(const char *path, const Json *j, long long data_size, Entry *entries,
                        int *count, char *error, size_t size)
{
    *count = 0;
    for (int i = 0; i < j->count; i++) {
        const Json *info = &j->items[i];
        const char *name = info->key;
        if (strcmp(name, "__metadata__") == 0) {
            int ok = info->kind == J_OBJECT;
            for (int k = 0; ok && k < info->count; k++)
                ok = info->items[k].kind == J_STRING;
            if (!ok)
                return cnnrt_fail(error, size, CNNRT_EBAD,
                                  "%s: error: __metadata__ must map strings to strings", path);
            continue;
        }
        const Json *dtype = NULL, *shape = NULL, *offsets = NULL;
        int others = info->kind != J_OBJECT;
        for (int k = 0; !others && k < info->count; k++) {
            const char *key = info->items[k].key;
            if (strcmp(key, "dtype") == 0)
                dtype = &info->items[k];
            else if (strcmp(key, "shape") == 0)
                shape = &info->items[k];
            else if (strcmp(key, "data_offsets") == 0)
                offsets = &info->items[k];
            else
                others = 1;
        }
        if (others || !dtype || !shape || !offsets)
            return cnnrt_fail(
                error, size, CNNRT_EBAD,
                "%s: error: tensor '%s': expected exactly dtype, shape and data_offsets", path,
                name);
        int ok = dtype->kind == J_STRING && shape->kind == J_ARRAY && shape->count <= 8 &&
                 offsets->kind == J_ARRAY && offsets->count == 2;
        for (int k = 0; ok && k < shape->count; k++)
            ok = shape->items[k].kind == J_INT;
        for (int k = 0; ok && k < 2; k++)
            ok = offsets->items[k].kind == J_INT;
        if (!ok)
            return cnnrt_fail(error, size, CNNRT_EBAD,
                              "%s: error: tensor '%s': malformed dtype, shape or "
                              "data_offsets",
                              path, name);
        Entry *e = &entries[(*count)++];
        e->name = name;
        e->dtype = dtype->string;
        e->rank = shape->count;
        for (int k = 0; k < e->rank; k++)
            e->shape[k] = shape->items[k].integer;
        e->begin = offsets->items[0].integer;
        e->end = offsets->items[1].integer;
        if (!(e->begin <= e->end && e->end <= data_size))
            return cnnrt_fail(error, size, CNNRT_EBAD,
                              "%s: error: tensor '%s': data_offsets [%lld, %lld] are "
                              "outside the %lld bytes of data",
                              path, name, e->begin, e->end, data_size);
        int width = dtype_size(e->dtype);
        if (width) {
            long double bytes = width;
            for (int k = 0; k < e->rank; k++)
                bytes *= e->shape[k];
            if (bytes != (long double)(e->end - e->begin)) {
                char dims[256];
                format_dims(dims, sizeof dims, e->shape, e->rank);
                return cnnrt_fail(error, size, CNNRT_EBAD,
                                  "%s: error: tensor '%s': %lld bytes of data for %s %s", path,
                                  name, e->end - e->begin, e->dtype, dims);
            }
        }
    }
    /* The data must be tiled exactly: no gap, no overlap, nothing after. */
    const Entry **sorted = malloc(((size_t)*count + 1) * sizeof *sorted);
    if (!sorted)
        return cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: out of memory", path);
    for (int i = 0; i < *count; i++)
        sorted[i] = &entries[i];
    qsort(sorted, (size_t)*count, sizeof *sorted, compare_begin);
    long long position = 0;
    for (int i = 0; i < *count; i++) {
        if (sorted[i]->begin != position) {
            int status = cnnrt_fail(error, size, CNNRT_EBAD,
                                    "%s: error: tensor '%s': a gap or an overlap in the "
                                    "data at byte %lld",
                                    path, sorted[i]->name, sorted[i]->begin);
            free(sorted);
            return status;
        }
        position = sorted[i]->end;
    }
    free(sorted);
    if (position != data_size)
        return cnnrt_fail(error, size, CNNRT_EBAD,
                          "%s: error: %lld bytes of data after the last tensor", path,
                          data_size - position);
    return 0;
}

/* The file's tensors by name, sorted, for lookups in log n. */
static int compare_entries(const void *a, const void *b)
{
    return strcmp((*(const Entry *const *)a)->name, (*(const Entry *const *)b)->name);
}

static const Entry *find_entry(const Entry *const *sorted, int count, const char *name)
{
    int lo = 0, hi = count;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, order = strcmp(sorted[mid]->name, name);
        if (order == 0)
            return sorted[mid];
        if (order < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Whether name is one of the sorted names. */
static int known_name(const char *const *sorted, int count, const char *name)
{
    return bsearch(&name, sorted, (size_t)count, sizeof *sorted, compare_names) != NULL;
}

/* Quantization-aware training's observers (NAME.quantize) may be missing:
 * a float model's weights start a quantization-aware run, whose observers
 * then start unseen.  No layer has a tensor of that suffix. */
static int optional_tensor(const char *name)
{
    size_t n = strlen(name), k = strlen(".quantize");
    return n > k && strcmp(name + n - k, ".quantize") == 0;
}

/* Match the model's tensors; the first mismatch in model order, then a
 * tensor the model lacks. */
static int match_specs(const char *path, const Entry *entries, const Entry *const *sorted,
                       int count, const cnnrt_tensor_spec *specs, int nspecs, char *error,
                       size_t size)
{
    char want[256], got[256];
    for (int i = 0; i < nspecs; i++) {
        const cnnrt_tensor_spec *s = &specs[i];
        long long dims[5];
        for (int k = 0; k < s->rank; k++)
            dims[k] = s->shape[k];
        format_dims(want, sizeof want, dims, s->rank);
        const Entry *e = find_entry(sorted, count, s->name);
        if (!e && optional_tensor(s->name))
            continue;
        if (!e)
            return cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: tensor '%s' %s is missing", path,
                              s->name, want);
        if (strcmp(e->dtype, "F32") != 0)
            return cnnrt_fail(error, size, CNNRT_EBAD,
                              "%s: error: tensor '%s' has dtype %s; the model needs F32", path,
                              s->name, e->dtype);
        int same = e->rank == s->rank;
        for (int k = 0; same && k < s->rank; k++)
            same = e->shape[k] == s->shape[k];
        if (!same) {
            format_dims(got, sizeof got, e->shape, e->rank);
            return cnnrt_fail(error, size, CNNRT_EBAD,
                              "%s: error: tensor '%s' has shape %s; the model needs %s", path,
                              s->name, got, want);
        }
    }
    const char **names = malloc(((size_t)nspecs + 1) * sizeof *names);
    if (!names)
        return cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: out of memory", path);
    for (int k = 0; k < nspecs; k++)
        names[k] = specs[k].name;
    qsort(names, (size_t)nspecs, sizeof *names, compare_names);
    for (int i = 0; i < count; i++)
        if (!known_name(names, nspecs, entries[i].name)) {
            free(names);
            return cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: tensor '%s' is not in the model",
                              path, entries[i].name);
        }
    free(names);
    return 0;
}

char *cnnrt_read_stream(FILE *f, size_t max, int stop_at_nul, size_t *len)
{
    if (max > SIZE_MAX / 2)
        max = SIZE_MAX / 2;
    size_t cap = max < (1 << 16) ? max + 1 : 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t want = cap - n, got = fread(buf + n, 1, want, f);
        /* A text reader reports the NUL; /dev/zero is not read to the limit. */
        int nul = stop_at_nul && memchr(buf + n, 0, got);
        n += got;
        if (nul)
            break;
        if (n > max) {
            free(buf);
            errno = EFBIG;
            return NULL;
        }
        if (got < want) /* the end, or an error */
            break;
        size_t bigger_cap = cap > (max + 1) / 2 ? max + 1 : 2 * cap;
        char *bigger = realloc(buf, bigger_cap + 1);
        if (!bigger) {
            free(buf);
            errno = ENOMEM;
            return NULL;
        }
        buf = bigger;
        cap = bigger_cap;
    }
    if (!buf) {
        errno = ENOMEM;
        return NULL;
    }
    if (ferror(f)) {
        int why = errno; /* EISDIR for a directory, not a vague EIO */
        free(buf);
        errno = why ? why : EIO;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

char *cnnrt_read_file(const char *path, size_t max, int stop_at_nul, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = cnnrt_read_stream(f, max, stop_at_nul, len);
    int why = errno;
    fclose(f);
    errno = why;
    return buf;
}

static float read_f32(const unsigned char *p)
{
    uint32_t bits =
        (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* The safetensors format's own limit on the header (its reference
 * implementation refuses a longer one). */
#define HEADER_LIMIT 100000000ull

/* The file, but no more of it than a weights file of COUNT parameters can
 * hold: the 8 bytes of length, a header within the limit, the tensors and
 * a little room, so a file that is too long still gets the exact reason.
 * NULL with the message in ERROR and *status set. */
static unsigned char *read_weights_file(const char *path, long count, size_t *len, int *status,
                                        char *error, size_t error_size)
{
    FILE *f = fopen(path, "rb");
    unsigned char head[8];
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    unsigned long long hlen = 0;
    for (int i = (int)got - 1; i >= 0; i--)
        hlen = hlen << 8 | head[i];
    *status = CNNRT_EIO; /* an unreadable file, not a bad one */
    if (!f || ferror(f)) {
        int why = errno;
        if (f)
            fclose(f);
        cnnrt_fail(error, error_size, CNNRT_EBAD, "%s: error: cannot read the file: %s", path,
                   strerror(why));
        return NULL;
    }
    *status = CNNRT_EBAD;
    if (got == sizeof head && hlen > HEADER_LIMIT) {
        fclose(f);
        cnnrt_fail(error, error_size, CNNRT_EBAD,
                   "%s: error: the header length %llu is over the limit of %llu bytes", path, hlen,
                   HEADER_LIMIT);
        return NULL;
    }
    size_t rest;
    size_t max = (size_t)hlen + 4 * (size_t)(count > 0 ? count : 0) + (1 << 20);
    char *tail = cnnrt_read_stream(f, max, 0, &rest);
    int why = errno;
    fclose(f);
    unsigned char *raw = tail ? malloc(got + rest + 1) : NULL;
    if (!raw) {
        free(tail);
        if (tail || why != EFBIG) {
            *status = CNNRT_EIO;
            cnnrt_fail(error, error_size, CNNRT_EBAD, "%s: error: cannot read the file: %s", path,
                       strerror(tail ? ENOMEM : why));
        } else {
            cnnrt_fail(
                error, error_size, CNNRT_EBAD,
                "%s: error: the file is larger than its header and the model's %ld parameters "
                "can need",
                path, count);
        }
        return NULL;
    }
    memcpy(raw, head, got);
    memcpy(raw + got, tail, rest + 1);
    free(tail);
    *len = got + rest;
    return raw;
}

int cnnrt_load_safetensors(const char *path, const cnnrt_tensor_spec *specs, int nspecs,
                           float *params, long count, char *error, size_t error_size)
{
    return cnnrt_load_safetensors_meta(path, specs, nspecs, params, count, NULL, 0, error,
                                       error_size);
}

/* The wanted __metadata__ values, each a string that fits. */
static int read_metadata(const char *path, const Json *header, cnnrt_meta *meta, int nmeta,
                         char *error, size_t size)
{
    const Json *object = NULL;
    for (int i = 0; i < header->count; i++)
        if (strcmp(header->items[i].key, "__metadata__") == 0)
            object = &header->items[i];
    for (int k = 0; k < nmeta; k++) {
        const Json *value = NULL;
        for (int i = 0; object && i < object->count; i++)
            if (strcmp(object->items[i].key, meta[k].key) == 0)
                value = &object->items[i];
        if (!value)
            return cnnrt_fail(error, size, CNNRT_EBAD,
                              "%s: error: the metadata has no '%s': this is not a checkpoint of "
                              "this program",
                              path, meta[k].key);
        if (strlen(value->string) >= sizeof meta[k].value)
            return cnnrt_fail(error, size, CNNRT_EBAD, "%s: error: the metadata's '%s' is too long",
                              path, meta[k].key);
        strcpy(meta[k].value, value->string);
    }
    return 0;
}

static int parse_file(const char *path, const unsigned char *raw, size_t file_len,
                      const cnnrt_tensor_spec *specs, int nspecs, float *params, long count,
                      cnnrt_meta *meta, int nmeta, char *error, size_t error_size);

int cnnrt_parse_safetensors(const char *path, const unsigned char *raw, size_t file_len,
                            const cnnrt_tensor_spec *specs, int nspecs, float *params, long count,
                            char *error, size_t error_size)
{
    return parse_file(path, raw, file_len, specs, nspecs, params, count, NULL, 0, error,
                      error_size);
}

int cnnrt_load_safetensors_meta(const char *path, const cnnrt_tensor_spec *specs, int nspecs,
                                float *params, long count, cnnrt_meta *meta, int nmeta, char *error,
                                size_t error_size)
{
    size_t len;
    int status;
    unsigned char *raw = read_weights_file(path, count, &len, &status, error, error_size);
    if (!raw)
        return status;
    status =
        parse_file(path, raw, len, specs, nspecs, params, count, meta, nmeta, error, error_size);
    free(raw);
    return status;
}

static int parse_file(const char *path, const unsigned char *raw, size_t file_len,
                      const cnnrt_tensor_spec *specs, int nspecs, float *params, long count,
                      cnnrt_meta *meta, int nmeta, char *error, size_t error_size)
{
    long long size = (long long)file_len;
    int status = CNNRT_EBAD;
    Json header = {0};
    Entry *entries = NULL;
    const Entry **sorted = NULL;
    if (size < 8) {
        cnnrt_fail(error, error_size, CNNRT_EBAD,
                   "%s: error: not a safetensors file: shorter than 8 bytes", path);
        goto done;
    }
    unsigned long long hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | raw[i];
    if (hlen > (unsigned long long)(size - 8)) {
        cnnrt_fail(error, error_size, CNNRT_EBAD,
                   "%s: error: the header length %llu runs past the end of the file", path, hlen);
        goto done;
    }
    JsonParser parser = {(const char *)raw + 8, (const char *)raw + 8 + hlen, 0, 0};
    int parsed = parse_value(&parser, &header);
    skip_space(&parser);
    if (parser.nul) {
        cnnrt_fail(error, error_size, CNNRT_EBAD,
                   "%s: error: the header has a string with \\u0000 in it", path);
        goto done;
    }
    if (!parsed || parser.p != parser.end) {
        cnnrt_fail(error, error_size, CNNRT_EBAD, "%s: error: the header is not valid JSON", path);
        goto done;
    }
    int duplicate = has_duplicate_keys(&header);
    if (duplicate) {
        cnnrt_fail(error, error_size, CNNRT_EBAD,
                   duplicate < 0 ? "%s: error: out of memory"
                                 : "%s: error: the header names a tensor twice",
                   path);
        goto done;
    }
    if (header.kind != J_OBJECT) {
        cnnrt_fail(error, error_size, CNNRT_EBAD, "%s: error: the header is not a JSON object",
                   path);
        goto done;
    }
    entries = calloc((size_t)header.count + 1, sizeof *entries);
    sorted = calloc((size_t)header.count + 1, sizeof *sorted);
    int nentries;
    long long data_size = size - 8 - (long long)hlen;
    if (!entries || !sorted) {
        cnnrt_fail(error, error_size, CNNRT_EBAD, "%s: error: out of memory", path);
        goto done;
    }
    if (read_entries(path, &header, data_size, entries, &nentries, error, error_size) != 0)
        goto done;
    for (int i = 0; i < nentries; i++)
        sorted[i] = &entries[i];
    qsort(sorted, (size_t)nentries, sizeof *sorted, compare_entries);
    /* the metadata first: a file that is not a checkpoint is told so */
    if (read_metadata(path, &header, meta, nmeta, error, error_size) != 0 ||
        match_specs(path, entries, sorted, nentries, specs, nspecs, error, error_size) != 0)
        goto done;
    /* All checked: now copy, so a failure never leaves params half-loaded. */
    const unsigned char *data = raw + 8 + hlen;
    for (int i = 0; i < nspecs; i++) {
        const Entry *e = find_entry(sorted, nentries, specs[i].name);
        if (!e) /* an optional one */
            continue;
        long long n = (e->end - e->begin) / 4;
        if (specs[i].offset < 0 || specs[i].offset + n > count) {
            cnnrt_fail(error, error_size, CNNRT_EBAD,
                       "%s: error: tensor '%s' does not fit the parameter block", path,
                       specs[i].name);
            goto done;
        }
        /* A weight that is not a number spoils every output it reaches,
         * and training from it saves nothing but NaN. */
        for (long long k = 0; k < n; k++) {
            float v = read_f32(data + e->begin + 4 * k);
            if (!isfinite(v)) {
                cnnrt_fail(
                    error, error_size, CNNRT_EBAD,
                    "%s: error: tensor '%s' holds %s at element %lld: weights must be finite", path,
                    specs[i].name,
                    isnan(v) ? "nan"
                    : v > 0  ? "inf"
                             : "-inf",
                    k);
                goto done;
            }
        }
    }
    for (int i = 0; i < nspecs; i++) {
        const Entry *e = find_entry(sorted, nentries, specs[i].name);
        if (!e)
            continue;
        long long n = (e->end - e->begin) / 4;
        for (long long k = 0; k < n; k++)
            params[specs[i].offset + k] = read_f32(data + e->begin + 4 * k);
    }
    status = 0;
done:
    json_free(&header);
    free(entries);
    free(sorted);
    return status;
}

/* ---- writing ---------------------------------------------------------------
 * The header as the reference writes it: compact JSON in model order, no
 * __metadata__, padded with spaces so the data starts 8-byte aligned.  The
 * file is written beside its final name and renamed over it, so an
 * existing file is never left half-written. */

static void put_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

int cnnrt_save_safetensors(const char *path, const cnnrt_tensor_spec *specs, int nspecs,
                           const float *params, char *error, size_t error_size)
{
    return cnnrt_save_safetensors_meta(path, specs, nspecs, params, NULL, 0, error, error_size);
}

int cnnrt_save_safetensors_meta(const char *path, const cnnrt_tensor_spec *specs, int nspecs,
                                const float *params, const cnnrt_meta *meta, int nmeta, char *error,
                                size_t error_size)
{
    /* The header, in memory first: its length comes before it. */
    char *header = NULL;
    size_t header_len = 0;
    FILE *h = open_memstream(&header, &header_len);
    if (!h)
        return cnnrt_fail(error, error_size, CNNRT_EBAD, "error: out of memory");
    long long offset = 0;
    fputc('{', h);
    if (nmeta) {
        fputs("\"__metadata__\":{", h);
        for (int k = 0; k < nmeta; k++) {
            if (k)
                fputc(',', h);
            put_json_string(h, meta[k].key);
            fputc(':', h);
            put_json_string(h, meta[k].value);
        }
        fputc('}', h);
    }
    for (int i = 0; i < nspecs; i++) {
        long long count = 1;
        if (i || nmeta)
            fputc(',', h);
        put_json_string(h, specs[i].name);
        fputs(":{\"dtype\":\"F32\",\"shape\":[", h);
        for (int d = 0; d < specs[i].rank; d++) {
            fprintf(h, "%s%d", d ? "," : "", specs[i].shape[d]);
            count *= specs[i].shape[d];
        }
        fprintf(h, "],\"data_offsets\":[%lld,%lld]}", offset, offset + 4 * count);
        offset += 4 * count;
    }
    fputc('}', h);
    while ((ftell(h) % 8) != 0)
        fputc(' ', h);
    fclose(h);

    /* Then the whole file in memory, written at once (cnnrt_write_file). */
    long long total = 8 + (long long)header_len + offset;
    unsigned char *file = malloc((size_t)total + 1);
    if (!file) {
        free(header);
        return cnnrt_fail(error, error_size, CNNRT_EBAD, "error: out of memory");
    }
    for (int i = 0; i < 8; i++)
        file[i] = (unsigned char)((unsigned long long)header_len >> (8 * i));
    memcpy(file + 8, header, header_len);
    unsigned char *at = file + 8 + header_len;
    for (int i = 0; i < nspecs; i++) {
        long long count = 1;
        for (int d = 0; d < specs[i].rank; d++)
            count *= specs[i].shape[d];
        for (long long k = 0; k < count; k++) {
            uint32_t bits;
            memcpy(&bits, &params[specs[i].offset + k], sizeof bits);
            for (int j = 0; j < 4; j++)
                *at++ = (unsigned char)(bits >> (8 * j));
        }
    }
    int status = cnnrt_write_file(path, file, (size_t)total, error, error_size);
    free(file);
    free(header);
    return status;
}

/* ---- replacing a file ---------------------------------------------------
 * A new file beside the old one, under a name mkstemp makes (created
 * exclusively: a link planted at a guessed name is never followed),
 * written whole, synced, then renamed over the old one: a reader sees the
 * old file or the new one.  Only a regular file is replaced, and it keeps
 * its permissions; a device, a directory or a symbolic link at the path
 * is left alone with an error. */

static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode)                    ? "a directory"
           : S_ISLNK(mode)                  ? "a symbolic link"
           : S_ISCHR(mode) || S_ISBLK(mode) ? "a device"
           : S_ISFIFO(mode)                 ? "a pipe"
           : S_ISSOCK(mode)                 ? "a socket"
                                            : "not a regular file";
}

static int write_all(int fd, const unsigned char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        data += n;
        len -= (size_t)n;
    }
    return 1;
}

/* Sync the directory that holds path, so the rename itself is durable. */
static void sync_directory(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd); /* best effort: some file systems refuse it for directories */
        close(fd);
    }
    free(dir);
}

int cnnrt_stage_file(const char *path, const void *data, size_t len, char **staged, char *error,
                     size_t error_size)
{
    *staged = NULL;
    struct stat old;
    int exists = lstat(path, &old) == 0;
    if (!exists && errno != ENOENT)
        return cnnrt_fail(error, error_size, CNNRT_EIO, "error: cannot write '%s': %s", path,
                          strerror(errno));
    if (exists && !S_ISREG(old.st_mode))
        return cnnrt_fail(error, error_size, CNNRT_EIO,
                          "error: cannot write '%s': it is %s, not a regular file; it is left as "
                          "it is",
                          path, file_kind(old.st_mode));
    size_t tmp_len = strlen(path) + 16;
    char *tmp = malloc(tmp_len);
    if (!tmp)
        return cnnrt_fail(error, error_size, CNNRT_EIO, "error: out of memory");
    snprintf(tmp, tmp_len, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int status = cnnrt_fail(error, error_size, CNNRT_EIO, "error: cannot write '%s': %s", path,
                                strerror(errno));
        free(tmp);
        return status;
    }
    mode_t mask = umask(0); /* what a plain create would give a new file */
    umask(mask);
    mode_t mode = exists ? old.st_mode & 07777 : 0666 & ~mask;
    int ok = fchmod(fd, mode) == 0 && write_all(fd, data, len) && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return cnnrt_fail(error, error_size, CNNRT_EIO, "error: cannot write '%s': %s", path,
                          strerror(saved));
    }
    *staged = tmp;
    return 0;
}

int cnnrt_commit_file(const char *path, char *staged, char *error, size_t error_size)
{
    if (rename(staged, path) != 0) {
        int saved = errno;
        cnnrt_discard_file(staged);
        return cnnrt_fail(error, error_size, CNNRT_EIO, "error: cannot write '%s': %s", path,
                          strerror(saved));
    }
    free(staged);
    sync_directory(path);
    return 0;
}

void cnnrt_discard_file(char *staged)
{
    if (staged)
        unlink(staged);
    free(staged);
}

int cnnrt_write_file(const char *path, const void *data, size_t len, char *error, size_t error_size)
{
    char *staged;
    int status = cnnrt_stage_file(path, data, len, &staged, error, error_size);
    return status ? status : cnnrt_commit_file(path, staged, error, error_size);
}
