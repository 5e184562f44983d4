/* Filter expressions (docs/abi.md, "A query request"), evaluated by the host
 * on each document an index range yields. A missing field is "undefined",
 * which sorts before null, as in Convex. */
#include "store/store_int.h"

#include <math.h>
#include <string.h>

static bool truthy(const cvx_value_t *v) { return v && v->type == CVX_T_BOOL && v->u.b; }

static int eval(cvx_arena_t *a, const cvx_value_t *e, const cvx_value_t *doc, int depth, const cvx_value_t **out,
                cvx_err_t *err);

static int arith(cvx_arena_t *a, const char *op, const cvx_value_t *x, const cvx_value_t *y, const cvx_value_t **out,
                 cvx_err_t *err) {
    if (!x || !y || x->type != y->type || (x->type != CVX_T_INT64 && x->type != CVX_T_FLOAT64))
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "filter %s needs two numbers of the same type (%s and %s)", op,
                           x ? cvx_type_name(x->type) : "undefined", y ? cvx_type_name(y->type) : "undefined");
    if (x->type == CVX_T_FLOAT64) {
        double r;
        if (!strcmp(op, "add")) r = x->u.f + y->u.f;
        else if (!strcmp(op, "sub")) r = x->u.f - y->u.f;
        else if (!strcmp(op, "mul")) r = x->u.f * y->u.f;
        else if (!strcmp(op, "div")) r = x->u.f / y->u.f;
        else r = fmod(x->u.f, y->u.f);
        *out = cvx_float64(a, r);
    } else {
        int64_t r;
        bool overflow = false;
        if (!strcmp(op, "add")) overflow = __builtin_add_overflow(x->u.i, y->u.i, &r);
        else if (!strcmp(op, "sub")) overflow = __builtin_sub_overflow(x->u.i, y->u.i, &r);
        else if (!strcmp(op, "mul")) overflow = __builtin_mul_overflow(x->u.i, y->u.i, &r);
        else {
            if (y->u.i == 0) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "filter %s: division by zero", op);
            if (x->u.i == INT64_MIN && y->u.i == -1) overflow = true;
            else r = !strcmp(op, "div") ? x->u.i / y->u.i : x->u.i % y->u.i;
        }
        if (overflow) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "filter %s: int64 overflow", op);
        *out = cvx_int64(a, r);
    }
    return *out ? CVX_OK : cvx_err_set(err, CVX_E_NOMEM, "out of memory");
}

static int eval(cvx_arena_t *a, const cvx_value_t *e, const cvx_value_t *doc, int depth, const cvx_value_t **out,
                cvx_err_t *err) {
    *out = NULL;
    if (depth > 64) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "filter expression nests deeper than 64");
    if (!e || e->type != CVX_T_OBJECT)
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "filter expression must be an object");
    const cvx_value_t *v;
    if ((v = cvx_obj_get_cstr(e, "field"))) {
        if (v->type != CVX_T_STRING)
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "filter {\"field\": ...} needs a string path");
        *out = cvx_obj_get_path(doc, v->u.str.ptr, v->u.str.len);
        return CVX_OK;
    }
    if ((v = cvx_obj_get_cstr(e, "literal"))) {
        *out = v;
        return CVX_OK;
    }
    if ((v = cvx_obj_get_cstr(e, "undefined"))) {
        *out = NULL; /* a missing field: compares below null */
        return CVX_OK;
    }
    const cvx_value_t *opv = cvx_obj_get_cstr(e, "op");
    const cvx_value_t *args = cvx_obj_get_cstr(e, "args");
    if (!opv || opv->type != CVX_T_STRING || !args || args->type != CVX_T_ARRAY)
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT,
                           "filter expression needs {\"field\"}, {\"literal\"} or {\"op\", \"args\": [...]}");
    const char *op = opv->u.str.ptr;
    size_t n = args->u.arr.len;
    bool is_and = !strcmp(op, "and"), is_or = !strcmp(op, "or");
    if (is_and || is_or) {
        bool acc = is_and;
        for (size_t i = 0; i < n; i++) {
            const cvx_value_t *r;
            int rc = eval(a, args->u.arr.items[i], doc, depth + 1, &r, err);
            if (rc) return rc;
            if (is_and && !truthy(r)) {
                acc = false;
                break;
            }
            if (is_or && truthy(r)) {
                acc = true;
                break;
            }
        }
        *out = cvx_bool(a, acc);
        return *out ? CVX_OK : cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    size_t want = (!strcmp(op, "not") || !strcmp(op, "neg")) ? 1 : 2;
    static const char *const known[] = {"eq", "neq", "lt", "lte", "gt", "gte", "add", "sub", "mul", "div", "mod", "not", "neg"};
    bool ok = false;
    for (size_t i = 0; i < CVX_ARRAY_LEN(known); i++) ok = ok || !strcmp(op, known[i]);
    if (!ok) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "unknown filter operator \"%s\"", op);
    if (n != want)
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "filter operator \"%s\" takes %zu argument%s, got %zu", op, want,
                           want == 1 ? "" : "s", n);
    const cvx_value_t *x, *y = NULL;
    int rc = eval(a, args->u.arr.items[0], doc, depth + 1, &x, err);
    if (!rc && want == 2) rc = eval(a, args->u.arr.items[1], doc, depth + 1, &y, err);
    if (rc) return rc;
    if (!strcmp(op, "not")) {
        *out = cvx_bool(a, !truthy(x));
    } else if (!strcmp(op, "neg")) {
        if (x && x->type == CVX_T_FLOAT64) *out = cvx_float64(a, -x->u.f);
        else if (x && x->type == CVX_T_INT64 && x->u.i != INT64_MIN) *out = cvx_int64(a, -x->u.i);
        else return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "filter neg needs a number");
    } else if (op[0] == 'a' || op[0] == 's' || op[0] == 'm' || op[0] == 'd') {
        return arith(a, op, x, y, out, err);
    } else {
        int c = cvx_value_compare(x, y);
        bool r = !strcmp(op, "eq")    ? c == 0
                 : !strcmp(op, "neq") ? c != 0
                 : !strcmp(op, "lt")  ? c < 0
                 : !strcmp(op, "lte") ? c <= 0
                 : !strcmp(op, "gt")  ? c > 0
                                      : c >= 0;
        *out = cvx_bool(a, r);
    }
    return *out ? CVX_OK : cvx_err_set(err, CVX_E_NOMEM, "out of memory");
}

int cvx_filter_eval(cvx_arena_t *a, const cvx_value_t *expr, const cvx_value_t *doc, bool *match, cvx_err_t *err) {
    const cvx_value_t *r;
    int rc = eval(a, expr, doc, 0, &r, err);
    *match = rc == CVX_OK && truthy(r);
    return rc;
}
