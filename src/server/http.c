/* The event loop: our HTTP/1.1 layer (http1.c) on libuv, one thread.
 * Requests are routed on this thread; anything that runs guest code or
 * touches the disk goes to the worker pool as a job. Finished jobs come
 * back through a mailbox (a mutex-guarded list plus a uv_async_t) and are
 * answered here. A job whose client disconnected is dropped: its request
 * holds no connection any more. */
#include "server/server_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_MODULE_BODY (256u << 20)

void cvx__header(cvx_buf_t *headers, const char *name, const char *value) {
    cvx_buf_append(headers, name, strlen(name) + 1);
    cvx_buf_append(headers, value, strlen(value) + 1);
}

void cvx__add_cors(const cvx__req_t *req, cvx_buf_t *h) {
    cvx_slice_t origin = cvx__req_header(req, "origin");
    if (origin.ptr) {
        cvx__header(h, "access-control-allow-origin", origin.ptr);
        cvx__header(h, "access-control-allow-credentials", "true");
        cvx__header(h, "vary", "Origin");
    } else {
        cvx__header(h, "access-control-allow-origin", "*");
    }
}

void cvx__send_json(cvx__req_t *req, int status, const char *body, size_t len) {
    cvx_buf_t h = {0};
    cvx__header(&h, "content-type", "application/json");
    cvx__add_cors(req, &h);
    cvx__respond(req, status, &h, body, len);
    cvx_buf_free(&h);
}

void cvx__send_json_take(cvx__req_t *req, int status, cvx_buf_t *body) {
    cvx_buf_t h = {0};
    cvx__header(&h, "content-type", "application/json");
    cvx__add_cors(req, &h);
    cvx__respond_take(req, status, &h, body);
    cvx_buf_free(&h);
}

void cvx__send_error(cvx__req_t *req, int status, const char *code, const char *message) {
    cvx_buf_t b = {0};
    cvx__error_json(&b, code, message);
    cvx__send_json(req, status, b.data ? b.data : "{}", b.data ? b.len : 2);
    cvx_buf_free(&b);
}

bool cvx__path_is(const cvx__req_t *req, const char *path) { return cvx_slice_eq_cstr(req->path, path); }

bool cvx__query_param(const cvx__req_t *req, const char *name, char *out, size_t cap) {
    const char *q = req->query.ptr, *end = req->query.ptr + req->query.len;
    size_t nlen = strlen(name);
    while (q && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - q) > nlen && memcmp(q, name, nlen) == 0 && q[nlen] == '=') {
            size_t o = 0;
            for (const char *p = q + nlen + 1; p < stop; p++) {
                if (o + 1 >= cap) return false;
                if (*p == '%' && stop - p >= 3 && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
                    char hex[3] = {p[1], p[2], 0};
                    out[o++] = (char)strtol(hex, NULL, 16);
                    p += 2;
                } else {
                    out[o++] = *p == '+' ? ' ' : *p;
                }
            }
            out[o] = '\0';
            return true;
        }
        q = stop + 1;
    }
    return false;
}

/* ---- jobs ------------------------------------------------------------------------- */

cvx__job_t *cvx__job_new(cvx_server_t *s) {
    cvx__job_t *j = cvx_calloc(1, sizeof *j);
    if (j) j->srv = s;
    return j;
}

void cvx__job_free(cvx__job_t *j) {
    if (!j) return;
    cvx_buf_free(&j->headers);
    cvx_free(j->path);
    cvx_free(j->args);
    cvx_free(j->file);
    if (j->token) explicit_bzero(j->token, j->token_len);
    cvx_free(j->token);
    cvx_free(j->identity);
    cvx_buf_free(&j->body);
    cvx_free(j);
}

void cvx__submit(cvx_server_t *s, cvx__req_t *req, cvx__job_t *j) {
    j->req = req;
    req->refs++;
    s->inflight++;
    cvx__pool_push(s, j);
}

void cvx__job_done(cvx_server_t *s, cvx__job_t *j) {
    j->next = NULL;
    pthread_mutex_lock(&s->mail_mu);
    if (s->done_tail) s->done_tail->next = j;
    else s->done_head = j;
    s->done_tail = j;
    if (!s->mail_closed) uv_async_send(&s->mail_async);
    pthread_mutex_unlock(&s->mail_mu);
}

static void answer(cvx__job_t *j) {
    cvx__req_t *req = j->req;
    if (!req->conn) return; /* the client went away */
    if (!j->raw) {
        if (!j->body.len || j->body.oom) {
            cvx__send_json(req, j->status ? j->status : 200, "{}", 2);
            return;
        }
        cvx__send_json_take(req, j->status ? j->status : 200, &j->body);
        return;
    }
    /* A response the job shaped itself. */
    cvx__add_cors(req, &j->headers);
    if (j->file) {
        if (cvx__respond_file(req, j->status, &j->headers, j->file, j->file_off, j->file_len) != 0)
            cvx__send_error(req, 500, "StorageError", "the stored file cannot be read");
        return;
    }
    if (j->headers.oom || j->body.oom) {
        cvx__send_error(req, 500, "OutOfMemory", "out of memory");
        return;
    }
    cvx__respond_take(req, j->status, &j->headers, &j->body);
}

static void maybe_finish_drain(cvx_server_t *s);

static void finish_job(cvx_server_t *s, cvx__job_t *j) {
    answer(j);
    cvx__req_release(j->req);
    s->inflight--;
    cvx__job_free(j);
}

/* The mailbox, on the loop thread. */
static void on_mail(uv_async_t *a) {
    cvx_server_t *s = a->data;
    pthread_mutex_lock(&s->mail_mu);
    cvx__job_t *jobs = s->done_head;
    s->done_head = s->done_tail = NULL;
    cvx__ws_t *wakes = s->wakes;
    s->wakes = NULL;
    pthread_mutex_unlock(&s->mail_mu);
    while (jobs) {
        cvx__job_t *j = jobs;
        jobs = j->next;
        finish_job(s, j);
    }
    while (wakes) {
        cvx__ws_t *w = wakes;
        wakes = cvx__ws_next_wake(w);
        cvx__ws_flush(w);
    }
    maybe_finish_drain(s);
}

/* ---- routing ---------------------------------------------------------------------- */

uint64_t cvx__body_limit(cvx_server_t *s, const cvx__req_t *req, bool *to_file) {
    *to_file = false;
    if (cvx__is_upload(req)) {
        *to_file = s->upload_dir[0] != '\0';
        return s->cfg.max_upload;
    }
    if (cvx__is_deploy(req)) return MAX_MODULE_BODY;
    return s->cfg.max_body;
}

bool cvx__authorize_head(cvx_server_t *s, const cvx__req_t *req, const char **code, const char **message) {
    if (cvx__req_method_is(req, "OPTIONS")) return false;
    bool admin_route = cvx__is_admin_path(req);
    if (admin_route && !cvx__is_admin(s, req)) {
        *code = "Unauthorized";
        *message = CVX__ADMIN_KEY_NEEDED;
        return true;
    }
    if (cvx__is_upload(req) && !cvx__upload_authorized(s, req)) {
        *code = "Unauthorized";
        *message = CVX__UPLOAD_URL_INVALID;
        return true;
    }
    return false;
}

bool cvx__budget_take(cvx_server_t *s, uint64_t n) {
    uint64_t cur = atomic_load(&s->buffered);
    do {
        if (cur + n > s->cfg.max_request_memory) return false;
    } while (!atomic_compare_exchange_weak(&s->buffered, &cur, cur + n));
    return true;
}

void cvx__budget_give(cvx_server_t *s, uint64_t n) {
    if (n) atomic_fetch_sub(&s->buffered, n);
}

static void preflight(cvx__req_t *req) {
    /* CORS preflight: allow what the client asks for. */
    cvx_buf_t h = {0};
    cvx__add_cors(req, &h);
    cvx__header(&h, "access-control-allow-methods", "GET, POST, OPTIONS, PATCH, DELETE, PUT");
    cvx_slice_t asked = cvx__req_header(req, "access-control-request-headers");
    cvx__header(&h, "access-control-allow-headers", asked.ptr ? asked.ptr : "Content-Type, Authorization, Convex-Client");
    cvx__header(&h, "access-control-max-age", "86400");
    cvx__respond(req, 204, &h, "", 0);
    cvx_buf_free(&h);
}

/* Routes of Convex's own backend that its CLI and dashboard call, and what
 * to use with cvx instead: a tool pointed at cvx gets a way forward, not a
 * bare 404. Matched by prefix. */
static const struct {
    const char *prefix, *instead;
} CONVEX_ROUTES[] = {
    {"/api/deploy2/", "`npx convex dev` and `npx convex deploy` push code through it; with cvx, deploy with `cvx deploy` "
                      "(or `cvx dev`, which also watches)"},
    {"/api/push_config", "deploy with `cvx deploy` (or `cvx dev`)"},
    {"/api/get_config_hashes", "deploy with `cvx deploy` (or `cvx dev`)"},
    {"/api/run_test_function", "run a function with `cvx run FUNCTION ARGS`"},
    {"/api/shapes2", "list tables with `cvx data` and documents with `cvx data TABLE`"},
    {"/api/import/", "cvx has no snapshot import yet: write documents with a mutation (`cvx run`)"},
    {"/api/perform_import", "cvx has no snapshot import yet: write documents with a mutation (`cvx run`)"},
    {"/api/export/", "cvx has no snapshot export yet: `cvx data TABLE` prints a table's documents"},
    {"/api/stream_function_logs", "follow function logs with `cvx logs`"},
    {"/api/app_metrics/", "follow function logs with `cvx logs`; counters are at GET /api/admin/stats"},
};

static void not_found(cvx__req_t *req) {
    /* The path as the message shows it: printable ASCII only (a client
     * may send any bytes), and not all of a long one. */
    char shown_path[201];
    size_t k = 0;
    for (; k < req->path.len && k < sizeof shown_path - 1; k++) {
        unsigned char ch = (unsigned char)req->path.ptr[k];
        shown_path[k] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    shown_path[k] = '\0';
    cvx_slice_t p = {shown_path, k};
    int shown = (int)k;
    char msg[900];
    for (size_t i = 0; i < CVX_ARRAY_LEN(CONVEX_ROUTES); i++) {
        size_t n = strlen(CONVEX_ROUTES[i].prefix);
        if (p.len >= n && !memcmp(p.ptr, CONVEX_ROUTES[i].prefix, n)) {
            snprintf(msg, sizeof msg, "%.*s is a route of Convex's own backend that cvx does not serve: %s", shown, p.ptr,
                     CONVEX_ROUTES[i].instead);
            cvx__send_error(req, 404, "NotFound", msg);
            return;
        }
    }
    snprintf(msg, sizeof msg,
             "no route %.*s on this cvx server: functions are called at /api/query, /api/mutation, /api/action and "
             "/api/run/<module>/<function>, HTTP actions are served under /http/, and the sync WebSocket is /api/sync",
             shown, p.ptr);
    cvx__send_error(req, 404, "NotFound", msg);
}

void cvx__handle_request(cvx_server_t *s, cvx__req_t *req) {
    if (cvx__req_method_is(req, "OPTIONS")) {
        preflight(req);
        return;
    }
    if (s->draining) {
        cvx__send_error(req, 503, "ServerShuttingDown", "the server is shutting down");
        return;
    }
    if (cvx__is_sync_path(req)) {
        cvx__ws_upgrade(s, req);
        return;
    }
    if (cvx__route_api(s, req) == 0) return;
    if (cvx__route_files(s, req) == 0) return;
    if (cvx__route_admin(s, req) == 0) return;
    not_found(req);
}

/* ---- the loop --------------------------------------------------------------------- */

static void on_close_rejected(uv_handle_t *h) { cvx_free(h); }

static void on_accept(uv_stream_t *listener, int status) {
    cvx_server_t *s = listener->data;
    if (status != 0) return;
    cvx__conn_t *c = cvx_calloc(1, sizeof *c);
    if (!c) return;
    uv_tcp_init(listener->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close_rejected);
        return;
    }
    /* Over the connection limit: refuse cleanly instead of exhausting
     * file descriptors or memory. */
    if (s->connections >= s->cfg.max_connections || s->draining) {
        uv_close((uv_handle_t *)&c->tcp, on_close_rejected);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_init(listener->loop, &c->timer);
    cvx__conn_accepted(s, c);
}

static void on_listener_closed(uv_handle_t *h) { (void)h; }

static void maybe_finish_drain(cvx_server_t *s) {
    if (s->draining && s->inflight == 0) uv_stop(&s->loop);
}

static void on_stop(uv_async_t *a) {
    cvx_server_t *s = a->data;
    if (s->draining) return;
    s->draining = true;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    maybe_finish_drain(s);
}

/* Runs just before the loop blocks in poll: what passed since the last
 * time, less what poll spent waiting, is one iteration's work. Wall clock,
 * so time the loop thread waited for a CPU counts too: clients wait either
 * way. */
static void on_busy_probe(uv_prepare_t *h) {
    cvx_server_t *s = h->data;
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(&s->loop);
    if (s->busy_last_ns) {
        uint64_t wall = now - s->busy_last_ns, waited = idle - s->busy_idle_ns;
        uint64_t busy = wall > waited ? wall - waited : 0;
        if (busy > s->busy_max_ns) s->busy_max_ns = busy;
        s->busy_total_ns += busy;
        s->busy_iterations++;
        static const uint64_t edges_ms[CVX__BUSY_BUCKETS - 1] = {1, 5, 20, 100};
        int b = 0;
        while (b < CVX__BUSY_BUCKETS - 1 && busy >= edges_ms[b] * 1000000u) b++;
        s->busy_hist[b]++;
    }
    s->busy_last_ns = now;
    s->busy_idle_ns = idle;
}

static int setup(cvx_server_t *s, cvx_err_t *err) {
    if (uv_loop_init(&s->loop) != 0) return cvx_err_set(err, CVX_E_INTERNAL, "cannot create the event loop");
    uv_loop_configure(&s->loop, UV_METRICS_IDLE_TIME);
    uv_prepare_init(&s->loop, &s->busy_probe);
    s->busy_probe.data = s;
    uv_prepare_start(&s->busy_probe, on_busy_probe);
    uv_unref((uv_handle_t *)&s->busy_probe);
    uv_async_init(&s->loop, &s->mail_async, on_mail);
    s->mail_async.data = s;
    uv_async_init(&s->loop, &s->stop_async, on_stop);
    s->stop_async.data = s;
    cvx__ws_init(s);

    /* The socket was bound by cvx_server_start (so the port is known
     * before the runtime is configured); the loop only listens on it. */
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_open(&s->listener, s->listen_fd);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_accept);
    if (rc != 0) return cvx_err_set(err, CVX_E_IO, "cannot listen on port %d: %s", s->port, uv_strerror(rc));
    s->listen_fd = -1; /* owned by the loop now */
    return CVX_OK;
}

int cvx__bind(cvx_server_t *s, cvx_err_t *err) {
    const char *host_name = s->cfg.host ? s->cfg.host : "127.0.0.1";
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    int family = strchr(host_name, ':') ? AF_INET6 : AF_INET;
    int rc = family == AF_INET6 ? uv_ip6_addr(host_name, s->cfg.port, (struct sockaddr_in6 *)&addr)
                                : uv_ip4_addr(host_name, s->cfg.port, (struct sockaddr_in *)&addr);
    if (rc != 0) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "invalid listen address %s", host_name);
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return cvx_err_set(err, CVX_E_IO, "cannot create a socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t alen = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (struct sockaddr *)&addr, alen) != 0) {
        int e = errno;
        close(fd);
        return cvx_err_set(err, CVX_E_IO, "cannot listen on %s:%d: %s%s", host_name, s->cfg.port, strerror(e),
                           e == EADDRINUSE ? " (is another server running? choose another --port)" : "");
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    getsockname(fd, (struct sockaddr *)&bound, &blen);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    s->listen_fd = fd;
    return CVX_OK;
}

static void close_walk(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void *loop_main(void *arg) {
    cvx_server_t *s = arg;
    int rc = setup(s, &s->start_err);
    pthread_mutex_lock(&s->ready_mu);
    s->start_rc = rc;
    s->ready = true;
    pthread_cond_signal(&s->ready_cv);
    pthread_mutex_unlock(&s->ready_mu);
    if (rc) return NULL;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

int cvx__http_start(cvx_server_t *s, cvx_err_t *err) {
    pthread_mutex_init(&s->ready_mu, NULL);
    pthread_cond_init(&s->ready_cv, NULL);
    pthread_mutex_init(&s->mail_mu, NULL);
    if (pthread_create(&s->loop_thread, NULL, loop_main, s) != 0)
        return cvx_err_set(err, CVX_E_INTERNAL, "cannot start the event loop thread");
    pthread_mutex_lock(&s->ready_mu);
    while (!s->ready) pthread_cond_wait(&s->ready_cv, &s->ready_mu);
    pthread_mutex_unlock(&s->ready_mu);
    if (s->start_rc) {
        pthread_join(s->loop_thread, NULL);
        *err = s->start_err;
        return s->start_rc;
    }
    return CVX_OK;
}

/* Stops accepting, waits until every in-flight job is answered, then closes
 * every connection and tears the loop down. Workers keep running until
 * then: they are what finishes the in-flight calls. */
void cvx__http_stop(cvx_server_t *s) {
    uv_async_send(&s->stop_async);
    pthread_join(s->loop_thread, NULL);
    uv_run(&s->loop, UV_RUN_NOWAIT); /* lets the last responses go out */
    pthread_mutex_lock(&s->mail_mu);
    s->mail_closed = true; /* late wakes from workers are dropped now */
    pthread_mutex_unlock(&s->mail_mu);
    cvx__ws_stop(s);
    while (s->conns) cvx__conn_close(s->conns);
    uv_walk(&s->loop, close_walk, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    /* Wakes that raced with the shutdown hold socket references. */
    on_mail(&s->mail_async);
    uv_loop_close(&s->loop);
}

void cvx__http_free(cvx_server_t *s) {
    /* After the workers: the last of them may still post a (dropped) wake. */
    pthread_mutex_destroy(&s->mail_mu);
    pthread_mutex_destroy(&s->ready_mu);
    pthread_cond_destroy(&s->ready_cv);
}
