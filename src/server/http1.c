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

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD (64u << 10)
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

static void on_timeout(uv_timer_t *t) {
    cvx__conn_t *c = t->data;
    /* A request that did not arrive in time: answer if we still can,
     * then close. An idle keep-alive connection just closes. */
    if (c->state == CVX__C_BODY || (c->state == CVX__C_HEAD && c->in.len > c->in_off)) {
        static const char msg[] = "HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    cvx__conn_close(c);
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
    if (c->state == CVX__C_WS) cvx__ws_on_data(c);
    else process(c);
}

static void pause_reading(cvx__conn_t *c) { uv_read_stop((uv_stream_t *)&c->tcp); }
void cvx__conn_resume(cvx__conn_t *c) { uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read); }

/* Writes raw bytes (copied); `last` ends the current response. */
static void on_written(uv_write_t *w, int status);

static int write_raw(cvx__conn_t *c, const char *head, size_t hlen, const void *body, size_t blen, bool last) {
    write_t *w = cvx_calloc(1, sizeof *w);
    char *h = hlen ? cvx_malloc(hlen) : NULL;
    char *b = blen ? cvx_malloc(blen) : NULL;
    if (!w || (hlen && !h) || (blen && !b)) {
        cvx_free(w);
        cvx_free(h);
        cvx_free(b);
        cvx__conn_close(c);
        return -1;
    }
    if (hlen) memcpy(h, head, hlen);
    if (blen) memcpy(b, body, blen);
    w->conn = c;
    w->head = h;
    w->body = b;
    w->last = last;
    uv_buf_t bufs[2];
    int nb = 0;
    if (hlen) bufs[nb++] = uv_buf_init(h, (unsigned)hlen);
    if (blen) bufs[nb++] = uv_buf_init(b, (unsigned)blen);
    c->writes++;
    c->write_bytes += hlen + blen;
    if (uv_write(&w->w, (uv_stream_t *)&c->tcp, bufs, (unsigned)nb, on_written) != 0) {
        c->writes--;
        cvx_free(h);
        cvx_free(b);
        cvx_free(w);
        cvx__conn_close(c);
        return -1;
    }
    return 0;
}

int cvx__conn_write(cvx__conn_t *c, const void *data, size_t len) { return write_raw(c, data, len, NULL, 0, false); }

/* The response is out: next request (or close). */
static void finish_response(cvx__conn_t *c) {
    bool close_it = c->close_after;
    if (c->req) {
        cvx__req_release(c->req);
        c->req = NULL;
    }
    if (close_it) {
        cvx__conn_close(c);
        return;
    }
    c->state = CVX__C_HEAD;
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
    c->write_bytes = 0;
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

void cvx__respond(cvx__req_t *req, int status, const cvx_buf_t *headers, const void *body, size_t len) {
    cvx__conn_t *c = req->conn;
    if (!c || req->responded) return;
    req->responded = true;
    c->close_after = c->close_after || wants_close(req) || c->srv->draining;
    cvx_buf_t head = {0};
    build_head(&head, status, headers, len, c->close_after);
    if (head.oom) {
        cvx_buf_free(&head);
        cvx__conn_close(c);
        return;
    }
    write_raw(c, head.data, head.len, req->head_only ? NULL : body, req->head_only ? 0 : len, true);
    cvx_buf_free(&head);
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
    uv_timer_stop(&c->timer);
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

/* ---- parsing ------------------------------------------------------------------------ */

static bool is_tchar(unsigned char ch) {
    return isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Finds the end of the head ("\r\n\r\n" or "\n\n"); 0 when incomplete. */
static size_t head_end(const char *p, size_t n) {
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\n') continue;
        if (p[i + 1] == '\n') return i + 2;
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') return i + 3;
    }
    return 0;
}

/* Parses a complete head (copied into req->head). 0, or an HTTP status. */
static int parse_head(cvx__req_t *req, const char *src, size_t n) {
    req->head = cvx_malloc(n + 1);
    if (!req->head) return 500;
    memcpy(req->head, src, n);
    req->head[n] = '\0';
    char *p = req->head, *end = req->head + n;
    /* request line */
    char *sp = p;
    while (sp < end && is_tchar((unsigned char)*sp)) sp++;
    if (sp == p || sp >= end || *sp != ' ') return 400;
    req->method = cvx_slice(p, (size_t)(sp - p));
    char *t = sp + 1, *te = t;
    while (te < end && *te != ' ' && (unsigned char)*te > 32 && *te != 127) te++;
    if (te == t || te >= end || *te != ' ') return 400;
    if (te - t > 8192) return 414;
    req->target = cvx_slice(t, (size_t)(te - t));
    char *v = te + 1;
    if (end - v < 9 || memcmp(v, "HTTP/1.", 7) != 0 || (v[7] != '0' && v[7] != '1')) return 400;
    req->minor = v[7] - '0';
    p = v + 8;
    if (*p == '\r') p++;
    if (*p != '\n') return 400;
    p++;
    /* headers */
    while (p < end && *p != '\r' && *p != '\n') {
        if (req->nhdrs >= CVX__MAX_HEADERS) return 431;
        char *name = p;
        while (p < end && is_tchar((unsigned char)*p)) {
            *p = (char)tolower((unsigned char)*p);
            p++;
        }
        if (p == name || p >= end || *p != ':') return 400; /* also rejects obsolete line folding */
        size_t nlen = (size_t)(p - name);
        p++;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        char *val = p;
        while (p < end && *p != '\r' && *p != '\n') {
            if ((unsigned char)*p < 32 && *p != '\t') return 400;
            p++;
        }
        char *vend = p;
        while (vend > val && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
        if (*p == '\r') p++;
        if (p >= end || *p != '\n') return 400;
        p++;
        *vend = '\0'; /* values become C strings (the CR/LF is gone) */
        req->hdrs[req->nhdrs].name = cvx_slice(name, nlen);
        req->hdrs[req->nhdrs].value = cvx_slice(val, (size_t)(vend - val));
        req->nhdrs++;
    }
    /* path and query */
    char *q = memchr(req->target.ptr, '?', req->target.len);
    req->path = cvx_slice(req->target.ptr, q ? (size_t)(q - req->target.ptr) : req->target.len);
    req->query = q ? cvx_slice(q + 1, req->target.len - (size_t)(q + 1 - req->target.ptr)) : cvx_slice("", 0);
    req->head_only = cvx__req_method_is(req, "HEAD");
    return 0;
}

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
        c->chunk_state = 0;
        c->chunk_left = 0;
    } else if (cl.ptr) {
        if (cl.len == 0 || cl.len > 15 || strspn(cl.ptr, "0123456789") != cl.len) return 400;
        c->body_left = strtoull(cl.ptr, NULL, 10);
    }
    bool to_file = false;
    uint64_t limit = cvx__body_limit(c->srv, req, &to_file);
    if (c->body_left > limit) return 413;
    c->body_limit = limit;
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
    return cvx_buf_append(&req->body, p, n) ? 500 : 0;
}

/* Consumes chunked encoding from the input buffer. Returns 0 with *done,
 * 0 needing more input, or an HTTP status. */
static int read_chunked(cvx__conn_t *c, bool *done) {
    cvx__req_t *req = c->req;
    *done = false;
    while (c->in_off < c->in.len) {
        char *p = c->in.data + c->in_off;
        size_t avail = c->in.len - c->in_off;
        if (c->chunk_state == 1) { /* data */
            size_t take = (size_t)CVX_MIN(avail, c->chunk_left);
            if (req->body_len + take > c->body_limit) return 413;
            int rc = body_append(req, p, take);
            if (rc) return rc;
            c->in_off += take;
            c->chunk_left -= take;
            if (c->chunk_left == 0) c->chunk_state = 2;
            continue;
        }
        char *nl = memchr(p, '\n', avail);
        if (!nl) return avail > 4096 ? 400 : 0;
        size_t line = (size_t)(nl - p) + 1;
        size_t len = line - 1;
        if (len && p[len - 1] == '\r') len--;
        c->in_off += line;
        if (c->chunk_state == 2) { /* CRLF after data */
            if (len != 0) return 400;
            c->chunk_state = 0;
        } else if (c->chunk_state == 0) { /* size line */
            size_t hex = 0;
            while (hex < len && isxdigit((unsigned char)p[hex])) hex++;
            if (hex == 0 || hex > 15 || (hex < len && p[hex] != ';' && p[hex] != ' ')) return 400;
            char tmp[16];
            memcpy(tmp, p, hex);
            tmp[hex] = '\0';
            c->chunk_left = strtoull(tmp, NULL, 16);
            if (req->body_len + c->chunk_left > c->body_limit) return 413;
            c->chunk_state = c->chunk_left ? 1 : 3;
        } else { /* trailers, until an empty line */
            if (len == 0) {
                *done = true;
                return 0;
            }
        }
    }
    return 0;
}

static void dispatch(cvx__conn_t *c) {
    c->state = CVX__C_HANDLING;
    uv_timer_stop(&c->timer);
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
            size_t n = head_end(c->in.data + c->in_off, avail);
            if (n == 0) {
                if (avail > MAX_HEAD) fail_json(c, 431, "HeadersTooLarge", "the request head is larger than 64 KiB");
                return;
            }
            if (n > MAX_HEAD) {
                fail_json(c, 431, "HeadersTooLarge", "the request head is larger than 64 KiB");
                return;
            }
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
            int st = parse_head(req, c->in.data + c->in_off, n);
            c->in_off += n;
            if (!st) st = prepare_body(c, req);
            if (st) {
                fail_json(c, st, st == 413 ? "PayloadTooLarge" : st == 431 ? "HeadersTooLarge" : "BadRequest",
                          st == 413 ? "the request body is larger than this route accepts"
                                    : "malformed HTTP request");
                return;
            }
            c->state = CVX__C_BODY;
        }
        if (c->state == CVX__C_BODY) {
            if (c->chunked) {
                bool done;
                int st = read_chunked(c, &done);
                if (st) {
                    fail_json(c, st, st == 413 ? "PayloadTooLarge" : "BadRequest",
                              st == 413 ? "the request body is larger than this route accepts" : "malformed chunked body");
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
                        fail_json(c, st, "InternalError", "cannot store the request body");
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

uint64_t cvx__conn_pending_write_bytes(const cvx__conn_t *c) { return c->write_bytes; }
