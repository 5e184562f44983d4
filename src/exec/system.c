/* System queries: the `_system/...` functions Convex's CLI and dashboard
 * subscribe to, answered by the host from a read transaction (so a
 * subscription to one follows commits like any query). Only admin calls
 * reach them; to anyone else they do not exist. */
#include <string.h>

#include "exec/exec_int.h"

typedef int (*sysfn_t)(cvx_txn_t *txn, const cvx_value_t *args, cvx_arena_t *a, cvx_buf_t *out, cvx_err_t *err);

/* _system/cli/queryEnvironmentVariables: every variable, [{name, value}]. */
static int env_list(cvx_txn_t *txn, const cvx_value_t *args, cvx_arena_t *a, cvx_buf_t *out, cvx_err_t *err) {
    (void)args;
    cvx_buf_t all = {0};
    cvx_value_t *v = NULL;
    int rc = cvx_abi_env_read(txn, NULL, 0, &all, err);
    if (!rc) rc = cvx_json_parse(a, all.data ? all.data : "{}", all.len ? all.len : 2, &v, err);
    explicit_bzero(all.data ? all.data : (char *)&all, all.data ? all.len : 0);
    cvx_buf_free(&all);
    if (rc) return rc;
    cvx_buf_append_char(out, '[');
    for (size_t i = 0; v->type == CVX_T_OBJECT && i < v->u.obj.len; i++) {
        const cvx_field_t *f = &v->u.obj.fields[i];
        cvx_buf_append_str(out, i ? ",{\"name\":" : "{\"name\":");
        cvx_buf_append_json_string(out, f->name, f->name_len);
        cvx_buf_append_str(out, ",\"value\":");
        cvx_json_write(out, f->value);
        cvx_buf_append_char(out, '}');
    }
    cvx_buf_append_char(out, ']');
    return CVX_OK;
}

/* _system/cli/queryEnvironmentVariables:get {name}: {name, value} or null. */
static int env_get(cvx_txn_t *txn, const cvx_value_t *args, cvx_arena_t *a, cvx_buf_t *out, cvx_err_t *err) {
    (void)a;
    const cvx_value_t *name = cvx_obj_get_cstr(args, "name");
    if (!name || name->type != CVX_T_STRING) return cvx_err_set(err, CVX_E_ARGS, "\"name\" must be a string");
    cvx_buf_t value = {0};
    int rc = cvx_abi_env_read(txn, name->u.str.ptr, name->u.str.len, &value, err);
    if (!rc && value.len == 4 && !memcmp(value.data, "null", 4)) {
        cvx_buf_append_str(out, "null");
    } else if (!rc) {
        cvx_buf_append_str(out, "{\"name\":");
        cvx_buf_append_json_string(out, name->u.str.ptr, name->u.str.len);
        cvx_buf_append_str(out, ",\"value\":");
        cvx_buf_append(out, value.data, value.len);
        cvx_buf_append_char(out, '}');
    }
    explicit_bzero(value.data ? value.data : (char *)&value, value.data ? value.len : 0);
    cvx_buf_free(&value);
    return rc;
}

static const struct {
    const char *path;
    sysfn_t fn;
} SYSTEM[] = {
    {"_system/cli/queryEnvironmentVariables:default", env_list},
    {"_system/cli/queryEnvironmentVariables:get", env_get},
};

bool cvx__is_system_path(const char *path, size_t len) { return len >= 8 && !memcmp(path, "_system/", 8); }

int cvx__system_call(cvx_runtime_t *rt, const cvx_request_t *req, size_t path_len, cvx_response_t *resp) {
    sysfn_t fn = NULL;
    for (size_t i = 0; i < CVX_ARRAY_LEN(SYSTEM) && req->allow_internal; i++)
        if (strlen(SYSTEM[i].path) == path_len && !memcmp(SYSTEM[i].path, req->path, path_len)) fn = SYSTEM[i].fn;
    resp->kind = CVX_KIND_QUERY;
    if (!fn || (req->expect_kind && req->expect_kind != CVX_KIND_QUERY) || req->http) {
        cvx_buf_printf(&resp->r.message, "Could not find public function for '%.*s'%s", (int)CVX_MIN(path_len, 200u),
                       req->path, req->allow_internal ? ": cvx does not have this system function" : "");
        return resp->r.status = CVX_E_NO_FUNCTION;
    }
    cvx_store_t *store = cvx_runtime_store(rt);
    if (!store) {
        cvx_buf_append_str(&resp->r.message, "no database is attached to this runtime");
        return resp->r.status = CVX_E_INTERNAL;
    }
    cvx_arena_t *a = cvx_arena_new(4096);
    cvx_value_t *args = NULL;
    cvx_txn_t *txn = NULL;
    cvx_err_t err;
    cvx_err_clear(&err);
    int rc = a ? CVX_OK : cvx_err_set(&err, CVX_E_NOMEM, "out of memory");
    if (!rc) rc = cvx_json_parse(a, req->args_json ? req->args_json : "{}", req->args_json ? req->args_len : 2, &args, &err);
    if (!rc && args->type != CVX_T_OBJECT) rc = cvx_err_set(&err, CVX_E_ARGS, "arguments must be an object");
    if (!rc) rc = cvx_txn_begin(store, CVX_TXN_READ, req->snapshot_ts, &txn, &err);
    if (!rc) {
        resp->ts = cvx_txn_snapshot_ts(txn);
        rc = fn(txn, args, a, &resp->r.value, &err);
        if (!rc && resp->r.value.oom) rc = cvx_err_set(&err, CVX_E_NOMEM, "out of memory");
        if (!rc && req->want_readset) resp->readset = cvx_txn_readset(txn);
        cvx_txn_abort(txn);
    }
    cvx_arena_free(a);
    if (rc) {
        cvx_buf_reset(&resp->r.value);
        cvx_buf_append_str(&resp->r.message, err.msg);
    }
    return resp->r.status = rc;
}
