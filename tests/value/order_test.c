/*
 * order_test.c — the total order of values and the index-key encoding.
 *
 * A hand-written chain of values in strictly ascending order pins the
 * contract (type order, -0 < +0, NaN last, prefix rules); seeded property
 * tests over thousands of random values check that memcmp of keys agrees
 * with cvx_value_compare, that decode(encode(v)) == v, and that compound
 * keys (concatenations) sort field by field and decode back in pieces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "value/value.h"
#include "value_gen.h"

static cvx_arena_t *arena;

static int setup(void **state) {
    arena = cvx_arena_new(1 << 16);
    return arena ? 0 : -1;
}

static int teardown(void **state) {
    cvx_arena_free(arena);
    return 0;
}

static int sign(int c) { return (c > 0) - (c < 0); }

/* memcmp order of byte strings, shorter first on a common prefix. */
static int bytes_cmp(const cvx_buf_t *a, const cvx_buf_t *b) {
    size_t n = CVX_MIN(a->len, b->len);
    int c = n ? memcmp(a->data, b->data, n) : 0;
    if (c) return sign(c);
    return a->len < b->len ? -1 : a->len > b->len;
}

static void key_of(cvx_buf_t *out, const cvx_value_t *v) {
    cvx_buf_reset(out);
    assert_int_equal(cvx_key_append(out, v), CVX_OK);
}

static char *describe(const cvx_value_t *v) {
    static char text[2][256];
    static int which;
    cvx_buf_t b = {0};
    if (!v)
        cvx_buf_append_str(&b, "undefined");
    else
        cvx_json_write(&b, v);
    char *t = text[which++ % 2];
    snprintf(t, 256, "%s", b.data ? b.data : "");
    cvx_buf_free(&b);
    return t;
}

static double bits_double(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static cvx_value_t *json(const char *text) {
    cvx_value_t *v;
    cvx_err_t err;
    if (cvx_json_parse(arena, text, strlen(text), &v, &err)) fail_msg("%s: %s", text, err.msg);
    return v;
}

static cvx_value_t *str(const char *s, size_t n) { return cvx_string(arena, s, n); }

/* ---- the contract, by example -------------------------------------------- */

static void test_ascending_chain(void **state) {
    cvx_value_t *chain[] = {
        NULL, /* undefined */
        cvx_null(arena),
        cvx_int64(arena, INT64_MIN),
        cvx_int64(arena, -256),
        cvx_int64(arena, -1),
        cvx_int64(arena, 0),
        cvx_int64(arena, 1),
        cvx_int64(arena, 255),
        cvx_int64(arena, INT64_MAX),
        cvx_float64(arena, bits_double(0xfff0000000000000ull)), /* -Inf */
        cvx_float64(arena, -DBL_MAX),
        cvx_float64(arena, -1),
        cvx_float64(arena, -DBL_MIN),
        cvx_float64(arena, bits_double(0x8000000000000001ull)), /* -smallest subnormal */
        cvx_float64(arena, bits_double(0x8000000000000000ull)), /* -0 */
        cvx_float64(arena, 0),
        cvx_float64(arena, bits_double(1)),
        cvx_float64(arena, 0.1),
        cvx_float64(arena, 1),
        cvx_float64(arena, 9007199254740993.0),
        cvx_float64(arena, DBL_MAX),
        cvx_float64(arena, bits_double(0x7ff0000000000000ull)), /* +Inf */
        cvx_float64(arena, bits_double(0x7ff0000000000001ull)), /* NaNs last, by bits */
        cvx_float64(arena, bits_double(0x7ff8000000000000ull)),
        cvx_float64(arena, bits_double(0xfff8000000000000ull)),
        cvx_bool(arena, false),
        cvx_bool(arena, true),
        str("", 0),
        str("\0", 1),
        str("\0\0", 2),
        str("\x01", 1),
        str("a", 1),
        str("a\0", 2),
        str("a\0b", 3),
        str("ab", 2),
        str("b", 1),
        str("\xc3\xa9", 2),
        str("\xff", 1),
        cvx_bytes(arena, "", 0),
        cvx_bytes(arena, "\0", 1),
        cvx_bytes(arena, "\xff", 1),
        cvx_bytes(arena, "\xff\xff", 2),
        json("[]"),
        json("[null]"),
        json("[{\"$integer\":\"AQAAAAAAAAA=\"}]"),
        json("[1]"),
        json("[1,1]"),
        json("[1,\"\"]"),
        json("[1,[]]"),
        json("[2]"),
        json("[[]]"),
        json("{}"),
        json("{\"a\":null}"),
        json("{\"a\":1}"),
        json("{\"a\":1,\"b\":1}"),
        json("{\"a\":2}"),
        json("{\"aa\":0}"),
        json("{\"b\":0}"),
    };
    /* An array holding undefined sorts between [] and [null]. */
    cvx_value_t *undef_arr = cvx_array(arena, 1);
    cvx_arr_push(arena, undef_arr, NULL);
    assert_true(cvx_value_compare(chain[42], undef_arr) < 0);
    assert_true(cvx_value_compare(undef_arr, chain[43]) < 0);

    cvx_buf_t ka = {0}, kb = {0};
    size_t n = CVX_ARRAY_LEN(chain);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int want = i < j ? -1 : i > j;
            if (sign(cvx_value_compare(chain[i], chain[j])) != want)
                fail_msg("compare(%s, %s) != %d", describe(chain[i]), describe(chain[j]), want);
            key_of(&ka, chain[i]);
            key_of(&kb, chain[j]);
            if (bytes_cmp(&ka, &kb) != want)
                fail_msg("key order of %s, %s != %d", describe(chain[i]), describe(chain[j]), want);
        }
    }
    cvx_buf_free(&ka);
    cvx_buf_free(&kb);
}

static void test_equality(void **state) {
    assert_true(cvx_value_equal(NULL, NULL));
    assert_false(cvx_value_equal(NULL, cvx_null(arena)));
    assert_false(cvx_value_equal(cvx_int64(arena, 1), cvx_float64(arena, 1)));
    assert_false(cvx_value_equal(cvx_float64(arena, 0.0), cvx_float64(arena, -0.0)));
    assert_true(cvx_value_equal(cvx_float64(arena, NAN), cvx_float64(arena, NAN)));
    assert_false(cvx_value_equal(cvx_string(arena, "a", 1), cvx_bytes(arena, "a", 1)));
    assert_true(cvx_value_equal(json("{\"b\":[1,{\"c\":null}],\"a\":true}"), json("{\"a\":true,\"b\":[1,{\"c\":null}]}")));
    assert_false(cvx_value_equal(json("{\"a\":1}"), json("{\"b\":1}")));
}

static void expect_key(const cvx_value_t *v, const char *bytes, size_t n) {
    cvx_buf_t k = {0};
    key_of(&k, v);
    assert_int_equal(k.len, n);
    assert_memory_equal(k.data, bytes, n);
    cvx_buf_free(&k);
}

/* The layout is a storage format: pin it. */
static void test_key_layout(void **state) {
    expect_key(NULL, "\x01", 1);
    expect_key(cvx_null(arena), "\x02", 1);
    expect_key(cvx_int64(arena, 0), "\x03\x80\0\0\0\0\0\0\0", 9);
    expect_key(cvx_int64(arena, -1), "\x03\x7f\xff\xff\xff\xff\xff\xff\xff", 9);
    expect_key(cvx_float64(arena, 1.0), "\x04\xbf\xf0\0\0\0\0\0\0", 9);
    expect_key(cvx_float64(arena, -0.0), "\x04\x7f\xff\xff\xff\xff\xff\xff\xff", 9);
    expect_key(cvx_float64(arena, bits_double(0x7ff8000000000000ull)), "\x05\x7f\xf8\0\0\0\0\0\0", 9);
    expect_key(cvx_bool(arena, false), "\x06", 1);
    expect_key(cvx_bool(arena, true), "\x07", 1);
    expect_key(str("a\0b", 3), "\x08" "a\0\xff" "b\0", 6);
    expect_key(cvx_bytes(arena, "", 0), "\x09\0", 2);
    expect_key(json("[null,true]"), "\x0a\x02\x07\0", 4);
    expect_key(json("{\"a\":null}"), "\x0b\x01" "a\0\x02\0", 6);
    cvx_value_t *o = cvx_object(arena, 0);
    cvx_obj_set(arena, o, "", 0, cvx_null(arena));
    expect_key(o, "\x0b\x01\0\x02\0", 5);
}

/* ---- properties ---------------------------------------------------------- */

#define POOL 4000

static cvx_value_t *pool[POOL];

static void fill_pool(const char *seed) {
    gen_t g;
    gen_init(&g, arena, seed, false);
    for (int i = 0; i < POOL; i++) pool[i] = gen_value(&g, 0);
    /* Undefined, and exact duplicates so equality is exercised too. */
    pool[0] = NULL;
    for (int i = 1; i < POOL; i += 97) pool[i] = cvx_value_clone(arena, pool[i - 1]);
}

static void check_decode(const cvx_value_t *v, const cvx_buf_t *k) {
    cvx_value_t *back = (cvx_value_t *)1;
    size_t used = 0;
    cvx_err_t err = {0};
    if (cvx_key_decode(arena, (const uint8_t *)k->data, k->len, &back, &used, &err))
        fail_msg("decode of %s failed: %s", describe(v), err.msg);
    assert_int_equal(used, k->len);
    if (cvx_value_compare(v, back) != 0) fail_msg("decode(encode(%s)) = %s", describe(v), describe(back));
}

static int compare_values(const void *x, const void *y) {
    return cvx_value_compare(*(cvx_value_t *const *)x, *(cvx_value_t *const *)y);
}

static void test_random_key_order(void **state) {
    fill_pool("key order");
    gen_t pick;
    gen_init(&pick, arena, "pairs", false);
    cvx_buf_t ka = {0}, kb = {0};
    for (int i = 0; i < POOL; i++) {
        key_of(&ka, pool[i]);
        check_decode(pool[i], &ka);
        for (int t = 0; t < 8; t++) {
            /* Random partner, and the neighbour (often similar after sort). */
            const cvx_value_t *b = pool[t == 0 && i > 0 ? (uint32_t)(i - 1) : gen_below(&pick, POOL)];
            key_of(&kb, b);
            int want = sign(cvx_value_compare(pool[i], b));
            assert_int_equal(sign(cvx_value_compare(b, pool[i])), -want);
            if (bytes_cmp(&ka, &kb) != want)
                fail_msg("compare(%s, %s) = %d but keys say %d", describe(pool[i]), describe(b), want,
                         bytes_cmp(&ka, &kb));
        }
        assert_int_equal(cvx_value_compare(pool[i], pool[i]), 0);
    }
    /* Sorted by compare, keys must be non-decreasing, and strictly
     * increasing exactly where compare says so (checks transitivity). */
    qsort(pool, POOL, sizeof pool[0], compare_values);
    for (int i = 1; i < POOL; i++) {
        key_of(&ka, pool[i - 1]);
        key_of(&kb, pool[i]);
        assert_int_equal(bytes_cmp(&ka, &kb), sign(cvx_value_compare(pool[i - 1], pool[i])));
        assert_true(bytes_cmp(&ka, &kb) <= 0);
    }
    cvx_buf_free(&ka);
    cvx_buf_free(&kb);
}

static void test_random_compound_keys(void **state) {
    fill_pool("compound keys");
    gen_t pick;
    gen_init(&pick, arena, "compound pairs", false);
    cvx_buf_t ka = {0}, kb = {0};
    for (int i = 0; i < 6000; i++) {
        /* Components share values often, so later components decide. */
        const cvx_value_t *a[3], *b[3];
        for (int c = 0; c < 3; c++) {
            a[c] = pool[gen_below(&pick, 64)];
            b[c] = gen_below(&pick, 2) ? a[c] : pool[gen_below(&pick, 64)];
        }
        cvx_buf_reset(&ka);
        cvx_buf_reset(&kb);
        int want = 0;
        for (int c = 0; c < 3; c++) {
            assert_int_equal(cvx_key_append(&ka, a[c]), CVX_OK);
            assert_int_equal(cvx_key_append(&kb, b[c]), CVX_OK);
            if (!want) want = sign(cvx_value_compare(a[c], b[c]));
        }
        assert_int_equal(bytes_cmp(&ka, &kb), want);
        /* The concatenation cuts back into its components. */
        size_t off = 0;
        for (int c = 0; c < 3; c++) {
            cvx_value_t *v;
            size_t used;
            assert_int_equal(cvx_key_decode(arena, (const uint8_t *)ka.data + off, ka.len - off, &v, &used, NULL),
                             CVX_OK);
            assert_int_equal(cvx_value_compare(v, a[c]), 0);
            off += used;
        }
        assert_int_equal(off, ka.len);
    }
    cvx_buf_free(&ka);
    cvx_buf_free(&kb);
}

/* ---- decoding bad keys --------------------------------------------------- */

static void expect_decode_error(const char *key, size_t n, const char *msg) {
    cvx_value_t *v = (cvx_value_t *)1;
    size_t used = 1234;
    cvx_err_t err = {0};
    assert_int_equal(cvx_key_decode(arena, (const uint8_t *)key, n, &v, &used, &err), CVX_E_INVALID_VALUE);
    assert_null(v);
    assert_int_equal(used, 1234);
    assert_string_equal(err.msg, msg);
}

static void test_decode_errors(void **state) {
    expect_decode_error("", 0, "invalid index key at byte 0: unexpected end of key");
    expect_decode_error("\x00", 1, "invalid index key at byte 0: unknown type tag");
    expect_decode_error("\xff", 1, "invalid index key at byte 0: unknown type tag");
    expect_decode_error("\x0c", 1, "invalid index key at byte 0: unknown type tag");
    expect_decode_error("\x03\x80\0", 3, "invalid index key at byte 1: truncated number");
    expect_decode_error("\x04\xff\xf8\0\0\0\0\0\0", 9, "invalid index key at byte 9: non-canonical float");
    expect_decode_error("\x05\x3f\xf0\0\0\0\0\0\0", 9, "invalid index key at byte 9: non-canonical float");
    expect_decode_error("\x08" "abc", 4, "invalid index key at byte 1: unterminated string");
    expect_decode_error("\x09\0\xff", 3, "invalid index key at byte 1: unterminated string");
    expect_decode_error("\x0a\x02", 2, "invalid index key at byte 2: unterminated array");
    expect_decode_error("\x0b", 1, "invalid index key at byte 1: unterminated object");
    expect_decode_error("\x0b\x02", 2, "invalid index key at byte 1: expected a field or the end of the object");
    expect_decode_error("\x0b\x01" "b\0\x02\x01" "a\0\x02\0", 10, "invalid index key at byte 9: object fields out of order");
    expect_decode_error("\x0b\x01" "a\0\x02\x01" "a\0\x02\0", 10, "invalid index key at byte 9: object fields out of order");
    char deep[70];
    memset(deep, 0x0a, sizeof deep);
    expect_decode_error(deep, sizeof deep, "invalid index key at byte 64: nesting deeper than 64");
    /* Trailing bytes are the next component: decoding stops before them. */
    cvx_value_t *v;
    size_t used;
    assert_int_equal(cvx_key_decode(arena, (const uint8_t *)"\x07\x02", 2, &v, &used, NULL), CVX_OK);
    assert_int_equal(used, 1);
    assert_true(v->u.b);
    assert_int_equal(cvx_key_decode(arena, (const uint8_t *)"\x01", 1, &v, &used, NULL), CVX_OK);
    assert_null(v);
}

static void test_key_oom(void **state) {
    cvx_value_t *v = json("{\"a\":[1,\"x\\u0000y\",{\"$bytes\":\"AAEC\"}],\"b\":{\"c\":[[],{}]}}");
    cvx_buf_t k = {0};
    key_of(&k, v);
    for (uint64_t n = 1;; n++) {
        cvx_arena_t *a = cvx_arena_new(256);
        assert_non_null(a);
        cvx_buf_t out = {0};
        cvx_value_t *back = NULL;
        cvx_err_t err = {0};
        cvx_alloc_fail_after(n, true);
        int rc = cvx_key_append(&out, v);
        if (!rc) rc = cvx_key_decode(a, (const uint8_t *)k.data, k.len, &back, NULL, &err);
        cvx_alloc_fail_after(0, false);
        if (!rc) {
            assert_int_equal(cvx_value_compare(back, v), 0);
            cvx_buf_free(&out);
            cvx_arena_free(a);
            break;
        }
        assert_int_equal(rc, CVX_E_NOMEM);
        assert_null(back);
        cvx_buf_free(&out);
        cvx_arena_free(a);
        assert_true(n < 1000);
    }
    cvx_buf_free(&k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ascending_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_equality, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_key_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_compound_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_oom, setup, teardown),
    };
    return cmocka_run_group_tests_name("value.order", tests, NULL, NULL);
}
