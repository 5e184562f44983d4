/* util: errors, buffers, arenas, base64, ChaCha20 (RFC 8439 vector), the
 * fault-injecting allocator. */
#include "support/testutil.h"

#include <stdlib.h>
#include <string.h>

static void test_error_names(void **state) {
    assert_string_equal(cvx_code_name(CVX_E_FUEL), "FUEL");
    assert_string_equal(cvx_code_message(CVX_E_FUEL), "function exceeded its fuel limit");
    assert_string_equal(cvx_code_name(9999), "UNKNOWN");
    cvx_err_t err;
    assert_int_equal(cvx_err_set(&err, CVX_E_NOT_FOUND, "no table %s", "users"), CVX_E_NOT_FOUND);
    assert_string_equal(err.msg, "no table users");
    cvx_err_prefix(&err, "query %d", 3);
    assert_string_equal(err.msg, "query 3: no table users");
    /* A prefix never overflows the message buffer. */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cvx_err_prefix(&err, "%s", big);
    assert_int_equal(strlen(err.msg), CVX_ERR_MSG_MAX - 1);
}

static void test_buf_json_string(void **state) {
    cvx_buf_t b = {0};
    cvx_buf_append_json_string(&b, "a\"b\\c\n\x01\xc3\xa9", 9);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"");
    cvx_buf_reset(&b);
    for (int i = 0; i < 1000; i++) cvx_buf_printf(&b, "%d,", i);
    assert_int_equal(b.len, 3890);
    size_t n;
    char *p = cvx_buf_detach(&b, &n);
    assert_int_equal(n, 3890);
    assert_null(b.data);
    cvx_free(p);
}

static void test_arena(void **state) {
    cvx_arena_t *a = cvx_arena_new(256);
    for (int round = 0; round < 3; round++) {
        for (int i = 1; i < 2000; i++) {
            char *p = cvx_arena_alloc(a, (size_t)i);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % 8, 0);
            memset(p, 0xab, (size_t)i);
        }
        cvx_arena_reset(a);
        assert_int_equal(cvx_arena_used(a), 0);
    }
    char *s = cvx_arena_strndup(a, "hello world", 5);
    assert_string_equal(s, "hello");
    cvx_arena_free(a);
}

static void test_base64(void **state) {
    static const struct {
        const char *raw, *enc;
    } v[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        cvx_buf_t e = {0}, d = {0};
        cvx_base64_encode(&e, v[i].raw, strlen(v[i].raw));
        assert_string_equal(e.data ? e.data : "", v[i].enc);
        assert_int_equal(cvx_base64_decode(&d, v[i].enc, strlen(v[i].enc), NULL), CVX_OK);
        assert_int_equal(d.len, strlen(v[i].raw));
        assert_memory_equal(d.data ? d.data : "", v[i].raw, d.len);
        cvx_buf_free(&e);
        cvx_buf_free(&d);
    }
    const char *bad[] = {"Zg=", "Zg==Zg==", "Z===", "Zh==", "Zm9*", "=Zg="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cvx_buf_t d = {0};
        cvx_err_t err;
        assert_int_equal(cvx_base64_decode(&d, bad[i], strlen(bad[i]), &err), CVX_E_INVALID_VALUE);
        cvx_buf_free(&d);
    }
}

/* RFC 8439 §2.3.2 test vector for the ChaCha20 block function. */
static void test_chacha_rfc8439(void **state) {
    uint32_t key[8], nonce[3] = {0x09000000, 0x4a000000, 0x00000000};
    for (int i = 0; i < 8; i++)
        key[i] = (uint32_t)(4 * i) | (uint32_t)(4 * i + 1) << 8 | (uint32_t)(4 * i + 2) << 16 | (uint32_t)(4 * i + 3) << 24;
    uint8_t out[64];
    cvx_chacha_block(key, 1, nonce, out);
    static const uint8_t want[16] = {0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15,
                                     0x50, 0x0f, 0xdd, 0x1f, 0xa3, 0x20, 0x71, 0xc4};
    assert_memory_equal(out, want, 16);
    static const uint8_t tail[4] = {0xa2, 0x50, 0x3c, 0x4e};
    assert_memory_equal(out + 60, tail, 4);

    /* Same seed, same stream; different seed, different stream. */
    cvx_chacha_t a, b, c;
    cvx_chacha_seed(&a, "req-1", 5);
    cvx_chacha_seed(&b, "req-1", 5);
    cvx_chacha_seed(&c, "req-2", 5);
    uint8_t x[100], y[100], z[100];
    cvx_chacha_fill(&a, x, 37);
    cvx_chacha_fill(&a, x + 37, 63);
    cvx_chacha_fill(&b, y, 100);
    cvx_chacha_fill(&c, z, 100);
    assert_memory_equal(x, y, 100);
    assert_memory_not_equal(x, z, 100);
}

static void test_alloc_fault_injection(void **state) {
    cvx_alloc_fail_after(3, false);
    void *p1 = cvx_malloc(8), *p2 = cvx_malloc(8), *p3 = cvx_malloc(8), *p4 = cvx_malloc(8);
    cvx_alloc_fail_after(0, false);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_null(p3);
    assert_non_null(p4);
    cvx_free(p1);
    cvx_free(p2);
    cvx_free(p4);
    /* A buffer remembers the failure. */
    cvx_buf_t b = {0};
    cvx_alloc_fail_after(1, true);
    assert_int_equal(cvx_buf_append_str(&b, "x"), CVX_E_NOMEM);
    assert_true(b.oom);
    cvx_alloc_fail_after(0, false);
    assert_int_equal(cvx_buf_append_str(&b, "x"), CVX_E_NOMEM);
    cvx_buf_free(&b);
}

static void test_files(void **state) {
    char *dir = tu_tmpdir("util");
    char path[4200];
    snprintf(path, sizeof path, "%s/a/b/c", dir);
    cvx_err_t err;
    assert_int_equal(cvx_mkdirs(path, &err), CVX_OK);
    strcat(path, "/f.txt");
    assert_int_equal(cvx_write_file_atomic(path, "hello", 5, &err), CVX_OK);
    cvx_buf_t b = {0};
    assert_int_equal(cvx_read_file(path, &b, &err), CVX_OK);
    assert_string_equal(b.data, "hello");
    cvx_buf_free(&b);
    assert_int_equal(cvx_read_file("/nonexistent/x", &b, &err), CVX_E_IO);
    tu_assert_contains(err.msg, "/nonexistent/x");
    tu_rmrf(dir);
    free(dir);
}

typedef struct {
    cvx_cache_node_t node;
    int key;
} citem_t;

static citem_t *cache_find(cvx_cache_t *c, int key, uint64_t hash) {
    for (cvx_cache_node_t *n = cvx_cache_chain(c, hash); n; n = cvx_cache_next(n, hash)) {
        citem_t *it = CVX_CONTAINER_OF(n, citem_t, node);
        if (it->key == key) return it;
    }
    return NULL;
}

/* The shared cache core: lookups through colliding hashes and across table
 * growth, recency order, byte accounting. */
static void test_cache(void **state) {
    (void)state;
    enum { N = 5000 };
    cvx_cache_t c;
    assert_int_equal(cvx_cache_init(&c, 100 * N), CVX_OK);
    assert_true(cvx_cache_admits(&c, 100 * N / 8));
    assert_false(cvx_cache_admits(&c, 100 * N / 8 + 1));
    citem_t *items = calloc(N, sizeof *items);
    assert_non_null(items);
    for (int i = 0; i < N; i++) {
        items[i].key = i;
        /* Every hash shared by ten keys: chains hold other keys too. */
        cvx_cache_insert(&c, &items[i].node, (uint64_t)(i / 10) * 0x9E3779B97F4A7C15ull, 100);
    }
    assert_int_equal(c.n, N);
    assert_int_equal(c.bytes, 100 * N);
    assert_true(c.cap >= N); /* grew past its first 1024 buckets */
    assert_false(cvx_cache_over(&c, 0));
    assert_true(cvx_cache_over(&c, 1));
    for (int i = 0; i < N; i += 7) assert_ptr_equal(cache_find(&c, i, (uint64_t)(i / 10) * 0x9E3779B97F4A7C15ull), &items[i]);
    assert_null(cache_find(&c, N + 1, (uint64_t)(N / 10 + 1) * 0x9E3779B97F4A7C15ull));

    /* Oldest first; a hit makes an entry the newest. */
    assert_ptr_equal(cvx_cache_oldest(&c), &items[0].node);
    cvx_cache_hit(&c, &items[0].node);
    assert_ptr_equal(cvx_cache_oldest(&c), &items[1].node);
    assert_ptr_equal(c.newest, &items[0].node);
    cvx_cache_miss(&c);
    assert_int_equal(c.hits, 1);
    assert_int_equal(c.misses, 1);

    /* Removing keeps the rest of a shared chain reachable. */
    cvx_cache_remove(&c, &items[13].node);
    assert_null(cache_find(&c, 13, 1 * 0x9E3779B97F4A7C15ull));
    assert_ptr_equal(cache_find(&c, 12, 1 * 0x9E3779B97F4A7C15ull), &items[12]);
    assert_ptr_equal(cache_find(&c, 19, 1 * 0x9E3779B97F4A7C15ull), &items[19]);
    assert_int_equal(c.n, N - 1);
    assert_int_equal(c.bytes, 100 * (N - 1));
    while (cvx_cache_oldest(&c)) cvx_cache_remove(&c, cvx_cache_oldest(&c));
    assert_int_equal(c.n, 0);
    assert_int_equal(c.bytes, 0);
    assert_null(c.newest);
    cvx_cache_destroy(&c);
    free(items);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_names), cmocka_unit_test(test_buf_json_string), cmocka_unit_test(test_arena),
        cmocka_unit_test(test_base64),      cmocka_unit_test(test_chacha_rfc8439),  cmocka_unit_test(test_alloc_fault_injection),
        cmocka_unit_test(test_files),       cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
