/*
 * check.c — cvx_value_check: is this value (or document) within the limits
 * of §1 of docs/protocol.md, and if not, where is the problem?
 *
 * The JSON parser enforces the generic limits as it reads, so parsed values
 * only need this for the stricter document rules; values that host code or
 * a guest built by hand need all of it. One recursive walk checks shape
 * (nesting, counts, names, UTF-8, canonical field order) with a bounded
 * depth; only after it succeeds is the encoded size computed, so the size
 * walk never recurses deeper than the limit either.
 */
#include "value/value_int.h"

#include <string.h>

typedef struct {
    cvx_err_t *err;
    size_t max_depth;
} checker_t;

static int check_value(checker_t *c, const cvx_value_t *v, size_t depth, const cvx__path_t *path);

static int invalid(checker_t *c, const cvx__path_t *path, const char *msg) {
    return cvx__path_err(c->err, CVX_E_INVALID_VALUE, path, "%s", msg);
}

static int check_array(checker_t *c, const cvx_value_t *v, size_t depth, const cvx__path_t *path) {
    if (v->u.arr.len > CVX_MAX_ARRAY_LEN)
        return cvx__path_err(c->err, CVX_E_INVALID_VALUE, path, "array has more than %d items", CVX_MAX_ARRAY_LEN);
    for (size_t i = 0; i < v->u.arr.len; i++) {
        cvx__path_t seg = {path, NULL, 0, i};
        int rc = check_value(c, v->u.arr.items[i], depth + 1, &seg);
        if (rc) return rc;
    }
    return CVX_OK;
}

static int check_object(checker_t *c, const cvx_value_t *v, size_t depth, const cvx__path_t *path) {
    if (v->u.obj.len > CVX_MAX_FIELDS)
        return cvx__path_err(c->err, CVX_E_INVALID_VALUE, path, "object has more than %d fields", CVX_MAX_FIELDS);
    for (size_t i = 0; i < v->u.obj.len; i++) {
        const cvx_field_t *f = &v->u.obj.fields[i];
        char msg[256];
        if (cvx__field_name_problem(f->name, f->name_len, msg, sizeof msg)) return invalid(c, path, msg);
        if (i > 0) {
            const cvx_field_t *prev = f - 1;
            int order = cvx__name_cmp(prev->name, prev->name_len, f->name, f->name_len);
            if (order >= 0) {
                char snip[96];
                cvx__snippet(snip, sizeof snip, f->name, f->name_len, 40);
                return cvx__path_err(c->err, CVX_E_INVALID_VALUE, path,
                                     order == 0 ? "duplicate field name \"%s\"" : "field \"%s\" is out of order", snip);
            }
        }
        cvx__path_t seg = {path, f->name, f->name_len, 0};
        int rc = check_value(c, f->value, depth + 1, &seg);
        if (rc) return rc;
    }
    return CVX_OK;
}

/* depth: how many containers enclose v. */
static int check_value(checker_t *c, const cvx_value_t *v, size_t depth, const cvx__path_t *path) {
    if (!v) return invalid(c, path, "undefined is not a valid value");
    switch (v->type) {
    case CVX_T_NULL:
    case CVX_T_INT64:
    case CVX_T_FLOAT64:
    case CVX_T_BOOL:
    case CVX_T_BYTES: return CVX_OK;
    case CVX_T_STRING:
        if (!cvx_utf8_valid(v->u.str.ptr, v->u.str.len)) return invalid(c, path, "string is not valid UTF-8");
        return CVX_OK;
    case CVX_T_ARRAY:
    case CVX_T_OBJECT:
        if (depth + 1 > c->max_depth)
            return cvx__path_err(c->err, CVX_E_INVALID_VALUE, path, "nesting deeper than %zu", c->max_depth);
        return v->type == CVX_T_ARRAY ? check_array(c, v, depth, path) : check_object(c, v, depth, path);
    }
    return cvx__path_err(c->err, CVX_E_INVALID_VALUE, path, "unknown value type %d", (int)v->type);
}

/* Top-level names starting with '_' belong to the system. A stored
 * document may carry _id (a string) and _creationTime (a float64). */
static int check_system_fields(checker_t *c, const cvx_value_t *doc, cvx_check_t kind) {
    for (size_t i = 0; i < doc->u.obj.len; i++) {
        const cvx_field_t *f = &doc->u.obj.fields[i];
        if (f->name_len == 0 || f->name[0] != '_') continue;
        cvx__path_t seg = {NULL, f->name, f->name_len, 0};
        cvx_type_t want = CVX_T_NULL;
        if (kind == CVX_CHECK_STORED && f->name_len == 3 && memcmp(f->name, "_id", 3) == 0)
            want = CVX_T_STRING;
        else if (kind == CVX_CHECK_STORED && f->name_len == 13 && memcmp(f->name, "_creationTime", 13) == 0)
            want = CVX_T_FLOAT64;
        if (want == CVX_T_NULL) {
            char snip[96];
            cvx__snippet(snip, sizeof snip, f->name, f->name_len, 40);
            return cvx__path_err(c->err, CVX_E_INVALID_VALUE, NULL,
                                 "field name \"%s\" must not start with '_' (reserved for system fields)", snip);
        }
        if (f->value && f->value->type != want)
            return cvx__path_err(c->err, CVX_E_INVALID_VALUE, &seg, "must be a %s, not %s", cvx_type_name(want),
                                 cvx_type_name(f->value->type));
    }
    return CVX_OK;
}

int cvx_value_check(const cvx_value_t *v, cvx_check_t kind, cvx_err_t *err) {
    bool doc = kind == CVX_CHECK_DOCUMENT || kind == CVX_CHECK_STORED;
    checker_t c = {err, doc ? CVX_MAX_DOC_DEPTH : CVX_MAX_DEPTH};
    if (doc) {
        if (!v || v->type != CVX_T_OBJECT)
            return cvx_err_set(err, CVX_E_INVALID_VALUE, "document must be an object, not %s",
                               v ? cvx_type_name(v->type) : "undefined");
        int rc = check_system_fields(&c, v, kind);
        if (rc) return rc;
    }
    int rc = check_value(&c, v, 0, NULL);
    if (rc) return rc;
    size_t size = cvx_value_json_size(v);
    size_t max = doc ? CVX_MAX_DOC_SIZE : CVX_MAX_VALUE_SIZE;
    if (size > max)
        return cvx_err_set(err, CVX_E_INVALID_VALUE, "%s is too large (%zu bytes > maximum %zu)",
                           doc ? "document" : "value", size, max);
    return CVX_OK;
}
