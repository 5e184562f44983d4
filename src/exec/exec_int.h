/* Private to the exec layer. */
#ifndef CVX_EXEC_INT_H
#define CVX_EXEC_INT_H

#include "exec/exec.h"

/* qcache.c: the query result cache (see its header comment). */
typedef struct cvx__qcache cvx__qcache_t;

int cvx__qcache_new(cvx_store_t *store, size_t max_bytes, cvx__qcache_t **out);
void cvx__qcache_free(cvx__qcache_t *c);
/* Drops every entry (a deploy of other code: its keys can never match
 * again, and would hold memory until evicted). */
void cvx__qcache_clear(cvx__qcache_t *c);
/* On a hit, appends the cached value and logs to r and sets *ts to the
 * timestamp the result is current at. */
bool cvx__qcache_get(cvx__qcache_t *c, const char *key, size_t len, cvx_abi_result_t *r, uint64_t *ts);
/* Remembers a successful result computed at snapshot `ts` with read set rs
 * (copied). Skipped when a newer commit was already seen. */
void cvx__qcache_put(cvx__qcache_t *c, const char *key, size_t len, uint64_t ts, const cvx_readset_t *rs,
                     const cvx_abi_result_t *r);
void cvx__qcache_stats(cvx__qcache_t *c, uint64_t *hits, uint64_t *misses, uint64_t *invalidations, size_t *entries,
                       size_t *bytes);

#endif
