/* Bump allocation for request- and parse-scoped objects: many small
 * allocations, one free. Blocks grow geometrically; the first block is kept
 * across resets so a reused arena stops calling malloc in steady state. */
#include "util/util.h"

#include <string.h>

typedef struct block {
    struct block *next;
    size_t cap;
    size_t used;
    _Alignas(16) char data[];
} block_t;

struct cvx_arena {
    block_t *head;  /* current block (most recent) */
    block_t *first; /* kept on reset */
    size_t total;
};

static block_t *block_new(size_t cap) {
    block_t *b = cvx_malloc(sizeof(block_t) + cap);
    if (!b) return NULL;
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

cvx_arena_t *cvx_arena_new(size_t first_block) {
    cvx_arena_t *a = cvx_malloc(sizeof *a);
    if (!a) return NULL;
    if (first_block < 256) first_block = 256;
    a->first = a->head = block_new(first_block);
    if (!a->first) {
        cvx_free(a);
        return NULL;
    }
    a->total = 0;
    return a;
}

void *cvx_arena_alloc(cvx_arena_t *a, size_t n) {
    n = (n + 7) & ~(size_t)7;
    if (n == 0) n = 8;
    block_t *b = a->head;
    if (b->cap - b->used < n) {
        size_t cap = b->cap * 2;
        if (cap < n) cap = n;
        if (cap > (64u << 20) && n <= (64u << 20)) cap = CVX_MAX(n, (size_t)(64u << 20));
        block_t *nb = block_new(cap);
        if (!nb) return NULL;
        nb->next = b;
        a->head = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->total += n;
    return p;
}

char *cvx_arena_strndup(cvx_arena_t *a, const char *s, size_t n) {
    char *d = cvx_arena_alloc(a, n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void cvx_arena_reset(cvx_arena_t *a) {
    block_t *b = a->head;
    while (b != a->first) {
        block_t *next = b->next;
        cvx_free(b);
        b = next;
    }
    a->head = a->first;
    a->first->used = 0;
    a->total = 0;
}

void cvx_arena_free(cvx_arena_t *a) {
    if (!a) return;
    block_t *b = a->head;
    while (b) {
        block_t *next = b->next;
        cvx_free(b);
        b = next;
    }
    cvx_free(a);
}

size_t cvx_arena_used(const cvx_arena_t *a) { return a->total; }
