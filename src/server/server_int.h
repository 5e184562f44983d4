/* Private to the server layer. */
#ifndef CVX_SERVER_INT_H
#define CVX_SERVER_INT_H

#include <h2o.h>
#include <h2o/multithread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "server/server.h"
#include "store/store.h"
#include "sync/sync.h"

typedef struct cvx__job cvx__job_t;
typedef struct cvx__ws cvx__ws_t;

/* Work handed from the loop to a worker and back. `req` is touched only on
 * the loop thread and becomes NULL if the client goes away first. */
struct cvx__job {
    h2o_multithread_message_t msg; /* return trip to the loop */
    cvx__job_t *next;              /* worker queue */
    cvx_server_t *srv;
    h2o_req_t *req;
    cvx__job_t **ref;              /* slot in req's pool cleared on dispose */
    void (*run)(cvx__job_t *j);    /* on a worker */
    bool counted;                  /* an HTTP request awaiting its answer */
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
    cvx_buf_t input;               /* raw body for deploys */
    /* output */
    int status;
    bool raw;              /* status + headers + body as set (else JSON) */
    cvx_buf_t headers;     /* raw: "name\0value\0" pairs */
    cvx_buf_t body;
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
    h2o_globalconf_t h2o_config;
    h2o_context_t h2o_ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t done_receiver;
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
    h2o_multithread_receiver_t ws_receiver;
    uv_timer_t ping_timer;
    cvx__ws_t *sockets;

    /* call log for `cvx logs` */
    pthread_mutex_t log_mu;
    cvx__log_entry_t ring[CVX__LOG_RING];
    uint64_t next_seq;
};

/* http.c */
int cvx__bind(cvx_server_t *s, cvx_err_t *err);
int cvx__http_start(cvx_server_t *s, cvx_err_t *err);
void cvx__http_stop(cvx_server_t *s);
void cvx__add_cors(h2o_req_t *req);
void cvx__send_json(h2o_req_t *req, int status, const char *body, size_t len);
void cvx__send_error(h2o_req_t *req, int status, const char *code, const char *message);
/* Queues a job for the workers; the response goes out when it is done. */
void cvx__submit(cvx_server_t *s, h2o_req_t *req, cvx__job_t *j);
cvx__job_t *cvx__job_new(cvx_server_t *s);
void cvx__job_free(cvx__job_t *j);

/* api.c: client routes */
int cvx__route_api(cvx_server_t *s, h2o_req_t *req, h2o_iovec_t path);
/* files.c: HTTP actions, file downloads and uploads */
int cvx__route_files(cvx_server_t *s, h2o_req_t *req, h2o_iovec_t path);
/* Adds a response header to a raw job. */
void cvx__job_header(cvx__job_t *j, const char *name, const char *value);

/* admin.c: admin routes and the call log */
int cvx__route_admin(cvx_server_t *s, h2o_req_t *req, h2o_iovec_t path);
bool cvx__is_admin(cvx_server_t *s, h2o_req_t *req);
void cvx__log_call(cvx_server_t *s, const char *path, const cvx_response_t *resp);

/* ws.c: the sync WebSocket */
int cvx__ws_upgrade(cvx_server_t *s, h2o_req_t *req);
void cvx__ws_wake(void *ctx, cvx_sync_client_t *c, void *conn);
void cvx__ws_init(cvx_server_t *s);
void cvx__ws_close_all(cvx_server_t *s);

/* pool.c */
int cvx__pool_start(cvx_server_t *s, cvx_err_t *err);
void cvx__pool_push(cvx_server_t *s, cvx__job_t *j);
/* Runs fn(arg) on a worker (the sync engine's submit hook). */
void cvx__pool_task(void *server, void (*fn)(void *), void *arg);
void cvx__pool_stop(cvx_server_t *s);

/* The response JSON of a function call (§3 of the protocol). */
void cvx__call_response_json(const cvx_response_t *resp, bool want_ts, cvx_buf_t *out);

#endif
