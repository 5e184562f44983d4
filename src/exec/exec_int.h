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

/* complete.c: answers of cvx_exec_call_then waiting for durability (see
 * its header comment). One per runtime with a store. */
typedef struct cvx__completions cvx__completions_t;

int cvx__completions_new(cvx_store_t *store, cvx__completions_t **out, cvx_err_t *err);
/* Waits until every parked answer has gone to its `done`, then frees. */
void cvx__completions_free(cvx__completions_t *c);
void cvx__completions_drain(cvx__completions_t *c);

/* exec.c, for complete.c. */
cvx__completions_t *cvx__runtime_completions(cvx_runtime_t *rt);
/* cvx_exec_call, except that a mutation returns once its commit is written
 * with *wait_ts the ts its answer must wait for (0: none). */
int cvx__exec_call_deferred(cvx_runtime_t *rt, const cvx_request_t *req, cvx_response_t *resp, uint64_t *wait_ts);

/* system.c: `_system/...` queries, answered by the host for admin calls. */
bool cvx__is_system_path(const char *path, size_t len);
/* Runs one (resp as cvx_exec_call fills it); CVX_E_NO_FUNCTION for an
 * unknown one, or for a caller that is not the admin. */
int cvx__system_call(cvx_runtime_t *rt, const cvx_request_t *req, size_t path_len, cvx_response_t *resp);
/* Makes resp the answer of a call whose commit (or the snapshot it read)
 * will never be durable: CVX_E_IO with err's message behind the
 * request-id header (resp->request_id is kept), and no value or logs
 * (they may quote what it read). */
void cvx__response_set_not_durable(cvx_response_t *resp, const cvx_err_t *err);

#endif
