/*
 * value_test.c — constructors and builders: objects stay sorted and unique
 * under set/replace/remove, lookups (binary search, dotted paths), arrays
 * grow, hand-filled containers are safe to grow, deep clones are
 * independent, type and table names.
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
    arena = cvx_arena_new(1 << 12);
    return arena ? 0 : -1;
}

static int teardown(void **state) {
    cvx_arena_free(arena);
    return 0;
}

static const char *to_json(const cvx_value_t *v) {
    static cvx_buf_t b;
    cvx_buf_free(&b);
    assert_int_equal(cvx_json_write(&b, v), CVX_OK);
    return b.data;
}

static void test_scalars(void **state) {
    assert_int_equal(cvx_null(arena)->type, CVX_T_NULL);
    assert_int_equal(cvx_int64(arena, -7)->u.i, -7);
    assert_true(cvx_float64(arena, 2.5)->u.f == 2.5);
    assert_true(cvx_bool(arena, true)->u.b);
    char src[] = "hello";
    cvx_value_t *s = cvx_string(arena, src, 5);
    src[0] = 'j'; /* copied, not borrowed */
    assert_string_equal(s->u.str.ptr, "hello");
    assert_int_equal(s->u.str.len, 5);
    cvx_value_t *b = cvx_bytes(arena, "\0\1", 2);
    assert_int_equal(b->type, CVX_T_BYTES);
    assert_memory_equal(b->u.str.ptr, "\0\1", 2);
    assert_int_equal(b->u.str.ptr[2], 0); /* NUL-terminated for convenience */
    assert_int_equal(cvx_string(arena, NULL, 0)->u.str.len, 0);
}

static void test_object_builder(void **state) {
    cvx_value_t *o = cvx_object(arena, 2);
    const char *names[] = {"m", "b", "z", "a", "mm", "B", "m"};
    for (size_t i = 0; i < CVX_ARRAY_LEN(names); i++)
        assert_int_equal(cvx_obj_set(arena, o, names[i], strlen(names[i]), cvx_float64(arena, (double)i)), CVX_OK);
    /* "m" was replaced, not duplicated. */
    assert_string_equal(to_json(o), "{\"B\":5,\"a\":3,\"b\":1,\"m\":6,\"mm\":4,\"z\":2}");
    assert_int_equal(o->u.obj.len, 6);
    assert_true(cvx_obj_get_cstr(o, "mm")->u.f == 4);
    assert_null(cvx_obj_get_cstr(o, "q"));
    assert_null(cvx_obj_get(o, "m", 0));
    assert_true(cvx_obj_get(o, "mmm", 2)->u.f == 4); /* length-bounded */
    assert_true(cvx_obj_remove(o, "b", 1));
    assert_false(cvx_obj_remove(o, "b", 1));
    assert_true(cvx_obj_remove(o, "z", 1));
    assert_true(cvx_obj_remove(o, "B", 1));
    assert_string_equal(to_json(o), "{\"a\":3,\"m\":6,\"mm\":4}");
    /* Names are copied. */
    char name[] = "key";
    cvx_obj_set(arena, o, name, 3, cvx_null(arena));
    name[0] = 'x';
    assert_non_null(cvx_obj_get_cstr(o, "key"));
    /* Not objects. */
    assert_null(cvx_obj_get_cstr(cvx_null(arena), "a"));
    assert_null(cvx_obj_get_cstr(NULL, "a"));
    assert_int_equal(cvx_obj_set(arena, cvx_array(arena, 0), "a", 1, NULL), CVX_E_INVALID_ARGUMENT);
    assert_false(cvx_obj_remove(cvx_array(arena, 0), "a", 1));
}

static void test_many_fields_sorted(void **state) {
    cvx_value_t *o = cvx_object(arena, 0);
    for (int i = 999; i >= 0; i--) {
        char name[16];
        int n = snprintf(name, sizeof name, "f%03d", (i * 7919) % 1000);
        cvx_obj_set(arena, o, name, (size_t)n, cvx_int64(arena, i));
    }
    assert_int_equal(o->u.obj.len, 1000);
    for (size_t i = 1; i < o->u.obj.len; i++)
        assert_true(strcmp(o->u.obj.fields[i - 1].name, o->u.obj.fields[i].name) < 0);
    assert_non_null(cvx_obj_get_cstr(o, "f500"));
    cvx_err_t err;
    assert_int_equal(cvx_value_check(o, CVX_CHECK_DOCUMENT, &err), CVX_OK);
}

static void test_get_path(void **state) {
    cvx_value_t *v;
    const char *json = "{\"a\":{\"b\":{\"c\":1},\"x\":[{\"y\":2}]},\"d\":3}";
    assert_int_equal(cvx_json_parse(arena, json, strlen(json), &v, NULL), CVX_OK);
    assert_true(cvx_obj_get_path(v, "a.b.c", 5)->u.f == 1);
    assert_true(cvx_obj_get_path(v, "d", 1)->u.f == 3);
    assert_int_equal(cvx_obj_get_path(v, "a.b", 3)->type, CVX_T_OBJECT);
    assert_true(cvx_obj_get_path(v, "a.b.cxyz", 5)->u.f == 1);
    assert_null(cvx_obj_get_path(v, "a.b.c.d", 7)); /* c is not an object */
    assert_null(cvx_obj_get_path(v, "a.x.y", 5));   /* arrays are not followed */
    assert_null(cvx_obj_get_path(v, "a..b", 4));
    assert_null(cvx_obj_get_path(v, "", 0));
    assert_null(cvx_obj_get_path(v, "q.b", 3));
}

static void test_array_builder(void **state) {
    cvx_value_t *arr = cvx_array(arena, 0);
    for (int i = 0; i < 1000; i++) assert_int_equal(cvx_arr_push(arena, arr, cvx_int64(arena, i)), CVX_OK);
    assert_int_equal(arr->u.arr.len, 1000);
    assert_true(arr->u.arr.cap >= 1000);
    for (int i = 0; i < 1000; i++) assert_int_equal(arr->u.arr.items[i]->u.i, i);
    assert_int_equal(cvx_arr_push(arena, cvx_object(arena, 0), NULL), CVX_E_INVALID_ARGUMENT);
}

/* Containers a caller filled in by hand (cap 0, items not from the arena)
 * grow by copying, never by writing past the caller's array. */
static void test_hand_filled_containers_grow(void **state) {
    cvx_value_t *items[2] = {cvx_int64(arena, 1), cvx_int64(arena, 2)};
    cvx_value_t arr = {.type = CVX_T_ARRAY, .u.arr = {items, 2, 0}};
    assert_int_equal(cvx_arr_push(arena, &arr, cvx_int64(arena, 3)), CVX_OK);
    assert_ptr_not_equal(arr.u.arr.items, items);
    assert_string_equal(to_json(&arr), "[{\"$integer\":\"AQAAAAAAAAA=\"},{\"$integer\":\"AgAAAAAAAAA=\"},"
                                       "{\"$integer\":\"AwAAAAAAAAA=\"}]");
    cvx_field_t fields[1] = {{"b", 1, cvx_null(arena)}};
    cvx_value_t obj = {.type = CVX_T_OBJECT, .u.obj = {fields, 1, 0}};
    assert_int_equal(cvx_obj_set(arena, &obj, "a", 1, cvx_bool(arena, true)), CVX_OK);
    assert_string_equal(fields[0].name, "b"); /* untouched */
    assert_string_equal(to_json(&obj), "{\"a\":true,\"b\":null}");
    /* Removing shifts within the caller's own array: allowed, no growth. */
    assert_true(cvx_obj_remove(&obj, "a", 1));
    assert_string_equal(to_json(&obj), "{\"b\":null}");
}

static void test_clone(void **state) {
    cvx_value_t *v;
    const char *json = "{\"a\":[1,\"two\",{\"$bytes\":\"AAE=\"},{\"$integer\":\"BQAAAAAAAAA=\"}],\"b\":{\"c\":null}}";
    assert_int_equal(cvx_json_parse(arena, json, strlen(json), &v, NULL), CVX_OK);
    cvx_arena_t *other = cvx_arena_new(256);
    cvx_value_t *c = cvx_value_clone(other, v);
    assert_non_null(c);
    assert_true(cvx_value_equal(v, c));
    /* Independent: freeing the source arena leaves the clone intact. */
    cvx_arena_free(arena);
    arena = cvx_arena_new(256);
    assert_string_equal(to_json(c), json);
    cvx_obj_set(other, c, "new", 3, cvx_null(other));
    assert_int_equal(c->u.obj.len, 3);
    assert_null(cvx_value_clone(other, NULL));
    cvx_arena_free(other);
}

static void test_names(void **state) {
    assert_string_equal(cvx_type_name(CVX_T_NULL), "null");
    assert_string_equal(cvx_type_name(CVX_T_INT64), "int64");
    assert_string_equal(cvx_type_name(CVX_T_FLOAT64), "float64");
    assert_string_equal(cvx_type_name(CVX_T_BOOL), "boolean");
    assert_string_equal(cvx_type_name(CVX_T_STRING), "string");
    assert_string_equal(cvx_type_name(CVX_T_BYTES), "bytes");
    assert_string_equal(cvx_type_name(CVX_T_ARRAY), "array");
    assert_string_equal(cvx_type_name(CVX_T_OBJECT), "object");
    assert_string_equal(cvx_type_name((cvx_type_t)42), "unknown");

    static const char *const good[] = {"users", "_tables", "a", "A_1", "_", "x2y"};
    for (size_t i = 0; i < CVX_ARRAY_LEN(good); i++) assert_true(cvx_table_name_valid(good[i], strlen(good[i])));
    static const char *const bad[] = {"", "1abc", "a-b", "a b", "é", "a.b", "$x"};
    for (size_t i = 0; i < CVX_ARRAY_LEN(bad); i++) assert_false(cvx_table_name_valid(bad[i], strlen(bad[i])));
    char name[66];
    memset(name, 't', sizeof name);
    assert_true(cvx_table_name_valid(name, 64));
    assert_false(cvx_table_name_valid(name, 65));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scalars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_builder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_fields_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_array_builder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hand_filled_containers_grow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
    };
    return cmocka_run_group_tests_name("value.value", tests, NULL, NULL);
}
