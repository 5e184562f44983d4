/* Running calls: resolve, validate, run in the right transaction, retry
 * mutations on conflict, shape the error a client sees.
 *
 * The deployed app is swapped under a mutex but used through a reference:
 * a call holds the app it started with until it ends, so a deploy never
 * changes code under a running call and old code is freed when its last
 * call finishes. */
#include "exec/exec_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct cvx_runtime {
    cvx_engine_t *engine;
    cvx_store_t *store;
    bool owns_store;
    cvx_exec_limits_t limits;
    pthread_mutex_t mu;
    cvx_app_t *app;
    atomic_uint_fast64_t generation;
    atomic_uint_fast64_t calls[4];
    atomic_uint_fast64_t retries;
    atomic_uint_fast64_t failures;
    /* Mutation attempts in flight, and mutations that conflicted too often
     * and wait for (or have) a turn alone: see run_mutation. */
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    uint32_t active, starving;
    bool exclusive;
    /* Idempotency keys of mutations in flight: a retry waits for the
     * original instead of racing it. */
    pthread_mutex_t keys_mu;
    pthread_cond_t keys_cv;
    struct key_node {
        struct key_node *next;
        char key[];
    } *keys;
    cvx_storage_config_t storage; /* strings owned */
    cvx__qcache_t *qcache;        /* NULL: no cache */
    cvx__completions_t *completions; /* NULL without a store */
};

void cvx_exec_limits_default(cvx_exec_limits_t *l) {
    memset(l, 0, sizeof *l);
    l->fuel[CVX_KIND_QUERY] = l->fuel[CVX_KIND_MUTATION] = 10000000000ull;
    l->fuel[CVX_KIND_ACTION] = 100000000000ull;
    l->memory_bytes[CVX_KIND_QUERY] = l->memory_bytes[CVX_KIND_MUTATION] = 256ull << 20;
    l->memory_bytes[CVX_KIND_ACTION] = 512ull << 20;
    l->timeout_ms[CVX_KIND_QUERY] = l->timeout_ms[CVX_KIND_MUTATION] = 30000;
    l->timeout_ms[CVX_KIND_ACTION] = 300000;
    l->max_log_lines = CVX_ABI_LOG_LINES;
    l->max_mutation_attempts = 16;
    l->max_call_depth = 8;
}

int cvx_runtime_new(const cvx_runtime_config_t *cfg, cvx_runtime_t **out, cvx_err_t *err) {
    *out = NULL;
    cvx_runtime_t *rt = cvx_calloc(1, sizeof *rt);
    if (!rt) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    rt->engine = cfg->engine;
    rt->store = cfg->store;
    if (!rt->store && cfg->data_dir) {
        cvx_store_config_t sc;
        cvx_store_config_default(&sc);
        if (cfg->read_connections > 0) sc.read_connections = cfg->read_connections;
        int rc = cvx_store_open(cfg->data_dir, &sc, &rt->store, err);
        if (rc) {
            cvx_free(rt);
            return rc;
        }
        rt->owns_store = true;
    }
    rt->limits = cfg->limits;
    if (rt->limits.max_mutation_attempts == 0) rt->limits.max_mutation_attempts = 16;
    if (rt->limits.max_call_depth == 0) rt->limits.max_call_depth = 8;
    pthread_mutex_init(&rt->mu, NULL);
    if (cfg->storage.dir) {
        rt->storage.dir = cvx_strdup(cfg->storage.dir);
        rt->storage.base_url = cfg->storage.base_url ? cvx_strdup(cfg->storage.base_url) : NULL;
        uint8_t *secret = cfg->storage.secret_len ? cvx_malloc(cfg->storage.secret_len) : NULL;
        if (secret) memcpy(secret, cfg->storage.secret, cfg->storage.secret_len);
        rt->storage.secret = secret;
        rt->storage.secret_len = secret ? cfg->storage.secret_len : 0;
    }
    pthread_mutex_init(&rt->gate_mu, NULL);
    pthread_mutex_init(&rt->keys_mu, NULL);
    pthread_cond_init(&rt->keys_cv, NULL);
    pthread_cond_init(&rt->gate_cv, NULL);
    if (rt->store && cfg->query_cache_bytes != SIZE_MAX &&
        cvx__qcache_new(rt->store, cfg->query_cache_bytes ? cfg->query_cache_bytes : 64u << 20, &rt->qcache) != CVX_OK) {
        cvx_runtime_free(rt);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    if (rt->store) {
        int rc = cvx__completions_new(rt->store, &rt->completions, err);
        if (rc) {
            cvx_runtime_free(rt);
            return rc;
        }
    }
    *out = rt;
    return CVX_OK;
}

void cvx_runtime_free(cvx_runtime_t *rt) {
    if (!rt) return;
    cvx__completions_free(rt->completions);
    cvx__qcache_free(rt->qcache);
    cvx_app_release(rt->app);
    pthread_mutex_destroy(&rt->mu);
    pthread_mutex_destroy(&rt->gate_mu);
    pthread_cond_destroy(&rt->gate_cv);
    pthread_mutex_destroy(&rt->keys_mu);
    cvx_free((void *)rt->storage.dir);
    cvx_free((void *)rt->storage.base_url);
    cvx_free((void *)rt->storage.secret);
    pthread_cond_destroy(&rt->keys_cv);
    if (rt->owns_store) cvx_store_close(rt->store);
    cvx_free(rt);
}

cvx_store_t *cvx_runtime_store(cvx_runtime_t *rt) { return rt->store; }
cvx__completions_t *cvx__runtime_completions(cvx_runtime_t *rt) { return rt->completions; }
const cvx_exec_limits_t *cvx_runtime_limits(cvx_runtime_t *rt) { return &rt->limits; }

int cvx_runtime_deploy(cvx_runtime_t *rt, cvx_app_t *app, void (*progress)(void *, const char *), void *progress_ctx,
                       cvx_err_t *err) {
    if (rt->store) {
        const cvx_table_def_t *tables;
        size_t n = cvx_app_tables(app, &tables);
        int rc = cvx_store_apply_indexes(rt->store, tables, n, progress, progress_ctx, err);
        if (rc) return rc;
    }
    cvx_app_retain(app);
    pthread_mutex_lock(&rt->mu);
    cvx_app_t *old = rt->app;
    rt->app = app;
    atomic_fetch_add(&rt->generation, 1);
    pthread_mutex_unlock(&rt->mu);
    /* Entries are keyed by module hash: the old code's can only be evicted.
     * (A call still finishing on the old code may add one more.) */
    if (rt->qcache && old && strcmp(cvx_app_hash(old), cvx_app_hash(app)) != 0)
        cvx__qcache_clear(rt->qcache);
    cvx_app_release(old);
    return CVX_OK;
}

cvx_app_t *cvx_runtime_app(cvx_runtime_t *rt) {
    pthread_mutex_lock(&rt->mu);
    cvx_app_t *app = rt->app;
    if (app) cvx_app_retain(app);
    pthread_mutex_unlock(&rt->mu);
    return app;
}

uint64_t cvx_runtime_generation(cvx_runtime_t *rt) { return atomic_load(&rt->generation); }

void cvx_response_free(cvx_response_t *resp) {
    cvx_abi_result_free(&resp->r);
    cvx_readset_free(resp->readset);
    resp->readset = NULL;
}

void cvx_exec_stats(cvx_runtime_t *rt, cvx_exec_stats_t *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < 4; i++) out->calls[i] = atomic_load(&rt->calls[i]);
    out->mutation_retries = atomic_load(&rt->retries);
    out->failures = atomic_load(&rt->failures);
    if (rt->qcache)
        cvx__qcache_stats(rt->qcache, &out->cache_hits, &out->cache_misses, &out->cache_invalidations,
                          &out->cache_entries, &out->cache_bytes);
    if (rt->store) cvx_store_stats(rt->store, &out->store);
}

/* Sets a system error on resp with the "[Request ID]" header clients show. */
static int sys_error(cvx_response_t *resp, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int sys_error(cvx_response_t *resp, int code, const char *fmt, ...) {
    char msg[CVX_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    resp->r.status = code;
    cvx_buf_reset(&resp->r.message);
    cvx_buf_printf(&resp->r.message, "[Request ID: %s] Server Error\n%s", resp->request_id, msg);
    return code;
}

void cvx__response_set_not_durable(cvx_response_t *resp, const cvx_err_t *err) {
    cvx_buf_reset(&resp->r.value);
    cvx_buf_reset(&resp->r.logs);
    resp->r.nlogs = 0;
    resp->r.log_full = 0;
    resp->r.log_note = false;
    resp->r.has_data = false;
    resp->ts = 0; /* a commit that may be lost after a restart */
    sys_error(resp, CVX_E_IO, "%s", err->msg);
}

/* Adds the request-id header to a failure reported by the guest layer
 * (application errors keep their message: it is the user's). */
static void decorate_failure(cvx_response_t *resp) {
    if (resp->r.status == CVX_OK || resp->r.status == CVX_E_APPLICATION) return;
    cvx_buf_t msg = {0};
    cvx_buf_printf(&msg, "[Request ID: %s] Server Error\n", resp->request_id);
    cvx_buf_append(&msg, resp->r.message.data ? resp->r.message.data : "", resp->r.message.len);
    cvx_buf_free(&resp->r.message);
    resp->r.message = msg;
}

/* Request ids seed the RNG of queries and mutations, so they must not
 * repeat; a per-thread generator seeded from the OS avoids a system call
 * per request (splitmix64: full period, every output distinct). */
static void new_request_id(char out[40]) {
    static _Thread_local uint64_t state;
    static _Thread_local bool seeded;
    if (!seeded) {
        if (cvx_os_random(&state, sizeof state) != CVX_OK) state = cvx_monotonic_ns();
        seeded = true;
    }
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    uint8_t b[8];
    memcpy(b, &z, sizeof b);
    cvx_hex(b, sizeof b, out);
}

/* The action a nested call runs for: its logs are where the nested
 * call's go, within the same budget. */
typedef struct {
    cvx_runtime_t *rt;
    cvx_app_t *app;
    uint32_t depth;
    const cvx_abi_call_config_t *cfg;
    cvx_abi_result_t *res;
} nested_ctx_t;

static int call_depth(cvx_runtime_t *rt, const cvx_request_t *req, cvx_response_t *resp, uint32_t depth,
                      const nested_ctx_t *caller, uint64_t *defer_ts);

/* run_query / run_mutation / run_action from an action. */
static int nested_run(void *ctx, cvx_kind_t kind, const char *path, size_t path_len, const char *args_json,
                      size_t args_len, cvx_buf_t *out) {
    nested_ctx_t *n = ctx;
    cvx_request_t req = {.path = path,
                         .path_len = path_len,
                         .args_json = args_json,
                         .args_len = args_len,
                         .expect_kind = kind,
                         .allow_internal = true,
                         .app = n->app,
                         .identity = n->cfg->identity,
                         .identity_len = n->cfg->identity_len};
    cvx_response_t resp;
    memset(&resp, 0, sizeof resp);
    int rc = call_depth(n->rt, &req, &resp, n->depth + 1, n, NULL);
    /* Nested logs are the caller's logs too, failed calls' included: they
     * come back with the caller's result and count against its limits. */
    cvx_abi_append_nested_logs(n->cfg, n->res, &resp.r);
    cvx_buf_reset(out);
    if (rc == CVX_OK) {
        cvx_buf_append(out, resp.r.value.data, resp.r.value.len);
    } else {
        cvx_buf_append_str(out, "{\"message\":");
        cvx_buf_append_json_string(out, resp.r.message.data ? resp.r.message.data : "", resp.r.message.len);
        if (resp.r.has_data) {
            cvx_buf_append_str(out, ",\"data\":");
            cvx_buf_append(out, resp.r.data.data, resp.r.data.len);
        }
        cvx_buf_append_char(out, '}');
    }
    cvx_response_free(&resp);
    return rc == CVX_OK ? CVX_OK : rc == CVX_E_APPLICATION ? CVX_E_APPLICATION : CVX_E_UNCAUGHT;
}

const cvx_storage_config_t *cvx_runtime_storage(cvx_runtime_t *rt) { return &rt->storage; }

/* Ends a mutation attempt that will not commit. It read at the newest
 * written snapshot, which may not be durable yet: its answer (an error
 * that may quote what it read) waits until it is, and is replaced by the
 * I/O error if that snapshot never will be. The transaction ends first, so
 * that its hot stripes and read connection do not wait with it. */
static int abandon(cvx_runtime_t *rt, cvx_txn_t *txn, cvx_err_t *err) {
    uint64_t ts = cvx_txn_snapshot_ts(txn);
    cvx_txn_abort(txn);
    return cvx_store_wait_durable(rt->store, ts, err);
}

int cvx_exec_with_txn(cvx_runtime_t *rt, int (*fn)(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err),
                      void *arg, cvx_buf_t *out, cvx_err_t *err) {
    if (!rt->store) return cvx_err_set(err, CVX_E_INTERNAL, "no database is attached to this runtime");
    size_t start = out->len;
    for (uint32_t attempt = 1;; attempt++) {
        cvx_txn_t *txn = NULL;
        int rc = cvx_txn_begin(rt->store, CVX_TXN_WRITE, 0, &txn, err);
        if (rc) return rc;
        out->len = start;
        rc = fn(txn, arg, out, err);
        if (rc) {
            cvx_err_t werr;
            int wrc = abandon(rt, txn, &werr);
            if (wrc) {
                out->len = start;
                *err = werr;
            }
            return wrc ? wrc : rc;
        }
        uint64_t ts;
        rc = cvx_txn_commit(txn, &ts, err);
        if (rc != CVX_E_CONFLICT || attempt >= rt->limits.max_mutation_attempts) return rc;
    }
}

static int services_with_txn(void *ctx, int (*fn)(cvx_txn_t *, void *, cvx_buf_t *, cvx_err_t *), void *arg,
                             cvx_buf_t *out, cvx_err_t *err) {
    nested_ctx_t *n = ctx;
    return cvx_exec_with_txn(n->rt, fn, arg, out, err);
}

int cvx_exec_with_read_txn(cvx_runtime_t *rt, int (*fn)(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err),
                           void *arg, cvx_buf_t *out, cvx_err_t *err) {
    if (!rt->store) return cvx_err_set(err, CVX_E_INTERNAL, "no database is attached to this runtime");
    cvx_txn_t *txn = NULL;
    int rc = cvx_txn_begin(rt->store, CVX_TXN_READ, 0, &txn, err);
    if (!rc) rc = fn(txn, arg, out, err);
    cvx_txn_abort(txn);
    return rc;
}

static int services_with_read_txn(void *ctx, int (*fn)(cvx_txn_t *, void *, cvx_buf_t *, cvx_err_t *), void *arg,
                                  cvx_buf_t *out, cvx_err_t *err) {
    nested_ctx_t *n = ctx;
    return cvx_exec_with_read_txn(n->rt, fn, arg, out, err);
}

static int services_get_document(void *ctx, const char *id, size_t len, cvx_buf_t *out, cvx_err_t *err) {
    nested_ctx_t *n = ctx;
    return cvx_exec_read_document(n->rt, id, len, out, err);
}

/* A successful result against the function's return validator (declared
 * ones only: a Rust function's type vouches for its own result). The
 * result is replaced by the error, as Convex does. */
static int check_returns(const cvx_fn_t *fn, cvx_txn_t *txn, cvx_response_t *resp) {
    if (resp->r.status != CVX_OK || !cvx_abi_has_returns(fn)) return resp->r.status;
    cvx_err_t err;
    int rc = cvx_abi_validate_returns(fn, resp->r.value.data ? resp->r.value.data : "null", resp->r.value.len,
                                      txn ? cvx_txn_table_of : NULL, txn, &err);
    if (rc == CVX_OK) return CVX_OK;
    cvx_buf_reset(&resp->r.value);
    resp->r.status = rc;
    cvx_buf_reset(&resp->r.message);
    cvx_buf_append_str(&resp->r.message, err.msg);
    return rc;
}

/* The frozen clock of a query or mutation: whole milliseconds, like
 * Date.now() in Convex, so that it converts exactly to the nanoseconds of
 * WASI's clock_time_get and back. */
static double frozen_now_ms(void) { return (double)(cvx_now_ns() / 1000000); }

/* The cache key of a query call: the module (same code, same results),
 * the function, its arguments and who calls (a result may depend on the
 * identity: never shared across users). */
static void cache_key(cvx_app_t *app, const cvx_fn_t *fn, const cvx_request_t *req, cvx_buf_t *key) {
    cvx_buf_append_str(key, cvx_app_hash(app));
    cvx_buf_append(key, "", 1);
    cvx_buf_append_str(key, fn->path);
    cvx_buf_append(key, "", 1);
    cvx_buf_append(key, req->args_json, req->args_len);
    if (req->identity) {
        cvx_buf_append(key, "", 1);
        cvx_buf_append(key, req->identity, req->identity_len);
    }
}

static int run_query(cvx_runtime_t *rt, cvx_app_t *app, const cvx_fn_t *fn, const cvx_request_t *req,
                     const cvx_limits_t *lim, cvx_abi_call_config_t *cfg, cvx_response_t *resp) {
    cvx_err_t err;
    cvx_txn_t *txn = NULL;
    if (!rt->store) return sys_error(resp, CVX_E_INTERNAL, "no database is attached to this runtime");
    /* Reads at a given past snapshot, subscriptions (which need the read
     * set) and replays with a fixed request id (which seeds the guest's
     * RNG) run for real; everything else may come from the cache. */
    bool cacheable = rt->qcache && !req->snapshot_ts && !req->want_readset && !req->request_id && !req->journal;
    cvx_buf_t key = {0};
    if (cacheable) {
        cache_key(app, fn, req, &key);
        if (!key.oom && cvx__qcache_get(rt->qcache, key.data, key.len, &resp->r, &resp->ts)) {
            cvx_buf_free(&key);
            return CVX_OK;
        }
    }
    int rc = cvx_txn_begin(rt->store, CVX_TXN_READ, req->snapshot_ts, &txn, &err);
    if (rc) {
        cvx_buf_free(&key);
        return sys_error(resp, rc, "%s", err.msg);
    }
    resp->ts = cvx_txn_snapshot_ts(txn);
    cfg->txn = txn;
    cfg->now_ms = frozen_now_ms();
    cfg->journal = req->journal;
    rc = cvx_abi_invoke(app, fn, cfg, lim, req->args_json, req->args_len, &resp->r);
    rc = check_returns(fn, txn, resp);
    if (req->want_readset) resp->readset = cvx_txn_readset(txn);
    /* A paginated result depends on its journal too: not cached. Nor are
     * logs cut short by the budget of the action that ran the query: the
     * next caller has a budget of its own. */
    bool shared_cut = resp->r.log_full && (cfg->log_lines_used || cfg->log_bytes_used);
    if (cacheable && rc == CVX_OK && !key.oom && !resp->r.journal.len && !shared_cut) {
        cvx_readset_t *rs = cvx_txn_readset(txn);
        cvx__qcache_put(rt->qcache, key.data, key.len, resp->ts, rs, &resp->r);
        cvx_readset_free(rs);
    }
    cvx_buf_free(&key);
    cvx_txn_abort(txn);
    return rc;
}

/* Before a mutation runs again after a conflict: a random pause whose
 * bound doubles with each attempt (0.5 ms, 1 ms, ... up to 32 ms), so that
 * mutations contending for the same documents spread out instead of
 * colliding again. */
static void conflict_backoff(uint32_t attempt) {
    uint64_t bound_us = 250ull << CVX_MIN(attempt, 7u);
    uint64_t r = 0;
    if (cvx_os_random(&r, sizeof r) != CVX_OK) r = cvx_monotonic_ns();
    uint64_t us = r % bound_us;
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Optimistic concurrency alone can starve a mutation: on a hot document
 * the fastest attempts keep committing first. A mutation that conflicted
 * STARVE_AFTER times runs its next attempts alone: new attempts of this
 * runtime wait while one is starving, and the starving one waits for those
 * in flight to finish. So it commits unless a writer outside this runtime
 * interferes, and every mutation makes progress. */
#define STARVE_AFTER 4

static void attempt_begin(cvx_runtime_t *rt, bool alone) {
    pthread_mutex_lock(&rt->gate_mu);
    if (alone) {
        while (rt->active > 0 || rt->exclusive) pthread_cond_wait(&rt->gate_cv, &rt->gate_mu);
        rt->exclusive = true;
    } else {
        while (rt->starving > 0) pthread_cond_wait(&rt->gate_cv, &rt->gate_mu);
        rt->active++;
    }
    pthread_mutex_unlock(&rt->gate_mu);
}

static void attempt_end(cvx_runtime_t *rt, bool alone) {
    pthread_mutex_lock(&rt->gate_mu);
    if (alone) rt->exclusive = false;
    else rt->active--;
    pthread_cond_broadcast(&rt->gate_cv);
    pthread_mutex_unlock(&rt->gate_mu);
}

static void set_starving(cvx_runtime_t *rt, bool on) {
    pthread_mutex_lock(&rt->gate_mu);
    if (on) rt->starving++;
    else rt->starving--;
    pthread_cond_broadcast(&rt->gate_cv);
    pthread_mutex_unlock(&rt->gate_mu);
}

/* One attempt: a write transaction around the guest, then the commit.
 * *wait_ts: the ts this attempt's answer waits for, if it is the answer
 * (the commit's with `defer`, else the snapshot of a failure). */
static int mutation_attempt(cvx_runtime_t *rt, cvx_app_t *app, const cvx_fn_t *fn, const cvx_request_t *req,
                            const cvx_limits_t *lim, cvx_abi_call_config_t *cfg, cvx_response_t *resp, bool defer,
                            uint64_t *wait_ts, cvx_err_t *err) {
    cvx_txn_t *txn = NULL;
    int rc = cvx_txn_begin(rt->store, CVX_TXN_WRITE, 0, &txn, err);
    if (rc) return sys_error(resp, rc, "%s", err->msg);
    if (cvx_app_schema_validation(app)) {
        const cvx_table_def_t *tables;
        size_t n = cvx_app_tables(app, &tables);
        cvx_txn_set_schema(txn, tables, n);
    }
    cfg->txn = txn;
    cfg->now_ms = frozen_now_ms();
    rc = cvx_abi_invoke(app, fn, cfg, lim, req->args_json, req->args_len, &resp->r);
    rc = check_returns(fn, txn, resp);
    if (!rc && req->before_commit && (rc = req->before_commit(req->before_commit_ctx, txn, err)))
        sys_error(resp, rc, "%s", err->msg);
    if (!rc && req->idempotency_key &&
        (rc = cvx_txn_set_request(txn, req->idempotency_key, resp->r.value.data, resp->r.value.len, err)))
        sys_error(resp, rc, "%s", err->msg);
    uint64_t ts = 0, snapshot = cvx_txn_snapshot_ts(txn);
    if (rc) {
        /* A failed mutation writes nothing; its answer waits for what it
         * read (run_mutation_once, or complete.c with `defer`). The
         * transaction ends first, so that its hot stripes and read
         * connection do not wait with it. */
        *wait_ts = snapshot;
        cvx_txn_abort(txn);
        return rc;
    }
    rc = defer ? cvx_txn_commit_written(txn, &ts, err) : cvx_txn_commit(txn, &ts, err);
    if (rc == CVX_OK) {
        resp->ts = ts;
        *wait_ts = defer ? ts : 0;
        return rc;
    }
    /* If this is the answer (an error, or the last conflict), its logs
     * come from the snapshot: run_mutation_once holds it for that. */
    *wait_ts = snapshot;
    if (rc != CVX_E_CONFLICT) sys_error(resp, rc, "%s", err->msg);
    return rc;
}

static struct key_node **find_key(cvx_runtime_t *rt, const char *key) {
    struct key_node **p = &rt->keys;
    while (*p && strcmp((*p)->key, key) != 0) p = &(*p)->next;
    return p;
}

/* Claims an idempotency key, waiting while another call holds it. Returns
 * the node (NULL when out of memory: then the call runs unguarded, which
 * the store's unique request key still makes safe). */
static struct key_node *claim_key(cvx_runtime_t *rt, const char *key) {
    size_t n = strlen(key);
    struct key_node *k = cvx_malloc(sizeof *k + n + 1);
    if (!k) return NULL;
    memcpy(k->key, key, n + 1);
    pthread_mutex_lock(&rt->keys_mu);
    while (*find_key(rt, key)) pthread_cond_wait(&rt->keys_cv, &rt->keys_mu);
    k->next = rt->keys;
    rt->keys = k;
    pthread_mutex_unlock(&rt->keys_mu);
    return k;
}

static void release_key(cvx_runtime_t *rt, struct key_node *k) {
    if (!k) return;
    pthread_mutex_lock(&rt->keys_mu);
    struct key_node **p = find_key(rt, k->key);
    if (*p == k) *p = k->next;
    pthread_cond_broadcast(&rt->keys_cv);
    pthread_mutex_unlock(&rt->keys_mu);
    cvx_free(k);
}

static int run_mutation_once(cvx_runtime_t *rt, cvx_app_t *app, const cvx_fn_t *fn, const cvx_request_t *req,
                             const cvx_limits_t *lim, cvx_abi_call_config_t *cfg, cvx_response_t *resp,
                             uint64_t *defer_ts);

/* A mutation with an idempotency key runs at most once: a retry gets the
 * first run's result and commit ts. defer_ts: see call_depth. */
static int run_mutation(cvx_runtime_t *rt, cvx_app_t *app, const cvx_fn_t *fn, const cvx_request_t *req,
                        const cvx_limits_t *lim, cvx_abi_call_config_t *cfg, cvx_response_t *resp,
                        uint64_t *defer_ts) {
    if (!req->idempotency_key || !rt->store) return run_mutation_once(rt, app, fn, req, lim, cfg, resp, defer_ts);
    struct key_node *k = claim_key(rt, req->idempotency_key);
    bool found = false;
    uint64_t ts = 0;
    cvx_err_t err;
    cvx_buf_reset(&resp->r.value);
    int rc = cvx_store_find_request(rt->store, req->idempotency_key, &found, &ts, &resp->r.value, &err);
    if (rc) {
        rc = sys_error(resp, rc, "%s", err.msg);
    } else if (found) {
        /* No defer_ts to set: cvx_store_find_request returned only once
         * the recorded commit was durable. */
        resp->r.status = CVX_OK;
        resp->ts = ts;
        resp->attempts = 0;
    } else {
        rc = run_mutation_once(rt, app, fn, req, lim, cfg, resp, defer_ts);
    }
    release_key(rt, k);
    return rc;
}

static int run_mutation_once(cvx_runtime_t *rt, cvx_app_t *app, const cvx_fn_t *fn, const cvx_request_t *req,
                             const cvx_limits_t *lim, cvx_abi_call_config_t *cfg, cvx_response_t *resp,
                             uint64_t *defer_ts) {
    if (!rt->store) return sys_error(resp, CVX_E_INTERNAL, "no database is attached to this runtime");
    uint32_t max = rt->limits.max_mutation_attempts;
    bool starving = false;
    uint64_t wait_ts = 0;
    int rc;
    for (uint32_t attempt = 1;; attempt++) {
        cvx_err_t err;
        resp->attempts = attempt;
        attempt_begin(rt, starving);
        rc = mutation_attempt(rt, app, fn, req, lim, cfg, resp, defer_ts != NULL, &wait_ts, &err);
        attempt_end(rt, starving);
        if (rc != CVX_E_CONFLICT) break;
        atomic_fetch_add(&rt->retries, 1);
        if (attempt >= max) {
            rc = sys_error(resp, CVX_E_CONFLICT,
                           "mutation %s conflicted with concurrent writes %u times in a row; giving up. Reduce "
                           "contention on the documents it reads (%s)",
                           fn->path, attempt, err.msg);
            break;
        }
        if (attempt >= STARVE_AFTER && !starving) {
            starving = true;
            set_starving(rt, true);
        }
        if (!starving) conflict_backoff(attempt);
    }
    if (starving) set_starving(rt, false);
    if (defer_ts) {
        *defer_ts = wait_ts;
    } else if (rc != CVX_OK && wait_ts) {
        /* A failed attempt's answer (and logs) come from a snapshot that
         * may not be durable yet. */
        cvx_err_t werr;
        if (cvx_store_wait_durable(rt->store, wait_ts, &werr)) {
            cvx__response_set_not_durable(resp, &werr);
            rc = CVX_E_IO;
        }
    }
    return rc;
}

/* v.id checks of arguments, against the newest catalog: arguments are
 * checked before any transaction exists. */
static const char *store_table_of(void *store, const char *id, size_t len) {
    static _Thread_local char name[CVX_MAX_TABLE_NAME + 1];
    return store && cvx_store_id_table(store, id, len, name) ? name : NULL;
}

/* defer_ts: NULL, or a mutation returns once its commit is written, with
 * *defer_ts the ts its answer must wait for (0: none); complete.c waits. */
static int call_depth(cvx_runtime_t *rt, const cvx_request_t *req, cvx_response_t *resp, uint32_t depth,
                      const nested_ctx_t *caller, uint64_t *defer_ts) {
    uint64_t t0 = cvx_monotonic_ns();
    if (defer_ts) *defer_ts = 0;
    cvx_abi_result_reset(&resp->r);
    resp->kind = 0;
    resp->ts = 0;
    resp->attempts = 0;
    if (req->request_id) snprintf(resp->request_id, sizeof resp->request_id, "%s", req->request_id);
    else new_request_id(resp->request_id);

    size_t path_len = req->path_len ? req->path_len : (req->path ? strlen(req->path) : 0);
    /* The host's own queries (system.c): no app needed. */
    if (req->path && cvx__is_system_path(req->path, path_len)) {
        int rc = cvx__system_call(rt, req, path_len, resp);
        resp->duration_ms = (double)(cvx_monotonic_ns() - t0) / 1e6;
        return rc;
    }
    cvx_app_t *app = req->app;
    if (app) cvx_app_retain(app);
    else app = cvx_runtime_app(rt);
    if (!app) return sys_error(resp, CVX_E_NO_FUNCTION, "No functions are deployed yet; run `cvx deploy` or `cvx dev`");

    int rc;
    const cvx_fn_t *fn = cvx_app_find(app, req->path, path_len);
    if (!fn || (fn->internal && !req->allow_internal) || fn->http != req->http) {
        rc = sys_error(resp, CVX_E_NO_FUNCTION, "Could not find public function for '%.*s'. Did you forget to run `cvx deploy`?",
                       (int)path_len, req->path ? req->path : "");
        goto done;
    }
    resp->kind = fn->kind;
    if (req->expect_kind && req->expect_kind != fn->kind) {
        rc = sys_error(resp, CVX_E_NO_FUNCTION, "Trying to execute %s as %s, but it is defined as %s.", fn->path,
                       req->expect_kind == CVX_KIND_ACTION ? "an action" : req->expect_kind == CVX_KIND_QUERY ? "a query" : "a mutation",
                       fn->kind == CVX_KIND_ACTION ? "an action" : fn->kind == CVX_KIND_QUERY ? "a query" : "a mutation");
        goto done;
    }
    if (depth > rt->limits.max_call_depth) {
        rc = sys_error(resp, CVX_E_LIMIT, "function calls nest deeper than %u levels", rt->limits.max_call_depth);
        goto done;
    }
    atomic_fetch_add(&rt->calls[fn->kind], 1);

    /* Validate the arguments before any guest code runs. */
    const char *args = req->args_json ? req->args_json : "{}";
    size_t args_len = req->args_json ? req->args_len : 2;
    if (args_len > CVX_MAX_ARGS_SIZE) {
        rc = sys_error(resp, CVX_E_ARGS, "Arguments are %zu bytes, over the limit of %u bytes", args_len, CVX_MAX_ARGS_SIZE);
        goto done;
    }
    cvx_arena_t *arena = cvx_arena_new(4096);
    if (!arena) {
        rc = sys_error(resp, CVX_E_NOMEM, "out of memory");
        goto done;
    }
    cvx_value_t *argv = NULL;
    cvx_err_t err;
    rc = cvx_json_parse(arena, args, args_len, &argv, &err);
    if (rc == CVX_OK) rc = cvx_abi_validate_args(fn, argv, store_table_of, rt->store, &err);
    else err.code = rc = CVX_E_ARGS;
    cvx_arena_free(arena);
    if (rc) {
        rc = sys_error(resp, rc, "%s", err.msg);
        goto done;
    }

    cvx_limits_t lim = {.fuel = rt->limits.fuel[fn->kind],
                        .memory_bytes = rt->limits.memory_bytes[fn->kind],
                        .timeout_ms = rt->limits.timeout_ms[fn->kind]};
    nested_ctx_t nctx = {rt, app, depth, NULL, &resp->r};
    cvx_abi_services_t services = {&nctx, nested_run, services_with_txn, services_get_document, services_with_read_txn};
    cvx_abi_call_config_t cfg = {.kind = fn->kind,
                                 .request_id = resp->request_id,
                                 .max_log_lines = rt->limits.max_log_lines,
                                 .services = &services,
                                 .allow_private_fetch = rt->limits.allow_private_fetch,
                                 .storage = rt->storage.dir ? &rt->storage : NULL,
                                 .identity = req->identity,
                                 .identity_len = req->identity_len};
    nctx.cfg = &cfg;
    if (caller) cvx_abi_nested_log_budget(caller->cfg, caller->res, &cfg);
    cvx_request_t with_args = *req;
    with_args.args_json = args;
    with_args.args_len = args_len;
    switch (fn->kind) {
    case CVX_KIND_QUERY: rc = run_query(rt, app, fn, &with_args, &lim, &cfg, resp); break;
    case CVX_KIND_MUTATION: rc = run_mutation(rt, app, fn, &with_args, &lim, &cfg, resp, defer_ts); break;
    default:
        cfg.now_ms = (double)cvx_now_ns() / 1e6;
        cvx_abi_invoke(app, fn, &cfg, &lim, args, args_len, &resp->r);
        rc = check_returns(fn, NULL, resp);
        break;
    }
    /* Guest-layer failures get the request-id header here; system errors
     * raised above already have it. */
    if (rc != CVX_OK && resp->r.message.data && strncmp(resp->r.message.data, "[Request ID:", 12) != 0)
        decorate_failure(resp);

done:
    if (rc != CVX_OK) atomic_fetch_add(&rt->failures, 1);
    resp->r.status = rc;
    resp->duration_ms = (double)(cvx_monotonic_ns() - t0) / 1e6;
    cvx_app_release(app);
    return rc;
}

int cvx_exec_call(cvx_runtime_t *rt, const cvx_request_t *req, cvx_response_t *resp) {
    return call_depth(rt, req, resp, 0, NULL, NULL);
}

int cvx__exec_call_deferred(cvx_runtime_t *rt, const cvx_request_t *req, cvx_response_t *resp, uint64_t *wait_ts) {
    return call_depth(rt, req, resp, 0, NULL, wait_ts);
}

bool cvx_exec_call_cached(cvx_runtime_t *rt, const cvx_request_t *req, cvx_response_t *resp) {
    if (!rt->qcache || req->snapshot_ts || req->want_readset || req->app || req->http || req->request_id || req->journal ||
        (req->expect_kind && req->expect_kind != CVX_KIND_QUERY))
        return false;
    uint64_t t0 = cvx_monotonic_ns();
    cvx_app_t *app = cvx_runtime_app(rt);
    if (!app) return false;
    size_t path_len = req->path_len ? req->path_len : (req->path ? strlen(req->path) : 0);
    const cvx_fn_t *fn = cvx_app_find(app, req->path, path_len);
    bool hit = false;
    if (fn && fn->kind == CVX_KIND_QUERY && !fn->http && (!fn->internal || req->allow_internal)) {
        /* No argument validation: an entry exists only for argument bytes
         * that were validated when it was computed. */
        cvx_request_t with_args = *req;
        if (!with_args.args_json) {
            with_args.args_json = "{}";
            with_args.args_len = 2;
        }
        cvx_buf_t key = {0};
        cache_key(app, fn, &with_args, &key);
        cvx_abi_result_reset(&resp->r);
        hit = !key.oom && cvx__qcache_get(rt->qcache, key.data, key.len, &resp->r, &resp->ts);
        cvx_buf_free(&key);
    }
    if (hit) {
        resp->kind = CVX_KIND_QUERY;
        resp->attempts = 0;
        resp->r.status = CVX_OK;
        if (req->request_id) snprintf(resp->request_id, sizeof resp->request_id, "%s", req->request_id);
        else new_request_id(resp->request_id);
        atomic_fetch_add(&rt->calls[CVX_KIND_QUERY], 1);
        resp->duration_ms = (double)(cvx_monotonic_ns() - t0) / 1e6;
    }
    cvx_app_release(app);
    return hit;
}
