/*
 * fault_test.c — out of memory, SQLite-style: run an operation failing the
 * 1st allocation, then the 2nd, 3rd, ... (and every one after it) until it
 * succeeds. Every failure must be CVX_E_NOMEM with *out NULL, and nothing
 * may leak (run under ASan): the arena owns what was built so far.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "value/value.h"

/* A nested document exercising every allocation site of the parser:
 * scratch stacks growing past their first size, escaped strings, long
 * numbers for strtod, all three wrappers. */
static char *nested_document(size_t *len) {
    cvx_buf_t b = {0};
    cvx_buf_append_str(&b, "{\"name\":\"caf\\u00e9 \\ud83d\\ude00\",\"n\":-12.5e-3,\"big\":123456789012345678901234,");
    cvx_buf_append_str(&b, "\"i\":{\"$integer\":\"AQAAAAAAAAA=\"},\"f\":{\"$float\":\"AAAAAAAA+H8=\"},");
    cvx_buf_append_str(&b, "\"b\":{\"$bytes\":\"AAECAwQ=\"},\"list\":[");
    for (int i = 0; i < 100; i++) cvx_buf_printf(&b, "%s{\"k%d\":[%d,true,null,\"s\"]}", i ? "," : "", i, i);
    cvx_buf_append_str(&b, "],\"obj\":{");
    for (int i = 0; i < 50; i++) cvx_buf_printf(&b, "%s\"f%d\":{\"x\":[[[%d]]]}", i ? "," : "", 49 - i, i);
    cvx_buf_append_str(&b, "}}");
    assert_false(b.oom);
    return cvx_buf_detach(&b, len);
}

static void test_parse_nomem(void **state) {
    size_t len;
    char *json = nested_document(&len);
    cvx_arena_t *ref = cvx_arena_new(256);
    cvx_value_t *expected;
    assert_int_equal(cvx_json_parse(ref, json, len, &expected, NULL), CVX_OK);

    uint64_t failures = 0;
    for (uint64_t n = 1;; n++) {
        cvx_alloc_fail_after(n, true);
        cvx_arena_t *a = cvx_arena_new(256);
        cvx_value_t *v = (cvx_value_t *)1;
        cvx_err_t err = {0};
        int rc = a ? cvx_json_parse(a, json, len, &v, &err) : CVX_E_NOMEM;
        cvx_alloc_fail_after(0, false);
        if (rc == CVX_OK) {
            assert_true(cvx_value_equal(v, expected));
            cvx_arena_free(a);
            break;
        }
        failures++;
        assert_int_equal(rc, CVX_E_NOMEM);
        if (a) {
            assert_int_equal(err.code, CVX_E_NOMEM);
            assert_string_equal(err.msg, "out of memory parsing JSON");
            assert_null(v);
        }
        cvx_arena_free(a);
        assert_true(n < 10000);
    }
    assert_true(failures > 5);
    cvx_arena_free(ref);
    cvx_free(json);
}

/* The non-sticky variant: only the Nth allocation fails, later ones work.
 * A parse may survive the failure (a scratch stack that could not grow
 * in place, say), but then its value must be exactly the document's: same
 * value, same canonical text. */
static void test_parse_single_failure(void **state) {
    size_t len;
    char *json = nested_document(&len);
    cvx_arena_t *ref = cvx_arena_new(256);
    cvx_value_t *expected;
    assert_int_equal(cvx_json_parse(ref, json, len, &expected, NULL), CVX_OK);
    cvx_buf_t want = {0};
    assert_int_equal(cvx_json_write(&want, expected), CVX_OK);
    for (uint64_t n = 1;; n++) {
        cvx_arena_t *a = cvx_arena_new(256);
        assert_non_null(a);
        cvx_value_t *v = NULL;
        cvx_alloc_fail_after(n, false);
        int rc = cvx_json_parse(a, json, len, &v, NULL);
        uint64_t seen = cvx_alloc_fail_after(0, false);
        if (rc == CVX_OK) {
            if (!v || !cvx_value_equal(v, expected))
                fail_msg("allocation %llu failed: parsed a different value", (unsigned long long)n);
            cvx_buf_t got = {0};
            assert_int_equal(cvx_json_write(&got, v), CVX_OK);
            if (got.len != want.len || memcmp(got.data, want.data, want.len) != 0)
                fail_msg("allocation %llu failed: parsed %.*s", (unsigned long long)n, (int)got.len, got.data);
            cvx_buf_free(&got);
        } else {
            assert_int_equal(rc, CVX_E_NOMEM);
            assert_null(v);
        }
        cvx_arena_free(a);
        if (rc == CVX_OK && seen < n) break; /* the Nth allocation never happened */
        assert_true(n < 10000);
    }
    cvx_buf_free(&want);
    cvx_arena_free(ref);
    cvx_free(json);
}

static void test_builders_nomem(void **state) {
    for (uint64_t n = 1;; n++) {
        cvx_arena_t *a = cvx_arena_new(256);
        assert_non_null(a);
        cvx_alloc_fail_after(n, true);
        bool ok = true;
        cvx_value_t *o = cvx_object(a, 0), *arr = cvx_array(a, 0);
        ok = o && arr;
        for (int i = 0; ok && i < 200; i++) {
            char name[16];
            int k = snprintf(name, sizeof name, "n%d", i);
            cvx_value_t *s = cvx_string(a, "some text", 9);
            ok = s && cvx_obj_set(a, o, name, (size_t)k, s) == CVX_OK && cvx_arr_push(a, arr, s) == CVX_OK;
        }
        cvx_value_t *c = ok ? cvx_value_clone(a, o) : NULL;
        cvx_alloc_fail_after(0, false);
        cvx_arena_free(a);
        if (c) break;
        assert_true(n < 10000);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_nomem),
        cmocka_unit_test(test_parse_single_failure),
        cmocka_unit_test(test_builders_nomem),
    };
    return cmocka_run_group_tests_name("value.fault", tests, NULL, NULL);
}
