/* Validators: Convex's `v.*` checked in C, for arguments, return values and
 * documents against a schema, with Convex's own error texts ("Object is
 * missing the required field `email`. Consider wrapping the field
 * validator in `v.optional(...)` if this is expected.").
 *
 * A validator is compiled once (at deploy) into a tree in an arena, from
 * either of the two forms a deployed function can declare: Convex's JSON
 * (what a TypeScript validator's `.json` is) or a cvx type descriptor
 * (docs/abi.md §4, what the Rust SDK writes). Both become the same tree,
 * so both languages get the same checks and the same messages. A Rust
 * `optional` is "absent or null": an optional field whose validator is a
 * union with null. */
#include "value/value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    V_ANY = 1,
    V_NULL,
    V_FLOAT64,
    V_INT64,
    V_BOOLEAN,
    V_STRING,
    V_BYTES,
    V_ID,
    V_LITERAL,
    V_ARRAY,
    V_RECORD,
    V_OBJECT,
    V_UNION,
} vkind_t;

typedef struct {
    const char *name;
    size_t len;
    bool optional;
    const cvx_validator_t *v;
} vfield_t;

struct cvx_validator {
    vkind_t kind;
    const char *table;              /* V_ID */
    const cvx_value_t *literal;     /* V_LITERAL */
    const cvx_validator_t *a, *b;   /* V_ARRAY item; V_RECORD keys, values */
    bool values_optional;           /* V_RECORD */
    vfield_t *fields;               /* V_OBJECT, sorted by name */
    const cvx_validator_t **items;  /* V_UNION */
    size_t n;                       /* fields or items */
};

static cvx_validator_t *node(cvx_arena_t *a, vkind_t k) {
    cvx_validator_t *v = cvx_arena_alloc(a, sizeof *v);
    if (v) {
        memset(v, 0, sizeof *v);
        v->kind = k;
    }
    return v;
}

static const cvx_value_t *field(const cvx_value_t *obj, const char *name) {
    return obj && obj->type == CVX_T_OBJECT ? cvx_obj_get_cstr(obj, name) : NULL;
}

static const char *str_field(const cvx_value_t *obj, const char *name) {
    const cvx_value_t *v = field(obj, name);
    return v && v->type == CVX_T_STRING ? v->u.str.ptr : NULL;
}

#define NOMEM(err) cvx_err_set(err, CVX_E_NOMEM, "out of memory compiling a validator")

/* ---- from Convex's JSON ------------------------------------------------------- */

static int from_convex(cvx_arena_t *a, const cvx_value_t *j, int depth, const cvx_validator_t **out, cvx_err_t *err);

/* {"fieldType": V, "optional": bool} */
static int convex_field(cvx_arena_t *a, const cvx_value_t *f, int depth, const cvx_validator_t **v, bool *optional,
                        cvx_err_t *err) {
    const cvx_value_t *opt = field(f, "optional");
    *optional = opt && opt->type == CVX_T_BOOL && opt->u.b;
    return from_convex(a, field(f, "fieldType"), depth + 1, v, err);
}

static int from_convex(cvx_arena_t *a, const cvx_value_t *j, int depth, const cvx_validator_t **out, cvx_err_t *err) {
    if (depth > CVX_MAX_DEPTH) return cvx_err_set(err, CVX_E_INVALID_VALUE, "validator nests deeper than %d", CVX_MAX_DEPTH);
    const char *t = str_field(j, "type");
    if (!t) return cvx_err_set(err, CVX_E_INVALID_VALUE, "validator has no \"type\"");
    static const struct {
        const char *name;
        vkind_t kind;
    } simple[] = {{"any", V_ANY},       {"null", V_NULL},       {"number", V_FLOAT64}, {"float64", V_FLOAT64},
                  {"bigint", V_INT64},  {"int64", V_INT64},     {"boolean", V_BOOLEAN}, {"string", V_STRING},
                  {"bytes", V_BYTES}};
    for (size_t i = 0; i < CVX_ARRAY_LEN(simple); i++)
        if (!strcmp(t, simple[i].name)) return (*out = node(a, simple[i].kind)) ? CVX_OK : NOMEM(err);
    cvx_validator_t *v;
    int rc = CVX_OK;
    if (!strcmp(t, "id")) {
        const char *table = str_field(j, "tableName");
        if (!table) return cvx_err_set(err, CVX_E_INVALID_VALUE, "v.id validator has no \"tableName\"");
        if (!(v = node(a, V_ID))) return NOMEM(err);
        v->table = table;
    } else if (!strcmp(t, "literal")) {
        if (!(v = node(a, V_LITERAL))) return NOMEM(err);
        v->literal = field(j, "value");
        if (!v->literal) return cvx_err_set(err, CVX_E_INVALID_VALUE, "v.literal validator has no \"value\"");
    } else if (!strcmp(t, "array")) {
        if (!(v = node(a, V_ARRAY))) return NOMEM(err);
        rc = from_convex(a, field(j, "value"), depth + 1, &v->a, err);
    } else if (!strcmp(t, "record")) {
        if (!(v = node(a, V_RECORD))) return NOMEM(err);
        rc = from_convex(a, field(j, "keys"), depth + 1, &v->a, err);
        if (!rc) rc = convex_field(a, field(j, "values"), depth, &v->b, &v->values_optional, err);
    } else if (!strcmp(t, "object")) {
        const cvx_value_t *fs = field(j, "value");
        if (!fs || fs->type != CVX_T_OBJECT) return cvx_err_set(err, CVX_E_INVALID_VALUE, "v.object validator has no fields");
        if (!(v = node(a, V_OBJECT))) return NOMEM(err);
        v->n = fs->u.obj.len;
        v->fields = cvx_arena_alloc(a, (v->n ? v->n : 1) * sizeof *v->fields);
        if (!v->fields) return NOMEM(err);
        for (size_t i = 0; i < v->n && !rc; i++) {
            v->fields[i].name = fs->u.obj.fields[i].name;
            v->fields[i].len = fs->u.obj.fields[i].name_len;
            rc = convex_field(a, fs->u.obj.fields[i].value, depth, &v->fields[i].v, &v->fields[i].optional, err);
        }
    } else if (!strcmp(t, "union")) {
        const cvx_value_t *vs = field(j, "value");
        if (!vs || vs->type != CVX_T_ARRAY) return cvx_err_set(err, CVX_E_INVALID_VALUE, "v.union validator has no members");
        if (!(v = node(a, V_UNION))) return NOMEM(err);
        v->n = vs->u.arr.len;
        v->items = cvx_arena_alloc(a, (v->n ? v->n : 1) * sizeof *v->items);
        if (!v->items) return NOMEM(err);
        for (size_t i = 0; i < v->n && !rc; i++) rc = from_convex(a, vs->u.arr.items[i], depth + 1, &v->items[i], err);
    } else {
        return cvx_err_set(err, CVX_E_INVALID_VALUE, "unknown validator type \"%s\"", t);
    }
    *out = v;
    return rc;
}

int cvx_validator_from_convex(cvx_arena_t *a, const cvx_value_t *json, const cvx_validator_t **out, cvx_err_t *err) {
    return from_convex(a, json, 0, out, err);
}

/* ---- from cvx type descriptors ------------------------------------------------ */

static int from_type(cvx_arena_t *a, const cvx_value_t *t, int depth, const cvx_validator_t **out, cvx_err_t *err);

/* A Rust Option: absent or null. */
static bool is_optional_type(const cvx_value_t *t) {
    const char *tag = str_field(t, "type");
    return tag && (!strcmp(tag, "optional") || !strcmp(tag, "any"));
}

static int type_fields(cvx_arena_t *a, vfield_t *fields, const char *const *names, const size_t *lens,
                       const cvx_value_t *const *types, size_t n, int depth, cvx_err_t *err) {
    for (size_t i = 0; i < n; i++) {
        fields[i].name = names[i];
        fields[i].len = lens[i];
        fields[i].optional = is_optional_type(types[i]);
        int rc = from_type(a, types[i], depth + 1, &fields[i].v, err);
        if (rc) return rc;
    }
    return CVX_OK;
}

static int from_type(cvx_arena_t *a, const cvx_value_t *t, int depth, const cvx_validator_t **out, cvx_err_t *err) {
    if (depth > CVX_MAX_DEPTH) return cvx_err_set(err, CVX_E_INVALID_VALUE, "type descriptor nests deeper than %d", CVX_MAX_DEPTH);
    const char *tag = str_field(t, "type");
    static const struct {
        const char *name;
        vkind_t kind;
    } simple[] = {{"null", V_NULL},       {"int64", V_INT64},   {"float64", V_FLOAT64}, {"boolean", V_BOOLEAN},
                  {"string", V_STRING},   {"bytes", V_BYTES}};
    for (size_t i = 0; tag && i < CVX_ARRAY_LEN(simple); i++)
        if (!strcmp(tag, simple[i].name)) return (*out = node(a, simple[i].kind)) ? CVX_OK : NOMEM(err);
    cvx_validator_t *v;
    int rc = CVX_OK;
    if (tag && !strcmp(tag, "document")) {
        /* Any object: a record of anything. */
        if (!(v = node(a, V_RECORD)) || !(v->a = node(a, V_STRING)) || !(v->b = node(a, V_ANY))) return NOMEM(err);
    } else if (tag && !strcmp(tag, "id")) {
        if (!(v = node(a, V_ID))) return NOMEM(err);
        v->table = str_field(t, "table");
        if (!v->table) return cvx_err_set(err, CVX_E_INVALID_VALUE, "id type has no \"table\"");
    } else if (tag && !strcmp(tag, "literal")) {
        if (!(v = node(a, V_LITERAL))) return NOMEM(err);
        if (!(v->literal = field(t, "value"))) return cvx_err_set(err, CVX_E_INVALID_VALUE, "literal type has no \"value\"");
    } else if (tag && !strcmp(tag, "array")) {
        if (!(v = node(a, V_ARRAY))) return NOMEM(err);
        rc = from_type(a, field(t, "items"), depth + 1, &v->a, err);
    } else if (tag && !strcmp(tag, "optional")) {
        if (!(v = node(a, V_UNION)) || !(v->items = cvx_arena_alloc(a, 2 * sizeof *v->items))) return NOMEM(err);
        v->n = 2;
        rc = from_type(a, field(t, "inner"), depth + 1, &v->items[0], err);
        if (!rc && !(v->items[1] = node(a, V_NULL))) rc = NOMEM(err);
    } else if (tag && !strcmp(tag, "record")) {
        if (!(v = node(a, V_RECORD)) || !(v->a = node(a, V_STRING))) return NOMEM(err);
        rc = from_type(a, field(t, "values"), depth + 1, &v->b, err);
    } else if (tag && !strcmp(tag, "object") && field(t, "fields") && field(t, "fields")->type == CVX_T_OBJECT) {
        const cvx_value_t *fs = field(t, "fields");
        if (!(v = node(a, V_OBJECT))) return NOMEM(err);
        v->n = fs->u.obj.len;
        v->fields = cvx_arena_alloc(a, (v->n ? v->n : 1) * sizeof *v->fields);
        if (!v->fields) return NOMEM(err);
        for (size_t i = 0; i < v->n && !rc; i++) {
            const cvx_field_t *f = &fs->u.obj.fields[i];
            rc = type_fields(a, &v->fields[i], &f->name, &f->name_len, (const cvx_value_t *const *)&f->value, 1, depth, err);
        }
    } else if (tag && !strcmp(tag, "object")) {
        if (!(v = node(a, V_RECORD)) || !(v->a = node(a, V_STRING)) || !(v->b = node(a, V_ANY))) return NOMEM(err);
    } else if (tag && !strcmp(tag, "union")) {
        const cvx_value_t *vs = field(t, "variants");
        if (!(v = node(a, V_UNION))) return NOMEM(err);
        v->n = vs && vs->type == CVX_T_ARRAY ? vs->u.arr.len : 0;
        v->items = cvx_arena_alloc(a, (v->n ? v->n : 1) * sizeof *v->items);
        if (!v->items) return NOMEM(err);
        for (size_t i = 0; i < v->n && !rc; i++) rc = from_type(a, vs->u.arr.items[i], depth + 1, &v->items[i], err);
    } else {
        /* "any", or a descriptor from a newer SDK: accept rather than
         * reject valid calls; the guest still deserialises strictly. */
        if (!(v = node(a, V_ANY))) return NOMEM(err);
    }
    *out = v;
    return rc;
}

int cvx_validator_from_type(cvx_arena_t *a, const cvx_value_t *type, const cvx_validator_t **out, cvx_err_t *err) {
    return from_type(a, type, 0, out, err);
}

/* Fields must be sorted by name, as Convex's are (a BTreeMap) and as
 * cvx_value_t objects are: both walks below rely on it. */
static int cmp_field(const void *x, const void *y) {
    const vfield_t *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->name, b->name, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

int cvx_validator_from_args(cvx_arena_t *a, const cvx_value_t *args, const cvx_validator_t **out, cvx_err_t *err) {
    if (!args || args->type != CVX_T_ARRAY) return cvx_err_set(err, CVX_E_INVALID_VALUE, "\"args\" must be an array");
    cvx_validator_t *v = node(a, V_OBJECT);
    if (!v || !(v->fields = cvx_arena_alloc(a, (args->u.arr.len ? args->u.arr.len : 1) * sizeof *v->fields)))
        return NOMEM(err);
    for (size_t i = 0; i < args->u.arr.len; i++) {
        const cvx_value_t *arg = args->u.arr.items[i];
        const cvx_value_t *name = field(arg, "name");
        if (!name || name->type != CVX_T_STRING) continue;
        const cvx_value_t *type = field(arg, "type");
        int rc = type_fields(a, &v->fields[v->n], &name->u.str.ptr, &name->u.str.len, &type, 1, 0, err);
        if (rc) return rc;
        v->n++;
    }
    qsort(v->fields, v->n, sizeof *v->fields, cmp_field);
    *out = v;
    return CVX_OK;
}

bool cvx_validator_is_any(const cvx_validator_t *v) { return !v || v->kind == V_ANY; }

size_t cvx_validator_fields(const cvx_validator_t *v, const char **names, bool *optional, size_t max) {
    if (!v || v->kind != V_OBJECT) return 0;
    for (size_t i = 0; i < v->n && i < max; i++) {
        names[i] = v->fields[i].name;
        optional[i] = v->fields[i].optional;
    }
    return v->n;
}

/* ---- printing, as Convex prints them ------------------------------------------ */

/* A float as Rust's `{:?}` writes it (`lo` = 1e-4) or serde_json does
 * (`lo` = 1e-5): the shortest digits that read back, decimal with a
 * fraction always ("100.0", "0.25") for magnitudes in [lo, 1e16), else
 * with an exponent ("1e16", "1.5e-7"). */
static void print_float_from(cvx_buf_t *out, double f, double lo) {
    if (isnan(f)) {
        cvx_buf_append_str(out, "NaN");
        return;
    }
    if (isinf(f)) {
        cvx_buf_append_str(out, f > 0 ? "inf" : "-inf");
        return;
    }
    if (signbit(f)) cvx_buf_append_char(out, '-');
    double a = fabs(f);
    if (a == 0) {
        cvx_buf_append_str(out, "0.0");
        return;
    }
    /* d.ddde±x with the fewest digits that round-trip. */
    char s[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(s, sizeof s, "%.*e", p - 1, a);
        if (strtod(s, NULL) == a) break;
    }
    char digits[20];
    int nd = 0;
    const char *e = s;
    for (; *e && *e != 'e'; e++)
        if (*e != '.') digits[nd++] = *e;
    int exp = atoi(e + 1);
    if (a < lo || a >= 1e16) {
        cvx_buf_append_char(out, digits[0]);
        if (nd > 1) {
            cvx_buf_append_char(out, '.');
            cvx_buf_append(out, digits + 1, (size_t)nd - 1);
        }
        cvx_buf_printf(out, "e%d", exp);
    } else if (exp < 0) {
        cvx_buf_append_str(out, "0.");
        for (int i = exp + 1; i < 0; i++) cvx_buf_append_char(out, '0');
        cvx_buf_append(out, digits, (size_t)nd);
    } else if (exp + 1 >= nd) {
        cvx_buf_append(out, digits, (size_t)nd);
        for (int i = nd; i < exp + 1; i++) cvx_buf_append_char(out, '0');
        cvx_buf_append_str(out, ".0");
    } else {
        cvx_buf_append(out, digits, (size_t)exp + 1);
        cvx_buf_append_char(out, '.');
        cvx_buf_append(out, digits + exp + 1, (size_t)(nd - exp - 1));
    }
}

static void print_float(cvx_buf_t *out, double f) { print_float_from(out, f, 1e-4); }

static void print_string(cvx_buf_t *out, const char *s, size_t n) {
    cvx_buf_append_char(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            cvx_buf_append_char(out, '\\');
            cvx_buf_append_char(out, (char)ch);
        } else if (ch == '\n') cvx_buf_append_str(out, "\\n");
        else if (ch == '\r') cvx_buf_append_str(out, "\\r");
        else if (ch == '\t') cvx_buf_append_str(out, "\\t");
        else if (ch < 0x20 || ch == 0x7f) cvx_buf_printf(out, "\\u{%x}", ch);
        else cvx_buf_append_char(out, (char)ch);
    }
    cvx_buf_append_char(out, '"');
}

void cvx_value_print(cvx_buf_t *out, const cvx_value_t *v) {
    if (!v) {
        cvx_buf_append_str(out, "undefined");
        return;
    }
    switch (v->type) {
    case CVX_T_NULL: cvx_buf_append_str(out, "null"); break;
    case CVX_T_INT64: cvx_buf_printf(out, "%lld", (long long)v->u.i); break;
    case CVX_T_FLOAT64: print_float(out, v->u.f); break;
    case CVX_T_BOOL: cvx_buf_append_str(out, v->u.b ? "true" : "false"); break;
    case CVX_T_STRING: print_string(out, v->u.str.ptr, v->u.str.len); break;
    case CVX_T_BYTES: {
        cvx_buf_append_str(out, "b\"");
        for (size_t i = 0; i < v->u.str.len; i++) cvx_buf_printf(out, "\\x%02x", (unsigned char)v->u.str.ptr[i]);
        cvx_buf_append_char(out, '"');
        break;
    }
    case CVX_T_ARRAY:
        cvx_buf_append_char(out, '[');
        for (size_t i = 0; i < v->u.arr.len; i++) {
            if (i) cvx_buf_append_str(out, ", ");
            cvx_value_print(out, v->u.arr.items[i]);
        }
        cvx_buf_append_char(out, ']');
        break;
    case CVX_T_OBJECT:
        cvx_buf_append_char(out, '{');
        for (size_t i = 0; i < v->u.obj.len; i++) {
            if (i) cvx_buf_append_str(out, ", ");
            cvx_buf_append(out, v->u.obj.fields[i].name, v->u.obj.fields[i].name_len);
            cvx_buf_append_str(out, ": ");
            cvx_value_print(out, v->u.obj.fields[i].value);
        }
        cvx_buf_append_char(out, '}');
        break;
    }
}

static void print_literal(cvx_buf_t *out, const cvx_value_t *lit) {
    /* Convex prints literals as JSON (serde_json: a float keeps its ".0"),
     * and a bigint one as <bigint>. */
    if (lit->type == CVX_T_INT64) cvx_buf_append_str(out, "<bigint>");
    else if (lit->type == CVX_T_FLOAT64 && !isfinite(lit->u.f)) cvx_buf_append_str(out, "<number>");
    else if (lit->type == CVX_T_FLOAT64) print_float_from(out, lit->u.f, 1e-5);
    else cvx_json_write(out, lit);
}

void cvx_validator_print(cvx_buf_t *out, const cvx_validator_t *v) {
    static const char *const simple[] = {[V_ANY] = "v.any()",         [V_NULL] = "v.null()",
                                         [V_FLOAT64] = "v.float64()", [V_INT64] = "v.int64()",
                                         [V_BOOLEAN] = "v.boolean()", [V_STRING] = "v.string()",
                                         [V_BYTES] = "v.bytes()"};
    if (!v) {
        cvx_buf_append_str(out, "v.any()");
        return;
    }
    switch (v->kind) {
    case V_ID: cvx_buf_printf(out, "v.id(\"%s\")", v->table); break;
    case V_LITERAL:
        cvx_buf_append_str(out, "v.literal(");
        print_literal(out, v->literal);
        cvx_buf_append_char(out, ')');
        break;
    case V_ARRAY:
        cvx_buf_append_str(out, "v.array(");
        cvx_validator_print(out, v->a);
        cvx_buf_append_char(out, ')');
        break;
    case V_RECORD:
        cvx_buf_append_str(out, "v.record(");
        cvx_validator_print(out, v->a);
        cvx_buf_append_str(out, ", ");
        if (v->values_optional) cvx_buf_append_str(out, "v.optional(");
        cvx_validator_print(out, v->b);
        if (v->values_optional) cvx_buf_append_char(out, ')');
        cvx_buf_append_char(out, ')');
        break;
    case V_OBJECT:
        cvx_buf_append_str(out, "v.object({");
        for (size_t i = 0; i < v->n; i++) {
            if (i) cvx_buf_append_str(out, ", ");
            cvx_buf_append(out, v->fields[i].name, v->fields[i].len);
            cvx_buf_append_str(out, ": ");
            if (v->fields[i].optional) cvx_buf_append_str(out, "v.optional(");
            cvx_validator_print(out, v->fields[i].v);
            if (v->fields[i].optional) cvx_buf_append_char(out, ')');
        }
        cvx_buf_append_str(out, "})");
        break;
    case V_UNION:
        cvx_buf_append_str(out, "v.union(");
        for (size_t i = 0; i < v->n; i++) {
            if (i) cvx_buf_append_str(out, ", ");
            cvx_validator_print(out, v->items[i]);
        }
        cvx_buf_append_char(out, ')');
        break;
    default: cvx_buf_append_str(out, simple[v->kind]); break;
    }
}

/* ---- checking -------------------------------------------------------------------- */

/* The path from the checked value to the mismatch, built innermost first
 * as the error unwinds, then printed outermost first ("Path: .a[0].b"). */
typedef struct {
    char seg[16][80];
    int n;
    bool truncated;
} vpath_t;

typedef struct {
    cvx_id_table_fn table_of;
    void *ctx;
    vpath_t path;
    bool quiet; /* inside a union's trial: no message needed */
} check_t;

static void path_push(check_t *c, const char *fmt, const char *s, size_t n, size_t index) {
    if (c->quiet) return;
    if (c->path.n == 16) {
        c->path.truncated = true;
        return;
    }
    char *seg = c->path.seg[c->path.n++];
    if (s) snprintf(seg, sizeof c->path.seg[0], fmt, (int)(n > 64 ? 64 : n), s);
    else snprintf(seg, sizeof c->path.seg[0], fmt, index);
}

/* Ends a Convex message: "\n<context>\n" sits where Convex puts it. */
static void context(check_t *c, cvx_buf_t *b) {
    if (c->path.n == 0) return;
    cvx_buf_append_str(b, "Path: ");
    if (c->path.truncated) cvx_buf_append_str(b, "...");
    for (int i = c->path.n - 1; i >= 0; i--) cvx_buf_append_str(b, c->path.seg[i]);
}

/* The message is only written once the whole path is known: mismatch()
 * records what failed, cvx_validator_check formats it. */
typedef struct {
    int what; /* 1 no match, 2 missing field, 3 extra field, 4 literal, 5 table, 6 system table */
    const cvx_validator_t *v;
    const cvx_value_t *value;
    const char *name;
    size_t name_len;
    const char *found_table;
} failure_t;

static int check(check_t *c, failure_t *f, const cvx_validator_t *v, const cvx_value_t *x, int depth);

static int fail(failure_t *f, int what, const cvx_validator_t *v, const cvx_value_t *x) {
    f->what = what;
    f->v = v;
    f->value = x;
    return CVX_E_ARGS;
}

static int check(check_t *c, failure_t *f, const cvx_validator_t *v, const cvx_value_t *x, int depth) {
    if (depth > CVX_MAX_DEPTH + 2) return fail(f, 1, v, x);
    switch (v->kind) {
    case V_ANY: return CVX_OK;
    case V_NULL: return x->type == CVX_T_NULL ? CVX_OK : fail(f, 1, v, x);
    case V_FLOAT64: return x->type == CVX_T_FLOAT64 ? CVX_OK : fail(f, 1, v, x);
    case V_INT64: return x->type == CVX_T_INT64 ? CVX_OK : fail(f, 1, v, x);
    case V_BOOLEAN: return x->type == CVX_T_BOOL ? CVX_OK : fail(f, 1, v, x);
    case V_STRING: return x->type == CVX_T_STRING ? CVX_OK : fail(f, 1, v, x);
    case V_BYTES: return x->type == CVX_T_BYTES ? CVX_OK : fail(f, 1, v, x);
    case V_ID: {
        cvx_id_t id;
        cvx_err_t ignored;
        if (x->type != CVX_T_STRING || cvx_id_parse(x->u.str.ptr, x->u.str.len, &id, &ignored)) return fail(f, 1, v, x);
        if (!c->table_of) return CVX_OK;
        const char *table = c->table_of(c->ctx, x->u.str.ptr, x->u.str.len);
        if (!table) return fail(f, 1, v, x);
        if (strcmp(table, v->table) != 0) {
            fail(f, table[0] == '_' ? 6 : 5, v, x);
            f->found_table = table;
            return CVX_E_ARGS;
        }
        return CVX_OK;
    }
    case V_LITERAL: return cvx_value_equal(v->literal, x) ? CVX_OK : fail(f, 4, v, x);
    case V_ARRAY:
        if (x->type != CVX_T_ARRAY) return fail(f, 1, v, x);
        for (size_t i = 0; i < x->u.arr.len; i++) {
            int rc = check(c, f, v->a, x->u.arr.items[i], depth + 1);
            if (rc) {
                path_push(c, "[%zu]", NULL, 0, i);
                return rc;
            }
        }
        return CVX_OK;
    case V_RECORD:
        if (x->type != CVX_T_OBJECT) return fail(f, 1, v, x);
        for (size_t i = 0; i < x->u.obj.len; i++) {
            const cvx_field_t *fl = &x->u.obj.fields[i];
            cvx_value_t key = {.type = CVX_T_STRING, .u.str = {fl->name, fl->name_len}};
            int rc = check(c, f, v->a, &key, depth + 1);
            if (rc) {
                if (f->value == &key) {
                    /* The key lives on this stack: keep its text instead. */
                    f->value = NULL;
                    f->name = fl->name;
                    f->name_len = fl->name_len;
                }
                path_push(c, ".keys()", "", 0, 0);
                return rc;
            }
            if ((rc = check(c, f, v->b, fl->value, depth + 1))) {
                path_push(c, ".values()", "", 0, 0);
                return rc;
            }
        }
        return CVX_OK;
    case V_OBJECT: {
        if (x->type != CVX_T_OBJECT) return fail(f, 1, v, x);
        for (size_t i = 0; i < v->n; i++) {
            const vfield_t *vf = &v->fields[i];
            const cvx_value_t *fv = cvx_obj_get(x, vf->name, vf->len);
            if (fv) {
                int rc = check(c, f, vf->v, fv, depth + 1);
                if (rc) {
                    path_push(c, ".%.*s", vf->name, vf->len, 0);
                    return rc;
                }
            } else if (!vf->optional) {
                fail(f, 2, v, x);
                f->name = vf->name;
                f->name_len = vf->len;
                return CVX_E_ARGS;
            }
        }
        for (size_t i = 0; i < x->u.obj.len; i++) {
            const cvx_field_t *xf = &x->u.obj.fields[i];
            vfield_t key = {xf->name, xf->name_len, false, NULL};
            if (!bsearch(&key, v->fields, v->n, sizeof *v->fields, cmp_field)) {
                fail(f, 3, v, x);
                f->name = xf->name;
                f->name_len = xf->name_len;
                return CVX_E_ARGS;
            }
        }
        return CVX_OK;
    }
    case V_UNION: {
        if (v->n == 1) return check(c, f, v->items[0], x, depth + 1);
        bool quiet = c->quiet;
        c->quiet = true;
        int saved = c->path.n;
        for (size_t i = 0; i < v->n; i++) {
            failure_t ignored = {0};
            if (check(c, &ignored, v->items[i], x, depth + 1) == CVX_OK) {
                c->quiet = quiet;
                return CVX_OK;
            }
        }
        c->quiet = quiet;
        c->path.n = saved;
        return fail(f, 1, v, x);
    }
    }
    return fail(f, 1, v, x);
}

int cvx_validator_check(const cvx_validator_t *v, const cvx_value_t *x, cvx_id_table_fn table_of, void *ctx,
                        const char *prefix, cvx_err_t *err) {
    if (!v || v->kind == V_ANY) return CVX_OK;
    check_t c = {.table_of = table_of, .ctx = ctx};
    failure_t f = {0};
    if (check(&c, &f, v, x, 0) == CVX_OK) return CVX_OK;
    /* A record key that failed was a string on check()'s stack: it comes
     * back as its text, which every message below prints as the value. */
    cvx_value_t key = {.type = CVX_T_STRING, .u.str = {f.name, f.name_len}};
    if (!f.value) f.value = &key;
    cvx_buf_t m = {0};
    if (prefix) cvx_buf_append_str(&m, prefix);
    switch (f.what) {
    case 2:
    case 3:
        if (f.what == 2)
            cvx_buf_printf(&m, "Object is missing the required field `%.*s`. Consider wrapping the field validator in "
                               "`v.optional(...)` if this is expected.\n",
                           (int)f.name_len, f.name);
        else cvx_buf_printf(&m, "Object contains extra field `%.*s` that is not in the validator.\n", (int)f.name_len, f.name);
        context(&c, &m);
        cvx_buf_append_str(&m, "\nObject: ");
        cvx_value_print(&m, f.value);
        cvx_buf_append_str(&m, "\nValidator: ");
        cvx_validator_print(&m, f.v);
        break;
    case 4:
        cvx_buf_append_char(&m, '`');
        cvx_value_print(&m, f.value);
        cvx_buf_append_str(&m, "` does not match literal validator `v.literal(");
        print_literal(&m, f.v->literal);
        cvx_buf_append_str(&m, ")`.");
        context(&c, &m);
        break;
    case 5:
    case 6:
        cvx_buf_append_str(&m, "Found ID ");
        print_string(&m, f.value->u.str.ptr, f.value->u.str.len);
        if (f.what == 5) cvx_buf_printf(&m, " from table `%s`, which", f.found_table);
        else cvx_buf_append_str(&m, " from a system table, which");
        cvx_buf_printf(&m, " does not match the table name in validator `v.id(\"%s\")`.", f.v->table);
        context(&c, &m);
        break;
    default:
        cvx_buf_append_str(&m, "Value does not match validator.\n");
        context(&c, &m);
        cvx_buf_append_str(&m, "\nValue: ");
        if (f.value) cvx_value_print(&m, f.value);
        else print_string(&m, f.name, f.name_len);
        cvx_buf_append_str(&m, "\nValidator: ");
        cvx_validator_print(&m, f.v);
        break;
    }
    int rc = m.oom ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : cvx_err_set(err, CVX_E_ARGS, "%s", m.data);
    cvx_buf_free(&m);
    return rc;
}
