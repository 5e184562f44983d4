/* The hash table, recency list and byte budget under every cache (see
 * util.h for what stays with each user). */
#include "util/util.h"

#include <string.h>

#define INITIAL_BUCKETS 1024

int cvx_cache_init(cvx_cache_t *c, size_t max_bytes) {
    memset(c, 0, sizeof *c);
    c->table = cvx_calloc(INITIAL_BUCKETS, sizeof *c->table);
    if (!c->table) return CVX_E_NOMEM;
    c->cap = INITIAL_BUCKETS;
    c->max_bytes = max_bytes;
    return CVX_OK;
}

void cvx_cache_destroy(cvx_cache_t *c) {
    cvx_free(c->table);
    c->table = NULL;
    c->cap = 0;
}

bool cvx_cache_admits(const cvx_cache_t *c, size_t bytes) { return bytes <= c->max_bytes / 8; }

cvx_cache_node_t *cvx_cache_chain(const cvx_cache_t *c, uint64_t hash) {
    cvx_cache_node_t *n = c->table[hash & (c->cap - 1)];
    while (n && n->hash != hash) n = n->hnext;
    return n;
}

cvx_cache_node_t *cvx_cache_next(const cvx_cache_node_t *n, uint64_t hash) {
    n = n->hnext;
    while (n && n->hash != hash) n = n->hnext;
    return (cvx_cache_node_t *)n;
}

static void push_newest(cvx_cache_t *c, cvx_cache_node_t *n) {
    n->newer = NULL;
    n->older = c->newest;
    if (c->newest) c->newest->newer = n;
    else c->oldest = n;
    c->newest = n;
}

static void unlink_recency(cvx_cache_t *c, cvx_cache_node_t *n) {
    if (n->newer) n->newer->older = n->older;
    else c->newest = n->older;
    if (n->older) n->older->newer = n->newer;
    else c->oldest = n->newer;
    n->newer = n->older = NULL;
}

/* Doubling keeps chains short; if it cannot be allocated, chains grow
 * longer and lookups stay correct. */
static void grow(cvx_cache_t *c) {
    size_t ncap = c->cap * 2;
    cvx_cache_node_t **nt = cvx_calloc(ncap, sizeof *nt);
    if (!nt) return;
    for (size_t i = 0; i < c->cap; i++) {
        for (cvx_cache_node_t *n = c->table[i], *next; n; n = next) {
            next = n->hnext;
            n->hnext = nt[n->hash & (ncap - 1)];
            nt[n->hash & (ncap - 1)] = n;
        }
    }
    cvx_free(c->table);
    c->table = nt;
    c->cap = ncap;
}

void cvx_cache_insert(cvx_cache_t *c, cvx_cache_node_t *n, uint64_t hash, size_t bytes) {
    if (c->n + 1 > c->cap) grow(c);
    n->hash = hash;
    n->bytes = bytes;
    cvx_cache_node_t **slot = &c->table[hash & (c->cap - 1)];
    n->hnext = *slot;
    *slot = n;
    push_newest(c, n);
    c->bytes += bytes;
    c->n++;
}

void cvx_cache_remove(cvx_cache_t *c, cvx_cache_node_t *n) {
    cvx_cache_node_t **p = &c->table[n->hash & (c->cap - 1)];
    while (*p != n) p = &(*p)->hnext;
    *p = n->hnext;
    n->hnext = NULL;
    unlink_recency(c, n);
    c->bytes -= n->bytes;
    c->n--;
}

cvx_cache_node_t *cvx_cache_oldest(const cvx_cache_t *c) { return c->oldest; }

bool cvx_cache_over(const cvx_cache_t *c, size_t extra) { return c->bytes + extra > c->max_bytes; }

void cvx_cache_hit(cvx_cache_t *c, cvx_cache_node_t *n) {
    c->hits++;
    if (c->newest == n) return;
    unlink_recency(c, n);
    push_newest(c, n);
}

void cvx_cache_miss(cvx_cache_t *c) { c->misses++; }
