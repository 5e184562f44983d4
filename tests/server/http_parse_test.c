/* The pure HTTP/1.1 parsing of http_parse.c: heads found wherever their
 * terminator falls between reads, heads parsed or refused, chunked bodies
 * decoded in any split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_parse.h"

/* Feeds `text` in pieces of `step` bytes the way http1.c does (resuming
 * at the last call's *scanned) and returns the head's length, or 0. The
 * bytes looked at in all are at most the text plus 2 per call: linear,
 * however small the pieces. */
static size_t find_trickled(const char *text, size_t step, size_t *looked) {
    size_t len = strlen(text), have = 0, scanned = 0;
    *looked = 0;
    while (have < len) {
        have = have + step < len ? have + step : len;
        size_t from = scanned;
        size_t n = cvx__http_head_end(text, have, from, &scanned);
        *looked += have - (from > 2 ? from - 2 : 0);
        if (n) return n;
    }
    return 0;
}

static void test_head_end_resumes(void **state) {
    (void)state;
    const char *heads[] = {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\nHost: x\n\n",
                           "GET / HTTP/1.1\r\nHost: x\n\r\n"};
    for (size_t h = 0; h < 3; h++) {
        size_t whole = strlen(heads[h]), scanned;
        assert_int_equal(cvx__http_head_end(heads[h], whole, 0, &scanned), whole);
        /* Every split, including inside the terminator. */
        for (size_t step = 1; step <= whole; step++) {
            size_t looked;
            assert_int_equal(find_trickled(heads[h], step, &looked), whole);
        }
    }
    /* A 60 KB head one byte at a time: linear work (it was quadratic). */
    size_t big = 60000;
    char *text = malloc(big + 64);
    assert_non_null(text);
    strcpy(text, "GET / HTTP/1.1\r\nX-Pad: ");
    size_t off = strlen(text);
    memset(text + off, 'a', big);
    strcpy(text + off + big, "\r\n\r\n");
    size_t looked, len = strlen(text);
    assert_int_equal(find_trickled(text, 1, &looked), len);
    assert_true(looked <= 3 * len);
    free(text);
    /* Incomplete: 0, and scanned says how far it looked. */
    size_t scanned;
    assert_int_equal(cvx__http_head_end("GET / HTTP/1.1\r\n", 16, 0, &scanned), 0);
    assert_int_equal(scanned, 16);
}

static int parse(const char *text, cvx__req_t *req) {
    memset(req, 0, sizeof *req);
    size_t scanned, n = cvx__http_head_end(text, strlen(text), 0, &scanned);
    assert_true(n > 0);
    return cvx__http_parse_head(req, text, n);
}

static void test_parse_head(void **state) {
    (void)state;
    cvx__req_t req;
    assert_int_equal(parse("POST /api/query?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type:  a/b \t\r\n\r\n", &req), 0);
    assert_true(cvx_slice_eq_cstr(req.method, "POST"));
    assert_true(cvx_slice_eq_cstr(req.path, "/api/query"));
    assert_true(cvx_slice_eq_cstr(req.query, "x=1"));
    assert_int_equal(req.minor, 1);
    assert_int_equal(req.nhdrs, 2);
    assert_true(cvx_slice_eq_cstr(req.hdrs[1].name, "content-type"));
    assert_string_equal(req.hdrs[1].value.ptr, "a/b");
    free(req.head);

    assert_int_equal(parse("HEAD / HTTP/1.0\n\n", &req), 0);
    assert_true(req.head_only);
    assert_int_equal(req.minor, 0);
    free(req.head);

    /* Refused: NUL in the method or a header name (strchr matched the
     * terminator once), folding, control characters, bad versions. */
    const char *bad[] = {"GE\0T / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nX-A\0b: 1\r\n\r\n",
                         "GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", "GET / HTTP/1.1\r\nA: \x01\r\n\r\n",
                         "GET / HTTP/2.0\r\n\r\n", "GET /\r\n\r\n", " / HTTP/1.1\r\n\r\n"};
    size_t lens[] = {19, 28, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t len = lens[i] ? lens[i] : strlen(bad[i]), scanned;
        size_t n = cvx__http_head_end(bad[i], len, 0, &scanned);
        assert_true(n > 0);
        memset(&req, 0, sizeof req);
        assert_int_equal(cvx__http_parse_head(&req, bad[i], n), 400);
        free(req.head);
    }
    /* 101 headers: 431. */
    cvx_buf_t b = {0};
    cvx_buf_append_str(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 101; i++) cvx_buf_printf(&b, "h%d: v\r\n", i);
    cvx_buf_append_str(&b, "\r\n");
    memset(&req, 0, sizeof req);
    assert_int_equal(cvx__http_parse_head(&req, b.data, b.len), 431);
    free(req.head);
    cvx_buf_free(&b);
}

/* Decodes `body` fed in pieces of `step` bytes; the body bytes, or NULL
 * if refused. */
static char *dechunk(const char *body, size_t step, int *status) {
    cvx__chunked_t st = {0};
    cvx_buf_t in = {0}, out = {0};
    size_t len = strlen(body), fed = 0, off = 0;
    bool done = false;
    *status = 0;
    while (!done) {
        if (off == in.len) {
            if (fed == len) break;
            size_t k = fed + step < len ? step : len - fed;
            cvx_buf_append(&in, body + fed, k);
            fed += k;
        }
        size_t used, data;
        *status = cvx__chunked_step(&st, in.data + off, in.len - off, &used, &data, &done);
        if (*status) break;
        if (used == 0) {
            if (fed == len) break;
            size_t k = fed + step < len ? step : len - fed;
            cvx_buf_append(&in, body + fed, k);
            fed += k;
            continue;
        }
        cvx_buf_append(&out, in.data + off, data);
        off += used;
    }
    cvx_buf_free(&in);
    if (*status || !done) {
        cvx_buf_free(&out);
        return NULL;
    }
    cvx_buf_append_str(&out, "");
    return cvx_buf_detach(&out, NULL);
}

static void test_chunked(void **state) {
    (void)state;
    const char *body = "5\r\nhello\r\n1;ext=1\r\n \r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
    for (size_t step = 1; step <= strlen(body); step++) {
        int status;
        char *got = dechunk(body, step, &status);
        assert_non_null(got);
        assert_string_equal(got, "hello  world");
        free(got);
    }
    const char *bad[] = {"x\r\n", "5\r\nhelloX\r\n0\r\n\r\n", "1000000000000000\r\n", "-1\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int status;
        assert_null(dechunk(bad[i], 3, &status));
        assert_int_equal(status, 400);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_end_resumes),
        cmocka_unit_test(test_parse_head),
        cmocka_unit_test(test_chunked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
