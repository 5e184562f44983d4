/*
 * limits_test.c — every limit of docs/protocol.md §1, exactly at the
 * boundary and one past it, through both the JSON parser and
 * cvx_value_check, with the exact error text (which names the path).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "value/value.h"

static cvx_arena_t *arena;

static int setup(void **state) {
    arena = cvx_arena_new(1 << 16);
    return arena ? 0 : -1;
}

static int teardown(void **state) {
    cvx_arena_free(arena);
    return 0;
}

static cvx_value_t *parse_ok(const char *json, size_t n) {
    cvx_value_t *v = NULL;
    cvx_err_t err = {0};
    if (cvx_json_parse(arena, json, n, &v, &err)) fail_msg("parse failed: %s", err.msg);
    return v;
}

static void expect_parse_error(const char *json, size_t n, const char *msg) {
    cvx_value_t *v;
    cvx_err_t err = {0};
    assert_int_equal(cvx_json_parse(arena, json, n, &v, &err), CVX_E_INVALID_VALUE);
    assert_null(v);
    assert_string_equal(err.msg, msg);
}

static void expect_check_error(const cvx_value_t *v, cvx_check_t kind, const char *msg) {
    cvx_err_t err = {0};
    assert_int_equal(cvx_value_check(v, kind, &err), CVX_E_INVALID_VALUE);
    assert_int_equal(err.code, CVX_E_INVALID_VALUE);
    assert_string_equal(err.msg, msg);
}

static void expect_check_ok(const cvx_value_t *v, cvx_check_t kind) {
    cvx_err_t err = {0};
    if (cvx_value_check(v, kind, &err)) fail_msg("check failed: %s", err.msg);
}

/* `levels` nested objects {"a":{"a":...{}}} (innermost empty) as JSON. */
static char *nested_objects(int levels, size_t *len) {
    cvx_buf_t b = {0};
    for (int i = 0; i < levels - 1; i++) cvx_buf_append_str(&b, "{\"a\":");
    cvx_buf_append_str(&b, "{}");
    for (int i = 0; i < levels - 1; i++) cvx_buf_append_char(&b, '}');
    return cvx_buf_detach(&b, len);
}

static char *nested_arrays(int levels, const char *inner, size_t *len) {
    cvx_buf_t b = {0};
    for (int i = 0; i < levels; i++) cvx_buf_append_char(&b, '[');
    cvx_buf_append_str(&b, inner);
    for (int i = 0; i < levels; i++) cvx_buf_append_char(&b, ']');
    return cvx_buf_detach(&b, len);
}

/* "a.a.a" with n names, or "[0][0]" with n indexes. */
static const char *path_of(int n, bool arrays) {
    static char buf[512];
    size_t o = 0;
    for (int i = 0; i < n; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, arrays ? "[0]" : (i ? ".a" : "a"));
    buf[o] = '\0';
    return buf;
}

/* ---- nesting ------------------------------------------------------------- */

static void test_depth_64(void **state) {
    size_t n;
    char *ok = nested_arrays(64, "1", &n);
    cvx_value_t *v = parse_ok(ok, n);
    expect_check_ok(v, CVX_CHECK_VALUE);
    cvx_free(ok);

    char msg[600];
    char *deep = nested_arrays(65, "1", &n);
    snprintf(msg, sizeof msg, "field \"%s\": nesting deeper than 64", path_of(64, true));
    expect_parse_error(deep, n, msg);
    cvx_free(deep);

    ok = nested_objects(64, &n);
    v = parse_ok(ok, n);
    expect_check_ok(v, CVX_CHECK_VALUE);
    cvx_free(ok);
    deep = nested_objects(65, &n);
    snprintf(msg, sizeof msg, "field \"%s\": nesting deeper than 64", path_of(64, false));
    expect_parse_error(deep, n, msg);
    cvx_free(deep);

    /* Wrapped scalars are not containers: they may sit at the deepest level. */
    ok = nested_arrays(64, "{\"$integer\":\"AQAAAAAAAAA=\"}", &n);
    v = parse_ok(ok, n);
    expect_check_ok(v, CVX_CHECK_VALUE);
    cvx_free(ok);
    deep = nested_arrays(64, "{}", &n);
    snprintf(msg, sizeof msg, "field \"%s\": nesting deeper than 64", path_of(64, true));
    expect_parse_error(deep, n, msg);
    cvx_free(deep);

    /* A hand-built value one level too deep fails the check the same way. */
    cvx_value_t *root = cvx_array(arena, 1), *cur = root;
    for (int i = 1; i < 65; i++) {
        cvx_value_t *next = cvx_array(arena, 1);
        cvx_arr_push(arena, cur, next);
        cur = next;
    }
    snprintf(msg, sizeof msg, "field \"%s\": nesting deeper than 64", path_of(64, true));
    expect_check_error(root, CVX_CHECK_VALUE, msg);
}

static void test_path_naming(void **state) {
    const char *json = "{\"a\":{\"b\":[0,1,2,{\"c\":{\"$integer\":\"AA==\"}}]}}";
    expect_parse_error(json, strlen(json), "field \"a.b[3].c\": $integer must encode exactly 8 bytes, not 1");
    json = "[{\"x y\":{\"$q\":1}}]";
    expect_parse_error(json, strlen(json), "field \"[0].x y\": field name \"$q\" must not start with '$'");
}

static void test_document_depth_16(void **state) {
    size_t n;
    char *json = nested_objects(16, &n);
    cvx_value_t *v = parse_ok(json, n);
    cvx_free(json);
    expect_check_ok(v, CVX_CHECK_DOCUMENT);
    expect_check_ok(v, CVX_CHECK_STORED);
    json = nested_objects(17, &n);
    v = parse_ok(json, n);
    cvx_free(json);
    expect_check_ok(v, CVX_CHECK_VALUE);
    char msg[600];
    snprintf(msg, sizeof msg, "field \"%s\": nesting deeper than 16", path_of(16, false));
    expect_check_error(v, CVX_CHECK_DOCUMENT, msg);
    expect_check_error(v, CVX_CHECK_STORED, msg);
}

/* ---- counts -------------------------------------------------------------- */

static char *object_with_fields(int count, bool nested, size_t *len) {
    cvx_buf_t b = {0};
    cvx_buf_append_str(&b, nested ? "{\"x\":{" : "{");
    for (int i = 0; i < count; i++) cvx_buf_printf(&b, "%s\"f%d\":%d", i ? "," : "", i, i);
    cvx_buf_append_str(&b, nested ? "}}" : "}");
    return cvx_buf_detach(&b, len);
}

static void test_fields_1024(void **state) {
    size_t n;
    char *json = object_with_fields(1024, false, &n);
    cvx_value_t *v = parse_ok(json, n);
    cvx_free(json);
    assert_int_equal(v->u.obj.len, 1024);
    expect_check_ok(v, CVX_CHECK_VALUE);
    expect_check_ok(v, CVX_CHECK_DOCUMENT);

    json = object_with_fields(1025, false, &n);
    expect_parse_error(json, n, "object has more than 1024 fields");
    cvx_free(json);
    json = object_with_fields(1025, true, &n);
    expect_parse_error(json, n, "field \"x\": object has more than 1024 fields");
    cvx_free(json);

    cvx_obj_set(arena, v, "zzz", 3, cvx_null(arena));
    expect_check_error(v, CVX_CHECK_VALUE, "object has more than 1024 fields");
}

static char *array_with_items(int count, size_t *len) {
    cvx_buf_t b = {0};
    cvx_buf_append_str(&b, "{\"a\":[");
    for (int i = 0; i < count; i++) cvx_buf_append_str(&b, i ? ",0" : "0");
    cvx_buf_append_str(&b, "]}");
    return cvx_buf_detach(&b, len);
}

static void test_array_8192(void **state) {
    size_t n;
    char *json = array_with_items(8192, &n);
    cvx_value_t *v = parse_ok(json, n);
    cvx_free(json);
    assert_int_equal(cvx_obj_get_cstr(v, "a")->u.arr.len, 8192);
    expect_check_ok(v, CVX_CHECK_DOCUMENT);
    json = array_with_items(8193, &n);
    expect_parse_error(json, n, "field \"a\": array has more than 8192 items");
    cvx_free(json);
    cvx_arr_push(arena, cvx_obj_get_cstr(v, "a"), cvx_null(arena));
    expect_check_error(v, CVX_CHECK_VALUE, "field \"a\": array has more than 8192 items");
}

/* ---- field names --------------------------------------------------------- */

static void test_field_names(void **state) {
    char name[1100];
    memset(name, 'n', sizeof name);
    cvx_buf_t b = {0};
    cvx_buf_printf(&b, "{\"%.*s\":1}", CVX_MAX_FIELD_NAME, name);
    cvx_value_t *v = parse_ok(b.data, b.len);
    expect_check_ok(v, CVX_CHECK_DOCUMENT);
    cvx_buf_reset(&b);
    cvx_buf_printf(&b, "{\"x\":{\"%.*s\":1}}", CVX_MAX_FIELD_NAME + 1, name);
    expect_parse_error(b.data, b.len,
                       "field \"x\": field name \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...\" is longer than 1024 "
                       "characters");
    cvx_buf_free(&b);

    static const struct {
        const char *json;
        const char *msg;
    } cases[] = {
        {"{\"\":1}", "empty field name"},
        {"{\"a\\u007f\":1}", "field name \"a\\x7f\" has a character outside ASCII 32..126"},
        {"{\"a\\n\":1}", "field name \"a\\x0a\" has a character outside ASCII 32..126"},
        {"{\"caf\xc3\xa9\":1}", "field name \"caf\\xc3\\xa9\" has a character outside ASCII 32..126"},
        {"{\"$\":1}", "field name \"$\" must not start with '$'"},
        {"{\"a\":{\"$id\":1}}", "field \"a\": field name \"$id\" must not start with '$'"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++)
        expect_parse_error(cases[i].json, strlen(cases[i].json), cases[i].msg);

    /* Allowed: spaces, punctuation, '$' after the first char, leading '_'
     * (in values; documents reserve it). */
    const char *json = "{\" a.b$ \":1,\"_x\":2,\"~\":3}";
    v = parse_ok(json, strlen(json));
    expect_check_ok(v, CVX_CHECK_VALUE);

    /* The checker applies the same rules to hand-built objects. */
    cvx_value_t *o = cvx_object(arena, 0);
    cvx_obj_set(arena, o, "$bad", 4, cvx_null(arena));
    expect_check_error(o, CVX_CHECK_VALUE, "field name \"$bad\" must not start with '$'");
    o = cvx_object(arena, 0);
    cvx_obj_set(arena, o, "", 0, cvx_null(arena));
    expect_check_error(o, CVX_CHECK_VALUE, "empty field name");
}

static void test_system_fields(void **state) {
    const char *json = "{\"_id\":\"abc\",\"_creationTime\":1.5,\"name\":\"x\"}";
    cvx_value_t *v = parse_ok(json, strlen(json));
    expect_check_ok(v, CVX_CHECK_STORED);
    expect_check_ok(v, CVX_CHECK_VALUE);
    expect_check_error(v, CVX_CHECK_DOCUMENT,
                       "field name \"_creationTime\" must not start with '_' (reserved for system fields)");
    json = "{\"_other\":1}";
    v = parse_ok(json, strlen(json));
    expect_check_error(v, CVX_CHECK_STORED, "field name \"_other\" must not start with '_' (reserved for system fields)");
    json = "{\"_id\":{\"$integer\":\"AQAAAAAAAAA=\"}}";
    v = parse_ok(json, strlen(json));
    expect_check_error(v, CVX_CHECK_STORED, "field \"_id\": must be a string, not int64");
    json = "{\"_creationTime\":\"x\"}";
    v = parse_ok(json, strlen(json));
    expect_check_error(v, CVX_CHECK_STORED, "field \"_creationTime\": must be a float64, not string");
    /* Nested names starting with '_' are ordinary. */
    json = "{\"a\":{\"_b\":1}}";
    v = parse_ok(json, strlen(json));
    expect_check_ok(v, CVX_CHECK_DOCUMENT);
    expect_check_error(parse_ok("[1]", 3), CVX_CHECK_DOCUMENT, "document must be an object, not array");
    expect_check_error(NULL, CVX_CHECK_STORED, "document must be an object, not undefined");
}

/* ---- sizes --------------------------------------------------------------- */

/* A document {"s":"aaa..."} whose JSON is exactly `size` bytes. */
static cvx_value_t *doc_of_size(size_t size) {
    size_t overhead = strlen("{\"s\":\"\"}");
    char *text = cvx_malloc(size - overhead);
    memset(text, 'a', size - overhead);
    cvx_value_t *doc = cvx_object(arena, 1);
    cvx_obj_set(arena, doc, "s", 1, cvx_string(arena, text, size - overhead));
    cvx_free(text);
    assert_int_equal(cvx_value_json_size(doc), size);
    return doc;
}

static void test_document_size(void **state) {
    expect_check_ok(doc_of_size(CVX_MAX_DOC_SIZE), CVX_CHECK_DOCUMENT);
    cvx_value_t *big = doc_of_size(CVX_MAX_DOC_SIZE + 1);
    expect_check_error(big, CVX_CHECK_DOCUMENT, "document is too large (1048577 bytes > maximum 1048576)");
    expect_check_error(big, CVX_CHECK_STORED, "document is too large (1048577 bytes > maximum 1048576)");
    expect_check_ok(big, CVX_CHECK_VALUE);
}

static void test_value_size(void **state) {
    size_t max = CVX_MAX_VALUE_SIZE;
    char *json = cvx_malloc(max + 1);
    memset(json, 'a', max + 1);
    json[0] = '"';
    json[max - 1] = '"';
    cvx_value_t *v = parse_ok(json, max);
    assert_int_equal(v->u.str.len, max - 2);
    expect_check_ok(v, CVX_CHECK_VALUE);
    json[max - 1] = 'a';
    json[max] = '"';
    expect_parse_error(json, max + 1, "value is too large (33554433 bytes > maximum 33554432)");
    cvx_value_t *big = cvx_string(arena, json + 1, max - 1);
    expect_check_error(big, CVX_CHECK_VALUE, "value is too large (33554433 bytes > maximum 33554432)");
    cvx_free(json);
}

/* ---- shape --------------------------------------------------------------- */

static void test_hand_built_shape(void **state) {
    cvx_value_t *doc = cvx_object(arena, 0);
    cvx_value_t *arr = cvx_array(arena, 0);
    cvx_arr_push(arena, arr, cvx_null(arena));
    cvx_arr_push(arena, arr, NULL);
    cvx_obj_set(arena, doc, "a", 1, arr);
    expect_check_error(doc, CVX_CHECK_DOCUMENT, "field \"a[1]\": undefined is not a valid value");

    doc = cvx_object(arena, 0);
    cvx_obj_set(arena, doc, "s", 1, cvx_string(arena, "\xff", 1));
    expect_check_error(doc, CVX_CHECK_VALUE, "field \"s\": string is not valid UTF-8");

    /* Fields filled in by hand out of order, or twice. */
    cvx_field_t fields[2] = {{"b", 1, cvx_null(arena)}, {"a", 1, cvx_null(arena)}};
    cvx_value_t bad = {.type = CVX_T_OBJECT, .u.obj = {fields, 2, 0}};
    expect_check_error(&bad, CVX_CHECK_VALUE, "field \"a\" is out of order");
    fields[1].name = "b";
    expect_check_error(&bad, CVX_CHECK_VALUE, "duplicate field name \"b\"");

    cvx_value_t weird = {.type = (cvx_type_t)99};
    expect_check_error(&weird, CVX_CHECK_VALUE, "unknown value type 99");
    expect_check_ok(cvx_bytes(arena, "\xff\x00", 2), CVX_CHECK_VALUE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_depth_64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_naming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_depth_16, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields_1024, setup, teardown),
        cmocka_unit_test_setup_teardown(test_array_8192, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_system_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hand_built_shape, setup, teardown),
    };
    return cmocka_run_group_tests_name("value.limits", tests, NULL, NULL);
}
