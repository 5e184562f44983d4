/*
 * exec — running one function call end to end.
 *
 * Owns: the deployed code (an atomically swapped cvx_app_t: calls in flight
 * finish on the code they started with), per-kind limits, request ids,
 * argument validation, transactions around queries (one snapshot) and
 * mutations (OCC with bounded retries: a conflict re-runs the mutation from
 * scratch), actions and the functions they call, and the error messages a
 * client sees ("[Request ID: 1f0c…] Server Error\nUncaught Error: boom").
 *
 * Threads: cvx_exec_call is safe to call from many threads at once.
 */
#ifndef CVX_EXEC_H
#define CVX_EXEC_H

#include "abi/abi.h"
#include "store/store.h"
#include "util/util.h"
#include "wasm/wasm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cvx_runtime cvx_runtime_t;

/* Indexed by cvx_kind_t (1 query, 2 mutation, 3 action). */
typedef struct {
    uint64_t fuel[4];
    uint64_t memory_bytes[4];
    uint64_t timeout_ms[4];
    uint32_t max_log_lines;    /* per call, the calls an action makes included */
    uint32_t max_mutation_attempts;
    uint32_t max_call_depth;   /* actions calling actions */
    bool allow_private_fetch;  /* let fetch reach loopback / private nets */
} cvx_exec_limits_t;

/* The seed's limits: fuel 10^10 / 10^10 / 10^11, memory 256 / 256 / 512
 * MiB, 30 s / 30 s / 5 min, 256 log lines (CVX_ABI_LOG_LINES; 0 means
 * that too), 16 mutation attempts. */
void cvx_exec_limits_default(cvx_exec_limits_t *l);

typedef struct {
    cvx_engine_t *engine; /* shared, not owned; abi registered on it */
    cvx_store_t *store;   /* not owned; or NULL and data_dir: */
    const char *data_dir; /* with store NULL: the runtime opens the store
                             in this directory and owns it */
    int read_connections; /* for the store it opens (0: the store's default) */
    cvx_exec_limits_t limits;
    cvx_storage_config_t storage; /* file storage; dir NULL = none (strings
                                     copied) */
    /* Query results are cached until a commit touches what they read;
     * this bounds the cache's memory. 0 = 64 MiB; SIZE_MAX = no cache. */
    size_t query_cache_bytes;
} cvx_runtime_config_t;

int cvx_runtime_new(const cvx_runtime_config_t *cfg, cvx_runtime_t **out, cvx_err_t *err);
/* Waits for the answers cvx_exec_call_then still holds to reach their
 * `done` (cvx_exec_drain), releases the current app, then closes the
 * store if the runtime opened it. The engine and a store passed in are the caller's, and must outlive
 * the runtime (it listens to the store's commits). */
void cvx_runtime_free(cvx_runtime_t *rt);
cvx_store_t *cvx_runtime_store(cvx_runtime_t *rt);
const cvx_exec_limits_t *cvx_runtime_limits(cvx_runtime_t *rt);

/* Makes `app` the deployed code: applies its schema's indexes to the store
 * (backfilling), then swaps it in atomically. Takes a new reference to app;
 * the caller keeps its own. On error the old code stays deployed. */
int cvx_runtime_deploy(cvx_runtime_t *rt, cvx_app_t *app, void (*progress)(void *, const char *), void *progress_ctx,
                       cvx_err_t *err);
/* The deployed app with a reference the caller must release, or NULL. */
cvx_app_t *cvx_runtime_app(cvx_runtime_t *rt);
/* Incremented by every deploy. */
uint64_t cvx_runtime_generation(cvx_runtime_t *rt);

typedef struct {
    const char *path;       /* "users:get_user" */
    size_t path_len;        /* 0 = strlen(path) */
    const char *args_json;  /* an object; NULL = {} */
    size_t args_len;
    const char *request_id; /* NULL = a fresh random id */
    cvx_kind_t expect_kind; /* 0 = any; else the call must be of this kind */
    bool allow_internal;    /* admin / CLI / other functions */
    uint64_t snapshot_ts;   /* queries: read at this ts (0 = latest) */
    bool want_readset;      /* queries: keep the read set (sync) */
    const char *journal;    /* queries: the last run's resp->r.journal (its
                               pages end where they ended), or NULL */
    const char *idempotency_key; /* mutations: a retry with the same key is
                                    answered from the first run's record
                                    instead of running again (the sync
                                    protocol's (session, requestId)) */
    cvx_app_t *app;         /* run against this app instead of the deployed one */
    bool http;              /* an HTTP action (only reachable this way) */
    /* The caller's UserIdentity (JSON object text, as cvx_auth_verify
     * gives it), or NULL: anonymous. Part of a cached result's key, and
     * passed on to the functions an action runs. */
    const char *identity;
    size_t identity_len;
    /* Mutations: runs inside the transaction after the function succeeded
     * and before the commit (the scheduler marks its job done atomically
     * with the job's writes). An error aborts the mutation with it. */
    int (*before_commit)(void *ctx, cvx_txn_t *txn, cvx_err_t *err);
    void *before_commit_ctx;
} cvx_request_t;

typedef struct {
    cvx_abi_result_t r;       /* status, value / message / data, logs */
    cvx_kind_t kind;          /* of the function that ran (0 if none) */
    uint64_t ts;              /* mutation: commit ts; query: snapshot ts */
    uint32_t attempts;        /* mutation runs (1 + retries) */
    char request_id[40];
    cvx_readset_t *readset;   /* with want_readset; owned, may be NULL */
    double duration_ms;
} cvx_response_t;

/* Runs a call. Every outcome lands in resp (its status is returned too):
 * unknown function (CVX_E_NO_FUNCTION, "Could not find public function for
 * 'users:nope'"), wrong kind, bad arguments (CVX_E_ARGS), guest errors and
 * limits. Messages of system errors carry "[Request ID: <id>] Server
 * Error". Zero-initialise resp; cvx_response_free releases it. Returns
 * once the answer may be shown: a mutation's commit (or the snapshot a
 * failed one read) is durable, or resp says why it never will be. */
int cvx_exec_call(cvx_runtime_t *rt, const cvx_request_t *req, cvx_response_t *resp);

/* Where a call's answer goes: called exactly once per call, when the
 * answer may leave. resp is lent for the call (exec frees it after). */
typedef void (*cvx_call_done_fn)(void *ctx, cvx_response_t *resp);

/* Runs a call like cvx_exec_call, on this thread, but does not hold the
 * thread while its answer waits for durability (group commit makes that
 * a few milliseconds, and a held thread is one fewer mutation in the next
 * group): `done` runs on this thread before this returns when the answer
 * may leave at once, else later on the runtime's completer thread, in the
 * order the calls finished. An answer whose commit never becomes durable
 * is replaced by that I/O error (and its ts is 0). The way answers to
 * clients wait without holding a thread (HTTP calls, sync Mutations). */
void cvx_exec_call_then(cvx_runtime_t *rt, const cvx_request_t *req, cvx_call_done_fn done, void *ctx);
/* Waits until every answer cvx_exec_call_then still holds has gone to its
 * `done`. For owners of `ctx`es about to be freed: call it after the
 * threads that call cvx_exec_call_then have stopped (a call still running
 * may park a new answer after this returns), and never from a `done`
 * (it would wait for itself). */
void cvx_exec_drain(cvx_runtime_t *rt);
/* Answers a query from the result cache only: true with resp filled (as
 * cvx_exec_call would), false when it must run (then resp is untouched
 * but for being reset). Never runs guest code or touches the disk, so the
 * server calls it on its event loop and skips the worker hand-off. */
bool cvx_exec_call_cached(cvx_runtime_t *rt, const cvx_request_t *req, cvx_response_t *resp);
void cvx_response_free(cvx_response_t *resp);

/* The runtime's file-storage configuration. */
const cvx_storage_config_t *cvx_runtime_storage(cvx_runtime_t *rt);

/* Runs fn in a fresh write transaction and commits it, re-running fn on a
 * conflict (bounded). For host-initiated writes (scheduler, uploads). */
int cvx_exec_with_txn(cvx_runtime_t *rt, int (*fn)(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err),
                      void *arg, cvx_buf_t *out, cvx_err_t *err);
/* Runs fn in a read transaction at the latest snapshot, then ends it: the
 * operator's reads and an action's environment variables. */
int cvx_exec_with_read_txn(cvx_runtime_t *rt, int (*fn)(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err),
                           void *arg, cvx_buf_t *out, cvx_err_t *err);

/* ---- scheduled functions and crons ------------------------------------------ */

typedef struct cvx_scheduler cvx_scheduler_t;

/* Starts the thread that runs due scheduled functions (docs/abi.md: a
 * scheduled mutation exactly once, an action at most once) and the
 * deployed app's crons. Creates the system tables it needs. */
int cvx_scheduler_start(cvx_runtime_t *rt, cvx_scheduler_t **out, cvx_err_t *err);
/* Stops after the job in progress (NULL is a no-op). */
void cvx_scheduler_stop(cvx_scheduler_t *s);

typedef struct {
    uint64_t runs;       /* jobs run */
    uint64_t failures;   /* jobs that ended failed */
    uint64_t cron_jobs;  /* jobs scheduled by crons */
} cvx_scheduler_stats_t;

void cvx_scheduler_stats(cvx_scheduler_t *s, cvx_scheduler_stats_t *out);

/* Counters for tests and metrics. */
typedef struct {
    uint64_t calls[4];
    uint64_t mutation_retries;
    uint64_t failures;
    uint64_t cache_hits, cache_misses, cache_invalidations;
    size_t cache_entries, cache_bytes;
    cvx_store_stats_t store; /* zero without a store */
} cvx_exec_stats_t;

void cvx_exec_stats(cvx_runtime_t *rt, cvx_exec_stats_t *out);

/* ---- what an operator reads (inspect.c) -------------------------------------- */

/* The user tables as JSON (cvx_store_list_tables). */
int cvx_exec_list_tables(cvx_runtime_t *rt, cvx_buf_t *out_json, cvx_err_t *err);
/* A page of a table's documents at the latest snapshot (cvx_txn_query's
 * JSON); cursor NULL = from the start. */
int cvx_exec_read_table(cvx_runtime_t *rt, const char *table, const char *cursor, int64_t limit, cvx_buf_t *out_json,
                        cvx_err_t *err);
/* A document by id at the latest snapshot, as cvx_txn_get gives it ("null"
 * when there is none). */
int cvx_exec_read_document(cvx_runtime_t *rt, const char *id, size_t id_len, cvx_buf_t *out_json, cvx_err_t *err);

/* The deployment's environment variables: with `changes_json` NULL, appends
 * every variable as a JSON object {name: value}; else first applies
 * {"changes": [{"name", "value": string or null}]} in one commit (all or
 * none; cvx_abi_env_update says what is refused), then appends the result.
 * Functions that read a changed variable see it from that commit on. */
int cvx_exec_env(cvx_runtime_t *rt, const char *changes_json, size_t len, cvx_buf_t *out_json, cvx_err_t *err);

#ifdef __cplusplus
}
#endif
#endif
