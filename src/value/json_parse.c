/*
 * json_parse.c — convex-encoded JSON straight into arena values.
 *
 * A hand-written recursive-descent parser over (pointer, length): strict RFC
 * 8259 (no trailing commas, no leading zeros, no bad escapes or lone
 * surrogates, UTF-8 validated), plus the {"$integer"|"$float"|"$bytes": b64}
 * wrappers, with the generic value limits checked while parsing so a bad
 * input is rejected before it is fully built.
 *
 * Allocation: values, strings and the final item/field arrays go into the
 * caller's arena at their exact size. While a container is open its
 * children are collected on one scratch stack shared by all levels (a
 * nested container pushes above its parent's pending entries and pops back
 * when done), so the parser mallocs only a handful of times per call no
 * matter how many containers there are. An object's fields are sorted once
 * when it closes, and duplicates are found as equal neighbours after the
 * sort: O(n log n), never O(n^2).
 *
 * Recursion is bounded: a container that would be nested deeper than
 * CVX_MAX_DEPTH is rejected before its contents are read.
 */
#include "value/value_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cvx_arena_t *a;
    const char *s;
    size_t len;
    size_t pos;
    cvx_err_t *err;
    cvx_value_t **items; /* scratch stack of pending array items */
    size_t items_len, items_cap;
    cvx_field_t *fields; /* scratch stack of pending object fields */
    size_t fields_len, fields_cap;
    cvx_buf_t tmp; /* number text for strtod, decoded base64 */
} parser_t;

static int parse_value(parser_t *p, size_t depth, const cvx__path_t *path, cvx_value_t **out);

/* ---- errors -------------------------------------------------------------- */

static int syntax_err(parser_t *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int syntax_err(parser_t *p, size_t at, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cvx_err_set(p->err, CVX_E_INVALID_VALUE, "invalid JSON at byte %zu: %s", at, msg);
}

static int nomem(parser_t *p) { return cvx_err_set(p->err, CVX_E_NOMEM, "out of memory parsing JSON"); }

/* "unexpected end of input", or names the byte found instead. */
static int unexpected(parser_t *p, const char *expected) {
    if (p->pos >= p->len) return syntax_err(p, p->pos, "unexpected end of input%s%s", *expected ? ", " : "", expected);
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c > 32 && c < 127)
        return syntax_err(p, p->pos, "unexpected character '%c'%s%s", c, *expected ? ", " : "", expected);
    return syntax_err(p, p->pos, "unexpected byte 0x%02x%s%s", c, *expected ? ", " : "", expected);
}

/* ---- lexing helpers ------------------------------------------------------ */

static void skip_ws(parser_t *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
        p->pos++;
    }
}

static bool peek_is(parser_t *p, char c) { return p->pos < p->len && p->s[p->pos] == c; }

static int hex4(const char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_seq(const char *s, size_t n) {
    unsigned char c = (unsigned char)s[0];
    size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (k > n) k = n;
    return cvx_utf8_valid(s, k) ? k : 0;
}

/* ---- strings ------------------------------------------------------------- */

/* Decodes the \u escape at p->s[i] (pointing at the backslash) into o;
 * advances *i past it (and past a trailing low surrogate). */
static int unicode_escape(parser_t *p, size_t *i, char *o, size_t *olen) {
    size_t at = *i;
    uint32_t cp, lo;
    if (p->len - at < 6 || hex4(p->s + at + 2, &cp)) return syntax_err(p, at, "bad \\u escape");
    *i = at + 6;
    if (cp >= 0xdc00 && cp <= 0xdfff) return syntax_err(p, at, "lone surrogate \\u%04x", (unsigned)cp);
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (p->len - *i < 6 || p->s[*i] != '\\' || p->s[*i + 1] != 'u' || hex4(p->s + *i + 2, &lo) || lo < 0xdc00 ||
            lo > 0xdfff)
            return syntax_err(p, at, "lone surrogate \\u%04x", (unsigned)cp);
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        *i += 6;
    }
    *olen += put_utf8(o + *olen, cp);
    return CVX_OK;
}

static int simple_escape(char c, char *out) {
    switch (c) {
    case '"': *out = '"'; return 0;
    case '\\': *out = '\\'; return 0;
    case '/': *out = '/'; return 0;
    case 'b': *out = '\b'; return 0;
    case 'f': *out = '\f'; return 0;
    case 'n': *out = '\n'; return 0;
    case 'r': *out = '\r'; return 0;
    case 't': *out = '\t'; return 0;
    default: return -1;
    }
}

/* The slow path: the string at p->pos+1 has escapes or non-ASCII bytes.
 * Escapes only shrink text, so the raw length bounds the output. */
static int parse_string_slow(parser_t *p, const char **out, size_t *outlen) {
    size_t start = p->pos + 1, end = start;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return syntax_err(p, p->pos, "unterminated string");
    char *o = cvx_arena_alloc(p->a, end - start + 1);
    if (!o) return nomem(p);
    size_t n = 0, i = start;
    while (i < end) {
        unsigned char c = (unsigned char)p->s[i];
        if (c == '\\') {
            char e = p->s[i + 1];
            if (e == 'u') {
                if (unicode_escape(p, &i, o, &n)) return CVX_E_INVALID_VALUE;
                continue;
            }
            if (simple_escape(e, o + n)) {
                if ((unsigned char)e > 32 && (unsigned char)e < 127) return syntax_err(p, i, "bad escape '\\%c'", e);
                return syntax_err(p, i, "bad escape");
            }
            n++;
            i += 2;
        } else if (c < 0x20) {
            return syntax_err(p, i, "control character 0x%02x in string", c);
        } else if (c < 0x80) {
            o[n++] = (char)c;
            i++;
        } else {
            size_t k = utf8_seq(p->s + i, end - i);
            if (!k) return syntax_err(p, i, "invalid UTF-8 in string");
            memcpy(o + n, p->s + i, k);
            n += k;
            i += k;
        }
    }
    o[n] = '\0';
    p->pos = end + 1;
    *out = o;
    *outlen = n;
    return CVX_OK;
}

/* Parses the string at p->pos (a '"'). With `borrow`, plain ASCII text is
 * returned as a pointer into the input instead of a copy (used for base64
 * payloads, which are decoded and then dropped). */
static int parse_string(parser_t *p, bool borrow, const char **out, size_t *outlen) {
    size_t start = p->pos + 1, i = start;
    while (i < p->len) {
        unsigned char c = (unsigned char)p->s[i];
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        i++;
    }
    if (i >= p->len) return syntax_err(p, p->pos, "unterminated string");
    if (p->s[i] != '"') return parse_string_slow(p, out, outlen);
    *outlen = i - start;
    p->pos = i + 1;
    if (borrow) {
        *out = p->s + start;
        return CVX_OK;
    }
    *out = cvx_arena_strndup(p->a, p->s + start, i - start);
    return *out ? CVX_OK : nomem(p);
}

/* ---- numbers ------------------------------------------------------------- */

static bool is_digit(parser_t *p) { return p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9'; }

static size_t skip_digits(parser_t *p) {
    size_t n = 0;
    while (is_digit(p)) p->pos++, n++;
    return n;
}

/* Checks the RFC 8259 number grammar; *simple is set when the number has
 * at most 16 digits and no exponent (*frac of them after the point): then,
 * if they fit 53 bits, it converts exactly without strtod. */
static int scan_number(parser_t *p, bool *simple, size_t *frac) {
    if (peek_is(p, '-')) p->pos++;
    if (!is_digit(p)) return unexpected(p, "expected a digit");
    size_t digits;
    if (p->s[p->pos] == '0') {
        p->pos++;
        digits = 1;
        if (is_digit(p)) return syntax_err(p, p->pos - 1, "leading zeros are not allowed");
    } else {
        digits = skip_digits(p);
    }
    *simple = digits <= 16;
    *frac = 0;
    if (peek_is(p, '.')) {
        p->pos++;
        *frac = skip_digits(p);
        if (!*frac) return unexpected(p, "expected a digit after '.'");
        /* Still exact: digits that fit a double's 53 bits and a power of
         * ten that is itself exact make one correctly rounded division. */
        *simple = *simple && digits + *frac <= 16;
    }
    if (peek_is(p, 'e') || peek_is(p, 'E')) {
        p->pos++;
        *simple = false;
        if (peek_is(p, '+') || peek_is(p, '-')) p->pos++;
        if (!skip_digits(p)) return unexpected(p, "expected a digit in the exponent");
    }
    return CVX_OK;
}

static int parse_number(parser_t *p, cvx_value_t **out) {
    size_t start = p->pos;
    bool simple = false;
    size_t frac = 0;
    if (scan_number(p, &simple, &frac)) return CVX_E_INVALID_VALUE;
    const char *s = p->s + start;
    size_t n = p->pos - start;
    double d;
    uint64_t u = 0;
    bool neg = s[0] == '-';
    if (simple) {
        for (size_t i = neg; i < n; i++)
            if (s[i] != '.') u = u * 10 + (uint64_t)(s[i] - '0');
        simple = u <= (1ull << 53);
    }
    if (simple) {
        static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16};
        d = frac ? (double)u / pow10[frac] : (double)u;
        if (neg) d = -d;
    } else {
        /* strtod needs a NUL-terminated copy: the input is not. */
        cvx_buf_reset(&p->tmp);
        if (cvx_buf_append(&p->tmp, s, n)) return nomem(p);
        errno = 0;
        d = strtod(p->tmp.data, NULL);
        if (errno == ERANGE && isinf(d)) return syntax_err(p, start, "number out of range");
    }
    *out = cvx_float64(p->a, d);
    return *out ? CVX_OK : nomem(p);
}

/* ---- containers ---------------------------------------------------------- */

static int push_item(parser_t *p, cvx_value_t *v) {
    if (p->items_len == p->items_cap) {
        size_t cap = p->items_cap ? p->items_cap * 2 : 64;
        cvx_value_t **items = cvx_realloc(p->items, cap * sizeof *items);
        if (!items) return nomem(p);
        p->items = items;
        p->items_cap = cap;
    }
    p->items[p->items_len++] = v;
    return CVX_OK;
}

static int push_field(parser_t *p, const char *name, size_t name_len, cvx_value_t *v) {
    if (p->fields_len == p->fields_cap) {
        size_t cap = p->fields_cap ? p->fields_cap * 2 : 32;
        cvx_field_t *fields = cvx_realloc(p->fields, cap * sizeof *fields);
        if (!fields) return nomem(p);
        p->fields = fields;
        p->fields_cap = cap;
    }
    cvx_field_t *f = &p->fields[p->fields_len++];
    f->name = name;
    f->name_len = name_len;
    f->value = v;
    return CVX_OK;
}

static int nesting_err(parser_t *p, const cvx__path_t *path) {
    return cvx__path_err(p->err, CVX_E_INVALID_VALUE, path, "nesting deeper than %d", CVX_MAX_DEPTH);
}

static int parse_array(parser_t *p, size_t depth, const cvx__path_t *path, cvx_value_t **out) {
    if (depth + 1 > CVX_MAX_DEPTH) return nesting_err(p, path);
    p->pos++; /* '[' */
    size_t base = p->items_len;
    skip_ws(p);
    if (peek_is(p, ']')) {
        p->pos++;
    } else {
        for (;;) {
            size_t n = p->items_len - base;
            if (n == CVX_MAX_ARRAY_LEN)
                return cvx__path_err(p->err, CVX_E_INVALID_VALUE, path, "array has more than %d items",
                                     CVX_MAX_ARRAY_LEN);
            cvx__path_t seg = {path, NULL, 0, n};
            cvx_value_t *item;
            int rc = parse_value(p, depth + 1, &seg, &item);
            if (rc || (rc = push_item(p, item))) return rc;
            skip_ws(p);
            if (peek_is(p, ']')) {
                p->pos++;
                break;
            }
            if (!peek_is(p, ',')) return unexpected(p, "expected ',' or ']'");
            p->pos++;
            skip_ws(p);
            if (peek_is(p, ']')) return syntax_err(p, p->pos - 1, "trailing comma");
        }
    }
    size_t n = p->items_len - base;
    cvx_value_t *arr = cvx_array(p->a, n);
    if (!arr) return nomem(p);
    if (n) memcpy(arr->u.arr.items, p->items + base, n * sizeof *p->items);
    arr->u.arr.len = n;
    p->items_len = base;
    *out = arr;
    return CVX_OK;
}

static int field_cmp(const void *x, const void *y) {
    const cvx_field_t *a = x, *b = y;
    return cvx__name_cmp(a->name, a->name_len, b->name, b->name_len);
}

/* Builds the object from the fields pending above `base`: one sort, then
 * duplicates are neighbours. */
static int finish_object(parser_t *p, size_t base, const cvx__path_t *path, cvx_value_t **out) {
    size_t n = p->fields_len - base;
    cvx_value_t *obj = cvx_object(p->a, n);
    if (!obj) return nomem(p);
    cvx_field_t *f = obj->u.obj.fields;
    if (n) memcpy(f, p->fields + base, n * sizeof *f);
    if (n > 1) qsort(f, n, sizeof *f, field_cmp);
    for (size_t i = 1; i < n; i++) {
        if (field_cmp(&f[i - 1], &f[i]) == 0) {
            char snip[96];
            cvx__snippet(snip, sizeof snip, f[i].name, f[i].name_len, 40);
            return cvx__path_err(p->err, CVX_E_INVALID_VALUE, path, "duplicate field name \"%s\"", snip);
        }
    }
    obj->u.obj.len = n;
    p->fields_len = base;
    *out = obj;
    return CVX_OK;
}

static int parse_key(parser_t *p, const char **name, size_t *len) {
    if (!peek_is(p, '"')) return unexpected(p, "expected a field name");
    int rc = parse_string(p, false, name, len);
    if (rc) return rc;
    skip_ws(p);
    if (!peek_is(p, ':')) return unexpected(p, "expected ':'");
    p->pos++;
    skip_ws(p);
    return CVX_OK;
}

/* {"$integer": b64}, {"$float": b64} or {"$bytes": b64}; p->pos is just
 * after the ':'. These are scalars, so they do not count as nesting. */
static int parse_wrapper(parser_t *p, const char *tag, const cvx__path_t *path, cvx_value_t **out) {
    const char *b64;
    size_t n;
    if (!peek_is(p, '"'))
        return cvx__path_err(p->err, CVX_E_INVALID_VALUE, path, "%s must be a base64 string", tag);
    int rc = parse_string(p, true, &b64, &n);
    if (rc) return rc;
    skip_ws(p);
    if (peek_is(p, ','))
        return cvx__path_err(p->err, CVX_E_INVALID_VALUE, path, "an object with \"%s\" must have no other fields", tag);
    if (!peek_is(p, '}')) return unexpected(p, "expected '}'");
    p->pos++;
    cvx_buf_reset(&p->tmp);
    cvx_err_t berr;
    rc = cvx_base64_decode(&p->tmp, b64, n, &berr);
    if (rc == CVX_E_NOMEM || p->tmp.oom) return nomem(p);
    if (rc) return cvx__path_err(p->err, CVX_E_INVALID_VALUE, path, "%s: %s", tag, berr.msg);
    const uint8_t *raw = (const uint8_t *)p->tmp.data;
    if (strcmp(tag, "$bytes") == 0) {
        *out = cvx_bytes(p->a, raw, p->tmp.len);
    } else {
        if (p->tmp.len != 8)
            return cvx__path_err(p->err, CVX_E_INVALID_VALUE, path, "%s must encode exactly 8 bytes, not %zu", tag,
                                 p->tmp.len);
        uint64_t bits = cvx__load_le64(raw);
        if (tag[1] == 'i') {
            *out = cvx_int64(p->a, (int64_t)bits);
        } else {
            double d;
            memcpy(&d, &bits, sizeof d);
            *out = cvx_float64(p->a, d);
        }
    }
    return *out ? CVX_OK : nomem(p);
}

static const char *wrapper_tag(const char *name, size_t n) {
    static const char *const tags[] = {"$integer", "$float", "$bytes"};
    for (size_t i = 0; i < CVX_ARRAY_LEN(tags); i++)
        if (strlen(tags[i]) == n && memcmp(tags[i], name, n) == 0) return tags[i];
    return NULL;
}

static int bad_name(parser_t *p, const cvx__path_t *path, const char *name, size_t n) {
    char msg[256];
    if (!cvx__field_name_problem(name, n, msg, sizeof msg)) return CVX_OK;
    return cvx__path_err(p->err, CVX_E_INVALID_VALUE, path, "%s", msg);
}

static int parse_object(parser_t *p, size_t depth, const cvx__path_t *path, cvx_value_t **out) {
    p->pos++; /* '{' */
    skip_ws(p);
    size_t base = p->fields_len;
    if (peek_is(p, '}')) {
        p->pos++;
        if (depth + 1 > CVX_MAX_DEPTH) return nesting_err(p, path);
        return finish_object(p, base, path, out);
    }
    const char *name;
    size_t name_len;
    int rc = parse_key(p, &name, &name_len);
    if (rc) return rc;
    const char *tag = name_len && name[0] == '$' ? wrapper_tag(name, name_len) : NULL;
    if (tag) return parse_wrapper(p, tag, path, out);
    if (depth + 1 > CVX_MAX_DEPTH) return nesting_err(p, path);
    for (;;) {
        if ((rc = bad_name(p, path, name, name_len))) return rc;
        if (p->fields_len - base == CVX_MAX_FIELDS)
            return cvx__path_err(p->err, CVX_E_INVALID_VALUE, path, "object has more than %d fields", CVX_MAX_FIELDS);
        cvx__path_t seg = {path, name, name_len, 0};
        cvx_value_t *v;
        if ((rc = parse_value(p, depth + 1, &seg, &v)) || (rc = push_field(p, name, name_len, v))) return rc;
        skip_ws(p);
        if (peek_is(p, '}')) {
            p->pos++;
            break;
        }
        if (!peek_is(p, ',')) return unexpected(p, "expected ',' or '}'");
        p->pos++;
        skip_ws(p);
        if (peek_is(p, '}')) return syntax_err(p, p->pos - 1, "trailing comma");
        if ((rc = parse_key(p, &name, &name_len))) return rc;
    }
    return finish_object(p, base, path, out);
}

/* ---- values -------------------------------------------------------------- */

/* true, false or null. */
static int parse_literal(parser_t *p, cvx_value_t **out) {
    static const char *const words[] = {"true", "false", "null"};
    for (size_t i = 0; i < CVX_ARRAY_LEN(words); i++) {
        size_t n = strlen(words[i]);
        if (p->len - p->pos < n || memcmp(p->s + p->pos, words[i], n) != 0) continue;
        p->pos += n;
        *out = i == 2 ? cvx_null(p->a) : cvx_bool(p->a, i == 0);
        return *out ? CVX_OK : nomem(p);
    }
    return syntax_err(p, p->pos, "invalid literal");
}

static int parse_value(parser_t *p, size_t depth, const cvx__path_t *path, cvx_value_t **out) {
    skip_ws(p);
    if (p->pos >= p->len) return unexpected(p, "");
    char c = p->s[p->pos];
    switch (c) {
    case '{': return parse_object(p, depth, path, out);
    case '[': return parse_array(p, depth, path, out);
    case '"': {
        const char *s;
        size_t n;
        int rc = parse_string(p, false, &s, &n);
        if (rc) return rc;
        cvx_value_t *v = cvx_arena_alloc(p->a, sizeof *v);
        if (!v) return nomem(p);
        memset(v, 0, sizeof *v);
        v->type = CVX_T_STRING;
        v->u.str.ptr = s;
        v->u.str.len = n;
        *out = v;
        return CVX_OK;
    }
    case 't':
    case 'f':
    case 'n': return parse_literal(p, out);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, out);
        return unexpected(p, "");
    }
}

int cvx_json_parse(cvx_arena_t *a, const char *json, size_t len, cvx_value_t **out, cvx_err_t *err) {
    *out = NULL;
    if (len > CVX_MAX_VALUE_SIZE)
        return cvx_err_set(err, CVX_E_INVALID_VALUE, "value is too large (%zu bytes > maximum %u)", len,
                           CVX_MAX_VALUE_SIZE);
    cvx_err_t local;
    parser_t p = {.a = a, .s = json, .len = len, .err = err ? err : &local};
    cvx_value_t *v = NULL;
    int rc = parse_value(&p, 0, NULL, &v);
    if (!rc) {
        skip_ws(&p);
        if (p.pos != p.len) rc = syntax_err(&p, p.pos, "unexpected data after the value");
    }
    cvx_free(p.items);
    cvx_free(p.fields);
    cvx_buf_free(&p.tmp);
    if (!rc) *out = v;
    return rc;
}
