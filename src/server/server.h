/*
 * server — the HTTP API (and, with the sync layer, the WebSocket protocol)
 * the official `convex` client speaks, plus the admin API `cvx deploy`,
 * `cvx data` and `cvx logs` use.
 *
 * Threads: one event-loop thread (HTTP/1.1 on libuv) owns every connection and
 * never runs guest code; worker threads run function calls and deploys in
 * separate lanes (queries and mutations; actions; HTTP actions) and hand
 * results back to the loop. A slow function therefore never stalls other
 * connections, and actions never starve queries.
 *
 * Resources: every connection and client is bounded (request head and
 * body, unanswered writes, subscriptions, calls in flight, unsent
 * messages) and so is their sum (cfg.max_request_memory, the sync
 * engine's outbox budget); docs/guide.md lists each bound. A mutation's worker does not wait for
 * its commit's fsync either: the loop holds the answer until the store
 * reports the commit durable (the store's sync thread wakes it).
 *
 * Lifetime: cvx_server_start returns once the server listens;
 * cvx_server_stop stops accepting, lets in-flight calls finish and their
 * responses go out, then closes the store. Every acknowledged write is
 * already durable when its response is sent.
 *
 * Data directory layout (the directory 0700, every file 0600): cvx.sqlite3
 * (the store), admin_key, app.wasm (the deployed module, reloaded at
 * start), modules/ (compiled code), storage/ (file blobs).
 */
#ifndef CVX_SERVER_H
#define CVX_SERVER_H

#include "exec/exec.h"
#include "util/util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cvx_server cvx_server_t;

typedef struct {
    const char *data_dir;   /* required */
    const char *host;       /* default "127.0.0.1" */
    int port;               /* default 3210; 0 = any free port */
    int workers;            /* default: 8 per CPU */
    cvx_exec_limits_t limits;
    size_t max_body;        /* function calls and HTTP actions; default 16 MiB */
    uint64_t max_upload;    /* file uploads (streamed to disk); default 1 GiB */
    uint32_t max_connections; /* default 20000 */
    uint32_t request_timeout_ms; /* receiving one request; default 10000 */
    uint32_t write_timeout_ms;   /* a client that reads nothing of what is
                                    sent to it for this long is closed;
                                    default 30000 */
    uint64_t max_request_memory; /* all clients' request bodies and
                                    unfinished WebSocket messages held in
                                    memory together; past it a request is
                                    refused with 503; default 512 MiB */
    int action_workers;          /* actions and HTTP actions running guest
                                    code at once, apart from the workers
                                    (an action waiting on fetch holds
                                    none); default 4 per CPU */
    uint32_t max_client_queries; /* subscriptions per WebSocket client;
                                    default 10000 */
    uint64_t max_outbox_bytes;   /* unsent sync messages, all clients
                                    together; default 1 GiB */
    const char *admin_key;  /* NULL: read or create data_dir/admin_key */
    size_t query_cache_bytes; /* query results kept until a commit touches
                                 what they read; 0 = 64 MiB, SIZE_MAX = no
                                 cache (every query runs) */
    bool log_calls;         /* one line per call on stderr */
    const char *public_url; /* base of file URLs; default http://host:port */
    FILE *log;              /* where server messages go; default stderr */
} cvx_server_config_t;

void cvx_server_config_default(cvx_server_config_t *cfg);

/* Starts the server in background threads. *out is NULL on failure
 * (address in use, data directory unusable, ...). */
int cvx_server_start(const cvx_server_config_t *cfg, cvx_server_t **out, cvx_err_t *err);
/* The port actually bound. */
int cvx_server_port(const cvx_server_t *s);
const char *cvx_server_admin_key(const cvx_server_t *s);
cvx_runtime_t *cvx_server_runtime(cvx_server_t *s);
/* Deploys a module in-process (what POST /api/deploy does). */
int cvx_server_deploy(cvx_server_t *s, const uint8_t *wasm, size_t len, cvx_buf_t *summary_json, cvx_err_t *err);
/* Graceful stop (see above) and free. NULL is a no-op. */
void cvx_server_stop(cvx_server_t *s);

/* Blocks until SIGINT or SIGTERM, for `cvx serve`. */
void cvx_server_wait_for_signal(void);

#ifdef __cplusplus
}
#endif
#endif
