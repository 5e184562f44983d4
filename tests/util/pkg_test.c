/* util/pkg: app packages ("CVXPKG1\n", named byte entries in one blob).
 * A deploy body arrives from the network as one of these, so the parser
 * must take every byte string: what it accepts must point inside the
 * input, and everything else (truncations, lying counts and lengths,
 * duplicate or empty names, trailing bytes) must be refused with a
 * message, never read out of bounds. Inputs are copied into buffers of
 * their exact size so that ASan sees any read past the end. */
#include "support/testutil.h"

#include <string.h>

/* The package of three entries most tests start from. */
static void sample(cvx_buf_t *b) {
    static const uint8_t wasm[] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    cvx_buf_reset(b);
    cvx_pkg_begin(b, 3);
    cvx_pkg_add(b, "module.wasm", wasm, sizeof wasm);
    cvx_pkg_add(b, "empty", "", 0);
    cvx_pkg_add(b, "bundle.js", "export default 1;\n", 18);
}

/* Parses a copy of exactly n bytes: nothing after them is readable. */
static int parse_exact(const void *bytes, size_t n, cvx_pkg_entry_t **out, size_t *count, cvx_err_t *err) {
    uint8_t *copy = cvx_malloc(n ? n : 1);
    assert_non_null(copy);
    if (n) memcpy(copy, bytes, n);
    int rc = cvx_pkg_parse(copy, n, out, count, err);
    /* Entries point into the input: check them while it is alive. */
    for (size_t i = 0; rc == CVX_OK && i < *count; i++) {
        const cvx_pkg_entry_t *e = &(*out)[i];
        assert_true((const uint8_t *)e->name >= copy && (const uint8_t *)e->name + e->name_len <= copy + n);
        assert_true(e->data >= copy && e->data + e->len <= copy + n);
        assert_true(e->name_len > 0);
    }
    cvx_free(copy);
    return rc;
}

static void expect_refused(const void *bytes, size_t n, const char *msg) {
    cvx_pkg_entry_t *e = (cvx_pkg_entry_t *)1;
    size_t count = 99;
    cvx_err_t err = {0};
    assert_int_equal(parse_exact(bytes, n, &e, &count, &err), CVX_E_INVALID_ARGUMENT);
    assert_null(e);
    assert_int_equal(count, 0);
    if (msg) assert_string_equal(err.msg, msg);
    else assert_true(err.msg[0] != '\0');
}

static void test_round_trip_keeps_entries_in_order(void **state) {
    cvx_buf_t b = {0};
    sample(&b);
    assert_true(cvx_pkg_is(b.data, b.len));
    cvx_pkg_entry_t *e;
    size_t n;
    cvx_err_t err;
    assert_int_equal(cvx_pkg_parse(b.data, b.len, &e, &n, &err), CVX_OK);
    assert_int_equal(n, 3);
    assert_int_equal(e[0].name_len, 11);
    assert_memory_equal(e[0].name, "module.wasm", 11);
    assert_int_equal(e[0].len, 8);
    assert_memory_equal(e[0].data, "\0asm\1\0\0\0", 8);
    assert_int_equal(e[1].name_len, 5);
    assert_memory_equal(e[1].name, "empty", 5);
    assert_int_equal(e[1].len, 0);
    assert_memory_equal(e[2].name, "bundle.js", 9);
    assert_int_equal(e[2].len, 18);
    assert_memory_equal(e[2].data, "export default 1;\n", 18);
    /* The layout is fixed (a saved app is read back by later versions). */
    assert_int_equal(b.len, 12 + (2 + 11 + 4 + 8) + (2 + 5 + 4) + (2 + 9 + 4 + 18));
    assert_memory_equal(b.data, "CVXPKG1\n\3\0\0\0\13\0module.wasm\10\0\0\0", 8 + 4 + 2 + 11 + 4);
    cvx_free(e);
    cvx_buf_free(&b);
}

static void test_find_matches_whole_names_only(void **state) {
    cvx_buf_t b = {0};
    sample(&b);
    cvx_pkg_entry_t *e;
    size_t n;
    cvx_err_t err;
    assert_int_equal(cvx_pkg_parse(b.data, b.len, &e, &n, &err), CVX_OK);
    assert_ptr_equal(cvx_pkg_find(e, n, "bundle.js"), &e[2]);
    assert_ptr_equal(cvx_pkg_find(e, n, "empty"), &e[1]);
    assert_null(cvx_pkg_find(e, n, "bundle.js.map"));
    assert_null(cvx_pkg_find(e, n, "bundle"));
    assert_null(cvx_pkg_find(e, n, "module.WASM"));
    assert_null(cvx_pkg_find(e, n, ""));
    assert_null(cvx_pkg_find(e, 0, "bundle.js"));
    cvx_free(e);
    cvx_buf_free(&b);
}

static void test_empty_package_has_no_entries(void **state) {
    cvx_buf_t b = {0};
    cvx_pkg_begin(&b, 0);
    cvx_pkg_entry_t *e;
    size_t n = 99;
    cvx_err_t err;
    assert_int_equal(cvx_pkg_parse(b.data, b.len, &e, &n, &err), CVX_OK);
    assert_int_equal(n, 0);
    assert_null(cvx_pkg_find(e, n, "anything"));
    cvx_free(e);
    cvx_buf_free(&b);
}

/* The header test decides whether a deploy body is a package or a bare
 * module, so it must not read past short inputs. */
static void test_is_needs_the_whole_magic(void **state) {
    assert_false(cvx_pkg_is("CVXPKG1", 7));
    assert_false(cvx_pkg_is("", 0));
    assert_false(cvx_pkg_is("\0asm\1\0\0\0", 8));
    assert_false(cvx_pkg_is("CVXPKG2\n\0\0\0\0", 12));
    assert_true(cvx_pkg_is("CVXPKG1\n", 8));
    /* The magic alone is not a package: the count is missing. */
    expect_refused("CVXPKG1\n", 8, "not an app package (bad header)");
    expect_refused("CVXPKG1\n\0\0\0", 11, "not an app package (bad header)");
    expect_refused("\0asm\1\0\0\0\0\0\0\0", 12, "not an app package (bad header)");
    expect_refused("", 0, "not an app package (bad header)");
}

static void test_every_truncation_is_refused(void **state) {
    cvx_buf_t b = {0};
    sample(&b);
    for (size_t n = 0; n < b.len; n++) expect_refused(b.data, n, NULL);
    /* Cut inside the last entry's data. */
    expect_refused(b.data, b.len - 1, "app package is truncated");
    cvx_buf_free(&b);
}

static void test_trailing_bytes_are_refused(void **state) {
    cvx_buf_t b = {0};
    sample(&b);
    cvx_buf_append(&b, "\0", 1);
    expect_refused(b.data, b.len, "app package has 1 bytes after its last entry");
    /* One entry fewer than the count says the bytes hold. */
    sample(&b);
    b.data[8] = 2;
    expect_refused(b.data, b.len, "app package has 33 bytes after its last entry");
    cvx_buf_free(&b);
}

/* A count is checked against the bytes before anything is allocated for
 * it: a 12-byte body must not make the server allocate 4 billion entries. */
static void test_lying_counts_are_refused(void **state) {
    cvx_buf_t b = {0};
    cvx_pkg_begin(&b, 0xffffffffu);
    expect_refused(b.data, b.len, "app package: 4294967295 entries cannot fit in 12 bytes");
    cvx_buf_reset(&b);
    cvx_pkg_begin(&b, CVX_PKG_MAX_ENTRIES + 1);
    for (int i = 0; i < CVX_PKG_MAX_ENTRIES + 1; i++) {
        char name[16];
        snprintf(name, sizeof name, "e%d", i);
        cvx_pkg_add(&b, name, "x", 1);
    }
    expect_refused(b.data, b.len, NULL);
    /* Two entries claimed, room for one. */
    cvx_buf_reset(&b);
    cvx_pkg_begin(&b, 2);
    cvx_pkg_add(&b, "a", "", 0);
    expect_refused(b.data, b.len, "app package: 2 entries cannot fit in 19 bytes");
    cvx_buf_free(&b);
}

static void test_most_entries_allowed_are_accepted(void **state) {
    cvx_buf_t b = {0};
    cvx_pkg_begin(&b, CVX_PKG_MAX_ENTRIES);
    for (int i = 0; i < CVX_PKG_MAX_ENTRIES; i++) {
        char name[16];
        snprintf(name, sizeof name, "e%d", i);
        cvx_pkg_add(&b, name, name, strlen(name));
    }
    cvx_pkg_entry_t *e;
    size_t n;
    cvx_err_t err;
    assert_int_equal(cvx_pkg_parse(b.data, b.len, &e, &n, &err), CVX_OK);
    assert_int_equal(n, CVX_PKG_MAX_ENTRIES);
    const cvx_pkg_entry_t *last = cvx_pkg_find(e, n, "e63");
    assert_ptr_equal(last, &e[63]);
    cvx_free(e);
    cvx_buf_free(&b);
}

static void test_data_length_past_the_end_is_refused(void **state) {
    cvx_buf_t b = {0};
    cvx_pkg_begin(&b, 1);
    cvx_pkg_add(&b, "a", "xyz", 3);
    /* The u32 data length follows "CVXPKG1\n", the count, u16 1 and "a". */
    b.data[15] = (char)0xff, b.data[16] = (char)0xff, b.data[17] = (char)0xff, b.data[18] = (char)0xff;
    expect_refused(b.data, b.len, "app package is truncated");
    /* A name length past the end. */
    cvx_buf_reset(&b);
    cvx_pkg_begin(&b, 1);
    cvx_pkg_add(&b, "a", "xyz", 3);
    b.data[12] = (char)0xff, b.data[13] = (char)0xff;
    expect_refused(b.data, b.len, "app package is truncated");
    cvx_buf_free(&b);
}

static void test_empty_and_duplicate_names_are_refused(void **state) {
    cvx_buf_t b = {0};
    cvx_pkg_begin(&b, 1);
    cvx_pkg_add(&b, "", "abcdef", 6);
    expect_refused(b.data, b.len, NULL);
    cvx_buf_reset(&b);
    cvx_pkg_begin(&b, 3);
    cvx_pkg_add(&b, "bundle.js", "1", 1);
    cvx_pkg_add(&b, "map", "2", 1);
    cvx_pkg_add(&b, "bundle.js", "3", 1);
    expect_refused(b.data, b.len, "app package names \"bundle.js\" twice");
    cvx_buf_free(&b);
}

/* Every single-byte change of a valid package either parses to entries
 * inside the input (parse_exact checks) or is refused with a message. */
static void test_byte_flips_parse_or_are_refused(void **state) {
    cvx_buf_t b = {0};
    sample(&b);
    static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    for (size_t i = 0; i < b.len; i++) {
        uint8_t orig = (uint8_t)b.data[i];
        for (size_t k = 0; k < sizeof values; k++) {
            b.data[i] = (char)(orig ^ (values[k] ? values[k] : 0x20));
            cvx_pkg_entry_t *e = NULL;
            size_t n = 0;
            cvx_err_t err = {0};
            int rc = parse_exact(b.data, b.len, &e, &n, &err);
            if (rc == CVX_OK) cvx_free(e);
            else {
                assert_int_equal(rc, CVX_E_INVALID_ARGUMENT);
                assert_null(e);
                assert_true(err.msg[0] != '\0');
            }
        }
        b.data[i] = (char)orig;
    }
    cvx_buf_free(&b);
}

static void test_out_of_memory_is_an_error(void **state) {
    cvx_buf_t b = {0};
    sample(&b);
    cvx_pkg_entry_t *e = (cvx_pkg_entry_t *)1;
    size_t n = 99;
    cvx_err_t err;
    cvx_alloc_fail_after(1, false);
    int rc = cvx_pkg_parse(b.data, b.len, &e, &n, &err);
    cvx_alloc_fail_after(0, false);
    assert_int_equal(rc, CVX_E_NOMEM);
    assert_null(e);
    assert_int_equal(n, 0);
    cvx_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_keeps_entries_in_order),
        cmocka_unit_test(test_find_matches_whole_names_only),
        cmocka_unit_test(test_empty_package_has_no_entries),
        cmocka_unit_test(test_is_needs_the_whole_magic),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_trailing_bytes_are_refused),
        cmocka_unit_test(test_lying_counts_are_refused),
        cmocka_unit_test(test_most_entries_allowed_are_accepted),
        cmocka_unit_test(test_data_length_past_the_end_is_refused),
        cmocka_unit_test(test_empty_and_duplicate_names_are_refused),
        cmocka_unit_test(test_byte_flips_parse_or_are_refused),
        cmocka_unit_test(test_out_of_memory_is_an_error),
    };
    if (getenv("CVX_TEST_FILTER")) cmocka_set_test_filter(getenv("CVX_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
