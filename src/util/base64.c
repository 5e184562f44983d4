/* Standard base64 with '=' padding, as the Convex wire format uses for
 * $integer, $float and $bytes. Decoding is strict: a value has exactly one
 * accepted spelling. */
#include "util/util.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t cvx_base64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }

int cvx_base64_encode(cvx_buf_t *out, const void *data, size_t n) {
    const unsigned char *p = data;
    if (cvx_buf_reserve(out, cvx_base64_encoded_len(n))) return CVX_E_NOMEM;
    char *o = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
    return CVX_OK;
}

static int decode_char(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int cvx_base64_decode(cvx_buf_t *out, const char *s, size_t n, cvx_err_t *err) {
    if (n % 4 != 0)
        return cvx_err_set(err, CVX_E_INVALID_VALUE, "invalid base64: length %zu is not a multiple of 4", n);
    if (cvx_buf_reserve(out, n / 4 * 3)) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad) return cvx_err_set(err, CVX_E_INVALID_VALUE, "invalid base64: data after padding");
            v[k] = decode_char(c);
            if (v[k] < 0)
                return cvx_err_set(err, CVX_E_INVALID_VALUE, "invalid base64: unexpected character at offset %zu",
                                   i + (size_t)k);
        }
        if (pad == 1 && s[i + 2] == '=') return cvx_err_set(err, CVX_E_INVALID_VALUE, "invalid base64: bad padding");
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        unsigned char b[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8), (unsigned char)w};
        if ((pad == 2 && (w & 0xffff)) || (pad == 1 && (w & 0xff)))
            return cvx_err_set(err, CVX_E_INVALID_VALUE, "invalid base64: non-canonical trailing bits");
        cvx_buf_append(out, b, 3 - (size_t)pad);
    }
    return CVX_OK;
}
