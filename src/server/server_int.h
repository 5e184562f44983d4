/* Private to the server layer. */
#ifndef CVX_SERVER_INT_H
#define CVX_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "server/server.h"
#include "store/store.h"
#include "sync/sync.h"

typedef struct cvx__job cvx__job_t;
typedef struct cvx__ws cvx__ws_t;
typedef struct cvx__conn cvx__conn_t;

/* ---- HTTP/1.1 (http1.c) ------------------------------------------------------------ */

#define CVX__MAX_HEADERS 100

typedef struct {
    cvx_slice_t name;  /* lower-cased */
    cvx_slice_t value; /* NUL-terminated, surrounding blanks trimmed */
} cvx__hdr_t;

/* One request. Created and freed on the loop thread; reference-counted
 * because a job on a worker may outlive the connection (then `conn` is
 * NULL and the answer is dropped). While a job holds it, the loop does not
 * touch its fields, so the worker may read the head and body. */
typedef struct {
    int refs;
    cvx__conn_t *conn;
    cvx_server_t *srv;
    cvx_slice_t method, target, path, query; /* slices of `head` */
    int minor;                               /* HTTP/1.<minor> */
    cvx__hdr_t hdrs[CVX__MAX_HEADERS];
    size_t nhdrs;
    char *head;
    cvx_buf_t body;       /* in memory, unless streamed to body_fd */
    int body_fd;          /* -1, or an upload's temporary file */
    char body_path[4200]; /* its path; cleared if the file was adopted */
    uint64_t body_len;
    bool head_only;       /* HEAD: no body in the response */
    bool responded;
} cvx__req_t;

enum { CVX__C_HEAD, CVX__C_BODY, CVX__C_HANDLING, CVX__C_WS, CVX__C_CLOSED };

struct cvx__conn {
    uv_tcp_t tcp; /* first: the handle is the connection */
    uv_timer_t timer;
    cvx_server_t *srv;
    cvx__conn_t *prev, *next; /* all open connections */
    cvx_buf_t in;             /* received, not yet consumed from in_off */
    size_t in_off;
    int state;
    cvx__req_t *req;          /* the request being read or handled */
    bool chunked;
    int chunk_state;
    uint64_t chunk_left, body_left, body_limit;
    uint32_t writes;          /* uv_write requests in flight */
    uint64_t write_bytes;     /* bytes queued since the last completion */
    bool close_after;         /* close once the response is out */
    int file_fd;              /* a download being streamed */
    uint64_t file_off, file_left;
    cvx__ws_t *ws;            /* after an upgrade */
    int handles;              /* open libuv handles (tcp, timer) */
};

void cvx__conn_accepted(cvx_server_t *s, cvx__conn_t *c);
void cvx__conn_close(cvx__conn_t *c);
void cvx__conn_resume(cvx__conn_t *c);
/* Queues raw bytes (copied) on the connection. */
int cvx__conn_write(cvx__conn_t *c, const void *data, size_t len);
uint64_t cvx__conn_pending_write_bytes(const cvx__conn_t *c);
cvx_slice_t cvx__req_header(const cvx__req_t *req, const char *lname);
bool cvx__req_method_is(const cvx__req_t *req, const char *m);
void cvx__req_release(cvx__req_t *req);
/* Sends the response; `headers` is "name\0value\0"... (may be NULL).
 * A no-op if the client is gone or it was already answered. */
void cvx__respond(cvx__req_t *req, int status, const cvx_buf_t *headers, const void *body, size_t len);
/* Appends {"code": code, "message": message}. */
void cvx__error_json(cvx_buf_t *b, const char *code, const char *message);
/* Streams len bytes of a file from off. -1 if it cannot be opened. */
int cvx__respond_file(cvx__req_t *req, int status, const cvx_buf_t *headers, const char *path, uint64_t off,
                      uint64_t len);

/* Hooks http1.c calls (http.c, ws.c). */
/* The largest body this request may carry; *to_file streams it to disk. */
uint64_t cvx__body_limit(cvx_server_t *s, const cvx__req_t *req, bool *to_file);
void cvx__handle_request(cvx_server_t *s, cvx__req_t *req);
void cvx__ws_on_data(cvx__conn_t *c);
void cvx__ws_on_written(cvx__conn_t *c);
void cvx__ws_closed(cvx__conn_t *c);

/* ---- jobs ------------------------------------------------------------------------- */

/* Work handed from the loop to a worker and back. */
struct cvx__job {
    cvx__job_t *next;              /* worker queue, then the done list */
    cvx_server_t *srv;
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
    /* output */
    int status;
    bool raw;              /* status + headers + body as set (else JSON) */
    cvx_buf_t headers;     /* raw: "name\0value\0" pairs */
    cvx_buf_t body;
    char *file;            /* raw: stream this file instead of body */
    uint64_t file_off, file_len;
    uint64_t wait_ts;      /* answer once this commit ts is durable (0: now) */
    char request_id[40];   /* for the error that replaces it if it never is */
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

struct cvx_server {
    cvx_server_config_t cfg;
    char *data_dir;
    char admin_key[80];
    FILE *log;

    cvx_engine_t *engine;
    cvx_store_t *store;
    cvx_runtime_t *rt;
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
    /* Answers waiting for their commit to be durable (loop thread); the
     * store's durability hook wakes the mailbox while there are any. */
    cvx__job_t *parked_head, *parked_tail;
    atomic_bool want_durable;
    cvx__ws_t *wakes;
    bool mail_closed;       /* the loop is gone: no more uv_async_send */
    cvx__conn_t *conns;     /* every open connection */
    char upload_dir[4200];  /* uploads stream here (the storage directory) */
    int port;
    int listen_fd;         /* bound by cvx__bind, handed to the loop */
    uint32_t connections;
    uint64_t inflight;     /* jobs not yet answered (loop thread) */
    bool draining;
    int start_rc;
    cvx_err_t start_err;
    pthread_mutex_t ready_mu;
    pthread_cond_t ready_cv;
    bool ready;

    /* workers */
    pthread_t *workers;
    int nworkers;
    pthread_mutex_t jobs_mu;
    pthread_cond_t jobs_cv;
    cvx__job_t *jobs_head, *jobs_tail;
    bool workers_stop;

    /* sync */
    cvx_sync_t *sync;
    uv_timer_t ping_timer;

    /* call log for `cvx logs` */
    pthread_mutex_t log_mu;
    cvx__log_entry_t ring[CVX__LOG_RING];
    uint64_t next_seq;
};

/* http.c */
int cvx__bind(cvx_server_t *s, cvx_err_t *err);
int cvx__http_start(cvx_server_t *s, cvx_err_t *err);
void cvx__http_stop(cvx_server_t *s);
/* Appends the CORS headers for this request's Origin. */
void cvx__add_cors(const cvx__req_t *req, cvx_buf_t *headers);
/* Appends a "name\0value\0" header pair. */
void cvx__header(cvx_buf_t *headers, const char *name, const char *value);
void cvx__send_json(cvx__req_t *req, int status, const char *body, size_t len);
void cvx__send_error(cvx__req_t *req, int status, const char *code, const char *message);
/* Queues a job for the workers; the response goes out when it is done. */
void cvx__submit(cvx_server_t *s, cvx__req_t *req, cvx__job_t *j);
cvx__job_t *cvx__job_new(cvx_server_t *s);
void cvx__job_free(cvx__job_t *j);
/* The value of ?name= in the query string, %-decoded; false if absent or
 * longer than cap - 1. */
bool cvx__query_param(const cvx__req_t *req, const char *name, char *out, size_t cap);
bool cvx__path_is(const cvx__req_t *req, const char *path);

/* api.c: client routes */
int cvx__route_api(cvx_server_t *s, cvx__req_t *req);
/* files.c: HTTP actions, file downloads and uploads */
int cvx__route_files(cvx_server_t *s, cvx__req_t *req);
bool cvx__is_upload(const cvx__req_t *req);

/* admin.c: admin routes and the call log */
int cvx__route_admin(cvx_server_t *s, cvx__req_t *req);
bool cvx__is_admin(cvx_server_t *s, const cvx__req_t *req);
bool cvx__is_deploy(const cvx__req_t *req);
/* deploy.c: loads data/app.wasm (the last deployed app) at start; a
 * failure is a warning in the log, not a failed start. */
void cvx__load_saved_app(cvx_server_t *s);
void cvx__log_call(cvx_server_t *s, const char *path, const cvx_response_t *resp);
/* A logged call's answer became an error after all (its commit could not
 * be made durable): its entry says so. */
void cvx__log_amend(cvx_server_t *s, const char *request_id, int status, const char *message);

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
/* Worker: hands a finished job back to the loop. */
void cvx__job_done(cvx_server_t *s, cvx__job_t *j);
/* Runs fn(arg) on a worker (the sync engine's submit hook). */
void cvx__pool_task(void *server, void (*fn)(void *), void *arg);
void cvx__pool_stop(cvx_server_t *s);

/* The response JSON of a function call (§3 of the protocol). */
void cvx__call_response_json(const cvx_response_t *resp, bool want_ts, cvx_buf_t *out);

#endif
