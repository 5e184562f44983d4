/* HTTP/1.1 over libuv: framing, keep-alive, limits, responses.
 *
 * Why our own (docs/decisions.md): a request's body limit depends on its
 * route (16 MiB for function calls, more for file uploads streamed to
 * disk), and must be enforced from the headers, before the body is read;
 * downloads must stream from disk. The framing is small and strict:
 *
 *  - a request head is at most 64 KiB and 100 headers; anything malformed
 *    is answered 400 and the connection closed;
 *  - Content-Length and chunked bodies; both at once, conflicting lengths
 *    or other transfer codings are refused (request smuggling);
 *  - one request at a time per connection: reading pauses while it is
 *    handled, pipelined bytes wait in the buffer;
 *  - a request must arrive within the request timeout (slow or half-open
 *    clients), an idle keep-alive connection closes after it too.
 *
 * Everything here runs on the event-loop thread. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD (64u << 10)
/* A closing connection reads (and drops) what still comes for at most
 * this long; past this many bytes it stops reading, and TCP holds the
 * client back until the time is up, so that a client streaming a refused
 * body costs the loop a bounded read, not its bandwidth (a 250 MiB body
 * per attempt once took half a core). */
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (1u << 20)
#define FILE_CHUNK (256u << 10)

static const char *reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* ---- requests --------------------------------------------------------------------- */

cvx_slice_t cvx__req_header(const cvx__req_t *req, const char *lname) {
    size_t n = strlen(lname);
    for (size_t i = 0; i < req->nhdrs; i++)
        if (req->hdrs[i].name.len == n && memcmp(req->hdrs[i].name.ptr, lname, n) == 0) return req->hdrs[i].value;
    return cvx_slice(NULL, 0);
}

bool cvx__req_method_is(const cvx__req_t *req, const char *m) { return cvx_slice_eq_cstr(req->method, m); }

void cvx__req_release(cvx__req_t *req) {
    if (!req || --req->refs > 0) return;
    cvx__budget_give(req->srv, req->charged);
    if (req->body_fd >= 0) close(req->body_fd);
    if (req->body_path[0]) unlink(req->body_path);
    cvx_buf_free(&req->body);
    cvx_free(req->head);
    cvx_free(req);
}

/* ---- connections ----------------------------------------------------------------- */

typedef struct {
    uv_write_t w;
    cvx__conn_t *conn;
    char *head;
    char *body;
    bool last; /* the response's final write */
} write_t;

static void process(cvx__conn_t *c);

static void on_timeout(uv_timer_t *t);

static void start_timer(cvx__conn_t *c) {
    uv_timer_start(&c->timer, on_timeout, c->srv->cfg.request_timeout_ms, 0);
}

/* While a response or WebSocket frames are being written, the timer
 * watches the write queue instead: a client that stops reading closes
 * after the write timeout without progress, not never. */
static uint64_t bytes_sent(const cvx__conn_t *c) { return c->queued_total - c->tcp.write_queue_size; }

static void arm_write_timer(cvx__conn_t *c) {
    c->sent_at_arm = bytes_sent(c);
    uv_timer_start(&c->timer, on_timeout, c->srv->cfg.write_timeout_ms, 0);
}

static void on_timeout(uv_timer_t *t) {
    cvx__conn_t *c = t->data;
    if (c->state == CVX__C_LINGER) {
        cvx__conn_close(c);
        return;
    }
    if ((c->state == CVX__C_HANDLING || c->state == CVX__C_WS) && c->writes > 0) {
        if (bytes_sent(c) > c->sent_at_arm) {
            arm_write_timer(c); /* slow, but reading */
            return;
        }
        fprintf(c->srv->log, "cvx: closing a connection that read nothing for %u ms (%zu bytes unsent)\n",
                c->srv->cfg.write_timeout_ms, c->tcp.write_queue_size);
        fflush(c->srv->log);
        cvx__conn_close(c);
        return;
    }
    if (c->state == CVX__C_HANDLING || c->state == CVX__C_WS) return; /* nothing to time */
    /* A request that did not arrive in time: answer if we still can,
     * then close. An idle keep-alive connection just closes. */
    if (c->state == CVX__C_BODY || (c->state == CVX__C_HEAD && c->in.len > c->in_off)) {
        static const char msg[] = "HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    cvx__conn_close(c);
}

/* Leaving HEAD/BODY: the request timer stops; a write still in flight
 * (a 100 Continue) is watched by the write timer instead. */
static void stop_request_timer(cvx__conn_t *c) {
    uv_timer_stop(&c->timer);
    if (c->writes > 0) arm_write_timer(c);
}

static void on_closed(uv_handle_t *h) {
    cvx__conn_t *c = h->data;
    if (--c->handles > 0) return;
    cvx_buf_free(&c->in);
    cvx_free(c);
}

void cvx__conn_close(cvx__conn_t *c) {
    if (c->state == CVX__C_CLOSED) return;
    c->state = CVX__C_CLOSED;
    cvx_server_t *s = c->srv;
    if (c->ws) cvx__ws_closed(c);
    if (c->req) {
        c->req->conn = NULL; /* a job still holding it will drop its answer */
        cvx__req_release(c->req);
        c->req = NULL;
    }
    if (c->file_fd >= 0) close(c->file_fd);
    c->file_fd = -1;
    if (c->prev) c->prev->next = c->next;
    else if (s->conns == c) s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->connections--;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_closed);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    cvx__conn_t *c = h->data;
    (void)suggested;
    if (cvx_buf_reserve(&c->in, 65536)) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
    cvx__conn_t *c = st->data;
    (void)buf;
    if (n < 0) {
        cvx__conn_close(c);
        return;
    }
    if (n == 0) return;
    c->in.len += (size_t)n;
    if (c->state == CVX__C_LINGER) {
        c->lingered += c->in.len;
        c->in.len = c->in_off = 0;
        if (c->lingered > LINGER_MAX_BYTES) uv_read_stop((uv_stream_t *)&c->tcp);
        return;
    }
    if (c->state == CVX__C_WS) cvx__ws_on_data(c);
    else process(c);
}

static void pause_reading(cvx__conn_t *c) { uv_read_stop((uv_stream_t *)&c->tcp); }
void cvx__conn_resume(cvx__conn_t *c) { uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read); }

/* Writes raw bytes (copied); `last` ends the current response. */
static void on_written(uv_write_t *w, int status);

/* `owned`: body is a cvx_malloc'd buffer the write takes over (freed when
 * written), not a copy: a multi-MiB answer is not copied on the loop. */
static int write_bufs(cvx__conn_t *c, const char *head, size_t hlen, const void *body, size_t blen, bool owned,
                      bool last) {
    write_t *w = cvx_calloc(1, sizeof *w);
    char *h = hlen ? cvx_malloc(hlen) : NULL;
    char *b = owned ? (char *)body : blen ? cvx_malloc(blen) : NULL;
    if (!w || (hlen && !h) || (blen && !b)) {
        cvx_free(w);
        cvx_free(h);
        cvx_free(b);
        cvx__conn_close(c);
        return -1;
    }
    if (hlen) memcpy(h, head, hlen);
    if (blen && !owned) memcpy(b, body, blen);
    w->conn = c;
    w->head = h;
    w->body = b;
    w->last = last;
    uv_buf_t bufs[2];
    int nb = 0;
    if (hlen) bufs[nb++] = uv_buf_init(h, (unsigned)hlen);
    if (blen) bufs[nb++] = uv_buf_init(b, (unsigned)blen);
    c->writes++;
    c->queued_total += hlen + blen;
    if (uv_write(&w->w, (uv_stream_t *)&c->tcp, bufs, (unsigned)nb, on_written) != 0) {
        c->writes--;
        cvx_free(h);
        cvx_free(b);
        cvx_free(w);
        cvx__conn_close(c);
        return -1;
    }
    if ((c->state == CVX__C_HANDLING || c->state == CVX__C_WS) && !uv_is_active((uv_handle_t *)&c->timer))
        arm_write_timer(c);
    return 0;
}

static int write_raw(cvx__conn_t *c, const char *head, size_t hlen, const void *body, size_t blen, bool last) {
    return write_bufs(c, head, hlen, body, blen, false, last);
}

int cvx__conn_write(cvx__conn_t *c, const void *data, size_t len) { return write_raw(c, data, len, NULL, 0, false); }

int cvx__conn_write_take(cvx__conn_t *c, cvx_buf_t *b) {
    size_t len = 0;
    char *data = b->oom ? NULL : cvx_buf_detach(b, &len);
    cvx_buf_free(b);
    if (!data) {
        cvx__conn_close(c);
        return -1;
    }
    return write_bufs(c, NULL, 0, data, len, true, false);
}

int cvx__conn_write_parts(cvx__conn_t *c, const void *head, size_t hlen, void *body, size_t blen) {
    return write_bufs(c, head, hlen, body, blen, true, false);
}

/* The response is out: next request (or close). */
/* Closing right after an answer would make the kernel reset the
 * connection if the client is still sending (a body refused from its
 * head), and a reset can destroy the answer before the client reads it.
 * So: send our FIN, read and drop what still comes for a while, then
 * close. */
void cvx__conn_linger(cvx__conn_t *c) {
    c->state = CVX__C_LINGER;
    c->in.len = c->in_off = 0;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, NULL) != 0) {
        cvx__conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
    cvx__conn_resume(c);
}

static void finish_response(cvx__conn_t *c) {
    bool close_it = c->close_after;
    if (c->req) {
        cvx__req_release(c->req);
        c->req = NULL;
    }
    if (close_it) {
        cvx__conn_linger(c);
        return;
    }
    c->state = CVX__C_HEAD;
    c->head_scan = 0;
    /* Keep unread (pipelined) bytes; drop the rest. */
    memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
    c->in.len -= c->in_off;
    c->in_off = 0;
    start_timer(c);
    cvx__conn_resume(c);
    if (c->in.len) process(c);
}

static void send_file_chunk(cvx__conn_t *c);

static void on_written(uv_write_t *uw, int status) {
    write_t *w = (write_t *)uw;
    cvx__conn_t *c = w->conn;
    bool last = w->last;
    cvx_free(w->head);
    cvx_free(w->body);
    cvx_free(w);
    c->writes--;
    if (c->state == CVX__C_CLOSED) return;
    if (status != 0) {
        cvx__conn_close(c);
        return;
    }
    if (c->writes == 0 && (c->state == CVX__C_WS || c->state == CVX__C_HANDLING)) uv_timer_stop(&c->timer);
    if (c->state == CVX__C_WS) {
        cvx__ws_on_written(c);
        return;
    }
    if (c->file_fd >= 0) {
        send_file_chunk(c);
        return;
    }
    if (last && c->writes == 0) finish_response(c);
}

static void send_file_chunk(cvx__conn_t *c) {
    size_t n = (size_t)CVX_MIN(c->file_left, FILE_CHUNK);
    char *buf = cvx_malloc(n ? n : 1);
    ssize_t got = buf ? pread(c->file_fd, buf, n, (off_t)c->file_off) : -1;
    if (got <= 0 && n > 0) {
        cvx_free(buf);
        cvx__conn_close(c); /* the headers are out: all we can do is cut it */
        return;
    }
    c->file_off += (uint64_t)got;
    c->file_left -= (uint64_t)got;
    bool last = c->file_left == 0;
    if (last) {
        close(c->file_fd);
        c->file_fd = -1;
    }
    write_raw(c, NULL, 0, buf, (size_t)got, last);
    cvx_free(buf);
}

/* Builds the status line and headers. `headers` is "name\0value\0"... */
static void build_head(cvx_buf_t *out, int status, const cvx_buf_t *headers, uint64_t len, bool close_it) {
    cvx_buf_printf(out, "HTTP/1.1 %d %s\r\ncontent-length: %llu\r\n", status, reason(status), (unsigned long long)len);
    cvx_buf_append_str(out, close_it ? "connection: close\r\n" : "connection: keep-alive\r\n");
    cvx_buf_append_str(out, "server: cvx\r\n");
    for (size_t off = 0; headers && off < headers->len;) {
        const char *name = headers->data + off;
        const char *value = name + strlen(name) + 1;
        off = (size_t)(value - headers->data) + strlen(value) + 1;
        cvx_buf_printf(out, "%s: %s\r\n", name, value);
    }
    cvx_buf_append_str(out, "\r\n");
}

static bool wants_close(const cvx__req_t *req) {
    cvx_slice_t conn = cvx__req_header(req, "connection");
    if (conn.ptr && conn.len == 5 && !strncasecmp(conn.ptr, "close", 5)) return true;
    if (req->minor == 0) return !(conn.ptr && conn.len == 10 && !strncasecmp(conn.ptr, "keep-alive", 10));
    return false;
}

static void respond(cvx__req_t *req, int status, const cvx_buf_t *headers, const void *body, size_t len, bool owned) {
    cvx__conn_t *c = req->conn;
    if (!c || req->responded) {
        if (owned) cvx_free((void *)body);
        return;
    }
    req->responded = true;
    c->close_after = c->close_after || wants_close(req) || c->srv->draining;
    cvx_buf_t head = {0};
    build_head(&head, status, headers, len, c->close_after);
    if (head.oom || req->head_only) {
        if (owned) cvx_free((void *)body);
        if (head.oom) {
            cvx_buf_free(&head);
            cvx__conn_close(c);
            return;
        }
        body = NULL;
        len = 0;
        owned = false;
    }
    write_bufs(c, head.data, head.len, body, len, owned, true);
    cvx_buf_free(&head);
}

void cvx__respond(cvx__req_t *req, int status, const cvx_buf_t *headers, const void *body, size_t len) {
    respond(req, status, headers, body, len, false);
}

void cvx__respond_take(cvx__req_t *req, int status, const cvx_buf_t *headers, cvx_buf_t *body) {
    size_t len = 0;
    char *data = body->len && !body->oom ? cvx_buf_detach(body, &len) : NULL;
    cvx_buf_free(body);
    respond(req, status, headers, data, len, data != NULL);
}

int cvx__respond_file(cvx__req_t *req, int status, const cvx_buf_t *headers, const char *path, uint64_t off, uint64_t len) {
    cvx__conn_t *c = req->conn;
    if (!c || req->responded) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    req->responded = true;
    c->close_after = c->close_after || wants_close(req) || c->srv->draining;
    cvx_buf_t head = {0};
    build_head(&head, status, headers, len, c->close_after);
    if (req->head_only || len == 0) {
        close(fd);
        write_raw(c, head.data, head.len, NULL, 0, true);
    } else {
        c->file_fd = fd;
        c->file_off = off;
        c->file_left = len;
        write_raw(c, head.data, head.len, NULL, 0, false);
    }
    cvx_buf_free(&head);
    return 0;
}

/* An error before or instead of handling: answer and close. */
static void fail_conn(cvx__conn_t *c, int status, const char *msg) {
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\nconnection: close\r\n\r\n",
                     status, reason(status), strlen(msg));
    c->close_after = true;
    c->state = CVX__C_HANDLING;
    pause_reading(c);
    stop_request_timer(c);
    write_raw(c, head, (size_t)n, msg, strlen(msg), true);
}

void cvx__error_json(cvx_buf_t *b, const char *code, const char *message) {
    cvx_buf_append_str(b, "{\"code\":");
    cvx_buf_append_json_string(b, code, strlen(code));
    cvx_buf_append_str(b, ",\"message\":");
    cvx_buf_append_json_string(b, message, strlen(message));
    cvx_buf_append_char(b, '}');
}

static void fail_json(cvx__conn_t *c, int status, const char *code, const char *message) {
    cvx_buf_t b = {0};
    cvx__error_json(&b, code, message);
    fail_conn(c, status, b.data ? b.data : "{}");
    cvx_buf_free(&b);
}

/* The errors of reading a request, by status; `other` is the message of
 * a 400 (or any status not named here). */
static void fail_status(cvx__conn_t *c, int st, const char *other) {
    switch (st) {
    case 413: fail_json(c, st, "PayloadTooLarge", "the request body is larger than this route accepts"); break;
    case 431: fail_json(c, st, "HeadersTooLarge", "the request head is larger than 64 KiB"); break;
    case 503:
        fail_json(c, st, "ServerBusy",
                  "the server's memory budget for request bodies is in use (--max-request-memory); retry shortly");
        break;
    case 500: fail_json(c, st, "InternalError", "out of memory or disk space while reading the request"); break;
    default: fail_json(c, st, "BadRequest", other); break;
    }
}

/* ---- parsing ------------------------------------------------------------------------ */

/* Sets up body reading: length, chunked, limits. 0 or an HTTP status. */
static int prepare_body(cvx__conn_t *c, cvx__req_t *req) {
    cvx_slice_t cl = cvx_slice(NULL, 0), te = cvx_slice(NULL, 0);
    for (size_t i = 0; i < req->nhdrs; i++) {
        if (cvx_slice_eq_cstr(req->hdrs[i].name, "content-length")) {
            if (cl.ptr && !cvx_slice_eq(cl, req->hdrs[i].value)) return 400;
            cl = req->hdrs[i].value;
        } else if (cvx_slice_eq_cstr(req->hdrs[i].name, "transfer-encoding")) {
            if (te.ptr) return 400;
            te = req->hdrs[i].value;
        }
    }
    if (cl.ptr && te.ptr) return 400;
    c->chunked = false;
    c->body_left = 0;
    if (te.ptr) {
        if (te.len != 7 || strncasecmp(te.ptr, "chunked", 7) != 0) return 501;
        c->chunked = true;
        memset(&c->chunked_st, 0, sizeof c->chunked_st);
    } else if (cl.ptr) {
        if (cl.len == 0 || cl.len > 15 || strspn(cl.ptr, "0123456789") != cl.len) return 400;
        c->body_left = strtoull(cl.ptr, NULL, 10);
    }
    bool to_file = false;
    uint64_t limit = cvx__body_limit(c->srv, req, &to_file);
    if (c->body_left > limit) return 413;
    c->body_limit = limit;
    /* A body held in memory is charged to the server's budget as it
     * arrives (body_append): clients together cannot hold more than the
     * budget, and holding it costs them sending it. */
    if (to_file) {
        int n = snprintf(req->body_path, sizeof req->body_path, "%.4000s/.upload-XXXXXX", c->srv->upload_dir);
        req->body_fd = n > 0 && (size_t)n < sizeof req->body_path ? mkostemp(req->body_path, O_CLOEXEC) : -1;
        if (req->body_fd < 0) {
            req->body_path[0] = '\0';
            return 500;
        }
    }
    cvx_slice_t expect = cvx__req_header(req, "expect");
    if (expect.ptr && expect.len == 12 && !strncasecmp(expect.ptr, "100-continue", 12) && (c->body_left || c->chunked)) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        cvx__conn_write(c, cont, sizeof cont - 1);
    }
    return 0;
}

/* Appends body bytes to memory or the upload file. */
static int body_append(cvx__req_t *req, const char *p, size_t n) {
    req->body_len += n;
    if (req->body_fd >= 0) {
        while (n > 0) {
            ssize_t w = write(req->body_fd, p, n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return 500;
            p += w;
            n -= (size_t)w;
        }
        return 0;
    }
    if (req->body_len > req->charged) {
        uint64_t more = req->body_len - req->charged;
        if (!cvx__budget_take(req->srv, more)) return 503;
        req->charged += more;
    }
    return cvx_buf_append(&req->body, p, n) ? 500 : 0;
}

/* Consumes chunked encoding from the input buffer. Returns 0 with *done,
 * 0 needing more input, or an HTTP status. */
static int read_chunked(cvx__conn_t *c, bool *done) {
    cvx__req_t *req = c->req;
    *done = false;
    while (c->in_off < c->in.len && !*done) {
        const char *p = c->in.data + c->in_off;
        bool was_size = c->chunked_st.state == 0; /* a size line is next */
        size_t used, data;
        int st = cvx__chunked_step(&c->chunked_st, p, c->in.len - c->in_off, &used, &data, done);
        if (st) return st;
        if (used == 0) break; /* an incomplete line */
        if (was_size && req->body_len + c->chunked_st.left > c->body_limit) return 413;
        if (data) {
            int rc = body_append(req, p, data);
            if (rc) return rc;
        }
        c->in_off += used;
    }
    return 0;
}

static void dispatch(cvx__conn_t *c) {
    c->state = CVX__C_HANDLING;
    stop_request_timer(c);
    pause_reading(c);
    cvx__req_t *req = c->req;
    if (req->body_fd >= 0 && lseek(req->body_fd, 0, SEEK_SET) != 0) {
        fail_json(c, 500, "InternalError", "cannot read the uploaded body back");
        return;
    }
    cvx__handle_request(c->srv, req);
}

static void process(cvx__conn_t *c) {
    for (;;) {
        if (c->state == CVX__C_HEAD) {
            size_t avail = c->in.len - c->in_off;
            /* Tolerate empty lines between pipelined requests. */
            while (avail && (c->in.data[c->in_off] == '\r' || c->in.data[c->in_off] == '\n')) {
                c->in_off++;
                avail--;
            }
            if (!avail) return;
            size_t scanned;
            size_t n = cvx__http_head_end(c->in.data + c->in_off, avail,
                                          c->head_scan > c->in_off ? c->head_scan - c->in_off : 0, &scanned);
            if (n == 0) {
                c->head_scan = c->in_off + scanned;
                if (avail > MAX_HEAD) fail_status(c, 431, NULL);
                return;
            }
            c->head_scan = 0;
            if (n > MAX_HEAD) {
                fail_status(c, 431, NULL);
                return;
            }
            const char *code, *msg;
            cvx__req_t *req = cvx_calloc(1, sizeof *req);
            if (!req) {
                cvx__conn_close(c);
                return;
            }
            req->refs = 1;
            req->conn = c;
            req->srv = c->srv;
            req->body_fd = -1;
            c->req = req;
            int st = cvx__http_parse_head(req, c->in.data + c->in_off, n);
            c->in_off += n;
            if (!st && cvx__authorize_head(c->srv, req, &code, &msg)) {
                /* Refused from the head alone: no byte of the body is read. */
                fail_json(c, 401, code, msg);
                return;
            }
            if (!st) st = prepare_body(c, req);
            if (st) {
                fail_status(c, st, "malformed HTTP request");
                return;
            }
            c->state = CVX__C_BODY;
        }
        if (c->state == CVX__C_BODY) {
            if (c->chunked) {
                bool done;
                int st = read_chunked(c, &done);
                if (st) {
                    fail_status(c, st, "malformed chunked body");
                    return;
                }
                if (!done) {
                    /* Keep only the unparsed tail (a partial size line). */
                    memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
                    c->in.len -= c->in_off;
                    c->in_off = 0;
                    return;
                }
            } else {
                size_t take = (size_t)CVX_MIN(c->in.len - c->in_off, c->body_left);
                if (take) {
                    int st = body_append(c->req, c->in.data + c->in_off, take);
                    if (st) {
                        fail_status(c, st, "cannot store the request body");
                        return;
                    }
                    c->in_off += take;
                    c->body_left -= take;
                }
                if (c->body_left) {
                    /* Large bodies: don't keep the whole stream in the
                     * input buffer once copied out. */
                    if (c->in_off == c->in.len) c->in.len = c->in_off = 0;
                    return;
                }
            }
            dispatch(c);
            return;
        }
        return;
    }
}

void cvx__conn_accepted(cvx_server_t *s, cvx__conn_t *c) {
    c->srv = s;
    c->file_fd = -1;
    c->state = CVX__C_HEAD;
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->connections++;
    start_timer(c);
    cvx__conn_resume(c);
}

