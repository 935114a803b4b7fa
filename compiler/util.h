/* util.h - memory, strings and maps shared by every stage of cnngen.
 *
 * The compiler allocates its AST and graph from one arena that is freed
 * at exit; maps are open-addressing hash tables keyed by strings, so
 * that name lookups stay O(1) on models with tens of thousands of layers.
 */
#ifndef CNNGEN_UTIL_H
#define CNNGEN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An internal error: a bug in cnngen, never a mistake in the model. */
#define unreachable() util_internal_error(__FILE__, __LINE__)
_Noreturn void util_internal_error(const char *file, int line);

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);

/* Arena: many small allocations, one free. */
typedef struct ArenaBlock ArenaBlock;
typedef struct {
    ArenaBlock *head;
} Arena;

void *arena_alloc(Arena *arena, size_t size);
char *arena_strndup(Arena *arena, const char *s, size_t len);
char *arena_printf(Arena *arena, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(Arena *arena);

/* A growable array of pointers (malloc-backed). */
typedef struct {
    void **items;
    int count, cap;
} PtrVec;

void ptrvec_push(PtrVec *v, void *item);
void ptrvec_free(PtrVec *v);

/* String -> pointer-sized value map; keys are not copied. */
typedef struct {
    const char **keys;
    intptr_t *values;
    size_t cap, count;
} StrMap;

bool strmap_get(const StrMap *map, const char *key, intptr_t *value);
void strmap_put(StrMap *map, const char *key, intptr_t value);
void strmap_free(StrMap *map);

/* a * b for a, b >= 0, saturated at INT64_MAX (sizes that may overflow). */
int64_t mul_sat(int64_t a, int64_t b);
/* Decimal text of an __int128 (FLOPs and out-of-range sizes). */
void format_int128(__int128 v, char buf[48]);

/* A growable string, for building messages and output. */
typedef struct {
    char *data;
    size_t len, cap;
} StrBuf;

void strbuf_append(StrBuf *b, const char *s, size_t len);
void strbuf_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_free(StrBuf *b);

#endif
