/* __convex_http_fetch: outbound HTTP for actions, over libcurl.
 *
 * Only actions may call it (queries and mutations must stay deterministic).
 * Every connection, including each redirect hop, passes through
 * open_socket(), which refuses loopback, private, link-local and other
 * non-public addresses unless the server was started with
 * --allow-private-fetch: checking the address actually connected to (not
 * the name) is what defeats DNS tricks. Limits: a total time, a number of
 * redirects and a response size; the body is appended in chunks as it
 * arrives and handed to the guest once. */
#include "abi/abi_int.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#define FETCH_MAX_BODY (16u << 20)
#define FETCH_MAX_REDIRECTS 5
#define FETCH_TIMEOUT_MS 60000


typedef struct {
    /* The body goes straight into the response JSON as base64, chunk by
     * chunk as it arrives: never held whole as raw bytes next to it. */
    cvx_buf_t *out;
    uint8_t carry[3]; /* bytes not yet a whole base64 group */
    size_t ncarry;
    uint64_t body_len;
    cvx_buf_t headers; /* JSON array under construction: [["k","v"],... */
    bool too_large;
    bool blocked;
    char blocked_addr[64];
    bool allow_private;
} fetch_t;

static bool v4_private(uint32_t a) {
    uint8_t b0 = a >> 24, b1 = (a >> 16) & 0xff;
    return b0 == 0 || b0 == 10 || b0 == 127 || (b0 == 100 && (b1 & 0xc0) == 64) || (b0 == 169 && b1 == 254) ||
           (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168) || (b0 == 198 && (b1 & 0xfe) == 18) ||
           b0 >= 224;
}

static bool addr_private(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) return v4_private(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6) {
        const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, v4mapped, 12) == 0)
            return v4_private((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15]);
        bool zero = true;
        for (int i = 0; i < 15; i++) zero = zero && b[i] == 0;
        if (zero) return true;                             /* :: and ::1 */
        if ((b[0] & 0xfe) == 0xfc) return true;            /* fc00::/7 unique local */
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true; /* fe80::/10 link local */
        if (b[0] == 0xff) return true;                     /* multicast */
        return false;
    }
    return true;
}

static curl_socket_t open_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *addr) {
    fetch_t *f = ctx;
    if (!f->allow_private && addr_private(&addr->addr)) {
        f->blocked = true;
        void *src = addr->family == AF_INET ? (void *)&((struct sockaddr_in *)&addr->addr)->sin_addr
                                            : (void *)&((struct sockaddr_in6 *)&addr->addr)->sin6_addr;
        inet_ntop(addr->family, src, f->blocked_addr, sizeof f->blocked_addr);
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx) {
    fetch_t *f = ctx;
    size_t len = size * n, total = len;
    if (f->body_len + len > FETCH_MAX_BODY) {
        f->too_large = true;
        return 0; /* aborts the transfer */
    }
    f->body_len += len;
    const uint8_t *b = (const uint8_t *)p;
    while (f->ncarry && f->ncarry < 3 && len) {
        f->carry[f->ncarry++] = *b++;
        len--;
    }
    if (f->ncarry == 3) {
        cvx_base64_encode(f->out, f->carry, 3);
        f->ncarry = 0;
    }
    size_t whole = len / 3 * 3;
    if (whole) cvx_base64_encode(f->out, b, whole);
    memcpy(f->carry + f->ncarry, b + whole, len - whole);
    f->ncarry += len - whole;
    return f->out->oom ? 0 : total;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx) {
    fetch_t *f = ctx;
    size_t len = size * n;
    /* A new status line (after a redirect or a 100) starts a fresh list. */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        cvx_buf_reset(&f->headers);
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon) return len;
    size_t klen = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vlen = len - klen - 1;
    while (vlen && (*v == ' ' || *v == '\t')) v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ')) vlen--;
    cvx_buf_append_str(&f->headers, f->headers.len ? ",[" : "[");
    /* Header names are case-insensitive; report them lower-case like fetch(). */
    char name[256];
    size_t nl = CVX_MIN(klen, sizeof name);
    for (size_t i = 0; i < nl; i++) name[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
    cvx_buf_append_json_string(&f->headers, name, nl);
    cvx_buf_append_char(&f->headers, ',');
    cvx_buf_append_json_string(&f->headers, v, vlen);
    cvx_buf_append_char(&f->headers, ']');
    return len;
}

static const char *str(const cvx_value_t *obj, const char *field) {
    const cvx_value_t *v = cvx_obj_get_cstr(obj, field);
    return v && v->type == CVX_T_STRING ? v->u.str.ptr : NULL;
}

/* Performs the request; on success appends the response JSON to out. */
static int do_fetch(const cvx_value_t *req, bool allow_private, cvx_buf_t *out, cvx_err_t *err) {
    const char *url = str(req, "url");
    const char *method = str(req, "method");
    if (!url) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "fetch needs a \"url\"");
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "fetch: only http:// and https:// URLs are supported (got \"%.100s\")", url);
    if (!method) method = "GET";
    for (const char *m = method; *m; m++)
        if (!((*m >= 'A' && *m <= 'Z') || (*m >= 'a' && *m <= 'z')))
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "fetch: invalid method \"%.20s\"", method);
    int lrc = cvx_curl_load(err);
    if (lrc) return lrc;
    CURL *c = curl_easy_init();
    if (!c) return cvx_err_set(err, CVX_E_NOMEM, "fetch: cannot create a request");
    fetch_t f;
    memset(&f, 0, sizeof f);
    f.allow_private = allow_private;
    f.out = out;
    size_t start = out->len;
    cvx_buf_append_str(out, "{\"body\":{\"$bytes\":\"");
    struct curl_slist *hdrs = NULL;
    int rc = CVX_OK;
    const cvx_value_t *h = cvx_obj_get_cstr(req, "headers");
    for (size_t i = 0; h && h->type == CVX_T_ARRAY && i < h->u.arr.len && !rc; i++) {
        const cvx_value_t *pair = h->u.arr.items[i];
        if (pair->type != CVX_T_ARRAY || pair->u.arr.len != 2 || pair->u.arr.items[0]->type != CVX_T_STRING ||
            pair->u.arr.items[1]->type != CVX_T_STRING) {
            rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "fetch: headers must be [name, value] string pairs");
            break;
        }
        const cvx_value_t *k = pair->u.arr.items[0], *v = pair->u.arr.items[1];
        if (memchr(k->u.str.ptr, '\n', k->u.str.len) || memchr(v->u.str.ptr, '\n', v->u.str.len) ||
            memchr(k->u.str.ptr, '\r', k->u.str.len) || memchr(v->u.str.ptr, '\r', v->u.str.len)) {
            rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "fetch: header %.64s contains a line break", k->u.str.ptr);
            break;
        }
        cvx_buf_t line = {0};
        cvx_buf_printf(&line, "%s: %s", k->u.str.ptr, v->u.str.ptr);
        struct curl_slist *n = line.data ? curl_slist_append(hdrs, line.data) : NULL;
        cvx_buf_free(&line);
        if (!n) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
        else hdrs = n;
    }
    const cvx_value_t *body = cvx_obj_get_cstr(req, "body");
    /* An optional shorter timeout; never more than the server's cap. */
    const cvx_value_t *tv = cvx_obj_get_cstr(req, "timeoutMs");
    double want = tv && tv->type == CVX_T_FLOAT64 ? tv->u.f : tv && tv->type == CVX_T_INT64 ? (double)tv->u.i : 0;
    long timeout_ms = want >= 1 && want < FETCH_TIMEOUT_MS ? (long)want : FETCH_TIMEOUT_MS;
    if (!rc) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)FETCH_MAX_REDIRECTS);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)FETCH_MAX_BODY);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &f);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &f);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "cvx/" CVX_VERSION);
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
        if (body && body->type == CVX_T_BYTES) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->u.str.ptr);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->u.str.len);
        } else if (body && body->type == CVX_T_STRING) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->u.str.ptr);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->u.str.len);
        }
        CURLcode cc = curl_easy_perform(c);
        if (f.blocked)
            rc = cvx_err_set(err, CVX_E_HTTP,
                             "fetch %.200s: refused to connect to private address %s (start the server with "
                             "--allow-private-fetch to allow it)",
                             url, f.blocked_addr);
        else if (f.too_large || cc == CURLE_FILESIZE_EXCEEDED)
            rc = cvx_err_set(err, CVX_E_HTTP, "fetch %.200s: response body is larger than %u bytes", url, FETCH_MAX_BODY);
        else if (cc == CURLE_OPERATION_TIMEDOUT)
            rc = cvx_err_set(err, CVX_E_HTTP, "fetch %.200s: timed out after %ld ms", url, timeout_ms);
        else if (cc == CURLE_TOO_MANY_REDIRECTS)
            rc = cvx_err_set(err, CVX_E_HTTP, "fetch %.200s: more than %d redirects", url, FETCH_MAX_REDIRECTS);
        else if (cc != CURLE_OK)
            rc = cvx_err_set(err, CVX_E_HTTP, "fetch %.200s: %s", url, curl_easy_strerror(cc));
    }
    if (!rc) {
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (f.ncarry) cvx_base64_encode(out, f.carry, f.ncarry);
        cvx_buf_printf(out, "\"},\"status\":%ld,\"headers\":[", status);
        cvx_buf_append(out, f.headers.data, f.headers.len);
        cvx_buf_append_str(out, "]}");
        if (out->oom || f.headers.oom) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    if (rc) { /* no half-written response */
        out->len = start;
        if (out->data) out->data[start] = '\0';
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    cvx_buf_free(&f.headers);
    return rc;
}

int cvx__h_http_fetch(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    uint8_t *p = cvx_instance_mem(inst, a[0].i32, a[1].i32, "__convex_http_fetch");
    if (!p) return 1;
    cvx_buf_reset(&c->pending);
    cvx_err_t err;
    cvx_err_clear(&err);
    int rc;
    if (c->cfg->kind != CVX_KIND_ACTION) {
        rc = cvx_err_set(&err, CVX_E_FORBIDDEN,
                         "fetch is only available in actions: queries and mutations must be deterministic");
    } else {
        cvx_arena_reset(c->arena);
        cvx_value_t *req;
        rc = cvx_json_parse(c->arena, (const char *)p, (size_t)a[1].i32, &req, &err);
        if (rc == CVX_OK && req->type != CVX_T_OBJECT) rc = cvx_err_set(&err, CVX_E_INVALID_ARGUMENT, "fetch request must be an object");
        if (rc == CVX_OK) rc = do_fetch(req, c->cfg->allow_private_fetch, &c->pending, &err);
    }
    if (rc == CVX_OK) {
        r[0].i64 = (int64_t)c->pending.len;
    } else {
        r[0].i64 = cvx__err_pending(c, rc, err.msg);
    }
    return 0;
}
