/* The replaceable allocator. Every cvx allocation goes through here so that
 * fault-injection tests can fail the Nth allocation and check that each
 * caller turns it into CVX_E_NOMEM instead of crashing or losing data. */
#include "util/util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic uint64_t fail_at;    /* 0 = never fail */
static _Atomic uint64_t alloc_seen; /* allocations since arming */
static _Atomic bool fail_sticky;

uint64_t cvx_alloc_fail_after(uint64_t nth, bool sticky) {
    uint64_t seen = atomic_exchange(&alloc_seen, 0);
    atomic_store(&fail_sticky, sticky);
    atomic_store(&fail_at, nth);
    return seen;
}

static bool should_fail(void) {
    uint64_t at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    if (at == 0) return false;
    uint64_t n = atomic_fetch_add(&alloc_seen, 1) + 1;
    if (n == at) return true;
    return n > at && atomic_load(&fail_sticky);
}

void *cvx_malloc(size_t n) {
    if (should_fail()) return NULL;
    return malloc(n ? n : 1);
}

void *cvx_calloc(size_t count, size_t size) {
    if (should_fail()) return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *cvx_realloc(void *p, size_t n) {
    if (should_fail()) return NULL;
    return realloc(p, n ? n : 1);
}

void cvx_free(void *p) { free(p); }

char *cvx_strndup(const char *s, size_t n) {
    char *d = cvx_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *cvx_strdup(const char *s) { return cvx_strndup(s, strlen(s)); }
