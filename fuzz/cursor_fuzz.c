/*
 * cursor_fuzz.c — libFuzzer target for pagination cursors (src/store/cursor.c).
 *
 * The input is read two ways. As a cursor string a client sent: reading it
 * for a fixed index either fails with CVX_E_INVALID_ARGUMENT and a message,
 * or gives a flag we write and a key, which written again for that index
 * read back identically. As the parts of a cursor (the first 8 bytes an
 * index id, the next bit the flag, the rest the key): writing them gives a
 * JSON string whose content reads back to the same parts.
 */
#include <string.h>

#include "fuzz.h"
#include "store/store_int.h"

static void roundtrip(uint64_t index_id, int flag, const uint8_t *key, size_t len) {
    cvx_buf_t json = {0}, bare = {0}, back = {0};
    cvx_err_t err;
    CHECK(cvx__cursor_write(&json, &bare, index_id, flag, key, len) == CVX_OK);
    CHECK(json.len == bare.len + 2 && json.data[0] == '"' && json.data[json.len - 1] == '"');
    CHECK(memcmp(json.data + 1, bare.data, bare.len) == 0);
    int got = -1;
    CHECK(cvx__cursor_read(bare.data, index_id, &got, &back, &err) == CVX_OK);
    CHECK(got == flag && back.len == len && (len == 0 || memcmp(back.data, key, len) == 0));
    /* Another index's query refuses it. */
    cvx_buf_reset(&back);
    CHECK(cvx__cursor_read(bare.data, index_id ^ 1, &got, &back, &err) == CVX_E_INVALID_ARGUMENT);
    cvx_buf_free(&json);
    cvx_buf_free(&bare);
    cvx_buf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* As a cursor a client sent (a C string: up to the first NUL). */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const uint64_t index_id = 0x0102030405060708ull;
    cvx_buf_t key = {0};
    cvx_err_t err;
    int flag = -1;
    int rc = cvx__cursor_read(text, index_id, &flag, &key, &err);
    if (rc == CVX_OK) {
        CHECK(flag == CVX__CURSOR_AFTER || flag == CVX__CURSOR_END);
        CHECK(flag == CVX__CURSOR_AFTER || key.len == 0);
        roundtrip(index_id, flag, (const uint8_t *)key.data, key.len);
    } else {
        CHECK(rc == CVX_E_INVALID_ARGUMENT && err.msg[0]);
    }
    cvx_buf_free(&key);
    free(text);
    /* As the parts of a cursor. */
    if (size >= 9) {
        uint64_t id = 0;
        for (int i = 0; i < 8; i++) id = id << 8 | data[i];
        int f = data[8] & 1;
        roundtrip(id, f, f == CVX__CURSOR_END ? NULL : data + 9, f == CVX__CURSOR_END ? 0 : size - 9);
    }
    return 0;
}
