/*
 * value.c — building and reading value trees: constructors, the array and
 * object builders, field lookup, deep copies, and the small helpers the
 * rest of the layer shares (error paths, field-name rules, UTF-8).
 *
 * Design: objects are a sorted array of fields, not a hash table. Lookup is
 * a binary search, comparison and key encoding walk fields in order with no
 * sorting, and the parser can build an object with one sort at the end. The
 * builders (cvx_obj_set) pay O(n) per insert for this, which is fine for the
 * small objects that host code builds by hand.
 *
 * Containers carry a capacity. One whose cap is below its len (for example
 * a value a caller filled in by hand) is still safe to grow: the next push
 * copies it into the arena first.
 */
#include "value/value_int.h"

#include <stdio.h>
#include <string.h>

/* ---- scalars ------------------------------------------------------------- */

static cvx_value_t *new_value(cvx_arena_t *a, cvx_type_t t) {
    cvx_value_t *v = cvx_arena_alloc(a, sizeof *v);
    if (!v) return NULL;
    memset(v, 0, sizeof *v);
    v->type = t;
    return v;
}

cvx_value_t *cvx_null(cvx_arena_t *a) { return new_value(a, CVX_T_NULL); }

cvx_value_t *cvx_int64(cvx_arena_t *a, int64_t i) {
    cvx_value_t *v = new_value(a, CVX_T_INT64);
    if (v) v->u.i = i;
    return v;
}

cvx_value_t *cvx_float64(cvx_arena_t *a, double f) {
    cvx_value_t *v = new_value(a, CVX_T_FLOAT64);
    if (v) v->u.f = f;
    return v;
}

cvx_value_t *cvx_bool(cvx_arena_t *a, bool b) {
    cvx_value_t *v = new_value(a, CVX_T_BOOL);
    if (v) v->u.b = b;
    return v;
}

static cvx_value_t *new_blob(cvx_arena_t *a, cvx_type_t t, const void *p, size_t n) {
    cvx_value_t *v = new_value(a, t);
    if (!v) return NULL;
    char *copy = cvx_arena_strndup(a, p ? p : "", p ? n : 0);
    if (!copy) return NULL;
    v->u.str.ptr = copy;
    v->u.str.len = p ? n : 0;
    return v;
}

cvx_value_t *cvx_string(cvx_arena_t *a, const char *s, size_t n) { return new_blob(a, CVX_T_STRING, s, n); }

cvx_value_t *cvx_bytes(cvx_arena_t *a, const void *p, size_t n) { return new_blob(a, CVX_T_BYTES, p, n); }

/* ---- containers ---------------------------------------------------------- */

cvx_value_t *cvx_array(cvx_arena_t *a, size_t cap) {
    cvx_value_t *v = new_value(a, CVX_T_ARRAY);
    if (!v) return NULL;
    if (cap) {
        v->u.arr.items = cvx_arena_alloc(a, cap * sizeof *v->u.arr.items);
        if (!v->u.arr.items) return NULL;
        v->u.arr.cap = cap;
    }
    return v;
}

cvx_value_t *cvx_object(cvx_arena_t *a, size_t cap) {
    cvx_value_t *v = new_value(a, CVX_T_OBJECT);
    if (!v) return NULL;
    if (cap) {
        v->u.obj.fields = cvx_arena_alloc(a, cap * sizeof *v->u.obj.fields);
        if (!v->u.obj.fields) return NULL;
        v->u.obj.cap = cap;
    }
    return v;
}

/* Makes room for one more element of `size` bytes in *slots (len used,
 * *cap allocated). The old array stays in the arena; doubling keeps the
 * total copying linear. */
static int grow(cvx_arena_t *a, void **slots, size_t len, size_t *cap, size_t size) {
    if (len < *cap) return CVX_OK;
    size_t ncap = len < 4 ? 8 : len * 2;
    void *p = cvx_arena_alloc(a, ncap * size);
    if (!p) return CVX_E_NOMEM;
    if (len) memcpy(p, *slots, len * size);
    *slots = p;
    *cap = ncap;
    return CVX_OK;
}

int cvx_arr_push(cvx_arena_t *a, cvx_value_t *arr, cvx_value_t *v) {
    if (!arr || arr->type != CVX_T_ARRAY) return CVX_E_INVALID_ARGUMENT;
    void *items = arr->u.arr.items;
    if (grow(a, &items, arr->u.arr.len, &arr->u.arr.cap, sizeof(cvx_value_t *))) return CVX_E_NOMEM;
    arr->u.arr.items = items;
    arr->u.arr.items[arr->u.arr.len++] = v;
    return CVX_OK;
}

int cvx__name_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return alen < blen ? -1 : alen > blen;
}

/* Index of `name` in obj, or of where it would be inserted; *found says
 * which. */
static size_t find_field(const cvx_value_t *obj, const char *name, size_t n, bool *found) {
    size_t lo = 0, hi = obj->u.obj.len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const cvx_field_t *f = &obj->u.obj.fields[mid];
        int c = cvx__name_cmp(f->name, f->name_len, name, n);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

int cvx_obj_set(cvx_arena_t *a, cvx_value_t *obj, const char *name, size_t name_len, cvx_value_t *v) {
    if (!obj || obj->type != CVX_T_OBJECT) return CVX_E_INVALID_ARGUMENT;
    bool found;
    size_t at = find_field(obj, name, name_len, &found);
    if (found) {
        obj->u.obj.fields[at].value = v;
        return CVX_OK;
    }
    char *copy = cvx_arena_strndup(a, name, name_len);
    if (!copy) return CVX_E_NOMEM;
    void *fields = obj->u.obj.fields;
    if (grow(a, &fields, obj->u.obj.len, &obj->u.obj.cap, sizeof(cvx_field_t))) return CVX_E_NOMEM;
    cvx_field_t *f = fields;
    memmove(f + at + 1, f + at, (obj->u.obj.len - at) * sizeof *f);
    f[at].name = copy;
    f[at].name_len = name_len;
    f[at].value = v;
    obj->u.obj.fields = f;
    obj->u.obj.len++;
    return CVX_OK;
}

bool cvx_obj_remove(cvx_value_t *obj, const char *name, size_t name_len) {
    if (!obj || obj->type != CVX_T_OBJECT) return false;
    bool found;
    size_t at = find_field(obj, name, name_len, &found);
    if (!found) return false;
    cvx_field_t *f = obj->u.obj.fields;
    memmove(f + at, f + at + 1, (obj->u.obj.len - at - 1) * sizeof *f);
    obj->u.obj.len--;
    return true;
}

cvx_value_t *cvx_obj_get(const cvx_value_t *obj, const char *name, size_t name_len) {
    if (!obj || obj->type != CVX_T_OBJECT) return NULL;
    bool found;
    size_t at = find_field(obj, name, name_len, &found);
    return found ? obj->u.obj.fields[at].value : NULL;
}

cvx_value_t *cvx_obj_get_cstr(const cvx_value_t *obj, const char *name) {
    return cvx_obj_get(obj, name, strlen(name));
}

cvx_value_t *cvx_obj_get_path(const cvx_value_t *obj, const char *path, size_t path_len) {
    const cvx_value_t *cur = obj;
    size_t start = 0;
    for (;;) {
        const char *dot = memchr(path + start, '.', path_len - start);
        size_t end = dot ? (size_t)(dot - path) : path_len;
        cvx_value_t *next = cvx_obj_get(cur, path + start, end - start);
        if (!next || !dot) return next;
        cur = next;
        start = end + 1;
    }
}

/* ---- deep copy ----------------------------------------------------------- */

cvx_value_t *cvx_value_clone(cvx_arena_t *a, const cvx_value_t *v) {
    if (!v) return NULL;
    switch (v->type) {
    case CVX_T_STRING:
    case CVX_T_BYTES: return new_blob(a, v->type, v->u.str.ptr, v->u.str.len);
    case CVX_T_ARRAY: {
        cvx_value_t *c = cvx_array(a, v->u.arr.len);
        if (!c) return NULL;
        for (size_t i = 0; i < v->u.arr.len; i++) {
            cvx_value_t *item = v->u.arr.items[i];
            if (item && !(item = cvx_value_clone(a, item))) return NULL;
            c->u.arr.items[i] = item;
        }
        c->u.arr.len = v->u.arr.len;
        return c;
    }
    case CVX_T_OBJECT: {
        cvx_value_t *c = cvx_object(a, v->u.obj.len);
        if (!c) return NULL;
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const cvx_field_t *f = &v->u.obj.fields[i];
            cvx_field_t *g = &c->u.obj.fields[i];
            cvx_value_t *fv = f->value;
            if (fv && !(fv = cvx_value_clone(a, fv))) return NULL;
            if (!(g->name = cvx_arena_strndup(a, f->name, f->name_len))) return NULL;
            g->name_len = f->name_len;
            g->value = fv;
        }
        c->u.obj.len = v->u.obj.len;
        return c;
    }
    default: {
        cvx_value_t *c = new_value(a, v->type);
        if (c) c->u = v->u;
        return c;
    }
    }
}

const char *cvx_type_name(cvx_type_t t) {
    switch (t) {
    case CVX_T_NULL: return "null";
    case CVX_T_INT64: return "int64";
    case CVX_T_FLOAT64: return "float64";
    case CVX_T_BOOL: return "boolean";
    case CVX_T_STRING: return "string";
    case CVX_T_BYTES: return "bytes";
    case CVX_T_ARRAY: return "array";
    case CVX_T_OBJECT: return "object";
    }
    return "unknown";
}

bool cvx_table_name_valid(const char *s, size_t n) {
    if (n == 0 || n > CVX_MAX_TABLE_NAME) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

/* ---- shared helpers ------------------------------------------------------ */

size_t cvx__snippet(char *out, size_t cap, const char *s, size_t n, size_t max) {
    size_t o = 0, i = 0;
    for (; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[5];
        size_t k;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            k = 2;
        } else if (c < 32 || c > 126) {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            k = 4;
        } else {
            tmp[0] = (char)c;
            k = 1;
        }
        if (o + k + 4 > cap) break; /* keep room for "..." and NUL */
        memcpy(out + o, tmp, k);
        o += k;
    }
    if (i < n && o + 4 <= cap) { /* cut short, by max or by cap */
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return o;
}

/* Prints the chain root-first into out (bounded). */
static void format_path(char *out, size_t cap, const cvx__path_t *path) {
    const cvx__path_t *chain[CVX_MAX_DEPTH + 8];
    size_t depth = 0;
    for (const cvx__path_t *p = path; p && depth < CVX_ARRAY_LEN(chain); p = p->parent) chain[depth++] = p;
    size_t o = 0;
    out[0] = '\0';
    while (depth > 0 && o + 1 < cap) {
        const cvx__path_t *p = chain[--depth];
        if (p->name) {
            if (o > 0) out[o++] = '.';
            o += cvx__snippet(out + o, cap - o, p->name, p->name_len, 64);
        } else {
            int k = snprintf(out + o, cap - o, "[%zu]", p->index);
            o = k < 0 ? o : CVX_MIN(cap - 1, o + (size_t)k);
        }
    }
    out[CVX_MIN(o, cap - 1)] = '\0';
}

int cvx__path_err(cvx_err_t *err, int code, const cvx__path_t *path, const char *fmt, ...) {
    if (!err) return code;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!path) return cvx_err_set(err, code, "%s", msg);
    char where[400];
    format_path(where, sizeof where, path);
    return cvx_err_set(err, code, "field \"%s\": %s", where, msg);
}

const char *cvx__field_name_problem(const char *name, size_t n, char *msg, size_t cap) {
    if (n == 0) {
        snprintf(msg, cap, "empty field name");
        return msg;
    }
    /* Every field of every parsed object passes here: the snippet for the
     * message is made only once there is a problem. */
    bool too_long = n > CVX_MAX_FIELD_NAME, bad_char = false;
    for (size_t i = 0; i < n && !too_long && !bad_char; i++) bad_char = (unsigned char)name[i] < 32 || (unsigned char)name[i] > 126;
    if (!too_long && !bad_char && name[0] != '$') return NULL;
    char snip[96];
    cvx__snippet(snip, sizeof snip, name, n, 40);
    if (too_long)
        snprintf(msg, cap, "field name \"%s\" is longer than %d characters", snip, CVX_MAX_FIELD_NAME);
    else if (bad_char)
        snprintf(msg, cap, "field name \"%s\" has a character outside ASCII 32..126", snip);
    else
        snprintf(msg, cap, "field name \"%s\" must not start with '$'", snip);
    return msg;
}

void cvx__store_le64(uint8_t out[8], uint64_t v) {
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (8 * i));
}

uint64_t cvx__load_le64(const uint8_t in[8]) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | in[i];
    return v;
}
