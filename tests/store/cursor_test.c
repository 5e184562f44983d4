/* Pagination cursors (src/store/cursor.c): what a query writes reads back;
 * what a client could forge is refused with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "store/store_int.h"

/* The bare cursor for these parts (no quotes), in out. */
static void write_bare(cvx_buf_t *out, uint64_t index_id, int flag, const char *key) {
    cvx_buf_t json = {0};
    cvx_buf_reset(out);
    assert_int_equal(cvx__cursor_write(&json, out, index_id, flag, (const uint8_t *)key, strlen(key)), CVX_OK);
    assert_int_equal(json.len, out->len + 2);
    cvx_buf_free(&json);
}

static void test_roundtrip(void **state) {
    (void)state;
    cvx_buf_t c = {0}, key = {0};
    cvx_err_t err;
    int flag = -1;
    write_bare(&c, 77, CVX__CURSOR_AFTER, "some\x01key");
    assert_int_equal(cvx__cursor_read(c.data, 77, &flag, &key, &err), CVX_OK);
    assert_int_equal(flag, CVX__CURSOR_AFTER);
    assert_int_equal(key.len, 8);
    assert_memory_equal(key.data, "some\x01key", 8);
    cvx_buf_reset(&key);
    write_bare(&c, 77, CVX__CURSOR_END, "");
    assert_int_equal(cvx__cursor_read(c.data, 77, &flag, &key, &err), CVX_OK);
    assert_int_equal(flag, CVX__CURSOR_END);
    assert_int_equal(key.len, 0);
    cvx_buf_free(&c);
    cvx_buf_free(&key);
}

static void test_forged(void **state) {
    (void)state;
    cvx_buf_t c = {0}, key = {0};
    cvx_err_t err;
    int flag;
    const char *bad[] = {"", "!!!", "AAAA", "CAcGBQQDAgE"}; /* not base64, or shorter than 9 bytes */
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(cvx__cursor_read(bad[i], 77, &flag, &key, &err), CVX_E_INVALID_ARGUMENT);
        assert_non_null(strstr(err.msg, "invalid pagination cursor"));
    }
    write_bare(&c, 77, 2, "k"); /* a flag we never write */
    assert_int_equal(cvx__cursor_read(c.data, 77, &flag, &key, &err), CVX_E_INVALID_ARGUMENT);
    write_bare(&c, 77, CVX__CURSOR_END, "k"); /* an end cursor with a key */
    assert_int_equal(cvx__cursor_read(c.data, 77, &flag, &key, &err), CVX_E_INVALID_ARGUMENT);
    write_bare(&c, 78, CVX__CURSOR_AFTER, "k"); /* another index's */
    assert_int_equal(cvx__cursor_read(c.data, 77, &flag, &key, &err), CVX_E_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "different query"));
    assert_int_equal(key.len, 0);
    cvx_buf_free(&c);
    cvx_buf_free(&key);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_forged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
