/* The client API (§3 of docs/protocol.md):
 *
 *   POST /api/query | /api/mutation | /api/action   {path, format, args: [obj]}
 *   POST /api/function                              the same, for a function of any kind
 *   POST /api/run/<dir/module/function>             {args: obj, format}
 *   POST /api/query_ts                              like /api/query, plus "ts"
 *   POST /api/query_at_ts                           {path, args, ts}
 *   GET  /version, /instance_name
 *
 * Every function outcome is HTTP 200 with {"status": "success" | "error",
 * ...}; malformed requests are 4xx with {"code", "message"}. */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>

void cvx__call_response_json(const cvx_response_t *resp, bool want_ts, cvx_buf_t *out) {
    const cvx_abi_result_t *r = &resp->r;
    if (r->status == CVX_OK) {
        cvx_buf_append_str(out, "{\"status\":\"success\",\"value\":");
        cvx_buf_append(out, r->value.data ? r->value.data : "null", r->value.data ? r->value.len : 4);
    } else {
        cvx_buf_append_str(out, "{\"status\":\"error\",\"errorMessage\":");
        cvx_buf_append_json_string(out, r->message.data ? r->message.data : "", r->message.len);
        if (r->has_data) {
            cvx_buf_append_str(out, ",\"errorData\":");
            cvx_buf_append(out, r->data.data, r->data.len);
        }
    }
    if (r->logs.len) {
        cvx_buf_append_str(out, ",\"logLines\":");
        cvx_buf_append(out, r->logs.data, r->logs.len);
    }
    if (want_ts) {
        uint8_t ts[8];
        for (int i = 0; i < 8; i++) ts[i] = (uint8_t)(resp->ts >> (8 * i));
        cvx_buf_append_str(out, ",\"ts\":\"");
        cvx_base64_encode(out, ts, 8);
        cvx_buf_append_char(out, '"');
    }
    cvx_buf_append_char(out, '}');
}

/* The exec request of a call job. */
static cvx_request_t job_request(const cvx__job_t *j) {
    return (cvx_request_t){.path = j->path,
                           .args_json = j->args,
                           .args_len = j->args_len,
                           .expect_kind = j->expect,
                           .allow_internal = j->admin,
                           .snapshot_ts = j->at_ts,
                           .identity = j->identity,
                           .identity_len = j->identity_len};
}

#define LOOP_ANSWER_MAX (64u << 10)

/* A query whose result is cached is answered right here on the loop:
 * no worker hand-off, no guest code, no disk. */
static bool answer_cached(cvx_server_t *s, cvx__req_t *req, cvx__job_t *j) {
    cvx_request_t r = job_request(j);
    cvx_response_t resp;
    memset(&resp, 0, sizeof resp);
    if (!cvx_exec_call_cached(s->rt, &r, &resp)) {
        cvx_response_free(&resp);
        return false;
    }
    /* A big answer is shaped on a worker: megabytes copied here would
     * hold up every other connection (the worker finds it cached too). */
    if (resp.r.value.len + resp.r.logs.len > LOOP_ANSWER_MAX) {
        cvx_response_free(&resp);
        return false;
    }
    cvx__log_call(s, j->path, &resp);
    cvx_buf_t body = {0};
    cvx__call_response_json(&resp, j->want_ts, &body);
    cvx_response_free(&resp);
    if (body.oom) {
        cvx_buf_free(&body);
        return false;
    }
    cvx__send_json_take(req, 200, &body);
    return true;
}

/* exec hands the answer over once it may leave: on the worker, or on the
 * store's durability thread after a mutation's commit is durable. */
static void call_done(void *ctx, cvx_response_t *resp) {
    cvx__job_t *j = ctx;
    cvx__log_call(j->srv, j->path, resp);
    j->status = 200;
    cvx__call_response_json(resp, j->want_ts, &j->body);
    if (j->body.oom) {
        cvx_buf_free(&j->body);
        j->status = 500;
        cvx_buf_append_str(&j->body, "{\"code\":\"OutOfMemory\",\"message\":\"out of memory\"}");
    }
    cvx__job_done(j->srv, j);
}

/* Runs on a worker, which goes on to the next call while a mutation's
 * answer waits for its commit's fsync. */
static void run_call(cvx__job_t *j) {
    if (!cvx__job_verify(j, true)) {
        cvx__job_done(j->srv, j);
        return;
    }
    cvx_request_t req = job_request(j);
    cvx_exec_call_then(j->srv->rt, &req, call_done, j);
}

/* Parses a call body. `fn_from_url` is set for /api/run/<path>. Returns 0
 * and fills j, or sends a 400 and returns -1. */
static int parse_call(cvx__req_t *req, cvx__job_t *j, const char *fn_from_url, bool with_ts) {
    cvx_arena_t *a = cvx_arena_new(4096);
    cvx_value_t *body = NULL;
    cvx_err_t err;
    int rc = -1;
    if (!a) {
        cvx__send_error(req, 500, "OutOfMemory", "out of memory");
        return -1;
    }
    const char *text = req->body.data ? req->body.data : "";
    size_t len = req->body.len;
    if (cvx_json_parse(a, text, len, &body, &err) != CVX_OK) {
        char msg[CVX_ERR_MSG_MAX + 32];
        snprintf(msg, sizeof msg, "request body is not valid JSON: %s", err.msg);
        cvx__send_error(req, 400, "BadJsonBody", msg);
        goto out;
    }
    if (body->type != CVX_T_OBJECT) {
        cvx__send_error(req, 400, "BadJsonBody", "request body must be a JSON object");
        goto out;
    }
    const cvx_value_t *format = cvx_obj_get_cstr(body, "format");
    if (format && format->type == CVX_T_STRING && strcmp(format->u.str.ptr, "convex_encoded_json") != 0 &&
        strcmp(format->u.str.ptr, "json") != 0) {
        cvx__send_error(req, 400, "BadJsonBody", "unsupported \"format\": use \"convex_encoded_json\"");
        goto out;
    }
    if (fn_from_url) {
        j->path = cvx_strdup(fn_from_url);
    } else {
        const cvx_value_t *path = cvx_obj_get_cstr(body, "path");
        if (!path || path->type != CVX_T_STRING || path->u.str.len == 0 || path->u.str.len > 256) {
            cvx__send_error(req, 400, "BadJsonBody", "request body needs \"path\": the function name, e.g. \"users:list\"");
            goto out;
        }
        if (memchr(path->u.str.ptr, '\0', path->u.str.len)) { /* it would name a shorter path as a C string */
            cvx__send_error(req, 400, "BadJsonBody", "\"path\" must not contain a NUL character");
            goto out;
        }
        j->path = cvx_strndup(path->u.str.ptr, path->u.str.len);
    }
    /* args is [obj] (client) or obj (/api/run and older clients). */
    const cvx_value_t *args = cvx_obj_get_cstr(body, "args");
    if (args && args->type == CVX_T_ARRAY) {
        if (args->u.arr.len > 1) {
            cvx__send_error(req, 400, "BadJsonBody", "\"args\" must be an array with at most one object");
            goto out;
        }
        args = args->u.arr.len ? args->u.arr.items[0] : NULL;
    }
    if (args && args->type != CVX_T_OBJECT && args->type != CVX_T_NULL) {
        cvx__send_error(req, 400, "BadJsonBody", "function arguments must be an object");
        goto out;
    }
    cvx_buf_t ab = {0};
    if (args && args->type == CVX_T_OBJECT) cvx_json_write(&ab, args);
    else cvx_buf_append_str(&ab, "{}");
    j->args = cvx_buf_detach(&ab, &j->args_len);
    if (with_ts) {
        const cvx_value_t *ts = cvx_obj_get_cstr(body, "ts");
        cvx_buf_t raw = {0};
        if (!ts || ts->type != CVX_T_STRING || cvx_base64_decode(&raw, ts->u.str.ptr, ts->u.str.len, &err) || raw.len != 8) {
            cvx_buf_free(&raw);
            cvx__send_error(req, 400, "BadJsonBody", "\"ts\" must be a base64 u64 timestamp");
            goto out;
        }
        for (int i = 7; i >= 0; i--) j->at_ts = j->at_ts << 8 | (uint8_t)raw.data[i];
        cvx_buf_free(&raw);
    }
    if (!j->path || !j->args) {
        cvx__send_error(req, 500, "OutOfMemory", "out of memory");
        goto out;
    }
    rc = 0;
out:
    cvx_arena_free(a);
    return rc;
}

/* Actions run in their own lane. /api/run names no kind: the deployed
 * function's kind decides (an unknown one fails fast in any lane). */
static int call_lane(cvx_server_t *s, const cvx__job_t *j) {
    cvx_kind_t kind = j->expect;
    if (!kind) {
        cvx_app_t *app = cvx_runtime_app(s->rt);
        const cvx_fn_t *fn = app ? cvx_app_find(app, j->path, strlen(j->path)) : NULL;
        if (fn) kind = fn->kind;
        cvx_app_release(app);
    }
    return kind == CVX_KIND_ACTION ? CVX__LANE_ACTIONS : CVX__LANE_CALLS;
}

static int start_call(cvx_server_t *s, cvx__req_t *req, cvx_kind_t expect, const char *fn_from_url, bool want_ts,
                      bool at_ts) {
    if (!cvx__req_method_is(req, "POST")) {
        cvx__send_error(req, 405, "MethodNotAllowed", "use POST");
        return 0;
    }
    cvx__job_t *j = cvx__job_new(s);
    if (!j) {
        cvx__send_error(req, 500, "OutOfMemory", "out of memory");
        return 0;
    }
    if (parse_call(req, j, fn_from_url, at_ts) != 0) {
        cvx__job_free(j);
        return 0;
    }
    j->expect = expect;
    j->want_ts = want_ts;
    j->admin = cvx__is_admin(s, req);
    if (cvx__job_auth(s, req, j) != 0) {
        cvx__job_free(j);
        return 0;
    }
    j->run = run_call;
    j->completes_itself = true;
    j->lane = call_lane(s, j);
    /* Checking a token not seen lately may wait for the issuer's keys:
     * that waits among the actions, not ahead of every query. */
    if (j->token) j->lane = CVX__LANE_ACTIONS;
    /* A token is checked on the worker: its identity is not known here. */
    if (!at_ts && !j->token && (expect == CVX_KIND_QUERY || expect == 0) && answer_cached(s, req, j)) {
        cvx__job_free(j);
        return 0;
    }
    cvx__submit(s, req, j);
    return 0;
}

static void send_text(cvx__req_t *req, const char *text) {
    cvx_buf_t h = {0};
    cvx__header(&h, "content-type", "text/plain; charset=utf-8");
    cvx__add_cors(req, &h);
    cvx__respond(req, 200, &h, text, strlen(text));
    cvx_buf_free(&h);
}

int cvx__route_api(cvx_server_t *s, cvx__req_t *req) {
    if (cvx__path_is(req, "/api/query")) return start_call(s, req, CVX_KIND_QUERY, NULL, false, false);
    if (cvx__path_is(req, "/api/mutation")) return start_call(s, req, CVX_KIND_MUTATION, NULL, false, false);
    if (cvx__path_is(req, "/api/action")) return start_call(s, req, CVX_KIND_ACTION, NULL, false, false);
    /* Any kind: what ConvexHttpClient.function() and `npx convex run` call. */
    if (cvx__path_is(req, "/api/function")) return start_call(s, req, 0, NULL, false, false);
    if (cvx__path_is(req, "/api/query_ts")) return start_call(s, req, CVX_KIND_QUERY, NULL, true, false);
    if (cvx__path_is(req, "/api/query_at_ts")) return start_call(s, req, CVX_KIND_QUERY, NULL, true, true);
    cvx_slice_t path = req->path;
    if (path.len > 9 && memcmp(path.ptr, "/api/run/", 9) == 0) {
        /* /api/run/admin/users/list -> admin/users:list */
        char fn[300];
        size_t n = path.len - 9;
        if (n >= sizeof fn) {
            cvx__send_error(req, 400, "BadRequest", "function name too long");
            return 0;
        }
        memcpy(fn, path.ptr + 9, n);
        fn[n] = '\0';
        char *slash = strrchr(fn, '/');
        if (!slash || slash == fn || !slash[1]) {
            cvx__send_error(req, 400, "BadRequest", "use /api/run/<module>/<function>");
            return 0;
        }
        *slash = ':';
        return start_call(s, req, 0, fn, false, false);
    }
    if (cvx__path_is(req, "/version")) {
        send_text(req, "cvx " CVX_VERSION);
        return 0;
    }
    if (cvx__path_is(req, "/instance_name")) {
        send_text(req, "cvx-local");
        return 0;
    }
    return -1;
}
