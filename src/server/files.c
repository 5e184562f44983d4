/* HTTP actions and file storage routes.
 *
 *   ANY  /http/<route>                  an HTTP action (docs/abi.md "HTTP actions")
 *   GET  /api/storage/<storageId>       a stored file (Range requests: 206)
 *   POST /api/storage/upload?token=T    store the body as a file -> {"storageId"}
 */
#include "server/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void raw_error(cvx__job_t *j, int status, const char *msg) {
    j->raw = true;
    j->status = status;
    cvx_buf_reset(&j->headers);
    cvx_buf_reset(&j->body);
    cvx__header(&j->headers, "content-type", "text/plain; charset=utf-8");
    cvx_buf_append_str(&j->body, msg);
    cvx_buf_append_char(&j->body, '\n');
}

/* ---- HTTP actions ----------------------------------------------------------------- */

static bool header_safe(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return false;
    return true;
}

static void run_http_action(cvx__job_t *j) {
    /* A refused token is a 401, as for the other routes; but an app that
     * declares no auth providers may take its own secrets as Bearer
     * tokens (webhooks), and gets the header untouched. */
    if (!cvx__job_verify(j, cvx_auth_count(j->srv->auth) > 0)) return;
    cvx_request_t req = {.path = j->path, .args_json = j->args, .args_len = j->args_len, .http = true, .allow_internal = true,
                         .identity = j->identity, .identity_len = j->identity_len};
    cvx_response_t resp;
    memset(&resp, 0, sizeof resp);
    int rc = cvx_exec_call(j->srv->rt, &req, &resp);
    cvx__log_call(j->srv, j->path, &resp);
    if (rc != CVX_OK) {
        raw_error(j, 500, resp.r.message.data ? resp.r.message.data : "the HTTP action failed");
        cvx_response_free(&resp);
        return;
    }
    /* {"status", "headers"?: [[k, v]], "body"?: {"$bytes"} | string} */
    cvx_arena_t *a = cvx_arena_new(4096);
    cvx_value_t *v = NULL;
    cvx_err_t err;
    const cvx_value_t *st = NULL;
    if (a && cvx_json_parse(a, resp.r.value.data, resp.r.value.len, &v, &err) == CVX_OK && v->type == CVX_T_OBJECT)
        st = cvx_obj_get_cstr(v, "status");
    double status = st && st->type == CVX_T_FLOAT64 ? st->u.f : st && st->type == CVX_T_INT64 ? (double)st->u.i : 0;
    if (status < 100 || status > 599) {
        raw_error(j, 500, "the HTTP action returned no valid response: it must return {\"status\": 100..599, ...}");
    } else {
        j->raw = true;
        j->status = (int)status;
        const cvx_value_t *hs = cvx_obj_get_cstr(v, "headers");
        bool has_type = false;
        for (size_t i = 0; hs && hs->type == CVX_T_ARRAY && i < hs->u.arr.len; i++) {
            const cvx_value_t *p = hs->u.arr.items[i];
            if (p->type != CVX_T_ARRAY || p->u.arr.len != 2 || p->u.arr.items[0]->type != CVX_T_STRING ||
                p->u.arr.items[1]->type != CVX_T_STRING)
                continue;
            const cvx_value_t *k = p->u.arr.items[0], *val = p->u.arr.items[1];
            if (!header_safe(k->u.str.ptr, k->u.str.len) || !header_safe(val->u.str.ptr, val->u.str.len) ||
                !strcasecmp(k->u.str.ptr, "content-length") || !strcasecmp(k->u.str.ptr, "transfer-encoding"))
                continue;
            has_type = has_type || !strcasecmp(k->u.str.ptr, "content-type");
            cvx__header(&j->headers, k->u.str.ptr, val->u.str.ptr);
        }
        const cvx_value_t *body = cvx_obj_get_cstr(v, "body");
        if (body && (body->type == CVX_T_BYTES || body->type == CVX_T_STRING)) {
            cvx_buf_append(&j->body, body->u.str.ptr, body->u.str.len);
            if (!has_type && body->type == CVX_T_STRING) cvx__header(&j->headers, "content-type", "text/plain; charset=utf-8");
        }
    }
    cvx_arena_free(a);
    cvx_response_free(&resp);
}

static int start_http_action(cvx_server_t *s, cvx__req_t *req) {
    char method[16], route[1024];
    cvx_slice_t path = req->path;
    if (req->method.len >= sizeof method || path.len - 5 >= sizeof route) {
        cvx__send_error(req, 414, "UriTooLong", "path too long");
        return 0;
    }
    memcpy(method, req->method.ptr, req->method.len);
    method[req->method.len] = '\0';
    memcpy(route, path.ptr + 5, path.len - 5);
    route[path.len - 5] = '\0';
    if (!route[0]) strcpy(route, "/");
    cvx_app_t *app = cvx_runtime_app(s->rt);
    const cvx_fn_t *fn = app ? cvx_app_find_http(app, method, route) : NULL;
    cvx__job_t *j = fn ? cvx__job_new(s) : NULL;
    if (j) j->path = cvx_strdup(fn->path);
    cvx_app_release(app);
    if (!fn) {
        cvx__send_error(req, 404, "NotFound", "no HTTP action is routed here");
        return 0;
    }
    /* The request as the function's argument. */
    cvx_buf_t a = {0};
    cvx_buf_append_str(&a, "{\"method\":");
    cvx_buf_append_json_string(&a, method, strlen(method));
    cvx_buf_append_str(&a, ",\"url\":");
    cvx_buf_append_json_string(&a, req->target.ptr, req->target.len);
    cvx_buf_append_str(&a, ",\"path\":");
    cvx_buf_append_json_string(&a, route, strlen(route));
    cvx_buf_append_str(&a, ",\"query\":");
    cvx_buf_append_json_string(&a, req->query.ptr, req->query.len);
    cvx_buf_append_str(&a, ",\"headers\":[");
    for (size_t i = 0; i < req->nhdrs; i++) {
        const cvx__hdr_t *h = &req->hdrs[i];
        cvx_buf_append_str(&a, i ? ",[" : "[");
        cvx_buf_append_json_string(&a, h->name.ptr, h->name.len);
        cvx_buf_append_char(&a, ',');
        cvx_buf_append_json_string(&a, h->value.ptr, h->value.len);
        cvx_buf_append_char(&a, ']');
    }
    cvx_buf_append_str(&a, "],\"body\":{\"$bytes\":\"");
    if (req->body.len) cvx_base64_encode(&a, req->body.data, req->body.len);
    cvx_buf_append_str(&a, "\"}}");
    if (a.oom || !j || !j->path) {
        cvx_buf_free(&a);
        cvx__job_free(j);
        cvx__send_error(req, 500, "OutOfMemory", "out of memory");
        return 0;
    }
    j->args = cvx_buf_detach(&a, &j->args_len);
    /* A Bearer token is checked on the worker (ctx.auth); the admin key
     * acts as nobody here. */
    if (cvx__job_auth(s, req, j) != 0) {
        cvx__job_free(j);
        return 0;
    }
    j->run = run_http_action;
    j->lane = CVX__LANE_HTTP;
    cvx__submit(s, req, j);
    return 0;
}

/* ---- downloads ---------------------------------------------------------------------- */

/* Parses "bytes=a-b", "bytes=a-", "bytes=-n" against size; false when
 * unsatisfiable or not a single range. */
static bool parse_range(const char *h, size_t n, uint64_t size, uint64_t *first, uint64_t *last) {
    char buf[64];
    if (n >= sizeof buf || n < 7 || strncmp(h, "bytes=", 6) != 0) return false;
    memcpy(buf, h + 6, n - 6);
    buf[n - 6] = '\0';
    if (strchr(buf, ',')) return false;
    char *dash = strchr(buf, '-');
    if (!dash || size == 0) return false;
    *dash = '\0';
    char *end;
    if (buf[0] == '\0') { /* suffix: the last n bytes */
        unsigned long long k = strtoull(dash + 1, &end, 10);
        if (*end || k == 0) return false;
        *first = k >= size ? 0 : size - k;
        *last = size - 1;
        return true;
    }
    unsigned long long a = strtoull(buf, &end, 10);
    if (*end || a >= size) return false;
    unsigned long long b = size - 1;
    if (dash[1]) {
        b = strtoull(dash + 1, &end, 10);
        if (*end || b < a) return false;
        if (b >= size) b = size - 1;
    }
    *first = a;
    *last = b;
    return true;
}

static void run_download(cvx__job_t *j) {
    const cvx_storage_config_t *cfg = cvx_runtime_storage(j->srv->rt);
    cvx_err_t err;
    cvx_buf_t doc = {0}, path = {0}, ctype = {0};
    uint64_t size = 0;
    cvx_id_t id;
    int rc = cvx_id_parse(j->path, strlen(j->path), &id, &err);
    if (!rc) rc = cvx_exec_read_document(j->srv->rt, j->path, strlen(j->path), &doc, &err);
    if (!rc && (!doc.len || !strcmp(doc.data, "null"))) rc = CVX_E_NOT_FOUND;
    if (!rc) rc = cvx_storage_blob_path(cfg, doc.data, doc.len, &path, &ctype, &size, &err);
    if (rc) {
        bool missing = rc == CVX_E_NOT_FOUND || rc == CVX_E_INVALID_VALUE;
        raw_error(j, missing ? 404 : 500, missing ? "no such file" : err.msg);
    } else {
        /* The loop streams the blob; blobs are immutable (named by hash). */
        j->raw = true;
        cvx__header(&j->headers, "content-type", ctype.len ? ctype.data : "application/octet-stream");
        cvx__header(&j->headers, "accept-ranges", "bytes");
        cvx__header(&j->headers, "cache-control", "private, max-age=2592000, immutable");
        uint64_t first = 0, last = size ? size - 1 : 0;
        char cr[96];
        if (j->args && !parse_range(j->args, strlen(j->args), size, &first, &last)) {
            snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
            j->status = 416;
            cvx__header(&j->headers, "content-range", cr);
        } else {
            if (j->args) {
                snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)first, (unsigned long long)last,
                         (unsigned long long)size);
                cvx__header(&j->headers, "content-range", cr);
            }
            j->status = j->args ? 206 : 200;
            j->file = cvx_buf_detach(&path, NULL);
            j->file_off = first;
            j->file_len = size ? last - first + 1 : 0;
            if (!j->file) raw_error(j, 500, "out of memory");
        }
    }
    cvx_buf_free(&doc);
    cvx_buf_free(&path);
    cvx_buf_free(&ctype);
}

/* ---- uploads ------------------------------------------------------------------------- */

typedef struct {
    const cvx_storage_config_t *cfg;
    cvx__req_t *req;
    const char *content_type;
} upload_t;

static int op_upload(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err) {
    upload_t *u = arg;
    cvx__req_t *req = u->req;
    if (req->body_fd < 0) /* no storage directory to stream into */
        return cvx_storage_put(u->cfg, txn, req->body.data ? req->body.data : "", req->body.len, u->content_type, out, err);
    if (!req->body_path[0]) return cvx_err_set(err, CVX_E_INTERNAL, "the upload was already stored");
    int rc = cvx_storage_adopt(u->cfg, txn, req->body_path, u->content_type, out, err);
    /* Once moved into storage the file is the blob: a retry (conflict)
     * stores it again from there, and it must not be deleted as a temp. */
    if (!rc) req->body_path[0] = '\0';
    return rc;
}

static void run_upload(cvx__job_t *j) {
    upload_t u = {cvx_runtime_storage(j->srv->rt), j->req, j->args};
    cvx_buf_t id = {0};
    cvx_err_t err;
    int rc = cvx_exec_with_txn(j->srv->rt, op_upload, &u, &id, &err);
    if (rc) {
        j->status = 500;
        cvx__error_json(&j->body, "StorageError", err.msg);
    } else {
        j->status = 200;
        cvx_buf_append_str(&j->body, "{\"storageId\":");
        cvx_buf_append(&j->body, id.data, id.len);
        cvx_buf_append_char(&j->body, '}');
    }
    cvx_buf_free(&id);
}

bool cvx__upload_authorized(cvx_server_t *s, const cvx__req_t *req) {
    char token[120];
    return cvx__query_param(req, "token", token, sizeof token) &&
           cvx_storage_token_valid(cvx_runtime_storage(s->rt), token, cvx_now_ns() / 1000000);
}

bool cvx__is_upload(const cvx__req_t *req) {
    return cvx__req_method_is(req, "POST") && cvx__path_is(req, "/api/storage/upload");
}

int cvx__route_files(cvx_server_t *s, cvx__req_t *req) {
    cvx_slice_t path = req->path;
    if (path.len >= 5 && !memcmp(path.ptr, "/http", 5) && (path.len == 5 || path.ptr[5] == '/'))
        return start_http_action(s, req);
    if (path.len <= 13 || memcmp(path.ptr, "/api/storage/", 13) != 0) return -1;
    if (cvx__is_upload(req)) {
        if (!cvx__upload_authorized(s, req)) { /* expired while the body arrived */
            cvx__send_error(req, 401, "Unauthorized", CVX__UPLOAD_URL_INVALID);
            return 0;
        }
        cvx__job_t *j = cvx__job_new(s);
        cvx_slice_t ct = cvx__req_header(req, "content-type");
        if (!j || (ct.ptr && !(j->args = cvx_strndup(ct.ptr, ct.len)))) {
            cvx__job_free(j);
            cvx__send_error(req, 500, "OutOfMemory", "out of memory");
            return 0;
        }
        j->run = run_upload;
        cvx__submit(s, req, j);
        return 0;
    }
    if (!cvx__req_method_is(req, "GET") && !cvx__req_method_is(req, "HEAD")) {
        cvx__send_error(req, 405, "MethodNotAllowed", "use GET for files, POST for /api/storage/upload");
        return 0;
    }
    cvx__job_t *j = cvx__job_new(s);
    if (j) j->path = cvx_strndup(path.ptr + 13, path.len - 13);
    cvx_slice_t r = cvx__req_header(req, "range");
    if (j && r.ptr) j->args = cvx_strndup(r.ptr, r.len);
    if (!j || !j->path || (r.ptr && !j->args)) {
        cvx__job_free(j);
        cvx__send_error(req, 500, "OutOfMemory", "out of memory");
        return 0;
    }
    j->run = run_download;
    cvx__submit(s, req, j);
    return 0;
}
