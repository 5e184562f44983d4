/* Bump allocation for request- and parse-scoped objects: many small
 * allocations, one free. Blocks grow geometrically; the first block is kept
 * across resets so a reused arena stops calling malloc in steady state.
 *
 * A call creates and frees a few arenas (its own, its transaction's, the
 * guest invocation's), so each thread keeps a few freed ones for its next
 * cvx_arena_new: a call then takes no malloc for them. */
#include "util/util.h"

#include <pthread.h>
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

/* Spares: arenas reset to their first block, at most SPARES per thread and
 * only with a first block of at most SPARE_MAX bytes. */
#define SPARES 4
#define SPARE_MAX (64u << 10)
/* Sanitizer builds free every arena, so a use after free is caught. */
#if defined(__SANITIZE_ADDRESS__)
#define KEEP_SPARES 0
#else
#define KEEP_SPARES 1
#endif

typedef struct {
    cvx_arena_t *a[SPARES];
    int n;
} spares_t;

static _Thread_local spares_t spares;
static pthread_key_t spares_key;
static pthread_once_t spares_once = PTHREAD_ONCE_INIT;

static void arena_destroy(cvx_arena_t *a);

/* Thread exit: the spares go with the thread. */
static void spares_release(void *p) {
    spares_t *sp = p;
    while (sp->n > 0) arena_destroy(sp->a[--sp->n]);
}

static void spares_init(void) { pthread_key_create(&spares_key, spares_release); }

static cvx_arena_t *spare_take(size_t first_block) {
    for (int i = spares.n - 1; i >= 0; i--) {
        cvx_arena_t *a = spares.a[i];
        /* Big enough, and not much bigger than asked for. */
        if (a->first->cap >= first_block && a->first->cap / 4 <= first_block) {
            spares.a[i] = spares.a[--spares.n];
            return a;
        }
    }
    return NULL;
}

static bool spare_put(cvx_arena_t *a) {
    if (!KEEP_SPARES || spares.n == SPARES || a->first->cap > SPARE_MAX) return false;
    pthread_once(&spares_once, spares_init);
    /* Registers the thread-exit release (the value only needs to be set). */
    if (spares.n == 0 && pthread_getspecific(spares_key) == NULL) pthread_setspecific(spares_key, &spares);
    cvx_arena_reset(a);
    spares.a[spares.n++] = a;
    return true;
}

cvx_arena_t *cvx_arena_new(size_t first_block) {
    if (first_block < 256) first_block = 256;
    cvx_arena_t *a = spare_take(first_block);
    if (a) return a;
    a = cvx_malloc(sizeof *a);
    if (!a) return NULL;
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

static void arena_destroy(cvx_arena_t *a) {
    block_t *b = a->head;
    while (b) {
        block_t *next = b->next;
        cvx_free(b);
        b = next;
    }
    cvx_free(a);
}

void cvx_arena_free(cvx_arena_t *a) {
    if (a && !spare_put(a)) arena_destroy(a);
}

size_t cvx_arena_used(const cvx_arena_t *a) { return a->total; }
