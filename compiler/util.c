/* util.c - allocation, arena, maps and string buffers. */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void util_internal_error(const char *file, int line)
{
    fprintf(stderr, "cnngen: internal error at %s:%d (a bug in cnngen; please report it)\n", file,
            line);
    exit(3);
}

static _Noreturn void out_of_memory(size_t size)
{
    fprintf(stderr, "cnngen: error: out of memory (asked for %zu bytes)\n", size);
    exit(2);
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

char *xstrdup(const char *s)
{
    size_t len = strlen(s);
    char *copy = xmalloc(len + 1);
    memcpy(copy, s, len + 1);
    return copy;
}

/* ---- arena ------------------------------------------------------------- */

struct ArenaBlock {
    ArenaBlock *next;
    size_t used, cap;
    max_align_t data[];
};

enum { ARENA_BLOCK_SIZE = 64 * 1024 };

void *arena_alloc(Arena *arena, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    ArenaBlock *b = arena->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > ARENA_BLOCK_SIZE ? size : ARENA_BLOCK_SIZE;
        b = xmalloc(sizeof(ArenaBlock) + cap);
        b->used = 0;
        b->cap = cap;
        b->next = arena->head;
        arena->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(Arena *arena, const char *s, size_t len)
{
    char *copy = arena_alloc(arena, len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

char *arena_printf(Arena *arena, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = arena_alloc(arena, (size_t)len + 1);
    vsnprintf(s, (size_t)len + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

void arena_free(Arena *arena)
{
    ArenaBlock *b = arena->head;
    while (b) {
        ArenaBlock *next = b->next;
        free(b);
        b = next;
    }
    arena->head = NULL;
}

/* ---- vectors ----------------------------------------------------------- */

void ptrvec_push(PtrVec *v, void *item)
{
    if (v->count == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 8;
        v->items = xrealloc(v->items, (size_t)v->cap * sizeof *v->items);
    }
    v->items[v->count++] = item;
}

void ptrvec_free(PtrVec *v)
{
    free(v->items);
    v->items = NULL;
    v->count = v->cap = 0;
}

/* ---- string map -------------------------------------------------------- */

static uint64_t hash_string(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static size_t strmap_slot(const StrMap *map, const char *key)
{
    size_t i = hash_string(key) & (map->cap - 1);
    while (map->keys[i] && strcmp(map->keys[i], key) != 0)
        i = (i + 1) & (map->cap - 1);
    return i;
}

bool strmap_get(const StrMap *map, const char *key, intptr_t *value)
{
    if (map->cap == 0)
        return false;
    size_t i = strmap_slot(map, key);
    if (!map->keys[i])
        return false;
    if (value)
        *value = map->values[i];
    return true;
}

static void strmap_grow(StrMap *map)
{
    StrMap bigger = {0};
    bigger.cap = map->cap ? 2 * map->cap : 16;
    bigger.keys = xcalloc(bigger.cap, sizeof *bigger.keys);
    bigger.values = xcalloc(bigger.cap, sizeof *bigger.values);
    for (size_t i = 0; i < map->cap; i++)
        if (map->keys[i])
            strmap_put(&bigger, map->keys[i], map->values[i]);
    strmap_free(map);
    *map = bigger;
}

void strmap_put(StrMap *map, const char *key, intptr_t value)
{
    if (2 * (map->count + 1) > map->cap)
        strmap_grow(map);
    size_t i = strmap_slot(map, key);
    if (!map->keys[i]) {
        map->keys[i] = key;
        map->count++;
    }
    map->values[i] = value;
}

void strmap_free(StrMap *map)
{
    free(map->keys);
    free(map->values);
    memset(map, 0, sizeof *map);
}

/* ---- string buffer ----------------------------------------------------- */

void strbuf_append(StrBuf *b, const char *s, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + len + 1)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void strbuf_printf(StrBuf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *tmp = xmalloc((size_t)len + 1);
    vsnprintf(tmp, (size_t)len + 1, fmt, ap2);
    va_end(ap2);
    strbuf_append(b, tmp, (size_t)len);
    free(tmp);
}

void strbuf_free(StrBuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int64_t mul_sat(int64_t a, int64_t b)
{
    if (a != 0 && b > INT64_MAX / a)
        return INT64_MAX;
    return a * b;
}

void format_int128(__int128 v, char buf[48])
{
    char tmp[48];
    int n = 0;
    bool negative = v < 0;
    unsigned __int128 u = negative ? -(unsigned __int128)v : (unsigned __int128)v;
    do {
        tmp[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    int k = 0;
    if (negative)
        buf[k++] = '-';
    while (n)
        buf[k++] = tmp[--n];
    buf[k] = '\0';
}
