/* Environment variables: documents {name, value} of the system table
 * _environment_variables (index by_name). Reading one is a read like any
 * other, so it is in the function's read set: a change re-runs the
 * subscriptions and drops the cached results that read it, and no
 * redeploy is needed. A change is one commit (cvx env set / remove).
 *
 * The limits are Convex's: names of at most 40 characters, a letter first,
 * then letters, digits and underscores; values of at most 8 KiB; at most
 * 100 variables. */
#include "abi/abi_int.h"

#include <string.h>

#define ENV_INDEX "by_name"
#define ENV_MAX_VARS 100
#define ENV_NAME_MAX 40
#define ENV_VALUE_MAX (8u << 10)

int cvx_abi_env_check_name(const char *name, size_t len, cvx_err_t *err) {
    bool ok = len > 0 && len <= ENV_NAME_MAX &&
              ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z'));
    for (size_t i = 1; ok && i < len; i++) {
        char ch = name[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
    }
    if (ok) return CVX_OK;
    return cvx_err_set(err, CVX_E_INVALID_ARGUMENT,
                       "invalid environment variable name \"%.*s\": use 1 to %d letters, digits and underscores, "
                       "starting with a letter",
                       (int)(len > 60 ? 60 : len), name, ENV_NAME_MAX);
}

/* The page of documents a by_name range holds (all of them when name is
 * NULL), parsed into `a`. */
static int env_docs(cvx_txn_t *txn, cvx_arena_t *a, const char *name, size_t len, const cvx_value_t **page,
                    cvx_err_t *err) {
    cvx_range_t r[1] = {{"name", CVX_OP_EQ, name ? cvx_string(a, name, len) : NULL}};
    if (name && !r[0].value) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    /* one more than the most there may be: a larger table is reported, not cut */
    cvx_query_t q = {.table = CVX_ENV_TABLE, .index = ENV_INDEX, .range = r, .nrange = name ? 1 : 0,
                     .limit = name ? 1 : ENV_MAX_VARS + 1};
    cvx_buf_t json = {0};
    cvx_value_t *v = NULL;
    int rc = cvx_txn_query(txn, &q, &json, err);
    if (!rc) rc = json.oom ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : cvx_json_parse(a, json.data, json.len, &v, err);
    cvx_buf_free(&json);
    if (rc) return rc;
    *page = cvx_obj_get_cstr(v, "page");
    if (!*page || (*page)->type != CVX_T_ARRAY) return cvx_err_set(err, CVX_E_INTERNAL, "environment variables: bad page");
    return CVX_OK;
}

static const cvx_value_t *field(const cvx_value_t *doc, const char *name) {
    const cvx_value_t *f = cvx_obj_get_cstr(doc, name);
    return f && f->type == CVX_T_STRING ? f : NULL;
}

int cvx_abi_env_read(cvx_txn_t *txn, const char *name, size_t len, cvx_buf_t *out, cvx_err_t *err) {
    cvx_arena_t *a = cvx_arena_new(4096);
    if (!a) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    const cvx_value_t *page = NULL;
    int rc = env_docs(txn, a, name, len, &page, err);
    if (rc == CVX_OK && name) {
        const cvx_value_t *value = page->u.arr.len ? field(page->u.arr.items[0], "value") : NULL;
        if (value) cvx_buf_append_json_string(out, value->u.str.ptr, value->u.str.len);
        else cvx_buf_append_str(out, "null");
    } else if (rc == CVX_OK) {
        /* every variable, by name (the index's order) */
        cvx_buf_append_char(out, '{');
        size_t n = 0;
        for (size_t i = 0; i < page->u.arr.len; i++) {
            const cvx_value_t *k = field(page->u.arr.items[i], "name"), *v = field(page->u.arr.items[i], "value");
            if (!k || !v) continue;
            if (n++) cvx_buf_append_char(out, ',');
            cvx_buf_append_json_string(out, k->u.str.ptr, k->u.str.len);
            cvx_buf_append_char(out, ':');
            cvx_buf_append_json_string(out, v->u.str.ptr, v->u.str.len);
        }
        cvx_buf_append_char(out, '}');
    }
    cvx_arena_free(a);
    return rc;
}

/* One change: value NULL removes the variable. */
static int env_set(cvx_txn_t *txn, cvx_arena_t *a, const cvx_value_t *name, const cvx_value_t *value, cvx_err_t *err) {
    const cvx_value_t *page = NULL;
    int rc = env_docs(txn, a, name->u.str.ptr, name->u.str.len, &page, err);
    if (rc) return rc;
    const cvx_value_t *doc = page->u.arr.len ? page->u.arr.items[0] : NULL;
    const cvx_value_t *id = doc ? field(doc, "_id") : NULL;
    if (!value) return id ? cvx_txn_system_delete(txn, id->u.str.ptr, id->u.str.len, err) : CVX_OK;
    cvx_buf_t json = {0};
    cvx_buf_append_str(&json, "{\"name\":");
    cvx_buf_append_json_string(&json, name->u.str.ptr, name->u.str.len);
    cvx_buf_append_str(&json, ",\"value\":");
    cvx_buf_append_json_string(&json, value->u.str.ptr, value->u.str.len);
    cvx_buf_append_char(&json, '}');
    cvx_value_t *v = NULL;
    rc = json.oom ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : cvx_json_parse(a, json.data, json.len, &v, err);
    cvx_buf_free(&json);
    if (rc) return rc;
    if (id) return cvx_txn_system_patch(txn, id->u.str.ptr, id->u.str.len, v, err);
    cvx_buf_t newid = {0};
    rc = cvx_txn_system_insert(txn, CVX_ENV_TABLE, v, &newid, err);
    cvx_buf_free(&newid);
    return rc;
}

int cvx_abi_env_update(cvx_txn_t *txn, const cvx_value_t *changes, cvx_err_t *err) {
    if (!changes || changes->type != CVX_T_ARRAY)
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "expected {\"changes\": [{\"name\": ..., \"value\": string or null}]}");
    /* every change is checked before any is made */
    for (size_t i = 0; i < changes->u.arr.len; i++) {
        const cvx_value_t *ch = changes->u.arr.items[i];
        const cvx_value_t *name = ch->type == CVX_T_OBJECT ? field(ch, "name") : NULL;
        const cvx_value_t *value = ch->type == CVX_T_OBJECT ? cvx_obj_get_cstr(ch, "value") : NULL;
        if (!name || !value || (value->type != CVX_T_STRING && value->type != CVX_T_NULL))
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT,
                               "change %zu: expected {\"name\": string, \"value\": string or null (to remove)}", i + 1);
        int rc = cvx_abi_env_check_name(name->u.str.ptr, name->u.str.len, err);
        if (rc) return rc;
        if (value->type == CVX_T_STRING && value->u.str.len > ENV_VALUE_MAX)
            return cvx_err_set(err, CVX_E_LIMIT, "the value of %s is %zu bytes; the limit is %u (8 KiB)",
                               name->u.str.ptr, value->u.str.len, ENV_VALUE_MAX);
    }
    cvx_arena_t *a = cvx_arena_new(4096);
    if (!a) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    int rc = CVX_OK;
    for (size_t i = 0; rc == CVX_OK && i < changes->u.arr.len; i++) {
        const cvx_value_t *ch = changes->u.arr.items[i], *value = cvx_obj_get_cstr(ch, "value");
        rc = env_set(txn, a, field(ch, "name"), value->type == CVX_T_STRING ? value : NULL, err);
    }
    const cvx_value_t *page = NULL;
    if (rc == CVX_OK) rc = env_docs(txn, a, NULL, 0, &page, err);
    if (rc == CVX_OK && page->u.arr.len > ENV_MAX_VARS)
        rc = cvx_err_set(err, CVX_E_LIMIT, "a deployment has at most %d environment variables", ENV_MAX_VARS);
    cvx_arena_free(a);
    return rc;
}

/* ---- __convex_env_get ------------------------------------------------------- */

typedef struct {
    const char *name; /* NULL: all */
    size_t len;
} env_req_t;

static int read_in_txn(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err) {
    env_req_t *r = arg;
    return cvx_abi_env_read(txn, r->name, r->len, out, err);
}

/* {"name"} -> its value (a JSON string) or null; {} -> an object of every
 * variable. Queries and mutations read in their transaction; actions at
 * the latest commit. */
int cvx__h_env_get(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    (void)d;
    cvx__call_t *c = CALL(inst);
    CVX__REQUEST("__convex_env_get", req);
    const cvx_value_t *name = cvx_obj_get_cstr(req, "name");
    if (name && name->type != CVX_T_STRING) {
        r[0].i64 = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "\"name\" must be a string");
        return 0;
    }
    env_req_t er = {name ? name->u.str.ptr : NULL, name ? name->u.str.len : 0};
    cvx_err_t err;
    cvx_err_clear(&err);
    cvx_buf_reset(&c->pending);
    int rc;
    const cvx_abi_services_t *sv = c->cfg->services;
    if (c->cfg->txn) rc = read_in_txn(c->cfg->txn, &er, &c->pending, &err);
    else if (sv && sv->with_read_txn) rc = sv->with_read_txn(sv->ctx, read_in_txn, &er, &c->pending, &err);
    else rc = (cvx_buf_append_str(&c->pending, name ? "null" : "{}"), CVX_OK); /* no database: none set */
    if (rc == CVX_OK && c->pending.oom) rc = cvx_err_set(&err, CVX_E_NOMEM, "out of memory");
    r[0].i64 = rc == CVX_OK ? (int64_t)c->pending.len : cvx__store_error_pending(c, &err);
    return 0;
}
