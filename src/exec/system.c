/* System queries: the `_system/...` functions Convex's CLI and dashboard
 * subscribe to, answered by the host from a read transaction (so a
 * subscription to one follows commits like any query). Only admin calls
 * reach them; to anyone else they do not exist. */
#include <string.h>

#include "exec/exec_int.h"

typedef int (*sysfn_t)(cvx_runtime_t *rt, cvx_txn_t *txn, const cvx_value_t *args, cvx_arena_t *a, cvx_buf_t *out,
                       cvx_err_t *err);

/* _system/cli/queryEnvironmentVariables: every variable, [{name, value}]. */
static int env_list(cvx_runtime_t *rt, cvx_txn_t *txn, const cvx_value_t *args, cvx_arena_t *a, cvx_buf_t *out,
                    cvx_err_t *err) {
    (void)rt;
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
static int env_get(cvx_runtime_t *rt, cvx_txn_t *txn, const cvx_value_t *args, cvx_arena_t *a, cvx_buf_t *out,
                   cvx_err_t *err) {
    (void)rt;
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

/* The size of a page when the caller names none, and the most it gets. */
#define PAGE_MAX 1000

/* paginationOpts {cursor, numItems} -> cursor (NULL: the start), limit. */
static int page_opts(const cvx_value_t *args, const char **cursor, int64_t *limit, cvx_err_t *err) {
    const cvx_value_t *po = cvx_obj_get_cstr(args, "paginationOpts");
    *cursor = NULL;
    *limit = PAGE_MAX;
    if (!po || po->type == CVX_T_NULL) return CVX_OK;
    if (po->type != CVX_T_OBJECT) return cvx_err_set(err, CVX_E_ARGS, "\"paginationOpts\" must be an object");
    const cvx_value_t *c = cvx_obj_get_cstr(po, "cursor"), *n = cvx_obj_get_cstr(po, "numItems");
    if (c && c->type == CVX_T_STRING && c->u.str.len) *cursor = c->u.str.ptr;
    double want = n && n->type == CVX_T_FLOAT64 ? n->u.f : n && n->type == CVX_T_INT64 ? (double)n->u.i : PAGE_MAX;
    if (want >= 1 && want < PAGE_MAX) *limit = (int64_t)want;
    return CVX_OK;
}

/* _system/cli/tables {paginationOpts}: one page of every table, [{name}]
 * (the `npx convex data` listing). Tables are few: one page holds them. */
static int tables(cvx_runtime_t *rt, cvx_txn_t *txn, const cvx_value_t *args, cvx_arena_t *a, cvx_buf_t *out,
                  cvx_err_t *err) {
    (void)txn;
    (void)args;
    cvx_buf_t list = {0};
    cvx_value_t *v = NULL;
    int rc = cvx_exec_list_tables(rt, &list, err);
    if (!rc) rc = cvx_json_parse(a, list.data ? list.data : "[]", list.len ? list.len : 2, &v, err);
    cvx_buf_free(&list);
    if (rc) return rc;
    cvx_buf_append_str(out, "{\"page\":[");
    size_t shown = 0;
    for (size_t i = 0; v->type == CVX_T_ARRAY && i < v->u.arr.len; i++) {
        const cvx_value_t *name = cvx_obj_get_cstr(v->u.arr.items[i], "name");
        if (!name || name->type != CVX_T_STRING || name->u.str.ptr[0] == '_') continue; /* the host's own */
        cvx_buf_append_str(out, shown++ ? ",{\"name\":" : "{\"name\":");
        cvx_json_write(out, name);
        cvx_buf_append_char(out, '}');
    }
    cvx_buf_append_str(out, "],\"isDone\":true,\"continueCursor\":\"\"}");
    return CVX_OK;
}

/* _system/cli/tableData {table, order, paginationOpts}: a page of a
 * table's documents by creation time. */
static int table_data(cvx_runtime_t *rt, cvx_txn_t *txn, const cvx_value_t *args, cvx_arena_t *a, cvx_buf_t *out,
                      cvx_err_t *err) {
    (void)rt;
    (void)a;
    const cvx_value_t *table = cvx_obj_get_cstr(args, "table"), *order = cvx_obj_get_cstr(args, "order");
    if (!table || table->type != CVX_T_STRING) return cvx_err_set(err, CVX_E_ARGS, "\"table\" must be a string");
    cvx_query_t q = {.table = table->u.str.ptr,
                     .desc = !order || order->type != CVX_T_STRING || strcmp(order->u.str.ptr, "asc") != 0};
    int rc = page_opts(args, &q.cursor, &q.limit, err);
    return rc ? rc : cvx_txn_query(txn, &q, out, err);
}

static const struct {
    const char *path;
    sysfn_t fn;
} SYSTEM[] = {
    {"_system/cli/tables:default", tables},
    {"_system/cli/tableData:default", table_data},
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
        rc = fn(rt, txn, args, a, &resp->r.value, &err);
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
