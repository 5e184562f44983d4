/* One invocation of a guest function (docs/abi.md §5): fresh instance,
 * arguments through the pending buffer, the export called with their
 * length, and the outcome classified. Every way a call can end — a value,
 * a returned error, an application error with data, a panic, a trap, a
 * limit — becomes a cvx_abi_result_t with its own code and message. */
#include "abi/abi_int.h"

#include <stdio.h>
#include <string.h>

void cvx_abi_result_reset(cvx_abi_result_t *r) {
    r->status = CVX_OK;
    cvx_buf_reset(&r->value);
    cvx_buf_reset(&r->message);
    cvx_buf_reset(&r->data);
    r->has_data = false;
    cvx_buf_reset(&r->logs);
    r->nlogs = 0;
    r->fuel_used = 0;
    r->memory_bytes = 0;
}

void cvx_abi_result_free(cvx_abi_result_t *r) {
    cvx_buf_free(&r->value);
    cvx_buf_free(&r->message);
    cvx_buf_free(&r->data);
    cvx_buf_free(&r->logs);
}

static int fail(cvx_abi_result_t *res, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(cvx_abi_result_t *res, int code, const char *fmt, ...) {
    char msg[CVX_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    res->status = code;
    cvx_buf_reset(&res->message);
    cvx_buf_append_str(&res->message, msg);
    return code;
}

/* "Uncaught Error: <message>\n    at <path> (<file>:<line>:<col>)" from
 * the guest's panic record. */
static int panic_result(cvx__call_t *c, const cvx_fn_t *fn, uint64_t memory_limit, cvx_abi_result_t *res) {
    cvx_arena_reset(c->arena);
    cvx_value_t *p = NULL;
    cvx_err_t err;
    const char *message = "panic";
    const char *file = NULL;
    double line = 0, col = 0;
    bool oom = false;
    double oom_size = 0;
    if (cvx_json_parse(c->arena, c->panic.data ? c->panic.data : "", c->panic.len, &p, &err) == CVX_OK &&
        p->type == CVX_T_OBJECT) {
        const cvx_value_t *v;
        if ((v = cvx_obj_get_cstr(p, "message")) && v->type == CVX_T_STRING) message = v->u.str.ptr;
        if ((v = cvx_obj_get_cstr(p, "file")) && v->type == CVX_T_STRING) file = v->u.str.ptr;
        if ((v = cvx_obj_get_cstr(p, "line")) && v->type == CVX_T_FLOAT64) line = v->u.f;
        if ((v = cvx_obj_get_cstr(p, "column")) && v->type == CVX_T_FLOAT64) col = v->u.f;
        if ((v = cvx_obj_get_cstr(p, "kind")) && v->type == CVX_T_STRING && strcmp(v->u.str.ptr, "oom") == 0) oom = true;
        if ((v = cvx_obj_get_cstr(p, "size")) && v->type == CVX_T_FLOAT64) oom_size = v->u.f;
    }
    if (oom)
        return fail(res, CVX_E_MEMORY, "function exceeded its memory limit (%llu MiB): allocation of %.0f bytes failed",
                    (unsigned long long)(memory_limit >> 20), oom_size);
    if (file)
        return fail(res, CVX_E_PANIC, "Uncaught Error: %s\n    at %s (%s:%.0f:%.0f)", message, fn->path, file, line, col);
    return fail(res, CVX_E_PANIC, "Uncaught Error: %s\n    at %s", message, fn->path);
}

/* The guest's own error: {"message": string, "data"?: value}. */
static int error_result(cvx__call_t *c, cvx_abi_result_t *res) {
    cvx_arena_reset(c->arena);
    cvx_value_t *e = NULL;
    cvx_err_t err;
    if (cvx_json_parse(c->arena, c->output.data ? c->output.data : "", c->output.len, &e, &err) != CVX_OK)
        return fail(res, CVX_E_UNCAUGHT, "Uncaught Error: function returned a malformed error: %s", err.msg);
    if (e->type != CVX_T_OBJECT)
        return fail(res, CVX_E_UNCAUGHT,
                    "Uncaught Error: function returned a malformed error: the error must be an object "
                    "{\"message\": string, \"data\"?: value}");
    const cvx_value_t *msg = cvx_obj_get_cstr(e, "message");
    const cvx_value_t *data = cvx_obj_get_cstr(e, "data");
    const char *text = msg && msg->type == CVX_T_STRING ? msg->u.str.ptr : "error";
    if (data) {
        res->status = CVX_E_APPLICATION;
        cvx_buf_reset(&res->message);
        cvx_buf_append_str(&res->message, text);
        cvx_buf_reset(&res->data);
        cvx_json_write(&res->data, data);
        res->has_data = true;
        return res->status;
    }
    return fail(res, CVX_E_UNCAUGHT, "Uncaught Error: %s", text);
}

/* The result must be a valid Convex value within the size limit: the
 * guest is not trusted to produce one. */
static int value_result(cvx__call_t *c, cvx_abi_result_t *res) {
    cvx_arena_reset(c->arena);
    cvx_value_t *v = NULL;
    cvx_err_t err;
    if (cvx_json_parse(c->arena, c->output.data ? c->output.data : "", c->output.len, &v, &err) != CVX_OK)
        return fail(res, CVX_E_INVALID_VALUE, "function returned an invalid value: %s", err.msg);
    /* The output buffer becomes the result (no copy); the result's old
     * buffer is freed with the call's. */
    cvx_buf_t old = res->value;
    res->value = c->output;
    c->output = old;
    res->status = CVX_OK;
    return CVX_OK;
}

int cvx_abi_invoke(cvx_app_t *app, const cvx_fn_t *fn, const cvx_abi_call_config_t *cfg, const cvx_limits_t *limits,
                   const char *args_json, size_t args_len, cvx_abi_result_t *res) {
    cvx_abi_result_reset(res);
    cvx__call_t c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    c.res = res;
    c.fn_path = fn->path;
    c.deterministic = cfg->kind != CVX_KIND_ACTION;
    c.arena = cvx_arena_new(8192);
    if (!c.arena) return fail(res, CVX_E_NOMEM, "out of memory starting %s", fn->path);
    if (cvx_buf_append(&c.pending, args_json, args_len)) {
        cvx_arena_free(c.arena);
        return fail(res, CVX_E_NOMEM, "out of memory starting %s", fn->path);
    }

    cvx_instance_t *inst = NULL;
    cvx_err_t err;
    cvx_err_clear(&err);
    int rc = cvx_instance_new(cvx_app_module(app), limits, &c, &inst, &err);
    if (rc == CVX_OK) {
        cvx_wval_t arg = {.i32 = (int32_t)args_len}, ret = {.i32 = 0};
        rc = cvx_instance_call(inst, fn->export_name, &arg, 1, &ret, 1, &err);
        if (rc != CVX_E_LOG_LIMIT) cvx__flush_lines(inst, &c);
        res->fuel_used = cvx_instance_fuel_used(inst);
        res->memory_bytes = cvx_instance_memory_size(inst);
        if (rc == CVX_OK && ret.i32 != 0) {
            rc = CVX_E_UNCAUGHT;
            cvx_err_set(&err, rc, "Uncaught Error: function returned status %d", (int)ret.i32);
        }
    }

    if (c.fatal_code) {
        fail(res, c.fatal_code, "%s", c.fatal_msg.data ? c.fatal_msg.data : cvx_code_message(c.fatal_code));
    } else if (rc != CVX_OK) {
        if (c.panicked && (rc == CVX_E_TRAP || rc == CVX_E_PANIC)) panic_result(&c, fn, limits ? limits->memory_bytes : 0, res);
        else fail(res, rc, "%s", err.msg);
    } else if (!c.has_output) {
        fail(res, CVX_E_UNCAUGHT, "Uncaught Error: function %s returned no result", fn->path);
    } else if (c.output_kind == 1) {
        error_result(&c, res);
    } else {
        value_result(&c, res);
    }
    if (res->logs.oom || res->message.oom || res->value.oom) res->status = CVX_E_NOMEM;

    cvx_instance_free(inst);
    cvx_arena_free(c.arena);
    cvx_buf_free(&c.pending);
    cvx_buf_free(&c.output);
    cvx_buf_free(&c.panic);
    cvx_buf_free(&c.line[0]);
    cvx_buf_free(&c.line[1]);
    cvx_buf_free(&c.fatal_msg);
    return res->status;
}
