/*
 * json_parse_fuzz.c — libFuzzer target for the convex-encoded JSON parser.
 *
 * For every input the parser accepts, checks the invariants the rest of
 * cvx relies on, and abort()s (a crash libFuzzer reports) if one breaks:
 *  - a parsed value passes cvx_value_check(VALUE): the parser enforces the
 *    generic limits itself;
 *  - the writer's output is exactly cvx_value_json_size bytes, parses back
 *    to an equal value, and writing that again gives identical text;
 *  - the index key decodes back to an equal value using every byte;
 *  - a deep clone compares equal.
 * Inputs it rejects must come with CVX_E_INVALID_VALUE and a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "value/value.h"

static void check_round_trips(cvx_arena_t *a, const cvx_value_t *v) {
    cvx_err_t err;
    CHECK(cvx_value_check(v, CVX_CHECK_VALUE, &err) == CVX_OK);

    cvx_buf_t text = {0}, again = {0}, key = {0};
    CHECK(cvx_json_write(&text, v) == CVX_OK);
    CHECK(text.len == cvx_value_json_size(v));
    cvx_value_t *back;
    if (cvx_json_parse(a, text.data, text.len, &back, &err) != CVX_OK) {
        fprintf(stderr, "re-parse of %s failed: %s\n", text.data, err.msg);
        abort();
    }
    CHECK(cvx_value_compare(v, back) == 0);
    CHECK(cvx_json_write(&again, back) == CVX_OK);
    CHECK(again.len == text.len && memcmp(again.data, text.data, text.len) == 0);

    CHECK(cvx_key_append(&key, v) == CVX_OK);
    cvx_value_t *decoded;
    size_t used = 0;
    CHECK(cvx_key_decode(a, (const uint8_t *)key.data, key.len, &decoded, &used, &err) == CVX_OK);
    CHECK(used == key.len);
    CHECK(cvx_value_compare(v, decoded) == 0);

    CHECK(cvx_value_compare(v, cvx_value_clone(a, v)) == 0);
    cvx_buf_free(&text);
    cvx_buf_free(&again);
    cvx_buf_free(&key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cvx_arena_t *a = cvx_arena_new(4096);
    if (!a) return 0;
    cvx_value_t *v;
    cvx_err_t err = {0};
    int rc = cvx_json_parse(a, (const char *)data, size, &v, &err);
    if (rc == CVX_OK) {
        check_round_trips(a, v);
    } else {
        CHECK(rc == CVX_E_INVALID_VALUE && v == NULL && err.msg[0] != '\0');
    }
    cvx_arena_free(a);
    return 0;
}
