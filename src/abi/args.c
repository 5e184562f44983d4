/* Argument validation against the type descriptors in the metadata
 * (docs/abi.md §4), before the guest runs: a client sending the wrong shape
 * gets an error naming the field and the expected type, and the guest never
 * sees malformed input. The same checker validates documents against a
 * schema. */
#include "abi/abi_int.h"

#include <stdio.h>
#include <string.h>

static const char *type_tag(const cvx_value_t *type) {
    const cvx_value_t *t = type && type->type == CVX_T_OBJECT ? cvx_obj_get_cstr(type, "type") : NULL;
    return t && t->type == CVX_T_STRING ? t->u.str.ptr : "any";
}

/* A short human description of a type descriptor: "string",
 * "array<int64>", "optional<string>", "id<users>", "object{a,b}". */
static void describe(const cvx_value_t *type, cvx_buf_t *out) {
    const char *tag = type_tag(type);
    if (strcmp(tag, "array") == 0) {
        cvx_buf_append_str(out, "array<");
        describe(cvx_obj_get_cstr(type, "items"), out);
        cvx_buf_append_char(out, '>');
    } else if (strcmp(tag, "optional") == 0) {
        describe(cvx_obj_get_cstr(type, "inner"), out);
        cvx_buf_append_str(out, " | null");
    } else if (strcmp(tag, "record") == 0) {
        cvx_buf_append_str(out, "record<string, ");
        describe(cvx_obj_get_cstr(type, "values"), out);
        cvx_buf_append_char(out, '>');
    } else if (strcmp(tag, "id") == 0) {
        const cvx_value_t *t = cvx_obj_get_cstr(type, "table");
        cvx_buf_printf(out, "id<%s>", t && t->type == CVX_T_STRING ? t->u.str.ptr : "?");
    } else if (strcmp(tag, "union") == 0) {
        const cvx_value_t *vs = cvx_obj_get_cstr(type, "variants");
        for (size_t i = 0; vs && vs->type == CVX_T_ARRAY && i < vs->u.arr.len; i++) {
            if (i) cvx_buf_append_str(out, " | ");
            describe(vs->u.arr.items[i], out);
        }
    } else if (strcmp(tag, "literal") == 0) {
        const cvx_value_t *v = cvx_obj_get_cstr(type, "value");
        if (v) cvx_json_write(out, v);
    } else {
        cvx_buf_append_str(out, tag);
    }
}

static int mismatch(const cvx_value_t *type, const cvx_value_t *v, const char *path, cvx_err_t *err) {
    cvx_buf_t want = {0}, got = {0};
    describe(type, &want);
    cvx_json_write(&got, v);
    if (got.len > 80) {
        got.len = 77;
        cvx_buf_append_str(&got, "...");
    }
    cvx_err_set(err, CVX_E_ARGS, "ArgumentValidationError: %s: expected %s, got %s %s", path,
                want.data ? want.data : "", cvx_type_name(v->type), got.data ? got.data : "");
    cvx_buf_free(&want);
    cvx_buf_free(&got);
    return CVX_E_ARGS;
}

static void child_path(char *out, size_t cap, const char *parent, const char *field, size_t index, bool is_index) {
    if (is_index) snprintf(out, cap, "%s[%zu]", parent, index);
    else if (parent[0] == '\0') snprintf(out, cap, "field \"%s\"", field);
    else if (strncmp(parent, "field \"", 7) == 0) {
        /* field "a" + b => field "a.b" */
        size_t n = strlen(parent);
        snprintf(out, cap, "%.*s.%s\"", (int)(n - 1), parent, field);
    } else snprintf(out, cap, "%s.%s", parent, field);
}

static int check(const cvx_value_t *type, const cvx_value_t *v, const char *path, int depth, cvx_err_t *err);

static int check_object(const cvx_value_t *fields, const cvx_value_t *v, const char *path, int depth, cvx_err_t *err) {
    /* Every declared field must be present unless optional... */
    for (size_t i = 0; i < fields->u.obj.len; i++) {
        const cvx_field_t *f = &fields->u.obj.fields[i];
        const cvx_value_t *fv = cvx_obj_get(v, f->name, f->name_len);
        char sub[512];
        child_path(sub, sizeof sub, path, f->name, 0, false);
        if (!fv) {
            if (strcmp(type_tag(f->value), "optional") == 0 || strcmp(type_tag(f->value), "any") == 0) continue;
            cvx_buf_t want = {0};
            describe(f->value, &want);
            cvx_err_set(err, CVX_E_ARGS, "ArgumentValidationError: Object is missing the required field \"%s\" (expected %s)%s%s",
                        f->name, want.data ? want.data : "", path[0] ? " in " : "", path);
            cvx_buf_free(&want);
            return CVX_E_ARGS;
        }
        int rc = check(f->value, fv, sub, depth + 1, err);
        if (rc) return rc;
    }
    /* ...and no undeclared field may appear. */
    for (size_t i = 0; i < v->u.obj.len; i++) {
        const cvx_field_t *f = &v->u.obj.fields[i];
        if (!cvx_obj_get(fields, f->name, f->name_len))
            return cvx_err_set(err, CVX_E_ARGS, "ArgumentValidationError: Object contains extra field \"%s\" that is not in the validator%s%s",
                               f->name, path[0] ? " at " : "", path);
    }
    return CVX_OK;
}

static int check(const cvx_value_t *type, const cvx_value_t *v, const char *path, int depth, cvx_err_t *err) {
    if (depth > CVX_MAX_DEPTH) return cvx_err_set(err, CVX_E_ARGS, "ArgumentValidationError: %s: type nests too deeply", path);
    const char *tag = type_tag(type);
    if (strcmp(tag, "any") == 0) return CVX_OK;
    if (strcmp(tag, "null") == 0) return v->type == CVX_T_NULL ? CVX_OK : mismatch(type, v, path, err);
    if (strcmp(tag, "int64") == 0) return v->type == CVX_T_INT64 ? CVX_OK : mismatch(type, v, path, err);
    if (strcmp(tag, "float64") == 0) return v->type == CVX_T_FLOAT64 ? CVX_OK : mismatch(type, v, path, err);
    if (strcmp(tag, "boolean") == 0) return v->type == CVX_T_BOOL ? CVX_OK : mismatch(type, v, path, err);
    if (strcmp(tag, "string") == 0) return v->type == CVX_T_STRING ? CVX_OK : mismatch(type, v, path, err);
    if (strcmp(tag, "bytes") == 0) return v->type == CVX_T_BYTES ? CVX_OK : mismatch(type, v, path, err);
    if (strcmp(tag, "document") == 0) return v->type == CVX_T_OBJECT ? CVX_OK : mismatch(type, v, path, err);
    if (strcmp(tag, "id") == 0) {
        if (v->type != CVX_T_STRING) return mismatch(type, v, path, err);
        cvx_id_t id;
        cvx_err_t e2;
        if (cvx_id_parse(v->u.str.ptr, v->u.str.len, &id, &e2))
            return cvx_err_set(err, CVX_E_ARGS, "ArgumentValidationError: %s: %s", path, e2.msg);
        return CVX_OK;
    }
    if (strcmp(tag, "optional") == 0) {
        if (v->type == CVX_T_NULL) return CVX_OK;
        return check(cvx_obj_get_cstr(type, "inner"), v, path, depth + 1, err);
    }
    if (strcmp(tag, "array") == 0) {
        if (v->type != CVX_T_ARRAY) return mismatch(type, v, path, err);
        const cvx_value_t *items = cvx_obj_get_cstr(type, "items");
        for (size_t i = 0; i < v->u.arr.len; i++) {
            char sub[512];
            child_path(sub, sizeof sub, path[0] ? path : "value", NULL, i, true);
            int rc = check(items, v->u.arr.items[i], sub, depth + 1, err);
            if (rc) return rc;
        }
        return CVX_OK;
    }
    if (strcmp(tag, "record") == 0) {
        if (v->type != CVX_T_OBJECT) return mismatch(type, v, path, err);
        const cvx_value_t *values = cvx_obj_get_cstr(type, "values");
        for (size_t i = 0; i < v->u.obj.len; i++) {
            char sub[512];
            child_path(sub, sizeof sub, path, v->u.obj.fields[i].name, 0, false);
            int rc = check(values, v->u.obj.fields[i].value, sub, depth + 1, err);
            if (rc) return rc;
        }
        return CVX_OK;
    }
    if (strcmp(tag, "object") == 0) {
        if (v->type != CVX_T_OBJECT) return mismatch(type, v, path, err);
        const cvx_value_t *fields = cvx_obj_get_cstr(type, "fields");
        if (!fields || fields->type != CVX_T_OBJECT) return CVX_OK;
        return check_object(fields, v, path, depth, err);
    }
    if (strcmp(tag, "union") == 0) {
        const cvx_value_t *vs = cvx_obj_get_cstr(type, "variants");
        cvx_err_t ignored;
        for (size_t i = 0; vs && vs->type == CVX_T_ARRAY && i < vs->u.arr.len; i++)
            if (check(vs->u.arr.items[i], v, path, depth + 1, &ignored) == CVX_OK) return CVX_OK;
        return mismatch(type, v, path, err);
    }
    if (strcmp(tag, "literal") == 0) {
        const cvx_value_t *lit = cvx_obj_get_cstr(type, "value");
        return lit && cvx_value_equal(lit, v) ? CVX_OK : mismatch(type, v, path, err);
    }
    /* An unknown descriptor from a newer SDK: accept rather than reject
     * valid calls; the guest still deserialises strictly. */
    return CVX_OK;
}

int cvx_abi_check_type(const cvx_value_t *type, const cvx_value_t *v, const char *path, cvx_err_t *err) {
    return check(type, v, path ? path : "", 0, err);
}

int cvx_abi_validate_args(const cvx_fn_t *fn, const cvx_value_t *args, cvx_err_t *err) {
    if (args->type != CVX_T_OBJECT)
        return cvx_err_set(err, CVX_E_ARGS, "ArgumentValidationError: arguments must be an object, got %s",
                           cvx_type_name(args->type));
    const cvx_value_t *decl = fn->args;
    for (size_t i = 0; i < decl->u.arr.len; i++) {
        const cvx_value_t *a = decl->u.arr.items[i];
        const cvx_value_t *name = a->type == CVX_T_OBJECT ? cvx_obj_get_cstr(a, "name") : NULL;
        if (!name || name->type != CVX_T_STRING) continue;
        const cvx_value_t *type = cvx_obj_get_cstr(a, "type");
        const cvx_value_t *v = cvx_obj_get(args, name->u.str.ptr, name->u.str.len);
        if (!v) {
            const char *tag = type_tag(type);
            if (strcmp(tag, "optional") == 0 || strcmp(tag, "any") == 0) continue;
            cvx_buf_t want = {0};
            describe(type, &want);
            cvx_err_set(err, CVX_E_ARGS, "ArgumentValidationError: Object is missing the required field \"%s\" (expected %s)",
                        name->u.str.ptr, want.data ? want.data : "");
            cvx_buf_free(&want);
            return CVX_E_ARGS;
        }
        char path[512];
        snprintf(path, sizeof path, "field \"%s\"", name->u.str.ptr);
        int rc = check(type, v, path, 0, err);
        if (rc) return rc;
    }
    for (size_t i = 0; i < args->u.obj.len; i++) {
        const cvx_field_t *f = &args->u.obj.fields[i];
        bool declared = false;
        for (size_t k = 0; k < decl->u.arr.len && !declared; k++) {
            const cvx_value_t *name = decl->u.arr.items[k]->type == CVX_T_OBJECT
                                          ? cvx_obj_get_cstr(decl->u.arr.items[k], "name")
                                          : NULL;
            declared = name && name->type == CVX_T_STRING && name->u.str.len == f->name_len &&
                       memcmp(name->u.str.ptr, f->name, f->name_len) == 0;
        }
        if (!declared)
            return cvx_err_set(err, CVX_E_ARGS,
                               "ArgumentValidationError: Object contains extra field \"%s\" that is not an argument of %s",
                               f->name, fn->path);
    }
    return CVX_OK;
}
