/* Pagination cursors: what a paginated query hands the client to continue
 * from, base64(u64 index id LE ‖ flag ‖ key). The client sends them back
 * unchanged, or not: everything read here is untrusted (fuzzed by
 * fuzz/cursor_fuzz.c). */
#include "store/store_int.h"

#include <string.h>

int cvx__cursor_write(cvx_buf_t *out, cvx_buf_t *copy, uint64_t index_id, int flag, const uint8_t *key, size_t len) {
    cvx_buf_t raw = {0};
    uint8_t head[9];
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)(index_id >> (8 * i));
    head[8] = (uint8_t)flag;
    cvx_buf_append(&raw, head, 9);
    cvx_buf_append(&raw, key, len);
    int rc = raw.oom ? CVX_E_NOMEM : CVX_OK;
    if (!rc) {
        size_t start = out->len + 1;
        cvx_buf_append_char(out, '"');
        cvx_base64_encode(out, raw.data, raw.len);
        if (copy) cvx_buf_append(copy, out->data + start, out->len - start);
        cvx_buf_append_char(out, '"');
    }
    cvx_buf_free(&raw);
    return rc;
}

int cvx__cursor_read(const char *cursor, uint64_t index_id, int *flag, cvx_buf_t *key, cvx_err_t *err) {
    cvx_buf_t raw = {0};
    cvx_err_t e2;
    int rc = cvx_base64_decode(&raw, cursor, strlen(cursor), &e2);
    if (rc == CVX_E_NOMEM || raw.oom) {
        cvx_buf_free(&raw);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    /* The flag is one of ours, and an end cursor carries no key. */
    uint8_t f = raw.len >= 9 ? (uint8_t)raw.data[8] : 0xFF;
    if (rc || raw.len < 9 || f > CVX__CURSOR_END || (f == CVX__CURSOR_END && raw.len > 9)) {
        cvx_buf_free(&raw);
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "invalid pagination cursor");
    }
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--) id = id << 8 | (uint8_t)raw.data[i];
    if (id != index_id) {
        cvx_buf_free(&raw);
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT,
                           "pagination cursor belongs to a different query (another index or table)");
    }
    *flag = f;
    rc = cvx_buf_append(key, raw.data + 9, raw.len - 9);
    cvx_buf_free(&raw);
    return rc ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : CVX_OK;
}
