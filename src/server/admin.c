/* The admin API, guarded by `Authorization: Convex <admin key>`:
 *
 *   POST /api/deploy                 body: the module (wasm, optionally gzip)
 *   GET  /api/admin/functions        the deployed metadata (codegen)
 *   GET  /api/admin/tables           tables with document counts
 *   GET  /api/admin/documents?table=T&limit=N&cursor=C
 *   GET  /api/admin/logs?after=SEQ   function calls and their log lines
 *   GET  /api/admin/stats            counters (subscription re-runs, retries, ...)
 *
 * Plus the call log those last routes read: a ring of the last calls, kept
 * in memory (logs are for watching, not an audit trail). */
#include "server/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MAX_MODULE_SIZE (256u << 20)

bool cvx__is_deploy(const cvx__req_t *req) { return cvx__path_is(req, "/api/deploy"); }

static size_t entry_bytes(const cvx__log_entry_t *e) {
    return (e->logs ? strlen(e->logs) : 0) + (e->message ? strlen(e->message) : 0);
}

/* Drops the log lines of the oldest entries until the ring's text fits
 * its byte budget (the entries stay: the calls happened). Under log_mu. */
static void trim_log(cvx_server_t *s) {
    uint64_t first = s->next_seq > CVX__LOG_RING ? s->next_seq - CVX__LOG_RING + 1 : 1;
    if (s->log_trimmed < first) s->log_trimmed = first;
    while (s->log_bytes > CVX__LOG_BYTES && s->log_trimmed <= s->next_seq) {
        cvx__log_entry_t *e = &s->ring[(s->log_trimmed - 1) % CVX__LOG_RING];
        s->log_trimmed++;
        if (!e->logs) continue; /* its error message, if any, is at most 16 MiB and stays */
        s->log_bytes -= strlen(e->logs);
        cvx_free(e->logs);
        e->logs = cvx_strdup("[\"[WARN] (log lines dropped: the server keeps the last " CVX__LOG_BYTES_TEXT
                             " of them)\"]");
        s->log_bytes += e->logs ? strlen(e->logs) : 0;
    }
}

void cvx__log_call(cvx_server_t *s, const char *path, const cvx_response_t *resp) {
    pthread_mutex_lock(&s->log_mu);
    cvx__log_entry_t *e = &s->ring[s->next_seq % CVX__LOG_RING];
    s->log_bytes -= entry_bytes(e);
    cvx_free(e->logs);
    cvx_free(e->message);
    memset(e, 0, sizeof *e);
    e->seq = ++s->next_seq;
    e->ts_ms = (double)(cvx_now_ns() / 1000) / 1000.0;
    snprintf(e->request_id, sizeof e->request_id, "%s", resp->request_id);
    snprintf(e->path, sizeof e->path, "%s", path);
    e->kind = resp->kind;
    e->status = resp->r.status;
    e->duration_ms = resp->duration_ms;
    e->logs = resp->r.logs.len ? cvx_strndup(resp->r.logs.data, resp->r.logs.len) : NULL;
    e->message = resp->r.status && resp->r.message.data ? cvx_strndup(resp->r.message.data, resp->r.message.len) : NULL;
    s->log_bytes += entry_bytes(e);
    trim_log(s);
    pthread_mutex_unlock(&s->log_mu);
    if (s->cfg.log_calls || (resp->r.status != CVX_OK && resp->r.status != CVX_E_APPLICATION && resp->r.status != CVX_E_UNCAUGHT &&
                             resp->r.status != CVX_E_ARGS && resp->r.status != CVX_E_NO_FUNCTION)) {
        fprintf(s->log, "[%s] %s %s %.2fms %s\n", resp->request_id, resp->kind ? cvx_kind_name(resp->kind) : "call",
                path, resp->duration_ms, resp->r.status ? cvx_code_name(resp->r.status) : "ok");
        fflush(s->log);
    }
}

static int inflate_all(const uint8_t *in, size_t len, cvx_buf_t *out, cvx_err_t *err) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK) return cvx_err_set(err, CVX_E_NOMEM, "cannot start decompression");
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    int zr = Z_OK;
    while (zr != Z_STREAM_END) {
        if (cvx_buf_reserve(out, 1 << 20)) {
            inflateEnd(&z);
            return cvx_err_set(err, CVX_E_NOMEM, "out of memory decompressing the module");
        }
        z.next_out = (Bytef *)out->data + out->len;
        z.avail_out = (uInt)(out->cap - out->len - 1);
        size_t before = z.avail_out;
        zr = inflate(&z, Z_NO_FLUSH);
        out->len += before - z.avail_out;
        if (zr != Z_OK && zr != Z_STREAM_END) {
            inflateEnd(&z);
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "deploy body is not valid gzip data");
        }
        if (out->len > MAX_MODULE_SIZE) {
            inflateEnd(&z);
            return cvx_err_set(err, CVX_E_LIMIT, "module is larger than %u MiB", MAX_MODULE_SIZE >> 20);
        }
        if (zr == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
            inflateEnd(&z);
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "deploy body is truncated gzip data");
        }
    }
    inflateEnd(&z);
    return CVX_OK;
}

static void run_deploy(cvx__job_t *j) {
    cvx_err_t err;
    cvx_buf_t wasm = {0};
    const uint8_t *bytes = (const uint8_t *)j->req->body.data;
    size_t len = j->req->body.len;
    int rc = CVX_OK;
    if (len >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
        rc = inflate_all(bytes, len, &wasm, &err);
        bytes = (const uint8_t *)wasm.data;
        len = wasm.len;
    }
    cvx_buf_t summary = {0};
    if (rc == CVX_OK) rc = cvx_server_deploy(j->srv, bytes, len, &summary, &err);
    if (rc == CVX_OK) {
        j->status = 200;
        cvx_buf_append(&j->body, summary.data, summary.len);
    } else {
        j->status = 400;
        cvx__error_json(&j->body, rc == CVX_E_BAD_MODULE ? "InvalidModule" : "DeployFailed", err.msg);
    }
    cvx_buf_free(&summary);
    cvx_buf_free(&wasm);
}

static void run_functions(cvx__job_t *j) {
    cvx_app_t *app = cvx_runtime_app(j->srv->rt);
    j->status = 200;
    cvx_buf_append_str(&j->body, app ? cvx_app_metadata_json(app) : "{\"functions\":[],\"schema\":null}");
    cvx_app_release(app);
}

static void run_tables(cvx__job_t *j) {
    cvx_err_t err;
    if (cvx_exec_list_tables(j->srv->rt, &j->body, &err)) {
        cvx_buf_reset(&j->body);
        j->status = 500;
        cvx__error_json(&j->body, "StoreError", err.msg);
    } else {
        j->status = 200;
    }
}

/* GET: every variable; POST {"changes": [...]}: set and remove, then every
 * variable. Values are secrets: they never reach the log. */
static void run_env(cvx__job_t *j) {
    cvx_err_t err;
    bool post = cvx__req_method_is(j->req, "POST");
    int rc = cvx_exec_env(j->srv->rt, post ? j->req->body.data : NULL, post ? j->req->body.len : 0, &j->body, &err);
    if (rc) {
        cvx_buf_reset(&j->body);
        j->status = rc == CVX_E_INVALID_ARGUMENT || rc == CVX_E_LIMIT || rc == CVX_E_INVALID_VALUE ? 400 : 500;
        cvx__error_json(&j->body, rc == CVX_E_LIMIT ? "LimitExceeded" : j->status == 400 ? "BadRequest" : "StoreError",
                        err.msg);
    } else {
        j->status = 200;
        /* Providers may take their issuer from a variable. */
        if (post) cvx__auth_refresh(j->srv);
    }
}

static void run_documents(cvx__job_t *j) {
    cvx_err_t err;
    /* j->path = table, j->args = cursor (may be NULL), j->at_ts = limit */
    if (cvx_exec_read_table(j->srv->rt, j->path, j->args, (int64_t)j->at_ts, &j->body, &err)) {
        cvx_buf_reset(&j->body);
        j->status = 400;
        cvx__error_json(&j->body, "BadRequest", err.msg);
    } else {
        j->status = 200;
    }
}

static void send_logs(cvx_server_t *s, cvx__req_t *req) {
    char after_s[32] = "0";
    cvx__query_param(req, "after", after_s, sizeof after_s);
    uint64_t after = strtoull(after_s, NULL, 10);
    cvx_buf_t b = {0};
    pthread_mutex_lock(&s->log_mu);
    uint64_t first = s->next_seq > CVX__LOG_RING ? s->next_seq - CVX__LOG_RING + 1 : 1;
    if (after + 1 > first) first = after + 1;
    cvx_buf_printf(&b, "{\"next\":%llu,\"entries\":[", (unsigned long long)s->next_seq);
    for (uint64_t seq = first; seq <= s->next_seq; seq++) {
        const cvx__log_entry_t *e = &s->ring[(seq - 1) % CVX__LOG_RING];
        if (seq != first) cvx_buf_append_char(&b, ',');
        cvx_buf_printf(&b, "{\"seq\":%llu,\"ts\":%.3f,\"requestId\":\"%s\",\"path\":", (unsigned long long)e->seq, e->ts_ms,
                       e->request_id);
        cvx_buf_append_json_string(&b, e->path, strlen(e->path));
        cvx_buf_printf(&b, ",\"kind\":\"%s\",\"status\":\"%s\",\"durationMs\":%.3f,\"logLines\":%s",
                       e->kind ? cvx_kind_name(e->kind) : "call", e->status ? cvx_code_name(e->status) : "OK",
                       e->duration_ms, e->logs ? e->logs : "[]");
        if (e->message) {
            cvx_buf_append_str(&b, ",\"errorMessage\":");
            cvx_buf_append_json_string(&b, e->message, strlen(e->message));
        }
        cvx_buf_append_char(&b, '}');
    }
    pthread_mutex_unlock(&s->log_mu);
    cvx_buf_append_str(&b, "]}");
    cvx__send_json(req, 200, b.data, b.len);
    cvx_buf_free(&b);
}

/* The server's counters (loop thread: reads the loop's own fields). */
static void send_stats(cvx_server_t *s, cvx__req_t *req) {
    cvx_sync_stats_t ss;
    cvx_sync_stats(s->sync, &ss);
    cvx_exec_stats_t es;
    cvx_exec_stats(s->rt, &es);
    const cvx_store_stats_t st = es.store;
    cvx_buf_t b = {0};
    cvx_buf_printf(&b,
                   "{\"sync\":{\"subscriptions\":%llu,\"clients\":%llu,\"queryRuns\":%llu,\"transitions\":%llu,"
                   "\"commitsSeen\":%llu,\"droppedClients\":%llu,\"outboxBytes\":%llu},"
                   "\"exec\":{\"queries\":%llu,\"mutations\":%llu,\"actions\":%llu,\"mutationRetries\":%llu,"
                   "\"failures\":%llu,\"cacheHits\":%llu,\"cacheMisses\":%llu,\"cacheInvalidations\":%llu,"
                   "\"cacheEntries\":%zu,\"cacheBytes\":%zu},"
                   "\"store\":{\"commits\":%llu,\"conflicts\":%llu,\"docsRead\":%llu,\"docsWritten\":%llu,"
                   "\"groups\":%llu,\"groupWriteMs\":%.1f,\"syncs\":%llu,\"syncMs\":%.1f,\"docCacheHits\":%llu,\"docCacheMisses\":%llu,"
                   "\"docCacheEntries\":%zu,\"docCacheBytes\":%zu,\"rangeCacheHits\":%llu,\"rangeCacheMisses\":%llu,"
                   "\"rangeCacheEntries\":%zu,\"rangeCacheBytes\":%zu},"
                   "\"loop\":{\"iterations\":%llu,\"busyMs\":%.1f,\"busyMaxMs\":%.2f,"
                   "\"busyUnder1ms\":%llu,\"busy1to5ms\":%llu,\"busy5to20ms\":%llu,\"busy20to100ms\":%llu,"
                   "\"busyOver100ms\":%llu},"
                   "\"connections\":%u,\"bufferedBytes\":%llu}",
                   (unsigned long long)ss.subscriptions, (unsigned long long)ss.clients,
                   (unsigned long long)ss.query_runs, (unsigned long long)ss.transitions,
                   (unsigned long long)ss.commits_seen, (unsigned long long)ss.dropped_clients,
                   (unsigned long long)ss.outbox_bytes,
                   (unsigned long long)es.calls[1], (unsigned long long)es.calls[2], (unsigned long long)es.calls[3],
                   (unsigned long long)es.mutation_retries, (unsigned long long)es.failures,
                   (unsigned long long)es.cache_hits, (unsigned long long)es.cache_misses,
                   (unsigned long long)es.cache_invalidations, es.cache_entries, es.cache_bytes,
                   (unsigned long long)st.commits, (unsigned long long)st.conflicts, (unsigned long long)st.docs_read,
                   (unsigned long long)st.docs_written, (unsigned long long)st.groups, (double)st.group_ns / 1e6,
                   (unsigned long long)st.syncs, (double)st.sync_ns / 1e6,
                   (unsigned long long)st.doc_cache_hits, (unsigned long long)st.doc_cache_misses,
                   st.doc_cache_entries, st.doc_cache_bytes, (unsigned long long)st.range_cache_hits,
                   (unsigned long long)st.range_cache_misses, st.range_cache_entries, st.range_cache_bytes,
                   (unsigned long long)s->busy_iterations, (double)s->busy_total_ns / 1e6,
                   (double)s->busy_max_ns / 1e6, (unsigned long long)s->busy_hist[0],
                   (unsigned long long)s->busy_hist[1], (unsigned long long)s->busy_hist[2],
                   (unsigned long long)s->busy_hist[3], (unsigned long long)s->busy_hist[4],
                   s->connections, (unsigned long long)atomic_load(&s->buffered));
    cvx__send_json(req, 200, b.data, b.len);
    cvx_buf_free(&b);
}

/* Convex's route for `npx convex env set/remove`: the same body as POST
 * /api/admin/env ({"changes": [{"name", "value": string or null}]}). */
static bool is_convex_env(const cvx__req_t *req) {
    return cvx__path_is(req, "/api/update_environment_variables") ||
           cvx__path_is(req, "/api/v1/update_environment_variables");
}

bool cvx__is_admin_path(const cvx__req_t *req) {
    return cvx__is_deploy(req) || is_convex_env(req) ||
           (req->path.len >= 11 && memcmp(req->path.ptr, "/api/admin/", 11) == 0);
}

int cvx__route_admin(cvx_server_t *s, cvx__req_t *req) {
    if (!cvx__is_admin_path(req)) return -1;
    if (!cvx__is_admin(s, req)) {
        cvx__send_error(req, 401, "Unauthorized", CVX__ADMIN_KEY_NEEDED);
        return 0;
    }
    cvx__job_t *j = cvx__job_new(s);
    if (!j) {
        cvx__send_error(req, 500, "OutOfMemory", "out of memory");
        return 0;
    }
    if (cvx__is_deploy(req)) {
        if (!cvx__req_method_is(req, "POST") || req->body.len == 0) {
            cvx__job_free(j);
            cvx__send_error(req, 400, "BadRequest", "POST the module (wasm or gzip-compressed wasm) as the body");
            return 0;
        }
        j->run = run_deploy;
    } else if (cvx__path_is(req, "/api/admin/functions")) {
        j->run = run_functions;
    } else if (cvx__path_is(req, "/api/admin/tables")) {
        j->run = run_tables;
    } else if (cvx__path_is(req, "/api/admin/documents")) {
        char table[128], limit[32] = "100", cursor[1024];
        if (!cvx__query_param(req, "table", table, sizeof table)) {
            cvx__job_free(j);
            cvx__send_error(req, 400, "BadRequest", "use /api/admin/documents?table=<name>[&limit=N][&cursor=C]");
            return 0;
        }
        cvx__query_param(req, "limit", limit, sizeof limit);
        j->path = cvx_strdup(table);
        if (cvx__query_param(req, "cursor", cursor, sizeof cursor) && cursor[0]) j->args = cvx_strdup(cursor);
        long n = strtol(limit, NULL, 10);
        j->at_ts = (uint64_t)(n < 1 ? 1 : n > 10000 ? 10000 : n);
        j->run = run_documents;
    } else if (cvx__path_is(req, "/api/admin/env") || is_convex_env(req)) {
        bool post = cvx__req_method_is(req, "POST");
        if ((!post && !cvx__req_method_is(req, "GET")) || (post && req->body.len == 0)) {
            cvx__job_free(j);
            cvx__send_error(req, 400, "BadRequest",
                            "GET /api/admin/env lists the variables; POST {\"changes\": [{\"name\", \"value\": string "
                            "or null}]} sets and removes them");
            return 0;
        }
        j->run = run_env;
    } else if (cvx__path_is(req, "/api/admin/stats")) {
        cvx__job_free(j);
        send_stats(s, req);
        return 0;
    } else if (cvx__path_is(req, "/api/admin/logs")) {
        cvx__job_free(j);
        send_logs(s, req);
        return 0;
    } else {
        cvx__job_free(j);
        cvx__send_error(req, 404, "NotFound", "no such admin route");
        return 0;
    }
    cvx__submit(s, req, j);
    return 0;
}
