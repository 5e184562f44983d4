/*
 * json_write.c — values to convex-encoded JSON, and the size of that JSON
 * without building it.
 *
 * The writer and cvx_value_json_size must agree byte for byte (the size is
 * how document limits are enforced), so both are driven by the same
 * per-type helpers: a float is formatted the same way for both, and a
 * string's escaped length is computed by the same rule the escaper uses.
 *
 * Doubles: the shortest of %.15g, %.16g and %.17g that reads back as the
 * same double (17 significant digits always do), and integral values up to
 * 2^53 as plain integers ("1", not "1e+00"), as JavaScript prints them.
 * Integers and short decimals (every _creationTime) are written without
 * printf, to the same bytes (cvx__format_double_printf is the reference
 * the tests hold them to).
 * The C library's printf/strtod follow LC_NUMERIC; cvx never changes it
 * from "C", which is what makes '.' the decimal point here.
 */
#include "value/value_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cvx__float_needs_wrapper(double v) { return !isfinite(v) || (v == 0 && signbit(v)); }

/* The decimal digits of u (at least one), at out; returns their count. */
static size_t put_u64(uint64_t u, char *out) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

static const double pow10_exact[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

/* The common case without printf: a double that some m / 10^k (m an
 * integer of at most 16 digits) reads back as, written with the smallest
 * such k. That is exactly what %.15g (or, at 16 digits, %.16g) prints when
 * |v| is in [1e-4, 1e15): fixed notation, trailing zeros dropped, and
 * rounding v to 15 digits lands on m / 10^k because v lies within half an
 * ulp of it, far less than half a unit in the 15th digit. At 16 digits
 * that holds only when an ulp is under half a unit in the last place,
 * which is checked (then %.15g cannot read back as v either). Returns 0
 * when it does not apply (the printf path decides). */
static size_t format_short_decimal(double v, char out[CVX__DOUBLE_MAX]) {
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e15)) return 0;
    for (size_t k = 1; k < CVX_ARRAY_LEN(pow10_exact); k++) {
        double scaled = a * pow10_exact[k];
        if (scaled >= 9007199254740990.0) return 0; /* m must stay exact */
        /* The product may be off by up to one from m near 2^53. */
        double m = nearbyint(scaled);
        if (m / pow10_exact[k] != a) {
            if ((m - 1) / pow10_exact[k] == a) m -= 1;
            else if ((m + 1) / pow10_exact[k] == a) m += 1;
            else continue;
        }
        char digits[20];
        size_t nd = put_u64((uint64_t)m, digits);
        if (nd > 16 || (nd == 16 && (nextafter(a, INFINITY) - a) * pow10_exact[k] >= 0.5)) return 0;
        size_t o = 0;
        if (v < 0) out[o++] = '-';
        if (nd <= k) {
            out[o++] = '0';
            out[o++] = '.';
            for (size_t z = nd; z < k; z++) out[o++] = '0';
            memcpy(out + o, digits, nd);
            o += nd;
        } else {
            memcpy(out + o, digits, nd - k);
            o += nd - k;
            out[o++] = '.';
            memcpy(out + o, digits + nd - k, k);
            o += k;
        }
        out[o] = '\0';
        return o;
    }
    return 0;
}

size_t cvx__format_double(double v, char out[CVX__DOUBLE_MAX]) {
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        if (v == 0 && signbit(v)) return (size_t)snprintf(out, CVX__DOUBLE_MAX, "%.0f", v);
        size_t o = 0;
        if (v < 0) out[o++] = '-';
        o += put_u64((uint64_t)fabs(v), out + o);
        out[o] = '\0';
        return o;
    }
    size_t n = format_short_decimal(v, out);
    if (n) return n;
    return cvx__format_double_printf(v, out);
}

size_t cvx__format_double_printf(double v, char out[CVX__DOUBLE_MAX]) {
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) return (size_t)snprintf(out, CVX__DOUBLE_MAX, "%.0f", v);
    static const char *const formats[] = {"%.15g", "%.16g", "%.17g"};
    int n = 0;
    for (size_t i = 0; i < CVX_ARRAY_LEN(formats); i++) {
        n = snprintf(out, CVX__DOUBLE_MAX, formats[i], v);
        if (strtod(out, NULL) == v) break;
    }
    return (size_t)n;
}

/* Length of the JSON string literal for s, quotes included; mirrors
 * cvx_buf_append_json_string in util/buf.c. */
static size_t json_string_size(const char *s, size_t n) {
    size_t size = n + 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f')
            size += 1;
        else if (c < 0x20)
            size += 5;
    }
    return size;
}

/* {"$integer":"..."} and friends: the wrapper around a base64 payload. */
static size_t wrapper_size(const char *tag, size_t payload) {
    return strlen(tag) + 7 + cvx_base64_encoded_len(payload); /* {"tag":"b64"} */
}

size_t cvx_value_json_size(const cvx_value_t *v) {
    if (!v) return 4; /* written as null */
    switch (v->type) {
    case CVX_T_NULL: return 4;
    case CVX_T_BOOL: return v->u.b ? 4 : 5;
    case CVX_T_INT64: return wrapper_size("$integer", 8);
    case CVX_T_FLOAT64: {
        if (cvx__float_needs_wrapper(v->u.f)) return wrapper_size("$float", 8);
        char tmp[CVX__DOUBLE_MAX];
        return cvx__format_double(v->u.f, tmp);
    }
    case CVX_T_STRING: return json_string_size(v->u.str.ptr, v->u.str.len);
    case CVX_T_BYTES: return wrapper_size("$bytes", v->u.str.len);
    case CVX_T_ARRAY: {
        size_t size = 2 + (v->u.arr.len ? v->u.arr.len - 1 : 0);
        for (size_t i = 0; i < v->u.arr.len; i++) size += cvx_value_json_size(v->u.arr.items[i]);
        return size;
    }
    case CVX_T_OBJECT: {
        size_t size = 2 + (v->u.obj.len ? v->u.obj.len - 1 : 0);
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const cvx_field_t *f = &v->u.obj.fields[i];
            size += json_string_size(f->name, f->name_len) + 1 + cvx_value_json_size(f->value);
        }
        return size;
    }
    }
    return 4;
}

static void write_wrapper(cvx_buf_t *out, const char *tag, const void *payload, size_t n) {
    cvx_buf_append_str(out, "{\"");
    cvx_buf_append_str(out, tag);
    cvx_buf_append_str(out, "\":\"");
    cvx_base64_encode(out, payload, n);
    cvx_buf_append_str(out, "\"}");
}

static void write_le64(cvx_buf_t *out, const char *tag, uint64_t bits) {
    uint8_t b[8];
    cvx__store_le64(b, bits);
    write_wrapper(out, tag, b, sizeof b);
}

static void write_float(cvx_buf_t *out, double f) {
    if (cvx__float_needs_wrapper(f)) {
        uint64_t bits;
        memcpy(&bits, &f, sizeof bits);
        write_le64(out, "$float", bits);
        return;
    }
    char tmp[CVX__DOUBLE_MAX];
    size_t n = cvx__format_double(f, tmp);
    cvx_buf_append(out, tmp, n);
}

/* Appends without checking each step: cvx_buf_t turns every append after a
 * failure into a no-op and remembers it, so the caller checks once. */
static void write_value(cvx_buf_t *out, const cvx_value_t *v) {
    if (!v) {
        cvx_buf_append(out, "null", 4);
        return;
    }
    switch (v->type) {
    case CVX_T_NULL: cvx_buf_append(out, "null", 4); break;
    case CVX_T_BOOL: cvx_buf_append_str(out, v->u.b ? "true" : "false"); break;
    case CVX_T_INT64: write_le64(out, "$integer", (uint64_t)v->u.i); break;
    case CVX_T_FLOAT64: write_float(out, v->u.f); break;
    case CVX_T_STRING: cvx_buf_append_json_string(out, v->u.str.ptr, v->u.str.len); break;
    case CVX_T_BYTES: write_wrapper(out, "$bytes", v->u.str.ptr, v->u.str.len); break;
    case CVX_T_ARRAY:
        cvx_buf_append_char(out, '[');
        for (size_t i = 0; i < v->u.arr.len; i++) {
            if (i) cvx_buf_append_char(out, ',');
            write_value(out, v->u.arr.items[i]);
        }
        cvx_buf_append_char(out, ']');
        break;
    case CVX_T_OBJECT:
        cvx_buf_append_char(out, '{');
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const cvx_field_t *f = &v->u.obj.fields[i];
            if (i) cvx_buf_append_char(out, ',');
            cvx_buf_append_json_string(out, f->name, f->name_len);
            cvx_buf_append_char(out, ':');
            write_value(out, f->value);
        }
        cvx_buf_append_char(out, '}');
        break;
    default: cvx_buf_append(out, "null", 4); break;
    }
}

int cvx_json_write(cvx_buf_t *out, const cvx_value_t *v) {
    write_value(out, v);
    return out->oom ? CVX_E_NOMEM : CVX_OK;
}
