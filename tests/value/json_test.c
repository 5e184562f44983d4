/*
 * json_test.c — convex-encoded JSON: exact output for every type, round
 * trips (int64 extremes, NaN, ±Inf, -0, bytes, unicode escapes, surrogate
 * pairs), a corpus of malformed inputs with their exact errors, the
 * $-wrapper rules, and a seeded property test that write → parse is the
 * identity and that cvx_value_json_size matches the writer byte for byte.
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
#include "value/value_int.h"
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

static cvx_value_t *parse_ok(const char *json) {
    cvx_value_t *v = NULL;
    cvx_err_t err = {0};
    int rc = cvx_json_parse(arena, json, strlen(json), &v, &err);
    if (rc) fail_msg("parse of %s failed: %s", json, err.msg);
    assert_non_null(v);
    return v;
}

static void expect_error_n(const char *json, size_t n, const char *msg) {
    cvx_value_t *v = (cvx_value_t *)1;
    cvx_err_t err = {0};
    int rc = cvx_json_parse(arena, json, n, &v, &err);
    assert_int_equal(rc, CVX_E_INVALID_VALUE);
    assert_int_equal(err.code, CVX_E_INVALID_VALUE);
    assert_null(v);
    assert_string_equal(err.msg, msg);
}

static void expect_error(const char *json, const char *msg) { expect_error_n(json, strlen(json), msg); }

/* Writes v and returns the text (owned by a static buffer reused per call). */
static const char *write_json(const cvx_value_t *v) {
    static cvx_buf_t out;
    cvx_buf_free(&out);
    assert_int_equal(cvx_json_write(&out, v), CVX_OK);
    assert_int_equal(cvx_value_json_size(v), out.len);
    return out.data;
}

static void expect_canonical(const char *json) { assert_string_equal(write_json(parse_ok(json)), json); }

static double bits_double(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t double_bits(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

/* ---- scalars ------------------------------------------------------------- */

static void test_literals(void **state) {
    assert_int_equal(parse_ok("null")->type, CVX_T_NULL);
    assert_true(parse_ok("true")->u.b);
    assert_false(parse_ok(" false ")->u.b);
    expect_canonical("null");
    expect_canonical("true");
    expect_canonical("false");
}

static void test_numbers_are_float64(void **state) {
    cvx_value_t *v = parse_ok("1");
    assert_int_equal(v->type, CVX_T_FLOAT64);
    assert_true(v->u.f == 1.0);
    assert_true(parse_ok("-12.5e2")->u.f == -1250.0);
    assert_true(parse_ok("0.1")->u.f == 0.1);
    assert_true(parse_ok("1E-2")->u.f == 0.01);
    assert_true(parse_ok("123456789012345")->u.f == 123456789012345.0);
    assert_true(parse_ok("9007199254740993")->u.f == 9007199254740992.0); /* rounds to even */
    assert_true(parse_ok("2.2250738585072014e-308")->u.f == DBL_MIN);
    assert_true(parse_ok("5e-324")->u.f == bits_double(1));
    assert_true(parse_ok("1e-400")->u.f == 0.0);
    /* "-0" is a JSON number: it parses to -0.0 and writes back as $float. */
    v = parse_ok("-0");
    assert_int_equal(double_bits(v->u.f), 0x8000000000000000ull);
    assert_string_equal(write_json(v), "{\"$float\":\"AAAAAAAAAIA=\"}");
}

static void test_number_output(void **state) {
    struct {
        double d;
        const char *text;
    } cases[] = {
        {1, "1"},
        {-1, "-1"},
        {0, "0"},
        {0.1, "0.1"},
        {1.5, "1.5"},
        {100, "100"},
        {1e15, "1000000000000000"},
        {9007199254740992.0, "9007199254740992"},
        {1e20, "1e+20"},
        {123.456, "123.456"},
        {1.0 / 3, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {5e-324, "4.94065645841247e-324"},
        {-2.5e-7, "-2.5e-07"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        cvx_value_t *v = cvx_float64(arena, cases[i].d);
        const char *text = write_json(v);
        assert_string_equal(text, cases[i].text);
        cvx_value_t *back = parse_ok(text);
        assert_int_equal(double_bits(back->u.f), double_bits(cases[i].d));
    }
}

static void test_special_floats(void **state) {
    struct {
        uint64_t bits;
        const char *json;
    } cases[] = {
        {0x7ff8000000000000ull, "{\"$float\":\"AAAAAAAA+H8=\"}"}, /* NaN */
        {0x7ff0000000000000ull, "{\"$float\":\"AAAAAAAA8H8=\"}"}, /* +Inf */
        {0xfff0000000000000ull, "{\"$float\":\"AAAAAAAA8P8=\"}"}, /* -Inf */
        {0x8000000000000000ull, "{\"$float\":\"AAAAAAAAAIA=\"}"}, /* -0 */
        {0xfff8000000000001ull, "{\"$float\":\"AQAAAAAA+P8=\"}"}, /* -NaN with payload */
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        cvx_value_t *v = cvx_float64(arena, bits_double(cases[i].bits));
        assert_string_equal(write_json(v), cases[i].json);
        cvx_value_t *back = parse_ok(cases[i].json);
        assert_int_equal(back->type, CVX_T_FLOAT64);
        assert_int_equal(double_bits(back->u.f), cases[i].bits);
    }
    /* A finite float in a wrapper is accepted and written back plainly. */
    assert_string_equal(write_json(parse_ok("{\"$float\":\"AAAAAAAA8D8=\"}")), "1");
}

static void test_int64(void **state) {
    struct {
        int64_t i;
        const char *json;
    } cases[] = {
        {0, "{\"$integer\":\"AAAAAAAAAAA=\"}"},
        {1, "{\"$integer\":\"AQAAAAAAAAA=\"}"},
        {-1, "{\"$integer\":\"//////////8=\"}"},
        {INT64_MAX, "{\"$integer\":\"/////////38=\"}"},
        {INT64_MIN, "{\"$integer\":\"AAAAAAAAAIA=\"}"},
        {1234567890123456789, "{\"$integer\":\"FYHpffQQIhE=\"}"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        assert_string_equal(write_json(cvx_int64(arena, cases[i].i)), cases[i].json);
        cvx_value_t *v = parse_ok(cases[i].json);
        assert_int_equal(v->type, CVX_T_INT64);
        assert_int_equal(v->u.i, cases[i].i);
    }
}

static void test_bytes(void **state) {
    cvx_value_t *v = parse_ok("{\"$bytes\":\"AP8QIA==\"}");
    assert_int_equal(v->type, CVX_T_BYTES);
    assert_int_equal(v->u.str.len, 4);
    assert_memory_equal(v->u.str.ptr, "\x00\xff\x10\x20", 4);
    expect_canonical("{\"$bytes\":\"AP8QIA==\"}");
    expect_canonical("{\"$bytes\":\"\"}");
    assert_int_equal(parse_ok("{\"$bytes\":\"\"}")->u.str.len, 0);
    /* Whitespace around the wrapper is fine. */
    assert_int_equal(parse_ok(" { \"$bytes\" : \"AQ==\" } ")->u.str.ptr[0], 1);
}

/* ---- strings ------------------------------------------------------------- */

static void test_string_escapes(void **state) {
    cvx_value_t *v = parse_ok("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"");
    assert_int_equal(v->type, CVX_T_STRING);
    assert_string_equal(v->u.str.ptr, "a\"b\\c/d\b\f\n\r\t");
    v = parse_ok("\"\\u0041\\u00e9\\u20AC\"");
    assert_string_equal(v->u.str.ptr, "A\xc3\xa9\xe2\x82\xac");
    v = parse_ok("\"x\\u0000y\"");
    assert_int_equal(v->u.str.len, 3);
    assert_memory_equal(v->u.str.ptr, "x\0y", 3);
    assert_string_equal(write_json(v), "\"x\\u0000y\"");
    assert_string_equal(write_json(parse_ok("\"\\u001f\\u007f\"")), "\"\\u001f\x7f\"");
}

static void test_surrogate_pairs(void **state) {
    cvx_value_t *v = parse_ok("\"\\ud83d\\ude00\"");
    assert_string_equal(v->u.str.ptr, "\xf0\x9f\x98\x80");
    v = parse_ok("\"\\uDBFF\\uDFFF\"");
    assert_string_equal(v->u.str.ptr, "\xf4\x8f\xbf\xbf");
    /* Raw UTF-8 passes through and is written back raw. */
    expect_canonical("\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac\"");
}

static void test_unicode_errors(void **state) {
    expect_error("\"\\ud800\"", "invalid JSON at byte 1: lone surrogate \\ud800");
    expect_error("\"\\udc00\"", "invalid JSON at byte 1: lone surrogate \\udc00");
    expect_error("\"\\ud800\\u0041\"", "invalid JSON at byte 1: lone surrogate \\ud800");
    expect_error("\"\\ud800x\"", "invalid JSON at byte 1: lone surrogate \\ud800");
    expect_error("\"\\u12\"", "invalid JSON at byte 1: bad \\u escape");
    expect_error("\"\\u12g4\"", "invalid JSON at byte 1: bad \\u escape");
    expect_error("\"\\x\"", "invalid JSON at byte 1: bad escape '\\x'");
    expect_error("\"\\'\"", "invalid JSON at byte 1: bad escape '\\''");
    expect_error("\"a\tb\"", "invalid JSON at byte 2: control character 0x09 in string");
    expect_error("\"\xc0\x80\"", "invalid JSON at byte 1: invalid UTF-8 in string");         /* overlong */
    expect_error("\"\xed\xa0\x80\"", "invalid JSON at byte 1: invalid UTF-8 in string");     /* surrogate */
    expect_error("\"\xf4\x90\x80\x80\"", "invalid JSON at byte 1: invalid UTF-8 in string"); /* > U+10FFFF */
    expect_error("\"\xe2\x82\"", "invalid JSON at byte 1: invalid UTF-8 in string");         /* truncated */
    expect_error("\"\x80\"", "invalid JSON at byte 1: invalid UTF-8 in string");
    expect_error("\"\xff\"", "invalid JSON at byte 1: invalid UTF-8 in string");
}

/* ---- containers ---------------------------------------------------------- */

static void test_containers(void **state) {
    cvx_value_t *v = parse_ok(" [ 1 , [ ] , { } , \"x\" ] ");
    assert_int_equal(v->type, CVX_T_ARRAY);
    assert_int_equal(v->u.arr.len, 4);
    assert_int_equal(v->u.arr.items[1]->u.arr.len, 0);
    assert_int_equal(v->u.arr.items[2]->type, CVX_T_OBJECT);
    expect_canonical("[1,[],{},\"x\"]");
    /* Fields come out sorted bytewise whatever the input order. */
    v = parse_ok("{\"b\":1,\"a\":2,\"B\":3,\"aa\":4,\" \":5}");
    assert_string_equal(write_json(v), "{\" \":5,\"B\":3,\"a\":2,\"aa\":4,\"b\":1}");
    assert_true(cvx_obj_get_cstr(v, "aa")->u.f == 4.0);
    expect_canonical("{\"_id\":\"x\",\"a\":{\"b\":[null,true]}}");
}

static void test_duplicates(void **state) {
    expect_error("{\"a\":1,\"a\":2}", "duplicate field name \"a\"");
    expect_error("{\"x\":[{\"b\":1,\"c\":1,\"b\":2}]}", "field \"x[0]\": duplicate field name \"b\"");
}

/* ---- wrappers ------------------------------------------------------------ */

static void test_wrapper_errors(void **state) {
    expect_error("{\"$integer\":\"AAAA\"}", "$integer must encode exactly 8 bytes, not 3");
    expect_error("{\"$integer\":\"AAAAAAAAAAAA\"}", "$integer must encode exactly 8 bytes, not 9");
    expect_error("{\"$float\":\"AAAAAAAAAA==\"}", "$float must encode exactly 8 bytes, not 7");
    expect_error("{\"$integer\":1}", "$integer must be a base64 string");
    expect_error("{\"a\":{\"$float\":null}}", "field \"a\": $float must be a base64 string");
    expect_error("{\"$integer\":\"AAAAAAAAAAA=\",\"x\":1}", "an object with \"$integer\" must have no other fields");
    expect_error("{\"$bytes\":\"AA==\",\"$bytes\":\"AA==\"}", "an object with \"$bytes\" must have no other fields");
    expect_error("{\"$foo\":1}", "field name \"$foo\" must not start with '$'");
    expect_error("{\"a\":1,\"$integer\":\"AAAAAAAAAAA=\"}", "field name \"$integer\" must not start with '$'");
    expect_error("{\"$Integer\":\"AAAAAAAAAAA=\"}", "field name \"$Integer\" must not start with '$'");
    expect_error("{\"a\":{\"$bytes\":\"!!!!\"}}",
                 "field \"a\": $bytes: invalid base64: unexpected character at offset 0");
    expect_error("{\"$bytes\":\"AQ=\"}", "$bytes: invalid base64: length 3 is not a multiple of 4");
    expect_error("{\"$bytes\":\"AR==\"}", "$bytes: invalid base64: non-canonical trailing bits");
    expect_error("{\"$bytes\":\"AQ==\" 1}", "invalid JSON at byte 17: unexpected character '1', expected '}'");
    /* Escapes in a payload are decoded before base64 is. */
    assert_int_equal(parse_ok("{\"$bytes\":\"\\u0041Q==\"}")->u.str.ptr[0], 1);
}

/* ---- malformed JSON ------------------------------------------------------ */

static void test_malformed_corpus(void **state) {
    static const struct {
        const char *json;
        const char *msg;
    } corpus[] = {
        {"", "invalid JSON at byte 0: unexpected end of input"},
        {"   ", "invalid JSON at byte 3: unexpected end of input"},
        {"[1,]", "invalid JSON at byte 2: trailing comma"},
        {"{\"a\":1,}", "invalid JSON at byte 6: trailing comma"},
        {"[1 2]", "invalid JSON at byte 3: unexpected character '2', expected ',' or ']'"},
        {"{\"a\" 1}", "invalid JSON at byte 5: unexpected character '1', expected ':'"},
        {"{\"a\":1 \"b\":2}", "invalid JSON at byte 7: unexpected character '\"', expected ',' or '}'"},
        {"{a:1}", "invalid JSON at byte 1: unexpected character 'a', expected a field name"},
        {"{\"a\":1,,}", "invalid JSON at byte 7: unexpected character ',', expected a field name"},
        {"[,1]", "invalid JSON at byte 1: unexpected character ','"},
        {"[", "invalid JSON at byte 1: unexpected end of input"},
        {"[1", "invalid JSON at byte 2: unexpected end of input, expected ',' or ']'"},
        {"{", "invalid JSON at byte 1: unexpected end of input, expected a field name"},
        {"{\"a\":", "invalid JSON at byte 5: unexpected end of input"},
        {"\"abc", "invalid JSON at byte 0: unterminated string"},
        {"\"abc\\\"", "invalid JSON at byte 0: unterminated string"},
        {"\"a\\", "invalid JSON at byte 0: unterminated string"},
        {"01", "invalid JSON at byte 0: leading zeros are not allowed"},
        {"-01", "invalid JSON at byte 1: leading zeros are not allowed"},
        {"00", "invalid JSON at byte 0: leading zeros are not allowed"},
        {"1.", "invalid JSON at byte 2: unexpected end of input, expected a digit after '.'"},
        {".5", "invalid JSON at byte 0: unexpected character '.'"},
        {"1.e5", "invalid JSON at byte 2: unexpected character 'e', expected a digit after '.'"},
        {"1e", "invalid JSON at byte 2: unexpected end of input, expected a digit in the exponent"},
        {"1e+", "invalid JSON at byte 3: unexpected end of input, expected a digit in the exponent"},
        {"-", "invalid JSON at byte 1: unexpected end of input, expected a digit"},
        {"+1", "invalid JSON at byte 0: unexpected character '+'"},
        {"-a", "invalid JSON at byte 1: unexpected character 'a', expected a digit"},
        {"0x10", "invalid JSON at byte 1: unexpected data after the value"},
        {"1e400", "invalid JSON at byte 0: number out of range"},
        {"-1e400", "invalid JSON at byte 0: number out of range"},
        {"NaN", "invalid JSON at byte 0: unexpected character 'N'"},
        {"Infinity", "invalid JSON at byte 0: unexpected character 'I'"},
        {"tru", "invalid JSON at byte 0: invalid literal"},
        {"nul", "invalid JSON at byte 0: invalid literal"},
        {"True", "invalid JSON at byte 0: unexpected character 'T'"},
        {"truex", "invalid JSON at byte 4: unexpected data after the value"},
        {"[1] x", "invalid JSON at byte 4: unexpected data after the value"},
        {"1 2", "invalid JSON at byte 2: unexpected data after the value"},
        {"'a'", "invalid JSON at byte 0: unexpected character '''"},
        {"[1]\x0b", "invalid JSON at byte 3: unexpected data after the value"},
        {"\xef\xbb\xbf[]", "invalid JSON at byte 0: unexpected byte 0xef"},
        {"/* c */ 1", "invalid JSON at byte 0: unexpected character '/'"},
        {"{\"a\":1}}", "invalid JSON at byte 7: unexpected data after the value"},
        {"[}", "invalid JSON at byte 1: unexpected character '}'"},
        {"{]", "invalid JSON at byte 1: unexpected character ']', expected a field name"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(corpus); i++) expect_error(corpus[i].json, corpus[i].msg);
    expect_error_n("[1,\0]", 5, "invalid JSON at byte 3: unexpected byte 0x00");
    expect_error_n("\"a\0\"", 4, "invalid JSON at byte 2: control character 0x00 in string");
    /* Input is (pointer, length): bytes past len are never read. */
    cvx_value_t *v;
    assert_int_equal(cvx_json_parse(arena, "123garbage", 3, &v, NULL), CVX_OK);
    assert_true(v->u.f == 123.0);
    assert_int_equal(cvx_json_parse(arena, "[1,2]", 4, &v, NULL), CVX_E_INVALID_VALUE);
}

/* ---- properties ---------------------------------------------------------- */

static void assert_identical(const cvx_value_t *a, const cvx_value_t *b) {
    if (cvx_value_compare(a, b) != 0) {
        cvx_buf_t x = {0}, y = {0};
        cvx_json_write(&x, a);
        cvx_json_write(&y, b);
        fail_msg("values differ:\n  %s\n  %s", x.data, y.data);
    }
}

static void test_random_round_trips(void **state) {
    gen_t g;
    gen_init(&g, arena, "json round trip", true);
    cvx_buf_t out = {0}, again = {0};
    for (int i = 0; i < 5000; i++) {
        cvx_value_t *v = gen_value(&g, 0);
        cvx_buf_reset(&out);
        assert_int_equal(cvx_json_write(&out, v), CVX_OK);
        assert_int_equal(cvx_value_json_size(v), out.len);
        cvx_value_t *back = NULL;
        cvx_err_t err = {0};
        if (cvx_json_parse(arena, out.data, out.len, &back, &err)) fail_msg("%s: %s", out.data, err.msg);
        assert_identical(v, back);
        /* Writing is deterministic: the same value gives the same text. */
        cvx_buf_reset(&again);
        assert_int_equal(cvx_json_write(&again, back), CVX_OK);
        assert_int_equal(again.len, out.len);
        assert_memory_equal(again.data, out.data, out.len);
        if (i % 500 == 499) cvx_arena_reset(arena);
    }
    cvx_buf_free(&out);
    cvx_buf_free(&again);
}

static void test_random_doubles(void **state) {
    cvx_chacha_t rng;
    cvx_chacha_seed(&rng, "doubles", 7);
    cvx_buf_t out = {0};
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = cvx_chacha_u64(&rng);
        if (i % 2) bits = (bits & 0x800fffffffffffffull) | ((uint64_t)(1023 + (int)(bits >> 52) % 60 - 30) << 52);
        double d = bits_double(bits);
        cvx_value_t v = {.type = CVX_T_FLOAT64, .u.f = d};
        cvx_buf_reset(&out);
        assert_int_equal(cvx_json_write(&out, &v), CVX_OK);
        cvx_value_t *back;
        assert_int_equal(cvx_json_parse(arena, out.data, out.len, &back, NULL), CVX_OK);
        assert_int_equal(double_bits(back->u.f), bits);
        assert_true(out.len <= 25);
    }
    cvx_buf_free(&out);
    cvx_arena_reset(arena);
}

/* The printf-free paths give the reference's bytes: integers, short
 * decimals (like _creationTime) and everything else, written and read. */
static void test_fast_numbers_match_printf(void **state) {
    (void)state;
    cvx_chacha_t rng;
    cvx_chacha_seed(&rng, "fastnum", 7);
    char fast[CVX__DOUBLE_MAX], ref[CVX__DOUBLE_MAX];
    for (int i = 0; i < 200000; i++) {
        uint64_t r = cvx_chacha_u64(&rng);
        double d;
        switch (i % 5) {
        case 0: d = (double)(int64_t)(r % 20000000000000000ull) - 1e16; break;    /* integers, some past 2^53 */
        case 1: d = (double)(r % 10000000000000000ull) / (r >> 63 ? 1000.0 : 1e6); break; /* ms.fraction, 16-17 digits */
        case 2: d = (double)(r % 1000000000ull) / (double)(1ull << (r >> 60)); break; /* binary fractions */
        case 3: d = (double)(r % 100000) / 1e8 * ((r >> 63) ? -1 : 1); break;      /* small, around 1e-4 */
        default: d = bits_double((r & 0x800fffffffffffffull) | ((uint64_t)(1023 + (int)(r >> 52) % 120 - 60) << 52));
        }
        size_t n = cvx__format_double(d, fast), m = cvx__format_double_printf(d, ref);
        if (n != m || strcmp(fast, ref) != 0) fail_msg("%.17g: fast \"%s\", printf \"%s\"", d, fast, ref);
        cvx_value_t *back;
        assert_int_equal(cvx_json_parse(arena, ref, m, &back, NULL), CVX_OK);
        if (double_bits(back->u.f) != double_bits(d)) fail_msg("%s read back as %.17g", ref, back->u.f);
        if (i % 64 == 0) cvx_arena_reset(arena);
    }
    /* Decimal text read without strtod is what strtod reads. */
    const char *texts[] = {"0.1", "0.30000000000000004", "1733123456789.123", "-0.5", "123456789012.345",
                           "0.000001", "999999999999999.9", "12345.678901234", "0.0", "-0.0", "1764662400123.456",
                           "9007199254740993", "9007199254740992", "0.1234567890123456", "-8999999999999.999"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        cvx_value_t *back;
        assert_int_equal(cvx_json_parse(arena, texts[i], strlen(texts[i]), &back, NULL), CVX_OK);
        assert_int_equal(double_bits(back->u.f), double_bits(strtod(texts[i], NULL)));
    }
    cvx_arena_reset(arena);
}

static void test_write_oom(void **state) {
    cvx_value_t *v = parse_ok("{\"a\":[1,2,{\"b\":\"xyz\"}],\"c\":{\"$bytes\":\"AAEC\"}}");
    for (uint64_t n = 1;; n++) {
        cvx_buf_t out = {0};
        cvx_alloc_fail_after(n, true);
        int rc = cvx_json_write(&out, v);
        cvx_alloc_fail_after(0, false);
        cvx_buf_free(&out);
        if (rc == CVX_OK) break;
        assert_int_equal(rc, CVX_E_NOMEM);
        assert_true(n < 100);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_literals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers_are_float64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_floats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_surrogate_pairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unicode_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_containers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrapper_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_corpus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_doubles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_numbers_match_printf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_oom, setup, teardown),
    };
    return cmocka_run_group_tests_name("value.json", tests, NULL, NULL);
}
