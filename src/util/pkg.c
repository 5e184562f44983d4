/* App packages: several named blobs in one byte string, so a deploy (a
 * Rust module, a JavaScript bundle and its source map) travels as one body
 * and a deployed app (its built modules) is saved with one atomic rename.
 *
 *   "CVXPKG1\n", u32 count, then per entry: u16 name length, the name,
 *   u32 data length, the data (all little-endian)
 *
 * A pure parser over bytes, fuzzed by fuzz/pkg_parse_fuzz.c. */
#include "util/util.h"

#include <string.h>

#define MAGIC "CVXPKG1\n"

bool cvx_pkg_is(const void *p, size_t n) { return n >= 8 && memcmp(p, MAGIC, 8) == 0; }

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

int cvx_pkg_parse(const void *bytes, size_t n, cvx_pkg_entry_t **out, size_t *count, cvx_err_t *err) {
    *out = NULL;
    *count = 0;
    const uint8_t *p = bytes, *end = p + n;
    if (!cvx_pkg_is(bytes, n) || n < 12) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "not an app package (bad header)");
    uint32_t k = le32(p + 8);
    p += 12;
    /* Each entry takes at least 6 bytes: a count beyond that is a lie. */
    if (k > CVX_PKG_MAX_ENTRIES || (size_t)k * 6 > (size_t)(end - p))
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "app package: %u entries cannot fit in %zu bytes", k, n);
    cvx_pkg_entry_t *e = cvx_calloc(k ? k : 1, sizeof *e);
    if (!e) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    for (uint32_t i = 0; i < k; i++) {
        if (end - p < 2) goto truncated;
        size_t nl = (size_t)p[0] | (size_t)p[1] << 8;
        p += 2;
        if (nl == 0 || (size_t)(end - p) < nl + 4) goto truncated;
        e[i].name = (const char *)p;
        e[i].name_len = nl;
        p += nl;
        size_t dl = le32(p);
        p += 4;
        if ((size_t)(end - p) < dl) goto truncated;
        e[i].data = p;
        e[i].len = dl;
        p += dl;
        for (uint32_t j = 0; j < i; j++)
            if (e[j].name_len == nl && !memcmp(e[j].name, e[i].name, nl)) {
                /* The name points into `bytes`, not into e: read it from there. */
                const char *dup = e[i].name;
                cvx_free(e);
                return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "app package names \"%.*s\" twice", (int)CVX_MIN(nl, 64), dup);
            }
    }
    if (p != end) {
        cvx_free(e);
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "app package has %zu bytes after its last entry", (size_t)(end - p));
    }
    *out = e;
    *count = k;
    return CVX_OK;
truncated:
    cvx_free(e);
    return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "app package is truncated");
}

const cvx_pkg_entry_t *cvx_pkg_find(const cvx_pkg_entry_t *e, size_t n, const char *name) {
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (e[i].name_len == len && !memcmp(e[i].name, name, len)) return &e[i];
    return NULL;
}

void cvx_pkg_begin(cvx_buf_t *out, uint32_t count) {
    uint8_t h[4] = {(uint8_t)count, (uint8_t)(count >> 8), (uint8_t)(count >> 16), (uint8_t)(count >> 24)};
    cvx_buf_append(out, MAGIC, 8);
    cvx_buf_append(out, h, 4);
}

void cvx_pkg_add(cvx_buf_t *out, const char *name, const void *data, size_t len) {
    size_t nl = strlen(name);
    uint8_t h[2] = {(uint8_t)nl, (uint8_t)(nl >> 8)};
    uint8_t l[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
    cvx_buf_append(out, h, 2);
    cvx_buf_append(out, name, nl);
    cvx_buf_append(out, l, 4);
    cvx_buf_append(out, data, len);
}
