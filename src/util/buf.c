/* Growable buffers and slices. A buffer remembers an allocation failure
 * (`oom`) so long chains of appends can be checked once at the end. */
#include "util/util.h"

#include <stdio.h>
#include <string.h>

cvx_slice_t cvx_slice_cstr(const char *s) { return cvx_slice(s, s ? strlen(s) : 0); }

bool cvx_slice_eq(cvx_slice_t a, cvx_slice_t b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool cvx_slice_eq_cstr(cvx_slice_t a, const char *s) { return cvx_slice_eq(a, cvx_slice_cstr(s)); }

int cvx_buf_reserve(cvx_buf_t *b, size_t extra) {
    if (b->oom) return CVX_E_NOMEM;
    size_t need = b->len + extra + 1;
    if (need < b->len) { /* overflow */
        b->oom = true;
        return CVX_E_NOMEM;
    }
    if (need <= b->cap) return CVX_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        size_t next = cap * 2;
        if (next < cap) {
            cap = need;
            break;
        }
        cap = next;
    }
    char *p = cvx_realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return CVX_E_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return CVX_OK;
}

int cvx_buf_append(cvx_buf_t *b, const void *p, size_t n) {
    if (cvx_buf_reserve(b, n)) return CVX_E_NOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CVX_OK;
}

int cvx_buf_append_str(cvx_buf_t *b, const char *s) { return cvx_buf_append(b, s, strlen(s)); }

int cvx_buf_append_char(cvx_buf_t *b, char c) { return cvx_buf_append(b, &c, 1); }

int cvx_buf_printf(cvx_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return CVX_E_INTERNAL;
    if ((size_t)n < sizeof small) return cvx_buf_append(b, small, (size_t)n);
    if (cvx_buf_reserve(b, (size_t)n)) return CVX_E_NOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CVX_OK;
}

int cvx_buf_append_json_string(cvx_buf_t *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (cvx_buf_reserve(b, n + 2)) return CVX_E_NOMEM;
    cvx_buf_append_char(b, '"');
    size_t run = 0; /* start of the current run of bytes needing no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        cvx_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': cvx_buf_append(b, "\\\"", 2); break;
        case '\\': cvx_buf_append(b, "\\\\", 2); break;
        case '\n': cvx_buf_append(b, "\\n", 2); break;
        case '\r': cvx_buf_append(b, "\\r", 2); break;
        case '\t': cvx_buf_append(b, "\\t", 2); break;
        case '\b': cvx_buf_append(b, "\\b", 2); break;
        case '\f': cvx_buf_append(b, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            cvx_buf_append(b, u, 6);
        }
        }
    }
    cvx_buf_append(b, s + run, n - run);
    cvx_buf_append_char(b, '"');
    return b->oom ? CVX_E_NOMEM : CVX_OK;
}

void cvx_buf_reset(cvx_buf_t *b) {
    b->len = 0;
    b->oom = false;
    if (b->data) b->data[0] = '\0';
}

void cvx_buf_free(cvx_buf_t *b) {
    cvx_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

char *cvx_buf_detach(cvx_buf_t *b, size_t *len) {
    char *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = false;
    return p;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points
 * past U+10FFFF. */
bool cvx_utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= k) return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += k + 1;
    }
    return true;
}
