/* The event loop: h2o (HTTP/1.1, keep-alive, request timeouts, body size
 * limits) on libuv, one thread. Handlers parse and route on this thread and
 * hand anything that runs guest code or touches the disk to the worker
 * pool; finished jobs come back through an h2o multithread queue and are
 * answered here. A job whose client disconnected is simply dropped: the
 * request's memory pool tells us (a dispose callback clears job->req). */
#include "server/server_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void add_header(h2o_req_t *req, const char *name, const char *value, size_t len) {
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value, len);
}

void cvx__add_cors(h2o_req_t *req) {
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (i >= 0) {
        h2o_iovec_t origin = req->headers.entries[i].value;
        add_header(req, "access-control-allow-origin", origin.base, origin.len);
        add_header(req, "access-control-allow-credentials", "true", 4);
        add_header(req, "vary", "Origin", 6);
    } else {
        add_header(req, "access-control-allow-origin", "*", 1);
    }
}

void cvx__send_json(h2o_req_t *req, int status, const char *body, size_t len) {
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : status == 400 ? "Bad Request" : status == 401 ? "Unauthorized"
                      : status == 404 ? "Not Found" : status == 413 ? "Payload Too Large" : "Error";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    cvx__add_cors(req);
    /* h2o_send_inline copies the body into the request's pool. */
    h2o_send_inline(req, body, len);
}

void cvx__send_error(h2o_req_t *req, int status, const char *code, const char *message) {
    cvx_buf_t b = {0};
    cvx_buf_append_str(&b, "{\"code\":");
    cvx_buf_append_json_string(&b, code, strlen(code));
    cvx_buf_append_str(&b, ",\"message\":");
    cvx_buf_append_json_string(&b, message, strlen(message));
    cvx_buf_append_char(&b, '}');
    cvx__send_json(req, status, b.data ? b.data : "{}", b.data ? b.len : 2);
    cvx_buf_free(&b);
}

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
    cvx_buf_free(&j->input);
    cvx_buf_free(&j->body);
    cvx_free(j);
}

static void on_req_dispose(void *p) {
    cvx__job_t *j = *(cvx__job_t **)p;
    if (j) j->req = NULL; /* the client is gone; the job will be dropped */
}

void cvx__submit(cvx_server_t *s, h2o_req_t *req, cvx__job_t *j) {
    j->req = req;
    j->counted = true;
    j->ref = h2o_mem_alloc_shared(&req->pool, sizeof *j->ref, on_req_dispose);
    *j->ref = j;
    s->inflight++;
    cvx__pool_push(s, j);
}

static void maybe_finish_drain(cvx_server_t *s);

/* Finished jobs, on the loop thread. */
static void on_jobs_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages) {
    cvx_server_t *s = (cvx_server_t *)((char *)receiver - offsetof(cvx_server_t, done_receiver));
    while (!h2o_linklist_is_empty(messages)) {
        cvx__job_t *j = H2O_STRUCT_FROM_MEMBER(cvx__job_t, msg.link, messages->next);
        h2o_linklist_unlink(&j->msg.link);
        if (j->req) {
            *j->ref = NULL;
            h2o_req_t *req = j->req;
            if (j->raw) {
                /* A response the job shaped itself: status, headers
                 * ("name\0value\0" pairs), body. */
                req->res.status = j->status;
                req->res.reason = j->status < 300 ? "OK" : j->status < 400 ? "Redirect" : "Error";
                for (size_t off = 0; off < j->headers.len;) {
                    const char *name = j->headers.data + off;
                    const char *value = name + strlen(name) + 1;
                    off = (size_t)(value - j->headers.data) + strlen(value) + 1;
                    char *n = h2o_mem_alloc_pool(&req->pool, strlen(name) + 1);
                    memcpy(n, name, strlen(name) + 1);
                    h2o_strtolower(n, strlen(n));
                    h2o_iovec_t v = h2o_strdup(&req->pool, value, strlen(value));
                    h2o_add_header_by_str(&req->pool, &req->res.headers, n, strlen(n), 0, NULL, v.base, v.len);
                }
                cvx__add_cors(req);
                h2o_send_inline(req, j->body.data ? j->body.data : "", j->body.len);
            } else {
                cvx__send_json(req, j->status ? j->status : 200, j->body.data ? j->body.data : "{}",
                               j->body.data ? j->body.len : 2);
            }
        }
        s->inflight--;
        cvx__job_free(j);
    }
    maybe_finish_drain(s);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req) {
    cvx_server_t *s = *(cvx_server_t **)(self + 1);
    h2o_iovec_t path = req->path_normalized;
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS"))) {
        /* CORS preflight: allow what the client asks for. */
        req->res.status = 200;
        req->res.reason = "OK";
        cvx__add_cors(req);
        add_header(req, "access-control-allow-methods", H2O_STRLIT("GET, POST, OPTIONS, PATCH, DELETE, PUT"));
        ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("access-control-request-headers"), -1);
        if (i >= 0) add_header(req, "access-control-allow-headers", req->headers.entries[i].value.base, req->headers.entries[i].value.len);
        else add_header(req, "access-control-allow-headers", H2O_STRLIT("Content-Type, Authorization, Convex-Client"));
        add_header(req, "access-control-max-age", H2O_STRLIT("86400"));
        h2o_send_inline(req, "", 0);
        return 0;
    }
    if (s->draining) {
        cvx__send_error(req, 503, "ServerShuttingDown", "the server is shutting down");
        return 0;
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/api/sync")) ||
        (path.len > 10 && !memcmp(path.base, "/api/", 5) && !memcmp(path.base + path.len - 5, "/sync", 5) &&
         !memchr(path.base + 5, '/', path.len - 10)))
        return cvx__ws_upgrade(s, req);
    if (cvx__route_api(s, req, path) == 0) return 0;
    if (cvx__route_files(s, req, path) == 0) return 0;
    if (cvx__route_admin(s, req, path) == 0) return 0;
    cvx__send_error(req, 404, "NotFound", "no such route");
    return 0;
}

/* h2o takes over the handle's `data` field, so the server is found
 * through the struct that embeds the handle. */
typedef struct {
    uv_tcp_t tcp;
    cvx_server_t *srv;
} conn_t;

static void on_close_conn(uv_handle_t *h) {
    conn_t *c = (conn_t *)h;
    c->srv->connections--;
    cvx_free(c);
}

static void on_close_rejected(uv_handle_t *h) { cvx_free(h); }

static void on_accept(uv_stream_t *listener, int status) {
    cvx_server_t *s = listener->data;
    if (status != 0) return;
    conn_t *cc = cvx_calloc(1, sizeof *cc);
    if (!cc) return;
    cc->srv = s;
    uv_tcp_t *conn = &cc->tcp;
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, on_close_rejected);
        return;
    }
    /* Over the connection limit: refuse cleanly instead of exhausting
     * file descriptors or memory. */
    if (s->connections >= s->cfg.max_connections || s->draining) {
        uv_close((uv_handle_t *)conn, on_close_rejected);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    s->connections++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, on_close_conn);
    h2o_accept(&s->accept_ctx, sock);
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

static int setup(cvx_server_t *s, cvx_err_t *err) {
    if (uv_loop_init(&s->loop) != 0) return cvx_err_set(err, CVX_E_INTERNAL, "cannot create the event loop");
    h2o_config_init(&s->h2o_config);
    s->h2o_config.max_request_entity_size = s->cfg.max_body;
    s->h2o_config.http1.req_timeout = s->cfg.request_timeout_ms;
    s->h2o_config.server_name = h2o_iovec_init(H2O_STRLIT("cvx"));
    h2o_hostconf_t *host = h2o_config_register_host(&s->h2o_config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof(h2o_handler_t) + sizeof(cvx_server_t *));
    h->on_req = on_req;
    *(cvx_server_t **)(h + 1) = s;
    h2o_context_init(&s->h2o_ctx, &s->loop, &s->h2o_config);
    s->accept_ctx.ctx = &s->h2o_ctx;
    s->accept_ctx.hosts = s->h2o_config.hosts;
    s->queue = h2o_multithread_create_queue(&s->loop);
    h2o_multithread_register_receiver(s->queue, &s->done_receiver, on_jobs_done);
    cvx__ws_init(s);
    uv_async_init(&s->loop, &s->stop_async, on_stop);
    s->stop_async.data = s;

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

/* Stops accepting, waits until every in-flight job is answered, then tears
 * the loop down. Workers keep running until then: they are what finishes
 * the in-flight calls. */
void cvx__http_stop(cvx_server_t *s) {
    uv_async_send(&s->stop_async);
    pthread_join(s->loop_thread, NULL);
    cvx__ws_close_all(s);
    /* Closing the remaining connections lets h2o free their state. */
    h2o_context_dispose(&s->h2o_ctx);
    h2o_multithread_unregister_receiver(s->queue, &s->done_receiver);
    uv_walk(&s->loop, close_walk, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    h2o_multithread_destroy_queue(s->queue);
    uv_walk(&s->loop, close_walk, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    h2o_config_dispose(&s->h2o_config);
    pthread_mutex_destroy(&s->ready_mu);
    pthread_cond_destroy(&s->ready_cv);
}
