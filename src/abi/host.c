/* The cvx_1 host functions (docs/abi.md §3), linked into Wasmtime by the
 * table at the end, which host_fns.def generates.
 *
 * Every function reaches guest memory only through cvx_instance_mem, which
 * bounds-checks and turns a bad range into a trap. Results travel through
 * the pending buffer: a non-negative return is its length, a negative one
 * is -code with an error JSON {"message": ...} pending. Requests are JSON
 * parsed into the call's scratch arena, which is reset on every host call so
 * a long-running guest does not accumulate memory. */
#include "abi/abi_int.h"

#include <stdio.h>
#include <string.h>

/* ---- result plumbing -------------------------------------------------------- */

static int64_t ok_pending(cvx__call_t *c) {
    if (c->pending.oom) {
        cvx_buf_reset(&c->pending);
        return -(int64_t)CVX_E_NOMEM;
    }
    return (int64_t)c->pending.len;
}

int64_t cvx__err_pending(cvx__call_t *c, int code, const char *msg) {
    cvx_buf_reset(&c->pending);
    cvx_buf_append_str(&c->pending, "{\"message\":");
    cvx_buf_append_json_string(&c->pending, msg, strlen(msg));
    cvx_buf_append_char(&c->pending, '}');
    return -(int64_t)code;
}

/* A limit reached inside a host call ends the whole call with that error,
 * even if the guest ignores the error code it gets back. */
static int64_t fatal_pending(cvx__call_t *c, int code, const char *msg) {
    if (!c->fatal_code) {
        c->fatal_code = code;
        cvx_buf_reset(&c->fatal_msg);
        cvx_buf_append_str(&c->fatal_msg, msg);
    }
    return cvx__err_pending(c, code, msg);
}

int64_t cvx__store_error_pending(cvx__call_t *c, const cvx_err_t *err) {
    if (err->code == CVX_E_LIMIT || err->code == CVX_E_NOMEM || err->code == CVX_E_STORE ||
        err->code == CVX_E_IO)
        return fatal_pending(c, err->code, err->msg);
    return cvx__err_pending(c, err->code, err->msg);
}

int cvx__parse_request(cvx_instance_t *inst, cvx__call_t *c, const cvx_wval_t *a, const char *what, cvx_value_t **out,
                       int64_t *ret) {
    uint8_t *p = cvx_instance_mem(inst, a[0].i32, a[1].i32, what);
    if (!p) return 1;
    cvx_arena_reset(c->arena);
    cvx_err_t err;
    if (cvx_json_parse(c->arena, (const char *)p, (size_t)a[1].i32, out, &err) != CVX_OK) {
        cvx_err_prefix(&err, "%s: invalid request", what);
        *ret = cvx__err_pending(c, err.code == CVX_E_NOMEM ? CVX_E_NOMEM : CVX_E_INVALID_ARGUMENT, err.msg);
        return -1;
    }
    if ((*out)->type != CVX_T_OBJECT) {
        *ret = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "request must be a JSON object");
        return -1;
    }
    return 0;
}

/* Reads a required string field of a request. */
static const cvx_value_t *req_string(const cvx_value_t *req, const char *field) {
    const cvx_value_t *v = cvx_obj_get_cstr(req, field);
    return v && v->type == CVX_T_STRING ? v : NULL;
}

/* ---- call plumbing ----------------------------------------------------------- */

static int h_read(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    /* The range is checked first: a bad pointer or a negative length is
     * reported as such, whatever is pending. */
    uint8_t *p = cvx_instance_mem(inst, a[0].i32, a[1].i32, "__convex_read");
    if (!p) return 1;
    if ((size_t)a[1].i32 != c->pending.len)
        return cvx_instance_trap(inst, CVX_E_TRAP, "__convex_read: asked for %d bytes but %zu are pending",
                                 (int)a[1].i32, c->pending.len);
    if (c->pending.len) memcpy(p, c->pending.data, c->pending.len);
    r[0].i32 = (int32_t)c->pending.len;
    cvx_buf_reset(&c->pending);
    return 0;
}

static int h_pending_len(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    r[0].i32 = (int32_t)CALL(inst)->pending.len;
    return 0;
}

static int h_output(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    if (a[0].i32 != 0 && a[0].i32 != 1)
        return cvx_instance_trap(inst, CVX_E_TRAP, "__convex_output: unknown kind %d", (int)a[0].i32);
    /* Too large but inside memory is the result size limit; a negative
     * length or a range outside memory is a bounds trap like anywhere. */
    if (a[2].i32 > 0 && (uint32_t)a[2].i32 > CVX_MAX_ARGS_SIZE && a[1].i32 >= 0 &&
        (uint64_t)(uint32_t)a[1].i32 + (uint32_t)a[2].i32 <= cvx_instance_memory_size(inst))
        return cvx_instance_trap(inst, CVX_E_LIMIT, "function result is larger than the limit of %u bytes",
                                 CVX_MAX_ARGS_SIZE);
    uint8_t *p = cvx_instance_mem(inst, a[1].i32, a[2].i32, "__convex_output");
    if (!p) return 1;
    cvx_buf_reset(&c->output);
    if (cvx_buf_append(&c->output, p, (size_t)a[2].i32))
        return cvx_instance_trap(inst, CVX_E_NOMEM, "out of memory storing the function's result");
    c->has_output = true;
    c->output_kind = a[0].i32;
    r[0].i32 = 0;
    return 0;
}

static int h_panic(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    /* The whole range must be valid; only the first 64 KiB are kept. */
    uint8_t *p = cvx_instance_mem(inst, a[0].i32, a[1].i32, "__convex_panic");
    if (!p) return 1;
    cvx_buf_reset(&c->panic);
    cvx_buf_append(&c->panic, p, (size_t)CVX_MIN(a[1].i32, 65536));
    c->panicked = true;
    r[0].i32 = 0;
    return 0;
}

static int h_log(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    uint8_t *p = cvx_instance_mem(inst, a[1].i32, a[2].i32, "__convex_log");
    if (!p) return 1;
    if (cvx__log_line(inst, c, a[0].i32, (const char *)p, (size_t)a[2].i32)) return 1;
    r[0].i32 = 0;
    return 0;
}

static int h_random_bytes(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    uint8_t *p = cvx_instance_mem(inst, a[0].i32, a[1].i32, "__convex_random_bytes");
    if (!p) return 1;
    cvx__random(c, p, (size_t)a[1].i32);
    r[0].i32 = 0;
    return 0;
}

/* () -> {"path", "kind", "visibility", "requestId"}: which function this
 * call runs, for guests with one export for many functions (the
 * JavaScript runtime). */
static int h_call_info(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    cvx_buf_reset(&c->pending);
    const cvx_fn_t *fn = c->fn;
    cvx_buf_append_str(&c->pending, "{\"path\":");
    cvx_buf_append_json_string(&c->pending, c->fn_path, strlen(c->fn_path));
    cvx_buf_printf(&c->pending, ",\"kind\":\"%s\",\"visibility\":\"%s\",\"requestId\":",
                   fn && fn->http ? "httpAction" : cvx_kind_name(c->cfg->kind), fn && fn->internal ? "internal" : "public");
    const char *rid = c->cfg->request_id ? c->cfg->request_id : "";
    cvx_buf_append_json_string(&c->pending, rid, strlen(rid));
    cvx_buf_append_char(&c->pending, '}');
    r[0].i64 = ok_pending(c);
    return 0;
}

/* {} -> the caller's UserIdentity, or null. */
static int h_auth_identity(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    CVX__REQUEST("__convex_auth_identity", req);
    (void)req;
    cvx_buf_reset(&c->pending);
    if (c->cfg->identity) cvx_buf_append(&c->pending, c->cfg->identity, c->cfg->identity_len);
    else cvx_buf_append_str(&c->pending, "null");
    r[0].i64 = ok_pending(c);
    return 0;
}

static int h_now_ms(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    r[0].f64 = cvx__now_ms(CALL(inst));
    return 0;
}

/* ---- database ------------------------------------------------------------------ */

/* Common prologue of the db functions: the call kind decides what is
 * allowed, independent of the guest. Returns non-zero with *ret set when
 * the request must not proceed. */
static int db_allowed(cvx__call_t *c, bool write, int64_t *ret) {
    if (c->cfg->kind == CVX_KIND_ACTION || !c->cfg->txn) {
        *ret = fatal_pending(c, CVX_E_FORBIDDEN,
                           "the database is not available in actions; call a query or mutation with "
                           "run_query / run_mutation");
        return 1;
    }
    if (write && c->cfg->kind == CVX_KIND_QUERY) {
        /* Ends the call whatever the guest does with the error. */
        *ret = fatal_pending(c, CVX_E_FORBIDDEN, "queries cannot write to the database; use a mutation");
        return 1;
    }
    return 0;
}

#define DB_PROLOGUE(what, write)                                                                                 \
    cvx__call_t *c = CALL(inst);                                                                                 \
    CVX__REQUEST(what, req);                                                                                     \
    int64_t ret = 0;                                                                                             \
    if (db_allowed(c, write, &ret)) {                                                                            \
        r[0].i64 = ret;                                                                                          \
        return 0;                                                                                                \
    }                                                                                                            \
    cvx_err_t err;                                                                                               \
    cvx_err_clear(&err);                                                                                         \
    cvx_buf_reset(&c->pending)

#define REQUIRE_STRING(var, field)                                                                               \
    const cvx_value_t *var = req_string(req, field);                                                             \
    if (!var) {                                                                                                  \
        r[0].i64 = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "request needs a string field \"" field "\"");        \
        return 0;                                                                                                \
    }

#define REQUIRE_OBJECT(var, field)                                                                               \
    const cvx_value_t *var = cvx_obj_get_cstr(req, field);                                                       \
    if (!var || var->type != CVX_T_OBJECT) {                                                                     \
        r[0].i64 = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "request needs an object field \"" field "\"");       \
        return 0;                                                                                                \
    }

#define FINISH(rc)                                                                                               \
    r[0].i64 = (rc) == CVX_OK ? ok_pending(c) : cvx__store_error_pending(c, &err);                                            \
    return 0

/* An optional "table" in a request by id: the id must name that table,
 * as Convex's db.get("users", id) and friends require. */
static int check_id_table(cvx__call_t *c, const cvx_value_t *req, const cvx_value_t *id, const char *what, cvx_err_t *err) {
    const cvx_value_t *want = req_string(req, "table");
    if (!want) return CVX_OK;
    const char *table;
    int rc = cvx_txn_id_table(c->cfg->txn, id->u.str.ptr, id->u.str.len, &table, err);
    if (rc) return rc;
    if (table && strcmp(table, want->u.str.ptr) == 0) return CVX_OK;
    return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "Invalid argument `id` for `db.%s`: ID \"%s\" does not belong to table \"%s\"%s%s",
                       what, id->u.str.ptr, want->u.str.ptr, table ? ", it belongs to table " : "", table ? table : "");
}

static int h_db_get(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    DB_PROLOGUE("__convex_db_get", false);
    REQUIRE_STRING(id, "id");
    int rc = check_id_table(c, req, id, "get", &err);
    if (!rc) rc = cvx_txn_get(c->cfg->txn, id->u.str.ptr, id->u.str.len, &c->pending, &err);
    FINISH(rc);
}

/* {"table", "id"} -> the id when it is a well-formed id of that table,
 * else null (db.normalizeId). */
static int h_db_normalize_id(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    DB_PROLOGUE("__convex_db_normalize_id", false);
    REQUIRE_STRING(table, "table");
    /* "idString": the `convex` package's own name for it (docs/abi.md §7). */
    const cvx_value_t *id = req_string(req, "id");
    if (!id) id = req_string(req, "idString");
    if (!id) {
        r[0].i64 = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "request needs a string field \"id\"");
        return 0;
    }
    const char *actual = NULL;
    cvx_err_t ignored;
    if (cvx_txn_id_table(c->cfg->txn, id->u.str.ptr, id->u.str.len, &actual, &ignored) == CVX_OK && actual &&
        strcmp(actual, table->u.str.ptr) == 0)
        cvx_buf_append_json_string(&c->pending, id->u.str.ptr, id->u.str.len);
    else cvx_buf_append_str(&c->pending, "null");
    FINISH(CVX_OK);
}

static int h_db_insert(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    DB_PROLOGUE("__convex_db_insert", true);
    REQUIRE_STRING(table, "table");
    REQUIRE_OBJECT(value, "value");
    int rc = cvx_txn_insert(c->cfg->txn, table->u.str.ptr, table->u.str.len, value, &c->pending, &err);
    FINISH(rc);
}

static int h_db_patch(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    DB_PROLOGUE("__convex_db_patch", true);
    REQUIRE_STRING(id, "id");
    REQUIRE_OBJECT(value, "value");
    const cvx_value_t *remove = cvx_obj_get_cstr(req, "remove");
    const char *names[CVX_MAX_FIELDS];
    size_t nremove = 0;
    if (remove && remove->type != CVX_T_NULL) {
        if (remove->type != CVX_T_ARRAY || remove->u.arr.len > CVX_MAX_FIELDS) {
            r[0].i64 = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "\"remove\" must be an array of field names");
            return 0;
        }
        for (size_t i = 0; i < remove->u.arr.len; i++) {
            const cvx_value_t *f = remove->u.arr.items[i];
            if (f->type != CVX_T_STRING) {
                r[0].i64 = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "\"remove\" must be an array of field names");
                return 0;
            }
            names[nremove++] = f->u.str.ptr;
        }
    }
    int rc = check_id_table(c, req, id, "patch", &err);
    if (!rc) rc = cvx_txn_patch(c->cfg->txn, id->u.str.ptr, id->u.str.len, value, names, nremove, &err);
    if (rc == CVX_OK) cvx_buf_append_str(&c->pending, "null");
    FINISH(rc);
}

static int h_db_replace(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    DB_PROLOGUE("__convex_db_replace", true);
    REQUIRE_STRING(id, "id");
    REQUIRE_OBJECT(value, "value");
    int rc = check_id_table(c, req, id, "replace", &err);
    if (!rc) rc = cvx_txn_replace(c->cfg->txn, id->u.str.ptr, id->u.str.len, value, &err);
    if (rc == CVX_OK) cvx_buf_append_str(&c->pending, "null");
    FINISH(rc);
}

static int h_db_delete(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    DB_PROLOGUE("__convex_db_delete", true);
    REQUIRE_STRING(id, "id");
    int rc = check_id_table(c, req, id, "delete", &err);
    if (!rc) rc = cvx_txn_delete(c->cfg->txn, id->u.str.ptr, id->u.str.len, &err);
    if (rc == CVX_OK) cvx_buf_append_str(&c->pending, "null");
    FINISH(rc);
}

static cvx_range_op_t range_op(const cvx_value_t *v) {
    static const struct {
        const char *name;
        cvx_range_op_t op;
    } ops[] = {{"eq", CVX_OP_EQ}, {"gt", CVX_OP_GT}, {"gte", CVX_OP_GTE}, {"lt", CVX_OP_LT}, {"lte", CVX_OP_LTE}};
    if (!v || v->type != CVX_T_STRING) return 0;
    for (size_t i = 0; i < CVX_ARRAY_LEN(ops); i++)
        if (cvx_slice_eq_cstr(cvx_slice(v->u.str.ptr, v->u.str.len), ops[i].name)) return ops[i].op;
    return 0;
}

/* Turns a query request (docs/abi.md) into a cvx_query_t in the arena. */
static int parse_query(cvx__call_t *c, const cvx_value_t *req, cvx_query_t *q, cvx_err_t *err) {
    memset(q, 0, sizeof *q);
    q->limit = -1;
    const cvx_value_t *table = req_string(req, "table");
    if (!table) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "query needs a string field \"table\"");
    q->table = table->u.str.ptr;
    const cvx_value_t *index = cvx_obj_get_cstr(req, "index");
    if (index && index->type == CVX_T_STRING) q->index = index->u.str.ptr;
    else if (index && index->type != CVX_T_NULL)
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "query field \"index\" must be a string");
    const cvx_value_t *range = cvx_obj_get_cstr(req, "range");
    if (range && range->type == CVX_T_ARRAY) {
        cvx_range_t *rs = cvx_arena_alloc(c->arena, (range->u.arr.len + 1) * sizeof *rs);
        if (!rs) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
        for (size_t i = 0; i < range->u.arr.len; i++) {
            const cvx_value_t *cond = range->u.arr.items[i];
            const cvx_value_t *field = cond->type == CVX_T_OBJECT ? req_string(cond, "field") : NULL;
            cvx_range_op_t op = cond->type == CVX_T_OBJECT ? range_op(cvx_obj_get_cstr(cond, "op")) : 0;
            const cvx_value_t *value = cond->type == CVX_T_OBJECT ? cvx_obj_get_cstr(cond, "value") : NULL;
            /* {"undefined": true} instead of a value: the field is missing. */
            bool undef = !value && cond->type == CVX_T_OBJECT && cvx_obj_get_cstr(cond, "undefined");
            if (!field || !op || (!value && !undef))
                return cvx_err_set(err, CVX_E_INVALID_ARGUMENT,
                                   "query range condition %zu needs \"field\", \"op\" (eq/gt/gte/lt/lte) and "
                                   "\"value\"",
                                   i);
            rs[i].field = field->u.str.ptr;
            rs[i].op = op;
            rs[i].value = value; /* NULL: undefined */
        }
        q->range = rs;
        q->nrange = range->u.arr.len;
    } else if (range && range->type != CVX_T_NULL) {
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "query field \"range\" must be an array");
    }
    const cvx_value_t *filter = cvx_obj_get_cstr(req, "filter");
    if (filter && filter->type != CVX_T_NULL) q->filter = filter;
    const cvx_value_t *order = cvx_obj_get_cstr(req, "order");
    if (order && order->type == CVX_T_STRING) {
        cvx_slice_t o = cvx_slice(order->u.str.ptr, order->u.str.len);
        if (cvx_slice_eq_cstr(o, "desc")) q->desc = true;
        else if (!cvx_slice_eq_cstr(o, "asc"))
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "query order must be \"asc\" or \"desc\"");
    }
    const cvx_value_t *limit = cvx_obj_get_cstr(req, "limit");
    if (limit && limit->type != CVX_T_NULL) {
        double n = limit->type == CVX_T_FLOAT64 ? limit->u.f : limit->type == CVX_T_INT64 ? (double)limit->u.i : -1;
        if (n < 0 || n != (double)(int64_t)n)
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "query limit must be a non-negative integer");
        q->limit = (int64_t)n;
    }
    const cvx_value_t *cursor = cvx_obj_get_cstr(req, "cursor");
    if (cursor && cursor->type == CVX_T_STRING) q->cursor = cursor->u.str.ptr;
    const cvx_value_t *end = cvx_obj_get_cstr(req, "endCursor");
    if (end && end->type == CVX_T_STRING) q->end_cursor = end->u.str.ptr;
    const cvx_value_t *lines = cvx_obj_get_cstr(req, "lines");
    q->lines = lines && lines->type == CVX_T_BOOL && lines->u.b;
    return CVX_OK;
}

/* A paginated query (docs/abi.md "Pagination"): the n-th of this call
 * ends where the n-th ended in the journal of the last run, unless the
 * guest fixed its end itself, and its end goes into this run's journal. */
static void journal_page(cvx__call_t *c, cvx_query_t *q) {
    size_t n = c->npaged;
    const cvx_value_t *j = c->journal_in;
    if (!q->end_cursor && j && n < j->u.arr.len && j->u.arr.items[n]->type == CVX_T_STRING)
        q->end_cursor = j->u.arr.items[n]->u.str.ptr;
    /* A page that grew to twice its size offers to split in two. */
    if (q->end_cursor && q->limit > 0) q->split_over = 2 * q->limit;
}

static void journal_record(cvx__call_t *c, const cvx_buf_t *cursor) {
    cvx_buf_append_char(&c->journal, c->npaged ? ',' : '[');
    cvx_buf_append_json_string(&c->journal, cursor->data ? cursor->data : "", cursor->len);
    c->npaged++;
}

static int h_db_query(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    DB_PROLOGUE("__convex_db_query", false);
    cvx_query_t q;
    int rc = parse_query(c, req, &q, &err);
    const cvx_value_t *paginate = cvx_obj_get_cstr(req, "paginate");
    bool paged = paginate && paginate->type == CVX_T_BOOL && paginate->u.b;
    cvx_buf_t cursor = {0};
    if (rc == CVX_OK && paged) {
        journal_page(c, &q);
        q.cursor_out = &cursor;
    }
    if (rc == CVX_OK) rc = cvx_txn_query(c->cfg->txn, &q, &c->pending, &err);
    if (rc == CVX_OK && paged) journal_record(c, &cursor);
    cvx_buf_free(&cursor);
    FINISH(rc);
}

static int h_db_count(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    DB_PROLOGUE("__convex_db_count", false);
    cvx_query_t q;
    uint64_t n = 0;
    int rc = parse_query(c, req, &q, &err);
    if (rc == CVX_OK) rc = cvx_txn_count(c->cfg->txn, &q, &n, &err);
    if (rc == CVX_OK) cvx_buf_printf(&c->pending, "%llu", (unsigned long long)n);
    FINISH(rc);
}

/* A JavaScript query or mutation calling another in its own transaction
 * (ctx.runQuery / ctx.runMutation) runs it inside the engine; the host
 * checks what the host checks of any call: {"path", "args"} against the
 * callee's argument validator, or {"path", "returns"} against its return
 * validator. Answers the callee's kind ("query", ...) when they pass. */
static int h_validate(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    CVX__REQUEST("__convex_validate", req);
    cvx_err_t err;
    cvx_err_clear(&err);
    cvx_buf_reset(&c->pending);
    REQUIRE_STRING(path, "path");
    const cvx_fn_t *fn = c->app ? cvx_app_find(c->app, path->u.str.ptr, path->u.str.len) : NULL;
    if (!fn || fn->http) {
        r[0].i64 = cvx__err_pending(c, CVX_E_NOT_FOUND, "no such function");
        return 0;
    }
    const cvx_value_t *args = cvx_obj_get_cstr(req, "args");
    const cvx_value_t *ret = cvx_obj_get_cstr(req, "returns");
    cvx_id_table_fn table_of = c->cfg->txn ? cvx_txn_table_of : NULL;
    int rc = CVX_OK;
    if (args && args->type != CVX_T_OBJECT) {
        rc = cvx_err_set(&err, CVX_E_INVALID_ARGUMENT, "request field \"args\" must be an object");
    } else if (args) {
        rc = cvx_abi_validate_args(fn, args, table_of, c->cfg->txn, &err);
    } else if (ret && cvx_abi_has_returns(fn)) {
        cvx_buf_t json = {0};
        cvx_json_write(&json, ret);
        rc = json.oom ? cvx_err_set(&err, CVX_E_NOMEM, "out of memory")
                      : cvx_abi_validate_returns(fn, json.data, json.len, table_of, c->cfg->txn, &err);
        cvx_buf_free(&json);
    }
    if (rc == CVX_OK) cvx_buf_printf(&c->pending, "\"%s\"", cvx_kind_name(fn->kind));
    FINISH(rc);
}

/* ---- actions: calling other functions --------------------------------------- */

static int run_function(cvx_instance_t *inst, const cvx_wval_t *a, cvx_wval_t *r, cvx_kind_t kind,
                        const char *what) {
    cvx__call_t *c = CALL(inst);
    CVX__REQUEST(what, req);
    if (c->cfg->kind != CVX_KIND_ACTION || !c->cfg->services) {
        r[0].i64 = cvx__err_pending(c, CVX_E_FORBIDDEN, "run_query / run_mutation / run_action are only available in actions");
        return 0;
    }
    const cvx_value_t *path = req_string(req, "path");
    const cvx_value_t *args = cvx_obj_get_cstr(req, "args");
    if (!path || (args && args->type != CVX_T_OBJECT)) {
        r[0].i64 = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "request needs \"path\" (string) and \"args\" (object)");
        return 0;
    }
    cvx_buf_t args_json = {0};
    if (args) cvx_json_write(&args_json, args);
    else cvx_buf_append_str(&args_json, "{}");
    cvx_buf_reset(&c->pending);
    const cvx_abi_services_t *s = c->cfg->services;
    int rc = s->run_function(s->ctx, kind, path->u.str.ptr, path->u.str.len, args_json.data, args_json.len,
                             &c->pending);
    cvx_buf_free(&args_json);
    r[0].i64 = rc == CVX_OK ? ok_pending(c) : -(int64_t)rc;
    return 0;
}

static int h_run_query(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    return run_function(inst, a, r, CVX_KIND_QUERY, "__convex_run_query");
}
static int h_run_mutation(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    return run_function(inst, a, r, CVX_KIND_MUTATION, "__convex_run_mutation");
}
static int h_run_action(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    return run_function(inst, a, r, CVX_KIND_ACTION, "__convex_run_action");
}

/* Implemented in fetch.c, storage.c and env.c (abi_int.h); the table below names
 * every function h_<name>. */
#define h_http_fetch cvx__h_http_fetch
#define h_schedule cvx__h_schedule
#define h_schedule_cancel cvx__h_schedule_cancel
#define h_storage_store cvx__h_storage_store
#define h_storage_get cvx__h_storage_get
#define h_storage_get_url cvx__h_storage_get_url
#define h_storage_delete cvx__h_storage_delete
#define h_storage_metadata cvx__h_storage_metadata
#define h_storage_generate_upload_url cvx__h_storage_upload_url
#define h_env_get cvx__h_env_get

/* The table comes from host_fns.def: every kind is a wasm i32, so a
 * parameter list becomes one "i" per parameter ("" CVX__ID params turns
 * (OUT(dst) LEN(len)) into "" "i" "i", and () into ""). An entry without
 * its h_<name> does not compile. */
#define IN(p) "i"
#define OUT(p) "i"
#define LEN(p) "i"
#define I32(p) "i"
#define CVX__ID(x) x
#define CVX__RESULT_I32 "i"
#define CVX__RESULT_I64 "I"
#define CVX__RESULT_F64 "F"
#define CVX_HOSTFN(name, params, result, doc)                                                                    \
    {CVX_ABI_MODULE, "__convex_" #name, "" CVX__ID params, CVX__RESULT_##result, h_##name, NULL},
const cvx_hostfn_t cvx__abi_hostfns[] = {
#include "abi/host_fns.def"
};
#undef CVX_HOSTFN
#undef IN
#undef OUT
#undef LEN
#undef I32
#undef CVX__ID
#undef CVX__RESULT_I32
#undef CVX__RESULT_I64
#undef CVX__RESULT_F64
const size_t cvx__abi_nhostfns = CVX_ARRAY_LEN(cvx__abi_hostfns);
