/*
 * order.c — the total order of values and the index-key encoding that
 * realises it as plain byte order.
 *
 * Key decision: the comparison and the encoding are defined together, and
 * a property test holds them equal (memcmp of keys == cvx_value_compare).
 * Every value becomes one type tag byte (tags ascend in type order) and a
 * self-delimiting body, so a concatenation of keys (a compound index key)
 * sorts component by component and can be cut apart again:
 *
 *   0x01 undefined (NULL)     0x06 false      0x0a array:  items..., 0x00
 *   0x02 null                 0x07 true       0x0b object: (0x01 name value)..., 0x00
 *   0x03 int64   8 bytes BE, sign bit flipped
 *   0x04 float64 8 bytes: bits | sign when positive, ~bits when negative
 *   0x05 NaN     8 bytes: raw bits (every NaN sorts after every number)
 *   0x08 string, 0x09 bytes: contents with 0x00 -> 0x00 0xff, then 0x00
 *
 * Why this works: tags are never 0x00 or 0xff, so a 0x00 terminator sorts
 * an array or object before any longer one with the same prefix, and an
 * escaped 0x00 (0x00 0xff) sorts after the end of a string (0x00 then a tag
 * or terminator). The float mapping orders all non-NaN doubles by value
 * with -0 < +0. NaN gets its own tag so that NaNs of either sign sort last
 * (as the contract says) while keeping their bits, so decode(encode(v)) is
 * exact. Each object field is announced by 0x01 so that even an empty name
 * cannot be mistaken for the end of the object.
 */
#include "value/value_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum {
    TAG_END = 0x00,
    TAG_UNDEFINED = 0x01,
    TAG_FIELD = 0x01, /* inside an object, before each field */
    TAG_NULL = 0x02,
    TAG_INT64 = 0x03,
    TAG_FLOAT64 = 0x04,
    TAG_NAN = 0x05,
    TAG_FALSE = 0x06,
    TAG_TRUE = 0x07,
    TAG_STRING = 0x08,
    TAG_BYTES = 0x09,
    TAG_ARRAY = 0x0a,
    TAG_OBJECT = 0x0b,
    ESCAPE = 0xff,
};

/* ---- comparison ---------------------------------------------------------- */

static uint64_t float_bits(double f) {
    uint64_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* The order-preserving image of a non-NaN double (see the table above). */
static uint64_t float_key(double f) {
    uint64_t b = float_bits(f);
    return (b >> 63) ? ~b : b | (UINT64_C(1) << 63);
}

static int cmp_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b; }

static int cmp_float(double a, double b) {
    bool an = isnan(a), bn = isnan(b);
    if (an != bn) return an ? 1 : -1;
    if (an) return cmp_u64(float_bits(a), float_bits(b));
    return cmp_u64(float_key(a), float_key(b));
}

/* Position of a type in the order; NULL (undefined) first. */
static int type_rank(const cvx_value_t *v) { return v ? (int)v->type : 0; }

int cvx_value_compare(const cvx_value_t *a, const cvx_value_t *b) {
    int ra = type_rank(a), rb = type_rank(b);
    if (ra != rb) return ra < rb ? -1 : 1;
    if (!a) return 0;
    switch (a->type) {
    case CVX_T_NULL: return 0;
    case CVX_T_INT64: return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
    case CVX_T_FLOAT64: return cmp_float(a->u.f, b->u.f);
    case CVX_T_BOOL: return (int)a->u.b - (int)b->u.b;
    case CVX_T_STRING:
    case CVX_T_BYTES: {
        int c = cvx__name_cmp(a->u.str.ptr, a->u.str.len, b->u.str.ptr, b->u.str.len);
        return c < 0 ? -1 : c > 0;
    }
    case CVX_T_ARRAY: {
        size_t n = CVX_MIN(a->u.arr.len, b->u.arr.len);
        for (size_t i = 0; i < n; i++) {
            int c = cvx_value_compare(a->u.arr.items[i], b->u.arr.items[i]);
            if (c) return c;
        }
        return cmp_u64(a->u.arr.len, b->u.arr.len);
    }
    case CVX_T_OBJECT: {
        size_t n = CVX_MIN(a->u.obj.len, b->u.obj.len);
        for (size_t i = 0; i < n; i++) {
            const cvx_field_t *fa = &a->u.obj.fields[i], *fb = &b->u.obj.fields[i];
            int c = cvx__name_cmp(fa->name, fa->name_len, fb->name, fb->name_len);
            if (c) return c < 0 ? -1 : 1;
            if ((c = cvx_value_compare(fa->value, fb->value))) return c;
        }
        return cmp_u64(a->u.obj.len, b->u.obj.len);
    }
    }
    return 0;
}

bool cvx_value_equal(const cvx_value_t *a, const cvx_value_t *b) { return cvx_value_compare(a, b) == 0; }

/* ---- encoding ------------------------------------------------------------ */

static void put_u64be(cvx_buf_t *out, uint8_t tag, uint64_t v) {
    uint8_t b[9] = {tag};
    for (int i = 0; i < 8; i++) b[1 + i] = (uint8_t)(v >> (56 - 8 * i));
    cvx_buf_append(out, b, sizeof b);
}

/* Contents with each 0x00 escaped as 0x00 0xff, then the 0x00 terminator.
 * Copies runs between zeros in one append each. */
static void put_escaped(cvx_buf_t *out, const char *s, size_t n) {
    static const uint8_t zero_escaped[2] = {0x00, ESCAPE};
    size_t run = 0;
    for (;;) {
        const char *z = n > run ? memchr(s + run, 0, n - run) : NULL;
        size_t end = z ? (size_t)(z - s) : n;
        cvx_buf_append(out, s + run, end - run);
        if (!z) break;
        cvx_buf_append(out, zero_escaped, 2);
        run = end + 1;
    }
    cvx_buf_append_char(out, TAG_END);
}

static void put_tag(cvx_buf_t *out, uint8_t tag) { cvx_buf_append_char(out, (char)tag); }

/* Appends without checking each step: the buffer remembers a failure. */
static void encode(cvx_buf_t *out, const cvx_value_t *v) {
    if (!v) {
        put_tag(out, TAG_UNDEFINED);
        return;
    }
    switch (v->type) {
    case CVX_T_NULL: put_tag(out, TAG_NULL); break;
    case CVX_T_INT64: put_u64be(out, TAG_INT64, (uint64_t)v->u.i ^ (UINT64_C(1) << 63)); break;
    case CVX_T_FLOAT64:
        if (isnan(v->u.f))
            put_u64be(out, TAG_NAN, float_bits(v->u.f));
        else
            put_u64be(out, TAG_FLOAT64, float_key(v->u.f));
        break;
    case CVX_T_BOOL: put_tag(out, v->u.b ? TAG_TRUE : TAG_FALSE); break;
    case CVX_T_STRING:
    case CVX_T_BYTES:
        put_tag(out, v->type == CVX_T_STRING ? TAG_STRING : TAG_BYTES);
        put_escaped(out, v->u.str.ptr, v->u.str.len);
        break;
    case CVX_T_ARRAY:
        put_tag(out, TAG_ARRAY);
        for (size_t i = 0; i < v->u.arr.len; i++) encode(out, v->u.arr.items[i]);
        put_tag(out, TAG_END);
        break;
    case CVX_T_OBJECT:
        put_tag(out, TAG_OBJECT);
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const cvx_field_t *f = &v->u.obj.fields[i];
            put_tag(out, TAG_FIELD);
            put_escaped(out, f->name, f->name_len);
            encode(out, f->value);
        }
        put_tag(out, TAG_END);
        break;
    }
}

int cvx_key_append(cvx_buf_t *out, const cvx_value_t *v) {
    encode(out, v);
    return out->oom ? CVX_E_NOMEM : CVX_OK;
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct {
    cvx_arena_t *a;
    const uint8_t *k;
    size_t len;
    size_t pos;
    cvx_err_t *err;
} decoder_t;

static int bad_key_at(decoder_t *d, size_t at, const char *what) {
    return cvx_err_set(d->err, CVX_E_INVALID_VALUE, "invalid index key at byte %zu: %s", at, what);
}

static int bad_key(decoder_t *d, const char *what) { return bad_key_at(d, d->pos, what); }

static int key_nomem(decoder_t *d) { return cvx_err_set(d->err, CVX_E_NOMEM, "out of memory decoding index key"); }

static int get_u64be(decoder_t *d, uint64_t *v) {
    if (d->len - d->pos < 8) return bad_key(d, "truncated number");
    *v = 0;
    for (int i = 0; i < 8; i++) *v = *v << 8 | d->k[d->pos++];
    return CVX_OK;
}

/* Reads escaped contents up to the terminator into the arena
 * (NUL-terminated). Two passes: measure, then copy. */
static int get_escaped(decoder_t *d, const char **out, size_t *outlen) {
    size_t n = 0, i = d->pos;
    for (;;) {
        if (i >= d->len) return bad_key(d, "unterminated string");
        if (d->k[i] != 0) {
            i++, n++;
        } else if (i + 1 < d->len && d->k[i + 1] == ESCAPE) {
            i += 2, n++;
        } else {
            break;
        }
    }
    char *s = cvx_arena_alloc(d->a, n + 1);
    if (!s) return key_nomem(d);
    for (size_t o = 0; o < n; o++) {
        s[o] = (char)d->k[d->pos];
        d->pos += d->k[d->pos] == 0 ? 2 : 1;
    }
    s[n] = '\0';
    d->pos++; /* terminator */
    *out = s;
    *outlen = n;
    return CVX_OK;
}

static int decode_value(decoder_t *d, size_t depth, cvx_value_t **out);

static int decode_array(decoder_t *d, size_t depth, cvx_value_t **out) {
    cvx_value_t *arr = cvx_array(d->a, 0);
    if (!arr) return key_nomem(d);
    for (;;) {
        if (d->pos >= d->len) return bad_key(d, "unterminated array");
        if (d->k[d->pos] == TAG_END) break;
        cvx_value_t *item;
        int rc = decode_value(d, depth + 1, &item);
        if (rc) return rc;
        if (cvx_arr_push(d->a, arr, item)) return key_nomem(d);
    }
    d->pos++;
    *out = arr;
    return CVX_OK;
}

/* Fields must arrive in strictly ascending order, as the encoder writes
 * them: anything else is not a key this code produced. */
static int decode_object(decoder_t *d, size_t depth, cvx_value_t **out) {
    cvx_value_t *obj = cvx_object(d->a, 0);
    if (!obj) return key_nomem(d);
    for (;;) {
        if (d->pos >= d->len) return bad_key(d, "unterminated object");
        uint8_t t = d->k[d->pos++];
        if (t == TAG_END) break;
        if (t != TAG_FIELD) return bad_key_at(d, d->pos - 1, "expected a field or the end of the object");
        const char *name;
        size_t name_len;
        cvx_value_t *v;
        int rc = get_escaped(d, &name, &name_len);
        if (rc || (rc = decode_value(d, depth + 1, &v))) return rc;
        size_t n = obj->u.obj.len;
        if (n && cvx__name_cmp(obj->u.obj.fields[n - 1].name, obj->u.obj.fields[n - 1].name_len, name, name_len) >= 0)
            return bad_key(d, "object fields out of order");
        if (cvx_obj_set(d->a, obj, name, name_len, v)) return key_nomem(d);
    }
    *out = obj;
    return CVX_OK;
}

static int decode_scalar(decoder_t *d, uint8_t tag, cvx_value_t **out) {
    uint64_t u = 0;
    double f;
    int rc;
    switch (tag) {
    case TAG_NULL: *out = cvx_null(d->a); break;
    case TAG_FALSE:
    case TAG_TRUE: *out = cvx_bool(d->a, tag == TAG_TRUE); break;
    case TAG_INT64:
        if ((rc = get_u64be(d, &u))) return rc;
        *out = cvx_int64(d->a, (int64_t)(u ^ (UINT64_C(1) << 63)));
        break;
    case TAG_FLOAT64:
    case TAG_NAN:
        if ((rc = get_u64be(d, &u))) return rc;
        if (tag == TAG_FLOAT64) u = (u >> 63) ? u & ~(UINT64_C(1) << 63) : ~u;
        memcpy(&f, &u, sizeof f);
        if (isnan(f) != (tag == TAG_NAN)) return bad_key(d, "non-canonical float");
        *out = cvx_float64(d->a, f);
        break;
    default: return bad_key_at(d, d->pos - 1, "unknown type tag");
    }
    return *out ? CVX_OK : key_nomem(d);
}

static int decode_value(decoder_t *d, size_t depth, cvx_value_t **out) {
    if (d->pos >= d->len) return bad_key(d, "unexpected end of key");
    uint8_t tag = d->k[d->pos++];
    if (tag == TAG_UNDEFINED) {
        *out = NULL;
        return CVX_OK;
    }
    if (tag == TAG_STRING || tag == TAG_BYTES) {
        const char *s;
        size_t n;
        int rc = get_escaped(d, &s, &n);
        if (rc) return rc;
        cvx_value_t *v = cvx_arena_alloc(d->a, sizeof *v);
        if (!v) return key_nomem(d);
        memset(v, 0, sizeof *v);
        v->type = tag == TAG_STRING ? CVX_T_STRING : CVX_T_BYTES;
        v->u.str.ptr = s;
        v->u.str.len = n;
        *out = v;
        return CVX_OK;
    }
    if (tag == TAG_ARRAY || tag == TAG_OBJECT) {
        if (depth + 1 > CVX_MAX_DEPTH) return bad_key_at(d, d->pos - 1, "nesting deeper than 64");
        return tag == TAG_ARRAY ? decode_array(d, depth, out) : decode_object(d, depth, out);
    }
    return decode_scalar(d, tag, out);
}

int cvx_key_decode(cvx_arena_t *a, const uint8_t *key, size_t len, cvx_value_t **out, size_t *used, cvx_err_t *err) {
    decoder_t d = {a, key, len, 0, err};
    cvx_value_t *v = NULL;
    *out = NULL;
    int rc = decode_value(&d, 0, &v);
    if (rc) return rc;
    *out = v;
    if (used) *used = d.pos;
    return CVX_OK;
}
