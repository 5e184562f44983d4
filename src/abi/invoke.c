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
    cvx_buf_reset(&r->journal);
    r->nlogs = 0;
    r->log_full = 0;
    r->log_note = false;
    r->fuel_used = 0;
    r->memory_bytes = 0;
}

void cvx_abi_result_free(cvx_abi_result_t *r) {
    cvx_buf_free(&r->value);
    cvx_buf_free(&r->message);
    cvx_buf_free(&r->data);
    cvx_buf_free(&r->logs);
    cvx_buf_free(&r->journal);
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
static int panic_result(cvx__call_t *c, const char *path, uint64_t memory_limit, cvx_abi_result_t *res) {
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
    if (oom && oom_size > 0)
        return fail(res, CVX_E_MEMORY, "function exceeded its memory limit (%llu MiB): allocation of %.0f bytes failed",
                    (unsigned long long)(memory_limit >> 20), oom_size);
    if (oom) return fail(res, CVX_E_MEMORY, "function exceeded its memory limit (%llu MiB)", (unsigned long long)(memory_limit >> 20));
    if (file)
        return fail(res, CVX_E_PANIC, "Uncaught Error: %s\n    at %s (%s:%.0f:%.0f)", message, path, file, line, col);
    return fail(res, CVX_E_PANIC, "Uncaught Error: %s\n    at %s", message, path);
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
    const cvx_value_t *name = cvx_obj_get_cstr(e, "name");
    const cvx_value_t *stack = cvx_obj_get_cstr(e, "stack");
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
    /* "Uncaught TypeError: x is not a function" and the guest's stack, its
     * positions mapped back to the app's files. */
    cvx_buf_t m = {0};
    cvx_buf_printf(&m, "Uncaught %s: %s", name && name->type == CVX_T_STRING ? name->u.str.ptr : "Error", text);
    if (stack && stack->type == CVX_T_STRING && stack->u.str.len) {
        cvx_buf_t frames = {0};
        cvx_sourcemap_rewrite(c->fn ? c->fn->sourcemap : c->cfg->sourcemap, stack->u.str.ptr, stack->u.str.len, &frames);
        if (frames.len) {
            cvx_buf_append_char(&m, '\n');
            cvx_buf_append(&m, frames.data, frames.len);
        }
        cvx_buf_free(&frames);
    }
    res->status = m.oom ? CVX_E_NOMEM : CVX_E_UNCAUGHT;
    cvx_buf_reset(&res->message);
    cvx_buf_append(&res->message, m.data ? m.data : "", m.len);
    cvx_buf_free(&m);
    return res->status;
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

/* The call itself, for a function of the app (fn) or, with fn NULL, any
 * export (the JavaScript engine's cvx_js_load at deploy, named `label`). */
static int run(const cvx_app_t *app, cvx_module_t *m, const cvx_fn_t *fn, const char *label, const char *init,
               const char *export,
               const cvx_abi_call_config_t *cfg, const cvx_limits_t *limits, const char *args_json, size_t args_len,
               cvx_abi_result_t *res, cvx_instance_t **keep) {
    cvx_abi_result_reset(res);
    cvx__call_t c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    c.res = res;
    c.fn_path = fn ? fn->path : label;
    c.fn = fn;
    c.app = app;
    if (limits && limits->timeout_ms) c.deadline_ns = cvx_now_ns() + limits->timeout_ms * 1000000ull;
    c.deterministic = cfg->kind != CVX_KIND_ACTION;
    if (cfg->journal && *cfg->journal) {
        /* A journal that does not parse is ignored: pages then start over. */
        cvx_value_t *j;
        cvx_err_t ignored;
        c.journal_arena = cvx_arena_new(1024);
        if (c.journal_arena && cvx_json_parse(c.journal_arena, cfg->journal, strlen(cfg->journal), &j, &ignored) == CVX_OK &&
            j->type == CVX_T_ARRAY)
            c.journal_in = j;
    }
    c.arena = cvx_arena_new(8192);
    if (!c.arena) return fail(res, CVX_E_NOMEM, "out of memory starting %s", c.fn_path);
    if (cvx_buf_append(&c.pending, args_json, args_len)) {
        cvx_arena_free(c.arena);
        return fail(res, CVX_E_NOMEM, "out of memory starting %s", c.fn_path);
    }

    cvx_instance_t *inst = NULL;
    cvx_err_t err;
    cvx_err_clear(&err);
    int rc = cvx_instance_new(m, limits, &c, &inst, &err);
    if (rc == CVX_OK && init) rc = cvx_instance_call(inst, init, NULL, 0, NULL, 0, &err);
    if (rc == CVX_OK) {
        cvx_wval_t arg = {.i32 = (int32_t)args_len}, ret = {.i32 = 0};
        rc = cvx_instance_call(inst, export, &arg, 1, &ret, 1, &err);
        cvx__flush_lines(inst, &c);
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
        if (c.panicked && (rc == CVX_E_TRAP || rc == CVX_E_PANIC)) panic_result(&c, c.fn_path, limits ? limits->memory_bytes : 0, res);
        else fail(res, rc, "%s", err.msg);
    } else if (!c.has_output) {
        fail(res, CVX_E_UNCAUGHT, "Uncaught Error: function %s returned no result", c.fn_path);
    } else if (c.output_kind == 1) {
        error_result(&c, res);
    } else {
        value_result(&c, res);
    }
    /* Value and logs go back together: bounded together. */
    cvx__fit_logs(res);
    if (c.npaged) {
        cvx_buf_append_char(&c.journal, ']');
        cvx_buf_t tmp = res->journal;
        res->journal = c.journal;
        c.journal = tmp;
    }
    if (res->logs.oom || res->message.oom || res->value.oom || res->journal.oom) res->status = CVX_E_NOMEM;

    if (keep && res->status == CVX_OK) *keep = inst;
    else cvx_instance_free(inst);
    cvx_arena_free(c.arena);
    cvx_buf_free(&c.pending);
    cvx_buf_free(&c.output);
    cvx_buf_free(&c.panic);
    cvx_buf_free(&c.line[0]);
    cvx_buf_free(&c.line[1]);
    cvx_buf_free(&c.fatal_msg);
    cvx_buf_free(&c.journal);
    cvx_arena_free(c.journal_arena);
    return res->status;
}

int cvx_abi_invoke(cvx_app_t *app, const cvx_fn_t *fn, const cvx_abi_call_config_t *cfg, const cvx_limits_t *limits,
                   const char *args_json, size_t args_len, cvx_abi_result_t *res) {
    return run(app, fn->wasm, fn, NULL, NULL, fn->export_name, cfg, limits, args_json, args_len, res, NULL);
}

int cvx_abi_run_export(cvx_module_t *m, const char *label, const char *init, const char *export,
                       const cvx_abi_call_config_t *cfg, const cvx_limits_t *limits, const char *input, size_t len,
                       cvx_abi_result_t *res, cvx_instance_t **keep) {
    if (keep) *keep = NULL;
    return run(NULL, m, NULL, label, init, export, cfg, limits, input, len, res, keep);
}
