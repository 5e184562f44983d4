/* Private to the server layer. */
#ifndef CVX_SERVER_INT_H
#define CVX_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "auth/auth.h"
#include "server/http_parse.h"
#include "server/server.h"
#include "sync/sync.h"

typedef struct cvx__job cvx__job_t;
typedef struct cvx__ws cvx__ws_t;
typedef struct cvx__conn cvx__conn_t;

/* ---- HTTP/1.1 (http1.c) ------------------------------------------------------------ */

/* cvx__req_t and the pure HTTP/1.1 parsing: http_parse.h. */

/* LINGER: answered and closing, reading what the client still sends
 * (see http1.c linger). */
enum { CVX__C_HEAD, CVX__C_BODY, CVX__C_HANDLING, CVX__C_WS, CVX__C_LINGER, CVX__C_CLOSED };

struct cvx__conn {
    uv_tcp_t tcp; /* first: the handle is the connection */
    uv_timer_t timer;
    uv_shutdown_t shutdown;   /* LINGER: our side's FIN */
    uint64_t lingered;        /* bytes dropped while lingering */
    cvx_server_t *srv;
    cvx__conn_t *prev, *next; /* all open connections */
    cvx_buf_t in;             /* received, not yet consumed from in_off */
    size_t in_off;
    int state;
    cvx__req_t *req;          /* the request being read or handled */
    bool chunked;
    cvx__chunked_t chunked_st;
    uint64_t body_left, body_limit;
    uint32_t writes;          /* uv_write requests in flight */
    uint64_t queued_total;    /* bytes ever handed to uv_write */
    uint64_t sent_at_arm;     /* of those, sent when the write timer was armed */
    size_t head_scan;         /* in.data offset the head search reached */
    bool close_after;         /* close once the response is out */
    int file_fd;              /* a download being streamed */
    uint64_t file_off, file_left;
    cvx__ws_t *ws;            /* after an upgrade */
    int handles;              /* open libuv handles (tcp, timer) */
};

void cvx__conn_accepted(cvx_server_t *s, cvx__conn_t *c);
void cvx__conn_close(cvx__conn_t *c);
void cvx__conn_resume(cvx__conn_t *c);
/* Answered, closing: sends our FIN, then reads and drops what the client
 * still sends for a while before closing, so that it sees the answer
 * rather than a reset. */
void cvx__conn_linger(cvx__conn_t *c);
/* Queues raw bytes (copied) on the connection. */
int cvx__conn_write(cvx__conn_t *c, const void *data, size_t len);
/* Queues a buffer's bytes, taking the buffer over (b is left empty). */
int cvx__conn_write_take(cvx__conn_t *c, cvx_buf_t *b);
/* Queues `head` (copied) then `body`, a cvx_malloc'd buffer taken over
 * (freed once written, or on failure). */
int cvx__conn_write_parts(cvx__conn_t *c, const void *head, size_t hlen, void *body, size_t blen);
cvx_slice_t cvx__req_header(const cvx__req_t *req, const char *lname);
bool cvx__req_method_is(const cvx__req_t *req, const char *m);
void cvx__req_release(cvx__req_t *req);
/* Sends the response; `headers` is "name\0value\0"... (may be NULL).
 * A no-op if the client is gone or it was already answered. */
void cvx__respond(cvx__req_t *req, int status, const cvx_buf_t *headers, const void *body, size_t len);
/* cvx__respond with a body the response takes over (no copy); body is
 * left empty. */
void cvx__respond_take(cvx__req_t *req, int status, const cvx_buf_t *headers, cvx_buf_t *body);
/* Appends {"code": code, "message": message}. */
void cvx__error_json(cvx_buf_t *b, const char *code, const char *message);
/* Streams len bytes of a file from off. -1 if it cannot be opened. */
int cvx__respond_file(cvx__req_t *req, int status, const cvx_buf_t *headers, const char *path, uint64_t off,
                      uint64_t len);

/* Hooks http1.c calls (http.c, ws.c). */
/* Whether a request may proceed past its head: routes that need the admin
 * key or an upload token are refused before their body is read. False,
 * or true with *code and *message set for a 401. */
bool cvx__authorize_head(cvx_server_t *s, const cvx__req_t *req, const char **code, const char **message);
/* The server-wide budget of memory held for clients' input (request
 * bodies, unfinished WebSocket messages): take fails when n more would
 * exceed cfg.max_request_memory. Any thread. */
bool cvx__budget_take(cvx_server_t *s, uint64_t n);
void cvx__budget_give(cvx_server_t *s, uint64_t n);
/* The largest body this request may carry; *to_file streams it to disk. */
uint64_t cvx__body_limit(cvx_server_t *s, const cvx__req_t *req, bool *to_file);
void cvx__handle_request(cvx_server_t *s, cvx__req_t *req);
void cvx__ws_on_data(cvx__conn_t *c);
void cvx__ws_on_written(cvx__conn_t *c);
void cvx__ws_closed(cvx__conn_t *c);

/* ---- jobs ------------------------------------------------------------------------- */

/* Work handed from the loop to a worker and back. */
/* The worker pool's lanes (pool.c): each kind of work has its own queue
 * and threads. */
enum { CVX__LANE_CALLS, CVX__LANE_ACTIONS, CVX__LANE_HTTP, CVX__LANES };

typedef struct {
    cvx_server_t *srv;
    pthread_t *threads;
    int threads_n;
    int slots;                     /* jobs running at once */
    int busy;                      /* slots taken */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cvx__job_t *head, *tail;
    bool stop;
} cvx__lane_t;

struct cvx__job {
    cvx__job_t *next;              /* worker queue, then the done list */
    cvx_server_t *srv;
    int lane;                      /* CVX__LANE_*: which workers run it */
    cvx__req_t *req;               /* holds a reference */
    void (*run)(cvx__job_t *j);    /* on a worker */
    void (*task)(void *arg);       /* a sync engine task (no request) */
    void *task_arg;
    /* input */
    cvx_kind_t expect;
    bool admin;
    bool want_ts;                  /* /api/query_ts: include the snapshot ts */
    uint64_t at_ts;
    char *path;
    char *args;
    size_t args_len;
    /* Who calls: a user's token still to check on the worker (owned,
     * wiped when freed), and the UserIdentity JSON it runs as (NULL:
     * anonymous). */
    char *token;
    size_t token_len;
    char *identity;
    size_t identity_len;
    /* output */
    int status;
    bool raw;              /* status + headers + body as set (else JSON) */
    cvx_buf_t headers;     /* raw: "name\0value\0" pairs */
    cvx_buf_t body;
    char *file;            /* raw: stream this file instead of body */
    uint64_t file_off, file_len;
    /* run posts the job itself (cvx__job_done), maybe from another thread
     * after it returned: exec's completion of a call */
    bool completes_itself;
};

typedef struct {
    uint64_t seq;
    double ts_ms;
    char request_id[40];
    char path[128];
    cvx_kind_t kind;
    int status;
    double duration_ms;
    char *logs;    /* JSON array of lines */
    char *message; /* error message or NULL */
} cvx__log_entry_t;

#define CVX__LOG_RING 4096
/* The ring's log text is bounded in bytes too: a line may be 32 KiB. */
#define CVX__LOG_BYTES (64u << 20)
#define CVX__LOG_BYTES_TEXT "64 MiB"


#define CVX__BUSY_BUCKETS 5

struct cvx_server {
    cvx_server_config_t cfg;
    char *data_dir;
    char admin_key[80];
    FILE *log;

    cvx_engine_t *engine;
    cvx_runtime_t *rt;     /* owns the store */
    cvx_scheduler_t *scheduler;
    char base_url[300];
    uint8_t storage_secret[32];
    pthread_mutex_t deploy_mu;

    /* loop thread */
    pthread_t loop_thread;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop_async;
    uv_async_t mail_async;  /* workers -> loop: done jobs, socket wakes */
    pthread_mutex_t mail_mu;
    cvx__job_t *done_head, *done_tail;
    cvx__ws_t *wakes;
    bool mail_closed;       /* the loop is gone: no more uv_async_send */
    cvx__conn_t *conns;     /* every open connection */
    char upload_dir[4200];  /* uploads stream here (the storage directory) */
    int port;
    int listen_fd;         /* bound by cvx__bind, handed to the loop */
    uint32_t connections;
    uint64_t inflight;     /* jobs not yet answered (loop thread) */
    /* How long the loop stays away from its sockets: each iteration's
     * busy time (wall clock minus time blocked in poll), the stall every
     * connection shares. Loop thread only; /api/admin/stats reports them. */
    uv_prepare_t busy_probe;
    uint64_t busy_last_ns, busy_idle_ns;
    uint64_t busy_max_ns, busy_total_ns, busy_iterations;
    uint64_t busy_hist[CVX__BUSY_BUCKETS]; /* < 1, 5, 20, 100 ms, and more */
    _Atomic uint64_t buffered; /* charged to the memory budget (cvx__budget_take) */
    bool draining;
    int start_rc;
    cvx_err_t start_err;
    pthread_mutex_t ready_mu;
    pthread_cond_t ready_cv;
    bool ready;

    /* workers (pool.c) */
    int nworkers;
    cvx__lane_t lanes[CVX__LANES];

    /* sync */
    cvx_sync_t *sync;
    cvx_auth_t *auth; /* the deployed app's auth providers */
    uv_timer_t ping_timer;

    /* call log for `cvx logs` */
    pthread_mutex_t log_mu;
    cvx__log_entry_t ring[CVX__LOG_RING];
    uint64_t next_seq;
    size_t log_bytes;      /* text held by the ring's entries */
    uint64_t log_trimmed;  /* entries below this seq lost their lines */
};

/* http.c */
int cvx__bind(cvx_server_t *s, cvx_err_t *err);
int cvx__http_start(cvx_server_t *s, cvx_err_t *err);
void cvx__http_stop(cvx_server_t *s);
/* Frees what the HTTP layer shares with the workers: after cvx__pool_stop. */
void cvx__http_free(cvx_server_t *s);
/* Appends the CORS headers for this request's Origin. */
void cvx__add_cors(const cvx__req_t *req, cvx_buf_t *headers);
/* Appends a "name\0value\0" header pair. */
void cvx__header(cvx_buf_t *headers, const char *name, const char *value);
void cvx__send_json(cvx__req_t *req, int status, const char *body, size_t len);
/* The same with a body the response takes over (no copy; body is left empty). */
void cvx__send_json_take(cvx__req_t *req, int status, cvx_buf_t *body);
void cvx__send_error(cvx__req_t *req, int status, const char *code, const char *message);
/* Queues a job for the workers; the response goes out when it is done. */
void cvx__submit(cvx_server_t *s, cvx__req_t *req, cvx__job_t *j);
cvx__job_t *cvx__job_new(cvx_server_t *s);
void cvx__job_free(cvx__job_t *j);
/* The value of ?name= in the query string, %-decoded; false if absent or
 * longer than cap - 1. */
bool cvx__query_param(const cvx__req_t *req, const char *name, char *out, size_t cap);
bool cvx__path_is(const cvx__req_t *req, const char *path);

#define CVX__ADMIN_KEY_NEEDED \
    "this route needs the admin key: Authorization: Convex <key> (see the data directory's admin_key)"
#define CVX__UPLOAD_URL_INVALID "the upload URL is invalid or expired; generate a new one"

/* api.c: client routes */
int cvx__route_api(cvx_server_t *s, cvx__req_t *req);
/* files.c: HTTP actions, file downloads and uploads */
int cvx__route_files(cvx_server_t *s, cvx__req_t *req);
bool cvx__is_upload(const cvx__req_t *req);
/* Whether the upload request carries a valid, unexpired token. */
bool cvx__upload_authorized(cvx_server_t *s, const cvx__req_t *req);

/* admin.c: admin routes and the call log */
int cvx__route_admin(cvx_server_t *s, cvx__req_t *req);
/* auth.c: who calls. */
/* Is [p, p+n) the admin key? In constant time: the key is a secret. */
bool cvx__admin_key_is(const cvx_server_t *s, const char *p, size_t n);
bool cvx__is_admin(cvx_server_t *s, const cvx__req_t *req);
/* On the loop: takes the call's Authorization header into j (j->admin
 * set first): a Bearer token to check on the worker, or the identity the
 * admin acts as. 0, or -1 with a 4xx sent. */
int cvx__job_auth(cvx_server_t *s, cvx__req_t *req, cvx__job_t *j);
/* On the worker: checks j's token into j->identity. A refused one is a
 * 401 set on j (false) when `refuse`, else the call runs anonymous (HTTP
 * actions of an app without providers: the header is their own). */
bool cvx__job_verify(cvx__job_t *j, bool refuse);
/* The sync engine's verify_token hook. */
int cvx__verify_token(void *ctx, const char *token, size_t len, cvx_buf_t *identity, int64_t *expires,
                      cvx_err_t *err);
/* Sets the providers of `app` (NULL: none) into `into` (NULL: the
 * server's), reading the environment variables its record names; why a
 * provider is off goes to `warnings` (may be NULL). */
int cvx__auth_apply(cvx_server_t *s, cvx_app_t *app, cvx_auth_t *into, cvx_buf_t *warnings, cvx_err_t *err);
/* Re-reads the deployed app's providers (its variables changed); a failure
 * is a warning in the log and keeps the providers as they were. */
void cvx__auth_refresh(cvx_server_t *s);
bool cvx__is_deploy(const cvx__req_t *req);
/* Routes only the admin key may use (refused from their head without it). */
bool cvx__is_admin_path(const cvx__req_t *req);
/* deploy.c: loads data/app.wasm (the last deployed app) at start; a
 * failure is a warning in the log, not a failed start. */
void cvx__load_saved_app(cvx_server_t *s);
void cvx__log_call(cvx_server_t *s, const char *path, const cvx_response_t *resp);

/* ws.c: the sync WebSocket */
bool cvx__is_sync_path(const cvx__req_t *req);
void cvx__ws_upgrade(cvx_server_t *s, cvx__req_t *req);
void cvx__ws_wake(void *ctx, cvx_sync_client_t *c, void *conn);
/* Loop thread: flush a woken socket (from the mailbox). */
void cvx__ws_flush(cvx__ws_t *w);
cvx__ws_t *cvx__ws_next_wake(cvx__ws_t *w);
void cvx__ws_init(cvx_server_t *s);
void cvx__ws_stop(cvx_server_t *s);

/* pool.c */
int cvx__pool_start(cvx_server_t *s, cvx_err_t *err);
void cvx__pool_push(cvx_server_t *s, cvx__job_t *j);
/* Threads the pool will start: each may hold a guest instance at once. */
int cvx__pool_threads(const cvx_server_t *s);
/* Worker: hands a finished job back to the loop. */
void cvx__job_done(cvx_server_t *s, cvx__job_t *j);
/* Runs fn(arg) on a worker (the sync engine's submit hook). */
void cvx__pool_task(void *server, cvx_kind_t kind, void (*fn)(void *), void *arg);
void cvx__pool_stop(cvx_server_t *s);

/* The response JSON of a function call (§3 of the protocol). */
void cvx__call_response_json(const cvx_response_t *resp, bool want_ts, cvx_buf_t *out);

#endif
